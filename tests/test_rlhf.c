/*
 * tests/test_rlhf.c - the "rlhf" plugin (plugins/rlhf, compiled in;
 * issue 9): the KL-penalised rewards, the adaptive KL controller, GAE over
 * tokens and the whitened advantages against a small batch checked by
 * hand; the reward model's backward pass (backbone, pooling and head, mean
 * and last pooling) and PPO's loss gradient (policy and value head)
 * against central differences; the reward model at 100 % on a synthetic
 * preference set whose preferred answer is known; the qa-feedback split.
 *
 * Kernels run single-threaded in fp32.  Tolerances: hand values within
 * 1e-6; central differences (eps 1e-2, float32) within 2e-3 + 3 % of the
 * analytic value, as tests/test_mamba.c.
 */
#include "testlib.h"

#include "../plugins/rlhf/rlhf.c"
#include "../plugins/rlhf/ppo_lm.c"
#include "ctx_private.h"
#include "mamba_testlib.h"

#include <math.h>
#include <sys/stat.h>

static void quiet_fn(void *ud, train_log_level level, const char *msg)
{
	(void)ud;
	(void)level;
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "  %s\n", msg);
}

static const train_log_sink quiet = { quiet_fn, NULL, TRAIN_LOG_DEBUG };

/* ------------------------------------------------------------------------ */
/* by hand */

static void test_kl_rewards(void)
{
	const float logp[3] = { -1.0f, -2.0f, -0.5f }, ref[3] = { -1.5f, -1.0f, -0.5f };
	float rew[3];
	double kl;
	rlhf_kl_rewards(3, logp, ref, 2.0f, 0.1f, rew, &kl);
	/* -0.1 * 0.5, -0.1 * -1, 0 + the score */
	CU_ASSERT_DOUBLE_EQUAL(rew[0], -0.05, 1e-6);
	CU_ASSERT_DOUBLE_EQUAL(rew[1], 0.1, 1e-6);
	CU_ASSERT_DOUBLE_EQUAL(rew[2], 2.0, 1e-6);
	CU_ASSERT_DOUBLE_EQUAL(kl, -0.5, 1e-6);
	rlhf_kl_rewards(0, logp, ref, 2.0f, 0.1f, rew, &kl); /* no tokens: nothing */
	CU_ASSERT_DOUBLE_EQUAL(kl, 0.0, 0);
}

static void test_kl_controller(void)
{
	rlhf_klctl c = { 0.2, 6.0, 10000.0, 1 };
	rlhf_klctl_update(&c, 9.0, 256); /* e = 0.5, clipped to 0.2: x (1 + 0.2 * 256 / 1e4) */
	CU_ASSERT_DOUBLE_EQUAL(c.value, 0.2 * 1.00512, 1e-12);
	c.value = 0.2;
	rlhf_klctl_update(&c, 3.0, 256); /* e = -0.5 -> -0.2 */
	CU_ASSERT_DOUBLE_EQUAL(c.value, 0.2 * 0.99488, 1e-12);
	c.value = 0.2;
	rlhf_klctl_update(&c, 6.6, 256); /* e = 0.1 */
	CU_ASSERT_DOUBLE_EQUAL(c.value, 0.2 * 1.00256, 1e-12);
	c.adaptive = 0;
	rlhf_klctl_update(&c, 100.0, 256);
	CU_ASSERT_DOUBLE_EQUAL(c.value, 0.2 * 1.00256, 1e-12);
}

/* Two responses (3 and 2 tokens), gamma 1, lam 0.5, logp = ref (no KL):
 *   seq 0: rewards 0 0 1 (score 1), values .5 .2 .1
 *     A2 = 1 - .1 = .9;  A1 = (0 + .1 - .2) + .5 * .9 = .35;
 *     A0 = (0 + .2 - .5) + .5 * .35 = -.125;  returns .375 .55 1
 *   seq 1: rewards 0 -1 (score -1), values .3 -.2
 *     A1 = -1 + .2 = -.8;  A0 = (0 - .2 - .3) + .5 * -.8 = -.9;  returns -.6 -1
 * then the five advantages whitened (ddof 1). */
