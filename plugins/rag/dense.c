/*
 * plugins/rag/dense.c - the dense encoder of the RAG plugin (see dense.h):
 * mean pooling, L2 normalisation and InfoNCE as forward/backward pairs, the
 * encoder's bytes, batched encoding, and inverse-cloze training.
 */
#include "dense.h"

#include <train/optim.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- layers ------------------------------------------------------------------ */

void dense_pool_forward(float *out, const float *h, const uint8_t *mask, int B, int T, int C)
{
	for (int b = 0; b < B; b++) {
		float *o = out + (size_t)b * C;
		int cnt = 0;
		memset(o, 0, (size_t)C * sizeof *o);
		for (int t = 0; t < T; t++) {
			if (mask && !mask[(size_t)b * T + t])
				continue;
			const float *x = h + ((size_t)b * T + t) * C;
			for (int c = 0; c < C; c++)
				o[c] += x[c];
			cnt++;
		}
		if (cnt)
			for (int c = 0; c < C; c++)
				o[c] /= (float)cnt;
	}
}

void dense_pool_backward(float *dh, const float *dout, const uint8_t *mask, int B, int T, int C)
{
	for (int b = 0; b < B; b++) {
		int cnt = 0;
		for (int t = 0; t < T; t++)
			cnt += !mask || mask[(size_t)b * T + t];
		if (!cnt)
			continue;
		const float *d = dout + (size_t)b * C;
		for (int t = 0; t < T; t++) {
			if (mask && !mask[(size_t)b * T + t])
				continue;
			float *x = dh + ((size_t)b * T + t) * C;
			for (int c = 0; c < C; c++)
				x[c] += d[c] / (float)cnt;
		}
	}
}

void dense_l2norm_forward(float *out, float *norm, const float *in, int B, int C)
{
	for (int b = 0; b < B; b++) {
		const float *x = in + (size_t)b * C;
		double s = 0;
		for (int c = 0; c < C; c++)
			s += (double)x[c] * x[c];
		float n = (float)sqrt(s);
		if (n < 1e-12f)
			n = 1e-12f;
		norm[b] = n;
		for (int c = 0; c < C; c++)
			out[(size_t)b * C + c] = x[c] / n;
	}
}

/* d in = (d out - y <y, d out>) / n; at the clamp (n = 1e-12) the
 * gradient of the clamped branch is d out / n. */
void dense_l2norm_backward(float *din, const float *dout, const float *out, const float *norm, int B, int C)
{
	for (int b = 0; b < B; b++) {
		const float *d = dout + (size_t)b * C, *y = out + (size_t)b * C;
		double dot = 0;
		for (int c = 0; c < C; c++)
			dot += (double)d[c] * y[c];
		float n = norm[b];
		int clamped = n <= 1e-12f;
		for (int c = 0; c < C; c++)
			din[(size_t)b * C + c] += (d[c] - (clamped ? 0.0f : (float)dot * y[c])) / n;
	}
}

double dense_infonce_forward(float *probs, const float *q, const float *p, int B, int C, float tau,
                             int *correct)
{
	double loss = 0;
	int ok = 0;
	for (int i = 0; i < B; i++) {
		float *row = probs + (size_t)i * B;
		const float *qi = q + (size_t)i * C;
		float mx = -INFINITY;
		int arg = 0;
		for (int j = 0; j < B; j++) {
			const float *pj = p + (size_t)j * C;
			double s = 0;
			for (int c = 0; c < C; c++)
				s += (double)qi[c] * pj[c];
			row[j] = (float)(s / tau);
			if (row[j] > mx) {
				mx = row[j];
				arg = j;
			}
		}
		double z = 0;
		for (int j = 0; j < B; j++)
			z += exp((double)row[j] - mx);
		loss += -((double)row[i] - mx - log(z));
		for (int j = 0; j < B; j++)
			row[j] = (float)(exp((double)row[j] - mx) / z);
		ok += arg == i;
	}
	if (correct)
		*correct = ok;
	return loss / B;
}

