/*
 * plugins/bert/bert_train.c - the training loop of the BERT components:
 * batches, masking, AdamW steps with accumulation, validation, the best
 * model, checkpoints and resuming (see bert_train.h).
 */
#include "bert_train.h"

#include <train/kernels.h>
#include <train/nn.h>
#include <train/optim.h>

#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CKPT_NAME "bert-checkpoint.safetensors"
#define CKPT_FORMAT "libtrain.bert.checkpoint"

/* ---- data -------------------------------------------------------------------- */

void bert_data_free(bert_data *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free(d->seq[i]);
	free(d->seq);
	free(d->len);
	free(d->label);
	memset(d, 0, sizeof *d);
}

int bert_data_add(bert_data *d, const bert_vocab *v, const char *text, size_t len, int max_len,
                  int32_t label)
{
	if (max_len < 3)
		return TRAIN_EINVAL;
	if ((d->n & (d->n + 1)) == 0 || d->n == 0) { /* grow at n = 0, 1, 3, 7, ... */
		size_t cap = 2 * (d->n + 1);
		int32_t **s = realloc(d->seq, cap * sizeof *s);
		if (s)
			d->seq = s;
		int *l = realloc(d->len, cap * sizeof *l);
		if (l)
			d->len = l;
		int32_t *lb = realloc(d->label, cap * sizeof *lb);
		if (lb)
			d->label = lb;
		if (!s || !l || !lb)
			return TRAIN_ENOMEM;
	}
	int32_t *ids = malloc((size_t)max_len * sizeof *ids);
	size_t n;
	if (!ids)
		return TRAIN_ENOMEM;
	int rc = bert_tokenize(v, text, len, ids + 1, (size_t)max_len - 2, &n);
	if (rc) {
		free(ids);
		return rc;
	}
	if (n > (size_t)max_len - 2)
		n = (size_t)max_len - 2;
	ids[0] = v->cls;
	ids[n + 1] = v->sep;
	d->seq[d->n] = ids;
	d->len[d->n] = (int)n + 2;
	d->label[d->n] = label;
	d->n++;
	return TRAIN_OK;
}

/* ---- batches ------------------------------------------------------------------- */

typedef struct batch {
	int B, T, M;
	int32_t *ids, *types, *labels, *rows, *targets;
	uint8_t *mask;
	size_t tokens;
	size_t cap_bt, cap_b;
} batch;

static void batch_free(batch *b)
{
	free(b->ids); free(b->types); free(b->labels); free(b->rows); free(b->targets); free(b->mask);
	memset(b, 0, sizeof *b);
}

static int is_special(const bert_vocab *v, int32_t id)
{
	return id == v->cls || id == v->sep || id == v->pad || id == v->mask || id == v->unk;
}

/* Sequences idx[0..B) of d; masked-LM positions drawn from rng when mlm. */
static int batch_make(batch *b, const bert_data *d, const size_t *idx, int B, const bert_vocab *v,
                      int mlm, double mask_prob, int V, train_rng *rng)
{
	int T = 1;
	for (int i = 0; i < B; i++)
		if (d->len[idx[i]] > T)
			T = d->len[idx[i]];
	size_t bt = (size_t)B * T;
	if (bt > b->cap_bt || (size_t)B > b->cap_b) {
		batch_free(b);
		if (!(b->ids = malloc(bt * sizeof *b->ids)) || !(b->types = calloc(bt, sizeof *b->types)) ||
		    !(b->rows = malloc(bt * sizeof *b->rows)) || !(b->targets = malloc(bt * sizeof *b->targets)) ||
		    !(b->mask = malloc(bt)) || !(b->labels = malloc((size_t)B * sizeof *b->labels)))
			return TRAIN_ENOMEM;
		b->cap_bt = bt;
		b->cap_b = (size_t)B;
	}
	b->B = B;
	b->T = T;
	b->M = 0;
	b->tokens = 0;
	for (int i = 0; i < B; i++) {
		const int32_t *s = d->seq[idx[i]];
		int n = d->len[idx[i]];
		for (int t = 0; t < T; t++) {
			b->ids[i * T + t] = t < n ? s[t] : v->pad;
			b->mask[i * T + t] = t < n;
		}
		b->tokens += (size_t)n;
		if (d->label)
			b->labels[i] = d->label[idx[i]];
		if (!mlm)
			continue;
		int chosen = 0, first = -1;
		for (int t = 0; t < n; t++) {
			if (is_special(v, s[t]))
				continue;
			if (first < 0)
				first = t;
			if (train_rng_uniform(rng) >= mask_prob)
				continue;
			chosen = 1;
			b->rows[b->M] = i * T + t;
			b->targets[b->M++] = s[t];
		}
		if (!chosen && first >= 0) {
			b->rows[b->M] = i * T + first;
			b->targets[b->M++] = s[first];
		}
	}
	for (int k = 0; k < b->M; k++) {
		float u = train_rng_uniform(rng);
		int32_t *id = &b->ids[b->rows[k]];
		if (u < 0.8f)
			*id = v->mask;
		else if (u < 0.9f)
			*id = (int32_t)train_rng_below(rng, (uint64_t)V);
	}
	return TRAIN_OK;
}

