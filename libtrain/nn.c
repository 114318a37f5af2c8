/*
 * libtrain/nn.c - the layers of <train/nn.h>: forward/backward pairs over
 * fp32 arrays, in the manner of llm.c's train_gpt2.c.
 *
 * Forward writes its outputs; backward ADDS (+=) into the d-prefixed
 * gradients, and any gradient pointer may be NULL.  Linear and attention
 * products go through train_matmul()/train_matmul_batch() (oneDNN, bf16
 * where enabled); GELU, SiLU and softmax from TRAIN_KERNELS_ELTWISE_MIN
 * elements, and attention's softmax, through oneDNN's eltwise and softmax
 * primitives (<train/kernels.h>); the rest are plain loops, which are also
 * the reference the kernels are tested against.  Numerics follow PyTorch:
 * layer norm with the biased variance, GELU in its exact erf form, softmax
 * with the row maximum subtracted, cross-entropy with PyTorch's label
 * smoothing.
 *
 * Not here: fused kernels, threads in the plain loops (only the oneDNN
 * calls use the threads of <train/kernels.h>), fp16/bf16 storage.
 */
#include <train/kernels.h>
#include <train/nn.h>

#include "kernels_private.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
 * Legend: B batch, T time, C channels, OC output channels, V vocabulary,
 * NH heads, HS = C / NH head size, N rows (usually B*T), K kernel width.
 */

/* ----------------------------------------------------------------------------
 * Loop helpers
 *
 * At -O2, gcc 12 vectorises only with its "very cheap" cost model: a loop
 * whose trip count is a known multiple of the vector width and that needs
 * no run-time alias check.  So elementwise loops run in blocks of LANES
 * over restrict pointers, with a scalar tail, and float reductions (which
 * gcc may not reorder without -ffast-math) keep LANES explicit partial sums.
 * The results are deterministic: they depend on n, not on the CPU.
 */

#define LANES 8

