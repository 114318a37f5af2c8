/*
 * plugins/bert/bert_plugin.c - the "bert" plugin (issue 7):
 *
 *   BertMaskedLM    -> model   masked-LM pretraining on a text corpus
 *                              (train_file: plain text, one text a line, or
 *                              JSON Lines with "text"), from scratch for a
 *                              built-in size (a WordPiece vocabulary is
 *                              learned from the corpus), or continuing a
 *                              local Hugging Face checkpoint
 *   BertClassifier  base -> model   sequence classification fine-tuning on
 *                              labelled JSON Lines ({"text", "label"})
 *                        report  application/json {"steps",
 *                              "steps_per_second", "best_val_loss",
 *                              "val_accuracy"} (the last two with
 *                              validation data)
 *                   text -> label   (process) {"name", "confidence", "ranking"}
 *
 * `model` values are a Hugging Face folder packed into one blob
 * (BERT_VALUE_TYPE); both components persist the folder itself
 * (config.json, vocab.txt, tokenizer_config.json, model.safetensors, and
 * loss_log.json), so a trained model opens in Python with transformers'
 * from_pretrained.  A rerun with nothing changed trains nothing, and
 * changing only the classifier's num_epochs keeps BertMaskedLM cached: the
 * classifier's settings are not part of the pretraining node.
 *
 * Checkpoints and resuming, as PPO and MambaLM: a checkpoint is written
 * every `save_steps` optimizer steps and when the run is interrupted, in
 * the run's checkpoint folder for the node (train_ctx_checkpoint_dir, in
 * the cache) or in `checkpoint_dir` when that is set; `train --resume`
 * (train_ctx_resuming) continues from one of the same run (same data,
 * settings and starting weights; bert_train.h).
 */
#include "bert_train.h"

#include <train/corpus.h>
#include <train/nn.h>
#include <train/plugin.h>

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define BERT_VALUE_TYPE "application/vnd.train.bert-hf"
#define PACK_MAGIC "libtrain.bert-hf 1\n"

static const char *const hf_files[] = { "config.json", "vocab.txt", "tokenizer_config.json",
                                        "model.safetensors", NULL };

#define TRAINING_PARAMS(EPOCHS, BATCH, LR) \
	{ "train_file", TRAIN_PARAM_PATH, "~", "the training data (required to train)" }, \
	{ "validation_file", TRAIN_PARAM_PATH, "~", "validation data (default: validation_split of train_file)" }, \
	{ "validation_split", TRAIN_PARAM_FLOAT, "0.1", "share of train_file held out when there is no validation_file" }, \
	{ "num_epochs", TRAIN_PARAM_INT, EPOCHS, "passes over the training data" }, \
	{ "batch_size", TRAIN_PARAM_INT, BATCH, "sequences per micro-batch" }, \
	{ "gradient_accumulation_steps", TRAIN_PARAM_INT, "1", "micro-batches per optimizer step" }, \
	{ "learning_rate", TRAIN_PARAM_FLOAT, LR, "AdamW's peak learning rate" }, \
	{ "warmup_steps", TRAIN_PARAM_INT, "0", "linear warm-up steps, then linear decay to 0" }, \
	{ "weight_decay", TRAIN_PARAM_FLOAT, "0.01", "AdamW's decoupled weight decay" }, \
	{ "dropout", TRAIN_PARAM_FLOAT, "0.1", "hidden dropout" }, \
	{ "max_length", TRAIN_PARAM_INT, "128", "tokens per sequence, [CLS] and [SEP] included" }, \
	{ "eval_steps", TRAIN_PARAM_INT, "0", "validation every this many steps (0: at the end)" }, \
	{ "save_steps", TRAIN_PARAM_INT, "0", "a checkpoint every this many steps (0: none)" }, \
	{ "checkpoint_dir", TRAIN_PARAM_STRING, "~", "where checkpoints go (relative to the recipe; null: the run's folder, in the cache); --resume continues from one" }, \
	{ "log_file", TRAIN_PARAM_STRING, "~", "also write the JSON loss log here" }, \
	{ "seed", TRAIN_PARAM_INT, "42", "initialisation, data order, masking, dropout" }, \
	{ "mixed_precision", TRAIN_PARAM_BOOL, "false", "bf16 matmuls where the CPU has them" }, \
	{ "gradient_checkpointing", TRAIN_PARAM_BOOL, "false", "keep only each layer's input and recompute its activations in backward (same gradients, less memory)" }

