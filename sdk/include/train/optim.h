/*
 * <train/optim.h> - optimizers, gradient clipping, learning-rate schedules,
 * and training checkpoints.
 *
 * Parameters, gradients and optimizer state are flat fp32 arrays (one
 * arena each, see <train/tensor.h>), so each optimizer is one loop over n
 * elements.  Gradient accumulation over k micro-batches: zero the gradients,
 * run k backward passes with the loss scaled by 1/k, then one step.
 */
#ifndef TRAIN_OPTIM_H
#define TRAIN_OPTIM_H

#include <train/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * One SGD step with PyTorch's semantics (torch.optim.SGD, dampening 0, not
 * Nesterov):  d = g + weight_decay*p;  buf = momentum*buf + d;  p -= lr*buf
 * (without momentum, p -= lr*d).  mom (n) starts at zero, which makes the
 * first step's buf equal d as in PyTorch; it may be NULL when momentum is 0.
 * Grads are not modified.
 */
TRAIN_API void train_sgd_step(float *params, const float *grads, float *mom, size_t n, float lr,
                              float momentum, float weight_decay);

typedef struct train_adamw_cfg {
	float beta1, beta2, eps, weight_decay;
} train_adamw_cfg;
/** beta1 0.9, beta2 0.999, eps 1e-8, weight_decay 0.01 (PyTorch's AdamW defaults). */
TRAIN_API train_adamw_cfg train_adamw_defaults(void);
/**
 * One AdamW step, as torch.optim.AdamW computes it (Loshchilov & Hutter:
 * decoupled decay), element by element in fp32:
 *
 *     p *= 1 - lr*wd
 *     m  = b1*m + (1-b1)*g
 *     v  = b2*v + (1-b2)*g*g
 *     p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
 *
 * The bias corrections are computed in double.  `step` (t) counts from 1
 * (a smaller value is taken as 1); m and v (n) start at zero.  params,
 * grads, m, v: n floats each; grads is not modified.  Threads: one thread;
 * at d=256 a whole transformer block's 790k parameters take about 0.4 ms.
 * On x86-64 with AVX-512 the loop runs 16 lanes at a time with the same
 * operations in the same order, so both paths give the same bits.
 */
TRAIN_API void train_adamw_step(const train_adamw_cfg *cfg, float *params, const float *grads,
                                float *m, float *v, size_t n, float lr, int64_t step);

/**
 * The global L2 norm of grads (n), accumulated in double in a fixed order
 * (the same bits on every run).  If max_norm > 0, the gradient is then
 * scaled as torch.nn.utils.clip_grad_norm_ does: by
 * max_norm / (norm + 1e-6) when that is below 1.  A non-finite norm is
 * returned as is and the gradient left alone, so that the caller can skip
 * the step.  Returns the norm before clipping.
 */
TRAIN_API float train_clip_grad_norm(float *grads, size_t n, float max_norm);

typedef enum train_schedule {
	TRAIN_SCHED_CONSTANT = 0, /* linear warm-up to base, then base */
	TRAIN_SCHED_LINEAR,  /* linear warm-up to base, then linear decay to min at total */
	TRAIN_SCHED_COSINE,  /* linear warm-up, then cosine decay to min at total */
} train_schedule;
/**
 * The learning rate at `step` (0-based) of a run of `total` steps.
 * Warm-up (all schedules, when warmup > 0) rises linearly from 0:
 * base*step/warmup for step < warmup, so step 0 gets 0 and step `warmup`
 * gets base (as Hugging Face's get_*_schedule_with_warmup).  After it,
 * with span = total - warmup and f = (step - warmup)/span:
 * LINEAR gives min + (base-min)*(1-f), COSINE min + (base-min)*(1+cos(pi f))/2;
 * from `total` on (and when span <= 0) both give min.  Computed in double.
 */
TRAIN_API float train_lr_at(train_schedule s, float base_lr, float min_lr, int64_t step,
                            int64_t warmup, int64_t total);

/* ---- safetensors ------------------------------------------------------------ */

/*
 * Safetensors files (https://github.com/huggingface/safetensors), so that
 * weights open in Python too: an 8-byte little-endian header length N, N
 * bytes of JSON ({name: {"dtype", "shape", "data_offsets"}} plus an
 * optional "__metadata__" of string pairs), then the data area, which the
 * tensors tile exactly.  Only the dtypes of train_dtype and at most
 * TRAIN_MAX_DIMS dimensions are supported.
 */

/** A named tensor, for writing. */
typedef struct train_named_tensor {
	const char *name;
	train_tensor t;
} train_named_tensor;

/**
 * Write a safetensors file of `n` tensors (8-byte little-endian header
 * length, JSON header of dtype/shape/data_offsets per tensor plus optional
 * "__metadata__" of string pairs, then the data), to a temporary name then
 * renamed: the file under `path` is always either the old one or the whole
 * new one.  The same input gives the same bytes: keys in a fixed order, the
 * header padded with spaces to a multiple of 8, and the data laid out by
 * element size (8, 4, 2, 1 bytes; the given order within a size) so that
 * every tensor is aligned in the file.  The whole file is built in memory
 * first (about the tensors' size again).
 * @param[in] tensors  names: non-empty, distinct, UTF-8, not "__metadata__";
 *                     data may be NULL only for tensors without elements
 * @param[in] meta     NULL or a NULL-terminated list of key, value, key,
 *                     value... UTF-8 strings, keys distinct
 * Errors: TRAIN_EINVAL (bad names, shapes or metadata; nothing is written),
 * TRAIN_ENOMEM, TRAIN_EIO or -errno (the file could not be written).
 */