/* Run the statement(s) for i in [0, n): in blocks of LANES, then the tail. */
#define LANES_FOR(i, n, ...)                                                      \
	do {                                                                      \
		size_t i##_blk_ = 0;                                              \
		for (; i##_blk_ + LANES <= (size_t)(n); i##_blk_ += LANES)        \
			for (size_t i = i##_blk_; i < i##_blk_ + LANES; i++) {    \
				__VA_ARGS__;                                      \
			}                                                         \
		for (size_t i = i##_blk_; i < (size_t)(n); i++) {                 \
			__VA_ARGS__;                                              \
		}                                                                 \
	} while (0)

static float lanes_total(const float acc[LANES])
{
	return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* sum_i x[i] */
static float vsum(const float *restrict x, size_t n)
{
	float acc[LANES] = {0};
	size_t i = 0;
	for (; i + LANES <= n; i += LANES)
		for (size_t j = 0; j < LANES; j++)
			acc[j] += x[i + j];
	float s = 0.0f;
	for (; i < n; i++)
		s += x[i];
	return s + lanes_total(acc);
}

/* sum_i x[i] * y[i] */
static float vdot(const float *restrict x, const float *restrict y, size_t n)
{
	float acc[LANES] = {0};
	size_t i = 0;
	for (; i + LANES <= n; i += LANES)
		for (size_t j = 0; j < LANES; j++)
			acc[j] += x[i + j] * y[i + j];
	float s = 0.0f;
	for (; i < n; i++)
		s += x[i] * y[i];
	return s + lanes_total(acc);
}

/* sum_i (x[i] - m)^2 */
static float vsqdev(const float *restrict x, float m, size_t n)
{
	float acc[LANES] = {0};
	size_t i = 0;
	for (; i + LANES <= n; i += LANES)
		for (size_t j = 0; j < LANES; j++) {
			float d = x[i + j] - m;
			acc[j] += d * d;
		}
	float s = 0.0f;
	for (; i < n; i++) {
		float d = x[i] - m;
		s += d * d;
	}
	return s + lanes_total(acc);
}

/* max_i x[i] (n >= 1) */
static float vmax(const float *restrict x, size_t n)
{
	float m = x[0];
	for (size_t i = 1; i < n; i++)
		m = x[i] > m ? x[i] : m;
	return m;
}

/* y[i] += x[i] */
static void vacc(float *restrict y, const float *restrict x, size_t n)
{
	LANES_FOR(i, n, y[i] += x[i]);
}

/* y[i] += a[i] * x[i] */
static void vfma(float *restrict y, const float *restrict a, const float *restrict x, size_t n)
{
	LANES_FOR(i, n, y[i] += a[i] * x[i]);
}

/* p = softmax(x) over n >= 1 entries, with the maximum subtracted so that
 * exp never overflows.  Returns log(sum exp(x - max)) + max = logsumexp(x). */
static float softmax_row(float *restrict p, const float *restrict x, size_t n)
{
	float m = vmax(x, n);
	float sum = 0.0f;
	for (size_t i = 0; i < n; i++) {
		p[i] = expf(x[i] - m);
		sum += p[i];
	}
	float inv = 1.0f / sum;
	LANES_FOR(i, n, p[i] *= inv);
	return m + logf(sum);
}

/* ----------------------------------------------------------------------------
 * Linear: out = inp W^T + b
 */

int train_linear_forward(float *out, const float *inp, const float *w, const float *b, int N,
                         int C, int OC)
{
	if (!out || !inp || !w || N <= 0 || C <= 0 || OC <= 0)
		return TRAIN_EINVAL;
	/* out (N, OC) = inp (N, C) @ w^T (C, OC) + b, the bias added by the
	 * matmul's epilogue */
	return train_matmul_bias(0, 1, N, OC, C, inp, C, w, C, b, out, OC);
}

int train_linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                          const float *w, int N, int C, int OC)
{
	if (!dout || N <= 0 || C <= 0 || OC <= 0 || (dinp && !w) || (dw && !inp))
		return TRAIN_EINVAL;
	int rc = TRAIN_OK;
	/* under bf16, both products read one bf16 copy of dout */
	int pin = dinp && dw ? train_kernels_bf16_pin(dout, (size_t)N * OC) : 0;
	/* dinp (N, C) += dout (N, OC) @ w (OC, C) */
	if (dinp)
		rc = train_matmul(0, 0, N, C, OC, 1.0f, dout, OC, w, C, 1.0f, dinp, C);
	/* dw (OC, C) += dout^T (OC, N) @ inp (N, C) */
	if (dw && rc == TRAIN_OK)
		rc = train_matmul(1, 0, OC, C, N, 1.0f, dout, OC, inp, C, 1.0f, dw, C);
	train_kernels_bf16_unpin(pin);
	if (rc != TRAIN_OK)
		return rc;
	if (db)
		for (int n = 0; n < N; n++)
			vacc(db, dout + (size_t)n * OC, (size_t)OC);
	return TRAIN_OK;
}

/* ----------------------------------------------------------------------------
 * Embedding: out[n] = table[ids[n]]
 */

static int ids_valid(const int32_t *ids, int N, int V)
{
	for (int n = 0; n < N; n++)
		if (ids[n] < 0 || ids[n] >= V)
			return 0;
	return 1;
}

int train_embedding_forward(float *out, const int32_t *ids, const float *table, int N, int C,
                            int V)
{
	if (!out || !ids || !table || N <= 0 || C <= 0 || V <= 0 || !ids_valid(ids, N, V))
		return TRAIN_EINVAL;
	for (int n = 0; n < N; n++)
		memcpy(out + (size_t)n * C, table + (size_t)ids[n] * C, (size_t)C * sizeof *out);
	return TRAIN_OK;
}

int train_embedding_backward(float *dtable, const float *dout, const int32_t *ids, int N, int C,
                             int V)
{
	if (!dout || !ids || N <= 0 || C <= 0 || V <= 0 || !ids_valid(ids, N, V))
		return TRAIN_EINVAL;
	if (!dtable)
		return TRAIN_OK;
	/* rows that share an id add up, as in PyTorch's dense embedding gradient */
	for (int n = 0; n < N; n++)
		vacc(dtable + (size_t)ids[n] * C, dout + (size_t)n * C, (size_t)C);
	return TRAIN_OK;
}

/* ----------------------------------------------------------------------------
 * Layer norm and RMS norm, over the last dimension C
 *
 * RMS norm is layer norm without the centring (mean 0) and without a bias,
 * so the row helpers serve both.  Layer norm from TRAIN_KERNELS_ELTWISE_MIN
 * elements goes to oneDNN's layer normalization (threaded; its two-pass
 * statistics match these loops'); oneDNN has no RMS norm.
 */

/* o = (x - m) * s * w + b  (b may be NULL) */
static void norm_row_forward(float *restrict o, const float *restrict x, const float *restrict w,
                             const float *restrict b, float m, float s, size_t C)
{
	if (b)
		LANES_FOR(i, C, o[i] = (x[i] - m) * s * w[i] + b[i]);
	else
		LANES_FOR(i, C, o[i] = (x[i] - m) * s * w[i]);
}

/* xh = (x - m) * s, the normalised row; dxh = g * w, its gradient */
static void norm_row_grads(float *restrict xh, float *restrict dxh, const float *restrict x,
                           const float *restrict g, const float *restrict w, float m, float s,
                           size_t C)
{
	LANES_FOR(i, C, xh[i] = (x[i] - m) * s; dxh[i] = g[i] * w[i]);
}

/* dx += s * (dxh - mean_d - xh * mean_dx) */
static void norm_row_backward(float *restrict dx, const float *restrict dxh,
                              const float *restrict xh, float mean_d, float mean_dx, float s,
                              size_t C)
{
	LANES_FOR(i, C, dx[i] += (dxh[i] - mean_d - xh[i] * mean_dx) * s);
}

int train_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                            const float *w, const float *b, int N, int C, float eps)
{
	if (!out || !mean || !rstd || !inp || !w || N <= 0 || C <= 0 || !(eps >= 0.0f))
		return TRAIN_EINVAL;
	if ((size_t)N * (size_t)C >= TRAIN_KERNELS_ELTWISE_MIN)
		return train_layernorm_rows_forward(out, mean, rstd, inp, w, b, N, C, eps);
	for (int n = 0; n < N; n++) {
		const float *x = inp + (size_t)n * C;
		/* two passes: the variance of (x - mean) does not cancel the way
		 * E[x^2] - mean^2 does when |mean| >> std */
		float m = vsum(x, (size_t)C) / (float)C;
		float var = vsqdev(x, m, (size_t)C) / (float)C; /* biased, as PyTorch */
		float s = 1.0f / sqrtf(var + eps);
		norm_row_forward(out + (size_t)n * C, x, w, b, m, s, (size_t)C);
		mean[n] = m;
		rstd[n] = s;
	}
	return TRAIN_OK;
}

