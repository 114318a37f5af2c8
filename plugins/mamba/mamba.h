/*
 * plugins/mamba/mamba.h - the Mamba language model (Gu & Dao, 2023) of the
 * "mamba" plugin (issue 7): the selective scan (scan.c), the model with its
 * forward and backward passes and the recurrent step for sampling
 * (model.c), LoRA adapters on its projections (mamba_lora.c, issue 10),
 * and the MambaLM component (mamba.c).
 *
 * Legend: B batch, T time, D d_model, Di = 2*D (expand 2), NS d_state (16),
 * R dt_rank = ceil(D/16), K d_conv (4), V vocabulary, Nt = B*T rows.
 *
 * Threads: every function works on its own arrays; the scan splits its
 * work over `threads` POSIX threads by blocks of 16 channels, and the
 * results do not depend on the thread count (each block's sums are made in
 * one order by one thread).
 */
#ifndef MAMBA_H
#define MAMBA_H

#include <train/kernels.h>
#include <train/nn.h>
#include <train/optim.h>
#include <train/tensor.h>

#define MAMBA_NS 16    /* d_state */
#define MAMBA_W 16     /* channels per scan block (one AVX-512 register) */
#define MAMBA_L 16     /* time steps per checkpointed chunk of the scan */
#define MAMBA_K 4      /* d_conv */
#define MAMBA_MAX_LAYERS 256

/* ---- the selective scan -------------------------------------------------- */

/*
 * Per batch row b and channel d, with the state s (NS) starting at 0:
 *   s_t = exp(delta_t A_d) * s_t-1 + delta_t x_t B_t;   y_t = C_t . s_t + Dp_d x_t
 * x, delta, y: (B, T, Di); A (Di, NS) (already -exp(A_log)); Bm, Cm: rows of
 * NS floats at row stride ldbc ((B, T, ldbc)); Dp (Di).  hs (B, nch, Di, NS),
 * nch = ceil(T / MAMBA_L), receives the state at the start of every chunk
 * (NULL: not kept); backward recomputes each chunk's states from it.
 * Di must be a multiple of MAMBA_W.
 */
typedef struct mamba_scan {
	int B, T, Di, ldbc, threads;
	const float *x, *delta, *A, *Bm, *Cm, *Dp;
} mamba_scan;

size_t mamba_scan_hs_floats(int B, int T, int Di);
int mamba_scan_forward(const mamba_scan *s, float *y, float *hs);
/*
 * Gradients, added (+=) into dx, ddelta (B, T, Di), dA (Di, NS), dDp (Di),
 * dBm, dCm (rows of NS at stride ldbc).  dy (B, T, Di); hs from forward.
 * Scratch: (Di/MAMBA_W) * B*T * 2*NS floats, malloc'd for the call.
 */
int mamba_scan_backward(const mamba_scan *s, const float *dy, const float *hs, float *dx,
                        float *ddelta, float *dA, float *dDp, float *dBm, float *dCm);

/* exp in plain arithmetic (so that loops vectorize): Cephes' expf
 * polynomial after reduction by ln 2; relative error below 3e-7; the
 * argument is clamped to [-87, 88]. */
static inline float mamba_fexp(float x)
{
	x = x < -87.0f ? -87.0f : x;
	x = x > 88.0f ? 88.0f : x;
	float t = x * 1.44269504088896341f;
	/* round to nearest with the 1.5*2^23 trick (|t| < 2^22) */
	float k = (t + 12582912.0f) - 12582912.0f;
	float r = x - k * 0.693359375f;
	r = r - k * -2.12194440e-4f;
	float p = 1.9875691500e-4f;
	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	p = p * r * r + r + 1.0f;
	union { int32_t i; float f; } u = { .i = ((int32_t)k + 127) << 23 };
	return p * u.f;
}

/* log(1 + y) for y in [0, 1], in plain arithmetic: Cephes' logf polynomial
 * on the mantissa of 1 + y; absolute error below 1e-7. */