/* Forward (and with backward, the gradients scaled by `scale`); the loss
 * and, for classification, the number of correct predictions. */
static int step_pass(bert_model *m, bert_acts *a, const batch *b, int mlm, float dropout, train_rng *rng,
                     int backward, float scale, double *loss, int *correct)
{
	const int C = m->cfg.hidden, V = m->cfg.vocab_size, L = m->cfg.num_labels;
	float l = 0;
	int rc;
	if ((rc = bert_forward(m, a, b->ids, b->types, b->mask, b->B, b->T, dropout, rng)))
		return rc;
	size_t NC = (size_t)b->B * b->T * C;
	float *dh = NULL, *probs = NULL, *dl = NULL;
	int rows = mlm ? b->M : b->B, width = mlm ? V : L;
	if (mlm && rows == 0) {
		*loss = 0;
		return TRAIN_OK;
	}
	if (!(probs = malloc((size_t)rows * width * sizeof *probs)) ||
	    (backward && (!(dh = calloc(NC, sizeof *dh)) || !(dl = calloc((size_t)rows * width, sizeof *dl))))) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	if (mlm) {
		if ((rc = bert_mlm_forward(m, a, b->rows, b->M)) ||
		    (rc = train_cross_entropy_forward(&l, NULL, probs, a->mlm_logits, b->targets, rows, V, 0.0f)))
			goto out;
	} else {
		if ((rc = bert_cls_forward(m, a, rng)) ||
		    (rc = train_cross_entropy_forward(&l, NULL, probs, a->logits, b->labels, rows, L, 0.0f)))
			goto out;
		if (correct)
			for (int i = 0; i < rows; i++) {
				int best = 0;
				for (int k = 1; k < L; k++)
					if (a->logits[i * L + k] > a->logits[i * L + best])
						best = k;
				*correct += best == b->labels[i];
			}
	}
	*loss = l;
	if (!backward)
		goto out;
	if (mlm) {
		if ((rc = train_cross_entropy_backward(dl, probs, b->targets, rows, V, 0.0f, scale)) ||
		    (rc = bert_mlm_backward(m, a, dl, dh)))
			goto out;
	} else {
		if ((rc = train_cross_entropy_backward(dl, probs, b->labels, rows, L, 0.0f, scale)) ||
		    (rc = bert_cls_backward(m, a, dl, dh)))
			goto out;
	}
	rc = bert_backward(m, a, dh);
out:
	free(dh);
	free(probs);
	free(dl);
	return rc;
}

/* bert_evaluate, its forward passes with checkpointing's layout when ckpt
 * (a training run with checkpointing keeps its evaluation as small) */
