/*
 * optim.c - optimizers (SGD, AdamW), gradient clipping, learning-rate
 * schedules, and training checkpoints.
 *
 * Each optimizer is one loop over a flat fp32 array (parameters, gradients
 * and optimizer state each live in one arena), written to do the same fp32
 * operations in the same order as PyTorch, so that tests can compare with
 * it to a few ulps.  AdamW, the one that shows in a training step's profile,
 * has an AVX-512 path chosen at run time; it performs the same operations
 * in the same order without fused multiply-adds, so it gives the same bits
 * as the plain loop.  Clipping accumulates in double over 8 fixed lanes, for
 * the same reason.
 *
 * Checkpoints are safetensors files: tensors "param.<name>",
 * "adam_m.<name>", "adam_v.<name>", metadata "format", "version", "step"
 * and "rng".  They leave out what is not state (gradients, activations)
 * and what the caller owns (the data loader position beyond the RNG,
 * the schedule, which is a pure function of the step).
 */
#include <train/optim.h>

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define OPTIM_X86 1
#endif

/* ---------------------------------------------------------------------------
 * SGD */

void train_sgd_step(float *params, const float *grads, float *mom, size_t n, float lr,
                    float momentum, float weight_decay)
{
	/* torch: d_p = grad.add(param, alpha=wd); buf.mul_(momentum).add_(d_p);
	 * param.add_(buf, alpha=-lr) */
	const float nlr = -lr;
	for (size_t i = 0; i < n; i++) {
		float d = grads[i];
		if (weight_decay != 0.0f)
			d = d + weight_decay * params[i];
		if (momentum != 0.0f && mom) {
			mom[i] = mom[i] * momentum + d;
			d = mom[i];
		}
		params[i] = params[i] + nlr * d;
	}
}

/* ---------------------------------------------------------------------------
 * AdamW */

train_adamw_cfg train_adamw_defaults(void)
{
	train_adamw_cfg c = { .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f };
	return c;
}

/* The per-step constants, as fp32 (what PyTorch's kernels use). */
typedef struct adamw_k {
	float decay;       /* 1 - lr*wd */
	float b1, omb1;    /* beta1, 1 - beta1 */
	float b2, omb2;    /* beta2, 1 - beta2 */
	float bc2s;        /* sqrt(1 - beta2^t) */
	float eps;
	float nss;         /* -lr / (1 - beta1^t) */
} adamw_k;

static void adamw_plain(const adamw_k *k, float *p, const float *g, float *m, float *v,
                        size_t i0, size_t n)
{
	for (size_t i = i0; i < n; i++) {
		float gi = g[i];
		float mi = m[i] * k->b1 + k->omb1 * gi;
		float vi = v[i] * k->b2 + k->omb2 * gi * gi;
		float den = sqrtf(vi) / k->bc2s + k->eps;
		m[i] = mi;
		v[i] = vi;
		p[i] = p[i] * k->decay + k->nss * mi / den;
	}
}

#ifdef OPTIM_X86
__attribute__((target("avx512f"))) static size_t adamw_avx512(const adamw_k *k, float *p,
                                                               const float *g, float *m,
                                                               float *v, size_t n)
{
	const __m512 decay = _mm512_set1_ps(k->decay), b1 = _mm512_set1_ps(k->b1),
	             omb1 = _mm512_set1_ps(k->omb1), b2 = _mm512_set1_ps(k->b2),
	             omb2 = _mm512_set1_ps(k->omb2), bc2s = _mm512_set1_ps(k->bc2s),
	             eps = _mm512_set1_ps(k->eps), nss = _mm512_set1_ps(k->nss);
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		__m512 gi = _mm512_loadu_ps(g + i);
		__m512 mi = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(m + i), b1),
		                          _mm512_mul_ps(omb1, gi));
		__m512 vi = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(v + i), b2),
		                          _mm512_mul_ps(_mm512_mul_ps(omb2, gi), gi));
		__m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vi), bc2s), eps);
		__m512 pi = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(p + i), decay),
		                          _mm512_div_ps(_mm512_mul_ps(nss, mi), den));
		_mm512_storeu_ps(m + i, mi);
		_mm512_storeu_ps(v + i, vi);
		_mm512_storeu_ps(p + i, pi);
	}
	return i;
}
#endif

