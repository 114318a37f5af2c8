/*
 * test_fingerprint.c - XXH3-128 fingerprints: known values, streaming,
 * hex round trip, content hashing of files and folders.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "testlib.h"
#include "util.h"

static void test_known_value(void)
{
	/* XXH3-128 of the empty input with seed 0, from the xxHash test vectors
	 * (XXH128 "" = 99aa06d3014798d86001c324468d497f). */
	train_fp fp = train_fp_of("", 0);
	char hex[TRAIN_FP_HEX];
	CU_ASSERT_STRING_EQUAL(train_fp_hex(fp, hex), "99aa06d3014798d86001c324468d497f");
	/* One-shot and streaming agree, whatever the chunking. */
	const char *text = "the quick brown fox jumps over the lazy dog, many times over";
	train_fp a = train_fp_of(text, strlen(text));
	train_hasher *h;
	CU_ASSERT_EQUAL_FATAL(train_hasher_create(&h), 0);
	for (size_t i = 0; i < strlen(text); i += 7)
		train_hasher_update(h, text + i, strlen(text) - i < 7 ? strlen(text) - i : 7);
	CU_ASSERT(train_fp_eq(a, train_hasher_digest(h)));
	train_hasher_destroy(h);
}

static void test_hex(void)
{
	train_fp fp = { 0x0123456789abcdefULL, 0xfedcba9876543210ULL }, back;
	char hex[TRAIN_FP_HEX];
	CU_ASSERT_STRING_EQUAL(train_fp_hex(fp, hex), "0123456789abcdeffedcba9876543210");
	CU_ASSERT_EQUAL(train_fp_parse(hex, &back), 0);
	CU_ASSERT(train_fp_eq(fp, back));
	CU_ASSERT_EQUAL(train_fp_parse("0123", &back), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_fp_parse("0123456789abcdeffedcba98765432100", &back), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_fp_parse("0123456789abcdeffedcba987654321g", &back), TRAIN_EINVAL);
}

static void test_strings_are_delimited(void)
{
	train_hasher *h;
	CU_ASSERT_EQUAL_FATAL(train_hasher_create(&h), 0);
	train_hasher_str(h, "ab");
	train_hasher_str(h, "c");
	train_fp x = train_hasher_digest(h);
	train_hasher_reset(h);
	train_hasher_str(h, "a");
	train_hasher_str(h, "bc");
	CU_ASSERT(!train_fp_eq(x, train_hasher_digest(h)));
	train_hasher_reset(h);
	train_hasher_str(h, NULL);
	train_fp n = train_hasher_digest(h);
	train_hasher_reset(h);
	train_hasher_str(h, "");
	CU_ASSERT(!train_fp_eq(n, train_hasher_digest(h)));
	train_hasher_destroy(h);
}

static train_fp path_fp(const char *path)
{
	train_hasher *h;
	train_fp fp = { 0, 0 };
	if (train_hasher_create(&h))
		return fp;
	if (train_hasher_path(h, path, NULL) == 0)
		fp = train_hasher_digest(h);
	train_hasher_destroy(h);
	return fp;
}

static void test_paths_by_content(void)
{
	const char *d1 = test_tmpdir(), *d2 = test_tmpdir();
	char p[700];
	/* Two folders with the same files, made in another order. */
	snprintf(p, sizeof p, "%s/a.txt", d1); test_write(p, "one");
	snprintf(p, sizeof p, "%s/sub", d1); mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/sub/b.txt", d1); test_write(p, "two");
	snprintf(p, sizeof p, "%s/sub", d2); mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/sub/b.txt", d2); test_write(p, "two");
	snprintf(p, sizeof p, "%s/a.txt", d2); test_write(p, "one");
	train_fp f1 = path_fp(d1), f2 = path_fp(d2);
	CU_ASSERT(train_fp_eq(f1, f2));
	CU_ASSERT(!(f1.hi == 0 && f1.lo == 0));
	/* Renaming a file inside the folder changes it; so does content. */
	char q[700];
	snprintf(p, sizeof p, "%s/a.txt", d2);
	snprintf(q, sizeof q, "%s/c.txt", d2);
	rename(p, q);
	CU_ASSERT(!train_fp_eq(f1, path_fp(d2)));
	rename(q, p);
	CU_ASSERT(train_fp_eq(f1, path_fp(d2)));
	test_write(p, "ONE");
	CU_ASSERT(!train_fp_eq(f1, path_fp(d2)));
	/* A file is its content, wherever it is. */
	snprintf(p, sizeof p, "%s/sub/b.txt", d1);
	snprintf(q, sizeof q, "%s/sub/b.txt", d2);
	CU_ASSERT(train_fp_eq(path_fp(p), path_fp(q)));
	/* A missing path is an error. */
	train_hasher *h;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_hasher_create(&h), 0);
	snprintf(p, sizeof p, "%s/nope", d1);
	CU_ASSERT(train_hasher_path(h, p, &err) < 0);
	train_hasher_destroy(h);
}

int main(void)
{
	static const test_case cases[] = {
		{ "known XXH3-128 value, streaming", test_known_value },
		{ "hex text", test_hex },
		{ "strings are delimited", test_strings_are_delimited },
		{ "files and folders by content", test_paths_by_content },
		{ NULL, NULL },
	};
	return test_main("fingerprint", cases);
}
