/*
 * libtrain/workload.c - `train check` (issue 10): a model's shape read without
 * its weights, the memory and time of training it here, and a verdict
 * (<train/check.h>).
 *
 * Sections: reading the model (config.json, the safetensors header, a
 * model archive), the architectures' counts (parameters, activations,
 * FLOPs), the probe (one layer through the kernels, cached), the verdict.
 *
 * The activation counts follow what each plugin keeps alive, array by
 * array; when a plugin's forward changes, its count here changes with it
 * (tests/cli_check.sh compares the estimate with a measured run).
 */
#include <train/check.h>
#include <train/hardware.h>
#include <train/kernels.h>
#include <train/nn.h>
#include <train/cache.h>

#include "package.h"
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MiB (1024.0 * 1024.0)

/* ---- types ------------------------------------------------------------------ */

static const char *const type_names[] = { "fine-tune", "lora", "continued-pretrain", "task", "full" };

int train_check_type_parse(const char *s, train_check_type *out)
{
	if (!s)
		return TRAIN_EINVAL;
	for (int i = 0; i < 5; i++)
		if (!strcmp(s, type_names[i])) {
			*out = (train_check_type)i;
			return TRAIN_OK;
		}
	if (!strcmp(s, "finetune")) {
		*out = TRAIN_CHECK_FINE_TUNE;
		return TRAIN_OK;
	}
	if (!strcmp(s, "continued")) {
		*out = TRAIN_CHECK_CONTINUED;
		return TRAIN_OK;
	}
	return TRAIN_EINVAL;
}

const char *train_check_type_name(train_check_type t)
{
	return (unsigned)t < 5 ? type_names[t] : "?";
}

const char *train_check_verdict_name(int v)
{
	return v == TRAIN_CHECK_COMPATIBLE ? "compatible"
	       : v == TRAIN_CHECK_WITH_CHANGES ? "compatible with changes" : "not compatible";
}

/* ---- the safetensors header ------------------------------------------------- */

static int dtype_size(const char *s)
{
	static const struct { const char *n; int size; } t[] = {
		{ "F64", 8 }, { "F32", 4 }, { "F16", 2 }, { "BF16", 2 }, { "I64", 8 }, { "I32", 4 },
		{ "I16", 2 }, { "I8", 1 }, { "U8", 1 }, { "BOOL", 1 }, { "U16", 2 }, { "U32", 4 },
		{ "U64", 8 }, { "F8_E4M3", 1 }, { "F8_E5M2", 1 },
	};
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		if (!strcmp(s, t[i].n))
			return t[i].size;
	return 0;
}

typedef struct st_info {
	uint64_t params;      /* elements of every tensor */
	size_t n_tensors;
	json_t *hdr;          /* the parsed header (names -> entries) */
	json_t *meta;         /* __metadata__ or NULL (borrowed from hdr) */
} st_info;

static int cmp_u64pair(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;
	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Check a header of hlen bytes from a file of fsize bytes: JSON object, each
 * entry a known dtype, a shape of non-negative integers, data_offsets [a, b]
 * with b - a = elements * dtype size, inside the data, not overlapping. */
static int st_parse(const char *name, const char *hbuf, uint64_t hlen, uint64_t fsize, st_info *si,
                    train_error *err)
{
	json_error_t je;
	uint64_t data = fsize - 8 - hlen, *spans = NULL;
	size_t ns = 0;
	int rc = TRAIN_OK;
	memset(si, 0, sizeof *si);
	json_t *h = json_loadb(hbuf, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(h)) {
		json_decref(h);
		return train_error_set(err, TRAIN_ECORRUPT, name, 0, 0,
		                       "the safetensors header is not a JSON object (%s)", je.text);
	}
	spans = calloc(json_object_size(h) * 2 + 2, sizeof *spans);
	if (!spans) {
		json_decref(h);
		return TRAIN_ENOMEM;
	}
	const char *k;
	json_t *e;
	json_object_foreach(h, k, e) {
		if (!strcmp(k, "__metadata__")) {
			if (!json_is_object(e)) {
				rc = train_error_set(err, TRAIN_ECORRUPT, name, 0, 0, "__metadata__ is not an object");
				goto out;
			}
			si->meta = e;
			continue;
		}
		json_t *dt = json_object_get(e, "dtype"), *sh = json_object_get(e, "shape"),
		       *off = json_object_get(e, "data_offsets");
		int ds = json_is_string(dt) ? dtype_size(json_string_value(dt)) : 0;
		if (!json_is_object(e) || !ds || !json_is_array(sh) || json_array_size(sh) > 8 ||
		    !json_is_array(off) || json_array_size(off) != 2) {
			rc = train_error_set(err, TRAIN_ECORRUPT, name, 0, 0,
			                     "tensor '%s': needs a known dtype, a shape and two data_offsets", k);
			goto out;
		}
		uint64_t numel = 1;
		for (size_t i = 0; i < json_array_size(sh); i++) {
			json_t *d = json_array_get(sh, i);
			if (!json_is_integer(d) || json_integer_value(d) < 0 ||
			    json_integer_value(d) > ((json_int_t)1 << 40) ||
			    (numel && (uint64_t)json_integer_value(d) > UINT64_MAX / 8 / numel)) {
				rc = train_error_set(err, TRAIN_ECORRUPT, name, 0, 0, "tensor '%s': a bad dimension", k);
				goto out;
			}
			numel *= (uint64_t)json_integer_value(d);
		}
		json_t *a = json_array_get(off, 0), *b = json_array_get(off, 1);
		if (!json_is_integer(a) || !json_is_integer(b) || json_integer_value(a) < 0 ||
		    json_integer_value(b) < json_integer_value(a) || (uint64_t)json_integer_value(b) > data) {
			rc = train_error_set(err, TRAIN_ECORRUPT, name, 0, 0,
			                     "tensor '%s': data_offsets outside the %llu bytes of data", k,
			                     (unsigned long long)data);
			goto out;
		}
		uint64_t lo = (uint64_t)json_integer_value(a), hi = (uint64_t)json_integer_value(b);
		if (hi - lo != numel * (uint64_t)ds) {
			rc = train_error_set(err, TRAIN_ECORRUPT, name, 0, 0,
			                     "tensor '%s': %llu bytes for %llu elements of %s", k,
			                     (unsigned long long)(hi - lo), (unsigned long long)numel,
			                     json_string_value(dt));
			goto out;
		}
		spans[2 * ns] = lo;
		spans[2 * ns + 1] = hi;
		ns++;
		si->params += numel;
	}
	qsort(spans, ns, 2 * sizeof *spans, cmp_u64pair);
	for (size_t i = 1; i < ns; i++)
		if (spans[2 * i] < spans[2 * i - 1]) {
			rc = train_error_set(err, TRAIN_ECORRUPT, name, 0, 0, "two tensors share bytes of the data");
			goto out;
		}
	si->n_tensors = ns;
	si->hdr = h;
	h = NULL;
out:
	free(spans);
	json_decref(h);
	return rc;
}

/* The header of a safetensors file, read alone (the weights stay on disk). */
static int st_read_file(const char *path, st_info *si, train_error *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	unsigned char n8[8];
	char *buf = NULL;
	int rc;
	if (fd < 0)
		return train_error_set(err, -errno, path, 0, 0, "%s", strerror(errno));
	if (fstat(fd, &st) || pread(fd, n8, 8, 0) != 8) {
		rc = train_error_set(err, TRAIN_ECORRUPT, path, 0, 0, "shorter than a safetensors header");
		goto out;
	}
	uint64_t n = 0;
	for (int i = 7; i >= 0; i--)
		n = n << 8 | n8[i];
	if (n == 0 || n > (100u << 20) || n > (uint64_t)st.st_size - 8) {
		rc = train_error_set(err, TRAIN_ECORRUPT, path, 0, 0,
		                     "header length %llu does not fit the file's %lld bytes",
		                     (unsigned long long)n, (long long)st.st_size);
		goto out;
	}
	if (!(buf = malloc(n))) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	if (pread(fd, buf, n, 8) != (ssize_t)n) {
		rc = train_error_set(err, TRAIN_EIO, path, 0, 0, "cannot read the header");
		goto out;
	}
	rc = st_parse(path, buf, n, (uint64_t)st.st_size, si, err);
out:
	free(buf);
	close(fd);
	return rc;
}

static int st_read_mem(const char *name, const char *data, size_t size, st_info *si, train_error *err)
{
	if (size < 8)
		return train_error_set(err, TRAIN_ECORRUPT, name, 0, 0, "shorter than a safetensors header");
	uint64_t n = 0;
	for (int i = 7; i >= 0; i--)
		n = n << 8 | (unsigned char)data[i];
	if (n == 0 || n > size - 8)
		return train_error_set(err, TRAIN_ECORRUPT, name, 0, 0,
		                       "header length %llu does not fit the file's %zu bytes",
		                       (unsigned long long)n, size);
	return st_parse(name, data + 8, n, size, si, err);
}

/* ---- config.json ------------------------------------------------------------ */

/* The line of `key` in a JSON text (for messages), 0 if not found. */
static unsigned key_line(const char *text, const char *key)
{
	char pat[80];
	snprintf(pat, sizeof pat, "\"%s\"", key);
	const char *p = text ? strstr(text, pat) : NULL;
	if (!p)
		return 0;
	unsigned line = 1;
	for (const char *q = text; q < p; q++)
		line += *q == '\n';
	return line;
}

typedef struct cfg_reader {
	const char *file, *text;
	json_t *j;
	train_error *err;
	int rc;
} cfg_reader;

/* An integer key (the first of the names present), or def when none is and
 * def >= 0; an error otherwise. */
static int cfg_int(cfg_reader *c, const char *const *names, int def, int lo, int hi)
{
	for (int i = 0; names[i]; i++) {
		json_t *v = json_object_get(c->j, names[i]);
		if (!v || json_is_null(v))
			continue;
		if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
			if (!c->rc)
				c->rc = train_error_set(c->err, TRAIN_EINVAL, c->file, key_line(c->text, names[i]), 0,
				                        "%s must be an integer from %d to %d", names[i], lo, hi);
			return lo;
		}
		return (int)json_integer_value(v);
	}
	if (def < 0 && !c->rc)
		c->rc = train_error_set(c->err, TRAIN_EINVAL, c->file, 0, 0, "no %s", names[0]);
	return def < 0 ? lo : def;
}
#define NAMES(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* ---- the architectures --------------------------------------------------------- */