static int evaluate(bert_model *m, const bert_vocab *v, const bert_data *d, int mlm, int batch_size,
                    uint64_t seed, int ckpt, double *loss, double *accuracy)
{
	bert_acts a = { 0 };
	a.ckpt = ckpt;
	batch b = { 0 };
	train_rng rng;
	size_t *idx = malloc((size_t)batch_size * sizeof *idx);
	double sum = 0;
	int correct = 0, rc = TRAIN_OK;
	size_t weight = 0;
	train_rng_seed(&rng, seed ^ 0x5EED5EEDull);
	if (!idx)
		return TRAIN_ENOMEM;
	for (size_t i = 0; i < d->n && !rc; i += (size_t)batch_size) {
		int B = (int)(d->n - i < (size_t)batch_size ? d->n - i : (size_t)batch_size);
		for (int k = 0; k < B; k++)
			idx[k] = i + (size_t)k;
		double l;
		if ((rc = batch_make(&b, d, idx, B, v, mlm, 0.15, m->cfg.vocab_size, &rng)) ||
		    (rc = step_pass(m, &a, &b, mlm, 0.0f, NULL, 0, 1.0f, &l, &correct)))
			break;
		size_t w = mlm ? (size_t)b.M : (size_t)B;
		sum += l * (double)w;
		weight += w;
	}
	*loss = weight ? sum / (double)weight : NAN;
	if (accuracy)
		*accuracy = !mlm && d->n ? (double)correct / (double)d->n : NAN;
	free(idx);
	batch_free(&b);
	bert_acts_free(&a);
	return rc;
}

int bert_evaluate(bert_model *m, const bert_vocab *v, const bert_data *d, int mlm, int batch_size,
                  uint64_t seed, double *loss, double *accuracy)
{
	return evaluate(m, v, d, mlm, batch_size, seed, 0, loss, accuracy);
}

/* ---- the trainable parameters ------------------------------------------------------ */

/* What the optimizer steps: the whole model, the adapters alone, or the
 * adapters and the classifier packed into one vector (gathered before
 * each step, scattered after). */
typedef struct tview {
	float *p, *g;
	size_t n, n_lora;
	int packed;
} tview;

static int tview_init(bert_model *m, tview *v)
{
	memset(v, 0, sizeof *v);
	size_t nh = bert_n_grads(m);
	if (!m->lora) {
		v->p = m->params + m->grad_off;
		v->g = m->grads;
		v->n = nh;
	} else if (!nh) {
		v->p = m->lora->params;
		v->g = m->lora->grads;
		v->n = v->n_lora = m->lora->n;
	} else {
		v->packed = 1;
		v->n_lora = m->lora->n;
		v->n = v->n_lora + nh;
		if (!(v->p = malloc(v->n * sizeof *v->p)) || !(v->g = malloc(v->n * sizeof *v->g)))
			return TRAIN_ENOMEM;
		memcpy(v->p, m->lora->params, v->n_lora * sizeof *v->p);
		memcpy(v->p + v->n_lora, m->params + m->grad_off, nh * sizeof *v->p);
	}
	return v->n ? TRAIN_OK : TRAIN_EINVAL;
}

static void tview_gather_grads(const bert_model *m, tview *v)
{
	if (!v->packed)
		return;
	memcpy(v->g, m->lora->grads, v->n_lora * sizeof *v->g);
	memcpy(v->g + v->n_lora, m->grads, (v->n - v->n_lora) * sizeof *v->g);
}

/* v->p (or src, n floats) back into the model */
static void tview_scatter(bert_model *m, const tview *v, const float *src)
{
	if (!v->packed) {
		if (src != v->p)
			memcpy(v->p, src, v->n * sizeof *v->p);
		return;
	}
	memcpy(m->lora->params, src, v->n_lora * sizeof *src);
	memcpy(m->params + m->grad_off, src + v->n_lora, (v->n - v->n_lora) * sizeof *src);
}

static void tview_free(tview *v)
{
	if (v->packed) {
		free(v->p);
		free(v->g);
	}
	memset(v, 0, sizeof *v);
}

/* ---- checkpoints ----------------------------------------------------------------- */

typedef struct run_state {
	int64_t step, epoch;
	size_t pos;
	double best;
	train_rng rng;
	json_t *log;
} run_state;