static const train_param mlm_params[] = {
	{ "base_model", TRAIN_PARAM_STRING, "bert-tiny",
	  "bert-tiny, bert-mini, bert-small, bert-base (from scratch) or a local Hugging Face folder" },
	{ "vocab_size", TRAIN_PARAM_INT, "8000", "from scratch: WordPiece vocabulary entries to learn" },
	{ "lowercase", TRAIN_PARAM_BOOL, "true", "from scratch: lower-case and strip accents" },
	{ "num_epochs_checkpoint", TRAIN_PARAM_INT, "0",
	  "MLM epochs on a local checkpoint (0: pass it on as it is)" },
	{ "mask_prob", TRAIN_PARAM_FLOAT, "0.15", "share of tokens predicted" },
	TRAINING_PARAMS("3", "32", "0.0001"),
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

static const train_param cls_params[] = {
	{ "num_labels", TRAIN_PARAM_INT, "0", "classifier outputs (0: the labels of the data)" },
	{ "training_type", TRAIN_PARAM_STRING, "full", "full (every weight) or lora (adapters and the classifier; the base frozen)" },
	{ "lora_r", TRAIN_PARAM_INT, "~", "LoRA rank (default 16; lora only)" },
	{ "lora_alpha", TRAIN_PARAM_FLOAT, "~", "LoRA alpha: the update is scaled by alpha / r (default 32)" },
	{ "lora_dropout", TRAIN_PARAM_FLOAT, "~", "dropout on the adapters' input (default 0.1)" },
	{ "lora_target_modules", TRAIN_PARAM_LIST, "~", "projections to adapt: query, key, value, attention.output.dense, intermediate.dense, output.dense (default [query, value])" },
	{ "lora_merge", TRAIN_PARAM_BOOL, "~", "fold the adapters into the weights and save the whole model (default true); false: the base's files unchanged plus PEFT's adapter_config.json and adapter_model.safetensors" },
	{ "lora_seed", TRAIN_PARAM_INT, "~", "the adapters' A (default: seed)" },
	TRAINING_PARAMS("3", "16", "0.00005"),
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

typedef struct comp {
	int mlm;
	char *base_model;        /* resolved local folder, or a built-in name */
	int builtin;
	bert_config builtin_cfg;
	char *train_file, *val_file, *ckpt_dir, *log_file;
	double val_split, lr, wd, dropout, mask_prob;
	int epochs, epochs_ckpt, batch, accum, warmup, max_len, eval_steps, save_steps, mixed;
	int vocab_size, lowercase, num_labels;
	uint64_t seed;
	int ckpt;
	/* LoRA (BertClassifier, training_type lora) */
	int lora, lora_r, lora_merge;
	unsigned lora_kinds;
	double lora_alpha, lora_dropout;
	uint64_t lora_seed;
	/* trained */
	bert_model *m;
	bert_vocab v;
	char **labels;
	int n_labels;
	char *log_json;
	char *report;  /* BertClassifier's "report" output: the run's numbers */
	bert_acts acts;
} comp;

static void comp_destroy(void *self)
{
	comp *c = self;
	if (!c)
		return;
	free(c->base_model);
	free(c->train_file);
	free(c->val_file);
	free(c->ckpt_dir);
	free(c->log_file);
	bert_model_destroy(c->m);
	bert_vocab_free(&c->v);
	for (int i = 0; i < c->n_labels; i++)
		free(c->labels[i]);
	free(c->labels);
	free(c->log_json);
	free(c->report);
	bert_acts_free(&c->acts);
	free(c);
}

static char *opt_path(const train_config *cfg, const char *key, train_ctx *ctx)
{
	const train_config *n = train_config_get(cfg, key);
	if (!n || train_config_kind(n) == TRAIN_CFG_NULL)
		return NULL;
	return train_ctx_resolve(ctx, train_config_as_string(n));
}

static int comp_create_common(const train_config *cfg, train_ctx *ctx, int mlm, comp **out)
{
	comp *c = calloc(1, sizeof *c);
	if (!c)
		return TRAIN_ENOMEM;
	c->mlm = mlm;
	c->train_file = opt_path(cfg, "train_file", ctx);
	c->val_file = opt_path(cfg, "validation_file", ctx);
	c->ckpt_dir = opt_path(cfg, "checkpoint_dir", ctx);
	c->log_file = opt_path(cfg, "log_file", ctx);
	c->val_split = train_config_float(cfg, "validation_split");
	c->epochs = (int)train_config_int(cfg, "num_epochs");
	c->batch = (int)train_config_int(cfg, "batch_size");
	c->accum = (int)train_config_int(cfg, "gradient_accumulation_steps");
	c->lr = train_config_float(cfg, "learning_rate");
	c->warmup = (int)train_config_int(cfg, "warmup_steps");
	c->wd = train_config_float(cfg, "weight_decay");
	c->dropout = train_config_float(cfg, "dropout");
	c->max_len = (int)train_config_int(cfg, "max_length");
	c->eval_steps = (int)train_config_int(cfg, "eval_steps");
	c->save_steps = (int)train_config_int(cfg, "save_steps");
	c->seed = (uint64_t)train_config_int(cfg, "seed");
	c->mixed = train_config_bool(cfg, "mixed_precision");
	c->ckpt = train_config_bool(cfg, "gradient_checkpointing");
	*out = c;
#define NEED(cond, ...) if (!(cond)) return train_fail(ctx, __VA_ARGS__)
	NEED(c->epochs >= 0 && c->epochs <= 100000, "num_epochs must be between 0 and 100000, not %d", c->epochs);
	NEED(c->batch >= 1 && c->batch <= 65536, "batch_size must be between 1 and 65536, not %d", c->batch);
	NEED(c->accum >= 1 && c->accum <= 65536, "gradient_accumulation_steps must be at least 1, not %d", c->accum);
	NEED(c->lr > 0 && isfinite(c->lr), "learning_rate must be positive");
	NEED(c->warmup >= 0, "warmup_steps must not be negative");
	NEED(c->wd >= 0 && isfinite(c->wd), "weight_decay must not be negative");
	NEED(c->dropout >= 0 && c->dropout < 1, "dropout must be in [0, 1)");
	NEED(c->val_split >= 0 && c->val_split < 1, "validation_split must be in [0, 1)");
	NEED(c->max_len >= 3 && c->max_len <= 4096, "max_length must be between 3 and 4096, not %d", c->max_len);
	NEED(c->eval_steps >= 0 && c->save_steps >= 0, "eval_steps and save_steps must not be negative");
#undef NEED
	return TRAIN_OK;
}

static int resolve_base(comp *c, const train_config *cfg, train_ctx *ctx)
{
	const char *bm = train_config_string(cfg, "base_model");
	memset(&c->builtin_cfg, 0, sizeof c->builtin_cfg);
	if (bert_builtin_config(bm, &c->builtin_cfg) == 0) {
		c->builtin = 1;
		c->base_model = strdup(bm);
		return c->base_model ? TRAIN_OK : TRAIN_ENOMEM;
	}
	char *dir = train_ctx_resolve(ctx, bm);
	struct stat sb;
	if (!dir || stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		free(dir);
		return train_fail(ctx,
		                  "base_model \"%s\" is neither a built-in size (bert-tiny, bert-mini, bert-small, "
		                  "bert-base) nor a local folder holding a Hugging Face BERT checkpoint (config.json, "
		                  "vocab.txt, model.safetensors); nothing is downloaded: fetch it first and give its folder",
		                  bm);
	}
	c->base_model = dir;
	return TRAIN_OK;
}

static int mlm_create(const train_config *cfg, train_ctx *ctx, void **self)
{
	comp *c;
	int rc = comp_create_common(cfg, ctx, 1, &c);
	*self = c;
	if (rc)
		return rc;
	c->vocab_size = (int)train_config_int(cfg, "vocab_size");
	c->lowercase = train_config_bool(cfg, "lowercase");
	c->epochs_ckpt = (int)train_config_int(cfg, "num_epochs_checkpoint");
	c->mask_prob = train_config_float(cfg, "mask_prob");
	if (c->vocab_size < 16 || c->vocab_size > 1000000)
		return train_fail(ctx, "vocab_size must be between 16 and 1000000, not %d", c->vocab_size);
	if (!(c->mask_prob > 0 && c->mask_prob < 1))
		return train_fail(ctx, "mask_prob must be in (0, 1)");
	if (c->epochs_ckpt < 0)
		return train_fail(ctx, "num_epochs_checkpoint must not be negative");
	return resolve_base(c, cfg, ctx);
}

static int is_set(const train_config *cfg, const char *key)
{
	const train_config *n = train_config_get(cfg, key);
	return n && train_config_kind(n) != TRAIN_CFG_NULL;
}

/* training_type and the lora_* keys: each checked, LoRA keys only with lora. */
static int lora_config(comp *c, const train_config *cfg, train_ctx *ctx)
{
	static const char *const keys[] = { "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules",
	                                    "lora_merge", "lora_seed" };
	const char *tt = train_config_string(cfg, "training_type");
	if (!tt || (strcmp(tt, "full") && strcmp(tt, "lora")))
		return train_fail(ctx, "training_type '%.40s' is not one of full, lora", tt ? tt : "");
	c->lora = !strcmp(tt, "lora");
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (!c->lora && is_set(cfg, keys[i]))
			return train_fail(ctx, "%s is a LoRA setting and training_type is full: remove it or set "
			                  "training_type: lora", keys[i]);
	c->lora_r = is_set(cfg, "lora_r") ? (int)train_config_int(cfg, "lora_r") : 16;
	c->lora_alpha = is_set(cfg, "lora_alpha") ? train_config_float(cfg, "lora_alpha") : 32.0;
	c->lora_dropout = is_set(cfg, "lora_dropout") ? train_config_float(cfg, "lora_dropout") : 0.1;
	c->lora_merge = is_set(cfg, "lora_merge") ? train_config_bool(cfg, "lora_merge") : 1;
	c->lora_seed = is_set(cfg, "lora_seed") ? (uint64_t)train_config_int(cfg, "lora_seed") : c->seed;
	if (c->lora_r < 1 || c->lora_r > 4096)
		return train_fail(ctx, "lora_r must be from 1 to 4096, not %d", c->lora_r);
	if (!(c->lora_alpha > 0 && c->lora_alpha < 1e6))
		return train_fail(ctx, "lora_alpha must be positive");
	if (!(c->lora_dropout >= 0 && c->lora_dropout < 1))
		return train_fail(ctx, "lora_dropout must be in [0, 1)");
	c->lora_kinds = 1u << BERT_Q | 1u << BERT_V;
	const train_config *l = train_config_get(cfg, "lora_target_modules");
	if (l && train_config_kind(l) != TRAIN_CFG_NULL) {
		size_t n = train_config_len(l);
		if (train_config_kind(l) != TRAIN_CFG_LIST || n == 0)
			return train_fail(ctx, "lora_target_modules must be a list naming at least one projection");
		c->lora_kinds = 0;
		for (size_t i = 0; i < n; i++) {
			const train_config *e = train_config_at(l, i);
			const char *name = e && train_config_kind(e) == TRAIN_CFG_STRING ? train_config_as_string(e) : NULL;
			int k = name ? bert_lora_kind(name) : -1;
			if (k < 0)
				return train_fail(ctx, "lora_target_modules: entry %zu (%.64s) is not one of query, key, "
				                  "value, attention.output.dense, intermediate.dense, output.dense",
				                  i + 1, name ? name : "not a string");
			c->lora_kinds |= 1u << k;
		}
	}
	return TRAIN_OK;
}

static int cls_create(const train_config *cfg, train_ctx *ctx, void **self)
{
	comp *c;
	int rc = comp_create_common(cfg, ctx, 0, &c);
	*self = c;
	if (rc)
		return rc;
	c->num_labels = (int)train_config_int(cfg, "num_labels");
	if (c->num_labels < 0 || c->num_labels > 100000)
		return train_fail(ctx, "num_labels must be between 0 and 100000, not %d", c->num_labels);
	return lora_config(c, cfg, ctx);
}

/* A local base_model folder's content decides the output; its path does not. */
static int mlm_fingerprint(void *self, train_hasher *h)
{
	comp *c = self;
	train_error err;
	if (c->builtin || !c->base_model)
		return TRAIN_OK;
	return train_hasher_path(h, c->base_model, &err);
}

/* ---- data ------------------------------------------------------------------------ */

typedef struct strvec {
	char **s;
	size_t n, cap;
} strvec;

static void strvec_free(strvec *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->s[i]);
	free(v->s);
	memset(v, 0, sizeof *v);
}

static int strvec_push(strvec *v, const char *s)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 256;
		char **x = realloc(v->s, cap * sizeof *x);
		if (!x)
			return TRAIN_ENOMEM;
		v->s = x;
		v->cap = cap;
	}
	if (!(v->s[v->n] = strdup(s)))
		return TRAIN_ENOMEM;
	v->n++;
	return TRAIN_OK;
}

