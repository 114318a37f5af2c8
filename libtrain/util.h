/*
 * libtrain/util.h - private helpers: files, folders, strings, time.
 * Not part of the SDK.  All return TRAIN_OK or a negative code.
 */
#ifndef TRAIN_UTIL_H
#define TRAIN_UTIL_H

#include <train/common.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>

/* Read a whole file into a malloc'd, NUL-terminated buffer (size excludes the NUL). */
int train_read_file(const char *path, char **data, size_t *size, train_error *err);
/* Write a file atomically: write "<path>.tmp-<pid>-<n>", fsync, rename. */
int train_write_file_atomic(const char *path, const void *data, size_t size, train_error *err);
/* The same, with the fsync only when `sync` (a scratch file needs none). */
int train_write_file(const char *path, const void *data, size_t size, bool sync, train_error *err);
/* mkdir -p (mode 0755). */
int train_mkdirs(const char *path, train_error *err);
/* rm -rf; a missing path is fine. */
int train_rmtree(const char *path);
/* Make a fresh folder "<parent>/<prefix>XXXXXX"; malloc'd path to *out. */
int train_mkdtemp(const char *parent, const char *prefix, char **out, train_error *err);
/* The system temporary folder ($TMPDIR or /tmp). */
const char *train_tmpdir(void);
/* 1 if the path exists (any type). */
bool train_path_exists(const char *path);
bool train_is_dir(const char *path);
/* Folder part of a path ("a/b.yml" -> "a", "b.yml" -> "."), malloc'd. */
char *train_dirname(const char *path);
/* Join two path parts with one '/', malloc'd. */
char *train_path_join(const char *a, const char *b);
/* strdup that accepts NULL. */
char *train_strdup(const char *s);
/* asprintf into a malloc'd string, NULL on failure. */
char *train_strfmt(const char *fmt, ...) TRAIN_PRINTF(1, 2);
/* Seconds from a monotonic clock. */
double train_now(void);
/* A relative name is safe inside a folder: not empty, not absolute, no ".."
 * or "." component, no empty component, only [A-Za-z0-9._-/+@]. */
bool train_safe_relname(const char *name);
/* Sorted (bytewise) list of the regular files under `dir`, as names relative
 * to it ("a", "sub/b"); symlinks are not followed.  Free with train_strv_free. */
int train_list_files(const char *dir, char ***names, size_t *count, train_error *err);
void train_strv_free(char **v, size_t n);

/* train_config_parse()/train_config_load() with extensions the Rasa readers
 * take (config.c): TRAIN_CFG_PARSE_ALIASES anchors, aliases (copies) and
 * "<<" merge keys; TRAIN_CFG_PARSE_ENV ${VAR} in plain scalars as Rasa. */
#define TRAIN_CFG_PARSE_ALIASES 1u
#define TRAIN_CFG_PARSE_ENV 2u
#define TRAIN_CFG_PARSE_RASA (TRAIN_CFG_PARSE_ALIASES | TRAIN_CFG_PARSE_ENV)
struct train_config;
int train_config_parse_flags(const char *text, size_t size, const char *name, unsigned flags,
                             struct train_config **out, train_error *err);
int train_config_load_flags(const char *path, unsigned flags, struct train_config **out,
                            train_error *err);

/* A growable byte buffer. */
typedef struct train_buf {
	char *data;
	size_t len, cap;
} train_buf;
int train_buf_add(train_buf *b, const void *data, size_t size);
int train_buf_str(train_buf *b, const char *s);          /* without the NUL */
int train_buf_printf(train_buf *b, const char *fmt, ...) TRAIN_PRINTF(2, 3);
void train_buf_free(train_buf *b);

/* Little-endian integer encoding, for cache records and fingerprints. */
static inline void train_put_u32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline void train_put_u64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint32_t train_get_u32(const unsigned char *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
	return v;
}
static inline uint64_t train_get_u64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
	return v;
}

/* Log through a sink (NULL: stderr with a "train: " prefix). */
void train_logf(const train_log_sink *lg, train_log_level level, const char *fmt, ...) TRAIN_PRINTF(3, 4);
void train_vlogf(const train_log_sink *lg, train_log_level level, const char *fmt, va_list ap)
	TRAIN_PRINTF(3, 0);

#endif