static void test_gae_hand(void)
{
	pc c = { .gamma = 1.0, .lam = 0.5 };
	rlhf_batch b = { .B = 2, .Lm = 3 };
	int rlen[2] = { 3, 2 };
	float logp[6] = { -1, -2, -3, -1, -2, 0 }, val[6] = { .5f, .2f, .1f, .3f, -.2f, 0 };
	float adv[6], ret[6], rew[6], score[2] = { 1.0f, -1.0f };
	uint8_t mask[6] = { 1, 1, 1, 1, 1, 0 };
	b.rlen = rlen;
	b.logp = logp;
	b.ref_logp = logp;
	b.val = val;
	b.adv = adv;
	b.ret = ret;
	b.rew = rew;
	b.mask = mask;
	b.score = score;
	double kl, sc;
	CU_ASSERT_EQUAL(advantages(&c, 0.3, &b, &kl, &sc), TRAIN_OK);
	CU_ASSERT_DOUBLE_EQUAL(kl, 0.0, 1e-9);
	CU_ASSERT_DOUBLE_EQUAL(sc, 0.0, 1e-9);
	const double want_ret[5] = { .375, .55, 1.0, -.6, -1.0 };
	const int at[5] = { 0, 1, 2, 3, 4 };
	for (int i = 0; i < 5; i++)
		CU_ASSERT_DOUBLE_EQUAL(ret[at[i]], want_ret[i], 1e-6);
	double a[5] = { -.125, .35, .9, -.9, -.8 }, mean = 0, ss = 0;
	for (int i = 0; i < 5; i++)
		mean += a[i] / 5;
	for (int i = 0; i < 5; i++)
		ss += (a[i] - mean) * (a[i] - mean);
	double sd = sqrt(ss / 4);
	for (int i = 0; i < 5; i++)
		CU_ASSERT_DOUBLE_EQUAL(adv[at[i]], (a[i] - mean) / (sd + 1e-8), 1e-5);
	CU_ASSERT_DOUBLE_EQUAL(adv[5], 0.0, 0); /* past the end of seq 1 */
	CU_ASSERT_DOUBLE_EQUAL(rew[2], 1.0, 1e-6);
	CU_ASSERT_DOUBLE_EQUAL(rew[4], -1.0, 1e-6);
	/* with a KL: seq 0's tokens 0.5 above the reference each */
	float lp2[6] = { -.5f, -1.5f, -2.5f, -1, -2, 0 };
	b.logp = lp2;
	CU_ASSERT_EQUAL(advantages(&c, 0.3, &b, &kl, &sc), TRAIN_OK);
	CU_ASSERT_DOUBLE_EQUAL(kl, (1.5 + 0.0) / 2, 1e-6);
	CU_ASSERT_DOUBLE_EQUAL(rew[0], -0.15, 1e-6);
	CU_ASSERT_DOUBLE_EQUAL(rew[2], 1.0 - 0.15, 1e-6);
}

/* ------------------------------------------------------------------------ */
/* finite differences */

static int fd_ok(const char *what, size_t i, double fd, double an)
{
	if (fabs(fd - an) > 2e-3 + 0.03 * fabs(an)) {
		fprintf(stderr, "%s[%zu]: fd %g analytic %g\n", what, i, fd, an);
		return 0;
	}
	return 1;
}

