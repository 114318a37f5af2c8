/*
 * plugins/bert/bert_io.c - BERT's WordPiece tokenizer and vocabulary, and
 * Hugging Face checkpoint folders (config.json, vocab.txt,
 * model.safetensors) read and written (see bert.h).
 *
 * The tokenizer follows BERT's BasicTokenizer + WordpieceTokenizer rules
 * (facts; the code is ours), with two simplifications stated in bert.h:
 * accents are stripped through a table of U+00C0..U+017F and by dropping
 * combining marks U+0300..U+036F (not a full NFD), and any character that
 * is neither a word character (\w) nor white space counts as punctuation
 * (BERT: ASCII punctuation and Unicode P* categories).
 */
#include "bert.h"

#include "../common/hf.h"
#include "../common/text.h"

#include <train/optim.h>

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- vocabulary ------------------------------------------------------------- */

void bert_vocab_free(bert_vocab *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++)
		free(v->tok[i]);
	free(v->tok);
	strmap_free(&v->map);
	memset(v, 0, sizeof *v);
}

static int32_t vocab_id(const bert_vocab *v, const char *s)
{
	strmap_entry *e = strmap_get(&v->map, s, strlen(s));
	return e ? (int32_t)e->value : -1;
}

static int vocab_finish(bert_vocab *v, const char *file, train_error *err)
{
	static const char *const names[] = { "[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]" };
	int32_t *dst[] = { &v->unk, &v->cls, &v->sep, &v->pad, &v->mask };
	for (int i = 0; i < 5; i++)
		if ((*dst[i] = vocab_id(v, names[i])) < 0)
			return train_error_set(err, TRAIN_ECORRUPT, file, 0, 0, "the vocabulary has no %s token",
			                       names[i]);
	if (v->n > INT32_MAX)
		return train_error_set(err, TRAIN_ECORRUPT, file, 0, 0, "too many tokens");
	return TRAIN_OK;
}

static int vocab_push(bert_vocab *v, size_t *cap, const char *s, size_t len, const char *file,
                      unsigned line, train_error *err)
{
	int added;
	strmap_entry *e = strmap_put(&v->map, s, len, v->n, &added);
	if (!e)
		return train_error_set(err, TRAIN_ENOMEM, file, line, 0, "out of memory");
	if (!added)
		return train_error_set(err, TRAIN_ECORRUPT, file, line, 0, "token \"%.*s\" appears twice",
		                       (int)(len > 64 ? 64 : len), s);
	if (v->n == *cap) {
		size_t c = *cap ? 2 * *cap : 1024;
		char **t = realloc(v->tok, c * sizeof *t);
		if (!t)
			return train_error_set(err, TRAIN_ENOMEM, file, line, 0, "out of memory");
		v->tok = t;
		*cap = c;
	}
	if (!(v->tok[v->n] = malloc(len + 1)))
		return train_error_set(err, TRAIN_ENOMEM, file, line, 0, "out of memory");
	memcpy(v->tok[v->n], s, len);
	v->tok[v->n++][len] = '\0';
	return TRAIN_OK;
}

int bert_vocab_from(const char *const *tokens, size_t n, int lowercase, bert_vocab *v,
                    train_error *err)
{
	size_t cap = 0;
	int rc = TRAIN_OK;
	memset(v, 0, sizeof *v);
	v->lowercase = lowercase;
	for (size_t i = 0; i < n && !rc; i++)
		rc = vocab_push(v, &cap, tokens[i], strlen(tokens[i]), "vocab", (unsigned)i + 1, err);
	if (!rc)
		rc = vocab_finish(v, "vocab", err);
	if (rc)
		bert_vocab_free(v);
	return rc;
}

int bert_vocab_load(const char *path, int lowercase, bert_vocab *v, train_error *err)
{
	char *buf;
	size_t len, cap = 0;
	int rc = hf_read_file(path, &buf, &len, err);
	memset(v, 0, sizeof *v);
	v->lowercase = lowercase;
	if (rc)
		return rc;
	unsigned line = 0;
	for (size_t i = 0; i < len && !rc;) {
		size_t j = i;
		while (j < len && buf[j] != '\n')
			j++;
		size_t e = j;
		if (e > i && buf[e - 1] == '\r')
			e--;
		line++;
		if (memchr(buf + i, '\0', e - i))
			rc = train_error_set(err, TRAIN_ECORRUPT, path, line, 0, "a NUL byte in a token");
		else if (e == i)
			rc = train_error_set(err, TRAIN_ECORRUPT, path, line, 0, "an empty token");
		else
			rc = vocab_push(v, &cap, buf + i, e - i, path, line, err);
		i = j + 1;
	}
	if (!rc && v->n == 0)
		rc = train_error_set(err, TRAIN_ECORRUPT, path, 0, 0, "the vocabulary is empty");
	if (!rc)
		rc = vocab_finish(v, path, err);
	free(buf);
	if (rc)
		bert_vocab_free(v);
	return rc;
}

