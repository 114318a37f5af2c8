/*
 * tests/test_diet.c - the "nlu" plugin (plugins/nlu, compiled in): the
 * CRF against brute force over every tag path, the sparse layer and the
 * whole DIET loss against finite differences, DIET learning a small
 * NLU set (tests/data/rasa/nlu-small) to 100 % intents and exact
 * entities, reproducible weight bytes, persist/load/process, finetuning,
 * and the EntitySynonymMapper and FallbackClassifier.
 *
 * The features value is built here with the <train/features.h> builders
 * (whitespace tokens; a bag-of-words block, a 3-character-prefix block,
 * both sparse, and a small dense block), standing in for the tokenizer
 * and featurizer plugins.  Kernels run single-threaded in fp32
 * (train_kernels_init(1, TRAIN_PRECISION_FP32)) for reproducible bytes.
 *
 * Tolerances: the CRF in double against brute force, 1e-6 relative (the
 * float inputs are exact in double); its float gradients 1e-5; central
 * differences of float32 computations (eps 1e-3) within 2e-3 + 5 % of the
 * analytic value.
 */
#include "testlib.h"

#include "../plugins/nlu/nlu.h"
#include "ctx_private.h"

#include <train/kernels.h>
#include <train/rasa.h>

#include <jansson.h>
#include <math.h>
#include <time.h>

/* ------------------------------------------------------------------------ */
/* context, quiet logging */

static void quiet_fn(void *ud, train_log_level level, const char *msg)
{
	(void)ud;
	if (level <= TRAIN_LOG_WARN && getenv("TEST_VERBOSE"))
		fprintf(stderr, "%s\n", msg);
	else if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "  %s\n", msg);
}

static const train_log_sink quiet = { quiet_fn, NULL, TRAIN_LOG_DEBUG };

static void ctx_make(train_ctx *ctx)
{
	train_ctx_init(ctx, "test", &quiet, 1, ".");
}

/* Under valgrind (its preload library is in LD_PRELOAD) the finite
 * differences sample fewer parameters: every oneDNN call is slow there. */
static int under_valgrind(void)
{
	const char *p = getenv("LD_PRELOAD");
	return p && strstr(p, "vgpreload");
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------------ */
/* the CRF against brute force */

static double lse2(double a, double b)
{
	double m = a > b ? a : b;
	return m == -INFINITY ? m : m + log(exp(a - m) + exp(b - m));
}

static void test_crf_bruteforce(void)
{
	train_rng r;
	train_rng_seed(&r, 42);
	for (int K = 1; K <= 4; K++)
		for (int T = 0; T <= 4; T++) {
			float U[16], A[16], dU[16] = { 0 }, dA[16] = { 0 }, marg[16];
			int32_t tags[4], path[4], best_path[4] = { 0 };
			double alpha[16], nll;
			train_rng_fill_normal(&r, U, (size_t)T * K, 0, 1.5f);
			train_rng_fill_normal(&r, A, (size_t)K * K, 0, 1.5f);
			for (int t = 0; t < T; t++)
				tags[t] = (int32_t)train_rng_below(&r, (uint64_t)K);
			/* brute force over all K^T paths */
			int npaths = 1;
			for (int t = 0; t < T; t++)
				npaths *= K;
			double logz = -INFINITY, best = -INFINITY;
			double pu[16] = { 0 }, pa[16] = { 0 }, scores[256];
			for (int p = 0; p < npaths; p++) {
				int32_t y[4];
				for (int t = 0, q = p; t < T; t++, q /= K)
					y[t] = q % K;
				scores[p] = nlu_crf_score(U, A, y, T, K);
				logz = lse2(logz, scores[p]);
				if (scores[p] > best) {
					best = scores[p];
					memcpy(best_path, y, sizeof y);
				}
			}
			for (int p = 0; p < npaths && T > 0; p++) {
				int32_t y[4];
				for (int t = 0, q = p; t < T; t++, q /= K)
					y[t] = q % K;
				double pr = exp(scores[p] - logz);
				for (int t = 0; t < T; t++) {
					pu[t * K + y[t]] += pr;
					if (t > 0)
						pa[y[t - 1] * K + y[t]] += pr;
				}
			}
			CU_ASSERT_EQUAL_FATAL(nlu_crf_nll_forward(&nll, alpha, U, A, tags, T, K), TRAIN_OK);
			double want = T ? logz - nlu_crf_score(U, A, tags, T, K) : 0.0;
			CU_ASSERT(fabs(nll - want) <= 1e-6 * (1 + fabs(want)));
			CU_ASSERT(nll >= -1e-9);
			CU_ASSERT_EQUAL_FATAL(nlu_crf_nll_backward(dU, dA, U, A, tags, alpha, T, K, 1.0f),
			                      TRAIN_OK);
			for (int t = 0; t < T; t++)
				for (int j = 0; j < K; j++)
					CU_ASSERT(fabs(dU[t * K + j] - (pu[t * K + j] - (tags[t] == j))) < 1e-5);
			for (int i = 0; i < K; i++)
				for (int j = 0; j < K; j++) {
					double cnt = 0;
					for (int t = 1; t < T; t++)
						cnt += tags[t - 1] == i && tags[t] == j;
					CU_ASSERT(fabs(dA[i * K + j] - (pa[i * K + j] - cnt)) < 1e-5);
				}
			/* finite differences of the loss */
			for (int k = 0; k < T * K; k++) {
				float keep = U[k];
				double lp, lm;
				U[k] = keep + 1e-3f;
				nlu_crf_nll_forward(&lp, alpha, U, A, tags, T, K);
				U[k] = keep - 1e-3f;
				nlu_crf_nll_forward(&lm, alpha, U, A, tags, T, K);
				U[k] = keep;
				double fd = (lp - lm) / ((double)(keep + 1e-3f) - (double)(keep - 1e-3f));
				CU_ASSERT(fabs(fd - dU[k]) < 1e-3);
			}
			for (int k = 0; k < K * K && T > 1; k++) {
				float keep = A[k];
				double lp, lm;
				A[k] = keep + 1e-3f;
				nlu_crf_nll_forward(&lp, alpha, U, A, tags, T, K);
				A[k] = keep - 1e-3f;
				nlu_crf_nll_forward(&lm, alpha, U, A, tags, T, K);
				A[k] = keep;
				double fd = (lp - lm) / ((double)(keep + 1e-3f) - (double)(keep - 1e-3f));
				CU_ASSERT(fabs(fd - dA[k]) < 1e-3);
			}
			/* Viterbi and the marginals */
			double vbest;
			CU_ASSERT_EQUAL_FATAL(nlu_crf_viterbi(path, &vbest, U, A, T, K), TRAIN_OK);
			if (T > 0) {
				CU_ASSERT(memcmp(path, best_path, (size_t)T * sizeof *path) == 0);
				CU_ASSERT(fabs(vbest - best) <= 1e-9 * (1 + fabs(best)));
			}
			CU_ASSERT_EQUAL_FATAL(nlu_crf_marginals(marg, U, A, T, K), TRAIN_OK);
			for (int k = 0; k < T * K; k++)
				CU_ASSERT(fabs(marg[k] - pu[k]) < 1e-5);
		}
	/* bad tags */
	float U[4] = { 0 }, A[4] = { 0 };
	int32_t bad[2] = { 0, 2 };
	double alpha[4], nll;
	CU_ASSERT_EQUAL(nlu_crf_nll_forward(&nll, alpha, U, A, bad, 2, 2), TRAIN_EINVAL);
}

/* ------------------------------------------------------------------------ */
/* the sparse layer against a dense product and finite differences */

static void test_sparse_layer(void)
{
	enum { R = 6, V = 7, U = 3, LDO = 5 };
	/* rows: 2 entries, empty, 3 entries, 1, empty, 2 */
	const uint32_t indptr[R + 1] = { 0, 2, 2, 5, 6, 6, 8 };
	const uint32_t indices[8] = { 1, 4, 0, 2, 6, 3, 0, 6 };
	const float values[8] = { 1.0f, -2.0f, 0.5f, 3.0f, 1.0f, 2.0f, -1.0f, 0.25f };
	float w[V * U], out[R * LDO] = { 0 }, dout[R * LDO], dw[V * U] = { 0 };
	train_rng r;
	train_rng_seed(&r, 3);
	train_rng_fill_normal(&r, w, V * U, 0, 1);
	train_rng_fill_normal(&r, dout, R * LDO, 0, 1);
	CU_ASSERT_EQUAL_FATAL(nlu_sparse_forward(out, LDO, indptr, indices, values, R, w, V, U),
	                      TRAIN_OK);
	for (int rr = 0; rr < R; rr++) {
		for (int u = 0; u < U; u++) {
			double s = 0;
			for (uint32_t k = indptr[rr]; k < indptr[rr + 1]; k++)
				s += values[k] * w[indices[k] * U + u];
			CU_ASSERT(fabs(out[rr * LDO + u] - s) < 1e-6);
		}
		CU_ASSERT_EQUAL(out[rr * LDO + U], 0.0f); /* the stride's gap is untouched */
	}
	CU_ASSERT_EQUAL_FATAL(nlu_sparse_backward(dw, dout, LDO, indptr, indices, values, R, V, U),
	                      TRAIN_OK);
	/* loss = sum dout * out: central differences of every weight */
	for (int k = 0; k < V * U; k++) {
		double l[2];
		float keep = w[k];
		for (int s = 0; s < 2; s++) {
			float o2[R * LDO] = { 0 };
			w[k] = keep + (s ? -1e-2f : 1e-2f);
			nlu_sparse_forward(o2, LDO, indptr, indices, values, R, w, V, U);
			l[s] = 0;
			for (int i = 0; i < R; i++)
				for (int u = 0; u < U; u++)
					l[s] += (double)dout[i * LDO + u] * o2[i * LDO + u];
		}
		w[k] = keep;
		double fd = (l[0] - l[1]) / 2e-2;
		CU_ASSERT(fabs(fd - dw[k]) < 2e-3 + 1e-3 * fabs(dw[k]));
	}
	/* a column out of range */
	const uint32_t bad_idx[8] = { 1, 4, 0, 2, 7, 3, 0, 6 };
	CU_ASSERT_EQUAL(nlu_sparse_forward(out, LDO, indptr, bad_idx, values, R, w, V, U),
	                TRAIN_EINVAL);
	CU_ASSERT_EQUAL(nlu_sparse_forward(out, 2, indptr, indices, values, R, w, V, U),
	                TRAIN_EINVAL);
}

/* ------------------------------------------------------------------------ */
/* a stand-in tokenizer and featurizer */

typedef struct vocab {
	char *w[512];
	size_t n;
} vocab;

static void vocab_free(vocab *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->w[i]);
	v->n = 0;
}

