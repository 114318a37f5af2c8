/*
 * plugins/mamba/model.c - the Mamba language model: parameters, Mamba's
 * initialisation, forward and backward passes over a batch, and the
 * recurrent step that generates one token at a time.
 *
 * One block (mamba_ssm's Mamba with a pre-norm residual, as
 * MambaLMHeadModel):
 *   u = RMSNorm(h);  x, z = u W_in^T (2Di);  xs = SiLU(conv1d_causal(x))
 *   dt_in, B, C = xs W_x^T (R, NS, NS);  delta = softplus(dt_in W_dt^T + b_dt)
 *   y = selective_scan(xs, delta, A = -exp(A_log), B, C) + Dp * xs
 *   h += (y * SiLU(z)) W_out^T
 * then RMSNorm and the head, tied to the embedding.  Tensors are named as
 * Hugging Face's MambaForCausalLM names them, so persisted weights open
 * there.  Matmuls go through <train/nn.h> (oneDNN); the scan is scan.c.
 * LoRA adapters (mamba_lora.c), when m->lora is set, add to in_proj's,
 * x_proj's, dt_proj's and out_proj's outputs in block_forward and take
 * their gradients in block_backward; without m->grads the base is frozen
 * and no weight gradient of its own is computed.
 */
#include "mamba.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RMS_EPS 1e-5f

/* ------------------------------------------------------------------------ */
/* sizes and layout */

int mamba_dims_make(int V, int D, int n_layers, mamba_dims *out)
{
	if (V < 2 || D < 8 || D % 8 || n_layers < 1 || D > 65536 || V > 1 << 24 ||
	    n_layers > MAMBA_MAX_LAYERS)
		return TRAIN_EINVAL;
	out->V = V;
	out->D = D;
	out->n_layers = n_layers;
	out->Di = 2 * D;
	out->NS = MAMBA_NS;
	out->R = (D + 15) / 16;
	out->K = MAMBA_K;
	return TRAIN_OK;
}

static size_t add_info(mamba_tensor_info *info, size_t *n, size_t off, const char *name, int nd,
                       int64_t a, int64_t b, int64_t c)
{
	mamba_tensor_info *t = &info[(*n)++];
	snprintf(t->name, sizeof t->name, "%s", name);
	t->ndim = nd;
	t->shape[0] = a;
	t->shape[1] = b;
	t->shape[2] = c;
	t->numel = (size_t)a * (nd > 1 ? (size_t)b : 1) * (nd > 2 ? (size_t)c : 1);
	t->offset = off;
	return off + ((t->numel + 15) & ~(size_t)15); /* 64-byte aligned tensors */
}

static size_t layout(const mamba_dims *d, mamba_tensor_info *info, size_t *n)
{
	size_t off = 0;
	char nm[64];
	*n = 0;
	off = add_info(info, n, off, "backbone.embeddings.weight", 2, d->V, d->D, 1);
	for (int i = 0; i < d->n_layers; i++) {
#define NM(s) (snprintf(nm, sizeof nm, "backbone.layers.%d.%s", i, s), nm)
		off = add_info(info, n, off, NM("norm.weight"), 1, d->D, 1, 1);
		off = add_info(info, n, off, NM("mixer.in_proj.weight"), 2, 2 * d->Di, d->D, 1);
		off = add_info(info, n, off, NM("mixer.conv1d.weight"), 3, d->Di, 1, d->K);
		off = add_info(info, n, off, NM("mixer.conv1d.bias"), 1, d->Di, 1, 1);
		off = add_info(info, n, off, NM("mixer.x_proj.weight"), 2, d->R + 2 * d->NS, d->Di, 1);
		off = add_info(info, n, off, NM("mixer.dt_proj.weight"), 2, d->Di, d->R, 1);
		off = add_info(info, n, off, NM("mixer.dt_proj.bias"), 1, d->Di, 1, 1);
		off = add_info(info, n, off, NM("mixer.A_log"), 2, d->Di, d->NS, 1);
		off = add_info(info, n, off, NM("mixer.D"), 1, d->Di, 1, 1);
		off = add_info(info, n, off, NM("mixer.out_proj.weight"), 2, d->D, d->Di, 1);
#undef NM
	}
	off = add_info(info, n, off, "backbone.norm_f.weight", 1, d->D, 1, 1);
	return off;
}

