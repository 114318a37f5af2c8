/*
 * tests/test_bert.c - the BERT encoder (plugins/bert, compiled in):
 *
 *  1. Backward against central finite differences: a tiny model (2 layers,
 *     C 16, 2 heads, a padded key), loss = classification cross-entropy +
 *     masked-LM cross-entropy + sum(hidden * R) for a fixed random R, with
 *     and without dropout (the same rng seed gives the same masks in every
 *     forward), probing parameters of every tensor.
 *  2. An independent PyTorch implementation (tests/fixtures/bert_fixture.py)
 *     wrote a tiny Hugging Face checkpoint (tests/fixtures/bert-tiny-hf) and
 *     its outputs: the embeddings, every layer's output, the pooled vector,
 *     the classifier's logits and the MLM logits for two padded sequences
 *     (tests/fixtures/bert_expected.safetensors); ours must match.
 *  3. WordPiece ids of the fixture's texts match the script's.
 *  4. The checkpoint fine-tunes, saves back in the same layout, reloads to
 *     the same weights and logits; bad checkpoints give `file: what` errors.
 *  5. A training run resumed from its checkpoint is bit-identical.
 *  6. LoRA (issue 10): the adapters' gradients against finite differences
 *     (all six projections, B non-zero, adapter and hidden dropout); with
 *     gradient checkpointing the loss and every gradient are the same bits
 *     (full model and LoRA); a LoRA run with checkpointing leaves the base
 *     bitwise unchanged (the classifier trains, as PEFT's modules_to_save),
 *     the merge equals base + (alpha/r) B A (1e-6, against a double sum),
 *     the PEFT adapter folder reads back the same bits with PEFT's names,
 *     and the merged model gives the adapted model's logits (1e-5).
 *
 * Kernels run single-threaded in fp32.  Tolerances: finite differences of
 * float32 computations (eps 1e-3, double accumulation of the loss) within
 * 3e-3 + 5 % of the analytic value; against PyTorch (fp32 both sides,
 * different summation orders) 2e-5 absolute on values of order 1 (seen: 3e-6).
 */
#include "testlib.h"

#include "../plugins/bert/bert.h"
#include "../plugins/bert/bert_train.h"

#include <train/kernels.h>
#include <train/nn.h>
#include <train/optim.h>

#include <math.h>
#include <sys/stat.h>

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "tests/fixtures"
#endif

static const char *fixture(const char *name)
{
	static char buf[4][1024];
	static int k;
	const char *top = getenv("top_srcdir");
	char *b = buf[k++ & 3];
	snprintf(b, sizeof buf[0], "%s/tests/fixtures/%s", top ? top : ".", name);
	return b;
}

/* ---- 1. finite differences --------------------------------------------------- */

enum { FB = 2, FT = 5 };
static const int32_t fd_ids[FB * FT] = { 2, 7, 9, 3, 0, 2, 11, 5, 3, 1 };
static const int32_t fd_types[FB * FT] = { 0, 0, 0, 1, 1, 0, 0, 1, 1, 1 };
static const uint8_t fd_kmask[FB * FT] = { 1, 1, 1, 1, 0, 1, 1, 1, 1, 1 };
static const int32_t fd_labels[FB] = { 1, 2 };
static const int32_t fd_rows[3] = { 1, 3, 7 };
static const int32_t fd_targets[3] = { 4, 9, 12 };

static double fd_loss(bert_model *m, bert_acts *a, const float *R, float p, int backward)
{
	train_rng rng;
	train_rng_seed(&rng, 99);
	const int C = m->cfg.hidden, V = m->cfg.vocab_size, L = m->cfg.num_labels;
	CU_ASSERT_EQUAL_FATAL(bert_forward(m, a, fd_ids, fd_types, fd_kmask, FB, FT, p, &rng), 0);
	CU_ASSERT_EQUAL_FATAL(bert_cls_forward(m, a, &rng), 0);
	CU_ASSERT_EQUAL_FATAL(bert_mlm_forward(m, a, fd_rows, 3), 0);
	float l1, l2, probs1[FB * 8], *probs2 = malloc(3 * (size_t)V * sizeof *probs2);
	train_cross_entropy_forward(&l1, NULL, probs1, a->logits, fd_labels, FB, L, 0.0f);
	train_cross_entropy_forward(&l2, NULL, probs2, a->mlm_logits, fd_targets, 3, V, 0.0f);
	const float *h = bert_hidden(m, a);
	double s = (double)l1 + l2;
	for (int i = 0; i < FB * FT * C; i++)
		s += (double)h[i] * R[i];
	if (backward) {
		float *dh = malloc((size_t)FB * FT * C * sizeof *dh), *dl = calloc(FB * 8, sizeof *dl),
		      *dm = calloc(3 * (size_t)V, sizeof *dm);
		memcpy(dh, R, (size_t)FB * FT * C * sizeof *dh);
		train_cross_entropy_backward(dl, probs1, fd_labels, FB, L, 0.0f, 1.0f);
		train_cross_entropy_backward(dm, probs2, fd_targets, 3, V, 0.0f, 1.0f);
		CU_ASSERT_EQUAL(bert_mlm_backward(m, a, dm, dh), 0);
		CU_ASSERT_EQUAL(bert_cls_backward(m, a, dl, dh), 0);
		CU_ASSERT_EQUAL(bert_backward(m, a, dh), 0);
		free(dh);
		free(dl);
		free(dm);
	}
	free(probs2);
	return s;
}

