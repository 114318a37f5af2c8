/*
 * tests/test_hnsw.c - the RAG plugin's HNSW index (issue 8): recall against
 * brute force on random and clustered data, every metric and kernel set,
 * save -> open -> the same results, incremental insertion, and files that
 * lie (truncated, counts past the end, ids out of range) refused.
 */
#include <math.h>
#include <stdint.h>
#include <sys/stat.h>

#include <train/common.h>

#include "../plugins/rag/hnsw.h"
#include "testlib.h"

static uint64_t rs = 42;
static double urand(void)
{
	rs ^= rs << 13, rs ^= rs >> 7, rs ^= rs << 17;
	return ((double)(rs >> 11) + 0.5) / 9007199254740992.0;
}
static float grand(void)
{
	return (float)(sqrt(-2 * log(urand())) * cos(6.283185307179586 * urand()));
}

/* n x dim: uniform Gaussian (clusters 0) or a mixture of `clusters` centres. */
static float *make_data(size_t n, uint32_t dim, int clusters)
{
	float *v = malloc(n * dim * sizeof *v), *c = NULL;
	if (clusters) {
		c = malloc((size_t)clusters * dim * sizeof *c);
		for (size_t i = 0; i < (size_t)clusters * dim; i++)
			c[i] = 1.5f * grand();
	}
	for (size_t i = 0; i < n; i++) {
		const float *ctr = clusters ? c + (size_t)(urand() * clusters) % clusters * dim : NULL;
		for (uint32_t j = 0; j < dim; j++)
			v[i * dim + j] = (ctr ? ctr[j] : 0) + grand();
	}
	free(c);
	return v;
}

/* Brute-force top-k under the index's distance. */
static void brute(hnsw_metric m, const float *base, size_t n, uint32_t dim, const float *q, size_t k,
                  uint32_t *ids)
{
	float *qq = malloc(dim * sizeof *qq), *d = malloc(n * sizeof *d);
	memcpy(qq, q, dim * sizeof *qq);
	float *bn = NULL;
	if (m == HNSW_COSINE) {
		hnsw_normalize(qq, dim);
		bn = malloc(dim * sizeof *bn);
	}
	for (size_t i = 0; i < n; i++) {
		const float *b = base + i * dim;
		if (bn) {
			memcpy(bn, b, dim * sizeof *bn);
			hnsw_normalize(bn, dim);
			b = bn;
		}
		d[i] = hnsw_distance(m, qq, b, dim);
	}
	for (size_t j = 0; j < k; j++) {
		size_t best = SIZE_MAX;
		for (size_t i = 0; i < n; i++)
			if (d[i] < INFINITY && (best == SIZE_MAX || d[i] < d[best]))
				best = i;
		ids[j] = (uint32_t)best;
		d[best] = INFINITY;
	}
	free(qq), free(d), free(bn);
}

static double recall(const hnsw *h, hnsw_metric m, const float *base, size_t n, uint32_t dim,
                     const float *qs, size_t nq, size_t ef)
{
	size_t hit = 0;
	uint32_t gt[10], got[10];
	for (size_t i = 0; i < nq; i++) {
		brute(m, base, n, dim, qs + i * dim, 10, gt);
		size_t g = hnsw_search(h, qs + i * dim, 10, ef, got, NULL);
		for (size_t a = 0; a < 10; a++)
			for (size_t b = 0; b < g; b++)
				if (gt[a] == got[b]) {
					hit++;
					break;
				}
	}
	return (double)hit / (double)(10 * nq);
}

static void check_recall(hnsw_metric m, int clusters)
{
	size_t n = test_light() ? 800 : 4000, nq = test_light() ? 20 : 100;
	uint32_t dim = 24;
	float *base = make_data(n, dim, clusters), *qs = make_data(nq, dim, clusters);
	/* Inner product on vectors of any norm is not a metric: the nearest by
	 * <q, x> are the longest vectors and a proximity graph finds them
	 * poorly (0.95 here at ef 400, as with hnswlib).  Embeddings from a
	 * sentence encoder have norms near 1, so that is what IP is tested on. */
	if (m == HNSW_IP)
		for (size_t i = 0; i < n; i++) {
			hnsw_normalize(base + i * dim, dim);
			float s = (float)(0.9 + 0.2 * urand());
			for (uint32_t j = 0; j < dim; j++)
				base[i * dim + j] *= s;
		}
	hnsw *h = NULL;
	CU_ASSERT_EQUAL_FATAL(hnsw_create(dim, m, 16, 100, 7, &h), 0);
	/* one thread: the same graph every run (two threads: see test_threads) */
	CU_ASSERT_EQUAL(hnsw_add(h, base, n, 1, NULL), 0);
	CU_ASSERT_EQUAL(hnsw_count(h), n);
	double r = recall(h, m, base, n, dim, qs, nq, 400);
	printf("\n  %s %s (%s): recall@10 %.4f at ef 400", hnsw_metric_name(m),
	       clusters ? "clustered" : "random", hnsw_simd_name(), r);
	CU_ASSERT(r >= 0.99);
	hnsw_destroy(h);
	free(base), free(qs);
}

