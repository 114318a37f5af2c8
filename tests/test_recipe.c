/*
 * tests/test_recipe.c - reading recipes: a good recipe with every field,
 * and the bad recipes under $TRAIN_TEST_DATA/recipes/bad, where each
 * <case>.yml must fail with exactly the text in <case>.err (as
 * train_error_format prints it, file name relative).
 */
#include "recipe.h"
#include "util.h"

#include "testlib.h"

static const char *data_dir(void)
{
	const char *d = getenv("TRAIN_TEST_DATA");
	return d && *d ? d : "tests/data";
}

static train_recipe *parse_ok(const char *yaml)
{
	train_recipe *r = NULL;
	train_error err = { 0 };
	int rc = train_recipe_parse(yaml, strlen(yaml), "r.yml", NULL, &r, &err);
	if (rc) {
		char buf[700];
		fprintf(stderr, "unexpected error: %s\n", train_error_format(&err, buf, sizeof buf));
	}
	CU_ASSERT_EQUAL(rc, TRAIN_OK);
	return r;
}

/* ---- the good recipe ----------------------------------------------------- */

static void test_good(void)
{
	char *path = train_strfmt("%s/recipes/good.yml", data_dir());
	char *dir = train_strfmt("%s/recipes", data_dir());
	train_recipe *r = NULL;
	train_error err = { 0 };
	char buf[700];
	int rc = train_recipe_load(path, &r, &err);
	if (rc)
		fprintf(stderr, "%s\n", train_error_format(&err, buf, sizeof buf));
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	CU_ASSERT_STRING_EQUAL(r->path, path);
	CU_ASSERT_STRING_EQUAL(r->base_dir, dir);
	CU_ASSERT_STRING_EQUAL(r->name, "hello");
	CU_ASSERT_PTR_NOT_NULL(r->root);

	const train_recipe_schema *t = &r->train;
	CU_ASSERT_TRUE(t->present);
	CU_ASSERT_EQUAL_FATAL(t->n_nodes, 3);
	CU_ASSERT_EQUAL(t->n_inputs, 0);
	/* file order */
	CU_ASSERT_STRING_EQUAL(t->nodes[0].name, "corpus");
	CU_ASSERT_STRING_EQUAL(t->nodes[1].name, "tokens");
	CU_ASSERT_STRING_EQUAL(t->nodes[2].name, "classifier");

	const train_recipe_node *corpus = &t->nodes[0];
	CU_ASSERT_STRING_EQUAL(corpus->component, "TextFile");
	CU_ASSERT_EQUAL(corpus->n_needs, 0);
	CU_ASSERT_FALSE(corpus->is_target);
	CU_ASSERT_PTR_NULL(corpus->resource);
	CU_ASSERT_STRING_EQUAL(train_config_string(corpus->config, "path"), "intents.tsv");
	CU_ASSERT_EQUAL(corpus->line, 7);
	CU_ASSERT_EQUAL(corpus->col, 5);
	CU_ASSERT_EQUAL(corpus->comp_line, 8);
	CU_ASSERT_EQUAL(corpus->comp_col, 18);

	const train_recipe_node *tokens = &t->nodes[1];
	CU_ASSERT_STRING_EQUAL(tokens->component, "basic/Tokenizer");
	CU_ASSERT_TRUE(tokens->is_target);
	CU_ASSERT_EQUAL_FATAL(tokens->n_needs, 1);
	CU_ASSERT_STRING_EQUAL(tokens->needs[0].input, "text");
	CU_ASSERT_STRING_EQUAL(tokens->needs[0].node, "corpus");
	CU_ASSERT_STRING_EQUAL(tokens->needs[0].output, "text");
	CU_ASSERT_EQUAL(tokens->needs[0].line, 12);
	CU_ASSERT_EQUAL(tokens->needs[0].col, 21);
	CU_ASSERT_TRUE(train_config_bool(tokens->config, "lower"));
	CU_ASSERT_EQUAL(train_config_int(tokens->config, "min_count"), 2);

	const train_recipe_node *cls = &t->nodes[2];
	CU_ASSERT_TRUE(cls->is_target);
	CU_ASSERT_EQUAL_FATAL(cls->n_needs, 2);
	CU_ASSERT_STRING_EQUAL(cls->needs[0].input, "examples");
	CU_ASSERT_STRING_EQUAL(cls->needs[0].node, "corpus");
	CU_ASSERT_PTR_NULL(cls->needs[0].output);
	CU_ASSERT_STRING_EQUAL(cls->needs[1].input, "tokens");
	CU_ASSERT_STRING_EQUAL(cls->needs[1].node, "tokens");
	CU_ASSERT_STRING_EQUAL(cls->needs[1].output, "tokens");
	CU_ASSERT_EQUAL(train_config_float(cls->config, "alpha"), 0.5);
	CU_ASSERT_EQUAL(train_config_len(train_config_get(cls->config, "labels")), 2);

	const train_recipe_schema *p = &r->predict;
	CU_ASSERT_TRUE(p->present);
	CU_ASSERT_EQUAL_FATAL(p->n_inputs, 2);
	CU_ASSERT_STRING_EQUAL(p->inputs[0], "text");
	CU_ASSERT_STRING_EQUAL(p->inputs[1], "lang");
	CU_ASSERT_EQUAL_FATAL(p->n_nodes, 2);
	const train_recipe_node *tok = &p->nodes[0], *cl = &p->nodes[1];
	CU_ASSERT_STRING_EQUAL(tok->resource, "tokens");
	CU_ASSERT_FALSE(tok->is_target);
	CU_ASSERT_PTR_NULL(tok->config);
	CU_ASSERT_EQUAL_FATAL(tok->n_needs, 1);
	CU_ASSERT_PTR_NULL(tok->needs[0].node); /* a predict input */
	CU_ASSERT_STRING_EQUAL(tok->needs[0].output, "text");
	CU_ASSERT_STRING_EQUAL(cl->resource, "classifier");
	CU_ASSERT_TRUE(cl->is_target);
	CU_ASSERT_EQUAL_FATAL(cl->n_needs, 2);
	CU_ASSERT_STRING_EQUAL(cl->needs[0].node, "tokenize");
	CU_ASSERT_STRING_EQUAL(cl->needs[0].output, "tokens");
	CU_ASSERT_PTR_NULL(cl->needs[1].node);

	CU_ASSERT_EQUAL(train_recipe_find(t, "corpus"), 0);
	CU_ASSERT_EQUAL(train_recipe_find(t, "classifier"), 2);
	CU_ASSERT_EQUAL(train_recipe_find(t, "tokens"), 1);
	CU_ASSERT_EQUAL(train_recipe_find(t, "tokenize"), -1);
	CU_ASSERT_EQUAL(train_recipe_find(p, "tokenize"), 0);
	CU_ASSERT_EQUAL(train_recipe_find(p, ""), -1);
	CU_ASSERT_EQUAL(train_recipe_find(NULL, "x"), -1);

	train_recipe_destroy(r);
	train_recipe_destroy(NULL);
	free(path);
	free(dir);
}

