/*
 * plugins/nlu/diet.c - DIET, the Dual Intent and Entity Transformer (Bunk
 * et al. 2020), as Rasa 3's DIETClassifier builds it, in plain forward and
 * backward passes (issue 6).
 *
 * The model, for a batch of B messages padded to T = max(tokens) + 1
 * positions (the tokens, then the sentence position, then padding):
 *
 *   sparse features of every block          (N, V)  CSR, N = B*T rows
 *     -> sparse input dropout (drop_rate; entries dropped, not rescaled)
 *     -> sparse-to-dense: CSR x W + b        (N, U)  U = dense_dimension.text
 *        (one weight for token rows, one for the sentence row, as Rasa's
 *        DenseForSparse per feature type; the blocks' columns are stacked)
 *     -> dense input dropout
 *   concatenated with the dense blocks' rows (N, Cin)
 *   -> hidden_layers_sizes.text: linear + GELU + dropout each
 *   -> transformer (number_of_transformer_layers > 0):
 *        linear to D, times sqrt(D), plus sinusoidal positions, dropout;
 *        per layer (pre-norm): x += drop(Wo attn(LN(x)));
 *                              x += drop(W2 drop(GELU(W1 LN(x))))
 *        final layer norm, then GELU            (N, D)
 *   -> intent: the sentence position's vector -> linear to E
 *        (embedding_dimension); labels one-hot -> hidden_layers_sizes.label
 *        -> linear to E; similarity = dot product with every label;
 *        loss = softmax cross-entropy over all labels (plus, with
 *        constrain_similarities, the mean sigmoid cross-entropy of every
 *        similarity, 1 for the right label and 0 for the others)
 *   -> entities: linear to K tag logits at the token positions, a
 *        linear-chain CRF (crf.c) over BILOU tags; loss = mean -log p(tags)
 *   total loss = intent loss + entity loss + regularization_constant *
 *   sum of squared kernels of the Keras layers that carry an L2
 *   regularizer (sparse-to-dense, hidden layers, the transformer's input
 *   projection, the embedding and logit layers, the CRF transitions).
 *
 * As in Rasa: Keras initializers (Glorot-uniform kernels, zero biases,
 * unit layer-norm gains, epsilon 1e-6), exact GELU, RandomlyConnectedDense
 * (connection_density) for the hidden layers and every dense layer of
 * the transformer (a fixed mask: a tiled identity so that every input and
 * output stays connected, plus uniform draws below the density; masked
 * weights are zero and get no gradient), Adam (beta 0.9/0.999, epsilon
 * 1e-7, no weight decay), the batch size growing linearly from
 * batch_size[0] to batch_size[1] over the epochs, and the "balanced"
 * batch strategy (Rasa's _balance_model_data: every label's examples
 * cycled through in label-sized chunks until each label was seen once).
 *
 * Differences from Rasa, on purpose:
 *  - the intent loss is a softmax over *all* labels, not over the positive
 *    and number_of_negative_examples sampled negatives (Rasa also adds
 *    label-label and input-input similarities to the logits); exact and
 *    cheap for the label counts of intent classification;
 *  - entity confidences are the CRF's marginal probabilities of the
 *    decoded tags (forward-backward), not Rasa's softmax over the Viterbi
 *    step; an entity of several tokens gets the lowest (as in Rasa);
 *  - entity roles and groups are not predicted;
 *  - labels are always one-hot (Rasa uses the intents' own features when
 *    a featurizer made some, which for single-token intents is the same
 *    up to a linear map);
 *  - each feature block feeds both the token and the sentence rows, so
 *    the two always have the same width (no "unify dimensions" layers);
 *  - random_seed null means seed 0: training is always reproducible.
 * Not implemented (nlu.c refuses them): cosine similarity, margin loss,
 * masked language modelling, relative attention, attention dropout,
 * shared hidden layers.
 *
 * Determinism: every random draw comes from train_rng streams seeded from
 * random_seed; the loops run in a fixed order; matmuls go through
 * train_matmul, whose results depend only on the shapes and the thread
 * count.  So the same data, config, seed and thread count give the same
 * weight bytes.
 *
 * Memory: one arena each for parameters, gradients and Adam's moments
 * (m and v, one flat array each, so the optimizer is one loop), one for
 * the connection masks, and one for a step's activations, reset at the
 * start of every step.
 */
#include "nlu.h"

#include <train/kernels.h>
#include <train/nn.h>
#include <train/optim.h>

#include <jansson.h>
#include <math.h>
#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define DIET_X86 1
#endif
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIET_FORMAT "libtrain.diet"
/* 2: a sentence-only model has no sequence kernel (version 1 ones, which
 * have it, still load and save as version 1) */
#define DIET_VERSION 2
#define DIET_WEIGHTS "diet.safetensors"
#define DIET_META "diet.json"
#define LN_EPS 1e-6f
#define ADAM_EPS 1e-7f

/* ------------------------------------------------------------------------ */
/* sparse rows times a dense weight */

/*
 * y[u] += a * x[u] for u < n: the inner loop of the sparse layer (and of its
 * backward).  The AVX-512 path does the same multiply and add per element
 * (no fused multiply-add; the plain path is built without contraction,
 * -std=c11), so both give the same bits.
 */
static void axpy_plain(float *restrict y, float a, const float *restrict x, int i0, int n)
{
	for (int u = i0; u < n; u++)
		y[u] += a * x[u];
}

#ifdef DIET_X86
__attribute__((target("avx512f"))) static int axpy_avx512(float *y, float a, const float *x,
                                                           int n)
{
	__m512 av = _mm512_set1_ps(a);
	int u = 0;
	for (; u + 16 <= n; u += 16)
		_mm512_storeu_ps(y + u, _mm512_add_ps(_mm512_loadu_ps(y + u),
		                                      _mm512_mul_ps(av, _mm512_loadu_ps(x + u))));
	return u;
}
#endif

typedef struct axpy_fn {
	int avx512;
} axpy_fn;

static inline void axpy(const axpy_fn *f, float *y, float a, const float *x, int n)
{
	int done = 0;
#ifdef DIET_X86
	if (f->avx512)
		done = axpy_avx512(y, a, x, n);
#else
	(void)f;
#endif
	axpy_plain(y, a, x, done, n);
}

static axpy_fn axpy_pick(void)
{
	axpy_fn f = { 0 };
#ifdef DIET_X86
	f.avx512 = __builtin_cpu_supports("avx512f");
#endif
	return f;
}

int nlu_sparse_forward(float *out, int ldo, const uint32_t *indptr, const uint32_t *indices,
                       const float *values, int R, const float *w, int V, int U)
{
	if (R < 0 || V <= 0 || U <= 0 || ldo < U || (R > 0 && (!out || !indptr || !w)))
		return TRAIN_EINVAL;
	if (R > 0 && indptr[R] > indptr[0] && (!indices || !values))
		return TRAIN_EINVAL;
	axpy_fn f = axpy_pick();
	for (int r = 0; r < R; r++) {
		float *o = out + (size_t)r * ldo;
		for (uint32_t k = indptr[r]; k < indptr[r + 1]; k++) {
			if (indices[k] >= (uint32_t)V)
				return TRAIN_EINVAL;
			axpy(&f, o, values[k], w + (size_t)indices[k] * U, U);
		}
	}
	return TRAIN_OK;
}

int nlu_sparse_backward(float *dw, const float *dout, int ldo, const uint32_t *indptr,
                        const uint32_t *indices, const float *values, int R, int V, int U)
{
	if (R < 0 || V <= 0 || U <= 0 || ldo < U || (R > 0 && (!dw || !dout || !indptr)))
		return TRAIN_EINVAL;
	if (R > 0 && indptr[R] > indptr[0] && (!indices || !values))
		return TRAIN_EINVAL;
	axpy_fn f = axpy_pick();
	for (int r = 0; r < R; r++) {
		const float *d = dout + (size_t)r * ldo;
		for (uint32_t k = indptr[r]; k < indptr[r + 1]; k++) {
			if (indices[k] >= (uint32_t)V)
				return TRAIN_EINVAL;
			axpy(&f, dw + (size_t)indices[k] * U, values[k], d, U);
		}
	}
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------ */
/* small helpers */

TRAIN_PRINTF(3, 4)
static int fail(char *why, size_t len, const char *fmt, ...)
{
	if (why && len) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(why, len, fmt, ap);
		va_end(ap);
	}
	return TRAIN_ECOMPONENT;
}

static char *xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	if (p)
		memcpy(p, s, n);
	return p;
}

static void free_strv(char **v, int n)
{
	if (v)
		for (int i = 0; i < n; i++)
			free(v[i]);
	free(v);
}

void diet_opts_free(diet_opts *o)
{
	if (!o)
		return;
	free(o->hid_text);
	free(o->hid_label);
	free_strv(o->featurizers, o->n_featurizers);
	free_strv(o->split_names, o->n_split);
	free(o->split_values);
	free(o->retrieval_intent);
	memset(o, 0, sizeof *o);
}

/* train_rng_uniform() inlined (the same xoshiro256** stream, the same
 * values): dropout draws one per element, and the call was a tenth of a
 * training step. */
