/*
 * plugins/featurizers/featurizers.c - the "featurizers" plugin (issue 6):
 * Rasa's sparse featurizers over the <train/features.h> value.
 *
 *   CountVectorsFeaturizer      features -> features   (+ a sparse block)
 *   RegexFeaturizer             features, nlu -> features (train)
 *                               features -> features       (process)
 *   LexicalSyntacticFeaturizer  features -> features
 *
 * Each learns in train what Rasa's component learns (a vocabulary, the
 * patterns of the NLU data, the feature values seen), persists it in a
 * small versioned text file, and adds one sparse block to every message
 * of its input, in train and in process alike.  The block is named by
 * `alias`, else by the class name, with "_2", "_3", ... appended when a
 * block of that name is already there (Rasa's default pipeline has two
 * CountVectorsFeaturizers); train and predict graphs run the featurizers
 * in the same order, so the names agree.  A featurizer that learned
 * nothing (no patterns, an empty vocabulary) adds no block, as Rasa adds
 * no features, and says so in the log.
 *
 * CountVectorsFeaturizer does what Rasa does with scikit-learn's
 * CountVectorizer, for the text attribute (intent labels are left to the
 * classifier, which has them, with their tokens, in the features value):
 *  - each token (its lemma when `use_lemma` and the tokenizer gave one)
 *    has \b[0-9]+\b replaced by __NUMBER__ and is lower-cased
 *    (`lowercase`); in training, OOV_words become OOV_token; in
 *    prediction, a token that is not a vocabulary entry becomes OOV_token
 *    when that is one (word analyzer only);
 *  - a message's document is its tokens joined by spaces; the analyzer
 *    (`word`: \b\w+\b words, stop words removed, n-grams joined by a space;
 *    `char`: character n-grams of the text with white space runs of two or
 *    more made one space; `char_wb`: n-grams of each word padded with a
 *    space, a word shorter than n counted once) gives its terms, min_ngram
 *    to max_ngram, as scikit-learn's analyzers do;
 *  - the vocabulary is every term of the training documents within the
 *    document-frequency bounds (min_df, max_df: an integer is a count, a
 *    float a share of the documents), cut to the max_features terms of
 *    highest total count (ties broken as numpy's quicksort argsort, which
 *    scikit-learn calls, breaks them), numbered in sorted order;
 *  - a token's row counts the terms of the token alone, the sentence row
 *    those of the whole document.
 * strip_accents and stop_words: english are refused (not implemented);
 * use_shared_vocab changes nothing here (only text is featurized);
 * additional_vocabulary_size is ignored with a warning, as in Rasa 3.
 *
 * Finetuning (train_ctx_finetuning, on a component made by load) does
 * what Rasa does: CountVectorsFeaturizer appends the new terms of the data
 * to its vocabulary (so known columns keep their numbers), RegexFeaturizer
 * replaces patterns of known names and appends new ones, and
 * LexicalSyntacticFeaturizer learns afresh (as Rasa 3's does).
 *
 * RegexFeaturizer: the patterns are the NLU data's regexes (one per
 * example line, named by their list) then, per lookup table, one
 * alternation of its escaped elements, each within \b...\b when
 * use_word_boundaries (Rasa's lookup regex).  Lookup tables of the same
 * name arrive merged by the reader, so they make one pattern where Rasa
 * makes one per `lookup:` item.  Matching is Python-`re` (pyre.h,
 * IGNORECASE unless case_sensitive) over the message text; a token gets
 * 1 for every pattern with a match overlapping it, the sentence row 1 for
 * every pattern that marked a token.
 *
 * LexicalSyntacticFeaturizer: Rasa 3's window features: `features` is a
 * list of feature-name lists, one per window position (the middle one is
 * the token, earlier ones the tokens before it); each (position, name,
 * value) seen in training is one column, ordered by position, name and
 * value (Python's sorted order).  Values are Python's str of low
 * (str.islower), upper, title, digit (str.isdigit), BOS, EOS ("True" or
 * "False"), prefix5/2, suffix5/3/2/1 (code points), pos and pos2 (the
 * token's tag, "None" without one).  Only token rows; no sentence row.
 *
 * Threads: no global mutable state; every call works on its own instance.
 */
#include <train/features.h>
#include <train/plugin.h>
#include <train/rasa.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/pyre.h"
#include "../common/strmap.h"
#include "../common/text.h"

enum kind { K_COUNT, K_REGEX, K_LEXICAL };
enum analyzer { A_WORD, A_CHAR, A_CHAR_WB };

/* A growing array of strings (owned). */
typedef struct strv {
	char **v;
	size_t n, cap;
} strv;

typedef struct pattern {
	char *name, *text;
	pyre *re;
} pattern;

typedef struct featurizer {
	enum kind kind;
	char *alias;              /* NULL: the class name */
	bool trained;
	/* CountVectorsFeaturizer */
	enum analyzer analyzer;
	int min_n, max_n;
	bool lowercase, use_lemma;
	double min_df, max_df;    /* as given */
	bool min_df_int, max_df_int;
	int64_t max_features;     /* -1: no limit */
	char *oov_token;          /* NULL: none (lower-cased when lowercase) */
	strmap oov_words, stop_words;
	strv terms;               /* the vocabulary, in column order */
	strmap vocab;             /* term -> column */
	bool sublinear_tf, use_idf, l2_norm;  /* weighting (off: Rasa's raw counts) */
	float *idf;               /* (terms.n) with use_idf, else NULL */
	/* RegexFeaturizer */
	bool case_sensitive, use_lookups, use_regexes, word_boundaries;
	pattern *pats;
	size_t n_pats;
	/* LexicalSyntacticFeaturizer */
	strv *lsf_config;         /* one list of names per window position */
	size_t window;
	strmap lsf_map;           /* "pos\x1fname\x1fvalue" -> column */
	size_t lsf_dim;
	strv lsf_keys;            /* the keys in column order (persisted) */
} featurizer;

#define FEATURES_IN "features"
#define SEP '\x1f'

/* ---- small helpers ------------------------------------------------------- */

static int sv_add(strv *s, const char *p, size_t len)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char **v = realloc(s->v, cap * sizeof *v);
		if (!v)
			return TRAIN_ENOMEM;
		s->v = v;
		s->cap = cap;
	}
	char *c = malloc(len + 1);
	if (!c)
		return TRAIN_ENOMEM;
	memcpy(c, p, len);
	c[len] = '\0';
	s->v[s->n++] = c;
	return TRAIN_OK;
}

static void sv_free(strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof *s);
}

/* A growing byte buffer; failure is sticky. */
typedef struct buf {
	char *p;
	size_t len, cap;
	int fail;
} buf;

static void b_add(buf *b, const void *p, size_t n)
{
	if (b->fail)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *q = realloc(b->p, cap);
		if (!q) {
			b->fail = 1;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}
static void b_str(buf *b, const char *s) { b_add(b, s, strlen(s)); }

/* One line of a persisted file: \\, \n, \r and \t escaped. */
static void b_escaped(buf *b, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		const char *e = c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t" : NULL;
		if (e)
			b_str(b, e);
		else
			b_add(b, &c, 1);
	}
}

/* Undo b_escaped in place over s[0..n); returns the new length, (size_t)-1 if malformed. */
static size_t unescape(char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\') {
			s[o++] = s[i];
			continue;
		}
		if (++i >= n)
			return (size_t)-1;
		char c = s[i];
		s[o++] = c == '\\' ? '\\' : c == 'n' ? '\n' : c == 'r' ? '\r' : c == 't' ? '\t' : 0;
		if (!s[o - 1])
			return (size_t)-1;
	}
	return o;
}

static void feat_destroy(void *self)
{
	featurizer *f = self;
	if (!f)
		return;
	free(f->alias);
	free(f->oov_token);
	strmap_free(&f->oov_words);
	strmap_free(&f->stop_words);
	sv_free(&f->terms);
	free(f->idf);
	strmap_free(&f->vocab);
	for (size_t i = 0; i < f->n_pats; i++) {
		free(f->pats[i].name);
		free(f->pats[i].text);
		pyre_free(f->pats[i].re);
	}
	free(f->pats);
	for (size_t i = 0; i < f->window; i++)
		sv_free(&f->lsf_config[i]);
	free(f->lsf_config);
	strmap_free(&f->lsf_map);
	sv_free(&f->lsf_keys);
	free(f);
}

/* Sparse rows under construction: (row, column, value) triples. */
typedef struct entry {
	uint32_t row, col;
	float val;
} entry;

typedef struct entries {
	entry *v;
	size_t n, cap;
} entries;

static int en_add(entries *e, uint32_t row, uint32_t col, float val)
{
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 64;
		entry *v = realloc(e->v, cap * sizeof *v);
		if (!v)
			return TRAIN_ENOMEM;
		e->v = v;
		e->cap = cap;
	}
	e->v[e->n++] = (entry){ row, col, val };
	return TRAIN_OK;
}

static int cmp_entry(const void *a, const void *b)
{
	const entry *x = a, *y = b;
	if (x->row != y->row)
		return x->row < y->row ? -1 : 1;
	return x->col < y->col ? -1 : x->col > y->col;
}

/* Sort, add up duplicates, and set message m's matrix of block b. */
static int en_commit(entries *e, train_features *fs, size_t b, size_t m)
{
	uint32_t rows = fs->messages[m].features[b].rows;
	if (e->n)
		qsort(e->v, e->n, sizeof *e->v, cmp_entry);
	size_t k = 0;
	for (size_t i = 0; i < e->n; i++) {
		if (k && e->v[k - 1].row == e->v[i].row && e->v[k - 1].col == e->v[i].col)
			e->v[k - 1].val += e->v[i].val;
		else
			e->v[k++] = e->v[i];
	}
	uint32_t *ip = calloc((size_t)rows + 1, sizeof *ip);
	uint32_t *ix = malloc((k ? k : 1) * sizeof *ix);
	float *vs = malloc((k ? k : 1) * sizeof *vs);
	int rc = TRAIN_OK;
	if (!ip || !ix || !vs) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < k; i++) {
		ip[e->v[i].row + 1]++;
		ix[i] = e->v[i].col;
		vs[i] = e->v[i].val;
	}
	for (uint32_t r = 0; r < rows; r++)
		ip[r + 1] += ip[r];
	rc = train_features_set_sparse(fs, b, m, ip, ix, vs);
