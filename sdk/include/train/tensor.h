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

/** Bytes per element of a dtype. */
TRAIN_API size_t train_dtype_size(train_dtype dt);
/** Safetensors spelling ("F32", "BF16", "F16", "I64", "I32", "U8"). */
TRAIN_API const char *train_dtype_name(train_dtype dt);

#define TRAIN_MAX_DIMS 4

typedef struct train_tensor {
	train_dtype dtype;
	int ndim;                       /* 0..4; 0 is a scalar */
	int64_t shape[TRAIN_MAX_DIMS];  /* unused dims are 1 */
	void *data;                     /* contiguous, row-major; not owned */
} train_tensor;

TRAIN_API size_t train_tensor_numel(const train_tensor *t);
TRAIN_API size_t train_tensor_nbytes(const train_tensor *t);

/* ---- arenas ---------------------------------------------------------------- */

typedef struct train_arena train_arena;

/**
 * An arena of `capacity` bytes (one allocation, 64-byte aligned blocks).
 * capacity 0: grow on demand in chunks of at least 1 MiB (addresses of
 * earlier blocks never move).  Errors: TRAIN_ENOMEM.
 */
TRAIN_API int train_arena_create(size_t capacity, train_arena **out);
TRAIN_API void train_arena_destroy(train_arena *a);
/** `bytes` bytes, 64-byte aligned, zero-filled; NULL when full / out of memory. */
TRAIN_API void *train_arena_alloc(train_arena *a, size_t bytes);
/** Carve a zeroed tensor.  Errors: TRAIN_EINVAL (bad shape), TRAIN_ENOMEM. */
TRAIN_API int train_arena_tensor(train_arena *a, train_dtype dt, int ndim, const int64_t *shape,
                                 train_tensor *out);
/** Bytes handed out so far; pass to train_arena_reset to free what came after. */
TRAIN_API size_t train_arena_mark(const train_arena *a);
TRAIN_API void train_arena_reset(train_arena *a, size_t mark);
TRAIN_API size_t train_arena_used(const train_arena *a);

/* ---- bf16 ------------------------------------------------------------------ */

/** fp32 -> bf16 with round-to-nearest-even (NaN stays NaN). */
TRAIN_API uint16_t train_f32_to_bf16(float x);
TRAIN_API float train_bf16_to_f32(uint16_t x);
TRAIN_API void train_f32_to_bf16_n(uint16_t *dst, const float *src, size_t n);
TRAIN_API void train_bf16_to_f32_n(float *dst, const uint16_t *src, size_t n);

/* ---- random numbers -------------------------------------------------------- */

/**
 * A counter-free generator (xoshiro256**, seeded through splitmix64): the
 * same seed gives the same stream on every machine.  Normals use
 * Box-Muller in double precision.
 */
typedef struct train_rng {
	uint64_t s[4];
} train_rng;

TRAIN_API void train_rng_seed(train_rng *r, uint64_t seed);
TRAIN_API uint64_t train_rng_u64(train_rng *r);
/** Uniform in [0, 1). */
TRAIN_API float train_rng_uniform(train_rng *r);
TRAIN_API float train_rng_normal(train_rng *r);
TRAIN_API void train_rng_fill_uniform(train_rng *r, float *x, size_t n, float lo, float hi);
TRAIN_API void train_rng_fill_normal(train_rng *r, float *x, size_t n, float mean, float std);
/** A uniform integer in [0, n). */
TRAIN_API uint64_t train_rng_below(train_rng *r, uint64_t n);

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_TENSOR_H */