static void views(const mamba_model *m, float *base, mamba_weights *w)
{
	const mamba_tensor_info *t = m->info;
	w->emb = base + t[0].offset;
	for (int i = 0; i < m->d.n_layers; i++) {
		const mamba_tensor_info *q = t + 1 + 10 * i;
		mamba_layer_w *lw = &w->layer[i];
		lw->norm = base + q[0].offset;
		lw->in_proj = base + q[1].offset;
		lw->conv_w = base + q[2].offset;
		lw->conv_b = base + q[3].offset;
		lw->x_proj = base + q[4].offset;
		lw->dt_w = base + q[5].offset;
		lw->dt_b = base + q[6].offset;
		lw->A_log = base + q[7].offset;
		lw->Dp = base + q[8].offset;
		lw->out_proj = base + q[9].offset;
	}
	w->norm_f = base + t[m->n_info - 1].offset;
}

static float *falloc(size_t n)
{
	void *p = NULL;
	if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)))
		return NULL;
	memset(p, 0, (n ? n : 1) * sizeof(float));
	return p;
}

int mamba_model_create(const mamba_dims *d, int with_grads, mamba_model **out)
{
	*out = NULL;
	mamba_model *m = calloc(1, sizeof *m);
	if (!m)
		return TRAIN_ENOMEM;
	m->d = *d;
	m->threads = 1;
	m->info = calloc((size_t)d->n_layers * 10 + 2, sizeof *m->info);
	m->w.layer = calloc((size_t)d->n_layers, sizeof *m->w.layer);
	m->g.layer = calloc((size_t)d->n_layers, sizeof *m->g.layer);
	if (!m->info || !m->w.layer || !m->g.layer)
		goto oom;
	m->n_params = layout(d, m->info, &m->n_info);
	m->params = falloc(m->n_params);
	if (!m->params)
		goto oom;
	views(m, m->params, &m->w);
	if (with_grads) {
		m->grads = falloc(m->n_params);
		if (!m->grads)
			goto oom;
		views(m, m->grads, &m->g);
	}
	*out = m;
	return TRAIN_OK;
oom:
	mamba_model_destroy(m);
	return TRAIN_ENOMEM;
}

void mamba_model_destroy(mamba_model *m)
{
	if (!m)
		return;
	free(m->params);
	free(m->grads);
	free(m->info);
	free(m->w.layer);
	free(m->g.layer);
	free(m->acts);
	mamba_lora_free(m->lora);
	free(m);
}

/* nn.Linear's default: kaiming_uniform(a = sqrt 5) = U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
static void linear_init(train_rng *r, float *w, size_t n, int fan_in, float scale)
{
	float b = scale / sqrtf((float)fan_in);
	train_rng_fill_uniform(r, w, n, -b, b);
}

void mamba_model_init(mamba_model *m, train_rng *r)
{
	const mamba_dims *d = &m->d;
	memset(m->params, 0, m->n_params * sizeof(float));
	train_rng_fill_normal(r, m->w.emb, (size_t)d->V * d->D, 0.0f, 0.02f);
	for (int i = 0; i < d->n_layers; i++) {
		mamba_layer_w *w = &m->w.layer[i];
		for (int c = 0; c < d->D; c++)
			w->norm[c] = 1.0f;
		linear_init(r, w->in_proj, (size_t)2 * d->Di * d->D, d->D, 1.0f);
		linear_init(r, w->conv_w, (size_t)d->Di * d->K, d->K, 1.0f);
		linear_init(r, w->conv_b, (size_t)d->Di, d->K, 1.0f);
		linear_init(r, w->x_proj, (size_t)(d->R + 2 * d->NS) * d->Di, d->Di, 1.0f);
		/* dt_proj: weight U(-R^-1/2, R^-1/2); bias the inverse softplus of
		 * dt = exp(U(log 1e-3, log 1e-1)), at least 1e-4 */
		float std = 1.0f / sqrtf((float)d->R);
		train_rng_fill_uniform(r, w->dt_w, (size_t)d->Di * d->R, -std, std);
		for (int c = 0; c < d->Di; c++) {
			double u = train_rng_uniform(r);
			double dt = exp(u * (log(0.1) - log(1e-3)) + log(1e-3));
			if (dt < 1e-4)
				dt = 1e-4;
			w->dt_b[c] = (float)(dt + log(-expm1(-dt)));
		}
		/* S4D-real: A_n = -(n + 1) */
		for (int c = 0; c < d->Di; c++)
			for (int n = 0; n < d->NS; n++)
				w->A_log[(size_t)c * d->NS + n] = logf((float)(n + 1));
		for (int c = 0; c < d->Di; c++)
			w->Dp[c] = 1.0f;
		/* out_proj scaled by 1/sqrt(n_layers) (GPT-2's prenorm residual rule) */
		linear_init(r, w->out_proj, (size_t)d->D * d->Di, d->Di,
		            1.0f / sqrtf((float)d->n_layers));
	}
	for (int c = 0; c < d->D; c++)
		m->w.norm_f[c] = 1.0f;
}

