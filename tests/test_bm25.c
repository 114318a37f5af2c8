/*
 * tests/test_bm25.c - the RAG plugin's BM25 index (issue 8) against a
 * three-document example worked by hand, terms, stop words, and serialized
 * indexes that lie (truncated, offsets past the end, ids out of range); the
 * Porter stemmer on the examples of Porter's paper; stems and word pairs.
 */
#include <math.h>
#include <stdint.h>

#include <train/common.h>

#include "../plugins/common/porter.h"
#include "../plugins/rag/bm25.h"
#include "testlib.h"

static const char *const docs[] = {
	"The cat sat on the mat.",   /* 6 terms */
	"the DOG sat",               /* 3 */
	"Cats and dogs, and a cat!", /* 6: cats and dogs and a cat */
};

static bm25 *build_with(const bm25_options *o, void **buf, size_t *size);

static bm25 *build(double k1, double b, const char *const *stop, void **buf, size_t *size)
{
	bm25_options o = { k1, b, stop, 0, 0 };
	return build_with(&o, buf, size);
}

static bm25 *build_with(const bm25_options *o, void **buf, size_t *size)
{
	bm25_builder *bb = NULL;
	CU_ASSERT_EQUAL_FATAL(bm25_builder_create(o, &bb), 0);
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

/* M. F. Porter (1980)'s examples of each step, as the whole algorithm
 * leaves them (step 1 then steps 2-5). */
static void test_porter(void)
{
	static const char *const pairs[][2] = {
		{ "caresses", "caress" }, { "ponies", "poni" }, { "ties", "ti" }, { "caress", "caress" },
		{ "cats", "cat" }, { "feed", "feed" }, { "agreed", "agre" }, { "plastered", "plaster" },
		{ "bled", "bled" }, { "motoring", "motor" }, { "sing", "sing" }, { "conflated", "conflat" },
		{ "troubled", "troubl" }, { "sized", "size" }, { "hopping", "hop" }, { "tanned", "tan" },
		{ "falling", "fall" }, { "hissing", "hiss" }, { "fizzed", "fizz" }, { "failing", "fail" },
		{ "filing", "file" }, { "happy", "happi" }, { "sky", "sky" }, { "relational", "relat" },
		{ "conditional", "condit" }, { "rational", "ration" }, { "valenci", "valenc" },
		{ "hesitanci", "hesit" }, { "digitizer", "digit" }, { "conformabli", "conform" },
		{ "radicalli", "radic" }, { "differentli", "differ" }, { "vileli", "vile" },
		{ "analogousli", "analog" }, { "vietnamization", "vietnam" }, { "predication", "predic" },
		{ "operator", "oper" }, { "feudalism", "feudal" }, { "decisiveness", "decis" },
		{ "hopefulness", "hope" }, { "callousness", "callous" }, { "formaliti", "formal" },
		{ "sensitiviti", "sensit" }, { "sensibiliti", "sensibl" }, { "triplicate", "triplic" },
		{ "formative", "form" }, { "formalize", "formal" }, { "electriciti", "electr" },
		{ "electrical", "electr" }, { "hopeful", "hope" }, { "goodness", "good" },
		{ "revival", "reviv" }, { "allowance", "allow" }, { "inference", "infer" },
		{ "airliner", "airlin" }, { "gyroscopic", "gyroscop" }, { "adjustable", "adjust" },
		{ "defensible", "defens" }, { "irritant", "irrit" }, { "replacement", "replac" },
		{ "adjustment", "adjust" }, { "dependent", "depend" }, { "adoption", "adopt" },
		{ "homologou", "homolog" }, { "communism", "commun" }, { "activate", "activ" },
		{ "angulariti", "angular" }, { "homologous", "homolog" }, { "effective", "effect" },
		{ "bowdlerize", "bowdler" }, { "probate", "probat" }, { "rate", "rate" },
		{ "cease", "ceas" }, { "controll", "control" }, { "roll", "roll" },
		{ "generalizations", "gener" }, { "oscillators", "oscil" }, { "apology", "apolog" },
		/* left alone: short, or not only a-z */
		{ "is", "is" }, { "as", "as" }, { "cats2", "cats2" }, { "wörlds", "wörlds" },
	};
	for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
		char w[32];
		size_t n = strlen(pairs[i][0]);
		memcpy(w, pairs[i][0], n + 1);
		n = porter_stem(w, n);
		w[n] = '\0';
		if (strcmp(w, pairs[i][1])) {
			printf("\n  %s -> %s, want %s", pairs[i][0], w, pairs[i][1]);
			CU_FAIL("porter_stem");
		}
	}
}

