/*
 * ctx.c - the context components receive: logging, failure messages,
 * progress, run settings and path resolution.
 */
#include <train/plugin.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void train_progress(train_ctx *ctx, uint64_t done, uint64_t total)
{
	if (ctx && ctx->verbose_progress)
		train_logf(ctx->log, TRAIN_LOG_DEBUG, "%s: %llu/%llu", ctx->node,
		           (unsigned long long)done, (unsigned long long)total);
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
