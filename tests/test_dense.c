/*
 * tests/test_dense.c - the RAG plugin's dense encoder (plugins/rag/dense.c,
 * issue 8):
 *  1. backward of mean pooling, L2 normalisation and InfoNCE against
 *     central finite differences (in double-checked float; tolerances
 *     stated below);
 *  2. mean-pooled, unit-length embeddings of the small random Hugging Face
 *     folder tests/fixtures/bert-tiny-hf against an independent PyTorch
 *     computation (tests/fixtures/dense_fixture.py ->
 *     dense_expected.safetensors), within 2e-5;
 *  3. the encoder's bytes: serialize -> parse gives the same embeddings;
 *     truncated and lying buffers are refused;
 *  4. inverse-cloze training on a toy collection: the loss falls and the
 *     encoder finds a sentence's own passage.
 */
#include "testlib.h"

#include "../plugins/rag/dense.h"

#include <train/kernels.h>
#include <train/optim.h>

#include <math.h>

static const char *fixture(const char *name)
{
	static char buf[4][1024];
	static int k;
	char *b = buf[k++ % 4];
	const char *top = getenv("top_srcdir");
	snprintf(b, sizeof buf[0], "%s/tests/fixtures/%s", top ? top : ".", name);
	return b;
}

static void fill(float *x, size_t n, uint64_t seed, float scale)
{
	train_rng r;
	train_rng_seed(&r, seed);
	for (size_t i = 0; i < n; i++)
		x[i] = scale * (2.0f * train_rng_uniform(&r) - 1.0f);
}

/* ---- 1. finite differences -------------------------------------------------------- */

/* L = sum(w * f(x)): analytic dL/dx from backward against (L(x+h)-L(x-h))/2h. */
enum { POOL, NORM };

static double layer_loss(int which, const float *x, const uint8_t *mask, const float *w, int B, int T,
                         int C)
{
	float out[64 * 8], nrm[8];
	if (which == POOL)
		dense_pool_forward(out, x, mask, B, T, C);
	else
		dense_l2norm_forward(out, nrm, x, B, C);
	double s = 0;
	for (int i = 0; i < B * C; i++)
		s += (double)w[i] * out[i];
	return s;
}

static void fd_layer(int which)
{
	const int B = 3, T = 4, C = 5;
	const int nin = which == POOL ? B * T * C : B * C;
	float x[60], w[15], g[60] = { 0 }, out[15], nrm[3];
	uint8_t mask[12] = { 1, 1, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0 };
	fill(x, (size_t)nin, 11 + (uint64_t)which, 1.0f);
	fill(w, (size_t)(B * C), 12, 1.0f);
	if (which == POOL)
		dense_pool_backward(g, w, mask, B, T, C);
	else {
		dense_l2norm_forward(out, nrm, x, B, C);
		dense_l2norm_backward(g, w, out, nrm, B, C);
	}
	double worst = 0;
	for (int i = 0; i < nin; i++) {
		float keep = x[i];
		const float h = 1e-2f;
		x[i] = keep + h;
		double lp = layer_loss(which, x, mask, w, B, T, C);
		x[i] = keep - h;
		double lm = layer_loss(which, x, mask, w, B, T, C);
		x[i] = keep;
		double num = (lp - lm) / (2.0 * h), d = fabs(num - g[i]) / (1.0 + fabs(num));
		if (d > worst)
			worst = d;
	}
	if (worst > 2e-3)
		fprintf(stderr, "  layer %d: worst relative error %.3g\n", which, worst);
	CU_ASSERT(worst <= 2e-3); /* float forward, h = 1e-2: second-order error ~1e-4 */
}

static void test_fd_pool(void) { fd_layer(POOL); }
static void test_fd_l2norm(void) { fd_layer(NORM); }