out:
	free(ip);
	free(ix);
	free(vs);
	e->n = 0;
	return rc;
}

/* Add this featurizer's block: alias or class name, made unique. */
static int add_block(const featurizer *f, train_features *fs, const char *cls, uint32_t dim, uint32_t flags,
                     size_t *index)
{
	const char *base = f->alias ? f->alias : cls;
	char name[512];
	snprintf(name, sizeof name, "%s", base);
	for (int k = 2; train_features_find_block(fs, name, NULL) == TRAIN_OK; k++)
		snprintf(name, sizeof name, "%.480s_%d", base, k);
	return train_features_add_block(fs, name, TRAIN_FEAT_SPARSE, dim, flags, index);
}

static int decode_input(const train_values *in, train_features **fs, train_ctx *ctx)
{
	const train_value *v = train_values_get(in, FEATURES_IN);
	train_error err = { 0 };
	*fs = NULL;
	if (!v || strcmp(train_value_type(v), TRAIN_FEATURES_TYPE) != 0)
		return train_fail(ctx, "input 'features' must be messages with tokens (%s, from a "
		                  "tokenizer), not %s", TRAIN_FEATURES_TYPE, v ? train_value_type(v) : "nothing");
	int rc = train_features_from_value(v, fs, &err);
	if (rc)
		return rc == TRAIN_ENOMEM ? rc : train_fail(ctx, "input 'features': %s", err.text);
	return TRAIN_OK;
}

static int put_output(train_features *fs, train_values *out, train_ctx *ctx)
{
	train_value *v = NULL;
	train_error err = { 0 };
	int rc = train_features_to_value(fs, &v, &err);
	if (rc)
		return rc == TRAIN_ENOMEM ? rc : train_fail(ctx, "%s", err.text);
	return train_values_put_take(out, "features", v);
}

/* Lines of a persisted file: the first must be `header`; the rest (unescaped) go to `lines`. */
static int read_lines(const train_resource *res, const char *name, const char *header, strv *lines,
                      train_ctx *ctx)
{
	void *data = NULL;
	size_t size = 0;
	int rc = train_resource_read(res, name, &data, &size);
	if (rc)
		return train_fail(ctx, "%s: %s", name, train_strerror(rc));
	char *s = data, *end = s + size;
	size_t hl = strlen(header), line = 1;
	if (size < hl + 1 || memcmp(s, header, hl) || s[hl] != '\n' || end[-1] != '\n' || memchr(s, 0, size)) {
		rc = train_fail(ctx, "%s: not a %s file (or cut short)", name, header);
		goto out;
	}
	for (s += hl + 1; s < end && !rc; line++) {
		char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t n = unescape(s, (size_t)(nl - s));
		if (n == (size_t)-1)
			rc = train_fail(ctx, "%s:%zu: a bad escape", name, line + 1);
		else
			rc = sv_add(lines, s, n);
		s = nl + 1;
	}
out:
	free(data);
	return rc;
}

/* ---- CountVectorsFeaturizer --------------------------------------------------- */

static const train_param count_params[] = {
	{ "analyzer", TRAIN_PARAM_STRING, "word", "word, char or char_wb" },
	{ "min_ngram", TRAIN_PARAM_INT, "1", "the shortest n-grams" },
	{ "max_ngram", TRAIN_PARAM_INT, "1", "the longest n-grams" },
	{ "min_df", TRAIN_PARAM_ANY, "1", "fewest documents of a term: a count, or a share (float)" },
	{ "max_df", TRAIN_PARAM_ANY, "1.0", "most documents of a term: a count, or a share (float)" },
	{ "max_features", TRAIN_PARAM_ANY, "~", "keep only this many terms (the most frequent)" },
	{ "lowercase", TRAIN_PARAM_BOOL, "true", "lower-case tokens and text" },
	{ "OOV_token", TRAIN_PARAM_STRING, "~", "stands for words that are not in the vocabulary" },
	{ "OOV_words", TRAIN_PARAM_ANY, "[]", "words that become OOV_token in training" },
	{ "use_lemma", TRAIN_PARAM_BOOL, "true", "count lemmas where the tokenizer gives them" },
	{ "strip_accents", TRAIN_PARAM_ANY, "~", "not supported: only null" },
	{ "stop_words", TRAIN_PARAM_ANY, "~", "a list of words to leave out (word analyzer)" },
	{ "use_shared_vocab", TRAIN_PARAM_BOOL, "false", "accepted; only text is featurized here" },
	{ "additional_vocabulary_size", TRAIN_PARAM_ANY, "~", "deprecated in Rasa 3; ignored" },
	{ "alias", TRAIN_PARAM_STRING, "~", "the feature block's name" },
	/* libtrain's own keys (Rasa has none of them; their defaults give Rasa's
	 * raw counts): scikit-learn TfidfVectorizer's weighting */
	{ "sublinear_tf", TRAIN_PARAM_BOOL, "false", "a term's count c becomes 1 + ln c (libtrain)" },
	{ "use_idf", TRAIN_PARAM_BOOL, "false",
	  "times the inverse document frequency ln((1 + n) / (1 + df)) + 1 (libtrain)" },
	{ "norm", TRAIN_PARAM_STRING, "~", "null, or l2: every row scaled to unit length (libtrain)" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

/* Terms of one document, as offsets into a scratch buffer. */
typedef struct terms {
	buf text;
	size_t *off, *len;
	size_t n, cap;
} terms;

static int t_add(terms *t, const char *p, size_t n)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 64;
		size_t *o = realloc(t->off, cap * sizeof *o);
		if (!o)
			return TRAIN_ENOMEM;
		t->off = o;
		size_t *l = realloc(t->len, cap * sizeof *l);
		if (!l)
			return TRAIN_ENOMEM;
		t->len = l;
		t->cap = cap;
	}
	t->off[t->n] = t->text.len;
	t->len[t->n++] = n;
	b_add(&t->text, p, n);
	return t->text.fail ? TRAIN_ENOMEM : TRAIN_OK;
}

static void t_reset(terms *t)
{
	t->n = 0;
	t->text.len = 0;
}

static void t_free(terms *t)
{
	free(t->text.p);
	free(t->off);
	free(t->len);
	memset(t, 0, sizeof *t);
}

/* UTF-8 of code points cp[0..n) appended to b. */
static void b_cps(buf *b, const uint32_t *cp, size_t n)
{
	char u[4];
	for (size_t i = 0; i < n; i++)
		b_add(b, u, text_put(u, cp[i]));
}

/* Character n-grams of cp[0..n) from min_n to max_n (scikit-learn's _char_ngrams). */
static int char_ngrams(const featurizer *f, const uint32_t *cp, size_t n, terms *out, buf *tmp)
{
	int min_n = f->min_n;
	if (min_n == 1) {
		for (size_t i = 0; i < n; i++) {
			tmp->len = 0;
			b_cps(tmp, cp + i, 1);
			if (tmp->fail || t_add(out, tmp->p, tmp->len))
				return TRAIN_ENOMEM;
		}
		min_n = 2;
	}
	for (size_t k = (size_t)min_n; k <= (size_t)f->max_n && k <= n; k++)
		for (size_t i = 0; i + k <= n; i++) {
			tmp->len = 0;
			b_cps(tmp, cp + i, k);
			if (tmp->fail || t_add(out, tmp->p, tmp->len))
				return TRAIN_ENOMEM;
		}
	return TRAIN_OK;
}

/* scikit-learn's _char_wb_ngrams: each word padded with spaces. */
static int char_wb_ngrams(const featurizer *f, const uint32_t *cp, size_t n, terms *out, buf *tmp)
{
	uint32_t *w = malloc((n + 2) * sizeof *w);
	if (!w)
		return TRAIN_ENOMEM;
	int rc = TRAIN_OK;
	for (size_t i = 0; i < n && !rc;) {
		if (text_is_space(cp[i])) {
			i++;
			continue;
		}
		size_t j = i;
		while (j < n && !text_is_space(cp[j]))
			j++;
		size_t wl = j - i + 2;
		w[0] = ' ';
		memcpy(w + 1, cp + i, (j - i) * sizeof *w);
		w[wl - 1] = ' ';
		for (size_t k = (size_t)f->min_n; k <= (size_t)f->max_n && !rc; k++) {
			size_t off = 0;
			tmp->len = 0;
			b_cps(tmp, w, k < wl ? k : wl);
			rc = tmp->fail ? TRAIN_ENOMEM : t_add(out, tmp->p, tmp->len);
			while (!rc && off + k < wl) {
				off++;
				tmp->len = 0;
				b_cps(tmp, w + off, k);
				rc = tmp->fail ? TRAIN_ENOMEM : t_add(out, tmp->p, tmp->len);
			}
			if (off == 0)
				break; /* a word shorter than k counts once */
		}
		i = j;
	}
	free(w);
	return rc;
}

