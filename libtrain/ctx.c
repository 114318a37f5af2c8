/*
 * ctx.c - the context components receive: logging, failure messages,
 * progress, run settings and path resolution.
 */
#include <train/train.h>

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctx_private.h"

void train_ctx_init(train_ctx *ctx, const char *node, const train_log_sink *log, int threads,
                    const char *base_dir)
{
	memset(ctx, 0, sizeof *ctx);
	ctx->node = node;
	ctx->log = log;
	ctx->threads = threads > 0 ? threads : 1;
	ctx->epoch_fraction = 1.0;
	ctx->base_dir = base_dir ? base_dir : ".";
}

void train_log(train_ctx *ctx, train_log_level level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	train_logf(ctx ? ctx->log : NULL, level, "%s: %s", ctx && ctx->node ? ctx->node : "?", msg);
}

int train_fail(train_ctx *ctx, const char *fmt, ...)
{
	if (ctx) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(ctx->fail, sizeof ctx->fail, fmt, ap);
		va_end(ap);
	}
	return TRAIN_ECOMPONENT;
}

void train_json_str(char *buf, size_t cap, size_t *len, const char *str)
{
	size_t n = *len;
	if (n + 1 < cap)
		buf[n++] = '"';
	for (const unsigned char *p = (const unsigned char *)(str ? str : ""); *p && n + 8 < cap; p++) {
		if (*p == '"' || *p == '\\') {
			buf[n++] = '\\';
			buf[n++] = (char)*p;
		} else if (*p < 0x20) {
			n += (size_t)snprintf(buf + n, cap - n, "\\u%04x", *p);
		} else {
			buf[n++] = (char)*p;
		}
	}
	if (n + 1 < cap)
		buf[n++] = '"';
	buf[n < cap ? n : cap - 1] = '\0';
	*len = n;
}

void train_progress_emit(train_progress_sink *s, const char *fmt, ...)
{
	if (!s || !s->f)
		return;
	char body[1536];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(body, sizeof body, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&s->mu);
	/* cpu: the process's CPU seconds so far, which a loaded machine does
	 * not stretch (train check's estimates are compared with it) */
	struct timespec cpu;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	fprintf(s->f, "{\"t\": %.3f, \"cpu\": %.3f, %s}\n", train_now() - s->t0,
	        (double)cpu.tv_sec + 1e-9 * (double)cpu.tv_nsec, body);
	fflush(s->f);
	pthread_mutex_unlock(&s->mu);
}

/* One "step" event: the loss (has_loss), the learning rate (when finite)
 * and names/values (n of them) as extra metrics. */
static void progress_step(train_ctx *ctx, uint64_t done, uint64_t total, double loss, int has_loss,
                          double lr, const char *const *names, const double *values, size_t n)
{
	if (!ctx)
		return;
	if (ctx->verbose_progress) {
		if (has_loss)
			train_logf(ctx->log, TRAIN_LOG_DEBUG, "%s: %llu/%llu loss %.6g", ctx->node,
			           (unsigned long long)done, (unsigned long long)total, loss);
		else
			train_logf(ctx->log, TRAIN_LOG_DEBUG, "%s: %llu/%llu", ctx->node,
			           (unsigned long long)done, (unsigned long long)total);
	}
	if (!ctx->progress)
		return;
	char node[512], extra[1024];
	size_t len = 0, e = 0;
	train_json_str(node, sizeof node, &len, ctx->node);
	extra[0] = '\0';
	if (has_loss && isfinite(loss))
		e += (size_t)snprintf(extra + e, sizeof extra - e, ", \"loss\": %.9g", loss);
	if (isfinite(lr))
		e += (size_t)snprintf(extra + e, sizeof extra - e, ", \"lr\": %.9g", lr);
	for (size_t i = 0; i < n && names && values && e < sizeof extra; i++) {
		const char *k = names[i];
		size_t j = 0;
		while (k && ((k[j] >= 'a' && k[j] <= 'z') || (k[j] >= '0' && k[j] <= '9') || k[j] == '_'))
			j++;
		/* plain names only, no clash with the fixed keys, finite values */
		if (!k || !j || k[j] || j > 64 || !isfinite(values[i]) || !strcmp(k, "loss") ||
		    !strcmp(k, "step") || !strcmp(k, "total") || !strcmp(k, "node") ||
		    !strcmp(k, "event") || !strcmp(k, "t"))
			continue;
		e += (size_t)snprintf(extra + e, sizeof extra - e, ", \"%s\": %.9g", k, values[i]);
	}
	if (e >= sizeof extra)
		extra[0] = '\0';
	train_progress_emit(ctx->progress,
	                    "\"event\": \"step\", \"node\": %s, \"step\": %llu, \"total\": %llu%s",
	                    node, (unsigned long long)done, (unsigned long long)total, extra);
}

