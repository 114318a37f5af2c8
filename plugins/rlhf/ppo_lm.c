/*
 * plugins/rlhf/ppo_lm.c - RlhfPPO (issue 9): PPO on a Mamba language model
 * against a reward model, with a per-token KL penalty to the frozen SFT
 * model (Ziegler et al., 2019), as trl's PPOTrainer does it:
 *
 *   each step: batch_size prompts; a response sampled from the policy for
 *   each (stopping at END OF TEXT or max_new_tokens); old log-probabilities
 *   and values from the policy, reference log-probabilities from the SFT
 *   model, the reward model's score of question + response; per-token
 *   rewards -beta (logp - ref_logp) with the score added at the last token;
 *   GAE (gamma, lam) over the response's tokens (plugins/ppo/gae.c);
 *   advantages whitened; ppo_epochs passes of minibatches of the clipped
 *   surrogate plus vf_coef * the clipped value loss; then beta follows the
 *   adaptive KL controller (target_kl, horizon).
 *
 * The value head is a linear layer (D -> 1) on the policy's final hidden
 * states, trained with it.  Held-out evaluation (before and after): one
 * response per held-out prompt, sampled with the same seed each time; the
 * mean reward and the mean KL to the SFT model (sum over the response of
 * logp - ref_logp) go into `metrics`, with the reward of the gold answers
 * for scale.
 *
 * Checkpoints: with a checkpoint folder from the host
 * (train_ctx_checkpoint_dir) the run writes rlhf_ppo.ckpt.safetensors
 * every checkpoint_every PPO steps and when it is interrupted
 * (train_checkpoint_save: temporary name, then rename): the policy, the
 * value head, their Adam moments and step, the sampling RNG, the KL
 * controller's beta, the per-step metrics so far and the "before"
 * evaluation.  An interruption during a step's sampling (which changes
 * nothing but the RNG) saves the state at that step's start; the update
 * after it runs to its end.  `train --resume` continues from it, and the
 * result is bit for bit the one of an uninterrupted run (tests/test_rlhf.c).
 */
#include "rlhf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- log-probabilities and the loss ---------------------------------------- */

static int32_t *gather(const rlhf_batch *b, const int *rows, int nrows)
{
	int32_t *ids = malloc((size_t)nrows * b->T * sizeof *ids);
	if (ids)
		for (int i = 0; i < nrows; i++)
			memcpy(ids + (size_t)i * b->T, b->ids + (size_t)rows[i] * b->T,
			       (size_t)b->T * sizeof *ids);
	return ids;
}

static float row_lse(const float *z, int V)
{
	float m = z[0];
	for (int k = 1; k < V; k++)
		m = z[k] > m ? z[k] : m;
	float s = 0;
	for (int k = 0; k < V; k++)
		s += expf(z[k] - m);
	return m + logf(s);
}

int rlhf_action_logp(mamba_model *m, const float *vhead, const rlhf_batch *b, const int *rows,
                     int nrows, float *logp, float *val)
{
	int32_t *ids = gather(b, rows, nrows);
	if (!ids)
		return TRAIN_ENOMEM;
	int rc = mamba_forward_hidden(m, ids, nrows, b->T, 1), V = m->d.V, D = m->d.D;
	if (!rc) {
		const float *lg = mamba_logits(m), *h = mamba_hidden(m);
		for (int i = 0; i < nrows; i++) {
			int r = rows[i];
			for (int j = 0; j < b->Lm; j++) {
				size_t a = (size_t)r * b->Lm + j;
				if (j >= b->rlen[r]) {
					logp[a] = 0;
					if (val)
						val[a] = 0;
					continue;
				}
				size_t pos = (size_t)i * b->T + (size_t)(b->plen[r] - 1 + j);
				const float *z = lg + pos * V;
				int32_t act = b->ids[(size_t)r * b->T + b->plen[r] + j];
				logp[a] = z[act] - row_lse(z, V);
				if (val) {
					float v = vhead[D];
					for (int c = 0; c < D; c++)
						v += vhead[c] * h[pos * D + c];
					val[a] = v;
				}
			}
		}
	}
	free(ids);
	return rc;
}

int rlhf_ppo_loss_grad(rlhf_policy *p, const rlhf_batch *b, const int *rows, int nrows,
                       const rlhf_ppo_coefs *c, double *pg, double *vf, double *approx_kl,
                       double *clipfrac)
{
	mamba_model *m = p->m;
	int V = m->d.V, D = m->d.D, T = b->T;
	int32_t *ids = gather(b, rows, nrows);
	float *dh = calloc((size_t)nrows * T * D, sizeof *dh);
	int rc = ids && dh ? mamba_forward_hidden(m, ids, nrows, T, 1) : TRAIN_ENOMEM;
	if (rc)
		goto out;
	/* the logits become their gradient in place (backward reads no logits) */
	float *lg = (float *)mamba_logits(m);
	const float *h = mamba_hidden(m);
	int nact = 0;
	for (int i = 0; i < nrows; i++)
		nact += b->rlen[rows[i]];
	float inv = nact ? 1.0f / (float)nact : 0.0f;
	double pg_sum = 0, v_sum = 0, kl_sum = 0, clipped = 0;
	for (int i = 0; i < nrows; i++) {
		int r = rows[i];
		for (int t = 0; t < T; t++) {
			int j = t - (b->plen[r] - 1);
			size_t pos = (size_t)i * T + t;
			float *z = lg + pos * V;
			if (j < 0 || j >= b->rlen[r]) {
				memset(z, 0, (size_t)V * sizeof *z);
				continue;
			}
			size_t a = (size_t)r * b->Lm + j;
			int32_t act = b->ids[(size_t)r * T + b->plen[r] + j];
			float lse = row_lse(z, V), lp = z[act] - lse;
			float logratio = lp - b->logp[a], ratio = expf(logratio), dratio;
			pg_sum += ppo_clipped_pg(b->adv[a], ratio, c->clip, &dratio);
			kl_sum += (ratio - 1.0f) - logratio;
			clipped += fabsf(ratio - 1.0f) > c->clip;
			float dlogp = dratio * ratio * inv;
			for (int k = 0; k < V; k++)
				z[k] = dlogp * ((k == act) - expf(z[k] - lse));
			/* the value */
			const float *hp = h + pos * D;
			float v = p->vhead[D], dv;
			for (int q = 0; q < D; q++)
				v += p->vhead[q] * hp[q];
			v_sum += 0.5 * ppo_clipped_vloss(v, b->val[a], b->ret[a], c->clip_value, &dv);
			float g = c->vf_coef * 0.5f * dv * inv;
			for (int q = 0; q < D; q++) {
				dh[pos * D + q] = g * p->vhead[q];
				p->dvhead[q] += g * hp[q];
			}
			p->dvhead[D] += g;
		}
	}
	rc = mamba_backward_from(m, ids, lg, dh, nrows, T);
	if (pg)
		*pg = nact ? pg_sum / nact : 0;
	if (vf)
		*vf = nact ? v_sum / nact : 0;
	if (approx_kl)
		*approx_kl = nact ? kl_sum / nact : 0;
	if (clipfrac)
		*clipfrac = nact ? clipped / nact : 0;
out:
	free(ids);
	free(dh);
	return rc;
}