static void test_fd_infonce(void)
{
	const int B = 4, C = 6;
	const float tau = 0.5f;
	float q[24], p[24], dq[24] = { 0 }, dp[24] = { 0 }, probs[16];
	fill(q, 24, 21, 1.0f);
	fill(p, 24, 22, 1.0f);
	dense_infonce_forward(probs, q, p, B, C, tau, NULL);
	dense_infonce_backward(dq, dp, probs, q, p, B, C, tau);
	double worst = 0;
	for (int side = 0; side < 2; side++)
		for (int i = 0; i < B * C; i++) {
			float *x = side ? p : q, keep = x[i];
			const float h = 1e-2f;
			x[i] = keep + h;
			double lp = dense_infonce_forward(probs, q, p, B, C, tau, NULL);
			x[i] = keep - h;
			double lm = dense_infonce_forward(probs, q, p, B, C, tau, NULL);
			x[i] = keep;
			double num = (lp - lm) / (2.0 * h), an = side ? dp[i] : dq[i];
			double d = fabs(num - an) / (1.0 + fabs(num));
			if (d > worst)
				worst = d;
		}
	if (worst > 2e-3)
		fprintf(stderr, "  infonce: worst relative error %.3g\n", worst);
	CU_ASSERT(worst <= 2e-3);
	/* the loss of a perfect batch is small, of a uniform one ln B */
	float same[24];
	memcpy(same, q, sizeof same);
	float z[24] = { 0 };
	CU_ASSERT(fabs(dense_infonce_forward(probs, q, z, B, C, tau, NULL) - log(4.0)) < 1e-6);
	float nq[24], nn[4];
	dense_l2norm_forward(nq, nn, same, B, C);
	/* q against itself at a small temperature: the diagonal wins */
	int right = 0;
	CU_ASSERT(dense_infonce_forward(probs, nq, nq, B, C, 0.01f, &right) < 0.1);
	CU_ASSERT_EQUAL(right, B);
}

/* The whole chain through the BERT encoder: L = InfoNCE(norm(pool(bert(q))),
 * norm(pool(bert(p)))); d L / d (one word embedding and one attention
 * weight) against finite differences. */
static double chain_loss(dense_encoder *e, bert_acts *aq, bert_acts *ap, const int32_t *qi,
                         const uint8_t *qm, const int32_t *pi, const uint8_t *pm, int B, int Tq, int Tp,
                         float *qu, float *pu, float *qp, float *pp, float *qn, float *pn, float *probs)
{
	const int C = e->m->cfg.hidden;
	CU_ASSERT_EQUAL_FATAL(bert_forward(e->m, aq, qi, NULL, qm, B, Tq, 0.0f, NULL), 0);
	dense_pool_forward(qp, bert_hidden(e->m, aq), qm, B, Tq, C);
	dense_l2norm_forward(qu, qn, qp, B, C);
	CU_ASSERT_EQUAL_FATAL(bert_forward(e->m, ap, pi, NULL, pm, B, Tp, 0.0f, NULL), 0);
	dense_pool_forward(pp, bert_hidden(e->m, ap), pm, B, Tp, C);
	dense_l2norm_forward(pu, pn, pp, B, C);
	return dense_infonce_forward(probs, qu, pu, B, C, 0.2f, NULL);
}

