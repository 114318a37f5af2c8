/*
 * safetensors.c - the safetensors file format: writer and checked reader
 * (see the safetensors part of <train/optim.h> for the contract).
 *
 * The format (https://github.com/huggingface/safetensors):
 *
 *   0      u64 little-endian N, the header length
 *   8      N bytes of UTF-8 JSON: one object mapping each tensor name to
 *          {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
 *          plus an optional "__metadata__" object of string -> string;
 *          it may end with spaces
 *   8+N    the data area; offsets are relative to its start, tensors are
 *          row-major little-endian and cover it without holes or overlap
 *
 * Writer.  The header is written by hand with keys in a fixed order
 * (metadata first, then the tensors in data order; dtype, shape,
 * data_offsets within each), so the same tensors always give the same
 * bytes.  It is padded with spaces to a multiple of 8, and tensors are laid
 * out by element size, largest first (stable otherwise), so every tensor
 * starts on a multiple of its element size in the file.  The whole file is
 * built in memory and written with train_write_file_atomic (temporary name,
 * fsync, rename): a crash never leaves half a file under the real name.
 *
 * Reader.  The file is mapped read-only and nothing in it is trusted: the
 * header length is checked against the file size and a 100 MB limit, the
 * JSON (parsed by jansson: valid UTF-8, no duplicate keys, no NUL in
 * strings) must be an object, every entry must have exactly the three keys
 * with a dtype libtrain knows, a shape of at most 4 non-negative integers
 * whose byte count (computed with overflow checks) equals end - begin, and
 * offsets inside the data area; sorted by offset, the entries must tile the
 * data area exactly (no overlap, no hole, nothing after the last), as the
 * reference implementation requires.  A tensor whose bytes are not aligned
 * to its element size in memory (a header length that is not a multiple of
 * 8, from another writer) is copied into an aligned buffer owned by the
 * handle, so views can always be read through a typed pointer.
 *
 * Left out: big-endian hosts (refused at build time), dtypes libtrain has
 * no train_dtype for (F64, I8, I16, U16, U32, U64, BOOL, F8_*: refused with
 * TRAIN_EUNSUPPORTED), streaming writes of files larger than memory.
 */
#include <train/optim.h>

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

#define ST_HEADER_MAX ((uint64_t)100000000) /* the reference reader's limit */
#define ST_META_KEY "__metadata__"

/* Dtype strings of the format that libtrain cannot represent. */
static const char *const st_other_dtypes[] = {
	"F64", "I8", "I16", "U16", "U32", "U64", "BOOL", "F8_E4M3", "F8_E5M2", NULL,
};

static const train_dtype st_dtypes[] = {
	TRAIN_F32, TRAIN_BF16, TRAIN_F16, TRAIN_I64, TRAIN_I32, TRAIN_U8,
};

static int dtype_of_name(const char *s, train_dtype *out)
{
	for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++) {
		if (strcmp(s, train_dtype_name(st_dtypes[i])) == 0) {
			*out = st_dtypes[i];
			return 1;
		}
	}
	return 0;
}

/* 1 if s[0..n) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static int utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		size_t len;
		uint32_t cp, min;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			len = 2, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (n - i < len)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

/* ---- writer ---------------------------------------------------------------- */

/* A JSON string: quotes, backslash and control characters escaped. */
static int json_str(train_buf *b, const char *s)
{
	int rc = train_buf_add(b, "\"", 1);
	for (const char *p = s; !rc && *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"' || c == '\\')
			rc = train_buf_printf(b, "\\%c", c);
		else if (c < 0x20)
			rc = train_buf_printf(b, "\\u%04x", c);
		else
			rc = train_buf_add(b, p, 1);
	}
	return rc ? rc : train_buf_add(b, "\"", 1);
}

static int check_string(const char *s, const char *what, const char *path, train_error *err)
{
	if (!s)
		return train_error_set(err, TRAIN_EINVAL, path, 0, 0, "%s is NULL", what);
	if (!utf8_valid((const unsigned char *)s, strlen(s)))
		return train_error_set(err, TRAIN_EINVAL, path, 0, 0, "%s is not valid UTF-8", what);
	return TRAIN_OK;
}