TRAIN_API int train_safetensors_write(const char *path, const train_named_tensor *tensors,
                                      size_t n, const char *const *meta, train_error *err);

typedef struct train_safetensors train_safetensors;
/**
 * Open and check a safetensors file (mapped read-only).  Every bound is
 * checked: header length within the file and at most 100 MB, valid UTF-8
 * JSON object without duplicate keys, each entry with exactly dtype, shape
 * and data_offsets, known dtypes, shapes of non-negative integers whose
 * byte count (overflow-checked) equals the offsets' span, offsets in range,
 * entries that neither overlap nor leave bytes of the data area uncovered,
 * string-only "__metadata__".  Tensors whose bytes are not aligned to their
 * element size in memory (possible only in files from other writers) are
 * copied into buffers the handle owns.  `*out` is NULL on failure.
 * Threads: an open handle is read-only; any number of threads may use it.
 * Errors: -errno (cannot open), TRAIN_EIO (not a regular file, cannot
 * map), TRAIN_ECORRUPT with file and reason, TRAIN_EUNSUPPORTED (a valid
 * file with a dtype such as F64, or more than 4 dimensions), TRAIN_ENOMEM.
 */
TRAIN_API int train_safetensors_open(const char *path, train_safetensors **out, train_error *err);
/** Unmap and free (NULL is fine); views from train_safetensors_get die with it. */
TRAIN_API void train_safetensors_close(train_safetensors *f);
TRAIN_API size_t train_safetensors_count(const train_safetensors *f);
/** The i-th tensor's name, in data order (by offset); NULL past the end. */
TRAIN_API const char *train_safetensors_name_at(const train_safetensors *f, size_t i);
/** A view of tensor `name` (data points into the map; valid until close;
 * never write through it).  Errors: TRAIN_ENOTFOUND. */
TRAIN_API int train_safetensors_get(const train_safetensors *f, const char *name,
                                    train_tensor *out);
/** A "__metadata__" value, or NULL. */
TRAIN_API const char *train_safetensors_meta(const train_safetensors *f, const char *key);

/* ---- training checkpoints ---------------------------------------------------- */

/**
 * Save what a run needs to continue bit for bit: the parameters, the
 * optimizer state, the step and the RNG state, as one safetensors file
 * (so it opens in Python too), written through train_safetensors_write
 * (temporary name, then rename: a crash leaves the old checkpoint whole).
 *
 * Tensors are stored under "param.<name>", "adam_m.<name>" and
 * "adam_v.<name>"; metadata holds "format" = "libtrain.checkpoint",
 * "version" = "1", "step" (decimal) and "rng" (the four xoshiro words as
 * 64 lower-case hex digits, s[0] first).
 *
 * @param[in] path    the file to write
 * @param[in] params  n named tensors (any dtype); names must be unique
 * @param[in] m, v    NULL, or n tensors each, with the shape and dtype of
 *                    params[i] (AdamW's moments; for SGD with momentum, pass
 *                    the momentum buffers as m and NULL as v)
 * @param[in] step    the number of optimizer steps taken so far
 * @param[in] rng     NULL, or the generator that drives data order, dropout...
 * @param[in] meta    NULL, or a NULL-terminated key, value, ... list of
 *                    extra string pairs; the four keys above are reserved
 * @return TRAIN_OK; TRAIN_EINVAL (NULL path or params with n > 0, a shape
 *         mismatch between params[i] and m[i]/v[i], a reserved meta key),
 *         TRAIN_ENOMEM, or the errors of train_safetensors_write.
 */
TRAIN_API int train_checkpoint_save(const char *path, const train_named_tensor *params,
                                    const train_tensor *m, const train_tensor *v, size_t n,
                                    int64_t step, const train_rng *rng,
                                    const char *const *meta, train_error *err);

/**
 * Restore a checkpoint written by train_checkpoint_save into the caller's
 * tensors: params[i].t.data (and m[i].data, v[i].data when m, v are not
 * NULL) receive the stored bytes.  Everything is checked before anything is
 * written, so a failed load leaves the destinations untouched.
 *
 * @param[in]  params  n named tensors: names, dtypes and shapes to expect;
 *                     the file must hold exactly these parameters
 * @param[in]  m, v    NULL (not restored), or n destination tensors
 * @param[out] step    NULL, or the stored step
 * @param[out] rng     NULL, or the stored generator state
 * @param[out] file    NULL, or receives the open file (close it with
 *                     train_safetensors_close) to read extra metadata with
 *                     train_safetensors_meta; NULL on failure
 * @return TRAIN_OK; TRAIN_EINVAL (bad arguments); TRAIN_ECORRUPT (not a
 *         libtrain checkpoint, a bad "step" or "rng"); TRAIN_EUNSUPPORTED
 *         (a newer checkpoint version); TRAIN_ENOTFOUND (a tensor or key is
 *         missing); TRAIN_EMISMATCH (a dtype or shape differs, or the file
 *         holds parameters not asked for); or the errors of
 *         train_safetensors_open.
 */
TRAIN_API int train_checkpoint_load(const char *path, const train_named_tensor *params,
                                    const train_tensor *m, const train_tensor *v, size_t n,
                                    int64_t *step, train_rng *rng, train_safetensors **file,
                                    train_error *err);

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_OPTIM_H */

