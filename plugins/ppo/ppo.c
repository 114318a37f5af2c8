/*
 * plugins/ppo/ppo.c - the "ppo" plugin (issue 9): the PPO component, a
 * C rendering of CleanRL's ppo.py (categorical) and
 * ppo_continuous_action.py (Gaussian, state-independent log std) with
 * their defaults for CartPole: 4 envs x 128 steps, 4 epochs of 4
 * minibatches, Adam (eps 1e-5) at 2.5e-4 annealed linearly to 0, gamma
 * 0.99, GAE lambda 0.95, clip 0.2 (surrogate and value), entropy 0.01,
 * value 0.5, gradient norm 0.5, 64-64 tanh actor and critic, orthogonal
 * initialisation.
 *
 * Component "PPO":
 *   train:   no inputs -> report (application/json: steps, episodes, the
 *            mean of the last 100 training episodes' returns, the step and
 *            second at which that mean first reached solved_return, wall
 *            time, steps per second)
 *   process: episodes (application/json {"episodes": N, "seed": S,
 *            "deterministic": true}) -> returns (application/json
 *            {"episodes", "mean", "std", "min", "max", "returns": [...]})
 *            by running the trained policy in a fresh environment (one
 *            copy); `train test rl MODEL --episodes N` prints it.
 *   persist: policy.safetensors (the network; w1t/w2t stored (in, out))
 *            and ppo.json (shapes, environment and its config).
 *
 * Checkpoints: with a checkpoint folder from the host (train_ctx_checkpoint_dir)
 * the run writes ppo.ckpt.safetensors every checkpoint_every iterations:
 * parameters, Adam's moments and step, the generator, and in its metadata
 * the rest of the run (iteration, environment state through the class's
 * save_state, the current observations, episode counters); `train
 * --resume` continues from it, and the result is bit for bit the one of an
 * uninterrupted run (tests/test_ppo.c).
 *
 * What differs from CleanRL: random numbers (xoshiro, not PyTorch's and
 * NumPy's streams), tanh (a rational approximation within 4e-7) and fp32
 * sums in another order; no observation or reward normalisation wrappers
 * for continuous control; no target_kl early stop unless set.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ppo.h"

#define REPORT_TYPE "application/json"
#define CKPT_NAME "ppo.ckpt.safetensors"
#define WIN 100

static const train_param ppo_params[] = {
	{ "env", TRAIN_PARAM_STRING, "CartPole-v1", "environment class (\"Name\" or \"plugin/Name\")" },
	{ "env_config", TRAIN_PARAM_ANY, "~", "the environment's own config (a map)" },
	{ "policy_model", TRAIN_PARAM_STRING, "ppo", "MARK's model.policy_model; only ppo" },
	{ "seed", TRAIN_PARAM_INT, "1", "seed of initialisation, sampling and environments" },
	{ "total_timesteps", TRAIN_PARAM_INT, "500000", "environment steps to train for" },
	{ "learning_rate", TRAIN_PARAM_FLOAT, "0.00025", "Adam's learning rate" },
	{ "num_envs", TRAIN_PARAM_INT, "4", "environment copies stepped together" },
	{ "num_steps", TRAIN_PARAM_INT, "128", "steps per copy per rollout" },
	{ "anneal_lr", TRAIN_PARAM_BOOL, "true", "anneal the learning rate linearly to 0" },
	{ "gamma", TRAIN_PARAM_FLOAT, "0.99", "discount" },
	{ "gae_lambda", TRAIN_PARAM_FLOAT, "0.95", "GAE lambda" },
	{ "num_minibatches", TRAIN_PARAM_INT, "4", "minibatches per epoch" },
	{ "update_epochs", TRAIN_PARAM_INT, "4", "epochs over each rollout" },
	{ "norm_adv", TRAIN_PARAM_BOOL, "true", "normalise advantages per minibatch" },
	{ "clip_coef", TRAIN_PARAM_FLOAT, "0.2", "surrogate (and value) clipping" },
	{ "clip_vloss", TRAIN_PARAM_BOOL, "true", "clip the value loss" },
	{ "ent_coef", TRAIN_PARAM_FLOAT, "0.01", "entropy bonus" },
	{ "vf_coef", TRAIN_PARAM_FLOAT, "0.5", "value loss weight" },
	{ "max_grad_norm", TRAIN_PARAM_FLOAT, "0.5", "global gradient norm clip" },
	{ "target_kl", TRAIN_PARAM_ANY, "~", "stop an update's epochs above this approximate KL (null: never)" },
	{ "hidden_dim", TRAIN_PARAM_INT, "64", "width of both hidden layers (a multiple of 8)" },
	{ "shared", TRAIN_PARAM_BOOL, "false", "one trunk for actor and critic" },
	{ "solved_return", TRAIN_PARAM_ANY, "~", "report when the 100-episode mean first reaches it" },
	{ "checkpoint_every", TRAIN_PARAM_INT, "50", "iterations between checkpoints (0: none)" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

typedef struct ppo_cfg {
	char env[256];
	char *env_flow;  /* env_config as YAML flow text, or NULL */
	int64_t seed, total_timesteps, num_envs, num_steps, num_minibatches, update_epochs;
	int64_t hidden_dim, checkpoint_every;
	double lr, gamma, lambda, clip, ent, vf, max_grad_norm, target_kl, solved_return;
	int anneal, norm_adv, clip_vloss, shared;
} ppo_cfg;

/* A trained or training policy. */
typedef struct ppo {
	ppo_cfg cfg;
	const train_env_class *ecls; /* found at create, for the fingerprint */
	ppo_net net;
	int have_net;
	int D, K, gaussian;
	char *report;     /* JSON of the last training */
} ppo;

