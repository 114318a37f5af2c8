/*
 * plugins/ppo/net.c - PPO's actor-critic network and loss (ppo.h): the
 * MLPs (obs -> H -> H tanh -> head), CleanRL's orthogonal initialisation,
 * categorical and Gaussian heads, the clipped surrogate with value
 * clipping and entropy bonus, and GAE.
 *
 * Numerics follow CleanRL's ppo.py / ppo_continuous_action.py as PyTorch
 * computes them: advantages normalised per minibatch with the unbiased
 * standard deviation and 1e-8; max(a, b) and clamp() pass gradients as
 * torch's autograd does (a tie in max() splits the gradient in halves;
 * clamp() passes it on the closed interval).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ppo.h"

#define LOG_SQRT_2PI 0.91893853320467274178

/* ---- the network ------------------------------------------------------------ */

void ppo_net_free(ppo_net *net)
{
	if (!net)
		return;
	free(net->p);
	free(net->g);
	free(net->m);
	free(net->v);
	free(net->ah1);
	memset(net, 0, sizeof *net);
}

/* A block of n floats, rounded up to 16 so every tensor starts 64-byte
 * aligned in the 64-byte aligned arrays. */
static size_t take(size_t *at, size_t n)
{
	size_t o = *at;
	*at += (n + 15) & ~(size_t)15;
	return o;
}

static float *falloc(size_t n)
{
	size_t bytes = (n * sizeof(float) + 63) & ~(size_t)63;
	float *p = aligned_alloc(64, bytes ? bytes : 64);
	if (p)
		memset(p, 0, bytes);
	return p;
}

int ppo_net_init(ppo_net *net, int obs_dim, int K, int H, int shared, int gaussian, int cap,
                 const char *force_isa)
{
	memset(net, 0, sizeof *net);
	if (obs_dim < 1 || K < 1 || H < 8 || H % 8 || cap < 1)
		return TRAIN_EINVAL;
	net->kern = ppo_kern_pick(H, force_isa);
	if (!net->kern)
		return TRAIN_EUNSUPPORTED;
	net->obs_dim = obs_dim;
	net->K = K;
	net->H = H;
	net->shared = shared;
	net->gaussian = gaussian;
	net->cap = cap;
	size_t at = 0, D = (size_t)obs_dim, h = (size_t)H, k = (size_t)K;
	net->a_w1 = take(&at, D * h);
	net->a_b1 = take(&at, h);
	net->a_w2 = take(&at, h * h);
	net->a_b2 = take(&at, h);
	net->a_w3 = take(&at, k * h);
	net->a_b3 = take(&at, k);
	if (shared) {
		net->c_w1 = net->a_w1;
		net->c_b1 = net->a_b1;
		net->c_w2 = net->a_w2;
		net->c_b2 = net->a_b2;
	} else {
		net->c_w1 = take(&at, D * h);
		net->c_b1 = take(&at, h);
		net->c_w2 = take(&at, h * h);
		net->c_b2 = take(&at, h);
	}
	net->c_w3 = take(&at, h);
	net->c_b3 = take(&at, 1);
	net->logstd = gaussian ? take(&at, k) : 0;
	net->n = at;
	net->p = falloc(at);
	net->g = falloc(at);
	net->m = falloc(at);
	net->v = falloc(at);
	size_t c = (size_t)cap, kk = (k + 15) & ~(size_t)15;
	size_t per = c * h;
	net->ah1 = falloc(8 * per + 2 * c * kk + 2 * c + 64);
	if (!net->p || !net->g || !net->m || !net->v || !net->ah1) {
		ppo_net_free(net);
		return TRAIN_ENOMEM;
	}
	net->ah2 = net->ah1 + per;
	net->ch1 = net->ah2 + per;
	net->ch2 = net->ch1 + per;
	net->dah1 = net->ch2 + per;
	net->dah2 = net->dah1 + per;
	net->dch1 = net->dah2 + per;
	net->dch2 = net->dch1 + per;
	net->out = net->dch2 + per;
	net->dout = net->out + c * kk;
	net->val = net->dout + c * kk;
	net->dval = net->val + c;
	return TRAIN_OK;
}

