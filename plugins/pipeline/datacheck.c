/*
 * plugins/pipeline/datacheck.c - the "pipeline" plugin (issue 9): DataCheck,
 * the data stage of `train --target full-pipeline` (recipes/data-check.yml).
 *
 *   DataCheck  (no inputs) -> report   application/json {"format", "bytes",
 *                                       "lines", "records"}
 *
 * It reads one data file before anything trains on it and stops the run at
 * the first problem, as `file:line: what`, so that a bad line in the
 * transformer's data is found in a second, not after the Mamba stage has
 * trained for an hour.  Formats:
 *
 *   text           UTF-8 text (the Mamba corpus): every byte sequence valid
 *                  (no overlong forms, surrogates or code points past
 *                  U+10FFFF), no NUL; records are the non-blank lines.
 *   jsonl          JSON Lines: every non-blank line a JSON object with the
 *                  `fields` it must have, of their types (string, integer,
 *                  number, scalar: a string or a number, any).
 *   text-or-jsonl  jsonl when the first non-blank line starts with '{', else
 *                  text (BERT's pretraining corpus takes either).
 *
 * `path` null (the settings leave the file out) checks nothing; the report
 * then says {"format": "none"}.  The file's content is part of the node's
 * fingerprint (a PATH key), so an unchanged file is not read again.
 *
 * Persisted: report.json.  Threads: no global state.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <train/plugin.h>

#define REPORT_TYPE "application/json"

static const train_param dc_params[] = {
	{ "path", TRAIN_PARAM_PATH, "~", "the file to check (null: nothing to check)" },
	{ "format", TRAIN_PARAM_STRING, "text", "text, jsonl or text-or-jsonl" },
	{ "fields", TRAIN_PARAM_MAP, "{}",
	  "jsonl: required field -> type (string, integer, number, scalar, any)" },
	{ "min_records", TRAIN_PARAM_INT, "1", "fewest non-blank lines (records) accepted" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

static const char *const dc_outputs[] = { "report", NULL };

typedef struct dc {
	char *path;          /* resolved, or NULL */
	const char *shown;   /* as configured, for messages */
	char *shown_copy;
	char *format;
	json_t *fields;      /* name -> type */
	long long min_records;
	char *report;
} dc;

static void dc_destroy(void *self)
{
	dc *d = self;
	if (!d)
		return;
	free(d->path);
	free(d->shown_copy);
	free(d->format);
	json_decref(d->fields);
	free(d->report);
	free(d);
}

static int type_ok(const char *t)
{
	return !strcmp(t, "string") || !strcmp(t, "integer") || !strcmp(t, "number") ||
	       !strcmp(t, "scalar") || !strcmp(t, "any");
}

static int dc_create(const train_config *cfg, train_ctx *ctx, void **self)
{
	dc *d = calloc(1, sizeof *d);
	if (!d)
		return TRAIN_ENOMEM;
	*self = d;
	const char *p = train_config_string(cfg, "path");
	if (p) {
		d->shown_copy = strdup(p);
		d->path = train_ctx_resolve(ctx, p);
		if (!d->shown_copy || !d->path)
			return TRAIN_ENOMEM;
		d->shown = d->shown_copy;
	}
	d->format = strdup(train_config_string(cfg, "format"));
	d->fields = json_object();
	if (!d->format || !d->fields)
		return TRAIN_ENOMEM;
	if (strcmp(d->format, "text") && strcmp(d->format, "jsonl") &&
	    strcmp(d->format, "text-or-jsonl"))
		return train_fail(ctx, "format must be text, jsonl or text-or-jsonl, not '%s'", d->format);
	const train_config *f = train_config_get(cfg, "fields");
	for (size_t i = 0; i < train_config_len(f); i++) {
		const char *t = train_config_as_string(train_config_at(f, i));
		if (!t || !type_ok(t))
			return train_fail(ctx, "fields: the type of '%s' must be string, integer, number, "
			                  "scalar or any", train_config_key_at(f, i));
		json_object_set_new(d->fields, train_config_key_at(f, i), json_string(t));
	}
	d->min_records = train_config_int(cfg, "min_records");
	if (d->min_records < 0)
		return train_fail(ctx, "min_records must not be negative");
	return TRAIN_OK;
}

/* Length of the valid UTF-8 sequence at p (n bytes left), or 0. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	unsigned c = p[0];
	if (c < 0x80)
		return c ? 1 : 0;
	size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
	if (!len || len > 4 || c > 0xf4 || n < len)
		return 0;
	for (size_t k = 1; k < len; k++)
		if ((p[k] & 0xc0) != 0x80)
			return 0;
	if (len == 3 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0)))
		return 0; /* overlong, surrogate */
	if (len == 4 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90)))
		return 0; /* overlong, past U+10FFFF */
	return len;
}

