/*
 * test_safetensors.c - the safetensors writer and reader: round trips, a
 * reference file written by an independent writer
 * (tests/fixtures/make_safetensors_fixture.py), and damaged files that must
 * be refused with TRAIN_ECORRUPT and a message saying what is wrong.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <train/optim.h>

#include "testlib.h"
#include "util.h"

/* Write a raw file: 8-byte length `hlen` (the header's own length when
 * UINT64_MAX), the header text, then `ndata` bytes 0, 1, 2... */
static char *raw_file(const char *name, uint64_t hlen, const char *header, size_t ndata)
{
	static const char *dir;
	if (!dir)
		dir = test_tmpdir();
	char *path = train_path_join(dir, name);
	size_t hl = strlen(header);
	unsigned char *buf = malloc(8 + hl + ndata + 1);
	if (!path || !buf)
		abort();
	train_put_u64(buf, hlen == UINT64_MAX ? hl : hlen);
	memcpy(buf + 8, header, hl);
	for (size_t i = 0; i < ndata; i++)
		buf[8 + hl + i] = (unsigned char)i;
	if (train_write_file_atomic(path, buf, 8 + hl + ndata, NULL) != 0)
		abort();
	free(buf);
	return path;
}

/* ---- round trip ------------------------------------------------------------ */

static void test_round_trip(void)
{
	const char *dir = test_tmpdir();
	char *path = train_path_join(dir, "model.safetensors");
	float w[6] = { 1.0f, -2.5f, 3.25f, 0.0f, -0.0f, 1e-30f };
	uint16_t h[5];
	float hsrc[5] = { 1.0f, 0.5f, -3.0f, 65536.0f, 1.0f / 3.0f };
	train_f32_to_bf16_n(h, hsrc, 5);
	int64_t ids[4] = { INT64_MIN, -1, 0, INT64_MAX };
	uint8_t bytes[3] = { 0, 128, 255 };
	float scalar = 42.0f;
	/* A 2-byte tensor with an odd count first: the writer puts the 8-byte
	 * one first so that every tensor stays aligned. */
	const train_named_tensor ts[] = {
		{ "h.bf16", { TRAIN_BF16, 1, { 5, 1, 1, 1 }, h } },
		{ "w", { TRAIN_F32, 2, { 2, 3, 1, 1 }, w } },
		{ "ids", { TRAIN_I64, 2, { 2, 2, 1, 1 }, ids } },
		{ "bytes", { TRAIN_U8, 1, { 3, 1, 1, 1 }, bytes } },
		{ "scalar", { TRAIN_F32, 0, { 1, 1, 1, 1 }, &scalar } },
		{ "nothing", { TRAIN_F32, 2, { 0, 7, 1, 1 }, NULL } },
		{ "named \"odd\"\n\xc3\xa9", { TRAIN_U8, 1, { 1, 1, 1, 1 }, bytes } },
	};
	const char *meta[] = { "format", "pt", "step", "1200", "quote\"d", "line\nbreak", NULL };
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_safetensors_write(path, ts, 7, meta, &err), 0);

	train_safetensors *f;
	CU_ASSERT_EQUAL_FATAL(train_safetensors_open(path, &f, &err), 0);
	CU_ASSERT_EQUAL(train_safetensors_count(f), 7);
	/* name_at is in data order: 8-byte elements, then 4, 2, 1. */
	CU_ASSERT_STRING_EQUAL(train_safetensors_name_at(f, 0), "ids");
	CU_ASSERT_PTR_NULL(train_safetensors_name_at(f, 7));
	for (size_t i = 0; i < 7; i++) {
		train_tensor t;
		const char *name = train_safetensors_name_at(f, i);
		CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f, name, &t), 0);
		CU_ASSERT_EQUAL((uintptr_t)t.data % train_dtype_size(t.dtype), 0);
	}
	train_tensor t;
	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f, "w", &t), 0);
	CU_ASSERT_EQUAL(t.dtype, TRAIN_F32);
	CU_ASSERT_EQUAL(t.ndim, 2);
	CU_ASSERT(t.shape[0] == 2 && t.shape[1] == 3 && t.shape[2] == 1 && t.shape[3] == 1);
	CU_ASSERT_EQUAL(memcmp(t.data, w, sizeof w), 0);
	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f, "h.bf16", &t), 0);
	CU_ASSERT_EQUAL(t.dtype, TRAIN_BF16);
	CU_ASSERT_EQUAL(train_tensor_numel(&t), 5);
	CU_ASSERT_EQUAL(memcmp(t.data, h, sizeof h), 0);
	CU_ASSERT_EQUAL(train_bf16_to_f32(((uint16_t *)t.data)[3]), 65536.0f);
	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f, "ids", &t), 0);
	CU_ASSERT_EQUAL(t.dtype, TRAIN_I64);
	CU_ASSERT_EQUAL(memcmp(t.data, ids, sizeof ids), 0);
	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f, "bytes", &t), 0);
	CU_ASSERT_EQUAL(memcmp(t.data, bytes, 3), 0);
	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f, "scalar", &t), 0);
	CU_ASSERT_EQUAL(t.ndim, 0);
	CU_ASSERT_EQUAL(*(float *)t.data, 42.0f);
	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f, "nothing", &t), 0);
	CU_ASSERT_EQUAL(train_tensor_numel(&t), 0);
	CU_ASSERT_EQUAL(t.shape[1], 7);
	CU_ASSERT_EQUAL(train_safetensors_get(f, "named \"odd\"\n\xc3\xa9", &t), 0);
	CU_ASSERT_EQUAL(train_safetensors_get(f, "missing", &t), TRAIN_ENOTFOUND);
	CU_ASSERT_STRING_EQUAL(train_safetensors_meta(f, "format"), "pt");
	CU_ASSERT_STRING_EQUAL(train_safetensors_meta(f, "step"), "1200");
	CU_ASSERT_STRING_EQUAL(train_safetensors_meta(f, "quote\"d"), "line\nbreak");
	CU_ASSERT_PTR_NULL(train_safetensors_meta(f, "missing"));
	train_safetensors_close(f);
	train_safetensors_close(NULL);

	/* The header is padded to a multiple of 8, and the data area starts on 8. */
	char *data;
	size_t size;
	CU_ASSERT_EQUAL_FATAL(train_read_file(path, &data, &size, NULL), 0);
	uint64_t hlen = train_get_u64((unsigned char *)data);
	CU_ASSERT_EQUAL(hlen % 8, 0);
	CU_ASSERT(hlen < size);
	free(data);
	free(path);
}