static void test_recall_random(void)
{
	check_recall(HNSW_L2, 0);
	check_recall(HNSW_COSINE, 0);
}

static void test_recall_clustered(void)
{
	check_recall(HNSW_L2, 16);
	check_recall(HNSW_IP, 16);
	check_recall(HNSW_COSINE, 16);
}

/* A build on two threads (the order of insertion varies from run to run,
 * so the graph does): every node reachable, recall close to one thread's. */
static void test_threads(void)
{
	size_t n = test_light() ? 800 : 4000, nq = test_light() ? 20 : 100;
	uint32_t dim = 24;
	float *base = make_data(n, dim, 16), *qs = make_data(nq, dim, 16);
	hnsw *h = NULL;
	CU_ASSERT_EQUAL_FATAL(hnsw_create(dim, HNSW_L2, 16, 100, 7, &h), 0);
	CU_ASSERT_EQUAL(hnsw_add(h, base, n, 2, NULL), 0);
	double r = recall(h, HNSW_L2, base, n, dim, qs, nq, 400);
	printf("\n  two threads: recall@10 %.4f at ef 400", r);
	CU_ASSERT(r >= 0.97);
	/* each stored vector finds itself */
	size_t self = 0;
	uint32_t id;
	for (size_t i = 0; i < n; i += 7)
		self += hnsw_search(h, base + i * dim, 1, 100, &id, NULL) == 1 && id == i;
	CU_ASSERT(self >= (n + 6) / 7 * 98 / 100);
	hnsw_destroy(h);
	free(base), free(qs);
}

/* The kernels agree with plain C on every length up to 70 (tails included). */
static void test_kernels(void)
{
	float a[70], b[70];
	for (int i = 0; i < 70; i++)
		a[i] = grand(), b[i] = grand();
	for (uint32_t n = 1; n <= 70; n++) {
		double dot = 0, l2 = 0;
		for (uint32_t i = 0; i < n; i++)
			dot += (double)a[i] * b[i], l2 += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
		CU_ASSERT(fabs(hnsw_distance(HNSW_IP, a, b, n) - (1 - dot)) < 1e-4 * (1 + fabs(dot)));
		CU_ASSERT(fabs(hnsw_distance(HNSW_L2, a, b, n) - l2) < 1e-4 * (1 + l2));
		/* bf16: 8 significant bits per value, so about 2^-8 of the
		 * sum of |products| */
		double ab = 0, d2 = 0;
		for (uint32_t i = 0; i < n; i++)
			ab += fabs((double)a[i] * b[i]), d2 += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
		CU_ASSERT(fabs(hnsw_distance_bf16(HNSW_IP, a, b, n) - (1 - dot)) < 0.01 * (1 + ab));
		CU_ASSERT(fabs(hnsw_distance_bf16(HNSW_L2, a, b, n) - l2) < 0.01 * (1 + d2));
	}
}

static void same_results(const hnsw *a, const hnsw *b, const float *qs, size_t nq, uint32_t dim)
{
	uint32_t ia[10], ib[10];
	float da[10], db[10];
	int same = 1;
	for (size_t i = 0; i < nq; i++) {
		size_t na = hnsw_search(a, qs + i * dim, 10, 50, ia, da);
		size_t nb = hnsw_search(b, qs + i * dim, 10, 50, ib, db);
		same &= na == nb && !memcmp(ia, ib, na * sizeof *ia) && !memcmp(da, db, na * sizeof *da);
	}
	CU_ASSERT(same);
}

