/*
 * jobs.c - the jobs of `train serve`: validation of a job's JSON, the job
 * records (LMDB under the state folder, one JSON value per job id), and the
 * supervisor thread that starts queued jobs as child processes
 * (`train --target T --config JOB/settings.yml --progress JOB/progress.jsonl
 * ...` in the job's folder), follows their progress stream and reaps them.
 *
 * A job's folder (STATE/jobs/ID) holds settings.yml (the client's settings
 * as JSON, which is YAML, with data set and model ids turned into paths),
 * train.log (the run's stdout and stderr), progress.jsonl, report.json,
 * cache/ (what a resumed run takes again: the node-level checkpoint) and
 * model/ (the trained model).
 *
 * States: created -> queued -> running -> succeeded | failed | canceled;
 * running -> interrupted when the server stops or dies; created, failed,
 * canceled and interrupted jobs can be started (again).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <train/check.h>

#include "serve.h"
#include "../cli/cli.h"

#define MAX_CURVE 20000 /* loss points kept per job */
#define LOG_TAIL 12     /* lines of train.log kept for a failed job */

typedef struct job {
	char id[32];
	json_t *rec;          /* the record, as stored and answered */
	pid_t pid;            /* running child, or 0 */
	int cancel_requested;
	double t_start;       /* monotonic seconds at start */
	double t_kill;        /* when SIGTERM was sent */
	long progress_off;    /* bytes of progress.jsonl read */
	char line[4096];      /* a partial progress line */
	size_t line_len;
	size_t nodes, nodes_done;
	size_t stage, stages; /* a pipeline's: the stage running (1-based), of how many */
	json_t *curve;        /* [[t, loss, node, step, total, lr or null], ...] */
	int dirty;            /* record changed since persisted */
	double persisted_at;
} job;

struct serve_jobs {
	const serve_options *opt;
	MDB_env *env;
	MDB_dbi dbi;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	job **jobs;
	size_t n, cap;
	unsigned long next_id;
	int stop;
	int thread_started;
	pthread_t thread;
};

static double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void iso_now(char *buf, size_t n)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void fail_set(serve_fail *f, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail_set(serve_fail *f, int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof f->msg, fmt, ap);
	va_end(ap);
	f->status = status;
}