static int check_field(dc *d, train_ctx *ctx, long long line, json_t *obj, const char *name,
                       const char *type)
{
	json_t *v = json_object_get(obj, name);
	if (!v)
		return train_fail(ctx, "%s:%lld: no \"%s\" field", d->shown, line, name);
	int ok = !strcmp(type, "any") ||
	         (!strcmp(type, "string") && json_is_string(v)) ||
	         (!strcmp(type, "integer") && json_is_integer(v)) ||
	         (!strcmp(type, "number") && json_is_number(v)) ||
	         (!strcmp(type, "scalar") && (json_is_string(v) || json_is_number(v)));
	if (!ok)
		return train_fail(ctx, "%s:%lld: \"%s\" must be %s%s", d->shown, line, name,
		                  !strcmp(type, "scalar") ? "a string or a number" : "a ",
		                  !strcmp(type, "scalar") ? "" : type);
	return TRAIN_OK;
}

static int dc_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	(void)in;
	dc *d = self;
	long long lines = 0, records = 0, bytes = 0;
	const char *fmt = d->format;
	int rc = TRAIN_OK;
	char *buf = NULL;
	size_t cap = 0;
	FILE *f = NULL;
	if (!d->path) {
		fmt = "none";
		goto report;
	}
	if (!(f = fopen(d->path, "rbe"))) {
		rc = train_fail(ctx, "%s: cannot open", d->shown);
		goto out;
	}
	ssize_t n;
	int decided = strcmp(fmt, "text-or-jsonl") != 0;
	while ((n = getline(&buf, &cap, f)) >= 0) {
		lines++;
		bytes += n;
		const unsigned char *p = (const unsigned char *)buf;
		size_t len = (size_t)n;
		for (size_t i = 0; i < len;) {
			size_t l = utf8_len(p + i, len - i);
			if (!l) {
				rc = train_fail(ctx, "%s:%lld: not UTF-8 text (byte 0x%02x at column %zu)",
				                d->shown, lines, p[i], i + 1);
				goto out;
			}
			i += l;
		}
		size_t s = 0;
		while (s < len && (p[s] == ' ' || p[s] == '\t' || p[s] == '\r' || p[s] == '\n'))
			s++;
		if (s == len)
			continue;
		records++;
		if (!decided) {
			fmt = p[s] == '{' ? "jsonl" : "text";
			decided = 1;
		}
		if (strcmp(fmt, "jsonl"))
			continue;
		json_error_t jerr;
		json_t *obj = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
		if (!json_is_object(obj)) {
			rc = train_fail(ctx, "%s:%lld: not a JSON object%s%s", d->shown, lines,
			                obj ? "" : ": ", obj ? "" : jerr.text);
			json_decref(obj);
			goto out;
		}
		const char *k;
		json_t *t;
		json_object_foreach(d->fields, k, t) {
			if ((rc = check_field(d, ctx, lines, obj, k, json_string_value(t)))) {
				json_decref(obj);
				goto out;
			}
		}
		json_decref(obj);
	}
	if (ferror(f)) {
		rc = train_fail(ctx, "%s: cannot read", d->shown);
		goto out;
	}
	if (records < d->min_records) {
		rc = train_fail(ctx, "%s: %lld record%s, fewer than the %lld needed", d->shown, records,
		                records == 1 ? "" : "s", d->min_records);
		goto out;
	}
report:
	free(d->report);
	json_t *r = json_pack("{s:s, s:I, s:I, s:I}", "format", fmt, "bytes", (json_int_t)bytes,
	                      "lines", (json_int_t)lines, "records", (json_int_t)records);
	d->report = r ? json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(r);
	if (!d->report) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	if (d->path)
		train_log(ctx, TRAIN_LOG_INFO, "%s: %lld records (%s), fine", d->shown, records, fmt);
	rc = train_values_put_bytes(out, "report", REPORT_TYPE, d->report, strlen(d->report));
out:
	if (f)
		fclose(f);
	free(buf);
	return rc;
}

static int dc_persist(void *self, train_resource *res)
{
	dc *d = self;
	if (!d->report)
		return TRAIN_EINVAL;
	return train_resource_write(res, "report.json", d->report, strlen(d->report));
}

static int dc_load(const train_config *cfg, const train_resource *res, train_ctx *ctx, void **self)
{
	int rc = dc_create(cfg, ctx, self);
	if (rc)
		return rc;
	dc *d = *self;
	void *data = NULL;
	size_t size = 0;
	if ((rc = train_resource_read(res, "report.json", &data, &size)))
		return rc;
	d->report = realloc(data, size + 1);
	if (!d->report) {
		free(data);
		return TRAIN_ENOMEM;
	}
	d->report[size] = '\0';
	return TRAIN_OK;
}

static const train_component_class datacheck_class = {
	.struct_size = sizeof(train_component_class),
	.name = "DataCheck",
	.version = "1",
	.doc = "check a data file (UTF-8 text, JSON Lines with required fields) before training on it",
	.inputs = NULL,
	.outputs = dc_outputs,
	.params = dc_params,
	.create = dc_create,
	.train = dc_train,
	.persist = dc_persist,
	.load = dc_load,
	.destroy = dc_destroy,
};

static const train_component_class *const classes[] = { &datacheck_class, NULL };

TRAIN_PLUGIN_DEFINE("pipeline", "1.0.0", "MIT", "DataCheck: the data stage of the full pipeline",
                    classes);