/* The exact bytes for a small case: fixed key order, padding with spaces. */
static void test_exact_bytes(void)
{
	char *path = train_path_join(test_tmpdir(), "small.safetensors");
	float a[2] = { 1.0f, 2.0f };
	const train_named_tensor ts[] = { { "a", { TRAIN_F32, 1, { 2, 1, 1, 1 }, a } } };
	const char *meta[] = { "k", "v", NULL };
	CU_ASSERT_EQUAL_FATAL(train_safetensors_write(path, ts, 1, meta, NULL), 0);
	char *data;
	size_t size;
	CU_ASSERT_EQUAL_FATAL(train_read_file(path, &data, &size, NULL), 0);
	const char want[] = "{\"__metadata__\":{\"k\":\"v\"},"
	                    "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
	size_t wl = strlen(want), padded = (wl + 7) / 8 * 8;
	CU_ASSERT_EQUAL_FATAL(size, 8 + padded + 8);
	CU_ASSERT_EQUAL(train_get_u64((unsigned char *)data), padded);
	CU_ASSERT_EQUAL(memcmp(data + 8, want, wl), 0);
	for (size_t i = wl; i < padded; i++)
		CU_ASSERT_EQUAL(data[8 + i], ' ');
	CU_ASSERT_EQUAL(memcmp(data + 8 + padded, a, 8), 0);
	free(data);

	/* No tensors, no metadata: "{}" and 6 spaces. */
	CU_ASSERT_EQUAL_FATAL(train_safetensors_write(path, NULL, 0, NULL, NULL), 0);
	CU_ASSERT_EQUAL_FATAL(train_read_file(path, &data, &size, NULL), 0);
	CU_ASSERT_EQUAL(size, 16);
	CU_ASSERT_EQUAL(memcmp(data + 8, "{}      ", 8), 0);
	free(data);
	train_safetensors *f;
	CU_ASSERT_EQUAL_FATAL(train_safetensors_open(path, &f, NULL), 0);
	CU_ASSERT_EQUAL(train_safetensors_count(f), 0);
	train_safetensors_close(f);
	free(path);
}

