/*
 * tests/test_mamba.c - the "mamba" plugin (plugins/mamba, compiled in):
 * the fused selective scan against a straight sequential reference in
 * double precision (forward and every gradient) and against central
 * differences; the whole model's backward pass (every block tensor, the
 * tied embedding and the norms) against central differences; the
 * recurrent step against the parallel forward; and the MambaLM component
 * (training, resume, errors) further down.
 *
 * Kernels run single-threaded in fp32 (train_kernels_init(1, FP32)).
 * Tolerances: the scan against the double reference 2e-5 relative to the
 * largest magnitude of each output; central differences of float32
 * computations (eps 1e-2 on a loss of order 1) within 2e-3 + 3 % of the
 * analytic value; the recurrent step's logits within 1e-4.
 */
#include "testlib.h"

#include "../plugins/mamba/mamba.c"
#include "ctx_private.h"
#include "mamba_testlib.h"

#include <jansson.h>

#include <math.h>

/* ------------------------------------------------------------------------ */
/* the sequential reference */

typedef struct ref_in {
	int B, T, Di, ldbc;
	float *x, *delta, *A, *Bm, *Cm, *Dp; /* Bm, Cm: NS floats at stride ldbc */
} ref_in;

/* y and, with dy, every gradient, in double with every state kept */
static void ref_scan(const ref_in *r, double *y, const double *dy, double *dx, double *ddelta,
                     double *dA, double *dDp, double *dB, double *dC)
{
	const int NS = MAMBA_NS, T = r->T, Di = r->Di;
	double *s = calloc((size_t)(T + 1) * NS, sizeof *s);
	for (int b = 0; b < r->B; b++)
		for (int d = 0; d < Di; d++) {
			memset(s, 0, (size_t)(T + 1) * NS * sizeof *s);
			for (int t = 0; t < T; t++) {
				size_t row = (size_t)b * T + t;
				double xv = r->x[row * Di + d], dv = r->delta[row * Di + d], acc = 0;
				for (int n = 0; n < NS; n++) {
					double e = exp(dv * r->A[(size_t)d * NS + n]);
					s[(t + 1) * NS + n] = e * s[t * NS + n] + dv * xv * r->Bm[row * r->ldbc + n];
					acc += s[(t + 1) * NS + n] * r->Cm[row * r->ldbc + n];
				}
				y[row * Di + d] = acc + r->Dp[d] * xv;
			}
			if (!dy)
				continue;
			double g[MAMBA_NS] = { 0 }; /* dL/ds_t coming from t+1 */
			for (int t = T - 1; t >= 0; t--) {
				size_t row = (size_t)b * T + t;
				double xv = r->x[row * Di + d], dv = r->delta[row * Di + d];
				double gy = dy[row * Di + d];
				dx[row * Di + d] += r->Dp[d] * gy;
				dDp[d] += gy * xv;
				for (int n = 0; n < NS; n++) {
					double a = r->A[(size_t)d * NS + n], e = exp(dv * a);
					double bn = r->Bm[row * r->ldbc + n], cn = r->Cm[row * r->ldbc + n];
					double G = g[n] + gy * cn;
					dC[row * r->ldbc + n] += gy * s[(t + 1) * NS + n];
					ddelta[row * Di + d] += G * (a * e * s[t * NS + n] + xv * bn);
					dA[(size_t)d * NS + n] += G * dv * e * s[t * NS + n];
					dB[row * r->ldbc + n] += G * dv * xv;
					dx[row * Di + d] += G * dv * bn;
					g[n] = G * e;
				}
			}
		}
	free(s);
}

static float *rnd(train_rng *r, size_t n, float lo, float hi)
{
	float *p = malloc(n * sizeof *p);
	train_rng_fill_uniform(r, p, n, lo, hi);
	return p;
}

static double maxabs_d(const double *a, size_t n)
{
	double m = 1e-30;
	for (size_t i = 0; i < n; i++)
		m = fmax(m, fabs(a[i]));
	return m;
}

/* every |got - want| within tol * max|want| */
static int close_fd(const float *got, const double *want, size_t n, double tol, const char *what)
{
	double m = maxabs_d(want, n), worst = 0;
	for (size_t i = 0; i < n; i++)
		worst = fmax(worst, fabs(got[i] - want[i]) / m);
	if (worst > tol)
		fprintf(stderr, "%s: worst relative difference %g\n", what, worst);
	return worst <= tol;
}

