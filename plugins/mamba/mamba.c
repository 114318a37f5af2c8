/*
 * plugins/mamba/mamba.c - the "mamba" plugin (issue 7): MambaLM, a Mamba
 * language model trained on a text corpus, over characters or byte-level
 * BPE tokens, from scratch or (issue 10) from a saved MambaLM.
 *
 *   MambaLM  (no inputs)        -> log   (train: reads train_file, and
 *                                          validation_file or the last
 *                                          validation_split of it)
 *            prompt, temperature, top_k, seed, max_new_tokens -> text
 *                                          (process: the prompt and its
 *                                          continuation, sampled with the
 *                                          recurrent form, O(1) per token)
 *
 * `log` is application/json: the loss curve {"train": [[step, loss], ...],
 * "validation": [[step, loss], ...], "best": {"step", "loss"}, ...}.  A
 * process input given as "" takes the config's value.
 *
 * tokenizer: char (the default): tokens are characters (Unicode code
 * points) of the training text, in code point order, after id 0, which
 * stands for any character the training text lacks; vocab_size is an
 * upper bound (more distinct characters is an error).  tokenizer: bpe: a
 * byte-level BPE of vocab_size tokens (plugins/common/bpe.h) learnt from
 * the training part of the text (doc/mamba.md).  Every validation also
 * gives bits per character (validation_bpc), which compares across
 * tokenizers.
 *
 * Training: AdamW, warm-up then cosine decay to a tenth of the rate,
 * gradient clipping at 1, random windows of max_length + 1 characters
 * drawn from the training tokens by a seeded generator,
 * gradient_accumulation_steps micro-batches per step.  Every eval_steps
 * steps (and at the end) the validation loss is measured and the best
 * parameters so far are kept; they are what persist writes.  Every
 * save_steps steps, and when the run is interrupted, a checkpoint
 * (parameters, AdamW moments, best parameters, step, the generator, the
 * log so far) is written, temporary name then rename, as <node>.safetensors
 * in the run's checkpoint folder (train_ctx_checkpoint_dir: the cache's,
 * one per node fingerprint), or in checkpoint_dir when that is set
 * (relative to the current folder); `train --resume` (train_ctx_resuming)
 * continues from it and ends with the same bytes as a run that was never
 * interrupted, as PPO and BERT do (doc/recipes.md, "Checkpoints").  mixed_precision
 * runs the matmuls in bf16 where the CPU has it.
 *
 * From a saved model (model_path: a MambaLM folder, a model folder or a
 * model archive, read with libarchive; issue 10): its weights, shape and
 * tokenizer; the recipe's shape keys, when given, must agree.  The log
 * gets the loaded model's validation at step 0.  training_type: full (or
 * continued-pretrain) trains every weight from there; lora adds adapters
 * (mamba_lora.c) on the projections named by lora_target_modules, trains
 * them alone on the frozen base (no gradients or moments for it),
 * and merges them into the weights at the end, so the result is a plain
 * MambaLM; lora_save_adapter also writes PEFT's adapter folder beside it
 * (doc/mamba.md).
 *
 * Persisted: model.safetensors (Hugging Face MambaForCausalLM tensor
 * names; metadata tokenizer: bpe for BPE models), vocab.json (char: the
 * characters by id, id 0 null; bpe: GPT-2's {"token": id}), merges.txt
 * (bpe), loss_log.json.
 *
 *   MambaSFT  train, validation -> log, model   (issue 9: supervised
 *             fine-tuning on prompt/completion examples)
 *
 * The same model and trainer on examples instead of a text: `train` and
 * `validation` are JSON Lines of {"prompt": ..., "completion": ...}; each
 * example is the prompt's characters, the completion's and U+0003 (END OF
 * TEXT, which ends a sampled answer), and the loss counts the completion's
 * tokens and that end only (the prompt's targets are masked).  A batch
 * draws examples (not windows) by the seeded generator, each padded to the
 * longest example or max_length; an epoch is as many examples as the
 * training set has.  Characters only: MambaSFT has no tokenizer key.
 * `model` is the trained model as a value
 * (MAMBA_VALUE_TYPE, mamba_io.c) for the nodes downstream; persisted as
 * MambaLM, so `train generate` samples from it.
 *
 * Threads: no global mutable state of its own; train() sets the kernels'
 * thread count and precision (process-wide, <train/kernels.h>).
 */
#include "mamba.h"

#include "../common/bpe.h"
#include "../common/gen.h"
#include "../common/text.h"

#include <train/corpus.h>
#include <train/plugin.h>
#include <train/train.h>

#include <archive.h>
#include <archive_entry.h>

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define JSON_TYPE "application/json"
#define TEXT_TYPE "text/plain"
#define WEIGHTS "model.safetensors"
#define CKPT_FORMAT "libtrain.mamba.checkpoint"
#define MODEL_FORMAT "libtrain.mamba"

