/*
 * fuzz_corpus.c - the plain-text corpus reader (<train/corpus.h>) from
 * memory.  The first two bytes choose the options (chunk size from 2 bytes
 * up, so that lines cross chunk boundaries everywhere; longest line; bad
 * line policy; blank lines), the rest is the file.  Beyond "no crash", it
 * checks what the header promises: records are NUL-terminated UTF-8 of
 * their stated length with rising line numbers, the buffer stays within its
 * bound, and the canonical value reads back to itself.
 */
#define FUZZ_NAME "corpus"
#include "fuzz.h"

#include <train/corpus.h>

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	train_corpus_options opt = TRAIN_CORPUS_OPTIONS_INIT;
	fuzz_options(data, &opt);
	opt.format = TRAIN_CORPUS_TEXT;
	fuzz_check_reader(data + 2, size - 2, &opt);
	return 0;
}