int train_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                             const float *inp, const float *w, const float *mean,
                             const float *rstd, int N, int C)
{
	if (!dout || !inp || !w || !mean || !rstd || N <= 0 || C <= 0)
		return TRAIN_EINVAL;
	if ((size_t)N * (size_t)C >= TRAIN_KERNELS_ELTWISE_MIN)
		return train_layernorm_rows_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
	float *norm = malloc((size_t)C * 2 * sizeof *norm); /* (C) norm, (C) dnorm */
	if (!norm)
		return TRAIN_ENOMEM;
	float *xh = norm, *dxh = norm + C;
	for (int n = 0; n < N; n++) {
		const float *g = dout + (size_t)n * C;
		float s = rstd[n];
		norm_row_grads(xh, dxh, inp + (size_t)n * C, g, w, mean[n], s, (size_t)C);
		if (db)
			vacc(db, g, (size_t)C);
		if (dw)
			vfma(dw, g, xh, (size_t)C);
		if (dinp) {
			/* dx = s * (dxh - mean(dxh) - xh * mean(dxh * xh)) */
			float mean_d = vsum(dxh, (size_t)C) / (float)C;
			float mean_dx = vdot(dxh, xh, (size_t)C) / (float)C;
			norm_row_backward(dinp + (size_t)n * C, dxh, xh, mean_d, mean_dx, s, (size_t)C);
		}
	}
	free(norm);
	return TRAIN_OK;
}

int train_rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C,
                          float eps)
{
	if (!out || !rstd || !inp || !w || N <= 0 || C <= 0 || !(eps >= 0.0f))
		return TRAIN_EINVAL;
	for (int n = 0; n < N; n++) {
		const float *x = inp + (size_t)n * C;
		float s = 1.0f / sqrtf(vdot(x, x, (size_t)C) / (float)C + eps);
		norm_row_forward(out + (size_t)n * C, x, w, NULL, 0.0f, s, (size_t)C);
		rstd[n] = s;
	}
	return TRAIN_OK;
}

int train_rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp,
                           const float *w, const float *rstd, int N, int C)
{
	if (!dout || !inp || !w || !rstd || N <= 0 || C <= 0)
		return TRAIN_EINVAL;
	float *norm = malloc((size_t)C * 2 * sizeof *norm); /* (C) norm, (C) dnorm */
	if (!norm)
		return TRAIN_ENOMEM;
	float *xh = norm, *dxh = norm + C;
	for (int n = 0; n < N; n++) {
		const float *g = dout + (size_t)n * C;
		float s = rstd[n];
		norm_row_grads(xh, dxh, inp + (size_t)n * C, g, w, 0.0f, s, (size_t)C);
		if (dw)
			vfma(dw, g, xh, (size_t)C);
		if (dinp) {
			/* dx = s * (dxh - xh * mean(dxh * xh)) */
			float mean_dx = vdot(dxh, xh, (size_t)C) / (float)C;
			norm_row_backward(dinp + (size_t)n * C, dxh, xh, 0.0f, mean_dx, s, (size_t)C);
		}
	}
	free(norm);
	return TRAIN_OK;
}

/* ----------------------------------------------------------------------------
 * Elementwise activations and the residual
 *
 * GELU and SiLU call erff/expf, which gcc does not vectorise without
 * -ffast-math (not used: it would also change the reductions above).  So
 * from TRAIN_KERNELS_ELTWISE_MIN elements they go to oneDNN's eltwise
 * primitives (about 10x faster on one thread, and threaded); below that,
 * building a primitive per size would cost more than the loop.
 */

