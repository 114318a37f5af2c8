/*
 * test_run.c - training runs through the public API, with the test
 * components of tests/plugins/testparts.c loaded as a real plugin.
 *
 * Checks what a user relies on: the first run trains everything, a rerun
 * trains nothing and packs identical components, a config change retrains
 * exactly the changed node and what depends on it, dry runs say so with
 * their flags, fingerprints follow content (not paths, times or YAML
 * spelling), failures stop the run without losing finished work, and
 * finetuning continues a model only when the graph matches.
 */
#include <train/train.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utime.h>

#include "testlib.h"

static train_registry *reg;

static void load_plugins(void)
{
	static const char *const names[] = { "testparts.so", NULL };
	const char *dir = test_plugin_dir(names);
	if (train_registry_create(&reg) || train_registry_add_dirs(reg, dir))
		abort();
	train_registry_use_defaults(reg, 0, 0);
	train_error err = { 0 };
	if (train_registry_scan(reg, &err)) {
		fprintf(stderr, "scan: %s\n", err.text);
		abort();
	}
}

typedef struct env {
	const char *dir;
	char recipe[600], cache[600], out[600], report[600];
} env;

static void env_init(env *e)
{
	e->dir = test_tmpdir();
	snprintf(e->recipe, sizeof e->recipe, "%s/recipe.yml", e->dir);
	snprintf(e->cache, sizeof e->cache, "%s/cache", e->dir);
	snprintf(e->out, sizeof e->out, "%s/models", e->dir);
	snprintf(e->report, sizeof e->report, "%s/report.json", e->dir);
}

static int run(env *e, int dry, int force, train_run_result *res, train_error *err)
{
	train_run_options o;
	train_run_options_init(&o);
	o.recipe_path = e->recipe;
	o.cache_dir = e->cache;
	o.out_dir = e->out;
	o.dry_run = dry;
	o.force = force;
	o.report_path = e->report;
	o.verbosity = TRAIN_QUIET;
	memset(err, 0, sizeof *err);
	int rc = train_run(reg, &o, res, err);
	if (rc)
		fprintf(stderr, "run: %s\n", err->text);
	return rc;
}

static train_node_status status_of(const train_run_result *r, const char *name)
{
	for (size_t i = 0; i < r->n_nodes; i++)
		if (!strcmp(r->nodes[i].name, name))
			return r->nodes[i].status;
	return (train_node_status)-1;
}

/* "abc" -> every node named a, b, c has status s; others not. */
static int statuses_are(const train_run_result *r, const char *names, train_node_status s)
{
	for (size_t i = 0; i < r->n_nodes; i++) {
		int listed = strchr(names, r->nodes[i].name[0]) != NULL && r->nodes[i].name[1] == '\0';
		if (listed != (r->nodes[i].status == s)) {
			fprintf(stderr, "node %s is %s\n", r->nodes[i].name,
			        train_node_status_name(r->nodes[i].status));
			return 0;
		}
	}
	return 1;
}

/* a -> b -> d, c -> d, d -> e (target e); p is not needed (pruned). */
#define CHAIN_RECIPE \
	"version: 1\n"	\
	"name: chain\n"	\
	"train:\n"	\
	"  targets: [e]\n"	\
	"  nodes:\n"	\
	"    a: {component: Source, config: {value: A%s}}\n"	\
	"    b: {component: Echo, needs: {in: a}, config: {suffix: B}}\n"	\
	"    c: {component: Source, config: {value: C%s}}\n"	\
	"    d: {component: Join, needs: {a: b, b: c}}\n"	\
	"    e: {component: Echo, needs: {in: d.out}, config: {suffix: E}}\n"	\
	"    p: {component: Source}\n"

static void write_chain(env *e, const char *a, const char *c)
{
	char text[2048];
	snprintf(text, sizeof text, CHAIN_RECIPE, a, c);
	test_write(e->recipe, text);
}