static void test_scan_reference(void)
{
	const int NS = MAMBA_NS;
	int shapes[][3] = { { 2, 37, 32 }, { 1, 16, 16 }, { 3, 5, 48 } };
	train_rng r;
	train_rng_seed(&r, 7);
	for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
		int B = shapes[k][0], T = shapes[k][1], Di = shapes[k][2], ldbc = 2 * NS + 5;
		size_t nd = (size_t)B * T * Di, nbc = (size_t)B * T * ldbc;
		ref_in in = { B, T, Di, ldbc, rnd(&r, nd, -1, 1), rnd(&r, nd, 0.001f, 0.5f),
		              rnd(&r, (size_t)Di * NS, -3, -0.2f), NULL, NULL, rnd(&r, Di, 0.5f, 1.5f) };
		float *bc = rnd(&r, nbc, -1, 1);
		in.Bm = bc + 5;
		in.Cm = bc + 5 + NS;
		float *dyf = rnd(&r, nd, -1, 1);
		double *y = calloc(nd, sizeof *y), *dy = calloc(nd, sizeof *dy);
		double *dx = calloc(nd, sizeof *dx), *ddl = calloc(nd, sizeof *ddl);
		double *dA = calloc((size_t)Di * NS, sizeof *dA), *dD = calloc(Di, sizeof *dD);
		double *dbc = calloc(nbc, sizeof *dbc), *dbc2 = calloc(nbc, sizeof *dbc2);
		for (size_t i = 0; i < nd; i++)
			dy[i] = dyf[i];
		ref_scan(&in, y, dy, dx, ddl, dA, dD, dbc + 5, dbc2 + 5 + NS);
		for (int threads = 1; threads <= 3; threads += 2) {
			mamba_scan sc = { B, T, Di, ldbc, threads, in.x, in.delta, in.A, in.Bm, in.Cm, in.Dp };
			float *yf = calloc(nd, sizeof *yf), *hs = calloc(mamba_scan_hs_floats(B, T, Di), 4);
			float *gx = calloc(nd, 4), *gd = calloc(nd, 4), *gA = calloc((size_t)Di * NS, 4);
			float *gD = calloc(Di, 4), *gbc = calloc(nbc, 4);
			CU_ASSERT_EQUAL_FATAL(mamba_scan_forward(&sc, yf, hs), TRAIN_OK);
			CU_ASSERT(close_fd(yf, y, nd, 2e-5, "y"));
			CU_ASSERT_EQUAL_FATAL(mamba_scan_backward(&sc, dyf, hs, gx, gd, gA, gD, gbc + 5,
			                                          gbc + 5 + NS), TRAIN_OK);
			CU_ASSERT(close_fd(gx, dx, nd, 2e-5, "dx"));
			CU_ASSERT(close_fd(gd, ddl, nd, 2e-5, "ddelta"));
			CU_ASSERT(close_fd(gA, dA, (size_t)Di * NS, 2e-5, "dA"));
			CU_ASSERT(close_fd(gD, dD, Di, 2e-5, "dD"));
			/* B and C gradients land in their own columns, nothing else */
			double *both = calloc(nbc, sizeof *both);
			for (size_t i = 0; i < nbc; i++)
				both[i] = dbc[i] + dbc2[i];
			CU_ASSERT(close_fd(gbc, both, nbc, 2e-5, "dB, dC"));
			free(both);
			free(yf), free(hs), free(gx), free(gd), free(gA), free(gD), free(gbc);
		}
		/* central differences of the fused forward, loss = sum(y * dy) */
		mamba_scan sc = { B, T, Di, ldbc, 1, in.x, in.delta, in.A, in.Bm, in.Cm, in.Dp };
		float *yf = calloc(nd, 4);
		float *ptrs[] = { in.x, in.delta, in.A, in.Dp, bc };
		double *grads[] = { dx, ddl, dA, dD, NULL };
		size_t lens[] = { nd, nd, (size_t)Di * NS, (size_t)Di, nbc };
		int probes = test_light() ? 2 : 6, bad = 0;
		for (int p = 0; p < 5; p++)
			for (int q = 0; q < probes; q++) {
				size_t i = (size_t)train_rng_below(&r, lens[p]);
				if (p == 4 && i % ldbc < 5)
					continue; /* not B or C */
				float keep = ptrs[p][i], eps = 1e-2f * fmaxf(1.0f, fabsf(keep));
				double lp = 0, lm = 0;
				ptrs[p][i] = keep + eps;
				mamba_scan_forward(&sc, yf, NULL);
				for (size_t j = 0; j < nd; j++)
					lp += yf[j] * dy[j];
				ptrs[p][i] = keep - eps;
				mamba_scan_forward(&sc, yf, NULL);
				for (size_t j = 0; j < nd; j++)
					lm += yf[j] * dy[j];
				ptrs[p][i] = keep;
				double fd = (lp - lm) / (2.0 * eps);
				double an = p < 4 ? grads[p][i] : dbc[i] + dbc2[i];
				if (fabs(fd - an) > 2e-3 + 0.03 * fabs(an)) {
					fprintf(stderr, "scan fd: input %d index %zu: fd %g analytic %g\n", p, i, fd, an);
					bad++;
				}
			}
		CU_ASSERT_EQUAL(bad, 0);
		free(yf);
		free(in.x), free(in.delta), free(in.A), free(in.Dp), free(bc), free(dyf);
		free(y), free(dy), free(dx), free(ddl), free(dA), free(dD), free(dbc), free(dbc2);
	}
}

