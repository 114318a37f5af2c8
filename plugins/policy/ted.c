/*
 * plugins/policy/ted.c - TEDPolicy (issue 6): a transformer over the
 * dialogue history that predicts the next action, in the manner of Rasa's
 * TED (Vlasov et al. 2019, rasa/core/policies/ted_policy.py).
 *
 * Each state (dialogue.c) becomes one multi-hot vector: the intent, the
 * featurized entity labels, the user's words (hashed, only when the
 * stories have end-to-end turns), the previous action, the active loop,
 * and the slots' feature values.  A training example is the last
 * max_history states before an action of a story (duplicates removed)
 * and the action.
 *
 *   x (B, T, F) --linear--> (B, T, C) * sqrt(C) + sinusoidal positions, dropout
 *   --> L pre-norm transformer blocks with causal attention (NH heads;
 *       MLP of 4C with GELU) --> layer norm
 *   --> the last state's vector (B, C) --linear--> dialogue embedding (B, E)
 *   --> dot product with the action embeddings (A, E) --> softmax over A
 *
 * Loss: softmax cross-entropy over all actions (Rasa samples negatives;
 * with a few hundred actions the full softmax is cheaper than sampling).
 * Optimizer: AdamW (regularization_constant as its decay), the batch size
 * growing linearly from batch_size[0] to batch_size[1] over the epochs,
 * examples shuffled by a generator seeded with random_seed.  The same
 * seed, data and kernel thread count give the same weights, bit for bit.
 * Finetuning (train on a loaded model) continues from the loaded weights
 * when the vocabulary and sizes are unchanged, else starts afresh.
 *
 * Legend: B batch, T time (states), F input features, C transformer_size,
 * NH heads, E embedding_dimension, A actions, N = B*T, L layers.
 *
 * Left out: Rasa's separate feed-forward towers per attribute, entity
 * recognition, text features from the NLU pipeline (end-to-end turns use
 * hashed words), sampled negatives and margin losses, relative
 * attention, the "balanced" batch strategy, evaluation during training.
 */
#include "policy.h"

#include <train/kernels.h>
#include <train/nn.h>
#include <train/optim.h>
#include <train/tensor.h>

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TEXT_BUCKETS 64

/* ------------------------------------------------------------------------ */
/* parameters: one flat array, tensors are views */

typedef struct tlayer {
	float *ln1w, *ln1b;   /* (C) (C) */
	float *qkvw, *qkvb;   /* (3C, C) (3C) */
	float *projw, *projb; /* (C, C) (C) */
	float *ln2w, *ln2b;   /* (C) (C) */
	float *fcw, *fcb;     /* (4C, C) (4C) */
	float *fcpw, *fcpb;   /* (C, 4C) (C) */
} tlayer;

typedef struct tparams {
	float *inw, *inb;     /* (C, F) (C) */
	tlayer *layer;        /* L */
	float *lnfw, *lnfb;   /* (C) (C) */
	float *embw, *embb;   /* (E, C) (E) */
	float *labw;          /* (A, E) */
} tparams;

/* One named tensor of the layout: init says how to fill it. */
enum { INIT_GLOROT, INIT_ZERO, INIT_ONE };

typedef struct tslot {
	char name[48];
	int64_t rows, cols;   /* cols 0: a vector of `rows` */
	size_t off;
	int init;
} tslot;

struct ted {
	ted_cfg cfg;
	int F, C, E, A, T, L, NH;
	int trained;                /* 0: no training data, predicts nothing */
	/* the vocabulary and where each part starts in x */
	const char **intents, **ents, **forms, **slots;
	size_t n_intents, n_ents, n_forms, n_slots;
	int *slot_dims, *slot_off;
	int text_buckets;
	int off_intent, off_ent, off_text, off_action, off_loop, off_slot;
	prule_only ro;
	/* weights */
	float *params;              /* n_params, from the param arena */
	size_t n_params;
	tparams p;
	tslot *layout;
	size_t n_layout;
	train_arena *arena;         /* params; during training also grads and moments */
	float *pos;                 /* (T, C) sinusoidal positions */
	double train_acc;
	ppool pool;
};

static void layout_add(ted *t, size_t *k, size_t *off, const char *name, int64_t rows, int64_t cols,
                       int init)
{
	if (t->layout) {
		tslot *s = &t->layout[*k];
		snprintf(s->name, sizeof s->name, "%s", name);
		s->rows = rows;
		s->cols = cols;
		s->off = *off;
		s->init = init;
	}
	(*k)++;
	*off += (size_t)rows * (size_t)(cols ? cols : 1);
}

/* Fill t->layout (when set) and count tensors and floats. */
static void layout_build(ted *t, size_t *n_tensors, size_t *n_floats)
{
	size_t k = 0, off = 0;
	int64_t C = t->C;
	char name[48];
	layout_add(t, &k, &off, "input.weight", C, t->F, INIT_GLOROT);
	layout_add(t, &k, &off, "input.bias", C, 0, INIT_ZERO);
	for (int l = 0; l < t->L; l++) {
#define L_ADD(suffix, r, c, init) \
	snprintf(name, sizeof name, "layers.%d.%s", l, suffix); \
	layout_add(t, &k, &off, name, r, c, init)
		L_ADD("ln1.weight", C, 0, INIT_ONE);
		L_ADD("ln1.bias", C, 0, INIT_ZERO);
		L_ADD("attn.qkv.weight", 3 * C, C, INIT_GLOROT);
		L_ADD("attn.qkv.bias", 3 * C, 0, INIT_ZERO);
		L_ADD("attn.proj.weight", C, C, INIT_GLOROT);
		L_ADD("attn.proj.bias", C, 0, INIT_ZERO);
		L_ADD("ln2.weight", C, 0, INIT_ONE);
		L_ADD("ln2.bias", C, 0, INIT_ZERO);
		L_ADD("mlp.fc.weight", 4 * C, C, INIT_GLOROT);
		L_ADD("mlp.fc.bias", 4 * C, 0, INIT_ZERO);
		L_ADD("mlp.proj.weight", C, 4 * C, INIT_GLOROT);
		L_ADD("mlp.proj.bias", C, 0, INIT_ZERO);
#undef L_ADD
	}
	layout_add(t, &k, &off, "ln_f.weight", C, 0, INIT_ONE);
	layout_add(t, &k, &off, "ln_f.bias", C, 0, INIT_ZERO);
	layout_add(t, &k, &off, "embed.weight", t->E, C, INIT_GLOROT);
	layout_add(t, &k, &off, "embed.bias", t->E, 0, INIT_ZERO);
	layout_add(t, &k, &off, "label.weight", t->A, t->E, INIT_GLOROT);
	*n_tensors = k;
	*n_floats = off;
}

