/*
 * tests/test_nn.c - the layers of <train/nn.h>.
 *
 * Three kinds of check:
 *
 *  1. Gradients against central finite differences.  For a fixed random R,
 *     L = sum(out * R) is accumulated in double from the fp32 outputs;
 *     every input and parameter element x is moved to x+h and x-h (h = 1e-3;
 *     the difference is divided by the step actually taken in fp32) and
 *     (L+ - L-) / (2h) is compared with what backward gave for dout = R.
 *     Tolerance: |analytic - numeric| <= FD_ATOL + FD_RTOL * |numeric|.
 *     The numeric side carries two errors: fp32 rounding of the outputs
 *     that x feeds, about k * 2^-24 * |out| * |R| / (2h) for k such outputs
 *     (about 1e-4 at k = 30, |out| ~ 3), and truncation h^2/6 * |L'''|
 *     (under 1e-6 for these O(1) inputs).  FD_ATOL = 1e-3 and FD_RTOL = 1e-2
 *     sit well above both yet far below any real mistake (a wrong term in a
 *     backward is off by O(1), at the gradient's own scale).
 *  2. Accumulation: backward called twice from zeroed gradients gives twice
 *     the gradient (to ACC_RTOL = 1e-5 of the gradient's scale: the second
 *     call adds the same terms in the same order to a non-zero start, so
 *     only a few fp32 roundings differ); each gradient pointer may be NULL
 *     (alone or all of them), and asking for one gradient gives the same
 *     values as asking for all.
 *  3. Forward values: against plain double-precision references in this
 *     file (random shapes, masks), and against PyTorch's results stored in
 *     tests/fixtures/nn_reference.safetensors (made by make_nn_fixtures.py,
 *     computed in float64 from the stored fp32 inputs).  Tolerance:
 *     |ours - ref| <= REF_RTOL * |ref| + REF_ATOL * scale with REF_RTOL =
 *     1e-5, REF_ATOL = 1e-6 and scale the largest |ref| in the tensor (the
 *     absolute part covers entries that are sums cancelling to near 0).
 *
 * Matmuls are forced to fp32 (train_kernels_init(1, TRAIN_PRECISION_FP32)):
 * bf16 would need its own, much looser, bounds.
 */
#include <train/kernels.h>
#include <train/nn.h>
#include <train/optim.h>

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define FD_H 1e-3
#define FD_ATOL 1e-3
#define FD_RTOL 1e-2
#define ACC_RTOL 1e-5
#define REF_RTOL 1e-5
#define REF_ATOL 1e-6

/* ---------------------------------------------------------------------------
 * Test data
 */

static train_rng rng;

static int irand(int lo, int hi) /* uniform in [lo, hi] */
{
	return lo + (int)train_rng_below(&rng, (uint64_t)(hi - lo + 1));
}

/* Buffers of one layer case, freed together. */
#define MAX_BUFS 16
typedef struct bufs {
	void *p[MAX_BUFS];
	int n;
} bufs;

static void *buf_new(bufs *b, size_t bytes)
{
	void *p = calloc(1, bytes ? bytes : 1);
	if (!p || b->n == MAX_BUFS)
		abort();
	return b->p[b->n++] = p;
}

static float *frand(bufs *b, size_t n, float lo, float hi)
{
	float *x = buf_new(b, n * sizeof *x);
	train_rng_fill_uniform(&rng, x, n, lo, hi);
	return x;
}

static float *fzero(bufs *b, size_t n)
{
	return buf_new(b, n * sizeof(float));
}

static void bufs_free(bufs *b)
{
	for (int i = 0; i < b->n; i++)
		free(b->p[i]);
	b->n = 0;
}

static double maxabs(const float *x, size_t n)
{
	double m = 0;
	for (size_t i = 0; i < n; i++)
		m = fmax(m, fabs(x[i]));
	return m;
}

/* ---------------------------------------------------------------------------
 * The gradient harness
 */

#define MAX_PARAMS 4

typedef struct layer layer;
struct layer {
	const char *name;
	int (*forward)(layer *);
	/* want bit i: pass p[i].dx, else NULL */
	int (*backward)(layer *, unsigned want);
	float *out; /* (nout) */
	size_t nout;
	float *R;   /* (nout): L = sum(out * R); dout for backward */
	int unit_R; /* R = 1 (a scalar loss) */
	struct {
		const char *name;
		float *x, *dx; /* (n) */
		size_t n;
	} p[MAX_PARAMS];
	int np;
	/* sizes and extras, as each layer needs them */
	int N, C, OC, V, B, T, NH, K, causal;
	float eps, ls, drop;
	int32_t *ids;
	uint8_t *mask;
	const uint8_t *key_mask;
	float *aux1, *aux2;
	bufs mem;
};

static float *add_param(layer *L, const char *name, float *x, size_t n)
{
	L->p[L->np].name = name;
	L->p[L->np].x = x;
	L->p[L->np].dx = fzero(&L->mem, n);
	L->p[L->np].n = n;
	return L->p[L->np++].x;
}

static double loss_of(layer *L)
{
	int rc = L->forward(L);
	if (rc != TRAIN_OK) {
		fprintf(stderr, "%s: forward failed: %s\n", L->name, train_strerror(rc));
		return NAN;
	}
	double s = 0;
	for (size_t i = 0; i < L->nout; i++)
		s += (double)L->out[i] * L->R[i];
	return s;
}

static void zero_grads(layer *L)
{
	for (int i = 0; i < L->np; i++)
		memset(L->p[i].dx, 0, L->p[i].n * sizeof(float));
}

/* 1 if x == k * ref to ACC_RTOL of the gradient's scale */
static int grads_match(const float *x, const float *ref, size_t n, double k)
{
	double scale = k * maxabs(ref, n) + 1e-30;
	for (size_t i = 0; i < n; i++)
		if (fabs(x[i] - k * ref[i]) > ACC_RTOL * scale)
			return 0;
	return 1;
}

static int all_zero(const float *x, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (x[i] != 0.0f)
			return 0;
	return 1;
}

/* Run every gradient check on a layer whose forward, params and out are set. */
static void check_layer(layer *L)
{
	unsigned all = (1u << L->np) - 1;
	float *g[MAX_PARAMS];

	L->R = fzero(&L->mem, L->nout);
	if (L->unit_R)
		for (size_t i = 0; i < L->nout; i++)
			L->R[i] = 1.0f;
	else
		train_rng_fill_uniform(&rng, L->R, L->nout, -1.0f, 1.0f);
	CU_ASSERT_EQUAL_FATAL(L->forward(L), TRAIN_OK);

	/* once, then twice: backward adds */
	zero_grads(L);
	CU_ASSERT_EQUAL_FATAL(L->backward(L, all), TRAIN_OK);
	for (int i = 0; i < L->np; i++) {
		g[i] = fzero(&L->mem, L->p[i].n);
		memcpy(g[i], L->p[i].dx, L->p[i].n * sizeof(float));
	}
	CU_ASSERT_EQUAL(L->backward(L, all), TRAIN_OK);
	for (int i = 0; i < L->np; i++)
		if (!grads_match(L->p[i].dx, g[i], L->p[i].n, 2.0)) {
			fprintf(stderr, "%s: d%s does not accumulate\n", L->name, L->p[i].name);
			CU_FAIL("backward does not accumulate");
		}

	/* NULL gradients: none wanted, then one at a time */
	zero_grads(L);
	CU_ASSERT_EQUAL(L->backward(L, 0), TRAIN_OK);
	for (int i = 0; i < L->np; i++)
		CU_ASSERT(all_zero(L->p[i].dx, L->p[i].n));
	for (int i = 0; i < L->np && L->np > 1; i++) {
		zero_grads(L);
		CU_ASSERT_EQUAL(L->backward(L, 1u << i), TRAIN_OK);
		for (int j = 0; j < L->np; j++)
			if (j == i ? !grads_match(L->p[j].dx, g[j], L->p[j].n, 1.0)
			           : !all_zero(L->p[j].dx, L->p[j].n)) {
				fprintf(stderr, "%s: d%s alone: d%s wrong\n", L->name, L->p[i].name,
				        L->p[j].name);
				CU_FAIL("one gradient alone differs");
			}
	}

	/* finite differences */
	for (int i = 0; i < L->np; i++) {
		double worst = 0;
		size_t worst_j = 0;
		double worst_a = 0, worst_num = 0;
		for (size_t j = 0; j < L->p[i].n; j++) {
			float *x = &L->p[i].x[j], x0 = *x;
			float xp = (float)(x0 + FD_H), xm = (float)(x0 - FD_H);
			*x = xp;
			double lp = loss_of(L);
			*x = xm;
			double lm = loss_of(L);
			*x = x0;
			double num = (lp - lm) / ((double)xp - (double)xm);
			double a = g[i][j];
			double r = fabs(a - num) / (FD_ATOL + FD_RTOL * fabs(num));
			if (!(r <= worst)) {
				worst = r;
				worst_j = j;
				worst_a = a;
				worst_num = num;
			}
		}
		if (getenv("TEST_NN_VERBOSE") || !(worst <= 1.0))
			fprintf(stderr, "%s: d%s[%zu]: analytic %.7g numeric %.7g (%.3g of tolerance)\n",
			        L->name, L->p[i].name, worst_j, worst_a, worst_num, worst);
		CU_ASSERT(worst <= 1.0);
	}
	bufs_free(&L->mem);
}

/* ---------------------------------------------------------------------------
 * Layers under the harness
 */

static int linear_fwd(layer *L)
{
	return train_linear_forward(L->out, L->p[0].x, L->p[1].x, L->p[2].x, L->N, L->C, L->OC);
}
static int linear_bwd(layer *L, unsigned want)
{
	return train_linear_backward(want & 1 ? L->p[0].dx : NULL, want & 2 ? L->p[1].dx : NULL,
	                             want & 4 ? L->p[2].dx : NULL, L->R, L->p[0].x, L->p[1].x,
	                             L->N, L->C, L->OC);
}