#define GELU_RSQRT2 0.70710678118654752440f   /* 1/sqrt(2) */
#define GELU_RSQRT2PI 0.39894228040143267794f /* 1/sqrt(2 pi) */

/* Scalar forms: the reference for the oneDNN kernels, and what small
 * arrays use (a primitive per size would cost more than it saves). */
static void gelu_fwd(float *out, const float *inp, size_t n)
{
	/* the exact form, x * Phi(x): PyTorch's default (approximate='none') */
	for (size_t i = 0; i < n; i++)
		out[i] = 0.5f * inp[i] * (1.0f + erff(inp[i] * GELU_RSQRT2));
}

static void gelu_bwd(float *dinp, const float *inp, const float *dout, size_t n)
{
	/* d/dx x Phi(x) = Phi(x) + x phi(x) */
	for (size_t i = 0; i < n; i++) {
		float x = inp[i];
		float cdf = 0.5f * (1.0f + erff(x * GELU_RSQRT2));
		float pdf = GELU_RSQRT2PI * expf(-0.5f * x * x);
		dinp[i] += dout[i] * (cdf + x * pdf);
	}
}

int train_gelu_forward(float *out, const float *inp, size_t n)
{
	if (n && (!out || !inp))
		return TRAIN_EINVAL;
	if (n >= TRAIN_KERNELS_ELTWISE_MIN)
		return train_eltwise_forward(TRAIN_ELTWISE_GELU_ERF, out, inp, n);
	gelu_fwd(out, inp, n);
	return TRAIN_OK;
}

int train_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n)
{
	if (n && (!inp || !dout))
		return TRAIN_EINVAL;
	if (!dinp)
		return TRAIN_OK;
	if (n >= TRAIN_KERNELS_ELTWISE_MIN)
		return train_eltwise_backward(TRAIN_ELTWISE_GELU_ERF, dinp, inp, dout, n, 1);
	gelu_bwd(dinp, inp, dout, n);
	return TRAIN_OK;
}

/* 1 / (1 + e^-x): for x << 0, expf overflows to inf and the result is 0, as it should be. */
static float sigmoidf(float x)
{
	return 1.0f / (1.0f + expf(-x));
}

int train_silu_forward(float *out, const float *inp, size_t n)
{
	if (n && (!out || !inp))
		return TRAIN_EINVAL;
	if (n >= TRAIN_KERNELS_ELTWISE_MIN)
		return train_eltwise_forward(TRAIN_ELTWISE_SILU, out, inp, n);
	for (size_t i = 0; i < n; i++)
		out[i] = inp[i] * sigmoidf(inp[i]);
	return TRAIN_OK;
}

int train_silu_backward(float *dinp, const float *inp, const float *dout, size_t n)
{
	if (n && (!inp || !dout))
		return TRAIN_EINVAL;
	if (!dinp)
		return TRAIN_OK;
	if (n >= TRAIN_KERNELS_ELTWISE_MIN)
		return train_eltwise_backward(TRAIN_ELTWISE_SILU, dinp, inp, dout, n, 1);
	/* d/dx x s(x) = s(x) (1 + x (1 - s(x))) */
	for (size_t i = 0; i < n; i++) {
		float s = sigmoidf(inp[i]);
		dinp[i] += dout[i] * s * (1.0f + inp[i] * (1.0f - s));
	}
	return TRAIN_OK;
}

static void relu_fwd(float *restrict out, const float *restrict inp, size_t n)
{
	LANES_FOR(i, n, float x = inp[i]; out[i] = x > 0.0f ? x : 0.0f);
}

int train_relu_forward(float *out, const float *inp, size_t n)
{
	if (n && (!out || !inp))
		return TRAIN_EINVAL;
	relu_fwd(out, inp, n);
	return TRAIN_OK;
}

static void relu_bwd(float *restrict dinp, const float *restrict inp,
                     const float *restrict dout, size_t n)
{
	/* the gradient at 0 is 0, as in PyTorch */
	LANES_FOR(i, n, float g = dout[i]; dinp[i] += inp[i] > 0.0f ? g : 0.0f);
}

int train_relu_backward(float *dinp, const float *inp, const float *dout, size_t n)
{
	if (n && (!inp || !dout))
		return TRAIN_EINVAL;
	if (dinp)
		relu_bwd(dinp, inp, dout, n);
	return TRAIN_OK;
}

static void vadd(float *restrict out, const float *restrict a, const float *restrict b, size_t n)
{
	LANES_FOR(i, n, out[i] = a[i] + b[i]);
}

/* The residual from TRAIN_KERNELS_ELTWISE_MIN elements: oneDNN's add,
 * threaded (the same sums). */