/* Texts (and labels, for examples) of a file. */
static int read_texts(const char *path, int examples, strvec *texts, strvec *labels, train_ctx *ctx)
{
	train_corpus_options opt = TRAIN_CORPUS_OPTIONS_INIT;
	train_corpus *r;
	const train_record *rec;
	train_error err = { 0 };
	opt.skip_blank = 1;
	if (examples) {
		opt.format = TRAIN_CORPUS_JSONL;
		opt.schema = TRAIN_JSONL_EXAMPLES;
	}
	int rc = train_corpus_open(path, &opt, &r, &err);
	if (rc)
		return train_fail(ctx, "%s: %s", path, err.text[0] ? err.text : train_strerror(rc));
	while ((rc = train_corpus_next(r, &rec, &err)) > 0) {
		if (!rec->text_len)
			continue;
		if ((rc = strvec_push(texts, rec->text)) ||
		    (labels && (rc = strvec_push(labels, rec->label ? rec->label : ""))))
			break;
	}
	train_corpus_close(r);
	if (rc < 0) {
		if (err.file[0])
			return train_fail(ctx, "%s:%u: %s", err.file, err.line, err.text);
		return train_fail(ctx, "%s: %s", path, train_strerror(rc));
	}
	if (texts->n == 0)
		return train_fail(ctx, "%s: no texts", path);
	return TRAIN_OK;
}

