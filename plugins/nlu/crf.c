/*
 * plugins/nlu/crf.c - a linear-chain conditional random field over one
 * sequence: its negative log-likelihood and gradient, Viterbi decoding and
 * per-token marginals (issue 6, DIETClassifier's entity tagger).
 *
 * The model is the one of tensorflow-addons' crf_log_likelihood and
 * crf_decode, which Rasa's DIET uses: no start or end transitions, so a
 * path y of T tags scores
 *
 *     s(y) = sum_t U[t][y_t] + sum_{t>0} A[y_{t-1}][y_t]
 *
 * and p(y) = exp(s(y)) / Z with Z the sum over all K^T paths.  The loss of
 * a tagged sequence is -log p(tags) = log Z - s(tags).
 *
 * Legend: T tokens, K tags.  U (T, K) unary potentials (the logits of a
 * linear layer), A (K, K) transitions, A[i][j] from tag i to tag j.
 *
 * The forward (alpha) and backward (beta) recursions run in double with
 * the maximum taken out of each log-sum-exp, so no potential overflows;
 * T and K are small (tokens of one message, 4 tags per entity type + 1).
 * Gradients, as everywhere in libtrain, are added (+=) into dU and dA:
 *
 *     dU[t][j] += scale * (p(y_t = j) - [tags_t = j])
 *     dA[i][j] += scale * (sum_t p(y_{t-1} = i, y_t = j) - #{t: tags_{t-1..t} = i, j})
 *
 * A sequence of length 0 has loss 0, no gradient and an empty path, as
 * tensorflow-addons gives for sequence_lengths 0.
 */
#include "nlu.h"

#include <math.h>
#include <stdlib.h>

/* log(sum_i exp(x[i * stride])) over n >= 1 values. */
static double lse(const double *x, int n, int stride)
{
	double m = x[0];
	for (int i = 1; i < n; i++)
		if (x[(size_t)i * stride] > m)
			m = x[(size_t)i * stride];
	if (m == -INFINITY)
		return m;
	double s = 0;
	for (int i = 0; i < n; i++)
		s += exp(x[(size_t)i * stride] - m);
	return m + log(s);
}

/* alpha[t][j] = log sum over paths y_0..y_t with y_t = j of exp(score). */
static void crf_alpha(double *alpha, const float *U, const float *A, int T, int K, double *tmp)
{
	for (int j = 0; j < K; j++)
		alpha[j] = U[j];
	for (int t = 1; t < T; t++) {
		const double *prev = alpha + (size_t)(t - 1) * K;
		double *cur = alpha + (size_t)t * K;
		for (int j = 0; j < K; j++) {
			for (int i = 0; i < K; i++)
				tmp[i] = prev[i] + A[(size_t)i * K + j];
			cur[j] = U[(size_t)t * K + j] + lse(tmp, K, 1);
		}
	}
}

/* beta[t][i] = log sum over paths y_{t+1}..y_{T-1} given y_t = i of
 * exp(score of the part after t). */
static void crf_beta(double *beta, const float *U, const float *A, int T, int K, double *tmp)
{
	double *last = beta + (size_t)(T - 1) * K;
	for (int i = 0; i < K; i++)
		last[i] = 0;
	for (int t = T - 2; t >= 0; t--) {
		const double *next = beta + (size_t)(t + 1) * K;
		double *cur = beta + (size_t)t * K;
		for (int i = 0; i < K; i++) {
			for (int j = 0; j < K; j++)
				tmp[j] = A[(size_t)i * K + j] + U[(size_t)(t + 1) * K + j] + next[j];
			cur[i] = lse(tmp, K, 1);
		}
	}
}

double nlu_crf_score(const float *U, const float *A, const int32_t *tags, int T, int K)
{
	double s = 0;
	for (int t = 0; t < T; t++) {
		s += U[(size_t)t * K + tags[t]];
		if (t > 0)
			s += A[(size_t)tags[t - 1] * K + tags[t]];
	}
	return s;
}

int nlu_crf_nll_forward(double *nll, double *alpha, const float *U, const float *A,
                        const int32_t *tags, int T, int K)
{
	if (!nll || T < 0 || K <= 0 || (T > 0 && (!alpha || !U || !A || !tags)))
		return TRAIN_EINVAL;
	for (int t = 0; t < T; t++)
		if (tags[t] < 0 || tags[t] >= K)
			return TRAIN_EINVAL;
	*nll = 0;
	if (T == 0)
		return TRAIN_OK;
	double *tmp = malloc((size_t)K * sizeof *tmp);
	if (!tmp)
		return TRAIN_ENOMEM;
	crf_alpha(alpha, U, A, T, K, tmp);
	double logz = lse(alpha + (size_t)(T - 1) * K, K, 1);
	*nll = logz - nlu_crf_score(U, A, tags, T, K);
	free(tmp);
	return TRAIN_OK;
}

