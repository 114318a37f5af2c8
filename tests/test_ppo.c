/*
 * tests/test_ppo.c - plugins/ppo (issue 9): the MLP kernels of every
 * instruction set against plain double loops; tanh's accuracy; CleanRL's
 * loss and gradient on a hand-checked batch; the gradient of the whole
 * network against central differences (categorical and Gaussian, shared
 * and separate trunks); GAE by hand; exact resume from a checkpoint
 * (bitwise the uninterrupted run); learning on CartPole and, outside
 * valgrind, CartPole solved (100-episode mean >= 475) within CleanRL's
 * default budget on two seeds.  The plugin's source is compiled in; the
 * environments come from the built plugins/envs through the registry.
 */
#include <math.h>

#include "testlib.h"
#include "ctx_private.h"
#include "../plugins/ppo/ppo.c"

static train_registry *reg;

static void ctx_make(train_ctx *ctx)
{
	static train_log_sink quiet = { NULL, NULL, TRAIN_LOG_WARN };
	train_ctx_init(ctx, "ppo", &quiet, 1, ".");
	ctx->reg = reg;
}

static int open_registry(void)
{
	const char *top = getenv("top_builddir");
	char dir[1024];
	snprintf(dir, sizeof dir, "%s/plugins/envs/.libs", top && *top ? top : ".");
	train_error err = { 0 };
	if (train_registry_create(&reg) || train_registry_add_dirs(reg, dir))
		return -1;
	train_registry_use_defaults(reg, 0, 0);
	if (train_registry_scan(reg, &err))
		return -1;
	const train_env_class *c = NULL;
	return train_registry_find_env(reg, "CartPole-v1", &c, NULL, &err);
}

/* ---- kernels -------------------------------------------------------------------- */

static void fill(float *x, size_t n, train_rng *r, float s)
{
	for (size_t i = 0; i < n; i++)
		x[i] = s * (2 * train_rng_uniform(r) - 1);
}

static int close_to(double got, double want, double rel, double abs_)
{
	return fabs(got - want) <= abs_ + rel * fabs(want);
}

