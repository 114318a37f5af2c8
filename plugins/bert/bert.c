/*
 * plugins/bert/bert.c - the BERT encoder and its heads: parameter layout,
 * initialisation, forward and backward passes (see bert.h for the model).
 * The WordPiece tokenizer and Hugging Face I/O are in bert_io.c.
 *
 * Every matmul goes through <train/nn.h>'s linear and attention layers (so
 * through oneDNN, in bf16 where the kernels run bf16), layer norm and GELU
 * through theirs; the embeddings' sum, tanh and gathers are plain loops.
 */
#include "bert.h"
#include "../common/lora.h"

#include <train/nn.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK(x) do { if ((rc = (x)) != 0) goto out; } while (0)

/* ---- sizes and configs ------------------------------------------------------ */

int bert_builtin_config(const char *name, bert_config *cfg)
{
	static const struct { const char *name; int L, C; } sizes[] = {
		{ "bert-tiny", 2, 128 }, { "bert-mini", 4, 256 },
		{ "bert-small", 4, 512 }, { "bert-base", 12, 768 },
	};
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
		if (strcmp(name, sizes[i].name) == 0) {
			/* every other field (vocabulary, labels, heads on top) 0 */
			memset(cfg, 0, sizeof *cfg);
			cfg->layers = sizes[i].L;
			cfg->hidden = sizes[i].C;
			cfg->heads = sizes[i].C / 64;
			cfg->intermediate = 4 * sizes[i].C;
			cfg->max_position = 512;
			cfg->type_vocab = 2;
			cfg->ln_eps = 1e-12f;
			return TRAIN_OK;
		}
	return TRAIN_ENOTFOUND;
}

int bert_config_check(const bert_config *c, train_error *err)
{
#define POS(k, v) if ((v) <= 0) return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, \
	"%s must be positive, not %d", k, (int)(v))
	POS("vocab_size", c->vocab_size);
	POS("hidden_size", c->hidden);
	POS("num_attention_heads", c->heads);
	POS("intermediate_size", c->intermediate);
	POS("max_position_embeddings", c->max_position);
	POS("type_vocab_size", c->type_vocab);
#undef POS
	if (c->layers < 0 || c->num_labels < 0)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0,
		                       "num_hidden_layers and num_labels must not be negative");
	if (c->hidden % c->heads)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0,
		                       "hidden_size %d is not divisible by num_attention_heads %d",
		                       c->hidden, c->heads);
	if (!(c->ln_eps >= 0))
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "layer_norm_eps must be >= 0");
	/* every size times every other must stay well inside int for the kernels */
	if ((int64_t)c->vocab_size * c->hidden > INT32_MAX || (int64_t)c->intermediate * c->hidden > INT32_MAX ||
	    c->hidden > 65536 || c->layers > 1024)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "model too large");
	return TRAIN_OK;
}

/* ---- parameter layout ------------------------------------------------------- */