static void test_fexp(void)
{
	double worst = 0;
	for (float x = -87.0f; x < 88.0f; x += 0.01337f) {
		double e = exp((double)x);
		worst = fmax(worst, fabs(mamba_fexp(x) - e) / e);
	}
	CU_ASSERT(worst < 3e-7);
	CU_ASSERT(mamba_fexp(-1000.0f) < 1e-37f);
	/* softplus through the fast log1p: 2e-7 absolute + 2e-7 relative */
	double wsp = 0;
	for (float x = -30.0f; x < 30.0f; x += 0.00731f) {
		double want = log1p(exp((double)x));
		wsp = fmax(wsp, fabs(mamba_softplus(x) - want) / (2e-7 + 2e-7 * want));
	}
	CU_ASSERT(wsp <= 1.0);
	if (wsp > 1.0)
		fprintf(stderr, "softplus: %g of the bound\n", wsp);
}

/* ------------------------------------------------------------------------ */
/* the model */

static void test_block_fd(void)
{
	const int V = 11, D = 16, NL = 2, B = 2, T = 19;
	mamba_model *m = tiny_model(V, D, NL, 3, 1);
	train_rng r;
	train_rng_seed(&r, 9);
	int32_t ids[B * T], tg[B * T];
	for (int i = 0; i < B * T; i++) {
		ids[i] = (int32_t)train_rng_below(&r, V);
		tg[i] = i % 7 == 3 ? -1 : (int32_t)train_rng_below(&r, V);
	}
	float loss;
	CU_ASSERT_EQUAL_FATAL(mamba_forward(m, ids, tg, B, T, &loss), TRAIN_OK);
	memset(m->grads, 0, m->n_params * sizeof(float));
	CU_ASSERT_EQUAL_FATAL(mamba_backward(m, ids, tg, B, T, 1.0f), TRAIN_OK);
	int probes = test_light() ? 1 : 4, bad = 0, checked = 0;
	for (size_t k = 0; k < m->n_info; k++) {
		const mamba_tensor_info *t = &m->info[k];
		for (int q = 0; q < probes; q++) {
			size_t i = t->offset + (size_t)train_rng_below(&r, t->numel);
			float keep = m->params[i], eps = 1e-2f, lp, lm;
			m->params[i] = keep + eps;
			mamba_forward(m, ids, tg, B, T, &lp);
			m->params[i] = keep - eps;
			mamba_forward(m, ids, tg, B, T, &lm);
			m->params[i] = keep;
			double fd = ((double)lp - lm) / (2.0 * eps), an = m->grads[i];
			checked++;
			if (fabs(fd - an) > 2e-3 + 0.03 * fabs(an)) {
				fprintf(stderr, "block fd: %s[%zu]: fd %g analytic %g\n", t->name,
				        i - t->offset, fd, an);
				bad++;
			}
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(checked >= 22);
	/* accumulation: a second backward doubles the gradients */
	float *g1 = malloc(m->n_params * sizeof *g1);
	memcpy(g1, m->grads, m->n_params * sizeof *g1);
	mamba_forward(m, ids, tg, B, T, &loss);
	CU_ASSERT_EQUAL(mamba_backward(m, ids, tg, B, T, 1.0f), TRAIN_OK);
	double worst = 0;
	for (size_t i = 0; i < m->n_params; i++)
		worst = fmax(worst, fabs(m->grads[i] - 2 * g1[i]) / (1e-6 + fabs(2 * g1[i])));
	CU_ASSERT(worst < 1e-3);
	free(g1);
	mamba_model_destroy(m);
}

/* Gradient checkpointing (issue 10): the loss and every gradient the same
 * bits as without it, three blocks (the recomputed block's arrays are
 * shared), and the activations smaller. */
static void test_ckpt_bitwise(void)
{
	const int V = 11, D = 16, NL = 3, B = 2, T = 19;
	mamba_model *m = tiny_model(V, D, NL, 5, 1);
	train_rng r;
	train_rng_seed(&r, 4);
	int32_t ids[B * T], tg[B * T];
	for (int i = 0; i < B * T; i++) {
		ids[i] = (int32_t)train_rng_below(&r, V);
		tg[i] = (int32_t)train_rng_below(&r, V);
	}
	float l0, l1, *g0 = malloc(m->n_params * sizeof *g0);
	CU_ASSERT_EQUAL_FATAL(mamba_forward(m, ids, tg, B, T, &l0), TRAIN_OK);
	memset(m->grads, 0, m->n_params * sizeof(float));
	CU_ASSERT_EQUAL_FATAL(mamba_backward(m, ids, tg, B, T, 1.0f), TRAIN_OK);
	memcpy(g0, m->grads, m->n_params * sizeof *g0);
	size_t plain = m->acts_floats;
	m->ckpt = 1;
	CU_ASSERT_EQUAL_FATAL(mamba_forward(m, ids, tg, B, T, &l1), TRAIN_OK);
	memset(m->grads, 0, m->n_params * sizeof(float));
	CU_ASSERT_EQUAL_FATAL(mamba_backward(m, ids, tg, B, T, 1.0f), TRAIN_OK);
	CU_ASSERT(l0 == l1);
	CU_ASSERT(memcmp(g0, m->grads, m->n_params * sizeof *g0) == 0);
	CU_ASSERT(m->acts_floats < plain);
	free(g0);
	mamba_model_destroy(m);
}

static void test_step_matches_forward(void)
{
	const int V = 13, D = 16, NL = 2, T = 23;
	mamba_model *m = tiny_model(V, D, NL, 5, 1);
	int32_t ids[T];
	for (int i = 0; i < T; i++)
		ids[i] = (i * 5 + 1) % V;
	CU_ASSERT_EQUAL_FATAL(mamba_forward(m, ids, NULL, 1, T, NULL), TRAIN_OK);
	const float *lg = mamba_logits(m);
	mamba_state st;
	CU_ASSERT_EQUAL_FATAL(mamba_state_create(m, &st), TRAIN_OK);
	double worst = 0;
	for (int t = 0; t < T; t++) {
		CU_ASSERT_EQUAL_FATAL(mamba_step(m, &st, ids[t]), TRAIN_OK);
		for (int v = 0; v < V; v++)
			worst = fmax(worst, fabs(st.logits[v] - lg[(size_t)t * V + v]));
	}
	CU_ASSERT(worst < 1e-4);
	if (worst >= 1e-4)
		fprintf(stderr, "step vs forward: %g\n", worst);
	CU_ASSERT_EQUAL(mamba_step(m, &st, V), TRAIN_EINVAL);
	mamba_state_free(&st);
	mamba_model_destroy(m);
}

static void test_dims(void)
{
	mamba_dims d;
	CU_ASSERT_EQUAL(mamba_dims_make(65, 12, 2, &d), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(mamba_dims_make(65, 128, 0, &d), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(mamba_dims_make(65, 128, 4, &d), TRAIN_OK);
	CU_ASSERT_EQUAL(d.Di, 256);
	CU_ASSERT_EQUAL(d.R, 8);
	CU_ASSERT_EQUAL(mamba_dims_make(65, 40, 4, &d), TRAIN_OK);
	CU_ASSERT_EQUAL(d.R, 3); /* ceil(40 / 16) */
}


/* ------------------------------------------------------------------------ */
/* the MambaLM component (plugins/mamba/mamba.c, compiled in) */

static void quiet_fn(void *ud, train_log_level level, const char *msg)
{
	(void)ud;
	(void)level;
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "  %s\n", msg);
}

static const train_log_sink quiet = { quiet_fn, NULL, TRAIN_LOG_DEBUG };

/* checkpoints go to ckpt_base/checkpoints (train_one sets it); runs
 * continue from them when `resuming` (train --resume) */
static char ckpt_base[600] = ".";
static int resuming;

static const char *corpus_path(void)
{
	static char p[1024];
	const char *d = getenv("TRAIN_TEST_DATA");
	snprintf(p, sizeof p, "%s/mamba/corpus.txt", d ? d : "tests/data");
	return p;
}

/* A validated config from YAML flow text with train_file filled in. */
static int make_config(const char *extra, train_config **out, train_error *err)
{
	char text[3072];
	snprintf(text, sizeof text, "{train_file: \"%s\", checkpoint_dir: \"%s/checkpoints\", %s}",
	         corpus_path(), ckpt_base, extra);
	train_config *user = NULL;
	int rc = train_config_parse(text, strlen(text), "test.yml", &user, err);
	if (!rc)
		rc = train_config_validate(user, params, "component MambaLM", out, err);
	train_config_destroy(user);
	return rc;
}

#define TINY "d_model: 16, n_layers: 2, max_length: 24, batch_size: 4, learning_rate: 0.01, " \
	"eval_batches: 2, seed: 3, threads: 1"

/* Train a MambaLM of config `extra` in dir; returns the component (or NULL
 * with *rc set). */
static mlm *train_one(const char *extra, const char *dir, int64_t stop_at, int *rc_out,
                      char *fail, size_t nfail)
{
	train_config *cfg = NULL;
	train_error err = { 0 };
	snprintf(ckpt_base, sizeof ckpt_base, "%s", dir);
	*rc_out = make_config(extra, &cfg, &err);
	if (*rc_out) {
		snprintf(fail, nfail, "%s", err.text);
		return NULL;
	}
	train_ctx ctx;
	train_ctx_init(&ctx, "lm", &quiet, 1, dir);
	ctx.resume = resuming;
	void *self = NULL;
	int rc = mlm_create(cfg, &ctx, &self);
	train_values *in = NULL, *out = NULL;
	train_values_create(&in);
	train_values_create(&out);
	if (!rc) {
		((mlm *)self)->stop_at = stop_at;
		rc = mlm_train(self, in, out, &ctx);
	}
	if (!rc)
		CU_ASSERT_PTR_NOT_NULL(train_values_get(out, "log"));
	snprintf(fail, nfail, "%s", ctx.fail);
	train_values_destroy(in);
	train_values_destroy(out);
	train_config_destroy(cfg);
	*rc_out = rc;
	if (rc) {
		mlm_destroy(self);
		return NULL;
	}
	return self;
}

static void test_lm_train_persist_generate(void)
{
	const char *dir = test_tmpdir();
	char fail[TRAIN_ERROR_TEXT];
	int rc;
	mlm *c = train_one(TINY ", max_steps: 40, eval_steps: 10, save_steps: 0", dir, 0, &rc, fail,
	                   sizeof fail);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	json_t *log = json_loads(c->log_json, 0, NULL);
	json_t *val = json_object_get(log, "validation"), *trn = json_object_get(log, "train");
	CU_ASSERT_EQUAL(json_array_size(trn), 40);
	CU_ASSERT_EQUAL(json_array_size(val), 4);
	double first = json_real_value(json_array_get(json_array_get(trn, 0), 1));
	double best = json_real_value(json_object_get(json_object_get(log, "best"), "loss"));
	CU_ASSERT(first > 2.5);   /* about log(V) at the start */
	CU_ASSERT(best < first - 0.7); /* it learns */
	json_decref(log);
	/* persist, load, generate */
	struct train_resource res = { (char *)dir };
	CU_ASSERT_EQUAL_FATAL(mlm_persist(c, &res), TRAIN_OK);
	train_config *cfg = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(make_config(TINY ", max_new_tokens: 30", &cfg, &err), TRAIN_OK);
	train_ctx ctx;
	train_ctx_init(&ctx, "lm", &quiet, 1, dir);
	void *loaded = NULL;
	CU_ASSERT_EQUAL_FATAL(mlm_load(cfg, &res, &ctx, &loaded), TRAIN_OK);
	mlm *l = loaded;
	CU_ASSERT_EQUAL(memcmp(l->m->params, c->m->params, c->m->n_params * sizeof(float)), 0);
	CU_ASSERT_EQUAL(l->nvocab, c->nvocab);
	char *texts[2] = { NULL, NULL };
	for (int k = 0; k < 2; k++) {
		train_values *in = NULL, *out = NULL;
		train_values_create(&in);
		train_values_create(&out);
		train_values_put_bytes(in, "prompt", "text/plain", "The cat", 7);
		train_values_put_bytes(in, "temperature", "text/plain", "0.8", 3);
		train_values_put_bytes(in, "top_k", "text/plain", "5", 1);
		train_values_put_bytes(in, "seed", "text/plain", "11", 2);
		train_values_put_bytes(in, "max_new_tokens", "text/plain", "", 0);
		CU_ASSERT_EQUAL_FATAL(mlm_process(l, in, out, &ctx), TRAIN_OK);
		const train_value *t = train_values_get(out, "text");
		CU_ASSERT_PTR_NOT_NULL_FATAL(t);
		texts[k] = strndup(train_value_data(t), train_value_size(t));
		train_values_destroy(in);
		train_values_destroy(out);
	}
	CU_ASSERT_EQUAL(strncmp(texts[0], "The cat", 7), 0);
	CU_ASSERT_EQUAL(strlen(texts[0]), 37); /* ASCII corpus: 30 characters more */
	CU_ASSERT_STRING_EQUAL(texts[0], texts[1]); /* the seed decides */
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "generated: %s\n", texts[0]);
	free(texts[0]);
	free(texts[1]);
	/* a bad process input */
	train_values *in = NULL, *out = NULL;
	train_values_create(&in);
	train_values_create(&out);
	train_values_put_bytes(in, "temperature", "text/plain", "hot", 3);
	CU_ASSERT_EQUAL(mlm_process(l, in, out, &ctx), TRAIN_ECOMPONENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(ctx.fail, "temperature"));
	train_values_destroy(in);
	train_values_destroy(out);
	mlm_destroy(l);
	mlm_destroy(c);
	train_config_destroy(cfg);
}

static void test_lm_resume(void)
{
	const char *d1 = test_tmpdir(), *d2 = test_tmpdir();
	char fail[TRAIN_ERROR_TEXT], ck[1100];
	int rc;
	/* under valgrind: 12 steps, stopped at 6 (the same checks) */
	int light = test_light(), stop = light ? 6 : 12;
	char cfg[512];
	snprintf(cfg, sizeof cfg, TINY ", max_steps: %d, eval_steps: 4, save_steps: 6, "
	         "gradient_accumulation_steps: 2, warmup_steps: 3, weight_decay: 0.1", light ? 12 : 24);
	mlm *a = train_one(cfg, d1, 0, &rc, fail, sizeof fail);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	/* stopped after the checkpoint of step `stop` */
	mlm *b = train_one(cfg, d2, stop, &rc, fail, sizeof fail);
	CU_ASSERT_EQUAL(rc, TRAIN_ECANCELED);
	CU_ASSERT_PTR_NULL(b);
	snprintf(ck, sizeof ck, "%s/checkpoints/lm.safetensors", d2);
	CU_ASSERT_EQUAL(access(ck, F_OK), 0);
	/* a resumed run ends with the same bytes */
	resuming = 1;
	b = train_one(cfg, d2, 0, &rc, fail, sizeof fail);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	CU_ASSERT_EQUAL(memcmp(a->m->params, b->m->params, a->m->n_params * sizeof(float)), 0);
	json_t *la = json_loads(a->log_json, 0, NULL), *lb = json_loads(b->log_json, 0, NULL);
	CU_ASSERT(json_equal(json_object_get(la, "train"), json_object_get(lb, "train")));
	CU_ASSERT(json_equal(json_object_get(la, "validation"), json_object_get(lb, "validation")));
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(lb, "resumed_at")), stop);
	json_decref(la);
	json_decref(lb);
	/* the finished run removed its checkpoint */
	CU_ASSERT_NOT_EQUAL(access(ck, F_OK), 0);
	mlm_destroy(a);
	mlm_destroy(b);

	/* a truncated checkpoint is a clear error */
	b = train_one(cfg, d2, stop, &rc, fail, sizeof fail);
	CU_ASSERT_EQUAL(rc, TRAIN_ECANCELED);
	CU_ASSERT_EQUAL_FATAL(truncate(ck, 1000), 0);
	b = train_one(cfg, d2, 0, &rc, fail, sizeof fail);
	CU_ASSERT_EQUAL(rc, TRAIN_ECOMPONENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(fail, "damaged"));
	CU_ASSERT_PTR_NOT_NULL(strstr(fail, "lm.safetensors"));
	/* without --resume a run starts over (and replaces the checkpoint) */
	resuming = 0;
	b = train_one(cfg, d2, 0, &rc, fail, sizeof fail);
	CU_ASSERT_EQUAL(rc, TRAIN_OK);
	mlm_destroy(b);
}

