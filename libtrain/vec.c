/*
 * libtrain/vec.c - fp32 -> bf16 conversion and the GELU/SiLU activations,
 * vectorised with AVX-512 and run on libgomp's threads.
 *
 * Why not oneDNN's.  In a bf16 training step, oneDNN's reorders (fp32 to
 * bf16, "jit:uni" in 2.6) and eltwise primitives took a fifth of the time
 * of the transformer block of bench/block_bench.c: a 2048 x 1024 reorder
 * 0.5-0.7 ms, GELU's backward 1.3 ms plus 0.5 ms for the add that makes it
 * accumulate, where these loops take a fraction (figures in the commit
 * that added them).
 *
 * Threads.  libtrain is not built with -fopenmp (see kernels.c), but
 * libdnnl links libgomp and so has loaded it; its GOMP_parallel (the entry
 * point gcc emits for `#pragma omp parallel`, stable since gcc 4.9) runs a
 * function on a team of threads, the same pool oneDNN's primitives use, so
 * no second set of threads competes with it.  Looked up with dlsym; if it
 * is not there (a oneDNN threaded another way) the loops run on the
 * calling thread.
 *
 * Math.  exp: x = n ln2 + r, |r| <= ln2/2, e^r by Cephes' expf polynomial,
 * scaled by 2^n (vscalefps, which also gives 0 and inf at the ends).
 * erfc: Abramowitz and Stegun 7.1.26, t = 1/(1 + 0.3275911 z), erfc(z) =
 * P(t) e^{-z^2} with a degree-5 P, within 1.5e-7; Phi(x) = erfc(-x/sqrt2)/2
 * is formed from it directly below 0, so it does not lose the lower tail
 * to the cancellation in 1 + erf(x), and GELU's derivative reuses its
 * e^{-z^2} for phi(x).  tanh from e^{2u} (gelu_tanh_half).  1/d is rcp14 with
 * one Newton step (about 23 bits).
 */
#include "vec.h"

#include <dlfcn.h>
#include <math.h>
#include <string.h>

#include <train/tensor.h>
#include <train/kernels.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define VEC_X86 1
#else
#define VEC_X86 0
#endif

/* ---- threads ----------------------------------------------------------------- */

static void (*gomp_parallel)(void (*)(void *), void *, unsigned, unsigned);
static int (*omp_thread_num)(void);
static int (*omp_num_threads)(void);
static int has_avx512, has_bf16;

void vec_init(void)
{
	*(void **)&gomp_parallel = dlsym(RTLD_DEFAULT, "GOMP_parallel");
	*(void **)&omp_thread_num = dlsym(RTLD_DEFAULT, "omp_get_thread_num");
	*(void **)&omp_num_threads = dlsym(RTLD_DEFAULT, "omp_get_num_threads");
	if (!omp_thread_num || !omp_num_threads)
		gomp_parallel = NULL;
#if VEC_X86
	__builtin_cpu_init();
	has_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
	             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
	has_bf16 = has_avx512 && train_cpu_has_bf16();
#endif
}

int vec_avx512(void)
{
	return has_avx512;
}

int vec_bf16_native(void)
{
	return has_bf16;
}

/* fn(ctx, lo, hi) over [0, n) split in `threads` contiguous parts whose
 * bounds are multiples of `align` (but the last). */
typedef void (*range_fn)(void *ctx, size_t lo, size_t hi);

typedef struct par_job {
	range_fn fn;
	void *ctx;
	size_t n, align;
} par_job;

static void par_body(void *arg)
{
	const par_job *j = arg;
	size_t t = (size_t)omp_thread_num(), nt = (size_t)omp_num_threads();
	size_t units = (j->n + j->align - 1) / j->align;
	size_t lo = units * t / nt * j->align, hi = units * (t + 1) / nt * j->align;
	if (hi > j->n)
		hi = j->n;
	if (lo < hi)
		j->fn(j->ctx, lo, hi);
}

/* Parallel from `grain` elements a thread; below, one call on this thread. */
static void par_for(size_t n, size_t grain, size_t align, int threads, range_fn fn, void *ctx)
{
	size_t want = grain ? n / grain : 1;
	if (want > (size_t)threads)
		want = (size_t)threads;
	if (want < 2 || !gomp_parallel) {
		if (n)
			fn(ctx, 0, n);
		return;
	}
	par_job j = { fn, ctx, n, align ? align : 1 };
	gomp_parallel(par_body, &j, (unsigned)want, 0);
}

/* ---- fp32 -> bf16 ------------------------------------------------------------ */

