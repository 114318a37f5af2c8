/*
 * test_optim.c - optimizers, clipping, schedules, gradient accumulation,
 * a small MLP that learns XOR, and checkpoints that resume bit for bit.
 *
 * Reference values come from PyTorch (tests/fixtures/make_optim_fixtures.py,
 * pasted below) or are derived by hand in the comments.  Tolerances:
 * optimizer results agree with PyTorch to 1e-6 relative (a few fp32 ulps:
 * PyTorch's vectorised kernels may round a scalar differently); accumulated
 * gradients agree with the one-batch gradient to 1e-5 relative (the sums
 * run in a different order); everything said to be deterministic is
 * compared bit for bit.  Matmuls are forced to fp32 on one thread.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <train/kernels.h>
#include <train/nn.h>
#include <train/optim.h>

#include "testlib.h"

/* ---------------------------------------------------------------------------
 * PyTorch references (tests/fixtures/make_optim_fixtures.py, torch 1.13).
 * Three steps from P0 with gradients G[0..2]. */

#define NP 7
static const float P0[NP] = { 0.5f, -1.25f, 2.0f, 0.0f, -0.3f, 0.75f, 1e-3f };
static const float G[3][NP] = {
	{ 0.1f, -0.2f, 0.3f, 0.05f, -1.5f, 0.0f, 2.0f },
	{ -0.4f, 0.25f, 0.3f, -0.05f, 0.5f, 1e-4f, -2.0f },
	{ 0.2f, 0.2f, -0.6f, 0.0f, 0.25f, -3.0f, 1.0f },
};

/* SGD(lr=0.1) */
static const float sgd_plain[NP] = { 0.51000005f, -1.27499998f, 2.0f, -2.04890965e-10f,
	                             -0.225000009f, 1.04998994f, -0.0989999995f };
/* SGD(lr=0.1, momentum=0.9, weight_decay=0.01) */
static const float sgd_mom_wd[NP] = { 0.52609539f, -1.25634456f, 1.91063356f, -0.00403600466f,
	                              -0.0123382788f, 1.04577708f, -0.260445803f };
/* AdamW(lr=1e-3) */
static const float adamw_default[NP] = { 0.49965468f, -1.24957037f, 1.99801552f,
	                                 -0.000906664296f, -0.298385143f, 0.749872208f,
	                                 -0.000122104335f };
/* AdamW(lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1) */
static const float adamw_custom[NP] = { 0.477639973f, -1.21839869f, 1.87899292f,
	                                -0.0399470031f, -0.221778676f, 0.735673666f,
	                                -0.0510469563f };
/* clip_grad_norm_(max_norm=1) of G[2] */
static const float clip_norm = 3.24075627f;
static const float clip_scaled[NP] = { 0.0617139712f, 0.0617139712f, -0.185141921f, 0.0f,
	                               0.0771424621f, -0.925709546f, 0.308569849f };

static int close_rel(float got, float want, float rel, float abs_tol)
{
	return fabsf(got - want) <= rel * fabsf(want) + abs_tol;
}

static void check_close(const float *got, const float *want, size_t n, float rel, float abs_tol,
                        const char *what)
{
	for (size_t i = 0; i < n; i++)
		if (!close_rel(got[i], want[i], rel, abs_tol)) {
			fprintf(stderr, "%s[%zu]: got %.9g, want %.9g\n", what, i, got[i], want[i]);
			CU_FAIL("value differs from the reference");
			return;
		}
	CU_PASS("close");
}

/* ---------------------------------------------------------------------------
 * Optimizers against PyTorch */

static void test_sgd(void)
{
	float p[NP], mom[NP] = { 0 };
	memcpy(p, P0, sizeof p);
	for (int t = 0; t < 3; t++)
		train_sgd_step(p, G[t], NULL, NP, 0.1f, 0.0f, 0.0f);
	check_close(p, sgd_plain, NP, 1e-6f, 1e-9f, "sgd");

	memcpy(p, P0, sizeof p);
	for (int t = 0; t < 3; t++)
		train_sgd_step(p, G[t], mom, NP, 0.1f, 0.9f, 0.01f);
	check_close(p, sgd_mom_wd, NP, 1e-6f, 1e-9f, "sgd momentum+wd");

	/* Hand-derived, one step: d = g + wd*p = 1 + 0.5*2 = 2; buf = 2;
	 * p = 2 - 0.25*2 = 1.5 (all exact in fp32). */
	float q = 2.0f, g = 1.0f, b = 0.0f;
	train_sgd_step(&q, &g, &b, 1, 0.25f, 0.5f, 0.5f);
	CU_ASSERT_EQUAL(q, 1.5f);
	CU_ASSERT_EQUAL(b, 2.0f);
	/* Second step: d = 1 + 0.5*1.5 = 1.75; buf = 0.5*2 + 1.75 = 2.75;
	 * p = 1.5 - 0.25*2.75 = 0.8125. */
	train_sgd_step(&q, &g, &b, 1, 0.25f, 0.5f, 0.5f);
	CU_ASSERT_EQUAL(b, 2.75f);
	CU_ASSERT_EQUAL(q, 0.8125f);
}

