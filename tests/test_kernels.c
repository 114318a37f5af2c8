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
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <train/kernels.h>
#include <train/tensor.h>

#include "kernels_private.h"
#include "testlib.h"

#define TOL_FP32 1e-5
#define TOL_BF16 1e-2
#define TOL_BF16_ROUNDED 2e-5

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
		{ NULL, NULL },
	};
	return test_main("kernels", cases);
}
