/*
 * graph.c - resolve a recipe schema against the loaded plugins, order it,
 * and fingerprint its nodes.
 *
 * A node's fingerprint covers exactly what decides its output: the class
 * name and version, the plugin ABI major, its canonical config (defaults
 * filled in, keys in sorted order, one spelling per number; PATH-typed keys
 * by the content of the file or folder they name, not by the name), and for
 * each input (sorted by input name) the fingerprint of the value it
 * receives, plus whatever the component's own fingerprint() adds.  So a
 * change to one node changes its fingerprint, and those downstream only as
 * far as its outputs change.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ctx_private.h"

/* What a class without a params table accepts: nothing. */
static const train_param no_params[] = { { NULL, TRAIN_PARAM_END, NULL, NULL } };
#include "config_private.h"
#include "graph.h"

#define FP_DOMAIN "libtrain node v1"

/* A node of the predict schema is wired by its class's process() names. */
static const char *const *class_inputs(const train_component_class *c, bool predict)
{
	return predict && c->process_inputs ? c->process_inputs : c->inputs;
}

static const char *const *class_outputs(const train_component_class *c, bool predict)
{
	return predict && c->process_outputs ? c->process_outputs : c->outputs;
}

static int cmp_param(const void *a, const void *b)
{
	return strcmp((*(const train_param *const *)a)->name, (*(const train_param *const *)b)->name);
}

static int cmp_edge(const void *a, const void *b)
{
	return strcmp(((const train_gedge *)a)->input, ((const train_gedge *)b)->input);
}

static int name_in(const char *const *list, const char *name)
{
	for (size_t i = 0; list && list[i]; i++)
		if (!strcmp(list[i], name))
			return 1;
	return 0;
}

static void join_names(char *buf, size_t size, const char *const *list)
{
	buf[0] = '\0';
	size_t len = 0;
	for (size_t i = 0; list && list[i] && len + 1 < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? ", " : "", list[i]);
	if (!list || !list[0])
		snprintf(buf, size, "(none)");
}

void train_graph_destroy(train_graph *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n; i++) {
		train_config_destroy(g->nodes[i].config);
		free(g->nodes[i].in);
	}
	free(g->nodes);
	free(g->order);
	free(g);
}

/* Kahn's algorithm; the recipe reader already refused cycles. */
static int topo_order(train_graph *g)
{
	size_t *indeg = calloc(g->n, sizeof *indeg);
	size_t *queue = malloc((g->n ? g->n : 1) * sizeof *queue);
	g->order = malloc((g->n ? g->n : 1) * sizeof *g->order);
	if (!indeg || !queue || !g->order) {
		free(indeg);
		free(queue);
		return TRAIN_ENOMEM;
	}
	for (size_t i = 0; i < g->n; i++)
		for (size_t e = 0; e < g->nodes[i].n_in; e++)
			if (g->nodes[i].in[e].from != SIZE_MAX)
				indeg[i]++;
	size_t head = 0, tail = 0, k = 0;
	for (size_t i = 0; i < g->n; i++)
		if (!indeg[i])
			queue[tail++] = i;
	while (head < tail) {
		size_t u = queue[head++];
		g->order[k++] = u;
		for (size_t v = 0; v < g->n; v++)
			for (size_t e = 0; e < g->nodes[v].n_in; e++)
				if (g->nodes[v].in[e].from == u && --indeg[v] == 0)
					queue[tail++] = v;
	}
	free(indeg);
	free(queue);
	return k == g->n ? TRAIN_OK : TRAIN_ECYCLE;
}

static void mark_needed(train_graph *g, size_t i)
{
	if (g->nodes[i].needed)
		return;
	g->nodes[i].needed = true;
	for (size_t e = 0; e < g->nodes[i].n_in; e++)
		if (g->nodes[i].in[e].from != SIZE_MAX)
			mark_needed(g, g->nodes[i].in[e].from);
}

/* The file a value was written in: a target's settings file, or the recipe. */
static const char *where_written(const train_config *v, const char *recipe_file)
{
	const char *f = train_config_file(v);
	return f && f[0] ? f : recipe_file;
}