static void test_adamw_torch(void)
{
	train_adamw_cfg d = train_adamw_defaults();
	CU_ASSERT_EQUAL(d.beta1, 0.9f);
	CU_ASSERT_EQUAL(d.beta2, 0.999f);
	CU_ASSERT_EQUAL(d.eps, 1e-8f);
	CU_ASSERT_EQUAL(d.weight_decay, 0.01f);

	float p[NP], m[NP] = { 0 }, v[NP] = { 0 };
	memcpy(p, P0, sizeof p);
	for (int t = 0; t < 3; t++)
		train_adamw_step(&d, p, G[t], m, v, NP, 1e-3f, t + 1);
	check_close(p, adamw_default, NP, 1e-6f, 1e-9f, "adamw defaults");

	train_adamw_cfg c = { .beta1 = 0.8f, .beta2 = 0.99f, .eps = 1e-6f, .weight_decay = 0.1f };
	memcpy(p, P0, sizeof p);
	memset(m, 0, sizeof m);
	memset(v, 0, sizeof v);
	for (int t = 0; t < 3; t++)
		train_adamw_step(&c, p, G[t], m, v, NP, 0.05f, t + 1);
	check_close(p, adamw_custom, NP, 1e-6f, 1e-9f, "adamw custom");
}

static void test_adamw_first_step(void)
{
	/* Step 1 by hand: m = (1-b1) g, v = (1-b2) g^2, so the corrected
	 * moments are g and g^2 and the update is lr * g / (|g| + eps):
	 * p = p*(1 - lr*wd) - lr*sign(g) (to eps).  With lr = 0.5, wd = 0.5,
	 * p = 4, g = -3: p = 4*0.75 + 0.5 = 3.5. */
	train_adamw_cfg c = train_adamw_defaults();
	c.weight_decay = 0.5f;
	float p = 4.0f, g = -3.0f, m = 0.0f, v = 0.0f;
	train_adamw_step(&c, &p, &g, &m, &v, 1, 0.5f, 1);
	CU_ASSERT(fabsf(p - 3.5f) < 1e-6f);
	/* 1 - b1 and 1 - b2 are rounded to fp32 (0.999f is 0.99900001), hence
	 * the loose tolerances. */
	CU_ASSERT(fabsf(m - (-0.3f)) < 3e-7f);
	CU_ASSERT(fabsf(v - 0.009f) < 1e-8f + 0.009f * 1e-4f);
	/* A zero gradient on zero state leaves only the decay. */
	float q = 2.0f, z = 0.0f, mz = 0.0f, vz = 0.0f;
	train_adamw_step(&c, &q, &z, &mz, &vz, 1, 0.5f, 1);
	CU_ASSERT_EQUAL(q, 1.5f);
}

/* The same arithmetic as optim.c's plain loop, written out here: the
 * library's vector path (AVX-512 where present) must give the same bits. */
static void adamw_scalar_ref(const train_adamw_cfg *cfg, float *p, const float *g, float *m,
                             float *v, size_t n, float lr, int64_t t)
{
	double bc1 = 1.0 - pow(cfg->beta1, (double)t), bc2 = 1.0 - pow(cfg->beta2, (double)t);
	float decay = (float)(1.0 - (double)lr * cfg->weight_decay);
	float omb1 = (float)(1.0 - cfg->beta1), omb2 = (float)(1.0 - cfg->beta2);
	float bc2s = (float)sqrt(bc2), nss = (float)(-(double)lr / bc1);
	for (size_t i = 0; i < n; i++) {
		float mi = m[i] * cfg->beta1 + omb1 * g[i];
		float vi = v[i] * cfg->beta2 + omb2 * g[i] * g[i];
		float den = sqrtf(vi) / bc2s + cfg->eps;
		m[i] = mi;
		v[i] = vi;
		p[i] = p[i] * decay + nss * mi / den;
	}
}

static void test_adamw_paths_agree(void)
{
	enum { N = 101 }; /* 6 vectors of 16 and a tail of 5 */
	float p1[N], p2[N], g[N], m1[N] = { 0 }, m2[N] = { 0 }, v1[N] = { 0 }, v2[N] = { 0 };
	train_rng r;
	train_rng_seed(&r, 42);
	train_rng_fill_normal(&r, p1, N, 0.0f, 1.0f);
	memcpy(p2, p1, sizeof p1);
	train_adamw_cfg c = train_adamw_defaults();
	for (int t = 1; t <= 5; t++) {
		train_rng_fill_normal(&r, g, N, 0.0f, 0.1f);
		train_adamw_step(&c, p1, g, m1, v1, N, 3e-3f, t);
		adamw_scalar_ref(&c, p2, g, m2, v2, N, 3e-3f, t);
	}
	CU_ASSERT_EQUAL(memcmp(p1, p2, sizeof p1), 0);
	CU_ASSERT_EQUAL(memcmp(m1, m2, sizeof m1), 0);
	CU_ASSERT_EQUAL(memcmp(v1, v2, sizeof v1), 0);
}