static void check_kern(const ppo_kern *k, int N, int I, int H, int K)
{
	train_rng r;
	train_rng_seed(&r, (uint64_t)(N * 1000 + I * 10 + H));
	size_t nx = (size_t)N * I, nw = (size_t)I * H, ny = (size_t)N * H;
	float *x = calloc(nx, 4), *wt = calloc(nw, 4), *b = calloc(H, 4), *y = calloc(ny, 4);
	float *w3 = calloc((size_t)K * H, 4), *b3 = calloc(K, 4), *out = calloc((size_t)N * K, 4);
	float *dout = calloc((size_t)N * K, 4), *dh = calloc(ny, 4), *dw3 = calloc((size_t)K * H, 4);
	float *db3 = calloc(K, 4), *dy = calloc(ny, 4), *dx = calloc(nx, 4), *dwt = calloc(nw, 4);
	float *db = calloc(H, 4);
	fill(x, nx, &r, 1.5f);
	fill(wt, nw, &r, 0.5f);
	fill(b, H, &r, 0.2f);
	fill(w3, (size_t)K * H, &r, 0.5f);
	fill(b3, K, &r, 0.2f);
	fill(dout, (size_t)N * K, &r, 1.0f);
	fill(dh, ny, &r, 0.1f); /* bwd_head adds */
	fill(dw3, (size_t)K * H, &r, 0.1f);
	fill(dwt, nw, &r, 0.1f);
	float *dh0 = malloc(ny * 4), *dw30 = malloc((size_t)K * H * 4), *dwt0 = malloc(nw * 4);
	memcpy(dh0, dh, ny * 4);
	memcpy(dw30, dw3, (size_t)K * H * 4);
	memcpy(dwt0, dwt, nw * 4);
	int ok = 1;

	k->fwd_hidden(y, x, wt, b, N, I, H);
	for (int n = 0; n < N; n++)
		for (int o = 0; o < H; o++) {
			double s = b[o];
			for (int i = 0; i < I; i++)
				s += (double)x[n * I + i] * wt[i * H + o];
			ok &= close_to(y[n * H + o], tanh(s), 1e-5, 1e-6);
		}
	k->fwd_head(out, y, w3, b3, N, H, K);
	for (int n = 0; n < N; n++)
		for (int q = 0; q < K; q++) {
			double s = b3[q];
			for (int o = 0; o < H; o++)
				s += (double)y[n * H + o] * w3[q * H + o];
			ok &= close_to(out[n * K + q], s, 1e-5, 1e-5);
		}
	k->bwd_head(dh, dw3, db3, dout, y, w3, N, H, K);
	for (int o = 0; o < H; o++) {
		for (int n = 0; n < N; n++) {
			double s = dh0[n * H + o];
			for (int q = 0; q < K; q++)
				s += (double)dout[n * K + q] * w3[q * H + o];
			ok &= close_to(dh[n * H + o], s, 1e-5, 1e-5);
		}
		for (int q = 0; q < K; q++) {
			double s = dw30[q * H + o];
			for (int n = 0; n < N; n++)
				s += (double)dout[n * K + q] * y[n * H + o];
			ok &= close_to(dw3[q * H + o], s, 1e-5, 1e-5);
		}
	}
	for (int q = 0; q < K; q++) {
		double s = 0;
		for (int n = 0; n < N; n++)
			s += dout[n * K + q];
		ok &= close_to(db3[q], s, 1e-5, 1e-5);
	}
	memcpy(dy, dh, ny * 4);
	k->bwd_hidden(dx, dwt, db, dy, y, x, wt, N, I, H);
	for (int n = 0; n < N; n++)
		for (int o = 0; o < H; o++)
			ok &= close_to(dy[n * H + o], (double)dh[n * H + o] * (1 - (double)y[n * H + o] * y[n * H + o]), 1e-5, 1e-6);
	for (int i = 0; i < I; i++)
		for (int o = 0; o < H; o++) {
			double s = dwt0[i * H + o];
			for (int n = 0; n < N; n++)
				s += (double)x[n * I + i] * dy[n * H + o];
			ok &= close_to(dwt[i * H + o], s, 1e-5, 1e-5);
		}
	for (int o = 0; o < H; o++) {
		double s = 0;
		for (int n = 0; n < N; n++)
			s += dy[n * H + o];
		ok &= close_to(db[o], s, 1e-5, 1e-5);
	}
	for (int n = 0; n < N; n++)
		for (int i = 0; i < I; i++) {
			double s = 0;
			for (int o = 0; o < H; o++)
				s += (double)dy[n * H + o] * wt[i * H + o];
			ok &= close_to(dx[n * I + i], s, 1e-5, 1e-5);
		}
	if (!ok)
		fprintf(stderr, "kernels %s differ at N=%d I=%d H=%d K=%d\n", k->isa, N, I, H, K);
	CU_ASSERT(ok);
	free(x); free(wt); free(b); free(y); free(w3); free(b3); free(out); free(dout); free(dh);
	free(dw3); free(db3); free(dy); free(dx); free(dwt); free(db); free(dh0); free(dw30);
	free(dwt0);
}

static void test_kernels(void)
{
	const char *isas[] = { "generic", "avx2", "avx512" };
	int tried = 0;
	for (int i = 0; i < 3; i++) {
		const int shapes[][4] = { { 5, 4, 64, 2 }, { 3, 64, 64, 1 }, { 7, 3, 24, 3 }, { 2, 24, 24, 1 },
		                          { 129, 64, 128, 2 } };
		for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
			const ppo_kern *k = ppo_kern_pick(shapes[s][2], isas[i]);
			if (!k)
				continue; /* not on this processor, or H not a multiple of its width */
			CU_ASSERT_STRING_EQUAL(k->isa, isas[i]);
			check_kern(k, shapes[s][0], shapes[s][1], shapes[s][2], shapes[s][3]);
			tried++;
		}
	}
	CU_ASSERT(tried >= 5);
	CU_ASSERT_PTR_NULL(ppo_kern_pick(20, NULL));
}