/* ---- the independent reference file ---------------------------------------- */

static void test_reference(void)
{
	const char *top = getenv("top_srcdir");
	char path[1024];
	snprintf(path, sizeof path, "%s/tests/fixtures/reference.safetensors", top ? top : ".");
	train_safetensors *f;
	train_error err = { 0 };
	int rc = train_safetensors_open(path, &f, &err);
	if (rc)
		fprintf(stderr, "%s: %s\n", err.file, err.text);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL(train_safetensors_count(f), 7);
	/* Data order is the order the Python script lists them. */
	static const char *const order[] = { "weight", "bias.bf16", "ids", "half",
	                                     "count", "mask", "empty" };
	for (size_t i = 0; i < 7; i++)
		CU_ASSERT_STRING_EQUAL(train_safetensors_name_at(f, i), order[i]);

	train_tensor t;
	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f, "weight", &t), 0);
	CU_ASSERT(t.dtype == TRAIN_F32 && t.ndim == 2 && t.shape[0] == 2 && t.shape[1] == 3);
	const float *w = t.data;
	CU_ASSERT_EQUAL(w[0], 1.5f);
	CU_ASSERT_EQUAL(w[1], -2.25f);
	CU_ASSERT_EQUAL(w[2], 0.0f);
	CU_ASSERT_EQUAL(w[3], 3e-5f);
	CU_ASSERT_EQUAL(w[4], -1e10f);
	CU_ASSERT_EQUAL(w[5], 7.0f);

	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f, "bias.bf16", &t), 0);
	CU_ASSERT(t.dtype == TRAIN_BF16 && t.ndim == 1 && t.shape[0] == 4);
	const uint16_t *b = t.data;
	CU_ASSERT_EQUAL(train_bf16_to_f32(b[0]), 1.0f);
	CU_ASSERT_EQUAL(train_bf16_to_f32(b[1]), -2.0f);
	CU_ASSERT(isinf(train_bf16_to_f32(b[2])) && train_bf16_to_f32(b[2]) > 0);
	CU_ASSERT_EQUAL(train_bf16_to_f32(b[3]), 0.25f);

	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f, "ids", &t), 0);
	CU_ASSERT(t.dtype == TRAIN_I64 && t.ndim == 1 && t.shape[0] == 3);
	const int64_t *ids = t.data;
	CU_ASSERT_EQUAL(ids[0], -1);
	CU_ASSERT_EQUAL(ids[1], 0);
	CU_ASSERT_EQUAL(ids[2], ((int64_t)1 << 40) + 3);

	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f, "half", &t), 0);
	CU_ASSERT(t.dtype == TRAIN_F16 && t.ndim == 1 && t.shape[0] == 2);
	const uint16_t *hf = t.data;
	CU_ASSERT_EQUAL(hf[0], 0x3800); /* 0.5 in IEEE half */
	CU_ASSERT_EQUAL(hf[1], 0xfbff); /* -65504 */

	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f, "count", &t), 0);
	CU_ASSERT(t.dtype == TRAIN_I32 && t.ndim == 0 && train_tensor_numel(&t) == 1);
	CU_ASSERT_EQUAL(*(const int32_t *)t.data, 123456789);

	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f, "mask", &t), 0);
	CU_ASSERT(t.dtype == TRAIN_U8 && t.ndim == 2 && t.shape[0] == 2 && t.shape[1] == 2);
	const uint8_t *m = t.data;
	CU_ASSERT(m[0] == 0 && m[1] == 1 && m[2] == 254 && m[3] == 255);

	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f, "empty", &t), 0);
	CU_ASSERT(t.dtype == TRAIN_F32 && t.ndim == 2 && t.shape[0] == 0 && t.shape[1] == 4);
	CU_ASSERT_EQUAL(train_tensor_nbytes(&t), 0);

	CU_ASSERT_STRING_EQUAL(train_safetensors_meta(f, "format"), "pt");
	CU_ASSERT_STRING_EQUAL(train_safetensors_meta(f, "note"), "caf\xc3\xa9 \"quoted\"");
	train_safetensors_close(f);
}