int bert_model_create(const bert_config *cfg, bert_model **out)
{
	*out = NULL;
	if (bert_config_check(cfg, NULL))
		return TRAIN_EINVAL;
	bert_model *m = calloc(1, sizeof *m);
	int rc = TRAIN_OK;
	if (!m)
		return TRAIN_ENOMEM;
	hf_layout l = { &m->tensors, &m->n_tensors, NULL, 0, 0 };
	m->cfg = *cfg;
	const int64_t V = cfg->vocab_size, C = cfg->hidden, I = cfg->intermediate;
	if (!(m->layer = calloc(cfg->layers ? (size_t)cfg->layers : 1, sizeof *m->layer))) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	CK(hf_lay(&l, &m->wte, "bert.embeddings.word_embeddings.weight", V, C));
	CK(hf_lay(&l, &m->wpe, "bert.embeddings.position_embeddings.weight", cfg->max_position, C));
	CK(hf_lay(&l, &m->wtt, "bert.embeddings.token_type_embeddings.weight", cfg->type_vocab, C));
	CK(hf_lay(&l, &m->emb_ln_w, "bert.embeddings.LayerNorm.weight", C, 0));
	CK(hf_lay(&l, &m->emb_ln_b, "bert.embeddings.LayerNorm.bias", C, 0));
	for (int i = 0; i < cfg->layers; i++) {
		bert_layer *y = &m->layer[i];
		char n[96];
#define L(dst, what, d0, d1) do { snprintf(n, sizeof n, "bert.encoder.layer.%d.%s", i, what); \
		CK(hf_lay(&l, dst, n, d0, d1)); } while (0)
		/* q, k, v weights adjacent, then their biases: one (3C, C) matrix */
		L(&y->qkv_w, "attention.self.query.weight", C, C);
		L(NULL, "attention.self.key.weight", C, C);
		L(NULL, "attention.self.value.weight", C, C);
		L(&y->qkv_b, "attention.self.query.bias", C, 0);
		L(NULL, "attention.self.key.bias", C, 0);
		L(NULL, "attention.self.value.bias", C, 0);
		L(&y->ao_w, "attention.output.dense.weight", C, C);
		L(&y->ao_b, "attention.output.dense.bias", C, 0);
		L(&y->ln1_w, "attention.output.LayerNorm.weight", C, 0);
		L(&y->ln1_b, "attention.output.LayerNorm.bias", C, 0);
		L(&y->fc_w, "intermediate.dense.weight", I, C);
		L(&y->fc_b, "intermediate.dense.bias", I, 0);
		L(&y->fo_w, "output.dense.weight", C, I);
		L(&y->fo_b, "output.dense.bias", C, 0);
		L(&y->ln2_w, "output.LayerNorm.weight", C, 0);
		L(&y->ln2_b, "output.LayerNorm.bias", C, 0);
#undef L
	}
	CK(hf_lay(&l, &m->pool_w, "bert.pooler.dense.weight", C, C));
	CK(hf_lay(&l, &m->pool_b, "bert.pooler.dense.bias", C, 0));
	if (cfg->num_labels > 0) {
		CK(hf_lay(&l, &m->cls_w, "classifier.weight", cfg->num_labels, C));
		CK(hf_lay(&l, &m->cls_b, "classifier.bias", cfg->num_labels, 0));
	}
	if (cfg->mlm_head) {
		CK(hf_lay(&l, &m->mlm_w, "cls.predictions.transform.dense.weight", C, C));
		CK(hf_lay(&l, &m->mlm_b, "cls.predictions.transform.dense.bias", C, 0));
		CK(hf_lay(&l, &m->mlm_ln_w, "cls.predictions.transform.LayerNorm.weight", C, 0));
		CK(hf_lay(&l, &m->mlm_ln_b, "cls.predictions.transform.LayerNorm.bias", C, 0));
		CK(hf_lay(&l, &m->mlm_bias, "cls.predictions.bias", V, 0));
	}
	m->n_params = l.off;
	size_t bytes = (l.off * sizeof(float) + 63) / 64 * 64;
	m->params = aligned_alloc(64, bytes);
	/* calloc: a large block comes zeroed from the kernel and costs no
	 * memory until written, so a model frozen for LoRA before its first
	 * backward never holds a full gradient array */
	m->grads_block = calloc(1, bytes + 64);
	m->grads = m->grads_block ? (float *)(((uintptr_t)m->grads_block + 63) & ~(uintptr_t)63) : NULL;
	if (!m->params || !m->grads) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	memset(m->params, 0, bytes);
	hf_lay_point(&l, m->params);
out:
	hf_lay_free(&l);
	if (rc)
		bert_model_destroy(m);
	else
		*out = m;
	return rc;
}

void bert_model_destroy(bert_model *m)
{
	if (!m)
		return;
	free(m->params);
	free(m->grads_block);
	free(m->tensors);
	free(m->layer);
	bert_lora_drop(m);
	free(m);
}