static void test_linear_grad(void)
{
	for (int trial = 0; trial < 4; trial++) {
		layer L = {.name = "linear", .forward = linear_fwd, .backward = linear_bwd};
		L.N = irand(3, 7), L.C = irand(5, 13), L.OC = irand(1, 9);
		add_param(&L, "inp", frand(&L.mem, (size_t)L.N * L.C, -1, 1), (size_t)L.N * L.C);
		add_param(&L, "w", frand(&L.mem, (size_t)L.OC * L.C, -1, 1), (size_t)L.OC * L.C);
		add_param(&L, "b", frand(&L.mem, (size_t)L.OC, -1, 1), (size_t)L.OC);
		L.nout = (size_t)L.N * L.OC;
		L.out = fzero(&L.mem, L.nout);
		check_layer(&L);
	}
}

static int embedding_fwd(layer *L)
{
	return train_embedding_forward(L->out, L->ids, L->p[0].x, L->N, L->C, L->V);
}
static int embedding_bwd(layer *L, unsigned want)
{
	return train_embedding_backward(want & 1 ? L->p[0].dx : NULL, L->R, L->ids, L->N, L->C,
	                                L->V);
}

static void test_embedding_grad(void)
{
	for (int trial = 0; trial < 3; trial++) {
		layer L = {.name = "embedding", .forward = embedding_fwd, .backward = embedding_bwd};
		L.N = irand(3, 7), L.C = irand(5, 13), L.V = irand(2, 5); /* ids repeat */
		L.ids = buf_new(&L.mem, (size_t)L.N * sizeof *L.ids);
		for (int n = 0; n < L.N; n++)
			L.ids[n] = irand(0, L.V - 1);
		add_param(&L, "table", frand(&L.mem, (size_t)L.V * L.C, -1, 1), (size_t)L.V * L.C);
		L.nout = (size_t)L.N * L.C;
		L.out = fzero(&L.mem, L.nout);
		check_layer(&L);
	}
}

static int layernorm_fwd(layer *L)
{
	return train_layernorm_forward(L->out, L->aux1, L->aux2, L->p[0].x, L->p[1].x,
	                               L->np > 2 ? L->p[2].x : NULL, L->N, L->C, L->eps);
}
static int layernorm_bwd(layer *L, unsigned want)
{
	return train_layernorm_backward(want & 1 ? L->p[0].dx : NULL, want & 2 ? L->p[1].dx : NULL,
	                                want & 4 ? L->p[2].dx : NULL, L->R, L->p[0].x, L->p[1].x,
	                                L->aux1, L->aux2, L->N, L->C);
}

static void test_layernorm_grad(void)
{
	for (int trial = 0; trial < 4; trial++) {
		layer L = {.name = "layernorm", .forward = layernorm_fwd, .backward = layernorm_bwd};
		L.N = irand(3, 7), L.C = irand(5, 13), L.eps = 1e-5f;
		/* rows centred away from 0, as activations are */
		add_param(&L, "inp", frand(&L.mem, (size_t)L.N * L.C, 1, 3), (size_t)L.N * L.C);
		add_param(&L, "w", frand(&L.mem, (size_t)L.C, 0.5f, 1.5f), (size_t)L.C);
		if (trial != 3) /* the last one without a bias */
			add_param(&L, "b", frand(&L.mem, (size_t)L.C, -1, 1), (size_t)L.C);
		L.aux1 = fzero(&L.mem, (size_t)L.N);
		L.aux2 = fzero(&L.mem, (size_t)L.N);
		L.nout = (size_t)L.N * L.C;
		L.out = fzero(&L.mem, L.nout);
		check_layer(&L);
	}
}

static int rmsnorm_fwd(layer *L)
{
	return train_rmsnorm_forward(L->out, L->aux2, L->p[0].x, L->p[1].x, L->N, L->C, L->eps);
}
static int rmsnorm_bwd(layer *L, unsigned want)
{
	return train_rmsnorm_backward(want & 1 ? L->p[0].dx : NULL, want & 2 ? L->p[1].dx : NULL,
	                              L->R, L->p[0].x, L->p[1].x, L->aux2, L->N, L->C);
}

static void test_rmsnorm_grad(void)
{
	for (int trial = 0; trial < 3; trial++) {
		layer L = {.name = "rmsnorm", .forward = rmsnorm_fwd, .backward = rmsnorm_bwd};
		L.N = irand(3, 7), L.C = irand(5, 13), L.eps = 1e-6f;
		add_param(&L, "inp", frand(&L.mem, (size_t)L.N * L.C, -2, 2), (size_t)L.N * L.C);
		add_param(&L, "w", frand(&L.mem, (size_t)L.C, 0.5f, 1.5f), (size_t)L.C);
		L.aux2 = fzero(&L.mem, (size_t)L.N);
		L.nout = (size_t)L.N * L.C;
		L.out = fzero(&L.mem, L.nout);
		check_layer(&L);
	}
}

typedef int (*act_fwd_fn)(float *, const float *, size_t);
typedef int (*act_bwd_fn)(float *, const float *, const float *, size_t);
static act_fwd_fn act_fwd_f;
static act_bwd_fn act_bwd_f;

static int act_fwd(layer *L)
{
	return act_fwd_f(L->out, L->p[0].x, L->nout);
}
static int act_bwd(layer *L, unsigned want)
{
	return act_bwd_f(want & 1 ? L->p[0].dx : NULL, L->p[0].x, L->R, L->nout);
}

static void check_activation(const char *name, act_fwd_fn f, act_bwd_fn b)
{
	layer L = {.name = name, .forward = act_fwd, .backward = act_bwd};
	act_fwd_f = f, act_bwd_f = b;
	L.nout = (size_t)irand(20, 45);
	float *x = add_param(&L, "inp", frand(&L.mem, L.nout, -4, 4), L.nout);
	/* keep every x at least 2h from ReLU's kink at 0 */
	for (size_t i = 0; i < L.nout; i++)
		if (fabsf(x[i]) < 0.05f)
			x[i] = x[i] < 0 ? -0.05f : 0.05f;
	L.out = fzero(&L.mem, L.nout);
	check_layer(&L);
}

static void test_activation_grad(void)
{
	check_activation("gelu", train_gelu_forward, train_gelu_backward);
	check_activation("silu", train_silu_forward, train_silu_backward);
	check_activation("relu", train_relu_forward, train_relu_backward);
}

static int residual_fwd(layer *L)
{
	return train_residual_forward(L->out, L->p[0].x, L->p[1].x, L->nout);
}
static int residual_bwd(layer *L, unsigned want)
{
	return train_residual_backward(want & 1 ? L->p[0].dx : NULL, want & 2 ? L->p[1].dx : NULL,
	                               L->R, L->nout);
}

static void test_residual_grad(void)
{
	layer L = {.name = "residual", .forward = residual_fwd, .backward = residual_bwd};
	L.nout = (size_t)irand(20, 45);
	add_param(&L, "a", frand(&L.mem, L.nout, -1, 1), L.nout);
	add_param(&L, "b", frand(&L.mem, L.nout, -1, 1), L.nout);
	L.out = fzero(&L.mem, L.nout);
	check_layer(&L);
}

static int softmax_fwd(layer *L)
{
	return train_softmax_forward(L->out, L->p[0].x, L->N, L->C);
}
static int softmax_bwd(layer *L, unsigned want)
{
	return train_softmax_backward(want & 1 ? L->p[0].dx : NULL, L->out, L->R, L->N, L->C);
}

static void test_softmax_grad(void)
{
	for (int trial = 0; trial < 3; trial++) {
		layer L = {.name = "softmax", .forward = softmax_fwd, .backward = softmax_bwd};
		L.N = irand(3, 7), L.C = irand(1, 13);
		add_param(&L, "logits", frand(&L.mem, (size_t)L.N * L.C, -3, 3), (size_t)L.N * L.C);
		L.nout = (size_t)L.N * L.C;
		L.out = fzero(&L.mem, L.nout);
		check_layer(&L);
	}
}

/* L = the mean loss; aux1 holds probs, aux2 the per-row losses */
static int xent_fwd(layer *L)
{
	return train_cross_entropy_forward(L->out, L->aux2, L->aux1, L->p[0].x, L->ids, L->N, L->C,
	                                   L->ls);
}
static int xent_bwd(layer *L, unsigned want)
{
	return train_cross_entropy_backward(want & 1 ? L->p[0].dx : NULL, L->aux1, L->ids, L->N,
	                                    L->C, L->ls, 1.0f);
}

static void test_cross_entropy_grad(void)
{
	static const float smoothing[] = {0.0f, 0.1f, 0.3f, 1.0f};
	for (int trial = 0; trial < 4; trial++) {
		layer L = {.name = "cross_entropy", .forward = xent_fwd, .backward = xent_bwd};
		L.N = irand(3, 7), L.C = irand(2, 13), L.ls = smoothing[trial], L.unit_R = 1;
		L.ids = buf_new(&L.mem, (size_t)L.N * sizeof *L.ids);
		for (int n = 0; n < L.N; n++) /* about one row in four ignored */
			L.ids[n] = irand(0, 3) == 0 ? -1 - irand(0, 99) : irand(0, L.C - 1);
		L.ids[0] = irand(0, L.C - 1), L.ids[1] = -100;
		add_param(&L, "logits", frand(&L.mem, (size_t)L.N * L.C, -3, 3), (size_t)L.N * L.C);
		L.aux1 = fzero(&L.mem, (size_t)L.N * L.C);
		L.aux2 = fzero(&L.mem, (size_t)L.N);
		L.nout = 1;
		L.out = fzero(&L.mem, 1);
		check_layer(&L);
	}
}

static int dropout_fwd(layer *L)
{
	train_rng r; /* the same seed every time: a fixed mask */
	train_rng_seed(&r, 77);
	return train_dropout_forward(L->out, L->mask, L->p[0].x, L->nout, L->drop, &r);
}
static int dropout_bwd(layer *L, unsigned want)
{
	return train_dropout_backward(want & 1 ? L->p[0].dx : NULL, L->R, L->mask, L->nout, L->drop);
}