/* Check the caller's tensors and metadata before anything is written. */
static int check_write_args(const char *path, const train_named_tensor *tensors, size_t n,
                            const char *const *meta, train_error *err)
{
	int rc;
	if (n && !tensors)
		return train_error_set(err, TRAIN_EINVAL, path, 0, 0, "no tensors given");
	for (size_t i = 0; i < n; i++) {
		const train_named_tensor *nt = &tensors[i];
		if ((rc = check_string(nt->name, "a tensor name", path, err)))
			return rc;
		if (!*nt->name || strcmp(nt->name, ST_META_KEY) == 0)
			return train_error_set(err, TRAIN_EINVAL, path, 0, 0, "bad tensor name \"%s\"",
			                       nt->name);
		const train_tensor *t = &nt->t;
		if (train_dtype_size(t->dtype) == 0 || t->ndim < 0 || t->ndim > TRAIN_MAX_DIMS)
			return train_error_set(err, TRAIN_EINVAL, path, 0, 0,
			                       "tensor \"%s\": bad dtype or ndim", nt->name);
		uint64_t bytes = train_dtype_size(t->dtype);
		for (int d = 0; d < t->ndim; d++) {
			if (t->shape[d] < 0)
				return train_error_set(err, TRAIN_EINVAL, path, 0, 0,
				                       "tensor \"%s\": negative dimension", nt->name);
			if (t->shape[d] && bytes > (uint64_t)(SIZE_MAX / 2) / (uint64_t)t->shape[d])
				return train_error_set(err, TRAIN_ENOMEM, path, 0, 0,
				                       "tensor \"%s\" is too large", nt->name);
			bytes *= (uint64_t)t->shape[d];
		}
		if (bytes && !t->data)
			return train_error_set(err, TRAIN_EINVAL, path, 0, 0, "tensor \"%s\" has no data",
			                       nt->name);
		for (size_t j = 0; j < i; j++)
			if (strcmp(tensors[j].name, nt->name) == 0)
				return train_error_set(err, TRAIN_EINVAL, path, 0, 0,
				                       "tensor \"%s\" is given twice", nt->name);
	}
	for (size_t i = 0; meta && meta[i]; i += 2) {
		if ((rc = check_string(meta[i], "a metadata key", path, err)))
			return rc;
		if (!meta[i + 1])
			return train_error_set(err, TRAIN_EINVAL, path, 0, 0,
			                       "metadata key \"%s\" has no value", meta[i]);
		if ((rc = check_string(meta[i + 1], "a metadata value", path, err)))
			return rc;
		for (size_t j = 0; j < i; j += 2)
			if (strcmp(meta[j], meta[i]) == 0)
				return train_error_set(err, TRAIN_EINVAL, path, 0, 0,
				                       "metadata key \"%s\" is given twice", meta[i]);
	}
	return TRAIN_OK;
}

