/*
 * plugins/gpt2/gpt2.c - GPT-2: parameter layout, initialisation, LoRA
 * adapters, forward and backward passes with optional gradient
 * checkpointing, and the chunked language-model head (see gpt2.h).
 * The tokenizer and the folders are in gpt2_io.c.
 *
 * Matmuls go through train_matmul / train_matmul_bias (oneDNN, bf16 where
 * the kernels run bf16), attention through <train/nn.h>'s, layer norm
 * through nn.h's layer norm, gelu_new through the kernels' GELU_TANH
 * eltwise from TRAIN_KERNELS_ELTWISE_MIN elements up (a plain loop below).
 */
#include "gpt2.h"
#include "../common/lora.h"

#include <train/kernels.h>
#include <train/nn.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CK(x) do { if ((rc = (x)) != 0) goto out; } while (0)

/* ---- config and layout ---------------------------------------------------------- */

int gpt2_config_check(const gpt2_config *c, train_error *err)
{
#define POS(k, v) if ((v) <= 0) return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, \
	"%s must be positive, not %d", k, (int)(v))
	POS("vocab_size", c->vocab_size);
	POS("n_positions", c->n_positions);
	POS("n_embd", c->n_embd);
	POS("n_layer", c->n_layer);
	POS("n_head", c->n_head);
#undef POS
	if (c->n_embd % c->n_head)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0,
		                       "n_embd %d is not divisible by n_head %d", c->n_embd, c->n_head);
	if (!(c->ln_eps >= 0) || !isfinite(c->ln_eps))
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "layer_norm_epsilon must be >= 0");
	if ((int64_t)c->vocab_size * c->n_embd > INT32_MAX || c->n_embd > 65536 ||
	    c->n_layer > 1024 || c->n_positions > 65536 || (int64_t)4 * c->n_embd * c->n_embd > INT32_MAX)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "model too large");
	return TRAIN_OK;
}


int gpt2_model_create(const gpt2_config *cfg, int with_grads, gpt2_model **out)
{
	*out = NULL;
	if (gpt2_config_check(cfg, NULL))
		return TRAIN_EINVAL;
	gpt2_model *m = calloc(1, sizeof *m);
	int rc = TRAIN_OK;
	if (!m)
		return TRAIN_ENOMEM;
	hf_layout l = { &m->tensors, &m->n_tensors, NULL, 0, 0 };
	m->cfg = *cfg;
	const int64_t V = cfg->vocab_size, C = cfg->n_embd;
	if (!(m->layer = calloc((size_t)cfg->n_layer, sizeof *m->layer))) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	CK(hf_lay(&l, &m->wte, "wte.weight", V, C));
	CK(hf_lay(&l, &m->wpe, "wpe.weight", cfg->n_positions, C));
	for (int i = 0; i < cfg->n_layer; i++) {
		gpt2_layer *y = &m->layer[i];
		char n[64];
#define L(dst, what, d0, d1) do { snprintf(n, sizeof n, "h.%d.%s", i, what); \
		CK(hf_lay(&l, dst, n, d0, d1)); } while (0)
		L(&y->ln1_w, "ln_1.weight", C, 0);
		L(&y->ln1_b, "ln_1.bias", C, 0);
		L(&y->attn_w, "attn.c_attn.weight", C, 3 * C);
		L(&y->attn_b, "attn.c_attn.bias", 3 * C, 0);
		L(&y->aproj_w, "attn.c_proj.weight", C, C);
		L(&y->aproj_b, "attn.c_proj.bias", C, 0);
		L(&y->ln2_w, "ln_2.weight", C, 0);
		L(&y->ln2_b, "ln_2.bias", C, 0);
		L(&y->fc_w, "mlp.c_fc.weight", C, 4 * C);
		L(&y->fc_b, "mlp.c_fc.bias", 4 * C, 0);
		L(&y->mproj_w, "mlp.c_proj.weight", 4 * C, C);
		L(&y->mproj_b, "mlp.c_proj.bias", C, 0);
#undef L
	}
	CK(hf_lay(&l, &m->lnf_w, "ln_f.weight", C, 0));
	CK(hf_lay(&l, &m->lnf_b, "ln_f.bias", C, 0));
	m->n_params = l.off;
	size_t bytes = (l.off * sizeof(float) + 63) / 64 * 64;
	m->params = aligned_alloc(64, bytes);
	if (with_grads)
		m->grads = aligned_alloc(64, bytes);
	if (!m->params || (with_grads && !m->grads)) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	memset(m->params, 0, bytes);
	if (m->grads)
		memset(m->grads, 0, bytes);
	hf_lay_point(&l, m->params);
