/*
 * plugins/bert/bert.h - a BERT encoder (Devlin et al., 2019) with explicit
 * forward and backward passes on libtrain's kernels, its two training heads
 * (masked LM, sequence classification), Hugging Face checkpoint I/O and a
 * WordPiece tokenizer.  Private to the first-party plugins (issue 7); the
 * RAG dense encoder, LoRA and GPT-2 plugins reuse it by compiling
 * plugins/bert/bert.c (and plugins/common/{text,strmap}.c) into themselves:
 *
 *     plugins_x_x_la_SOURCES = ... $(bert_sources) $(rasa_text_sources)
 *
 * The model, as Hugging Face's BertModel with post-LN layers:
 *   x   = LN(wte[ids] + wpe[t] + wtt[types])           embeddings, dropout
 *   per layer:  a = LN1(x + Wo attn(Wqkv x))            self-attention
 *               x = LN2(a + W2 gelu(W1 a))              feed-forward
 *   pooled = tanh(Wp x[:, 0] + bp)                      pooler ([CLS])
 *   classification: logits = Wc pooled + bc
 *   masked LM: logits = LN(gelu(Wt x + bt)) wte^T + b   (decoder tied to wte)
 * GELU is the erf form, layer norm eps `ln_eps` (HF: 1e-12).  Dropout is
 * the hidden dropout (after the embeddings, the attention output projection,
 * the feed-forward output and before the classifier); the attention
 * probabilities are not dropped (HF's attention_probs_dropout_prob is
 * accepted and ignored).
 *
 * Legend: B batch, T time (padded length of the batch), C hidden, NH heads,
 * I intermediate, V vocabulary, P max positions, N = B*T rows.
 *
 * Memory: all parameters live in one fp32 array (`params`, n_params floats)
 * and their gradients in a second array of the same layout (`grads`); the
 * per-tensor pointers of bert_model point into them.  The query, key and
 * value projections of a layer are adjacent (q rows, k rows, v rows), so
 * they form one (3C, C) matrix and one linear call.  Activations live in a
 * bert_acts sized for the largest (B, T) seen, reused across steps.
 *
 * Gradients accumulate (+=) as in <train/nn.h>; bert_zero_grad clears them.
 *
 * LoRA (issue 10; the arithmetic in plugins/common/lora.c): adapters on
 * any of query, key, value, attention.output.dense, intermediate.dense and
 * output.dense of every layer.  bert_freeze_base() then drops the base's
 * gradients: grads covers only the tensors from grad_off on (the
 * classifier, which a LoRA classification run trains as PEFT's
 * modules_to_save), or is NULL; bert_grad() is NULL for a frozen tensor.
 *
 * Gradient checkpointing (bert_acts.ckpt = 1 before bert_forward): the
 * forward pass keeps each layer's output ((L, N, C) floats) and the
 * dropout generator's state per layer, and one layer's activations;
 * backward recomputes each layer from its input with the same kernels on
 * the same inputs and draws, so the gradients are the same bits.
 *
 * Errors: TRAIN_OK or a negative TRAIN_E* code; readers fill a train_error
 * with `file: what`.  Threads: a model and its acts are used by one thread
 * at a time; the kernels follow <train/kernels.h>.
 */
#ifndef PLUGINS_BERT_H
#define PLUGINS_BERT_H

#include <train/common.h>
#include <train/tensor.h>

#include "../common/hf.h"
#include "../common/strmap.h"

typedef struct bert_config {
	int vocab_size;        /* V */
	int hidden;            /* C */
	int layers;            /* L */
	int heads;             /* NH, divides C */
	int intermediate;      /* I */
	int max_position;      /* P */
	int type_vocab;        /* segment types (2) */
	float ln_eps;          /* 1e-12 */
	int num_labels;        /* classifier outputs; 0: no classifier */
	int mlm_head;          /* 1: the masked-LM head exists */
} bert_config;

/* The shapes of the built-in sizes (Turc et al., 2019 for tiny/mini/small):
 * "bert-tiny" 2L/128, "bert-mini" 4L/256, "bert-small" 4L/512, "bert-base"
 * 12L/768; heads C/64, intermediate 4C, 512 positions.  Returns 0 and fills
 * cfg, every other field 0 (the caller sets vocab_size, num_labels, ...),
 * or TRAIN_ENOTFOUND. */
int bert_builtin_config(const char *name, bert_config *cfg);
/* Check a config's values (positive, heads divide hidden); the message names
 * the first bad key. */
int bert_config_check(const bert_config *cfg, train_error *err);