void train_progress(train_ctx *ctx, uint64_t done, uint64_t total)
{
	progress_step(ctx, done, total, 0, 0, NAN, NULL, NULL, 0);
}

void train_progress_loss(train_ctx *ctx, uint64_t done, uint64_t total, double loss)
{
	progress_step(ctx, done, total, loss, 1, NAN, NULL, NULL, 0);
}

void train_progress_lr(train_ctx *ctx, uint64_t done, uint64_t total, double loss, double lr)
{
	progress_step(ctx, done, total, loss, 1, lr, NULL, NULL, 0);
}

void train_progress_metrics(train_ctx *ctx, uint64_t done, uint64_t total, double loss,
                            const char *const *names, const double *values, size_t n)
{
	progress_step(ctx, done, total, loss, 1, NAN, names, values, n);
}

int train_ctx_canceled(const train_ctx *ctx)
{
	return ctx && ctx->cancel && *ctx->cancel;
}

int train_ctx_threads(const train_ctx *ctx) { return ctx ? ctx->threads : 1; }
const char *train_ctx_node(const train_ctx *ctx) { return ctx ? ctx->node : ""; }
int train_ctx_finetuning(const train_ctx *ctx) { return ctx ? ctx->finetuning : 0; }
double train_ctx_epoch_fraction(const train_ctx *ctx) { return ctx ? ctx->epoch_fraction : 1.0; }
const char *train_ctx_base_dir(const train_ctx *ctx) { return ctx ? ctx->base_dir : "."; }

static const char *var_prefix(const char *path, const char *var)
{
	size_t n = strlen(var);
	if (strncmp(path, var, n) != 0 || (path[n] != '\0' && path[n] != '/'))
		return NULL;
	return path + n;
}

char *train_resolve_path(const char *path, const char *base_dir, const char *data_path,
                         const char *domain_path)
{
	const char *rest;
	if ((rest = var_prefix(path, "$data")))
		return data_path ? train_strfmt("%s%s", data_path, rest) : NULL;
	if ((rest = var_prefix(path, "$domain")))
		return domain_path ? train_strfmt("%s%s", domain_path, rest) : NULL;
	if (path[0] == '/' || !base_dir || !strcmp(base_dir, "."))
		return train_strdup(path);
	return train_path_join(base_dir, path);
}

char *train_ctx_resolve(const train_ctx *ctx, const char *path)
{
	if (!path)
		return NULL;
	return train_resolve_path(path, ctx ? ctx->base_dir : ".", ctx ? ctx->data_path : NULL,
	                          ctx ? ctx->domain_path : NULL);
}

int train_ctx_find_env(train_ctx *ctx, const char *name, const train_env_class **cls)
{
	if (cls)
		*cls = NULL;
	if (!ctx || !ctx->reg) {
		train_fail(ctx, "no plugin registry here to find environment '%s' in",
		           name ? name : "?");
		return TRAIN_ENOTFOUND;
	}
	train_error err = { 0 };
	int rc = train_registry_find_env(ctx->reg, name, cls, NULL, &err);
	if (rc)
		snprintf(ctx->fail, sizeof ctx->fail, "%s", err.text);
	return rc;
}

const char *train_ctx_checkpoint_dir(const train_ctx *ctx) { return ctx ? ctx->checkpoint_dir : NULL; }
int train_ctx_resuming(const train_ctx *ctx) { return ctx ? ctx->resume : 0; }

int train_env_create(const train_env_class *cls, const train_config *user, int num_envs,
                     void **self, train_error *err)
{
	static const train_param none[] = { { NULL, TRAIN_PARAM_END, NULL, NULL } };
	if (self)
		*self = NULL;
	if (!cls || !self || num_envs < 1)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0,
		                       "train_env_create: no class, no out pointer or num_envs < 1");
	char what[300];
	snprintf(what, sizeof what, "environment %s", cls->name);
	train_config *cfg = NULL;
	int rc = train_config_validate(user, cls->params ? cls->params : none, what, &cfg, err);
	if (!rc) {
		rc = cls->create(cfg, num_envs, self, err);
		if (rc && err && !err->text[0])
			train_error_set(err, rc, NULL, 0, 0, "environment %s: create failed: %s", cls->name,
			                train_strerror(rc));
	}
	train_config_destroy(cfg);
	return rc;
}