/* dS = (P - I) / B; dq = dS p / tau; dp = dS^T q / tau. */
void dense_infonce_backward(float *dq, float *dp, const float *probs, const float *q, const float *p,
                            int B, int C, float tau)
{
	for (int i = 0; i < B; i++)
		for (int j = 0; j < B; j++) {
			float g = (probs[(size_t)i * B + j] - (i == j ? 1.0f : 0.0f)) / ((float)B * tau);
			if (g == 0.0f)
				continue;
			const float *qi = q + (size_t)i * C, *pj = p + (size_t)j * C;
			float *dqi = dq + (size_t)i * C, *dpj = dp + (size_t)j * C;
			for (int c = 0; c < C; c++) {
				dqi[c] += g * pj[c];
				dpj[c] += g * qi[c];
			}
		}
}

/* ---- the encoder ------------------------------------------------------------------- */

void dense_encoder_free(dense_encoder *e)
{
	if (!e)
		return;
	bert_model_destroy(e->m);
	bert_vocab_free(&e->v);
	free(e);
}

int dense_encoder_load_hf(const char *dir, int max_length, dense_encoder **out, train_error *err)
{
	*out = NULL;
	dense_encoder *e = calloc(1, sizeof *e);
	if (!e)
		return TRAIN_ENOMEM;
	int rc = bert_hf_load(dir, 0, 0, 1, &e->m, &e->v, err);
	if (rc) {
		free(e);
		return rc;
	}
	e->max_length = max_length < e->m->cfg.max_position ? max_length : e->m->cfg.max_position;
	if (e->max_length < 3) {
		dense_encoder_free(e);
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "max_length must be at least 3");
	}
	*out = e;
	return TRAIN_OK;
}

#define ENC_MAGIC "TRNDENC1"

int dense_encoder_serialize(const dense_encoder *e, void **buf, size_t *size)
{
	const bert_config *c = &e->m->cfg;
	char *vt = NULL;
	size_t vl = 0;
	int rc = bert_vocab_text(&e->v, &vt, &vl);
	if (rc)
		return rc;
	json_t *h = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:i, s:b}", "vocab_size",
	                      c->vocab_size, "hidden_size", c->hidden, "num_hidden_layers", c->layers,
	                      "num_attention_heads", c->heads, "intermediate_size", c->intermediate,
	                      "max_position_embeddings", c->max_position, "type_vocab_size", c->type_vocab,
	                      "max_length", e->max_length, "layer_norm_eps", (double)c->ln_eps,
	                      "n_params", (int)e->m->n_params, "lowercase", e->v.lowercase);
	char *hj = h ? json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(h);
	if (!hj) {
		free(vt);
		return TRAIN_ENOMEM;
	}
	uint32_t hl = (uint32_t)strlen(hj);
	uint64_t vl64 = vl;
	size_t total = 8 + 4 + hl + 8 + vl + e->m->n_params * sizeof(float);
	unsigned char *b = malloc(total), *p = b;
	if (!b) {
		free(vt);
		free(hj);
		return TRAIN_ENOMEM;
	}
	memcpy(p, ENC_MAGIC, 8), p += 8;
	memcpy(p, &hl, 4), p += 4;
	memcpy(p, hj, hl), p += hl;
	memcpy(p, &vl64, 8), p += 8;
	memcpy(p, vt, vl), p += vl;
	memcpy(p, e->m->params, e->m->n_params * sizeof(float));
	free(vt);
	free(hj);
	*buf = b;
	*size = total;
	return TRAIN_OK;
}

static int getint(json_t *h, const char *k, int *v)
{
	json_t *x = json_object_get(h, k);
	if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > INT32_MAX)
		return -1;
	*v = (int)json_integer_value(x);
	return 0;
}