static const train_param params[] = {
	{ "train_file", TRAIN_PARAM_PATH, "~", "the training text (UTF-8); required to train" },
	{ "validation_file", TRAIN_PARAM_PATH, "~", "validation text (default: the last validation_split of train_file)" },
	{ "validation_split", TRAIN_PARAM_FLOAT, "0.1", "share of train_file kept for validation when there is no validation_file" },
	{ "vocab_size", TRAIN_PARAM_INT, "~", "most tokens (char: characters + 1; bpe: the BPE vocabulary, 256 bytes + merges + 1); default 5000, with model_path the model's" },
	{ "tokenizer", TRAIN_PARAM_STRING, "~", "char: the characters of train_file; bpe: byte-level BPE learnt from it at vocab_size; default char, with model_path the model's" },
	{ "d_model", TRAIN_PARAM_INT, "~", "model width (a multiple of 8); default 256, with model_path the model's" },
	{ "n_layers", TRAIN_PARAM_INT, "~", "Mamba blocks; default 4, with model_path the model's" },
	{ "model_path", TRAIN_PARAM_PATH, "~", "start from this MambaLM model (continued pre-training, fine-tuning, LoRA): its folder (model.safetensors, vocab.json, merges.txt), or a model folder or archive from `train` (its MambaLM node); its shape and tokenizer are kept" },
	{ "training_type", TRAIN_PARAM_STRING, "full", "full (every weight), continued-pretrain (the same, named as GPT2LM), or lora (adapters on a frozen base; needs model_path)" },
	{ "lora_r", TRAIN_PARAM_INT, "~", "LoRA rank (default 16; lora only)" },
	{ "lora_alpha", TRAIN_PARAM_FLOAT, "~", "LoRA alpha: the update is scaled by alpha / r (default 32)" },
	{ "lora_dropout", TRAIN_PARAM_FLOAT, "~", "dropout on the adapters' input (default 0.1)" },
	{ "lora_target_modules", TRAIN_PARAM_LIST, "~", "projections to adapt: in_proj, x_proj, dt_proj, out_proj (default [in_proj, out_proj])" },
	{ "lora_save_adapter", TRAIN_PARAM_BOOL, "~", "also write PEFT's adapter_config.json and adapter_model.safetensors beside the merged model (default false)" },
	{ "max_length", TRAIN_PARAM_INT, "512", "training context in tokens" },
	{ "batch_size", TRAIN_PARAM_INT, "8", "sequences per micro-batch" },
	{ "num_epochs", TRAIN_PARAM_INT, "10", "passes over the training tokens" },
	{ "max_steps", TRAIN_PARAM_INT, "0", "optimizer steps; 0: num_epochs decides" },
	{ "max_seconds", TRAIN_PARAM_FLOAT, "0", "stop after this much training time (0: no limit; not reproducible)" },
	{ "learning_rate", TRAIN_PARAM_FLOAT, "0.0001", "peak learning rate" },
	{ "mixed_precision", TRAIN_PARAM_BOOL, "false", "bf16 matmuls where the CPU has them" },
	{ "gradient_checkpointing", TRAIN_PARAM_BOOL, "false", "keep only each block's input and recompute the block in backward (same gradients, less memory)" },
	{ "gradient_accumulation_steps", TRAIN_PARAM_INT, "1", "micro-batches per optimizer step" },
	{ "warmup_steps", TRAIN_PARAM_INT, "0", "linear warm-up steps" },
	{ "weight_decay", TRAIN_PARAM_FLOAT, "0.0", "AdamW's decoupled weight decay" },
	{ "eval_steps", TRAIN_PARAM_INT, "100", "validation every this many steps (0: only at the end)" },
	{ "eval_batches", TRAIN_PARAM_INT, "20", "validation batches per evaluation (0: the whole validation text)" },
	{ "save_steps", TRAIN_PARAM_INT, "500", "checkpoint every this many steps (0: never)" },
	{ "checkpoint_dir", TRAIN_PARAM_STRING, "~",
	  "checkpoints' folder, relative to the current one (null: the run's, in the cache)" },
	{ "log_file", TRAIN_PARAM_STRING, "~", "also write the JSON loss log here (relative to the current folder)" },
	{ "seed", TRAIN_PARAM_INT, "42", "seed of the initialisation and the data order" },
	{ "threads", TRAIN_PARAM_INT, "0", "threads (0: the node's share)" },
	{ "max_new_tokens", TRAIN_PARAM_INT, "200", "generation: tokens to sample" },
	{ "temperature", TRAIN_PARAM_FLOAT, "1.0", "generation: softmax temperature (0: greedy)" },
	{ "top_k", TRAIN_PARAM_INT, "0", "generation: sample among the k likeliest (0: all)" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

static const char *const outputs[] = { "log", NULL };
static const char *const sft_inputs[] = { "train", "validation", NULL };
static const char *const sft_outputs[] = { "log", "model", NULL };
static const char *const proc_in[] = { "prompt", "temperature", "top_k", "seed", "max_new_tokens", NULL };
static const char *const proc_out[] = { "text", NULL };

typedef struct mlm {
	/* config */
	char *train_file, *valid_file, *ckpt_dir, *log_file;
	double valid_split, lr, wd, max_seconds, temperature;
	int64_t vocab_size, d_model, n_layers, max_length, batch, epochs, max_steps, gas, warmup,
		eval_steps, eval_batches, save_steps, seed, threads, max_new, top_k;
	int mixed, ckpt;
	int sft;  /* MambaSFT: examples from the inputs, prompts masked */
	int skip; /* MambaSFT: no step (the initialised model; --skip-sft) */
	int use_bpe; /* tokenizer: bpe */
	/* starting from a model (model_path); the recipe's shape keys, -1 or
	 * "" when not given (the model's then) */
	char *model_path, *tk_given;
	int64_t V_given, D_given, L_given;
	int lora, lora_r, lora_save;
	unsigned lora_kinds;
	double lora_alpha, lora_dropout;
	mamba_lora *adapter; /* LoRA: the trained adapters, merged into m */
	char *base_abs;      /* the model started from (the adapter's base) */
	/* trained state */
	mamba_model *m;
	int32_t *vocab; /* char: id -> code point (id 0: -1); bpe: NULL */
	int nvocab;
	bpe_tok bpe;    /* bpe: the tokenizer (ids = the model's) */
	double bpe_secs; /* bpe: the tokenizer's training time */
	char *log_json;
	/* tests: return TRAIN_ECANCELED after this step (0: never) */
	int64_t stop_at;
} mlm;

/* ------------------------------------------------------------------------ */
/* create / destroy */

static void mlm_free(mlm *c)
{
	if (!c)
		return;
	free(c->train_file);
	free(c->valid_file);
	free(c->ckpt_dir);
	free(c->log_file);
	free(c->model_path);
	free(c->tk_given);
	free(c->base_abs);
	mamba_lora_free(c->adapter);
	mamba_model_destroy(c->m);
	free(c->vocab);
	bpe_free(&c->bpe);
	free(c->log_json);
	free(c);
}

static void mlm_destroy(void *self)
{
	mlm_free(self);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static int is_set(const train_config *cfg, const char *key)
{
	const train_config *v = train_config_get(cfg, key);
	return v && train_config_kind(v) != TRAIN_CFG_NULL;
}

/* training_type and the lora_* keys (MambaLM only): LoRA keys only with lora. */
static const char *lora_config(mlm *c, const train_config *cfg, char *why, size_t nwhy)
{
	static const char *const keys[] = { "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules",
	                                    "lora_save_adapter" };
	const char *tt = is_set(cfg, "training_type") ? train_config_string(cfg, "training_type") : "full";
	if (strcmp(tt, "full") && strcmp(tt, "lora") && strcmp(tt, "continued-pretrain")) {
		snprintf(why, nwhy, "training_type '%.40s' is not one of full, continued-pretrain, lora", tt);
		return why;
	}
	c->lora = !strcmp(tt, "lora");
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (!c->lora && is_set(cfg, keys[i])) {
			snprintf(why, nwhy, "%s is a LoRA setting and training_type is %s: remove it or set "
			         "training_type: lora", keys[i], tt);
			return why;
		}
	if (c->lora && !c->model_path)
		return "training_type lora adapts a trained model: give model_path (a MambaLM model)";
	if (strcmp(tt, "full") && !c->model_path) {
		snprintf(why, nwhy, "training_type %s continues a trained model: give model_path", tt);
		return why;
	}
	c->lora_r = is_set(cfg, "lora_r") ? (int)train_config_int(cfg, "lora_r") : 16;
	c->lora_alpha = is_set(cfg, "lora_alpha") ? train_config_float(cfg, "lora_alpha") : 32.0;
	c->lora_dropout = is_set(cfg, "lora_dropout") ? train_config_float(cfg, "lora_dropout") : 0.1;
	c->lora_save = is_set(cfg, "lora_save_adapter") && train_config_bool(cfg, "lora_save_adapter");
	if (is_set(cfg, "lora_r") && (train_config_int(cfg, "lora_r") < 1 || train_config_int(cfg, "lora_r") > 4096))
		return "lora_r must be from 1 to 4096";
	if (!(c->lora_alpha > 0 && c->lora_alpha < 1e6))
		return "lora_alpha must be positive (and below 1e6)";
	if (!(c->lora_dropout >= 0 && c->lora_dropout < 1))
		return "lora_dropout must be in [0, 1)";
	c->lora_kinds = 1u << MAMBA_LORA_IN | 1u << MAMBA_LORA_OUT;
	const train_config *l = train_config_get(cfg, "lora_target_modules");
	if (l && train_config_kind(l) != TRAIN_CFG_NULL) {
		size_t n = train_config_len(l);
		if (!n)
			return "lora_target_modules is empty: name at least one projection";
		c->lora_kinds = 0;
		for (size_t i = 0; i < n; i++) {
			const train_config *e = train_config_at(l, i);
			int k = train_config_kind(e) == TRAIN_CFG_STRING ? mamba_lora_kind_parse(train_config_as_string(e))
			                                                  : -1;
			if (k < 0) {
				snprintf(why, nwhy, "lora_target_modules: entry %zu '%.64s' is not a Mamba projection "
				         "(in_proj, x_proj, dt_proj, out_proj)", i + 1,
				         train_config_kind(e) == TRAIN_CFG_STRING ? train_config_as_string(e) : "?");
				return why;
			}
			c->lora_kinds |= 1u << k;
		}
	}
	return NULL;
}

static int mlm_config(const train_config *cfg, train_ctx *ctx, mlm **out)
{
	mlm *c = calloc(1, sizeof *c);
	if (!c)
		return TRAIN_ENOMEM;
	const char *vf = train_config_kind(train_config_get(cfg, "validation_file")) == TRAIN_CFG_STRING
	                 ? train_config_string(cfg, "validation_file") : NULL;
	const char *lf = train_config_kind(train_config_get(cfg, "log_file")) == TRAIN_CFG_STRING
	                 ? train_config_string(cfg, "log_file") : NULL;
	const char *tf = train_config_kind(train_config_get(cfg, "train_file")) == TRAIN_CFG_STRING
	                 ? train_config_string(cfg, "train_file") : NULL;
	c->train_file = dup_or_null(tf);
	c->valid_file = dup_or_null(vf);
	const char *cd = train_config_kind(train_config_get(cfg, "checkpoint_dir")) == TRAIN_CFG_STRING
	                 ? train_config_string(cfg, "checkpoint_dir") : NULL;
	c->ckpt_dir = dup_or_null(cd);
	c->log_file = dup_or_null(lf);
	c->valid_split = train_config_float(cfg, "validation_split");
	c->lr = train_config_float(cfg, "learning_rate");
	c->wd = train_config_float(cfg, "weight_decay");
	c->max_seconds = train_config_float(cfg, "max_seconds");
	c->temperature = train_config_float(cfg, "temperature");
	/* (MambaSFT's keys have their defaults in its table) */
	c->V_given = is_set(cfg, "vocab_size") ? train_config_int(cfg, "vocab_size") : -1;
	c->D_given = is_set(cfg, "d_model") ? train_config_int(cfg, "d_model") : -1;
	c->L_given = is_set(cfg, "n_layers") ? train_config_int(cfg, "n_layers") : -1;
	c->vocab_size = c->V_given >= 0 ? c->V_given : 5000;
	c->d_model = c->D_given >= 0 ? c->D_given : 256;
	c->n_layers = c->L_given >= 0 ? c->L_given : 4;
	c->max_length = train_config_int(cfg, "max_length");
	c->batch = train_config_int(cfg, "batch_size");
	c->epochs = train_config_int(cfg, "num_epochs");
	c->max_steps = train_config_int(cfg, "max_steps");
	c->gas = train_config_int(cfg, "gradient_accumulation_steps");
	c->warmup = train_config_int(cfg, "warmup_steps");
	c->eval_steps = train_config_int(cfg, "eval_steps");
	c->eval_batches = train_config_int(cfg, "eval_batches");
	c->save_steps = train_config_int(cfg, "save_steps");
	c->seed = train_config_int(cfg, "seed");
	c->threads = train_config_int(cfg, "threads");
	c->max_new = train_config_int(cfg, "max_new_tokens");
	c->top_k = train_config_int(cfg, "top_k");
	c->mixed = train_config_bool(cfg, "mixed_precision");
	c->bpe.eot = -1;
	/* MambaSFT has no such key: characters */
	const char *tk = train_config_kind(train_config_get(cfg, "tokenizer")) == TRAIN_CFG_STRING
	                 ? train_config_string(cfg, "tokenizer") : "char";
	c->use_bpe = !strcmp(tk, "bpe");
	c->tk_given = is_set(cfg, "tokenizer") ? strdup(tk) : NULL;
	const char *mp = train_config_kind(train_config_get(cfg, "model_path")) == TRAIN_CFG_STRING
	                 ? train_config_string(cfg, "model_path") : NULL;
	c->model_path = dup_or_null(mp);
	/* nor this one: off */
	c->ckpt = train_config_kind(train_config_get(cfg, "gradient_checkpointing")) == TRAIN_CFG_BOOL &&
	          train_config_bool(cfg, "gradient_checkpointing");
	if ((tf && !c->train_file) || (cd && !c->ckpt_dir) || (vf && !c->valid_file) || (lf && !c->log_file) ||
	    (mp && !c->model_path) || (is_set(cfg, "tokenizer") && !c->tk_given)) {
		mlm_free(c);
		return TRAIN_ENOMEM;
	}
	const char *bad = NULL;
	char why[256];
	mamba_dims d;
	if (c->d_model < 8 || c->d_model % 8 || c->d_model > 65536)
		bad = "d_model must be a positive multiple of 8 (the scan runs 16 channels of 2*d_model at a time)";
	else if (c->n_layers < 1 || c->n_layers > MAMBA_MAX_LAYERS)
		bad = "n_layers must be from 1 to 256";
	else if (strcmp(tk, "char") && strcmp(tk, "bpe"))
		bad = "tokenizer must be char or bpe";
	else if (c->vocab_size < 2 || c->vocab_size > (1 << 24))
		bad = "vocab_size must be from 2 to 16777216";
	else if (c->use_bpe && c->vocab_size < 257)
		bad = "with tokenizer: bpe, vocab_size must be at least 257 (256 bytes and the end-of-text token)";
	else if (mamba_dims_make((int)c->vocab_size, (int)c->d_model, (int)c->n_layers, &d))
		bad = "bad model size";
	else if (c->max_length < 1 || c->max_length > (1 << 20))
		bad = "max_length must be from 1 to 1048576";
	else if (c->batch < 1 || c->batch > 65536 || c->batch * c->max_length > (1 << 24))
		bad = "batch_size must be positive, and batch_size * max_length at most 2^24";
	else if (c->epochs < 0 || c->max_steps < 0)
		bad = "num_epochs and max_steps must not be negative";
	else if (c->gas < 1 || c->gas > 65536)
		bad = "gradient_accumulation_steps must be at least 1";
	else if (c->warmup < 0 || c->eval_steps < 0 || c->save_steps < 0 || c->eval_batches < 0)
		bad = "warmup_steps, eval_steps, eval_batches and save_steps must not be negative";
	else if (!(c->lr > 0 && c->lr < 10) || !(c->wd >= 0 && c->wd < 1))
		bad = "learning_rate must be in (0, 10) and weight_decay in [0, 1)";
	else if (!(c->valid_split >= 0 && c->valid_split < 1))
		bad = "validation_split must be in [0, 1)";
	else if (!(c->max_seconds >= 0))
		bad = "max_seconds must not be negative";
	else if (c->threads < 0 || c->threads > 1024)
		bad = "threads must be from 0 to 1024";
	else if (c->max_new < 0 || c->top_k < 0 || !(c->temperature >= 0))
		bad = "max_new_tokens, top_k and temperature must not be negative";
	else if (train_config_get(cfg, "training_type")) /* MambaLM (MambaSFT has no such key) */
		bad = lora_config(c, cfg, why, sizeof why);
	if (bad) {
		mlm_free(c);
		return train_fail(ctx, "%s", bad);
	}
	*out = c;
	return TRAIN_OK;
}

static int mlm_create(const train_config *cfg, train_ctx *ctx, void **self)
{
	mlm *c = NULL;
	int rc = mlm_config(cfg, ctx, &c);
	*self = c;
	return rc;
}

static int sft_create(const train_config *cfg, train_ctx *ctx, void **self)
{
	int rc = mlm_create(cfg, ctx, self);
	if (!rc) {
		((mlm *)*self)->sft = 1;
		((mlm *)*self)->skip = train_config_bool(cfg, "skip");
	}
	return rc;
}

/* ------------------------------------------------------------------------ */
/* text and characters */

/* Read a text file as UTF-8 bytes (lines joined by '\n'): tokenizer: bpe. */
static int read_bytes(const char *path, char **out, size_t *n, train_ctx *ctx)
{
	train_corpus_options opt = TRAIN_CORPUS_OPTIONS_INIT;
	opt.format = TRAIN_CORPUS_TEXT;
	train_corpus *r = NULL;
	train_error err = { 0 };
	const train_record *rec;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	char msg[1024];
	int rc = train_corpus_open(path, &opt, &r, &err);
	while (!rc && (rc = train_corpus_next(r, &rec, &err)) > 0) {
		if (len + rec->text_len + 2 > cap) {
			size_t nc = (len + rec->text_len + 2) * 2;
			char *nb = realloc(buf, nc);
			if (!nb) {
				rc = TRAIN_ENOMEM;
				break;
			}
			buf = nb;
			cap = nc;
		}
		memcpy(buf + len, rec->text, rec->text_len);
		len += rec->text_len;
		buf[len++] = '\n';
		rc = 0;
	}
	train_corpus_close(r);
	if (rc < 0) {
		free(buf);
		if (rc == TRAIN_ENOMEM)
			return rc;
		if (!err.text[0])
			train_error_set(&err, rc, path, 0, 0, "%s", train_strerror(rc));
		return train_fail(ctx, "%s", train_error_format(&err, msg, sizeof msg));
	}
	*out = buf;
	*n = len;
	return TRAIN_OK;
}

/* Read a text file as code points (lines joined by '\n'). */
static int read_text(const char *path, int32_t **cps, size_t *n, train_ctx *ctx)
{
	char *bytes;
	size_t nb;
	int rc = read_bytes(path, &bytes, &nb, ctx);
	if (rc)
		return rc;
	int32_t *buf = malloc((nb ? nb : 1) * sizeof *buf);
	if (!buf) {
		free(bytes);
		return TRAIN_ENOMEM;
	}
	size_t len = 0;
	for (size_t i = 0; i < nb;) /* valid UTF-8: the reader checked */
		buf[len++] = (int32_t)text_next(bytes, nb, &i);
	free(bytes);
	*cps = buf;
	*n = len;
	return TRAIN_OK;
}

/*
 * MambaSFT's examples: JSON Lines of {"prompt", "completion"} in a value,
 * appended to cps (prompt, completion, MAMBA_EOT) with mask 1 on the
 * tokens the loss counts and each example's start in starts (one more
 * entry than examples at the end).
 */
typedef struct examples {
	int32_t *cps;
	uint8_t *mask;
	size_t n, cap;
	size_t *starts;
	size_t nex, excap;
} examples;

static void examples_free(examples *e)
{
	free(e->cps);
	free(e->mask);
	free(e->starts);
	memset(e, 0, sizeof *e);
}

static int examples_push(examples *e, const char *s, size_t len, uint8_t m)
{
	if (e->n + len + 1 > e->cap) {
		size_t nc = (e->n + len + 1) * 2;
		int32_t *a = realloc(e->cps, nc * sizeof *a);
		if (a)
			e->cps = a;
		uint8_t *b = realloc(e->mask, nc);
		if (b)
			e->mask = b;
		if (!a || !b)
			return TRAIN_ENOMEM;
		e->cap = nc;
	}
	size_t k = s ? mamba_utf8_decode(s, len, e->cps + e->n) : 0;
	if (!s) {
		e->cps[e->n] = MAMBA_EOT;
		k = 1;
	}
	memset(e->mask + e->n, m, k);
	e->n += k;
	return TRAIN_OK;
}

static int read_examples(const train_value *v, const char *name, examples *e, train_ctx *ctx)
{
	const char *p = v ? train_value_data(v) : NULL, *end = p ? p + train_value_size(v) : NULL;
	unsigned line = 0;
	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end;
		line++;
		size_t len = (size_t)(le - p);
		int blank = 1;
		for (size_t i = 0; i < len && blank; i++)
			blank = p[i] == ' ' || p[i] == '\t' || p[i] == '\r';
		if (!blank) {
			json_error_t je;
			json_t *o = json_loadb(p, len, 0, &je);
			json_t *pr = json_object_get(o, "prompt"), *co = json_object_get(o, "completion");
			if (!json_is_object(o) || !json_is_string(pr) || !json_is_string(co)) {
				json_decref(o);
				return train_fail(ctx, "%s:%u: %s", name, line,
				                  o ? "an example is an object with string \"prompt\" and \"completion\""
				                    : je.text);
			}
			if (e->nex + 2 > e->excap) {
				size_t nc = (e->nex + 2) * 2;
				size_t *a = realloc(e->starts, nc * sizeof *a);
				if (!a) {
					json_decref(o);
					return TRAIN_ENOMEM;
				}
				e->starts = a;
				e->excap = nc;
			}
			e->starts[e->nex++] = e->n;
			int rc = examples_push(e, json_string_value(pr), json_string_length(pr), 0);
			if (!rc)
				rc = examples_push(e, json_string_value(co), json_string_length(co), 1);
			if (!rc)
				rc = examples_push(e, NULL, 0, 1);
			json_decref(o);
			if (rc)
				return rc;
		}
		p = le + 1;
	}
	if (!e->starts && !(e->starts = malloc(sizeof *e->starts)))
		return TRAIN_ENOMEM;
	e->starts[e->nex] = e->n;
	return TRAIN_OK;
}

/* Example s..e (token positions) as one row of T: ids, and targets where
 * the mask says the next token counts (-1 elsewhere and past the end). */
static void example_row(const int32_t *tok, const uint8_t *mask, size_t s, size_t e, int T,
                        int32_t *ids, int32_t *tg)
{
	for (int t = 0; t < T; t++) {
		size_t q = s + (size_t)t;
		ids[t] = q < e ? tok[q] : 0;
		tg[t] = q + 1 < e && mask[q + 1] ? tok[q + 1] : -1;
	}
}

static int build_vocab(mlm *c, const int32_t *cps, size_t n, train_ctx *ctx)
{
	/* code points seen, one byte each (0x110000 of them) */
	unsigned char *seen = calloc(0x110000, 1);
	if (!seen)
		return TRAIN_ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (cps[i] >= 0 && cps[i] < 0x110000 && !seen[cps[i]]) {
			seen[cps[i]] = 1;
			k++;
		}
	if ((int64_t)k + 1 > c->vocab_size) {
		free(seen);
		return train_fail(ctx, "%s has %zu distinct characters: more than vocab_size %lld allows "
		                  "(characters + 1)", c->sft ? "train" : c->train_file, k,
		                  (long long)c->vocab_size);
	}
	free(c->vocab);
	c->vocab = malloc((k + 1) * sizeof *c->vocab);
	if (!c->vocab) {
		free(seen);
		return TRAIN_ENOMEM;
	}
	c->vocab[0] = -1;
	c->nvocab = 1;
	for (int32_t v = 0; v < 0x110000; v++)
		if (seen[v])
			c->vocab[c->nvocab++] = v;
	free(seen);
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------ */
/* checkpoints */

typedef struct run {
	mlm *c;
	train_ctx *ctx;
	mamba_model *m;
	float *mom, *vel, *best;
	int64_t step, total, best_step;
	double best_loss;
	train_rng rng;
	json_t *log;
	train_fp fp;
	char *ckpt_path;
	/* MambaSFT: token masks and example starts of the train and
	 * validation parts (positions in the token array) */
	const int32_t *tok;
	const uint8_t *mask;
	const size_t *tr_starts, *va_starts;
	size_t ntr_ex, nva_ex;
	int T; /* row length */
	int32_t *cc; /* id -> the characters it stands for (bits per character) */
	/* what the optimizer trains: the model's parameters, or (LoRA) the
	 * adapters'; their tensors (names, offsets) for checkpoints */
	float *tp, *tg;
	size_t nt;
	const mamba_tensor_info *tinfo;
	size_t ntinfo;
} run;

static void hex_rng(const train_rng *r, char out[65])
{
	for (int i = 0; i < 4; i++)
		snprintf(out + 16 * i, 17, "%016llx", (unsigned long long)r->s[i]);
}

static int parse_rng(const char *s, train_rng *r)
{
	if (!s || strlen(s) != 64)
		return -1;
	for (int i = 0; i < 4; i++) {
		char part[17];
		memcpy(part, s + 16 * i, 16);
		part[16] = 0;
		char *end;
		r->s[i] = strtoull(part, &end, 16);
		if (*end)
			return -1;
	}
	return 0;
}

static int save_checkpoint(run *R)
{
	size_t n = R->ntinfo, k = 0;
	train_named_tensor *nt = calloc(4 * n, sizeof *nt);
	char (*names)[80] = calloc(4 * n, sizeof *names);
	char *logtxt = json_dumps(R->log, JSON_COMPACT);
	int rc = TRAIN_ENOMEM;
	if (!nt || !names || !logtxt)
		goto out;
	float *arrs[4] = { R->tp, R->mom, R->vel, R->best };
	const char *pre[4] = { "param", "adam_m", "adam_v", "best" };
	for (int a = 0; a < (R->best_step > 0 ? 4 : 3); a++)
		for (size_t i = 0; i < n; i++, k++) {
			const mamba_tensor_info *t = &R->tinfo[i];
			snprintf(names[k], sizeof names[k], "%s.%s", pre[a], t->name);
			nt[k].name = names[k];
			nt[k].t.dtype = TRAIN_F32;
			nt[k].t.ndim = t->ndim;
			for (int j = 0; j < 4; j++)
				nt[k].t.shape[j] = j < t->ndim ? t->shape[j] : 1;
			nt[k].t.data = arrs[a] + t->offset;
		}
	char step[32], best_step[32], best_loss[40], rng[65], fp[TRAIN_FP_HEX];
	snprintf(step, sizeof step, "%lld", (long long)R->step);
	snprintf(best_step, sizeof best_step, "%lld", (long long)R->best_step);
	snprintf(best_loss, sizeof best_loss, "%.17g", R->best_loss);
	hex_rng(&R->rng, rng);
	train_fp_hex(R->fp, fp);
	const char *meta[] = { "format", CKPT_FORMAT, "version", "1", "step", step, "best_step",
		               best_step, "best_loss", best_loss, "rng", rng, "fingerprint", fp,
		               "log", logtxt, NULL, NULL, NULL };
	/* LoRA: the adapters' dropout generator too */
	char lrng[65];
	if (R->m->lora) {
		hex_rng(&R->m->lora->rng, lrng);
		meta[16] = "lora_rng";
		meta[17] = lrng;
	}
	train_error err = { 0 };
	rc = train_safetensors_write(R->ckpt_path, nt, k, meta, &err);
	if (rc) {
		char msg[1024];
		rc = train_fail(R->ctx, "cannot write the checkpoint: %s",
		                train_error_format(&err, msg, sizeof msg));
	}
out:
	free(nt);
	free(names);
	free(logtxt);
	return rc;
}

/* 1: resumed, 0: nothing to resume (or another config's), < 0: error. */
static int load_checkpoint(run *R)
{
	if (access(R->ckpt_path, F_OK) != 0)
		return 0;
	train_safetensors *f = NULL;
	train_error err = { 0 };
	char msg[1024];
	int rc = train_safetensors_open(R->ckpt_path, &f, &err);
	if (rc)
		return train_fail(R->ctx, "the checkpoint %s is damaged (%s): remove it to start over",
		                  R->ckpt_path, train_error_format(&err, msg, sizeof msg));
	const char *fmt = train_safetensors_meta(f, "format"), *ver = train_safetensors_meta(f, "version");
	const char *fph = train_safetensors_meta(f, "fingerprint");
	char want[TRAIN_FP_HEX];
	train_fp_hex(R->fp, want);
	if (!fmt || strcmp(fmt, CKPT_FORMAT) || !ver || strcmp(ver, "1")) {
		train_safetensors_close(f);
		return train_fail(R->ctx, "%s is not a MambaLM checkpoint (version 1): remove it to start over",
		                  R->ckpt_path);
	}
	if (!fph || strcmp(fph, want)) {
		train_safetensors_close(f);
		train_log(R->ctx, TRAIN_LOG_WARN, "%s is from another config or data: starting over",
		          R->ckpt_path);
		return 0;
	}
	const char *st = train_safetensors_meta(f, "step"), *bs = train_safetensors_meta(f, "best_step");
	const char *bl = train_safetensors_meta(f, "best_loss"), *lg = train_safetensors_meta(f, "log");
	char *end1 = NULL, *end2 = NULL, *end3 = NULL;
	long long step = st ? strtoll(st, &end1, 10) : -1, best_step = bs ? strtoll(bs, &end2, 10) : -1;
	double best_loss = bl ? strtod(bl, &end3) : 0;
	json_t *log = lg ? json_loads(lg, 0, NULL) : NULL;
	train_rng rng, lrng;
	if (!st || *end1 || step < 0 || step > R->total || !bs || *end2 || best_step < 0 ||
	    !bl || *end3 || !log || parse_rng(train_safetensors_meta(f, "rng"), &rng) ||
	    (R->m->lora && parse_rng(train_safetensors_meta(f, "lora_rng"), &lrng))) {
		json_decref(log);
		train_safetensors_close(f);
		return train_fail(R->ctx, "the checkpoint %s has bad metadata: remove it to start over",
		                  R->ckpt_path);
	}
	float *arrs[4] = { R->tp, R->mom, R->vel, R->best };
	const char *pre[4] = { "param", "adam_m", "adam_v", "best" };
	/* check everything, then copy */
	for (int pass = 0; pass < 2; pass++)
		for (int a = 0; a < (best_step > 0 ? 4 : 3); a++)
			for (size_t i = 0; i < R->ntinfo; i++) {
				const mamba_tensor_info *t = &R->tinfo[i];
				char name[96];
				train_tensor tt;
				snprintf(name, sizeof name, "%s.%s", pre[a], t->name);
				if (train_safetensors_get(f, name, &tt) || tt.dtype != TRAIN_F32 ||
				    train_tensor_numel(&tt) != t->numel) {
					json_decref(log);
					train_safetensors_close(f);
					return train_fail(R->ctx, "the checkpoint %s lacks %s or holds it in another "
					                  "shape: remove it to start over", R->ckpt_path, name);
				}
				if (pass)
					memcpy(arrs[a] + t->offset, tt.data, t->numel * sizeof(float));
			}
	train_safetensors_close(f);
	R->step = step;
	R->best_step = best_step;
	R->best_loss = best_loss;
	R->rng = rng;
	if (R->m->lora)
		R->m->lora->rng = lrng;
	json_decref(R->log);
	R->log = log;
	return 1;
}

/* ------------------------------------------------------------------------ */
/* training */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Mean loss over validation windows of T tokens, B at a time. */
static int eval_loss(run *R, const int32_t *val, size_t nval, int32_t *ids, int32_t *tg,
                     double *out, double *bpc)
{
	double chars = 0;
	*bpc = NAN;
	mlm *c = R->c;
	if (R->m->lora)
		R->m->lora->training = 0;
	int T = (int)c->max_length, B = (int)c->batch;
	if (c->sft) {
		/* every validation example, B at a time; the mean over counted tokens */
		T = R->T;
		double sum = 0;
		size_t count = 0, nex = R->nva_ex;
		if (c->eval_batches > 0 && nex > (size_t)(c->eval_batches * B))
			nex = (size_t)(c->eval_batches * B);
		for (size_t b = 0; b < nex; b += (size_t)B) {
			int rows = 0;
			size_t cnt = 0;
			for (; rows < B && b + (size_t)rows < nex; rows++) {
				size_t k = b + (size_t)rows;
				example_row(R->tok, R->mask, R->va_starts[k],
				            R->va_starts[k + 1], T, ids + (size_t)rows * T, tg + (size_t)rows * T);
			}
			for (size_t i = 0; i < (size_t)rows * T; i++)
				if (tg[i] >= 0) {
					cnt++;
					chars += R->cc[tg[i]];
				}
			float loss;
			int rc = mamba_forward(R->m, ids, tg, rows, T, &loss);
			if (rc)
				return rc;
			sum += (double)loss * (double)cnt;
			count += cnt;
		}
		(void)nval;
		*out = count ? sum / (double)count : NAN;
		if (chars > 0)
			*bpc = sum / chars / 0.69314718055994530942; /* ln 2 */
		return TRAIN_OK;
	}
	if (nval < 2) {
		*out = NAN;
		return TRAIN_OK;
	}
	if ((size_t)T > nval - 1)
		T = (int)(nval - 1);
	size_t windows = (nval - 1) / (size_t)T, nb = (windows + B - 1) / B;
	if (c->eval_batches > 0 && nb > (size_t)c->eval_batches)
		nb = (size_t)c->eval_batches;
	double sum = 0;
	size_t count = 0;
	for (size_t b = 0; b < nb; b++) {
		int rows = 0;
		for (; rows < B && (b * B + rows) < windows; rows++) {
			size_t s = (b * B + rows) * (size_t)T;
			memcpy(ids + (size_t)rows * T, val + s, (size_t)T * sizeof *ids);
			memcpy(tg + (size_t)rows * T, val + s + 1, (size_t)T * sizeof *tg);
		}
		float loss;
		int rc = mamba_forward(R->m, ids, tg, rows, T, &loss);
		if (rc)
			return rc;
		sum += (double)loss * rows * T;
		count += (size_t)rows * T;
		for (size_t i = 0; i < (size_t)rows * T; i++)
			chars += R->cc[tg[i]];
	}
	*out = count ? sum / (double)count : NAN;
	if (chars > 0)
		*bpc = sum / chars / 0.69314718055994530942; /* ln 2 */
	return TRAIN_OK;
}

/* Where a run writes (checkpoints, the log): relative to the current
 * folder, as other trainers' output_dir, since a target's recipe may sit in
 * a read-only installed folder. */
static char *resolve_rel(train_ctx *ctx, const char *p)
{
	(void)ctx;
	return strdup(p);
}

/* mkdir -p */
static int make_dirs(const char *path)
{
	char *p = strdup(path);
	if (!p)
		return TRAIN_ENOMEM;
	for (char *q = p + 1; *q; q++)
		if (*q == '/') {
			*q = 0;
			if (mkdir(p, 0777) && errno != EEXIST) {
				free(p);
				return -errno;
			}
			*q = '/';
		}
	int rc = mkdir(p, 0777) && errno != EEXIST ? -errno : 0;
	free(p);
	return rc;
}

static int write_file_atomic(const char *path, const char *text)
{
	size_t n = strlen(path) + 16;
	char *tmp = malloc(n);
	if (!tmp)
		return TRAIN_ENOMEM;
	snprintf(tmp, n, "%s.tmp%ld", path, (long)getpid());
	FILE *f = fopen(tmp, "wb");
	int rc = f && fputs(text, f) >= 0 ? 0 : TRAIN_EIO;
	if (f && fclose(f))
		rc = TRAIN_EIO;
	if (!rc && rename(tmp, path))
		rc = TRAIN_EIO;
	if (rc)
		unlink(tmp);
	free(tmp);
	return rc;
}

/* What decides the weights: the data and every config value that matters. */
static train_fp run_fingerprint(const mlm *c, const int32_t *tr, size_t ntr, const int32_t *va,
                                size_t nva)
{
	train_hasher *h = NULL;
	train_fp fp = { 0, 0 };
	if (train_hasher_create(&h))
		return fp;
	char buf[512];
	snprintf(buf, sizeof buf, "mamba1 V%lld D%lld L%lld T%lld B%lld E%lld S%lld lr%.17g wd%.17g "
	         "gas%lld wu%lld ev%lld eb%lld seed%lld mp%d",
	         (long long)c->vocab_size, (long long)c->d_model, (long long)c->n_layers,
	         (long long)c->max_length, (long long)c->batch, (long long)c->epochs,
	         (long long)c->max_steps, c->lr, c->wd, (long long)c->gas, (long long)c->warmup,
	         (long long)c->eval_steps, (long long)c->eval_batches, (long long)c->seed, c->mixed);
	train_hasher_str(h, buf);
	if (c->use_bpe) /* (char runs keep the fingerprints they had) */
		train_hasher_str(h, "tokenizer bpe");
	train_hasher_u64(h, ntr);
	train_hasher_update(h, tr, ntr * sizeof *tr);
	train_hasher_u64(h, nva);
	train_hasher_update(h, va, nva * sizeof *va);
	fp = train_hasher_digest(h);
	train_hasher_destroy(h);
	return fp;
}

static int log_point(json_t *log, const char *key, int64_t step, double loss)
{
	json_t *a = json_object_get(log, key);
	return json_array_append_new(a, json_pack("[I, f]", (json_int_t)step, loss));
}

/*
 * tokenizer: bpe.  The text's bytes (the validation part: validation_file,
 * else the last validation_split of the bytes, from a character's start),
 * a byte-level BPE learnt from the training part up to vocab_size tokens
 * (pairs seen at least twice), and both parts as its tokens in *tok:
 * *ntr training tokens, then *nva validation ones.
 */
static int bpe_tokens(mlm *c, const char *tpath, const char *vpath, int learn, int32_t **tok,
                      size_t *ntr, size_t *nva, train_ctx *ctx)
{
	char *tb = NULL, *vb = NULL;
	size_t ntb = 0, nvb = 0;
	int rc = read_bytes(tpath, &tb, &ntb, ctx);
	if (!rc && vpath)
		rc = read_bytes(vpath, &vb, &nvb, ctx);
	if (rc)
		goto out;
	const char *tr = tb, *va = vb;
	size_t trn = ntb, van = nvb;
	if (!vpath) {
		size_t cut = ntb - (size_t)((double)ntb * c->valid_split);
		while (cut < ntb && ((unsigned char)tb[cut] & 0xC0) == 0x80)
			cut++;
		trn = cut;
		va = tb + cut;
		van = ntb - cut;
	}
	double t0 = now_s();
	if (learn) { /* else: the loaded model's tokenizer */
		bpe_free(&c->bpe);
		if ((rc = bpe_train(tr, trn, (size_t)c->vocab_size, 2, &c->bpe)))
			goto out;
	}
	c->bpe_secs = now_s() - t0;
	c->nvocab = (int)c->bpe.n;
	/* a token is one byte at least */
	if (!(*tok = malloc((trn + van + 1) * sizeof **tok))) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	if ((rc = bpe_encode(&c->bpe, tr, trn, *tok, trn, ntr)) ||
	    (rc = bpe_encode(&c->bpe, va, van, *tok + *ntr, van, nva)))
		goto out;
	train_log(ctx, TRAIN_LOG_INFO, "byte-level BPE: %zu tokens (%zu merges) %s in %.2f s; "
	          "%zu training bytes in %zu tokens (%.2f bytes per token)", c->bpe.n, c->bpe.n_merges,
	          learn ? "learnt" : "loaded", c->bpe_secs, trn, *ntr, *ntr ? (double)trn / (double)*ntr : 0.0);
out:
	free(tb);
	free(vb);
	return rc;
}

/* The characters (UTF-8 lead bytes) each token id stands for: 1 each for
 * characters; for BPE, the count in its bytes. */
static int32_t *char_counts(const mlm *c)
{
	int32_t *cc = malloc((size_t)c->nvocab * sizeof *cc);
	if (!cc)
		return NULL;
	for (int i = 0; i < c->nvocab; i++) {
		cc[i] = 1;
		if (!c->use_bpe)
			continue;
		char buf[4096];
		size_t k = bpe_token_bytes(&c->bpe, i, buf, sizeof buf);
		cc[i] = 0;
		for (size_t j = 0; j < k; j++)
			cc[i] += ((unsigned char)buf[j] & 0xC0) != 0x80;
	}
	return cc;
}

/* ------------------------------------------------------------------------ */
/* starting from a saved model (model_path) */

static int read_model_dir(mlm *c, const char *dir, const char *shown, int with_grads, train_ctx *ctx);
static char *dir_path(const char *d, const char *name);
static int read_dir_file(const char *dir, const char *name, char **out, size_t *len);

/* The MambaLM (or MambaSFT) node of a model's metadata.json text: the
 * first, a target node first; NULL if there is none. */
static char *pick_node(const char *meta)
{
	json_t *m = json_loads(meta, 0, NULL), *n;
	size_t i;
	char *out = NULL;
	json_array_foreach(json_object_get(m, "nodes"), i, n) {
		const char *c = json_string_value(json_object_get(n, "component"));
		const char *nm = json_string_value(json_object_get(n, "name"));
		if (!c || !nm || (strcmp(c, "MambaLM") && strcmp(c, "MambaSFT")) || strchr(nm, '/') ||
		    !strcmp(nm, "..") || !strcmp(nm, "."))
			continue;
		if (!out || json_is_true(json_object_get(n, "target"))) {
			free(out);
			out = strdup(nm);
		}
		if (json_is_true(json_object_get(n, "target")))
			break;
	}
	json_decref(m);
	return out;
}

static const char *const model_files[] = { WEIGHTS, "vocab.json", "merges.txt", NULL };

/* Copy components/NODE/{model.safetensors, vocab.json, merges.txt} of a
 * model archive into dest (libarchive; nothing else is written). */
static int extract_node(const char *archive, const char *node, const char *dest, train_ctx *ctx)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	char prefix[600];
	int rc = TRAIN_OK, r, found = 0;
	if (!a)
		return TRAIN_ENOMEM;
	snprintf(prefix, sizeof prefix, "components/%s/", node);
	size_t pl = strlen(prefix);
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, archive, 65536) != ARCHIVE_OK) {
		rc = train_fail(ctx, "model_path: %s: %s", archive, archive_error_string(a));
		goto out;
	}
	while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
		const char *nm = archive_entry_pathname(e);
		if (!nm || strncmp(nm, prefix, pl) || archive_entry_filetype(e) != AE_IFREG)
			continue;
		int k = 0;
		while (model_files[k] && strcmp(nm + pl, model_files[k]))
			k++;
		if (!model_files[k])
			continue;
		char *op = dir_path(dest, model_files[k]);
		FILE *f = op ? fopen(op, "wb") : NULL;
		free(op);
		if (!f) {
			rc = train_fail(ctx, "model_path: cannot write a temporary copy of %s", nm);
			goto out;
		}
		char buf[65536];
		la_ssize_t n;
		while ((n = archive_read_data(a, buf, sizeof buf)) > 0)
			if (fwrite(buf, 1, (size_t)n, f) != (size_t)n) {
				n = -1;
				break;
			}
		if (fclose(f) || n < 0) {
			rc = train_fail(ctx, "model_path: %s: cannot read %s (%s)", archive, nm,
			                n < 0 ? archive_error_string(a) : "write error");
			goto out;
		}
		found++;
	}
	if (r != ARCHIVE_EOF)
		rc = train_fail(ctx, "model_path: %s: %s", archive, archive_error_string(a));
	else if (!found)
		rc = train_fail(ctx, "model_path: %s: no %s%s", archive, prefix, WEIGHTS);
