/*
 * plugins/rag/rag.c - the RAG indexer plugin (issue 8): graph components
 * that read documents, chunk them, index them with BM25 and HNSW, and answer
 * queries (BM25, dense, or the two fused).
 *
 *   Documents        JSONL documents (id, text, title, metadata) through
 *                    <train/corpus.h>; chunks of `chunk_tokens` terms with
 *                    `chunk_overlap` shared; bad lines fatal or skipped
 *                    (`on_bad_line`), each reported as file:line.
 *                    out: chunks
 *   BM25             the inverted index of the chunks (bm25.h).
 *                    in: chunks   out: index
 *   VectorFile       vectors for the chunks from a float32 file (until the
 *                    dense encoder lands; see below).   out: vectors
 *   HNSW             the HNSW graph of the vectors (hnsw.h).
 *                    in: vectors   out: index
 *   Retriever        BM25 retrieval over the chunks; persists them and the
 *                    index into the model.   in: chunks, bm25
 *   HybridRetriever  BM25 + dense, fused (RRF or weighted scores).
 *                    in: chunks, bm25, hnsw
 * Both retrievers predict from `query` (text), `k`, `mode` (bm25, dense,
 * hybrid) and `query_vector` (a JSON list of floats; the dense encoder of
 * the predict schema will fill it from the query), and answer one JSON
 * object: {"mode", "hits": [{"rank", "id", "score", "chunk", "start",
 * "end", "text"}]} with one hit per document (its best chunk).
 *
 * What is not here yet: the dense encoder (a `DenseEncoder` node, BERT with
 * mean pooling, from the bert branch) that turns chunks into `vectors` and a
 * query into `query_vector`; sharded re-encoding.
 *
 * Values: chunks are JSON Lines, one compact object per chunk in document
 * order {"id", "doc", "title"?, "text", "start", "end"} (start/end: byte
 * offsets of the chunk in its document's text); vectors are "TRNVEC1\0",
 * uint64 n, uint32 dim, uint32 0, then n x dim float32 (little-endian);
 * the indexes are the files of bm25.c and hnsw.c.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <train/corpus.h>
#include <train/plugin.h>

#include "../common/text.h"
#include "bm25.h"
#include "dense.h"
#include "hnsw.h"

#define TYPE_CHUNKS "application/vnd.train.rag-chunks"
#define TYPE_BM25 "application/vnd.train.rag-bm25"
#define TYPE_HNSW "application/vnd.train.rag-hnsw"
#define TYPE_VECTORS "application/vnd.train.rag-vectors"
#define TYPE_ENCODER "application/vnd.train.rag-encoder"
#define VEC_MAGIC "TRNVEC1\0"
#define VEC_HEADER 24

static char *xstrdup(const char *s)
{
	char *d = s ? malloc(strlen(s) + 1) : NULL;
	if (d)
		strcpy(d, s);
	return d;
}

/* ---- Documents ----------------------------------------------------------------- */

