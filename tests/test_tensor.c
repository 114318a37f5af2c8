/*
 * test_tensor.c - dtypes, arenas, bf16 conversions and the RNG.
 *
 * The RNG constants below come from an independent implementation of
 * splitmix64 + xoshiro256** (Python, integers masked to 64 bits):
 *
 *   import math, struct
 *   M = (1 << 64) - 1
 *   def splitmix(x):
 *       x = (x + 0x9e3779b97f4a7c15) & M
 *       z = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & M
 *       z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M
 *       return x, z ^ (z >> 31)
 *   def rotl(x, k): return ((x << k) | (x >> (64 - k))) & M
 *   class X:
 *       def __init__(self, seed):
 *           self.s = []
 *           for _ in range(4):
 *               seed, v = splitmix(seed); self.s.append(v)
 *       def next(self):
 *           s = self.s
 *           r = (rotl((s[1] * 5) & M, 7) * 9) & M
 *           t = (s[1] << 17) & M
 *           s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t
 *           s[3] = rotl(s[3], 45)
 *           return r
 *   g = X(42); print([hex(g.next()) for _ in range(4)])
 *   g = X(0); print([hex(g.next()) for _ in range(2)])
 *   g = X(42); print([g.next() >> 40 for _ in range(3)])   # uniform = k / 2**24
 *   g = X(7); a = g.next(); b = g.next()
 *   u1 = ((a >> 11) + 1) * 2.0**-53; u2 = (b >> 11) * 2.0**-53
 *   print(math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2))
 *   g = X(99)
 *   def below(n):
 *       th = (2**64 - n) % n
 *       while True:
 *           x = g.next()
 *           if x >= th: return x % n
 *   print([below(10) for _ in range(8)])
 *
 * The bf16 bit patterns are worked out by hand in the comments beside them.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <train/tensor.h>

#include "testlib.h"

/* ---- dtypes and tensors ---------------------------------------------------- */

static void test_dtypes(void)
{
	CU_ASSERT_EQUAL(train_dtype_size(TRAIN_F32), 4);
	CU_ASSERT_EQUAL(train_dtype_size(TRAIN_BF16), 2);
	CU_ASSERT_EQUAL(train_dtype_size(TRAIN_F16), 2);
	CU_ASSERT_EQUAL(train_dtype_size(TRAIN_I64), 8);
	CU_ASSERT_EQUAL(train_dtype_size(TRAIN_I32), 4);
	CU_ASSERT_EQUAL(train_dtype_size(TRAIN_U8), 1);
	CU_ASSERT_EQUAL(train_dtype_size((train_dtype)99), 0);
	CU_ASSERT_STRING_EQUAL(train_dtype_name(TRAIN_F32), "F32");
	CU_ASSERT_STRING_EQUAL(train_dtype_name(TRAIN_BF16), "BF16");
	CU_ASSERT_STRING_EQUAL(train_dtype_name(TRAIN_F16), "F16");
	CU_ASSERT_STRING_EQUAL(train_dtype_name(TRAIN_I64), "I64");
	CU_ASSERT_STRING_EQUAL(train_dtype_name(TRAIN_I32), "I32");
	CU_ASSERT_STRING_EQUAL(train_dtype_name(TRAIN_U8), "U8");
	CU_ASSERT_PTR_NULL(train_dtype_name((train_dtype)99));

	train_tensor t = { .dtype = TRAIN_BF16, .ndim = 3, .shape = { 2, 3, 5, 1 } };
	CU_ASSERT_EQUAL(train_tensor_numel(&t), 30);
	CU_ASSERT_EQUAL(train_tensor_nbytes(&t), 60);
	t.ndim = 0; /* a scalar */
	CU_ASSERT_EQUAL(train_tensor_numel(&t), 1);
	t.ndim = 2;
	t.shape[1] = 0;
	CU_ASSERT_EQUAL(train_tensor_numel(&t), 0);
}

/* ---- arenas ---------------------------------------------------------------- */

static int all_zero(const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++)
		if (c[i])
			return 0;
	return 1;
}