static void test_fd_chain(void)
{
	dense_encoder *e = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(dense_encoder_load_hf(fixture("bert-tiny-hf"), 16, &e, &err), 0);
	enum { B = 3, Tq = 4, Tp = 6, C = 24 };
	int32_t qi[B * Tq] = { 2, 17, 3, 0, 2, 9, 10, 3, 2, 36, 3, 0 };
	uint8_t qm[B * Tq] = { 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 0 };
	int32_t pi[B * Tp] = { 2, 17, 18, 6, 3, 0, 2, 9, 10, 11, 12, 3, 2, 36, 26, 37, 38, 3 };
	uint8_t pm[B * Tp] = { 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	float qu[B * C], pu[B * C], qp[B * C], pp[B * C], qn[B], pn[B], probs[B * B];
	float dqu[B * C] = { 0 }, dpu[B * C] = { 0 }, dqp[B * C] = { 0 }, dpp[B * C] = { 0 };
	float dhq[B * Tq * C] = { 0 }, dhp[B * Tp * C] = { 0 };
	bert_acts aq = { 0 }, ap = { 0 };
	chain_loss(e, &aq, &ap, qi, qm, pi, pm, B, Tq, Tp, qu, pu, qp, pp, qn, pn, probs);
	bert_zero_grad(e->m);
	dense_infonce_backward(dqu, dpu, probs, qu, pu, B, C, 0.2f);
	dense_l2norm_backward(dqp, dqu, qu, qn, B, C);
	dense_l2norm_backward(dpp, dpu, pu, pn, B, C);
	dense_pool_backward(dhq, dqp, qm, B, Tq, C);
	dense_pool_backward(dhp, dpp, pm, B, Tp, C);
	CU_ASSERT_EQUAL_FATAL(bert_backward(e->m, &ap, dhp), 0);
	CU_ASSERT_EQUAL_FATAL(bert_backward(e->m, &aq, dhq), 0);
	/* probes: word embedding of "hello" (17), a query weight, the last LN bias */
	const bert_tensor *wq = bert_find_tensor(e->m, "bert.encoder.layer.0.attention.self.query.weight");
	const bert_tensor *lb = bert_find_tensor(e->m, "bert.encoder.layer.1.output.LayerNorm.bias");
	CU_ASSERT_FATAL(wq && lb);
	size_t probes[] = { (size_t)(e->m->wte - e->m->params) + 17 * C + 3, wq->offset + 5,
	                    wq->offset + 100, lb->offset + 7 };
	int np = test_light() ? 2 : 4;
	double worst = 0;
	for (int k = 0; k < np; k++) {
		float *x = e->m->params + probes[k], keep = *x;
		const float h = 1e-2f;
		*x = keep + h;
		double lp = chain_loss(e, &aq, &ap, qi, qm, pi, pm, B, Tq, Tp, qu, pu, qp, pp, qn, pn, probs);
		*x = keep - h;
		double lm = chain_loss(e, &aq, &ap, qi, qm, pi, pm, B, Tq, Tp, qu, pu, qp, pp, qn, pn, probs);
		*x = keep;
		double num = (lp - lm) / (2.0 * h), an = e->m->grads[probes[k]];
		double d = fabs(num - an) / (1e-2 + fabs(num));
		if (d > worst)
			worst = d;
		if (getenv("TEST_VERBOSE"))
			fprintf(stderr, "  probe %d: numeric %.6g analytic %.6g\n", k, num, an);
	}
	CU_ASSERT(worst <= 2e-2); /* through two float BERT passes with h = 1e-2 */
	if (worst > 2e-2)
		fprintf(stderr, "  chain: worst relative error %.3g\n", worst);
	bert_acts_free(&aq);
	bert_acts_free(&ap);
	dense_encoder_free(e);
}

/* ---- 2. against PyTorch --------------------------------------------------------------- */

static void test_fixture(void)
{
	train_safetensors *f = NULL;
	train_tensor ids, mask, pooled, emb;
	CU_ASSERT_EQUAL_FATAL(train_safetensors_open(fixture("dense_expected.safetensors"), &f, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f, "ids", &ids), 0);
	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f, "mask", &mask), 0);
	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f, "pooled", &pooled), 0);
	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f, "embeddings", &emb), 0);
	const int B = (int)ids.shape[0], T = (int)ids.shape[1];
	int ml = atoi(train_safetensors_meta(f, "max_length"));
	dense_encoder *e = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(dense_encoder_load_hf(fixture("bert-tiny-hf"), ml, &e, &err), 0);
	const int C = e->m->cfg.hidden;
	CU_ASSERT_EQUAL_FATAL((int)emb.shape[1], C);
	/* the padded batch as PyTorch saw it: our pooling on our encoder */
	uint8_t *m8 = malloc((size_t)B * T);
	for (int i = 0; i < B * T; i++)
		m8[i] = (uint8_t)((const int32_t *)mask.data)[i];
	bert_acts a = { 0 };
	float *pl = malloc((size_t)B * C * sizeof *pl);
	CU_ASSERT_EQUAL_FATAL(bert_forward(e->m, &a, ids.data, NULL, m8, B, T, 0.0f, NULL), 0);
	dense_pool_forward(pl, bert_hidden(e->m, &a), m8, B, T, C);
	double worst = 0;
	for (int i = 0; i < B * C; i++)
		worst = fmax(worst, fabs((double)pl[i] - ((const float *)pooled.data)[i]));
	CU_ASSERT(worst < 2e-5);
	/* from the texts: tokenizer, batching (sorted by length), pooling, norm */
	const char *texts[8];
	size_t lens[8];
	char key[32];
	for (int b = 0; b < B && b < 8; b++) {
		snprintf(key, sizeof key, "text.%d", b);
		texts[b] = train_safetensors_meta(f, key);
		CU_ASSERT_PTR_NOT_NULL_FATAL(texts[b]);
		lens[b] = strlen(texts[b]);
	}
	float *out = malloc((size_t)B * C * sizeof *out);
	for (int batch = 1; batch <= 3; batch += 2) {
		CU_ASSERT_EQUAL_FATAL(dense_encode(e, texts, lens, (size_t)B, batch, out), 0);
		double w2 = 0;
		for (int i = 0; i < B * C; i++)
			w2 = fmax(w2, fabs((double)out[i] - ((const float *)emb.data)[i]));
		if (w2 >= 2e-5)
			fprintf(stderr, "  embeddings (batch %d): max |diff| %.3g\n", batch, w2);
		CU_ASSERT(w2 < 2e-5);
	}
	free(out);
	free(pl);
	free(m8);
	bert_acts_free(&a);
	dense_encoder_free(e);
	train_safetensors_close(f);
}