typedef struct bert_layer {
	float *qkv_w, *qkv_b;     /* (3C, C) (3C): query, key, value rows */
	float *ao_w, *ao_b;       /* (C, C) (C) attention output dense */
	float *ln1_w, *ln1_b;     /* (C) (C) */
	float *fc_w, *fc_b;       /* (I, C) (I) intermediate dense */
	float *fo_w, *fo_b;       /* (C, I) (C) output dense */
	float *ln2_w, *ln2_b;     /* (C) (C) */
} bert_layer;

/* One named parameter tensor (Hugging Face name), for I/O. */
typedef hf_param bert_tensor;

/* LoRA's projections per layer (bert_lora_add's kinds are 1 << these). */
enum { BERT_Q = 0, BERT_K, BERT_V, BERT_AO, BERT_FC, BERT_FO, BERT_NKINDS };

typedef struct bert_lora_mod {
	int layer, kind;
	int in, out;              /* the projection: in -> out */
	size_t a_off, b_off;      /* A (r, in), B (out, r): PEFT's lora_A / lora_B */
} bert_lora_mod;

/* The adapters: W += (alpha / rank) B A on each adapted (out, in) weight. */
typedef struct bert_lora {
	int rank;
	float alpha, scale;       /* scale = alpha / rank */
	float dropout;            /* on each adapter's input */
	unsigned kinds;           /* bit per BERT_Q.. kind adapted */
	bert_lora_mod *mods;      /* n_mods, by layer then kind */
	int n_mods;
	int *mod_of;              /* (L * BERT_NKINDS): module index or -1 */
	float *params, *grads;    /* n floats each: A then B of each module */
	size_t n;
} bert_lora;

typedef struct bert_model {
	bert_config cfg;
	float *params, *grads;    /* n_params and n_params - grad_off, 64-byte aligned */
	size_t n_params;
	size_t grad_off;          /* grads[0] is params[grad_off]'s (0 unless frozen) */
	void *grads_block;        /* the allocation grads points into */
	bert_lora *lora;          /* NULL: no adapters */
	bert_tensor *tensors;     /* n_tensors, in layout order */
	size_t n_tensors;
	/* views into params (the same offsets into grads: bert_grad()) */
	float *wte, *wpe, *wtt;   /* (V, C) (P, C) (type_vocab, C) */
	float *emb_ln_w, *emb_ln_b;
	bert_layer *layer;        /* L */
	float *pool_w, *pool_b;   /* (C, C) (C) */
	float *cls_w, *cls_b;     /* (num_labels, C) (num_labels), or NULL */
	float *mlm_w, *mlm_b;     /* (C, C) (C) transform dense, or NULL */
	float *mlm_ln_w, *mlm_ln_b;
	float *mlm_bias;          /* (V) decoder bias */
} bert_model;

/* The gradient array's pointer matching a parameter pointer p. */
static inline float *bert_grad(const bert_model *m, const float *p)
{
	size_t off = (size_t)(p - m->params);
	return m->grads && off >= m->grad_off ? m->grads + (off - m->grad_off) : NULL;
}

/* A model of the given shape with zero parameters and gradients. */
int bert_model_create(const bert_config *cfg, bert_model **out);
void bert_model_destroy(bert_model *m);
/* BERT's initialisation: normal(0, 0.02) matrices and embeddings, zero
 * biases, unit layer-norm weights. */
void bert_model_init(bert_model *m, uint64_t seed);
void bert_zero_grad(bert_model *m);
/* The tensor of that name, or NULL. */
const bert_tensor *bert_find_tensor(const bert_model *m, const char *name);

/*
 * Add adapters of rank `rank` to every layer's projections of the kinds
 * in `kinds` (bits 1 << BERT_Q ...): A kaiming-uniform as PEFT's (bound
 * 1/sqrt(in)) from `seed`, B zero.  Errors: TRAIN_EINVAL (adapters
 * already, rank < 1, no kind, dropout outside [0, 1)), TRAIN_ENOMEM.
 */
int bert_lora_add(bert_model *m, unsigned kinds, int rank, float alpha, float dropout,
                  uint64_t seed);
/* Remove the adapters without merging them. */
void bert_lora_drop(bert_model *m);
/* Fold the adapters into the weights (W += scale B A, fp32 sums over the
 * rank in order) and drop them. */
void bert_lora_merge(bert_model *m);
/* The same fold, keeping the adapters (to save a merged copy and restore). */
void bert_lora_fold(bert_model *m);
/* Frozen base: keep gradients for the classifier only (keep_classifier and
 * the model has one; from classifier.weight to the end of the layout), or
 * none.  Errors: TRAIN_ENOMEM. */
int bert_freeze_base(bert_model *m, int keep_classifier);
/* The parameters the matmuls read as weights, one range of params to
 * register for bf16 copies (train_kernels_weights_register): the layers
 * and the pooler (a classifier after them is small and, under LoRA, the
 * one part that changes); everything with the masked-LM head, whose
 * decoder is the embedding table. */