void train_adamw_step(const train_adamw_cfg *cfg, float *params, const float *grads, float *m,
                      float *v, size_t n, float lr, int64_t step)
{
	if (step < 1)
		step = 1; /* t counts from 1; 0 would divide by zero below */
	/* As torch.optim.AdamW: the scalars are Python floats (double), cast to
	 * fp32 where they meet the tensors. */
	double bc1 = 1.0 - pow((double)cfg->beta1, (double)step);
	double bc2 = 1.0 - pow((double)cfg->beta2, (double)step);
	adamw_k k = {
		.decay = (float)(1.0 - (double)lr * (double)cfg->weight_decay),
		.b1 = cfg->beta1,
		.omb1 = (float)(1.0 - (double)cfg->beta1),
		.b2 = cfg->beta2,
		.omb2 = (float)(1.0 - (double)cfg->beta2),
		.bc2s = (float)sqrt(bc2),
		.eps = cfg->eps,
		.nss = (float)(-(double)lr / bc1),
	};
	size_t done = 0;
#ifdef OPTIM_X86
	if (__builtin_cpu_supports("avx512f"))
		done = adamw_avx512(&k, params, grads, m, v, n);
#endif
	adamw_plain(&k, params, grads, m, v, done, n);
}

/* ---------------------------------------------------------------------------
 * Gradient clipping */

/* Sum of squares into 8 double lanes, lane j taking elements i = j mod 8;
 * float*float is exact in double, so only the adds round, and both paths
 * add in the same order. */
static void sumsq_plain(const float *x, size_t i0, size_t n, double acc[8])
{
	size_t i = i0;
	for (; i + 8 <= n; i += 8)
		for (int j = 0; j < 8; j++)
			acc[j] += (double)x[i + j] * (double)x[i + j];
	for (int j = 0; i < n; i++, j++)
		acc[j] += (double)x[i] * (double)x[i];
}

#ifdef OPTIM_X86
__attribute__((target("avx512f"))) static size_t sumsq_avx512(const float *x, size_t n,
                                                               double acc[8])
{
	__m512d a = _mm512_loadu_pd(acc);
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		__m512d d = _mm512_cvtps_pd(_mm256_loadu_ps(x + i));
		a = _mm512_add_pd(a, _mm512_mul_pd(d, d));
	}
	_mm512_storeu_pd(acc, a);
	return i;
}
#endif

float train_clip_grad_norm(float *grads, size_t n, float max_norm)
{
	double acc[8] = { 0 };
	size_t done = 0;
#ifdef OPTIM_X86
	if (__builtin_cpu_supports("avx512f"))
		done = sumsq_avx512(grads, n, acc);
#endif
	sumsq_plain(grads, done, n, acc);
	double ss = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
	float norm = (float)sqrt(ss);
	if (!(max_norm > 0.0f) || !isfinite(norm))
		return norm;
	/* torch: clip_coef = max_norm / (total_norm + 1e-6), clamped to 1. */
	float coef = max_norm / (norm + 1e-6f);
	if (coef < 1.0f)
		for (size_t i = 0; i < n; i++)
			grads[i] *= coef;
	return norm;
}

/* ---------------------------------------------------------------------------
 * Learning-rate schedules */

