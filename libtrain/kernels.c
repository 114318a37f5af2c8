/*
 * kernels.c - the process-wide oneDNN context, the matmuls, and the
 * eltwise, softmax, layer norm and add kernels (see <train/kernels.h> for
 * the contract).
 *
 * State.  One CPU engine and one in-order stream, created once
 * (pthread_once) and kept until exit; the settings (threads, precision),
 * two primitive caches, the bf16 scratch buffers and mirrors, all behind
 * one mutex: calls are serialized, so the shared stream and buffers are
 * never used by two threads at once.  This is libtrain's one piece of
 * global mutable state (STYLE.md).
 *
 * Matmul.  Row-major C (M x N) = alpha * op(A) (M x K) * op(B) (K x N)
 * + beta * C maps onto a oneDNN matmul with src = op(A), weights = op(B),
 * dst = C, each described by strides: a transposed operand is the same
 * memory with the strides swapped, so nothing is copied in fp32.  alpha is
 * a run-time output scale (one primitive serves every alpha; with it
 * oneDNN picks its gemm-based implementation, which ran as fast as its
 * brgemm one on the block's shapes, at the FMA peak); beta is a "sum"
 * post-op of scale 1 when beta != 0, with C scaled by beta first when beta
 * is neither 0 nor 1 (an M x N pass, small next to the M x N x K product).
 * With beta == 0, C is only written (NaNs in it do not leak through), as
 * in BLAS; alpha == 0 or K == 0 reads neither A nor B.  A batch
 * (train_matmul_batch) is the same primitive with two more dimensions in
 * front, each with its stride; a bias (train_matmul_bias) is oneDNN's.
 *
 * bf16.  A and B are converted (round-to-nearest-even) as stored into
 * dense bf16 scratch buffers that grow as needed and are reused across
 * calls, by vec.c's conversion (AVX-512 BF16's vcvtne2ps2bf16, on
 * libgomp's threads: the conversion of a large matrix costs as much as a
 * small-M product, so a scalar loop would eat the gain; oneDNN 2.6's
 * reorders did it 4-6x slower); oneDNN then multiplies bf16 x bf16
 * with fp32 accumulation into an fp32 C.  Where oneDNN has only its
 * reference implementation for that (no AVX-512), the operands are rounded
 * to bf16 and back to fp32 and the fp32 primitive runs instead: the same
 * products (a bf16 x bf16 product is exact in fp32), at fp32 speed.
 *
 * Mirrors.  A registered weight array, or an operand pinned by nn.c for
 * the few matmuls of one call, has a bf16 copy at the same offsets.  An
 * operand lying wholly inside one is read from it, with the caller's
 * strides, instead of being converted: the copy is converted (one dense
 * run) on the first use after it went stale.  It goes stale when the
 * caller says so (train_kernels_weights_changed) or a matmul writes into
 * it.  If oneDNN has only reference code for the mirror's strides, the
 * dense copies are used instead.
 *
 * Caches.  Matmuls are keyed by (transA, transB, M, N, K, lda, ldb, ldc,
 * batch and its strides, bf16, mirrored operands, beta != 0, bias): a
 * matmul primitive and its memory objects, whose data handles are set per
 * call.  64 slots, least recently used evicted.  The other primitives
 * (eltwise, softmax, layer norm, add) are keyed by (kind, algorithm or
 * flags, eps, rows, cols) in 32 slots.  Changing the thread count empties both, because
 * oneDNN may size a primitive's work split by the thread count it saw when
 * the primitive was built.
 *
 * Accumulation.  oneDNN's eltwise, softmax and layer norm backward passes
 * write their gradient; the += of <train/nn.h> is a write into a scratch
 * array (kept, grown as needed) and an add primitive.
 *
 * Threads.  Debian's libdnnl2 (2.6) is built with OpenMP (libgomp: see
 * DNNL_CPU_THREADING_RUNTIME in dnnl_config.h and `ldd libdnnl.so.2`), so
 * its thread count is OpenMP's.  omp_set_num_threads sets it for the
 * calling thread only, so every thread that calls in applies the current
 * setting once (a per-thread generation number).  The function is looked
 * up with dlsym, because libtrain itself is not built with -fopenmp and
 * must not link libgomp directly; libdnnl has loaded it.  OpenBLAS (the
 * pthreads build here) gets openblas_set_num_threads.
 */
#include "kernels_private.h"
#include "vec.h"

#include <cblas.h>
#include <dlfcn.h>
#include <oneapi/dnnl/dnnl.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include <train/tensor.h>

typedef struct mm_key {
	int64_t sa[2], sb[2], sc[2]; /* batch strides (all 0 when unbatched) */
	int batch[2];                /* {1, 1} when unbatched */
	int transA, transB, bf16, accumulate;
	int M, N, K, lda, ldb, ldc;
	int mirA, mirB;              /* bf16: the operand is read from a mirror */
	int bias, zero;              /* a bias row (unbatched only); padding, 0 */
} mm_key;

typedef struct mm_entry {
	mm_key key;
	int used;             /* slot holds a primitive */
	int emulated;         /* bf16 asked, fp32 primitive on rounded operands */
	uint64_t tick;        /* last use, for LRU */
	dnnl_primitive_t prim;
	dnnl_memory_t src, wei, dst, scale, bias;
	char impl[48];
} mm_entry;

/* The other primitives: eltwise forward/backward, the in-place add, and
 * softmax forward/backward over the rows of a dense (rows, cols) matrix
 * (eltwise and add: rows 1, cols n). */
typedef enum op_kind {
	OP_ELT_FWD = 1,  /* mem: SRC, DST */
	OP_ELT_BWD,      /* mem: SRC, DIFF_DST, DIFF_SRC */
	OP_ADD,          /* mem: SRC_0, SRC_1, DST (= SRC_0's memory) */
	OP_SOFTMAX_FWD,  /* mem: SRC, DST */
	OP_SOFTMAX_BWD,  /* mem: DST, DIFF_DST, DIFF_SRC */
	OP_LN_FWD,       /* mem: SRC, DST, MEAN, VARIANCE, SCALE[, SHIFT] */
	OP_LN_BWD,       /* mem: SRC, DIFF_DST, MEAN, VARIANCE, SCALE, DIFF_SRC,
	                  * DIFF_SCALE[, SHIFT, DIFF_SHIFT] (SHIFT: unread, but
	                  * the primitive wants one) */
} op_kind;

#define OP_MAXMEM 9

typedef struct op_key {
	int64_t rows, cols;
	int kind, alg;   /* alg: a train_eltwise_alg for OP_ELT_*, flags for OP_LN_* */
	float eps;       /* OP_LN_FWD */
	int zero;        /* padding, kept 0 */
} op_key;

typedef struct op_entry {
	op_key key;
	int used;
	uint64_t tick;
	dnnl_primitive_t prim;
	dnnl_memory_t mem[OP_MAXMEM];
} op_entry;

/* A bf16 copy of an fp32 array: a registered weight array, or a pin. */
typedef struct mirror {
	const float *base;   /* NULL: a free slot */
	size_t n;
	uint16_t *bf16;      /* n values, at the same offsets as base's */
	size_t cap;          /* elements allocated at bf16 */
	int valid;           /* bf16 holds base's values rounded */
	int pin;             /* a pin (private), not a registered array */
} mirror;