static int paths_from_settings(train_gnode *n, const char *recipe_file, train_error *err)
{
	for (const train_param *p = n->cls->params; p && p->type != TRAIN_PARAM_END; p++) {
		train_config *v = (train_config *)train_config_get(n->config, p->name);
		const char *file = train_config_file(v), *text = train_config_as_string(v);
		if (p->type != TRAIN_PARAM_PATH || train_config_kind(v) != TRAIN_CFG_STRING || !file[0] ||
		    !strcmp(file, recipe_file) || text[0] == '/' || text[0] == '$')
			continue;
		/* Absolute: components resolve what is relative against the recipe.
		 * A value from the command line (`--set`, its file a flag:
		 * train_config_set_path) is relative to the working directory. */
		char *dir = strncmp(file, "--", 2) ? train_dirname(file) : train_strdup(".");
		char *abs_dir = dir ? realpath(dir, NULL) : NULL;
		char *full = abs_dir ? train_path_join(abs_dir, text) : NULL;
		int rc = full ? train_config_set_string(v, full) : dir && !abs_dir ? -errno : TRAIN_ENOMEM;
		free(dir);
		free(abs_dir);
		free(full);
		if (rc)
			return train_error_set(err, rc, file, 0, 0, "cannot resolve the folder of %s: %s",
			                       file, rc == TRAIN_ENOMEM ? "out of memory" : strerror(-rc));
	}
	return TRAIN_OK;
}

