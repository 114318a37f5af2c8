/*
 * tests/test_bm25.c - the RAG plugin's BM25 index (issue 8) against a
 * three-document example worked by hand, terms, stop words, and serialized
 * indexes that lie (truncated, offsets past the end, ids out of range).
 */
#include <math.h>
#include <stdint.h>

#include <train/common.h>

#include "../plugins/rag/bm25.h"
#include "testlib.h"

static const char *const docs[] = {
	"The cat sat on the mat.",   /* 6 terms */
	"the DOG sat",               /* 3 */
	"Cats and dogs, and a cat!", /* 6: cats and dogs and a cat */
};

static bm25 *build(double k1, double b, const char *const *stop, void **buf, size_t *size)
{
	bm25_builder *bb = NULL;
	CU_ASSERT_EQUAL_FATAL(bm25_builder_create(k1, b, stop, &bb), 0);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(bm25_builder_add(bb, docs[i], strlen(docs[i])), 0);
	CU_ASSERT_EQUAL_FATAL(bm25_builder_finish(bb, buf, size), 0);
	bm25_builder_destroy(bb);
	bm25 *ix = NULL;
	char err[256] = "";
	CU_ASSERT_EQUAL(bm25_open_mem(*buf, *size, "ix", &ix, err), 0);
	if (!ix)
		printf("\n  %s", err);
	return ix;
}

/*
 * By hand, k1 = 1.2, b = 0.75: N = 3, avgdl = 15 / 3 = 5.
 * "cat" is in d0 and d2, "sat" in d0 and d1: idf = ln(1 + 1.5 / 2.5) = ln 1.6
 * = 0.4700036.  Length norms k1 (1 - b + b dl / avgdl): d0 and d2 (6 terms)
 * 1.2 * 1.15 = 1.38; d1 (3 terms) 1.2 * 0.7 = 0.84.  A term with tf 1 gives
 * idf * 2.2 / (1 + norm):
 *   d0: 2 * 0.4700036 * 2.2 / 2.38 = 0.8689143
 *   d1:     0.4700036 * 2.2 / 1.84 = 0.5619609
 *   d2:     0.4700036 * 2.2 / 2.38 = 0.4344572
 * "and" (only d2, tf 2): ln(1 + 2.5 / 1.5) = 0.9808293; * 2 * 2.2 / 3.38
 *   = 1.2768193.
 */
static void test_hand_example(void)
{
	void *buf;
	size_t size;
	bm25 *ix = build(1.2, 0.75, NULL, &buf, &size);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ix);
	CU_ASSERT_EQUAL(bm25_docs(ix), 3);
	CU_ASSERT_EQUAL(bm25_vocab(ix), 10); /* the cat sat on mat dog cats and dogs a */
	uint32_t ids[5];
	float sc[5];
	size_t n = bm25_search(ix, "cat sat", 5, ids, sc);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	CU_ASSERT(ids[0] == 0 && ids[1] == 1 && ids[2] == 2);
	CU_ASSERT_DOUBLE_EQUAL(sc[0], 0.8689143, 1e-5);
	CU_ASSERT_DOUBLE_EQUAL(sc[1], 0.5619609, 1e-5);
	CU_ASSERT_DOUBLE_EQUAL(sc[2], 0.4344572, 1e-5);
	n = bm25_search(ix, "AND", 5, ids, sc);
	CU_ASSERT_EQUAL(n, 1);
	CU_ASSERT_EQUAL(ids[0], 2);
	CU_ASSERT_DOUBLE_EQUAL(sc[0], 1.2768193, 1e-5);
	/* k smaller than the hits: the best ones, best first */
	n = bm25_search(ix, "cat sat", 2, ids, sc);
	CU_ASSERT(n == 2 && ids[0] == 0 && ids[1] == 1);
	CU_ASSERT_EQUAL(bm25_search(ix, "zebra", 5, ids, sc), 0);
	bm25_destroy(ix);
	free(buf);
}

