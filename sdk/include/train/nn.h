/*
 * <train/nn.h> - layers as forward/backward pairs over fp32 arrays.
 *
 * In the manner of llm.c: every layer is two plain functions.  Forward
 * writes its outputs (and whatever backward needs, in caller-provided
 * buffers).  Backward ADDS (+=) into the d-prefixed gradients, so one
 * zeroing at the start of a step (or of an accumulation window) is the only
 * clearing; a gradient pointer may be NULL when it is not wanted.
 *
 * Legend (see <train/tensor.h>): B batch, T time, C channels, OC output
 * channels, V vocabulary, NH heads, HS = C / NH, N rows (usually B*T),
 * K kernel width.  Shapes are in the comment beside every argument.
 *
 * Matmul-heavy layers (linear, attention) go through train_matmul_bias(),
 * train_matmul() and train_matmul_batch(), and so through oneDNN (bf16
 * where enabled, see <train/kernels.h>; under bf16, register the weights
 * with train_kernels_weights_register to convert them once per step).
 * GELU, SiLU, softmax and the residual on arrays of at least
 * TRAIN_KERNELS_ELTWISE_MIN elements, layer norm on N*C that large, and
 * attention's softmax always, run as oneDNN eltwise, softmax, add and
 * layer normalization primitives (threaded, vectorised, fp32; their
 * accuracy is stated in <train/kernels.h>: a few 1e-7 for GELU and SiLU,
 * 1.4e-6 relative for softmax, the loops' own for layer norm, exact for
 * the add); smaller arrays and the other layers are plain single-threaded
 * C loops that gcc -O2 vectorises.  Numerics follow PyTorch's definitions,
 * noted at each layer.
 *
 * Memory: every array is caller-owned, row-major and contiguous.  An output
 * or gradient must not overlap any input of the same call (no in-place
 * use); gradients of one call must not overlap each other.  The few layers
 * that need scratch (layer/RMS norm backward, attention backward, conv1d)
 * take it from malloc for the length of the call; the oneDNN-backed
 * backward passes of GELU, SiLU, softmax and layer norm use a scratch
 * array of the kernel context (see train_eltwise_backward).
 *
 * Errors: every function returns TRAIN_OK or
 *   TRAIN_EINVAL  a size <= 0 (element counts n of type size_t may be 0: a
 *                 no-op), C not a multiple of NH, a NULL array that the
 *                 call needs, an index out of range (embedding ids,
 *                 cross-entropy targets >= C), a probability or smoothing
 *                 outside [0, 1], a negative or NaN eps.  Nothing has been
 *                 written when this is returned.
 *   TRAIN_ENOMEM  scratch could not be allocated.
 *   any error of the <train/kernels.h> calls (linear, attention; GELU,
 *   SiLU, softmax, layer norm and the residual at oneDNN sizes), when
 *   outputs may be partly written.
 * Threads: the functions keep no state, so calls on different arrays may
 * run in different threads; the kernels they call follow the threading
 * rules of <train/kernels.h>.
 */
#ifndef TRAIN_NN_H
#define TRAIN_NN_H

#include <train/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- linear: out = inp W^T + b ------------------------------------------- */
/* PyTorch's nn.Linear (weight (OC, C)).  Backward: dinp += dout W,
 * dw += dout^T inp, db += column sums of dout. */
TRAIN_API int train_linear_forward(float *out,       /* (N, OC) */
                                   const float *inp, /* (N, C) */
                                   const float *w,   /* (OC, C) */
                                   const float *b,   /* (OC) or NULL */
                                   int N, int C, int OC);
TRAIN_API int train_linear_backward(float *dinp,       /* (N, C) or NULL */
                                    float *dw,         /* (OC, C) or NULL */
                                    float *db,         /* (OC) or NULL */
                                    const float *dout, /* (N, OC) */
                                    const float *inp,  /* (N, C) */
                                    const float *w,    /* (OC, C) */
                                    int N, int C, int OC);

/* ---- embedding: out[n] = table[ids[n]] ------------------------------------ */
/* An id outside [0, V) is TRAIN_EINVAL (for backward too).  Backward adds each
 * row of dout into its id's row of dtable: repeated ids add up. */
TRAIN_API int train_embedding_forward(float *out,         /* (N, C) */
                                      const int32_t *ids, /* (N), each in [0, V) */
                                      const float *table, /* (V, C) */
                                      int N, int C, int V);