int train_residual_forward(float *out, const float *a, const float *b, size_t n)
{
	if (n && (!out || !a || !b))
		return TRAIN_EINVAL;
	if (n >= TRAIN_KERNELS_ELTWISE_MIN)
		return train_add(out, a, b, n);
	vadd(out, a, b, n);
	return TRAIN_OK;
}

int train_residual_backward(float *da, float *db, const float *dout, size_t n)
{
	if (n && !dout)
		return TRAIN_EINVAL;
	int rc = TRAIN_OK;
	if (n >= TRAIN_KERNELS_ELTWISE_MIN) {
		if (da)
			rc = train_add(da, da, dout, n);
		if (db && rc == TRAIN_OK)
			rc = train_add(db, db, dout, n);
		return rc;
	}
	if (da)
		vacc(da, dout, n);
	if (db)
		vacc(db, dout, n);
	return TRAIN_OK;
}

/* ----------------------------------------------------------------------------
 * Softmax and cross-entropy, over the last dimension C
 */

int train_softmax_forward(float *probs, const float *logits, int N, int C)
{
	if (!probs || !logits || N <= 0 || C <= 0)
		return TRAIN_EINVAL;
	if ((size_t)N * (size_t)C >= TRAIN_KERNELS_ELTWISE_MIN)
		return train_softmax_rows_forward(probs, logits, N, C);
	for (int n = 0; n < N; n++)
		softmax_row(probs + (size_t)n * C, logits + (size_t)n * C, (size_t)C);
	return TRAIN_OK;
}

/* dl += p * (dp - pd) */
static void softmax_row_backward(float *restrict dl, const float *restrict p,
                                 const float *restrict dp, float pd, size_t C)
{
	LANES_FOR(i, C, dl[i] += p[i] * (dp[i] - pd));
}

int train_softmax_backward(float *dlogits, const float *probs, const float *dprobs, int N, int C)
{
	if (!probs || !dprobs || N <= 0 || C <= 0)
		return TRAIN_EINVAL;
	if (!dlogits)
		return TRAIN_OK;
	if ((size_t)N * (size_t)C >= TRAIN_KERNELS_ELTWISE_MIN)
		return train_softmax_rows_backward(dlogits, probs, dprobs, N, C, 1);
	for (int n = 0; n < N; n++) {
		const float *p = probs + (size_t)n * C, *dp = dprobs + (size_t)n * C;
		/* dl = p * (dp - sum(p * dp)) */
		softmax_row_backward(dlogits + (size_t)n * C, p, dp, vdot(p, dp, (size_t)C), (size_t)C);
	}
	return TRAIN_OK;
}

/*
 * PyTorch's label smoothing: the target distribution is
 * q = (1 - ls) onehot(t) + ls / C, so
 *   loss = -sum_c q_c log p_c = (1 - ls) nll + ls * mean_c(-log p_c)
 * with -log p_c = lse - x_c (lse = logsumexp of the row).
 */
int train_cross_entropy_forward(float *mean_loss, float *losses, float *probs,
                                const float *logits, const int32_t *targets, int N, int C,
                                float ls)
{
	if (!probs || !logits || !targets || N <= 0 || C <= 0 || !(ls >= 0.0f && ls <= 1.0f))
		return TRAIN_EINVAL;
	for (int n = 0; n < N; n++)
		if (targets[n] >= C)
			return TRAIN_EINVAL;
	double total = 0.0;
	int count = 0;
	for (int n = 0; n < N; n++) {
		const float *x = logits + (size_t)n * C;
		float lse = softmax_row(probs + (size_t)n * C, x, (size_t)C);
		float loss = 0.0f;
		if (targets[n] >= 0) {
			float nll = lse - x[targets[n]];
			float smooth = ls > 0.0f ? lse - vsum(x, (size_t)C) / (float)C : 0.0f;
			loss = (1.0f - ls) * nll + ls * smooth;
			total += loss;
			count++;
		}
		if (losses)
			losses[n] = loss;
	}
	if (mean_loss)
		*mean_loss = count ? (float)(total / count) : 0.0f;
	return TRAIN_OK;
}

/* dl += (p - q) * k */
static void ce_row_backward(float *restrict dl, const float *restrict p, float q, float k,
                            size_t C)
{
	LANES_FOR(i, C, dl[i] += (p[i] - q) * k);
}

int train_cross_entropy_backward(float *dlogits, const float *probs, const int32_t *targets,
                                 int N, int C, float ls, float scale)
{
	if (!probs || !targets || N <= 0 || C <= 0 || !(ls >= 0.0f && ls <= 1.0f))
		return TRAIN_EINVAL;
	int count = 0;
	for (int n = 0; n < N; n++) {
		if (targets[n] >= C)
			return TRAIN_EINVAL;
		count += targets[n] >= 0;
	}
	if (!dlogits || count == 0)
		return TRAIN_OK;
	float k = scale / (float)count; /* d(mean loss)/d(row loss), times scale */
	float q_off = ls / (float)C;    /* smoothed target probability off the label */
	for (int n = 0; n < N; n++) {
		if (targets[n] < 0)
			continue;
		float *dl = dlogits + (size_t)n * C;
		ce_row_backward(dl, probs + (size_t)n * C, q_off, k, (size_t)C);
		dl[targets[n]] -= (1.0f - ls) * k;
	}
	return TRAIN_OK;
}

