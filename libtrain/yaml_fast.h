/*
 * libtrain/yaml_fast.h - libyaml's event stream for the plain block subset
 * of YAML that recipes and Rasa files are mostly written in, without
 * libyaml's tokenizer.
 *
 * yfast_scan() reads the whole text first and either produces every event
 * libyaml's yaml_parser_parse() would produce for it (same types, scalar
 * styles, values and start marks), or declines; on a decline the caller
 * parses with libyaml as before, so what the subset leaves out (flow
 * collections beyond one-line lists of scalars and {}, block scalars,
 * anchors, tags, rare escapes, multi-line scalars,
 * tabs, documents markers, anything libyaml would call an error) keeps
 * libyaml's reading and messages.  tests/test_config.c and
 * tests/fuzz/fuzz_config.c compare the two readings, locations included.
 */
#ifndef LIBTRAIN_YAML_FAST_H
#define LIBTRAIN_YAML_FAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	YF_STREAM_START,
	YF_STREAM_END,
	YF_DOC_START,
	YF_DOC_END,
	YF_SEQ_START,
	YF_SEQ_END,
	YF_MAP_START,
	YF_MAP_END,
	YF_SCALAR,
};

enum { YF_PLAIN, YF_SINGLE, YF_DOUBLE };

typedef struct yf_event {
	uint8_t type;          /* YF_* */
	uint8_t style;         /* scalars: YF_PLAIN, YF_SINGLE, YF_DOUBLE */
	uint32_t line, col;    /* 0-based, columns in characters (libyaml's marks) */
	const char *value;     /* scalars: into the text, not NUL-terminated */
	size_t len;
} yf_event;

typedef struct yf_events {
	yf_event *v;
	size_t n, cap;
	char **own;            /* decoded texts of escaped scalars */
	size_t n_own, cap_own;
} yf_events;

/* 1: `out` holds the events; 0: not in the subset (out is empty);
 * -1: out of memory.  Free with yfast_free() in every case. */
int yfast_scan(const char *text, size_t len, yf_events *out);
void yfast_free(yf_events *e);

/* Non-zero (the default): train_config_parse_flags() tries yfast_scan()
 * first.  Tests turn it off to compare with libyaml's reading. */
extern int train_yaml_fast;

#endif