static void test_lm_errors(void)
{
	const char *dir = test_tmpdir();
	char fail[TRAIN_ERROR_TEXT];
	int rc;
	/* wrong types: the host's validation against the parameter table */
	train_config *cfg = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL(make_config("d_model: \"wide\"", &cfg, &err), TRAIN_ECONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "d_model"));
	CU_ASSERT_EQUAL(make_config("mixed_precision: 1", &cfg, &err), TRAIN_ECONFIG);
	CU_ASSERT_EQUAL(make_config("n_heads: 8", &cfg, &err), TRAIN_ECONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "known keys"));
	/* values the types cannot express */
	mlm *c = train_one("d_model: 12", dir, 0, &rc, fail, sizeof fail);
	CU_ASSERT_EQUAL(rc, TRAIN_ECOMPONENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(fail, "multiple of 8"));
	c = train_one(TINY ", gradient_accumulation_steps: 0", dir, 0, &rc, fail, sizeof fail);
	CU_ASSERT_EQUAL(rc, TRAIN_ECOMPONENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(fail, "gradient_accumulation_steps"));
	/* a missing corpus */
	c = train_one(TINY ", validation_file: nowhere.txt", dir, 0, &rc, fail, sizeof fail);
	CU_ASSERT_EQUAL(rc, TRAIN_ECOMPONENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(fail, "nowhere.txt"));
	/* too few distinct tokens allowed, too short a text */
	c = train_one(TINY ", vocab_size: 10", dir, 0, &rc, fail, sizeof fail);
	CU_ASSERT_EQUAL(rc, TRAIN_ECOMPONENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(fail, "vocab_size"));
	c = train_one("d_model: 16, max_length: 100000", dir, 0, &rc, fail, sizeof fail);
	CU_ASSERT_EQUAL(rc, TRAIN_ECOMPONENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(fail, "max_length"));
	CU_ASSERT_PTR_NULL(c);
}