/* ----------------------------------------------------------------------------
 * Dropout (inverted)
 */

int train_dropout_forward(float *out, uint8_t *mask, const float *inp, size_t n, float p,
                          train_rng *rng)
{
	if (!(p >= 0.0f && p <= 1.0f))
		return TRAIN_EINVAL;
	if (n == 0)
		return TRAIN_OK; /* and no memcpy of NULL pointers */
	if (!out || !inp || (p > 0.0f && (!mask || !rng)))
		return TRAIN_EINVAL;
	if (p == 0.0f) {
		memcpy(out, inp, n * sizeof *out);
		if (mask)
			memset(mask, 1, n);
		return TRAIN_OK;
	}
	/* p = 1 drops everything (PyTorch gives zeros too), without dividing by
	 * 0: the threshold 2^24 is above every 24-bit draw */
	float keep_scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
	uint32_t thr = (uint32_t)ceil((double)p * 16777216.0);
	return train_kernels_dropout(out, mask, inp, n, thr, keep_scale, train_rng_u64(rng));
}

static void dropout_bwd(float *restrict dinp, const float *restrict dout,
                        const uint8_t *restrict mask, float keep_scale, size_t n)
{
	LANES_FOR(i, n, dinp[i] += dout[i] * (float)mask[i] * keep_scale);
}

int train_dropout_backward(float *dinp, const float *dout, const uint8_t *mask, size_t n, float p)
{
	if (!(p >= 0.0f && p <= 1.0f) || (n && (!dout || (p > 0.0f && !mask))))
		return TRAIN_EINVAL;
	if (!dinp)
		return TRAIN_OK;
	if (p == 0.0f) {
		vacc(dinp, dout, n);
		return TRAIN_OK;
	}
	dropout_bwd(dinp, dout, mask, p < 1.0f ? 1.0f / (1.0f - p) : 0.0f, n);
	return TRAIN_OK;
}

/* ----------------------------------------------------------------------------
 * Multi-head self-attention
 *
 * Per sequence b and head h, with Q, K, V the (T, HS) slices of qkv (row
 * stride 3C) and s = 1/sqrt(HS):
 *   att = masked_softmax(s Q K^T)  (T, T)      out_h = att V  (T, HS)
 * Each product is one train_matmul_batch over every (b, h) of a chunk of
 * sequences, on the strided slices (no copies), and the softmax one oneDNN
 * softmax over all the chunk's rows: a handful of threaded primitive
 * executions per pass instead of a few per head.  Masked scores are set to
 * -inf before the softmax, whose exp makes them exactly 0; a row with no
 * visible key (all -inf, which the softmax turns into NaN) is then zeroed.
 * A masked entry of att being exactly 0 is all that backward needs to know
 * about the masks.  The chunks keep backward's scratch (the (T, T) score
 * gradients of every head of the chunk) at ATT_CHUNK floats or one
 * sequence's worth.
 */

#define ATT_CHUNK ((size_t)1 << 22)

static int attention_sizes_ok(int B, int T, int C, int NH)
{
	return B > 0 && T > 0 && C > 0 && NH > 0 && C % NH == 0 && C <= INT_MAX / 3 &&
	       (int64_t)NH * T <= INT_MAX;
}

/* Sequences per chunk: as many as fit in ATT_CHUNK floats of (T, T)
 * matrices, at least 1. */
static int attention_chunk(int B, int T, int NH)
{
	size_t per = (size_t)NH * T * T, n = ATT_CHUNK / per;
	return n < 1 ? 1 : n > (size_t)B ? B : (int)n;
}

/* The first key that sequence b lets a query see (T if none). */
static int first_visible(const uint8_t *km, int T)
{
	int s = 0;
	while (km && s < T && !km[s])
		s++;
	return s;
}

/* Scores of padded keys, and of future keys when causal, to -inf: the
 * (NH, T, T) scores of one sequence. */
static void mask_scores(float *att_b, const uint8_t *km, int NH, int T, int causal)
{
	for (int h = 0; h < NH; h++)
		for (int t = 0; t < T; t++) {
			float *row = att_b + ((size_t)h * T + t) * T;
			int end = causal ? t + 1 : T; /* keys past `end` are never visible */
			for (int s = 0; s < end && km; s++)
				if (!km[s])
					row[s] = -INFINITY;
			for (int s = end; s < T; s++)
				row[s] = -INFINITY;
		}
}

