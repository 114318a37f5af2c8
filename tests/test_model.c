/*
 * test_model.c - a model archive opened through the public API runs its
 * predict schema; bad archives are refused.
 */
#include <train/train.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

static train_registry *reg;

static const char *recipe =
	"version: 1\n"
	"name: m\n"
	"train:\n"
	"  targets: [greet]\n"
	"  nodes:\n"
	"    src: {component: Source, config: {value: hello}}\n"
	"    greet: {component: Echo, needs: {in: src}, config: {suffix: ' world'}}\n"
	"predict:\n"
	"  inputs: [text]\n"
	"  targets: [shout, pair]\n"
	"  nodes:\n"
	"    shout: {component: Echo, resource: greet, needs: {in: $input.text}, config: {suffix: '!'}}\n"
	"    stored: {component: Source, resource: src}\n"
	"    pair: {component: Join, needs: {a: shout, b: stored}}\n";

static char model[700];

static void make_model(void)
{
	const char *dir = test_tmpdir();
	char path[600], cache[600], out[600];
	snprintf(path, sizeof path, "%s/recipe.yml", dir);
	snprintf(cache, sizeof cache, "%s/cache", dir);
	snprintf(out, sizeof out, "%s/models", dir);
	test_write(path, recipe);
	train_run_options o;
	train_run_options_init(&o);
	o.recipe_path = path;
	o.cache_dir = cache;
	o.out_dir = out;
	o.verbosity = TRAIN_QUIET;
	o.fixed_model_name = "m";
	train_run_result r;
	train_error err = { 0 };
	if (train_run(reg, &o, &r, &err)) {
		fprintf(stderr, "train: %s\n", err.text);
		abort();
	}
	snprintf(model, sizeof model, "%s", r.model_path);
	train_run_result_free(&r);
}

static void test_predict(void)
{
	train_model *m = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_model_open(model, reg, &m, &err), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(train_model_metadata(m), "\"predict\""));
	train_values *in, *out;
	CU_ASSERT_EQUAL_FATAL(train_values_create(&in), 0);
	CU_ASSERT_EQUAL_FATAL(train_values_create(&out), 0);
	CU_ASSERT_EQUAL(train_values_put_bytes(in, "text", "text/plain", "hey", 3), 0);
	CU_ASSERT_EQUAL_FATAL(train_model_predict(m, in, out, &err), 0);
	/* The predict config's suffix ('!') is used with the trained state. */
	const train_value *shout = train_values_get(out, "shout");
	const train_value *pair = train_values_get(out, "pair");
	CU_ASSERT_PTR_NOT_NULL_FATAL(shout);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pair);
	CU_ASSERT_STRING_EQUAL(train_value_data(shout), "hey!");
	/* `stored` loads what the train node `src` persisted. */
	CU_ASSERT_STRING_EQUAL(train_value_data(pair), "hey!|hello");
	/* A second prediction on the same model. */
	train_values_destroy(out);
	CU_ASSERT_EQUAL_FATAL(train_values_create(&out), 0);
	CU_ASSERT_EQUAL(train_values_put_bytes(in, "text", "text/plain", "yo", 2), 0);
	CU_ASSERT_EQUAL_FATAL(train_model_predict(m, in, out, &err), 0);
	CU_ASSERT_STRING_EQUAL(train_value_data(train_values_get(out, "pair")), "yo!|hello");
	/* A missing input is an error, not a crash. */
	train_values_destroy(in);
	CU_ASSERT_EQUAL_FATAL(train_values_create(&in), 0);
	CU_ASSERT_EQUAL(train_model_predict(m, in, out, &err), TRAIN_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "text"));
	train_values_destroy(in);
	train_values_destroy(out);
	train_model_close(m);
}

static void test_inspect(void)
{
	char *json = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_model_inspect(model, &json, &err), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"libtrain_version\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"greet\""));
	CU_ASSERT_PTR_NOT_NULL(strstr(json, "\"fingerprint\""));
	free(json);
}

static void test_bad_archives(void)
{
	const char *dir = test_tmpdir();
	char path[700], cmd[2048];
	train_model *m = NULL;
	train_error err = { 0 };
	/* Not an archive at all. */
	snprintf(path, sizeof path, "%s/junk.tar.gz", dir);
	test_write(path, "this is not a model\n");
	CU_ASSERT_NOT_EQUAL(train_model_open(path, reg, &m, &err), 0);
	CU_ASSERT_PTR_NULL(m);
	/* An archive without metadata. */
	snprintf(cmd, sizeof cmd, "cd '%s' && mkdir -p e/x && echo hi > e/x/f && tar -czf e.tar.gz -C e x",
	         dir);
	CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
	snprintf(path, sizeof path, "%s/e.tar.gz", dir);
	CU_ASSERT_EQUAL(train_model_open(path, reg, &m, &err), TRAIN_EPARSE);
	/* A member that climbs out ("../"): GNU tar writes it with -P. */
	snprintf(cmd, sizeof cmd,
	         "cd '%s' && mkdir -p d/in && echo x > d/escaped && cp '%s' d/in/m.tar.gz && "
	         "cd d/in && tar -xzf m.tar.gz && tar -P -czf ../../evil.tar.gz metadata.json components ../escaped",
	         dir, model);
	CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
	snprintf(path, sizeof path, "%s/evil.tar.gz", dir);
	memset(&err, 0, sizeof err);
	CU_ASSERT_EQUAL(train_model_open(path, reg, &m, &err), TRAIN_EUNSAFE);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "../escaped"));
	CU_ASSERT_PTR_NULL(m);
	char *json = NULL;
	CU_ASSERT_EQUAL(train_model_inspect(path, &json, &err), TRAIN_EUNSAFE);
	free(json);
}

int main(void)
{
	static const char *const names[] = { "testparts.so", NULL };
	const char *dir = test_plugin_dir(names);
	if (train_registry_create(&reg) || train_registry_add_dirs(reg, dir))
		abort();
	train_registry_use_defaults(reg, 0, 0);
	train_error err = { 0 };
	if (train_registry_scan(reg, &err))
		abort();
	make_model();
	static const test_case cases[] = {
		{ "predict schema runs on trained state", test_predict },
		{ "inspect reads the metadata", test_inspect },
		{ "bad and unsafe archives are refused", test_bad_archives },
		{ NULL, NULL },
	};
	int rc = test_main("model", cases);
	train_registry_destroy(reg);
	return rc;
}