static inline float mamba_flog1p(float y)
{
	float z = 1.0f + y;
	union { float f; int32_t i; } u = { .f = z };
	int32_t e = ((u.i >> 23) & 0xff) - 127;
	u.i = (u.i & 0x007fffff) | 0x3f800000; /* m in [1, 2) */
	float m = u.f, fe = (float)e;
	/* m in [sqrt(1/2), sqrt(2)) */
	int big = m > 1.41421356f;
	m = big ? m * 0.5f : m;
	fe = big ? fe + 1.0f : fe;
	float x = m - 1.0f, x2 = x * x;
	float p = 7.0376836292e-2f;
	p = p * x - 1.1514610310e-1f;
	p = p * x + 1.1676998740e-1f;
	p = p * x - 1.2420140846e-1f;
	p = p * x + 1.4249322787e-1f;
	p = p * x - 1.6668057665e-1f;
	p = p * x + 2.0000714765e-1f;
	p = p * x - 2.4999993993e-1f;
	p = p * x + 3.3333331174e-1f;
	float r = x * x2 * p - 0.5f * x2 + x;
	r = fe * -2.12194440e-4f + r;
	r = r + fe * 0.693359375f;
	/* 1 + y rounds y away when y is tiny: log1p(y) = y there */
	return y < 1e-4f ? y - 0.5f * y * y : r;
}

/* softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|) */
static inline float mamba_softplus(float x)
{
	float ax = x < 0 ? -x : x;
	return (x > 0 ? x : 0.0f) + mamba_flog1p(mamba_fexp(-ax));
}

/* Run fn(arg, i) for i < n on up to `threads` threads (the caller's is one). */
int mamba_parallel(int threads, int n, void (*fn)(void *arg, int i), void *arg);

/* ---- the model --------------------------------------------------------- */

typedef struct mamba_dims {
	int V, D, n_layers, Di, NS, R, K;
} mamba_dims;

/* Views of one layer's tensors in a flat array (params or grads). */
typedef struct mamba_layer_w {
	float *norm;     /* (D) */
	float *in_proj;  /* (2Di, D): x rows, then z rows */
	float *conv_w;   /* (Di, 1, K) */
	float *conv_b;   /* (Di) */
	float *x_proj;   /* (R + 2NS, Di) */
	float *dt_w;     /* (Di, R) */
	float *dt_b;     /* (Di) */
	float *A_log;    /* (Di, NS) */
	float *Dp;       /* (Di) */
	float *out_proj; /* (D, Di) */
} mamba_layer_w;

typedef struct mamba_weights {
	float *emb;      /* (V, D), also the output head */
	mamba_layer_w *layer; /* n_layers */
	float *norm_f;   /* (D) */
} mamba_weights;

/* One named tensor of the flat layout: HF's MambaForCausalLM names. */
typedef struct mamba_tensor_info {
	char name[64];
	int ndim;
	int64_t shape[3];
	size_t offset, numel;
} mamba_tensor_info;

struct mamba_lora;

typedef struct mamba_model {
	mamba_dims d;
	size_t n_params;
	float *params, *grads;      /* n_params each (grads NULL until asked; with
	                               adapters, NULL: the base is frozen) */
	mamba_weights w, g;         /* views */
	mamba_tensor_info *info;    /* n_info */
	size_t n_info;
	int threads;
	/* gradient checkpointing, set by the caller before a forward: each
	 * residual block keeps only its input, and backward recomputes the
	 * block from it (the same kernels on the same inputs: the same
	 * gradients, bit for bit) with one block's activations */
	int ckpt;
	/* activations of the last forward (for backward), sized for B, T; the
	 * layout of ackpt */
	int ab, at, ackpt;
	float *acts;
	size_t acts_floats;
	/* LoRA adapters (mamba_lora.c), NULL: none.  With adapters and no
	 * grads, backward computes the adapters' gradients only */
	struct mamba_lora *lora;
} mamba_model;

/* dims from d_model, layers, vocabulary; EINVAL unless D % 8 == 0 etc. */
int mamba_dims_make(int V, int D, int n_layers, mamba_dims *out);
int mamba_model_create(const mamba_dims *d, int with_grads, mamba_model **out);
void mamba_model_destroy(mamba_model *m);
/* Mamba's initialisation (mamba_ssm / HF) from `rng`. */
void mamba_model_init(mamba_model *m, train_rng *rng);
/*
 * Forward over ids (B, T) -> mean cross-entropy against targets (B, T) in
 * *loss (targets NULL: logits only, in m's activations).  Keeps what
 * backward needs.
 */
