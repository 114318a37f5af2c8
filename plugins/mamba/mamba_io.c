/*
 * plugins/mamba/mamba_io.c - a Mamba model with its character vocabulary
 * as one safetensors file, and as a graph value (issue 9: the RLHF stages
 * hand their models to each other this way).
 *
 * The file holds the model's tensors under Hugging Face's
 * MambaForCausalLM names, any extra tensors the caller adds (a reward
 * model's score head, a policy's value head), and metadata: format
 * "libtrain.mamba-value" version 1, the sizes, and "vocab", the code point
 * of every token id as a JSON list of integers (-1 for id 0, unknown).
 * A value is the file's bytes under the content type MAMBA_VALUE_TYPE.
 */
#include "mamba.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IO_FORMAT "libtrain.mamba-value"

int mamba_file_write(const char *path, const mamba_model *m, const int32_t *vocab, int nvocab,
                     const train_named_tensor *extra, size_t nextra, const char *kind,
                     train_error *err)
{
	size_t n = m->n_info + nextra;
	train_named_tensor *nt = calloc(n, sizeof *nt);
	json_t *voc = json_array();
	char *vs = NULL;
	int rc = TRAIN_ENOMEM;
	if (!nt || !voc || nvocab != m->d.V)
		goto out;
	for (size_t i = 0; i < m->n_info; i++) {
		const mamba_tensor_info *t = &m->info[i];
		nt[i].name = t->name;
		nt[i].t.dtype = TRAIN_F32;
		nt[i].t.ndim = t->ndim;
		for (int j = 0; j < 4; j++)
			nt[i].t.shape[j] = j < t->ndim ? t->shape[j] : 1;
		nt[i].t.data = m->params + t->offset;
	}
	for (size_t i = 0; i < nextra; i++)
		nt[m->n_info + i] = extra[i];
	for (int i = 0; i < nvocab; i++)
		if (json_array_append_new(voc, json_integer(vocab[i])))
			goto out;
	if (!(vs = json_dumps(voc, JSON_COMPACT)))
		goto out;
	char sv[24], sd[24], sl[24];
	snprintf(sv, sizeof sv, "%d", m->d.V);
	snprintf(sd, sizeof sd, "%d", m->d.D);
	snprintf(sl, sizeof sl, "%d", m->d.n_layers);
	const char *meta[] = { "format", IO_FORMAT, "version", "1", "kind", kind ? kind : "lm",
		               "vocab_size", sv, "d_model", sd, "n_layers", sl, "vocab", vs, NULL };
	rc = train_safetensors_write(path, nt, n, meta, err);
out:
	free(nt);
	json_decref(voc);
	free(vs);
	return rc;
}

int mamba_file_read(const char *path, int with_grads, const char *kind, mamba_model **mo,
                    int32_t **vocab_out, int *nvocab, train_safetensors **fo, train_error *err)
{
	train_safetensors *f = NULL;
	mamba_model *m = NULL;
	int32_t *vocab = NULL;
	json_t *voc = NULL;
	*mo = NULL;
	*vocab_out = NULL;
	int rc = train_safetensors_open(path, &f, err);
	if (rc)
		return rc;
	const char *fmt = train_safetensors_meta(f, "format"), *k = train_safetensors_meta(f, "kind");
	const char *sv = train_safetensors_meta(f, "vocab_size"), *sd = train_safetensors_meta(f, "d_model");
	const char *sl = train_safetensors_meta(f, "n_layers"), *vs = train_safetensors_meta(f, "vocab");
	mamba_dims d;
	if (!fmt || strcmp(fmt, IO_FORMAT) || !sv || !sd || !sl || !vs || !k ||
	    mamba_dims_make(atoi(sv), atoi(sd), atoi(sl), &d)) {
		rc = train_error_set(err, TRAIN_ECORRUPT, path, 0, 0, "not a Mamba model value (%s, version 1)",
		                     IO_FORMAT);
		goto out;
	}
	if (kind && strcmp(kind, k)) {
		rc = train_error_set(err, TRAIN_EINVAL, path, 0, 0, "a Mamba %s model, not a %s model", k, kind);
		goto out;
	}
	if ((rc = mamba_model_create(&d, with_grads, &m)))
		goto out;
	for (size_t i = 0; i < m->n_info; i++) {
		const mamba_tensor_info *t = &m->info[i];
		train_tensor tt;
		if (train_safetensors_get(f, t->name, &tt) || tt.dtype != TRAIN_F32 ||
		    train_tensor_numel(&tt) != t->numel) {
			rc = train_error_set(err, TRAIN_ECORRUPT, path, 0, 0, "%s missing or of another shape",
			                     t->name);
			goto out;
		}
		memcpy(m->params + t->offset, tt.data, t->numel * sizeof(float));
	}
	voc = json_loads(vs, 0, NULL);
	vocab = malloc((size_t)d.V * sizeof *vocab);
	if (!vocab) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	if (!json_is_array(voc) || (int)json_array_size(voc) != d.V) {
		rc = train_error_set(err, TRAIN_ECORRUPT, path, 0, 0, "vocab: not a list of %d code points", d.V);
		goto out;
	}
	for (int i = 0; i < d.V; i++) {
		json_t *e = json_array_get(voc, (size_t)i);
		json_int_t v = json_is_integer(e) ? json_integer_value(e) : -2;
		if (i == 0 ? v != -1 : v < 0 || v >= 0x110000 || (i > 1 && v <= vocab[i - 1])) {
			rc = train_error_set(err, TRAIN_ECORRUPT, path, 0, 0,
			                     "vocab: entry %d is not a code point in increasing order", i);
			goto out;
		}
		vocab[i] = (int32_t)v;
	}
	*mo = m;
	*vocab_out = vocab;
	*nvocab = d.V;
	m = NULL;
	vocab = NULL;
out:
	json_decref(voc);
	mamba_model_destroy(m);
	free(vocab);
	if (!rc && fo)
		*fo = f;
	else
		train_safetensors_close(f);
	return rc;
}