/* 1-based id of s (0: unknown), added when `grow`. */
static uint32_t vocab_id(vocab *v, const char *s, int grow)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->w[i], s))
			return (uint32_t)i + 1;
	if (!grow || v->n == 512)
		return 0;
	v->w[v->n] = strdup(s);
	return (uint32_t)++v->n;
}

typedef struct featurizer {
	vocab words, prefixes;
} featurizer;

/* Whitespace tokens of ASCII texts (offsets in characters = bytes). */
static void tokenize(train_features *f)
{
	for (size_t m = 0; m < f->n_messages; m++) {
		const char *s = f->messages[m].text;
		train_feat_token toks[64];
		char bufs[64][64];
		size_t n = 0, i = 0, len = strlen(s);
		while (i < len && n < 64) {
			while (i < len && s[i] == ' ')
				i++;
			if (i == len)
				break;
			size_t b = i;
			while (i < len && s[i] != ' ')
				i++;
			snprintf(bufs[n], sizeof bufs[n], "%.*s", (int)(i - b), s + b);
			toks[n] = (train_feat_token){ .text = bufs[n], .start = (uint32_t)b,
			                              .end = (uint32_t)i, .id = -1 };
			n++;
		}
		CU_ASSERT_EQUAL_FATAL(train_features_set_tokens(f, m, toks, n), TRAIN_OK);
	}
}

