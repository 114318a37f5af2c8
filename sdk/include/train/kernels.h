/*
 * <train/kernels.h> - the process-wide compute context, the matmuls and the
 * threaded elementwise and softmax kernels.
 *
 * One oneDNN CPU engine and stream per process, created by
 * train_kernels_init() (or on first use with the defaults) and kept until
 * exit: the one piece of global mutable state in libtrain.  Primitives
 * (matmul, eltwise, softmax, the in-place add) are built once per (shape,
 * transposes, precision) and reused from small caches.  OpenBLAS serves
 * what oneDNN does not cover.
 *
 * Precision: where the CPU has AVX-512 BF16 (or AMX), matmuls take their
 * operands in bf16 and accumulate in fp32 (weights stay fp32: the
 * conversion is per call, round-to-nearest-even, into scratch buffers the
 * context keeps, or once per optimizer step for registered weights, see
 * train_kernels_weights_register); elsewhere, and whenever TRAIN_PRECISION_FP32 is asked
 * for, everything is fp32.  A bf16 result differs from the fp32 one by up
 * to about 2^-7 of sum_k |a_ik b_kj| (each operand keeps 8 significant
 * bits); the products themselves are exact and only the sum rounds.  The
 * eltwise and softmax kernels are fp32 whatever the precision.
 *
 * Threads: any thread may call these functions; calls are serialized by a
 * lock (the stream and scratch buffers are shared), and each uses the
 * configured number of threads inside.  Debian's oneDNN runs on OpenMP:
 * the count is applied to OpenMP in each calling thread, and to OpenBLAS.
 * Every call is one or a few primitive executions (one OpenMP parallel
 * region each), so batching work into few calls (train_matmul_batch) is
 * what keeps the threads busy rather than waiting.
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

/**
 * C = op(A) * op(B) + bias: train_matmul with alpha 1 and beta 0, with
 * bias (N floats, or NULL for none) added to every row of C by the
 * product's own epilogue rather than by a second pass over C.  The same
 * values as the product followed by the addition (the fp32 sum, then one
 * rounding of + bias).  K == 0 gives rows of bias.  Errors: those of
 * train_matmul.
 */
TRAIN_API int train_matmul_bias(int transA, int transB, int M, int N, int K, const float *A,
                                int lda, const float *B, int ldb, const float *bias, float *C,
                                int ldc);

/**
 * A batch of matmuls over a 2-level grid: for b0 < batch0, b1 < batch1,
 *   C[b0,b1] = alpha * op(A[b0,b1]) * op(B[b0,b1]) + beta * C[b0,b1]
 * where X[b0,b1] is the matrix at X + b0 * sx[0] + b1 * sx[1] (strides in
 * elements, each >= 0) with row stride ldx, and each product is as in
 * train_matmul (same shapes, transposes, beta and alpha rules).  One
 * oneDNN execution serves the whole batch: multi-head attention's
 * per-(sequence, head) products over a packed (B, T, 3C) tensor are
 * batch0 = B, batch1 = NH, sa = { T * 3C, HS }, lda = 3C.  The matrices
 * of C must not overlap each other, nor A or B.  batch0 or batch1 = 0, or
 * M or N = 0, does nothing.
 * Errors: those of train_matmul; TRAIN_EINVAL also for a negative batch or
 * stride and NULL stride arrays.
 */
TRAIN_API int train_matmul_batch(int transA, int transB, int batch0, int batch1, int M, int N,
                                 int K, float alpha, const float *A, int lda, const int64_t sa[2],
                                 const float *B, int ldb, const int64_t sb[2], float beta,
                                 float *C, int ldc, const int64_t sc[2]);

/* ---- bf16 copies of weights ------------------------------------------------ */

