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
