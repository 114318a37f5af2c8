/*
 * test_kernels.c - the oneDNN context and train_matmul, against a plain-C
 * reference in double precision.
 *
 * Tolerances.  Errors are measured per element against the scale of the
 * sum, s = |alpha| * sum_k |op(A)_ik| |op(B)_kj| + |beta| |C0_ij| (the
 * bound a dot product's rounding error is proportional to, whatever the
 * signs and cancellation):
 *   fp32: |C - ref| <= 1e-5 * s.  A K-term fp32 sum has error at most about
 *         K * 2^-24 * s; K <= 129 here gives 7.7e-6, and blocked sums do
 *         far better.
 *   bf16: |C - ref| <= 1e-2 * s.  Each operand is rounded to 8 significant
 *         bits (relative error 2^-8 = 3.9e-3), so each product is off by up
 *         to 2 * 2^-8 = 7.8e-3, plus the fp32 accumulation above.
 *   bf16, against a reference computed on the operands rounded to bf16:
 *         2e-5 * s, because a bf16 x bf16 product is exact in fp32 and only
 *         the accumulation rounds (the hardware dot product may group the
 *         pairs differently; 2e-5 leaves room for that).
 * Batched matmuls use the same bounds, per element of every matrix.
 *
 * The eltwise and softmax kernels against double-precision definitions,
 * with the bounds of <train/kernels.h> plus a margin (2x: under valgrind
 * oneDNN runs its AVX2 code, whose polynomials are the same but whose
 * rounding may differ):
 *   GELU, SiLU forward: |out - ref| <= 4e-7 * max(1, |x|);
 *   backward: |dinp - ref| <= 8e-7 (f' is O(1));
 *   softmax: |p - ref| <= 3e-6 * ref + 1e-30, and exactly 0 for -inf
 *     logits;
 *   softmax backward: |g - ref| <= 1e-5 * sum_j p_j |dp_j| (a dot product).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <train/kernels.h>
#include <train/tensor.h>

#include "kernels_private.h"
#include "vec.h"
#include "testlib.h"

#define TOL_FP32 1e-5
#define TOL_BF16 1e-2
#define TOL_BF16_ROUNDED 2e-5
#define TOL_ELT_FWD 4e-7
#define TOL_ELT_BWD 8e-7
#define TOL_SOFTMAX 3e-6
#define TOL_SOFTMAX_BWD 1e-5

typedef struct mm_case {
	int ta, tb, M, N, K, lda, ldb, ldc;
	float alpha, beta;
	float *A, *B, *C, *C0;
	size_t asz, bsz, csz;
} mm_case;

static train_rng rng;

/* Stored A is M x K (K x M transposed), B is K x N (N x K); pad > 0 makes
 * every stride that much wider than the rows, filled with NaN so that a
 * read of padding shows up in the result, and C's padding must survive. */
static void case_make(mm_case *c, int ta, int tb, int M, int N, int K, int pad, float alpha,
                      float beta)
{
	memset(c, 0, sizeof *c);
	c->ta = ta, c->tb = tb, c->M = M, c->N = N, c->K = K, c->alpha = alpha, c->beta = beta;
	int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
	c->lda = ac + pad, c->ldb = bc + pad, c->ldc = N + pad;
	c->asz = (size_t)ar * c->lda, c->bsz = (size_t)br * c->ldb, c->csz = (size_t)M * c->ldc;
	c->A = malloc(c->asz * sizeof(float));
	c->B = malloc(c->bsz * sizeof(float));
	c->C = malloc(c->csz * sizeof(float));
	c->C0 = malloc(c->csz * sizeof(float));
	if (!c->A || !c->B || !c->C || !c->C0)
		abort();
	for (size_t i = 0; i < c->asz; i++)
		c->A[i] = (int)(i % c->lda) < ac ? train_rng_uniform(&rng) * 2 - 1 : NAN;
	for (size_t i = 0; i < c->bsz; i++)
		c->B[i] = (int)(i % c->ldb) < bc ? train_rng_uniform(&rng) * 2 - 1 : NAN;
	for (size_t i = 0; i < c->csz; i++) {
		int in = (int)(i % c->ldc) < N;
		/* beta == 0: C is output only, so NaN in it must not leak through. */
		c->C0[i] = !in ? -777.0f : beta == 0 ? NAN : train_rng_uniform(&rng) * 2 - 1;
	}
	memcpy(c->C, c->C0, c->csz * sizeof(float));
}

static void case_free(mm_case *c)
{
	free(c->A);
	free(c->B);
	free(c->C);
	free(c->C0);
}

static float round_bf16(float x)
{
	return train_bf16_to_f32(train_f32_to_bf16(x));
}

/* The worst error of c->C, relative to the scale s of each element (see
 * the top), against a double-precision reference on the operands (rounded
 * to bf16 first when `rounded`).  Also checks C's padding. */
static double case_error(const mm_case *c, int rounded)
{
	double worst = 0;
	for (int i = 0; i < c->M; i++) {
		for (int j = 0; j < c->N; j++) {
			double sum = 0, scale = 0;
			for (int k = 0; k < c->K; k++) {
				float a = c->ta ? c->A[(size_t)k * c->lda + i] : c->A[(size_t)i * c->lda + k];
				float b = c->tb ? c->B[(size_t)j * c->ldb + k] : c->B[(size_t)k * c->ldb + j];
				if (rounded)
					a = round_bf16(a), b = round_bf16(b);
				sum += (double)a * b;
				scale += fabs((double)a * b);
			}
			double c0 = c->beta == 0 ? 0 : c->C0[(size_t)i * c->ldc + j];
			double ref = c->alpha * sum + c->beta * c0;
			scale = fabs(c->alpha) * scale + fabs(c->beta * c0);
			double got = c->C[(size_t)i * c->ldc + j];
			double e = fabs(got - ref) / (scale > 0 ? scale : 1);
			if (!(e <= worst)) /* NaN counts as infinitely wrong */
				worst = isnan(e) ? INFINITY : e;
		}
		for (int j = c->N; j < c->ldc; j++)
			if (c->C[(size_t)i * c->ldc + j] != -777.0f)
				worst = INFINITY;
	}
	return worst;
}

static int case_run(mm_case *c)
{
	return train_matmul(c->ta, c->tb, c->M, c->N, c->K, c->alpha, c->A, c->lda, c->B, c->ldb,
	                    c->beta, c->C, c->ldc);
}

/* Every transpose combination over sizes 1, 7, 33, 129 in M, N and K (a
 * subset of the 64 triples, so that the reference stays fast under
 * valgrind), with and without padded strides. */
static void sweep(train_precision p, double tol, int rounded_check)
{
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, p), 0);
	static const int sizes[] = { 1, 7, 33, 129 };
	static const float ab[][2] = { { 1, 0 }, { 0.5f, 1 }, { -2, 0.25f }, { 1.5f, -1 } };
	int n = 0, bad = 0;
	double worst = 0;
	char impls[256] = "";
	for (int t = 0; t < 4; t++) {
		for (int mi = 0; mi < 4; mi++) {
			for (int ni = 0; ni < 4; ni++) {
				for (int ki = 0; ki < 4; ki++) {
					if ((mi + ni + ki + t) % 3 != 0 && !(mi == ni && ni == ki))
						continue;
					int pad = (mi + ni + ki) % 2 ? 3 : 0;
					const float *a = ab[(mi + 2 * ni + ki) % 4];
					mm_case c;
					case_make(&c, t & 1, t >> 1, sizes[mi], sizes[ni], sizes[ki], pad, a[0],
					          a[1]);
					int rc = case_run(&c);
					double e = case_error(&c, 0);
					double er = rounded_check ? case_error(&c, 1) : 0;
					if (rc || e > tol || er > TOL_BF16_ROUNDED) {
						fprintf(stderr,
						        "matmul ta=%d tb=%d M=%d N=%d K=%d pad=%d alpha=%g beta=%g: "
						        "rc %d, error %.3g (rounded operands %.3g), impl %s\n",
						        c.ta, c.tb, c.M, c.N, c.K, pad, c.alpha, c.beta, rc, e, er,
						        train_kernels_last_impl());
						bad++;
					}
					if (e > worst)
						worst = e;
					const char *impl = train_kernels_last_impl();
					if (!strstr(impls, impl) && strlen(impls) + strlen(impl) + 2 < sizeof impls)
						strcat(strcat(impls, " "), impl);
					n++;
					case_free(&c);
				}
			}
		}
	}
	fprintf(stderr, "  %s: %d products, worst relative error %.3g (tolerance %g), impls:%s\n",
	        p == TRAIN_PRECISION_BF16 ? "bf16" : "fp32", n, worst, tol, impls);
	CU_ASSERT(n > 60);
	CU_ASSERT_EQUAL(bad, 0);
}