int dense_encoder_parse(const void *buf, size_t size, dense_encoder **out, train_error *err)
{
	const unsigned char *b = buf;
	*out = NULL;
#define BAD(...) do { rc = train_error_set(err, TRAIN_ECORRUPT, NULL, 0, 0, __VA_ARGS__); goto out; } while (0)
	int rc = 0;
	json_t *h = NULL;
	char **toks = NULL;
	size_t ntok = 0;
	dense_encoder *e = calloc(1, sizeof *e);
	if (!e)
		return TRAIN_ENOMEM;
	uint32_t hl;
	uint64_t vl;
	if (size < 12 || memcmp(b, ENC_MAGIC, 8))
		BAD("encoder: not a dense encoder (magic)");
	memcpy(&hl, b + 8, 4);
	if (hl > size - 12)
		BAD("encoder: header of %u bytes past the end (%zu)", hl, size);
	json_error_t je;
	h = json_loadb((const char *)b + 12, hl, 0, &je);
	bert_config c = { 0 };
	int np = 0, lower = 0;
	json_t *lw = h ? json_object_get(h, "lowercase") : NULL;
	if (!h || getint(h, "vocab_size", &c.vocab_size) || getint(h, "hidden_size", &c.hidden) ||
	    getint(h, "num_hidden_layers", &c.layers) || getint(h, "num_attention_heads", &c.heads) ||
	    getint(h, "intermediate_size", &c.intermediate) ||
	    getint(h, "max_position_embeddings", &c.max_position) ||
	    getint(h, "type_vocab_size", &c.type_vocab) || getint(h, "max_length", &e->max_length) ||
	    getint(h, "n_params", &np) || !json_is_number(json_object_get(h, "layer_norm_eps")) ||
	    !json_is_boolean(lw))
		BAD("encoder: bad header");
	lower = json_is_true(lw);
	c.ln_eps = (float)json_number_value(json_object_get(h, "layer_norm_eps"));
	if (bert_config_check(&c, err) || e->max_length < 3 || e->max_length > c.max_position)
		BAD("encoder: bad shape in the header");
	size_t at = 12 + hl;
	if (size - at < 8)
		BAD("encoder: truncated before the vocabulary");
	memcpy(&vl, b + at, 8);
	at += 8;
	if (vl > size - at)
		BAD("encoder: vocabulary of %llu bytes past the end", (unsigned long long)vl);
	const char *vt = (const char *)b + at;
	at += vl;
	for (size_t i = 0; i < vl; i++)
		ntok += vt[i] == '\n';
	if (!(toks = calloc(ntok + 1, sizeof *toks))) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	for (size_t i = 0, s = 0, k = 0; i < vl; i++)
		if (vt[i] == '\n') {
			if (!(toks[k] = malloc(i - s + 1))) {
				rc = TRAIN_ENOMEM;
				goto out;
			}
			memcpy(toks[k], vt + s, i - s);
			toks[k++][i - s] = '\0';
			s = i + 1;
		}
	if (ntok != (size_t)c.vocab_size)
		BAD("encoder: %zu vocabulary entries for vocab_size %d", ntok, c.vocab_size);
	if ((rc = bert_vocab_from((const char *const *)toks, ntok, lower, &e->v, err)))
		goto out;
	if ((rc = bert_model_create(&c, &e->m)))
		goto out;
	if ((size_t)np != e->m->n_params || (size - at) / sizeof(float) != e->m->n_params ||
	    (size - at) % sizeof(float))
		BAD("encoder: %zu bytes of parameters, the shape needs %zu floats", size - at,
		    e->m->n_params);
	memcpy(e->m->params, b + at, e->m->n_params * sizeof(float));
#undef BAD
out:
	for (size_t i = 0; toks && i < ntok; i++)
		free(toks[i]);
	free(toks);
	json_decref(h);
	if (rc)
		dense_encoder_free(e);
	else
		*out = e;
	return rc;
}

/* ---- batches ------------------------------------------------------------------------ */

typedef struct seqs {
	int32_t *ids;   /* (n, maxlen) */
	int *len;       /* (n) */
	size_t n;
	int maxlen;
} seqs;

/* Pad rows idx[0..B) of s into ids/mask (B, T), T the longest. */
static int pad_batch(const seqs *s, const size_t *idx, int B, int32_t *ids, uint8_t *mask, int32_t pad)
{
	int T = 1;
	for (int b = 0; b < B; b++)
		if (s->len[idx[b]] > T)
			T = s->len[idx[b]];
	for (int b = 0; b < B; b++) {
		const int32_t *src = s->ids + idx[b] * (size_t)s->maxlen;
		int L = s->len[idx[b]];
		for (int t = 0; t < T; t++) {
			ids[(size_t)b * T + t] = t < L ? src[t] : pad;
			mask[(size_t)b * T + t] = t < L;
		}
	}
	return T;
}

