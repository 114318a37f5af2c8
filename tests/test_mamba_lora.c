/*
 * tests/test_mamba_lora.c - MambaLM from a saved model and with LoRA
 * (issue 10; plugins/mamba/mamba_lora.c and mamba.c's model_path):
 *
 *  - the adapters' gradients (in_proj, x_proj, dt_proj, out_proj, with
 *    dropout on a replayed mask) against central finite differences;
 *  - gradient checkpointing with adapters and dropout: the same loss and
 *    gradients, bit for bit;
 *  - a frozen base: no gradient array, its weights bitwise unchanged
 *    after optimizer steps on the adapters;
 *  - the merge: W + (alpha / r) B A, and the merged model's logits those
 *    of the adapted one;
 *  - PEFT's adapter folder written and read back, bit for bit;
 *  - MambaLM with model_path: validation at step 0 equals the saved
 *    model's best validation loss; with training_type lora the result is
 *    the saved weights plus the trained adapters' merge, bit for bit (so
 *    the base did not move); the adapter folder beside it; mismatched
 *    shapes and LoRA keys without lora are clear errors.
 */
#include "testlib.h"

#include "../plugins/mamba/mamba.c"
#include "../plugins/common/lora.h"
#include "ctx_private.h"
#include "mamba_testlib.h"

#include <jansson.h>
#include <math.h>

/* Adapters on every projection, B moved off zero so that A has gradient. */
static void add_lora(mamba_model *m, float dropout, uint64_t seed)
{
	unsigned all = (1u << MAMBA_LORA_NKINDS) - 1;
	CU_ASSERT_EQUAL_FATAL(mamba_lora_add(m, all, 3, 6.0f, dropout, seed), TRAIN_OK);
	train_rng r;
	train_rng_seed(&r, seed + 1);
	const mamba_lora *lo = m->lora;
	for (int i = 0; i < lo->n_mods; i++)
		train_rng_fill_uniform(&r, lo->params + lo->mods[i].b_off, (size_t)lo->mods[i].out * lo->r,
		                       -0.5f, 0.5f);
}

static void batch(int V, int B, int T, int32_t *ids, int32_t *tg, uint64_t seed)
{
	train_rng r;
	train_rng_seed(&r, seed);
	for (int i = 0; i < B * T; i++) {
		ids[i] = (int32_t)train_rng_below(&r, V);
		tg[i] = i % 7 == 3 ? -1 : (int32_t)train_rng_below(&r, V);
	}
}

/* A training forward whose dropout masks are the same each call. */
static float fwd(mamba_model *m, const int32_t *ids, const int32_t *tg, int B, int T, const train_rng *r0)
{
	float loss = NAN;
	m->lora->rng = *r0;
	m->lora->training = 1;
	CU_ASSERT_EQUAL(mamba_forward(m, ids, tg, B, T, &loss), TRAIN_OK);
	return loss;
}