static struct {
	pthread_mutex_t lock;
	dnnl_status_t init_status;
	dnnl_engine_t engine;
	dnnl_stream_t stream;
	int configured;              /* train_kernels_init ran (or defaults applied) */
	int threads;
	train_precision precision;   /* resolved: FP32 or BF16 */
	atomic_uint thread_gen;      /* bumped when `threads` changes */
	void (*omp_set_num_threads)(int);
	mm_entry cache[TRAIN_MATMUL_CACHE_SLOTS];
	op_entry ops[TRAIN_OP_CACHE_SLOTS];
	uint64_t tick;
	size_t built;
	const char *last_impl;
	void *abuf, *bbuf;           /* bf16 scratch (uint16_t), or rounded fp32 */
	size_t acap, bcap;           /* bytes */
	float *tmp;                  /* accumulating backward passes: the values to add */
	size_t tmpcap;               /* bytes */
	int native_bf16;             /* train_cpu_has_bf16(), at engine creation */
	mirror mirrors[TRAIN_MIRROR_SLOTS];
	size_t conversions;          /* mirror conversions so far */
} K = { .lock = PTHREAD_MUTEX_INITIALIZER, .last_impl = "none" };

static pthread_once_t engine_once = PTHREAD_ONCE_INIT;

/* ---- CPU features ---------------------------------------------------------- */

int train_cpu_has_bf16(void)
{
#if defined(__x86_64__) || defined(__i386__)
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE))
		return 0;
	/* The OS must save the registers: XCR0 bits 1,2 (SSE, AVX), 5,6,7
	 * (AVX-512 opmask and upper ZMM), 17,18 (AMX tile config and data). */
	unsigned lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	uint64_t xcr0 = ((uint64_t)hi << 32) | lo;
	if (__get_cpuid_max(0, NULL) < 7)
		return 0;
	__cpuid_count(7, 0, a, b, c, d);
	unsigned max_sub = a;
	int os_avx512 = (xcr0 & 0xe6) == 0xe6, os_amx = (xcr0 & 0x60000) == 0x60000;
	int avx512f = (b >> 16) & 1, amx_bf16 = (d >> 22) & 1;
	int avx512_bf16 = 0;
	if (max_sub >= 1) {
		__cpuid_count(7, 1, a, b, c, d);
		avx512_bf16 = (a >> 5) & 1;
	}
	return (os_avx512 && avx512f && avx512_bf16) || (os_amx && amx_bf16);
#else
	return 0;
#endif
}

/* ---- context --------------------------------------------------------------- */

static int status_code(dnnl_status_t s)
{
	switch (s) {
	case dnnl_success: return TRAIN_OK;
	case dnnl_out_of_memory: return TRAIN_ENOMEM;
	case dnnl_invalid_arguments: return TRAIN_EINVAL;
	default: return TRAIN_EUNSUPPORTED;
	}
}

static void engine_create(void)
{
	K.init_status = dnnl_engine_create(&K.engine, dnnl_cpu, 0);
	if (K.init_status == dnnl_success) {
		K.init_status = dnnl_stream_create(&K.stream, K.engine, dnnl_stream_default_flags);
		if (K.init_status != dnnl_success) {
			dnnl_engine_destroy(K.engine);
			K.engine = NULL;
		}
	}
	K.native_bf16 = train_cpu_has_bf16();
	vec_init();
	/* NULL if libgomp is not loaded (a oneDNN built another way). */
	*(void **)&K.omp_set_num_threads = dlsym(RTLD_DEFAULT, "omp_set_num_threads");
}

static int cpu_count(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

static void entry_free(mm_entry *e)
{
	if (e->prim)
		dnnl_primitive_destroy(e->prim);
	dnnl_memory_t *mems[] = { &e->src, &e->wei, &e->dst, &e->scale, &e->bias };
	for (size_t i = 0; i < sizeof mems / sizeof mems[0]; i++)
		if (*mems[i])
			dnnl_memory_destroy(*mems[i]);
	memset(e, 0, sizeof *e);
}

static void op_free(op_entry *e)
{
	if (e->prim)
		dnnl_primitive_destroy(e->prim);
	for (int i = 0; i < OP_MAXMEM; i++)
		if (e->mem[i])
			dnnl_memory_destroy(e->mem[i]);
	memset(e, 0, sizeof *e);
}

static void cache_clear_locked(void)
{
	for (int i = 0; i < TRAIN_MATMUL_CACHE_SLOTS; i++)
		if (K.cache[i].used)
			entry_free(&K.cache[i]);
	for (int i = 0; i < TRAIN_OP_CACHE_SLOTS; i++)
		if (K.ops[i].used)
			op_free(&K.ops[i]);
}

/* Apply settings; K.lock held and the engine created. */
static void configure_locked(int threads, train_precision precision)
{
	if (threads <= 0)
		threads = cpu_count();
	if (!K.configured || threads != K.threads) {
		cache_clear_locked();
		K.threads = threads;
		atomic_fetch_add(&K.thread_gen, 1);
		openblas_set_num_threads(threads);
	}
	if (precision == TRAIN_PRECISION_AUTO)
		precision = train_cpu_has_bf16() ? TRAIN_PRECISION_BF16 : TRAIN_PRECISION_FP32;
	K.precision = precision;
	K.configured = 1;
}

int train_kernels_init(int threads, train_precision precision)
{
	if (threads < 0 || (precision != TRAIN_PRECISION_AUTO && precision != TRAIN_PRECISION_FP32 &&
	                    precision != TRAIN_PRECISION_BF16))
		return TRAIN_EINVAL;
	pthread_once(&engine_once, engine_create);
	if (K.init_status != dnnl_success)
		return TRAIN_EUNSUPPORTED;
	pthread_mutex_lock(&K.lock);
	configure_locked(threads, precision);
	pthread_mutex_unlock(&K.lock);
	return TRAIN_OK;
}

/* The engine, and the defaults if train_kernels_init never ran; K.lock held. */
static int ensure_ready_locked(void)
{
	pthread_once(&engine_once, engine_create);
	if (K.init_status != dnnl_success)
		return TRAIN_EUNSUPPORTED;
	if (!K.configured)
		configure_locked(0, TRAIN_PRECISION_AUTO);
	return TRAIN_OK;
}

/* Take K.lock, make the context ready and give the calling thread's
 * OpenMP the configured thread count (once per thread and setting).  On
 * failure the lock is released and the error returned. */
static int enter(void)
{
	pthread_mutex_lock(&K.lock);
	int rc = ensure_ready_locked();
	if (rc) {
		pthread_mutex_unlock(&K.lock);
		return rc;
	}
	static _Thread_local unsigned applied_gen;
	unsigned gen = atomic_load(&K.thread_gen);
	if (applied_gen != gen) {
		if (K.omp_set_num_threads)
			K.omp_set_num_threads(K.threads);
		applied_gen = gen;
	}
	return TRAIN_OK;
}

train_precision train_kernels_precision(void)
{
	pthread_mutex_lock(&K.lock);
	int rc = ensure_ready_locked();
	train_precision p = rc ? TRAIN_PRECISION_FP32 : K.precision;
	pthread_mutex_unlock(&K.lock);
	return p;
}

int train_kernels_threads(void)
{
	pthread_mutex_lock(&K.lock);
	int rc = ensure_ready_locked();
	int n = rc ? 1 : K.threads;
	pthread_mutex_unlock(&K.lock);
	return n;
}

size_t train_kernels_primitives_built(void)
{
	pthread_mutex_lock(&K.lock);
	size_t n = K.built;
	pthread_mutex_unlock(&K.lock);
	return n;
}

size_t train_kernels_cache_entries(void)
{
	pthread_mutex_lock(&K.lock);
	size_t n = 0;
	for (int i = 0; i < TRAIN_MATMUL_CACHE_SLOTS; i++)
		n += K.cache[i].used;
	pthread_mutex_unlock(&K.lock);
	return n;
}

size_t train_kernels_op_cache_entries(void)
{
	pthread_mutex_lock(&K.lock);
	size_t n = 0;
	for (int i = 0; i < TRAIN_OP_CACHE_SLOTS; i++)
		n += K.ops[i].used;
	pthread_mutex_unlock(&K.lock);
	return n;
}

void train_kernels_cache_clear(void)
{
	pthread_mutex_lock(&K.lock);
	cache_clear_locked();
	pthread_mutex_unlock(&K.lock);
}

const char *train_kernels_last_impl(void)
{
	return K.last_impl;
}

static int op_run_locked(int kind, int alg, float eps, int64_t rows, int64_t cols,
                         void *const *bufs);

/* Products of fewer multiply-adds run on the calling thread alone (about
 * 40 us at one core's speed, what a wake-up of a sleeping thread costs). */
#define MATMUL_SERIAL_MACS 4194304.0

/* ---- the matmul primitive cache -------------------------------------------- */

/* A memory descriptor for a (batch[0], batch[1],) rows x cols view whose
 * element (b0, b1, i, j) sits at b0*bs[0] + b1*bs[1] + i*rs + j*cs; 2-D
 * (no batch dimensions) when bs is NULL. */
static dnnl_status_t mdesc(dnnl_memory_desc_t *md, const int batch[2], const int64_t *bs, int rows,
                           int cols, int64_t rs, int64_t cs, dnnl_data_type_t dt)
{
	if (!bs) {
		dnnl_dims_t dims = { rows, cols }, strides = { rs, cs };
		return dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides);
	}
	dnnl_dims_t dims = { batch[0], batch[1], rows, cols }, strides = { bs[0], bs[1], rs, cs };
	return dnnl_memory_desc_init_by_strides(md, 4, dims, dt, strides);
}