/* ---------------------------------------------------------------------------
 * Clipping */

static void test_clip(void)
{
	float g[NP];
	memcpy(g, G[2], sizeof g);
	float norm = train_clip_grad_norm(g, NP, 1.0f);
	CU_ASSERT(close_rel(norm, clip_norm, 1e-6f, 0));
	check_close(g, clip_scaled, NP, 1e-6f, 1e-9f, "clipped");

	/* 3-4-5: the norm is exactly 5; max 10 leaves the vector alone. */
	float h[2] = { 3.0f, -4.0f };
	CU_ASSERT_EQUAL(train_clip_grad_norm(h, 2, 10.0f), 5.0f);
	CU_ASSERT_EQUAL(h[0], 3.0f);
	CU_ASSERT_EQUAL(h[1], -4.0f);
	/* max_norm 0: only measure. */
	CU_ASSERT_EQUAL(train_clip_grad_norm(h, 2, 0.0f), 5.0f);
	CU_ASSERT_EQUAL(h[0], 3.0f);
	/* Clipped to 1: (0.6, -0.8) up to torch's 1e-6 in the denominator. */
	CU_ASSERT_EQUAL(train_clip_grad_norm(h, 2, 1.0f), 5.0f);
	CU_ASSERT(fabsf(h[0] - 0.6f) < 1e-6f && fabsf(h[1] + 0.8f) < 1e-6f);
	/* Empty. */
	CU_ASSERT_EQUAL(train_clip_grad_norm(NULL, 0, 1.0f), 0.0f);
	/* A non-finite gradient is reported and left alone. */
	float bad[3] = { 1.0f, INFINITY, 2.0f };
	CU_ASSERT(isinf(train_clip_grad_norm(bad, 3, 1.0f)));
	CU_ASSERT_EQUAL(bad[0], 1.0f);
	bad[1] = NAN;
	CU_ASSERT(isnan(train_clip_grad_norm(bad, 3, 1.0f)));
	CU_ASSERT_EQUAL(bad[2], 2.0f);

	/* Long vectors: sum of 1000 ones squared... of 0.5: 1003 * 0.25; the
	 * vector path and the tail are exercised, and the double accumulation
	 * makes the result exact here. */
	enum { L = 1003 };
	static float big[L];
	for (int i = 0; i < L; i++)
		big[i] = i % 2 ? 0.5f : -0.5f;
	CU_ASSERT_EQUAL(train_clip_grad_norm(big, L, 0.0f), (float)sqrt(L * 0.25));
}

/* ---------------------------------------------------------------------------
 * Schedules: base 1, min 0.1, warm-up 10, total 110 (a decay span of 100). */

static void test_schedules(void)
{
	const train_schedule all[3] = { TRAIN_SCHED_CONSTANT, TRAIN_SCHED_LINEAR,
		                        TRAIN_SCHED_COSINE };
	for (int i = 0; i < 3; i++) {
		train_schedule s = all[i];
		CU_ASSERT_EQUAL(train_lr_at(s, 1.0f, 0.1f, 0, 10, 110), 0.0f);   /* from 0 */
		CU_ASSERT_EQUAL(train_lr_at(s, 1.0f, 0.1f, 5, 10, 110), 0.5f);   /* halfway up */
		CU_ASSERT_EQUAL(train_lr_at(s, 1.0f, 0.1f, 10, 10, 110), 1.0f);  /* end of warm-up */
	}
	/* Constant: base after warm-up, to the end and beyond; no warm-up: base at 0. */
	CU_ASSERT_EQUAL(train_lr_at(TRAIN_SCHED_CONSTANT, 1.0f, 0.1f, 60, 10, 110), 1.0f);
	CU_ASSERT_EQUAL(train_lr_at(TRAIN_SCHED_CONSTANT, 1.0f, 0.1f, 500, 10, 110), 1.0f);
	CU_ASSERT_EQUAL(train_lr_at(TRAIN_SCHED_CONSTANT, 0.3f, 0.0f, 0, 0, 10), 0.3f);

	/* Linear: f = (step-10)/100; lr = 0.1 + 0.9 (1 - f). */
	CU_ASSERT(fabsf(train_lr_at(TRAIN_SCHED_LINEAR, 1.0f, 0.1f, 35, 10, 110) - 0.775f) < 1e-7f);
	CU_ASSERT(fabsf(train_lr_at(TRAIN_SCHED_LINEAR, 1.0f, 0.1f, 60, 10, 110) - 0.55f) < 1e-7f);
	CU_ASSERT(fabsf(train_lr_at(TRAIN_SCHED_LINEAR, 1.0f, 0.1f, 109, 10, 110) - 0.109f) < 1e-7f);
	CU_ASSERT_EQUAL(train_lr_at(TRAIN_SCHED_LINEAR, 1.0f, 0.1f, 110, 10, 110), 0.1f);
	CU_ASSERT_EQUAL(train_lr_at(TRAIN_SCHED_LINEAR, 1.0f, 0.1f, 1000, 10, 110), 0.1f);
	/* No warm-up: base at step 0. */
	CU_ASSERT_EQUAL(train_lr_at(TRAIN_SCHED_LINEAR, 1.0f, 0.0f, 0, 0, 100), 1.0f);
	CU_ASSERT(fabsf(train_lr_at(TRAIN_SCHED_LINEAR, 1.0f, 0.0f, 25, 0, 100) - 0.75f) < 1e-7f);

	/* Cosine: lr = 0.1 + 0.45 (1 + cos(pi f)): f = 1/4 gives
	 * 0.1 + 0.45 (1 + 0.70710678) = 0.86819805; the middle 0.55. */
	CU_ASSERT(fabsf(train_lr_at(TRAIN_SCHED_COSINE, 1.0f, 0.1f, 35, 10, 110) - 0.86819805f) <
	          1e-7f);
	CU_ASSERT(fabsf(train_lr_at(TRAIN_SCHED_COSINE, 1.0f, 0.1f, 60, 10, 110) - 0.55f) < 1e-7f);
	CU_ASSERT_EQUAL(train_lr_at(TRAIN_SCHED_COSINE, 1.0f, 0.1f, 110, 10, 110), 0.1f);
	/* Warm-up no shorter than the run: min after it. */
	CU_ASSERT_EQUAL(train_lr_at(TRAIN_SCHED_COSINE, 1.0f, 0.1f, 20, 20, 20), 0.1f);
	/* A negative step is step 0. */
	CU_ASSERT_EQUAL(train_lr_at(TRAIN_SCHED_COSINE, 1.0f, 0.1f, -3, 10, 110), 0.0f);
}