/* Split order: a seeded shuffle; the last share is validation. */
static void split_order(size_t *order, size_t n, uint64_t seed)
{
	train_rng r;
	train_rng_seed(&r, seed ^ 0x5B1175B1ull);
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)train_rng_below(&r, i);
		size_t t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int label_index(char **labels, int n, const char *s)
{
	char *const *hit = bsearch(&s, labels, (size_t)n, sizeof *labels, cmp_str);
	return hit ? (int)(hit - labels) : -1;
}

/* train/validation data from the files, tokenized. */
static int load_data(comp *c, bert_data *tr, bert_data *va, train_ctx *ctx)
{
	strvec t = { 0 }, l = { 0 }, vt = { 0 }, vl = { 0 };
	size_t *order = NULL;
	int rc;
	if (!c->train_file)
		return train_fail(ctx, "train_file is required to train");
	if ((rc = read_texts(c->train_file, !c->mlm, &t, c->mlm ? NULL : &l, ctx)))
		goto out;
	if (c->val_file && (rc = read_texts(c->val_file, !c->mlm, &vt, c->mlm ? NULL : &vl, ctx)))
		goto out;
	if (!c->mlm && !c->labels) {
		/* the label set: sorted distinct labels of the training data */
		char **sorted = malloc(t.n * sizeof *sorted);
		if (!sorted) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		memcpy(sorted, l.s, t.n * sizeof *sorted);
		qsort(sorted, t.n, sizeof *sorted, cmp_str);
		int n = 0;
		for (size_t i = 0; i < t.n; i++)
			if (i == 0 || strcmp(sorted[i], sorted[i - 1]))
				sorted[n++] = sorted[i];
		if (c->num_labels && c->num_labels < n) {
			free(sorted);
			rc = train_fail(ctx, "num_labels is %d but %s has %d labels", c->num_labels, c->train_file, n);
			goto out;
		}
		c->n_labels = c->num_labels ? c->num_labels : n;
		c->labels = calloc((size_t)c->n_labels, sizeof *c->labels);
		for (int i = 0; c->labels && i < c->n_labels; i++) {
			char name[32];
			snprintf(name, sizeof name, "LABEL_%d", i);
			c->labels[i] = strdup(i < n ? sorted[i] : name);
		}
		free(sorted);
		if (!c->labels) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		/* LABEL_k names sort after real labels only by chance: keep order sorted */
		qsort(c->labels, (size_t)c->n_labels, sizeof *c->labels, cmp_str);
	}
	size_t n = t.n, nval = 0;
	if (!c->val_file) {
		nval = (size_t)floor(c->val_split * (double)n);
		if (c->val_split > 0 && nval == 0 && n >= 2)
			nval = 1;
	}
	if (!(order = malloc(n * sizeof *order))) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	split_order(order, n, c->seed);
	if (nval == 0)
		for (size_t i = 0; i < n; i++)
			order[i] = i;
	for (size_t k = 0; k < n; k++) {
		size_t i = order[k];
		int lab = c->mlm ? 0 : label_index(c->labels, c->n_labels, l.s[i]);
		if (lab < 0) {
			rc = train_fail(ctx, "%s: label \"%s\" is not among the model's labels", c->train_file, l.s[i]);
			goto out;
		}
		if ((rc = bert_data_add(k < n - nval ? tr : va, &c->v, t.s[i], strlen(t.s[i]), c->max_len, lab)))
			goto out;
	}
	for (size_t i = 0; i < vt.n; i++) {
		int lab = c->mlm ? 0 : label_index(c->labels, c->n_labels, vl.s[i]);
		if (lab < 0) {
			rc = train_fail(ctx, "%s: label \"%s\" is not among the training labels", c->val_file, vl.s[i]);
			goto out;
		}
		if ((rc = bert_data_add(va, &c->v, vt.s[i], strlen(vt.s[i]), c->max_len, lab)))
			goto out;
	}
out:
	free(order);
	strvec_free(&t);
	strvec_free(&l);
	strvec_free(&vt);
	strvec_free(&vl);
	return rc;
}