int train_attention_forward(float *out, float *att, const float *qkv, const uint8_t *key_mask,
                            int B, int T, int C, int NH, int causal)
{
	if (!out || !att || !qkv || !attention_sizes_ok(B, T, C, NH))
		return TRAIN_EINVAL;
	const int HS = C / NH, C3 = 3 * C, chunk = attention_chunk(B, T, NH);
	const float scale = 1.0f / sqrtf((float)HS);
	/* batch strides (elements) of qkv's slices, att and out over (b, h) */
	const int64_t s_qkv[2] = { (int64_t)T * C3, HS };
	const int64_t s_att[2] = { (int64_t)NH * T * T, (int64_t)T * T };
	const int64_t s_out[2] = { (int64_t)T * C, HS };
	for (int b0 = 0; b0 < B; b0 += chunk) {
		int nb = B - b0 < chunk ? B - b0 : chunk;
		const float *q = qkv + (size_t)b0 * T * C3, *k = q + C, *v = q + 2 * C;
		float *att_c = att + (size_t)b0 * NH * T * T;
		/* under bf16, q, k and v are read from one conversion of the chunk */
		int pin = train_kernels_bf16_pin(q, (size_t)nb * T * C3);
		/* att (T, T) = scale * q (T, HS) @ k^T (HS, T), for every (b, h) */
		int rc = train_matmul_batch(0, 1, nb, NH, T, T, HS, scale, q, C3, s_qkv, k, C3, s_qkv,
		                            0.0f, att_c, T, s_att);
		if (rc != TRAIN_OK) {
			train_kernels_bf16_unpin(pin);
			return rc;
		}
		if (causal || key_mask)
			for (int b = b0; b < b0 + nb; b++)
				mask_scores(att + (size_t)b * NH * T * T,
				            key_mask ? key_mask + (size_t)b * T : NULL, NH, T, causal);
		rc = train_softmax_rows_forward(att_c, att_c, nb * NH * T, T);
		if (rc != TRAIN_OK) {
			train_kernels_bf16_unpin(pin);
			return rc;
		}
		/* rows that see nothing: zero (and so a zero output, no gradient) */
		for (int b = b0; b < b0 + nb && key_mask; b++) {
			int first = first_visible(key_mask + (size_t)b * T, T);
			int empty = causal ? first : first == T ? T : 0; /* queries t < empty */
			for (int h = 0; h < NH; h++)
				memset(att + (((size_t)b * NH + h) * T) * T, 0,
				       (size_t)empty * T * sizeof *att);
		}
		/* out (T, HS) = att (T, T) @ v (T, HS), for every (b, h) */
		rc = train_matmul_batch(0, 0, nb, NH, T, HS, T, 1.0f, att_c, T, s_att, v, C3, s_qkv,
		                        0.0f, out + (size_t)b0 * T * C, C, s_out);
		train_kernels_bf16_unpin(pin);
		if (rc != TRAIN_OK)
			return rc;
	}
	return TRAIN_OK;
}

int train_attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att,
                             int B, int T, int C, int NH)
{
	if (!dout || !qkv || !att || !attention_sizes_ok(B, T, C, NH))
		return TRAIN_EINVAL;
	if (!dqkv)
		return TRAIN_OK;
	const int HS = C / NH, C3 = 3 * C, chunk = attention_chunk(B, T, NH);
	const float scale = 1.0f / sqrtf((float)HS);
	const int64_t s_qkv[2] = { (int64_t)T * C3, HS };
	const int64_t s_att[2] = { (int64_t)NH * T * T, (int64_t)T * T };
	const int64_t s_out[2] = { (int64_t)T * C, HS };
	/* (chunk, NH, T, T): the gradient of att, then of the scores */
	float *datt = malloc((size_t)chunk * NH * T * T * sizeof *datt);
	if (!datt)
		return TRAIN_ENOMEM;
	int rc = TRAIN_OK;
	for (int b0 = 0; b0 < B && rc == TRAIN_OK; b0 += chunk) {
		int nb = B - b0 < chunk ? B - b0 : chunk;
		const float *q = qkv + (size_t)b0 * T * C3, *k = q + C, *v = q + 2 * C;
		float *dq = dqkv + (size_t)b0 * T * C3, *dk = dq + C, *dv = dq + 2 * C;
		const float *att_c = att + (size_t)b0 * NH * T * T;
		const float *dout_c = dout + (size_t)b0 * T * C;
		/* under bf16, each of q/k/v, dout and dscores feeds two products or
		 * shares a tensor: one conversion each (0: none, nothing to undo) */
		int pins[3] = { train_kernels_bf16_pin(q, (size_t)nb * T * C3),
			        train_kernels_bf16_pin(dout_c, (size_t)nb * T * C), 0 };
		/* datt (T, T) = dout (T, HS) @ v^T (HS, T) */
		rc = train_matmul_batch(0, 1, nb, NH, T, T, HS, 1.0f, dout_c, C, s_out, v, C3, s_qkv,
		                        0.0f, datt, T, s_att);
		/* dv (T, HS) += att^T (T, T) @ dout (T, HS) */
		if (rc == TRAIN_OK)
			rc = train_matmul_batch(1, 0, nb, NH, T, HS, T, 1.0f, att_c, T, s_att, dout_c, C,
			                        s_out, 1.0f, dv, C3, s_qkv);
		/* softmax backward in place: dscores = att * (datt - sum(att * datt)).
		 * Masked entries have att = 0, so their scores get no gradient. */
		if (rc == TRAIN_OK)
			rc = train_softmax_rows_backward(datt, att_c, datt, nb * NH * T, T, 0);
		if (rc == TRAIN_OK)
			pins[2] = train_kernels_bf16_pin(datt, (size_t)nb * NH * T * T);
		/* dq (T, HS) += scale * dscores (T, T) @ k (T, HS) */
		if (rc == TRAIN_OK)
			rc = train_matmul_batch(0, 0, nb, NH, T, HS, T, scale, datt, T, s_att, k, C3, s_qkv,
			                        1.0f, dq, C3, s_qkv);
		/* dk (T, HS) += scale * dscores^T (T, T) @ q (T, HS) */
		if (rc == TRAIN_OK)
			rc = train_matmul_batch(1, 0, nb, NH, T, HS, T, scale, datt, T, s_att, q, C3, s_qkv,
			                        1.0f, dk, C3, s_qkv);
		for (int i = 0; i < 3; i++)
			train_kernels_bf16_unpin(pins[i]);
	}
	free(datt);
	return rc;
}