static inline uint64_t rotl64(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline float unit_draw(train_rng *r)
{
	uint64_t *s = r->s;
	uint64_t result = rotl64(s[1] * 5, 7) * 9;
	uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl64(s[3], 45);
	return (float)(result >> 40) * 0x1.0p-24f;
}

/* Inverted dropout in place: x[i] kept (times 1/(1-p)) where a uniform draw
 * is >= p (nn.h's rule), mask[i] says which.  p = 0: nothing. */
static void drop_fwd(float *x, uint8_t *mask, size_t n, float p, train_rng *r)
{
	float scale = 1.0f / (1.0f - p);
	for (size_t i = 0; i < n; i++)
		mask[i] = unit_draw(r) >= p;
	for (size_t i = 0; i < n; i++)
		x[i] = mask[i] ? x[i] * scale : 0.0f;
}

static void drop_bwd(float *dx, const uint8_t *mask, size_t n, float p)
{
	float scale = 1.0f / (1.0f - p);
	for (size_t i = 0; i < n; i++)
		dx[i] = mask[i] ? dx[i] * scale : 0.0f;
}

/*
 * A message's label, malloc'd (*out NULL: none): its intent, or for a
 * response selector "intent/response_key" of a retrieval intent (only
 * `retrieval_intent`'s when set), Rasa's intent_response_key.
 */
static int msg_label(const diet_opts *o, const train_feat_message *msg, char **out)
{
	*out = NULL;
	const char *in = msg->intent;
	if (!in || !*in)
		return TRAIN_OK;
	if (!o->label_response_key)
		return (*out = xstrdup(in)) ? TRAIN_OK : TRAIN_ENOMEM;
	const char *rk = msg->response_key;
	if (!rk || !*rk || (o->retrieval_intent && strcmp(o->retrieval_intent, in)))
		return TRAIN_OK;
	size_t n = strlen(in) + strlen(rk) + 2;
	if (!(*out = malloc(n)))
		return TRAIN_ENOMEM;
	snprintf(*out, n, "%s/%s", in, rk);
	return TRAIN_OK;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int find_str(char *const *v, int n, const char *s)
{
	char *const *p = bsearch(&s, v, (size_t)n, sizeof *v, cmp_str);
	return p ? (int)(p - v) : -1;
}

/* ------------------------------------------------------------------------ */
/* the model: architecture, parameter tensors, arenas */

enum { INIT_GLOROT, INIT_ZERO, INIT_ONE };

/* One parameter tensor: rows x cols floats at `off` in the flat arrays. */
typedef struct ptensor {
	char name[64];
	int rows, cols;
	int fan_in, fan_out;   /* for Glorot */
	int init;
	int l2;                /* part of the L2 regularization */
	int masked;            /* a RandomlyConnectedDense kernel */
	size_t off;
	uint8_t *mask;         /* rows * cols, or NULL */
} ptensor;

typedef struct lin {
	int w, b;              /* ptensor indices; b -1 when there is no bias */
	int in, out;
} lin;

typedef struct tlayer {
	int ln1_w, ln1_b, ln2_w, ln2_b;
	lin qkv, o, f1, f2;
} tlayer;

typedef struct dblock {
	char *name;
	int kind;              /* TRAIN_FEAT_SPARSE or TRAIN_FEAT_DENSE */
	uint32_t dim, off;     /* sparse: rows of W; dense: columns of the input */
} dblock;

struct diet_model {
	/* architecture (persisted) */
	char **labels; int n_labels;        /* sorted */
	char **types; int n_types;          /* entity types, sorted */
	int n_tags;                          /* 0: no entity head */
	int bilou;
	dblock *blocks; int n_blocks;
	uint32_t sparse_dim, dense_dim;      /* V, sum of dense dims */
	int units;                           /* 0: no sparse block */
	int cin;                             /* units + dense_dim */
	int *hid_text, n_hid_text, *hid_label, n_hid_label;
	int n_layers, d_model, n_heads, unidirectional, embed_dim;
	int intent, entity, sentence_only, trained;
	int v1_sequence;                     /* a version 1 sentence-only model's sequence kernel */
	int cout;
	float density;
	/* parameters */
	ptensor *pt; int n_pt, cap_pt;
	size_t n_floats;
	train_arena *pa, *ga, *oa, *ma;
	float *P, *G, *M, *V;
	int sq_w, sq_b, st_w, st_b;          /* sparse-to-dense, -1 when none */
	lin *th, *lh;                        /* hidden layers */
	lin emb;                             /* transformer input projection */
	tlayer *tl;
	int fin_w, fin_b;
	lin te, le, ent;
	int crf;
	int64_t step;
};

static int pt_add(diet_model *m, const char *name, int rows, int cols, int fan_in, int fan_out,
                  int init, int l2, int masked)
{
	if (m->n_pt == m->cap_pt) {
		int cap = m->cap_pt ? 2 * m->cap_pt : 32;
		ptensor *p = realloc(m->pt, (size_t)cap * sizeof *p);
		if (!p)
			return -1;
		m->pt = p;
		m->cap_pt = cap;
	}
	ptensor *t = &m->pt[m->n_pt];
	memset(t, 0, sizeof *t);
	snprintf(t->name, sizeof t->name, "%s", name);
	t->rows = rows;
	t->cols = cols;
	t->fan_in = fan_in;
	t->fan_out = fan_out;
	t->init = init;
	t->l2 = l2;
	t->masked = masked;
	t->off = m->n_floats;
	/* 16-float (64-byte) alignment for every tensor */
	m->n_floats += ((size_t)rows * cols + 15) & ~(size_t)15;
	return m->n_pt++;
}

/* A linear layer in nn.h's layout: w (out, in), b (out). */
static int lin_add(diet_model *m, lin *l, const char *name, int in, int out, int bias, int l2,
                   int masked)
{
	char n[64];
	l->in = in;
	l->out = out;
	if (snprintf(n, sizeof n, "%s.kernel", name) >= (int)sizeof n)
		return -1;
	if ((l->w = pt_add(m, n, out, in, in, out, INIT_GLOROT, l2, masked)) < 0)
		return -1;
	l->b = -1;
	if (bias) {
		if (snprintf(n, sizeof n, "%s.bias", name) >= (int)sizeof n)
			return -1;
		if ((l->b = pt_add(m, n, 1, out, 0, 0, INIT_ZERO, 0, 0)) < 0)
			return -1;
	}
	return 0;
}

static float *PT(const diet_model *m, int i) { return i < 0 ? NULL : m->P + m->pt[i].off; }
static float *GT(const diet_model *m, int i) { return i < 0 ? NULL : m->G + m->pt[i].off; }

/* Lay out every tensor from the architecture fields; allocate the arenas. */
static int diet_layout(diet_model *m)
{
	char n[64];
	int masked = m->density < 1.0f;
	m->sq_w = m->sq_b = m->st_w = m->st_b = -1;
	m->crf = m->fin_w = m->fin_b = -1;
	memset(&m->te, 0xff, sizeof m->te);
	memset(&m->le, 0xff, sizeof m->le);
	memset(&m->ent, 0xff, sizeof m->ent);
	if (m->units) {
		int V = (int)m->sparse_dim, U = m->units;
		/* a model that reads only sentence rows has no token rows: no
		 * sequence kernel (its L2 and Adam passes were most of a step's
		 * optimizer work on a large vocabulary) */
		if (((!m->sentence_only || m->v1_sequence) &&
		     ((m->sq_w = pt_add(m, "sparse_to_dense.sequence.kernel", V, U, V, U, INIT_GLOROT,
		                        1, 0)) < 0 ||
		      (m->sq_b = pt_add(m, "sparse_to_dense.sequence.bias", 1, U, 0, 0, INIT_ZERO, 0,
		                        0)) < 0)) ||
		    (m->st_w = pt_add(m, "sparse_to_dense.sentence.kernel", V, U, V, U, INIT_GLOROT, 1,
		                      0)) < 0 ||
		    (m->st_b = pt_add(m, "sparse_to_dense.sentence.bias", 1, U, 0, 0, INIT_ZERO, 0, 0)) < 0)
			return TRAIN_ENOMEM;
	}
	int width = m->cin;
	if (m->n_hid_text && !(m->th = calloc((size_t)m->n_hid_text, sizeof *m->th)))
		return TRAIN_ENOMEM;
	for (int i = 0; i < m->n_hid_text; i++) {
		snprintf(n, sizeof n, "ffnn.text.%d", i);
		if (lin_add(m, &m->th[i], n, width, m->hid_text[i], 1, 1, masked))
			return TRAIN_ENOMEM;
		width = m->hid_text[i];
	}
	if (m->n_layers > 0) {
		int D = m->d_model;
		if (lin_add(m, &m->emb, "transformer.embedding", width, D, 1, 1, masked) ||
		    !(m->tl = calloc((size_t)m->n_layers, sizeof *m->tl)))
			return TRAIN_ENOMEM;
		for (int l = 0; l < m->n_layers; l++) {
			tlayer *t = &m->tl[l];
			char p[32];
			snprintf(p, sizeof p, "transformer.layer%d", l);
			snprintf(n, sizeof n, "%s.ln1.gamma", p);
			if ((t->ln1_w = pt_add(m, n, 1, D, 0, 0, INIT_ONE, 0, 0)) < 0)
				return TRAIN_ENOMEM;
			snprintf(n, sizeof n, "%s.ln1.beta", p);
			if ((t->ln1_b = pt_add(m, n, 1, D, 0, 0, INIT_ZERO, 0, 0)) < 0)
				return TRAIN_ENOMEM;
			/* Q, K and V (no bias, each masked on its own D x D block: the
			 * mask pattern of one (3D, D) kernel is the stack of three) */
			snprintf(n, sizeof n, "%s.attention.qkv", p);
			if (lin_add(m, &t->qkv, n, D, 3 * D, 0, 0, masked))
				return TRAIN_ENOMEM;
			m->pt[t->qkv.w].fan_out = D; /* Glorot per D x D projection */
			snprintf(n, sizeof n, "%s.attention.output", p);
			if (lin_add(m, &t->o, n, D, D, 1, 0, masked))
				return TRAIN_ENOMEM;
			snprintf(n, sizeof n, "%s.ln2.gamma", p);
			if ((t->ln2_w = pt_add(m, n, 1, D, 0, 0, INIT_ONE, 0, 0)) < 0)
				return TRAIN_ENOMEM;
			snprintf(n, sizeof n, "%s.ln2.beta", p);
			if ((t->ln2_b = pt_add(m, n, 1, D, 0, 0, INIT_ZERO, 0, 0)) < 0)
				return TRAIN_ENOMEM;
			snprintf(n, sizeof n, "%s.ffn.1", p);
			if (lin_add(m, &t->f1, n, D, 4 * D, 1, 0, masked))
				return TRAIN_ENOMEM;
			snprintf(n, sizeof n, "%s.ffn.2", p);
			if (lin_add(m, &t->f2, n, 4 * D, D, 1, 0, masked))
				return TRAIN_ENOMEM;
		}
		if ((m->fin_w = pt_add(m, "transformer.ln.gamma", 1, D, 0, 0, INIT_ONE, 0, 0)) < 0 ||
		    (m->fin_b = pt_add(m, "transformer.ln.beta", 1, D, 0, 0, INIT_ZERO, 0, 0)) < 0)
			return TRAIN_ENOMEM;
		width = D;
	}
	m->cout = width;
	if (m->intent) {
		if (lin_add(m, &m->te, "embed.text", width, m->embed_dim, 1, 1, 0))
			return TRAIN_ENOMEM;
		int lw = m->n_labels;
		if (m->n_hid_label && !(m->lh = calloc((size_t)m->n_hid_label, sizeof *m->lh)))
			return TRAIN_ENOMEM;
		for (int i = 0; i < m->n_hid_label; i++) {
			snprintf(n, sizeof n, "ffnn.label.%d", i);
			if (lin_add(m, &m->lh[i], n, lw, m->hid_label[i], 1, 1, masked))
				return TRAIN_ENOMEM;
			lw = m->hid_label[i];
		}
		if (lin_add(m, &m->le, "embed.label", lw, m->embed_dim, 1, 1, 0))
			return TRAIN_ENOMEM;
	}
	if (m->entity) {
		if (lin_add(m, &m->ent, "embed.entity.logits", width, m->n_tags, 1, 1, 0) ||
		    (m->crf = pt_add(m, "crf.entity.transitions", m->n_tags, m->n_tags, m->n_tags,
		                     m->n_tags, INIT_GLOROT, 1, 0)) < 0)
			return TRAIN_ENOMEM;
	}
	size_t bytes = m->n_floats * sizeof(float);
	if (train_arena_create(bytes, &m->pa) || train_arena_create(bytes, &m->ga) ||
	    train_arena_create(2 * bytes, &m->oa) || train_arena_create(0, &m->ma))
		return TRAIN_ENOMEM;
	if (!(m->P = train_arena_alloc(m->pa, bytes)) || !(m->G = train_arena_alloc(m->ga, bytes)) ||
	    !(m->M = train_arena_alloc(m->oa, bytes)) || !(m->V = train_arena_alloc(m->oa, bytes)))
		return TRAIN_ENOMEM;
	for (int i = 0; i < m->n_pt; i++)
		if (m->pt[i].masked &&
		    !(m->pt[i].mask = train_arena_alloc(m->ma, (size_t)m->pt[i].rows * m->pt[i].cols)))
			return TRAIN_ENOMEM;
	return TRAIN_OK;
}

/* Keras's initial values, and the connection masks, from `seed`. */
static void diet_init(diet_model *m, uint64_t seed)
{
	train_rng r;
	train_rng_seed(&r, seed ^ 0x6469657469ULL);
	for (int i = 0; i < m->n_pt; i++) {
		ptensor *t = &m->pt[i];
		float *p = m->P + t->off;
		size_t n = (size_t)t->rows * t->cols;
		if (t->init == INIT_ONE)
			for (size_t k = 0; k < n; k++)
				p[k] = 1.0f;
		else if (t->init == INIT_GLOROT) {
			float lim = (float)sqrt(6.0 / ((double)t->fan_in + t->fan_out));
			train_rng_fill_uniform(&r, p, n, -lim, lim);
		}
	}
	for (int i = 0; i < m->n_pt; i++) {
		ptensor *t = &m->pt[i];
		if (!t->mask)
			continue;
		/* nn.h layout (out, in); a (3D, D) qkv kernel is three (D, D) ones */
		int blocks = t->rows / t->fan_out, rows = t->fan_out, cols = t->cols;
		int s = rows < cols ? rows : cols;
		for (int b = 0; b < blocks; b++)
			for (int o = 0; o < rows; o++)
				for (int c = 0; c < cols; c++) {
					size_t k = ((size_t)b * rows + o) * cols + c;
					t->mask[k] = (o % s == c % s) || train_rng_uniform(&r) < m->density;
				}
		float *p = m->P + t->off;
		for (size_t k = 0; k < (size_t)t->rows * t->cols; k++)
			if (!t->mask[k])
				p[k] = 0.0f;
	}
}

void diet_free(diet_model *m)
{
	if (!m)
		return;
	free_strv(m->labels, m->n_labels);
	free_strv(m->types, m->n_types);
	if (m->blocks)
		for (int i = 0; i < m->n_blocks; i++)
			free(m->blocks[i].name);
	free(m->blocks);
	free(m->hid_text);
	free(m->hid_label);
	free(m->pt);
	free(m->th);
	free(m->lh);
	free(m->tl);
	train_arena_destroy(m->pa);
	train_arena_destroy(m->ga);
	train_arena_destroy(m->oa);
	train_arena_destroy(m->ma);
	free(m);
}

int diet_n_labels(const diet_model *m) { return m ? m->n_labels : 0; }
const char *diet_label(const diet_model *m, int i) { return m->labels[i]; }
int diet_n_entity_types(const diet_model *m) { return m ? m->n_types : 0; }
const char *diet_entity_type(const diet_model *m, int i) { return m->types[i]; }
int diet_trained(const diet_model *m) { return m && m->trained; }

const float *diet_params(const diet_model *m, size_t *n)
{
	*n = m ? m->n_floats : 0;
	return m ? m->P : NULL;
}

/* Tag ids: 0 is "O"; with BILOU, type k has B/I/L/U = 4k+1 .. 4k+4 (Rasa's
 * build_tag_id_dict); without, type k is k+1. */
static int tag_type(const diet_model *m, int tag)
{
	return tag <= 0 ? -1 : m->bilou ? (tag - 1) / 4 : tag - 1;
}

enum { P_B = 0, P_I, P_L, P_U };

static int tag_prefix(const diet_model *m, int tag) { return m->bilou ? (tag - 1) % 4 : -1; }
static int make_tag(const diet_model *m, int type, int prefix)
{
	return m->bilou ? 4 * type + prefix + 1 : type + 1;
}

/* ------------------------------------------------------------------------ */
/* which blocks the model reads, and checking a features value against them */

static int use_block(const diet_opts *o, const char *name)
{
	if (!o->n_featurizers)
		return 1;
	for (int i = 0; i < o->n_featurizers; i++)
		if (!strcmp(o->featurizers[i], name))
			return 1;
	return 0;
}

/* Map the model's blocks to the blocks of `f` (map[i] = index in f).  The
 * features must have every block the model was trained on, of the same
 * kind and dimension. */
static int match_blocks(const diet_model *m, const train_features *f, size_t *map, char *why,
                        size_t whylen)
{
	for (int i = 0; i < m->n_blocks; i++) {
		size_t b;
		if (train_features_find_block(f, m->blocks[i].name, &b)) {
			fail(why, whylen, "the features have no block '%s', which the model was trained on",
			     m->blocks[i].name);
			return TRAIN_EMISMATCH;
		}
		if ((int)f->blocks[b].kind != m->blocks[i].kind || f->blocks[b].dim != m->blocks[i].dim) {
			fail(why, whylen, "feature block '%s' is %s with %u columns, the model was trained "
			     "on %s with %u", m->blocks[i].name,
			     f->blocks[b].kind == TRAIN_FEAT_SPARSE ? "sparse" : "dense", f->blocks[b].dim,
			     m->blocks[i].kind == TRAIN_FEAT_SPARSE ? "sparse" : "dense",
			     m->blocks[i].dim);
			return TRAIN_EMISMATCH;
		}
		map[i] = b;
	}
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------ */
/* a batch: inputs, activations, forward and backward */

typedef struct tcache {
	float *x;                    /* (N, D) layer input */
	float *ln1, *mean1, *rstd1;  /* (N, D) (N) (N) */
	float *qkvp, *att, *a;       /* (B*T, 3D) padded (B, NH, T, T) (N, D) */
	float *o; uint8_t *om;       /* (N, D) after dropout, its mask */
	float *xm;                   /* (N, D) x + o */
	float *ln2, *mean2, *rstd2;
	float *f1, *g; uint8_t *gm;  /* (N, 4D) pre-activation, GELU after dropout */
	float *f2; uint8_t *f2m;     /* (N, D) */
} tcache;

typedef struct batch {
	int B, T, N, training;       /* N = off[B] packed rows; T the longest message */
	const size_t *msg;           /* (B) message indices */
	int *ntok;                   /* (B) token positions used */
	int *off;                    /* (B+1) first row of each message */
	uint8_t *keymask;            /* (B, T) for attention, whose inputs are padded */
	uint32_t *sq_ptr, *sq_idx, *st_ptr, *st_idx;  /* CSR over the N rows */
	float *sq_val, *st_val;
	float *X;                    /* (N, cin) */
	uint8_t *xm;                 /* (N, units) dense input dropout */
	float **hpre, **hout; uint8_t **hm;  /* text hidden layers */
	float *e0; uint8_t *e0m;     /* (N, D) */
	tcache *tc;
	float *xl;                   /* (N, D) the last layer's output */
	float *y, *ymean, *yrstd;    /* final layer norm */
	float *O;                    /* (N, cout) */
	/* intent */
	int32_t *target;             /* (B) */
	float *S, *temb;             /* (B, cout) (B, E) */
	float *L0;                   /* (nl, nl) identity */
	float **lpre, **lout; uint8_t **lm;
	float *lemb;                 /* (nl, E) */
	float *sims, *probs;         /* (B, nl) */
	/* entities */
	int32_t *tags;               /* (B, T) */
	float *logits;               /* (N, K) */
	double **alpha;              /* (B) of (ntok, K) */
	double loss_i, loss_e, loss_r;
	int correct;
} batch;

/*
 * Rows are packed: message b has rows off[b] .. off[b] + ntok[b] (its
 * tokens, then its sentence row), with no padding, so that every
 * position-wise layer works on real rows only.  Attention alone sees the
 * padded (B, T) layout: its input is scattered into it and its output
 * gathered back.
 */
static inline size_t row(const batch *bt, int b, int t) { return (size_t)bt->off[b] + t; }

/* packed (N, C) -> padded (B*T, C), pads zero (dst zeroed by the caller) */
static void scatter_rows(float *dst, const float *src, const batch *bt, int C)
{
	for (int b = 0; b < bt->B; b++)
		memcpy(dst + (size_t)b * bt->T * C, src + (size_t)bt->off[b] * C,
		       (size_t)(bt->ntok[b] + 1) * C * sizeof(float));
}

/* padded (B*T, C) -> packed (N, C) */
static void gather_rows(float *dst, const float *src, const batch *bt, int C)
{
	for (int b = 0; b < bt->B; b++)
		memcpy(dst + (size_t)bt->off[b] * C, src + (size_t)b * bt->T * C,
		       (size_t)(bt->ntok[b] + 1) * C * sizeof(float));
}

#define ALLOC(ptr, n)                                                             \
	do {                                                                      \
		if (!((ptr) = train_arena_alloc(ws, (size_t)(n) * sizeof *(ptr)))) \
			return TRAIN_ENOMEM;                                      \
	} while (0)

/* Gather the batch's features into the CSRs and the dense columns; set up
 * targets and tags. */
static int batch_inputs(const diet_model *m, const train_features *f, const size_t *bmap,
                        const int32_t *labels, int32_t *const *tags, batch *bt, train_arena *ws,
                        train_rng *rng, float sparse_drop)
{
	int B = bt->B, T = bt->T, N = bt->N;
	ALLOC(bt->keymask, (size_t)B * T);
	for (int b = 0; b < B; b++)
		for (int t = 0; t <= bt->ntok[b]; t++)
			bt->keymask[(size_t)b * T + t] = 1;
	ALLOC(bt->X, (size_t)N * m->cin);
	if (m->units) {
		/* count, then fill, the non-zeros of the token rows and the sentence rows */
		size_t nq = 0, ns = 0;
		for (int b = 0; b < B; b++) {
			const train_feat_message *msg = &f->messages[bt->msg[b]];
			for (int i = 0; i < m->n_blocks; i++) {
				if (m->blocks[i].kind != TRAIN_FEAT_SPARSE)
					continue;
				const train_feat_matrix *x = &msg->features[bmap[i]];
				nq += x->indptr[bt->ntok[b]] - x->indptr[0];
				ns += x->indptr[msg->n_tokens + 1] - x->indptr[msg->n_tokens];
			}
		}
		ALLOC(bt->sq_ptr, N + 1);
		ALLOC(bt->st_ptr, N + 1);
		ALLOC(bt->sq_idx, nq + 1);
		ALLOC(bt->st_idx, ns + 1);
		ALLOC(bt->sq_val, nq + 1);
		ALLOC(bt->st_val, ns + 1);
		uint32_t kq = 0, ks = 0;
		for (int b = 0; b < B; b++) {
			const train_feat_message *msg = &f->messages[bt->msg[b]];
			for (int t = 0; t <= bt->ntok[b]; t++) {
				size_t r = row(bt, b, t);
				bt->sq_ptr[r] = kq;
				bt->st_ptr[r] = ks;
				int sent = t == bt->ntok[b];
				size_t mrow = sent ? msg->n_tokens : (size_t)t;
				for (int i = 0; i < m->n_blocks; i++) {
					if (m->blocks[i].kind != TRAIN_FEAT_SPARSE)
						continue;
					const train_feat_matrix *x = &msg->features[bmap[i]];
					for (uint32_t k = x->indptr[mrow]; k < x->indptr[mrow + 1]; k++) {
						/* Rasa's SparseDropout keeps an entry when a
						 * uniform draw is >= rate, without rescaling */
						float v = x->values[k];
						if (sparse_drop > 0 && unit_draw(rng) < sparse_drop)
							v = 0.0f;
						if (sent) {
							bt->st_idx[ks] = m->blocks[i].off + x->indices[k];
							bt->st_val[ks++] = v;
						} else {
							bt->sq_idx[kq] = m->blocks[i].off + x->indices[k];
							bt->sq_val[kq++] = v;
						}
					}
				}
			}
		}
		bt->sq_ptr[N] = kq;
		bt->st_ptr[N] = ks;
	}
	if (m->dense_dim) {
		for (int b = 0; b < B; b++) {
			const train_feat_message *msg = &f->messages[bt->msg[b]];
			for (int t = 0; t <= bt->ntok[b]; t++) {
				size_t mrow = t == bt->ntok[b] ? msg->n_tokens : (size_t)t;
				float *x = bt->X + row(bt, b, t) * m->cin + m->units;
				for (int i = 0; i < m->n_blocks; i++) {
					if (m->blocks[i].kind != TRAIN_FEAT_DENSE)
						continue;
					const train_feat_matrix *d = &msg->features[bmap[i]];
					memcpy(x + m->blocks[i].off, d->values + mrow * m->blocks[i].dim,
					       m->blocks[i].dim * sizeof(float));
				}
			}
		}
	}
	if (labels) {
		ALLOC(bt->target, B);
		for (int b = 0; b < B; b++)
			bt->target[b] = labels[bt->msg[b]];
	}
	if (tags) {
		ALLOC(bt->tags, (size_t)N + 1);
		for (int b = 0; b < B; b++)
			for (int t = 0; t < bt->ntok[b]; t++)
				bt->tags[row(bt, b, t)] = tags[bt->msg[b]][t];
	}
	return TRAIN_OK;
}

static int add_pe(float *x, const batch *bt, int D, train_arena *ws)
{
	/* Rasa's TransformerEncoder: angle_i = 1 / 10000^(2 floor(i/2) / D);
	 * sin at even i, cos at odd i */
	float *pe;
	ALLOC(pe, (size_t)bt->T * D);
	for (int t = 0; t < bt->T; t++)
		for (int i = 0; i < D; i++) {
			double ang = t / pow(10000.0, (2.0 * (i / 2)) / D);
			pe[(size_t)t * D + i] = (float)(i % 2 ? cos(ang) : sin(ang));
		}
	for (int b = 0; b < bt->B; b++)
		for (int t = 0; t <= bt->ntok[b]; t++) {
			float *r = x + row(bt, b, t) * D;
			const float *p = pe + (size_t)t * D;
			for (int i = 0; i < D; i++)
				r[i] += p[i];
		}
	return TRAIN_OK;
}

/* The forward pass of the whole batch (training: dropout on, losses). */
static int diet_forward(const diet_model *m, const diet_opts *o, batch *bt, train_arena *ws,
                        train_rng *rng)
{
	int B = bt->B, T = bt->T, N = bt->N, rc;
	float p = bt->training ? o->drop_rate : 0.0f;
	/* sparse to dense, then dense input dropout on those units */
	if (m->units) {
		int U = m->units;
		if ((m->sq_w >= 0 &&
		     (rc = nlu_sparse_forward(bt->X, m->cin, bt->sq_ptr, bt->sq_idx, bt->sq_val, N,
		                              PT(m, m->sq_w), (int)m->sparse_dim, U))) ||
		    (rc = nlu_sparse_forward(bt->X, m->cin, bt->st_ptr, bt->st_idx, bt->st_val, N,
		                             PT(m, m->st_w), (int)m->sparse_dim, U)))
			return rc;
		const float *bq = PT(m, m->sq_b), *bs = PT(m, m->st_b);
		for (int b = 0; b < B; b++)
			for (int t = 0; t <= bt->ntok[b]; t++) {
				float *x = bt->X + row(bt, b, t) * m->cin;
				const float *bias = t == bt->ntok[b] ? bs : bq;
				for (int u = 0; u < U; u++)
					x[u] += bias[u];
			}
		if (p > 0 && o->dense_input_dropout) {
			ALLOC(bt->xm, (size_t)N * U);
			for (int r = 0; r < N; r++)
				drop_fwd(bt->X + (size_t)r * m->cin, bt->xm + (size_t)r * U, (size_t)U, p, rng);
		}
	}
	/* hidden layers */
	const float *h = bt->X;
	if (m->n_hid_text) {
		ALLOC(bt->hpre, m->n_hid_text);
		ALLOC(bt->hout, m->n_hid_text);
		ALLOC(bt->hm, m->n_hid_text);
	}
	for (int i = 0; i < m->n_hid_text; i++) {
		const lin *l = &m->th[i];
		ALLOC(bt->hpre[i], (size_t)N * l->out);
		ALLOC(bt->hout[i], (size_t)N * l->out);
		if ((rc = train_linear_forward(bt->hpre[i], h, PT(m, l->w), PT(m, l->b), N, l->in,
		                               l->out)) ||
		    (rc = train_gelu_forward(bt->hout[i], bt->hpre[i], (size_t)N * l->out)))
			return rc;
		if (p > 0) {
			ALLOC(bt->hm[i], (size_t)N * l->out);
			drop_fwd(bt->hout[i], bt->hm[i], (size_t)N * l->out, p, rng);
		}
		h = bt->hout[i];
	}
	/* transformer */
	if (m->n_layers > 0) {
		int D = m->d_model, NH = m->n_heads;
		size_t ND = (size_t)N * D;
		ALLOC(bt->e0, ND);
		if ((rc = train_linear_forward(bt->e0, h, PT(m, m->emb.w), PT(m, m->emb.b), N, m->emb.in,
		                               D)))
			return rc;
		float sc = sqrtf((float)D);
		for (size_t k = 0; k < ND; k++)
			bt->e0[k] *= sc;
		if ((rc = add_pe(bt->e0, bt, D, ws)))
			return rc;
		if (p > 0) {
			ALLOC(bt->e0m, ND);
			drop_fwd(bt->e0, bt->e0m, ND, p, rng);
		}
		ALLOC(bt->tc, m->n_layers);
		const float *x = bt->e0;
		for (int l = 0; l < m->n_layers; l++) {
			const tlayer *L = &m->tl[l];
			tcache *c = &bt->tc[l];
			c->x = (float *)x;
			ALLOC(c->ln1, ND);
			ALLOC(c->mean1, N);
			ALLOC(c->rstd1, N);
			float *qkv, *ap;
			ALLOC(qkv, 3 * ND);
			ALLOC(c->qkvp, (size_t)B * T * 3 * D);
			ALLOC(ap, (size_t)B * T * D);
			ALLOC(c->att, (size_t)B * NH * T * T);
			ALLOC(c->a, ND);
			ALLOC(c->o, ND);
			ALLOC(c->xm, ND);
			ALLOC(c->ln2, ND);
			ALLOC(c->mean2, N);
			ALLOC(c->rstd2, N);
			ALLOC(c->f1, 4 * ND);
			ALLOC(c->g, 4 * ND);
			ALLOC(c->f2, ND);
			if ((rc = train_layernorm_forward(c->ln1, c->mean1, c->rstd1, x, PT(m, L->ln1_w),
			                                  PT(m, L->ln1_b), N, D, LN_EPS)) ||
			    (rc = train_linear_forward(qkv, c->ln1, PT(m, L->qkv.w), NULL, N, D, 3 * D)))
				return rc;
			scatter_rows(c->qkvp, qkv, bt, 3 * D);
			if ((rc = train_attention_forward(ap, c->att, c->qkvp, bt->keymask, B, T, D, NH,
			                                  m->unidirectional)))
				return rc;
			gather_rows(c->a, ap, bt, D);
			if ((rc = train_linear_forward(c->o, c->a, PT(m, L->o.w), PT(m, L->o.b), N, D, D)))
				return rc;
			if (p > 0) {
				ALLOC(c->om, ND);
				drop_fwd(c->o, c->om, ND, p, rng);
			}
			for (size_t k = 0; k < ND; k++)
				c->xm[k] = x[k] + c->o[k];
			if ((rc = train_layernorm_forward(c->ln2, c->mean2, c->rstd2, c->xm,
			                                  PT(m, L->ln2_w), PT(m, L->ln2_b), N, D, LN_EPS)) ||
			    (rc = train_linear_forward(c->f1, c->ln2, PT(m, L->f1.w), PT(m, L->f1.b), N, D,
			                               4 * D)) ||
			    (rc = train_gelu_forward(c->g, c->f1, 4 * ND)))
				return rc;
			if (p > 0) {
				ALLOC(c->gm, 4 * ND);
				drop_fwd(c->g, c->gm, 4 * ND, p, rng);
			}
			if ((rc = train_linear_forward(c->f2, c->g, PT(m, L->f2.w), PT(m, L->f2.b), N,
			                               4 * D, D)))
				return rc;
			if (p > 0) {
				ALLOC(c->f2m, ND);
				drop_fwd(c->f2, c->f2m, ND, p, rng);
			}
			float *nx;
			ALLOC(nx, ND);
			for (size_t k = 0; k < ND; k++)
				nx[k] = c->xm[k] + c->f2[k];
			x = nx;
		}
		bt->xl = (float *)x;
		ALLOC(bt->y, ND);
		ALLOC(bt->ymean, N);
		ALLOC(bt->yrstd, N);
		ALLOC(bt->O, ND);
		if ((rc = train_layernorm_forward(bt->y, bt->ymean, bt->yrstd, x, PT(m, m->fin_w),
		                                  PT(m, m->fin_b), N, D, LN_EPS)) ||
		    (rc = train_gelu_forward(bt->O, bt->y, ND)))
			return rc;
	} else {
		bt->O = (float *)h;
	}
	int C = m->cout;
	/* intent similarities */
	if (m->intent) {
		int E = m->embed_dim, nl = m->n_labels;
		ALLOC(bt->S, (size_t)B * C);
		ALLOC(bt->temb, (size_t)B * E);
		for (int b = 0; b < B; b++)
			memcpy(bt->S + (size_t)b * C, bt->O + row(bt, b, bt->ntok[b]) * C,
			       (size_t)C * sizeof(float));
		if ((rc = train_linear_forward(bt->temb, bt->S, PT(m, m->te.w), PT(m, m->te.b), B, C,
		                               E)))
			return rc;
		ALLOC(bt->L0, (size_t)nl * nl);
		for (int i = 0; i < nl; i++)
			bt->L0[(size_t)i * nl + i] = 1.0f;
		const float *lx = bt->L0;
		if (m->n_hid_label) {
			ALLOC(bt->lpre, m->n_hid_label);
			ALLOC(bt->lout, m->n_hid_label);
			ALLOC(bt->lm, m->n_hid_label);
		}
		for (int i = 0; i < m->n_hid_label; i++) {
			const lin *l = &m->lh[i];
			ALLOC(bt->lpre[i], (size_t)nl * l->out);
			ALLOC(bt->lout[i], (size_t)nl * l->out);
			if ((rc = train_linear_forward(bt->lpre[i], lx, PT(m, l->w), PT(m, l->b), nl,
			                               l->in, l->out)) ||
			    (rc = train_gelu_forward(bt->lout[i], bt->lpre[i], (size_t)nl * l->out)))
				return rc;
			if (p > 0) {
				ALLOC(bt->lm[i], (size_t)nl * l->out);
				drop_fwd(bt->lout[i], bt->lm[i], (size_t)nl * l->out, p, rng);
			}
			lx = bt->lout[i];
		}
		ALLOC(bt->lemb, (size_t)nl * E);
		ALLOC(bt->sims, (size_t)B * nl);
		ALLOC(bt->probs, (size_t)B * nl);
		if ((rc = train_linear_forward(bt->lemb, lx, PT(m, m->le.w), PT(m, m->le.b), nl,
		                               m->le.in, E)) ||
		    (rc = train_matmul(0, 1, B, nl, E, 1.0f, bt->temb, E, bt->lemb, E, 0.0f, bt->sims,
		                       nl)) ||
		    (rc = train_softmax_forward(bt->probs, bt->sims, B, nl)))
			return rc;
	}
	/* entity logits */
	if (m->entity) {
		ALLOC(bt->logits, (size_t)N * m->n_tags);
		if ((rc = train_linear_forward(bt->logits, bt->O, PT(m, m->ent.w), PT(m, m->ent.b), N, C,
		                               m->n_tags)))
			return rc;
	}
	return TRAIN_OK;
}

/* Rasa's _scale_loss: when some example's probability is above 0.5, each
 * loss is weighted by ((1 - p) / 0.5)^4 (no gradient through the weight). */
static void scale_weights(float *w, const double *logp, int B, int on)
{
	int any = 0;
	for (int b = 0; b < B; b++)
		any |= exp(logp[b]) > 0.5;
	for (int b = 0; b < B; b++)
		w[b] = on && any ? (float)pow((1.0 - exp(logp[b])) / 0.5, 4) : 1.0f;
}

/* Losses of a forward pass, and the gradient of their sum into dO (and the
 * parameter gradients of the heads). */
static int diet_heads_backward(const diet_model *m, const diet_opts *o, batch *bt, float *dO,
                               train_arena *ws)
{
	int B = bt->B, C = m->cout, rc;
	double *logp;
	float *w;
	ALLOC(logp, B);
	ALLOC(w, B);
	if (m->intent) {
		int nl = m->n_labels, E = m->embed_dim;
		float *dsims, *dtemb, *dlemb, *dS;
		ALLOC(dsims, (size_t)B * nl);
		ALLOC(dtemb, (size_t)B * E);
		ALLOC(dlemb, (size_t)nl * E);
		ALLOC(dS, (size_t)B * C);
		for (int b = 0; b < B; b++) {
			const float *pr = bt->probs + (size_t)b * nl;
			logp[b] = log(fmax((double)pr[bt->target[b]], 1e-45));
			int arg = 0;
			for (int j = 1; j < nl; j++)
				if (pr[j] > pr[arg])
					arg = j;
			bt->correct += arg == bt->target[b];
		}
		scale_weights(w, logp, B, o->scale_loss);
		double loss = 0;
		for (int b = 0; b < B; b++) {
			const float *pr = bt->probs + (size_t)b * nl, *s = bt->sims + (size_t)b * nl;
			float *d = dsims + (size_t)b * nl;
			loss += -logp[b] * w[b];
			for (int j = 0; j < nl; j++)
				d[j] = (pr[j] - (j == bt->target[b])) * w[b] / B;
			if (o->constrain_similarities) {
				/* mean over the labels of sigmoid cross-entropy */
				for (int j = 0; j < nl; j++) {
					double x = s[j], y = j == bt->target[b];
					loss += (fmax(x, 0) - x * y + log1p(exp(-fabs(x)))) / nl;
					d[j] += (float)((1 / (1 + exp(-x)) - y) / nl / B);
				}
			}
		}
		bt->loss_i = loss / B;
		/* sims = temb lemb^T */
		if ((rc = train_matmul(0, 0, B, E, nl, 1.0f, dsims, nl, bt->lemb, E, 0.0f, dtemb, E)) ||
		    (rc = train_matmul(1, 0, nl, E, B, 1.0f, dsims, nl, bt->temb, E, 0.0f, dlemb, E)) ||
		    (rc = train_linear_backward(dS, GT(m, m->te.w), GT(m, m->te.b), dtemb, bt->S,
		                                PT(m, m->te.w), B, C, E)))
			return rc;
		for (int b = 0; b < B; b++) {
			float *d = dO + row(bt, b, bt->ntok[b]) * C;
			const float *s = dS + (size_t)b * C;
			for (int c = 0; c < C; c++)
				d[c] += s[c];
		}
		/* the label side */
		int nh = m->n_hid_label;
		const float *lx = nh ? bt->lout[nh - 1] : bt->L0;
		float *dl = NULL;
		if (nh)
			ALLOC(dl, (size_t)nl * m->le.in);
		if ((rc = train_linear_backward(dl, GT(m, m->le.w), GT(m, m->le.b), dlemb, lx,
		                                PT(m, m->le.w), nl, m->le.in, E)))
			return rc;
		for (int i = nh - 1; i >= 0; i--) {
			const lin *l = &m->lh[i];
			size_t n = (size_t)nl * l->out;
			if (bt->lm && bt->lm[i])
				drop_bwd(dl, bt->lm[i], n, o->drop_rate);
			float *dpre, *dprev = NULL;
			ALLOC(dpre, n);
			if (i > 0)
				ALLOC(dprev, (size_t)nl * l->in);
			if ((rc = train_gelu_backward(dpre, bt->lpre[i], dl, n)) ||
			    (rc = train_linear_backward(dprev, GT(m, l->w), GT(m, l->b), dpre,
			                                i ? bt->lout[i - 1] : bt->L0, PT(m, l->w), nl,
			                                l->in, l->out)))
				return rc;
			dl = dprev;
		}
	}
	if (m->entity) {
		int K = m->n_tags;
		float *dlog;
		ALLOC(dlog, (size_t)bt->N * K);
		ALLOC(bt->alpha, B);
		const float *A = PT(m, m->crf);
		for (int b = 0; b < B; b++) {
			int n = bt->ntok[b];
			ALLOC(bt->alpha[b], (size_t)n * K + 1);
			if ((rc = nlu_crf_nll_forward(&logp[b], bt->alpha[b], bt->logits + row(bt, b, 0) * K,
			                              A, bt->tags + row(bt, b, 0), n, K)))
				return rc;
			logp[b] = -logp[b];
		}
		scale_weights(w, logp, B, o->scale_loss);
		double loss = 0;
		for (int b = 0; b < B; b++) {
			loss += -logp[b] * w[b];
			if ((rc = nlu_crf_nll_backward(dlog + row(bt, b, 0) * K, GT(m, m->crf),
			                               bt->logits + row(bt, b, 0) * K, A,
			                               bt->tags + row(bt, b, 0), bt->alpha[b], bt->ntok[b], K,
			                               w[b] / B)))
				return rc;
		}
		bt->loss_e = loss / B;
		if ((rc = train_linear_backward(dO, GT(m, m->ent.w), GT(m, m->ent.b), dlog, bt->O,
		                                PT(m, m->ent.w), bt->N, C, K)))
			return rc;
	}
	return TRAIN_OK;
}

/* From dO back to the parameters of the encoder and the sparse layers. */
static int diet_encoder_backward(const diet_model *m, const diet_opts *o, batch *bt, float *dO,
                                 train_arena *ws)
{
	int N = bt->N, B = bt->B, T = bt->T, rc;
	float p = o->drop_rate;
	int nh = m->n_hid_text;
	/* the gradient at the encoder's input (the last hidden layer's output, or X) */
	int win = nh ? m->th[nh - 1].out : m->cin;
	float *dh = NULL;
	int need_input = nh || m->units;  /* X's gradient only matters for the sparse layer */
	if (m->n_layers > 0) {
		int D = m->d_model, NH = m->n_heads;
		size_t ND = (size_t)N * D;
		float *dy, *dx;
		ALLOC(dy, ND);
		ALLOC(dx, ND);
		if ((rc = train_gelu_backward(dy, bt->y, dO, ND)) ||
		    (rc = train_layernorm_backward(dx, GT(m, m->fin_w), GT(m, m->fin_b), dy, bt->xl,
		                                   PT(m, m->fin_w), bt->ymean, bt->yrstd, N, D)))
			return rc;
		float *dxm, *tmp, *t4, *dqkv, *da, *dln, *dap, *dqkvp;
		size_t BT = (size_t)B * T;
		ALLOC(dxm, ND);
		ALLOC(tmp, ND);
		ALLOC(t4, 4 * ND);
		ALLOC(dqkv, 3 * ND);
		ALLOC(da, ND);
		ALLOC(dln, ND);
		ALLOC(dap, BT * D);
		ALLOC(dqkvp, BT * 3 * D);
		for (int l = m->n_layers - 1; l >= 0; l--) {
			const tlayer *L = &m->tl[l];
			tcache *c = &bt->tc[l];
			/* x' = xm + drop(f2): */
			memcpy(dxm, dx, ND * sizeof(float));
			memcpy(tmp, dx, ND * sizeof(float));
			if (c->f2m)
				drop_bwd(tmp, c->f2m, ND, p);
			memset(t4, 0, 4 * ND * sizeof(float));
			if ((rc = train_linear_backward(t4, GT(m, L->f2.w), GT(m, L->f2.b), tmp, c->g,
			                                PT(m, L->f2.w), N, 4 * D, D)))
				return rc;
			if (c->gm)
				drop_bwd(t4, c->gm, 4 * ND, p);
			float *df1 = t4;  /* gelu backward must not run in place: use dqkv's room? */
			float *dpre;
			ALLOC(dpre, 4 * ND);
			memset(dln, 0, ND * sizeof(float));
			if ((rc = train_gelu_backward(dpre, c->f1, df1, 4 * ND)) ||
			    (rc = train_linear_backward(dln, GT(m, L->f1.w), GT(m, L->f1.b), dpre, c->ln2,
			                                PT(m, L->f1.w), N, D, 4 * D)) ||
			    (rc = train_layernorm_backward(dxm, GT(m, L->ln2_w), GT(m, L->ln2_b), dln, c->xm,
			                                   PT(m, L->ln2_w), c->mean2, c->rstd2, N, D)))
				return rc;
			/* xm = x + drop(o): */
			memcpy(dx, dxm, ND * sizeof(float));
			memcpy(tmp, dxm, ND * sizeof(float));
			if (c->om)
				drop_bwd(tmp, c->om, ND, p);
			memset(da, 0, ND * sizeof(float));
			memset(dap, 0, BT * D * sizeof(float));
			memset(dqkvp, 0, BT * 3 * D * sizeof(float));
			memset(dln, 0, ND * sizeof(float));
			if ((rc = train_linear_backward(da, GT(m, L->o.w), GT(m, L->o.b), tmp, c->a,
			                                PT(m, L->o.w), N, D, D)))
				return rc;
			scatter_rows(dap, da, bt, D);
			if ((rc = train_attention_backward(dqkvp, dap, c->qkvp, c->att, B, T, D, NH)))
				return rc;
			gather_rows(dqkv, dqkvp, bt, 3 * D);
			if ((rc = train_linear_backward(dln, GT(m, L->qkv.w), NULL, dqkv, c->ln1,
			                                PT(m, L->qkv.w), N, D, 3 * D)) ||
			    (rc = train_layernorm_backward(dx, GT(m, L->ln1_w), GT(m, L->ln1_b), dln, c->x,
			                                   PT(m, L->ln1_w), c->mean1, c->rstd1, N, D)))
				return rc;
		}
		/* x_0 = drop(sqrt(D) emb(h) + PE) */
		if (bt->e0m)
			drop_bwd(dx, bt->e0m, ND, p);
		float sc = sqrtf((float)D);
		for (size_t k = 0; k < ND; k++)
			dx[k] *= sc;
		if (need_input)
			ALLOC(dh, (size_t)N * win);
		if ((rc = train_linear_backward(dh, GT(m, m->emb.w), GT(m, m->emb.b), dx,
		                                nh ? bt->hout[nh - 1] : bt->X, PT(m, m->emb.w), N, win,
		                                D)))
			return rc;
	} else {
		dh = dO;
	}
	for (int i = nh - 1; i >= 0 && dh; i--) {
		const lin *l = &m->th[i];
		size_t n = (size_t)N * l->out;
		if (bt->hm && bt->hm[i])
			drop_bwd(dh, bt->hm[i], n, p);
		float *dpre, *dprev = NULL;
		ALLOC(dpre, n);
		if (i > 0 || m->units)
			ALLOC(dprev, (size_t)N * l->in);
		if ((rc = train_gelu_backward(dpre, bt->hpre[i], dh, n)) ||
		    (rc = train_linear_backward(dprev, GT(m, l->w), GT(m, l->b), dpre,
		                                i ? bt->hout[i - 1] : bt->X, PT(m, l->w), N, l->in,
		                                l->out)))
			return rc;
		dh = dprev;
	}
	if (m->units && dh) {
		/* dh is (N, cin); the sparse part is its first U columns */
		int U = m->units;
		if (bt->xm)
			for (int r = 0; r < N; r++)
				drop_bwd(dh + (size_t)r * m->cin, bt->xm + (size_t)r * U, (size_t)U, p);
		float *gq = GT(m, m->sq_b), *gs = GT(m, m->st_b);
		for (int b = 0; b < B; b++)
			for (int t = 0; t <= bt->ntok[b]; t++) {
				const float *d = dh + row(bt, b, t) * m->cin;
				float *g = t == bt->ntok[b] ? gs : gq;
				for (int u = 0; u < U; u++)
					g[u] += d[u];
			}
		if ((m->sq_w >= 0 &&
		     (rc = nlu_sparse_backward(GT(m, m->sq_w), dh, m->cin, bt->sq_ptr, bt->sq_idx,
		                               bt->sq_val, N, (int)m->sparse_dim, U))) ||
		    (rc = nlu_sparse_backward(GT(m, m->st_w), dh, m->cin, bt->st_ptr, bt->st_idx,
		                              bt->st_val, N, (int)m->sparse_dim, U)))
			return rc;
	}
	return TRAIN_OK;
}

/* Set up a batch of messages idx[0..B): positions and inputs. */
static int batch_begin(const diet_model *m, const train_features *f, const size_t *bmap,
                       const size_t *idx, int B, int training, const int32_t *labels,
                       int32_t *const *tags, batch *bt, train_arena *ws, train_rng *rng,
                       float sparse_drop)
{
	memset(bt, 0, sizeof *bt);
	bt->B = B;
	bt->msg = idx;
	bt->training = training;
	ALLOC(bt->ntok, B);
	int T = 1;
	for (int b = 0; b < B; b++) {
		size_t n = f->messages[idx[b]].n_tokens;
		if (n > 100000)
			return TRAIN_EINVAL;
		bt->ntok[b] = m->sentence_only ? 0 : (int)n;
		if (bt->ntok[b] + 1 > T)
			T = bt->ntok[b] + 1;
	}
	bt->T = T;
	ALLOC(bt->off, B + 1);
	for (int b = 0; b < B; b++)
		bt->off[b + 1] = bt->off[b] + bt->ntok[b] + 1;
	bt->N = bt->off[B];
	return batch_inputs(m, f, bmap, labels, tags, bt, ws, rng, sparse_drop);
}

/* ------------------------------------------------------------------------ */
/* training */

typedef struct tdata {
	size_t *idx; size_t n;        /* training messages */
	size_t *eval; size_t n_eval;  /* hold-out */
	int32_t *labels;              /* per message of f: label id or -1 */
	int32_t **tags;               /* per message: tag ids per token (entity) */
} tdata;

static void tdata_free(tdata *d, size_t n_msgs)
{
	free(d->idx);
	free(d->eval);
	free(d->labels);
	if (d->tags)
		for (size_t i = 0; i < n_msgs; i++)
			free(d->tags[i]);
	free(d->tags);
}

/* Rasa's bilou_tags_from_offsets (BILOU) or determine_token_labels (not):
 * entities whose span does not start and end at token boundaries are left
 * out with BILOU, as Rasa does. */
static int message_tags(const diet_model *m, const train_feat_message *msg, int32_t *tags)
{
	size_t n = msg->n_tokens;
	for (size_t t = 0; t < n; t++)
		tags[t] = 0;
	for (size_t e = 0; e < msg->n_entities; e++) {
		const train_rasa_entity *en = &msg->entities[e];
		int type = find_str(m->types, m->n_types, en->entity);
		if (type < 0)
			continue;
		if (m->bilou) {
			long s = -1, l = -1;
			for (size_t t = 0; t < n; t++) {
				if (msg->tokens[t].start == en->start && s < 0)
					s = (long)t;
				if (msg->tokens[t].end == en->end)
					l = (long)t;
			}
			if (s < 0 || l < 0 || l < s)
				continue;
			if (s == l)
				tags[s] = make_tag(m, type, P_U);
			else {
				tags[s] = make_tag(m, type, P_B);
				for (long t = s + 1; t < l; t++)
					tags[t] = make_tag(m, type, P_I);
				tags[l] = make_tag(m, type, P_L);
			}
		} else {
			for (size_t t = 0; t < n; t++)
				if (msg->tokens[t].start < en->end && msg->tokens[t].end > en->start &&
				    tags[t] == 0)
					tags[t] = make_tag(m, type, 0);
		}
	}
	return 0;
}

/* Gather labels, entity types and blocks from the data into a new model. */
static int diet_new(diet_model **out, const diet_opts *o, const train_features *f, char *why,
                    size_t whylen)
{
	diet_model *m = calloc(1, sizeof *m);
	if (!m)
		return TRAIN_ENOMEM;
	int rc = TRAIN_ENOMEM;
	/* labels: the sorted distinct intents of the examples */
	if (!(m->labels = calloc(f->n_messages + 1, sizeof *m->labels)))
		goto out;
	for (size_t i = 0; i < f->n_messages; i++) {
		char *in;
		if (msg_label(o, &f->messages[i], &in))
			goto out;
		if (!in)
			continue;
		int dup = 0;
		for (int k = 0; k < m->n_labels && !dup; k++)
			dup = !strcmp(m->labels[k], in);
		if (dup)
			free(in);
		else
			m->labels[m->n_labels++] = in;
	}
	qsort(m->labels, (size_t)m->n_labels, sizeof *m->labels, cmp_str);
	/* entity types */
	size_t ne = 0;
	for (size_t i = 0; i < f->n_messages; i++)
		ne += f->messages[i].n_entities;
	if (!(m->types = calloc(ne + 1, sizeof *m->types)))
		goto out;
	for (size_t i = 0; i < f->n_messages; i++)
		for (size_t e = 0; e < f->messages[i].n_entities; e++) {
			const char *t = f->messages[i].entities[e].entity;
			int dup = 0;
			for (int k = 0; k < m->n_types && !dup; k++)
				dup = !strcmp(m->types[k], t);
			if (!dup && !(m->types[m->n_types++] = xstrdup(t)))
				goto out;
		}
	qsort(m->types, (size_t)m->n_types, sizeof *m->types, cmp_str);
	m->bilou = o->bilou;
	m->intent = o->intent && m->n_labels >= 2;
	m->entity = o->entity && m->n_types > 0;
	m->n_tags = m->entity ? (m->bilou ? 4 * m->n_types + 1 : m->n_types + 1) : 0;
	/* blocks */
	if (!(m->blocks = calloc(f->n_blocks + 1, sizeof *m->blocks)))
		goto out;
	for (size_t b = 0; b < f->n_blocks; b++) {
		const train_feat_block *fb = &f->blocks[b];
		if (!use_block(o, fb->name))
			continue;
		dblock *d = &m->blocks[m->n_blocks];
		if (!(d->name = xstrdup(fb->name)))
			goto out;
		m->n_blocks++;
		d->kind = fb->kind;
		d->dim = fb->dim;
		if (fb->kind == TRAIN_FEAT_SPARSE) {
			d->off = m->sparse_dim;
			if (fb->dim > (uint32_t)INT32_MAX - m->sparse_dim) {
				rc = fail(why, whylen, "too many sparse feature columns");
				goto out;
			}
			m->sparse_dim += fb->dim;
		} else {
			d->off = m->dense_dim;
			if (fb->dim > 1000000u - m->dense_dim) {
				rc = fail(why, whylen, "too many dense feature columns");
				goto out;
			}
			m->dense_dim += fb->dim;
		}
	}
	for (int i = 0; i < o->n_featurizers; i++) {
		size_t b;
		if (train_features_find_block(f, o->featurizers[i], &b)) {
			rc = fail(why, whylen, "featurizers: the features have no block '%s'",
			          o->featurizers[i]);
			goto out;
		}
	}
	m->units = m->sparse_dim ? o->units : 0;
	m->cin = m->units + (int)m->dense_dim;
	if (m->cin == 0) {
		rc = fail(why, whylen, "no features: put a featurizer (CountVectorsFeaturizer, ...) "
		          "before DIETClassifier");
		goto out;
	}
	if (o->n_hid_text && !(m->hid_text = malloc((size_t)o->n_hid_text * sizeof(int))))
		goto out;
	if (o->n_hid_label && !(m->hid_label = malloc((size_t)o->n_hid_label * sizeof(int))))
		goto out;
	if (o->n_hid_text)
		memcpy(m->hid_text, o->hid_text, (size_t)o->n_hid_text * sizeof(int));
	if (o->n_hid_label)
		memcpy(m->hid_label, o->hid_label, (size_t)o->n_hid_label * sizeof(int));
	m->n_hid_text = o->n_hid_text;
	m->n_hid_label = o->n_hid_label;
	m->n_layers = o->n_layers;
	m->d_model = o->d_model;
	m->n_heads = o->n_heads;
	m->unidirectional = o->unidirectional;
	m->embed_dim = o->embed_dim;
	m->density = o->density;
	/* Rasa reads only the sentence features when nothing needs the tokens */
	m->sentence_only = m->n_layers == 0 && !m->entity;
	m->trained = m->intent || m->entity;
	if ((rc = diet_layout(m)))
		goto out;
	diet_init(m, o->seed);
	*out = m;
	return TRAIN_OK;
out:
	diet_free(m);
	return rc;
}

/* Rasa's linearly_increasing_batch_size. */
static int batch_size_at(const diet_opts *o, int64_t epoch, int64_t epochs)
{
	if (epochs <= 1)
		return o->batch_min;
	return (int)(o->batch_min + (double)epoch * (o->batch_max - o->batch_min) / (double)(epochs - 1));
}

static void shuffle(size_t *v, size_t n, train_rng *r)
{
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)train_rng_below(r, i);
		size_t t = v[i - 1];
		v[i - 1] = v[j];
		v[j] = t;
	}
}

/*
 * One epoch's order of examples: shuffled; with the balanced strategy,
 * then rearranged as Rasa's _balance_model_data does (labels visited in a
 * random order, each contributing count/n * batch + 1 examples per visit,
 * a label that has gone round once skipped every other visit, until every
 * label has gone round once).  Returns the count (may exceed n).
 */
static size_t epoch_order(const tdata *d, const diet_model *m, const diet_opts *o, int bs,
                          train_rng *r, size_t **out)
{
	size_t n = d->n;
	size_t *perm = malloc((n ? n : 1) * sizeof *perm);
	if (!perm)
		return (size_t)-1;
	memcpy(perm, d->idx, n * sizeof *perm);
	shuffle(perm, n, r);
	if (!o->balanced || !m->intent || n == 0) {
		*out = perm;
		return n;
	}
	int nl = m->n_labels;
	size_t *count = calloc((size_t)nl, sizeof *count), *start = calloc((size_t)nl + 1, sizeof *start);
	size_t *grouped = malloc(n * sizeof *grouped), *pos = calloc((size_t)nl, sizeof *pos);
	int *cycles = calloc((size_t)nl, sizeof *cycles), *skipped = calloc((size_t)nl, sizeof *skipped);
	size_t *order = malloc((size_t)nl * sizeof *order);
	size_t cap = 2 * n + (size_t)nl * (size_t)(bs + 1), len = 0;
	size_t *res = malloc(cap * sizeof *res);
	if (!count || !start || !grouped || !pos || !cycles || !skipped || !order || !res) {
		free(res);
		res = NULL;
		len = (size_t)-1;
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		count[d->labels[perm[i]]]++;
	for (int l = 0; l < nl; l++)
		start[l + 1] = start[l] + count[l];
	for (size_t i = 0; i < n; i++) {
		int l = d->labels[perm[i]];
		grouped[start[l] + pos[l]++] = perm[i];
	}
	memset(pos, 0, (size_t)nl * sizeof *pos);
	/* labels without examples (possible in finetuning) count as done */
	for (int l = 0; l < nl; l++)
		if (!count[l])
			cycles[l] = 1;
	for (;;) {
		int done = 1;
		for (int l = 0; l < nl && done; l++)
			done = cycles[l] > 0;
		if (done)
			break;
		for (int l = 0; l < nl; l++)
			order[l] = (size_t)l;
		shuffle(order, (size_t)nl, r);
		for (int k = 0; k < nl; k++) {
			int l = (int)order[k];
			if (!count[l])
				continue;
			if (cycles[l] > 0 && !skipped[l]) {
				skipped[l] = 1;
				continue;
			}
			skipped[l] = 0;
			size_t take = (size_t)((double)count[l] / n * bs) + 1;
			for (size_t j = 0; j < take && pos[l] + j < count[l]; j++) {
				if (len == cap) {
					size_t *p = realloc(res, 2 * cap * sizeof *res);
					if (!p) {
						free(res);
						res = NULL;
						len = (size_t)-1;
						goto out;
					}
					res = p;
					cap *= 2;
				}
				res[len++] = grouped[start[l] + pos[l] + j];
			}
			pos[l] += take;
			if (pos[l] >= count[l]) {
				cycles[l]++;
				pos[l] = 0;
			}
			done = 1;
			for (int q = 0; q < nl && done; q++)
				done = cycles[q] > 0;
			if (done)
				break;
		}
	}
out:
	free(perm);
	free(count);
	free(start);
	free(grouped);
	free(pos);
	free(cycles);
	free(skipped);
	free(order);
	*out = res;
	return len;
}

/* Inference over messages idx[0..n) in chunks; calls back per message with
 * the batch and its position b. */
typedef int (*infer_fn)(void *ud, const batch *bt, int b, train_arena *ws);

static int diet_infer(const diet_model *m, const diet_opts *o, const train_features *f,
                      const size_t *bmap, const size_t *idx, size_t n, infer_fn fn, void *ud)
{
	train_arena *ws = NULL;
	int rc = train_arena_create(0, &ws);
	if (rc)
		return rc;
	size_t mark = train_arena_mark(ws);
	for (size_t s = 0; s < n && !rc; s += 64) {
		int B = (int)(n - s < 64 ? n - s : 64);
		batch bt;
		train_arena_reset(ws, mark);
		if ((rc = batch_begin(m, f, bmap, idx + s, B, 0, NULL, NULL, &bt, ws, NULL, 0)) ||
		    (rc = diet_forward(m, o, &bt, ws, NULL)))
			break;
		for (int b = 0; b < B && !rc; b++)
			rc = fn(ud, &bt, b, ws);
	}
	train_arena_destroy(ws);
	return rc;
}

typedef struct acc_ud {
	const diet_model *m;
	const tdata *d;
	size_t correct, n;
	size_t tp, fp, fn;     /* entity tags (not O) */
} acc_ud;

static int acc_cb(void *ud, const batch *bt, int b, train_arena *ws)
{
	acc_ud *a = ud;
	const diet_model *m = a->m;
	size_t msg = bt->msg[b];
	if (m->intent && a->d->labels[msg] >= 0) {
		const float *s = bt->sims + (size_t)b * m->n_labels;
		int arg = 0;
		for (int j = 1; j < m->n_labels; j++)
			if (s[j] > s[arg])
				arg = j;
		a->correct += arg == a->d->labels[msg];
		a->n++;
	}
	if (m->entity && bt->ntok[b] > 0) {
		int K = m->n_tags, T = bt->ntok[b];
		int32_t *path = train_arena_alloc(ws, (size_t)T * sizeof *path);
		if (!path)
			return TRAIN_ENOMEM;
		int rc = nlu_crf_viterbi(path, NULL, bt->logits + row(bt, b, 0) * K, PT(m, m->crf), T, K);
		if (rc)
			return rc;
		const int32_t *gold = a->d->tags[msg];
		for (int t = 0; t < T; t++) {
			if (path[t] && path[t] == gold[t])
				a->tp++;
			else {
				a->fp += path[t] != 0;
				a->fn += gold[t] != 0;
			}
		}
	}
	return TRAIN_OK;
}

static int evaluate(const diet_model *m, const diet_opts *o, const train_features *f,
                    const size_t *bmap, const tdata *d, const size_t *idx, size_t n, double *acc,
                    double *f1)
{
	acc_ud a = { .m = m, .d = d };
	int rc = diet_infer(m, o, f, bmap, idx, n, acc_cb, &a);
	if (rc)
		return rc;
	*acc = a.n ? (double)a.correct / a.n : -1;
	if (f1)
		*f1 = !m->entity ? -1 : a.tp ? 2.0 * a.tp / (2.0 * a.tp + a.fp + a.fn) : 0.0;
	return TRAIN_OK;
}

/*
 * Finetuning on features whose sparse blocks grew (a CountVectorsFeaturizer
 * that appended new terms to its vocabulary): as Rasa's
 * _replace_dense_for_sparse_layer, each block's known rows of the
 * sparse-to-dense kernels keep their values and the new rows are drawn from
 * a normal distribution with the mean and deviation of the old kernel.
 * Other blocks must be as they were (match_blocks says what differs).
 */
static int diet_grow(diet_model **mp, const train_features *f, uint64_t seed, char *why,
                     size_t whylen)
{
	diet_model *old = *mp, *m;
	int grow = 0;
	for (int i = 0; i < old->n_blocks; i++) {
		size_t b;
		if (train_features_find_block(f, old->blocks[i].name, &b) ||
		    (int)f->blocks[b].kind != old->blocks[i].kind || f->blocks[b].dim == old->blocks[i].dim)
			continue;
		if (old->blocks[i].kind != TRAIN_FEAT_SPARSE || f->blocks[b].dim < old->blocks[i].dim)
			return TRAIN_OK; /* match_blocks reports it */
		grow = 1;
	}
	if (!grow)
		return TRAIN_OK;
	if (!(m = malloc(sizeof *m)))
		return TRAIN_ENOMEM;
	/* the architecture moves to the new model; the parameters are laid out anew */
	*m = *old;
	old->labels = old->types = NULL;
	old->blocks = NULL;
	old->hid_text = old->hid_label = NULL;
	old->n_labels = old->n_types = old->n_blocks = 0;
	m->pt = NULL;
	m->n_pt = m->cap_pt = 0;
	m->n_floats = 0;
	m->pa = m->ga = m->oa = m->ma = NULL;
	m->P = m->G = m->M = m->V = NULL;
	m->th = m->lh = NULL;
	m->tl = NULL;
	m->step = 0;
	uint32_t *old_dim = calloc((size_t)m->n_blocks + 1, sizeof *old_dim);
	uint32_t *old_off = calloc((size_t)m->n_blocks + 1, sizeof *old_off);
	int rc = TRAIN_ENOMEM;
	if (!old_dim || !old_off)
		goto out;
	for (int i = 0; i < m->n_blocks; i++) {
		old_dim[i] = m->blocks[i].dim;
		old_off[i] = m->blocks[i].off;
	}
	m->sparse_dim = 0;
	for (int i = 0; i < m->n_blocks; i++) {
		dblock *d = &m->blocks[i];
		if (d->kind != TRAIN_FEAT_SPARSE)
			continue;
		size_t b;
		if (!train_features_find_block(f, d->name, &b))
			d->dim = f->blocks[b].dim;
		if (d->dim > (uint32_t)INT32_MAX - m->sparse_dim) {
			rc = fail(why, whylen, "too many sparse feature columns");
			goto out;
		}
		d->off = m->sparse_dim;
		m->sparse_dim += d->dim;
	}
	if ((rc = diet_layout(m)))
		goto out;
	train_rng r;
	train_rng_seed(&r, seed ^ 0x67726f77ULL);
	for (int i = 0; i < m->n_pt; i++) {
		ptensor *t = &m->pt[i];
		const ptensor *o = &old->pt[i];
		if (t->mask)
			memcpy(t->mask, o->mask, (size_t)o->rows * o->cols);
		if (i != m->sq_w && i != m->st_w) {
			memcpy(m->P + t->off, old->P + o->off, (size_t)o->rows * o->cols * sizeof(float));
			continue;
		}
		int U = t->cols;
		const float *ow = old->P + o->off;
		size_t n = (size_t)o->rows * U;
		double mean = 0, var = 0;
		for (size_t k = 0; k < n; k++)
			mean += ow[k];
		mean /= n;
		for (size_t k = 0; k < n; k++)
			var += (ow[k] - mean) * (ow[k] - mean);
		float sd = (float)sqrt(var / n);
		for (int bi = 0; bi < m->n_blocks; bi++) {
			const dblock *d = &m->blocks[bi];
			if (d->kind != TRAIN_FEAT_SPARSE)
				continue;
			float *nw = m->P + t->off + (size_t)d->off * U;
			memcpy(nw, ow + (size_t)old_off[bi] * U, (size_t)old_dim[bi] * U * sizeof(float));
			train_rng_fill_normal(&r, nw + (size_t)old_dim[bi] * U,
			                      (size_t)(d->dim - old_dim[bi]) * U, (float)mean, sd);
		}
	}
	diet_free(old);
	*mp = m;
	m = NULL;
	rc = TRAIN_OK;
out:
	free(old_dim);
	free(old_off);
	if (m) {
		/* give the architecture back */
		old->labels = m->labels;
		old->types = m->types;
		old->blocks = m->blocks;
		old->hid_text = m->hid_text;
		old->hid_label = m->hid_label;
		old->n_labels = m->n_labels;
		old->n_types = m->n_types;
		old->n_blocks = m->n_blocks;
		for (int i = 0; i < old->n_blocks && old_dim; i++) {
			old->blocks[i].dim = old_dim[i];
			old->blocks[i].off = old_off[i];
		}
		m->labels = m->types = NULL;
		m->blocks = NULL;
		m->hid_text = m->hid_label = NULL;
		m->n_labels = m->n_types = m->n_blocks = 0;
		diet_free(m);
	}
	return rc;
}

/* Labels and entity tags of the messages of f; the training set (every
 * message with a known intent, or all when intents are off). */
static int prepare_data(const diet_model *m, const diet_opts *o, const train_features *f,
                        int fresh, tdata *d, char *why, size_t whylen)
{
	if (!(d->labels = malloc((f->n_messages + 1) * sizeof *d->labels)) ||
	    !(d->idx = malloc((f->n_messages + 1) * sizeof *d->idx)))
		return TRAIN_ENOMEM;
	for (size_t i = 0; i < f->n_messages; i++) {
		char *in;
		if (msg_label(o, &f->messages[i], &in))
			return TRAIN_ENOMEM;
		d->labels[i] = in ? find_str(m->labels, m->n_labels, in) : -1;
		if (m->intent && d->labels[i] < 0) {
			if (in && !fresh) {
				fail(why, whylen, "finetuning: %s '%s' is new; the model knows only the "
				     "labels it was trained on (train a new model instead)",
				     o->label_response_key ? "response key" : "intent", in);
				free(in);
				return TRAIN_ECOMPONENT;
			}
			free(in);
			continue;  /* Rasa trains only on examples with a label */
		}
		free(in);
		d->idx[d->n++] = i;
	}
	if (m->entity) {
		if (!(d->tags = calloc(f->n_messages, sizeof *d->tags)))
			return TRAIN_ENOMEM;
		for (size_t i = 0; i < f->n_messages; i++) {
			const train_feat_message *msg = &f->messages[i];
			for (size_t e = 0; e < msg->n_entities; e++)
				if (!fresh && find_str(m->types, m->n_types, msg->entities[e].entity) < 0)
					return fail(why, whylen, "finetuning: entity '%s' is new; the model "
					            "knows only the entities it was trained on",
					            msg->entities[e].entity);
			if (!(d->tags[i] = malloc((msg->n_tokens + 1) * sizeof **d->tags)))
				return TRAIN_ENOMEM;
			message_tags(m, msg, d->tags[i]);
		}
	}
	return TRAIN_OK;
}

/*
 * The start of a step's gradient: 2 * reg * w for the kernels under L2
 * (Keras: reg * sum w^2, whose value is returned for the loss), 0 for the
 * rest, in one pass instead of a clearing and an addition.  The sum of
 * squares runs in 16 float lanes (lane j takes the elements j mod 16),
 * added in a fixed order, on both paths.
 */
static void l2_plain(float *restrict g, const float *restrict w, float r2, size_t i0, size_t n,
                     float lane[16])
{
	size_t k = i0;
	for (; k + 16 <= n; k += 16)
		for (int l = 0; l < 16; l++) {
			lane[l] += w[k + l] * w[k + l];
			g[k + l] = r2 * w[k + l];
		}
	for (int l = 0; k < n; k++, l++) {
		lane[l] += w[k] * w[k];
		g[k] = r2 * w[k];
	}
}

#ifdef DIET_X86
__attribute__((target("avx512f"))) static size_t l2_avx512(float *g, const float *w, float r2,
                                                            size_t n, float lane[16])
{
	__m512 acc = _mm512_loadu_ps(lane), rv = _mm512_set1_ps(r2);
	size_t k = 0;
	for (; k + 16 <= n; k += 16) {
		__m512 x = _mm512_loadu_ps(w + k);
		acc = _mm512_add_ps(acc, _mm512_mul_ps(x, x));
		_mm512_storeu_ps(g + k, _mm512_mul_ps(rv, x));
	}
	_mm512_storeu_ps(lane, acc);
	return k;
}
#endif

/* g = 2 reg w over n floats; returns the sum of w^2 (16 lanes, fixed order) */
static double l2_grad(float *g, const float *w, float r2, size_t n)
{
	float lane[16] = { 0 };
	size_t done = 0;
#ifdef DIET_X86
	if (__builtin_cpu_supports("avx512f"))
		done = l2_avx512(g, w, r2, n, lane);
#endif
	l2_plain(g, w, r2, done, n, lane);
	double s2 = 0;
	for (int l = 0; l < 16; l++)
		s2 += lane[l];
	return s2;
}

static int is_sparse_kernel(const diet_model *m, int i) { return i == m->sq_w || i == m->st_w; }

/* lazy: the sparse-to-dense kernels are left out (their rows of the step's
 * features get their L2 term in lazy_begin; the rest keep G zero) */
static double grad_init(diet_model *m, const diet_opts *o, int lazy)
{
	double reg = 0;
	size_t end = 0;
	for (int i = 0; i < m->n_pt; i++) {
		const ptensor *t = &m->pt[i];
		size_t cnt = (size_t)t->rows * t->cols;
		float *w = m->P + t->off, *g = m->G + t->off;
		/* the gaps between tensors, and tensors without L2 */
		memset(m->G + end, 0, (t->off - end) * sizeof(float));
		end = t->off + cnt;
		if (lazy && is_sparse_kernel(m, i))
			continue;
		if (!(t->l2 && o->reg > 0)) {
			memset(g, 0, cnt * sizeof(float));
			continue;
		}
		reg += o->reg * l2_grad(g, w, 2.0f * o->reg, cnt);
	}
	memset(m->G + end, 0, (m->n_floats - end) * sizeof(float));
	return reg;
}

/* Masked weights get no gradient. */
static void grad_mask(diet_model *m)
{
	for (int i = 0; i < m->n_pt; i++) {
		const ptensor *t = &m->pt[i];
		if (!t->mask)
			continue;
		size_t cnt = (size_t)t->rows * t->cols;
		float *g = m->G + t->off;
		for (size_t k = 0; k < cnt; k++)
			if (!t->mask[k])
				g[k] = 0.0f;
	}
}

/*
 * lazy_adam: only the rows of the sparse-to-dense kernels that a feature of
 * the step's batch selects (an entry in its CSR, dropped or not) get a
 * gradient (their data term plus their L2 term) and an Adam update; the
 * other rows keep their weights and both moments (TensorFlow Addons'
 * LazyAdam).  Everything else is updated as without it.  The step's work
 * is then proportional to the batch's features instead of the vocabulary.
 * For each kernel (sequence, sentence): the sorted rows of this step, and
 * every row's sum of squares (for the reported L2 term, which stays the
 * whole kernel's).  G of the kernels is zero outside a step.
 */
typedef struct lazy_rows {
	int on;
	int exact;               /* plain Adam through exact_adam_step (no rsq) */
	int V, U;
	uint8_t *seen;           /* (V) */
	uint32_t *rows[2];       /* (V) each: sq, st */
	int n_rows[2];
	double *rsq[2];          /* (V) each, w^2 summed per row */
} lazy_rows;

static void lazy_free(lazy_rows *z)
{
	free(z->seen);
	for (int k = 0; k < 2; k++) {
		free(z->rows[k]);
		free(z->rsq[k]);
	}
	memset(z, 0, sizeof *z);
}

static int lazy_kernel(const diet_model *m, int k) { return k == 0 ? m->sq_w : m->st_w; }

static int lazy_init(lazy_rows *z, diet_model *m, int exact)
{
	memset(z, 0, sizeof *z);
	z->on = 1;
	z->exact = exact;
	if (!m->units)
		return TRAIN_OK;
	z->V = (int)m->sparse_dim;
	z->U = m->units;
	if (!(z->seen = calloc((size_t)z->V, 1)))
		return TRAIN_ENOMEM;
	for (int k = 0; k < 2; k++) {
		int ti = lazy_kernel(m, k);
		if (ti < 0)
			continue;
		if (!(z->rows[k] = malloc((size_t)z->V * sizeof *z->rows[k])) ||
		    (!exact && !(z->rsq[k] = malloc((size_t)z->V * sizeof *z->rsq[k]))))
			return TRAIN_ENOMEM;
		float *w = PT(m, ti), *g = GT(m, ti);
		for (int r = 0; r < z->V && !exact; r++) {
			const float *x = w + (size_t)r * z->U;
			double s2 = 0;
			for (int u = 0; u < z->U; u++)
				s2 += (double)x[u] * x[u];
			z->rsq[k][r] = s2;
		}
		memset(g, 0, (size_t)z->V * z->U * sizeof *g);
	}
	return TRAIN_OK;
}

/* The step's rows (from the batch's CSRs) and their L2 gradient; the
 * kernels' L2 term of the loss (all rows, the weights before the step). */
static double lazy_begin(lazy_rows *z, diet_model *m, const diet_opts *o, const batch *bt)
{
	double reg = 0;
	for (int k = 0; k < 2; k++) {
		int ti = lazy_kernel(m, k);
		z->n_rows[k] = 0;
		if (ti < 0 || !z->V)
			continue;
		const uint32_t *ptr = k == 0 ? bt->sq_ptr : bt->st_ptr;
		const uint32_t *idx = k == 0 ? bt->sq_idx : bt->st_idx;
		for (uint32_t e = ptr[0]; e < ptr[bt->N]; e++)
			if (idx[e] < (uint32_t)z->V)
				z->seen[idx[e]] = 1;
		int n = 0;
		for (int r = 0; r < z->V; r++)
			if (z->seen[r]) {
				z->seen[r] = 0;
				z->rows[k][n++] = (uint32_t)r;
			}
		z->n_rows[k] = n;
		if (!(m->pt[ti].l2 && o->reg > 0))
			continue;
		if (!z->exact) {
			double s2 = 0;
			for (int r = 0; r < z->V; r++)
				s2 += z->rsq[k][r];
			reg += o->reg * s2;
		}
		float *w = PT(m, ti), *g = GT(m, ti);
		for (int i = 0; i < n; i++) {
			size_t off = (size_t)z->rows[k][i] * z->U;
			l2_grad(g + off, w + off, 2.0f * o->reg, (size_t)z->U);
		}
	}
	return reg;
}

/* Adam over every tensor but the kernels, and over the kernels' rows of
 * the step (runs of consecutive rows in one call); then the kernels' G
 * back to zero and their rows' sums of squares. */
static void lazy_adam_step(lazy_rows *z, diet_model *m, const train_adamw_cfg *adam, float lr)
{
	for (int i = 0; i < m->n_pt; i++) {
		const ptensor *t = &m->pt[i];
		if (is_sparse_kernel(m, i))
			continue;
		train_adamw_step(adam, m->P + t->off, m->G + t->off, m->M + t->off, m->V + t->off,
		                 (size_t)t->rows * t->cols, lr, m->step);
	}
	for (int k = 0; k < 2; k++) {
		int ti = lazy_kernel(m, k);
		if (ti < 0 || !z->V)
			continue;
		size_t base = m->pt[ti].off, U = (size_t)z->U;
		const uint32_t *rows = z->rows[k];
		for (int i = 0; i < z->n_rows[k];) {
			int j = i + 1;
			while (j < z->n_rows[k] && rows[j] == rows[j - 1] + 1)
				j++;
			size_t off = base + rows[i] * U, cnt = (size_t)(j - i) * U;
			train_adamw_step(adam, m->P + off, m->G + off, m->M + off, m->V + off, cnt, lr,
			                 m->step);
			memset(m->G + off, 0, cnt * sizeof(float));
			for (int r = i; r < j; r++) {
				const float *x = m->P + base + rows[r] * U;
				double s2 = 0;
				for (size_t u = 0; u < U; u++)
					s2 += (double)x[u] * x[u];
				z->rsq[k][rows[r]] = s2;
			}
			i = j;
		}
	}
}

/*
 * Plain Adam, faster (the default; lazy_adam off): the same bits as
 * grad_init's gradient and train_adamw_step over the whole model, but the
 * kernels' rows that no feature of the batch selects have the gradient
 * 2 reg w (their L2 term) or 0, computed in the Adam pass instead of
 * written to G and read back: a third less memory traffic on a large
 * vocabulary, where that traffic is most of a step.  The operations per
 * element are train_adamw_step's (libtrain/optim.c), in the same order;
 * the kernels' sum of squares runs in grad_init's 16 lanes.
 */
typedef struct adam_k {
	float b1, omb1, b2, omb2, bc2s, eps, nss, decay;
} adam_k;

static adam_k adam_consts(const train_adamw_cfg *c, float lr, int64_t step)
{
	if (step < 1)
		step = 1;
	double bc1 = 1.0 - pow((double)c->beta1, (double)step);
	double bc2 = 1.0 - pow((double)c->beta2, (double)step);
	adam_k k = {
		.decay = (float)(1.0 - (double)lr * (double)c->weight_decay),
		.b1 = c->beta1,
		.omb1 = (float)(1.0 - (double)c->beta1),
		.b2 = c->beta2,
		.omb2 = (float)(1.0 - (double)c->beta2),
		.bc2s = (float)sqrt(bc2),
		.eps = c->eps,
		.nss = (float)(-(double)lr / bc1),
	};
	return k;
}

enum { G_ZERO, G_L2, G_READ };

/* elements [i0, n) of a kernel range; lane of element i: (lane0 + i) % 16 */
static void fused_plain(const adam_k *k, float *p, const float *g, float *m, float *v,
                        int gmode, float r2, size_t i0, size_t n, float lane[16], int lane0)
{
	for (size_t i = i0; i < n; i++) {
		float x = p[i];
		float gi = gmode == G_READ ? g[i] : gmode == G_L2 ? r2 * x : 0.0f;
		if (gmode != G_ZERO)
			lane[(lane0 + i) % 16] += x * x;
		float mi = m[i] * k->b1 + k->omb1 * gi;
		float vi = v[i] * k->b2 + k->omb2 * gi * gi;
		float den = sqrtf(vi) / k->bc2s + k->eps;
		m[i] = mi;
		v[i] = vi;
		p[i] = x * k->decay + k->nss * mi / den;
	}
}

#ifdef DIET_X86
__attribute__((target("avx512f"))) static size_t fused_avx512(const adam_k *k, float *p,
                                                               const float *g, float *m,
                                                               float *v, int gmode, float r2,
                                                               size_t n, float lane[16])
{
	const __m512 decay = _mm512_set1_ps(k->decay), b1 = _mm512_set1_ps(k->b1),
	             omb1 = _mm512_set1_ps(k->omb1), b2 = _mm512_set1_ps(k->b2),
	             omb2 = _mm512_set1_ps(k->omb2), bc2s = _mm512_set1_ps(k->bc2s),
	             eps = _mm512_set1_ps(k->eps), nss = _mm512_set1_ps(k->nss),
	             rv = _mm512_set1_ps(r2);
	__m512 acc = _mm512_loadu_ps(lane);
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		__m512 x = _mm512_loadu_ps(p + i), gi;
		if (gmode == G_READ)
			gi = _mm512_loadu_ps(g + i);
		else if (gmode == G_L2)
			gi = _mm512_mul_ps(rv, x);
		else
			gi = _mm512_setzero_ps();
		if (gmode != G_ZERO)
			acc = _mm512_add_ps(acc, _mm512_mul_ps(x, x));
		__m512 mi = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(m + i), b1),
		                          _mm512_mul_ps(omb1, gi));
		__m512 vi = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(v + i), b2),
		                          _mm512_mul_ps(_mm512_mul_ps(omb2, gi), gi));
		__m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), bc2s), eps);
		__m512 pi = _mm512_add_ps(_mm512_mul_ps(x, decay),
		                          _mm512_div_ps(_mm512_mul_ps(nss, mi), den));
		_mm512_storeu_ps(m + i, mi);
		_mm512_storeu_ps(v + i, vi);
		_mm512_storeu_ps(p + i, pi);
	}
	_mm512_storeu_ps(lane, acc);
	return i;
}
#endif