/* ------------------------------------------------------------------------ */
/* activations */

typedef struct layer_acts {
	float *res;   /* (Nt, D) the stream entering the layer */
	float *u;     /* (Nt, D) */
	float *rstd;  /* (Nt) */
	float *x, *z; /* (Nt, Di) */
	float *xc;    /* (Nt, Di) conv output */
	float *xs;    /* (Nt, Di) SiLU(xc) */
	float *dbc;   /* (Nt, R + 2NS) */
	float *dtr;   /* (Nt, Di) before softplus */
	float *delta; /* (Nt, Di) */
	float *A;     /* (Di, NS) */
	float *hs;    /* scan checkpoints */
	float *y;     /* (Nt, Di) */
	float *sz;    /* (Nt, Di) SiLU(z) */
	float *g;     /* (Nt, Di) y * SiLU(z) */
} layer_acts;

typedef struct acts {
	layer_acts l[MAMBA_MAX_LAYERS];
	float *resf;   /* (Nt, D) the final stream */
	float *hf;     /* (Nt, D) */
	float *rstdf;  /* (Nt) */
	float *logits; /* (Nt, V) */
	float *probs;  /* (Nt, V) */
	/* backward scratch */
	float *dres, *du, *dg, *dy, *dz, *dsz, *dxs, *dxc, *dx, *ddelta, *ddtr, *ddbc, *dA, *dhf;
	float *dDp;    /* (Di) the scan's dDp when the base is frozen (adapters) */
} acts;

static size_t al16(size_t n)
{
	return (n + 15) & ~(size_t)15;
}