/* ---- model values: a packed HF folder --------------------------------------------- */

static char *make_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *d = malloc(4096);
	if (!d)
		return NULL;
	snprintf(d, 4096, "%s/train-bert-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(d)) {
		free(d);
		return NULL;
	}
	return d;
}

static void rm_tmpdir(char *d)
{
	if (!d)
		return;
	char p[4200];
	for (int i = 0; hf_files[i]; i++) {
		snprintf(p, sizeof p, "%s/%s", d, hf_files[i]);
		unlink(p);
	}
	rmdir(d);
	free(d);
}

static int slurp(const char *path, char **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -errno;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = n >= 0 ? malloc((size_t)n + 1) : NULL;
	int rc = b && fread(b, 1, (size_t)n, f) == (size_t)n ? TRAIN_OK : TRAIN_EIO;
	fclose(f);
	if (rc) {
		free(b);
		return rc;
	}
	*out = b;
	*len = (size_t)n;
	return TRAIN_OK;
}

/* The model's Hugging Face folder: with adapters, merged (folded into a
 * copy of the weights, which are then put back) or, !merged, the base's
 * files unchanged beside PEFT's adapter files. */
static int save_folder(comp *c, const char *dir, int merged, train_error *err)
{
	bert_model *m = c->m;
	const char *const *labels = (const char *const *)c->labels;
	if (!m->lora)
		return bert_hf_save(m, &c->v, labels, dir, err);
	if (!merged) {
		int rc = bert_hf_save(m, &c->v, labels, dir, err);
		return rc ? rc : bert_adapter_save(m, c->base_model ? c->base_model : "", dir, err);
	}
	float *keep = malloc(m->n_params * sizeof *keep);
	if (!keep)
		return train_error_set(err, TRAIN_ENOMEM, dir, 0, 0, "out of memory");
	memcpy(keep, m->params, m->n_params * sizeof *keep);
	bert_lora_fold(m);
	int rc = bert_hf_save(m, &c->v, labels, dir, err);
	memcpy(m->params, keep, m->n_params * sizeof *keep);
	free(keep);
	return rc;
}

static int pack_model(comp *c, train_value **out, train_ctx *ctx)
{
	char *d = make_tmpdir(), *buf = NULL;
	train_error err = { 0 };
	size_t len = 0, cap = 0;
	int rc;
	if (!d)
		return train_fail(ctx, "cannot make a temporary folder");
	if ((rc = save_folder(c, d, 1, &err))) {
		rc = train_fail(ctx, "%s: %s", err.file, err.text);
		goto out;
	}
	cap = strlen(PACK_MAGIC);
	if (!(buf = malloc(cap))) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	memcpy(buf, PACK_MAGIC, cap);
	len = cap;
	for (int i = 0; hf_files[i]; i++) {
		char p[4200], head[256], *data = NULL;
		size_t n = 0;
		snprintf(p, sizeof p, "%s/%s", d, hf_files[i]);
		if ((rc = slurp(p, &data, &n)))
			goto out;
		int hl = snprintf(head, sizeof head, "%s\n%zu\n", hf_files[i], n);
		char *nb = realloc(buf, len + (size_t)hl + n);
		if (!nb) {
			free(data);
			rc = TRAIN_ENOMEM;
			goto out;
		}
		buf = nb;
		memcpy(buf + len, head, (size_t)hl);
		memcpy(buf + len + hl, data, n);
		len += (size_t)hl + n;
		free(data);
	}
	rc = train_value_new_take(BERT_VALUE_TYPE, buf, len, out);
	buf = NULL;
out:
	free(buf);
	rm_tmpdir(d);
	return rc;
}

