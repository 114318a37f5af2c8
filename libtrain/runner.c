/*
 * runner.c - one training run: read the recipe, resolve it against the
 * plugins, fingerprint, prune, train what is left on a pool of threads,
 * and package the model.
 *
 *   recipe -> graph -> fingerprints -> cache check -> (dry run: report, stop)
 *          -> staging folder -> nodes run in dependency order -> metadata
 *          -> archive (temporary name, renamed) -> report
 *
 * Cached nodes are "restored": their outputs and persisted state come from
 * the output cache, so their consumers and the model see exactly what a
 * training run produced.  A restore that fails (the entry was evicted or
 * is corrupt) falls back to training the node.  A node that trains stores
 * its outputs in the cache as soon as it finishes, so a failure or a kill
 * later in the run loses nothing already done.
 */
#include <train/cache.h>
#include <train/train.h>

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctx_private.h"
#include "graph.h"
#include "package.h"
#include "pipeline.h"
#include "recipe.h"
#include "target.h"

#define RESOURCE_OUTPUT "@resource"
#define RESOURCE_TYPE "application/x-train-resource+tar"
#define METADATA_FORMAT 1

const char *train_node_status_name(train_node_status s)
{
	switch (s) {
	case TRAIN_NODE_TRAINED: return "trained";
	case TRAIN_NODE_CACHED: return "cached";
	case TRAIN_NODE_PRUNED: return "pruned";
	case TRAIN_NODE_FAILED: return "failed";
	case TRAIN_NODE_SKIPPED: return "skipped";
	}
	return "?";
}

void train_run_options_init(train_run_options *o)
{
	memset(o, 0, sizeof *o);
	o->struct_size = sizeof *o;
	o->out_dir = "models";
	o->epoch_fraction = 1.0;
	o->training_type = "recipe";
	o->verbosity = TRAIN_NORMAL;
}

void train_run_result_free(train_run_result *res)
{
	if (!res)
		return;
	for (size_t i = 0; i < res->n_nodes; i++) {
		free(res->nodes[i].name);
		free(res->nodes[i].component);
	}
	free(res->nodes);
	free(res->model_path);
	memset(res, 0, sizeof *res);
}

/* ---- run state ------------------------------------------------------------ */

typedef struct node_state {
	train_node_status status;
	train_fp fp;            /* known once the producers are done */
	bool fp_known;
	bool done;
	size_t waiting;         /* producers not yet done */
	train_values *outputs;  /* after train/restore, incl. @resource for restores */
	double seconds;
} node_state;

typedef struct run {
	const train_run_options *opt;
	train_graph *g;
	train_cache *cache;
	const train_log_sink *log;
	train_ctx proto;
	node_state *st;
	char *staging;          /* staging folder (model contents) */
	char *finetune_dir;     /* extracted earlier model, when finetuning */
	train_graph_vars vars;  /* what $data and $domain mean */
	char *salt;             /* mixed into every fingerprint (finetuning) */
	char *ckpt_root;        /* <cache>/checkpoints: a folder per node fingerprint */
	int resume;             /* opt->resume, when the caller's struct has it */
	int threads;
	bool tty;               /* stderr is a terminal: keep a progress line */
	train_log_sink sink;    /* stderr at the run's verbosity, when no sink is given */
	train_progress_sink progress; /* --progress stream (its f NULL: none) */
	size_t n_done;          /* needed nodes finished (for the progress stream) */
	size_t total;           /* needed nodes */
	json_t *metrics;        /* node name -> its JSON outputs' numbers (report, manifest) */

	pthread_mutex_t mu;     /* guards everything below and the cache */
	pthread_cond_t cv;
	size_t *ready;
	size_t n_ready;
	size_t running;
	size_t remaining;       /* needed nodes not yet done */
	int failed;             /* first error code */
	train_error ferr;       /* first error */
} run;

static void logi(const run *r, const char *fmt, ...) TRAIN_PRINTF(2, 3);
static void logi(const run *r, const char *fmt, ...)
{
	if (r->opt->verbosity < TRAIN_NORMAL)
		return;
	va_list ap;
	va_start(ap, fmt);
	train_vlogf(r->log, TRAIN_LOG_INFO, fmt, ap);
	va_end(ap);
}

/* On a terminal, every line first wipes the progress line. */
static void tty_log(void *ud, train_log_level level, const char *msg)
{
	(void)ud;
	fputs("\r\033[K", stderr);
	if (level <= TRAIN_LOG_WARN)
		fprintf(stderr, "train: %s: %s\n", level == TRAIN_LOG_ERROR ? "error" : "warning", msg);
	else
		fprintf(stderr, "train: %s\n", msg);
}

static const train_log_sink tty_sink = { tty_log, NULL, TRAIN_LOG_INFO };

/* ---- one node ------------------------------------------------------------- */

static int restore_node(run *r, size_t i)
{
	train_gnode *n = &r->g->nodes[i];
	train_values *vals = NULL;
	pthread_mutex_lock(&r->mu);
	int rc = train_cache_lookup(r->cache, r->st[i].fp, &vals, NULL);
	pthread_mutex_unlock(&r->mu);
	if (rc)
		return rc;
	/* The persisted state travels as a folder blob, straight into the
	 * model archive: nothing of a cached node touches the disk. */
	if (!train_values_get(vals, RESOURCE_OUTPUT))
		rc = TRAIN_ECORRUPT;
	for (size_t k = 0; !rc && n->cls->outputs && n->cls->outputs[k]; k++)
		if (!train_values_get(vals, n->cls->outputs[k]))
			rc = TRAIN_ECORRUPT;
	if (rc) {
		train_logf(r->log, TRAIN_LOG_WARN, "node '%s': cached entry unusable (%s); training it",
		           n->rn->name, train_strerror(rc));
		train_values_destroy(vals);
		return rc;
	}
	r->st[i].outputs = vals;
	return TRAIN_OK;
}