/* MambaSFT (issue 9): an example is prompt, completion, END OF TEXT, and
 * only the completion's tokens and the end are targets. */
static void test_sft_examples(void)
{
	const char *jl = "{\"prompt\": \"ab\", \"completion\": \"c\"}\n\n"
	                 "{\"prompt\": \"x\", \"completion\": \"\\u00e9y\"}\n";
	train_value *v = NULL;
	CU_ASSERT_EQUAL_FATAL(train_value_new("application/jsonl", jl, strlen(jl), &v), TRAIN_OK);
	train_ctx ctx;
	train_ctx_init(&ctx, "sft", &quiet, 1, ".");
	examples e = { 0 };
	CU_ASSERT_EQUAL_FATAL(read_examples(v, "train", &e, &ctx), TRAIN_OK);
	CU_ASSERT_EQUAL(e.nex, 2);
	CU_ASSERT_EQUAL(e.n, 8);
	const int32_t want[8] = { 'a', 'b', 'c', MAMBA_EOT, 'x', 0xE9, 'y', MAMBA_EOT };
	const uint8_t wmask[8] = { 0, 0, 1, 1, 0, 1, 1, 1 };
	for (int i = 0; i < 8; i++) {
		CU_ASSERT_EQUAL(e.cps[i], want[i]);
		CU_ASSERT_EQUAL(e.mask[i], wmask[i]);
	}
	CU_ASSERT_EQUAL(e.starts[0], 0);
	CU_ASSERT_EQUAL(e.starts[1], 4);
	CU_ASSERT_EQUAL(e.starts[2], 8);
	/* a row of 5: ids then padding; targets only where the next token counts */
	int32_t ids[5], tg[5];
	example_row(e.cps, e.mask, 0, 4, 5, ids, tg);
	const int32_t wid[5] = { 'a', 'b', 'c', MAMBA_EOT, 0 }, wtg[5] = { -1, 'c', MAMBA_EOT, -1, -1 };
	for (int i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL(ids[i], wid[i]);
		CU_ASSERT_EQUAL(tg[i], wtg[i]);
	}
	examples_free(&e);
	train_value_unref(v);
	/* a line that is not an example */
	const char *bad = "{\"prompt\": \"ab\"}\n";
	CU_ASSERT_EQUAL_FATAL(train_value_new("application/jsonl", bad, strlen(bad), &v), TRAIN_OK);
	CU_ASSERT_NOT_EQUAL(read_examples(v, "train", &e, &ctx), TRAIN_OK);
	CU_ASSERT_PTR_NOT_NULL(strstr(ctx.fail, "train:1:"));
	examples_free(&e);
	train_value_unref(v);
}