/* The state of one training run. */
typedef struct ppo_run {
	ppo *P;
	const train_env_class *ecls;
	void *env;
	int E, T, D, K, B, MB;
	train_rng rng;
	int64_t iter, num_iter, global_step, adam_t, n_episodes, solved_step;
	double solved_sec, elapsed;   /* seconds of earlier sessions (resume) */
	double solved_cpu, cpu;       /* the same in CPU seconds */
	float *obs, *act_f, *logp, *rew, *val, *adv, *ret;  /* (T*E ...) */
	int32_t *act_i;
	uint8_t *done;
	float *next_obs, *next_val, *reward;  /* (E*D), (E), (E) */
	uint8_t *next_done, *term, *trunc;
	float *ep_ret;
	int64_t *ep_len;
	double win[WIN];
	int64_t *perm;
	float *mb_obs, *mb_act_f, *mb_logp, *mb_adv, *mb_ret, *mb_val;
	int32_t *mb_act_i;
	float *step_act_f;
	int32_t *step_act_i;
} ppo_run;

static double now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* This thread's CPU time: on a shared machine the honest measure of the
 * work, beside the wall time. */
static double cpu_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- config -------------------------------------------------------------------- */

static double opt_float(const train_config *c, const char *key)
{
	const train_config *v = train_config_get(c, key);
	train_cfg_kind k = train_config_kind(v);
	return k == TRAIN_CFG_INT || k == TRAIN_CFG_FLOAT ? train_config_as_float(v) : NAN;
}

static int read_cfg(const train_config *c, ppo_cfg *o, train_ctx *ctx)
{
	memset(o, 0, sizeof *o);
	const char *env = train_config_string(c, "env");
	if (!env || !*env || strlen(env) >= sizeof o->env)
		return train_fail(ctx, "env: a class name is needed");
	snprintf(o->env, sizeof o->env, "%s", env);
	const char *pm = train_config_string(c, "policy_model");
	if (!pm || strcmp(pm, "ppo"))
		return train_fail(ctx, "policy_model: only 'ppo' is built, not '%s'", pm ? pm : "");
	const train_config *ec = train_config_get(c, "env_config");
	if (ec && train_config_kind(ec) != TRAIN_CFG_NULL) {
		if (train_config_kind(ec) != TRAIN_CFG_MAP)
			return train_fail(ctx, "env_config must be a map");
		if (train_config_to_flow(ec, &o->env_flow))
			return TRAIN_ENOMEM;
	}
#define I(f, k) o->f = train_config_int(c, k)
#define F(f, k) o->f = train_config_float(c, k)
#define B(f, k) o->f = train_config_bool(c, k)
	I(seed, "seed"); I(total_timesteps, "total_timesteps"); I(num_envs, "num_envs");
	I(num_steps, "num_steps"); I(num_minibatches, "num_minibatches");
	I(update_epochs, "update_epochs"); I(hidden_dim, "hidden_dim");
	I(checkpoint_every, "checkpoint_every");
	F(lr, "learning_rate"); F(gamma, "gamma"); F(lambda, "gae_lambda"); F(clip, "clip_coef");
	F(ent, "ent_coef"); F(vf, "vf_coef"); F(max_grad_norm, "max_grad_norm");
	B(anneal, "anneal_lr"); B(norm_adv, "norm_adv"); B(clip_vloss, "clip_vloss");
	B(shared, "shared");
#undef I
#undef F
#undef B
	o->target_kl = opt_float(c, "target_kl");
	o->solved_return = opt_float(c, "solved_return");
	if (o->num_envs < 1 || o->num_envs > 4096 || o->num_steps < 1 || o->num_steps > 1 << 20)
		return train_fail(ctx, "num_envs must be in [1, 4096] and num_steps in [1, 2^20]");
	int64_t batch = o->num_envs * o->num_steps;
	if (o->num_minibatches < 1 || batch % o->num_minibatches)
		return train_fail(ctx, "num_minibatches (%lld) must divide num_envs x num_steps (%lld)",
		                  (long long)o->num_minibatches, (long long)batch);
	if (o->update_epochs < 1 || o->total_timesteps < batch)
		return train_fail(ctx, "update_epochs must be >= 1 and total_timesteps >= num_envs x "
		                  "num_steps (%lld)", (long long)batch);
	if (o->hidden_dim < 8 || o->hidden_dim % 8 || o->hidden_dim > 4096)
		return train_fail(ctx, "hidden_dim must be a multiple of 8 in [8, 4096], not %lld",
		                  (long long)o->hidden_dim);
	if (!(o->lr > 0) || !(o->clip > 0) || !(o->gamma >= 0 && o->gamma <= 1) ||
	    !(o->lambda >= 0 && o->lambda <= 1) || o->checkpoint_every < 0)
		return train_fail(ctx, "learning_rate and clip_coef must be > 0, gamma and gae_lambda "
		                  "in [0, 1], checkpoint_every >= 0");
	return TRAIN_OK;
}

/* The environment named by the config, with its config, num_envs copies. */
static int open_env(const ppo_cfg *cfg, int num_envs, train_ctx *ctx, const train_env_class **cls,
                    void **env)
{
	int rc = train_ctx_find_env(ctx, cfg->env, cls);
	if (rc)
		return rc;
	train_config *ec = NULL;
	train_error err = { 0 };
	if (cfg->env_flow && (rc = train_config_parse(cfg->env_flow, strlen(cfg->env_flow),
	                                              "env_config", &ec, &err)))
		return train_fail(ctx, "env_config: %s", err.text);
	rc = train_env_create(*cls, ec, num_envs, env, &err);
	train_config_destroy(ec);
	if (rc)
		return train_fail(ctx, "%s", err.text[0] ? err.text : train_strerror(rc));
	return TRAIN_OK;
}

/* Spaces -> D, K, gaussian. */
static int env_shape(const train_env_class *cls, void *env, int *D, int *K, int *gaussian,
                     train_ctx *ctx)
{
	train_space os, as;
	cls->spaces(env, &os, &as);
	if (os.kind != TRAIN_SPACE_BOX || os.dim < 1)
		return train_fail(ctx, "environment %s: observations must be a box", cls->name);
	*D = os.dim;
	if (as.kind == TRAIN_SPACE_DISCRETE && as.n >= 2) {
		*K = as.n;
		*gaussian = 0;
	} else if (as.kind == TRAIN_SPACE_BOX && as.dim >= 1) {
		*K = as.dim;
		*gaussian = 1;
	} else {
		return train_fail(ctx, "environment %s: unsupported action space", cls->name);
	}
	return TRAIN_OK;
}

