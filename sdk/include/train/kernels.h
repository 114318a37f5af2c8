/*
 * <train/kernels.h> - the process-wide compute context and the matmul.
 *
 * One oneDNN CPU engine and stream per process, created by
 * train_kernels_init() (or on first use with the defaults) and kept until
 * exit: the one piece of global mutable state in libtrain.  Matmul
 * primitives are built once per (shape, transposes, precision) and reused
 * from a small cache.  OpenBLAS serves what oneDNN does not cover.
 *
 * Precision: where the CPU has AVX-512 BF16 (or AMX), matmuls take their
 * operands in bf16 and accumulate in fp32 (weights stay fp32: the
 * conversion is per call); elsewhere, and whenever TRAIN_PRECISION_FP32 is
 * asked for, everything is fp32.
 *
 * Threads: train_matmul may be called from one thread at a time per
 * process (the stream is shared); it uses `threads` threads inside.
 */
#ifndef TRAIN_KERNELS_H
#define TRAIN_KERNELS_H

#include <train/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum train_precision {
	TRAIN_PRECISION_AUTO = 0, /* bf16 where the CPU has it, else fp32 */
	TRAIN_PRECISION_FP32,
	TRAIN_PRECISION_BF16,     /* bf16 even without native support (emulated: slow) */
} train_precision;

/**
 * Set the thread count (0: the cores) and precision.  May be called again
 * to change them.  Errors: TRAIN_EUNSUPPORTED (oneDNN has no CPU engine).
 */
TRAIN_API int train_kernels_init(int threads, train_precision precision);
/** The precision matmuls use now (AUTO resolved to FP32 or BF16). */
TRAIN_API train_precision train_kernels_precision(void);
TRAIN_API int train_kernels_threads(void);
/** 1 if the CPU has AVX-512 BF16 (or AMX-BF16) instructions. */
TRAIN_API int train_cpu_has_bf16(void);

/**
 * C = alpha * op(A) * op(B) + beta * C, all fp32 row-major:
 * op(A) is M x K (A is K x M when transA), op(B) is K x N (B is N x K
 * when transB), C is M x N; lda/ldb/ldc are row strides.
 * Errors: TRAIN_EINVAL (bad sizes), TRAIN_ENOMEM, TRAIN_EUNSUPPORTED.
 */
TRAIN_API int train_matmul(int transA, int transB, int M, int N, int K, float alpha,
                           const float *A, int lda, const float *B, int ldb, float beta,
                           float *C, int ldc);

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_KERNELS_H */
