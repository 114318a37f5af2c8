/*
 * plugins/rag/hnsw.c - HNSW graph: distance kernels, insertion (threaded),
 * search, the mmap-able file and its checks.  See hnsw.h.
 *
 * Insertion follows the paper (algorithms 1, 2 and 4): a node draws its top
 * level from an exponential law with mL = 1/ln(M), descends greedily from
 * the entry point to that level, then at each level below runs a beam search
 * of width ef_construction and keeps M neighbours chosen by the heuristic
 * (a candidate is kept only if it is nearer to the new node than to every
 * neighbour kept so far); each neighbour links back, pruning its own list by
 * the same heuristic when it is full (M at the upper levels, M0 = 2M at
 * level 0, the values hnswlib uses).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <train/common.h>

#include "hnsw.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HNSW_X86 1
#endif

/* ---- distance kernels ------------------------------------------------------ */

typedef float (*dot_fn)(const float *a, const float *b, uint32_t n);

static float dot_scalar(const float *a, const float *b, uint32_t n)
{
	float s[4] = { 0, 0, 0, 0 };
	uint32_t i = 0;
	for (; i + 4 <= n; i += 4)
		for (int j = 0; j < 4; j++)
			s[j] += a[i + j] * b[i + j];
	for (; i < n; i++)
		s[0] += a[i] * b[i];
	return (s[0] + s[1]) + (s[2] + s[3]);
}

static float l2_scalar(const float *a, const float *b, uint32_t n)
{
	float s[4] = { 0, 0, 0, 0 };
	uint32_t i = 0;
	for (; i + 4 <= n; i += 4)
		for (int j = 0; j < 4; j++) {
			float d = a[i + j] - b[i + j];
			s[j] += d * d;
		}
	for (; i < n; i++)
		s[0] += (a[i] - b[i]) * (a[i] - b[i]);
	return (s[0] + s[1]) + (s[2] + s[3]);
}

#ifdef HNSW_X86
__attribute__((target("avx2,fma"))) static float hsum256(__m256 v)
{
	__m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
	lo = _mm_add_ps(lo, hi);
	lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
	lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
	return _mm_cvtss_f32(lo);
}

__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, uint32_t n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
	uint32_t i = 0;
	for (; i + 16 <= n; i += 16) {
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
	}
	for (; i + 8 <= n; i += 8)
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
	float s = hsum256(_mm256_add_ps(s0, s1));
	for (; i < n; i++)
		s += a[i] * b[i];
	return s;
}

__attribute__((target("avx2,fma"))) static float l2_avx2(const float *a, const float *b, uint32_t n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
	uint32_t i = 0;
	for (; i + 16 <= n; i += 16) {
		__m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
		__m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
		s0 = _mm256_fmadd_ps(d0, d0, s0);
		s1 = _mm256_fmadd_ps(d1, d1, s1);
	}
	for (; i + 8 <= n; i += 8) {
		__m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
		s0 = _mm256_fmadd_ps(d0, d0, s0);
	}
	float s = hsum256(_mm256_add_ps(s0, s1));
	for (; i < n; i++)
		s += (a[i] - b[i]) * (a[i] - b[i]);
	return s;
}

__attribute__((target("avx512f"))) static float dot_avx512(const float *a, const float *b, uint32_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	uint32_t i = 0;
	for (; i + 32 <= n; i += 32) {
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
	}
	for (; i + 16 <= n; i += 16)
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
	if (i < n) {
		__mmask16 m = (__mmask16)((1u << (n - i)) - 1);
		s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx512f"))) static float l2_avx512(const float *a, const float *b, uint32_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	uint32_t i = 0;
	for (; i + 32 <= n; i += 32) {
		__m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
		__m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
		s0 = _mm512_fmadd_ps(d0, d0, s0);
		s1 = _mm512_fmadd_ps(d1, d1, s1);
	}
	for (; i + 16 <= n; i += 16) {
		__m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
		s0 = _mm512_fmadd_ps(d0, d0, s0);
	}
	if (i < n) {
		__mmask16 m = (__mmask16)((1u << (n - i)) - 1);
		__m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
		s1 = _mm512_fmadd_ps(d, d, s1);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}
#endif

/*
 * bf16 copies of the vectors for graph traversal: each row is the float32
 * row rounded to nearest even in the top 16 bits, padded with zeros to a
 * multiple of 32 elements (so no kernel has a tail).  A bf16 value widens
 * to float32 by a 16-bit shift; AVX512-BF16's vdpbf16ps multiplies 32
 * pairs and accumulates them into 16 float32 sums in one instruction.
 */
typedef float (*dotb_fn)(const uint16_t *a, const uint16_t *b, uint32_t n);

static inline float bf16_to_f32(uint16_t v)
{
	uint32_t u = (uint32_t)v << 16;
	float f;
	memcpy(&f, &u, 4);
	return f;
}

static inline uint16_t f32_to_bf16(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN stays NaN */
		return (uint16_t)((u >> 16) | 0x40);
	u += 0x7fffu + ((u >> 16) & 1);
	return (uint16_t)(u >> 16);
}

static float dotb_scalar(const uint16_t *a, const uint16_t *b, uint32_t n)
{
	float s[4] = { 0, 0, 0, 0 };
	for (uint32_t i = 0; i < n; i += 4)
		for (int j = 0; j < 4; j++)
			s[j] += bf16_to_f32(a[i + j]) * bf16_to_f32(b[i + j]);
	return (s[0] + s[1]) + (s[2] + s[3]);
}

static float l2b_scalar(const uint16_t *a, const uint16_t *b, uint32_t n)
{
	float s[4] = { 0, 0, 0, 0 };
	for (uint32_t i = 0; i < n; i += 4)
		for (int j = 0; j < 4; j++) {
			float d = bf16_to_f32(a[i + j]) - bf16_to_f32(b[i + j]);
			s[j] += d * d;
		}
	return (s[0] + s[1]) + (s[2] + s[3]);
}

#ifdef HNSW_X86
__attribute__((target("avx2,fma"))) static inline __m256 widen8(const uint16_t *p)
{
	__m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
	return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

__attribute__((target("avx2,fma"))) static float dotb_avx2(const uint16_t *a, const uint16_t *b,
                                                         uint32_t n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
	for (uint32_t i = 0; i < n; i += 16) {
		s0 = _mm256_fmadd_ps(widen8(a + i), widen8(b + i), s0);
		s1 = _mm256_fmadd_ps(widen8(a + i + 8), widen8(b + i + 8), s1);
	}
	return hsum256(_mm256_add_ps(s0, s1));
}

__attribute__((target("avx2,fma"))) static float l2b_avx2(const uint16_t *a, const uint16_t *b,
                                                        uint32_t n)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
	for (uint32_t i = 0; i < n; i += 16) {
		__m256 d0 = _mm256_sub_ps(widen8(a + i), widen8(b + i));
		__m256 d1 = _mm256_sub_ps(widen8(a + i + 8), widen8(b + i + 8));
		s0 = _mm256_fmadd_ps(d0, d0, s0);
		s1 = _mm256_fmadd_ps(d1, d1, s1);
	}
	return hsum256(_mm256_add_ps(s0, s1));
}

__attribute__((target("avx512f"))) static inline __m512 widen16(const uint16_t *p)
{
	__m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p));
	return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}