/* A header length that is not a multiple of 8 (the format allows it):
 * tensors that end up misaligned in memory are copied, values intact. */
static void test_misaligned(void)
{
	float v[3] = { 1.25f, -8.0f, 1e20f };
	const char *hdr = "{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}";
	CU_ASSERT(strlen(hdr) % 4 != 0);
	char *path = train_path_join(test_tmpdir(), "odd.safetensors");
	size_t hl = strlen(hdr);
	unsigned char buf[256];
	train_put_u64(buf, hl);
	memcpy(buf + 8, hdr, hl);
	memcpy(buf + 8 + hl, v, sizeof v);
	CU_ASSERT_EQUAL_FATAL(train_write_file_atomic(path, buf, 8 + hl + sizeof v, NULL), 0);
	train_safetensors *f;
	CU_ASSERT_EQUAL_FATAL(train_safetensors_open(path, &f, NULL), 0);
	train_tensor t;
	CU_ASSERT_EQUAL_FATAL(train_safetensors_get(f, "x", &t), 0);
	CU_ASSERT_EQUAL((uintptr_t)t.data % 4, 0);
	CU_ASSERT_EQUAL(memcmp(t.data, v, sizeof v), 0);
	train_safetensors_close(f);
	free(path);
}

/* ---- refused files --------------------------------------------------------- */

