/*
 * test_oom.c - failure injection: every allocation that libtrain's own code
 * makes is failed in turn (the 1st, the 2nd, ... until an operation
 * completes without reaching the failure), and each operation must then
 * return an error, not crash, and leak nothing (run under ASan or valgrind
 * to see leaks).
 *
 * The test links the core statically with -Wl,--wrap for malloc, calloc,
 * realloc, strdup, strndup and vasprintf, so calls from libtrain's objects
 * (and this file) reach the wrappers; the libraries it uses (libyaml, LMDB,
 * libarchive, jansson) allocate on their own and are not failed here.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <train/cache.h>
#include <train/config.h>
#include <train/value.h>

#include "package.h"
#include "recipe.h"
#include "testlib.h"

static long fail_at = -1; /* index of the allocation to fail, -1: none */
static long count;        /* allocations seen since the last arm() */
static int failed;        /* an allocation was failed */

static int should_fail(void)
{
	if (fail_at >= 0 && count++ == fail_at) {
		failed = 1;
		return 1;
	}
	return 0;
}

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t s);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_vasprintf(char **out, const char *fmt, va_list ap);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t s);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_vasprintf(char **out, const char *fmt, va_list ap);

void *__wrap_malloc(size_t n) { return should_fail() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t s) { return should_fail() ? NULL : __real_calloc(n, s); }
void *__wrap_realloc(void *p, size_t n) { return should_fail() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return should_fail() ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) { return should_fail() ? NULL : __real_strndup(s, n); }
int __wrap_vasprintf(char **out, const char *fmt, va_list ap)
{
	if (should_fail()) {
		*out = NULL;
		return -1;
	}
	return __real_vasprintf(out, fmt, ap);
}

static void arm(long n)
{
	fail_at = n;
	count = 0;
	failed = 0;
}

/*
 * Run `op` with the 1st, 2nd, ... allocation failing until a run reaches
 * no failure.  A run with a failure must report an error or complete
 * correctly (each op checks its own results: best-effort work such as
 * recording a cache hit's access time may drop out silently, but nothing
 * may come back wrong).  Returns the number of allocations the operation
 * makes.
 */
static long sweep(const char *what, int (*op)(void *), void *ud)
{
	for (long n = 0; n < 100000; n++) {
		arm(n);
		int rc = op(ud);
		int hit = failed;
		arm(-1);
		if (!hit) {
			if (rc != 0)
				fprintf(stderr, "%s: fails (%d) with no allocation failed\n", what, rc);
			CU_ASSERT_EQUAL(rc, 0);
			return n;
		}
		if (rc > 0)
			fprintf(stderr, "%s: allocation %ld failed and the result is wrong\n", what, n);
		CU_ASSERT(rc <= 0);
	}
	CU_FAIL("the operation never completed");
	return -1;
}

/* ---- operations ------------------------------------------------------------- */

static const char *recipe_text =
	"version: 1\n"
	"name: oom\n"
	"train:\n"
	"  targets: [b]\n"
	"  nodes:\n"
	"    a: {component: Source, config: {value: x, list: [1, 2.5, true, ~, 'q']}}\n"
	"    b: {component: Echo, needs: {in: a.out}, config: {suffix: s}}\n"
	"predict:\n"
	"  inputs: [text]\n"
	"  targets: [p]\n"
	"  nodes:\n"
	"    p: {component: Echo, resource: b, needs: {in: $input.text}}\n";

static int op_recipe(void *ud)
{
	(void)ud;
	train_recipe *r = NULL;
	train_error err = { 0 };
	int rc = train_recipe_parse(recipe_text, strlen(recipe_text), "oom.yml", ".", &r, &err);
	train_recipe_destroy(r);
	return rc;
}