int bert_vocab_text(const bert_vocab *v, char **out, size_t *len)
{
	size_t n = 0;
	for (size_t i = 0; i < v->n; i++)
		n += strlen(v->tok[i]) + 1;
	char *b = malloc(n + 1);
	if (!b)
		return TRAIN_ENOMEM;
	size_t o = 0;
	for (size_t i = 0; i < v->n; i++) {
		size_t l = strlen(v->tok[i]);
		memcpy(b + o, v->tok[i], l);
		o += l;
		b[o++] = '\n';
	}
	b[o] = '\0';
	*out = b;
	*len = o;
	return TRAIN_OK;
}

/* ---- the basic tokenizer ----------------------------------------------------- */

/* U+00C0..U+017F without their accents ('.': keep the character). */
static const char deaccent[] =
	"AAAAAA.CEEEEIIII.NOOOOO..UUUUY..aaaaaa.ceeeeiiii.nooooo..uuuuy.y"
	"AaAaAaCcCcCcCcDd..EeEeEeEeEeGgGgGgGgHh..IiIiIiIiI...JjKk.LlLlLl."
	"...NnNnNn...OoOoOo..RrRrRrSsSsSsSsTtTt..UuUuUuUuUuUuWwYyYZzZzZz.";

static int is_cjk(uint32_t c)
{
	return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
	       (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
	       (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
	       (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static int is_punct(uint32_t c)
{
	if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126))
		return 1;
	return c >= 128 && !text_is_regex_word(c) && !text_is_space(c);
}

static int is_control(uint32_t c)
{
	if (c == '\t' || c == '\n' || c == '\r')
		return 0;
	return c < 32 || (c >= 0x7F && c < 0xA0) || c == 0xFFFD || c == 0x200B || c == 0xFEFF;
}

/* Normalise one character: NULL result (0) drops it. */
static uint32_t norm_char(const bert_vocab *v, uint32_t c)
{
	if (c == 0 || is_control(c))
		return 0;
	if (!v->lowercase)
		return c;
	c = c == 0x130 ? 'i' : text_tolower(c);
	if (c >= 0x300 && c <= 0x36F)
		return 0;
	if (c >= 0xC0 && c < 0x180 && deaccent[c - 0xC0] != '.')
		c = text_tolower((uint32_t)deaccent[c - 0xC0]);
	return c;
}

static void emit(int32_t *ids, size_t max, size_t *n, int32_t id)
{
	if (*n < max)
		ids[*n] = id;
	(*n)++;
}

/* WordPiece of one word (UTF-8 in w[0..len), chars code points). */
static int wordpiece(const bert_vocab *v, const char *w, size_t len, size_t chars, char *buf,
                     int32_t *ids, size_t max, size_t *n)
{
	if (chars > 100) {
		emit(ids, max, n, v->unk);
		return TRAIN_OK;
	}
	size_t before = *n, start = 0;
	while (start < len) {
		size_t end = len;
		strmap_entry *hit = NULL;
		while (end > start) {
			size_t o = 0;
			if (start) {
				memcpy(buf, "##", 2);
				o = 2;
			}
			memcpy(buf + o, w + start, end - start);
			if ((hit = strmap_get(&v->map, buf, o + end - start)))
				break;
			/* back one whole character */
			end--;
			while (end > start && ((unsigned char)w[end] & 0xC0) == 0x80)
				end--;
		}
		if (!hit) {
			*n = before;
			emit(ids, max, n, v->unk);
			return TRAIN_OK;
		}
		emit(ids, max, n, (int32_t)hit->value);
		start = end;
	}
	return TRAIN_OK;
}

/* Calls fn on each basic-tokenizer word (normalised UTF-8). */
typedef int (*word_fn)(void *ud, const char *w, size_t len, size_t chars);

static int basic_words(const bert_vocab *v, const char *text, size_t len, word_fn fn, void *ud)
{
	size_t n;
	uint32_t *t = text_decode(text, len, &n, NULL);
	char *buf = t ? malloc(4 * n + 8) : NULL;
	int rc = TRAIN_OK;
	if (!buf) {
		free(t);
		return TRAIN_ENOMEM;
	}
	size_t o = 0, chars = 0;
#define FLUSH() do { if (o && !rc) rc = fn(ud, buf, o, chars); o = 0; chars = 0; } while (0)
	for (size_t i = 0; i < n && !rc; i++) {
		uint32_t c = norm_char(v, t[i]);
		if (!c)
			continue;
		if (text_is_space(c)) {
			FLUSH();
		} else if (is_punct(c) || is_cjk(c)) {
			FLUSH();
			o = text_put(buf, c);
			chars = 1;
			FLUSH();
		} else {
			o += text_put(buf + o, c);
			chars++;
		}
	}
	FLUSH();
#undef FLUSH
	free(buf);
	free(t);
	return rc;
}

typedef struct tok_state {
	const bert_vocab *v;
	int32_t *ids;
	size_t max, n;
	char *buf;
	size_t bufcap;
} tok_state;

static int tok_word(void *ud, const char *w, size_t len, size_t chars)
{
	tok_state *s = ud;
	if (len + 3 > s->bufcap) {
		char *b = realloc(s->buf, len + 3);
		if (!b)
			return TRAIN_ENOMEM;
		s->buf = b;
		s->bufcap = len + 3;
	}
	return wordpiece(s->v, w, len, chars, s->buf, s->ids, s->max, &s->n);
}

int bert_tokenize(const bert_vocab *v, const char *text, size_t len, int32_t *ids, size_t max,
                  size_t *n)
{
	tok_state s = { v, ids, max, 0, NULL, 0 };
	int rc = basic_words(v, text, len, tok_word, &s);
	free(s.buf);
	*n = s.n;
	return rc;
}

/* ---- a vocabulary from texts --------------------------------------------------- */

typedef struct count_state {
	strmap words, chars;
	uint64_t *wc;
	size_t wcap;
} count_state;

static int count_word(void *ud, const char *w, size_t len, size_t chars)
{
	count_state *s = ud;
	int added;
	(void)chars;
	strmap_entry *e = strmap_put(&s->words, w, len, s->words.len, &added);
	if (!e)
		return TRAIN_ENOMEM;
	if (added && e->value >= s->wcap) {
		size_t c = s->wcap ? 2 * s->wcap : 1024;
		uint64_t *x = realloc(s->wc, c * sizeof *x);
		if (!x)
			return TRAIN_ENOMEM;
		memset(x + s->wcap, 0, (c - s->wcap) * sizeof *x);
		s->wc = x;
		s->wcap = c;
	}
	s->wc[e->value]++;
	char piece[8];
	for (size_t p = 0; p < len;) {
		size_t q = p;
		text_next(w, len, &q);
		size_t o = 0;
		if (p) {
			memcpy(piece, "##", 2);
			o = 2;
		}
		memcpy(piece + o, w + p, q - p);
		if (!strmap_put(&s->chars, piece, o + q - p, 0, &added))
			return TRAIN_ENOMEM;
		p = q;
	}
	return TRAIN_OK;
}

typedef struct ranked {
	const char *s;
	uint64_t c;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
	const ranked *x = a, *y = b;
	if (x->c != y->c)
		return x->c > y->c ? -1 : 1;
	return strcmp(x->s, y->s);
}

int bert_vocab_train(const char *const *texts, size_t n_texts, size_t size, int lowercase,
                     bert_vocab *v)
{
	static const char *const specials[] = { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };
	count_state s = { 0 };
	bert_vocab probe = { 0 };
	ranked *r = NULL;
	size_t cap = 0;
	int rc = TRAIN_OK;
	memset(v, 0, sizeof *v);
	probe.lowercase = lowercase;
	for (size_t i = 0; i < n_texts && !rc; i++)
		rc = basic_words(&probe, texts[i], strlen(texts[i]), count_word, &s);
	size_t nr = s.words.len > s.chars.len ? s.words.len : s.chars.len;
	if (!rc && !(r = malloc((nr + 1) * sizeof *r)))
		rc = TRAIN_ENOMEM;
	v->lowercase = lowercase;
	for (int i = 0; i < 5 && !rc; i++)
		rc = vocab_push(v, &cap, specials[i], strlen(specials[i]), "vocab", 0, NULL);
	/* every character, sorted bytewise */
	size_t k = 0;
	for (size_t i = 0; !rc && i < s.chars.cap; i++)
		if (s.chars.slots[i].key)
			r[k++] = (ranked){ s.chars.slots[i].key, 0 };
	if (!rc)
		qsort(r, k, sizeof *r, cmp_ranked);
	for (size_t i = 0; i < k && !rc; i++)
		rc = vocab_push(v, &cap, r[i].s, strlen(r[i].s), "vocab", 0, NULL);
	/* then whole words by frequency */
	k = 0;
	for (size_t i = 0; !rc && i < s.words.cap; i++)
		if (s.words.slots[i].key && s.words.slots[i].len > 1)
			r[k++] = (ranked){ s.words.slots[i].key, s.wc[s.words.slots[i].value] };
	if (!rc)
		qsort(r, k, sizeof *r, cmp_ranked);
	for (size_t i = 0; i < k && v->n < size && !rc; i++)
		if (!strmap_get(&v->map, r[i].s, strlen(r[i].s)))
			rc = vocab_push(v, &cap, r[i].s, strlen(r[i].s), "vocab", 0, NULL);
	if (!rc)
		rc = vocab_finish(v, "vocab", NULL);
	free(r);
	free(s.wc);
	strmap_free(&s.words);
	strmap_free(&s.chars);
	if (rc)
		bert_vocab_free(v);
	return rc;
}

/* ---- Hugging Face folders ----------------------------------------------------- */

static int cfg_int(json_t *j, const char *key, int *dst, int required, const char *file,
                   train_error *err)
{
	json_t *x = json_object_get(j, key);
	if (!x) {
		if (required)
			return train_error_set(err, TRAIN_ECORRUPT, file, 0, 0, "\"%s\" is missing", key);
		return TRAIN_OK;
	}
	if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > INT32_MAX)
		return train_error_set(err, TRAIN_ECORRUPT, file, 0, 0,
		                       "\"%s\" must be a non-negative integer", key);
	*dst = (int)json_integer_value(x);
	return TRAIN_OK;
}

/* The checkpoint's tensor for one of ours: with or without "bert.", with
 * gamma/beta for LayerNorm weight/bias. */
static int find_hf(const train_safetensors *st, const char *name, train_tensor *t)
{
	char alt[128];
	const char *forms[4];
	int nf = 0;
	forms[nf++] = name;
	if (strncmp(name, "bert.", 5) == 0)
		forms[nf++] = name + 5;
	const char *ln = strstr(name, "LayerNorm.");
	if (ln) {
		const char *suffix = strcmp(ln + 10, "weight") == 0 ? "gamma" : "beta";
		snprintf(alt, sizeof alt, "%.*s%s", (int)(ln + 10 - name), name, suffix);
		forms[nf++] = alt;
		if (strncmp(alt, "bert.", 5) == 0)
			forms[nf++] = alt + 5;
	}
	for (int i = 0; i < nf; i++)
		if (train_safetensors_get(st, forms[i], t) == 0)
			return 1;
	return 0;
}

static void fresh(bert_model *m, const char *prefix, train_rng *r)
{
	for (size_t i = 0; i < m->n_tensors; i++) {
		const bert_tensor *t = &m->tensors[i];
		if (strncmp(t->name, prefix, strlen(prefix)))
			continue;
		float *p = m->params + t->offset;
		size_t n = (size_t)(t->shape[0] * t->shape[1]);
		if (strstr(t->name, "LayerNorm.weight"))
			for (size_t k = 0; k < n; k++)
				p[k] = 1.0f;
		else if (t->ndim == 1)
			memset(p, 0, n * sizeof *p);
		else
			train_rng_fill_normal(r, p, n, 0.0f, 0.02f);
	}
}

int bert_hf_load(const char *dir, int num_labels, int mlm, uint64_t seed, bert_model **out,
                 bert_vocab *vocab, train_error *err)
{
	char path[4096], stpath[4096];
	char *text = NULL;
	size_t len;
	json_t *j = NULL;
	train_safetensors *st = NULL;
	bert_model *m = NULL;
	bert_config c = { 0 };
	int rc, lowercase = 1;
	*out = NULL;
	memset(vocab, 0, sizeof *vocab);
	struct stat sb;
	if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
		return train_error_set(err, TRAIN_ENOTFOUND, dir, 0, 0,
		                       "not a folder (a Hugging Face BERT checkpoint folder with config.json, "
		                       "vocab.txt and model.safetensors is expected; nothing is downloaded)");
	/* config.json */
	snprintf(path, sizeof path, "%s/config.json", dir);
	if ((rc = hf_read_file(path, &text, &len, err)))
		goto out;
	json_error_t je;
	if (!(j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je)) || !json_is_object(j)) {
		rc = train_error_set(err, TRAIN_EPARSE, path, j ? 0 : (unsigned)je.line, j ? 0 : (unsigned)je.column,
		                     "%s", j ? "not a JSON object" : je.text);
		goto out;
	}
	json_t *mt = json_object_get(j, "model_type");
	if (mt && (!json_is_string(mt) || strcmp(json_string_value(mt), "bert"))) {
		rc = train_error_set(err, TRAIN_EUNSUPPORTED, path, 0, 0, "model_type is not \"bert\"");
		goto out;
	}
	json_t *act = json_object_get(j, "hidden_act");
	if (act && (!json_is_string(act) || strcmp(json_string_value(act), "gelu"))) {
		rc = train_error_set(err, TRAIN_EUNSUPPORTED, path, 0, 0,
		                     "hidden_act must be \"gelu\" (the erf form)");
		goto out;
	}
	json_t *pe = json_object_get(j, "position_embedding_type");
	if (pe && (!json_is_string(pe) || strcmp(json_string_value(pe), "absolute"))) {
		rc = train_error_set(err, TRAIN_EUNSUPPORTED, path, 0, 0,
		                     "position_embedding_type must be \"absolute\"");
		goto out;
	}
	c.type_vocab = 2;
	c.max_position = 512;
	if ((rc = cfg_int(j, "vocab_size", &c.vocab_size, 1, path, err)) ||
	    (rc = cfg_int(j, "hidden_size", &c.hidden, 1, path, err)) ||
	    (rc = cfg_int(j, "num_hidden_layers", &c.layers, 1, path, err)) ||
	    (rc = cfg_int(j, "num_attention_heads", &c.heads, 1, path, err)) ||
	    (rc = cfg_int(j, "intermediate_size", &c.intermediate, 1, path, err)) ||
	    (rc = cfg_int(j, "max_position_embeddings", &c.max_position, 0, path, err)) ||
	    (rc = cfg_int(j, "type_vocab_size", &c.type_vocab, 0, path, err)))
		goto out;
	json_t *eps = json_object_get(j, "layer_norm_eps");
	c.ln_eps = 1e-12f;
	if (eps) {
		if (!json_is_number(eps) || json_number_value(eps) < 0) {
			rc = train_error_set(err, TRAIN_ECORRUPT, path, 0, 0, "layer_norm_eps must be a number >= 0");
			goto out;
		}
		c.ln_eps = (float)json_number_value(eps);
	}
	if ((rc = bert_config_check(&c, err))) {
		if (err)
			snprintf(err->file, sizeof err->file, "%.255s", path);
		goto out;
	}
	/* tokenizer_config.json: do_lower_case (optional) */
	snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
	if (access(path, R_OK) == 0) {
		json_t *tj = json_load_file(path, 0, &je);
		json_t *lc = tj ? json_object_get(tj, "do_lower_case") : NULL;
		if (lc && json_is_boolean(lc))
			lowercase = json_is_true(lc);
		json_decref(tj);
	}
	snprintf(path, sizeof path, "%s/vocab.txt", dir);
	if ((rc = bert_vocab_load(path, lowercase, vocab, err)))
		goto out;
	if (vocab->n > (size_t)c.vocab_size) {
		rc = train_error_set(err, TRAIN_ECORRUPT, path, 0, 0, "%zu tokens, more than vocab_size %d",
		                     vocab->n, c.vocab_size);
		goto out;
	}
	/* the weights */
	snprintf(stpath, sizeof stpath, "%s/model.safetensors", dir);
	if ((rc = train_safetensors_open(stpath, &st, err))) {
		if (err && !err->file[0])
			snprintf(err->file, sizeof err->file, "%.255s", stpath);
		goto out;
	}
	train_tensor probe;
	int has_cls = train_safetensors_get(st, "classifier.weight", &probe) == 0 && probe.ndim == 2;
	int ckpt_labels = has_cls ? (int)probe.shape[0] : 0;
	int has_mlm = find_hf(st, "cls.predictions.transform.dense.weight", &probe);
	c.num_labels = num_labels < 0 ? ckpt_labels : num_labels;
	c.mlm_head = mlm < 0 ? has_mlm : mlm;
	if ((rc = bert_model_create(&c, &m))) {
		train_error_set(err, rc, stpath, 0, 0, "cannot allocate the model");
		goto out;
	}
	train_rng r;
	train_rng_seed(&r, seed);
	int load_cls = c.num_labels > 0 && has_cls && ckpt_labels == c.num_labels;
	if (c.num_labels > 0 && !load_cls)
		fresh(m, "classifier.", &r);
	if (c.mlm_head && !has_mlm)
		fresh(m, "cls.predictions.", &r);
	/* BertForMaskedLM saves no pooler: a fresh one, as transformers makes */
	int has_pool = find_hf(st, "bert.pooler.dense.weight", &probe);
	if (!has_pool)
		fresh(m, "bert.pooler.", &r);
	for (size_t i = 0; i < m->n_tensors; i++) {
		const bert_tensor *bt = &m->tensors[i];
		if ((!load_cls && strncmp(bt->name, "classifier.", 11) == 0) ||
		    (!has_mlm && strncmp(bt->name, "cls.predictions.", 16) == 0) ||
		    (!has_pool && strncmp(bt->name, "bert.pooler.", 12) == 0))
			continue;
		train_tensor t;
		if (!find_hf(st, bt->name, &t)) {
			rc = train_error_set(err, TRAIN_ENOTFOUND, stpath, 0, 0, "tensor %s is missing", bt->name);
			goto out;
		}
		int ok = t.ndim == bt->ndim && t.shape[0] == bt->shape[0] && (bt->ndim == 1 || t.shape[1] == bt->shape[1]);
		if (!ok) {
			rc = train_error_set(err, TRAIN_EMISMATCH, stpath, 0, 0,
			                     "tensor %s has shape [%lld%s%lld], config.json says [%lld%s%lld]",
			                     bt->name, (long long)t.shape[0], t.ndim > 1 ? ", " : "",
			                     t.ndim > 1 ? (long long)t.shape[1] : 0LL, (long long)bt->shape[0],
			                     bt->ndim > 1 ? ", " : "", bt->ndim > 1 ? (long long)bt->shape[1] : 0LL);
			if (t.ndim == 1 && bt->ndim == 1) /* tidy message for vectors */
				train_error_set(err, TRAIN_EMISMATCH, stpath, 0, 0,
				                "tensor %s has %lld values, config.json says %lld", bt->name,
				                (long long)t.shape[0], (long long)bt->shape[0]);
			goto out;
		}
		if ((rc = hf_tensor_f32(&t, m->params + bt->offset, stpath, bt->name, err)))
			goto out;
	}
	rc = TRAIN_OK;
out:
	free(text);
	json_decref(j);
	train_safetensors_close(st);
	if (rc) {
		bert_model_destroy(m);
		bert_vocab_free(vocab);
	} else {
		*out = m;
	}
	return rc;
}

