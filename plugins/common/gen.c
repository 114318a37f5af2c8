/*
 * plugins/common/gen.c - generation settings from process inputs.  See gen.h.
 */
#include <stdlib.h>
#include <string.h>

#include "gen.h"

/* A process input as text, or NULL when absent or "". */
static const char *in_text(const train_values *in, const char *name, char *buf, size_t n)
{
	const train_value *v = train_values_get(in, name);
	if (!v || train_value_size(v) == 0)
		return NULL;
	size_t k = train_value_size(v) < n - 1 ? train_value_size(v) : n - 1;
	memcpy(buf, train_value_data(v), k);
	buf[k] = 0;
	return buf;
}

int gen_opts_from_inputs(const train_values *in, gen_opts *o, int64_t max_new_limit, train_ctx *ctx)
{
	char buf[64], *end;
	const char *s;
	if ((s = in_text(in, "temperature", buf, sizeof buf)) &&
	    (o->temperature = strtod(s, &end), *end || !(o->temperature >= 0 && o->temperature < 1e6)))
		return train_fail(ctx, "temperature: '%s' is not a number >= 0", s);
	if ((s = in_text(in, "top_k", buf, sizeof buf)) &&
	    (o->top_k = strtoll(s, &end, 10), *end || o->top_k < 0))
		return train_fail(ctx, "top_k: '%s' is not a count >= 0", s);
	if ((s = in_text(in, "seed", buf, sizeof buf)) && (o->seed = strtoll(s, &end, 10), *end))
		return train_fail(ctx, "seed: '%s' is not an integer", s);
	if ((s = in_text(in, "max_new_tokens", buf, sizeof buf)) &&
	    (o->max_new = strtoll(s, &end, 10), *end || o->max_new < 0 || o->max_new > max_new_limit))
		return train_fail(ctx, "max_new_tokens: '%s' is not a count from 0 to %lld", s,
		                  (long long)max_new_limit);
	return TRAIN_OK;
}