/* ----------------------------------------------------------------------------
 * Depthwise causal 1-D convolution
 *
 * The weight is used transposed, wt (K, C), so that the inner loop runs
 * over contiguous channels for every tap.
 */

static int conv1d_sizes_ok(int B, int T, int C, int K)
{
	return B > 0 && T > 0 && C > 0 && K > 0;
}

int train_conv1d_causal_forward(float *out, const float *inp, const float *w, const float *bias,
                                int B, int T, int C, int K)
{
	if (!out || !inp || !w || !conv1d_sizes_ok(B, T, C, K))
		return TRAIN_EINVAL;
	float *wt = malloc((size_t)K * C * sizeof *wt); /* (K, C) */
	if (!wt)
		return TRAIN_ENOMEM;
	for (int c = 0; c < C; c++)
		for (int k = 0; k < K; k++)
			wt[(size_t)k * C + c] = w[(size_t)c * K + k];
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++) {
			float *o = out + ((size_t)b * T + t) * C;
			if (bias)
				memcpy(o, bias, (size_t)C * sizeof *o);
			else
				memset(o, 0, (size_t)C * sizeof *o);
			/* tap k reads time t - (K-1) + k; earlier than 0 is zero padding */
			for (int k = K - 1 - t > 0 ? K - 1 - t : 0; k < K; k++) {
				const float *x = inp + ((size_t)b * T + t - (K - 1) + k) * C;
				vfma(o, wt + (size_t)k * C, x, (size_t)C);
			}
		}
	free(wt);
	return TRAIN_OK;
}

int train_conv1d_causal_backward(float *dinp, float *dw, float *dbias, const float *dout,
                                 const float *inp, const float *w, int B, int T, int C, int K)
{
	if (!dout || !conv1d_sizes_ok(B, T, C, K) || (dinp && !w) || (dw && !inp))
		return TRAIN_EINVAL;
	float *wt = malloc((size_t)K * C * 2 * sizeof *wt); /* (K, C) w^T, (K, C) dw^T */
	if (!wt)
		return TRAIN_ENOMEM;
	float *dwt = wt + (size_t)K * C;
	memset(dwt, 0, (size_t)K * C * sizeof *dwt);
	if (dinp)
		for (int c = 0; c < C; c++)
			for (int k = 0; k < K; k++)
				wt[(size_t)k * C + c] = w[(size_t)c * K + k];
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++) {
			const float *g = dout + ((size_t)b * T + t) * C;
			if (dbias)
				vacc(dbias, g, (size_t)C);
			for (int k = K - 1 - t > 0 ? K - 1 - t : 0; k < K; k++) {
				size_t src = ((size_t)b * T + t - (K - 1) + k) * C;
				if (dinp)
					vfma(dinp + src, wt + (size_t)k * C, g, (size_t)C);
				if (dw)
					vfma(dwt + (size_t)k * C, g, inp + src, (size_t)C);
			}
		}
	if (dw)
		for (int c = 0; c < C; c++)
			for (int k = 0; k < K; k++)
				dw[(size_t)c * K + k] += dwt[(size_t)k * C + c];
	free(wt);
	return TRAIN_OK;
}