static void lower(char *d, const char *s, size_t max)
{
	size_t i = 0;
	for (; s[i] && i + 1 < max; i++)
		d[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
	d[i] = '\0';
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* One sparse block: per token one id (one-hot), the sentence row the
 * counts. */
static void sparse_block(train_features *f, const char *name, vocab *v, int grow, int prefix)
{
	/* first pass: grow the vocabulary so the dimension is known */
	for (size_t m = 0; m < f->n_messages && grow; m++)
		for (size_t t = 0; t < f->messages[m].n_tokens; t++) {
			char w[64];
			lower(w, f->messages[m].tokens[t].text, prefix ? 4 : sizeof w);
			vocab_id(v, w, 1);
		}
	size_t b;
	CU_ASSERT_EQUAL_FATAL(train_features_add_block(f, name, TRAIN_FEAT_SPARSE,
	                                               (uint32_t)v->n + 1,
	                                               TRAIN_FEAT_SEQUENCE | TRAIN_FEAT_SENTENCE, &b),
	                      TRAIN_OK);
	for (size_t m = 0; m < f->n_messages; m++) {
		size_t n = f->messages[m].n_tokens;
		uint32_t indptr[66], ids[64], idx[128];
		float val[128];
		size_t k = 0;
		indptr[0] = 0;
		for (size_t t = 0; t < n; t++) {
			char w[64];
			lower(w, f->messages[m].tokens[t].text, prefix ? 4 : sizeof w);
			ids[t] = vocab_id(v, w, 0);
			idx[k] = ids[t];
			val[k++] = 1.0f;
			indptr[t + 1] = (uint32_t)k;
		}
		qsort(ids, n, sizeof *ids, cmp_u32);
		for (size_t t = 0; t < n; t++) {
			if (t > 0 && ids[t] == ids[t - 1]) {
				val[k - 1] += 1.0f;
				continue;
			}
			idx[k] = ids[t];
			val[k++] = 1.0f;
		}
		indptr[n + 1] = (uint32_t)k;
		CU_ASSERT_EQUAL_FATAL(train_features_set_sparse(f, b, m, indptr, idx, val), TRAIN_OK);
	}
}

static void dense_block(train_features *f)
{
	size_t b;
	CU_ASSERT_EQUAL_FATAL(train_features_add_block(f, "shape", TRAIN_FEAT_DENSE, 2,
	                                               TRAIN_FEAT_SEQUENCE | TRAIN_FEAT_SENTENCE, &b),
	                      TRAIN_OK);
	for (size_t m = 0; m < f->n_messages; m++) {
		size_t n = f->messages[m].n_tokens;
		float v[2 * 65];
		for (size_t t = 0; t < n; t++) {
			const char *s = f->messages[m].tokens[t].text;
			v[2 * t] = s[0] >= 'A' && s[0] <= 'Z';
			v[2 * t + 1] = (float)strlen(s) / 10.0f;
		}
		v[2 * n] = (float)n / 10.0f;
		v[2 * n + 1] = 1.0f;
		CU_ASSERT_EQUAL_FATAL(train_features_set_dense(f, b, m, v), TRAIN_OK);
	}
}

static void featurize(train_features *f, featurizer *fz, int grow)
{
	tokenize(f);
	sparse_block(f, "words", &fz->words, grow, 0);
	sparse_block(f, "prefix3", &fz->prefixes, grow, 1);
	dense_block(f);
}

static train_rasa_nlu *load_nlu(const char *file)
{
	const char *dir = getenv("TRAIN_TEST_DATA");
	char path[1024];
	snprintf(path, sizeof path, "%s/rasa/nlu-small/%s", dir ? dir : "tests/data", file);
	const char *paths[] = { path };
	train_rasa_nlu *nlu = NULL;
	train_error err = { 0 };
	int rc = train_rasa_nlu_load(paths, 1, &nlu, NULL, &err);
	if (rc)
		fprintf(stderr, "%s: %s\n", path, err.text);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	return nlu;
}

static train_rasa_nlu *small_nlu(void) { return load_nlu("nlu.yml"); }

/* The training features of nlu-small (the featurizer keeps its vocabulary). */
static train_features *small_features(featurizer *fz)
{
	train_rasa_nlu *nlu = small_nlu();
	train_features *f = NULL;
	CU_ASSERT_EQUAL_FATAL(train_features_from_nlu(nlu, &f), TRAIN_OK);
	train_rasa_nlu_free(nlu);
	featurize(f, fz, 1);
	return f;
}

/* nlu-small plus extra labelled texts (a featurizer whose vocabulary grows). */
static train_features *small_features_plus(featurizer *fz, const char *const *texts,
                                           const char *const *intents, size_t n)
{
	train_rasa_nlu *nlu = small_nlu();
	train_features *f = NULL;
	CU_ASSERT_EQUAL_FATAL(train_features_from_nlu(nlu, &f), TRAIN_OK);
	train_rasa_nlu_free(nlu);
	for (size_t i = 0; i < n; i++)
		CU_ASSERT_EQUAL_FATAL(train_features_add_message(f, texts[i], intents[i], NULL), TRAIN_OK);
	featurize(f, fz, 1);
	return f;
}

/* Features of texts for prediction. */
static train_features *texts_features(featurizer *fz, const char *const *texts, size_t n)
{
	train_features *f = NULL;
	CU_ASSERT_EQUAL_FATAL(train_features_create(&f), TRAIN_OK);
	for (size_t i = 0; i < n; i++)
		CU_ASSERT_EQUAL_FATAL(train_features_add_message(f, texts[i], NULL, NULL), TRAIN_OK);
	featurize(f, fz, 0);
	return f;
}

static train_values *values_with(const char *name, train_value *v)
{
	train_values *s = NULL;
	CU_ASSERT_EQUAL_FATAL(train_values_create(&s), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(train_values_put_take(s, name, v), TRAIN_OK);
	return s;
}

static train_value *features_value(const train_features *f)
{
	train_value *v = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_features_to_value(f, &v, &err), TRAIN_OK);
	return v;
}

/* ------------------------------------------------------------------------ */
/* DIET: the loss against finite differences */

static void small_opts(diet_opts *o, int layers, float density)
{
	memset(o, 0, sizeof *o);
	o->batch_min = o->batch_max = 8;
	o->learning_rate = 0.01;
	o->seed = 5;
	o->embed_dim = 4;
	o->n_layers = layers;
	o->d_model = 8;
	o->n_heads = 2;
	static int ht[] = { 6 }, hl[] = { 5 };
	o->hid_text = malloc(sizeof ht);
	memcpy(o->hid_text, ht, sizeof ht);
	o->n_hid_text = 1;
	o->hid_label = malloc(sizeof hl);
	memcpy(o->hid_label, hl, sizeof hl);
	o->n_hid_label = 1;
	o->units = 6;
	o->drop_rate = 0;
	o->density = density;
	o->reg = 0.01f;
	o->constrain_similarities = 1;
	o->ranking_length = 10;
	o->intent = o->entity = o->bilou = 1;
	o->split_default = 1;
}

static void gradcheck(int layers, int unidirectional)
{
	featurizer fz = { 0 };
	train_features *f = small_features(&fz);
	train_ctx ctx;
	ctx_make(&ctx);
	diet_opts o;
	small_opts(&o, layers, 1.0f);
	o.unidirectional = unidirectional;
	diet_model *m = NULL;
	diet_report rep;
	char why[256] = "";
	CU_ASSERT_EQUAL_FATAL(diet_train(&m, &o, 0, f, &ctx, &rep, why, sizeof why), TRAIN_OK);
	double loss;
	CU_ASSERT_EQUAL_FATAL(diet_loss_grad(m, &o, f, &loss), TRAIN_OK);
	CU_ASSERT(isfinite(loss) && loss > 0);
	size_t n;
	float *P = diet_param_data(m, &n);
	float *G = malloc(n * sizeof *G);
	memcpy(G, diet_grad_data(m), n * sizeof *G);
	int checked = 0, bad = 0;
	double worst = 0;
	size_t stride = under_valgrind() ? 41 : 7;
	for (size_t k = 0; k < n; k += stride) {
		if (G[k] == 0 && P[k] == 0)
			continue;  /* padding between tensors, or an unused column */
		float keep = P[k];
		double lp, lm;
		P[k] = keep + 1e-3f;
		diet_loss_grad(m, &o, f, &lp);
		P[k] = keep - 1e-3f;
		diet_loss_grad(m, &o, f, &lm);
		P[k] = keep;
		double fd = (lp - lm) / ((double)(keep + 1e-3f) - (double)(keep - 1e-3f));
		double err = fabs(fd - G[k]), tol = 2e-3 + 5e-2 * fabs(G[k]);
		if (err > tol) {
			bad++;
			if (bad < 5)
				fprintf(stderr, "param %zu: analytic %g, numeric %g\n", k, G[k], fd);
		}
		if (err / tol > worst)
			worst = err / tol;
		checked++;
	}
	CU_ASSERT(checked > (int)(700 / stride));
	CU_ASSERT_EQUAL(bad, 0);
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "gradcheck(%d layers): %d parameters, worst error/tolerance %.3f\n",
		        layers, checked, worst);
	free(G);
	diet_free(m);
	diet_opts_free(&o);
	train_features_free(f);
	vocab_free(&fz.words);
	vocab_free(&fz.prefixes);
}

/* lazy_adam: one step on two messages moves the sparse kernels' rows of
 * their features exactly as plain Adam does, and leaves the other rows
 * where they were (plain Adam moves those too: their L2 term); every other
 * parameter moves as with plain Adam; the loss is the same. */
static void test_diet_lazy_adam(void)
{
	featurizer fz = { 0 };
	train_features *f = small_features(&fz);
	train_ctx ctx;
	ctx_make(&ctx);
	diet_opts o;
	small_opts(&o, 0, 1.0f);
	diet_model *dense = NULL, *lazy = NULL;
	diet_report rep;
	char why[256] = "";
	CU_ASSERT_EQUAL_FATAL(diet_train(&dense, &o, 0, f, &ctx, &rep, why, sizeof why), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(diet_train(&lazy, &o, 0, f, &ctx, &rep, why, sizeof why), TRAIN_OK);
	size_t n, n2;
	float *pd = diet_param_data(dense, &n), *pl = diet_param_data(lazy, &n2);
	CU_ASSERT_EQUAL_FATAL(n, n2);
	float *p0 = malloc(n * sizeof *p0);
	memcpy(p0, pd, n * sizeof *p0);
	const size_t msgs[] = { 0, 1 };
	double ld, ll;
	CU_ASSERT_EQUAL_FATAL(diet_train_step(dense, &o, f, msgs, 2, 1, &ld), TRAIN_OK);
	o.lazy_adam = 1;
	CU_ASSERT_EQUAL_FATAL(diet_train_step(lazy, &o, f, msgs, 2, 0, &ll), TRAIN_OK);
	CU_ASSERT(fabs(ld - ll) <= 1e-6 * fabs(ld)); /* the L2 sum in another order */
	size_t same = 0, kept = 0, bad = 0;
	for (size_t k = 0; k < n; k++) {
		if (memcmp(&pd[k], &pl[k], sizeof(float)) == 0)
			same += pd[k] != p0[k];
		else if (memcmp(&pl[k], &p0[k], sizeof(float)) == 0)
			kept++;
		else
			bad++;
	}
	CU_ASSERT_EQUAL(bad, 0);
	CU_ASSERT(same > 100);  /* rows of the two messages, and the other layers */
	CU_ASSERT(kept > 100);  /* the rest of the vocabulary */
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "lazy_adam: %zu moved as Adam, %zu kept, %zu floats\n", same, kept, n);
	free(p0);
	diet_free(dense);
	diet_free(lazy);
	diet_opts_free(&o);
	train_features_free(f);
	vocab_free(&fz.words);
	vocab_free(&fz.prefixes);
}

/* Training's Adam (the kernels' rows outside the batch get their L2
 * gradient inside the Adam pass) against the reference (grad_init, then
 * train_adamw_step over every parameter): the same bits after steps on
 * different messages, with L2 on and off. */
static void test_diet_adam_exact(void)
{
	featurizer fz = { 0 };
	train_features *f = small_features(&fz);
	train_ctx ctx;
	ctx_make(&ctx);
	for (int reg = 0; reg < 2; reg++) {
		diet_opts o;
		small_opts(&o, 0, 1.0f);
		o.reg = reg ? 0.01f : 0.0f;
		o.units = 7;  /* rows that do not start on a 16-float lane */
		diet_model *ref = NULL, *fast = NULL;
		diet_report rep;
		char why[256] = "";
		CU_ASSERT_EQUAL_FATAL(diet_train(&ref, &o, 0, f, &ctx, &rep, why, sizeof why), TRAIN_OK);
		CU_ASSERT_EQUAL_FATAL(diet_train(&fast, &o, 0, f, &ctx, &rep, why, sizeof why),
		                      TRAIN_OK);
		const size_t msgs[][3] = { { 0, 1, 2 }, { 5, 9, 20 }, { 3, 1, 30 } };
		for (int s = 0; s < 3; s++) {
			double lr, lf;
			CU_ASSERT_EQUAL_FATAL(diet_train_step(ref, &o, f, msgs[s], 3, 1, &lr), TRAIN_OK);
			CU_ASSERT_EQUAL_FATAL(diet_train_step(fast, &o, f, msgs[s], 3, 0, &lf), TRAIN_OK);
			CU_ASSERT(fabs(lr - lf) <= 1e-12 * fabs(lr));
		}
		size_t n, n2;
		const float *pr = diet_param_data(ref, &n), *pf = diet_param_data(fast, &n2);
		CU_ASSERT_EQUAL_FATAL(n, n2);
		CU_ASSERT(memcmp(pr, pf, n * sizeof *pr) == 0);
		diet_free(ref);
		diet_free(fast);
		diet_opts_free(&o);
	}
	train_features_free(f);
	vocab_free(&fz.words);
	vocab_free(&fz.prefixes);
}

static void test_diet_gradcheck(void) { gradcheck(1, 0); }
static void test_diet_gradcheck_no_transformer(void) { gradcheck(0, 0); }
static void test_diet_gradcheck_causal(void) { gradcheck(2, 1); }

/* ------------------------------------------------------------------------ */
/* DIET through the component */

#define SMALL_EPOCHS 100
#define STR_(x) #x
#define STR(x) STR_(x)
static const char *small_config =
	"epochs: " STR(SMALL_EPOCHS) "\n"
	"number_of_transformer_layers: 1\n"
	"transformer_size: 32\n"
	"number_of_attention_heads: 2\n"
	"dense_dimension: {text: 32}\n"
	"embedding_dimension: 10\n"
	"batch_size: [8, 16]\n"
	"random_seed: 7\n";

static train_config *config_of(const char *yaml, int *rc_out, train_error *err)
{
	train_config *user = NULL, *cfg = NULL;
	int rc = train_config_parse(yaml, strlen(yaml), "config", &user, err);
	if (!rc)
		rc = train_config_validate(user, nlu_diet_class.params, "component DIETClassifier", &cfg,
		                           err);
	train_config_destroy(user);
	*rc_out = rc;
	return cfg;
}

static void *diet_make(const char *yaml, train_ctx *ctx)
{
	train_error err = { 0 };
	int rc;
	train_config *cfg = config_of(yaml, &rc, &err);
	if (rc)
		fprintf(stderr, "config: %s\n", err.text);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	void *self = NULL;
	rc = nlu_diet_class.create(cfg, ctx, &self);
	if (rc)
		fprintf(stderr, "create: %s\n", ctx->fail);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	train_config_destroy(cfg);
	return self;
}

/* Train a DIET component on nlu-small; returns it and its report. */
static void *train_small(const char *yaml, featurizer *fz, json_t **report, double *secs)
{
	train_ctx ctx;
	ctx_make(&ctx);
	void *self = diet_make(yaml, &ctx);
	train_features *f = small_features(fz);
	train_values *in = values_with("features", features_value(f)), *out = NULL;
	train_features_free(f);
	CU_ASSERT_EQUAL_FATAL(train_values_create(&out), TRAIN_OK);
	double t0 = now();
	int rc = nlu_diet_class.train(self, in, out, &ctx);
	if (secs)
		*secs = now() - t0;
	if (rc)
		fprintf(stderr, "train: %s\n", ctx.fail);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	const train_value *rv = train_values_get(out, "report");
	CU_ASSERT_PTR_NOT_NULL_FATAL(rv);
	json_error_t je;
	json_t *j = json_loadb(train_value_data(rv), train_value_size(rv), 0, &je);
	CU_ASSERT_PTR_NOT_NULL_FATAL(j);
	if (report)
		*report = j;
	else
		json_decref(j);
	train_values_destroy(in);
	train_values_destroy(out);
	return self;
}

/* The model most tests share (trained once: valgrind runs stay short). */
static struct {
	void *self;
	featurizer fz;
	json_t *rep;
	double secs;
} shared;

static void *shared_model(void)
{
	if (!shared.self)
		shared.self = train_small(small_config, &shared.fz, &shared.rep, &shared.secs);
	return shared.self;
}

static void shared_free(void)
{
	if (shared.self)
		nlu_diet_class.destroy(shared.self);
	json_decref(shared.rep);
	vocab_free(&shared.fz.words);
	vocab_free(&shared.fz.prefixes);
	memset(&shared, 0, sizeof shared);
}

/* Run process on the given features; the parse JSON text (malloc'd). */
static char *diet_run(const train_component_class *cls, void *self, const train_features *f)
{
	train_ctx ctx;
	ctx_make(&ctx);
	train_values *in = values_with("features", features_value(f)), *out = NULL;
	CU_ASSERT_EQUAL_FATAL(train_values_create(&out), TRAIN_OK);
	int rc = cls->process(self, in, out, &ctx);
	if (rc)
		fprintf(stderr, "process: %s\n", ctx.fail);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	const train_value *v = train_values_get(out, "parse");
	CU_ASSERT_PTR_NOT_NULL_FATAL(v);
	CU_ASSERT_STRING_EQUAL(train_value_type(v), "application/json");
	char *s = strndup(train_value_data(v), train_value_size(v));
	train_values_destroy(in);
	train_values_destroy(out);
	return s;
}

/* Predict every training message one at a time; count intent and entity
 * mistakes. */
static void check_predictions(void *self, featurizer *fz, int *intent_errors, int *entity_errors)
{
	train_rasa_nlu *nlu = small_nlu();
	*intent_errors = *entity_errors = 0;
	for (size_t i = 0; i < nlu->n_messages; i++) {
		const train_rasa_message *msg = &nlu->messages[i];
		train_features *f = texts_features(fz, &msg->text, 1);
		char *s = diet_run(&nlu_diet_class, self, f);
		train_features_free(f);
		json_t *j = json_loads(s, 0, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(j);
		const char *name = json_string_value(json_object_get(json_object_get(j, "intent"),
		                                                     "name"));
		json_t *rank = json_object_get(j, "intent_ranking");
		CU_ASSERT(json_array_size(rank) == 5);
		if (!name || strcmp(name, msg->intent)) {
			(*intent_errors)++;
			fprintf(stderr, "'%s': predicted %s, want %s\n", msg->text, name ? name : "null",
			        msg->intent);
		}
		json_t *ents = json_object_get(j, "entities");
		int ok = json_array_size(ents) == msg->n_entities;
		for (size_t e = 0; ok && e < msg->n_entities; e++) {
			json_t *x = json_array_get(ents, e);
			const train_rasa_entity *en = &msg->entities[e];
			char want[128];
			snprintf(want, sizeof want, "%.*s", (int)(en->byte_end - en->byte_start),
			         msg->text + en->byte_start);
			ok = !strcmp(json_string_value(json_object_get(x, "entity")), en->entity) &&
			     json_integer_value(json_object_get(x, "start")) == en->start &&
			     json_integer_value(json_object_get(x, "end")) == en->end &&
			     !strcmp(json_string_value(json_object_get(x, "value")), want) &&
			     !strcmp(json_string_value(json_object_get(x, "extractor")), "DIETClassifier");
			double c = json_real_value(json_object_get(x, "confidence_entity"));
			ok = ok && c > 0 && c <= 1;
		}
		if (!ok) {
			(*entity_errors)++;
			fprintf(stderr, "'%s': entities %s\n", msg->text, s);
		}
		json_decref(j);
		free(s);
	}
	train_rasa_nlu_free(nlu);
}

static void test_diet_learns(void)
{
	void *self = shared_model();
	featurizer *fz = &shared.fz;
	json_t *rep = shared.rep;
	CU_ASSERT_PTR_NOT_NULL_FATAL(rep);
	CU_ASSERT(json_real_value(json_object_get(rep, "training_accuracy")) == 1.0);
	CU_ASSERT(json_real_value(json_object_get(rep, "training_entity_f1")) == 1.0);
	CU_ASSERT(json_integer_value(json_object_get(rep, "epochs")) == SMALL_EPOCHS);
	CU_ASSERT(json_integer_value(json_object_get(rep, "intents")) == 5);
	CU_ASSERT(json_integer_value(json_object_get(rep, "entity_tags")) == 5);
	CU_ASSERT(json_real_value(json_object_get(rep, "loss")) <
	          json_real_value(json_object_get(rep, "first_epoch_loss")));
	fprintf(stderr, "\n  DIET on nlu-small (31 examples, %d epochs, 1 transformer layer of 32): "
	        "%.2f s\n", SMALL_EPOCHS, shared.secs);
	int ie, ee;
	check_predictions(self, fz, &ie, &ee);
	CU_ASSERT_EQUAL(ie, 0);
	CU_ASSERT_EQUAL(ee, 0);
	/* an unseen message still gets a full ranking whose confidences sum to 1 */
	const char *texts[] = { "fly me to Paris please", "hello" };
	train_features *f = texts_features(fz, texts, 2);
	char *s = diet_run(&nlu_diet_class, self, f);
	json_t *j = json_loads(s, 0, NULL);
	CU_ASSERT(json_is_array(j) && json_array_size(j) == 2);
	double sum = 0;
	json_t *rank = json_object_get(json_array_get(j, 0), "intent_ranking");
	for (size_t i = 0; i < json_array_size(rank); i++)
		sum += json_real_value(json_object_get(json_array_get(rank, i), "confidence"));
	CU_ASSERT(fabs(sum - 1) < 1e-5);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
		json_object_get(json_array_get(j, 0), "intent"), "name")), "book_flight");
	json_decref(j);
	free(s);
	train_features_free(f);
}