static int key_batched(const mm_key *key)
{
	return key->batch[0] != 1 || key->batch[1] != 1;
}

/* Build the primitive for `key` into `e`.  bf16: the matmul reads dense
 * bf16 copies (stored orientation, row stride = row length, the batch
 * matrices one after the other) that vec_to_bf16 fills from the caller's
 * fp32 operands.  A bf16 matmul that would be oneDNN's reference code is
 * refused (dnnl_unimplemented), so that the caller emulates instead. */
static dnnl_status_t entry_build(mm_entry *e, const mm_key *key)
{
	dnnl_status_t s;
	dnnl_memory_desc_t a_md, b_md, c_md, s_md, bias_md;
	dnnl_primitive_attr_t attr = NULL;
	dnnl_post_ops_t ops = NULL;
	dnnl_primitive_desc_t pd = NULL;
	dnnl_matmul_desc_t desc;
	dnnl_data_type_t in = key->bf16 ? dnnl_bf16 : dnnl_f32;
	/* Stored shapes, and the strides the matmul sees. */
	int a_rows = key->transA ? key->K : key->M, a_cols = key->transA ? key->M : key->K;
	int b_rows = key->transB ? key->N : key->K, b_cols = key->transB ? key->K : key->N;
	/* bf16 operands are dense copies, except mirrors (the caller's layout) */
	int denseA = key->bf16 && !key->mirA, denseB = key->bf16 && !key->mirB;
	int lda = denseA ? a_cols : key->lda, ldb = denseB ? b_cols : key->ldb;
	const int *nb = key->batch;
	int batched = key_batched(key);
	int64_t a_size = (int64_t)a_rows * a_cols, b_size = (int64_t)b_rows * b_cols;
	int64_t a16_bs[2] = { nb[1] * a_size, a_size }, b16_bs[2] = { nb[1] * b_size, b_size };
	const int64_t *sa = !batched ? NULL : denseA ? a16_bs : key->sa;
	const int64_t *sb = !batched ? NULL : denseB ? b16_bs : key->sb;

	memset(e, 0, sizeof *e);
	/* op(A)(m, k): A[m*lda + k], or A[k*lda + m] when transposed. */
	if ((s = mdesc(&a_md, nb, sa, key->M, key->K, key->transA ? 1 : lda, key->transA ? lda : 1,
	               in)) ||
	    (s = mdesc(&b_md, nb, sb, key->K, key->N, key->transB ? 1 : ldb, key->transB ? ldb : 1,
	               in)) ||
	    (s = mdesc(&c_md, nb, batched ? key->sc : NULL, key->M, key->N, key->ldc, 1, dnnl_f32)))
		goto out;
	dnnl_dims_t one = { 1 };
	if ((s = dnnl_memory_desc_init_by_tag(&s_md, 1, one, dnnl_f32, dnnl_a)))
		goto out;
	dnnl_dims_t bias_dims = { 1, key->N };
	if (key->bias && (s = dnnl_memory_desc_init_by_tag(&bias_md, 2, bias_dims, dnnl_f32, dnnl_ab)))
		goto out;
	if ((s = dnnl_matmul_desc_init(&desc, &a_md, &b_md, key->bias ? &bias_md : NULL, &c_md)))
		goto out;
	if ((s = dnnl_primitive_attr_create(&attr)))
		goto out;
	float runtime = DNNL_RUNTIME_F32_VAL;
	if ((s = dnnl_primitive_attr_set_output_scales(attr, 1, 0, &runtime)))
		goto out;
	if (key->accumulate) {
		if ((s = dnnl_post_ops_create(&ops)) || (s = dnnl_post_ops_append_sum(ops, 1.0f)) ||
		    (s = dnnl_primitive_attr_set_post_ops(attr, ops)))
			goto out;
	}
	if ((s = dnnl_primitive_desc_create(&pd, &desc, attr, K.engine, NULL)))
		goto out;
	const char *impl = NULL;
	if (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) != dnnl_success)
		impl = "?";
	if (key->bf16 && strncmp(impl, "ref", 3) == 0) {
		s = dnnl_unimplemented;
		goto out;
	}
	snprintf(e->impl, sizeof e->impl, "%s", impl);
	if ((s = dnnl_primitive_create(&e->prim, pd)) ||
	    (s = dnnl_memory_create(&e->src, &a_md, K.engine, DNNL_MEMORY_NONE)) ||
	    (s = dnnl_memory_create(&e->wei, &b_md, K.engine, DNNL_MEMORY_NONE)) ||
	    (s = dnnl_memory_create(&e->dst, &c_md, K.engine, DNNL_MEMORY_NONE)) ||
	    (s = dnnl_memory_create(&e->scale, &s_md, K.engine, DNNL_MEMORY_NONE)) ||
	    (key->bias && (s = dnnl_memory_create(&e->bias, &bias_md, K.engine, DNNL_MEMORY_NONE))))
		goto out;
	e->key = *key;
	e->used = 1;
	K.built++;
out:
	if (s)
		entry_free(e);
	if (pd)
		dnnl_primitive_desc_destroy(pd);
	if (ops)
		dnnl_post_ops_destroy(ops);
	if (attr)
		dnnl_primitive_attr_destroy(attr);
	return s;
}

/* The cached entry for `key`, built on a miss (in a free slot, or in place
 * of the least recently used one); NULL with *status set on failure.  A bf16
 * key that oneDNN can only serve with reference code is cached too, as an
 * entry with `emulated` set and no primitive, so the refusal is not
 * rediscovered on every call. */