static void test_arena_fixed(void)
{
	train_arena *a;
	CU_ASSERT_EQUAL_FATAL(train_arena_create(1000, &a), 0);
	CU_ASSERT_EQUAL(train_arena_used(a), 0);
	/* Blocks are rounded up to 64 bytes; the capacity to a multiple of 64. */
	char *p[4];
	for (int i = 0; i < 4; i++) {
		p[i] = train_arena_alloc(a, 200);
		CU_ASSERT_PTR_NOT_NULL_FATAL(p[i]);
		CU_ASSERT_EQUAL((uintptr_t)p[i] % 64, 0);
		CU_ASSERT(all_zero(p[i], 200));
		memset(p[i], 0xab, 200);
	}
	CU_ASSERT_EQUAL(p[1] - p[0], 256);
	CU_ASSERT_EQUAL(train_arena_used(a), 1024);
	/* Full: NULL, and nothing changes. */
	CU_ASSERT_PTR_NULL(train_arena_alloc(a, 1));
	CU_ASSERT_PTR_NULL(train_arena_alloc(a, SIZE_MAX));
	CU_ASSERT_EQUAL(train_arena_used(a), 1024);
	train_tensor t;
	int64_t shape[1] = { 1 };
	CU_ASSERT_EQUAL(train_arena_tensor(a, TRAIN_F32, 1, shape, &t), TRAIN_ENOMEM);

	/* Reset to a mark: the same addresses again, zeroed again. */
	train_arena_reset(a, 256);
	CU_ASSERT_EQUAL(train_arena_mark(a), 256);
	char *q = train_arena_alloc(a, 256);
	CU_ASSERT_PTR_EQUAL(q, p[1]);
	CU_ASSERT(all_zero(q, 256));
	CU_ASSERT(p[0][0] == (char)0xab); /* before the mark: untouched */
	train_arena_reset(a, 0);
	CU_ASSERT_EQUAL(train_arena_used(a), 0);
	q = train_arena_alloc(a, 1000);
	CU_ASSERT_PTR_EQUAL(q, p[0]);
	CU_ASSERT(all_zero(q, 1000));
	train_arena_destroy(a);

	/* Capacity that can't be allocated. */
	CU_ASSERT_EQUAL(train_arena_create(SIZE_MAX - 10, &a), TRAIN_ENOMEM);
	CU_ASSERT_PTR_NULL(a);
	train_arena_destroy(NULL);
}

static void test_arena_growth(void)
{
	train_arena *a;
	CU_ASSERT_EQUAL_FATAL(train_arena_create(0, &a), 0);
	CU_ASSERT_EQUAL(train_arena_mark(a), 0);
	/* 100 blocks of 100 KB: several chunks; earlier blocks never move. */
	enum { NB = 100, SZ = 100 * 1000 };
	unsigned char *blk[NB];
	for (int i = 0; i < NB; i++) {
		blk[i] = train_arena_alloc(a, SZ);
		CU_ASSERT_PTR_NOT_NULL_FATAL(blk[i]);
		CU_ASSERT_EQUAL((uintptr_t)blk[i] % 64, 0);
		CU_ASSERT(all_zero(blk[i], SZ));
		memset(blk[i], i + 1, SZ);
	}
	for (int i = 0; i < NB; i++)
		CU_ASSERT(blk[i][0] == i + 1 && blk[i][SZ - 1] == i + 1);
	/* A block larger than the chunk size. */
	size_t mark = train_arena_mark(a);
	CU_ASSERT(mark >= (size_t)NB * SZ);
	unsigned char *big = train_arena_alloc(a, 5u << 20);
	CU_ASSERT_PTR_NOT_NULL_FATAL(big);
	CU_ASSERT(all_zero(big, 5u << 20));
	memset(big, 0x5a, 5u << 20);
	CU_ASSERT(train_arena_used(a) >= mark + (5u << 20));

	/* Reset to the mark: the same big block comes back, zeroed, and the
	 * blocks before the mark are untouched. */
	train_arena_reset(a, mark);
	CU_ASSERT_EQUAL(train_arena_used(a), mark);
	unsigned char *again = train_arena_alloc(a, 5u << 20);
	CU_ASSERT_PTR_EQUAL(again, big);
	CU_ASSERT(all_zero(again, 5u << 20));
	for (int i = 0; i < NB; i++)
		CU_ASSERT(blk[i][0] == i + 1 && blk[i][SZ - 1] == i + 1);

	/* Reset to 0 and replay the same sequence: the same addresses, so a
	 * step that resets its arena allocates nothing new. */
	train_arena_reset(a, 0);
	for (int i = 0; i < NB; i++) {
		unsigned char *p = train_arena_alloc(a, SZ);
		CU_ASSERT_PTR_EQUAL(p, blk[i]);
		CU_ASSERT(all_zero(p, SZ));
	}
	/* Zero bytes: an aligned pointer, nothing used. */
	size_t m = train_arena_mark(a);
	void *z = train_arena_alloc(a, 0);
	CU_ASSERT_PTR_NOT_NULL(z);
	CU_ASSERT_EQUAL((uintptr_t)z % 64, 0);
	CU_ASSERT_EQUAL(train_arena_mark(a), m);
	train_arena_destroy(a);
}