static int ckpt_save(const char *dir, train_fp key, const tview *m, const float *am, const float *av,
                     const float *best, const run_state *s, train_error *err)
{
	char path[4096], keyhex[TRAIN_FP_HEX], step[32], epoch[32], pos[32], bestv[40], rng[80];
	train_named_tensor t[4];
	const float *data[4] = { m->p, am, av, best };
	static const char *const names[4] = { "params", "adam_m", "adam_v", "best" };
	for (int i = 0; i < 4; i++) {
		memset(&t[i], 0, sizeof t[i]);
		t[i].name = names[i];
		t[i].t.dtype = TRAIN_F32;
		t[i].t.ndim = 1;
		t[i].t.shape[0] = (int64_t)m->n;
		t[i].t.shape[1] = t[i].t.shape[2] = t[i].t.shape[3] = 1;
		t[i].t.data = (void *)data[i];
	}
	snprintf(path, sizeof path, "%s/" CKPT_NAME, dir);
	snprintf(step, sizeof step, "%" PRId64, s->step);
	snprintf(epoch, sizeof epoch, "%" PRId64, s->epoch);
	snprintf(pos, sizeof pos, "%zu", s->pos);
	snprintf(bestv, sizeof bestv, "%.17g", s->best);
	snprintf(rng, sizeof rng, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, s->rng.s[0],
	         s->rng.s[1], s->rng.s[2], s->rng.s[3]);
	char *log = json_dumps(s->log, JSON_COMPACT);
	if (!log)
		return TRAIN_ENOMEM;
	const char *meta[] = { "format", CKPT_FORMAT, "version", "1", "run", train_fp_hex(key, keyhex),
	                       "step", step, "epoch", epoch, "pos", pos, "best", bestv, "rng", rng,
	                       "log", log, NULL };
	int rc = train_safetensors_write(path, t, 4, meta, err);
	free(log);
	return rc;
}

static int meta_i64(const train_safetensors *f, const char *k, int64_t *out)
{
	const char *s = train_safetensors_meta(f, k);
	char *e;
	if (!s)
		return TRAIN_ECORRUPT;
	long long v = strtoll(s, &e, 10);
	if (*e || e == s || v < 0)
		return TRAIN_ECORRUPT;
	*out = v;
	return TRAIN_OK;
}

/* 1: resumed; 0: no checkpoint of this run; < 0: a damaged one. */
static int ckpt_load(const char *dir, train_fp key, tview *m, float *am, float *av, float *best,
                     run_state *s, train_error *err)
{
	char path[4096], keyhex[TRAIN_FP_HEX];
	train_safetensors *f;
	snprintf(path, sizeof path, "%s/" CKPT_NAME, dir);
	if (access(path, F_OK) != 0)
		return 0;
	int rc = train_safetensors_open(path, &f, err);
	if (rc)
		return rc;
	const char *fmt = train_safetensors_meta(f, "format"), *run = train_safetensors_meta(f, "run");
	if (!fmt || strcmp(fmt, CKPT_FORMAT) || !run || strcmp(run, train_fp_hex(key, keyhex))) {
		train_safetensors_close(f); /* another run's: start over (and overwrite it) */
		return 0;
	}
	float *dst[4] = { m->p, am, av, best };
	static const char *const names[4] = { "params", "adam_m", "adam_v", "best" };
	int64_t step, epoch, pos;
	const char *bestv = train_safetensors_meta(f, "best"), *rng = train_safetensors_meta(f, "rng"),
	           *log = train_safetensors_meta(f, "log");
	json_t *lj = log ? json_loads(log, 0, NULL) : NULL;
	rc = meta_i64(f, "step", &step) || meta_i64(f, "epoch", &epoch) || meta_i64(f, "pos", &pos) ||
	     !bestv || !rng || strlen(rng) != 64 || !json_is_array(lj) ? TRAIN_ECORRUPT : TRAIN_OK;
	for (int i = 0; i < 4 && !rc; i++) {
		train_tensor t;
		if (train_safetensors_get(f, names[i], &t) || t.dtype != TRAIN_F32 || t.ndim != 1 ||
		    t.shape[0] != (int64_t)m->n)
			rc = TRAIN_ECORRUPT;
	}
	if (rc) {
		json_decref(lj);
		train_safetensors_close(f);
		return train_error_set(err, TRAIN_ECORRUPT, path, 0, 0,
		                       "not a usable checkpoint of this run (remove it to start over)");
	}
	for (int i = 0; i < 4; i++) {
		train_tensor t;
		train_safetensors_get(f, names[i], &t);
		memcpy(dst[i], t.data, m->n * sizeof(float));
	}
	for (int i = 0; i < 4; i++) {
		char w[17];
		memcpy(w, rng + 16 * i, 16);
		w[16] = '\0';
		s->rng.s[i] = strtoull(w, NULL, 16);
	}
	s->step = step;
	s->epoch = epoch;
	s->pos = (size_t)pos;
	s->best = strtod(bestv, NULL);
	json_decref(s->log);
	s->log = lj;
	train_safetensors_close(f);
	return 1;
}