static mm_entry *cache_get(const mm_key *key, dnnl_status_t *status)
{
	mm_entry *victim = &K.cache[0];
	for (int i = 0; i < TRAIN_MATMUL_CACHE_SLOTS; i++) {
		mm_entry *e = &K.cache[i];
		if (e->used && memcmp(&e->key, key, sizeof *key) == 0) {
			e->tick = ++K.tick;
			return e;
		}
		if (victim->used && (!e->used || e->tick < victim->tick))
			victim = e;
	}
	if (victim->used)
		entry_free(victim);
	*status = entry_build(victim, key);
	if (*status == dnnl_unimplemented && key->bf16) {
		victim->key = *key;
		victim->used = 1;
		victim->emulated = 1;
		*status = dnnl_success;
	}
	if (*status)
		return NULL;
	victim->tick = ++K.tick;
	return victim;
}

/* ---- bf16 mirrors ------------------------------------------------------------ */

/* Elements from the first to one past the last of a batch of stored
 * rows x cols matrices (row stride ld, batch strides bs, 0 unbatched). */
static size_t operand_extent(const int nb[2], const int64_t bs[2], int rows, int cols, int ld)
{
	return (size_t)((nb[0] - 1) * bs[0] + (nb[1] - 1) * bs[1] + (int64_t)(rows - 1) * ld + cols);
}

/* [p, p + n) within [m->base, m->base + m->n) (compared as integers: they
 * may be unrelated objects) */
static int mirror_covers(const mirror *m, const float *p, size_t n)
{
	uintptr_t b = (uintptr_t)m->base, x = (uintptr_t)p;
	return m->base && x >= b && (x - b) / sizeof(float) + n <= m->n && (x - b) % sizeof(float) == 0;
}

static int mirror_overlaps(const mirror *m, const float *p, size_t n)
{
	uintptr_t b = (uintptr_t)m->base, x = (uintptr_t)p;
	return m->base && x < b + m->n * sizeof(float) && b < x + n * sizeof(float);
}

/* The bf16 mirror of the n floats at p, converted first if stale; NULL in
 * *out if no mirror covers them.  K.lock held. */
static int mirror_find_locked(const float *p, size_t n, const uint16_t **out)
{
	*out = NULL;
	for (int i = 0; i < TRAIN_MIRROR_SLOTS; i++) {
		mirror *m = &K.mirrors[i];
		if (!mirror_covers(m, p, n))
			continue;
		if (!m->valid) {
			vec_to_bf16_n(m->bf16, m->base, m->n, K.threads);
			m->valid = 1;
			K.conversions++;
		}
		*out = m->bf16 + ((uintptr_t)p - (uintptr_t)m->base) / sizeof(float);
		return TRAIN_OK;
	}
	return TRAIN_OK;
}

/* The n floats at p are about to be written: mirrors of them go stale. */
static void mirror_written_locked(const float *p, size_t n)
{
	for (int i = 0; i < TRAIN_MIRROR_SLOTS; i++)
		if (mirror_overlaps(&K.mirrors[i], p, n))
			K.mirrors[i].valid = 0;
}

/* A free slot for [p, p + n), with room for n values; NULL (and *rc) if p
 * overlaps a mirror, the table is full or memory is short. */
static mirror *mirror_add_locked(const float *p, size_t n, int *rc)
{
	mirror *slot = NULL;
	for (int i = 0; i < TRAIN_MIRROR_SLOTS; i++) {
		mirror *m = &K.mirrors[i];
		if (mirror_overlaps(m, p, n)) {
			*rc = TRAIN_EINVAL;
			return NULL;
		}
		/* prefer a free slot whose buffer is big enough */
		if (!m->base && (!slot || (slot->cap < n && m->cap > slot->cap)))
			slot = m;
	}
	if (!slot) {
		*rc = TRAIN_ENOMEM;
		return NULL;
	}
	if (slot->cap < n) {
		void *buf = NULL;
		if (n > SIZE_MAX / sizeof(uint16_t) ||
		    posix_memalign(&buf, 64, n * sizeof(uint16_t)) != 0) {
			*rc = TRAIN_ENOMEM;
			return NULL;
		}
		free(slot->bf16);
		slot->bf16 = buf;
		slot->cap = n;
	}
	slot->base = p;
	slot->n = n;
	slot->valid = 0;
	slot->pin = 0;
	*rc = TRAIN_OK;
	return slot;
}

int train_kernels_weights_register(const float *w, size_t n)
{
	if (!w || n == 0 || n > (size_t)INT64_MAX / sizeof(float))
		return TRAIN_EINVAL;
	pthread_mutex_lock(&K.lock);
	int rc = TRAIN_ENOMEM, registered = 0;
	for (int i = 0; i < TRAIN_MIRROR_SLOTS; i++)
		registered += K.mirrors[i].base && !K.mirrors[i].pin;
	if (registered < TRAIN_KERNELS_WEIGHTS_MAX)
		mirror_add_locked(w, n, &rc);
	pthread_mutex_unlock(&K.lock);
	return rc;
}

void train_kernels_weights_unregister(const float *w)
{
	pthread_mutex_lock(&K.lock);
	for (int i = 0; i < TRAIN_MIRROR_SLOTS; i++) {
		mirror *m = &K.mirrors[i];
		if (m->base && m->base == w && !m->pin) {
			free(m->bf16);
			memset(m, 0, sizeof *m);
		}
	}
	pthread_mutex_unlock(&K.lock);
}

void train_kernels_weights_changed(const float *w)
{
	pthread_mutex_lock(&K.lock);
	for (int i = 0; i < TRAIN_MIRROR_SLOTS; i++) {
		mirror *m = &K.mirrors[i];
		if (m->base && !m->pin && (!w || m->base == w))
			m->valid = 0;
	}
	pthread_mutex_unlock(&K.lock);
}

int train_kernels_bf16_pin(const float *p, size_t n)
{
	if (!p || n == 0 || n > (size_t)INT64_MAX / sizeof(float))
		return 0;
	pthread_mutex_lock(&K.lock);
	int rc = ensure_ready_locked(), token = 0;
	if (rc == TRAIN_OK && K.precision == TRAIN_PRECISION_BF16 && K.native_bf16) {
		mirror *m = mirror_add_locked(p, n, &rc);
		if (m) {
			m->pin = 1;
			token = (int)(m - K.mirrors) + 1;
		}
	}
	pthread_mutex_unlock(&K.lock);
	return token;
}

void train_kernels_bf16_unpin(int token)
{
	if (token <= 0 || token > TRAIN_MIRROR_SLOTS)
		return;
	pthread_mutex_lock(&K.lock);
	mirror *m = &K.mirrors[token - 1];
	if (m->pin) {
		m->base = NULL; /* the buffer stays for the next pin */
		m->n = 0;
		m->valid = m->pin = 0;
	}
	pthread_mutex_unlock(&K.lock);
}

size_t train_kernels_mirror_conversions(void)
{
	pthread_mutex_lock(&K.lock);
	size_t n = K.conversions;
	pthread_mutex_unlock(&K.lock);
	return n;
}

/* ---- matmul ---------------------------------------------------------------- */

/* C (M x N, stride ldc) *= beta; beta 0 writes zeros. */
static void scale_c(float *C, int M, int N, int ldc, float beta)
{
	for (int i = 0; i < M; i++) {
		float *row = C + (size_t)i * (size_t)ldc;
		if (beta == 0.0f)
			memset(row, 0, (size_t)N * sizeof *row);
		else
			for (int j = 0; j < N; j++)
				row[j] *= beta;
	}
}

