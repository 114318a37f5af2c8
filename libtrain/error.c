/*
 * error.c - return codes as text, and the caller-owned error report.
 */
#include <train/common.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "0.0.0-unconfigured"
#endif

static const struct {
	int code;
	const char *text;
} errtab[] = {
	{ TRAIN_OK, "success" },
	{ TRAIN_EINVAL, "invalid argument or input" },
	{ TRAIN_ENOMEM, "out of memory" },
	{ TRAIN_EIO, "input/output error" },
	{ TRAIN_EPARSE, "parse error" },
	{ TRAIN_ECONFIG, "configuration error" },
	{ TRAIN_ENOTFOUND, "not found" },
	{ TRAIN_EEXIST, "defined more than once" },
	{ TRAIN_ECYCLE, "the graph has a cycle" },
	{ TRAIN_EPLUGIN, "plugin error" },
	{ TRAIN_EABI, "incompatible plugin ABI" },
	{ TRAIN_ECACHE, "cache error" },
	{ TRAIN_ECORRUPT, "stored data is corrupt" },
	{ TRAIN_EUNSAFE, "unsafe archive member" },
	{ TRAIN_ECOMPONENT, "a component failed" },
	{ TRAIN_ECANCELED, "interrupted" },
	{ TRAIN_EMISMATCH, "mismatch" },
	{ TRAIN_EUNSUPPORTED, "not supported" },
};

const char *train_strerror(int code)
{
	for (size_t i = 0; i < sizeof errtab / sizeof errtab[0]; i++)
		if (errtab[i].code == code)
			return errtab[i].text;
	if (code < 0 && code > -4096)
		return strerror(-code);
	return "unknown error";
}

int train_error_set(train_error *err, int code, const char *file, unsigned line, unsigned col,
                    const char *fmt, ...)
{
	if (!err)
		return code;
	err->code = code;
	snprintf(err->file, sizeof err->file, "%s", file ? file : "");
	err->line = line;
	err->col = col;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->text, sizeof err->text, fmt, ap);
	va_end(ap);
	return code;
}

char *train_error_format(const train_error *err, char *buf, size_t size)
{
	if (!size)
		return buf;
	const char *text = err->text[0] ? err->text : train_strerror(err->code);
	if (err->file[0] && err->line && err->col)
		snprintf(buf, size, "%s:%u:%u: %s", err->file, err->line, err->col, text);
	else if (err->file[0] && err->line)
		snprintf(buf, size, "%s:%u: %s", err->file, err->line, text);
	else if (err->file[0])
		snprintf(buf, size, "%s: %s", err->file, text);
	else
		snprintf(buf, size, "%s", text);
	return buf;
}

const char *train_version(void)
{
	return PACKAGE_VERSION;
}