/* Without a transformer and without entities, only the sentence rows are
 * read (as Rasa does); with BILOU off, entities are tagged by type. */
static void test_diet_variants(void)
{
	featurizer fz = { 0 };
	json_t *rep;
	void *self = train_small("epochs: 60\nnumber_of_transformer_layers: 0\n"
	                          "entity_recognition: false\nhidden_layers_sizes: {text: [32]}\n"
	                          "batch_size: 8\nbatch_strategy: sequence\n", &fz, &rep, NULL);
	CU_ASSERT(json_real_value(json_object_get(rep, "training_accuracy")) == 1.0);
	CU_ASSERT(json_is_null(json_object_get(rep, "training_entity_f1")));
	const char *t[] = { "thank you so much" };
	train_features *f = texts_features(&fz, t, 1);
	char *s = diet_run(&nlu_diet_class, self, f);
	json_t *j = json_loads(s, 0, NULL);
	CU_ASSERT_PTR_NULL(json_object_get(j, "entities"));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_object_get(j, "intent"),
	                                                         "name")), "thank");
	json_decref(j);
	free(s);
	train_features_free(f);
	json_decref(rep);
	nlu_diet_class.destroy(self);
	vocab_free(&fz.words);
	vocab_free(&fz.prefixes);

	/* libtrain's lazy_adam and weight_averaging_epochs learn it too */
	featurizer fz3 = { 0 };
	self = train_small("epochs: 60\nnumber_of_transformer_layers: 0\n"
	                    "entity_recognition: false\nhidden_layers_sizes: {text: []}\n"
	                    "batch_size: 8\nlazy_adam: true\nweight_averaging_epochs: 10\n",
	                    &fz3, &rep, NULL);
	CU_ASSERT(json_real_value(json_object_get(rep, "training_accuracy")) == 1.0);
	json_decref(rep);
	nlu_diet_class.destroy(self);
	vocab_free(&fz3.words);
	vocab_free(&fz3.prefixes);

	/* entities only, no BILOU, no transformer: a hidden layer carries the tokens */
	featurizer fz2 = { 0 };
	self = train_small("epochs: 80\nnumber_of_transformer_layers: 0\nBILOU_flag: false\n"
	                    "intent_classification: false\nhidden_layers_sizes: {text: [32]}\n"
	                    "batch_size: 8\nconnection_density: 1.0\nrandom_seed: 3\n", &fz2, &rep,
	                    NULL);
	CU_ASSERT(json_real_value(json_object_get(rep, "training_entity_f1")) == 1.0);
	CU_ASSERT(json_is_null(json_object_get(rep, "training_accuracy")));
	const char *t2[] = { "book a ticket to San Francisco" };
	f = texts_features(&fz2, t2, 1);
	s = diet_run(&nlu_diet_class, self, f);
	j = json_loads(s, 0, NULL);
	CU_ASSERT_PTR_NULL(json_object_get(j, "intent"));
	json_t *e = json_array_get(json_object_get(j, "entities"), 0);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "entities")), 1);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(e, "value")), "San Francisco");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(e, "start")), 17);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(e, "end")), 30);
	json_decref(j);
	free(s);
	train_features_free(f);
	json_decref(rep);
	nlu_diet_class.destroy(self);
	vocab_free(&fz2.words);
	vocab_free(&fz2.prefixes);
}

