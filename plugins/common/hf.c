/*
 * plugins/common/hf.c - file helpers for Hugging Face folders (hf.h).
 */
#include "hf.h"
#include <jansson.h>

#include <train/optim.h>

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int hf_read_file(const char *path, char **out, size_t *len, train_error *err)
{
	FILE *f = fopen(path, "rb");
	*out = NULL;
	if (!f)
		return train_error_set(err, -errno, path, 0, 0, "cannot open: %s", strerror(errno));
	size_t cap = 1 << 16, n = 0;
	char *b = malloc(cap + 1);
	while (b) {
		size_t got = fread(b + n, 1, cap - n, f);
		n += got;
		if (n < cap)
			break;
		char *nb = realloc(b, 2 * cap + 1);
		if (!nb) {
			free(b);
			b = NULL;
			break;
		}
		b = nb;
		cap *= 2;
	}
	int bad = ferror(f);
	fclose(f);
	if (!b)
		return train_error_set(err, TRAIN_ENOMEM, path, 0, 0, "out of memory");
	if (bad) {
		free(b);
		return train_error_set(err, TRAIN_EIO, path, 0, 0, "read error");
	}
	b[n] = '\0';
	*out = b;
	*len = n;
	return TRAIN_OK;
}

int hf_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                    train_error *err)
{
	char path[4096], tmp[4200];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	FILE *f = fopen(tmp, "wb");
	if (!f)
		return train_error_set(err, -errno, tmp, 0, 0, "cannot create: %s", strerror(errno));
	int bad = fwrite(data, 1, len, f) != len;
	bad |= fflush(f) != 0;
	bad |= fsync(fileno(f)) != 0;
	bad |= fclose(f) != 0;
	if (bad || rename(tmp, path) != 0) {
		int e = errno;
		unlink(tmp);
		return train_error_set(err, TRAIN_EIO, path, 0, 0, "cannot write: %s", strerror(e));
	}
	return TRAIN_OK;
}

int hf_write_json(const char *dir, const char *name, const void *json, train_error *err)
{
	char *text = json_dumps((const json_t *)json, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!text)
		return train_error_set(err, TRAIN_ENOMEM, dir, 0, 0, "out of memory");
	size_t n = strlen(text);
	char *t2 = realloc(text, n + 2);
	if (!t2) {
		free(text);
		return train_error_set(err, TRAIN_ENOMEM, dir, 0, 0, "out of memory");
	}
	t2[n] = '\n';
	int rc = hf_write_atomic(dir, name, t2, n + 1, err);
	free(t2);
	return rc;
}

static float half_to_f32(uint16_t h)
{
	uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023;
	float f;
	if (e == 0)
		f = ldexpf((float)m, -24);
	else if (e == 31)
		f = m ? NAN : INFINITY;
	else
		f = ldexpf((float)(m | 1024), (int)e - 25);
	uint32_t bits;
	memcpy(&bits, &f, 4);
	bits |= s;
	memcpy(&f, &bits, 4);
	return f;
}

int hf_tensor_f32(const train_tensor *t, float *dst, const char *file, const char *name,
                  train_error *err)
{
	size_t n = train_tensor_numel(t);
	if (t->dtype == TRAIN_F32)
		memcpy(dst, t->data, n * sizeof *dst);
	else if (t->dtype == TRAIN_BF16)
		train_bf16_to_f32_n(dst, t->data, n);
	else if (t->dtype == TRAIN_F16)
		for (size_t k = 0; k < n; k++)
			dst[k] = half_to_f32(((const uint16_t *)t->data)[k]);
	else
		return train_error_set(err, TRAIN_EUNSUPPORTED, file, 0, 0,
		                       "tensor %s is %s, not F32, F16 or BF16", name, train_dtype_name(t->dtype));
	return TRAIN_OK;
}

int hf_lay(hf_layout *l, float **dst, const char *name, int64_t d0, int64_t d1)
{
	if (*l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		hf_param *t = realloc(*l->tensors, cap * sizeof *t);
		if (!t)
			return TRAIN_ENOMEM;
		*l->tensors = t;
		float ***d = realloc(l->dst, cap * sizeof *d);
		if (!d)
			return TRAIN_ENOMEM;
		l->dst = d;
		l->cap = cap;
	}
	hf_param *t = &(*l->tensors)[*l->n];
	snprintf(t->name, sizeof t->name, "%s", name);
	t->ndim = d1 ? 2 : 1;
	t->shape[0] = d0;
	t->shape[1] = d1 ? d1 : 1;
	t->offset = l->off;
	l->dst[(*l->n)++] = dst;
	l->off += (size_t)d0 * (size_t)(d1 ? d1 : 1);
	return TRAIN_OK;
}

void hf_lay_point(const hf_layout *l, float *params)
{
	for (size_t i = 0; i < *l->n; i++)
		if (l->dst[i])
			*l->dst[i] = params + (*l->tensors)[i].offset;
}

void hf_lay_free(hf_layout *l)
{
	free(l->dst);
	l->dst = NULL;
}