TRAIN_API int train_embedding_backward(float *dtable,      /* (V, C) */
                                       const float *dout,  /* (N, C) */
                                       const int32_t *ids, /* (N) */
                                       int N, int C, int V);

/* ---- layer norm and RMS norm (over the last dimension) --------------------- */
/*
 * Layer norm as PyTorch's nn.LayerNorm: mean and biased variance over C,
 * rstd = 1/sqrt(var + eps) (eps >= 0; PyTorch's default is 1e-5),
 * out = (inp - mean) * rstd * w + b.  w is required; b may be NULL (no bias),
 * and backward then leaves db alone (pass NULL).  mean and rstd from the
 * forward call are what backward reads.
 * RMS norm (PyTorch's nn.RMSNorm, Llama/Mamba): rstd = 1/sqrt(mean(inp^2) +
 * eps), out = inp * rstd * w.
 */
TRAIN_API int train_layernorm_forward(float *out,       /* (N, C) */
                                      float *mean,      /* (N) saved for backward */
                                      float *rstd,      /* (N) saved for backward */
                                      const float *inp, /* (N, C) */
                                      const float *w,   /* (C) */
                                      const float *b,   /* (C) or NULL */
                                      int N, int C, float eps);
TRAIN_API int train_layernorm_backward(float *dinp, float *dw, float *db, /* (N,C) (C) (C) */
                                       const float *dout,                 /* (N, C) */
                                       const float *inp, const float *w,  /* (N, C) (C) */
                                       const float *mean, const float *rstd, /* (N) (N) */
                                       int N, int C);
TRAIN_API int train_rmsnorm_forward(float *out, float *rstd, /* (N, C) (N) */
                                    const float *inp, const float *w, /* (N, C) (C) */
                                    int N, int C, float eps);
TRAIN_API int train_rmsnorm_backward(float *dinp, float *dw, /* (N, C) (C) */
                                     const float *dout, const float *inp, /* (N, C) (N, C) */
                                     const float *w, const float *rstd,   /* (C) (N) */
                                     int N, int C);

/* ---- elementwise activations (n elements) --------------------------------- */
/* GELU is the exact erf form x * Phi(x) (PyTorch's default), not the tanh
 * approximation.  SiLU is x * sigmoid(x).  ReLU's gradient at 0 is 0.
 * Backward: dinp += dout * f'(inp). */
TRAIN_API int train_gelu_forward(float *out, const float *inp, size_t n);
TRAIN_API int train_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);
TRAIN_API int train_silu_forward(float *out, const float *inp, size_t n);
TRAIN_API int train_silu_backward(float *dinp, const float *inp, const float *dout, size_t n);
TRAIN_API int train_relu_forward(float *out, const float *inp, size_t n);
TRAIN_API int train_relu_backward(float *dinp, const float *inp, const float *dout, size_t n);
/* out = a + b; backward adds dout into both. */
TRAIN_API int train_residual_forward(float *out, const float *a, const float *b, size_t n);
TRAIN_API int train_residual_backward(float *da, float *db, const float *dout, size_t n);

/* ---- softmax and cross-entropy (over the last dimension) ------------------ */
/* Softmax with the row maximum subtracted first (never overflows).
 * Backward: dlogits += probs * (dprobs - sum(probs * dprobs)). */
TRAIN_API int train_softmax_forward(float *probs, const float *logits, int N, int C); /* (N,C) */
TRAIN_API int train_softmax_backward(float *dlogits, const float *probs, const float *dprobs,
                                     int N, int C);
/**
 * Cross-entropy with label smoothing `ls` in [0, 1] (0: none) and masking:
 * rows whose target is negative are ignored (PyTorch's ignore_index -100 is
 * one such value); a target >= C is TRAIN_EINVAL.  As PyTorch's
 * F.cross_entropy(label_smoothing=ls): the target distribution is
 * (1 - ls) one_hot + ls / C, so a row's loss is
 *   (1 - ls) * (-log p[target]) + ls * mean over c of (-log p[c]).
 * Writes the softmax to `probs` (N, C) (ignored rows too) and each row's loss
 * to `losses` (N) (0 for ignored rows); *mean_loss is the mean over the rows
 * that count (0 if none, where PyTorch gives NaN).  losses and mean_loss may
 * be NULL.
 */
TRAIN_API int train_cross_entropy_forward(float *mean_loss, float *losses, float *probs,
                                          const float *logits,    /* (N, C) */
                                          const int32_t *targets, /* (N), < 0: ignored */
                                          int N, int C, float ls);