int bert_hf_save(const bert_model *m, const bert_vocab *vocab, const char *const *labels,
                 const char *dir, train_error *err)
{
	const bert_config *c = &m->cfg;
	char path[4096];
	char *text = NULL;
	size_t len;
	json_t *j = json_object();
	int rc = TRAIN_OK;
	if (!j) {
		rc = train_error_set(err, TRAIN_ENOMEM, dir, 0, 0, "out of memory");
		goto out;
	}
	if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
		rc = train_error_set(err, -errno, dir, 0, 0, "cannot create the folder: %s", strerror(errno));
		goto out;
	}
	const char *arch = c->num_labels ? "BertForSequenceClassification"
	                   : c->mlm_head ? "BertForMaskedLM" : "BertModel";
	json_object_set_new(j, "architectures", json_pack("[s]", arch));
	json_object_set_new(j, "model_type", json_string("bert"));
	json_object_set_new(j, "vocab_size", json_integer(c->vocab_size));
	json_object_set_new(j, "hidden_size", json_integer(c->hidden));
	json_object_set_new(j, "num_hidden_layers", json_integer(c->layers));
	json_object_set_new(j, "num_attention_heads", json_integer(c->heads));
	json_object_set_new(j, "intermediate_size", json_integer(c->intermediate));
	json_object_set_new(j, "hidden_act", json_string("gelu"));
	json_object_set_new(j, "hidden_dropout_prob", json_real(0.1));
	json_object_set_new(j, "attention_probs_dropout_prob", json_real(0.1));
	json_object_set_new(j, "max_position_embeddings", json_integer(c->max_position));
	json_object_set_new(j, "type_vocab_size", json_integer(c->type_vocab));
	json_object_set_new(j, "initializer_range", json_real(0.02));
	json_object_set_new(j, "layer_norm_eps", json_real(c->ln_eps));
	json_object_set_new(j, "pad_token_id", json_integer(vocab ? vocab->pad : 0));
	json_object_set_new(j, "position_embedding_type", json_string("absolute"));
	json_object_set_new(j, "torch_dtype", json_string("float32"));
	if (c->num_labels) {
		json_t *i2l = json_object(), *l2i = json_object();
		for (int i = 0; i < c->num_labels; i++) {
			char k[32], name[64];
			snprintf(k, sizeof k, "%d", i);
			snprintf(name, sizeof name, "LABEL_%d", i);
			const char *lab = labels && labels[i] ? labels[i] : name;
			json_object_set_new(i2l, k, json_string(lab));
			json_object_set_new(l2i, lab, json_integer(i));
		}
		json_object_set_new(j, "id2label", i2l);
		json_object_set_new(j, "label2id", l2i);
	}
	if (!(text = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS))) {
		rc = train_error_set(err, TRAIN_ENOMEM, dir, 0, 0, "out of memory");
		goto out;
	}
	if ((rc = hf_write_atomic(dir, "config.json", text, strlen(text), err)))
		goto out;
	free(text);
	text = NULL;
	if (vocab) {
		const char *tc = vocab->lowercase ? "{\"do_lower_case\": true, \"tokenizer_class\": \"BertTokenizer\"}\n"
		                                  : "{\"do_lower_case\": false, \"tokenizer_class\": \"BertTokenizer\"}\n";
		if ((rc = bert_vocab_text(vocab, &text, &len)) ||
		    (rc = hf_write_atomic(dir, "vocab.txt", text, len, err)) ||
		    (rc = hf_write_atomic(dir, "tokenizer_config.json", tc, strlen(tc), err)))
			goto out;
	}
	snprintf(path, sizeof path, "%s/model.safetensors", dir);
	rc = hf_params_write(path, m->tensors, m->n_tensors, m->params, "", err);
