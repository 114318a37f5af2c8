/*
 * plugins/common/hf.h - file helpers of the plugins that read and write
 * Hugging Face folders (bert, gpt2): a whole file, a file written under a
 * temporary name and renamed, and a stored tensor converted to fp32.
 * Private to the first-party plugins; compiled into each that needs it.
 * Errors fill `err` (may be NULL) with the file and what.
 */
#ifndef PLUGINS_HF_H
#define PLUGINS_HF_H

#include <train/common.h>
#include <train/tensor.h>

/* The whole file, NUL-terminated (*len bytes without the NUL).  Errors:
 * -errno (cannot open), TRAIN_EIO, TRAIN_ENOMEM. */
int hf_read_file(const char *path, char **out, size_t *len, train_error *err);
/* Write dir/name: a temporary name in dir, flushed and synced, renamed. */
int hf_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                    train_error *err);
/* Convert a stored F32, F16 or BF16 tensor into numel floats at dst;
 * another dtype is TRAIN_EUNSUPPORTED naming `file` and `name`. */
int hf_tensor_f32(const train_tensor *t, float *dst, const char *file, const char *name,
                  train_error *err);

#endif