static void test_lora_fd(void)
{
	const int V = 11, D = 16, NL = 2, B = 2, T = 19;
	for (int pass = 0; pass < 2; pass++) {
		float p = pass ? 0.2f : 0.0f;
		mamba_model *m = tiny_model(V, D, NL, 3, 0);
		/* delta near 1 rather than Mamba's initial 1e-3..1e-1, so that
		 * the paths through dt_proj (and its adapter) carry gradient */
		for (int l = 0; l < NL; l++)
			for (int c = 0; c < m->d.Di; c++)
				m->w.layer[l].dt_b[c] = 0.5f * sinf((float)(c + 7 * l));
		add_lora(m, p, 7);
		mamba_lora *lo = m->lora;
		int32_t ids[B * T], tg[B * T];
		batch(V, B, T, ids, tg, 9);
		train_rng r0 = lo->rng;
		fwd(m, ids, tg, B, T, &r0);
		memset(lo->grads, 0, lo->n * sizeof(float));
		CU_ASSERT_EQUAL_FATAL(mamba_backward(m, ids, tg, B, T, 1.0f), TRAIN_OK);
		CU_ASSERT_PTR_NULL(m->grads); /* the base has no gradients */
		train_rng r;
		train_rng_seed(&r, 5);
		/* every element (under valgrind: 3 of each tensor) */
		int bad = 0, checked = 0, light = test_light();
		for (int i = 0; i < 2 * lo->n_mods; i++) {
			const mamba_tensor_info *t = &lo->info[i];
			size_t probes = light ? 3 : t->numel;
			for (size_t q = 0; q < probes; q++) {
				size_t k = t->offset + (light ? (size_t)train_rng_below(&r, t->numel) : q);
				float keep = lo->params[k], eps = 3e-3f;
				lo->params[k] = keep + eps;
				float lp = fwd(m, ids, tg, B, T, &r0);
				lo->params[k] = keep - eps;
				float lm = fwd(m, ids, tg, B, T, &r0);
				lo->params[k] = keep;
				double fd = ((double)lp - lm) / (2.0 * eps), an = lo->grads[k];
				checked++;
				if (fabs(fd - an) > 2e-3 + 0.03 * fabs(an)) {
					fprintf(stderr, "lora fd (p %g): %s[%zu]: fd %g analytic %g\n", p, t->name,
					        k - t->offset, fd, an);
					bad++;
				}
			}
		}
		CU_ASSERT_EQUAL(bad, 0);
		CU_ASSERT(checked >= 16 * 3);
		mamba_model_destroy(m);
	}
}

/* One adapter alone, each kind: y += lora(x) on strided rows (dt_proj's
 * input is a slice of a wider row), loss = <c, y> (+ <c2, y2> for
 * in_proj's z rows); the input's, A's and B's gradients against central
 * differences (the loss is linear in x, bilinear in A and B). */