out:
	hf_lay_free(&l);
	if (rc)
		gpt2_model_destroy(m);
	else
		*out = m;
	return rc;
}

static void lora_free(gpt2_lora *lo)
{
	if (!lo)
		return;
	free(lo->mods);
	free(lo->mod_of);
	free(lo->params);
	free(lo->grads);
	free(lo);
}

void gpt2_model_destroy(gpt2_model *m)
{
	if (!m)
		return;
	free(m->params);
	free(m->grads);
	free(m->tensors);
	free(m->layer);
	lora_free(m->lora);
	free(m);
}

const gpt2_tensor *gpt2_find_tensor(const gpt2_model *m, const char *name)
{
	return hf_param_find(m->tensors, m->n_tensors, name);
}

void gpt2_model_init(gpt2_model *m, uint64_t seed)
{
	train_rng r;
	train_rng_seed(&r, seed);
	float proj_std = 0.02f / sqrtf(2.0f * (float)m->cfg.n_layer);
	for (size_t i = 0; i < m->n_tensors; i++) {
		const gpt2_tensor *t = &m->tensors[i];
		float *p = m->params + t->offset;
		size_t n = (size_t)(t->shape[0] * t->shape[1]);
		if (strstr(t->name, "ln_") && strstr(t->name, ".weight"))
			for (size_t k = 0; k < n; k++)
				p[k] = 1.0f;
		else if (t->ndim == 1)
			memset(p, 0, n * sizeof *p);
		else
			train_rng_fill_normal(&r, p, n, 0.0f, strstr(t->name, "c_proj") ? proj_std : 0.02f);
	}
}

void gpt2_zero_grad(gpt2_model *m)
{
	if (m->grads)
		memset(m->grads, 0, m->n_params * sizeof *m->grads);
	gpt2_lora_zero_grad(m);
}

/* ---- LoRA ---------------------------------------------------------------------- */

static float *kind_weight(const gpt2_model *m, int layer, int kind)
{
	const gpt2_layer *y = &m->layer[layer];
	switch (kind) {
	case GPT2_ATTN: return y->attn_w;
	case GPT2_APROJ: return y->aproj_w;
	case GPT2_FC: return y->fc_w;
	default: return y->mproj_w;
	}
}

static void kind_shape(const gpt2_config *c, int kind, int *in, int *out)
{
	int C = c->n_embd;
	*in = kind == GPT2_MPROJ ? 4 * C : C;
	*out = kind == GPT2_ATTN ? 3 * C : kind == GPT2_FC ? 4 * C : C;
}

static int popcount3(unsigned p)
{
	return (p & 1) + ((p >> 1) & 1) + ((p >> 2) & 1);
}