#if VEC_X86
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16"))) static void
to_bf16_avx512(uint16_t *dst, const float *src, size_t n)
{
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		__m512 lo = _mm512_loadu_ps(src + i), hi = _mm512_loadu_ps(src + i + 16);
		/* the second operand fills the low half */
		__m512bh r = _mm512_cvtne2ps_pbh(hi, lo);
		_mm512_storeu_si512((void *)(dst + i), (__m512i)r);
	}
	for (; i < n; i += 16) {
		size_t left = n - i;
		__mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
		__m256bh r = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, src + i));
		_mm256_mask_storeu_epi16((void *)(dst + i), m, (__m256i)r);
	}
}
#endif

static void to_bf16_row(uint16_t *dst, const float *src, size_t n)
{
#if VEC_X86
	if (has_bf16) {
		to_bf16_avx512(dst, src, n);
		return;
	}
#endif
	train_f32_to_bf16_n(dst, src, n);
}

/* A second thread from 2 x 256 K values: one thread converts 131 K values
 * (a 512 x 256 activation) in about 15 us, less than waking a sleeping
 * thread (OMP_WAIT_POLICY=passive) costs. */
#define CVT_GRAIN ((size_t)1 << 18)

typedef struct cvt_job {
	uint16_t *dst;
	const float *src;
	int nb1, rows, cols;
	int64_t bs0, bs1, ld;
} cvt_job;

/* Rows [lo, hi) of all matrices, numbered matrix by matrix. */
static void cvt_rows(void *arg, size_t lo, size_t hi)
{
	const cvt_job *c = arg;
	for (size_t r = lo; r < hi; r++) {
		size_t m = r / (size_t)c->rows, i = r % (size_t)c->rows;
		size_t b0 = m / (size_t)c->nb1, b1 = m % (size_t)c->nb1;
		const float *s = c->src + (int64_t)b0 * c->bs0 + (int64_t)b1 * c->bs1 + (int64_t)i * c->ld;
		to_bf16_row(c->dst + r * (size_t)c->cols, s, (size_t)c->cols);
	}
}

static void cvt_flat(void *arg, size_t lo, size_t hi)
{
	const cvt_job *c = arg;
	to_bf16_row(c->dst + lo, c->src + lo, hi - lo);
}

void vec_to_bf16(uint16_t *dst, const float *src, int nb0, int nb1, int64_t bs0, int64_t bs1,
                 int rows, int cols, int64_t ld, int threads)
{
	cvt_job c = { dst, src, nb1, rows, cols, bs0, bs1, ld };
	size_t nrows = (size_t)nb0 * (size_t)nb1 * (size_t)rows, total = nrows * (size_t)cols;
	const size_t grain = CVT_GRAIN;
	int dense = (ld == cols || rows == 1) &&
	            (nb0 * nb1 == 1 || (bs1 == (int64_t)rows * cols && bs0 == (int64_t)nb1 * bs1));
	if (dense) { /* one run */
		par_for(total, grain, 64, threads, cvt_flat, &c);
		return;
	}
	par_for(nrows, grain / (size_t)cols + 1, 1, threads, cvt_rows, &c);
}

void vec_to_bf16_n(uint16_t *dst, const float *src, size_t n, int threads)
{
	cvt_job c = { dst, src, 1, 1, 0, 0, 0, 0 };
	par_for(n, CVT_GRAIN, 64, threads, cvt_flat, &c);
}

/* ---- activations ------------------------------------------------------------- */

#if VEC_X86
#define V512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

/* e^x (see the top of the file) for x in [-104, 88], x clamped to it
 * (below -104 gives 0; 88 keeps 1 + e^x and its reciprocal finite); NaN
 * gives a number, so callers let x itself carry a NaN to the result. */
V512 static inline __m512 exp512(__m512 x)
{
	x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(88.0f));
	__m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
	                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
	r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
	__m512 p = _mm512_set1_ps(1.9875691500e-4f);
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
	p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
	return _mm512_scalef_ps(p, n);
}

/* 1/d: the 14-bit estimate and one Newton step (a division is several
 * times slower on the CPUs this was measured on) */
V512 static inline __m512 recip512(__m512 d)
{
	__m512 r = _mm512_rcp14_ps(d);
	return _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, _mm512_set1_ps(2.0f)));
}

/* Phi(x) and, if pdf, phi(x) = e^{-x^2/2} / sqrt(2 pi). */
V512 static inline __m512 phi512(__m512 x, __m512 *pdf)
{
	const __m512 one = _mm512_set1_ps(1.0f);
	__m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.70710678118654752f));
	__m512 t = recip512(_mm512_fmadd_ps(_mm512_set1_ps(0.3275911f), z, one));
	__m512 p = _mm512_set1_ps(1.061405429f);
	p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.453152027f));
	p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.421413741f));
	p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.284496736f));
	p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.254829592f));
	p = _mm512_mul_ps(p, t);
	__m512 e = exp512(_mm512_mul_ps(_mm512_mul_ps(z, z), _mm512_set1_ps(-1.0f)));
	/* erfc(z) / 2 = Phi(-|x|) */
	__m512 lower = _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), p), e);
	if (pdf)
		*pdf = _mm512_mul_ps(_mm512_set1_ps(0.39894228040143267794f), e);
	__mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
	return _mm512_mask_blend_ps(neg, _mm512_sub_ps(one, lower), lower);
}