static void test_first_then_cached(void)
{
	env e;
	env_init(&e);
	write_chain(&e, "", "");
	train_run_result r1, r2;
	train_error err;
	CU_ASSERT_EQUAL_FATAL(run(&e, 0, 0, &r1, &err), 0);
	CU_ASSERT(statuses_are(&r1, "abcde", TRAIN_NODE_TRAINED));
	CU_ASSERT_EQUAL(status_of(&r1, "p"), TRAIN_NODE_PRUNED);
	CU_ASSERT_EQUAL(r1.n_trained, 5);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r1.model_path);
	CU_ASSERT_EQUAL_FATAL(run(&e, 0, 0, &r2, &err), 0);
	CU_ASSERT(statuses_are(&r2, "abcde", TRAIN_NODE_CACHED));
	CU_ASSERT_EQUAL(r2.n_trained, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r2.model_path);
	CU_ASSERT_STRING_NOT_EQUAL(r1.model_path, r2.model_path);
	/* Same fingerprints, and byte-identical components in both models. */
	for (size_t i = 0; i < r1.n_nodes; i++)
		CU_ASSERT_STRING_EQUAL(r1.nodes[i].fingerprint, r2.nodes[i].fingerprint);
	char cmd[4096];
	snprintf(cmd, sizeof cmd,
	         "cd '%s' && mkdir x1 x2 && tar -xzf '%s' -C x1 && tar -xzf '%s' -C x2 && "
	         "diff -r x1/components x2/components && test -f x1/components/e/state.txt",
	         e.dir, r1.model_path, r2.model_path);
	CU_ASSERT_EQUAL(system(cmd), 0);
	train_run_result_free(&r1);
	train_run_result_free(&r2);
}

static void test_change_one_node(void)
{
	env e;
	env_init(&e);
	write_chain(&e, "", "");
	train_run_result r;
	train_error err;
	CU_ASSERT_EQUAL_FATAL(run(&e, 0, 0, &r, &err), 0);
	train_run_result_free(&r);
	/* c changes: c, d, e retrain; a, b stay cached. */
	write_chain(&e, "", "2");
	CU_ASSERT_EQUAL_FATAL(run(&e, 0, 0, &r, &err), 0);
	CU_ASSERT(statuses_are(&r, "cde", TRAIN_NODE_TRAINED));
	CU_ASSERT_EQUAL(status_of(&r, "a"), TRAIN_NODE_CACHED);
	CU_ASSERT_EQUAL(status_of(&r, "b"), TRAIN_NODE_CACHED);
	train_run_result_free(&r);
	/* a changes: a, b, d, e retrain; c stays. */
	write_chain(&e, "2", "2");
	CU_ASSERT_EQUAL_FATAL(run(&e, 0, 0, &r, &err), 0);
	CU_ASSERT(statuses_are(&r, "abde", TRAIN_NODE_TRAINED));
	CU_ASSERT_EQUAL(status_of(&r, "c"), TRAIN_NODE_CACHED);
	train_run_result_free(&r);
	/* Back to the first config: everything is still cached. */
	write_chain(&e, "", "");
	CU_ASSERT_EQUAL_FATAL(run(&e, 0, 0, &r, &err), 0);
	CU_ASSERT(statuses_are(&r, "abcde", TRAIN_NODE_CACHED));
	train_run_result_free(&r);
}

/*
 * Inputs count by the value they carry: a producer that retrains to the
 * same output leaves its consumers cached (and a dry run cannot know that
 * yet, so it says they would train).
 */
static void test_same_output_cuts_off(void)
{
	env e;
	env_init(&e);
	const char *fmt_a = "version: 1\nname: cut\ntrain:\n  targets: [c]\n  nodes:\n"
	                    "    a: {component: Source, config: {value: same, sleep_ms: ";
	const char *rest = "}}\n    b: {component: Echo, needs: {in: a}}\n"
	                   "    c: {component: Echo, needs: {in: b}, config: {suffix: '!'}}\n";
	char text[1024];
	snprintf(text, sizeof text, "%s0%s", fmt_a, rest);
	test_write(e.recipe, text);
	train_run_result r;
	train_error err;
	CU_ASSERT_EQUAL_FATAL(run(&e, 0, 0, &r, &err), 0);
	CU_ASSERT(statuses_are(&r, "abc", TRAIN_NODE_TRAINED));
	train_run_result_free(&r);
	snprintf(text, sizeof text, "%s10%s", fmt_a, rest);
	test_write(e.recipe, text);
	CU_ASSERT_EQUAL_FATAL(run(&e, 1, 0, &r, &err), 0);
	CU_ASSERT(statuses_are(&r, "abc", TRAIN_NODE_TRAINED));
	CU_ASSERT_EQUAL(r.nodes[1].fingerprint[0], '\0');
	train_run_result_free(&r);
	CU_ASSERT_EQUAL_FATAL(run(&e, 0, 0, &r, &err), 0);
	CU_ASSERT_EQUAL(status_of(&r, "a"), TRAIN_NODE_TRAINED);
	CU_ASSERT_EQUAL(status_of(&r, "b"), TRAIN_NODE_CACHED);
	CU_ASSERT_EQUAL(status_of(&r, "c"), TRAIN_NODE_CACHED);
	train_run_result_free(&r);
}

