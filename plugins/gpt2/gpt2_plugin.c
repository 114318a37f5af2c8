/*
 * plugins/gpt2/gpt2_plugin.c - the "gpt2" plugin (issue 10): GPT2LM, a
 * GPT-2-family causal language model from a local Hugging Face folder,
 * fine-tuned in full, with LoRA, or by continued pre-training.
 *
 *   GPT2LM  (no inputs)  -> log    train: reads model_path and data
 *           prompt, temperature, top_k, seed, max_new_tokens -> text
 *                                  process: a reply (dialogue) or a
 *                                  continuation (text), greedy or top-k
 *
 * Data (`data`): JSON Lines of {"turns": ["...", "..."]} (a dialogue: the
 * turns joined by <|endoftext|>, one more at the end) or {"text": "..."}
 * (the text and <|endoftext|>), or plain text (one example a line).  For
 * full and lora, each example is one sequence (cut at max_length); for
 * continued-pretrain the examples' tokens are concatenated and cut into
 * blocks of max_length, as Hugging Face's run_clm does.  The loss is the
 * next-token cross-entropy over every real position.
 *
 * Training: AdamW (adam_beta1/2, eps 1e-8, weight_decay on matrices only,
 * as Hugging Face's Trainer leaves biases and layer norms out), the
 * lr_scheduler_type schedule after warmup_steps, gradient clipping at
 * max_grad_norm, gradient_accumulation_steps micro-batches per step; the
 * examples are shuffled each epoch from the seed.  Each step reports loss,
 * learning rate, gradient norm, tokens/s and resident memory to the run's
 * progress stream (train_progress_metrics) and keeps them in the log.
 *
 * Persisted: a Hugging Face folder (config.json, model.safetensors,
 * vocab.json, merges.txt) for full, continued-pretrain and merged LoRA
 * models; for a LoRA adapter, PEFT's adapter_config.json and
 * adapter_model.safetensors with base.json naming the base folder (the
 * adapter is loaded onto it: it must still be there to predict).  Also
 * gpt2_state.json (what kind of folder it is) and train_log.json.
 * `output` writes the same folder to a path of the user's (relative to the
 * current folder), as their trainer's output_dir.
 *
 * Checkpoints: with a checkpoint folder from the host
 * (train_ctx_checkpoint_dir) the run writes gpt2.ckpt.safetensors every
 * checkpoint_every steps and when it is interrupted (train_checkpoint_save:
 * temporary name, then rename): the trainable weights (all of them, or the
 * LoRA adapters), AdamW's moments and step, the generator (data order and
 * dropout), where the epoch is (the batch, and the generator's state when
 * the epoch's order was drawn, which draws it again) and the per-step log.
 * `train --resume` continues from it, and the weights are bit for bit those
 * of an uninterrupted run (tests/test_gpt2_resume.c).
 */
#include "gpt2.h"
#include "../common/gen.h"
#include "../common/hf.h"

#include <train/kernels.h>
#include <train/optim.h>
#include <train/plugin.h>

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define JSON_TYPE "application/json"
#define TEXT_TYPE "text/plain"
#define STATE_FORMAT "libtrain.gpt2"