static void test_matmul_fp32(void)
{
	sweep(TRAIN_PRECISION_FP32, TOL_FP32, 0);
	CU_ASSERT_EQUAL(train_kernels_precision(), TRAIN_PRECISION_FP32);
}

static void test_matmul_bf16(void)
{
	sweep(TRAIN_PRECISION_BF16, TOL_BF16, 1);
	CU_ASSERT_EQUAL(train_kernels_precision(), TRAIN_PRECISION_BF16);
}

/* The same product forced to fp32 and to bf16: both within their
 * tolerance, and different (so bf16 really ran). */
static void test_precision_switch(void)
{
	mm_case c;
	case_make(&c, 0, 1, 64, 48, 96, 0, 1, 0);
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_FP32), 0);
	CU_ASSERT_EQUAL_FATAL(case_run(&c), 0);
	CU_ASSERT(case_error(&c, 0) <= TOL_FP32);
	float *f32 = malloc(c.csz * sizeof(float));
	CU_ASSERT_PTR_NOT_NULL_FATAL(f32);
	memcpy(f32, c.C, c.csz * sizeof(float));
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_BF16), 0);
	CU_ASSERT_EQUAL_FATAL(case_run(&c), 0);
	CU_ASSERT(case_error(&c, 0) <= TOL_BF16);
	CU_ASSERT(case_error(&c, 1) <= TOL_BF16_ROUNDED);
	CU_ASSERT_NOT_EQUAL(memcmp(f32, c.C, c.csz * sizeof(float)), 0);
	fprintf(stderr, "  bf16 impl: %s; cpu has bf16: %d\n", train_kernels_last_impl(),
	        train_cpu_has_bf16());
	free(f32);
	case_free(&c);

	/* AUTO resolves to what the CPU has. */
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_AUTO), 0);
	CU_ASSERT_EQUAL(train_kernels_precision(),
	                train_cpu_has_bf16() ? TRAIN_PRECISION_BF16 : TRAIN_PRECISION_FP32);
}

static void test_cache(void)
{
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_FP32), 0);
	train_kernels_cache_clear();
	CU_ASSERT_EQUAL(train_kernels_cache_entries(), 0);
	size_t built = train_kernels_primitives_built();
	mm_case c;
	case_make(&c, 1, 0, 20, 30, 40, 0, 1, 0);
	CU_ASSERT_EQUAL(case_run(&c), 0);
	CU_ASSERT_EQUAL(train_kernels_primitives_built(), built + 1);
	/* The same shape again, and with another alpha (a run-time scale). */
	CU_ASSERT_EQUAL(case_run(&c), 0);
	c.alpha = 3;
	CU_ASSERT_EQUAL(case_run(&c), 0);
	CU_ASSERT(case_error(&c, 0) <= TOL_FP32);
	CU_ASSERT_EQUAL(train_kernels_primitives_built(), built + 1);
	CU_ASSERT_EQUAL(train_kernels_cache_entries(), 1);
	/* beta != 0 adds the sum post-op: another primitive; beta 0.5 and 1
	 * share it. */
	c.beta = 1;
	CU_ASSERT_EQUAL(case_run(&c), 0);
	c.beta = 0.5f;
	CU_ASSERT_EQUAL(case_run(&c), 0);
	CU_ASSERT_EQUAL(train_kernels_primitives_built(), built + 2);
	case_free(&c);

	/* More shapes than slots: the cache stays bounded, and the least
	 * recently used go first. */
	for (int i = 1; i <= TRAIN_MATMUL_CACHE_SLOTS + 6; i++) {
		case_make(&c, 0, 0, i, 3, 2, 0, 1, 0);
		CU_ASSERT_EQUAL(case_run(&c), 0);
		case_free(&c);
	}
	CU_ASSERT_EQUAL(train_kernels_cache_entries(), TRAIN_MATMUL_CACHE_SLOTS);
	built = train_kernels_primitives_built();
	case_make(&c, 0, 0, TRAIN_MATMUL_CACHE_SLOTS + 6, 3, 2, 0, 1, 0); /* recent: cached */
	CU_ASSERT_EQUAL(case_run(&c), 0);
	case_free(&c);
	CU_ASSERT_EQUAL(train_kernels_primitives_built(), built);
	case_make(&c, 0, 0, 1, 3, 2, 0, 1, 0); /* the oldest: evicted */
	CU_ASSERT_EQUAL(case_run(&c), 0);
	case_free(&c);
	CU_ASSERT_EQUAL(train_kernels_primitives_built(), built + 1);

	/* bf16 shapes are cached too. */
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_BF16), 0);
	case_make(&c, 0, 0, 17, 19, 23, 2, 1, 0);
	CU_ASSERT_EQUAL(case_run(&c), 0);
	built = train_kernels_primitives_built();
	CU_ASSERT_EQUAL(case_run(&c), 0);
	CU_ASSERT_EQUAL(train_kernels_primitives_built(), built);
	CU_ASSERT(case_error(&c, 0) <= TOL_BF16);
	case_free(&c);
}

static void test_threads(void)
{
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(1, TRAIN_PRECISION_FP32), 0);
	CU_ASSERT_EQUAL(train_kernels_threads(), 1);
	CU_ASSERT_EQUAL(train_kernels_cache_entries(), 0); /* a new thread count empties it */
	mm_case c;
	case_make(&c, 0, 0, 150, 140, 130, 0, 1, 0);
	CU_ASSERT_EQUAL(case_run(&c), 0);
	CU_ASSERT(case_error(&c, 0) <= TOL_FP32);
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_FP32), 0);
	CU_ASSERT(train_kernels_threads() >= 1);
	CU_ASSERT_EQUAL(case_run(&c), 0);
	CU_ASSERT(case_error(&c, 0) <= TOL_FP32);
	case_free(&c);
	CU_ASSERT_EQUAL(train_kernels_init(-1, TRAIN_PRECISION_FP32), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_kernels_init(0, (train_precision)9), TRAIN_EINVAL);
}

static void test_edges(void)
{
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_FP32), 0);
	float A[6] = { 1, 2, 3, 4, 5, 6 }, B[6] = { 1, 0, 0, 1, 1, 1 }, C[4];
	/* Bad sizes and strides. */
	CU_ASSERT_EQUAL(train_matmul(0, 0, -1, 2, 3, 1, A, 3, B, 2, 0, C, 2), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_matmul(0, 0, 2, 2, 3, 1, A, 2, B, 2, 0, C, 2), TRAIN_EINVAL); /* lda < K */
	CU_ASSERT_EQUAL(train_matmul(1, 0, 2, 2, 3, 1, A, 1, B, 2, 0, C, 2), TRAIN_EINVAL); /* lda < M */
	CU_ASSERT_EQUAL(train_matmul(0, 1, 2, 2, 3, 1, A, 3, B, 2, 0, C, 2), TRAIN_EINVAL); /* ldb < K */
	CU_ASSERT_EQUAL(train_matmul(0, 0, 2, 2, 3, 1, A, 3, B, 2, 0, C, 1), TRAIN_EINVAL); /* ldc < N */
	CU_ASSERT_EQUAL(train_matmul(0, 0, 2, 2, 3, 1, NULL, 3, B, 2, 0, C, 2), TRAIN_EINVAL);
	/* A small exact case: [1 2 3; 4 5 6] x [1 0; 0 1; 1 1]. */
	CU_ASSERT_EQUAL(train_matmul(0, 0, 2, 2, 3, 1, A, 3, B, 2, 0, C, 2), 0);
	CU_ASSERT(C[0] == 4 && C[1] == 5 && C[2] == 10 && C[3] == 11);
	/* Empty products: M or N 0 touches nothing; K 0 or alpha 0 gives
	 * beta * C without reading A or B. */
	CU_ASSERT_EQUAL(train_matmul(0, 0, 0, 2, 3, 1, NULL, 3, NULL, 2, 0, NULL, 2), 0);
	CU_ASSERT_EQUAL(train_matmul(0, 0, 2, 2, 0, 1, NULL, 1, NULL, 2, 0.5f, C, 2), 0);
	CU_ASSERT(C[0] == 2 && C[1] == 2.5f && C[2] == 5 && C[3] == 5.5f);
	CU_ASSERT_EQUAL(train_matmul(0, 0, 2, 2, 3, 0, NULL, 3, NULL, 2, 0, C, 2), 0);
	CU_ASSERT(C[0] == 0 && C[1] == 0 && C[2] == 0 && C[3] == 0);
}