/* ---- a training run ------------------------------------------------------------- */

static void run_free(ppo_run *r)
{
	if (r->env)
		r->ecls->destroy(r->env);
	void *bufs[] = { r->obs, r->act_f, r->logp, r->rew, r->val, r->adv, r->ret, r->act_i,
	                 r->done, r->next_obs, r->next_val, r->reward, r->next_done, r->term,
	                 r->trunc, r->ep_ret, r->ep_len, r->perm, r->mb_obs, r->mb_act_f,
	                 r->mb_logp, r->mb_adv, r->mb_ret, r->mb_val, r->mb_act_i, r->step_act_f,
	                 r->step_act_i };
	for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
		free(bufs[i]);
	memset(r, 0, sizeof *r);
}

/* Set up a run: environment, network (orthogonal init), buffers, first
 * observations.  Force an ISA with `isa` (tests) or NULL. */
static int run_init(ppo_run *r, ppo *P, train_ctx *ctx, const char *isa)
{
	memset(r, 0, sizeof *r);
	r->P = P;
	const ppo_cfg *c = &P->cfg;
	int rc;
	r->E = (int)c->num_envs;
	r->T = (int)c->num_steps;
	r->B = r->E * r->T;
	r->MB = r->B / (int)c->num_minibatches;
	if ((rc = open_env(c, r->E, ctx, &r->ecls, &r->env)))
		return rc;
	if ((rc = env_shape(r->ecls, r->env, &r->D, &r->K, &P->gaussian, ctx)))
		return rc;
	P->D = r->D;
	P->K = r->K;
	if (P->have_net)
		ppo_net_free(&P->net);
	P->have_net = 0;
	int cap = r->MB > r->E ? r->MB : r->E;
	rc = ppo_net_init(&P->net, r->D, r->K, (int)c->hidden_dim, c->shared, P->gaussian, cap, isa);
	if (rc)
		return train_fail(ctx, "network: %s", train_strerror(rc));
	P->have_net = 1;
	train_rng_seed(&r->rng, (uint64_t)c->seed);
	ppo_net_orthogonal(&P->net, &r->rng);

	size_t B = (size_t)r->B, E = (size_t)r->E, D = (size_t)r->D, K = (size_t)r->K,
	       MB = (size_t)r->MB;
	r->obs = calloc(B * D, sizeof(float));
	r->act_f = calloc(B * K, sizeof(float));
	r->logp = calloc(B, sizeof(float));
	r->rew = calloc(B, sizeof(float));
	r->val = calloc(B, sizeof(float));
	r->adv = calloc(B, sizeof(float));
	r->ret = calloc(B, sizeof(float));
	r->act_i = calloc(B, sizeof(int32_t));
	r->done = calloc(B, 1);
	r->next_obs = calloc(E * D, sizeof(float));
	r->next_val = calloc(E, sizeof(float));
	r->reward = calloc(E, sizeof(float));
	r->next_done = calloc(E, 1);
	r->term = calloc(E, 1);
	r->trunc = calloc(E, 1);
	r->ep_ret = calloc(E, sizeof(float));
	r->ep_len = calloc(E, sizeof(int64_t));
	r->perm = calloc(B, sizeof(int64_t));
	r->mb_obs = calloc(MB * D, sizeof(float));
	r->mb_act_f = calloc(MB * K, sizeof(float));
	r->mb_logp = calloc(MB, sizeof(float));
	r->mb_adv = calloc(MB, sizeof(float));
	r->mb_ret = calloc(MB, sizeof(float));
	r->mb_val = calloc(MB, sizeof(float));
	r->mb_act_i = calloc(MB, sizeof(int32_t));
	r->step_act_f = calloc(E * K, sizeof(float));
	r->step_act_i = calloc(E, sizeof(int32_t));
	if (!r->obs || !r->act_f || !r->logp || !r->rew || !r->val || !r->adv || !r->ret ||
	    !r->act_i || !r->done || !r->next_obs || !r->next_val || !r->reward || !r->next_done ||
	    !r->term || !r->trunc || !r->ep_ret || !r->ep_len || !r->perm || !r->mb_obs ||
	    !r->mb_act_f || !r->mb_logp || !r->mb_adv || !r->mb_ret || !r->mb_val || !r->mb_act_i ||
	    !r->step_act_f || !r->step_act_i)
		return TRAIN_ENOMEM;
	if ((rc = r->ecls->reset(r->env, (uint64_t)c->seed, r->next_obs)))
		return train_fail(ctx, "environment reset failed: %s", train_strerror(rc));
	r->num_iter = c->total_timesteps / r->B;
	r->solved_step = -1;
	return TRAIN_OK;
}

/* Sample actions for E rows of net->out; write logp.  `det`: the mode. */
static void sample(ppo_net *net, train_rng *rng, int E, int det, int32_t *ai, float *af,
                   float *logp)
{
	int K = net->K;
	for (int e = 0; e < E; e++) {
		const float *z = net->out + (size_t)e * K;
		if (!net->gaussian) {
			float mx, s;
			float lse = ppo_row_lse(z, K, &mx, &s);
			int a = 0;
			if (det) {
				for (int k = 1; k < K; k++)
					if (z[k] > z[a])
						a = k;
			} else {
				float u = train_rng_uniform(rng) * s, acc = 0;
				a = K - 1;
				for (int k = 0; k < K; k++) {
					acc += expf(z[k] - mx);
					if (u < acc) {
						a = k;
						break;
					}
				}
			}
			ai[e] = a;
			if (logp)
				logp[e] = z[a] - lse;
		} else {
			const float *ls = net->p + net->logstd;
			float lp = 0;
			for (int k = 0; k < K; k++) {
				float sd = expf(ls[k]);
				float x = det ? z[k] : z[k] + sd * train_rng_normal(rng);
				af[(size_t)e * K + k] = x;
				float u = (x - z[k]) / sd;
				lp += -0.5f * u * u - ls[k] - 0.91893853320467274178f;
			}
			if (logp)
				logp[e] = lp;
		}
	}
}