static void test_find_linear(void)
{
	/* A schema built by hand, without the name index. */
	train_recipe_node nodes[3] = { { .name = "c" }, { .name = "a" }, { .name = "b" } };
	train_recipe_schema s = { .nodes = nodes, .n_nodes = 3 };
	CU_ASSERT_EQUAL(train_recipe_find(&s, "a"), 1);
	CU_ASSERT_EQUAL(train_recipe_find(&s, "c"), 0);
	CU_ASSERT_EQUAL(train_recipe_find(&s, "d"), -1);
}

static void test_defaults(void)
{
	train_recipe *r = parse_ok("version: 1\ntrain:\n  targets: [a]\n  nodes:\n    a: {component: A, config: ~, needs: ~}\n");
	CU_ASSERT_STRING_EQUAL(r->name, "r");
	CU_ASSERT_STRING_EQUAL(r->base_dir, ".");
	CU_ASSERT_FALSE(r->predict.present);
	CU_ASSERT_EQUAL(r->predict.n_nodes, 0);
	CU_ASSERT_PTR_NULL(r->train.nodes[0].config);
	CU_ASSERT_EQUAL(r->train.nodes[0].n_needs, 0);
	train_recipe_destroy(r);

	/* The default name is safe for a file name. */
	static const struct {
		const char *file, *name;
	} names[] = {
		{ "dir/my recipe.yml", "my_recipe" }, { "x.yaml", "x" }, { ".yml", "recipe" },
		{ "a.b.yml", "a.b" }, { ".hidden.yml", "_hidden" }, { "", "recipe" },
	};
	const char *yaml = "version: 1\ntrain: {targets: [a], nodes: {a: {component: A}}}\n";
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		train_error err = { 0 };
		CU_ASSERT_EQUAL(train_recipe_parse(yaml, strlen(yaml), names[i].file, "/base", &r, &err), 0);
		CU_ASSERT_STRING_EQUAL(r->name, names[i].name);
		CU_ASSERT_STRING_EQUAL(r->base_dir, "/base");
		train_recipe_destroy(r);
	}
	train_error err = { 0 };
	CU_ASSERT_EQUAL(train_recipe_parse(yaml, strlen(yaml), NULL, NULL, &r, &err), 0);
	CU_ASSERT_STRING_EQUAL(r->name, "recipe");
	train_recipe_destroy(r);
}