/* [CLS] pieces [SEP], truncated to maxlen. */
static int encode_text(const bert_vocab *v, const char *text, size_t len, int maxlen, int32_t *ids,
                       int *outlen)
{
	size_t n = 0;
	int rc = bert_tokenize(v, text, len, ids + 1, (size_t)maxlen - 2, &n);
	if (rc)
		return rc;
	if (n > (size_t)maxlen - 2)
		n = (size_t)maxlen - 2;
	ids[0] = v->cls;
	ids[n + 1] = v->sep;
	*outlen = (int)n + 2;
	return 0;
}

static int cmp_len_idx(const void *a, const void *b, void *ud)
{
	const int *len = ud;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	if (len[x] != len[y])
		return len[x] - len[y];
	return (x > y) - (x < y);
}

/* Unit-length mean-pooled embeddings of padded batch (ids, mask). */
static int embed_batch(bert_model *m, bert_acts *a, const int32_t *ids, const uint8_t *mask, int B, int T,
                       float dropout, train_rng *rng, float *pooled, float *norm, float *unit)
{
	int rc = bert_forward(m, a, ids, NULL, mask, B, T, dropout, rng);
	if (rc)
		return rc;
	dense_pool_forward(pooled, bert_hidden(m, a), mask, B, T, m->cfg.hidden);
	dense_l2norm_forward(unit, norm, pooled, B, m->cfg.hidden);
	return 0;
}

int dense_encode(dense_encoder *e, const char *const *texts, const size_t *lens, size_t n, int batch,
                 float *out)
{
	const int C = e->m->cfg.hidden, ML = e->max_length;
	if (batch < 1)
		batch = 32;
	seqs s = { 0 };
	s.n = n;
	s.maxlen = ML;
	size_t *order = malloc((n ? n : 1) * sizeof *order);
	s.ids = malloc((n ? n : 1) * (size_t)ML * sizeof *s.ids);
	s.len = malloc((n ? n : 1) * sizeof *s.len);
	int32_t *ids = malloc((size_t)batch * ML * sizeof *ids);
	uint8_t *mask = malloc((size_t)batch * ML);
	float *pooled = malloc((size_t)batch * C * sizeof *pooled), *norm = malloc((size_t)batch * sizeof *norm);
	float *unit = malloc((size_t)batch * C * sizeof *unit);
	bert_acts a = { 0 };
	int rc = order && s.ids && s.len && ids && mask && pooled && norm && unit ? 0 : TRAIN_ENOMEM;
	for (size_t i = 0; !rc && i < n; i++) {
		order[i] = i;
		rc = encode_text(&e->v, texts[i], lens[i], ML, s.ids + i * (size_t)ML, &s.len[i]);
	}
	if (!rc)
		qsort_r(order, n, sizeof *order, cmp_len_idx, s.len);
	for (size_t i = 0; !rc && i < n; i += (size_t)batch) {
		int B = (int)(n - i < (size_t)batch ? n - i : (size_t)batch);
		int T = pad_batch(&s, order + i, B, ids, mask, e->v.pad);
		if ((rc = embed_batch(e->m, &a, ids, mask, B, T, 0.0f, NULL, pooled, norm, unit)))
			break;
		for (int b = 0; b < B; b++)
			memcpy(out + order[i + (size_t)b] * C, unit + (size_t)b * C, (size_t)C * sizeof *out);
	}
	bert_acts_free(&a);
	free(order), free(s.ids), free(s.len), free(ids), free(mask), free(pooled), free(norm), free(unit);
	return rc;
}

/* ---- inverse-cloze training ------------------------------------------------------------ */

dense_train_opts dense_train_defaults(void)
{
	dense_train_opts o = {
		.layers = 1, .hidden = 128, .heads = 2, .intermediate = 512, .vocab_size = 8000,
		.max_length = 128, .query_length = 48, .steps = 300, .batch_size = 64, .warmup = 30,
		.learning_rate = 1e-3, .weight_decay = 0.01, .temperature = 0.05, .keep_sentence = 0.5,
		.seed = 1,
	};
	return o;
}