/* Lay the activations out in base (NULL: just count). */
static size_t acts_layout(const mamba_dims *d, int B, int T, int ckpt, float *base, acts *a)
{
	size_t Nt = (size_t)B * T, off = 0, nbc = (size_t)d->R + 2 * d->NS;
#define TAKE(ptr, n) do { size_t n_ = al16(n); if (base) (ptr) = base + off; off += n_; } while (0)
	for (int i = 0; i < d->n_layers; i++) {
		layer_acts *l = &a->l[i];
		TAKE(l->res, Nt * d->D);
		if (ckpt && i > 0) {
			/* checkpointing: each layer keeps its input; the rest is layer 0's,
			 * recomputed for each layer in backward */
			if (base) {
				float *res = l->res;
				*l = a->l[0];
				l->res = res;
			}
			continue;
		}
		TAKE(l->u, Nt * d->D);
		TAKE(l->rstd, Nt);
		TAKE(l->x, Nt * d->Di);
		TAKE(l->z, Nt * d->Di);
		TAKE(l->xc, Nt * d->Di);
		TAKE(l->xs, Nt * d->Di);
		TAKE(l->dbc, Nt * nbc);
		TAKE(l->dtr, Nt * d->Di);
		TAKE(l->delta, Nt * d->Di);
		TAKE(l->A, (size_t)d->Di * d->NS);
		TAKE(l->hs, mamba_scan_hs_floats(B, T, d->Di));
		TAKE(l->y, Nt * d->Di);
		TAKE(l->sz, Nt * d->Di);
		TAKE(l->g, Nt * d->Di);
	}
	TAKE(a->resf, Nt * d->D);
	TAKE(a->hf, Nt * d->D);
	TAKE(a->rstdf, Nt);
	TAKE(a->logits, Nt * d->V);
	TAKE(a->probs, Nt * d->V);
	TAKE(a->dres, Nt * d->D);
	TAKE(a->du, Nt * d->D);
	TAKE(a->dhf, Nt * d->D);
	TAKE(a->dg, Nt * d->Di);
	TAKE(a->dy, Nt * d->Di);
	TAKE(a->dz, Nt * d->Di);
	TAKE(a->dsz, Nt * d->Di);
	TAKE(a->dxs, Nt * d->Di);
	TAKE(a->dxc, Nt * d->Di);
	TAKE(a->dx, Nt * d->Di);
	TAKE(a->ddelta, Nt * d->Di);
	TAKE(a->ddtr, Nt * d->Di);
	TAKE(a->ddbc, Nt * nbc);
	TAKE(a->dA, (size_t)d->Di * d->NS);
	TAKE(a->dDp, (size_t)d->Di);
#undef TAKE
	return off;
}

static int acts_get(mamba_model *m, int B, int T, acts *a)
{
	if (m->d.n_layers > MAMBA_MAX_LAYERS)
		return TRAIN_EINVAL;
	int ckpt = m->ckpt ? 1 : 0;
	if (!m->acts || m->ab != B || m->at != T || m->ackpt != ckpt) {
		free(m->acts);
		m->acts = NULL;
		m->ackpt = ckpt;
		m->acts_floats = acts_layout(&m->d, B, T, ckpt, NULL, a);
		m->acts = falloc(m->acts_floats);
		if (!m->acts)
			return TRAIN_ENOMEM;
		m->ab = B;
		m->at = T;
	}
	acts_layout(&m->d, B, T, ckpt, m->acts, a);
	return mamba_lora_acts_get(m, B, T);
}

const float *mamba_logits(const mamba_model *m)
{
	acts a;
	acts_layout(&m->d, m->ab, m->at, m->ackpt, m->acts, &a);
	return a.logits;
}

/* ------------------------------------------------------------------------ */
/* elementwise pieces */

static inline float softplus(float x)
{
	return mamba_softplus(x);
}

static inline float sigmoid(float x)
{
	return 1.0f / (1.0f + mamba_fexp(-x));
}

/* ------------------------------------------------------------------------ */
/* forward */

#define CK(e) do { if ((rc = (e)) != TRAIN_OK) return rc; } while (0)

