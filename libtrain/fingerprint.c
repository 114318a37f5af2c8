/*
 * fingerprint.c - XXH3-128 fingerprints: a streaming hasher, hex text,
 * and content hashing of files and folders.
 *
 * Everything fed to a hasher is in a fixed byte order (integers little-
 * endian, strings with their terminator), so the same inputs give the same
 * fingerprint on every machine.
 */
#include <train/common.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "util.h"

struct train_hasher {
	XXH3_state_t *state;
};

int train_hasher_create(train_hasher **out)
{
	train_hasher *h = calloc(1, sizeof *h);
	if (!h || !(h->state = XXH3_createState())) {
		free(h);
		return TRAIN_ENOMEM;
	}
	XXH3_128bits_reset(h->state);
	*out = h;
	return TRAIN_OK;
}

void train_hasher_destroy(train_hasher *h)
{
	if (!h)
		return;
	XXH3_freeState(h->state);
	free(h);
}

void train_hasher_reset(train_hasher *h)
{
	XXH3_128bits_reset(h->state);
}

void train_hasher_update(train_hasher *h, const void *data, size_t size)
{
	if (size)
		XXH3_128bits_update(h->state, data, size);
}

void train_hasher_str(train_hasher *h, const char *s)
{
	if (!s) /* NULL and "" must differ: NULL is one 0xff byte */
		train_hasher_update(h, "\xff", 1);
	else
		train_hasher_update(h, s, strlen(s) + 1);
}

void train_hasher_u64(train_hasher *h, uint64_t v)
{
	unsigned char b[8];
	train_put_u64(b, v);
	train_hasher_update(h, b, sizeof b);
}

void train_hasher_fp(train_hasher *h, train_fp fp)
{
	train_hasher_u64(h, fp.hi);
	train_hasher_u64(h, fp.lo);
}

static int hash_file(train_hasher *h, const char *path, train_error *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return train_error_set(err, -errno, path, 0, 0, "cannot open: %s", strerror(errno));
	char buf[65536];
	size_t n;
	uint64_t total = 0;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
		train_hasher_update(h, buf, n);
		total += n;
	}
	int bad = ferror(f);
	fclose(f);
	if (bad)
		return train_error_set(err, TRAIN_EIO, path, 0, 0, "read error");
	/* The length closes the content, so that file boundaries are unambiguous. */
	train_hasher_u64(h, total);
	return TRAIN_OK;
}

int train_hasher_path(train_hasher *h, const char *path, train_error *err)
{
	if (!train_is_dir(path)) {
		train_hasher_str(h, "file");
		return hash_file(h, path, err);
	}
	char **names = NULL;
	size_t n = 0;
	int rc = train_list_files(path, &names, &n, err);
	if (rc)
		return rc;
	train_hasher_str(h, "dir");
	train_hasher_u64(h, n);
	for (size_t i = 0; i < n && !rc; i++) {
		char *full = train_path_join(path, names[i]);
		if (!full) {
			rc = TRAIN_ENOMEM;
			break;
		}
		train_hasher_str(h, names[i]);
		rc = hash_file(h, full, err);
		free(full);
	}
	train_strv_free(names, n);
	return rc;
}

train_fp train_hasher_digest(const train_hasher *h)
{
	XXH128_hash_t d = XXH3_128bits_digest(h->state);
	return (train_fp){ .hi = d.high64, .lo = d.low64 };
}

train_fp train_fp_of(const void *data, size_t size)
{
	XXH128_hash_t d = XXH3_128bits(data, size);
	return (train_fp){ .hi = d.high64, .lo = d.low64 };
}

char *train_fp_hex(train_fp fp, char buf[TRAIN_FP_HEX])
{
	snprintf(buf, TRAIN_FP_HEX, "%016llx%016llx", (unsigned long long)fp.hi,
	         (unsigned long long)fp.lo);
	return buf;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int train_fp_parse(const char *hex, train_fp *out)
{
	uint64_t part[2] = { 0, 0 };
	for (int i = 0; i < 32; i++) {
		int v = hex[i] ? hexval(hex[i]) : -1;
		if (v < 0)
			return TRAIN_EINVAL;
		part[i / 16] = (part[i / 16] << 4) | (uint64_t)v;
	}
	if (hex[32])
		return TRAIN_EINVAL;
	out->hi = part[0];
	out->lo = part[1];
	return TRAIN_OK;
}
