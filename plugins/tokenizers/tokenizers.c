/*
 * plugins/tokenizers/tokenizers.c - the "tokenizers" plugin (issue 6):
 * Rasa's WhitespaceTokenizer, and a trainable WordPiece tokenizer.
 *
 *   WhitespaceTokenizer  nlu  -> features   (train: every NLU example)
 *                        text -> features   (process: one message)
 *   WordPieceTokenizer   the same, with subword tokens and their
 *                        vocabulary ids; learns its vocabulary in train
 *                        and persists it as vocab.txt (one token per
 *                        line, the line number is the id: BERT's format)
 *
 * Both emit the <train/features.h> value: the messages (text, intent,
 * entities) with their tokens and character offsets, and the intent
 * labels with their tokens.  Nothing else is featurized here.
 *
 * WhitespaceTokenizer follows Rasa 3's rules exactly (they are facts, the
 * code is ours): the text is cleaned with three alternatives tried left to
 * right at each position, as Python's `regex` module does in
 *
 *   (a) a run of characters that are not \w, '#', '@' or '&' followed by
 *       white space or the end;
 *   (b) white space (or the start) followed by such a run that is followed
 *       by a character that is neither an ASCII digit nor white space;
 *   (c) after a character that is neither an ASCII digit nor white space, a
 *       run of characters that are not \w or one of ._~:/?#[]()@!$&*+,;=-
 *       followed by such a character;
 *
 * each match becoming a space; the result is split at white space; a word
 * made only of emoji (Rasa's emoji ranges, which include U+24C2..U+1F251)
 * is dropped; when no word is left the whole text is one token.  Each word
 * is found in the text from the end of the previous one (Python's
 * str.index), which gives the offsets, in code points.  `token_pattern`,
 * when set, splits each token further with Python-`re` findall (pyre.h;
 * a pattern with groups yields group 1).  Intents are split at
 * `intent_split_symbol` when `intent_tokenization_flag` is set, after a
 * `prefix_separator_symbol` prefix, as Rasa does.  Rasa tokenizes an
 * empty text in prediction as one empty token and skips it in training;
 * so do these.
 *
 * WordPieceTokenizer (not in Rasa; for BERT and Mamba, issue 6):
 *  - pre-tokenization: words are maximal runs of \w characters (the
 *    `regex` module's \w); every other character that is not white space
 *    is a word of its own (punctuation, symbols, emoji), as BERT's basic
 *    tokenizer splits punctuation.  With `lowercase`, each character is
 *    lower-cased on its own (str.lower(); U+0130 becomes 'i'), so offsets
 *    stay those of the text.  No accent stripping and no CJK splitting.
 *  - training, on the words of the NLU examples: the alphabet (first
 *    characters as they are, later ones with the `##` prefix, sorted
 *    bytewise) after the special tokens, then merges of the adjacent pair
 *    with the best WordPiece score count(ab) / (count(a) * count(b)) over
 *    the word counts, among pairs seen at least `min_frequency` times
 *    (ties: the higher count, then the bytewise smaller result), until
 *    the vocabulary has `vocab_size` entries or no pair qualifies.  The
 *    alphabet is always kept whole, so every seen character stays known.
 *  - encoding, as BERT's WordpieceTokenizer: greedy longest match from the
 *    start of each word, later pieces with `##`; a word with a piece not
 *    in the vocabulary, or longer than `max_input_chars_per_word`
 *    characters, becomes one `unk_token` token over the whole word.
 *  Token texts are the vocabulary entries ("play", "##ing"), ids their
 *  line numbers in vocab.txt.  Finetuning keeps the loaded vocabulary (the
 *  ids must not move under the models that learned them).
 *
 * Threads: no global mutable state; every call works on its own instance.
 */
#include <train/features.h>
#include <train/plugin.h>
#include <train/rasa.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../common/pyre.h"
#include "../common/strmap.h"
#include "../common/text.h"

#define TEXT_TYPE "text/plain"

enum kind { K_WHITESPACE, K_WORDPIECE };

typedef struct tokenizer {
	enum kind kind;
	/* Rasa's Tokenizer keys */
	bool intent_flag;
	char *split_symbol;
	char *prefix_sep;     /* NULL: none */
	pyre *pattern;        /* NULL: none */
	/* WordPiece */
	size_t vocab_size, min_frequency, max_chars;
	bool lowercase;
	char *unk, *cont;     /* unk_token, continuing_subword_prefix */
	char **specials;
	size_t n_specials;
	char **voc;           /* id -> token */
	size_t n_voc, voc_cap;
	strmap vmap;          /* token -> id */
	int32_t unk_id;
	bool trained;
} tokenizer;