/* Point the views of `p` into `base` (same order as the layout). */
static void point(const ted *t, float *base, tparams *p)
{
	size_t k = 0;
	const tslot *s = t->layout;
#define NEXT() (base + s[k++].off)
	p->inw = NEXT();
	p->inb = NEXT();
	for (int l = 0; l < t->L; l++) {
		tlayer *y = &p->layer[l];
		y->ln1w = NEXT();
		y->ln1b = NEXT();
		y->qkvw = NEXT();
		y->qkvb = NEXT();
		y->projw = NEXT();
		y->projb = NEXT();
		y->ln2w = NEXT();
		y->ln2b = NEXT();
		y->fcw = NEXT();
		y->fcb = NEXT();
		y->fcpw = NEXT();
		y->fcpb = NEXT();
	}
	p->lnfw = NEXT();
	p->lnfb = NEXT();
	p->embw = NEXT();
	p->embb = NEXT();
	p->labw = NEXT();
#undef NEXT
}

static int alloc_params(ted *t)
{
	size_t nt, nf;
	layout_build(t, &nt, &nf);
	t->layout = pp_alloc(&t->pool, nt * sizeof *t->layout);
	t->p.layer = pp_alloc(&t->pool, ((size_t)t->L + 1) * sizeof *t->p.layer);
	t->pos = pp_alloc(&t->pool, (size_t)t->T * (size_t)t->C * sizeof *t->pos);
	if (!t->layout || !t->p.layer || !t->pos)
		return TRAIN_ENOMEM;
	layout_build(t, &t->n_layout, &t->n_params);
	int rc = train_arena_create(0, &t->arena);
	if (rc)
		return rc;
	t->params = train_arena_alloc(t->arena, t->n_params * sizeof *t->params);
	if (!t->params)
		return TRAIN_ENOMEM;
	point(t, t->params, &t->p);
	/* sin at even, cos at odd channels (Vaswani et al.) */
	for (int p = 0; p < t->T; p++)
		for (int c = 0; c < t->C; c++) {
			double rate = pow(10000.0, -(double)(c & ~1) / t->C);
			t->pos[(size_t)p * (size_t)t->C + (size_t)c] =
				(float)(c & 1 ? cos(p * rate) : sin(p * rate));
		}
	return TRAIN_OK;
}

static void init_params(ted *t, train_rng *rng)
{
	for (size_t k = 0; k < t->n_layout; k++) {
		const tslot *s = &t->layout[k];
		float *w = t->params + s->off;
		size_t n = (size_t)s->rows * (size_t)(s->cols ? s->cols : 1);
		if (s->init == INIT_GLOROT) {
			float lim = (float)sqrt(6.0 / (double)(s->rows + s->cols));
			train_rng_fill_uniform(rng, w, n, -lim, lim);
		} else {
			for (size_t i = 0; i < n; i++)
				w[i] = s->init == INIT_ONE ? 1.0f : 0.0f;
		}
	}
}

/* ------------------------------------------------------------------------ */
/* features */

static uint32_t fnv1a(const char *s, size_t n)
{
	uint32_t h = 2166136261u;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)tolower((unsigned char)s[i]);
		h *= 16777619u;
	}
	return h;
}

/* Sparse features of one state: indices into x and values; returns the count. */
static int featurize(const ted *t, const pdomain *pd, const pstate *s, int *idx, float *val)
{
	int n = 0;
	long i;
	if (s->intent && (i = pdomain_sorted_find(t->intents, t->n_intents, s->intent)) >= 0)
		idx[n] = t->off_intent + (int)i, val[n++] = 1;
	for (size_t k = 0; k < s->n_ents; k++)
		if ((i = pdomain_sorted_find(t->ents, t->n_ents, s->ents[k])) >= 0)
			idx[n] = t->off_ent + (int)i, val[n++] = 1;
	if (s->text && t->text_buckets) {
		const char *p = s->text;
		while (*p) {
			while (*p && !isalnum((unsigned char)*p) && !((unsigned char)*p & 0x80))
				p++;
			const char *w = p;
			while (*p && (isalnum((unsigned char)*p) || ((unsigned char)*p & 0x80)))
				p++;
			if (p > w && n < 4096)
				idx[n] = t->off_text + (int)(fnv1a(w, (size_t)(p - w)) % TEXT_BUCKETS), val[n++] = 1;
		}
	}
	if ((i = pdomain_action(pd, s->act_name ? s->act_name : s->act_text)) >= 0)
		idx[n] = t->off_action + (int)i, val[n++] = 1;
	if (s->loop && (i = pdomain_sorted_find(t->forms, t->n_forms, s->loop)) >= 0)
		idx[n] = t->off_loop + (int)i, val[n++] = 1;
	for (size_t k = 0; k < s->n_slots; k++) {
		const pslotf *f = &s->slots[k];
		if (f->snb || (i = pdomain_sorted_find(t->slots, t->n_slots, f->name)) < 0)
			continue;
		for (int d = 0; d < f->nf && d < t->slot_dims[i]; d++)
			if (f->f[d] != 0)
				idx[n] = t->off_slot + t->slot_off[i] + d, val[n++] = (float)f->f[d];
	}
	return n;
}

static int max_features(const ted *t, const pstate *s)
{
	size_t n = 4 + s->n_ents + (s->text ? strlen(s->text) / 2 + 1 : 0);
	for (size_t k = 0; k < s->n_slots; k++)
		n += (size_t)s->slots[k].nf;
	(void)t;
	return (int)(n < 4096 ? n : 4096);
}

/* Lay out the input vector once the vocabulary is known. */
static void set_offsets(ted *t, const pdomain *pd)
{
	int o = 0;
	t->off_intent = o, o += (int)t->n_intents;
	t->off_ent = o, o += (int)t->n_ents;
	t->off_text = o, o += t->text_buckets;
	t->off_action = o, o += (int)pd->n_actions;
	t->off_loop = o, o += (int)t->n_forms;
	t->off_slot = o;
	for (size_t i = 0; i < t->n_slots; i++)
		t->slot_off[i] = o - t->off_slot, o += t->slot_dims[i];
	t->F = o > 0 ? o : 1;
	t->A = (int)pd->n_actions;
}

/* ------------------------------------------------------------------------ */
/* the forward and backward passes */