/* ---------------------------------------------------------------------------
 * A two-layer MLP, in the manner of llm.c: parameters, gradients and AdamW
 * moments each in one arena, one allocation each, tensors pointing into it;
 * activations in a fourth arena reset every step.
 *
 *   x (N, 2) -> linear (H) -> GELU -> linear (2) -> cross-entropy
 */

enum { MLP_IN = 2, MLP_OUT = 2, MLP_NT = 4 };

typedef struct mlp {
	int H;
	size_t sizes[MLP_NT], n;          /* element counts; n = their sum */
	train_arena *pa, *ga, *oa, *act;  /* params, grads, optimizer state, activations */
	float *params, *grads, *m, *v;    /* (n) each */
	float *w1, *b1, *w2, *b2;         /* (H, 2) (H) (2, H) (2) */
	float *dw1, *db1, *dw2, *db2;
	train_named_tensor named[MLP_NT]; /* views for checkpoints */
	train_tensor mt[MLP_NT], vt[MLP_NT];
	train_rng rng;                    /* init and batch sampling */
	int64_t step;                     /* optimizer steps taken */
} mlp;

static void mlp_destroy(mlp *net)
{
	train_arena_destroy(net->pa);
	train_arena_destroy(net->ga);
	train_arena_destroy(net->oa);
	train_arena_destroy(net->act);
	memset(net, 0, sizeof *net);
}

static void point(float *base, const size_t *sizes, float **out[MLP_NT])
{
	for (int i = 0; i < MLP_NT; i++) {
		*out[i] = base;
		base += sizes[i];
	}
}