/* scale_c on every matrix of a batch (sc: element strides). */
static void scale_c_batch(float *C, const int nb[2], const int64_t sc[2], int M, int N, int ldc,
                          float beta)
{
	for (int i = 0; i < nb[0]; i++)
		for (int j = 0; j < nb[1]; j++)
			scale_c(C + i * sc[0] + j * sc[1], M, N, ldc, beta);
}

static int grow(void **buf, size_t *cap, size_t bytes)
{
	if (bytes <= *cap)
		return 0;
	void *p = NULL;
	if (posix_memalign(&p, 64, bytes) != 0)
		return TRAIN_ENOMEM;
	free(*buf);
	*buf = p;
	*cap = bytes;
	return 0;
}

/* A batch of stored rows x cols fp32 matrices (row stride ld, batch
 * strides bs) -> the same, dense and one after the other, with values
 * rounded to bf16. */
static void to_bf16_emulated(float *dst, const float *src, const int nb[2], const int64_t bs[2],
                             int rows, int cols, int ld)
{
	for (int b0 = 0; b0 < nb[0]; b0++)
		for (int b1 = 0; b1 < nb[1]; b1++)
			for (int i = 0; i < rows; i++) {
				const float *s = src + b0 * bs[0] + b1 * bs[1] + (int64_t)i * ld;
				for (int j = 0; j < cols; j++)
					*dst++ = train_bf16_to_f32(train_f32_to_bf16(s[j]));
			}
}

/* The one matmul behind train_matmul and train_matmul_batch: arguments
 * checked, nb[0] * nb[1] >= 1, M, N >= 1; strides (elements) of unbatched
 * calls are 0. */
static int matmul_run(int transA, int transB, const int nb[2], int M, int N, int Kd, float alpha,
                      const float *A, int lda, const int64_t sa[2], const float *B, int ldb,
                      const int64_t sb[2], float beta, float *C, int ldc, const int64_t sc[2],
                      const float *bias)
{
	int a_rows = transA ? Kd : M, a_cols = transA ? M : Kd;
	int b_rows = transB ? N : Kd, b_cols = transB ? Kd : N;
	size_t count = (size_t)nb[0] * (size_t)nb[1];
	if (Kd == 0 || alpha == 0.0f) {
		if (beta != 1.0f)
			scale_c_batch(C, nb, sc, M, N, ldc, beta);
		return TRAIN_OK;
	}
	if (!A || !B)
		return TRAIN_EINVAL;

	int rc = enter();
	if (rc)
		return rc;
	if (beta != 0.0f && beta != 1.0f) {
		scale_c_batch(C, nb, sc, M, N, ldc, beta);
		beta = 1.0f;
	}

	mm_key key;
	memset(&key, 0, sizeof key); /* padding-free, but compared with memcmp */
	key.transA = !!transA, key.transB = !!transB, key.accumulate = beta != 0.0f;
	key.M = M, key.N = N, key.K = Kd, key.lda = lda, key.ldb = ldb, key.ldc = ldc;
	key.bf16 = K.precision == TRAIN_PRECISION_BF16;
	key.batch[0] = nb[0], key.batch[1] = nb[1];
	key.bias = bias != NULL;
	if (key_batched(&key))
		for (int i = 0; i < 2; i++)
			key.sa[i] = sa[i], key.sb[i] = sb[i], key.sc[i] = sc[i];
	mm_entry *e;
	dnnl_status_t s = dnnl_success;
	int serial = 0;
	const uint16_t *ma = NULL, *mb = NULL; /* bf16 mirrors of A and B */
	if (key.bf16 && K.native_bf16) {
		if ((rc = mirror_find_locked(A, operand_extent(nb, key.sa, a_rows, a_cols, lda), &ma)) ||
		    (rc = mirror_find_locked(B, operand_extent(nb, key.sb, b_rows, b_cols, ldb), &mb)))
			goto out;
		key.mirA = ma != NULL, key.mirB = mb != NULL;
	}
	mirror_written_locked(C, operand_extent(nb, key.sc, M, N, ldc));
	/* A small product (a LoRA adapter's, a classifier's) costs less on
	 * this thread than waking another: oneDNN runs it without a parallel
	 * region when it sees one thread, built and executed so. */
	if (K.threads > 1 && K.omp_set_num_threads &&
	    (double)M * (double)N * (double)Kd * (double)count < MATMUL_SERIAL_MACS) {
		K.omp_set_num_threads(1);
		serial = 1;
	}
	if (!(e = cache_get(&key, &s))) {
		rc = status_code(s);
		goto out;
	}
	if (e->emulated && (key.mirA || key.mirB)) {
		/* oneDNN has only reference code for the mirrors' strides: dense copies */
		key.mirA = key.mirB = 0;
		ma = mb = NULL;
		if (!(e = cache_get(&key, &s))) {
			rc = status_code(s);
			goto out;
		}
	}
	const void *a = A, *b = B;
	if (key.bf16) {
		int emulate = e->emulated;
		size_t el = emulate ? sizeof(float) : sizeof(uint16_t);
		if ((!ma && grow(&K.abuf, &K.acap, count * (size_t)a_rows * (size_t)a_cols * el)) ||
		    (!mb && grow(&K.bbuf, &K.bcap, count * (size_t)b_rows * (size_t)b_cols * el))) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		a = ma ? (const void *)ma : K.abuf;
		b = mb ? (const void *)mb : K.bbuf;
		if (emulate) {
			/* The fp32 primitive on dense operands rounded to bf16. */
			to_bf16_emulated(K.abuf, A, nb, key.sa, a_rows, a_cols, lda);
			to_bf16_emulated(K.bbuf, B, nb, key.sb, b_rows, b_cols, ldb);
			mm_key k32 = key;
			k32.bf16 = 0;
			k32.lda = a_cols;
			k32.ldb = b_cols;
			if (key_batched(&key)) {
				int64_t as = (int64_t)a_rows * a_cols, bs = (int64_t)b_rows * b_cols;
				k32.sa[0] = nb[1] * as, k32.sa[1] = as;
				k32.sb[0] = nb[1] * bs, k32.sb[1] = bs;
			}
			if (!(e = cache_get(&k32, &s))) {
				rc = status_code(s);
				goto out;
			}
		} else {
			/* dense bf16 copies, rounded to nearest even (vec.c) */
			if (!ma)
				vec_to_bf16(K.abuf, A, nb[0], nb[1], key.sa[0], key.sa[1], a_rows, a_cols,
				            lda, K.threads);
			if (!mb)
				vec_to_bf16(K.bbuf, B, nb[0], nb[1], key.sb[0], key.sb[1], b_rows, b_cols,
				            ldb, K.threads);
		}
		K.last_impl = emulate ? "emulated" : e->impl;
	} else {
		K.last_impl = e->impl;
	}

	float scale = alpha;
	if ((s = dnnl_memory_set_data_handle(e->src, (void *)a)) ||
	    (s = dnnl_memory_set_data_handle(e->wei, (void *)b)) ||
	    (s = dnnl_memory_set_data_handle(e->dst, C)) ||
	    (s = dnnl_memory_set_data_handle(e->scale, &scale))) {
		rc = status_code(s);
		goto out;
	}
	if (bias && (s = dnnl_memory_set_data_handle(e->bias, (void *)bias))) {
		rc = status_code(s);
		goto out;
	}
	dnnl_exec_arg_t args[] = {
		{ DNNL_ARG_SRC, e->src },
		{ DNNL_ARG_WEIGHTS, e->wei },
		{ DNNL_ARG_DST, e->dst },
		{ DNNL_ARG_ATTR_OUTPUT_SCALES, e->scale },
		{ DNNL_ARG_BIAS, e->bias },
	};
	if ((s = dnnl_primitive_execute(e->prim, K.stream, bias ? 5 : 4, args)) ||
	    (s = dnnl_stream_wait(K.stream)))
		rc = status_code(s);
out:
	if (serial)
		K.omp_set_num_threads(K.threads);
	pthread_mutex_unlock(&K.lock);
	return rc;
}