static const train_param params[] = {
	{ "model_path", TRAIN_PARAM_PATH, "~", "a local Hugging Face GPT-2 folder (required to train; nothing is downloaded)" },
	{ "data", TRAIN_PARAM_PATH, "~", "training data: JSON Lines of {\"turns\": [...]} or {\"text\"}, or plain text; required to train" },
	{ "training_type", TRAIN_PARAM_STRING, "full", "full, lora or continued-pretrain" },
	{ "num_epochs", TRAIN_PARAM_INT, "3", "passes over the data" },
	{ "max_steps", TRAIN_PARAM_INT, "~", "stop after this many optimizer steps (a cap on num_epochs)" },
	{ "learning_rate", TRAIN_PARAM_FLOAT, "2e-5", "AdamW's peak learning rate" },
	{ "batch_size", TRAIN_PARAM_INT, "8", "sequences per micro-batch" },
	{ "max_length", TRAIN_PARAM_INT, "512", "tokens per sequence (at most the model's n_positions)" },
	{ "weight_decay", TRAIN_PARAM_FLOAT, "0.01", "AdamW's decoupled weight decay (matrices only)" },
	{ "adam_beta1", TRAIN_PARAM_FLOAT, "0.9", "AdamW's beta1" },
	{ "adam_beta2", TRAIN_PARAM_FLOAT, "0.999", "AdamW's beta2" },
	{ "max_grad_norm", TRAIN_PARAM_FLOAT, "1.0", "gradient clipping (0: none)" },
	{ "lr_scheduler_type", TRAIN_PARAM_STRING, "linear", "linear, cosine or constant (after warmup_steps)" },
	{ "warmup_steps", TRAIN_PARAM_INT, "0", "linear warm-up steps" },
	{ "gradient_accumulation_steps", TRAIN_PARAM_INT, "1", "micro-batches per optimizer step" },
	{ "bf16", TRAIN_PARAM_BOOL, "false", "bf16 matmuls (where the CPU has AVX-512 BF16 or AMX; fp32 elsewhere)" },
	{ "fp16", TRAIN_PARAM_BOOL, "false", "not supported on CPU (use bf16)" },
	{ "gradient_checkpointing", TRAIN_PARAM_BOOL, "false", "recompute each block's activations in backward" },
	{ "lora_r", TRAIN_PARAM_INT, "~", "LoRA rank (default 16; lora only)" },
	{ "lora_alpha", TRAIN_PARAM_FLOAT, "~", "LoRA alpha: the update is scaled by alpha / r (default 32)" },
	{ "lora_dropout", TRAIN_PARAM_FLOAT, "~", "dropout on the adapters' input (default 0.1)" },
	{ "lora_target_modules", TRAIN_PARAM_LIST, "~", "projections to adapt: c_attn (or its parts q, k, v), c_proj, attn.c_proj, mlp.c_proj, c_fc (default [c_attn])" },
	{ "lora_merge", TRAIN_PARAM_BOOL, "~", "fold the adapters into the weights and save the whole model (default false: the adapter alone)" },
	{ "output", TRAIN_PARAM_STRING, "~", "also write the trained folder here (relative to the current folder)" },
	{ "seed", TRAIN_PARAM_INT, "42", "data order, adapters' initialisation, dropout, sampling" },
	{ "checkpoint_every", TRAIN_PARAM_INT, "100", "optimizer steps between checkpoints for --resume (0: none)" },
	{ "threads", TRAIN_PARAM_INT, "0", "threads (0: the node's share)" },
	{ "max_new_tokens", TRAIN_PARAM_INT, "50", "generation: most tokens to add (stops at <|endoftext|>)" },
	{ "temperature", TRAIN_PARAM_FLOAT, "0", "generation: softmax temperature (0: greedy)" },
	{ "top_k", TRAIN_PARAM_INT, "0", "generation: sample among the k likeliest (0: all)" },
	{ "generation", TRAIN_PARAM_STRING, "auto", "dialogue (the prompt is a turn: a reply follows <|endoftext|>), text (a continuation), or auto (text for continued-pretrain)" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

static const char *const outputs[] = { "log", NULL };
static const char *const proc_in[] = { "prompt", "temperature", "top_k", "seed", "max_new_tokens", NULL };
static const char *const proc_out[] = { "text", NULL };

enum { T_FULL, T_LORA, T_CPT };

typedef struct g2 {
	/* config */
	char *model_path, *data, *output;
	int type, bf16, ckpt, merge, sched, dialogue;
	int64_t epochs, max_steps, batch, max_len, warmup, gas, seed, threads, lora_r, max_new, top_k;
	int64_t ck_every;
	double lr, wd, b1, b2, clip, lora_alpha, lora_dropout, temperature;
	unsigned kinds, parts;
	/* trained state */
	gpt2_model *m;
	gpt2_bpe bpe;
	char *base_abs;     /* the base folder of an adapter model */
	char *log_json;
} g2;

static void g2_free(g2 *c)
{
	if (!c)
		return;
	free(c->model_path);
	free(c->data);
	free(c->output);
	gpt2_model_destroy(c->m);
	gpt2_bpe_free(&c->bpe);
	free(c->base_abs);
	free(c->log_json);
	free(c);
}

static void g2_destroy(void *self)
{
	g2_free(self);
}

static int is_set(const train_config *cfg, const char *key)
{
	const train_config *v = train_config_get(cfg, key);
	return v && train_config_kind(v) != TRAIN_CFG_NULL;
}

/* lora_target_modules -> kinds and c_attn parts; NULL or the bad name. */
static const char *parse_targets(const train_config *cfg, unsigned *kinds, unsigned *parts,
                                 char *why, size_t n)
{
	const train_config *l = train_config_get(cfg, "lora_target_modules");
	*kinds = 1u << GPT2_ATTN;
	*parts = GPT2_QKV;
	if (!l || train_config_kind(l) != TRAIN_CFG_LIST)
		return NULL;
	unsigned k = 0, p = 0;
	int whole = 0;
	size_t cnt = train_config_len(l);
	if (!cnt) {
		snprintf(why, n, "lora_target_modules is empty: name at least one projection");
		return why;
	}
	for (size_t i = 0; i < cnt; i++) {
		const train_config *e = train_config_at(l, i);
		const char *s = train_config_kind(e) == TRAIN_CFG_STRING ? train_config_as_string(e) : NULL;
		if (!s) {
			snprintf(why, n, "lora_target_modules: entry %zu is not a string", i + 1);
			return why;
		}
		if (!strcmp(s, "c_attn") || !strcmp(s, "attn.c_attn"))
			k |= 1u << GPT2_ATTN, whole = 1;
		else if (!strcmp(s, "q") || !strcmp(s, "query"))
			k |= 1u << GPT2_ATTN, p |= GPT2_Q;
		else if (!strcmp(s, "k") || !strcmp(s, "key"))
			k |= 1u << GPT2_ATTN, p |= GPT2_K;
		else if (!strcmp(s, "v") || !strcmp(s, "value"))
			k |= 1u << GPT2_ATTN, p |= GPT2_V;
		else if (!strcmp(s, "c_proj"))
			k |= 1u << GPT2_APROJ | 1u << GPT2_MPROJ;
		else if (!strcmp(s, "attn.c_proj"))
			k |= 1u << GPT2_APROJ;
		else if (!strcmp(s, "mlp.c_proj"))
			k |= 1u << GPT2_MPROJ;
		else if (!strcmp(s, "c_fc") || !strcmp(s, "mlp.c_fc"))
			k |= 1u << GPT2_FC;
		else {
			snprintf(why, n, "lora_target_modules: unknown module '%.64s' (GPT-2 has c_attn, its "
			         "parts q, k and v, c_proj (attn.c_proj and mlp.c_proj) and c_fc)", s);
			return why;
		}
	}
	if (whole && p) {
		snprintf(why, n, "lora_target_modules: c_attn and its parts (q, k, v) together; name one or the other");
		return why;
	}
	*kinds = k;
	*parts = p ? p : GPT2_QKV;
	return NULL;
}

static char *dup_str(const train_config *cfg, const char *key)
{
	return is_set(cfg, key) ? strdup(train_config_string(cfg, key)) : NULL;
}

static int g2_config(const train_config *cfg, train_ctx *ctx, g2 **out)
{
	g2 *c = calloc(1, sizeof *c);
	char why[256];
	const char *bad = NULL;
	if (!c)
		return TRAIN_ENOMEM;
	c->model_path = dup_str(cfg, "model_path");
	c->data = dup_str(cfg, "data");
	c->output = dup_str(cfg, "output");
	const char *tt = train_config_string(cfg, "training_type");
	const char *sch = train_config_string(cfg, "lr_scheduler_type");
	const char *gen = train_config_string(cfg, "generation");
	c->epochs = train_config_int(cfg, "num_epochs");
	c->max_steps = is_set(cfg, "max_steps") ? train_config_int(cfg, "max_steps") : -1;
	c->lr = train_config_float(cfg, "learning_rate");
	c->batch = train_config_int(cfg, "batch_size");
	c->max_len = train_config_int(cfg, "max_length");
	c->wd = train_config_float(cfg, "weight_decay");
	c->b1 = train_config_float(cfg, "adam_beta1");
	c->b2 = train_config_float(cfg, "adam_beta2");
	c->clip = train_config_float(cfg, "max_grad_norm");
	c->warmup = train_config_int(cfg, "warmup_steps");
	c->gas = train_config_int(cfg, "gradient_accumulation_steps");
	c->bf16 = train_config_bool(cfg, "bf16");
	int fp16 = train_config_bool(cfg, "fp16");
	c->ckpt = train_config_bool(cfg, "gradient_checkpointing");
	c->seed = train_config_int(cfg, "seed");
	c->ck_every = train_config_int(cfg, "checkpoint_every");
	c->threads = train_config_int(cfg, "threads");
	c->max_new = train_config_int(cfg, "max_new_tokens");
	c->temperature = train_config_float(cfg, "temperature");
	c->top_k = train_config_int(cfg, "top_k");
	int lora_given = is_set(cfg, "lora_r") || is_set(cfg, "lora_alpha") ||
	                 is_set(cfg, "lora_dropout") || is_set(cfg, "lora_target_modules") ||
	                 is_set(cfg, "lora_merge");
	c->lora_r = is_set(cfg, "lora_r") ? train_config_int(cfg, "lora_r") : 16;
	c->lora_alpha = is_set(cfg, "lora_alpha") ? train_config_float(cfg, "lora_alpha") : 32.0;
	c->lora_dropout = is_set(cfg, "lora_dropout") ? train_config_float(cfg, "lora_dropout") : 0.1;
	c->merge = is_set(cfg, "lora_merge") ? train_config_bool(cfg, "lora_merge") : 0;
	if ((!c->model_path && is_set(cfg, "model_path")) || (!c->data && is_set(cfg, "data")) ||
	    (!c->output && is_set(cfg, "output"))) {
		g2_free(c);
		return TRAIN_ENOMEM;
	}
	c->type = !strcmp(tt, "full") ? T_FULL : !strcmp(tt, "lora") ? T_LORA
	          : !strcmp(tt, "continued-pretrain") ? T_CPT : -1;
	c->sched = !strcmp(sch, "linear") ? TRAIN_SCHED_LINEAR : !strcmp(sch, "cosine") ? TRAIN_SCHED_COSINE
	           : !strcmp(sch, "constant") ? TRAIN_SCHED_CONSTANT : -1;
	c->dialogue = !strcmp(gen, "dialogue") ? 1 : !strcmp(gen, "text") ? 0
	              : !strcmp(gen, "auto") ? (c->type != T_CPT) : -1;
	if (c->type < 0)
		snprintf(why, sizeof why, "training_type '%.40s' is not one of full, lora, continued-pretrain", tt), bad = why;
	else if (c->sched < 0)
		snprintf(why, sizeof why, "lr_scheduler_type '%.40s' is not one of linear, cosine, constant", sch), bad = why;
	else if (c->dialogue < 0)
		snprintf(why, sizeof why, "generation '%.40s' is not one of auto, dialogue, text", gen), bad = why;
	else if (fp16 && c->bf16)
		bad = "fp16 and bf16 are both true: choose one (bf16 on CPU)";
	else if (fp16)
		bad = "fp16 is not supported on CPU; use bf16";
	else if (lora_given && c->type != T_LORA)
		snprintf(why, sizeof why, "lora_* keys are for training_type lora, not %s: remove them or set "
		         "training_type: lora", tt), bad = why;
	else if (c->epochs < 1 || c->epochs > 100000)
		bad = "num_epochs must be from 1 to 100000";
	else if (c->ck_every < 0)
		bad = "checkpoint_every must not be negative";
	else if (is_set(cfg, "max_steps") && c->max_steps < 1)
		bad = "max_steps must be at least 1";
	else if (!(c->lr > 0 && c->lr < 1))
		bad = "learning_rate must be in (0, 1)";
	else if (c->batch < 1 || c->batch > 4096)
		bad = "batch_size must be from 1 to 4096";
	else if (c->max_len < 2 || c->max_len > 65536)
		bad = "max_length must be from 2 to 65536";
	else if (!(c->wd >= 0 && c->wd < 1))
		bad = "weight_decay must be in [0, 1)";
	else if (!(c->b1 >= 0 && c->b1 < 1) || !(c->b2 >= 0 && c->b2 < 1))
		bad = "adam_beta1 and adam_beta2 must be in [0, 1)";
	else if (!(c->clip >= 0))
		bad = "max_grad_norm must not be negative";
	else if (c->warmup < 0)
		bad = "warmup_steps must not be negative";
	else if (c->gas < 1 || c->gas > 65536)
		bad = "gradient_accumulation_steps must be from 1 to 65536";
	else if (c->lora_r < 1 || c->lora_r > 4096)
		bad = "lora_r must be from 1 to 4096";
	else if (!(c->lora_alpha > 0 && c->lora_alpha < 1e6))
		bad = "lora_alpha must be positive";
	else if (!(c->lora_dropout >= 0 && c->lora_dropout < 1))
		bad = "lora_dropout must be in [0, 1)";
	else if (c->threads < 0 || c->threads > 1024)
		bad = "threads must be from 0 to 1024";
	else if (c->max_new < 0 || c->max_new > 65536 || c->top_k < 0 || !(c->temperature >= 0 && c->temperature < 1e6))
		bad = "max_new_tokens must be from 0 to 65536, top_k and temperature not negative";
	else
		bad = parse_targets(cfg, &c->kinds, &c->parts, why, sizeof why);
	if (bad) {
		int rc = train_fail(ctx, "%s", bad);
		g2_free(c);
		return rc;
	}
	*out = c;
	return TRAIN_OK;
}

static int g2_create(const train_config *cfg, train_ctx *ctx, void **self)
{
	g2 *c = NULL;
	int rc = g2_config(cfg, ctx, &c);
	*self = c;
	return rc;
}

/* ---- data ------------------------------------------------------------------------- */

typedef struct seqs {
	int32_t **s;
	int *len;
	size_t n, cap;
} seqs;

static void seqs_free(seqs *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->s[i]);
	free(d->s);
	free(d->len);
	memset(d, 0, sizeof *d);
}

static int seqs_push(seqs *d, const int32_t *ids, int n)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 256;
		int32_t **s = realloc(d->s, cap * sizeof *s);
		if (!s)
			return TRAIN_ENOMEM;
		d->s = s;
		int *l = realloc(d->len, cap * sizeof *l);
		if (!l)
			return TRAIN_ENOMEM;
		d->len = l;
		d->cap = cap;
	}
	if (!(d->s[d->n] = malloc((size_t)n * sizeof *ids)))
		return TRAIN_ENOMEM;
	memcpy(d->s[d->n], ids, (size_t)n * sizeof *ids);
	d->len[d->n++] = n;
	return TRAIN_OK;
}

