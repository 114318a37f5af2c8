/*
 * fuzz_jsonl.c - the JSON Lines reader (<train/corpus.h>) from memory.  The
 * first two bytes choose the options (chunk size, longest line, bad line
 * policy, schema), the rest is the file; the checks are fuzz_check.h's,
 * plus: documents have an id and examples a label, and metadata is JSON
 * text of an object.
 */
#define FUZZ_NAME "jsonl"
#include "fuzz.h"

#include <train/corpus.h>

#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	train_corpus_options opt = TRAIN_CORPUS_OPTIONS_INIT;
	fuzz_options(data, &opt);
	opt.format = TRAIN_CORPUS_JSONL;
	opt.schema = (train_jsonl_schema)(data[1] % 3);
	fuzz_check_reader(data + 2, size - 2, &opt);
	return 0;
}
