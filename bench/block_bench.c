/*
 * block_bench.c - one post-LN transformer encoder block, forward + backward
 * + AdamW, timed per step with libtrain's layers.
 *
 * The block is torch.nn.TransformerEncoderLayer(256, 4, 1024, dropout=0,
 * activation='gelu', batch_first=True) in training mode (norm_first=False):
 *
 *     qkv = x Wqkv^T + bqkv            (N, 3C)   N = B*T
 *     a   = attention(qkv)             (N, C)    4 heads, not causal
 *     h1  = LN1(x + a Wo^T + bo)       (N, C)
 *     y   = LN2(h1 + gelu(h1 W1^T + b1) W2^T + b2)
 *
 * on a (16, 128, 256) batch.  The loss is sum(y * R) for a fixed random R,
 * so backward starts from dy = R; the input needs no gradient (the
 * PyTorch side, bench/block_torch.py, does the same).  A step is: zero the
 * gradients, forward, backward, one AdamW step over all parameters.
 *
 * Memory follows libtrain's layout: parameters, gradients and AdamW
 * moments in one arena each (one allocation, tensors pointing into it),
 * and every activation and activation-gradient buffer carved once before
 * the loop and reused by every step, so a step allocates nothing.  The
 * parameter block is registered with train_kernels_weights_register, so
 * that bf16 matmuls convert the weights once per step (after AdamW).
 *
 * usage: block_bench [--threads N] [--steps N] [--warmup N]
 *                    [--mode fp32|bf16|both] [--ops]
 * Prints a table (median, min, max ms per step and steps/s per precision),
 * with --ops the mean time of each layer call, and one
 * "ours-<mode> steps/s X" line per mode.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <train/kernels.h>
#include <train/nn.h>
#include <train/optim.h>
#include <train/tensor.h>

/* B batch, T time, C width, NH heads, FF hidden width of the FFN. */
enum { B = 16, T = 128, C = 256, NH = 4, FF = 1024, N = B * T };

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---------------------------------------------------------------------------
 * Parameters: sizes, then one allocation pointed into (as llm.c does). */

enum { P_WQKV, P_BQKV, P_WO, P_BO, P_LN1W, P_LN1B, P_W1, P_B1, P_W2, P_B2, P_LN2W, P_LN2B, NPARAM };

static const size_t param_sizes[NPARAM] = {
	3 * C * C, 3 * C, /* in_proj (3C, C), (3C) */
	C * C, C,         /* out_proj (C, C), (C) */
	C, C,             /* norm1 */
	FF * C, FF,       /* linear1 (FF, C), (FF) */
	C * FF, C,        /* linear2 (C, FF), (C) */
	C, C,             /* norm2 */
};

typedef struct block {
	train_arena *pa, *ga, *oa, *act;
	size_t n;                /* parameter count */
	float *params, *grads, *m, *v;
	float *p[NPARAM], *g[NPARAM];

	/* activations, kept for backward */
	float *x;                /* (N, C) input */
	float *qkv;              /* (N, 3C) */
	float *att;              /* (B, NH, T, T) */
	float *atty;             /* (N, C) attention output, before out_proj */
	float *r1;               /* (N, C) x + out_proj(atty) */
	float *h1;               /* (N, C) LN1 */
	float *mean1, *rstd1;    /* (N) */
	float *f1;               /* (N, FF) linear1 */
	float *gl;               /* (N, FF) gelu */
	float *r2;               /* (N, C) h1 + linear2(gl) */
	float *y;                /* (N, C) LN2, the output */
	float *mean2, *rstd2;    /* (N) */
	float *dy;               /* (N, C) R, the loss gradient */
	float *sa, *f2;          /* (N, C) projections before the residual adds */

	/* activation gradients (backward adds, so each is cleared per step) */
	float *dr2;              /* (N, C) */
	float *dh1;              /* (N, C) */
	float *dgl;              /* (N, FF) */
	float *df1;              /* (N, FF) */
	float *dr1;              /* (N, C) */
	float *datty;            /* (N, C) */
	float *dqkv;             /* (N, 3C) */
} block;

/* Per-op timing (with --ops). */
enum { OP_ZERO, OP_QKV, OP_ATT, OP_PROJ, OP_RES, OP_LN, OP_FC1, OP_GELU, OP_FC2,
       OP_LN_B, OP_FC2_B, OP_GELU_B, OP_FC1_B, OP_PROJ_B, OP_ATT_B, OP_QKV_B, OP_ADAMW, NOPS };