enum { ARCH_BERT, ARCH_GPT2, ARCH_MAMBA };

typedef struct arch {
	int kind;
	int V, C, L, NH, I, P, labels; /* mamba: C = d_model, I = Di, NS in state, R in R */
	int NS, R, K;
	int has_labels;
} arch;

static uint64_t bert_params(const arch *a, int labels, int mlm)
{
	uint64_t V = a->V, C = a->C, I = a->I, P = a->P;
	uint64_t layer = 3 * C * C + 3 * C + C * C + C + 2 * C + I * C + I + C * I + C + 2 * C;
	uint64_t n = V * C + P * C + 2 * C + 2 * C + a->L * layer + C * C + C;
	if (labels > 0)
		n += (uint64_t)labels * (C + 1);
	if (mlm)
		n += C * C + C + 2 * C + V;
	return n;
}

static uint64_t gpt2_params(const arch *a)
{
	uint64_t V = a->V, C = a->C, I = a->I, P = a->P;
	uint64_t layer = 2 * C + C * 3 * C + 3 * C + C * C + C + 2 * C + C * I + I + I * C + C;
	return V * C + P * C + a->L * layer + 2 * C; /* lm_head tied to wte */
}

static uint64_t mamba_params(const arch *a)
{
	uint64_t D = a->C, Di = a->I, NS = a->NS, R = a->R, K = a->K, V = a->V;
	uint64_t layer = D + 2 * Di * D + Di * K + Di + (R + 2 * NS) * Di + Di * R + Di + Di * NS + Di + D * Di;
	return V * D + a->L * layer + D;
}

/* Activation bytes of one training step.  ckpt: with gradient
 * checkpointing (the input of every layer kept, one layer's arrays live). */
static uint64_t bert_acts(const arch *a, int B, int T, int gpt2, int mlm_head, int ckpt)
{
	uint64_t N = (uint64_t)B * T, C = a->C, I = a->I, NH = a->NH, V = a->V;
	/* plugins/bert/bert.c acts_ensure, per layer: qkv 3C, att NH*T, ctx, ao,
	 * ao_raw, res1, a, fo_raw, fo, res2, out (9C), fc and gelu (2I), 4 row
	 * statistics; the two dropout masks are bytes.  GPT-2 (llm.c's layout):
	 * ln1, qkv, atty, attproj, res2, ln2, fcproj, res3 (10C), preatt and
	 * att, fch and fch_gelu, 4 statistics. */
	uint64_t layer = gpt2 ? N * 4 * (10 * C + 2 * I + 2 * NH * T + 4)
	                      : N * (4 * (12 * C + 2 * I + NH * T + 4) + 2 * C);
	uint64_t emb = gpt2 ? N * 4 * (C + 1) : N * (4 * (3 * C + 3) + C + 4);
	/* backward scratch: d1, d2, d3, dqkv (6C), dI, dI2 (2I), step_pass's dh */
	uint64_t scratch = N * 4 * (7 * C + 2 * I);
	/* the attention backward's chunk of scratch (<train/nn.h>) */
	uint64_t tt = NH * (uint64_t)T * T, chunk = ((uint64_t)1 << 22) / (tt ? tt : 1);
	if (chunk < 1)
		chunk = 1;
	if (chunk > (uint64_t)B)
		chunk = (uint64_t)B;
	scratch += chunk * tt * 4;
	uint64_t head;
	if (gpt2) /* final LN, logits, probabilities, their gradient */
		head = N * 4 * (C + 2 + 3 * V);
	else if (mlm_head) { /* 15 % of the rows (+1 a sequence): transform, logits, probs, dlogits */
		uint64_t M = (N * 15 + 99) / 100 + (uint64_t)B;
		head = M * 4 * (8 * C + 2 + 3 * V);
	} else
		head = (uint64_t)B * 4 * (5 * C + 64);
	uint64_t layers = ckpt ? a->L * N * C * 4 + layer : a->L * layer;
	return layers + emb + scratch + head;
}

static uint64_t mamba_acts(const arch *a, int B, int T, int ckpt)
{
	uint64_t Nt = (uint64_t)B * T, D = a->C, Di = a->I, NS = a->NS, nbc = (uint64_t)a->R + 2 * NS,
	         V = a->V;
	/* plugins/mamba/model.c acts_layout, per layer: res, u (2D), rstd, x, z,
	 * xc, xs, dtr, delta, y, sz, g (9Di), dbc, A, the scan's chunk states */
	uint64_t hs = (uint64_t)B * ((T + 15) / 16) * Di * NS;
	uint64_t layer = 4 * (Nt * (2 * D + 1 + 9 * Di + nbc) + Di * NS + hs);
	uint64_t fin = 4 * Nt * (2 * D + 1 + 2 * V);
	/* backward: dres, du, dhf (3D), dg..ddtr (9Di), ddbc, dA; the scan's
	 * block partial sums 2*Di*Nt (scan.c); ids and targets */
	uint64_t scratch = 4 * (Nt * (3 * D + 9 * Di + nbc) + Di * NS + 2 * Di * Nt) + 8 * Nt;
	uint64_t layers = ckpt ? a->L * Nt * D * 4 + layer : a->L * layer;
	return layers + fin + scratch;
}

/* Forward FLOPs per token (backward is twice that). */
static double fwd_flops_token(const arch *a, int T, int kind_mlm)
{
	double C = a->C, I = a->I, V = a->V, L = a->L;
	if (a->kind == ARCH_MAMBA) {
		double D = a->C, Di = a->I, nbc = a->R + 2.0 * a->NS;
		return L * (2 * (D * 2 * Di + Di * nbc + a->R * Di + Di * D) + 6.0 * Di * a->NS) + 2 * D * V;
	}
	double layer = 2 * (4 * C * C + 2 * C * I) + 4.0 * T * C;
	double head = a->kind == ARCH_GPT2 ? 2 * C * V : kind_mlm ? 0.15 * 2 * (C * C + C * V) : 0;
	return L * layer + head;
}

/* ---- the probe -------------------------------------------------------------------- */

static double mono(void)
{
	return train_now();
}

/* CPU seconds of the whole process (every thread): what a loaded machine
 * does not stretch, unlike the wall clock */
static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The median of n timings (-1 for none): on a shared machine the median,
 * not the best, is what a run of many steps sees. */