int train_graph_build(const train_recipe *recipe, const train_recipe_schema *schema,
                      train_registry *reg, train_graph **out, train_error *err)
{
	int rc = TRAIN_OK;
	const char *file = recipe->path;
	char names[512];
	train_graph *g = calloc(1, sizeof *g);
	if (!g)
		return TRAIN_ENOMEM;
	g->recipe = recipe;
	g->schema = schema;
	const bool predict = schema == &recipe->predict;
	g->n = schema->n_nodes;
	g->nodes = calloc(g->n ? g->n : 1, sizeof *g->nodes);
	if (!g->nodes) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < g->n; i++) {
		train_gnode *n = &g->nodes[i];
		const train_recipe_node *rn = &schema->nodes[i];
		n->rn = rn;
		train_error ferr = { 0 };
		rc = train_registry_find(reg, rn->component, &n->cls, &n->plugin, &ferr);
		if (rc == TRAIN_ENOTFOUND) {
			rc = train_error_set(err, TRAIN_EPLUGIN, file, rn->comp_line, rn->comp_col,
			                     "unknown component '%s' (node '%s'); `train plugins` lists "
			                     "the components found",
			                     rn->component, rn->name);
			goto out;
		}
		if (rc) {
			rc = train_error_set(err, rc, file, rn->comp_line, rn->comp_col, "node '%s': %s",
			                     rn->name, ferr.text);
			goto out;
		}
		char what[256];
		snprintf(what, sizeof what, "component %s", n->cls->name);
		rc = train_config_validate(rn->config, n->cls->params ? n->cls->params : no_params, what, &n->config, err);
		if (rc) {
			if (err && !err->file[0]) { /* e.g. a bad default: place it at the node */
				char text[TRAIN_ERROR_TEXT];
				snprintf(text, sizeof text, "%s", err->text);
				train_error_set(err, rc, file, rn->line, rn->col, "node '%s': %s", rn->name,
				                text);
			}
			goto out;
		}
		/* A PATH written in another file (a target's settings file) is
		 * relative to that file's folder, not the recipe's. */
		if ((rc = paths_from_settings(n, recipe->path, err)))
			goto out;
		/* Wire the inputs. */
		n->n_in = rn->n_needs;
		n->in = calloc(n->n_in ? n->n_in : 1, sizeof *n->in);
		if (!n->in) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		for (size_t k = 0; k < rn->n_needs; k++) {
			const train_recipe_need *nd = &rn->needs[k];
			train_gedge *e = &n->in[k];
			e->input = nd->input;
			if (!name_in(class_inputs(n->cls, predict), nd->input)) {
				join_names(names, sizeof names, class_inputs(n->cls, predict));
				rc = train_error_set(err, TRAIN_ECONFIG, file, nd->line, nd->col,
				                     "component %s has no input '%s'; its inputs: %s",
				                     n->cls->name, nd->input, names);
				goto out;
			}
			if (!nd->node) { /* a predict input */
				e->from = SIZE_MAX;
				e->output = nd->output;
				continue;
			}
			long p = train_recipe_find(schema, nd->node);
			if (p < 0) {
				rc = train_error_set(err, TRAIN_ENOTFOUND, file, nd->line, nd->col,
				                     "unknown node '%s'", nd->node);
				goto out;
			}
			e->from = (size_t)p;
		}
		qsort(n->in, n->n_in, sizeof *n->in, cmp_edge);
		const char *const *ins = class_inputs(n->cls, predict);
		for (size_t k = 0; ins && ins[k]; k++) {
			int found = 0;
			for (size_t e = 0; e < n->n_in; e++)
				found |= !strcmp(n->in[e].input, ins[k]);
			if (!found) {
				rc = train_error_set(err, TRAIN_ECONFIG, file, rn->line, rn->col,
				                     "node '%s': input '%s' of component %s is not connected "
				                     "(add it under needs)",
				                     rn->name, ins[k], n->cls->name);
				goto out;
			}
		}
	}
	/* Outputs: now that every class is known, check the producer side. */
	for (size_t i = 0; i < g->n; i++) {
		train_gnode *n = &g->nodes[i];
		for (size_t k = 0; k < n->n_in; k++) {
			train_gedge *e = &n->in[k];
			if (e->from == SIZE_MAX)
				continue;
			const train_recipe_need *nd = NULL;
			for (size_t q = 0; q < n->rn->n_needs; q++)
				if (!strcmp(n->rn->needs[q].input, e->input))
					nd = &n->rn->needs[q];
			const train_component_class *pc = g->nodes[e->from].cls;
			const char *const *outs = class_outputs(pc, predict);
			size_t nout = 0;
			while (outs && outs[nout])
				nout++;
			join_names(names, sizeof names, outs);
			if (nd->output) {
				if (!name_in(outs, nd->output)) {
					rc = train_error_set(err, TRAIN_ECONFIG, file, nd->line, nd->col,
					                     "node '%s' (%s) has no output '%s'; its outputs: %s",
					                     nd->node, pc->name, nd->output, names);
					goto out;
				}
				e->output = nd->output;
			} else if (nout == 1) {
				e->output = outs[0];
			} else {
				rc = train_error_set(err, TRAIN_ECONFIG, file, nd->line, nd->col,
				                     "node '%s' (%s) has %s outputs; write '%s.OUTPUT' with one "
				                     "of: %s",
				                     nd->node, pc->name, nout ? "several" : "no", nd->node,
				                     names);
				goto out;
			}
		}
	}
	rc = topo_order(g);
	if (rc)
		goto out;
	for (size_t i = 0; i < g->n; i++)
		g->nodes[i].config_fp = train_graph_config_fp(g->nodes[i].config, g->nodes[i].cls->params);
	for (size_t i = 0; i < g->n; i++)
		if (g->nodes[i].rn->is_target)
			mark_needed(g, i);
out:
	if (rc) {
		train_graph_destroy(g);
		g = NULL;
	}
	*out = g;
	return rc;
}

