/*
 * tests/fuzz/fuzz_check.h - options from control bytes and the property
 * checks shared by the corpus and JSON Lines fuzz targets.  A broken
 * property aborts, which libFuzzer reports as a crash with its input.
 */
#ifndef TRAIN_FUZZ_CHECK_H
#define TRAIN_FUZZ_CHECK_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <train/corpus.h>

static void fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz: property broken: %s\n", what);
	abort();
}

/* c[0]: chunk size 2..65, skip_blank, policy; c[1]: longest line (1..249
 * bytes, or the default). */
static void fuzz_options(const uint8_t *c, train_corpus_options *o)
{
	o->chunk_size = 2 + (c[0] & 63u);
	o->skip_blank = (c[0] >> 6) & 1;
	o->on_bad_line = (c[0] & 128u) ? TRAIN_BAD_LINE_SKIP : TRAIN_BAD_LINE_FATAL;
	o->max_line = (c[1] & 128u) ? 0 : 1 + ((c[1] >> 2) & 31u) * 8;
}

/* Strict UTF-8, written differently from the reader's (decode, then
 * check the code point), so that the two check each other. */
static bool fuzz_utf8_ok(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i], need, cp;
		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xE0) == 0xC0) { need = 1; cp = c & 0x1F; }
		else if ((c & 0xF0) == 0xE0) { need = 2; cp = c & 0x0F; }
		else if ((c & 0xF8) == 0xF0) { need = 3; cp = c & 0x07; }
		else return false;
		if (n - i <= need)
			return false;
		for (unsigned j = 1; j <= need; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + j] & 0x3Fu);
		}
		static const unsigned min[] = { 0, 0x80, 0x800, 0x10000 };
		if (cp < min[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += need + 1;
	}
	return true;
}

/* Read everything; check each record and the reader's promises. */
static void fuzz_read_all(train_corpus *r, const train_corpus_options *opt)
{
	const train_record *rec;
	train_error err;
	uint64_t last = 0;
	size_t max_line = opt->max_line ? opt->max_line : TRAIN_CORPUS_MAX_LINE_DEFAULT;
	int rc;
	while ((rc = train_corpus_next(r, &rec, &err)) > 0) {
		if (!rec || rec->line <= last || rec->line > train_corpus_lines(r))
			fuzz_fail("record line numbers must rise");
		last = rec->line;
		if (!rec->text || strlen(rec->text) != rec->text_len)
			fuzz_fail("text must be NUL-terminated with text_len bytes");
		if (!fuzz_utf8_ok((const unsigned char *)rec->text, rec->text_len))
			fuzz_fail("text must be valid UTF-8 without NUL");
		switch (rec->kind) {
		case TRAIN_RECORD_LINE:
			if (opt->format != TRAIN_CORPUS_TEXT || rec->text_len > max_line)
				fuzz_fail("a LINE record only from text, within max_line");
			break;
		case TRAIN_RECORD_DOCUMENT:
			if (opt->format != TRAIN_CORPUS_JSONL || !rec->id || rec->label ||
			    opt->schema == TRAIN_JSONL_EXAMPLES || (rec->metadata && rec->metadata[0] != '{'))
				fuzz_fail("a document has an id, no label, object metadata");
			break;
		case TRAIN_RECORD_EXAMPLE:
			if (opt->format != TRAIN_CORPUS_JSONL || !rec->label || rec->title || rec->metadata ||
			    opt->schema == TRAIN_JSONL_DOCUMENTS)
				fuzz_fail("an example has a label and no title or metadata");
			break;
		default:
			fuzz_fail("unknown record kind");
		}
	}
	if (rec)
		fuzz_fail("no record after the end or an error");
	if (rc < 0 && rc != TRAIN_EPARSE)
		fuzz_fail("only TRAIN_EPARSE can come from memory input");
	if (rc == TRAIN_EPARSE && (opt->on_bad_line == TRAIN_BAD_LINE_SKIP || err.line == 0 ||
	                           err.line != train_corpus_lines(r) || strcmp(err.file, "fuzz")))
		fuzz_fail("a bad line is fatal only under FATAL, at the current line of 'fuzz'");
	if (rc == TRAIN_EPARSE && train_corpus_next(r, &rec, &err) != TRAIN_EPARSE)
		fuzz_fail("a spent reader repeats its error");
	size_t bound = opt->chunk_size > max_line + 2 ? opt->chunk_size : max_line + 2;
	if (train_corpus_buffer_peak(r) > bound + 1)
		fuzz_fail("the buffer grew past max(chunk_size, max_line + 2) + 1");
}

/* The corpus as a value, or NULL (a bad line under FATAL). */
static train_value *fuzz_value(const void *d, size_t n, const train_corpus_options *opt)
{
	train_corpus *r;
	train_value *v = NULL;
	if (train_corpus_open_mem(d, n, "fuzz", opt, &r, NULL))
		fuzz_fail("open_mem failed");
	int rc = train_corpus_to_value(r, &v, NULL);
	if (rc && rc != TRAIN_EPARSE)
		fuzz_fail("to_value: only TRAIN_EPARSE can come from memory input");
	if ((rc == 0) != (v != NULL))
		fuzz_fail("to_value gives a value exactly when it succeeds");
	train_corpus_close(r);
	return v;
}

static void fuzz_check_reader(const uint8_t *d, size_t n, const train_corpus_options *opt)
{
	train_corpus *r;
	if (train_corpus_open_mem(d, n, "fuzz", opt, &r, NULL))
		fuzz_fail("open_mem failed");
	fuzz_read_all(r, opt);
	train_corpus_close(r);

	/* The canonical value is a fixed point: read back (with the schema its
	 * type names, default limits, FATAL) it gives the same bytes. */
	train_value *v = fuzz_value(d, n, opt);
	if (!v)
		return;
	train_corpus_options again = TRAIN_CORPUS_OPTIONS_INIT;
	again.format = opt->format;
	const char *type = train_value_type(v);
	if (!strcmp(type, TRAIN_CORPUS_TYPE_DOCUMENTS))
		again.schema = TRAIN_JSONL_DOCUMENTS;
	else if (!strcmp(type, TRAIN_CORPUS_TYPE_EXAMPLES))
		again.schema = TRAIN_JSONL_EXAMPLES;
	else if (strcmp(type, TRAIN_CORPUS_TYPE_LINES) || opt->format != TRAIN_CORPUS_TEXT)
		fuzz_fail("value type does not match the format");
	train_value *w = fuzz_value(train_value_data(v), train_value_size(v), &again);
	if (!w || strcmp(train_value_type(w), type) || train_value_size(w) != train_value_size(v) ||
	    (train_value_size(v) &&
	     memcmp(train_value_data(w), train_value_data(v), train_value_size(v))))
		fuzz_fail("the canonical value must read back to itself");
	train_value_unref(w);
	train_value_unref(v);
}

#endif