float train_lr_at(train_schedule s, float base_lr, float min_lr, int64_t step, int64_t warmup,
                  int64_t total)
{
	const double base = base_lr, lo = min_lr;
	if (step < 0)
		step = 0;
	if (warmup > 0 && step < warmup)
		return (float)(base * (double)step / (double)warmup);
	if (s == TRAIN_SCHED_CONSTANT)
		return base_lr;
	if (warmup < 0)
		warmup = 0;
	int64_t span = total - warmup;
	if (span <= 0 || step >= total)
		return min_lr;
	double f = (double)(step - warmup) / (double)span;
	if (s == TRAIN_SCHED_LINEAR)
		return (float)(lo + (base - lo) * (1.0 - f));
	return (float)(lo + (base - lo) * 0.5 * (1.0 + cos(M_PI * f)));
}

/* ---------------------------------------------------------------------------
 * Checkpoints */

#define CKPT_FORMAT "libtrain.checkpoint"
#define CKPT_VERSION 1

static const char *const ckpt_prefix[3] = { "param.", "adam_m.", "adam_v." };
static const char *const ckpt_reserved[] = { "format", "version", "step", "rng" };

static int same_shape(const train_tensor *a, const train_tensor *b)
{
	if (a->dtype != b->dtype || a->ndim != b->ndim)
		return 0;
	for (int d = 0; d < a->ndim; d++)
		if (a->shape[d] != b->shape[d])
			return 0;
	return 1;
}

static void shape_text(const train_tensor *t, char *buf, size_t size)
{
	size_t len = (size_t)snprintf(buf, size, "%s[", train_dtype_name(t->dtype));
	for (int d = 0; d < t->ndim && len < size; d++)
		len += (size_t)snprintf(buf + len, size - len, "%s%" PRId64, d ? "," : "", t->shape[d]);
	if (len < size)
		snprintf(buf + len, size - len, "]");
}

static char *prefixed(const char *prefix, const char *name)
{
	size_t a = strlen(prefix), b = strlen(name);
	char *s = malloc(a + b + 1);
	if (s) {
		memcpy(s, prefix, a);
		memcpy(s + a, name, b + 1);
	}
	return s;
}

int train_checkpoint_save(const char *path, const train_named_tensor *params,
                          const train_tensor *m, const train_tensor *v, size_t n, int64_t step,
                          const train_rng *rng, const char *const *meta, train_error *err)
{
	int rc = TRAIN_OK;
	train_named_tensor *list = NULL;
	const char **kv = NULL;
	size_t count = 0, nmeta = 0;
	char stepbuf[32], rngbuf[65];

	if (!path || (n > 0 && !params))
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0,
		                       "train_checkpoint_save: NULL path or params");
	for (size_t i = 0; i < n; i++) {
		if (!params[i].name || !*params[i].name)
			return train_error_set(err, TRAIN_EINVAL, path, 0, 0,
			                       "checkpoint: parameter %zu has no name", i);
		if ((m && !same_shape(&params[i].t, &m[i])) || (v && !same_shape(&params[i].t, &v[i])))
			return train_error_set(err, TRAIN_EINVAL, path, 0, 0,
			                       "checkpoint: optimizer state of '%s' differs in shape",
			                       params[i].name);
	}
	for (; meta && meta[2 * nmeta]; nmeta++) {
		if (!meta[2 * nmeta + 1])
			return train_error_set(err, TRAIN_EINVAL, path, 0, 0,
			                       "checkpoint: metadata key '%s' has no value", meta[2 * nmeta]);
		for (size_t r = 0; r < sizeof ckpt_reserved / sizeof ckpt_reserved[0]; r++)
			if (strcmp(meta[2 * nmeta], ckpt_reserved[r]) == 0)
				return train_error_set(err, TRAIN_EINVAL, path, 0, 0,
				                       "checkpoint: metadata key '%s' is reserved",
				                       ckpt_reserved[r]);
	}

	list = calloc(3 * n + 1, sizeof *list);
	kv = calloc(2 * (nmeta + 4) + 1, sizeof *kv);
	if (!list || !kv) {
		rc = train_error_set(err, TRAIN_ENOMEM, path, 0, 0, "checkpoint: out of memory");
		goto out;
	}
	for (int which = 0; which < 3; which++) {
		const train_tensor *src = which == 1 ? m : which == 2 ? v : NULL;
		if (which > 0 && !src)
			continue;
		for (size_t i = 0; i < n; i++) {
			list[count].name = prefixed(ckpt_prefix[which], params[i].name);
			list[count].t = which == 0 ? params[i].t : src[i];
			if (!list[count++].name) {
				rc = train_error_set(err, TRAIN_ENOMEM, path, 0, 0,
				                     "checkpoint: out of memory");
				goto out;
			}
		}
	}

	size_t k = 0;
	kv[k++] = "format";
	kv[k++] = CKPT_FORMAT;
	kv[k++] = "version";
	kv[k++] = "1";
	snprintf(stepbuf, sizeof stepbuf, "%" PRId64, step);
	kv[k++] = "step";
	kv[k++] = stepbuf;
	if (rng) {
		for (int w = 0; w < 4; w++)
			snprintf(rngbuf + 16 * w, 17, "%016" PRIx64, rng->s[w]);
		kv[k++] = "rng";
		kv[k++] = rngbuf;
	}
	for (size_t j = 0; j < 2 * nmeta; j++)
		kv[k++] = meta[j];
	kv[k] = NULL;

	rc = train_safetensors_write(path, list, count, kv, err);