static void fused_range(const adam_k *k, diet_model *m, size_t off, size_t n, int gmode, float r2,
                        float lane[16], int lane0)
{
	float *p = m->P + off, *g = m->G + off, *mm = m->M + off, *v = m->V + off;
	size_t done = 0;
#ifdef DIET_X86
	if (lane0 == 0 && __builtin_cpu_supports("avx512f"))
		done = fused_avx512(k, p, g, mm, v, gmode, r2, n, lane);
#endif
	fused_plain(k, p, g, mm, v, gmode, r2, done, n, lane, lane0);
}

/* The step's Adam (rows from lazy_begin); returns the kernels' L2 term
 * of the loss (before the step). */
static double exact_adam_step(lazy_rows *z, diet_model *m, const diet_opts *o,
                              const train_adamw_cfg *adam, float lr)
{
	for (int i = 0; i < m->n_pt; i++) {
		const ptensor *t = &m->pt[i];
		if (is_sparse_kernel(m, i))
			continue;
		train_adamw_step(adam, m->P + t->off, m->G + t->off, m->M + t->off, m->V + t->off,
		                 (size_t)t->rows * t->cols, lr, m->step);
	}
	adam_k k = adam_consts(adam, lr, m->step);
	double reg = 0;
	for (int kk = 0; kk < 2; kk++) {
		int ti = lazy_kernel(m, kk);
		if (ti < 0 || !z->V)
			continue;
		int l2 = m->pt[ti].l2 && o->reg > 0;
		float r2 = 2.0f * o->reg, lane[16] = { 0 };
		size_t base = m->pt[ti].off, U = (size_t)z->U, V = (size_t)z->V;
		const uint32_t *rows = z->rows[kk];
		int n = z->n_rows[kk], i = 0;
		size_t r = 0;
		while (r < V) {
			/* untouched rows [r, next touched) */
			size_t e = i < n ? rows[i] : V;
			if (e > r)
				fused_range(&k, m, base + r * U, (e - r) * U, l2 ? G_L2 : G_ZERO, r2, lane,
				            (int)(r * U % 16));
			if (i >= n)
				break;
			/* a run of touched rows */
			int j = i + 1;
			while (j < n && rows[j] == rows[j - 1] + 1)
				j++;
			size_t off = base + rows[i] * U, cnt = (size_t)(j - i) * U;
			fused_range(&k, m, off, cnt, G_READ, r2, lane, (int)(rows[i] * U % 16));
			memset(m->G + off, 0, cnt * sizeof(float));
			r = (size_t)rows[j - 1] + 1;
			i = j;
		}
		if (l2) {
			double s2 = 0;
			for (int l = 0; l < 16; l++)
				s2 += lane[l];
			reg += o->reg * s2;
		}
	}
	return reg;
}

