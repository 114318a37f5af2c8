/*
 * plugins/ppo/ppo.h - PPO's pieces, shared by the plugin and its test
 * (tests/test_ppo.c compiles the plugin's sources in).
 *
 * Legend: N rows of a batch, I input width (observation size or H), H the
 * hidden width (hidden_dim, a multiple of 8), K head width (actions of a
 * categorical policy, action dimensions of a Gaussian one, or 1 for the
 * value).
 */
#ifndef PPO_PPO_H
#define PPO_PPO_H

#include <math.h>

#include <train/plugin.h>
#include <train/optim.h>
#include <train/tensor.h>

/* ---- kernels (ppo_kern.h, one set per instruction set) --------------------- */

typedef struct ppo_kern {
	const char *isa; /* "avx512", "avx2", "generic" */
	int width;       /* H must be a multiple of it */
	/* y = tanh(x wt + b) */
	void (*fwd_hidden)(float *y,        /* (N, H) */
	                   const float *x,  /* (N, I) */
	                   const float *wt, /* (I, H) */
	                   const float *b,  /* (H) */
	                   int N, int I, int H);
	/* out = h w^T + b */
	void (*fwd_head)(float *out,      /* (N, K) */
	                 const float *h,  /* (N, H) */
	                 const float *w,  /* (K, H) */
	                 const float *b,  /* (K) */
	                 int N, int H, int K);
	/* dh += dout w; dw += dout^T h; db += sum dout */
	void (*bwd_head)(float *dh,         /* (N, H) */
	                 float *dw,         /* (K, H) */
	                 float *db,         /* (K) */
	                 const float *dout, /* (N, K) */
	                 const float *h,    /* (N, H) */
	                 const float *w,    /* (K, H) */
	                 int N, int H, int K);
	/* dy becomes dpre = dy (1 - y^2); dwt += x^T dpre; db += sum dpre;
	 * dx = dpre wt^T (written, not added) when dx is not NULL */
	void (*bwd_hidden)(float *dx,        /* (N, I) or NULL */
	                   float *dwt,       /* (I, H) */
	                   float *db,        /* (H) */
	                   float *dy,        /* (N, H), overwritten */
	                   const float *y,   /* (N, H) */
	                   const float *x,   /* (N, I) */
	                   const float *wt,  /* (I, H) */
	                   int N, int I, int H);
	void (*tanh_n)(float *y, const float *x, size_t n); /* n a multiple of width */
} ppo_kern;

/* The fastest set this processor runs for width H; `force` ("avx512",
 * "avx2", "generic" or NULL) picks one for tests. */
const ppo_kern *ppo_kern_pick(int H, const char *force);

/* ---- the network ------------------------------------------------------------ */

/*
 * Actor and critic: obs -> H -> H (tanh) -> head.  With `shared`, one trunk
 * feeds both heads.  Parameters, gradients and Adam's moments are flat
 * arrays of n floats in the same layout; the offsets name each tensor.
 */
typedef struct ppo_net {
	int obs_dim, K, H, shared, gaussian;
	size_t n;
	float *p, *g, *m, *v;
	/* offsets into p (and g, m, v): actor trunk, actor head, critic trunk
	 * (== actor's when shared), value head, log std (Gaussian) */
	size_t a_w1, a_b1, a_w2, a_b2, a_w3, a_b3;
	size_t c_w1, c_b1, c_w2, c_b2, c_w3, c_b3;
	size_t logstd;
	const ppo_kern *kern;
	/* activations for up to `cap` rows */
	int cap;
	float *ah1, *ah2, *ch1, *ch2, *out, *val;  /* (cap,H) x4, (cap,K), (cap) */
	float *dah1, *dah2, *dch1, *dch2, *dout, *dval;
} ppo_net;

int ppo_net_init(ppo_net *net, int obs_dim, int K, int H, int shared, int gaussian, int cap,
                 const char *force_isa);
void ppo_net_free(ppo_net *net);
/* Orthogonal initialisation as CleanRL's layer_init: hidden layers gain
 * sqrt(2), the policy head 0.01, the value head 1, biases 0, log std 0. */