/* The analyzer: terms of one document (already joined tokens). */
static int analyze(const featurizer *f, const char *doc, size_t len, terms *out, buf *tmp)
{
	size_t dl = len;
	char *low = f->lowercase ? text_lower(doc, len, &dl) : NULL;
	if (f->lowercase && !low)
		return TRAIN_ENOMEM;
	const char *d = low ? low : doc;
	size_t n = 0;
	uint32_t *cp = text_decode(d, dl, &n, NULL);
	int rc = TRAIN_OK;
	if (!cp) {
		free(low);
		return TRAIN_ENOMEM;
	}
	t_reset(out);
	if (f->analyzer == A_WORD) {
		/* \b\w+\b words, stop words out, then n-grams joined by spaces */
		size_t (*wd)[2] = malloc((n + 1) * sizeof *wd);
		size_t nw = 0;
		if (!wd) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < n;) {
			if (!text_is_re_word(cp[i])) {
				i++;
				continue;
			}
			size_t j = i;
			while (j < n && text_is_re_word(cp[j]))
				j++;
			wd[nw][0] = i;
			wd[nw][1] = j;
			tmp->len = 0;
			b_cps(tmp, cp + i, j - i);
			if (tmp->fail) {
				rc = TRAIN_ENOMEM;
				break;
			}
			if (!strmap_get(&f->stop_words, tmp->p, tmp->len))
				nw++;
			i = j;
		}
		for (size_t k = (size_t)f->min_n; k <= (size_t)f->max_n && k <= nw && !rc; k++)
			for (size_t i = 0; i + k <= nw && !rc; i++) {
				tmp->len = 0;
				for (size_t j = 0; j < k; j++) {
					if (j)
						b_add(tmp, " ", 1);
					b_cps(tmp, cp + wd[i + j][0], wd[i + j][1] - wd[i + j][0]);
				}
				rc = tmp->fail ? TRAIN_ENOMEM : t_add(out, tmp->p, tmp->len);
			}
		free(wd);
		goto out;
	}
	/* char analyzers: runs of two or more white space characters become one space */
	size_t m = 0;
	for (size_t i = 0; i < n;) {
		if (text_is_space(cp[i]) && i + 1 < n && text_is_space(cp[i + 1])) {
			while (i < n && text_is_space(cp[i]))
				i++;
			cp[m++] = ' ';
		} else {
			cp[m++] = cp[i++];
		}
	}
	rc = f->analyzer == A_CHAR ? char_ngrams(f, cp, m, out, tmp) : char_wb_ngrams(f, cp, m, out, tmp);
out:
	free(cp);
	free(low);
	return rc;
}

/* Rasa's token processing: __NUMBER__ for \b[0-9]+\b, then lower-case. Malloc'd. */
static char *process_token(const featurizer *f, const char *tok)
{
	size_t n = 0, *offs = NULL;
	uint32_t *cp = text_decode(tok, strlen(tok), &n, &offs);
	buf b = { 0 };
	if (!cp) {
		free(offs);
		return NULL;
	}
	for (size_t i = 0; i < n;) {
		if (cp[i] >= '0' && cp[i] <= '9' && (i == 0 || !text_is_re_word(cp[i - 1]))) {
			size_t j = i;
			while (j < n && cp[j] >= '0' && cp[j] <= '9')
				j++;
			if (j == n || !text_is_re_word(cp[j])) {
				b_str(&b, "__NUMBER__");
				i = j;
				continue;
			}
			b_add(&b, tok + offs[i], offs[j] - offs[i]);
			i = j;
			continue;
		}
		b_add(&b, tok + offs[i], offs[i + 1] - offs[i]);
		i++;
	}
	b_add(&b, "", 0);
	free(cp);
	free(offs);
	if (b.fail) {
		free(b.p);
		return NULL;
	}
	if (!f->lowercase)
		return b.p;
	char *low = text_lower(b.p, b.len, NULL);
	free(b.p);
	return low;
}

/* The processed tokens of a message; `predict`: unknown tokens -> OOV_token. */
static int message_tokens(const featurizer *f, const train_feat_message *m, bool predict, strv *out)
{
	bool oov_known = predict && f->oov_token && f->analyzer == A_WORD &&
	                 strmap_get(&f->vocab, f->oov_token, strlen(f->oov_token));
	for (size_t i = 0; i < m->n_tokens; i++) {
		const train_feat_token *t = &m->tokens[i];
		char *p = process_token(f, f->use_lemma && t->lemma ? t->lemma : t->text);
		if (!p)
			return TRAIN_ENOMEM;
		const char *use = p;
		if (f->oov_token && f->analyzer == A_WORD) {
			/* Rasa: once the vocabulary has OOV_token, unknown tokens become it;
			 * before that (training), OOV_words do */
			if (oov_known) {
				if (!strmap_get(&f->vocab, p, strlen(p)))
					use = f->oov_token;
			} else if (strmap_get(&f->oov_words, p, strlen(p))) {
				use = f->oov_token;
			}
		}
		int rc = sv_add(out, use, strlen(use));
		free(p);
		if (rc)
			return rc;
	}
	return TRAIN_OK;
}

static char *join(const strv *s)
{
	buf b = { 0 };
	for (size_t i = 0; i < s->n; i++) {
		if (i)
			b_add(&b, " ", 1);
		b_str(&b, s->v[i]);
	}
	b_add(&b, "", 0);
	if (b.fail) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * numpy's argsort with kind='quicksort' (numpy/core/src/npysort, the
 * introsort of numpy up to 1.24: median of three, insertion sort below 16
 * elements, heapsort past 2 * log2(n) levels), so that max_features breaks
 * ties among equal counts exactly as scikit-learn on such a numpy does.
 */
static void np_aheapsort(const int64_t *v, size_t *tosort, ptrdiff_t n)
{
	size_t *a = tosort - 1, tmp;
	ptrdiff_t i, j, l;
	for (l = n >> 1; l > 0; --l) {
		tmp = a[l];
		for (i = l, j = l << 1; j <= n;) {
			if (j < n && v[a[j]] < v[a[j + 1]])
				j += 1;
			if (v[tmp] < v[a[j]]) {
				a[i] = a[j];
				i = j;
				j += j;
			} else {
				break;
			}
		}
		a[i] = tmp;
	}
	for (; n > 1;) {
		tmp = a[n];
		a[n] = a[1];
		n -= 1;
		for (i = 1, j = 2; j <= n;) {
			if (j < n && v[a[j]] < v[a[j + 1]])
				j++;
			if (v[tmp] < v[a[j]]) {
				a[i] = a[j];
				i = j;
				j += j;
			} else {
				break;
			}
		}
		a[i] = tmp;
	}
}

static void np_argsort(const int64_t *v, size_t *tosort, size_t num)
{
	enum { SMALL = 15, STACK = 128 };
	size_t *pl = tosort, *pr = tosort + num - 1, *stack[STACK], **sptr = stack, *pm, *pi, *pj, *pk, vi, t;
	int depth[STACK], *psdepth = depth, cdepth = 0;
	for (size_t u = num; u >>= 1;)
		cdepth++;
	cdepth *= 2;
	if (num < 2)
		return;
#define ISWAP(a, b) (t = (a), (a) = (b), (b) = t)
	for (;;) {
		if (cdepth < 0) {
			np_aheapsort(v, pl, pr - pl + 1);
			goto pop;
		}
		while (pr - pl > SMALL) {
			pm = pl + ((pr - pl) >> 1);
			if (v[*pm] < v[*pl])
				ISWAP(*pm, *pl);
			if (v[*pr] < v[*pm])
				ISWAP(*pr, *pm);
			if (v[*pm] < v[*pl])
				ISWAP(*pm, *pl);
			int64_t vp = v[*pm];
			pi = pl;
			pj = pr - 1;
			ISWAP(*pm, *pj);
			for (;;) {
				do
					++pi;
				while (v[*pi] < vp);
				do
					--pj;
				while (vp < v[*pj]);
				if (pi >= pj)
					break;
				ISWAP(*pi, *pj);
			}
			pk = pr - 1;
			ISWAP(*pi, *pk);
			if (pi - pl < pr - pi) {
				*sptr++ = pi + 1;
				*sptr++ = pr;
				pr = pi - 1;
			} else {
				*sptr++ = pl;
				*sptr++ = pi - 1;
				pl = pi + 1;
			}
			*psdepth++ = --cdepth;
		}
		for (pi = pl + 1; pi <= pr; ++pi) {
			vi = *pi;
			int64_t vv = v[vi];
			pj = pi;
			pk = pi - 1;
			while (pj > pl && vv < v[*pk])
				*pj-- = *pk--;
			*pj = vi;
		}
pop:
		if (sptr == stack)
			break;
		pr = *(--sptr);
		pl = *(--sptr);
		cdepth = *(--psdepth);
	}
#undef ISWAP
}

/* Learn the vocabulary from the documents (scikit-learn's fit). */
static int cv_fit(featurizer *f, char **docs, size_t n_docs, train_ctx *ctx)
{
	strmap seen = { 0 };        /* term -> index into st */
	struct stat_ { size_t df, tf, last; } *st = NULL;
	size_t cap = 0, n = 0;
	terms t = { 0 };
	buf tmp = { 0 };
	char **keep = NULL;
	size_t *order = NULL;
	int rc = TRAIN_OK;
	for (size_t d = 0; d < n_docs && !rc; d++) {
		if ((rc = analyze(f, docs[d], strlen(docs[d]), &t, &tmp)))
			break;
		for (size_t i = 0; i < t.n && !rc; i++) {
			int added;
			strmap_entry *e = strmap_put(&seen, t.text.p + t.off[i], t.len[i], n, &added);
			if (!e) {
				rc = TRAIN_ENOMEM;
				break;
			}
			if (added) {
				if (n == cap) {
					size_t c = cap ? cap * 2 : 1024;
					struct stat_ *ns = realloc(st, c * sizeof *ns);
					if (!ns) {
						rc = TRAIN_ENOMEM;
						break;
					}
					st = ns;
					cap = c;
				}
				st[n].df = st[n].tf = 0;
				st[n].last = (size_t)-1;
				n++;
			}
			size_t k = e->value;
			st[k].tf++;
			if (st[k].last != d) {
				st[k].df++;
				st[k].last = d;
			}
		}
	}
	if (rc)
		goto out;
	if (!n) {
		train_log(ctx, TRAIN_LOG_WARN, "empty vocabulary (no terms in the training data, or only "
		          "stop words): no features from this featurizer");
		goto out;
	}
	double high = f->max_df_int ? f->max_df : f->max_df * (double)n_docs;
	double low = f->min_df_int ? f->min_df : f->min_df * (double)n_docs;
	if (high < low) {
		/* scikit-learn refuses; Rasa keeps an untrained vectorizer and warns */
		train_log(ctx, TRAIN_LOG_WARN, "max_df corresponds to fewer documents than min_df: no "
		          "features from this featurizer");
		goto out;
	}
	/* the surviving terms, sorted */
	keep = malloc(n * sizeof *keep);
	if (!keep) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	size_t nk = 0;
	for (size_t i = 0; i < seen.cap; i++) {
		strmap_entry *e = &seen.slots[i];
		if (e->key && (double)st[e->value].df <= high && (double)st[e->value].df >= low)
			keep[nk++] = e->key;
	}
	qsort(keep, nk, sizeof *keep, cmp_cstr);
	if (f->max_features >= 0 && nk > (size_t)f->max_features) {
		/* the max_features most frequent (stable: ties in alphabetical order) */
		order = malloc(nk * sizeof *order);
		if (!order) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < nk; i++)
			order[i] = i;
		int64_t *neg = malloc(nk * sizeof *neg);
		if (!neg) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < nk; i++)
			neg[i] = -(int64_t)st[strmap_get(&seen, keep[i], strlen(keep[i]))->value].tf;
		np_argsort(neg, order, nk);
		free(neg);
		/* keep the first max_features, in alphabetical order */
		char *flag = calloc(nk, 1);
		if (!flag) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < (size_t)f->max_features; i++)
			flag[order[i]] = 1;
		size_t k = 0;
		for (size_t i = 0; i < nk; i++)
			if (flag[i])
				keep[k++] = keep[i];
		nk = k;
		free(flag);
	}
	if (!nk) {
		train_log(ctx, TRAIN_LOG_WARN, "no terms are left after min_df, max_df and max_features: "
		          "no features from this featurizer");
		goto out;
	}
	for (size_t i = 0; i < nk && !rc; i++) {
		int added;
		if ((rc = sv_add(&f->terms, keep[i], strlen(keep[i]))))
			break;
		if (!strmap_put(&f->vocab, keep[i], strlen(keep[i]), i, &added))
			rc = TRAIN_ENOMEM;
	}