/* Unpack a model value into a fresh temporary folder (the caller removes it). */
static int unpack_model(const train_value *val, char **dir_out, train_ctx *ctx)
{
	const char *p = train_value_data(val), *end = p + train_value_size(val);
	size_t ml = strlen(PACK_MAGIC);
	*dir_out = NULL;
	if (strcmp(train_value_type(val), BERT_VALUE_TYPE) || (size_t)(end - p) < ml || memcmp(p, PACK_MAGIC, ml))
		return train_fail(ctx, "base: not a BERT model value (connect a BertMaskedLM node)");
	char *d = make_tmpdir();
	if (!d)
		return train_fail(ctx, "cannot make a temporary folder");
	p += ml;
	for (int i = 0; hf_files[i]; i++) {
		size_t nl = strlen(hf_files[i]);
		char *e;
		if ((size_t)(end - p) < nl + 2 || memcmp(p, hf_files[i], nl) || p[nl] != '\n')
			goto bad;
		p += nl + 1;
		errno = 0;
		unsigned long long n = strtoull(p, &e, 10);
		if (e == p || *e != '\n' || errno || n > (unsigned long long)(end - e - 1))
			goto bad;
		p = e + 1;
		char path[4200];
		snprintf(path, sizeof path, "%s/%s", d, hf_files[i]);
		FILE *f = fopen(path, "wb");
		int ok = f && fwrite(p, 1, (size_t)n, f) == (size_t)n;
		if (f)
			ok &= fclose(f) == 0;
		if (!ok) {
			rm_tmpdir(d);
			return train_fail(ctx, "%s: cannot write", path);
		}
		p += n;
	}
	*dir_out = d;
	return TRAIN_OK;
bad:
	rm_tmpdir(d);
	return train_fail(ctx, "base: a damaged BERT model value");
}

/* ---- training ------------------------------------------------------------------------ */

static int run(comp *c, bert_data *tr, bert_data *va, int epochs, train_ctx *ctx)
{
	bert_run_opts o = { .mlm = c->mlm, .batch_size = c->batch, .num_epochs = epochs,
	                    .grad_accum = c->accum, .warmup_steps = c->warmup, .eval_steps = c->eval_steps,
	                    .save_steps = c->save_steps, .learning_rate = c->lr, .weight_decay = c->wd,
	                    .dropout = c->dropout, .mask_prob = c->mask_prob, .seed = c->seed,
	                    .mixed_precision = c->mixed, .gradient_checkpointing = c->ckpt,
	                    .checkpoint_dir = c->ckpt_dir ? c->ckpt_dir : train_ctx_checkpoint_dir(ctx),
	                    .resume = train_ctx_resuming(ctx),
	                    .log_path = c->log_file, .threads = train_ctx_threads(ctx) };
	bert_run_result res;
	if (c->ckpt_dir && mkdir(c->ckpt_dir, 0777) != 0 && errno != EEXIST)
		return train_fail(ctx, "%s: cannot create: %s", c->ckpt_dir, strerror(errno));
	int rc = bert_train_run(c->m, &c->v, tr, va, &o, ctx, &res);
	if (rc == TRAIN_OK) {
		free(c->log_json);
		c->log_json = res.log_json;
		/* the numbers (NaN, without validation data, is left out) */
		json_t *r = json_pack("{s:I, s:f}", "steps", (json_int_t)res.steps, "steps_per_second",
		                      res.steps_per_second);
		if (r && isfinite(res.best_val_loss))
			json_object_set_new(r, "best_val_loss", json_real(res.best_val_loss));
		if (r && isfinite(res.val_accuracy))
			json_object_set_new(r, "val_accuracy", json_real(res.val_accuracy));
		free(c->report);
		c->report = r ? json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
		json_decref(r);
		if (!c->report)
			return TRAIN_ENOMEM;
		if (c->mlm)
			train_log(ctx, TRAIN_LOG_INFO, "%lld steps, %.2f steps/s, best validation loss %.4f",
			          (long long)res.steps, res.steps_per_second, res.best_val_loss);
		else
			train_log(ctx, TRAIN_LOG_INFO,
			          "%lld steps, %.2f steps/s, best validation loss %.4f, accuracy %.4f",
			          (long long)res.steps, res.steps_per_second, res.best_val_loss, res.val_accuracy);
	} else {
		free(res.log_json);
	}
	return rc;
}

static int mlm_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	comp *c = self;
	bert_data tr = { 0 }, va = { 0 };
	train_error err = { 0 };
	strvec texts = { 0 };
	int rc, epochs = c->epochs;
	(void)in;
	if (c->builtin) {
		/* a vocabulary from the corpus, then a fresh model of the size */
		if (!c->train_file) {
			rc = train_fail(ctx, "train_file is required to train");
			goto out;
		}
		if ((rc = read_texts(c->train_file, 0, &texts, NULL, ctx)) ||
		    (rc = bert_vocab_train((const char *const *)texts.s, texts.n, (size_t)c->vocab_size, c->lowercase,
		                           &c->v)))
			goto out;
		bert_config cfg = c->builtin_cfg;
		cfg.vocab_size = (int)c->v.n;
		cfg.mlm_head = 1;
		if (c->max_len > cfg.max_position) {
			rc = train_fail(ctx, "max_length %d is more than the model's %d positions", c->max_len,
			                cfg.max_position);
			goto out;
		}
		if ((rc = bert_model_create(&cfg, &c->m)))
			goto out;
		bert_model_init(c->m, c->seed);
	} else {
		if ((rc = bert_hf_load(c->base_model, 0, 1, c->seed, &c->m, &c->v, &err))) {
			rc = train_fail(ctx, "%s: %s", err.file, err.text);
			goto out;
		}
		epochs = c->epochs_ckpt;
	}
	if (epochs > 0) {
		if ((rc = load_data(c, &tr, &va, ctx)) || (rc = run(c, &tr, &va, epochs, ctx)))
			goto out;
	}
	train_value *v;
	if ((rc = pack_model(c, &v, ctx)) || (rc = train_values_put_take(out, "model", v)))
		goto out;
