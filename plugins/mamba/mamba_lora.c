/*
 * plugins/mamba/mamba_lora.c - LoRA adapters on a Mamba model's
 * projections (issue 10): making them, their forward and backward
 * through plugins/common/lora.h, the merge into the base weights, and
 * PEFT's adapter folder (adapter_config.json, adapter_model.safetensors).
 *
 * Shapes (mamba.h legend): in_proj (2Di, D), x_proj (R + 2NS, Di),
 * dt_proj (Di, R), out_proj (D, Di); an adapter on (out, in) has
 * A (r, in) and B (out, r).  Activations (for B, T): per module u (N, r),
 * and with dropout the dropped input and its byte mask (N, in); dt_proj's
 * input, the first R columns of x_proj's output, copied contiguous
 * (N, R).  Under gradient checkpointing the blocks share layer 0's.
 */
#include "mamba.h"

#include "../common/hf.h"
#include "../common/lora.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *const mamba_lora_kind_name[MAMBA_LORA_NKINDS] = { "in_proj", "x_proj", "dt_proj",
                                                               "out_proj" };

int mamba_lora_kind_parse(const char *name)
{
	if (!name)
		return -1;
	if (!strncmp(name, "mixer.", 6))
		name += 6;
	for (int k = 0; k < MAMBA_LORA_NKINDS; k++)
		if (!strcmp(name, mamba_lora_kind_name[k]))
			return k;
	return -1;
}

static size_t al16(size_t n)
{
	return (n + 15) & ~(size_t)15;
}

/* (in, out) of a kind's projection */
static void kind_shape(const mamba_dims *d, int kind, int *in, int *out)
{
	int nbc = d->R + 2 * d->NS;
	switch (kind) {
	case MAMBA_LORA_IN: *in = d->D; *out = 2 * d->Di; break;
	case MAMBA_LORA_X: *in = d->Di; *out = nbc; break;
	case MAMBA_LORA_DT: *in = d->R; *out = d->Di; break;
	default: *in = d->Di; *out = d->D; break;
	}
}

/* The base weight a kind adapts, (out, in) row-major. */
static float *kind_weight(mamba_model *m, int layer, int kind)
{
	mamba_layer_w *w = &m->w.layer[layer];
	return kind == MAMBA_LORA_IN ? w->in_proj : kind == MAMBA_LORA_X ? w->x_proj
	       : kind == MAMBA_LORA_DT ? w->dt_w : w->out_proj;
}

static float *falloc(size_t n)
{
	void *p = NULL;
	if (posix_memalign(&p, 64, (n ? n : 1) * sizeof(float)))
		return NULL;
	memset(p, 0, (n ? n : 1) * sizeof(float));
	return p;
}

void mamba_lora_free(mamba_lora *lo)
{
	if (!lo)
		return;
	free(lo->mods);
	free(lo->mod_of);
	free(lo->params);
	free(lo->grads);
	free(lo->info);
	free(lo->rng_at);
	free(lo->acts);
	free(lo->masks);
	free(lo->du);
	free(lo->dxd);
	free(lo->dxs);
	free(lo);
}