int gpt2_lora_add(gpt2_model *m, unsigned kinds, unsigned attn_parts, int rank, float alpha,
                  float dropout, uint64_t seed)
{
	const gpt2_config *c = &m->cfg;
	if (m->lora || rank < 1 || !(kinds & 15) || (kinds & ~15u) ||
	    ((kinds & (1u << GPT2_ATTN)) && (attn_parts == 0 || attn_parts > 7)) ||
	    !(dropout >= 0 && dropout < 1) || !isfinite(alpha))
		return TRAIN_EINVAL;
	gpt2_lora *lo = calloc(1, sizeof *lo);
	if (!lo)
		return TRAIN_ENOMEM;
	lo->rank = rank;
	lo->alpha = alpha;
	lo->scale = alpha / (float)rank;
	lo->dropout = dropout;
	lo->kinds = kinds;
	lo->attn_parts = kinds & (1u << GPT2_ATTN) ? attn_parts : 0;
	int per = 0;
	for (int k = 0; k < GPT2_NKINDS; k++)
		per += (kinds >> k) & 1;
	lo->n_mods = per * c->n_layer;
	lo->mods = calloc((size_t)lo->n_mods, sizeof *lo->mods);
	lo->mod_of = malloc((size_t)c->n_layer * GPT2_NKINDS * sizeof *lo->mod_of);
	if (!lo->mods || !lo->mod_of) {
		lora_free(lo);
		return TRAIN_ENOMEM;
	}
	size_t off = 0;
	int j = 0;
	for (int l = 0; l < c->n_layer; l++)
		for (int k = 0; k < GPT2_NKINDS; k++) {
			lo->mod_of[l * GPT2_NKINDS + k] = -1;
			if (!((kinds >> k) & 1))
				continue;
			gpt2_lora_mod *md = &lo->mods[j];
			md->layer = l;
			md->kind = k;
			kind_shape(c, k, &md->in, &md->out);
			md->parts = k == GPT2_ATTN ? attn_parts : GPT2_QKV;
			md->r = md->parts == GPT2_QKV ? rank : rank * popcount3(md->parts);
			md->a_off = off;
			off += (size_t)md->r * md->in;
			md->b_off = off;
			off += (size_t)md->out * md->r;
			lo->mod_of[l * GPT2_NKINDS + k] = j++;
		}
	lo->n = off;
	lo->params = calloc(off, sizeof *lo->params);
	lo->grads = calloc(off, sizeof *lo->grads);
	if (!lo->params || !lo->grads) {
		lora_free(lo);
		return TRAIN_ENOMEM;
	}
	/* PEFT: A kaiming_uniform_(a=sqrt(5)), which is U(-1/sqrt(in), 1/sqrt(in)); B = 0 */
	train_rng r;
	train_rng_seed(&r, seed);
	for (int i = 0; i < lo->n_mods; i++)
		lora_init_a(lo->params + lo->mods[i].a_off, lo->mods[i].r, lo->mods[i].in, &r);
	m->lora = lo;
	return TRAIN_OK;
}

void gpt2_lora_drop(gpt2_model *m)
{
	lora_free(m->lora);
	m->lora = NULL;
}

void gpt2_lora_zero_grad(gpt2_model *m)
{
	if (m->lora)
		memset(m->lora->grads, 0, m->lora->n * sizeof(float));
}

/* Is B[o][k] of a c_attn adapter of some parts inside its part's block? */
static int in_block(const gpt2_lora_mod *md, int rank, int C, int o, int k)
{
	int part = o / C, j = 0;
	if (!((md->parts >> part) & 1))
		return 0;
	for (int p = 0; p < part; p++)
		j += (md->parts >> p) & 1;
	return k / rank == j;
}

void gpt2_lora_mask_grads(gpt2_model *m)
{
	gpt2_lora *lo = m->lora;
	if (!lo)
		return;
	for (int i = 0; i < lo->n_mods; i++) {
		const gpt2_lora_mod *md = &lo->mods[i];
		if (md->parts == GPT2_QKV)
			continue;
		float *g = lo->grads + md->b_off;
		for (int o = 0; o < md->out; o++)
			for (int k = 0; k < md->r; k++)
				if (!in_block(md, lo->rank, m->cfg.n_embd, o, k))
					g[(size_t)o * md->r + k] = 0.0f;
	}
}

int gpt2_lora_merge(gpt2_model *m)
{
	gpt2_lora *lo = m->lora;
	if (!lo)
		return TRAIN_OK;
	for (int i = 0; i < lo->n_mods; i++) {
		const gpt2_lora_mod *md = &lo->mods[i];
		const float *A = lo->params + md->a_off, *Bm = lo->params + md->b_off;
		float *W = kind_weight(m, md->layer, md->kind);
		lora_merge_into(W, 1, (size_t)md->out, A, Bm, md->in, md->out, md->r, lo->scale);
	}
	lora_free(lo);
	m->lora = NULL;
	return TRAIN_OK;
}

/* ---- ops ---------------------------------------------------------------------- */

/* Conv1D: out (N, OUT) = inp (N, IN) W (IN, OUT) + b. */
static int conv1d_forward(float *out, const float *inp, const float *w, const float *b, int N,
                          int IN, int OUT)
{
	return train_matmul_bias(0, 0, N, OUT, IN, inp, IN, w, OUT, b, out, OUT);
}