static void test_tanh(void)
{
	const char *isas[] = { "generic", "avx2", "avx512" };
	enum { N = 4096 };
	static float x[N], y[N];
	for (int i = 0; i < N; i++)
		x[i] = -12.0f + 24.0f * (float)i / N;
	x[0] = 0.0f;
	for (int k = 0; k < 3; k++) {
		const ppo_kern *kern = ppo_kern_pick(64, isas[k]);
		if (!kern)
			continue;
		kern->tanh_n(y, x, N);
		double worst = 0;
		for (int i = 0; i < N; i++)
			worst = fmax(worst, fabs(y[i] - tanh(x[i])));
		CU_ASSERT(worst < 5e-7);
		CU_ASSERT_EQUAL(y[0], 0.0f);
	}
}

/* ---- the loss by hand --------------------------------------------------------------- */

/*
 * Every weight zero, so both trunks give 0 and the heads give their biases:
 * logits (0.5, -0.5) and value 1 for every row.  Then p = (0.7310586,
 * 0.2689414), log p = (-0.3132617, -1.3132617), entropy 0.5822031.
 * Rows: action 0, old log p -0.5, advantage 1, return 2, old value 0.9;
 * action 1, old log p -1.3, advantage -1, return 0.5, old value 1.1.
 * Normalised advantages +-1/sqrt(2) (std with ddof 1 is sqrt(2)).
 * Ratios exp(0.1867383) = 1.2053118 (clipped to 1.2: the clipped term is
 * the larger, -0.8485281, gradient 0) and exp(-0.0132617) = 0.9868259
 * (inside: 0.6977909 twice, a tie; gradient -A ratio).  pg loss
 * (-0.8485281 + 0.6977909) / 2 = -0.0753684.  Values: v - v_old = 0.1 and
 * -0.1, inside the clip, so both value terms tie at (1-2)^2 = 1 and
 * (1-0.5)^2 = 0.25: v loss 0.5 * 0.625 = 0.3125.  Loss -0.0753684 -
 * 0.01 * 0.5822031 + 0.5 * 0.3125 = 0.0750595.  Gradients: the value bias
 * 0.5 * 0.5 * (2(1-2) + 2(1-0.5)) / 2 = -0.125; the logit biases
 * dlogp (onehot - p) for row 1 with dlogp = 0.6977909 / 2, plus the
 * entropy term (-0.01/2) * (-p (log p + H)) per row:
 * (-0.2530970, 0.2530970) (PyTorch's autograd gives the same numbers).
 */
static void test_loss_by_hand(void)
{
	for (int shared = 0; shared < 2; shared++) {
		ppo_net net;
		CU_ASSERT_EQUAL_FATAL(ppo_net_init(&net, 4, 2, 64, shared, 0, 8, NULL), 0);
		net.p[net.a_b3] = 0.5f;
		net.p[net.a_b3 + 1] = -0.5f;
		net.p[net.c_b3] = 1.0f;
		float obs[8] = { 0.1f, -0.2f, 0.3f, 0.01f, -0.04f, 0.02f, 0.0f, 0.5f };
		int32_t act[2] = { 0, 1 };
		float logp[2] = { -0.5f, -1.3f }, adv[2] = { 1, -1 }, ret[2] = { 2, 0.5f },
		      val[2] = { 0.9f, 1.1f };
		ppo_batch b = { 2, obs, act, NULL, logp, adv, ret, val };
		ppo_coefs c = { 0.2f, 0.01f, 0.5f, 1, 1 };
		ppo_stats st;
		ppo_loss_grad(&net, &b, &c, &st);
		CU_ASSERT(fabs(st.loss - 0.07505953) < 1e-6);
		CU_ASSERT(fabs(st.pg_loss - -0.07536844) < 1e-6);
		CU_ASSERT(fabs(st.v_loss - 0.3125) < 1e-6);
		CU_ASSERT(fabs(st.entropy - 0.58220311) < 1e-6);
		CU_ASSERT(fabs(net.g[net.a_b3] - -0.25309702) < 1e-6);
		CU_ASSERT(fabs(net.g[net.a_b3 + 1] - 0.25309702) < 1e-6);
		CU_ASSERT(fabs(net.g[net.c_b3] - -0.125) < 1e-6);
		/* trunks at 0: every weight gradient but the biases' is 0 */
		CU_ASSERT_EQUAL(net.g[net.a_w3], 0.0f);
		CU_ASSERT_EQUAL(net.g[net.a_w1], 0.0f);
		ppo_net_free(&net);
	}
}

