/*
 * plugins/mamba/scan.c - Mamba's selective scan on the CPU, forward and
 * backward, fused over the sequence.
 *
 * Work is split by blocks of MAMBA_W channels (and batch rows inside a
 * block): a block's MAMBA_NS x MAMBA_W state lives in local arrays that
 * the compiler keeps in vector registers, and each time step reads its
 * x, delta, B and C once.  Forward stores only the state at the start of
 * every chunk of MAMBA_L steps (hs); backward walks the chunks from the
 * last, recomputes a chunk's states and exp(delta A) from its start into
 * a small buffer (cache-resident: 2 * MAMBA_L * NS * W floats) and runs the
 * adjoint recurrence through it.  So memory is O(T / MAMBA_L) states per
 * channel instead of O(T), at the price of one more forward pass.
 *
 * The gradients of B and C sum over channels: each block writes its own
 * partial sums to scratch, and a second pass adds the blocks in order, so
 * the result does not depend on how many threads ran.
 *
 * The inner loops run over MAMBA_W lanes with plain arithmetic
 * (mamba_fexp instead of expf, which would stop vectorization); the
 * functions are built for AVX-512, AVX2 and the baseline (target_clones),
 * with the same operations in the same order on each.
 */
#include "mamba.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define SCAN_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SCAN_CLONES
#endif

#define NS MAMBA_NS
#define W MAMBA_W
#define L MAMBA_L

#define fexp mamba_fexp

/* ------------------------------------------------------------------------ */
/* threads */

typedef struct par_job {
	void (*fn)(void *, int);
	void *arg;
	int n, stride, first;
} par_job;

static void *par_run(void *p)
{
	par_job *j = p;
	for (int i = j->first; i < j->n; i += j->stride)
		j->fn(j->arg, i);
	return NULL;
}