static void test_dry_run_flags(void)
{
	env e;
	env_init(&e);
	write_chain(&e, "", "");
	train_run_result r;
	train_error err;
	/* No model and an empty cache. */
	CU_ASSERT_EQUAL_FATAL(run(&e, 1, 0, &r, &err), 0);
	CU_ASSERT_EQUAL(r.dry_flags, TRAIN_DRY_RETRAIN | TRAIN_DRY_NO_MODEL);
	CU_ASSERT_PTR_NULL(r.model_path);
	CU_ASSERT(statuses_are(&r, "abcde", TRAIN_NODE_TRAINED));
	train_run_result_free(&r);
	CU_ASSERT_EQUAL_FATAL(run(&e, 0, 0, &r, &err), 0);
	train_run_result_free(&r);
	/* Nothing changed. */
	CU_ASSERT_EQUAL_FATAL(run(&e, 1, 0, &r, &err), 0);
	CU_ASSERT_EQUAL(r.dry_flags, TRAIN_DRY_NOTHING);
	CU_ASSERT(statuses_are(&r, "abcde", TRAIN_NODE_CACHED));
	train_run_result_free(&r);
	/* One node changed: only it and its dependents would train. */
	write_chain(&e, "", "x");
	CU_ASSERT_EQUAL_FATAL(run(&e, 1, 0, &r, &err), 0);
	CU_ASSERT_EQUAL(r.dry_flags, TRAIN_DRY_RETRAIN);
	CU_ASSERT(statuses_are(&r, "cde", TRAIN_NODE_TRAINED));
	train_run_result_free(&r);
	/* Forced. */
	CU_ASSERT_EQUAL_FATAL(run(&e, 1, 1, &r, &err), 0);
	CU_ASSERT_EQUAL(r.dry_flags, TRAIN_DRY_RETRAIN | TRAIN_DRY_FORCED);
	train_run_result_free(&r);
	/* The dry run wrote no model. */
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "test $(ls '%s' | wc -l) -eq 1", e.out);
	CU_ASSERT_EQUAL(system(cmd), 0);
}

static void test_report_json(void)
{
	env e;
	env_init(&e);
	write_chain(&e, "", "");
	train_run_result r;
	train_error err;
	CU_ASSERT_EQUAL_FATAL(run(&e, 0, 0, &r, &err), 0);
	json_error_t jerr;
	json_t *j = json_load_file(e.report, 0, &jerr);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "model")), r.model_path);
	json_t *nodes = json_object_get(j, "nodes");
	CU_ASSERT_EQUAL(json_array_size(nodes), 6);
	size_t i;
	json_t *n;
	int trained = 0, pruned = 0;
	json_array_foreach(nodes, i, n) {
		const char *st = json_string_value(json_object_get(n, "status"));
		trained += !strcmp(st, "trained");
		pruned += !strcmp(st, "pruned");
		/* Pruned nodes are never fingerprinted. */
		CU_ASSERT_EQUAL(strlen(json_string_value(json_object_get(n, "fingerprint"))),
		                strcmp(st, "pruned") ? 32 : 0);
		CU_ASSERT(json_is_number(json_object_get(n, "seconds")));
		CU_ASSERT(json_is_string(json_object_get(n, "component")));
	}
	CU_ASSERT_EQUAL(trained, 5);
	CU_ASSERT_EQUAL(pruned, 1);
	json_decref(j);
	train_run_result_free(&r);
}

