/*
 * plugins/nlu/nlu.h - what the files of the "nlu" plugin share (private;
 * tests/test_diet.c compiles the plugin's sources in and uses it too).
 *
 *   crf.c   a linear-chain CRF: loss, gradient, Viterbi, marginals
 *   diet.c  the DIET model: sparse-to-dense layers, feed-forward layers,
 *           transformer, intent similarity head, CRF entity head; its
 *           training loop, prediction and persistence
 *   nlu.c   the components (DIETClassifier, EntitySynonymMapper,
 *           FallbackClassifier), their parameter tables and JSON, and the
 *           plugin descriptor
 *
 * Legend: T tokens, K tags, R rows, V sparse columns, U units, B messages.
 */
#ifndef PLUGINS_NLU_H
#define PLUGINS_NLU_H

#include <train/features.h>
#include <train/plugin.h>
#include <train/tensor.h>

#include <stddef.h>
#include <stdint.h>

/* ---- crf.c ----------------------------------------------------------------- */

/* The score of one tag path (no normalization). */
double nlu_crf_score(const float *U, /* (T, K) */ const float *A, /* (K, K) */
                     const int32_t *tags, /* (T) */ int T, int K);
/* -log p(tags): *nll; alpha (T, K) doubles kept for backward.
 * Errors: TRAIN_EINVAL (a tag out of range, bad sizes), TRAIN_ENOMEM. */
int nlu_crf_nll_forward(double *nll, double *alpha, /* (T, K) */
                        const float *U, /* (T, K) */ const float *A, /* (K, K) */
                        const int32_t *tags, /* (T) */ int T, int K);
/* dU += scale * d nll / dU, dA += scale * d nll / dA (either may be NULL),
 * from the alpha of the forward call. */
int nlu_crf_nll_backward(float *dU, /* (T, K) */ float *dA, /* (K, K) */
                         const float *U, const float *A, const int32_t *tags,
                         const double *alpha, int T, int K, float scale);
/* The best path (ties to the lower tag) and its score (best may be NULL). */
int nlu_crf_viterbi(int32_t *path, /* (T) */ double *best, const float *U, const float *A,
                    int T, int K);
/* p (T, K): the marginal probability of each tag at each token. */
int nlu_crf_marginals(float *p, const float *U, const float *A, int T, int K);

/* ---- diet.c: sparse rows times a dense weight ------------------------------ */

/*
 * CSR rows (R of them: indptr R+1 offsets, column indices < V, values)
 * times w (V, U), ADDED into out (R rows of stride ldo >= U):
 *     out[r][u] += sum_k values[k] * w[indices[k]][u]
 * Backward: dw[indices[k]][u] += values[k] * dout[r][u] (no input gradient:
 * sparse features are data).  w is (V, U), input-major, as a Keras kernel,
 * so each non-zero reads one contiguous row.
 * Errors: TRAIN_EINVAL (bad sizes, NULL arrays, a column >= V).
 */
int nlu_sparse_forward(float *out, int ldo, const uint32_t *indptr, const uint32_t *indices,
                       const float *values, int R, const float *w, int V, int U);
int nlu_sparse_backward(float *dw, const float *dout, int ldo, const uint32_t *indptr,
                        const uint32_t *indices, const float *values, int R, int V, int U);

/* ---- diet.c: the model ------------------------------------------------------ */

/* Training options, from the component's config (nlu.c checks them). */
typedef struct diet_opts {
	int64_t epochs;
	int batch_min, batch_max;      /* batch_size [a, b] or a */
	int balanced;                  /* batch_strategy balanced (else sequence) */
	double learning_rate;
	uint64_t seed;
	int embed_dim;                 /* embedding_dimension */
	int n_layers, d_model, n_heads;/* transformer */
	int unidirectional;
	int *hid_text, n_hid_text;     /* hidden_layers_sizes.text (owned) */
	int *hid_label, n_hid_label;   /* hidden_layers_sizes.label (owned) */
	int units;                     /* dense_dimension.text: sparse-to-dense units */
	float drop_rate;
	float density;                 /* connection_density */
	int sparse_input_dropout, dense_input_dropout;
	float reg;                     /* regularization_constant */
	int scale_loss;
	int constrain_similarities;
	int ranking_length;
	int renormalize;
	int intent, entity;            /* intent_classification, entity_recognition */
	int bilou;
	int64_t eval_examples, eval_epochs;
	int drop_small_last_batch;
	int lazy_adam;                 /* Adam on the sparse kernels' rows of each batch only */
	int swa_epochs;                /* weight_averaging_epochs: mean weights of the last ones */
	char **featurizers; int n_featurizers;  /* empty: every block (owned) */
	int split_default;             /* split_entities_by_comma */
	char **split_names; int *split_values; int n_split; /* per entity type (owned) */
	/* ResponseSelector: labels are "intent/response_key" (of retrieval_intent
	 * only, when set, owned) */
	int label_response_key;
	char *retrieval_intent;
} diet_opts;