static void fd_check(float p)
{
	bert_config cfg = { .vocab_size = 13, .hidden = 16, .layers = 2, .heads = 2, .intermediate = 24,
	                    .max_position = 8, .type_vocab = 2, .ln_eps = 1e-5f, .num_labels = 3,
	                    .mlm_head = 1 };
	bert_model *m;
	CU_ASSERT_EQUAL_FATAL(bert_model_create(&cfg, &m), 0);
	/* larger weights than BERT's 0.02 so that every path carries gradient */
	train_rng r;
	train_rng_seed(&r, 5);
	for (size_t i = 0; i < m->n_params; i++)
		m->params[i] = 0.4f * train_rng_normal(&r);
	for (size_t i = 0; i < m->n_tensors; i++)
		if (strstr(m->tensors[i].name, "LayerNorm.weight"))
			for (int64_t k = 0; k < m->tensors[i].shape[0]; k++)
				m->params[m->tensors[i].offset + k] += 1.0f;
	float *R = malloc((size_t)FB * FT * cfg.hidden * sizeof *R);
	train_rng_fill_normal(&r, R, (size_t)FB * FT * cfg.hidden, 0.0f, 1.0f);
	bert_acts a = { 0 };
	bert_zero_grad(m);
	fd_loss(m, &a, R, p, 1);
	int probes = test_light() ? 2 : 5, bad = 0, n = 0;
	for (size_t t = 0; t < m->n_tensors; t++) {
		const bert_tensor *bt = &m->tensors[t];
		size_t len = (size_t)(bt->shape[0] * bt->shape[1]);
		for (int k = 0; k < probes; k++) {
			size_t i = bt->offset + train_rng_below(&r, len);
			float save = m->params[i];
			const float eps = 1e-3f;
			m->params[i] = save + eps;
			double lp = fd_loss(m, &a, R, p, 0);
			m->params[i] = save - eps;
			double lm = fd_loss(m, &a, R, p, 0);
			m->params[i] = save;
			double num = (lp - lm) / (2.0 * eps), an = m->grads[i];
			n++;
			if (fabs(num - an) > 3e-3 + 0.05 * fabs(an)) {
				bad++;
				fprintf(stderr, "  %s[%zu]: numeric %.6g analytic %.6g\n", bt->name,
				        i - bt->offset, num, an);
			}
		}
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(n > 50);
	bert_acts_free(&a);
	free(R);
	bert_model_destroy(m);
}

static void test_backward(void) { fd_check(0.0f); }
static void test_backward_dropout(void) { fd_check(0.2f); }

/* ---- 2. against the PyTorch fixture -------------------------------------------- */

static void check_close(const char *what, const float *got, const train_tensor *want, double tol)
{
	size_t n = train_tensor_numel(want);
	const float *w = want->data;
	double worst = 0;
	for (size_t i = 0; i < n; i++)
		if (fabs((double)got[i] - w[i]) > worst)
			worst = fabs((double)got[i] - w[i]);
	if (worst > tol)
		fprintf(stderr, "  %s: max |diff| %.3g > %.3g\n", what, worst, tol);
	CU_ASSERT(worst <= tol);
}

typedef struct fx {
	train_safetensors *exp;
	int32_t *ids, *types;
	uint8_t *mask;
	int B, T;
} fx;

static void fx_open(fx *f)
{
	train_tensor t;
	memset(f, 0, sizeof *f);
	CU_ASSERT_EQUAL_FATAL(train_safetensors_open(fixture("bert_expected.safetensors"), &f->exp, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f->exp, "ids", &t), 0);
	f->B = (int)t.shape[0];
	f->T = (int)t.shape[1];
	f->ids = t.data;
	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f->exp, "types", &t), 0);
	f->types = t.data;
	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f->exp, "mask", &t), 0);
	f->mask = malloc((size_t)f->B * f->T);
	for (int i = 0; i < f->B * f->T; i++)
		f->mask[i] = (uint8_t)((const int32_t *)t.data)[i];
}

static void fx_close(fx *f)
{
	free(f->mask);
	train_safetensors_close(f->exp);
}