out:
	strmap_free(&seen);
	free(st);
	free(keep);
	free(order);
	t_free(&t);
	free(tmp.p);
	return rc;
}

/*
 * The weighting of one row's entries e->v[start..n) (each a count of 1):
 * as scikit-learn's TfidfTransformer, the counts summed per column, then
 * 1 + ln(count) (sublinear_tf), times idf (use_idf), then the row divided
 * by its Euclidean length (norm: l2).  Nothing to do at the defaults.
 */
static void cv_weight(const featurizer *f, entries *e, size_t start)
{
	if (!f->sublinear_tf && !f->idf && !f->l2_norm)
		return;
	entry *v = e->v + start;
	size_t n = e->n - start, k = 0;
	if (n > 1)
		qsort(v, n, sizeof *v, cmp_entry);
	for (size_t i = 0; i < n; i++) {
		if (k && v[k - 1].col == v[i].col)
			v[k - 1].val += v[i].val;
		else
			v[k++] = v[i];
	}
	e->n = start + k;
	double ss = 0;
	for (size_t i = 0; i < k; i++) {
		double x = v[i].val;
		if (f->sublinear_tf)
			x = 1.0 + log(x);
		if (f->idf)
			x *= f->idf[v[i].col];
		v[i].val = (float)x;
		ss += x * x;
	}
	if (f->l2_norm && ss > 0) {
		double inv = 1.0 / sqrt(ss);
		for (size_t i = 0; i < k; i++)
			v[i].val = (float)(v[i].val * inv);
	}
}

/* Count the vocabulary terms of one document into row `row`. */
static int cv_row(const featurizer *f, const char *doc, uint32_t row, entries *e, terms *t, buf *tmp)
{
	size_t start = e->n;
	int rc = analyze(f, doc, strlen(doc), t, tmp);
	for (size_t i = 0; i < t->n && !rc; i++) {
		strmap_entry *v = strmap_get(&f->vocab, t->text.p + t->off[i], t->len[i]);
		if (v)
			rc = en_add(e, row, (uint32_t)v->value, 1.0f);
	}
	if (!rc)
		cv_weight(f, e, start);
	return rc;
}

/* use_idf: idf[j] = ln((1 + n) / (1 + df_j)) + 1 over the n documents
 * (scikit-learn's smooth_idf), for the whole vocabulary (after a fit or a
 * finetuning's extension alike). */
static int cv_fit_idf(featurizer *f, char **docs, size_t n_docs)
{
	free(f->idf);
	f->idf = NULL;
	if (!f->use_idf || !f->terms.n)
		return TRAIN_OK;
	size_t *df = calloc(f->terms.n, sizeof *df), *last = malloc(f->terms.n * sizeof *last);
	terms t = { 0 };
	buf tmp = { 0 };
	int rc = df && last ? TRAIN_OK : TRAIN_ENOMEM;
	for (size_t j = 0; !rc && j < f->terms.n; j++)
		last[j] = (size_t)-1;
	for (size_t d = 0; d < n_docs && !rc; d++) {
		rc = analyze(f, docs[d], strlen(docs[d]), &t, &tmp);
		for (size_t i = 0; i < t.n && !rc; i++) {
			strmap_entry *v = strmap_get(&f->vocab, t.text.p + t.off[i], t.len[i]);
			if (v && last[v->value] != d) {
				last[v->value] = d;
				df[v->value]++;
			}
		}
	}
	if (!rc && !(f->idf = malloc(f->terms.n * sizeof *f->idf)))
		rc = TRAIN_ENOMEM;
	for (size_t j = 0; !rc && j < f->terms.n; j++)
		f->idf[j] = (float)(log((1.0 + (double)n_docs) / (1.0 + (double)df[j])) + 1.0);
	free(df);
	free(last);
	t_free(&t);
	free(tmp.p);
	return rc;
}

static int cv_featurize(const featurizer *f, train_features *fs, bool predict, train_ctx *ctx)
{
	if (!f->terms.n) {
		train_log(ctx, TRAIN_LOG_INFO, "no vocabulary: no features added");
		return TRAIN_OK;
	}
	size_t b;
	int rc = add_block(f, fs, "CountVectorsFeaturizer", (uint32_t)f->terms.n,
	                   TRAIN_FEAT_SEQUENCE | TRAIN_FEAT_SENTENCE, &b);
	entries e = { 0 };
	terms t = { 0 };
	buf tmp = { 0 };
	strv toks = { 0 };
	for (size_t m = 0; m < fs->n_messages && !rc; m++) {
		const train_feat_message *msg = &fs->messages[m];
		if (!msg->n_tokens)
			continue;
		if ((rc = message_tokens(f, msg, predict, &toks)))
			break;
		for (size_t i = 0; i < toks.n && !rc; i++)
			rc = cv_row(f, toks.v[i], (uint32_t)i, &e, &t, &tmp);
		char *doc = rc ? NULL : join(&toks);
		if (!rc && !doc)
			rc = TRAIN_ENOMEM;
		if (!rc)
			rc = cv_row(f, doc, (uint32_t)toks.n, &e, &t, &tmp);
		free(doc);
		if (!rc)
			rc = en_commit(&e, fs, b, m);
		sv_free(&toks);
	}
	sv_free(&toks);
	free(e.v);
	t_free(&t);
	free(tmp.p);
	return rc;
}

static int df_value(const train_config *c, const char *key, double *v, bool *is_int, train_ctx *ctx)
{
	const train_config *n = train_config_get(c, key);
	if (train_config_kind(n) == TRAIN_CFG_INT) {
		*is_int = true;
		*v = (double)train_config_as_int(n);
		if (*v < 0)
			return train_fail(ctx, "%s must not be negative", key);
		return TRAIN_OK;
	}
	if (train_config_kind(n) == TRAIN_CFG_FLOAT) {
		*is_int = false;
		*v = train_config_as_float(n);
		if (!(*v >= 0.0 && *v <= 1.0))
			return train_fail(ctx, "%s as a float is a share of the documents, in [0.0, 1.0]", key);
		return TRAIN_OK;
	}
	return train_fail(ctx, "%s must be an integer (documents) or a float (a share of them)", key);
}

/* A list of strings from the config into a set, lower-cased when asked. */
static int string_set(const train_config *list, bool lower, strmap *out, const char *key, train_ctx *ctx)
{
	for (size_t i = 0; i < train_config_len(list); i++) {
		const char *s = train_config_as_string(train_config_at(list, i));
		if (!s)
			return train_fail(ctx, "%s: item %zu must be a string", key, i + 1);
		char *l = lower ? text_lower(s, strlen(s), NULL) : strdup(s);
		if (!l)
			return TRAIN_ENOMEM;
		int added;
		strmap_entry *e = strmap_put(out, l, strlen(l), 0, &added);
		free(l);
		if (!e)
			return TRAIN_ENOMEM;
	}
	return TRAIN_OK;
}

