/*
 * model.c - open a model archive and run its predict schema.
 *
 * The archive is extracted (safely: package.c refuses members that would
 * leave the folder) into a private temporary folder; metadata.json says
 * which components the predict schema has, their configs, inputs and the
 * train node whose persisted state each loads.
 */
#include <train/train.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ctx_private.h"

/* What a class without a params table accepts: nothing. */
static const train_param no_params[] = { { NULL, TRAIN_PARAM_END, NULL, NULL } };
#include "package.h"

typedef struct pnode {
	char *name;
	const train_component_class *cls;
	train_config *config;
	void *self;
	char **in_names;    /* input name */
	char **in_from;     /* producing predict node, or NULL for a predict input */
	char **in_output;   /* producer's output, or the predict input's name */
	size_t n_in;
	int target;
	train_values *outputs;
} pnode;

struct train_model {
	char *dir;
	char *metadata;
	pnode *nodes;
	size_t n;
	train_log_sink log;
	const train_registry *reg; /* for components that look up environments */
};

int train_model_inspect(const char *path, char **json, train_error *err)
{
	size_t size;
	int rc = train_package_read_member(path, "metadata.json", json, &size, err);
	if (rc == TRAIN_ENOTFOUND)
		rc = train_error_set(err, TRAIN_EPARSE, path, 0, 0,
		                     "not a libtrain model (no metadata.json)");
	return rc;
}

void train_model_close(train_model *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		pnode *p = &m->nodes[i];
		if (p->self)
			p->cls->destroy(p->self);
		train_config_destroy(p->config);
		train_values_destroy(p->outputs);
		for (size_t k = 0; k < p->n_in; k++) {
			free(p->in_names[k]);
			free(p->in_from[k]);
			free(p->in_output[k]);
		}
		free(p->in_names);
		free(p->in_from);
		free(p->in_output);
		free(p->name);
	}
	free(m->nodes);
	if (m->dir)
		train_rmtree(m->dir);
	free(m->dir);
	free(m->metadata);
	free(m);
}

const char *train_model_metadata(const train_model *m)
{
	return m->metadata;
}

static const char *jstr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

static int load_node(train_model *m, const char *path, json_t *o, pnode *p, train_registry *reg,
                     train_error *err)
{
	const char *name = jstr(o, "name"), *comp = jstr(o, "component"), *plugin = jstr(o, "plugin");
	const char *flow = jstr(o, "config"), *resource = jstr(o, "resource");
	json_t *needs = json_object_get(o, "needs");
	if (!name || !comp || !flow || !json_is_object(needs))
		return train_error_set(err, TRAIN_EPARSE, path, 0, 0,
		                       "metadata.json: a predict node lacks name, component, config or needs");
	if (!(p->name = strdup(name)))
		return TRAIN_ENOMEM;
	train_error ferr = { 0 };
	int rc = TRAIN_ENOTFOUND;
	if (plugin && *plugin) {
		char *q = train_strfmt("%s/%s", plugin, comp);
		rc = q ? train_registry_find(reg, q, &p->cls, NULL, &ferr) : TRAIN_ENOMEM;
		free(q);
	}
	if (rc)
		rc = train_registry_find(reg, comp, &p->cls, NULL, &ferr);
	if (rc)
		return train_error_set(err, rc == TRAIN_ENOTFOUND ? TRAIN_EPLUGIN : rc, path, 0, 0,
		                       "the model needs component '%s' (plugin '%s'), which no loaded "
		                       "plugin offers%s%s",
		                       comp, plugin ? plugin : "?", ferr.text[0] ? ": " : "", ferr.text);
	if (!p->cls->process)
		return train_error_set(err, TRAIN_EUNSUPPORTED, path, 0, 0,
		                       "component '%s' (node '%s') cannot predict: it has no process()",
		                       comp, name);
	train_config *user = NULL;
	rc = train_config_parse(flow, strlen(flow), "metadata.json", &user, err);
	if (!rc) {
		char what[256];
		snprintf(what, sizeof what, "component %s", comp);
		rc = train_config_validate(user, p->cls->params ? p->cls->params : no_params, what, &p->config, err);
	}
	train_config_destroy(user);
	if (rc)
		return rc;
	size_t n = json_object_size(needs);
	p->in_names = calloc(n ? n : 1, sizeof *p->in_names);
	p->in_from = calloc(n ? n : 1, sizeof *p->in_from);
	p->in_output = calloc(n ? n : 1, sizeof *p->in_output);
	if (!p->in_names || !p->in_from || !p->in_output)
		return TRAIN_ENOMEM;
	const char *key;
	json_t *val;
	json_object_foreach(needs, key, val) {
		const char *ref = json_string_value(val);
		const char *dot = ref ? strchr(ref, '.') : NULL;
		if (!dot)
			return train_error_set(err, TRAIN_EPARSE, path, 0, 0,
			                       "metadata.json: node '%s': bad input reference", name);
		size_t k = p->n_in++;
		p->in_names[k] = strdup(key);
		p->in_from[k] = strncmp(ref, "$input.", 7) ? strndup(ref, (size_t)(dot - ref)) : NULL;
		p->in_output[k] = strdup(dot + 1);
		if (!p->in_names[k] || !p->in_output[k] || (ref[0] != '$' && !p->in_from[k]))
			return TRAIN_ENOMEM;
	}
	train_ctx ctx;
	train_ctx_init(&ctx, name, &m->log, 1, m->dir);
	ctx.reg = reg;
	if (resource) {
		if (!train_safe_relname(resource))
			return train_error_set(err, TRAIN_EUNSAFE, path, 0, 0,
			                       "metadata.json: bad resource name '%s'", resource);
		train_resource res = { .dir = train_strfmt("%s/components/%s", m->dir, resource) };
		rc = res.dir ? p->cls->load(p->config, &res, &ctx, &p->self) : TRAIN_ENOMEM;
		free(res.dir);
	} else {
		rc = p->cls->create(p->config, &ctx, &p->self);
	}
	if (rc)
		return train_error_set(err, rc, path, 0, 0, "node '%s' (%s): load failed: %s", name,
		                       comp, ctx.fail[0] ? ctx.fail : train_strerror(rc));
	return TRAIN_OK;
}