static int mlp_create(mlp *net, int H, uint64_t seed)
{
	memset(net, 0, sizeof *net);
	net->H = H;
	net->sizes[0] = (size_t)H * MLP_IN;
	net->sizes[1] = (size_t)H;
	net->sizes[2] = (size_t)MLP_OUT * H;
	net->sizes[3] = MLP_OUT;
	for (int i = 0; i < MLP_NT; i++)
		net->n += net->sizes[i];
	size_t bytes = net->n * sizeof(float);
	if (train_arena_create(bytes, &net->pa) || train_arena_create(bytes, &net->ga) ||
	    train_arena_create(2 * bytes + 64, &net->oa) || train_arena_create(0, &net->act))
		return -1;
	net->params = train_arena_alloc(net->pa, bytes);
	net->grads = train_arena_alloc(net->ga, bytes);
	net->m = train_arena_alloc(net->oa, bytes);
	net->v = train_arena_alloc(net->oa, bytes);
	if (!net->params || !net->grads || !net->m || !net->v)
		return -1;
	point(net->params, net->sizes, (float **[]){ &net->w1, &net->b1, &net->w2, &net->b2 });
	point(net->grads, net->sizes, (float **[]){ &net->dw1, &net->db1, &net->dw2, &net->db2 });

	static const char *const names[MLP_NT] = { "fc1.weight", "fc1.bias", "fc2.weight",
		                                   "fc2.bias" };
	const int64_t shapes[MLP_NT][2] = { { H, MLP_IN }, { H, 1 }, { MLP_OUT, H }, { MLP_OUT, 1 } };
	const int ndims[MLP_NT] = { 2, 1, 2, 1 };
	size_t off = 0;
	for (int i = 0; i < MLP_NT; i++) {
		train_tensor t = { .dtype = TRAIN_F32, .ndim = ndims[i] };
		for (int d = 0; d < TRAIN_MAX_DIMS; d++)
			t.shape[d] = d < 2 ? shapes[i][d] : 1;
		if (ndims[i] == 1)
			t.shape[1] = 1;
		net->named[i].name = names[i];
		net->named[i].t = t;
		net->named[i].t.data = net->params + off;
		net->mt[i] = t;
		net->mt[i].data = net->m + off;
		net->vt[i] = t;
		net->vt[i].data = net->v + off;
		off += net->sizes[i];
	}

	/* PyTorch's nn.Linear init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)). */
	train_rng_seed(&net->rng, seed);
	float k1 = 1.0f / sqrtf((float)MLP_IN), k2 = 1.0f / sqrtf((float)H);
	train_rng_fill_uniform(&net->rng, net->w1, net->sizes[0], -k1, k1);
	train_rng_fill_uniform(&net->rng, net->b1, net->sizes[1], -k1, k1);
	train_rng_fill_uniform(&net->rng, net->w2, net->sizes[2], -k2, k2);
	train_rng_fill_uniform(&net->rng, net->b2, net->sizes[3], -k2, k2);
	return 0;
}

/*
 * Forward and backward over N rows; gradients are ADDED with the loss
 * scaled by `scale` (1/k under k-step accumulation).  Returns the mean loss
 * of these rows, and the number of rows predicted right in *correct.
 */
static float mlp_fwd_bwd(mlp *net, const float *x /* (N, 2) */, const int32_t *y /* (N) */,
                         int N, float scale, int *correct)
{
	const int H = net->H;
	size_t mark = train_arena_mark(net->act);
	float *h = train_arena_alloc(net->act, sizeof(float) * (size_t)N * H);      /* (N, H) */
	float *a = train_arena_alloc(net->act, sizeof(float) * (size_t)N * H);      /* (N, H) */
	float *logits = train_arena_alloc(net->act, sizeof(float) * (size_t)N * 2); /* (N, 2) */
	float *probs = train_arena_alloc(net->act, sizeof(float) * (size_t)N * 2);  /* (N, 2) */
	float *losses = train_arena_alloc(net->act, sizeof(float) * (size_t)N);     /* (N) */
	float *da = train_arena_alloc(net->act, sizeof(float) * (size_t)N * H);     /* (N, H) */
	float *dh = train_arena_alloc(net->act, sizeof(float) * (size_t)N * H);     /* (N, H) */
	float *dlogits = train_arena_alloc(net->act, sizeof(float) * (size_t)N * 2); /* (N, 2) */
	float loss = NAN;
	CU_ASSERT_FATAL(h && a && logits && probs && losses && da && dh && dlogits);

	CU_ASSERT_EQUAL_FATAL(train_linear_forward(h, x, net->w1, net->b1, N, MLP_IN, H), 0);
	CU_ASSERT_EQUAL_FATAL(train_gelu_forward(a, h, (size_t)N * H), 0);
	CU_ASSERT_EQUAL_FATAL(train_linear_forward(logits, a, net->w2, net->b2, N, H, MLP_OUT), 0);
	CU_ASSERT_EQUAL_FATAL(
		train_cross_entropy_forward(&loss, losses, probs, logits, y, N, MLP_OUT, 0.0f), 0);
	if (correct) {
		*correct = 0;
		for (int i = 0; i < N; i++)
			*correct += (logits[2 * i + 1] > logits[2 * i]) == (y[i] == 1);
	}
	CU_ASSERT_EQUAL_FATAL(
		train_cross_entropy_backward(dlogits, probs, y, N, MLP_OUT, 0.0f, scale), 0);
	CU_ASSERT_EQUAL_FATAL(train_linear_backward(da, net->dw2, net->db2, dlogits, a, net->w2, N,
	                                            H, MLP_OUT),
	                      0);
	CU_ASSERT_EQUAL_FATAL(train_gelu_backward(dh, h, da, (size_t)N * H), 0);
	CU_ASSERT_EQUAL_FATAL(
		train_linear_backward(NULL, net->dw1, net->db1, dh, x, net->w1, N, MLP_IN, H), 0);
	train_arena_reset(net->act, mark);
	return loss;
}

/* XOR-like data: the label is 1 where x*y > 0, at two radii. */
enum { XOR_N = 8 };
static const float xor_x[XOR_N][2] = { { 1, 1 },   { -1, -1 },     { 1, -1 },     { -1, 1 },
	                               { .5f, .5f }, { -.5f, -.5f }, { .5f, -.5f }, { -.5f, .5f } };