/* ---- batched matmuls ------------------------------------------------------- */

/* A batch of nb[0] x nb[1] matrices in one buffer: dense (matrix after
 * matrix, rows padded by `pad`) or interleaved (side by side within rows,
 * as the heads of a (B, T, 3C) qkv tensor: matrix (b0, b1) at column
 * b1 * cols of row block b0). */
typedef struct bm_layout {
	int ld;
	int64_t bs[2];
	size_t size;
} bm_layout;

static bm_layout bm_layout_make(const int nb[2], int rows, int cols, int pad, int interleaved)
{
	bm_layout l;
	if (interleaved) {
		l.ld = nb[1] * cols + pad;
		l.bs[0] = (int64_t)rows * l.ld, l.bs[1] = cols;
	} else {
		l.ld = cols + pad;
		l.bs[1] = (int64_t)rows * l.ld, l.bs[0] = nb[1] * l.bs[1];
	}
	l.size = (size_t)nb[0] * (size_t)l.bs[0] + (interleaved ? 0 : 0);
	if (l.size == 0)
		l.size = 1;
	return l;
}

/* element (b0, b1, i, j) of a batch */
static float *bm_at(float *X, const bm_layout *l, int b0, int b1, int i, int j)
{
	return X + b0 * l->bs[0] + b1 * l->bs[1] + (int64_t)i * l->ld + j;
}

typedef struct bm_case {
	int ta, tb, nb[2], M, N, K;
	float alpha, beta;
	bm_layout la, lb, lc;
	float *A, *B, *C, *C0;
} bm_case;

/* Unused positions: NaN in A and B (a read of them shows), -777 in C
 * (must survive); beta 0: C is NaN (must not leak through). */
static void bm_make(bm_case *c, int ta, int tb, int nb0, int nb1, int M, int N, int K, int pad,
                    int interleaved, float alpha, float beta)
{
	memset(c, 0, sizeof *c);
	c->ta = ta, c->tb = tb, c->nb[0] = nb0, c->nb[1] = nb1, c->M = M, c->N = N, c->K = K;
	c->alpha = alpha, c->beta = beta;
	int ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
	c->la = bm_layout_make(c->nb, ar, ac, pad, interleaved);
	c->lb = bm_layout_make(c->nb, br, bc, pad, interleaved);
	c->lc = bm_layout_make(c->nb, M, N, pad, interleaved);
	c->A = malloc(c->la.size * sizeof(float));
	c->B = malloc(c->lb.size * sizeof(float));
	c->C = malloc(c->lc.size * sizeof(float));
	c->C0 = malloc(c->lc.size * sizeof(float));
	if (!c->A || !c->B || !c->C || !c->C0)
		abort();
	for (size_t i = 0; i < c->la.size; i++)
		c->A[i] = NAN;
	for (size_t i = 0; i < c->lb.size; i++)
		c->B[i] = NAN;
	for (size_t i = 0; i < c->lc.size; i++)
		c->C0[i] = -777.0f;
	for (int b0 = 0; b0 < nb0; b0++)
		for (int b1 = 0; b1 < nb1; b1++) {
			for (int i = 0; i < ar; i++)
				for (int j = 0; j < ac; j++)
					*bm_at(c->A, &c->la, b0, b1, i, j) = train_rng_uniform(&rng) * 2 - 1;
			for (int i = 0; i < br; i++)
				for (int j = 0; j < bc; j++)
					*bm_at(c->B, &c->lb, b0, b1, i, j) = train_rng_uniform(&rng) * 2 - 1;
			for (int i = 0; i < M; i++)
				for (int j = 0; j < N; j++)
					*bm_at(c->C0, &c->lc, b0, b1, i, j) =
						beta == 0 ? NAN : train_rng_uniform(&rng) * 2 - 1;
		}
	memcpy(c->C, c->C0, c->lc.size * sizeof(float));
}

static void bm_free(bm_case *c)
{
	free(c->A), free(c->B), free(c->C), free(c->C0);
}

static int bm_run(bm_case *c)
{
	return train_matmul_batch(c->ta, c->tb, c->nb[0], c->nb[1], c->M, c->N, c->K, c->alpha,
	                          c->A, c->la.ld, c->la.bs, c->B, c->lb.ld, c->lb.bs, c->beta, c->C,
	                          c->lc.ld, c->lc.bs);
}

/* The worst scaled error over every matrix of the batch (as case_error),
 * INFINITY if C changed outside the matrices. */
static double bm_error(bm_case *c, int rounded)
{
	double worst = 0;
	float *seen = calloc(c->lc.size, sizeof *seen); /* 1 where C is a matrix element */
	if (!seen)
		abort();
	for (int b0 = 0; b0 < c->nb[0]; b0++)
		for (int b1 = 0; b1 < c->nb[1]; b1++)
			for (int i = 0; i < c->M; i++)
				for (int j = 0; j < c->N; j++) {
					double sum = 0, scale = 0;
					for (int k = 0; k < c->K; k++) {
						float a = c->ta ? *bm_at(c->A, &c->la, b0, b1, k, i)
						                : *bm_at(c->A, &c->la, b0, b1, i, k);
						float b = c->tb ? *bm_at(c->B, &c->lb, b0, b1, j, k)
						                : *bm_at(c->B, &c->lb, b0, b1, k, j);
						if (rounded)
							a = round_bf16(a), b = round_bf16(b);
						sum += (double)a * b;
						scale += fabs((double)a * b);
					}
					double c0 = c->beta == 0 ? 0 : *bm_at(c->C0, &c->lc, b0, b1, i, j);
					double ref = c->alpha * sum + c->beta * c0;
					scale = fabs(c->alpha) * scale + fabs(c->beta * c0);
					double got = *bm_at(c->C, &c->lc, b0, b1, i, j);
					double e = fabs(got - ref) / (scale > 0 ? scale : 1);
					if (!(e <= worst))
						worst = isnan(e) ? INFINITY : e;
					*bm_at(seen, &c->lc, b0, b1, i, j) = 1;
				}
	for (size_t i = 0; i < c->lc.size; i++)
		if (!seen[i] && c->C[i] != -777.0f)
			worst = INFINITY;
	free(seen);
	return worst;
}