static void episode_done(ppo_run *r, int e)
{
	r->win[r->n_episodes % WIN] = r->ep_ret[e];
	r->n_episodes++;
	r->ep_ret[e] = 0;
	r->ep_len[e] = 0;
	if (r->solved_step < 0 && !isnan(r->P->cfg.solved_return) && r->n_episodes >= WIN) {
		double m = 0;
		for (int i = 0; i < WIN; i++)
			m += r->win[i];
		if (m / WIN >= r->P->cfg.solved_return)
			r->solved_step = r->global_step;
	}
}

static double window_mean(const ppo_run *r)
{
	int64_t n = r->n_episodes < WIN ? r->n_episodes : WIN;
	double m = 0;
	for (int64_t i = 0; i < n; i++)
		m += r->win[i];
	return n ? m / (double)n : NAN;
}

/* One iteration: a rollout of T steps, GAE, update_epochs epochs. */
static int run_iteration(ppo_run *r, train_ctx *ctx)
{
	const ppo_cfg *c = &r->P->cfg;
	ppo_net *net = &r->P->net;
	int E = r->E, D = r->D, K = r->K, rc;
	r->iter++;
	double frac = 1.0 - (double)(r->iter - 1) / (double)r->num_iter;
	float lr = (float)(c->anneal ? frac * c->lr : c->lr);

	for (int t = 0; t < r->T; t++) {
		size_t row = (size_t)t * E;
		r->global_step += E;
		memcpy(r->obs + row * D, r->next_obs, sizeof(float) * (size_t)E * D);
		memcpy(r->done + row, r->next_done, (size_t)E);
		ppo_net_forward(net, r->next_obs, E, 1);
		memcpy(r->val + row, net->val, sizeof(float) * (size_t)E);
		sample(net, &r->rng, E, 0, r->act_i + row, r->act_f + row * K, r->logp + row);
		const void *acts = net->gaussian ? (const void *)(r->act_f + row * K)
		                                 : (const void *)(r->act_i + row);
		rc = r->ecls->step(r->env, acts, r->next_obs, r->reward, r->term, r->trunc, NULL);
		if (rc)
			return train_fail(ctx, "environment step failed: %s", train_strerror(rc));
		for (int e = 0; e < E; e++) {
			r->rew[row + e] = r->reward[e];
			r->next_done[e] = r->term[e] | r->trunc[e];
			r->ep_ret[e] += r->reward[e];
			r->ep_len[e]++;
			if (r->next_done[e])
				episode_done(r, e);
		}
	}
	ppo_net_forward(net, r->next_obs, E, 1);
	memcpy(r->next_val, net->val, sizeof(float) * (size_t)E);
	ppo_gae(r->T, E, r->rew, r->val, r->done, r->next_val, r->next_done, (float)c->gamma,
	        (float)c->lambda, r->adv, r->ret);

	ppo_coefs co = { (float)c->clip, (float)c->ent, (float)c->vf, c->clip_vloss, c->norm_adv };
	train_adamw_cfg ac = { 0.9f, 0.999f, 1e-5f, 0.0f };
	for (int64_t i = 0; i < r->B; i++)
		r->perm[i] = i;
	for (int64_t ep = 0; ep < c->update_epochs; ep++) {
		/* Fisher-Yates */
		for (int64_t i = r->B - 1; i > 0; i--) {
			int64_t j = (int64_t)train_rng_below(&r->rng, (uint64_t)i + 1);
			int64_t tmp = r->perm[i];
			r->perm[i] = r->perm[j];
			r->perm[j] = tmp;
		}
		ppo_stats st = { 0 };
		for (int start = 0; start < r->B; start += r->MB) {
			for (int m = 0; m < r->MB; m++) {
				int64_t s = r->perm[start + m];
				memcpy(r->mb_obs + (size_t)m * D, r->obs + (size_t)s * D, sizeof(float) * D);
				if (net->gaussian)
					memcpy(r->mb_act_f + (size_t)m * K, r->act_f + (size_t)s * K,
					       sizeof(float) * K);
				else
					r->mb_act_i[m] = r->act_i[s];
				r->mb_logp[m] = r->logp[s];
				r->mb_adv[m] = r->adv[s];
				r->mb_ret[m] = r->ret[s];
				r->mb_val[m] = r->val[s];
			}
			ppo_batch b = { r->MB, r->mb_obs, r->mb_act_i, r->mb_act_f, r->mb_logp,
			                r->mb_adv, r->mb_ret, r->mb_val };
			memset(net->g, 0, net->n * sizeof(float));
			ppo_loss_grad(net, &b, &co, &st);
			float norm = train_clip_grad_norm(net->g, net->n, (float)c->max_grad_norm);
			if (!isfinite(norm) || !isfinite(st.loss))
				return train_fail(ctx, "iteration %lld: the loss or gradient is not finite",
				                  (long long)r->iter);
			r->adam_t++;
			train_adamw_step(&ac, net->p, net->g, net->m, net->v, net->n, lr, r->adam_t);
		}
		if (!isnan(c->target_kl) && st.approx_kl > c->target_kl)
			break;
	}
	return TRAIN_OK;
}

/* ---- checkpoints ---------------------------------------------------------------- */

/* The run's scalars and arrays besides the network, as hex text. */
typedef struct blob {
	unsigned char *p;
	size_t n, cap;
	int bad;
} blob;