static const int32_t xor_y[XOR_N] = { 1, 1, 0, 0, 1, 1, 0, 0 };

enum { XOR_STEPS = 200, XOR_BATCH = 4 };

/* One training step on a batch of XOR_BATCH points sampled with the net's
 * RNG: zero grads, forward/backward, clip to 1, AdamW with a cosine schedule. */
static void mlp_train_step(mlp *net)
{
	float x[XOR_BATCH][2];
	int32_t y[XOR_BATCH];
	for (int i = 0; i < XOR_BATCH; i++) {
		uint64_t j = train_rng_below(&net->rng, XOR_N);
		x[i][0] = xor_x[j][0];
		x[i][1] = xor_x[j][1];
		y[i] = xor_y[j];
	}
	memset(net->grads, 0, net->n * sizeof(float));
	mlp_fwd_bwd(net, &x[0][0], y, XOR_BATCH, 1.0f, NULL);
	train_clip_grad_norm(net->grads, net->n, 1.0f);
	float lr = train_lr_at(TRAIN_SCHED_COSINE, 0.05f, 0.005f, net->step, 10, XOR_STEPS);
	train_adamw_cfg c = train_adamw_defaults();
	net->step++;
	train_adamw_step(&c, net->params, net->grads, net->m, net->v, net->n, lr, net->step);
}

static void mlp_eval(mlp *net, float *loss, int *correct)
{
	memset(net->grads, 0, net->n * sizeof(float));
	*loss = mlp_fwd_bwd(net, &xor_x[0][0], xor_y, XOR_N, 1.0f, correct);
}

static void kernels_fp32(void)
{
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(1, TRAIN_PRECISION_FP32), 0);
}

static void test_xor(void)
{
	kernels_fp32();
	mlp a, b, c;
	CU_ASSERT_EQUAL_FATAL(mlp_create(&a, 16, 1234), 0);
	CU_ASSERT_EQUAL_FATAL(mlp_create(&b, 16, 1234), 0);
	CU_ASSERT_EQUAL_FATAL(mlp_create(&c, 16, 99), 0);
	float loss0, loss;
	int correct0, correct;
	mlp_eval(&a, &loss0, &correct0);
	for (int s = 0; s < XOR_STEPS; s++) {
		mlp_train_step(&a);
		mlp_train_step(&b);
		mlp_train_step(&c);
	}
	mlp_eval(&a, &loss, &correct);
	fprintf(stderr, "xor: loss %.4f -> %.4f, %d/%d -> %d/%d right\n", loss0, loss, correct0,
	        XOR_N, correct, XOR_N);
	CU_ASSERT_EQUAL(correct, XOR_N); /* zero training error */
	CU_ASSERT(loss < 0.1f);
	/* The same seed: the same bits; another seed: other weights. */
	CU_ASSERT_EQUAL(memcmp(a.params, b.params, a.n * sizeof(float)), 0);
	CU_ASSERT_EQUAL(memcmp(a.m, b.m, a.n * sizeof(float)), 0);
	CU_ASSERT_EQUAL(memcmp(a.v, b.v, a.n * sizeof(float)), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(a.params, c.params, a.n * sizeof(float)), 0);
	mlp_destroy(&a);
	mlp_destroy(&b);
	mlp_destroy(&c);
}

/* k micro-batches with the loss scaled by 1/k give the gradient of the
 * whole batch: the same terms summed in another order, so within 1e-5. */
static void test_accumulation(void)
{
	kernels_fp32();
	enum { N = 24, K = 4 };
	mlp net;
	CU_ASSERT_EQUAL_FATAL(mlp_create(&net, 8, 5), 0);
	float x[N][2];
	int32_t y[N];
	train_rng_fill_normal(&net.rng, &x[0][0], 2 * N, 0.0f, 1.0f);
	for (int i = 0; i < N; i++)
		y[i] = x[i][0] * x[i][1] > 0;

	float *whole = malloc(net.n * sizeof(float));
	CU_ASSERT_FATAL(whole != NULL);
	memset(net.grads, 0, net.n * sizeof(float));
	float loss_whole = mlp_fwd_bwd(&net, &x[0][0], y, N, 1.0f, NULL);
	memcpy(whole, net.grads, net.n * sizeof(float));

	memset(net.grads, 0, net.n * sizeof(float));
	float loss_acc = 0.0f;
	for (int k = 0; k < K; k++)
		loss_acc += mlp_fwd_bwd(&net, &x[k * (N / K)][0], y + k * (N / K), N / K,
		                        1.0f / K, NULL) / K;
	CU_ASSERT(close_rel(loss_acc, loss_whole, 1e-5f, 1e-7f));
	float gmax = 0.0f;
	for (size_t i = 0; i < net.n; i++)
		gmax = fmaxf(gmax, fabsf(whole[i]));
	CU_ASSERT(gmax > 1e-3f); /* a gradient worth comparing */
	check_close(net.grads, whole, net.n, 1e-5f, 1e-5f * gmax, "accumulated gradient");
	free(whole);
	mlp_destroy(&net);
}

