/*
 * plugins/common/porter.h - the Porter stemmer for English words.
 *
 * M. F. Porter, "An algorithm for suffix stripping", Program 14(3), 1980,
 * with the two changes of Porter's own reference implementation that
 * Lucene's PorterStemFilter also makes (step 2: "bli" -> "ble" in place of
 * "abli" -> "able", and "logi" -> "log").  Only words made of the letters
 * a-z are stemmed; any other word, and words of one or two letters, are
 * left as they are.
 */
#ifndef PLUGINS_COMMON_PORTER_H
#define PLUGINS_COMMON_PORTER_H

#include <stddef.h>

/* Stem w[0..len) in place; returns the stem's length (<= len). */
size_t porter_stem(char *w, size_t len);

#endif