static double median(double *t, int n)
{
	if (n <= 0)
		return -1;
	qsort(t, (size_t)n, sizeof *t, cmp_double);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static float *fbuf(size_t n)
{
	float *p = malloc((n ? n : 1) * sizeof *p);
	if (p)
		for (size_t i = 0; i < n; i++)
			p[i] = (float)((i * 2654435761u >> 7) % 1000) * 1e-3f - 0.5f;
	return p;
}

/* One BERT (or, causal, GPT-2-like) layer forward and backward at (B, T):
 * the kernel calls of plugins/bert/bert.c in their order.  Seconds. */
static double probe_transformer(int B, int T, int C, int I, int NH, int causal, int reps, double *cpu)
{
	size_t N = (size_t)B * T, NC = N * C, NI = N * I, att = (size_t)B * NH * T * T;
	float *w = fbuf((size_t)C * C * 4 + 2 * (size_t)C * I + 8 * C + I), *gw = fbuf((size_t)C * C * 4 + 2 * (size_t)C * I + 8 * C + I);
	float *x = fbuf(NC), *qkv = fbuf(3 * NC), *at = fbuf(att), *ctx = fbuf(NC), *ao = fbuf(NC),
	      *r1 = fbuf(NC), *a1 = fbuf(NC), *fc = fbuf(NI), *ge = fbuf(NI), *fo = fbuf(NC), *r2 = fbuf(NC),
	      *out = fbuf(NC), *st = fbuf(4 * N), *d1 = fbuf(NC), *d2 = fbuf(NC), *d3 = fbuf(NC),
	      *dI = fbuf(NI), *dI2 = fbuf(NI), *dqkv = fbuf(3 * NC);
	double best = -1, ts[16], tc[16];
	int nt = 0;
	*cpu = -1;
	if (!w || !gw || !x || !qkv || !at || !ctx || !ao || !r1 || !a1 || !fc || !ge || !fo || !r2 || !out ||
	    !st || !d1 || !d2 || !d3 || !dI || !dI2 || !dqkv)
		goto out;
	float *qw = w, *aw = qw + 3 * C * C, *fw = aw + C * C, *ow = fw + (size_t)C * I, *b = ow + (size_t)C * I;
	float *gq = gw, *ga = gq + 3 * C * C, *gf = ga + C * C, *go = gf + (size_t)C * I, *gb = go + (size_t)C * I;
	double tstart = mono();
	for (int r = 0; r <= reps && (r < 2 || mono() - tstart < 1.0); r++) {
		double t0 = mono(), c0 = cpu_now();
		int rc = train_linear_forward(qkv, x, qw, b, (int)N, C, 3 * C) ||
		         train_attention_forward(ctx, at, qkv, NULL, B, T, C, NH, causal) ||
		         train_linear_forward(ao, ctx, aw, b, (int)N, C, C) ||
		         train_residual_forward(r1, x, ao, NC) ||
		         train_layernorm_forward(a1, st, st + N, r1, b, b, (int)N, C, 1e-5f) ||
		         train_linear_forward(fc, a1, fw, b, (int)N, C, I) ||
		         train_gelu_forward(ge, fc, NI) ||
		         train_linear_forward(fo, ge, ow, b, (int)N, I, C) ||
		         train_residual_forward(r2, a1, fo, NC) ||
		         train_layernorm_forward(out, st + 2 * N, st + 3 * N, r2, b, b, (int)N, C, 1e-5f);
		memset(d2, 0, NC * 4);
		memset(dI, 0, NI * 4);
		memset(dI2, 0, NI * 4);
		rc = rc || train_layernorm_backward(d2, gb, gb, d1, r2, b, st + 2 * N, st + 3 * N, (int)N, C) ||
		     train_linear_backward(dI, go, gb, d2, ge, ow, (int)N, I, C) ||
		     train_gelu_backward(dI2, fc, dI, NI) ||
		     train_linear_backward(d3, gf, gb, dI2, a1, fw, (int)N, C, I);
		memset(d2, 0, NC * 4);
		memset(dqkv, 0, 3 * NC * 4);
		rc = rc || train_layernorm_backward(d2, gb, gb, d3, r1, b, st, st + N, (int)N, C) ||
		     train_linear_backward(d3, ga, gb, d2, ctx, aw, (int)N, C, C) ||
		     train_attention_backward(dqkv, d3, qkv, at, B, T, C, NH) ||
		     train_linear_backward(d1, gq, gb, dqkv, x, qw, (int)N, C, 3 * C);
		double t = mono() - t0;
		if (rc) {
			nt = 0;
			break;
		}
		if (r > 0 && nt < 16) {
			tc[nt] = cpu_now() - c0;
			ts[nt++] = t;
		}
	}
	best = median(ts, nt);
	*cpu = median(tc, nt);
out:
	free(w); free(gw); free(x); free(qkv); free(at); free(ctx); free(ao); free(r1); free(a1);
	free(fc); free(ge); free(fo); free(r2); free(out); free(st); free(d1); free(d2); free(d3);
	free(dI); free(dI2); free(dqkv);
	return best;
}

/* exp as the Mamba scan computes it (a polynomial after reduction by ln 2,
 * so that the lane loops vectorize as they do in plugins/mamba/scan.c). */
static inline float pexp(float x)
{
	x = x < -87.0f ? -87.0f : x;
	x = x > 88.0f ? 88.0f : x;
	float t = x * 1.44269504f, k = (t + 12582912.0f) - 12582912.0f;
	float r = x - k * 0.693359375f;
	r = r - k * -2.12194440e-4f;
	float p = 1.9875691500e-4f;
	p = p * r + 1.3981999507e-3f;
	p = p * r + 8.3334519073e-3f;
	p = p * r + 4.1665795894e-2f;
	p = p * r + 1.6666665459e-1f;
	p = p * r + 5.0000001201e-1f;
	p = p * r * r + r + 1.0f;
	union { int32_t i; float f; } u = { .i = ((int32_t)k + 127) << 23 };
	return p * u.f;
}

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define PROBE_CLONES __attribute__((target_clones("avx512f", "avx2", "default"), \
                                    optimize("vect-cost-model=dynamic")))
#else
#define PROBE_CLONES
#endif

/* One block of 16 channels of the selective scan over T steps, the
 * arithmetic of scan.c's forward block (16 states x 16 lanes). */
PROBE_CLONES
static float scan_block(const float *x, const float *delta, const float *bc, float *y, int T, int Di,
                        int ldbc)
{
	float s[16][16], An[16][16];
	memset(s, 0, sizeof s);
	for (int n = 0; n < 16; n++)
		for (int l = 0; l < 16; l++)
			An[n][l] = -1.0f - 0.01f * (float)(n + l);
	for (int t = 0; t < T; t++) {
		const float *xt = x + (size_t)t * Di, *dt = delta + (size_t)t * Di, *bt = bc + (size_t)t * ldbc,
		            *ct = bt + 16;
		float dv[16], dxv[16], yv[16];
		for (int l = 0; l < 16; l++) {
			dv[l] = dt[l];
			dxv[l] = dv[l] * xt[l];
			yv[l] = 0.0f;
		}
		for (int n = 0; n < 16; n++) {
			float bn = bt[n], cn = ct[n];
			for (int l = 0; l < 16; l++) {
				float e = pexp(dv[l] * An[n][l]);
				s[n][l] = e * s[n][l] + dxv[l] * bn;
				yv[l] += s[n][l] * cn;
			}
		}
		float *yt = y + (size_t)t * Di;
		for (int l = 0; l < 16; l++)
			yt[l] = yv[l];
	}
	return s[0][0];
}

typedef struct scan_job {
	const float *xs, *dt, *dbc;
	float *y;
	int B, T, Di, nbc, R, passes, threads;
	float sink;
} scan_job;

typedef struct scan_part {
	scan_job *j;
	int k;
	float sink;
} scan_part;

static void *scan_worker(void *arg)
{
	scan_part *p = arg;
	const scan_job *j = p->j;
	int nblk = j->Di / 16;
	for (int pass = 0; pass < j->passes; pass++)
		for (int blk = p->k; blk < nblk; blk += j->threads)
			for (int b = 0; b < j->B; b++) {
				size_t o = (size_t)b * j->T * j->Di + (size_t)blk * 16;
				p->sink += scan_block(j->xs + o, j->dt + o, j->dbc + (size_t)b * j->T * j->nbc + j->R,
				                      j->y + o, j->T, j->Di, j->nbc);
			}
	return NULL;
}

static int scan_run(scan_job *j)
{
	pthread_t tid[64];
	scan_part part[64];
	int n = j->threads < 1 ? 1 : j->threads > 64 ? 64 : j->threads, started = 0;
	for (int k = 0; k < n; k++)
		part[k] = (scan_part){ j, k, 0 };
	for (int k = 1; k < n; k++)
		if (pthread_create(&tid[k], NULL, scan_worker, &part[k]) == 0)
			started = k;
		else
			break;
	if (started < n - 1) /* too few threads: one does it all */
		for (int k = started + 1; k < n; k++)
			scan_worker(&part[k]);
	scan_worker(&part[0]);
	for (int k = 1; k <= started; k++)
		pthread_join(tid[k], NULL);
	for (int k = 0; k < n; k++)
		j->sink += part[k].sink;
	return TRAIN_OK;
}

/* A Mamba layer at (B, T): its kernel calls (norm, in_proj, conv, SiLU,
 * x_proj, dt_proj, out_proj, forward and backward) and a scan of the same
 * arithmetic as the plugin's: forward, then about three forwards' worth for
 * the backward (4 passes over B*T*Di*NS). */
static double probe_mamba(int B, int T, const arch *a, int threads, int reps, double *cpu)
{
	const int D = a->C, Di = a->I, NS = a->NS, R = a->R, nbc = R + 2 * NS;
	size_t Nt = (size_t)B * T, nd = Nt * Di;
	float *w = fbuf((size_t)2 * Di * D + (size_t)nbc * Di + (size_t)Di * R + (size_t)D * Di + 8 * (size_t)Di + D);
	float *g = fbuf((size_t)2 * Di * D + (size_t)nbc * Di + (size_t)Di * R + (size_t)D * Di + 8 * (size_t)Di + D);
	float *res = fbuf(Nt * D), *u = fbuf(Nt * D), *rstd = fbuf(Nt), *xz = fbuf(2 * nd), *xc = fbuf(nd),
	      *xs = fbuf(nd), *dbc = fbuf(Nt * nbc), *dt = fbuf(nd), *y = fbuf(nd), *s = fbuf((size_t)16 * NS),
	      *dxz = fbuf(2 * nd), *d1 = fbuf(nd), *d2 = fbuf(nd), *ddbc = fbuf(Nt * nbc), *du = fbuf(Nt * D);
	double best = -1, ts[16], tc[16];
	int nt = 0;
	*cpu = -1;
	if (!w || !g || !res || !u || !rstd || !xz || !xc || !xs || !dbc || !dt || !y || !s || !dxz || !d1 ||
	    !d2 || !ddbc || !du)
		goto out;
	float *inw = w, *xw = inw + (size_t)2 * Di * D, *dw = xw + (size_t)nbc * Di, *ow = dw + (size_t)Di * R,
	      *cw = ow + (size_t)D * Di;
	float *gin = g, *gx = gin + (size_t)2 * Di * D, *gd = gx + (size_t)nbc * Di, *go = gd + (size_t)Di * R,
	      *gc = go + (size_t)D * Di;
	volatile float sink = 0;
	double tstart = mono();
	for (int r = 0; r <= reps && (r < 2 || mono() - tstart < 1.0); r++) {
		double t0 = mono(), c0 = cpu_now();
		int rc = train_rmsnorm_forward(u, rstd, res, cw, (int)Nt, D, 1e-5f) ||
		         train_linear_forward(xz, u, inw, NULL, (int)Nt, D, 2 * Di) ||
		         train_conv1d_causal_forward(xc, xz, cw, cw, B, T, Di, 4) ||
		         train_silu_forward(xs, xc, nd) ||
		         train_linear_forward(dbc, xs, xw, NULL, (int)Nt, Di, nbc) ||
		         train_matmul(0, 1, (int)Nt, Di, R, 1.0f, dbc, nbc, dw, R, 0.0f, dt, Di) ||
		         train_linear_forward(u, y, ow, NULL, (int)Nt, Di, D);
		/* the scan: the forward pass, and the backward, which recomputes
		 * each chunk's states and goes back through them: about three
		 * forwards' work (timed on scan.c: backward 2.5 to 3 times the
		 * forward, one thread); 4 passes over the blocks, split over the
		 * threads as the plugin splits them */
		scan_job job = { xs, dt, dbc, y, B, T, Di, nbc, R, 4, threads, 0 };
		rc = rc || scan_run(&job);
		sink += job.sink;
		rc = rc || train_linear_backward(d1, go, NULL, u, y, ow, (int)Nt, Di, D) ||
		     train_silu_backward(d2, xz + nd, d1, nd) ||
		     train_matmul(0, 0, (int)Nt, R, Di, 1.0f, d1, Di, dw, R, 0.0f, ddbc, nbc) ||
		     train_matmul(1, 0, Di, R, (int)Nt, 1.0f, d1, Di, dbc, nbc, 1.0f, gd, R) ||
		     train_linear_backward(d2, gx, NULL, ddbc, xs, xw, (int)Nt, Di, nbc) ||
		     train_silu_backward(d1, xc, d2, nd) ||
		     train_conv1d_causal_backward(dxz, gc, gc, d1, xz, cw, B, T, Di, 4) ||
		     train_linear_backward(du, gin, NULL, dxz, u, inw, (int)Nt, D, 2 * Di) ||
		     train_rmsnorm_backward(xc, gc, du, res, cw, rstd, (int)Nt, D);
		double t = mono() - t0;
		if (rc) {
			nt = 0;
			break;
		}
		if (r > 0 && nt < 16) {
			tc[nt] = cpu_now() - c0;
			ts[nt++] = t;
		}
	}
	(void)sink;
	best = median(ts, nt);
	*cpu = median(tc, nt);
out:
	free(w); free(g); free(res); free(u); free(rstd); free(xz); free(xc); free(xs); free(dbc);
	free(dt); free(y); free(s); free(dxz); free(d1); free(d2); free(ddbc); free(du);
	return best;
}

/* The head: rows x C -> V, forward and backward (LM heads; the MLM decoder). */
static double probe_head(int rows, int C, int V, int reps, double *cpu)
{
	float *w = fbuf((size_t)V * C), *gw = fbuf((size_t)V * C), *x = fbuf((size_t)rows * C),
	      *dx = fbuf((size_t)rows * C), *lo = fbuf((size_t)rows * V);
	double best = -1, ts[16], tc[16];
	int nt = 0;
	*cpu = -1;
	if (w && gw && x && dx && lo)
		for (int r = 0; r <= reps; r++) {
			double t0 = mono(), c0 = cpu_now();
			if (train_linear_forward(lo, x, w, NULL, rows, C, V) ||
			    train_softmax_rows_forward(lo, lo, rows, V) ||
			    train_linear_backward(dx, gw, NULL, lo, x, w, rows, C, V))
				break;
			double t = mono() - t0;
			if (r > 0 && nt < 16) {
				tc[nt] = cpu_now() - c0;
				ts[nt++] = t;
			}
		}
	best = median(ts, nt);
	*cpu = median(tc, nt);
	free(w); free(gw); free(x); free(dx); free(lo);
	return best;
}

/* The probe cache: one JSON object in <cache>/check-probe.json, keys
 * "<hardware fingerprint>|<probe>" -> seconds. */
static char *probe_cache_path(const char *dir)
{
	char *d = train_cache_default_dir(dir);
	char *p = d ? train_path_join(d, "check-probe.json") : NULL;
	free(d);
	return p;
}

static void hw_fingerprint(const train_hardware *hw, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%x/%d/%s", hw->cpu_model, hw->isa, hw->threads, train_version());
}

static double probe_cached(const char *cdir, const char *key, int no_probe, int *cached,
                           double (*run)(void *), void *arg, double *cpu)
{
	char *path = probe_cache_path(cdir), ckey[600];
	snprintf(ckey, sizeof ckey, "%s|cpu", key);
	json_t *db = path ? json_load_file(path, 0, NULL) : NULL;
	if (!json_is_object(db)) {
		json_decref(db);
		db = json_object();
	}
	json_t *v = json_object_get(db, key), *vc = json_object_get(db, ckey);
	double t = json_is_real(v) && json_is_real(vc) ? json_real_value(v) : -1;
	*cpu = json_is_real(vc) ? json_real_value(vc) : -1;
	*cached = t > 0;
	if (t <= 0 && !no_probe && db) {
		t = run(arg);
		if (t > 0 && *cpu > 0 && path) {
			json_object_set_new(db, key, json_real(t));
			json_object_set_new(db, ckey, json_real(*cpu));
			char *text = json_dumps(db, JSON_SORT_KEYS | JSON_INDENT(1));
			char *dir = train_cache_default_dir(cdir);
			if (text && dir && train_mkdirs(dir, NULL) == 0)
				(void)train_write_file_atomic(path, text, strlen(text), NULL);
			free(dir);
			free(text);
		}
	}
	json_decref(db);
	free(path);
	return t;
}

typedef struct probe_arg {
	const arch *a;
	int B, T, causal, rows, prec_bf16, threads;
	double cpu;             /* out: the probe's CPU seconds */
} probe_arg;

static double with_kernels(probe_arg *p, double (*fn)(probe_arg *))
{
	const int ot = train_kernels_threads();
	const train_precision op = train_kernels_precision();
	if (train_kernels_init(p->threads, p->prec_bf16 ? TRAIN_PRECISION_BF16 : TRAIN_PRECISION_FP32))
		return -1;
	double t = fn(p);
	train_kernels_init(ot, op);
	return t;
}

static double layer_fn(probe_arg *p)
{
	const arch *a = p->a;
	if (a->kind == ARCH_MAMBA)
		return probe_mamba(p->B, p->T, a, p->threads, 5, &p->cpu);
	return probe_transformer(p->B, p->T, a->C, a->I, a->NH, p->causal, 5, &p->cpu);
}

static double head_fn(probe_arg *p)
{
	return probe_head(p->rows, p->a->C, p->a->V, 2, &p->cpu);
}

static double run_layer(void *arg)
{
	return with_kernels(arg, layer_fn);
}

static double run_head(void *arg)
{
	return with_kernels(arg, head_fn);
}

/* ---- reading the model ------------------------------------------------------------- */

static int arch_from_config(const char *file, const char *text, json_t *j, arch *a, char *type,
                            size_t tcap, train_error *err)
{
	cfg_reader c = { file, text, j, err, 0 };
	json_t *mt = json_object_get(j, "model_type");
	if (!json_is_string(mt))
		return train_error_set(err, TRAIN_EUNSUPPORTED, file, key_line(text, "model_type"), 0,
		                       "no model_type (bert, gpt2 or mamba)");
	const char *m = json_string_value(mt);
	snprintf(type, tcap, "%s", m);
	memset(a, 0, sizeof *a);
	if (!strcmp(m, "bert")) {
		a->kind = ARCH_BERT;
		a->V = cfg_int(&c, NAMES("vocab_size"), -1, 1, 1 << 24);
		a->C = cfg_int(&c, NAMES("hidden_size"), -1, 1, 65536);
		a->L = cfg_int(&c, NAMES("num_hidden_layers"), -1, 0, 1024);
		a->NH = cfg_int(&c, NAMES("num_attention_heads"), -1, 1, 1024);
		a->I = cfg_int(&c, NAMES("intermediate_size"), 4 * a->C, 1, 1 << 20);
		a->P = cfg_int(&c, NAMES("max_position_embeddings"), 512, 1, 1 << 20);
		json_t *id2 = json_object_get(j, "id2label");
		a->labels = cfg_int(&c, NAMES("num_labels"), json_is_object(id2) ? (int)json_object_size(id2) : 0, 0,
		                    1 << 20);
		a->has_labels = json_is_object(id2) || json_object_get(j, "num_labels");
	} else if (!strcmp(m, "gpt2")) {
		a->kind = ARCH_GPT2;
		a->V = cfg_int(&c, NAMES("vocab_size"), 50257, 1, 1 << 24);
		a->C = cfg_int(&c, NAMES("n_embd", "hidden_size"), 768, 1, 65536);
		a->L = cfg_int(&c, NAMES("n_layer", "num_hidden_layers"), 12, 0, 1024);
		a->NH = cfg_int(&c, NAMES("n_head", "num_attention_heads"), 12, 1, 1024);
		a->I = cfg_int(&c, NAMES("n_inner"), 4 * a->C, 1, 1 << 20);
		a->P = cfg_int(&c, NAMES("n_positions", "n_ctx"), 1024, 1, 1 << 20);
	} else if (!strcmp(m, "mamba")) {
		a->kind = ARCH_MAMBA;
		a->V = cfg_int(&c, NAMES("vocab_size"), -1, 2, 1 << 24);
		a->C = cfg_int(&c, NAMES("hidden_size", "d_model"), -1, 8, 65536);
		a->L = cfg_int(&c, NAMES("num_hidden_layers", "n_layer", "n_layers"), -1, 1, 256);
		a->NS = cfg_int(&c, NAMES("state_size", "d_state"), 16, 1, 256);
		a->K = cfg_int(&c, NAMES("conv_kernel", "d_conv"), 4, 1, 64);
		int expand = cfg_int(&c, NAMES("expand"), 2, 1, 16);
		a->I = expand * a->C;
		json_t *r = json_object_get(j, "time_step_rank");
		if (!r)
			r = json_object_get(j, "dt_rank");
		a->R = json_is_integer(r) ? (int)json_integer_value(r) : (a->C + 15) / 16;
		a->P = 1 << 20;
		a->NH = 1;
	} else
		return train_error_set(err, TRAIN_EUNSUPPORTED, file, key_line(text, "model_type"), 0,
		                       "model_type \"%s\" is not one this build trains (bert, gpt2, mamba)", m);
	if (!c.rc && a->kind != ARCH_MAMBA && a->C % a->NH)
		c.rc = train_error_set(err, TRAIN_EINVAL, file, key_line(text, "num_attention_heads"), 0,
		                       "the hidden size %d is not divisible by the %d heads", a->C, a->NH);
	if (!c.rc && a->kind == ARCH_MAMBA && a->C % 8)
		c.rc = train_error_set(err, TRAIN_EINVAL, file, key_line(text, "d_model"), 0,
		                       "d_model %d is not a multiple of 8", a->C);
	return c.rc;
}

static char *read_text_file(const char *path, train_error *err, int *rc)
{
	FILE *f = fopen(path, "rb");
	*rc = 0;
	if (!f) {
		*rc = train_error_set(err, errno == ENOENT ? TRAIN_ENOTFOUND : -errno, path, 0, 0, "%s",
		                      errno == ENOENT ? "not found (a Hugging Face folder needs config.json)"
		                                      : strerror(errno));
		return NULL;
	}
	train_buf b = { 0 };
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		if (b.len + n > (16u << 20) || train_buf_add(&b, chunk, n)) {
			*rc = train_error_set(err, TRAIN_EINVAL, path, 0, 0, "too large for a config");
			break;
		}
	fclose(f);
	if (!*rc && train_buf_add(&b, "", 1))
		*rc = TRAIN_ENOMEM;
	if (*rc) {
		free(b.data);
		return NULL;
	}
	return b.data;
}

static int parse_json_text(const char *file, const char *text, json_t **out, train_error *err)
{
	json_error_t je;
	*out = json_loads(text, 0, &je);
	if (!*out)
		return train_error_set(err, TRAIN_EPARSE, file, (unsigned)je.line, (unsigned)je.column, "%s", je.text);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return train_error_set(err, TRAIN_EPARSE, file, 1, 1, "not a JSON object");
	}
	return TRAIN_OK;
}