/* ---- the component ------------------------------------------------------------- */

static const train_param ppo_params[] = {
	{ "num_rl_steps", TRAIN_PARAM_INT, "20", "PPO steps (rollout + update); settings training.num_rl_steps" },
	{ "batch_size", TRAIN_PARAM_INT, "8", "prompts (sampled responses) per step" },
	{ "minibatch_size", TRAIN_PARAM_INT, "4", "responses per gradient step" },
	{ "ppo_epochs", TRAIN_PARAM_INT, "4", "passes over each batch" },
	{ "max_new_tokens", TRAIN_PARAM_INT, "64", "longest sampled response" },
	{ "max_prompt_tokens", TRAIN_PARAM_INT, "512", "prompts keep their last this many tokens" },
	{ "temperature", TRAIN_PARAM_FLOAT, "1.0", "sampling temperature (> 0)" },
	{ "learning_rate", TRAIN_PARAM_FLOAT, "0.0001", "Adam's rate" },
	{ "clip_range", TRAIN_PARAM_FLOAT, "0.2", "the surrogate's ratio clip" },
	{ "clip_range_value", TRAIN_PARAM_FLOAT, "0.2", "the value loss's clip" },
	{ "vf_coef", TRAIN_PARAM_FLOAT, "0.1", "weight of the value loss" },
	{ "gamma", TRAIN_PARAM_FLOAT, "1.0", "discount over tokens" },
	{ "lam", TRAIN_PARAM_FLOAT, "0.95", "GAE's lambda" },
	{ "init_kl_coef", TRAIN_PARAM_FLOAT, "0.2", "the KL penalty's first beta" },
	{ "adaptive_kl", TRAIN_PARAM_BOOL, "true", "adapt beta toward target_kl (Ziegler et al.)" },
	{ "target_kl", TRAIN_PARAM_FLOAT, "6.0", "the KL per response the controller aims at" },
	{ "horizon", TRAIN_PARAM_FLOAT, "10000", "the controller's horizon (responses)" },
	{ "max_grad_norm", TRAIN_PARAM_FLOAT, "1.0", "gradient norm clip" },
	{ "reward_max_length", TRAIN_PARAM_INT, "512", "tokens of question + response the reward model reads" },
	{ "eval_prompts", TRAIN_PARAM_INT, "0", "held-out prompts evaluated (0: all)" },
	{ "seed", TRAIN_PARAM_INT, "42", "seed of the sampling and the order" },
	{ "checkpoint_every", TRAIN_PARAM_INT, "5", "PPO steps between checkpoints (0: none)" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};
static const char *const ppo_inputs[] = { "policy", "reward", "prompts", "heldout", NULL };
static const char *const ppo_outputs[] = { "model", "metrics", NULL };
static const char *const ppo_proc_in[] = { "prompt", "seed", NULL };
static const char *const ppo_proc_out[] = { "text", NULL };

typedef struct pc {
	int64_t steps, batch, mb, epochs, max_new, max_prompt, rm_len, eval_prompts, seed, ck_every;
	double temp, lr, clip, clip_v, vf, gamma, lam, kl0, target, horizon, max_norm;
	int adaptive;
	/* trained */
	rlhf_policy pol;
	int32_t *vocab;
	int nvocab;
	char *metrics;
} pc;

static void pc_destroy(void *self)
{
	pc *c = self;
	if (!c)
		return;
	mamba_model_destroy(c->pol.m);
	free(c->pol.vhead);
	free(c->pol.dvhead);
	free(c->vocab);
	free(c->metrics);
	free(c);
}

static int pc_create(const train_config *cfg, train_ctx *ctx, void **self)
{
	pc *c = calloc(1, sizeof *c);
	*self = NULL;
	if (!c)
		return TRAIN_ENOMEM;
	c->steps = train_config_int(cfg, "num_rl_steps");
	c->batch = train_config_int(cfg, "batch_size");
	c->mb = train_config_int(cfg, "minibatch_size");
	c->epochs = train_config_int(cfg, "ppo_epochs");
	c->max_new = train_config_int(cfg, "max_new_tokens");
	c->max_prompt = train_config_int(cfg, "max_prompt_tokens");
	c->rm_len = train_config_int(cfg, "reward_max_length");
	c->eval_prompts = train_config_int(cfg, "eval_prompts");
	c->seed = train_config_int(cfg, "seed");
	c->ck_every = train_config_int(cfg, "checkpoint_every");
	c->temp = train_config_float(cfg, "temperature");
	c->lr = train_config_float(cfg, "learning_rate");
	c->clip = train_config_float(cfg, "clip_range");
	c->clip_v = train_config_float(cfg, "clip_range_value");
	c->vf = train_config_float(cfg, "vf_coef");
	c->gamma = train_config_float(cfg, "gamma");
	c->lam = train_config_float(cfg, "lam");
	c->kl0 = train_config_float(cfg, "init_kl_coef");
	c->target = train_config_float(cfg, "target_kl");
	c->horizon = train_config_float(cfg, "horizon");
	c->max_norm = train_config_float(cfg, "max_grad_norm");
	c->adaptive = train_config_bool(cfg, "adaptive_kl");
	const char *bad = NULL;
	if (c->steps < 0 || c->batch < 1 || c->batch > 4096 || c->mb < 1 || c->epochs < 1 ||
	    c->ck_every < 0)
		bad = "num_rl_steps and checkpoint_every must not be negative; batch_size, minibatch_size "
		      "and ppo_epochs at least 1";
	else if (c->max_new < 1 || c->max_new > 65536 || c->max_prompt < 1 || c->max_prompt > 65536 ||
	         c->rm_len < 2 || c->rm_len > 65536)
		bad = "max_new_tokens, max_prompt_tokens and reward_max_length must be from 1 (2) to 65536";
	else if (!(c->temp > 0) || !(c->lr > 0 && c->lr < 10) || !(c->clip > 0) || !(c->clip_v > 0) ||
	         !(c->vf >= 0) || !(c->gamma >= 0 && c->gamma <= 1) || !(c->lam >= 0 && c->lam <= 1) ||
	         !(c->kl0 >= 0) || !(c->target > 0) || !(c->horizon > 0) || !(c->max_norm > 0) ||
	         c->eval_prompts < 0)
		bad = "temperature, learning_rate, the clips, target_kl, horizon and max_grad_norm must be "
		      "positive; vf_coef and init_kl_coef not negative; gamma and lam in [0, 1]";
	if (bad) {
		pc_destroy(c);
		return train_fail(ctx, "%s", bad);
	}
	if (c->mb > c->batch)
		c->mb = c->batch;
	*self = c;
	return TRAIN_OK;
}

/* Sample from logits (V) at temperature t, never id 0. */
static int32_t sample_id(const float *z, int V, double t, float *w, train_rng *r)
{
	float m = z[1];
	for (int k = 2; k < V; k++)
		m = z[k] > m ? z[k] : m;
	double s = 0;
	w[0] = 0;
	for (int k = 1; k < V; k++) {
		w[k] = (float)exp((z[k] - m) / t);
		s += w[k];
	}
	double u = train_rng_uniform(r) * s, acc = 0;
	for (int k = 1; k < V; k++) {
		acc += w[k];
		if (u < acc)
			return k;
	}
	return V - 1;
}

typedef struct ctxs {
	pc *c;
	train_ctx *ctx;
	mamba_model *ref;
	rlhf_rm *rm;
	int32_t *rm_vocab;
	int rm_nvocab;
	int32_t eot;
} ctxs;

/* Prompt ids of a record (the last max_prompt tokens). */
static int prompt_ids(const pc *c, const char *prompt, int32_t **out, int *n)
{
	int32_t *ids = malloc((strlen(prompt) + 2) * sizeof *ids);
	if (!ids)
		return TRAIN_ENOMEM;
	int k = rlhf_encode(prompt, c->vocab, c->nvocab, ids, (int)strlen(prompt) + 1);
	if (k < 0) {
		free(ids);
		return TRAIN_ENOMEM;
	}
	if (k == 0) /* an empty prompt: a line end, or the first character */
		ids[k++] = mamba_char_id(c->vocab, c->nvocab, '\n') ? mamba_char_id(c->vocab, c->nvocab, '\n') : 1;
	if (k > c->max_prompt) {
		memmove(ids, ids + (k - c->max_prompt), (size_t)c->max_prompt * sizeof *ids);
		k = (int)c->max_prompt;
	}
	*out = ids;
	*n = k;
	return TRAIN_OK;
}

static void batch_free(rlhf_batch *b)
{
	free(b->ids);
	free(b->plen);
	free(b->rlen);
	free(b->logp);
	free(b->ref_logp);
	free(b->val);
	free(b->adv);
	free(b->ret);
	free(b->rew);
	free(b->mask);
	free(b->score);
	memset(b, 0, sizeof *b);
}

/*
 * Sample one response for each of the n records idx[] (rng), score them,
 * and fill b (logp and values under the policy, ref_logp under ref).
 */
static int rollout(ctxs *X, const rlhf_jl *recs, const size_t *idx, int n, train_rng *rng,
                   rlhf_batch *b)
{
	pc *c = X->c;
	mamba_model *m = c->pol.m;
	int V = m->d.V, rc = TRAIN_OK;
	int32_t **pids = calloc((size_t)n, sizeof *pids), **rids = calloc((size_t)n, sizeof *rids);
	float *w = malloc((size_t)V * sizeof *w);
	mamba_state st = { 0 };
	memset(b, 0, sizeof *b);
	b->B = n;
	b->plen = calloc((size_t)n, sizeof *b->plen);
	b->rlen = calloc((size_t)n, sizeof *b->rlen);
	b->score = calloc((size_t)n, sizeof *b->score);
	if (!pids || !rids || !w || !b->plen || !b->rlen || !b->score ||
	    (rc = mamba_state_create(m, &st)))
		goto out;
	for (int i = 0; i < n && !rc; i++) {
		const json_t *o = recs->o[idx[i]];
		if ((rc = prompt_ids(c, rlhf_jstr(o, "prompt"), &pids[i], &b->plen[i])))
			break;
		if (!(rids[i] = malloc((size_t)c->max_new * sizeof *rids[i]))) {
			rc = TRAIN_ENOMEM;
			break;
		}
		/* fresh state: zero it */
		memset(st.conv, 0, (size_t)m->d.n_layers * (m->d.K - 1) * m->d.Di * sizeof(float));
		memset(st.ssm, 0, (size_t)m->d.n_layers * m->d.Di * m->d.NS * sizeof(float));
		for (int t = 0; t < b->plen[i] && !rc; t++)
			rc = mamba_step(m, &st, pids[i][t]);
		int L = 0;
		while (!rc && L < c->max_new) {
			int32_t id = sample_id(st.logits, V, c->temp, w, rng);
			rids[i][L++] = id;
			if (id == X->eot || L == c->max_new)
				break;
			rc = mamba_step(m, &st, id);
		}
		b->rlen[i] = L;
		if (train_ctx_canceled(X->ctx))
			rc = TRAIN_ECANCELED;
	}
	if (rc)
		goto out;
	/* rows */
	b->T = 1;
	b->Lm = 1;
	for (int i = 0; i < n; i++) {
		b->T = b->plen[i] + b->rlen[i] > b->T ? b->plen[i] + b->rlen[i] : b->T;
		b->Lm = b->rlen[i] > b->Lm ? b->rlen[i] : b->Lm;
	}
	size_t na = (size_t)n * b->Lm;
	b->ids = calloc((size_t)n * b->T, sizeof *b->ids);
	b->logp = calloc(na, sizeof(float));
	b->ref_logp = calloc(na, sizeof(float));
	b->val = calloc(na, sizeof(float));
	b->adv = calloc(na, sizeof(float));
	b->ret = calloc(na, sizeof(float));
	b->rew = calloc(na, sizeof(float));
	b->mask = calloc(na, 1);
	int *rows = malloc((size_t)n * sizeof *rows);
	if (!b->ids || !b->logp || !b->ref_logp || !b->val || !b->adv || !b->ret || !b->rew ||
	    !b->mask || !rows) {
		free(rows);
		rc = TRAIN_ENOMEM;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		rows[i] = i;
		memcpy(b->ids + (size_t)i * b->T, pids[i], (size_t)b->plen[i] * sizeof(int32_t));
		memcpy(b->ids + (size_t)i * b->T + b->plen[i], rids[i], (size_t)b->rlen[i] * sizeof(int32_t));
		memset(b->mask + (size_t)i * b->Lm, 1, (size_t)b->rlen[i]);
	}
	/* log-probabilities in chunks of minibatch_size rows */
	for (int s = 0; s < n && !rc; s += (int)c->mb) {
		int k = n - s < (int)c->mb ? n - s : (int)c->mb;
		if (!(rc = rlhf_action_logp(m, c->pol.vhead, b, rows + s, k, b->logp, b->val)))
			rc = rlhf_action_logp(X->ref, NULL, b, rows + s, k, b->ref_logp, NULL);
	}
	free(rows);
	/* the reward model on question + response */
	for (int i = 0; i < n && !rc; i++) {
		char *text = rlhf_decode(rids[i], b->rlen[i], c->vocab);
		if (!text) {
			rc = TRAIN_ENOMEM;
			break;
		}
		rc = rlhf_rm_score_text(X->rm, X->rm_vocab, X->rm_nvocab, (int)c->rm_len,
		                        rlhf_jstr(recs->o[idx[i]], "question"), text, &b->score[i]);
		free(text);
	}
out:
	for (int i = 0; pids && rids && i < n; i++) {
		free(pids[i]);
		free(rids[i]);
	}
	free(pids);
	free(rids);
	free(w);
	mamba_state_free(&st);
	return rc;
}

/* Rewards, GAE, whitened advantages; the batch's mean KL and score. */
static int advantages(const pc *c, double beta, rlhf_batch *b, double *mean_kl, double *mean_score)
{
	int B = b->B, Lm = b->Lm;
	double kls = 0, ss = 0;
	for (int i = 0; i < B; i++) {
		double kl;
		size_t o = (size_t)i * Lm;
		rlhf_kl_rewards(b->rlen[i], b->logp + o, b->ref_logp + o, b->score[i], (float)beta,
		                b->rew + o, &kl);
		kls += kl;
		ss += b->score[i];
	}
	/* GAE over (Lm steps, B sequences): done at t >= rlen (the response
	 * ended before token t), nothing after the last token */
	size_t na = (size_t)B * Lm;
	float *rew = malloc(na * sizeof *rew), *val = malloc(na * sizeof *val);
	float *adv = malloc(na * sizeof *adv), *ret = malloc(na * sizeof *ret);
	uint8_t *done = malloc(na), *nd = malloc((size_t)B);
	float *nv = calloc((size_t)B, sizeof *nv);
	int rc = rew && val && adv && ret && done && nd && nv ? TRAIN_OK : TRAIN_ENOMEM;
	if (!rc) {
		for (int t = 0; t < Lm; t++)
			for (int e = 0; e < B; e++) {
				size_t q = (size_t)t * B + e, a = (size_t)e * Lm + t;
				rew[q] = b->mask[a] ? b->rew[a] : 0.0f;
				val[q] = b->mask[a] ? b->val[a] : 0.0f;
				done[q] = t >= b->rlen[e];
			}
		memset(nd, 1, (size_t)B);
		ppo_gae(Lm, B, rew, val, done, nv, nd, (float)c->gamma, (float)c->lam, adv, ret);
		for (int t = 0; t < Lm; t++)
			for (int e = 0; e < B; e++) {
				size_t q = (size_t)t * B + e, a = (size_t)e * Lm + t;
				b->adv[a] = b->mask[a] ? adv[q] : 0.0f;
				b->ret[a] = b->mask[a] ? ret[q] : 0.0f;
			}
		rlhf_whiten(b->adv, b->mask, na);
	}
	free(rew);
	free(val);
	free(adv);
	free(ret);
	free(done);
	free(nd);
	free(nv);
	*mean_kl = kls / B;
	*mean_score = ss / B;
	return rc;
}

/* Held-out: one response per prompt (seeded the same each time). */
static int evaluate(ctxs *X, const rlhf_jl *held, double *reward, double *kl, double *len,
                    double *gold)
{
	pc *c = X->c;
	size_t n = c->eval_prompts > 0 && (size_t)c->eval_prompts < held->n ? (size_t)c->eval_prompts
	                                                                    : held->n;
	train_rng rng;
	train_rng_seed(&rng, (uint64_t)c->seed ^ 0x5eed0e7a1ull);
	double rs = 0, ks = 0, ls = 0, gs = 0;
	size_t *idx = malloc((n ? n : 1) * sizeof *idx);
	int rc = idx ? TRAIN_OK : TRAIN_ENOMEM;
	for (size_t s = 0; s < n && !rc; s += (size_t)c->batch) {
		int k = (int)(n - s < (size_t)c->batch ? n - s : (size_t)c->batch);
		rlhf_batch b;
		for (int i = 0; i < k; i++)
			idx[i] = s + (size_t)i;
		if (!(rc = rollout(X, held, idx, k, &rng, &b)))
			for (int i = 0; i < k; i++) {
				rs += b.score[i];
				ls += b.rlen[i];
				for (int j = 0; j < b.rlen[i]; j++)
					ks += b.logp[(size_t)i * b.Lm + j] - b.ref_logp[(size_t)i * b.Lm + j];
				const char *g = rlhf_jstr(held->o[idx[i]], "gold");
				float gsc = 0;
				if (g && !rc)
					rc = rlhf_rm_score_text(X->rm, X->rm_vocab, X->rm_nvocab, (int)c->rm_len,
					                        rlhf_jstr(held->o[idx[i]], "question"), g, &gsc);
				gs += gsc;
			}
		batch_free(&b);
	}
	free(idx);
	*reward = n ? rs / (double)n : NAN;
	*kl = n ? ks / (double)n : NAN;
	*len = n ? ls / (double)n : NAN;
	*gold = n ? gs / (double)n : NAN;
	return rc;
}

static int policy_value(const pc *c, train_value **out, train_ctx *ctx)
{
	int D = c->pol.m->d.D;
	train_named_tensor ex[2] = {
		{ "v_head.weight", { .dtype = TRAIN_F32, .ndim = 2, .shape = { 1, D, 1, 1 }, .data = c->pol.vhead } },
		{ "v_head.bias", { .dtype = TRAIN_F32, .ndim = 1, .shape = { 1, 1, 1, 1 }, .data = c->pol.vhead + D } },
	};
	train_error err = { 0 };
	char msg[1024];
	int rc = mamba_value_make(c->pol.m, c->vocab, c->nvocab, ex, 2, "lm", out, &err);
	return rc && err.text[0] ? train_fail(ctx, "%s", train_error_format(&err, msg, sizeof msg)) : rc;
}

/* ---- checkpoints ------------------------------------------------------------------ */

#define PPO_CKPT "rlhf_ppo.ckpt.safetensors"

/* A run's state between two PPO steps: what a checkpoint holds. */
typedef struct ppo_ck {
	float *mom, *vel, *hm, *hv; /* Adam's moments of the policy, the value head */
	int64_t done;               /* PPO steps done */
	int64_t opt_step;           /* Adam steps */
	double beta;                /* the KL controller's value */
	double before[4];           /* held-out reward, KL, length, gold reward before PPO */
	json_t *steps;              /* the metrics of each step done */
} ppo_ck;

static void ck_tensors(const pc *c, const ppo_ck *k, train_named_tensor pt[2], train_tensor m[2],
                       train_tensor v[2])
{
	int64_t np = (int64_t)c->pol.m->n_params, nh = (int64_t)c->pol.m->d.D + 1;
	pt[0] = (train_named_tensor){ "policy", { TRAIN_F32, 1, { np, 1, 1, 1 }, c->pol.m->params } };
	pt[1] = (train_named_tensor){ "v_head", { TRAIN_F32, 1, { nh, 1, 1, 1 }, c->pol.vhead } };
	m[0] = (train_tensor){ TRAIN_F32, 1, { np, 1, 1, 1 }, k->mom };
	m[1] = (train_tensor){ TRAIN_F32, 1, { nh, 1, 1, 1 }, k->hm };
	v[0] = (train_tensor){ TRAIN_F32, 1, { np, 1, 1, 1 }, k->vel };
	v[1] = (train_tensor){ TRAIN_F32, 1, { nh, 1, 1, 1 }, k->hv };
}

/* Doubles are written as C99 hex floats ("%a"): read back bit for bit. */
static int ck_save(const pc *c, const ppo_ck *k, const train_rng *rng, const char *path,
                   train_error *err)
{
	train_named_tensor pt[2];
	train_tensor m[2], v[2];
	ck_tensors(c, k, pt, m, v);
	char done[32], beta[64], before[4 * 64];
	snprintf(done, sizeof done, "%lld", (long long)k->done);
	snprintf(beta, sizeof beta, "%a", k->beta);
	snprintf(before, sizeof before, "%a %a %a %a", k->before[0], k->before[1], k->before[2],
	         k->before[3]);
	char *steps = json_dumps(k->steps, JSON_COMPACT);
	if (!steps)
		return train_error_set(err, TRAIN_ENOMEM, path, 0, 0, "out of memory");
	const char *meta[] = { "rlhf_ppo_done", done, "rlhf_ppo_beta", beta, "rlhf_ppo_before", before,
		               "rlhf_ppo_steps", steps, NULL };
	int rc = train_checkpoint_save(path, pt, m, v, 2, k->opt_step, rng, meta, err);
	free(steps);
	return rc;
}

/* Into the policy, the value head, k's moments, k's counters and rng. */
static int ck_load(pc *c, ppo_ck *k, train_rng *rng, const char *path, train_error *err)
{
	train_named_tensor pt[2];
	train_tensor m[2], v[2];
	ck_tensors(c, k, pt, m, v);
	train_safetensors *f = NULL;
	int rc = train_checkpoint_load(path, pt, m, v, 2, &k->opt_step, rng, &f, err);
	if (rc)
		return rc;
	const char *done = train_safetensors_meta(f, "rlhf_ppo_done");
	const char *beta = train_safetensors_meta(f, "rlhf_ppo_beta");
	const char *before = train_safetensors_meta(f, "rlhf_ppo_before");
	const char *steps = train_safetensors_meta(f, "rlhf_ppo_steps");
	char *end = NULL;
	rc = TRAIN_ECORRUPT;
	if (done && beta && before && steps) {
		k->done = strtoll(done, &end, 10);
		bool ok = !*end && k->done >= 0 && k->done <= c->steps;
		k->beta = strtod(beta, &end);
		ok = ok && !*end && isfinite(k->beta);
		const char *q = before;
		for (int i = 0; i < 4 && ok; i++) {
			k->before[i] = strtod(q, &end);
			ok = end != q;
			q = end;
		}
		ok = ok && !*q;
		json_t *st = ok ? json_loads(steps, 0, NULL) : NULL;
		if (st && json_is_array(st) && json_array_size(st) == (size_t)k->done) {
			json_decref(k->steps);
			k->steps = st;
			rc = TRAIN_OK;
		} else {
			json_decref(st);
		}
	}
	train_safetensors_close(f);
	if (rc)
		train_error_set(err, rc, path, 0, 0, "not an RlhfPPO checkpoint of this run");
	return rc;
}

/* The state after `done` steps (the rest of k set already). */
static int ck_save_at(const pc *c, ppo_ck *k, int64_t done, int64_t opt_step, double beta,
                      const train_rng *rng, const char *path, train_error *err)
{
	k->done = done;
	k->opt_step = opt_step;
	k->beta = beta;
	return ck_save(c, k, rng, path, err);
}

/* The training; `stop_after` > 0: stop (as if interrupted) after that many
 * PPO steps of this session (tests). */
static int pc_train_run(pc *c, const train_values *in, train_values *out, train_ctx *ctx,
                        int64_t stop_after)
{
	static const char *const keys[] = { "prompt", "question", NULL };
	ctxs X = { .c = c, .ctx = ctx };
	char *ck = NULL; /* the checkpoint's path, or NULL: none kept */
	rlhf_jl pr = { 0 }, held = { 0 };
	float *mom = NULL, *vel = NULL, *hm = NULL, *hv = NULL;
	int32_t *rv = NULL;
	int rvn = 0;
	size_t *idx = NULL;
	int *rows = NULL;
	json_t *steps = json_array();
	train_error err = { 0 };
	char msg[1024];
	int rc;
	mamba_model_destroy(c->pol.m);
	c->pol.m = NULL;
	free(c->vocab);
	c->vocab = NULL;
	if ((rc = mamba_value_read(train_values_get(in, "policy"), 1, "lm", &c->pol.m, &c->vocab,
	                           &c->nvocab, NULL, &err)) ||
	    (rc = mamba_value_read(train_values_get(in, "policy"), 0, "lm", &X.ref, &rv, &rvn, NULL, &err))) {
		rc = train_fail(ctx, "policy: %s", train_error_format(&err, msg, sizeof msg));
		goto out;
	}
	if ((rc = rlhf_rm_read(train_values_get(in, "reward"), NULL, &X.rm, &X.rm_vocab, &X.rm_nvocab,
	                       msg, sizeof msg))) {
		rc = train_fail(ctx, "reward: %s", msg);
		goto out;
	}
	if ((rc = rlhf_jl_read(train_values_get(in, "prompts"), "prompts", keys, &pr, ctx)) ||
	    (rc = rlhf_jl_read(train_values_get(in, "heldout"), "heldout", keys, &held, ctx)))
		goto out;
	if (!pr.n) {
		rc = train_fail(ctx, "prompts: none");
		goto out;
	}
	X.eot = mamba_char_id(c->vocab, c->nvocab, MAMBA_EOT);
	mamba_model *m = c->pol.m;
	int D = m->d.D, threads = train_ctx_threads(ctx);
	m->threads = X.ref->threads = X.rm->m->threads = threads;
	free(c->pol.vhead);
	free(c->pol.dvhead);
	c->pol.vhead = calloc((size_t)D + 1, sizeof(float));
	c->pol.dvhead = calloc((size_t)D + 1, sizeof(float));
	size_t np = m->n_params, nh = (size_t)D + 1;
	mom = calloc(np, sizeof *mom);
	vel = calloc(np, sizeof *vel);
	hm = calloc(nh, sizeof *hm);
	hv = calloc(nh, sizeof *hv);
	idx = malloc((size_t)c->batch * sizeof *idx);
	rows = malloc((size_t)c->batch * sizeof *rows);
	if (!c->pol.vhead || !c->pol.dvhead || !mom || !vel || !hm || !hv || !idx || !rows || !steps) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	double t0 = rlhf_now();
	double r0, k0, l0, g0, r1, k1, l1, g1;
	train_rng rng;
	train_rng_seed(&rng, (uint64_t)c->seed);
	rlhf_klctl kc = { c->kl0, c->target, c->horizon, c->adaptive };
	int64_t opt_step = 0, s0 = 0, done_here = 0;
	ppo_ck K = { .mom = mom, .vel = vel, .hm = hm, .hv = hv };
	const char *ckdir = train_ctx_checkpoint_dir(ctx);
	if (ckdir && c->ck_every > 0) {
		size_t len = strlen(ckdir) + sizeof PPO_CKPT + 1;
		if (!(ck = malloc(len))) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		snprintf(ck, len, "%s/%s", ckdir, PPO_CKPT);
	}
	if (ck && train_ctx_resuming(ctx) && access(ck, F_OK) == 0) {
		K.steps = steps;
		rc = ck_load(c, &K, &rng, ck, &err);
		steps = K.steps;
		if (rc) {
			rc = train_fail(ctx, "cannot resume: %s", train_error_format(&err, msg, sizeof msg));
			goto out;
		}
		train_kernels_weights_changed(NULL); /* the policy's weights were read in */
		s0 = K.done;
		opt_step = K.opt_step;
		kc.value = K.beta;
		r0 = K.before[0], k0 = K.before[1], l0 = K.before[2], g0 = K.before[3];
		train_log(ctx, TRAIN_LOG_INFO, "resuming at PPO step %lld of %lld", (long long)s0,
		          (long long)c->steps);
	} else {
		if ((rc = evaluate(&X, &held, &r0, &k0, &l0, &g0)))
			goto out;
		train_log(ctx, TRAIN_LOG_INFO, "before PPO: held-out reward %.4f, KL to SFT %.4f, length %.1f "
		          "(gold answers' reward %.4f; %zu of %zu held-out prompts)", r0, k0, l0, g0,
		          c->eval_prompts > 0 && (size_t)c->eval_prompts < held.n ? (size_t)c->eval_prompts : held.n, held.n);
	}
	rlhf_ppo_coefs co = { (float)c->clip, (float)c->vf, (float)c->clip_v };
	train_adamw_cfg acfg = train_adamw_defaults();
	acfg.weight_decay = 0.0f;
	acfg.eps = 1e-5f;
	K.before[0] = r0, K.before[1] = k0, K.before[2] = l0, K.before[3] = g0;
	K.steps = steps; /* appended to in place; a failed save on the way out only warns */
	for (int64_t s = s0; s < c->steps; s++) {
		if (train_ctx_canceled(ctx) || (stop_after > 0 && done_here >= stop_after)) {
			/* interrupted between steps: keep where we are for --resume */
			if (ck && done_here > 0 && ck_save_at(c, &K, s, opt_step, kc.value, &rng, ck, &err))
				train_log(ctx, TRAIN_LOG_WARN, "checkpoint: %s", err.text);
			rc = TRAIN_ECANCELED;
			goto out;
		}
		int B = (int)c->batch;
		train_rng at_start = rng;
		for (int i = 0; i < B; i++)
			idx[i] = (size_t)train_rng_below(&rng, pr.n);
		rlhf_batch b;
		if ((rc = rollout(&X, &pr, idx, B, &rng, &b))) {
			batch_free(&b);
			if (rc == TRAIN_ECANCELED) {
				/* sampling changed only the RNG: the state of this step's start */
				rng = at_start;
				if (ck && done_here > 0 && ck_save_at(c, &K, s, opt_step, kc.value, &rng, ck, &err))
					train_log(ctx, TRAIN_LOG_WARN, "checkpoint: %s", err.text);
			}
			goto out;
		}
		double kl, score, beta = kc.value;
		if ((rc = advantages(c, beta, &b, &kl, &score))) {
			batch_free(&b);
			goto out;
		}
		double pg = 0, vf = 0, akl = 0, cf = 0;
		int nmb = 0;
		for (int e = 0; e < c->epochs && !rc; e++) {
			for (int i = 0; i < B; i++)
				rows[i] = i;
			for (int i = B - 1; i > 0; i--) {
				int j = (int)train_rng_below(&rng, (uint64_t)i + 1), t = rows[i];
				rows[i] = rows[j];
				rows[j] = t;
			}
			for (int q = 0; q < B && !rc; q += (int)c->mb) {
				int k = B - q < (int)c->mb ? B - q : (int)c->mb;
				double a1, a2, a3, a4;
				memset(m->grads, 0, np * sizeof(float));
				memset(c->pol.dvhead, 0, nh * sizeof(float));
				if ((rc = rlhf_ppo_loss_grad(&c->pol, &b, rows + q, k, &co, &a1, &a2, &a3, &a4)))
					break;
				/* one norm over the backbone and the value head */
				double ss = 0;
				for (size_t i = 0; i < np; i++)
					ss += (double)m->grads[i] * m->grads[i];
				for (size_t i = 0; i < nh; i++)
					ss += (double)c->pol.dvhead[i] * c->pol.dvhead[i];
				if (sqrt(ss) > c->max_norm) {
					float f = (float)(c->max_norm / (sqrt(ss) + 1e-6));
					for (size_t i = 0; i < np; i++)
						m->grads[i] *= f;
					for (size_t i = 0; i < nh; i++)
						c->pol.dvhead[i] *= f;
				}
				opt_step++;
				train_adamw_step(&acfg, m->params, m->grads, mom, vel, np, (float)c->lr, opt_step);
				train_adamw_step(&acfg, c->pol.vhead, c->pol.dvhead, hm, hv, nh, (float)c->lr, opt_step);
				train_kernels_weights_changed(NULL);
				pg += a1;
				vf += a2;
				akl += a3;
				cf += a4;
				nmb++;
			}
		}
		double mlen = 0;
		for (int i = 0; i < B; i++)
			mlen += b.rlen[i];
		mlen /= B;
		batch_free(&b);
		if (rc)
			goto out;
		rlhf_klctl_update(&kc, kl, B);
		json_array_append_new(steps, json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "step",
		                                       (json_int_t)s + 1, "reward", score, "kl", kl, "beta", beta,
		                                       "pg_loss", pg / nmb, "vf_loss", vf / nmb,
		                                       "clipfrac", cf / nmb, "length", mlen));
		train_progress_loss(ctx, (uint64_t)s + 1, (uint64_t)c->steps, -score);
		train_log(ctx, TRAIN_LOG_INFO, "step %lld/%lld: reward %.4f, KL %.3f, beta %.4f, pg %.4f, "
		          "vf %.4f, clipfrac %.3f, length %.1f", (long long)s + 1, (long long)c->steps,
		          score, kl, beta, pg / nmb, vf / nmb, cf / nmb, mlen);
		done_here++;
		if (ck && (s + 1) % c->ck_every == 0 && s + 1 < c->steps &&
		    ck_save_at(c, &K, s + 1, opt_step, kc.value, &rng, ck, &err)) {
			rc = train_fail(ctx, "checkpoint: %s", err.text);
			goto out;
		}
	}
	if ((rc = evaluate(&X, &held, &r1, &k1, &l1, &g1))) {
		/* interrupted in the last evaluation: every step is done */
		if (rc == TRAIN_ECANCELED && ck && done_here > 0 &&
		    ck_save_at(c, &K, c->steps, opt_step, kc.value, &rng, ck, &err))
			train_log(ctx, TRAIN_LOG_WARN, "checkpoint: %s", err.text);
		goto out;
	}
	train_log(ctx, TRAIN_LOG_INFO, "after PPO: held-out reward %.4f (was %.4f), KL to SFT %.4f, "
	          "length %.1f (was %.1f)", r1, r0, k1, l1, l0);
	json_t *mt = json_pack("{s:{s:f, s:f, s:f}, s:{s:f, s:f, s:f}, s:f, s:I, s:I, s:f, s:f, s:o}",
	                       "before", "heldout_reward", r0, "heldout_kl", k0, "length", l0,
	                       "after", "heldout_reward", r1, "heldout_kl", k1, "length", l1,
	                       "gold_reward", g0, "heldout_prompts", (json_int_t)held.n,
	                       "num_rl_steps", (json_int_t)c->steps, "final_kl_coef", kc.value,
	                       "seconds", rlhf_now() - t0, "steps", steps);
	steps = NULL;
	if (!mt) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	free(c->metrics);
	c->metrics = json_dumps(mt, JSON_COMPACT | JSON_REAL_PRECISION(6));
	rc = rlhf_put_json(out, "metrics", mt);
	json_decref(mt);
	train_value *mv = NULL;
	if (!rc && !(rc = policy_value(c, &mv, ctx)))
		rc = train_values_put_take(out, "model", mv);
out:
	mamba_model_destroy(X.ref);
	rlhf_rm_destroy(X.rm);
	free(X.rm_vocab);
	free(rv);
	rlhf_jl_free(&pr);
	rlhf_jl_free(&held);
	free(mom);
	free(vel);
	free(hm);
	free(hv);
	free(idx);
	free(rows);
	free(ck);
	json_decref(steps);
	return rc;
}