void diet_opts_free(diet_opts *o);

typedef struct diet_model diet_model;

/* What one training run did (for the report value and the tests). */
typedef struct diet_report {
	size_t examples, eval_examples;
	int labels, tags;
	int64_t epochs, steps;
	size_t parameters;
	double loss, intent_loss, entity_loss;  /* last epoch's means */
	double first_epoch_loss;
	double train_accuracy;                  /* intent accuracy, inference mode; -1: none */
	double train_entity_f1;                 /* token-level micro F1 over non-O tags; -1: none */
	double eval_accuracy;                   /* on the hold-out set; -1: none */
	int trained;                            /* 0: too little data, nothing learned */
} diet_report;

/*
 * Train on every message of `f` that has an intent (all messages when
 * intent classification is off).  *m NULL: a new model; otherwise
 * (finetuning) continue from it, for `epochs` epochs.  On failure *m is
 * unchanged (a new model is freed); `why` gets a message.
 */
int diet_train(diet_model **m, const diet_opts *o, int64_t epochs, const train_features *f,
               train_ctx *ctx, diet_report *rep, char *why, size_t whylen);

/* One message's prediction. */
typedef struct diet_entity {
	int type;                  /* index into the model's entity types */
	uint32_t start, end;       /* code points */
	float confidence;
} diet_entity;

typedef struct diet_pred {
	int *rank; float *conf; int n_rank;     /* labels by confidence (ranking_length) */
	diet_entity *ents; int n_ents;
} diet_pred;

void diet_pred_free(diet_pred *p);
/*
 * Predict messages [0, n) of `f` into preds (n of them, zeroed by the
 * caller; free each with diet_pred_free).  Errors: TRAIN_EMISMATCH (the
 * feature blocks differ from training; `why` says how), TRAIN_ENOMEM, ...
 */
int diet_predict(const diet_model *m, const diet_opts *o, const train_features *f,
                 diet_pred *preds, char *why, size_t whylen);

/* Names: intent labels and entity types (without BILOU prefixes). */
int diet_n_labels(const diet_model *m);
const char *diet_label(const diet_model *m, int i);
int diet_n_entity_types(const diet_model *m);
const char *diet_entity_type(const diet_model *m, int i);
int diet_trained(const diet_model *m);
/* The flat parameter array (tests compare bytes). */
const float *diet_params(const diet_model *m, size_t *n);

/*
 * For the tests: the loss over every training message of f as one batch
 * (dropout as o says: give drop_rate 0 for a deterministic loss) with its
 * gradient left in the model's gradient array; the flat arrays.
 */
int diet_loss_grad(diet_model *m, const diet_opts *o, const train_features *f, double *loss);
float *diet_param_data(diet_model *m, size_t *n);
const float *diet_grad_data(const diet_model *m);
/* For the tests: one training step (Adam, lazy_adam as o says) on the
 * messages msgs[0..n) of f as one batch, as training does it; reference:
 * plain Adam through grad_init and train_adamw_step over every parameter
 * instead (what training's faster path must match bit for bit); *loss
 * before the step. */
int diet_train_step(diet_model *m, const diet_opts *o, const train_features *f,
                    const size_t *msgs, int n, int reference, double *loss);

int diet_save(const diet_model *m, train_resource *res, char *why, size_t whylen);
int diet_load(diet_model **m, const train_resource *res, char *why, size_t whylen);
void diet_free(diet_model *m);

/* ---- nlu.c ------------------------------------------------------------------ */

extern const train_component_class nlu_diet_class;
extern const train_component_class nlu_synonym_class;
extern const train_component_class nlu_fallback_class;
extern const train_component_class nlu_selector_class;

#define NLU_PARSE_TYPE "application/json"

#endif