/* A MambaLM's shape from its model.safetensors metadata (the plugin keeps
 * vocab_size, d_model and n_layers there; the rest is fixed). */
static int mamba_arch_from_meta(const st_info *si, const char *file, arch *a, train_check_report *r,
                                train_error *err)
{
	const char *k[3] = { "vocab_size", "d_model", "n_layers" };
	int v[3];
	for (int q = 0; q < 3; q++) {
		json_t *s = json_object_get(si->meta, k[q]);
		v[q] = json_is_string(s) ? atoi(json_string_value(s)) : 0;
		if (v[q] <= 0)
			return train_error_set(err, TRAIN_ECORRUPT, file, 0, 0, "no %s in the metadata", k[q]);
	}
	memset(a, 0, sizeof *a);
	a->kind = ARCH_MAMBA;
	a->V = v[0];
	a->C = v[1];
	a->L = v[2];
	a->NS = 16;
	a->K = 4;
	a->I = 2 * a->C;
	a->R = (a->C + 15) / 16;
	a->P = 1 << 20;
	a->NH = 1;
	snprintf(r->model_type, sizeof r->model_type, "mamba");
	return TRAIN_OK;
}

/* A Hugging Face folder, or a MambaLM's own folder (model.safetensors with
 * the plugin's metadata, no config.json). */
