/*
 * tests/test_gpt2.c - the GPT-2 plugin's model (issue 10): the tokenizer
 * and the logits against tests/fixtures/gpt2 (a hand-written PyTorch
 * GPT-2, make_fixture.py), every backward pass against finite
 * differences (full, LoRA on whole and partial c_attn, LoRA dropout),
 * gelu_new's oneDNN path against its loop, gradient checkpointing (the
 * same gradient bits, fewer activation bytes), LoRA training (the base
 * stays bitwise equal; the merge is base + (alpha/r) (B A)^T), adapter
 * and model folders round-trip, and bad folders each give their message.
 */
#include "testlib.h"

#include "../plugins/common/hf.h"
#include "../plugins/gpt2/gpt2.h"

#include <train/kernels.h>
#include <train/optim.h>

#include <jansson.h>
#include <math.h>
#include <sys/stat.h>

static const char *fixture(const char *name)
{
	static char buf[4][1024];
	static int k;
	const char *top = getenv("top_srcdir");
	char *b = buf[k++ & 3];
	snprintf(b, sizeof buf[0], "%s/tests/fixtures/gpt2/%s", top ? top : ".", name);
	return b;
}

static json_t *expected(void)
{
	json_error_t je;
	json_t *j = json_load_file(fixture("expected.json"), 0, &je);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	return j;
}

static gpt2_model *load_tiny(int with_grads, gpt2_bpe *bpe)
{
	gpt2_model *m = NULL;
	train_error err = { 0 };
	int rc = gpt2_hf_load(fixture("tiny"), with_grads, &m, bpe, &err);
	if (rc)
		fprintf(stderr, "load: %s\n", err.text);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	return m;
}

/* ---- 1. tokenizer and logits against the fixture --------------------------------- */

static void test_tokenizer(void)
{
	gpt2_bpe b;
	gpt2_model *m = load_tiny(0, &b);
	json_t *e = expected(), *toks = json_object_get(e, "tokenizer");
	CU_ASSERT_EQUAL(b.eot, json_integer_value(json_object_get(e, "eot")));
	for (size_t i = 0; i < json_array_size(toks); i++) {
		json_t *t = json_array_get(toks, i), *want = json_object_get(t, "ids");
		const char *text = json_string_value(json_object_get(t, "text"));
		int32_t ids[256];
		size_t n;
		CU_ASSERT_EQUAL(gpt2_bpe_encode(&b, text, strlen(text), ids, 256, &n), 0);
		int same = n == json_array_size(want);
		for (size_t k = 0; same && k < n; k++)
			same = ids[k] == json_integer_value(json_array_get(want, k));
		if (!same)
			fprintf(stderr, "tokenizer differs on \"%s\" (%zu ids)\n", text, n);
		CU_ASSERT(same);
		char *back;
		size_t bl;
		CU_ASSERT_EQUAL_FATAL(gpt2_bpe_decode(&b, ids, n, &back, &bl), 0);
		CU_ASSERT(bl == strlen(text) && memcmp(back, text, bl) == 0);
		free(back);
	}
	/* counting without room */
	size_t n;
	CU_ASSERT_EQUAL(gpt2_bpe_encode(&b, "Hello there", 11, NULL, 0, &n), 0);
	CU_ASSERT(n > 0);
	json_decref(e);
	gpt2_bpe_free(&b);
	gpt2_model_destroy(m);
}