static void bput(blob *b, const void *p, size_t n)
{
	if (b->bad)
		return;
	if (b->n + n > b->cap) {
		size_t cap = (b->n + n) * 2 + 64;
		unsigned char *q = realloc(b->p, cap);
		if (!q) {
			b->bad = 1;
			return;
		}
		b->p = q;
		b->cap = cap;
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

static int bget(const unsigned char **p, size_t *left, void *out, size_t n)
{
	if (*left < n)
		return -1;
	memcpy(out, *p, n);
	*p += n;
	*left -= n;
	return 0;
}

#define STATE_MAGIC 0x31505050u /* "PPP1" */

static int run_state(const ppo_run *r, blob *b)
{
	uint32_t magic = STATE_MAGIC, E = (uint32_t)r->E, D = (uint32_t)r->D;
	bput(b, &magic, 4);
	bput(b, &E, 4);
	bput(b, &D, 4);
	bput(b, &r->iter, 8);
	bput(b, &r->global_step, 8);
	bput(b, &r->adam_t, 8);
	bput(b, &r->n_episodes, 8);
	bput(b, &r->solved_step, 8);
	bput(b, &r->solved_sec, 8);
	double el = r->elapsed;
	bput(b, &el, 8);
	bput(b, &r->solved_cpu, 8);
	bput(b, &r->cpu, 8);
	bput(b, r->win, sizeof r->win);
	bput(b, r->next_obs, sizeof(float) * (size_t)r->E * r->D);
	bput(b, r->next_done, (size_t)r->E);
	bput(b, r->ep_ret, sizeof(float) * (size_t)r->E);
	bput(b, r->ep_len, sizeof(int64_t) * (size_t)r->E);
	void *es = NULL;
	size_t en = 0;
	int rc = r->ecls->save_state(r->env, &es, &en);
	if (rc)
		return rc;
	uint64_t en64 = en;
	bput(b, &en64, 8);
	bput(b, es, en);
	free(es);
	return b->bad ? TRAIN_ENOMEM : TRAIN_OK;
}

static int load_run_state(ppo_run *r, const unsigned char *p, size_t left)
{
	uint32_t magic, E, D;
	uint64_t en;
	if (bget(&p, &left, &magic, 4) || bget(&p, &left, &E, 4) || bget(&p, &left, &D, 4) ||
	    magic != STATE_MAGIC || E != (uint32_t)r->E || D != (uint32_t)r->D)
		return TRAIN_ECORRUPT;
	if (bget(&p, &left, &r->iter, 8) || bget(&p, &left, &r->global_step, 8) ||
	    bget(&p, &left, &r->adam_t, 8) || bget(&p, &left, &r->n_episodes, 8) ||
	    bget(&p, &left, &r->solved_step, 8) || bget(&p, &left, &r->solved_sec, 8) ||
	    bget(&p, &left, &r->elapsed, 8) || bget(&p, &left, &r->solved_cpu, 8) ||
	    bget(&p, &left, &r->cpu, 8) || bget(&p, &left, r->win, sizeof r->win) ||
	    bget(&p, &left, r->next_obs, sizeof(float) * E * D) ||
	    bget(&p, &left, r->next_done, E) || bget(&p, &left, r->ep_ret, sizeof(float) * E) ||
	    bget(&p, &left, r->ep_len, sizeof(int64_t) * E) || bget(&p, &left, &en, 8) ||
	    en != left || r->iter < 0 || r->iter > r->num_iter)
		return TRAIN_ECORRUPT;
	return r->ecls->load_state(r->env, p, (size_t)en);
}

static char *to_hex(const unsigned char *p, size_t n)
{
	char *s = malloc(2 * n + 1);
	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++)
		snprintf(s + 2 * i, 3, "%02x", p[i]);
	s[2 * n] = '\0';
	return s;
}

static int from_hex(const char *s, unsigned char **out, size_t *n)
{
	size_t len = strlen(s);
	if (len % 2)
		return TRAIN_ECORRUPT;
	unsigned char *p = malloc(len / 2 + 1);
	if (!p)
		return TRAIN_ENOMEM;
	for (size_t i = 0; i < len / 2; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1) {
			free(p);
			return TRAIN_ECORRUPT;
		}
		p[i] = (unsigned char)v;
	}
	*out = p;
	*n = len / 2;
	return TRAIN_OK;
}

#define MAX_TENSORS 16

/* The parameters by name and the Adam moments in the same order. */
static size_t ckpt_tensors(ppo_net *net, train_named_tensor *pt, train_tensor *m, train_tensor *v)
{
	train_named_tensor mt[MAX_TENSORS], vt[MAX_TENSORS];
	size_t n = ppo_net_tensors(net, net->p, pt, MAX_TENSORS);
	ppo_net_tensors(net, net->m, mt, MAX_TENSORS);
	ppo_net_tensors(net, net->v, vt, MAX_TENSORS);
	for (size_t i = 0; i < n; i++) {
		m[i] = mt[i].t;
		v[i] = vt[i].t;
	}
	return n;
}

static int ckpt_save(ppo_run *r, const char *path, train_error *err)
{
	train_named_tensor pt[MAX_TENSORS];
	train_tensor m[MAX_TENSORS], v[MAX_TENSORS];
	size_t n = ckpt_tensors(&r->P->net, pt, m, v);
	blob b = { 0 };
	int rc = run_state(r, &b);
	char *hex = rc ? NULL : to_hex(b.p, b.n);
	free(b.p);
	if (!rc && !hex)
		rc = TRAIN_ENOMEM;
	if (!rc) {
		const char *meta[] = { "ppo_state", hex, NULL };
		rc = train_checkpoint_save(path, pt, m, v, n, r->adam_t, &r->rng, meta, err);
	}
	free(hex);
	return rc;
}

static int ckpt_load(ppo_run *r, const char *path, train_error *err)
{
	train_named_tensor pt[MAX_TENSORS];
	train_tensor m[MAX_TENSORS], v[MAX_TENSORS];
	size_t n = ckpt_tensors(&r->P->net, pt, m, v);
	train_safetensors *f = NULL;
	int64_t step = 0;
	int rc = train_checkpoint_load(path, pt, m, v, n, &step, &r->rng, &f, err);
	if (rc)
		return rc;
	const char *hex = train_safetensors_meta(f, "ppo_state");
	unsigned char *p = NULL;
	size_t len = 0;
	rc = hex ? from_hex(hex, &p, &len) : TRAIN_ECORRUPT;
	if (!rc)
		rc = load_run_state(r, p, len);
	if (!rc && step != r->adam_t)
		rc = TRAIN_ECORRUPT;
	if (rc)
		train_error_set(err, rc, path, 0, 0, "not a PPO checkpoint of this run");
	free(p);
	train_safetensors_close(f);
	return rc;
}

/* ---- the report ------------------------------------------------------------------ */