/* ---- the gradient against central differences --------------------------------------- */

static double loss_of(ppo_net *net, const ppo_batch *b, const ppo_coefs *c)
{
	ppo_stats st;
	memset(net->g, 0, net->n * sizeof(float));
	ppo_loss_grad(net, b, c, &st);
	return st.loss;
}

static void fd_case(int gaussian, int shared, const char *isa)
{
	enum { N = 16, D = 3 };
	int K = gaussian ? 2 : 3, H = 16;
	ppo_net net;
	if (ppo_net_init(&net, D, K, H, shared, gaussian, N, isa))
		return; /* an ISA this processor lacks */
	train_rng r;
	train_rng_seed(&r, 77 + (uint64_t)(gaussian * 2 + shared));
	ppo_net_orthogonal(&net, &r);
	/* livelier heads than the 0.01 init, so the policy terms matter */
	for (int i = 0; i < K * H; i++)
		net.p[net.a_w3 + i] *= 60.0f;
	if (gaussian)
		for (int k = 0; k < K; k++)
			net.p[net.logstd + k] = -0.3f + 0.2f * k;
	float obs[N * D], af[N * 2], logp[N], adv[N], ret[N], val[N];
	int32_t ai[N];
	fill(obs, N * D, &r, 1.0f);
	ppo_net_forward(&net, obs, N, 1);
	for (int n = 0; n < N; n++) {
		ai[n] = (int32_t)train_rng_below(&r, (uint64_t)K);
		for (int k = 0; k < 2; k++)
			af[n * 2 + k] = net.out[n * K + (k % K)] + 0.8f * train_rng_normal(&r);
		adv[n] = 2 * train_rng_uniform(&r) - 1;
		ret[n] = net.val[n] + 0.6f * (2 * train_rng_uniform(&r) - 1);
		/* old values both near (inside the clip) and far (outside) */
		val[n] = net.val[n] + (n % 2 ? 0.05f : 0.5f) * (2 * train_rng_uniform(&r) - 1);
	}
	float lp[N];
	ppo_logp_entropy(&net, N, ai, af, lp, NULL);
	for (int n = 0; n < N; n++) /* ratios from 0.6 to 1.4: some clipped */
		logp[n] = lp[n] - logf(0.6f + 0.8f * (float)n / (N - 1));
	ppo_batch b = { N, obs, ai, af, logp, adv, ret, val };
	ppo_coefs c = { 0.2f, 0.01f, 0.5f, 1, 1 };
	loss_of(&net, &b, &c);
	float *g = malloc(net.n * sizeof(float));
	memcpy(g, net.g, net.n * sizeof(float));
	int probes = test_light() ? 40 : 300, bad = 0, checked = 0;
	for (int t = 0; t < probes; t++) {
		size_t i = (size_t)train_rng_below(&r, net.n);
		float keep = net.p[i];
		if (keep == 0.0f && g[i] == 0.0f)
			continue; /* padding between tensors */
		const float eps = 1e-3f;
		net.p[i] = keep + eps;
		double lp1 = loss_of(&net, &b, &c);
		net.p[i] = keep - eps;
		double lm1 = loss_of(&net, &b, &c);
		net.p[i] = keep;
		double fd = (lp1 - lm1) / (2.0 * eps);
		checked++;
		if (!close_to(g[i], fd, 3e-2, 2e-4)) {
			bad++;
			fprintf(stderr, "fd gaussian=%d shared=%d %s: p[%zu] grad %g fd %g\n", gaussian,
			        shared, net.kern->isa, i, g[i], fd);
		}
	}
	/* a kink (clip edge) under a probe may miss; the rest must agree */
	CU_ASSERT(bad <= checked / 50);
	CU_ASSERT(checked > probes / 3);
	free(g);
	ppo_net_free(&net);
}