const hf_param *hf_param_find(const hf_param *t, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(t[i].name, name) == 0)
			return &t[i];
	return NULL;
}

int hf_params_write(const char *path, const hf_param *t, size_t n, const float *params,
                    const char *prefix, train_error *err)
{
	train_named_tensor *nt = calloc(n ? n : 1, sizeof *nt);
	char (*names)[128] = calloc(n ? n : 1, sizeof *names);
	int rc;
	if (!nt || !names) {
		rc = train_error_set(err, TRAIN_ENOMEM, path, 0, 0, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], sizeof names[i], "%s%s", prefix, t[i].name);
		nt[i].name = names[i];
		nt[i].t.dtype = TRAIN_F32;
		nt[i].t.ndim = t[i].ndim;
		nt[i].t.shape[0] = t[i].shape[0];
		nt[i].t.shape[1] = t[i].shape[1];
		nt[i].t.shape[2] = nt[i].t.shape[3] = 1;
		nt[i].t.data = (float *)(uintptr_t)(params + t[i].offset);
	}
	static const char *const meta[] = { "format", "pt", NULL };
	rc = train_safetensors_write(path, nt, n, meta, err);
out:
	free(nt);
	free(names);
	return rc;
}

int hf_peft_open(hf_peft *p, const char *dir, train_error *err)
{
	memset(p, 0, sizeof *p);
	char *text = NULL;
	size_t len;
	json_t *j = NULL;
	int rc;
	snprintf(p->config_path, sizeof p->config_path, "%s/adapter_config.json", dir);
	snprintf(p->path, sizeof p->path, "%s/adapter_model.safetensors", dir);
	const char *cp = p->config_path;
	if ((rc = hf_read_file(cp, &text, &len, err)))
		return rc;
	json_error_t je;
	if (!(j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je)) || !json_is_object(j)) {
		rc = train_error_set(err, TRAIN_EPARSE, cp, j ? 0 : (unsigned)je.line,
		                     j ? 0 : (unsigned)je.column, "%s", j ? "not a JSON object" : je.text);
		goto out;
	}
	json_t *pt = json_object_get(j, "peft_type"), *r = json_object_get(j, "r");
	json_t *al = json_object_get(j, "lora_alpha"), *dr = json_object_get(j, "lora_dropout");
	if (pt && (!json_is_string(pt) || strcmp(json_string_value(pt), "LORA"))) {
		rc = train_error_set(err, TRAIN_EUNSUPPORTED, cp, 0, 0, "peft_type is not \"LORA\"");
		goto out;
	}
	if (!json_is_integer(r) || json_integer_value(r) < 1 || json_integer_value(r) > 65536 ||
	    !json_is_number(al) || (dr && !json_is_number(dr))) {
		rc = train_error_set(err, TRAIN_ECORRUPT, cp, 0, 0,
		                     "\"r\" must be a positive integer, \"lora_alpha\" and \"lora_dropout\" numbers");
		goto out;
	}
	p->r = (int)json_integer_value(r);
	p->alpha = json_number_value(al);
	p->dropout = dr ? json_number_value(dr) : 0.0;
	if (!(p->dropout >= 0 && p->dropout < 1)) {
		rc = train_error_set(err, TRAIN_ECORRUPT, cp, 0, 0, "lora_dropout must be in [0, 1)");
		goto out;
	}
	if ((rc = train_safetensors_open(p->path, &p->st, err)) && err && !err->file[0])
		snprintf(err->file, sizeof err->file, "%.255s", p->path);
out:
	free(text);
	json_decref(j);
	return rc;
}

void hf_peft_close(hf_peft *p)
{
	train_safetensors_close(p->st);
	p->st = NULL;
}

int hf_peft_tensor(const hf_peft *p, const char *name, int64_t d0, int64_t d1, float *dst,
                   train_error *err)
{
	train_tensor t;
	if (train_safetensors_get(p->st, name, &t))
		return train_error_set(err, TRAIN_ENOTFOUND, p->path, 0, 0, "tensor %s is missing", name);
	if (t.ndim != 2 || t.shape[0] != d0 || t.shape[1] != d1)
		return train_error_set(err, TRAIN_EMISMATCH, p->path, 0, 0,
		                       "tensor %s has shape [%lld, %lld], expected [%lld, %lld]", name,
		                       (long long)t.shape[0], (long long)(t.ndim > 1 ? t.shape[1] : 1),
		                       (long long)d0, (long long)d1);
	return hf_tensor_f32(&t, dst, p->path, name, err);
}

unsigned hf_peft_kinds(const hf_peft *p, const char *prefix, const char *const *names, int n)
{
	unsigned kinds = 0;
	for (int k = 0; k < n; k++) {
		char name[256];
		train_tensor t;
		int len = snprintf(name, sizeof name, "%s%s.lora_A.weight", prefix, names[k]);
		if (len > 0 && (size_t)len < sizeof name && !train_safetensors_get(p->st, name, &t))
			kinds |= 1u << k;
	}
	return kinds;
}