static int make_report(ppo_run *r, double seconds, double cpu)
{
	char buf[1024], solved[160] = "null", ssec[64] = "null", scpu[64] = "null";
	if (r->solved_step >= 0) {
		snprintf(solved, sizeof solved, "%lld", (long long)r->solved_step);
		snprintf(ssec, sizeof ssec, "%.3f", r->solved_sec);
		snprintf(scpu, sizeof scpu, "%.3f", r->solved_cpu);
	}
	double m = window_mean(r);
	char mean[64], sr[64] = "null";
	if (!isnan(r->P->cfg.solved_return))
		snprintf(sr, sizeof sr, "%.17g", r->P->cfg.solved_return);
	if (isnan(m))
		snprintf(mean, sizeof mean, "null");
	else
		snprintf(mean, sizeof mean, "%.3f", m);
	snprintf(buf, sizeof buf,
	         "{\"env\": \"%s\", \"iterations\": %lld, \"steps\": %lld, \"episodes\": %lld, "
	         "\"mean_return_100\": %s, \"solved_return\": %s, \"solved_at_step\": %s, "
	         "\"solved_at_seconds\": %s, \"solved_at_cpu_seconds\": %s, \"seconds\": %.3f, "
	         "\"steps_per_second\": %.1f, \"cpu_seconds\": %.3f, \"steps_per_cpu_second\": %.1f, "
	         "\"kernels\": \"%s\"}",
	         r->P->cfg.env, (long long)r->iter, (long long)r->global_step,
	         (long long)r->n_episodes, mean,
	         sr, solved, ssec, scpu, seconds,
	         seconds > 0 ? (double)r->global_step / seconds : 0.0, cpu,
	         cpu > 0 ? (double)r->global_step / cpu : 0.0, r->P->net.kern->isa);
	free(r->P->report);
	r->P->report = strdup(buf);
	return r->P->report ? TRAIN_OK : TRAIN_ENOMEM;
}

/* ---- the component ---------------------------------------------------------------- */

static void ppo_destroy(void *self)
{
	ppo *P = self;
	if (!P)
		return;
	if (P->have_net)
		ppo_net_free(&P->net);
	free(P->cfg.env_flow);
	free(P->report);
	free(P);
}

static int ppo_create(const train_config *config, train_ctx *ctx, void **self)
{
	ppo *P = calloc(1, sizeof *P);
	if (!P)
		return TRAIN_ENOMEM;
	int rc = read_cfg(config, &P->cfg, ctx);
	if (rc) {
		ppo_destroy(P);
		return rc;
	}
	/* Not found is not an error yet: training says so (a loaded model
	 * takes its environment from ppo.json instead). */
	if (train_ctx_find_env(ctx, P->cfg.env, &P->ecls))
		P->ecls = NULL;
	*self = P;
	return TRAIN_OK;
}

/* The environment's class and version decide the output too. */
static int ppo_fingerprint(void *self, train_hasher *h)
{
	ppo *P = self;
	train_hasher_str(h, P->ecls ? P->ecls->name : "");
	train_hasher_str(h, P->ecls ? P->ecls->version : "");
	return TRAIN_OK;
}

/* The whole training, with checkpoints in `ckdir` (may be NULL); `resume`:
 * continue from its checkpoint if there is one; `stop_after`: return after
 * that many iterations of this session (tests; <= 0: run to the end). */
static int ppo_train_run(ppo *P, train_ctx *ctx, const char *ckdir, int resume,
                         int64_t stop_after, const char *isa)
{
	ppo_run r;
	int rc = run_init(&r, P, ctx, isa);
	char *ck = NULL;
	double t0 = now_sec(), c0 = cpu_sec();
	if (rc)
		goto out;
	if (ckdir && r.ecls->save_state && r.ecls->load_state && P->cfg.checkpoint_every > 0) {
		size_t len = strlen(ckdir) + sizeof CKPT_NAME + 2;
		if (!(ck = malloc(len))) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		snprintf(ck, len, "%s/%s", ckdir, CKPT_NAME);
		FILE *f = resume ? fopen(ck, "rb") : NULL;
		if (f) {
			fclose(f);
			train_error err = { 0 };
			if ((rc = ckpt_load(&r, ck, &err))) {
				rc = train_fail(ctx, "cannot resume: %s", err.text);
				goto out;
			}
			train_log(ctx, TRAIN_LOG_INFO, "resuming at iteration %lld of %lld",
			          (long long)r.iter, (long long)r.num_iter);
		}
	}
	int64_t done_here = 0;
	while (r.iter < r.num_iter) {
		if (train_ctx_canceled(ctx)) {
			/* interrupted: keep where we are for --resume */
			train_error err = { 0 };
			r.elapsed += now_sec() - t0;
			r.cpu += cpu_sec() - c0;
			if (ck && done_here > 0 && ckpt_save(&r, ck, &err))
				train_log(ctx, TRAIN_LOG_WARN, "checkpoint: %s", err.text);
			rc = TRAIN_ECANCELED;
			goto out;
		}
		int64_t before = r.solved_step;
		if ((rc = run_iteration(&r, ctx)))
			goto out;
		if (before < 0 && r.solved_step >= 0) {
			r.solved_sec = r.elapsed + (now_sec() - t0);
			r.solved_cpu = r.cpu + (cpu_sec() - c0);
		}
		train_progress(ctx, (uint64_t)r.iter, (uint64_t)r.num_iter);
		done_here++;
		if (ck && (r.iter % P->cfg.checkpoint_every == 0 || (stop_after > 0 && done_here >= stop_after))) {
			train_error err = { 0 };
			double el = r.elapsed, cp = r.cpu;
			r.elapsed = el + (now_sec() - t0);
			r.cpu = cp + (cpu_sec() - c0);
			rc = ckpt_save(&r, ck, &err);
			r.elapsed = el;
			r.cpu = cp;
			if (rc) {
				rc = train_fail(ctx, "checkpoint: %s", err.text);
				goto out;
			}
		}
		if (stop_after > 0 && done_here >= stop_after)
			break;
	}
	rc = make_report(&r, r.elapsed + (now_sec() - t0), r.cpu + (cpu_sec() - c0));
	if (!rc)
		train_log(ctx, TRAIN_LOG_INFO, "%s", P->report);
out:
	free(ck);
	run_free(&r);
	return rc;
}