static void test_gradient_fd(void)
{
	for (int gaussian = 0; gaussian < 2; gaussian++)
		for (int shared = 0; shared < 2; shared++) {
			fd_case(gaussian, shared, NULL);
			fd_case(gaussian, shared, "generic");
		}
}

/* ---- GAE by hand ------------------------------------------------------------------------ */

/*
 * One env, 3 steps, gamma 0.5, lambda 0.5; rewards 1, 2, 3; values 0.5,
 * 0.4, 0.3; the episode ended before step 2 (done[2] = 1); after the
 * rollout next value 10, not done.
 *   t=2: delta = 3 + 0.5*10 - 0.3 = 7.7;            adv 7.7
 *   t=1: delta = 2 + 0 - 0.4 = 1.6 (step 2 starts anew); adv 1.6
 *   t=0: delta = 1 + 0.5*0.4 - 0.5 = 0.7;           adv 0.7 + 0.25*1.6 = 1.1
 */
static void test_gae(void)
{
	float rew[3] = { 1, 2, 3 }, val[3] = { 0.5f, 0.4f, 0.3f }, nv[1] = { 10 }, adv[3], ret[3];
	uint8_t done[3] = { 0, 0, 1 }, nd[1] = { 0 };
	ppo_gae(3, 1, rew, val, done, nv, nd, 0.5f, 0.5f, adv, ret);
	CU_ASSERT(fabsf(adv[2] - 7.7f) < 1e-6f);
	CU_ASSERT(fabsf(adv[1] - 1.6f) < 1e-6f);
	CU_ASSERT(fabsf(adv[0] - 1.1f) < 1e-6f);
	CU_ASSERT(fabsf(ret[0] - 1.6f) < 1e-6f);
	nd[0] = 1;
	ppo_gae(3, 1, rew, val, done, nv, nd, 0.5f, 0.5f, adv, ret);
	CU_ASSERT(fabsf(adv[2] - 2.7f) < 1e-6f);
}

/* ---- training --------------------------------------------------------------------------- */

static ppo *make_ppo(const char *yaml)
{
	train_config *user = NULL, *cfg = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_config_parse(yaml, strlen(yaml), "t.yml", &user, &err), 0);
	CU_ASSERT_EQUAL_FATAL(train_config_validate(user, ppo_params, "component PPO", &cfg, &err), 0);
	train_ctx ctx;
	ctx_make(&ctx);
	void *self = NULL;
	int rc = ppo_create(cfg, &ctx, &self);
	if (rc)
		fprintf(stderr, "create: %s\n", ctx.fail);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	train_config_destroy(user);
	train_config_destroy(cfg);
	return self;
}