static void test_dropout_grad(void)
{
	static const float ps[] = {0.3f, 0.0f, 1.0f};
	for (int trial = 0; trial < 3; trial++) {
		layer L = {.name = "dropout", .forward = dropout_fwd, .backward = dropout_bwd};
		L.nout = (size_t)irand(20, 45), L.drop = ps[trial];
		add_param(&L, "inp", frand(&L.mem, L.nout, -2, 2), L.nout);
		L.mask = buf_new(&L.mem, L.nout);
		L.out = fzero(&L.mem, L.nout);
		check_layer(&L);
	}
}

static int attention_fwd(layer *L)
{
	return train_attention_forward(L->out, L->aux1, L->p[0].x, L->key_mask, L->B, L->T, L->C,
	                               L->NH, L->causal);
}
static int attention_bwd(layer *L, unsigned want)
{
	return train_attention_backward(want & 1 ? L->p[0].dx : NULL, L->R, L->p[0].x, L->aux1,
	                                L->B, L->T, L->C, L->NH);
}

/* out (B, T, C) in double from the definition, for the same masks */
static void attention_ref(double *out, const float *qkv, const uint8_t *km, int B, int T, int C,
                          int NH, int causal)
{
	int HS = C / NH;
	double w[16];
	for (int b = 0; b < B; b++)
		for (int h = 0; h < NH; h++)
			for (int t = 0; t < T; t++) {
				const float *q = qkv + ((size_t)b * T + t) * 3 * C + h * HS;
				double m = -INFINITY, sum = 0;
				for (int s = 0; s < T; s++) {
					const float *k = qkv + ((size_t)b * T + s) * 3 * C + C + h * HS;
					int vis = (!causal || s <= t) && (!km || km[b * T + s]);
					double d = 0;
					for (int i = 0; i < HS; i++)
						d += (double)q[i] * k[i];
					w[s] = vis ? d / sqrt(HS) : -INFINITY;
					m = fmax(m, w[s]);
				}
				for (int s = 0; s < T; s++) {
					w[s] = m == -INFINITY || w[s] == -INFINITY ? 0 : exp(w[s] - m);
					sum += w[s];
				}
				for (int i = 0; i < HS; i++) {
					double o = 0;
					for (int s = 0; s < T; s++)
						o += w[s] * qkv[((size_t)b * T + s) * 3 * C + 2 * C + h * HS + i];
					out[((size_t)b * T + t) * C + h * HS + i] = sum > 0 ? o / sum : 0;
				}
			}
}

/* 1 if every |a - ref| <= REF_RTOL |ref| + REF_ATOL max|ref| */
static int close_to_d(const char *what, const float *a, const double *ref, size_t n)
{
	double scale = 0;
	for (size_t i = 0; i < n; i++)
		scale = fmax(scale, fabs(ref[i]));
	for (size_t i = 0; i < n; i++)
		if (!(fabs(a[i] - ref[i]) <= REF_RTOL * fabs(ref[i]) + REF_ATOL * scale)) {
			fprintf(stderr, "%s[%zu]: %.9g, reference %.9g\n", what, i, a[i], ref[i]);
			return 0;
		}
	return 1;
}

static void check_attention(int causal, int masked)
{
	layer L = {.name = causal ? (masked ? "attention causal+padding" : "attention causal")
	                          : (masked ? "attention padding" : "attention"),
	           .forward = attention_fwd,
	           .backward = attention_bwd};
	L.B = irand(2, 3), L.T = irand(1, 6), L.NH = irand(1, 3), L.C = L.NH * irand(1, 4);
	L.causal = causal;
	size_t BT = (size_t)L.B * L.T;
	uint8_t *km = NULL;
	if (masked) {
		/* random padding; the last sequence is all padding */
		km = buf_new(&L.mem, BT);
		for (size_t i = 0; i < BT; i++)
			km[i] = i >= BT - (size_t)L.T ? 0 : irand(0, 3) != 0;
		km[0] = 0; /* causal: the first query of sequence 0 sees nothing */
		L.key_mask = km;
	}
	float *qkv = add_param(&L, "qkv", frand(&L.mem, BT * 3 * L.C, -1.5f, 1.5f), BT * 3 * L.C);
	L.aux1 = fzero(&L.mem, (size_t)L.B * L.NH * L.T * L.T);
	L.nout = BT * L.C;
	L.out = fzero(&L.mem, L.nout);

	/* forward against the double reference */
	double *ref = calloc(L.nout, sizeof *ref);
	CU_ASSERT_FATAL(ref != NULL);
	CU_ASSERT_EQUAL_FATAL(attention_fwd(&L), TRAIN_OK);
	attention_ref(ref, qkv, km, L.B, L.T, L.C, L.NH, causal);
	CU_ASSERT(close_to_d(L.name, L.out, ref, L.nout));
	free(ref);

	if (masked) { /* the padded sequence: zero output, zero gradient */
		size_t last = (BT - (size_t)L.T);
		CU_ASSERT(all_zero(L.out + last * L.C, (size_t)L.T * L.C));
		float *dqkv = calloc(BT * 3 * L.C, sizeof *dqkv), *dout = malloc(L.nout * sizeof *dout);
		CU_ASSERT_FATAL(dqkv && dout);
		train_rng_fill_uniform(&rng, dout, L.nout, -1, 1);
		CU_ASSERT_EQUAL(train_attention_backward(dqkv, dout, qkv, L.aux1, L.B, L.T, L.C, L.NH),
		                TRAIN_OK);
		CU_ASSERT(all_zero(dqkv + last * 3 * L.C, (size_t)L.T * 3 * L.C));
		free(dqkv);
		free(dout);
	}
	check_layer(&L);
}

static void test_attention_grad(void)
{
	for (int trial = 0; trial < 2; trial++)
		for (int causal = 0; causal <= 1; causal++)
			for (int masked = 0; masked <= 1; masked++)
				check_attention(causal, masked);
}

static int conv1d_fwd(layer *L)
{
	return train_conv1d_causal_forward(L->out, L->p[0].x, L->p[1].x,
	                                   L->np > 2 ? L->p[2].x : NULL, L->B, L->T, L->C, L->K);
}
static int conv1d_bwd(layer *L, unsigned want)
{
	return train_conv1d_causal_backward(want & 1 ? L->p[0].dx : NULL,
	                                    want & 2 ? L->p[1].dx : NULL,
	                                    want & 4 ? L->p[2].dx : NULL, L->R, L->p[0].x,
	                                    L->p[1].x, L->B, L->T, L->C, L->K);
}

static void test_conv1d_grad(void)
{
	for (int trial = 0; trial < 4; trial++) {
		layer L = {.name = "conv1d", .forward = conv1d_fwd, .backward = conv1d_bwd};
		L.B = irand(1, 3), L.T = irand(1, 6), L.C = irand(5, 13), L.K = irand(1, 4);
		size_t n = (size_t)L.B * L.T * L.C;
		add_param(&L, "inp", frand(&L.mem, n, -1, 1), n);
		add_param(&L, "w", frand(&L.mem, (size_t)L.C * L.K, -1, 1), (size_t)L.C * L.K);
		if (trial != 3)
			add_param(&L, "bias", frand(&L.mem, (size_t)L.C, -1, 1), (size_t)L.C);
		L.nout = n;
		L.out = fzero(&L.mem, n);
		check_layer(&L);
	}
}

/* ---------------------------------------------------------------------------
 * Forward values against plain double references
 */

static void test_linear_values(void)
{
	int N = 7, C = 13, OC = 9;
	float *x = malloc(sizeof(float) * N * C), *w = malloc(sizeof(float) * OC * C);
	float *b = malloc(sizeof(float) * OC), *y = malloc(sizeof(float) * N * OC);
	float *y0 = malloc(sizeof(float) * N * OC);
	double *ref = malloc(sizeof(double) * N * OC);
	CU_ASSERT_FATAL(x && w && b && y && y0 && ref);
	train_rng_fill_uniform(&rng, x, (size_t)N * C, -2, 2);
	train_rng_fill_uniform(&rng, w, (size_t)OC * C, -1, 1);
	train_rng_fill_uniform(&rng, b, (size_t)OC, -1, 1);
	for (int n = 0; n < N; n++)
		for (int o = 0; o < OC; o++) {
			double s = b[o];
			for (int c = 0; c < C; c++)
				s += (double)x[n * C + c] * w[o * C + c];
			ref[n * OC + o] = s;
		}
	CU_ASSERT_EQUAL(train_linear_forward(y, x, w, b, N, C, OC), TRAIN_OK);
	CU_ASSERT(close_to_d("linear", y, ref, (size_t)N * OC));
	/* without the bias: exactly b less (the product is the same) */
	CU_ASSERT_EQUAL(train_linear_forward(y0, x, w, NULL, N, C, OC), TRAIN_OK);
	for (int i = 0; i < N * OC; i++)
		CU_ASSERT_EQUAL(y0[i] + b[i % OC], y[i]);
	free(x), free(w), free(b), free(y), free(y0), free(ref);
}