static int node_fail(train_error *err, const run *r, size_t i, int rc, const char *what,
                     const char *why)
{
	const train_gnode *n = &r->g->nodes[i];
	return train_error_set(err, rc, NULL, 0, 0, "node '%s' (%s): %s failed: %s", n->rn->name,
	                       n->cls->name, what, why && *why ? why : train_strerror(rc));
}

static int train_node(run *r, size_t i, train_error *err)
{
	train_gnode *n = &r->g->nodes[i];
	const train_component_class *cls = n->cls;
	int rc = TRAIN_OK;
	void *self = NULL;
	train_values *in = NULL, *out = NULL;
	char *dir = NULL;
	void *blob = NULL;
	size_t blob_size = 0;
	char *ckpt = NULL;
	train_ctx ctx = r->proto;
	ctx.node = n->rn->name;

	if ((rc = train_values_create(&in)) || (rc = train_values_create(&out)))
		goto out;
	/* Checkpoints (issue 9) belong to the node's fingerprint, so a resumed
	 * run only ever continues the same training. */
	if (r->ckpt_root && r->st[i].fp_known) {
		char hex[TRAIN_FP_HEX];
		ckpt = train_strfmt("%s/%s", r->ckpt_root, train_fp_hex(r->st[i].fp, hex));
		if (!ckpt) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		train_error derr = { 0 };
		if (train_mkdirs(ckpt, &derr) == TRAIN_OK) {
			ctx.checkpoint_dir = ckpt;
			ctx.resume = r->resume;
		} else {
			train_logf(r->log, TRAIN_LOG_WARN, "node '%s': no checkpoints: %s", n->rn->name,
			           derr.text);
		}
	}
	for (size_t e = 0; e < n->n_in; e++) {
		const train_value *v = train_values_get(r->st[n->in[e].from].outputs, n->in[e].output);
		if (!v) {
			rc = node_fail(err, r, i, TRAIN_ENOTFOUND, "input", "a producer's output is missing");
			goto out;
		}
		if ((rc = train_values_put_take(in, n->in[e].input, train_value_ref((train_value *)v))))
			goto out;
	}
	if (r->finetune_dir) {
		train_resource old = { .dir = train_strfmt("%s/components/%s", r->finetune_dir,
		                                           n->rn->name) };
		ctx.finetuning = 1;
		ctx.epoch_fraction = r->opt->epoch_fraction;
		rc = old.dir ? cls->load(n->config, &old, &ctx, &self) : TRAIN_ENOMEM;
		free(old.dir);
		if (rc) {
			rc = node_fail(err, r, i, rc, "load (finetune)", ctx.fail);
			goto out;
		}
	} else if ((rc = cls->create(n->config, &ctx, &self))) {
		rc = node_fail(err, r, i, rc, "create", ctx.fail);
		goto out;
	}
	rc = cls->train(self, in, out, &ctx);
	if (rc) {
		rc = node_fail(err, r, i, rc, "train", ctx.fail);
		goto out;
	}
	for (size_t k = 0; cls->outputs && cls->outputs[k]; k++)
		if (!train_values_get(out, cls->outputs[k])) {
			char why[256];
			snprintf(why, sizeof why, "it did not produce its output '%s'", cls->outputs[k]);
			rc = node_fail(err, r, i, TRAIN_ECOMPONENT, "train", why);
			goto out;
		}
	dir = train_strfmt("%s/%s", r->staging, n->rn->name);
	if (!dir) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	if ((rc = train_mkdirs(dir, err)))
		goto out;
	train_resource res = { .dir = dir };
	if ((rc = cls->persist(self, &res))) {
		rc = node_fail(err, r, i, rc, "persist", ctx.fail);
		goto out;
	}
	if ((rc = train_dir_pack(dir, &blob, &blob_size, err)))
		goto out;
	train_rmtree(dir);
	rc = train_values_put_bytes(out, RESOURCE_OUTPUT, RESOURCE_TYPE, blob, blob_size);
	if (rc)
		goto out;
	pthread_mutex_lock(&r->mu);
	train_error cerr = { 0 };
	int crc = train_cache_store(r->cache, r->st[i].fp, out, &cerr);
	pthread_mutex_unlock(&r->mu);
	if (crc) /* the model is still right; only the next run loses the reuse */
		train_logf(r->log, TRAIN_LOG_WARN, "node '%s': not cached: %s", n->rn->name, cerr.text);
	r->st[i].outputs = out;
	out = NULL;
	if (ctx.checkpoint_dir)
		train_rmtree(ctx.checkpoint_dir);
out:
	free(ckpt);
	if (self)
		cls->destroy(self);
	train_values_destroy(in);
	train_values_destroy(out);
	free(dir);
	free(blob);
	if (rc && err && !err->text[0])
		node_fail(err, r, i, rc, "run", NULL);
	return rc;
}

/* Fingerprint node i from the values its producers gave it. */
static int fingerprint_node(run *r, size_t i, train_error *err)
{
	const train_gnode *n = &r->g->nodes[i];
	train_fp fps[64], *in = n->n_in <= 64 ? fps : malloc(n->n_in * sizeof *in);
	if (!in)
		return TRAIN_ENOMEM;
	int rc = TRAIN_OK;
	for (size_t e = 0; e < n->n_in && !rc; e++) {
		if (n->in[e].from == SIZE_MAX)
			continue;
		const train_value *v = train_values_get(r->st[n->in[e].from].outputs, n->in[e].output);
		if (!v)
			rc = node_fail(err, r, i, TRAIN_ENOTFOUND, "input", "a producer's output is missing");
		else
			in[e] = train_value_fp(v);
	}
	if (!rc)
		rc = train_graph_node_fp(r->g, i, in, &r->vars, &r->proto, r->salt, &r->st[i].fp, err);
	r->st[i].fp_known = rc == TRAIN_OK;
	if (in != fps)
		free(in);
	return rc;
}

