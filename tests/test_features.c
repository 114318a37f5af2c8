/*
 * tests/test_features.c - messages with tokens and feature blocks
 * (<train/features.h>, issue 6): building, the label vocabulary from NLU
 * data, the builders' refusals, serialization round trips, deterministic
 * bytes, and the decoder's refusal of every truncation, trailing bytes and
 * crafted corruptions (and no crash on any single-byte change).
 */
#include "testlib.h"

#include <train/features.h>

#include <math.h>

/* Two messages, tokens, a sparse and a dense block. */
static train_features *sample(void)
{
	train_features *f = NULL;
	size_t m0, m1, sb, db;
	if (train_features_create(&f) || train_features_add_message(f, "héllo wörld", "greet", &m0) ||
	    train_features_add_message(f, "", NULL, &m1))
		abort();
	train_feat_token toks[] = {
		{ "héllo", 0, 5, "hello", "INTJ", -1 },
		{ "wörld", 6, 11, NULL, NULL, 7 },
	};
	if (train_features_set_tokens(f, m0, toks, 2))
		abort();
	if (train_features_add_block(f, "CountVectorsFeaturizer", TRAIN_FEAT_SPARSE, 10,
	                             TRAIN_FEAT_SEQUENCE | TRAIN_FEAT_SENTENCE, &sb) ||
	    train_features_add_block(f, "Dense", TRAIN_FEAT_DENSE, 2, TRAIN_FEAT_SEQUENCE, &db))
		abort();
	/* rows: héllo {1: 1, 4: 2}, wörld {9: 1}, sentence {1: 1, 4: 2, 9: 1} */
	uint32_t ip[] = { 0, 2, 3, 6 };
	uint32_t ix[] = { 1, 4, 9, 1, 4, 9 };
	float v[] = { 1, 2, 1, 1, 2, 1 };
	float d[] = { 0.5f, -1, 2, 3, 0, 0 };
	if (train_features_set_sparse(f, sb, m0, ip, ix, v) || train_features_set_dense(f, db, m0, d))
		abort();
	return f;
}

static void test_build(void)
{
	train_features *f = sample();
	CU_ASSERT_EQUAL(f->n_messages, 2);
	CU_ASSERT_EQUAL(f->n_blocks, 2);
	const train_feat_message *m = &f->messages[0];
	CU_ASSERT_EQUAL(m->text_len, 13);
	CU_ASSERT_EQUAL(m->text_chars, 11);
	CU_ASSERT_STRING_EQUAL(m->intent, "greet");
	CU_ASSERT_EQUAL(m->n_tokens, 2);
	CU_ASSERT_EQUAL(m->tokens[1].id, 7);
	CU_ASSERT_EQUAL(m->features[0].rows, 3);
	CU_ASSERT_EQUAL(m->features[0].nnz, 6);
	CU_ASSERT_EQUAL(m->features[0].indices[2], 9);
	CU_ASSERT_EQUAL(m->features[1].values[0], 0.5f);
	/* the empty message got a 1-row empty sparse and zero dense matrix */
	const train_feat_message *e = &f->messages[1];
	CU_ASSERT_PTR_NULL(e->intent);
	CU_ASSERT_EQUAL(e->features[0].rows, 1);
	CU_ASSERT_EQUAL(e->features[0].nnz, 0);
	CU_ASSERT_EQUAL(e->features[0].indptr[1], 0);
	CU_ASSERT_EQUAL(e->features[1].values[1], 0.0f);
	size_t i = 99;
	CU_ASSERT_EQUAL(train_features_find_block(f, "Dense", &i), TRAIN_OK);
	CU_ASSERT_EQUAL(i, 1);
	CU_ASSERT_EQUAL(train_features_find_block(f, "dense", &i), TRAIN_ENOTFOUND);
	/* a message added after the blocks has their (empty) matrices */
	CU_ASSERT_EQUAL(train_features_add_message(f, "x", "y", &i), TRAIN_OK);
	CU_ASSERT_EQUAL(f->messages[2].features[1].rows, 1);
	CU_ASSERT_EQUAL(f->messages[2].features[0].indptr[1], 0);
	train_features_free(f);
	train_features_free(NULL);
}