static void test_spelling_does_not_matter(void)
{
	env e1, e2;
	env_init(&e1);
	env_init(&e2);
	test_write(e1.recipe, "version: 1\nname: s\ntrain:\n  targets: [b]\n  nodes:\n"
	                      "    a: {component: Source, config: {value: v, sleep_ms: 0}}\n"
	                      "    b: {component: Echo, needs: {in: a}, config: {suffix: s, epochs: 2}}\n");
	test_write(e2.recipe, "# the same graph, written differently\nname: s\nversion: 1\ntrain:\n"
	                      "  nodes:\n"
	                      "    b:\n      config:\n        epochs: 0x2\n        suffix: \"s\"\n"
	                      "      needs:\n        in: a.out\n      component: Echo\n"
	                      "    a:\n      component: Source\n      config: {value: 'v'}\n"
	                      "  targets:\n    - b\n");
	train_run_result r1, r2;
	train_error err;
	CU_ASSERT_EQUAL_FATAL(run(&e1, 1, 0, &r1, &err), 0);
	CU_ASSERT_EQUAL_FATAL(run(&e2, 1, 0, &r2, &err), 0);
	for (size_t i = 0; i < r1.n_nodes; i++)
		for (size_t k = 0; k < r2.n_nodes; k++)
			if (!strcmp(r1.nodes[i].name, r2.nodes[k].name))
				CU_ASSERT_STRING_EQUAL(r1.nodes[i].fingerprint, r2.nodes[k].fingerprint);
	train_run_result_free(&r1);
	train_run_result_free(&r2);
}

#define PATH_RECIPE "version: 1\nname: p\ntrain:\n  targets: [b]\n  nodes:\n" \
"    a: {component: FileText, config: {path: %s}}\n" \
"    b: {component: Echo, needs: {in: a}}\n"

static void test_path_content(void)
{
	env e;
	env_init(&e);
	char data[700], moved[700];
	snprintf(data, sizeof data, "%s/in.txt", e.dir);
	snprintf(moved, sizeof moved, "%s/sub", e.dir);
	mkdir(moved, 0755);
	snprintf(moved, sizeof moved, "%s/sub/other.txt", e.dir);
	test_write(data, "hello\n");
	test_write(moved, "hello\n");
	char text[1024];
	snprintf(text, sizeof text, PATH_RECIPE, "in.txt");
	test_write(e.recipe, text);
	train_run_result r;
	train_error err;
	CU_ASSERT_EQUAL_FATAL(run(&e, 0, 0, &r, &err), 0);
	CU_ASSERT(statuses_are(&r, "ab", TRAIN_NODE_TRAINED));
	train_run_result_free(&r);
	/* A new mtime is not a change. */
	struct utimbuf t = { 1000000, 1000000 };
	utime(data, &t);
	CU_ASSERT_EQUAL_FATAL(run(&e, 0, 0, &r, &err), 0);
	CU_ASSERT(statuses_are(&r, "ab", TRAIN_NODE_CACHED));
	train_run_result_free(&r);
	/* Another path with the same content is not a change either. */
	snprintf(text, sizeof text, PATH_RECIPE, "sub/other.txt");
	test_write(e.recipe, text);
	CU_ASSERT_EQUAL_FATAL(run(&e, 0, 0, &r, &err), 0);
	CU_ASSERT(statuses_are(&r, "ab", TRAIN_NODE_CACHED));
	train_run_result_free(&r);
	/* New content is. */
	test_write(moved, "hello again\n");
	CU_ASSERT_EQUAL_FATAL(run(&e, 0, 0, &r, &err), 0);
	CU_ASSERT(statuses_are(&r, "ab", TRAIN_NODE_TRAINED));
	train_run_result_free(&r);
	/* A missing file is an error located at the key. */
	snprintf(text, sizeof text, PATH_RECIPE, "missing.txt");
	test_write(e.recipe, text);
	CU_ASSERT_NOT_EQUAL(run(&e, 0, 0, &r, &err), 0);
	CU_ASSERT_EQUAL(err.line, 6);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "missing.txt"));
	train_run_result_free(&r);
}

#define FAIL_RECIPE "version: 1\nname: f\ntrain:\n  targets: [c]\n  nodes:\n" \
"    a: {component: Source, config: {value: A}}\n" \
"    b: {component: Echo, needs: {in: a}}\n" \
"    c: {component: Join, needs: {a: b, b: x}}\n" \
"    x: {component: Source, config: {fail: %s}}\n"

