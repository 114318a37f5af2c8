/*
 * <train/common.h> - export macro, error codes, error reports, fingerprints.
 *
 * Every libtrain call that can fail returns int: 0 (TRAIN_OK) on success or
 * a negative TRAIN_E* code.  train_strerror() maps a code to text.  Calls
 * that can explain a failure take an optional `train_error *err` (may be
 * NULL) owned by the caller; it holds the code, a location (file:line:col,
 * when the error comes from a file) and a fixed message buffer, so that
 * reporting never allocates.
 */
#ifndef TRAIN_COMMON_H
#define TRAIN_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && defined(TRAIN_BUILDING_LIBRARY)
#define TRAIN_API __attribute__((visibility("default")))
#else
#define TRAIN_API
#endif

#if defined(__GNUC__)
#define TRAIN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TRAIN_PRINTF(f, a)
#endif

/** @defgroup errors Return codes
 * 0 is success; errors are negative, in the reserved range -30999..-30900
 * so that they never collide with -errno values, which libtrain may also
 * return (for example -ENOENT from a file it could not open).
 * @{ */
#define TRAIN_OK            0
#define TRAIN_EINVAL   (-30900) /**< bad argument or bad input data */
#define TRAIN_ENOMEM   (-30901) /**< out of memory */
#define TRAIN_EIO      (-30902) /**< read or write failed */
#define TRAIN_EPARSE   (-30903) /**< a file could not be parsed (YAML, JSON, archive) */
#define TRAIN_ECONFIG  (-30904) /**< unknown or mistyped configuration key */
#define TRAIN_ENOTFOUND (-30905) /**< a named thing (component, node, file, key) does not exist */
#define TRAIN_EEXIST   (-30906) /**< a name is defined twice */
#define TRAIN_ECYCLE   (-30907) /**< the graph has a cycle */
#define TRAIN_EPLUGIN  (-30908) /**< a plugin was refused or failed */
#define TRAIN_EABI     (-30909) /**< incompatible ABI version */
#define TRAIN_ECACHE   (-30910) /**< the cache failed (LMDB error) */
#define TRAIN_ECORRUPT (-30911) /**< stored data failed its checks */
#define TRAIN_EUNSAFE  (-30912) /**< an archive member would escape its folder */
#define TRAIN_ECOMPONENT (-30913) /**< a component's own call failed */
#define TRAIN_ECANCELED (-30914) /**< the run was interrupted */
#define TRAIN_EMISMATCH (-30915) /**< two things that must agree do not (finetune) */
#define TRAIN_EUNSUPPORTED (-30916) /**< the operation is not supported */
/** @} */

/** Size of the message buffer in train_error. */
#define TRAIN_ERROR_TEXT 512

/**
 * An error report, owned by the caller.  `file` is empty when the error
 * has no location; `line` and `col` are 1-based and 0 when unknown.
 */
typedef struct train_error {
	int code;                      /**< the TRAIN_E* code, or -errno */
	char file[256];                /**< file the error is about, or "" */
	unsigned line, col;            /**< 1-based position in `file`, 0 if none */
	char text[TRAIN_ERROR_TEXT];   /**< what is wrong, one line, no newline */
} train_error;

/** Text for a return code (never NULL, static storage). */
TRAIN_API const char *train_strerror(int code);

/**
 * Fill `err` (if not NULL) and return `code`.  `file` may be NULL.
 * Meant for `return train_error_set(err, TRAIN_EINVAL, path, line, col, "...")`.
 */
TRAIN_API int train_error_set(train_error *err, int code, const char *file,
                              unsigned line, unsigned col, const char *fmt, ...)
	TRAIN_PRINTF(6, 7);

/**
 * Format `err` as one line: "file:line:col: text", "file: text" or "text".
 * Writes at most `size` bytes including the terminating NUL; returns `buf`.
 */
TRAIN_API char *train_error_format(const train_error *err, char *buf, size_t size);

/**
 * A 128-bit fingerprint (XXH3-128).  Printed as 32 lower-case hex digits,
 * high half first (the same text as XXH128_canonical_t in hex).
 */
typedef struct train_fp {
	uint64_t hi, lo;
} train_fp;

#define TRAIN_FP_HEX 33 /**< buffer size for the hex text, NUL included */

/** Write the 32-digit hex text of `fp` into `buf` (TRAIN_FP_HEX bytes). */
TRAIN_API char *train_fp_hex(train_fp fp, char buf[TRAIN_FP_HEX]);
/** Parse 32 hex digits; TRAIN_EINVAL if `hex` is not exactly that. */
TRAIN_API int train_fp_parse(const char *hex, train_fp *out);
/** 1 if equal. */
static inline int train_fp_eq(train_fp a, train_fp b) { return a.hi == b.hi && a.lo == b.lo; }

/**
 * Streaming XXH3-128 hasher.  Components receive one in their fingerprint
 * entry and add whatever besides their config and inputs decides their
 * output.  Integers are added in little-endian order so that a fingerprint
 * is the same on every machine.
 */
typedef struct train_hasher train_hasher;

TRAIN_API int train_hasher_create(train_hasher **out);
TRAIN_API void train_hasher_destroy(train_hasher *h);
TRAIN_API void train_hasher_reset(train_hasher *h);
TRAIN_API void train_hasher_update(train_hasher *h, const void *data, size_t size);
/** Add a NUL-terminated string, terminator included (so "ab","c" != "a","bc"). */
TRAIN_API void train_hasher_str(train_hasher *h, const char *s);
TRAIN_API void train_hasher_u64(train_hasher *h, uint64_t v);
TRAIN_API void train_hasher_fp(train_hasher *h, train_fp fp);
/**
 * Add the content of a file or, for a folder, of every regular file under
 * it (sorted relative names and contents; the folder's own path, times and
 * modes do not count).  Returns TRAIN_OK or an error with `err` filled.
 */
TRAIN_API int train_hasher_path(train_hasher *h, const char *path, train_error *err);
TRAIN_API train_fp train_hasher_digest(const train_hasher *h);

/** One-shot XXH3-128 of a buffer. */
TRAIN_API train_fp train_fp_of(const void *data, size_t size);

/** Levels of log lines. */
typedef enum train_log_level {
	TRAIN_LOG_ERROR = 0,
	TRAIN_LOG_WARN,
	TRAIN_LOG_INFO,
	TRAIN_LOG_DEBUG,
} train_log_level;

/**
 * Where host-side modules (cache, loader, runner) send their log lines.
 * `fn` gets one line without a newline; lines above `max_level` are not
 * sent.  A NULL sink means stderr with a "train: " prefix.
 */
typedef struct train_log_sink {
	void (*fn)(void *ud, train_log_level level, const char *msg);
	void *ud;
	train_log_level max_level;
} train_log_sink;

/** libtrain's version, "MAJOR.MINOR.PATCH". */
TRAIN_API const char *train_version(void);

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_COMMON_H */