/*
 * Under bf16 a matmul converts its fp32 operands to bf16 on every call, and
 * a weight matrix is read by several matmuls per step (forward, and the
 * input gradient in backward), and by every micro-batch of an
 * accumulation window.  Weights change only when the optimizer steps, so
 * one conversion per step is enough.  Register the fp32 array that holds
 * them (the parameter arena's block, say): matmul operands lying wholly
 * inside a registered array then read a bf16 copy of it at the same
 * offsets, which the context keeps (2 bytes per element) and converts in
 * one threaded pass on the first use after each change.
 *
 * The contract: after ANY write to registered memory other than through
 * train_matmul/train_matmul_batch (an optimizer step, loading a
 * checkpoint, initialisation), call train_kernels_weights_changed() before
 * the next matmul, or matmuls keep reading the old values.  (A matmul
 * whose output lies in registered memory marks it changed itself.)
 * Nothing changes under fp32 precision: the copies are made only by bf16
 * matmuls, so registering costs nothing but the allocation there.  The
 * results are the same as without registering (the same rounding of the
 * same values).
 *
 * Lifecycle: register once, call changed() after every update, and
 * unregister before freeing the memory.  Threads: these calls take the
 * context's lock; the rule above is the caller's to keep across threads.
 */

/* At most this many arrays are registered at once. */
#define TRAIN_KERNELS_WEIGHTS_MAX 8

/**
 * Register the n floats at w (which must stay allocated until
 * unregistered).  Its copy is stale until the first matmul that reads it.
 * Errors: TRAIN_EINVAL (w NULL, n 0, or overlapping an array already
 * registered), TRAIN_ENOMEM (TRAIN_KERNELS_WEIGHTS_MAX arrays registered,
 * or no memory for the copy).
 */
TRAIN_API int train_kernels_weights_register(const float *w, size_t n);
/** The values at w (a registered array; NULL: every one) have changed. */
TRAIN_API void train_kernels_weights_changed(const float *w);
/** Forget the array registered at w and free its copy (unknown w: nothing). */
TRAIN_API void train_kernels_weights_unregister(const float *w);

/* ---- elementwise and softmax kernels -------------------------------------- */

/*
 * oneDNN eltwise and softmax primitives over dense fp32 arrays: threaded
 * over the configured threads and vectorized, where the plain loops of
 * <train/nn.h> run on one thread (and, for erf and exp, element by
 * element).  Layer norm is here too, for the same reason.  Each call builds its primitive on the first use of a size and
 * reuses it after, so they pay for large arrays (nn.h uses them from
 * TRAIN_KERNELS_ELTWISE_MIN elements up); small ones are cheaper in plain C.
 * `out` may be `inp` (in place) in every forward call, and the gradient
 * may be the incoming gradient in backward calls that do not accumulate.
 *
 * GELU (both forms) and SiLU run libtrain's own AVX-512 loops where the
 * CPU has AVX-512 (threaded the same way; libtrain/vec.c), oneDNN's
 * eltwise primitives elsewhere.
 *
 * Accuracy (measured over [-12, 12] against double precision):
 *   GELU (erf form), AVX-512 loops: erfc by Abramowitz and Stegun 7.1.26
 *     (the polynomial oneDNN also uses) and a Cephes-style exp, Phi(x)
 *     formed from erfc directly for x < 0: |out - exact| <= 1.6e-7 *
 *     max(1, |x|), |f'(x) - exact| <= 2.2e-7, and no loss of relative
 *     accuracy in the lower tail.  oneDNN's: the same bounds within 2x
 *     (1.6e-7, 2.9e-7), but where x Phi(x) is tiny (x < -3) it loses
 *     relative accuracy to the cancellation in 1 + erf: up to 2.2e-4
 *     relative where |out| > 1e-3.  (nn.h's erff/expf loops: 1.0e-7 and
 *     1.3e-7, 5e-5 relative in the tail.)
 *   GELU (tanh form), AVX-512: tanh from e^{2u} without cancellation:
 *     1.7e-7 * max(1, |x|), f' 1.9e-7.
 *   SiLU (x sigmoid(x)): 1.6e-7 * max(1, |x|), f' 2.5e-7 (AVX-512; 1 -
 *     sigmoid formed as e^-x sigmoid); oneDNN's swish: 1e-7, 3.9e-7.
 *   softmax: row maximum subtracted, oneDNN's exp: within 1.4e-6 relative
 *     of the exact value per entry, plus 1e-30 absolute (probabilities
 *     near fp32's underflow lose digits, and below ~1e-37 may come out as
 *     0); an input of -inf gives exactly 0 (a row of only -inf gives NaN).
 *   layer norm: two-pass statistics in fp32, as nn.h's loops: out within
 *     2e-6 (1 + |out|) of the exact value, plus the mean's own rounding
 *     (a few ulps of the row's largest |x|, times rstd * |w|: it matters
 *     only for rows whose mean dwarfs their spread); gradients within 2e-6
 *     of each tensor's largest value.
 * Errors: TRAIN_EINVAL (unknown alg, negative sizes, NULL arrays when
 * there is work, a negative or NaN eps), TRAIN_ENOMEM, TRAIN_EUNSUPPORTED
 * (oneDNN refused).
 */