/* losses and mean from the definition: -sum_c q_c log p_c */
static void test_cross_entropy_values(void)
{
	enum { N = 6, C = 5 };
	float logits[N * C], probs[N * C], losses[N], mean = -1, dl[N * C];
	int32_t targets[N] = {2, -1, 0, 4, -100, 1};
	const float ls = 0.2f;
	train_rng_fill_uniform(&rng, logits, N * C, -3, 3);
	logits[3 * C + 4] = 60.0f; /* a large logit: max subtraction keeps it finite */
	CU_ASSERT_EQUAL(train_cross_entropy_forward(&mean, losses, probs, logits, targets, N, C, ls),
	                TRAIN_OK);
	double total = 0;
	int count = 0;
	for (int n = 0; n < N; n++) {
		double m = -INFINITY, z = 0, ref = 0;
		for (int c = 0; c < C; c++)
			m = fmax(m, logits[n * C + c]);
		for (int c = 0; c < C; c++)
			z += exp(logits[n * C + c] - m);
		for (int c = 0; c < C; c++) {
			double logp = logits[n * C + c] - m - log(z);
			double q = (1 - ls) * (c == targets[n]) + ls / C;
			ref -= q * logp;
			CU_ASSERT(fabs(probs[n * C + c] - exp(logp)) <= 1e-6);
		}
		if (targets[n] < 0) {
			CU_ASSERT_EQUAL(losses[n], 0.0f);
			continue;
		}
		CU_ASSERT(fabs(losses[n] - ref) <= REF_RTOL * ref + 1e-6);
		total += ref;
		count++;
	}
	CU_ASSERT(fabs(mean - total / count) <= REF_RTOL * total / count);

	/* NULL losses and mean are fine */
	CU_ASSERT_EQUAL(train_cross_entropy_forward(NULL, NULL, probs, logits, targets, N, C, ls),
	                TRAIN_OK);

	/* scale: 1/k of the gradient of scale 1 */
	float dl1[N * C];
	memset(dl1, 0, sizeof dl1);
	memset(dl, 0, sizeof dl);
	CU_ASSERT_EQUAL(train_cross_entropy_backward(dl1, probs, targets, N, C, ls, 1.0f), TRAIN_OK);
	CU_ASSERT_EQUAL(train_cross_entropy_backward(dl, probs, targets, N, C, ls, 0.25f), TRAIN_OK);
	for (int i = 0; i < N * C; i++)
		CU_ASSERT(fabsf(dl[i] - 0.25f * dl1[i]) <= 1e-7f);
	/* ignored rows get no gradient; each counted row's gradient sums to 0 */
	for (int n = 0; n < N; n++) {
		double s = 0;
		for (int c = 0; c < C; c++)
			s += dl1[n * C + c];
		if (targets[n] < 0)
			CU_ASSERT(all_zero(dl1 + n * C, C));
		CU_ASSERT(fabs(s) <= 1e-6);
	}

	/* every row ignored: mean 0, no gradient */
	int32_t none[N] = {-1, -1, -1, -1, -1, -1};
	CU_ASSERT_EQUAL(train_cross_entropy_forward(&mean, losses, probs, logits, none, N, C, ls),
	                TRAIN_OK);
	CU_ASSERT_EQUAL(mean, 0.0f);
	memset(dl, 0, sizeof dl);
	CU_ASSERT_EQUAL(train_cross_entropy_backward(dl, probs, none, N, C, ls, 1.0f), TRAIN_OK);
	CU_ASSERT(all_zero(dl, N * C));
}

/* Wellons' lowbias32, as the dropout mask uses it */
static uint32_t lowbias32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	x ^= x >> 16;
	return x;
}

static void test_dropout_values(void)
{
	enum { n = 20000 };
	float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
	uint8_t *mask = malloc(n);
	CU_ASSERT_FATAL(x && y && mask);
	train_rng_fill_uniform(&rng, x, n, -1, 1);
	train_rng r;
	train_rng_seed(&r, 5);
	const float p = 0.25f;
	CU_ASSERT_EQUAL(train_dropout_forward(y, mask, x, n, p, &r), TRAIN_OK);
	size_t kept = 0;
	int values_ok = 1;
	for (size_t i = 0; i < n; i++) {
		kept += mask[i];
		values_ok &= mask[i] <= 1 && y[i] == (mask[i] ? x[i] * (1.0f / (1.0f - p)) : 0.0f);
	}
	CU_ASSERT(values_ok);
	/* kept ~ Binomial(n, 0.75): sd = sqrt(n p (1-p)) ~ 61; allow 5 sd */
	CU_ASSERT(fabs((double)kept - 0.75 * n) <= 5 * sqrt(n * 0.25 * 0.75));
	/* the same seed, the same mask */
	uint8_t *mask2 = malloc(n);
	CU_ASSERT_FATAL(mask2 != NULL);
	train_rng_seed(&r, 5);
	CU_ASSERT_EQUAL(train_dropout_forward(y, mask2, x, n, p, &r), TRAIN_OK);
	CU_ASSERT(memcmp(mask, mask2, n) == 0);
	/* and the same on one thread as on two (the mask hashes the index) */
	int threads = train_kernels_threads();
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(threads == 1 ? 2 : 1, train_kernels_precision()), 0);
	train_rng_seed(&r, 5);
	CU_ASSERT_EQUAL(train_dropout_forward(y, mask2, x, n, p, &r), TRAIN_OK);
	CU_ASSERT(memcmp(mask, mask2, n) == 0);
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(threads, train_kernels_precision()), 0);
	/* the mask is the documented function of the index and one draw:
	 * lowbias32 twice (libtrain/vec.c), the same on every code path */
	train_rng_seed(&r, 5);
	uint64_t key = train_rng_u64(&r);
	uint32_t thr = (uint32_t)ceil((double)p * 16777216.0);
	int spec = 1;
	for (size_t i = 0; i < n; i++) {
		uint32_t h = lowbias32(lowbias32((uint32_t)i ^ (uint32_t)key) ^
		                       ((uint32_t)(i >> 32) + (uint32_t)(key >> 32)));
		spec &= mask[i] == ((h >> 8) >= thr);
	}
	CU_ASSERT(spec);
	/* neighbours independent: kept pairs ~ 0.75^2 (n - 1), 5 sd */
	size_t pairs = 0;
	for (size_t i = 0; i + 1 < n; i++)
		pairs += mask[i] && mask[i + 1];
	double q = 0.75 * 0.75;
	CU_ASSERT(fabs((double)pairs - q * (n - 1)) <= 5 * sqrt(2.0 * n * q * (1 - q)));
	/* a second call draws a new key: a different mask */
	CU_ASSERT_EQUAL(train_dropout_forward(y, mask2, x, n, p, &r), TRAIN_OK);
	CU_ASSERT(memcmp(mask, mask2, n) != 0);
	/* p = 0 copies and keeps every element (mask and rng optional) */
	CU_ASSERT_EQUAL(train_dropout_forward(y, NULL, x, n, 0.0f, NULL), TRAIN_OK);
	CU_ASSERT(memcmp(x, y, n * sizeof *x) == 0);
	CU_ASSERT_EQUAL(train_dropout_forward(y, mask, x, n, 0.0f, NULL), TRAIN_OK);
	CU_ASSERT(memchr(mask, 0, n) == NULL);
	/* p = 1 drops everything */
	CU_ASSERT_EQUAL(train_dropout_forward(y, mask, x, n, 1.0f, &r), TRAIN_OK);
	CU_ASSERT(all_zero(y, n));
	free(x), free(y), free(mask), free(mask2);
}

/* Layer norm of rows with a large common offset: the two-pass variance. */
static void test_layernorm_values(void)
{
	enum { N = 4, C = 9 };
	float x[N * C], w[C], b[C], y[N * C], mean[N], rstd[N];
	double ref[N * C];
	train_rng_fill_uniform(&rng, x, N * C, -1, 1);
	train_rng_fill_uniform(&rng, w, C, 0.5f, 1.5f);
	train_rng_fill_uniform(&rng, b, C, -1, 1);
	for (int i = 0; i < C; i++)
		x[C + i] += 1000.0f; /* row 1: |mean| >> std */
	for (int n = 0; n < N; n++) {
		double m = 0, v = 0;
		for (int c = 0; c < C; c++)
			m += x[n * C + c] / (double)C;
		for (int c = 0; c < C; c++)
			v += (x[n * C + c] - m) * (x[n * C + c] - m) / C;
		for (int c = 0; c < C; c++)
			ref[n * C + c] = (x[n * C + c] - m) / sqrt(v + 1e-5) * w[c] + b[c];
	}
	CU_ASSERT_EQUAL(train_layernorm_forward(y, mean, rstd, x, w, b, N, C, 1e-5f), TRAIN_OK);
	/* row 1's inputs carry 1000 * 2^-24 ~ 6e-5 of rounding each, relative
	 * to a std of ~0.6: a 1e-4 relative bound there, REF_RTOL elsewhere */
	CU_ASSERT(close_to_d("layernorm rows 0", y, ref, C));
	CU_ASSERT(close_to_d("layernorm rows 2-3", y + 2 * C, ref + 2 * C, 2 * C));
	for (int c = 0; c < C; c++)
		CU_ASSERT(fabs(y[C + c] - ref[C + c]) <= 1e-4 * (fabs(ref[C + c]) + 1));
}


/* ---------------------------------------------------------------------------
 * Sizes that go through the oneDNN kernels (<train/kernels.h>)
 *
 * Elementwise layers, softmax and layer norm switch to oneDNN's eltwise,
 * softmax and layer normalization primitives from TRAIN_KERNELS_ELTWISE_MIN
 * elements; attention always uses batched matmuls and oneDNN's softmax.  Finite differences on arrays this
 * large would be slow, so forward values and gradients are checked against
 * double-precision definitions, with kernels.h's accuracy (GELU: 1.6e-7 *
 * max(1, |x|), its derivative 2.9e-7; softmax 1.4e-6 relative) doubled:
 *   activations: |out - ref| <= 4e-7 max(1, |x|),
 *                |dinp - dinp0 - dout * f'(x)| <= 8e-7 max(1, |dout|);
 *   softmax, layer norm, attention: REF_RTOL * |ref| + REF_ATOL * max |ref|
 *                as above (their sums dominate the per-entry error).
 * Backward must still add: gradients from zero are checked, then a second
 * call must double them (to ACC_RTOL, as the harness asks).
 */

#define BIG_ACT_FWD 4e-7
#define BIG_ACT_BWD 8e-7

static double gelu_d(double x)
{
	return 0.5 * erfc(-x / sqrt(2.0));
}

