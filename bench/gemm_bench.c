/*
 * gemm_bench.c - GEMM throughput: train_matmul (oneDNN matmul, fp32 and
 * bf16) against OpenBLAS cblas_sgemm and oneDNN's own dnnl_sgemm, next to
 * the machine's fp32 peak measured with a tight FMA loop.
 *
 * Prints a table, then one line per target that `make bench` collects:
 *   bench gemm-fp32-1024: ours X GFLOP/s, openblas Y GFLOP/s, ratio R
 *   bench gemm-bf16-1024: ours X GFLOP/s, onednn-sgemm Y GFLOP/s, ratio R
 * (a bf16 line compares with the faster of the two fp32 references).
 * A GEMM of M x N x K counts 2*M*N*K flops; each figure is the best run
 * over GEMM_BENCH_ROUNDS (4) rounds of the whole table (no new round
 * after a minute, from the third on), a warm-up run before each, all with the same thread count (the CPUs this process may
 * use, or GEMM_BENCH_THREADS).  GEMM_BENCH_QUICK=1 skips the shapes above
 * 1024^3 (for a quick look).
 *
 * Operands are row-major C (M x N) = A (M x K) * B (K x N), no transposes,
 * uniform in [-1, 1).  The bf16 figure includes the per-call conversion of
 * A and B, as a training step pays it.
 */
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <immintrin.h>

#include <train/kernels.h>
#include <train/tensor.h>

#include "kernels_private.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- fp32 peak ------------------------------------------------------------- */

/* 12 independent FMA chains hide the FMA latency (4 cycles) on 2 pipes
 * (4 x 2 = 8 would do; 12 leaves room).  The loops are unrolled so the
 * chains live in registers (GCC keeps an indexed array in memory
 * otherwise, and then measures store forwarding).  The inputs come from
 * memory the compiler cannot see through, and the result is stored, so
 * nothing is folded away. */
#define PEAK_CHAINS 12
#define PEAK_ITERS  (50 * 1000 * 1000)

__attribute__((target("avx512f"))) static double fma_loop_avx512(const float *in, float *out,
                                                                  long iters)
{
	__m512 acc[PEAK_CHAINS];
	__m512 x = _mm512_set1_ps(in[0]), y = _mm512_set1_ps(in[1]);
#pragma GCC unroll 16
	for (int i = 0; i < PEAK_CHAINS; i++)
		acc[i] = _mm512_set1_ps(in[2] + (float)i);
	for (long it = 0; it < iters; it++)
#pragma GCC unroll 16
		for (int i = 0; i < PEAK_CHAINS; i++)
			acc[i] = _mm512_fmadd_ps(acc[i], x, y);
#pragma GCC unroll 16
	for (int i = 1; i < PEAK_CHAINS; i++)
		acc[0] = _mm512_add_ps(acc[0], acc[i]);
	_mm512_storeu_ps(out, acc[0]);
	return (double)iters * PEAK_CHAINS * 16 * 2;
}

__attribute__((target("avx2,fma"))) static double fma_loop_avx2(const float *in, float *out,
                                                                 long iters)
{
	__m256 acc[PEAK_CHAINS];
	__m256 x = _mm256_set1_ps(in[0]), y = _mm256_set1_ps(in[1]);
#pragma GCC unroll 16
	for (int i = 0; i < PEAK_CHAINS; i++)
		acc[i] = _mm256_set1_ps(in[2] + (float)i);
	for (long it = 0; it < iters; it++)
#pragma GCC unroll 16
		for (int i = 0; i < PEAK_CHAINS; i++)
			acc[i] = _mm256_fmadd_ps(acc[i], x, y);
#pragma GCC unroll 16
	for (int i = 1; i < PEAK_CHAINS; i++)
		acc[0] = _mm256_add_ps(acc[0], acc[i]);
	_mm256_storeu_ps(out, acc[0]);
	return (double)iters * PEAK_CHAINS * 8 * 2;
}

typedef struct peak_job {
	int avx512;
	long iters;
	float in[3], out[16];
	double flops;
} peak_job;

static void *peak_thread(void *arg)
{
	peak_job *j = arg;
	j->flops = j->avx512 ? fma_loop_avx512(j->in, j->out, j->iters)
	                     : fma_loop_avx2(j->in, j->out, j->iters);
	return NULL;
}

/* GFLOP/s of `threads` FMA loops at once; 0 without AVX2. */
static double fp32_peak(int threads, const char **isa)
{
	__builtin_cpu_init();
	int avx512 = __builtin_cpu_supports("avx512f");
	if (!avx512 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
		*isa = "none";
		return 0;
	}
	*isa = avx512 ? "AVX-512" : "AVX2";
	peak_job jobs[64];
	pthread_t tid[64];
	if (threads > 64)
		threads = 64;
	double best = 0;
	for (int rep = 0; rep < 5; rep++) {
		double t0 = now();
		for (int i = 0; i < threads; i++) {
			jobs[i] = (peak_job){ .avx512 = avx512, .iters = PEAK_ITERS / 4,
			                      .in = { 0.999f, 0.001f, (float)i } };
			pthread_create(&tid[i], NULL, peak_thread, &jobs[i]);
		}
		double flops = 0;
		for (int i = 0; i < threads; i++) {
			pthread_join(tid[i], NULL);
			flops += jobs[i].flops;
		}
		double g = flops / (now() - t0) / 1e9;
		if (g > best)
			best = g;
	}
	return best;
}