/* ---- the loop ---------------------------------------------------------------------- */

static void epoch_perm(size_t *perm, size_t n, uint64_t seed, int64_t epoch)
{
	train_rng r;
	train_rng_seed(&r, seed * 0x9E3779B97F4A7C15ull + (uint64_t)epoch + 1);
	for (size_t i = 0; i < n; i++)
		perm[i] = i;
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)train_rng_below(&r, i);
		size_t t = perm[i - 1];
		perm[i - 1] = perm[j];
		perm[j] = t;
	}
}

static train_fp run_key(const bert_model *m, const bert_data *tr, const bert_data *va, const bert_run_opts *o)
{
	train_hasher *h;
	train_fp fp = { 0, 0 };
	if (train_hasher_create(&h))
		return fp;
	char buf[512];
	snprintf(buf, sizeof buf, "bert-run-1 %d %d %d %d %d %d %d %.17g %.17g %.17g %.17g %" PRIu64 " %d",
	         o->mlm, o->batch_size, o->num_epochs, o->grad_accum, o->warmup_steps, o->eval_steps,
	         o->save_steps, o->learning_rate, o->weight_decay, o->dropout, o->mask_prob, o->seed,
	         o->mixed_precision);
	train_hasher_str(h, buf);
	const bert_data *ds[2] = { tr, va };
	for (int k = 0; k < 2; k++) {
		train_hasher_u64(h, ds[k]->n);
		for (size_t i = 0; i < ds[k]->n; i++) {
			train_hasher_update(h, ds[k]->seq[i], (size_t)ds[k]->len[i] * sizeof(int32_t));
			train_hasher_u64(h, ds[k]->label ? (uint64_t)ds[k]->label[i] : 0);
		}
	}
	train_hasher_update(h, m->params, m->n_params * sizeof(float));
	if (m->lora) {
		snprintf(buf, sizeof buf, "lora %d %.9g %.9g %u %zu", m->lora->rank, (double)m->lora->alpha,
		         (double)m->lora->dropout, m->lora->kinds, m->grad_off);
		train_hasher_str(h, buf);
		train_hasher_update(h, m->lora->params, m->lora->n * sizeof(float));
	}
	fp = train_hasher_digest(h);
	train_hasher_destroy(h);
	return fp;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void progress_line(int64_t step, int64_t total, double loss, double tps, double eta)
{
	char bar[31];
	int fill = total ? (int)(30 * step / total) : 30;
	for (int i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = '\0';
	fprintf(stderr, "\r[%s] %" PRId64 "/%" PRId64 " loss %.4f  %.0f tokens/s  ETA %dm%02ds ", bar, step, total,
	        loss, tps, (int)(eta / 60), (int)fmod(eta, 60));
	if (step == total)
		fputc('\n', stderr);
}

int bert_train_run(bert_model *m, const bert_vocab *v, const bert_data *train, const bert_data *val,
                   const bert_run_opts *o, train_ctx *ctx, bert_run_result *res)
{
	const size_t n = train->n;
	float *am = NULL, *av = NULL, *best = NULL;
	tview tv = { 0 };
	size_t *perm = NULL, *idx = NULL;
	bert_acts a = { 0 };
	batch b = { 0 };
	run_state s = { 0, 0, 0, INFINITY, { { 0 } }, NULL };
	train_error err = { 0 };
	int rc = TRAIN_OK, registered = 0;
	const float *wreg = NULL;
	size_t nreg = 0;
	memset(res, 0, sizeof *res);
	res->best_val_loss = res->val_accuracy = NAN;
	if (n == 0 || o->batch_size <= 0 || o->grad_accum <= 0 || o->num_epochs < 0)
		return ctx ? train_fail(ctx, "no training data, or a bad batch size") : TRAIN_EINVAL;
	/* the precision asked for, restored at the end: the kernel context is
	 * process-wide, and other components keep theirs */
	const int old_threads = train_kernels_threads();
	const train_precision old_prec = train_kernels_precision();
	if ((rc = tview_init(m, &tv))) {
		tview_free(&tv);
		return ctx ? train_fail(ctx, "nothing to train (no gradients, no adapters)") : rc;
	}
	const size_t np = tv.n;
	a.ckpt = o->gradient_checkpointing;
	if ((rc = train_kernels_init(o->threads > 0 ? o->threads : 0,
	                             o->mixed_precision ? TRAIN_PRECISION_AUTO : TRAIN_PRECISION_FP32))) {
		tview_free(&tv);
		return rc;
	}
	if (!(am = calloc(np, sizeof *am)) || !(av = calloc(np, sizeof *av)) || !(best = malloc(np * sizeof *best)) ||
	    !(perm = malloc(n * sizeof *perm)) || !(idx = malloc((size_t)o->batch_size * sizeof *idx)) ||
	    !(s.log = json_array())) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	memcpy(best, tv.p, np * sizeof *best);
	const int64_t per_step = (int64_t)o->batch_size * o->grad_accum;
	const int64_t steps_per_epoch = ((int64_t)n + per_step - 1) / per_step;
	const int64_t total = steps_per_epoch * o->num_epochs;
	train_fp key = run_key(m, train, val, o);
	train_rng_seed(&s.rng, o->seed);
	if (o->checkpoint_dir && o->resume) {
		int got = ckpt_load(o->checkpoint_dir, key, &tv, am, av, best, &s, &err);
		if (got < 0) {
			rc = ctx ? train_fail(ctx, "%s: %s", err.file, err.text) : got;
			goto out;
		}
		res->resumed = got;
		if (got)
			tview_scatter(m, &tv, tv.p);
		if (got && ctx)
			train_log(ctx, TRAIN_LOG_INFO, "resuming from step %" PRId64 " of %" PRId64, s.step, total);
	}
	bert_matmul_weights(m, &wreg, &nreg);
	if (train_kernels_precision() == TRAIN_PRECISION_BF16 && train_kernels_weights_register(wreg, nreg) == 0)
		registered = 1;
	/* under LoRA the registered weights are frozen: their bf16 copy is
	 * made once */
	const int weights_move = !m->lora;
	train_adamw_cfg oc = train_adamw_defaults();
	oc.weight_decay = (float)o->weight_decay;
	epoch_perm(perm, n, o->seed, s.epoch);
	const int tty = ctx && isatty(2);
	double t0 = now_s(), last_print = 0;
	size_t tokens = 0;
	int64_t start_step = s.step;
	while (s.step < total) {
		if (s.pos >= n) {
			s.epoch++;
			s.pos = 0;
			epoch_perm(perm, n, o->seed, s.epoch);
		}
		int64_t left = (int64_t)(n - s.pos);
		int k = (int)((left + o->batch_size - 1) / o->batch_size);
		if (k > o->grad_accum)
			k = o->grad_accum;
		bert_zero_grad(m);
		double loss_sum = 0;
		for (int j = 0; j < k; j++) {
			int B = (int)(n - s.pos < (size_t)o->batch_size ? n - s.pos : (size_t)o->batch_size);
			for (int i = 0; i < B; i++)
				idx[i] = perm[s.pos + (size_t)i];
			s.pos += (size_t)B;
			double l;
			if ((rc = batch_make(&b, train, idx, B, v, o->mlm, o->mask_prob, m->cfg.vocab_size, &s.rng)) ||
			    (rc = step_pass(m, &a, &b, o->mlm, (float)o->dropout, &s.rng, 1, 1.0f / (float)k, &l, NULL)))
				goto out;
			loss_sum += l;
			tokens += b.tokens;
		}
		double loss = loss_sum / k;
		if (!isfinite(loss)) {
			rc = ctx ? train_fail(ctx, "the loss is not finite at step %" PRId64 " (lower learning_rate?)",
			                      s.step + 1)
			         : TRAIN_EINVAL;
			goto out;
		}
		tview_gather_grads(m, &tv);
		train_clip_grad_norm(tv.g, np, 1.0f);
		float lr = train_lr_at(TRAIN_SCHED_LINEAR, (float)o->learning_rate, 0.0f, s.step, o->warmup_steps, total);
		train_adamw_step(&oc, tv.p, tv.g, am, av, np, lr, s.step + 1);
		tview_scatter(m, &tv, tv.p);
		if (registered && weights_move)
			train_kernels_weights_changed(wreg);
		s.step++;
		json_t *e = json_pack("{s:I, s:I, s:f, s:f}", "step", (json_int_t)s.step, "epoch",
		                      (json_int_t)s.epoch, "loss", loss, "lr", (double)lr);
		if ((o->eval_steps > 0 && s.step % o->eval_steps == 0) || s.step == total) {
			if (val->n) {
				double vl, acc;
				if ((rc = evaluate(m, v, val, o->mlm, o->batch_size, o->seed, o->gradient_checkpointing,
				                   &vl, &acc)))
					goto out;
				json_object_set_new(e, "val_loss", json_real(vl));
				if (!o->mlm)
					json_object_set_new(e, "val_accuracy", json_real(acc));
				if (vl < s.best) {
					s.best = vl;
					memcpy(best, tv.p, np * sizeof *best);
				}
				if (ctx)
					train_log(ctx, TRAIN_LOG_INFO, "step %" PRId64 "/%" PRId64 ": loss %.4f, validation %.4f",
					          s.step, total, loss, vl);
			}
		}
		json_array_append_new(s.log, e);
		double el = now_s() - t0;
		if (ctx)
			train_progress_lr(ctx, (uint64_t)s.step, (uint64_t)total, loss, (double)lr);
		if (tty && (el - last_print > 0.5 || s.step == total)) {
			last_print = el;
			double tps = el > 0 ? (double)tokens / el : 0;
			double eta = s.step > start_step ? el / (double)(s.step - start_step) * (double)(total - s.step) : 0;
			progress_line(s.step, total, loss, tps, eta);
		}
		int stop = (o->stop_after && s.step == o->stop_after) || (ctx && train_ctx_canceled(ctx));
		if (o->checkpoint_dir && s.step < total &&
		    ((o->save_steps > 0 && s.step % o->save_steps == 0) || stop)) {
			if ((rc = ckpt_save(o->checkpoint_dir, key, &tv, am, av, best, &s, &err))) {
				rc = ctx ? train_fail(ctx, "%s: %s", err.file, err.text) : rc;
				goto out;
			}
		}
		if (stop) {
			rc = TRAIN_ECANCELED;
			goto out;
		}
	}
	res->train_seconds = now_s() - t0;
	res->steps = s.step;
	if (res->train_seconds > 0)
		res->steps_per_second = (double)(s.step - start_step) / res->train_seconds;
	if (val->n) {
		memcpy(tv.p, best, np * sizeof *best);
		tview_scatter(m, &tv, tv.p);
		if (registered && weights_move)
			train_kernels_weights_changed(wreg);
		res->best_val_loss = s.best;
		if (!o->mlm) {
			double vl;
			if ((rc = evaluate(m, v, val, 0, o->batch_size, o->seed, o->gradient_checkpointing, &vl,
			                    &res->val_accuracy)))
				goto out;
		}
	}
	if (o->checkpoint_dir) {
		char path[4096];
		snprintf(path, sizeof path, "%s/" CKPT_NAME, o->checkpoint_dir);
		unlink(path);
	}
	res->log_json = json_dumps(s.log, JSON_INDENT(1));
	if (o->log_path && res->log_json) {
		char tmp[4200];
		snprintf(tmp, sizeof tmp, "%s.tmp", o->log_path);
		FILE *f = fopen(tmp, "w");
		int bad = !f;
		if (f) {
			bad = fputs(res->log_json, f) < 0;
			bad |= fclose(f) != 0;
		}
		if (bad || rename(tmp, o->log_path) != 0) {
			rc = ctx ? train_fail(ctx, "%s: cannot write the loss log", o->log_path) : TRAIN_EIO;
			goto out;
		}
	}
out:
	if (registered)
		train_kernels_weights_unregister(wreg);
	train_kernels_init(old_threads, old_prec);
	json_decref(s.log);
	free(am);
	free(av);
	free(best);
	free(perm);
	free(idx);
	batch_free(&b);
	bert_acts_free(&a);
	tview_free(&tv);
	return rc;
}
