/*
 * plugins/rag/bm25.c - the BM25 index: terms, building, the checked
 * serialized form and search.  See bm25.h.
 */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <train/common.h>

#include "../common/porter.h"
#include "../common/strmap.h"
#include "../common/text.h"
#include "bm25.h"

/* ---- terms ----------------------------------------------------------------- */

int bm25_terms(const char *s, size_t n, bm25_term_fn fn, void *ud)
{
	char small[256];
	char *buf = small;
	size_t cap = sizeof small;
	int rc = 0;
	size_t i = 0;
	while (i < n && !rc) {
		size_t start = i;
		uint32_t c = text_next(s, n, &i);
		if (!text_is_regex_word(c))
			continue;
		size_t len = 0, end = i;
		for (size_t at = start;;) {
			size_t before = at;
			uint32_t ch = text_next(s, n, &at);
			if (!text_is_regex_word(ch)) {
				end = before;
				break;
			}
			if (len + 8 > cap) {
				size_t nc = 2 * cap;
				char *nb = buf == small ? malloc(nc) : realloc(buf, nc);
				if (!nb) {
					rc = TRAIN_ENOMEM;
					break;
				}
				if (buf == small)
					memcpy(nb, small, len);
				buf = nb;
				cap = nc;
			}
			if (ch == 0x130) { /* 'İ'.lower() is "i̇" */
				len += text_put(buf + len, 'i');
				len += text_put(buf + len, 0x307);
			} else
				len += text_put(buf + len, text_tolower(ch));
			end = at;
			if (at >= n)
				break;
		}
		if (rc)
			break;
		buf[len] = '\0';
		rc = fn(ud, buf, len, start, end);
		i = end;
	}
	if (buf != small)
		free(buf);
	return rc;
}

/* ---- index terms: stems and word pairs ------------------------------------ */

typedef struct analyzer {
	unsigned flags;
	bm25_index_term_fn fn;
	void *ud;
	char prev[72], cur[72]; /* the word before (for pairs), and this one */
	size_t nprev, ncur;
	char *pair;
	size_t cap;
} analyzer;

static int analyze_word(void *ud, const char *t, size_t len, size_t s, size_t e)
{
	(void)s, (void)e;
	analyzer *a = ud;
	const char *w = t;
	size_t n = len;
	if ((a->flags & BM25_STEM) && len < sizeof a->cur) {
		memcpy(a->cur, t, len);
		n = porter_stem(a->cur, len);
		w = a->cur;
	}
	int rc = a->fn(a->ud, w, n, 0);
	if (rc || !(a->flags & BM25_PAIRS))
		return rc;
	if (a->nprev) {
		size_t need = a->nprev + 1 + n;
		if (need > a->cap) {
			char *p = realloc(a->pair, need);
			if (!p)
				return TRAIN_ENOMEM;
			a->pair = p;
			a->cap = need;
		}
		memcpy(a->pair, a->prev, a->nprev);
		a->pair[a->nprev] = ' ';
		memcpy(a->pair + a->nprev + 1, w, n);
		if ((rc = a->fn(a->ud, a->pair, need, 1)))
			return rc;
	}
	/* a word too long to keep starts no pair */
	a->nprev = n < sizeof a->prev ? n : 0;
	memcpy(a->prev, w, a->nprev);
	return 0;
}

int bm25_index_terms(unsigned flags, const char *s, size_t n, bm25_index_term_fn fn, void *ud)
{
	analyzer a = { .flags = flags, .fn = fn, .ud = ud };
	int rc = bm25_terms(s, n, analyze_word, &a);
	free(a.pair);
	return rc;
}

const char *const bm25_english_stop_words[] = {
	/* Lucene's EnglishAnalyzer default set */
	"a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is",
	"it", "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there",
	"these", "they", "this", "to", "was", "will", "with", NULL,
};

/* ---- building -------------------------------------------------------------- */

typedef struct plist {
	uint32_t *a; /* (doc, tf) pairs */
	size_t n, cap;
} plist;

struct bm25_builder {
	double k1, b, pair_weight;
	unsigned flags;
	strmap terms, stop;
	plist *lists;
	size_t nlists, caplists;
	uint32_t *doclen;
	size_t ndocs, capdocs;
	uint32_t *tmp; /* term ids of the current document */
	size_t ntmp, captmp;
	size_t nwords; /* words (not pairs) of the current document */
	uint64_t total;
};