/* One step's loss and gradients (into m->G, cleared first) for messages
 * idx[0..B); with z (lazy_adam), only the kernels' rows of the batch. */
static int step_grad(diet_model *m, const diet_opts *o, const train_features *f,
                     const size_t *bmap, const tdata *d, const size_t *idx, int B,
                     train_arena *ws, train_rng *rng, batch *bt, double *reg, lazy_rows *z)
{
	float sparse_drop = o->sparse_input_dropout ? o->drop_rate : 0.0f;
	int rc;
	float *dO;
	*reg = grad_init(m, o, z && z->on);
	if ((rc = batch_begin(m, f, bmap, idx, B, 1, d->labels, d->tags, bt, ws, rng, sparse_drop)) ||
	    (rc = diet_forward(m, o, bt, ws, rng)))
		return rc;
	if (z && z->on)
		*reg += lazy_begin(z, m, o, bt);
	if (!(dO = train_arena_alloc(ws, (size_t)bt->N * m->cout * sizeof *dO)))
		return TRAIN_ENOMEM;
	if ((rc = diet_heads_backward(m, o, bt, dO, ws)) ||
	    (rc = diet_encoder_backward(m, o, bt, dO, ws)))
		return rc;
	grad_mask(m);
	return TRAIN_OK;
}