static void test_resume_exact(void)
{
	/* 8 iterations of 512 steps (5 under valgrind) */
	const char *y = test_light() ? "{total_timesteps: 2560, checkpoint_every: 2, seed: 5}"
	                             : "{total_timesteps: 4096, checkpoint_every: 3, seed: 5}";
	train_ctx ctx;
	ctx_make(&ctx);
	ppo *a = make_ppo(y), *b = make_ppo(y), *c = make_ppo(y);
	const char *dir = test_tmpdir();
	CU_ASSERT_EQUAL(ppo_train_run(a, &ctx, NULL, 0, 0, NULL), 0);
	/* 3 of 5 or 5 of 8 iterations, a checkpoint on the way and at the stop */
	CU_ASSERT_EQUAL(ppo_train_run(b, &ctx, dir, 0, test_light() ? 3 : 5, NULL), 0);
	CU_ASSERT_EQUAL(ppo_train_run(c, &ctx, dir, 1, 0, NULL), 0);
	CU_ASSERT_EQUAL(a->net.n, c->net.n);
	CU_ASSERT_EQUAL(memcmp(a->net.p, c->net.p, a->net.n * sizeof(float)), 0);
	CU_ASSERT_EQUAL(memcmp(a->net.m, c->net.m, a->net.n * sizeof(float)), 0);
	CU_ASSERT(memcmp(a->net.p, b->net.p, a->net.n * sizeof(float)) != 0);
	/* the reports agree but for the times */
	CU_ASSERT_PTR_NOT_NULL(strstr(c->report, test_light() ? "\"steps\": 2560" : "\"steps\": 4096"));
	const char *ea = strstr(a->report, "\"episodes\""), *ec = strstr(c->report, "\"episodes\"");
	CU_ASSERT(ea && ec && !strncmp(ea, ec, (size_t)(strstr(ea, "\"seconds\"") - ea)));
	/* a checkpoint of another config is refused */
	ppo *d = make_ppo(test_light() ? "{total_timesteps: 2560, checkpoint_every: 2, seed: 5, hidden_dim: 32}"
	                               : "{total_timesteps: 4096, checkpoint_every: 3, seed: 5, hidden_dim: 32}");
	CU_ASSERT_NOT_EQUAL(ppo_train_run(d, &ctx, dir, 1, 0, NULL), 0);
	ppo_destroy(a);
	ppo_destroy(b);
	ppo_destroy(c);
	ppo_destroy(d);
}

static double report_num(const char *rep, const char *key)
{
	double v = NAN;
	json_num(rep, key, &v);
	return v;
}

/* Persist, load, and play: the component's whole life. */
static void test_persist_and_play(void)
{
	ppo *p = make_ppo("{total_timesteps: 2048, seed: 3}");
	train_ctx ctx;
	ctx_make(&ctx);
	CU_ASSERT_EQUAL_FATAL(ppo_train_run(p, &ctx, NULL, 0, 0, NULL), 0);
	train_resource res = { .dir = (char *)test_tmpdir() };
	CU_ASSERT_EQUAL_FATAL(ppo_persist(p, &res), 0);
	train_config *cfg = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_config_validate(NULL, ppo_params, "PPO", &cfg, &err), 0);
	void *q = NULL;
	CU_ASSERT_EQUAL_FATAL(ppo_load(cfg, &res, &ctx, &q), 0);
	CU_ASSERT_EQUAL(memcmp(p->net.p, ((ppo *)q)->net.p, p->net.n * sizeof(float)), 0);
	train_values *in = NULL, *out = NULL;
	train_values_create(&in);
	train_values_create(&out);
	const char *req = "{\"episodes\": 7, \"seed\": 4}";
	train_values_put_bytes(in, "episodes", "application/json", req, strlen(req));
	CU_ASSERT_EQUAL(ppo_process(q, in, out, &ctx), 0);
	const train_value *v = train_values_get(out, "returns");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	char *text = strndup(train_value_data(v), train_value_size(v));
	CU_ASSERT_EQUAL(report_num(text, "episodes"), 7);
	CU_ASSERT(report_num(text, "mean") >= 8);
	free(text);
	train_values_destroy(in);
	train_values_destroy(out);
	train_config_destroy(cfg);
	ppo_destroy(q);
	ppo_destroy(p);
}

/* CleanRL's defaults on CartPole: the 100-episode mean of the training
 * episodes reaches 475 within 500k steps, on two seeds (light runs: a
 * short run that must at least learn). */
