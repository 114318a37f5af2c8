/*
 * plugins/gpt2/gpt2.h - a GPT-2 causal language model (Radford et al.,
 * 2019) with explicit forward and backward passes on libtrain's kernels,
 * LoRA adapters (Hu et al., 2021), gradient checkpointing, Hugging Face
 * folders (config.json, model.safetensors, vocab.json, merges.txt), PEFT
 * adapter folders and GPT-2's byte-level BPE tokenizer (issue 10).
 *
 * The model, as Hugging Face's GPT2LMHeadModel (pre-LN blocks):
 *   x   = wte[ids] + wpe[t]
 *   per block:  x = x + c_proj(attn(c_attn(LN1(x))))     causal self-attention
 *               x = x + mlp.c_proj(gelu_new(c_fc(LN2(x))))
 *   logits = LN_f(x) wte^T                                 (lm_head tied to wte)
 * gelu_new is the tanh form 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
 * The projections are GPT-2's Conv1D: weight stored (in, out), y = x W + b.
 * GPT-2's dropouts (embd, attn, resid: 0.1 in HF) are not applied; the
 * only dropout is LoRA's, on the adapter's input.
 *
 * Legend: B batch, T time (padded length), C n_embd, NH n_head, HS = C/NH,
 * V vocabulary, P n_positions, L layers, N = B*T rows, R LoRA rank.
 *
 * Memory: the parameters are one fp32 array (params, n_params floats) in
 * the order of the tensor table; grads (the same layout) exists only when
 * the model was made with grads (full fine-tuning): a LoRA model has
 * gradients for its adapters only (gpt2_lora).  Activations live in a
 * gpt2_acts sized for the largest (B, T) seen.  Gradients accumulate (+=)
 * as in <train/nn.h>; gpt2_zero_grad clears them.
 *
 * Gradient checkpointing (acts made with ckpt = 1): the forward pass keeps
 * only each block's input (the residual stream, (L+1) * N * C floats) and
 * the dropout generator's state per block; backward recomputes one block
 * at a time into a single block's activations, with the same kernels on
 * the same inputs, so the gradients are the same bits as without it.
 *
 * Errors: TRAIN_OK or a negative TRAIN_E* code; readers fill a train_error
 * with `file: what`.  Threads: a model and its acts are used by one thread
 * at a time; the kernels follow <train/kernels.h>.
 */
#ifndef PLUGINS_GPT2_H
#define PLUGINS_GPT2_H

#include <train/common.h>
#include <train/tensor.h>

#include "../common/bpe.h"
#include "../common/hf.h"
#include "../common/strmap.h"

typedef struct gpt2_config {
	int vocab_size;   /* V */
	int n_positions;  /* P */
	int n_embd;       /* C */
	int n_layer;      /* L */
	int n_head;       /* NH, divides C */
	float ln_eps;     /* layer_norm_epsilon, 1e-5 */
} gpt2_config;

/* Positive sizes, heads dividing n_embd, sizes the kernels' ints hold; the
 * message names the first bad config.json key. */
int gpt2_config_check(const gpt2_config *c, train_error *err);

typedef struct gpt2_layer {
	float *ln1_w, *ln1_b;     /* (C) (C) */
	float *attn_w, *attn_b;   /* (C, 3C) (3C)  c_attn: q, k, v columns */
	float *aproj_w, *aproj_b; /* (C, C) (C)    attn.c_proj */
	float *ln2_w, *ln2_b;     /* (C) (C) */
	float *fc_w, *fc_b;       /* (C, 4C) (4C)  mlp.c_fc */
	float *mproj_w, *mproj_b; /* (4C, C) (C)   mlp.c_proj */
} gpt2_layer;

/* One named tensor (Hugging Face name without "transformer."), for I/O. */
typedef hf_param gpt2_tensor;

/* LoRA's four kinds of projection per block. */
enum { GPT2_ATTN = 0, GPT2_APROJ, GPT2_FC, GPT2_MPROJ, GPT2_NKINDS };
/* Parts of the fused c_attn: query, key, value. */
enum { GPT2_Q = 1, GPT2_K = 2, GPT2_V = 4, GPT2_QKV = 7 };

typedef struct gpt2_lora_mod {
	int layer, kind;
	int in, out;              /* the projection's shape (in, out) */
	int r;                    /* the adapter's rank: rank * parts */
	unsigned parts;           /* c_attn only: GPT2_Q|GPT2_K|GPT2_V; else GPT2_QKV */
	size_t a_off, b_off;      /* A (r, in), B (out, r), PEFT's lora_A / lora_B */
} gpt2_lora_mod;