out:
	archive_read_free(a);
	return rc;
}

/*
 * model_path into c->m (no gradients), c->use_bpe and the tokenizer:
 * a MambaLM folder, a model folder (metadata.json and components/), or a
 * model archive (its MambaLM node, copied out to a temporary folder).
 * The recipe's shape keys, when given, must agree with the model.
 */
static int load_base(mlm *c, train_ctx *ctx)
{
	char *path = train_ctx_resolve(ctx, c->model_path), *meta = NULL, *node = NULL, *dir = NULL;
	char *tmp = NULL;
	size_t ml;
	struct stat st;
	int rc = TRAIN_OK;
	if (!path)
		return TRAIN_ENOMEM;
	if (stat(path, &st)) {
		rc = train_fail(ctx, "model_path: %s: no such MambaLM folder or model archive", path);
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		if (read_dir_file(path, "metadata.json", &meta, &ml) == TRAIN_OK) {
			/* a model folder (an unpacked archive): its MambaLM node */
			if (!(node = pick_node(meta))) {
				rc = train_fail(ctx, "model_path: %s/metadata.json: no MambaLM node", path);
				goto out;
			}
			size_t n = strlen(path) + strlen(node) + 16;
			if ((dir = malloc(n)))
				snprintf(dir, n, "%s/components/%s", path, node);
		} else
			dir = strdup(path);
		if (!dir) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
	} else {
		train_error err = { 0 };
		char msg[1024];
		if ((rc = train_model_inspect(path, &meta, &err))) {
			rc = train_fail(ctx, "model_path: %s", train_error_format(&err, msg, sizeof msg));
			goto out;
		}
		if (!(node = pick_node(meta))) {
			rc = train_fail(ctx, "model_path: %s: the model has no MambaLM node", path);
			goto out;
		}
		const char *tb = getenv("TMPDIR");
		size_t n = (tb && *tb ? strlen(tb) : 4) + 32;
		if (!(tmp = malloc(n))) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		snprintf(tmp, n, "%s/train-mamba-base-XXXXXX", tb && *tb ? tb : "/tmp");
		if (!mkdtemp(tmp)) {
			free(tmp);
			tmp = NULL;
			rc = train_fail(ctx, "model_path: cannot make a temporary folder: %s", strerror(errno));
			goto out;
		}
		if ((rc = extract_node(path, node, tmp, ctx)))
			goto out;
		if (!(dir = strdup(tmp))) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
	}
	if ((rc = read_model_dir(c, dir, tmp ? path : dir, 0, ctx)))
		goto out;
	/* the recipe against the model */
	const mamba_dims *d = &c->m->d;
	const char *tk = c->use_bpe ? "bpe" : "char";
	char shown[4200];
	snprintf(shown, sizeof shown, "%s%s%s/%s", path, tmp ? ":components/" : "", tmp ? node : "", WEIGHTS);
	if (!tmp)
		snprintf(shown, sizeof shown, "%s/%s", dir, WEIGHTS);
	if (c->D_given >= 0 && c->D_given != d->D)
		rc = train_fail(ctx, "%s: d_model is %d, the recipe says %lld (leave d_model out to take the "
		                "model's)", shown, d->D, (long long)c->D_given);
	else if (c->L_given >= 0 && c->L_given != d->n_layers)
		rc = train_fail(ctx, "%s: n_layers is %d, the recipe says %lld (leave n_layers out to take the "
		                "model's)", shown, d->n_layers, (long long)c->L_given);
	else if (c->tk_given && strcmp(c->tk_given, tk))
		rc = train_fail(ctx, "%s: the tokenizer is %s, the recipe says %s (a model keeps its tokenizer)",
		                shown, tk, c->tk_given);
	else if (c->V_given >= 0 && (c->use_bpe ? c->V_given != d->V : c->V_given < d->V))
		rc = train_fail(ctx, "%s: vocab_size is %d, the recipe says %lld (%s)", shown, d->V,
		                (long long)c->V_given, c->use_bpe ? "a BPE model keeps its vocabulary"
		                                                  : "more characters than it allows");
	if (rc)
		goto out;
	c->d_model = d->D;
	c->n_layers = d->n_layers;
	c->vocab_size = d->V;
	free(c->base_abs);
	c->base_abs = realpath(path, NULL);
	if (!c->base_abs)
		c->base_abs = strdup(path);
	train_log(ctx, TRAIN_LOG_INFO, "starting from %s: %d blocks, d_model %d, %d %s tokens", path,
	          d->n_layers, d->D, d->V, tk);
out:
	if (tmp) {
		for (int k = 0; model_files[k]; k++) {
			char *fp = dir_path(tmp, model_files[k]);
			if (fp)
				unlink(fp);
			free(fp);
		}
		rmdir(tmp);
		free(tmp);
	}
	free(path);
	free(meta);
	free(node);
	free(dir);
	return rc;
}