static int read_hf(const char *dir, arch *a, train_check_report *r, st_info *si, train_error *err)
{
	char *cfgp = train_path_join(dir, "config.json"), *stp = train_path_join(dir, "model.safetensors");
	char *text = NULL;
	json_t *j = NULL;
	int rc = TRAIN_ENOMEM;
	if (!cfgp || !stp)
		goto out;
	if (access(cfgp, F_OK) != 0 && access(stp, F_OK) == 0) {
		if ((rc = st_read_file(stp, si, err)))
			goto out;
		json_t *fmt = json_object_get(si->meta, "format");
		if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "libtrain.mamba")) {
			rc = train_error_set(err, TRAIN_EUNSUPPORTED, cfgp, 0, 0,
			                     "not found (a Hugging Face folder needs config.json; a MambaLM "
			                     "folder has format libtrain.mamba in model.safetensors)");
			goto out;
		}
		snprintf(r->source, sizeof r->source, "libtrain");
		rc = mamba_arch_from_meta(si, stp, a, r, err);
		goto out;
	}
	if (!(text = read_text_file(cfgp, err, &rc)))
		goto out;
	if ((rc = parse_json_text(cfgp, text, &j, err)) ||
	    (rc = arch_from_config(cfgp, text, j, a, r->model_type, sizeof r->model_type, err)))
		goto out;
	snprintf(r->source, sizeof r->source, "huggingface");
	if (access(stp, F_OK) == 0)
		rc = st_read_file(stp, si, err);