/* dinp += dout W^T; dw += inp^T dout; db += column sums of dout (each may be NULL). */
static int conv1d_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp,
                           const float *w, int N, int IN, int OUT)
{
	int rc;
	if (dinp && (rc = train_matmul(0, 1, N, IN, OUT, 1.0f, dout, OUT, w, OUT, 1.0f, dinp, IN)))
		return rc;
	if (dw && (rc = train_matmul(1, 0, IN, OUT, N, 1.0f, inp, IN, dout, OUT, 1.0f, dw, OUT)))
		return rc;
	if (db)
		for (int n = 0; n < N; n++) {
			const float *d = dout + (size_t)n * OUT;
			for (int o = 0; o < OUT; o++)
				db[o] += d[o];
		}
	return TRAIN_OK;
}

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */

int gpt2_gelu_new_forward(float *out, const float *inp, size_t n)
{
	if (n >= TRAIN_KERNELS_ELTWISE_MIN)
		return train_eltwise_forward(TRAIN_ELTWISE_GELU_TANH, out, inp, n);
	for (size_t i = 0; i < n; i++) {
		float x = inp[i];
		out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + 0.044715f * x * x * x)));
	}
	return TRAIN_OK;
}

int gpt2_gelu_new_backward(float *dinp, const float *inp, const float *dout, size_t n)
{
	if (n >= TRAIN_KERNELS_ELTWISE_MIN)
		return train_eltwise_backward(TRAIN_ELTWISE_GELU_TANH, dinp, inp, dout, n, 0);
	for (size_t i = 0; i < n; i++) {
		float x = inp[i];
		float u = GELU_K * (x + 0.044715f * x * x * x);
		float t = tanhf(u);
		float du = GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
		dinp[i] = dout[i] * (0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * du);
	}
	return TRAIN_OK;
}

/* ---- activations ---------------------------------------------------------------- */

static void block_acts_free(gpt2_block_acts *y)
{
	free(y->ln1); free(y->mean1); free(y->rstd1); free(y->qkv); free(y->att); free(y->ctx);
	free(y->x1); free(y->ln2); free(y->mean2); free(y->rstd2); free(y->fc); free(y->gl);
	for (int k = 0; k < GPT2_NKINDS; k++) {
		free(y->lo[k].xd);
		free(y->lo[k].mask);
		free(y->lo[k].u);
	}
}

void gpt2_acts_free(gpt2_acts *a)
{
	if (!a)
		return;
	for (int i = 0; a->blk && i < a->nblk; i++)
		block_acts_free(&a->blk[i]);
	free(a->blk);
	free(a->resid); free(a->lnf); free(a->meanf); free(a->rstdf); free(a->blk_rng);
	free(a->dres); free(a->dln); free(a->dqkv); free(a->dctx); free(a->dfc); free(a->dgl);
	free(a->du); free(a->dxd); free(a->dlnf); free(a->logits); free(a->probs); free(a->idx);
	memset(a, 0, sizeof *a);
}

#define ALLOC(p, n) do { size_t n_ = (size_t)(n); a->bytes += n_ * sizeof *(p); \
	if (!((p) = malloc(n_ ? n_ * sizeof *(p) : 1))) return TRAIN_ENOMEM; } while (0)