/* ---- the pool ------------------------------------------------------------- */

static void finish_node(run *r, size_t i)
{
	r->st[i].done = true;
	r->remaining--;
	for (size_t v = 0; v < r->g->n; v++) {
		if (!r->g->nodes[v].needed || r->st[v].done)
			continue;
		for (size_t e = 0; e < r->g->nodes[v].n_in; e++)
			if (r->g->nodes[v].in[e].from == i && --r->st[v].waiting == 0)
				r->ready[r->n_ready++] = v;
	}
}

static void *worker(void *arg)
{
	run *r = arg;
	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (!r->n_ready && r->remaining && !(r->failed && !r->running))
			pthread_cond_wait(&r->cv, &r->mu);
		if (!r->remaining || r->failed || !r->n_ready)
			break;
		if (r->opt->cancel && *r->opt->cancel) {
			r->failed = train_error_set(&r->ferr, TRAIN_ECANCELED, NULL, 0, 0,
			                            "interrupted");
			pthread_cond_broadcast(&r->cv);
			break;
		}
		size_t i = r->ready[--r->n_ready];
		r->running++;
		if (r->tty)
			fprintf(stderr, "\r\033[K[%zu/%zu] %s...", r->total - r->remaining + 1, r->total,
			        r->g->nodes[i].rn->name);
		pthread_mutex_unlock(&r->mu);

		double t0 = train_now();
		train_error err = { 0 };
		int rc = TRAIN_OK;
		node_state *s = &r->st[i];
		/* A restore that fails (evicted, corrupt) falls back to training. */
		rc = fingerprint_node(r, i, &err);
		if (!rc && !r->opt->force && !r->finetune_dir && restore_node(r, i) == TRAIN_OK) {
			s->status = TRAIN_NODE_CACHED;
		} else if (!rc) {
			rc = train_node(r, i, &err);
			s->status = rc ? TRAIN_NODE_FAILED : TRAIN_NODE_TRAINED;
		} else {
			s->status = TRAIN_NODE_FAILED;
		}
		s->seconds = train_now() - t0;

		pthread_mutex_lock(&r->mu);
		r->running--;
		if (rc) {
			if (!r->failed) {
				r->failed = rc;
				r->ferr = err;
			}
		} else {
			const train_gnode *n = &r->g->nodes[i];
			logi(r, "%-20s %-18s %s %.3fs", n->rn->name, n->cls->name,
			     train_node_status_name(s->status), s->seconds);
			finish_node(r, i);
			if (r->progress.f) {
				char name[512];
				size_t len = 0;
				train_json_str(name, sizeof name, &len, n->rn->name);
				r->n_done++;
				train_progress_emit(&r->progress,
				                    "\"event\": \"node\", \"node\": %s, \"status\": \"%s\", "
				                    "\"done\": %zu, \"nodes\": %zu", name,
				                    train_node_status_name(s->status), r->n_done, r->total);
			}
		}
		pthread_cond_broadcast(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static int run_pool(run *r)
{
	size_t n = r->g->n;
	r->ready = malloc((n ? n : 1) * sizeof *r->ready);
	if (!r->ready)
		return TRAIN_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		node_state *s = &r->st[i];
		if (!r->g->nodes[i].needed)
			continue;
		r->remaining++;
		r->total++;
		s->waiting = 0;
		for (size_t e = 0; e < r->g->nodes[i].n_in; e++)
			s->waiting += r->g->nodes[i].in[e].from != SIZE_MAX;
		if (!s->waiting)
			r->ready[r->n_ready++] = i;
	}
	/* Run the first-ready nodes in recipe order: reverse the stack. */
	for (size_t a = 0, b = r->n_ready; a + 1 < b; a++, b--) {
		size_t t = r->ready[a];
		r->ready[a] = r->ready[b - 1];
		r->ready[b - 1] = t;
	}
	train_progress_emit(&r->progress, "\"event\": \"plan\", \"nodes\": %zu", r->total);
	int nt = r->threads;
	if ((size_t)nt > r->remaining)
		nt = r->remaining ? (int)r->remaining : 1;
	pthread_t *tid = calloc((size_t)nt, sizeof *tid);
	if (!tid)
		return TRAIN_ENOMEM;
	int started = 0;
	for (int t = 1; t < nt; t++) {
		if (pthread_create(&tid[t], NULL, worker, r) != 0)
			break;
		started++;
	}
	worker(r); /* the calling thread works too */
	for (int t = 1; t <= started; t++)
		pthread_join(tid[t], NULL);
	free(tid);
	return r->failed;
}

/* ---- planning ------------------------------------------------------------- */

static bool dir_has_model(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return false;
	bool found = false;
	struct dirent *e;
	while (!found && (e = readdir(d))) {
		size_t l = strlen(e->d_name);
		found = e->d_name[0] != '.' && l > 7 && !strcmp(e->d_name + l - 7, ".tar.gz");
	}
	closedir(d);
	return found;
}

/*
 * Remove what a killed run left behind: staging folders
 * "train-staging-<pid>-*" in the temporary folder and temporary archives
 * ".*.tmp-<pid>-*" in the output folder, whose process is gone.
 */
static void clean_stale(const char *dir, const train_log_sink *log)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		const char *p = NULL;
		if (!strncmp(e->d_name, "train-staging-", 14))
			p = e->d_name + 14;
		else if (e->d_name[0] == '.' && (p = strstr(e->d_name, ".tmp-")))
			p += 5;
		if (!p)
			continue;
		char *end;
		long pid = strtol(p, &end, 10);
		if (end == p || *end != '-' || pid <= 0)
			continue;
		if (kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		char *full = train_path_join(dir, e->d_name);
		if (full) {
			train_logf(log, TRAIN_LOG_INFO, "removing %s, left by an interrupted run", full);
			train_rmtree(full);
		}
		free(full);
	}
	closedir(d);
}