/* A learning rate that blows the weights up: a clear failure, not NaN weights. */
static void test_diet_diverges(void)
{
	train_ctx ctx;
	ctx_make(&ctx);
	void *self = diet_make("epochs: 5\nnumber_of_transformer_layers: 0\nlearning_rate: 1e30\n"
	                       "hidden_layers_sizes: {text: [8]}\nbatch_size: 4\n", &ctx);
	featurizer fz = { 0 };
	train_features *f = small_features(&fz);
	train_values *in = values_with("features", features_value(f)), *out = NULL;
	train_values_create(&out);
	CU_ASSERT_EQUAL(nlu_diet_class.train(self, in, out, &ctx), TRAIN_ECOMPONENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(ctx.fail, "diverged"));
	CU_ASSERT_PTR_NULL(train_values_get(out, "report"));
	train_values_destroy(in);
	train_values_destroy(out);
	train_features_free(f);
	nlu_diet_class.destroy(self);
	vocab_free(&fz.words);
	vocab_free(&fz.prefixes);
}

static char *read_all(const char *path, size_t *size)
{
	FILE *fp = fopen(path, "rb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	char *b = malloc((size_t)n + 1);
	CU_ASSERT_EQUAL_FATAL(fread(b, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	*size = (size_t)n;
	return b;
}

static const char *persist(const train_component_class *cls, void *self)
{
	const char *dir = test_tmpdir();
	train_resource res = { .dir = (char *)dir };
	CU_ASSERT_EQUAL_FATAL(cls->persist(self, &res), TRAIN_OK);
	return dir;
}

static void test_diet_reproducible(void)
{
	const char *cfg = "epochs: 6\nnumber_of_transformer_layers: 1\ntransformer_size: 32\n"
	                  "number_of_attention_heads: 2\ndense_dimension: {text: 32}\n"
	                  "batch_size: [8, 16]\nrandom_seed: 7\n";
	char cfg2[512];
	snprintf(cfg2, sizeof cfg2, "%s", cfg);
	char *seed = strstr(cfg2, "random_seed: 7");
	memcpy(seed, "random_seed: 8", 14);
	char *bytes[3];
	size_t sizes[3];
	for (int k = 0; k < 3; k++) {
		featurizer fz = { 0 };
		void *self = train_small(k < 2 ? cfg : cfg2, &fz, NULL, NULL);
		char path[600];
		snprintf(path, sizeof path, "%s/diet.safetensors", persist(&nlu_diet_class, self));
		bytes[k] = read_all(path, &sizes[k]);
		nlu_diet_class.destroy(self);
		vocab_free(&fz.words);
		vocab_free(&fz.prefixes);
	}
	CU_ASSERT(sizes[0] == sizes[1] && memcmp(bytes[0], bytes[1], sizes[0]) == 0);
	CU_ASSERT(sizes[0] == sizes[2] && memcmp(bytes[0], bytes[2], sizes[0]) != 0);
	for (int k = 0; k < 3; k++)
		free(bytes[k]);
}

static void test_diet_persist_load(void)
{
	void *self = shared_model();
	featurizer *fz = &shared.fz;
	train_rasa_nlu *nlu = small_nlu();
	const char *texts[64];
	for (size_t i = 0; i < nlu->n_messages; i++)
		texts[i] = nlu->messages[i].text;
	train_features *f = texts_features(fz, texts, nlu->n_messages);
	char *before = diet_run(&nlu_diet_class, self, f);
	const char *dir = persist(&nlu_diet_class, self);

	train_ctx ctx;
	ctx_make(&ctx);
	train_error err = { 0 };
	int rc;
	train_config *cfg = config_of(small_config, &rc, &err);
	train_resource res = { .dir = (char *)dir };
	void *loaded = NULL;
	rc = nlu_diet_class.load(cfg, &res, &ctx, &loaded);
	if (rc)
		fprintf(stderr, "load: %s\n", ctx.fail);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	char *after = diet_run(&nlu_diet_class, loaded, f);
	CU_ASSERT_STRING_EQUAL(before, after);
	/* the same model persisted again gives the same bytes */
	const char *dir2 = persist(&nlu_diet_class, loaded);
	char p1[600], p2[600];
	size_t n1, n2;
	snprintf(p1, sizeof p1, "%s/diet.safetensors", dir);
	snprintf(p2, sizeof p2, "%s/diet.safetensors", dir2);
	char *b1 = read_all(p1, &n1), *b2 = read_all(p2, &n2);
	CU_ASSERT(n1 == n2 && memcmp(b1, b2, n1) == 0);
	free(b1);
	free(b2);

	/* features without a block the model needs, or with another width */
	train_features *g = NULL;
	CU_ASSERT_EQUAL_FATAL(train_features_create(&g), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(train_features_add_message(g, "hello", NULL, NULL), TRAIN_OK);
	tokenize(g);
	sparse_block(g, "words", &fz->words, 0, 0);
	train_values *in = values_with("features", features_value(g)), *out = NULL;
	train_values_create(&out);
	CU_ASSERT_EQUAL(nlu_diet_class.process(loaded, in, out, &ctx), TRAIN_ECOMPONENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(ctx.fail, "prefix3"));
	train_values_destroy(in);
	train_values_destroy(out);
	train_features_free(g);

	/* a damaged weights file is refused with a message */
	snprintf(p1, sizeof p1, "%s/diet.json", dir);
	test_write(p1, "{\"format\": \"something else\"}");
	void *broken = NULL;
	CU_ASSERT_EQUAL(nlu_diet_class.load(cfg, &res, &ctx, &broken), TRAIN_ECOMPONENT);
	CU_ASSERT_PTR_NULL(broken);

	nlu_diet_class.destroy(loaded);
	train_config_destroy(cfg);
	train_features_free(f);
	train_rasa_nlu_free(nlu);
	free(before);
	free(after);
}

/* Finetuning continues from the loaded weights: its first epoch's loss is
 * below a fresh model's. */
static void test_diet_finetune(void)
{
	void *self = shared_model();
	/* a copy of the shared featurizer: the new examples grow its vocabulary */
	featurizer fz = { 0 };
	for (size_t i = 0; i < shared.fz.words.n; i++)
		vocab_id(&fz.words, shared.fz.words.w[i], 1);
	for (size_t i = 0; i < shared.fz.prefixes.n; i++)
		vocab_id(&fz.prefixes, shared.fz.prefixes.w[i], 1);
	const char *dir = persist(&nlu_diet_class, self);

	train_ctx ctx;
	ctx_make(&ctx);
	ctx.finetuning = 1;
	ctx.epoch_fraction = 0.25;
	train_error err = { 0 };
	int rc;
	train_config *cfg = config_of(small_config, &rc, &err);
	train_resource res = { .dir = (char *)dir };
	void *ft = NULL;
	CU_ASSERT_EQUAL_FATAL(nlu_diet_class.load(cfg, &res, &ctx, &ft), TRAIN_OK);
	/* the data and new examples with new words: the sparse blocks grow */
	const char *texts[] = { "howdy partner", "cheers mate", "ciao" };
	const char *intents[] = { "greet", "thank", "goodbye" };
	size_t words = shared.fz.words.n;
	train_features *f = small_features_plus(&fz, texts, intents, 3);
	CU_ASSERT(fz.words.n > words);
	train_values *in = values_with("features", features_value(f)), *out = NULL;
	train_values_create(&out);
	rc = nlu_diet_class.train(ft, in, out, &ctx);
	if (rc)
		fprintf(stderr, "finetune: %s\n", ctx.fail);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	const train_value *rv = train_values_get(out, "report");
	json_t *rep = json_loadb(train_value_data(rv), train_value_size(rv), 0, NULL);
	CU_ASSERT(json_is_true(json_object_get(rep, "finetuned")));
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(rep, "epochs")), (SMALL_EPOCHS + 3) / 4);
	double ft_first = json_real_value(json_object_get(rep, "first_epoch_loss"));
	double fresh_first = json_real_value(json_object_get(shared.rep, "first_epoch_loss"));
	CU_ASSERT(ft_first < fresh_first / 2);
	CU_ASSERT(json_real_value(json_object_get(rep, "training_accuracy")) == 1.0);
	json_decref(rep);
	train_values_destroy(in);
	train_values_destroy(out);
	train_features_free(f);
	/* the grown model persists and loads like any other */
	const char *dir2 = persist(&nlu_diet_class, ft);
	train_resource res2 = { .dir = (char *)dir2 };
	void *again = NULL;
	CU_ASSERT_EQUAL_FATAL(nlu_diet_class.load(cfg, &res2, &ctx, &again), TRAIN_OK);
	const char *t1[] = { "howdy partner" };
	train_features *g1 = texts_features(&fz, t1, 1);
	char *a = diet_run(&nlu_diet_class, ft, g1), *b = diet_run(&nlu_diet_class, again, g1);
	CU_ASSERT_STRING_EQUAL(a, b);
	free(a);
	free(b);
	train_features_free(g1);
	nlu_diet_class.destroy(again);

	/* a new intent cannot be finetuned into the model */
	train_features *g = NULL;
	CU_ASSERT_EQUAL_FATAL(train_features_create(&g), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(train_features_add_message(g, "hello", "brand_new", NULL), TRAIN_OK);
	featurize(g, &fz, 0);
	in = values_with("features", features_value(g));
	train_values_create(&out);
	CU_ASSERT_EQUAL(nlu_diet_class.train(ft, in, out, &ctx), TRAIN_ECOMPONENT);
	CU_ASSERT_PTR_NOT_NULL(strstr(ctx.fail, "brand_new"));
	train_values_destroy(in);
	train_values_destroy(out);
	train_features_free(g);

	nlu_diet_class.destroy(ft);
	train_config_destroy(cfg);
	vocab_free(&fz.words);
	vocab_free(&fz.prefixes);
}

static void test_diet_config(void)
{
	train_ctx ctx;
	ctx_make(&ctx);
	train_error err = { 0 };
	int rc;
	/* unknown keys: the parameter table lists Rasa's keys */
	train_config *cfg = config_of("epochz: 3\n", &rc, &err);
	CU_ASSERT_EQUAL(rc, TRAIN_ECONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "epochz"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "number_of_transformer_layers"));
	train_config_destroy(cfg);
	/* the defaults are Rasa's */
	cfg = config_of("{}", &rc, &err);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	CU_ASSERT_EQUAL(train_config_int(cfg, "epochs"), 300);
	CU_ASSERT_EQUAL(train_config_int(cfg, "embedding_dimension"), 20);
	CU_ASSERT_EQUAL(train_config_int(cfg, "number_of_attention_heads"), 4);
	CU_ASSERT_EQUAL(train_config_as_int(train_config_get(cfg, "number_of_transformer_layers")), 2);
	CU_ASSERT_EQUAL(train_config_as_int(train_config_get(cfg, "transformer_size")), 256);
	CU_ASSERT(train_config_float(cfg, "learning_rate") == 0.001);
	CU_ASSERT(train_config_float(cfg, "drop_rate") == 0.2);
	CU_ASSERT(train_config_float(cfg, "connection_density") == 0.2);
	CU_ASSERT(!train_config_bool(cfg, "constrain_similarities"));
	CU_ASSERT(train_config_bool(cfg, "BILOU_flag"));
	CU_ASSERT_STRING_EQUAL(train_config_string(cfg, "model_confidence"), "softmax");
	CU_ASSERT_STRING_EQUAL(train_config_string(cfg, "loss_type"), "cross_entropy");
	const train_config *bs = train_config_get(cfg, "batch_size");
	CU_ASSERT(train_config_as_int(train_config_at(bs, 0)) == 64 &&
	          train_config_as_int(train_config_at(bs, 1)) == 256);
	void *self = NULL;
	CU_ASSERT_EQUAL(nlu_diet_class.create(cfg, &ctx, &self), TRAIN_OK);
	nlu_diet_class.destroy(self);
	train_config_destroy(cfg);
	/* values the model does not support are errors, with a reason */
	const char *bad[] = {
		"similarity_type: cosine\n", "loss_type: margin\n", "model_confidence: linear_norm\n",
		"use_masked_language_model: true\n", "transformer_size: 30\n", "batch_size: [1, 2, 3]\n",
		"drop_rate: 1.0\n", "hidden_layers_sizes: {text: [0]}\n",
		"hidden_layers_sizes: {txt: []}\n", "drop_rate_attention: 0.1\n",
		"intent_classification: false\nentity_recognition: false\n",
		"split_entities_by_comma: {city: 3}\n", NULL,
	};
	for (int i = 0; bad[i]; i++) {
		cfg = config_of(bad[i], &rc, &err);
		CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
		ctx.fail[0] = '\0';
		self = NULL;
		CU_ASSERT_EQUAL(nlu_diet_class.create(cfg, &ctx, &self), TRAIN_ECOMPONENT);
		CU_ASSERT(ctx.fail[0] != '\0');
		CU_ASSERT_PTR_NULL(self);
		train_config_destroy(cfg);
	}
	/* Rasa's other spellings are accepted */
	const char *good[] = {
		"batch_size: 32\n", "number_of_transformer_layers: {text: 0}\n",
		"transformer_size: null\n", "weight_sparsity: 0.7\n", "loss_type: softmax\n",
		"split_entities_by_comma: {address: false}\n", "random_seed: 42\n", NULL,
	};
	for (int i = 0; good[i]; i++) {
		cfg = config_of(good[i], &rc, &err);
		CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
		self = NULL;
		CU_ASSERT_EQUAL(nlu_diet_class.create(cfg, &ctx, &self), TRAIN_OK);
		nlu_diet_class.destroy(self);
		train_config_destroy(cfg);
	}
}

/* ------------------------------------------------------------------------ */
/* FallbackClassifier and EntitySynonymMapper */

static char *run_parse(const train_component_class *cls, void *self, const char *json)
{
	train_ctx ctx;
	ctx_make(&ctx);
	train_values *in = NULL, *out = NULL;
	train_values_create(&in);
	train_values_create(&out);
	train_values_put_bytes(in, "parse", "application/json", json, strlen(json));
	int rc = cls->process(self, in, out, &ctx);
	if (rc)
		fprintf(stderr, "process: %s\n", ctx.fail);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	const train_value *v = train_values_get(out, "parse");
	char *s = strndup(train_value_data(v), train_value_size(v));
	train_values_destroy(in);
	train_values_destroy(out);
	return s;
}

static void *fallback_make(const char *yaml)
{
	train_ctx ctx;
	ctx_make(&ctx);
	train_config *user = NULL, *cfg = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_config_parse(yaml, strlen(yaml), "c", &user, &err), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(train_config_validate(user, nlu_fallback_class.params, "fb", &cfg, &err),
	                      TRAIN_OK);
	void *self = NULL;
	CU_ASSERT_EQUAL_FATAL(nlu_fallback_class.create(cfg, &ctx, &self), TRAIN_OK);
	train_config_destroy(user);
	train_config_destroy(cfg);
	return self;
}

static void test_fallback(void)
{
	void *fb = fallback_make("{}");
	/* confident and unambiguous: unchanged */
	const char *ok = "{\"text\":\"hi\",\"intent\":{\"name\":\"greet\",\"confidence\":0.9},"
	                 "\"entities\":[],\"intent_ranking\":[{\"name\":\"greet\",\"confidence\":0.9},"
	                 "{\"name\":\"bye\",\"confidence\":0.05}]}";
	char *s = run_parse(&nlu_fallback_class, fb, ok);
	json_t *a = json_loads(ok, 0, NULL), *b = json_loads(s, 0, NULL);
	CU_ASSERT(json_equal(a, b));
	json_decref(a);
	json_decref(b);
	free(s);
	/* below the threshold (0.3): nlu_fallback with the threshold as confidence, first in
	 * the ranking */
	s = run_parse(&nlu_fallback_class, fb,
	              "{\"intent\":{\"name\":\"greet\",\"confidence\":0.29},\"intent_ranking\":"
	              "[{\"name\":\"greet\",\"confidence\":0.29},{\"name\":\"bye\",\"confidence\":0.1}]}");
	b = json_loads(s, 0, NULL);
	json_t *in = json_object_get(b, "intent"), *rank = json_object_get(b, "intent_ranking");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(in, "name")), "nlu_fallback");
	CU_ASSERT(json_real_value(json_object_get(in, "confidence")) == 0.3);
	CU_ASSERT_EQUAL(json_array_size(rank), 3);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(rank, 0), "name")),
	                       "nlu_fallback");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(rank, 1), "name")),
	                       "greet");
	json_decref(b);
	free(s);
	/* ambiguous (0.5 - 0.45 < 0.1), in an array of messages; the second stays */
	s = run_parse(&nlu_fallback_class, fb,
	              "[{\"intent\":{\"name\":\"a\",\"confidence\":0.5},\"intent_ranking\":"
	              "[{\"name\":\"a\",\"confidence\":0.5},{\"name\":\"b\",\"confidence\":0.45}]},"
	              "{\"intent\":{\"name\":\"a\",\"confidence\":0.5},\"intent_ranking\":"
	              "[{\"name\":\"a\",\"confidence\":0.5},{\"name\":\"b\",\"confidence\":0.35}]}]");
	b = json_loads(s, 0, NULL);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_object_get(
		json_array_get(b, 0), "intent"), "name")), "nlu_fallback");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_object_get(
		json_array_get(b, 1), "intent"), "name")), "a");
	json_decref(b);
	free(s);
	nlu_fallback_class.destroy(fb);
	/* other thresholds; no ranking at all */
	fb = fallback_make("{threshold: 0.7, ambiguity_threshold: 0.0}");
	s = run_parse(&nlu_fallback_class, fb, "{\"intent\":{\"name\":\"a\",\"confidence\":0.6}}");
	b = json_loads(s, 0, NULL);
	CU_ASSERT(json_real_value(json_object_get(json_object_get(b, "intent"), "confidence")) == 0.7);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(b, "intent_ranking")), 1);
	json_decref(b);
	free(s);
	nlu_fallback_class.destroy(fb);
}

