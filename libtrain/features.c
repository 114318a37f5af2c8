/*
 * libtrain/features.c - messages with tokens and feature blocks, and their
 * serialization (<train/features.h>, issue 6).
 *
 * The public structs are views of plain malloc'd arrays: the set owns one
 * array of messages and one of blocks (each with a capacity kept in the
 * private part), and every message owns its strings, entities, tokens and
 * one matrix per block.  Builders validate what they are given, so that a
 * set in memory always satisfies what the decoder checks, and encoding
 * cannot fail except for memory.
 */
#include <train/features.h>

#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAGIC "TRFS"
#define SER_NULL 0xFFFFFFFFu

struct train_features_priv {
	size_t msg_cap, block_cap;
};

/* ---- small helpers ------------------------------------------------------- */

static void xfree(const void *p) { free((void *)p); }

/* Code points in s[0..n) if it is well-formed UTF-8, else -1. */
static int64_t utf8_chars(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	int64_t chars = 0;
	while (i < n) {
		unsigned c = s[i], cp, min;
		size_t k;
		if (c < 0x80) {
			i++, chars++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1, cp = c & 0x1f, min = 0x80;
		else if ((c & 0xf0) == 0xe0)
			k = 2, cp = c & 0x0f, min = 0x800;
		else if (c >= 0xf0 && c <= 0xf4)
			k = 3, cp = c & 0x07, min = 0x10000;
		else
			return -1;
		if (n - i - 1 < k)
			return -1;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return -1;
			cp = (cp << 6) | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return -1;
		i += k + 1;
		chars++;
	}
	return chars;
}

/* A copy of an optional string; *ok cleared when out of memory. */
static char *dup_opt(const char *s, int *ok)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*ok = 0;
	return d;
}

static int str_ok(const char *s)
{
	if (!s)
		return 0;
	size_t n = strlen(s);
	return n < SER_NULL && utf8_chars(s, n) >= 0;
}

static int opt_ok(const char *s) { return !s || str_ok(s); }

static void matrix_clear(train_feat_matrix *m)
{
	xfree(m->indptr);
	xfree(m->indices);
	xfree(m->values);
	memset(m, 0, sizeof *m);
}

/* An empty (sparse) or zero (dense) matrix of `rows` rows. */
static int matrix_init(train_feat_matrix *m, const train_feat_block *b, uint32_t rows)
{
	memset(m, 0, sizeof *m);
	m->rows = rows;
	if (b->kind == TRAIN_FEAT_SPARSE) {
		m->indptr = calloc((size_t)rows + 1, sizeof *m->indptr);
		return m->indptr ? TRAIN_OK : TRAIN_ENOMEM;
	}
	if (b->dim && rows > SIZE_MAX / sizeof(float) / b->dim)
		return TRAIN_ENOMEM;
	m->values = calloc((size_t)rows * b->dim, sizeof(float));
	return m->values ? TRAIN_OK : TRAIN_ENOMEM;
}

static void names_free(train_rasa_names *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		xfree(ns->v[i]);
	xfree(ns->v);
	ns->v = NULL;
	ns->n = 0;
}

static void entities_free(const train_rasa_entity *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		xfree(e[i].entity);
		xfree(e[i].value);
		xfree(e[i].role);
		xfree(e[i].group);
	}
	xfree(e);
}

static void tokens_free(const train_feat_token *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		xfree(t[i].text);
		xfree(t[i].lemma);
		xfree(t[i].pos);
	}
	xfree(t);
}

static void message_free(train_feat_message *m, size_t n_blocks)
{
	xfree(m->text);
	xfree(m->intent);
	xfree(m->response_key);
	entities_free(m->entities, m->n_entities);
	tokens_free(m->tokens, m->n_tokens);
	if (m->features)
		for (size_t b = 0; b < n_blocks; b++)
			matrix_clear((train_feat_matrix *)&m->features[b]);
	xfree(m->features);
}

void train_features_free(train_features *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->n_messages; i++)
		message_free((train_feat_message *)&f->messages[i], f->n_blocks);
	xfree(f->messages);
	for (size_t i = 0; i < f->n_blocks; i++)
		xfree(f->blocks[i].name);
	xfree(f->blocks);
	for (size_t i = 0; i < f->n_intents; i++) {
		xfree(f->intents[i].name);
		names_free((train_rasa_names *)&f->intents[i].tokens);
	}
	xfree(f->intents);
	names_free(&f->entity_tags);
	free(f->priv_);
	free(f);
}