static void batch_sweep(train_precision p, double tol, int rounded_check)
{
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, p), 0);
	static const struct {
		int nb0, nb1, M, N, K;
	} shapes[] = {
		{ 2, 3, 7, 5, 9 }, { 1, 4, 33, 17, 8 }, { 3, 1, 1, 1, 1 }, { 2, 2, 16, 16, 64 },
		{ 3, 2, 9, 13, 1 },
	};
	static const float ab[][2] = { { 1, 0 }, { 0.5f, 1 }, { -2, 0.25f }, { 0.125f, 1 } };
	int n = 0, bad = 0;
	double worst = 0;
	for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
		for (int t = 0; t < 4; t++)
			for (int lay = 0; lay < 2; lay++) {
				const float *a = ab[(si + t + lay) % 4];
				bm_case c;
				bm_make(&c, t & 1, t >> 1, shapes[si].nb0, shapes[si].nb1, shapes[si].M,
				        shapes[si].N, shapes[si].K, (int)(si + t) % 3, lay, a[0], a[1]);
				int rc = bm_run(&c);
				double e = bm_error(&c, 0), er = rounded_check ? bm_error(&c, 1) : 0;
				if (rc || e > tol || er > TOL_BF16_ROUNDED) {
					fprintf(stderr,
					        "batch %dx%d ta=%d tb=%d M=%d N=%d K=%d %s alpha=%g beta=%g: rc %d, "
					        "error %.3g (rounded %.3g), impl %s\n",
					        c.nb[0], c.nb[1], c.ta, c.tb, c.M, c.N, c.K,
					        lay ? "interleaved" : "dense", c.alpha, c.beta, rc, e, er,
					        train_kernels_last_impl());
					bad++;
				}
				worst = e > worst ? e : worst;
				n++;
				bm_free(&c);
			}
	fprintf(stderr, "  %s: %d batched products, worst relative error %.3g (tolerance %g)\n",
	        p == TRAIN_PRECISION_BF16 ? "bf16" : "fp32", n, worst, tol);
	CU_ASSERT_EQUAL(bad, 0);
}

static void test_matmul_batch(void)
{
	batch_sweep(TRAIN_PRECISION_FP32, TOL_FP32, 0);
	batch_sweep(TRAIN_PRECISION_BF16, TOL_BF16, 1);

	/* The attention shape: (B, T, 3C) qkv, heads side by side: one batched
	 * product gives what one train_matmul per (b, h) gives. */
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_FP32), 0);
	enum { B = 3, T = 11, NH = 2, HS = 5, C = NH * HS, C3 = 3 * C };
	float qkv[B * T * C3], att[B * NH * T * T], ref[T * T];
	train_rng_fill_uniform(&rng, qkv, B * T * C3, -1, 1);
	const int64_t s_qkv[2] = { T * C3, HS }, s_att[2] = { NH * T * T, T * T };
	CU_ASSERT_EQUAL(train_matmul_batch(0, 1, B, NH, T, T, HS, 0.5f, qkv, C3, s_qkv, qkv + C, C3,
	                                   s_qkv, 0.0f, att, T, s_att),
	                0);
	int same = 1;
	for (int b = 0; b < B; b++)
		for (int h = 0; h < NH; h++) {
			const float *q = qkv + b * T * C3 + h * HS;
			CU_ASSERT_EQUAL(train_matmul(0, 1, T, T, HS, 0.5f, q, C3, q + C, C3, 0.0f, ref, T), 0);
			for (int i = 0; i < T * T; i++)
				same &= fabsf(ref[i] - att[(b * NH + h) * T * T + i]) <= 1e-6f;
		}
	CU_ASSERT(same);

	/* Arguments. */
	const int64_t z[2] = { 0, 0 }, neg[2] = { -1, 0 };
	float A[4] = { 1, 2, 3, 4 }, Cm[4] = { 9, 9, 9, 9 };
	CU_ASSERT_EQUAL(train_matmul_batch(0, 0, -1, 1, 2, 2, 2, 1, A, 2, z, A, 2, z, 0, Cm, 2, z),
	                TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_matmul_batch(0, 0, 1, 1, 2, 2, 2, 1, A, 2, neg, A, 2, z, 0, Cm, 2, z),
	                TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_matmul_batch(0, 0, 1, 1, 2, 2, 2, 1, A, 2, NULL, A, 2, z, 0, Cm, 2, z),
	                TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_matmul_batch(0, 0, 1, 1, 2, 2, 2, 1, A, 1, z, A, 2, z, 0, Cm, 2, z),
	                TRAIN_EINVAL); /* lda < K */
	/* An empty batch touches nothing. */
	CU_ASSERT_EQUAL(train_matmul_batch(0, 0, 0, 3, 2, 2, 2, 1, NULL, 2, z, NULL, 2, z, 0, NULL,
	                                   2, z),
	                0);
	/* batch 1 x 1 is train_matmul: [1 2; 3 4]^2 = [7 10; 15 22] */
	CU_ASSERT_EQUAL(train_matmul_batch(0, 0, 1, 1, 2, 2, 2, 1, A, 2, z, A, 2, z, 0, Cm, 2, z), 0);
	CU_ASSERT(Cm[0] == 7 && Cm[1] == 10 && Cm[2] == 15 && Cm[3] == 22);
}

/* train_matmul_bias: the bias is added to the fp32 sum, so the values are
 * those of train_matmul followed by + bias (to the last bit where the
 * same kernel runs; 1e-6 relative is asked). */
static void test_matmul_bias(void)
{
	static const train_precision precs[] = { TRAIN_PRECISION_FP32, TRAIN_PRECISION_BF16 };
	for (int p = 0; p < 2; p++) {
		CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, precs[p]), 0);
		for (int t = 0; t < 4; t++) {
			mm_case c;
			case_make(&c, t & 1, t >> 1, 33, 17, 40, t == 3 ? 2 : 0, 1, 0);
			float *bias = malloc(c.N * sizeof *bias), *ref = malloc(c.csz * sizeof *ref);
			CU_ASSERT_FATAL(bias && ref);
			train_rng_fill_uniform(&rng, bias, c.N, -1, 1);
			memcpy(ref, c.C0, c.csz * sizeof *ref);
			CU_ASSERT_EQUAL(train_matmul(c.ta, c.tb, c.M, c.N, c.K, 1, c.A, c.lda, c.B, c.ldb, 0,
			                             ref, c.ldc), 0);
			CU_ASSERT_EQUAL(train_matmul_bias(c.ta, c.tb, c.M, c.N, c.K, c.A, c.lda, c.B, c.ldb,
			                                  bias, c.C, c.ldc), 0);
			int ok = 1;
			for (int i = 0; i < c.M; i++) {
				for (int j = 0; j < c.N; j++) {
					float want = ref[(size_t)i * c.ldc + j] + bias[j];
					ok &= fabsf(c.C[(size_t)i * c.ldc + j] - want) <= 1e-6f * (1 + fabsf(want));
				}
				for (int j = c.N; j < c.ldc; j++) /* padding untouched */
					ok &= c.C[(size_t)i * c.ldc + j] == -777.0f;
			}
			CU_ASSERT(ok);
			/* NULL bias: train_matmul */
			CU_ASSERT_EQUAL(train_matmul_bias(c.ta, c.tb, c.M, c.N, c.K, c.A, c.lda, c.B, c.ldb,
			                                  NULL, c.C, c.ldc), 0);
			CU_ASSERT(memcmp(c.C, ref, c.csz * sizeof *ref) == 0);
			free(bias), free(ref);
			case_free(&c);
		}
	}
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_FP32), 0);
	/* K = 0: rows of bias; bad strides */
	float bias[3] = { 1, 2, 3 }, C[6] = { 0 }, A[2] = { 0 };
	CU_ASSERT_EQUAL(train_matmul_bias(0, 0, 2, 3, 0, NULL, 1, NULL, 3, bias, C, 3), 0);
	CU_ASSERT(C[0] == 1 && C[2] == 3 && C[3] == 1 && C[5] == 3);
	CU_ASSERT_EQUAL(train_matmul_bias(0, 0, 2, 3, 1, A, 1, A, 3, bias, C, 2), TRAIN_EINVAL);
}

/* train_add: exact fp32 sums, in place too. */
static void test_add(void)
{
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_FP32), 0);
	size_t n = 40000;
	float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *o = malloc(n * sizeof *o);
	CU_ASSERT_FATAL(a && b && o);
	train_rng_fill_uniform(&rng, a, n, -100, 100);
	train_rng_fill_uniform(&rng, b, n, -1, 1);
	CU_ASSERT_EQUAL(train_add(o, a, b, n), 0);
	int exact = 1;
	for (size_t i = 0; i < n; i++)
		exact &= o[i] == a[i] + b[i];
	CU_ASSERT(exact);
	CU_ASSERT_EQUAL(train_add(a, a, b, n), 0);
	CU_ASSERT(memcmp(a, o, n * sizeof *a) == 0);
	CU_ASSERT_EQUAL(train_add(o, a, NULL, n), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_add(NULL, NULL, NULL, 0), 0);
	free(a), free(b), free(o);
}

/* ---- eltwise and softmax ---------------------------------------------------- */