static const train_param params[] = {
	{ "epochs", TRAIN_PARAM_INT, "10", NULL },
	{ "rate", TRAIN_PARAM_FLOAT, "0.5", NULL },
	{ "name", TRAIN_PARAM_STRING, "\"n\"", NULL },
	{ "layers", TRAIN_PARAM_LIST, "[256, 128]", NULL },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

static int op_config(void *ud)
{
	(void)ud;
	const char *text = "{epochs: 3, rate: 1, layers: [1, 2, {a: b}]}";
	train_config *user = NULL, *out = NULL;
	char *canon = NULL, *flow = NULL;
	size_t size;
	train_error err = { 0 };
	int rc = train_config_parse(text, strlen(text), "c.yml", &user, &err);
	if (!rc)
		rc = train_config_validate(user, params, "component X", &out, &err);
	if (!rc)
		rc = train_config_canonical(out, &canon, &size);
	if (!rc)
		rc = train_config_to_flow(out, &flow);
	free(canon);
	free(flow);
	train_config_destroy(out);
	train_config_destroy(user);
	return rc;
}

static int op_values(void *ud)
{
	(void)ud;
	train_values *s = NULL;
	int rc = train_values_create(&s);
	for (int i = 0; i < 6 && !rc; i++) {
		char name[8];
		snprintf(name, sizeof name, "v%d", i);
		rc = train_values_put_bytes(s, name, "text/plain", "data", 4);
	}
	train_values_destroy(s);
	return rc;
}

static const char *tree;

static int op_pack(void *ud)
{
	const char *dest = ud;
	void *blob = NULL;
	size_t size = 0;
	train_error err = { 0 };
	int rc = train_dir_pack(tree, &blob, &size, &err);
	char *sub = NULL;
	if (!rc) {
		static int k;
		sub = malloc(strlen(dest) + 32);
		if (!sub)
			rc = TRAIN_ENOMEM;
		else
			snprintf(sub, strlen(dest) + 32, "%s/u%d", dest, k++);
	}
	if (!rc)
		rc = train_mkdirs(sub, &err);
	if (!rc)
		rc = train_dir_unpack(blob, size, sub, &err);
	if (!rc) {
		char *again = train_path_join(sub, "sub/a.txt");
		char *data = NULL;
		size_t n = 0;
		rc = again ? train_read_file(again, &data, &n, NULL) : TRAIN_ENOMEM;
		if (!rc && (n != 3 || memcmp(data, "aaa", 3)))
			rc = 1;
		free(data);
		free(again);
	}
	if (!rc) {
		const char *names[] = { "n" };
		const void *blobs[] = { blob };
		size_t sizes[] = { size };
		char *arc = train_strfmt("%s.tar.gz", sub);
		rc = arc ? train_package_write_parts(arc, "{}", 2, names, blobs, sizes, 1, &err)
		         : TRAIN_ENOMEM;
		char *m = NULL;
		size_t ms;
		if (!rc)
			rc = train_package_read_member(arc, "metadata.json", &m, &ms, &err);
		if (!rc && (ms != 2 || memcmp(m, "{}", 2)))
			rc = 1;
		free(m);
		free(arc);
	}
	free(sub);
	free(blob);
	return rc;
}

static int op_cache(void *ud)
{
	const char *dir = ud;
	train_cache *c = NULL;
	train_values *out = NULL, *got = NULL;
	train_error err = { 0 };
	train_log_sink quiet = { NULL, NULL, TRAIN_LOG_ERROR };
	int rc = train_cache_open(dir, 0, &quiet, &c, &err);
	if (!rc)
		rc = train_values_create(&out);
	if (!rc)
		rc = train_values_put_bytes(out, "out", "text/plain", "cached", 6);
	train_fp node = { 0x1234, (uint64_t)count };
	if (!rc)
		rc = train_cache_store(c, node, out, &err);
	if (!rc)
		rc = train_cache_lookup(c, node, &got, &err);
	if (!rc) {
		const train_value *v = train_values_get(got, "out");
		if (!v || train_value_size(v) != 6 || memcmp(train_value_data(v), "cached", 6))
			rc = 1; /* wrong, not an error: sweep() refuses it */
	}
	if (!rc)
		rc = train_cache_flush(c, &err);
	train_values_destroy(got);
	train_values_destroy(out);
	train_cache_close(c);
	return rc;
}

/* ---- tests ------------------------------------------------------------------- */

static void test_recipe(void) { CU_ASSERT(sweep("recipe", op_recipe, NULL) > 10); }
static void test_config(void) { CU_ASSERT(sweep("config", op_config, NULL) > 10); }
static void test_values(void) { CU_ASSERT(sweep("values", op_values, NULL) > 6); }

static void test_pack(void)
{
	const char *t = test_tmpdir();
	char p[600];
	snprintf(p, sizeof p, "%s/sub", t);
	train_mkdirs(p, NULL);
	snprintf(p, sizeof p, "%s/sub/a.txt", t);
	test_write(p, "aaa");
	snprintf(p, sizeof p, "%s/b.bin", t);
	test_write(p, "bbbb");
	tree = t;
	CU_ASSERT(sweep("pack", op_pack, (void *)test_tmpdir()) > 5);
}

static void test_cache(void) { CU_ASSERT(sweep("cache", op_cache, (void *)test_tmpdir()) > 3); }

int main(void)
{
	static const test_case cases[] = {
		{ "recipe reader", test_recipe },
		{ "config validate, canonical, flow", test_config },
		{ "value sets", test_values },
		{ "folder blobs and model archives", test_pack },
		{ "cache store and lookup", test_cache },
		{ NULL, NULL },
	};
	return test_main("oom", cases);
}