#define E(dtype, shape, b, e) \
	"{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static const struct bad_case {
	const char *name;
	uint64_t hlen;     /* UINT64_MAX: the header's length */
	const char *header;
	size_t ndata;
	int code;
	const char *says;  /* a part of the message */
} bad_cases[] = {
	{ "short file", UINT64_MAX, "", 0, TRAIN_ECORRUPT, "too short" },
	{ "header past end", 1000, "{}", 0, TRAIN_ECORRUPT, "past the end of the file" },
	{ "huge header length", (uint64_t)1 << 62, "{}", 0, TRAIN_ECORRUPT, "limit" },
	{ "huge header length 2", UINT64_MAX - 1, "{}", 0, TRAIN_ECORRUPT, "limit" },
	{ "header just over limit", 100000001, "{}", 0, TRAIN_ECORRUPT, "limit" },
	{ "garbage JSON", UINT64_MAX, "{not json", 0, TRAIN_ECORRUPT, "invalid JSON" },
	{ "empty header", UINT64_MAX, "", 8, TRAIN_ECORRUPT, "not a JSON object" },
	{ "not an object", UINT64_MAX, "[1,2]", 0, TRAIN_ECORRUPT, "not a JSON object" },
	{ "trailing garbage", UINT64_MAX, "{} x", 0, TRAIN_ECORRUPT, "invalid JSON" },
	{ "invalid UTF-8", UINT64_MAX, "{\"\xff\xfe\":" E("U8", "[1]", 0, 1) "}", 1,
	  TRAIN_ECORRUPT, "invalid JSON" },
	{ "duplicate names", UINT64_MAX, "{\"a\":" E("U8", "[1]", 0, 1) ",\"a\":" E("U8", "[1]", 1, 2) "}",
	  2, TRAIN_ECORRUPT, "invalid JSON" },
	{ "truncated data", UINT64_MAX, "{\"a\":" E("F32", "[2,3]", 0, 24) "}", 20, TRAIN_ECORRUPT,
	  "past the end of the data (20 bytes)" },
	{ "offsets out of range", UINT64_MAX, "{\"a\":" E("U8", "[4]", 2400, 2404) "}", 8,
	  TRAIN_ECORRUPT, "past the end of the data" },
	{ "offsets reversed", UINT64_MAX, "{\"a\":" E("U8", "[0]", 4, 2) "}", 8, TRAIN_ECORRUPT,
	  "end before they begin" },
	{ "negative offset", UINT64_MAX, "{\"a\":" E("U8", "[0]", -4, -4) "}", 8, TRAIN_ECORRUPT,
	  "non-negative" },
	{ "offsets not a pair", UINT64_MAX,
	  "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", 1, TRAIN_ECORRUPT,
	  "two integers" },
	{ "dtype/shape vs bytes", UINT64_MAX, "{\"a\":" E("F32", "[2,3]", 0, 20) "}", 20,
	  TRAIN_ECORRUPT, "needs 24 bytes, data_offsets span 20" },
	{ "bf16 vs bytes", UINT64_MAX, "{\"a\":" E("BF16", "[4]", 0, 16) "}", 16, TRAIN_ECORRUPT,
	  "needs 8 bytes" },
	{ "overlapping", UINT64_MAX, "{\"a\":" E("U8", "[16]", 0, 16) ",\"b\":" E("U8", "[16]", 8, 24) "}",
	  24, TRAIN_ECORRUPT, "overlaps" },
	{ "same offsets", UINT64_MAX, "{\"a\":" E("U8", "[8]", 0, 8) ",\"b\":" E("U8", "[8]", 0, 8) "}", 8,
	  TRAIN_ECORRUPT, "overlaps" },
	{ "hole", UINT64_MAX, "{\"a\":" E("U8", "[4]", 0, 4) ",\"b\":" E("U8", "[4]", 8, 12) "}", 12,
	  TRAIN_ECORRUPT, "belong to no tensor" },
	{ "bytes after the last", UINT64_MAX, "{\"a\":" E("U8", "[4]", 0, 4) "}", 12, TRAIN_ECORRUPT,
	  "after the last tensor" },
	{ "unknown dtype", UINT64_MAX, "{\"a\":" E("F33", "[1]", 0, 4) "}", 4, TRAIN_ECORRUPT,
	  "unknown dtype \"F33\"" },
	{ "dtype not a string", UINT64_MAX,
	  "{\"a\":{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, TRAIN_ECORRUPT,
	  "dtype is not a string" },
	{ "negative dim", UINT64_MAX, "{\"a\":" E("U8", "[-1,3]", 0, 0) "}", 0, TRAIN_ECORRUPT,
	  "dimension 0 is not a non-negative integer" },
	{ "fractional dim", UINT64_MAX, "{\"a\":" E("U8", "[2.5]", 0, 2) "}", 2, TRAIN_ECORRUPT,
	  "dimension 0" },
	{ "shape not an array", UINT64_MAX, "{\"a\":" E("U8", "3", 0, 3) "}", 3, TRAIN_ECORRUPT,
	  "shape is not an array" },
	{ "shape overflow", UINT64_MAX,
	  "{\"a\":" E("F32", "[4294967296,4294967296,4294967296]", 0, 0) "}", 0, TRAIN_ECORRUPT,
	  "overflows" },
	{ "shape wraps to 0", UINT64_MAX, "{\"a\":" E("U8", "[4294967296,4294967296]", 0, 0) "}", 0,
	  TRAIN_ECORRUPT, "overflows" },
	{ "huge integer", UINT64_MAX, "{\"a\":" E("U8", "[99999999999999999999]", 0, 0) "}", 0,
	  TRAIN_ECORRUPT, "invalid JSON" },
	{ "missing key", UINT64_MAX, "{\"a\":{\"dtype\":\"U8\",\"shape\":[1]}}", 0, TRAIN_ECORRUPT,
	  "missing \"data_offsets\"" },
	{ "unknown key", UINT64_MAX,
	  "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":1}}", 1,
	  TRAIN_ECORRUPT, "unknown key \"x\"" },
	{ "entry not an object", UINT64_MAX, "{\"a\":[1]}", 0, TRAIN_ECORRUPT, "not an object" },
	{ "metadata not strings", UINT64_MAX, "{\"__metadata__\":{\"k\":1}}", 0, TRAIN_ECORRUPT,
	  "not a string" },
	{ "metadata not an object", UINT64_MAX, "{\"__metadata__\":\"x\"}", 0, TRAIN_ECORRUPT,
	  "not an object" },
	{ "NUL in a name", UINT64_MAX, "{\"a\\u0000b\":" E("U8", "[1]", 0, 1) "}", 1,
	  TRAIN_ECORRUPT, "invalid JSON" },
	/* Valid safetensors that libtrain cannot represent. */
	{ "F64", UINT64_MAX, "{\"a\":" E("F64", "[1]", 0, 8) "}", 8, TRAIN_EUNSUPPORTED,
	  "dtype F64 is not supported" },
	{ "5 dims", UINT64_MAX, "{\"a\":" E("U8", "[1,1,1,1,1]", 0, 1) "}", 1, TRAIN_EUNSUPPORTED,
	  "5 dimensions" },
};