static const train_param base_params[] = {
	{ "intent_tokenization_flag", TRAIN_PARAM_BOOL, "false", "split intent names into tokens" },
	{ "intent_split_symbol", TRAIN_PARAM_STRING, "_", "where intent names are split" },
	{ "token_pattern", TRAIN_PARAM_STRING, "~",
	  "a Python regular expression that splits each token further (findall)" },
	{ "prefix_separator_symbol", TRAIN_PARAM_STRING, "~",
	  "intent names: split off a prefix at its first occurrence" },
	{ "case_sensitive", TRAIN_PARAM_ANY, "~",
	  "moved to the featurizers in Rasa; accepted with a warning" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

static const train_param wordpiece_params[] = {
	{ "intent_tokenization_flag", TRAIN_PARAM_BOOL, "false", "split intent names into tokens" },
	{ "intent_split_symbol", TRAIN_PARAM_STRING, "_", "where intent names are split" },
	{ "prefix_separator_symbol", TRAIN_PARAM_STRING, "~",
	  "intent names: split off a prefix at its first occurrence" },
	{ "vocab_size", TRAIN_PARAM_INT, "8000", "vocabulary entries to learn, special tokens included" },
	{ "min_frequency", TRAIN_PARAM_INT, "2", "fewest occurrences of a pair to merge it" },
	{ "lowercase", TRAIN_PARAM_BOOL, "true", "lower-case the text first" },
	{ "unk_token", TRAIN_PARAM_STRING, "\"[UNK]\"", "the token for unknown words" },
	{ "continuing_subword_prefix", TRAIN_PARAM_STRING, "\"##\"", "marks pieces inside a word" },
	{ "special_tokens", TRAIN_PARAM_LIST, "[\"[PAD]\", \"[UNK]\", \"[CLS]\", \"[SEP]\", \"[MASK]\"]",
	  "tokens that come first in the vocabulary, in this order" },
	{ "max_input_chars_per_word", TRAIN_PARAM_INT, "100", "longer words become unk_token" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

static const char *const nlu_inputs[] = { "nlu", NULL };
static const char *const text_inputs[] = { "text", NULL };
static const char *const features_outputs[] = { "features", NULL };

/* ---- small helpers ------------------------------------------------------- */

static char *xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void tok_destroy(void *self)
{
	tokenizer *t = self;
	if (!t)
		return;
	free(t->split_symbol);
	free(t->prefix_sep);
	pyre_free(t->pattern);
	free(t->unk);
	free(t->cont);
	for (size_t i = 0; i < t->n_specials; i++)
		free(t->specials[i]);
	free(t->specials);
	for (size_t i = 0; i < t->n_voc; i++)
		free(t->voc[i]);
	free(t->voc);
	strmap_free(&t->vmap);
	free(t);
}

/* A growing list of tokens whose strings the list owns. */
typedef struct tokvec {
	train_feat_token *v;
	size_t n, cap;
} tokvec;

static void tv_free(tokvec *tv)
{
	for (size_t i = 0; i < tv->n; i++)
		free((void *)tv->v[i].text);
	free(tv->v);
	memset(tv, 0, sizeof *tv);
}

/* Append a token with a copy of text[0..len). */
static int tv_add(tokvec *tv, const char *text, size_t len, uint32_t start, uint32_t end, int32_t id)
{
	if (tv->n == tv->cap) {
		size_t cap = tv->cap ? tv->cap * 2 : 16;
		train_feat_token *v = realloc(tv->v, cap * sizeof *v);
		if (!v)
			return TRAIN_ENOMEM;
		tv->v = v;
		tv->cap = cap;
	}
	char *s = malloc(len + 1);
	if (!s)
		return TRAIN_ENOMEM;
	memcpy(s, text, len);
	s[len] = '\0';
	tv->v[tv->n++] = (train_feat_token){ s, start, end, NULL, NULL, id };
	return TRAIN_OK;
}

/* Rasa's emoji ranges (rasa.utils.io.get_emoji_regex), which also cover
 * most symbols and every CJK character. */
static int is_emoji(uint32_t c)
{
	return (c >= 0x24c2 && c <= 0x1f251) || (c >= 0x1f300 && c <= 0x1f5ff) ||
	       (c >= 0x1f600 && c <= 0x1f64f) || (c >= 0x1f680 && c <= 0x1f6ff) || c == 0x200c ||
	       c == 0x200d;
}

/* ---- WhitespaceTokenizer -------------------------------------------------- */

static int keep_char(uint32_t c) /* \w, #, @, & */
{
	return text_is_regex_word(c) || c == '#' || c == '@' || c == '&';
}

static int url_char(uint32_t c)
{
	return text_is_regex_word(c) || (c < 0x80 && c && strchr("._~:/?#[]()@!$&*+,;=-", (int)c));
}

static int digit_or_space(uint32_t c)
{
	return (c >= '0' && c <= '9') || text_is_regex_space(c);
}

/*
 * Length of the longest match of `run` (a run of characters for which
 * `in_run` holds, at least one) starting at t[p], whose following
 * position satisfies the lookahead: (a) white space or the end, else a
 * character that is neither an ASCII digit nor white space.  0: none.
 */
static size_t run_match(const uint32_t *t, size_t n, size_t p, int (*in_run)(uint32_t), int want_space_or_end)
{
	size_t L = 0;
	while (p + L < n && in_run(t[p + L]))
		L++;
	for (size_t l = L; l >= 1; l--) {
		size_t q = p + l;
		if (want_space_or_end ? (q == n || text_is_regex_space(t[q]))
		                      : (q < n && !digit_or_space(t[q])))
			return l;
	}
	return 0;
}

static int not_keep(uint32_t c) { return !keep_char(c); }
static int not_url(uint32_t c) { return !url_char(c); }

/* Mark the characters Rasa's clean-up regex replaces by spaces. */
static void ws_clean(const uint32_t *t, size_t n, unsigned char *gone)
{
	size_t p = 0;
	while (p < n) {
		size_t l;
		/* (a) [^\w#@&]+(?=\s|$) */
		if ((l = run_match(t, n, p, not_keep, 1))) {
			memset(gone + p, 1, l);
			p += l;
			continue;
		}
		/* (b) (\s|^)[^\w#@&]+(?=[^0-9\s]) */
		if (text_is_regex_space(t[p]) && (l = run_match(t, n, p + 1, not_keep, 0))) {
			memset(gone + p, 1, l + 1);
			p += l + 1;
			continue;
		}
		if (p == 0 && (l = run_match(t, n, 0, not_keep, 0))) {
			memset(gone, 1, l);
			p = l;
			continue;
		}
		/* (c) (?<=[^0-9\s])[^\w._~:/?#\[\]()@!$&*+,;=-]+(?=[^0-9\s]) */
		if (p > 0 && !digit_or_space(t[p - 1]) && (l = run_match(t, n, p, not_url, 0))) {
			memset(gone + p, 1, l);
			p += l;
			continue;
		}
		p++;
	}
}

/* Python's text.index(word, from) on code points; n if absent. */
static size_t cp_index(const uint32_t *t, size_t n, const uint32_t *w, size_t wl, size_t from)
{
	for (size_t i = from; i + wl <= n; i++)
		if (!memcmp(t + i, w, wl * sizeof *w))
			return i;
	return n + 1;
}

/* Split token `tk` with token_pattern; appends to out (or the token itself). */
static int apply_pattern(const tokenizer *tz, const char *text, const size_t *offs, uint32_t start,
                         uint32_t end, tokvec *out)
{
	size_t len = end - start, pos = 0, ms, me, g[2];
	int advance = 0;
	const char *tk = text + offs[start];
	size_t tkb = offs[end] - offs[start];
	size_t n_cp;
	uint32_t *cp = text_decode(tk, tkb, &n_cp, NULL);
	if (!cp)
		return TRAIN_ENOMEM;
	size_t before = out->n, running = 0;
	int rc = TRAIN_OK;
	while (pos <= len) {
		int r = pyre_search(tz->pattern, cp, len, pos, advance, &ms, &me, g);
		if (r < 0) {
			rc = r == PYRE_ENOMEM ? TRAIN_ENOMEM : TRAIN_EINVAL;
			break;
		}
		if (r == 0)
			break;
		size_t s = ms, e = me;
		if (pyre_groups(tz->pattern)) {
			s = g[0] == (size_t)-1 ? 0 : g[0];
			e = g[0] == (size_t)-1 ? 0 : g[1];
		}
		if (e > s) {
			/* Rasa finds the piece in the token from the end of the last one */
			size_t at = cp_index(cp, len, cp + s, e - s, running);
			running = at + (e - s);
			if ((rc = tv_add(out, text + offs[start + at], offs[start + running] - offs[start + at],
			                 start + (uint32_t)at, start + (uint32_t)running, -1)))
				break;
		}
		pos = me;
		advance = me == ms;
	}
	free(cp);
	if (!rc && out->n == before)
		rc = tv_add(out, tk, tkb, start, end, -1);
	return rc;
}

static int ws_tokenize(const tokenizer *tz, const char *text, size_t len, tokvec *out)
{
	size_t n = 0, *offs = NULL;
	uint32_t *t = text_decode(text, len, &n, &offs);
	unsigned char *gone = t ? calloc(n + 1, 1) : NULL;
	uint32_t (*words)[2] = gone ? malloc((n + 1) * sizeof *words) : NULL;
	int rc = TRAIN_OK;
	if (!words) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	ws_clean(t, n, gone);
	size_t nw = 0;
	for (size_t i = 0; i < n;) {
		if (gone[i] || text_is_space(t[i])) {
			i++;
			continue;
		}
		size_t j = i;
		int emoji = 1;
		while (j < n && !gone[j] && !text_is_space(t[j]))
			emoji &= is_emoji(t[j++]);
		if (!emoji) {
			words[nw][0] = (uint32_t)i;
			words[nw++][1] = (uint32_t)j;
		}
		i = j;
	}
	if (!nw) { /* nothing left (":)", only emoji): the whole text is one token */
		words[0][0] = 0;
		words[0][1] = (uint32_t)n;
		nw = 1;
	}
	size_t running = 0;
	for (size_t k = 0; k < nw && !rc; k++) {
		size_t wl = words[k][1] - words[k][0];
		size_t at = cp_index(t, n, t + words[k][0], wl, running);
		if (at > n) /* cannot happen: the word is in the text after `running` */
			at = words[k][0];
		running = at + wl;
		if (tz->pattern)
			rc = apply_pattern(tz, text, offs, (uint32_t)at, (uint32_t)running, out);
		else
			rc = tv_add(out, text + offs[at], offs[running] - offs[at], (uint32_t)at,
			            (uint32_t)running, -1);
	}
out:
	free(t);
	free(offs);
	free(gone);
	free(words);
	return rc;
}

/* ---- WordPiece ------------------------------------------------------------ */

/* Words for WordPiece: [start, end) code point spans, and the (lower-cased) text. */
typedef struct wp_word {
	uint32_t start, end;
} wp_word;

static int wp_pretokenize(const uint32_t *t, size_t n, wp_word **out, size_t *nout)
{
	wp_word *w = malloc((n + 1) * sizeof *w);
	if (!w)
		return TRAIN_ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n;) {
		if (text_is_space(t[i])) {
			i++;
			continue;
		}
		size_t j = i + 1;
		if (text_is_regex_word(t[i]))
			while (j < n && text_is_regex_word(t[j]))
				j++;
		w[k].start = (uint32_t)i;
		w[k++].end = (uint32_t)j;
		i = j;
	}
	*out = w;
	*nout = k;
	return TRAIN_OK;
}

/* UTF-8 of t[s..e), lower-cased per character when asked, into buf (>= 4 * (e - s) + 1). */
static size_t wp_text(const tokenizer *tz, const uint32_t *t, size_t s, size_t e, char *buf)
{
	size_t o = 0;
	for (size_t i = s; i < e; i++)
		o += text_put(buf + o, tz->lowercase ? (t[i] == 0x130 ? 'i' : text_tolower(t[i])) : t[i]);
	buf[o] = '\0';
	return o;
}

static int voc_add(tokenizer *tz, const char *s, size_t len, int32_t *id)
{
	int added;
	strmap_entry *e = strmap_put(&tz->vmap, s, len, tz->n_voc, &added);
	if (!e)
		return TRAIN_ENOMEM;
	*id = (int32_t)e->value;
	if (!added)
		return TRAIN_OK;
	if (tz->n_voc == tz->voc_cap) {
		size_t cap = tz->voc_cap ? tz->voc_cap * 2 : 256;
		char **v = realloc(tz->voc, cap * sizeof *v);
		if (!v)
			return TRAIN_ENOMEM;
		tz->voc = v;
		tz->voc_cap = cap;
	}
	if (!(tz->voc[tz->n_voc] = malloc(len + 1)))
		return TRAIN_ENOMEM;
	memcpy(tz->voc[tz->n_voc], s, len);
	tz->voc[tz->n_voc][len] = '\0';
	tz->n_voc++;
	return TRAIN_OK;
}

/* Encode one word t[s..e) of the message (code points; byte offsets offs). */
static int wp_encode_word(const tokenizer *tz, const uint32_t *t, size_t s, size_t e, char *buf,
                          tokvec *out)
{
	size_t before = out->n, cl = strlen(tz->cont);
	if (e - s <= tz->max_chars) {
		size_t start = s;
		while (start < e) {
			size_t end = e;
			strmap_entry *hit = NULL;
			while (end > start) {
				size_t o = 0;
				if (start > s) {
					memcpy(buf, tz->cont, cl);
					o = cl;
				}
				size_t len = o + wp_text(tz, t, start, end, buf + o);
				if ((hit = strmap_get(&tz->vmap, buf, len)))
					break;
				end--;
			}
			if (!hit)
				break;
			int rc = tv_add(out, hit->key, hit->len, (uint32_t)start, (uint32_t)end, (int32_t)hit->value);
			if (rc)
				return rc;
			start = end;
		}
		if (start == e)
			return TRAIN_OK;
	}
	/* an unknown piece, or too long: the whole word is unk_token */
	while (out->n > before)
		free((void *)out->v[--out->n].text);
	return tv_add(out, tz->unk, strlen(tz->unk), (uint32_t)s, (uint32_t)e, tz->unk_id);
}

static int wp_tokenize(const tokenizer *tz, const char *text, size_t len, tokvec *out)
{
	size_t n = 0;
	wp_word *w = NULL;
	size_t nw = 0;
	uint32_t *t = text_decode(text, len, &n, NULL);
	char *buf = t ? malloc(4 * n + strlen(tz->cont) + 1) : NULL;
	int rc = buf ? wp_pretokenize(t, n, &w, &nw) : TRAIN_ENOMEM;
	for (size_t k = 0; k < nw && !rc; k++)
		rc = wp_encode_word(tz, t, w[k].start, w[k].end, buf, out);
	free(w);
	free(buf);
	free(t);
	return rc;
}

/* Pair counts for training: open addressing on (a, b). */
typedef struct pair_slot {
	uint64_t key;  /* (a << 32 | b) + 1; 0 empty */
	int64_t count;
} pair_slot;

typedef struct pair_map {
	pair_slot *s;
	size_t cap, len;
} pair_map;

static pair_slot *pm_slot(pair_map *m, uint64_t key)
{
	size_t mask = m->cap - 1;
	uint64_t h = key * 0x9E3779B97F4A7C15ull;
	for (size_t i = (size_t)(h >> 20) & mask;; i = (i + 1) & mask)
		if (m->s[i].key == key || !m->s[i].key)
			return &m->s[i];
}

static int pm_add(pair_map *m, uint64_t key, int64_t count)
{
	if ((m->len + 1) * 2 > m->cap) {
		pair_map g = { calloc(m->cap ? m->cap * 2 : 1024, sizeof(pair_slot)), m->cap ? m->cap * 2 : 1024, 0 };
		if (!g.s)
			return TRAIN_ENOMEM;
		for (size_t i = 0; i < m->cap; i++)
			if (m->s[i].key) {
				*pm_slot(&g, m->s[i].key) = m->s[i];
				g.len++;
			}
		free(m->s);
		*m = g;
	}
	pair_slot *p = pm_slot(m, key);
	if (!p->key) {
		p->key = key;
		m->len++;
	}
	p->count += count;
	return TRAIN_OK;
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The text of symbol a followed by symbol b: b loses its continuation prefix. */
static char *merged_text(const tokenizer *tz, uint32_t a, uint32_t b)
{
	const char *at = tz->voc[a], *bt = tz->voc[b];
	size_t cl = strlen(tz->cont);
	if (strncmp(bt, tz->cont, cl) == 0)
		bt += cl;
	size_t la = strlen(at), lb = strlen(bt);
	char *m = malloc(la + lb + 1);
	if (m) {
		memcpy(m, at, la);
		memcpy(m + la, bt, lb + 1);
	}
	return m;
}

typedef struct wp_train_word {
	int32_t *sym;
	size_t n;
	uint64_t freq;
} wp_train_word;

/* Add (sign 1) or take away (-1) a word's symbols and adjacent pairs; the
 * symbol counts grow to n_voc entries as the vocabulary grows. */
static int wp_count_word(const wp_train_word *w, int sign, int64_t **symfreq, size_t *cap, pair_map *pm,
                         size_t n_voc)
{
	if (*cap < n_voc) {
		size_t c = *cap ? *cap : 1024;
		while (c < n_voc)
			c *= 2;
		int64_t *s = realloc(*symfreq, c * sizeof *s);
		if (!s)
			return TRAIN_ENOMEM;
		memset(s + *cap, 0, (c - *cap) * sizeof *s);
		*symfreq = s;
		*cap = c;
	}
	int64_t f = sign * (int64_t)w->freq;
	for (size_t k = 0; k < w->n; k++) {
		(*symfreq)[w->sym[k]] += f;
		if (k + 1 < w->n) {
			int rc = pm_add(pm, ((uint64_t)(uint32_t)w->sym[k] << 32 | (uint32_t)w->sym[k + 1]) + 1, f);
			if (rc)
				return rc;
		}
	}
	return TRAIN_OK;
}

static int wp_train_vocab(tokenizer *tz, const train_features *f, train_ctx *ctx)
{
	strmap words = { 0 };
	wp_train_word *tw = NULL;
	size_t ntw = 0, twcap = 0;
	char **alpha = NULL;
	size_t nalpha = 0;
	strmap amap = { 0 };
	int64_t *symfreq = NULL;
	size_t sf_cap = 0;
	pair_map pm = { 0 };
	char *buf = NULL;
	size_t bufcap = 0;
	int rc = TRAIN_OK;

	for (size_t i = 0; i < tz->n_specials && !rc; i++) {
		int32_t id;
		rc = voc_add(tz, tz->specials[i], strlen(tz->specials[i]), &id);
	}
	if (rc)
		goto out;
	/* 1. word counts */
	for (size_t m = 0; m < f->n_messages && !rc; m++) {
		const train_feat_message *msg = &f->messages[m];
		size_t n, nw;
		wp_word *w = NULL;
		uint32_t *t = text_decode(msg->text, msg->text_len, &n, NULL);
		if (!t || (rc = wp_pretokenize(t, n, &w, &nw))) {
			free(t);
			rc = TRAIN_ENOMEM;
			break;
		}
		if (4 * n + 1 > bufcap) {
			char *b = realloc(buf, 4 * n + 1);
			if (!b) {
				rc = TRAIN_ENOMEM;
			} else {
				buf = b;
				bufcap = 4 * n + 1;
			}
		}
		for (size_t k = 0; k < nw && !rc; k++) {
			size_t len = wp_text(tz, t, w[k].start, w[k].end, buf);
			int added;
			strmap_entry *e = strmap_put(&words, buf, len, ntw, &added);
			if (!e) {
				rc = TRAIN_ENOMEM;
				break;
			}
			if (added) {
				if (ntw == twcap) {
					size_t cap = twcap ? twcap * 2 : 256;
					wp_train_word *v = realloc(tw, cap * sizeof *v);
					if (!v) {
						rc = TRAIN_ENOMEM;
						break;
					}
					tw = v;
					twcap = cap;
				}
				tw[ntw++] = (wp_train_word){ NULL, w[k].end - w[k].start, 0 };
			}
			tw[e->value].freq++;
		}
		free(w);
		free(t);
	}
	if (rc)
		goto out;
	/* 2. the alphabet, sorted, after the special tokens */
	size_t cl = strlen(tz->cont);
	for (size_t i = 0; i < words.cap && !rc; i++) {
		strmap_entry *e = &words.slots[i];
		if (!e->key)
			continue;
		size_t p = 0;
		for (size_t k = 0; p < e->len; k++) {
			size_t q = p;
			text_next(e->key, e->len, &q);
			char piece[64];
			size_t o = 0;
			if (k) {
				memcpy(piece, tz->cont, cl);
				o = cl;
			}
			memcpy(piece + o, e->key + p, q - p);
			o += q - p;
			int added;
			if (!strmap_put(&amap, piece, o, 0, &added)) {
				rc = TRAIN_ENOMEM;
				break;
			}
			p = q;
		}
	}
	if (rc)
		goto out;
	alpha = malloc((amap.len + 1) * sizeof *alpha);
	if (!alpha) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < amap.cap; i++)
		if (amap.slots[i].key)
			alpha[nalpha++] = amap.slots[i].key;
	qsort(alpha, nalpha, sizeof *alpha, cmp_cstr);
	for (size_t i = 0; i < nalpha && !rc; i++) {
		int32_t id;
		rc = voc_add(tz, alpha[i], strlen(alpha[i]), &id);
	}
	if (rc)
		goto out;
	/* 3. each word as symbols */
	for (size_t i = 0; i < words.cap && !rc; i++) {
		strmap_entry *e = &words.slots[i];
		if (!e->key)
			continue;
		wp_train_word *w = &tw[e->value];
		if (!(w->sym = malloc(w->n * sizeof *w->sym))) {
			rc = TRAIN_ENOMEM;
			break;
		}
		size_t p = 0;
		for (size_t k = 0; k < w->n; k++) {
			size_t q = p;
			text_next(e->key, e->len, &q);
			char piece[64];
			size_t o = k ? cl : 0;
			memcpy(piece, tz->cont, o);
			memcpy(piece + o, e->key + p, q - p);
			w->sym[k] = (int32_t)strmap_get(&tz->vmap, piece, o + q - p)->value;
			p = q;
		}
	}
	if (rc)
		goto out;
	/* 4. merges; the counts of symbols and adjacent pairs are kept up to
	 * date by taking each word that changes out and putting it back */
	for (size_t i = 0; i < ntw && !rc; i++)
		rc = wp_count_word(&tw[i], 1, &symfreq, &sf_cap, &pm, tz->n_voc);
	while (tz->n_voc < tz->vocab_size && !rc) {
		if (train_ctx_canceled(ctx)) {
			rc = TRAIN_ECANCELED;
			break;
		}
		pair_slot *best = NULL;
		double best_score = -1;
		char *best_text = NULL;
		for (size_t i = 0; i < pm.cap && !rc; i++) {
			pair_slot *p = &pm.s[i];
			if (!p->key || p->count <= 0 || (uint64_t)p->count < tz->min_frequency)
				continue;
			uint64_t k = p->key - 1;
			uint32_t a = (uint32_t)(k >> 32), b = (uint32_t)k;
			double score = (double)p->count / ((double)symfreq[a] * (double)symfreq[b]);
			if (best && (score < best_score || (score == best_score && p->count < best->count)))
				continue;
			char *cand = merged_text(tz, a, b);
			if (!cand) {
				rc = TRAIN_ENOMEM;
				break;
			}
			if (best && score == best_score && p->count == best->count &&
			    strcmp(cand, best_text) >= 0) {
				free(cand);
				continue;
			}
			free(best_text);
			best_text = cand;
			best = p;
			best_score = score;
		}
		if (rc || !best) {
			free(best_text);
			break;
		}
		uint64_t k = best->key - 1;
		int32_t a = (int32_t)(k >> 32), b = (int32_t)(uint32_t)k, id;
		rc = voc_add(tz, best_text, strlen(best_text), &id);
		free(best_text);
		if (rc)
			break;
		for (size_t i = 0; i < ntw && !rc; i++) {
			wp_train_word *w = &tw[i];
			size_t j = 0;
			while (j + 1 < w->n && !(w->sym[j] == a && w->sym[j + 1] == b))
				j++;
			if (j + 1 >= w->n)
				continue;
			if ((rc = wp_count_word(w, -1, &symfreq, &sf_cap, &pm, tz->n_voc)))
				break;
			size_t o = 0;
			for (j = 0; j < w->n; j++) {
				if (j + 1 < w->n && w->sym[j] == a && w->sym[j + 1] == b) {
					w->sym[o++] = id;
					j++;
				} else {
					w->sym[o++] = w->sym[j];
				}
			}
			w->n = o;
			rc = wp_count_word(w, 1, &symfreq, &sf_cap, &pm, tz->n_voc);
		}
		train_progress(ctx, tz->n_voc, tz->vocab_size);
	}
	if (!rc) {
		strmap_entry *u = strmap_get(&tz->vmap, tz->unk, strlen(tz->unk));
		if (!u) /* unk_token not among the special tokens: it goes last */
			rc = voc_add(tz, tz->unk, strlen(tz->unk), &tz->unk_id);
		else
			tz->unk_id = (int32_t)u->value;
	}
out:
	for (size_t i = 0; i < ntw; i++)
		free(tw[i].sym);
	free(tw);
	free(alpha);
	strmap_free(&amap);
	strmap_free(&words);
	free(symfreq);
	free(pm.s);
	free(buf);
	return rc;
}

/* ---- shared: config, intents, train, process ----------------------------- */

static int tok_create_kind(enum kind kind, const train_config *c, train_ctx *ctx, void **self)
{
	*self = NULL;
	tokenizer *tz = calloc(1, sizeof *tz);
	if (!tz)
		return TRAIN_ENOMEM;
	tz->kind = kind;
	tz->intent_flag = train_config_bool(c, "intent_tokenization_flag");
	const char *sym = train_config_string(c, "intent_split_symbol");
	const char *pre = train_config_string(c, "prefix_separator_symbol");
	int rc = TRAIN_OK;
	if (!(tz->split_symbol = xstrdup(sym ? sym : "_")) || (pre && !(tz->prefix_sep = strdup(pre)))) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	if (tz->intent_flag && !tz->split_symbol[0]) {
		rc = train_fail(ctx, "intent_split_symbol: an empty separator cannot split intents");
		goto out;
	}
	if (tz->prefix_sep && !tz->prefix_sep[0]) {
		rc = train_fail(ctx, "prefix_separator_symbol: an empty separator cannot split intents");
		goto out;
	}
	if (kind == K_WHITESPACE) {
		if (train_config_kind(train_config_get(c, "case_sensitive")) != TRAIN_CFG_NULL)
			train_log(ctx, TRAIN_LOG_WARN, "the option 'case_sensitive' was moved from the "
			          "tokenizers to the featurizers; it is ignored here");
		const char *pat = train_config_string(c, "token_pattern");
		if (pat && pat[0]) {
			char msg[256];
			int r = pyre_compile(pat, 0, &tz->pattern, msg, sizeof msg);
			if (r) {
				rc = r == PYRE_ENOMEM ? TRAIN_ENOMEM
				                      : train_fail(ctx, "token_pattern: %s", msg);
				goto out;
			}
		}
		tz->trained = true;
	} else {
		int64_t vs = train_config_int(c, "vocab_size"), mf = train_config_int(c, "min_frequency");
		int64_t mc = train_config_int(c, "max_input_chars_per_word");
		if (vs < 1 || vs > INT32_MAX) {
			rc = train_fail(ctx, "vocab_size must be between 1 and %d, not %lld", INT32_MAX,
			                (long long)vs);
			goto out;
		}
		if (mf < 1) {
			rc = train_fail(ctx, "min_frequency must be at least 1, not %lld", (long long)mf);
			goto out;
		}
		if (mc < 1) {
			rc = train_fail(ctx, "max_input_chars_per_word must be at least 1, not %lld",
			                (long long)mc);
			goto out;
		}
		tz->vocab_size = (size_t)vs;
		tz->min_frequency = (size_t)mf;
		tz->max_chars = (size_t)mc;
		tz->lowercase = train_config_bool(c, "lowercase");
		const char *unk = train_config_string(c, "unk_token");
		const char *cont = train_config_string(c, "continuing_subword_prefix");
		if (!unk || !unk[0] || strpbrk(unk, "\r\n")) {
			rc = train_fail(ctx, "unk_token must be a non-empty string on one line");
			goto out;
		}
		if (!cont || strlen(cont) > 16 || strpbrk(cont, "\r\n")) {
			rc = train_fail(ctx, "continuing_subword_prefix must be at most 16 bytes on one line");
			goto out;
		}
		if (!(tz->unk = strdup(unk)) || !(tz->cont = strdup(cont))) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		const train_config *sp = train_config_get(c, "special_tokens");
		size_t ns = train_config_len(sp);
		if (ns && !(tz->specials = calloc(ns, sizeof *tz->specials))) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		for (size_t i = 0; i < ns; i++) {
			const char *s = train_config_as_string(train_config_at(sp, i));
			if (!s || !s[0] || strpbrk(s, "\r\n")) {
				rc = train_fail(ctx, "special_tokens: item %zu must be a non-empty string on one "
				                "line", i + 1);
				goto out;
			}
			for (size_t j = 0; j < i; j++)
				if (!strcmp(tz->specials[j], s)) {
					rc = train_fail(ctx, "special_tokens: '%s' is listed twice", s);
					goto out;
				}
			if (!(tz->specials[i] = strdup(s))) {
				rc = TRAIN_ENOMEM;
				goto out;
			}
			tz->n_specials++;
		}
	}
out:
	if (rc) {
		tok_destroy(tz);
		return rc;
	}
	*self = tz;
	return TRAIN_OK;
}

static int ws_create(const train_config *c, train_ctx *ctx, void **self)
{
	return tok_create_kind(K_WHITESPACE, c, ctx, self);
}
static int wp_create(const train_config *c, train_ctx *ctx, void **self)
{
	return tok_create_kind(K_WORDPIECE, c, ctx, self);
}

static int tokenize(const tokenizer *tz, const char *text, size_t len, tokvec *out)
{
	return tz->kind == K_WHITESPACE ? ws_tokenize(tz, text, len, out) : wp_tokenize(tz, text, len, out);
}

/* Python's s.split(sep) appended to names (empty pieces kept). */
static int split_append(const char *s, size_t len, const char *sep, bool split, char ***v, size_t *n,
                        size_t *cap)
{
	size_t sl = strlen(sep);
	const char *p = s, *end = s + len;
	for (;;) {
		const char *q = split ? memmem(p, (size_t)(end - p), sep, sl) : NULL;
		const char *e = q ? q : end;
		if (*n == *cap) {
			size_t c = *cap ? *cap * 2 : 8;
			char **nv = realloc(*v, c * sizeof *nv);
			if (!nv)
				return TRAIN_ENOMEM;
			*v = nv;
			*cap = c;
		}
		char *w = malloc((size_t)(e - p) + 1);
		if (!w)
			return TRAIN_ENOMEM;
		memcpy(w, p, (size_t)(e - p));
		w[e - p] = '\0';
		(*v)[(*n)++] = w;
		if (!q)
			return TRAIN_OK;
		p = q + sl;
	}
}

/* Rasa's _split_name for each intent label. */
static int set_intent_tokens(const tokenizer *tz, train_features *f)
{
	int rc = TRAIN_OK;
	for (size_t i = 0; i < f->n_intents && !rc; i++) {
		const char *name = f->intents[i].name, *rest = name;
		char **v = NULL;
		size_t n = 0, cap = 0;
		const char *ps = tz->prefix_sep ? strstr(name, tz->prefix_sep) : NULL;
		if (ps) {
			rc = split_append(name, (size_t)(ps - name), tz->split_symbol, tz->intent_flag, &v, &n, &cap);
			rest = ps + strlen(tz->prefix_sep);
		}
		if (!rc)
			rc = split_append(rest, strlen(rest), tz->split_symbol, tz->intent_flag, &v, &n, &cap);
		if (!rc)
			rc = train_features_set_intent_tokens(f, i, (const char *const *)v, n);
		for (size_t k = 0; k < n; k++)
			free(v[k]);
		free(v);
	}
	return rc;
}

static int put_features(train_features *f, train_values *out, train_ctx *ctx)
{
	train_value *v = NULL;
	train_error err = { 0 };
	int rc = train_features_to_value(f, &v, &err);
	if (rc)
		return rc == TRAIN_ENOMEM ? rc : train_fail(ctx, "%s", err.text);
	return train_values_put_take(out, "features", v);
}

static int tok_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	tokenizer *tz = self;
	const train_value *nv = train_values_get(in, "nlu");
	train_rasa_nlu *nlu = NULL;
	train_features *f = NULL;
	train_error err = { 0 };
	tokvec tv = { 0 };
	int rc;
	if (!nv || strcmp(train_value_type(nv), TRAIN_RASA_NLU_TYPE) != 0)
		return train_fail(ctx, "input 'nlu' must be NLU training data (%s), not %s",
		                  TRAIN_RASA_NLU_TYPE, nv ? train_value_type(nv) : "nothing");
	if ((rc = train_rasa_nlu_from_value(nv, &nlu, &err))) {
		rc = rc == TRAIN_ENOMEM ? rc : train_fail(ctx, "input 'nlu': %s", err.text);
		goto out;
	}
	if ((rc = train_features_from_nlu(nlu, &f)))
		goto out;
	if (tz->kind == K_WORDPIECE && train_ctx_finetuning(ctx) && tz->trained) {
		/* finetuning keeps the vocabulary: its ids are what the models after it learned */
		train_log(ctx, TRAIN_LOG_INFO, "finetuning: the %zu vocabulary entries are kept", tz->n_voc);
	} else if (tz->kind == K_WORDPIECE) {
		for (size_t i = 0; i < tz->n_voc; i++)
			free(tz->voc[i]);
		tz->n_voc = 0;
		strmap_free(&tz->vmap);
		if ((rc = wp_train_vocab(tz, f, ctx)))
			goto out;
		tz->trained = true;
		train_log(ctx, TRAIN_LOG_INFO, "%zu vocabulary entries", tz->n_voc);
	}
	for (size_t m = 0; m < f->n_messages && !rc; m++) {
		const train_feat_message *msg = &f->messages[m];
		if (!msg->text_len)
			continue; /* Rasa does not tokenize an empty text in training */
		if (!(rc = tokenize(tz, msg->text, msg->text_len, &tv)))
			rc = train_features_set_tokens(f, m, tv.v, tv.n);
		tv_free(&tv);
	}
	if (!rc)
		rc = set_intent_tokens(tz, f);
	if (!rc)
		rc = put_features(f, out, ctx);
out:
	if (rc == TRAIN_EINVAL)
		rc = train_fail(ctx, "token_pattern: the pattern took too many steps on a token");
	tv_free(&tv);
	train_features_free(f);
	train_rasa_nlu_free(nlu);
	return rc;
}

static int tok_process(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	tokenizer *tz = self;
	const train_value *tv_in = train_values_get(in, "text");
	train_features *f = NULL;
	tokvec tv = { 0 };
	size_t idx = 0;
	int rc;
	if (!tz->trained)
		return train_fail(ctx, "not trained: process needs a vocabulary from train or load");
	if (!tv_in || strncmp(train_value_type(tv_in), TEXT_TYPE, strlen(TEXT_TYPE)) != 0)
		return train_fail(ctx, "input 'text' must be %s, not %s", TEXT_TYPE,
		                  tv_in ? train_value_type(tv_in) : "nothing");
	size_t len = train_value_size(tv_in);
	char *text = malloc(len + 1);
	if (!text)
		return TRAIN_ENOMEM;
	if (len)
		memcpy(text, train_value_data(tv_in), len);
	text[len] = '\0';
	if (strlen(text) != len) {
		rc = train_fail(ctx, "input 'text' holds a NUL byte");
		goto out;
	}
	if ((rc = train_features_create(&f)))
		goto out;
	if ((rc = train_features_add_message(f, text, NULL, &idx))) {
		if (rc == TRAIN_EINVAL)
			rc = train_fail(ctx, "input 'text' is not valid UTF-8");
		goto out;
	}
	if (!(rc = tokenize(tz, text, len, &tv)))
		rc = train_features_set_tokens(f, idx, tv.v, tv.n);
	if (rc == TRAIN_EINVAL)
		rc = train_fail(ctx, "token_pattern: the pattern took too many steps on a token");
	if (!rc)
		rc = put_features(f, out, ctx);
out:
	tv_free(&tv);
	train_features_free(f);
	free(text);
	return rc;
}

/* ---- persist / load --------------------------------------------------------- */

static int ws_persist(void *self, train_resource *res)
{
	(void)self;
	(void)res;
	return TRAIN_OK; /* rules, not state */
}

static int ws_load(const train_config *c, const train_resource *res, train_ctx *ctx, void **self)
{
	(void)res;
	return ws_create(c, ctx, self);
}

static int wp_persist(void *self, train_resource *res)
{
	tokenizer *tz = self;
	if (!tz->trained)
		return TRAIN_EINVAL;
	size_t size = 0;
	for (size_t i = 0; i < tz->n_voc; i++)
		size += strlen(tz->voc[i]) + 1;
	char *buf = malloc(size + 1), *p = buf;
	if (!buf)
		return TRAIN_ENOMEM;
	for (size_t i = 0; i < tz->n_voc; i++) {
		size_t l = strlen(tz->voc[i]);
		memcpy(p, tz->voc[i], l);
		p[l] = '\n';
		p += l + 1;
	}
	int rc = train_resource_write(res, "vocab.txt", buf, size);
	free(buf);
	return rc;
}

static int wp_load(const train_config *c, const train_resource *res, train_ctx *ctx, void **self)
{
	void *data = NULL;
	size_t size = 0;
	int rc = wp_create(c, ctx, self);
	if (rc)
		return rc;
	tokenizer *tz = *self;
	if ((rc = train_resource_read(res, "vocab.txt", &data, &size))) {
		rc = train_fail(ctx, "vocab.txt: %s", train_strerror(rc));
		goto out;
	}
	const char *s = data, *end = s + size;
	if (size && end[-1] != '\n') {
		rc = train_fail(ctx, "vocab.txt: the last line has no newline (a cut file?)");
		goto out;
	}
	if (memchr(s, '\0', size)) {
		rc = train_fail(ctx, "vocab.txt: a NUL byte");
		goto out;
	}
	for (size_t line = 1; s < end; line++) {
		const char *nl = memchr(s, '\n', (size_t)(end - s));
		size_t before = tz->n_voc;
		int32_t id;
		if ((rc = voc_add(tz, s, (size_t)(nl - s), &id)))
			goto out;
		if (tz->n_voc == before) {
			rc = train_fail(ctx, "vocab.txt:%zu: '%.*s' is there twice", line, (int)(nl - s), s);
			goto out;
		}
		s = nl + 1;
	}
	strmap_entry *u = strmap_get(&tz->vmap, tz->unk, strlen(tz->unk));
	if (!u) {
		rc = train_fail(ctx, "vocab.txt: no unk_token '%s'", tz->unk);
		goto out;
	}
	tz->unk_id = (int32_t)u->value;
	tz->trained = true;
out:
	free(data);
	if (rc) {
		tok_destroy(tz);
		*self = NULL;
	}
	return rc;
}

/* ---- classes ------------------------------------------------------------------ */

static const train_component_class whitespace_class = {
	.struct_size = sizeof(train_component_class),
	.name = "WhitespaceTokenizer",
	.version = "1",
	.doc = "Rasa's WhitespaceTokenizer: NLU data or a text -> messages with tokens",
	.inputs = nlu_inputs,
	.outputs = features_outputs,
	.process_inputs = text_inputs,
	.process_outputs = features_outputs,
	.params = base_params,
	.create = ws_create,
	.train = tok_train,
	.process = tok_process,
	.persist = ws_persist,
	.load = ws_load,
	.destroy = tok_destroy,
};

static const train_component_class wordpiece_class = {
	.struct_size = sizeof(train_component_class),
	.name = "WordPieceTokenizer",
	.version = "1",
	.doc = "A WordPiece vocabulary learned from the NLU data; messages with subword tokens and ids",
	.inputs = nlu_inputs,
	.outputs = features_outputs,
	.process_inputs = text_inputs,
	.process_outputs = features_outputs,
	.params = wordpiece_params,
	.create = wp_create,
	.train = tok_train,
	.process = tok_process,
	.persist = wp_persist,
	.load = wp_load,
	.destroy = tok_destroy,
};

static const train_component_class *const tokenizer_classes[] = {
	&whitespace_class,
	&wordpiece_class,
	NULL,
};

TRAIN_PLUGIN_DEFINE("tokenizers", "1.0.0", "MIT",
                    "WhitespaceTokenizer (Rasa's rules), WordPieceTokenizer (trainable subwords)",
                    tokenizer_classes);