static void test_synonyms(void)
{
	train_ctx ctx;
	ctx_make(&ctx);
	train_rasa_nlu *nlu = small_nlu();
	train_value *v = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_rasa_nlu_to_value(nlu, &v, &err), TRAIN_OK);
	train_rasa_nlu_free(nlu);
	void *self = NULL;
	CU_ASSERT_EQUAL_FATAL(nlu_synonym_class.create(NULL, &ctx, &self), TRAIN_OK);
	train_values *in = values_with("nlu", v), *out = NULL;
	train_values_create(&out);
	CU_ASSERT_EQUAL_FATAL(nlu_synonym_class.train(self, in, out, &ctx), TRAIN_OK);
	const train_value *sv = train_values_get(out, "synonyms");
	json_t *map = json_loadb(train_value_data(sv), train_value_size(sv), 0, NULL);
	/* the synonym: block and the annotated value, keys lower-cased */
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(map, "nyc")), "New York");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(map, "big apple")), "New York");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(map, "new york city")), "New York");
	CU_ASSERT_EQUAL(json_object_size(map), 3);
	json_decref(map);
	train_values_destroy(in);
	train_values_destroy(out);

	const char *parse = "{\"text\":\"fly to Big Apple\",\"entities\":[{\"entity\":\"city\","
	                    "\"start\":7,\"end\":16,\"value\":\"Big Apple\",\"extractor\":\"DIETClassifier\"},"
	                    "{\"entity\":\"city\",\"start\":0,\"end\":1,\"value\":\"Paris\"},"
	                    "{\"entity\":\"n\",\"value\":3}]}";
	char *s = run_parse(&nlu_synonym_class, self, parse);
	json_t *j = json_loads(s, 0, NULL);
	json_t *e0 = json_array_get(json_object_get(j, "entities"), 0);
	json_t *e1 = json_array_get(json_object_get(j, "entities"), 1);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(e0, "value")), "New York");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(json_object_get(e0, "processors"), 0)),
	                       "EntitySynonymMapper");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(e1, "value")), "Paris");
	CU_ASSERT_PTR_NULL(json_object_get(e1, "processors"));
	json_decref(j);
	/* persisted and loaded, the same */
	const char *dir = persist(&nlu_synonym_class, self);
	train_resource res = { .dir = (char *)dir };
	void *loaded = NULL;
	CU_ASSERT_EQUAL_FATAL(nlu_synonym_class.load(NULL, &res, &ctx, &loaded), TRAIN_OK);
	char *s2 = run_parse(&nlu_synonym_class, loaded, parse);
	CU_ASSERT_STRING_EQUAL(s, s2);
	free(s);
	free(s2);
	nlu_synonym_class.destroy(self);
	nlu_synonym_class.destroy(loaded);
}