int diet_loss_grad(diet_model *m, const diet_opts *o, const train_features *f, double *loss)
{
	tdata d = { 0 };
	size_t *bmap = calloc((size_t)m->n_blocks + 1, sizeof *bmap);
	train_arena *ws = NULL;
	char why[256];
	train_rng rng;
	train_rng_seed(&rng, 1);
	int rc = TRAIN_ENOMEM;
	if (!bmap || (rc = match_blocks(m, f, bmap, why, sizeof why)) ||
	    (rc = prepare_data(m, o, f, 0, &d, why, sizeof why)) || (rc = train_arena_create(0, &ws)))
		goto out;
	batch bt;
	double reg;
	if ((rc = step_grad(m, o, f, bmap, &d, d.idx, (int)d.n, ws, &rng, &bt, &reg, NULL)))
		goto out;
	*loss = bt.loss_i + bt.loss_e + reg;
out:
	tdata_free(&d, f->n_messages);
	free(bmap);
	train_arena_destroy(ws);
	return rc;
}

int diet_train_step(diet_model *m, const diet_opts *o, const train_features *f,
                    const size_t *msgs, int n, int reference, double *loss)
{
	tdata d = { 0 };
	size_t *bmap = calloc((size_t)m->n_blocks + 1, sizeof *bmap);
	train_arena *ws = NULL;
	lazy_rows lz = { 0 };
	char why[256];
	train_rng rng;
	train_rng_seed(&rng, 1);
	int rc = TRAIN_ENOMEM;
	if (!bmap || (rc = match_blocks(m, f, bmap, why, sizeof why)) ||
	    (rc = prepare_data(m, o, f, 0, &d, why, sizeof why)) || (rc = train_arena_create(0, &ws)) ||
	    (!reference && (rc = lazy_init(&lz, m, !o->lazy_adam))))
		goto out;
	batch bt;
	double reg;
	if ((rc = step_grad(m, o, f, bmap, &d, msgs, n, ws, &rng, &bt, &reg, lz.on ? &lz : NULL)))
		goto out;
	train_adamw_cfg adam = train_adamw_defaults();
	adam.eps = ADAM_EPS;
	adam.weight_decay = 0.0f;
	m->step++;
	if (!lz.on)
		train_adamw_step(&adam, m->P, m->G, m->M, m->V, m->n_floats, (float)o->learning_rate,
		                 m->step);
	else if (lz.exact)
		reg += exact_adam_step(&lz, m, o, &adam, (float)o->learning_rate);
	else
		lazy_adam_step(&lz, m, &adam, (float)o->learning_rate);
	*loss = bt.loss_i + bt.loss_e + reg;
out:
	tdata_free(&d, f->n_messages);
	free(bmap);
	train_arena_destroy(ws);
	lazy_free(&lz);
	return rc;
}