static double gelu_ref(double x)
{
	return 0.5 * x * erfc(-x / sqrt(2.0));
}
static double gelu_d_ref(double x)
{
	return 0.5 * erfc(-x / sqrt(2.0)) + x * exp(-0.5 * x * x) / sqrt(2 * M_PI);
}
static double silu_ref(double x)
{
	return x / (1 + exp(-x));
}
static double silu_d_ref(double x)
{
	double s = 1 / (1 + exp(-x));
	return s * (1 + x * (1 - s));
}

static double gelu_tanh_ref(double x)
{
	return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}
static double gelu_tanh_d_ref(double x)
{
	double u = sqrt(2 / M_PI) * (x + 0.044715 * x * x * x), th = tanh(u);
	return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * sqrt(2 / M_PI) * (1 + 3 * 0.044715 * x * x);
}

static void check_eltwise(train_eltwise_alg alg, const char *name, double (*f)(double),
                          double (*df)(double))
{
	static const size_t sizes[] = { 1, 37, 20000 };
	for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
		size_t n = sizes[si];
		float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
		float *g = malloc(n * sizeof *g), *d = malloc(n * sizeof *d), *d0 = malloc(n * sizeof *d0);
		CU_ASSERT_FATAL(x && y && g && d && d0);
		train_rng_fill_uniform(&rng, x, n, -12, 12);
		train_rng_fill_uniform(&rng, g, n, -1, 1);
		train_rng_fill_uniform(&rng, d0, n, -1, 1);
		if (n > 10) { /* special values */
			x[0] = 0, x[1] = -0.0f, x[2] = 80, x[3] = -80, x[4] = 1e-30f, x[5] = -3.5f;
		}
		CU_ASSERT_EQUAL(train_eltwise_forward(alg, y, x, n), 0);
		memcpy(d, d0, n * sizeof *d);
		CU_ASSERT_EQUAL(train_eltwise_backward(alg, d, x, g, n, 1), 0); /* adds */
		double wf = 0, wb = 0;
		for (size_t i = 0; i < n; i++) {
			double ef = fabs(y[i] - f(x[i])) / fmax(1, fabs(x[i]));
			double eb = fabs((d[i] - d0[i]) - g[i] * df(x[i])) / fmax(1, fabs(g[i]));
			wf = ef > wf || isnan(ef) ? (isnan(ef) ? INFINITY : ef) : wf;
			wb = eb > wb || isnan(eb) ? (isnan(eb) ? INFINITY : eb) : wb;
		}
		/* written, not added; and in place */
		CU_ASSERT_EQUAL(train_eltwise_backward(alg, d, x, g, n, 0), 0);
		int written = 1;
		for (size_t i = 0; i < n; i++)
			written &= fabs(d[i] - g[i] * df(x[i])) <= 2 * TOL_ELT_BWD;
		CU_ASSERT(written);
		memcpy(d, x, n * sizeof *d);
		CU_ASSERT_EQUAL(train_eltwise_forward(alg, d, d, n), 0);
		CU_ASSERT(memcmp(d, y, n * sizeof *d) == 0);
		fprintf(stderr, "  %s n=%zu: forward %.3g, backward %.3g (tolerances %g, %g)\n", name, n,
		        wf, wb, TOL_ELT_FWD, TOL_ELT_BWD);
		CU_ASSERT(wf <= TOL_ELT_FWD);
		CU_ASSERT(wb <= TOL_ELT_BWD);
		free(x), free(y), free(g), free(d), free(d0);
	}
}

static void test_eltwise(void)
{
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_FP32), 0);
	check_eltwise(TRAIN_ELTWISE_GELU_ERF, "gelu", gelu_ref, gelu_d_ref);
	check_eltwise(TRAIN_ELTWISE_SILU, "silu", silu_ref, silu_d_ref);
	check_eltwise(TRAIN_ELTWISE_GELU_TANH, "gelu-tanh", gelu_tanh_ref, gelu_tanh_d_ref);
	/* bf16 precision does not touch them: the same values */
	float x[64], y32[64], y16[64];
	train_rng_fill_uniform(&rng, x, 64, -4, 4);
	CU_ASSERT_EQUAL(train_eltwise_forward(TRAIN_ELTWISE_GELU_ERF, y32, x, 64), 0);
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_BF16), 0);
	CU_ASSERT_EQUAL(train_eltwise_forward(TRAIN_ELTWISE_GELU_ERF, y16, x, 64), 0);
	CU_ASSERT(memcmp(y32, y16, sizeof y32) == 0);
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_FP32), 0);

	CU_ASSERT_EQUAL(train_eltwise_forward((train_eltwise_alg)0, y32, x, 64), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_eltwise_forward(TRAIN_ELTWISE_SILU, NULL, x, 64), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_eltwise_backward(TRAIN_ELTWISE_SILU, y32, x, NULL, 64, 1), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_eltwise_forward(TRAIN_ELTWISE_SILU, NULL, NULL, 0), 0);
	CU_ASSERT_EQUAL(train_eltwise_backward(TRAIN_ELTWISE_GELU_ERF, NULL, NULL, NULL, 0, 0), 0);
}

static void test_softmax_rows(void)
{
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_FP32), 0);
	static const int shapes[][2] = { { 1, 1 }, { 3, 7 }, { 50, 128 }, { 9, 1000 } };
	for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
		int R = shapes[si][0], C = shapes[si][1];
		size_t n = (size_t)R * C;
		float *l = malloc(n * sizeof *l), *p = malloc(n * sizeof *p), *dp = malloc(n * sizeof *dp);
		float *g = malloc(n * sizeof *g), *g0 = malloc(n * sizeof *g0);
		CU_ASSERT_FATAL(l && p && dp && g && g0);
		train_rng_fill_uniform(&rng, l, n, -10, 10);
		train_rng_fill_uniform(&rng, dp, n, -1, 1);
		train_rng_fill_uniform(&rng, g0, n, -1, 1);
		for (size_t i = 1; i < n; i += 3) /* masked entries (never a whole row) */
			l[i] = -INFINITY;
		if (C > 2)
			l[2] = 80.0f; /* a large logit */
		CU_ASSERT_EQUAL(train_softmax_rows_forward(p, l, R, C), 0);
		memcpy(g, g0, n * sizeof *g);
		CU_ASSERT_EQUAL(train_softmax_rows_backward(g, p, dp, R, C, 1), 0);
		double wf = 0, wb = 0;
		int zeros = 1;
		for (int r = 0; r < R; r++) {
			const float *x = l + (size_t)r * C;
			double m = -INFINITY, z = 0, pd = 0, scale = 0;
			for (int c = 0; c < C; c++)
				m = fmax(m, x[c]);
			for (int c = 0; c < C; c++)
				z += exp(x[c] - m);
			for (int c = 0; c < C; c++) {
				double ref = exp(x[c] - m) / z;
				size_t i = (size_t)r * C + c;
				if (x[c] == -INFINITY)
					zeros &= p[i] == 0.0f && g[i] == g0[i];
				/* near fp32's underflow oneDNN's exp loses digits (and
				 * flushes to 0 below ~1e-37): an absolute 1e-30 */
				double e = fabs(p[i] - ref) / (ref + 1e-30 / TOL_SOFTMAX);
				wf = e > wf || isnan(e) ? (isnan(e) ? INFINITY : e) : wf;
				pd += (double)p[i] * dp[i];
				scale += fabs((double)p[i] * dp[i]);
			}
			for (int c = 0; c < C; c++) {
				size_t i = (size_t)r * C + c;
				double ref = g0[i] + p[i] * (dp[i] - pd);
				double e = fabs(g[i] - ref) / (scale > 0 ? scale : 1);
				wb = e > wb || isnan(e) ? (isnan(e) ? INFINITY : e) : wb;
			}
		}
		fprintf(stderr, "  softmax %dx%d: forward %.3g, backward %.3g\n", R, C, wf, wb);
		CU_ASSERT(wf <= TOL_SOFTMAX);
		CU_ASSERT(wb <= TOL_SOFTMAX_BWD);
		CU_ASSERT(zeros);
		/* in place, forward and (not accumulating) backward */
		memcpy(g, l, n * sizeof *g);
		CU_ASSERT_EQUAL(train_softmax_rows_forward(g, g, R, C), 0);
		CU_ASSERT(memcmp(g, p, n * sizeof *g) == 0);
		memcpy(g0, dp, n * sizeof *g0);
		CU_ASSERT_EQUAL(train_softmax_rows_backward(g, p, dp, R, C, 0), 0);
		CU_ASSERT_EQUAL(train_softmax_rows_backward(g0, p, g0, R, C, 0), 0);
		CU_ASSERT(memcmp(g, g0, n * sizeof *g) == 0);
		free(l), free(p), free(dp), free(g), free(g0);
	}
	float x[4] = { 0 };
	CU_ASSERT_EQUAL(train_softmax_rows_forward(x, x, -1, 4), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_softmax_rows_forward(NULL, x, 1, 4), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_softmax_rows_backward(x, x, NULL, 1, 4, 0), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_softmax_rows_forward(NULL, NULL, 0, 4), 0);
}