static int acts_ensure(const gpt2_model *m, gpt2_acts *a, int B, int T, int ckpt)
{
	const gpt2_config *c = &m->cfg;
	const gpt2_lora *lo = m->lora;
	size_t N = (size_t)B * T, C = (size_t)c->n_embd, L = (size_t)c->n_layer;
	size_t att = (size_t)B * c->n_head * T * T;
	if (a->blk && N <= a->cap_rows && att <= a->cap_att && a->ckpt == ckpt && a->lora_key == lo)
		return TRAIN_OK;
	gpt2_acts_free(a);
	a->lora_key = lo;
	a->cap_rows = N;
	a->cap_att = att;
	a->ckpt = ckpt;
	a->nblk = ckpt ? 1 : (int)L;
	ALLOC(a->blk, a->nblk);
	memset(a->blk, 0, (size_t)a->nblk * sizeof *a->blk);
	int rmax = 1;
	for (int i = 0; lo && i < lo->n_mods; i++)
		rmax = lo->mods[i].r > rmax ? lo->mods[i].r : rmax;
	for (int i = 0; i < a->nblk; i++) {
		gpt2_block_acts *y = &a->blk[i];
		ALLOC(y->ln1, N * C); ALLOC(y->mean1, N); ALLOC(y->rstd1, N);
		ALLOC(y->qkv, 3 * N * C); ALLOC(y->att, att); ALLOC(y->ctx, N * C);
		ALLOC(y->x1, N * C); ALLOC(y->ln2, N * C); ALLOC(y->mean2, N); ALLOC(y->rstd2, N);
		ALLOC(y->fc, 4 * N * C); ALLOC(y->gl, 4 * N * C);
		for (int k = 0; lo && k < GPT2_NKINDS; k++) {
			if (!((lo->kinds >> k) & 1))
				continue;
			int in, out;
			kind_shape(c, k, &in, &out);
			int r = k == GPT2_ATTN && lo->attn_parts != GPT2_QKV
			        ? lo->rank * popcount3(lo->attn_parts) : lo->rank;
			if (lo->dropout > 0) {
				ALLOC(y->lo[k].xd, N * (size_t)in);
				ALLOC(y->lo[k].mask, N * (size_t)in);
			}
			ALLOC(y->lo[k].u, N * (size_t)r);
		}
	}
	ALLOC(a->resid, (L + 1) * N * C);
	ALLOC(a->lnf, N * C); ALLOC(a->meanf, N); ALLOC(a->rstdf, N);
	ALLOC(a->blk_rng, L);
	ALLOC(a->dres, N * C); ALLOC(a->dln, N * C); ALLOC(a->dqkv, 3 * N * C);
	ALLOC(a->dctx, N * C); ALLOC(a->dfc, 4 * N * C); ALLOC(a->dgl, 4 * N * C);
	ALLOC(a->du, N * (size_t)rmax); ALLOC(a->dxd, 4 * N * C); ALLOC(a->dlnf, N * C);
	/* the head: chunks of rows of at most 2^22 logits (at least one row) */
	size_t rows = ((size_t)1 << 22) / (size_t)c->vocab_size;
	rows = rows < 1 ? 1 : rows > N ? N : rows;
	a->head_rows = (int)rows;
	ALLOC(a->logits, rows * (size_t)c->vocab_size);
	ALLOC(a->probs, rows * (size_t)c->vocab_size);
	ALLOC(a->idx, rows);
	return TRAIN_OK;
}

int gpt2_acts_reserve(const gpt2_model *m, gpt2_acts *a, int B, int T, int ckpt)
{
	if (B <= 0 || T <= 0)
		return TRAIN_EINVAL;
	return acts_ensure(m, a, B, T, ckpt);
}

/* ---- the projections with their adapters --------------------------------------- */

/* out = inp W + b, plus the adapter's scale * (drop(inp) A^T) B^T. */
static int proj_forward(gpt2_model *m, gpt2_block_acts *y, int layer, int kind, float *out,
                        const float *inp, const float *w, const float *b, int N, train_rng *rng)
{
	gpt2_lora *lo = m->lora;
	int in, o, rc;
	kind_shape(&m->cfg, kind, &in, &o);
	if ((rc = conv1d_forward(out, inp, w, b, N, in, o)))
		return rc;
	int mi = lo ? lo->mod_of[layer * GPT2_NKINDS + kind] : -1;
	if (mi < 0)
		return TRAIN_OK;
	const gpt2_lora_mod *md = &lo->mods[mi];
	gpt2_lora_acts *la = &y->lo[kind];
	const lora_shape sh = { in, o, md->r, lo->scale, lo->dropout };
	return lora_forward(&sh, N, inp, lo->params + md->a_off, lo->params + md->b_off, la->xd,
	                    la->mask, la->u, out, o, rng);
}