out:
	free(text);
	json_decref(j);
	return rc;
}

/* ---- PEFT adapters ------------------------------------------------------------------ */

/* PEFT's names are "base_model.model." + the base's own names, which have
 * "bert." before the encoder when the model has a head. */
static const char *peft_prefix(const bert_model *m)
{
	return m->cfg.num_labels || m->cfg.mlm_head ? "base_model.model.bert." : "base_model.model.";
}

static int adapter_shape_ok(const train_tensor *t, int64_t d0, int64_t d1)
{
	return t->ndim == 2 && t->shape[0] == d0 && t->shape[1] == d1;
}

int bert_adapter_save(const bert_model *m, const char *base_name, const char *dir, train_error *err)
{
	const bert_lora *lo = m->lora;
	char path[4096], regex[512];
	json_t *j = NULL;
	train_named_tensor *nt = NULL;
	char (*names)[160] = NULL;
	int rc;
	if (!lo)
		return train_error_set(err, TRAIN_EINVAL, dir, 0, 0, "the model has no adapter to save");
	if (mkdir(dir, 0777) != 0 && errno != EEXIST)
		return train_error_set(err, -errno, dir, 0, 0, "cannot create the folder: %s", strerror(errno));
	const int head = m->grads && m->cls_w && m->grad_off == (size_t)(m->cls_w - m->params);
	size_t cap = 2 * (size_t)lo->n_mods + 2;
	j = json_object();
	nt = calloc(cap, sizeof *nt);
	names = calloc(cap, sizeof *names);
	if (!j || !nt || !names) {
		rc = train_error_set(err, TRAIN_ENOMEM, dir, 0, 0, "out of memory");
		goto out;
	}
	/* target_modules as a regular expression that PEFT matches in full
	 * against each module name: "output.dense" as a plain name would also
	 * catch attention.output.dense */
	snprintf(regex, sizeof regex, ".*encoder\\.layer\\.\\d+\\.(");
	int first = 1;
	for (int k = 0; k < BERT_NKINDS; k++)
		if ((lo->kinds >> k) & 1) {
			char part[64];
			const char *s = bert_lora_kind_path[k];
			size_t o = 0;
			for (; *s && o + 3 < sizeof part; s++) {
				if (*s == '.')
					part[o++] = '\\';
				part[o++] = *s;
			}
			part[o] = '\0';
			if (!first)
				strncat(regex, "|", sizeof regex - strlen(regex) - 1);
			strncat(regex, part, sizeof regex - strlen(regex) - 1);
			first = 0;
		}
	strncat(regex, ")", sizeof regex - strlen(regex) - 1);
	json_object_set_new(j, "peft_type", json_string("LORA"));
	json_object_set_new(j, "task_type", m->cfg.num_labels ? json_string("SEQ_CLS") : json_null());
	json_object_set_new(j, "base_model_name_or_path", json_string(base_name ? base_name : ""));
	json_object_set_new(j, "r", json_integer(lo->rank));
	json_object_set_new(j, "lora_alpha", json_real(lo->alpha));
	json_object_set_new(j, "lora_dropout", json_real(lo->dropout));
	json_object_set_new(j, "target_modules", json_string(regex));
	json_object_set_new(j, "fan_in_fan_out", json_false());
	json_object_set_new(j, "bias", json_string("none"));
	json_object_set_new(j, "inference_mode", json_true());
	json_object_set_new(j, "init_lora_weights", json_true());
	json_object_set_new(j, "modules_to_save", head ? json_pack("[s]", "classifier") : json_null());
	char *text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!text) {
		rc = train_error_set(err, TRAIN_ENOMEM, dir, 0, 0, "out of memory");
		goto out;
	}
	rc = hf_write_atomic(dir, "adapter_config.json", text, strlen(text), err);
	free(text);
	if (rc)
		goto out;
	size_t k = 0;
	for (int i = 0; i < lo->n_mods; i++) {
		const bert_lora_mod *md = &lo->mods[i];
		for (int ab = 0; ab < 2; ab++, k++) {
			snprintf(names[k], sizeof names[k], "%sencoder.layer.%d.%s.lora_%c.weight", peft_prefix(m),
			         md->layer, bert_lora_kind_path[md->kind], ab ? 'B' : 'A');
			nt[k].name = names[k];
			nt[k].t.dtype = TRAIN_F32;
			nt[k].t.ndim = 2;
			nt[k].t.shape[0] = ab ? md->out : lo->rank;
			nt[k].t.shape[1] = ab ? lo->rank : md->in;
			nt[k].t.shape[2] = nt[k].t.shape[3] = 1;
			nt[k].t.data = lo->params + (ab ? md->b_off : md->a_off);
		}
	}
	if (head)
		for (int wb = 0; wb < 2; wb++, k++) {
			snprintf(names[k], sizeof names[k], "base_model.model.classifier.%s", wb ? "bias" : "weight");
			nt[k].name = names[k];
			nt[k].t.dtype = TRAIN_F32;
			nt[k].t.ndim = wb ? 1 : 2;
			nt[k].t.shape[0] = m->cfg.num_labels;
			nt[k].t.shape[1] = wb ? 1 : m->cfg.hidden;
			nt[k].t.shape[2] = nt[k].t.shape[3] = 1;
			nt[k].t.data = wb ? m->cls_b : m->cls_w;
		}
	const char *meta[] = { "format", "pt", NULL };
	snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
	rc = train_safetensors_write(path, nt, k, meta, err);