static int cv_configure(featurizer *f, const train_config *c, train_ctx *ctx)
{
	const char *an = train_config_string(c, "analyzer");
	if (!strcmp(an, "word"))
		f->analyzer = A_WORD;
	else if (!strcmp(an, "char"))
		f->analyzer = A_CHAR;
	else if (!strcmp(an, "char_wb"))
		f->analyzer = A_CHAR_WB;
	else
		return train_fail(ctx, "analyzer must be word, char or char_wb, not '%s'", an);
	int64_t mn = train_config_int(c, "min_ngram"), mx = train_config_int(c, "max_ngram");
	if (mn < 1 || mx < mn || mx > 64)
		return train_fail(ctx, "min_ngram and max_ngram need 1 <= min_ngram <= max_ngram <= 64, not "
		                  "%lld and %lld", (long long)mn, (long long)mx);
	f->min_n = (int)mn;
	f->max_n = (int)mx;
	int rc;
	if ((rc = df_value(c, "min_df", &f->min_df, &f->min_df_int, ctx)) ||
	    (rc = df_value(c, "max_df", &f->max_df, &f->max_df_int, ctx)))
		return rc;
	const train_config *mf = train_config_get(c, "max_features");
	f->max_features = -1;
	if (train_config_kind(mf) == TRAIN_CFG_INT) {
		if (train_config_as_int(mf) < 1)
			return train_fail(ctx, "max_features must be at least 1 (or null for no limit)");
		f->max_features = train_config_as_int(mf);
	} else if (train_config_kind(mf) != TRAIN_CFG_NULL) {
		return train_fail(ctx, "max_features must be an integer or null");
	}
	f->lowercase = train_config_bool(c, "lowercase");
	f->use_lemma = train_config_bool(c, "use_lemma");
	if (train_config_kind(train_config_get(c, "strip_accents")) != TRAIN_CFG_NULL)
		return train_fail(ctx, "strip_accents is not supported; leave it null");
	const train_config *sw = train_config_get(c, "stop_words");
	if (train_config_kind(sw) == TRAIN_CFG_LIST) {
		if ((rc = string_set(sw, false, &f->stop_words, "stop_words", ctx)))
			return rc;
	} else if (train_config_kind(sw) != TRAIN_CFG_NULL) {
		return train_fail(ctx, "stop_words must be a list of words (a built-in list such as "
		                  "'english' is not supported)");
	}
	const char *oov = train_config_string(c, "OOV_token");
	const train_config *ow = train_config_get(c, "OOV_words");
	if (train_config_kind(ow) == TRAIN_CFG_STRING) {
		/* Rasa accepts one word as a string */
		const char *s = train_config_as_string(ow);
		char *l = f->lowercase ? text_lower(s, strlen(s), NULL) : strdup(s);
		int added;
		if (!l || !strmap_put(&f->oov_words, l, strlen(l), 0, &added)) {
			free(l);
			return TRAIN_ENOMEM;
		}
		free(l);
	} else if (train_config_kind(ow) == TRAIN_CFG_LIST) {
		if ((rc = string_set(ow, f->lowercase, &f->oov_words, "OOV_words", ctx)))
			return rc;
	} else if (train_config_kind(ow) != TRAIN_CFG_NULL) {
		return train_fail(ctx, "OOV_words must be a list of words");
	}
	if (f->oov_words.len && !oov) {
		train_log(ctx, TRAIN_LOG_ERROR, "OOV_words were given but OOV_token was not: OOV_words are "
		          "ignored");
		strmap_free(&f->oov_words);
	}
	if (oov && !(f->oov_token = f->lowercase ? text_lower(oov, strlen(oov), NULL) : strdup(oov)))
		return TRAIN_ENOMEM;
	if (f->analyzer != A_WORD) {
		if (oov)
			train_log(ctx, TRAIN_LOG_WARN, "analyzer is set to character: OOV_token is ignored");
		if (f->stop_words.len)
			train_log(ctx, TRAIN_LOG_WARN, "analyzer is set to character: stop_words are ignored");
		strmap_free(&f->stop_words);
	}
	f->sublinear_tf = train_config_bool(c, "sublinear_tf");
	f->use_idf = train_config_bool(c, "use_idf");
	const char *norm = train_config_string(c, "norm");
	if (norm && strcmp(norm, "l2"))
		return train_fail(ctx, "norm must be null or l2, not '%s'", norm);
	f->l2_norm = norm != NULL;
	const train_config *avs = train_config_get(c, "additional_vocabulary_size");
	int set = 0;
	for (size_t i = 0; i < train_config_len(avs); i++)
		set |= train_config_kind(train_config_at(avs, i)) != TRAIN_CFG_NULL;
	if (set)
		train_log(ctx, TRAIN_LOG_WARN, "additional_vocabulary_size is deprecated and ignored (as in "
		          "Rasa 3)");
	return TRAIN_OK;
}

/* Finetuning: every new term of the documents goes after the known ones
 * (no document-frequency bounds, as Rasa's _fit_loaded_vectorizer; in
 * sorted order where Rasa takes a set's order). */
static int cv_extend(featurizer *f, char **docs, size_t n_docs)
{
	strmap fresh = { 0 };
	terms t = { 0 };
	buf tmp = { 0 };
	char **keys = NULL;
	int rc = TRAIN_OK;
	for (size_t d = 0; d < n_docs && !rc; d++) {
		rc = analyze(f, docs[d], strlen(docs[d]), &t, &tmp);
		for (size_t i = 0; i < t.n && !rc; i++) {
			const char *term = t.text.p + t.off[i];
			int added;
			if (!strmap_get(&f->vocab, term, t.len[i]) && !strmap_put(&fresh, term, t.len[i], 0, &added))
				rc = TRAIN_ENOMEM;
		}
	}
	if (!rc && fresh.len && !(keys = malloc(fresh.len * sizeof *keys)))
		rc = TRAIN_ENOMEM;
	size_t n = 0;
	for (size_t i = 0; !rc && i < fresh.cap; i++)
		if (fresh.slots[i].key)
			keys[n++] = fresh.slots[i].key;
	if (n)
		qsort(keys, n, sizeof *keys, cmp_cstr);
	for (size_t i = 0; i < n && !rc; i++) {
		int added;
		if (!(rc = sv_add(&f->terms, keys[i], strlen(keys[i]))) &&
		    !strmap_put(&f->vocab, keys[i], strlen(keys[i]), f->terms.n - 1, &added))
			rc = TRAIN_ENOMEM;
	}
	free(keys);
	strmap_free(&fresh);
	t_free(&t);
	free(tmp.p);
	return rc;
}

static int cv_train(featurizer *f, train_features *fs, train_ctx *ctx)
{
	char **docs = calloc(fs->n_messages ? fs->n_messages : 1, sizeof *docs);
	strv toks = { 0 };
	int rc = docs ? TRAIN_OK : TRAIN_ENOMEM;
	/* finetuning a loaded vocabulary extends it, as Rasa does; the tokens are
	 * then processed as in prediction (the vocabulary exists) */
	bool extend = train_ctx_finetuning(ctx) && f->trained && f->terms.n;
	if (!extend) {
		sv_free(&f->terms);
		strmap_free(&f->vocab);
	}
	for (size_t m = 0; m < fs->n_messages && !rc; m++) {
		if (!(rc = message_tokens(f, &fs->messages[m], extend, &toks)) && !(docs[m] = join(&toks)))
			rc = TRAIN_ENOMEM;
		sv_free(&toks);
	}
	if (!rc && f->oov_token && f->analyzer == A_WORD && !f->oov_words.len) {
		int found = 0, any = 0;
		for (size_t m = 0; m < fs->n_messages && !found; m++) {
			any |= docs[m][0] != '\0';
			found = strstr(docs[m], f->oov_token) != NULL;
		}
		if (any && !found)
			train_log(ctx, TRAIN_LOG_WARN, "the out of vocabulary token '%s' was configured, but "
			          "could not be found in any one of the NLU training examples: all unseen words "
			          "will be ignored during prediction", f->oov_token);
	}
	if (!rc)
		rc = extend ? cv_extend(f, docs, fs->n_messages) : cv_fit(f, docs, fs->n_messages, ctx);
	if (!rc)
		rc = cv_fit_idf(f, docs, fs->n_messages);
	for (size_t m = 0; docs && m < fs->n_messages; m++)
		free(docs[m]);
	free(docs);
	if (!rc)
		train_log(ctx, TRAIN_LOG_INFO, "%zu vocabulary items were created for text", f->terms.n);
	return rc;
}

#define CV_HEADER "train-count-vectors 1"
#define CV_IDF_HEADER "train-count-vectors-idf 1"

static int cv_persist(const featurizer *f, train_resource *res)
{
	buf b = { 0 };
	b_str(&b, CV_HEADER "\n");
	for (size_t i = 0; i < f->terms.n; i++) {
		b_escaped(&b, f->terms.v[i], strlen(f->terms.v[i]));
		b_add(&b, "\n", 1);
	}
	int rc = b.fail ? TRAIN_ENOMEM : train_resource_write(res, "vocabulary.txt", b.p, b.len);
	free(b.p);
	if (rc || !f->idf)
		return rc;
	/* use_idf: one weight a line, in column order (%.9g gives the float back) */
	buf w = { 0 };
	b_str(&w, CV_IDF_HEADER "\n");
	for (size_t i = 0; i < f->terms.n; i++) {
		char num[32];
		snprintf(num, sizeof num, "%.9g\n", (double)f->idf[i]);
		b_str(&w, num);
	}
	rc = w.fail ? TRAIN_ENOMEM : train_resource_write(res, "idf.txt", w.p, w.len);
	free(w.p);
	return rc;
}

static int cv_load(featurizer *f, const train_resource *res, train_ctx *ctx)
{
	int rc = read_lines(res, "vocabulary.txt", CV_HEADER, &f->terms, ctx);
	for (size_t i = 0; i < f->terms.n && !rc; i++) {
		int added;
		strmap_entry *e = strmap_put(&f->vocab, f->terms.v[i], strlen(f->terms.v[i]), i, &added);
		if (!e)
			rc = TRAIN_ENOMEM;
		else if (!added)
			rc = train_fail(ctx, "vocabulary.txt:%zu: '%s' is there twice", i + 2, f->terms.v[i]);
	}
	if (rc || !f->use_idf)
		return rc;
	strv lines = { 0 };
	if (!(rc = read_lines(res, "idf.txt", CV_IDF_HEADER, &lines, ctx)) && lines.n != f->terms.n)
		rc = train_fail(ctx, "idf.txt: %zu weights for %zu vocabulary items", lines.n, f->terms.n);
	if (!rc && !(f->idf = malloc((lines.n ? lines.n : 1) * sizeof *f->idf)))
		rc = TRAIN_ENOMEM;
	for (size_t i = 0; i < lines.n && !rc; i++) {
		char *end;
		double x = strtod(lines.v[i], &end);
		if (end == lines.v[i] || *end || !(x >= 1.0 && x < 1e6))
			rc = train_fail(ctx, "idf.txt:%zu: '%s' is not a weight (a number >= 1)", i + 2,
			                lines.v[i]);
		else
			f->idf[i] = (float)x;
	}
	sv_free(&lines);
	return rc;
}

/* ---- RegexFeaturizer ------------------------------------------------------------ */