static void rm_fd(int pool_last)
{
	const int V = 9, D = 16, P = 2, T = 11;
	rlhf_rm *r = NULL;
	mamba_dims d;
	mamba_dims_make(V, D, 2, &d);
	CU_ASSERT_EQUAL_FATAL(rlhf_rm_create(&d, pool_last, &r), TRAIN_OK);
	mamba_model_destroy(r->m);
	r->m = tiny_model(V, D, 2, 21, 1);
	train_rng g;
	train_rng_seed(&g, 5);
	train_rng_fill_normal(&g, r->head, (size_t)D + 1, 0.0f, 0.5f);
	int32_t ids[2 * P * T];
	for (int i = 0; i < 2 * P * T; i++)
		ids[i] = 1 + (int32_t)train_rng_below(&g, V - 1);
	int start[4] = { 3, 2, 3, 4 }, end[4] = { 11, 7, 9, 11 };
	float loss, lp, lm;
	memset(r->m->grads, 0, r->m->n_params * sizeof(float));
	memset(r->dhead, 0, ((size_t)D + 1) * sizeof(float));
	CU_ASSERT_EQUAL_FATAL(rlhf_rm_pair_loss(r, ids, start, end, P, T, 1, &loss, NULL), TRAIN_OK);
	CU_ASSERT(isfinite(loss) && loss > 0);
	int probes = test_light() ? 1 : 3, bad = 0, checked = 0;
	for (size_t k = 0; k < r->m->n_info; k++) {
		const mamba_tensor_info *t = &r->m->info[k];
		for (int q = 0; q < probes; q++) {
			size_t i = t->offset + (size_t)train_rng_below(&g, t->numel);
			float keep = r->m->params[i], eps = k == 0 ? 1e-3f : 1e-2f; /* the embedding feeds an RMSNorm directly: small steps */
			r->m->params[i] = keep + eps;
			rlhf_rm_pair_loss(r, ids, start, end, P, T, 0, &lp, NULL);
			r->m->params[i] = keep - eps;
			rlhf_rm_pair_loss(r, ids, start, end, P, T, 0, &lm, NULL);
			r->m->params[i] = keep;
			bad += !fd_ok(t->name, i - t->offset, ((double)lp - lm) / (2.0 * eps), r->m->grads[i]);
			checked++;
		}
	}
	for (int i = 0; i <= D; i++) {
		float keep = r->head[i], eps = 1e-2f;
		r->head[i] = keep + eps;
		rlhf_rm_pair_loss(r, ids, start, end, P, T, 0, &lp, NULL);
		r->head[i] = keep - eps;
		rlhf_rm_pair_loss(r, ids, start, end, P, T, 0, &lm, NULL);
		r->head[i] = keep;
		bad += !fd_ok("score head", (size_t)i, ((double)lp - lm) / (2.0 * eps), r->dhead[i]);
		checked++;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(checked > 20);
	rlhf_rm_destroy(r);
}

static void test_rm_fd_mean(void)
{
	rm_fd(0);
}

static void test_rm_fd_last(void)
{
	rm_fd(1);
}

/* PPO's loss on a hand-made batch: two sequences, the old log-probabilities
 * offset so that some ratios sit inside the clip range and some well
 * outside it (away from the kinks, where differences are not derivatives). */
static void test_ppo_fd(void)
{
	const int V = 9, D = 16, B = 2, T = 10, Lm = 5;
	rlhf_policy p = { 0 };
	p.m = tiny_model(V, D, 2, 31, 1);
	p.vhead = calloc((size_t)D + 1, sizeof(float));
	p.dvhead = calloc((size_t)D + 1, sizeof(float));
	train_rng g;
	train_rng_seed(&g, 8);
	train_rng_fill_normal(&g, p.vhead, (size_t)D + 1, 0.0f, 0.5f);
	int32_t ids[B * T];
	for (int i = 0; i < B * T; i++)
		ids[i] = 1 + (int32_t)train_rng_below(&g, V - 1);
	int plen[2] = { 5, 6 }, rlen[2] = { 5, 3 }, rows[2] = { 0, 1 };
	float logp[B * Lm], val[B * Lm], adv[B * Lm], ret[B * Lm];
	rlhf_batch b = { .B = B, .T = T, .Lm = Lm, .ids = ids, .plen = plen, .rlen = rlen,
		         .logp = logp, .val = val, .adv = adv, .ret = ret };
	CU_ASSERT_EQUAL_FATAL(rlhf_action_logp(p.m, p.vhead, &b, rows, 2, logp, val), TRAIN_OK);
	const float off[5] = { 0.0f, 0.6f, -0.6f, 0.0f, 0.5f };
	for (int i = 0; i < B * Lm; i++) {
		logp[i] += off[i % 5];
		val[i] += (i % 3 == 0) ? 1.0f : 0.0f; /* some values clipped */
		adv[i] = (i % 2 ? 1.0f : -0.7f) * (1.0f + 0.1f * (float)i);
		ret[i] = 0.3f * (float)(i % 4) - 0.4f;
	}
	rlhf_ppo_coefs co = { 0.2f, 0.5f, 0.2f };
	memset(p.m->grads, 0, p.m->n_params * sizeof(float));
	double pg, vf, kl, cf;
	CU_ASSERT_EQUAL_FATAL(rlhf_ppo_loss_grad(&p, &b, rows, 2, &co, &pg, &vf, &kl, &cf), TRAIN_OK);
	CU_ASSERT(cf > 0.2 && cf < 0.8); /* some clipped, some not */
	float *g0 = malloc(p.m->n_params * sizeof *g0), h0[17];
	memcpy(g0, p.m->grads, p.m->n_params * sizeof *g0);
	memcpy(h0, p.dvhead, sizeof h0);
	int probes = test_light() ? 1 : 3, bad = 0, checked = 0;
#define LOSS(out) do { double a_, b_, c_, d_; \
		rlhf_ppo_loss_grad(&p, &b, rows, 2, &co, &a_, &b_, &c_, &d_); \
		(out) = a_ + co.vf_coef * b_; } while (0)
	for (size_t k = 0; k < p.m->n_info; k++) {
		const mamba_tensor_info *t = &p.m->info[k];
		for (int q = 0; q < probes; q++) {
			size_t i = t->offset + (size_t)train_rng_below(&g, t->numel);
			float keep = p.m->params[i], eps = k == 0 ? 1e-3f : 1e-2f;
			double lp, lm;
			p.m->params[i] = keep + eps;
			LOSS(lp);
			p.m->params[i] = keep - eps;
			LOSS(lm);
			p.m->params[i] = keep;
			bad += !fd_ok(t->name, i - t->offset, (lp - lm) / (2.0 * eps), g0[i]);
			checked++;
		}
	}
	for (int i = 0; i <= D; i++) {
		float keep = p.vhead[i], eps = 1e-2f;
		double lp, lm;
		p.vhead[i] = keep + eps;
		LOSS(lp);
		p.vhead[i] = keep - eps;
		LOSS(lm);
		p.vhead[i] = keep;
		bad += !fd_ok("v_head", (size_t)i, (lp - lm) / (2.0 * eps), h0[i]);
		checked++;
	}
#undef LOSS
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(checked > 20);
	free(g0);
	free(p.vhead);
	free(p.dvhead);
	mamba_model_destroy(p.m);
}

/* ------------------------------------------------------------------------ */
/* the components */