/* Backward of proj_forward: dinp += ..., the weight's grads (if any), the adapter's. */
static int proj_backward(gpt2_model *m, gpt2_acts *a, gpt2_block_acts *y, int layer, int kind,
                         float *dinp, const float *dout, const float *inp, const float *w,
                         const float *b, int N)
{
	gpt2_lora *lo = m->lora;
	int in, o, rc;
	kind_shape(&m->cfg, kind, &in, &o);
	if ((rc = conv1d_backward(dinp, gpt2_grad(m, w), gpt2_grad(m, b), dout, inp, w, N, in, o)))
		return rc;
	int mi = lo ? lo->mod_of[layer * GPT2_NKINDS + kind] : -1;
	if (mi < 0)
		return TRAIN_OK;
	const gpt2_lora_mod *md = &lo->mods[mi];
	const gpt2_lora_acts *la = &y->lo[kind];
	const lora_shape sh = { in, o, md->r, lo->scale, lo->dropout };
	return lora_backward(&sh, N, inp, la->xd, la->mask, la->u, lo->params + md->a_off,
	                     lo->params + md->b_off, lo->grads + md->a_off, lo->grads + md->b_off, dout,
	                     o, a->du, a->dxd, dinp);
}

/* ---- blocks -------------------------------------------------------------------- */

static int block_forward(gpt2_model *m, gpt2_acts *a, gpt2_block_acts *y, int l, const float *x,
                         float *xout, train_rng *rng)
{
	const gpt2_config *c = &m->cfg;
	const gpt2_layer *w = &m->layer[l];
	const int B = a->B, T = a->T, N = B * T, C = c->n_embd;
	const size_t NC = (size_t)N * C;
	int rc;
	if ((rc = train_layernorm_forward(y->ln1, y->mean1, y->rstd1, x, w->ln1_w, w->ln1_b, N, C,
	                                  c->ln_eps)) ||
	    (rc = proj_forward(m, y, l, GPT2_ATTN, y->qkv, y->ln1, w->attn_w, w->attn_b, N, rng)) ||
	    (rc = train_attention_forward(y->ctx, y->att, y->qkv, NULL, B, T, C, c->n_head, 1)) ||
	    (rc = proj_forward(m, y, l, GPT2_APROJ, y->x1, y->ctx, w->aproj_w, w->aproj_b, N, rng)) ||
	    (rc = train_add(y->x1, y->x1, x, NC)) ||
	    (rc = train_layernorm_forward(y->ln2, y->mean2, y->rstd2, y->x1, w->ln2_w, w->ln2_b, N, C,
	                                  c->ln_eps)) ||
	    (rc = proj_forward(m, y, l, GPT2_FC, y->fc, y->ln2, w->fc_w, w->fc_b, N, rng)) ||
	    (rc = gpt2_gelu_new_forward(y->gl, y->fc, 4 * NC)) ||
	    (rc = proj_forward(m, y, l, GPT2_MPROJ, xout, y->gl, w->mproj_w, w->mproj_b, N, rng)))
		return rc;
	return train_add(xout, xout, y->x1, NC);
}

/* a->dres holds d(block output) on entry and d(block input) on return. */
static int block_backward(gpt2_model *m, gpt2_acts *a, gpt2_block_acts *y, int l, const float *x)
{
	const gpt2_config *c = &m->cfg;
	const gpt2_layer *w = &m->layer[l];
	const int B = a->B, T = a->T, N = B * T, C = c->n_embd;
	const size_t NC = (size_t)N * C;
	int rc;
	memset(a->dgl, 0, 4 * NC * sizeof(float));
	memset(a->dln, 0, NC * sizeof(float));
	/* mlp: dres (= d x2) flows into x1 unchanged and through the mlp */
	if ((rc = proj_backward(m, a, y, l, GPT2_MPROJ, a->dgl, a->dres, y->gl, w->mproj_w,
	                        w->mproj_b, N)) ||
	    (rc = gpt2_gelu_new_backward(a->dfc, y->fc, a->dgl, 4 * NC)) ||
	    (rc = proj_backward(m, a, y, l, GPT2_FC, a->dln, a->dfc, y->ln2, w->fc_w, w->fc_b, N)) ||
	    (rc = train_layernorm_backward(a->dres, gpt2_grad(m, w->ln2_w), gpt2_grad(m, w->ln2_b),
	                                   a->dln, y->x1, w->ln2_w, y->mean2, y->rstd2, N, C)))
		return rc;
	/* attention: dres is d x1 now */
	memset(a->dctx, 0, NC * sizeof(float));
	memset(a->dqkv, 0, 3 * NC * sizeof(float));
	memset(a->dln, 0, NC * sizeof(float));
	if ((rc = proj_backward(m, a, y, l, GPT2_APROJ, a->dctx, a->dres, y->ctx, w->aproj_w,
	                        w->aproj_b, N)) ||
	    (rc = train_attention_backward(a->dqkv, a->dctx, y->qkv, y->att, B, T, C, c->n_head)) ||
	    (rc = proj_backward(m, a, y, l, GPT2_ATTN, a->dln, a->dqkv, y->ln1, w->attn_w, w->attn_b,
	                        N)))
		return rc;
	return train_layernorm_backward(a->dres, gpt2_grad(m, w->ln1_w), gpt2_grad(m, w->ln1_b), a->dln,
	                                x, w->ln1_w, y->mean1, y->rstd1, N, C);
}

