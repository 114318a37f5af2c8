/*
 * tensor.c - dtypes, tensor sizes, arenas, bf16 conversions and the RNG
 * (see <train/tensor.h> for the contract).
 *
 * Arenas.  An arena is a list of chunks, each one zeroed allocation whose
 * blocks start on 64-byte boundaries.  A fixed arena has exactly one chunk
 * of the requested capacity; a growing arena (capacity 0) appends chunks and
 * never moves or frees one before train_arena_destroy, so a pointer handed
 * out stays valid until a reset gives its bytes back.
 *
 * Positions are "logical": chunk i covers [base_i, base_i + size_i) with
 * base_i the sum of the sizes before it.  A mark is a logical position; a
 * reset goes back to the chunk holding it and keeps the later chunks for
 * reuse, so a training step that resets its activation arena allocates
 * nothing once the first step has grown it.  Chunks come from calloc (large
 * ones are fresh, already-zero pages), and each remembers the highest byte
 * ever handed out: only memory below that mark is cleared again on reuse.
 *
 * bf16.  The top half of an fp32 with round-to-nearest-even on the lower 16
 * bits; NaN keeps its sign and gets the quiet bit so that a payload living
 * only in the low bits does not turn into infinity.  The array versions are
 * the same branch-free expression in a loop, which GCC vectorizes.  (The
 * AVX512-BF16 instruction VCVTNEPS2BF16 is not used: it flushes denormal
 * inputs to zero, so results would differ from the scalar version.)
 *
 * RNG.  xoshiro256** (Blackman & Vigna), state seeded by four outputs of
 * splitmix64, so that any 64-bit seed (0 included) gives a good state.
 */
#include <train/tensor.h>

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- dtypes and tensors ---------------------------------------------------- */

size_t train_dtype_size(train_dtype dt)
{
	switch (dt) {
	case TRAIN_F32: return 4;
	case TRAIN_BF16: return 2;
	case TRAIN_F16: return 2;
	case TRAIN_I64: return 8;
	case TRAIN_I32: return 4;
	case TRAIN_U8: return 1;
	}
	return 0;
}

const char *train_dtype_name(train_dtype dt)
{
	switch (dt) {
	case TRAIN_F32: return "F32";
	case TRAIN_BF16: return "BF16";
	case TRAIN_F16: return "F16";
	case TRAIN_I64: return "I64";
	case TRAIN_I32: return "I32";
	case TRAIN_U8: return "U8";
	}
	return NULL;
}

size_t train_tensor_numel(const train_tensor *t)
{
	size_t n = 1;
	for (int i = 0; i < t->ndim && i < TRAIN_MAX_DIMS; i++)
		n *= t->shape[i] > 0 ? (size_t)t->shape[i] : 0;
	return n;
}

size_t train_tensor_nbytes(const train_tensor *t)
{
	return train_tensor_numel(t) * train_dtype_size(t->dtype);
}

/* ---- arenas ---------------------------------------------------------------- */

#define ARENA_ALIGN     64
#define ARENA_MIN_CHUNK ((size_t)1 << 20)   /* growing arenas: at least 1 MiB */
#define ARENA_MAX_STEP  ((size_t)256 << 20) /* chunks double up to 256 MiB */

typedef struct arena_chunk {
	struct arena_chunk *next;
	void *raw;         /* what calloc returned */
	char *mem;         /* raw rounded up to ARENA_ALIGN */
	size_t size;       /* usable bytes at mem, a multiple of ARENA_ALIGN */
	size_t base;       /* logical position of mem[0] */
	size_t dirty;      /* bytes [0, dirty) have been handed out at some time */
} arena_chunk;

struct train_arena {
	int growing;       /* capacity 0 at creation */
	arena_chunk *head;
	arena_chunk *cur;  /* the chunk allocations come from; NULL before the first */
	size_t off;        /* next free byte in cur */
};