static void field_error(json_t *errors, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void field_error(json_t *errors, const char *field, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_array_append_new(errors, json_pack("{s:s, s:s}", "field", field, "message", msg));
}

static char *job_dir(const serve_jobs *js, const char *id)
{
	char *p = NULL;
	if (asprintf(&p, "%s/jobs/%s", js->opt->state_dir, id) < 0)
		return NULL;
	return p;
}

static char *job_file(const serve_jobs *js, const char *id, const char *name)
{
	char *p = NULL;
	if (asprintf(&p, "%s/jobs/%s/%s", js->opt->state_dir, id, name) < 0)
		return NULL;
	return p;
}

int serve_job_id_ok(const char *id)
{
	if (strncmp(id, "job-", 4) != 0 || !id[4] || strlen(id) > 24)
		return 0;
	for (const char *p = id + 4; *p; p++)
		if (!isdigit((unsigned char)*p))
			return 0;
	return 1;
}

/* ---- the store ------------------------------------------------------------- */

static int persist(serve_jobs *js, job *j)
{
	char *text = json_dumps(j->rec, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (!text)
		return ENOMEM;
	MDB_txn *txn = NULL;
	MDB_val k = { strlen(j->id), j->id }, v = { strlen(text), text };
	int rc = mdb_txn_begin(js->env, NULL, 0, &txn);
	if (!rc)
		rc = mdb_put(txn, js->dbi, &k, &v, 0);
	if (!rc) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
	if (txn)
		mdb_txn_abort(txn);
	free(text);
	if (rc)
		fprintf(stderr, "train serve: cannot store job %s: %s\n", j->id, mdb_strerror(rc));
	j->dirty = rc != 0;
	j->persisted_at = now_mono();
	return rc;
}

static void set_status(job *j, const char *status)
{
	json_object_set_new(j->rec, "status", json_string(status));
	j->dirty = 1;
}

static const char *status_of(const job *j)
{
	const char *s = json_string_value(json_object_get(j->rec, "status"));
	return s ? s : "";
}

static job *find(serve_jobs *js, const char *id)
{
	for (size_t i = 0; i < js->n; i++)
		if (!strcmp(js->jobs[i]->id, id))
			return js->jobs[i];
	return NULL;
}

static int add_job(serve_jobs *js, job *j)
{
	if (js->n == js->cap) {
		size_t cap = js->cap ? js->cap * 2 : 16;
		job **p = realloc(js->jobs, cap * sizeof *p);
		if (!p)
			return ENOMEM;
		js->jobs = p;
		js->cap = cap;
	}
	js->jobs[js->n++] = j;
	return 0;
}

static void job_free(job *j)
{
	if (!j)
		return;
	json_decref(j->rec);
	json_decref(j->curve);
	free(j);
}

/* Read the loss curve of a job from its progress stream (after a restart). */
static void reset_progress(job *j)
{
	j->progress_off = 0;
	j->line_len = 0;
	j->nodes = j->nodes_done = 0;
	j->stage = j->stages = 0;
	json_decref(j->curve);
	j->curve = json_array();
}

static void read_progress(serve_jobs *js, job *j);

int serve_jobs_open(const serve_options *opt, serve_jobs **out, char *why, size_t why_len)
{
	serve_jobs *js = calloc(1, sizeof *js);
	char path[PATH_MAX];
	int rc;
	if (!js)
		return ENOMEM;
	js->opt = opt;
	pthread_mutex_init(&js->mu, NULL);
	pthread_cond_init(&js->cv, NULL);
	snprintf(path, sizeof path, "%s/jobs", opt->state_dir);
	if (mkdir(path, 0700) && errno != EEXIST) {
		snprintf(why, why_len, "%s: %s", path, strerror(errno));
		rc = errno;
		goto fail;
	}
	snprintf(path, sizeof path, "%s/jobs.lmdb", opt->state_dir);
	if (mkdir(path, 0700) && errno != EEXIST) {
		snprintf(why, why_len, "%s: %s", path, strerror(errno));
		rc = errno;
		goto fail;
	}
	MDB_txn *txn = NULL;
	if ((rc = mdb_env_create(&js->env)) || (rc = mdb_env_set_mapsize(js->env, 256u << 20)) ||
	    (rc = mdb_env_open(js->env, path, 0, 0600)) ||
	    (rc = mdb_txn_begin(js->env, NULL, 0, &txn)) ||
	    (rc = mdb_dbi_open(txn, NULL, 0, &js->dbi))) {
		snprintf(why, why_len, "%s: %s", path, mdb_strerror(rc));
		if (txn)
			mdb_txn_abort(txn);
		goto fail;
	}
	/* Load every record; a job that was running is interrupted now. */
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	if ((rc = mdb_cursor_open(txn, js->dbi, &cur))) {
		snprintf(why, why_len, "%s: %s", path, mdb_strerror(rc));
		mdb_txn_abort(txn);
		goto fail;
	}
	for (int op = MDB_FIRST; !mdb_cursor_get(cur, &k, &v, op); op = MDB_NEXT) {
		json_error_t jerr;
		json_t *rec = json_loadb(v.mv_data, v.mv_size, 0, &jerr);
		const char *id = json_string_value(json_object_get(rec, "id"));
		job *j = rec && id && serve_job_id_ok(id) ? calloc(1, sizeof *j) : NULL;
		if (!j) {
			fprintf(stderr, "train serve: %s: a damaged job record (%.*s) is left out\n", path,
			        (int)(k.mv_size < 40 ? k.mv_size : 40), (const char *)k.mv_data);
			json_decref(rec);
			continue;
		}
		snprintf(j->id, sizeof j->id, "%s", id);
		j->rec = rec;
		j->curve = json_array();
		unsigned long n = strtoul(id + 4, NULL, 10);
		if (n >= js->next_id)
			js->next_id = n + 1;
		const char *st = status_of(j);
		if (!strcmp(st, "running") || !strcmp(st, "canceling")) {
			set_status(j, "interrupted");
			json_object_set_new(j->rec, "error",
			                    json_string("the server stopped while the job ran; start it "
			                                "again to resume from its cache"));
		}
		if (add_job(js, j)) {
			job_free(j);
			rc = ENOMEM;
			break;
		}
	}
	mdb_cursor_close(cur);
	if ((rc = mdb_txn_commit(txn))) {
		snprintf(why, why_len, "%s: %s", path, mdb_strerror(rc));
		goto fail;
	}
	if (!js->next_id)
		js->next_id = 1;
	for (size_t i = 0; i < js->n; i++) {
		read_progress(js, js->jobs[i]);
		if (js->jobs[i]->dirty)
			persist(js, js->jobs[i]);
	}
	*out = js;
	return 0;
fail:
	if (js->env)
		mdb_env_close(js->env);
	free(js);
	return rc ? rc : EIO;
}

/* ---- validation ------------------------------------------------------------ */

/* An id of a data set or model: a name within its folder. */
static int good_id(const char *s)
{
	if (!*s || strlen(s) > 128 || strstr(s, "..") || s[0] == '.')
		return 0;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-' || *s == '.'))
			return 0;
	return 1;
}

static int good_key(const char *s)
{
	if (!*s || strlen(s) > 64)
		return 0;
	for (; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

typedef struct target_find {
	const char *name;
	int found;
} target_find;

static void target_cb(void *ud, const char *name, const char *path)
{
	(void)path;
	target_find *t = ud;
	if (!strcmp(t->name, name))
		t->found = 1;
}

/* A settings value: a scalar, a list of scalars, or {"dataset"|"model": ID}.
 * Replaces an id with its path in `v` (owned by the caller's copy). */
static json_t *check_value(serve_jobs *js, const char *field, json_t *v, json_t *errors)
{
	if (json_is_object(v)) {
		const char *kind = NULL, *id = NULL;
		json_t *x;
		if (json_object_size(v) == 1 && ((x = json_object_get(v, "dataset")) ||
		                                 (x = json_object_get(v, "model")))) {
			kind = json_object_get(v, "dataset") ? "dataset" : "model";
			id = json_string_value(x);
		}
		if (!kind) {
			field_error(errors, field, "an object here must be {\"dataset\": ID} or "
			            "{\"model\": ID}");
			return NULL;
		}
		if (!id) {
			field_error(errors, field, "the %s id must be a string", kind);
			return NULL;
		}
		if (!good_id(id)) {
			field_error(errors, field, "'%s' is not a %s id (letters, digits, '.', '_', '-'; "
			            "no '..', no '/')", id, kind);
			return NULL;
		}
		const char *dir = !strcmp(kind, "dataset") ? js->opt->data_dir : js->opt->models_dir;
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/%s", dir, id);
		if (access(path, R_OK) != 0) {
			field_error(errors, field, "no %s '%s' in the server's %s folder", kind, id,
			            !strcmp(kind, "dataset") ? "data set" : "models");
			return NULL;
		}
		char *real = realpath(path, NULL);
		json_t *r = json_string(real ? real : path);
		free(real);
		return r;
	}
	if (json_is_array(v)) {
		if (json_array_size(v) > 1024) {
			field_error(errors, field, "a list of at most 1024 values");
			return NULL;
		}
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) {
			if (json_is_object(e) || json_is_array(e)) {
				field_error(errors, field, "a list of plain values (strings, numbers, booleans)");
				return NULL;
			}
		}
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (strchr(s, '/') || strstr(s, "..") || s[0] == '~' || s[0] == '$') {
			field_error(errors, field, "paths are not taken from clients: name a data set as "
			            "{\"dataset\": ID} or a model as {\"model\": ID}");
			return NULL;
		}
		if (strlen(s) > 4096) {
			field_error(errors, field, "a string of at most 4096 bytes");
			return NULL;
		}
	}
	if (json_is_real(v) && !isfinite(json_real_value(v))) {
		field_error(errors, field, "a finite number");
		return NULL;
	}
	return json_incref(v);
}

/* Every field of `body` must be one of `keys`. */
static void check_fields(json_t *body, const char *mode, const char *const *keys, json_t *errors)
{
	const char *key;
	json_t *v;
	json_object_foreach(body, key, v) {
		int known = 0;
		for (size_t i = 0; keys[i]; i++)
			known |= !strcmp(keys[i], key);
		if (!known) {
			char list[256] = "";
			for (size_t i = 0; keys[i]; i++)
				snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
				         keys[i]);
			field_error(errors, key, "unknown field for a %s job; known: %s", mode, list);
		}
	}
}

/* The fields every job may have: "name", and in an advanced job "threads". */
static void check_name_threads(json_t *body, json_t *errors)
{
	json_t *name = json_object_get(body, "name");
	if (name && (!json_is_string(name) || strlen(json_string_value(name)) > 200))
		field_error(errors, "name", "must be a string of at most 200 bytes");
	json_t *th = json_object_get(body, "threads");
	if (th && (!json_is_integer(th) || json_integer_value(th) < 1 ||
	           json_integer_value(th) > 256))
		field_error(errors, "threads", "must be an integer from 1 to 256");
}

/* {"dataset": ID} or {"model": ID}: a reference, not a section. */
static int is_ref(json_t *v)
{
	return json_object_size(v) == 1 &&
	       (json_object_get(v, "dataset") || json_object_get(v, "model"));
}

/* The keys of `obj` (at `prefix` for messages), checked, into `out`.  At
 * `depth` 0 (a section's keys) an object that is not a reference is a
 * section of its own: a pipeline's settings have a section per stage, each
 * the settings of that stage's target (settings.STAGE.SECTION.KEY). */
static void check_keys(serve_jobs *js, const char *prefix, json_t *obj, json_t *out, int depth,
                       json_t *errors)
{
	const char *k;
	json_t *kv;
	json_object_foreach(obj, k, kv) {
		char field[160];
		snprintf(field, sizeof field, "%s.%.64s", prefix, k);
		if (!good_key(k)) {
			field_error(errors, field, "a key is letters, digits, '_' or '-'");
			continue;
		}
		if (depth == 0 && json_is_object(kv) && !is_ref(kv)) {
			json_t *osub = json_object();
			check_keys(js, field, kv, osub, depth + 1, errors);
			json_object_set_new(out, k, osub);
			continue;
		}
		json_t *ov = check_value(js, field, kv, errors);
		if (ov)
			json_object_set_new(out, k, ov);
	}
}

/* A job that fine-tunes a model of the models folder with `train finetune`:
 * {"model": ID, "dataset": ID, "type": T, "config": {the current tool's
 * keys}}; `train finetune`'s dry run then checks the keys against the mode.
 * The settings to write (the config), or NULL. */
static json_t *check_finetune(serve_jobs *js, const char *mode, json_t *body, json_t *errors)
{
	static const char *const basic_keys[] = { "model", "dataset", "type", "config", "name", NULL };
	static const char *const advanced_keys[] = { "model", "dataset", "type", "config", "name",
	                                             "threads", NULL };
	check_fields(body, mode, !strcmp(mode, "advanced") ? advanced_keys : basic_keys, errors);
	static const char *const kinds[] = { "model", "dataset" };
	for (size_t k = 0; k < 2; k++) {
		json_t *v = json_object_get(body, kinds[k]);
		if (!v) {
			field_error(errors, kinds[k], "required: the id of a %s (see GET /api/training/models/"
			            "trainable)", k ? "data set" : "model");
			continue;
		}
		if (!json_is_string(v)) {
			field_error(errors, kinds[k], "must be a string: the id of a %s", k ? "data set" : "model");
			continue;
		}
		json_t *ref = json_pack("{s:O}", kinds[k], v);
		json_decref(ref ? check_value(js, kinds[k], ref, errors) : NULL);
		json_decref(ref);
	}
	json_t *t = json_object_get(body, "type");
	train_check_type type;
	if (t && (!json_is_string(t) || train_check_type_parse(json_string_value(t), &type)))
		field_error(errors, "type", "must be one of fine-tune, lora, continued-pretrain, task, full");
	check_name_threads(body, errors);
	json_t *config = json_object_get(body, "config");
	json_t *out = json_object();
	if (config && !json_is_object(config))
		field_error(errors, "config", "must be an object of the %s mode's keys (num_epochs, "
		            "learning_rate, ...)", mode);
	else if (config)
		check_keys(js, "config", config, out, 1, errors);
	if (json_array_size(errors)) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* Check a job body; the settings to write (ids made paths) or NULL. */
static json_t *check_body(serve_jobs *js, const char *mode, json_t *body, json_t *errors)
{
	static const char *const basic_keys[] = { "target", "settings", "name", NULL };
	static const char *const advanced_keys[] = { "target", "settings", "name", "threads",
	                                             "force", NULL };
	if (json_object_get(body, "model") && !json_object_get(body, "target"))
		return check_finetune(js, mode, body, errors);
	check_fields(body, mode, !strcmp(mode, "advanced") ? advanced_keys : basic_keys, errors);
	json_t *t = json_object_get(body, "target");
	if (!t)
		field_error(errors, "target", "required: the name of a target (see "
		            "GET /api/training/models/trainable)");
	else if (!json_is_string(t))
		field_error(errors, "target", "must be a string");
	else {
		const char *name = json_string_value(t);
		target_find tf = { name, 0 };
		if (!good_id(name))
			field_error(errors, "target", "'%s' is not a target name", name);
		else if (cli_target_each(target_cb, &tf), !tf.found)
			field_error(errors, "target", "no target '%s' (see GET /api/training/models/trainable)",
			            name);
	}
	check_name_threads(body, errors);
	json_t *force = json_object_get(body, "force");
	if (force && !json_is_boolean(force))
		field_error(errors, "force", "must be true or false");

	json_t *settings = json_object_get(body, "settings");
	json_t *outset = json_object();
	if (settings && !json_is_object(settings)) {
		field_error(errors, "settings", "must be an object of sections (model, training, "
		            "data, ...)");
	} else if (settings) {
		const char *sec;
		json_t *sv;
		json_object_foreach(settings, sec, sv) {
			char field[160];
			snprintf(field, sizeof field, "settings.%.64s", sec);
			if (!good_key(sec)) {
				field_error(errors, field, "a section name is letters, digits, '_' or '-'");
				continue;
			}
			if (!json_is_object(sv)) {
				field_error(errors, field, "a section must be an object of keys");
				continue;
			}
			json_t *osec = json_object();
			check_keys(js, field, sv, osec, 0, errors);
			json_object_set_new(outset, sec, osec);
		}
	}
	if (json_array_size(errors)) {
		json_decref(outset);
		return NULL;
	}
	return outset;
}

/* ---- child processes ------------------------------------------------------- */

/* Run `argv` with stdout+stderr to `log`, in `dir`; for a job (`detach` 0)
 * the child dies with the server (SIGTERM: a clean stop).  The pid, or -1. */
static pid_t spawn(char *const *argv, const char *dir, const char *log)
{
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	/* the child: async-signal-safe calls only until exec */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		_exit(127);
	int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd < 0 || chdir(dir) != 0)
		_exit(127);
	int nul = open("/dev/null", O_RDONLY);
	if (nul >= 0)
		dup2(nul, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	for (int i = 3; i < 1024; i++)
		close(i);
	setpgid(0, 0);
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execv(argv[0], argv);
	_exit(127);
}

/* The argument vector of a job's run (strings malloc'd; free with free_argv). */
static char **job_argv(const serve_jobs *js, const job *j, int dry_run)
{
	char **a = calloc(32, sizeof *a);
	if (!a)
		return NULL;
	size_t n = 0;
	char *dir = job_dir(js, j->id);
	const char *base = json_string_value(json_object_get(j->rec, "base_model"));
	a[n++] = strdup(js->opt->exe);
	if (base) { /* train finetune MODEL --data DATA --mode M --type T */
		const char *data = json_string_value(json_object_get(j->rec, "dataset"));
		const char *type = json_string_value(json_object_get(j->rec, "type"));
		a[n++] = strdup("finetune");
		(void)!asprintf(&a[n++], "%s/%s", js->opt->models_dir, base);
		a[n++] = strdup("--data");
		(void)!asprintf(&a[n++], "%s/%s", js->opt->data_dir, data ? data : "");
		a[n++] = strdup("--mode");
		a[n++] = strdup(json_string_value(json_object_get(j->rec, "mode")));
		a[n++] = strdup("--type");
		a[n++] = strdup(type ? type : "fine-tune");
		a[n++] = strdup("--config");
		(void)!asprintf(&a[n++], "%s/settings.yml", dir);
		a[n++] = strdup("--output");
		(void)!asprintf(&a[n++], "%s/model", dir);
	} else {
		a[n++] = strdup("--target");
		a[n++] = strdup(json_string_value(json_object_get(j->rec, "target")));
		a[n++] = strdup("--config");
		(void)!asprintf(&a[n++], "%s/settings.yml", dir);
		a[n++] = strdup("--out");
		(void)!asprintf(&a[n++], "%s/model", dir);
	}
	a[n++] = strdup("--cache-dir");
	(void)!asprintf(&a[n++], "%s/cache", dir);
	if (js->opt->plugin_path) {
		a[n++] = strdup("--plugin-path");
		a[n++] = strdup(js->opt->plugin_path);
	}
	json_t *th = json_object_get(j->rec, "threads");
	int threads = th ? (int)json_integer_value(th) : js->opt->job_threads;
	if (threads > 0) {
		a[n++] = strdup("--threads");
		(void)!asprintf(&a[n++], "%d", threads);
	}
	if (dry_run) {
		a[n++] = strdup("--dry-run");
		if (!base)
			a[n++] = strdup("-q");
	} else {
		a[n++] = strdup("--progress");
		(void)!asprintf(&a[n++], "%s/progress.jsonl", dir);
		a[n++] = strdup("--report");
		(void)!asprintf(&a[n++], "%s/report.json", dir);
		if (!base && json_is_true(json_object_get(j->rec, "force")))
			a[n++] = strdup("--force");
		/* A job started again (cancelled, interrupted) continues from the
		 * checkpoints its nodes left in its cache; a new one has none. */
		a[n++] = strdup("--resume");
	}
	free(dir);
	for (size_t i = 0; i < n; i++)
		if (!a[i]) {
			for (size_t k = 0; k < n; k++)
				free(a[k]);
			free(a);
			return NULL;
		}
	return a;
}

static void free_argv(char **a)
{
	for (size_t i = 0; a && a[i]; i++)
		free(a[i]);
	free(a);
}

/* The last `max` lines of a file, as a JSON array. */
static json_t *tail_lines(const char *path, int max)
{
	json_t *arr = json_array();
	FILE *f = fopen(path, "re");
	if (!f)
		return arr;
	char buf[16384];
	long size = (fseek(f, 0, SEEK_END), ftell(f));
	long from = size > (long)sizeof buf - 1 ? size - (long)sizeof buf + 1 : 0;
	fseek(f, from, SEEK_SET);
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *lines[256];
	int nl = 0;
	char *save = NULL;
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		if (nl == 256) {
			memmove(lines, lines + 1, 255 * sizeof *lines);
			nl--;
		}
		lines[nl++] = l;
	}
	for (int i = nl > max ? nl - max : 0; i < nl; i++)
		json_array_append_new(arr, json_string(lines[i]));
	return arr;
}

/* Write the settings file and check it with a dry run: NULL or the message. */
static json_t *dry_check(serve_jobs *js, job *j, json_t *settings, serve_fail *f)
{
	char *dir = job_dir(js, j->id), *set = job_file(js, j->id, "settings.yml"),
	     *tmp = job_file(js, j->id, ".settings.yml.tmp"), *log = job_file(js, j->id, "check.log");
	char **argv = NULL;
	json_t *ok = NULL;
	if (!dir || !set || !tmp || !log) {
		fail_set(f, 500, "out of memory");
		goto out;
	}
	if (mkdir(dir, 0700)) {
		fail_set(f, 500, "cannot make the job folder: %s", strerror(errno));
		goto out;
	}
	if (json_dump_file(settings, tmp, JSON_INDENT(1) | JSON_PRESERVE_ORDER) ||
	    rename(tmp, set)) {
		fail_set(f, 500, "cannot write the job's settings");
		goto out;
	}
	if (!(argv = job_argv(js, j, 1))) {
		fail_set(f, 500, "out of memory");
		goto out;
	}
	pid_t pid = spawn(argv, dir, log);
	int st = 0;
	if (pid < 0 || waitpid(pid, &st, 0) < 0) {
		fail_set(f, 500, "cannot run %s: %s", js->opt->exe, strerror(errno));
		goto out;
	}
	/* A dry run's status is 0..7 (flags); 64 and up is an error. */
	if (WIFEXITED(st) && WEXITSTATUS(st) < 64) {
		ok = json_true();
		goto out;
	}
	json_t *lines = tail_lines(log, LOG_TAIL);
	json_t *errors = json_array();
	size_t i;
	json_t *l;
	json_array_foreach(lines, i, l) {
		const char *s = json_string_value(l);
		if (!strncmp(s, "train: ", 7))
			s += 7;
		/* the settings file's path is the server's business */
		const char *p = strstr(s, "settings.yml:");
		char msg[1024];
		snprintf(msg, sizeof msg, "%s", p ? p : s);
		json_array_append_new(errors, json_pack("{s:s, s:s}", "field", "settings", "message", msg));
	}
	json_decref(lines);
	fail_set(f, 400, "the target does not accept these settings");
	f->errors = errors;
out:
	if (!ok && dir) {
		char *rm = NULL;
		/* nothing of a refused job stays */
		if (asprintf(&rm, "%s", dir) >= 0) {
			unlink(set);
			unlink(log);
			unlink(tmp);
			char *c = job_file(js, j->id, "cache"), *m = job_file(js, j->id, "model");
			if (c && m) {
				char *argv2[] = { "/bin/rm", "-rf", c, m, NULL };
				pid_t p2 = fork();
				if (p2 == 0) {
					execv(argv2[0], argv2);
					_exit(127);
				}
				if (p2 > 0)
					waitpid(p2, NULL, 0);
			}
			free(c);
			free(m);
			rmdir(rm);
			free(rm);
		}
	}
	free_argv(argv);
	free(dir);
	free(set);
	free(tmp);
	free(log);
	return ok;
}

json_t *serve_jobs_create(serve_jobs *js, const char *mode, json_t *body, serve_fail *f)
{
	if (!json_is_object(body)) {
		fail_set(f, 400, "the body must be a JSON object");
		return NULL;
	}
	json_t *errors = json_array();
	json_t *settings = check_body(js, mode, body, errors);
	if (!settings) {
		fail_set(f, 400, "invalid job: %zu bad field%s", json_array_size(errors),
		         json_array_size(errors) == 1 ? "" : "s");
		f->errors = errors;
		return NULL;
	}
	json_decref(errors);
	job *j = calloc(1, sizeof *j);
	if (!j) {
		json_decref(settings);
		fail_set(f, 500, "out of memory");
		return NULL;
	}
	/* The check runs in a folder of its own; the job gets its id (and the
	 * folder its name) once it is accepted: a refused job leaves nothing. */
	char pending[PATH_MAX];
	snprintf(pending, sizeof pending, "%s/jobs/.new-XXXXXX", js->opt->state_dir);
	if (!mkdtemp(pending)) {
		free(j);
		json_decref(settings);
		fail_set(f, 500, "cannot make a job folder: %s", strerror(errno));
		return NULL;
	}
	rmdir(pending);
	snprintf(j->id, sizeof j->id, "%s", strrchr(pending, '/') + 1);
	char created[32];
	iso_now(created, sizeof created);
	/* a fine-tuning job shows as target "finetune", with its model and data */
	int ft = !json_object_get(body, "target");
	json_t *given = json_object_get(body, ft ? "config" : "settings");
	j->rec = json_pack("{s:s, s:s, s:o, s:o, s:s, s:s, s:f, s:n, s:n, s:n, s:n, s:n, s:n, s:i}",
	                   "id", j->id, "mode", mode, "target",
	                   ft ? json_string("finetune") : json_incref(json_object_get(body, "target")),
	                   "settings", given ? json_incref(given) : json_object(),
	                   "status", "created", "created_at", created, "progress", 0.0, "node",
	                   "step", "total", "loss", "eta_seconds", "error", "attempts", 0);
	j->curve = json_array();
	if (!j->rec) {
		json_decref(settings);
		job_free(j);
		fail_set(f, 500, "out of memory");
		return NULL;
	}
	if (j->rec && ft) {
		json_object_set(j->rec, "base_model", json_object_get(body, "model"));
		json_object_set(j->rec, "dataset", json_object_get(body, "dataset"));
		json_object_set_new(j->rec, "type", json_string(json_object_get(body, "type")
		                                                    ? json_string_value(json_object_get(body, "type"))
		                                                    : "fine-tune"));
	}
	if (json_object_get(body, "name"))
		json_object_set(j->rec, "name", json_object_get(body, "name"));
	if (json_object_get(body, "threads"))
		json_object_set(j->rec, "threads", json_object_get(body, "threads"));
	if (json_object_get(body, "force"))
		json_object_set(j->rec, "force", json_object_get(body, "force"));
	/* the target itself checks the keys (unknown ones, types) */
	json_t *ok = dry_check(js, j, settings, f);
	json_decref(settings);
	if (!ok) {
		job_free(j);
		return NULL;
	}
	pthread_mutex_lock(&js->mu);
	snprintf(j->id, sizeof j->id, "job-%06lu", js->next_id++);
	json_object_set_new(j->rec, "id", json_string(j->id));
	char *dir = job_dir(js, j->id);
	int rc = dir && rename(pending, dir) == 0 ? 0 : errno ? errno : ENOMEM;
	free(dir);
	int added = 0;
	if (!rc && !(rc = add_job(js, j)))
		added = 1;
	if (!rc)
		rc = persist(js, j);
	json_t *ans = rc ? NULL : json_deep_copy(j->rec);
	pthread_mutex_unlock(&js->mu);
	if (rc) {
		fail_set(f, 500, "cannot store the job: %s", rc > 0 ? strerror(rc) : mdb_strerror(rc));
		if (!added)
			job_free(j);
		return NULL; /* (one in the list but not stored stays for this run) */
	}
	return ans;
}

static job *lookup(serve_jobs *js, const char *id, serve_fail *f)
{
	if (!serve_job_id_ok(id)) {
		fail_set(f, 400, "'%.64s' is not a job id (job- and digits)", id);
		return NULL;
	}
	job *j = find(js, id);
	if (!j)
		fail_set(f, 404, "no job '%s'", id);
	return j;
}

json_t *serve_jobs_start_job(serve_jobs *js, const char *id, serve_fail *f)
{
	pthread_mutex_lock(&js->mu);
	job *j = lookup(js, id, f);
	json_t *ans = NULL;
	if (j) {
		const char *st = status_of(j);
		if (!strcmp(st, "created") || !strcmp(st, "failed") || !strcmp(st, "canceled") ||
		    !strcmp(st, "interrupted")) {
			set_status(j, "queued");
			json_object_set_new(j->rec, "error", json_null());
			json_object_del(j->rec, "log_tail");
			persist(js, j);
			pthread_cond_signal(&js->cv);
			ans = json_deep_copy(j->rec);
		} else {
			fail_set(f, 409, "job %s is %s: only a created, failed, canceled or interrupted "
			         "job can be started", id, st);
		}
	}
	pthread_mutex_unlock(&js->mu);
	return ans;
}

json_t *serve_jobs_cancel(serve_jobs *js, const char *id, serve_fail *f)
{
	pthread_mutex_lock(&js->mu);
	job *j = lookup(js, id, f);
	json_t *ans = NULL;
	if (j) {
		const char *st = status_of(j);
		if (!strcmp(st, "queued") || !strcmp(st, "created")) {
			set_status(j, "canceled");
			persist(js, j);
			ans = json_deep_copy(j->rec);
		} else if (!strcmp(st, "running")) {
			j->cancel_requested = 1;
			j->t_kill = now_mono();
			if (j->pid > 0)
				kill(j->pid, SIGTERM);
			set_status(j, "canceling");
			persist(js, j);
			ans = json_deep_copy(j->rec);
		} else {
			fail_set(f, 409, "job %s is %s: nothing to cancel", id, st);
		}
	}
	pthread_mutex_unlock(&js->mu);
	return ans;
}

json_t *serve_jobs_get(serve_jobs *js, const char *id, serve_fail *f)
{
	pthread_mutex_lock(&js->mu);
	job *j = lookup(js, id, f);
	json_t *ans = j ? json_deep_copy(j->rec) : NULL;
	pthread_mutex_unlock(&js->mu);
	return ans;
}

json_t *serve_jobs_curve(serve_jobs *js, const char *id, serve_fail *f)
{
	pthread_mutex_lock(&js->mu);
	job *j = lookup(js, id, f);
	json_t *ans = j ? json_pack("{s:s, s:s, s:O}", "id", j->id, "columns",
	                            "t,loss,node,step,total,lr", "points", j->curve) : NULL;
	pthread_mutex_unlock(&js->mu);
	return ans;
}

static const char *const statuses[] = { "created", "queued", "running", "canceling",
	                                    "succeeded", "failed", "canceled", "interrupted", NULL };

json_t *serve_jobs_list(serve_jobs *js, const char *status, serve_fail *f)
{
	if (status) {
		int known = 0;
		for (size_t i = 0; statuses[i]; i++)
			known |= !strcmp(statuses[i], status);
		if (!known) {
			fail_set(f, 400, "unknown status '%.40s'; known: created, queued, running, canceling, "
			         "succeeded, failed, canceled, interrupted", status);
			return NULL;
		}
	}
	json_t *arr = json_array();
	pthread_mutex_lock(&js->mu);
	for (size_t i = 0; i < js->n; i++)
		if (!status || !strcmp(status, status_of(js->jobs[i])))
			json_array_append_new(arr, json_deep_copy(js->jobs[i]->rec));
	pthread_mutex_unlock(&js->mu);
	return json_pack("{s:o}", "jobs", arr);
}

static void trainable_cb(void *ud, const char *name, const char *path)
{
	json_t *arr = ud;
	size_t i;
	json_t *e;
	json_array_foreach(arr, i, e)
		if (!strcmp(json_string_value(json_object_get(e, "id")), name))
			return; /* the first of a name is the one that runs */
	(void)path;
	json_array_append_new(arr, json_pack("{s:s, s:s, s:[s]}", "id", name, "kind", "target",
	                                     "capabilities", "train"));
}

json_t *serve_jobs_trainable(serve_jobs *js)
{
	json_t *targets = json_array(), *models = json_array(), *datasets = json_array();
	cli_target_each(trainable_cb, targets);
	DIR *d = opendir(js->opt->models_dir);
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (!good_id(e->d_name))
			continue;
		size_t l = strlen(e->d_name);
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/%s/config.json", js->opt->models_dir, e->d_name);
		if (l > 7 && !strcmp(e->d_name + l - 7, ".tar.gz"))
			json_array_append_new(models, json_pack("{s:s, s:s, s:[s,s]}", "id", e->d_name,
			                                        "kind", "libtrain", "capabilities",
			                                        "predict", "finetune"));
		else if (access(path, R_OK) == 0)
			json_array_append_new(models, json_pack("{s:s, s:s, s:[]}", "id", e->d_name, "kind",
			                                        "huggingface", "capabilities"));
	}
	if (d)
		closedir(d);
	d = opendir(js->opt->data_dir);
	while (d && (e = readdir(d)))
		if (good_id(e->d_name))
			json_array_append_new(datasets, json_pack("{s:s}", "id", e->d_name));
	if (d)
		closedir(d);
	return json_pack("{s:o, s:o, s:o}", "targets", targets, "models", models, "datasets",
	                 datasets);
}

/* ---- the supervisor -------------------------------------------------------- */

static void update_progress(job *j)
{
	double p = 0;
	json_t *step = json_object_get(j->rec, "step"), *total = json_object_get(j->rec, "total");
	double frac = json_is_integer(step) && json_integer_value(total) > 0
		? (double)json_integer_value(step) / (double)json_integer_value(total) : 0;
	if (frac > 1)
		frac = 1;
	if (j->nodes)
		p = ((double)j->nodes_done + (j->nodes_done < j->nodes ? frac : 0)) / (double)j->nodes;
	/* a pipeline: each stage plans its own nodes; the stages before this
	 * one are done */
	if (j->stages && j->stage >= 1 && j->stage <= j->stages)
		p = ((double)(j->stage - 1) + p) / (double)j->stages;
	if (p > 0.999 && strcmp(status_of(j), "succeeded"))
		p = 0.999;
	json_object_set_new(j->rec, "progress", json_real(p));
	double el = now_mono() - j->t_start;
	if (j->pid > 0 && p > 0.01)
		json_object_set_new(j->rec, "eta_seconds", json_real(el / p * (1 - p)));
	j->dirty = 1;
}

static void progress_line(job *j, const char *line)
{
	json_t *o = json_loads(line, 0, NULL);
	const char *ev = json_string_value(json_object_get(o, "event"));
	if (!ev) {
		json_decref(o);
		return;
	}
	if (!strcmp(ev, "stage")) {
		/* a pipeline's next stage: its plan follows */
		j->stage = (size_t)json_integer_value(json_object_get(o, "index"));
		j->stages = (size_t)json_integer_value(json_object_get(o, "stages"));
		j->nodes = j->nodes_done = 0;
		json_object_set(j->rec, "stage", json_object_get(o, "stage"));
		json_object_set(j->rec, "stage_index", json_object_get(o, "index"));
		json_object_set(j->rec, "stages", json_object_get(o, "stages"));
	} else if (!strcmp(ev, "plan")) {
		j->nodes = (size_t)json_integer_value(json_object_get(o, "nodes"));
		j->nodes_done = 0;
	} else if (!strcmp(ev, "node")) {
		j->nodes_done = (size_t)json_integer_value(json_object_get(o, "done"));
		json_object_set_new(j->rec, "step", json_null());
		json_object_set_new(j->rec, "total", json_null());
	} else if (!strcmp(ev, "step")) {
		json_object_set(j->rec, "node", json_object_get(o, "node"));
		json_object_set(j->rec, "step", json_object_get(o, "step"));
		json_object_set(j->rec, "total", json_object_get(o, "total"));
		json_t *loss = json_object_get(o, "loss"), *lr = json_object_get(o, "lr");
		if (json_is_number(lr))
			json_object_set(j->rec, "lr", lr);
		if (json_is_number(loss)) {
			json_object_set(j->rec, "loss", loss);
			if (json_array_size(j->curve) < MAX_CURVE)
				json_array_append_new(j->curve,
				                      json_pack("[O, O, O, O, O, O?]", json_object_get(o, "t"), loss,
				                                json_object_get(o, "node"),
				                                json_object_get(o, "step"),
				                                json_object_get(o, "total"),
				                                json_object_get(o, "lr")));
		}
	}
	update_progress(j);
	json_decref(o);
}

static void read_progress(serve_jobs *js, job *j)
{
	char *path = job_file(js, j->id, "progress.jsonl");
	FILE *f = path ? fopen(path, "re") : NULL;
	free(path);
	if (!f)
		return;
	if (fseek(f, j->progress_off, SEEK_SET) == 0) {
		char buf[8192];
		size_t n;
		while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
			j->progress_off += (long)n;
			for (size_t i = 0; i < n; i++) {
				if (buf[i] == '\n') {
					j->line[j->line_len < sizeof j->line ? j->line_len : sizeof j->line - 1] = '\0';
					progress_line(j, j->line);
					j->line_len = 0;
				} else if (j->line_len < sizeof j->line - 1) {
					j->line[j->line_len++] = buf[i];
				}
			}
		}
	}
	fclose(f);
}

