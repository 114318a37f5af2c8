/*
 * plugins/common/lora.h - the arithmetic of one LoRA adapter (Hu et al.,
 * 2021) on a linear map, shared by the models that carry adapters (gpt2,
 * bert): forward, backward, PEFT's initialisation of A and the merge into
 * the base weight.  Each model keeps its own table of adapted projections
 * and its own file names; this file knows only one adapter at a time.
 *
 * The adapter adds scale * drop(x) A^T B^T to the projection's output y:
 *   xd = dropout(x, p)            (N, in)   (x itself when p = 0)
 *   u  = xd A^T                   (N, r)    A (r, in), PEFT's lora_A
 *   y += scale u B^T              (N, out)  B (out, r), PEFT's lora_B
 * with scale = alpha / r.  y (and dy in backward) may be a column slice of
 * a wider array (row stride ldy), as BERT's query, key and value are
 * slices of one (N, 3C) output.
 *
 * Errors: those of train_matmul and train_dropout_*.  Threads: as the
 * kernels.
 */
#ifndef PLUGINS_LORA_H
#define PLUGINS_LORA_H

#include <stddef.h>
#include <stdint.h>

#include <train/common.h>
#include <train/tensor.h>

typedef struct lora_shape {
	int in, out, r;           /* the projection (in -> out) and the rank */
	float scale, dropout;     /* alpha / r; p on the input */
} lora_shape;

/*
 * Forward: xd (N, in) and mask (N, in) are written when dropout > 0 (may
 * be NULL otherwise), u (N, r) is written, y (N, out; row stride ldy) is
 * added to.  rng drives the dropout (unused when p = 0).
 */
int lora_forward(const lora_shape *s, int N, const float *x, const float *A, const float *B,
                 float *xd, uint8_t *mask, float *u, float *y, int ldy, train_rng *rng);
/*
 * Backward from dy (N, out; row stride lddy): dB += scale dy^T u, dA +=
 * du^T xd, and (dx not NULL) dx (N, in) += the input's gradient through
 * the dropout.  x, xd, mask, u are those of the forward call; du (N, r)
 * and, with dropout and dx, dxd (N, in) are scratch.
 */
int lora_backward(const lora_shape *s, int N, const float *x, const float *xd, const uint8_t *mask,
                  const float *u, const float *A, const float *B, float *dA, float *dB,
                  const float *dy, int lddy, float *du, float *dxd, float *dx);
/* PEFT's A: kaiming_uniform_(a = sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)). */
void lora_init_a(float *A, int r, int in, train_rng *rng);
/*
 * W += scale B A, element (o, i) of the update at W[o * so + i * si]: a
 * (out, in) nn.Linear weight is so = in, si = 1; GPT-2's (in, out) Conv1D
 * is so = 1, si = out.  Each element is summed in fp32 over the rank in
 * order, then scaled and added once.
 */
void lora_merge_into(float *W, size_t so, size_t si, const float *A, const float *B, int in,
                     int out, int r, float scale);

#endif