static int pc_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	return pc_train_run(self, in, out, ctx, 0);
}

static int pc_persist(void *self, train_resource *res)
{
	pc *c = self;
	if (!c->pol.m)
		return TRAIN_EINVAL;
	int D = c->pol.m->d.D;
	train_named_tensor ex[2] = {
		{ "v_head.weight", { .dtype = TRAIN_F32, .ndim = 2, .shape = { 1, D, 1, 1 }, .data = c->pol.vhead } },
		{ "v_head.bias", { .dtype = TRAIN_F32, .ndim = 1, .shape = { 1, 1, 1, 1 }, .data = c->pol.vhead + D } },
	};
	char *p = rlhf_res_path(res, "model.safetensors");
	train_error err = { 0 };
	if (!p)
		return TRAIN_ENOMEM;
	int rc = mamba_file_write(p, c->pol.m, c->vocab, c->nvocab, ex, 2, "lm", &err);
	free(p);
	if (!rc && c->metrics)
		rc = train_resource_write(res, "metrics.json", c->metrics, strlen(c->metrics));
	return rc;
}

static int pc_load(const train_config *cfg, const train_resource *res, train_ctx *ctx, void **self)
{
	pc *c = NULL;
	int rc = pc_create(cfg, ctx, (void **)&c);
	*self = NULL;
	if (rc)
		return rc;
	char *p = rlhf_res_path(res, "model.safetensors"), msg[1024];
	train_error err = { 0 };
	train_safetensors *f = NULL;
	if (!p) {
		pc_destroy(c);
		return TRAIN_ENOMEM;
	}
	rc = mamba_file_read(p, 0, "lm", &c->pol.m, &c->vocab, &c->nvocab, &f, &err);
	free(p);
	train_safetensors_close(f);
	if (rc) {
		pc_destroy(c);
		return train_fail(ctx, "%s", train_error_format(&err, msg, sizeof msg));
	}
	*self = c;
	return TRAIN_OK;
}

