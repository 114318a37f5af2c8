/*
 * <train/resource.h> - where a component keeps its trained state.
 *
 * persist() gets an empty folder and writes files into it; load() gets the
 * same files back (from the output cache or a model archive).  The host
 * owns the folder: a component never learns or stores where it is, only
 * names files inside it.  Names are relative, made of [A-Za-z0-9._-/],
 * without "..", and may contain sub-folders ("layers/0.safetensors").
 *
 * Files are written under a temporary name and renamed, so a crash never
 * leaves half a file.
 */
#ifndef TRAIN_RESOURCE_H
#define TRAIN_RESOURCE_H

#include <train/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct train_resource train_resource;

/** The folder, for components that write with their own I/O (e.g. a library
 * that wants a path).  Valid until persist()/load() returns. */
TRAIN_API const char *train_resource_dir(const train_resource *r);
/** Write `name` atomically.  Errors: TRAIN_EINVAL (bad name), TRAIN_EIO. */
TRAIN_API int train_resource_write(train_resource *r, const char *name, const void *data, size_t size);
/**
 * Read `name` into a malloc'd buffer (free() it), NUL-terminated for
 * convenience (the NUL is not counted in `*size`).
 * Errors: TRAIN_EINVAL (bad name), TRAIN_ENOTFOUND, TRAIN_EIO, TRAIN_ENOMEM.
 */
TRAIN_API int train_resource_read(const train_resource *r, const char *name, void **data, size_t *size);

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_RESOURCE_H */