/* s = 1 / (1 + e^-x), and 1 - s = e^-x s without the cancellation */
V512 static inline __m512 sigmoid512(__m512 x, __m512 *one_minus)
{
	__m512 e = exp512(_mm512_sub_ps(_mm512_setzero_ps(), x));
	__m512 s = recip512(_mm512_add_ps(_mm512_set1_ps(1.0f), e));
	if (one_minus)
		*one_minus = _mm512_mul_ps(e, s);
	return s;
}

#define GELU_K0 0.79788456080286535588f /* sqrt(2/pi) */
#define GELU_K1 0.044715f

/* With u = sqrt(2/pi) (x + 0.044715 x^3), e = e^{2u} and r = 1/(e + 1):
 * (1 + tanh u)/2 = e r, and 1 - tanh^2 u = 4 e r^2, neither formed by a
 * subtraction that cancels.  Returns (1 + tanh u)/2; *sech2 if asked. */
V512 static inline __m512 gelu_tanh_half(__m512 x, __m512 *sech2)
{
	const __m512 one = _mm512_set1_ps(1.0f);
	__m512 x2 = _mm512_mul_ps(x, x);
	__m512 u = _mm512_mul_ps(_mm512_set1_ps(GELU_K0),
	                         _mm512_fmadd_ps(_mm512_mul_ps(_mm512_set1_ps(GELU_K1), x2), x, x));
	__m512 e = exp512(_mm512_add_ps(u, u));
	__m512 r = recip512(_mm512_add_ps(e, one)), er = _mm512_mul_ps(e, r);
	if (sech2)
		*sech2 = _mm512_mul_ps(_mm512_set1_ps(4.0f), _mm512_mul_ps(er, r));
	return er;
}

V512 static inline __m512 act_fwd512(int alg, __m512 x)
{
	switch (alg) {
	case 1: return _mm512_mul_ps(x, phi512(x, NULL));
	case 2: return _mm512_mul_ps(x, sigmoid512(x, NULL));
	default: /* 3 */
		return _mm512_mul_ps(x, gelu_tanh_half(x, NULL));
	}
}

/* f'(x) */
V512 static inline __m512 act_grad512(int alg, __m512 x)
{
	const __m512 one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
	switch (alg) {
	case 1: { /* Phi(x) + x phi(x) */
		__m512 pdf, cdf = phi512(x, &pdf);
		return _mm512_fmadd_ps(x, pdf, cdf);
	}
	case 2: { /* s (1 + x (1 - s)) */
		__m512 q, s = sigmoid512(x, &q);
		return _mm512_mul_ps(s, _mm512_fmadd_ps(x, q, one));
	}
	default: { /* (1 + th)/2 + x/2 (1 - th^2) sqrt(2/pi) (1 + 3 k1 x^2) */
		__m512 sech2, a = gelu_tanh_half(x, &sech2), x2 = _mm512_mul_ps(x, x);
		__m512 du = _mm512_mul_ps(_mm512_set1_ps(GELU_K0),
		                          _mm512_fmadd_ps(_mm512_set1_ps(3.0f * GELU_K1), x2, one));
		return _mm512_fmadd_ps(_mm512_mul_ps(half, x), _mm512_mul_ps(sech2, du), a);
	}
	}
}

typedef struct act_job {
	int alg, accumulate;
	float *out;
	const float *inp, *dout;
} act_job;

V512 static void act_fwd_range(void *arg, size_t lo, size_t hi)
{
	const act_job *j = arg;
	for (size_t i = lo; i < hi; i += 16) {
		size_t left = hi - i;
		__mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
		__m512 x = _mm512_maskz_loadu_ps(m, j->inp + i);
		_mm512_mask_storeu_ps(j->out + i, m, act_fwd512(j->alg, x));
	}
}

V512 static void act_bwd_range(void *arg, size_t lo, size_t hi)
{
	const act_job *j = arg;
	for (size_t i = lo; i < hi; i += 16) {
		size_t left = hi - i;
		__mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
		__m512 x = _mm512_maskz_loadu_ps(m, j->inp + i);
		__m512 g = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, j->dout + i), act_grad512(j->alg, x));
		if (j->accumulate)
			g = _mm512_add_ps(g, _mm512_maskz_loadu_ps(m, j->out + i));
		_mm512_mask_storeu_ps(j->out + i, m, g);
	}
}
#endif