static void find_model(serve_jobs *js, job *j)
{
	char *dir = job_file(js, j->id, "model");
	DIR *d = dir ? opendir(dir) : NULL;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (e->d_name[0] != '.' && l > 7 && !strcmp(e->d_name + l - 7, ".tar.gz")) {
			char p[PATH_MAX];
			snprintf(p, sizeof p, "jobs/%s/model/%s", j->id, e->d_name);
			json_object_set_new(j->rec, "model", json_string(p));
		}
	}
	if (d)
		closedir(d);
	free(dir);
}

static void reaped(serve_jobs *js, job *j, int st)
{
	char when[32];
	iso_now(when, sizeof when);
	read_progress(js, j);
	json_object_set_new(j->rec, "finished_at", json_string(when));
	json_object_set_new(j->rec, "eta_seconds", json_null());
	json_object_set_new(j->rec, "pid", json_null());
	j->pid = 0;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		set_status(j, "succeeded");
		json_object_set_new(j->rec, "progress", json_real(1.0));
		find_model(js, j);
	} else if (j->cancel_requested) {
		set_status(j, "canceled");
		json_object_set_new(j->rec, "error", json_string("canceled on request"));
	} else if (js->stop) {
		set_status(j, "interrupted");
		json_object_set_new(j->rec, "error",
		                    json_string("the server stopped while the job ran; start it again "
		                                "to resume from its cache"));
	} else {
		char *log = job_file(js, j->id, "train.log");
		char msg[128];
		if (WIFEXITED(st))
			snprintf(msg, sizeof msg, "train exited with status %d", WEXITSTATUS(st));
		else
			snprintf(msg, sizeof msg, "train was killed by signal %d (%s)", WTERMSIG(st),
			         strsignal(WTERMSIG(st)));
		set_status(j, "failed");
		json_t *tail = log ? tail_lines(log, LOG_TAIL) : json_array();
		/* the last line that says what went wrong, if there is one */
		const char *last = NULL;
		size_t i;
		json_t *l;
		json_array_foreach(tail, i, l)
			if (strstr(json_string_value(l), "error") || !strncmp(json_string_value(l), "train: ", 7))
				last = json_string_value(l);
		char full[1200];
		snprintf(full, sizeof full, "%s%s%s", msg, last ? ": " : "", last ? last : "");
		json_object_set_new(j->rec, "error", json_string(full));
		json_object_set_new(j->rec, "log_tail", tail);
		free(log);
	}
	j->cancel_requested = 0;
	persist(js, j);
}