static void test_lora_module_fd(void)
{
	mamba_model *m = tiny_model(11, 16, 1, 2, 0);
	add_lora(m, 0.25f, 4);
	mamba_lora *lo = m->lora;
	const int B = 2, T = 5, N = B * T;
	CU_ASSERT_EQUAL_FATAL(mamba_lora_acts_get(m, B, T), TRAIN_OK);
	train_rng r;
	train_rng_seed(&r, 11);
	int bad = 0;
	for (int kind = 0; kind < MAMBA_LORA_NKINDS; kind++) {
		const mamba_lora_mod *md = &lo->mods[lo->mod_of[kind]];
		int in = md->in, half = kind == MAMBA_LORA_IN, out1 = half ? md->out / 2 : md->out;
		/* (only dt_proj's input is a slice of a wider row) */
		int ldx = kind == MAMBA_LORA_DT ? in + 3 : in, ldy = out1 + 2, lddx = in + 5;
		float *x = calloc((size_t)N * ldx, sizeof *x), *y = calloc((size_t)N * ldy, sizeof *y),
		      *y2 = calloc((size_t)N * ldy, sizeof *y2), *c = calloc((size_t)N * ldy, sizeof *c),
		      *c2 = calloc((size_t)N * ldy, sizeof *c2), *dx = calloc((size_t)N * lddx, sizeof *dx);
		train_rng_fill_uniform(&r, x, (size_t)N * ldx, -1, 1);
		train_rng_fill_uniform(&r, c, (size_t)N * ldy, -1, 1);
		train_rng_fill_uniform(&r, c2, (size_t)N * ldy, -1, 1);
		train_rng r0 = lo->rng;
		lo->fwd_p = lo->dropout;
#define LOSS(out) do { \
		memset(y, 0, (size_t)N * ldy * sizeof *y); \
		memset(y2, 0, (size_t)N * ldy * sizeof *y2); \
		lo->rng = r0; \
		CU_ASSERT_EQUAL(mamba_lora_forward(m, 0, kind, N, x, ldx, y, half ? y2 : NULL, ldy), TRAIN_OK); \
		double s_ = 0; \
		for (int n_ = 0; n_ < N; n_++) \
			for (int o = 0; o < out1; o++) \
				s_ += (double)c[(size_t)n_ * ldy + o] * y[(size_t)n_ * ldy + o] + \
				      (half ? (double)c2[(size_t)n_ * ldy + o] * y2[(size_t)n_ * ldy + o] : 0); \
		(out) = s_; \
	} while (0)
		double l0;
		LOSS(l0);
		(void)l0;
		memset(lo->grads, 0, lo->n * sizeof(float));
		CU_ASSERT_EQUAL(mamba_lora_backward(m, 0, kind, N, x, ldx, c, half ? c2 : NULL, ldy, dx, lddx),
		                TRAIN_OK);
		/* the input: every element of the slice; nothing outside it */
		for (int n = 0; n < N; n++)
			for (int i = 0; i < lddx; i++) {
				double an = dx[(size_t)n * lddx + i], fd = 0;
				if (i < in) {
					float *p = &x[(size_t)n * ldx + i], keep = *p;
					double lp, lm;
					*p = keep + 0.01f;
					LOSS(lp);
					*p = keep - 0.01f;
					LOSS(lm);
					*p = keep;
					fd = (lp - lm) / (double)(0.02f);
				}
				if (fabs(fd - an) > 1e-3 + 1e-3 * fabs(fd)) {
					if (bad++ < 5)
						fprintf(stderr, "lora module %d: dx[%d][%d] fd %g analytic %g\n", kind, n, i, fd, an);
				}
			}
		/* A and B: a few elements each */
		size_t offs[2] = { md->a_off, md->b_off }, sizes[2] = { (size_t)lo->r * in, (size_t)md->out * lo->r };
		for (int ab = 0; ab < 2; ab++)
			for (int q = 0; q < 6; q++) {
				size_t k = offs[ab] + (size_t)train_rng_below(&r, sizes[ab]);
				float keep = lo->params[k];
				double lp, lm;
				lo->params[k] = keep + 0.01f;
				LOSS(lp);
				lo->params[k] = keep - 0.01f;
				LOSS(lm);
				lo->params[k] = keep;
				double fd = (lp - lm) / (double)(0.02f), an = lo->grads[k];
				if (fabs(fd - an) > 1e-3 + 1e-3 * fabs(fd)) {
					if (bad++ < 5)
						fprintf(stderr, "lora module %d: %c fd %g analytic %g\n", kind, ab ? 'B' : 'A', fd, an);
				}
			}
#undef LOSS
		free(x);
		free(y);
		free(y2);
		free(c);
		free(c2);
		free(dx);
	}
	CU_ASSERT_EQUAL(bad, 0);
	mamba_model_destroy(m);
}

/* Checkpointing with adapters and dropout: the recomputed blocks draw the
 * masks of the forward, so the loss and gradients are the same bits. */
static void test_lora_ckpt(void)
{
	const int V = 11, D = 16, NL = 3, B = 2, T = 19;
	mamba_model *m = tiny_model(V, D, NL, 4, 0);
	add_lora(m, 0.1f, 8);
	mamba_lora *lo = m->lora;
	int32_t ids[B * T], tg[B * T];
	batch(V, B, T, ids, tg, 2);
	train_rng r0 = lo->rng;
	float *g0 = malloc(lo->n * sizeof *g0);
	float l0 = fwd(m, ids, tg, B, T, &r0);
	memset(lo->grads, 0, lo->n * sizeof(float));
	CU_ASSERT_EQUAL_FATAL(mamba_backward(m, ids, tg, B, T, 1.0f), TRAIN_OK);
	memcpy(g0, lo->grads, lo->n * sizeof *g0);
	size_t plain = lo->acts_floats;
	m->ckpt = 1;
	float l1 = fwd(m, ids, tg, B, T, &r0);
	memset(lo->grads, 0, lo->n * sizeof(float));
	CU_ASSERT_EQUAL_FATAL(mamba_backward(m, ids, tg, B, T, 1.0f), TRAIN_OK);
	CU_ASSERT(l0 == l1);
	CU_ASSERT(memcmp(g0, lo->grads, lo->n * sizeof *g0) == 0);
	CU_ASSERT(lo->acts_floats < plain);
	free(g0);
	mamba_model_destroy(m);
}