/* A growing token buffer. */
typedef struct tokbuf {
	int32_t *v;
	size_t n, cap;
} tokbuf;

static int tok_append(tokbuf *t, const gpt2_bpe *b, const char *text, size_t len, int eot)
{
	size_t need;
	int rc;
	for (;;) {
		size_t room = t->cap - t->n;
		if ((rc = gpt2_bpe_encode(b, text, len, t->v ? t->v + t->n : NULL, t->v ? room : 0, &need)))
			return rc;
		if (t->v && need + 1 <= room)
			break;
		size_t cap = (t->n + need + 1) * 2;
		int32_t *v = realloc(t->v, cap * sizeof *v);
		if (!v)
			return TRAIN_ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	t->n += need;
	if (eot)
		t->v[t->n++] = b->eot;
	return TRAIN_OK;
}

static int ends_with(const char *s, const char *suf)
{
	size_t a = strlen(s), b = strlen(suf);
	return a >= b && !strcasecmp(s + a - b, suf);
}

/* Read the data into examples (full, lora) or blocks (continued-pretrain). */
static int read_data(g2 *c, const char *path, int T, seqs *out, int64_t *ntokens, train_ctx *ctx)
{
	FILE *f = fopen(path, "rb");
	char *line = NULL;
	size_t cap = 0;
	ssize_t got;
	unsigned lineno = 0;
	int jsonl = ends_with(path, ".jsonl") || ends_with(path, ".ndjson") || ends_with(path, ".json");
	tokbuf all = { 0 }, one = { 0 };
	int rc = TRAIN_OK;
	*ntokens = 0;
	if (!f)
		return train_fail(ctx, "%s: cannot open: %s", path, strerror(errno));
	while (!rc && (got = getline(&line, &cap, f)) >= 0) {
		lineno++;
		while (got > 0 && (line[got - 1] == '\n' || line[got - 1] == '\r'))
			line[--got] = '\0';
		size_t sp = 0;
		while (sp < (size_t)got && (line[sp] == ' ' || line[sp] == '\t'))
			sp++;
		if (sp == (size_t)got)
			continue;
		if (memchr(line, '\0', (size_t)got)) {
			rc = train_fail(ctx, "%s:%u: a NUL byte", path, lineno);
			break;
		}
		tokbuf *dst = c->type == T_CPT ? &all : &one;
		if (c->type != T_CPT)
			one.n = 0;
		if (jsonl) {
			json_error_t je;
			json_t *j = json_loadb(line, (size_t)got, JSON_REJECT_DUPLICATES, &je);
			json_t *turns = j ? json_object_get(j, "turns") : NULL, *text = j ? json_object_get(j, "text") : NULL;
			if (!j) {
				rc = train_fail(ctx, "%s:%u:%d: invalid JSON: %s", path, lineno, je.column, je.text);
			} else if (!json_is_object(j)) {
				rc = train_fail(ctx, "%s:%u: not a JSON object", path, lineno);
			} else if (turns) {
				if (!json_is_array(turns) || !json_array_size(turns))
					rc = train_fail(ctx, "%s:%u: \"turns\" must be a non-empty list of strings", path, lineno);
				for (size_t i = 0; !rc && i < json_array_size(turns); i++) {
					json_t *t = json_array_get(turns, i);
					if (!json_is_string(t))
						rc = train_fail(ctx, "%s:%u: \"turns\" entry %zu is not a string", path, lineno, i + 1);
					else
						rc = tok_append(dst, &c->bpe, json_string_value(t), json_string_length(t), 1);
				}
			} else if (json_is_string(text)) {
				rc = tok_append(dst, &c->bpe, json_string_value(text), json_string_length(text), 1);
			} else {
				rc = train_fail(ctx, "%s:%u: neither \"turns\" (a list of strings) nor \"text\" (a string)",
				                path, lineno);
			}
			json_decref(j);
		} else if (c->type == T_CPT) {
			line[got++] = '\n';
			rc = tok_append(dst, &c->bpe, line, (size_t)got, 0);
		} else {
			rc = tok_append(dst, &c->bpe, line, (size_t)got, 1);
		}
		if (!rc && c->type != T_CPT && one.n >= 2) {
			int n = one.n > (size_t)T ? T : (int)one.n;
			rc = seqs_push(out, one.v, n);
			*ntokens += n;
		}
	}
	if (!rc && ferror(f))
		rc = train_fail(ctx, "%s: read error", path);
	fclose(f);
	free(line);
	if (!rc && c->type == T_CPT) {
		/* blocks of T tokens (the rest dropped, as run_clm; one short block if that is all) */
		size_t nb = all.n / (size_t)T;
		for (size_t i = 0; !rc && i < nb; i++)
			rc = seqs_push(out, all.v + i * (size_t)T, T);
		if (!rc && !nb && all.n >= 2)
			rc = seqs_push(out, all.v, (int)all.n);
		*ntokens = nb ? (int64_t)(nb * (size_t)T) : (int64_t)all.n;
	}
	free(all.v);
	free(one.v);
	if (!rc && !out->n)
		rc = train_fail(ctx, "%s: no example of two or more tokens", path);
	return rc == TRAIN_ENOTFOUND ? train_fail(ctx, "%s: a character the vocabulary cannot encode", path) : rc;
}

/* ---- training ---------------------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, rss = 0;
	if (!f)
		return NAN;
	int ok = fscanf(f, "%ld %ld", &pages, &rss) == 2;
	fclose(f);
	return ok ? (double)rss * (double)sysconf(_SC_PAGESIZE) : NAN;
}

/* One AdamW step over the trainable arrays; matrices decay, vectors do not. */
static void adamw(g2 *c, float *mom, float *vel, float lr, int64_t step)
{
	gpt2_model *m = c->m;
	train_adamw_cfg ac = { (float)c->b1, (float)c->b2, 1e-8f, (float)c->wd };
	if (c->type == T_LORA) {
		train_adamw_step(&ac, m->lora->params, m->lora->grads, mom, vel, m->lora->n, lr, step);
		return;
	}
	train_adamw_cfg nd = ac;
	nd.weight_decay = 0.0f;
	for (size_t i = 0; i < m->n_tensors; i++) {
		const gpt2_tensor *t = &m->tensors[i];
		size_t o = t->offset, n = (size_t)(t->shape[0] * t->shape[1]);
		train_adamw_step(t->ndim == 2 ? &ac : &nd, m->params + o, m->grads + o, mom + o, vel + o, n, lr,
		                 step);
	}
}

static char *abs_path(const char *p)
{
	char *r = realpath(p, NULL);
	return r ? r : strdup(p);
}

static int save_folder(g2 *c, const char *dir, train_error *err);

/* A new epoch's order of the n examples, drawn from rng. */
static void shuffle(size_t *order, size_t n, train_rng *rng)
{
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)train_rng_below(rng, i);
		size_t t = order[i - 1];
		order[i - 1] = order[j];
		order[j] = t;
	}
}

