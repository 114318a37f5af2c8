/*
 * libtrain/vec.h - libtrain's own vectorised loops: fp32 -> bf16
 * conversion and the GELU/SiLU activations, run on libgomp's threads (the
 * team oneDNN uses).  Internal: kernels.c calls them with its lock held
 * and its thread count.
 */
#ifndef TRAIN_VEC_H
#define TRAIN_VEC_H

#include <stddef.h>
#include <stdint.h>

/* Resolve libgomp's entry points (dlsym; libdnnl has loaded libgomp).
 * Without them every loop runs on the calling thread. */
void vec_init(void);

/* The CPU runs the AVX-512 loops (AVX-512 F and the OS saves its
 * registers); vec_bf16_native: it also has AVX-512 BF16. */
int vec_avx512(void);
int vec_bf16_native(void);

/*
 * dst = src rounded to bf16 (to nearest, ties to even; NaN stays NaN) for
 * nb0 x nb1 matrices of rows x cols floats: element (b0, b1, i, j) of src
 * at b0*bs0 + b1*bs1 + i*ld + j, written densely (matrix after matrix, row
 * after row) to dst.  On threads (at most `threads`).  AVX-512 BF16's
 * conversion where the CPU has it (which, as oneDNN's reorders that use
 * it, treats fp32 subnormals as zero), else a bitwise loop.
 */
void vec_to_bf16(uint16_t *dst, const float *src, int nb0, int nb1, int64_t bs0, int64_t bs1,
                 int rows, int cols, int64_t ld, int threads);
/* The same for n contiguous floats. */
void vec_to_bf16_n(uint16_t *dst, const float *src, size_t n, int threads);

/* The activations of <train/kernels.h>'s train_eltwise_alg, AVX-512 only
 * (vec_avx512()): alg 1 GELU (erf), 2 SiLU, 3 GELU (tanh).  Forward: out =
 * f(inp); backward: dinp (+)= dout * f'(inp), added when accumulate. */
void vec_act_forward(int alg, float *out, const float *inp, size_t n, int threads);
void vec_act_backward(int alg, float *dinp, const float *inp, const float *dout, size_t n,
                      int accumulate, int threads);

/* Inverted dropout: mask[i] = (h(i) >> 8) >= thr (h: a hash of i and
 * `key`, see vec.c), out[i] = mask[i] ? inp[i] * scale : 0.  The same key
 * gives the same mask whatever the thread count.  In place (out == inp)
 * allowed. */
void vec_dropout(float *out, uint8_t *mask, const float *inp, size_t n, uint32_t thr,
                 float scale, uint64_t key, int threads);

#endif