static void test_stop_words(void)
{
	void *buf;
	size_t size;
	bm25 *ix = build(0.9, 0.4, bm25_english_stop_words, &buf, &size);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ix);
	uint32_t ids[3];
	CU_ASSERT_EQUAL(bm25_search(ix, "the and a", 3, ids, NULL), 0);
	CU_ASSERT_EQUAL(bm25_search(ix, "the dog", 3, ids, NULL), 1);
	CU_ASSERT_EQUAL(ids[0], 1);
	bm25_destroy(ix);
	free(buf);
}

typedef struct tl {
	char t[8][32];
	size_t s[8], e[8];
	int n;
} tl;

static int collect(void *ud, const char *t, size_t len, size_t s, size_t e)
{
	tl *l = ud;
	if (l->n < 8 && len < 32) {
		memcpy(l->t[l->n], t, len + 1);
		l->s[l->n] = s;
		l->e[l->n++] = e;
	}
	return 0;
}

static void test_terms(void)
{
	tl l = { 0 };
	const char *s = "Hello, Wörld! it's 2024 ÉTÉ_x";
	CU_ASSERT_EQUAL(bm25_terms(s, strlen(s), collect, &l), 0);
	CU_ASSERT_EQUAL_FATAL(l.n, 6);
	CU_ASSERT_STRING_EQUAL(l.t[0], "hello");
	CU_ASSERT_STRING_EQUAL(l.t[1], "wörld");
	CU_ASSERT_STRING_EQUAL(l.t[2], "it");
	CU_ASSERT_STRING_EQUAL(l.t[3], "s");
	CU_ASSERT_STRING_EQUAL(l.t[4], "2024");
	CU_ASSERT_STRING_EQUAL(l.t[5], "été_x");
	CU_ASSERT(l.s[1] == 7 && l.e[1] == 13);
}

static void expect_bad(const unsigned char *b, size_t size, const char *want)
{
	void *c = NULL;
	if (posix_memalign(&c, 64, size ? size : 1))
		abort();
	memcpy(c, b, size);
	bm25 *ix = NULL;
	char err[256] = "";
	CU_ASSERT_EQUAL(bm25_open_mem(c, size, "ix", &ix, err), TRAIN_ECORRUPT);
	CU_ASSERT_PTR_NULL(ix);
	if (!strstr(err, want)) {
		printf("\n  expected '%s' in: %s", want, err);
		CU_FAIL("wrong message");
	}
	free(c);
}

/* header: magic 8, version 4, header_size 4, ndocs 4, nterms 4, k1 8, b 8,
 * total 8, off[6] at 48, size[6] at 96 */
static void test_corrupt(void)
{
	void *buf;
	size_t size;
	bm25 *ix = build(1.2, 0.75, NULL, &buf, &size);
	bm25_destroy(ix);
	unsigned char *b = buf, *t = malloc(size);
	expect_bad(b, 40, "truncated");
	expect_bad(b, size - 8, "runs past the end");
	memcpy(t, b, size);
	uint32_t nd = 1000;
	memcpy(t + 16, &nd, 4);
	expect_bad(t, size, "the counts say");
	memcpy(t, b, size);
	uint64_t far = (uint64_t)size * 4;
	memcpy(t + 48 + 8 * 4, &far, 8); /* postings offset past the end */
	expect_bad(t, size, "runs past the end");
	/* a posting's document id out of range: bump the first gap of term 0 */
	memcpy(t, b, size);
	uint64_t poff;
	memcpy(&poff, t + 48 + 8 * 4, 8);
	t[poff] = 0x7f;
	expect_bad(t, size, "out of range");
	/* an offset inside the pool out of order */
	memcpy(t, b, size);
	uint64_t toff;
	memcpy(&toff, t + 48 + 8, 8);
	uint64_t big = 1u << 30;
	memcpy(t + toff + 8, &big, 8);
	expect_bad(t, size, "offsets out of order");
	free(t);
	free(buf);
}

static const test_case cases[] = {
	{ "hand_example", test_hand_example },
	{ "stop_words", test_stop_words },
	{ "terms", test_terms },
	{ "corrupt", test_corrupt },
	{ NULL, NULL },
};

int main(void) { return test_main("bm25", cases); }