out:
	strvec_free(&texts);
	bert_data_free(&tr);
	bert_data_free(&va);
	return rc;
}

static int cls_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	comp *c = self;
	bert_data tr = { 0 }, va = { 0 };
	train_error err = { 0 };
	char *dir = NULL;
	int rc;
	const train_value *base = train_values_get(in, "base");
	if (!base)
		return train_fail(ctx, "no base model");
	if (train_ctx_finetuning(ctx) && c->m) {
		/* continue from the loaded classifier (its labels and vocabulary) */
		c->epochs = (int)ceil(c->epochs * train_ctx_epoch_fraction(ctx));
	} else {
		bert_model_destroy(c->m);
		c->m = NULL;
		bert_vocab_free(&c->v);
		if ((rc = unpack_model(base, &dir, ctx)))
			return rc;
		/* the vocabulary first; the head's size follows from the data */
		if ((rc = bert_hf_load(dir, 0, 0, c->seed, &c->m, &c->v, &err))) {
			rc = train_fail(ctx, "%s: %s", err.file, err.text);
			goto out;
		}
	}
	if ((rc = load_data(c, &tr, &va, ctx)))
		goto out;
	if (c->m->cfg.num_labels != c->n_labels) {
		/* rebuild with the classifier head of the right size */
		bert_model_destroy(c->m);
		c->m = NULL;
		bert_vocab_free(&c->v);
		if ((rc = bert_hf_load(dir, c->n_labels, 0, c->seed, &c->m, &c->v, &err))) {
			rc = train_fail(ctx, "%s: %s", err.file, err.text);
			goto out;
		}
	}
	if (c->max_len > c->m->cfg.max_position) {
		rc = train_fail(ctx, "max_length %d is more than the model's %d positions", c->max_len,
		                c->m->cfg.max_position);
		goto out;
	}
	if (c->lora) {
		/* adapters on the frozen base; the classifier trains beside them */
		bert_lora_drop(c->m);
		if (c->m->cfg.layers == 0) {
			rc = train_fail(ctx, "training_type lora needs a model with layers");
			goto out;
		}
		if ((rc = bert_lora_add(c->m, c->lora_kinds, c->lora_r, (float)c->lora_alpha,
		                        (float)c->lora_dropout, c->lora_seed)) ||
		    (rc = bert_freeze_base(c->m, 1))) {
			rc = train_fail(ctx, "cannot make the LoRA adapters (r %d): %s", c->lora_r, train_strerror(rc));
			goto out;
		}
		size_t n = c->m->lora->n + bert_n_grads(c->m);
		train_log(ctx, TRAIN_LOG_INFO, "LoRA r %d alpha %g: %zu trainable parameters of %zu (%.2f %%)",
		          c->lora_r, c->lora_alpha, n, c->m->n_params, 100.0 * (double)n / (double)c->m->n_params);
	}
	if ((rc = run(c, &tr, &va, c->epochs, ctx)))
		goto out;
	train_value *v;
	if ((rc = pack_model(c, &v, ctx)) || (rc = train_values_put_take(out, "model", v)) ||
	    (rc = train_values_put_bytes(out, "report", "application/json", c->report,
	                                 strlen(c->report))))
		goto out;
out:
	rm_tmpdir(dir);
	bert_data_free(&tr);
	bert_data_free(&va);
	return rc;
}

/* ---- persist / load / process --------------------------------------------------------- */

static int comp_persist(void *self, train_resource *res)
{
	comp *c = self;
	train_error err;
	if (!c->m)
		return TRAIN_EINVAL;
	int rc = save_folder(c, train_resource_dir(res), c->lora_merge, &err);
	if (!rc && c->log_json)
		rc = train_resource_write(res, "loss_log.json", c->log_json, strlen(c->log_json));
	return rc;
}

static int read_labels(comp *c, const char *dir, train_ctx *ctx)
{
	char path[4200];
	json_error_t je;
	snprintf(path, sizeof path, "%s/config.json", dir);
	json_t *j = json_load_file(path, 0, &je), *i2l = j ? json_object_get(j, "id2label") : NULL;
	int n = c->m->cfg.num_labels;
	c->labels = calloc(n ? (size_t)n : 1, sizeof *c->labels);
	c->n_labels = n;
	for (int i = 0; c->labels && i < n; i++) {
		char k[32];
		snprintf(k, sizeof k, "%d", i);
		json_t *s = i2l ? json_object_get(i2l, k) : NULL;
		snprintf(k, sizeof k, "LABEL_%d", i);
		c->labels[i] = strdup(json_is_string(s) ? json_string_value(s) : k);
	}
	json_decref(j);
	return c->labels ? TRAIN_OK : train_fail(ctx, "out of memory");
}