const bert_tensor *bert_find_tensor(const bert_model *m, const char *name)
{
	return hf_param_find(m->tensors, m->n_tensors, name);
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

void bert_model_init(bert_model *m, uint64_t seed)
{
	train_rng r;
	train_rng_seed(&r, seed);
	for (size_t i = 0; i < m->n_tensors; i++) {
		const bert_tensor *t = &m->tensors[i];
		float *p = m->params + t->offset;
		size_t n = (size_t)(t->shape[0] * t->shape[1]);
		if (strstr(t->name, "LayerNorm.weight"))
			for (size_t k = 0; k < n; k++)
				p[k] = 1.0f;
		else if (t->ndim == 1 || ends_with(t->name, ".bias"))
			memset(p, 0, n * sizeof *p);
		else
			train_rng_fill_normal(&r, p, n, 0.0f, 0.02f);
	}
}

void bert_zero_grad(bert_model *m)
{
	if (m->grads)
		memset(m->grads, 0, bert_n_grads(m) * sizeof *m->grads);
	if (m->lora)
		memset(m->lora->grads, 0, m->lora->n * sizeof *m->lora->grads);
}

void bert_matmul_weights(const bert_model *m, const float **w, size_t *n)
{
	/* the masked-LM decoder is tied to the embeddings: everything */
	const float *start = m->params, *end = m->params + m->n_params;
	if (!m->cfg.mlm_head) {
		start = m->cfg.layers ? m->layer[0].qkv_w : m->pool_w;
		if (m->cls_w)
			end = m->cls_w;
	}
	*w = start;
	*n = (size_t)(end - start);
}

size_t bert_n_grads(const bert_model *m)
{
	return m->grads ? m->n_params - m->grad_off : 0;
}

int bert_freeze_base(bert_model *m, int keep_classifier)
{
	free(m->grads_block);
	m->grads = m->grads_block = NULL;
	m->grad_off = m->n_params;
	if (!keep_classifier || !m->cls_w)
		return TRAIN_OK;
	m->grad_off = (size_t)(m->cls_w - m->params);
	size_t bytes = ((m->n_params - m->grad_off) * sizeof(float) + 63) / 64 * 64;
	if (!(m->grads_block = aligned_alloc(64, bytes)))
		return TRAIN_ENOMEM;
	m->grads = m->grads_block;
	memset(m->grads, 0, bytes);
	return TRAIN_OK;
}

/* ---- LoRA ------------------------------------------------------------------------ */

const char *const bert_lora_kind_path[BERT_NKINDS] = {
	"attention.self.query", "attention.self.key", "attention.self.value",
	"attention.output.dense", "intermediate.dense", "output.dense",
};

int bert_lora_kind(const char *name)
{
	static const char *const short_names[BERT_NKINDS] = { "query", "key", "value", NULL, NULL, NULL };
	for (int k = 0; k < BERT_NKINDS; k++)
		if ((short_names[k] && !strcmp(name, short_names[k])) || !strcmp(name, bert_lora_kind_path[k]))
			return k;
	return -1;
}

static void kind_shape(const bert_config *c, int kind, int *in, int *out)
{
	*in = kind == BERT_FO ? c->intermediate : c->hidden;
	*out = kind == BERT_FC ? c->intermediate : c->hidden;
}

/* The adapted weight (out, in) of a kind: q, k, v are row blocks of qkv_w. */
static float *kind_weight(const bert_model *m, int layer, int kind)
{
	const bert_layer *y = &m->layer[layer];
	const size_t CC = (size_t)m->cfg.hidden * m->cfg.hidden;
	switch (kind) {
	case BERT_Q: case BERT_K: case BERT_V: return y->qkv_w + (size_t)kind * CC;
	case BERT_AO: return y->ao_w;
	case BERT_FC: return y->fc_w;
	default: return y->fo_w;
	}
}

void bert_lora_drop(bert_model *m)
{
	bert_lora *lo = m->lora;
	if (!lo)
		return;
	free(lo->mods);
	free(lo->mod_of);
	free(lo->params);
	free(lo->grads);
	free(lo);
	m->lora = NULL;
}

int bert_lora_add(bert_model *m, unsigned kinds, int rank, float alpha, float dropout, uint64_t seed)
{
	const bert_config *c = &m->cfg;
	if (m->lora || rank < 1 || rank > 65536 || !kinds || (kinds >> BERT_NKINDS) ||
	    !(dropout >= 0 && dropout < 1) || !isfinite(alpha))
		return TRAIN_EINVAL;
	bert_lora *lo = calloc(1, sizeof *lo);
	if (!lo)
		return TRAIN_ENOMEM;
	m->lora = lo;
	lo->rank = rank;
	lo->alpha = alpha;
	lo->scale = alpha / (float)rank;
	lo->dropout = dropout;
	lo->kinds = kinds;
	int per = 0;
	for (int k = 0; k < BERT_NKINDS; k++)
		per += (kinds >> k) & 1;
	lo->n_mods = per * c->layers;
	lo->mods = calloc(lo->n_mods ? (size_t)lo->n_mods : 1, sizeof *lo->mods);
	lo->mod_of = malloc((c->layers ? (size_t)c->layers : 1) * BERT_NKINDS * sizeof *lo->mod_of);
	if (!lo->mods || !lo->mod_of) {
		bert_lora_drop(m);
		return TRAIN_ENOMEM;
	}
	size_t off = 0;
	int j = 0;
	for (int l = 0; l < c->layers; l++)
		for (int k = 0; k < BERT_NKINDS; k++) {
			lo->mod_of[l * BERT_NKINDS + k] = -1;
			if (!((kinds >> k) & 1))
				continue;
			bert_lora_mod *md = &lo->mods[j];
			md->layer = l;
			md->kind = k;
			kind_shape(c, k, &md->in, &md->out);
			md->a_off = off;
			off += (size_t)rank * md->in;
			md->b_off = off;
			off += (size_t)md->out * rank;
			lo->mod_of[l * BERT_NKINDS + k] = j++;
		}
	lo->n = off;
	lo->params = calloc(off ? off : 1, sizeof *lo->params);
	lo->grads = calloc(off ? off : 1, sizeof *lo->grads);
	if (!lo->params || !lo->grads) {
		bert_lora_drop(m);
		return TRAIN_ENOMEM;
	}
	train_rng r;
	train_rng_seed(&r, seed);
	for (int i = 0; i < lo->n_mods; i++)
		lora_init_a(lo->params + lo->mods[i].a_off, rank, lo->mods[i].in, &r);
	return TRAIN_OK;
}

void bert_lora_merge(bert_model *m)
{
	bert_lora_fold(m);
	bert_lora_drop(m);
}

void bert_lora_fold(bert_model *m)
{
	bert_lora *lo = m->lora;
	if (!lo)
		return;
	for (int i = 0; i < lo->n_mods; i++) {
		const bert_lora_mod *md = &lo->mods[i];
		lora_merge_into(kind_weight(m, md->layer, md->kind), (size_t)md->in, 1,
		                lo->params + md->a_off, lo->params + md->b_off, md->in, md->out, lo->rank,
		                lo->scale);
	}
}

/* ---- activations ------------------------------------------------------------ */

void bert_acts_free(bert_acts *a)
{
	if (!a)
		return;
	int ckpt = a->ckpt;
	if (a->l)
		for (int i = 0; a->l && i < a->nl_; i++) {
			struct bert_layer_acts *y = &a->l[i];
			free(y->qkv); free(y->att); free(y->ctx); free(y->ao); free(y->ao_raw);
			free(y->ao_mask); free(y->res1); free(y->a); free(y->mean1); free(y->rstd1);
			free(y->fc); free(y->gelu); free(y->fo_raw); free(y->fo); free(y->fo_mask);
			free(y->res2); free(y->out); free(y->mean2); free(y->rstd2);
			for (int k = 0; k < BERT_NKINDS; k++) {
				free(y->lo_xd[k]); free(y->lo_mask[k]); free(y->lo_u[k]);
			}
		}
	free(a->l);
	free(a->ck_out); free(a->lrng); free(a->ldu); free(a->ldxd);
	free(a->emb); free(a->emb_mean); free(a->emb_rstd); free(a->emb_ln); free(a->x0);
	free(a->emb_mask); free(a->pos);
	free(a->d1); free(a->d2); free(a->d3); free(a->dI); free(a->dI2); free(a->dqkv);
	free(a->cls_in); free(a->pooled); free(a->pooled_drop); free(a->logits); free(a->pool_mask);
	free(a->mlm_rows); free(a->mlm_in); free(a->mlm_t); free(a->mlm_g); free(a->mlm_h);
	free(a->mlm_mean); free(a->mlm_rstd); free(a->mlm_logits);
	memset(a, 0, sizeof *a);
	a->ckpt = ckpt; /* the caller's setting outlives the arrays */
}

#define ALLOC(p, n) do { if (!((p) = calloc((size_t)(n), sizeof *(p)))) return TRAIN_ENOMEM; } while (0)

static int acts_ensure(const bert_model *m, bert_acts *a, int B, int T)
{
	const bert_config *c = &m->cfg;
	const bert_lora *lo = m->lora;
	size_t N = (size_t)B * T, C = (size_t)c->hidden, I = (size_t)c->intermediate;
	size_t att = (size_t)B * c->heads * T * T;
	int ckpt = a->ckpt ? 1 : 0;
	if (a->l && N <= a->cap_rows && att <= a->cap_att && B <= a->capB && a->ck_alloc == ckpt &&
	    a->lora_key == lo)
		return TRAIN_OK;
	bert_acts_free(a);
	a->cap_rows = N;
	a->cap_att = att;
	a->capB = B;
	a->ck_alloc = ckpt;
	a->lora_key = lo;
	a->nl_ = ckpt && c->layers ? 1 : c->layers;
	ALLOC(a->l, c->layers ? a->nl_ : 1);
	for (int i = 0; i < a->nl_; i++) {
		struct bert_layer_acts *y = &a->l[i];
		ALLOC(y->qkv, 3 * N * C); ALLOC(y->att, att); ALLOC(y->ctx, N * C);
		ALLOC(y->ao, N * C); ALLOC(y->ao_raw, N * C); ALLOC(y->ao_mask, N * C);
		ALLOC(y->res1, N * C); ALLOC(y->a, N * C); ALLOC(y->mean1, N); ALLOC(y->rstd1, N);
		ALLOC(y->fc, N * I); ALLOC(y->gelu, N * I); ALLOC(y->fo_raw, N * C);
		ALLOC(y->fo, N * C); ALLOC(y->fo_mask, N * C); ALLOC(y->res2, N * C);
		ALLOC(y->out, N * C); ALLOC(y->mean2, N); ALLOC(y->rstd2, N);
		for (int k = 0; lo && k < BERT_NKINDS; k++) {
			if (!((lo->kinds >> k) & 1))
				continue;
			int in, out;
			kind_shape(c, k, &in, &out);
			if (lo->dropout > 0) {
				ALLOC(y->lo_xd[k], N * (size_t)in);
				ALLOC(y->lo_mask[k], N * (size_t)in);
			}
			ALLOC(y->lo_u[k], N * (size_t)lo->rank);
		}
	}
	if (ckpt && c->layers) {
		ALLOC(a->ck_out, (size_t)c->layers * N * C);
		ALLOC(a->lrng, c->layers);
	}
	if (lo) {
		ALLOC(a->ldu, N * (size_t)lo->rank);
		ALLOC(a->ldxd, N * (I > C ? I : C));
	}
	ALLOC(a->emb, N * C); ALLOC(a->emb_mean, N); ALLOC(a->emb_rstd, N);
	ALLOC(a->emb_ln, N * C); ALLOC(a->x0, N * C); ALLOC(a->emb_mask, N * C);
	ALLOC(a->pos, N);
	ALLOC(a->d1, N * C); ALLOC(a->d2, N * C); ALLOC(a->d3, N * C);
	ALLOC(a->dI, N * I); ALLOC(a->dI2, N * I); ALLOC(a->dqkv, 3 * N * C);
	size_t L = c->num_labels > 0 ? (size_t)c->num_labels : 1;
	ALLOC(a->cls_in, B * C); ALLOC(a->pooled, B * C); ALLOC(a->pooled_drop, B * C);
	ALLOC(a->logits, B * L); ALLOC(a->pool_mask, B * C);
	return TRAIN_OK;
}

/* ---- the encoder --------------------------------------------------------------- */

/* Layer i's output: its own array, or its slot of ck_out with checkpointing. */
static float *layer_out(const bert_acts *a, int i, size_t NC)
{
	return a->ck_alloc ? a->ck_out + (size_t)i * NC : a->l[i].out;
}

float *bert_hidden(const bert_model *m, const bert_acts *a)
{
	if (!m->cfg.layers)
		return a->x0;
	return layer_out(a, m->cfg.layers - 1, (size_t)a->B * a->T * m->cfg.hidden);
}

static int dropout_fwd(float *out, uint8_t *mask, const float *in, size_t n, float p, train_rng *rng)
{
	if (p <= 0.0f) {
		memcpy(out, in, n * sizeof *out);
		return TRAIN_OK;
	}
	return train_dropout_forward(out, mask, in, n, p, rng);
}

static int dropout_bwd(float *din, const float *dout, const uint8_t *mask, size_t n, float p)
{
	if (p <= 0.0f) {
		for (size_t i = 0; i < n; i++)
			din[i] += dout[i];
		return TRAIN_OK;
	}
	return train_dropout_backward(din, dout, mask, n, p);
}

/* The adapter of (layer, kind), if any: y (N, out; row stride ldy) += its
 * output for the input x (N, in). */
static int adapter_fwd(const bert_model *m, const bert_acts *a, struct bert_layer_acts *y,
                       int layer, int kind, const float *x, float *out, int ldy, int N, train_rng *rng)
{
	const bert_lora *lo = m->lora;
	int mi = lo ? lo->mod_of[layer * BERT_NKINDS + kind] : -1;
	if (mi < 0)
		return TRAIN_OK;
	const bert_lora_mod *md = &lo->mods[mi];
	const lora_shape sh = { md->in, md->out, lo->rank, lo->scale, a->lora_p };
	return lora_forward(&sh, N, x, lo->params + md->a_off, lo->params + md->b_off, y->lo_xd[kind],
	                    y->lo_mask[kind], y->lo_u[kind], out, ldy, rng);
}

/* Backward of adapter_fwd from dy (row stride lddy); dx (N, in) += ... */
static int adapter_bwd(const bert_model *m, bert_acts *a, const struct bert_layer_acts *y, int layer,
                       int kind, const float *x, const float *dy, int lddy, float *dx, int N)
{
	const bert_lora *lo = m->lora;
	int mi = lo ? lo->mod_of[layer * BERT_NKINDS + kind] : -1;
	if (mi < 0)
		return TRAIN_OK;
	const bert_lora_mod *md = &lo->mods[mi];
	const lora_shape sh = { md->in, md->out, lo->rank, lo->scale, a->lora_p };
	return lora_backward(&sh, N, x, y->lo_xd[kind], y->lo_mask[kind], y->lo_u[kind],
	                     lo->params + md->a_off, lo->params + md->b_off, lo->grads + md->a_off,
	                     lo->grads + md->b_off, dy, lddy, a->ldu, a->ldxd, dx);
}

/* One layer from its input x into y (y->out the output). */
static int layer_forward(const bert_model *m, bert_acts *a, struct bert_layer_acts *y, int i,
                         const float *x, const uint8_t *key_mask, train_rng *rng)
{
	const bert_config *c = &m->cfg;
	const bert_layer *w = &m->layer[i];
	const int C = c->hidden, I = c->intermediate, B = a->B, T = a->T, N = B * T;
	const size_t NC = (size_t)N * C;
	const float dropout = a->dropout;
	int rc;
	if ((rc = train_linear_forward(y->qkv, x, w->qkv_w, w->qkv_b, N, C, 3 * C)))
		return rc;
	for (int k = BERT_Q; k <= BERT_V; k++)
		if ((rc = adapter_fwd(m, a, y, i, k, x, y->qkv + (size_t)k * C, 3 * C, N, rng)))
			return rc;
	if ((rc = train_attention_forward(y->ctx, y->att, y->qkv, key_mask, B, T, C, c->heads, 0)) ||
	    (rc = train_linear_forward(y->ao_raw, y->ctx, w->ao_w, w->ao_b, N, C, C)) ||
	    (rc = adapter_fwd(m, a, y, i, BERT_AO, y->ctx, y->ao_raw, C, N, rng)) ||
	    (rc = dropout_fwd(y->ao, y->ao_mask, y->ao_raw, NC, dropout, rng)) ||
	    (rc = train_residual_forward(y->res1, x, y->ao, NC)) ||
	    (rc = train_layernorm_forward(y->a, y->mean1, y->rstd1, y->res1, w->ln1_w, w->ln1_b, N, C,
	                                  c->ln_eps)) ||
	    (rc = train_linear_forward(y->fc, y->a, w->fc_w, w->fc_b, N, C, I)) ||
	    (rc = adapter_fwd(m, a, y, i, BERT_FC, y->a, y->fc, I, N, rng)) ||
	    (rc = train_gelu_forward(y->gelu, y->fc, (size_t)N * I)) ||
	    (rc = train_linear_forward(y->fo_raw, y->gelu, w->fo_w, w->fo_b, N, I, C)) ||
	    (rc = adapter_fwd(m, a, y, i, BERT_FO, y->gelu, y->fo_raw, C, N, rng)) ||
	    (rc = dropout_fwd(y->fo, y->fo_mask, y->fo_raw, NC, dropout, rng)) ||
	    (rc = train_residual_forward(y->res2, y->a, y->fo, NC)))
		return rc;
	return train_layernorm_forward(y->out, y->mean2, y->rstd2, y->res2, w->ln2_w, w->ln2_b, N, C,
	                               c->ln_eps);
}

int bert_forward(bert_model *m, bert_acts *a, const int32_t *ids, const int32_t *types,
                 const uint8_t *key_mask, int B, int T, float dropout, train_rng *rng)
{
	const bert_config *c = &m->cfg;
	const int C = c->hidden;
	int rc;
	if (B <= 0 || T <= 0 || T > c->max_position || !ids || dropout < 0.0f || dropout >= 1.0f ||
	    (dropout > 0.0f && !rng))
		return TRAIN_EINVAL;
	const int N = B * T;
	for (int n = 0; n < N; n++)
		if (ids[n] < 0 || ids[n] >= c->vocab_size || (types && (types[n] < 0 || types[n] >= c->type_vocab)))
			return TRAIN_EINVAL;
	if ((rc = acts_ensure(m, a, B, T)))
		return rc;
	a->B = B;
	a->T = T;
	a->ids = ids;
	a->types = types;
	a->key_mask = key_mask;
	a->dropout = dropout;
	a->lora_p = m->lora && rng ? m->lora->dropout : 0.0f;
	for (int n = 0; n < N; n++) {
		int t = n % T, ty = types ? types[n] : 0;
		const float *e = m->wte + (size_t)ids[n] * C, *p = m->wpe + (size_t)t * C,
		            *s = m->wtt + (size_t)ty * C;
		float *o = a->emb + (size_t)n * C;
		a->pos[n] = t;
		for (int k = 0; k < C; k++)
			o[k] = e[k] + p[k] + s[k];
	}
	if ((rc = train_layernorm_forward(a->emb_ln, a->emb_mean, a->emb_rstd, a->emb, m->emb_ln_w,
	                                  m->emb_ln_b, N, C, c->ln_eps)) ||
	    (rc = dropout_fwd(a->x0, a->emb_mask, a->emb_ln, (size_t)N * C, dropout, rng)))
		return rc;
	const size_t NC = (size_t)N * C;
	const float *x = a->x0;
	for (int i = 0; i < c->layers; i++) {
		struct bert_layer_acts *y = &a->l[a->ck_alloc ? 0 : i];
		if (a->ck_alloc && rng)
			a->lrng[i] = *rng;
		if ((rc = layer_forward(m, a, y, i, x, key_mask, rng)))
			return rc;
		if (a->ck_alloc)
			memcpy(a->ck_out + (size_t)i * NC, y->out, NC * sizeof *y->out);
		x = layer_out(a, i, NC);
	}
	return TRAIN_OK;
}

int bert_backward(bert_model *m, bert_acts *a, const float *dhidden)
{
	const bert_config *c = &m->cfg;
	const int C = c->hidden, I = c->intermediate, NH = c->heads, B = a->B, T = a->T, N = B * T;
	const size_t NC = (size_t)N * C, NI = (size_t)N * I;
	float *A = a->d1, *B1 = a->d2, *B2 = a->d3;
	const float p = a->dropout;
	int rc;
	memcpy(A, dhidden, NC * sizeof *A);
	for (int i = c->layers - 1; i >= 0; i--) {
		const bert_layer *w = &m->layer[i];
		struct bert_layer_acts *y = &a->l[a->ck_alloc ? 0 : i];
		const float *x = i ? layer_out(a, i - 1, NC) : a->x0;
		if (a->ck_alloc) {
			/* recompute the layer from its input with the same dropout draws */
			train_rng r = a->lrng[i];
			if ((rc = layer_forward(m, a, y, i, x, a->key_mask, &r)))
				return rc;
		}
		/* LN2, then the FFN branch; B1 ends as d(a) (residual + FFN) */
		memset(B1, 0, NC * sizeof *B1);
		memset(B2, 0, NC * sizeof *B2);
		memset(a->dI, 0, NI * sizeof *a->dI);
		memset(a->dI2, 0, NI * sizeof *a->dI2);
		if ((rc = train_layernorm_backward(B1, bert_grad(m, w->ln2_w), bert_grad(m, w->ln2_b), A, y->res2,
		                                   w->ln2_w, y->mean2, y->rstd2, N, C)) ||
		    (rc = dropout_bwd(B2, B1, y->fo_mask, NC, p)) ||
		    (rc = train_linear_backward(a->dI, bert_grad(m, w->fo_w), bert_grad(m, w->fo_b), B2, y->gelu,
		                                w->fo_w, N, I, C)) ||
		    (rc = adapter_bwd(m, a, y, i, BERT_FO, y->gelu, B2, C, a->dI, N)) ||
		    (rc = train_gelu_backward(a->dI2, y->fc, a->dI, NI)) ||
		    (rc = train_linear_backward(B1, bert_grad(m, w->fc_w), bert_grad(m, w->fc_b), a->dI2, y->a,
		                                w->fc_w, N, C, I)) ||
		    (rc = adapter_bwd(m, a, y, i, BERT_FC, y->a, a->dI2, I, B1, N)))
			return rc;
		/* LN1, then the attention branch; A ends as d(x) */
		memset(A, 0, NC * sizeof *A);
		memset(B2, 0, NC * sizeof *B2);
		if ((rc = train_layernorm_backward(A, bert_grad(m, w->ln1_w), bert_grad(m, w->ln1_b), B1, y->res1,
		                                   w->ln1_w, y->mean1, y->rstd1, N, C)) ||
		    (rc = dropout_bwd(B2, A, y->ao_mask, NC, p)))
			return rc;
		memset(B1, 0, NC * sizeof *B1);
		memset(a->dqkv, 0, 3 * NC * sizeof *a->dqkv);
		if ((rc = train_linear_backward(B1, bert_grad(m, w->ao_w), bert_grad(m, w->ao_b), B2, y->ctx,
		                                w->ao_w, N, C, C)) ||
		    (rc = adapter_bwd(m, a, y, i, BERT_AO, y->ctx, B2, C, B1, N)) ||
		    (rc = train_attention_backward(a->dqkv, B1, y->qkv, y->att, B, T, C, NH)) ||
		    (rc = train_linear_backward(A, bert_grad(m, w->qkv_w), bert_grad(m, w->qkv_b), a->dqkv, x,
		                                w->qkv_w, N, C, 3 * C)))
			return rc;
		for (int k = BERT_Q; k <= BERT_V; k++)
			if ((rc = adapter_bwd(m, a, y, i, k, x, a->dqkv + (size_t)k * C, 3 * C, A, N)))
				return rc;
	}
	/* embeddings: nothing to do when they are frozen */
	float *dwte = bert_grad(m, m->wte), *dwpe = bert_grad(m, m->wpe), *dwtt = bert_grad(m, m->wtt);
	if (!dwte && !bert_grad(m, m->emb_ln_w))
		return TRAIN_OK;
	memset(B2, 0, NC * sizeof *B2);
	memset(B1, 0, NC * sizeof *B1);
	if ((rc = dropout_bwd(B2, A, a->emb_mask, NC, p)) ||
	    (rc = train_layernorm_backward(B1, bert_grad(m, m->emb_ln_w), bert_grad(m, m->emb_ln_b), B2, a->emb,
	                                   m->emb_ln_w, a->emb_mean, a->emb_rstd, N, C)))
		return rc;
	if (!dwte)
		return TRAIN_OK;
	for (int n = 0; n < N; n++) {
		const float *d = B1 + (size_t)n * C;
		float *e = dwte + (size_t)a->ids[n] * C, *q = dwpe + (size_t)a->pos[n] * C,
		      *s = dwtt + (size_t)(a->types ? a->types[n] : 0) * C;
		for (int k = 0; k < C; k++) {
			e[k] += d[k];
			q[k] += d[k];
			s[k] += d[k];
		}
	}
	return TRAIN_OK;
}

/* ---- pooler and classifier ------------------------------------------------------- */

int bert_cls_forward(bert_model *m, bert_acts *a, train_rng *rng)
{
	const int C = m->cfg.hidden, B = a->B, T = a->T, L = m->cfg.num_labels;
	const float *h = bert_hidden(m, a);
	int rc;
	if (!m->cls_w)
		return TRAIN_EINVAL;
	for (int b = 0; b < B; b++)
		memcpy(a->cls_in + (size_t)b * C, h + (size_t)b * T * C, (size_t)C * sizeof *h);
	if ((rc = train_linear_forward(a->pooled, a->cls_in, m->pool_w, m->pool_b, B, C, C)))
		return rc;
	for (size_t i = 0; i < (size_t)B * C; i++)
		a->pooled[i] = tanhf(a->pooled[i]);
	if ((rc = dropout_fwd(a->pooled_drop, a->pool_mask, a->pooled, (size_t)B * C, a->dropout, rng)))
		return rc;
	return train_linear_forward(a->logits, a->pooled_drop, m->cls_w, m->cls_b, B, C, L);
}

int bert_cls_backward(bert_model *m, bert_acts *a, const float *dlogits, float *dhidden)
{
	const int C = m->cfg.hidden, B = a->B, T = a->T, L = m->cfg.num_labels;
	size_t BC = (size_t)B * C;
	float *dpd = calloc(3 * BC, sizeof *dpd);
	int rc;
	if (!dpd)
		return TRAIN_ENOMEM;
	float *dp = dpd + BC, *din = dp + BC;
	if ((rc = train_linear_backward(dpd, bert_grad(m, m->cls_w), bert_grad(m, m->cls_b), dlogits,
	                                a->pooled_drop, m->cls_w, B, C, L)) ||
	    (rc = dropout_bwd(dp, dpd, a->pool_mask, BC, a->dropout)))
		goto out;
	for (size_t i = 0; i < BC; i++)
		dp[i] *= 1.0f - a->pooled[i] * a->pooled[i];
	if ((rc = train_linear_backward(din, bert_grad(m, m->pool_w), bert_grad(m, m->pool_b), dp, a->cls_in,
	                                m->pool_w, B, C, C)))
		goto out;
	for (int b = 0; b < B; b++)
		for (int k = 0; k < C; k++)
			dhidden[(size_t)b * T * C + k] += din[(size_t)b * C + k];
out:
	free(dpd);
	return rc;
}

/* ---- masked-LM head ------------------------------------------------------------------ */

int bert_mlm_forward(bert_model *m, bert_acts *a, const int32_t *rows, int M)
{
	const int C = m->cfg.hidden, V = m->cfg.vocab_size, N = a->B * a->T;
	const float *h = bert_hidden(m, a);
	int rc;
	if (!m->mlm_w || M <= 0)
		return TRAIN_EINVAL;
	for (int i = 0; i < M; i++)
		if (rows[i] < 0 || rows[i] >= N)
			return TRAIN_EINVAL;
	if (M > a->capM) {
		free(a->mlm_rows); free(a->mlm_in); free(a->mlm_t); free(a->mlm_g); free(a->mlm_h);
		free(a->mlm_mean); free(a->mlm_rstd); free(a->mlm_logits);
		a->capM = 0;
		ALLOC(a->mlm_rows, M); ALLOC(a->mlm_in, (size_t)M * C); ALLOC(a->mlm_t, (size_t)M * C);
		ALLOC(a->mlm_g, (size_t)M * C); ALLOC(a->mlm_h, (size_t)M * C); ALLOC(a->mlm_mean, M);
		ALLOC(a->mlm_rstd, M); ALLOC(a->mlm_logits, (size_t)M * V);
		a->capM = M;
	}
	a->M = M;
	memcpy(a->mlm_rows, rows, (size_t)M * sizeof *rows);
	for (int i = 0; i < M; i++)
		memcpy(a->mlm_in + (size_t)i * C, h + (size_t)rows[i] * C, (size_t)C * sizeof *h);
	if ((rc = train_linear_forward(a->mlm_t, a->mlm_in, m->mlm_w, m->mlm_b, M, C, C)) ||
	    (rc = train_gelu_forward(a->mlm_g, a->mlm_t, (size_t)M * C)) ||
	    (rc = train_layernorm_forward(a->mlm_h, a->mlm_mean, a->mlm_rstd, a->mlm_g, m->mlm_ln_w,
	                                  m->mlm_ln_b, M, C, m->cfg.ln_eps)))
		return rc;
	return train_linear_forward(a->mlm_logits, a->mlm_h, m->wte, m->mlm_bias, M, C, V);
}

int bert_mlm_backward(bert_model *m, bert_acts *a, const float *dlogits, float *dhidden)
{
	const int C = m->cfg.hidden, V = m->cfg.vocab_size, M = a->M;
	size_t MC = (size_t)M * C;
	float *dh = calloc(4 * MC, sizeof *dh);
	int rc;
	if (!dh)
		return TRAIN_ENOMEM;
	float *dg = dh + MC, *dt = dg + MC, *din = dt + MC;
	if ((rc = train_linear_backward(dh, bert_grad(m, m->wte), bert_grad(m, m->mlm_bias), dlogits,
	                                a->mlm_h, m->wte, M, C, V)) ||
	    (rc = train_layernorm_backward(dg, bert_grad(m, m->mlm_ln_w), bert_grad(m, m->mlm_ln_b), dh,
	                                   a->mlm_g, m->mlm_ln_w, a->mlm_mean, a->mlm_rstd, M, C)) ||
	    (rc = train_gelu_backward(dt, a->mlm_t, dg, MC)) ||
	    (rc = train_linear_backward(din, bert_grad(m, m->mlm_w), bert_grad(m, m->mlm_b), dt, a->mlm_in,
	                                m->mlm_w, M, C, C)))
		goto out;
	for (int i = 0; i < M; i++)
		for (int k = 0; k < C; k++)
			dhidden[(size_t)a->mlm_rows[i] * C + k] += din[(size_t)i * C + k];
out:
	free(dh);
	return rc;
}