typedef struct tacts {
	float *x;           /* (N, F) */
	float *h0;          /* (N, C) before dropout */
	uint8_t *mask;      /* (N*C) dropout mask, NULL without dropout */
	float **res;        /* L+1 of (N, C): res[0] after dropout, res[l+1] after block l */
	float **ln1, **mean1, **rstd1, **qkv, **atty, **att, **attp, **mid;
	float **ln2, **mean2, **rstd2, **fch, **fchg, **fcp;
	float *lnf, *meanf, *rstdf; /* (N, C) (N) (N) */
	float *g;           /* (B, C) the last state of each row */
	float *e;           /* (B, E) */
	float *logits, *probs; /* (B, A) */
} tacts;

#define AALLOC(ptr, count) \
	do { \
		(ptr) = train_arena_alloc(ar, (size_t)(count) * sizeof *(ptr)); \
		if (!(ptr)) \
			return TRAIN_ENOMEM; \
	} while (0)

static int acts_alloc(const ted *t, train_arena *ar, tacts *a, int B, int T, int dropout)
{
	size_t N = (size_t)B * (size_t)T, C = (size_t)t->C, L = (size_t)t->L;
	memset(a, 0, sizeof *a);
	AALLOC(a->x, N * (size_t)t->F);
	AALLOC(a->h0, N * C);
	if (dropout)
		AALLOC(a->mask, N * C);
	float ***lists[] = { &a->res, &a->ln1, &a->mean1, &a->rstd1, &a->qkv, &a->atty, &a->att,
	                     &a->attp, &a->mid, &a->ln2, &a->mean2, &a->rstd2, &a->fch, &a->fchg,
	                     &a->fcp };
	for (size_t i = 0; i < sizeof lists / sizeof *lists; i++)
		AALLOC(*lists[i], L + 1);
	AALLOC(a->res[0], N * C);
	for (size_t l = 0; l < L; l++) {
		AALLOC(a->res[l + 1], N * C);
		AALLOC(a->ln1[l], N * C);
		AALLOC(a->mean1[l], N);
		AALLOC(a->rstd1[l], N);
		AALLOC(a->qkv[l], N * 3 * C);
		AALLOC(a->atty[l], N * C);
		AALLOC(a->att[l], (size_t)B * (size_t)t->NH * (size_t)T * (size_t)T);
		AALLOC(a->attp[l], N * C);
		AALLOC(a->mid[l], N * C);
		AALLOC(a->ln2[l], N * C);
		AALLOC(a->mean2[l], N);
		AALLOC(a->rstd2[l], N);
		AALLOC(a->fch[l], N * 4 * C);
		AALLOC(a->fchg[l], N * 4 * C);
		AALLOC(a->fcp[l], N * C);
	}
	AALLOC(a->lnf, N * C);
	AALLOC(a->meanf, N);
	AALLOC(a->rstdf, N);
	AALLOC(a->g, (size_t)B * C);
	AALLOC(a->e, (size_t)B * (size_t)t->E);
	AALLOC(a->logits, (size_t)B * (size_t)t->A);
	AALLOC(a->probs, (size_t)B * (size_t)t->A);
	return TRAIN_OK;
}

#define CK(call) \
	do { \
		int rc_ = (call); \
		if (rc_) \
			return rc_; \
	} while (0)

/* x must be filled; lens (B) are the rows' lengths (1..T). */
static int forward(const ted *t, const tparams *p, tacts *a, int B, int T, const int *lens,
                   train_rng *rng)
{
	int C = t->C, N = B * T;
	size_t NC = (size_t)N * (size_t)C;
	CK(train_linear_forward(a->h0, a->x, p->inw, p->inb, N, t->F, C));
	/* scaled by sqrt(C) before the positions are added, as Vaswani et al.
	 * (and Rasa's TransformerEncoder) do, so that positions do not drown
	 * the input */
	float scale = sqrtf((float)C);
	for (int b = 0; b < B; b++)
		for (int s = 0; s < T; s++) {
			float *h = a->h0 + ((size_t)b * (size_t)T + (size_t)s) * (size_t)C;
			const float *ps = t->pos + (size_t)s * (size_t)C;
			for (int c = 0; c < C; c++)
				h[c] = h[c] * scale + ps[c];
		}
	if (a->mask)
		CK(train_dropout_forward(a->res[0], a->mask, a->h0, NC, (float)t->cfg.drop_rate, rng));
	else
		memcpy(a->res[0], a->h0, NC * sizeof(float));
	for (int l = 0; l < t->L; l++) {
		const tlayer *y = &p->layer[l];
		CK(train_layernorm_forward(a->ln1[l], a->mean1[l], a->rstd1[l], a->res[l], y->ln1w,
		                           y->ln1b, N, C, 1e-5f));
		CK(train_linear_forward(a->qkv[l], a->ln1[l], y->qkvw, y->qkvb, N, C, 3 * C));
		CK(train_attention_forward(a->atty[l], a->att[l], a->qkv[l], NULL, B, T, C, t->NH, 1));
		CK(train_linear_forward(a->attp[l], a->atty[l], y->projw, y->projb, N, C, C));
		CK(train_residual_forward(a->mid[l], a->res[l], a->attp[l], NC));
		CK(train_layernorm_forward(a->ln2[l], a->mean2[l], a->rstd2[l], a->mid[l], y->ln2w,
		                           y->ln2b, N, C, 1e-5f));
		CK(train_linear_forward(a->fch[l], a->ln2[l], y->fcw, y->fcb, N, C, 4 * C));
		CK(train_gelu_forward(a->fchg[l], a->fch[l], NC * 4));
		CK(train_linear_forward(a->fcp[l], a->fchg[l], y->fcpw, y->fcpb, N, 4 * C, C));
		CK(train_residual_forward(a->res[l + 1], a->mid[l], a->fcp[l], NC));
	}
	CK(train_layernorm_forward(a->lnf, a->meanf, a->rstdf, a->res[t->L], p->lnfw, p->lnfb, N, C,
	                           1e-5f));
	for (int b = 0; b < B; b++)
		memcpy(a->g + (size_t)b * (size_t)C,
		       a->lnf + ((size_t)b * (size_t)T + (size_t)(lens[b] - 1)) * (size_t)C,
		       (size_t)C * sizeof(float));
	CK(train_linear_forward(a->e, a->g, p->embw, p->embb, B, C, t->E));
	CK(train_linear_forward(a->logits, a->e, p->labw, NULL, B, t->E, t->A));
	return TRAIN_OK;
}