static int ppo_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	(void)in;
	ppo *P = self;
	int rc = ppo_train_run(P, ctx, train_ctx_checkpoint_dir(ctx), train_ctx_resuming(ctx), 0,
	                       NULL);
	if (rc)
		return rc;
	return train_values_put_bytes(out, "report", REPORT_TYPE, P->report, strlen(P->report));
}

static int ppo_persist(void *self, train_resource *res)
{
	ppo *P = self;
	if (!P->have_net)
		return TRAIN_EINVAL;
	train_named_tensor t[MAX_TENSORS];
	size_t n = ppo_net_tensors(&P->net, P->net.p, t, MAX_TENSORS);
	const char *dir = train_resource_dir(res);
	size_t len = strlen(dir) + 32;
	char *path = malloc(len);
	if (!path)
		return TRAIN_ENOMEM;
	snprintf(path, len, "%s/policy.safetensors", dir);
	int rc = train_safetensors_write(path, t, n, NULL, NULL);
	free(path);
	if (rc)
		return rc;
	char *flow = P->cfg.env_flow;
	char *esc = NULL;
	if (flow) { /* a JSON string of the flow text */
		esc = malloc(2 * strlen(flow) + 3);
		if (!esc)
			return TRAIN_ENOMEM;
		char *o = esc;
		*o++ = '"';
		for (const char *s = flow; *s; s++) {
			if (*s == '"' || *s == '\\')
				*o++ = '\\';
			*o++ = *s;
		}
		*o++ = '"';
		*o = '\0';
	}
	char meta[2048];
	int m = snprintf(meta, sizeof meta,
	                 "{\"format\": 1, \"obs_dim\": %d, \"actions\": %d, \"gaussian\": %s, "
	                 "\"hidden_dim\": %d, \"shared\": %s, \"env\": \"%s\", \"env_config\": %s, "
	                 "\"report\": %s}\n",
	                 P->D, P->K, P->gaussian ? "true" : "false", P->net.H,
	                 P->cfg.shared ? "true" : "false", P->cfg.env, esc ? esc : "null",
	                 P->report ? P->report : "null");
	free(esc);
	if (m < 0 || (size_t)m >= sizeof meta)
		return TRAIN_EINVAL;
	return train_resource_write(res, "ppo.json", meta, (size_t)m);
}

/* A JSON integer or bool after "key": in a small flat object we wrote. */
static int json_num(const char *j, const char *key, double *out)
{
	char pat[64];
	snprintf(pat, sizeof pat, "\"%s\":", key);
	const char *p = strstr(j, pat);
	if (!p)
		return -1;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	if (!strncmp(p, "true", 4)) {
		*out = 1;
		return 0;
	}
	if (!strncmp(p, "false", 5)) {
		*out = 0;
		return 0;
	}
	char *end;
	*out = strtod(p, &end);
	return end == p ? -1 : 0;
}

/* A JSON string value after "key": (our own writing: only \" and \\ escapes). */
static char *json_str(const char *j, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof pat, "\"%s\":", key);
	const char *p = strstr(j, pat);
	if (!p)
		return NULL;
	p += strlen(pat);
	while (*p == ' ')
		p++;
	if (*p != '"')
		return NULL;
	p++;
	char *s = malloc(strlen(p) + 1), *o = s;
	if (!s)
		return NULL;
	for (; *p && *p != '"'; p++) {
		if (*p == '\\' && p[1])
			p++;
		*o++ = *p;
	}
	*o = '\0';
	return s;
}

static int ppo_load(const train_config *config, const train_resource *res, train_ctx *ctx,
                    void **self)
{
	void *data = NULL;
	size_t size = 0;
	int rc = ppo_create(config, ctx, self);
	if (rc)
		return rc;
	ppo *P = *self;
	if ((rc = train_resource_read(res, "ppo.json", &data, &size)))
		goto fail;
	double D, K, g, H, sh;
	const char *j = data;
	if (json_num(j, "obs_dim", &D) || json_num(j, "actions", &K) || json_num(j, "gaussian", &g) ||
	    json_num(j, "hidden_dim", &H) || json_num(j, "shared", &sh) || D < 1 || D > 1 << 20 ||
	    K < 1 || K > 1 << 20 || H < 8 || H > 4096) {
		rc = train_fail(ctx, "ppo.json: missing or bad shapes");
		goto fail;
	}
	char *env = json_str(j, "env");
	if (!env || strlen(env) >= sizeof P->cfg.env) {
		free(env);
		rc = train_fail(ctx, "ppo.json: no environment");
		goto fail;
	}
	snprintf(P->cfg.env, sizeof P->cfg.env, "%s", env);
	free(env);
	free(P->cfg.env_flow);
	P->cfg.env_flow = json_str(j, "env_config");
	P->cfg.shared = sh != 0;
	P->D = (int)D;
	P->K = (int)K;
	P->gaussian = g != 0;
	if ((rc = ppo_net_init(&P->net, P->D, P->K, (int)H, P->cfg.shared, P->gaussian, 1, NULL))) {
		rc = train_fail(ctx, "network: %s", train_strerror(rc));
		goto fail;
	}
	P->have_net = 1;
	const char *dir = train_resource_dir(res);
	size_t len = strlen(dir) + 32;
	char *path = malloc(len);
	if (!path) {
		rc = TRAIN_ENOMEM;
		goto fail;
	}
	snprintf(path, len, "%s/policy.safetensors", dir);
	train_named_tensor t[MAX_TENSORS];
	size_t n = ppo_net_tensors(&P->net, P->net.p, t, MAX_TENSORS);
	train_error err = { 0 };
	train_safetensors *f = NULL;
	rc = train_safetensors_open(path, &f, &err);
	free(path);
	for (size_t i = 0; !rc && i < n; i++) {
		train_tensor v;
		if ((rc = train_safetensors_get(f, t[i].name, &v)) || v.dtype != TRAIN_F32 ||
		    train_tensor_numel(&v) != train_tensor_numel(&t[i].t) || v.ndim != t[i].t.ndim) {
			rc = train_fail(ctx, "policy.safetensors: tensor %s missing or of another shape",
			                t[i].name);
			break;
		}
		memcpy(t[i].t.data, v.data, train_tensor_nbytes(&v));
	}
	if (!rc && train_safetensors_count(f) != n)
		rc = train_fail(ctx, "policy.safetensors: more tensors than the network has");
	train_safetensors_close(f);
	if (rc && err.text[0])
		train_fail(ctx, "%s", err.text);
	if (rc)
		goto fail;
	free(data);
	return TRAIN_OK;
fail:
	free(data);
	ppo_destroy(P);
	*self = NULL;
	return rc;
}