/* ---- checkpoints ------------------------------------------------------------------ */

#define CKPT_NAME "gpt2.ckpt.safetensors"

/* Where a run is between two optimizer steps, beside the tensors, the
 * step and the generator. */
typedef struct g2_pos {
	int64_t batch_i;     /* batches of this epoch taken */
	train_rng epoch_rng; /* the generator before this epoch's order was drawn */
	size_t n;            /* sequences (a check: the same data) */
} g2_pos;

static void ck_tensors(const g2 *c, float *mom, float *vel, train_named_tensor *pt, train_tensor *m,
                       train_tensor *v)
{
	int lora = c->type == T_LORA;
	int64_t n = (int64_t)(lora ? c->m->lora->n : c->m->n_params);
	pt->name = lora ? "lora" : "weights";
	pt->t = (train_tensor){ TRAIN_F32, 1, { n, 1, 1, 1 }, lora ? c->m->lora->params : c->m->params };
	*m = (train_tensor){ TRAIN_F32, 1, { n, 1, 1, 1 }, mom };
	*v = (train_tensor){ TRAIN_F32, 1, { n, 1, 1, 1 }, vel };
}

static int ck_save(const g2 *c, float *mom, float *vel, int64_t step, const train_rng *rng,
                   const g2_pos *pos, json_t *steps, const char *path, train_error *err)
{
	train_named_tensor pt;
	train_tensor m, v;
	ck_tensors(c, mom, vel, &pt, &m, &v);
	char bi[32], n[32], er[80];
	snprintf(bi, sizeof bi, "%lld", (long long)pos->batch_i);
	snprintf(n, sizeof n, "%zu", pos->n);
	snprintf(er, sizeof er, "%016llx%016llx%016llx%016llx", (unsigned long long)pos->epoch_rng.s[0],
	         (unsigned long long)pos->epoch_rng.s[1], (unsigned long long)pos->epoch_rng.s[2],
	         (unsigned long long)pos->epoch_rng.s[3]);
	char *log = json_dumps(steps, JSON_COMPACT);
	if (!log)
		return train_error_set(err, TRAIN_ENOMEM, path, 0, 0, "out of memory");
	const char *meta[] = { "gpt2_batch", bi, "gpt2_sequences", n, "gpt2_epoch_rng", er,
		               "gpt2_steps", log, NULL };
	int rc = train_checkpoint_save(path, &pt, &m, &v, 1, step, rng, meta, err);
	free(log);
	return rc;
}

