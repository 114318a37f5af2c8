/*
 * plugins/rasa/rasa.c - the "rasa" plugin: a Rasa 3.x project as graph
 * values (issue 4).
 *
 *   RasaDomain   path (default "$domain", the run's --domain) -> domain
 *   RasaNLU      path (default "$data")  -> nlu      the `nlu:` data (and
 *                                                    `responses:` of NLU files)
 *   RasaStories  path (default "$data")  -> stories  stories and rules
 *
 * Each reads with the <train/rasa.h> loaders and emits the serialized
 * struct (TRAIN_RASA_DOMAIN_TYPE, TRAIN_RASA_NLU_TYPE,
 * TRAIN_RASA_STORIES_TYPE), whose bytes hold the content only: no file
 * names, lines or comments, and nothing of the other two kinds.  The host
 * fingerprints a node by the content of its whole `path`, so a change to a
 * story reruns RasaNLU too, but its output comes out byte for byte the
 * same, and whatever reads only NLU data stays cached (the runner
 * fingerprints inputs by the values they carry).
 *
 * The loaders' warnings are logged as warnings with their file:line; an
 * error fails the node with the loader's file:line:col message.  Checking
 * the project as a whole is `train data validate` (and what `train nlu` /
 * `train core` run first), not these components: each sees one kind.
 *
 * Nothing is persisted: the values live in the cache and the graph, and a
 * model that needs the data at prediction time does not (prediction gets
 * messages, not training data).
 *
 * Threads: no global state; every call works on its own instance.
 */
#include <train/plugin.h>
#include <train/rasa.h>

#include <stdlib.h>
#include <string.h>

enum kind { K_DOMAIN, K_NLU, K_STORIES };

typedef struct importer {
	enum kind kind;
	char *path; /* as configured */
} importer;

