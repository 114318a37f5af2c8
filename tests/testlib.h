/*
 * tests/testlib.h - a small layer over CUnit shared by every test program.
 *
 *   static void test_x(void) { CU_ASSERT_EQUAL(...); }
 *   static const test_case cases[] = { {"x", test_x}, {NULL, NULL} };
 *   int main(void) { return test_main("cache", cases); }
 *
 * test_main runs the suite with the basic interface (its closing summary is
 * what CI reads), returns 0 when every assertion passed, 1 otherwise, and
 * 77 (automake's "skipped") when a test calls test_skip() before asserting.
 * Helpers make scratch folders under $TMPDIR that are removed at exit.
 */
#ifndef TRAIN_TESTLIB_H
#define TRAIN_TESTLIB_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct test_case {
	const char *name;
	void (*fn)(void);
} test_case;

static int test_skipped_;

static inline void test_skip(const char *why)
{
	fprintf(stderr, "SKIP: %s\n", why);
	test_skipped_ = 1;
}

/* A fresh scratch folder; removed at exit unless KEEP_TEST_DIRS is set. */
static char test_dirs_[64][512];
static int test_ndirs_;

static void test_cleanup_(void)
{
	if (getenv("KEEP_TEST_DIRS"))
		return;
	for (int i = 0; i < test_ndirs_; i++) {
		char cmd[600 + sizeof test_dirs_[0]];
		snprintf(cmd, sizeof cmd, "rm -rf '%.511s'", test_dirs_[i]);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", test_dirs_[i]);
	}
}

/* Under `make check-valgrind` (TRAIN_VALGRIND=1) or any valgrind run (its
 * preload library is in LD_PRELOAD): a test may do less work, such as fewer
 * epochs or finite-difference probes, but checks the same things. */
static inline int test_light(void)
{
	const char *v = getenv("TRAIN_VALGRIND"), *p = getenv("LD_PRELOAD");
	return (v && *v && strcmp(v, "0")) || (p && strstr(p, "vgpreload"));
}

static inline const char *test_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	if (test_ndirs_ == 64)
		abort();
	char *d = test_dirs_[test_ndirs_];
	snprintf(d, 512, "%s/train-test-XXXXXX", base);
	if (!mkdtemp(d)) {
		perror("mkdtemp");
		abort();
	}
	if (test_ndirs_++ == 0)
		atexit(test_cleanup_);
	return d;
}

/* Write a file (whole), abort on failure: test set-up, not the code under test. */
static inline void test_write(const char *path, const char *text)
{
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(text, 1, strlen(text), f) != strlen(text) || fclose(f) != 0) {
		perror(path);
		abort();
	}
}

/*
 * A fresh folder holding links to the named test plugins (NULL-terminated
 * list of file names such as "testparts.so") from $TRAIN_TEST_PLUGINS, so
 * that a test loads exactly those.
 */
static inline const char *test_plugin_dir(const char *const *names)
{
	const char *src = getenv("TRAIN_TEST_PLUGINS");
	if (!src)
		src = "tests/plugins/.libs";
	const char *dir = test_tmpdir();
	for (; *names; names++) {
		char from[1024], to[1024];
		snprintf(from, sizeof from, "%.700s/%.200s", src, *names);
		snprintf(to, sizeof to, "%.700s/%.200s", dir, *names);
		if (symlink(from, to) != 0) {
			perror(to);
			abort();
		}
	}
	return dir;
}

static inline int test_main(const char *suite_name, const test_case *cases)
{
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 2;
	CU_pSuite s = CU_add_suite(suite_name, NULL, NULL);
	if (!s)
		return 2;
	for (const test_case *c = cases; c->name; c++)
		if (!CU_add_test(s, c->name, c->fn))
			return 2;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
	unsigned asserts = CU_get_number_of_asserts();
	CU_cleanup_registry();
	if (failed)
		return 1;
	if (test_skipped_ && asserts == 0)
		return 77;
	return 0;
}

#endif