/* W (rows, cols) = gain * an orthonormal matrix (orthonormal rows or
 * columns, whichever are fewer), as torch.nn.init.orthogonal_: a normal
 * matrix's QR with R's diagonal made positive (modified Gram-Schmidt gives
 * that directly).  Stored transposed when `transposed` (wt[c][r]). */
static void orthogonal(float *w, int rows, int cols, double gain, int transposed, train_rng *rng)
{
	int m = rows > cols ? rows : cols, k = rows > cols ? cols : rows;
	double *a = malloc(sizeof(double) * (size_t)m * (size_t)k);
	if (!a)
		return; /* left at zero: the caller checked memory up front */
	for (size_t i = 0; i < (size_t)m * (size_t)k; i++)
		a[i] = train_rng_normal(rng);
	/* columns j of the m x k matrix a[i*k + j] */
	for (int j = 0; j < k; j++) {
		for (int q = 0; q < j; q++) {
			double d = 0;
			for (int i = 0; i < m; i++)
				d += a[i * k + j] * a[i * k + q];
			for (int i = 0; i < m; i++)
				a[i * k + j] -= d * a[i * k + q];
		}
		double nn = 0;
		for (int i = 0; i < m; i++)
			nn += a[i * k + j] * a[i * k + j];
		nn = sqrt(nn);
		for (int i = 0; i < m; i++)
			a[i * k + j] /= nn > 0 ? nn : 1;
	}
	for (int r = 0; r < rows; r++)
		for (int c = 0; c < cols; c++) {
			/* rows >= cols: W = Q (m=rows); else W = Q^T (m=cols) */
			double x = rows >= cols ? a[r * k + c] : a[c * k + r];
			if (transposed)
				w[(size_t)c * rows + r] = (float)(gain * x);
			else
				w[(size_t)r * cols + c] = (float)(gain * x);
		}
	free(a);
}

void ppo_net_orthogonal(ppo_net *net, train_rng *rng)
{
	int D = net->obs_dim, H = net->H, K = net->K;
	memset(net->p, 0, net->n * sizeof(float));
	const double s2 = sqrt(2.0);
	orthogonal(net->p + net->c_w1, H, D, s2, 1, rng);
	orthogonal(net->p + net->c_w2, H, H, s2, 1, rng);
	orthogonal(net->p + net->c_w3, 1, H, 1.0, 0, rng);
	if (!net->shared) {
		orthogonal(net->p + net->a_w1, H, D, s2, 1, rng);
		orthogonal(net->p + net->a_w2, H, H, s2, 1, rng);
	}
	orthogonal(net->p + net->a_w3, K, H, 0.01, 0, rng);
}

void ppo_net_forward(ppo_net *net, const float *obs, int N, int want_value)
{
	const ppo_kern *k = net->kern;
	int D = net->obs_dim, H = net->H;
	const float *p = net->p;
	k->fwd_hidden(net->ah1, obs, p + net->a_w1, p + net->a_b1, N, D, H);
	k->fwd_hidden(net->ah2, net->ah1, p + net->a_w2, p + net->a_b2, N, H, H);
	k->fwd_head(net->out, net->ah2, p + net->a_w3, p + net->a_b3, N, H, net->K);
	if (!want_value)
		return;
	const float *top = net->ah2;
	if (!net->shared) {
		k->fwd_hidden(net->ch1, obs, p + net->c_w1, p + net->c_b1, N, D, H);
		k->fwd_hidden(net->ch2, net->ch1, p + net->c_w2, p + net->c_b2, N, H, H);
		top = net->ch2;
	}
	k->fwd_head(net->val, top, p + net->c_w3, p + net->c_b3, N, H, 1);
}