/** dlogits += (probs - smoothed one-hot) * scale / (rows that count):
 * the gradient of scale * mean_loss; ignored rows get nothing.  scale is 1
 * for the mean loss (use 1/k under k-step accumulation). */
TRAIN_API int train_cross_entropy_backward(float *dlogits, const float *probs,
                                           const int32_t *targets, int N, int C, float ls,
                                           float scale);

/* ---- dropout ---------------------------------------------------------------- */
/* Inverted dropout with p in [0, 1]: each element is kept when its uniform
 * draw is >= p, and kept elements are scaled by 1/(1-p); mask (n) gets 1 for
 * kept and 0 for dropped.  The draws: 24 bits of a counter-based hash of the
 * element's index under one 64-bit draw from `rng` (so the work splits over
 * threads and the mask does not depend on their number; libtrain/vec.c).
 * The same rng state gives the same mask.
 * p = 0 copies (mask, if not NULL, all 1; rng unused: both may be NULL);
 * p = 1 drops everything (zeros, as PyTorch).  Backward: dinp += dout *
 * mask / (1-p), with the mask of the forward call (NULL only when p = 0). */
TRAIN_API int train_dropout_forward(float *out, uint8_t *mask, const float *inp, size_t n,
                                    float p, train_rng *rng);
TRAIN_API int train_dropout_backward(float *dinp, const float *dout, const uint8_t *mask,
                                     size_t n, float p);

/* ---- multi-head self-attention ---------------------------------------------- */
/**
 * Scaled dot-product attention over packed projections: qkv holds Q, K, V
 * side by side per position (each (C), head h at [h*HS, (h+1)*HS) within
 * them, as PyTorch's view (B, T, NH, HS)), and out holds the heads side by
 * side the same way.  Scores are q.k / sqrt(HS).  causal: position t sees
 * only <= t.  key_mask (B, T) or NULL: 0 marks padding, which no query
 * attends to (PyTorch's key_padding_mask, inverted).  A query with no
 * visible key (say, every key padded) gets an all-zero att row, a zero
 * output and no gradient, where PyTorch gives NaN.  Queries at padded
 * positions are still computed, as in PyTorch.  att (B, NH, T, T) keeps the
 * softmax for backward (masked entries exactly 0), so backward needs no
 * masks.  The input and output projections are separate linear layers.
 * Each pass is a few batched matmuls over every (sequence, head) and one
 * oneDNN softmax (masked scores set to -inf first), on chunks of up to 4M
 * floats of att (at least one sequence).  Backward needs a chunk's worth
 * of scratch: min(B, max(1, 2^22 / (NH*T*T))) * NH*T*T floats.
 */
TRAIN_API int train_attention_forward(float *out,            /* (B, T, C) */
                                      float *att,            /* (B, NH, T, T) */
                                      const float *qkv,      /* (B, T, 3C) */
                                      const uint8_t *key_mask, /* (B, T) or NULL */
                                      int B, int T, int C, int NH, int causal);
TRAIN_API int train_attention_backward(float *dqkv,           /* (B, T, 3C) */
                                       const float *dout,     /* (B, T, C) */
                                       const float *qkv,      /* (B, T, 3C) */
                                       const float *att,      /* (B, NH, T, T) */
                                       int B, int T, int C, int NH);

/* ---- depthwise causal 1-D convolution (Mamba's short conv) ------------------ */
/* out[b,t,c] = bias[c] + sum_k w[c,k] * inp[b, t-(K-1)+k, c]  (zero before t=0)
 * As PyTorch's nn.Conv1d(C, C, K, groups=C, padding=K-1) on (B, C, T) with
 * the last K-1 outputs dropped; w is its weight (C, 1, K).  bias may be NULL.
 * Scratch: K*C floats (forward), 2*K*C (backward). */
TRAIN_API int train_conv1d_causal_forward(float *out,       /* (B, T, C) */
                                          const float *inp, /* (B, T, C) */
                                          const float *w,   /* (C, K) */
                                          const float *bias,/* (C) or NULL */
                                          int B, int T, int C, int K);
TRAIN_API int train_conv1d_causal_backward(float *dinp, float *dw, float *dbias, /* (B,T,C) (C,K) (C) */
                                           const float *dout, const float *inp, const float *w,
                                           int B, int T, int C, int K);

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_NN_H */