/* Optimizer steps on the adapters leave the base's bytes alone; the merge
 * is W + scale B A; the merged model computes what the adapted one did. */
static void test_lora_frozen_merge(void)
{
	const int V = 11, D = 16, NL = 2, B = 2, T = 19;
	mamba_model *m = tiny_model(V, D, NL, 6, 0);
	CU_ASSERT_EQUAL_FATAL(mamba_lora_add(m, 1u << MAMBA_LORA_IN | 1u << MAMBA_LORA_OUT | 1u << MAMBA_LORA_DT,
	                                     4, 8.0f, 0.1f, 3), TRAIN_OK);
	mamba_lora *lo = m->lora;
	float *base = malloc(m->n_params * sizeof *base), *mom = calloc(lo->n, sizeof *mom),
	      *vel = calloc(lo->n, sizeof *vel);
	memcpy(base, m->params, m->n_params * sizeof *base);
	int32_t ids[B * T], tg[B * T];
	train_adamw_cfg ac = train_adamw_defaults();
	for (int s = 0; s < 4; s++) {
		batch(V, B, T, ids, tg, 20 + (uint64_t)s);
		lo->training = 1;
		memset(lo->grads, 0, lo->n * sizeof(float));
		CU_ASSERT_EQUAL(mamba_forward(m, ids, tg, B, T, NULL), TRAIN_OK);
		CU_ASSERT_EQUAL(mamba_backward(m, ids, tg, B, T, 1.0f), TRAIN_OK);
		train_adamw_step(&ac, lo->params, lo->grads, mom, vel, lo->n, 0.05f, s + 1);
	}
	CU_ASSERT(memcmp(base, m->params, m->n_params * sizeof *base) == 0);
	/* B moved off zero */
	double bsum = 0;
	for (size_t i = 0; i < (size_t)lo->mods[0].out * lo->r; i++)
		bsum += fabs(lo->params[lo->mods[0].b_off + i]);
	CU_ASSERT(bsum > 0);
	/* the adapted model's logits (no dropout) */
	lo->training = 0;
	CU_ASSERT_EQUAL_FATAL(mamba_forward(m, ids, NULL, B, T, NULL), TRAIN_OK);
	size_t nl = (size_t)B * T * V;
	float *want = malloc(nl * sizeof *want);
	memcpy(want, mamba_logits(m), nl * sizeof *want);
	mamba_lora *det = mamba_lora_merge(m);
	CU_ASSERT_PTR_NOT_NULL_FATAL(det);
	CU_ASSERT_PTR_NULL(m->lora);
	/* W = base + (alpha / r) B A, from a double-precision product */
	double worst = 0;
	for (int i = 0; i < det->n_mods; i++) {
		const mamba_lora_mod *md = &det->mods[i];
		const mamba_layer_w *w = &m->w.layer[md->layer];
		const float *W = md->kind == MAMBA_LORA_IN ? w->in_proj : md->kind == MAMBA_LORA_OUT ? w->out_proj
		                 : md->kind == MAMBA_LORA_DT ? w->dt_w : w->x_proj;
		size_t off = (size_t)(W - m->params);
		const float *A = det->params + md->a_off, *Bm = det->params + md->b_off;
		for (int o = 0; o < md->out; o++)
			for (int c = 0; c < md->in; c++) {
				double acc = 0;
				for (int k = 0; k < det->r; k++)
					acc += (double)Bm[(size_t)o * det->r + k] * A[(size_t)k * md->in + c];
				double ref = base[off + (size_t)o * md->in + c] + 2.0 * acc;
				worst = fmax(worst, fabs(W[(size_t)o * md->in + c] - ref));
			}
	}
	CU_ASSERT(worst < 1e-6);
	if (worst >= 1e-6)
		fprintf(stderr, "merge: worst %g\n", worst);
	/* untouched tensors: the same bytes */
	CU_ASSERT(memcmp(base, m->params, (size_t)V * D * sizeof(float)) == 0);
	CU_ASSERT_EQUAL_FATAL(mamba_forward(m, ids, NULL, B, T, NULL), TRAIN_OK);
	const float *got = mamba_logits(m);
	double wl = 0;
	for (size_t i = 0; i < nl; i++)
		wl = fmax(wl, fabs(got[i] - want[i]));
	CU_ASSERT(wl < 1e-4);
	mamba_lora_free(det);
	free(want);
	free(base);
	free(mom);
	free(vel);
	mamba_model_destroy(m);
}