/* ---- 3. bytes --------------------------------------------------------------------------- */

static void test_bytes(void)
{
	dense_encoder *e = NULL, *e2 = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(dense_encoder_load_hf(fixture("bert-tiny-hf"), 12, &e, &err), 0);
	void *buf = NULL;
	size_t size = 0;
	CU_ASSERT_EQUAL_FATAL(dense_encoder_serialize(e, &buf, &size), 0);
	CU_ASSERT_EQUAL_FATAL(dense_encoder_parse(buf, size, &e2, &err), 0);
	const char *t = "the quick brown fox";
	size_t l = strlen(t);
	float a[24], b[24];
	CU_ASSERT_EQUAL(dense_encode(e, &t, &l, 1, 1, a), 0);
	CU_ASSERT_EQUAL(dense_encode(e2, &t, &l, 1, 1, b), 0);
	CU_ASSERT(memcmp(a, b, sizeof a) == 0);
	dense_encoder_free(e2);
	/* every truncation is refused, and so are lying counts */
	/* every cut within the header and vocabulary, then every 97th byte of
	 * the weights (each cut there makes and frees a model) */
	size_t step = test_light() ? size / 7 + 1 : 1;
	int refused = 1;
	for (size_t cut = 0; cut < size; cut += cut < 2048 ? step : (test_light() ? step : 97)) {
		e2 = NULL;
		if (dense_encoder_parse(buf, cut, &e2, &err) == 0) {
			refused = 0;
			dense_encoder_free(e2);
		}
	}
	CU_ASSERT(refused);
	unsigned char *c = malloc(size);
	memcpy(c, buf, size);
	uint32_t big = 0x7fffffff;
	memcpy(c + 8, &big, 4); /* header length past the end */
	CU_ASSERT_EQUAL(dense_encoder_parse(c, size, &e2, &err), TRAIN_ECORRUPT);
	CU_ASSERT(strstr(err.text, "past the end") != NULL);
	memcpy(c, buf, size);
	c[0] = 'X';
	CU_ASSERT_EQUAL(dense_encoder_parse(c, size, &e2, &err), TRAIN_ECORRUPT);
	free(c);
	free(buf);
	dense_encoder_free(e);
	/* a folder that is not there */
	CU_ASSERT_NOT_EQUAL(dense_encoder_load_hf("/nonexistent/encoder", 12, &e, &err), 0);
	char eb[1024];
	train_error_format(&err, eb, sizeof eb);
	CU_ASSERT(strstr(eb, "/nonexistent/encoder") != NULL);
	CU_ASSERT(strstr(eb, "not a folder") != NULL);
}

