/*
 * plugins/basic/basic.c - the "basic" plugin: a small but real intent
 * classifier in three components, which the quick start trains.
 *
 *   TextFile    reads labelled examples ("label<TAB>text" lines) or plain
 *               lines from a file, checks them and emits them normalized.
 *   Tokenizer   splits text into maximal runs of alphanumeric bytes
 *               (optionally lower-cased); works on whole example sets at
 *               training time and on one text at prediction time.
 *   NaiveBayes  a multinomial Naive Bayes classifier over those tokens,
 *               with Lidstone smoothing; persists a versioned text model
 *               and predicts an intent with a ranking of the top 5.
 *
 * What it leaves out: no stemming, stop words, n-grams or Unicode case
 * folding (only ASCII is lower-cased; every byte >= 0x80 counts as a letter,
 * so non-ASCII punctuation stays inside tokens); no entities; no
 * incremental finetuning (Naive Bayes is closed-form, so finetuning simply
 * refits on the data it is given); no "out of scope" threshold (the top
 * class always wins, even for text with no known token, where the priors
 * decide).  It exists to exercise the whole pipeline - files, caching,
 * persist/load, prediction - with something small enough to read.
 *
 * Inputs and outputs, by component (all values are bytes; text is UTF-8):
 *
 *   TextFile    -> examples  text/tab-separated-values  "label\ttext\n" per example
 *                            text/plain                 "text\n" per line (format: lines)
 *   Tokenizer   text -> tokens
 *                  train, from examples (TSV):   TSV, "label\ttok tok tok\n" per example
 *                  process, from one text:       text/plain, "tok tok tok"
 *   NaiveBayes  tokens -> report (train)   application/json {"classes": [...],
 *                          "examples": N, "vocabulary_size": V, "training_accuracy": A}
 *               tokens -> intent (process) application/json {"intent": {"name": ...,
 *                          "confidence": ...}, "ranking": [{"name": ..., "confidence": ...}]}
 *
 * The host connects every declared input and wants every declared output
 * from train(), so the Tokenizer has one input for both schemas, told apart
 * by content type, and NaiveBayes declares only "report".
 *
 * Threads: no global mutable state; every call works on its own instance.
 * Numbers are written and read with printf/strtod, which assume the "C"
 * numeric locale (the `train` program never calls setlocale).
 */
#include <train/plugin.h>

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TSV_TYPE  "text/tab-separated-values"
#define TEXT_TYPE "text/plain"
#define JSON_TYPE "application/json"

/* ------------------------------------------------------------------------ */
/* helpers: a growable buffer, lines, bytes, paths */

/*
 * A growable, always NUL-terminated byte buffer.  Allocation failure is
 * sticky (`failed`), so a run of appends is checked once at the end.
 */
typedef struct sbuf {
	char *data;
	size_t len, cap;
	int failed;
} sbuf;