static char *model_name(const run *r)
{
	const char *fixed = r->opt->fixed_model_name;
	if (fixed) {
		size_t l = strlen(fixed);
		if (l > 7 && !strcmp(fixed + l - 7, ".tar.gz"))
			return train_path_join(r->opt->out_dir, fixed);
		return train_strfmt("%s/%s.tar.gz", r->opt->out_dir, fixed);
	}
	char stamp[32];
	time_t now = time(NULL);
	struct tm tm;
	localtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
	char *path = train_strfmt("%s/%s-%s.tar.gz", r->opt->out_dir, stamp, r->g->recipe->name);
	for (int k = 2; path && train_path_exists(path) && k < 1000; k++) {
		free(path);
		path = train_strfmt("%s/%s-%s-%d.tar.gz", r->opt->out_dir, stamp, r->g->recipe->name, k);
	}
	return path;
}

/* ---- metadata, report, dot -------------------------------------------------- */

static json_t *needs_json(const train_graph *g, const train_gnode *n)
{
	json_t *o = json_object();
	for (size_t e = 0; e < n->n_in; e++) {
		char *ref = n->in[e].from == SIZE_MAX
		                ? train_strfmt("$input.%s", n->in[e].output)
		                : train_strfmt("%s.%s", g->nodes[n->in[e].from].rn->name, n->in[e].output);
		json_object_set_new(o, n->in[e].input, json_string(ref ? ref : ""));
		free(ref);
	}
	return o;
}

static json_t *node_json(const train_graph *g, const train_gnode *n)
{
	char hex[TRAIN_FP_HEX];
	char *flow = NULL;
	train_config_to_flow(n->config, &flow);
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(n->rn->name));
	json_object_set_new(o, "component", json_string(n->cls->name));
	json_object_set_new(o, "component_version", json_string(n->cls->version));
	json_object_set_new(o, "plugin", json_string(n->plugin ? n->plugin->desc->name : ""));
	json_object_set_new(o, "config", json_string(flow ? flow : "{}"));
	json_object_set_new(o, "config_fingerprint", json_string(train_fp_hex(n->config_fp, hex)));
	json_object_set_new(o, "needs", needs_json(g, n));
	free(flow);
	return o;
}