/* ---------------------------------------------------------------------------
 * Checkpoints */

enum { CK_K = 40 };

static void test_checkpoint_resume(void)
{
	kernels_fp32();
	const char *dir = test_tmpdir();
	char path[600];
	snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);

	/* Uninterrupted: 2k steps. */
	mlp ref;
	CU_ASSERT_EQUAL_FATAL(mlp_create(&ref, 16, 777), 0);
	for (int s = 0; s < 2 * CK_K; s++)
		mlp_train_step(&ref);

	/* Interrupted: k steps, save, and a fresh process-like start from
	 * another seed (so nothing carries over but the file) loads it. */
	mlp first, resumed;
	CU_ASSERT_EQUAL_FATAL(mlp_create(&first, 16, 777), 0);
	for (int s = 0; s < CK_K; s++)
		mlp_train_step(&first);
	const char *meta[] = { "epoch", "3", "data", "xor8", NULL };
	train_error err = { 0 };
	int rc = train_checkpoint_save(path, first.named, first.mt, first.vt, MLP_NT, first.step,
	                               &first.rng, meta, &err);
	if (rc)
		fprintf(stderr, "save: %s\n", err.text);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	mlp_destroy(&first);

	CU_ASSERT_EQUAL_FATAL(mlp_create(&resumed, 16, 31337), 0);
	train_safetensors *f = NULL;
	rc = train_checkpoint_load(path, resumed.named, resumed.mt, resumed.vt, MLP_NT,
	                           &resumed.step, &resumed.rng, &f, &err);
	if (rc)
		fprintf(stderr, "load: %s\n", err.text);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL(resumed.step, CK_K);
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_STRING_EQUAL(train_safetensors_meta(f, "epoch"), "3");
	CU_ASSERT_STRING_EQUAL(train_safetensors_meta(f, "data"), "xor8");
	CU_ASSERT_STRING_EQUAL(train_safetensors_meta(f, "format"), "libtrain.checkpoint");
	CU_ASSERT_EQUAL(train_safetensors_count(f), 3 * MLP_NT);
	train_tensor t;
	CU_ASSERT_EQUAL(train_safetensors_get(f, "adam_v.fc2.weight", &t), 0);
	CU_ASSERT_EQUAL(t.ndim, 2);
	CU_ASSERT_EQUAL(t.shape[0], MLP_OUT);
	CU_ASSERT_EQUAL(t.shape[1], 16);
	train_safetensors_close(f);

	for (int s = 0; s < CK_K; s++)
		mlp_train_step(&resumed);
	CU_ASSERT_EQUAL(resumed.step, ref.step);
	CU_ASSERT_EQUAL(memcmp(resumed.params, ref.params, ref.n * sizeof(float)), 0);
	CU_ASSERT_EQUAL(memcmp(resumed.m, ref.m, ref.n * sizeof(float)), 0);
	CU_ASSERT_EQUAL(memcmp(resumed.v, ref.v, ref.n * sizeof(float)), 0);
	CU_ASSERT_EQUAL(memcmp(&resumed.rng, &ref.rng, sizeof ref.rng), 0);
	mlp_destroy(&resumed);
	mlp_destroy(&ref);
}