int mamba_parallel(int threads, int n, void (*fn)(void *arg, int i), void *arg)
{
	if (threads > n)
		threads = n;
	if (threads <= 1) {
		for (int i = 0; i < n; i++)
			fn(arg, i);
		return TRAIN_OK;
	}
	if (threads > 64)
		threads = 64;
	pthread_t tid[64];
	par_job jobs[64];
	int started = 0;
	for (int t = 1; t < threads; t++) {
		jobs[t] = (par_job){ fn, arg, n, threads, t };
		if (pthread_create(&tid[t], NULL, par_run, &jobs[t]) != 0)
			break;
		started = t;
	}
	/* the tasks of threads that did not start run here */
	jobs[0] = (par_job){ fn, arg, n, threads, 0 };
	par_run(&jobs[0]);
	for (int t = started + 1; t < threads; t++) {
		jobs[t] = (par_job){ fn, arg, n, threads, t };
		par_run(&jobs[t]);
	}
	for (int t = 1; t <= started; t++)
		pthread_join(tid[t], NULL);
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------ */
/* forward */

size_t mamba_scan_hs_floats(int B, int T, int Di)
{
	size_t nch = ((size_t)T + L - 1) / L;
	return (size_t)B * nch * Di * NS;
}

typedef struct fwd_args {
	const mamba_scan *s;
	float *y, *hs;
} fwd_args;

SCAN_CLONES
static void scan_fwd_block(const mamba_scan *sc, float *y, float *hs, int b, int d0)
{
	const int T = sc->T, Di = sc->Di, ldbc = sc->ldbc, nch = (T + L - 1) / L;
	float s[NS][W], An[NS][W], Dv[W];
	memset(s, 0, sizeof s);
	for (int n = 0; n < NS; n++)
		for (int l = 0; l < W; l++)
			An[n][l] = sc->A[(size_t)(d0 + l) * NS + n];
	for (int l = 0; l < W; l++)
		Dv[l] = sc->Dp[d0 + l];
	for (int t = 0; t < T; t++) {
		if (hs && t % L == 0) {
			float *h = hs + (((size_t)b * nch + t / L) * Di + d0) * NS;
			for (int l = 0; l < W; l++)
				for (int n = 0; n < NS; n++)
					h[(size_t)l * NS + n] = s[n][l];
		}
		size_t row = (size_t)b * T + t;
		const float *xt = sc->x + row * Di + d0, *dt = sc->delta + row * Di + d0;
		const float *bt = sc->Bm + row * ldbc, *ct = sc->Cm + row * ldbc;
		float xv[W], dv[W], dxv[W], yv[W];
		for (int l = 0; l < W; l++) {
			xv[l] = xt[l];
			dv[l] = dt[l];
			dxv[l] = dv[l] * xv[l];
			yv[l] = 0.0f;
		}
		for (int n = 0; n < NS; n++) {
			float bn = bt[n], cn = ct[n];
			for (int l = 0; l < W; l++) {
				float e = fexp(dv[l] * An[n][l]);
				s[n][l] = e * s[n][l] + dxv[l] * bn;
				yv[l] += s[n][l] * cn;
			}
		}
		float *yt = y + row * Di + d0;
		for (int l = 0; l < W; l++)
			yt[l] = yv[l] + Dv[l] * xv[l];
	}
}

static void fwd_task(void *p, int blk)
{
	fwd_args *a = p;
	for (int b = 0; b < a->s->B; b++)
		scan_fwd_block(a->s, a->y, a->hs, b, blk * W);
}

static int scan_ok(const mamba_scan *s)
{
	return s && s->B > 0 && s->T > 0 && s->Di > 0 && s->Di % W == 0 && s->ldbc >= NS && s->x &&
	       s->delta && s->A && s->Bm && s->Cm && s->Dp;
}

int mamba_scan_forward(const mamba_scan *s, float *y, float *hs)
{
	if (!scan_ok(s) || !y)
		return TRAIN_EINVAL;
	fwd_args a = { s, y, hs };
	return mamba_parallel(s->threads, s->Di / W, fwd_task, &a);
}

/* ------------------------------------------------------------------------ */
/* backward */

typedef struct bwd_args {
	const mamba_scan *s;
	const float *dy, *hs;
	float *dx, *ddelta, *dA, *dDp;
	float *part; /* (nblk, B*T, 2NS) */
} bwd_args;

SCAN_CLONES
static void scan_bwd_block(const bwd_args *a, int b, int blk)
{
	const mamba_scan *sc = a->s;
	const int T = sc->T, Di = sc->Di, ldbc = sc->ldbc, nch = (T + L - 1) / L, d0 = blk * W;
	float An[NS][W], Dv[W], carry[NS][W], dAacc[NS][W], dDacc[W];
	float cs[L + 1][NS][W], ce[L][NS][W];
	float *part = a->part + (size_t)blk * sc->B * T * 2 * NS;
	for (int n = 0; n < NS; n++)
		for (int l = 0; l < W; l++) {
			An[n][l] = sc->A[(size_t)(d0 + l) * NS + n];
			carry[n][l] = 0.0f;
			dAacc[n][l] = 0.0f;
		}
	for (int l = 0; l < W; l++) {
		Dv[l] = sc->Dp[d0 + l];
		dDacc[l] = 0.0f;
	}
	for (int c = nch - 1; c >= 0; c--) {
		int t0 = c * L, len = T - t0 < L ? T - t0 : L;
		const float *h = a->hs + (((size_t)b * nch + c) * Di + d0) * NS;
		for (int l = 0; l < W; l++)
			for (int n = 0; n < NS; n++)
				cs[0][n][l] = h[(size_t)l * NS + n];
		/* recompute the chunk's states */
		for (int i = 0; i < len; i++) {
			size_t row = (size_t)b * T + t0 + i;
			const float *xt = sc->x + row * Di + d0, *dt = sc->delta + row * Di + d0;
			const float *bt = sc->Bm + row * ldbc;
			float dv[W], dxv[W];
			for (int l = 0; l < W; l++) {
				dv[l] = dt[l];
				dxv[l] = dt[l] * xt[l];
			}
			for (int n = 0; n < NS; n++) {
				float bn = bt[n];
				for (int l = 0; l < W; l++) {
					float e = fexp(dv[l] * An[n][l]);
					ce[i][n][l] = e;
					cs[i + 1][n][l] = e * cs[i][n][l] + dxv[l] * bn;
				}
			}
		}
		/* and go back through it */
		for (int i = len - 1; i >= 0; i--) {
			size_t row = (size_t)b * T + t0 + i;
			const float *xt = sc->x + row * Di + d0, *dt = sc->delta + row * Di + d0;
			const float *bt = sc->Bm + row * ldbc, *ct = sc->Cm + row * ldbc;
			const float *dyt = a->dy + row * Di + d0;
			float xv[W], dv[W], dyv[W], ddv[W], dxv[W];
			for (int l = 0; l < W; l++) {
				xv[l] = xt[l];
				dv[l] = dt[l];
				dyv[l] = dyt[l];
				ddv[l] = 0.0f;
				dxv[l] = Dv[l] * dyv[l];
				dDacc[l] += dyv[l] * xv[l];
			}
			float *pb = part + row * 2 * NS, *pc = pb + NS;
			for (int n = 0; n < NS; n++) {
				float bn = bt[n], cn = ct[n];
				float tb[W], tc[W];
				for (int l = 0; l < W; l++) {
					float G = carry[n][l] + dyv[l] * cn; /* dL/ds_t */
					float e = ce[i][n][l], sp = cs[i][n][l];
					float de = G * sp;                   /* dL/d exp(delta A) */
					tc[l] = dyv[l] * cs[i + 1][n][l];
					ddv[l] += de * e * An[n][l] + G * xv[l] * bn;
					dAacc[n][l] += de * e * dv[l];
					tb[l] = G * dv[l] * xv[l];
					dxv[l] += G * dv[l] * bn;
					carry[n][l] = G * e;
				}
				/* the sums over the block's channels, as a tree (vectorizes) */
				for (int hw = W / 2; hw >= 1; hw /= 2)
					for (int l = 0; l < hw; l++) {
						tb[l] += tb[l + hw];
						tc[l] += tc[l + hw];
					}
				pb[n] = tb[0];
				pc[n] = tc[0];
			}
			float *dxt = a->dx + row * Di + d0, *ddt = a->ddelta + row * Di + d0;
			for (int l = 0; l < W; l++) {
				dxt[l] += dxv[l];
				ddt[l] += ddv[l];
			}
		}
	}
	for (int n = 0; n < NS; n++)
		for (int l = 0; l < W; l++)
			a->dA[(size_t)(d0 + l) * NS + n] += dAacc[n][l];
	for (int l = 0; l < W; l++)
		a->dDp[d0 + l] += dDacc[l];
}

static void bwd_task(void *p, int blk)
{
	bwd_args *a = p;
	for (int b = 0; b < a->s->B; b++)
		scan_bwd_block(a, b, blk);
}

typedef struct red_args {
	const mamba_scan *s;
	const float *part;
	float *dBm, *dCm;
	int rows_per;
} red_args;

static void red_task(void *p, int k)
{
	red_args *a = p;
	const mamba_scan *s = a->s;
	size_t rows = (size_t)s->B * s->T, nblk = (size_t)s->Di / W;
	size_t r0 = (size_t)k * a->rows_per, r1 = r0 + a->rows_per < rows ? r0 + a->rows_per : rows;
	for (size_t r = r0; r < r1; r++) {
		float *db = a->dBm + r * s->ldbc, *dc = a->dCm + r * s->ldbc;
		for (size_t blk = 0; blk < nblk; blk++) {
			const float *pb = a->part + (blk * rows + r) * 2 * NS;
			for (int n = 0; n < NS; n++) {
				db[n] += pb[n];
				dc[n] += pb[NS + n];
			}
		}
	}
}

int mamba_scan_backward(const mamba_scan *s, const float *dy, const float *hs, float *dx,
                        float *ddelta, float *dA, float *dDp, float *dBm, float *dCm)
{
	if (!scan_ok(s) || !dy || !hs || !dx || !ddelta || !dA || !dDp || !dBm || !dCm)
		return TRAIN_EINVAL;
	size_t rows = (size_t)s->B * s->T, nblk = (size_t)s->Di / W;
	float *part = malloc(nblk * rows * 2 * NS * sizeof *part);
	if (!part)
		return TRAIN_ENOMEM;
	bwd_args a = { s, dy, hs, dx, ddelta, dA, dDp, part };
	int rc = mamba_parallel(s->threads, (int)nblk, bwd_task, &a);
	if (!rc) {
		int nt = s->threads > 1 ? s->threads : 1;
		red_args r = { s, part, dBm, dCm, (int)((rows + nt - 1) / nt) };
		rc = mamba_parallel(nt, nt, red_task, &r);
	}
	free(part);
	return rc;
}
