/*
 * testparts.c - small, real components for the graph and runner tests.
 *
 *   Source    no inputs; out = config `value`; may sleep (`sleep_ms`, in `steps`
 *             with a loss), fail, or abort (`crash_at`)
 *   Echo      in -> out = in + `suffix`; counts epochs across finetunes
 *   Join      a, b -> out = a "|" b
 *   Split     in -> left, right (halves of the text)
 *   FileText  reads the PATH-typed `path` -> out
 *
 * Each persists a small state file, so model archives and the cache have
 * something to carry, and each implements process() for predict tests.
 */
#include <train/plugin.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct part {
	char *text;       /* Source: value; Echo: suffix; FileText: file content */
	double epochs;    /* Echo: epochs trained so far (finetunes add up) */
	int configured_epochs;
	int fail;
	int sleep_ms;
	int steps, crash_at;
	int64_t work;
	uint64_t sink;
} part;

static void part_destroy(void *self)
{
	part *p = self;
	if (!p)
		return;
	free(p->text);
	free(p);
}

static int part_new(const char *text, part **out)
{
	part *p = calloc(1, sizeof *p);
	if (!p || !(p->text = strdup(text ? text : ""))) {
		free(p);
		return TRAIN_ENOMEM;
	}
	*out = p;
	return TRAIN_OK;
}

static int put_text(train_values *out, const char *name, const char *text)
{
	return train_values_put_bytes(out, name, "text/plain", text, strlen(text));
}

static const char *get_text(const train_values *in, const char *name)
{
	const train_value *v = train_values_get(in, name);
	return v ? train_value_data(v) : "";
}

static int persist_text(void *self, train_resource *res)
{
	part *p = self;
	char buf[64];
	int rc = train_resource_write(res, "state.txt", p->text, strlen(p->text));
	snprintf(buf, sizeof buf, "%.17g\n", p->epochs);
	return rc ? rc : train_resource_write(res, "epochs.txt", buf, strlen(buf));
}

static int load_text(const train_config *config, const train_resource *res, train_ctx *ctx,
                     void **self)
{
	void *data = NULL, *ep = NULL;
	size_t size, esize;
	part *p = NULL;
	int rc = train_resource_read(res, "state.txt", &data, &size);
	if (rc)
		return train_fail(ctx, "state.txt: %s", train_strerror(rc));
	rc = train_resource_read(res, "epochs.txt", &ep, &esize);
	if (!rc)
		rc = part_new(data, &p);
	if (!rc) {
		p->epochs = strtod(ep, NULL);
		const train_config *e = train_config_get(config, "epochs");
		p->configured_epochs = e ? (int)train_config_as_int(e) : 1;
		const train_config *sfx = train_config_get(config, "suffix");
		if (sfx) { /* Echo: the config's suffix wins over the stored one */
			free(p->text);
			p->text = strdup(train_config_as_string(sfx));
			if (!p->text)
				rc = TRAIN_ENOMEM;
		}
	}
	free(data);
	free(ep);
	if (rc) {
		part_destroy(p);
		return rc;
	}
	*self = p;
	return TRAIN_OK;
}

/* ---- Source --------------------------------------------------------------- */