static const char *const op_names[NOPS] = {
	"zero grads", "qkv linear", "attention", "out_proj", "residuals", "layernorms",
	"linear1", "gelu", "linear2",
	"layernorms bwd", "linear2 bwd", "gelu bwd", "linear1 bwd", "out_proj bwd",
	"attention bwd", "qkv linear bwd", "adamw",
};
static double op_time[NOPS];
static int op_timing;

#define CHECK(call)                                                                      \
	do {                                                                             \
		int rc_ = (call);                                                        \
		if (rc_ != 0) {                                                          \
			fprintf(stderr, "block_bench: %s: %s\n", #call, train_strerror(rc_)); \
			exit(1);                                                         \
		}                                                                        \
	} while (0)

#define OP(id, call)                                    \
	do {                                            \
		double t0_ = op_timing ? now() : 0.0;   \
		CHECK(call);                            \
		if (op_timing)                          \
			op_time[id] += now() - t0_;     \
	} while (0)

static float *carve(train_arena *a, size_t count)
{
	float *p = train_arena_alloc(a, count * sizeof(float));
	if (!p) {
		fprintf(stderr, "block_bench: out of memory\n");
		exit(1);
	}
	return p;
}

static void block_init(block *k, uint64_t seed)
{
	memset(k, 0, sizeof *k);
	for (int i = 0; i < NPARAM; i++)
		k->n += param_sizes[i];
	size_t bytes = k->n * sizeof(float);
	CHECK(train_arena_create(bytes, &k->pa));
	CHECK(train_arena_create(bytes, &k->ga));
	CHECK(train_arena_create(2 * bytes, &k->oa));
	CHECK(train_arena_create(0, &k->act));
	k->params = carve(k->pa, k->n);
	k->grads = carve(k->ga, k->n);
	k->m = carve(k->oa, k->n);
	k->v = carve(k->oa, k->n);
	size_t off = 0;
	for (int i = 0; i < NPARAM; i++) {
		k->p[i] = k->params + off;
		k->g[i] = k->grads + off;
		off += param_sizes[i];
	}

	/* Initialisation as PyTorch's (the values do not change the timing). */
	train_rng rng;
	train_rng_seed(&rng, seed);
	float xav = sqrtf(6.0f / (float)(C + 3 * C));
	train_rng_fill_uniform(&rng, k->p[P_WQKV], param_sizes[P_WQKV], -xav, xav);
	float kc = 1.0f / sqrtf((float)C), kf = 1.0f / sqrtf((float)FF);
	train_rng_fill_uniform(&rng, k->p[P_WO], param_sizes[P_WO], -kc, kc);
	train_rng_fill_uniform(&rng, k->p[P_W1], param_sizes[P_W1], -kc, kc);
	train_rng_fill_uniform(&rng, k->p[P_B1], param_sizes[P_B1], -kc, kc);
	train_rng_fill_uniform(&rng, k->p[P_W2], param_sizes[P_W2], -kf, kf);
	train_rng_fill_uniform(&rng, k->p[P_B2], param_sizes[P_B2], -kf, kf);
	for (int i = 0; i < C; i++)
		k->p[P_LN1W][i] = k->p[P_LN2W][i] = 1.0f;

	k->x = carve(k->act, (size_t)N * C);
	k->qkv = carve(k->act, (size_t)N * 3 * C);
	k->att = carve(k->act, (size_t)B * NH * T * T);
	k->atty = carve(k->act, (size_t)N * C);
	k->sa = carve(k->act, (size_t)N * C);
	k->r1 = carve(k->act, (size_t)N * C);
	k->h1 = carve(k->act, (size_t)N * C);
	k->mean1 = carve(k->act, N);
	k->rstd1 = carve(k->act, N);
	k->f1 = carve(k->act, (size_t)N * FF);
	k->gl = carve(k->act, (size_t)N * FF);
	k->f2 = carve(k->act, (size_t)N * C);
	k->r2 = carve(k->act, (size_t)N * C);
	k->y = carve(k->act, (size_t)N * C);
	k->mean2 = carve(k->act, N);
	k->rstd2 = carve(k->act, N);
	k->dy = carve(k->act, (size_t)N * C);
	k->dr2 = carve(k->act, (size_t)N * C);
	k->dh1 = carve(k->act, (size_t)N * C);
	k->dgl = carve(k->act, (size_t)N * FF);
	k->df1 = carve(k->act, (size_t)N * FF);
	k->dr1 = carve(k->act, (size_t)N * C);
	k->datty = carve(k->act, (size_t)N * C);
	k->dqkv = carve(k->act, (size_t)N * 3 * C);
	train_rng_fill_normal(&rng, k->x, (size_t)N * C, 0.0f, 1.0f);
	train_rng_fill_normal(&rng, k->dy, (size_t)N * C, 0.0f, 1.0f);
}

static void block_free(block *k)
{
	train_arena_destroy(k->pa);
	train_arena_destroy(k->ga);
	train_arena_destroy(k->oa);
	train_arena_destroy(k->act);
}

static void block_step(block *k, const train_adamw_cfg *cfg, int64_t t)
{
	const float eps = 1e-5f; /* nn.LayerNorm's default */
	float *const *p = k->p, *const *g = k->g;
	double t0 = op_timing ? now() : 0.0;
	/* Backward adds: clear the parameter gradients and the activation
	 * gradients that are not overwritten first (dh1 is set by a copy). */
	memset(k->grads, 0, k->n * sizeof(float));
	memset(k->dr2, 0, (size_t)N * C * sizeof(float));
	memset(k->dgl, 0, (size_t)N * FF * sizeof(float));
	memset(k->df1, 0, (size_t)N * FF * sizeof(float));
	memset(k->dr1, 0, (size_t)N * C * sizeof(float));
	memset(k->datty, 0, (size_t)N * C * sizeof(float));
	memset(k->dqkv, 0, (size_t)N * 3 * C * sizeof(float));
	if (op_timing)
		op_time[OP_ZERO] += now() - t0;

	/* forward */
	OP(OP_QKV, train_linear_forward(k->qkv, k->x, p[P_WQKV], p[P_BQKV], N, C, 3 * C));
	OP(OP_ATT, train_attention_forward(k->atty, k->att, k->qkv, NULL, B, T, C, NH, 0));
	OP(OP_PROJ, train_linear_forward(k->sa, k->atty, p[P_WO], p[P_BO], N, C, C));
	OP(OP_RES, train_residual_forward(k->r1, k->x, k->sa, (size_t)N * C));
	OP(OP_LN, train_layernorm_forward(k->h1, k->mean1, k->rstd1, k->r1, p[P_LN1W], p[P_LN1B],
	                                  N, C, eps));
	OP(OP_FC1, train_linear_forward(k->f1, k->h1, p[P_W1], p[P_B1], N, C, FF));
	OP(OP_GELU, train_gelu_forward(k->gl, k->f1, (size_t)N * FF));
	OP(OP_FC2, train_linear_forward(k->f2, k->gl, p[P_W2], p[P_B2], N, FF, C));
	OP(OP_RES, train_residual_forward(k->r2, k->h1, k->f2, (size_t)N * C));
	OP(OP_LN, train_layernorm_forward(k->y, k->mean2, k->rstd2, k->r2, p[P_LN2W], p[P_LN2B],
	                                  N, C, eps));

	/* backward, from dy = R */
	OP(OP_LN_B, train_layernorm_backward(k->dr2, g[P_LN2W], g[P_LN2B], k->dy, k->r2,
	                                     p[P_LN2W], k->mean2, k->rstd2, N, C));
	/* r2 = h1 + f2: dr2 flows to both; df2 is dr2 itself, dh1 starts as it. */
	t0 = op_timing ? now() : 0.0;
	memcpy(k->dh1, k->dr2, (size_t)N * C * sizeof(float));
	if (op_timing)
		op_time[OP_RES] += now() - t0;
	OP(OP_FC2_B, train_linear_backward(k->dgl, g[P_W2], g[P_B2], k->dr2, k->gl, p[P_W2], N, FF,
	                                   C));
	OP(OP_GELU_B, train_gelu_backward(k->df1, k->f1, k->dgl, (size_t)N * FF));
	OP(OP_FC1_B, train_linear_backward(k->dh1, g[P_W1], g[P_B1], k->df1, k->h1, p[P_W1], N, C,
	                                   FF));
	OP(OP_LN_B, train_layernorm_backward(k->dr1, g[P_LN1W], g[P_LN1B], k->dh1, k->r1,
	                                     p[P_LN1W], k->mean1, k->rstd1, N, C));
	/* r1 = x + sa: dsa is dr1; x needs no gradient. */
	OP(OP_PROJ_B, train_linear_backward(k->datty, g[P_WO], g[P_BO], k->dr1, k->atty, p[P_WO],
	                                    N, C, C));
	OP(OP_ATT_B, train_attention_backward(k->dqkv, k->datty, k->qkv, k->att, B, T, C, NH));
	OP(OP_QKV_B, train_linear_backward(NULL, g[P_WQKV], g[P_BQKV], k->dqkv, k->x, p[P_WQKV], N,
	                                   C, 3 * C));

	t0 = op_timing ? now() : 0.0;
	train_adamw_step(cfg, k->params, k->grads, k->m, k->v, k->n, 1e-4f, t);
	/* the weights moved: their bf16 copies are stale */
	train_kernels_weights_changed(k->params);
	if (op_timing)
		op_time[OP_ADAMW] += now() - t0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

typedef struct result {
	double median, min, max;
} result;

static result run(train_precision prec, int threads, int steps, int warmup)
{
	CHECK(train_kernels_init(threads, prec));
	block k;
	block_init(&k, 1);
	/* bf16 matmuls read one bf16 copy of the weights per step */
	CHECK(train_kernels_weights_register(k.params, k.n));
	train_adamw_cfg cfg = train_adamw_defaults();
	double *times = calloc((size_t)steps, sizeof *times);
	if (!times)
		exit(1);
	memset(op_time, 0, sizeof op_time);
	int keep_timing = op_timing;
	for (int i = 0; i < warmup + steps; i++) {
		op_timing = keep_timing && i >= warmup;
		double t0 = now();
		block_step(&k, &cfg, i + 1);
		double dt = now() - t0;
		if (i >= warmup)
			times[i - warmup] = dt;
	}
	op_timing = keep_timing;
	/* A guard against timing a broken step: the output must be finite. */
	for (size_t i = 0; i < (size_t)N * C; i++)
		if (!isfinite(k.y[i])) {
			fprintf(stderr, "block_bench: non-finite output\n");
			exit(1);
		}
	qsort(times, (size_t)steps, sizeof *times, cmp_double);
	result r = { times[steps / 2], times[0], times[steps - 1] };
	if (steps % 2 == 0)
		r.median = 0.5 * (times[steps / 2 - 1] + times[steps / 2]);
	free(times);
	train_kernels_weights_unregister(k.params);
	block_free(&k);
	return r;
}

int main(int argc, char **argv)
{
	int threads = 2, steps = 20, warmup = 3;
	const char *mode = "both";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--steps") && i + 1 < argc)
			steps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
			warmup = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--mode") && i + 1 < argc)
			mode = argv[++i];
		else if (!strcmp(argv[i], "--ops"))
			op_timing = 1;
		else {
			fprintf(stderr, "usage: %s [--threads N] [--steps N] [--warmup N] "
			                "[--mode fp32|bf16|both] [--ops]\n", argv[0]);
			return 2;
		}
	}
	if (steps < 1 || warmup < 0 || threads < 1) {
		fprintf(stderr, "block_bench: bad --steps, --warmup or --threads\n");
		return 2;
	}
	int do32 = strcmp(mode, "bf16") != 0, do16 = strcmp(mode, "fp32") != 0;
	if (do16 && !train_cpu_has_bf16())
		fprintf(stderr, "block_bench: no native bf16 on this CPU: bf16 is emulated\n");

	size_t nparams = 0;
	for (int i = 0; i < NPARAM; i++)
		nparams += param_sizes[i];
	printf("libtrain block: B=%d T=%d C=%d heads=%d FF=%d, %zu parameters, %d threads, "
	       "median of %d steps after %d\n",
	       B, T, C, NH, FF, nparams, threads, steps, warmup);
	result r32 = { 0 }, r16 = { 0 };
	double ops32[NOPS] = { 0 }, ops16[NOPS] = { 0 };
	if (do32) {
		r32 = run(TRAIN_PRECISION_FP32, threads, steps, warmup);
		memcpy(ops32, op_time, sizeof ops32);
	}
	if (do16) {
		r16 = run(TRAIN_PRECISION_BF16, threads, steps, warmup);
		memcpy(ops16, op_time, sizeof ops16);
	}
	printf("%-14s %10s %10s %10s %10s\n", "ours", "median ms", "min ms", "max ms", "steps/s");
	if (do32)
		printf("%-14s %10.2f %10.2f %10.2f %10.2f\n", "fp32", r32.median * 1e3, r32.min * 1e3,
		       r32.max * 1e3, 1.0 / r32.median);
	if (do16)
		printf("%-14s %10.2f %10.2f %10.2f %10.2f\n", "bf16", r16.median * 1e3, r16.min * 1e3,
		       r16.max * 1e3, 1.0 / r16.median);
	if (op_timing) {
		printf("%-16s %10s %10s   (mean ms per step)\n", "op", "fp32", "bf16");
		for (int i = 0; i < NOPS; i++)
			printf("%-16s %10.2f %10.2f\n", op_names[i], ops32[i] * 1e3 / steps,
			       ops16[i] * 1e3 / steps);
	}
	if (do32)
		printf("ours-fp32 steps/s %.3f\n", 1.0 / r32.median);
	if (do16)
		printf("ours-bf16 steps/s %.3f\n", 1.0 / r16.median);
	return 0;
}