int train_features_create(train_features **out)
{
	if (!out)
		return TRAIN_EINVAL;
	*out = NULL;
	train_features *f = calloc(1, sizeof *f);
	if (!f || !(f->priv_ = calloc(1, sizeof *f->priv_))) {
		free(f);
		return TRAIN_ENOMEM;
	}
	*out = f;
	return TRAIN_OK;
}

/* Room for one more message; the new slot is zeroed. */
static train_feat_message *message_slot(train_features *f)
{
	struct train_features_priv *p = f->priv_;
	if (f->n_messages >= SER_NULL - 1)
		return NULL;
	if (f->n_messages == p->msg_cap) {
		size_t cap = p->msg_cap ? p->msg_cap * 2 : 16;
		train_feat_message *m = realloc((void *)f->messages, cap * sizeof *m);
		if (!m)
			return NULL;
		f->messages = m;
		p->msg_cap = cap;
	}
	train_feat_message *m = (train_feat_message *)&f->messages[f->n_messages];
	memset(m, 0, sizeof *m);
	return m;
}

/* Fill a zeroed message slot with copies; on failure the slot is freed again. */
static int message_fill(train_features *f, train_feat_message *m, const char *text, const char *intent,
                        const char *response_key, const train_rasa_entity *ents, size_t n_ents)
{
	int ok = 1;
	size_t len = strlen(text);
	int64_t chars = utf8_chars(text, len);
	if (len >= SER_NULL || chars < 0 || !opt_ok(intent) || !opt_ok(response_key) ||
	    n_ents >= SER_NULL)
		return TRAIN_EINVAL;
	for (size_t i = 0; i < n_ents; i++) {
		const train_rasa_entity *e = &ents[i];
		if (!str_ok(e->entity) || !str_ok(e->value) || !opt_ok(e->role) || !opt_ok(e->group) ||
		    e->start > e->end || e->end > chars || e->byte_start > e->byte_end ||
		    e->byte_end > len)
			return TRAIN_EINVAL;
	}
	m->text = dup_opt(text, &ok);
	m->text_len = (uint32_t)len;
	m->text_chars = (uint32_t)chars;
	m->intent = dup_opt(intent, &ok);
	m->response_key = dup_opt(response_key, &ok);
	if (n_ents) {
		train_rasa_entity *e = calloc(n_ents, sizeof *e);
		if (!e) {
			ok = 0;
		} else {
			m->entities = e;
			m->n_entities = n_ents;
			for (size_t i = 0; i < n_ents; i++) {
				e[i] = ents[i];
				e[i].entity = dup_opt(ents[i].entity, &ok);
				e[i].value = dup_opt(ents[i].value, &ok);
				e[i].role = dup_opt(ents[i].role, &ok);
				e[i].group = dup_opt(ents[i].group, &ok);
			}
		}
	}
	if (ok && f->n_blocks) {
		train_feat_matrix *mx = calloc(f->priv_->block_cap, sizeof *mx);
		m->features = mx;
		for (size_t b = 0; mx && b < f->n_blocks && ok; b++)
			if (matrix_init(&mx[b], &f->blocks[b], 1))
				ok = 0;
		if (!mx)
			ok = 0;
	}
	if (!ok) {
		message_free(m, f->n_blocks);
		memset(m, 0, sizeof *m);
		return TRAIN_ENOMEM;
	}
	return TRAIN_OK;
}

int train_features_add_message(train_features *f, const char *text, const char *intent, size_t *index)
{
	if (!f || !text)
		return TRAIN_EINVAL;
	train_feat_message *m = message_slot(f);
	if (!m)
		return TRAIN_ENOMEM;
	int rc = message_fill(f, m, text, intent, NULL, NULL, 0);
	if (rc)
		return rc;
	if (index)
		*index = f->n_messages;
	f->n_messages++;
	return TRAIN_OK;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sort and de-duplicate n strings in place; returns the new count. */
static size_t sort_unique(const char **v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof *v, cmp_str);
	size_t k = 1;
	for (size_t i = 1; i < n; i++)
		if (strcmp(v[i], v[k - 1]) != 0)
			v[k++] = v[i];
	return k;
}