/* Outputs of m on the fixture's batch against the expected ones. */
static void check_outputs(bert_model *m, fx *f, double tol)
{
	bert_acts a = { 0 };
	train_tensor t;
	CU_ASSERT_EQUAL_FATAL(bert_forward(m, &a, f->ids, f->types, f->mask, f->B, f->T, 0.0f, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(bert_cls_forward(m, &a, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f->exp, "emb", &t), 0);
	check_close("emb", a.x0, &t, tol);
	for (int l = 0; l < m->cfg.layers; l++) {
		char name[32];
		snprintf(name, sizeof name, "layer.%d", l);
		CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f->exp, name, &t), 0);
		check_close(name, a.l[l].out, &t, tol);
	}
	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f->exp, "pooled", &t), 0);
	check_close("pooled", a.pooled, &t, tol);
	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f->exp, "logits", &t), 0);
	check_close("logits", a.logits, &t, tol);
	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f->exp, "mlm_rows", &t), 0);
	int M = (int)t.shape[0];
	CU_ASSERT_EQUAL_FATAL(bert_mlm_forward(m, &a, t.data, M), 0);
	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f->exp, "mlm_logits", &t), 0);
	check_close("mlm_logits", a.mlm_logits, &t, tol);
	bert_acts_free(&a);
}

static void test_fixture(void)
{
	bert_model *m;
	bert_vocab v;
	train_error err = { 0 };
	fx f;
	fx_open(&f);
	int rc = bert_hf_load(fixture("bert-tiny-hf"), -1, -1, 1, &m, &v, &err);
	if (rc)
		fprintf(stderr, "%s: %s\n", err.file, err.text);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL(m->cfg.layers, 2);
	CU_ASSERT_EQUAL(m->cfg.num_labels, 3);
	CU_ASSERT(m->mlm_w != NULL);
	check_outputs(m, &f, 2e-5);
	/* the tokenizer on the script's texts */
	for (int k = 0;; k++) {
		char key[32];
		train_tensor t;
		snprintf(key, sizeof key, "text.%d", k);
		const char *text = train_safetensors_meta(f.exp, key);
		if (!text)
			break;
		snprintf(key, sizeof key, "tok.%d", k);
		CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f.exp, key, &t), 0);
		int32_t ids[64];
		size_t n;
		CU_ASSERT_EQUAL(bert_tokenize(&v, text, strlen(text), ids, 64, &n), 0);
		CU_ASSERT_EQUAL(n, (size_t)t.shape[0]);
		if (n == (size_t)t.shape[0])
			CU_ASSERT(memcmp(ids, t.data, n * sizeof *ids) == 0);
	}
	bert_vocab_free(&v);
	bert_model_destroy(m);
	fx_close(&f);
}

/* Fine-tune a few AdamW steps on the fixture batch, save in HF layout,
 * reload: the same weights bit for bit, and the loss went down. */
static void test_finetune_save(void)
{
	bert_model *m, *m2;
	bert_vocab v, v2;
	train_error err = { 0 };
	fx f;
	fx_open(&f);
	CU_ASSERT_EQUAL_FATAL(bert_hf_load(fixture("bert-tiny-hf"), -1, 0, 1, &m, &v, &err), 0);
	float *am = calloc(m->n_params, sizeof *am), *av = calloc(m->n_params, sizeof *av);
	bert_acts a = { 0 };
	train_adamw_cfg oc = train_adamw_defaults();
	int32_t labels[2] = { 2, 0 };
	float first = 0, last = 0, probs[2 * 3];
	float *dh = malloc((size_t)f.B * f.T * m->cfg.hidden * sizeof *dh);
	train_rng rng;
	train_rng_seed(&rng, 3);
	for (int step = 1; step <= 8; step++) {
		float loss, dl[6] = { 0 };
		bert_zero_grad(m);
		CU_ASSERT_EQUAL_FATAL(bert_forward(m, &a, f.ids, f.types, f.mask, f.B, f.T, 0.1f, &rng), 0);
		CU_ASSERT_EQUAL_FATAL(bert_cls_forward(m, &a, &rng), 0);
		train_cross_entropy_forward(&loss, NULL, probs, a.logits, labels, 2, 3, 0.0f);
		train_cross_entropy_backward(dl, probs, labels, 2, 3, 0.0f, 1.0f);
		memset(dh, 0, (size_t)f.B * f.T * m->cfg.hidden * sizeof *dh);
		CU_ASSERT_EQUAL(bert_cls_backward(m, &a, dl, dh), 0);
		CU_ASSERT_EQUAL(bert_backward(m, &a, dh), 0);
		train_adamw_step(&oc, m->params, m->grads, am, av, m->n_params, 1e-3f, step);
		if (step == 1)
			first = loss;
		last = loss;
	}
	CU_ASSERT(last < first);
	const char *dir = test_tmpdir();
	char out[600];
	snprintf(out, sizeof out, "%s/tuned", dir);
	static const char *const labs[] = { "greet", "book_flight", "weather" };
	CU_ASSERT_EQUAL_FATAL(bert_hf_save(m, &v, labs, out, &err), 0);
	CU_ASSERT_EQUAL_FATAL(bert_hf_load(out, -1, -1, 9, &m2, &v2, &err), 0);
	CU_ASSERT_EQUAL(m2->n_params, m->n_params);
	CU_ASSERT(memcmp(m2->params, m->params, m->n_params * sizeof(float)) == 0);
	CU_ASSERT_EQUAL(v2.n, v.n);
	/* the saved file has HF's names, F32, and the "pt" format tag */
	char path[700];
	snprintf(path, sizeof path, "%s/model.safetensors", out);
	train_safetensors *st;
	train_tensor t;
	CU_ASSERT_EQUAL_FATAL(train_safetensors_open(path, &st, NULL), 0);
	CU_ASSERT_STRING_EQUAL(train_safetensors_meta(st, "format"), "pt");
	CU_ASSERT_EQUAL(train_safetensors_get(st, "bert.encoder.layer.1.attention.self.value.weight", &t), 0);
	CU_ASSERT_EQUAL(t.shape[0], 24);
	CU_ASSERT_EQUAL(train_safetensors_get(st, "classifier.weight", &t), 0);
	CU_ASSERT_EQUAL(t.shape[0], 3);
	train_safetensors_close(st);
	free(am);
	free(av);
	free(dh);
	bert_acts_free(&a);
	bert_vocab_free(&v);
	bert_vocab_free(&v2);
	bert_model_destroy(m);
	bert_model_destroy(m2);
	fx_close(&f);
}

