/*
 * plugins/common/gen.h - the generation settings a language model's process
 * call takes from its inputs (gpt2, mamba): temperature, top_k, seed and
 * max_new_tokens, each given as text; absent or "" keeps the config's.
 */
#ifndef PLUGINS_GEN_H
#define PLUGINS_GEN_H

#include <stdint.h>

#include <train/plugin.h>

typedef struct gen_opts {
	double temperature;
	int64_t top_k, seed, max_new;
} gen_opts;

/* Override o from the inputs; max_new_tokens at most max_new_limit.  A bad
 * value is train_fail() naming the input. */
int gen_opts_from_inputs(const train_values *in, gen_opts *o, int64_t max_new_limit, train_ctx *ctx);

#endif