/* Into the trainable weights, mom, vel, *step, rng, *pos and *steps. */
static int ck_load(g2 *c, float *mom, float *vel, int64_t *step, train_rng *rng, g2_pos *pos,
                   json_t **steps, const char *path, train_error *err)
{
	train_named_tensor pt;
	train_tensor m, v;
	ck_tensors(c, mom, vel, &pt, &m, &v);
	train_safetensors *f = NULL;
	int rc = train_checkpoint_load(path, &pt, &m, &v, 1, step, rng, &f, err);
	if (rc)
		return rc;
	const char *bi = train_safetensors_meta(f, "gpt2_batch");
	const char *n = train_safetensors_meta(f, "gpt2_sequences");
	const char *er = train_safetensors_meta(f, "gpt2_epoch_rng");
	const char *log = train_safetensors_meta(f, "gpt2_steps");
	char *end = NULL;
	rc = TRAIN_ECORRUPT;
	if (bi && n && er && log && strlen(er) == 64) {
		pos->batch_i = strtoll(bi, &end, 10);
		int ok = !*end && pos->batch_i >= 0;
		ok = ok && strtoull(n, &end, 10) == pos->n && !*end;
		for (int w = 0; w < 4 && ok; w++) {
			char word[17];
			memcpy(word, er + 16 * w, 16);
			word[16] = '\0';
			pos->epoch_rng.s[w] = strtoull(word, &end, 16);
			ok = !*end;
		}
		json_t *st = ok ? json_loads(log, 0, NULL) : NULL;
		if (st && json_is_array(st) && json_array_size(st) == (size_t)*step) {
			json_array_clear(*steps);
			json_array_extend(*steps, st);
			rc = TRAIN_OK;
		}
		json_decref(st);
	}
	train_safetensors_close(f);
	if (rc)
		train_error_set(err, rc, path, 0, 0, "not a GPT2LM checkpoint of this run (other data?)");
	return rc;
}

/* The training; `stop_after` > 0: stop (as if interrupted) after that many
 * optimizer steps of this session (tests). */