/* ---- 4. bad checkpoints ---------------------------------------------------------- */

static void copy_file(const char *from, const char *to, long keep)
{
	FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
	CU_ASSERT_FATAL(a && b);
	int c;
	long n = 0;
	while ((c = fgetc(a)) != EOF && (keep < 0 || n < keep)) {
		fputc(c, b);
		n++;
	}
	fclose(a);
	fclose(b);
}

static char *load_err(const char *dir)
{
	static char buf[1024];
	bert_model *m = NULL;
	bert_vocab v;
	train_error err = { 0 };
	int rc = bert_hf_load(dir, -1, -1, 1, &m, &v, &err);
	CU_ASSERT(rc != 0);
	CU_ASSERT(m == NULL);
	snprintf(buf, sizeof buf, "%s: %s", err.file, err.text);
	return buf;
}

static void bad_dir(const char *dir, const char *drop_prefix, int64_t hidden_mismatch)
{
	const char *names[] = { "config.json", "vocab.txt" };
	mkdir(dir, 0777);
	for (int i = 0; i < 2; i++) {
		char a[1024], b[1024];
		snprintf(a, sizeof a, "%s/%s", fixture("bert-tiny-hf"), names[i]);
		snprintf(b, sizeof b, "%s/%s", dir, names[i]);
		copy_file(a, b, -1);
	}
	/* a model.safetensors without one tensor, or with the pooler reshaped */
	bert_model *m;
	bert_vocab v;
	CU_ASSERT_EQUAL_FATAL(bert_hf_load(fixture("bert-tiny-hf"), -1, -1, 1, &m, &v, NULL), 0);
	train_named_tensor *nt = calloc(m->n_tensors, sizeof *nt);
	size_t k = 0;
	for (size_t i = 0; i < m->n_tensors; i++) {
		const bert_tensor *t = &m->tensors[i];
		if (drop_prefix && strncmp(t->name, drop_prefix, strlen(drop_prefix)) == 0)
			continue;
		nt[k].name = t->name;
		nt[k].t.dtype = TRAIN_F32;
		nt[k].t.ndim = t->ndim;
		nt[k].t.shape[0] = t->shape[0];
		nt[k].t.shape[1] = t->shape[1];
		if (hidden_mismatch && strcmp(t->name, "bert.pooler.dense.weight") == 0)
			nt[k].t.shape[0] = hidden_mismatch;
		nt[k].t.data = m->params + t->offset;
		k++;
	}
	char p[1024];
	snprintf(p, sizeof p, "%s/model.safetensors", dir);
	CU_ASSERT_EQUAL(train_safetensors_write(p, nt, k, NULL, NULL), 0);
	free(nt);
	bert_vocab_free(&v);
	bert_model_destroy(m);
}