int mamba_forward(mamba_model *m, const int32_t *ids, const int32_t *targets, int B, int T,
                  float *loss);
/* Gradients of scale * loss into m->grads (+=), after mamba_forward with targets. */
int mamba_backward(mamba_model *m, const int32_t *ids, const int32_t *targets, int B, int T,
                   float scale);
/* The logits (B*T, V) of the last forward. */
const float *mamba_logits(const mamba_model *m);
/*
 * For heads other than the language model's (issue 9: a reward model's
 * scalar head, a policy's value head): the forward without a loss, with the
 * logits only when want_logits, and the final normed hidden states
 * (B*T, D) it leaves (mamba_hidden).  mamba_backward_from adds into
 * m->grads the gradient that flows back from dlogits (B*T, V) and/or
 * dhidden (B*T, D) (either may be NULL; dlogits may be the buffer
 * mamba_logits() returned, which backward no longer reads), after a
 * forward of the same ids, B and T.
 */
int mamba_forward_hidden(mamba_model *m, const int32_t *ids, int B, int T, int want_logits);
const float *mamba_hidden(const mamba_model *m);
int mamba_backward_from(mamba_model *m, const int32_t *ids, const float *dlogits,
                        const float *dhidden, int B, int T);

/* ---- LoRA adapters (mamba_lora.c) ------------------------------------------ */

/*
 * Adapters (Hu et al., 2021; plugins/common/lora.h) on a block's
 * projections: y += (alpha / r) drop(x) A^T B^T, A (r, in) PEFT's lora_A,
 * B (out, r) lora_B, A kaiming-uniform and B zero as PEFT.  in_proj is one
 * adapter on the whole (2Di, D) matrix (its x rows and z rows), as PEFT
 * wraps the one nn.Linear; dt_proj's input is the first R columns of
 * x_proj's output.  Dropout is on only while `training` is set (the
 * trainer's forwards); the generator's state at each block's forward is
 * kept, so that gradient checkpointing's recomputation draws the same
 * masks (the same gradients, bit for bit).  The recurrent step
 * (mamba_step) ignores adapters: merge them first.
 */
enum { MAMBA_LORA_IN, MAMBA_LORA_X, MAMBA_LORA_DT, MAMBA_LORA_OUT, MAMBA_LORA_NKINDS };

typedef struct mamba_lora_mod {
	int layer, kind, in, out;
	size_t a_off, b_off;          /* into params / grads */
	size_t act_off, mask_off;     /* its activations (layer 0's under checkpointing) */
} mamba_lora_mod;

typedef struct mamba_lora {
	int r;
	float alpha, scale, dropout;  /* scale = alpha / r */
	unsigned kinds;               /* 1 << MAMBA_LORA_* */
	int n_layers, n_mods;
	mamba_lora_mod *mods;         /* by layer, then kind */
	int *mod_of;                  /* (n_layers * NKINDS): index or -1 */
	float *params, *grads;        /* n each: A then B of every module */
	size_t n;
	mamba_tensor_info *info;      /* 2 n_mods: PEFT's names, offsets into params */
	int training;                 /* dropout on (set by the trainer) */
	train_rng rng;                /* dropout */
	train_rng *rng_at;            /* (n_layers) the generator at each block's forward */
	float fwd_p;                  /* the dropout of the last forward */
	/* activations for (ab, at, ackpt): per module u (N, r), and with
	 * dropout xd (N, in) and its mask; dt_proj's contiguous input (N, R);
	 * backward scratch du (N, r), dxd and dx (N, max in) */
	float *acts;
	uint8_t *masks;
	size_t acts_floats, mask_bytes;
	int ab, at, ackpt, ap;
	float *du, *dxd, *dxs;
} mamba_lora;

/* Module names of lora_target_modules: in_proj, x_proj, dt_proj, out_proj. */
extern const char *const mamba_lora_kind_name[MAMBA_LORA_NKINDS];
/* Parse a name (also "mixer.in_proj"): the kind or -1. */
int mamba_lora_kind_parse(const char *name);
/* Add adapters of rank r on the `kinds` of every block (A from seed). */
int mamba_lora_add(mamba_model *m, unsigned kinds, int r, float alpha, float dropout, uint64_t seed);
void mamba_lora_free(mamba_lora *lo);
/* Detach the adapters and fold them into the weights: W += scale B A
 * (lora_merge_into, fp32 summed over the rank in order).  Returns the
 * detached adapters (the caller frees them), NULL if there were none. */