static int make_metadata(const run *r, const train_graph *pg, char **out)
{
	char hex[TRAIN_FP_HEX];
	const train_graph *g = r->g;
	json_t *m = json_object();
	json_object_set_new(m, "format", json_integer(METADATA_FORMAT));
	json_object_set_new(m, "libtrain_version", json_string(train_version()));
	char abi[32];
	snprintf(abi, sizeof abi, "%d.%d", TRAIN_ABI_MAJOR, TRAIN_ABI_MINOR);
	json_object_set_new(m, "plugin_abi", json_string(abi));
	char stamp[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(m, "created", json_string(stamp));
	json_object_set_new(m, "training_type",
	                    json_string(r->opt->training_type ? r->opt->training_type : "recipe"));
	json_object_set_new(m, "recipe", json_string(g->recipe->name));
	if (r->opt->finetune_model)
		json_object_set_new(m, "finetuned_from", json_string(r->opt->finetune_model));

	json_t *nodes = json_array(), *plugins = json_object();
	for (size_t i = 0; i < g->n; i++) {
		const train_gnode *n = &g->nodes[i];
		if (!n->needed)
			continue;
		json_t *o = node_json(g, n);
		json_object_set_new(o, "fingerprint", json_string(train_fp_hex(r->st[i].fp, hex)));
		json_object_set_new(o, "target", json_boolean(n->rn->is_target));
		json_array_append_new(nodes, o);
		if (n->plugin && !json_object_get(plugins, n->plugin->desc->name))
			json_object_set_new(plugins, n->plugin->desc->name,
			                    json_string(n->plugin->desc->version));
	}
	json_object_set_new(m, "nodes", nodes);

	json_t *pred = json_null();
	if (pg) {
		pred = json_object();
		json_t *ins = json_array(), *tg = json_array(), *pn = json_array();
		for (size_t k = 0; k < pg->schema->n_inputs; k++)
			json_array_append_new(ins, json_string(pg->schema->inputs[k]));
		for (size_t k = 0; k < pg->n; k++) {
			const train_gnode *n = &pg->nodes[pg->order[k]];
			if (!n->needed)
				continue;
			json_t *o = node_json(pg, n);
			json_object_set_new(o, "resource", n->rn->resource ? json_string(n->rn->resource)
			                                                   : json_null());
			json_array_append_new(pn, o);
			if (n->rn->is_target)
				json_array_append_new(tg, json_string(n->rn->name));
			if (n->plugin && !json_object_get(plugins, n->plugin->desc->name))
				json_object_set_new(plugins, n->plugin->desc->name,
				                    json_string(n->plugin->desc->version));
		}
		json_object_set_new(pred, "inputs", ins);
		json_object_set_new(pred, "targets", tg);
		json_object_set_new(pred, "nodes", pn);
	}
	json_object_set_new(m, "plugins", plugins);
	json_object_set_new(m, "predict", pred);

	*out = json_dumps(m, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(m);
	return *out ? TRAIN_OK : TRAIN_ENOMEM;
}

static int cmp_node_name(const void *a, const void *b, void *g)
{
	const train_graph *gr = g;
	return strcmp(gr->nodes[*(const size_t *)a].rn->name, gr->nodes[*(const size_t *)b].rn->name);
}

/* The model: metadata plus each needed node's state blob, by node name. */
static int write_model(const run *r, const train_graph *pg, const char *path, train_error *err)
{
	char *meta = NULL;
	size_t n = 0, *idx = malloc((r->g->n ? r->g->n : 1) * sizeof *idx);
	const char **names = malloc((r->g->n ? r->g->n : 1) * sizeof *names);
	const void **blobs = malloc((r->g->n ? r->g->n : 1) * sizeof *blobs);
	size_t *sizes = malloc((r->g->n ? r->g->n : 1) * sizeof *sizes);
	int rc = idx && names && blobs && sizes ? make_metadata(r, pg, &meta) : TRAIN_ENOMEM;
	for (size_t i = 0; !rc && i < r->g->n; i++)
		if (r->g->nodes[i].needed)
			idx[n++] = i;
	if (!rc)
		qsort_r(idx, n, sizeof *idx, cmp_node_name, r->g);
	for (size_t k = 0; !rc && k < n; k++) {
		const train_value *v = train_values_get(r->st[idx[k]].outputs, RESOURCE_OUTPUT);
		if (!v) {
			rc = train_error_set(err, TRAIN_ECORRUPT, NULL, 0, 0, "node '%s' has no state",
			                     r->g->nodes[idx[k]].rn->name);
			break;
		}
		names[k] = r->g->nodes[idx[k]].rn->name;
		blobs[k] = train_value_data(v);
		sizes[k] = train_value_size(v);
	}
	if (!rc)
		rc = train_package_write_parts(path, meta, strlen(meta), names, blobs, sizes, n, err);
	free(meta);
	free(idx);
	free(names);
	free(blobs);
	free(sizes);
	return rc;
}

/* The numbers and booleans of a node's JSON output, as "key" or
 * "key.sub" (one level of nesting: Mamba's "best": {"step", "loss"});
 * lists (loss curves) are left out. */
static void metrics_add(json_t *dst, const char *prefix, json_t *src, int depth)
{
	const char *k;
	json_t *v;
	json_object_foreach(src, k, v) {
		char *key = prefix ? train_strfmt("%s.%s", prefix, k) : train_strdup(k);
		if (!key)
			return;
		if (json_is_number(v) || json_is_boolean(v))
			json_object_set(dst, key, v);
		else if (json_is_object(v) && depth < 1)
			metrics_add(dst, key, v, depth + 1);
		free(key);
	}
}

#define METRICS_MAX_BYTES (1u << 20)

/* Every needed node's metrics, for the report (and a pipeline's manifest):
 * its output named "metrics" (application/json) as it is (a reward
 * model's held-out accuracy, RLHF), else the numbers of its outputs of
 * type application/json (Mamba's loss log, PPO's and BertClassifier's
 * reports, DataCheck's summary), by output name when it has several.
 * Nodes that did not finish have none. */
static void collect_metrics(run *r)
{
	if (r->metrics || !r->g || !r->st || !(r->metrics = json_object()))
		return;
	for (size_t i = 0; i < r->g->n; i++) {
		const train_values *out = r->st[i].outputs;
		if (!r->g->nodes[i].needed || !out)
			continue;
		const train_value *mv = train_values_get(out, "metrics");
		if (mv && !strcmp(train_value_type(mv), "application/json")) {
			json_t *j = json_loadb(train_value_data(mv), train_value_size(mv), 0, NULL);
			if (j)
				json_object_set_new(r->metrics, r->g->nodes[i].rn->name, j);
			continue;
		}
		json_t *m = json_object();
		size_t n_json = 0;
		for (size_t k = 0; k < train_values_len(out); k++)
			n_json += !strcmp(train_value_type(train_values_at(out, k)), "application/json");
		for (size_t k = 0; m && k < train_values_len(out); k++) {
			const train_value *v = train_values_at(out, k);
			if (strcmp(train_value_type(v), "application/json") ||
			    train_value_size(v) > METRICS_MAX_BYTES)
				continue;
			json_t *j = json_loadb(train_value_data(v), train_value_size(v), 0, NULL);
			if (json_is_object(j))
				metrics_add(m, n_json > 1 ? train_values_name_at(out, k) : NULL, j, 0);
			json_decref(j);
		}
		if (m && json_object_size(m))
			json_object_set_new(r->metrics, r->g->nodes[i].rn->name, m);
		else
			json_decref(m);
	}
}

static int write_report(const train_run_options *opt, const train_run_result *res, int dry,
                        const json_t *metrics, train_error *err)
{
	json_t *o = json_object();
	json_object_set_new(o, "recipe", json_string(opt->recipe_path));
	json_object_set_new(o, "dry_run", json_boolean(dry));
	json_object_set_new(o, "model", res->model_path ? json_string(res->model_path) : json_null());
	json_object_set_new(o, "seconds", json_real(res->seconds));
	json_object_set_new(o, "trained", json_integer((json_int_t)res->n_trained));
	json_object_set_new(o, "cached", json_integer((json_int_t)res->n_cached));
	json_object_set_new(o, "pruned", json_integer((json_int_t)res->n_pruned));
	if (dry)
		json_object_set_new(o, "dry_run_flags", json_integer(res->dry_flags));
	json_t *nodes = json_array();
	for (size_t i = 0; i < res->n_nodes; i++) {
		const train_node_result *n = &res->nodes[i];
		json_t *x = json_object();
		json_object_set_new(x, "name", json_string(n->name));
		json_object_set_new(x, "component", json_string(n->component));
		json_object_set_new(x, "fingerprint", json_string(n->fingerprint));
		json_object_set_new(x, "status", json_string(train_node_status_name(n->status)));
		json_object_set_new(x, "seconds", json_real(n->seconds));
		json_t *m = json_object_get(metrics, n->name);
		if (m)
			json_object_set(x, "metrics", m);
		json_array_append_new(nodes, x);
	}
	json_object_set_new(o, "nodes", nodes);
	char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!text)
		return TRAIN_ENOMEM;
	train_buf b = { 0 };
	int rc = train_buf_str(&b, text);
	if (!rc)
		rc = train_buf_str(&b, "\n");
	free(text);
	if (!rc)
		rc = train_write_file_atomic(opt->report_path, b.data, b.len, err);
	train_buf_free(&b);
	return rc;
}

static int write_dot(const char *path, const train_graph *g, const train_run_result *res,
                     train_error *err)
{
	static const char *const color[] = { "orange", "palegreen", "lightgrey", "red", "white" };
	train_buf b = { 0 };
	int rc = train_buf_printf(&b, "digraph \"%s\" {\n  rankdir=LR;\n  node [shape=box, style=filled];\n",
	                          g->recipe->name);
	for (size_t i = 0; i < g->n && !rc; i++) {
		train_node_status s = res->nodes[i].status;
		rc = train_buf_printf(&b, "  \"%s\" [label=\"%s\\n%s\\n%s\", fillcolor=%s];\n",
		                      g->nodes[i].rn->name, g->nodes[i].rn->name, g->nodes[i].cls->name,
		                      train_node_status_name(s), color[s]);
		for (size_t e = 0; e < g->nodes[i].n_in && !rc; e++)
			rc = train_buf_printf(&b, "  \"%s\" -> \"%s\" [label=\"%s\"];\n",
			                      g->nodes[g->nodes[i].in[e].from].rn->name, g->nodes[i].rn->name,
			                      g->nodes[i].in[e].input);
	}
	if (!rc)
		rc = train_buf_str(&b, "}\n");
	if (!rc)
		rc = train_write_file_atomic(path, b.data, b.len, err);
	train_buf_free(&b);
	return rc;
}

/* ---- finetune ------------------------------------------------------------- */

/*
 * A model can be finetuned only by the same graph: the same nodes, each
 * with the same component, config (epochs aside) and inputs.
 */
static int finetune_check(const run *r, const char *model, const char *meta_text,
                          train_error *err)
{
	json_error_t jerr;
	json_t *m = json_loads(meta_text, 0, &jerr);
	json_t *nodes = m ? json_object_get(m, "nodes") : NULL;
	int rc = TRAIN_OK;
	if (!json_is_array(nodes)) {
		rc = train_error_set(err, TRAIN_EPARSE, model, 0, 0, "metadata.json has no node list");
		goto out;
	}
	size_t needed = 0;
	for (size_t i = 0; i < r->g->n; i++) {
		const train_gnode *n = &r->g->nodes[i];
		if (!n->needed)
			continue;
		needed++;
		json_t *o = NULL, *x;
		size_t k;
		json_array_foreach(nodes, k, x)
			if (json_is_string(json_object_get(x, "name")) &&
			    !strcmp(json_string_value(json_object_get(x, "name")), n->rn->name))
				o = x;
		const char *what = NULL;
		char hex[TRAIN_FP_HEX];
		if (!o)
			what = "is not in the model";
		else if (!json_is_string(json_object_get(o, "component")) ||
		         strcmp(json_string_value(json_object_get(o, "component")), n->cls->name))
			what = "has another component";
		else if (!json_is_string(json_object_get(o, "config_fingerprint")) ||
		         strcmp(json_string_value(json_object_get(o, "config_fingerprint")),
		                train_fp_hex(n->config_fp, hex)))
			what = "has another config (only epochs may change)";
		else {
			json_t *mine = needs_json(r->g, n);
			if (!json_equal(mine, json_object_get(o, "needs")))
				what = "has other inputs";
			json_decref(mine);
		}
		if (what) {
			rc = train_error_set(err, TRAIN_EMISMATCH, model, 0, 0,
			                     "cannot finetune this model: node '%s' %s", n->rn->name, what);
			goto out;
		}
	}
	if (json_array_size(nodes) != needed)
		rc = train_error_set(err, TRAIN_EMISMATCH, model, 0, 0,
		                     "cannot finetune this model: it has %zu nodes, the recipe %zu",
		                     json_array_size(nodes), needed);
out:
	json_decref(m);
	return rc;
}

/*
 * A dry run walks the graph in order without training: a node whose
 * producers all come from the cache can be fingerprinted and looked up; a
 * node downstream of one that would train would train too, as far as
 * anyone can say without running it (its fingerprint stays unknown).
 */
static int dry_plan(run *r, bool *any_train, train_error *err)
{
	for (size_t k = 0; k < r->g->n; k++) {
		size_t i = r->g->order[k];
		const train_gnode *n = &r->g->nodes[i];
		node_state *s = &r->st[i];
		if (!n->needed)
			continue;
		s->status = TRAIN_NODE_TRAINED;
		bool known = true;
		for (size_t e = 0; e < n->n_in; e++)
			known &= n->in[e].from == SIZE_MAX || r->st[n->in[e].from].outputs != NULL;
		if (!known)
			continue;
		int rc = fingerprint_node(r, i, err);
		if (rc)
			return rc;
		if (r->opt->force || r->salt)
			continue;
		if (train_cache_lookup(r->cache, s->fp, &s->outputs, NULL) == TRAIN_OK)
			s->status = TRAIN_NODE_CACHED;
	}
	*any_train = false;
	for (size_t i = 0; i < r->g->n; i++)
		*any_train |= r->st[i].status == TRAIN_NODE_TRAINED;
	return TRAIN_OK;
}

/* ---- the run -------------------------------------------------------------- */

static int fill_result(run *r, train_run_result *res)
{
	const train_graph *g = r->g;
	res->nodes = calloc(g->n ? g->n : 1, sizeof *res->nodes);
	if (!res->nodes)
		return TRAIN_ENOMEM;
	res->n_nodes = g->n;
	res->n_trained = res->n_cached = res->n_pruned = 0;
	for (size_t k = 0; k < g->n; k++) {
		const train_gnode *n = &g->nodes[k];
		train_node_result *x = &res->nodes[k];
		x->name = train_strdup(n->rn->name);
		x->component = train_strdup(n->cls->name);
		if (!x->name || !x->component)
			return TRAIN_ENOMEM;
		if (r->st[k].fp_known)
			train_fp_hex(r->st[k].fp, x->fingerprint);
		else
			x->fingerprint[0] = '\0'; /* a dry run cannot know it */
		x->status = r->st[k].status;
		x->seconds = r->st[k].seconds;
		res->n_trained += x->status == TRAIN_NODE_TRAINED;
		res->n_cached += x->status == TRAIN_NODE_CACHED;
		res->n_pruned += x->status == TRAIN_NODE_PRUNED;
	}
	return TRAIN_OK;
}

static int default_threads(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

int train_run(train_registry *reg, const train_run_options *opt, train_run_result *res,
              train_error *err)
{
	/* A target's settings: its file and --set (only read from callers
	 * whose struct_size covers them). */
	train_config *settings = NULL;
	memset(res, 0, sizeof *res);
	/* A pipeline (`stages:`) runs each stage as a run of its own. */
	if (train_pipeline_detect(opt->recipe_path))
		return train_run_pipeline(reg, opt, NULL, res, err);
	if (opt->recipe_path) {
		int rc = train_settings_load(opt, &settings, err);
		if (rc)
			return rc;
	}
	int rc = train_run_settings(reg, opt, settings, true, NULL, res, NULL, err);
	train_config_destroy(settings);
	return rc;
}

int train_run_settings(train_registry *reg, const train_run_options *opt,
                       const train_config *settings, bool check_settings,
                       const train_stage_run *stage, train_run_result *res, json_t **metrics,
                       train_error *err)
{
	int rc = TRAIN_OK;
	double t0 = train_now();
	train_recipe *recipe = NULL;
	train_graph *pg = NULL;
	char *model_path = NULL, *meta = NULL;
	run R = { 0 };
	run *r = &R;
	memset(res, 0, sizeof *res);
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	r->opt = opt;
	r->log = opt->log;
	r->threads = opt->threads > 0 ? opt->threads : default_threads();
	r->tty = !opt->log && opt->verbosity == TRAIN_NORMAL && isatty(STDERR_FILENO);
	if (!opt->log) {
		static const train_log_level by_verbosity[] = { TRAIN_LOG_ERROR, TRAIN_LOG_INFO,
		                                                TRAIN_LOG_DEBUG };
		r->sink = r->tty ? tty_sink : (train_log_sink){ NULL, NULL, TRAIN_LOG_INFO };
		r->sink.max_level = by_verbosity[opt->verbosity <= TRAIN_VERBOSE ? opt->verbosity : 2];
		r->log = &r->sink;
	}

	if (!opt->recipe_path) {
		rc = train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "no recipe given");
		goto out;
	}
	if ((rc = train_recipe_load(opt->recipe_path, &recipe, err)))
		goto out;
	if ((rc = train_target_apply(recipe, settings, check_settings, r->log, err)))
		goto out;
	if ((rc = train_graph_build(recipe, &recipe->train, reg, &r->g, err)))
		goto out;
	if (recipe->predict.present &&
	    (rc = train_graph_build(recipe, &recipe->predict, reg, &pg, err)))
		goto out;

	train_ctx_init(&r->proto, NULL, r->log, 1, recipe->base_dir);
	r->proto.data_path = opt->data_path;
	r->proto.domain_path = opt->domain_path;
	r->proto.cancel = opt->cancel;
	r->proto.verbose_progress = opt->verbosity >= TRAIN_VERBOSE;
	{
		/* The progress stream (added after settings_path). */
		const char *progress_path =
			opt->struct_size >= offsetof(train_run_options, progress_path) + sizeof(char *)
				? opt->progress_path : NULL;
		if (progress_path && !opt->dry_run) {
			if (!(r->progress.f = fopen(progress_path, "ae"))) {
				rc = train_error_set(err, TRAIN_EIO, progress_path, 0, 0,
				                     "cannot open the progress stream: %s", strerror(errno));
				goto out;
			}
			pthread_mutex_init(&r->progress.mu, NULL);
			r->progress.t0 = stage ? stage->t0 : t0;
			r->proto.progress = &r->progress;
		}
	}
	r->proto.reg = reg;
	if (opt->struct_size >= offsetof(train_run_options, resume) + sizeof opt->resume)
		r->resume = opt->resume;

	if (opt->finetune_model) {
		size_t size;
		train_error merr = { 0 };
		rc = train_package_read_member(opt->finetune_model, "metadata.json", &meta, &size, &merr);
		if (rc) {
			rc = train_error_set(err, rc, opt->finetune_model, 0, 0, "cannot read the model: %s",
			                     merr.text);
			goto out;
		}
		train_fp mfp = train_fp_of(meta, size);
		char hex[TRAIN_FP_HEX];
		r->salt = train_strfmt("finetune %s %.17g", train_fp_hex(mfp, hex), opt->epoch_fraction);
		if (!r->salt) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
	}
	r->vars = (train_graph_vars){ opt->data_path, opt->domain_path };
	if (meta && (rc = finetune_check(r, opt->finetune_model, meta, err)))
		goto out;

	char *cache_dir = train_cache_default_dir(opt->cache_dir);
	if (!cache_dir) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	rc = train_cache_open(cache_dir, 0, r->log, &r->cache, err);
	if (!rc && !opt->dry_run && !(r->ckpt_root = train_strfmt("%s/checkpoints", cache_dir)))
		rc = TRAIN_ENOMEM;
	free(cache_dir);
	if (rc)
		goto out;

	r->st = calloc(r->g->n ? r->g->n : 1, sizeof *r->st);
	if (!r->st) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < r->g->n; i++)
		if (!r->g->nodes[i].needed)
			r->st[i].status = TRAIN_NODE_PRUNED;

	if (opt->dry_run) {
		bool any_train = false;
		if ((rc = dry_plan(r, &any_train, err)))
			goto out;
		collect_metrics(r); /* of the nodes the cache holds */
		res->dry_flags = (any_train ? TRAIN_DRY_RETRAIN : 0) |
		                 (dir_has_model(opt->out_dir) ? 0 : TRAIN_DRY_NO_MODEL) |
		                 (opt->force ? TRAIN_DRY_FORCED : 0);
		if ((rc = fill_result(r, res)))
			goto out;
		goto report;
	}

	/* Every needed node will be trained or restored: mark them skipped
	 * until they are, so a failed run reports the truth. */
	for (size_t i = 0; i < r->g->n; i++)
		if (r->g->nodes[i].needed)
			r->st[i].status = TRAIN_NODE_SKIPPED;
	if ((rc = train_mkdirs(opt->out_dir, err)))
		goto out;
	clean_stale(opt->out_dir, opt->log);
	clean_stale(train_tmpdir(), opt->log);
	/* Staging lives outside the output folder, so that models/ never holds
	 * anything but whole models (and, for a moment, a temporary archive). */
	char prefix[64];
	snprintf(prefix, sizeof prefix, "train-staging-%ld-", (long)getpid());
	if ((rc = train_mkdtemp(NULL, prefix, &r->staging, err)))
		goto out;
	if (meta) {
		if ((rc = train_mkdtemp(NULL, prefix, &r->finetune_dir, err)) ||
		    (rc = train_package_extract(opt->finetune_model, r->finetune_dir, err)))
			goto out;
	}
	rc = run_pool(r);
	collect_metrics(r);
	if (rc) {
		fill_result(r, res);
		*err = r->ferr;
		if (!err->text[0])
			train_error_set(err, rc, NULL, 0, 0, "%s", train_strerror(rc));
		goto out;
	}
	model_path = model_name(r);
	if (!model_path) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	if ((rc = write_model(r, pg, model_path, err)))
		goto out;
	res->model_path = model_path;
	model_path = NULL;
	if ((rc = fill_result(r, res)))
		goto out;
	logi(r, "trained %zu, cached %zu, pruned %zu nodes in %.3fs; model: %s", res->n_trained,
	     res->n_cached, res->n_pruned, train_now() - t0, res->model_path);
report:
	res->seconds = train_now() - t0;
	if (opt->report_path && (rc = write_report(opt, res, opt->dry_run, r->metrics, err)))
		goto out;
	if (opt->dot_path && (rc = write_dot(opt->dot_path, r->g, res, err)))
		goto out;
out:
	if (r->progress.f && stage) {
		fclose(r->progress.f); /* the pipeline writes the one "end" */
		pthread_mutex_destroy(&r->progress.mu);
	} else if (r->progress.f) {
		char why[1100];
		size_t len = 0;
		if (rc)
			train_json_str(why, sizeof why, &len, err->text[0] ? err->text : train_strerror(rc));
		train_progress_emit(&r->progress, "\"event\": \"end\", \"status\": \"%s\"%s%s",
		                    !rc ? "ok" : rc == TRAIN_ECANCELED ? "canceled" : "failed",
		                    rc ? ", \"error\": " : "", rc ? why : "");
		fclose(r->progress.f);
		pthread_mutex_destroy(&r->progress.mu);
	}
	if (rc && opt->report_path && res->nodes) {
		res->seconds = train_now() - t0;
		write_report(opt, res, opt->dry_run, r->metrics, NULL);
	}
	if (metrics && !rc) {
		*metrics = r->metrics;
		r->metrics = NULL;
	}
	json_decref(r->metrics);
	if (r->cache) {
		train_cache_flush(r->cache, NULL);
		train_cache_close(r->cache);
	}
	if (r->st)
		for (size_t i = 0; i < r->g->n; i++)
			train_values_destroy(r->st[i].outputs);
	if (r->staging)
		train_rmtree(r->staging);
	if (r->finetune_dir)
		train_rmtree(r->finetune_dir);
	free(r->staging);
	free(r->finetune_dir);
	free(r->st);
	free(r->ready);
	free(model_path);
	free(meta);
	free(r->salt);
	free(r->ckpt_root);
	train_graph_destroy(r->g);
	train_graph_destroy(pg);
	train_recipe_destroy(recipe);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	return rc;
}
