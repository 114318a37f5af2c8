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
 * conversion is per call, round-to-nearest-even, into scratch buffers the
 * context keeps); elsewhere, and whenever TRAIN_PRECISION_FP32 is asked
 * for, everything is fp32.  A bf16 result differs from the fp32 one by up
 * to about 2^-7 of sum_k |a_ik b_kj| (each operand keeps 8 significant
 * bits); the products themselves are exact and only the sum rounds.
 *
 * Threads: any thread may call train_matmul; calls are serialized by a
 * lock (the stream and scratch buffers are shared), and each uses the
 * configured number of threads inside.  Debian's oneDNN runs on OpenMP:
 * the count is applied to OpenMP in each calling thread, and to OpenBLAS.
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
 * Set the thread count (0: the CPUs this process may run on) and precision.
 * May be called again to change them; a new thread count drops the cached
 * primitives.  Without a call, the first use applies (0, AUTO).
 * Errors: TRAIN_EINVAL (threads < 0, unknown precision), TRAIN_EUNSUPPORTED
 * (oneDNN has no CPU engine).
 */
TRAIN_API int train_kernels_init(int threads, train_precision precision);
/** The precision matmuls use now (AUTO resolved to FP32 or BF16). */
TRAIN_API train_precision train_kernels_precision(void);
/** The thread count matmuls use now (resolved: at least 1). */
TRAIN_API int train_kernels_threads(void);
/** 1 if the CPU has AVX-512 BF16 (or AMX-BF16) instructions and the OS
 * saves their registers (cpuid and xgetbv). */
TRAIN_API int train_cpu_has_bf16(void);

/**
 * C = alpha * op(A) * op(B) + beta * C, all fp32 row-major:
 * op(A) is M x K (A is K x M when transA), op(B) is K x N (B is N x K
 * when transB), C is M x N; lda/ldb/ldc are row strides (at least the
 * stored row length, and at least 1).  As in BLAS: beta == 0 does not read
 * C (NaN in it does not propagate); alpha == 0 or K == 0 does not read A or
 * B; M == 0 or N == 0 does nothing.  C must not overlap A or B.
 * Errors: TRAIN_EINVAL (bad sizes or strides, NULL matrix), TRAIN_ENOMEM,
 * TRAIN_EUNSUPPORTED (oneDNN refused the primitive).
 */
TRAIN_API int train_matmul(int transA, int transB, int M, int N, int K, float alpha,
                           const float *A, int lda, const float *B, int ldb, float beta,
                           float *C, int ldc);

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_KERNELS_H */