__attribute__((target("avx512f"))) static float dotb_avx512(const uint16_t *a, const uint16_t *b,
                                                          uint32_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	for (uint32_t i = 0; i < n; i += 32) {
		s0 = _mm512_fmadd_ps(widen16(a + i), widen16(b + i), s0);
		s1 = _mm512_fmadd_ps(widen16(a + i + 16), widen16(b + i + 16), s1);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx512f"))) static float l2b_avx512(const uint16_t *a, const uint16_t *b,
                                                         uint32_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	for (uint32_t i = 0; i < n; i += 32) {
		__m512 d0 = _mm512_sub_ps(widen16(a + i), widen16(b + i));
		__m512 d1 = _mm512_sub_ps(widen16(a + i + 16), widen16(b + i + 16));
		s0 = _mm512_fmadd_ps(d0, d0, s0);
		s1 = _mm512_fmadd_ps(d1, d1, s1);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/* vdpbf16ps: 32 products per instruction; n is a multiple of 32. */
__attribute__((target("avx512f,avx512bf16"))) static float dotb_bf16(const uint16_t *a,
                                                                   const uint16_t *b, uint32_t n)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	uint32_t i = 0;
	for (; i + 64 <= n; i += 64) {
		s0 = _mm512_dpbf16_ps(s0, (__m512bh)_mm512_loadu_si512(a + i),
		                      (__m512bh)_mm512_loadu_si512(b + i));
		s1 = _mm512_dpbf16_ps(s1, (__m512bh)_mm512_loadu_si512(a + i + 32),
		                      (__m512bh)_mm512_loadu_si512(b + i + 32));
	}
	if (i < n)
		s0 = _mm512_dpbf16_ps(s0, (__m512bh)_mm512_loadu_si512(a + i),
		                      (__m512bh)_mm512_loadu_si512(b + i));
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}
#endif

typedef struct kernels {
	const char *name;
	dot_fn dot, l2;
	dotb_fn dotb, l2b;
} kernels;

static kernels g_kernels;
static pthread_once_t g_kernels_once = PTHREAD_ONCE_INIT;

/* Chosen once per process; the table is written before any reader (pthread_once). */
static void pick_kernels(void)
{
	const char *force = getenv("TRAIN_RAG_SIMD");
	g_kernels = (kernels){ "scalar", dot_scalar, l2_scalar, dotb_scalar, l2b_scalar };
#ifdef HNSW_X86
	__builtin_cpu_init();
	int has512 = __builtin_cpu_supports("avx512f");
	int hasbf = has512 && __builtin_cpu_supports("avx512bf16");
	int has2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	if (force && !strcmp(force, "scalar"))
		return;
	if (hasbf && (!force || !strcmp(force, "avx512bf16")))
		g_kernels = (kernels){ "avx512bf16", dot_avx512, l2_avx512, dotb_bf16, l2b_avx512 };
	else if (has512 && (!force || !strcmp(force, "avx512") || !strcmp(force, "avx512bf16")))
		g_kernels = (kernels){ "avx512", dot_avx512, l2_avx512, dotb_avx512, l2b_avx512 };
	else if (has2)
		g_kernels = (kernels){ "avx2", dot_avx2, l2_avx2, dotb_avx2, l2b_avx2 };
#else
	(void)force;
#endif
}

static const kernels *get_kernels(void)
{
	pthread_once(&g_kernels_once, pick_kernels);
	return &g_kernels;
}

const char *hnsw_simd_name(void) { return get_kernels()->name; }

int hnsw_metric_parse(const char *s)
{
	if (!strcmp(s, "l2"))
		return HNSW_L2;
	if (!strcmp(s, "ip") || !strcmp(s, "inner_product"))
		return HNSW_IP;
	if (!strcmp(s, "cosine"))
		return HNSW_COSINE;
	return -1;
}

const char *hnsw_metric_name(hnsw_metric m)
{
	return m == HNSW_L2 ? "l2" : m == HNSW_IP ? "ip" : "cosine";
}

float hnsw_distance(hnsw_metric m, const float *a, const float *b, uint32_t dim)
{
	const kernels *k = get_kernels();
	return m == HNSW_L2 ? k->l2(a, b, dim) : 1.0f - k->dot(a, b, dim);
}

float hnsw_distance_bf16(hnsw_metric m, const float *a, const float *b, uint32_t dim)
{
	const kernels *k = get_kernels();
	uint32_t dp = (dim + 31) & ~31u;
	uint16_t *x = malloc(2 * (size_t)dp * sizeof *x);
	if (!x)
		return NAN;
	for (uint32_t i = 0; i < dp; i++) {
		x[i] = i < dim ? f32_to_bf16(a[i]) : 0;
		x[dp + i] = i < dim ? f32_to_bf16(b[i]) : 0;
	}
	float d = m == HNSW_L2 ? k->l2b(x, x + dp, dp) : 1.0f - k->dotb(x, x + dp, dp);
	free(x);
	return d;
}

void hnsw_normalize(float *v, uint32_t dim)
{
	double s = 0;
	for (uint32_t i = 0; i < dim; i++)
		s += (double)v[i] * v[i];
	if (s > 0) {
		float r = (float)(1.0 / sqrt(s));
		for (uint32_t i = 0; i < dim; i++)
			v[i] *= r;
	}
}

/* ---- the index ------------------------------------------------------------- */

#define MAX_LEVEL 31

struct hnsw {
	uint32_t dim, metric, M, M0, ef_construction;
	uint32_t max_level, entry; /* entry valid when n > 0 */
	size_t n, cap;
	float *vecs;        /* n x dim */
	uint16_t *vb;       /* n x dimp: bf16 copies for the traversal */
	uint32_t dimp;      /* dim rounded up to 32 */
	uint32_t *links0;   /* n x (1 + M0) */
	uint32_t *levels;   /* n */
	uint64_t *uoffs;    /* n */
	uint32_t *upper;    /* upper_n */
	size_t upper_n, upper_cap;
	uint64_t rng;
	/* mapped (read-only) storage; NULL when owned */
	const void *map;
	size_t map_size;
	int map_is_mmap;
	pthread_mutex_t *locks; /* cap, during hnsw_add only */
	pthread_mutex_t glock;
	dot_fn dot, l2;
	dotb_fn dotb, l2b;
};

static inline float dist(const hnsw *h, const float *a, const float *b)
{
	return h->metric == HNSW_L2 ? h->l2(a, b, h->dim) : 1.0f - h->dot(a, b, h->dim);
}

/* The traversal's distance, on bf16 rows. */
static inline float dist16(const hnsw *h, const uint16_t *a, const uint16_t *b)
{
	return h->metric == HNSW_L2 ? h->l2b(a, b, h->dimp) : 1.0f - h->dotb(a, b, h->dimp);
}

static inline const float *vec(const hnsw *h, uint32_t i) { return h->vecs + (size_t)i * h->dim; }
static inline const uint16_t *vecb(const hnsw *h, uint32_t i) { return h->vb + (size_t)i * h->dimp; }
static uint32_t pad32(uint32_t dim) { return (dim + 31) & ~31u; }

/* bf16 row of a float32 row, padded with zeros to dimp. */
static void to_bf16(uint16_t *out, const float *v, uint32_t dim, uint32_t dimp)
{
	for (uint32_t i = 0; i < dim; i++)
		out[i] = f32_to_bf16(v[i]);
	for (uint32_t i = dim; i < dimp; i++)
		out[i] = 0;
}
static inline uint32_t *list_at(const hnsw *h, uint32_t i, uint32_t level)
{
	if (!level)
		return h->links0 + (size_t)i * (1 + h->M0);
	return h->upper + h->uoffs[i] + (size_t)(level - 1) * (1 + h->M);
}

static void seterr(char *err, const char *fmt, ...) TRAIN_PRINTF(2, 3);
static void seterr(char *err, const char *fmt, ...)
{
	if (!err)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, HNSW_ERR_SIZE, fmt, ap);
	va_end(ap);
}

int hnsw_create(uint32_t dim, hnsw_metric metric, uint32_t M, uint32_t ef_construction,
                uint64_t seed, hnsw **out)
{
	*out = NULL;
	if (!dim || dim > 65536 || M < 2 || M > 256 || !ef_construction || metric > HNSW_COSINE)
		return TRAIN_EINVAL;
	hnsw *h = calloc(1, sizeof *h);
	if (!h)
		return TRAIN_ENOMEM;
	h->dim = dim;
	h->dimp = pad32(dim);
	h->metric = metric;
	h->M = M;
	h->M0 = 2 * M;
	h->ef_construction = ef_construction;
	h->rng = seed ? seed : 0x9e3779b97f4a7c15ull;
	const kernels *k = get_kernels();
	h->dot = k->dot;
	h->l2 = k->l2;
	h->dotb = k->dotb;
	h->l2b = k->l2b;
	pthread_mutex_init(&h->glock, NULL);
	*out = h;
	return TRAIN_OK;
}

void hnsw_destroy(hnsw *h)
{
	if (!h)
		return;
	if (h->map) {
		if (h->map_is_mmap)
			munmap((void *)h->map, h->map_size);
	} else {
		free(h->vecs);
		free(h->vb);
		free(h->links0);
		free(h->levels);
		free(h->uoffs);
		free(h->upper);
	}
	pthread_mutex_destroy(&h->glock);
	free(h);
}

size_t hnsw_count(const hnsw *h) { return h->n; }
uint32_t hnsw_dim(const hnsw *h) { return h->dim; }
hnsw_metric hnsw_get_metric(const hnsw *h) { return (hnsw_metric)h->metric; }

size_t hnsw_memory(const hnsw *h)
{
	return h->n * ((size_t)h->dim * 4 + (size_t)h->dimp * 2 + (1 + (size_t)h->M0) * 4 + 4 + 8) +
	       h->upper_n * 4;
}

/* ---- heaps of (distance, id) ------------------------------------------------ */

typedef struct cand {
	float d;
	uint32_t id;
} cand;

typedef struct heap {
	cand *a;
	size_t n, cap;
} heap;

/* max = 1: the largest distance on top. */
static inline int heap_less(const cand *x, const cand *y, int max)
{
	return max ? x->d > y->d : x->d < y->d;
}

static int heap_push(heap *hp, cand c, int max)
{
	if (hp->n == hp->cap) {
		size_t cap = hp->cap ? 2 * hp->cap : 64;
		cand *a = realloc(hp->a, cap * sizeof *a);
		if (!a)
			return -1;
		hp->a = a;
		hp->cap = cap;
	}
	size_t i = hp->n++;
	while (i) {
		size_t p = (i - 1) / 2;
		if (!heap_less(&c, &hp->a[p], max))
			break;
		hp->a[i] = hp->a[p];
		i = p;
	}
	hp->a[i] = c;
	return 0;
}

static cand heap_pop(heap *hp, int max)
{
	cand top = hp->a[0], last = hp->a[--hp->n];
	size_t i = 0, n = hp->n;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, b = i;
		const cand *bc = &last;
		if (l < n && heap_less(&hp->a[l], bc, max)) {
			b = l;
			bc = &hp->a[l];
		}
		if (r < n && heap_less(&hp->a[r], bc, max))
			b = r;
		if (b == i)
			break;
		hp->a[i] = hp->a[b];
		i = b;
	}
	if (n)
		hp->a[i] = last;
	return top;
}