int mamba_lora_add(mamba_model *m, unsigned kinds, int r, float alpha, float dropout, uint64_t seed)
{
	const mamba_dims *d = &m->d;
	if (m->lora || r < 1 || r > 4096 || !kinds || kinds >= 1u << MAMBA_LORA_NKINDS || !(alpha > 0) ||
	    !(dropout >= 0 && dropout < 1))
		return TRAIN_EINVAL;
	int nk = 0;
	for (int k = 0; k < MAMBA_LORA_NKINDS; k++)
		nk += (kinds >> k) & 1;
	mamba_lora *lo = calloc(1, sizeof *lo);
	if (!lo)
		return TRAIN_ENOMEM;
	lo->r = r;
	lo->alpha = alpha;
	lo->scale = alpha / (float)r;
	lo->dropout = dropout;
	lo->kinds = kinds;
	lo->n_layers = d->n_layers;
	lo->n_mods = d->n_layers * nk;
	lo->mods = calloc((size_t)lo->n_mods, sizeof *lo->mods);
	lo->mod_of = malloc((size_t)d->n_layers * MAMBA_LORA_NKINDS * sizeof *lo->mod_of);
	lo->info = calloc(2 * (size_t)lo->n_mods, sizeof *lo->info);
	lo->rng_at = calloc((size_t)d->n_layers, sizeof *lo->rng_at);
	if (!lo->mods || !lo->mod_of || !lo->info || !lo->rng_at)
		goto oom;
	size_t off = 0;
	int q = 0;
	for (int l = 0; l < d->n_layers; l++)
		for (int k = 0; k < MAMBA_LORA_NKINDS; k++) {
			lo->mod_of[l * MAMBA_LORA_NKINDS + k] = -1;
			if (!((kinds >> k) & 1))
				continue;
			mamba_lora_mod *md = &lo->mods[q];
			md->layer = l;
			md->kind = k;
			kind_shape(d, k, &md->in, &md->out);
			for (int ab = 0; ab < 2; ab++) {
				mamba_tensor_info *t = &lo->info[2 * q + ab];
				snprintf(t->name, sizeof t->name, "base_model.model.backbone.layers.%d.mixer.%s.lora_%c.weight",
				         l, mamba_lora_kind_name[k], ab ? 'B' : 'A');
				t->ndim = 2;
				t->shape[0] = ab ? md->out : r;
				t->shape[1] = ab ? r : md->in;
				t->shape[2] = 1;
				t->numel = (size_t)r * (ab ? md->out : md->in);
				t->offset = off;
				if (ab)
					md->b_off = off;
				else
					md->a_off = off;
				off += al16(t->numel);
			}
			lo->mod_of[l * MAMBA_LORA_NKINDS + k] = q++;
		}
	lo->n = off;
	lo->params = falloc(off);
	lo->grads = falloc(off);
	if (!lo->params || !lo->grads)
		goto oom;
	/* PEFT: A kaiming-uniform, B zero (the adapted model starts as the base) */
	train_rng rng;
	train_rng_seed(&rng, seed ^ 0x4c6f5241ull);
	for (int i = 0; i < lo->n_mods; i++)
		lora_init_a(lo->params + lo->mods[i].a_off, r, lo->mods[i].in, &rng);
	train_rng_seed(&lo->rng, seed ^ 0x64726f70ull);
	m->lora = lo;
	return TRAIN_OK;
oom:
	mamba_lora_free(lo);
	return TRAIN_ENOMEM;
}

mamba_lora *mamba_lora_merge(mamba_model *m)
{
	mamba_lora *lo = m->lora;
	if (!lo)
		return NULL;
	for (int i = 0; i < lo->n_mods; i++) {
		const mamba_lora_mod *md = &lo->mods[i];
		lora_merge_into(kind_weight(m, md->layer, md->kind), (size_t)md->in, 1, lo->params + md->a_off,
		                lo->params + md->b_off, md->in, md->out, lo->r, lo->scale);
	}
	m->lora = NULL;
	/* the activations were the model's; the adapters go on as data */
	free(lo->acts);
	free(lo->masks);
	free(lo->du);
	free(lo->dxd);
	free(lo->dxs);
	lo->acts = lo->du = lo->dxd = lo->dxs = NULL;
	lo->masks = NULL;
	lo->ab = lo->at = 0;
	return lo;
}

/* ------------------------------------------------------------------------ */
/* activations, forward, backward */

