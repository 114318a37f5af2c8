/*
 * plugins/common/strmap.h - a hash map from byte strings to indices, for
 * vocabularies (open addressing, XXH3 from <train/common.h>'s
 * train_fp_of).  Keys are copied; indices are what the caller stores.
 * Private to the first-party plugins.
 */
#ifndef PLUGINS_STRMAP_H
#define PLUGINS_STRMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct strmap_entry {
	char *key;        /* NUL-terminated copy; NULL: empty slot */
	size_t len;
	uint64_t hash;
	size_t value;
} strmap_entry;

typedef struct strmap {
	strmap_entry *slots;
	size_t cap, len;  /* cap a power of two */
} strmap;

/* A zeroed strmap is empty and valid. */
void strmap_free(strmap *m);
/* The entry of key[0..len), or NULL. */
strmap_entry *strmap_get(const strmap *m, const char *key, size_t len);
/*
 * The entry of key[0..len), added with `value` if new (*added = 1).
 * NULL when out of memory.  Pointers to entries move when the map grows.
 */
strmap_entry *strmap_put(strmap *m, const char *key, size_t len, size_t value, int *added);

#endif