/* Elementwise work: 64 K elements a thread (about 35 us of GELU) before a
 * second thread pays for its wake-up. */
#define ACT_GRAIN ((size_t)1 << 16)

void vec_act_forward(int alg, float *out, const float *inp, size_t n, int threads)
{
#if VEC_X86
	act_job j = { alg, 0, out, inp, NULL };
	par_for(n, ACT_GRAIN, 16, threads, act_fwd_range, &j);
#else
	(void)alg, (void)out, (void)inp, (void)n, (void)threads;
#endif
}

void vec_act_backward(int alg, float *dinp, const float *inp, const float *dout, size_t n,
                      int accumulate, int threads)
{
#if VEC_X86
	act_job j = { alg, accumulate, dinp, inp, dout };
	par_for(n, ACT_GRAIN, 16, threads, act_bwd_range, &j);
#else
	(void)alg, (void)dinp, (void)inp, (void)dout, (void)n, (void)accumulate, (void)threads;
#endif
}

/* ---- dropout masks ------------------------------------------------------------ */

/*
 * Element i is kept when (h(i) >> 8) >= thr, h a counter-based hash of i
 * under the call's key: two rounds of the "lowbias32" integer hash
 * (Wellons), h = lb(lb(lo32(i) ^ ka) ^ (hi32(i) + kb)).  A function of i,
 * not of a sequence, so any split over threads gives the same mask.
 */
static inline uint32_t lowbias32(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x7feb352du;
	x ^= x >> 15;
	x *= 0x846ca68bu;
	x ^= x >> 16;
	return x;
}

typedef struct drop_job {
	float *out;
	uint8_t *mask;
	const float *inp;
	uint32_t thr, ka, kb;
	float scale;
} drop_job;

static void drop_scalar(const drop_job *j, size_t lo, size_t hi)
{
	for (size_t i = lo; i < hi; i++) {
		uint32_t h = lowbias32(lowbias32((uint32_t)i ^ j->ka) ^ ((uint32_t)(i >> 32) + j->kb));
		uint8_t keep = (h >> 8) >= j->thr;
		j->mask[i] = keep;
		j->out[i] = keep ? j->inp[i] * j->scale : 0.0f;
	}
}

#if VEC_X86
V512 static inline __m512i lowbias512(__m512i x)
{
	x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
	x = _mm512_mullo_epi32(x, _mm512_set1_epi32(0x7feb352d));
	x = _mm512_xor_si512(x, _mm512_srli_epi32(x, 15));
	x = _mm512_mullo_epi32(x, _mm512_set1_epi32((int)0x846ca68bu));
	return _mm512_xor_si512(x, _mm512_srli_epi32(x, 16));
}

/* lo is a multiple of 16 (par_for's alignment), so a vector's 16 indices
 * share their high 32 bits. */
V512 static void drop_avx512(const drop_job *j, size_t lo, size_t hi)
{
	const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
	const __m512i thr = _mm512_set1_epi32((int)j->thr), ka = _mm512_set1_epi32((int)j->ka);
	const __m512 scale = _mm512_set1_ps(j->scale);
	const __m128i ones = _mm_set1_epi8(1);
	for (size_t i = lo; i < hi; i += 16) {
		size_t left = hi - i;
		__mmask16 m = left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
		__m512i x = _mm512_add_epi32(_mm512_set1_epi32((int)(uint32_t)i), iota);
		x = lowbias512(_mm512_xor_si512(x, ka));
		x = _mm512_xor_si512(x, _mm512_set1_epi32((int)((uint32_t)(i >> 32) + j->kb)));
		x = lowbias512(x);
		__mmask16 keep = _mm512_cmpge_epu32_mask(_mm512_srli_epi32(x, 8), thr) & m;
		__m512 v = _mm512_maskz_loadu_ps(m, j->inp + i);
		_mm512_mask_storeu_ps(j->out + i, m, _mm512_maskz_mul_ps(keep, v, scale));
		_mm_mask_storeu_epi8(j->mask + i, m, _mm_maskz_mov_epi8(keep, ones));
	}
}
#endif

static void drop_range(void *arg, size_t lo, size_t hi)
{
	const drop_job *j = arg;
#if VEC_X86
	if (has_avx512) {
		drop_avx512(j, lo, hi);
		return;
	}
#endif
	drop_scalar(j, lo, hi);
}

void vec_dropout(float *out, uint8_t *mask, const float *inp, size_t n, uint32_t thr,
                 float scale, uint64_t key, int threads)
{
	drop_job j = { out, mask, inp, thr, (uint32_t)key, (uint32_t)(key >> 32), scale };
	par_for(n, 2 * ACT_GRAIN, 16, threads, drop_range, &j);
}