/* The stored shapes' checks shared by both entry points. */
static int matmul_args_ok(int transA, int transB, int M, int N, int Kd, int lda, int ldb, int ldc)
{
	int a_cols = transA ? M : Kd, b_cols = transB ? Kd : N;
	return M >= 0 && N >= 0 && Kd >= 0 && lda >= (a_cols > 1 ? a_cols : 1) &&
	       ldb >= (b_cols > 1 ? b_cols : 1) && ldc >= (N > 1 ? N : 1);
}

int train_matmul(int transA, int transB, int M, int N, int Kd, float alpha, const float *A,
                 int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
	if (!matmul_args_ok(transA, transB, M, N, Kd, lda, ldb, ldc))
		return TRAIN_EINVAL;
	if (M == 0 || N == 0)
		return TRAIN_OK;
	if (!C)
		return TRAIN_EINVAL;
	static const int one[2] = { 1, 1 };
	static const int64_t none[2] = { 0, 0 };
	return matmul_run(transA, transB, one, M, N, Kd, alpha, A, lda, none, B, ldb, none, beta, C,
	                  ldc, none, NULL);
}

int train_matmul_bias(int transA, int transB, int M, int N, int Kd, const float *A, int lda,
                      const float *B, int ldb, const float *bias, float *C, int ldc)
{
	if (!matmul_args_ok(transA, transB, M, N, Kd, lda, ldb, ldc))
		return TRAIN_EINVAL;
	if (M == 0 || N == 0)
		return TRAIN_OK;
	if (!C)
		return TRAIN_EINVAL;
	static const int one[2] = { 1, 1 };
	static const int64_t none[2] = { 0, 0 };
	if (!bias || Kd == 0) {
		int rc = matmul_run(transA, transB, one, M, N, Kd, 1.0f, A, lda, none, B, ldb, none,
		                    0.0f, C, ldc, none, NULL);
		for (int i = 0; i < M && rc == TRAIN_OK && bias; i++) /* K = 0: C = bias */
			memcpy(C + (size_t)i * (size_t)ldc, bias, (size_t)N * sizeof *C);
		return rc;
	}
	return matmul_run(transA, transB, one, M, N, Kd, 1.0f, A, lda, none, B, ldb, none, 0.0f, C,
	                  ldc, none, bias);
}

int train_matmul_batch(int transA, int transB, int batch0, int batch1, int M, int N, int Kd,
                       float alpha, const float *A, int lda, const int64_t sa[2], const float *B,
                       int ldb, const int64_t sb[2], float beta, float *C, int ldc,
                       const int64_t sc[2])
{
	if (!matmul_args_ok(transA, transB, M, N, Kd, lda, ldb, ldc) || batch0 < 0 || batch1 < 0 ||
	    !sa || !sb || !sc)
		return TRAIN_EINVAL;
	for (int i = 0; i < 2; i++)
		if (sa[i] < 0 || sb[i] < 0 || sc[i] < 0)
			return TRAIN_EINVAL;
	if (M == 0 || N == 0 || batch0 == 0 || batch1 == 0)
		return TRAIN_OK;
	if (!C)
		return TRAIN_EINVAL;
	const int nb[2] = { batch0, batch1 };
	return matmul_run(transA, transB, nb, M, N, Kd, alpha, A, lda, sa, B, ldb, sb, beta, C, ldc,
	                  sc, NULL);
}

/* ---- eltwise, add and softmax ---------------------------------------------- */

static dnnl_alg_kind_t eltwise_alg(int alg, float *alpha)
{
	*alpha = 0.0f;
	switch (alg) {
	case TRAIN_ELTWISE_GELU_ERF: return dnnl_eltwise_gelu_erf;
	case TRAIN_ELTWISE_SILU: *alpha = 1.0f; return dnnl_eltwise_swish; /* x * sigmoid(1 x) */
	case TRAIN_ELTWISE_GELU_TANH: return dnnl_eltwise_gelu_tanh;
	}
	return dnnl_alg_kind_undef;
}

/* Each kind's memory arguments, in the order of the buffers passed to
 * op_run_locked, with the shape of each: D data (rows, cols), H the same
 * in bf16, S statistics (rows), W per-column parameters (cols). */
static const struct {
	int n;
	struct {
		int arg;
		char shape;
	} a[OP_MAXMEM];
} op_args[] = {
	[OP_ELT_FWD] = { 2, { { DNNL_ARG_SRC, 'D' }, { DNNL_ARG_DST, 'D' } } },
	[OP_ELT_BWD] = { 3, { { DNNL_ARG_SRC, 'D' }, { DNNL_ARG_DIFF_DST, 'D' },
	                      { DNNL_ARG_DIFF_SRC, 'D' } } },
	[OP_ADD] = { 3, { { DNNL_ARG_SRC_0, 'D' }, { DNNL_ARG_SRC_1, 'D' }, { DNNL_ARG_DST, 'D' } } },
	[OP_SOFTMAX_FWD] = { 2, { { DNNL_ARG_SRC, 'D' }, { DNNL_ARG_DST, 'D' } } },
	[OP_SOFTMAX_BWD] = { 3, { { DNNL_ARG_DST, 'D' }, { DNNL_ARG_DIFF_DST, 'D' },
	                          { DNNL_ARG_DIFF_SRC, 'D' } } },
	[OP_LN_FWD] = { 6, { { DNNL_ARG_SRC, 'D' }, { DNNL_ARG_DST, 'D' }, { DNNL_ARG_MEAN, 'S' },
	                     { DNNL_ARG_VARIANCE, 'S' }, { DNNL_ARG_SCALE, 'W' },
	                     { DNNL_ARG_SHIFT, 'W' } } },
	[OP_LN_BWD] = { 9, { { DNNL_ARG_SRC, 'D' }, { DNNL_ARG_DIFF_DST, 'D' }, { DNNL_ARG_MEAN, 'S' },
	                     { DNNL_ARG_VARIANCE, 'S' }, { DNNL_ARG_SCALE, 'W' },
	                     { DNNL_ARG_DIFF_SRC, 'D' }, { DNNL_ARG_DIFF_SCALE, 'W' },
	                     { DNNL_ARG_SHIFT, 'W' }, { DNNL_ARG_DIFF_SHIFT, 'W' } } },
};

/* The memory arguments of a key: layer norm without a shift drops the
 * shift's (the last one forward, the last two backward). */
static int op_mems(const op_key *key)
{
	int n = op_args[key->kind].n;
	if ((key->kind == OP_LN_FWD || key->kind == OP_LN_BWD) && !(key->alg & dnnl_use_shift))
		n -= key->kind == OP_LN_FWD ? 1 : 2;
	return n;
}