static void test_checkpoint_errors(void)
{
	const char *dir = test_tmpdir();
	char path[600], other[600];
	snprintf(path, sizeof path, "%s/c.safetensors", dir);
	snprintf(other, sizeof other, "%s/plain.safetensors", dir);

	float w[6] = { 1, 2, 3, 4, 5, 6 }, mm[6] = { 0 }, vv[6] = { 0 };
	train_tensor tw = { .dtype = TRAIN_F32, .ndim = 2, .shape = { 2, 3, 1, 1 }, .data = w };
	train_tensor tm = tw, tv = tw;
	tm.data = mm;
	tv.data = vv;
	train_named_tensor p = { "w", tw };
	train_rng r;
	train_rng_seed(&r, 1);
	train_error err = { 0 };

	/* Reserved metadata keys and mismatched optimizer state are refused. */
	const char *bad_meta[] = { "step", "9", NULL };
	CU_ASSERT_EQUAL(train_checkpoint_save(path, &p, NULL, NULL, 1, 0, NULL, bad_meta, &err),
	                TRAIN_EINVAL);
	train_tensor short_m = tm;
	short_m.shape[1] = 2;
	CU_ASSERT_EQUAL(train_checkpoint_save(path, &p, &short_m, NULL, 1, 0, NULL, NULL, &err),
	                TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_checkpoint_save(NULL, &p, NULL, NULL, 1, 0, NULL, NULL, &err),
	                TRAIN_EINVAL);

	/* A good one, with the state, step 12 and an RNG. */
	train_rng_u64(&r);
	CU_ASSERT_EQUAL_FATAL(train_checkpoint_save(path, &p, &tm, &tv, 1, 12, &r, NULL, &err), 0);

	float w2[6] = { 0 };
	train_tensor dst = tw;
	dst.data = w2;
	train_named_tensor q = { "w", dst };
	int64_t step = -1;
	train_rng r2 = { { 0 } };
	CU_ASSERT_EQUAL(train_checkpoint_load(path, &q, NULL, NULL, 1, &step, &r2, NULL, &err), 0);
	CU_ASSERT_EQUAL(step, 12);
	CU_ASSERT_EQUAL(memcmp(&r2, &r, sizeof r), 0);
	CU_ASSERT_EQUAL(memcmp(w2, w, sizeof w), 0);

	/* Another shape: refused, and nothing written. */
	memset(w2, 0, sizeof w2);
	q.t.shape[0] = 3;
	q.t.shape[1] = 2;
	CU_ASSERT_EQUAL(train_checkpoint_load(path, &q, NULL, NULL, 1, NULL, NULL, NULL, &err),
	                TRAIN_EMISMATCH);
	CU_ASSERT(strstr(err.text, "param.w") != NULL);
	CU_ASSERT_EQUAL(w2[0], 0.0f);
	/* Another name: not found. */
	q.t = dst;
	q.name = "u";
	CU_ASSERT_EQUAL(train_checkpoint_load(path, &q, NULL, NULL, 1, NULL, NULL, NULL, &err),
	                TRAIN_ENOTFOUND);
	/* Fewer parameters than the file holds. */
	CU_ASSERT_EQUAL(train_checkpoint_load(path, NULL, NULL, NULL, 0, NULL, NULL, NULL, &err),
	                TRAIN_EMISMATCH);

	/* Saved without RNG: asking for one is an error, not asking is fine. */
	CU_ASSERT_EQUAL_FATAL(train_checkpoint_save(path, &p, NULL, NULL, 1, 3, NULL, NULL, &err), 0);
	q.name = "w";
	CU_ASSERT_EQUAL(train_checkpoint_load(path, &q, NULL, NULL, 1, &step, &r2, NULL, &err),
	                TRAIN_ENOTFOUND);
	CU_ASSERT_EQUAL(train_checkpoint_load(path, &q, NULL, NULL, 1, &step, NULL, NULL, &err), 0);
	CU_ASSERT_EQUAL(step, 3);
	/* ... but asking for the moments it lacks is. */
	CU_ASSERT_EQUAL(train_checkpoint_load(path, &q, &tm, NULL, 1, NULL, NULL, NULL, &err),
	                TRAIN_ENOTFOUND);

	/* A plain safetensors file is not a checkpoint. */
	const char *kv[] = { "step", "1", NULL };
	train_named_tensor plain = { "param.w", tw };
	CU_ASSERT_EQUAL_FATAL(train_safetensors_write(other, &plain, 1, kv, &err), 0);
	CU_ASSERT_EQUAL(train_checkpoint_load(other, &q, NULL, NULL, 1, NULL, NULL, NULL, &err),
	                TRAIN_ECORRUPT);
	/* A newer version is refused as such; a bad rng as corrupt. */
	const char *newer[] = { "format", "libtrain.checkpoint", "version", "2", "step", "1", NULL };
	CU_ASSERT_EQUAL_FATAL(train_safetensors_write(other, &plain, 1, newer, &err), 0);
	CU_ASSERT_EQUAL(train_checkpoint_load(other, &q, NULL, NULL, 1, NULL, NULL, NULL, &err),
	                TRAIN_EUNSUPPORTED);
	const char *badrng[] = { "format", "libtrain.checkpoint", "version", "1", "step", "1",
		                 "rng", "xyz", NULL };
	CU_ASSERT_EQUAL_FATAL(train_safetensors_write(other, &plain, 1, badrng, &err), 0);
	CU_ASSERT_EQUAL(train_checkpoint_load(other, &q, NULL, NULL, 1, NULL, &r2, NULL, &err),
	                TRAIN_ECORRUPT);
	/* A missing file. */
	snprintf(other, sizeof other, "%s/none.safetensors", dir);
	train_safetensors *f = (train_safetensors *)&err; /* must be cleared */
	CU_ASSERT(train_checkpoint_load(other, &q, NULL, NULL, 1, NULL, NULL, &f, &err) < 0);
	CU_ASSERT_PTR_NULL(f);
}

static const test_case cases[] = {
	{ "sgd", test_sgd },
	{ "adamw_torch", test_adamw_torch },
	{ "adamw_first_step", test_adamw_first_step },
	{ "adamw_paths_agree", test_adamw_paths_agree },
	{ "clip", test_clip },
	{ "schedules", test_schedules },
	{ "accumulation", test_accumulation },
	{ "xor", test_xor },
	{ "checkpoint_resume", test_checkpoint_resume },
	{ "checkpoint_errors", test_checkpoint_errors },
	{ NULL, NULL },
};

int main(void)
{
	return test_main("optim", cases);
}