static void test_refused(void)
{
	int n = (int)(sizeof bad_cases / sizeof bad_cases[0]);
	for (int i = 0; i < n; i++) {
		const struct bad_case *c = &bad_cases[i];
		char name[32];
		snprintf(name, sizeof name, "bad%d.safetensors", i);
		char *path;
		if (strcmp(c->name, "short file") == 0) {
			path = train_path_join(test_tmpdir(), name);
			CU_ASSERT_EQUAL_FATAL(train_write_file_atomic(path, "\x02\0\0", 3, NULL), 0);
		} else {
			path = raw_file(name, c->hlen, c->header, c->ndata);
		}
		train_safetensors *f = (train_safetensors *)&f; /* must be cleared */
		train_error err = { 0 };
		int rc = train_safetensors_open(path, &f, &err);
		int ok = rc == c->code && f == NULL && strcmp(err.file, path) == 0 &&
		         strstr(err.text, c->says) != NULL;
		if (!ok || getenv("SHOW_MESSAGES"))
			fprintf(stderr, "case \"%s\": rc %d, message \"%s\"\n", c->name, rc, err.text);
		CU_ASSERT(ok);
		if (rc == 0)
			train_safetensors_close(f);
		free(path);
	}

	/* Not a file. */
	train_safetensors *f;
	train_error err = { 0 };
	CU_ASSERT_EQUAL(train_safetensors_open(test_tmpdir(), &f, &err), TRAIN_EIO);
	char *missing = train_path_join(test_tmpdir(), "missing.safetensors");
	CU_ASSERT_EQUAL(train_safetensors_open(missing, &f, &err), -ENOENT);
	CU_ASSERT_STRING_EQUAL(err.file, missing);
	free(missing);
}

/* Every truncation of a good file is refused cleanly (never a crash). */
static void test_truncations(void)
{
	char *path = train_path_join(test_tmpdir(), "whole.safetensors");
	float a[3] = { 1, 2, 3 };
	int64_t b[2] = { 4, 5 };
	const train_named_tensor ts[] = {
		{ "a", { TRAIN_F32, 1, { 3, 1, 1, 1 }, a } },
		{ "b", { TRAIN_I64, 1, { 2, 1, 1, 1 }, b } },
	};
	const char *meta[] = { "k", "v", NULL };
	CU_ASSERT_EQUAL_FATAL(train_safetensors_write(path, ts, 2, meta, NULL), 0);
	char *data;
	size_t size;
	CU_ASSERT_EQUAL_FATAL(train_read_file(path, &data, &size, NULL), 0);
	char *cut = train_path_join(test_tmpdir(), "cut.safetensors");
	int refused = 0;
	for (size_t len = 0; len < size; len++) {
		CU_ASSERT_EQUAL_FATAL(train_write_file_atomic(cut, data, len, NULL), 0);
		train_safetensors *f;
		int rc = train_safetensors_open(cut, &f, NULL);
		refused += rc == TRAIN_ECORRUPT;
		if (rc == 0)
			train_safetensors_close(f);
	}
	CU_ASSERT_EQUAL(refused, (int)size);
	/* Every single-byte change of the header: refused or still sane. */
	uint64_t hlen = train_get_u64((unsigned char *)data);
	for (size_t i = 0; i < 8 + hlen; i++) {
		char saved = data[i];
		data[i] = (char)(saved ^ 0x5a);
		CU_ASSERT_EQUAL_FATAL(train_write_file_atomic(cut, data, size, NULL), 0);
		train_safetensors *f;
		int rc = train_safetensors_open(cut, &f, NULL);
		if (rc == 0) {
			for (size_t k = 0; k < train_safetensors_count(f); k++) {
				train_tensor t;
				CU_ASSERT_EQUAL(
				    train_safetensors_get(f, train_safetensors_name_at(f, k), &t), 0);
				CU_ASSERT(train_tensor_nbytes(&t) <= size);
			}
			train_safetensors_close(f);
		} else {
			CU_ASSERT(rc == TRAIN_ECORRUPT || rc == TRAIN_EUNSUPPORTED);
		}
		data[i] = saved;
	}
	free(data);
	free(cut);
	free(path);
}

