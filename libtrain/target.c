/*
 * target.c - a target's settings file (`train --target NAME --config FILE`)
 * applied to its recipe.
 *
 * A recipe for a target names the settings it takes as string values
 * `$config.SECTION.KEY` in its node configs; this file replaces each by the
 * value at that path of the settings file (a copy, which keeps the settings
 * file's line for messages), or leaves the key out when the file does not
 * set it (the component's default applies).  Every key of the settings file
 * must be taken by some `$config.` reference (a reference to a section takes
 * all of it) or be listed in the recipe's `config_ignored`, which prints
 * its reason as a note; any other key is an error that lists the keys the
 * target knows.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "config_private.h"
#include "target.h"
#include "util.h"

#define PREFIX "$config."

typedef struct ref {
	char *path;  /* "model.d_model" */
} ref;

typedef struct subst {
	const train_config *settings; /* may be NULL: every reference is absent */
	ref *refs;
	size_t n_refs, cap_refs;
	train_error *err;
} subst;

/* The node at dotted `path` in `root`, or NULL. */
static const train_config *lookup(const train_config *root, const char *path)
{
	const train_config *c = root;
	const char *p = path;
	while (c && *p) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		char key[256];
		if (len == 0 || len >= sizeof key)
			return NULL;
		memcpy(key, p, len);
		key[len] = '\0';
		c = train_config_get(c, key);
		p = dot ? dot + 1 : p + len;
	}
	return c;
}

static int add_ref(subst *s, const char *path)
{
	for (size_t i = 0; i < s->n_refs; i++)
		if (!strcmp(s->refs[i].path, path))
			return TRAIN_OK;
	if (s->n_refs == s->cap_refs) {
		size_t nc = s->cap_refs ? s->cap_refs * 2 : 16;
		ref *nr = realloc(s->refs, nc * sizeof *nr);
		if (!nr)
			return TRAIN_ENOMEM;
		s->refs = nr;
		s->cap_refs = nc;
	}
	if (!(s->refs[s->n_refs].path = strdup(path)))
		return TRAIN_ENOMEM;
	s->n_refs++;
	return TRAIN_OK;
}