/* ---- 4. inverse cloze ----------------------------------------------------------------------- */

static int last_progress(void *ud, int step, int steps, double loss, double acc)
{
	double *l = ud;
	(void)acc;
	if (step == 1)
		l[0] = loss;
	if (step == steps)
		l[1] = loss;
	return 0;
}

static void test_ict(void)
{
	/* ten passages of three sentences on distinct subjects */
	static const char *subj[] = { "volcano lava", "violin music", "football goal", "rice farming",
		                      "comet orbit", "bread oven", "river delta", "chess opening",
		                      "solar panel", "whale ocean" };
	char texts[10][256];
	const char *tp[10];
	size_t lens[10];
	for (int i = 0; i < 10; i++) {
		snprintf(texts[i], sizeof texts[i],
		         "The %s is studied here. Many people know the %s well. Books about the %s are common.",
		         subj[i], subj[i], subj[i]);
		tp[i] = texts[i];
		lens[i] = strlen(texts[i]);
	}
	dense_train_opts o = dense_train_defaults();
	o.layers = 1, o.hidden = 32, o.heads = 2, o.intermediate = 64, o.vocab_size = 200;
	o.max_length = 48, o.query_length = 16, o.batch_size = 10, o.warmup = 5;
	o.steps = test_light() ? 30 : 80;
	o.learning_rate = 3e-3, o.temperature = 0.1;
	dense_encoder *e = NULL;
	train_error err = { 0 };
	double l[2] = { 0, 0 }, fl = 0;
	CU_ASSERT_EQUAL_FATAL(dense_train_ict(tp, lens, 10, &o, last_progress, l, &e, &fl, &err), 0);
	CU_ASSERT(l[1] < l[0]);
	CU_ASSERT(fl < log(10.0));
	/* a sentence of passage i is nearest to passage i */
	float P[10 * 32], q[32];
	CU_ASSERT_EQUAL_FATAL(dense_encode(e, tp, lens, 10, 4, P), 0);
	int right = 0;
	for (int i = 0; i < 10; i++) {
		char s[128];
		snprintf(s, sizeof s, "Many people know the %s well.", subj[i]);
		const char *sp = s;
		size_t sl = strlen(s);
		CU_ASSERT_EQUAL_FATAL(dense_encode(e, &sp, &sl, 1, 1, q), 0);
		int best = 0;
		float bs = -2;
		for (int j = 0; j < 10; j++) {
			float d = 0;
			for (int c = 0; c < 32; c++)
				d += q[c] * P[j * 32 + c];
			if (d > bs)
				bs = d, best = j;
		}
		right += best == i;
	}
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "  ict: loss %.3f -> %.3f, %d/10 right\n", l[0], l[1], right);
	CU_ASSERT(right >= 8);
	dense_encoder_free(e);
	/* too few passages of two sentences for the batch: a clear error */
	o.batch_size = 11;
	CU_ASSERT_EQUAL(dense_train_ict(tp, lens, 10, &o, NULL, NULL, &e, NULL, &err), TRAIN_EINVAL);
	CU_ASSERT(strstr(err.text, "batch_size") != NULL);
}

static const test_case cases[] = {
	{ "mean pooling backward vs finite differences", test_fd_pool },
	{ "L2 normalisation backward vs finite differences", test_fd_l2norm },
	{ "InfoNCE backward vs finite differences", test_fd_infonce },
	{ "pool + norm + InfoNCE through BERT vs finite differences", test_fd_chain },
	{ "mean-pooled embeddings against PyTorch", test_fixture },
	{ "encoder bytes: round trip, truncated and lying buffers", test_bytes },
	{ "inverse cloze training learns", test_ict },
	{ NULL, NULL },
};

int main(void)
{
	if (train_kernels_init(1, TRAIN_PRECISION_FP32))
		return 2;
	return test_main("dense", cases);
}