static void test_load_errors(void)
{
	train_recipe *r = (train_recipe *)1;
	train_error err = { 0 };
	char buf[700];
	char *path = train_strfmt("%s/recipes/no-such-file.yml", data_dir());
	CU_ASSERT_TRUE(train_recipe_load(path, &r, &err) < 0);
	CU_ASSERT_PTR_NULL(r);
	CU_ASSERT_PTR_NOT_NULL(strstr(train_error_format(&err, buf, sizeof buf), "no-such-file.yml"));
	free(path);
}

/* A long generated chain: no recursion, no quadratic lookups. */
static void test_big_chain(void)
{
	const size_t n = 20000;
	train_buf b = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_buf_str(&b, "version: 1\ntrain:\n  targets: [n0]\n  nodes:\n"), 0);
	for (size_t i = 0; i < n; i++) {
		if (i + 1 < n)
			train_buf_printf(&b, "    n%zu: {component: C, needs: {x: n%zu}}\n", i, i + 1);
		else
			train_buf_printf(&b, "    n%zu: {component: C}\n", i);
	}
	train_recipe *r = parse_ok(b.data);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_EQUAL(r->train.n_nodes, n);
	CU_ASSERT_EQUAL(train_recipe_find(&r->train, "n12345"), 12345);
	/* (Its speed is bench/graph_bench.sh's: no timing asserts in tests.) */
	train_recipe_destroy(r);

	/* Close the chain into a cycle: the message names all of it, cut to fit. */
	char *last = strstr(b.data, "n19999: {component: C}");
	CU_ASSERT_PTR_NOT_NULL_FATAL(last);
	train_buf c = { 0 };
	train_buf_add(&c, b.data, (size_t)(last - b.data));
	train_buf_str(&c, "n19999: {component: C, needs: {x: n0}}\n");
	train_error err = { 0 };
	CU_ASSERT_EQUAL(train_recipe_parse(c.data, c.len, "big.yml", NULL, &r, &err), TRAIN_ECYCLE);
	CU_ASSERT_EQUAL(strncmp(err.text, "cycle: n0 -> n1 -> n2 -> ", 25), 0);
	CU_ASSERT_EQUAL(err.line, 5);
	train_buf_free(&b);
	train_buf_free(&c);
}

/* ---- bad recipes --------------------------------------------------------- */

/* Read <dir>/<case>.err, without the trailing newline. */
static char *expected_text(const char *dir, const char *ymlname)
{
	char *path = train_strfmt("%s/%.*s.err", dir, (int)(strlen(ymlname) - 4), ymlname);
	char *text = NULL;
	size_t size = 0;
	if (path && train_read_file(path, &text, &size, NULL) == 0) {
		while (size && (text[size - 1] == '\n' || text[size - 1] == '\r'))
			text[--size] = '\0';
	} else {
		fprintf(stderr, "%s: missing\n", path ? path : ymlname);
	}
	free(path);
	return text;
}

