/*
 * libtrain/kernels_private.h - what tests and benchmarks may look at inside
 * kernels.c (the primitive caches).  Not part of the SDK.
 */
#ifndef TRAIN_KERNELS_PRIVATE_H
#define TRAIN_KERNELS_PRIVATE_H

#include <train/kernels.h>

/* The number of slots of the matmul primitive cache (least recently used
 * entries are evicted beyond it). */
#define TRAIN_MATMUL_CACHE_SLOTS 64

/* The number of slots of the cache of the other primitives (eltwise,
 * softmax, add), least recently used evicted beyond it. */
#define TRAIN_OP_CACHE_SLOTS 32

/* Slots for bf16 mirrors: TRAIN_KERNELS_WEIGHTS_MAX registered weight
 * arrays, the rest for pins. */
#define TRAIN_MIRROR_SLOTS (TRAIN_KERNELS_WEIGHTS_MAX + 8)

/*
 * Pins: within libtrain (nn.c), an fp32 array that several bf16 matmuls of
 * one call read (linear backward's dout) is converted once for all of
 * them.  train_kernels_bf16_pin returns a token (> 0) if the array now has
 * a bf16 mirror, converted on its first use by a matmul (only under bf16
 * precision on a CPU with native bf16), and 0 if not (nothing to undo:
 * the matmuls then convert as usual).  The array must not change until
 * train_kernels_bf16_unpin(token), except through matmuls writing it (they
 * mark the mirror stale).
 */
int train_kernels_bf16_pin(const float *p, size_t n);
void train_kernels_bf16_unpin(int token);
/* Conversions of mirrors (registered arrays and pins) so far. */
size_t train_kernels_mirror_conversions(void);

/* nn.c's dropout forward on the configured threads (libtrain/vec.h's
 * vec_dropout: the mask is a hash of the index under `key`). */
int train_kernels_dropout(float *out, uint8_t *mask, const float *inp, size_t n, uint32_t thr,
                          float scale, uint64_t key);

/* Primitives built since the process started (cache misses of either cache). */
size_t train_kernels_primitives_built(void);
/* Entries in the matmul cache now. */
size_t train_kernels_cache_entries(void);
/* Entries in the other cache now. */
size_t train_kernels_op_cache_entries(void);
/* Destroy every cached primitive. */
void train_kernels_cache_clear(void);
/* The oneDNN implementation name of the last matmul ("brg:avx512_core",
 * "gemm:jit", ...), "emulated" for bf16 done as fp32 on rounded operands,
 * "none" before the first; static storage, valid until the next matmul. */
const char *train_kernels_last_impl(void);

#endif