static void check_big_activation(const char *name, act_fwd_fn f, act_bwd_fn b,
                                 double (*ref)(double), double (*dref)(double))
{
	size_t n = 3 * TRAIN_KERNELS_ELTWISE_MIN + 5;
	float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *g = malloc(n * sizeof *g);
	float *d = malloc(n * sizeof *d), *d0 = malloc(n * sizeof *d0);
	CU_ASSERT_FATAL(x && y && g && d && d0);
	train_rng_fill_uniform(&rng, x, n, -8, 8);
	train_rng_fill_uniform(&rng, g, n, -1, 1);
	train_rng_fill_uniform(&rng, d0, n, -1, 1);
	memcpy(d, d0, n * sizeof *d);
	CU_ASSERT_EQUAL(f(y, x, n), TRAIN_OK);
	CU_ASSERT_EQUAL(b(d, x, g, n), TRAIN_OK);
	double wf = 0, wb = 0;
	for (size_t i = 0; i < n; i++) {
		double ef = fabs(y[i] - ref(x[i])) / fmax(1, fabs(x[i]));
		double eb = fabs(d[i] - d0[i] - g[i] * dref(x[i])) / fmax(1, fabs(g[i]));
		wf = !(ef <= wf) ? ef : wf;
		wb = !(eb <= wb) ? eb : wb;
	}
	fprintf(stderr, "%s n=%zu: forward %.3g, backward %.3g\n", name, n, wf, wb);
	CU_ASSERT(wf <= BIG_ACT_FWD);
	CU_ASSERT(wb <= BIG_ACT_BWD);
	/* NULL dinp: nothing to do */
	CU_ASSERT_EQUAL(b(NULL, x, g, n), TRAIN_OK);
	free(x), free(y), free(g), free(d), free(d0);
}

static double gelu_exact(double x)
{
	return 0.5 * x * erfc(-x / sqrt(2.0));
}
static double gelu_exact_d(double x)
{
	return gelu_d(x) + x * exp(-0.5 * x * x) / sqrt(2 * M_PI);
}
static double silu_exact(double x)
{
	return x / (1 + exp(-x));
}
static double silu_exact_d(double x)
{
	double s = 1 / (1 + exp(-x));
	return s * (1 + x * (1 - s));
}

/* The residual from TRAIN_KERNELS_ELTWISE_MIN elements: oneDNN's add, the
 * same fp32 sums as the loop. */
static void test_big_residual(void)
{
	size_t n = 2 * TRAIN_KERNELS_ELTWISE_MIN + 3;
	float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *o = malloc(n * sizeof *o);
	float *da = malloc(n * sizeof *da), *db = malloc(n * sizeof *db);
	CU_ASSERT_FATAL(a && b && o && da && db);
	train_rng_fill_uniform(&rng, a, n, -3, 3);
	train_rng_fill_uniform(&rng, b, n, -3, 3);
	CU_ASSERT_EQUAL(train_residual_forward(o, a, b, n), TRAIN_OK);
	memcpy(da, a, n * sizeof *da);
	memcpy(db, b, n * sizeof *db);
	CU_ASSERT_EQUAL(train_residual_backward(da, db, o, n), TRAIN_OK); /* da = a + o */
	int exact = 1;
	for (size_t i = 0; i < n; i++)
		exact &= o[i] == a[i] + b[i] && da[i] == a[i] + o[i] && db[i] == b[i] + o[i];
	CU_ASSERT(exact);
	CU_ASSERT_EQUAL(train_residual_backward(NULL, db, o, n), TRAIN_OK);
	free(a), free(b), free(o), free(da), free(db);
}

static void test_big_activations(void)
{
	check_big_activation("gelu", train_gelu_forward, train_gelu_backward, gelu_exact,
	                     gelu_exact_d);
	check_big_activation("silu", train_silu_forward, train_silu_backward, silu_exact,
	                     silu_exact_d);
}

static void test_big_softmax(void)
{
	int N = 70, C = 300; /* 21000 >= TRAIN_KERNELS_ELTWISE_MIN */
	size_t n = (size_t)N * C;
	float *x = malloc(n * sizeof *x), *p = malloc(n * sizeof *p), *dp = malloc(n * sizeof *dp);
	float *d = malloc(n * sizeof *d), *d0 = malloc(n * sizeof *d0);
	double *ref = malloc(n * sizeof *ref), *dref = malloc(n * sizeof *dref);
	CU_ASSERT_FATAL(x && p && dp && d && d0 && ref && dref);
	train_rng_fill_uniform(&rng, x, n, -5, 5);
	train_rng_fill_uniform(&rng, dp, n, -1, 1);
	CU_ASSERT_EQUAL(train_softmax_forward(p, x, N, C), TRAIN_OK);
	memset(d, 0, n * sizeof *d);
	CU_ASSERT_EQUAL(train_softmax_backward(d, p, dp, N, C), TRAIN_OK);
	memcpy(d0, d, n * sizeof *d);
	CU_ASSERT_EQUAL(train_softmax_backward(d0, p, dp, N, C), TRAIN_OK); /* adds */
	CU_ASSERT(grads_match(d0, d, n, 2.0));
	for (int r = 0; r < N; r++) {
		double m = -INFINITY, z = 0, pd = 0;
		for (int c = 0; c < C; c++)
			m = fmax(m, x[r * C + c]);
		for (int c = 0; c < C; c++)
			z += exp(x[r * C + c] - m);
		for (int c = 0; c < C; c++) {
			ref[r * C + c] = exp(x[r * C + c] - m) / z;
			pd += (double)p[r * C + c] * dp[r * C + c];
		}
		for (int c = 0; c < C; c++) /* backward from our probs: only backward's error */
			dref[r * C + c] = p[r * C + c] * (dp[r * C + c] - pd);
	}
	CU_ASSERT(close_to_d("big softmax", p, ref, n));
	CU_ASSERT(close_to_d("big softmax backward", d, dref, n));
	free(x), free(p), free(dp), free(d), free(d0), free(ref), free(dref);
}

/* Layer norm from N*C = TRAIN_KERNELS_ELTWISE_MIN goes to oneDNN: values
 * against double precision (REF tolerance: rows centred near 0 here), and
 * backward adds to what the gradients held. */
static void test_big_layernorm(void)
{
	int N = 100, C = 200;
	size_t n = (size_t)N * C;
	float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *g = malloc(n * sizeof *g);
	float *w = malloc(C * sizeof *w), *b = malloc(C * sizeof *b), *m = malloc(N * sizeof *m);
	float *rs = malloc(N * sizeof *rs), *dx = malloc(n * sizeof *dx), *dw = malloc(C * sizeof *dw);
	float *db = malloc(C * sizeof *db);
	double *ref = malloc(n * sizeof *ref), *rdx = malloc(n * sizeof *rdx);
	double *rdw = calloc(C, sizeof *rdw), *rdb = calloc(C, sizeof *rdb);
	CU_ASSERT_FATAL(x && y && g && w && b && m && rs && dx && dw && db && ref && rdx && rdw && rdb);
	train_rng_fill_uniform(&rng, x, n, -2, 2);
	train_rng_fill_uniform(&rng, g, n, -1, 1);
	train_rng_fill_uniform(&rng, w, C, 0.5f, 1.5f);
	train_rng_fill_uniform(&rng, b, C, -1, 1);
	CU_ASSERT_EQUAL(train_layernorm_forward(y, m, rs, x, w, b, N, C, 1e-5f), TRAIN_OK);
	for (int r = 0; r < N; r++) {
		const float *xr = x + (size_t)r * C;
		const float *gr = g + (size_t)r * C;
		double mu = 0, var = 0, sd = 0, sdx = 0;
		for (int c = 0; c < C; c++)
			mu += xr[c] / (double)C;
		for (int c = 0; c < C; c++)
			var += (xr[c] - mu) * (xr[c] - mu) / C;
		double rstd = 1 / sqrt(var + 1e-5);
		for (int c = 0; c < C; c++) {
			double xh = (xr[c] - mu) * rstd, d = (double)gr[c] * w[c];
			ref[(size_t)r * C + c] = xh * w[c] + b[c];
			sd += d, sdx += d * xh;
			rdw[c] += gr[c] * xh, rdb[c] += gr[c];
		}
		for (int c = 0; c < C; c++) {
			double xh = (xr[c] - mu) * rstd, d = (double)gr[c] * w[c];
			rdx[(size_t)r * C + c] = rstd * (d - sd / C - xh * sdx / C);
		}
	}
	CU_ASSERT(close_to_d("big layernorm", y, ref, n));
	memset(dx, 0, n * sizeof *dx);
	memset(dw, 0, C * sizeof *dw);
	memset(db, 0, C * sizeof *db);
	CU_ASSERT_EQUAL(train_layernorm_backward(dx, dw, db, g, x, w, m, rs, N, C), TRAIN_OK);
	CU_ASSERT(close_to_d("big layernorm dinp", dx, rdx, n));
	CU_ASSERT(close_to_d("big layernorm dw", dw, rdw, (size_t)C));
	CU_ASSERT(close_to_d("big layernorm db", db, rdb, (size_t)C));
	/* backward adds */
	float *dx2 = malloc(n * sizeof *dx2);
	CU_ASSERT_FATAL(dx2 != NULL);
	memcpy(dx2, dx, n * sizeof *dx2);
	CU_ASSERT_EQUAL(train_layernorm_backward(dx2, NULL, NULL, g, x, w, m, rs, N, C), TRAIN_OK);
	CU_ASSERT(grads_match(dx2, dx, n, 2.0));
	free(dx2);
	free(x), free(y), free(g), free(w), free(b), free(m), free(rs), free(dx), free(dw), free(db);
	free(ref), free(rdx), free(rdw), free(rdb);
}

/* Attention forward and backward in double from the definition (any T):
 * out (B, T, C) and dqkv (B, T, 3C) for dout, with the layer's masks and
 * its rule that a query seeing no key gets zero. */