void ppo_net_backward(ppo_net *net, const float *obs, int N)
{
	const ppo_kern *k = net->kern;
	int D = net->obs_dim, H = net->H;
	const float *p = net->p;
	float *g = net->g;
	size_t nh = (size_t)N * H;
	memset(net->dah2, 0, nh * sizeof(float));
	k->bwd_head(net->dah2, g + net->a_w3, g + net->a_b3, net->dout, net->ah2, p + net->a_w3, N, H,
	            net->K);
	if (net->shared) {
		k->bwd_head(net->dah2, g + net->c_w3, g + net->c_b3, net->dval, net->ah2, p + net->c_w3,
		            N, H, 1);
	} else {
		memset(net->dch2, 0, nh * sizeof(float));
		k->bwd_head(net->dch2, g + net->c_w3, g + net->c_b3, net->dval, net->ch2, p + net->c_w3,
		            N, H, 1);
		k->bwd_hidden(net->dch1, g + net->c_w2, g + net->c_b2, net->dch2, net->ch2, net->ch1,
		              p + net->c_w2, N, H, H);
		k->bwd_hidden(NULL, g + net->c_w1, g + net->c_b1, net->dch1, net->ch1, obs, p + net->c_w1,
		              N, D, H);
	}
	k->bwd_hidden(net->dah1, g + net->a_w2, g + net->a_b2, net->dah2, net->ah2, net->ah1,
	              p + net->a_w2, N, H, H);
	k->bwd_hidden(NULL, g + net->a_w1, g + net->a_b1, net->dah1, net->ah1, obs, p + net->a_w1, N,
	              D, H);
}

size_t ppo_net_tensors(const ppo_net *net, const float *base, train_named_tensor *out, size_t max)
{
	int64_t D = net->obs_dim, H = net->H, K = net->K;
	struct {
		const char *name;
		size_t off;
		int nd;
		int64_t d0, d1;
		int skip;
	} t[] = {
		{ "actor.w1t", net->a_w1, 2, D, H, 0 },  { "actor.b1", net->a_b1, 1, H, 1, 0 },
		{ "actor.w2t", net->a_w2, 2, H, H, 0 },  { "actor.b2", net->a_b2, 1, H, 1, 0 },
		{ "actor.w3", net->a_w3, 2, K, H, 0 },   { "actor.b3", net->a_b3, 1, K, 1, 0 },
		{ "critic.w1t", net->c_w1, 2, D, H, net->shared }, { "critic.b1", net->c_b1, 1, H, 1, net->shared },
		{ "critic.w2t", net->c_w2, 2, H, H, net->shared }, { "critic.b2", net->c_b2, 1, H, 1, net->shared },
		{ "critic.w3", net->c_w3, 2, 1, H, 0 },  { "critic.b3", net->c_b3, 1, 1, 1, 0 },
		{ "actor.logstd", net->logstd, 1, K, 1, !net->gaussian },
	};
	size_t n = 0;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		if (t[i].skip)
			continue;
		if (n < max) {
			train_named_tensor *o = &out[n];
			memset(o, 0, sizeof *o);
			o->name = t[i].name;
			o->t.dtype = TRAIN_F32;
			o->t.ndim = t[i].nd;
			o->t.shape[0] = t[i].d0;
			o->t.shape[1] = t[i].nd > 1 ? t[i].d1 : 1;
			o->t.shape[2] = o->t.shape[3] = 1;
			o->t.data = (void *)(base + t[i].off);
		}
		n++;
	}
	return n;
}

/* ---- the loss ---------------------------------------------------------------- */

void ppo_logp_entropy(const ppo_net *net, int N, const int32_t *act_i, const float *act_f,
                      float *logp, float *ent)
{
	int K = net->K;
	for (int n = 0; n < N; n++) {
		const float *z = net->out + (size_t)n * K;
		if (!net->gaussian) {
			float mx, s, e = 0;
			float lse = ppo_row_lse(z, K, &mx, &s);
			for (int k = 0; k < K; k++) {
				float lp = z[k] - lse;
				e -= expf(lp) * lp;
			}
			if (logp)
				logp[n] = z[act_i[n]] - lse;
			if (ent)
				ent[n] = e;
		} else {
			const float *ls = net->p + net->logstd;
			float lp = 0, e = 0;
			for (int k = 0; k < K; k++) {
				float sd = expf(ls[k]);
				float u = (act_f[(size_t)n * K + k] - z[k]) / sd;
				lp += -0.5f * u * u - ls[k] - (float)LOG_SQRT_2PI;
				e += 0.5f + (float)LOG_SQRT_2PI + ls[k];
			}
			if (logp)
				logp[n] = lp;
			if (ent)
				ent[n] = e;
		}
	}
}