/* Ascending distance, then id. */
static int cand_cmp(const void *a, const void *b)
{
	const cand *x = a, *y = b;
	return x->d < y->d ? -1 : x->d > y->d ? 1 : (x->id > y->id) - (x->id < y->id);
}

/* ---- a searcher: visited marks and heaps, one per thread ------------------- */

typedef struct searcher {
	uint16_t *mark;
	size_t mark_n;
	uint16_t gen;
	heap cands, res;
	uint32_t *buf; /* a copied neighbour list */
	uint32_t *todo; /* the unvisited neighbours of one list */
} searcher;

static int searcher_init(searcher *s, size_t n, uint32_t M0)
{
	memset(s, 0, sizeof *s);
	s->mark = calloc(n ? n : 1, sizeof *s->mark);
	s->mark_n = n;
	s->buf = malloc((1 + (size_t)M0) * sizeof *s->buf);
	s->todo = malloc((1 + (size_t)M0) * sizeof *s->todo);
	return s->mark && s->buf && s->todo ? 0 : -1;
}

static void searcher_free(searcher *s)
{
	free(s->mark);
	free(s->buf);
	free(s->todo);
	free(s->cands.a);
	free(s->res.a);
}

static void searcher_next_gen(searcher *s)
{
	if (++s->gen == 0) {
		memset(s->mark, 0, s->mark_n * sizeof *s->mark);
		s->gen = 1;
	}
}