static void attention_ref_full(double *out, double *dqkv, const float *qkv, const float *dout,
                               const uint8_t *km, int B, int T, int C, int NH, int causal)
{
	int HS = C / NH, C3 = 3 * C;
	double *p = malloc((size_t)T * sizeof *p), *dp = malloc((size_t)T * sizeof *dp);
	if (!p || !dp)
		abort();
	memset(dqkv, 0, (size_t)B * T * C3 * sizeof *dqkv);
	double sc = 1 / sqrt(HS);
	for (int b = 0; b < B; b++)
		for (int h = 0; h < NH; h++)
			for (int t = 0; t < T; t++) {
				const float *q = qkv + ((size_t)b * T + t) * C3 + h * HS;
				double m = -INFINITY, sum = 0;
				for (int s = 0; s < T; s++) {
					const float *k = qkv + ((size_t)b * T + s) * C3 + C + h * HS;
					int vis = (!causal || s <= t) && (!km || km[b * T + s]);
					double dd = 0;
					for (int i = 0; i < HS; i++)
						dd += (double)q[i] * k[i];
					p[s] = vis ? dd * sc : -INFINITY;
					m = fmax(m, p[s]);
				}
				for (int s = 0; s < T; s++) {
					p[s] = m == -INFINITY || p[s] == -INFINITY ? 0 : exp(p[s] - m);
					sum += p[s];
				}
				for (int s = 0; s < T; s++)
					p[s] = sum > 0 ? p[s] / sum : 0;
				const float *g = dout + ((size_t)b * T + t) * C + h * HS;
				double pd = 0;
				for (int s = 0; s < T; s++) {
					const float *v = qkv + ((size_t)b * T + s) * C3 + 2 * C + h * HS;
					double *dv = dqkv + ((size_t)b * T + s) * C3 + 2 * C + h * HS;
					dp[s] = 0;
					for (int i = 0; i < HS; i++) {
						dp[s] += (double)g[i] * v[i];
						dv[i] += p[s] * g[i];
					}
					pd += p[s] * dp[s];
				}
				for (int i = 0; i < HS; i++) {
					double o = 0;
					for (int s = 0; s < T; s++)
						o += p[s] * qkv[((size_t)b * T + s) * C3 + 2 * C + h * HS + i];
					out[((size_t)b * T + t) * C + h * HS + i] = o;
				}
				double *dq = dqkv + ((size_t)b * T + t) * C3 + h * HS;
				for (int s = 0; s < T; s++) {
					double ds = p[s] * (dp[s] - pd) * sc;
					const float *k = qkv + ((size_t)b * T + s) * C3 + C + h * HS;
					double *dk = dqkv + ((size_t)b * T + s) * C3 + C + h * HS;
					for (int i = 0; i < HS; i++) {
						dq[i] += ds * k[i];
						dk[i] += ds * q[i];
					}
				}
			}
	free(p);
	free(dp);
}

/* near_bf16's bound against a double reference: 2^-7 (|ref| + max |ref|) */
static int close_to_bf16(const char *what, const float *a, const double *ref, size_t n)
{
	double scale = 0;
	for (size_t i = 0; i < n; i++)
		scale = fmax(scale, fabs(ref[i]));
	for (size_t i = 0; i < n; i++)
		if (!(fabs(a[i] - ref[i]) <= 0x1p-7 * (fabs(ref[i]) + scale))) {
			fprintf(stderr, "%s[%zu] (bf16): %.9g, reference %.9g\n", what, i, a[i], ref[i]);
			return 0;
		}
	return 1;
}

static void check_big_attention(int B, int T, int C, int NH, int causal, int masked)
{
	size_t BT = (size_t)B * T, n_qkv = BT * 3 * C, n_out = BT * C;
	float *qkv = malloc(n_qkv * sizeof *qkv), *out = malloc(n_out * sizeof *out);
	float *att = malloc((size_t)B * NH * T * T * sizeof *att), *dout = malloc(n_out * sizeof *dout);
	float *dqkv = malloc(n_qkv * sizeof *dqkv), *dqkv0 = malloc(n_qkv * sizeof *dqkv0);
	double *ref = malloc(n_out * sizeof *ref), *dref = malloc(n_qkv * sizeof *dref);
	uint8_t *km = masked ? malloc(BT) : NULL;
	CU_ASSERT_FATAL(qkv && out && att && dout && dqkv && dqkv0 && ref && dref && (km || !masked));
	train_rng_fill_uniform(&rng, qkv, n_qkv, -1.5f, 1.5f);
	train_rng_fill_uniform(&rng, dout, n_out, -1, 1);
	if (km) {
		/* random padding, a sequence of padding, one padded at the start */
		for (size_t i = 0; i < BT; i++)
			km[i] = irand(0, 4) != 0;
		memset(km + (size_t)(B - 1) * T, 0, (size_t)T);
		memset(km, 0, (size_t)(T / 3));
	}
	CU_ASSERT_EQUAL(train_attention_forward(out, att, qkv, km, B, T, C, NH, causal), TRAIN_OK);
	memset(dqkv, 0, n_qkv * sizeof *dqkv);
	CU_ASSERT_EQUAL(train_attention_backward(dqkv, dout, qkv, att, B, T, C, NH), TRAIN_OK);
	memcpy(dqkv0, dqkv, n_qkv * sizeof *dqkv);
	CU_ASSERT_EQUAL(train_attention_backward(dqkv0, dout, qkv, att, B, T, C, NH), TRAIN_OK);
	CU_ASSERT(grads_match(dqkv0, dqkv, n_qkv, 2.0)); /* adds */
	attention_ref_full(ref, dref, qkv, dout, km, B, T, C, NH, causal);
	char what[96];
	snprintf(what, sizeof what, "attention B=%d T=%d C=%d NH=%d causal=%d masked=%d", B, T, C,
	         NH, causal, masked);
	if (train_kernels_precision() == TRAIN_PRECISION_BF16) {
		CU_ASSERT(close_to_bf16(what, out, ref, n_out));
		CU_ASSERT(close_to_bf16(what, dqkv, dref, n_qkv));
	} else {
		CU_ASSERT(close_to_d(what, out, ref, n_out));
		CU_ASSERT(close_to_d(what, dqkv, dref, n_qkv));
	}
	/* masked entries of att exactly 0 */
	int zeros = 1;
	for (int b = 0; b < B; b++)
		for (int h = 0; h < NH; h++)
			for (int t = 0; t < T; t++)
				for (int s = 0; s < T; s++)
					if ((causal && s > t) || (km && !km[b * T + s]))
						zeros &= att[(((size_t)b * NH + h) * T + t) * T + s] == 0.0f;
	CU_ASSERT(zeros);
	free(qkv), free(out), free(att), free(dout), free(dqkv), free(dqkv0), free(ref), free(dref);
	free(km);
}

static void test_big_attention(void)
{
	check_big_attention(3, 37, 24, 3, 0, 0);
	check_big_attention(3, 37, 24, 3, 1, 1);
	check_big_attention(2, 64, 32, 4, 0, 1);
	/* more (T, T) matrices than one chunk of backward's scratch (4M
	 * floats): B = 5 sequences of 4 heads x 512 x 512 go 4 + 1 */
	check_big_attention(5, 512, 8, 4, 1, 1);
	/* bf16 (emulated where the CPU lacks it): products read pinned bf16
	 * copies of qkv, dout and the score gradients */
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(1, TRAIN_PRECISION_BF16), TRAIN_OK);
	check_big_attention(3, 37, 24, 3, 1, 1);
	check_big_attention(2, 64, 32, 4, 0, 0);
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(1, TRAIN_PRECISION_FP32), TRAIN_OK);
}

/* ---------------------------------------------------------------------------
 * Bad arguments
 */