void bert_matmul_weights(const bert_model *m, const float **w, size_t *n);
/* The floats of the gradient array (n_params - grad_off, 0 without). */
size_t bert_n_grads(const bert_model *m);
/* Parse a lora_target_modules name (query, key, value,
 * attention.output.dense, intermediate.dense, output.dense) into its kind,
 * or -1. */
int bert_lora_kind(const char *name);
extern const char *const bert_lora_kind_path[BERT_NKINDS];

/* Activations of one forward pass, kept for backward. */
typedef struct bert_acts {
	int ckpt;                 /* set by the caller: gradient checkpointing */
	int B, T;                 /* current shape */
	int ck_alloc;             /* the layout allocated: with checkpointing */
	const void *lora_key;     /* the adapters the acts were sized for */
	float *ck_out;            /* (L, N, C) layer outputs (ckpt) */
	train_rng *lrng;          /* (L) generator before each layer (ckpt) */
	float *ldu, *ldxd;        /* (N, r) (N, I) the adapters' backward scratch */
	int capB, capM, nl_;      /* capacities; layers allocated */
	size_t cap_rows, cap_att;
	float *emb, *emb_mean, *emb_rstd;  /* (N, C) (N) (N) embeddings before LN */
	float *emb_ln;            /* (N, C) after the LN */
	float *x0;                /* (N, C) after the embedding LN and dropout */
	uint8_t *emb_mask;        /* (N, C) dropout mask */
	struct bert_layer_acts {
		float *qkv;       /* (N, 3C) */
		float *att;       /* (B, NH, T, T) */
		float *ctx;       /* (N, C) */
		float *ao;        /* (N, C) after dropout */
		float *ao_raw;    /* (N, C) */
		uint8_t *ao_mask;
		float *res1;      /* (N, C) */
		float *a, *mean1, *rstd1; /* (N, C) (N) (N) LN1 */
		float *fc, *gelu; /* (N, I) */
		float *fo_raw, *fo; /* (N, C) */
		uint8_t *fo_mask;
		float *res2;      /* (N, C) */
		float *out, *mean2, *rstd2; /* (N, C) (N) (N) LN2 */
		float *lo_xd[BERT_NKINDS];  /* (N, in) adapter input after dropout */
		uint8_t *lo_mask[BERT_NKINDS];
		float *lo_u[BERT_NKINDS];   /* (N, r) */
	} *l;                     /* L, or 1 with checkpointing */
	int32_t *pos;             /* (N) position ids */
	const int32_t *ids, *types; /* borrowed for backward */
	const uint8_t *key_mask;  /* borrowed for backward (checkpointing) */
	float dropout;
	float lora_p;             /* the adapters' dropout in this pass (0 without rng) */
	/* pooler and classifier */
	float *cls_in, *pooled, *pooled_drop, *logits; /* (B, C) (B, C) (B, C) (B, labels) */
	uint8_t *pool_mask;
	/* masked LM on the selected rows */
	int M;
	int32_t *mlm_rows;        /* (M) row index into N */
	float *mlm_in, *mlm_t, *mlm_g, *mlm_h, *mlm_mean, *mlm_rstd, *mlm_logits;
	/* scratch for backward */
	float *d1, *d2, *d3, *dI, *dI2, *dqkv;
} bert_acts;

void bert_acts_free(bert_acts *a);

/*
 * The encoder.  ids, types (N, types may be NULL: all 0), key_mask (N, 1 for
 * real tokens, NULL: all real); dropout p (0: off; rng then unused).  The
 * last hidden states are a->l[L-1].out (or a->x0 when L is 0): use
 * bert_hidden().  LoRA's dropout (bert_lora.dropout) is applied when rng
 * is given (training) and not without (evaluation).
 */
int bert_forward(bert_model *m, bert_acts *a, const int32_t *ids, const int32_t *types,
                 const uint8_t *key_mask, int B, int T, float dropout, train_rng *rng);
float *bert_hidden(const bert_model *m, const bert_acts *a);
/* Backward of the encoder from dhidden (N, C); adds into m->grads.  dhidden
 * is read, not kept. */
int bert_backward(bert_model *m, bert_acts *a, const float *dhidden);

/* Pooler and classifier: logits (B, num_labels) into a->logits; with
 * dropout before the classifier.  Backward from dlogits adds into grads and
 * into dhidden (N, C) (row 0 of each sequence). */
int bert_cls_forward(bert_model *m, bert_acts *a, train_rng *rng);
int bert_cls_backward(bert_model *m, bert_acts *a, const float *dlogits, float *dhidden);