static int mlm_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	(void)in;
	mlm *c = self;
	run R = { .c = c, .ctx = ctx, .best_loss = INFINITY };
	int32_t *text = NULL, *vtext = NULL, *tok = NULL, *ids = NULL, *tg = NULL;
	size_t ntext = 0, nvtext = 0;
	char *tpath = NULL, *vpath = NULL, *logpath = NULL;
	int rc = TRAIN_OK;
	char msg[256];
	examples ex_tr = { 0 }, ex_va = { 0 };
	size_t ntr = 0, nva = 0;
	int64_t row_len = c->max_length;
	int base = 0; /* starting from model_path: c->m holds it, and its tokenizer */

	if (c->sft) {
		/* examples: the train part, then the validation part, in one array */
		if ((rc = read_examples(train_values_get(in, "train"), "train", &ex_tr, ctx)) ||
		    (rc = read_examples(train_values_get(in, "validation"), "validation", &ex_va, ctx)))
			goto out;
		if (ex_tr.nex == 0) {
			rc = train_fail(ctx, "train: no examples");
			goto out;
		}
		if ((rc = build_vocab(c, ex_tr.cps, ex_tr.n, ctx)))
			goto out;
		size_t n = ex_tr.n + ex_va.n;
		tok = malloc((n + 1) * sizeof *tok);
		uint8_t *mk = malloc(n + 1);
		size_t *st = malloc((ex_tr.nex + ex_va.nex + 2) * sizeof *st);
		if (!tok || !mk || !st) {
			free(mk);
			free(st);
			rc = TRAIN_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < ex_tr.n; i++)
			tok[i] = mamba_char_id(c->vocab, c->nvocab, ex_tr.cps[i]);
		for (size_t i = 0; i < ex_va.n; i++)
			tok[ex_tr.n + i] = mamba_char_id(c->vocab, c->nvocab, ex_va.cps[i]);
		memcpy(mk, ex_tr.mask, ex_tr.n);
		if (ex_va.n)
			memcpy(mk + ex_tr.n, ex_va.mask, ex_va.n);
		for (size_t i = 0; i <= ex_tr.nex; i++)
			st[i] = ex_tr.starts[i];
		for (size_t i = 0; i <= ex_va.nex; i++)
			st[ex_tr.nex + 1 + i] = ex_tr.n + ex_va.starts[i];
		free(ex_tr.mask);
		free(ex_tr.starts);
		ex_tr.mask = mk;
		ex_tr.starts = st;
		R.tok = tok;
		R.mask = mk;
		R.tr_starts = st;
		R.ntr_ex = ex_tr.nex;
		R.va_starts = st + ex_tr.nex + 1;
		R.nva_ex = ex_va.nex;
		ntext = ex_tr.n;
		nvtext = ex_va.n;
		/* the longest example decides the row length, up to max_length */
		size_t longest = 1;
		for (size_t i = 0; i < ex_tr.nex + ex_va.nex; i++) {
			const size_t *s0 = i < ex_tr.nex ? &st[i] : &R.va_starts[i - ex_tr.nex];
			if (s0[1] - s0[0] > longest)
				longest = s0[1] - s0[0];
		}
		if ((int64_t)longest - 1 < row_len)
			row_len = (int64_t)longest > 1 ? (int64_t)longest - 1 : 1;
		ntr = ntext;
		nva = nvtext;
		goto data_ready;
	}
	if (!c->train_file) {
		rc = train_fail(ctx, "no train_file: MambaLM trains on a text file");
		goto out;
	}
	tpath = train_ctx_resolve(ctx, c->train_file);
	vpath = c->valid_file ? train_ctx_resolve(ctx, c->valid_file) : NULL;
	if (!tpath || (c->valid_file && !vpath)) {
		rc = train_fail(ctx, "cannot resolve the data files");
		goto out;
	}
	if (c->model_path) {
		if ((rc = load_base(c, ctx)))
			goto out;
		base = 1;
	}
	if (c->use_bpe) {
		if ((rc = bpe_tokens(c, tpath, vpath, !base, &tok, &ntr, &nva, ctx)))
			goto out;
		goto data_ready;
	}
	if ((rc = read_text(tpath, &text, &ntext, ctx)))
		goto out;
	if (vpath && (rc = read_text(vpath, &vtext, &nvtext, ctx)))
		goto out;
	if (!base && (rc = build_vocab(c, text, ntext, ctx)))
		goto out;
	/* tokens: train part, then validation part */
	ntr = ntext;
	nva = nvtext;
	if (!vpath) {
		nva = (size_t)((double)ntext * c->valid_split);
		ntr = ntext - nva;
	}
	tok = malloc((ntr + nva + 1) * sizeof *tok);
	if (!tok) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < ntext; i++)
		tok[i] = mamba_char_id(c->vocab, c->nvocab, text[i]);
	for (size_t i = 0; i < nvtext; i++)
		tok[ntext + i] = mamba_char_id(c->vocab, c->nvocab, vtext[i]);