static int g2_train_run(g2 *c, train_values *out, train_ctx *ctx, int64_t stop_after)
{
	char *mpath = NULL, *dpath = NULL, msg[1200];
	seqs d = { 0 };
	gpt2_acts a = { 0 };
	float *mom = NULL, *vel = NULL;
	int32_t *ids = NULL, *tg = NULL;
	size_t *order = NULL;
	json_t *log = json_object(), *steps = json_array();
	int registered = 0, rc = TRAIN_OK;
	char *ck = NULL; /* the checkpoint's path, or NULL: none kept */
	int old_threads = train_kernels_threads();
	train_precision old_prec = train_kernels_precision();
	train_error err = { 0 };

	if (!log || !steps) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	json_object_set_new(log, "steps", steps);
	if (!c->model_path) {
		rc = train_fail(ctx, "no model_path: GPT2LM fine-tunes a local Hugging Face GPT-2 folder "
		                "(model_path: PATH; nothing is downloaded)");
		goto out;
	}
	if (!c->data) {
		rc = train_fail(ctx, "no data: GPT2LM trains on a JSON Lines or text file (data: PATH)");
		goto out;
	}
	mpath = train_ctx_resolve(ctx, c->model_path);
	dpath = train_ctx_resolve(ctx, c->data);
	if (!mpath || !dpath) {
		rc = train_fail(ctx, "cannot resolve model_path and data");
		goto out;
	}
	gpt2_model_destroy(c->m);
	c->m = NULL;
	gpt2_bpe_free(&c->bpe);
	if ((rc = gpt2_hf_load(mpath, c->type != T_LORA, &c->m, &c->bpe, &err))) {
		rc = train_fail(ctx, "%s", train_error_format(&err, msg, sizeof msg));
		goto out;
	}
	free(c->base_abs);
	c->base_abs = abs_path(mpath);
	gpt2_model *m = c->m;
	int T = (int)(c->max_len < m->cfg.n_positions ? c->max_len : m->cfg.n_positions);
	if (c->max_len > m->cfg.n_positions)
		train_log(ctx, TRAIN_LOG_INFO, "max_length %lld is more than the model's n_positions %d: "
		          "using %d", (long long)c->max_len, m->cfg.n_positions, T);
	int64_t ntokens;
	if ((rc = read_data(c, dpath, T, &d, &ntokens, ctx)))
		goto out;
	if (c->type == T_LORA &&
	    (rc = gpt2_lora_add(m, c->kinds, c->parts, (int)c->lora_r, (float)c->lora_alpha,
	                        (float)c->lora_dropout, (uint64_t)c->seed))) {
		rc = train_fail(ctx, "cannot add the LoRA adapters (%s)", train_strerror(rc));
		goto out;
	}
	int threads = c->threads ? (int)c->threads : train_ctx_threads(ctx);
	if (c->bf16 && !train_cpu_has_bf16())
		train_log(ctx, TRAIN_LOG_INFO, "bf16: this CPU has no AVX-512 BF16 or AMX: fp32 instead");
	if ((rc = train_kernels_init(threads, c->bf16 ? TRAIN_PRECISION_AUTO : TRAIN_PRECISION_FP32)))
		goto out;
	if (train_kernels_weights_register(m->params, m->n_params) == 0)
		registered = 1;
	size_t ntrain = c->type == T_LORA ? m->lora->n : m->n_params;
	mom = calloc(ntrain, sizeof *mom);
	vel = calloc(ntrain, sizeof *vel);
	int B = (int)c->batch;
	ids = malloc((size_t)B * T * sizeof *ids);
	tg = malloc((size_t)B * T * sizeof *tg);
	order = malloc(d.n * sizeof *order);
	if (!mom || !vel || !ids || !tg || !order) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	int64_t batches = (int64_t)((d.n + (size_t)B - 1) / (size_t)B);
	int64_t per_epoch = (batches + c->gas - 1) / c->gas;
	int64_t total = per_epoch * c->epochs;
	if (c->max_steps > 0 && c->max_steps < total)
		total = c->max_steps;
	train_rng rng;
	train_rng_seed(&rng, (uint64_t)c->seed ^ 0x6770743200ULL);
	train_log(ctx, TRAIN_LOG_INFO, "%s: %zu sequences (%lld tokens), %lld steps of %d x %lld, "
	          "%zu trainable parameters of %zu", c->type == T_LORA ? "LoRA" : c->type == T_CPT
	          ? "continued pre-training" : "full fine-tuning", d.n, (long long)ntokens,
	          (long long)total, B, (long long)c->gas, ntrain, m->n_params);
	int64_t step = 0, batch_i = batches; /* position in the epoch's order */
	g2_pos pos = { .batch_i = batches, .epoch_rng = rng, .n = d.n };
	const char *ckdir = train_ctx_checkpoint_dir(ctx);
	if (ckdir && c->ck_every > 0) {
		size_t len = strlen(ckdir) + sizeof CKPT_NAME + 1;
		if (!(ck = malloc(len))) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		snprintf(ck, len, "%s/%s", ckdir, CKPT_NAME);
	}
	if (ck && train_ctx_resuming(ctx) && access(ck, F_OK) == 0) {
		if ((rc = ck_load(c, mom, vel, &step, &rng, &pos, &steps, ck, &err))) {
			rc = train_fail(ctx, "cannot resume: %s", train_error_format(&err, msg, sizeof msg));
			goto out;
		}
		if (pos.batch_i > batches || step > total) {
			rc = train_fail(ctx, "cannot resume: %s is not a checkpoint of this run", ck);
			goto out;
		}
		if (c->type != T_LORA)
			train_kernels_weights_changed(m->params);
		batch_i = pos.batch_i;
		if (batch_i < batches) { /* the epoch's order, drawn again */
			train_rng er = pos.epoch_rng;
			shuffle(order, d.n, &er);
		}
		train_log(ctx, TRAIN_LOG_INFO, "resuming at step %lld of %lld", (long long)step,
		          (long long)total);
	}
	int64_t done_here = 0;
	double t0 = now_s(), peak_rss = 0;
	while (step < total) {
		double ts = now_s();
		float lr = train_lr_at((train_schedule)c->sched, (float)c->lr, 0.0f, step, c->warmup, total);
		gpt2_zero_grad(m);
		double lsum = 0;
		int64_t toks = 0;
		for (int64_t k = 0; k < c->gas; k++) {
			if (batch_i >= batches) { /* a new epoch: a new order */
				pos.epoch_rng = rng;
				shuffle(order, d.n, &rng);
				batch_i = 0;
			}
			int rows = 0, TT = 0;
			for (int b = 0; b < B && (size_t)(batch_i * B + b) < d.n; b++, rows++) {
				int l = d.len[order[batch_i * B + b]];
				TT = l > TT ? l : TT;
			}
			batch_i++;
			for (int b = 0; b < rows; b++) {
				size_t e = order[(batch_i - 1) * B + b];
				int l = d.len[e];
				for (int t = 0; t < TT; t++) {
					ids[b * TT + t] = t < l ? d.s[e][t] : c->bpe.eot;
					tg[b * TT + t] = t + 1 < l ? d.s[e][t + 1] : -1;
				}
				toks += l;
			}
			double loss;
			int64_t cnt;
			if ((rc = gpt2_forward(m, &a, ids, rows, TT, c->ckpt, &rng)) ||
			    (rc = gpt2_loss(m, &a, tg, 1.0f / (float)c->gas, 1, &loss, &cnt)) ||
			    (rc = gpt2_backward(m, &a)))
				goto out;
			lsum += loss;
		}
		double loss = lsum / (double)c->gas;
		if (!isfinite(loss)) {
			rc = train_fail(ctx, "the loss is not finite at step %lld: lower learning_rate",
			                (long long)step);
			goto out;
		}
		float *g = c->type == T_LORA ? m->lora->grads : m->grads;
		float gnorm = train_clip_grad_norm(g, ntrain, (float)c->clip);
		if (!isfinite(gnorm)) {
			rc = train_fail(ctx, "the gradient is not finite at step %lld: lower learning_rate",
			                (long long)step);
			goto out;
		}
		adamw(c, mom, vel, lr, step + 1);
		if (c->type != T_LORA)
			train_kernels_weights_changed(m->params);
		step++;
		double dt = now_s() - ts, rss = rss_bytes();
		peak_rss = rss > peak_rss ? rss : peak_rss;
		/* "lr" as train_progress_lr names it (the job service draws it) */
		const char *names[] = { "lr", "grad_norm", "tokens_per_second", "rss_bytes",
		                        "step_seconds" };
		double vals[] = { lr, gnorm, dt > 0 ? (double)toks / dt : 0, rss, dt };
		train_progress_metrics(ctx, (uint64_t)step, (uint64_t)total, loss, names, vals, 5);
		json_array_append_new(steps, json_pack("{s:I, s:f, s:f, s:f, s:f, s:f}", "step",
		                      (json_int_t)step, "loss", loss, "learning_rate", (double)lr,
		                      "grad_norm", (double)gnorm, "tokens_per_second", vals[2],
		                      "rss_bytes", isfinite(rss) ? rss : 0.0));
		done_here++;
		pos.batch_i = batch_i;
		/* after the last step there is nothing to resume: the run ends */
		int stop = step < total &&
		           (train_ctx_canceled(ctx) || (stop_after > 0 && done_here >= stop_after));
		if (ck && step < total && (stop || step % c->ck_every == 0) &&
		    (rc = ck_save(c, mom, vel, step, &rng, &pos, steps, ck, &err))) {
			/* on the way out a failed save is a warning, not the run's error */
			if (stop)
				train_log(ctx, TRAIN_LOG_WARN, "checkpoint: %s", err.text);
			else {
				rc = train_fail(ctx, "checkpoint: %s", train_error_format(&err, msg, sizeof msg));
				goto out;
			}
		}
		if (stop) {
			rc = TRAIN_ECANCELED;
			goto out;
		}
	}
	json_object_set_new(log, "training_type", json_string(c->type == T_LORA ? "lora" : c->type == T_CPT
	                                                      ? "continued-pretrain" : "full"));
	json_object_set_new(log, "sequences", json_integer((json_int_t)d.n));
	json_object_set_new(log, "trainable_parameters", json_integer((json_int_t)ntrain));
	json_object_set_new(log, "parameters", json_integer((json_int_t)m->n_params));
	json_object_set_new(log, "seconds", json_real(now_s() - t0));
	json_object_set_new(log, "peak_rss_bytes", json_real(peak_rss));
	json_object_set_new(log, "activation_bytes", json_integer((json_int_t)a.bytes));
	if (c->type == T_LORA && c->merge)
		gpt2_lora_merge(m);
	json_object_set_new(log, "saved", json_string(m->lora ? "adapter" : "model"));
	free(c->log_json);
	if (!(c->log_json = json_dumps(log, JSON_COMPACT | JSON_REAL_PRECISION(9)))) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	if (c->output && (rc = save_folder(c, c->output, &err))) {
		rc = train_fail(ctx, "output: %s", train_error_format(&err, msg, sizeof msg));
		goto out;
	}
	rc = train_values_put_bytes(out, "log", JSON_TYPE, c->log_json, strlen(c->log_json));
out:
	if (registered)
		train_kernels_weights_unregister(c->m->params);
	train_kernels_init(old_threads, old_prec);
	gpt2_acts_free(&a);
	seqs_free(&d);
	free(mom);
	free(vel);
	free(ids);
	free(tg);
	free(order);
	free(mpath);
	free(dpath);
	free(ck);
	json_decref(log);
	return rc;
}