int train_safetensors_write(const char *path, const train_named_tensor *tensors, size_t n,
                            const char *const *meta, train_error *err)
{
	int rc;
	train_buf hdr = { 0 };
	size_t *order = NULL;
	unsigned char *file = NULL;
	if (!path)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "no path given");
	if ((rc = check_write_args(path, tensors, n, meta, err)))
		return rc;

	/* Data order: element size 8, 4, 2, 1; the caller's order within a size.
	 * check_write_args bounded every tensor to SIZE_MAX / 2 bytes. */
	size_t total = 0;
	if (!(order = malloc((n ? n : 1) * sizeof *order)))
		goto nomem;
	size_t k = 0;
	for (size_t sz = 8; sz >= 1; sz /= 2) {
		for (size_t i = 0; i < n; i++) {
			if (train_dtype_size(tensors[i].t.dtype) != sz)
				continue;
			order[k++] = i;
			size_t bytes = train_tensor_nbytes(&tensors[i].t);
			if (bytes > SIZE_MAX / 2 - total) {
				rc = train_error_set(err, TRAIN_ENOMEM, path, 0, 0,
				                     "the tensors are too large");
				goto out;
			}
			total += bytes;
		}
	}

	rc = train_buf_add(&hdr, "{", 1);
	int first = 1;
	if (!rc && meta && meta[0]) {
		rc = json_str(&hdr, ST_META_KEY);
		rc = rc ? rc : train_buf_add(&hdr, ":{", 2);
		for (size_t i = 0; !rc && meta[i]; i += 2) {
			rc = i ? train_buf_add(&hdr, ",", 1) : 0;
			rc = rc ? rc : json_str(&hdr, meta[i]);
			rc = rc ? rc : train_buf_add(&hdr, ":", 1);
			rc = rc ? rc : json_str(&hdr, meta[i + 1]);
		}
		rc = rc ? rc : train_buf_add(&hdr, "}", 1);
		first = 0;
	}
	size_t offset = 0;
	for (size_t j = 0; !rc && j < n; j++) {
		const train_named_tensor *nt = &tensors[order[j]];
		size_t bytes = train_tensor_nbytes(&nt->t);
		rc = first ? 0 : train_buf_add(&hdr, ",", 1);
		first = 0;
		rc = rc ? rc : json_str(&hdr, nt->name);
		rc = rc ? rc : train_buf_printf(&hdr, ":{\"dtype\":\"%s\",\"shape\":[",
		                                train_dtype_name(nt->t.dtype));
		for (int d = 0; !rc && d < nt->t.ndim; d++)
			rc = train_buf_printf(&hdr, d ? ",%lld" : "%lld", (long long)nt->t.shape[d]);
		rc = rc ? rc : train_buf_printf(&hdr, "],\"data_offsets\":[%zu,%zu]}", offset,
		                                offset + bytes);
		offset += bytes;
	}
	rc = rc ? rc : train_buf_add(&hdr, "}", 1);
	while (!rc && hdr.len % 8)
		rc = train_buf_add(&hdr, " ", 1);
	if (rc)
		goto nomem; /* the buffer calls fail only for memory */

	/* The file: length, header, data. */
	if (total > SIZE_MAX - 8 - hdr.len || !(file = malloc(8 + hdr.len + total)))
		goto nomem;
	train_put_u64(file, hdr.len);
	memcpy(file + 8, hdr.data, hdr.len);
	size_t len = 8 + hdr.len;
	for (size_t j = 0; j < n; j++) {
		const train_tensor *t = &tensors[order[j]].t;
		size_t bytes = train_tensor_nbytes(t);
		if (bytes)
			memcpy(file + len, t->data, bytes);
		len += bytes;
	}
	rc = train_write_file_atomic(path, file, len, err);
	goto out;
nomem:
	rc = train_error_set(err, TRAIN_ENOMEM, path, 0, 0, "out of memory");
out:
	free(order);
	free(file);
	train_buf_free(&hdr);
	return rc;
}

/* ---- reader ---------------------------------------------------------------- */

typedef struct st_entry {
	char *name;
	train_tensor t;      /* data points into the map, or to `copy` */
	uint64_t begin, end; /* offsets in the data area */
	void *copy;          /* aligned copy when the mapped bytes are misaligned */
} st_entry;

struct train_safetensors {
	void *map;
	size_t map_size;
	st_entry *entries;   /* in data order */
	size_t count;
	const st_entry **by_name; /* the entries sorted by name, for lookups */
	char **meta;         /* key, value, key, value... */
	size_t nmeta;
};

void train_safetensors_close(train_safetensors *f)
{
	if (!f)
		return;
	for (size_t i = 0; i < f->count; i++) {
		free(f->entries[i].name);
		free(f->entries[i].copy);
	}
	free(f->entries);
	free(f->by_name);
	for (size_t i = 0; i < 2 * f->nmeta; i++)
		free(f->meta[i]);
	free(f->meta);
	if (f->map)
		munmap(f->map, f->map_size);
	free(f);
}

size_t train_safetensors_count(const train_safetensors *f)
{
	return f ? f->count : 0;
}