void ppo_net_orthogonal(ppo_net *net, train_rng *rng);
/* Forward N rows (<= cap): net->out (N, K) logits or means, net->val (N). */
void ppo_net_forward(ppo_net *net, const float *obs, int N, int want_value);
/* Backward from net->dout and net->dval into net->g (adds). */
void ppo_net_backward(ppo_net *net, const float *obs, int N);
/* Named views (torch-free names; w1/w2 stored transposed (in, out)). */
size_t ppo_net_tensors(const ppo_net *net, const float *base, train_named_tensor *out, size_t max);

/* ---- the loss ---------------------------------------------------------------- */

typedef struct ppo_coefs {
	float clip_coef, ent_coef, vf_coef;
	int clip_vloss, norm_adv;
} ppo_coefs;

typedef struct ppo_batch {
	int N;
	const float *obs;      /* (N, obs_dim) */
	const int32_t *act_i;  /* (N) categorical */
	const float *act_f;    /* (N, K) Gaussian */
	const float *logp;     /* (N) old log-probabilities */
	const float *adv;      /* (N) */
	const float *ret;      /* (N) */
	const float *val;      /* (N) old values */
} ppo_batch;

typedef struct ppo_stats {
	double loss, pg_loss, v_loss, entropy, approx_kl, clipfrac;
} ppo_stats;

/* CleanRL's PPO loss on one minibatch; adds its gradient into net->g. */
void ppo_loss_grad(ppo_net *net, const ppo_batch *b, const ppo_coefs *c, ppo_stats *st);

/* log(sum(exp(z))) of one row of K logits, through its maximum (*mx) and
 * the sum of exp(z - max) (*sum), which sampling reuses. */
static inline float ppo_row_lse(const float *z, int K, float *mx, float *sum)
{
	float m = z[0];
	for (int k = 1; k < K; k++)
		m = z[k] > m ? z[k] : m;
	float s = 0;
	for (int k = 0; k < K; k++)
		s += expf(z[k] - m);
	*mx = m;
	*sum = s;
	return m + logf(s);
}

/* Log-probability and entropy of actions under the current net->out. */
void ppo_logp_entropy(const ppo_net *net, int N, const int32_t *act_i, const float *act_f,
                      float *logp, float *ent);

/* d max(a, b) as torch passes it: all to the larger, halves on a tie. */
static inline void ppo_dmax(float a, float b, float *da, float *db)
{
	*da = a > b ? 1.0f : a < b ? 0.0f : 0.5f;
	*db = 1.0f - *da;
}

/* The clipped surrogate of one action, max(-A r, -A clip(r, 1-c, 1+c)),
 * and its derivative by the ratio r in *dratio. */
static inline float ppo_clipped_pg(float A, float ratio, float clip, float *dratio)
{
	const float lo = 1.0f - clip, hi = 1.0f + clip;
	float rc = ratio < lo ? lo : ratio > hi ? hi : ratio;
	float pg1 = -A * ratio, pg2 = -A * rc, d1, d2;
	ppo_dmax(pg1, pg2, &d1, &d2);
	float inside = ratio >= lo && ratio <= hi ? 1.0f : 0.0f;
	*dratio = (-A) * d1 + (-A) * inside * d2;
	return pg1 > pg2 ? pg1 : pg2;
}

/* The clipped value loss max((v - R)^2, (old + clip(v - old, -c, c) - R)^2)
 * (without CleanRL's factor 0.5) and its derivative by v in *dv. */
static inline float ppo_clipped_vloss(float v, float old, float R, float clip, float *dv)
{
	float vu = (v - R) * (v - R);
	float dlt = v - old;
	float dc = dlt < -clip ? -clip : dlt > clip ? clip : dlt;
	float vcr = old + dc;
	float vc = (vcr - R) * (vcr - R);
	float du, dcl;
	ppo_dmax(vu, vc, &du, &dcl);
	float in_v = dlt >= -clip && dlt <= clip ? 1.0f : 0.0f;
	*dv = du * 2.0f * (v - R) + dcl * 2.0f * (vcr - R) * in_v;
	return vu > vc ? vu : vc;
}

/* GAE (CleanRL ppo.py): T steps of E envs, row-major (T, E). */
void ppo_gae(int T, int E, const float *rew, const float *val, const uint8_t *done,
             const float *next_val, const uint8_t *next_done, float gamma, float lambda,
             float *adv, float *ret);

#endif