static void test_bad_checkpoints(void)
{
	const char *tmp = test_tmpdir();
	char d[700], p[800];
	const char *e;

	snprintf(d, sizeof d, "%s/missing", tmp);
	bad_dir(d, "bert.encoder.layer.1.output.dense.bias", 0);
	e = load_err(d);
	CU_ASSERT(strstr(e, "model.safetensors: tensor bert.encoder.layer.1.output.dense.bias is missing") != NULL);

	snprintf(d, sizeof d, "%s/shape", tmp);
	bad_dir(d, NULL, 12);
	e = load_err(d);
	CU_ASSERT(strstr(e, "model.safetensors: tensor bert.pooler.dense.weight has shape [12, 24], "
	                    "config.json says [24, 24]") != NULL);

	snprintf(d, sizeof d, "%s/truncated", tmp);
	bad_dir(d, NULL, 0);
	snprintf(p, sizeof p, "%s/model.safetensors", d);
	CU_ASSERT_EQUAL(truncate(p, 3000), 0);
	e = load_err(d);
	CU_ASSERT(strstr(e, "truncated/model.safetensors") != NULL);

	snprintf(p, sizeof p, "%s/config.json", d);
	test_write(p, "{\"model_type\": \"bert\", \"hidden_size\": 24}");
	e = load_err(d);
	CU_ASSERT(strstr(e, "config.json: \"vocab_size\" is missing") != NULL);
	test_write(p, "{\"vocab_size\": 56, \"hidden_size\": 25, \"num_hidden_layers\": 1, "
	              "\"num_attention_heads\": 3, \"intermediate_size\": 8}");
	e = load_err(d);
	CU_ASSERT(strstr(e, "config.json: hidden_size 25 is not divisible by num_attention_heads 3") != NULL);
	test_write(p, "{\"vocab_size\": 56,");
	e = load_err(d);
	CU_ASSERT(strstr(e, "config.json") != NULL);

	/* no pooler (as BertForMaskedLM saves): loads, with a fresh one */
	snprintf(d, sizeof d, "%s/nopooler", tmp);
	bad_dir(d, "bert.pooler.", 0);
	bert_model *m;
	bert_vocab v;
	train_error err = { 0 };
	CU_ASSERT_EQUAL(bert_hf_load(d, -1, -1, 1, &m, &v, &err), 0);
	if (!err.code) {
		CU_ASSERT(m->pool_w[0] != 0.0f);
		bert_vocab_free(&v);
		bert_model_destroy(m);
	}

	snprintf(d, sizeof d, "%s/nowhere", tmp);
	e = load_err("bert-base-uncased");
	CU_ASSERT(strstr(e, "bert-base-uncased: not a folder") != NULL);
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "%s\n", e);
}

/* ---- 5. training runs: resume is bit-identical ---------------------------------- */

static const char *const texts[] = {
	"book a flight to paris", "what is the weather today", "hello world", "play music",
	"the quick brown fox jumps over the lazy dog", "how are you", "i want to book a flight",
	"what is the weather", "hello", "play some music today", "book flight", "weather today",
};
static const int32_t text_labels[] = { 1, 2, 0, 0, 0, 0, 1, 2, 0, 0, 1, 2 };

static void run_once(int mlm, const char *ckdir, int resume, int64_t stop_after, float *out,
                     size_t *np, bert_run_result *res, int *rc_out)
{
	bert_vocab v;
	bert_model *m;
	CU_ASSERT_EQUAL_FATAL(bert_vocab_train(texts, 12, 40, 1, &v), 0);
	bert_config cfg = { .vocab_size = (int)v.n, .hidden = 16, .layers = 1, .heads = 2, .intermediate = 32,
	                    .max_position = 32, .type_vocab = 2, .ln_eps = 1e-12f,
	                    .num_labels = mlm ? 0 : 3, .mlm_head = mlm };
	CU_ASSERT_EQUAL_FATAL(bert_model_create(&cfg, &m), 0);
	bert_model_init(m, 42);
	bert_data tr = { 0 }, va = { 0 };
	for (int i = 0; i < 12; i++)
		CU_ASSERT_EQUAL(bert_data_add(i < 9 ? &tr : &va, &v, texts[i], strlen(texts[i]), 16, text_labels[i]), 0);
	bert_run_opts o = { .mlm = mlm, .batch_size = 2, .num_epochs = 3, .grad_accum = 2, .warmup_steps = 2,
	                    .eval_steps = 2, .save_steps = 2, .learning_rate = 1e-3, .weight_decay = 0.01,
	                    .dropout = 0.1, .mask_prob = 0.15, .seed = 11, .checkpoint_dir = ckdir,
	                    .resume = resume, .stop_after = stop_after, .threads = 1 };
	*rc_out = bert_train_run(m, &v, &tr, mlm ? &tr : &va, &o, NULL, res);
	*np = m->n_params;
	if (out)
		memcpy(out, m->params, m->n_params * sizeof *out);
	bert_data_free(&tr);
	bert_data_free(&va);
	bert_vocab_free(&v);
	bert_model_destroy(m);
}

static void resume_check(int mlm)
{
	const char *d1 = test_tmpdir(), *d2 = test_tmpdir();
	float *w1 = malloc(1 << 22), *w2 = malloc(1 << 22);
	size_t n1, n2;
	bert_run_result r1, r2, r3;
	int rc;
	run_once(mlm, d1, 0, 0, w1, &n1, &r1, &rc);
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(r1.steps, 9);
	CU_ASSERT(!r1.resumed);
	run_once(mlm, d2, 0, 5, NULL, &n2, &r2, &rc);
	CU_ASSERT_EQUAL(rc, TRAIN_ECANCELED);
	char p[700];
	snprintf(p, sizeof p, "%s/bert-checkpoint.safetensors", d2);
	CU_ASSERT(access(p, F_OK) == 0);
	run_once(mlm, d2, 1, 0, w2, &n2, &r3, &rc); /* --resume */
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT(r3.resumed);
	CU_ASSERT_EQUAL(n1, n2);
	CU_ASSERT(memcmp(w1, w2, n1 * sizeof *w1) == 0);
	CU_ASSERT(r1.log_json && r3.log_json && strcmp(r1.log_json, r3.log_json) == 0);
	CU_ASSERT(access(p, F_OK) != 0); /* a finished run leaves no checkpoint */
	if (!mlm)
		CU_ASSERT(r1.val_accuracy >= 0.0);
	free(r1.log_json);
	free(r2.log_json);
	free(r3.log_json);
	free(w1);
	free(w2);
}