/* ---- GEMMs ----------------------------------------------------------------- */

typedef enum { OURS_FP32, OURS_BF16, OPENBLAS, ONEDNN_SGEMM, NVARIANTS } variant;
static const char *const variant_names[] = { "ours", "ours-bf16", "openblas", "onednn-sgemm" };

static int run(variant v, int M, int N, int K, const float *A, const float *B, float *C)
{
	switch (v) {
	case OURS_FP32:
	case OURS_BF16:
		return train_matmul(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
	case OPENBLAS:
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N, 0.0f,
		            C, N);
		return 0;
	case ONEDNN_SGEMM:
		return dnnl_sgemm('N', 'N', M, N, K, 1.0f, A, K, B, N, 0.0f, C, N) == dnnl_success ? 0
		                                                                                   : -1;
	default:
		return -1;
	}
}

/* Best GFLOP/s of the runs after a warm-up run: at least 1, until 0.25 s
 * or 4 runs. */
static double measure(variant v, int M, int N, int K, const float *A, const float *B, float *C)
{
	if (v == OURS_FP32 || v == OURS_BF16)
		train_kernels_init(0, v == OURS_BF16 ? TRAIN_PRECISION_BF16 : TRAIN_PRECISION_FP32);
	if (run(v, M, N, K, A, B, C) != 0) {
		fprintf(stderr, "gemm_bench: %s failed at %dx%dx%d\n", variant_names[v], M, N, K);
		return 0;
	}
	double flops = 2.0 * M * N * K, best = 0, spent = 0;
	for (int rep = 0; rep < 4 && (rep < 1 || spent < 0.25); rep++) {
		double t0 = now();
		run(v, M, N, K, A, B, C);
		double dt = now() - t0;
		spent += dt;
		if (flops / dt > best)
			best = flops / dt;
	}
	return best / 1e9;
}

typedef struct shape {
	const char *name;
	int M, N, K;
} shape;