static train_config *make_cfg(const char *flow, const train_param *params)
{
	train_config *user = NULL, *cfg = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_config_parse(flow, strlen(flow), "test.yml", &user, &err), TRAIN_OK);
	int rc = train_config_validate(user, params, "test", &cfg, &err);
	if (rc)
		fprintf(stderr, "%s\n", err.text);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	train_config_destroy(user);
	return cfg;
}

/* Pairs whose preferred answer is known: the chosen answer says "yes" and
 * the rejected one "no", each among a few random filler words. */
static char *synthetic_pairs(int n, uint64_t seed)
{
	static const char *const filler[] = { "the", "cat", "sat", "on", "a", "mat", "and", "then" };
	train_rng g;
	train_rng_seed(&g, seed);
	size_t cap = (size_t)n * 256, len = 0;
	char *s = malloc(cap);
	for (int i = 0; i < n; i++) {
		char a[2][96];
		for (int k = 0; k < 2; k++) {
			int w = (int)train_rng_below(&g, 3), at = 0;
			a[k][0] = 0;
			for (int j = 0; j < w; j++)
				at += snprintf(a[k] + at, sizeof a[k] - (size_t)at, "%s ",
				               filler[train_rng_below(&g, 8)]);
			snprintf(a[k] + at, sizeof a[k] - (size_t)at, "%s", k ? "no" : "yes");
			at = (int)strlen(a[k]);
			w = (int)train_rng_below(&g, 3);
			for (int j = 0; j < w; j++)
				at += snprintf(a[k] + at, sizeof a[k] - (size_t)at, " %s",
				               filler[train_rng_below(&g, 8)]);
		}
		len += (size_t)snprintf(s + len, cap - len,
		                        "{\"prompt\": \"Q%d: is it?\\nA: \", \"chosen\": \"%s\", \"rejected\": \"%s\"}\n",
		                        i, a[0], a[1]);
	}
	return s;
}

static void test_rm_synthetic(void)
{
	const char *dir = test_tmpdir();
	train_config *cfg = make_cfg("{d_model: 16, n_layers: 1, batch_size: 8, num_epochs: 6, "
	                             "learning_rate: 0.01, seed: 3}", rm_params);
	train_ctx ctx;
	train_ctx_init(&ctx, "reward", &quiet, 1, dir);
	void *self = NULL;
	CU_ASSERT_EQUAL_FATAL(rm_create(cfg, &ctx, &self), TRAIN_OK);
	char *tr = synthetic_pairs(test_light() ? 32 : 64, 1), *va = synthetic_pairs(40, 2);
	train_values *in = NULL, *out = NULL;
	train_values_create(&in);
	train_values_create(&out);
	train_values_put_bytes(in, "train", JSONL_TYPE, tr, strlen(tr));
	train_values_put_bytes(in, "heldout", JSONL_TYPE, va, strlen(va));
	int rc = rm_train(self, in, out, &ctx);
	if (rc)
		fprintf(stderr, "%s\n", ctx.fail);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	const train_value *mv = train_values_get(out, "metrics");
	CU_ASSERT_PTR_NOT_NULL_FATAL(mv);
	json_t *m = json_loadb(train_value_data(mv), train_value_size(mv), 0, NULL);
	double acc = json_real_value(json_object_get(m, "heldout_accuracy"));
	if (acc < 1.0)
		fprintf(stderr, "held-out accuracy %g\n", acc);
	CU_ASSERT_DOUBLE_EQUAL(acc, 1.0, 1e-9);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(m, "pairs_heldout")), 40);
	json_decref(m);
	/* the model value reads back and scores as the trained model does */
	rlhf_rm *r2 = NULL;
	int32_t *voc = NULL;
	int nv = 0;
	char msg[256];
	CU_ASSERT_EQUAL_FATAL(rlhf_rm_read(train_values_get(out, "model"), NULL, &r2, &voc, &nv, msg,
	                                   sizeof msg), TRAIN_OK);
	float s1, s2, s3;
	rmc *c = self;
	CU_ASSERT_EQUAL(rlhf_rm_score_text(c->r, c->vocab, c->nvocab, 64, "Q1: is it?\nA: ", "yes", &s1), TRAIN_OK);
	CU_ASSERT_EQUAL(rlhf_rm_score_text(r2, voc, nv, 64, "Q1: is it?\nA: ", "yes", &s2), TRAIN_OK);
	CU_ASSERT_EQUAL(rlhf_rm_score_text(r2, voc, nv, 64, "Q1: is it?\nA: ", "no", &s3), TRAIN_OK);
	CU_ASSERT_DOUBLE_EQUAL(s1, s2, 1e-5);
	CU_ASSERT(s2 > s3);
	rlhf_rm_destroy(r2);
	free(voc);
	free(tr);
	free(va);
	train_values_destroy(in);
	train_values_destroy(out);
	rm_destroy(self);
	train_config_destroy(cfg);
}

/* PPO end to end on a task with a known answer: a policy that answers
 * "yes" or "no" about equally often, a reward model trained to prefer
 * "yes"; PPO raises the held-out reward, moves away from the SFT model,
 * and the policy then answers "y..." without "no". */