/*
 * The adapters: ΔW = (alpha / rank) (B A)^T added to each adapted weight
 * (in, out).  Selecting parts of c_attn (q and v, say) gives that
 * projection one adapter of rank rank * parts whose B is block-diagonal:
 * part j's rows of B (its C output columns) use only columns
 * [j rank, (j+1) rank); the other entries of B stay zero (their gradient
 * is cleared), so it is PEFT's c_attn adapter of rank r * parts and
 * alpha * parts, the same ΔW, with separate A and B per part.  All three
 * parts (GPT2_QKV) is one ordinary adapter of rank r on the whole c_attn.
 */
typedef struct gpt2_lora {
	int rank;                 /* r per part */
	float alpha, scale;       /* scale = alpha / rank */
	float dropout;            /* on the adapter's input */
	unsigned kinds;           /* bit per GPT2_ATTN.. kind adapted */
	unsigned attn_parts;      /* parts of c_attn adapted */
	gpt2_lora_mod *mods;      /* n_mods, by layer then kind */
	int n_mods;
	int *mod_of;              /* (L * GPT2_NKINDS): module index or -1 */
	float *params, *grads;    /* n floats each: every A then B */
	size_t n;
} gpt2_lora;

typedef struct gpt2_model {
	gpt2_config cfg;
	float *params, *grads;    /* n_params each (grads NULL: frozen base) */
	size_t n_params;
	gpt2_tensor *tensors;     /* n_tensors, in layout order */
	size_t n_tensors;
	float *wte, *wpe;         /* (V, C) (P, C) */
	gpt2_layer *layer;        /* L */
	float *lnf_w, *lnf_b;     /* (C) (C) */
	gpt2_lora *lora;          /* NULL: no adapters */
} gpt2_model;

static inline float *gpt2_grad(const gpt2_model *m, const float *p)
{
	return m->grads ? m->grads + (p - m->params) : NULL;
}

/* A model of that shape, parameters zero; grads too when with_grads. */
int gpt2_model_create(const gpt2_config *cfg, int with_grads, gpt2_model **out);
void gpt2_model_destroy(gpt2_model *m);
/* GPT-2's initialisation: normal(0, 0.02) matrices and embeddings, the
 * residual projections normal(0, 0.02/sqrt(2L)), zero biases, unit LN. */
void gpt2_model_init(gpt2_model *m, uint64_t seed);
void gpt2_zero_grad(gpt2_model *m);
const gpt2_tensor *gpt2_find_tensor(const gpt2_model *m, const char *name);

/*
 * Add adapters of rank `rank` (per part) to every block's projections of
 * the kinds in `kinds` (bits 1 << GPT2_ATTN ...), c_attn limited to
 * `attn_parts`.  A is kaiming-uniform as PEFT (bound 1/sqrt(in)), B zero.
 * Errors: TRAIN_EINVAL (rank < 1, no kind, bad parts), TRAIN_ENOMEM.
 */
int gpt2_lora_add(gpt2_model *m, unsigned kinds, unsigned attn_parts, int rank, float alpha,
                  float dropout, uint64_t seed);
void gpt2_lora_zero_grad(gpt2_model *m);
/* Remove the adapters (if any) without merging them. */
void gpt2_lora_drop(gpt2_model *m);
/* Clear the gradient entries of B outside its blocks (call after backward). */
void gpt2_lora_mask_grads(gpt2_model *m);
/* Fold the adapters into the weights (W += scale (B A)^T, fp32, summed in
 * order over the rank) and drop them. */
int gpt2_lora_merge(gpt2_model *m);

/* Activations of one forward pass, kept for backward. */
typedef struct gpt2_lora_acts {
	float *xd;                /* (N, in) the adapter's input after dropout (NULL: p = 0) */
	uint8_t *mask;            /* (N, in) */
	float *u;                 /* (N, r) xd A^T */
} gpt2_lora_acts;

typedef struct gpt2_block_acts {
	float *ln1, *mean1, *rstd1;   /* (N, C) (N) (N) */
	float *qkv;                   /* (N, 3C) */
	float *att;                   /* (B, NH, T, T) */
	float *ctx;                   /* (N, C) the heads before c_proj */
	float *x1;                    /* (N, C) residual after attention */
	float *ln2, *mean2, *rstd2;   /* (N, C) (N) (N) */
	float *fc, *gl;               /* (N, 4C) (N, 4C) c_fc and gelu_new */
	gpt2_lora_acts lo[GPT2_NKINDS];
} gpt2_block_acts;

typedef struct gpt2_acts {
	int B, T, ckpt;
	size_t cap_rows, cap_att;
	int nblk;                     /* block acts allocated: L, or 1 with ckpt */
	gpt2_block_acts *blk;
	float *resid;                 /* (L+1, N, C) block inputs; [L] the last output */
	float *lnf, *meanf, *rstdf;   /* (N, C) (N) (N) */
	train_rng *blk_rng;           /* (L) generator state before each block */
	const int32_t *ids;           /* borrowed for backward */
	/* backward scratch */
	float *dres, *dln, *dqkv, *dctx, *dfc, *dgl, *du, *dxd, *dlnf;
	/* the head, chunk by chunk */
	float *logits, *probs;        /* (rows, V) each */
	int32_t *idx;                 /* (rows) the rows of a chunk that count */
	int head_rows;
	size_t bytes;                 /* allocated, for the memory figures */
	const void *lora_key;         /* the adapters the acts were sized for */
} gpt2_acts;