int train_features_from_nlu(const train_rasa_nlu *nlu, train_features **out)
{
	if (!nlu || !out)
		return TRAIN_EINVAL;
	train_features *f = NULL;
	const char **names = NULL;
	int rc = train_features_create(&f);
	if (rc)
		return rc;
	for (size_t i = 0; i < nlu->n_messages; i++) {
		const train_rasa_message *rm = &nlu->messages[i];
		train_feat_message *m = message_slot(f);
		if (!m) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		if ((rc = message_fill(f, m, rm->text, rm->intent, rm->response_key, rm->entities,
		                       rm->n_entities)))
			goto out;
		f->n_messages++;
	}

	/* Labels: intents, then entity types, sorted and unique. */
	size_t n_ents = 0;
	for (size_t i = 0; i < nlu->n_messages; i++)
		n_ents += nlu->messages[i].n_entities;
	size_t n_names = nlu->n_messages > n_ents ? nlu->n_messages : n_ents;
	names = malloc((n_names ? n_names : 1) * sizeof *names);
	if (!names) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	size_t k = 0;
	for (size_t i = 0; i < nlu->n_messages; i++)
		if (nlu->messages[i].intent)
			names[k++] = nlu->messages[i].intent;
	k = sort_unique(names, k);
	if (k) {
		train_feat_label *labels = calloc(k, sizeof *labels);
		if (!labels) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		f->intents = labels;
		for (size_t i = 0; i < k; i++) {
			if (!(labels[i].name = strdup(names[i]))) {
				rc = TRAIN_ENOMEM;
				goto out;
			}
			f->n_intents++;
		}
	}
	k = 0;
	for (size_t i = 0; i < nlu->n_messages; i++)
		for (size_t j = 0; j < nlu->messages[i].n_entities; j++)
			names[k++] = nlu->messages[i].entities[j].entity;
	k = sort_unique(names, k);
	if (k) {
		const char **tags = calloc(k, sizeof *tags);
		if (!tags) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		f->entity_tags.v = tags;
		for (size_t i = 0; i < k; i++) {
			if (!(tags[i] = strdup(names[i]))) {
				rc = TRAIN_ENOMEM;
				goto out;
			}
			f->entity_tags.n++;
		}
	}
out:
	free(names);
	if (rc) {
		train_features_free(f);
		f = NULL;
	}
	*out = f;
	return rc;
}

int train_features_set_tokens(train_features *f, size_t msg, const train_feat_token *tokens, size_t n)
{
	if (!f || msg >= f->n_messages || (n && !tokens) || f->n_blocks || n >= SER_NULL - 1)
		return TRAIN_EINVAL;
	train_feat_message *m = (train_feat_message *)&f->messages[msg];
	for (size_t i = 0; i < n; i++)
		if (!str_ok(tokens[i].text) || !opt_ok(tokens[i].lemma) || !opt_ok(tokens[i].pos) ||
		    tokens[i].start > tokens[i].end || tokens[i].end > m->text_chars)
			return TRAIN_EINVAL;
	train_feat_token *t = NULL;
	if (n) {
		int ok = 1;
		if (!(t = calloc(n, sizeof *t)))
			return TRAIN_ENOMEM;
		for (size_t i = 0; i < n; i++) {
			t[i] = tokens[i];
			t[i].text = dup_opt(tokens[i].text, &ok);
			t[i].lemma = dup_opt(tokens[i].lemma, &ok);
			t[i].pos = dup_opt(tokens[i].pos, &ok);
		}
		if (!ok) {
			tokens_free(t, n);
			return TRAIN_ENOMEM;
		}
	}
	tokens_free(m->tokens, m->n_tokens);
	m->tokens = t;
	m->n_tokens = n;
	return TRAIN_OK;
}

/* Copies of n strings into *ns (replacing it). */
static int names_set(train_rasa_names *ns, const char *const *v, size_t n)
{
	if ((n && !v) || n >= SER_NULL)
		return TRAIN_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!str_ok(v[i]))
			return TRAIN_EINVAL;
	train_rasa_names nn = { NULL, 0 };
	if (n) {
		const char **c = calloc(n, sizeof *c);
		if (!c)
			return TRAIN_ENOMEM;
		nn.v = c;
		for (size_t i = 0; i < n; i++, nn.n++)
			if (!(c[i] = strdup(v[i]))) {
				names_free(&nn);
				return TRAIN_ENOMEM;
			}
	}
	names_free(ns);
	*ns = nn;
	return TRAIN_OK;
}

int train_features_set_intent_tokens(train_features *f, size_t label, const char *const *tokens,
                                     size_t n)
{
	if (!f || label >= f->n_intents)
		return TRAIN_EINVAL;
	return names_set((train_rasa_names *)&f->intents[label].tokens, tokens, n);
}