out:
	json_decref(j);
	free(text);
	free(cfgp);
	free(stp);
	return rc;
}

/* A libtrain model archive: its first node of a known class. */
static int read_package(const char *path, arch *a, train_check_report *r, st_info *si, train_error *err)
{
	char *meta = NULL, *cfg = NULL, *st = NULL, member[600];
	size_t stn = 0;
	json_t *m = NULL, *cj = NULL;
	int rc = train_package_read_member(path, "metadata.json", &meta, NULL, err);
	if (rc)
		return rc;
	if ((rc = parse_json_text("metadata.json", meta, &m, err)))
		goto out;
	json_t *nodes = json_object_get(m, "nodes"), *n;
	size_t i;
	const char *node = NULL, *comp = NULL;
	json_array_foreach(nodes, i, n) {
		const char *c = json_string_value(json_object_get(n, "component"));
		if (c && (!strcmp(c, "BertClassifier") || !strcmp(c, "BertMaskedLM") || !strcmp(c, "MambaLM") ||
		          !strcmp(c, "GPT2LM"))) {
			node = json_string_value(json_object_get(n, "name"));
			comp = c;
			if (json_is_true(json_object_get(n, "target")))
				break;
		}
	}
	if (!node) {
		rc = train_error_set(err, TRAIN_EUNSUPPORTED, path, 0, 0,
		                     "the model has no BertClassifier, BertMaskedLM, MambaLM or GPT2LM node");
		goto out;
	}
	snprintf(r->source, sizeof r->source, "libtrain");
	snprintf(member, sizeof member, "components/%s/model.safetensors", node);
	if ((rc = train_package_read_member(path, member, &st, &stn, err)) ||
	    (rc = st_read_mem(member, st, stn, si, err)))
		goto out;
	if (!strcmp(comp, "MambaLM")) {
		/* the plugin keeps its shape in the safetensors metadata */
		if ((rc = mamba_arch_from_meta(si, member, a, r, err)))
			goto out;
	} else {
		snprintf(member, sizeof member, "components/%s/config.json", node);
		if ((rc = train_package_read_member(path, member, &cfg, NULL, err)) ||
		    (rc = parse_json_text(member, cfg, &cj, err)) ||
		    (rc = arch_from_config(member, cfg, cj, a, r->model_type, sizeof r->model_type, err)))
			goto out;
	}
out:
	json_decref(m);
	json_decref(cj);
	free(meta);
	free(cfg);
	free(st);
	return rc;
}

/* ---- the data -------------------------------------------------------------------------- */

/* Examples (non-empty lines) and characters (UTF-8 code points) of a file. */
static int data_size(const char *path, int64_t *lines, int64_t *chars, int64_t *bytes, train_error *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return train_error_set(err, errno == ENOENT ? TRAIN_ENOTFOUND : -errno, path, 0, 0, "%s",
		                       strerror(errno));
	unsigned char buf[65536];
	size_t n;
	int64_t l = 0, c = 0, b = 0, inl = 0;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
		b += (int64_t)n;
		for (size_t i = 0; i < n; i++) {
			c += (buf[i] & 0xC0) != 0x80;
			if (buf[i] == '\n') {
				l += inl > 0;
				inl = 0;
			} else if (buf[i] != ' ' && buf[i] != '\r' && buf[i] != '\t')
				inl++;
		}
	}
	l += inl > 0;
	fclose(f);
	*lines = l;
	*chars = c;
	*bytes = b;
	return TRAIN_OK;
}

/* ---- the verdict ----------------------------------------------------------------------- */

static void reason(train_check_report *r, int severity, const char *fix, const char *fmt, ...)
	TRAIN_PRINTF(4, 5);

static void reason(train_check_report *r, int severity, const char *fix, const char *fmt, ...)
{
	if (r->n_reasons >= TRAIN_CHECK_MAX_REASONS)
		return;
	train_check_reason *x = &r->reasons[r->n_reasons++];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(x->what, sizeof x->what, fmt, ap);
	va_end(ap);
	snprintf(x->fix, sizeof x->fix, "%s", fix ? fix : "");
	x->severity = severity;
	if (severity > r->verdict)
		r->verdict = severity;
}

typedef struct estimate_in {
	const arch *a;
	train_check_type type;
	int B, T, ckpt, lora_r, bf16, labels;
} estimate_in;

/* LoRA's default targets: PEFT's for each model (GPT-2: c_attn, the fused
 * (C, 3C) QKV; BERT: query and value; Mamba: in_proj and out_proj). */
static uint64_t lora_params(const arch *a, int r, int labels)
{
	uint64_t C = a->C;
	if (a->kind == ARCH_GPT2)
		return (uint64_t)a->L * r * (C + 3 * C);
	if (a->kind == ARCH_BERT) /* and the classifier, PEFT's modules_to_save */
		return (uint64_t)a->L * 2 * r * (C + C) + (uint64_t)(labels > 0 ? labels : 2) * (C + 1);
	return (uint64_t)a->L * r * ((C + 2 * (uint64_t)a->I) + (a->I + C));
}

static void estimate_memory(const estimate_in *in, uint64_t params, train_check_report *r)
{
	const arch *a = in->a;
	uint64_t train = in->type == TRAIN_CHECK_LORA ? lora_params(a, in->lora_r, in->labels) : params;
	r->trainable = train;
	r->mem_weights = 4 * params;
	/* the plugins keep one gradient array of the model's layout (a LoRA
	 * plugin, its adapters'), AdamW's two moments and the best weights */
	r->mem_grads = 4 * train;
	r->mem_optimizer = 8 * train;
	r->mem_best = 4 * train;
	r->mem_bf16 = in->bf16 ? 2 * params : 0;
	int mlm = a->kind == ARCH_BERT && in->type == TRAIN_CHECK_CONTINUED;
	if (a->kind == ARCH_MAMBA) {
		r->mem_activations = mamba_acts(a, in->B, in->T, 0);
		r->mem_activations_ckpt = mamba_acts(a, in->B, in->T, 1);
	} else {
		r->mem_activations = bert_acts(a, in->B, in->T, a->kind == ARCH_GPT2, mlm, 0);
		r->mem_activations_ckpt = bert_acts(a, in->B, in->T, a->kind == ARCH_GPT2, mlm, 1);
	}
	if (a->kind == ARCH_BERT && in->type == TRAIN_CHECK_LORA) {
		/* plugins/bert/bert.c: per adapted projection (query and value by
		 * default) and layer, u (N, r) and, with lora_dropout (0.1 by
		 * default), the dropped input (N, C) and its byte mask; the
		 * backward's du (N, r) and dxd (N, I) once */
		uint64_t N = (uint64_t)in->B * in->T, C = a->C;
		uint64_t per = 2 * N * (4 * (uint64_t)in->lora_r + 5 * C);
		uint64_t once = N * 4 * ((uint64_t)in->lora_r + (uint64_t)a->I);
		r->mem_activations += a->L * per + once;
		r->mem_activations_ckpt += per + once;
	}
	if (a->kind == ARCH_MAMBA && in->type == TRAIN_CHECK_LORA) {
		/* plugins/mamba/mamba_lora.c: per adapted projection (in_proj, D
		 * in; out_proj, Di in) and layer, u (N, r) and, with lora_dropout
		 * (0.1 by default), the dropped input and its byte mask; the
		 * backward's du (N, r) and two (N, Di) arrays once */
		uint64_t N = (uint64_t)in->B * in->T, D = a->C, Di = a->I, rr = (uint64_t)in->lora_r;
		uint64_t per = N * (2 * 4 * rr + 5 * (D + Di));
		uint64_t once = N * 4 * (rr + 2 * Di);
		r->mem_activations += a->L * per + once;
		r->mem_activations_ckpt += per + once;
	}
	/* measured (doc/check.md): a run from a saved model holds the base
	 * model's value blob besides the weights (the runner keeps node outputs
	 * until the graph ends); 1x sits between the two flows measured (a
	 * Hugging Face base: ~2x; a base built in the same run: ~0.5x) */
	r->mem_workspace = a->kind == ARCH_MAMBA ? 0 : r->mem_weights;
	/* BERT's classifier node holds more before its first step: it unpacks
	 * the base's value into files and loads them twice (the vocabulary,
	 * then the model with its head), and the heap keeps what that freed.
	 * Measured with bert-mini's shape (13.5 MB of weights, a base built in
	 * the same run): 128 MB above the baseline before the first step.  The
	 * training arrays partly reuse that memory, so it does not add up in
	 * full: 2x the weights keeps both the plain and the checkpointed run
	 * within 25 % (tests/cli_check.sh; without checkpointing the layers'
	 * arrays dominate, with it this floor does). */
	if (a->kind == ARCH_BERT)
		r->mem_workspace = 2 * r->mem_weights;
	/* BERT's evaluation (bert_evaluate) runs a forward with arrays of its
	 * own while the training ones live: the layers' arrays (no dropout
	 * masks, no backward scratch: calloc'd pages that are never touched
	 * stay unmapped) and the embeddings' */
	if (a->kind == ARCH_BERT) {
		uint64_t N = (uint64_t)in->B * in->T, C = a->C;
		uint64_t layer = N * 4 * (12 * C + 2 * (uint64_t)a->I + (uint64_t)a->NH * in->T + 4);
		/* with checkpointing the evaluation keeps the layers' outputs and
		 * one layer's arrays, as training does */
		r->mem_eval = (in->ckpt ? a->L * N * 4 * C + layer : a->L * layer) + N * 4 * (3 * C + 4);
	}
	r->mem_peak = r->mem_weights + r->mem_grads + r->mem_optimizer + r->mem_best + r->mem_bf16 +
	              r->mem_workspace + r->mem_eval +
	              (in->ckpt ? r->mem_activations_ckpt : r->mem_activations);
}