/* A passage cut into sentences, each as word pieces. */
typedef struct passage {
	int32_t *ids;   /* all pieces, sentence after sentence */
	int *start;     /* (ns + 1) sentence starts into ids */
	int ns;
} passage;

/* Sentence ends: '.', '!' or '?' followed by white space (or the end). */
static int split_sentences(const char *t, size_t n, size_t **bounds, int *ns)
{
	size_t cap = 8, k = 0, s = 0;
	size_t *b = malloc(cap * 2 * sizeof *b);
	if (!b)
		return TRAIN_ENOMEM;
	for (size_t i = 0; i <= n; i++) {
		int end = i == n || ((t[i] == '.' || t[i] == '!' || t[i] == '?') && i + 1 < n &&
		                     (t[i + 1] == ' ' || t[i + 1] == '\n' || t[i + 1] == '\t'));
		if (!end)
			continue;
		size_t e = i < n ? i + 1 : n;
		while (s < e && (t[s] == ' ' || t[s] == '\n' || t[s] == '\t'))
			s++;
		if (e > s) {
			if (k == cap) {
				cap *= 2;
				size_t *nb = realloc(b, cap * 2 * sizeof *nb);
				if (!nb) {
					free(b);
					return TRAIN_ENOMEM;
				}
				b = nb;
			}
			b[2 * k] = s;
			b[2 * k + 1] = e;
			k++;
		}
		s = e;
	}
	*bounds = b;
	*ns = (int)k;
	return 0;
}

static int passage_make(passage *p, const bert_vocab *v, const char *t, size_t n, int maxpieces)
{
	size_t *bd = NULL;
	int ns = 0, rc = split_sentences(t, n, &bd, &ns);
	if (rc)
		return rc;
	p->ids = malloc(((size_t)maxpieces + 1) * sizeof *p->ids);
	p->start = malloc(((size_t)ns + 1) * sizeof *p->start);
	if (!p->ids || !p->start) {
		free(bd);
		return TRAIN_ENOMEM;
	}
	int at = 0;
	p->ns = 0;
	for (int i = 0; i < ns && at < maxpieces; i++) {
		size_t got = 0;
		if ((rc = bert_tokenize(v, t + bd[2 * i], bd[2 * i + 1] - bd[2 * i], p->ids + at,
		                        (size_t)(maxpieces - at), &got)))
			break;
		if (!got)
			continue;
		if (got > (size_t)(maxpieces - at))
			got = (size_t)(maxpieces - at);
		p->start[p->ns++] = at;
		at += (int)got;
	}
	p->start[p->ns] = at;
	free(bd);
	return rc;
}