int mamba_lora_acts_get(mamba_model *m, int B, int T)
{
	mamba_lora *lo = m->lora;
	if (!lo)
		return TRAIN_OK;
	int ckpt = m->ckpt ? 1 : 0, hasp = lo->dropout > 0;
	if (lo->acts && lo->ab == B && lo->at == T && lo->ackpt == ckpt && lo->ap == hasp)
		return TRAIN_OK;
	size_t N = (size_t)B * T, off = 0, moff = 0, maxin = 1;
	int first[MAMBA_LORA_NKINDS];
	for (int k = 0; k < MAMBA_LORA_NKINDS; k++)
		first[k] = -1;
	for (int i = 0; i < lo->n_mods; i++) {
		mamba_lora_mod *md = &lo->mods[i];
		if ((size_t)md->in > maxin)
			maxin = (size_t)md->in;
		if (ckpt && first[md->kind] >= 0) {
			md->act_off = lo->mods[first[md->kind]].act_off;
			md->mask_off = lo->mods[first[md->kind]].mask_off;
			continue;
		}
		first[md->kind] = i;
		md->act_off = off;
		md->mask_off = moff;
		off += al16(N * lo->r) + (hasp ? al16(N * md->in) : 0) +
		       (md->kind == MAMBA_LORA_DT ? al16(N * md->in) : 0);
		moff += hasp ? N * md->in : 0;
	}
	free(lo->acts);
	free(lo->masks);
	free(lo->du);
	free(lo->dxd);
	free(lo->dxs);
	lo->acts = falloc(off);
	lo->masks = malloc(moff ? moff : 1);
	lo->du = falloc(N * lo->r);
	lo->dxd = falloc(N * maxin);
	lo->dxs = falloc(N * maxin);
	lo->acts_floats = off;
	lo->mask_bytes = moff;
	if (!lo->acts || !lo->masks || !lo->du || !lo->dxd || !lo->dxs) {
		lo->ab = lo->at = 0;
		return TRAIN_ENOMEM;
	}
	lo->ab = B;
	lo->at = T;
	lo->ackpt = ckpt;
	lo->ap = hasp;
	return TRAIN_OK;
}

typedef struct mod_acts {
	float *u, *xd, *xc;
	uint8_t *mask;
} mod_acts;

static void mod_acts_of(const mamba_lora *lo, const mamba_lora_mod *md, int N, mod_acts *a)
{
	float *p = lo->acts + md->act_off;
	a->u = p;
	p += al16((size_t)N * lo->r);
	a->xd = lo->ap ? p : NULL;
	p += lo->ap ? al16((size_t)N * md->in) : 0;
	a->xc = md->kind == MAMBA_LORA_DT ? p : NULL;
	a->mask = lo->ap ? lo->masks + md->mask_off : NULL;
}

static const mamba_lora_mod *find_mod(const mamba_model *m, int layer, int kind)
{
	const mamba_lora *lo = m->lora;
	if (!lo || layer < 0 || layer >= lo->n_layers)
		return NULL;
	int i = lo->mod_of[layer * MAMBA_LORA_NKINDS + kind];
	return i < 0 ? NULL : &lo->mods[i];
}

/* The adapter of (layer, kind) and its activations for N rows of input
 * with row stride ldx: NULL with *rc TRAIN_OK when that projection has
 * none, NULL with *rc set when the sizes do not fit. */
static const mamba_lora_mod *mod_prepare(mamba_model *m, int layer, int kind, int N, int ldx,
                                         mod_acts *a, int *rc)
{
	*rc = TRAIN_OK;
	const mamba_lora_mod *md = find_mod(m, layer, kind);
	if (!md)
		return NULL;
	mamba_lora *lo = m->lora;
	if (!lo->acts || (size_t)N != (size_t)lo->ab * lo->at) {
		*rc = TRAIN_EINVAL;
		return NULL;
	}
	mod_acts_of(lo, md, N, a);
	if (ldx != md->in && !a->xc) { /* only dt_proj's input is a slice */
		*rc = TRAIN_EINVAL;
		return NULL;
	}
	return md;
}