static uint64_t peak_with(const estimate_in *base, uint64_t params, train_check_type type, int B, int ckpt)
{
	estimate_in e = *base;
	train_check_report t = { 0 };
	e.type = type;
	e.B = B;
	e.ckpt = ckpt;
	estimate_memory(&e, params, &t);
	return t.mem_peak;
}

static void human(char *buf, size_t cap, uint64_t bytes)
{
	if (bytes >= (uint64_t)1 << 30)
		snprintf(buf, cap, "%.1f GiB", (double)bytes / (1 << 30));
	else
		snprintf(buf, cap, "%.1f MiB", (double)bytes / MiB);
}

int train_check_model(const char *path, const train_check_options *o, train_check_report *r,
                      train_error *err)
{
	arch a;
	st_info si = { 0 };
	train_hardware hw;
	char h1[32], h2[32], fix[256];
	int rc;
	if (!path || !o || !r || o->struct_size < sizeof *o)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_check_model: bad arguments");
	if ((unsigned)o->type > TRAIN_CHECK_FULL || o->batch_size < 0 || o->max_length < 0 || o->grad_accum < 0 ||
	    o->lora_r < 0 || o->steps < 0 || o->batch_size > 65536 || o->max_length > (1 << 20) ||
	    o->lora_r > 4096)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "a bad option (negative or too large)");
	if (o->precision && strcmp(o->precision, "fp32") && strcmp(o->precision, "bf16"))
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "precision must be fp32 or bf16, not \"%s\"",
		                       o->precision);
	memset(r, 0, sizeof *r);
	r->struct_size = sizeof *r;
	struct stat st;
	if (stat(path, &st))
		return train_error_set(err, errno == ENOENT ? TRAIN_ENOTFOUND : -errno, path, 0, 0, "%s",
		                       errno == ENOENT ? "no such model folder or archive (nothing is downloaded)"
		                                       : strerror(errno));
	rc = S_ISDIR(st.st_mode) ? read_hf(path, &a, r, &si, err) : read_package(path, &a, r, &si, err);
	if (rc)
		goto out;
	const int kind = a.kind;
	snprintf(r->component, sizeof r->component, "%s",
	         kind == ARCH_BERT ? (o->type == TRAIN_CHECK_CONTINUED ? "BertMaskedLM" : "BertClassifier")
	         : kind == ARCH_GPT2 ? "GPT2LM" : "MambaLM");
	snprintf(r->target, sizeof r->target, "%s",
	         kind == ARCH_BERT ? "transformer" : kind == ARCH_GPT2 ? "gpt2" : "mamba");
	r->vocab = a.V;
	r->hidden = a.C;
	r->layers = a.L;
	r->heads = kind == ARCH_MAMBA ? 0 : a.NH;
	r->intermediate = a.I;
	r->positions = kind == ARCH_MAMBA ? 0 : a.P;
	r->state = kind == ARCH_MAMBA ? a.NS : 0;
	/* parameters: the file's count, the config's (with or without the heads
	 * a checkpoint may carry) */
	int labels = o->num_labels > 0 ? o->num_labels : a.labels > 0 ? a.labels : 2;
	uint64_t pc = kind == ARCH_BERT ? bert_params(&a, a.labels, 0)
	              : kind == ARCH_GPT2 ? gpt2_params(&a) : mamba_params(&a);
	r->params_config = pc;
	r->params_file = si.params;
	if (si.params && kind == ARCH_BERT) {
		/* a checkpoint may hold the MLM head, no pooler, or the labels' head */
		uint64_t alts[] = { pc, bert_params(&a, 0, 0), bert_params(&a, 0, 1), bert_params(&a, a.labels, 1),
		                    bert_params(&a, 0, 0) - (uint64_t)a.C * a.C - a.C,
		                    bert_params(&a, 0, 1) - (uint64_t)a.C * a.C - a.C };
		for (size_t i = 0; i < sizeof alts / sizeof alts[0]; i++)
			if (alts[i] == si.params)
				r->params_config = alts[i];
	}
	if (si.params && kind == ARCH_GPT2 && si.params != pc) {
		/* an untied lm_head, or the attention's causal-mask buffers */
		if (si.params == pc + (uint64_t)a.V * a.C)
			r->params_config = si.params;
	}
	/* what training holds: the trained model's layout (BERT: + pooler,
	 * classifier or MLM head) */
	uint64_t params = si.params ? si.params : pc;
	if (kind == ARCH_BERT)
		params = o->type == TRAIN_CHECK_CONTINUED ? bert_params(&a, 0, 1) : bert_params(&a, labels, 0);
	r->params = params;
	if (si.params && r->params_config != si.params)
		reason(r, 0, "", "the safetensors header holds %llu parameters, the config implies %llu",
		       (unsigned long long)si.params, (unsigned long long)pc);
	/* the run's shape */
	if ((rc = train_hardware_detect(&hw, o->output_dir)))
		goto out;
	r->batch_size = o->batch_size ? o->batch_size : 8;
	r->max_length = o->max_length ? o->max_length : (a.P < 512 ? a.P : 512);
	r->grad_accum = o->grad_accum ? o->grad_accum : 1;
	r->lora_r = o->type == TRAIN_CHECK_LORA ? (o->lora_r ? o->lora_r : 16) : 0;
	r->checkpointing = o->gradient_checkpointing;
	int bf16 = o->precision ? !strcmp(o->precision, "bf16") : hw.bf16_native;
	snprintf(r->precision, sizeof r->precision, "%s", bf16 ? "bf16" : "fp32");
	r->mem_available = hw.mem_available;
	r->disk_free = hw.disk_free;
	estimate_in ein = { &a, o->type, r->batch_size, r->max_length, r->checkpointing, r->lora_r, bf16, labels };
	estimate_memory(&ein, params, r);
	/* disk: the saved model, and a checkpoint of weights, moments and best */
	r->disk_needed = 4 * params + 16 * r->trainable;
	/* time */
	int mlm = kind == ARCH_BERT && o->type == TRAIN_CHECK_CONTINUED;
	r->flops_per_token = 3 * fwd_flops_token(&a, r->max_length, mlm);
	{
		/* probe at most ~2048 rows (and whole sequences); scale linearly */
		int T = r->max_length, Bp = r->batch_size;
		while (Bp > 1 && (int64_t)Bp * T > 2048)
			Bp--;
		char key[512], hwk[256];
		hw_fingerprint(&hw, hwk, sizeof hwk);
		probe_arg pa = { &a, Bp, T, kind == ARCH_GPT2, 0, bf16, hw.threads > 0 ? hw.threads : 1, 0 };
		if (kind == ARCH_MAMBA)
			snprintf(key, sizeof key, "%s|mamba B%d T%d D%d Di%d NS%d R%d|%s", hwk, Bp, T, a.C, a.I, a.NS, a.R,
			         r->precision);
		else
			snprintf(key, sizeof key, "%s|%s B%d T%d C%d I%d NH%d|%s", hwk, kind == ARCH_GPT2 ? "gpt2" : "bert",
			         Bp, T, a.C, a.I, a.NH, r->precision);
		int c1 = 0, c2 = 1;
		/* the probe's own arrays: one layer's activations and weights at
		 * (Bp, T); past 1 GiB (a very long sequence) it is not run */
		double pbytes = 4.0 * ((double)Bp * T * (8.0 * a.C + 3.0 * a.I + 16.0 * a.I / (a.I ? a.I : 1)) +
		                       (kind == ARCH_MAMBA ? 0 : (double)Bp * a.NH * T * T) +
		                       2.0 * (4.0 * a.C * a.C + 3.0 * a.C * a.I));
		int no_probe = o->no_probe || pbytes > (double)(1u << 30);
		if (pbytes > (double)(1u << 30))
			reason(r, 0, "", "the step time is not measured: probing one layer at this length would "
			       "take %.1f GiB", pbytes / (1u << 30));
		double tl = probe_cached(o->cache_dir, key, no_probe, &c1, run_layer, &pa, &pa.cpu), tlc = pa.cpu, thc = 0;
		double th = 0;
		int rows = kind == ARCH_GPT2 || kind == ARCH_MAMBA ? Bp * T : mlm ? (Bp * T * 15 + 99) / 100 + Bp : 0;
		if (tl > 0 && rows > 0) {
			/* at most 256 rows (the logits of a 50k vocabulary), scaled */
			pa.rows = rows < 256 ? rows : 256;
			snprintf(key, sizeof key, "%s|head rows%d C%d V%d|%s", hwk, pa.rows, a.C, a.V, r->precision);
			int hrows = pa.rows;
			th = probe_cached(o->cache_dir, key, no_probe, &c2, run_head, &pa, &pa.cpu);
			thc = pa.cpu;
			if (th > 0) {
				th *= (double)rows / hrows;
				thc *= (double)rows / hrows;
			}
		}
		if (tl > 0 && th >= 0) {
			double scale = (double)r->batch_size / Bp;
			r->layer_seconds = tl * scale;
			/* the embeddings, the optimizer step (AdamW over the trainable
			 * parameters, ~10 passes of memory) and the loop's own work are
			 * small beside the layers: counted as one more layer's worth
			 * for the embeddings and an AdamW term */
			double adam = (double)r->trainable * 4 * 10 / 8e9;
			double layers = a.L + (kind == ARCH_MAMBA ? 0 : 0.25);
			/* checkpointing runs each layer's forward twice: a third more */
			if (r->checkpointing)
				layers += a.L / 3.0;
			r->step_seconds = (tl * layers + th) * scale * r->grad_accum + adam;
			r->step_cpu_seconds = (tlc * layers + thc) * scale * r->grad_accum + adam;
			r->probe_cached = c1 && c2;
		}
	}
	int64_t per_step = (int64_t)r->batch_size * r->grad_accum;
	if (o->data) {
		int64_t lines, chars, bytes;
		if ((rc = data_size(o->data, &lines, &chars, &bytes, err)))
			goto out;
		if (kind == ARCH_BERT) {
			/* validation_split 0.1 held out */
			r->examples = lines - (int64_t)((double)lines * 0.1);
			r->steps_per_epoch = (r->examples + per_step - 1) / per_step;
		} else if (kind == ARCH_MAMBA) {
			/* MambaLM: characters; 10 % held out for validation */
			r->examples = chars;
			int64_t tr = chars - (int64_t)((double)chars * 0.1);
			r->steps_per_epoch = (tr - 1) / (per_step * r->max_length);
			if (r->steps_per_epoch < 1)
				r->steps_per_epoch = 1;
		} else {
			/* byte-level BPE: about 4 bytes a token in English */
			r->examples = bytes / 4;
			r->steps_per_epoch = (r->examples + per_step * r->max_length - 1) / (per_step * r->max_length);
		}
	} else if (o->steps)
		r->steps_per_epoch = o->steps;
	r->epoch_seconds = r->step_seconds * (double)r->steps_per_epoch;

	/* ---- the verdict ---- */
	r->verdict = TRAIN_CHECK_COMPATIBLE;
	const train_check_type ty = o->type;
	/* MambaLM continues its own models (model_path: a char or byte-level
	 * BPE tokenizer beside the weights); a Hugging Face Mamba's weights
	 * come with a tokenizer.json it does not read */
	if (kind == ARCH_MAMBA && ty != TRAIN_CHECK_FULL && ty != TRAIN_CHECK_TASK &&
	    strcmp(r->source, "libtrain"))
		reason(r, TRAIN_CHECK_NOT_COMPATIBLE, "--type full (train a Mamba of this shape from scratch)",
		       "MambaLM continues only its own models (a libtrain model or MambaLM folder): a Hugging "
		       "Face Mamba's tokenizer (tokenizer.json) is not read, so no %s of its weights",
		       train_check_type_name(ty));
	if (ty == TRAIN_CHECK_TASK && kind != ARCH_BERT)
		reason(r, TRAIN_CHECK_NOT_COMPATIBLE, kind == ARCH_GPT2 ? "--type fine-tune (next-turn generation)" : "--type full",
		       "a classification head is built for BERT only");
	if (kind != ARCH_MAMBA && r->max_length > a.P)
		reason(r, TRAIN_CHECK_NOT_COMPATIBLE, "", "max_length %d is past the model's %d positions",
		       r->max_length, a.P);
	if (bf16 && !hw.bf16_native)
		reason(r, TRAIN_CHECK_WITH_CHANGES, "--precision fp32",
		       "this CPU has no native bf16 (AVX512-BF16 or AMX): bf16 would be emulated and slower");
	else if (!bf16 && hw.bf16_native)
		reason(r, 0, "--precision bf16", "this CPU runs bf16 matmuls natively; bf16 would be faster");
	uint64_t avail = hw.mem_available ? hw.mem_available : hw.mem_total;
	if (avail && r->mem_peak > avail) {
		human(h1, sizeof h1, r->mem_peak);
		human(h2, sizeof h2, avail);
		int ok = 0;
		fix[0] = '\0';
		/* the changes, cheapest first: checkpointing, a smaller batch with
		 * accumulation, LoRA */
		if (!r->checkpointing &&
		    peak_with(&ein, params, ty, r->batch_size, 1) <= avail) {
			snprintf(fix, sizeof fix, "--gradient-checkpointing");
			ok = 1;
		}
		for (int b = r->batch_size / 2; !ok && b >= 1; b /= 2)
			if (peak_with(&ein, params, ty, b, r->checkpointing) <= avail) {
				snprintf(fix, sizeof fix, "--batch-size %d with gradient_accumulation_steps %d", b,
				         (r->batch_size + b - 1) / b);
				ok = 1;
			}
		if (!ok && ty != TRAIN_CHECK_LORA &&
		    (kind != ARCH_MAMBA || (!strcmp(r->source, "libtrain") && ty != TRAIN_CHECK_FULL)))
			for (int b = r->batch_size; !ok && b >= 1; b /= 2)
				if (peak_with(&ein, params, TRAIN_CHECK_LORA, b, 1) <= avail) {
					snprintf(fix, sizeof fix, "--type lora --gradient-checkpointing --batch-size %d", b);
					ok = 1;
				}
		reason(r, ok ? TRAIN_CHECK_WITH_CHANGES : TRAIN_CHECK_NOT_COMPATIBLE, fix,
		       "needs %s of memory, %s is available", h1, h2);
	} else if (avail && r->mem_peak > avail / 10 * 9) {
		human(h1, sizeof h1, r->mem_peak);
		human(h2, sizeof h2, avail);
		reason(r, 0, "a smaller --batch-size leaves room", "needs %s of the %s available", h1, h2);
	}
	if (hw.disk_free && r->disk_needed > hw.disk_free) {
		human(h1, sizeof h1, r->disk_needed);
		human(h2, sizeof h2, hw.disk_free);
		reason(r, TRAIN_CHECK_WITH_CHANGES, "free disk space or write elsewhere (--output)",
		       "the model and its checkpoints need %s of disk, %s is free", h1, h2);
	}
	if (r->epoch_seconds > 7 * 86400.0)
		reason(r, 0, ty == TRAIN_CHECK_LORA ? "less data or a smaller model" : "--type lora or less data",
		       "an epoch would take about %.0f days here", r->epoch_seconds / 86400);
out:
	json_decref(si.hdr);
	return rc;
}