/* Masked-LM head over the M rows `rows` (indices into N): logits (M, V)
 * into a->mlm_logits.  Backward adds into grads and dhidden (N, C). */
int bert_mlm_forward(bert_model *m, bert_acts *a, const int32_t *rows, int M);
int bert_mlm_backward(bert_model *m, bert_acts *a, const float *dlogits, float *dhidden);

/* ---- WordPiece ------------------------------------------------------------ */

/*
 * BERT's tokenizer: the basic tokenizer (white space split; with lowercase,
 * lower-casing and dropping combining marks U+0300..U+036F after a small
 * Latin-1/Latin Extended-A decomposition; punctuation and CJK ideographs as
 * words of their own; control characters dropped), then greedy
 * longest-match-first WordPiece with "##" continuations, a word of more
 * than 100 characters or with an unknown piece becoming [UNK].
 */
typedef struct bert_vocab {
	char **tok;               /* id -> token */
	size_t n;
	strmap map;               /* token -> id */
	int lowercase;
	int32_t unk, cls, sep, pad, mask;
} bert_vocab;

/* Read vocab.txt (one token per line, line number = id).  Errors name the
 * file and line (empty file, duplicate token, a missing [UNK]/[CLS]/[SEP]/
 * [PAD]/[MASK]). */
int bert_vocab_load(const char *path, int lowercase, bert_vocab *v, train_error *err);
/* Build from tokens (copied). */
int bert_vocab_from(const char *const *tokens, size_t n, int lowercase, bert_vocab *v,
                    train_error *err);
/* vocab.txt bytes (malloc'd) */
int bert_vocab_text(const bert_vocab *v, char **out, size_t *len);
void bert_vocab_free(bert_vocab *v);
/* A vocabulary learned from texts: the five special tokens ([PAD] 0, [UNK],
 * [CLS], [SEP], [MASK]), every character seen as a first character and as a
 * "##" continuation (sorted bytewise), then the most frequent words of two
 * or more characters (ties in byte order) until `size` entries (the
 * characters are always kept, so the vocabulary may be larger).  Not the
 * merge-score trainer of plugins/tokenizers: any word still encodes, as
 * characters where it is not whole in the vocabulary.  Deterministic. */
int bert_vocab_train(const char *const *texts, size_t n_texts, size_t size, int lowercase,
                     bert_vocab *v);
/* Token ids of one text, without [CLS]/[SEP]; at most `max` are written,
 * the count of all is returned through *n. */
int bert_tokenize(const bert_vocab *v, const char *text, size_t len, int32_t *ids, size_t max,
                  size_t *n);

/* ---- Hugging Face checkpoints ------------------------------------------- */

/*
 * Load a folder with config.json, vocab.txt and model.safetensors as
 * written by transformers' BertModel / BertForSequenceClassification /
 * BertForMaskedLM / BertForPreTraining (tensor names with or without the
 * "bert." prefix; "gamma"/"beta" layer-norm names accepted; F32, F16 and
 * BF16 tensors; a checkpoint without a pooler, as BertForMaskedLM saves,
 * gets a fresh one).  num_labels >= 0 asks for a classifier of that size (a
 * checkpoint without one, or with another size, gets a fresh
 * normal(0, 0.02) one from `seed`); -1 takes the checkpoint's.  mlm 1 asks
 * for the masked-LM head (fresh if absent).  Every tensor is checked for
 * presence, dtype and shape; errors are "file: what".
 */
int bert_hf_load(const char *dir, int num_labels, int mlm, uint64_t seed, bert_model **out,
                 bert_vocab *vocab, train_error *err);
/*
 * Write config.json, vocab.txt and model.safetensors into dir (created if
 * missing), each under a temporary name then renamed.  labels: NULL or
 * num_labels names for id2label.
 */
int bert_hf_save(const bert_model *m, const bert_vocab *vocab, const char *const *labels,
                 const char *dir, train_error *err);
/*
 * PEFT's adapter folder: adapter_config.json (r, lora_alpha, lora_dropout,
 * target_modules as a full-match regular expression) and
 * adapter_model.safetensors with PEFT's names,
 * base_model.model.bert.encoder.layer.N.attention.self.query.lora_A.weight
 * ... ("bert." only for a model with a head, as transformers names them),
 * plus base_model.model.classifier.weight/bias (modules_to_save) when the
 * classifier was trained with the adapters.
 */
int bert_adapter_save(const bert_model *m, const char *base_name, const char *dir, train_error *err);
/* Load an adapter folder onto m (which must have none): modules, rank,
 * alpha, dropout and weights, and the classifier if the folder has one. */
int bert_adapter_load(bert_model *m, const char *dir, train_error *err);

#endif