int mamba_lora_forward(mamba_model *m, int layer, int kind, int N, const float *x, int ldx,
                       float *y, float *y2, int ldy)
{
	mod_acts a;
	int rc;
	const mamba_lora_mod *md = mod_prepare(m, layer, kind, N, ldx, &a, &rc);
	if (!md)
		return rc;
	mamba_lora *lo = m->lora;
	if (ldx != md->in) {
		/* dt_proj: the R columns of a wider row, made contiguous */
		for (int n = 0; n < N; n++)
			memcpy(a.xc + (size_t)n * md->in, x + (size_t)n * ldx, (size_t)md->in * sizeof *x);
		x = a.xc;
	}
	int out1 = y2 ? md->out / 2 : md->out;
	lora_shape s = { md->in, out1, lo->r, lo->scale, lo->fwd_p };
	const float *A = lo->params + md->a_off, *Bm = lo->params + md->b_off;
	rc = lora_forward(&s, N, x, A, Bm, a.xd, a.mask, a.u, y, ldy, &lo->rng);
	if (!rc && y2) /* in_proj's z rows: the same u, B's second half */
		rc = train_matmul(0, 1, N, md->out - out1, lo->r, lo->scale, a.u, lo->r,
		                  Bm + (size_t)out1 * lo->r, lo->r, 1.0f, y2, ldy);
	return rc;
}

int mamba_lora_backward(mamba_model *m, int layer, int kind, int N, const float *x, int ldx,
                        const float *dy, const float *dy2, int lddy, float *dx, int lddx)
{
	mod_acts a;
	int rc;
	const mamba_lora_mod *md = mod_prepare(m, layer, kind, N, ldx, &a, &rc);
	if (!md)
		return rc;
	mamba_lora *lo = m->lora;
	if (ldx != md->in) /* dt_proj: the contiguous copy forward made */
		x = a.xc;
	float *dxt = dx;
	if (dx && lddx != md->in) {
		dxt = lo->dxs;
		memset(dxt, 0, (size_t)N * md->in * sizeof *dxt);
	}
	int out1 = dy2 ? md->out / 2 : md->out;
	lora_shape s = { md->in, out1, lo->r, lo->scale, lo->fwd_p };
	const float *A = lo->params + md->a_off, *Bm = lo->params + md->b_off;
	float *dA = lo->grads + md->a_off, *dB = lo->grads + md->b_off;
	/* in_proj: the x rows and the z rows in turn; A's and the input's
	 * gradients are linear in du, so the two calls add up to the whole */
	rc = lora_backward(&s, N, x, a.xd, a.mask, a.u, A, Bm, dA, dB, dy, lddy, lo->du, lo->dxd, dxt);
	if (!rc && dy2) {
		s.out = md->out - out1;
		rc = lora_backward(&s, N, x, a.xd, a.mask, a.u, A, Bm + (size_t)out1 * lo->r, dA,
		                   dB + (size_t)out1 * lo->r, dy2, lddy, lo->du, lo->dxd, dxt);
	}
	if (!rc && dxt != dx)
		for (int n = 0; n < N; n++)
			for (int i = 0; i < md->in; i++)
				dx[(size_t)n * lddx + i] += dxt[(size_t)n * md->in + i];
	return rc;
}

/* ------------------------------------------------------------------------ */
/* PEFT's folder */