/* DIET, then the synonym mapper, then the fallback: the prediction chain
 * of a Rasa pipeline. */
static void test_pipeline(void)
{
	void *diet = shared_model();
	featurizer *fz = &shared.fz;
	train_ctx ctx;
	ctx_make(&ctx);
	train_rasa_nlu *nlu = small_nlu();
	train_value *v = NULL;
	train_error err = { 0 };
	train_rasa_nlu_to_value(nlu, &v, &err);
	train_rasa_nlu_free(nlu);
	void *syn = NULL;
	nlu_synonym_class.create(NULL, &ctx, &syn);
	train_values *in = values_with("nlu", v), *out = NULL;
	train_values_create(&out);
	CU_ASSERT_EQUAL_FATAL(nlu_synonym_class.train(syn, in, out, &ctx), TRAIN_OK);
	train_values_destroy(in);
	train_values_destroy(out);
	void *fb = fallback_make("{threshold: 0.3}");

	const char *t[] = { "a flight to NYC" };
	train_features *f = texts_features(fz, t, 1);
	char *p1 = diet_run(&nlu_diet_class, diet, f);
	char *p2 = run_parse(&nlu_synonym_class, syn, p1);
	char *p3 = run_parse(&nlu_fallback_class, fb, p2);
	json_t *j = json_loads(p3, 0, NULL);
	json_t *e = json_array_get(json_object_get(j, "entities"), 0);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(e, "value")), "New York");
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(e, "start")), 12);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_object_get(j, "intent"),
	                                                         "name")), "book_flight");
	json_decref(j);
	free(p1);
	free(p2);
	free(p3);
	train_features_free(f);
	nlu_synonym_class.destroy(syn);
	nlu_fallback_class.destroy(fb);
}

/* ResponseSelector: response keys of retrieval intents as labels, Rasa's
 * response_selector in the parse. */