/* Layer norm rows against double precision from the definition.  Forward:
 * |out - ref| <= TOL_LN * (1 + |ref|) + 4 * 2^-24 * max_row |x| * rstd * |w|:
 * the mean is computed in fp32, so it is off by a few ulps of the row's
 * largest |x|, which rstd and w scale (for rows offset by 1000, with a std
 * of 0.6, that term is 1e-4 relative, as in test_nn's layer norm values);
 * mean to TOL_LN relative and rstd to TOL_LN plus the same term.
 * Backward (from our mean and rstd): |g - ref| <= TOL_LN * max |ref| per
 * tensor (sums over rows). */
#define TOL_LN 2e-6

static void check_layernorm_rows(int R, int C, int bias, int offset_rows)
{
	size_t n = (size_t)R * C;
	float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y), *g = malloc(n * sizeof *g);
	float *w = malloc(C * sizeof *w), *b = malloc(C * sizeof *b), *m = malloc(R * sizeof *m);
	float *rs = malloc(R * sizeof *rs), *dx = malloc(n * sizeof *dx);
	float *dw = malloc(C * sizeof *dw), *db = malloc(C * sizeof *db);
	double *rdx = malloc(n * sizeof *rdx), *rdw = calloc(C, sizeof *rdw), *rdb = calloc(C, sizeof *rdb);
	CU_ASSERT_FATAL(x && y && g && w && b && m && rs && dx && dw && db && rdx && rdw && rdb);
	train_rng_fill_uniform(&rng, x, n, -1, 1);
	train_rng_fill_uniform(&rng, g, n, -1, 1);
	train_rng_fill_uniform(&rng, w, C, 0.5f, 1.5f);
	train_rng_fill_uniform(&rng, b, C, -1, 1);
	for (int r = 0; r < R && offset_rows; r += 5)
		for (int c = 0; c < C; c++)
			x[(size_t)r * C + c] += 1000.0f;
	CU_ASSERT_EQUAL(train_layernorm_rows_forward(y, m, rs, x, w, bias ? b : NULL, R, C, 1e-5f), 0);
	double wf = 0, ws = 0;
	for (int r = 0; r < R; r++) {
		const float *xr = x + (size_t)r * C;
		double mu = 0, var = 0;
		for (int c = 0; c < C; c++)
			mu += xr[c];
		mu /= C;
		for (int c = 0; c < C; c++)
			var += (xr[c] - mu) * (xr[c] - mu);
		var /= C;
		double rstd = 1 / sqrt(var + 1e-5), xmax = 0;
		for (int c = 0; c < C; c++)
			xmax = fmax(xmax, fabs(xr[c]));
		double mean_err = 4 * 0x1p-24 * xmax * rstd; /* relative, in xhat */
		ws = fmax(ws, fabs(m[r] - mu) / fmax(1, fabs(mu)) / TOL_LN);
		ws = fmax(ws, fabs(rs[r] - rstd) / rstd / (TOL_LN + mean_err));
		for (int c = 0; c < C; c++) {
			double ref = (xr[c] - mu) * rstd * w[c] + (bias ? b[c] : 0);
			double tol = TOL_LN * (1 + fabs(ref)) + mean_err * w[c];
			double e = fabs(y[(size_t)r * C + c] - ref) / tol;
			wf = !(e <= wf) ? e : wf;
		}
		/* backward from our statistics */
		double sd = 0, sdx = 0;
		for (int c = 0; c < C; c++) {
			double xh = (xr[c] - m[r]) * (double)rs[r], d = (double)g[(size_t)r * C + c] * w[c];
			sd += d, sdx += d * xh;
			rdw[c] += g[(size_t)r * C + c] * xh;
			rdb[c] += g[(size_t)r * C + c];
		}
		for (int c = 0; c < C; c++) {
			double xh = (xr[c] - m[r]) * (double)rs[r], d = (double)g[(size_t)r * C + c] * w[c];
			rdx[(size_t)r * C + c] = rs[r] * (d - sd / C - xh * sdx / C);
		}
	}
	/* backward adds: start from 1 everywhere */
	for (size_t i = 0; i < n; i++)
		dx[i] = 1;
	for (int c = 0; c < C; c++)
		dw[c] = db[c] = 1;
	CU_ASSERT_EQUAL(train_layernorm_rows_backward(dx, dw, bias ? db : NULL, g, x, w, m, rs, R, C),
	                0);
	double sx = 0, sw = 0, sb = 0, wb = 0;
	for (size_t i = 0; i < n; i++)
		sx = fmax(sx, fabs(rdx[i]));
	for (int c = 0; c < C; c++)
		sw = fmax(sw, fabs(rdw[c])), sb = fmax(sb, fabs(rdb[c]));
	for (size_t i = 0; i < n; i++)
		wb = fmax(wb, fabs(dx[i] - 1 - rdx[i]) / (sx * TOL_LN));
	for (int c = 0; c < C; c++) {
		wb = fmax(wb, fabs(dw[c] - 1 - rdw[c]) / (sw * TOL_LN));
		if (bias)
			wb = fmax(wb, fabs(db[c] - 1 - rdb[c]) / (sb * TOL_LN));
		else
			CU_ASSERT_EQUAL(db[c], 1); /* untouched */
	}
	fprintf(stderr, "  layer norm %dx%d bias %d offsets %d: forward %.3g, stats %.3g, backward "
	                "%.3g of the tolerance\n", R, C, bias, offset_rows, wf, ws, wb);
	CU_ASSERT(wf <= 1 && ws <= 1 && wb <= 1);
	/* only dinp, only dw: the same values */
	float *dx1 = calloc(n, sizeof *dx1), *dw1 = calloc(C, sizeof *dw1);
	CU_ASSERT_FATAL(dx1 && dw1);
	CU_ASSERT_EQUAL(train_layernorm_rows_backward(dx1, NULL, NULL, g, x, w, m, rs, R, C), 0);
	CU_ASSERT_EQUAL(train_layernorm_rows_backward(NULL, dw1, NULL, g, x, w, m, rs, R, C), 0);
	int same = 1;
	for (size_t i = 0; i < n; i++)
		same &= fabsf(dx1[i] - (dx[i] - 1)) <= 1e-6f * (1 + fabsf(dx1[i]));
	for (int c = 0; c < C; c++)
		same &= fabsf(dw1[c] - (dw[c] - 1)) <= 1e-6f * (1 + fabsf(dw1[c]));
	CU_ASSERT(same);
	free(dx1), free(dw1);
	free(x), free(y), free(g), free(w), free(b), free(m), free(rs), free(dx), free(dw), free(db);
	free(rdx), free(rdw), free(rdb);
}

static void test_layernorm_rows(void)
{
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_FP32), 0);
	check_layernorm_rows(1, 1, 1, 0);
	check_layernorm_rows(7, 13, 0, 0);
	check_layernorm_rows(300, 256, 1, 1);
	check_layernorm_rows(65, 1000, 0, 1);
	float x[4] = { 0 };
	CU_ASSERT_EQUAL(train_layernorm_rows_forward(x, x, x, x, x, NULL, 1, 4, -1.0f), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_layernorm_rows_forward(x, x, x, x, NULL, NULL, 1, 4, 0.0f),
	                TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_layernorm_rows_backward(x, x, x, x, x, x, NULL, x, 1, 4), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_layernorm_rows_backward(NULL, NULL, NULL, x, x, x, x, x, 1, 4), 0);
	CU_ASSERT_EQUAL(train_layernorm_rows_forward(NULL, NULL, NULL, NULL, NULL, NULL, 0, 4, 0.0f),
	                0);
}

