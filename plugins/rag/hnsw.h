/*
 * plugins/rag/hnsw.h - a hierarchical navigable small world graph (Malkov &
 * Yashunin, "Efficient and robust approximate nearest neighbor search using
 * HNSW graphs", 2016) for the RAG plugin (issue 8).
 *
 * Lifecycle:
 *     hnsw *h;
 *     hnsw_create(dim, HNSW_COSINE, M, ef_construction, seed, &h);
 *     hnsw_add(h, vectors, n, threads, err);    // ids 0..n-1; call again to add more
 *     n = hnsw_search(h, query, k, ef_search, ids, dists);
 *     hnsw_save(h, path, err) / hnsw_open(path, &h, err)  (mmap, checked)
 *     hnsw_destroy(h);
 *
 * Distances: L2 is the squared Euclidean distance; inner product is
 * 1 - <a, b>; cosine normalizes every stored and query vector and is then
 * 1 - <a, b>.  Smaller is nearer.  The kernels (AVX-512 with or without
 * AVX512-BF16, AVX2+FMA, plain C) are chosen once per process from the CPU;
 * TRAIN_RAG_SIMD=scalar|avx2|avx512|avx512bf16 forces one (run
 * tests/test_hnsw under each to compare them).
 *
 * Compressed traversal: the index keeps a bfloat16 copy of every vector
 * (half the bytes) and walks the graph, when inserting and when searching,
 * on distances between bf16 rows; a search then re-ranks the ef nodes it
 * found by their exact float32 distance to the query and returns the k
 * nearest, so returned distances are exact.
 *
 * File layout (little-endian; every section 64-byte aligned so the vectors
 * can be used in place from an mmap):
 *     header (struct hnsw_header below, 256 bytes)
 *     vectors   n * dim float32
 *     links0    n * (1 + M0) uint32: count, then neighbour ids (level 0)
 *     levels    n uint32: each node's top level
 *     uoffs     n uint64: where a node's upper lists start in `upper`
 *               (in uint32 units); levels 1..L follow one another
 *     upper     uint32 lists of (1 + M) per level above 0
 *     vectors16 n * dimp bfloat16 (dimp: dim rounded up to 32, zero padded)
 * The header's version is 2 (version 1 had no vectors16); a file of
 * another version is refused, saying which side is older.
 * hnsw_open() maps the file and checks, before any search can run, that
 * every section lies inside the file and has the size the header's counts
 * imply, that every list's count is within its capacity and every id is
 * below n, and that the entry point and levels are consistent.  Nothing is
 * parsed or copied: the index serves searches from the mapping.  hnsw_add()
 * on an opened index first copies it into memory (insertion grows it).
 *
 * Threads: hnsw_search() may run on many threads at once on an index that
 * no thread is adding to.  hnsw_add() uses `threads` threads of its own;
 * with threads = 1 the graph is the same for the same input and seed.
 */
#ifndef PLUGINS_RAG_HNSW_H
#define PLUGINS_RAG_HNSW_H

#include <stddef.h>
#include <stdint.h>

typedef enum hnsw_metric {
	HNSW_L2 = 0,
	HNSW_IP = 1,
	HNSW_COSINE = 2,
} hnsw_metric;

typedef struct hnsw hnsw;

/* Parse "l2" / "ip" / "cosine"; -1 when unknown. */
int hnsw_metric_parse(const char *s);
const char *hnsw_metric_name(hnsw_metric m);
/* The kernel set in use: "avx512", "avx2" or "scalar". */
const char *hnsw_simd_name(void);
/* The distance the index uses between a and b, for tests and brute force
 * (cosine: the caller passes normalized vectors). */
float hnsw_distance(hnsw_metric m, const float *a, const float *b, uint32_t dim);
/* The same on the bf16 copies the graph traversal uses (a and b rounded to
 * bfloat16, the kernel set's bf16 kernel); for tests. */
float hnsw_distance_bf16(hnsw_metric m, const float *a, const float *b, uint32_t dim);
/* Scale v to unit length (a zero vector stays zero). */
void hnsw_normalize(float *v, uint32_t dim);

/* 0, or TRAIN_EINVAL (dim 0 or over 65536, M < 2 or > 256, ef < 1) or
 * TRAIN_ENOMEM. */
int hnsw_create(uint32_t dim, hnsw_metric metric, uint32_t M, uint32_t ef_construction,
                uint64_t seed, hnsw **out);
void hnsw_destroy(hnsw *h);

size_t hnsw_count(const hnsw *h);
uint32_t hnsw_dim(const hnsw *h);
hnsw_metric hnsw_get_metric(const hnsw *h);
/* Bytes the index holds (vectors, links, locks). */
size_t hnsw_memory(const hnsw *h);

/* Insert n vectors (row-major, n x dim) with ids count..count+n-1.
 * 0, TRAIN_ENOMEM, TRAIN_EINVAL; `err` (may be NULL, 256 bytes) says why. */
int hnsw_add(hnsw *h, const float *vectors, size_t n, int threads, char *err);

/* The k nearest (at most) to q, nearest first: ids and distances (either
 * may be NULL).  ef < k is raised to k.  Returns how many were found. */
size_t hnsw_search(const hnsw *h, const float *q, size_t k, size_t ef, uint32_t *ids,
                   float *dists);

/* Search state reused across queries (visited marks, heaps): one per
 * thread.  hnsw_search() makes and frees one per call; a caller that runs
 * many queries keeps one (on a large index that saves clearing and mapping
 * n bytes per query).  It fits any index (it grows). */
typedef struct hnsw_scratch hnsw_scratch;
hnsw_scratch *hnsw_scratch_new(void);
void hnsw_scratch_free(hnsw_scratch *s);
size_t hnsw_search_with(const hnsw *h, hnsw_scratch *s, const float *q, size_t k, size_t ef,
                        uint32_t *ids, float *dists);

/* Serialize into a malloc'd buffer / write a file (temp name + rename). */
int hnsw_serialize(const hnsw *h, void **buf, size_t *size);
int hnsw_save(const hnsw *h, const char *path, char *err);
/* Map a file written by hnsw_save() (checked, see above); `err` says what is
 * wrong as "path: what".  TRAIN_ECORRUPT for a bad file, -errno when it
 * cannot be opened. */
int hnsw_open(const char *path, hnsw **out, char *err);
/* The same checks over bytes in memory (not copied: they must outlive the
 * index). */
int hnsw_open_mem(const void *data, size_t size, const char *name, hnsw **out, char *err);

#define HNSW_ERR_SIZE 256

#endif