static void test_ppo_learns(void)
{
	const char *dir = test_tmpdir();
	train_ctx ctx;
	train_ctx_init(&ctx, "ppo", &quiet, 1, dir);
	/* the reward model */
	train_config *rcfg = make_cfg("{d_model: 16, n_layers: 1, batch_size: 8, num_epochs: 6, "
	                              "learning_rate: 0.01, seed: 3}", rm_params);
	void *rself = NULL;
	CU_ASSERT_EQUAL_FATAL(rm_create(rcfg, &ctx, &rself), TRAIN_OK);
	char *tr = synthetic_pairs(48, 1);
	train_values *in = NULL, *out = NULL;
	train_values_create(&in);
	train_values_create(&out);
	train_values_put_bytes(in, "train", JSONL_TYPE, tr, strlen(tr));
	CU_ASSERT_EQUAL_FATAL(rm_train(rself, in, out, &ctx), TRAIN_OK);
	train_value *rmv = train_value_ref((train_value *)train_values_get(out, "model"));
	train_values_destroy(in);
	train_values_destroy(out);
	/* the "SFT" policy: trained directly on "Q: is it?\nA: yes|no" + END */
	int32_t vocab[64];
	int nv = 0;
	vocab[nv++] = -1;
	const char *chars = "\003\n :?AQeinostyz"; /* in code point order */
	for (const char *c = chars; *c; c++)
		vocab[nv++] = *c;
	mamba_model *m = tiny_model(nv, 16, 1, 4, 1);
	const char *pr = "Q: is it?\nA: ";
	int32_t ids[2][20], tg[2][20];
	int T = 0;
	for (int k = 0; k < 2; k++) {
		char text[64];
		snprintf(text, sizeof text, "%s%s\003", pr, k ? "no" : "yes");
		int n = rlhf_encode(text, vocab, nv, ids[k], 20);
		T = n - 1 > T ? n - 1 : T;
		for (int t = 0; t < 20; t++)
			tg[k][t] = t + 1 < n && t + 1 >= (int)strlen(pr) ? ids[k][t + 1] : -1;
		for (int t = n; t < 20; t++)
			ids[k][t] = 0;
	}
	int32_t bi[2 * 19], bt[2 * 19];
	for (int k = 0; k < 2; k++)
		for (int t = 0; t < T; t++) {
			bi[k * T + t] = ids[k][t];
			bt[k * T + t] = tg[k][t];
		}
	float *mo = calloc(m->n_params, sizeof(float)), *ve = calloc(m->n_params, sizeof(float));
	train_adamw_cfg ac = train_adamw_defaults();
	for (int s = 0; s < 150; s++) {
		float loss;
		memset(m->grads, 0, m->n_params * sizeof(float));
		mamba_forward(m, bi, bt, 2, T, &loss);
		mamba_backward(m, bi, bt, 2, T, 1.0f);
		train_adamw_step(&ac, m->params, m->grads, mo, ve, m->n_params, 0.02f, s + 1);
	}
	free(mo);
	free(ve);
	train_value *pv = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(mamba_value_make(m, vocab, nv, NULL, 0, "lm", &pv, &err), TRAIN_OK);
	mamba_model_destroy(m);
	/* PPO */
	char prompts[4096];
	size_t len = 0;
	for (int i = 0; i < 16; i++)
		len += (size_t)snprintf(prompts + len, sizeof prompts - len,
		                        "{\"prompt\": \"%s\", \"question\": \"Q%d: is it?\\nA: \"}\n",
		                        "Q: is it?\\nA: ", i);
	train_config *pcfg = make_cfg("{num_rl_steps: 12, batch_size: 16, minibatch_size: 8, ppo_epochs: 2, "
	                              "max_new_tokens: 6, learning_rate: 0.003, init_kl_coef: 0.02, "
	                              "seed: 5}", ppo_params);
	void *pself = NULL;
	CU_ASSERT_EQUAL_FATAL(pc_create(pcfg, &ctx, &pself), TRAIN_OK);
	train_values_create(&in);
	train_values_create(&out);
	train_values_put_take(in, "policy", pv);
	train_values_put_take(in, "reward", rmv);
	train_values_put_bytes(in, "prompts", JSONL_TYPE, prompts, len);
	train_values_put_bytes(in, "heldout", JSONL_TYPE, prompts, len);
	int rc = pc_train(pself, in, out, &ctx);
	if (rc)
		fprintf(stderr, "%s\n", ctx.fail);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	const train_value *mv = train_values_get(out, "metrics");
	json_t *mt = json_loadb(train_value_data(mv), train_value_size(mv), 0, NULL);
	json_t *b = json_object_get(mt, "before"), *a = json_object_get(mt, "after");
	double r0 = json_real_value(json_object_get(b, "heldout_reward"));
	double r1 = json_real_value(json_object_get(a, "heldout_reward"));
	double k0 = json_real_value(json_object_get(b, "heldout_kl"));
	double k1 = json_real_value(json_object_get(a, "heldout_kl"));
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "reward %g -> %g, KL %g -> %g\n", r0, r1, k0, k1);
	CU_ASSERT(r1 > r0 + 0.1);
	CU_ASSERT_DOUBLE_EQUAL(k0, 0.0, 1e-4); /* the policy is the SFT model before */
	CU_ASSERT(k1 > 0.0);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(mt, "steps")), 12);
	/* the policy answers "yes" now */
	train_values *pin = NULL, *pout = NULL;
	train_values_create(&pin);
	train_values_create(&pout);
	train_values_put_bytes(pin, "prompt", "text/plain", "Q: is it?\nA: ", strlen("Q: is it?\nA: "));
	int yes = 0;
	for (int sd = 0; sd < 10; sd++) {
		char seed[8];
		snprintf(seed, sizeof seed, "%d", sd);
		train_values_put_bytes(pin, "seed", "text/plain", seed, strlen(seed));
		CU_ASSERT_EQUAL(pc_process(pself, pin, pout, &ctx), TRAIN_OK);
		const train_value *t = train_values_get(pout, "text");
		if (t && getenv("TEST_VERBOSE"))
			fprintf(stderr, "answer [%.*s]\n", (int)train_value_size(t), (const char *)train_value_data(t));
		/* "y", "ye" or "yes": the reward model only learnt that "yes" beats "no" */
		yes += t && train_value_size(t) >= 1 && ((const char *)train_value_data(t))[0] == 'y' &&
		       !memmem(train_value_data(t), train_value_size(t), "no", 2);
	}
	CU_ASSERT(yes >= 7);
	json_decref(mt);
	train_values_destroy(pin);
	train_values_destroy(pout);
	train_values_destroy(in);
	train_values_destroy(out);
	pc_destroy(pself);
	rm_destroy(rself);
	train_config_destroy(rcfg);
	train_config_destroy(pcfg);
	free(tr);
}