/* ---- the model ------------------------------------------------------------------ */

int gpt2_forward(gpt2_model *m, gpt2_acts *a, const int32_t *ids, int B, int T, int ckpt,
                 train_rng *rng)
{
	const gpt2_config *c = &m->cfg;
	const int C = c->n_embd, L = c->n_layer;
	int rc;
	if (B <= 0 || T <= 0 || T > c->n_positions || !ids || (int64_t)B * T > INT32_MAX / (4 * C) ||
	    (m->lora && m->lora->dropout > 0 && !rng))
		return TRAIN_EINVAL;
	const int N = B * T;
	for (int n = 0; n < N; n++)
		if (ids[n] < 0 || ids[n] >= c->vocab_size)
			return TRAIN_EINVAL;
	if ((rc = acts_ensure(m, a, B, T, ckpt)))
		return rc;
	a->B = B;
	a->T = T;
	a->ids = ids;
	const size_t NC = (size_t)N * C;
	for (int n = 0; n < N; n++) {
		const float *e = m->wte + (size_t)ids[n] * C, *p = m->wpe + (size_t)(n % T) * C;
		float *o = a->resid + (size_t)n * C;
		for (int k = 0; k < C; k++)
			o[k] = e[k] + p[k];
	}
	for (int l = 0; l < L; l++) {
		if (rng)
			a->blk_rng[l] = *rng;
		gpt2_block_acts *y = &a->blk[ckpt ? 0 : l];
		if ((rc = block_forward(m, a, y, l, a->resid + (size_t)l * NC, a->resid + (size_t)(l + 1) * NC,
		                        rng)))
			return rc;
	}
	return train_layernorm_forward(a->lnf, a->meanf, a->rstdf, a->resid + (size_t)L * NC, m->lnf_w,
	                               m->lnf_b, N, C, c->ln_eps);
}

int gpt2_backward(gpt2_model *m, gpt2_acts *a)
{
	const gpt2_config *c = &m->cfg;
	const int C = c->n_embd, L = c->n_layer, N = a->B * a->T;
	const size_t NC = (size_t)N * C;
	int rc;
	memset(a->dres, 0, NC * sizeof(float));
	if ((rc = train_layernorm_backward(a->dres, gpt2_grad(m, m->lnf_w), gpt2_grad(m, m->lnf_b), a->dlnf,
	                                   a->resid + (size_t)L * NC, m->lnf_w, a->meanf, a->rstdf, N, C)))
		return rc;
	for (int l = L - 1; l >= 0; l--) {
		const float *x = a->resid + (size_t)l * NC;
		gpt2_block_acts *y = &a->blk[a->ckpt ? 0 : l];
		if (a->ckpt) {
			/* recompute the block from its input, with the same dropout draws;
			 * its output goes to scratch (the stored resid[l+1] is the same) */
			train_rng r = a->blk_rng[l];
			int use_rng = m->lora && m->lora->dropout > 0;
			if ((rc = block_forward(m, a, y, l, x, a->dctx, use_rng ? &r : NULL)))
				return rc;
		}
		if ((rc = block_backward(m, a, y, l, x)))
			return rc;
	}
	if (m->lora)
		gpt2_lora_mask_grads(m);
	if (!m->grads)
		return TRAIN_OK;
	float *dwte = gpt2_grad(m, m->wte), *dwpe = gpt2_grad(m, m->wpe);
	for (int n = 0; n < N; n++) {
		const float *d = a->dres + (size_t)n * C;
		float *e = dwte + (size_t)a->ids[n] * C, *p = dwpe + (size_t)(n % a->T) * C;
		for (int k = 0; k < C; k++) {
			e[k] += d[k];
			p[k] += d[k];
		}
	}
	return TRAIN_OK;
}