static void test_resume_cls(void) { resume_check(0); }
static void test_resume_mlm(void) { resume_check(1); }

/* ---- 6. LoRA and gradient checkpointing ------------------------------------------ */

/* The finite-difference model of section 1 (larger weights). */
static bert_model *fd_model(train_rng *r)
{
	bert_config cfg = { .vocab_size = 13, .hidden = 16, .layers = 2, .heads = 2, .intermediate = 24,
	                    .max_position = 8, .type_vocab = 2, .ln_eps = 1e-5f, .num_labels = 3,
	                    .mlm_head = 1 };
	bert_model *m;
	CU_ASSERT_EQUAL_FATAL(bert_model_create(&cfg, &m), 0);
	train_rng_seed(r, 5);
	for (size_t i = 0; i < m->n_params; i++)
		m->params[i] = 0.4f * train_rng_normal(r);
	for (size_t i = 0; i < m->n_tensors; i++)
		if (strstr(m->tensors[i].name, "LayerNorm.weight"))
			for (int64_t k = 0; k < m->tensors[i].shape[0]; k++)
				m->params[m->tensors[i].offset + k] += 1.0f;
	return m;
}

/* Adapters on all six projections with B made non-zero (a fresh B is zero,
 * which leaves A without gradient), the base frozen but the classifier. */
static void fd_add_lora(bert_model *m, train_rng *r, float dropout)
{
	CU_ASSERT_EQUAL_FATAL(bert_lora_add(m, (1u << BERT_NKINDS) - 1, 2, 3.0f, dropout, 7), 0);
	for (int i = 0; i < m->lora->n_mods; i++) {
		const bert_lora_mod *md = &m->lora->mods[i];
		train_rng_fill_normal(r, m->lora->params + md->b_off, (size_t)md->out * 2, 0.0f, 0.3f);
	}
	CU_ASSERT_EQUAL_FATAL(bert_freeze_base(m, 1), 0);
}

static void test_lora_backward(void)
{
	train_rng r;
	bert_model *m = fd_model(&r);
	fd_add_lora(m, &r, 0.1f);
	CU_ASSERT_PTR_NULL(bert_grad(m, m->wte));
	CU_ASSERT_PTR_NULL(bert_grad(m, m->layer[0].qkv_w));
	CU_ASSERT_PTR_NOT_NULL(bert_grad(m, m->cls_w));
	float *R = malloc((size_t)FB * FT * m->cfg.hidden * sizeof *R);
	train_rng_fill_normal(&r, R, (size_t)FB * FT * m->cfg.hidden, 0.0f, 1.0f);
	bert_acts a = { 0 };
	bert_zero_grad(m);
	fd_loss(m, &a, R, 0.1f, 1);
	bert_lora *lo = m->lora;
	int probes = test_light() ? 2 : 4, bad = 0, n = 0;
	for (int i = 0; i < lo->n_mods; i++)
		for (int ab = 0; ab < 2; ab++)
			for (int k = 0; k < probes; k++) {
				const bert_lora_mod *md = &lo->mods[i];
				size_t len = 2 * (size_t)(ab ? md->out : md->in);
				size_t j = (ab ? md->b_off : md->a_off) + train_rng_below(&r, len);
				float save = lo->params[j];
				const float eps = 1e-3f;
				lo->params[j] = save + eps;
				double lp = fd_loss(m, &a, R, 0.1f, 0);
				lo->params[j] = save - eps;
				double lm = fd_loss(m, &a, R, 0.1f, 0);
				lo->params[j] = save;
				double num = (lp - lm) / (2.0 * eps), an = lo->grads[j];
				n++;
				/* the loss is of order 10 in float32 (rounding ~1e-5, over 2 eps =
				 * 2e-3: 5e-3 of noise): 1e-2 absolute; seen 4e-3 near zero */
				if (fabs(num - an) > 1e-2 + 0.05 * fabs(an)) {
					bad++;
					fprintf(stderr, "  layer %d kind %d lora_%c: numeric %.6g analytic %.6g\n", md->layer,
					        md->kind, ab ? 'B' : 'A', num, an);
				}
			}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(n >= 48);
	bert_acts_free(&a);
	free(R);
	bert_model_destroy(m);
}