static int block_forward(mamba_model *m, int li, const mamba_layer_w *w, layer_acts *l,
                         float *out, int B, int T)
{
	const mamba_dims *d = &m->d;
	int Nt = B * T, D = d->D, Di = d->Di, NS = d->NS, R = d->R, nbc = R + 2 * NS, rc;
	size_t nd = (size_t)Nt * Di;
	CK(train_rmsnorm_forward(l->u, l->rstd, l->res, w->norm, Nt, D, RMS_EPS));
	CK(train_linear_forward(l->x, l->u, w->in_proj, NULL, Nt, D, Di));
	CK(train_linear_forward(l->z, l->u, w->in_proj + (size_t)Di * D, NULL, Nt, D, Di));
	CK(mamba_lora_forward(m, li, MAMBA_LORA_IN, Nt, l->u, D, l->x, l->z, Di));
	CK(train_conv1d_causal_forward(l->xc, l->x, w->conv_w, w->conv_b, B, T, Di, d->K));
	CK(train_silu_forward(l->xs, l->xc, nd));
	CK(train_linear_forward(l->dbc, l->xs, w->x_proj, NULL, Nt, Di, nbc));
	CK(mamba_lora_forward(m, li, MAMBA_LORA_X, Nt, l->xs, Di, l->dbc, NULL, nbc));
	CK(train_matmul_bias(0, 1, Nt, Di, R, l->dbc, nbc, w->dt_w, R, w->dt_b, l->dtr, Di));
	CK(mamba_lora_forward(m, li, MAMBA_LORA_DT, Nt, l->dbc, nbc, l->dtr, NULL, Di));
	for (size_t i = 0; i < nd; i++)
		l->delta[i] = softplus(l->dtr[i]);
	for (size_t i = 0; i < (size_t)Di * NS; i++)
		l->A[i] = -expf(w->A_log[i]);
	mamba_scan sc = { B, T, Di, nbc, m->threads, l->xs, l->delta, l->A, l->dbc + R,
	                  l->dbc + R + NS, w->Dp };
	CK(mamba_scan_forward(&sc, l->y, l->hs));
	CK(train_silu_forward(l->sz, l->z, nd));
	for (size_t i = 0; i < nd; i++)
		l->g[i] = l->y[i] * l->sz[i];
	/* out = res + g W_out^T */
	CK(train_linear_forward(out, l->g, w->out_proj, NULL, Nt, Di, D));
	CK(mamba_lora_forward(m, li, MAMBA_LORA_OUT, Nt, l->g, Di, out, NULL, D));
	for (size_t i = 0; i < (size_t)Nt * D; i++)
		out[i] += l->res[i];
	return TRAIN_OK;
}

/* Embedding, the blocks, the final norm; the head when want_logits. */
static int forward_core(mamba_model *m, const int32_t *ids, int B, int T, int want_logits)
{
	const mamba_dims *d = &m->d;
	int rc, Nt = B * T;
	if (!ids || B <= 0 || T <= 0)
		return TRAIN_EINVAL;
	acts a;
	CK(acts_get(m, B, T, &a));
	CK(train_embedding_forward(a.l[0].res, ids, m->w.emb, Nt, d->D, d->V));
	if (m->lora)
		m->lora->fwd_p = m->lora->training ? m->lora->dropout : 0.0f;
	for (int i = 0; i < d->n_layers; i++) {
		float *out = i + 1 < d->n_layers ? a.l[i + 1].res : a.resf;
		if (m->lora) /* checkpointing's recomputation replays the dropout */
			m->lora->rng_at[i] = m->lora->rng;
		CK(block_forward(m, i, &m->w.layer[i], &a.l[i], out, B, T));
	}
	CK(train_rmsnorm_forward(a.hf, a.rstdf, a.resf, m->w.norm_f, Nt, d->D, RMS_EPS));
	if (want_logits)
		CK(train_linear_forward(a.logits, a.hf, m->w.emb, NULL, Nt, d->D, d->V));
	return TRAIN_OK;
}

int mamba_forward(mamba_model *m, const int32_t *ids, const int32_t *targets, int B, int T,
                  float *loss)
{
	int rc;
	CK(forward_core(m, ids, B, T, 1));
	if (targets) {
		acts a;
		acts_layout(&m->d, B, T, m->ackpt, m->acts, &a);
		float l = 0.0f;
		CK(train_cross_entropy_forward(&l, NULL, a.probs, a.logits, targets, B * T, m->d.V, 0.0f));
		if (loss)
			*loss = l;
	}
	return TRAIN_OK;
}

int mamba_forward_hidden(mamba_model *m, const int32_t *ids, int B, int T, int want_logits)
{
	return forward_core(m, ids, B, T, want_logits);
}

const float *mamba_hidden(const mamba_model *m)
{
	acts a;
	acts_layout(&m->d, m->ab, m->at, m->ackpt, m->acts, &a);
	return a.hf;
}

/* ------------------------------------------------------------------------ */
/* backward */

/* dres (Nt, D) holds dL/d(out of this block); on return, dL/d(res in).
 * gw NULL: the base is frozen (adapters only): no weight gradients. */