data_ready:;
	const int32_t *tr = tok, *va = tok + ntr;
	int T = (int)row_len, B = (int)c->batch;
	R.T = T;
	if (!c->sft && ntr < (size_t)T + 2) {
		rc = train_fail(ctx, "%s: %zu training %s, fewer than max_length + 2 = %d",
		                c->train_file, ntr, c->use_bpe ? "tokens" : "characters", T + 2);
		goto out;
	}
	/* the kernels: threads and precision for this run */
	int threads = c->threads ? (int)c->threads : train_ctx_threads(ctx);
	if ((rc = train_kernels_init(threads, c->mixed ? TRAIN_PRECISION_AUTO : TRAIN_PRECISION_FP32)))
		goto out;
	mamba_dims d;
	if (base && c->lora) {
		/* the loaded model, frozen: no gradients of its own; the adapters' */
		R.m = c->m;
		c->m = NULL;
		if ((rc = mamba_lora_add(R.m, c->lora_kinds, c->lora_r, (float)c->lora_alpha,
		                         (float)c->lora_dropout, (uint64_t)c->seed))) {
			rc = train_fail(ctx, "cannot make the LoRA adapters (r %d): %s", c->lora_r, train_strerror(rc));
			goto out;
		}
		R.tp = R.m->lora->params;
		R.tg = R.m->lora->grads;
		R.nt = R.m->lora->n;
		R.tinfo = R.m->lora->info;
		R.ntinfo = 2 * (size_t)R.m->lora->n_mods;
	} else {
		if ((rc = mamba_dims_make(c->nvocab, (int)c->d_model, (int)c->n_layers, &d)))
			goto out;
		if (base)
			d = c->m->d;
		if ((rc = mamba_model_create(&d, 1, &R.m)))
			goto out;
		if (base) {
			memcpy(R.m->params, c->m->params, R.m->n_params * sizeof(float));
			mamba_model_destroy(c->m);
			c->m = NULL;
		}
		R.tp = R.m->params;
		R.tg = R.m->grads;
		R.nt = R.m->n_params;
		R.tinfo = R.m->info;
		R.ntinfo = R.m->n_info;
	}
	R.m->threads = threads;
	R.m->ckpt = c->ckpt;
	size_t trainable = 0;
	for (size_t i = 0; i < R.ntinfo; i++)
		trainable += R.tinfo[i].numel;
	R.mom = calloc(R.nt, sizeof(float));
	R.vel = calloc(R.nt, sizeof(float));
	R.best = calloc(R.nt, sizeof(float));
	ids = malloc((size_t)B * T * sizeof *ids);
	tg = malloc((size_t)B * T * sizeof *tg);
	R.log = json_pack("{s:[], s:[], s:[]}", "train", "validation", "validation_bpc");
	R.cc = char_counts(c);
	if (!R.mom || !R.vel || !R.best || !ids || !tg || !R.log || !R.cc) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	train_rng init_rng;
	train_rng_seed(&init_rng, (uint64_t)c->seed);
	if (!base)
		mamba_model_init(R.m, &init_rng);
	train_rng_seed(&R.rng, (uint64_t)c->seed ^ 0x9e3779b97f4a7c15ull);
	size_t per_step = (size_t)B * T * (size_t)c->gas;
	int64_t spe = c->sft ? (int64_t)(R.ntr_ex / ((size_t)B * (size_t)c->gas))
	                     : (int64_t)((ntr - 1) / per_step);
	if (spe < 1)
		spe = 1;
	R.total = c->skip ? 0 : c->max_steps > 0 ? c->max_steps : c->epochs * spe;
	R.fp = run_fingerprint(c, tr, ntr, va, nva);
	if (base) {
		/* the starting weights and the training type decide them too */
		train_hasher *h = NULL;
		if (!train_hasher_create(&h)) {
			char buf[160];
			train_hasher_update(h, &R.fp, sizeof R.fp);
			snprintf(buf, sizeof buf, "base1 lora%d r%d a%.17g p%.17g k%u", c->lora, c->lora_r,
			         c->lora_alpha, c->lora_dropout, c->lora_kinds);
			train_hasher_str(h, buf);
			train_hasher_update(h, R.m->params, R.m->n_params * sizeof(float));
			R.fp = train_hasher_digest(h);
			train_hasher_destroy(h);
		}
	}
	if (c->sft) {
		/* the masks and the example bounds decide the weights too */
		train_hasher *h = NULL;
		if (!train_hasher_create(&h)) {
			train_hasher_update(h, &R.fp, sizeof R.fp);
			train_hasher_str(h, "sft1");
			train_hasher_update(h, R.mask, ntr + nva);
			train_hasher_update(h, R.tr_starts, (R.ntr_ex + R.nva_ex + 2) * sizeof *R.tr_starts);
			R.fp = train_hasher_digest(h);
			train_hasher_destroy(h);
		}
	}
	/* checkpoints: in checkpoint_dir, else in the run's folder for this
	 * node (none: no checkpoints); continued from with --resume */
	const char *node = train_ctx_node(ctx);
	char *dir = c->ckpt_dir ? resolve_rel(ctx, c->ckpt_dir)
	                        : train_ctx_checkpoint_dir(ctx) ? strdup(train_ctx_checkpoint_dir(ctx))
	                                                        : NULL;
	if (dir) {
		size_t pl = strlen(dir) + strlen(node) + 32;
		if ((R.ckpt_path = malloc(pl)))
			snprintf(R.ckpt_path, pl, "%s/%s.safetensors", dir, node[0] ? node : "mamba");
	}
	if ((c->ckpt_dir || train_ctx_checkpoint_dir(ctx)) && !R.ckpt_path) {
		free(dir);
		rc = TRAIN_ENOMEM;
		goto out;
	}
	if (R.ckpt_path && train_ctx_resuming(ctx)) {
		int r = load_checkpoint(&R);
		if (r < 0) {
			free(dir);
			rc = r;
			goto out;
		}
		if (r > 0)
			train_log(ctx, TRAIN_LOG_INFO, "resuming from %s at step %lld of %lld", R.ckpt_path,
			          (long long)R.step, (long long)R.total);
	}
	if (c->ckpt_dir && R.step < R.total && (rc = make_dirs(dir))) {
		rc = train_fail(ctx, "cannot make %s: %s", dir, strerror(-rc));
		free(dir);
		goto out;
	}
	free(dir);
	train_kernels_weights_register(R.m->params, R.m->n_params);
	train_kernels_weights_changed(R.m->params);
	if (!json_is_array(json_object_get(R.log, "validation_bpc"))) /* a checkpoint's log without it */
		json_object_set_new(R.log, "validation_bpc", json_array());
	train_log(ctx, TRAIN_LOG_INFO, "%zu parameters (%zu trained%s), %d tokens, %zu training and %zu "
	          "validation %s, %lld steps of %zu tokens", R.m->n_params, trainable,
	          c->lora ? ": LoRA adapters" : "", c->nvocab, ntr, nva,
	          c->use_bpe ? "tokens" : "characters", (long long)R.total, per_step);
	train_adamw_cfg acfg = train_adamw_defaults();
	acfg.weight_decay = (float)c->wd;
	double t0 = now_s(), tlog = t0, train_secs = 0;
	int64_t tokens_done = 0, step0 = R.step;
	int tty = isatty(2);
	if (base && R.step == 0 && R.total > 0) {
		/* the model as loaded: where the run starts */
		double vl, vbpc;
		if ((rc = eval_loss(&R, va, nva, ids, tg, &vl, &vbpc)))
			goto out;
		if (isfinite(vl)) {
			log_point(R.log, "validation", 0, vl);
			if (isfinite(vbpc))
				log_point(R.log, "validation_bpc", 0, vbpc);
		}
		train_log(ctx, TRAIN_LOG_INFO, "step 0 (the loaded model): validation %.4f", vl);
	}
	while (R.step < R.total) {
		if (train_ctx_canceled(ctx) || (c->stop_at && R.step == c->stop_at)) {
			/* interrupted: keep where we are for --resume */
			if (R.ckpt_path && R.step > step0 && (rc = save_checkpoint(&R)))
				goto out;
			rc = TRAIN_ECANCELED;
			goto out;
		}
		double ts = now_s();
		float lr = train_lr_at(TRAIN_SCHED_COSINE, (float)c->lr, (float)c->lr * 0.1f, R.step,
		                       c->warmup, R.total);
		memset(R.tg, 0, R.nt * sizeof(float));
		if (R.m->lora)
			R.m->lora->training = 1;
		double lsum = 0;
		for (int64_t k = 0; k < c->gas; k++) {
			for (int b = 0; b < B; b++) {
				if (c->sft) {
					size_t ex = (size_t)train_rng_below(&R.rng, R.ntr_ex);
					example_row(tok, R.mask, R.tr_starts[ex], R.tr_starts[ex + 1], T,
					            ids + (size_t)b * T, tg + (size_t)b * T);
					continue;
				}
				size_t s = (size_t)train_rng_below(&R.rng, ntr - (size_t)T - 1);
				memcpy(ids + (size_t)b * T, tr + s, (size_t)T * sizeof *ids);
				memcpy(tg + (size_t)b * T, tr + s + 1, (size_t)T * sizeof *tg);
			}
			float loss;
			if ((rc = mamba_forward(R.m, ids, tg, B, T, &loss)) ||
			    (rc = mamba_backward(R.m, ids, tg, B, T, 1.0f / (float)c->gas)))
				goto out;
			lsum += loss;
		}
		double loss = lsum / (double)c->gas;
		if (!isfinite(loss)) {
			rc = train_fail(ctx, "the loss is not finite at step %lld: lower learning_rate",
			                (long long)R.step);
			goto out;
		}
		train_clip_grad_norm(R.tg, R.nt, 1.0f);
		train_adamw_step(&acfg, R.tp, R.tg, R.mom, R.vel, R.nt, lr,
		                 R.step + 1);
		train_kernels_weights_changed(R.m->params);
		R.step++;
		tokens_done += (int64_t)per_step;
		train_secs += now_s() - ts;
		log_point(R.log, "train", R.step, loss);
		int stop_time = c->max_seconds > 0 && now_s() - t0 >= c->max_seconds;
		if (stop_time)
			R.total = R.step;
		if ((c->eval_steps && R.step % c->eval_steps == 0) || R.step == R.total) {
			double vl, vbpc;
			if ((rc = eval_loss(&R, va, nva, ids, tg, &vl, &vbpc)))
				goto out;
			if (isfinite(vl)) {
				log_point(R.log, "validation", R.step, vl);
				if (isfinite(vbpc))
					log_point(R.log, "validation_bpc", R.step, vbpc);
				if (vl < R.best_loss) {
					R.best_loss = vl;
					R.best_step = R.step;
					memcpy(R.best, R.tp, R.nt * sizeof(float));
				}
			}
			double tps = train_secs > 0 ? tokens_done / train_secs : 0;
			double eta = tps > 0 ? (double)(R.total - R.step) * per_step / tps : 0;
			train_log(ctx, TRAIN_LOG_INFO, "step %lld/%lld: loss %.4f, validation %.4f (%.3f bits "
			          "per character), %.0f tokens/s, ETA %.0fs", (long long)R.step,
			          (long long)R.total, loss, vl, vbpc, tps, eta);
		}
		if (tty && now_s() - tlog > 0.5) {
			double tps = train_secs > 0 ? tokens_done / train_secs : 0;
			double eta = tps > 0 ? (double)(R.total - R.step) * per_step / tps : 0;
			int w = (int)(30 * R.step / (R.total ? R.total : 1));
			fprintf(stderr, "\r%s [%.*s%*s] %lld/%lld loss %.3f %.0f tok/s ETA %.0fs ", node,
			        w, "==============================", 30 - w, "", (long long)R.step,
			        (long long)R.total, loss, tps, eta);
			tlog = now_s();
		}
		train_progress_lr(ctx, (uint64_t)R.step, (uint64_t)R.total, loss, (double)lr);
		if (R.ckpt_path && c->save_steps && R.step % c->save_steps == 0 && R.step < R.total &&
		    (rc = save_checkpoint(&R)))
			goto out;
	}
	if (tty)
		fputc('\n', stderr);
	/* the result: the best parameters, else the last */
	if (R.best_step > 0)
		memcpy(R.tp, R.best, R.nt * sizeof(float));
	if (R.m->lora) {
		/* the adapters into the weights: the result is a plain MambaLM */
		mamba_lora_free(c->adapter);
		c->adapter = mamba_lora_merge(R.m);
		train_kernels_weights_changed(R.m->params);
	}
	json_object_set_new(R.log, "best", R.best_step > 0
	                    ? json_pack("{s:I, s:f}", "step", (json_int_t)R.best_step, "loss", R.best_loss)
	                    : json_null());
	/* the best step's bits per character (from the log: a resumed run has it too) */
	json_t *vb = json_object_get(R.log, "validation_bpc"), *pt;
	size_t vi;
	json_array_foreach(vb, vi, pt)
		if (json_integer_value(json_array_get(pt, 0)) == R.best_step)
			json_object_set(json_object_get(R.log, "best"), "bpc", json_array_get(pt, 1));
	json_object_set_new(R.log, "tokenizer", json_string(c->use_bpe ? "bpe" : "char"));
	if (c->use_bpe) {
		json_object_set_new(R.log, "tokenizer_seconds", json_real(c->bpe_secs));
		json_object_set_new(R.log, "merges", json_integer((json_int_t)c->bpe.n_merges));
	}
	json_object_set_new(R.log, "steps", json_integer(R.total));
	json_object_set_new(R.log, "training_type", json_string(c->lora ? "lora" : base ? "continued" : "full"));
	json_object_set_new(R.log, "trainable_parameters", json_integer((json_int_t)trainable));
	if (base)
		json_object_set_new(R.log, "base", json_string(c->base_abs ? c->base_abs : c->model_path));
	json_object_set_new(R.log, "parameters", json_integer((json_int_t)R.m->n_params));
	json_object_set_new(R.log, "vocabulary", json_integer(c->nvocab));
	json_object_set_new(R.log, "tokens_per_second",
	                    json_real(train_secs > 0 ? tokens_done / train_secs : 0));
	json_object_set_new(R.log, "resumed_at", json_integer(step0));
	free(c->log_json);
	c->log_json = json_dumps(R.log, JSON_COMPACT | JSON_REAL_PRECISION(9));
	if (!c->log_json) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	if (c->log_file) {
		logpath = resolve_rel(ctx, c->log_file);
		if (!logpath || write_file_atomic(logpath, c->log_json)) {
			rc = train_fail(ctx, "cannot write %s", logpath ? logpath : c->log_file);
			goto out;
		}
	}
	/* a finished run needs its checkpoint no more */
	if (R.ckpt_path)
		unlink(R.ckpt_path);
	if ((rc = train_values_put_bytes(out, "log", JSON_TYPE, c->log_json, strlen(c->log_json))))
		goto out;
	if (c->sft) {
		train_value *mv = NULL;
		train_error err = { 0 };
		char em[1024];
		if ((rc = mamba_value_make(R.m, c->vocab, c->nvocab, NULL, 0, "lm", &mv, &err)) ||
		    (rc = train_values_put_take(out, "model", mv))) {
			if (err.text[0])
				rc = train_fail(ctx, "%s", train_error_format(&err, em, sizeof em));
			goto out;
		}
	}
	mamba_model_destroy(c->m);
	c->m = R.m;
	R.m = NULL;
	(void)msg;