static void test_save_load(void)
{
	size_t n = 1500, nq = 50;
	uint32_t dim = 20;
	float *base = make_data(n, dim, 8), *qs = make_data(nq, dim, 8);
	hnsw *h = NULL, *g = NULL;
	CU_ASSERT_EQUAL_FATAL(hnsw_create(dim, HNSW_COSINE, 8, 60, 3, &h), 0);
	CU_ASSERT_EQUAL(hnsw_add(h, base, n, 2, NULL), 0);
	char path[600], err[HNSW_ERR_SIZE] = "";
	snprintf(path, sizeof path, "%s/index.hnsw", test_tmpdir());
	CU_ASSERT_EQUAL(hnsw_save(h, path, err), 0);
	CU_ASSERT_EQUAL_FATAL(hnsw_open(path, &g, err), 0);
	CU_ASSERT_EQUAL(hnsw_count(g), n);
	same_results(h, g, qs, nq, dim);
	/* insertion into an opened (mapped) index copies it and grows */
	float *more = make_data(300, dim, 8);
	CU_ASSERT_EQUAL(hnsw_add(g, more, 300, 1, err), 0);
	CU_ASSERT_EQUAL(hnsw_count(g), n + 300);
	uint32_t id;
	CU_ASSERT_EQUAL(hnsw_search(g, more + 17 * dim, 1, 50, &id, NULL), 1);
	CU_ASSERT_EQUAL(id, n + 17);
	hnsw_destroy(h), hnsw_destroy(g);
	free(base), free(qs), free(more);
}

/* Half, then the other half into the same graph: the recall of a full build. */
static void test_incremental(void)
{
	size_t n = test_light() ? 1000 : 4000, nq = test_light() ? 20 : 100;
	uint32_t dim = 24;
	float *base = make_data(n, dim, 16), *qs = make_data(nq, dim, 16);
	hnsw *full = NULL, *inc = NULL;
	CU_ASSERT_EQUAL_FATAL(hnsw_create(dim, HNSW_L2, 12, 100, 5, &full), 0);
	CU_ASSERT_EQUAL_FATAL(hnsw_create(dim, HNSW_L2, 12, 100, 5, &inc), 0);
	CU_ASSERT_EQUAL(hnsw_add(full, base, n, 1, NULL), 0);
	CU_ASSERT_EQUAL(hnsw_add(inc, base, n / 2, 1, NULL), 0);
	CU_ASSERT_EQUAL(hnsw_add(inc, base + n / 2 * dim, n - n / 2, 1, NULL), 0);
	double rf = recall(full, HNSW_L2, base, n, dim, qs, nq, 200);
	double ri = recall(inc, HNSW_L2, base, n, dim, qs, nq, 200);
	printf("\n  full %.4f, half + half %.4f", rf, ri);
	CU_ASSERT(ri >= 0.99);
	CU_ASSERT(ri >= rf - 0.005);
	hnsw_destroy(full), hnsw_destroy(inc);
	free(base), free(qs);
}

/* ---- files that lie --------------------------------------------------------- */

/* Byte offsets in the header (hnsw.c's hnsw_header). */
#define OFF_VERSION 8
#define OFF_N 48
#define OFF_SEC_OFF 64
#define OFF_SEC_SIZE 112 /* 6 sections */

static void *aligned_copy(const void *b, size_t n)
{
	void *p = NULL;
	if (posix_memalign(&p, 64, n ? n : 1))
		abort();
	memcpy(p, b, n);
	return p;
}

static void expect_refused(const void *buf, size_t size, const char *want)
{
	void *c = aligned_copy(buf, size);
	hnsw *h = (hnsw *)1;
	char err[HNSW_ERR_SIZE] = "";
	int rc = hnsw_open_mem(c, size, "idx", &h, err);
	CU_ASSERT_EQUAL(rc, TRAIN_ECORRUPT);
	CU_ASSERT_PTR_NULL(h);
	if (!strstr(err, want)) {
		printf("\n  expected '%s' in: %s", want, err);
		CU_FAIL("wrong message");
	}
	free(c);
}

