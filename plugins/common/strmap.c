/*
 * plugins/common/strmap.c - string -> index hash map (see strmap.h).
 */
#include "strmap.h"

#include <train/common.h>

#include <stdlib.h>
#include <string.h>

static uint64_t hash_of(const char *key, size_t len)
{
	return train_fp_of(key, len).lo;
}

void strmap_free(strmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].key);
	free(m->slots);
	memset(m, 0, sizeof *m);
}

static strmap_entry *find(const strmap *m, const char *key, size_t len, uint64_t h)
{
	size_t mask = m->cap - 1;
	for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
		strmap_entry *e = &m->slots[i];
		if (!e->key || (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0))
			return e;
	}
}

strmap_entry *strmap_get(const strmap *m, const char *key, size_t len)
{
	if (!m->cap)
		return NULL;
	strmap_entry *e = find(m, key, len, hash_of(key, len));
	return e->key ? e : NULL;
}

static int grow(strmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 64;
	strmap_entry *s = calloc(cap, sizeof *s);
	if (!s)
		return -1;
	strmap old = *m;
	m->slots = s;
	m->cap = cap;
	for (size_t i = 0; i < old.cap; i++)
		if (old.slots[i].key)
			*find(m, old.slots[i].key, old.slots[i].len, old.slots[i].hash) = old.slots[i];
	free(old.slots);
	return 0;
}

strmap_entry *strmap_put(strmap *m, const char *key, size_t len, size_t value, int *added)
{
	if (added)
		*added = 0;
	if ((m->len + 1) * 4 > m->cap * 3 && grow(m))
		return NULL;
	uint64_t h = hash_of(key, len);
	strmap_entry *e = find(m, key, len, h);
	if (e->key)
		return e;
	char *k = malloc(len + 1);
	if (!k)
		return NULL;
	memcpy(k, key, len);
	k[len] = '\0';
	e->key = k;
	e->len = len;
	e->hash = h;
	e->value = value;
	m->len++;
	if (added)
		*added = 1;
	return e;
}