const char *train_safetensors_name_at(const train_safetensors *f, size_t i)
{
	return f && i < f->count ? f->entries[i].name : NULL;
}

static int cmp_by_name(const void *a, const void *b)
{
	const st_entry *const *x = a, *const *y = b;
	return strcmp((*x)->name, (*y)->name);
}

static int cmp_by_offset(const void *a, const void *b)
{
	const st_entry *x = a, *y = b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return strcmp(x->name, y->name);
}

int train_safetensors_get(const train_safetensors *f, const char *name, train_tensor *out)
{
	if (!f || !name)
		return TRAIN_EINVAL;
	size_t lo = 0, hi = f->count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const st_entry *e = f->by_name[mid];
		int c = strcmp(name, e->name);
		if (c == 0) {
			if (out)
				*out = e->t;
			return TRAIN_OK;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return TRAIN_ENOTFOUND;
}

const char *train_safetensors_meta(const train_safetensors *f, const char *key)
{
	if (!f || !key)
		return NULL;
	for (size_t i = 0; i < f->nmeta; i++)
		if (strcmp(f->meta[2 * i], key) == 0)
			return f->meta[2 * i + 1];
	return NULL;
}

#define CORRUPT(...) train_error_set(err, TRAIN_ECORRUPT, path, 0, 0, __VA_ARGS__)

/* A non-negative JSON integer, or -1. */
static int64_t json_uint(const json_t *v)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	return (int64_t)json_integer_value(v);
}

static int parse_meta(train_safetensors *f, json_t *obj, const char *path, train_error *err)
{
	if (!json_is_object(obj))
		return CORRUPT("\"%s\" is not an object", ST_META_KEY);
	size_t n = json_object_size(obj);
	if (!(f->meta = calloc(2 * n + 1, sizeof *f->meta)))
		return train_error_set(err, TRAIN_ENOMEM, path, 0, 0, "out of memory");
	const char *key;
	json_t *val;
	json_object_foreach(obj, key, val) {
		if (!json_is_string(val))
			return CORRUPT("metadata value of \"%.64s\" is not a string", key);
		char **kv = &f->meta[2 * f->nmeta];
		if (!(kv[0] = strdup(key)) || !(kv[1] = strdup(json_string_value(val)))) {
			free(kv[0]);
			kv[0] = NULL;
			return train_error_set(err, TRAIN_ENOMEM, path, 0, 0, "out of memory");
		}
		f->nmeta++;
	}
	return TRAIN_OK;
}