out:
	if (R.m)
		train_kernels_weights_unregister(R.m->params);
	else if (c->m)
		train_kernels_weights_unregister(c->m->params);
	mamba_model_destroy(R.m);
	free(R.mom);
	free(R.vel);
	free(R.best);
	free(R.ckpt_path);
	free(R.cc);
	json_decref(R.log);
	examples_free(&ex_tr);
	examples_free(&ex_va);
	free(text);
	free(vtext);
	free(tok);
	free(ids);
	free(tg);
	free(tpath);
	free(vpath);
	free(logpath);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* persist / load */

static char *res_path(const train_resource *res, const char *name)
{
	const char *d = train_resource_dir(res);
	size_t n = strlen(d) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", d, name);
	return p;
}

static int mlm_persist(void *self, train_resource *res)
{
	mlm *c = self;
	if (!c->m)
		return TRAIN_EINVAL;
	const mamba_model *m = c->m;
	train_named_tensor *nt = calloc(m->n_info, sizeof *nt);
	json_t *voc = json_array();
	char *vs = NULL, *path = res_path(res, WEIGHTS);
	int rc = TRAIN_ENOMEM;
	if (!nt || !voc || !path)
		goto out;
	for (size_t i = 0; i < m->n_info; i++) {
		const mamba_tensor_info *t = &m->info[i];
		nt[i].name = t->name;
		nt[i].t.dtype = TRAIN_F32;
		nt[i].t.ndim = t->ndim;
		for (int j = 0; j < 4; j++)
			nt[i].t.shape[j] = j < t->ndim ? t->shape[j] : 1;
		nt[i].t.data = m->params + t->offset;
	}
	char sv[24], sd[24], sl[24];
	snprintf(sv, sizeof sv, "%d", m->d.V);
	snprintf(sd, sizeof sd, "%d", m->d.D);
	snprintf(sl, sizeof sl, "%d", m->d.n_layers);
	/* a character model's file is as it always was: no "tokenizer" */
	const char *meta[] = { "format", MODEL_FORMAT, "version", "1", "vocab_size", sv, "d_model", sd,
		               "n_layers", sl, "d_state", "16", "d_conv", "4", "expand", "2",
		               c->use_bpe ? "tokenizer" : NULL, "bpe", NULL };
	train_error err = { 0 };
	if ((rc = train_safetensors_write(path, nt, m->n_info, meta, &err)))
		goto out;
	if (c->use_bpe) {
		/* GPT-2's vocab.json and merges.txt (bpe.h) */
		if ((rc = train_resource_write(res, "vocab.json", c->bpe.vocab_raw, c->bpe.vocab_raw_len)) ||
		    (rc = train_resource_write(res, "merges.txt", c->bpe.merges_raw, c->bpe.merges_raw_len)))
			goto out;
		goto log;
	}
	for (int i = 0; i < c->nvocab; i++) {
		if (c->vocab[i] < 0) {
			json_array_append_new(voc, json_null());
			continue;
		}
		char u[5];
		uint32_t v = (uint32_t)c->vocab[i];
		int k = v < 0x80 ? 1 : v < 0x800 ? 2 : v < 0x10000 ? 3 : 4;
		if (k == 1)
			u[0] = (char)v;
		else {
			for (int j = k - 1; j > 0; j--, v >>= 6)
				u[j] = (char)(0x80 | (v & 0x3F));
			u[0] = (char)((k == 2 ? 0xC0 : k == 3 ? 0xE0 : 0xF0) | v);
		}
		json_array_append_new(voc, json_stringn(u, (size_t)k));
	}
	vs = json_dumps(voc, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (!vs) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	if ((rc = train_resource_write(res, "vocab.json", vs, strlen(vs))))
		goto out;
log:
	/* LoRA: the model is merged; PEFT's adapter folder beside it on request */
	if (c->adapter && c->lora_save &&
	    (rc = mamba_lora_save(c->adapter, c->base_abs, train_resource_dir(res), &err)))
		goto out;
	if (c->log_json)
		rc = train_resource_write(res, "loss_log.json", c->log_json, strlen(c->log_json));
out:
	free(nt);
	json_decref(voc);
	free(vs);
	free(path);
	return rc;
}

static char *dir_path(const char *d, const char *name)
{
	size_t n = strlen(d) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", d, name);
	return p;
}

/* The whole of dir/name (NUL-terminated); TRAIN_ENOTFOUND when absent. */
static int read_dir_file(const char *dir, const char *name, char **out, size_t *len)
{
	char *p = dir_path(dir, name);
	if (!p)
		return TRAIN_ENOMEM;
	FILE *f = fopen(p, "rb");
	free(p);
	if (!f)
		return errno == ENOENT ? TRAIN_ENOTFOUND : TRAIN_EIO;
	char *buf = NULL;
	size_t n = 0, cap = 0;
	int rc = TRAIN_OK;
	for (;;) {
		if (n + 65536 + 1 > cap) {
			size_t nc = (n + 65536 + 1) * 2;
			char *nb = realloc(buf, nc);
			if (!nb) {
				rc = TRAIN_ENOMEM;
				break;
			}
			buf = nb;
			cap = nc;
		}
		size_t k = fread(buf + n, 1, 65536, f);
		n += k;
		if (k < 65536) {
			if (ferror(f))
				rc = TRAIN_EIO;
			break;
		}
	}
	fclose(f);
	if (rc) {
		free(buf);
		return rc;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return TRAIN_OK;
}

/*
 * A MambaLM's persisted files in `dir` (model.safetensors, vocab.json,
 * merges.txt for BPE) into c->m (with_grads), c->use_bpe, c->vocab or
 * c->bpe, c->nvocab.  Errors name the file (`shown` is the folder as the
 * user gave it, for messages).
 */
static int read_model_dir(mlm *c, const char *dir, const char *shown, int with_grads, train_ctx *ctx)
{
	char *path = dir_path(dir, WEIGHTS), *vs = NULL;
	train_safetensors *f = NULL;
	train_error err = { 0 };
	char msg[1024];
	json_t *voc = NULL;
	size_t vn;
	int rc = TRAIN_OK;
	if (!path)
		return TRAIN_ENOMEM;
	if ((rc = train_safetensors_open(path, &f, &err))) {
		rc = train_fail(ctx, "%s", train_error_format(&err, msg, sizeof msg));
		goto out;
	}
	const char *fmt = train_safetensors_meta(f, "format");
	const char *sv = train_safetensors_meta(f, "vocab_size"), *sd = train_safetensors_meta(f, "d_model");
	const char *sl = train_safetensors_meta(f, "n_layers");
	mamba_dims d;
	if (!fmt || strcmp(fmt, MODEL_FORMAT) || !sv || !sd || !sl ||
	    mamba_dims_make(atoi(sv), atoi(sd), atoi(sl), &d)) {
		rc = train_fail(ctx, "%s/%s: not a MambaLM model (version 1)", shown, WEIGHTS);
		goto out;
	}
	const char *tk = train_safetensors_meta(f, "tokenizer");
	if (tk && strcmp(tk, "char") && strcmp(tk, "bpe")) {
		rc = train_fail(ctx, "%s/%s: tokenizer \"%.40s\" is neither char nor bpe", shown, WEIGHTS, tk);
		goto out;
	}
	/* the files decide, whatever the config says */
	c->use_bpe = tk && !strcmp(tk, "bpe");
	mamba_model_destroy(c->m);
	c->m = NULL;
	if ((rc = mamba_model_create(&d, with_grads, &c->m)))
		goto out;
	for (size_t i = 0; i < c->m->n_info; i++) {
		const mamba_tensor_info *t = &c->m->info[i];
		train_tensor tt;
		if (train_safetensors_get(f, t->name, &tt) || tt.dtype != TRAIN_F32 ||
		    train_tensor_numel(&tt) != t->numel) {
			rc = train_fail(ctx, "%s/%s: %s missing or of another shape", shown, WEIGHTS, t->name);
			goto out;
		}
		memcpy(c->m->params + t->offset, tt.data, t->numel * sizeof(float));
	}
	if (c->use_bpe) {
		char *vp = dir_path(dir, "vocab.json"), *mp = dir_path(dir, "merges.txt");
		bpe_free(&c->bpe);
		c->bpe.eot = -1;
		rc = vp && mp ? bpe_load(vp, mp, 1, 1, &c->bpe, &err) : TRAIN_ENOMEM;
		free(vp);
		free(mp);
		if (rc) {
			if (err.text[0])
				rc = train_fail(ctx, "%s", train_error_format(&err, msg, sizeof msg));
			goto out;
		}
		if (c->bpe.n != (size_t)d.V) {
			rc = train_fail(ctx, "%s/vocab.json: %zu tokens, but %s has vocab_size %d", shown, c->bpe.n,
			                WEIGHTS, d.V);
			goto out;
		}
		c->nvocab = d.V;
		goto out;
	}
	if ((rc = read_dir_file(dir, "vocab.json", &vs, &vn))) {
		if (rc != TRAIN_ENOMEM)
			rc = train_fail(ctx, "%s/vocab.json: %s", shown,
			                rc == TRAIN_ENOTFOUND ? "missing (a MambaLM folder has it)" : "cannot read it");
		goto out;
	}
	voc = json_loads(vs, 0, NULL);
	if (!json_is_array(voc) || (int)json_array_size(voc) != d.V) {
		rc = train_fail(ctx, "%s/vocab.json: not a list of %d characters", shown, d.V);
		goto out;
	}
	c->nvocab = d.V;
	free(c->vocab);
	c->vocab = malloc((size_t)d.V * sizeof *c->vocab);
	if (!c->vocab) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	for (int i = 0; i < d.V; i++) {
		json_t *e = json_array_get(voc, (size_t)i);
		const unsigned char *s = (const unsigned char *)json_string_value(e);
		if (i == 0 ? !json_is_null(e) : !s || !s[0]) {
			rc = train_fail(ctx, "%s/vocab.json: entry %d is not a character", shown, i);
			goto out;
		}
		if (i == 0) {
			c->vocab[0] = -1;
			continue;
		}
		unsigned ch = s[0];
		int k = ch < 0x80 ? 1 : ch < 0xE0 ? 2 : ch < 0xF0 ? 3 : 4;
		uint32_t v = k == 1 ? ch : k == 2 ? ch & 0x1F : k == 3 ? ch & 0x0F : ch & 0x07;
		for (int j = 1; j < k && s[j]; j++)
			v = v << 6 | (s[j] & 0x3F);
		c->vocab[i] = (int32_t)v;
		if (i > 1 && c->vocab[i] <= c->vocab[i - 1]) {
			rc = train_fail(ctx, "%s/vocab.json: characters out of order at entry %d", shown, i);
			goto out;
		}
	}
out:
	train_safetensors_close(f);
	json_decref(voc);
	free(vs);
	free(path);
	return rc;
}

static int mlm_load(const train_config *cfg, const train_resource *res, train_ctx *ctx, void **self)
{
	mlm *c = NULL;
	int rc = mlm_config(cfg, ctx, &c);
	*self = NULL;
	if (rc)
		return rc;
	const char *dir = train_resource_dir(res);
	if ((rc = read_model_dir(c, dir, dir, 0, ctx))) {
		mlm_free(c);
		return rc;
	}
	char *lj = NULL;
	size_t ln;
	if (train_resource_read(res, "loss_log.json", (void **)&lj, &ln) == TRAIN_OK)
		c->log_json = lj;
	*self = c;
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------ */
/* generation */

static int put_utf8(char **out, size_t *len, size_t *cap, int32_t cp)
{
	if (*len + 5 > *cap) {
		size_t nc = (*cap + 5) * 2;
		char *nb = realloc(*out, nc);
		if (!nb)
			return TRAIN_ENOMEM;
		*out = nb;
		*cap = nc;
	}
	*len += (size_t)mamba_utf8_encode(cp, *out + *len);
	return TRAIN_OK;
}

/* Sample an id in [lo, V) from logits (V) with temperature and top-k
 * (lo 1 for characters: never the unknown one). */
static int32_t sample(float *logits, int V, int lo, double temp, int top_k, float *work, train_rng *r)
{
	if (lo)
		logits[0] = -INFINITY;
	int best = lo;
	for (int i = lo + 1; i < V; i++)
		if (logits[i] > logits[best])
			best = i;
	if (temp <= 0)
		return best;
	float cut = -INFINITY;
	if (top_k > 0 && top_k < V - lo) {
		memcpy(work, logits, (size_t)V * sizeof *work);
		/* the k-th largest by partial selection */
		for (int k = 0; k < top_k; k++) {
			int m = k;
			for (int i = k + 1; i < V; i++)
				if (work[i] > work[m])
					m = i;
			float t = work[k];
			work[k] = work[m];
			work[m] = t;
		}
		cut = work[top_k - 1];
	}
	double sum = 0;
	for (int i = 0; i < V; i++) {
		work[i] = logits[i] >= cut && i >= lo ? (float)exp((logits[i] - logits[best]) / temp) : 0.0f;
		sum += work[i];
	}
	double u = train_rng_uniform(r) * sum, acc = 0;
	for (int i = lo; i < V; i++) {
		acc += work[i];
		if (u < acc && work[i] > 0)
			return i;
	}
	return best;
}

/*
 * tokenizer: bpe.  The prompt's tokens fed one by one (no prompt: a line
 * end), then up to max_new tokens sampled (the end-of-text token ends
 * early); *text gets the prompt's bytes as given and the sampled tokens'
 * bytes, where a byte sequence that is not UTF-8 (sampling may cut a
 * character) becomes U+FFFD.
 */
static int bpe_generate(mlm *c, mamba_state *st, const char *p, size_t pn, double temp, int top_k,
                        int64_t max_new, float *work, train_rng *r, train_ctx *ctx, char **text,
                        size_t *len)
{
	size_t np = 0, ng = 0, gcap = 0, dl = 0;
	int32_t *ids = NULL, *gen = NULL;
	char *dec = NULL, *o = NULL;
	int rc = bpe_encode(&c->bpe, p, pn, NULL, 0, &np);
	if (rc)
		return rc;
	if (!(ids = malloc((np + 1) * sizeof *ids))) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	if ((rc = bpe_encode(&c->bpe, p, pn, ids, np, &np)))
		goto out;
	for (size_t i = 0; i < np && !rc; i++)
		rc = mamba_step(c->m, st, ids[i]);
	if (!np && !rc)
		rc = mamba_step(c->m, st, c->bpe.byte_sym['\n']);
	for (int64_t t = 0; t < max_new && !rc; t++) {
		int32_t id = sample(st->logits, c->m->d.V, 0, temp, top_k, work, r);
		if (id == c->bpe.eot)
			break;
		if (ng == gcap) {
			gcap = gcap ? 2 * gcap : 256;
			int32_t *g = realloc(gen, gcap * sizeof *g);
			if (!g) {
				rc = TRAIN_ENOMEM;
				break;
			}
			gen = g;
		}
		gen[ng++] = id;
		if (t + 1 < max_new)
			rc = mamba_step(c->m, st, id);
		if (!rc && train_ctx_canceled(ctx))
			rc = TRAIN_ECANCELED;
	}
	if (rc || (rc = bpe_decode(&c->bpe, gen, ng, &dec, &dl)))
		goto out;
	if (!(o = malloc(pn + 3 * dl + 1))) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	if (pn)
		memcpy(o, p, pn);
	size_t ol = pn;
	for (size_t q = 0; q < dl;) {
		size_t q0 = q;
		uint32_t ch = text_next(dec, dl, &q);
		if (ch >= 0x80 && q - q0 == 1) {
			memcpy(o + ol, "\xEF\xBF\xBD", 3);
			ol += 3;
		} else {
			memcpy(o + ol, dec + q0, q - q0);
			ol += q - q0;
		}
	}
	*text = o;
	*len = ol;
	o = NULL;
out:
	free(ids);
	free(gen);
	free(dec);
	free(o);
	return rc;
}

static int mlm_process(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	mlm *c = self;
	if (!c->m)
		return train_fail(ctx, "the model is not trained");
	gen_opts g = { c->temperature, c->top_k, c->seed, c->max_new };
	int grc = gen_opts_from_inputs(in, &g, 100000000, ctx);
	if (grc)
		return grc;
	double temp = g.temperature;
	int64_t top_k = g.top_k, seed = g.seed, max_new = g.max_new;
	const train_value *pv = train_values_get(in, "prompt");
	const unsigned char *p = pv ? train_value_data(pv) : NULL;
	size_t pn = pv ? train_value_size(pv) : 0;
	mamba_state st;
	int rc = mamba_state_create(c->m, &st);
	if (rc)
		return rc;
	char *text = NULL;
	size_t len = 0, cap = 0;
	float *work = malloc((size_t)c->m->d.V * sizeof *work);
	train_rng r;
	train_rng_seed(&r, (uint64_t)seed);
	if (!work)
		rc = TRAIN_ENOMEM;
	if (c->use_bpe) {
		if (!rc)
			rc = bpe_generate(c, &st, (const char *)p, pn, temp, (int)top_k, max_new, work, &r, ctx,
			                  &text, &len);
		goto done;
	}
	int32_t last = mamba_char_id(c->vocab, c->nvocab, '\n');
	/* the prompt, character by character (a bad UTF-8 byte counts as unknown) */
	for (size_t i = 0; i < pn && !rc;) {
		unsigned ch = p[i];
		int k = ch < 0x80 ? 1 : ch < 0xE0 ? 2 : ch < 0xF0 ? 3 : 4;
		if (i + (size_t)k > pn)
			k = 1;
		uint32_t v = k == 1 ? ch : k == 2 ? ch & 0x1F : k == 3 ? ch & 0x0F : ch & 0x07;
		for (int j = 1; j < k; j++)
			v = v << 6 | (p[i + j] & 0x3F);
		i += (size_t)k;
		if ((rc = put_utf8(&text, &len, &cap, (int32_t)v)))
			break;
		last = mamba_char_id(c->vocab, c->nvocab, (int32_t)v);
		rc = mamba_step(c->m, &st, last);
	}
	if (!pn && !rc) /* no prompt: start from a line end (or id 1) */
		rc = mamba_step(c->m, &st, last > 0 ? last : 1);
	for (int64_t t = 0; t < max_new && !rc; t++) {
		int32_t id = sample(st.logits, c->m->d.V, 1, temp, (int)top_k, work, &r);
		if (c->vocab[id] == MAMBA_EOT) /* the end of an answer (MambaSFT) */
			break;
		if ((rc = put_utf8(&text, &len, &cap, c->vocab[id])))
			break;
		if (t + 1 < max_new)
			rc = mamba_step(c->m, &st, id);
		if (!rc && train_ctx_canceled(ctx))
			rc = TRAIN_ECANCELED;
	}
done:
	if (!rc)
		rc = train_values_put_bytes(out, "text", TEXT_TYPE, text ? text : "", len);
	free(text);
	free(work);
	mamba_state_free(&st);
	return rc;
}

/* ------------------------------------------------------------------------ */

static const train_component_class mamba_lm = {
	.struct_size = sizeof(train_component_class),
	.name = "MambaLM",
	.version = "1",
	.doc = "a Mamba language model over characters or byte-level BPE tokens, trained from scratch or from a saved model, in full or with LoRA (issues 7, 10)",
	.inputs = NULL,
	.outputs = outputs,
	.process_inputs = proc_in,
	.process_outputs = proc_out,
	.params = params,
	.create = mlm_create,
	.train = mlm_train,
	.process = mlm_process,
	.persist = mlm_persist,
	.load = mlm_load,
	.destroy = mlm_destroy,
};

static const train_param sft_params[] = {
	{ "skip", TRAIN_PARAM_BOOL, "false", "train no step: the initialised model (rlhf's training.skip_sft)" },
	{ "vocab_size", TRAIN_PARAM_INT, "5000", "most tokens (characters + 1)" },
	{ "d_model", TRAIN_PARAM_INT, "256", "model width (a multiple of 8)" },
	{ "n_layers", TRAIN_PARAM_INT, "4", "Mamba blocks" },
	{ "max_length", TRAIN_PARAM_INT, "512", "longest example in tokens (longer ones are cut)" },
	{ "batch_size", TRAIN_PARAM_INT, "8", "examples per micro-batch" },
	{ "num_epochs", TRAIN_PARAM_INT, "10", "passes over the training examples" },
	{ "max_steps", TRAIN_PARAM_INT, "0", "optimizer steps; 0: num_epochs decides" },
	{ "max_seconds", TRAIN_PARAM_FLOAT, "0", "stop after this much training time (0: no limit; not reproducible)" },
	{ "learning_rate", TRAIN_PARAM_FLOAT, "0.001", "peak learning rate" },
	{ "mixed_precision", TRAIN_PARAM_BOOL, "false", "bf16 matmuls where the CPU has them" },
	{ "gradient_accumulation_steps", TRAIN_PARAM_INT, "1", "micro-batches per optimizer step" },
	{ "warmup_steps", TRAIN_PARAM_INT, "0", "linear warm-up steps" },
	{ "weight_decay", TRAIN_PARAM_FLOAT, "0.0", "AdamW's decoupled weight decay" },
	{ "eval_steps", TRAIN_PARAM_INT, "100", "validation every this many steps (0: only at the end)" },
	{ "eval_batches", TRAIN_PARAM_INT, "20", "validation batches per evaluation (0: every validation example)" },
	{ "save_steps", TRAIN_PARAM_INT, "0", "checkpoint every this many steps (0: never)" },
	{ "checkpoint_dir", TRAIN_PARAM_STRING, "~",
	  "checkpoints' folder, relative to the current one (null: the run's, in the cache)" },
	{ "log_file", TRAIN_PARAM_STRING, "~", "also write the JSON loss log here (relative to the current folder)" },
	{ "seed", TRAIN_PARAM_INT, "42", "seed of the initialisation and the data order" },
	{ "threads", TRAIN_PARAM_INT, "0", "threads (0: the node's share)" },
	{ "max_new_tokens", TRAIN_PARAM_INT, "200", "generation: tokens to sample" },
	{ "temperature", TRAIN_PARAM_FLOAT, "1.0", "generation: softmax temperature (0: greedy)" },
	{ "top_k", TRAIN_PARAM_INT, "0", "generation: sample among the k likeliest (0: all)" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

static const train_component_class mamba_sft = {
	.struct_size = sizeof(train_component_class),
	.name = "MambaSFT",
	.version = "1",
	.doc = "a Mamba language model fine-tuned on prompt/completion examples, loss on completions only (issue 9)",
	.inputs = sft_inputs,
	.outputs = sft_outputs,
	.process_inputs = proc_in,
	.process_outputs = proc_out,
	.params = sft_params,
	.create = sft_create,
	.train = mlm_train,
	.process = mlm_process,
	.persist = mlm_persist,
	.load = mlm_load,
	.destroy = mlm_destroy,
};

static const train_component_class *const classes[] = { &mamba_lm, &mamba_sft, NULL };
TRAIN_PLUGIN_DEFINE("mamba", "1.0.0", "MIT", "Mamba language models: from scratch, continued, or with LoRA", classes);