int main(void)
{
	const char *q = getenv("GEMM_BENCH_QUICK");
	int quick = q && *q && strcmp(q, "0") != 0;
	const char *th = getenv("GEMM_BENCH_THREADS");
	int threads = th ? atoi(th) : 0;
	if (train_kernels_init(threads, TRAIN_PRECISION_FP32) != 0) {
		fprintf(stderr, "gemm_bench: no oneDNN CPU engine\n");
		return 1;
	}
	threads = train_kernels_threads();

	static const shape shapes[] = {
		{ "256", 256, 256, 256 },
		{ "512", 512, 512, 512 },
		{ "1024", 1024, 1024, 1024 },
		{ "2048", 2048, 2048, 2048 },
		{ "4096", 4096, 4096, 4096 },
		/* Model shapes: rows = batch x time, a projection from K to N. */
		{ "2048x1024x256", 2048, 1024, 256 },   /* a small model's up-projection */
		{ "4096x768x3072", 4096, 768, 3072 },   /* BERT-base FFN down, 8 x 512 tokens */
		{ "4096x2304x768", 4096, 2304, 768 },   /* BERT-base fused QKV */
		{ "64x4096x4096", 64, 4096, 4096 },     /* few rows: inference-like */
	};
	size_t nshapes = sizeof shapes / sizeof shapes[0];
	size_t maxa = 0, maxb = 0, maxc = 0;
	for (size_t i = 0; i < nshapes; i++) {
		const shape *s = &shapes[i];
		if ((size_t)s->M * s->K > maxa)
			maxa = (size_t)s->M * s->K;
		if ((size_t)s->K * s->N > maxb)
			maxb = (size_t)s->K * s->N;
		if ((size_t)s->M * s->N > maxc)
			maxc = (size_t)s->M * s->N;
	}
	float *A = malloc(maxa * sizeof *A), *B = malloc(maxb * sizeof *B),
	      *C = malloc(maxc * sizeof *C);
	if (!A || !B || !C) {
		fprintf(stderr, "gemm_bench: out of memory\n");
		return 1;
	}
	train_rng rng;
	train_rng_seed(&rng, 1);
	train_rng_fill_uniform(&rng, A, maxa, -1, 1);
	train_rng_fill_uniform(&rng, B, maxb, -1, 1);
	memset(C, 0, maxc * sizeof *C);

	const char *isa = "none";
	double peak = 0;
	/* Other work on the machine skews every figure (OpenMP barriers suffer
	 * most): say how busy it was. */
	FILE *la = fopen("/proc/loadavg", "r");
	double load = -1;
	if (la) {
		if (fscanf(la, "%lf", &load) != 1)
			load = -1;
		fclose(la);
	}
	if (load >= 0)
		printf("load average at start: %.2f (on %d CPUs)\n", load, threads);
	fflush(stdout);

	/* Rounds over the whole table, keeping each cell's best: a burst of
	 * other work on the machine then spoils one round of a cell, not the
	 * figure.  OpenBLAS's idle threads spin for a while after a call and
	 * would slow the next OpenMP run down, so each shape runs it last and
	 * pauses after it. */
	const char *rr = getenv("GEMM_BENCH_ROUNDS");
	int rounds = rr && atoi(rr) > 0 ? atoi(rr) : 4;
	static double res[sizeof shapes / sizeof shapes[0]][NVARIANTS];
	static char impl[sizeof shapes / sizeof shapes[0]][2][48];
	static const variant order[NVARIANTS] = { OURS_FP32, OURS_BF16, ONEDNN_SGEMM, OPENBLAS };
	double t_start = now();
	int round = 0;
	for (; round < rounds; round++) {
		/* A busy machine makes rounds slow: keep the total near a minute. */
		if (round >= 2 && now() - t_start > 60)
			break;
		double p = fp32_peak(threads, &isa);
		if (p > peak)
			peak = p;
		for (size_t i = 0; i < nshapes; i++) {
			const shape *s = &shapes[i];
			if (quick && (double)s->M * s->N * s->K > 1024.0 * 1024 * 1024)
				continue;
			for (int o = 0; o < NVARIANTS; o++) {
				variant v = order[o];
				double g = measure(v, s->M, s->N, s->K, A, B, C);
				if (g > res[i][v])
					res[i][v] = g;
				if (v <= OURS_BF16)
					snprintf(impl[i][v], sizeof impl[i][v], "%s", train_kernels_last_impl());
			}
			struct timespec pause = { 0, 150 * 1000 * 1000 };
			nanosleep(&pause, NULL);
		}
	}
	printf("GEMM throughput, %d thread%s; cpu bf16: %s; fp32 peak (%s FMA loop): %.1f GFLOP/s\n",
	       threads, threads == 1 ? "" : "s", train_cpu_has_bf16() ? "yes" : "no", isa, peak);
	printf("%d rounds in %.0f s; best of each\n", round, now() - t_start);
	printf("%-15s %10s %10s %10s %12s %7s  %s\n", "M x N x K", "ours", "ours-bf16", "openblas",
	       "onednn-sgemm", "%peak", "oneDNN impl (fp32 / bf16)");
	for (size_t i = 0; i < nshapes; i++) {
		const shape *s = &shapes[i];
		if (quick && (double)s->M * s->N * s->K > 1024.0 * 1024 * 1024)
			continue;
		double best32 = res[i][OURS_FP32] > res[i][OPENBLAS] ? res[i][OURS_FP32] : res[i][OPENBLAS];
		if (res[i][ONEDNN_SGEMM] > best32)
			best32 = res[i][ONEDNN_SGEMM];
		printf("%-15s %10.1f %10.1f %10.1f %12.1f %6.0f%%  %s / %s\n", s->name, res[i][OURS_FP32],
		       res[i][OURS_BF16], res[i][OPENBLAS], res[i][ONEDNN_SGEMM],
		       peak > 0 ? 100 * best32 / peak : 0, impl[i][0], impl[i][1]);
	}
	printf("(GFLOP/s; %%peak is the best fp32 figure against the FMA loop)\n");
	for (size_t i = 0; i < nshapes; i++) {
		const shape *s = &shapes[i];
		if (quick && (double)s->M * s->N * s->K > 1024.0 * 1024 * 1024)
			continue;
		double ours = res[i][OURS_FP32], ob = res[i][OPENBLAS];
		printf("bench gemm-fp32-%s: ours %.1f GFLOP/s, openblas %.1f GFLOP/s, ratio %.2f\n",
		       s->name, ours, ob, ob > 0 ? ours / ob : 0);
	}
	for (size_t i = 0; i < nshapes; i++) {
		const shape *s = &shapes[i];
		if (quick && (double)s->M * s->N * s->K > 1024.0 * 1024 * 1024)
			continue;
		variant ref = res[i][ONEDNN_SGEMM] > res[i][OPENBLAS] ? ONEDNN_SGEMM : OPENBLAS;
		double ours = res[i][OURS_BF16], r = res[i][ref];
		printf("bench gemm-bf16-%s: ours %.1f GFLOP/s, %s %.1f GFLOP/s, ratio %.2f\n", s->name,
		       ours, variant_names[ref], r, r > 0 ? ours / r : 0);
	}
	free(A);
	free(B);
	free(C);
	return 0;
}