static int block_backward(mamba_model *m, int li, const mamba_layer_w *w, mamba_layer_w *gw,
                          layer_acts *l, acts *a, int B, int T)
{
#define GW(f) (gw ? gw->f : NULL)
	const mamba_dims *d = &m->d;
	int Nt = B * T, D = d->D, Di = d->Di, NS = d->NS, R = d->R, nbc = R + 2 * NS, rc;
	size_t nd = (size_t)Nt * Di;
	/* out_proj */
	memset(a->dg, 0, nd * sizeof(float));
	CK(train_linear_backward(a->dg, GW(out_proj), NULL, a->dres, l->g, w->out_proj, Nt, Di, D));
	CK(mamba_lora_backward(m, li, MAMBA_LORA_OUT, Nt, l->g, Di, a->dres, NULL, D, a->dg, Di));
	/* gate: g = y * sz */
	for (size_t i = 0; i < nd; i++) {
		a->dy[i] = a->dg[i] * l->sz[i];
		a->dsz[i] = a->dg[i] * l->y[i];
	}
	memset(a->dz, 0, nd * sizeof(float));
	CK(train_silu_backward(a->dz, l->z, a->dsz, nd));
	/* the scan */
	memset(a->dxs, 0, nd * sizeof(float));
	memset(a->ddelta, 0, nd * sizeof(float));
	memset(a->ddbc, 0, (size_t)Nt * nbc * sizeof(float));
	memset(a->dA, 0, (size_t)Di * NS * sizeof(float));
	mamba_scan sc = { B, T, Di, nbc, m->threads, l->xs, l->delta, l->A, l->dbc + R,
	                  l->dbc + R + NS, w->Dp };
	CK(mamba_scan_backward(&sc, a->dy, l->hs, a->dxs, a->ddelta, a->dA, gw ? gw->Dp : a->dDp,
	                       a->ddbc + R, a->ddbc + R + NS));
	/* A = -exp(A_log): dA_log = dA * A */
	for (size_t i = 0; gw && i < (size_t)Di * NS; i++)
		gw->A_log[i] += a->dA[i] * l->A[i];
	/* softplus */
	for (size_t i = 0; i < nd; i++)
		a->ddtr[i] = a->ddelta[i] * sigmoid(l->dtr[i]);
	/* dt_proj: dtr = dbc[:, :R] W_dt^T + b */
	CK(train_matmul(0, 0, Nt, R, Di, 1.0f, a->ddtr, Di, w->dt_w, R, 0.0f, a->ddbc, nbc));
	CK(mamba_lora_backward(m, li, MAMBA_LORA_DT, Nt, l->dbc, nbc, a->ddtr, NULL, Di, a->ddbc, nbc));
	if (gw)
		CK(train_matmul(1, 0, Di, R, Nt, 1.0f, a->ddtr, Di, l->dbc, nbc, 1.0f, gw->dt_w, R));
	for (int t = 0; gw && t < Nt; t++) {
		const float *g = a->ddtr + (size_t)t * Di;
		for (int c = 0; c < Di; c++)
			gw->dt_b[c] += g[c];
	}
	/* x_proj */
	CK(train_linear_backward(a->dxs, GW(x_proj), NULL, a->ddbc, l->xs, w->x_proj, Nt, Di, nbc));
	CK(mamba_lora_backward(m, li, MAMBA_LORA_X, Nt, l->xs, Di, a->ddbc, NULL, nbc, a->dxs, Di));
	/* SiLU and the conv */
	memset(a->dxc, 0, nd * sizeof(float));
	CK(train_silu_backward(a->dxc, l->xc, a->dxs, nd));
	memset(a->dx, 0, nd * sizeof(float));
	CK(train_conv1d_causal_backward(a->dx, GW(conv_w), GW(conv_b), a->dxc, l->x, w->conv_w, B, T,
	                                Di, d->K));
	/* in_proj */
	memset(a->du, 0, (size_t)Nt * D * sizeof(float));
	CK(train_linear_backward(a->du, GW(in_proj), NULL, a->dx, l->u, w->in_proj, Nt, D, Di));
	CK(train_linear_backward(a->du, gw ? gw->in_proj + (size_t)Di * D : NULL, NULL, a->dz, l->u,
	                         w->in_proj + (size_t)Di * D, Nt, D, Di));
	CK(mamba_lora_backward(m, li, MAMBA_LORA_IN, Nt, l->u, D, a->dx, a->dz, Di, a->du, D));
	/* the norm; the residual passes dres through unchanged */
	CK(train_rmsnorm_backward(a->dres, GW(norm), a->du, l->res, w->norm, l->rstd, Nt, D));
	return TRAIN_OK;
#undef GW
}