/* A fresh temporary file name under $TMPDIR (the file exists, empty). */
static char *tmp_name(void)
{
	const char *base = getenv("TMPDIR");
	char *p = malloc(4096);
	if (!p)
		return NULL;
	snprintf(p, 4096, "%s/train-mamba-XXXXXX", base && *base ? base : "/tmp");
	int fd = mkstemp(p);
	if (fd < 0) {
		free(p);
		return NULL;
	}
	close(fd);
	return p;
}

int mamba_value_make(const mamba_model *m, const int32_t *vocab, int nvocab,
                     const train_named_tensor *extra, size_t nextra, const char *kind,
                     train_value **out, train_error *err)
{
	char *p = tmp_name(), *buf = NULL;
	*out = NULL;
	if (!p)
		return train_error_set(err, TRAIN_EIO, "", 0, 0, "cannot make a temporary file");
	int rc = mamba_file_write(p, m, vocab, nvocab, extra, nextra, kind, err);
	FILE *f = rc ? NULL : fopen(p, "rb");
	if (!rc && !f)
		rc = -errno;
	if (f) {
		long n = fseek(f, 0, SEEK_END) ? -1 : ftell(f);
		if (n < 0 || fseek(f, 0, SEEK_SET) || !(buf = malloc((size_t)n + 1)) ||
		    fread(buf, 1, (size_t)n, f) != (size_t)n)
			rc = buf ? TRAIN_EIO : TRAIN_ENOMEM;
		fclose(f);
		if (!rc) {
			rc = train_value_new_take(MAMBA_VALUE_TYPE, buf, (size_t)n, out);
			buf = NULL;
		}
	}
	if (rc && !err->text[0])
		train_error_set(err, rc, p, 0, 0, "%s", train_strerror(rc));
	free(buf);
	unlink(p);
	free(p);
	return rc;
}

int mamba_value_read(const train_value *v, int with_grads, const char *kind, mamba_model **m,
                     int32_t **vocab, int *nvocab, train_safetensors **f, train_error *err)
{
	*m = NULL;
	*vocab = NULL;
	if (!v || strcmp(train_value_type(v), MAMBA_VALUE_TYPE))
		return train_error_set(err, TRAIN_EINVAL, "", 0, 0, "not a Mamba model value (%s)",
		                       MAMBA_VALUE_TYPE);
	char *p = tmp_name();
	if (!p)
		return train_error_set(err, TRAIN_EIO, "", 0, 0, "cannot make a temporary file");
	FILE *o = fopen(p, "wb");
	int rc = o && fwrite(train_value_data(v), 1, train_value_size(v), o) == train_value_size(v)
	         ? TRAIN_OK : TRAIN_EIO;
	if (o && fclose(o))
		rc = TRAIN_EIO;
	if (rc)
		train_error_set(err, rc, p, 0, 0, "cannot write");
	else
		rc = mamba_file_read(p, with_grads, kind, m, vocab, nvocab, f, err);
	/* the map outlives the name */
	unlink(p);
	free(p);
	return rc;
}

int32_t mamba_char_id(const int32_t *vocab, int nvocab, int32_t cp)
{
	int lo = 1, hi = nvocab - 1;
	while (lo <= hi) {
		int mid = (lo + hi) / 2;
		if (vocab[mid] == cp)
			return mid;
		if (vocab[mid] < cp)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return 0;
}

int mamba_utf8_encode(int32_t cp, char *o)
{
	uint32_t v = (uint32_t)cp;
	int k = v < 0x80 ? 1 : v < 0x800 ? 2 : v < 0x10000 ? 3 : 4;
	if (k == 1)
		o[0] = (char)v;
	else {
		for (int j = k - 1; j > 0; j--, v >>= 6)
			o[j] = (char)(0x80 | (v & 0x3F));
		o[0] = (char)((k == 2 ? 0xC0 : k == 3 ? 0xE0 : 0xF0) | v);
	}
	return k;
}

size_t mamba_utf8_decode(const char *text, size_t n, int32_t *cps)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t k = 0;
	for (size_t i = 0; i < n;) {
		unsigned c = s[i];
		int len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
		if (c >= 0x80 && c < 0xC0)
			len = 1; /* a stray continuation byte: one unknown */
		if (i + (size_t)len > n)
			len = 1;
		uint32_t v = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
		for (int j = 1; j < len; j++)
			v = v << 6 | (s[i + j] & 0x3F);
		cps[k++] = len == 1 && c >= 0x80 ? 0xFFFD : (int32_t)v;
		i += (size_t)len;
	}
	return k;
}
