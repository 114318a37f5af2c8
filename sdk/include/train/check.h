/*
 * <train/check.h> - can this model be trained here, at what cost (issue 10):
 * what `train check` prints and `train serve`'s compatibility endpoint
 * answers.
 *
 * train_check_model() reads a model's shape without loading its weights:
 * a Hugging Face folder (config.json, and the JSON header of
 * model.safetensors: tensor names, dtypes and shapes, every bound checked)
 * of model_type "bert", "gpt2" or "mamba", or a libtrain model archive
 * holding a BertClassifier/BertMaskedLM, MambaLM or GPT2LM component.  It
 * then estimates, for a training type, a batch size and a sequence length:
 *
 *  - parameters (from the safetensors header, cross-checked with what the
 *    config implies) and trainable parameters (LoRA: r*(in+out) per
 *    targeted matrix, the A (r, in) and B (out, r) factors);
 *  - memory: weights, gradients, AdamW's two moments, the copy of the best
 *    weights the plugins keep for validation, the kernels' bf16 copy of the
 *    weights, the runner's copy of the input model (its value blob: 1 x
 *    the weights, measured), validation's
 *    forward arrays, and activations for batch x sequence with and without
 *    gradient checkpointing, counted from the arrays each plugin's forward
 *    and backward keep alive (plugins/bert/bert.c acts_ensure,
 *    plugins/mamba/model.c acts_layout);
 *  - time: one layer's forward and backward run through libtrain's kernels
 *    at the model's shapes on this machine (a probe of a few
 *    milliseconds, cached with the hardware's fingerprint in the user's
 *    cache folder), times the layers, plus the embeddings and the head;
 *    the time per epoch from the data size or a step count;
 *  - a verdict, with each reason and what to change.
 *
 * Threads: the probe sets the kernels' thread count and precision
 * (process-wide, <train/kernels.h>) and restores them; do not call it
 * while another thread trains.
 */
#ifndef TRAIN_CHECK_H
#define TRAIN_CHECK_H

#include <train/common.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Training types (`--type`). */
typedef enum train_check_type {
	TRAIN_CHECK_FINE_TUNE = 0,    /**< all weights trained, the model's head */
	TRAIN_CHECK_LORA,             /**< adapters only, base weights frozen */
	TRAIN_CHECK_CONTINUED,        /**< continued pre-training: the model's own objective */
	TRAIN_CHECK_TASK,             /**< a new task head (classification), all weights */
	TRAIN_CHECK_FULL,             /**< training from scratch at this shape */
} train_check_type;

/** Verdicts. */
enum {
	TRAIN_CHECK_COMPATIBLE = 0,
	TRAIN_CHECK_WITH_CHANGES = 1,
	TRAIN_CHECK_NOT_COMPATIBLE = 2,
};

/** Parse "fine-tune", "lora", "continued-pretrain", "task", "full" (also
 *  "finetune", "continued"); TRAIN_EINVAL for anything else. */
TRAIN_API int train_check_type_parse(const char *s, train_check_type *out);
/** The canonical name of a type (static text). */
TRAIN_API const char *train_check_type_name(train_check_type t);

typedef struct train_check_options {
	uint32_t struct_size;    /**< sizeof(train_check_options) */
	train_check_type type;
	int batch_size;          /**< 0: 8 */
	int max_length;          /**< 0: min(512, the model's positions) */
	int grad_accum;          /**< 0: 1 */
	const char *precision;   /**< "fp32", "bf16", or NULL: the hardware's choice */
	int gradient_checkpointing; /**< 1: the verdict assumes it */
	int lora_r;              /**< 0: 16 */
	int num_labels;          /**< task head size; 0: the config's (else 2) */
	const char *data;        /**< a data file whose size sets the epoch (NULL: none) */
	int64_t steps;           /**< optimizer steps per epoch when there is no data */
	const char *cache_dir;   /**< probe cache folder; NULL: train_cache_default_dir */
	const char *output_dir;  /**< where the model would be written (free disk); NULL: "." */
	int no_probe;            /**< 1: no timing (cached figures still used) */
} train_check_options;

#define TRAIN_CHECK_MAX_REASONS 8

typedef struct train_check_reason {
	int severity;            /**< TRAIN_CHECK_WITH_CHANGES or _NOT_COMPATIBLE; 0: a note */
	char what[256];          /**< the problem */
	char fix[256];           /**< what to change ("" if nothing helps) */
} train_check_reason;

typedef struct train_check_report {
	uint32_t struct_size;    /**< sizeof(train_check_report) */
	char model_type[16];     /**< "bert", "gpt2", "mamba" */
	char source[16];         /**< "huggingface" or "libtrain" */
	char component[32];      /**< the plugin component that trains it */
	char target[32];         /**< the `train --target` recipe */
	/* shape */
	int vocab, hidden, layers, heads, intermediate, positions, state;
	int batch_size, max_length, grad_accum, lora_r, checkpointing;
	char precision[8];       /**< "fp32" or "bf16" */
	/* parameters */
	uint64_t params;         /**< total (the safetensors header when there is one) */
	uint64_t params_config;  /**< what the config implies */
	uint64_t params_file;    /**< the safetensors header's sum; 0 if none */
	uint64_t trainable;
	/* memory, bytes */
	uint64_t mem_weights, mem_grads, mem_optimizer, mem_best, mem_bf16, mem_workspace;
	uint64_t mem_eval;             /**< validation: one batch's forward arrays, held beside
	                                    the training ones (BERT's evaluation has its own) */
	uint64_t mem_activations;      /**< without gradient checkpointing */
	uint64_t mem_activations_ckpt; /**< with it */
	uint64_t mem_peak;             /**< the sum, with the checkpointing asked for */
	uint64_t mem_available, disk_free, disk_needed;
	/* time */
	double flops_per_token;  /**< forward + backward, ~6 * params + attention */
	double step_seconds;     /**< one optimizer step; 0 when not probed */
	double step_cpu_seconds; /**< its CPU time, all threads (what load does not stretch) */
	double layer_seconds;    /**< the probe: one layer forward + backward */
	int probe_cached;        /**< 1: from the cache */
	int64_t steps_per_epoch; /**< 0: unknown (no data, no steps) */
	int64_t examples;        /**< from the data: examples (bert) or tokens */
	double epoch_seconds;
	/* verdict */
	int verdict;             /**< TRAIN_CHECK_* */
	int n_reasons;
	train_check_reason reasons[TRAIN_CHECK_MAX_REASONS];
} train_check_report;

/**
 * Check `path` (an HF folder or a libtrain model archive) for the options;
 * fills `r` (set r->struct_size first, or zero it).
 * Errors: TRAIN_EINVAL (bad options), TRAIN_ENOTFOUND (no config.json, no
 * model), TRAIN_EPARSE (config.json is not JSON), TRAIN_ECORRUPT (a
 * safetensors header that lies: bad length, offsets past the end,
 * overlapping or misnumbered tensors), TRAIN_EUNSUPPORTED (a model_type
 * other than bert, gpt2, mamba), -errno; `err` names the file and line.
 */
TRAIN_API int train_check_model(const char *path, const train_check_options *o,
                                train_check_report *r, train_error *err);

/** The verdict's word: "compatible", "compatible with changes",
 *  "not compatible" (static text). */
TRAIN_API const char *train_check_verdict_name(int verdict);

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_CHECK_H */