static const train_param source_params[] = {
	{ "value", TRAIN_PARAM_STRING, "x", "the text to emit" },
	{ "sleep_ms", TRAIN_PARAM_INT, "0", "sleep this long in train()" },
	{ "fail", TRAIN_PARAM_BOOL, "false", "fail in train()" },
	{ "steps", TRAIN_PARAM_INT, "0",
	  "report this many progress steps (with a falling loss) across sleep_ms" },
	{ "crash_at", TRAIN_PARAM_INT, "0", "abort() the process at this step (0: never)" },
	{ "work", TRAIN_PARAM_INT, "0",
	  "with steps: instead of sleeping, compute this many million steps of an LCG per step "
	  "(a CPU-bound job for bench/serve_bench)" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};
static const char *const out_only[] = { "out", NULL };

static int source_create(const train_config *config, train_ctx *ctx, void **self)
{
	(void)ctx;
	part *p;
	int rc = part_new(train_config_string(config, "value"), &p);
	if (rc)
		return rc;
	p->sleep_ms = (int)train_config_int(config, "sleep_ms");
	p->fail = train_config_bool(config, "fail");
	p->steps = (int)train_config_int(config, "steps");
	p->crash_at = (int)train_config_int(config, "crash_at");
	p->work = train_config_int(config, "work");
	*self = p;
	return TRAIN_OK;
}

static int source_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	(void)in;
	part *p = self;
	int ticks = p->sleep_ms / 10, steps = p->steps > 0 ? p->steps : 0, step = 0;
	if (steps && p->work > 0) {
		uint64_t x = 1;
		for (int k = 1; k <= steps; k++) {
			if (train_ctx_canceled(ctx))
				return TRAIN_ECANCELED;
			for (int64_t i = 0; i < p->work * 1000000; i++)
				x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			train_progress_loss(ctx, (uint64_t)k, (uint64_t)steps, 2.0 / (1.0 + 0.2 * k));
		}
		p->sink = x;
		ticks = 0;
	}
	for (int t = 0; t < ticks; t++) {
		if (train_ctx_canceled(ctx))
			return TRAIN_ECANCELED;
		struct timespec ts = { 0, 10 * 1000000L };
		nanosleep(&ts, NULL);
		/* step k of `steps` ends at tick ceil(k * ticks / steps) */
		while (steps && step < steps && (long)(t + 1) * steps >= (long)(step + 1) * ticks) {
			step++;
			if (p->crash_at && step == p->crash_at) {
				train_log(ctx, TRAIN_LOG_ERROR, "crashing at step %d as asked", step);
				abort();
			}
			train_progress_lr(ctx, (uint64_t)step, (uint64_t)steps, 2.0 / (1.0 + 0.2 * step),
			                  0.001 * (1.0 - (double)(step - 1) / steps));
		}
	}
	if (p->fail)
		return train_fail(ctx, "asked to fail");
	p->epochs += 1;
	return put_text(out, "out", p->text);
}

static int source_process(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	(void)ctx;
	(void)in;
	return put_text(out, "out", ((part *)self)->text);
}

static const train_component_class source_class = {
	.struct_size = sizeof(train_component_class),
	.name = "Source",
	.version = "1",
	.doc = "emits its configured text",
	.outputs = out_only,
	.params = source_params,
	.create = source_create,
	.train = source_train,
	.process = source_process,
	.persist = persist_text,
	.load = load_text,
	.destroy = part_destroy,
};

/* ---- Echo ----------------------------------------------------------------- */

static const train_param echo_params[] = {
	{ "suffix", TRAIN_PARAM_STRING, "\"\"", "appended to the input" },
	{ "epochs", TRAIN_PARAM_INT, "1", "epochs per training" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};
static const char *const in_only[] = { "in", NULL };

static int echo_create(const train_config *config, train_ctx *ctx, void **self)
{
	(void)ctx;
	part *p;
	int rc = part_new(train_config_string(config, "suffix"), &p);
	if (rc)
		return rc;
	p->configured_epochs = (int)train_config_int(config, "epochs");
	*self = p;
	return TRAIN_OK;
}

static int echo_out(part *p, const train_values *in, train_values *out)
{
	const char *s = get_text(in, "in");
	size_t n = strlen(s) + strlen(p->text) + 1;
	char *buf = malloc(n);
	if (!buf)
		return TRAIN_ENOMEM;
	snprintf(buf, n, "%s%s", s, p->text);
	int rc = put_text(out, "out", buf);
	free(buf);
	return rc;
}

static int echo_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	part *p = self;
	p->epochs += p->configured_epochs * train_ctx_epoch_fraction(ctx);
	return echo_out(p, in, out);
}