mamba_lora *mamba_lora_merge(mamba_model *m);
/* PEFT's folder: adapter_config.json and adapter_model.safetensors
 * (base_model.model.backbone.layers.N.mixer.KIND.lora_A.weight ...). */
int mamba_lora_save(const mamba_lora *lo, const char *base_name, const char *dir, train_error *err);
/* Read such a folder onto m (which has no adapters): kinds from layer 0's
 * tensors, every tensor's shape checked against m. */
int mamba_lora_load(mamba_model *m, const char *dir, train_error *err);
/* Called by model.c: the adapter of (layer, kind) on x (N, in; row
 * stride ldx) added into y (N, out1; stride ldy) and, in_proj, y2 (N,
 * out - out1; stride ldy); backward adds B's and A's gradients and, into
 * dx (stride lddx), the input's. */
int mamba_lora_acts_get(mamba_model *m, int B, int T);
int mamba_lora_forward(mamba_model *m, int layer, int kind, int N, const float *x, int ldx,
                       float *y, float *y2, int ldy);
int mamba_lora_backward(mamba_model *m, int layer, int kind, int N, const float *x, int ldx,
                        const float *dy, const float *dy2, int lddy, float *dx, int lddx);

/* The recurrent form: state for one sequence, O(1) work per token. */
typedef struct mamba_state {
	float *conv;   /* (n_layers, K-1, Di) last conv inputs */
	float *ssm;    /* (n_layers, Di, NS) */
	float *buf;    /* scratch */
	float *logits; /* (V) after mamba_step */
} mamba_state;
int mamba_state_create(const mamba_model *m, mamba_state *st);
void mamba_state_free(mamba_state *st);
/* Feed one token; st->logits gets the next token's logits. */
int mamba_step(const mamba_model *m, mamba_state *st, int32_t token);

/* ---- models as files and values (mamba_io.c) ------------------------------ */

#include <train/value.h>

#define MAMBA_VALUE_TYPE "application/vnd.train.mamba+safetensors"
/* The end of an answer in examples of the MambaSFT class: U+0003 END OF TEXT. */
#define MAMBA_EOT 3

/*
 * One safetensors file: the model (HF names), `extra` tensors (names other
 * than the model's), metadata with the sizes, `kind` ("lm", "reward", ...)
 * and the vocabulary (code point per id, id 0 = -1).  Written to a
 * temporary name, then renamed.
 */
int mamba_file_write(const char *path, const mamba_model *m, const int32_t *vocab, int nvocab,
                     const train_named_tensor *extra, size_t nextra, const char *kind,
                     train_error *err);
/* Read it back (kind NULL: any); *f (if f is not NULL) stays open for the
 * caller to read the extra tensors from, and is closed by the caller. */
int mamba_file_read(const char *path, int with_grads, const char *kind, mamba_model **m,
                    int32_t **vocab, int *nvocab, train_safetensors **f, train_error *err);
/* The same file as a graph value (MAMBA_VALUE_TYPE), through $TMPDIR. */
int mamba_value_make(const mamba_model *m, const int32_t *vocab, int nvocab,
                     const train_named_tensor *extra, size_t nextra, const char *kind,
                     train_value **out, train_error *err);
int mamba_value_read(const train_value *v, int with_grads, const char *kind, mamba_model **m,
                     int32_t **vocab, int *nvocab, train_safetensors **f, train_error *err);
/* Token id of a code point (0: unknown) by binary search of vocab[1..]. */
int32_t mamba_char_id(const int32_t *vocab, int nvocab, int32_t cp);
/* UTF-8 -> code points (cps holds n); a bad byte becomes U+FFFD. */
size_t mamba_utf8_decode(const char *text, size_t n, int32_t *cps);
/* A code point as UTF-8 at o (room for 4 bytes); the bytes written. */
int mamba_utf8_encode(int32_t cp, char *o);

#endif