static int hash_config(train_hasher *h, const train_gnode *n, const train_graph_vars *vars,
                       const char *base_dir, const char *file, train_error *err)
{
	size_t np = 0;
	while (n->cls->params && n->cls->params[np].type != TRAIN_PARAM_END)
		np++;
	const train_param **sorted = malloc((np ? np : 1) * sizeof *sorted);
	if (!sorted)
		return TRAIN_ENOMEM;
	for (size_t i = 0; i < np; i++)
		sorted[i] = &n->cls->params[i];
	qsort(sorted, np, sizeof *sorted, cmp_param);
	int rc = TRAIN_OK;
	train_hasher_u64(h, np);
	for (size_t i = 0; i < np && !rc; i++) {
		const train_config *v = train_config_get(n->config, sorted[i]->name);
		train_hasher_str(h, sorted[i]->name);
		if (sorted[i]->type == TRAIN_PARAM_PATH && train_config_kind(v) == TRAIN_CFG_STRING) {
			const char *p = train_config_as_string(v);
			char *full = train_resolve_path(p, base_dir, vars ? vars->data_path : NULL,
			                                vars ? vars->domain_path : NULL);
			if (!full) {
				rc = train_error_set(err, TRAIN_ECONFIG, where_written(v, file), train_config_line(v),
				                     train_config_col(v),
				                     "node '%s': '%s' needs %s on the command line",
				                     n->rn->name, p, p[1] == 'd' && p[2] == 'a' ? "--data" : "--domain");
				break;
			}
			train_error perr = { 0 };
			train_hasher_str(h, "path-content");
			rc = train_hasher_path(h, full, &perr);
			if (rc)
				rc = train_error_set(err, rc, where_written(v, file), train_config_line(v), train_config_col(v),
				                     "node '%s': key '%s': %s: %s", n->rn->name, sorted[i]->name,
				                     full, perr.text);
			free(full);
			continue;
		}
		char *canon = NULL;
		size_t size = 0;
		rc = train_config_canonical(v, &canon, &size);
		if (!rc) {
			train_hasher_u64(h, size);
			train_hasher_update(h, canon, size);
		}
		free(canon);
	}
	free(sorted);
	return rc;
}

train_fp train_graph_config_fp(const train_config *config, const train_param *params)
{
	train_hasher *h;
	train_fp fp = { 0, 0 };
	if (train_hasher_create(&h))
		return fp;
	for (size_t i = 0; params && params[i].type != TRAIN_PARAM_END; i++) {
		if (!strcmp(params[i].name, "epochs"))
			continue;
		char *canon = NULL;
		size_t size = 0;
		if (train_config_canonical(train_config_get(config, params[i].name), &canon, &size))
			continue;
		train_hasher_str(h, params[i].name);
		train_hasher_u64(h, size);
		train_hasher_update(h, canon, size);
		free(canon);
	}
	fp = train_hasher_digest(h);
	train_hasher_destroy(h);
	return fp;
}

int train_graph_node_fp(const train_graph *g, size_t i, const train_fp *input_fps,
                        const train_graph_vars *vars, const train_ctx *proto, const char *salt,
                        train_fp *out, train_error *err)
{
	const train_gnode *n = &g->nodes[i];
	train_hasher *h;
	int rc = train_hasher_create(&h);
	if (rc)
		return rc;
	train_hasher_str(h, FP_DOMAIN);
	train_hasher_u64(h, TRAIN_ABI_MAJOR);
	train_hasher_str(h, n->cls->name);
	train_hasher_str(h, n->cls->version);
	rc = hash_config(h, n, vars, g->recipe->base_dir, g->recipe->path, err);
	if (rc)
		goto out;
	train_hasher_u64(h, n->n_in);
	for (size_t e = 0; e < n->n_in; e++) {
		train_hasher_str(h, n->in[e].input);
		if (n->in[e].from == SIZE_MAX) {
			train_hasher_str(h, "$input");
			train_hasher_str(h, n->in[e].output);
		} else {
			train_hasher_fp(h, input_fps[e]);
		}
	}
	train_hasher_str(h, salt);
	if (n->cls->fingerprint) {
		train_ctx ctx = *proto;
		ctx.node = n->rn->name;
		ctx.fail[0] = '\0';
		void *self = NULL;
		rc = n->cls->create(n->config, &ctx, &self);
		if (!rc)
			rc = n->cls->fingerprint(self, h);
		if (self)
			n->cls->destroy(self);
		if (rc) {
			rc = train_error_set(err, TRAIN_ECOMPONENT, g->recipe->path, n->rn->line, n->rn->col,
			                     "node '%s': fingerprint failed: %s", n->rn->name,
			                     ctx.fail[0] ? ctx.fail : train_strerror(rc));
			goto out;
		}
	}
	*out = train_hasher_digest(h);
out:
	train_hasher_destroy(h);
	return rc;
}