int train_features_add_block(train_features *f, const char *name, train_feat_kind kind, uint32_t dim,
                             uint32_t flags, size_t *index)
{
	if (!f || !name || !name[0] || !str_ok(name) || dim == 0 || dim == SER_NULL ||
	    (kind != TRAIN_FEAT_SPARSE && kind != TRAIN_FEAT_DENSE) || !flags ||
	    (flags & ~(uint32_t)(TRAIN_FEAT_SEQUENCE | TRAIN_FEAT_SENTENCE)) || f->n_blocks >= SER_NULL - 1)
		return TRAIN_EINVAL;
	for (size_t i = 0; i < f->n_blocks; i++)
		if (strcmp(f->blocks[i].name, name) == 0)
			return TRAIN_EEXIST;
	struct train_features_priv *p = f->priv_;
	if (f->n_blocks == p->block_cap) {
		size_t cap = p->block_cap ? p->block_cap * 2 : 4;
		train_feat_block *bl = realloc((void *)f->blocks, cap * sizeof *bl);
		if (!bl)
			return TRAIN_ENOMEM;
		f->blocks = bl;
		for (size_t i = 0; i < f->n_messages; i++) {
			train_feat_message *m = (train_feat_message *)&f->messages[i];
			train_feat_matrix *mx = realloc((void *)m->features, cap * sizeof *mx);
			if (!mx)
				return TRAIN_ENOMEM; /* the larger arrays so far are kept; harmless */
			m->features = mx;
		}
		p->block_cap = cap;
	}
	train_feat_block *b = (train_feat_block *)&f->blocks[f->n_blocks];
	train_feat_block nb = { NULL, kind, dim, flags };
	if (!(nb.name = strdup(name)))
		return TRAIN_ENOMEM;
	size_t i = 0;
	int rc = TRAIN_OK;
	for (; i < f->n_messages; i++) {
		const train_feat_message *m = &f->messages[i];
		if ((rc = matrix_init((train_feat_matrix *)&m->features[f->n_blocks], &nb,
		                      (uint32_t)m->n_tokens + 1)))
			break;
	}
	if (rc) {
		while (i--)
			matrix_clear((train_feat_matrix *)&f->messages[i].features[f->n_blocks]);
		xfree(nb.name);
		return rc;
	}
	*b = nb;
	if (index)
		*index = f->n_blocks;
	f->n_blocks++;
	return TRAIN_OK;
}

int train_features_set_sparse(train_features *f, size_t block, size_t msg, const uint32_t *indptr,
                              const uint32_t *indices, const float *values)
{
	if (!f || block >= f->n_blocks || msg >= f->n_messages || !indptr ||
	    f->blocks[block].kind != TRAIN_FEAT_SPARSE)
		return TRAIN_EINVAL;
	const train_feat_message *m = &f->messages[msg];
	train_feat_matrix *mx = (train_feat_matrix *)&m->features[block];
	uint32_t rows = mx->rows, dim = f->blocks[block].dim;
	if (indptr[0] != 0)
		return TRAIN_EINVAL;
	for (uint32_t r = 0; r < rows; r++) {
		if (indptr[r + 1] < indptr[r] || indptr[r + 1] == SER_NULL)
			return TRAIN_EINVAL;
		for (uint32_t j = indptr[r]; j < indptr[r + 1]; j++)
			if (indices[j] >= dim || (j > indptr[r] && indices[j] <= indices[j - 1]) ||
			    !isfinite(values[j]) || values[j] == 0.0f)
				return TRAIN_EINVAL;
	}
	uint32_t nnz = indptr[rows];
	uint32_t *ip = malloc(((size_t)rows + 1) * sizeof *ip);
	uint32_t *ix = nnz ? malloc((size_t)nnz * sizeof *ix) : NULL;
	float *vs = nnz ? malloc((size_t)nnz * sizeof *vs) : NULL;
	if (!ip || (nnz && (!ix || !vs))) {
		free(ip);
		free(ix);
		free(vs);
		return TRAIN_ENOMEM;
	}
	memcpy(ip, indptr, ((size_t)rows + 1) * sizeof *ip);
	if (nnz) {
		memcpy(ix, indices, (size_t)nnz * sizeof *ix);
		memcpy(vs, values, (size_t)nnz * sizeof *vs);
	}
	matrix_clear(mx);
	mx->rows = rows;
	mx->nnz = nnz;
	mx->indptr = ip;
	mx->indices = ix;
	mx->values = vs;
	return TRAIN_OK;
}