/*
 * Beam search at one level from `ep` (its distance `epd`): s->res ends
 * holding the ef nearest found (a max-heap).  `lock`: construction, where
 * other threads change lists, so each list is copied under its node's lock.
 */
static int search_level(const hnsw *h, searcher *s, const uint16_t *q, uint32_t ep, float epd,
                        size_t ef, uint32_t level, int lock)
{
	searcher_next_gen(s);
	s->cands.n = s->res.n = 0;
	cand c0 = { epd, ep };
	if (heap_push(&s->cands, c0, 0) || heap_push(&s->res, c0, 1))
		return -1;
	s->mark[ep] = s->gen;
	float bound = epd;
	while (s->cands.n) {
		cand c = heap_pop(&s->cands, 0);
		if (c.d > bound && s->res.n >= ef)
			break;
#ifdef HNSW_X86
		/* the next candidate's list, while this one's neighbours are measured */
		if (s->cands.n) {
			const char *nl = (const char *)list_at(h, s->cands.a[0].id, level);
			size_t bytes = (1 + (size_t)(level ? h->M : h->M0)) * 4;
			for (size_t o = 0; o < bytes; o += 64)
				_mm_prefetch(nl + o, _MM_HINT_T0);
		}
#endif
		const uint32_t *l = list_at(h, c.id, level);
		if (lock) {
			pthread_mutex_lock(&h->locks[c.id]);
			memcpy(s->buf, l, (1 + (size_t)l[0]) * sizeof *l);
			pthread_mutex_unlock(&h->locks[c.id]);
			l = s->buf;
		}
		uint32_t cnt = l[0], nt = 0;
		/* two passes: the unvisited neighbours first (their marks are
		 * set and their vectors' first lines prefetched, so the memory
		 * system fetches them side by side), then their distances, the
		 * vector two ahead prefetched whole */
		uint32_t *todo = s->todo;
		for (uint32_t j = 1; j <= cnt; j++) {
			uint32_t e = l[j];
#ifdef HNSW_X86
			if (j < cnt)
				_mm_prefetch((const char *)&s->mark[l[j + 1]], _MM_HINT_T0);
#endif
			if (s->mark[e] == s->gen)
				continue;
			s->mark[e] = s->gen;
			todo[nt++] = e;
#ifdef HNSW_X86
			_mm_prefetch((const char *)vecb(h, e), _MM_HINT_T0);
#endif
		}
		for (uint32_t t = 0; t < nt; t++) {
			uint32_t e = todo[t];
#ifdef HNSW_X86
			if (t + 2 < nt) {
				const char *nv = (const char *)vecb(h, todo[t + 2]);
				for (size_t o = 64; o < (size_t)h->dimp * 2; o += 64)
					_mm_prefetch(nv + o, _MM_HINT_T0);
			}
#endif
			float d = dist16(h, q, vecb(h, e));
			if (s->res.n < ef || d < bound) {
				cand ce = { d, e };
				if (heap_push(&s->cands, ce, 0) || heap_push(&s->res, ce, 1))
					return -1;
				if (s->res.n > ef)
					heap_pop(&s->res, 1);
				bound = s->res.a[0].d;
			}
		}
	}
	return 0;
}

/* Greedy descent at one level (ef = 1). */
static uint32_t greedy(const hnsw *h, const uint16_t *q, uint32_t cur, float *curd, uint32_t level,
                       int lock)
{
	for (int changed = 1; changed;) {
		changed = 0;
		uint32_t at = cur;
		if (lock)
			pthread_mutex_lock(&h->locks[at]);
		const uint32_t *l = list_at(h, at, level);
		uint32_t cnt = l[0];
		for (uint32_t j = 1; j <= cnt; j++) {
			float d = dist16(h, q, vecb(h, l[j]));
			if (d < *curd) {
				*curd = d;
				cur = l[j];
				changed = 1;
			}
		}
		if (lock)
			pthread_mutex_unlock(&h->locks[at]);
	}
	return cur;
}

struct hnsw_scratch {
	searcher s;
	float *qn;
	uint16_t *qb; /* the query in bf16, padded */
	uint32_t qdim, qbdim;
};

hnsw_scratch *hnsw_scratch_new(void) { return calloc(1, sizeof(hnsw_scratch)); }