static void test_arena_tensor(void)
{
	train_arena *a;
	CU_ASSERT_EQUAL_FATAL(train_arena_create(0, &a), 0);
	train_tensor t;
	int64_t shape[4] = { 2, 3, 4, 5 };
	CU_ASSERT_EQUAL_FATAL(train_arena_tensor(a, TRAIN_F32, 4, shape, &t), 0);
	CU_ASSERT_EQUAL(t.dtype, TRAIN_F32);
	CU_ASSERT_EQUAL(t.ndim, 4);
	CU_ASSERT_EQUAL(train_tensor_numel(&t), 120);
	CU_ASSERT_EQUAL(train_tensor_nbytes(&t), 480);
	CU_ASSERT_EQUAL((uintptr_t)t.data % 64, 0);
	CU_ASSERT(all_zero(t.data, 480));

	CU_ASSERT_EQUAL_FATAL(train_arena_tensor(a, TRAIN_I64, 2, shape, &t), 0);
	CU_ASSERT_EQUAL(t.shape[2], 1); /* unused dims are 1 */
	CU_ASSERT_EQUAL(t.shape[3], 1);
	CU_ASSERT_EQUAL(train_tensor_nbytes(&t), 48);
	CU_ASSERT_EQUAL_FATAL(train_arena_tensor(a, TRAIN_U8, 0, NULL, &t), 0);
	CU_ASSERT_EQUAL(train_tensor_numel(&t), 1);

	int64_t neg[2] = { 3, -1 };
	CU_ASSERT_EQUAL(train_arena_tensor(a, TRAIN_F32, 2, neg, &t), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_arena_tensor(a, TRAIN_F32, 5, shape, &t), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_arena_tensor(a, TRAIN_F32, -1, shape, &t), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_arena_tensor(a, (train_dtype)42, 1, shape, &t), TRAIN_EINVAL);
	int64_t huge[3] = { INT64_MAX, INT64_MAX, 2 };
	CU_ASSERT_EQUAL(train_arena_tensor(a, TRAIN_F32, 3, huge, &t), TRAIN_ENOMEM);
	train_arena_destroy(a);
}

/* ---- bf16 ------------------------------------------------------------------ */

