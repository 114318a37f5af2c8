/*
 * libtrain/recipe.c - read a recipe (recipe.h has the format and the rules).
 *
 * config.c parses the YAML into a tree with locations; this file walks the
 * tree once per schema, copies what it finds into train_recipe, and checks
 * the structure: keys, types, names, references and cycles.  What needs the
 * plugins (does the component exist, are its config keys and inputs right)
 * is left to graph.c.
 */
#include "recipe.h"

#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define INPUT_PREFIX "$input"

/* ------------------------------------------------------------------------
 * Errors at a node.
 */

/* Fill `err` with the location of `at` (or none) and return `code`. */
static int fail_at(train_error *err, int code, const train_config *at, const char *fmt, ...)
	TRAIN_PRINTF(4, 5);

static int fail_at(train_error *err, int code, const train_config *at, const char *fmt, ...)
{
	char text[TRAIN_ERROR_TEXT];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	return train_error_set(err, code, at ? train_config_file(at) : NULL, train_config_line(at),
	                       train_config_col(at), "%s", text);
}

static int nomem(train_error *err)
{
	return train_error_set(err, TRAIN_ENOMEM, NULL, 0, 0, "out of memory");
}

static const char *kind_name(const train_config *c)
{
	switch (train_config_kind(c)) {
	case TRAIN_CFG_NULL: return "null";
	case TRAIN_CFG_BOOL: return "a boolean";
	case TRAIN_CFG_INT: return "an integer";
	case TRAIN_CFG_FLOAT: return "a number";
	case TRAIN_CFG_STRING: return "a string";
	case TRAIN_CFG_LIST: return "a list";
	case TRAIN_CFG_MAP: return "a map";
	}
	return "?";
}

/* A NULL-terminated list of names, as "a, b, c". */
static void join(char *buf, size_t cap, const char *const *names)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; names && names[i] && o < cap; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", names[i]);
}

/* Refuse any key of `map` not in `known`.  `where` is "in the recipe",
 * "in 'train'", "in node 'x'". */
static int check_keys(const train_config *map, const char *const *known, const char *where,
                      train_error *err)
{
	for (size_t i = 0; i < train_config_len(map); i++) {
		const char *k = train_config_key_at(map, i);
		size_t j = 0;
		while (known[j] && strcmp(known[j], k) != 0)
			j++;
		if (!known[j]) {
			char list[256];
			join(list, sizeof list, known);
			return fail_at(err, TRAIN_ECONFIG, train_config_key_node_at(map, i),
			               "unknown key '%s' %s; known keys: %s", k, where, list);
		}
	}
	return TRAIN_OK;
}

static bool name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_' || ch == '-';
}

/* [A-Za-z0-9_-]+ */
static bool good_name(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!name_char(*s))
			return false;
	return true;
}

/* The recipe name goes into the model's file name: [A-Za-z0-9_.-]+, no
 * leading '.', so it can neither hide the file nor climb out of out_dir. */
static bool good_recipe_name(const char *s)
{
	if (!s || !*s || *s == '.')
		return false;
	for (; *s; s++)
		if (!name_char(*s) && *s != '.')
			return false;
	return true;
}

static bool is_string(const train_config *c)
{
	return train_config_kind(c) == TRAIN_CFG_STRING;
}

/* ------------------------------------------------------------------------
 * Freeing.
 */

static void schema_free(train_recipe_schema *s)
{
	for (size_t i = 0; i < s->n_nodes; i++) {
		train_recipe_node *n = &s->nodes[i];
		free(n->name);
		free(n->component);
		train_config_destroy(n->config);
		for (size_t k = 0; k < n->n_needs; k++) {
			free(n->needs[k].input);
			free(n->needs[k].node);
			free(n->needs[k].output);
		}
		free(n->needs);
		free(n->resource);
	}
	free(s->nodes);
	train_strv_free(s->inputs, s->n_inputs);
	free(s->by_name);
	memset(s, 0, sizeof *s);
}

void train_recipe_destroy(train_recipe *r)
{
	if (!r)
		return;
	free(r->path);
	free(r->base_dir);
	free(r->name);
	schema_free(&r->train);
	schema_free(&r->predict);
	train_config_destroy(r->root);
	free(r);
}

/* ------------------------------------------------------------------------
 * Finding nodes.
 */