int bm25_builder_create(const bm25_options *o, bm25_builder **out)
{
	*out = NULL;
	if ((o->flags & ~(unsigned)(BM25_STEM | BM25_PAIRS)) ||
	    ((o->flags & BM25_PAIRS) && !(o->pair_weight > 0 && o->pair_weight < 1e6)))
		return TRAIN_EINVAL;
	bm25_builder *bb = calloc(1, sizeof *bb);
	if (!bb)
		return TRAIN_ENOMEM;
	bb->k1 = o->k1;
	bb->b = o->b;
	bb->flags = o->flags;
	bb->pair_weight = (o->flags & BM25_PAIRS) ? o->pair_weight : 0;
	const char *const *stop = o->stop;
	for (size_t i = 0; stop && stop[i]; i++)
		if (!strmap_put(&bb->stop, stop[i], strlen(stop[i]), i, NULL)) {
			bm25_builder_destroy(bb);
			return TRAIN_ENOMEM;
		}
	*out = bb;
	return 0;
}

void bm25_builder_destroy(bm25_builder *bb)
{
	if (!bb)
		return;
	strmap_free(&bb->terms);
	strmap_free(&bb->stop);
	for (size_t i = 0; i < bb->nlists; i++)
		free(bb->lists[i].a);
	free(bb->lists);
	free(bb->doclen);
	free(bb->tmp);
	free(bb);
}