/* RlhfPPO's inputs for a short run: an untrained reward model (skip) and a
 * random tiny policy; prompts and held-out prompts the same 8. */
static train_values *ppo_test_inputs(train_ctx *ctx)
{
	train_config *rcfg = make_cfg("{d_model: 8, n_layers: 1, skip: true, seed: 3}", rm_params);
	void *rself = NULL;
	CU_ASSERT_EQUAL_FATAL(rm_create(rcfg, ctx, &rself), TRAIN_OK);
	char *tr = synthetic_pairs(8, 1);
	train_values *in = NULL, *out = NULL;
	train_values_create(&in);
	train_values_create(&out);
	train_values_put_bytes(in, "train", JSONL_TYPE, tr, strlen(tr));
	CU_ASSERT_EQUAL_FATAL(rm_train(rself, in, out, ctx), TRAIN_OK);
	train_value *rmv = train_value_ref((train_value *)train_values_get(out, "model"));
	train_values_destroy(in);
	train_values_destroy(out);
	rm_destroy(rself);
	train_config_destroy(rcfg);
	free(tr);
	int32_t vocab[64];
	int nv = 0;
	vocab[nv++] = -1;
	for (const char *c = "\003\n :?AQeinostyz"; *c; c++)
		vocab[nv++] = *c;
	mamba_model *m = tiny_model(nv, 16, 1, 4, 1);
	train_value *pv = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(mamba_value_make(m, vocab, nv, NULL, 0, "lm", &pv, &err), TRAIN_OK);
	mamba_model_destroy(m);
	char prompts[2048];
	size_t len = 0;
	for (int i = 0; i < 8; i++)
		len += (size_t)snprintf(prompts + len, sizeof prompts - len,
		                        "{\"prompt\": \"Q: is it %d?\\nA: \", \"question\": \"Q%d?\"}\n", i, i);
	train_values_create(&in);
	train_values_put_take(in, "policy", pv);
	train_values_put_take(in, "reward", rmv);
	train_values_put_bytes(in, "prompts", JSONL_TYPE, prompts, len);
	train_values_put_bytes(in, "heldout", JSONL_TYPE, prompts, len);
	return in;
}

/* The "resuming at ..." line of the last run, or "". */
static char resumed_line[256];

static void resume_fn(void *ud, train_log_level level, const char *msg)
{
	quiet_fn(ud, level, msg);
	const char *r = strstr(msg, "resuming at");
	if (r)
		snprintf(resumed_line, sizeof resumed_line, "%s", r);
}

static const train_log_sink resume_sink = { resume_fn, NULL, TRAIN_LOG_DEBUG };

/* One RlhfPPO run: `ckdir` (NULL: none), resuming or not, stopped after
 * stop_after steps (0: not); the trained component (NULL on failure). */