static int g2_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	(void)in;
	return g2_train_run(self, out, ctx, 0);
}

/* ---- persist / load ----------------------------------------------------------------- */

static int save_folder(g2 *c, const char *dir, train_error *err)
{
	int rc;
	json_t *st = json_pack("{s:s, s:i, s:s, s:s?}", "format", STATE_FORMAT, "version", 1, "kind",
	                       c->m->lora ? "adapter" : "model", "base", c->m->lora ? c->base_abs : NULL);
	char *text = st ? json_dumps(st, JSON_COMPACT) : NULL;
	json_decref(st);
	if (!text)
		return train_error_set(err, TRAIN_ENOMEM, dir, 0, 0, "out of memory");
	if (c->m->lora)
		rc = gpt2_adapter_save(c->m, c->base_abs, dir, err);
	else
		rc = gpt2_hf_save(c->m, &c->bpe, dir, err);
	if (!rc)
		rc = hf_write_atomic(dir, "gpt2_state.json", text, strlen(text), err);
	if (!rc && c->log_json)
		rc = hf_write_atomic(dir, "train_log.json", c->log_json, strlen(c->log_json), err);
	free(text);
	return rc;
}

static int g2_persist(void *self, train_resource *res)
{
	g2 *c = self;
	if (!c->m)
		return TRAIN_EINVAL;
	return save_folder(c, train_resource_dir(res), NULL);
}

static int g2_load(const train_config *cfg, const train_resource *res, train_ctx *ctx, void **self)
{
	g2 *c = NULL;
	int rc = g2_config(cfg, ctx, &c);
	char path[4096], msg[1200], *text = NULL;
	size_t len;
	json_t *st = NULL;
	train_error err = { 0 };
	*self = NULL;
	if (rc)
		return rc;
	const char *dir = train_resource_dir(res);
	snprintf(path, sizeof path, "%s/gpt2_state.json", dir);
	if ((rc = hf_read_file(path, &text, &len, &err))) {
		rc = train_fail(ctx, "%s", train_error_format(&err, msg, sizeof msg));
		goto out;
	}
	st = json_loads(text, 0, NULL);
	const char *fmt = json_string_value(json_object_get(st, "format"));
	const char *kind = json_string_value(json_object_get(st, "kind"));
	const char *base = json_string_value(json_object_get(st, "base"));
	if (!fmt || strcmp(fmt, STATE_FORMAT) || json_integer_value(json_object_get(st, "version")) != 1 ||
	    !kind || (strcmp(kind, "model") && strcmp(kind, "adapter")) || (!strcmp(kind, "adapter") && !base)) {
		rc = train_fail(ctx, "gpt2_state.json: not a GPT2LM state (version 1)");
		goto out;
	}
	if (!strcmp(kind, "model")) {
		rc = gpt2_hf_load(dir, 0, &c->m, &c->bpe, &err);
	} else {
		if (!(c->base_abs = strdup(base))) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		rc = gpt2_hf_load(base, 0, &c->m, &c->bpe, &err);
		if (!rc)
			rc = gpt2_adapter_load(c->m, dir, &err);
	}
	if (rc) {
		rc = train_fail(ctx, "%s%s", train_error_format(&err, msg, sizeof msg),
		                !strcmp(kind, "adapter") ? " (the adapter's base model must be on disk)" : "");
		goto out;
	}
	char *lj = NULL;
	size_t ln;
	if (train_resource_read(res, "train_log.json", (void **)&lj, &ln) == TRAIN_OK)
		c->log_json = lj;
out:
	free(text);
	json_decref(st);
	if (rc) {
		g2_free(c);
		return rc;
	}
	*self = c;
	return TRAIN_OK;
}

