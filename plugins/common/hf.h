/*
 * plugins/common/hf.h - file helpers of the plugins that read and write
 * Hugging Face folders (bert, gpt2): a whole file, a file written under a
 * temporary name and renamed, a stored tensor converted to fp32, and the
 * layout of a model's parameters in one block with its safetensors file.
 * Private to the first-party plugins; compiled into each that needs it.
 * Errors fill `err` (may be NULL) with the file and what.
 */
#ifndef PLUGINS_HF_H
#define PLUGINS_HF_H

#include <stddef.h>
#include <stdint.h>

#include <train/common.h>
#include <train/optim.h>
#include <train/tensor.h>

/* The whole file, NUL-terminated (*len bytes without the NUL).  Errors:
 * -errno (cannot open), TRAIN_EIO, TRAIN_ENOMEM. */
int hf_read_file(const char *path, char **out, size_t *len, train_error *err);
/* Write dir/name: a temporary name in dir, flushed and synced, renamed. */
int hf_write_atomic(const char *dir, const char *name, const void *data, size_t len,
                    train_error *err);
/* Write dir/name: the JSON value (a jansson json_t *), indented by 2, keys in
 * their order, and a final newline, through hf_write_atomic. */
int hf_write_json(const char *dir, const char *name, const void *json, train_error *err);
/* Convert a stored F32, F16 or BF16 tensor into numel floats at dst;
 * another dtype is TRAIN_EUNSUPPORTED naming `file` and `name`. */
int hf_tensor_f32(const train_tensor *t, float *dst, const char *file, const char *name,
                  train_error *err);

/* One parameter tensor of a model whose parameters live in one block. */
typedef struct hf_param {
	char name[96];
	int ndim;
	int64_t shape[2];
	size_t offset;            /* in floats, into the block (params / grads) */
} hf_param;

/* Laying parameters out: each hf_lay() appends a tensor to *tensors
 * (*n of them; d1 0 is a vector) and remembers where its pointer goes
 * (dst, may be NULL); `off` is the block's size so far, in floats.  Once
 * the block is allocated, hf_lay_point() sets every pointer into it.
 * hf_lay_free() frees the layout's own memory (not the tensors). */
typedef struct hf_layout {
	hf_param **tensors;
	size_t *n;
	float ***dst;
	size_t cap, off;
} hf_layout;
int hf_lay(hf_layout *l, float **dst, const char *name, int64_t d0, int64_t d1);
void hf_lay_point(const hf_layout *l, float *params);
void hf_lay_free(hf_layout *l);
/* The tensor named `name` among t[0..n), or NULL. */
const hf_param *hf_param_find(const hf_param *t, size_t n, const char *name);

/* `params` (laid out by `t`, n tensors) as an fp32 safetensors file, each
 * name after `prefix` (may be ""). */
int hf_params_write(const char *path, const hf_param *t, size_t n, const float *params,
                    const char *prefix, train_error *err);

/* A PEFT LoRA adapter folder: adapter_config.json read and checked
 * (peft_type "LORA" if given, r a positive integer, lora_alpha a number,
 * lora_dropout a number in [0, 1) if given) and adapter_model.safetensors
 * opened.  hf_peft_close() closes it (also after an error). */
typedef struct hf_peft {
	char config_path[4096], path[4096]; /* the two files */
	int r;
	double alpha, dropout;
	train_safetensors *st;
} hf_peft;
int hf_peft_open(hf_peft *p, const char *dir, train_error *err);
void hf_peft_close(hf_peft *p);
/* The adapter's tensor `name`, of shape (d0, d1), as fp32 at dst:
 * TRAIN_ENOTFOUND when it is missing, TRAIN_EMISMATCH for another shape. */
int hf_peft_tensor(const hf_peft *p, const char *name, int64_t d0, int64_t d1, float *dst,
                   train_error *err);
/* Which of n projections the adapter has: bit k set when tensor
 * `<prefix><names[k]>.lora_A.weight` is in it (prefix: the first layer's,
 * e.g. "base_model.model.transformer.h.0."). */
unsigned hf_peft_kinds(const hf_peft *p, const char *prefix, const char *const *names, int n);

#endif