/* Build the primitive for `key` into `e` (zeroed). */
static dnnl_status_t op_build(op_entry *e, const op_key *key)
{
	dnnl_status_t s;
	dnnl_memory_desc_t md, md_s, md_w;
	dnnl_primitive_desc_t hint = NULL, pd = NULL;
	dnnl_dims_t dims = { key->rows, key->cols }, dims_s = { key->rows }, dims_w = { key->cols };
	float alpha = 0.0f;
	dnnl_alg_kind_t alg = eltwise_alg(key->alg, &alpha);
	int nmem = op_mems(key);

	memset(e, 0, sizeof *e);
	if ((s = dnnl_memory_desc_init_by_tag(&md, 2, dims, dnnl_f32, dnnl_ab)) ||
	    (s = dnnl_memory_desc_init_by_tag(&md_s, 1, dims_s, dnnl_f32, dnnl_a)) ||
	    (s = dnnl_memory_desc_init_by_tag(&md_w, 1, dims_w, dnnl_f32, dnnl_a)))
		goto out;
	switch (key->kind) {
	case OP_ELT_FWD:
	case OP_ELT_BWD: {
		dnnl_eltwise_desc_t fwd, bwd;
		if ((s = dnnl_eltwise_forward_desc_init(&fwd, dnnl_forward_training, alg, &md, alpha,
		                                        0.0f)) ||
		    (s = dnnl_primitive_desc_create(&hint, &fwd, NULL, K.engine, NULL)))
			goto out;
		if (key->kind == OP_ELT_FWD) {
			pd = hint;
			hint = NULL;
		} else if ((s = dnnl_eltwise_backward_desc_init(&bwd, alg, &md, &md, alpha, 0.0f)) ||
		           (s = dnnl_primitive_desc_create(&pd, &bwd, NULL, K.engine, hint))) {
			goto out;
		}
		break;
	}
	case OP_ADD: {
		dnnl_binary_desc_t d;
		if ((s = dnnl_binary_desc_init(&d, dnnl_binary_add, &md, &md, &md)) ||
		    (s = dnnl_primitive_desc_create(&pd, &d, NULL, K.engine, NULL)))
			goto out;
		break;
	}
	case OP_SOFTMAX_FWD:
	case OP_SOFTMAX_BWD: {
		dnnl_softmax_desc_t fwd, bwd;
		if ((s = dnnl_softmax_forward_desc_init(&fwd, dnnl_forward_training, &md, 1)) ||
		    (s = dnnl_primitive_desc_create(&hint, &fwd, NULL, K.engine, NULL)))
			goto out;
		if (key->kind == OP_SOFTMAX_FWD) {
			pd = hint;
			hint = NULL;
		} else if ((s = dnnl_softmax_backward_desc_init(&bwd, &md, &md, 1)) ||
		           (s = dnnl_primitive_desc_create(&pd, &bwd, NULL, K.engine, hint))) {
			goto out;
		}
		break;
	}
	case OP_LN_FWD:
	case OP_LN_BWD: {
		/* backward: variance is 1/rstd^2 and eps 0 (see train_layernorm_rows_backward) */
		dnnl_layer_normalization_desc_t fwd, bwd;
		float eps = key->kind == OP_LN_FWD ? key->eps : 0.0f;
		if ((s = dnnl_layer_normalization_forward_desc_init(&fwd, dnnl_forward_training, &md,
		                                                    &md_s, eps, (unsigned)key->alg)) ||
		    (s = dnnl_primitive_desc_create(&hint, &fwd, NULL, K.engine, NULL)))
			goto out;
		if (key->kind == OP_LN_FWD) {
			pd = hint;
			hint = NULL;
		} else if ((s = dnnl_layer_normalization_backward_desc_init(
		                    &bwd, dnnl_backward, &md, &md, &md_s, eps, (unsigned)key->alg)) ||
		           (s = dnnl_primitive_desc_create(&pd, &bwd, NULL, K.engine, hint))) {
			goto out;
		}
		break;
	}
	default:
		s = dnnl_invalid_arguments;
		goto out;
	}
	if ((s = dnnl_primitive_create(&e->prim, pd)))
		goto out;
	for (int i = 0; i < nmem; i++) {
		char shape = op_args[key->kind].a[i].shape;
		const dnnl_memory_desc_t *mdi = shape == 'S' ? &md_s : shape == 'W' ? &md_w : &md;
		if ((s = dnnl_memory_create(&e->mem[i], mdi, K.engine, DNNL_MEMORY_NONE)))
			goto out;
	}
	e->key = *key;
	e->used = 1;
	K.built++;
out:
	if (s)
		op_free(e);
	if (pd)
		dnnl_primitive_desc_destroy(pd);
	if (hint)
		dnnl_primitive_desc_destroy(hint);
	return s;
}

/* Run the cached primitive of (kind, alg, eps, rows, cols) on the buffers,
 * in the order of op_args; K.lock held. */
static int op_run_locked(int kind, int alg, float eps, int64_t rows, int64_t cols,
                         void *const *bufs)
{
	op_key key;
	memset(&key, 0, sizeof key);
	key.kind = kind, key.alg = alg, key.eps = eps, key.rows = rows, key.cols = cols;
	op_entry *e = NULL, *victim = &K.ops[0];
	for (int i = 0; i < TRAIN_OP_CACHE_SLOTS && !e; i++) {
		op_entry *x = &K.ops[i];
		if (x->used && memcmp(&x->key, &key, sizeof key) == 0)
			e = x;
		else if (victim->used && (!x->used || x->tick < victim->tick))
			victim = x;
	}
	dnnl_status_t s;
	if (!e) {
		if (victim->used)
			op_free(victim);
		if ((s = op_build(victim, &key)))
			return status_code(s);
		e = victim;
	}
	e->tick = ++K.tick;
	int nmem = op_mems(&key);
	dnnl_exec_arg_t ea[OP_MAXMEM];
	for (int i = 0; i < nmem; i++) {
		if ((s = dnnl_memory_set_data_handle(e->mem[i], bufs[i])))
			return status_code(s);
		ea[i].arg = op_args[kind].a[i].arg;
		ea[i].memory = e->mem[i];
	}
	if ((s = dnnl_primitive_execute(e->prim, K.stream, nmem, ea)) ||
	    (s = dnnl_stream_wait(K.stream)))
		return status_code(s);
	return TRAIN_OK;
}

/* acc[i] += x[i] for n elements, by the threaded add; K.lock held. */
static int add_locked(float *acc, const float *x, size_t n)
{
	void *bufs[3] = { acc, (void *)x, acc };
	return op_run_locked(OP_ADD, 0, 0.0f, 1, (int64_t)n, bufs);
}

/* A backward pass whose result is added to `out`: the op writes into
 * K.tmp, which is then added.  bufs[2] is replaced. */
static int run_accumulating_locked(int kind, int alg, int64_t rows, int64_t cols, void *bufs[3],
                                   float *out)
{
	size_t n = (size_t)rows * (size_t)cols;
	if (grow((void **)&K.tmp, &K.tmpcap, n * sizeof(float)))
		return TRAIN_ENOMEM;
	bufs[2] = K.tmp;
	int rc = op_run_locked(kind, alg, 0.0f, rows, cols, bufs);
	return rc ? rc : add_locked(out, K.tmp, n);
}