out:
	if (list)
		for (size_t i = 0; i < count; i++)
			free((char *)list[i].name);
	free(list);
	free(kv);
	return rc;
}

static int parse_step(const char *s, int64_t *out)
{
	if (!s || !*s)
		return -1;
	int neg = *s == '-';
	const char *p = s + neg;
	if (!*p)
		return -1;
	uint64_t val = 0;
	for (; *p; p++) {
		if (*p < '0' || *p > '9' || val > (UINT64_C(1) << 62))
			return -1;
		val = val * 10 + (uint64_t)(*p - '0');
	}
	if (val > (uint64_t)INT64_MAX)
		return -1;
	*out = neg ? -(int64_t)val : (int64_t)val;
	return 0;
}

static int parse_rng(const char *s, train_rng *out)
{
	if (!s || strlen(s) != 64)
		return -1;
	for (int w = 0; w < 4; w++) {
		uint64_t val = 0;
		for (int j = 0; j < 16; j++) {
			char c = s[16 * w + j];
			int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
			if (d < 0)
				return -1;
			val = val << 4 | (uint64_t)d;
		}
		out->s[w] = val;
	}
	return 0;
}

/* Find tensor prefix+name and check it against `want`. */
static int ckpt_find(const train_safetensors *f, const char *path, const char *prefix,
                     const char *name, const train_tensor *want, train_tensor *got,
                     train_error *err)
{
	char *full = prefixed(prefix, name);
	if (!full)
		return train_error_set(err, TRAIN_ENOMEM, path, 0, 0, "checkpoint: out of memory");
	int rc = train_safetensors_get(f, full, got);
	if (rc != TRAIN_OK) {
		rc = train_error_set(err, rc == TRAIN_ENOTFOUND ? TRAIN_ENOTFOUND : rc, path, 0, 0,
		                     "checkpoint has no tensor '%s'", full);
	} else if (!same_shape(want, got)) {
		char a[128], b[128];
		shape_text(want, a, sizeof a);
		shape_text(got, b, sizeof b);
		rc = train_error_set(err, TRAIN_EMISMATCH, path, 0, 0,
		                     "checkpoint tensor '%s' is %s, expected %s", full, b, a);
	}
	free(full);
	return rc;
}

