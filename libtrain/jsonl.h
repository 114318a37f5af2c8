/*
 * libtrain/jsonl.h - one JSON Lines line to a train_record, and a record
 * to its canonical line (private; corpus.c drives them).
 */
#ifndef TRAIN_JSONL_H
#define TRAIN_JSONL_H

#include <train/corpus.h>

#include <stdbool.h>

#include "util.h"

/* What the strings of the last decoded record live in. */
typedef struct train_jsonl {
	void *root;      /* json_t *: the line's object */
	char *metadata;  /* json_dumps of "metadata", malloc'd */
	char id[24];     /* an integer "id" as text */
	char label[24];  /* an integer "label" as text */
} train_jsonl;

/*
 * Decode `line` (`len` bytes, NUL at line[len], valid UTF-8, not blank)
 * into `rec` (kind, text, id, title, label, metadata; the caller sets
 * rec->line).  The strings live in `st` until the next decode or clear.
 * Returns TRAIN_OK, TRAIN_ENOMEM, or TRAIN_EPARSE with `why` (a message of
 * `whysize` bytes) and `*col` (1-based, 0 if none) telling what is wrong.
 */
int train_jsonl_decode(train_jsonl *st, const char *line, size_t len, train_jsonl_schema schema,
                       train_record *rec, unsigned *col, char *why, size_t whysize);
/* Free what the last decode kept. */
void train_jsonl_clear(train_jsonl *st);
/* Append the canonical line of the DOCUMENT or EXAMPLE record that `st`
 * last decoded, "\n" included, to `out`.  TRAIN_ENOMEM; TRAIN_EINVAL for a
 * LINE record. */
int train_jsonl_canonical(const train_jsonl *st, const train_record *rec, train_buf *out);

#endif