/* MambaSFT learns a completion: the masked loss falls, and the model value
 * reads back to the same weights and vocabulary. */
static void test_sft_train(void)
{
	const char *dir = test_tmpdir();
	char buf[4096];
	size_t len = 0;
	for (int i = 0; i < 12; i++)
		len += (size_t)snprintf(buf + len, sizeof buf - len,
		                        "{\"prompt\": \"q%d? \", \"completion\": \"%s\"}\n", i,
		                        i % 2 ? "odd" : "even");
	train_config *user = NULL, *cfg = NULL;
	train_error err = { 0 };
	const char *flow = "{d_model: 16, n_layers: 1, batch_size: 4, max_steps: 60, learning_rate: 0.02, "
	                   "eval_steps: 0, seed: 1, threads: 1}";
	CU_ASSERT_EQUAL_FATAL(train_config_parse(flow, strlen(flow), "t.yml", &user, &err), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(train_config_validate(user, sft_params, "MambaSFT", &cfg, &err), TRAIN_OK);
	train_ctx ctx;
	train_ctx_init(&ctx, "sft", &quiet, 1, dir);
	void *self = NULL;
	CU_ASSERT_EQUAL_FATAL(sft_create(cfg, &ctx, &self), TRAIN_OK);
	train_values *in = NULL, *out = NULL;
	train_values_create(&in);
	train_values_create(&out);
	train_values_put_bytes(in, "train", "application/jsonl", buf, len);
	train_values_put_bytes(in, "validation", "application/jsonl", buf, len);
	int rc = mlm_train(self, in, out, &ctx);
	if (rc)
		fprintf(stderr, "%s\n", ctx.fail);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	mlm *c = self;
	json_t *log = json_loads(c->log_json, 0, NULL);
	json_t *trn = json_object_get(log, "train");
	double first = json_real_value(json_array_get(json_array_get(trn, 0), 1));
	double best = json_real_value(json_object_get(json_object_get(log, "best"), "loss"));
	CU_ASSERT(best < 0.5 * first);
	json_decref(log);
	mamba_model *m2 = NULL;
	int32_t *voc = NULL;
	int nv = 0;
	CU_ASSERT_EQUAL_FATAL(mamba_value_read(train_values_get(out, "model"), 0, "lm", &m2, &voc, &nv,
	                                       NULL, &err), TRAIN_OK);
	CU_ASSERT_EQUAL(nv, c->nvocab);
	CU_ASSERT(!memcmp(voc, c->vocab, (size_t)nv * sizeof *voc));
	CU_ASSERT(!memcmp(m2->params, c->m->params, c->m->n_params * sizeof(float)));
	mamba_model_destroy(m2);
	free(voc);
	train_values_destroy(in);
	train_values_destroy(out);
	mlm_destroy(self);
	train_config_destroy(user);
	train_config_destroy(cfg);
}

static const test_case cases[] = {
	{ "fexp", test_fexp },
	{ "dims", test_dims },
	{ "scan_reference", test_scan_reference },
	{ "block_fd", test_block_fd },
	{ "ckpt_bitwise", test_ckpt_bitwise },
	{ "step_matches_forward", test_step_matches_forward },
	{ "lm_train_persist_generate", test_lm_train_persist_generate },
	{ "lm_resume", test_lm_resume },
	{ "lm_errors", test_lm_errors },
	{ "sft_examples", test_sft_examples },
	{ "sft_train", test_sft_train },
	{ NULL, NULL },
};

int main(void)
{
	train_kernels_init(1, TRAIN_PRECISION_FP32);
	return test_main("mamba", cases);
}