float *diet_param_data(diet_model *m, size_t *n)
{
	*n = m->n_floats;
	return m->P;
}

const float *diet_grad_data(const diet_model *m) { return m->G; }

int diet_train(diet_model **mp, const diet_opts *o, int64_t epochs, const train_features *f,
               train_ctx *ctx, diet_report *rep, char *why, size_t whylen)
{
	diet_model *m = *mp;
	int fresh = !m, rc;
	tdata d = { 0 };
	size_t *bmap = NULL, *order = NULL;
	train_arena *ws = NULL;
	lazy_rows lz = { 0 };
	float *swa = NULL;
	int swa_n = 0;
	memset(rep, 0, sizeof *rep);
	rep->train_accuracy = rep->train_entity_f1 = rep->eval_accuracy = -1;
	if (fresh && (rc = diet_new(&m, o, f, why, whylen)))
		return rc;
	if (!fresh) {
		if ((rc = diet_grow(&m, f, o->seed, why, whylen)))
			return rc;
		*mp = m;
	}
	rc = TRAIN_ENOMEM;
	if (!(bmap = calloc((size_t)m->n_blocks + 1, sizeof *bmap)))
		goto out;
	if ((rc = match_blocks(m, f, bmap, why, whylen)))
		goto out;
	if ((rc = prepare_data(m, o, f, fresh, &d, why, whylen)))
		goto out;
	rep->labels = m->intent ? m->n_labels : 0;
	rep->tags = m->entity ? m->n_tags : 0;
	rep->parameters = 0;
	for (int i = 0; i < m->n_pt; i++)
		rep->parameters += (size_t)m->pt[i].rows * m->pt[i].cols;
	if (!m->trained || d.n == 0) {
		train_log(ctx, TRAIN_LOG_WARN, "%s: nothing to train (%s); the model predicts nothing",
		          "DIETClassifier", d.n == 0 ? "no examples" :
		          "fewer than 2 intents and no entities");
		m->trained = 0;
		rc = TRAIN_OK;
		goto done;
	}
	/* the hold-out set (Rasa: evaluate_on_number_of_examples) */
	train_rng data_rng, drop_rng;
	train_rng_seed(&data_rng, o->seed * 2 + 1);
	train_rng_seed(&drop_rng, o->seed * 2 + 2);
	if (o->eval_examples > 0) {
		if ((size_t)o->eval_examples >= d.n) {
			rc = fail(why, whylen, "evaluate_on_number_of_examples (%lld) must be below the "
			          "number of examples (%zu)", (long long)o->eval_examples, d.n);
			goto out;
		}
		shuffle(d.idx, d.n, &data_rng);
		d.n_eval = (size_t)o->eval_examples;
		if (!(d.eval = malloc(d.n_eval * sizeof *d.eval)))
			goto out;
		memcpy(d.eval, d.idx, d.n_eval * sizeof *d.eval);
		memmove(d.idx, d.idx + d.n_eval, (d.n - d.n_eval) * sizeof *d.idx);
		d.n -= d.n_eval;
	}
	rep->examples = d.n;
	rep->eval_examples = d.n_eval;
	if ((rc = train_arena_create(0, &ws)))
		goto out;
	size_t mark = train_arena_mark(ws);
	train_adamw_cfg adam = train_adamw_defaults();
	adam.eps = ADAM_EPS;
	adam.weight_decay = 0.0f;
	if ((rc = lazy_init(&lz, m, !o->lazy_adam)))
		goto out;
	for (int64_t ep = 0; ep < epochs; ep++) {
		int bs = batch_size_at(o, ep, epochs);
		if (bs < 1)
			bs = 1;
		size_t n = epoch_order(&d, m, o, bs, &data_rng, &order);
		if (n == (size_t)-1) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		double sum_i = 0, sum_e = 0, sum_r = 0;
		size_t batches = 0;
		for (size_t s = 0; s < n; s += (size_t)bs) {
			int B = (int)(n - s < (size_t)bs ? n - s : (size_t)bs);
			if (o->drop_small_last_batch && s > 0 && B < bs / 2)
				break;
			batch bt;
			double reg;
			train_arena_reset(ws, mark);
			if ((rc = step_grad(m, o, f, bmap, &d, order + s, B, ws, &drop_rng, &bt, &reg,
			                    &lz)))
				goto out;
			if (!isfinite(bt.loss_i + bt.loss_e + reg)) {
				rc = fail(why, whylen, "training diverged at epoch %lld (the loss is not "
				          "finite); try a lower learning_rate", (long long)ep + 1);
				goto out;
			}
			m->step++;
			if (lz.exact)
				reg += exact_adam_step(&lz, m, o, &adam, (float)o->learning_rate);
			else
				lazy_adam_step(&lz, m, &adam, (float)o->learning_rate);
			sum_i += bt.loss_i;
			sum_e += bt.loss_e;
			sum_r += reg;
			batches++;
			rep->steps++;
		}
		free(order);
		order = NULL;
		if (batches) {
			rep->intent_loss = sum_i / batches;
			rep->entity_loss = sum_e / batches;
			rep->loss = (sum_i + sum_e + sum_r) / batches;
		}
		if (ep == 0)
			rep->first_epoch_loss = rep->loss;
		/* weight_averaging_epochs: the sum of the weights at the end of
		 * each of the last epochs */
		if (o->swa_epochs > 0 && ep >= epochs - o->swa_epochs) {
			if (!swa && !(swa = calloc(m->n_floats, sizeof *swa))) {
				rc = TRAIN_ENOMEM;
				goto out;
			}
			for (size_t k = 0; k < m->n_floats; k++)
				swa[k] += m->P[k];
			swa_n++;
		}
		rep->epochs = ep + 1;
		train_progress_loss(ctx, (uint64_t)ep + 1, (uint64_t)epochs, rep->loss);
		if (d.n_eval && o->eval_epochs > 0 &&
		    ((ep + 1) % o->eval_epochs == 0 || ep + 1 == epochs)) {
			double acc;
			if ((rc = evaluate(m, o, f, bmap, &d, d.eval, d.n_eval, &acc, NULL)))
				goto out;
			rep->eval_accuracy = acc;
			train_log(ctx, TRAIN_LOG_INFO, "epoch %lld: loss %.4f, hold-out intent accuracy %.4f",
			          (long long)ep + 1, rep->loss, acc);
		}
		if (train_ctx_canceled(ctx)) {
			rc = TRAIN_ECANCELED;
			goto out;
		}
	}
	if (swa_n > 1) {
		float inv = 1.0f / (float)swa_n;
		for (size_t k = 0; k < m->n_floats; k++)
			m->P[k] = swa[k] * inv;
	}
	if ((rc = evaluate(m, o, f, bmap, &d, d.idx, d.n, &rep->train_accuracy,
	                   &rep->train_entity_f1)))
		goto out;
done:
	rep->trained = m->trained;
	*mp = m;
	m = NULL;
	rc = TRAIN_OK;
out:
	if (fresh)
		diet_free(m);
	tdata_free(&d, f->n_messages);
	free(bmap);
	free(order);
	train_arena_destroy(ws);
	lazy_free(&lz);
	free(swa);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* prediction */

void diet_pred_free(diet_pred *p)
{
	if (!p)
		return;
	free(p->rank);
	free(p->conf);
	free(p->ents);
	memset(p, 0, sizeof *p);
}

typedef struct pred_ud {
	const diet_model *m;
	const diet_opts *o;
	const train_features *f;
	diet_pred *preds;
	size_t base;
} pred_ud;

/* Rasa's ensure_consistent_bilou_tagging: a B- tag runs to the next L-
 * (through I-), taking the B- tag's type; unclosed, the last one is L-. */
static void consistent_bilou(const diet_model *m, int32_t *tags, int n)
{
	for (int i = 0; i < n; i++) {
		if (tags[i] == 0 || tag_prefix(m, tags[i]) != P_B)
			continue;
		int type = tag_type(m, tags[i]), last = i + 1;
		for (;;) {
			if (last >= n) {
				last--;
				break;
			}
			int p = tags[last] ? tag_prefix(m, tags[last]) : -1;
			if (p == P_L)
				break;
			if (p == P_I)
				last++;
			else {
				last--;
				break;
			}
		}
		if (last == i)
			tags[i] = make_tag(m, type, P_U);
		else {
			tags[i] = make_tag(m, type, P_B);
			for (int k = i + 1; k < last; k++)
				tags[k] = make_tag(m, type, P_I);
			tags[last] = make_tag(m, type, P_L);
		}
	}
}

static int split_for(const diet_opts *o, const char *type)
{
	for (int i = 0; i < o->n_split; i++)
		if (!strcmp(o->split_names[i], type))
			return o->split_values[i];
	return o->split_default;
}

/* Rasa's convert_predictions_into_entities, for entity types only. */
static int tags_to_entities(const diet_model *m, const diet_opts *o, const train_feat_message *msg,
                            int32_t *tags, const float *conf, int n, diet_pred *p)
{
	if (m->bilou)
		consistent_bilou(m, tags, n);
	if (n > 0 && !(p->ents = calloc((size_t)n, sizeof *p->ents)))
		return TRAIN_ENOMEM;
	int last = 0;  /* the previous token's full tag, 0 for O */
	long last_end = -1;
	for (int i = 0; i < n; i++) {
		const train_feat_token *tok = &msg->tokens[i];
		int tag = tags[i];
		if (tag == 0) {
			last = 0;
			last_end = tok->end;
			continue;
		}
		int type = tag_type(m, tag), newtag;
		if (m->bilou) {
			int pre = tag_prefix(m, tag);
			int starts = last != tag && pre != P_L && pre != P_I;
			int unit = last == 0 || pre == P_U;
			newtag = starts || unit;
		} else {
			newtag = last != tag;
		}
		last = tag;
		diet_entity *prev = p->n_ents ? &p->ents[p->n_ents - 1] : NULL;
		/* _check_is_single_entity: at most one character apart, or (unless
		 * the type splits by comma) at most three; Rasa's check of the
		 * characters in between always passes (all() over a filter of
		 * non-empty strings), so it is left out here too */
		int single = !newtag && prev &&
		             ((long)tok->start - last_end <= 1 ||
		              ((long)tok->start - last_end <= 3 && !split_for(o, m->types[type])));
		if (newtag || !prev || !single) {
			diet_entity *e = &p->ents[p->n_ents++];
			e->type = type;
			e->start = tok->start;
			e->end = tok->end;
			e->confidence = conf[i];
		} else {
			prev->end = tok->end;
			if (conf[i] < prev->confidence)
				prev->confidence = conf[i];
		}
		last_end = tok->end;
	}
	return TRAIN_OK;
}

static int pred_cb(void *ud, const batch *bt, int b, train_arena *ws)
{
	pred_ud *u = ud;
	const diet_model *m = u->m;
	const diet_opts *o = u->o;
	size_t msg = bt->msg[b];
	diet_pred *p = &u->preds[msg];
	if (m->intent) {
		int nl = m->n_labels;
		const float *pr = bt->probs + (size_t)b * nl;
		int k = o->ranking_length > 0 && o->ranking_length < nl ? o->ranking_length : nl;
		if (!(p->rank = malloc((size_t)nl * sizeof *p->rank)) ||
		    !(p->conf = malloc((size_t)nl * sizeof *p->conf)))
			return TRAIN_ENOMEM;
		for (int j = 0; j < nl; j++)
			p->rank[j] = j;
		/* stable insertion sort by confidence, descending */
		for (int i = 1; i < nl; i++) {
			int v = p->rank[i], j = i;
			while (j > 0 && pr[p->rank[j - 1]] < pr[v]) {
				p->rank[j] = p->rank[j - 1];
				j--;
			}
			p->rank[j] = v;
		}
		double sum = 0;
		for (int i = 0; i < k; i++) {
			p->conf[i] = pr[p->rank[i]];
			sum += p->conf[i];
		}
		if (o->renormalize && sum > 0)
			for (int i = 0; i < k; i++)
				p->conf[i] = (float)(p->conf[i] / sum);
		p->n_rank = k;
	}
	if (m->entity && bt->ntok[b] > 0) {
		int K = m->n_tags, T = bt->ntok[b], rc;
		const float *U = bt->logits + row(bt, b, 0) * K, *A = PT(m, m->crf);
		int32_t *path = train_arena_alloc(ws, (size_t)T * sizeof *path);
		float *marg = train_arena_alloc(ws, (size_t)T * K * sizeof *marg);
		float *conf = train_arena_alloc(ws, (size_t)T * sizeof *conf);
		if (!path || !marg || !conf)
			return TRAIN_ENOMEM;
		if ((rc = nlu_crf_viterbi(path, NULL, U, A, T, K)) ||
		    (rc = nlu_crf_marginals(marg, U, A, T, K)))
			return rc;
		for (int t = 0; t < T; t++)
			conf[t] = marg[(size_t)t * K + path[t]];
		if ((rc = tags_to_entities(m, o, &u->f->messages[msg], path, conf, T, p)))
			return rc;
	}
	return TRAIN_OK;
}

int diet_predict(const diet_model *m, const diet_opts *o, const train_features *f,
                 diet_pred *preds, char *why, size_t whylen)
{
	if (!m->trained || f->n_messages == 0)
		return TRAIN_OK;
	size_t *bmap = calloc((size_t)m->n_blocks + 1, sizeof *bmap);
	size_t *idx = malloc(f->n_messages * sizeof *idx);
	int rc = TRAIN_ENOMEM;
	if (!bmap || !idx)
		goto out;
	if ((rc = match_blocks(m, f, bmap, why, whylen)))
		goto out;
	for (size_t i = 0; i < f->n_messages; i++)
		idx[i] = i;
	pred_ud u = { .m = m, .o = o, .f = f, .preds = preds };
	rc = diet_infer(m, o, f, bmap, idx, f->n_messages, pred_cb, &u);
out:
	free(bmap);
	free(idx);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* persistence: diet.json (architecture, vocabularies) + diet.safetensors */

static json_t *strv_json(char *const *v, int n)
{
	json_t *a = json_array();
	for (int i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_string(v[i]))) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *intv_json(const int *v, int n)
{
	json_t *a = json_array();
	for (int i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_integer(v[i]))) {
			json_decref(a);
			return NULL;
		}
	return a;
}

int diet_save(const diet_model *m, train_resource *res, char *why, size_t whylen)
{
	int rc = TRAIN_ENOMEM;
	json_t *blocks = json_array(), *j = NULL;
	train_named_tensor *nt = NULL;
	char *text = NULL, *path = NULL;
	char (*names)[72] = NULL;
	if (!blocks)
		goto out;
	for (int i = 0; i < m->n_blocks; i++)
		if (json_array_append_new(blocks, json_pack("{s:s, s:s, s:I}", "name", m->blocks[i].name,
		                                            "kind", m->blocks[i].kind == TRAIN_FEAT_SPARSE ?
		                                                    "sparse" : "dense",
		                                            "dim", (json_int_t)m->blocks[i].dim)))
			goto out;
	j = json_pack("{s:s, s:i, s:b, s:o, s:o, s:b, s:o, s:i, s:o, s:o, s:i, s:i, s:i, s:b, s:i, "
	              "s:b, s:b, s:b, s:f}",
	              "format", DIET_FORMAT, "version", m->v1_sequence ? 1 : DIET_VERSION, "trained", m->trained,
	              "labels", strv_json(m->labels, m->n_labels),
	              "entity_types", strv_json(m->types, m->n_types), "bilou", m->bilou,
	              "blocks", blocks, "units", m->units,
	              "hidden_text", intv_json(m->hid_text, m->n_hid_text),
	              "hidden_label", intv_json(m->hid_label, m->n_hid_label),
	              "transformer_layers", m->n_layers, "transformer_size", m->d_model,
	              "heads", m->n_heads, "unidirectional", m->unidirectional,
	              "embedding_dimension", m->embed_dim, "intent", m->intent, "entity", m->entity,
	              "sentence_only", m->sentence_only, "density", (double)m->density);
	blocks = NULL;
	if (!j || !(text = json_dumps(j, JSON_INDENT(1) | JSON_REAL_PRECISION(9))))
		goto out;
	if ((rc = train_resource_write(res, DIET_META, text, strlen(text))))
		goto out;
	rc = TRAIN_ENOMEM;
	int n = 0;
	if (!(nt = calloc((size_t)2 * m->n_pt + 1, sizeof *nt)) ||
	    !(names = calloc((size_t)m->n_pt + 1, sizeof *names)))
		goto out;
	for (int i = 0; i < m->n_pt; i++) {
		const ptensor *t = &m->pt[i];
		nt[n].name = t->name;
		nt[n].t.dtype = TRAIN_F32;
		nt[n].t.ndim = t->rows == 1 ? 1 : 2;
		nt[n].t.shape[0] = t->rows == 1 ? t->cols : t->rows;
		nt[n].t.shape[1] = t->rows == 1 ? 1 : t->cols;
		nt[n].t.shape[2] = nt[n].t.shape[3] = 1;
		nt[n].t.data = m->P + t->off;
		n++;
		if (t->mask) {
			snprintf(names[i], sizeof names[i], "mask.%s", t->name);
			nt[n] = nt[n - 1];
			nt[n].name = names[i];
			nt[n].t.dtype = TRAIN_U8;
			nt[n].t.data = t->mask;
			n++;
		}
	}
	const char *meta[] = { "format", DIET_FORMAT, NULL };
	train_error err = { 0 };
	size_t plen = strlen(train_resource_dir(res)) + sizeof DIET_WEIGHTS + 2;
	if (!(path = malloc(plen)))
		goto out;
	snprintf(path, plen, "%s/%s", train_resource_dir(res), DIET_WEIGHTS);
	if ((rc = train_safetensors_write(path, nt, (size_t)n, meta, &err)))
		fail(why, whylen, "%s: %s", DIET_WEIGHTS, err.text);
out:
	json_decref(blocks);
	json_decref(j);
	free(text);
	free(nt);
	free(names);
	free(path);
	return rc;
}

static int json_strv(json_t *a, char ***out, int *n)
{
	if (!json_is_array(a) || json_array_size(a) > 1000000)
		return -1;
	size_t k = json_array_size(a);
	char **v = calloc(k + 1, sizeof *v);
	if (!v)
		return -1;
	for (size_t i = 0; i < k; i++) {
		const char *s = json_string_value(json_array_get(a, i));
		if (!s || !(v[i] = xstrdup(s)) || (i > 0 && strcmp(v[i - 1], v[i]) >= 0)) {
			free_strv(v, (int)k);
			return -1;
		}
	}
	*out = v;
	*n = (int)k;
	return 0;
}

static int json_intv(json_t *a, int **out, int *n)
{
	if (!json_is_array(a) || json_array_size(a) > 64)
		return -1;
	size_t k = json_array_size(a);
	int *v = malloc((k + 1) * sizeof *v);
	if (!v)
		return -1;
	for (size_t i = 0; i < k; i++) {
		json_t *x = json_array_get(a, i);
		if (!json_is_integer(x) || json_integer_value(x) < 1 || json_integer_value(x) > 65536) {
			free(v);
			return -1;
		}
		v[i] = (int)json_integer_value(x);
	}
	*out = v;
	*n = (int)k;
	return 0;
}

int diet_load(diet_model **out, const train_resource *res, char *why, size_t whylen)
{
	*out = NULL;
	void *data = NULL;
	size_t size = 0;
	int rc = train_resource_read(res, DIET_META, &data, &size);
	if (rc)
		return fail(why, whylen, "%s: cannot read: %s", DIET_META, train_strerror(rc));
	json_error_t je;
	json_t *j = json_loadb(data, size, 0, &je), *blocks;
	free(data);
	diet_model *m = calloc(1, sizeof *m);
	train_safetensors *st = NULL;
	char *path = NULL;
	if (!m) {
		json_decref(j);
		return TRAIN_ENOMEM;
	}
	const char *format = NULL;
	int version = 0, trained = 0, bilou = 0, uni = 0, intent = 0, entity = 0, sonly = 0;
	double density = 1;
	json_t *labels, *types, *ht, *hl;
	if (!j || json_unpack(j, "{s:s, s:i, s:b, s:o, s:o, s:b, s:o, s:i, s:o, s:o, s:i, s:i, s:i, "
	                         "s:b, s:i, s:b, s:b, s:b, s:F}",
	                      "format", &format, "version", &version, "trained", &trained,
	                      "labels", &labels, "entity_types", &types, "bilou", &bilou,
	                      "blocks", &blocks, "units", &m->units, "hidden_text", &ht,
	                      "hidden_label", &hl, "transformer_layers", &m->n_layers,
	                      "transformer_size", &m->d_model, "heads", &m->n_heads,
	                      "unidirectional", &uni, "embedding_dimension", &m->embed_dim,
	                      "intent", &intent, "entity", &entity, "sentence_only", &sonly,
	                      "density", &density) ||
	    strcmp(format, DIET_FORMAT)) {
		rc = fail(why, whylen, "%s: not a DIET model description%s%s", DIET_META,
		          j ? "" : ": ", j ? "" : je.text);
		goto out;
	}
	if (version != DIET_VERSION && version != 1) {
		rc = fail(why, whylen, "%s: format version %d, this plugin reads 1 and %d", DIET_META,
		          version, DIET_VERSION);
		goto out;
	}
	m->trained = trained;
	m->bilou = bilou;
	m->unidirectional = uni;
	m->intent = intent;
	m->entity = entity;
	m->sentence_only = sonly;
	m->v1_sequence = sonly && version == 1;
	m->density = (float)density;
	if (json_strv(labels, &m->labels, &m->n_labels) || json_strv(types, &m->types, &m->n_types) ||
	    json_intv(ht, &m->hid_text, &m->n_hid_text) ||
	    json_intv(hl, &m->hid_label, &m->n_hid_label) || !json_is_array(blocks) ||
	    m->units < 0 || m->units > 65536 || m->n_layers < 0 || m->n_layers > 64 ||
	    m->d_model < 0 || m->d_model > 65536 || m->n_heads < 1 || m->embed_dim < 1 ||
	    m->embed_dim > 65536 || (m->n_layers && (m->d_model < 1 || m->d_model % m->n_heads)) ||
	    !(density > 0 && density <= 1) || (intent && m->n_labels < 2) ||
	    (entity && m->n_types < 1)) {
		rc = fail(why, whylen, "%s: bad or inconsistent values", DIET_META);
		goto out;
	}
	m->n_tags = m->entity ? (m->bilou ? 4 * m->n_types + 1 : m->n_types + 1) : 0;
	size_t nb = json_array_size(blocks);
	rc = TRAIN_ENOMEM;
	if (!(m->blocks = calloc(nb + 1, sizeof *m->blocks)))
		goto out;
	for (size_t i = 0; i < nb; i++) {
		const char *name, *kind;
		json_int_t dim;
		if (json_unpack(json_array_get(blocks, i), "{s:s, s:s, s:I}", "name", &name, "kind",
		                &kind, "dim", &dim) ||
		    dim < 1 || dim > INT32_MAX || (strcmp(kind, "sparse") && strcmp(kind, "dense"))) {
			rc = fail(why, whylen, "%s: bad block %zu", DIET_META, i);
			goto out;
		}
		dblock *d = &m->blocks[m->n_blocks];
		if (!(d->name = xstrdup(name)))
			goto out;
		m->n_blocks++;
		d->kind = kind[0] == 's' ? TRAIN_FEAT_SPARSE : TRAIN_FEAT_DENSE;
		d->dim = (uint32_t)dim;
		uint32_t *tot = d->kind == TRAIN_FEAT_SPARSE ? &m->sparse_dim : &m->dense_dim;
		if ((uint32_t)dim > (uint32_t)INT32_MAX - *tot) {
			rc = fail(why, whylen, "%s: too many feature columns", DIET_META);
			goto out;
		}
		d->off = *tot;
		*tot += (uint32_t)dim;
	}
	if ((m->units > 0) != (m->sparse_dim > 0) || m->dense_dim > 1000000u) {
		rc = fail(why, whylen, "%s: bad or inconsistent values", DIET_META);
		goto out;
	}
	m->cin = m->units + (int)m->dense_dim;
	if ((rc = diet_layout(m)))
		goto out;
	/* the weights */
	size_t plen = strlen(train_resource_dir(res)) + sizeof DIET_WEIGHTS + 2;
	rc = TRAIN_ENOMEM;
	if (!(path = malloc(plen)))
		goto out;
	snprintf(path, plen, "%s/%s", train_resource_dir(res), DIET_WEIGHTS);
	train_error err = { 0 };
	if ((rc = train_safetensors_open(path, &st, &err))) {
		rc = fail(why, whylen, "%s: %s", DIET_WEIGHTS, err.text);
		goto out;
	}
	size_t want = 0;
	for (int i = 0; i < m->n_pt; i++) {
		ptensor *t = &m->pt[i];
		char mname[72];
		train_tensor x;
		size_t cnt = (size_t)t->rows * t->cols;
		want += 1 + (t->mask != NULL);
		if (train_safetensors_get(st, t->name, &x) || x.dtype != TRAIN_F32 ||
		    train_tensor_numel(&x) != cnt || x.shape[0] != (t->rows == 1 ? t->cols : t->rows)) {
			rc = fail(why, whylen, "%s: tensor '%s' is missing or has the wrong shape",
			          DIET_WEIGHTS, t->name);
			goto out;
		}
		memcpy(m->P + t->off, x.data, cnt * sizeof(float));
		for (size_t k = 0; k < cnt; k++)
			if (!isfinite(m->P[t->off + k])) {
				rc = fail(why, whylen, "%s: tensor '%s' holds a value that is not finite",
				          DIET_WEIGHTS, t->name);
				goto out;
			}
		if (t->mask) {
			snprintf(mname, sizeof mname, "mask.%s", t->name);
			if (train_safetensors_get(st, mname, &x) || x.dtype != TRAIN_U8 ||
			    train_tensor_numel(&x) != cnt) {
				rc = fail(why, whylen, "%s: mask '%s' is missing or has the wrong shape",
				          DIET_WEIGHTS, mname);
				goto out;
			}
			memcpy(t->mask, x.data, cnt);
		}
	}
	if (train_safetensors_count(st) != want) {
		rc = fail(why, whylen, "%s: holds tensors this model does not have", DIET_WEIGHTS);
		goto out;
	}
	*out = m;
	m = NULL;
	rc = TRAIN_OK;
out:
	train_safetensors_close(st);
	free(path);
	json_decref(j);
	diet_free(m);
	return rc;
}