void ppo_loss_grad(ppo_net *net, const ppo_batch *b, const ppo_coefs *c, ppo_stats *st)
{
	int N = b->N, K = net->K;
	ppo_net_forward(net, b->obs, N, 1);

	/* advantages, normalised over the minibatch (torch's std: ddof 1) */
	double mean = 0, var = 0;
	for (int n = 0; n < N; n++)
		mean += b->adv[n];
	mean /= N;
	for (int n = 0; n < N; n++)
		var += (b->adv[n] - mean) * (b->adv[n] - mean);
	float sd = N > 1 ? (float)sqrt(var / (N - 1)) : 0.0f;

	double pg_sum = 0, v_sum = 0, ent_sum = 0, kl_sum = 0, clipped = 0;
	const float inv_n = 1.0f / (float)N;
	float *dls = net->gaussian ? net->g + net->logstd : NULL;
	for (int n = 0; n < N; n++) {
		const float *z = net->out + (size_t)n * K;
		float *dz = net->dout + (size_t)n * K;
		float lp = 0, e = 0, lse = 0;
		if (!net->gaussian) {
			float mx = z[0];
			for (int k = 1; k < K; k++)
				mx = z[k] > mx ? z[k] : mx;
			float s = 0;
			for (int k = 0; k < K; k++)
				s += expf(z[k] - mx);
			lse = mx + logf(s);
			for (int k = 0; k < K; k++) {
				float lpk = z[k] - lse;
				e -= expf(lpk) * lpk;
			}
			lp = z[b->act_i[n]] - lse;
		} else {
			const float *ls = net->p + net->logstd;
			for (int k = 0; k < K; k++) {
				float u = (b->act_f[(size_t)n * K + k] - z[k]) / expf(ls[k]);
				lp += -0.5f * u * u - ls[k] - (float)LOG_SQRT_2PI;
				e += 0.5f + (float)LOG_SQRT_2PI + ls[k];
			}
		}
		float A = c->norm_adv ? (float)((b->adv[n] - mean) / (sd + 1e-8f)) : b->adv[n];
		float logratio = lp - b->logp[n], ratio = expf(logratio);
		kl_sum += (ratio - 1.0f) - logratio;
		clipped += fabsf(ratio - 1.0f) > c->clip_coef;
		float dratio;
		pg_sum += ppo_clipped_pg(A, ratio, c->clip_coef, &dratio);
		float dlogp = dratio * ratio * inv_n;
		float dent = -c->ent_coef * inv_n;
		ent_sum += e;
		if (!net->gaussian) {
			int a = b->act_i[n];
			for (int k = 0; k < K; k++) {
				float lpk = z[k] - lse, pk = expf(lpk);
				dz[k] = dlogp * ((k == a) - pk) + dent * (-pk * (lpk + e));
			}
		} else {
			const float *ls = net->p + net->logstd;
			for (int k = 0; k < K; k++) {
				float sdk = expf(ls[k]);
				float u = (b->act_f[(size_t)n * K + k] - z[k]) / sdk;
				dz[k] = dlogp * u / sdk;
				dls[k] += dlogp * (u * u - 1.0f) + dent;
			}
		}
		/* value */
		float v = net->val[n], R = b->ret[n], dv;
		float vu = (v - R) * (v - R);
		if (c->clip_vloss) {
			v_sum += 0.5 * ppo_clipped_vloss(v, b->val[n], R, c->clip_coef, &dv);
		} else {
			dv = 2.0f * (v - R);
			v_sum += 0.5 * vu;
		}
		net->dval[n] = c->vf_coef * 0.5f * dv * inv_n;
	}
	ppo_net_backward(net, b->obs, N);
	if (st) {
		st->pg_loss = pg_sum / N;
		st->v_loss = v_sum / N;
		st->entropy = ent_sum / N;
		st->loss = st->pg_loss - c->ent_coef * st->entropy + c->vf_coef * st->v_loss;
		st->approx_kl = kl_sum / N;
		st->clipfrac = clipped / N;
	}
}
