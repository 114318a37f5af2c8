/*
 * value.c - immutable, reference-counted values and the name -> value sets
 * that components receive and fill.
 */
#include <train/value.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct train_value {
	atomic_int refs;
	char *type;
	void *data;
	size_t size;
	train_fp fp; /* XXH3-128 over type (with NUL) then bytes */
};

int train_value_new_take(const char *type, void *data, size_t size, train_value **out)
{
	if (!type || !*type || (!data && size)) {
		free(data);
		return TRAIN_EINVAL;
	}
	train_value *v = calloc(1, sizeof *v);
	if (!v || !(v->type = strdup(type))) {
		free(v);
		free(data);
		return TRAIN_ENOMEM;
	}
	atomic_init(&v->refs, 1);
	v->data = data;
	v->size = size;
	train_hasher *h;
	if (train_hasher_create(&h)) {
		free(v->type);
		free(v);
		free(data);
		return TRAIN_ENOMEM;
	}
	train_hasher_str(h, type);
	train_hasher_u64(h, size);
	train_hasher_update(h, data, size);
	v->fp = train_hasher_digest(h);
	train_hasher_destroy(h);
	*out = v;
	return TRAIN_OK;
}

int train_value_new(const char *type, const void *data, size_t size, train_value **out)
{
	if (!data && size)
		return TRAIN_EINVAL;
	/* One spare byte keeps text values NUL-terminated for convenience. */
	char *copy = malloc(size + 1);
	if (!copy)
		return TRAIN_ENOMEM;
	if (size)
		memcpy(copy, data, size);
	copy[size] = '\0';
	return train_value_new_take(type, copy, size, out);
}

train_value *train_value_ref(train_value *v)
{
	if (v)
		atomic_fetch_add(&v->refs, 1);
	return v;
}

void train_value_unref(train_value *v)
{
	if (!v || atomic_fetch_sub(&v->refs, 1) != 1)
		return;
	free(v->type);
	free(v->data);
	free(v);
}

const char *train_value_type(const train_value *v) { return v->type; }
const void *train_value_data(const train_value *v) { return v->data; }
size_t train_value_size(const train_value *v) { return v->size; }
train_fp train_value_fp(const train_value *v) { return v->fp; }

/* ---- sets ------------------------------------------------------------------ */

struct train_values {
	char **names;
	train_value **vals;
	size_t n, cap;
};

int train_values_create(train_values **out)
{
	train_values *s = calloc(1, sizeof *s);
	if (!s)
		return TRAIN_ENOMEM;
	*out = s;
	return TRAIN_OK;
}

void train_values_destroy(train_values *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->names[i]);
		train_value_unref(s->vals[i]);
	}
	free(s->names);
	free(s->vals);
	free(s);
}

static long find(const train_values *s, const char *name)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->names[i], name))
			return (long)i;
	return -1;
}

const train_value *train_values_get(const train_values *s, const char *name)
{
	long i = s && name ? find(s, name) : -1;
	return i < 0 ? NULL : s->vals[i];
}

int train_values_put_take(train_values *s, const char *name, train_value *v)
{
	if (!s || !name || !*name || !v) {
		train_value_unref(v);
		return TRAIN_EINVAL;
	}
	long i = find(s, name);
	if (i >= 0) {
		train_value_unref(s->vals[i]);
		s->vals[i] = v;
		return TRAIN_OK;
	}
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 4;
		char **nn = realloc(s->names, nc * sizeof *nn);
		if (nn)
			s->names = nn;
		train_value **nv = nn ? realloc(s->vals, nc * sizeof *nv) : NULL;
		if (!nv) {
			train_value_unref(v);
			return TRAIN_ENOMEM;
		}
		s->vals = nv;
		s->cap = nc;
	}
	char *copy = strdup(name);
	if (!copy) {
		train_value_unref(v);
		return TRAIN_ENOMEM;
	}
	s->names[s->n] = copy;
	s->vals[s->n] = v;
	s->n++;
	return TRAIN_OK;
}

int train_values_put_bytes(train_values *s, const char *name, const char *type, const void *data,
                           size_t size)
{
	train_value *v;
	int rc = train_value_new(type, data, size, &v);
	return rc ? rc : train_values_put_take(s, name, v);
}

size_t train_values_len(const train_values *s) { return s ? s->n : 0; }

const char *train_values_name_at(const train_values *s, size_t i)
{
	return s && i < s->n ? s->names[i] : NULL;
}

const train_value *train_values_at(const train_values *s, size_t i)
{
	return s && i < s->n ? s->vals[i] : NULL;
}