void hnsw_scratch_free(hnsw_scratch *s)
{
	if (!s)
		return;
	searcher_free(&s->s);
	free(s->qn);
	free(s->qb);
	free(s);
}

/* Make the scratch fit an index of n nodes. */
static int scratch_fit(hnsw_scratch *sc, const hnsw *h)
{
	searcher *s = &sc->s;
	if (s->mark_n < h->n) {
		uint16_t *m = calloc(h->n, sizeof *m);
		if (!m)
			return -1;
		free(s->mark);
		s->mark = m;
		s->mark_n = h->n;
		s->gen = 0;
	}
	if (!s->buf) {
		s->buf = malloc((1 + 512) * sizeof *s->buf);
		if (!s->buf)
			return -1;
	}
	if (!s->todo) {
		s->todo = malloc((1 + 512) * sizeof *s->todo);
		if (!s->todo)
			return -1;
	}
	if (sc->qdim < h->dim) {
		float *q = realloc(sc->qn, h->dim * sizeof *q);
		if (!q)
			return -1;
		sc->qn = q;
		sc->qdim = h->dim;
	}
	if (sc->qbdim < h->dimp) {
		uint16_t *q = realloc(sc->qb, h->dimp * sizeof *q);
		if (!q)
			return -1;
		sc->qb = q;
		sc->qbdim = h->dimp;
	}
	return 0;
}

size_t hnsw_search_with(const hnsw *h, hnsw_scratch *sc, const float *q, size_t k, size_t ef,
                        uint32_t *ids, float *dists)
{
	if (!h->n || !k || scratch_fit(sc, h))
		return 0;
	if (h->metric == HNSW_COSINE) {
		memcpy(sc->qn, q, h->dim * sizeof *q);
		hnsw_normalize(sc->qn, h->dim);
		q = sc->qn;
	}
	if (ef < k)
		ef = k;
	to_bf16(sc->qb, q, h->dim, h->dimp);
	uint32_t cur = h->entry;
	float curd = dist16(h, sc->qb, vecb(h, cur));
	for (uint32_t l = h->max_level; l > 0; l--)
		cur = greedy(h, sc->qb, cur, &curd, l, 0);
	searcher *s = &sc->s;
	if (search_level(h, s, sc->qb, cur, curd, ef, 0, 0))
		return 0;
	/* the ef found, by bf16 distances: re-ranked by the exact float32
	 * distance, the k nearest of them returned */
	cand *r = s->res.a;
	size_t got = s->res.n;
	for (size_t i = 0; i < got; i++) {
#ifdef HNSW_X86
		if (i + 2 < got) {
			const char *nv = (const char *)vec(h, r[i + 2].id);
			for (size_t o = 0; o < (size_t)h->dim * sizeof(float); o += 64)
				_mm_prefetch(nv + o, _MM_HINT_T0);
		}
#endif
		r[i].d = dist(h, q, vec(h, r[i].id));
	}
	qsort(r, got, sizeof *r, cand_cmp);
	if (got > k)
		got = k;
	for (size_t i = 0; i < got; i++) {
		if (ids)
			ids[i] = r[i].id;
		if (dists)
			dists[i] = r[i].d;
	}
	s->res.n = 0;
	return got;
}

size_t hnsw_search(const hnsw *h, const float *q, size_t k, size_t ef, uint32_t *ids, float *dists)
{
	hnsw_scratch *sc = hnsw_scratch_new();
	size_t got = sc ? hnsw_search_with(h, sc, q, k, ef, ids, dists) : 0;
	hnsw_scratch_free(sc);
	return got;
}

/* ---- insertion ---------------------------------------------------------------- */

/*
 * The heuristic: from candidates sorted by distance to the new node, keep
 * one if it is nearer to the node than to every one kept so far; at most
 * `m`.  `c` is sorted in place; the kept ones end up in c[0..ret).
 * Distances are the traversal's (bf16).
 */

static size_t select_neighbours(const hnsw *h, cand *c, size_t n, size_t m)
{
	qsort(c, n, sizeof *c, cand_cmp);
	size_t kept = 0;
	for (size_t i = 0; i < n && kept < m; i++) {
		int good = 1;
		for (size_t j = 0; j < kept; j++)
			if (dist16(h, vecb(h, c[i].id), vecb(h, c[j].id)) < c[i].d) {
				good = 0;
				break;
			}
		if (good)
			c[kept++] = c[i];
	}
	return kept;
}

typedef struct add_job {
	hnsw *h;
	size_t first, last;
	atomic_size_t next;
	atomic_int failed;
} add_job;

static int insert_one(hnsw *h, searcher *s, uint32_t q, cand *scratch)
{
	const uint16_t *qv = vecb(h, q);
	uint32_t L = h->levels[q];
	pthread_mutex_lock(&h->glock);
	uint32_t maxl = h->max_level, ep = h->entry;
	int keep_glock = L > maxl || ep == UINT32_MAX;
	if (ep == UINT32_MAX) { /* the first node */
		h->entry = q;
		h->max_level = L;
		pthread_mutex_unlock(&h->glock);
		return 0;
	}
	if (!keep_glock)
		pthread_mutex_unlock(&h->glock);
	uint32_t cur = ep;
	float curd = dist16(h, qv, vecb(h, cur));
	for (uint32_t l = maxl; l > L; l--)
		cur = greedy(h, qv, cur, &curd, l, 1);
	for (uint32_t l = L < maxl ? L : maxl;; l--) {
		if (search_level(h, s, qv, cur, curd, h->ef_construction, l, 1))
			goto fail;
		size_t n = s->res.n;
		memcpy(scratch, s->res.a, n * sizeof *scratch);
		/* the nearest found is where the next level starts */
		size_t best = 0;
		for (size_t i = 1; i < n; i++)
			if (scratch[i].d < scratch[best].d)
				best = i;
		cur = scratch[best].id;
		curd = scratch[best].d;
		size_t kept = select_neighbours(h, scratch, n, h->M);
		uint32_t cap = l ? h->M : h->M0;
		pthread_mutex_lock(&h->locks[q]);
		uint32_t *mine = list_at(h, q, l);
		mine[0] = (uint32_t)kept;
		for (size_t i = 0; i < kept; i++)
			mine[1 + i] = scratch[i].id;
		pthread_mutex_unlock(&h->locks[q]);
		for (size_t i = 0; i < kept; i++) {
			uint32_t e = scratch[i].id;
			pthread_mutex_lock(&h->locks[e]);
			uint32_t *el = list_at(h, e, l);
			if (el[0] < cap) {
				el[1 + el[0]] = q;
				el[0]++;
			} else {
				cand *pc = scratch + h->ef_construction + 1; /* room for cap + 1 */
				const uint16_t *ev = vecb(h, e);
				for (uint32_t j = 0; j < el[0]; j++) {
					pc[j].id = el[1 + j];
					pc[j].d = dist16(h, ev, vecb(h, el[1 + j]));
				}
				pc[el[0]].id = q;
				pc[el[0]].d = dist16(h, ev, qv);
				size_t k2 = select_neighbours(h, pc, el[0] + 1, cap);
				el[0] = (uint32_t)k2;
				for (size_t j = 0; j < k2; j++)
					el[1 + j] = pc[j].id;
			}
			pthread_mutex_unlock(&h->locks[e]);
		}
		if (!l)
			break;
	}
	if (keep_glock) {
		h->entry = q;
		h->max_level = L;
		pthread_mutex_unlock(&h->glock);
	}
	return 0;
fail:
	if (keep_glock)
		pthread_mutex_unlock(&h->glock);
	return -1;
}