static arena_chunk *chunk_new(size_t size, size_t base)
{
	arena_chunk *c = calloc(1, sizeof *c);
	if (!c)
		return NULL;
	if (size > SIZE_MAX - ARENA_ALIGN || !(c->raw = calloc(1, size + ARENA_ALIGN))) {
		free(c);
		return NULL;
	}
	uintptr_t p = (uintptr_t)c->raw;
	c->mem = (char *)c->raw + ((ARENA_ALIGN - p % ARENA_ALIGN) % ARENA_ALIGN);
	c->size = size;
	c->base = base;
	return c;
}

int train_arena_create(size_t capacity, train_arena **out)
{
	*out = NULL;
	train_arena *a = calloc(1, sizeof *a);
	if (!a)
		return TRAIN_ENOMEM;
	if (capacity == 0) {
		a->growing = 1;
	} else {
		if (capacity > SIZE_MAX - ARENA_ALIGN) {
			free(a);
			return TRAIN_ENOMEM;
		}
		size_t size = (capacity + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
		if (!(a->head = chunk_new(size, 0))) {
			free(a);
			return TRAIN_ENOMEM;
		}
		a->cur = a->head;
	}
	*out = a;
	return TRAIN_OK;
}

void train_arena_destroy(train_arena *a)
{
	if (!a)
		return;
	for (arena_chunk *c = a->head, *next; c; c = next) {
		next = c->next;
		free(c->raw);
		free(c);
	}
	free(a);
}

/* Hand out [off, off+bytes) of c, zeroed; bytes is a multiple of ARENA_ALIGN. */
static void *chunk_take(train_arena *a, arena_chunk *c, size_t bytes)
{
	if (a->cur != c) {
		a->cur = c;
		a->off = 0;
	}
	char *p = c->mem + a->off;
	if (a->off < c->dirty) {
		size_t end = a->off + bytes < c->dirty ? a->off + bytes : c->dirty;
		memset(p, 0, end - a->off);
	}
	a->off += bytes;
	if (a->off > c->dirty)
		c->dirty = a->off;
	return p;
}

void *train_arena_alloc(train_arena *a, size_t bytes)
{
	if (!a || bytes > SIZE_MAX - ARENA_ALIGN)
		return NULL;
	bytes = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
	if (a->cur && bytes <= a->cur->size - a->off)
		return chunk_take(a, a->cur, bytes);
	if (!a->growing)
		return NULL;
	/* Reuse a chunk kept by a reset if one is big enough; smaller ones are
	 * skipped (their bytes count as used until the next reset). */
	arena_chunk *last = a->cur ? a->cur : NULL;
	for (arena_chunk *c = a->cur ? a->cur->next : a->head; c; c = c->next) {
		if (bytes <= c->size)
			return chunk_take(a, c, bytes);
		last = c;
	}
	while (last && last->next)
		last = last->next;
	size_t total = last ? last->base + last->size : 0;
	size_t size = total < ARENA_MAX_STEP ? total : ARENA_MAX_STEP;
	if (size < ARENA_MIN_CHUNK)
		size = ARENA_MIN_CHUNK;
	if (size < bytes)
		size = bytes;
	arena_chunk *c = chunk_new(size, total);
	if (!c)
		return NULL;
	if (last)
		last->next = c;
	else
		a->head = c;
	return chunk_take(a, c, bytes);
}

int train_arena_tensor(train_arena *a, train_dtype dt, int ndim, const int64_t *shape,
                       train_tensor *out)
{
	if (!a || !out || ndim < 0 || ndim > TRAIN_MAX_DIMS || (ndim > 0 && !shape) ||
	    train_dtype_size(dt) == 0)
		return TRAIN_EINVAL;
	train_tensor t = { .dtype = dt, .ndim = ndim, .shape = { 1, 1, 1, 1 } };
	size_t bytes = train_dtype_size(dt);
	for (int i = 0; i < ndim; i++) {
		if (shape[i] < 0)
			return TRAIN_EINVAL;
		if (shape[i] > 0 && bytes > SIZE_MAX / (uint64_t)shape[i])
			return TRAIN_ENOMEM;
		bytes *= (size_t)shape[i];
		t.shape[i] = shape[i];
	}
	t.data = train_arena_alloc(a, bytes);
	if (!t.data)
		return TRAIN_ENOMEM;
	*out = t;
	return TRAIN_OK;
}

size_t train_arena_mark(const train_arena *a)
{
	return a && a->cur ? a->cur->base + a->off : 0;
}

size_t train_arena_used(const train_arena *a)
{
	return train_arena_mark(a);
}

void train_arena_reset(train_arena *a, size_t mark)
{
	if (!a || !a->cur)
		return;
	assert(mark <= train_arena_mark(a));
	if (mark >= train_arena_mark(a))
		return;
	for (arena_chunk *c = a->head; c; c = c->next) {
		if (mark <= c->base + c->size) {
			a->cur = c;
			a->off = mark - c->base;
			return;
		}
	}
}

/* ---- bf16 ------------------------------------------------------------------ */

static inline uint16_t f32_to_bf16(float x)
{
	uint32_t u;
	memcpy(&u, &x, sizeof u);
	uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
	uint32_t nan = (u >> 16) | 0x0040u;
	return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}

static inline float bf16_to_f32(uint16_t x)
{
	uint32_t u = (uint32_t)x << 16;
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

uint16_t train_f32_to_bf16(float x)
{
	return f32_to_bf16(x);
}

float train_bf16_to_f32(uint16_t x)
{
	return bf16_to_f32(x);
}

void train_f32_to_bf16_n(uint16_t *dst, const float *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = f32_to_bf16(src[i]);
}

void train_bf16_to_f32_n(float *dst, const uint16_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = bf16_to_f32(src[i]);
}

/* ---- random numbers -------------------------------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void train_rng_seed(train_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

uint64_t train_rng_u64(train_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

float train_rng_uniform(train_rng *r)
{
	/* The top 24 bits: every value k * 2^-24 exactly, never 1.0. */
	return (float)(train_rng_u64(r) >> 40) * 0x1.0p-24f;
}

/* Two independent standard normals from two 53-bit uniforms (Box-Muller). */
static void normal_pair(train_rng *r, double *z0, double *z1)
{
	double u1 = (double)((train_rng_u64(r) >> 11) + 1) * 0x1.0p-53; /* (0, 1]: log is finite */
	double u2 = (double)(train_rng_u64(r) >> 11) * 0x1.0p-53;       /* [0, 1) */
	double rad = sqrt(-2.0 * log(u1));
	double th = 6.283185307179586476925286766559 * u2;
	*z0 = rad * cos(th);
	*z1 = rad * sin(th);
}

float train_rng_normal(train_rng *r)
{
	/* The state has no room for the second value of the pair: it is dropped. */
	double z0, z1;
	normal_pair(r, &z0, &z1);
	return (float)z0;
}

void train_rng_fill_uniform(train_rng *r, float *x, size_t n, float lo, float hi)
{
	for (size_t i = 0; i < n; i++)
		x[i] = lo + (hi - lo) * train_rng_uniform(r);
}

void train_rng_fill_normal(train_rng *r, float *x, size_t n, float mean, float std)
{
	/* Both values of each pair are used, so the stream differs from n calls
	 * of train_rng_normal (the header says so). */
	size_t i = 0;
	for (; i + 1 < n; i += 2) {
		double z0, z1;
		normal_pair(r, &z0, &z1);
		x[i] = (float)(mean + std * z0);
		x[i + 1] = (float)(mean + std * z1);
	}
	if (i < n)
		x[i] = mean + std * train_rng_normal(r);
}

uint64_t train_rng_below(train_rng *r, uint64_t n)
{
	if (n <= 1)
		return 0;
	/* Reject the lowest (2^64 mod n) values, so the rest split evenly into n
	 * residues. */
	uint64_t threshold = (0 - n) % n;
	for (;;) {
		uint64_t x = train_rng_u64(r);
		if (x >= threshold)
			return x % n;
	}
}