static const train_param domain_params[] = {
	{ "path", TRAIN_PARAM_PATH, "$domain",
	  "the domain: a file, or a folder whose domain files are merged (default: --domain)" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};
static const train_param data_params[] = {
	{ "path", TRAIN_PARAM_PATH, "$data",
	  "training data: a YAML file, or a folder searched for them (default: --data)" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};
static const char *const domain_outputs[] = { "domain", NULL };
static const char *const nlu_outputs[] = { "nlu", NULL };
static const char *const stories_outputs[] = { "stories", NULL };

static void imp_destroy(void *self)
{
	importer *m = self;
	if (m) {
		free(m->path);
		free(m);
	}
}

static int imp_create(enum kind kind, const train_config *config, train_ctx *ctx, void **self)
{
	*self = NULL;
	const char *path = train_config_string(config, "path");
	if (!path || !path[0])
		return train_fail(ctx, "path: a file or folder is required");
	importer *m = calloc(1, sizeof *m);
	if (!m || !(m->path = strdup(path))) {
		free(m);
		return TRAIN_ENOMEM;
	}
	m->kind = kind;
	*self = m;
	return TRAIN_OK;
}

static int domain_create(const train_config *c, train_ctx *ctx, void **self)
{
	return imp_create(K_DOMAIN, c, ctx, self);
}
static int nlu_create(const train_config *c, train_ctx *ctx, void **self)
{
	return imp_create(K_NLU, c, ctx, self);
}
static int stories_create(const train_config *c, train_ctx *ctx, void **self)
{
	return imp_create(K_STORIES, c, ctx, self);
}

/* The loaders' findings, as log lines with their places. */
static void log_diags(train_ctx *ctx, const train_rasa_diags *d)
{
	for (size_t i = 0; i < train_rasa_diags_len(d); i++) {
		const train_rasa_diag *g = train_rasa_diags_at(d, i);
		if (g->severity != TRAIN_RASA_WARNING)
			continue;
		if (g->file && g->file[0] && g->line)
			train_log(ctx, TRAIN_LOG_WARN, "%s:%u: %s", g->file, g->line, g->text);
		else if (g->file && g->file[0])
			train_log(ctx, TRAIN_LOG_WARN, "%s: %s", g->file, g->text);
		else
			train_log(ctx, TRAIN_LOG_WARN, "%s", g->text);
	}
	if (train_rasa_diags_dropped(d))
		train_log(ctx, TRAIN_LOG_WARN, "%zu more warnings not shown",
		          train_rasa_diags_dropped(d));
}

static int imp_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	importer *m = self;
	train_rasa_diags *diags = NULL;
	train_rasa_domain *dom = NULL;
	train_rasa_nlu *nlu = NULL;
	train_rasa_stories *st = NULL;
	train_value *v = NULL;
	train_error err = { 0 };
	char buf[1024];
	int rc;
	(void)in;

	/* The same path the host fingerprinted. */
	char *path = train_ctx_resolve(ctx, m->path);
	if (!path)
		return m->path[0] == '$' ? train_fail(ctx, "path: %s needs the matching command-line "
		                                      "option (--data, --domain)", m->path)
		                         : TRAIN_ENOMEM;
	const char *paths[1] = { path };
	if ((rc = train_rasa_diags_create(&diags)))
		goto out;
	switch (m->kind) {
	case K_DOMAIN:
		rc = train_rasa_domain_load(paths, 1, &dom, diags, &err);
		break;
	case K_NLU:
		rc = train_rasa_nlu_load(paths, 1, &nlu, diags, &err);
		break;
	case K_STORIES:
		rc = train_rasa_stories_load(paths, 1, &st, diags, &err);
		break;
	}
	log_diags(ctx, diags);
	if (rc) {
		rc = rc == TRAIN_ENOMEM ? rc : train_fail(ctx, "%s", train_error_format(&err, buf, sizeof buf));
		goto out;
	}
	switch (m->kind) {
	case K_DOMAIN:
		rc = train_rasa_domain_to_value(dom, &v, &err);
		if (!rc)
			train_log(ctx, TRAIN_LOG_INFO, "domain from %s: %zu intents, %zu entities, %zu slots, "
			          "%zu responses, %zu actions, %zu forms", path, dom->n_intents,
			          dom->n_entities, dom->n_slots, dom->n_responses, dom->n_actions,
			          dom->n_forms);
		break;
	case K_NLU:
		rc = train_rasa_nlu_to_value(nlu, &v, &err);
		if (!rc && !nlu->n_messages && !nlu->n_synonyms && !nlu->n_regexes && !nlu->n_lookups)
			train_log(ctx, TRAIN_LOG_WARN, "no NLU data in %s (no nlu: examples)", path);
		else if (!rc)
			train_log(ctx, TRAIN_LOG_INFO, "NLU data from %s: %zu examples, %zu synonyms, %zu "
			          "regexes, %zu lookup tables, %zu responses", path, nlu->n_messages,
			          nlu->n_synonyms, nlu->n_regexes, nlu->n_lookups, nlu->n_responses);
		break;
	case K_STORIES:
		rc = train_rasa_stories_to_value(st, &v, &err);
		if (!rc && !st->n_items)
			train_log(ctx, TRAIN_LOG_WARN, "no stories or rules in %s", path);
		else if (!rc)
			train_log(ctx, TRAIN_LOG_INFO, "from %s: %zu stories, %zu rules", path, st->n_stories,
			          st->n_rules);
		break;
	}
	if (rc) {
		rc = rc == TRAIN_ENOMEM ? rc : train_fail(ctx, "%s", train_error_format(&err, buf, sizeof buf));
		goto out;
	}
	rc = train_values_put_take(out, m->kind == K_DOMAIN ? "domain" : m->kind == K_NLU ? "nlu"
	                                                                                : "stories", v);
out:
	train_rasa_domain_free(dom);
	train_rasa_nlu_free(nlu);
	train_rasa_stories_free(st);
	train_rasa_diags_destroy(diags);
	free(path);
	return rc;
}

/* The data lives in the cache and the graph, not in the model. */
static int imp_persist(void *self, train_resource *res)
{
	(void)self;
	(void)res;
	return TRAIN_OK;
}

static int domain_load(const train_config *c, const train_resource *res, train_ctx *ctx, void **self)
{
	(void)res;
	return domain_create(c, ctx, self);
}
static int nlu_load(const train_config *c, const train_resource *res, train_ctx *ctx, void **self)
{
	(void)res;
	return nlu_create(c, ctx, self);
}
static int stories_load(const train_config *c, const train_resource *res, train_ctx *ctx,
                        void **self)
{
	(void)res;
	return stories_create(c, ctx, self);
}

static const train_component_class domain_class = {
	.struct_size = sizeof(train_component_class),
	.name = "RasaDomain",
	.version = "1",
	.doc = "Read a Rasa domain (a file or a folder of them) into a domain value",
	.outputs = domain_outputs,
	.params = domain_params,
	.create = domain_create,
	.fingerprint = NULL, /* the host hashes the content of PATH params */
	.train = imp_train,
	.persist = imp_persist,
	.load = domain_load,
	.destroy = imp_destroy,
};

static const train_component_class nlu_class = {
	.struct_size = sizeof(train_component_class),
	.name = "RasaNLU",
	.version = "1",
	.doc = "Read the NLU data (nlu: and responses:) of Rasa data files into an NLU value",
	.outputs = nlu_outputs,
	.params = data_params,
	.create = nlu_create,
	.train = imp_train,
	.persist = imp_persist,
	.load = nlu_load,
	.destroy = imp_destroy,
};

static const train_component_class stories_class = {
	.struct_size = sizeof(train_component_class),
	.name = "RasaStories",
	.version = "1",
	.doc = "Read the stories and rules of Rasa data files into a stories value",
	.outputs = stories_outputs,
	.params = data_params,
	.create = stories_create,
	.train = imp_train,
	.persist = imp_persist,
	.load = stories_load,
	.destroy = imp_destroy,
};

static const train_component_class *const rasa_classes[] = {
	&domain_class,
	&nlu_class,
	&stories_class,
	NULL,
};

TRAIN_PLUGIN_DEFINE("rasa", "1.0.0", "MIT",
                    "RasaDomain, RasaNLU, RasaStories: a Rasa 3.x project as typed graph values",
                    rasa_classes);