int mamba_lora_save(const mamba_lora *lo, const char *base_name, const char *dir, train_error *err)
{
	char path[4096], rank[16];
	json_t *j = json_object(), *targets = json_array();
	train_named_tensor *nt = calloc(2 * (size_t)lo->n_mods, sizeof *nt);
	int rc;
	if (!j || !targets || !nt) {
		json_decref(targets);
		rc = train_error_set(err, TRAIN_ENOMEM, dir, 0, 0, "out of memory");
		goto out;
	}
	if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
		json_decref(targets);
		rc = train_error_set(err, -errno, dir, 0, 0, "cannot create the folder: %s", strerror(errno));
		goto out;
	}
	for (int k = 0; k < MAMBA_LORA_NKINDS; k++)
		if ((lo->kinds >> k) & 1)
			json_array_append_new(targets, json_string(mamba_lora_kind_name[k]));
	json_object_set_new(j, "peft_type", json_string("LORA"));
	json_object_set_new(j, "task_type", json_string("CAUSAL_LM"));
	json_object_set_new(j, "base_model_name_or_path", json_string(base_name ? base_name : ""));
	json_object_set_new(j, "r", json_integer(lo->r));
	/* the floats as their shortest decimals (0.1, not 0.100000001) */
	char num[32];
	snprintf(num, sizeof num, "%.7g", lo->alpha);
	json_object_set_new(j, "lora_alpha", json_real(strtod(num, NULL)));
	snprintf(num, sizeof num, "%.7g", lo->dropout);
	json_object_set_new(j, "lora_dropout", json_real(strtod(num, NULL)));
	json_object_set_new(j, "target_modules", targets);
	json_object_set_new(j, "fan_in_fan_out", json_false());
	json_object_set_new(j, "bias", json_string("none"));
	json_object_set_new(j, "inference_mode", json_true());
	json_object_set_new(j, "init_lora_weights", json_true());
	json_object_set_new(j, "modules_to_save", json_null());
	if ((rc = hf_write_json(dir, "adapter_config.json", j, err)))
		goto out;
	for (int i = 0; i < 2 * lo->n_mods; i++) {
		const mamba_tensor_info *t = &lo->info[i];
		nt[i].name = t->name;
		nt[i].t.dtype = TRAIN_F32;
		nt[i].t.ndim = 2;
		nt[i].t.shape[0] = t->shape[0];
		nt[i].t.shape[1] = t->shape[1];
		nt[i].t.shape[2] = nt[i].t.shape[3] = 1;
		nt[i].t.data = lo->params + t->offset;
	}
	snprintf(rank, sizeof rank, "%d", lo->r);
	const char *meta[] = { "format", "pt", "libtrain.rank", rank, NULL };
	snprintf(path, sizeof path, "%s/adapter_model.safetensors", dir);
	rc = train_safetensors_write(path, nt, 2 * (size_t)lo->n_mods, meta, err);
out:
	free(nt);
	json_decref(j);
	return rc;
}

int mamba_lora_load(mamba_model *m, const char *dir, train_error *err)
{
	if (m->lora)
		return train_error_set(err, TRAIN_EINVAL, dir, 0, 0, "the model has an adapter already");
	hf_peft p;
	int rc = hf_peft_open(&p, dir, err);
	if (rc)
		goto out;
	unsigned kinds = hf_peft_kinds(&p, "base_model.model.backbone.layers.0.mixer.",
	                               mamba_lora_kind_name, MAMBA_LORA_NKINDS);
	if (!kinds) {
		rc = train_error_set(err, TRAIN_ECORRUPT, p.path, 0, 0,
		                     "no base_model.model.backbone.layers.0.mixer.*.lora_A.weight tensor");
		goto out;
	}
	if ((rc = mamba_lora_add(m, kinds, p.r, (float)p.alpha, (float)p.dropout, 0))) {
		train_error_set(err, rc, p.config_path, 0, 0, "cannot make the adapter (r %d)", p.r);
		goto out;
	}
	const mamba_lora *lo = m->lora;
	for (int i = 0; i < 2 * lo->n_mods; i++) {
		const mamba_tensor_info *t = &lo->info[i];
		if ((rc = hf_peft_tensor(&p, t->name, t->shape[0], t->shape[1], lo->params + t->offset, err)))
			goto out;
	}
	if (train_safetensors_count(p.st) != 2 * (size_t)lo->n_mods) {
		rc = train_error_set(err, TRAIN_ECORRUPT, p.path, 0, 0,
		                     "%zu tensors, but the adapted projections of %d blocks make %d",
		                     train_safetensors_count(p.st), lo->n_layers, 2 * lo->n_mods);
		goto out;
	}
	rc = TRAIN_OK;
out:
	if (rc && m->lora) {
		mamba_lora_free(m->lora);
		m->lora = NULL;
	}
	hf_peft_close(&p);
	return rc;
}