/* From dlogits (may be a.logits itself) and/or dhidden down to the embedding. */
static int backward_tail(mamba_model *m, const int32_t *ids, const float *dlogits,
                         const float *dhidden, int B, int T)
{
	const mamba_dims *d = &m->d;
	int rc, Nt = B * T;
	acts a;
	acts_layout(d, B, T, m->ackpt, m->acts, &a);
	memset(a.dhf, 0, (size_t)Nt * d->D * sizeof(float));
	int frozen = !m->grads;
	if (dlogits)
		CK(train_linear_backward(a.dhf, frozen ? NULL : m->g.emb, NULL, dlogits, a.hf, m->w.emb, Nt,
		                         d->D, d->V));
	if (dhidden)
		for (size_t i = 0; i < (size_t)Nt * d->D; i++)
			a.dhf[i] += dhidden[i];
	memset(a.dres, 0, (size_t)Nt * d->D * sizeof(float));
	CK(train_rmsnorm_backward(a.dres, frozen ? NULL : m->g.norm_f, a.dhf, a.resf, m->w.norm_f,
	                          a.rstdf, Nt, d->D));
	for (int i = d->n_layers - 1; i >= 0; i--) {
		/* checkpointing: the layer again from its kept input, the same
		 * kernels on the same values (the same bits); its output (already
		 * kept as the next layer's input) goes to du, scratch until the
		 * backward's in_proj step */
		if (m->ackpt) {
			/* adapters' dropout: the masks of the forward, drawn again */
			train_rng keep;
			if (m->lora) {
				keep = m->lora->rng;
				m->lora->rng = m->lora->rng_at[i];
			}
			rc = block_forward(m, i, &m->w.layer[i], &a.l[i], a.du, B, T);
			if (m->lora)
				m->lora->rng = keep;
			if (rc)
				return rc;
		}
		CK(block_backward(m, i, &m->w.layer[i], frozen ? NULL : &m->g.layer[i], &a.l[i], &a, B, T));
	}
	if (!frozen)
		CK(train_embedding_backward(m->g.emb, a.dres, ids, Nt, d->D, d->V));
	return TRAIN_OK;
}

int mamba_backward(mamba_model *m, const int32_t *ids, const int32_t *targets, int B, int T,
                   float scale)
{
	const mamba_dims *d = &m->d;
	int rc, Nt = B * T;
	if ((!m->grads && !m->lora) || !m->acts || m->ab != B || m->at != T || !targets)
		return TRAIN_EINVAL;
	acts a;
	acts_layout(d, B, T, m->ackpt, m->acts, &a);
	float *dlogits = a.logits; /* the logits are not needed any more */
	memset(dlogits, 0, (size_t)Nt * d->V * sizeof(float));
	CK(train_cross_entropy_backward(dlogits, a.probs, targets, Nt, d->V, 0.0f, scale));
	return backward_tail(m, ids, dlogits, NULL, B, T);
}

int mamba_backward_from(mamba_model *m, const int32_t *ids, const float *dlogits,
                        const float *dhidden, int B, int T)
{
	if ((!m->grads && !m->lora) || !m->acts || m->ab != B || m->at != T || !ids)
		return TRAIN_EINVAL;
	return backward_tail(m, ids, dlogits, dhidden, B, T);
}

/* ------------------------------------------------------------------------ */
/* the recurrent form */

int mamba_state_create(const mamba_model *m, mamba_state *st)
{
	const mamba_dims *d = &m->d;
	memset(st, 0, sizeof *st);
	st->conv = falloc((size_t)d->n_layers * (d->K - 1) * d->Di);
	st->ssm = falloc((size_t)d->n_layers * d->Di * d->NS);
	st->buf = falloc((size_t)4 * d->D + 6 * (size_t)d->Di + d->R + 2 * d->NS);
	st->logits = falloc((size_t)d->V);
	if (!st->conv || !st->ssm || !st->buf || !st->logits) {
		mamba_state_free(st);
		return TRAIN_ENOMEM;
	}
	return TRAIN_OK;
}