/* ---- generation ----------------------------------------------------------------------- */

/* The next token from logits (V): greedy at temperature 0, else sampled
 * among the top_k likeliest (0: all). */
static int32_t pick(const float *logits, int V, double temp, int top_k, float *work, train_rng *r)
{
	int best = 0;
	for (int i = 1; i < V; i++)
		if (logits[i] > logits[best])
			best = i;
	if (temp <= 0)
		return best;
	float cut = -INFINITY;
	if (top_k > 0 && top_k < V) {
		/* the k-th largest: count how many are above each candidate by bisection */
		float lo = logits[best], hi = logits[best];
		for (int i = 0; i < V; i++)
			lo = logits[i] < lo ? logits[i] : lo;
		for (int it = 0; it < 60; it++) {
			float mid = lo + (hi - lo) / 2;
			int above = 0;
			for (int i = 0; i < V; i++)
				above += logits[i] >= mid;
			if (above >= top_k)
				lo = mid;
			else
				hi = mid;
		}
		cut = lo;
	}
	double sum = 0;
	for (int i = 0; i < V; i++) {
		work[i] = logits[i] >= cut ? (float)exp((logits[i] - logits[best]) / temp) : 0.0f;
		sum += work[i];
	}
	double u = train_rng_uniform(r) * sum, acc = 0;
	for (int i = 0; i < V; i++) {
		acc += work[i];
		if (u < acc && work[i] > 0)
			return i;
	}
	return best;
}

static int g2_process(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	g2 *c = self;
	if (!c->m)
		return train_fail(ctx, "the model is not trained");
	gen_opts g = { c->temperature, c->top_k, c->seed, c->max_new };
	int grc = gen_opts_from_inputs(in, &g, 65536, ctx);
	if (grc)
		return grc;
	double temp = g.temperature;
	int64_t top_k = g.top_k, seed = g.seed, max_new = g.max_new;
	gpt2_model *m = c->m;
	const int P = m->cfg.n_positions, V = m->cfg.vocab_size;
	const train_value *pv = train_values_get(in, "prompt");
	const char *p = pv ? train_value_data(pv) : "";
	size_t pn = pv ? train_value_size(pv) : 0, np;
	int32_t *ids = NULL;
	float *work = malloc((size_t)V * 2 * sizeof *work);
	char *text = NULL, *whole = NULL;
	size_t tl;
	gpt2_acts a = { 0 };
	train_rng r;
	train_rng_seed(&r, (uint64_t)seed);
	int rc = work ? gpt2_bpe_encode(&c->bpe, p, pn, NULL, 0, &np) : TRAIN_ENOMEM;
	if (rc)
		goto out;
	size_t cap = np + 1 + (size_t)max_new + 1;
	if (!(ids = malloc(cap * sizeof *ids))) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	if ((rc = gpt2_bpe_encode(&c->bpe, p, pn, ids, np, &np)))
		goto out;
	if (c->dialogue || !np)
		ids[np++] = c->bpe.eot;
	size_t start = np, n = np;
	int old_threads = train_kernels_threads();
	train_precision old_prec = train_kernels_precision();
	train_kernels_init(train_ctx_threads(ctx), TRAIN_PRECISION_FP32);
	/* the activations for the longest context at once, not one size per token */
	size_t longest = n + (size_t)max_new;
	rc = gpt2_acts_reserve(m, &a, 1, longest < (size_t)P ? (int)longest : P, 0);
	for (int64_t t = 0; t < max_new && !rc; t++) {
		/* the last n_positions tokens as context */
		size_t from = n > (size_t)P ? n - (size_t)P : 0;
		int T = (int)(n - from);
		if ((rc = gpt2_forward(m, &a, ids + from, 1, T, 0, NULL)) ||
		    (rc = gpt2_logits(m, &a, T - 1, 1, work)))
			break;
		int32_t id = pick(work, V, temp, (int)top_k, work + V, &r);
		if (id == c->bpe.eot)
			break;
		ids[n++] = id;
		if (train_ctx_canceled(ctx))
			rc = TRAIN_ECANCELED;
	}
	train_kernels_init(old_threads, old_prec);
	if (rc)
		goto out;
	/* a dialogue's reply alone; a text's prompt and continuation */
	if ((rc = gpt2_bpe_decode(&c->bpe, ids + start, n - start, &text, &tl)))
		goto out;
	if (!c->dialogue) {
		if (!(whole = malloc(pn + tl + 1))) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		memcpy(whole, p, pn);
		memcpy(whole + pn, text, tl + 1);
		rc = train_values_put_bytes(out, "text", TEXT_TYPE, whole, pn + tl);
	} else {
		rc = train_values_put_bytes(out, "text", TEXT_TYPE, text, tl);
	}
out:
	gpt2_acts_free(&a);
	free(ids);
	free(work);
	free(text);
	free(whole);
	return rc;
}

/* ---------------------------------------------------------------------------------------- */

static const train_component_class gpt2_lm = {
	.struct_size = sizeof(train_component_class),
	.name = "GPT2LM",
	.version = "1",
	.doc = "a GPT-2 causal LM from a local Hugging Face folder: full, LoRA or continued pre-training (issue 10)",
	.inputs = NULL,
	.outputs = outputs,
	.process_inputs = proc_in,
	.process_outputs = proc_out,
	.params = params,
	.create = g2_create,
	.train = g2_train,
	.process = g2_process,
	.persist = g2_persist,
	.load = g2_load,
	.destroy = g2_destroy,
};

#ifndef GPT2_NO_DESCRIPTOR /* tests/test_gpt2_resume.c compiles this file in */
static const train_component_class *const classes[] = { &gpt2_lm, NULL };
TRAIN_PLUGIN_DEFINE("gpt2", "1.0.0", "MIT", "GPT-2 causal language models: fine-tuning, LoRA, continued pre-training", classes);
#endif