static int add_term(void *ud, const char *t, size_t len, int pair)
{
	bm25_builder *bb = ud;
	if (!pair && bb->stop.len && strmap_get(&bb->stop, t, len))
		return 0;
	if (!pair)
		bb->nwords++;
	int added = 0;
	strmap_entry *en = strmap_put(&bb->terms, t, len, bb->nlists, &added);
	if (!en)
		return TRAIN_ENOMEM;
	if (added) {
		if (bb->nlists == bb->caplists) {
			size_t cap = bb->caplists ? 2 * bb->caplists : 1024;
			plist *l = realloc(bb->lists, cap * sizeof *l);
			if (!l)
				return TRAIN_ENOMEM;
			bb->lists = l;
			bb->caplists = cap;
		}
		memset(&bb->lists[bb->nlists++], 0, sizeof(plist));
	}
	if (bb->ntmp == bb->captmp) {
		size_t cap = bb->captmp ? 2 * bb->captmp : 256;
		uint32_t *a = realloc(bb->tmp, cap * sizeof *a);
		if (!a)
			return TRAIN_ENOMEM;
		bb->tmp = a;
		bb->captmp = cap;
	}
	bb->tmp[bb->ntmp++] = (uint32_t)en->value;
	return 0;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

int bm25_builder_add(bm25_builder *bb, const char *text, size_t len)
{
	if (bb->ndocs >= UINT32_MAX - 1)
		return TRAIN_EINVAL;
	bb->ntmp = 0;
	bb->nwords = 0;
	int rc = bm25_index_terms(bb->flags, text, len, add_term, bb);
	if (rc)
		return rc;
	if (bb->ndocs == bb->capdocs) {
		size_t cap = bb->capdocs ? 2 * bb->capdocs : 1024;
		uint32_t *d = realloc(bb->doclen, cap * sizeof *d);
		if (!d)
			return TRAIN_ENOMEM;
		bb->doclen = d;
		bb->capdocs = cap;
	}
	uint32_t doc = (uint32_t)bb->ndocs++;
	bb->doclen[doc] = (uint32_t)bb->nwords;
	bb->total += bb->nwords;
	qsort(bb->tmp, bb->ntmp, sizeof *bb->tmp, u32_cmp);
	for (size_t i = 0; i < bb->ntmp;) {
		size_t j = i;
		while (j < bb->ntmp && bb->tmp[j] == bb->tmp[i])
			j++;
		plist *l = &bb->lists[bb->tmp[i]];
		if (l->n + 2 > l->cap) {
			size_t cap = l->cap ? 2 * l->cap : 8;
			uint32_t *a = realloc(l->a, cap * sizeof *a);
			if (!a)
				return TRAIN_ENOMEM;
			l->a = a;
			l->cap = cap;
		}
		l->a[l->n++] = doc;
		l->a[l->n++] = (uint32_t)(j - i);
		i = j;
	}
	return 0;
}

/* ---- the serialized form ------------------------------------------------------ */

#define BM25_MAGIC "TRNBM25\0"
#define BM25_VERSION 2u /* 2: flags and the pair weight; version 1 files are read too */
#define NSEC 6 /* doclen, termoff, pool, postoff, postings, df */

typedef struct bm25_header {
	char magic[8];
	uint32_t version, header_size;
	uint32_t ndocs, nterms;
	double k1, b;
	uint64_t total_len;
	uint64_t off[NSEC], size[NSEC];
	uint32_t flags;     /* version 2 on */
	float pair_weight;
} bm25_header;

/* Version 1's header: the same without the last two fields. */
#define BM25_V1_HEADER offsetof(bm25_header, flags)

static size_t align8(size_t x) { return (x + 7) & ~(size_t)7; }

static size_t put_varint(unsigned char *p, uint32_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (unsigned char)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (unsigned char)v;
	return n;
}

/* 0 when the varint runs past `end` or is longer than 5 bytes. */
static size_t get_varint(const unsigned char *p, const unsigned char *end, uint32_t *v)
{
	uint64_t x = 0;
	for (size_t n = 0; n < 5 && p + n < end; n++) {
		x |= (uint64_t)(p[n] & 0x7f) << (7 * n);
		if (!(p[n] & 0x80)) {
			if (x > UINT32_MAX)
				return 0;
			*v = (uint32_t)x;
			return n + 1;
		}
	}
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const strmap_entry *x = *(const strmap_entry *const *)a, *y = *(const strmap_entry *const *)b;
	size_t n = x->len < y->len ? x->len : y->len;
	int c = memcmp(x->key, y->key, n);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

int bm25_builder_finish(bm25_builder *bb, void **buf, size_t *size)
{
	size_t T = bb->terms.len, N = bb->ndocs;
	const strmap_entry **ents = malloc((T + 1) * sizeof *ents);
	if (!ents)
		return TRAIN_ENOMEM;
	size_t k = 0, pool = 0, post = 0;
	for (size_t i = 0; i < bb->terms.cap; i++)
		if (bb->terms.slots[i].key) {
			ents[k++] = &bb->terms.slots[i];
			pool += bb->terms.slots[i].len;
			post += bb->lists[bb->terms.slots[i].value].n / 2 * 10;
		}
	qsort(ents, T, sizeof *ents, entry_cmp);
	bm25_header hd;
	memset(&hd, 0, sizeof hd);
	memcpy(hd.magic, BM25_MAGIC, 8);
	hd.version = BM25_VERSION;
	hd.header_size = sizeof hd;
	hd.ndocs = (uint32_t)N;
	hd.nterms = (uint32_t)T;
	hd.k1 = bb->k1;
	hd.b = bb->b;
	hd.flags = bb->flags;
	hd.pair_weight = (float)bb->pair_weight;
	hd.total_len = bb->total;
	hd.size[0] = N * 4;
	hd.size[1] = (T + 1) * 8;
	hd.size[2] = pool;
	hd.size[3] = (T + 1) * 8;
	hd.size[4] = post; /* an upper bound until written */
	hd.size[5] = T * 4;
	size_t off = align8(sizeof hd);
	for (int s = 0; s < NSEC; s++) {
		hd.off[s] = off;
		off = align8(off + hd.size[s]);
	}
	unsigned char *b = calloc(1, off ? off : 1);
	if (!b) {
		free(ents);
		return TRAIN_ENOMEM;
	}
	if (N)
		memcpy(b + hd.off[0], bb->doclen, N * 4);
	uint64_t *toff = (uint64_t *)(void *)(b + hd.off[1]);
	uint64_t *poff = (uint64_t *)(void *)(b + hd.off[3]);
	uint32_t *df = (uint32_t *)(void *)(b + hd.off[5]);
	unsigned char *pp = b + hd.off[2], *ps = b + hd.off[4];
	size_t at = 0, pat = 0;
	for (size_t t = 0; t < T; t++) {
		toff[t] = at;
		memcpy(pp + at, ents[t]->key, ents[t]->len);
		at += ents[t]->len;
		poff[t] = pat;
		const plist *l = &bb->lists[ents[t]->value];
		uint32_t prev = 0;
		for (size_t j = 0; j < l->n; j += 2) {
			pat += put_varint(ps + pat, j ? l->a[j] - prev : l->a[j]);
			pat += put_varint(ps + pat, l->a[j + 1]);
			prev = l->a[j];
		}
		df[t] = (uint32_t)(l->n / 2);
	}
	toff[T] = at;
	poff[T] = pat;
	/* move df up to just after the postings actually written */
	hd.size[4] = pat;
	uint64_t dfoff = align8(hd.off[4] + pat);
	memmove(b + dfoff, df, T * 4);
	hd.off[5] = dfoff;
	size_t total = align8(dfoff + T * 4);
	memcpy(b, &hd, sizeof hd);
	free(ents);
	*buf = b;
	*size = total;
	return 0;
}

/* ---- the open index --------------------------------------------------------- */

struct bm25 {
	uint32_t N, T;
	unsigned flags;
	float pair_weight;
	double k1, b, avgdl;
	const uint32_t *doclen, *df;
	const uint64_t *toff, *poff;
	const char *pool;
	const unsigned char *post;
	float *norm; /* k1 * (1 - b + b * dl / avgdl), per document */
};

static void seterr(char *err, const char *fmt, ...) TRAIN_PRINTF(2, 3);
static void seterr(char *err, const char *fmt, ...)
{
	if (!err)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, 256, fmt, ap);
	va_end(ap);
}

#define BAD(...) do { seterr(err, __VA_ARGS__); rc = TRAIN_ECORRUPT; goto fail; } while (0)

int bm25_open_mem(const void *data, size_t size, const char *name, bm25 **out, char *err)
{
	*out = NULL;
	int rc = 0;
	const unsigned char *d = data;
	bm25 *ix = calloc(1, sizeof *ix);
	if (!ix)
		return TRAIN_ENOMEM;
	bm25_header hd;
	memset(&hd, 0, sizeof hd);
	if (size < BM25_V1_HEADER)
		BAD("%s: truncated: %zu bytes, the header alone is %zu", name, size, (size_t)BM25_V1_HEADER);
	if ((uintptr_t)d & 7)
		BAD("%s: buffer not 8-byte aligned", name);
	memcpy(&hd, d, BM25_V1_HEADER);
	if (memcmp(hd.magic, BM25_MAGIC, 8))
		BAD("%s: not a BM25 index (bad magic)", name);
	if (!(hd.version == 1 && hd.header_size == BM25_V1_HEADER) &&
	    !(hd.version == BM25_VERSION && hd.header_size == sizeof hd))
		BAD("%s: BM25 format version %u (header %u bytes), this build reads 1 and %u", name,
		    hd.version, hd.header_size, BM25_VERSION);
	if (hd.header_size > size)
		BAD("%s: truncated: %zu bytes, the header alone is %u", name, size, hd.header_size);
	memcpy(&hd, d, hd.header_size);
	if (!(hd.k1 >= 0 && hd.k1 < 1e6) || !(hd.b >= 0 && hd.b <= 1))
		BAD("%s: bad parameters k1 %g, b %g", name, hd.k1, hd.b);
	if ((hd.flags & ~(uint32_t)(BM25_STEM | BM25_PAIRS)) ||
	    ((hd.flags & BM25_PAIRS) && !(hd.pair_weight > 0 && hd.pair_weight < 1e6f)))
		BAD("%s: unknown options %#x or a bad pair weight %g", name, hd.flags,
		    (double)hd.pair_weight);
	uint64_t N = hd.ndocs, T = hd.nterms;
	uint64_t want[NSEC] = { N * 4, (T + 1) * 8, 0, (T + 1) * 8, 0, T * 4 };
	static const char *const sec[NSEC] = { "doclen", "termoff", "pool", "postoff", "postings", "df" };
	for (int s = 0; s < NSEC; s++) {
		if (want[s] && hd.size[s] != want[s])
			BAD("%s: section %s is %llu bytes, the counts say %llu", name, sec[s],
			    (unsigned long long)hd.size[s], (unsigned long long)want[s]);
		if (hd.off[s] % 8 || hd.off[s] < hd.header_size || hd.off[s] > size ||
		    hd.size[s] > size - hd.off[s])
			BAD("%s: section %s (offset %llu, %llu bytes) runs past the end of the file (%zu bytes)",
			    name, sec[s], (unsigned long long)hd.off[s], (unsigned long long)hd.size[s], size);
	}
	ix->N = (uint32_t)N, ix->T = (uint32_t)T, ix->k1 = hd.k1, ix->b = hd.b;
	ix->flags = hd.flags;
	ix->pair_weight = (hd.flags & BM25_PAIRS) ? hd.pair_weight : 0;
	ix->doclen = (const uint32_t *)(const void *)(d + hd.off[0]);
	ix->toff = (const uint64_t *)(const void *)(d + hd.off[1]);
	ix->pool = (const char *)(d + hd.off[2]);
	ix->poff = (const uint64_t *)(const void *)(d + hd.off[3]);
	ix->post = d + hd.off[4];
	ix->df = (const uint32_t *)(const void *)(d + hd.off[5]);
	uint64_t total = 0;
	for (uint64_t i = 0; i < N; i++)
		total += ix->doclen[i];
	if (total != hd.total_len)
		BAD("%s: document lengths add up to %llu, the header says %llu", name,
		    (unsigned long long)total, (unsigned long long)hd.total_len);
	ix->avgdl = N ? (double)total / (double)N : 1;
	if (ix->toff[0] || ix->toff[T] != hd.size[2] || ix->poff[0] || ix->poff[T] != hd.size[4])
		BAD("%s: term or posting offsets do not span their sections", name);
	for (uint64_t t = 0; t < T; t++) {
		if (ix->toff[t + 1] <= ix->toff[t] || ix->poff[t + 1] < ix->poff[t] ||
		    ix->toff[t + 1] > hd.size[2] || ix->poff[t + 1] > hd.size[4])
			BAD("%s: term %llu: offsets out of order or past their section", name,
			    (unsigned long long)t);
		if (t) {
			size_t la = ix->toff[t] - ix->toff[t - 1], lb = ix->toff[t + 1] - ix->toff[t];
			int c = memcmp(ix->pool + ix->toff[t - 1], ix->pool + ix->toff[t], la < lb ? la : lb);
			if (c > 0 || (!c && la >= lb))
				BAD("%s: term %llu is not after the one before it", name, (unsigned long long)t);
		}
		const unsigned char *p = ix->post + ix->poff[t], *end = ix->post + ix->poff[t + 1];
		bool pair = memchr(ix->pool + ix->toff[t], ' ', ix->toff[t + 1] - ix->toff[t]) != NULL;
		uint64_t doc = 0, cnt = 0;
		while (p < end) {
			uint32_t gap, tf;
			size_t a = get_varint(p, end, &gap), b2 = a ? get_varint(p + a, end, &tf) : 0;
			if (!a || !b2 || (cnt && !gap) || !tf)
				BAD("%s: term %llu: a bad posting", name, (unsigned long long)t);
			doc += gap;
			/* (a pair may hold stop words, which the length leaves out) */
			if (doc >= N || (!pair && tf > ix->doclen[doc]))
				BAD("%s: term %llu: document id %llu out of range (%llu documents) or tf too large",
				    name, (unsigned long long)t, (unsigned long long)doc, (unsigned long long)N);
			p += a + b2;
			cnt++;
		}
		if (cnt != ix->df[t] || !cnt)
			BAD("%s: term %llu: %llu postings, document frequency %u", name, (unsigned long long)t,
			    (unsigned long long)cnt, ix->df[t]);
	}
	ix->norm = malloc((N ? N : 1) * sizeof *ix->norm);
	if (!ix->norm) {
		rc = TRAIN_ENOMEM;
		goto fail;
	}
	for (uint64_t i = 0; i < N; i++)
		ix->norm[i] = (float)(ix->k1 * (1 - ix->b + ix->b * ix->doclen[i] / ix->avgdl));
	*out = ix;
	return 0;
fail:
	bm25_destroy(ix);
	return rc;
}

void bm25_destroy(bm25 *ix)
{
	if (!ix)
		return;
	free(ix->norm);
	free(ix);
}

size_t bm25_docs(const bm25 *ix) { return ix->N; }
size_t bm25_vocab(const bm25 *ix) { return ix->T; }

/* ---- search ------------------------------------------------------------------ */

typedef struct qstate {
	const bm25 *ix;
	float *score;
	uint32_t *touched;
	size_t ntouched;
} qstate;

static long find_term(const bm25 *ix, const char *t, size_t len)
{
	long lo = 0, hi = (long)ix->T - 1;
	while (lo <= hi) {
		long mid = lo + (hi - lo) / 2;
		size_t ml = ix->toff[mid + 1] - ix->toff[mid];
		int c = memcmp(ix->pool + ix->toff[mid], t, ml < len ? ml : len);
		if (!c)
			c = (ml > len) - (ml < len);
		if (!c)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

static int score_term(void *ud, const char *t, size_t len, int pair)
{
	qstate *q = ud;
	const bm25 *ix = q->ix;
	long ti = find_term(ix, t, len);
	if (ti < 0)
		return 0;
	double df = ix->df[ti];
	float idf = (float)log(1.0 + ((double)ix->N - df + 0.5) / (df + 0.5));
	if (pair)
		idf *= ix->pair_weight;
	float k1p = (float)(ix->k1 + 1);
	const unsigned char *p = ix->post + ix->poff[ti], *end = ix->post + ix->poff[ti + 1];
	uint32_t doc = 0;
	while (p < end) {
		uint32_t gap = 0, tf = 0;
		p += get_varint(p, end, &gap);
		p += get_varint(p, end, &tf);
		doc += gap;
		if (q->score[doc] == 0)
			q->touched[q->ntouched++] = doc;
		q->score[doc] += idf * (float)tf * k1p / ((float)tf + ix->norm[doc]);
	}
	return 0;
}

typedef struct hit {
	float s;
	uint32_t id;
} hit;

/* better: higher score, then lower id */
static int hit_better(hit a, hit b) { return a.s > b.s || (a.s == b.s && a.id < b.id); }

static int hit_cmp(const void *a, const void *b)
{
	hit x = *(const hit *)a, y = *(const hit *)b;
	return hit_better(x, y) ? -1 : hit_better(y, x) ? 1 : 0;
}

size_t bm25_search(const bm25 *ix, const char *query, size_t k, uint32_t *ids, float *scores)
{
	if (!k || !ix->N)
		return 0;
	qstate q = { ix, calloc(ix->N, sizeof(float)), malloc(ix->N * sizeof(uint32_t)), 0 };
	hit *h = malloc((k + 1) * sizeof *h);
	size_t nh = 0;
	if (!q.score || !q.touched || !h ||
	    bm25_index_terms(ix->flags, query, strlen(query), score_term, &q))
		goto out;
	/* a min-heap (worst on top) of the k best */
	for (size_t i = 0; i < q.ntouched; i++) {
		hit c = { q.score[q.touched[i]], q.touched[i] };
		if (!(c.s > 0))
			continue;
		if (nh < k) { /* sift up */
			size_t at = nh++;
			while (at) {
				size_t p = (at - 1) / 2;
				if (!hit_better(h[p], c))
					break;
				h[at] = h[p];
				at = p;
			}
			h[at] = c;
		} else if (hit_better(c, h[0])) { /* replace the worst, sift down */
			size_t p = 0;
			for (;;) {
				size_t l = 2 * p + 1, r = l + 1, w = p;
				hit wv = c;
				if (l < nh && hit_better(wv, h[l]))
					w = l, wv = h[l];
				if (r < nh && hit_better(wv, h[r]))
					w = r;
				if (w == p)
					break;
				h[p] = h[w];
				p = w;
			}
			h[p] = c;
		}
	}
	qsort(h, nh, sizeof *h, hit_cmp);
	for (size_t i = 0; i < nh; i++) {
		if (ids)
			ids[i] = h[i].id;
		if (scores)
			scores[i] = h[i].s;
	}
out:
	free(q.score);
	free(q.touched);
	free(h);
	return nh;
}