void gpt2_acts_free(gpt2_acts *a);
/* Size a for (B, T) now (gpt2_forward grows it as needed, dropping the old). */
int gpt2_acts_reserve(const gpt2_model *m, gpt2_acts *a, int B, int T, int ckpt);

/*
 * The trunk: ids (N) in [0, V), T <= n_positions; ckpt keeps only block
 * inputs (see above); rng drives LoRA dropout (NULL when p = 0 or no
 * adapters).  The final LN output is a->lnf.
 */
int gpt2_forward(gpt2_model *m, gpt2_acts *a, const int32_t *ids, int B, int T, int ckpt,
                 train_rng *rng);
/*
 * Next-token cross-entropy over the rows whose target is >= 0 (targets
 * (N), < 0 ignored; for causal LM the target of row t is ids[t+1]), the
 * head run in chunks of rows so that no (N, V) array is ever held.  *loss
 * is the mean (0 when no row counts), *count the rows that count.  With
 * backward, d(scale * loss) goes into a->dlnf (written) and wte's
 * gradient (added, when the model has grads).
 */
int gpt2_loss(gpt2_model *m, gpt2_acts *a, const int32_t *targets, float scale, int backward,
              double *loss, int64_t *count);
/* Backward of the trunk from a->dlnf; adds into grads and the adapters' grads. */
int gpt2_backward(gpt2_model *m, gpt2_acts *a);
/* Logits of rows [row0, row0 + rows) of the last forward pass into out (rows, V). */
int gpt2_logits(gpt2_model *m, gpt2_acts *a, int row0, int rows, float *out);

/* gelu_new and its derivative over n elements (dinp = dout f'(inp): written). */
int gpt2_gelu_new_forward(float *out, const float *inp, size_t n);
int gpt2_gelu_new_backward(float *dinp, const float *inp, const float *dout, size_t n);

/* ---- byte-level BPE --------------------------------------------------------- */

/*
 * GPT-2's tokenizer: the byte-level BPE of plugins/common/bpe.h (GPT-2's
 * pattern, bytes_to_unicode, merges by rank); "<|endoftext|>" in the text
 * is the end-of-text token, which the vocabulary must have.
 */
typedef bpe_tok gpt2_bpe;

/* Read vocab.json and merges.txt; errors name file:line and what. */
int gpt2_bpe_load(const char *vocab_path, const char *merges_path, gpt2_bpe *b, train_error *err);
void gpt2_bpe_free(gpt2_bpe *b);
/* Token ids of text[0..len): *n gets the count, at most max written. */
int gpt2_bpe_encode(const gpt2_bpe *b, const char *text, size_t len, int32_t *ids, size_t max,
                    size_t *n);
/* Text of ids (bytes; malloc'd, NUL-terminated; *len bytes). */
int gpt2_bpe_decode(const gpt2_bpe *b, const int32_t *ids, size_t n, char **out, size_t *len);

/* ---- Hugging Face and PEFT folders -------------------------------------------- */

/*
 * Load a folder with config.json (model_type gpt2, activation_function
 * gelu_new; n_layer, n_head, n_embd, n_positions, vocab_size,
 * layer_norm_epsilon), model.safetensors (GPT-2 names, with or without
 * "transformer."; F32, F16 or BF16; lm_head.weight, if present, must equal
 * wte) and, when bpe is not NULL, vocab.json + merges.txt.  Nothing is
 * downloaded: a missing folder or file is an error naming it.
 */
int gpt2_hf_load(const char *dir, int with_grads, gpt2_model **out, gpt2_bpe *bpe,
                 train_error *err);
/* Write config.json, model.safetensors (and vocab.json, merges.txt when
 * bpe is not NULL) into dir (made if missing), each by temp name + rename. */
int gpt2_hf_save(const gpt2_model *m, const gpt2_bpe *bpe, const char *dir, train_error *err);
/* PEFT's adapter folder: adapter_config.json + adapter_model.safetensors
 * (base_model.model.transformer.h.N.attn.c_attn.lora_A.weight ...). */
int gpt2_adapter_save(const gpt2_model *m, const char *base_name, const char *dir,
                      train_error *err);
/* Load an adapter folder onto m (which must have none): its modules,
 * rank, alpha and weights; dropout from adapter_config.json. */
int gpt2_adapter_load(gpt2_model *m, const char *dir, train_error *err);

#endif