static pc *ppo_run(const train_config *cfg, const train_values *in, const char *ckdir, int resume,
                   int64_t stop_after, int want_rc, char **metrics)
{
	train_ctx ctx;
	train_ctx_init(&ctx, "ppo", &resume_sink, 1, ".");
	resumed_line[0] = '\0';
	ctx.checkpoint_dir = ckdir;
	ctx.resume = resume;
	void *self = NULL;
	CU_ASSERT_EQUAL_FATAL(pc_create(cfg, &ctx, &self), TRAIN_OK);
	train_values *out = NULL;
	train_values_create(&out);
	int rc = pc_train_run(self, in, out, &ctx, stop_after);
	if (rc != want_rc)
		fprintf(stderr, "rc %d: %s\n", rc, ctx.fail);
	CU_ASSERT_EQUAL(rc, want_rc);
	const train_value *mv = train_values_get(out, "metrics");
	if (metrics)
		*metrics = mv ? strndup(train_value_data(mv), train_value_size(mv)) : NULL;
	train_values_destroy(out);
	return self;
}

/* Interrupted after 3 of 5 steps, then resumed (--resume): the final
 * policy, value head and per-step metrics equal an uninterrupted run's
 * bit for bit. */
static void test_ppo_resume(void)
{
	train_ctx ctx;
	train_ctx_init(&ctx, "ppo", &quiet, 1, ".");
	train_values *in = ppo_test_inputs(&ctx);
	int light = test_light();
	train_config *cfg = make_cfg(light ? "{num_rl_steps: 3, batch_size: 4, minibatch_size: 2, "
	                                     "ppo_epochs: 1, max_new_tokens: 3, checkpoint_every: 2, seed: 7}"
	                                   : "{num_rl_steps: 5, batch_size: 4, minibatch_size: 2, "
	                                     "ppo_epochs: 2, max_new_tokens: 4, checkpoint_every: 2, seed: 7}",
	                             ppo_params);
	int64_t stop = light ? 1 : 3;
	char *ma = NULL, *mc = NULL;
	pc *a = ppo_run(cfg, in, NULL, 0, 0, TRAIN_OK, &ma);
	char dir[1100];
	snprintf(dir, sizeof dir, "%s/ck", test_tmpdir());
	CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
	char ckf[1200];
	snprintf(ckf, sizeof ckf, "%s/%s", dir, PPO_CKPT);
	pc *b = ppo_run(cfg, in, dir, 0, stop, TRAIN_ECANCELED, NULL);
	CU_ASSERT_EQUAL(access(ckf, F_OK), 0);
	pc *c = ppo_run(cfg, in, dir, 1, 0, TRAIN_OK, &mc);
	char want[64];
	snprintf(want, sizeof want, "resuming at PPO step %lld of %d", (long long)stop, light ? 3 : 5);
	CU_ASSERT_STRING_EQUAL(resumed_line, want);
	if (a && c && a->pol.m && c->pol.m) {
		size_t np = a->pol.m->n_params, nh = (size_t)a->pol.m->d.D + 1;
		CU_ASSERT_EQUAL(memcmp(a->pol.m->params, c->pol.m->params, np * sizeof(float)), 0);
		CU_ASSERT_EQUAL(memcmp(a->pol.vhead, c->pol.vhead, nh * sizeof(float)), 0);
		/* and it trained: not the policy it started from */
		CU_ASSERT_NOT_EQUAL(memcmp(a->pol.m->params, b->pol.m->params, np * sizeof(float)), 0);
	}
	/* the same steps' metrics (the run's seconds aside) */
	json_t *ja = ma ? json_loads(ma, 0, NULL) : NULL, *jc = mc ? json_loads(mc, 0, NULL) : NULL;
	CU_ASSERT_PTR_NOT_NULL_FATAL(ja);
	CU_ASSERT_PTR_NOT_NULL_FATAL(jc);
	json_object_del(ja, "seconds");
	json_object_del(jc, "seconds");
	CU_ASSERT(json_equal(ja, jc));
	CU_ASSERT_EQUAL(json_array_size(json_object_get(jc, "steps")), light ? 3 : 5);
	json_decref(ja);
	json_decref(jc);
	/* a checkpoint of another shape is refused with its reason */
	train_config *other = make_cfg("{num_rl_steps: 1, checkpoint_every: 1}", ppo_params);
	FILE *f = fopen(ckf, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	fputs("not a checkpoint", f);
	fclose(f);
	pc *d = ppo_run(other, in, dir, 1, 0, TRAIN_ECOMPONENT, NULL);
	pc_destroy(a);
	pc_destroy(b);
	pc_destroy(c);
	pc_destroy(d);
	free(ma);
	free(mc);
	train_config_destroy(cfg);
	train_config_destroy(other);
	train_values_destroy(in);
}

static const char *fixture(void)
{
	static char p[1024];
	const char *d = getenv("TRAIN_TEST_DATA");
	snprintf(p, sizeof p, "%s/rlhf/feedback.json", d ? d : "tests/data");
	return p;
}

static char *run_split(const char *path, int heldout, train_values **outp)
{
	char flow[1200];
	snprintf(flow, sizeof flow, "{path: \"%s\", heldout: %d}", path, heldout);
	train_config *cfg = make_cfg(flow, qa_params);
	train_ctx ctx;
	train_ctx_init(&ctx, "data", &quiet, 1, ".");
	void *self = NULL;
	CU_ASSERT_EQUAL_FATAL(qa_create(cfg, &ctx, &self), TRAIN_OK);
	train_values *in = NULL, *out = NULL;
	train_values_create(&in);
	train_values_create(&out);
	int rc = qa_train(self, in, out, &ctx);
	if (rc)
		fprintf(stderr, "%s\n", ctx.fail);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	const train_value *m = train_values_get(out, "metrics");
	char *s = strndup(train_value_data(m), train_value_size(m));
	train_values_destroy(in);
	qa_destroy(self);
	train_config_destroy(cfg);
	*outp = out;
	return s;
}

/* Does any question of the held-out prompts occur in a train output? */
static int leaks(const train_values *out)
{
	const train_value *h = train_values_get(out, "prompts_heldout");
	rlhf_jl j;
	static const char *const keys[] = { "prompt", "question", NULL };
	train_ctx ctx;
	train_ctx_init(&ctx, "t", &quiet, 1, ".");
	if (rlhf_jl_read(h, "heldout", keys, &j, &ctx))
		return -1;
	int bad = 0;
	const char *names[] = { "sft_train", "pairs_train", "prompts_train" };
	for (size_t i = 0; i < j.n; i++) {
		const char *q = rlhf_jstr(j.o[i], "question");
		for (int k = 0; k < 3; k++) {
			const train_value *v = train_values_get(out, names[k]);
			char *s = strndup(train_value_data(v), train_value_size(v));
			/* the question as JSON text: between "Question: " and "\n" */
			char needle[512];
			const char *e = strchr(q, '\\') ? strchr(q, '\\') : q + strlen(q);
			snprintf(needle, sizeof needle, "%.*s", (int)(e - q), q);
			bad += strstr(s, needle) != NULL;
			free(s);
		}
	}
	rlhf_jl_free(&j);
	return bad;
}

static void test_split_fixture(void)
{
	train_values *o1 = NULL, *o2 = NULL;
	char *m1 = run_split(fixture(), 6, &o1), *m2 = run_split(fixture(), 6, &o2);
	CU_ASSERT_STRING_EQUAL(m1, "{\"questions_train\":18,\"questions_heldout\":6,\"pairs_train\":72,\"pairs_heldout\":24}");
	CU_ASSERT_STRING_EQUAL(m1, m2);
	const char *names[] = { "sft_train", "sft_heldout", "pairs_train", "pairs_heldout",
		                "prompts_train", "prompts_heldout" };
	for (int k = 0; k < 6; k++) { /* deterministic */
		const train_value *a = train_values_get(o1, names[k]), *b = train_values_get(o2, names[k]);
		CU_ASSERT_EQUAL(train_value_size(a), train_value_size(b));
		CU_ASSERT(!memcmp(train_value_data(a), train_value_data(b), train_value_size(a)));
	}
	CU_ASSERT_EQUAL(leaks(o1), 0);
	/* an SFT example: the prompt ends in "Answer: ", the completion is the gold */
	const train_value *s = train_values_get(o1, "sft_train");
	char *t = strndup(train_value_data(s), train_value_size(s));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\\nAnswer: \",\"completion\":\"The "));
	CU_ASSERT_PTR_NOT_NULL(strstr(t, "\\nContext: The "));
	free(t);
	free(m1);
	free(m2);
	train_values_destroy(o1);
	train_values_destroy(o2);
}

