/*
 * tests/test_bpe.c - the byte-level BPE of plugins/common/bpe.c (issue 7):
 * merges learnt from tests/data/mamba/corpus.txt and the ids of a few
 * texts against tests/fixtures/bpe/expected.json (written by a plain
 * Python trainer, make_fixture.py); encode then decode gives back every
 * byte string (random bytes, invalid UTF-8, the repo's text fixtures);
 * vocab.json and merges.txt written and read back; cut or broken files
 * refused at file:line.
 */
#include "testlib.h"

#include "../plugins/common/bpe.h"
#include "../plugins/common/hf.h"

#include <jansson.h>
#include <train/common.h>
#include <train/tensor.h>

static const char *src(const char *rel)
{
	static char buf[4][1024];
	static int k;
	const char *top = getenv("top_srcdir");
	char *b = buf[k++ & 3];
	snprintf(b, sizeof buf[0], "%s/%s", top ? top : ".", rel);
	return b;
}

static char *slurp(const char *path, size_t *n)
{
	char *d = NULL;
	CU_ASSERT_EQUAL_FATAL(hf_read_file(path, &d, n, NULL), 0);
	return d;
}

static void train_corpus(bpe_tok *b, size_t vocab)
{
	size_t n;
	char *text = slurp(src("tests/data/mamba/corpus.txt"), &n);
	CU_ASSERT_EQUAL_FATAL(bpe_train(text, n, vocab, 2, b), 0);
	free(text);
}

static int round_trip(const bpe_tok *b, const char *s, size_t n)
{
	size_t k = 0, k2 = 0, bl = 0;
	if (bpe_encode(b, s, n, NULL, 0, &k))
		return 0;
	int32_t *ids = malloc((k + 1) * sizeof *ids);
	char *back = NULL;
	int ok = ids && !bpe_encode(b, s, n, ids, k, &k2) && k2 == k &&
	         !bpe_decode(b, ids, k, &back, &bl) && bl == n && !memcmp(back, s, n);
	free(ids);
	free(back);
	return ok;
}

static void test_fixture(void)
{
	json_error_t je;
	json_t *e = json_load_file(src("tests/fixtures/bpe/expected.json"), 0, &je);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	bpe_tok b;
	train_corpus(&b, (size_t)json_integer_value(json_object_get(e, "vocab_size")));
	json_t *m = json_object_get(e, "merges");
	CU_ASSERT_EQUAL(b.n, (size_t)json_integer_value(json_object_get(e, "tokens")));
	CU_ASSERT_EQUAL_FATAL(b.n_merges, json_array_size(m));
	size_t bad = 0;
	for (size_t r = 0; r < b.n_merges; r++) {
		json_t *x = json_array_get(m, r);
		bad += b.mrg[r].a != json_integer_value(json_array_get(x, 0)) ||
		       b.mrg[r].b != json_integer_value(json_array_get(x, 1)) ||
		       b.mrg[r].r != json_integer_value(json_array_get(x, 2));
	}
	CU_ASSERT_EQUAL(bad, 0);
	/* the tokens' bytes (the fixture writes them as Latin-1 text) */
	json_t *tb = json_object_get(e, "token_bytes");
	for (size_t i = 0; i < json_array_size(tb); i++) {
		char got[256];
		size_t k = bpe_token_bytes(&b, (int32_t)(256 + i), got, sizeof got);
		const char *want = json_string_value(json_array_get(tb, i));
		CU_ASSERT(k == strlen(want) && !memcmp(got, want, k));
	}
	CU_ASSERT_EQUAL(b.eot, (int32_t)b.n - 1);
	json_t *enc = json_object_get(e, "encode");
	for (size_t i = 0; i < json_array_size(enc); i++) {
		json_t *c = json_array_get(enc, i), *ids = json_object_get(c, "ids");
		const char *t = json_string_value(json_object_get(c, "text"));
		int32_t got[256];
		size_t n = 0;
		CU_ASSERT_EQUAL_FATAL(bpe_encode(&b, t, strlen(t), got, 256, &n), 0);
		CU_ASSERT_EQUAL(n, json_array_size(ids));
		for (size_t k = 0; k < n && k < json_array_size(ids); k++)
			CU_ASSERT_EQUAL(got[k], json_integer_value(json_array_get(ids, k)));
		CU_ASSERT(round_trip(&b, t, strlen(t)));
	}
	json_decref(e);
	bpe_free(&b);
}