static void test_refusals(void)
{
	train_features *f = NULL;
	size_t m, b;
	CU_ASSERT_EQUAL_FATAL(train_features_create(&f), TRAIN_OK);
	CU_ASSERT_EQUAL(train_features_add_message(f, "\xff", NULL, &m), TRAIN_EINVAL); /* not UTF-8 */
	CU_ASSERT_EQUAL(train_features_add_message(f, NULL, NULL, &m), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_features_add_message(f, "ab", NULL, &m), TRAIN_OK);
	train_feat_token past = { "b", 1, 3, NULL, NULL, -1 };
	CU_ASSERT_EQUAL(train_features_set_tokens(f, m, &past, 1), TRAIN_EINVAL);
	train_feat_token back = { "b", 2, 1, NULL, NULL, -1 };
	CU_ASSERT_EQUAL(train_features_set_tokens(f, m, &back, 1), TRAIN_EINVAL);
	train_feat_token ok = { "b", 1, 2, NULL, NULL, -1 };
	CU_ASSERT_EQUAL(train_features_set_tokens(f, 1, &ok, 1), TRAIN_EINVAL); /* no message 1 */
	CU_ASSERT_EQUAL(train_features_set_tokens(f, m, &ok, 1), TRAIN_OK);
	CU_ASSERT_EQUAL(train_features_add_block(f, "", TRAIN_FEAT_SPARSE, 3, 1, &b), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_features_add_block(f, "s", TRAIN_FEAT_SPARSE, 0, 1, &b), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_features_add_block(f, "s", TRAIN_FEAT_SPARSE, 3, 0, &b), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_features_add_block(f, "s", TRAIN_FEAT_SPARSE, 3, 4, &b), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_features_add_block(f, "s", (train_feat_kind)3, 3, 1, &b), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_features_add_block(f, "s", TRAIN_FEAT_SPARSE, 3, 1, &b), TRAIN_OK);
	CU_ASSERT_EQUAL(train_features_add_block(f, "s", TRAIN_FEAT_DENSE, 3, 1, NULL), TRAIN_EEXIST);
	/* tokens are fixed once a block exists */
	CU_ASSERT_EQUAL(train_features_set_tokens(f, m, &ok, 1), TRAIN_EINVAL);
	uint32_t ip_bad0[] = { 1, 1, 1 }, ip_down[] = { 0, 2, 1 }, ip[] = { 0, 2, 2 };
	uint32_t ix[] = { 0, 2 }, ix_dup[] = { 1, 1 }, ix_big[] = { 0, 3 };
	float v[] = { 1, 2 }, v0[] = { 1, 0 }, vnan[] = { 1, NAN };
	CU_ASSERT_EQUAL(train_features_set_sparse(f, b, m, ip_bad0, ix, v), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_features_set_sparse(f, b, m, ip_down, ix, v), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_features_set_sparse(f, b, m, ip, ix_dup, v), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_features_set_sparse(f, b, m, ip, ix_big, v), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_features_set_sparse(f, b, m, ip, ix, v0), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_features_set_sparse(f, b, m, ip, ix, vnan), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_features_set_dense(f, b, m, v), TRAIN_EINVAL); /* a sparse block */
	CU_ASSERT_EQUAL(train_features_set_sparse(f, b, m, ip, ix, v), TRAIN_OK);
	CU_ASSERT_EQUAL(f->messages[0].features[0].nnz, 2);
	CU_ASSERT_EQUAL(train_features_set_intent_tokens(f, 0, NULL, 0), TRAIN_EINVAL); /* no labels */
	train_features_free(f);
}