static void test_adapter_roundtrip(void)
{
	const char *dir = test_tmpdir();
	mamba_model *m = tiny_model(11, 16, 2, 1, 0), *m2 = tiny_model(11, 16, 2, 1, 0);
	CU_ASSERT_EQUAL_FATAL(mamba_lora_add(m, 1u << MAMBA_LORA_X | 1u << MAMBA_LORA_OUT, 5, 10.0f, 0.05f, 2),
	                      TRAIN_OK);
	mamba_lora *lo = m->lora;
	train_rng r;
	train_rng_seed(&r, 3);
	train_rng_fill_uniform(&r, lo->params, lo->n, -1, 1);
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(mamba_lora_save(lo, "base-model", dir, &err), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(mamba_lora_load(m2, dir, &err), TRAIN_OK);
	const mamba_lora *l2 = m2->lora;
	CU_ASSERT_EQUAL(l2->r, 5);
	CU_ASSERT_EQUAL(l2->kinds, lo->kinds);
	CU_ASSERT(fabsf(l2->alpha - 10.0f) < 1e-6f && fabsf(l2->dropout - 0.05f) < 1e-6f);
	CU_ASSERT_EQUAL_FATAL(l2->n, lo->n);
	for (int i = 0; i < 2 * lo->n_mods; i++)
		CU_ASSERT(!memcmp(lo->params + lo->info[i].offset, l2->params + l2->info[i].offset,
		                  lo->info[i].numel * sizeof(float)));
	/* PEFT's names and config */
	char path[1200];
	snprintf(path, sizeof path, "%s/adapter_config.json", dir);
	json_t *j = json_load_file(path, 0, NULL);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "peft_type")), "LORA");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(j, "target_modules"), 0)), "x_proj");
	json_decref(j);
	snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
	train_safetensors *f = NULL;
	train_tensor t;
	CU_ASSERT_EQUAL_FATAL(train_safetensors_open(path, &f, &err), TRAIN_OK);
	CU_ASSERT_EQUAL(train_safetensors_get(f, "base_model.model.backbone.layers.1.mixer.out_proj.lora_B.weight", &t),
	                TRAIN_OK);
	CU_ASSERT(t.shape[0] == 16 && t.shape[1] == 5);
	train_safetensors_close(f);
	/* onto a model of another shape: the tensor is named */
	mamba_model *m3 = tiny_model(11, 24, 2, 1, 0);
	CU_ASSERT_NOT_EQUAL(mamba_lora_load(m3, dir, &err), TRAIN_OK);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "lora_A"));
	CU_ASSERT_PTR_NULL(m3->lora);
	mamba_model_destroy(m);
	mamba_model_destroy(m2);
	mamba_model_destroy(m3);
}

/* ------------------------------------------------------------------------ */
/* the MambaLM component */

static void quiet_fn(void *ud, train_log_level level, const char *msg)
{
	(void)ud;
	(void)level;
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "  %s\n", msg);
}

static const train_log_sink quiet = { quiet_fn, NULL, TRAIN_LOG_DEBUG };

static const char *corpus_path(void)
{
	static char p[1024];
	const char *d = getenv("TRAIN_TEST_DATA");
	snprintf(p, sizeof p, "%s/mamba/corpus.txt", d ? d : "tests/data");
	return p;
}

/* tests of resuming: stop after this step (0: never); runs continue
 * from their checkpoints when `resuming` (train --resume) */