static const train_param regex_params[] = {
	{ "case_sensitive", TRAIN_PARAM_BOOL, "true", "match with case" },
	{ "use_lookup_tables", TRAIN_PARAM_BOOL, "true", "features from the lookup tables" },
	{ "use_regexes", TRAIN_PARAM_BOOL, "true", "features from the regexes" },
	{ "use_word_boundaries", TRAIN_PARAM_BOOL, "true", "lookup elements only as whole words" },
	{ "number_additional_patterns", TRAIN_PARAM_ANY, "~", "deprecated in Rasa 3; ignored" },
	{ "alias", TRAIN_PARAM_STRING, "~", "the feature block's name" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

/* Python's re.escape (3.7+): these characters get a backslash. */
static void re_escape(buf *b, const char *s)
{
	for (; *s; s++) {
		if (strchr("()[]{}?*+-|^$\\.&~# \t\n\r\v\f", *s))
			b_add(b, "\\", 1);
		b_add(b, s, 1);
	}
}

static int add_pattern(featurizer *f, const char *name, const char *text, train_ctx *ctx)
{
	pattern *p = realloc(f->pats, (f->n_pats + 1) * sizeof *p);
	if (!p)
		return TRAIN_ENOMEM;
	f->pats = p;
	pattern *q = &p[f->n_pats];
	memset(q, 0, sizeof *q);
	char msg[256];
	int rc = pyre_compile(text, f->case_sensitive ? 0 : PYRE_IGNORECASE, &q->re, msg, sizeof msg);
	if (rc)
		return rc == PYRE_ENOMEM ? TRAIN_ENOMEM
		                         : train_fail(ctx, "pattern '%s' of '%s': %s", text, name, msg);
	if (!(q->name = strdup(name)) || !(q->text = strdup(text))) {
		free(q->name);
		free(q->text);
		pyre_free(q->re);
		return TRAIN_ENOMEM;
	}
	f->n_pats++;
	return TRAIN_OK;
}

static int rx_train_patterns(featurizer *f, const train_values *in, train_ctx *ctx)
{
	const train_value *v = train_values_get(in, "nlu");
	train_rasa_nlu *nlu = NULL;
	train_error err = { 0 };
	if (!v || strcmp(train_value_type(v), TRAIN_RASA_NLU_TYPE) != 0)
		return train_fail(ctx, "input 'nlu' must be NLU training data (%s), not %s",
		                  TRAIN_RASA_NLU_TYPE, v ? train_value_type(v) : "nothing");
	int rc = train_rasa_nlu_from_value(v, &nlu, &err);
	if (rc)
		return rc == TRAIN_ENOMEM ? rc : train_fail(ctx, "input 'nlu': %s", err.text);
	if (f->use_regexes)
		for (size_t i = 0; i < nlu->n_regexes && !rc; i++)
			for (size_t k = 0; k < nlu->regexes[i].items.n && !rc; k++)
				rc = add_pattern(f, nlu->regexes[i].name, nlu->regexes[i].items.v[k], ctx);
	if (f->use_lookups)
		for (size_t i = 0; i < nlu->n_lookups && !rc; i++) {
			const train_rasa_named_list *l = &nlu->lookups[i];
			buf b = { 0 };
			b_add(&b, "(", 1);
			for (size_t k = 0; k < l->items.n; k++) {
				if (k)
					b_str(&b, f->word_boundaries ? "\\b|\\b" : "|");
				else if (f->word_boundaries)
					b_str(&b, "\\b");
				re_escape(&b, l->items.v[k]);
			}
			b_str(&b, f->word_boundaries ? "\\b)" : ")");
			rc = b.fail ? TRAIN_ENOMEM : add_pattern(f, l->name, b.p, ctx);
			free(b.p);
		}
	train_rasa_nlu_free(nlu);
	return rc;
}

/* Finetuning (Rasa's _merge_new_patterns): a new pattern whose name is
 * known replaces the last known pattern of that name; the others are
 * appended, so the columns of the known patterns stay where they were. */
static int rx_merge_patterns(featurizer *f, const train_values *in, train_ctx *ctx)
{
	featurizer nf = { 0 };
	nf.case_sensitive = f->case_sensitive;
	nf.use_lookups = f->use_lookups;
	nf.use_regexes = f->use_regexes;
	nf.word_boundaries = f->word_boundaries;
	int rc = rx_train_patterns(&nf, in, ctx);
	size_t known = f->n_pats;
	for (size_t i = 0; i < nf.n_pats && !rc; i++) {
		size_t at = known;
		for (size_t k = 0; k < known; k++)
			if (!strcmp(f->pats[k].name, nf.pats[i].name))
				at = k;
		if (at < known) {
			free(f->pats[at].text);
			pyre_free(f->pats[at].re);
			f->pats[at].text = nf.pats[i].text;
			f->pats[at].re = nf.pats[i].re;
			free(nf.pats[i].name);
		} else {
			pattern *p = realloc(f->pats, (f->n_pats + 1) * sizeof *p);
			if (!p) {
				rc = TRAIN_ENOMEM;
				break;
			}
			f->pats = p;
			f->pats[f->n_pats++] = nf.pats[i];
		}
		memset(&nf.pats[i], 0, sizeof nf.pats[i]);
	}
	for (size_t i = 0; i < nf.n_pats; i++) {
		free(nf.pats[i].name);
		free(nf.pats[i].text);
		pyre_free(nf.pats[i].re);
	}
	free(nf.pats);
	return rc;
}

static int rx_featurize(const featurizer *f, train_features *fs, train_ctx *ctx)
{
	if (!f->n_pats) {
		train_log(ctx, TRAIN_LOG_INFO, "no regexes or lookup tables: no features added");
		return TRAIN_OK;
	}
	size_t b;
	int rc = add_block(f, fs, "RegexFeaturizer", (uint32_t)f->n_pats,
	                   TRAIN_FEAT_SEQUENCE | TRAIN_FEAT_SENTENCE, &b);
	entries e = { 0 };
	for (size_t m = 0; m < fs->n_messages && !rc; m++) {
		const train_feat_message *msg = &fs->messages[m];
		if (!msg->n_tokens || !msg->text_len)
			continue;
		size_t n;
		uint32_t *cp = text_decode(msg->text, msg->text_len, &n, NULL);
		if (!cp) {
			rc = TRAIN_ENOMEM;
			break;
		}
		for (size_t p = 0; p < f->n_pats && !rc; p++) {
			size_t pos = 0, ms, me;
			int any = 0, advance = 0;
			char *hit = calloc(msg->n_tokens, 1);
			if (!hit) {
				rc = TRAIN_ENOMEM;
				break;
			}
			while (pos <= n) {
				int r = pyre_search(f->pats[p].re, cp, n, pos, advance, &ms, &me, NULL);
				if (r < 0) {
					rc = r == PYRE_ENOMEM ? TRAIN_ENOMEM
					                      : train_fail(ctx, "pattern '%s' of '%s' took too many steps "
					                                   "on \"%s\"", f->pats[p].text, f->pats[p].name,
					                                   msg->text);
					break;
				}
				if (!r)
					break;
				for (size_t k = 0; k < msg->n_tokens; k++)
					if (msg->tokens[k].start < me && msg->tokens[k].end > ms)
						hit[k] = 1;
				pos = me;
				advance = me == ms;
			}
			for (size_t k = 0; k < msg->n_tokens && !rc; k++)
				if (hit[k]) {
					any = 1;
					rc = en_add(&e, (uint32_t)k, (uint32_t)p, 1.0f);
				}
			if (any && !rc)
				rc = en_add(&e, (uint32_t)msg->n_tokens, (uint32_t)p, 1.0f);
			free(hit);
		}
		free(cp);
		if (!rc)
			rc = en_commit(&e, fs, b, m);
		e.n = 0;
	}
	free(e.v);
	return rc;
}

#define RX_HEADER "train-regex-patterns 1"

static int rx_persist(const featurizer *f, train_resource *res)
{
	buf b = { 0 };
	b_str(&b, RX_HEADER "\n");
	for (size_t i = 0; i < f->n_pats; i++) {
		b_escaped(&b, f->pats[i].name, strlen(f->pats[i].name));
		b_add(&b, "\n", 1);
		b_escaped(&b, f->pats[i].text, strlen(f->pats[i].text));
		b_add(&b, "\n", 1);
	}
	int rc = b.fail ? TRAIN_ENOMEM : train_resource_write(res, "patterns.txt", b.p, b.len);
	free(b.p);
	return rc;
}

static int rx_load(featurizer *f, const train_resource *res, train_ctx *ctx)
{
	strv lines = { 0 };
	int rc = read_lines(res, "patterns.txt", RX_HEADER, &lines, ctx);
	if (!rc && lines.n % 2)
		rc = train_fail(ctx, "patterns.txt: a name without a pattern");
	for (size_t i = 0; i + 1 < lines.n && !rc; i += 2)
		rc = add_pattern(f, lines.v[i], lines.v[i + 1], ctx);
	sv_free(&lines);
	return rc;
}

/* ---- LexicalSyntacticFeaturizer --------------------------------------------------- */

static const train_param lexical_params[] = {
	{ "features", TRAIN_PARAM_LIST,
	  "[[low, title, upper], [BOS, EOS, low, upper, title, digit], [low, title, upper]]",
	  "feature names per window position; the middle one is the token" },
	{ "alias", TRAIN_PARAM_STRING, "~", "the feature block's name" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

static const char *const lsf_names[] = {
	"BOS", "EOS", "digit", "low", "pos", "pos2", "prefix2", "prefix5",
	"suffix1", "suffix2", "suffix3", "suffix5", "title", "upper", NULL,
};

static int lsf_configure(featurizer *f, const train_config *c, train_ctx *ctx)
{
	const train_config *fc = train_config_get(c, "features");
	size_t w = train_config_len(fc);
	if (!w)
		return train_fail(ctx, "features: at least one window position is needed");
	if (!(f->lsf_config = calloc(w, sizeof *f->lsf_config)))
		return TRAIN_ENOMEM;
	f->window = w;
	for (size_t i = 0; i < w; i++) {
		const train_config *pos = train_config_at(fc, i);
		if (train_config_kind(pos) != TRAIN_CFG_LIST)
			return train_fail(ctx, "features: expected a list of lists of feature names (%s, %s, %s, "
			                  "%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s); item %zu is not a list",
			                  lsf_names[0], lsf_names[1], lsf_names[2], lsf_names[3], lsf_names[4],
			                  lsf_names[5], lsf_names[6], lsf_names[7], lsf_names[8], lsf_names[9],
			                  lsf_names[10], lsf_names[11], lsf_names[12], lsf_names[13], i + 1);
		for (size_t k = 0; k < train_config_len(pos); k++) {
			const char *name = train_config_as_string(train_config_at(pos, k));
			size_t j = 0;
			while (name && lsf_names[j] && strcmp(lsf_names[j], name))
				j++;
			if (!name || !lsf_names[j])
				return train_fail(ctx, "features: unknown feature '%s'; known: BOS, EOS, digit, low, "
				                  "pos, pos2, prefix2, prefix5, suffix1, suffix2, suffix3, suffix5, "
				                  "title, upper", name ? name : "(not a string)");
			int rc = sv_add(&f->lsf_config[i], name, strlen(name));
			if (rc)
				return rc;
		}
	}
	return TRAIN_OK;
}

/* The raw value of a feature for token `k` of n: Python's str() of Rasa's function. */
static int lsf_value(const char *name, const train_feat_token *t, size_t k, size_t n, buf *out)
{
	const char *s = t->text;
	size_t len = strlen(s), b0, e0;
	int v = -1;
	out->len = 0;
	if (!strcmp(name, "BOS"))
		v = k == 0;
	else if (!strcmp(name, "EOS"))
		v = k + 1 == n;
	else if (!strcmp(name, "low"))
		v = text_str_islower(s, len);
	else if (!strcmp(name, "upper"))
		v = text_str_isupper(s, len);
	else if (!strcmp(name, "title"))
		v = text_str_istitle(s, len);
	else if (!strcmp(name, "digit"))
		v = text_str_isdigit(s, len);
	if (v >= 0) {
		b_str(out, v ? "True" : "False");
	} else if (!strcmp(name, "pos") || !strcmp(name, "pos2")) {
		if (!t->pos) {
			b_str(out, "None");
		} else {
			text_slice(t->pos, strlen(t->pos), name[3] ? 2 : (long)strlen(t->pos) + 1, &b0, &e0);
			b_add(out, t->pos + b0, e0 - b0);
		}
	} else { /* prefixN: s[:N], suffixN: s[-N:] */
		long nchar = strncmp(name, "prefix", 6) == 0 ? name[6] - '0' : -(long)(name[6] - '0');
		text_slice(s, len, nchar, &b0, &e0);
		b_add(out, s + b0, e0 - b0);
	}
	b_add(out, "", 0);
	return out->fail ? TRAIN_ENOMEM : TRAIN_OK;
}

/* The keys "window\x1fname\x1fvalue" of token k's features; calls back for each. */
static int lsf_token_keys(const featurizer *f, const train_feat_message *m, size_t k, buf *key, buf *val,
                          int (*fn)(void *, const char *, size_t), void *ud)
{
	size_t half = f->window / 2;
	for (size_t wpos = 0; wpos < f->window; wpos++) {
		long abs = (long)k + (long)wpos - (long)half;
		if (abs < 0 || abs >= (long)m->n_tokens)
			continue;
		const strv *names = &f->lsf_config[wpos];
		for (size_t i = 0; i < names->n; i++) {
			/* a name listed twice at one position is one feature (a dict key in Rasa) */
			size_t j = 0;
			while (j < i && strcmp(names->v[j], names->v[i]))
				j++;
			if (j < i)
				continue;
			int rc = lsf_value(names->v[i], &m->tokens[abs], (size_t)abs, m->n_tokens, val);
			if (rc)
				return rc;
			key->len = 0;
			char w[24];
			snprintf(w, sizeof w, "%zu%c", wpos, SEP);
			b_str(key, w);
			b_str(key, names->v[i]);
			b_add(key, (char[]){ SEP }, 1);
			b_add(key, val->p, val->len);
			if (key->fail)
				return TRAIN_ENOMEM;
			if ((rc = fn(ud, key->p, key->len)))
				return rc;
		}
	}
	return TRAIN_OK;
}

static int lsf_collect(void *ud, const char *key, size_t len)
{
	int added;
	return strmap_put(ud, key, len, 0, &added) ? TRAIN_OK : TRAIN_ENOMEM;
}

/* Python's order of (window position, name) then value. */
static int cmp_lsf_key(const void *a, const void *b)
{
	const char *x = *(char *const *)a, *y = *(char *const *)b;
	unsigned long wx = strtoul(x, NULL, 10), wy = strtoul(y, NULL, 10);
	if (wx != wy)
		return wx < wy ? -1 : 1;
	x = strchr(x, SEP) + 1;
	y = strchr(y, SEP) + 1;
	size_t nx = (size_t)(strchr(x, SEP) - x), ny = (size_t)(strchr(y, SEP) - y);
	int c = memcmp(x, y, nx < ny ? nx : ny);
	if (c || nx != ny)
		return c ? c : (nx < ny ? -1 : 1);
	return strcmp(x + nx + 1, y + ny + 1);
}

static int lsf_set_keys(featurizer *f, train_ctx *ctx)
{
	strmap_free(&f->lsf_map);
	for (size_t i = 0; i < f->lsf_keys.n; i++) {
		int added;
		strmap_entry *e = strmap_put(&f->lsf_map, f->lsf_keys.v[i], strlen(f->lsf_keys.v[i]), i, &added);
		if (!e)
			return TRAIN_ENOMEM;
		if (!added)
			return train_fail(ctx, "a feature value is there twice");
	}
	f->lsf_dim = f->lsf_keys.n;
	return TRAIN_OK;
}

static int lsf_train(featurizer *f, train_features *fs, train_ctx *ctx)
{
	strmap seen = { 0 };
	buf key = { 0 }, val = { 0 };
	char **keys = NULL;
	int rc = TRAIN_OK, want_pos = 0, have_pos = 0, first = 1;
	for (size_t w = 0; w < f->window; w++)
		for (size_t i = 0; i < f->lsf_config[w].n; i++)
			want_pos |= !strncmp(f->lsf_config[w].v[i], "pos", 3);
	for (size_t m = 0; m < fs->n_messages && !rc; m++) {
		const train_feat_message *msg = &fs->messages[m];
		if (msg->n_tokens && first) {
			have_pos = msg->tokens[0].pos != NULL;
			first = 0;
		}
		for (size_t k = 0; k < msg->n_tokens && !rc; k++)
			rc = lsf_token_keys(f, msg, k, &key, &val, lsf_collect, &seen);
	}
	if (!rc && want_pos && !have_pos)
		train_log(ctx, TRAIN_LOG_WARN, "the features include pos or pos2 but the tokens have no "
		          "part-of-speech tags: continuing without them");
	if (rc)
		goto out;
	keys = malloc((seen.len + 1) * sizeof *keys);
	if (!keys) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	size_t n = 0;
	for (size_t i = 0; i < seen.cap; i++)
		if (seen.slots[i].key)
			keys[n++] = seen.slots[i].key;
	qsort(keys, n, sizeof *keys, cmp_lsf_key);
	sv_free(&f->lsf_keys);
	for (size_t i = 0; i < n && !rc; i++)
		rc = sv_add(&f->lsf_keys, keys[i], strlen(keys[i]));
	if (!rc)
		rc = lsf_set_keys(f, ctx);
	if (!rc && !n)
		train_log(ctx, TRAIN_LOG_WARN, "no lexical syntactic features could be extracted from the "
		          "training data");
out:
	free(keys);
	strmap_free(&seen);
	free(key.p);
	free(val.p);
	return rc;
}

typedef struct lsf_emit {
	const featurizer *f;
	entries *e;
	uint32_t row;
} lsf_emit;

static int lsf_add(void *ud, const char *key, size_t len)
{
	lsf_emit *x = ud;
	strmap_entry *v = strmap_get(&x->f->lsf_map, key, len);
	return v ? en_add(x->e, x->row, (uint32_t)v->value, 1.0f) : TRAIN_OK;
}

static int lsf_featurize(const featurizer *f, train_features *fs, train_ctx *ctx)
{
	if (!f->lsf_dim) {
		train_log(ctx, TRAIN_LOG_INFO, "no features were learned: no features added");
		return TRAIN_OK;
	}
	size_t b;
	int rc = add_block(f, fs, "LexicalSyntacticFeaturizer", (uint32_t)f->lsf_dim, TRAIN_FEAT_SEQUENCE, &b);
	entries e = { 0 };
	buf key = { 0 }, val = { 0 };
	for (size_t m = 0; m < fs->n_messages && !rc; m++) {
		const train_feat_message *msg = &fs->messages[m];
		for (size_t k = 0; k < msg->n_tokens && !rc; k++) {
			lsf_emit x = { f, &e, (uint32_t)k };
			rc = lsf_token_keys(f, msg, k, &key, &val, lsf_add, &x);
		}
		if (!rc)
			rc = en_commit(&e, fs, b, m);
	}
	free(e.v);
	free(key.p);
	free(val.p);
	return rc;
}

#define LSF_HEADER "train-lexical-syntactic 1"

static int lsf_persist(const featurizer *f, train_resource *res)
{
	buf b = { 0 };
	b_str(&b, LSF_HEADER "\n");
	for (size_t i = 0; i < f->lsf_keys.n; i++) {
		/* "window\tname\tvalue", with the value escaped */
		const char *k = f->lsf_keys.v[i], *s1 = strchr(k, SEP), *s2 = strchr(s1 + 1, SEP);
		b_add(&b, k, (size_t)(s1 - k));
		b_add(&b, "\t", 1);
		b_add(&b, s1 + 1, (size_t)(s2 - s1 - 1));
		b_add(&b, "\t", 1);
		b_escaped(&b, s2 + 1, strlen(s2 + 1));
		b_add(&b, "\n", 1);
	}
	int rc = b.fail ? TRAIN_ENOMEM : train_resource_write(res, "feature_to_idx.txt", b.p, b.len);
	free(b.p);
	return rc;
}

static int lsf_load(featurizer *f, const train_resource *res, train_ctx *ctx)
{
	/* read raw lines: tabs separate fields before unescaping the value */
	void *data = NULL;
	size_t size = 0;
	int rc = train_resource_read(res, "feature_to_idx.txt", &data, &size);
	if (rc)
		return train_fail(ctx, "feature_to_idx.txt: %s", train_strerror(rc));
	char *s = data, *end = s + size;
	size_t hl = strlen(LSF_HEADER), line = 1;
	if (size < hl + 1 || memcmp(s, LSF_HEADER, hl) || s[hl] != '\n' || end[-1] != '\n' ||
	    memchr(s, 0, size)) {
		free(data);
		return train_fail(ctx, "feature_to_idx.txt: not a " LSF_HEADER " file (or cut short)");
	}
	for (s += hl + 1; s < end && !rc;) {
		char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t ll = (size_t)(nl - s);
		char *l = malloc(ll + 1);
		if (!l) {
			rc = TRAIN_ENOMEM;
			break;
		}
		memcpy(l, s, ll);
		l[ll] = '\0';
		s = nl + 1;
		line++;
		char *t1 = strchr(l, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL, *endw = NULL;
		size_t vl = t2 ? unescape(t2 + 1, strlen(t2 + 1)) : (size_t)-1;
		unsigned long w = strtoul(l, &endw, 10);
		size_t j = 0;
		if (t2) {
			*t1 = *t2 = '\0';
			while (lsf_names[j] && strcmp(lsf_names[j], t1 + 1))
				j++;
		}
		if (!t2 || vl == (size_t)-1 || endw != t1 || t1 == l || !lsf_names[j]) {
			free(l);
			rc = train_fail(ctx, "feature_to_idx.txt:%zu: expected window<TAB>feature<TAB>value", line);
			break;
		}
		if (w >= f->window)
			train_log(ctx, TRAIN_LOG_WARN, "feature_to_idx.txt:%zu: window position %lu is not in the "
			          "configured features; continuing with constant values for it", line, w);
		buf k = { 0 };
		char ws[24];
		snprintf(ws, sizeof ws, "%lu%c", w, SEP);
		b_str(&k, ws);
		b_str(&k, t1 + 1);
		b_add(&k, (char[]){ SEP }, 1);
		b_add(&k, t2 + 1, vl);
		rc = k.fail ? TRAIN_ENOMEM : sv_add(&f->lsf_keys, k.p, k.len);
		free(k.p);
		free(l);
	}
	free(data);
	if (!rc)
		rc = lsf_set_keys(f, ctx);
	return rc;
}

/* ---- the classes ------------------------------------------------------------------ */

static int feat_create_kind(enum kind kind, const train_config *c, train_ctx *ctx, void **self)
{
	*self = NULL;
	featurizer *f = calloc(1, sizeof *f);
	if (!f)
		return TRAIN_ENOMEM;
	f->kind = kind;
	int rc = TRAIN_OK;
	const char *alias = train_config_string(c, "alias");
	if (alias && !(f->alias = strdup(alias)))
		rc = TRAIN_ENOMEM;
	if (!rc && alias && !alias[0])
		rc = train_fail(ctx, "alias must not be empty");
	if (!rc && kind == K_COUNT)
		rc = cv_configure(f, c, ctx);
	if (!rc && kind == K_REGEX) {
		f->case_sensitive = train_config_bool(c, "case_sensitive");
		f->use_lookups = train_config_bool(c, "use_lookup_tables");
		f->use_regexes = train_config_bool(c, "use_regexes");
		f->word_boundaries = train_config_bool(c, "use_word_boundaries");
		if (train_config_kind(train_config_get(c, "number_additional_patterns")) != TRAIN_CFG_NULL)
			train_log(ctx, TRAIN_LOG_WARN, "number_additional_patterns is deprecated and ignored (as "
			          "in Rasa 3)");
	}
	if (!rc && kind == K_LEXICAL)
		rc = lsf_configure(f, c, ctx);
	if (rc) {
		feat_destroy(f);
		return rc;
	}
	*self = f;
	return TRAIN_OK;
}

static int cv_create(const train_config *c, train_ctx *ctx, void **self)
{
	return feat_create_kind(K_COUNT, c, ctx, self);
}
static int rx_create(const train_config *c, train_ctx *ctx, void **self)
{
	return feat_create_kind(K_REGEX, c, ctx, self);
}
static int lsf_create(const train_config *c, train_ctx *ctx, void **self)
{
	return feat_create_kind(K_LEXICAL, c, ctx, self);
}

static int featurize(featurizer *f, train_features *fs, bool predict, train_ctx *ctx)
{
	switch (f->kind) {
	case K_COUNT:
		return cv_featurize(f, fs, predict, ctx);
	case K_REGEX:
		return rx_featurize(f, fs, ctx);
	default:
		return lsf_featurize(f, fs, ctx);
	}
}

static int feat_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	featurizer *f = self;
	train_features *fs = NULL;
	int rc = decode_input(in, &fs, ctx);
	if (rc)
		return rc;
	switch (f->kind) {
	case K_COUNT:
		rc = cv_train(f, fs, ctx);
		break;
	case K_REGEX:
		if (train_ctx_finetuning(ctx) && f->trained) {
			rc = rx_merge_patterns(f, in, ctx);
			break;
		}
		for (size_t i = 0; i < f->n_pats; i++) {
			free(f->pats[i].name);
			free(f->pats[i].text);
			pyre_free(f->pats[i].re);
		}
		f->n_pats = 0;
		rc = rx_train_patterns(f, in, ctx);
		break;
	default:
		rc = lsf_train(f, fs, ctx);
		break;
	}
	if (!rc) {
		f->trained = true;
		rc = featurize(f, fs, false, ctx);
	}
	if (!rc)
		rc = put_output(fs, out, ctx);
	train_features_free(fs);
	return rc;
}

static int feat_process(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	featurizer *f = self;
	train_features *fs = NULL;
	if (!f->trained)
		return train_fail(ctx, "not trained: process needs what train or load gives");
	int rc = decode_input(in, &fs, ctx);
	if (!rc)
		rc = featurize(f, fs, true, ctx);
	if (!rc)
		rc = put_output(fs, out, ctx);
	train_features_free(fs);
	return rc;
}

static int feat_persist(void *self, train_resource *res)
{
	featurizer *f = self;
	if (!f->trained)
		return TRAIN_EINVAL;
	switch (f->kind) {
	case K_COUNT:
		return cv_persist(f, res);
	case K_REGEX:
		return rx_persist(f, res);
	default:
		return lsf_persist(f, res);
	}
}

static int feat_load_kind(enum kind kind, const train_config *c, const train_resource *res, train_ctx *ctx,
                          void **self)
{
	int rc = feat_create_kind(kind, c, ctx, self);
	if (rc)
		return rc;
	featurizer *f = *self;
	rc = kind == K_COUNT ? cv_load(f, res, ctx) : kind == K_REGEX ? rx_load(f, res, ctx) : lsf_load(f, res, ctx);
	if (rc) {
		feat_destroy(f);
		*self = NULL;
		return rc;
	}
	f->trained = true;
	return TRAIN_OK;
}

static int cv_load_entry(const train_config *c, const train_resource *r, train_ctx *ctx, void **self)
{
	return feat_load_kind(K_COUNT, c, r, ctx, self);
}
static int rx_load_entry(const train_config *c, const train_resource *r, train_ctx *ctx, void **self)
{
	return feat_load_kind(K_REGEX, c, r, ctx, self);
}
static int lsf_load_entry(const train_config *c, const train_resource *r, train_ctx *ctx, void **self)
{
	return feat_load_kind(K_LEXICAL, c, r, ctx, self);
}

static const char *const features_io[] = { "features", NULL };
static const char *const regex_inputs[] = { "features", "nlu", NULL };

static const train_component_class count_class = {
	.struct_size = sizeof(train_component_class),
	.name = "CountVectorsFeaturizer",
	.version = "1",
	.doc = "Rasa's CountVectorsFeaturizer: bag of word or character n-grams (sparse)",
	.inputs = features_io,
	.outputs = features_io,
	.params = count_params,
	.create = cv_create,
	.train = feat_train,
	.process = feat_process,
	.persist = feat_persist,
	.load = cv_load_entry,
	.destroy = feat_destroy,
};

static const train_component_class regex_class = {
	.struct_size = sizeof(train_component_class),
	.name = "RegexFeaturizer",
	.version = "1",
	.doc = "Rasa's RegexFeaturizer: which regexes and lookup tables match each token (sparse)",
	.inputs = regex_inputs,
	.outputs = features_io,
	.process_inputs = features_io,
	.process_outputs = features_io,
	.params = regex_params,
	.create = rx_create,
	.train = feat_train,
	.process = feat_process,
	.persist = feat_persist,
	.load = rx_load_entry,
	.destroy = feat_destroy,
};

static const train_component_class lexical_class = {
	.struct_size = sizeof(train_component_class),
	.name = "LexicalSyntacticFeaturizer",
	.version = "1",
	.doc = "Rasa's LexicalSyntacticFeaturizer: case, digit, affix and position features in a window",
	.inputs = features_io,
	.outputs = features_io,
	.params = lexical_params,
	.create = lsf_create,
	.train = feat_train,
	.process = feat_process,
	.persist = feat_persist,
	.load = lsf_load_entry,
	.destroy = feat_destroy,
};

static const train_component_class *const featurizer_classes[] = {
	&count_class,
	&regex_class,
	&lexical_class,
	NULL,
};

TRAIN_PLUGIN_DEFINE("featurizers", "1.0.0", "MIT",
                    "CountVectorsFeaturizer, RegexFeaturizer, LexicalSyntacticFeaturizer (Rasa's)",
                    featurizer_classes);
