/*
 * tests/config_same.h - are two config trees the same, places included?
 * Used to hold the fast YAML reader (libtrain/yaml_fast.c) to libyaml's
 * reading, by tests/test_config.c and tests/fuzz/fuzz_config.c.
 */
#ifndef TESTS_CONFIG_SAME_H
#define TESTS_CONFIG_SAME_H

#include <train/config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 when `a` and `b` have the same canonical form and every node (and map
 * key) the same line and column; else 0, with the first difference in
 * `why`. */
static int config_same_walk(const train_config *a, const train_config *b, char *why, size_t n)
{
	if (train_config_kind(a) != train_config_kind(b)) {
		snprintf(why, n, "kinds differ at %u:%u", train_config_line(a), train_config_col(a));
		return 0;
	}
	if (train_config_line(a) != train_config_line(b) || train_config_col(a) != train_config_col(b)) {
		snprintf(why, n, "places differ: %u:%u against %u:%u", train_config_line(a),
		         train_config_col(a), train_config_line(b), train_config_col(b));
		return 0;
	}
	train_cfg_kind k = train_config_kind(a);
	if (k != TRAIN_CFG_LIST && k != TRAIN_CFG_MAP) {
		const char *sa = train_config_as_string(a), *sb = train_config_as_string(b);
		if ((sa == NULL) != (sb == NULL) || (sa && strcmp(sa, sb) != 0)) {
			snprintf(why, n, "texts differ at %u:%u", train_config_line(a), train_config_col(a));
			return 0;
		}
		return 1;
	}
	if (train_config_len(a) != train_config_len(b)) {
		snprintf(why, n, "lengths differ at %u:%u", train_config_line(a), train_config_col(a));
		return 0;
	}
	for (size_t i = 0; i < train_config_len(a); i++) {
		if (k == TRAIN_CFG_MAP &&
		    !config_same_walk(train_config_key_node_at(a, i), train_config_key_node_at(b, i), why, n))
			return 0;
		if (!config_same_walk(train_config_at(a, i), train_config_at(b, i), why, n))
			return 0;
	}
	return 1;
}

static int config_same(const train_config *a, const train_config *b, char *why, size_t n)
{
	char *ca = NULL, *cb = NULL;
	size_t na = 0, nb = 0;
	int ok = train_config_canonical(a, &ca, &na) == 0 && train_config_canonical(b, &cb, &nb) == 0 &&
	         na == nb && memcmp(ca, cb, na) == 0;
	free(ca);
	free(cb);
	if (!ok) {
		snprintf(why, n, "canonical forms differ");
		return 0;
	}
	return config_same_walk(a, b, why, n);
}

#endif