/* The gradients of one backward pass (model's, then adapters'), copied. */
static float *grads_of(bert_model *m, int ckpt, const float *R, size_t *n, double *loss)
{
	bert_acts a = { 0 };
	a.ckpt = ckpt;
	bert_zero_grad(m);
	*loss = fd_loss(m, &a, R, 0.1f, 1);
	size_t ng = bert_n_grads(m), nl = m->lora ? m->lora->n : 0;
	float *g = malloc((ng + nl) * sizeof *g);
	memcpy(g, m->grads, ng * sizeof *g);
	if (nl)
		memcpy(g + ng, m->lora->grads, nl * sizeof *g);
	*n = ng + nl;
	if (ckpt)
		CU_ASSERT_EQUAL(a.nl_, 1); /* one layer's activations */
	bert_acts_free(&a);
	return g;
}

static void test_ckpt_bitwise(void)
{
	for (int lora = 0; lora < 2; lora++) {
		train_rng r;
		bert_model *m = fd_model(&r);
		if (lora)
			fd_add_lora(m, &r, 0.1f);
		float *R = malloc((size_t)FB * FT * m->cfg.hidden * sizeof *R);
		train_rng_fill_normal(&r, R, (size_t)FB * FT * m->cfg.hidden, 0.0f, 1.0f);
		size_t n0, n1;
		double l0, l1;
		float *g0 = grads_of(m, 0, R, &n0, &l0), *g1 = grads_of(m, 1, R, &n1, &l1);
		CU_ASSERT_EQUAL(n0, n1);
		CU_ASSERT(l0 == l1);
		CU_ASSERT(memcmp(g0, g1, n0 * sizeof *g0) == 0);
		free(g0);
		free(g1);
		free(R);
		bert_model_destroy(m);
	}
}

/* A LoRA classification run (adapters on query and value, checkpointing):
 * the base is the same bits after it, the classifier moved, the merge is
 * base + (alpha/r) B A, and the adapter folder reads back the same. */