static void test_failure_keeps_finished_work(void)
{
	env e;
	env_init(&e);
	char text[1024];
	snprintf(text, sizeof text, FAIL_RECIPE, "true");
	test_write(e.recipe, text);
	train_run_result r;
	train_error err;
	CU_ASSERT_EQUAL(run(&e, 0, 0, &r, &err), TRAIN_ECOMPONENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "node 'x'"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "asked to fail"));
	CU_ASSERT_EQUAL(status_of(&r, "x"), TRAIN_NODE_FAILED);
	CU_ASSERT_NOT_EQUAL(status_of(&r, "c"), TRAIN_NODE_TRAINED);
	CU_ASSERT_PTR_NULL(r.model_path);
	train_run_result_free(&r);
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s')\"", e.out);
	CU_ASSERT_EQUAL(system(cmd), 0); /* no model, no leftovers */
	/* Fix x: whatever trained before the failure is reused. */
	snprintf(text, sizeof text, FAIL_RECIPE, "false");
	test_write(e.recipe, text);
	CU_ASSERT_EQUAL_FATAL(run(&e, 0, 0, &r, &err), 0);
	CU_ASSERT_EQUAL(status_of(&r, "x"), TRAIN_NODE_TRAINED);
	CU_ASSERT_EQUAL(status_of(&r, "c"), TRAIN_NODE_TRAINED);
	train_run_result_free(&r);
}

static void test_threads_agree(void)
{
	env e1;
	env_init(&e1);
	/* A wide graph: 12 sources into a chain of joins. */
	char text[8192];
	int len = snprintf(text, sizeof text,
	                   "version: 1\nname: wide\ntrain:\n  targets: [j11]\n  nodes:\n");
	for (int i = 0; i < 12; i++)
		len += snprintf(text + len, sizeof text - (size_t)len,
		                "    s%d: {component: Source, config: {value: v%d, sleep_ms: 20}}\n", i, i);
	len += snprintf(text + len, sizeof text - (size_t)len,
	                "    j1: {component: Join, needs: {a: s0, b: s1}}\n");
	for (int i = 2; i < 12; i++)
		len += snprintf(text + len, sizeof text - (size_t)len,
		                "    j%d: {component: Join, needs: {a: j%d, b: s%d}}\n", i, i - 1, i);
	test_write(e1.recipe, text);
	train_run_options o;
	train_run_options_init(&o);
	o.recipe_path = e1.recipe;
	o.cache_dir = e1.cache;
	o.out_dir = e1.out;
	o.verbosity = TRAIN_QUIET;
	o.threads = 4;
	o.fixed_model_name = "wide";
	train_run_result r;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_run(reg, &o, &r, &err), 0);
	CU_ASSERT_EQUAL(r.n_trained, 23);
	train_run_result_free(&r);
	char cmd[2048];
	snprintf(cmd, sizeof cmd,
	         "cd '%s' && mkdir w && tar -xzf models/wide.tar.gz -C w && "
	         "grep -qx 'v0|v1|v2|v3|v4|v5|v6|v7|v8|v9|v10|v11' w/components/j11/state.txt || "
	         "test \"$(cat w/components/j11/state.txt)\" = ''",
	         e1.dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
}

#define FINETUNE_RECIPE "version: 1\nname: ft\ntrain:\n  targets: [b]\n  nodes:\n" \
"    a: {component: Source, config: {value: A}}\n" \
"    b: {component: Echo, needs: {in: a}, config: {suffix: %s, epochs: %d}}\n"