static bool good_path(const char *p)
{
	if (!*p || *p == '.')
		return false;
	for (; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_' || *p == '-' || (*p == '.' && p[1] && p[1] != '.')))
			return false;
	return true;
}

static int on_string(const train_config *s, const train_config **repl, void *arg)
{
	subst *st = arg;
	const char *text = train_config_as_string(s);
	if (!text || strncmp(text, PREFIX, strlen(PREFIX)) != 0)
		return TRAIN_SUBST_KEEP;
	const char *path = text + strlen(PREFIX);
	if (!good_path(path))
		return train_error_set(st->err, TRAIN_ECONFIG, train_config_file(s), train_config_line(s),
		                       train_config_col(s),
		                       "'%s' is not a settings reference (write $config.SECTION.KEY)", text);
	int rc = add_ref(st, path);
	if (rc)
		return rc;
	const train_config *v = st->settings ? lookup(st->settings, path) : NULL;
	if (!v || train_config_kind(v) == TRAIN_CFG_NULL)
		return TRAIN_SUBST_DROP;
	*repl = v;
	return TRAIN_SUBST_REPLACE;
}

static int subst_schema(train_recipe_schema *sc, subst *st)
{
	for (size_t i = 0; i < sc->n_nodes; i++) {
		train_recipe_node *n = &sc->nodes[i];
		if (!n->config)
			continue;
		train_config *copy = NULL;
		int rc = train_config_copy_subst(n->config, on_string, st, &copy);
		if (rc)
			return rc;
		train_config_destroy(n->config);
		n->config = copy;
	}
	return TRAIN_OK;
}

/* Is `path` (or a section above it) referenced or ignored? */
static bool covered(const char *path, const subst *st, const train_config *ignored)
{
	for (size_t i = 0; i < st->n_refs; i++) {
		size_t l = strlen(st->refs[i].path);
		if (!strncmp(path, st->refs[i].path, l) && (path[l] == '\0' || path[l] == '.'))
			return true;
	}
	for (size_t i = 0; i < train_config_len(ignored); i++) {
		const char *k = train_config_key_at(ignored, i);
		size_t l = strlen(k);
		if (!strncmp(path, k, l) && (path[l] == '\0' || path[l] == '.'))
			return true;
	}
	return false;
}

/* Does some reference, or some config_ignored key, lie below section
 * `path`?  (A section whose keys are all ignored, such as the RAG target's
 * `model:` until its encoder lands, is looked into like any other.) */
static bool below(const char *path, const subst *st, const train_config *ignored)
{
	size_t l = strlen(path);
	for (size_t i = 0; i < st->n_refs; i++)
		if (!strncmp(st->refs[i].path, path, l) && st->refs[i].path[l] == '.')
			return true;
	for (size_t i = 0; ignored && i < train_config_len(ignored); i++) {
		const char *k = train_config_key_at(ignored, i);
		if (!strncmp(k, path, l) && k[l] == '.')
			return true;
	}
	return false;
}

static int ref_cmp(const void *a, const void *b)
{
	return strcmp(((const ref *)a)->path, ((const ref *)b)->path);
}

static int unknown_key(const subst *st, const train_config *key, const char *path,
                       const char *target, train_error *err)
{
	train_buf b = { 0 };
	for (size_t i = 0; i < st->n_refs; i++)
		if (train_buf_printf(&b, "%s%s", i ? ", " : "", st->refs[i].path))
			break;
	int rc = train_error_set(err, TRAIN_ECONFIG, train_config_file(key), train_config_line(key),
	                         train_config_col(key), "unknown key '%s' for target %s; known keys: %.*s",
	                         path, target, b.data ? (int)b.len : 6, b.data ? b.data : "(none)");
	free(b.data);
	return rc;
}

/* Every key of `map` (at `prefix`) taken or ignored. */
static int check_keys(const train_config *map, const char *prefix, const subst *st,
                      const train_config *ignored, const char *target, const train_log_sink *log,
                      train_error *err)
{
	for (size_t i = 0; i < train_config_len(map); i++) {
		const char *k = train_config_key_at(map, i);
		const train_config *v = train_config_at(map, i);
		char *path = *prefix ? train_strfmt("%s.%s", prefix, k) : train_strdup(k);
		if (!path)
			return TRAIN_ENOMEM;
		int rc = TRAIN_OK;
		const train_config *why = train_config_get(ignored, path);
		if (why) {
			train_logf(log, TRAIN_LOG_INFO, "note: %s:%u: '%s' is not used by target %s: %s",
			           train_config_file(v), train_config_line(v), path, target,
			           train_config_as_string(why) ? train_config_as_string(why) : "");
		} else if (covered(path, st, ignored)) {
			/* taken whole */
		} else if (train_config_kind(v) == TRAIN_CFG_MAP && below(path, st, ignored)) {
			rc = check_keys(v, path, st, ignored, target, log, err);
		} else {
			rc = unknown_key(st, train_config_key_node_at(map, i), path, target, err);
		}
		free(path);
		if (rc)
			return rc;
	}
	return TRAIN_OK;
}

int train_target_apply(train_recipe *r, const train_config *settings, bool check,
                       const train_log_sink *log, train_error *err)
{
	subst st = { .settings = settings, .err = err };
	int rc = subst_schema(&r->train, &st);
	if (!rc)
		rc = subst_schema(&r->predict, &st);
	if (!rc && check && settings && train_config_kind(settings) != TRAIN_CFG_NULL) {
		if (train_config_kind(settings) != TRAIN_CFG_MAP)
			rc = train_error_set(err, TRAIN_ECONFIG, train_config_file(settings),
			                     train_config_line(settings), train_config_col(settings),
			                     "the settings file must be a map of sections (model:, "
			                     "training:, data:)");
		else {
			qsort(st.refs, st.n_refs, sizeof *st.refs, ref_cmp);
			rc = check_keys(settings, "", &st, r->config_ignored, r->name, log, err);
		}
	}
	for (size_t i = 0; i < st.n_refs; i++)
		free(st.refs[i].path);
	free(st.refs);
	if (rc == TRAIN_ENOMEM && err && !err->text[0])
		train_error_set(err, rc, NULL, 0, 0, "out of memory");
	return rc;
}

int train_settings_load(const train_run_options *opt, train_config **out, train_error *err)
{
	*out = NULL;
	const char *path = opt->struct_size >= offsetof(train_run_options, settings_path) +
	                                               sizeof opt->settings_path
	                           ? opt->settings_path : NULL;
	size_t n_set = opt->struct_size >= offsetof(train_run_options, n_settings_set) +
	                                           sizeof opt->n_settings_set
	                       ? opt->n_settings_set : 0;
	int rc = TRAIN_OK;
	if (path && (rc = train_config_load(path, out, err)))
		return rc;
	for (size_t i = 0; i < n_set && !rc; i++) {
		const train_setting *s = &opt->settings_set[i];
		char *origin = s->origin ? train_strdup(s->origin)
		                         : train_strfmt("--set %s=%s", s->path ? s->path : "",
		                                        s->value ? s->value : "");
		if (!origin)
			rc = train_error_set(err, TRAIN_ENOMEM, NULL, 0, 0, "out of memory");
		else
			rc = train_config_set_path(out, s->path, s->value ? s->value : "", origin, err);
		free(origin);
	}
	if (rc) {
		train_config_destroy(*out);
		*out = NULL;
	}
	return rc;
}