static void *add_worker(void *arg)
{
	add_job *j = arg;
	hnsw *h = j->h;
	searcher s;
	size_t sc = h->ef_construction + 2 + h->M0 + 2;
	cand *scratch = malloc((sc + 1) * sizeof *scratch);
	if (!scratch || searcher_init(&s, j->last, h->M0)) {
		free(scratch);
		atomic_store(&j->failed, 1);
		return NULL;
	}
	for (;;) {
		size_t i = atomic_fetch_add(&j->next, 1) + j->first;
		if (i >= j->last || atomic_load(&j->failed))
			break;
		if (insert_one(h, &s, (uint32_t)i, scratch)) {
			atomic_store(&j->failed, 1);
			break;
		}
	}
	searcher_free(&s);
	free(scratch);
	return NULL;
}

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Copy a mapped index into owned memory so it can grow. */
static int own(hnsw *h)
{
	if (!h->map)
		return 0;
	size_t n = h->n;
	float *v = malloc(n * h->dim * sizeof *v + 1);
	uint16_t *vb = malloc(n * h->dimp * sizeof *vb + 1);
	uint32_t *l0 = malloc(n * (1 + (size_t)h->M0) * 4 + 1);
	uint32_t *lv = malloc(n * 4 + 1);
	uint64_t *uo = malloc(n * 8 + 1);
	uint32_t *up = malloc(h->upper_n * 4 + 1);
	if (!v || !vb || !l0 || !lv || !uo || !up) {
		free(v), free(vb), free(l0), free(lv), free(uo), free(up);
		return TRAIN_ENOMEM;
	}
	memcpy(v, h->vecs, n * h->dim * sizeof *v);
	memcpy(vb, h->vb, n * h->dimp * sizeof *vb);
	memcpy(l0, h->links0, n * (1 + (size_t)h->M0) * 4);
	memcpy(lv, h->levels, n * 4);
	memcpy(uo, h->uoffs, n * 8);
	if (h->upper_n)
		memcpy(up, h->upper, h->upper_n * 4);
	if (h->map_is_mmap)
		munmap((void *)h->map, h->map_size);
	h->map = NULL;
	h->vecs = v, h->vb = vb, h->links0 = l0, h->levels = lv, h->uoffs = uo, h->upper = up;
	h->cap = n;
	h->upper_cap = h->upper_n;
	return 0;
}

static int grow(void **p, size_t size)
{
	void *q = realloc(*p, size ? size : 1);
	if (!q)
		return TRAIN_ENOMEM;
	*p = q;
	return 0;
}