static void test_logits(void)
{
	gpt2_model *m = load_tiny(0, NULL);
	json_t *e = expected(), *jids = json_object_get(e, "ids"), *jl = json_object_get(e, "logits");
	const int B = 2, T = 8, V = m->cfg.vocab_size;
	int32_t ids[16], tg[16];
	for (int b = 0; b < B; b++)
		for (int t = 0; t < T; t++)
			ids[b * T + t] = (int32_t)json_integer_value(json_array_get(json_array_get(jids, (size_t)b), (size_t)t));
	for (int n = 0; n < B * T; n++)
		tg[n] = n % T + 1 < T ? ids[n + 1] : -1;
	CU_ASSERT_EQUAL_FATAL(json_array_size(jl), (size_t)(B * T * V));
	gpt2_acts a = { 0 };
	float *lg = malloc((size_t)B * T * V * sizeof *lg);
	CU_ASSERT_EQUAL_FATAL(gpt2_forward(m, &a, ids, B, T, 0, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(gpt2_logits(m, &a, 0, B * T, lg), 0);
	double worst = 0;
	for (int i = 0; i < B * T * V; i++) {
		double d = fabs(lg[i] - json_real_value(json_array_get(jl, (size_t)i)));
		worst = d > worst ? d : worst;
	}
	/* fp32 against float64: the logits are O(10) */
	CU_ASSERT(worst < 2e-4);
	double loss;
	int64_t cnt;
	CU_ASSERT_EQUAL(gpt2_loss(m, &a, tg, 1.0f, 0, &loss, &cnt), 0);
	CU_ASSERT_EQUAL(cnt, B * (T - 1));
	CU_ASSERT(fabs(loss - json_real_value(json_object_get(e, "loss"))) < 1e-5);
	if (worst >= 2e-4 || fabs(loss - json_real_value(json_object_get(e, "loss"))) >= 1e-5)
		fprintf(stderr, "logits off by %g, loss %.9g\n", worst, loss);
	/* checkpointing gives the same trunk */
	gpt2_acts c = { 0 };
	float *lg2 = malloc((size_t)B * T * V * sizeof *lg2);
	CU_ASSERT_EQUAL(gpt2_forward(m, &c, ids, B, T, 1, NULL), 0);
	CU_ASSERT_EQUAL(gpt2_logits(m, &c, 0, B * T, lg2), 0);
	CU_ASSERT(memcmp(lg, lg2, (size_t)B * T * V * sizeof *lg) == 0);
	free(lg);
	free(lg2);
	gpt2_acts_free(&a);
	gpt2_acts_free(&c);
	json_decref(e);
	gpt2_model_destroy(m);
}

/* ---- 2. finite differences ------------------------------------------------------------ */

enum { FB = 2, FT = 6 };
static const int32_t fd_ids[FB * FT] = { 5, 71, 260, 33, 12, 290, 101, 32, 285, 9, 44, 200 };
static const int32_t fd_tg[FB * FT] = { 71, 260, 33, 12, 290, -1, 32, 285, 9, 44, 200, -1 };

/* loss (double) of the batch with LoRA dropout drawn from a fixed seed */
static double fd_loss(gpt2_model *m, gpt2_acts *a, int ckpt, int backward)
{
	train_rng r;
	train_rng_seed(&r, 99);
	double loss;
	CU_ASSERT_EQUAL_FATAL(gpt2_forward(m, a, fd_ids, FB, FT, ckpt, &r), 0);
	CU_ASSERT_EQUAL_FATAL(gpt2_loss(m, a, fd_tg, 1.0f, backward, &loss, NULL), 0);
	if (backward)
		CU_ASSERT_EQUAL_FATAL(gpt2_backward(m, a), 0);
	return loss;
}

/* Compare analytic gradients g (n) of params p with central differences at
 * `probes` indices spread over [0, n). */
static int fd_check(gpt2_model *m, gpt2_acts *a, float *p, const float *g, size_t n, int probes,
                    const char *what, const float *live)
{
	int bad = 0;
	train_rng r;
	train_rng_seed(&r, 7);
	for (int k = 0; k < probes; k++) {
		size_t i = (size_t)train_rng_below(&r, n);
		if (live && live[i] == 0.0f) { /* outside a block of B: kept at zero */
			k--;
			continue;
		}
		float keep = p[i];
		const float h = 1e-2f;
		p[i] = keep + h;
		double lp = fd_loss(m, a, 0, 0);
		p[i] = keep - h;
		double lm = fd_loss(m, a, 0, 0);
		p[i] = keep;
		double fd = (lp - lm) / (2.0 * h), an = g[i];
		/* the central difference's own error is O(h^2 f''') */
		if (fabs(fd - an) > 3e-3 + 2e-2 * fabs(an)) {
			fprintf(stderr, "%s[%zu]: analytic %.6g, finite difference %.6g\n", what, i, an, fd);
			bad++;
		}
	}
	return bad;
}

static void test_fd_full(void)
{
	gpt2_model *m = load_tiny(1, NULL);
	gpt2_acts a = { 0 };
	gpt2_zero_grad(m);
	fd_loss(m, &a, 0, 1);
	int probes = test_light() ? 40 : 400;
	CU_ASSERT_EQUAL(fd_check(m, &a, m->params, m->grads, m->n_params, probes, "param", NULL), 0);
	/* every tensor gets some gradient */
	for (size_t t = 0; t < m->n_tensors; t++) {
		const gpt2_tensor *x = &m->tensors[t];
		double s = 0;
		for (size_t i = 0; i < (size_t)(x->shape[0] * x->shape[1]); i++)
			s += fabs(m->grads[x->offset + i]);
		if (!(s > 0))
			fprintf(stderr, "no gradient in %s\n", x->name);
		CU_ASSERT(s > 0);
	}
	gpt2_acts_free(&a);
	gpt2_model_destroy(m);
}

static void lora_fd(unsigned kinds, unsigned parts, float dropout)
{
	gpt2_model *m = load_tiny(1, NULL);
	CU_ASSERT_EQUAL_FATAL(gpt2_lora_add(m, kinds, parts, 2, 6.0f, dropout, 3), 0);
	/* B = 0 makes A's gradient 0: give B values within its blocks */
	train_rng r;
	train_rng_seed(&r, 5);
	gpt2_lora *lo = m->lora;
	for (int i = 0; i < lo->n_mods; i++) {
		gpt2_lora_mod *md = &lo->mods[i];
		train_rng_fill_normal(&r, lo->params + md->b_off, (size_t)md->out * md->r, 0.0f, 0.3f);
	}
	/* the mask keeps B block-diagonal: apply it to the values through the grads */
	float *live = malloc(lo->n * sizeof *live);
	memcpy(lo->grads, lo->params, lo->n * sizeof(float));
	gpt2_lora_mask_grads(m);
	memcpy(lo->params, lo->grads, lo->n * sizeof(float));
	for (size_t i = 0; i < lo->n; i++)
		lo->grads[i] = 1.0f;
	gpt2_lora_mask_grads(m);
	memcpy(live, lo->grads, lo->n * sizeof(float));
	gpt2_acts a = { 0 };
	gpt2_zero_grad(m);
	fd_loss(m, &a, 0, 1);
	int probes = test_light() ? 30 : 300;
	CU_ASSERT_EQUAL(fd_check(m, &a, lo->params, lo->grads, lo->n, probes, "lora", live), 0);
	/* the base weights' gradients flow too (full fine-tuning with an adapter) */
	CU_ASSERT_EQUAL(fd_check(m, &a, m->params, m->grads, m->n_params, probes / 3, "base", NULL), 0);
	/* B's entries outside the blocks get no gradient */
	if (parts != GPT2_QKV) {
		int outside = 0;
		for (int i = 0; i < lo->n_mods; i++) {
			gpt2_lora_mod *md = &lo->mods[i];
			if (md->kind != GPT2_ATTN)
				continue;
			CU_ASSERT_EQUAL(md->r, 2 * ((parts & 1) + (parts >> 1 & 1) + (parts >> 2 & 1)));
			int C = m->cfg.n_embd;
			for (int o = 0; o < md->out; o++)
				for (int k = 0; k < md->r; k++) {
					int part = o / C, j = 0;
					for (int q = 0; q < part; q++)
						j += (parts >> q) & 1;
					int in = ((parts >> part) & 1) && k / 2 == j;
					if (!in && lo->grads[md->b_off + (size_t)o * md->r + k] != 0.0f)
						outside++;
				}
		}
		CU_ASSERT_EQUAL(outside, 0);
	}
	free(live);
	gpt2_acts_free(&a);
	gpt2_model_destroy(m);
}

static void test_fd_lora(void)
{
	lora_fd(1u << GPT2_ATTN, GPT2_QKV, 0.0f);
	lora_fd(15u, GPT2_Q | GPT2_V, 0.0f);
	lora_fd(1u << GPT2_ATTN | 1u << GPT2_MPROJ, GPT2_K, 0.3f);
}

static void test_gelu_new(void)
{
	/* the oneDNN path (n >= TRAIN_KERNELS_ELTWISE_MIN) against the loop */
	size_t n = TRAIN_KERNELS_ELTWISE_MIN + 3;
	float *x = malloc(n * sizeof *x), *y1 = malloc(n * sizeof *x), *y2 = malloc(n * sizeof *x);
	float *d = malloc(n * sizeof *x), *g1 = malloc(n * sizeof *x), *g2 = malloc(n * sizeof *x);
	train_rng r;
	train_rng_seed(&r, 1);
	train_rng_fill_uniform(&r, x, n, -8.0f, 8.0f);
	train_rng_fill_normal(&r, d, n, 0.0f, 1.0f);
	CU_ASSERT_EQUAL(gpt2_gelu_new_forward(y1, x, n), 0);
	CU_ASSERT_EQUAL(gpt2_gelu_new_backward(g1, x, d, n), 0);
	double wf = 0, wb = 0, wfd = 0;
	for (size_t i = 0; i < n; i += 1000) {
		size_t k = n - i < 1000 ? n - i : 1000;
		gpt2_gelu_new_forward(y2 + i, x + i, k);
		gpt2_gelu_new_backward(g2 + i, x + i, d + i, k);
	}
	for (size_t i = 0; i < n; i++) {
		wf = fmax(wf, fabs(y1[i] - y2[i]) / fmax(1.0, fabs(x[i])));
		wb = fmax(wb, fabs(g1[i] - g2[i]) / fmax(1.0, fabs(d[i])));
	}
	/* the loop's derivative against a central difference in double */
	for (size_t i = 0; i < n; i += 97) {
		double xx = x[i], h = 1e-4, k = 0.7978845608028654;
		double fp = 0.5 * (xx + h) * (1 + tanh(k * ((xx + h) + 0.044715 * pow(xx + h, 3))));
		double fm = 0.5 * (xx - h) * (1 + tanh(k * ((xx - h) + 0.044715 * pow(xx - h, 3))));
		wfd = fmax(wfd, fabs((fp - fm) / (2 * h) * d[i] - g2[i]) / fmax(1.0, fabs(d[i])));
	}
	CU_ASSERT(wf < 1e-5);
	CU_ASSERT(wb < 1e-5);
	CU_ASSERT(wfd < 1e-5);
	if (wf >= 1e-5 || wb >= 1e-5 || wfd >= 1e-5)
		fprintf(stderr, "gelu_new: forward %g, backward %g, vs FD %g\n", wf, wb, wfd);
	free(x); free(y1); free(y2); free(d); free(g1); free(g2);
}

/* ---- 3. gradient checkpointing ---------------------------------------------------------- */

static void ckpt_check(int lora, int layers)
{
	gpt2_model *m = NULL;
	gpt2_config c = { 300, 16, 32, layers, 4, 1e-5f };
	CU_ASSERT_EQUAL_FATAL(gpt2_model_create(&c, !lora, &m), 0);
	gpt2_model_init(m, 11);
	if (lora) {
		CU_ASSERT_EQUAL_FATAL(gpt2_lora_add(m, 15u, GPT2_Q | GPT2_V, 4, 8.0f, 0.2f, 2), 0);
		train_rng r;
		train_rng_seed(&r, 4);
		for (int i = 0; i < m->lora->n_mods; i++)
			train_rng_fill_normal(&r, m->lora->params + m->lora->mods[i].b_off,
			                      (size_t)m->lora->mods[i].out * m->lora->mods[i].r, 0.0f, 0.1f);
	}
	float *g = lora ? m->lora->grads : m->grads;
	size_t n = lora ? m->lora->n : m->n_params;
	float *g0 = malloc(n * sizeof *g0);
	gpt2_acts a = { 0 }, b = { 0 };
	gpt2_zero_grad(m);
	double l0 = fd_loss(m, &a, 0, 1);
	memcpy(g0, g, n * sizeof *g0);
	gpt2_zero_grad(m);
	double l1 = fd_loss(m, &b, 1, 1);
	CU_ASSERT_EQUAL(l0, l1);
	CU_ASSERT(memcmp(g0, g, n * sizeof *g0) == 0);
	/* the activations kept: one block's plus the block inputs */
	CU_ASSERT(b.bytes < a.bytes);
	if (layers >= 6)
		CU_ASSERT(b.bytes * 2 < a.bytes);
	free(g0);
	gpt2_acts_free(&a);
	gpt2_acts_free(&b);
	gpt2_model_destroy(m);
}

static void test_checkpointing(void)
{
	ckpt_check(0, 2);
	ckpt_check(1, 2);
	ckpt_check(1, 6);
}

/* ---- 4. LoRA training, merge, adapter round trip ------------------------------------------- */

static void train_steps(gpt2_model *m, int steps)
{
	gpt2_acts a = { 0 };
	train_adamw_cfg ac = { 0.9f, 0.999f, 1e-8f, 0.01f };
	float *mo = calloc(m->lora->n, sizeof *mo), *ve = calloc(m->lora->n, sizeof *ve);
	double first = 0, last = 0;
	for (int s = 0; s < steps; s++) {
		gpt2_zero_grad(m);
		double l = fd_loss(m, &a, s & 1, 1);
		if (!s)
			first = l;
		last = l;
		train_adamw_step(&ac, m->lora->params, m->lora->grads, mo, ve, m->lora->n, 1e-2f, s + 1);
	}
	CU_ASSERT(last < first);
	free(mo);
	free(ve);
	gpt2_acts_free(&a);
}

static void test_lora_train_merge(void)
{
	gpt2_model *m = load_tiny(0, NULL);
	float *base = malloc(m->n_params * sizeof *base);
	memcpy(base, m->params, m->n_params * sizeof *base);
	CU_ASSERT_EQUAL_FATAL(gpt2_lora_add(m, 1u << GPT2_ATTN | 1u << GPT2_FC, GPT2_Q | GPT2_V, 4, 16.0f,
	                                    0.1f, 9), 0);
	train_steps(m, test_light() ? 4 : 12);
	/* the base weights did not move */
	CU_ASSERT(memcmp(base, m->params, m->n_params * sizeof *base) == 0);
	/* B changed (from zero) */
	double bs = 0;
	for (int i = 0; i < m->lora->n_mods; i++)
		bs += fabs(m->lora->params[m->lora->mods[i].b_off]) +
		      fabs(m->lora->params[m->lora->mods[i].b_off + (size_t)m->lora->mods[i].r - 1]);
	CU_ASSERT(bs > 0);
	/* merged = base + (alpha / r) (B A)^T, from a copy of the adapters */
	gpt2_lora lo = *m->lora;
	float *lp = malloc(lo.n * sizeof *lp);
	gpt2_lora_mod *mods = malloc((size_t)lo.n_mods * sizeof *mods);
	memcpy(lp, lo.params, lo.n * sizeof *lp);
	memcpy(mods, lo.mods, (size_t)lo.n_mods * sizeof *mods);
	float scale = lo.scale;
	CU_ASSERT_EQUAL(lo.scale, 16.0f / 4.0f);
	CU_ASSERT_EQUAL(gpt2_lora_merge(m), 0);
	CU_ASSERT_PTR_NULL(m->lora);
	double worst = 0;
	size_t changed = 0;
	for (int i = 0; i < lo.n_mods; i++) {
		const gpt2_lora_mod *md = &mods[i];
		const gpt2_layer *y = &m->layer[md->layer];
		const float *W = md->kind == GPT2_ATTN ? y->attn_w : y->fc_w;
		size_t off = (size_t)(W - m->params);
		for (int in = 0; in < md->in; in++)
			for (int o = 0; o < md->out; o++) {
				double s = 0;
				for (int k = 0; k < md->r; k++)
					s += (double)lp[md->b_off + (size_t)o * md->r + k] * lp[md->a_off + (size_t)k * md->in + in];
				size_t at = off + (size_t)in * md->out + o;
				double want = base[at] + scale * s;
				worst = fmax(worst, fabs(m->params[at] - want));
				changed += m->params[at] != base[at];
			}
	}
	CU_ASSERT(worst < 1e-6);
	CU_ASSERT(changed > 0);
	free(lp);
	free(mods);
	free(base);
	gpt2_model_destroy(m);
}

static void test_adapter_roundtrip(void)
{
	const char *dir = test_tmpdir();
	char ad[600];
	snprintf(ad, sizeof ad, "%s/adapter", dir);
	train_error err = { 0 };
	for (int variant = 0; variant < 2; variant++) {
		gpt2_model *m = load_tiny(0, NULL);
		unsigned kinds = variant ? 15u : 1u << GPT2_ATTN, parts = variant ? GPT2_Q | GPT2_V : GPT2_QKV;
		CU_ASSERT_EQUAL_FATAL(gpt2_lora_add(m, kinds, parts, 3, 9.0f, 0.05f, 4), 0);
		train_steps(m, 3);
		CU_ASSERT_EQUAL_FATAL(gpt2_adapter_save(m, "tiny", ad, &err), 0);
		gpt2_model *m2 = load_tiny(0, NULL);
		if (gpt2_adapter_load(m2, ad, &err))
			fprintf(stderr, "adapter load: %s\n", err.text);
		CU_ASSERT_PTR_NOT_NULL_FATAL(m2->lora);
		CU_ASSERT_EQUAL(m2->lora->n, m->lora->n);
		CU_ASSERT_EQUAL(m2->lora->kinds, kinds);
		CU_ASSERT_EQUAL(m2->lora->attn_parts, parts);
		CU_ASSERT_EQUAL(m2->lora->scale, m->lora->scale);
		CU_ASSERT(fabsf(m2->lora->dropout - 0.05f) < 1e-7f);
		CU_ASSERT(memcmp(m2->lora->params, m->lora->params, m->lora->n * sizeof(float)) == 0);
		/* PEFT's names and shapes in the file */
		train_safetensors *st = NULL;
		char p[700];
		snprintf(p, sizeof p, "%s/adapter_model.safetensors", ad);
		CU_ASSERT_EQUAL_FATAL(train_safetensors_open(p, &st, NULL), 0);
		train_tensor t;
		CU_ASSERT_EQUAL(train_safetensors_get(st, "base_model.model.transformer.h.1.attn.c_attn.lora_A.weight", &t), 0);
		CU_ASSERT(t.ndim == 2 && t.shape[0] == (variant ? 6 : 3) && t.shape[1] == 16);
		CU_ASSERT_EQUAL(train_safetensors_get(st, "base_model.model.transformer.h.1.attn.c_attn.lora_B.weight", &t), 0);
		CU_ASSERT(t.ndim == 2 && t.shape[0] == 48 && t.shape[1] == (variant ? 6 : 3));
		train_safetensors_close(st);
		snprintf(p, sizeof p, "%s/adapter_config.json", ad);
		json_t *cfg = json_load_file(p, 0, NULL);
		CU_ASSERT_EQUAL(json_integer_value(json_object_get(cfg, "r")), 3);
		CU_ASSERT(json_is_array(json_object_get(cfg, "target_modules")));
		if (variant)
			CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(cfg, "rank_pattern"), "c_attn")), 6);
		json_decref(cfg);
		gpt2_model_destroy(m);
		gpt2_model_destroy(m2);
	}
	/* a damaged adapter: its file and what */
	gpt2_model *m = load_tiny(0, NULL);
	snprintf(ad, sizeof ad, "%s/adapter/adapter_config.json", dir);
	test_write(ad, "{\"peft_type\": \"LORA\", \"r\": 0, \"lora_alpha\": 8}");
	snprintf(ad, sizeof ad, "%s/adapter", dir);
	CU_ASSERT(gpt2_adapter_load(m, ad, &err) < 0);
	CU_ASSERT(strstr(err.file, "adapter_config.json") && strstr(err.text, "\"r\""));
	CU_ASSERT_PTR_NULL(m->lora);
	gpt2_model_destroy(m);
}