int nlu_crf_nll_backward(float *dU, float *dA, const float *U, const float *A, const int32_t *tags,
                         const double *alpha, int T, int K, float scale)
{
	if (T < 0 || K <= 0 || (T > 0 && (!U || !A || !tags || !alpha)))
		return TRAIN_EINVAL;
	if (T == 0)
		return TRAIN_OK;
	double *beta = malloc(((size_t)T * K + K) * sizeof *beta);
	if (!beta)
		return TRAIN_ENOMEM;
	double *tmp = beta + (size_t)T * K;
	crf_beta(beta, U, A, T, K, tmp);
	double logz = lse(alpha + (size_t)(T - 1) * K, K, 1);
	for (int t = 0; t < T; t++) {
		const double *a = alpha + (size_t)t * K, *b = beta + (size_t)t * K;
		if (dU)
			for (int j = 0; j < K; j++) {
				double p = exp(a[j] + b[j] - logz);
				dU[(size_t)t * K + j] += (float)(scale * (p - (tags[t] == j)));
			}
		if (dA && t > 0) {
			const double *ap = alpha + (size_t)(t - 1) * K;
			for (int i = 0; i < K; i++)
				for (int j = 0; j < K; j++) {
					double p = exp(ap[i] + A[(size_t)i * K + j] + U[(size_t)t * K + j] +
					               b[j] - logz);
					double hit = tags[t - 1] == i && tags[t] == j;
					dA[(size_t)i * K + j] += (float)(scale * (p - hit));
				}
		}
	}
	free(beta);
	return TRAIN_OK;
}

int nlu_crf_viterbi(int32_t *path, double *best, const float *U, const float *A, int T, int K)
{
	if (T < 0 || K <= 0 || (T > 0 && (!path || !U || !A)))
		return TRAIN_EINVAL;
	if (best)
		*best = 0;
	if (T == 0)
		return TRAIN_OK;
	double *delta = malloc((size_t)T * K * sizeof *delta);
	int32_t *bp = malloc((size_t)T * K * sizeof *bp);
	if (!delta || !bp) {
		free(delta);
		free(bp);
		return TRAIN_ENOMEM;
	}
	for (int j = 0; j < K; j++)
		delta[j] = U[j];
	for (int t = 1; t < T; t++)
		for (int j = 0; j < K; j++) {
			/* ties go to the lowest previous tag, as tf.argmax does */
			int arg = 0;
			double m = delta[(size_t)(t - 1) * K] + A[j];
			for (int i = 1; i < K; i++) {
				double v = delta[(size_t)(t - 1) * K + i] + A[(size_t)i * K + j];
				if (v > m) {
					m = v;
					arg = i;
				}
			}
			delta[(size_t)t * K + j] = U[(size_t)t * K + j] + m;
			bp[(size_t)t * K + j] = arg;
		}
	int arg = 0;
	for (int j = 1; j < K; j++)
		if (delta[(size_t)(T - 1) * K + j] > delta[(size_t)(T - 1) * K + arg])
			arg = j;
	if (best)
		*best = delta[(size_t)(T - 1) * K + arg];
	path[T - 1] = arg;
	for (int t = T - 1; t > 0; t--)
		path[t - 1] = bp[(size_t)t * K + path[t]];
	free(delta);
	free(bp);
	return TRAIN_OK;
}

int nlu_crf_marginals(float *p, const float *U, const float *A, int T, int K)
{
	if (T < 0 || K <= 0 || (T > 0 && (!p || !U || !A)))
		return TRAIN_EINVAL;
	if (T == 0)
		return TRAIN_OK;
	double *alpha = malloc(((size_t)2 * T * K + K) * sizeof *alpha);
	if (!alpha)
		return TRAIN_ENOMEM;
	double *beta = alpha + (size_t)T * K, *tmp = beta + (size_t)T * K;
	crf_alpha(alpha, U, A, T, K, tmp);
	crf_beta(beta, U, A, T, K, tmp);
	double logz = lse(alpha + (size_t)(T - 1) * K, K, 1);
	for (size_t i = 0; i < (size_t)T * K; i++)
		p[i] = (float)exp(alpha[i] + beta[i] - logz);
	free(alpha);
	return TRAIN_OK;
}