/* Run `episodes` episodes of the policy in one copy of its environment. */
static int ppo_evaluate(ppo *P, train_ctx *ctx, int64_t episodes, uint64_t seed, int det,
                        double *returns)
{
	const train_env_class *cls;
	void *env = NULL;
	int rc = open_env(&P->cfg, 1, ctx, &cls, &env);
	if (rc)
		return rc;
	int D, K, g;
	if ((rc = env_shape(cls, env, &D, &K, &g, ctx)))
		goto out;
	if (D != P->D || K != P->K || g != P->gaussian) {
		rc = train_fail(ctx, "environment %s does not fit the policy's shapes", cls->name);
		goto out;
	}
	float obs[4096], act_f[4096], rew;
	int32_t act_i;
	uint8_t term, trunc;
	if (D > 4096 || K > 4096) {
		rc = train_fail(ctx, "observations or actions too wide");
		goto out;
	}
	train_rng rng;
	train_rng_seed(&rng, seed ^ 0x9e3779b97f4a7c15ull);
	if ((rc = cls->reset(env, seed, obs)))
		goto out;
	double ret = 0;
	for (int64_t e = 0; e < episodes;) {
		ppo_net_forward(&P->net, obs, 1, 0);
		sample(&P->net, &rng, 1, det, &act_i, act_f, NULL);
		if ((rc = cls->step(env, g ? (const void *)act_f : (const void *)&act_i, obs, &rew, &term,
		                    &trunc, NULL)))
			goto out;
		ret += rew;
		if (term || trunc) {
			returns[e++] = ret;
			ret = 0;
		}
		if (train_ctx_canceled(ctx)) {
			rc = TRAIN_ECANCELED;
			goto out;
		}
	}
out:
	if (env)
		cls->destroy(env);
	return rc;
}

static int ppo_process(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	ppo *P = self;
	const train_value *v = train_values_get(in, "episodes");
	double ep = 100, seed = 0, det = 1;
	if (v) {
		size_t n = train_value_size(v);
		char *j = malloc(n + 1);
		if (!j)
			return TRAIN_ENOMEM;
		memcpy(j, train_value_data(v), n);
		j[n] = '\0';
		char *end;
		double plain = strtod(j, &end);
		if (end != j && *end == '\0')
			ep = plain;
		else {
			json_num(j, "episodes", &ep);
			json_num(j, "seed", &seed);
			json_num(j, "deterministic", &det);
		}
		free(j);
	}
	if (!(ep >= 1 && ep <= 1e7) || !(seed >= 0))
		return train_fail(ctx, "episodes must be in [1, 1e7] and seed >= 0");
	int64_t n = (int64_t)ep;
	double *r = malloc(sizeof(double) * (size_t)n);
	if (!r)
		return TRAIN_ENOMEM;
	int rc = ppo_evaluate(P, ctx, n, (uint64_t)seed, det != 0, r);
	if (rc) {
		free(r);
		return rc;
	}
	double mean = 0, var = 0, mn = INFINITY, mx = -INFINITY;
	for (int64_t i = 0; i < n; i++) {
		mean += r[i];
		mn = r[i] < mn ? r[i] : mn;
		mx = r[i] > mx ? r[i] : mx;
	}
	mean /= (double)n;
	for (int64_t i = 0; i < n; i++)
		var += (r[i] - mean) * (r[i] - mean);
	double sd = sqrt(var / (double)n);
	size_t cap = 256 + (size_t)n * 32;
	char *j = malloc(cap);
	if (!j) {
		free(r);
		return TRAIN_ENOMEM;
	}
	size_t at = (size_t)snprintf(j, cap,
	                             "{\"env\": \"%s\", \"episodes\": %lld, \"mean\": %.6g, "
	                             "\"std\": %.6g, \"min\": %.6g, \"max\": %.6g, \"returns\": [",
	                             P->cfg.env, (long long)n, mean, sd, mn, mx);
	for (int64_t i = 0; i < n && at < cap; i++)
		at += (size_t)snprintf(j + at, cap - at, "%s%.6g", i ? ", " : "", r[i]);
	if (at < cap)
		at += (size_t)snprintf(j + at, cap - at, "]}");
	free(r);
	rc = at < cap ? train_values_put_bytes(out, "returns", REPORT_TYPE, j, at) : TRAIN_ENOMEM;
	free(j);
	return rc;
}

static const char *const ppo_outputs[] = { "report", NULL };
static const char *const ppo_process_inputs[] = { "episodes", NULL };
static const char *const ppo_process_outputs[] = { "returns", NULL };

static const train_component_class ppo_class = {
	.struct_size = sizeof(train_component_class),
	.name = "PPO",
	.version = "1",
	.doc = "PPO (CleanRL's ppo.py) on an environment plugin's class; categorical or Gaussian",
	.inputs = NULL,
	.outputs = ppo_outputs,
	.process_inputs = ppo_process_inputs,
	.process_outputs = ppo_process_outputs,
	.params = ppo_params,
	.create = ppo_create,
	.fingerprint = ppo_fingerprint,
	.train = ppo_train,
	.process = ppo_process,
	.persist = ppo_persist,
	.load = ppo_load,
	.destroy = ppo_destroy,
};

static const train_component_class *const ppo_classes[] = { &ppo_class, NULL };

#ifndef PPO_NO_DESCRIPTOR
TRAIN_PLUGIN_DEFINE("ppo", "1.0.0", "MIT", "Proximal policy optimisation (CleanRL's ppo.py)",
                    ppo_classes);
#endif