static void start_job(serve_jobs *js, job *j)
{
	char **argv = job_argv(js, j, 0);
	char *dir = job_dir(js, j->id), *log = job_file(js, j->id, "train.log"),
	     *prog = job_file(js, j->id, "progress.jsonl");
	if (argv && dir && log && prog) {
		unlink(prog); /* a new attempt: a new stream (the cache keeps what finished) */
		reset_progress(j);
		json_object_set_new(j->rec, "loss", json_null());
		json_object_set_new(j->rec, "step", json_null());
		json_object_set_new(j->rec, "total", json_null());
		json_object_set_new(j->rec, "node", json_null());
		json_object_del(j->rec, "stage");
		json_object_del(j->rec, "stage_index");
		json_object_del(j->rec, "stages");
		json_object_set_new(j->rec, "progress", json_real(0));
		FILE *lf = fopen(log, "ae");
		if (lf) {
			char when[32];
			iso_now(when, sizeof when);
			fprintf(lf, "---- %s: attempt %d\n", when,
			        (int)json_integer_value(json_object_get(j->rec, "attempts")) + 1);
			fclose(lf);
		}
		j->pid = spawn(argv, dir, log);
	} else {
		j->pid = -1;
	}
	if (j->pid < 0) {
		j->pid = 0;
		set_status(j, "failed");
		json_object_set_new(j->rec, "error", json_string("cannot start the train program"));
	} else {
		char when[32];
		iso_now(when, sizeof when);
		j->t_start = now_mono();
		set_status(j, "running");
		json_object_set_new(j->rec, "started_at", json_string(when));
		json_object_set_new(j->rec, "finished_at", json_null());
		json_object_set_new(j->rec, "pid", json_integer(j->pid));
		json_object_set_new(j->rec, "attempts",
		                    json_integer(json_integer_value(json_object_get(j->rec, "attempts")) + 1));
	}
	persist(js, j);
	free_argv(argv);
	free(dir);
	free(log);
	free(prog);
}

