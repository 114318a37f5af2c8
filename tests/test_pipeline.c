/*
 * tests/test_pipeline.c - pipelines (libtrain/pipeline.c, issue 9) without
 * training anything: SHA-256 against FIPS 180-4's examples, and the
 * pipeline file and stage selection refused with their messages before any
 * stage runs.  tests/cli_pipeline.sh runs real pipelines.
 */
#include "testlib.h"

#include <train/train.h>

#include "pipeline.h"

static void sha_of(const char *dir, const void *data, size_t n, char out[65])
{
	char path[700];
	snprintf(path, sizeof path, "%s/f", dir);
	FILE *f = fopen(path, "wb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fwrite(data, 1, n, f), n);
	fclose(f);
	train_error err = { 0 };
	CU_ASSERT_EQUAL(train_sha256_file(path, out, &err), TRAIN_OK);
}

/* FIPS 180-4 / NIST's example messages: one block, two blocks, the
 * padding edge (55 and 56 bytes), and a million 'a' (many blocks across
 * the reader's 64 KiB buffers). */
static void test_sha256(void)
{
	const char *dir = test_tmpdir();
	char h[65];
	sha_of(dir, "", 0, h);
	CU_ASSERT_STRING_EQUAL(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	sha_of(dir, "abc", 3, h);
	CU_ASSERT_STRING_EQUAL(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	sha_of(dir, two, strlen(two), h);
	CU_ASSERT_STRING_EQUAL(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	char *a = malloc(1000000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	memset(a, 'a', 1000000);
	sha_of(dir, a, 1000000, h);
	CU_ASSERT_STRING_EQUAL(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(a);
	train_error err = { 0 };
	CU_ASSERT_NOT_EQUAL(train_sha256_file("/nonexistent/x", h, &err), TRAIN_OK);
}

/* Run the pipeline text `yml` (with `stages`, `skip`); the error's text. */
static int run_text(const char *yml, const char *settings, const char *stages, int skip,
                    train_error *err)
{
	const char *dir = test_tmpdir();
	char path[700], spath[700];
	snprintf(path, sizeof path, "%s/pipe.yml", dir);
	test_write(path, yml);
	train_run_options o;
	train_run_options_init(&o);
	o.recipe_path = path;
	o.verbosity = TRAIN_QUIET;
	if (settings) {
		snprintf(spath, sizeof spath, "%s/settings.yml", dir);
		test_write(spath, settings);
		o.settings_path = spath;
	}
	train_pipeline_options p;
	train_pipeline_options_init(&p);
	p.stages = stages;
	p.skip_data_prep = skip;
	train_registry *reg = NULL;
	CU_ASSERT_EQUAL_FATAL(train_registry_create(&reg), TRAIN_OK);
	train_registry_use_defaults(reg, 0, 0);
	CU_ASSERT_EQUAL(train_registry_scan(reg, err), TRAIN_OK);
	train_run_result res;
	memset(err, 0, sizeof *err);
	int rc = train_run_pipeline(reg, &o, &p, &res, err);
	train_run_result_free(&res);
	train_registry_destroy(reg);
	return rc;
}

#define PIPE "version: 1\nname: p\nstages:\n  data: {data_prep: true, settings: .}\n" \
	"  a: {needs: [data]}\n  b: {}\n"

static void test_errors(void)
{
	train_error err;
	CU_ASSERT_EQUAL(run_text("version: 1\nstages:\n  a: {recipes: x}\n", NULL, NULL, 0, &err),
	                TRAIN_ECONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "unknown key 'recipes' in stage 'a'"));
	CU_ASSERT_EQUAL(err.line, 3);
	CU_ASSERT_EQUAL(run_text("version: 1\nstages:\n  a: {needs: [b]}\n  b: {}\n", NULL, NULL, 0,
	                         &err), TRAIN_ECONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "needs 'b', which is not a stage before it"));
	CU_ASSERT_EQUAL(run_text("version: 2\nstages: {a: {}}\n", NULL, NULL, 0, &err), TRAIN_ECONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "version: 1"));
	CU_ASSERT_EQUAL(run_text("version: 1\nstages: {a: {}}\ntrain: {}\n", NULL, NULL, 0, &err),
	                TRAIN_ECONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "unknown key 'train' in a pipeline"));
	CU_ASSERT_EQUAL(run_text("version: 1\nstages: {a: {export: 1}}\n", NULL, NULL, 0, &err),
	                TRAIN_ECONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "true or false"));
	/* stage selection */
	CU_ASSERT_EQUAL(run_text(PIPE, NULL, "a,zz", 0, &err), TRAIN_ECONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "unknown stage 'zz' in p; its stages: data, a, b"));
	CU_ASSERT_EQUAL(run_text(PIPE, NULL, "data", 1, &err), TRAIN_ECONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "no stage of p left"));
	/* settings sections: a and b (data reads the whole file) */
	CU_ASSERT_EQUAL(run_text(PIPE, "a: {}\nc: {x: 1}\n", NULL, 0, &err), TRAIN_ECONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "unknown section 'c' for p; its sections (one per "
	                                        "stage): a, b"));
	CU_ASSERT_EQUAL(err.line, 2);
	/* then the stages' recipes are looked for: a.yml is not there */
	CU_ASSERT_EQUAL(run_text(PIPE, "a: {}\n", "b", 0, &err), TRAIN_ENOTFOUND);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "stage 'b': no recipe"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "/b.yml"));
}

static const test_case cases[] = {
	{ "SHA-256 against FIPS 180-4's examples", test_sha256 },
	{ "pipeline files and stage selection refused with a message", test_errors },
	{ NULL, NULL },
};

int main(void)
{
	return test_main("pipeline", cases);
}