int gpt2_logits(gpt2_model *m, gpt2_acts *a, int row0, int rows, float *out)
{
	const int C = m->cfg.n_embd, V = m->cfg.vocab_size;
	if (row0 < 0 || rows <= 0 || row0 + rows > a->B * a->T)
		return TRAIN_EINVAL;
	return train_matmul(0, 1, rows, V, C, 1.0f, a->lnf + (size_t)row0 * C, C, m->wte, C, 0.0f, out, V);
}

int gpt2_loss(gpt2_model *m, gpt2_acts *a, const int32_t *targets, float scale, int backward,
              double *loss, int64_t *count)
{
	const int C = m->cfg.n_embd, V = m->cfg.vocab_size, N = a->B * a->T;
	int64_t cnt = 0;
	double sum = 0;
	int rc;
	for (int n = 0; n < N; n++) {
		if (targets[n] >= V)
			return TRAIN_EINVAL;
		cnt += targets[n] >= 0;
	}
	if (backward)
		memset(a->dlnf, 0, (size_t)N * C * sizeof(float));
	float *dwte = backward ? gpt2_grad(m, m->wte) : NULL;
	const float g = cnt ? scale / (float)cnt : 0.0f;
	for (int r0 = 0; r0 < N; r0 += a->head_rows) {
		/* only the rows that count, packed */
		int rows = 0;
		int32_t *idx = a->idx;
		for (int n = r0; n < N && n < r0 + a->head_rows; n++)
			if (targets[n] >= 0)
				idx[rows++] = n;
		if (!rows)
			continue;
		float *lg = a->logits, *pr = a->probs;
		/* gather the rows of lnf into dln (scratch) */
		float *h = a->dln;
		for (int i = 0; i < rows; i++)
			memcpy(h + (size_t)i * C, a->lnf + (size_t)idx[i] * C, (size_t)C * sizeof(float));
		if ((rc = train_matmul(0, 1, rows, V, C, 1.0f, h, C, m->wte, C, 0.0f, lg, V)) ||
		    (rc = train_softmax_rows_forward(pr, lg, rows, V)))
			return rc;
		for (int i = 0; i < rows; i++) {
			const float *row = lg + (size_t)i * V;
			float *p = pr + (size_t)i * V;
			int t = targets[idx[i]];
			if (p[t] > 1e-30f) {
				sum -= log((double)p[t]);
			} else { /* too small for the probability: log-sum-exp of the logits */
				double mx = row[0], s = 0;
				for (int v = 1; v < V; v++)
					mx = row[v] > mx ? row[v] : mx;
				for (int v = 0; v < V; v++)
					s += exp(row[v] - mx);
				sum += mx + log(s) - row[t];
			}
			if (backward) {
				float *d = lg + (size_t)i * V;
				for (int v = 0; v < V; v++)
					d[v] = p[v] * g;
				d[t] -= g;
			}
		}
		if (!backward)
			continue;
		/* d lnf rows = dlogits wte; d wte += dlogits^T h */
		float *dh = a->dxd;
		if ((rc = train_matmul(0, 0, rows, C, V, 1.0f, lg, V, m->wte, C, 0.0f, dh, C)))
			return rc;
		for (int i = 0; i < rows; i++)
			memcpy(a->dlnf + (size_t)idx[i] * C, dh + (size_t)i * C, (size_t)C * sizeof(float));
		if (dwte && (rc = train_matmul(1, 0, V, C, rows, 1.0f, lg, V, h, C, 1.0f, dwte, C)))
			return rc;
	}
	*loss = cnt ? sum / (double)cnt : 0.0;
	if (count)
		*count = cnt;
	return TRAIN_OK;
}