static void test_from_nlu(void)
{
	const char *yml =
		"version: \"3.1\"\n"
		"nlu:\n"
		"- intent: greet\n"
		"  examples: |\n"
		"    - hi [Anna](name)\n"
		"- intent: book\n"
		"  examples: |\n"
		"    - to [Zürich](city) from [Rome](city)\n"
		"- intent: greet\n"
		"  examples: |\n"
		"    - hello\n"
		"- intent: faq/hours\n"
		"  examples: |\n"
		"    - when\n";
	train_rasa_nlu *nlu = NULL;
	train_error e = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_rasa_nlu_parse(yml, strlen(yml), "t.yml", &nlu, NULL, &e), TRAIN_OK);
	train_features *f = NULL;
	CU_ASSERT_EQUAL_FATAL(train_features_from_nlu(nlu, &f), TRAIN_OK);
	CU_ASSERT_EQUAL(f->n_messages, 4);
	CU_ASSERT_STRING_EQUAL(f->messages[1].text, "to Zürich from Rome");
	CU_ASSERT_EQUAL(f->messages[1].n_entities, 2);
	CU_ASSERT_EQUAL(f->messages[1].entities[1].start, 15);
	CU_ASSERT_EQUAL(f->messages[1].entities[1].end, 19);
	CU_ASSERT_EQUAL(f->messages[1].entities[1].byte_start, 16);
	CU_ASSERT_STRING_EQUAL(f->messages[3].intent, "faq");
	CU_ASSERT_STRING_EQUAL(f->messages[3].response_key, "hours");
	CU_ASSERT_EQUAL_FATAL(f->n_intents, 3);
	CU_ASSERT_STRING_EQUAL(f->intents[0].name, "book");
	CU_ASSERT_STRING_EQUAL(f->intents[1].name, "faq");
	CU_ASSERT_STRING_EQUAL(f->intents[2].name, "greet");
	CU_ASSERT_EQUAL_FATAL(f->entity_tags.n, 2);
	CU_ASSERT_STRING_EQUAL(f->entity_tags.v[0], "city");
	CU_ASSERT_STRING_EQUAL(f->entity_tags.v[1], "name");
	size_t i = 0;
	CU_ASSERT_EQUAL(train_features_find_intent(f, "greet", &i), TRAIN_OK);
	CU_ASSERT_EQUAL(i, 2);
	CU_ASSERT_EQUAL(train_features_find_intent(f, "nope", &i), TRAIN_ENOTFOUND);
	const char *toks[] = { "greet" };
	CU_ASSERT_EQUAL(train_features_set_intent_tokens(f, 2, toks, 1), TRAIN_OK);

	/* round trip keeps everything */
	train_value *v = NULL;
	CU_ASSERT_EQUAL_FATAL(train_features_to_value(f, &v, &e), TRAIN_OK);
	train_features *g = NULL;
	CU_ASSERT_EQUAL_FATAL(train_features_from_value(v, &g, &e), TRAIN_OK);
	CU_ASSERT_EQUAL(g->n_intents, 3);
	CU_ASSERT_EQUAL(g->intents[2].tokens.n, 1);
	CU_ASSERT_EQUAL(g->messages[1].entities[0].end, 9);
	CU_ASSERT_STRING_EQUAL(g->messages[1].entities[0].value, "Zürich");
	CU_ASSERT_STRING_EQUAL(g->messages[3].response_key, "hours");
	train_value_unref(v);
	train_features_free(g);
	train_features_free(f);
	train_rasa_nlu_free(nlu);
}

static int same_bytes(const train_value *a, const train_value *b)
{
	return train_value_size(a) == train_value_size(b) &&
	       memcmp(train_value_data(a), train_value_data(b), train_value_size(a)) == 0;
}