static int parse_entry(st_entry *e, const char *name, json_t *obj, uint64_t data_size,
                       const char *path, train_error *err)
{
	if (!json_is_object(obj))
		return CORRUPT("tensor \"%.64s\": entry is not an object", name);
	const char *key;
	json_t *val;
	json_object_foreach(obj, key, val) {
		if (strcmp(key, "dtype") && strcmp(key, "shape") && strcmp(key, "data_offsets"))
			return CORRUPT("tensor \"%.64s\": unknown key \"%.64s\"", name, key);
	}
	json_t *dtype = json_object_get(obj, "dtype");
	json_t *shape = json_object_get(obj, "shape");
	json_t *offs = json_object_get(obj, "data_offsets");
	if (!dtype || !shape || !offs)
		return CORRUPT("tensor \"%.64s\": missing \"%s\"", name,
		               !dtype ? "dtype" : !shape ? "shape" : "data_offsets");

	if (!json_is_string(dtype))
		return CORRUPT("tensor \"%.64s\": dtype is not a string", name);
	const char *ds = json_string_value(dtype);
	if (!dtype_of_name(ds, &e->t.dtype)) {
		for (const char *const *o = st_other_dtypes; *o; o++)
			if (strcmp(ds, *o) == 0)
				return train_error_set(err, TRAIN_EUNSUPPORTED, path, 0, 0,
				                       "tensor \"%.64s\": dtype %s is not supported by libtrain",
				                       name, ds);
		return CORRUPT("tensor \"%.64s\": unknown dtype \"%.40s\"", name, ds);
	}

	if (!json_is_array(shape))
		return CORRUPT("tensor \"%.64s\": shape is not an array", name);
	size_t nd = json_array_size(shape);
	if (nd > TRAIN_MAX_DIMS)
		return train_error_set(err, TRAIN_EUNSUPPORTED, path, 0, 0,
		                       "tensor \"%.64s\": %zu dimensions (libtrain has at most %d)", name,
		                       nd, TRAIN_MAX_DIMS);
	e->t.ndim = (int)nd;
	uint64_t bytes = train_dtype_size(e->t.dtype);
	int overflow = 0, empty = 0;
	for (size_t d = 0; d < TRAIN_MAX_DIMS; d++) {
		if (d >= nd) {
			e->t.shape[d] = 1;
			continue;
		}
		int64_t dim = json_uint(json_array_get(shape, d));
		if (dim < 0)
			return CORRUPT("tensor \"%.64s\": dimension %zu is not a non-negative integer", name,
			               d);
		e->t.shape[d] = dim;
		if (dim == 0)
			empty = 1;
		else if (bytes > UINT64_MAX / (uint64_t)dim)
			overflow = 1;
		else
			bytes *= (uint64_t)dim;
	}
	if (empty)
		bytes = 0; /* a 0 dim anywhere: no elements, even if the others overflow */
	else if (overflow || bytes > SIZE_MAX)
		return CORRUPT("tensor \"%.64s\": the shape's byte count overflows", name);

	if (!json_is_array(offs) || json_array_size(offs) != 2)
		return CORRUPT("tensor \"%.64s\": data_offsets is not an array of two integers", name);
	int64_t b = json_uint(json_array_get(offs, 0)), en = json_uint(json_array_get(offs, 1));
	if (b < 0 || en < 0)
		return CORRUPT("tensor \"%.64s\": data_offsets are not non-negative integers", name);
	if (b > en)
		return CORRUPT("tensor \"%.64s\": data_offsets [%lld, %lld] end before they begin", name,
		               (long long)b, (long long)en);
	if ((uint64_t)en > data_size)
		return CORRUPT("tensor \"%.64s\": data_offsets [%lld, %lld] past the end of the data "
		               "(%llu bytes)",
		               name, (long long)b, (long long)en, (unsigned long long)data_size);
	if ((uint64_t)(en - b) != bytes)
		return CORRUPT("tensor \"%.64s\": %s shape needs %llu bytes, data_offsets span %llu", name,
		               ds, (unsigned long long)bytes, (unsigned long long)(en - b));
	e->begin = (uint64_t)b;
	e->end = (uint64_t)en;
	return TRAIN_OK;
}

