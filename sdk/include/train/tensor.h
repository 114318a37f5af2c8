/*
 * <train/tensor.h> - tensors, arenas, bf16, and the deterministic RNG.
 *
 * A tensor is a view: dtype, up to 4 dimensions, and a pointer to
 * contiguous row-major data that it does not own.  Memory comes from an
 * arena: one allocation (or a few large chunks) from which tensors are
 * carved with a bump pointer, released all at once.  Models keep one arena
 * each for parameters, gradients and optimizer state; a training step
 * takes its activations from a fourth that it resets (train_arena_reset)
 * at the start of every step, so a step allocates nothing.
 *
 * Shape legend used across <train/nn.h>:
 *   B batch, T time (sequence), C channels (model width), V vocabulary,
 *   NH heads, HS head size (C / NH), N = B*T rows, K kernel width.
 *
 * Threads: an arena is not thread-safe; the RNG state is per caller.
 */
#ifndef TRAIN_TENSOR_H
#define TRAIN_TENSOR_H

#include <train/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum train_dtype {
	TRAIN_F32 = 0,
	TRAIN_BF16,
	TRAIN_F16,   /* read from checkpoints, converted on load */
	TRAIN_I64,
	TRAIN_I32,
	TRAIN_U8,
} train_dtype;

/** Bytes per element of a dtype; 0 for a value outside the enum. */
TRAIN_API size_t train_dtype_size(train_dtype dt);
/** Safetensors spelling ("F32", "BF16", "F16", "I64", "I32", "U8"); NULL
 * for a value outside the enum. */
TRAIN_API const char *train_dtype_name(train_dtype dt);

#define TRAIN_MAX_DIMS 4

typedef struct train_tensor {
	train_dtype dtype;
	int ndim;                       /* 0..4; 0 is a scalar */
	int64_t shape[TRAIN_MAX_DIMS];  /* unused dims are 1 */
	void *data;                     /* contiguous, row-major; not owned */
} train_tensor;

/** Elements: the product of the first ndim dims (1 for a scalar). */
TRAIN_API size_t train_tensor_numel(const train_tensor *t);
/** numel * dtype size. */
TRAIN_API size_t train_tensor_nbytes(const train_tensor *t);

/* ---- arenas ---------------------------------------------------------------- */

typedef struct train_arena train_arena;

/**
 * An arena of `capacity` bytes (one allocation, rounded up to a multiple of
 * 64; every block takes a multiple of 64 bytes of it).  capacity 0: grow on
 * demand in chunks of at least 1 MiB, doubling up to 256 MiB, or the size
 * of the block asked for if larger; addresses of earlier blocks never move.
 * `*out` is NULL on failure.  Errors: TRAIN_ENOMEM.
 */
TRAIN_API int train_arena_create(size_t capacity, train_arena **out);
/** Free the arena and everything carved from it (NULL is fine). */
TRAIN_API void train_arena_destroy(train_arena *a);
/**
 * `bytes` bytes, 64-byte aligned, zero-filled, valid until a reset to a
 * mark before it or destroy; NULL when full / out of memory.  0 bytes gives
 * an aligned pointer that must not be dereferenced, and uses nothing.
 */
TRAIN_API void *train_arena_alloc(train_arena *a, size_t bytes);
/**
 * Carve a zeroed tensor of `ndim` (0..4) dims `shape` (each >= 0; unused
 * dims are set to 1).  `*out` is untouched on failure.
 * Errors: TRAIN_EINVAL (bad ndim, dtype or a negative dim), TRAIN_ENOMEM
 * (arena full, or the byte count overflows).
 */
TRAIN_API int train_arena_tensor(train_arena *a, train_dtype dt, int ndim, const int64_t *shape,
                                 train_tensor *out);
/**
 * The current position: bytes handed out so far, counting the 64-byte
 * rounding and, in a growing arena, chunk tails that were skipped because
 * the next block did not fit.  Pass it to train_arena_reset to give back
 * everything allocated after it.
 */
TRAIN_API size_t train_arena_mark(const train_arena *a);
/**
 * Go back to `mark` (a value train_arena_mark returned, no later than the
 * current position).  Memory is kept, not freed: the next allocations reuse
 * the same addresses (zeroed again), so a loop that resets at the start of
 * every step stops allocating once it has run one step.
 */
TRAIN_API void train_arena_reset(train_arena *a, size_t mark);
/** Same as train_arena_mark (for reports). */
TRAIN_API size_t train_arena_used(const train_arena *a);

/* ---- bf16 ------------------------------------------------------------------ */

/** fp32 -> bf16 with round-to-nearest-even; denormals are rounded, not
 * flushed; values that round past the largest bf16 become infinity; NaN
 * stays NaN (sign and upper payload kept, quiet bit set). */
TRAIN_API uint16_t train_f32_to_bf16(float x);
/** bf16 -> fp32, exact. */
TRAIN_API float train_bf16_to_f32(uint16_t x);
/** Array versions, the same results element by element. */
TRAIN_API void train_f32_to_bf16_n(uint16_t *dst, const float *src, size_t n);
TRAIN_API void train_bf16_to_f32_n(float *dst, const uint16_t *src, size_t n);

/* ---- random numbers -------------------------------------------------------- */

/**
 * A counter-free generator (xoshiro256**, seeded through splitmix64): the
 * same seed gives the same stream on every machine.  Normals use
 * Box-Muller in double precision (two 64-bit draws per pair of normals).
 * The state is plain data: copy it to fork a stream.
 */
typedef struct train_rng {
	uint64_t s[4];
} train_rng;

TRAIN_API void train_rng_seed(train_rng *r, uint64_t seed);
TRAIN_API uint64_t train_rng_u64(train_rng *r);
/** Uniform in [0, 1): the top 24 bits of one draw, times 2^-24. */
TRAIN_API float train_rng_uniform(train_rng *r);
/** A standard normal (the second value of the Box-Muller pair is dropped). */
TRAIN_API float train_rng_normal(train_rng *r);
/** x[i] = lo + (hi - lo) * uniform, in order. */
TRAIN_API void train_rng_fill_uniform(train_rng *r, float *x, size_t n, float lo, float hi);
/** x[i] = mean + std * normal, using both values of each pair (so the
 * stream differs from n calls of train_rng_normal). */
TRAIN_API void train_rng_fill_normal(train_rng *r, float *x, size_t n, float mean, float std);
/** A uniform integer in [0, n), without modulo bias (rejection); 0 when
 * n <= 1. */
TRAIN_API uint64_t train_rng_below(train_rng *r, uint64_t n);

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_TENSOR_H */