static void test_errors(void)
{
	float f[64] = {0}, g[64] = {0};
	int32_t ids[4] = {0, 1, 2, 3};
	uint8_t m[64] = {0};
	train_rng r;
	train_rng_seed(&r, 1);

	CU_ASSERT_EQUAL(train_linear_forward(f, g, g, NULL, 0, 2, 2), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_linear_forward(f, g, g, NULL, 2, -1, 2), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_linear_forward(f, NULL, g, NULL, 2, 2, 2), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_linear_backward(f, f, f, g, g, g, 2, 2, 0), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_linear_backward(f, NULL, NULL, g, g, NULL, 2, 2, 2), TRAIN_EINVAL);

	CU_ASSERT_EQUAL(train_embedding_forward(f, ids, g, 4, 2, 3), TRAIN_EINVAL); /* id 3 >= V */
	ids[3] = -1;
	CU_ASSERT_EQUAL(train_embedding_backward(f, g, ids, 4, 2, 5), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_embedding_forward(f, ids, g, 3, 2, 3), TRAIN_OK);

	CU_ASSERT_EQUAL(train_layernorm_forward(f, g, g, g, g, NULL, 2, 0, 1e-5f), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_layernorm_forward(f, g, g, g, g, NULL, 2, 2, -1.0f), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_layernorm_forward(f, g, g, g, NULL, NULL, 2, 2, 1e-5f), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_layernorm_backward(f, f, f, g, g, g, g, g, 0, 2), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_rmsnorm_forward(f, g, g, g, -3, 2, 1e-6f), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_rmsnorm_forward(f, g, g, g, 2, 2, NAN), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_rmsnorm_backward(f, f, g, g, g, NULL, 2, 2), TRAIN_EINVAL);

	CU_ASSERT_EQUAL(train_gelu_forward(NULL, g, 4), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_gelu_forward(NULL, NULL, 0), TRAIN_OK); /* nothing to do */
	CU_ASSERT_EQUAL(train_silu_backward(f, NULL, g, 4), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_relu_backward(f, g, NULL, 4), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_residual_forward(f, g, NULL, 4), TRAIN_EINVAL);

	CU_ASSERT_EQUAL(train_softmax_forward(f, g, 2, 0), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_softmax_backward(f, g, NULL, 2, 2), TRAIN_EINVAL);
	int32_t t[2] = {0, 2};
	CU_ASSERT_EQUAL(train_cross_entropy_forward(f, f, f, g, t, 2, 2, 0.0f), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_cross_entropy_backward(f, g, t, 2, 2, 0.0f, 1.0f), TRAIN_EINVAL);
	t[1] = 1;
	CU_ASSERT_EQUAL(train_cross_entropy_forward(f, f, f, g, t, 2, 2, 1.5f), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_cross_entropy_forward(f, f, f, g, t, 2, 2, -0.1f), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_cross_entropy_forward(f, f, f, g, t, 0, 2, 0.0f), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_cross_entropy_backward(f, g, t, 2, 2, 2.0f, 1.0f), TRAIN_EINVAL);

	CU_ASSERT_EQUAL(train_dropout_forward(f, m, g, 8, 1.5f, &r), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_dropout_forward(f, m, g, 8, 0.5f, NULL), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_dropout_forward(f, NULL, g, 8, 0.5f, &r), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_dropout_backward(f, g, NULL, 8, 0.5f), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_dropout_backward(f, g, m, 8, -0.5f), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_dropout_forward(NULL, NULL, NULL, 0, 0.0f, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(train_dropout_backward(NULL, NULL, NULL, 0, 0.5f), TRAIN_OK);
	CU_ASSERT_EQUAL(train_residual_backward(f, f, NULL, 0), TRAIN_OK);

	/* C % NH, sizes, missing buffers */
	CU_ASSERT_EQUAL(train_attention_forward(f, g, g, NULL, 1, 2, 5, 2, 0), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_attention_forward(f, g, g, NULL, 0, 2, 4, 2, 0), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_attention_forward(f, g, g, NULL, 1, 0, 4, 2, 0), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_attention_forward(f, NULL, g, NULL, 1, 2, 4, 2, 0), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_attention_backward(f, g, g, g, 1, 2, 6, 4), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_attention_backward(f, g, g, g, 1, 2, 4, 0), TRAIN_EINVAL);

	CU_ASSERT_EQUAL(train_conv1d_causal_forward(f, g, g, NULL, 1, 2, 3, 0), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_conv1d_causal_backward(f, f, f, g, g, g, 1, -2, 3, 2), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_conv1d_causal_backward(f, NULL, NULL, g, g, NULL, 1, 2, 3, 2),
	                TRAIN_EINVAL);
}

/* ---------------------------------------------------------------------------
 * PyTorch references (tests/fixtures/nn_reference.safetensors)
 */

static train_safetensors *fixture;

static const char *fixture_path(void)
{
	static char path[1024];
	const char *dir = getenv("top_srcdir");
	snprintf(path, sizeof path, "%s/tests/fixtures/nn_reference.safetensors",
	         dir && *dir ? dir : ".");
	return path;
}

/* A tensor of the fixture, or NULL (a failed assertion) if it is missing. */
static const void *fx(const char *name, train_dtype dt, int64_t *shape)
{
	train_tensor t;
	if (train_safetensors_get(fixture, name, &t) != TRAIN_OK || t.dtype != dt) {
		fprintf(stderr, "fixture: no %s tensor %s\n", train_dtype_name(dt), name);
		CU_FAIL("fixture tensor missing");
		return NULL;
	}
	if (shape)
		for (int i = 0; i < TRAIN_MAX_DIMS; i++)
			shape[i] = i < t.ndim ? t.shape[i] : 1;
	return t.data;
}

static const float *fxf(const char *name, int64_t *shape)
{
	return fx(name, TRAIN_F32, shape);
}

/* ours against a reference tensor, the REF_* tolerance */
static int matches(const char *what, const float *ours, const char *ref_name, size_t n)
{
	int64_t shape[TRAIN_MAX_DIMS];
	const float *ref = fxf(ref_name, shape);
	if (!ref)
		return 0;
	if ((size_t)(shape[0] * shape[1] * shape[2] * shape[3]) != n) {
		fprintf(stderr, "%s: %s has the wrong size\n", what, ref_name);
		return 0;
	}
	double scale = maxabs(ref, n);
	for (size_t i = 0; i < n; i++)
		if (!(fabs(ours[i] - ref[i]) <= REF_RTOL * fabs(ref[i]) + REF_ATOL * scale)) {
			fprintf(stderr, "%s[%zu]: ours %.9g, PyTorch %.9g\n", what, i, ours[i], ref[i]);
			return 0;
		}
	return 1;
}

static void test_pytorch_reference(void)
{
	train_error err = {0};
	int rc = train_safetensors_open(fixture_path(), &fixture, &err);
	if (rc != TRAIN_OK)
		fprintf(stderr, "%s: %s\n", fixture_path(), err.text);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	float *a = calloc(4096, sizeof *a), *b = calloc(4096, sizeof *b), *c = calloc(4096, sizeof *c);
	float *d = calloc(4096, sizeof *d), *e = calloc(4096, sizeof *e);
	CU_ASSERT_FATAL(a && b && c && d && e);
#define ZERO() (memset(b, 0, 4096 * sizeof *b), memset(c, 0, 4096 * sizeof *c), \
		memset(d, 0, 4096 * sizeof *d))
	int64_t s[TRAIN_MAX_DIMS], s2[TRAIN_MAX_DIMS];

	/* linear */
	const float *x = fxf("linear.inp", s), *w = fxf("linear.w", s2);
	const float *bias = fxf("linear.b", NULL), *R = fxf("linear.R", NULL);
	if (x && w && bias && R) {
		int N = (int)s[0], C = (int)s[1], OC = (int)s2[0];
		CU_ASSERT_EQUAL(train_linear_forward(a, x, w, bias, N, C, OC), TRAIN_OK);
		CU_ASSERT(matches("linear.out", a, "linear.out", (size_t)N * OC));
		ZERO();
		CU_ASSERT_EQUAL(train_linear_backward(b, c, d, R, x, w, N, C, OC), TRAIN_OK);
		CU_ASSERT(matches("linear.dinp", b, "linear.dinp", (size_t)N * C));
		CU_ASSERT(matches("linear.dw", c, "linear.dw", (size_t)OC * C));
		CU_ASSERT(matches("linear.db", d, "linear.db", (size_t)OC));
	}

	/* layer norm (eps as in the script) */
	x = fxf("layernorm.inp", s), w = fxf("layernorm.w", NULL);
	bias = fxf("layernorm.b", NULL), R = fxf("layernorm.R", NULL);
	if (x && w && bias && R) {
		int N = (int)s[0], C = (int)s[1];
		float *mean = e, *rstd = e + N;
		CU_ASSERT_EQUAL(train_layernorm_forward(a, mean, rstd, x, w, bias, N, C, 1e-5f), TRAIN_OK);
		CU_ASSERT(matches("layernorm.out", a, "layernorm.out", (size_t)N * C));
		CU_ASSERT(matches("layernorm.mean", mean, "layernorm.mean", (size_t)N));
		CU_ASSERT(matches("layernorm.rstd", rstd, "layernorm.rstd", (size_t)N));
		ZERO();
		CU_ASSERT_EQUAL(train_layernorm_backward(b, c, d, R, x, w, mean, rstd, N, C), TRAIN_OK);
		CU_ASSERT(matches("layernorm.dinp", b, "layernorm.dinp", (size_t)N * C));
		CU_ASSERT(matches("layernorm.dw", c, "layernorm.dw", (size_t)C));
		CU_ASSERT(matches("layernorm.db", d, "layernorm.db", (size_t)C));
	}

	/* RMS norm (eps 1e-6) */
	x = fxf("rmsnorm.inp", s), w = fxf("rmsnorm.w", NULL), R = fxf("rmsnorm.R", NULL);
	if (x && w && R) {
		int N = (int)s[0], C = (int)s[1];
		CU_ASSERT_EQUAL(train_rmsnorm_forward(a, e, x, w, N, C, 1e-6f), TRAIN_OK);
		CU_ASSERT(matches("rmsnorm.out", a, "rmsnorm.out", (size_t)N * C));
		CU_ASSERT(matches("rmsnorm.rstd", e, "rmsnorm.rstd", (size_t)N));
		ZERO();
		CU_ASSERT_EQUAL(train_rmsnorm_backward(b, c, R, x, w, e, N, C), TRAIN_OK);
		CU_ASSERT(matches("rmsnorm.dinp", b, "rmsnorm.dinp", (size_t)N * C));
		CU_ASSERT(matches("rmsnorm.dw", c, "rmsnorm.dw", (size_t)C));
	}

	/* GELU and SiLU */
	static const struct {
		const char *name;
		act_fwd_fn f;
		act_bwd_fn b;
	} acts[] = {{"gelu", train_gelu_forward, train_gelu_backward},
	            {"silu", train_silu_forward, train_silu_backward}};
	for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) {
		char nx[32], nR[32], no[32], nd[32];
		snprintf(nx, sizeof nx, "%s.inp", acts[i].name);
		snprintf(nR, sizeof nR, "%s.R", acts[i].name);
		snprintf(no, sizeof no, "%s.out", acts[i].name);
		snprintf(nd, sizeof nd, "%s.dinp", acts[i].name);
		x = fxf(nx, s), R = fxf(nR, NULL);
		if (!x || !R)
			continue;
		size_t n = (size_t)s[0];
		CU_ASSERT_EQUAL(acts[i].f(a, x, n), TRAIN_OK);
		CU_ASSERT(matches(no, a, no, n));
		ZERO();
		CU_ASSERT_EQUAL(acts[i].b(b, x, R, n), TRAIN_OK);
		CU_ASSERT(matches(nd, b, nd, n));
	}

	/* softmax */
	x = fxf("softmax.inp", s), R = fxf("softmax.R", NULL);
	if (x && R) {
		int N = (int)s[0], C = (int)s[1];
		CU_ASSERT_EQUAL(train_softmax_forward(a, x, N, C), TRAIN_OK);
		CU_ASSERT(matches("softmax.out", a, "softmax.out", (size_t)N * C));
		ZERO();
		CU_ASSERT_EQUAL(train_softmax_backward(b, a, R, N, C), TRAIN_OK);
		CU_ASSERT(matches("softmax.dinp", b, "softmax.dinp", (size_t)N * C));
	}

	/* cross-entropy, label smoothing 0.1 and 0, ignored rows */
	x = fxf("xent.logits", s);
	const int32_t *targets = fx("xent.targets", TRAIN_I32, NULL);
	if (x && targets) {
		int N = (int)s[0], C = (int)s[1];
		float mean = 0;
		CU_ASSERT_EQUAL(train_cross_entropy_forward(&mean, e, a, x, targets, N, C, 0.1f),
		                TRAIN_OK);
		CU_ASSERT(matches("xent.out", &mean, "xent.out", 1));
		CU_ASSERT(matches("xent.losses", e, "xent.losses", (size_t)N));
		CU_ASSERT(matches("xent.probs", a, "xent.probs", (size_t)N * C));
		ZERO();
		CU_ASSERT_EQUAL(train_cross_entropy_backward(b, a, targets, N, C, 0.1f, 1.0f), TRAIN_OK);
		CU_ASSERT(matches("xent.dlogits", b, "xent.dlogits", (size_t)N * C));
		CU_ASSERT_EQUAL(train_cross_entropy_forward(&mean, NULL, a, x, targets, N, C, 0.0f),
		                TRAIN_OK);
		CU_ASSERT(matches("xent.mean_nosmooth", &mean, "xent.mean_nosmooth", 1));
	}

	/* attention, without and with the causal mask; one sequence padded at
	 * the end, one all padding */
	const uint8_t *km = fx("attn.key_mask", TRAIN_U8, NULL);
	for (int causal = 0; causal <= 1 && km; causal++) {
		char name[32], ref[32];
		snprintf(name, sizeof name, "attn%d.qkv", causal);
		const float *qkv = fxf(name, s);
		snprintf(name, sizeof name, "attn%d.att", causal);
		int64_t sa[TRAIN_MAX_DIMS];
		const float *att_ref = fxf(name, sa);
		snprintf(name, sizeof name, "attn%d.R", causal);
		R = fxf(name, NULL);
		if (!qkv || !att_ref || !R)
			continue;
		int B = (int)s[0], T = (int)s[1], C = (int)s[2] / 3, NH = (int)sa[1];
		CU_ASSERT_EQUAL(train_attention_forward(a, e, qkv, km, B, T, C, NH, causal), TRAIN_OK);
		snprintf(ref, sizeof ref, "attn%d.out", causal);
		CU_ASSERT(matches(ref, a, ref, (size_t)B * T * C));
		snprintf(ref, sizeof ref, "attn%d.att", causal);
		CU_ASSERT(matches(ref, e, ref, (size_t)B * NH * T * T));
		ZERO();
		CU_ASSERT_EQUAL(train_attention_backward(b, R, qkv, e, B, T, C, NH), TRAIN_OK);
		snprintf(ref, sizeof ref, "attn%d.dqkv", causal);
		CU_ASSERT(matches(ref, b, ref, (size_t)B * T * 3 * C));
	}

	/* depthwise causal conv1d */
	x = fxf("conv1d.inp", s), w = fxf("conv1d.w", s2);
	bias = fxf("conv1d.bias", NULL), R = fxf("conv1d.R", NULL);
	if (x && w && bias && R) {
		int B = (int)s[0], T = (int)s[1], C = (int)s[2], K = (int)s2[1];
		CU_ASSERT_EQUAL(train_conv1d_causal_forward(a, x, w, bias, B, T, C, K), TRAIN_OK);
		CU_ASSERT(matches("conv1d.out", a, "conv1d.out", (size_t)B * T * C));
		ZERO();
		CU_ASSERT_EQUAL(train_conv1d_causal_backward(b, c, d, R, x, w, B, T, C, K), TRAIN_OK);
		CU_ASSERT(matches("conv1d.dinp", b, "conv1d.dinp", (size_t)B * T * C));
		CU_ASSERT(matches("conv1d.dw", c, "conv1d.dw", (size_t)C * K));
		CU_ASSERT(matches("conv1d.dbias", d, "conv1d.dbias", (size_t)C));
	}
#undef ZERO
	free(a), free(b), free(c), free(d), free(e);
	train_safetensors_close(fixture);
	fixture = NULL;
}