out:
	free(nt);
	free(names);
	json_decref(j);
	return rc;
}

int bert_adapter_load(bert_model *m, const char *dir, train_error *err)
{
	if (m->lora)
		return train_error_set(err, TRAIN_EINVAL, dir, 0, 0, "the model has an adapter already");
	hf_peft p;
	int rc = hf_peft_open(&p, dir, err);
	if (rc)
		goto out;
	/* the prefix ("bert." or not) and the adapted projections, from layer 0 */
	static const char *const prefixes[2] = { "base_model.model.bert.", "base_model.model." };
	const char *prefix = NULL;
	unsigned kinds = 0;
	for (int q = 0; q < 2 && !kinds; q++) {
		char first[64];
		snprintf(first, sizeof first, "%sencoder.layer.0.", prefixes[q]);
		kinds = hf_peft_kinds(&p, first, bert_lora_kind_path, BERT_NKINDS);
		prefix = prefixes[q];
	}
	if (!kinds || m->cfg.layers == 0) {
		rc = train_error_set(err, TRAIN_ECORRUPT, p.path, 0, 0,
		                     "no base_model.model[.bert].encoder.layer.0.*.lora_A.weight tensor");
		goto out;
	}
	if ((rc = bert_lora_add(m, kinds, p.r, (float)p.alpha, (float)p.dropout, 0))) {
		train_error_set(err, rc, p.config_path, 0, 0, "cannot make the adapter (r %d)", p.r);
		goto out;
	}
	bert_lora *lo = m->lora;
	size_t want = 2 * (size_t)lo->n_mods;
	for (int i = 0; i < lo->n_mods; i++) {
		const bert_lora_mod *md = &lo->mods[i];
		for (int ab = 0; ab < 2; ab++) {
			char name[160];
			snprintf(name, sizeof name, "%sencoder.layer.%d.%s.lora_%c.weight", prefix, md->layer,
			         bert_lora_kind_path[md->kind], ab ? 'B' : 'A');
			if ((rc = hf_peft_tensor(&p, name, ab ? md->out : p.r, ab ? p.r : md->in,
			                         lo->params + (ab ? md->b_off : md->a_off), err)))
				goto out;
		}
	}
	/* PEFT's modules_to_save: the classifier trained beside the adapters */
	train_tensor cw, cb;
	int has_w = !train_safetensors_get(p.st, "base_model.model.classifier.weight", &cw);
	int has_b = !train_safetensors_get(p.st, "base_model.model.classifier.bias", &cb);
	if (has_w || has_b) {
		int L = m->cfg.num_labels;
		if (!has_w || !has_b || !m->cls_w || !adapter_shape_ok(&cw, L, m->cfg.hidden) || cb.ndim != 1 ||
		    cb.shape[0] != L) {
			rc = train_error_set(err, TRAIN_EMISMATCH, p.path, 0, 0,
			                     "base_model.model.classifier.weight/bias do not fit the model's %d labels", L);
			goto out;
		}
		if ((rc = hf_tensor_f32(&cw, m->cls_w, p.path, "classifier.weight", err)) ||
		    (rc = hf_tensor_f32(&cb, m->cls_b, p.path, "classifier.bias", err)))
			goto out;
		want += 2;
	}
	if (train_safetensors_count(p.st) != want) {
		rc = train_error_set(err, TRAIN_ECORRUPT, p.path, 0, 0,
		                     "%zu tensors, but the adapted projections of layer 0 make %zu",
		                     train_safetensors_count(p.st), want);
		goto out;
	}
	rc = TRAIN_OK;
out:
	if (rc)
		bert_lora_drop(m);
	hf_peft_close(&p);
	return rc;
}