static void test_write_errors(void)
{
	char *path = train_path_join(test_tmpdir(), "w.safetensors");
	float a[2] = { 1, 2 };
	train_error err = { 0 };
	train_named_tensor ts[2] = {
		{ "a", { TRAIN_F32, 1, { 2, 1, 1, 1 }, a } },
		{ "a", { TRAIN_F32, 1, { 2, 1, 1, 1 }, a } },
	};
	CU_ASSERT_EQUAL(train_safetensors_write(path, ts, 2, NULL, &err), TRAIN_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "given twice"));
	ts[1].name = "__metadata__";
	CU_ASSERT_EQUAL(train_safetensors_write(path, ts, 2, NULL, &err), TRAIN_EINVAL);
	ts[1].name = "";
	CU_ASSERT_EQUAL(train_safetensors_write(path, ts, 2, NULL, &err), TRAIN_EINVAL);
	ts[1].name = "bad\xff";
	CU_ASSERT_EQUAL(train_safetensors_write(path, ts, 2, NULL, &err), TRAIN_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "UTF-8"));
	ts[1].name = "b";
	ts[1].t.data = NULL;
	CU_ASSERT_EQUAL(train_safetensors_write(path, ts, 2, NULL, &err), TRAIN_EINVAL);
	ts[1].t.data = a;
	ts[1].t.shape[0] = -2;
	CU_ASSERT_EQUAL(train_safetensors_write(path, ts, 2, NULL, &err), TRAIN_EINVAL);
	ts[1].t.shape[0] = 2;
	ts[1].t.ndim = 5;
	CU_ASSERT_EQUAL(train_safetensors_write(path, ts, 2, NULL, &err), TRAIN_EINVAL);
	ts[1].t.ndim = 1;
	const char *odd_meta[] = { "k", NULL };
	const char *dup_meta[] = { "k", "1", "k", "2", NULL };
	CU_ASSERT_EQUAL(train_safetensors_write(path, ts, 2, odd_meta, &err), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_safetensors_write(path, ts, 2, dup_meta, &err), TRAIN_EINVAL);
	CU_ASSERT(!train_path_exists(path)); /* nothing written so far */
	char *nodir = train_path_join(test_tmpdir(), "no/such/dir.safetensors");
	CU_ASSERT_EQUAL(train_safetensors_write(nodir, ts, 2, NULL, &err), -ENOENT);
	CU_ASSERT_STRING_EQUAL(err.file, nodir);
	free(nodir);
	CU_ASSERT_EQUAL(train_safetensors_write(path, ts, 2, NULL, &err), 0);
	free(path);
}

int main(void)
{
	static const test_case cases[] = {
		{ "round_trip", test_round_trip },
		{ "exact_bytes", test_exact_bytes },
		{ "reference", test_reference },
		{ "misaligned", test_misaligned },
		{ "refused", test_refused },
		{ "truncations", test_truncations },
		{ "write_errors", test_write_errors },
		{ NULL, NULL },
	};
	return test_main("safetensors", cases);
}