static int comp_load(const train_config *cfg, const train_resource *res, train_ctx *ctx, void **self, int mlm)
{
	comp *c;
	train_error err;
	int rc = mlm ? mlm_create(cfg, ctx, self) : cls_create(cfg, ctx, self);
	c = *self;
	if (rc)
		return rc;
	if ((rc = bert_hf_load(train_resource_dir(res), -1, -1, c->seed, &c->m, &c->v, &err)))
		return train_fail(ctx, "%s: %s", err.file, err.text);
	char ap[4200];
	snprintf(ap, sizeof ap, "%s/adapter_config.json", train_resource_dir(res));
	if (!mlm && access(ap, F_OK) == 0) {
		/* saved as base + adapter (lora_merge false): merged for use */
		if ((rc = bert_adapter_load(c->m, train_resource_dir(res), &err)))
			return train_fail(ctx, "%s: %s", err.file, err.text);
		bert_lora_merge(c->m);
	}
	return mlm ? TRAIN_OK : read_labels(c, train_resource_dir(res), ctx);
}

static int mlm_load(const train_config *cfg, const train_resource *res, train_ctx *ctx, void **self)
{
	return comp_load(cfg, res, ctx, self, 1);
}

static int cls_load(const train_config *cfg, const train_resource *res, train_ctx *ctx, void **self)
{
	return comp_load(cfg, res, ctx, self, 0);
}

static int cls_process(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	comp *c = self;
	const train_value *t = train_values_get(in, "text");
	if (!c->m || !c->m->cls_w)
		return train_fail(ctx, "the classifier is not trained");
	if (!t)
		return train_fail(ctx, "no text");
	bert_data d = { 0 };
	int rc = bert_data_add(&d, &c->v, train_value_data(t), train_value_size(t), c->max_len, 0);
	if (rc)
		return rc;
	uint8_t *mask = malloc((size_t)d.len[0]);
	if (!mask) {
		bert_data_free(&d);
		return TRAIN_ENOMEM;
	}
	memset(mask, 1, (size_t)d.len[0]);
	if (!(rc = bert_forward(c->m, &c->acts, d.seq[0], NULL, mask, 1, d.len[0], 0.0f, NULL)) &&
	    !(rc = bert_cls_forward(c->m, &c->acts, NULL))) {
		int L = c->m->cfg.num_labels;
		float *p = malloc((size_t)L * sizeof *p);
		int *order = malloc((size_t)L * sizeof *order);
		if (!p || !order) {
			rc = TRAIN_ENOMEM;
		} else {
			train_softmax_forward(p, c->acts.logits, 1, L);
			for (int i = 0; i < L; i++)
				order[i] = i;
			for (int i = 0; i < L; i++) /* top-down selection: L is small */
				for (int k = i + 1; k < L; k++)
					if (p[order[k]] > p[order[i]]) {
						int x = order[i];
						order[i] = order[k];
						order[k] = x;
					}
			json_t *j = json_object(), *rank = json_array();
			json_object_set_new(j, "name", json_string(c->labels[order[0]]));
			json_object_set_new(j, "confidence", json_real(p[order[0]]));
			for (int i = 0; i < L && i < 5; i++)
				json_array_append_new(rank, json_pack("{s:s, s:f}", "name", c->labels[order[i]],
				                                      "confidence", (double)p[order[i]]));
			json_object_set_new(j, "ranking", rank);
			char *s = json_dumps(j, JSON_COMPACT);
			json_decref(j);
			rc = s ? train_values_put_bytes(out, "label", "application/json", s, strlen(s)) : TRAIN_ENOMEM;
			free(s);
		}
		free(p);
		free(order);
	}
	free(mask);
	bert_data_free(&d);
	return rc;
}

static const char *const mlm_outputs[] = { "model", NULL };
static const char *const cls_inputs[] = { "base", NULL };
static const char *const cls_outputs[] = { "model", "report", NULL };
static const char *const cls_pinputs[] = { "text", NULL };
static const char *const cls_poutputs[] = { "label", NULL };

static const train_component_class mlm_class = {
	.struct_size = sizeof(train_component_class),
	.name = "BertMaskedLM",
	.version = "1",
	.doc = "BERT masked-LM pretraining (a built-in size from scratch, or a local Hugging Face checkpoint)",
	.inputs = NULL,
	.outputs = mlm_outputs,
	.params = mlm_params,
	.create = mlm_create,
	.fingerprint = mlm_fingerprint,
	.train = mlm_train,
	.persist = comp_persist,
	.load = mlm_load,
	.destroy = comp_destroy,
};

static const train_component_class cls_class = {
	.struct_size = sizeof(train_component_class),
	.name = "BertClassifier",
	.version = "2", /* 2: the "report" output */
	.doc = "BERT sequence classification fine-tuning on labelled JSON Lines",
	.inputs = cls_inputs,
	.outputs = cls_outputs,
	.process_inputs = cls_pinputs,
	.process_outputs = cls_poutputs,
	.params = cls_params,
	.create = cls_create,
	.train = cls_train,
	.process = cls_process,
	.persist = comp_persist,
	.load = cls_load,
	.destroy = comp_destroy,
};

static const train_component_class *const classes[] = { &mlm_class, &cls_class, NULL };
TRAIN_PLUGIN_DEFINE("bert", "1.0.0", "MIT", "BERT: masked-LM pretraining and sequence classification", classes);