int train_features_set_dense(train_features *f, size_t block, size_t msg, const float *values)
{
	if (!f || block >= f->n_blocks || msg >= f->n_messages || !values ||
	    f->blocks[block].kind != TRAIN_FEAT_DENSE)
		return TRAIN_EINVAL;
	train_feat_matrix *mx = (train_feat_matrix *)&f->messages[msg].features[block];
	size_t n = (size_t)mx->rows * f->blocks[block].dim;
	for (size_t i = 0; i < n; i++)
		if (!isfinite(values[i]))
			return TRAIN_EINVAL;
	memcpy((void *)mx->values, values, n * sizeof(float));
	return TRAIN_OK;
}

int train_features_find_block(const train_features *f, const char *name, size_t *index)
{
	if (!f || !name)
		return TRAIN_EINVAL;
	for (size_t i = 0; i < f->n_blocks; i++)
		if (strcmp(f->blocks[i].name, name) == 0) {
			if (index)
				*index = i;
			return TRAIN_OK;
		}
	return TRAIN_ENOTFOUND;
}

int train_features_find_intent(const train_features *f, const char *name, size_t *index)
{
	if (!f || !name)
		return TRAIN_EINVAL;
	size_t lo = 0, hi = f->n_intents;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(f->intents[mid].name, name);
		if (c == 0) {
			if (index)
				*index = mid;
			return TRAIN_OK;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return TRAIN_ENOTFOUND;
}

/* ---- encoding ------------------------------------------------------------ */

typedef struct wr {
	train_buf b;
	int rc;
} wr;

static void w_bytes(wr *w, const void *p, size_t n)
{
	if (!w->rc && n && train_buf_add(&w->b, p, n))
		w->rc = TRAIN_ENOMEM;
}
static void w_u32(wr *w, uint32_t v)
{
	unsigned char b[4];
	train_put_u32(b, v);
	w_bytes(w, b, 4);
}
static void w_f32(wr *w, float x)
{
	uint32_t u;
	memcpy(&u, &x, 4);
	w_u32(w, u);
}
/* Strings and counts were checked to be < SER_NULL when they were set. */
static void w_str(wr *w, const char *s)
{
	if (!s) {
		w_u32(w, SER_NULL);
		return;
	}
	size_t n = strlen(s);
	w_u32(w, (uint32_t)n);
	w_bytes(w, s, n);
}
static void w_names(wr *w, train_rasa_names ns)
{
	w_u32(w, (uint32_t)ns.n);
	for (size_t i = 0; i < ns.n; i++)
		w_str(w, ns.v[i]);
}

int train_features_to_value(const train_features *f, train_value **out, train_error *err)
{
	if (!f || !out)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0,
		                       "train_features_to_value: NULL argument");
	*out = NULL;
	wr w = { { 0 }, 0 };
	w_bytes(&w, MAGIC, 4);
	w_u32(&w, TRAIN_FEATURES_FORMAT);
	w_u32(&w, (uint32_t)f->n_intents);
	for (size_t i = 0; i < f->n_intents; i++) {
		w_str(&w, f->intents[i].name);
		w_names(&w, f->intents[i].tokens);
	}
	w_names(&w, f->entity_tags);
	w_u32(&w, (uint32_t)f->n_blocks);
	for (size_t i = 0; i < f->n_blocks; i++) {
		w_str(&w, f->blocks[i].name);
		w_u32(&w, (uint32_t)f->blocks[i].kind);
		w_u32(&w, f->blocks[i].dim);
		w_u32(&w, f->blocks[i].flags);
	}
	w_u32(&w, (uint32_t)f->n_messages);
	for (size_t i = 0; i < f->n_messages; i++) {
		const train_feat_message *m = &f->messages[i];
		w_str(&w, m->text);
		w_str(&w, m->intent);
		w_str(&w, m->response_key);
		w_u32(&w, (uint32_t)m->n_entities);
		for (size_t j = 0; j < m->n_entities; j++) {
			const train_rasa_entity *e = &m->entities[j];
			w_str(&w, e->entity);
			w_str(&w, e->value);
			w_str(&w, e->role);
			w_str(&w, e->group);
			w_u32(&w, e->start);
			w_u32(&w, e->end);
			w_u32(&w, e->byte_start);
			w_u32(&w, e->byte_end);
		}
		w_u32(&w, (uint32_t)m->n_tokens);
		for (size_t j = 0; j < m->n_tokens; j++) {
			const train_feat_token *t = &m->tokens[j];
			w_str(&w, t->text);
			w_u32(&w, t->start);
			w_u32(&w, t->end);
			w_str(&w, t->lemma);
			w_str(&w, t->pos);
			w_u32(&w, (uint32_t)t->id);
		}
		for (size_t b = 0; b < f->n_blocks; b++) {
			const train_feat_matrix *mx = &m->features[b];
			if (f->blocks[b].kind == TRAIN_FEAT_SPARSE) {
				/* Row lengths, then (column, value) pairs: no offsets to check. */
				for (uint32_t r = 0; r < mx->rows; r++)
					w_u32(&w, mx->indptr[r + 1] - mx->indptr[r]);
				for (uint32_t j = 0; j < mx->nnz; j++) {
					w_u32(&w, mx->indices[j]);
					w_f32(&w, mx->values[j]);
				}
			} else {
				size_t n = (size_t)mx->rows * f->blocks[b].dim;
				for (size_t j = 0; j < n; j++)
					w_f32(&w, mx->values[j]);
			}
		}
	}
	if (w.rc) {
		train_buf_free(&w.b);
		return train_error_set(err, w.rc, NULL, 0, 0, "out of memory");
	}
	int rc = train_value_new_take(TRAIN_FEATURES_TYPE, w.b.data, w.b.len, out);
	if (rc)
		return train_error_set(err, rc, NULL, 0, 0, "out of memory");
	return TRAIN_OK;
}