static void test_round_trip(void)
{
	train_features *f = sample();
	train_value *v = NULL, *w = NULL;
	train_error e = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_features_to_value(f, &v, &e), TRAIN_OK);
	CU_ASSERT_STRING_EQUAL(train_value_type(v), TRAIN_FEATURES_TYPE);
	train_features *g = NULL;
	CU_ASSERT_EQUAL_FATAL(train_features_from_value(v, &g, &e), TRAIN_OK);
	CU_ASSERT_EQUAL(g->n_messages, 2);
	CU_ASSERT_EQUAL(g->n_blocks, 2);
	CU_ASSERT_STRING_EQUAL(g->blocks[0].name, "CountVectorsFeaturizer");
	CU_ASSERT_EQUAL(g->blocks[0].kind, TRAIN_FEAT_SPARSE);
	CU_ASSERT_EQUAL(g->blocks[0].dim, 10);
	CU_ASSERT_EQUAL(g->blocks[1].flags, TRAIN_FEAT_SEQUENCE);
	const train_feat_message *m = &g->messages[0];
	CU_ASSERT_STRING_EQUAL(m->text, "héllo wörld");
	CU_ASSERT_EQUAL(m->text_chars, 11);
	CU_ASSERT_STRING_EQUAL(m->tokens[0].lemma, "hello");
	CU_ASSERT_STRING_EQUAL(m->tokens[0].pos, "INTJ");
	CU_ASSERT_PTR_NULL(m->tokens[1].lemma);
	CU_ASSERT_EQUAL(m->tokens[0].id, -1);
	CU_ASSERT_EQUAL(m->tokens[1].start, 6);
	CU_ASSERT_EQUAL(m->features[0].nnz, 6);
	CU_ASSERT_EQUAL(m->features[0].indptr[2], 3);
	CU_ASSERT_EQUAL(m->features[0].indices[5], 9);
	CU_ASSERT_EQUAL(m->features[0].values[4], 2.0f);
	CU_ASSERT_EQUAL(m->features[1].values[0], 0.5f);
	CU_ASSERT_EQUAL(m->features[1].values[1], -1.0f);
	CU_ASSERT_PTR_NULL(g->messages[1].intent);
	/* the decoded set encodes to the same bytes, and can be extended */
	CU_ASSERT_EQUAL_FATAL(train_features_to_value(g, &w, &e), TRAIN_OK);
	CU_ASSERT(same_bytes(v, w));
	size_t b = 0;
	CU_ASSERT_EQUAL(train_features_add_block(g, "Regex", TRAIN_FEAT_SPARSE, 1, TRAIN_FEAT_SENTENCE, &b),
	                TRAIN_OK);
	CU_ASSERT_EQUAL(b, 2);
	CU_ASSERT_EQUAL(g->messages[0].features[2].rows, 3);
	CU_ASSERT_EQUAL(g->messages[0].features[0].nnz, 6); /* the others kept */
	train_value_unref(w);
	train_value_unref(v);
	train_features_free(g);
	train_features_free(f);
}