void mamba_state_free(mamba_state *st)
{
	free(st->conv);
	free(st->ssm);
	free(st->buf);
	free(st->logits);
	memset(st, 0, sizeof *st);
}

/* out (n) = W (n, k) x (k) (+ b) */
static void matvec(float *out, const float *Wm, const float *x, const float *b, int n, int k)
{
	for (int i = 0; i < n; i++) {
		const float *r = Wm + (size_t)i * k;
		float s = 0.0f;
		for (int j = 0; j < k; j++)
			s += r[j] * x[j];
		out[i] = b ? s + b[i] : s;
	}
}

static void rmsnorm_vec(float *out, const float *x, const float *w, int n)
{
	float ss = 0.0f;
	for (int i = 0; i < n; i++)
		ss += x[i] * x[i];
	float r = 1.0f / sqrtf(ss / (float)n + RMS_EPS);
	for (int i = 0; i < n; i++)
		out[i] = x[i] * r * w[i];
}

static float silu1(float x)
{
	return x / (1.0f + expf(-x));
}

int mamba_step(const mamba_model *m, mamba_state *st, int32_t token)
{
	const mamba_dims *d = &m->d;
	int D = d->D, Di = d->Di, NS = d->NS, R = d->R, K = d->K, nbc = R + 2 * NS;
	if (token < 0 || token >= d->V)
		return TRAIN_EINVAL;
	float *h = st->buf, *u = h + D, *x = u + D, *z = x + Di, *xs = z + Di, *dt = xs + Di,
	      *y = dt + Di, *dbc = y + Di, *o = dbc + nbc;
	memcpy(h, m->w.emb + (size_t)token * D, (size_t)D * sizeof *h);
	for (int i = 0; i < d->n_layers; i++) {
		const mamba_layer_w *w = &m->w.layer[i];
		float *cs = st->conv + (size_t)i * (K - 1) * Di, *ss = st->ssm + (size_t)i * Di * NS;
		rmsnorm_vec(u, h, w->norm, D);
		matvec(x, w->in_proj, u, NULL, Di, D);
		matvec(z, w->in_proj + (size_t)Di * D, u, NULL, Di, D);
		/* conv over the K-1 kept inputs and this one */
		for (int c = 0; c < Di; c++) {
			const float *wc = w->conv_w + (size_t)c * K;
			float s = w->conv_b[c];
			for (int k = 0; k < K - 1; k++)
				s += wc[k] * cs[(size_t)k * Di + c];
			s += wc[K - 1] * x[c];
			xs[c] = silu1(s);
		}
		memmove(cs, cs + Di, (size_t)(K - 2) * Di * sizeof *cs);
		memcpy(cs + (size_t)(K - 2) * Di, x, (size_t)Di * sizeof *cs);
		matvec(dbc, w->x_proj, xs, NULL, nbc, Di);
		matvec(dt, w->dt_w, dbc, w->dt_b, Di, R);
		const float *Bv = dbc + R, *Cv = dbc + R + NS;
		for (int c = 0; c < Di; c++) {
			float delta = mamba_softplus(dt[c]);
			float acc = 0.0f;
			for (int n = 0; n < NS; n++) {
				float a = -expf(w->A_log[(size_t)c * NS + n]);
				float *s = &ss[(size_t)c * NS + n];
				*s = expf(delta * a) * *s + delta * Bv[n] * xs[c];
				acc += *s * Cv[n];
			}
			y[c] = (acc + w->Dp[c] * xs[c]) * silu1(z[c]);
		}
		matvec(o, w->out_proj, y, NULL, D, Di);
		for (int c = 0; c < D; c++)
			h[c] += o[c];
	}
	rmsnorm_vec(u, h, m->w.norm_f, D);
	matvec(st->logits, m->w.emb, u, NULL, d->V, D);
	return TRAIN_OK;
}