static int64_t stop_at;
static int resuming;

static mlm *train_one(const char *extra, const char *dir, int *rc_out, char *fail, size_t nfail)
{
	char text[3072];
	snprintf(text, sizeof text, "{train_file: \"%s\", %s}", corpus_path(), extra);
	train_config *user = NULL, *cfg = NULL;
	train_error err = { 0 };
	int rc = train_config_parse(text, strlen(text), "test.yml", &user, &err);
	if (!rc)
		rc = train_config_validate(user, params, "component MambaLM", &cfg, &err);
	train_config_destroy(user);
	if (rc) {
		snprintf(fail, nfail, "%s", err.text);
		*rc_out = rc;
		return NULL;
	}
	train_ctx ctx;
	train_ctx_init(&ctx, "lm", &quiet, 1, dir);
	ctx.resume = resuming;
	void *self = NULL;
	train_values *in = NULL, *out = NULL;
	train_values_create(&in);
	train_values_create(&out);
	rc = mlm_create(cfg, &ctx, &self);
	if (!rc) {
		((mlm *)self)->stop_at = stop_at;
		rc = mlm_train(self, in, out, &ctx);
	}
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

#define TINY "d_model: 16, n_layers: 2, max_length: 24, batch_size: 4, learning_rate: 0.01, " \
	"eval_batches: 2, seed: 3, threads: 1"

static double log_first_validation(const mlm *c)
{
	json_t *l = json_loads(c->log_json, 0, NULL);
	json_t *p = json_array_get(json_object_get(l, "validation"), 0);
	double v = json_integer_value(json_array_get(p, 0)) == 0 ? json_real_value(json_array_get(p, 1)) : NAN;
	json_decref(l);
	return v;
}

static void test_lm_from_saved(void)
{
	const char *dir = test_tmpdir(), *d2 = test_tmpdir();
	char fail[TRAIN_ERROR_TEXT], extra[2048];
	int rc;
	mlm *a = train_one(TINY ", max_steps: 12, eval_steps: 6", dir, &rc, fail, sizeof fail);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	struct train_resource res = { (char *)dir };
	CU_ASSERT_EQUAL_FATAL(mlm_persist(a, &res), TRAIN_OK);
	json_t *la = json_loads(a->log_json, 0, NULL);
	double saved = json_real_value(json_object_get(json_object_get(la, "best"), "loss"));
	json_decref(la);

	/* continued training: step 0 is the saved model's validation loss */
	snprintf(extra, sizeof extra, "model_path: \"%s\", max_length: 24, batch_size: 4, "
	         "learning_rate: 0.01, eval_batches: 2, seed: 5, threads: 1, max_steps: 4, eval_steps: 2", dir);
	mlm *b = train_one(extra, d2, &rc, fail, sizeof fail);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	CU_ASSERT(log_first_validation(b) == saved);
	CU_ASSERT_EQUAL(b->m->d.D, 16);
	CU_ASSERT_EQUAL(b->nvocab, a->nvocab);
	CU_ASSERT(!memcmp(b->vocab, a->vocab, (size_t)a->nvocab * sizeof *a->vocab));
	mlm_destroy(b);

	/* LoRA with checkpointing: the result is the saved weights plus the
	 * adapters' merge, bit for bit (the base never moved) */
	snprintf(extra, sizeof extra, "model_path: \"%s\", training_type: lora, lora_r: 4, lora_alpha: 8, "
	         "lora_target_modules: [in_proj, out_proj, x_proj], lora_save_adapter: true, "
	         "gradient_checkpointing: true, max_length: 24, batch_size: 4, learning_rate: 0.02, "
	         "eval_batches: 2, seed: 5, threads: 1, max_steps: 6, eval_steps: 3", dir);
	mlm *l = train_one(extra, d2, &rc, fail, sizeof fail);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	CU_ASSERT(log_first_validation(l) == saved);
	CU_ASSERT_PTR_NOT_NULL_FATAL(l->adapter);
	CU_ASSERT_PTR_NULL(l->m->lora);
	float *want = malloc(a->m->n_params * sizeof *want);
	memcpy(want, a->m->params, a->m->n_params * sizeof *want);
	const mamba_lora *ad = l->adapter;
	for (int i = 0; i < ad->n_mods; i++) {
		const mamba_lora_mod *md = &ad->mods[i];
		const mamba_layer_w *w = &a->m->w.layer[md->layer];
		const float *W = md->kind == MAMBA_LORA_IN ? w->in_proj : md->kind == MAMBA_LORA_OUT ? w->out_proj
		                 : md->kind == MAMBA_LORA_DT ? w->dt_w : w->x_proj;
		lora_merge_into(want + (W - a->m->params), (size_t)md->in, 1, ad->params + md->a_off,
		                ad->params + md->b_off, md->in, md->out, ad->r, ad->scale);
	}
	CU_ASSERT(!memcmp(want, l->m->params, a->m->n_params * sizeof *want));
	double moved = 0;
	for (size_t i = 0; i < a->m->n_params; i++)
		moved += fabs(l->m->params[i] - a->m->params[i]);
	CU_ASSERT(moved > 0);
	free(want);
	json_t *ll = json_loads(l->log_json, 0, NULL);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(ll, "training_type")), "lora");
	/* r (in + out) per adapted matrix: in_proj 4 (16 + 64), out_proj 4 (32 + 16), x_proj 4 (32 + 33) */
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(ll, "trainable_parameters")), 2 * (320 + 192 + 260));
	json_decref(ll);
	/* persisted: a plain MambaLM, and PEFT's folder beside it */
	struct train_resource r2 = { (char *)d2 };
	CU_ASSERT_EQUAL_FATAL(mlm_persist(l, &r2), TRAIN_OK);
	mamba_model *m2 = tiny_model(a->m->d.V, 16, 2, 1, 0);
	train_error err = { 0 };
	CU_ASSERT_EQUAL(mamba_lora_load(m2, d2, &err), TRAIN_OK);
	CU_ASSERT(m2->lora && !memcmp(m2->lora->params, ad->params, ad->n * sizeof(float)));
	mamba_model_destroy(m2);
	train_ctx ctx;
	train_ctx_init(&ctx, "lm", &quiet, 1, d2);
	train_config *user = NULL, *cfg = NULL;
	CU_ASSERT_EQUAL_FATAL(train_config_parse("{}", 2, "t.yml", &user, &err), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(train_config_validate(user, params, "MambaLM", &cfg, &err), TRAIN_OK);
	void *loaded = NULL;
	CU_ASSERT_EQUAL_FATAL(mlm_load(cfg, &r2, &ctx, &loaded), TRAIN_OK);
	CU_ASSERT(!memcmp(((mlm *)loaded)->m->params, l->m->params, l->m->n_params * sizeof(float)));
	mlm_destroy(loaded);
	train_config_destroy(user);
	train_config_destroy(cfg);
	mlm_destroy(l);

	/* errors: the recipe against the model, LoRA keys without lora */
	snprintf(extra, sizeof extra, "model_path: \"%s\", d_model: 32, max_steps: 2", dir);
	CU_ASSERT_PTR_NULL(train_one(extra, d2, &rc, fail, sizeof fail));
	CU_ASSERT_EQUAL(rc, TRAIN_ECOMPONENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(fail, "model.safetensors: d_model is 16"));
	snprintf(extra, sizeof extra, "model_path: \"%s\", tokenizer: bpe, max_steps: 2", dir);
	CU_ASSERT_PTR_NULL(train_one(extra, d2, &rc, fail, sizeof fail));
	CU_ASSERT_PTR_NOT_NULL(strstr(fail, "the tokenizer is char"));
	CU_ASSERT_PTR_NULL(train_one("lora_r: 4, max_steps: 2", d2, &rc, fail, sizeof fail));
	CU_ASSERT_PTR_NOT_NULL(strstr(fail, "lora_r is a LoRA setting"));
	CU_ASSERT_PTR_NULL(train_one("training_type: lora, max_steps: 2", d2, &rc, fail, sizeof fail));
	CU_ASSERT_PTR_NOT_NULL(strstr(fail, "give model_path"));
	snprintf(extra, sizeof extra, "model_path: \"%s\", training_type: lora, lora_target_modules: [q], "
	         "max_steps: 2", dir);
	CU_ASSERT_PTR_NULL(train_one(extra, d2, &rc, fail, sizeof fail));
	CU_ASSERT_PTR_NOT_NULL(strstr(fail, "not a Mamba projection"));
	CU_ASSERT_PTR_NULL(train_one("model_path: \"/nonexistent/m\", max_steps: 2", d2, &rc, fail, sizeof fail));
	CU_ASSERT_PTR_NOT_NULL(strstr(fail, "/nonexistent/m"));
	mlm_destroy(a);
}

