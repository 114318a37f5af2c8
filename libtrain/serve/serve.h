/*
 * libtrain/serve/serve.h - `train serve`: the training-job HTTP API (private
 * to the program).  serve.c holds the HTTP side (routing, tokens, audit
 * log, body cap), jobs.c the job store (LMDB), validation and the child
 * processes, page.c the web page.
 */
#ifndef TRAIN_SERVE_H
#define TRAIN_SERVE_H

#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct serve_options {
	const char *listen;      /* ADDR:PORT; port 0 picks a free one */
	const char *state_dir;   /* tokens, jobs.lmdb, audit.jsonl, jobs/ */
	const char *data_dir;    /* data sets, named by id */
	const char *models_dir;  /* models, named by id */
	const char *plugin_path; /* passed to each job's `train` */
	const char *exe;         /* the `train` program that runs jobs */
	int max_jobs;            /* jobs running at once */
	int job_threads;         /* --threads of each job (0: train's default) */
	size_t max_body;         /* request body cap in bytes */
} serve_options;

/* ---- jobs.c ---------------------------------------------------------------- */

typedef struct serve_jobs serve_jobs;

/* A problem with a request: HTTP status, message, and per-field errors. */
typedef struct serve_fail {
	int status;
	char msg[1024];
	json_t *errors; /* array of {"field", "message"}, or NULL */
} serve_fail;

int serve_jobs_open(const serve_options *opt, serve_jobs **out, char *why, size_t why_len);
/* Start the thread that runs, watches and reaps jobs. */
int serve_jobs_start(serve_jobs *js);
/* Stop: running jobs get SIGTERM and become `interrupted`; then close. */
void serve_jobs_close(serve_jobs *js);

/* Each returns a new reference to the answer's JSON, or NULL with *f set. */
json_t *serve_jobs_create(serve_jobs *js, const char *mode, json_t *body, serve_fail *f);
json_t *serve_jobs_start_job(serve_jobs *js, const char *id, serve_fail *f);
json_t *serve_jobs_cancel(serve_jobs *js, const char *id, serve_fail *f);
json_t *serve_jobs_get(serve_jobs *js, const char *id, serve_fail *f);
json_t *serve_jobs_curve(serve_jobs *js, const char *id, serve_fail *f);
json_t *serve_jobs_list(serve_jobs *js, const char *status, serve_fail *f);
json_t *serve_jobs_trainable(serve_jobs *js);
/* A job id's shape: "job-" and digits. */
int serve_job_id_ok(const char *id);

/* ---- compat.c -------------------------------------------------------------- */

/* POST /api/training/compatibility/check: train check's report for the body
 * ({"model": ID, "training_type": ..., ...}), or NULL with *f set (400 with
 * per-field errors, 422 for a model that cannot be read). */
json_t *serve_compat_check(const serve_options *opt, json_t *body, serve_fail *f);

/* ---- serve.c --------------------------------------------------------------- */

/* Run until SIGINT/SIGTERM; 0 or an exit status. */
int serve_run(const serve_options *opt);

/* ---- page.c ---------------------------------------------------------------- */

extern const char serve_page_html[];

#endif