static void test_cartpole(void)
{
	train_ctx ctx;
	ctx_make(&ctx);
	int quick = test_light() || getenv("TRAIN_PPO_QUICK") != NULL;
#if defined(__SANITIZE_ADDRESS__)
	quick = 1; /* ten times slower under ASan: the full runs are for plain builds */
#endif
	if (quick) {
		ppo *p = make_ppo(test_light() ? "{total_timesteps: 25600, seed: 1}"
		                               : "{total_timesteps: 51200, seed: 1}");
		CU_ASSERT_EQUAL(ppo_train_run(p, &ctx, NULL, 0, 0, NULL), 0);
		/* a random policy averages about 22 */
		CU_ASSERT(report_num(p->report, "mean_return_100") > (test_light() ? 40 : 60));
		ppo_destroy(p);
		return;
	}
	for (int seed = 1; seed <= 2; seed++) {
		char y[128];
		snprintf(y, sizeof y, "{seed: %d, solved_return: 475}", seed);
		ppo *p = make_ppo(y);
		CU_ASSERT_EQUAL(ppo_train_run(p, &ctx, NULL, 0, 0, NULL), 0);
		fprintf(stderr, "seed %d: %s\n", seed, p->report);
		CU_ASSERT(report_num(p->report, "solved_at_step") > 0);
		ppo_destroy(p);
	}
}

static void test_pendulum(void)
{
	/* the Gaussian head through a whole (short) run, and its persist */
	ppo *p = make_ppo(test_light() ? "{env: Pendulum-v1, total_timesteps: 1024, num_envs: 2, num_steps: 256, seed: 2}"
	                               : "{env: Pendulum-v1, total_timesteps: 4096, num_envs: 2, num_steps: 256, seed: 2}");
	train_ctx ctx;
	ctx_make(&ctx);
	CU_ASSERT_EQUAL(ppo_train_run(p, &ctx, NULL, 0, 0, NULL), 0);
	CU_ASSERT(p->gaussian);
	CU_ASSERT(report_num(p->report, "mean_return_100") < 0);
	ppo_destroy(p);
}

static void test_config_errors(void)
{
	const char *bad[] = { "{hidden_dim: 60}", "{num_minibatches: 3}", "{policy_model: dqn}",
	                      "{total_timesteps: 10}", "{env_config: 3}" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		train_config *user = NULL, *cfg = NULL;
		train_error err = { 0 };
		train_config_parse(bad[i], strlen(bad[i]), "t.yml", &user, &err);
		CU_ASSERT_EQUAL(train_config_validate(user, ppo_params, "PPO", &cfg, &err), 0);
		train_ctx ctx;
		ctx_make(&ctx);
		void *self = NULL;
		CU_ASSERT_EQUAL(ppo_create(cfg, &ctx, &self), TRAIN_ECOMPONENT);
		CU_ASSERT(ctx.fail[0] != '\0');
		train_config_destroy(user);
		train_config_destroy(cfg);
	}
	/* an unknown environment is named */
	ppo *p = make_ppo("{env: NoSuchEnv-v0}");
	train_ctx ctx;
	ctx_make(&ctx);
	CU_ASSERT_NOT_EQUAL(ppo_train_run(p, &ctx, NULL, 0, 0, NULL), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(ctx.fail, "NoSuchEnv-v0"));
	ppo_destroy(p);
}

static const test_case cases[] = {
	{ "kernels against plain loops", test_kernels },
	{ "tanh", test_tanh },
	{ "loss and gradient by hand", test_loss_by_hand },
	{ "gradient against finite differences", test_gradient_fd },
	{ "GAE by hand", test_gae },
	{ "config errors", test_config_errors },
	{ "resume is exact", test_resume_exact },
	{ "persist, load, play", test_persist_and_play },
	{ "pendulum (Gaussian)", test_pendulum },
	{ "cartpole", test_cartpole },
	{ NULL, NULL },
};

int main(void)
{
	if (open_registry()) {
		fprintf(stderr, "plugins/envs is not built\n");
		return 99;
	}
	int rc = test_main("ppo", cases);
	train_registry_destroy(reg);
	return rc;
}