/* Arrays from this many elements go through these kernels in <train/nn.h>. */
#define TRAIN_KERNELS_ELTWISE_MIN 16384

typedef enum train_eltwise_alg {
	TRAIN_ELTWISE_GELU_ERF = 1, /* x Phi(x), PyTorch's GELU(approximate='none') */
	TRAIN_ELTWISE_SILU,         /* x sigmoid(x) */
	TRAIN_ELTWISE_GELU_TANH,    /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))): GPT-2's
	                               gelu_new, PyTorch's GELU(approximate='tanh') (issue 10) */
} train_eltwise_alg;

/** out[i] = a[i] + b[i], n elements (out may be a or b): the residual add. */
TRAIN_API int train_add(float *out, const float *a, const float *b, size_t n);
/** out[i] = f(inp[i]), n elements. */
TRAIN_API int train_eltwise_forward(train_eltwise_alg alg, float *out, const float *inp, size_t n);
/** dinp[i] = dout[i] * f'(inp[i]), or += when `accumulate` (then through a
 * scratch array of n floats the context keeps, and a threaded add). */
TRAIN_API int train_eltwise_backward(train_eltwise_alg alg, float *dinp, const float *inp,
                                     const float *dout, size_t n, int accumulate);
/**
 * Layer norm of each row of inp (rows, cols), as nn.h's
 * train_layernorm_forward (biased variance, rstd = 1/sqrt(var + eps), out =
 * (inp - mean) * rstd * w + b, b may be NULL): oneDNN's layer
 * normalization primitive.  mean and rstd (rows) are written.
 */
TRAIN_API int train_layernorm_rows_forward(float *out, float *mean, float *rstd, const float *inp,
                                           const float *w, const float *b, int rows, int cols,
                                           float eps);
/**
 * Its backward, adding (+=) into dinp (rows, cols), dw and db (cols), each
 * of which may be NULL, from the mean and rstd of the forward call.  The
 * primitive takes the variance: it is given 1/rstd^2 and eps 0, which
 * gives rstd back to about an ulp.  Scratch: rows * (cols + 1) + 2 * cols
 * floats of the context.
 */
TRAIN_API int train_layernorm_rows_backward(float *dinp, float *dw, float *db, const float *dout,
                                            const float *inp, const float *w, const float *mean,
                                            const float *rstd, int rows, int cols);
/** Softmax of each row of logits (rows, cols) into probs (rows, cols). */
TRAIN_API int train_softmax_rows_forward(float *probs, const float *logits, int rows, int cols);
/** dlogits = probs * (dprobs - rowsum(probs * dprobs)), or += when
 * `accumulate` (scratch as above); all (rows, cols). */
TRAIN_API int train_softmax_rows_backward(float *dlogits, const float *probs,
                                          const float *dprobs, int rows, int cols, int accumulate);

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_KERNELS_H */