/* A prompt's answer (the policy's sample at the config's temperature). */
static int pc_process(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	pc *c = self;
	if (!c->pol.m)
		return train_fail(ctx, "the policy is not trained");
	char *prompt = rlhf_value_text(in, "prompt"), *sd = rlhf_value_text(in, "seed"), *end = NULL;
	int32_t *ids = NULL, *resp = malloc((size_t)c->max_new * sizeof *resp);
	float *w = malloc((size_t)c->pol.m->d.V * sizeof *w);
	mamba_state st = { 0 };
	int n = 0, L = 0, rc = prompt && sd && resp && w ? TRAIN_OK : TRAIN_ENOMEM;
	long long seed = c->seed;
	if (!rc && sd[0] && (seed = strtoll(sd, &end, 10), *end))
		rc = train_fail(ctx, "seed: '%s' is not an integer", sd);
	if (!rc)
		rc = prompt_ids(c, prompt, &ids, &n);
	if (!rc)
		rc = mamba_state_create(c->pol.m, &st);
	train_rng rng;
	train_rng_seed(&rng, (uint64_t)seed);
	int32_t eot = mamba_char_id(c->vocab, c->nvocab, MAMBA_EOT);
	for (int t = 0; t < n && !rc; t++)
		rc = mamba_step(c->pol.m, &st, ids[t]);
	while (!rc && L < c->max_new) {
		int32_t id = sample_id(st.logits, c->pol.m->d.V, c->temp, w, &rng);
		resp[L++] = id;
		if (id == eot || L == c->max_new)
			break;
		rc = mamba_step(c->pol.m, &st, id);
	}
	if (!rc) {
		char *text = rlhf_decode(resp, L, c->vocab);
		rc = text ? train_values_put_bytes(out, "text", "text/plain", text, strlen(text)) : TRAIN_ENOMEM;
		free(text);
	}
	if (st.logits)
		mamba_state_free(&st);
	free(prompt);
	free(sd);
	free(ids);
	free(resp);
	free(w);
	return rc;
}

const train_component_class rlhf_ppo_lm_class = {
	.struct_size = sizeof(train_component_class),
	.name = "RlhfPPO",
	.version = "1",
	.doc = "PPO on a Mamba language model against a reward model, KL-penalised to the SFT model (issue 9)",
	.inputs = ppo_inputs,
	.outputs = ppo_outputs,
	.process_inputs = ppo_proc_in,
	.process_outputs = ppo_proc_out,
	.params = ppo_params,
	.create = pc_create,
	.train = pc_train,
	.process = pc_process,
	.persist = pc_persist,
	.load = pc_load,
	.destroy = pc_destroy,
};