int train_checkpoint_load(const char *path, const train_named_tensor *params,
                          const train_tensor *m, const train_tensor *v, size_t n,
                          int64_t *step, train_rng *rng, train_safetensors **file,
                          train_error *err)
{
	int rc = TRAIN_OK;
	train_safetensors *f = NULL;
	train_tensor *src = NULL;
	int64_t st = 0;
	train_rng r = { { 0 } };

	if (file)
		*file = NULL;
	if (!path || (n > 0 && !params))
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0,
		                       "train_checkpoint_load: NULL path or params");
	rc = train_safetensors_open(path, &f, err);
	if (rc != TRAIN_OK)
		goto out;

	const char *fmt = train_safetensors_meta(f, "format");
	const char *ver = train_safetensors_meta(f, "version");
	int64_t version = 0;
	if (!fmt || strcmp(fmt, CKPT_FORMAT) != 0 || parse_step(ver, &version) != 0 || version < 1) {
		rc = train_error_set(err, TRAIN_ECORRUPT, path, 0, 0,
		                     "not a libtrain checkpoint (no format/version metadata)");
		goto out;
	}
	if (version > CKPT_VERSION) {
		rc = train_error_set(err, TRAIN_EUNSUPPORTED, path, 0, 0,
		                     "checkpoint version %" PRId64 " is newer than this libtrain's %d",
		                     version, CKPT_VERSION);
		goto out;
	}
	if (parse_step(train_safetensors_meta(f, "step"), &st) != 0) {
		rc = train_error_set(err, TRAIN_ECORRUPT, path, 0, 0, "checkpoint: bad or missing step");
		goto out;
	}
	if (rng) {
		const char *hex = train_safetensors_meta(f, "rng");
		if (!hex) {
			rc = train_error_set(err, TRAIN_ENOTFOUND, path, 0, 0,
			                     "checkpoint holds no RNG state");
			goto out;
		}
		if (parse_rng(hex, &r) != 0) {
			rc = train_error_set(err, TRAIN_ECORRUPT, path, 0, 0, "checkpoint: bad rng");
			goto out;
		}
	}

	/* The file must hold exactly the parameters asked for. */
	size_t nparam = 0, total = train_safetensors_count(f);
	for (size_t i = 0; i < total; i++)
		if (strncmp(train_safetensors_name_at(f, i), "param.", 6) == 0)
			nparam++;
	if (nparam != n) {
		rc = train_error_set(err, TRAIN_EMISMATCH, path, 0, 0,
		                     "checkpoint holds %zu parameters, the model %zu", nparam, n);
		goto out;
	}

	/* Check everything, then copy: a failed load writes nothing. */
	src = calloc(3 * n + 1, sizeof *src);
	if (!src) {
		rc = train_error_set(err, TRAIN_ENOMEM, path, 0, 0, "checkpoint: out of memory");
		goto out;
	}
	for (int which = 0; which < 3; which++) {
		const train_tensor *dst = which == 1 ? m : which == 2 ? v : NULL;
		if (which > 0 && !dst)
			continue;
		for (size_t i = 0; i < n; i++) {
			const train_tensor *want = which == 0 ? &params[i].t : &dst[i];
			if (which > 0 && !same_shape(&params[i].t, want)) {
				rc = train_error_set(err, TRAIN_EINVAL, path, 0, 0,
				                     "checkpoint: optimizer state of '%s' differs in shape",
				                     params[i].name);
				goto out;
			}
			rc = ckpt_find(f, path, ckpt_prefix[which], params[i].name, want,
			               &src[which * n + i], err);
			if (rc != TRAIN_OK)
				goto out;
		}
	}
	for (int which = 0; which < 3; which++) {
		const train_tensor *dst = which == 1 ? m : which == 2 ? v : NULL;
		if (which > 0 && !dst)
			continue;
		for (size_t i = 0; i < n; i++) {
			const train_tensor *d = which == 0 ? &params[i].t : &dst[i];
			size_t bytes = train_tensor_nbytes(d);
			if (bytes)
				memcpy(d->data, src[which * n + i].data, bytes);
		}
	}
	if (step)
		*step = st;
	if (rng)
		*rng = r;
	if (file) {
		*file = f;
		f = NULL;
	}
out:
	free(src);
	train_safetensors_close(f);
	return rc;
}