static void test_deterministic(void)
{
	train_features *a = sample(), *b = sample();
	train_value *va = NULL, *vb = NULL;
	CU_ASSERT_EQUAL_FATAL(train_features_to_value(a, &va, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(train_features_to_value(b, &vb, NULL), TRAIN_OK);
	CU_ASSERT(same_bytes(va, vb));
	CU_ASSERT(train_fp_eq(train_value_fp(va), train_value_fp(vb)));
	/* a different value somewhere changes the bytes */
	float d[] = { 0.5f, -1, 2, 3, 0, 1 };
	CU_ASSERT_EQUAL(train_features_set_dense(b, 1, 0, d), TRAIN_OK);
	train_value_unref(vb);
	CU_ASSERT_EQUAL_FATAL(train_features_to_value(b, &vb, NULL), TRAIN_OK);
	CU_ASSERT(!same_bytes(va, vb));
	train_value_unref(va);
	train_value_unref(vb);
	train_features_free(a);
	train_features_free(b);
}

/* Decode bytes; returns the code (and frees what was made). */
static int decode(const void *p, size_t n)
{
	train_features *f = NULL;
	train_error e = { 0 };
	int rc = train_features_decode(p, n, &f, &e);
	if (rc == TRAIN_OK) {
		CU_ASSERT_PTR_NOT_NULL(f);
	} else {
		CU_ASSERT_PTR_NULL(f);
		CU_ASSERT(e.text[0] != '\0');
	}
	train_features_free(f);
	return rc;
}

/* Offset of the first occurrence of `what` in the bytes. */
static size_t find(const unsigned char *p, size_t n, const void *what, size_t len)
{
	for (size_t i = 0; i + len <= n; i++)
		if (memcmp(p + i, what, len) == 0)
			return i;
	abort();
}

static void put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static void test_corrupt(void)
{
	train_features *f = sample();
	train_value *v = NULL;
	CU_ASSERT_EQUAL_FATAL(train_features_to_value(f, &v, NULL), TRAIN_OK);
	train_features_free(f);
	size_t n = train_value_size(v);
	unsigned char *p = malloc(n + 1);
	if (!p)
		abort();
	memcpy(p, train_value_data(v), n);
	CU_ASSERT_EQUAL(decode(p, n), TRAIN_OK);

	/* every truncation, and a byte too many */
	int refused = 0;
	for (size_t k = 0; k < n; k++)
		refused += decode(p, k) == TRAIN_ECORRUPT;
	CU_ASSERT_EQUAL(refused, (int)n);
	p[n] = 0;
	CU_ASSERT_EQUAL(decode(p, n + 1), TRAIN_ECORRUPT);

	/* every single byte changed: refused or decoded, never a crash (ASan, valgrind) */
	for (size_t k = 0; k < n; k++) {
		unsigned char *q = malloc(n);
		if (!q)
			abort();
		memcpy(q, p, n);
		for (int x = 1; x < 256; x <<= 1) {
			q[k] = (unsigned char)(p[k] ^ x);
			int rc = decode(q, n);
			CU_ASSERT(rc == TRAIN_OK || rc == TRAIN_ECORRUPT);
		}
		q[k] = 0xff;
		int rc = decode(q, n);
		CU_ASSERT(rc == TRAIN_OK || rc == TRAIN_ECORRUPT);
		free(q);
	}

	/* crafted: magic, version, a column >= dim, a zero value, NaN, unsorted columns */
	unsigned char *q = malloc(n);
	if (!q)
		abort();
#define CORRUPT(what, off, val)                                   \
	do {                                                      \
		memcpy(q, p, n);                                  \
		put32(q + (off), (val));                          \
		CU_ASSERT_EQUAL(decode(q, n), TRAIN_ECORRUPT);    \
		(void)(what);                                     \
	} while (0)
	memcpy(q, p, n);
	q[0] = 'X';
	CU_ASSERT_EQUAL(decode(q, n), TRAIN_ECORRUPT);
	CORRUPT("version", 4, 2);
	/* the sparse entries of message 0: (1, 1.0) (4, 2.0) (9, 1.0) ... */
	unsigned char pair[8];
	put32(pair, 9);
	float one = 1.0f;
	uint32_t u;
	memcpy(&u, &one, 4);
	put32(pair + 4, u);
	size_t at = find(p, n, pair, 8);
	CORRUPT("column = dim", at, 10);
	CORRUPT("zero value", at + 4, 0);
	CORRUPT("NaN", at + 4, 0x7fc00000u);
	CORRUPT("unsorted", at - 16, 5); /* row 0: (1, 1.0) (4, 2.0) becomes (5, ..) (4, ..) */
	/* the dense block's dimension: 2 -> 3 needs more floats than there are */
	size_t dn = find(p, n, "Dense", 5);
	CORRUPT("dense dim", dn + 5 + 4, 3);
	CORRUPT("dense dim 0", dn + 5 + 4, 0);
	CORRUPT("kind", dn + 5, 7);
	CORRUPT("flags", dn + 5 + 8, 4);
	/* token 'wörld' ends past the text */
	size_t tw = find(p, n, "w\xc3\xb6rld", 6);
	tw = find(p + tw + 6, n - tw - 6, "w\xc3\xb6rld", 6) + tw + 6; /* the token, not the text */
	CORRUPT("token end", tw + 6 + 4, 12);
	CORRUPT("message count", find(p, n, "\x02\x00\x00\x00\x0d\x00\x00\x00", 8), 0x7fffffffu);
	free(q);
#undef CORRUPT

	/* a value of another type */
	train_value *t = NULL;
	train_features *g = NULL;
	CU_ASSERT_EQUAL(train_value_new("text/plain", p, n, &t), TRAIN_OK);
	CU_ASSERT_EQUAL(train_features_from_value(t, &g, NULL), TRAIN_ECORRUPT);
	CU_ASSERT_PTR_NULL(g);
	train_value_unref(t);
	free(p);
	train_value_unref(v);
}

static const test_case cases[] = {
	{ "build", test_build },
	{ "refusals", test_refusals },
	{ "from_nlu", test_from_nlu },
	{ "round_trip", test_round_trip },
	{ "deterministic", test_deterministic },
	{ "corrupt", test_corrupt },
	{ NULL, NULL },
};

int main(void)
{
	return test_main("features", cases);
}