static void test_lora_train(void)
{
	bert_vocab v;
	bert_model *m, *ref, *m2;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(bert_vocab_train(texts, 12, 40, 1, &v), 0);
	bert_config cfg = { .vocab_size = (int)v.n, .hidden = 16, .layers = 2, .heads = 2, .intermediate = 32,
	                    .max_position = 32, .type_vocab = 2, .ln_eps = 1e-12f, .num_labels = 3 };
	CU_ASSERT_EQUAL_FATAL(bert_model_create(&cfg, &m), 0);
	CU_ASSERT_EQUAL_FATAL(bert_model_create(&cfg, &ref), 0);
	CU_ASSERT_EQUAL_FATAL(bert_model_create(&cfg, &m2), 0);
	bert_model_init(m, 42);
	memcpy(ref->params, m->params, m->n_params * sizeof(float));
	memcpy(m2->params, m->params, m->n_params * sizeof(float));
	const unsigned qv = 1u << BERT_Q | 1u << BERT_V;
	CU_ASSERT_EQUAL_FATAL(bert_lora_add(m, qv, 4, 8.0f, 0.1f, 3), 0);
	CU_ASSERT_EQUAL_FATAL(bert_freeze_base(m, 1), 0);
	CU_ASSERT_EQUAL(m->lora->n, 2u * 2 * (4 * 16 + 16 * 4));
	bert_data tr = { 0 }, va = { 0 };
	for (int i = 0; i < 12; i++)
		CU_ASSERT_EQUAL(bert_data_add(i < 9 ? &tr : &va, &v, texts[i], strlen(texts[i]), 16, text_labels[i]), 0);
	bert_run_opts o = { .mlm = 0, .batch_size = 3, .num_epochs = 2, .grad_accum = 1, .learning_rate = 1e-2,
	                    .weight_decay = 0.01, .dropout = 0.1, .seed = 11, .threads = 1,
	                    .gradient_checkpointing = 1 };
	bert_run_result res;
	CU_ASSERT_EQUAL_FATAL(bert_train_run(m, &v, &tr, &va, &o, NULL, &res), 0);
	free(res.log_json);
	/* the base: bitwise unchanged up to the classifier, which trained */
	size_t head = (size_t)(m->cls_w - m->params);
	CU_ASSERT(memcmp(m->params, ref->params, head * sizeof(float)) == 0);
	CU_ASSERT(memcmp(m->params + head, ref->params + head, (m->n_params - head) * sizeof(float)) != 0);
	/* B moved away from zero */
	const bert_lora_mod *md0 = &m->lora->mods[0];
	double bsum = 0;
	for (int k = 0; k < md0->out * 4; k++)
		bsum += fabs(m->lora->params[md0->b_off + (size_t)k]);
	CU_ASSERT(bsum > 0);
	/* the adapter folder round trip, then the merge of both */
	char out[600];
	snprintf(out, sizeof out, "%s/adapter", test_tmpdir());
	CU_ASSERT_EQUAL_FATAL(bert_adapter_save(m, "tiny", out, &err), 0);
	CU_ASSERT_EQUAL_FATAL(bert_adapter_load(m2, out, &err), 0);
	CU_ASSERT_EQUAL_FATAL(m2->lora->n, m->lora->n);
	CU_ASSERT_EQUAL(m2->lora->kinds, qv);
	CU_ASSERT_EQUAL(m2->lora->rank, 4);
	CU_ASSERT(m2->lora->scale == 2.0f);
	CU_ASSERT(memcmp(m2->lora->params, m->lora->params, m->lora->n * sizeof(float)) == 0);
	CU_ASSERT(memcmp(m2->cls_w, m->cls_w, (size_t)(3 * 16 + 3) * sizeof(float)) == 0);
	char path[700];
	snprintf(path, sizeof path, "%s/adapter_model.safetensors", out);
	train_safetensors *st;
	train_tensor t;
	CU_ASSERT_EQUAL_FATAL(train_safetensors_open(path, &st, NULL), 0);
	CU_ASSERT_EQUAL(train_safetensors_get(st, "base_model.model.bert.encoder.layer.1.attention.self.value.lora_B.weight", &t), 0);
	CU_ASSERT(t.ndim == 2 && t.shape[0] == 16 && t.shape[1] == 4);
	CU_ASSERT_EQUAL(train_safetensors_get(st, "base_model.model.classifier.weight", &t), 0);
	CU_ASSERT_EQUAL(train_safetensors_count(st), 2 * 2 * 2 + 2);
	train_safetensors_close(st);
	/* merged = base + (alpha / r) B A, from the stored A and B in double */
	double worst = 0;
	bert_lora_merge(m);
	CU_ASSERT_PTR_NULL(m->lora);
	for (int i = 0; i < m2->lora->n_mods; i++) {
		const bert_lora_mod *md = &m2->lora->mods[i];
		const float *a = m2->lora->params + md->a_off, *b = m2->lora->params + md->b_off;
		size_t w0 = (size_t)(m->layer[md->layer].qkv_w - m->params) + (size_t)md->kind * 16 * 16;
		for (int o2 = 0; o2 < 16; o2++)
			for (int in = 0; in < 16; in++) {
				double d = 0;
				for (int k = 0; k < 4; k++)
					d += (double)b[o2 * 4 + k] * a[k * 16 + in];
				double want = ref->params[w0 + (size_t)o2 * 16 + in] + 2.0 * d;
				double got = m->params[w0 + (size_t)o2 * 16 + in];
				worst = fmax(worst, fabs(got - want));
			}
	}
	CU_ASSERT(worst < 1e-6);
	/* the merged model's logits equal the adapted model's (no dropout) */
	int32_t ids[6] = { v.cls, 7, 9, 11, 12, v.sep };
	bert_acts a1 = { 0 }, a2 = { 0 };
	CU_ASSERT_EQUAL_FATAL(bert_forward(m, &a1, ids, NULL, NULL, 1, 6, 0.0f, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(bert_cls_forward(m, &a1, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(bert_forward(m2, &a2, ids, NULL, NULL, 1, 6, 0.0f, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(bert_cls_forward(m2, &a2, NULL), 0);
	for (int k = 0; k < 3; k++)
		CU_ASSERT(fabsf(a1.logits[k] - a2.logits[k]) < 1e-5f);
	/* a damaged adapter folder is an error naming the file */
	bert_lora_drop(m2);
	snprintf(path, sizeof path, "%s/adapter_config.json", out);
	FILE *f = fopen(path, "w");
	fputs("{\"peft_type\": \"LORA\", \"r\": 0}", f);
	fclose(f);
	CU_ASSERT_NOT_EQUAL(bert_adapter_load(m2, out, &err), 0);
	CU_ASSERT(strstr(err.file, "adapter_config.json") != NULL);
	CU_ASSERT_PTR_NULL(m2->lora);
	bert_acts_free(&a1);
	bert_acts_free(&a2);
	bert_data_free(&tr);
	bert_data_free(&va);
	bert_vocab_free(&v);
	bert_model_destroy(m);
	bert_model_destroy(ref);
	bert_model_destroy(m2);
}

static const test_case cases[] = {
	{ "backward vs finite differences", test_backward },
	{ "backward with dropout", test_backward_dropout },
	{ "outputs and WordPiece ids against PyTorch", test_fixture },
	{ "fine-tune, save in HF layout, reload", test_finetune_save },
	{ "bad checkpoints", test_bad_checkpoints },
	{ "classifier: resume is bit-identical", test_resume_cls },
	{ "masked LM: resume is bit-identical", test_resume_mlm },
	{ "LoRA backward vs finite differences", test_lora_backward },
	{ "checkpointed gradients are the same bits", test_ckpt_bitwise },
	{ "LoRA run: frozen base, merge, adapter folder", test_lora_train },
	{ NULL, NULL },
};

int main(void)
{
	if (train_kernels_init(1, TRAIN_PRECISION_FP32))
		return 2;
	return test_main("bert", cases);
}
