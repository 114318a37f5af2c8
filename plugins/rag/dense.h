/*
 * plugins/rag/dense.h - the RAG plugin's dense encoder (issue 8): the BERT
 * encoder of plugins/bert with mean pooling and L2 normalisation, loaded
 * from a Hugging Face sentence-encoder folder (all-MiniLM-L6-v2's layout:
 * config.json, vocab.txt, model.safetensors) or trained here without labels
 * by the inverse cloze task (Lee et al., 2019: a sentence is the query, the
 * rest of its passage the positive; the other passages of the batch are the
 * negatives; InfoNCE with a temperature).
 *
 * Legend: B batch, T time (padded length), C hidden, N = B*T rows.
 *
 * The layers are forward/backward pairs as in <train/nn.h>; backward adds
 * (+=) into the d-prefixed arrays.
 *
 * Embedding of a text: [CLS] wordpieces [SEP] (truncated to max_length),
 * the encoder's last hidden states averaged over the real tokens (the
 * attention mask: sentence-transformers' mean pooling), then scaled to unit
 * length, so inner product is cosine.
 *
 * Errors: TRAIN_OK or a negative TRAIN_E*; messages in a train_error.
 */
#ifndef PLUGINS_RAG_DENSE_H
#define PLUGINS_RAG_DENSE_H

#include <stddef.h>
#include <stdint.h>

#include "../bert/bert.h"

/* ---- layers ------------------------------------------------------------- */

/* Mean over the rows whose mask is 1 (a row of B with none: zeros). */
void dense_pool_forward(float *out,          /* (B, C) */
                        const float *h,      /* (B, T, C) */
                        const uint8_t *mask, /* (B, T) or NULL: all real */
                        int B, int T, int C);
void dense_pool_backward(float *dh,           /* (B, T, C) += */
                         const float *dout,   /* (B, C) */
                         const uint8_t *mask, /* (B, T) */
                         int B, int T, int C);

/* out = in / max(|in|, 1e-12) per row; norm (B) kept for backward. */
void dense_l2norm_forward(float *out, float *norm, const float *in, int B, int C);
void dense_l2norm_backward(float *din,        /* (B, C) += */
                           const float *dout, /* (B, C) */
                           const float *out,  /* (B, C) forward's output */
                           const float *norm, /* (B) */
                           int B, int C);

/*
 * InfoNCE with in-batch negatives: S = q p^T / tau (B, B), loss = mean over
 * i of -log softmax(S_i)[i].  probs (B, B) keeps the softmax for backward.
 * Returns the loss; *correct (may be NULL) counts rows whose argmax is i.
 */
double dense_infonce_forward(float *probs, const float *q, const float *p, int B, int C, float tau,
                             int *correct);
void dense_infonce_backward(float *dq, float *dp, /* (B, C) += each */
                            const float *probs, const float *q, const float *p, int B, int C,
                            float tau);

/* ---- the encoder ----------------------------------------------------------- */

typedef struct dense_encoder {
	bert_model *m;
	bert_vocab v;
	int max_length;     /* tokens per text, [CLS] and [SEP] included */
} dense_encoder;

void dense_encoder_free(dense_encoder *e);

/* Load a Hugging Face BERT folder (bert_hf_load); heads it may carry (MLM,
 * classifier) are dropped. */
int dense_encoder_load_hf(const char *dir, int max_length, dense_encoder **out, train_error *err);

/*
 * The encoder as bytes (a value of the graph) and back:
 *   "TRNDENC1", uint32 header length H, H bytes of JSON (the BERT shape,
 *   max_length, lowercase), uint64 vocab bytes V, V bytes (vocab.txt),
 *   then n_params float32 (bert.h's layout, the encoder only), all
 *   little-endian.  dense_encoder_parse checks every count against the
 *   size ("encoder: what").
 */
int dense_encoder_serialize(const dense_encoder *e, void **buf, size_t *size);
int dense_encoder_parse(const void *buf, size_t size, dense_encoder **out, train_error *err);

/*
 * Unit-length embeddings of n texts into out (n, C), `batch` texts per
 * forward pass (texts sorted by length first, so padding stays small).
 */
int dense_encode(dense_encoder *e, const char *const *texts, const size_t *lens, size_t n, int batch,
                 float *out);

/* ---- inverse-cloze training ----------------------------------------------------- */

typedef struct dense_train_opts {
	int layers, hidden, heads, intermediate; /* the encoder's shape */
	int vocab_size;         /* WordPiece vocabulary learned from the passages */
	int max_length;         /* passage tokens */
	int query_length;       /* sentence (query) tokens */
	int steps, batch_size, warmup;
	double learning_rate, weight_decay, temperature;
	double keep_sentence;   /* share of pairs whose passage keeps the sentence (ICT: 0.1) */
	uint64_t seed;
} dense_train_opts;

/* Defaults: 1 layer, hidden 128, 2 heads, intermediate 512, vocabulary
 * 8000, max_length 128, query_length 48, 300 steps of 64, warm-up 30,
 * learning rate 1e-3, weight decay 0.01, temperature 0.05, keep 0.5 (the
 * ICT paper keeps the sentence in 10 % of the pairs; keeping it in half
 * retrieved better on SQuAD: bench/rag_bench.sh). */
dense_train_opts dense_train_defaults(void);

/* Progress: called after each step (may be NULL); non-zero stops (canceled). */
typedef int (*dense_progress_fn)(void *ud, int step, int steps, double loss, double acc);

/*
 * Train an encoder from scratch on passages (n texts) by the inverse cloze
 * task.  Passages of fewer than two sentences serve as negatives only.
 * Deterministic for a seed and a thread count.  *final_loss: the mean loss
 * of the last 10 % of the steps.
 */
int dense_train_ict(const char *const *texts, const size_t *lens, size_t n, const dense_train_opts *o,
                    dense_progress_fn progress, void *ud, dense_encoder **out, double *final_loss,
                    train_error *err);

#endif