static void test_bad_recipes(void)
{
	char *dir = train_strfmt("%s/recipes/bad", data_dir());
	char **names = NULL;
	size_t count = 0, cases = 0;
	train_error lerr = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_list_files(dir, &names, &count, &lerr), TRAIN_OK);
	for (size_t i = 0; i < count; i++) {
		size_t len = strlen(names[i]);
		if (len > 4 && !strcmp(names[i] + len - 4, ".err")) {
			/* every .err has its .yml */
			char *yml = train_strfmt("%s/%.*s.yml", dir, (int)(len - 4), names[i]);
			if (!train_path_exists(yml))
				fprintf(stderr, "%s has no .yml\n", names[i]);
			CU_ASSERT_TRUE(train_path_exists(yml));
			free(yml);
			continue;
		}
		if (len <= 4 || strcmp(names[i] + len - 4, ".yml") != 0)
			continue;
		cases++;
		char *path = train_strfmt("%s/%s", dir, names[i]);
		char *text = NULL, *want = expected_text(dir, names[i]);
		size_t size = 0;
		CU_ASSERT_EQUAL_FATAL(train_read_file(path, &text, &size, NULL), 0);
		train_recipe *r = (train_recipe *)1;
		train_error err = { 0 };
		char got[700];
		int rc = train_recipe_parse(text, size, names[i], dir, &r, &err);
		train_error_format(&err, got, sizeof got);
		CU_ASSERT_TRUE(rc < 0);
		CU_ASSERT_EQUAL(rc, err.code);
		CU_ASSERT_PTR_NULL(r);
		if (rc == 0)
			train_recipe_destroy(r);
		if (!want || strcmp(got, want) != 0)
			fprintf(stderr, "\n%s:\n  got      %s\n  expected %s\n", names[i], got, want ? want : "(no .err)");
		CU_ASSERT_TRUE(want && strcmp(got, want) == 0);
		free(want);
		free(text);
		free(path);
	}
	CU_ASSERT_TRUE(cases >= 12);
	train_strv_free(names, count);
	free(dir);
}

/* The kind of each failure, for the cases that callers tell apart. */
static void test_bad_codes(void)
{
	static const struct {
		const char *name;
		int code;
	} cases[] = {
		{ "malformed", TRAIN_EPARSE },        { "tab", TRAIN_EPARSE },
		{ "alias", TRAIN_EPARSE },            { "multiple_docs", TRAIN_EPARSE },
		{ "unknown_top", TRAIN_ECONFIG },     { "unknown_node_key", TRAIN_ECONFIG },
		{ "missing_component", TRAIN_ECONFIG }, { "needs_type", TRAIN_ECONFIG },
		{ "bad_version", TRAIN_ECONFIG },     { "missing_train", TRAIN_ECONFIG },
		{ "input_in_train", TRAIN_ECONFIG },  { "bad_node_name", TRAIN_ECONFIG },
		{ "needs_unknown", TRAIN_ENOTFOUND }, { "target_unknown", TRAIN_ENOTFOUND },
		{ "resource_unknown", TRAIN_ENOTFOUND }, { "input_undeclared", TRAIN_ENOTFOUND },
		{ "duplicate_node", TRAIN_EEXIST },   { "duplicate_input", TRAIN_EEXIST },
		{ "cycle", TRAIN_ECYCLE },            { "self_cycle", TRAIN_ECYCLE },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *path = train_strfmt("%s/recipes/bad/%s.yml", data_dir(), cases[i].name);
		train_recipe *r = NULL;
		train_error err = { 0 };
		int rc = train_recipe_load(path, &r, &err);
		if (rc != cases[i].code)
			fprintf(stderr, "%s: code %d (%s), expected %d\n", cases[i].name, rc,
			        train_strerror(rc), cases[i].code);
		CU_ASSERT_EQUAL(rc, cases[i].code);
		/* loaded by path, the location names the path */
		CU_ASSERT_STRING_EQUAL(err.file, path);
		train_recipe_destroy(r);
		free(path);
	}
}

int main(void)
{
	static const test_case cases[] = {
		{ "good recipe", test_good },
		{ "find without index", test_find_linear },
		{ "defaults", test_defaults },
		{ "load errors", test_load_errors },
		{ "big chain", test_big_chain },
		{ "bad recipes", test_bad_recipes },
		{ "bad recipe codes", test_bad_codes },
		{ NULL, NULL },
	};
	return test_main("recipe", cases);
}
