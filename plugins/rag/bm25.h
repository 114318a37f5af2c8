/*
 * plugins/rag/bm25.h - an Okapi BM25 inverted index (issue 8).
 *
 * Terms: the text split as the WhitespaceTokenizer keeps words (runs of
 * Unicode word characters, \w of Python's `regex`; punctuation and white
 * space separate them), lower-cased with Python's str.lower() rules.
 * Optional stop words are dropped from documents and queries.
 *
 * Options of an index (stored in it, so queries are read the same way):
 *   BM25_STEM   each word is reduced to its Porter stem (plugins/common/
 *               porter.h: words of the letters a-z only);
 *   BM25_PAIRS  each two adjacent words also form a term "w1 w2" (stop words
 *               included), whose score is multiplied by the pair weight.
 *               Pairs do not count in a document's length.
 *
 * Score of document d for query q (Robertson's BM25 with Lucene's
 * non-negative idf, as Anserini and Pyserini use it):
 *     sum over distinct terms t of q present in d of
 *         idf(t) * tf(t,d) * (k1 + 1) / (tf(t,d) + k1 * (1 - b + b * |d| / avgdl))
 *     idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
 * A term repeated in the query counts once per repetition (as in Lucene's
 * BooleanQuery of the query's terms).
 *
 * Postings are compact: per term, LEB128 varints of (doc id gap, tf).
 * The serialized index (bm25_serialize) is read in place by bm25_open_mem,
 * which checks every offset and count against the buffer's size and decodes
 * every posting list once (ids below N, gaps positive, lengths exact).
 */
#ifndef PLUGINS_RAG_BM25_H
#define PLUGINS_RAG_BM25_H

#include <stddef.h>
#include <stdint.h>

typedef struct bm25 bm25;
typedef struct bm25_builder bm25_builder;

/* One term of `s`: [start, end) byte offsets; the lower-cased text in the
 * callback's own buffer.  Return non-zero to stop. */
typedef int (*bm25_term_fn)(void *ud, const char *term, size_t len, size_t start, size_t end);
/* Split s (valid UTF-8) into terms; returns the callback's non-zero or 0,
 * TRAIN_ENOMEM. */
int bm25_terms(const char *s, size_t n, bm25_term_fn fn, void *ud);

enum { BM25_STEM = 1u, BM25_PAIRS = 2u };

/* The terms an index with `flags` makes of s: each word (stemmed under
 * BM25_STEM; pair 0) and, under BM25_PAIRS, each pair of adjacent words
 * (pair 1).  Stop words are not dropped here. */
typedef int (*bm25_index_term_fn)(void *ud, const char *term, size_t len, int pair);
int bm25_index_terms(unsigned flags, const char *s, size_t n, bm25_index_term_fn fn, void *ud);

typedef struct bm25_options {
	double k1, b;
	const char *const *stop; /* NULL-terminated stop words (lower case), or NULL */
	unsigned flags;          /* BM25_STEM, BM25_PAIRS */
	double pair_weight;      /* under BM25_PAIRS: > 0 */
} bm25_options;

int bm25_builder_create(const bm25_options *o, bm25_builder **out);
/* Documents get ids 0, 1, ... in the order they are added. */
int bm25_builder_add(bm25_builder *bb, const char *text, size_t len);
/* The index as bytes (malloc'd): give them to bm25_open_mem. */
int bm25_builder_finish(bm25_builder *bb, void **buf, size_t *size);
void bm25_builder_destroy(bm25_builder *bb);

/* The built-in English stop words (NULL-terminated). */
extern const char *const bm25_english_stop_words[];

/* Open serialized bytes (not copied; they must outlive the index).
 * TRAIN_ECORRUPT with `err` ("name: what", 256 bytes) for a bad buffer. */
int bm25_open_mem(const void *data, size_t size, const char *name, bm25 **out, char *err);
void bm25_destroy(bm25 *ix);
size_t bm25_docs(const bm25 *ix);
size_t bm25_vocab(const bm25 *ix);

/* The k best documents for a query, best first (score > 0 only): ids and
 * scores (either may be NULL).  Returns how many; 0 also when out of memory. */
size_t bm25_search(const bm25 *ix, const char *query, size_t k, uint32_t *ids, float *scores);

#endif
