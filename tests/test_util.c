/*
 * test_util.c - private helpers: file I/O, atomic writes, folders, names.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testlib.h"
#include "util.h"

static void test_read_write(void)
{
	const char *dir = test_tmpdir();
	char *path = train_path_join(dir, "f.bin");
	const char data[] = "ab\0cd";
	CU_ASSERT_EQUAL(train_write_file_atomic(path, data, sizeof data, NULL), 0);
	char *back = NULL;
	size_t size = 0;
	CU_ASSERT_EQUAL_FATAL(train_read_file(path, &back, &size, NULL), 0);
	CU_ASSERT_EQUAL(size, sizeof data);
	CU_ASSERT_EQUAL(memcmp(back, data, size), 0);
	CU_ASSERT_EQUAL(back[size], '\0');
	free(back);
	/* No temporary file is left beside it. */
	char **names;
	size_t n;
	CU_ASSERT_EQUAL_FATAL(train_list_files(dir, &names, &n, NULL), 0);
	CU_ASSERT_EQUAL(n, 1);
	train_strv_free(names, n);
	train_error err = { 0 };
	char *missing = train_path_join(dir, "nope");
	CU_ASSERT(train_read_file(missing, &back, &size, &err) < 0);
	CU_ASSERT_STRING_EQUAL(err.file, missing);
	free(missing);
	free(path);
}

static void test_dirs(void)
{
	const char *dir = test_tmpdir();
	char *deep = train_strfmt("%s/a/b/c", dir);
	CU_ASSERT_EQUAL(train_mkdirs(deep, NULL), 0);
	CU_ASSERT(train_is_dir(deep));
	CU_ASSERT_EQUAL(train_mkdirs(deep, NULL), 0); /* again: fine */
	char *f = train_strfmt("%s/a/b/x.txt", dir);
	test_write(f, "x");
	char *g = train_strfmt("%s/a/z.txt", dir);
	test_write(g, "z");
	char **names;
	size_t n;
	char *a = train_strfmt("%s/a", dir);
	CU_ASSERT_EQUAL_FATAL(train_list_files(a, &names, &n, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(n, 2);
	CU_ASSERT_STRING_EQUAL(names[0], "b/x.txt");
	CU_ASSERT_STRING_EQUAL(names[1], "z.txt");
	train_strv_free(names, n);
	CU_ASSERT_EQUAL(train_rmtree(a), 0);
	CU_ASSERT(!train_path_exists(a));
	CU_ASSERT_EQUAL(train_rmtree(a), 0); /* missing: fine */
	free(deep);
	free(f);
	free(g);
	free(a);
}

static void test_names(void)
{
	CU_ASSERT(train_safe_relname("a"));
	CU_ASSERT(train_safe_relname("a/b.txt"));
	CU_ASSERT(train_safe_relname("dir/"));
	CU_ASSERT(train_safe_relname("v1.2_x-y+z@w"));
	CU_ASSERT(!train_safe_relname(""));
	CU_ASSERT(!train_safe_relname("/abs"));
	CU_ASSERT(!train_safe_relname(".."));
	CU_ASSERT(!train_safe_relname("a/../b"));
	CU_ASSERT(!train_safe_relname("./a"));
	CU_ASSERT(!train_safe_relname("a//b"));
	CU_ASSERT(!train_safe_relname("a b"));
	CU_ASSERT(!train_safe_relname("a\nb"));
	CU_ASSERT(train_safe_relname("..a")); /* a name, not a parent */
	char *d = train_dirname("a/b/c.yml");
	CU_ASSERT_STRING_EQUAL(d, "a/b");
	free(d);
	d = train_dirname("c.yml");
	CU_ASSERT_STRING_EQUAL(d, ".");
	free(d);
	d = train_path_join("a/", "b");
	CU_ASSERT_STRING_EQUAL(d, "a/b");
	free(d);
}

static void test_buf_and_le(void)
{
	train_buf b = { 0 };
	for (int i = 0; i < 1000; i++)
		CU_ASSERT_EQUAL(train_buf_printf(&b, "%d,", i), 0);
	CU_ASSERT_EQUAL(strncmp(b.data, "0,1,2,", 6), 0);
	CU_ASSERT_EQUAL(b.data[b.len], '\0');
	train_buf_free(&b);
	unsigned char p[8];
	train_put_u64(p, 0x0102030405060708ULL);
	CU_ASSERT_EQUAL(p[0], 0x08);
	CU_ASSERT_EQUAL(p[7], 0x01);
	CU_ASSERT_EQUAL(train_get_u64(p), 0x0102030405060708ULL);
	train_put_u32(p, 0xdeadbeef);
	CU_ASSERT_EQUAL(train_get_u32(p), 0xdeadbeef);
}

static void test_errors(void)
{
	train_error err = { 0 };
	char buf[600];
	CU_ASSERT_EQUAL(train_error_set(&err, TRAIN_EPARSE, "r.yml", 3, 7, "bad %s", "thing"),
	                TRAIN_EPARSE);
	CU_ASSERT_STRING_EQUAL(train_error_format(&err, buf, sizeof buf), "r.yml:3:7: bad thing");
	train_error_set(&err, TRAIN_EIO, "f", 0, 0, "gone");
	CU_ASSERT_STRING_EQUAL(train_error_format(&err, buf, sizeof buf), "f: gone");
	train_error_set(&err, TRAIN_EIO, NULL, 0, 0, "plain");
	CU_ASSERT_STRING_EQUAL(train_error_format(&err, buf, sizeof buf), "plain");
	CU_ASSERT_EQUAL(train_error_set(NULL, TRAIN_EINVAL, NULL, 0, 0, "x"), TRAIN_EINVAL);
	CU_ASSERT_STRING_EQUAL(train_strerror(TRAIN_ECYCLE), "the graph has a cycle");
	CU_ASSERT_STRING_EQUAL(train_strerror(-2), "No such file or directory");
	CU_ASSERT_STRING_EQUAL(train_strerror(12345), "unknown error");
}

int main(void)
{
	static const test_case cases[] = {
		{ "read and atomic write", test_read_write },
		{ "folders", test_dirs },
		{ "names and paths", test_names },
		{ "buffers and byte order", test_buf_and_le },
		{ "error reports", test_errors },
		{ NULL, NULL },
	};
	return test_main("util", cases);
}