/* The real data set, when ../shared is there: 400 train / 100 held out. */
static void test_split_qa_feedback(void)
{
	const char *d = getenv("top_srcdir");
	char p[1024];
	snprintf(p, sizeof p, "%s/../shared/data/rlhf/qa-feedback/dev_feedback.json", d ? d : ".");
	if (access(p, R_OK)) {
		test_skip("../shared/data/rlhf/qa-feedback is absent");
		return;
	}
	train_values *o = NULL;
	char *m = run_split(p, 100, &o);
	CU_ASSERT_PTR_NOT_NULL(strstr(m, "\"questions_train\":400,\"questions_heldout\":100"));
	CU_ASSERT_EQUAL(leaks(o), 0);
	free(m);
	train_values_destroy(o);
}

static const test_case cases[] = {
	{ "kl_rewards", test_kl_rewards },
	{ "kl_controller", test_kl_controller },
	{ "gae_hand", test_gae_hand },
	{ "rm_fd_mean", test_rm_fd_mean },
	{ "rm_fd_last", test_rm_fd_last },
	{ "ppo_fd", test_ppo_fd },
	{ "rm_synthetic", test_rm_synthetic },
	{ "ppo_learns", test_ppo_learns },
	{ "ppo_resume", test_ppo_resume },
	{ "split_fixture", test_split_fixture },
	{ "split_qa_feedback", test_split_qa_feedback },
	{ NULL, NULL },
};

int main(void)
{
	train_kernels_init(1, TRAIN_PRECISION_FP32);
	return test_main("rlhf", cases);
}