/* ---- decoding ------------------------------------------------------------ */

typedef struct rd {
	const unsigned char *p, *end;
	int rc;
} rd;

static int r_need(rd *r, size_t n)
{
	if (r->rc)
		return 0;
	if ((size_t)(r->end - r->p) < n) {
		r->rc = TRAIN_ECORRUPT;
		return 0;
	}
	return 1;
}
static uint32_t r_u32(rd *r)
{
	if (!r_need(r, 4))
		return 0;
	uint32_t v = train_get_u32(r->p);
	r->p += 4;
	return v;
}
static float r_f32(rd *r)
{
	uint32_t u = r_u32(r);
	float x;
	memcpy(&x, &u, 4);
	if (!r->rc && !isfinite(x))
		r->rc = TRAIN_ECORRUPT;
	return x;
}
/* A count of items of at least `min_size` bytes each that the bytes left can hold. */
static uint32_t r_count(rd *r, size_t min_size)
{
	uint32_t n = r_u32(r);
	if (r->rc)
		return 0;
	if (n == SER_NULL || (min_size && n > (size_t)(r->end - r->p) / min_size)) {
		r->rc = TRAIN_ECORRUPT;
		return 0;
	}
	return n;
}
/* A string (NULL when absent or on error); `req`: absent is corrupt. */
static char *r_str(rd *r, int req)
{
	uint32_t n = r_u32(r);
	if (r->rc)
		return NULL;
	if (n == SER_NULL) {
		if (req)
			r->rc = TRAIN_ECORRUPT;
		return NULL;
	}
	if (!r_need(r, n))
		return NULL;
	if (memchr(r->p, '\0', n) || utf8_chars((const char *)r->p, n) < 0) {
		r->rc = TRAIN_ECORRUPT;
		return NULL;
	}
	char *s = malloc((size_t)n + 1);
	if (!s) {
		r->rc = TRAIN_ENOMEM;
		return NULL;
	}
	memcpy(s, r->p, n);
	s[n] = '\0';
	r->p += n;
	return s;
}
/* Sorted, unique names (labels must be). */
static void r_names(rd *r, train_rasa_names *ns, int sorted)
{
	uint32_t n = r_count(r, 4);
	if (r->rc || !n)
		return;
	const char **v = calloc(n, sizeof *v);
	if (!v) {
		r->rc = TRAIN_ENOMEM;
		return;
	}
	ns->v = v;
	for (uint32_t i = 0; i < n && !r->rc; i++) {
		if (!(v[i] = r_str(r, 1)))
			break;
		ns->n++;
		if (sorted && i && strcmp(v[i - 1], v[i]) >= 0)
			r->rc = TRAIN_ECORRUPT;
	}
}