int train_model_open(const char *path, train_registry *reg, train_model **out, train_error *err)
{
	int rc;
	json_t *meta = NULL;
	train_model *m = calloc(1, sizeof *m);
	*out = NULL;
	if (!m)
		return TRAIN_ENOMEM;
	m->log.max_level = TRAIN_LOG_WARN;
	m->reg = reg;
	if ((rc = train_mkdtemp(NULL, "train-model-", &m->dir, err)) ||
	    (rc = train_package_extract(path, m->dir, err)))
		goto out;
	char *mp = train_path_join(m->dir, "metadata.json");
	size_t size;
	rc = mp ? train_read_file(mp, &m->metadata, &size, NULL) : TRAIN_ENOMEM;
	free(mp);
	if (rc) {
		rc = train_error_set(err, TRAIN_EPARSE, path, 0, 0, "not a libtrain model (no metadata.json)");
		goto out;
	}
	json_error_t jerr;
	meta = json_loads(m->metadata, 0, &jerr);
	if (!meta) {
		rc = train_error_set(err, TRAIN_EPARSE, path, (unsigned)jerr.line, (unsigned)jerr.column,
		                     "metadata.json: %s", jerr.text);
		goto out;
	}
	json_t *pred = json_object_get(meta, "predict");
	if (!json_is_object(pred)) {
		rc = train_error_set(err, TRAIN_EUNSUPPORTED, path, 0, 0,
		                     "the model has no predict schema");
		goto out;
	}
	json_t *nodes = json_object_get(pred, "nodes"), *targets = json_object_get(pred, "targets");
	if (!json_is_array(nodes) || !json_is_array(targets)) {
		rc = train_error_set(err, TRAIN_EPARSE, path, 0, 0, "metadata.json: bad predict schema");
		goto out;
	}
	m->nodes = calloc(json_array_size(nodes) + 1, sizeof *m->nodes);
	if (!m->nodes) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	size_t i;
	json_t *o;
	json_array_foreach(nodes, i, o) {
		m->n++;
		if ((rc = load_node(m, path, o, &m->nodes[i], reg, err)))
			goto out;
		json_t *t;
		size_t k;
		json_array_foreach(targets, k, t)
			if (json_is_string(t) && !strcmp(json_string_value(t), m->nodes[i].name))
				m->nodes[i].target = 1;
	}
out:
	json_decref(meta);
	if (rc)
		train_model_close(m);
	else
		*out = m;
	return rc;
}

static pnode *find_pnode(train_model *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++)
		if (!strcmp(m->nodes[i].name, name))
			return &m->nodes[i];
	return NULL;
}

int train_model_predict(train_model *m, const train_values *in, train_values *out,
                        train_error *err)
{
	int rc = TRAIN_OK;
	for (size_t i = 0; i < m->n; i++) {
		train_values_destroy(m->nodes[i].outputs);
		m->nodes[i].outputs = NULL;
	}
	/* Nodes are stored producers first. */
	for (size_t i = 0; i < m->n && !rc; i++) {
		pnode *p = &m->nodes[i];
		train_values *pin = NULL;
		if ((rc = train_values_create(&pin)) || (rc = train_values_create(&p->outputs))) {
			train_values_destroy(pin);
			break;
		}
		for (size_t k = 0; k < p->n_in && !rc; k++) {
			const train_value *v;
			if (!p->in_from[k]) {
				v = train_values_get(in, p->in_output[k]);
				if (!v)
					rc = train_error_set(err, TRAIN_EINVAL, NULL, 0, 0,
					                     "missing predict input '%s'", p->in_output[k]);
			} else {
				pnode *q = find_pnode(m, p->in_from[k]);
				v = q ? train_values_get(q->outputs, p->in_output[k]) : NULL;
				if (!v)
					rc = train_error_set(err, TRAIN_ECOMPONENT, NULL, 0, 0,
					                     "node '%s' has no output '%s' for node '%s'",
					                     p->in_from[k], p->in_output[k], p->name);
			}
			if (!rc)
				rc = train_values_put_take(pin, p->in_names[k], train_value_ref((train_value *)v));
		}
		if (!rc) {
			train_ctx ctx;
			train_ctx_init(&ctx, p->name, &m->log, 1, m->dir);
			ctx.reg = m->reg;
			rc = p->cls->process(p->self, pin, p->outputs, &ctx);
			if (rc)
				rc = train_error_set(err, rc, NULL, 0, 0, "node '%s' (%s): process failed: %s",
				                     p->name, p->cls->name,
				                     ctx.fail[0] ? ctx.fail : train_strerror(rc));
		}
		train_values_destroy(pin);
	}
	for (size_t i = 0; i < m->n && !rc; i++) {
		pnode *p = &m->nodes[i];
		if (!p->target)
			continue;
		size_t nout = train_values_len(p->outputs);
		for (size_t k = 0; k < nout && !rc; k++) {
			const char *oname = train_values_name_at(p->outputs, k);
			char *key = nout == 1 ? strdup(p->name) : train_strfmt("%s.%s", p->name, oname);
			rc = key ? train_values_put_take(out, key,
			                                 train_value_ref((train_value *)train_values_at(p->outputs, k)))
			         : TRAIN_ENOMEM;
			free(key);
		}
	}
	return rc;
}
