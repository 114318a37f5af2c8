/*
 * <train/value.h> - the values that flow between graph nodes.
 *
 * A value is an immutable, reference-counted byte string with a content
 * type ("text/plain", "application/json", "train/tensors+safetensors",
 * anything "vendor/name" a plugin defines).  Being bytes, any value can be
 * stored in the output cache and read back by a later run; its
 * fingerprint is the XXH3-128 of its type and bytes, computed once.
 *
 * A value set maps input or output names to values.  A component's train()
 * and process() receive their inputs as a const set, keyed by the input
 * names the class declares, and put their outputs into an empty set.
 *
 * Threads: values are immutable, so they may be read from any thread;
 * ref/unref are atomic.  A value set is not thread-safe.
 */
#ifndef TRAIN_VALUE_H
#define TRAIN_VALUE_H

#include <train/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct train_value train_value;
typedef struct train_values train_values;

/**
 * A new value holding a copy of `size` bytes at `data` (`data` may be NULL
 * when `size` is 0).  The caller owns the one reference.
 * Errors: TRAIN_EINVAL (type NULL or empty), TRAIN_ENOMEM.
 */
TRAIN_API int train_value_new(const char *type, const void *data, size_t size, train_value **out);
/**
 * As train_value_new(), but takes over `data`, which must come from
 * malloc(); it is freed with free() when the last reference goes, and
 * also if this call fails.
 */
TRAIN_API int train_value_new_take(const char *type, void *data, size_t size, train_value **out);
TRAIN_API train_value *train_value_ref(train_value *v);
/** Drop a reference; NULL is fine. */
TRAIN_API void train_value_unref(train_value *v);

TRAIN_API const char *train_value_type(const train_value *v);
TRAIN_API const void *train_value_data(const train_value *v);
TRAIN_API size_t train_value_size(const train_value *v);
TRAIN_API train_fp train_value_fp(const train_value *v);

TRAIN_API int train_values_create(train_values **out);
/** Drops the set's references.  NULL is fine. */
TRAIN_API void train_values_destroy(train_values *s);
/** The value under `name`, borrowed; NULL if none. */
TRAIN_API const train_value *train_values_get(const train_values *s, const char *name);
/**
 * Put `v` under `name`, taking over the caller's reference (also on
 * failure).  Replaces (and unrefs) an existing value of that name.
 */
TRAIN_API int train_values_put_take(train_values *s, const char *name, train_value *v);
/** Convenience: train_value_new() then train_values_put_take(). */
TRAIN_API int train_values_put_bytes(train_values *s, const char *name, const char *type,
                                     const void *data, size_t size);
TRAIN_API size_t train_values_len(const train_values *s);
/** Name and value of entry `i` (insertion order); NULL if out of range. */
TRAIN_API const char *train_values_name_at(const train_values *s, size_t i);
TRAIN_API const train_value *train_values_at(const train_values *s, size_t i);

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_VALUE_H */