static void r_message(rd *r, train_features *f, train_feat_message *m)
{
	char *text = r_str(r, 1);
	if (r->rc)
		return;
	m->text = text;
	m->text_len = (uint32_t)strlen(text);
	m->text_chars = (uint32_t)utf8_chars(text, m->text_len);
	m->intent = r_str(r, 0);
	m->response_key = r_str(r, 0);
	uint32_t ne = r_count(r, 32);
	if (r->rc)
		return;
	if (ne) {
		train_rasa_entity *e = calloc(ne, sizeof *e);
		if (!e) {
			r->rc = TRAIN_ENOMEM;
			return;
		}
		m->entities = e;
		for (uint32_t j = 0; j < ne && !r->rc; j++, m->n_entities++) {
			e[j].entity = r_str(r, 1);
			e[j].value = r_str(r, 1);
			e[j].role = r_str(r, 0);
			e[j].group = r_str(r, 0);
			e[j].start = r_u32(r);
			e[j].end = r_u32(r);
			e[j].byte_start = r_u32(r);
			e[j].byte_end = r_u32(r);
			if (!r->rc && (e[j].start > e[j].end || e[j].end > m->text_chars ||
			               e[j].byte_start > e[j].byte_end || e[j].byte_end > m->text_len))
				r->rc = TRAIN_ECORRUPT;
		}
	}
	/* A token takes at least 24 bytes, and its row count one more. */
	uint32_t nt = r_count(r, 24);
	if (r->rc)
		return;
	if (nt) {
		train_feat_token *t = calloc(nt, sizeof *t);
		if (!t) {
			r->rc = TRAIN_ENOMEM;
			return;
		}
		m->tokens = t;
		for (uint32_t j = 0; j < nt && !r->rc; j++, m->n_tokens++) {
			t[j].text = r_str(r, 1);
			t[j].start = r_u32(r);
			t[j].end = r_u32(r);
			t[j].lemma = r_str(r, 0);
			t[j].pos = r_str(r, 0);
			t[j].id = (int32_t)r_u32(r);
			if (!r->rc && (t[j].start > t[j].end || t[j].end > m->text_chars))
				r->rc = TRAIN_ECORRUPT;
		}
	}
	if (r->rc || !f->n_blocks)
		return;
	train_feat_matrix *mx = calloc(f->n_blocks, sizeof *mx);
	if (!mx) {
		r->rc = TRAIN_ENOMEM;
		return;
	}
	m->features = mx;
	uint32_t rows = nt + 1;
	for (size_t b = 0; b < f->n_blocks && !r->rc; b++) {
		const train_feat_block *bl = &f->blocks[b];
		train_feat_matrix *x = &mx[b];
		x->rows = rows;
		if (bl->kind == TRAIN_FEAT_DENSE) {
			/* rows * dim floats must be there: checked before allocating. */
			uint64_t n = (uint64_t)rows * bl->dim;
			if ((uint64_t)(r->end - r->p) / 4 < n) {
				r->rc = TRAIN_ECORRUPT;
				return;
			}
			float *v = malloc((size_t)n * sizeof *v);
			if (!v) {
				r->rc = TRAIN_ENOMEM;
				return;
			}
			x->values = v;
			for (uint64_t j = 0; j < n && !r->rc; j++)
				v[j] = r_f32(r);
			continue;
		}
		if (!r_need(r, (size_t)rows * 4))
			return;
		uint32_t *ip = malloc(((size_t)rows + 1) * sizeof *ip);
		if (!ip) {
			r->rc = TRAIN_ENOMEM;
			return;
		}
		x->indptr = ip;
		ip[0] = 0;
		uint64_t nnz = 0;
		for (uint32_t i = 0; i < rows; i++) {
			nnz += r_u32(r);
			/* Each entry takes 8 bytes: no more than the bytes left allow. */
			if (nnz > (uint64_t)(r->end - r->p) / 8 || nnz >= SER_NULL) {
				r->rc = TRAIN_ECORRUPT;
				return;
			}
			ip[i + 1] = (uint32_t)nnz;
		}
		x->nnz = (uint32_t)nnz;
		if (!nnz)
			continue;
		uint32_t *ix = malloc((size_t)nnz * sizeof *ix);
		float *v = malloc((size_t)nnz * sizeof *v);
		x->indices = ix;
		x->values = v;
		if (!ix || !v) {
			r->rc = TRAIN_ENOMEM;
			return;
		}
		for (uint32_t i = 0; i < rows && !r->rc; i++)
			for (uint32_t j = ip[i]; j < ip[i + 1] && !r->rc; j++) {
				ix[j] = r_u32(r);
				v[j] = r_f32(r);
				if (!r->rc && (ix[j] >= bl->dim || v[j] == 0.0f ||
				               (j > ip[i] && ix[j] <= ix[j - 1])))
					r->rc = TRAIN_ECORRUPT;
			}
	}
}