/* Ties go to the lowest (left, right); a token made twice keeps one id. */
static void test_by_hand(void)
{
	bpe_tok b;
	/* pieces "ab" x3 and " ab" x2 ... worked out by hand:
	 *   pairs: (a,b) 5, (' ',a) 2 -> merge 0: a b -> 256 "ab"
	 *   then (' ', 256) 2 -> merge 1: ' ' ab -> 257 " ab"; then nothing twice */
	const char *t = "ab ab ab\nab ab";
	CU_ASSERT_EQUAL_FATAL(bpe_train(t, strlen(t), 1000, 2, &b), 0);
	CU_ASSERT_EQUAL_FATAL(b.n_merges, 2);
	CU_ASSERT(b.mrg[0].a == 'a' && b.mrg[0].b == 'b' && b.mrg[0].r == 256);
	CU_ASSERT(b.mrg[1].a == ' ' && b.mrg[1].b == 256 && b.mrg[1].r == 257);
	CU_ASSERT_EQUAL(b.n, 259); /* 256 + 2 + <|endoftext|> */
	bpe_free(&b);
	/* "xy" and "yx" 2 each: (x,y) 2 and (y,x) 2 tie in "xyxy"... the
	 * lower pair (x=120, y=121) first */
	t = "xyx xyx";
	CU_ASSERT_EQUAL_FATAL(bpe_train(t, strlen(t), 1000, 2, &b), 0);
	CU_ASSERT_FATAL(b.n_merges >= 1);
	CU_ASSERT(b.mrg[0].a == 'x' && b.mrg[0].b == 'y');
	bpe_free(&b);
	/* vocab_size bounds the merges; too small is refused */
	t = "abcabcabc abcabc";
	CU_ASSERT_EQUAL_FATAL(bpe_train(t, strlen(t), 258, 1, &b), 0);
	CU_ASSERT_EQUAL(b.n, 258);
	CU_ASSERT_EQUAL(b.n_merges, 1);
	bpe_free(&b);
	CU_ASSERT_EQUAL(bpe_train(t, strlen(t), 256, 1, &b), TRAIN_EINVAL);
	bpe_free(&b);
}

static void test_round_trip(void)
{
	bpe_tok b;
	train_corpus(&b, 400);
	train_rng r;
	train_rng_seed(&r, 7);
	int runs = test_light() ? 50 : 400, bad = 0;
	char s[700];
	for (int i = 0; i < runs; i++) {
		size_t n = (size_t)train_rng_below(&r, sizeof s);
		for (size_t k = 0; k < n; k++) {
			/* letters, spaces, '<|endoftext|>' pieces and any byte */
			uint64_t u = train_rng_below(&r, 10);
			s[k] = u < 4 ? (char)('a' + train_rng_below(&r, 6)) : u < 6 ? ' '
			       : u < 7 ? "<|endoftext|>"[train_rng_below(&r, 13)] : (char)train_rng_below(&r, 256);
		}
		bad += !round_trip(&b, s, n);
	}
	CU_ASSERT_EQUAL(bad, 0);
	/* invalid UTF-8 and edge cases, one by one */
	static const char *const odd[] = { "\xff\xfe", "\xc3", "caf\xc3\xa9\x80", "\xed\xa0\x80",
	                                   "\xf4\x90\x80\x80", "a\0b", "<|endoftext|><|endoftext|>",
	                                   "<|endoftext", "   \n\n  \t", "\xe6\x9d\xb1\xe4\xba" };
	static const size_t oddn[] = { 2, 1, 7, 3, 4, 3, 26, 11, 9, 5 };
	for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++)
		CU_ASSERT(round_trip(&b, odd[i], oddn[i]));
	CU_ASSERT(round_trip(&b, "", 0));
	/* the repo's text fixtures */
	static const char *const files[] = { "tests/data/mamba/corpus.txt", "tests/data/bert/corpus.txt",
	                                     "tests/fuzz/corpus/corpus/utf8.txt",
	                                     "tests/fuzz/corpus/corpus/bom-crlf.txt",
	                                     "tests/fixtures/gpt2/tiny/merges.txt",
	                                     "tests/fixtures/gpt2/tiny/vocab.json",
	                                     "tests/fixtures/bert-tiny-hf/vocab.txt" };
	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		size_t n;
		char *d = slurp(src(files[i]), &n);
		CU_ASSERT(round_trip(&b, d, n));
		free(d);
	}
	/* a run of 20000 spaces is one piece: merged in O(n log n) */
	char *sp = malloc(20000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sp);
	memset(sp, ' ', 20000);
	CU_ASSERT(round_trip(&b, sp, 20000));
	free(sp);
	bpe_free(&b);
}

