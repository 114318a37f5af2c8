/*
 * tests/fuzz/fuzz_rasa.h - what the Rasa reader targets share: the value
 * round trip <train/rasa.h> promises (a value decodes and encodes back to
 * the same bytes) and a check that diagnostics format.
 */
#ifndef TRAIN_FUZZ_RASA_H
#define TRAIN_FUZZ_RASA_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <train/rasa.h>

static inline void fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz: property broken: %s\n", what);
	abort();
}

/* Every diagnostic formats, with a place inside the input's lines. */
static inline void fuzz_check_diags(const train_rasa_diags *d)
{
	char line[1024];
	for (size_t i = 0; i < train_rasa_diags_len(d); i++) {
		const train_rasa_diag *g = train_rasa_diags_at(d, i);
		if (!g || !g->text || !train_rasa_diag_format(g, line, sizeof line))
			fuzz_fail("a diagnostic with text that formats");
	}
}

/* v decodes (as its own type), and the result encodes to the same bytes. */
typedef int (*fuzz_encode_fn)(const void *x, train_value **out, train_error *err);
typedef void (*fuzz_free_fn)(void *x);

static inline void fuzz_check_value(const train_value *v, fuzz_encode_fn enc, fuzz_free_fn fr)
{
	void *back = NULL;
	train_value *w = NULL;
	train_error err;
	if (train_rasa_decode(train_value_type(v), train_value_data(v), train_value_size(v), &back,
	                      &err) != TRAIN_OK) {
		fprintf(stderr, "decode: %s\n", err.text);
		fuzz_fail("a value must decode");
	}
	if (enc(back, &w, &err) != TRAIN_OK)
		fuzz_fail("a decoded value must encode");
	if (train_value_size(w) != train_value_size(v) || strcmp(train_value_type(w), train_value_type(v)) ||
	    (train_value_size(v) && memcmp(train_value_data(w), train_value_data(v), train_value_size(v))))
		fuzz_fail("decode then encode must give the same bytes");
	train_value_unref(w);
	fr(back);
}

#endif