static void test_hf_roundtrip(void)
{
	const char *dir = test_tmpdir();
	char out[600], p1[700], p2[700];
	snprintf(out, sizeof out, "%s/saved", dir);
	gpt2_bpe b, b2;
	gpt2_model *m = load_tiny(0, &b), *m2 = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(gpt2_hf_save(m, &b, out, &err), 0);
	CU_ASSERT_EQUAL_FATAL(gpt2_hf_load(out, 0, &m2, &b2, &err), 0);
	CU_ASSERT(m2->n_params == m->n_params && memcmp(m->params, m2->params, m->n_params * 4) == 0);
	CU_ASSERT(b2.n == b.n && b2.n_merges == b.n_merges && b2.eot == b.eot);
	/* tensor names: GPT2LMHeadModel's, "transformer." first */
	train_safetensors *st = NULL;
	snprintf(p1, sizeof p1, "%s/model.safetensors", out);
	CU_ASSERT_EQUAL_FATAL(train_safetensors_open(p1, &st, NULL), 0);
	train_tensor t;
	CU_ASSERT_EQUAL(train_safetensors_get(st, "transformer.h.0.attn.c_attn.weight", &t), 0);
	CU_ASSERT(t.shape[0] == 16 && t.shape[1] == 48);
	train_safetensors_close(st);
	snprintf(p1, sizeof p1, "%s/merges.txt", out);
	snprintf(p2, sizeof p2, "%s", fixture("tiny/merges.txt"));
	char *a1, *a2;
	size_t l1, l2;
	CU_ASSERT_EQUAL_FATAL(hf_read_file(p1, &a1, &l1, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(hf_read_file(p2, &a2, &l2, NULL), 0);
	CU_ASSERT(l1 == l2 && memcmp(a1, a2, l1) == 0);
	free(a1);
	free(a2);
	gpt2_bpe_free(&b);
	gpt2_bpe_free(&b2);
	gpt2_model_destroy(m);
	gpt2_model_destroy(m2);
}

/* ---- 5. bad folders -------------------------------------------------------------------- */

static void copy_file(const char *from, const char *to)
{
	char *d;
	size_t n;
	CU_ASSERT_EQUAL_FATAL(hf_read_file(from, &d, &n, NULL), 0);
	FILE *f = fopen(to, "wb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_EQUAL(fwrite(d, 1, n, f), n);
	fclose(f);
	free(d);
}

/* A copy of the tiny folder with one file replaced (text NULL: removed). */
static const char *bad_copy(const char *file, const char *text)
{
	const char *dir = test_tmpdir();
	static const char *const files[] = { "config.json", "model.safetensors", "vocab.json", "merges.txt" };
	char p[700], q[700];
	for (int i = 0; i < 4; i++) {
		snprintf(p, sizeof p, "tiny/%s", files[i]);
		snprintf(q, sizeof q, "%s/%s", dir, files[i]);
		copy_file(fixture(p), q);
	}
	snprintf(q, sizeof q, "%s/%s", dir, file);
	if (text)
		test_write(q, text);
	else
		unlink(q);
	return dir;
}

static void expect_error(const char *dir, const char *file_part, const char *text_part)
{
	gpt2_model *m = NULL;
	gpt2_bpe b;
	train_error err = { 0 };
	int rc = gpt2_hf_load(dir, 0, &m, &b, &err);
	CU_ASSERT(rc < 0);
	CU_ASSERT_PTR_NULL(m);
	int ok = strstr(err.file, file_part) && strstr(err.text, text_part);
	if (!ok)
		fprintf(stderr, "expected %s: ...%s..., got %s: %s\n", file_part, text_part, err.file, err.text);
	CU_ASSERT(ok);
}

static void test_bad_folders(void)
{
	expect_error("/nonexistent/gpt2", "/nonexistent/gpt2", "nothing is downloaded");
	expect_error(bad_copy("model.safetensors", NULL), "model.safetensors", "cannot open");
	expect_error(bad_copy("config.json", "{\"n_layer\": 2, \"n_head\": 2, \"vocab_size\": 297}"),
	             "config.json", "\"n_embd\" is missing");
	expect_error(bad_copy("config.json", "{\"n_layer\": 2, \"n_head\": 3, \"n_embd\": 16, \"vocab_size\": 297}"),
	             "config.json", "not divisible");
	expect_error(bad_copy("config.json", "{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 16, \"vocab_size\": 297, "
	                      "\"activation_function\": \"relu\"}"), "config.json", "gelu_new");
	expect_error(bad_copy("config.json", "{\"n_layer\": 3, \"n_head\": 2, \"n_embd\": 16, \"vocab_size\": 297, "
	                      "\"n_positions\": 32}"), "model.safetensors", "h.2.ln_1.weight is missing");
	expect_error(bad_copy("config.json", "{\"n_layer\": 2, \"n_head\": 2, \"n_embd\": 16, \"vocab_size\": 297, "
	                      "\"n_positions\": 16}"), "model.safetensors", "wpe.weight has shape");
	expect_error(bad_copy("config.json", "{\"n_layer\": 2,"), "config.json", "");
	expect_error(bad_copy("vocab.json", "{\"a\": 0, \"b\": 1}"), "vocab.json", "<|endoftext|>");
	expect_error(bad_copy("vocab.json", "[1, 2]"), "vocab.json", "JSON object");
	expect_error(bad_copy("merges.txt", "#version: 0.2\n\xc4\xa0 t\nabc\n"), "merges.txt", "not a merge");
	expect_error(bad_copy("merges.txt", "#version: 0.2\nh e\nh e\n"), "merges.txt", "twice");
	expect_error(bad_copy("model.safetensors", "garbage"), "model.safetensors", "");
	/* line numbers */
	gpt2_model *m = NULL;
	gpt2_bpe b;
	train_error err = { 0 };
	gpt2_hf_load(bad_copy("merges.txt", "#version: 0.2\nh e\nabc\n"), 0, &m, &b, &err);
	CU_ASSERT_EQUAL(err.line, 3);
}

static const test_case cases[] = {
	{ "byte-level BPE against the fixture", test_tokenizer },
	{ "logits and loss against PyTorch", test_logits },
	{ "backward vs finite differences (full)", test_fd_full },
	{ "backward vs finite differences (LoRA)", test_fd_lora },
	{ "gelu_new: oneDNN path, loop, derivative", test_gelu_new },
	{ "gradient checkpointing: same gradients, less memory", test_checkpointing },
	{ "LoRA: base frozen, merge is base + (a/r) BA", test_lora_train_merge },
	{ "PEFT adapter round trip", test_adapter_roundtrip },
	{ "Hugging Face folder round trip", test_hf_roundtrip },
	{ "bad folders give file and what", test_bad_folders },
	{ NULL, NULL },
};

int main(void)
{
	if (train_kernels_init(1, TRAIN_PRECISION_FP32))
		return 2;
	return test_main("gpt2", cases);
}
