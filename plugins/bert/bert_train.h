/*
 * plugins/bert/bert_train.h - the training loop shared by the BERT
 * components (masked-LM pretraining and sequence classification).
 *
 * One run: AdamW (bias corrections, decoupled weight decay), a linear
 * schedule with warm-up, gradient clipping at 1.0, gradient accumulation
 * over `grad_accum` micro-batches of `batch_size` sequences (each padded to
 * its longest), hidden dropout, validation every `eval_steps` optimizer
 * steps (and at the end) with the best parameters kept, and a checkpoint
 * every `save_steps` steps in `checkpoint_dir`: parameters, AdamW moments,
 * the best parameters so far, the RNG, the step and the data position
 * (epoch and offset: each epoch's order is a permutation drawn from the
 * seed and the epoch number, so the position is all that is needed), as
 * one safetensors file written to a temporary name and renamed (also when
 * the run is interrupted).  A run asked to `resume` that finds a checkpoint
 * of the same run (same options, data and initial weights: the "run"
 * fingerprint in its metadata) continues from it and reaches the same
 * weights, bit for bit, as a run that was never stopped.
 *
 * LoRA: a model with adapters (bert_lora_add) and a frozen base
 * (bert_freeze_base) trains its adapters and whatever bert_grad() still
 * covers (the classifier); AdamW's moments, the best weights and the
 * checkpoints hold those alone.
 *
 * Masked LM (Devlin et al.): 15 % of the non-special positions of each
 * sequence (at least one) are chosen; 80 % of them become [MASK], 10 % a
 * random token, 10 % stay; the loss is over the chosen positions.
 */
#ifndef PLUGINS_BERT_TRAIN_H
#define PLUGINS_BERT_TRAIN_H

#include "bert.h"

#include <train/plugin.h>

typedef struct bert_data {
	int32_t **seq;      /* n sequences: [CLS] ... [SEP] ids */
	int *len;           /* their lengths */
	int32_t *label;     /* classification: n labels; MLM: NULL */
	size_t n;
} bert_data;

void bert_data_free(bert_data *d);
/* Tokenize a text into [CLS] pieces [SEP], truncated to max_len. */
int bert_data_add(bert_data *d, const bert_vocab *v, const char *text, size_t len, int max_len,
                  int32_t label);

typedef struct bert_run_opts {
	int mlm;                 /* 1: masked LM, 0: classification */
	int batch_size, num_epochs, grad_accum, warmup_steps, eval_steps, save_steps;
	double learning_rate, weight_decay, dropout, mask_prob;
	uint64_t seed;
	int mixed_precision;     /* bf16 matmuls where the CPU has them */
	int gradient_checkpointing; /* recompute each layer's activations in backward */
	const char *checkpoint_dir; /* NULL: no checkpoints */
	int resume;              /* continue from a checkpoint of this run there (--resume) */
	const char *log_path;    /* NULL: no JSON log file (the log is returned too) */
	int64_t stop_after;      /* tests: stop (as if killed) after this many steps; 0: never */
	int threads;
} bert_run_opts;

typedef struct bert_run_result {
	int64_t steps;           /* optimizer steps of the whole run */
	double best_val_loss;    /* NaN without validation */
	double val_accuracy;     /* classification, at the best model; NaN otherwise */
	double train_seconds, steps_per_second;
	int resumed;             /* continued from a checkpoint */
	char *log_json;          /* malloc'd: the loss curve, JSON */
} bert_run_result;

/*
 * Train m in place on `train` (validation on `val`, which may be empty).
 * At the end m holds the best parameters by validation loss (the last
 * ones without validation).  ctx may be NULL (tests); it gives progress,
 * cancellation and the messages of failures.  Returns TRAIN_OK,
 * TRAIN_ECANCELED (also for stop_after), or an error.
 */
int bert_train_run(bert_model *m, const bert_vocab *v, const bert_data *train, const bert_data *val,
                   const bert_run_opts *o, train_ctx *ctx, bert_run_result *res);

/* Loss and accuracy (classification) of m on d, batch_size at a time, no dropout. */
int bert_evaluate(bert_model *m, const bert_vocab *v, const bert_data *d, int mlm, int batch_size,
                  uint64_t seed, double *loss, double *accuracy);

#endif