/* Gradients of the mean cross-entropy into g (which starts at zero). */
static int backward(const ted *t, const tparams *p, const tparams *g, const tacts *a,
                    train_arena *ar, int B, int T, const int *lens, const int32_t *labels)
{
	int C = t->C, N = B * T, L = t->L;
	size_t NC = (size_t)N * (size_t)C;
	float *dlogits, *de, *dg, *dlnf, *dh0;
	AALLOC(dlogits, (size_t)B * (size_t)t->A);
	AALLOC(de, (size_t)B * (size_t)t->E);
	AALLOC(dg, (size_t)B * (size_t)C);
	AALLOC(dlnf, NC);
	AALLOC(dh0, NC);
	float **dres, **dmid;
	AALLOC(dres, (size_t)L + 1);
	AALLOC(dmid, (size_t)L + 1);
	for (int l = 0; l <= L; l++) {
		AALLOC(dres[l], NC);
		AALLOC(dmid[l], NC);
	}
	float *dln, *dqkv, *datty, *dfch, *dfchg;
	AALLOC(dln, NC);
	AALLOC(dqkv, NC * 3);
	AALLOC(datty, NC);
	AALLOC(dfch, NC * 4);
	AALLOC(dfchg, NC * 4);

	CK(train_cross_entropy_backward(dlogits, a->probs, labels, B, t->A, 0.0f, 1.0f));
	CK(train_linear_backward(de, g->labw, NULL, dlogits, a->e, p->labw, B, t->E, t->A));
	CK(train_linear_backward(dg, g->embw, g->embb, de, a->g, p->embw, B, C, t->E));
	for (int b = 0; b < B; b++)
		memcpy(dlnf + ((size_t)b * (size_t)T + (size_t)(lens[b] - 1)) * (size_t)C,
		       dg + (size_t)b * (size_t)C, (size_t)C * sizeof(float));
	CK(train_layernorm_backward(dres[L], g->lnfw, g->lnfb, dlnf, a->res[L], p->lnfw, a->meanf,
	                            a->rstdf, N, C));
	for (int l = L - 1; l >= 0; l--) {
		const tlayer *y = &p->layer[l];
		tlayer *gy = &g->layer[l];
		/* res[l+1] = mid + fcp */
		CK(train_residual_backward(dmid[l], NULL, dres[l + 1], NC));
		memset(dfchg, 0, NC * 4 * sizeof(float));
		memset(dfch, 0, NC * 4 * sizeof(float));
		memset(dln, 0, NC * sizeof(float));
		CK(train_linear_backward(dfchg, gy->fcpw, gy->fcpb, dres[l + 1], a->fchg[l], y->fcpw, N,
		                         4 * C, C));
		CK(train_gelu_backward(dfch, a->fch[l], dfchg, NC * 4));
		CK(train_linear_backward(dln, gy->fcw, gy->fcb, dfch, a->ln2[l], y->fcw, N, C, 4 * C));
		CK(train_layernorm_backward(dmid[l], gy->ln2w, gy->ln2b, dln, a->mid[l], y->ln2w,
		                            a->mean2[l], a->rstd2[l], N, C));
		/* mid = res[l] + attp */
		CK(train_residual_backward(dres[l], NULL, dmid[l], NC));
		memset(datty, 0, NC * sizeof(float));
		memset(dqkv, 0, NC * 3 * sizeof(float));
		memset(dln, 0, NC * sizeof(float));
		CK(train_linear_backward(datty, gy->projw, gy->projb, dmid[l], a->atty[l], y->projw, N, C,
		                         C));
		CK(train_attention_backward(dqkv, datty, a->qkv[l], a->att[l], B, T, C, t->NH));
		CK(train_linear_backward(dln, gy->qkvw, gy->qkvb, dqkv, a->ln1[l], y->qkvw, N, C, 3 * C));
		CK(train_layernorm_backward(dres[l], gy->ln1w, gy->ln1b, dln, a->res[l], y->ln1w,
		                            a->mean1[l], a->rstd1[l], N, C));
	}
	if (a->mask)
		CK(train_dropout_backward(dh0, dres[0], a->mask, NC, (float)t->cfg.drop_rate));
	else
		memcpy(dh0, dres[0], NC * sizeof(float));
	float scale = sqrtf((float)C);
	for (size_t i = 0; i < NC; i++)
		dh0[i] *= scale;
	CK(train_linear_backward(NULL, g->inw, g->inb, dh0, a->x, p->inw, N, t->F, C));
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------ */
/* training data */

typedef struct texample {
	int len;              /* states */
	int32_t label;
	size_t first;         /* index of its first state in the state store */
} texample;

typedef struct tdata {
	texample *ex;
	size_t n, cap;
	size_t *st_start;     /* per state: start in idx/val; one more at the end */
	size_t n_st, cap_st;
	int *idx;
	float *val;
	size_t n_f, cap_f;
} tdata;

static void tdata_free(tdata *d)
{
	free(d->ex);
	free(d->st_start);
	free(d->idx);
	free(d->val);
	memset(d, 0, sizeof *d);
}

static int tdata_state(tdata *d, const int *idx, const float *val, int n)
{
	if (d->n_st + 2 > d->cap_st) {
		size_t cap = d->cap_st ? d->cap_st * 2 : 1024;
		size_t *s = realloc(d->st_start, cap * sizeof *s);
		if (!s)
			return TRAIN_ENOMEM;
		d->st_start = s;
		d->cap_st = cap;
	}
	if (d->n_f + (size_t)n > d->cap_f) {
		size_t cap = d->cap_f ? d->cap_f * 2 : 4096;
		while (cap < d->n_f + (size_t)n)
			cap *= 2;
		int *i2 = realloc(d->idx, cap * sizeof *i2);
		if (!i2)
			return TRAIN_ENOMEM;
		d->idx = i2;
		float *v2 = realloc(d->val, cap * sizeof *v2);
		if (!v2)
			return TRAIN_ENOMEM;
		d->val = v2;
		d->cap_f = cap;
	}
	d->st_start[d->n_st++] = d->n_f;
	if (n > 0) { /* an empty state may come with NULL arrays */
		memcpy(d->idx + d->n_f, idx, (size_t)n * sizeof *idx);
		memcpy(d->val + d->n_f, val, (size_t)n * sizeof *val);
	}
	d->n_f += (size_t)n;
	d->st_start[d->n_st] = d->n_f;
	return TRAIN_OK;
}

/* Dense rows for states [first, first+len) into x at row `row0` (T wide). */
static void densify(const ted *t, const tdata *d, const texample *e, float *x, size_t row)
{
	for (int s = 0; s < e->len; s++) {
		float *r = x + (row + (size_t)s) * (size_t)t->F;
		size_t st = e->first + (size_t)s;
		for (size_t k = d->st_start[st]; k < d->st_start[st + 1]; k++)
			r[d->idx[k]] = d->val[k];
	}
}

typedef struct exkey {
	char *key;
	size_t i;
} exkey;

static int cmp_exkey(const void *a, const void *b)
{
	const exkey *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : x->i < y->i ? -1 : x->i > y->i;
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_size(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	return x < y ? -1 : x > y;
}

/* The vocabulary from the domain and what the stories use. */
static int vocabulary(ted *t, const pdomain *pd, const pdialog *dl, size_t n)
{
	ppool *P = &t->pool;
	size_t ci = pd->n_intents, ce = pd->n_entity_labels, cf = pd->n_forms;
	int text = 0, rc = TRAIN_OK;
	pstate_opts o = { 0 };
	o.drop_slots = t->ro.slots, o.n_drop_slots = t->ro.n_slots;
	o.drop_loops = t->ro.loops, o.n_drop_loops = t->ro.n_loops;
	/* first pass: sizes; second: names */
	for (int pass = 0; pass < 2 && !rc; pass++) {
		if (pass) {
			t->intents = pp_alloc(P, (ci + 1) * sizeof *t->intents);
			t->ents = pp_alloc(P, (ce + 1) * sizeof *t->ents);
			t->forms = pp_alloc(P, (cf + 1) * sizeof *t->forms);
			if (!t->intents || !t->ents || !t->forms)
				return TRAIN_ENOMEM;
			for (size_t i = 0; i < pd->n_intents; i++)
				t->intents[t->n_intents++] = pd->intents[i];
			for (size_t i = 0; i < pd->n_entity_labels; i++)
				t->ents[t->n_ents++] = pd->entity_labels[i];
			for (size_t i = 0; i < pd->n_forms; i++)
				t->forms[t->n_forms++] = pd->forms[i];
		}
		for (size_t i = 0; i < n && !rc; i++) {
			if (dl[i].is_rule)
				continue;
			ppool tmp = { 0 };
			pstate *st;
			size_t ns;
			rc = dialog_states(pd, &dl[i], dl[i].n, &o, &tmp, &st, NULL, &ns);
			for (size_t k = 0; !rc && k < ns; k++) {
				const pstate *s = &st[k];
				text |= s->text != NULL;
				if (!pass) {
					ci += s->intent != NULL;
					ce += s->n_ents;
					cf += s->loop != NULL;
					continue;
				}
				if (s->intent && pdomain_sorted_find(pd->intents, pd->n_intents, s->intent) < 0)
					t->intents[t->n_intents++] = pp_strdup(P, s->intent);
				for (size_t e = 0; e < s->n_ents; e++)
					if (pdomain_sorted_find(pd->entity_labels, pd->n_entity_labels, s->ents[e]) < 0)
						t->ents[t->n_ents++] = pp_strdup(P, s->ents[e]);
				if (s->loop && strcmp(s->loop, SNB) &&
				    pdomain_sorted_find(pd->forms, pd->n_forms, s->loop) < 0)
					t->forms[t->n_forms++] = pp_strdup(P, s->loop);
			}
			pp_free(&tmp);
		}
	}
	if (rc || P->oom)
		return rc ? rc : TRAIN_ENOMEM;
	/* sort and drop duplicates */
	const char **lists[3] = { t->intents, t->ents, t->forms };
	size_t *ns[3] = { &t->n_intents, &t->n_ents, &t->n_forms };
	for (int k = 0; k < 3; k++) {
		size_t m = *ns[k];
		qsort(lists[k], m, sizeof *lists[k], cmp_strp);
		size_t u = m ? 1 : 0;
		for (size_t i = 1; i < m; i++)
			if (strcmp(lists[k][i], lists[k][u - 1]))
				lists[k][u++] = lists[k][i];
		*ns[k] = u;
	}
	/* slots that influence the conversation, by name */
	t->slots = pp_alloc(P, (pd->n_slots + 1) * sizeof *t->slots);
	t->slot_dims = pp_alloc(P, (pd->n_slots + 1) * sizeof *t->slot_dims);
	t->slot_off = pp_alloc(P, (pd->n_slots + 1) * sizeof *t->slot_off);
	if (!t->slots || !t->slot_dims || !t->slot_off)
		return TRAIN_ENOMEM;
	for (size_t k = 0; k < pd->n_slots; k++) {
		const pslot *s = &pd->slots[pd->slot_order[k]];
		if (!s->dims)
			continue;
		t->slots[t->n_slots] = s->name;
		t->slot_dims[t->n_slots++] = s->dims;
	}
	t->text_buckets = text ? TEXT_BUCKETS : 0;
	set_offsets(t, pd);
	return TRAIN_OK;
}

/* Examples: every predictable action of every story, deduplicated. */
static int examples(ted *t, const pdomain *pd, const pdialog *dl, size_t n, tdata *d)
{
	pstate_opts o = { 0 };
	o.drop_slots = t->ro.slots, o.n_drop_slots = t->ro.n_slots;
	o.drop_loops = t->ro.loops, o.n_drop_loops = t->ro.n_loops;
	int h = t->cfg.max_history;
	int rc = TRAIN_OK, maxlen = 1;
	exkey *keys = NULL;
	size_t nk = 0, capk = 0;
	pbuf b = { 0 };
	int *idx = NULL;
	float *val = NULL;
	int capf = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		if (dl[i].is_rule)
			continue;
		ppool tmp = { 0 };
		pstate *st;
		pturn *tu;
		size_t ns;
		rc = dialog_states(pd, &dl[i], dl[i].n, &o, &tmp, &st, &tu, &ns);
		/* the features of each state once */
		size_t base = d->n_st;
		for (size_t k = 0; !rc && k < ns; k++) {
			int need = max_features(t, &st[k]);
			if (need > capf) {
				capf = need * 2;
				int *i2 = realloc(idx, (size_t)capf * sizeof *idx);
				float *v2 = i2 ? realloc(val, (size_t)capf * sizeof *val) : NULL;
				if (i2)
					idx = i2;
				if (v2)
					val = v2;
				if (!i2 || !v2) {
					rc = TRAIN_ENOMEM;
					break;
				}
			}
			int nf = featurize(t, pd, &st[k], idx, val);
			rc = tdata_state(d, idx, val, nf);
		}
		for (size_t k = 0; !rc && k + 1 < ns; k++) {
			const pevent *e = &dl[i].ev[tu[k].event];
			long a = pdomain_action(pd, e->name ? e->name : e->text);
			if (e->unpredictable || a < 0)
				continue;
			size_t s0 = h > 0 && k + 1 > (size_t)h ? k + 1 - (size_t)h : 0;
			b.len = 0;
			state_key(&b, st + s0, k + 1 - s0);
			pb_printf(&b, "\x1f%ld", a);
			if (d->n == d->cap) {
				size_t cap = d->cap ? d->cap * 2 : 256;
				texample *x = realloc(d->ex, cap * sizeof *x);
				if (!x) {
					rc = TRAIN_ENOMEM;
					break;
				}
				d->ex = x;
				d->cap = cap;
			}
			if (nk == capk) {
				capk = capk ? capk * 2 : 256;
				exkey *x = realloc(keys, capk * sizeof *x);
				if (!x) {
					rc = TRAIN_ENOMEM;
					break;
				}
				keys = x;
			}
			keys[nk].key = b.oom ? NULL : strdup(b.d);
			keys[nk].i = d->n;
			if (!keys[nk++].key) {
				rc = TRAIN_ENOMEM;
				break;
			}
			texample *x = &d->ex[d->n++];
			x->len = (int)(k + 1 - s0);
			x->label = (int32_t)a;
			x->first = base + s0;
			if (x->len > maxlen)
				maxlen = x->len;
		}
		pp_free(&tmp);
	}
	/* drop duplicates (the first of each kept), keep the order */
	if (!rc && nk) {
		qsort(keys, nk, sizeof *keys, cmp_exkey);
		size_t *keep = malloc(nk * sizeof *keep), nkeep = 0;
		if (!keep)
			rc = TRAIN_ENOMEM;
		for (size_t i = 0; !rc && i < nk; i++)
			if (!i || strcmp(keys[i].key, keys[i - 1].key))
				keep[nkeep++] = keys[i].i;
		if (!rc) {
			qsort(keep, nkeep, sizeof *keep, cmp_size);
			for (size_t i = 0; i < nkeep; i++)
				d->ex[i] = d->ex[keep[i]];
			d->n = nkeep;
		}
		free(keep);
	}
	for (size_t i = 0; i < nk; i++)
		free(keys[i].key);
	free(keys);
	free(idx);
	free(val);
	pb_free(&b);
	t->T = h > 0 ? h : maxlen;
	return rc;
}

/* ------------------------------------------------------------------------ */
/* training */

static int batch_size_at(const ted_cfg *c, int epoch)
{
	if (c->epochs > 1)
		return (int)(c->batch_min + (double)epoch * (c->batch_max - c->batch_min) / (c->epochs - 1));
	return c->batch_min;
}

/* One pass of examples order[0..n) in batches: forward (and backward and a
 * step when `g` is given); counts correct argmaxes. */
static int run_batches(ted *t, const tdata *d, const size_t *order, size_t n, int bs,
                       train_arena *act, const tparams *g, float *grads, float *m, float *v,
                       int64_t *step, train_rng *rng, size_t *correct, double *loss_sum)
{
	int *lens = malloc((size_t)bs * sizeof *lens);
	int32_t *labels = malloc((size_t)bs * sizeof *labels);
	int rc = lens && labels ? TRAIN_OK : TRAIN_ENOMEM;
	train_adamw_cfg ac = train_adamw_defaults();
	ac.weight_decay = (float)t->cfg.weight_decay;
	size_t mark = train_arena_mark(act);
	for (size_t i0 = 0; !rc && i0 < n; i0 += (size_t)bs) {
		int B = (int)(n - i0 < (size_t)bs ? n - i0 : (size_t)bs), T = 1;
		for (int b = 0; b < B; b++) {
			const texample *e = &d->ex[order[i0 + (size_t)b]];
			lens[b] = e->len;
			labels[b] = e->label;
			if (e->len > T)
				T = e->len;
		}
		train_arena_reset(act, mark);
		tacts a;
		rc = acts_alloc(t, act, &a, B, T, g && t->cfg.drop_rate > 0);
		for (int b = 0; !rc && b < B; b++)
			densify(t, d, &d->ex[order[i0 + (size_t)b]], a.x, (size_t)b * (size_t)T);
		if (!rc)
			rc = forward(t, &t->p, &a, B, T, lens, rng);
		float loss = 0;
		if (!rc)
			rc = train_cross_entropy_forward(&loss, NULL, a.probs, a.logits, labels, B, t->A, 0);
		for (int b = 0; !rc && b < B; b++) {
			const float *pr = a.probs + (size_t)b * (size_t)t->A;
			int best = 0;
			for (int k = 1; k < t->A; k++)
				if (pr[k] > pr[best])
					best = k;
			*correct += best == labels[b];
		}
		*loss_sum += (double)loss * B;
		if (rc || !g)
			continue;
		memset(grads, 0, t->n_params * sizeof *grads);
		rc = backward(t, &t->p, g, &a, act, B, T, lens, labels);
		if (!rc)
			train_adamw_step(&ac, t->params, grads, m, v, t->n_params,
			                 (float)t->cfg.learning_rate, ++*step);
	}
	free(lens);
	free(labels);
	return rc;
}

/* Same inputs, sizes and vocabulary: `init`'s weights fit. */
static int same_shape(const ted *a, const ted *b)
{
	if (a->F != b->F || a->A != b->A || a->C != b->C || a->E != b->E || a->L != b->L ||
	    a->NH != b->NH || a->T != b->T || a->n_params != b->n_params ||
	    a->n_intents != b->n_intents || a->n_ents != b->n_ents || a->n_forms != b->n_forms ||
	    a->n_slots != b->n_slots || a->text_buckets != b->text_buckets)
		return 0;
	for (size_t i = 0; i < a->n_intents; i++)
		if (strcmp(a->intents[i], b->intents[i]))
			return 0;
	for (size_t i = 0; i < a->n_ents; i++)
		if (strcmp(a->ents[i], b->ents[i]))
			return 0;
	for (size_t i = 0; i < a->n_forms; i++)
		if (strcmp(a->forms[i], b->forms[i]))
			return 0;
	for (size_t i = 0; i < a->n_slots; i++)
		if (strcmp(a->slots[i], b->slots[i]) || a->slot_dims[i] != b->slot_dims[i])
			return 0;
	return 1;
}

int ted_train(const ted_cfg *cfg, const pdomain *pd, const pdialog *dl, size_t n, const ted *init,
              train_ctx *ctx, ted **out)
{
	*out = NULL;
	ted *t = calloc(1, sizeof *t);
	if (!t)
		return TRAIN_ENOMEM;
	t->cfg = *cfg;
	t->C = cfg->size;
	t->E = cfg->embed_dim;
	t->L = cfg->layers;
	t->NH = cfg->heads;
	tdata d = { 0 };
	train_arena *act = NULL;
	size_t *order = NULL;
	int rc = rule_only_find(pd, dl, n, &t->pool, &t->ro);
	if (!rc)
		rc = vocabulary(t, pd, dl, n);
	if (!rc)
		rc = examples(t, pd, dl, n, &d);
	if (!rc)
		rc = alloc_params(t);
	if (rc)
		goto out;
	train_rng rng;
	train_rng_seed(&rng, cfg->seed);
	init_params(t, &rng);
	if (init && init->trained && same_shape(t, init)) {
		memcpy(t->params, init->params, t->n_params * sizeof *t->params);
		if (ctx)
			train_log(ctx, TRAIN_LOG_INFO, "continuing from the earlier weights");
	} else if (init && ctx) {
		train_log(ctx, TRAIN_LOG_INFO, "the vocabulary or the sizes changed: training from "
		          "scratch");
	}
	t->trained = d.n > 0;
	if (!d.n) {
		if (ctx)
			train_log(ctx, TRAIN_LOG_WARN, "no stories to learn from: TEDPolicy will predict "
			          "nothing");
		goto out;
	}
	float *grads = train_arena_alloc(t->arena, t->n_params * sizeof(float));
	float *m = train_arena_alloc(t->arena, t->n_params * sizeof(float));
	float *v = train_arena_alloc(t->arena, t->n_params * sizeof(float));
	tparams g;
	tlayer *gl = calloc((size_t)t->L + 1, sizeof *gl);
	order = malloc(d.n * sizeof *order);
	if (!grads || !m || !v || !gl || !order || (rc = train_arena_create(0, &act))) {
		free(gl);
		rc = rc ? rc : TRAIN_ENOMEM;
		goto out;
	}
	g.layer = gl;
	point(t, grads, &g);
	int64_t step = 0;
	int epochs = (int)ceil(cfg->epochs * (ctx ? train_ctx_epoch_fraction(ctx) : 1.0));
	if (epochs < 1)
		epochs = 1;
	for (int ep = 0; ep < epochs && !rc; ep++) {
		for (size_t i = 0; i < d.n; i++)
			order[i] = i;
		for (size_t i = d.n; i > 1; i--) { /* Fisher-Yates */
			size_t j = (size_t)train_rng_below(&rng, i);
			size_t x = order[i - 1];
			order[i - 1] = order[j];
			order[j] = x;
		}
		size_t correct = 0;
		double loss = 0;
		int bs = batch_size_at(cfg, ep);
		rc = run_batches(t, &d, order, d.n, bs > 0 ? bs : 1, act, &g, grads, m, v, &step, &rng,
		                 &correct, &loss);
		if (ctx) {
			train_progress(ctx, (uint64_t)ep + 1, (uint64_t)epochs);
			if (ep + 1 == epochs || (ep + 1) % 20 == 0)
				train_log(ctx, TRAIN_LOG_DEBUG, "epoch %d/%d: loss %.4f, accuracy %.3f", ep + 1,
				          epochs, loss / (double)d.n, (double)correct / (double)d.n);
			if (train_ctx_canceled(ctx))
				rc = TRAIN_ECANCELED;
		}
	}
	free(gl);
	/* accuracy of the trained weights, without dropout */
	if (!rc) {
		size_t correct = 0;
		double loss = 0;
		for (size_t i = 0; i < d.n; i++)
			order[i] = i;
		rc = run_batches(t, &d, order, d.n, 64, act, NULL, NULL, NULL, NULL, NULL, &rng, &correct,
		                 &loss);
		t->train_acc = (double)correct / (double)d.n;
		if (!rc && ctx)
			train_log(ctx, TRAIN_LOG_INFO, "%zu examples, %d epochs: accuracy on them %.4f, "
			          "loss %.4f", d.n, epochs, t->train_acc, loss / (double)d.n);
	}
out:
	train_arena_destroy(act);
	free(order);
	tdata_free(&d);
	if (rc) {
		ted_free(t);
		return rc;
	}
	*out = t;
	return TRAIN_OK;
}

double ted_train_accuracy(const ted *t)
{
	return t->train_acc;
}

/* ------------------------------------------------------------------------ */
/* prediction */

int ted_predict(const ted *t, const pdomain *pd, const pdialog *conv, ppred *out)
{
	if (!t->trained)
		return TRAIN_OK;
	pstate_opts o = { 0 };
	o.drop_slots = t->ro.slots, o.n_drop_slots = t->ro.n_slots;
	o.drop_loops = t->ro.loops, o.n_drop_loops = t->ro.n_loops;
	ppool tmp = { 0 };
	pstate *st;
	size_t ns;
	train_arena *act = NULL;
	int rc = dialog_states(pd, conv, conv->n, &o, &tmp, &st, NULL, &ns);
	if (!rc)
		rc = train_arena_create(0, &act);
	size_t s0 = ns > (size_t)t->T ? ns - (size_t)t->T : 0;
	int T = (int)(ns - s0), len = T;
	tacts a;
	if (!rc)
		rc = acts_alloc(t, act, &a, 1, T, 0);
	int *idx = NULL;
	float *val = NULL;
	for (size_t k = s0; !rc && k < ns; k++) {
		int need = max_features(t, &st[k]);
		int *i2 = realloc(idx, (size_t)need * sizeof *idx);
		if (i2)
			idx = i2;
		float *v2 = i2 ? realloc(val, (size_t)need * sizeof *val) : NULL;
		if (v2)
			val = v2;
		if (!i2 || !v2) {
			rc = TRAIN_ENOMEM;
			break;
		}
		int nf = featurize(t, pd, &st[k], idx, val);
		float *row = a.x + (k - s0) * (size_t)t->F;
		for (int f = 0; f < nf; f++)
			row[idx[f]] = val[f];
	}
	if (!rc)
		rc = forward(t, &t->p, &a, 1, T, &len, NULL);
	if (!rc)
		rc = train_softmax_forward(a.probs, a.logits, 1, t->A);
	for (int k = 0; !rc && k < t->A && (size_t)k < pd->n_actions; k++)
		out->p[k] = a.probs[k];
	free(idx);
	free(val);
	train_arena_destroy(act);
	pp_free(&tmp);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* persistence */

int ted_save(const ted *t, const char *weights_path, json_t **meta, train_error *err)
{
	*meta = NULL;
	train_named_tensor *nt = calloc(t->n_layout + 1, sizeof *nt);
	if (!nt)
		return TRAIN_ENOMEM;
	for (size_t k = 0; k < t->n_layout; k++) {
		const tslot *s = &t->layout[k];
		nt[k].name = s->name;
		nt[k].t.dtype = TRAIN_F32;
		nt[k].t.ndim = s->cols ? 2 : 1;
		nt[k].t.shape[0] = s->rows;
		nt[k].t.shape[1] = s->cols ? s->cols : 1;
		nt[k].t.shape[2] = nt[k].t.shape[3] = 1;
		nt[k].t.data = t->params + s->off;
	}
	static const char *const smeta[] = { "format", "libtrain.ted", "version", "1", NULL };
	int rc = train_safetensors_write(weights_path, nt, t->n_layout, smeta, err);
	free(nt);
	if (rc)
		return rc;
	json_t *j = json_object(), *sl = json_array();
	int bad = !j || !sl;
	for (size_t i = 0; !bad && i < t->n_slots; i++)
		bad |= json_array_append_new(sl, json_pack("{s:s,s:i}", "name", t->slots[i], "dims",
		                                           t->slot_dims[i]));
	if (!bad) {
		json_t *cfg = json_pack("{s:i,s:i,s:i,s:i,s:i,s:i}", "window", t->T, "transformer_size",
		                        t->C, "embedding_dimension", t->E, "number_of_transformer_layers",
		                        t->L, "number_of_attention_heads", t->NH, "text_buckets",
		                        t->text_buckets);
		bad |= json_object_set_new(j, "model", cfg);
		bad |= json_object_set_new(j, "trained", json_boolean(t->trained));
		bad |= json_object_set_new(j, "intents", names_json(t->intents, t->n_intents));
		bad |= json_object_set_new(j, "entities", names_json(t->ents, t->n_ents));
		bad |= json_object_set_new(j, "forms", names_json(t->forms, t->n_forms));
		bad |= json_object_set_new(j, "slots", sl);
		sl = NULL;
		bad |= json_object_set_new(j, "rule_only_slots", names_json(t->ro.slots, t->ro.n_slots));
		bad |= json_object_set_new(j, "rule_only_loops", names_json(t->ro.loops, t->ro.n_loops));
		bad |= json_object_set_new(j, "training_accuracy", json_real(t->train_acc));
	}
	json_decref(sl);
	if (bad) {
		json_decref(j);
		return TRAIN_ENOMEM;
	}
	*meta = j;
	return TRAIN_OK;
}

static int geti(json_t *o, const char *key, int lo, int hi, int *out)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return TRAIN_ECORRUPT;
	*out = (int)json_integer_value(v);
	return TRAIN_OK;
}

int ted_load(json_t *meta, const char *weights_path, const pdomain *pd, ted **out,
             train_error *err)
{
	*out = NULL;
	ted *t = calloc(1, sizeof *t);
	if (!t)
		return TRAIN_ENOMEM;
	train_safetensors *f = NULL;
	json_t *cfg = json_object_get(meta, "model"), *sl = json_object_get(meta, "slots");
	int rc = geti(cfg, "window", 1, 1 << 16, &t->T);
	if (!rc)
		rc = geti(cfg, "transformer_size", 1, 1 << 16, &t->C);
	if (!rc)
		rc = geti(cfg, "embedding_dimension", 1, 1 << 16, &t->E);
	if (!rc)
		rc = geti(cfg, "number_of_transformer_layers", 0, 64, &t->L);
	if (!rc)
		rc = geti(cfg, "number_of_attention_heads", 1, 1 << 10, &t->NH);
	if (!rc)
		rc = geti(cfg, "text_buckets", 0, TEXT_BUCKETS, &t->text_buckets);
	if (!rc && (t->C % t->NH || !json_is_array(sl)))
		rc = TRAIN_ECORRUPT;
	t->trained = json_is_true(json_object_get(meta, "trained"));
	t->train_acc = json_number_value(json_object_get(meta, "training_accuracy"));
	if (!rc)
		rc = names_from_json(json_object_get(meta, "intents"), &t->pool, &t->intents, &t->n_intents);
	if (!rc)
		rc = names_from_json(json_object_get(meta, "entities"), &t->pool, &t->ents, &t->n_ents);
	if (!rc)
		rc = names_from_json(json_object_get(meta, "forms"), &t->pool, &t->forms, &t->n_forms);
	if (!rc)
		rc = names_from_json(json_object_get(meta, "rule_only_slots"), &t->pool, &t->ro.slots,
		                     &t->ro.n_slots);
	if (!rc)
		rc = names_from_json(json_object_get(meta, "rule_only_loops"), &t->pool, &t->ro.loops,
		                     &t->ro.n_loops);
	size_t nsl = json_is_array(sl) ? json_array_size(sl) : 0;
	if (!rc) {
		t->slots = pp_alloc(&t->pool, (nsl + 1) * sizeof *t->slots);
		t->slot_dims = pp_alloc(&t->pool, (nsl + 1) * sizeof *t->slot_dims);
		t->slot_off = pp_alloc(&t->pool, (nsl + 1) * sizeof *t->slot_off);
		if (!t->slots || !t->slot_dims || !t->slot_off)
			rc = TRAIN_ENOMEM;
	}
	for (size_t i = 0; !rc && i < nsl; i++) {
		json_t *o = json_array_get(sl, i);
		const char *name = json_string_value(json_object_get(o, "name"));
		if (!name || geti(o, "dims", 1, 1 << 16, &t->slot_dims[i]))
			rc = TRAIN_ECORRUPT;
		else
			t->slots[t->n_slots++] = pp_strdup(&t->pool, name);
	}
	if (!rc) {
		set_offsets(t, pd);
		t->cfg.max_history = t->T;
		rc = alloc_params(t);
	}
	if (!rc)
		rc = train_safetensors_open(weights_path, &f, err);
	if (!rc && (!train_safetensors_meta(f, "format") ||
	            strcmp(train_safetensors_meta(f, "format"), "libtrain.ted")))
		rc = train_error_set(err, TRAIN_ECORRUPT, weights_path, 0, 0, "not TED weights");
	for (size_t k = 0; !rc && k < t->n_layout; k++) {
		const tslot *s = &t->layout[k];
		train_tensor x;
		rc = train_safetensors_get(f, s->name, &x);
		if (rc) {
			rc = train_error_set(err, TRAIN_ECORRUPT, weights_path, 0, 0, "no tensor %s", s->name);
			break;
		}
		if (x.dtype != TRAIN_F32 || x.ndim != (s->cols ? 2 : 1) || x.shape[0] != s->rows ||
		    (s->cols && x.shape[1] != s->cols)) {
			rc = train_error_set(err, TRAIN_ECORRUPT, weights_path, 0, 0,
			                     "tensor %s has the wrong shape (the vocabulary does not fit "
			                     "the weights)", s->name);
			break;
		}
		memcpy(t->params + s->off, x.data, train_tensor_nbytes(&x));
	}
	train_safetensors_close(f);
	if (!rc && t->pool.oom)
		rc = TRAIN_ENOMEM;
	if (rc) {
		ted_free(t);
		return rc;
	}
	*out = t;
	return TRAIN_OK;
}

void ted_free(ted *t)
{
	if (!t)
		return;
	train_arena_destroy(t->arena);
	pp_free(&t->pool);
	free(t);
}