static int sb_grow(sbuf *b, size_t extra)
{
	if (b->failed)
		return -1;
	if (extra >= SIZE_MAX - b->len - 1) {
		b->failed = 1;
		return -1;
	}
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	char *p = realloc(b->data, cap);
	if (!p) {
		b->failed = 1;
		return -1;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

static void sb_add(sbuf *b, const void *p, size_t n)
{
	if (sb_grow(b, n))
		return;
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }
static void sb_char(sbuf *b, char c) { sb_add(b, &c, 1); }

TRAIN_PRINTF(2, 3)
static void sb_printf(sbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->failed = 1;
		return;
	}
	if (sb_grow(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static void sb_free(sbuf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

/* A JSON string literal for `s` (which must be valid UTF-8). */
static void sb_json_str(sbuf *b, const char *s)
{
	sb_char(b, '"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			sb_char(b, '\\');
			sb_char(b, (char)c);
		} else if (c == '\n') {
			sb_str(b, "\\n");
		} else if (c == '\t') {
			sb_str(b, "\\t");
		} else if (c < 0x20 || c == 0x7f) {
			sb_printf(b, "\\u%04x", c);
		} else {
			sb_char(b, (char)c);
		}
	}
	sb_char(b, '"');
}

/* Hand the buffer over to a new value named `name` in `out`; empties `b`. */
static int sb_put(sbuf *b, train_values *out, const char *name, const char *type)
{
	if (b->failed) {
		sb_free(b);
		return TRAIN_ENOMEM;
	}
	train_value *v;
	int rc = train_value_new_take(type, b->data, b->len, &v);
	memset(b, 0, sizeof *b);
	if (rc)
		return rc;
	return train_values_put_take(out, name, v);
}

static char *xstrndup(const char *s, size_t n)
{
	char *p = malloc(n + 1);
	if (p) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

static char *xstrdup(const char *s) { return xstrndup(s, strlen(s)); }

/* A mutable, NUL-terminated copy of a value's bytes (NULL: out of memory). */
static char *value_text(const train_value *v, size_t *size)
{
	*size = train_value_size(v);
	return xstrndup(*size ? train_value_data(v) : "", *size);
}

static int is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Token bytes: ASCII letters and digits, and every byte of a multi-byte
 * UTF-8 sequence (so "café" and "日本" are single tokens). */
static int is_word_byte(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       c >= 0x80;
}

static int has_space(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (is_space((unsigned char)s[i]))
			return 1;
	return 0;
}

/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static int utf8_valid(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i], cp, min;
		size_t k;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			k = 2, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (n - i - 1 < k)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += k + 1;
	}
	return 1;
}

/* Strip ASCII white space from both ends of s[0..*n); NUL-terminates in place. */
static char *trim(char *s, size_t *n)
{
	while (*n && is_space((unsigned char)s[0]))
		s++, (*n)--;
	while (*n && is_space((unsigned char)s[*n - 1]))
		(*n)--;
	s[*n] = '\0';
	return s;
}

/*
 * Lines of a mutable buffer whose byte at `end` is writable (a NUL from
 * xstrndup or sbuf).  Each line is NUL-terminated in place, without its
 * "\n" or "\r\n"; `no` is the 1-based number of the line last returned.
 */
typedef struct line_iter {
	char *p, *end;
	unsigned no;
} line_iter;

static char *next_line(line_iter *it, size_t *len)
{
	if (it->p >= it->end)
		return NULL;
	char *line = it->p;
	char *nl = memchr(line, '\n', (size_t)(it->end - line));
	char *stop = nl ? nl : it->end;
	it->p = nl ? nl + 1 : it->end;
	it->no++;
	if (stop > line && stop[-1] == '\r')
		stop--;
	*stop = '\0';
	*len = (size_t)(stop - line);
	return line;
}

/* Read a whole file into `b`; failures are reported through train_fail. */
static int read_file(const char *path, sbuf *b, train_ctx *ctx)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return train_fail(ctx, "%s: cannot open: %s", path, strerror(errno));
	int rc = TRAIN_OK;
	for (;;) {
		if (sb_grow(b, 1 << 16)) {
			rc = TRAIN_ENOMEM;
			break;
		}
		size_t n = fread(b->data + b->len, 1, b->cap - b->len - 1, f);
		b->len += n;
		b->data[b->len] = '\0';
		if (n == 0)
			break;
	}
	if (!rc && ferror(f))
		rc = train_fail(ctx, "%s: read failed: %s", path, strerror(errno));
	fclose(f);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* TextFile: labelled examples or plain lines from a file */

typedef struct textfile {
	char *path;  /* as configured */
	int lines;   /* format: lines (else tsv) */
} textfile;

static const train_param textfile_params[] = {
	{ "path", TRAIN_PARAM_PATH, NULL,
	  "the file to read: relative to the recipe's folder, or $data (--data FILE)" },
	{ "format", TRAIN_PARAM_STRING, "tsv",
	  "\"tsv\": one \"label<TAB>text\" example per line; \"lines\": one text per line. "
	  "Blank lines and lines starting with '#' are skipped in both" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};
static const char *const textfile_outputs[] = { "examples", NULL };

static void textfile_destroy(void *self)
{
	textfile *t = self;
	if (t) {
		free(t->path);
		free(t);
	}
}

static int textfile_create(const train_config *config, train_ctx *ctx, void **self)
{
	*self = NULL;
	const char *path = train_config_string(config, "path");
	const char *format = train_config_string(config, "format");
	if (!path || !path[0])
		return train_fail(ctx, "path: a file name is required");
	if (!format || (strcmp(format, "tsv") && strcmp(format, "lines")))
		return train_fail(ctx, "format: expected \"tsv\" or \"lines\", got \"%s\"",
		                  format ? format : "");
	textfile *t = calloc(1, sizeof *t);
	if (!t || !(t->path = xstrdup(path))) {
		free(t);
		return TRAIN_ENOMEM;
	}
	t->lines = !strcmp(format, "lines");
	*self = t;
	return TRAIN_OK;
}

/*
 * Check one non-blank, non-comment tsv line and append it normalized:
 * label and text trimmed, further tabs in the text turned into spaces.
 */
static int textfile_tsv_line(const char *path, unsigned no, char *s, size_t len, sbuf *out,
                             train_ctx *ctx)
{
	char *tab = memchr(s, '\t', len);
	if (!tab)
		return train_fail(ctx, "%s:%u: expected label<TAB>text", path, no);
	size_t llen = (size_t)(tab - s), tlen = len - llen - 1;
	char *text = trim(tab + 1, &tlen);
	char *label = trim(s, &llen);
	if (!llen || !tlen)
		return train_fail(ctx, "%s:%u: expected label<TAB>text (the %s is empty)", path, no,
		                  llen ? "text" : "label");
	if (has_space(label, llen))
		return train_fail(ctx, "%s:%u: the label \"%s\" contains white space", path, no, label);
	for (size_t i = 0; i < tlen; i++)
		if (is_space((unsigned char)text[i]))
			text[i] = ' ';
	sb_add(out, label, llen);
	sb_char(out, '\t');
	sb_add(out, text, tlen);
	sb_char(out, '\n');
	return TRAIN_OK;
}

static int textfile_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	textfile *t = self;
	sbuf file = { 0 }, norm = { 0 };
	size_t n_examples = 0;
	int rc;
	(void)in;

	/* The same file the host fingerprinted: relative to the recipe, or
	 * under $data / $domain. */
	char *path = train_ctx_resolve(ctx, t->path);
	if (!path)
		return t->path[0] == '$' ? train_fail(ctx, "path: %s needs the matching command-line "
		                                      "option (--data, --domain)", t->path)
		                         : TRAIN_ENOMEM;
	if ((rc = read_file(path, &file, ctx)))
		goto out;

	line_iter it = { file.data, file.data + file.len, 0 };
	char *line;
	size_t len;
	while ((line = next_line(&it, &len))) {
		if (strlen(line) != len) {
			rc = train_fail(ctx, "%s:%u: contains a NUL byte", path, it.no);
			goto out;
		}
		if (!utf8_valid(line, len)) {
			rc = train_fail(ctx, "%s:%u: not valid UTF-8", path, it.no);
			goto out;
		}
		char *s = trim(line, &len);
		if (!len || s[0] == '#')
			continue;
		if (t->lines) {
			sb_add(&norm, s, len);
			sb_char(&norm, '\n');
		} else if ((rc = textfile_tsv_line(path, it.no, s, len, &norm, ctx))) {
			goto out;
		}
		n_examples++;
	}
	if (!n_examples) {
		rc = train_fail(ctx, "%s: no %s (the file is empty or has only blank lines and comments)",
		                path, t->lines ? "lines" : "examples");
		goto out;
	}
	if ((rc = sb_put(&norm, out, "examples", t->lines ? TEXT_TYPE : TSV_TYPE)))
		goto out;
	train_log(ctx, TRAIN_LOG_INFO, "read %zu %s from %s", n_examples,
	          t->lines ? "lines" : "examples", path);
out:
	sb_free(&file);
	sb_free(&norm);
	free(path);
	return rc;
}

/* The examples live in the cache and in the graph, not in the model. */
static int textfile_persist(void *self, train_resource *res)
{
	(void)self;
	(void)res;
	return TRAIN_OK;
}

static int textfile_load(const train_config *config, const train_resource *res, train_ctx *ctx,
                         void **self)
{
	(void)res;
	return textfile_create(config, ctx, self);
}

static const train_component_class textfile_class = {
	.struct_size = sizeof(train_component_class),
	.name = "TextFile",
	.version = "1",
	.doc = "Read labelled examples (label<TAB>text) or plain lines from a file",
	.inputs = NULL,
	.outputs = textfile_outputs,
	.params = textfile_params,
	.create = textfile_create,
	.fingerprint = NULL, /* the host hashes the content of PATH params */
	.train = textfile_train,
	.process = NULL,
	.persist = textfile_persist,
	.load = textfile_load,
	.destroy = textfile_destroy,
};

/* ------------------------------------------------------------------------ */
/* Tokenizer: text -> space-separated tokens */

typedef struct tokenizer {
	int lowercase;
	size_t min_len; /* in characters (UTF-8 code points) */
} tokenizer;

static const train_param tokenizer_params[] = {
	{ "lowercase", TRAIN_PARAM_BOOL, "true", "lower-case ASCII letters" },
	{ "min_token_length", TRAIN_PARAM_INT, "1",
	  "drop tokens shorter than this many characters (>= 1)" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};
/* One input for both schemas (the host wants every declared input
 * connected): examples (TSV) when training, one text when predicting. */
static const char *const tokenizer_inputs[] = { "text", NULL };
static const char *const tokenizer_outputs[] = { "tokens", NULL };

/* The settings a trained tokenizer keeps, so that prediction splits text
 * exactly as training did. */
#define TOKENIZER_FILE  "tokenizer.txt"
#define TOKENIZER_MAGIC "libtrain-tokenizer 1"

static void tokenizer_destroy(void *self) { free(self); }

static int tokenizer_make(int lowercase, int64_t min_len, train_ctx *ctx, void **self)
{
	*self = NULL;
	if (min_len < 1)
		return train_fail(ctx, "min_token_length: must be >= 1, got %lld", (long long)min_len);
	tokenizer *t = calloc(1, sizeof *t);
	if (!t)
		return TRAIN_ENOMEM;
	t->lowercase = lowercase;
	t->min_len = (uint64_t)min_len > SIZE_MAX ? SIZE_MAX : (size_t)min_len;
	*self = t;
	return TRAIN_OK;
}

static int tokenizer_create(const train_config *config, train_ctx *ctx, void **self)
{
	return tokenizer_make(train_config_bool(config, "lowercase"),
	                      train_config_int(config, "min_token_length"), ctx, self);
}

/* Append the tokens of s[0..n) to `out`, space-separated; returns how many. */
static size_t tokenize(const tokenizer *t, const char *s, size_t n, sbuf *out)
{
	size_t i = 0, count = 0;
	while (i < n) {
		while (i < n && !is_word_byte((unsigned char)s[i]))
			i++;
		size_t start = i, chars = 0;
		while (i < n && is_word_byte((unsigned char)s[i])) {
			if (((unsigned char)s[i] & 0xc0) != 0x80)
				chars++;
			i++;
		}
		if (i == start || chars < t->min_len)
			continue;
		if (count++)
			sb_char(out, ' ');
		size_t at = out->len;
		sb_add(out, s + start, i - start);
		if (t->lowercase && !out->failed)
			for (char *p = out->data + at; *p; p++)
				if (*p >= 'A' && *p <= 'Z')
					*p = (char)(*p - 'A' + 'a');
	}
	return count;
}

/*
 * Input `text` of type text/tab-separated-values (labelled examples) ->
 * tokens of the same type, one "label<TAB>tokens" line per example; of any
 * other type (one text) -> its tokens as text/plain.
 */
static int tokenizer_run(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	const tokenizer *t = self;
	const train_value *text = train_values_get(in, "text");
	sbuf b = { 0 };
	size_t size;
	int rc = TRAIN_OK;

	if (!text)
		return train_fail(ctx, "no input \"text\"");
	if (strcmp(train_value_type(text), TSV_TYPE)) {
		char *s = value_text(text, &size);
		if (!s)
			return TRAIN_ENOMEM;
		tokenize(t, s, size, &b);
		free(s);
		return sb_put(&b, out, "tokens", TEXT_TYPE);
	}

	char *data = value_text(text, &size);
	if (!data)
		return TRAIN_ENOMEM;
	line_iter it = { data, data + size, 0 };
	char *line;
	size_t len;
	while ((line = next_line(&it, &len))) {
		char *tab = memchr(line, '\t', len);
		if (!tab) {
			if (!*trim(line, &len))
				continue; /* blank */
			rc = train_fail(ctx, "text:%u: expected label<TAB>text", it.no);
			goto out;
		}
		sb_add(&b, line, (size_t)(tab - line));
		sb_char(&b, '\t');
		tokenize(t, tab + 1, len - (size_t)(tab - line) - 1, &b);
		sb_char(&b, '\n');
		if ((it.no & 4095) == 0 && train_ctx_canceled(ctx)) {
			rc = TRAIN_ECANCELED;
			goto out;
		}
	}
	rc = sb_put(&b, out, "tokens", TSV_TYPE);
out:
	sb_free(&b);
	free(data);
	return rc;
}

static int tokenizer_persist(void *self, train_resource *res)
{
	const tokenizer *t = self;
	char text[128];
	int n = snprintf(text, sizeof text, TOKENIZER_MAGIC "\nlowercase %s\nmin_token_length %zu\n",
	                 t->lowercase ? "true" : "false", t->min_len);
	return train_resource_write(res, TOKENIZER_FILE, text, (size_t)n);
}

/* The settings from tokenizer.txt; a model without that file (written by
 * hand, say) falls back to the config. */
static int tokenizer_load(const train_config *config, const train_resource *res, train_ctx *ctx,
                          void **self)
{
	void *data = NULL;
	size_t size;
	*self = NULL;
	int rc = train_resource_read(res, TOKENIZER_FILE, &data, &size);
	if (rc == TRAIN_ENOTFOUND)
		return tokenizer_create(config, ctx, self);
	if (rc)
		return train_fail(ctx, TOKENIZER_FILE ": cannot read: %s", train_strerror(rc));

	line_iter it = { data, (char *)data + size, 0 };
	char *line, *end;
	size_t len;
	int lowercase;
	long long min_len;
	if (strlen(data) != size) {
		rc = train_fail(ctx, TOKENIZER_FILE ": contains a NUL byte");
		goto out;
	}
	if (!(line = next_line(&it, &len)) || strcmp(line, TOKENIZER_MAGIC)) {
		rc = train_fail(ctx, TOKENIZER_FILE ":1: expected \"" TOKENIZER_MAGIC "\"");
		goto out;
	}
	if (!(line = next_line(&it, &len)) ||
	    (strcmp(line, "lowercase true") && strcmp(line, "lowercase false"))) {
		rc = train_fail(ctx, TOKENIZER_FILE ":2: expected \"lowercase true|false\"");
		goto out;
	}
	lowercase = !strcmp(line, "lowercase true");
	if (!(line = next_line(&it, &len)) || strncmp(line, "min_token_length ", 17) ||
	    line[17] < '1' || line[17] > '9') {
		rc = train_fail(ctx, TOKENIZER_FILE ":3: expected \"min_token_length N\" (N >= 1)");
		goto out;
	}
	errno = 0;
	min_len = strtoll(line + 17, &end, 10);
	if (*end || errno) {
		rc = train_fail(ctx, TOKENIZER_FILE ":3: expected \"min_token_length N\" (N >= 1)");
		goto out;
	}
	if (next_line(&it, &len)) {
		rc = train_fail(ctx, TOKENIZER_FILE ":%u: unexpected line after the settings", it.no);
		goto out;
	}
	rc = tokenizer_make(lowercase, min_len, ctx, self);
out:
	free(data);
	return rc;
}

static const train_component_class tokenizer_class = {
	.struct_size = sizeof(train_component_class),
	.name = "Tokenizer",
	.version = "1",
	.doc = "Split text into lower-cased alphanumeric tokens (examples TSV or one text)",
	.inputs = tokenizer_inputs,
	.outputs = tokenizer_outputs,
	.params = tokenizer_params,
	.create = tokenizer_create,
	.fingerprint = NULL,
	.train = tokenizer_run,
	.process = tokenizer_run,
	.persist = tokenizer_persist,
	.load = tokenizer_load,
	.destroy = tokenizer_destroy,
};

/* ------------------------------------------------------------------------ */
/* NaiveBayes: multinomial Naive Bayes over tokens
 *
 * Legend: C classes, V vocabulary tokens, N training examples.
 * For class c and token w, with count(c, w) the occurrences of w in the
 * examples of class c and total(c) = sum over the vocabulary of count(c, w):
 *
 *   log_prior[c]    = log(examples of c / N)
 *   log_lik[c, w]   = log((count(c, w) + alpha) / (total(c) + alpha * V))
 *   score(c | text) = log_prior[c] + sum over the text's tokens w in the
 *                     vocabulary of log_lik[c, w]   (unknown tokens: ignored)
 *
 * and confidences are the softmax of the scores.
 */

#define NB_FILE    "naive_bayes.txt"
#define NB_MAGIC   "libtrain-naive-bayes"
#define NB_VERSION 1
#define NB_RANKING 5 /* classes listed in "ranking" */

typedef struct nb_model {
	size_t n_classes, n_vocab;
	char **classes;     /* (C) sorted bytewise, unique */
	double *log_prior;  /* (C) */
	char **vocab;       /* (V) sorted bytewise, unique */
	double *log_lik;    /* (C, V) */
} nb_model;

typedef struct naive_bayes {
	double alpha;
	int64_t min_count;
	int64_t epochs;
	int trained;
	nb_model m;
} naive_bayes;

static const train_param nb_params[] = {
	{ "alpha", TRAIN_PARAM_FLOAT, "1.0",
	  "additive (Laplace/Lidstone) smoothing of token counts; > 0" },
	{ "min_count", TRAIN_PARAM_INT, "1",
	  "drop tokens seen fewer times than this in all the examples (>= 1)" },
	{ "epochs", TRAIN_PARAM_INT, "1",
	  "accepted for finetuning's epoch fraction; Naive Bayes is closed-form and "
	  "always fits in one pass (>= 0)" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};
static const char *const nb_inputs[] = { "tokens", NULL };
static const char *const nb_outputs[] = { "report", NULL };
/* Training reports on the fit; prediction gives the intent. */
static const char *const nb_process_outputs[] = { "intent", NULL };

static void nb_model_free(nb_model *m)
{
	if (m->classes)
		for (size_t c = 0; c < m->n_classes; c++)
			free(m->classes[c]);
	if (m->vocab)
		for (size_t v = 0; v < m->n_vocab; v++)
			free(m->vocab[v]);
	free(m->classes);
	free(m->log_prior);
	free(m->vocab);
	free(m->log_lik);
	memset(m, 0, sizeof *m);
}

static void nb_destroy(void *self)
{
	naive_bayes *nb = self;
	if (nb) {
		nb_model_free(&nb->m);
		free(nb);
	}
}

static int nb_create(const train_config *config, train_ctx *ctx, void **self)
{
	*self = NULL;
	double alpha = train_config_float(config, "alpha");
	int64_t min_count = train_config_int(config, "min_count");
	int64_t epochs = train_config_int(config, "epochs");
	if (!(alpha > 0) || !isfinite(alpha))
		return train_fail(ctx, "alpha: must be > 0, got %g", alpha);
	if (min_count < 1)
		return train_fail(ctx, "min_count: must be >= 1, got %lld", (long long)min_count);
	if (epochs < 0)
		return train_fail(ctx, "epochs: must be >= 0, got %lld", (long long)epochs);
	naive_bayes *nb = calloc(1, sizeof *nb);
	if (!nb)
		return TRAIN_ENOMEM;
	nb->alpha = alpha;
	nb->min_count = min_count;
	nb->epochs = epochs;
	*self = nb;
	return TRAIN_OK;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_key_str(const void *key, const void *elem)
{
	return strcmp(key, *(const char *const *)elem);
}

/* Index of `s` in a sorted string array, or -1. */
static long find_str(char *const *v, size_t n, const char *s)
{
	char *const *hit = n ? bsearch(s, v, n, sizeof *v, cmp_key_str) : NULL;
	return hit ? (long)(hit - v) : -1;
}

/* log(sum(exp(x))) of x[0..n), n >= 1. */
static double log_sum_exp(const double *x, size_t n, size_t stride)
{
	double max = x[0];
	for (size_t i = 1; i < n; i++)
		if (x[i * stride] > max)
			max = x[i * stride];
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += exp(x[i * stride] - max);
	return max + log(sum);
}

/*
 * scores (C) = log_prior + sum of log_lik over the tokens in `toks` (n
 * tokens, vocabulary indices, -1 for unknown).  Returns the arg max; ties go
 * to the bytewise-first class.
 */
static size_t nb_score(const nb_model *m, const long *toks, size_t n, double *scores)
{
	size_t best = 0;
	for (size_t c = 0; c < m->n_classes; c++) {
		double s = m->log_prior[c];
		const double *row = m->log_lik + c * m->n_vocab;
		for (size_t i = 0; i < n; i++)
			if (toks[i] >= 0)
				s += row[toks[i]];
		scores[c] = s;
		if (s > scores[best])
			best = c;
	}
	return best;
}

/* One training example while fitting: its class and its tokens. */
typedef struct nb_doc {
	const char *label;
	size_t cls;
	size_t first, n_tokens; /* into the token array */
} nb_doc;

/* A token occurrence, sorted by (token, class) to count without a hash table. */
typedef struct nb_occ {
	const char *tok;
	size_t cls;
} nb_occ;

static int cmp_occ(const void *a, const void *b)
{
	const nb_occ *x = a, *y = b;
	int d = strcmp(x->tok, y->tok);
	if (d)
		return d;
	return (x->cls > y->cls) - (x->cls < y->cls);
}

/* Split the TSV tokens value into examples and token pointers (in place). */
static int nb_parse_tokens(char *data, size_t size, nb_doc **docs_out, size_t *n_docs_out,
                           const char ***toks_out, size_t *n_toks_out, train_ctx *ctx)
{
	nb_doc *docs = NULL;
	const char **toks = NULL;
	size_t n_docs = 0, cap_docs = 0, n_toks = 0, cap_toks = 0;
	int rc = TRAIN_OK;
	line_iter it = { data, data + size, 0 };
	char *line;
	size_t len;

	while ((line = next_line(&it, &len))) {
		char *tab = memchr(line, '\t', len);
		if (!tab) {
			if (!*trim(line, &len))
				continue; /* blank */
			rc = train_fail(ctx, "tokens:%u: expected label<TAB>tokens", it.no);
			goto out;
		}
		*tab = '\0';
		size_t llen = (size_t)(tab - line);
		if (!llen || has_space(line, llen) || !utf8_valid(line, llen)) {
			rc = train_fail(ctx, "tokens:%u: the label must be non-empty UTF-8 without white "
			                "space", it.no);
			goto out;
		}
		if (n_docs == cap_docs) {
			size_t cap = cap_docs ? 2 * cap_docs : 256;
			nb_doc *p = realloc(docs, cap * sizeof *p);
			if (!p) {
				rc = TRAIN_ENOMEM;
				goto out;
			}
			docs = p, cap_docs = cap;
		}
		nb_doc *d = &docs[n_docs++];
		d->label = line;
		d->first = n_toks;
		d->n_tokens = 0;
		for (char *p = tab + 1; *p;) {
			while (*p && is_space((unsigned char)*p))
				p++;
			if (!*p)
				break;
			char *start = p;
			while (*p && !is_space((unsigned char)*p))
				p++;
			if (*p)
				*p++ = '\0';
			if (n_toks == cap_toks) {
				size_t cap = cap_toks ? 2 * cap_toks : 1024;
				const char **q = realloc(toks, cap * sizeof *q);
				if (!q) {
					rc = TRAIN_ENOMEM;
					goto out;
				}
				toks = q, cap_toks = cap;
			}
			toks[n_toks++] = start;
			d->n_tokens++;
		}
	}
out:
	if (rc) {
		free(docs);
		free(toks);
		return rc;
	}
	*docs_out = docs, *n_docs_out = n_docs;
	*toks_out = toks, *n_toks_out = n_toks;
	return TRAIN_OK;
}

/* Fit `m` from the examples; `m` must be empty. */
static int nb_fit(const naive_bayes *nb, const nb_doc *docs, size_t n_docs, const char **toks,
                  size_t n_toks, nb_model *m)
{
	const char **labels = NULL;
	nb_occ *occ = NULL;
	double *counts = NULL, *totals = NULL, *class_docs = NULL;
	int rc = TRAIN_ENOMEM;

	/* classes: the distinct labels, sorted */
	if (!(labels = malloc(n_docs * sizeof *labels)))
		goto out;
	for (size_t i = 0; i < n_docs; i++)
		labels[i] = docs[i].label;
	qsort(labels, n_docs, sizeof *labels, cmp_str);
	size_t C = 0;
	for (size_t i = 0; i < n_docs; i++)
		if (!C || strcmp(labels[C - 1], labels[i]))
			labels[C++] = labels[i];
	if (!(m->classes = calloc(C, sizeof *m->classes)))
		goto out;
	for (size_t c = 0; c < C; c++) {
		if (!(m->classes[c] = xstrdup(labels[c])))
			goto out;
		m->n_classes = c + 1;
	}

	/* occurrences, sorted: each run of one token is its counts per class */
	if (!(occ = malloc((n_toks ? n_toks : 1) * sizeof *occ)))
		goto out;
	for (size_t i = 0; i < n_docs; i++)
		for (size_t j = 0; j < docs[i].n_tokens; j++) {
			occ[docs[i].first + j].tok = toks[docs[i].first + j];
			occ[docs[i].first + j].cls = (size_t)find_str(m->classes, C, docs[i].label);
		}
	qsort(occ, n_toks, sizeof *occ, cmp_occ);
	size_t V = 0;
	for (size_t i = 0; i < n_toks;) {
		size_t j = i;
		while (j < n_toks && !strcmp(occ[j].tok, occ[i].tok))
			j++;
		if ((uint64_t)(j - i) >= (uint64_t)nb->min_count)
			V++;
		i = j;
	}
	if (!(m->vocab = calloc(V ? V : 1, sizeof *m->vocab)) ||
	    !(counts = calloc(C * (V ? V : 1), sizeof *counts)) ||
	    !(totals = calloc(C, sizeof *totals)) || !(class_docs = calloc(C, sizeof *class_docs)) ||
	    !(m->log_prior = malloc(C * sizeof *m->log_prior)) ||
	    !(m->log_lik = malloc(C * (V ? V : 1) * sizeof *m->log_lik)))
		goto out;
	for (size_t i = 0, v = 0; i < n_toks;) {
		size_t j = i;
		while (j < n_toks && !strcmp(occ[j].tok, occ[i].tok))
			j++;
		if ((uint64_t)(j - i) >= (uint64_t)nb->min_count) {
			if (!(m->vocab[v] = xstrdup(occ[i].tok)))
				goto out;
			m->n_vocab = v + 1;
			for (size_t k = i; k < j; k++) {
				counts[occ[k].cls * V + v] += 1;
				totals[occ[k].cls] += 1;
			}
			v++;
		}
		i = j;
	}

	/* probabilities */
	for (size_t i = 0; i < n_docs; i++)
		class_docs[find_str(m->classes, C, docs[i].label)] += 1;
	for (size_t c = 0; c < C; c++) {
		m->log_prior[c] = log(class_docs[c] / (double)n_docs);
		double denom = totals[c] + nb->alpha * (double)V;
		for (size_t v = 0; v < V; v++)
			m->log_lik[c * V + v] = log((counts[c * V + v] + nb->alpha) / denom);
	}
	rc = TRAIN_OK;
out:
	free(labels);
	free(occ);
	free(counts);
	free(totals);
	free(class_docs);
	if (rc)
		nb_model_free(m);
	return rc;
}

static int nb_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	naive_bayes *nb = self;
	const train_value *tokens = train_values_get(in, "tokens");
	nb_doc *docs = NULL;
	const char **toks = NULL;
	long *idx = NULL;
	double *scores = NULL;
	size_t n_docs = 0, n_toks = 0, size;
	nb_model m = { 0 };
	sbuf rep = { 0 };
	char *data = NULL;
	int rc;

	if (!tokens)
		return train_fail(ctx, "no input \"tokens\"");
	if (strcmp(train_value_type(tokens), TSV_TYPE))
		return train_fail(ctx, "input tokens: expected type " TSV_TYPE " (label<TAB>tokens), "
		                  "got %s", train_value_type(tokens));
	if (train_ctx_finetuning(ctx) && nb->trained)
		train_log(ctx, TRAIN_LOG_INFO, "Naive Bayes is closed-form: finetuning refits it on "
		          "the examples given");
	if (!(data = value_text(tokens, &size)))
		return TRAIN_ENOMEM;
	if ((rc = nb_parse_tokens(data, size, &docs, &n_docs, &toks, &n_toks, ctx)))
		goto out;
	if (!n_docs) {
		rc = train_fail(ctx, "no training examples");
		goto out;
	}
	if (train_ctx_canceled(ctx)) {
		rc = TRAIN_ECANCELED;
		goto out;
	}
	if ((rc = nb_fit(nb, docs, n_docs, toks, n_toks, &m)))
		goto out;
	if (!m.n_vocab)
		train_log(ctx, TRAIN_LOG_WARN, "no token seen %lld times or more: the classifier "
		          "will only use the class frequencies", (long long)nb->min_count);

	/* accuracy on the training examples */
	rc = TRAIN_ENOMEM;
	if (!(idx = malloc((n_toks ? n_toks : 1) * sizeof *idx)) ||
	    !(scores = malloc(m.n_classes * sizeof *scores)))
		goto out;
	for (size_t i = 0; i < n_toks; i++)
		idx[i] = find_str(m.vocab, m.n_vocab, toks[i]);
	size_t correct = 0;
	for (size_t i = 0; i < n_docs; i++) {
		size_t best = nb_score(&m, idx + docs[i].first, docs[i].n_tokens, scores);
		correct += !strcmp(m.classes[best], docs[i].label);
	}
	double accuracy = (double)correct / (double)n_docs;

	sb_str(&rep, "{\"classes\": [");
	for (size_t c = 0; c < m.n_classes; c++) {
		if (c)
			sb_str(&rep, ", ");
		sb_json_str(&rep, m.classes[c]);
	}
	sb_printf(&rep, "], \"examples\": %zu, \"vocabulary_size\": %zu, "
	          "\"training_accuracy\": %.6g}", n_docs, m.n_vocab, accuracy);
	if ((rc = sb_put(&rep, out, "report", JSON_TYPE)))
		goto out;
	train_log(ctx, TRAIN_LOG_INFO, "%zu examples, %zu classes, %zu tokens in the vocabulary; "
	          "training accuracy %.1f%%", n_docs, m.n_classes, m.n_vocab, 100 * accuracy);
	train_progress(ctx, 1, 1);

	nb_model_free(&nb->m);
	nb->m = m;
	memset(&m, 0, sizeof m);
	nb->trained = 1;
out:
	nb_model_free(&m);
	sb_free(&rep);
	free(scores);
	free(idx);
	free(docs);
	free(toks);
	free(data);
	return rc;
}

/* ---- the model file ------------------------------------------------------
 *
 *   libtrain-naive-bayes 1
 *   alpha 1
 *   min_count 1
 *   classes C
 *   <class>\t<log prior>              C lines, classes sorted bytewise
 *   vocabulary V
 *   <token>                           V lines, sorted bytewise
 *   likelihoods
 *   <class>\t<ll_1> <ll_2> ... <ll_V>  C lines, in class order
 *   end
 *
 * Numbers are "%.17g" (they read back to the same double), so the same
 * examples and config give the same bytes.
 */

static int nb_persist(void *self, train_resource *res)
{
	const naive_bayes *nb = self;
	const nb_model *m = &nb->m;
	if (!nb->trained)
		return TRAIN_EINVAL;
	sbuf b = { 0 };
	sb_printf(&b, NB_MAGIC " %d\nalpha %.17g\nmin_count %lld\nclasses %zu\n", NB_VERSION,
	          nb->alpha, (long long)nb->min_count, m->n_classes);
	for (size_t c = 0; c < m->n_classes; c++)
		sb_printf(&b, "%s\t%.17g\n", m->classes[c], m->log_prior[c]);
	sb_printf(&b, "vocabulary %zu\n", m->n_vocab);
	for (size_t v = 0; v < m->n_vocab; v++) {
		sb_str(&b, m->vocab[v]);
		sb_char(&b, '\n');
	}
	sb_str(&b, "likelihoods\n");
	for (size_t c = 0; c < m->n_classes; c++) {
		sb_str(&b, m->classes[c]);
		sb_char(&b, '\t');
		for (size_t v = 0; v < m->n_vocab; v++)
			sb_printf(&b, v ? " %.17g" : "%.17g", m->log_lik[c * m->n_vocab + v]);
		sb_char(&b, '\n');
	}
	sb_str(&b, "end\n");
	int rc = b.failed ? TRAIN_ENOMEM : train_resource_write(res, NB_FILE, b.data, b.len);
	sb_free(&b);
	return rc;
}

/* A reader of the model file: the current line and a place for errors. */
typedef struct nb_reader {
	line_iter it;
	char *line;
	size_t len;
	train_ctx *ctx;
} nb_reader;

TRAIN_PRINTF(2, 3)
static int nb_bad(nb_reader *r, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return train_fail(r->ctx, NB_FILE ":%u: %s", r->it.no, msg);
}

/* Next line, or an error naming what was expected at the end of the file. */
static int nb_next(nb_reader *r, const char *what)
{
	if (!(r->line = next_line(&r->it, &r->len))) {
		r->it.no++;
		return nb_bad(r, "unexpected end of file, expected %s", what);
	}
	return TRAIN_OK;
}

/* "<key> <unsigned>" with the number at most `max`. */
static int nb_count_line(nb_reader *r, const char *key, size_t max, size_t *out)
{
	int rc = nb_next(r, key);
	if (rc)
		return rc;
	size_t k = strlen(key);
	const char *s = r->line + k + 1;
	char *end;
	if (strncmp(r->line, key, k) || r->line[k] != ' ' || *s < '0' || *s > '9')
		return nb_bad(r, "expected \"%s N\"", key);
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (*end || errno || n > max)
		return nb_bad(r, "expected \"%s N\" with N at most %zu", key, max);
	*out = (size_t)n;
	return TRAIN_OK;
}

/* A finite number at *s (strtod syntax), advancing *s past it. */
static int nb_number(char **s, double *out)
{
	char *end;
	if (!**s || is_space((unsigned char)**s))
		return -1;
	errno = 0;
	*out = strtod(*s, &end);
	if (end == *s || errno == ERANGE || !isfinite(*out))
		return -1;
	*s = end;
	return 0;
}

/* "<name>\t<rest>": checks the name against the rules for labels. */
static int nb_name_field(nb_reader *r, char **rest)
{
	char *tab = strchr(r->line, '\t');
	if (!tab || tab == r->line)
		return nb_bad(r, "expected \"<class><TAB>...\"");
	*tab = '\0';
	if (has_space(r->line, (size_t)(tab - r->line)) ||
	    !utf8_valid(r->line, (size_t)(tab - r->line)))
		return nb_bad(r, "a class name must be UTF-8 without white space");
	*rest = tab + 1;
	return TRAIN_OK;
}

static int nb_read(naive_bayes *nb, char *data, size_t size, train_ctx *ctx)
{
	nb_model *m = &nb->m;
	nb_reader r = { { data, data + size, 0 }, NULL, 0, ctx };
	int rc;
	size_t C, V;
	char *s;

	if (strlen(data) != size)
		return train_fail(ctx, NB_FILE ": contains a NUL byte");
	if ((rc = nb_next(&r, "the header")))
		return rc;
	size_t k = strlen(NB_MAGIC);
	if (strncmp(r.line, NB_MAGIC " ", k + 1))
		return nb_bad(&r, "not a Naive Bayes model (expected \"" NB_MAGIC " %d\")", NB_VERSION);
	if (strcmp(r.line + k + 1, "1"))
		return nb_bad(&r, "model format version \"%s\", this plugin reads version %d",
		              r.line + k + 1, NB_VERSION);
	if ((rc = nb_next(&r, "alpha")))
		return rc;
	s = r.line + 6;
	if (strncmp(r.line, "alpha ", 6) || nb_number(&s, &nb->alpha) || *s || !(nb->alpha > 0))
		return nb_bad(&r, "expected \"alpha X\" with X > 0");
	size_t min_count;
	if ((rc = nb_count_line(&r, "min_count", SIZE_MAX, &min_count)))
		return rc;
	if (!min_count || (uint64_t)min_count > INT64_MAX)
		return nb_bad(&r, "min_count must be >= 1");
	nb->min_count = (int64_t)min_count;

	/* Counts are bounded by the file's size, so a corrupt count cannot make
	 * us allocate more than the file could describe. */
	if ((rc = nb_count_line(&r, "classes", size, &C)))
		return rc;
	if (!C)
		return nb_bad(&r, "a model needs at least one class");
	if (!(m->classes = calloc(C, sizeof *m->classes)) ||
	    !(m->log_prior = malloc(C * sizeof *m->log_prior)))
		return TRAIN_ENOMEM;
	for (size_t c = 0; c < C; c++) {
		if ((rc = nb_next(&r, "a class")) || (rc = nb_name_field(&r, &s)))
			return rc;
		if (c && strcmp(m->classes[c - 1], r.line) >= 0)
			return nb_bad(&r, "classes must be sorted and unique");
		if (!(m->classes[c] = xstrdup(r.line)))
			return TRAIN_ENOMEM;
		m->n_classes = c + 1;
		if (nb_number(&s, &m->log_prior[c]) || *s || m->log_prior[c] > 0)
			return nb_bad(&r, "expected a log-probability (a number <= 0) after the class");
	}
	if (fabs(log_sum_exp(m->log_prior, C, 1)) > 1e-6)
		return nb_bad(&r, "the class priors do not add up to 1");

	if ((rc = nb_count_line(&r, "vocabulary", size, &V)))
		return rc;
	if (!(m->vocab = calloc(V ? V : 1, sizeof *m->vocab)) ||
	    !(m->log_lik = malloc(C * (V ? V : 1) * sizeof *m->log_lik)))
		return TRAIN_ENOMEM;
	for (size_t v = 0; v < V; v++) {
		if ((rc = nb_next(&r, "a token")))
			return rc;
		if (!r.len || has_space(r.line, r.len))
			return nb_bad(&r, "expected a token (no white space)");
		if (v && strcmp(m->vocab[v - 1], r.line) >= 0)
			return nb_bad(&r, "the vocabulary must be sorted and unique");
		if (!(m->vocab[v] = xstrdup(r.line)))
			return TRAIN_ENOMEM;
		m->n_vocab = v + 1;
	}

	if ((rc = nb_next(&r, "\"likelihoods\"")))
		return rc;
	if (strcmp(r.line, "likelihoods"))
		return nb_bad(&r, "expected \"likelihoods\"");
	for (size_t c = 0; c < C; c++) {
		if ((rc = nb_next(&r, "the likelihoods of a class")) || (rc = nb_name_field(&r, &s)))
			return rc;
		if (strcmp(r.line, m->classes[c]))
			return nb_bad(&r, "expected the likelihoods of class \"%s\"", m->classes[c]);
		double *row = m->log_lik + c * V;
		for (size_t v = 0; v < V; v++) {
			if (v && (*s++ != ' ' || *s == ' '))
				return nb_bad(&r, "expected %zu numbers separated by one space", V);
			if (nb_number(&s, &row[v]) || row[v] > 0)
				return nb_bad(&r, "number %zu is not a log-probability (a number <= 0)",
				              v + 1);
		}
		if (*s)
			return nb_bad(&r, "expected %zu numbers, found more", V);
		if (V && fabs(log_sum_exp(row, V, 1)) > 1e-6)
			return nb_bad(&r, "the likelihoods of class \"%s\" do not add up to 1",
			              m->classes[c]);
	}
	if ((rc = nb_next(&r, "\"end\"")))
		return rc;
	if (strcmp(r.line, "end"))
		return nb_bad(&r, "expected \"end\"");
	if ((r.line = next_line(&r.it, &r.len)))
		return nb_bad(&r, "unexpected text after \"end\"");
	return TRAIN_OK;
}

/* alpha and min_count come from the file (what the model was fitted
 * with); only epochs, which fitting ignores, comes from the config. */
static int nb_load(const train_config *config, const train_resource *res, train_ctx *ctx,
                   void **self)
{
	void *data = NULL;
	size_t size;
	*self = NULL;
	naive_bayes *nb = calloc(1, sizeof *nb);
	if (!nb)
		return TRAIN_ENOMEM;
	nb->epochs = train_config_get(config, "epochs") ? train_config_int(config, "epochs") : 1;
	int rc = train_resource_read(res, NB_FILE, &data, &size);
	if (rc) {
		rc = train_fail(ctx, NB_FILE ": cannot read: %s", train_strerror(rc));
		goto out;
	}
	if ((rc = nb_read(nb, data, size, ctx)))
		goto out;
	nb->trained = 1;
	*self = nb;
	nb = NULL;
out:
	free(data);
	nb_destroy(nb);
	return rc;
}

/* One entry of the ranking. */
typedef struct nb_rank {
	double score;
	size_t cls;
} nb_rank;

static int cmp_rank(const void *a, const void *b)
{
	const nb_rank *x = a, *y = b;
	if (x->score != y->score)
		return x->score < y->score ? 1 : -1;
	return (x->cls > y->cls) - (x->cls < y->cls);
}

/* tokens (text/plain, space-separated) -> intent (application/json). */
static int nb_process(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	const naive_bayes *nb = self;
	const nb_model *m = &nb->m;
	const train_value *tokens = train_values_get(in, "tokens");
	long *idx = NULL;
	double *scores = NULL;
	nb_rank *rank = NULL;
	size_t n = 0, cap = 0, size;
	sbuf b = { 0 };
	int rc = TRAIN_ENOMEM;

	if (!nb->trained)
		return train_fail(ctx, "the classifier has not been trained");
	if (!tokens)
		return train_fail(ctx, "no input \"tokens\"");
	if (strcmp(train_value_type(tokens), TEXT_TYPE))
		return train_fail(ctx, "input tokens: expected type " TEXT_TYPE " (one text's tokens), "
		                  "got %s", train_value_type(tokens));
	char *data = value_text(tokens, &size);
	if (!data)
		return TRAIN_ENOMEM;
	for (char *p = data; *p;) {
		while (*p && is_space((unsigned char)*p))
			p++;
		if (!*p)
			break;
		char *start = p;
		while (*p && !is_space((unsigned char)*p))
			p++;
		if (*p)
			*p++ = '\0';
		if (n == cap) {
			size_t c2 = cap ? 2 * cap : 64;
			long *q = realloc(idx, c2 * sizeof *q);
			if (!q)
				goto out;
			idx = q, cap = c2;
		}
		idx[n++] = find_str(m->vocab, m->n_vocab, start);
	}
	if (!(scores = malloc(m->n_classes * sizeof *scores)) ||
	    !(rank = malloc(m->n_classes * sizeof *rank)))
		goto out;
	nb_score(m, idx, n, scores);
	double norm = log_sum_exp(scores, m->n_classes, 1);
	for (size_t c = 0; c < m->n_classes; c++)
		rank[c] = (nb_rank){ scores[c], c };
	qsort(rank, m->n_classes, sizeof *rank, cmp_rank);

	size_t top = m->n_classes < NB_RANKING ? m->n_classes : NB_RANKING;
	sb_str(&b, "{\"intent\": {\"name\": ");
	sb_json_str(&b, m->classes[rank[0].cls]);
	sb_printf(&b, ", \"confidence\": %.6g}, \"ranking\": [", exp(rank[0].score - norm));
	for (size_t i = 0; i < top; i++) {
		sb_str(&b, i ? ", {\"name\": " : "{\"name\": ");
		sb_json_str(&b, m->classes[rank[i].cls]);
		sb_printf(&b, ", \"confidence\": %.6g}", exp(rank[i].score - norm));
	}
	sb_str(&b, "]}");
	rc = sb_put(&b, out, "intent", JSON_TYPE);
out:
	sb_free(&b);
	free(rank);
	free(scores);
	free(idx);
	free(data);
	return rc;
}

static const train_component_class nb_class = {
	.struct_size = sizeof(train_component_class),
	.name = "NaiveBayes",
	.version = "1",
	.doc = "Multinomial Naive Bayes intent classifier over tokens",
	.inputs = nb_inputs,
	.outputs = nb_outputs,
	.process_outputs = nb_process_outputs,
	.params = nb_params,
	.create = nb_create,
	.fingerprint = NULL,
	.train = nb_train,
	.process = nb_process,
	.persist = nb_persist,
	.load = nb_load,
	.destroy = nb_destroy,
};

/* ------------------------------------------------------------------------ */

static const train_component_class *const basic_classes[] = {
	&textfile_class,
	&tokenizer_class,
	&nb_class,
	NULL,
};

TRAIN_PLUGIN_DEFINE("basic", "1.0.0", "MIT",
                    "TextFile, Tokenizer and NaiveBayes: a small intent classifier",
                    basic_classes);