static const train_param documents_params[] = {
	{ "path", TRAIN_PARAM_PATH, NULL, "the documents, JSON Lines: id, text, title, metadata" },
	{ "chunk_tokens", TRAIN_PARAM_INT, "0", "terms per chunk; 0: one chunk per document" },
	{ "chunk_overlap", TRAIN_PARAM_INT, "0", "terms a chunk shares with the one before" },
	{ "on_bad_line", TRAIN_PARAM_STRING, "fatal", "a bad line: fatal, or skip (reported)" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

typedef struct documents {
	int64_t chunk_tokens, chunk_overlap;
	int skip;
	char *path;
} documents;

static void documents_destroy(void *self)
{
	documents *d = self;
	if (d)
		free(d->path);
	free(d);
}

static int documents_create(const train_config *c, train_ctx *ctx, void **self)
{
	documents *d = calloc(1, sizeof *d);
	if (!d)
		return TRAIN_ENOMEM;
	d->chunk_tokens = train_config_int(c, "chunk_tokens");
	d->chunk_overlap = train_config_int(c, "chunk_overlap");
	const char *bad = train_config_string(c, "on_bad_line");
	d->path = train_ctx_resolve(ctx, train_config_string(c, "path"));
	*self = d;
	if (!d->path)
		return TRAIN_ENOMEM;
	if (strcmp(bad, "fatal") && strcmp(bad, "skip"))
		return train_fail(ctx, "on_bad_line must be fatal or skip, not '%s'", bad);
	d->skip = !strcmp(bad, "skip");
	if (d->chunk_tokens < 0 || d->chunk_overlap < 0 ||
	    (d->chunk_tokens && d->chunk_overlap >= d->chunk_tokens))
		return train_fail(ctx, "chunk_tokens (%lld) must be >= 0 and chunk_overlap (%lld) below it",
		                  (long long)d->chunk_tokens, (long long)d->chunk_overlap);
	return TRAIN_OK;
}

typedef struct spans {
	size_t *s, *e;
	size_t n, cap;
} spans;

static int span_add(void *ud, const char *t, size_t len, size_t s, size_t e)
{
	(void)t, (void)len;
	spans *sp = ud;
	if (sp->n == sp->cap) {
		size_t cap = sp->cap ? 2 * sp->cap : 256;
		size_t *a = realloc(sp->s, cap * sizeof *a), *b;
		if (!a)
			return TRAIN_ENOMEM;
		sp->s = a;
		if (!(b = realloc(sp->e, cap * sizeof *b)))
			return TRAIN_ENOMEM;
		sp->e = b;
		sp->cap = cap;
	}
	sp->s[sp->n] = s;
	sp->e[sp->n++] = e;
	return 0;
}

static void on_skip(void *ud, const train_error *why)
{
	char buf[1024];
	train_log(ud, TRAIN_LOG_WARN, "skipped: %s", train_error_format(why, buf, sizeof buf));
}

static int emit_chunk(json_t *o, const train_record *r, size_t ci, size_t s, size_t e, int several,
                      char **buf, size_t *len, size_t *cap)
{
	char cid[64];
	json_object_clear(o);
	if (several) {
		snprintf(cid, sizeof cid, "#%zu", ci);
		char *id = malloc(strlen(r->id) + strlen(cid) + 1);
		if (!id)
			return TRAIN_ENOMEM;
		strcpy(id, r->id);
		strcat(id, cid);
		json_object_set_new(o, "id", json_string(id));
		free(id);
	} else
		json_object_set_new(o, "id", json_string(r->id));
	json_object_set_new(o, "doc", json_string(r->id));
	if (r->title)
		json_object_set_new(o, "title", json_string(r->title));
	json_object_set_new(o, "text", json_stringn(r->text + s, e - s));
	json_object_set_new(o, "start", json_integer((json_int_t)s));
	json_object_set_new(o, "end", json_integer((json_int_t)e));
	char *line = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	if (!line)
		return TRAIN_ENOMEM;
	size_t l = strlen(line);
	if (*len + l + 2 > *cap) {
		size_t nc = (*cap + l + 2) * 2;
		char *nb = realloc(*buf, nc);
		if (!nb) {
			free(line);
			return TRAIN_ENOMEM;
		}
		*buf = nb;
		*cap = nc;
	}
	memcpy(*buf + *len, line, l);
	(*buf)[*len + l] = '\n';
	*len += l + 1;
	free(line);
	return 0;
}

static int documents_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	(void)in;
	documents *d = self;
	train_corpus_options opt = TRAIN_CORPUS_OPTIONS_INIT;
	opt.format = TRAIN_CORPUS_JSONL;
	opt.schema = TRAIN_JSONL_DOCUMENTS;
	opt.on_bad_line = d->skip ? TRAIN_BAD_LINE_SKIP : TRAIN_BAD_LINE_FATAL;
	opt.on_skip = on_skip;
	opt.ud = ctx;
	train_corpus *r = NULL;
	train_error err = { 0 };
	const train_record *rec;
	char *buf = NULL;
	size_t len = 0, cap = 0, ndocs = 0, nchunks = 0;
	spans sp = { 0 };
	json_t *o = json_object();
	int rc = o ? train_corpus_open(d->path, &opt, &r, &err) : TRAIN_ENOMEM;
	while (!rc && (rc = train_corpus_next(r, &rec, &err)) > 0) {
		rc = 0;
		ndocs++;
		sp.n = 0;
		if (d->chunk_tokens && (rc = bm25_terms(rec->text, rec->text_len, span_add, &sp)))
			break;
		if (!d->chunk_tokens || sp.n <= (size_t)d->chunk_tokens) {
			rc = emit_chunk(o, rec, 0, 0, rec->text_len, 0, &buf, &len, &cap);
			nchunks++;
			continue;
		}
		size_t step = (size_t)(d->chunk_tokens - d->chunk_overlap), ci = 0;
		for (size_t t0 = 0; !rc; t0 += step) {
			size_t t1 = t0 + (size_t)d->chunk_tokens;
			if (t1 > sp.n)
				t1 = sp.n;
			rc = emit_chunk(o, rec, ci++, sp.s[t0], sp.e[t1 - 1], 1, &buf, &len, &cap);
			nchunks++;
			if (t1 == sp.n)
				break;
		}
	}
	if (rc < 0) {
		char eb[1024];
		if (err.text[0])
			rc = train_fail(ctx, "%s", train_error_format(&err, eb, sizeof eb));
		else if (rc == TRAIN_ENOMEM)
			rc = train_fail(ctx, "out of memory");
	} else if (!ndocs)
		rc = train_fail(ctx, "%s: no documents", d->path);
	else {
		train_log(ctx, TRAIN_LOG_INFO, "%zu documents, %zu chunks, %llu bad lines skipped", ndocs,
		          nchunks, (unsigned long long)train_corpus_skipped(r));
		train_value *v = NULL;
		rc = train_value_new_take(TYPE_CHUNKS, buf, len, &v);
		if (!rc) {
			buf = NULL;
			rc = train_values_put_take(out, "chunks", v);
		}
	}
	train_corpus_close(r);
	free(buf);
	free(sp.s);
	free(sp.e);
	json_decref(o);
	return rc;
}

static int nothing_persist(void *self, train_resource *res)
{
	(void)self;
	return train_resource_write(res, "VERSION", "1\n", 2);
}

static int documents_load(const train_config *c, const train_resource *res, train_ctx *ctx, void **self)
{
	(void)res;
	return documents_create(c, ctx, self);
}

static const char *const chunks_out[] = { "chunks", NULL };

static const train_component_class documents_class = {
	.struct_size = sizeof(train_component_class),
	.name = "Documents",
	.version = "1",
	.doc = "JSONL documents (id, text, title, metadata) cut into chunks of terms",
	.outputs = chunks_out,
	.params = documents_params,
	.create = documents_create,
	.train = documents_train,
	.persist = nothing_persist,
	.load = documents_load,
	.destroy = documents_destroy,
};

/* ---- chunks read back ------------------------------------------------------------ */

typedef struct chunk {
	char *id, *doc, *text;
	char *title; /* the document's, or NULL */
	long long start, end;
	uint32_t docix; /* documents numbered in order (chunks of one are consecutive) */
} chunk;

typedef struct chunkset {
	chunk *c;
	size_t n, ndocs;
	uint32_t *seen; /* per document: the query that last saw it */
	uint32_t gen;
} chunkset;

static void chunkset_free(chunkset *cs)
{
	for (size_t i = 0; i < cs->n; i++) {
		free(cs->c[i].id);
		free(cs->c[i].doc);
		free(cs->c[i].text);
		free(cs->c[i].title);
	}
	free(cs->c);
	free(cs->seen);
	memset(cs, 0, sizeof *cs);
}

static int chunkset_parse(const char *data, size_t size, chunkset *cs, char *why, size_t whylen)
{
	size_t cap = 0;
	memset(cs, 0, sizeof *cs);
	size_t line = 0;
	for (size_t at = 0; at < size;) {
		const char *nl = memchr(data + at, '\n', size - at);
		size_t e = nl ? (size_t)(nl - data) : size;
		line++;
		json_error_t je;
		json_t *o = json_loadb(data + at, e - at, 0, &je);
		const char *id = NULL, *doc = NULL, *text = NULL;
		json_int_t s = 0, en = 0;
		if (!o || json_unpack(o, "{s:s, s:s, s:s, s:I, s:I}", "id", &id, "doc", &doc, "text", &text,
		                      "start", &s, "end", &en)) {
			snprintf(why, whylen, "chunks:%zu: not a chunk", line);
			json_decref(o);
			chunkset_free(cs);
			return TRAIN_ECORRUPT;
		}
		if (cs->n == cap) {
			cap = cap ? 2 * cap : 256;
			chunk *c = realloc(cs->c, cap * sizeof *c);
			if (!c) {
				json_decref(o);
				chunkset_free(cs);
				return TRAIN_ENOMEM;
			}
			cs->c = c;
		}
		chunk *c = &cs->c[cs->n++];
		c->id = xstrdup(id);
		c->doc = xstrdup(doc);
		c->text = xstrdup(text);
		json_t *ti = json_object_get(o, "title");
		c->title = json_is_string(ti) ? xstrdup(json_string_value(ti)) : NULL;
		c->start = s;
		c->end = en;
		c->docix = cs->n > 1 && !strcmp(cs->c[cs->n - 2].doc, doc) ? cs->c[cs->n - 2].docix
		                                                           : (uint32_t)cs->ndocs++;
		bool lost = !c->id || !c->doc || !c->text || (json_is_string(ti) && !c->title);
		json_decref(o);
		if (lost) {
			chunkset_free(cs);
			return TRAIN_ENOMEM;
		}
		at = e + 1;
	}
	cs->seen = calloc(cs->ndocs + 1, sizeof *cs->seen);
	if (!cs->seen) {
		chunkset_free(cs);
		return TRAIN_ENOMEM;
	}
	return 0;
}

/* A new query for chunkset_first(). */
static void chunkset_new_query(chunkset *cs)
{
	if (++cs->gen == 0) {
		memset(cs->seen, 0, (cs->ndocs + 1) * sizeof *cs->seen);
		cs->gen = 1;
	}
}

/* 1 the first time chunk i's document is met since chunkset_new_query(). */
static int chunkset_first(chunkset *cs, uint32_t i)
{
	uint32_t d = cs->c[i].docix;
	if (cs->seen[d] == cs->gen)
		return 0;
	cs->seen[d] = cs->gen;
	return 1;
}

/* ---- BM25 ------------------------------------------------------------------------ */

static const train_param bm25_params[] = {
	{ "k1", TRAIN_PARAM_FLOAT, "0.9", "term frequency saturation (Okapi k1)" },
	{ "b", TRAIN_PARAM_FLOAT, "0.4", "length normalization (Okapi b), 0 to 1" },
	{ "stop_words", TRAIN_PARAM_ANY, "~", "~ (none), english, or a list of words" },
	{ "stemmer", TRAIN_PARAM_ANY, "~", "~ (none) or porter: words reduced to their Porter stems" },
	{ "pairs", TRAIN_PARAM_FLOAT, "0", "weight of adjacent word pairs as extra terms (0: none)" },
	{ "title", TRAIN_PARAM_BOOL, "false", "index each chunk with its document's title" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

typedef struct bm25c {
	double k1, b, pairs;
	unsigned flags;
	bool title;
	char **stop; /* NULL-terminated, or NULL */
} bm25c;

static void bm25c_destroy(void *self)
{
	bm25c *m = self;
	if (m && m->stop) {
		for (size_t i = 0; m->stop[i]; i++)
			free(m->stop[i]);
		free(m->stop);
	}
	free(m);
}

static int bm25c_create(const train_config *c, train_ctx *ctx, void **self)
{
	bm25c *m = calloc(1, sizeof *m);
	if (!m)
		return TRAIN_ENOMEM;
	*self = m;
	m->k1 = train_config_float(c, "k1");
	m->b = train_config_float(c, "b");
	if (!(m->k1 >= 0) || !(m->b >= 0 && m->b <= 1))
		return train_fail(ctx, "k1 must be >= 0 and b within 0..1 (k1 %g, b %g)", m->k1, m->b);
	m->pairs = train_config_float(c, "pairs");
	if (!(m->pairs >= 0 && m->pairs < 1e6))
		return train_fail(ctx, "pairs must be a weight >= 0 (0: no word pairs), not %g", m->pairs);
	m->flags = m->pairs > 0 ? BM25_PAIRS : 0;
	m->title = train_config_bool(c, "title");
	const train_config *st = train_config_get(c, "stemmer");
	if (st && train_config_kind(st) == TRAIN_CFG_STRING &&
	    !strcmp(train_config_as_string(st), "porter"))
		m->flags |= BM25_STEM;
	else if (st && train_config_kind(st) != TRAIN_CFG_NULL)
		return train_fail(ctx, "stemmer must be ~ (none) or porter");
	const train_config *sw = train_config_get(c, "stop_words");
	const char *const *src = NULL;
	size_t n = 0;
	if (sw && train_config_kind(sw) == TRAIN_CFG_STRING) {
		if (strcmp(train_config_as_string(sw), "english"))
			return train_fail(ctx, "stop_words: '%s' is not a known list (english)",
			                  train_config_as_string(sw));
		src = bm25_english_stop_words;
		while (src[n])
			n++;
	} else if (sw && train_config_kind(sw) == TRAIN_CFG_LIST) {
		n = train_config_len(sw);
	} else if (sw && train_config_kind(sw) != TRAIN_CFG_NULL)
		return train_fail(ctx, "stop_words must be ~, english or a list of words");
	if (!sw || train_config_kind(sw) == TRAIN_CFG_NULL)
		return TRAIN_OK;
	m->stop = calloc(n + 1, sizeof *m->stop);
	if (!m->stop)
		return TRAIN_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *w;
		if (src)
			w = src[i];
		else {
			const train_config *e = train_config_at(sw, i);
			if (train_config_kind(e) != TRAIN_CFG_STRING)
				return train_fail(ctx, "stop_words: item %zu is not a string", i + 1);
			w = train_config_as_string(e);
		}
		/* stored lower-cased the way terms are */
		char *low = NULL;
		size_t ll = 0;
		low = text_lower(w, strlen(w), &ll);
		if (!low)
			return TRAIN_ENOMEM;
		m->stop[i] = low;
	}
	return TRAIN_OK;
}

static int bm25c_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	bm25c *m = self;
	const train_value *v = train_values_get(in, "chunks");
	if (strcmp(train_value_type(v), TYPE_CHUNKS))
		return train_fail(ctx, "chunks: a %s value, not %s", TYPE_CHUNKS, train_value_type(v));
	chunkset cs;
	char why[256];
	int rc = chunkset_parse(train_value_data(v), train_value_size(v), &cs, why, sizeof why);
	if (rc)
		return rc == TRAIN_ENOMEM ? rc : train_fail(ctx, "%s", why);
	bm25_builder *bb = NULL;
	void *buf = NULL;
	size_t size = 0;
	bm25_options bo = { m->k1, m->b, (const char *const *)m->stop, m->flags, m->pairs };
	rc = bm25_builder_create(&bo, &bb);
	char *tt = NULL;
	size_t ttcap = 0;
	for (size_t i = 0; i < cs.n && !rc; i++) {
		const chunk *c = &cs.c[i];
		if (!m->title || !c->title) {
			rc = bm25_builder_add(bb, c->text, strlen(c->text));
			continue;
		}
		/* the title, then the text */
		size_t lt = strlen(c->title), lx = strlen(c->text);
		if (lt + lx + 2 > ttcap) {
			char *p = realloc(tt, lt + lx + 2);
			if (!p) {
				rc = TRAIN_ENOMEM;
				break;
			}
			tt = p;
			ttcap = lt + lx + 2;
		}
		/* underscores read as spaces (Wikipedia page names) */
		for (size_t j = 0; j < lt; j++)
			tt[j] = c->title[j] == '_' ? ' ' : c->title[j];
		tt[lt] = '\n';
		memcpy(tt + lt + 1, c->text, lx + 1);
		rc = bm25_builder_add(bb, tt, lt + 1 + lx);
	}
	free(tt);
	if (!rc)
		rc = bm25_builder_finish(bb, &buf, &size);
	bm25_builder_destroy(bb);
	if (!rc) {
		train_value *iv;
		if (!(rc = train_value_new_take(TYPE_BM25, buf, size, &iv))) {
			buf = NULL;
			rc = train_values_put_take(out, "index", iv);
		}
		train_log(ctx, TRAIN_LOG_INFO, "%zu chunks indexed, %zu bytes", cs.n, size);
	}
	free(buf);
	chunkset_free(&cs);
	return rc;
}

static int bm25c_load(const train_config *c, const train_resource *res, train_ctx *ctx, void **self)
{
	(void)res;
	return bm25c_create(c, ctx, self);
}

static const char *const chunks_in[] = { "chunks", NULL };
static const char *const index_out[] = { "index", NULL };

static const train_component_class bm25_class = {
	.struct_size = sizeof(train_component_class),
	.name = "BM25",
	.version = "1",
	.doc = "Okapi BM25 inverted index of the chunks (k1, b, stop_words)",
	.inputs = chunks_in,
	.outputs = index_out,
	.params = bm25_params,
	.create = bm25c_create,
	.train = bm25c_train,
	.persist = nothing_persist,
	.load = bm25c_load,
	.destroy = bm25c_destroy,
};

/* ---- VectorFile -------------------------------------------------------------------- */

static const train_param vecfile_params[] = {
	{ "path", TRAIN_PARAM_PATH, NULL, "raw little-endian float32 rows, one per chunk" },
	{ "dim", TRAIN_PARAM_INT, NULL, "floats per row" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

typedef struct vecfile {
	char *path;
	int64_t dim;
} vecfile;

static void vecfile_destroy(void *self)
{
	vecfile *v = self;
	if (v)
		free(v->path);
	free(v);
}

static int vecfile_create(const train_config *c, train_ctx *ctx, void **self)
{
	vecfile *v = calloc(1, sizeof *v);
	if (!v)
		return TRAIN_ENOMEM;
	*self = v;
	v->dim = train_config_int(c, "dim");
	v->path = train_ctx_resolve(ctx, train_config_string(c, "path"));
	if (!v->path)
		return TRAIN_ENOMEM;
	if (v->dim < 1 || v->dim > 65536)
		return train_fail(ctx, "dim must be 1..65536, not %lld", (long long)v->dim);
	return TRAIN_OK;
}

static int vecfile_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	(void)in;
	vecfile *vf = self;
	FILE *f = fopen(vf->path, "rb");
	if (!f)
		return train_fail(ctx, "%s: %s", vf->path, strerror(errno));
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	size_t row = (size_t)vf->dim * 4;
	if (sz < 0 || (size_t)sz % row) {
		fclose(f);
		return train_fail(ctx, "%s: %ld bytes is not a whole number of rows of %lld floats",
		                  vf->path, sz, (long long)vf->dim);
	}
	unsigned char *b = malloc(VEC_HEADER + (size_t)sz);
	if (!b) {
		fclose(f);
		return TRAIN_ENOMEM;
	}
	uint64_t n = (uint64_t)sz / row;
	uint32_t dim = (uint32_t)vf->dim, zero = 0;
	memcpy(b, VEC_MAGIC, 8);
	memcpy(b + 8, &n, 8);
	memcpy(b + 16, &dim, 4);
	memcpy(b + 20, &zero, 4);
	size_t got = fread(b + VEC_HEADER, 1, (size_t)sz, f);
	fclose(f);
	if (got != (size_t)sz) {
		free(b);
		return train_fail(ctx, "%s: short read", vf->path);
	}
	train_value *v;
	int rc = train_value_new_take(TYPE_VECTORS, b, VEC_HEADER + (size_t)sz, &v);
	if (rc) {
		free(b);
		return rc;
	}
	return train_values_put_take(out, "vectors", v);
}

static int vecfile_load(const train_config *c, const train_resource *res, train_ctx *ctx, void **self)
{
	(void)res;
	return vecfile_create(c, ctx, self);
}

static const char *const vectors_out[] = { "vectors", NULL };

static const train_component_class vecfile_class = {
	.struct_size = sizeof(train_component_class),
	.name = "VectorFile",
	.version = "1",
	.doc = "chunk vectors from a float32 file (stands in for the dense encoder)",
	.outputs = vectors_out,
	.params = vecfile_params,
	.create = vecfile_create,
	.train = vecfile_train,
	.persist = nothing_persist,
	.load = vecfile_load,
	.destroy = vecfile_destroy,
};

/* ---- HNSW ----------------------------------------------------------------------------- */

static const train_param hnsw_params[] = {
	{ "M", TRAIN_PARAM_INT, "16", "links per node (2M at level 0)" },
	{ "ef_construction", TRAIN_PARAM_INT, "200", "beam width while inserting" },
	{ "metric", TRAIN_PARAM_STRING, "cosine", "cosine, ip (inner product) or l2" },
	{ "seed", TRAIN_PARAM_INT, "1", "draws the levels" },
	{ "threads", TRAIN_PARAM_INT, "0", "insertion threads; 0: what the run allows (--threads)" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

typedef struct hnswc {
	int64_t M, efc, seed, threads;
	int metric;
} hnswc;

static void hnswc_destroy(void *self) { free(self); }

static int hnswc_create(const train_config *c, train_ctx *ctx, void **self)
{
	hnswc *h = calloc(1, sizeof *h);
	if (!h)
		return TRAIN_ENOMEM;
	*self = h;
	h->M = train_config_int(c, "M");
	h->efc = train_config_int(c, "ef_construction");
	h->seed = train_config_int(c, "seed");
	h->threads = train_config_int(c, "threads");
	h->metric = hnsw_metric_parse(train_config_string(c, "metric"));
	if (h->metric < 0)
		return train_fail(ctx, "metric must be cosine, ip or l2, not '%s'",
		                  train_config_string(c, "metric"));
	if (h->M < 2 || h->M > 256 || h->efc < 1 || h->efc > 100000 || h->threads < 0)
		return train_fail(ctx, "M must be 2..256, ef_construction 1..100000, threads >= 0");
	return TRAIN_OK;
}

/* Check a vectors value: 0 and its count and dim, or a failure. */
static int vectors_view(const train_value *v, uint64_t *n, uint32_t *dim, const float **rows,
                        train_ctx *ctx)
{
	const unsigned char *b = train_value_data(v);
	size_t size = train_value_size(v);
	if (strcmp(train_value_type(v), TYPE_VECTORS) || size < VEC_HEADER || memcmp(b, VEC_MAGIC, 8))
		return train_fail(ctx, "vectors: not a %s value", TYPE_VECTORS);
	memcpy(n, b + 8, 8);
	memcpy(dim, b + 16, 4);
	if (!*dim || *dim > 65536 || *n > (size - VEC_HEADER) / 4 / *dim ||
	    *n * *dim * 4 != size - VEC_HEADER)
		return train_fail(ctx, "vectors: %llu x %u floats do not fit %zu bytes",
		                  (unsigned long long)*n, *dim, size);
	*rows = (const float *)(const void *)(b + VEC_HEADER);
	return 0;
}

static int hnswc_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	hnswc *c = self;
	uint64_t n = 0;
	uint32_t dim = 0;
	const float *rows = NULL;
	int rc = vectors_view(train_values_get(in, "vectors"), &n, &dim, &rows, ctx);
	if (rc)
		return rc;
	/* the value's bytes need not be aligned for floats: copy */
	float *copy = malloc(n * dim * sizeof *copy + 1);
	if (!copy)
		return TRAIN_ENOMEM;
	memcpy(copy, rows, n * dim * sizeof *copy);
	hnsw *h = NULL;
	rc = hnsw_create(dim, (hnsw_metric)c->metric, (uint32_t)c->M, (uint32_t)c->efc,
	                 (uint64_t)c->seed, &h);
	char err[HNSW_ERR_SIZE] = "";
	int threads = c->threads ? (int)c->threads : train_ctx_threads(ctx);
	if (!rc && (rc = hnsw_add(h, copy, n, threads, err)))
		rc = train_fail(ctx, "%s", err);
	free(copy);
	void *buf = NULL;
	size_t size = 0;
	if (!rc)
		rc = hnsw_serialize(h, &buf, &size);
	if (!rc) {
		train_log(ctx, TRAIN_LOG_INFO, "%llu vectors of %u (%s kernels, %d threads)",
		          (unsigned long long)n, dim, hnsw_simd_name(), threads);
		train_value *v;
		if (!(rc = train_value_new_take(TYPE_HNSW, buf, size, &v))) {
			buf = NULL;
			rc = train_values_put_take(out, "index", v);
		}
	}
	free(buf);
	hnsw_destroy(h);
	return rc;
}

static int hnswc_load(const train_config *c, const train_resource *res, train_ctx *ctx, void **self)
{
	(void)res;
	return hnswc_create(c, ctx, self);
}

static const char *const vectors_in[] = { "vectors", NULL };

static const train_component_class hnsw_class = {
	.struct_size = sizeof(train_component_class),
	.name = "HNSW",
	.version = "2", /* 2: index file format 2 (bf16 copies) */
	.doc = "HNSW graph of the chunk vectors (M, ef_construction, metric, threads)",
	.inputs = vectors_in,
	.outputs = index_out,
	.params = hnsw_params,
	.create = hnswc_create,
	.train = hnswc_train,
	.persist = nothing_persist,
	.load = hnswc_load,
	.destroy = hnswc_destroy,
};

/* ---- DenseEncoder ------------------------------------------------------------------ */

/*
 * The encoder node: a Hugging Face BERT folder loaded as it is, or an
 * encoder trained here on the chunks by the inverse cloze task (dense.h).
 * `model` decides: ~ trains here; a name that is an existing folder
 * (relative to the settings file that gave it, else to the recipe) is
 * loaded; a path written as one (absolute, ./, ../, ~/) that is not a
 * folder is an error; any other name (a hub name such as
 * "sentence-transformers/all-MiniLM-L6-v2") that is not a local folder is
 * trained here, with a warning saying so: nothing is ever downloaded.
 */
static const train_param encoder_params[] = {
	{ "model", TRAIN_PARAM_STRING, "~", "a local Hugging Face BERT sentence-encoder folder; ~ or a hub name that is not a local folder: trained here (inverse cloze)" },
	{ "dim", TRAIN_PARAM_INT, "0", "the embedding size: checked against a folder's hidden_size (0: any); trained here, the hidden size (0: 128)" },
	{ "max_length", TRAIN_PARAM_INT, "192", "tokens per chunk, [CLS] and [SEP] included (trained here: also the positions)" },
	{ "layers", TRAIN_PARAM_INT, "1", "trained here: encoder layers" },
	{ "heads", TRAIN_PARAM_INT, "0", "trained here: attention heads (0: hidden / 64, at least 1)" },
	{ "intermediate", TRAIN_PARAM_INT, "0", "trained here: feed-forward width (0: 4 x hidden)" },
	{ "vocab_size", TRAIN_PARAM_INT, "8000", "trained here: WordPiece vocabulary learned from the chunks" },
	{ "query_length", TRAIN_PARAM_INT, "48", "trained here: tokens of a query sentence" },
	{ "steps", TRAIN_PARAM_INT, "300", "trained here: optimizer steps" },
	{ "batch_size", TRAIN_PARAM_INT, "64", "trained here: pairs per step (in-batch negatives); at most the passages of two sentences" },
	{ "warmup", TRAIN_PARAM_INT, "30", "trained here: linear warm-up steps" },
	{ "learning_rate", TRAIN_PARAM_FLOAT, "1e-3", "trained here: AdamW, linear decay" },
	{ "temperature", TRAIN_PARAM_FLOAT, "0.05", "trained here: InfoNCE temperature" },
	{ "keep_sentence", TRAIN_PARAM_FLOAT, "0.5", "trained here: share of pairs whose passage keeps the query sentence (ICT: 0.1; 0.5 retrieves better on SQuAD)" },
	{ "seed", TRAIN_PARAM_INT, "1", "trained here: initialisation and sampling" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

typedef struct encoderc {
	char *dir;          /* a folder to load, or NULL: train here */
	int64_t dim, max_length;
	dense_train_opts o;
} encoderc;

static void encoderc_destroy(void *self)
{
	encoderc *e = self;
	if (e)
		free(e->dir);
	free(e);
}

static int is_dir(const char *p)
{
	struct stat sb;
	return p && stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* `name` relative to the folder of the settings file that wrote it, else
 * to the recipe (train_ctx_resolve). */
static char *resolve_from(const train_config *v, const char *name, train_ctx *ctx)
{
	const char *file = train_config_file(v);
	if (name[0] != '/' && file && file[0]) {
		const char *slash = strrchr(file, '/');
		size_t dl = slash ? (size_t)(slash - file) : 1;
		char *p = malloc(dl + strlen(name) + 2);
		if (!p)
			return NULL;
		if (slash)
			memcpy(p, file, dl);
		else
			p[0] = '.';
		p[dl] = '/';
		strcpy(p + dl + 1, name);
		if (is_dir(p))
			return p;
		free(p);
	}
	return train_ctx_resolve(ctx, name);
}

static int encoderc_create(const train_config *c, train_ctx *ctx, void **self)
{
	encoderc *e = calloc(1, sizeof *e);
	if (!e)
		return TRAIN_ENOMEM;
	*self = e;
	e->dim = train_config_int(c, "dim");
	e->max_length = train_config_int(c, "max_length");
	dense_train_opts *o = &e->o;
	*o = dense_train_defaults();
	o->layers = (int)train_config_int(c, "layers");
	o->vocab_size = (int)train_config_int(c, "vocab_size");
	o->query_length = (int)train_config_int(c, "query_length");
	o->steps = (int)train_config_int(c, "steps");
	o->batch_size = (int)train_config_int(c, "batch_size");
	o->warmup = (int)train_config_int(c, "warmup");
	o->learning_rate = train_config_float(c, "learning_rate");
	o->temperature = train_config_float(c, "temperature");
	o->keep_sentence = train_config_float(c, "keep_sentence");
	o->seed = (uint64_t)train_config_int(c, "seed");
	o->hidden = e->dim ? (int)e->dim : 128;
	int64_t heads = train_config_int(c, "heads"), inter = train_config_int(c, "intermediate");
	o->heads = heads ? (int)heads : (o->hidden / 64 > 0 ? o->hidden / 64 : 1);
	o->intermediate = inter ? (int)inter : 4 * o->hidden;
	o->max_length = (int)e->max_length;
	if (e->dim < 0 || e->dim > 4096 || e->max_length < 3 || e->max_length > 512)
		return train_fail(ctx, "dim must be 0..4096 and max_length 3..512 (dim %lld, max_length %lld)",
		                  (long long)e->dim, (long long)e->max_length);
	const train_config *mv = train_config_get(c, "model");
	const char *name = mv && train_config_kind(mv) == TRAIN_CFG_STRING ? train_config_as_string(mv) : "";
	if (!name[0])
		return TRAIN_OK;
	char *dir = resolve_from(mv, name, ctx);
	if (!dir)
		return TRAIN_ENOMEM;
	if (is_dir(dir)) {
		e->dir = dir;
		return TRAIN_OK;
	}
	free(dir);
	size_t nl = strlen(name);
	if (name[0] == '/' || name[0] == '~' || !strncmp(name, "./", 2) || !strncmp(name, "../", 3) ||
	    name[nl - 1] == '/')
		return train_fail(ctx, "embedding model '%s': no such folder (a local Hugging Face BERT folder "
		                       "with config.json, vocab.txt and model.safetensors; nothing is downloaded)",
		                  name);
	return TRAIN_OK; /* a hub name: train here (noted when training) */
}

static int encoderc_fingerprint(void *self, train_hasher *h)
{
	encoderc *e = self;
	train_error err;
	if (!e->dir)
		return TRAIN_OK;
	train_hasher_str(h, "folder");
	return train_hasher_path(h, e->dir, &err);
}

static int ict_progress(void *ud, int step, int steps, double loss, double acc)
{
	train_ctx *ctx = ud;
	train_progress_loss(ctx, (uint64_t)step, (uint64_t)steps, loss);
	if (step == 1 || step % 50 == 0 || step == steps)
		train_log(ctx, TRAIN_LOG_INFO, "inverse cloze step %d/%d: loss %.4f, in-batch accuracy %.3f", step,
		          steps, loss, acc);
	return train_ctx_canceled(ctx);
}

static int encoderc_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	encoderc *ec = self;
	dense_encoder *e = NULL;
	train_error err = { 0 };
	int rc;
	if (ec->dir) {
		char eb[1024];
		if ((rc = dense_encoder_load_hf(ec->dir, (int)ec->max_length, &e, &err)))
			return rc == TRAIN_ENOMEM ? rc : train_fail(ctx, "%s", train_error_format(&err, eb, sizeof eb));
		if (ec->dim && ec->dim != e->m->cfg.hidden) {
			int hs = e->m->cfg.hidden;
			dense_encoder_free(e);
			return train_fail(ctx, "%s: embedding_dim is %lld but the model's hidden_size is %d", ec->dir,
			                  (long long)ec->dim, hs);
		}
		train_log(ctx, TRAIN_LOG_INFO, "%s: %d layers, hidden %d, %zu word pieces, mean pooling", ec->dir,
		          e->m->cfg.layers, e->m->cfg.hidden, e->v.n);
	} else {
		const train_value *v = train_values_get(in, "chunks");
		if (strcmp(train_value_type(v), TYPE_CHUNKS))
			return train_fail(ctx, "chunks: a %s value, not %s", TYPE_CHUNKS, train_value_type(v));
		chunkset cs;
		char why[256];
		if ((rc = chunkset_parse(train_value_data(v), train_value_size(v), &cs, why, sizeof why)))
			return rc == TRAIN_ENOMEM ? rc : train_fail(ctx, "%s", why);
		const char **texts = malloc((cs.n ? cs.n : 1) * sizeof *texts);
		size_t *lens = malloc((cs.n ? cs.n : 1) * sizeof *lens);
		if (!texts || !lens)
			rc = TRAIN_ENOMEM;
		for (size_t i = 0; !rc && i < cs.n; i++) {
			texts[i] = cs.c[i].text;
			lens[i] = strlen(cs.c[i].text);
		}
		/* a small collection: the batch is what it has */
		dense_train_opts o = ec->o;
		size_t two = 0;
		for (size_t i = 0; !rc && i < cs.n; i++) {
			int dots = 0;
			for (const char *s = texts[i]; *s; s++)
				dots += (*s == '.' || *s == '!' || *s == '?') && (s[1] == ' ' || s[1] == '\n');
			two += dots >= 1;
		}
		if (!rc && two >= 2 && (size_t)o.batch_size > two)
			o.batch_size = (int)two;
		if (!rc) {
			train_log(ctx, TRAIN_LOG_INFO,
			          "training the encoder here (inverse cloze on %zu chunks, nothing downloaded): "
			          "%d layers, hidden %d, %d steps of %d pairs", cs.n, o.layers, o.hidden, o.steps,
			          o.batch_size);
			double fl = 0;
			rc = dense_train_ict(texts, lens, cs.n, &o, ict_progress, ctx, &e, &fl, &err);
			if (!rc)
				train_log(ctx, TRAIN_LOG_INFO, "final loss %.4f", fl);
			else if (rc != TRAIN_ENOMEM && rc != TRAIN_ECANCELED)
				rc = train_fail(ctx, "%s", err.text[0] ? err.text : train_strerror(rc));
		}
		free(texts);
		free(lens);
		chunkset_free(&cs);
		if (rc)
			return rc;
	}
	void *buf = NULL;
	size_t size = 0;
	rc = dense_encoder_serialize(e, &buf, &size);
	dense_encoder_free(e);
	train_value *v;
	if (!rc && !(rc = train_value_new_take(TYPE_ENCODER, buf, size, &v))) {
		buf = NULL;
		rc = train_values_put_take(out, "encoder", v);
	}
	free(buf);
	return rc;
}

static int encoderc_load(const train_config *c, const train_resource *res, train_ctx *ctx, void **self)
{
	(void)res;
	return encoderc_create(c, ctx, self);
}

static const char *const encoder_out[] = { "encoder", NULL };

static const train_component_class encoder_class = {
	.struct_size = sizeof(train_component_class),
	.name = "DenseEncoder",
	.version = "1",
	.doc = "BERT with mean pooling: a local Hugging Face folder, or trained here by the inverse cloze task",
	.inputs = chunks_in,
	.outputs = encoder_out,
	.params = encoder_params,
	.create = encoderc_create,
	.fingerprint = encoderc_fingerprint,
	.train = encoderc_train,
	.persist = nothing_persist,
	.load = encoderc_load,
	.destroy = encoderc_destroy,
};

/* ---- shards: DocShard, DenseEncode, ShardVectors ---------------------------------------- */

/*
 * Encoding goes by shards so that a changed document re-encodes its shard
 * only.  Documents are numbered in file order and cut into blocks of
 * `block_docs`; block j belongs to shard j mod RAG_SHARDS.  A DocShard node
 * keeps the chunks of its shard (cheap, reruns whenever the chunks change);
 * its output's fingerprint is unchanged unless one of its own documents
 * changed, so the DenseEncode node behind it stays cached (early cut-off,
 * doc/recipes.md).  ShardVectors puts the shards' vectors back in chunk
 * order.  Appended documents fall into new blocks: the shards that get them
 * re-encode, the others stay.
 */
#define RAG_SHARDS 8

static const train_param docshard_params[] = {
	{ "shard", TRAIN_PARAM_INT, NULL, "which shard, 0..7" },
	{ "block_docs", TRAIN_PARAM_INT, "32", "documents per block (block j is in shard j mod 8)" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

typedef struct docshard {
	int64_t shard, block;
} docshard;

static void docshard_destroy(void *self) { free(self); }

static int docshard_create(const train_config *c, train_ctx *ctx, void **self)
{
	docshard *d = calloc(1, sizeof *d);
	if (!d)
		return TRAIN_ENOMEM;
	*self = d;
	d->shard = train_config_int(c, "shard");
	d->block = train_config_int(c, "block_docs");
	if (d->shard < 0 || d->shard >= RAG_SHARDS || d->block < 1)
		return train_fail(ctx, "shard must be 0..%d and block_docs >= 1", RAG_SHARDS - 1);
	return TRAIN_OK;
}

static int shard_of(uint32_t docix, int64_t block)
{
	return (int)(((uint64_t)docix / (uint64_t)block) % RAG_SHARDS);
}

static int docshard_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	docshard *d = self;
	const train_value *v = train_values_get(in, "chunks");
	if (strcmp(train_value_type(v), TYPE_CHUNKS))
		return train_fail(ctx, "chunks: a %s value, not %s", TYPE_CHUNKS, train_value_type(v));
	/* line by line: chunk i is line i; its document number as chunkset_parse counts */
	const char *data = train_value_data(v);
	size_t size = train_value_size(v), len = 0, n = 0;
	chunkset cs;
	char why[256];
	int rc = chunkset_parse(data, size, &cs, why, sizeof why);
	if (rc)
		return rc == TRAIN_ENOMEM ? rc : train_fail(ctx, "%s", why);
	char *buf = malloc(size + 1);
	size_t i = 0;
	for (size_t at = 0; buf && at < size; i++) {
		const char *nl = memchr(data + at, '\n', size - at);
		size_t e = nl ? (size_t)(nl - data) + 1 : size;
		if (i < cs.n && shard_of(cs.c[i].docix, d->block) == (int)d->shard) {
			memcpy(buf + len, data + at, e - at);
			len += e - at;
			n++;
		}
		at = e;
	}
	chunkset_free(&cs);
	if (!buf)
		return TRAIN_ENOMEM;
	train_log(ctx, TRAIN_LOG_INFO, "shard %lld: %zu chunks", (long long)d->shard, n);
	rc = train_values_put_bytes(out, "chunks", TYPE_CHUNKS, buf, len);
	free(buf);
	return rc;
}

static int docshard_load(const train_config *c, const train_resource *res, train_ctx *ctx, void **self)
{
	(void)res;
	return docshard_create(c, ctx, self);
}

static const train_component_class docshard_class = {
	.struct_size = sizeof(train_component_class),
	.name = "DocShard",
	.version = "1",
	.doc = "the chunks of one shard of the documents (blocks of block_docs, block j in shard j mod 8)",
	.inputs = chunks_in,
	.outputs = chunks_out,
	.params = docshard_params,
	.create = docshard_create,
	.train = docshard_train,
	.persist = nothing_persist,
	.load = docshard_load,
	.destroy = docshard_destroy,
};

static const train_param encode_params[] = {
	{ "batch_size", TRAIN_PARAM_INT, "32", "chunks per forward pass" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

typedef struct encodec {
	int64_t batch;
} encodec;

static void encodec_destroy(void *self) { free(self); }

static int encodec_create(const train_config *c, train_ctx *ctx, void **self)
{
	encodec *d = calloc(1, sizeof *d);
	if (!d)
		return TRAIN_ENOMEM;
	*self = d;
	d->batch = train_config_int(c, "batch_size");
	if (d->batch < 1 || d->batch > 4096)
		return train_fail(ctx, "batch_size must be 1..4096");
	return TRAIN_OK;
}

static int vectors_put(train_values *out, const float *rows, uint64_t n, uint32_t dim)
{
	size_t bytes = (size_t)n * dim * sizeof(float);
	unsigned char *b = malloc(VEC_HEADER + bytes);
	if (!b)
		return TRAIN_ENOMEM;
	uint32_t zero = 0;
	memcpy(b, VEC_MAGIC, 8);
	memcpy(b + 8, &n, 8);
	memcpy(b + 16, &dim, 4);
	memcpy(b + 20, &zero, 4);
	if (bytes)
		memcpy(b + VEC_HEADER, rows, bytes);
	train_value *v;
	int rc = train_value_new_take(TYPE_VECTORS, b, VEC_HEADER + bytes, &v);
	if (rc) {
		free(b);
		return rc;
	}
	return train_values_put_take(out, "vectors", v);
}

static int encoder_from(const train_value *v, dense_encoder **e, train_ctx *ctx)
{
	train_error err = { 0 };
	if (!v || strcmp(train_value_type(v), TYPE_ENCODER))
		return train_fail(ctx, "encoder: not a %s value", TYPE_ENCODER);
	int rc = dense_encoder_parse(train_value_data(v), train_value_size(v), e, &err);
	return rc == TRAIN_OK || rc == TRAIN_ENOMEM ? rc : train_fail(ctx, "%s", err.text);
}

static int encodec_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	encodec *d = self;
	dense_encoder *e = NULL;
	int rc = encoder_from(train_values_get(in, "encoder"), &e, ctx);
	if (rc)
		return rc;
	const train_value *v = train_values_get(in, "chunks");
	chunkset cs;
	char why[256];
	if (strcmp(train_value_type(v), TYPE_CHUNKS)) {
		dense_encoder_free(e);
		return train_fail(ctx, "chunks: a %s value, not %s", TYPE_CHUNKS, train_value_type(v));
	}
	if ((rc = chunkset_parse(train_value_data(v), train_value_size(v), &cs, why, sizeof why))) {
		dense_encoder_free(e);
		return rc == TRAIN_ENOMEM ? rc : train_fail(ctx, "%s", why);
	}
	uint32_t C = (uint32_t)e->m->cfg.hidden;
	const char **texts = malloc((cs.n ? cs.n : 1) * sizeof *texts);
	size_t *lens = malloc((cs.n ? cs.n : 1) * sizeof *lens);
	float *vec = malloc((cs.n ? cs.n : 1) * C * sizeof *vec);
	if (!texts || !lens || !vec)
		rc = TRAIN_ENOMEM;
	for (size_t i = 0; !rc && i < cs.n; i++) {
		texts[i] = cs.c[i].text;
		lens[i] = strlen(cs.c[i].text);
	}
	if (!rc)
		rc = dense_encode(e, texts, lens, cs.n, (int)d->batch, vec);
	if (!rc) {
		train_log(ctx, TRAIN_LOG_INFO, "%zu chunks encoded (%u wide)", cs.n, C);
		rc = vectors_put(out, vec, cs.n, C);
	}
	free(texts);
	free(lens);
	free(vec);
	chunkset_free(&cs);
	dense_encoder_free(e);
	return rc;
}

static int encodec_load(const train_config *c, const train_resource *res, train_ctx *ctx, void **self)
{
	(void)res;
	return encodec_create(c, ctx, self);
}

static const char *const encode_in[] = { "encoder", "chunks", NULL };

static const train_component_class encode_class = {
	.struct_size = sizeof(train_component_class),
	.name = "DenseEncode",
	.version = "1",
	.doc = "unit-length mean-pooled embeddings of chunks (one shard) by a DenseEncoder",
	.inputs = encode_in,
	.outputs = vectors_out,
	.params = encode_params,
	.create = encodec_create,
	.train = encodec_train,
	.persist = nothing_persist,
	.load = encodec_load,
	.destroy = encodec_destroy,
};

static const train_param shardvec_params[] = {
	{ "block_docs", TRAIN_PARAM_INT, "32", "as the DocShard nodes' block_docs" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

static int shardvec_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	docshard *d = self;
	const train_value *cv = train_values_get(in, "chunks");
	if (strcmp(train_value_type(cv), TYPE_CHUNKS))
		return train_fail(ctx, "chunks: a %s value, not %s", TYPE_CHUNKS, train_value_type(cv));
	uint64_t n[RAG_SHARDS], used[RAG_SHARDS] = { 0 };
	uint32_t dim = 0;
	const float *rows[RAG_SHARDS];
	int rc;
	for (int s = 0; s < RAG_SHARDS; s++) {
		char name[16];
		uint32_t ds = 0;
		snprintf(name, sizeof name, "vectors%d", s);
		if ((rc = vectors_view(train_values_get(in, name), &n[s], &ds, &rows[s], ctx)))
			return rc;
		if (n[s] && dim && ds != dim)
			return train_fail(ctx, "%s: %u wide, the others %u", name, ds, dim);
		if (n[s])
			dim = ds;
	}
	chunkset cs;
	char why[256];
	if ((rc = chunkset_parse(train_value_data(cv), train_value_size(cv), &cs, why, sizeof why)))
		return rc == TRAIN_ENOMEM ? rc : train_fail(ctx, "%s", why);
	float *all = malloc((cs.n ? cs.n : 1) * (size_t)(dim ? dim : 1) * sizeof *all);
	rc = all ? 0 : TRAIN_ENOMEM;
	for (size_t i = 0; !rc && i < cs.n; i++) {
		int s = shard_of(cs.c[i].docix, d->block);
		if (used[s] >= n[s]) {
			rc = train_fail(ctx, "shard %d has %llu vectors, its chunks need more", s,
			                (unsigned long long)n[s]);
			break;
		}
		/* the value's bytes need not be aligned for floats */
		memcpy(all + i * dim, (const unsigned char *)rows[s] + used[s] * dim * sizeof(float),
		       dim * sizeof(float));
		used[s]++;
	}
	for (int s = 0; !rc && s < RAG_SHARDS; s++)
		if (used[s] != n[s])
			rc = train_fail(ctx, "shard %d has %llu vectors for %llu chunks", s,
			                (unsigned long long)n[s], (unsigned long long)used[s]);
	if (!rc)
		rc = vectors_put(out, all, cs.n, dim);
	free(all);
	chunkset_free(&cs);
	return rc;
}

static int shardvec_create(const train_config *c, train_ctx *ctx, void **self)
{
	docshard *d = calloc(1, sizeof *d);
	if (!d)
		return TRAIN_ENOMEM;
	*self = d;
	d->block = train_config_int(c, "block_docs");
	if (d->block < 1)
		return train_fail(ctx, "block_docs must be >= 1");
	return TRAIN_OK;
}

static int shardvec_load(const train_config *c, const train_resource *res, train_ctx *ctx, void **self)
{
	(void)res;
	return shardvec_create(c, ctx, self);
}

static const char *const shardvec_in[] = { "chunks", "vectors0", "vectors1", "vectors2", "vectors3",
	                                    "vectors4", "vectors5", "vectors6", "vectors7", NULL };

static const train_component_class shardvec_class = {
	.struct_size = sizeof(train_component_class),
	.name = "ShardVectors",
	.version = "1",
	.doc = "the vectors of the 8 shards back in chunk order",
	.inputs = shardvec_in,
	.outputs = vectors_out,
	.params = shardvec_params,
	.create = shardvec_create,
	.train = shardvec_train,
	.persist = nothing_persist,
	.load = shardvec_load,
	.destroy = docshard_destroy,
};

/* ---- HNSWInsert ------------------------------------------------------------------------ */

/*
 * Insert a shard's vectors into the graph an earlier node built: the chain
 * hnsw0 (HNSW over shard 0) -> hnsw1 (HNSWInsert: + shard 1) -> ... -> hnsw7
 * holds every chunk, ids in shard order (the EncoderRetriever maps them
 * back).  Each link is cached by its fingerprint, so when shard j changes
 * the graph of shards 0..j-1 comes from the cache and only shards j..7 are
 * inserted into it: the existing graph grows instead of being rebuilt.
 */
static const train_param hnswins_params[] = {
	{ "threads", TRAIN_PARAM_INT, "0", "insertion threads; 0: what the run allows (--threads)" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

static int hnswins_create(const train_config *c, train_ctx *ctx, void **self)
{
	hnswc *h = calloc(1, sizeof *h);
	if (!h)
		return TRAIN_ENOMEM;
	*self = h;
	h->threads = train_config_int(c, "threads");
	if (h->threads < 0)
		return train_fail(ctx, "threads must be >= 0");
	return TRAIN_OK;
}

static int hnswins_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	hnswc *c = self;
	const train_value *iv = train_values_get(in, "index");
	uint64_t n = 0;
	uint32_t dim = 0;
	const float *rows = NULL;
	int rc = vectors_view(train_values_get(in, "vectors"), &n, &dim, &rows, ctx);
	if (rc)
		return rc;
	if (!iv || strcmp(train_value_type(iv), TYPE_HNSW))
		return train_fail(ctx, "index: not a %s value", TYPE_HNSW);
	size_t hs = train_value_size(iv);
	if (!n) /* nothing to insert: the same graph, the same bytes */
		return train_values_put_bytes(out, "index", TYPE_HNSW, train_value_data(iv), hs);
	void *al = NULL;
	if (posix_memalign(&al, 64, hs ? hs : 1))
		return TRAIN_ENOMEM;
	memcpy(al, train_value_data(iv), hs);
	hnsw *h = NULL;
	char why[HNSW_ERR_SIZE] = "";
	float *copy = NULL;
	void *buf = NULL;
	size_t size = 0, before = 0;
	if ((rc = hnsw_open_mem(al, hs, "index", &h, why))) {
		rc = rc == TRAIN_ENOMEM ? rc : train_fail(ctx, "%s", why);
		goto out;
	}
	before = hnsw_count(h);
	if (hnsw_count(h) && dim != hnsw_dim(h)) {
		rc = train_fail(ctx, "vectors of %u floats for a graph of %u", dim, hnsw_dim(h));
		goto out;
	}
	if (!(copy = malloc(n * dim * sizeof *copy))) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	memcpy(copy, rows, n * dim * sizeof *copy);
	int threads = c->threads ? (int)c->threads : train_ctx_threads(ctx);
	if ((rc = hnsw_add(h, copy, n, threads, why))) {
		rc = rc == TRAIN_ENOMEM ? rc : train_fail(ctx, "%s", why);
		goto out;
	}
	if ((rc = hnsw_serialize(h, &buf, &size)))
		goto out;
	train_log(ctx, TRAIN_LOG_INFO, "%llu vectors inserted into a graph of %zu", (unsigned long long)n, before);
	train_value *v;
	if (!(rc = train_value_new_take(TYPE_HNSW, buf, size, &v))) {
		buf = NULL;
		rc = train_values_put_take(out, "index", v);
	}
out:
	hnsw_destroy(h);
	free(al);
	free(copy);
	free(buf);
	return rc;
}

static int hnswins_load(const train_config *c, const train_resource *res, train_ctx *ctx, void **self)
{
	(void)res;
	return hnswins_create(c, ctx, self);
}

static const char *const hnswins_in[] = { "index", "vectors", NULL };

static const train_component_class hnswins_class = {
	.struct_size = sizeof(train_component_class),
	.name = "HNSWInsert",
	.version = "2", /* 2: index file format 2 (bf16 copies) */
	.doc = "an HNSW graph with more vectors inserted (ids follow the graph's)",
	.inputs = hnswins_in,
	.outputs = index_out,
	.params = hnswins_params,
	.create = hnswins_create,
	.train = hnswins_train,
	.persist = nothing_persist,
	.load = hnswins_load,
	.destroy = hnswc_destroy,
};

/* ---- the retrievers ---------------------------------------------------------------------- */

static const train_param retriever_params[] = {
	{ "k", TRAIN_PARAM_INT, "5", "results when the query gives no k" },
	{ "mode", TRAIN_PARAM_STRING, "~", "default mode: bm25, dense or hybrid (~: hybrid when there is a dense index)" },
	{ "fusion", TRAIN_PARAM_STRING, "rrf", "hybrid: rrf (reciprocal rank fusion) or weighted" },
	{ "rrf_k", TRAIN_PARAM_INT, "60", "RRF: score = sum 1 / (rrf_k + rank)" },
	{ "dense_weight", TRAIN_PARAM_FLOAT, "0.5", "weighted: w * dense + (1 - w) * bm25, each min-max scaled" },
	{ "candidates", TRAIN_PARAM_INT, "100", "chunks taken from each side before fusing" },
	{ "ef_search", TRAIN_PARAM_INT, "64", "HNSW beam width at query time" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

typedef struct retriever {
	int64_t k, rrf_k, candidates, ef_search;
	double dense_weight;
	int weighted;
	char *mode;
	/* trained state: the values (train), or what load read */
	train_value *chunks_v, *bm25_v, *hnsw_v;
	void *bm25_buf;
	chunkset cs;
	bm25 *bm;
	hnsw *hn;
	hnsw_scratch *scratch; /* reused across queries */
	int dense; /* a HybridRetriever or an EncoderRetriever */
	int encoder; /* an EncoderRetriever: queries are encoded by `enc` */
	dense_encoder *enc;
	int64_t shard_docs; /* EncoderRetriever: graph ids in shard order (0: chunk order) */
	uint32_t *gmap;     /* graph id -> chunk, or NULL */
} retriever;

static void retriever_destroy(void *self)
{
	retriever *r = self;
	if (!r)
		return;
	free(r->mode);
	train_value_unref(r->chunks_v);
	train_value_unref(r->bm25_v);
	train_value_unref(r->hnsw_v);
	free(r->bm25_buf);
	chunkset_free(&r->cs);
	bm25_destroy(r->bm);
	hnsw_destroy(r->hn);
	hnsw_scratch_free(r->scratch);
	dense_encoder_free(r->enc);
	free(r->gmap);
	free(r);
}

static int retriever_make(const train_config *c, train_ctx *ctx, int dense, void **self)
{
	retriever *r = calloc(1, sizeof *r);
	if (!r)
		return TRAIN_ENOMEM;
	*self = r;
	r->encoder = dense == 2;
	if (r->encoder && (r->shard_docs = train_config_int(c, "shard_docs")) < 0)
		return train_fail(ctx, "shard_docs must be >= 0");
	dense = dense != 0;
	r->dense = dense;
	r->k = train_config_int(c, "k");
	r->rrf_k = train_config_int(c, "rrf_k");
	r->candidates = train_config_int(c, "candidates");
	r->ef_search = train_config_int(c, "ef_search");
	r->dense_weight = train_config_float(c, "dense_weight");
	const char *fusion = train_config_string(c, "fusion");
	const train_config *m = train_config_get(c, "mode");
	const char *mode = m && train_config_kind(m) != TRAIN_CFG_NULL ? train_config_as_string(m)
	                   : dense                                      ? "hybrid"
	                                                                : "bm25";
	r->mode = xstrdup(mode);
	if (!r->mode)
		return TRAIN_ENOMEM;
	if (strcmp(fusion, "rrf") && strcmp(fusion, "weighted"))
		return train_fail(ctx, "fusion must be rrf or weighted, not '%s'", fusion);
	r->weighted = !strcmp(fusion, "weighted");
	if (strcmp(mode, "bm25") && strcmp(mode, "dense") && strcmp(mode, "hybrid"))
		return train_fail(ctx, "mode must be bm25, dense or hybrid, not '%s'", mode);
	if (!dense && strcmp(mode, "bm25"))
		return train_fail(ctx, "mode %s needs a dense index (HybridRetriever)", mode);
	if (r->k < 1 || r->rrf_k < 0 || r->candidates < 1 || r->ef_search < 1 ||
	    !(r->dense_weight >= 0 && r->dense_weight <= 1))
		return train_fail(ctx, "k, candidates and ef_search must be >= 1, rrf_k >= 0, "
		                       "dense_weight within 0..1");
	return TRAIN_OK;
}

static int retriever_create(const train_config *c, train_ctx *ctx, void **self)
{
	return retriever_make(c, ctx, 0, self);
}

static int hybrid_create(const train_config *c, train_ctx *ctx, void **self)
{
	return retriever_make(c, ctx, 1, self);
}

static int encret_create(const train_config *c, train_ctx *ctx, void **self)
{
	return retriever_make(c, ctx, 2, self);
}

static int retriever_open(retriever *r, const void *chunks, size_t csize, const void *bm, size_t bsize,
                          train_ctx *ctx)
{
	char why[256] = "";
	int rc = chunkset_parse(chunks, csize, &r->cs, why, sizeof why);
	if (rc)
		return rc == TRAIN_ENOMEM ? rc : train_fail(ctx, "%s", why);
	free(r->bm25_buf);
	r->bm25_buf = malloc(bsize ? bsize : 1); /* malloc: aligned for the index */
	if (!r->bm25_buf)
		return TRAIN_ENOMEM;
	memcpy(r->bm25_buf, bm, bsize);
	if ((rc = bm25_open_mem(r->bm25_buf, bsize, "bm25.idx", &r->bm, why)))
		return rc == TRAIN_ENOMEM ? rc : train_fail(ctx, "%s", why);
	if (bm25_docs(r->bm) != r->cs.n)
		return train_fail(ctx, "the BM25 index has %zu documents, there are %zu chunks",
		                  bm25_docs(r->bm), r->cs.n);
	if (r->encoder && r->shard_docs > 0) {
		/* the graph holds shard 0's chunks, then shard 1's, ... (HNSWInsert) */
		free(r->gmap);
		if (!(r->gmap = malloc((r->cs.n ? r->cs.n : 1) * sizeof *r->gmap)))
			return TRAIN_ENOMEM;
		size_t g = 0;
		for (int sh = 0; sh < RAG_SHARDS; sh++)
			for (size_t i = 0; i < r->cs.n; i++)
				if (shard_of(r->cs.c[i].docix, r->shard_docs) == sh)
					r->gmap[g++] = (uint32_t)i;
	}
	return 0;
}

static int retriever_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	(void)out;
	retriever *r = self;
	const train_value *c = train_values_get(in, "chunks"), *b = train_values_get(in, "bm25");
	if (strcmp(train_value_type(c), TYPE_CHUNKS) || strcmp(train_value_type(b), TYPE_BM25))
		return train_fail(ctx, "inputs: chunks must be %s and bm25 %s", TYPE_CHUNKS, TYPE_BM25);
	r->chunks_v = train_value_ref((train_value *)c);
	r->bm25_v = train_value_ref((train_value *)b);
	int rc = retriever_open(r, train_value_data(c), train_value_size(c), train_value_data(b),
	                        train_value_size(b), ctx);
	if (rc || !r->dense)
		return rc;
	const train_value *h = train_values_get(in, "hnsw");
	if (strcmp(train_value_type(h), TYPE_HNSW))
		return train_fail(ctx, "hnsw must be %s", TYPE_HNSW);
	r->hnsw_v = train_value_ref((train_value *)h);
	void *al = NULL;
	size_t hs = train_value_size(h);
	if (posix_memalign(&al, 64, hs ? hs : 1))
		return TRAIN_ENOMEM;
	memcpy(al, train_value_data(h), hs);
	char why[HNSW_ERR_SIZE] = "";
	rc = hnsw_open_mem(al, hs, "hnsw", &r->hn, why);
	if (rc) {
		free(al);
		return rc == TRAIN_ENOMEM ? rc : train_fail(ctx, "%s", why);
	}
	/* the copy must outlive the index: keep it by turning it into a value */
	train_value *keep;
	if ((rc = train_value_new_take(TYPE_HNSW, al, hs, &keep))) {
		free(al);
		return rc;
	}
	train_value_unref(r->hnsw_v);
	r->hnsw_v = keep;
	if (hnsw_count(r->hn) != r->cs.n)
		return train_fail(ctx, "the HNSW index has %zu vectors, there are %zu chunks",
		                  hnsw_count(r->hn), r->cs.n);
	if (!r->encoder)
		return 0;
	if ((rc = encoder_from(train_values_get(in, "encoder"), &r->enc, ctx)))
		return rc;
	if ((uint32_t)r->enc->m->cfg.hidden != hnsw_dim(r->hn))
		return train_fail(ctx, "the encoder gives %d floats, the HNSW index holds %u", r->enc->m->cfg.hidden,
		                  hnsw_dim(r->hn));
	return 0;
}

static int retriever_persist(void *self, train_resource *res)
{
	retriever *r = self;
	int rc = train_resource_write(res, "chunks.jsonl", train_value_data(r->chunks_v),
	                              train_value_size(r->chunks_v));
	if (!rc)
		rc = train_resource_write(res, "bm25.idx", train_value_data(r->bm25_v),
		                          train_value_size(r->bm25_v));
	if (!rc && r->hnsw_v)
		rc = train_resource_write(res, "hnsw.idx", train_value_data(r->hnsw_v),
		                          train_value_size(r->hnsw_v));
	if (!rc && r->enc) {
		/* the encoder as a Hugging Face folder (opens in Python too) */
		const char *dir = train_resource_dir(res);
		char *path = malloc(strlen(dir) + 16), js[64];
		train_error err = { 0 };
		if (!path)
			return TRAIN_ENOMEM;
		sprintf(path, "%s/encoder", dir);
		rc = bert_hf_save(r->enc->m, &r->enc->v, NULL, path, &err);
		free(path);
		snprintf(js, sizeof js, "{\"max_length\": %d, \"pooling\": \"mean\"}\n", r->enc->max_length);
		if (!rc)
			rc = train_resource_write(res, "encoder.json", js, strlen(js));
	}
	if (!rc)
		rc = train_resource_write(res, "VERSION", "1\n", 2);
	return rc;
}

static int retriever_load_common(const train_config *c, const train_resource *res, train_ctx *ctx,
                                 int dense, void **self)
{
	int rc = retriever_make(c, ctx, dense, self);
	if (rc)
		return rc;
	retriever *r = *self;
	void *cd = NULL, *bd = NULL;
	size_t cs = 0, bs = 0;
	if ((rc = train_resource_read(res, "chunks.jsonl", &cd, &cs)) ||
	    (rc = train_resource_read(res, "bm25.idx", &bd, &bs))) {
		free(cd);
		return train_fail(ctx, "the model's retriever files are missing: %s", train_strerror(rc));
	}
	rc = retriever_open(r, cd, cs, bd, bs, ctx);
	free(cd);
	free(bd);
	if (rc || !dense)
		return rc;
	/* the graph is used in place from the file: mapped, checked, not parsed */
	const char *dir = train_resource_dir(res);
	char *path = malloc(strlen(dir) + 16), why[HNSW_ERR_SIZE] = "";
	if (!path)
		return TRAIN_ENOMEM;
	sprintf(path, "%s/hnsw.idx", dir);
	rc = hnsw_open(path, &r->hn, why);
	if (rc) {
		free(path);
		return train_fail(ctx, "%s", why);
	}
	if (hnsw_count(r->hn) != r->cs.n) {
		free(path);
		return train_fail(ctx, "the HNSW index has %zu vectors, there are %zu chunks",
		                  hnsw_count(r->hn), r->cs.n);
	}
	if (r->encoder) {
		void *js = NULL;
		size_t jl = 0;
		json_error_t je;
		json_t *o = NULL;
		train_error err = { 0 };
		int ml = 0;
		if (!(rc = train_resource_read(res, "encoder.json", &js, &jl)))
			o = json_loadb(js, jl, 0, &je);
		free(js);
		if (!o || !json_is_integer(json_object_get(o, "max_length")))
			rc = train_fail(ctx, "the model's encoder.json is missing or bad");
		else
			ml = (int)json_integer_value(json_object_get(o, "max_length"));
		json_decref(o);
		sprintf(path, "%s/encoder", dir);
		char eb[1024];
		if (!rc && (rc = dense_encoder_load_hf(path, ml, &r->enc, &err)))
			rc = rc == TRAIN_ENOMEM ? rc : train_fail(ctx, "%s", train_error_format(&err, eb, sizeof eb));
		if (!rc && (uint32_t)r->enc->m->cfg.hidden != hnsw_dim(r->hn))
			rc = train_fail(ctx, "the encoder gives %d floats, the HNSW index holds %u",
			                r->enc->m->cfg.hidden, hnsw_dim(r->hn));
	}
	free(path);
	return rc;
}

static int retriever_load(const train_config *c, const train_resource *res, train_ctx *ctx, void **self)
{
	return retriever_load_common(c, res, ctx, 0, self);
}

static int hybrid_load(const train_config *c, const train_resource *res, train_ctx *ctx, void **self)
{
	return retriever_load_common(c, res, ctx, 1, self);
}

static int encret_load(const train_config *c, const train_resource *res, train_ctx *ctx, void **self)
{
	return retriever_load_common(c, res, ctx, 2, self);
}

/* ---- fusion and the answer ------------------------------------------------------------------ */

typedef struct scored {
	uint32_t id;
	float score;
} scored;

static int scored_cmp(const void *a, const void *b)
{
	const scored *x = a, *y = b;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

/*
 * Fuse two ranked lists of chunk ids (best first) into `out` (room for
 * na + nb): RRF sums 1 / (rrf_k + rank) (rank from 1); weighted sums
 * w * dense + (1 - w) * bm25 after scaling each list's scores to 0..1.
 */
static size_t fuse(const retriever *r, const uint32_t *ia, const float *sa, size_t na,
                   const uint32_t *ib, const float *sb, size_t nb, scored *out)
{
	size_t n = 0;
	for (int side = 0; side < 2; side++) {
		const uint32_t *ids = side ? ib : ia;
		const float *s = side ? sb : sa;
		size_t m = side ? nb : na;
		float lo = m ? s[m - 1] : 0, hi = m ? s[0] : 0;
		for (size_t i = 0; i < m; i++) {
			float add;
			if (r->weighted) {
				float w = (float)(side ? r->dense_weight : 1 - r->dense_weight);
				add = w * (hi > lo ? (s[i] - lo) / (hi - lo) : 1.0f);
			} else
				add = 1.0f / (float)((double)r->rrf_k + (double)(i + 1));
			size_t j = 0;
			while (j < n && out[j].id != ids[i])
				j++;
			if (j == n)
				out[n++] = (scored){ ids[i], 0 };
			out[j].score += add;
		}
	}
	qsort(out, n, sizeof *out, scored_cmp);
	return n;
}

static int parse_vector(const char *s, size_t len, float **out, size_t *n)
{
	json_error_t je;
	json_t *a = json_loadb(s, len, 0, &je);
	if (!json_is_array(a)) {
		json_decref(a);
		return -1;
	}
	*n = json_array_size(a);
	*out = malloc((*n ? *n : 1) * sizeof **out);
	for (size_t i = 0; *out && i < *n; i++) {
		json_t *x = json_array_get(a, i);
		if (!json_is_number(x)) {
			free(*out);
			*out = NULL;
			break;
		}
		(*out)[i] = (float)json_number_value(x);
	}
	json_decref(a);
	return *out ? 0 : -1;
}

static const char *value_text(const train_values *in, const char *name, size_t *len)
{
	const train_value *v = train_values_get(in, name);
	*len = v ? train_value_size(v) : 0;
	return v ? train_value_data(v) : NULL;
}

static int retriever_process(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	retriever *r = self;
	size_t ql = 0, kl = 0, ml = 0, vl = 0;
	const char *qt = value_text(in, "query", &ql), *kt = value_text(in, "k", &kl);
	const char *mt = value_text(in, "mode", &ml), *vt = value_text(in, "query_vector", &vl);
	char *query = malloc(ql + 1), mode[16] = "", kbuf[24] = "";
	if (!query)
		return TRAIN_ENOMEM;
	if (ql)
		memcpy(query, qt, ql);
	query[ql] = '\0';
	size_t k = (size_t)r->k;
	if (kl) {
		memcpy(kbuf, kt, kl < 23 ? kl : 23);
		char *end;
		long v = strtol(kbuf, &end, 10);
		if (*end || v < 1 || v > 10000) {
			free(query);
			return train_fail(ctx, "k must be 1..10000, not '%s'", kbuf);
		}
		k = (size_t)v;
	}
	snprintf(mode, sizeof mode, "%s", r->mode);
	if (ml) {
		if (ml >= sizeof mode) {
			free(query);
			return train_fail(ctx, "mode must be bm25, dense or hybrid");
		}
		memcpy(mode, mt, ml);
		mode[ml] = '\0';
	}
	int want_bm = !strcmp(mode, "bm25") || !strcmp(mode, "hybrid");
	int want_dense = !strcmp(mode, "dense") || !strcmp(mode, "hybrid");
	if (!want_bm && !want_dense) {
		free(query);
		return train_fail(ctx, "mode must be bm25, dense or hybrid, not '%s'", mode);
	}
	float *qv = NULL;
	size_t qn = 0;
	if (want_dense) {
		if (!r->hn) {
			free(query);
			return train_fail(ctx, "mode %s: this model has no dense index", mode);
		}
		if (!vl && r->enc) {
			size_t l = strlen(query);
			const char *t = query;
			qn = hnsw_dim(r->hn);
			if (!(qv = malloc(qn * sizeof *qv))) {
				free(query);
				return TRAIN_ENOMEM;
			}
			int erc = dense_encode(r->enc, &t, &l, 1, 1, qv);
			if (erc) {
				free(query);
				free(qv);
				return erc;
			}
		} else if (!vl) {
			free(query);
			return train_fail(ctx, "mode %s: no query vector (the model has no dense encoder; "
			                       "pass query_vector=[...])", mode);
		} else if (parse_vector(vt, vl, &qv, &qn) || qn != hnsw_dim(r->hn)) {
			free(query);
			free(qv);
			return train_fail(ctx, "query_vector must be a JSON list of %u numbers", hnsw_dim(r->hn));
		}
	}
	/* chunks are ranked, then folded to documents (the best chunk of each);
	 * take more chunks until k documents or all chunks are in */
	size_t want = (size_t)r->candidates > k ? (size_t)r->candidates : k;
	scored *fused = NULL;
	uint32_t *ia = NULL, *ib = NULL;
	float *sa = NULL, *sb = NULL;
	size_t nf = 0, ndoc = 0;
	int rc = 0;
	json_t *hits = json_array();
	for (;;) {
		size_t na = 0, nb = 0;
		free(ia), free(ib), free(sa), free(sb), free(fused);
		ia = malloc(want * 4), ib = malloc(want * 4), sa = malloc(want * 4), sb = malloc(want * 4);
		fused = malloc(2 * want * sizeof *fused);
		if (!ia || !ib || !sa || !sb || !fused || !hits) {
			rc = TRAIN_ENOMEM;
			break;
		}
		if (want_bm)
			na = bm25_search(r->bm, query, want, ia, sa);
		if (want_dense) {
			if (!r->scratch && !(r->scratch = hnsw_scratch_new())) {
				rc = TRAIN_ENOMEM;
				break;
			}
			nb = hnsw_search_with(r->hn, r->scratch, qv, want,
			                 (size_t)r->ef_search > want ? (size_t)r->ef_search : want, ib, sb);
			for (size_t i = 0; i < nb; i++) { /* similarity, larger is better */
				sb[i] = hnsw_get_metric(r->hn) == HNSW_L2 ? -sb[i] : 1.0f - sb[i];
				if (r->gmap)
					ib[i] = r->gmap[ib[i]];
			}
		}
		if (want_bm && want_dense)
			nf = fuse(r, ia, sa, na, ib, sb, nb, fused);
		else {
			nf = want_bm ? na : nb;
			for (size_t i = 0; i < nf; i++)
				fused[i] = (scored){ want_bm ? ia[i] : ib[i], want_bm ? sa[i] : sb[i] };
		}
		/* count distinct documents among the fused chunks */
		ndoc = 0;
		chunkset_new_query(&r->cs);
		for (size_t i = 0; i < nf; i++)
			ndoc += (size_t)chunkset_first(&r->cs, fused[i].id);
		if (ndoc >= k || want >= r->cs.n || (na < want && nb < want))
			break;
		want *= 4;
	}
	chunkset_new_query(&r->cs);
	for (size_t i = 0, rank = 0; !rc && i < nf && rank < k; i++) {
		const chunk *c = &r->cs.c[fused[i].id];
		if (!chunkset_first(&r->cs, fused[i].id))
			continue;
		json_t *h = json_pack("{s:I, s:s, s:f, s:s, s:I, s:I, s:s}", "rank", (json_int_t)++rank, "id",
		                      c->doc, "score", (double)fused[i].score, "chunk", c->id, "start",
		                      (json_int_t)c->start, "end", (json_int_t)c->end, "text", c->text);
		if (!h || json_array_append_new(hits, h))
			rc = TRAIN_ENOMEM;
	}
	if (!rc) {
		json_t *o = json_pack("{s:s, s:o}", "mode", mode, "hits", hits);
		hits = NULL;
		char *s = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(7)) : NULL;
		json_decref(o);
		if (!s)
			rc = TRAIN_ENOMEM;
		else
			rc = train_values_put_bytes(out, "hits", "application/json", s, strlen(s));
		free(s);
	}
	json_decref(hits);
	free(ia), free(ib), free(sa), free(sb), free(fused), free(qv), free(query);
	return rc;
}

static const char *const retriever_in[] = { "chunks", "bm25", NULL };
static const char *const hybrid_in[] = { "chunks", "bm25", "hnsw", NULL };
static const char *const query_in[] = { "query", "k", "mode", "query_vector", NULL };
static const char *const hits_out[] = { "hits", NULL };

static const train_component_class retriever_class = {
	.struct_size = sizeof(train_component_class),
	.name = "Retriever",
	.version = "1",
	.doc = "BM25 retrieval over the chunks: query, k, mode -> hits (JSON)",
	.inputs = retriever_in,
	.process_inputs = query_in,
	.process_outputs = hits_out,
	.params = retriever_params,
	.create = retriever_create,
	.train = retriever_train,
	.process = retriever_process,
	.persist = retriever_persist,
	.load = retriever_load,
	.destroy = retriever_destroy,
};

static const train_component_class hybrid_class = {
	.struct_size = sizeof(train_component_class),
	.name = "HybridRetriever",
	.version = "1",
	.doc = "BM25 and HNSW retrieval fused (rrf or weighted): query, k, mode, query_vector -> hits",
	.inputs = hybrid_in,
	.process_inputs = query_in,
	.process_outputs = hits_out,
	.params = retriever_params,
	.create = hybrid_create,
	.train = retriever_train,
	.process = retriever_process,
	.persist = retriever_persist,
	.load = hybrid_load,
	.destroy = retriever_destroy,
};

static const char *const encret_in[] = { "chunks", "bm25", "hnsw", "encoder", NULL };

static const train_param encret_params[] = {
	{ "k", TRAIN_PARAM_INT, "5", "results when the query gives no k" },
	{ "mode", TRAIN_PARAM_STRING, "~", "default mode: bm25, dense or hybrid (~: hybrid)" },
	{ "fusion", TRAIN_PARAM_STRING, "weighted", "hybrid: weighted (the default: bench/rag_fusion's best on SQuAD with an encoder trained here) or rrf (reciprocal rank fusion)" },
	{ "rrf_k", TRAIN_PARAM_INT, "60", "RRF: score = sum 1 / (rrf_k + rank)" },
	{ "dense_weight", TRAIN_PARAM_FLOAT, "0.1", "weighted: w * dense + (1 - w) * bm25, each min-max scaled (raise it for a strong encoder)" },
	{ "candidates", TRAIN_PARAM_INT, "100", "chunks taken from each side before fusing" },
	{ "ef_search", TRAIN_PARAM_INT, "64", "HNSW beam width at query time" },
	{ "shard_docs", TRAIN_PARAM_INT, "32", "the graph was built shard by shard (HNSWInsert) with these blocks; 0: in chunk order" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

static const train_component_class encret_class = {
	.struct_size = sizeof(train_component_class),
	.name = "EncoderRetriever",
	.version = "1",
	.doc = "BM25 and HNSW retrieval fused, queries encoded by the DenseEncoder: query, k, mode -> hits",
	.inputs = encret_in,
	.process_inputs = query_in,
	.process_outputs = hits_out,
	.params = encret_params,
	.create = encret_create,
	.train = retriever_train,
	.process = retriever_process,
	.persist = retriever_persist,
	.load = encret_load,
	.destroy = retriever_destroy,
};

static const train_component_class *const rag_classes[] = {
	&documents_class, &bm25_class, &vecfile_class, &hnsw_class, &retriever_class, &hybrid_class,
	&encoder_class, &docshard_class, &encode_class, &shardvec_class, &encret_class, &hnswins_class,
	NULL,
};

TRAIN_PLUGIN_DEFINE("rag", "0.1.0", "MIT", "RAG indexer: documents, BM25, HNSW, hybrid retrieval",
                    rag_classes);
