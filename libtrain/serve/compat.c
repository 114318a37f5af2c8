/*
 * libtrain/serve/compat.c - `POST /api/training/compatibility/check` (issue
 * 11): the verdict of `train check` (<train/check.h>) for a model named by
 * id in the server's models folder.
 *
 * Body: {"model": ID, "training_type": "fine-tune"|"lora"|
 * "continued-pretrain"|"task"|"full", and optionally "batch_size",
 * "max_length", "gradient_accumulation_steps", "precision" ("fp32"|"bf16"),
 * "gradient_checkpointing", "lora_r", "dataset": ID (the epoch's size),
 * "steps"}.  The answer is what `train check --json` prints.  Every bad
 * field is a 400 with its message; a model that cannot be read is a 422.
 */
#include <ctype.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <train/check.h>

#include "serve.h"
#include "../cli/cli.h"

/* A name within a folder: as jobs.c's ids (no '/', no "..", no leading '.'). */
static int id_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 128 || strstr(s, "..") || s[0] == '.')
		return 0;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-' || *s == '.'))
			return 0;
	return 1;
}

static void ferr(json_t *errors, const char *field, const char *msg)
{
	json_array_append_new(errors, json_pack("{s:s, s:s}", "field", field, "message", msg));
}

/* An integer field from lo to hi, or 0 when absent. */
static int int_field(json_t *body, const char *k, int lo, int hi, json_t *errors)
{
	json_t *v = json_object_get(body, k);
	char msg[128];
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
		snprintf(msg, sizeof msg, "must be an integer from %d to %d", lo, hi);
		ferr(errors, k, msg);
		return 0;
	}
	return (int)json_integer_value(v);
}

json_t *serve_compat_check(const serve_options *opt, json_t *body, serve_fail *f)
{
	static const char *const known[] = { "model", "training_type", "batch_size", "max_length",
		"gradient_accumulation_steps", "precision", "gradient_checkpointing", "lora_r", "dataset",
		"steps", NULL };
	json_t *errors = json_array();
	train_check_options o = { .struct_size = sizeof o };
	char mpath[PATH_MAX], dpath[PATH_MAX], msg[512];
	const char *key;
	json_t *v;
	if (!json_is_object(body)) {
		f->status = 400;
		snprintf(f->msg, sizeof f->msg, "the body must be a JSON object");
		json_decref(errors);
		return NULL;
	}
	json_object_foreach(body, key, v) {
		int k = 0;
		while (known[k] && strcmp(known[k], key))
			k++;
		if (!known[k])
			ferr(errors, key, "unknown field; known: model, training_type, batch_size, max_length, "
			     "gradient_accumulation_steps, precision, gradient_checkpointing, lora_r, dataset, steps");
	}
	const char *model = json_string_value(json_object_get(body, "model"));
	if (!json_object_get(body, "model"))
		ferr(errors, "model", "required: a model id (GET /api/training/models/trainable)");
	else if (!model || !id_ok(model))
		ferr(errors, "model", "a model id: letters, digits, '.', '_', '-'; no '..', no '/'");
	else {
		snprintf(mpath, sizeof mpath, "%s/%s", opt->models_dir, model);
		if (access(mpath, R_OK)) {
			snprintf(msg, sizeof msg, "no model '%s' in the server's models folder", model);
			ferr(errors, "model", msg);
		}
	}
	json_t *t = json_object_get(body, "training_type");
	if (!t)
		ferr(errors, "training_type", "required: fine-tune, lora, continued-pretrain, task or full");
	else if (!json_is_string(t) || train_check_type_parse(json_string_value(t), &o.type))
		ferr(errors, "training_type", "must be fine-tune, lora, continued-pretrain, task or full");
	o.batch_size = int_field(body, "batch_size", 1, 65536, errors);
	o.max_length = int_field(body, "max_length", 1, 1 << 20, errors);
	o.grad_accum = int_field(body, "gradient_accumulation_steps", 1, 65536, errors);
	o.lora_r = int_field(body, "lora_r", 1, 4096, errors);
	o.steps = int_field(body, "steps", 1, 1 << 30, errors);
	json_t *p = json_object_get(body, "precision");
	if (p && (!json_is_string(p) || (strcmp(json_string_value(p), "fp32") && strcmp(json_string_value(p), "bf16"))))
		ferr(errors, "precision", "must be \"fp32\" or \"bf16\"");
	else if (p)
		o.precision = json_string_value(p);
	json_t *gc = json_object_get(body, "gradient_checkpointing");
	if (gc && !json_is_boolean(gc))
		ferr(errors, "gradient_checkpointing", "must be true or false");
	o.gradient_checkpointing = json_is_true(gc);
	json_t *ds = json_object_get(body, "dataset");
	if (ds) {
		const char *d = json_string_value(ds);
		if (!d || !id_ok(d))
			ferr(errors, "dataset", "a data set id: letters, digits, '.', '_', '-'; no '..', no '/'");
		else {
			snprintf(dpath, sizeof dpath, "%s/%s", opt->data_dir, d);
			if (access(dpath, R_OK)) {
				snprintf(msg, sizeof msg, "no data set '%s' in the server's data folder", d);
				ferr(errors, "dataset", msg);
			} else
				o.data = dpath;
		}
	}
	if (json_array_size(errors)) {
		f->status = 400;
		snprintf(f->msg, sizeof f->msg, "%zu bad field%s", json_array_size(errors),
		         json_array_size(errors) == 1 ? "" : "s");
		f->errors = errors;
		return NULL;
	}
	json_decref(errors);
	o.output_dir = opt->state_dir;
	train_check_report r = { .struct_size = sizeof r };
	train_error err = { 0 };
	/* the probe sets the kernels' process-wide threads and precision: one
	 * check at a time (<train/check.h>) */
	static pthread_mutex_t one = PTHREAD_MUTEX_INITIALIZER;
	pthread_mutex_lock(&one);
	int rc = train_check_model(mpath, &o, &r, &err);
	pthread_mutex_unlock(&one);
	if (rc) {
		char buf[1024];
		f->status = 422;
		/* the message without the server's folders */
		const char *m = train_error_format(&err, buf, sizeof buf);
		const char *rel = strstr(m, opt->models_dir);
		snprintf(f->msg, sizeof f->msg, "model '%s': %s", model,
		         rel ? rel + strlen(opt->models_dir) + 1 : m);
		return NULL;
	}
	json_t *j = cli_check_json(&r, &o);
	json_object_set_new(j, "model_id", json_string(model));
	return j;
}
