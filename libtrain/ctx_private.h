/*
 * libtrain/ctx_private.h - the context handed to component calls, and
 * the resource folder (private).
 */
#ifndef TRAIN_CTX_PRIVATE_H
#define TRAIN_CTX_PRIVATE_H

#include <pthread.h>
#include <stdio.h>

#include <train/train.h>
#include "util.h"

/* The run's JSON Lines progress stream (train_run_options.progress_path). */
typedef struct train_progress_sink {
	FILE *f;
	pthread_mutex_t mu;
	double t0;
} train_progress_sink;

/* Write one line: {"t": ..., then `body` (the rest of the object, without
 * the braces' opening).  No-op when `s` or its file is NULL. */
void train_progress_emit(train_progress_sink *s, const char *fmt, ...) TRAIN_PRINTF(2, 3);
/* Append `str` as a JSON string (quotes and escapes) to buf[cap] at *len. */
void train_json_str(char *buf, size_t cap, size_t *len, const char *str);

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
	train_progress_sink *progress;  /* the run's progress stream, or NULL */
	const train_registry *reg;      /* for train_ctx_find_env (NULL: none) */
	const char *checkpoint_dir;     /* train_ctx_checkpoint_dir (NULL: none) */
	int resume;                     /* train_ctx_resuming */
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