int train_add(float *out, const float *a, const float *b, size_t n)
{
	if (n > (size_t)INT64_MAX / sizeof(float) || (n && (!out || !a || !b)))
		return TRAIN_EINVAL;
	if (n == 0)
		return TRAIN_OK;
	int rc = enter();
	if (rc)
		return rc;
	void *bufs[3] = { (void *)a, (void *)b, out };
	rc = op_run_locked(OP_ADD, 0, 0.0f, 1, (int64_t)n, bufs);
	pthread_mutex_unlock(&K.lock);
	return rc;
}

int train_kernels_dropout(float *out, uint8_t *mask, const float *inp, size_t n, uint32_t thr,
                          float scale, uint64_t key)
{
	int rc = enter();
	if (rc)
		return rc;
	vec_dropout(out, mask, inp, n, thr, scale, key, K.threads);
	pthread_mutex_unlock(&K.lock);
	return TRAIN_OK;
}

static int eltwise_alg_ok(train_eltwise_alg alg)
{
	return alg == TRAIN_ELTWISE_GELU_ERF || alg == TRAIN_ELTWISE_SILU ||
	       alg == TRAIN_ELTWISE_GELU_TANH;
}

int train_eltwise_forward(train_eltwise_alg alg, float *out, const float *inp, size_t n)
{
	if (!eltwise_alg_ok(alg) || n > (size_t)INT64_MAX / sizeof(float) || (n && (!out || !inp)))
		return TRAIN_EINVAL;
	if (n == 0)
		return TRAIN_OK;
	int rc = enter();
	if (rc)
		return rc;
	if (vec_avx512()) {
		vec_act_forward(alg, out, inp, n, K.threads);
		pthread_mutex_unlock(&K.lock);
		return TRAIN_OK;
	}
	void *bufs[3] = { (void *)inp, out, NULL };
	rc = op_run_locked(OP_ELT_FWD, alg, 0.0f, 1, (int64_t)n, bufs);
	pthread_mutex_unlock(&K.lock);
	return rc;
}

int train_eltwise_backward(train_eltwise_alg alg, float *dinp, const float *inp,
                           const float *dout, size_t n, int accumulate)
{
	if (!eltwise_alg_ok(alg) || n > (size_t)INT64_MAX / sizeof(float) ||
	    (n && (!dinp || !inp || !dout)))
		return TRAIN_EINVAL;
	if (n == 0)
		return TRAIN_OK;
	int rc = enter();
	if (rc)
		return rc;
	if (vec_avx512()) {
		vec_act_backward(alg, dinp, inp, dout, n, accumulate, K.threads);
		pthread_mutex_unlock(&K.lock);
		return TRAIN_OK;
	}
	void *bufs[3] = { (void *)inp, (void *)dout, dinp };
	if (accumulate)
		rc = run_accumulating_locked(OP_ELT_BWD, alg, 1, (int64_t)n, bufs, dinp);
	else
		rc = op_run_locked(OP_ELT_BWD, alg, 0.0f, 1, (int64_t)n, bufs);
	pthread_mutex_unlock(&K.lock);
	return rc;
}

int train_softmax_rows_forward(float *probs, const float *logits, int rows, int cols)
{
	if (rows < 0 || cols < 0 || (rows && cols && (!probs || !logits)))
		return TRAIN_EINVAL;
	if (rows == 0 || cols == 0)
		return TRAIN_OK;
	int rc = enter();
	if (rc)
		return rc;
	void *bufs[3] = { (void *)logits, probs, NULL };
	rc = op_run_locked(OP_SOFTMAX_FWD, 0, 0.0f, rows, cols, bufs);
	pthread_mutex_unlock(&K.lock);
	return rc;
}

int train_softmax_rows_backward(float *dlogits, const float *probs, const float *dprobs,
                                int rows, int cols, int accumulate)
{
	if (rows < 0 || cols < 0 || (rows && cols && (!dlogits || !probs || !dprobs)))
		return TRAIN_EINVAL;
	if (rows == 0 || cols == 0)
		return TRAIN_OK;
	int rc = enter();
	if (rc)
		return rc;
	void *bufs[3] = { (void *)probs, (void *)dprobs, dlogits };
	if (accumulate)
		rc = run_accumulating_locked(OP_SOFTMAX_BWD, 0, rows, cols, bufs, dlogits);
	else
		rc = op_run_locked(OP_SOFTMAX_BWD, 0, 0.0f, rows, cols, bufs);
	pthread_mutex_unlock(&K.lock);
	return rc;
}

/* ---- layer norm -------------------------------------------------------------- */

int train_layernorm_rows_forward(float *out, float *mean, float *rstd, const float *inp,
                                 const float *w, const float *b, int rows, int cols, float eps)
{
	if (rows < 0 || cols < 0 || !(eps >= 0.0f) ||
	    (rows && cols && (!out || !mean || !rstd || !inp || !w)))
		return TRAIN_EINVAL;
	if (rows == 0 || cols == 0)
		return TRAIN_OK;
	int rc = enter();
	if (rc)
		return rc;
	/* oneDNN saves the variance: into rstd, turned into rstd below */
	void *bufs[6] = { (void *)inp, out, mean, rstd, (void *)w, (void *)b };
	rc = op_run_locked(OP_LN_FWD, dnnl_use_scale | (b ? dnnl_use_shift : 0), eps, rows, cols,
	                   bufs);
	pthread_mutex_unlock(&K.lock);
	if (rc == TRAIN_OK)
		for (int n = 0; n < rows; n++)
			rstd[n] = 1.0f / sqrtf(rstd[n] + eps);
	return rc;
}

int train_layernorm_rows_backward(float *dinp, float *dw, float *db, const float *dout,
                                  const float *inp, const float *w, const float *mean,
                                  const float *rstd, int rows, int cols)
{
	if (rows < 0 || cols < 0 || (rows && cols && (!dout || !inp || !w || !mean || !rstd)))
		return TRAIN_EINVAL;
	if (rows == 0 || cols == 0 || (!dinp && !dw && !db))
		return TRAIN_OK;
	int rc = enter();
	if (rc)
		return rc;
	/* scratch: the input gradient (rows, cols), the variance (rows), the
	 * parameter gradients (2 cols); all written by the primitive, then added */
	size_t n = (size_t)rows * (size_t)cols;
	if (grow((void **)&K.tmp, &K.tmpcap, (n + (size_t)rows + 2 * (size_t)cols) * sizeof(float))) {
		pthread_mutex_unlock(&K.lock);
		return TRAIN_ENOMEM;
	}
	float *dsrc = K.tmp, *var = dsrc + n, *dscale = var + rows, *dshift = dscale + cols;
	/* The primitive takes the variance, not rstd: 1/rstd^2 with eps 0 gives
	 * back rstd to about an ulp (forward's eps is inside rstd already). */
	for (int r = 0; r < rows; r++)
		var[r] = 1.0f / (rstd[r] * rstd[r]);
	void *bufs[9] = { (void *)inp, (void *)dout, (void *)mean, var, (void *)w, dsrc, dscale,
		          (void *)w /* the shift: unread */, dshift };
	rc = op_run_locked(OP_LN_BWD, dnnl_use_scale | (db ? dnnl_use_shift : 0), 0.0f, rows, cols,
	                   bufs);
	if (rc == TRAIN_OK && dinp)
		rc = add_locked(dinp, dsrc, n);
	if (rc == TRAIN_OK) {
		for (int c = 0; c < cols && dw; c++)
			dw[c] += dscale[c];
		for (int c = 0; c < cols && db; c++)
			db[c] += dshift[c];
	}
	pthread_mutex_unlock(&K.lock);
	return rc;
}