int hnsw_add(hnsw *h, const float *vectors, size_t n, int threads, char *err)
{
	if (!n)
		return 0;
	if (h->n + n >= UINT32_MAX) {
		seterr(err, "too many vectors (%zu)", h->n + n);
		return TRAIN_EINVAL;
	}
	int rc = own(h);
	if (rc)
		goto nomem;
	size_t first = h->n, total = h->n + n;
	if (total > h->cap) {
		size_t cap = total > 2 * h->cap ? total : 2 * h->cap;
		if ((rc = grow((void **)&h->vecs, cap * h->dim * sizeof(float))) ||
		    (rc = grow((void **)&h->vb, cap * h->dimp * sizeof(uint16_t))) ||
		    (rc = grow((void **)&h->links0, cap * (1 + (size_t)h->M0) * 4)) ||
		    (rc = grow((void **)&h->levels, cap * 4)) || (rc = grow((void **)&h->uoffs, cap * 8)))
			goto nomem;
		h->cap = cap;
	}
	/* levels first, in order, from the seeded generator: the same for any thread count */
	double mL = 1.0 / log((double)h->M);
	size_t up = h->upper_n;
	for (size_t i = first; i < total; i++) {
		double u = ((double)(splitmix(&h->rng) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
		double lv = floor(-log(u) * mL);
		h->levels[i] = lv > MAX_LEVEL ? MAX_LEVEL : (uint32_t)lv;
		h->uoffs[i] = up;
		up += (size_t)h->levels[i] * (1 + h->M);
	}
	if (up > h->upper_cap) {
		size_t cap = up > 2 * h->upper_cap ? up : 2 * h->upper_cap;
		if ((rc = grow((void **)&h->upper, cap * 4)))
			goto nomem;
		h->upper_cap = cap;
	}
	if (up > h->upper_n)
		memset(h->upper + h->upper_n, 0, (up - h->upper_n) * 4);
	h->upper_n = up;
	memcpy(h->vecs + first * h->dim, vectors, n * h->dim * sizeof(float));
	memset(h->links0 + first * (1 + (size_t)h->M0), 0, n * (1 + (size_t)h->M0) * 4);
	if (h->metric == HNSW_COSINE)
		for (size_t i = first; i < total; i++)
			hnsw_normalize(h->vecs + i * h->dim, h->dim);
	for (size_t i = first; i < total; i++)
		to_bf16(h->vb + i * h->dimp, h->vecs + i * h->dim, h->dim, h->dimp);
	h->locks = malloc(total * sizeof *h->locks);
	if (!h->locks) {
		rc = TRAIN_ENOMEM;
		goto nomem;
	}
	for (size_t i = 0; i < total; i++)
		pthread_mutex_init(&h->locks[i], NULL);
	if (!first) {
		h->entry = UINT32_MAX;
		h->max_level = 0;
	}
	h->n = total;
	add_job job = { .h = h, .first = first, .last = total };
	atomic_init(&job.next, 0);
	atomic_init(&job.failed, 0);
	if (threads < 1)
		threads = 1;
	if ((size_t)threads > n)
		threads = (int)n;
	pthread_t tid[64];
	if (threads > 64)
		threads = 64;
	int started = 0;
	for (int t = 1; t < threads; t++)
		if (pthread_create(&tid[started], NULL, add_worker, &job) == 0)
			started++;
	add_worker(&job);
	for (int t = 0; t < started; t++)
		pthread_join(tid[t], NULL);
	for (size_t i = 0; i < total; i++)
		pthread_mutex_destroy(&h->locks[i]);
	free(h->locks);
	h->locks = NULL;
	if (atomic_load(&job.failed)) {
		rc = TRAIN_ENOMEM;
		goto nomem;
	}
	return 0;
nomem:
	seterr(err, "out of memory adding %zu vectors", n);
	return rc ? rc : TRAIN_ENOMEM;
}

/* ---- the file ---------------------------------------------------------------- */

#define HNSW_MAGIC "TRNHNSW\0"
#define HNSW_VERSION 2u /* 2: the bf16 section */
#define NSEC 6
#define HEADER_SIZE 256u

typedef struct hnsw_header {
	char magic[8];
	uint32_t version, header_size;
	uint32_t dim, metric, M, M0;
	uint32_t max_level, entry, ef_construction, pad;
	uint64_t n, rng;
	uint64_t sec_off[NSEC], sec_size[NSEC]; /* vectors, links0, levels, uoffs, upper, vectors16 */
} hnsw_header;

static size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

int hnsw_serialize(const hnsw *h, void **buf, size_t *size)
{
	hnsw_header hd;
	memset(&hd, 0, sizeof hd);
	memcpy(hd.magic, HNSW_MAGIC, 8);
	hd.version = HNSW_VERSION;
	hd.header_size = HEADER_SIZE;
	hd.dim = h->dim, hd.metric = h->metric, hd.M = h->M, hd.M0 = h->M0;
	hd.max_level = h->max_level;
	hd.entry = h->n ? h->entry : 0;
	hd.ef_construction = h->ef_construction;
	hd.n = h->n;
	hd.rng = h->rng;
	const void *src[NSEC] = { h->vecs, h->links0, h->levels, h->uoffs, h->upper, h->vb };
	hd.sec_size[0] = h->n * h->dim * 4;
	hd.sec_size[1] = h->n * (1 + (uint64_t)h->M0) * 4;
	hd.sec_size[2] = h->n * 4;
	hd.sec_size[3] = h->n * 8;
	hd.sec_size[4] = h->upper_n * 4;
	hd.sec_size[5] = h->n * (uint64_t)h->dimp * 2;
	size_t off = HEADER_SIZE;
	for (int i = 0; i < NSEC; i++) {
		hd.sec_off[i] = off;
		off = align64(off + hd.sec_size[i]);
	}
	char *b = calloc(1, off);
	if (!b)
		return TRAIN_ENOMEM;
	memcpy(b, &hd, sizeof hd);
	for (int i = 0; i < NSEC; i++)
		if (hd.sec_size[i])
			memcpy(b + hd.sec_off[i], src[i], hd.sec_size[i]);
	*buf = b;
	*size = off;
	return 0;
}

int hnsw_save(const hnsw *h, const char *path, char *err)
{
	void *b;
	size_t n;
	int rc = hnsw_serialize(h, &b, &n);
	if (rc) {
		seterr(err, "%s: out of memory", path);
		return rc;
	}
	size_t pl = strlen(path);
	char *tmp = malloc(pl + 16);
	if (!tmp) {
		free(b);
		return TRAIN_ENOMEM;
	}
	snprintf(tmp, pl + 16, "%s.tmp%ld", path, (long)getpid());
	FILE *f = fopen(tmp, "wb");
	rc = f && fwrite(b, 1, n, f) == n ? 0 : -errno;
	if (f && fclose(f) && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path))
		rc = -errno;
	if (rc) {
		seterr(err, "%s: %s", path, strerror(-rc ? -rc : EIO));
		unlink(tmp);
	}
	free(tmp);
	free(b);
	return rc ? (rc == 0 ? TRAIN_EIO : rc) : 0;
}

#define BAD(...) do { seterr(err, __VA_ARGS__); return TRAIN_ECORRUPT; } while (0)

static int check_and_point(hnsw *h, const unsigned char *d, size_t size, const char *name, char *err)
{
	hnsw_header hd;
	if (size < HEADER_SIZE)
		BAD("%s: truncated: %zu bytes, the header alone is %u", name, size, HEADER_SIZE);
	memcpy(&hd, d, sizeof hd);
	if (memcmp(hd.magic, HNSW_MAGIC, 8))
		BAD("%s: not an HNSW index (bad magic)", name);
	if (hd.version != HNSW_VERSION)
		BAD("%s: index format version %u, this build reads only version %u (%s: build the index again)",
		    name, hd.version, HNSW_VERSION, hd.version < HNSW_VERSION ? "an older build wrote it" :
		    "a newer build wrote it");
	if (hd.header_size != HEADER_SIZE)
		BAD("%s: header size %u, expected %u", name, hd.header_size, HEADER_SIZE);
	if (!hd.dim || hd.dim > 65536 || hd.metric > HNSW_COSINE || hd.M < 2 || hd.M > 256 ||
	    hd.M0 < hd.M || hd.M0 > 512 || hd.max_level > MAX_LEVEL)
		BAD("%s: bad parameters (dim %u, metric %u, M %u, M0 %u, max level %u)", name, hd.dim,
		    hd.metric, hd.M, hd.M0, hd.max_level);
	if (hd.n >= UINT32_MAX)
		BAD("%s: node count %llu too large", name, (unsigned long long)hd.n);
	uint64_t n = hd.n;
	uint64_t want[NSEC] = { n * hd.dim * 4, n * (1 + (uint64_t)hd.M0) * 4, n * 4, n * 8, 0,
		                n * (uint64_t)pad32(hd.dim) * 2 };
	static const char *const sec[NSEC] = { "vectors", "links0", "levels", "uoffs", "upper",
		                               "vectors16" };
	for (int i = 0; i < NSEC; i++) {
		if (i != 4 && hd.sec_size[i] != want[i])
			BAD("%s: section %s is %llu bytes, the counts say %llu", name, sec[i],
			    (unsigned long long)hd.sec_size[i], (unsigned long long)want[i]);
		if (hd.sec_off[i] % 64 || hd.sec_off[i] < HEADER_SIZE || hd.sec_off[i] > size ||
		    hd.sec_size[i] > size - hd.sec_off[i])
			BAD("%s: section %s (offset %llu, %llu bytes) runs past the end of the file (%zu bytes)",
			    name, sec[i], (unsigned long long)hd.sec_off[i],
			    (unsigned long long)hd.sec_size[i], size);
	}
	if (hd.sec_size[4] % 4)
		BAD("%s: section upper is not whole uint32s", name);
	if (n && hd.entry >= n)
		BAD("%s: entry point %u out of range (%llu nodes)", name, hd.entry, (unsigned long long)n);
	h->dim = hd.dim, h->dimp = pad32(hd.dim), h->metric = hd.metric, h->M = hd.M, h->M0 = hd.M0;
	h->max_level = hd.max_level, h->entry = hd.entry, h->ef_construction = hd.ef_construction;
	h->rng = hd.rng;
	h->n = h->cap = n;
	h->vecs = (float *)(void *)(d + hd.sec_off[0]);
	h->links0 = (uint32_t *)(void *)(d + hd.sec_off[1]);
	h->levels = (uint32_t *)(void *)(d + hd.sec_off[2]);
	h->uoffs = (uint64_t *)(void *)(d + hd.sec_off[3]);
	h->upper = (uint32_t *)(void *)(d + hd.sec_off[4]);
	h->vb = (uint16_t *)(void *)(d + hd.sec_off[5]);
	h->upper_n = h->upper_cap = hd.sec_size[4] / 4;
	if (n && h->levels[hd.entry] != hd.max_level)
		BAD("%s: the entry point's level %u is not the top level %u", name, h->levels[hd.entry],
		    hd.max_level);
	for (uint64_t i = 0; i < n; i++) {
		uint32_t L = h->levels[i];
		if (L > hd.max_level)
			BAD("%s: node %llu: level %u above the top level %u", name, (unsigned long long)i, L,
			    hd.max_level);
		if (L && (h->uoffs[i] > h->upper_n ||
		          (uint64_t)L * (1 + hd.M) > h->upper_n - h->uoffs[i]))
			BAD("%s: node %llu: upper lists (offset %llu, %u levels) run past the section", name,
			    (unsigned long long)i, (unsigned long long)h->uoffs[i], L);
		for (uint32_t l = 0; l <= L; l++) {
			const uint32_t *lst = list_at(h, (uint32_t)i, l);
			uint32_t cap = l ? hd.M : hd.M0;
			if (lst[0] > cap)
				BAD("%s: node %llu level %u: %u neighbours, at most %u", name,
				    (unsigned long long)i, l, lst[0], cap);
			for (uint32_t j = 1; j <= lst[0]; j++)
				if (lst[j] >= n)
					BAD("%s: node %llu level %u: neighbour id %u out of range (%llu nodes)",
					    name, (unsigned long long)i, l, lst[j], (unsigned long long)n);
				else if (l && h->levels[lst[j]] < l)
					BAD("%s: node %llu level %u: neighbour %u has no level %u", name,
					    (unsigned long long)i, l, lst[j], l);
		}
	}
	return 0;
}

int hnsw_open_mem(const void *data, size_t size, const char *name, hnsw **out, char *err)
{
	*out = NULL;
	hnsw *h = calloc(1, sizeof *h);
	if (!h)
		return TRAIN_ENOMEM;
	pthread_mutex_init(&h->glock, NULL);
	const kernels *k = get_kernels();
	h->dot = k->dot;
	h->l2 = k->l2;
	h->dotb = k->dotb;
	h->l2b = k->l2b;
	h->map = data ? data : (const void *)h;
	h->map_size = size;
	if (((uintptr_t)data & 63) && size) {
		seterr(err, "%s: buffer not 64-byte aligned", name);
		hnsw_destroy(h);
		return TRAIN_EINVAL;
	}
	int rc = check_and_point(h, data, size, name, err);
	if (rc) {
		hnsw_destroy(h);
		return rc;
	}
	*out = h;
	return 0;
}

int hnsw_open(const char *path, hnsw **out, char *err)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		seterr(err, "%s: %s", path, strerror(e));
		return -e;
	}
	struct stat st;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		seterr(err, "%s: not a regular file", path);
		return TRAIN_ECORRUPT;
	}
	size_t size = (size_t)st.st_size;
	if (size < HEADER_SIZE) {
		close(fd);
		seterr(err, "%s: truncated: %zu bytes, the header alone is %u", path, size, HEADER_SIZE);
		return TRAIN_ECORRUPT;
	}
	void *m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		int e = errno;
		seterr(err, "%s: mmap: %s", path, strerror(e));
		return -e;
	}
	hnsw *h;
	int rc = hnsw_open_mem(m, size, path, &h, err);
	if (rc) {
		munmap(m, size);
		return rc;
	}
	h->map_is_mmap = 1;
	*out = h;
	return 0;
}
