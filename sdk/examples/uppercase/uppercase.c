/*
 * uppercase.c - an example libtrain plugin, built out of tree.
 *
 * One component, Uppercase:
 *
 *   train    reads the text file named by its `path` parameter (relative
 *            to the recipe's folder) and outputs the text upper-cased;
 *   persist  keeps that text as "state.txt", and load reads it back;
 *   process  takes an input `text` and outputs it upper-cased.
 *
 * It is deliberately trivial: what it shows is the shape every plugin has
 * (a parameter table, a class with its entries, one TRAIN_PLUGIN_DEFINE),
 * error handling with train_fail(), and values and resources.  Only ASCII
 * letters change case; other bytes pass through untouched.
 *
 * Build: make   (needs libtrain's headers and pkg-config file installed)
 * Run:   train --plugin-path . --recipe recipe.yml
 */
#include <train/plugin.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The state of one Uppercase component. */
typedef struct uppercase {
	char *path; /* the file to read, already joined to the recipe's folder */
	char *text; /* the upper-cased text, once trained or loaded (else NULL) */
	size_t size;
} uppercase;

/* ---------------------------------------------------------------------------
 * Helpers */

static char *copy_text(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		if (n)
			memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

/* Upper-case `n` bytes in place.  toupper() takes an unsigned char value. */
static void to_upper(char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		s[i] = (char)toupper((unsigned char)s[i]);
}

/* ---------------------------------------------------------------------------
 * The component */

static const train_param uppercase_params[] = {
	{ "path", TRAIN_PARAM_PATH, NULL, "text file to read, relative to the recipe" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

/* train() reads its file and has no inputs; process() takes a text. */
static const char *const uppercase_process_inputs[] = { "text", NULL };
static const char *const uppercase_outputs[] = { "text", NULL };

static void uppercase_destroy(void *self)
{
	uppercase *u = self;
	if (!u)
		return;
	free(u->path);
	free(u->text);
	free(u);
}

/* create() must be cheap: the host calls it even when the output will come
 * from the cache.  So it only works out the file name; train() reads it.
 * The host has already checked that `path` is present, and it fingerprints
 * the file's content (PATH parameter), so this class needs no fingerprint
 * entry.  train_ctx_resolve() finds the file the way the host did:
 * relative to the recipe's folder, or under --data for "$data/...". */
static int uppercase_create(const train_config *config, train_ctx *ctx, void **self)
{
	const char *path = train_config_string(config, "path");
	uppercase *u = calloc(1, sizeof *u);
	if (!u)
		return TRAIN_ENOMEM;
	u->path = train_ctx_resolve(ctx, path);
	if (!u->path) {
		free(u);
		return train_fail(ctx, "cannot resolve path '%s' (no --data or --domain given?)",
		                  path);
	}
	*self = u;
	return TRAIN_OK;
}

static int uppercase_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	(void)in; /* it declares no train inputs: the file is its data */
	uppercase *u = self;
	int rc = TRAIN_OK;
	char *buf = NULL;
	size_t size = 0, cap = 0;
	FILE *f = fopen(u->path, "rb");
	if (!f)
		return train_fail(ctx, "cannot open %s: %s", u->path, strerror(errno));

	for (;;) {
		if (size + 4096 > cap) {
			size_t ncap = cap ? 2 * cap : 8192;
			char *p = realloc(buf, ncap);
			if (!p) {
				rc = TRAIN_ENOMEM;
				goto out;
			}
			buf = p;
			cap = ncap;
		}
		size_t got = fread(buf + size, 1, cap - size, f);
		size += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		rc = train_fail(ctx, "cannot read %s", u->path);
		goto out;
	}
	to_upper(buf, size);
	train_log(ctx, TRAIN_LOG_INFO, "read %zu bytes from %s", size, u->path);

	rc = train_values_put_bytes(out, "text", "text/plain", buf, size);
	if (rc != TRAIN_OK)
		goto out;
	free(u->text);
	u->text = buf; /* kept for persist() */
	u->size = size;
	buf = NULL;
out:
	free(buf);
	fclose(f);
	return rc;
}

static int uppercase_process(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	(void)self; /* the trained text is not needed to upper-case a new one */
	const train_value *v = train_values_get(in, "text");
	if (!v)
		return train_fail(ctx, "input 'text' is missing");

	size_t size = train_value_size(v);
	char *buf = copy_text(train_value_data(v), size);
	if (!buf)
		return TRAIN_ENOMEM;
	to_upper(buf, size);
	int rc = train_values_put_bytes(out, "text", "text/plain", buf, size);
	free(buf);
	return rc;
}

static int uppercase_persist(void *self, train_resource *res)
{
	const uppercase *u = self;
	return train_resource_write(res, "state.txt", u->text ? u->text : "", u->size);
}

static int uppercase_load(const train_config *config, const train_resource *res, train_ctx *ctx,
                          void **self)
{
	void *data = NULL;
	size_t size = 0;
	int rc = uppercase_create(config, ctx, self);
	if (rc != TRAIN_OK)
		return rc;

	rc = train_resource_read(res, "state.txt", &data, &size);
	if (rc != TRAIN_OK) {
		uppercase_destroy(*self);
		*self = NULL;
		return train_fail(ctx, "cannot read state.txt: %s", train_strerror(rc));
	}
	uppercase *u = *self;
	u->text = data;
	u->size = size;
	return TRAIN_OK;
}

static const train_component_class uppercase_class = {
	.struct_size = sizeof(train_component_class),
	.name = "Uppercase",
	.version = "1",
	.doc = "Upper-cases a text file (train) or an input text (process)",
	.outputs = uppercase_outputs,
	.process_inputs = uppercase_process_inputs,
	.params = uppercase_params,
	.create = uppercase_create,
	.fingerprint = NULL,
	.train = uppercase_train,
	.process = uppercase_process,
	.persist = uppercase_persist,
	.load = uppercase_load,
	.destroy = uppercase_destroy,
};

/* ---------------------------------------------------------------------------
 * The plugin */

static const train_component_class *const classes[] = { &uppercase_class, NULL };

TRAIN_PLUGIN_DEFINE("uppercase", "1.0.0", "MIT", "Example plugin: upper-cases text", classes);