int train_safetensors_open(const char *path, train_safetensors **out, train_error *err)
{
	int rc = TRAIN_OK, fd = -1;
	json_t *root = NULL;
	train_safetensors *f = NULL;
	if (out)
		*out = NULL;
	if (!path || !out)
		return train_error_set(err, TRAIN_EINVAL, path, 0, 0, "no path given");

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		rc = train_error_set(err, -errno, path, 0, 0, "cannot open: %s", strerror(errno));
		goto out;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		rc = train_error_set(err, TRAIN_EIO, path, 0, 0, "cannot stat: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = train_error_set(err, TRAIN_EIO, path, 0, 0, "not a regular file");
		goto out;
	}
	uint64_t fsize = (uint64_t)st.st_size;
	if (fsize < 8) {
		rc = CORRUPT("file of %llu bytes is too short for a safetensors header",
		             (unsigned long long)fsize);
		goto out;
	}
	if (fsize > SIZE_MAX) {
		rc = train_error_set(err, TRAIN_ENOMEM, path, 0, 0, "too large to map");
		goto out;
	}
	if (!(f = calloc(1, sizeof *f)))
		goto nomem;
	f->map_size = (size_t)fsize;
	f->map = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (f->map == MAP_FAILED) {
		f->map = NULL;
		rc = train_error_set(err, TRAIN_EIO, path, 0, 0, "cannot map: %s", strerror(errno));
		goto out;
	}
	const unsigned char *base = f->map;

	/* The header. */
	uint64_t hlen = train_get_u64(base);
	if (hlen > ST_HEADER_MAX) {
		rc = CORRUPT("header length %llu is larger than the %llu-byte limit",
		             (unsigned long long)hlen, (unsigned long long)ST_HEADER_MAX);
		goto out;
	}
	if (hlen > fsize - 8) {
		rc = CORRUPT("header length %llu is past the end of the file (%llu bytes)",
		             (unsigned long long)hlen, (unsigned long long)fsize);
		goto out;
	}
	if (hlen < 2 || base[8] != '{') {
		rc = CORRUPT("header is not a JSON object");
		goto out;
	}
	json_error_t jerr;
	root = json_loadb((const char *)base + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		rc = CORRUPT("invalid JSON header at byte %d: %s", jerr.position, jerr.text);
		goto out;
	}
	if (!json_is_object(root)) {
		rc = CORRUPT("header is not a JSON object");
		goto out;
	}
	uint64_t data_start = 8 + hlen, data_size = fsize - data_start;

	/* The entries. */
	size_t n = json_object_size(root);
	if (!(f->entries = calloc(n ? n : 1, sizeof *f->entries)) ||
	    !(f->by_name = calloc(n ? n : 1, sizeof *f->by_name)))
		goto nomem;
	const char *key;
	json_t *val;
	json_object_foreach(root, key, val) {
		if (strcmp(key, ST_META_KEY) == 0) {
			if ((rc = parse_meta(f, val, path, err)))
				goto out;
			continue;
		}
		st_entry *e = &f->entries[f->count];
		if ((rc = parse_entry(e, key, val, data_size, path, err)))
			goto out;
		if (!(e->name = strdup(key)))
			goto nomem;
		f->count++;
	}

	/* In data order, the entries must tile the data area exactly. */
	qsort(f->entries, f->count, sizeof *f->entries, cmp_by_offset);
	uint64_t pos = 0;
	for (size_t i = 0; i < f->count; i++) {
		st_entry *e = &f->entries[i];
		if (e->begin < pos) {
			rc = CORRUPT("tensor \"%.64s\" (data_offsets [%llu, %llu]) overlaps tensor \"%.64s\"",
			             e->name, (unsigned long long)e->begin, (unsigned long long)e->end,
			             f->entries[i - 1].name);
			goto out;
		}
		if (e->begin > pos) {
			rc = CORRUPT("data bytes %llu..%llu belong to no tensor",
			             (unsigned long long)pos, (unsigned long long)e->begin);
			goto out;
		}
		pos = e->end;
	}
	if (pos != data_size) {
		rc = CORRUPT("data bytes %llu..%llu after the last tensor belong to no tensor",
		             (unsigned long long)pos, (unsigned long long)data_size);
		goto out;
	}

	/* Views into the map, or aligned copies. */
	for (size_t i = 0; i < f->count; i++) {
		st_entry *e = &f->entries[i];
		const unsigned char *p = base + data_start + e->begin;
		size_t bytes = (size_t)(e->end - e->begin);
		if ((uintptr_t)p % train_dtype_size(e->t.dtype) == 0) {
			e->t.data = (void *)p;
			continue;
		}
		if (!(e->copy = malloc(bytes)))
			goto nomem;
		memcpy(e->copy, p, bytes);
		e->t.data = e->copy;
	}
	for (size_t i = 0; i < f->count; i++)
		f->by_name[i] = &f->entries[i];
	qsort(f->by_name, f->count, sizeof *f->by_name, cmp_by_name);
	*out = f;
	f = NULL;
	goto out;
nomem:
	rc = train_error_set(err, TRAIN_ENOMEM, path, 0, 0, "out of memory");
out:
	/* Names and JSON excerpts come from the file: keep the message one line. */
	for (char *c = err && rc ? err->text : NULL; c && *c; c++)
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	if (fd >= 0)
		close(fd);
	json_decref(root);
	train_safetensors_close(f);
	return rc;
}
