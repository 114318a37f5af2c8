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
 * Matmul-heavy layers (linear, attention) go through train_matmul() and
 * so through oneDNN (bf16 where enabled); the rest are plain C loops that
 * the compiler vectorises.  Every function returns TRAIN_OK or a TRAIN_E*
 * code (bad sizes, TRAIN_ENOMEM for scratch).
 */
#ifndef TRAIN_NN_H
#define TRAIN_NN_H

#include <train/tensor.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- linear: out = inp W^T + b ------------------------------------------- */
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
TRAIN_API int train_embedding_forward(float *out,         /* (N, C) */
                                      const int32_t *ids, /* (N), each in [0, V) */
                                      const float *table, /* (V, C) */
                                      int N, int C, int V);
TRAIN_API int train_embedding_backward(float *dtable,      /* (V, C) */
                                       const float *dout,  /* (N, C) */
                                       const int32_t *ids, /* (N) */
                                       int N, int C, int V);

/* ---- layer norm and RMS norm (over the last dimension) --------------------- */
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
/* GELU is the exact erf form (PyTorch's default), not the tanh approximation. */
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
TRAIN_API int train_softmax_forward(float *probs, const float *logits, int N, int C); /* (N,C) */
TRAIN_API int train_softmax_backward(float *dlogits, const float *probs, const float *dprobs,
                                     int N, int C);
/**
 * Cross-entropy with label smoothing `ls` (0: none) and masking: rows whose
 * target is negative are ignored.  Writes the softmax to `probs` (N, C) and
 * each row's loss to `losses` (N) (0 for ignored rows); *mean_loss is the
 * mean over the rows that count (0 if none).
 */
TRAIN_API int train_cross_entropy_forward(float *mean_loss, float *losses, float *probs,
                                          const float *logits,    /* (N, C) */
                                          const int32_t *targets, /* (N), < 0: ignored */
                                          int N, int C, float ls);
/** dlogits += (probs - smoothed one-hot) * scale / (rows that count);
 * scale is 1 for the mean loss (use 1/k under k-step accumulation). */
TRAIN_API int train_cross_entropy_backward(float *dlogits, const float *probs,
                                           const int32_t *targets, int N, int C, float ls,
                                           float scale);

/* ---- dropout ---------------------------------------------------------------- */
/* Inverted dropout: kept elements are scaled by 1/(1-p); mask is 0/1. p = 0 copies. */
TRAIN_API int train_dropout_forward(float *out, uint8_t *mask, const float *inp, size_t n,
                                    float p, train_rng *rng);
TRAIN_API int train_dropout_backward(float *dinp, const float *dout, const uint8_t *mask,
                                     size_t n, float p);

/* ---- multi-head self-attention ---------------------------------------------- */
/**
 * Scaled dot-product attention over packed projections: qkv holds Q, K, V
 * side by side per position.  causal: position t sees only <= t.
 * key_mask (B, T) or NULL: 0 marks padding, which no query attends to (a
 * row with no visible key gives zeros).  att (B, NH, T, T) keeps the
 * softmax for backward.  The input and output projections are separate
 * linear layers.
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
/* out[b,t,c] = bias[c] + sum_k w[c,k] * inp[b, t-(K-1)+k, c]  (zero before t=0) */
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