/*
 * The matmul layers under bf16 (emulated where the CPU lacks it): operands
 * are rounded to 8 significant bits (relative error 2^-9 each), so a dot
 * product of K terms may be off by about 2 * 2^-9 * sum |a_k b_k|; the bound
 * used is 2^-7 * (|ref| + the tensor's largest |ref|), several times that
 * for these O(1) values, and far below a wrong layout or mask.
 */
static int near_bf16(const char *what, const float *ours, const char *ref_name, size_t n)
{
	const float *ref = fxf(ref_name, NULL);
	if (!ref)
		return 0;
	double scale = maxabs(ref, n);
	for (size_t i = 0; i < n; i++)
		if (!(fabs(ours[i] - ref[i]) <= 0x1p-7 * (fabs(ref[i]) + scale))) {
			fprintf(stderr, "%s[%zu] (bf16): ours %.9g, PyTorch %.9g\n", what, i, ours[i],
			        ref[i]);
			return 0;
		}
	return 1;
}

static void test_bf16(void)
{
	train_error err = {0};
	CU_ASSERT_EQUAL_FATAL(train_safetensors_open(fixture_path(), &fixture, &err), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(1, TRAIN_PRECISION_BF16), TRAIN_OK);
	float out[512], dqkv[512], att[512];
	int64_t s[TRAIN_MAX_DIMS], s2[TRAIN_MAX_DIMS], sa[TRAIN_MAX_DIMS];
	const float *x = fxf("linear.inp", s), *w = fxf("linear.w", s2), *b = fxf("linear.b", NULL);
	const float *R = fxf("linear.R", NULL);
	if (x && w && b && R) {
		int N = (int)s[0], C = (int)s[1], OC = (int)s2[0];
		CU_ASSERT_EQUAL(train_linear_forward(out, x, w, b, N, C, OC), TRAIN_OK);
		CU_ASSERT(near_bf16("linear.out", out, "linear.out", (size_t)N * OC));
		/* backward: both products read one bf16 copy of dout (a pin); the
		 * same values as one gradient at a time (no pin) */
		CU_ASSERT_FATAL((size_t)N * C <= 512 && (size_t)OC * C <= 512);
		float dinp[512] = {0}, dw[512] = {0}, db[512] = {0}, dinp1[512] = {0}, dw1[512] = {0};
		CU_ASSERT_EQUAL(train_linear_backward(dinp, dw, db, R, x, w, N, C, OC), TRAIN_OK);
		CU_ASSERT(near_bf16("linear.dinp", dinp, "linear.dinp", (size_t)N * C));
		CU_ASSERT(near_bf16("linear.dw", dw, "linear.dw", (size_t)OC * C));
		CU_ASSERT_EQUAL(train_linear_backward(dinp1, NULL, NULL, R, x, w, N, C, OC), TRAIN_OK);
		CU_ASSERT_EQUAL(train_linear_backward(NULL, dw1, NULL, R, x, w, N, C, OC), TRAIN_OK);
		int same = 1;
		for (int i = 0; i < N * C; i++)
			same &= fabsf(dinp[i] - dinp1[i]) <= 1e-6f * (1 + fabsf(dinp1[i]));
		for (int i = 0; i < OC * C; i++)
			same &= fabsf(dw[i] - dw1[i]) <= 1e-6f * (1 + fabsf(dw1[i]));
		CU_ASSERT(same);
	}
	const uint8_t *km = fx("attn.key_mask", TRAIN_U8, NULL);
	const float *qkv = fxf("attn1.qkv", s);
	R = fxf("attn1.R", NULL);
	if (km && qkv && R && fxf("attn1.att", sa)) {
		int B = (int)s[0], T = (int)s[1], C = (int)s[2] / 3, NH = (int)sa[1];
		CU_ASSERT_FATAL((size_t)B * T * 3 * C <= 512 && (size_t)B * NH * T * T <= 512);
		CU_ASSERT_EQUAL(train_attention_forward(out, att, qkv, km, B, T, C, NH, 1), TRAIN_OK);
		CU_ASSERT(near_bf16("attn1.out", out, "attn1.out", (size_t)B * T * C));
		memset(dqkv, 0, sizeof dqkv);
		CU_ASSERT_EQUAL(train_attention_backward(dqkv, R, qkv, att, B, T, C, NH), TRAIN_OK);
		CU_ASSERT(near_bf16("attn1.dqkv", dqkv, "attn1.dqkv", (size_t)B * T * 3 * C));
	}
	CU_ASSERT_EQUAL(train_kernels_init(1, TRAIN_PRECISION_FP32), TRAIN_OK);
	train_safetensors_close(fixture);
	fixture = NULL;
}

static const test_case cases[] = {
	{"linear gradients", test_linear_grad},
	{"embedding gradients", test_embedding_grad},
	{"layer norm gradients", test_layernorm_grad},
	{"RMS norm gradients", test_rmsnorm_grad},
	{"activation gradients", test_activation_grad},
	{"residual gradients", test_residual_grad},
	{"softmax gradients", test_softmax_grad},
	{"cross-entropy gradients", test_cross_entropy_grad},
	{"dropout gradients", test_dropout_grad},
	{"attention gradients and masks", test_attention_grad},
	{"conv1d gradients", test_conv1d_grad},
	{"linear values", test_linear_values},
	{"cross-entropy values", test_cross_entropy_values},
	{"dropout values", test_dropout_values},
	{"layer norm values", test_layernorm_values},
	{"bad arguments", test_errors},
	{"PyTorch references", test_pytorch_reference},
	{"bf16 matmuls", test_bf16},
	{"oneDNN-sized activations", test_big_activations},
	{"oneDNN-sized residual", test_big_residual},
	{"oneDNN-sized softmax", test_big_softmax},
	{"oneDNN-sized layer norm", test_big_layernorm},
	{"attention at larger sizes", test_big_attention},
	{NULL, NULL},
};

int main(void)
{
	if (train_kernels_init(1, TRAIN_PRECISION_FP32) != TRAIN_OK) {
		fprintf(stderr, "no oneDNN CPU engine\n");
		return 1;
	}
	train_rng_seed(&rng, 20240605);
	return test_main("nn", cases);
}