/* The second cache: one primitive per (kind, size), reused, bounded.
 * (GELU and SiLU run without primitives on CPUs with AVX-512: vec.c.) */
static void test_op_cache(void)
{
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_FP32), 0);
	train_kernels_cache_clear();
	CU_ASSERT_EQUAL(train_kernels_op_cache_entries(), 0);
	float x[300], y[300], g[300], z[300] = { 0 };
	train_rng_fill_uniform(&rng, x, 300, -2, 2);
	train_rng_fill_uniform(&rng, g, 300, -1, 1);
	size_t built = train_kernels_primitives_built();
	CU_ASSERT_EQUAL(train_softmax_rows_forward(y, x, 3, 100), 0);
	CU_ASSERT_EQUAL(train_softmax_rows_forward(y, x, 3, 100), 0);
	CU_ASSERT_EQUAL(train_kernels_primitives_built(), built + 1);
	/* accumulate: the backward primitive and the add */
	CU_ASSERT_EQUAL(train_softmax_rows_backward(z, y, g, 3, 100, 1), 0);
	CU_ASSERT_EQUAL(train_softmax_rows_backward(z, y, g, 3, 100, 1), 0);
	CU_ASSERT_EQUAL(train_kernels_primitives_built(), built + 3);
	CU_ASSERT_EQUAL(train_kernels_op_cache_entries(), 3);
	for (int i = 1; i <= TRAIN_OP_CACHE_SLOTS + 5; i++)
		CU_ASSERT_EQUAL(train_softmax_rows_forward(y, x, 1, i), 0);
	CU_ASSERT_EQUAL(train_kernels_op_cache_entries(), TRAIN_OP_CACHE_SLOTS);
	built = train_kernels_primitives_built();
	CU_ASSERT_EQUAL(train_softmax_rows_forward(y, x, 1, TRAIN_OP_CACHE_SLOTS + 5), 0);
	CU_ASSERT_EQUAL(train_kernels_primitives_built(), built); /* recent: kept */
	CU_ASSERT_EQUAL(train_softmax_rows_forward(y, x, 3, 100), 0);
	CU_ASSERT_EQUAL(train_kernels_primitives_built(), built + 1); /* oldest: evicted */
	/* a new thread count empties it */
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(1, TRAIN_PRECISION_FP32), 0);
	CU_ASSERT_EQUAL(train_kernels_op_cache_entries(), 0);
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_FP32), 0);
}

/* ---- bf16 copies of weights and pins ---------------------------------------- */

/* C (M x N) = A (M x K) W^T with W (N x K) inside a registered block:
 * the weights' copy is made once per change, and the results are those of
 * an unregistered call. */
static void test_weights(void)
{
	enum { M = 37, N = 19, K = 45, PAD = 100 };
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_BF16), 0);
	int native = train_cpu_has_bf16(); /* mirrors are used only then */
	float *block = malloc((PAD + N * K + PAD) * sizeof *block), *W = block + PAD;
	float *A = malloc(M * K * sizeof *A), *C0 = malloc(M * N * sizeof *C0);
	float *C1 = malloc(M * N * sizeof *C1);
	CU_ASSERT_FATAL(block && A && C0 && C1);
	train_rng_fill_uniform(&rng, block, PAD + N * K + PAD, -1, 1);
	train_rng_fill_uniform(&rng, A, M * K, -1, 1);

	/* unregistered, then registered: the same values */
	CU_ASSERT_EQUAL(train_matmul(0, 1, M, N, K, 1, A, K, W, K, 0, C0, N), 0);
	CU_ASSERT_EQUAL(train_kernels_weights_register(block, PAD + N * K + PAD), 0);
	size_t conv = train_kernels_mirror_conversions();
	CU_ASSERT_EQUAL(train_matmul(0, 1, M, N, K, 1, A, K, W, K, 0, C1, N), 0);
	CU_ASSERT_EQUAL(train_kernels_mirror_conversions(), conv + native);
	double worst = 0;
	for (int i = 0; i < M * N; i++)
		worst = fmax(worst, fabs(C1[i] - C0[i]));
	CU_ASSERT(worst <= 1e-6);
	fprintf(stderr, "  registered weights: native bf16 %d, largest difference %.3g, impl %s\n",
	        native, worst, train_kernels_last_impl());
	/* read again, untransposed too (W as K' x N' = N x K): no new conversion */
	CU_ASSERT_EQUAL(train_matmul(0, 1, M, N, K, 1, A, K, W, K, 0, C1, N), 0);
	CU_ASSERT_EQUAL(train_matmul(0, 0, 3, K, N, 1, A, N, W, K, 0, C1, K), 0);
	CU_ASSERT_EQUAL(train_kernels_mirror_conversions(), conv + native);

	/* the contract: a write without changed() leaves the old copy in use */
	for (int i = 0; i < N * K; i++)
		W[i] = -W[i];
	CU_ASSERT_EQUAL(train_matmul(0, 1, M, N, K, 1, A, K, W, K, 0, C1, N), 0);
	if (native) { /* still the old weights */
		int old = 1;
		for (int i = 0; i < M * N; i++)
			old &= fabsf(C1[i] - C0[i]) <= 1e-6f;
		CU_ASSERT(old);
	}
	train_kernels_weights_changed(block);
	CU_ASSERT_EQUAL(train_matmul(0, 1, M, N, K, 1, A, K, W, K, 0, C1, N), 0);
	CU_ASSERT_EQUAL(train_kernels_mirror_conversions(), conv + 2 * native);
	int negated = 1;
	for (int i = 0; i < M * N; i++)
		negated &= fabsf(C1[i] + C0[i]) <= 1e-6f;
	CU_ASSERT(negated);
	train_kernels_weights_changed(NULL); /* every array: the same */
	CU_ASSERT_EQUAL(train_matmul(0, 1, M, N, K, 1, A, K, W, K, 0, C1, N), 0);
	CU_ASSERT_EQUAL(train_kernels_mirror_conversions(), conv + 3 * native);

	/* a matmul writing into the block marks it changed */
	CU_ASSERT_EQUAL(train_matmul(0, 0, 1, 4, 1, 1, A, 1, A, 4, 0, block, 4), 0);
	CU_ASSERT_EQUAL(train_matmul(0, 1, M, N, K, 1, A, K, W, K, 0, C1, N), 0);
	CU_ASSERT_EQUAL(train_kernels_mirror_conversions(), conv + 4 * native);

	/* fp32: nothing converted */
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_FP32), 0);
	train_kernels_weights_changed(block);
	CU_ASSERT_EQUAL(train_matmul(0, 1, M, N, K, 1, A, K, W, K, 0, C1, N), 0);
	CU_ASSERT_EQUAL(train_kernels_mirror_conversions(), conv + 4 * native);

	/* arguments: overlap, NULL, empty, too many */
	CU_ASSERT_EQUAL(train_kernels_weights_register(W + 5, 10), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_kernels_weights_register(NULL, 10), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_kernels_weights_register(A, 0), TRAIN_EINVAL);
	float many[TRAIN_KERNELS_WEIGHTS_MAX][4];
	int ok = 0;
	for (int i = 0; i < TRAIN_KERNELS_WEIGHTS_MAX; i++)
		ok += train_kernels_weights_register(many[i], 4) == 0;
	CU_ASSERT_EQUAL(ok, TRAIN_KERNELS_WEIGHTS_MAX - 1); /* block is one */
	CU_ASSERT_EQUAL(train_kernels_weights_register(A, 4), TRAIN_ENOMEM);
	for (int i = 0; i < TRAIN_KERNELS_WEIGHTS_MAX; i++)
		train_kernels_weights_unregister(many[i]);
	train_kernels_weights_unregister(block);
	train_kernels_weights_unregister(block); /* unknown: nothing */
	CU_ASSERT_EQUAL(train_kernels_weights_register(W + 5, 10), 0);
	train_kernels_weights_unregister(W + 5);
	free(block), free(A), free(C0), free(C1);
}