static float f_of(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

static uint32_t u_of(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	return u;
}

static const struct {
	uint32_t f32;
	uint16_t bf16;
} bf16_cases[] = {
	{ 0x3f800000, 0x3f80 }, /* 1.0: exact */
	{ 0xbf800000, 0xbf80 }, /* -1.0 */
	{ 0x00000000, 0x0000 }, /* +0 */
	{ 0x80000000, 0x8000 }, /* -0 */
	{ 0x3f807fff, 0x3f80 }, /* below half: down */
	{ 0x3f808000, 0x3f80 }, /* tie, even (...0) kept: down */
	{ 0x3f818000, 0x3f82 }, /* tie, odd (...1): up to even */
	{ 0x3f808001, 0x3f81 }, /* above half: up */
	{ 0xbf818000, 0xbf82 }, /* negative tie: magnitude up to even */
	{ 0x3fff8000, 0x4000 }, /* tie that carries into the exponent */
	{ 0x40490fdb, 0x4049 }, /* pi: 0x0fdb < 0x8000, down */
	{ 0x00008000, 0x0000 }, /* denormal tie, even: to zero */
	{ 0x00018000, 0x0002 }, /* denormal tie, odd: up */
	{ 0x0000ffff, 0x0001 }, /* denormal, up */
	{ 0x007fffff, 0x0080 }, /* largest denormal rounds to the smallest normal */
	{ 0x80010000, 0x8001 }, /* negative denormal, exact */
	{ 0x7f7f7fff, 0x7f7f }, /* largest finite bf16 */
	{ 0x7f7fffff, 0x7f80 }, /* FLT_MAX overflows to +inf (as RNE says) */
	{ 0x7f800000, 0x7f80 }, /* +inf */
	{ 0xff800000, 0xff80 }, /* -inf */
	{ 0x7fc00000, 0x7fc0 }, /* quiet NaN */
	{ 0xffc00000, 0xffc0 }, /* negative quiet NaN */
	{ 0x7f800001, 0x7fc0 }, /* NaN with a low payload: still NaN, not inf */
	{ 0xff800001, 0xffc0 },
	{ 0x7fffffff, 0x7fff }, /* rounding would wrap into the sign: NaN kept */
	{ 0x7fa12345, 0x7fe1 }, /* signalling NaN: quieted, upper payload kept */
};

static void test_bf16(void)
{
	size_t n = sizeof bf16_cases / sizeof bf16_cases[0];
	float src[sizeof bf16_cases / sizeof bf16_cases[0]];
	uint16_t dst[sizeof bf16_cases / sizeof bf16_cases[0]];
	for (size_t i = 0; i < n; i++) {
		uint16_t got = train_f32_to_bf16(f_of(bf16_cases[i].f32));
		if (got != bf16_cases[i].bf16)
			fprintf(stderr, "bf16(0x%08x) = 0x%04x, want 0x%04x\n", (unsigned)bf16_cases[i].f32,
			        (unsigned)got, (unsigned)bf16_cases[i].bf16);
		CU_ASSERT_EQUAL(got, bf16_cases[i].bf16);
		src[i] = f_of(bf16_cases[i].f32);
	}
	/* The array version agrees with the scalar one. */
	train_f32_to_bf16_n(dst, src, n);
	for (size_t i = 0; i < n; i++)
		CU_ASSERT_EQUAL(dst[i], bf16_cases[i].bf16);

	/* bf16 -> f32 is exact: the bits shift up. */
	CU_ASSERT_EQUAL(train_bf16_to_f32(0x3f80), 1.0f);
	CU_ASSERT_EQUAL(u_of(train_bf16_to_f32(0xc049)), 0xc0490000u);
	CU_ASSERT(isinf(train_bf16_to_f32(0xff80)) && train_bf16_to_f32(0xff80) < 0);
	CU_ASSERT(isnan(train_bf16_to_f32(0x7fc1)));
	CU_ASSERT_EQUAL(u_of(train_bf16_to_f32(0x7fc1)), 0x7fc10000u);
	CU_ASSERT_EQUAL(u_of(train_bf16_to_f32(0x0001)), 0x00010000u);

	/* Round trip of every bf16 value through f32 and back: exact (NaNs stay
	 * NaN; their quiet bit is set). */
	static uint16_t all[65536], back[65536];
	static float wide[65536];
	for (uint32_t i = 0; i < 65536; i++)
		all[i] = (uint16_t)i;
	train_bf16_to_f32_n(wide, all, 65536);
	train_f32_to_bf16_n(back, wide, 65536);
	int bad = 0;
	for (uint32_t i = 0; i < 65536; i++) {
		int is_nan = (i & 0x7fff) > 0x7f80;
		if (is_nan ? back[i] != (i | 0x40) : back[i] != i)
			bad++;
	}
	CU_ASSERT_EQUAL(bad, 0);

	/* Relative error of the conversion is at most 2^-8, the unit roundoff
	 * of an 8-bit significand (half an ulp of 2^-7), for normal numbers. */
	train_rng r;
	train_rng_seed(&r, 5);
	double worst = 0;
	for (int i = 0; i < 100000; i++) {
		float x = (train_rng_uniform(&r) - 0.5f) * 1e4f;
		if (x == 0)
			continue;
		double e = fabs((double)train_bf16_to_f32(train_f32_to_bf16(x)) - x) / fabs(x);
		if (e > worst)
			worst = e;
	}
	CU_ASSERT(worst <= 1.0 / 256);
	CU_ASSERT(worst > 1.0 / 512); /* and the bound is reached, nearly */
}

/* ---- random numbers -------------------------------------------------------- */

static void test_rng_known(void)
{
	train_rng r;
	train_rng_seed(&r, 42);
	CU_ASSERT_EQUAL(train_rng_u64(&r), 0x15780b2e0c2ec716ull);
	CU_ASSERT_EQUAL(train_rng_u64(&r), 0x6104d9866d113a7eull);
	CU_ASSERT_EQUAL(train_rng_u64(&r), 0xae17533239e499a1ull);
	CU_ASSERT_EQUAL(train_rng_u64(&r), 0xecb8ad4703b360a1ull);
	train_rng_seed(&r, 0); /* seed 0 is a fine seed */
	CU_ASSERT_EQUAL(train_rng_u64(&r), 0x99ec5f36cb75f2b4ull);
	CU_ASSERT_EQUAL(train_rng_u64(&r), 0xbf6e1f784956452aull);

	train_rng_seed(&r, 42);
	CU_ASSERT_EQUAL(train_rng_uniform(&r), 1406987.0f / 16777216.0f);
	CU_ASSERT_EQUAL(train_rng_uniform(&r), 6358233.0f / 16777216.0f);
	CU_ASSERT_EQUAL(train_rng_uniform(&r), 11409235.0f / 16777216.0f);

	/* Box-Muller in double; libm may differ in the last bit of a double. */
	train_rng_seed(&r, 7);
	CU_ASSERT_DOUBLE_EQUAL(train_rng_normal(&r), -0.15157274547711355, 1e-7);

	train_rng_seed(&r, 99);
	static const uint64_t want[8] = { 8, 6, 7, 6, 0, 8, 4, 1 };
	for (int i = 0; i < 8; i++)
		CU_ASSERT_EQUAL(train_rng_below(&r, 10), want[i]);

	/* Same seed, same stream; another seed, another stream. */
	train_rng a, b;
	train_rng_seed(&a, 1234);
	train_rng_seed(&b, 1234);
	float xa[64], xb[64];
	train_rng_fill_normal(&a, xa, 64, 0, 1);
	train_rng_fill_normal(&b, xb, 64, 0, 1);
	CU_ASSERT_EQUAL(memcmp(xa, xb, sizeof xa), 0);
	train_rng_seed(&b, 1235);
	train_rng_fill_normal(&b, xb, 64, 0, 1);
	CU_ASSERT_NOT_EQUAL(memcmp(xa, xb, sizeof xa), 0);
}

static void test_rng_uniform(void)
{
	train_rng r;
	train_rng_seed(&r, 11);
	enum { N = 1000000 };
	float *x = malloc(N * sizeof *x);
	CU_ASSERT_PTR_NOT_NULL_FATAL(x);
	train_rng_fill_uniform(&r, x, N, -2.0f, 3.0f);
	double sum = 0, sq = 0;
	int out = 0;
	for (int i = 0; i < N; i++) {
		if (!(x[i] >= -2.0f && x[i] < 3.0f))
			out++;
		sum += x[i];
		sq += (double)x[i] * x[i];
	}
	double mean = sum / N, var = sq / N - mean * mean;
	/* U(-2, 3): mean 0.5, variance 25/12.  The standard error of the mean
	 * is sqrt(25/12/N) = 0.0014; of the variance about 0.002.  Tolerances
	 * are 7 of those: a failure is a bug, not bad luck (and the seed is
	 * fixed anyway). */
	CU_ASSERT_EQUAL(out, 0);
	CU_ASSERT_DOUBLE_EQUAL(mean, 0.5, 0.01);
	CU_ASSERT_DOUBLE_EQUAL(var, 25.0 / 12.0, 0.015);

	/* [0, 1): never 1, and at the 24-bit grid. */
	for (int i = 0; i < 100000; i++) {
		float u = train_rng_uniform(&r);
		CU_ASSERT_FATAL(u >= 0.0f && u < 1.0f);
		CU_ASSERT_FATAL(u * 16777216.0f == floorf(u * 16777216.0f));
	}
	free(x);
}

static void test_rng_normal(void)
{
	train_rng r;
	train_rng_seed(&r, 3);
	enum { N = 1000000 };
	float *x = malloc(N * sizeof *x);
	CU_ASSERT_PTR_NOT_NULL_FATAL(x);
	train_rng_fill_normal(&r, x, N, 1.5f, 2.0f);
	double sum = 0;
	for (int i = 0; i < N; i++)
		sum += x[i];
	double mean = sum / N, m2 = 0, m4 = 0;
	int beyond3 = 0;
	for (int i = 0; i < N; i++) {
		double d = x[i] - mean;
		m2 += d * d;
		m4 += d * d * d * d;
		if (fabs(d) > 3 * 2.0)
			beyond3++;
	}
	m2 /= N;
	m4 /= N;
	/* N(1.5, 2^2): the standard error of the mean is 2/sqrt(N) = 0.002, of
	 * the variance 4*sqrt(2/N) = 0.0057; tolerances are about 7 of those.
	 * Kurtosis 3 (+-0.05) and the share beyond 3 sigma (0.27%) check the
	 * shape, not just the first two moments. */
	CU_ASSERT_DOUBLE_EQUAL(mean, 1.5, 0.015);
	CU_ASSERT_DOUBLE_EQUAL(m2, 4.0, 0.04);
	CU_ASSERT_DOUBLE_EQUAL(m4 / (m2 * m2), 3.0, 0.05);
	CU_ASSERT_DOUBLE_EQUAL((double)beyond3 / N, 0.0027, 0.0004);

	/* Single draws: standard normal. */
	double s = 0, s2 = 0;
	for (int i = 0; i < 200000; i++) {
		double z = train_rng_normal(&r);
		s += z;
		s2 += z * z;
	}
	CU_ASSERT_DOUBLE_EQUAL(s / 200000, 0.0, 0.016);
	CU_ASSERT_DOUBLE_EQUAL(s2 / 200000, 1.0, 0.022);
	/* An odd count fills the last element too. */
	float odd[3] = { NAN, NAN, NAN };
	train_rng_fill_normal(&r, odd, 3, 0, 1);
	CU_ASSERT(isfinite(odd[0]) && isfinite(odd[1]) && isfinite(odd[2]));
	free(x);
}

static void test_rng_below(void)
{
	train_rng r;
	train_rng_seed(&r, 17);
	CU_ASSERT_EQUAL(train_rng_below(&r, 0), 0);
	CU_ASSERT_EQUAL(train_rng_below(&r, 1), 0);
	/* n = 3: every residue near a third (standard error 0.09% of N). */
	enum { N = 300000 };
	int count[3] = { 0 };
	for (int i = 0; i < N; i++) {
		uint64_t v = train_rng_below(&r, 3);
		CU_ASSERT_FATAL(v < 3);
		count[v]++;
	}
	for (int i = 0; i < 3; i++)
		CU_ASSERT(abs(count[i] - N / 3) < N / 200);
	/* n just above 2^63: about half of all draws are rejected; the
	 * results must still be below n and split evenly around 2^62. */
	uint64_t n = (UINT64_C(1) << 63) + 1;
	int low = 0;
	for (int i = 0; i < 10000; i++) {
		uint64_t v = train_rng_below(&r, n);
		CU_ASSERT_FATAL(v < n);
		low += v < n / 2;
	}
	CU_ASSERT(abs(low - 5000) < 350);
}

int main(void)
{
	static const test_case cases[] = {
		{ "dtypes", test_dtypes },
		{ "arena_fixed", test_arena_fixed },
		{ "arena_growth", test_arena_growth },
		{ "arena_tensor", test_arena_tensor },
		{ "bf16", test_bf16 },
		{ "rng_known", test_rng_known },
		{ "rng_uniform", test_rng_uniform },
		{ "rng_normal", test_rng_normal },
		{ "rng_below", test_rng_below },
		{ NULL, NULL },
	};
	return test_main("tensor", cases);
}