static void test_selector(void)
{
	train_ctx ctx;
	ctx_make(&ctx);
	train_rasa_nlu *nlu = load_nlu("selector.yml");
	train_features *f = NULL;
	CU_ASSERT_EQUAL_FATAL(train_features_from_nlu(nlu, &f), TRAIN_OK);
	featurizer fz = { 0 };
	featurize(f, &fz, 1);
	train_value *nv = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_rasa_nlu_to_value(nlu, &nv, &err), TRAIN_OK);
	const char *yaml = "epochs: 60\nhidden_layers_sizes: {text: [32], label: [16]}\n"
	                   "dense_dimension: {text: 32}\nbatch_size: 8\nrandom_seed: 1\n";
	train_config *user = NULL, *cfg = NULL;
	CU_ASSERT_EQUAL_FATAL(train_config_parse(yaml, strlen(yaml), "c", &user, &err), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(train_config_validate(user, nlu_selector_class.params, "rs", &cfg, &err),
	                      TRAIN_OK);
	train_config_destroy(user);
	void *rs = NULL;
	CU_ASSERT_EQUAL_FATAL(nlu_selector_class.create(cfg, &ctx, &rs), TRAIN_OK);
	train_values *in = values_with("features", features_value(f)), *out = NULL;
	CU_ASSERT_EQUAL_FATAL(train_values_put_take(in, "nlu", nv), TRAIN_OK);
	train_values_create(&out);
	int rc = nlu_selector_class.train(rs, in, out, &ctx);
	if (rc)
		fprintf(stderr, "train: %s\n", ctx.fail);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	const train_value *rv = train_values_get(out, "report");
	json_t *rep = json_loadb(train_value_data(rv), train_value_size(rv), 0, NULL);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(rep, "intents")), 4);
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(rep, "examples")), 14);
	CU_ASSERT(json_real_value(json_object_get(rep, "training_accuracy")) == 1.0);
	json_decref(rep);
	train_values_destroy(in);
	train_values_destroy(out);

	/* every retrieval example gets its response; a parse without one gets a
	 * response_selector too */
	const char *keys[] = { "chitchat/ask_name", "chitchat/ask_weather", "faq/opening_hours",
		               "faq/price" };
	for (size_t i = 0; i < nlu->n_messages; i++) {
		const train_rasa_message *msg = &nlu->messages[i];
		train_features *g = texts_features(&fz, &msg->text, 1);
		train_values *pin = values_with("features", features_value(g)), *pout = NULL;
		const char *parse = "{\"text\":\"x\",\"intent\":{\"name\":\"a\",\"confidence\":1.0}}";
		train_values_put_bytes(pin, "parse", "application/json", parse, strlen(parse));
		train_values_create(&pout);
		CU_ASSERT_EQUAL_FATAL(nlu_selector_class.process(rs, pin, pout, &ctx), TRAIN_OK);
		const train_value *pv = train_values_get(pout, "parse");
		json_t *j = json_loadb(train_value_data(pv), train_value_size(pv), 0, NULL);
		json_t *sel = json_object_get(j, "response_selector");
		CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_object_get(j, "intent"),
		                                                         "name")), "a");
		json_t *all = json_object_get(sel, "all_retrieval_intents");
		CU_ASSERT(json_array_size(all) == 2 &&
		          !strcmp(json_string_value(json_array_get(all, 0)), "chitchat") &&
		          !strcmp(json_string_value(json_array_get(all, 1)), "faq"));
		json_t *resp = json_object_get(json_object_get(sel, "default"), "response");
		const char *key = json_string_value(json_object_get(resp, "intent_response_key"));
		CU_ASSERT_PTR_NOT_NULL_FATAL(key);
		CU_ASSERT_EQUAL(json_array_size(json_object_get(json_object_get(sel, "default"),
		                                                "ranking")), 4);
		if (msg->response_key) {
			char want[128];
			snprintf(want, sizeof want, "%s/%s", msg->intent, msg->response_key);
			CU_ASSERT_STRING_EQUAL(key, want);
			char utter[140];
			snprintf(utter, sizeof utter, "utter_%s", want);
			CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(resp, "utter_action")),
			                       utter);
			json_t *r0 = json_array_get(json_object_get(resp, "responses"), 0);
			CU_ASSERT_PTR_NOT_NULL(json_object_get(r0, "text"));
			if (!strcmp(want, "chitchat/ask_weather"))
				CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r0, "image")),
				                       "https://example.org/sun.png");
			if (!strcmp(want, "faq/price"))
				CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(json_array_get(
					json_object_get(r0, "buttons"), 0), "payload")), "/affirm");
		}
		int known = 0;
		for (int k = 0; k < 4; k++)
			known |= !strcmp(key, keys[k]);
		CU_ASSERT(known);
		json_decref(j);
		train_values_destroy(pin);
		train_values_destroy(pout);
		train_features_free(g);
	}
	/* persisted and loaded: the same parse */
	const char *t[] = { "what are your opening hours" };
	train_features *g = texts_features(&fz, t, 1);
	const char *parse = "{\"text\":\"what are your opening hours\"}";
	char *before, *after;
	{
		train_values *pin = values_with("features", features_value(g)), *pout = NULL;
		train_values_put_bytes(pin, "parse", "application/json", parse, strlen(parse));
		train_values_create(&pout);
		CU_ASSERT_EQUAL_FATAL(nlu_selector_class.process(rs, pin, pout, &ctx), TRAIN_OK);
		const train_value *pv = train_values_get(pout, "parse");
		before = strndup(train_value_data(pv), train_value_size(pv));
		train_values_destroy(pin);
		train_values_destroy(pout);
	}
	const char *dir = persist(&nlu_selector_class, rs);
	train_resource res = { .dir = (char *)dir };
	void *loaded = NULL;
	rc = nlu_selector_class.load(cfg, &res, &ctx, &loaded);
	if (rc)
		fprintf(stderr, "load: %s\n", ctx.fail);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	{
		train_values *pin = values_with("features", features_value(g)), *pout = NULL;
		train_values_put_bytes(pin, "parse", "application/json", parse, strlen(parse));
		train_values_create(&pout);
		CU_ASSERT_EQUAL_FATAL(nlu_selector_class.process(loaded, pin, pout, &ctx), TRAIN_OK);
		const train_value *pv = train_values_get(pout, "parse");
		after = strndup(train_value_data(pv), train_value_size(pv));
		train_values_destroy(pin);
		train_values_destroy(pout);
	}
	CU_ASSERT_STRING_EQUAL(before, after);
	CU_ASSERT_PTR_NOT_NULL(strstr(before, "\"intent_response_key\":\"faq/opening_hours\""));
	free(before);
	free(after);
	train_features_free(g);
	nlu_selector_class.destroy(loaded);
	nlu_selector_class.destroy(rs);
	train_config_destroy(cfg);
	train_features_free(f);
	train_rasa_nlu_free(nlu);
	vocab_free(&fz.words);
	vocab_free(&fz.prefixes);
}

static void test_descriptor(void)
{
	extern const train_plugin_desc train_plugin_descriptor;
	CU_ASSERT_STRING_EQUAL(train_plugin_descriptor.name, "nlu");
	const char *names[] = { "DIETClassifier", "EntitySynonymMapper", "FallbackClassifier",
		                "ResponseSelector" };
	for (int i = 0; i < 4; i++)
		CU_ASSERT_STRING_EQUAL(train_plugin_descriptor.components[i]->name, names[i]);
	CU_ASSERT_PTR_NULL(train_plugin_descriptor.components[4]);
}

int main(void)
{
	if (train_kernels_init(1, TRAIN_PRECISION_FP32) != TRAIN_OK)
		return 1;
	static const test_case cases[] = {
		{ "crf_bruteforce", test_crf_bruteforce },
		{ "sparse_layer", test_sparse_layer },
		{ "diet_gradcheck", test_diet_gradcheck },
		{ "diet_gradcheck_no_transformer", test_diet_gradcheck_no_transformer },
		{ "diet_gradcheck_causal", test_diet_gradcheck_causal },
		{ "diet_lazy_adam", test_diet_lazy_adam },
		{ "diet_adam_exact", test_diet_adam_exact },
		{ "diet_config", test_diet_config },
		{ "diet_learns", test_diet_learns },
		{ "diet_variants", test_diet_variants },
		{ "diet_diverges", test_diet_diverges },
		{ "diet_reproducible", test_diet_reproducible },
		{ "diet_persist_load", test_diet_persist_load },
		{ "diet_finetune", test_diet_finetune },
		{ "fallback", test_fallback },
		{ "synonyms", test_synonyms },
		{ "pipeline", test_pipeline },
		{ "selector", test_selector },
		{ "descriptor", test_descriptor },
		{ NULL, NULL },
	};
	int rc = test_main("diet", cases);
	shared_free();
	return rc;
}