static void write_file(const char *path, const char *s, size_t n)
{
	FILE *f = fopen(path, "wb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fwrite(s, 1, n, f), n);
	fclose(f);
}

static void test_files(void)
{
	bpe_tok b, c;
	train_corpus(&b, 300);
	const char *dir = test_tmpdir();
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(bpe_save(&b, dir, &err), 0);
	char vp[600], mp[600];
	snprintf(vp, sizeof vp, "%s/vocab.json", dir);
	snprintf(mp, sizeof mp, "%s/merges.txt", dir);
	CU_ASSERT_EQUAL_FATAL(bpe_load(vp, mp, 1, 1, &c, &err), 0);
	CU_ASSERT(c.n == b.n && c.n_merges == b.n_merges && c.eot == b.eot);
	const char *t = "The sailor's teacher paints 42 bright stars!";
	int32_t x[128], y[128];
	size_t nx, ny;
	CU_ASSERT_EQUAL(bpe_encode(&b, t, strlen(t), x, 128, &nx), 0);
	CU_ASSERT_EQUAL(bpe_encode(&c, t, strlen(t), y, 128, &ny), 0);
	CU_ASSERT(nx == ny && !memcmp(x, y, nx * sizeof *x));
	bpe_free(&c);
	/* GPT-2's reader (not strict) takes our files too */
	CU_ASSERT_EQUAL(bpe_load(vp, mp, 1, 0, &c, &err), 0);
	bpe_free(&c);

	/* a merges.txt cut after 10 merges: line 12 (after "#version" and 10) */
	const char *m = b.merges_raw;
	size_t cut = 0;
	for (int l = 0; l < 11; l++)
		cut = (size_t)(strchr(m + cut, '\n') - m) + 1;
	write_file(mp, m, cut);
	memset(&err, 0, sizeof err);
	CU_ASSERT_EQUAL(bpe_load(vp, mp, 1, 1, &c, &err), TRAIN_ECORRUPT);
	CU_ASSERT(strstr(err.file, "merges.txt") != NULL);
	CU_ASSERT_EQUAL(err.line, 12);
	CU_ASSERT(strstr(err.text, "cut short") != NULL);
	/* cut in the middle of a line: that line is not a merge */
	write_file(mp, m, cut + 2);
	memset(&err, 0, sizeof err);
	CU_ASSERT_EQUAL(bpe_load(vp, mp, 1, 1, &c, &err), TRAIN_ECORRUPT);
	CU_ASSERT_EQUAL(err.line, 12);
	/* a merge of tokens the vocabulary lacks, at line 3 */
	char buf[4096];
	size_t l2 = (size_t)(strchr(m + 14, '\n') - m) + 1;
	int k = snprintf(buf, sizeof buf, "%.*sq z\n%s", (int)l2, m, m + l2);
	write_file(mp, buf, (size_t)k);
	memset(&err, 0, sizeof err);
	CU_ASSERT_EQUAL(bpe_load(vp, mp, 1, 1, &c, &err), TRAIN_ECORRUPT);
	CU_ASSERT_EQUAL(err.line, 3);
	/* a character that stands for no byte */
	k = snprintf(buf, sizeof buf, "%.*s\xe6\x9d\xb1 a\n", (int)l2, m);
	write_file(mp, buf, (size_t)k);
	memset(&err, 0, sizeof err);
	CU_ASSERT_EQUAL(bpe_load(vp, mp, 1, 0, &c, &err), TRAIN_ECORRUPT);
	CU_ASSERT_EQUAL(err.line, 3);
	CU_ASSERT(strstr(err.text, "byte-level") != NULL);
	/* a vocab.json that is cut: a JSON error with its line */
	write_file(vp, b.vocab_raw, b.vocab_raw_len / 2);
	memset(&err, 0, sizeof err);
	CU_ASSERT_EQUAL(bpe_load(vp, mp, 1, 1, &c, &err), TRAIN_EPARSE);
	CU_ASSERT(strstr(err.file, "vocab.json") != NULL && err.line >= 1);
	/* missing file */
	memset(&err, 0, sizeof err);
	CU_ASSERT(bpe_load("/nonexistent/vocab.json", mp, 1, 1, &c, &err) < 0);
	CU_ASSERT(strstr(err.file, "/nonexistent/vocab.json") != NULL);
	bpe_free(&b);
}

static const test_case cases[] = {
	{ "merges and ids against the Python fixture", test_fixture },
	{ "merges worked out by hand, ties, vocab_size", test_by_hand },
	{ "encode then decode gives back any bytes", test_round_trip },
	{ "vocab.json and merges.txt: written, read, refused at file:line", test_files },
	{ NULL, NULL },
};

int main(void)
{
	return test_main("bpe", cases);
}