static int echo_process(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	(void)ctx;
	return echo_out(self, in, out);
}

static const train_component_class echo_class = {
	.struct_size = sizeof(train_component_class),
	.name = "Echo",
	.version = "1",
	.doc = "copies its input, with a suffix",
	.inputs = in_only,
	.outputs = out_only,
	.params = echo_params,
	.create = echo_create,
	.train = echo_train,
	.process = echo_process,
	.persist = persist_text,
	.load = load_text,
	.destroy = part_destroy,
};

/* ---- Join ----------------------------------------------------------------- */

static const char *const join_in[] = { "a", "b", NULL };

static int empty_create(const train_config *config, train_ctx *ctx, void **self)
{
	(void)config;
	(void)ctx;
	part *p = NULL;
	int rc = part_new("", &p);
	*self = p;
	return rc;
}

static int join_run(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	(void)ctx;
	(void)self;
	const char *a = get_text(in, "a"), *b = get_text(in, "b");
	size_t n = strlen(a) + strlen(b) + 2;
	char *buf = malloc(n);
	if (!buf)
		return TRAIN_ENOMEM;
	snprintf(buf, n, "%s|%s", a, b);
	int rc = put_text(out, "out", buf);
	free(buf);
	return rc;
}

static const train_component_class join_class = {
	.struct_size = sizeof(train_component_class),
	.name = "Join",
	.version = "1",
	.doc = "joins two texts with '|'",
	.inputs = join_in,
	.outputs = out_only,
	.create = empty_create,
	.train = join_run,
	.process = join_run,
	.persist = persist_text,
	.load = load_text,
	.destroy = part_destroy,
};

/* ---- Split ---------------------------------------------------------------- */

static const char *const split_out[] = { "left", "right", NULL };

static int split_run(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	(void)ctx;
	(void)self;
	const char *s = get_text(in, "in");
	size_t n = strlen(s), h = n / 2;
	int rc = train_values_put_bytes(out, "left", "text/plain", s, h);
	return rc ? rc : train_values_put_bytes(out, "right", "text/plain", s + h, n - h);
}

static const train_component_class split_class = {
	.struct_size = sizeof(train_component_class),
	.name = "Split",
	.version = "1",
	.doc = "splits a text in two halves",
	.inputs = in_only,
	.outputs = split_out,
	.create = empty_create,
	.train = split_run,
	.process = split_run,
	.persist = persist_text,
	.load = load_text,
	.destroy = part_destroy,
};

/* ---- FileText ------------------------------------------------------------- */

static const train_param file_params[] = {
	{ "path", TRAIN_PARAM_PATH, NULL, "file to read" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

static int file_create(const train_config *config, train_ctx *ctx, void **self)
{
	char *path = train_ctx_resolve(ctx, train_config_string(config, "path"));
	if (!path)
		return train_fail(ctx, "cannot resolve path");
	FILE *f = fopen(path, "rb");
	char buf[4096];
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	int rc = f ? TRAIN_OK : train_fail(ctx, "cannot open %s", path);
	free(path);
	part *p = NULL;
	if (!rc)
		rc = part_new(buf, &p);
	*self = p;
	return rc;
}

static const train_component_class file_class = {
	.struct_size = sizeof(train_component_class),
	.name = "FileText",
	.version = "1",
	.doc = "reads a text file",
	.outputs = out_only,
	.params = file_params,
	.create = file_create,
	.train = source_process,
	.process = source_process,
	.persist = persist_text,
	.load = load_text,
	.destroy = part_destroy,
};

static const train_component_class *const classes[] = {
	&source_class, &echo_class, &join_class, &split_class, &file_class, NULL,
};

TRAIN_PLUGIN_DEFINE("testparts", "1.0.0", "MIT", "components for libtrain's own tests", classes);