static void test_corrupt(void)
{
	size_t n = 300;
	uint32_t dim = 8;
	float *base = make_data(n, dim, 4);
	hnsw *h = NULL;
	CU_ASSERT_EQUAL_FATAL(hnsw_create(dim, HNSW_L2, 6, 40, 1, &h), 0);
	CU_ASSERT_EQUAL(hnsw_add(h, base, n, 1, NULL), 0);
	void *buf;
	size_t size;
	CU_ASSERT_EQUAL_FATAL(hnsw_serialize(h, &buf, &size), 0);
	unsigned char *b = buf;
	/* the good one opens */
	{
		void *c = aligned_copy(buf, size);
		hnsw *g = NULL;
		CU_ASSERT_EQUAL(hnsw_open_mem(c, size, "idx", &g, NULL), 0);
		hnsw_destroy(g);
		free(c);
	}
	/* truncated anywhere */
	expect_refused(buf, 100, "truncated");
	expect_refused(buf, size - 64, "runs past the end");
	expect_refused(buf, size / 2, "runs past the end");
	/* magic */
	unsigned char *t = aligned_copy(buf, size);
	t[0] = 'X';
	expect_refused(t, size, "bad magic");
	/* another format version: refused, saying which side is older */
	memcpy(t, b, size);
	uint32_t v1 = 1, v3 = 3;
	memcpy(t + OFF_VERSION, &v1, 4);
	expect_refused(t, size, "version 1, this build reads only version 2 (an older build");
	memcpy(t + OFF_VERSION, &v3, 4);
	expect_refused(t, size, "a newer build wrote it");
	/* the bf16 section shorter than the counts say */
	memcpy(t, b, size);
	uint64_t short16 = 64;
	memcpy(t + OFF_SEC_SIZE + 5 * 8, &short16, 8);
	expect_refused(t, size, "section vectors16 is 64 bytes");
	/* a node count that does not fit the sections */
	memcpy(t, b, size);
	uint64_t big = (uint64_t)n * 1000;
	memcpy(t + OFF_N, &big, 8);
	expect_refused(t, size, "the counts say");
	/* a section size and offset that say more than the file holds */
	memcpy(t, b, size);
	uint64_t off;
	memcpy(&off, t + OFF_SEC_OFF + 4 * 8, 8);
	uint64_t bigsz = size;
	memcpy(t + OFF_SEC_SIZE + 4 * 8, &bigsz, 8);
	expect_refused(t, size, "runs past the end");
	/* a neighbour id out of range, and a count past its capacity */
	memcpy(t, b, size);
	uint64_t l0;
	memcpy(&l0, t + OFF_SEC_OFF + 8, 8);
	uint32_t bad = (uint32_t)n + 5;
	uint32_t cnt;
	memcpy(&cnt, t + l0 + 4 * (13 * 1 + 0), 4);
	/* node 1's list: count then ids; force a count >= 1 and a bad id */
	uint32_t one = 1;
	memcpy(t + l0 + 4 * 13, &one, 4);
	memcpy(t + l0 + 4 * 14, &bad, 4);
	expect_refused(t, size, "out of range");
	memcpy(t, b, size);
	uint32_t many = 1000;
	memcpy(t + l0, &many, 4);
	expect_refused(t, size, "neighbours, at most");
	/* an upper-level offset past the section */
	memcpy(t, b, size);
	uint64_t lv, uo;
	memcpy(&lv, t + OFF_SEC_OFF + 2 * 8, 8);
	memcpy(&uo, t + OFF_SEC_OFF + 3 * 8, 8);
	for (size_t i = 0; i < n; i++) {
		uint32_t L;
		memcpy(&L, t + lv + 4 * i, 4);
		if (L) {
			uint64_t far = (uint64_t)1 << 40;
			memcpy(t + uo + 8 * i, &far, 8);
			break;
		}
	}
	expect_refused(t, size, "run past the section");
	/* a file on disk, truncated */
	char path[600], err[HNSW_ERR_SIZE] = "";
	snprintf(path, sizeof path, "%s/short.hnsw", test_tmpdir());
	FILE *f = fopen(path, "wb");
	fwrite(buf, 1, size - 100, f);
	fclose(f);
	hnsw *g = NULL;
	CU_ASSERT_EQUAL(hnsw_open(path, &g, err), TRAIN_ECORRUPT);
	CU_ASSERT_PTR_NOT_NULL(strstr(err, "short.hnsw"));
	free(t);
	free(buf);
	hnsw_destroy(h);
	free(base);
}

static const test_case cases[] = {
	{ "kernels", test_kernels },
	{ "recall_random", test_recall_random },
	{ "recall_clustered", test_recall_clustered },
	{ "threads", test_threads },
	{ "save_load", test_save_load },
	{ "incremental", test_incremental },
	{ "corrupt", test_corrupt },
	{ NULL, NULL },
};

int main(void) { return test_main("hnsw", cases); }