/* A LoRA run stopped after a checkpoint and resumed ends with the bytes
 * of an uninterrupted one (the adapters, their moments, and the dropout's
 * generator are in the checkpoint). */
static void test_lora_resume(void)
{
	const char *base = test_tmpdir(), *d1 = test_tmpdir(), *d2 = test_tmpdir();
	char fail[TRAIN_ERROR_TEXT], extra[2048];
	int rc;
	mlm *a = train_one(TINY ", max_steps: 4, eval_steps: 4", base, &rc, fail, sizeof fail);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	struct train_resource res = { (char *)base };
	CU_ASSERT_EQUAL_FATAL(mlm_persist(a, &res), TRAIN_OK);
	mlm_destroy(a);
	int light = test_light();
#define LORA_RESUME "model_path: \"%s\", training_type: lora, lora_r: 2, lora_dropout: 0.2, " \
	"max_length: 24, batch_size: 4, learning_rate: 0.02, eval_batches: 2, seed: 5, threads: 1, " \
	"max_steps: %d, eval_steps: 3, save_steps: 2, checkpoint_dir: \"%s/ck\""
	snprintf(extra, sizeof extra, LORA_RESUME, base, light ? 6 : 8, d1);
	mlm *u = train_one(extra, d1, &rc, fail, sizeof fail);
	if (rc)
		fprintf(stderr, "lora resume: %s\n", fail);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	snprintf(extra, sizeof extra, LORA_RESUME, base, light ? 6 : 8, d2);
	stop_at = 4;
	CU_ASSERT_PTR_NULL(train_one(extra, d2, &rc, fail, sizeof fail));
	CU_ASSERT_EQUAL(rc, TRAIN_ECANCELED);
	stop_at = 0;
	resuming = 1;
	mlm *r = train_one(extra, d2, &rc, fail, sizeof fail);
	resuming = 0;
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	CU_ASSERT(!memcmp(u->m->params, r->m->params, u->m->n_params * sizeof(float)));
	CU_ASSERT(!memcmp(u->adapter->params, r->adapter->params, u->adapter->n * sizeof(float)));
	json_t *lu = json_loads(u->log_json, 0, NULL), *lr = json_loads(r->log_json, 0, NULL);
	CU_ASSERT(json_equal(json_object_get(lu, "train"), json_object_get(lr, "train")));
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(lr, "resumed_at")), 4);
	json_decref(lu);
	json_decref(lr);
	mlm_destroy(u);
	mlm_destroy(r);
}

static const test_case cases[] = {
	{ "lora_module_fd", test_lora_module_fd },
	{ "lora_fd", test_lora_fd },
	{ "lora_ckpt", test_lora_ckpt },
	{ "lora_frozen_merge", test_lora_frozen_merge },
	{ "adapter_roundtrip", test_adapter_roundtrip },
	{ "lm_from_saved", test_lm_from_saved },
	{ "lora_resume", test_lora_resume },
	{ NULL, NULL },
};

int main(void)
{
	train_kernels_init(1, TRAIN_PRECISION_FP32);
	return test_main("mamba_lora", cases);
}