long train_recipe_find(const train_recipe_schema *s, const char *name)
{
	if (!s || !name)
		return -1;
	if (!s->by_name) {
		for (size_t i = 0; i < s->n_nodes; i++)
			if (strcmp(s->nodes[i].name, name) == 0)
				return (long)i;
		return -1;
	}
	size_t lo = 0, hi = s->n_nodes;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(s->nodes[s->by_name[mid]].name, name);
		if (c == 0)
			return (long)s->by_name[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

typedef struct name_ref {
	const char *name;
	size_t index;
} name_ref;

static int name_ref_cmp(const void *a, const void *b)
{
	return strcmp(((const name_ref *)a)->name, ((const name_ref *)b)->name);
}

static int build_index(train_recipe_schema *s)
{
	name_ref *refs = malloc((s->n_nodes ? s->n_nodes : 1) * sizeof *refs);
	s->by_name = malloc((s->n_nodes ? s->n_nodes : 1) * sizeof *s->by_name);
	if (!refs || !s->by_name) {
		free(refs);
		free(s->by_name);
		s->by_name = NULL;
		return TRAIN_ENOMEM;
	}
	for (size_t i = 0; i < s->n_nodes; i++)
		refs[i] = (name_ref){ s->nodes[i].name, i };
	qsort(refs, s->n_nodes, sizeof *refs, name_ref_cmp);
	for (size_t i = 0; i < s->n_nodes; i++)
		s->by_name[i] = refs[i].index;
	free(refs);
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------
 * Reading a schema.
 */

typedef struct schema_ctx {
	const char *sname;              /* "train" or "predict" */
	bool predict;
	const train_config *map;        /* the schema's map */
	const train_config *nodes;      /* its `nodes` map */
	const train_recipe_schema *train; /* for `resource` (predict only) */
	train_error *err;
} schema_ctx;

static bool has_input(const train_recipe_schema *s, const char *name)
{
	for (size_t i = 0; i < s->n_inputs; i++)
		if (strcmp(s->inputs[i], name) == 0)
			return true;
	return false;
}

static int read_inputs(schema_ctx *c, train_recipe_schema *s)
{
	const train_config *in = train_config_get(c->map, "inputs");
	if (!in || train_config_kind(in) == TRAIN_CFG_NULL)
		return TRAIN_OK;
	if (train_config_kind(in) != TRAIN_CFG_LIST)
		return fail_at(c->err, TRAIN_ECONFIG, in, "'inputs' of '%s' must be a list of names, not %s",
		               c->sname, kind_name(in));
	size_t n = train_config_len(in);
	s->inputs = calloc(n + 1, sizeof *s->inputs); /* NULL-terminated, for join() */
	if (!s->inputs)
		return nomem(c->err);
	for (size_t i = 0; i < n; i++) {
		const train_config *item = train_config_at(in, i);
		const char *name = train_config_as_string(item);
		if (!is_string(item) || !good_name(name))
			return fail_at(c->err, TRAIN_ECONFIG, item,
			               "bad input name %s%s%s in '%s' (use letters, digits, '_' and '-')",
			               name ? "'" : "", name ? name : kind_name(item), name ? "'" : "",
			               c->sname);
		if (has_input(s, name))
			return fail_at(c->err, TRAIN_EEXIST, item, "input '%s' is listed twice", name);
		if (!(s->inputs[s->n_inputs] = strdup(name)))
			return nomem(c->err);
		s->n_inputs++;
	}
	return TRAIN_OK;
}

/* The node names of the schema, for messages ("a, b, c", cut short). */
static void node_names(const train_config *nodes, char *buf, size_t cap)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < train_config_len(nodes) && o + 1 < cap; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", train_config_key_at(nodes, i));
	if (o >= cap && cap > 4)
		memcpy(buf + cap - 4, "...", 4);
}

/* One entry of `needs`: "node", "node.output" or (predict) "$input.x". */
static int read_need(schema_ctx *c, const train_recipe_schema *s, const char *node_name,
                     const char *input, const train_config *v, train_recipe_need *nd)
{
	const char *text = train_config_as_string(v);
	char names[256];

	nd->line = train_config_line(v);
	nd->col = train_config_col(v);
	if (!(nd->input = strdup(input)))
		return nomem(c->err);
	if (!is_string(v))
		return fail_at(c->err, TRAIN_ECONFIG, v,
		               "need '%s' of node '%s' must be a string (\"node\" or \"node.output\"), not %s",
		               input, node_name, kind_name(v));
	size_t plen = strlen(INPUT_PREFIX);
	if (strncmp(text, INPUT_PREFIX, plen) == 0 && (text[plen] == '.' || text[plen] == '\0')) {
		const char *x = text[plen] ? text + plen + 1 : "";
		if (!c->predict)
			return fail_at(c->err, TRAIN_ECONFIG, v,
			               "node '%s' needs '%s', but $input is only allowed in predict",
			               node_name, text);
		if (!*x)
			return fail_at(c->err, TRAIN_ECONFIG, v,
			               "node '%s' needs '%s': write $input.NAME with a name from 'inputs'",
			               node_name, text);
		if (!has_input(s, x)) {
			join(names, sizeof names, (const char *const *)s->inputs);
			return fail_at(c->err, TRAIN_ENOTFOUND, v,
			               "node '%s' needs '%s', but '%s' is not in 'inputs' of '%s' (inputs: %s)",
			               node_name, text, x, c->sname, s->n_inputs ? names : "none");
		}
		nd->node = NULL;
		if (!(nd->output = strdup(x)))
			return nomem(c->err);
		return TRAIN_OK;
	}
	const char *dot = strchr(text, '.');
	size_t nlen = dot ? (size_t)(dot - text) : strlen(text);
	if (!(nd->node = strndup(text, nlen)))
		return nomem(c->err);
	if (dot) {
		if (!dot[1])
			return fail_at(c->err, TRAIN_ECONFIG, v,
			               "node '%s' needs '%s': the output name after '.' is empty",
			               node_name, text);
		if (!(nd->output = strdup(dot + 1)))
			return nomem(c->err);
	}
	if (!nd->node[0])
		return fail_at(c->err, TRAIN_ECONFIG, v, "node '%s' needs '%s': the node name is empty",
		               node_name, text);
	if (!train_config_get(c->nodes, nd->node)) {
		node_names(c->nodes, names, sizeof names);
		return fail_at(c->err, TRAIN_ENOTFOUND, v,
		               "node '%s' needs unknown node '%s' (nodes of '%s': %s)", node_name, nd->node,
		               c->sname, names);
	}
	return TRAIN_OK;
}

static const char *const train_node_keys[] = { "component", "config", "needs", NULL };
static const char *const predict_node_keys[] = { "component", "config", "needs", "resource", NULL };

static int read_node(schema_ctx *c, train_recipe_schema *s, size_t i)
{
	int rc;
	const train_config *key = train_config_key_node_at(c->nodes, i);
	const train_config *v = train_config_at(c->nodes, i);
	const char *name = train_config_as_string(key);
	train_recipe_node *n = &s->nodes[i];
	char where[300];

	n->line = train_config_line(key);
	n->col = train_config_col(key);
	if (!good_name(name))
		return fail_at(c->err, TRAIN_ECONFIG, key,
		               "bad node name '%s' (use letters, digits, '_' and '-')", name);
	if (!(n->name = strdup(name)))
		return nomem(c->err);
	if (train_config_kind(v) != TRAIN_CFG_MAP)
		return fail_at(c->err, TRAIN_ECONFIG, train_config_kind(v) == TRAIN_CFG_NULL ? key : v,
		               "node '%s' must be a map with a 'component', not %s", name, kind_name(v));
	snprintf(where, sizeof where, "in node '%s'", name);
	rc = check_keys(v, c->predict ? predict_node_keys : train_node_keys, where, c->err);
	if (rc)
		return rc;

	const train_config *comp = train_config_get(v, "component");
	if (!comp)
		return fail_at(c->err, TRAIN_ECONFIG, key, "node '%s' has no 'component'", name);
	if (!is_string(comp) || !*train_config_as_string(comp))
		return fail_at(c->err, TRAIN_ECONFIG, comp,
		               "'component' of node '%s' must be a component name, not %s", name,
		               is_string(comp) ? "an empty string" : kind_name(comp));
	n->comp_line = train_config_line(comp);
	n->comp_col = train_config_col(comp);
	if (!(n->component = strdup(train_config_as_string(comp))))
		return nomem(c->err);

	const train_config *cfg = train_config_get(v, "config");
	if (cfg && train_config_kind(cfg) != TRAIN_CFG_NULL) {
		if (train_config_kind(cfg) != TRAIN_CFG_MAP)
			return fail_at(c->err, TRAIN_ECONFIG, cfg, "'config' of node '%s' must be a map, not %s",
			               name, kind_name(cfg));
		if (train_config_copy(cfg, &n->config))
			return nomem(c->err);
	}

	const train_config *needs = train_config_get(v, "needs");
	if (needs && train_config_kind(needs) != TRAIN_CFG_NULL) {
		if (train_config_kind(needs) != TRAIN_CFG_MAP)
			return fail_at(c->err, TRAIN_ECONFIG, needs,
			               "'needs' of node '%s' must be a map of input name -> node, not %s", name,
			               kind_name(needs));
		size_t nn = train_config_len(needs);
		n->needs = calloc(nn ? nn : 1, sizeof *n->needs);
		if (!n->needs)
			return nomem(c->err);
		for (size_t k = 0; k < nn; k++) {
			n->n_needs++; /* counted first, so destroy frees a half-read need */
			rc = read_need(c, s, name, train_config_key_at(needs, k), train_config_at(needs, k),
			               &n->needs[k]);
			if (rc)
				return rc;
		}
	}

	const train_config *res = train_config_get(v, "resource");
	if (res && train_config_kind(res) != TRAIN_CFG_NULL) {
		if (!is_string(res))
			return fail_at(c->err, TRAIN_ECONFIG, res,
			               "'resource' of node '%s' must be the name of a train node, not %s", name,
			               kind_name(res));
		const char *rname = train_config_as_string(res);
		if (train_recipe_find(c->train, rname) < 0)
			return fail_at(c->err, TRAIN_ENOTFOUND, res,
			               "resource '%s' of node '%s' is not a node of 'train'", rname, name);
		if (!(n->resource = strdup(rname)))
			return nomem(c->err);
	}
	return TRAIN_OK;
}

static int read_targets(schema_ctx *c, train_recipe_schema *s)
{
	const train_config *t = train_config_get(c->map, "targets");
	if (!t)
		return fail_at(c->err, TRAIN_ECONFIG, c->map, "'%s' has no 'targets'", c->sname);
	if (train_config_kind(t) != TRAIN_CFG_LIST)
		return fail_at(c->err, TRAIN_ECONFIG, t, "'targets' of '%s' must be a list of node names, not %s",
		               c->sname, kind_name(t));
	if (!train_config_len(t))
		return fail_at(c->err, TRAIN_ECONFIG, t, "'targets' of '%s' is empty", c->sname);
	for (size_t i = 0; i < train_config_len(t); i++) {
		const train_config *item = train_config_at(t, i);
		if (!is_string(item))
			return fail_at(c->err, TRAIN_ECONFIG, item, "a target must be a node name, not %s",
			               kind_name(item));
		const char *name = train_config_as_string(item);
		long at = train_recipe_find(s, name);
		if (at < 0) {
			char names[256];
			node_names(c->nodes, names, sizeof names);
			return fail_at(c->err, TRAIN_ENOTFOUND, item,
			               "target '%s' is not a node of '%s' (nodes: %s)", name, c->sname, names);
		}
		s->nodes[at].is_target = true;
	}
	return TRAIN_OK;
}

/* Depth-first search along `needs`, without recursion (a generated recipe
 * can be a chain of thousands of nodes).  The first back edge found closes
 * a cycle; it is reported from the node it returns to. */
static int check_cycles(const train_recipe_schema *s, const train_config *nodes, train_error *err)
{
	enum { WHITE, GRAY, BLACK };
	int rc = TRAIN_OK;
	size_t n = s->n_nodes, top = 0;
	unsigned char *color = calloc(n ? n : 1, 1);
	size_t *stack = malloc((n ? n : 1) * sizeof *stack); /* node on the path */
	size_t *next = malloc((n ? n : 1) * sizeof *next);   /* its next need to follow */
	train_buf msg = { 0 };
	if (!color || !stack || !next) {
		rc = nomem(err);
		goto out;
	}
	for (size_t start = 0; start < n; start++) {
		if (color[start] != WHITE)
			continue;
		color[start] = GRAY;
		stack[0] = start;
		next[0] = 0;
		top = 1;
		while (top) {
			size_t u = stack[top - 1];
			const train_recipe_node *un = &s->nodes[u];
			if (next[top - 1] == un->n_needs) {
				color[u] = BLACK;
				top--;
				continue;
			}
			const train_recipe_need *nd = &un->needs[next[top - 1]++];
			if (!nd->node)
				continue;
			long w = train_recipe_find(s, nd->node);
			if (w < 0 || color[w] == BLACK)
				continue;
			if (color[w] == WHITE) {
				color[w] = GRAY;
				stack[top] = (size_t)w;
				next[top] = 0;
				top++;
				continue;
			}
			/* A back edge: the cycle is the path from w to u, then w. */
			size_t from = top - 1;
			while (stack[from] != (size_t)w)
				from--;
			rc = train_buf_str(&msg, "cycle: ");
			for (size_t k = from; !rc && k < top; k++)
				rc = train_buf_printf(&msg, "%s -> ", s->nodes[stack[k]].name);
			if (!rc)
				rc = train_buf_str(&msg, s->nodes[w].name);
			if (rc) {
				rc = nomem(err);
				goto out;
			}
			rc = fail_at(err, TRAIN_ECYCLE, train_config_key_node_at(nodes, (size_t)w), "%s",
			             msg.data);
			goto out;
		}
	}
out:
	train_buf_free(&msg);
	free(color);
	free(stack);
	free(next);
	return rc;
}

static const char *const train_schema_keys[] = { "targets", "nodes", NULL };
static const char *const predict_schema_keys[] = { "inputs", "targets", "nodes", NULL };

static int read_schema(const train_config *root, const char *sname, const train_recipe_schema *train,
                       train_recipe_schema *s, train_error *err)
{
	int rc;
	schema_ctx c = { .sname = sname, .predict = train != NULL, .train = train, .err = err };
	char where[32];

	c.map = train_config_get(root, sname);
	if (train_config_kind(c.map) != TRAIN_CFG_MAP)
		return fail_at(err, TRAIN_ECONFIG, c.map, "'%s' must be a map with 'nodes' and 'targets', not %s",
		               sname, kind_name(c.map));
	s->present = true;
	snprintf(where, sizeof where, "in '%s'", sname);
	rc = check_keys(c.map, c.predict ? predict_schema_keys : train_schema_keys, where, err);
	if (rc)
		return rc;
	c.nodes = train_config_get(c.map, "nodes");
	if (!c.nodes)
		return fail_at(err, TRAIN_ECONFIG, c.map, "'%s' has no 'nodes'", sname);
	if (train_config_kind(c.nodes) != TRAIN_CFG_MAP)
		return fail_at(err, TRAIN_ECONFIG, c.nodes, "'nodes' of '%s' must be a map of node name -> node, not %s",
		               sname, kind_name(c.nodes));
	if (!train_config_len(c.nodes))
		return fail_at(err, TRAIN_ECONFIG, c.nodes, "'nodes' of '%s' is empty", sname);
	if ((rc = read_inputs(&c, s)))
		return rc;

	size_t nn = train_config_len(c.nodes);
	s->nodes = calloc(nn, sizeof *s->nodes);
	if (!s->nodes)
		return nomem(err);
	for (size_t i = 0; i < nn; i++) {
		s->n_nodes++; /* counted first, so destroy frees a half-read node */
		if ((rc = read_node(&c, s, i)))
			return rc;
	}
	if (build_index(s))
		return nomem(err);
	if ((rc = read_targets(&c, s)))
		return rc;
	return check_cycles(s, c.nodes, err);
}

/* ------------------------------------------------------------------------
 * The whole recipe.
 */

static const char *const top_keys[] = { "version", "name", "train", "predict", "config_ignored",
                                        NULL };

/* The default name: the file name without its directory and .yml/.yaml,
 * with anything a model file name should not hold replaced by '_'. */
static char *default_name(const char *path)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	size_t len = strlen(base);
	if (len >= 4 && strcmp(base + len - 4, ".yml") == 0)
		len -= 4;
	else if (len >= 5 && strcmp(base + len - 5, ".yaml") == 0)
		len -= 5;
	if (!len)
		return strdup("recipe");
	char *name = strndup(base, len);
	if (!name)
		return NULL;
	for (char *p = name; *p; p++)
		if (!name_char(*p) && !(*p == '.' && p != name))
			*p = '_';
	return name;
}

static int read_recipe(train_recipe *r, train_error *err)
{
	int rc;
	const train_config *root = r->root;

	if (train_config_kind(root) == TRAIN_CFG_NULL)
		return fail_at(err, TRAIN_ECONFIG, root, "the recipe is empty (it needs version: 1 and train)");
	if (train_config_kind(root) != TRAIN_CFG_MAP)
		return fail_at(err, TRAIN_ECONFIG, root,
		               "a recipe must be a map with version, name, train and predict, not %s",
		               kind_name(root));
	if ((rc = check_keys(root, top_keys, "in the recipe", err)))
		return rc;

	const train_config *ver = train_config_get(root, "version");
	if (!ver)
		return fail_at(err, TRAIN_ECONFIG, root, "the recipe has no 'version' (write version: 1)");
	if (train_config_kind(ver) != TRAIN_CFG_INT || train_config_as_int(ver) != 1) {
		const char *text = train_config_as_string(ver);
		return fail_at(err, TRAIN_ECONFIG, ver, "unsupported recipe version %s%s%s (this libtrain reads version 1)",
		               is_string(ver) ? "\"" : "", text ? text : kind_name(ver),
		               is_string(ver) ? "\"" : "");
	}

	const train_config *name = train_config_get(root, "name");
	if (name) {
		const char *text = train_config_as_string(name);
		if (!is_string(name) || !good_recipe_name(text))
			return fail_at(err, TRAIN_ECONFIG, name,
			               "bad recipe name %s%s%s (use letters, digits, '_', '-' and '.', "
			               "not first)",
			               text ? "'" : "", text ? text : kind_name(name), text ? "'" : "");
		r->name = strdup(text);
	} else {
		r->name = default_name(r->path);
	}
	if (!r->name)
		return nomem(err);

	const train_config *ign = train_config_get(root, "config_ignored");
	if (ign && train_config_kind(ign) != TRAIN_CFG_NULL) {
		if (train_config_kind(ign) != TRAIN_CFG_MAP)
			return fail_at(err, TRAIN_ECONFIG, ign,
			               "'config_ignored' must be a map of SECTION.KEY: reason, not %s",
			               kind_name(ign));
		for (size_t i = 0; i < train_config_len(ign); i++)
			if (!is_string(train_config_at(ign, i)))
				return fail_at(err, TRAIN_ECONFIG, train_config_at(ign, i),
				               "config_ignored: the reason for '%s' must be a string",
				               train_config_key_at(ign, i));
		r->config_ignored = ign;
	}

	if (!train_config_get(root, "train"))
		return fail_at(err, TRAIN_ECONFIG, root, "the recipe has no 'train' section");
	if ((rc = read_schema(root, "train", NULL, &r->train, err)))
		return rc;
	if (train_config_get(root, "predict"))
		rc = read_schema(root, "predict", &r->train, &r->predict, err);
	return rc;
}

int train_recipe_parse(const char *text, size_t size, const char *name, const char *base_dir,
                       train_recipe **out, train_error *err)
{
	int rc = TRAIN_OK;
	train_recipe *r = calloc(1, sizeof *r);

	*out = NULL;
	if (!r)
		return nomem(err);
	r->path = strdup(name ? name : "");
	r->base_dir = strdup(base_dir ? base_dir : ".");
	if (!r->path || !r->base_dir) {
		rc = nomem(err);
		goto out;
	}
	if ((rc = train_config_parse(text, size, r->path, &r->root, err)))
		goto out;
	rc = read_recipe(r, err);
out:
	if (rc) {
		train_recipe_destroy(r);
		r = NULL;
	}
	*out = r;
	return rc;
}

int train_recipe_load(const char *path, train_recipe **out, train_error *err)
{
	char *data = NULL, *dir = NULL;
	size_t size = 0;

	*out = NULL;
	int rc = train_read_file(path, &data, &size, err);
	if (rc)
		return rc;
	dir = train_dirname(path);
	if (!dir) {
		rc = nomem(err);
		goto out;
	}
	rc = train_recipe_parse(data, size, path, dir, out, err);
out:
	free(data);
	free(dir);
	return rc;
}