static void test_finetune(void)
{
	env e;
	env_init(&e);
	char text[1024];
	snprintf(text, sizeof text, FINETUNE_RECIPE, "S", 4);
	test_write(e.recipe, text);
	train_run_options o;
	train_run_options_init(&o);
	o.recipe_path = e.recipe;
	o.cache_dir = e.cache;
	o.out_dir = e.out;
	o.verbosity = TRAIN_QUIET;
	o.fixed_model_name = "base";
	train_run_result r;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_run(reg, &o, &r, &err), 0);
	train_run_result_free(&r);
	char base[700];
	snprintf(base, sizeof base, "%s/base.tar.gz", e.out);
	/* More epochs, half of them: 4 + 8 * 0.5 = 8 epochs in all. */
	snprintf(text, sizeof text, FINETUNE_RECIPE, "S", 8);
	test_write(e.recipe, text);
	o.finetune_model = base;
	o.epoch_fraction = 0.5;
	o.fixed_model_name = "tuned";
	CU_ASSERT_EQUAL_FATAL(train_run(reg, &o, &r, &err), 0);
	CU_ASSERT_EQUAL(status_of(&r, "b"), TRAIN_NODE_TRAINED);
	train_run_result_free(&r);
	char cmd[2048];
	snprintf(cmd, sizeof cmd,
	         "cd '%s' && mkdir t && tar -xzf models/tuned.tar.gz -C t && "
	         "test \"$(cat t/components/b/epochs.txt)\" = 8",
	         e.dir);
	CU_ASSERT_EQUAL(system(cmd), 0);
	/* Another suffix is another graph: refused, naming the node. */
	snprintf(text, sizeof text, FINETUNE_RECIPE, "T", 8);
	test_write(e.recipe, text);
	o.fixed_model_name = "refused";
	memset(&err, 0, sizeof err);
	CU_ASSERT_EQUAL(train_run(reg, &o, &r, &err), TRAIN_EMISMATCH);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "node 'b'"));
	train_run_result_free(&r);
}

static void test_graph_errors(void)
{
	env e;
	env_init(&e);
	train_run_result r;
	train_error err;
	struct {
		const char *nodes;
		int code;
		unsigned line;
		const char *text;
	} cases[] = {
		{ "    a: {component: Nope}\n", TRAIN_EPLUGIN, 6, "unknown component 'Nope'" },
		{ "    a: {component: Source, config: {valu: 1}}\n", TRAIN_ECONFIG, 6, "valu" },
		{ "    a: {component: Source, config: {sleep_ms: ten}}\n", TRAIN_ECONFIG, 6, "sleep_ms" },
		{ "    a: {component: Echo}\n", TRAIN_ECONFIG, 6, "input 'in'" },
		{ "    a: {component: Source}\n    b: {component: Echo, needs: {inn: a}}\n",
		  TRAIN_ECONFIG, 7, "no input 'inn'" },
		{ "    a: {component: Source}\n    b: {component: Echo, needs: {in: a.nope}}\n",
		  TRAIN_ECONFIG, 7, "no output 'nope'" },
		{ "    a: {component: Source}\n    s: {component: Split, needs: {in: a}}\n"
		  "    b: {component: Echo, needs: {in: s}}\n",
		  TRAIN_ECONFIG, 8, "several outputs" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char text[1024];
		snprintf(text, sizeof text, "version: 1\nname: g\ntrain:\n  targets: [a]\n  nodes:\n%s",
		         cases[i].nodes);
		test_write(e.recipe, text);
		int rc = run(&e, 1, 0, &r, &err);
		CU_ASSERT_EQUAL(rc, cases[i].code);
		CU_ASSERT_EQUAL(err.line, cases[i].line);
		CU_ASSERT_PTR_NOT_NULL(strstr(err.text, cases[i].text));
		CU_ASSERT_PTR_NOT_NULL(strstr(err.file, "recipe.yml"));
		train_run_result_free(&r);
	}
}

int main(void)
{
	load_plugins();
	static const test_case list[] = {
		{ "first run trains, rerun is cached and identical", test_first_then_cached },
		{ "one changed node retrains it and its dependents", test_change_one_node },
		{ "a producer with the same output leaves consumers cached", test_same_output_cuts_off },
		{ "dry run flags", test_dry_run_flags },
		{ "JSON report", test_report_json },
		{ "fingerprints ignore YAML spelling and key order", test_spelling_does_not_matter },
		{ "PATH keys are fingerprinted by content", test_path_content },
		{ "a failure keeps finished work", test_failure_keeps_finished_work },
		{ "4 threads, a wide graph", test_threads_agree },
		{ "finetune continues a model, refuses another graph", test_finetune },
		{ "graph errors are located", test_graph_errors },
		{ NULL, NULL },
	};
	int rc = test_main("run", list);
	train_registry_destroy(reg);
	return rc;
}
