/*
 * libtrain/ctx_private.h - the context handed to component calls, and
 * the resource folder (private).
 */
#ifndef TRAIN_CTX_PRIVATE_H
#define TRAIN_CTX_PRIVATE_H

#include <train/train.h>
#include "util.h"

struct train_ctx {
	const char *node;
	const train_log_sink *log;
	int threads;
	int finetuning;
	double epoch_fraction;
	const char *base_dir;
	const char *data_path;
	const char *domain_path;
	const volatile int *cancel;
	int verbose_progress;           /* print progress lines */
	char fail[TRAIN_ERROR_TEXT];    /* set by train_fail() */
};

/* A context for node `node` from run settings. */
void train_ctx_init(train_ctx *ctx, const char *node, const train_log_sink *log, int threads,
                    const char *base_dir);

struct train_resource {
	char *dir;
};

/* Resolve a path the way train_ctx_resolve() does, without a ctx. */
char *train_resolve_path(const char *path, const char *base_dir, const char *data_path,
                         const char *domain_path);

#endif