int dense_train_ict(const char *const *texts, const size_t *lens, size_t n, const dense_train_opts *o,
                    dense_progress_fn progress, void *ud, dense_encoder **out, double *final_loss,
                    train_error *err)
{
	*out = NULL;
	const int B = o->batch_size, QL = o->query_length, PL = o->max_length;
	int rc = 0;
	passage *ps = NULL;
	size_t *elig = NULL, ne = 0;
	float *am = NULL, *av = NULL, *qp = NULL, *qn = NULL, *qnorm = NULL, *pp = NULL, *pn = NULL,
	      *pnorm = NULL, *probs = NULL, *dqn = NULL, *dpn = NULL, *dqp = NULL, *dpp = NULL,
	      *dhq = NULL, *dhp = NULL;
	int32_t *qids = NULL, *pids = NULL;
	uint8_t *qmask = NULL, *pmask = NULL;
	bert_acts aq = { 0 }, ap = { 0 };
	double tail = 0;
	int ntail = 0;
	if (B < 2 || QL < 3 || PL < 3 || o->steps < 1 || !(o->temperature > 0) || o->hidden < 1 ||
	    o->heads < 1 || o->hidden % o->heads || o->layers < 1 || o->intermediate < 1 ||
	    o->vocab_size < 100 || PL > 512 || QL > PL || B > 256)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0,
		                       "dense training: batch_size 2..256, query_length 3..max_length, "
		                       "max_length <= 512, heads dividing hidden, vocab_size >= 100");
	dense_encoder *e = calloc(1, sizeof *e);
	if (!e)
		return TRAIN_ENOMEM;
	e->max_length = PL;
	if ((rc = bert_vocab_train(texts, n, (size_t)o->vocab_size, 1, &e->v)))
		goto out;
	bert_config c = { .vocab_size = (int)e->v.n, .hidden = o->hidden, .layers = o->layers,
	                  .heads = o->heads, .intermediate = o->intermediate, .max_position = PL,
	                  .type_vocab = 2, .ln_eps = 1e-12f };
	if ((rc = bert_model_create(&c, &e->m)))
		goto out;
	bert_model_init(e->m, o->seed);
	/* the passages, cut into sentences of pieces */
	if (!(ps = calloc(n ? n : 1, sizeof *ps)) || !(elig = malloc((n ? n : 1) * sizeof *elig))) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n && !rc; i++) {
		rc = passage_make(&ps[i], &e->v, texts[i], lens[i], 4 * PL);
		if (!rc && ps[i].ns >= 2)
			elig[ne++] = i;
	}
	if (rc)
		goto out;
	if (ne < (size_t)B) {
		rc = train_error_set(err, TRAIN_EINVAL, NULL, 0, 0,
		                     "dense training: %zu passages of two sentences or more, fewer than "
		                     "batch_size %d", ne, B);
		goto out;
	}
	const size_t np = e->m->n_params;
	const int C = o->hidden;
	am = calloc(np, sizeof *am), av = calloc(np, sizeof *av);
	qp = malloc((size_t)B * C * 4), qn = malloc((size_t)B * C * 4), qnorm = malloc((size_t)B * 4);
	pp = malloc((size_t)B * C * 4), pn = malloc((size_t)B * C * 4), pnorm = malloc((size_t)B * 4);
	probs = malloc((size_t)B * B * 4);
	dqn = malloc((size_t)B * C * 4), dpn = malloc((size_t)B * C * 4);
	dqp = malloc((size_t)B * C * 4), dpp = malloc((size_t)B * C * 4);
	dhq = malloc((size_t)B * QL * C * 4), dhp = malloc((size_t)B * PL * C * 4);
	qids = malloc((size_t)B * QL * 4), pids = malloc((size_t)B * PL * 4);
	qmask = malloc((size_t)B * QL), pmask = malloc((size_t)B * PL);
	if (!am || !av || !qp || !qn || !qnorm || !pp || !pn || !pnorm || !probs || !dqn || !dpn || !dqp ||
	    !dpp || !dhq || !dhp || !qids || !pids || !qmask || !pmask) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	train_rng rng;
	train_rng_seed(&rng, o->seed ^ 0x1c7u);
	train_adamw_cfg ac = train_adamw_defaults();
	ac.weight_decay = (float)o->weight_decay;
	size_t pos = ne; /* position in the current permutation of elig */
	for (int step = 0; step < o->steps && !rc; step++) {
		int Tq = 1, Tp = 1;
		/* B passages: the next B of a shuffled order (a batch that crosses
		 * into the next order may repeat one, which only weakens one negative) */
		int lq[256], lp[256];
		size_t sel[256];
		for (int b = 0; b < B; b++) {
			if (pos >= ne) {
				for (size_t i = ne - 1; i > 0; i--) {
					size_t j = (size_t)(train_rng_u64(&rng) % (i + 1)), t = elig[i];
					elig[i] = elig[j];
					elig[j] = t;
				}
				pos = 0;
			}
			sel[b] = elig[pos++];
		}
		for (int b = 0; b < B; b++) {
			const passage *P = &ps[sel[b]];
			int j = (int)(train_rng_u64(&rng) % (uint64_t)P->ns);
			int keep = train_rng_uniform(&rng) < o->keep_sentence;
			int32_t *q = qids + (size_t)b * QL, *p = pids + (size_t)b * PL;
			int k = 1, s0 = P->start[j], s1 = P->start[j + 1];
			q[0] = e->v.cls;
			for (int t = s0; t < s1 && k < QL - 1; t++)
				q[k++] = P->ids[t];
			q[k++] = e->v.sep;
			lq[b] = k;
			k = 1;
			p[0] = e->v.cls;
			for (int t = 0; t < P->start[P->ns] && k < PL - 1; t++)
				if (keep || t < s0 || t >= s1)
					p[k++] = P->ids[t];
			p[k++] = e->v.sep;
			lp[b] = k;
			if (lq[b] > Tq)
				Tq = lq[b];
			if (lp[b] > Tp)
				Tp = lp[b];
		}
		/* re-lay the rows at the batch's own widths, compact in place: row b at stride Tq (Tq <= QL, so moving rows
		 * forward never overwrites one not yet moved) */
		for (int b = 0; b < B; b++)
			for (int t = 0; t < Tq; t++) {
				int32_t x = t < lq[b] ? qids[(size_t)b * QL + t] : e->v.pad;
				qids[(size_t)b * Tq + t] = x;
				qmask[(size_t)b * Tq + t] = t < lq[b];
			}
		for (int b = 0; b < B; b++)
			for (int t = 0; t < Tp; t++) {
				int32_t x = t < lp[b] ? pids[(size_t)b * PL + t] : e->v.pad;
				pids[(size_t)b * Tp + t] = x;
				pmask[(size_t)b * Tp + t] = t < lp[b];
			}
		bert_zero_grad(e->m);
		int correct = 0;
		if ((rc = embed_batch(e->m, &aq, qids, qmask, B, Tq, 0.1f, &rng, qp, qnorm, qn)) ||
		    (rc = embed_batch(e->m, &ap, pids, pmask, B, Tp, 0.1f, &rng, pp, pnorm, pn)))
			break;
		double loss = dense_infonce_forward(probs, qn, pn, B, C, (float)o->temperature, &correct);
		memset(dqn, 0, (size_t)B * C * 4);
		memset(dpn, 0, (size_t)B * C * 4);
		memset(dqp, 0, (size_t)B * C * 4);
		memset(dpp, 0, (size_t)B * C * 4);
		memset(dhq, 0, (size_t)B * Tq * C * 4);
		memset(dhp, 0, (size_t)B * Tp * C * 4);
		dense_infonce_backward(dqn, dpn, probs, qn, pn, B, C, (float)o->temperature);
		dense_l2norm_backward(dqp, dqn, qn, qnorm, B, C);
		dense_l2norm_backward(dpp, dpn, pn, pnorm, B, C);
		dense_pool_backward(dhq, dqp, qmask, B, Tq, C);
		dense_pool_backward(dhp, dpp, pmask, B, Tp, C);
		if ((rc = bert_backward(e->m, &ap, dhp)) || (rc = bert_backward(e->m, &aq, dhq)))
			break;
		float gn = train_clip_grad_norm(e->m->grads, np, 1.0f);
		if (isfinite(gn)) {
			float lr = train_lr_at(TRAIN_SCHED_LINEAR, (float)o->learning_rate, 0.0f, step, o->warmup,
			                       o->steps);
			train_adamw_step(&ac, e->m->params, e->m->grads, am, av, np, lr, step + 1);
		}
		if (step >= o->steps - (o->steps + 9) / 10) {
			tail += loss;
			ntail++;
		}
		if (progress && progress(ud, step + 1, o->steps, loss, (double)correct / B))
			rc = TRAIN_ECANCELED;
	}
	if (final_loss)
		*final_loss = ntail ? tail / ntail : NAN;
out:
	for (size_t i = 0; ps && i < n; i++) {
		free(ps[i].ids);
		free(ps[i].start);
	}
	free(ps), free(elig), free(am), free(av), free(qp), free(qn), free(qnorm), free(pp), free(pn);
	free(pnorm), free(probs), free(dqn), free(dpn), free(dqp), free(dpp), free(dhq), free(dhp);
	free(qids), free(pids), free(qmask), free(pmask);
	bert_acts_free(&aq);
	bert_acts_free(&ap);
	if (rc)
		dense_encoder_free(e);
	else
		*out = e;
	return rc;
}
