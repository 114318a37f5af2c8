/*
 * bench/rag_ann.c - the RAG plugin's HNSW index on a vector file, for
 * bench/rag_bench.sh: build time and memory, then for each ef_search the
 * recall@10 against the exact neighbours and queries/s on 1 and 2 threads.
 *
 *   rag_ann BASE.f32 QUERIES.f32 GT.i32 DIM M EF_CONSTRUCTION THREADS EF...
 *
 * Files are raw little-endian float32 rows (int32 rows of 10 ids for GT),
 * written by bench/rag_ann.py.  Output: one "key value..." line each.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../plugins/rag/hnsw.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *slurp(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		exit(1);
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	void *b = malloc((size_t)n + 1);
	if (!b || fread(b, 1, (size_t)n, f) != (size_t)n) {
		perror(path);
		exit(1);
	}
	fclose(f);
	*size = (size_t)n;
	return b;
}

/* CPU seconds of the process: on a machine shared with other jobs, wall
 * time measures the share we were given; CPU time measures the work. */
static double cpu(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static long rss_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = 0;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "VmRSS:", 6))
			kb = atol(line + 6);
	if (f)
		fclose(f);
	return kb;
}

typedef struct job {
	const hnsw *h;
	const float *q;
	size_t from, to, ef;
	uint32_t dim;
	uint32_t *out;
} job;

static void *run(void *arg)
{
	job *j = arg;
	hnsw_scratch *s = hnsw_scratch_new(); /* one per thread, as a server keeps it */
	for (size_t i = j->from; i < j->to; i++)
		hnsw_search_with(j->h, s, j->q + i * j->dim, 10, j->ef, j->out + i * 10, NULL);
	hnsw_scratch_free(s);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 9) {
		fprintf(stderr, "usage: rag_ann BASE QUERIES GT DIM M EFC THREADS EF...\n");
		return 64;
	}
	uint32_t dim = (uint32_t)atoi(argv[4]), M = (uint32_t)atoi(argv[5]);
	uint32_t efc = (uint32_t)atoi(argv[6]);
	int threads = atoi(argv[7]);
	size_t bs, qs, gs;
	float *base = slurp(argv[1], &bs), *q = slurp(argv[2], &qs);
	int32_t *gt = slurp(argv[3], &gs);
	size_t n = bs / 4 / dim, nq = qs / 4 / dim;
	if (gs / 40 != nq) {
		fprintf(stderr, "ground truth has %zu rows, %zu queries\n", gs / 40, nq);
		return 1;
	}
	long rss0 = rss_kb();
	hnsw *h;
	if (hnsw_create(dim, HNSW_IP, M, efc, 1, &h))
		return 1;
	double t0 = now(), c0 = cpu();
	char err[HNSW_ERR_SIZE];
	if (hnsw_add(h, base, n, threads, err)) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	double tb = now() - t0, cb = cpu() - c0;
	printf("simd %s\n", hnsw_simd_name());
	printf("build %.3f s cpu %.3f s %zu vectors threads %d rss_mb %.1f index_mb %.1f\n", tb, cb, n, threads,
	       (double)(rss_kb() - rss0) / 1024, (double)hnsw_memory(h) / 1048576);
	free(base);
	uint32_t *out = malloc(nq * 10 * sizeof *out);
	for (int a = 8; a < argc; a++) {
		size_t ef = (size_t)atoi(argv[a]);
		double qps[2], cqps = 0;
		for (int t = 1; t <= 2; t++) {
			pthread_t tid[2];
			job jobs[2];
			double s = now(), cs = cpu();
			for (int k = 0; k < t; k++) {
				jobs[k] = (job){ h, q, nq * (size_t)k / (size_t)t, nq * (size_t)(k + 1) / (size_t)t,
				                 ef, dim, out };
				pthread_create(&tid[k], NULL, run, &jobs[k]);
			}
			for (int k = 0; k < t; k++)
				pthread_join(tid[k], NULL);
			qps[t - 1] = (double)nq / (now() - s);
			if (t == 1)
				cqps = (double)nq / (cpu() - cs);
		}
		size_t hit = 0;
		for (size_t i = 0; i < nq; i++)
			for (int x = 0; x < 10; x++)
				for (int y = 0; y < 10; y++)
					if ((int32_t)out[i * 10 + x] == gt[i * 10 + y]) {
						hit++;
						break;
					}
		printf("ef %zu recall10 %.4f qps1 %.0f qps2 %.0f cpu_qps1 %.0f\n", ef,
		       (double)hit / (double)(nq * 10), qps[0], qps[1], cqps);
	}
	free(out);
	free(q);
	free(gt);
	hnsw_destroy(h);
	return 0;
}