static void *supervisor(void *arg)
{
	serve_jobs *js = arg;
	pthread_mutex_lock(&js->mu);
	while (!js->stop) {
		int running = 0;
		double now = now_mono();
		for (size_t i = 0; i < js->n; i++) {
			job *j = js->jobs[i];
			if (j->pid <= 0)
				continue;
			int st;
			pid_t r = waitpid(j->pid, &st, WNOHANG);
			if (r == j->pid) {
				reaped(js, j, st);
				continue;
			}
			read_progress(js, j);
			if (j->cancel_requested && now - j->t_kill > 30)
				kill(j->pid, SIGKILL); /* it did not stop: no clean stop then */
			running++;
			if (j->dirty && now - j->persisted_at > 1.0)
				persist(js, j);
		}
		for (size_t i = 0; i < js->n && running < js->opt->max_jobs; i++)
			if (!strcmp(status_of(js->jobs[i]), "queued")) {
				start_job(js, js->jobs[i]);
				running += js->jobs[i]->pid > 0;
			}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&js->cv, &js->mu, &ts);
	}
	/* Stopping: every running job gets SIGTERM and, stopped, is interrupted. */
	for (size_t i = 0; i < js->n; i++)
		if (js->jobs[i]->pid > 0)
			kill(js->jobs[i]->pid, SIGTERM);
	double t0 = now_mono();
	for (;;) {
		int left = 0;
		for (size_t i = 0; i < js->n; i++) {
			job *j = js->jobs[i];
			int st;
			if (j->pid > 0 && waitpid(j->pid, &st, WNOHANG) == j->pid)
				reaped(js, j, st);
			left += j->pid > 0;
		}
		if (!left)
			break;
		if (now_mono() - t0 > 20)
			for (size_t i = 0; i < js->n; i++)
				if (js->jobs[i]->pid > 0)
					kill(js->jobs[i]->pid, SIGKILL);
		pthread_mutex_unlock(&js->mu);
		struct timespec ts = { 0, 50 * 1000000L };
		nanosleep(&ts, NULL);
		pthread_mutex_lock(&js->mu);
	}
	for (size_t i = 0; i < js->n; i++)
		if (js->jobs[i]->dirty)
			persist(js, js->jobs[i]);
	pthread_mutex_unlock(&js->mu);
	return NULL;
}

int serve_jobs_start(serve_jobs *js)
{
	int rc = pthread_create(&js->thread, NULL, supervisor, js);
	js->thread_started = rc == 0;
	return rc;
}

void serve_jobs_close(serve_jobs *js)
{
	if (!js)
		return;
	pthread_mutex_lock(&js->mu);
	js->stop = 1;
	pthread_cond_signal(&js->cv);
	pthread_mutex_unlock(&js->mu);
	if (js->thread_started)
		pthread_join(js->thread, NULL);
	for (size_t i = 0; i < js->n; i++)
		job_free(js->jobs[i]);
	free(js->jobs);
	mdb_env_close(js->env);
	pthread_mutex_destroy(&js->mu);
	pthread_cond_destroy(&js->cv);
	free(js);
}