static void test_stems_and_pairs(void)
{
	void *b0, *b1, *b2;
	size_t s0, s1, s2;
	bm25 *plain = build(1.2, 0.75, NULL, &b0, &s0);
	bm25_options o = { 1.2, 0.75, NULL, BM25_STEM, 0 };
	bm25 *stem = build_with(&o, &b1, &s1);
	bm25_options op = { 1.2, 0.75, NULL, BM25_PAIRS, 0.5 };
	bm25 *pairs = build_with(&op, &b2, &s2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(plain);
	CU_ASSERT_PTR_NOT_NULL_FATAL(stem);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pairs);
	/* cats -> cat, dogs -> dog */
	CU_ASSERT_EQUAL(bm25_vocab(stem), 8);
	uint32_t ia[3], ib[3];
	float sa[3], sb[3];
	size_t na = bm25_search(stem, "cats", 3, ia, sa), nb = bm25_search(stem, "cat", 3, ib, sb);
	CU_ASSERT(na == 2 && nb == 2 && ia[0] == 2 && ib[0] == 2 && sa[0] == sb[0] && sa[1] == sb[1]);
	CU_ASSERT_EQUAL(bm25_search(plain, "cats", 3, ia, sa), 1); /* only d2's "cats" */
	/*
	 * Pairs: "the cat" is a pair of d0 only, df 1: idf ln(1 + 2.5 / 1.5) =
	 * 0.9808293; d0's length stays 6 (pairs are not counted), norm 1.38, so
	 * the pair adds 0.5 * 0.9808293 * 2.2 / 2.38 = 0.4533244 to d0's score.
	 */
	CU_ASSERT_EQUAL(bm25_vocab(pairs), 10 + 12); /* 5 + 2 + 5 pairs, none shared */
	na = bm25_search(plain, "the cat", 3, ia, sa);
	nb = bm25_search(pairs, "the cat", 3, ib, sb);
	CU_ASSERT_EQUAL_FATAL(na, nb);
	for (size_t i = 0; i < na; i++) {
		CU_ASSERT_EQUAL(ia[i], ib[i]);
		float want = sa[i] + (ia[i] == 0 ? 0.4533244f : 0.0f);
		CU_ASSERT_DOUBLE_EQUAL(sb[i], want, 1e-5);
	}
	/* a weight with no pairs, or unknown options: refused */
	bm25_builder *bb = NULL;
	bm25_options bad = { 1.2, 0.75, NULL, BM25_PAIRS, 0 };
	CU_ASSERT_EQUAL(bm25_builder_create(&bad, &bb), TRAIN_EINVAL);
	bad.flags = 8;
	bad.pair_weight = 1;
	CU_ASSERT_EQUAL(bm25_builder_create(&bad, &bb), TRAIN_EINVAL);
	CU_ASSERT_PTR_NULL(bb);
	/* the options are in the file: unknown bits or a bad weight are refused */
	unsigned char *t = malloc(s2);
	memcpy(t, b2, s2);
	uint32_t fl = 0x10;
	memcpy(t + 144, &fl, 4);
	expect_bad(t, s2, "unknown options");
	memcpy(t, b2, s2);
	float w = -1;
	memcpy(t + 148, &w, 4);
	expect_bad(t, s2, "bad pair weight");
	/* a version 1 file (the header without options) still opens */
	memcpy(t, b0, s0);
	uint32_t v1[2] = { 1, 144 };
	memcpy(t + 8, v1, 8);
	void *c = NULL;
	if (posix_memalign(&c, 64, s0))
		abort();
	memcpy(c, t, s0);
	bm25 *old = NULL;
	char err[256] = "";
	CU_ASSERT_EQUAL(bm25_open_mem(c, s0, "v1", &old, err), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(old);
	na = bm25_search(old, "cat sat", 3, ia, sa);
	nb = bm25_search(plain, "cat sat", 3, ib, sb);
	CU_ASSERT(na == 3 && nb == 3 && !memcmp(ia, ib, sizeof ia) && !memcmp(sa, sb, sizeof sa));
	bm25_destroy(old);
	free(c);
	free(t);
	bm25_destroy(plain);
	bm25_destroy(stem);
	bm25_destroy(pairs);
	free(b0);
	free(b1);
	free(b2);
}

static const test_case cases[] = {
	{ "hand_example", test_hand_example },
	{ "stop_words", test_stop_words },
	{ "terms", test_terms },
	{ "corrupt", test_corrupt },
	{ "porter", test_porter },
	{ "stems_and_pairs", test_stems_and_pairs },
	{ NULL, NULL },
};

int main(void) { return test_main("bm25", cases); }