int train_features_decode(const void *data, size_t size, train_features **out, train_error *err)
{
	if (!out || (!data && size))
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_features_decode: NULL argument");
	*out = NULL;
	train_features *f = NULL;
	int rc = train_features_create(&f);
	if (rc)
		return train_error_set(err, rc, NULL, 0, 0, "out of memory");
	rd r = { data, (const unsigned char *)data + size, 0 };
	if (r_need(&r, 8) && (memcmp(r.p, MAGIC, 4) != 0 || train_get_u32(r.p + 4) != TRAIN_FEATURES_FORMAT))
		r.rc = TRAIN_ECORRUPT;
	r.p += r.rc ? 0 : 8;

	uint32_t ni = r_count(&r, 8);
	if (ni) {
		train_feat_label *l = calloc(ni, sizeof *l);
		if (!l)
			r.rc = TRAIN_ENOMEM;
		f->intents = l;
		for (uint32_t i = 0; l && i < ni && !r.rc; i++) {
			if (!(l[i].name = r_str(&r, 1)))
				break;
			f->n_intents++;
			r_names(&r, (train_rasa_names *)&l[i].tokens, 0);
			if (!r.rc && i && strcmp(l[i - 1].name, l[i].name) >= 0)
				r.rc = TRAIN_ECORRUPT;
		}
	}
	r_names(&r, &f->entity_tags, 1);

	uint32_t nb = r_count(&r, 16);
	if (nb) {
		train_feat_block *b = calloc(nb, sizeof *b);
		if (!b)
			r.rc = TRAIN_ENOMEM;
		f->blocks = b;
		f->priv_->block_cap = nb;
		for (uint32_t i = 0; b && i < nb && !r.rc; i++) {
			if (!(b[i].name = r_str(&r, 1)))
				break;
			f->n_blocks++;
			uint32_t kind = r_u32(&r), flags;
			b[i].kind = (train_feat_kind)kind;
			b[i].dim = r_u32(&r);
			b[i].flags = flags = r_u32(&r);
			if (!r.rc && ((kind != TRAIN_FEAT_SPARSE && kind != TRAIN_FEAT_DENSE) || !b[i].name[0] ||
			              b[i].dim == 0 || b[i].dim == SER_NULL || !flags ||
			              (flags & ~(uint32_t)(TRAIN_FEAT_SEQUENCE | TRAIN_FEAT_SENTENCE))))
				r.rc = TRAIN_ECORRUPT;
			for (uint32_t j = 0; j < i && !r.rc; j++)
				if (strcmp(b[j].name, b[i].name) == 0)
					r.rc = TRAIN_ECORRUPT;
		}
	}

	/* A message takes at least 20 bytes. */
	uint32_t nm = r_count(&r, 20);
	if (nm && !r.rc) {
		train_feat_message *m = calloc(nm, sizeof *m);
		if (!m)
			r.rc = TRAIN_ENOMEM;
		f->messages = m;
		f->priv_->msg_cap = nm;
		for (uint32_t i = 0; m && i < nm && !r.rc; i++) {
			f->n_messages++;
			r_message(&r, f, &m[i]);
		}
	}
	if (!r.rc && r.p != r.end)
		r.rc = TRAIN_ECORRUPT;
	if (r.rc) {
		/* A message cut short has the features array of n_blocks (zeroed) or none. */
		train_features_free(f);
		return train_error_set(err, r.rc, NULL, 0, 0, "%s",
		                       r.rc == TRAIN_ENOMEM ? "out of memory"
		                                            : "not a valid serialized features value");
	}
	*out = f;
	return TRAIN_OK;
}

int train_features_from_value(const train_value *v, train_features **out, train_error *err)
{
	if (!v || !out)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0,
		                       "train_features_from_value: NULL argument");
	*out = NULL;
	if (strcmp(train_value_type(v), TRAIN_FEATURES_TYPE) != 0)
		return train_error_set(err, TRAIN_ECORRUPT, NULL, 0, 0,
		                       "expected a value of type %s, not %s", TRAIN_FEATURES_TYPE,
		                       train_value_type(v));
	return train_features_decode(train_value_data(v), train_value_size(v), out, err);
}