static void test_pins(void)
{
	enum { N = 64, OC = 48, C = 40 };
	float *dout = malloc(N * OC * sizeof *dout), *w = malloc(OC * C * sizeof *w);
	float *x = malloc(N * C * sizeof *x), *dx = calloc(N * C, sizeof *dx);
	float *dw = calloc(OC * C, sizeof *dw), *dx0 = calloc(N * C, sizeof *dx0);
	float *dw0 = calloc(OC * C, sizeof *dw0);
	CU_ASSERT_FATAL(dout && w && x && dx && dw && dx0 && dw0);
	train_rng_fill_uniform(&rng, dout, N * OC, -1, 1);
	train_rng_fill_uniform(&rng, w, OC * C, -1, 1);
	train_rng_fill_uniform(&rng, x, N * C, -1, 1);
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_FP32), 0);
	CU_ASSERT_EQUAL(train_kernels_bf16_pin(dout, N * OC), 0); /* fp32: never */
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_BF16), 0);
	int native = train_cpu_has_bf16();
	/* linear backward's two products, unpinned and pinned: the same values,
	 * and with the pin one conversion of dout */
	CU_ASSERT_EQUAL(train_matmul(0, 0, N, C, OC, 1, dout, OC, w, C, 1, dx0, C), 0);
	CU_ASSERT_EQUAL(train_matmul(1, 0, OC, C, N, 1, dout, OC, x, C, 1, dw0, C), 0);
	size_t conv = train_kernels_mirror_conversions();
	int pin = train_kernels_bf16_pin(dout, N * OC);
	CU_ASSERT(native ? pin > 0 : pin == 0);
	CU_ASSERT_EQUAL(train_kernels_bf16_pin(dout + 1, 5), 0); /* overlaps: refused */
	CU_ASSERT_EQUAL(train_matmul(0, 0, N, C, OC, 1, dout, OC, w, C, 1, dx, C), 0);
	CU_ASSERT_EQUAL(train_matmul(1, 0, OC, C, N, 1, dout, OC, x, C, 1, dw, C), 0);
	train_kernels_bf16_unpin(pin);
	CU_ASSERT_EQUAL(train_kernels_mirror_conversions(), conv + (pin > 0));
	double worst = 0;
	for (int i = 0; i < N * C; i++)
		worst = fmax(worst, fabs(dx[i] - dx0[i]));
	for (int i = 0; i < OC * C; i++)
		worst = fmax(worst, fabs(dw[i] - dw0[i]));
	CU_ASSERT(worst <= 1e-5);
	/* unpinned: the slot is free again, and unpin of nothing is harmless */
	train_kernels_bf16_unpin(pin);
	train_kernels_bf16_unpin(0);
	pin = train_kernels_bf16_pin(dout + 1, 5);
	CU_ASSERT(native ? pin > 0 : pin == 0);
	train_kernels_bf16_unpin(pin);
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_FP32), 0);
	free(dout), free(w), free(x), free(dx), free(dw), free(dx0), free(dw0);
}

static void test_cpu(void)
{
	/* If cpuid says bf16, the kernel's view (/proc/cpuinfo) agrees.  The
	 * other direction does not hold under valgrind, whose virtual CPU has
	 * no AVX-512. */
	FILE *f = fopen("/proc/cpuinfo", "r");
	int listed = 0;
	if (f) {
		char line[8192];
		while (fgets(line, sizeof line, f))
			if (strncmp(line, "flags", 5) == 0 &&
			    (strstr(line, " avx512_bf16") || strstr(line, " amx_bf16")))
				listed = 1;
		fclose(f);
	}
	fprintf(stderr, "  cpuid bf16: %d, /proc/cpuinfo bf16: %d\n", train_cpu_has_bf16(), listed);
	if (f && train_cpu_has_bf16())
		CU_ASSERT(listed);
	CU_ASSERT_EQUAL(train_cpu_has_bf16(), train_cpu_has_bf16());
}

/* vec.c's conversion, dense and strided, on 1 and 2 threads: each value
 * rounded to nearest even as train_f32_to_bf16 does; subnormals may come
 * out as zero of their sign (the hardware conversion treats them so). */
static void test_to_bf16(void)
{
	CU_ASSERT_EQUAL_FATAL(train_kernels_init(0, TRAIN_PRECISION_FP32), 0);
	vec_init();
	enum { NB0 = 2, NB1 = 3, ROWS = 37, COLS = 45, LD = 50 };
	size_t nsrc = (size_t)NB0 * NB1 * ROWS * LD, n = (size_t)NB0 * NB1 * ROWS * COLS;
	float *src = malloc(nsrc * sizeof *src);
	uint16_t *dst = malloc(nsrc * sizeof *dst);
	CU_ASSERT_FATAL(src && dst);
	train_rng_fill_normal(&rng, src, nsrc, 0, 3);
	/* ties (odd and even), NaN, infinities, the largest finite, subnormals */
	uint32_t special[] = { 0x3f808000u, 0x3f818000u, 0x7fc00001u, 0xffa00000u, 0x7f800000u,
		               0xff800000u, 0x7f7fffffu, 0x00000001u, 0x807fffffu, 0x80000000u };
	for (size_t i = 0; i < sizeof special / sizeof special[0]; i++)
		memcpy(&src[i * 7], &special[i], sizeof special[i]);
	int bad = 0;
	for (int threads = 1; threads <= 2; threads++) {
		/* dense: all nsrc values as one array */
		memset(dst, 0xab, nsrc * sizeof *dst);
		vec_to_bf16_n(dst, src, nsrc, threads);
		for (size_t i = 0; i < nsrc; i++) {
			uint16_t want = train_f32_to_bf16(src[i]);
			int sub = fpclassify(src[i]) == FP_SUBNORMAL;
			bad += dst[i] != want && !(sub && (dst[i] & 0x7fffu) == 0 &&
			                           (dst[i] & 0x8000u) == (want & 0x8000u));
		}
		/* strided: (NB0, NB1) matrices of ROWS x COLS, row stride LD */
		memset(dst, 0xab, nsrc * sizeof *dst);
		vec_to_bf16(dst, src, NB0, NB1, (int64_t)NB1 * ROWS * LD, (int64_t)ROWS * LD, ROWS,
		            COLS, LD, threads);
		for (size_t k = 0; k < n; k++) {
			size_t m = k / ((size_t)ROWS * COLS), i = k / COLS % ROWS, j = k % COLS;
			float x = src[m * ROWS * LD + i * LD + j];
			uint16_t want = train_f32_to_bf16(x);
			int sub = fpclassify(x) == FP_SUBNORMAL;
			bad += dst[k] != want && !(sub && (dst[k] & 0x7fffu) == 0);
		}
		CU_ASSERT_EQUAL(dst[n], 0xabab); /* nothing past the dense copy */
	}
	fprintf(stderr, "  native bf16 %d: %d values differ\n", vec_bf16_native(), bad);
	CU_ASSERT_EQUAL(bad, 0);
	free(src), free(dst);
}

int main(void)
{
	train_rng_seed(&rng, 2024);
	static const test_case cases[] = {
		{ "cpu", test_cpu },
		{ "edges", test_edges },
		{ "matmul_fp32", test_matmul_fp32 },
		{ "matmul_bf16", test_matmul_bf16 },
		{ "precision_switch", test_precision_switch },
		{ "cache", test_cache },
		{ "threads", test_threads },
		{ "matmul_batch", test_matmul_batch },
		{ "matmul_bias", test_matmul_bias },
		{ "add", test_add },
		{ "eltwise", test_eltwise },
		{ "softmax_rows", test_softmax_rows },
		{ "layernorm_rows", test_layernorm_rows },
		{ "op_cache", test_op_cache },
		{ "weights", test_weights },
		{ "pins", test_pins },
		{ "to_bf16", test_to_bf16 },
		{ NULL, NULL },
	};
	return test_main("kernels", cases);
}
