/*
 * jsonl.c - JSON Lines records: one line (a JSON object) to a document or a
 * labelled example, checked against the schema in <train/corpus.h>, and a
 * record back to its canonical line for fingerprinted values.
 *
 * The line splitting, UTF-8 checks and the bad-line policy are corpus.c's;
 * this file sees one complete, valid UTF-8 line at a time.
 */
#include <train/corpus.h>

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonl.h"

/* "a string", "an array", ... for messages about a mistyped key. */
static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number with a fraction or exponent";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	case JSON_NULL: return "null";
	}
	return "a JSON value";
}

void train_jsonl_clear(train_jsonl *st)
{
	json_decref((json_t *)st->root);
	st->root = NULL;
	free(st->metadata);
	st->metadata = NULL;
}

/* A string, or an integer as its decimal text in `buf`: the key's value as
 * text; NULL with `why` filled when the key has another type. */
static const char *string_or_int(const json_t *v, const char *key, char *buf, size_t bufsize,
                                 char *why, size_t whysize)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(buf, bufsize, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		return buf;
	}
	snprintf(why, whysize, "\"%s\" must be a string or an integer, not %s", key, json_kind(v));
	return NULL;
}

int train_jsonl_decode(train_jsonl *st, const char *line, size_t len, train_jsonl_schema schema,
                       train_record *rec, unsigned *col, char *why, size_t whysize)
{
	train_jsonl_clear(st);
	*col = 0;
	json_error_t je;
	json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	if (!root) {
#if JANSSON_VERSION_HEX >= 0x020e00
		if (json_error_code(&je) == json_error_out_of_memory)
			return TRAIN_ENOMEM;
#endif
		/* je.position counts the bytes read, the offending one included;
		 * a line has no other lines, so that is the byte column. */
		*col = je.position > 0 ? (unsigned)je.position : 1;
		/* jansson names its own flag there; say what is wrong instead. */
		if (strncmp(je.text, "\\u0000 is not allowed", 21) == 0)
			snprintf(why, whysize, "invalid JSON: \\u0000 (a NUL character) is not allowed in a string");
		else
			snprintf(why, whysize, "invalid JSON: %s", je.text);
		return TRAIN_EPARSE;
	}
	st->root = root;
	if (!json_is_object(root)) {
		*col = 1;
		snprintf(why, whysize, "a JSON object expected, not %s", json_kind(root));
		return TRAIN_EPARSE;
	}
	json_t *text = json_object_get(root, "text");
	json_t *id = json_object_get(root, "id");
	json_t *label = json_object_get(root, "label");
	bool example = schema == TRAIN_JSONL_EXAMPLES || (schema == TRAIN_JSONL_INFER && label);
	memset(rec, 0, sizeof *rec);
	if (example) {
		rec->kind = TRAIN_RECORD_EXAMPLE;
		if (!text) {
			snprintf(why, whysize, "missing key \"text\" (a labelled example has \"text\" and \"label\")");
			return TRAIN_EPARSE;
		}
		if (!label) {
			snprintf(why, whysize, "missing key \"label\" (a labelled example has \"text\" and \"label\")");
			return TRAIN_EPARSE;
		}
	} else {
		rec->kind = TRAIN_RECORD_DOCUMENT;
		if (!id) {
			snprintf(why, whysize, schema == TRAIN_JSONL_INFER
			         ? "missing key \"id\" (a document has \"id\" and \"text\"; a labelled example has \"label\")"
			         : "missing key \"id\" (a document has \"id\" and \"text\")");
			return TRAIN_EPARSE;
		}
		if (!text) {
			snprintf(why, whysize, "missing key \"text\" (a document has \"id\" and \"text\")");
			return TRAIN_EPARSE;
		}
	}
	if (!json_is_string(text)) {
		snprintf(why, whysize, "\"text\" must be a string, not %s", json_kind(text));
		return TRAIN_EPARSE;
	}
	rec->text = json_string_value(text);
	rec->text_len = json_string_length(text);
	if (id && !(rec->id = string_or_int(id, "id", st->id, sizeof st->id, why, whysize)))
		return TRAIN_EPARSE;
	if (example) {
		if (!(rec->label = string_or_int(label, "label", st->label, sizeof st->label, why, whysize)))
			return TRAIN_EPARSE;
		return TRAIN_OK;
	}
	json_t *title = json_object_get(root, "title");
	if (title && !json_is_null(title)) {
		if (!json_is_string(title)) {
			snprintf(why, whysize, "\"title\" must be a string or null, not %s", json_kind(title));
			return TRAIN_EPARSE;
		}
		rec->title = json_string_value(title);
	}
	json_t *meta = json_object_get(root, "metadata");
	if (meta && !json_is_null(meta)) {
		if (!json_is_object(meta)) {
			snprintf(why, whysize, "\"metadata\" must be an object or null, not %s", json_kind(meta));
			return TRAIN_EPARSE;
		}
		if (!(st->metadata = json_dumps(meta, JSON_COMPACT | JSON_PRESERVE_ORDER)))
			return TRAIN_ENOMEM;
		rec->metadata = st->metadata;
	}
	return TRAIN_OK;
}

/* Set a string member; json_string_nocheck: the text was checked already. */
static int put_str(json_t *o, const char *key, const char *s)
{
	json_t *v = json_string_nocheck(s);
	return v && json_object_set_new_nocheck(o, key, v) == 0 ? 0 : -1;
}

int train_jsonl_canonical(const train_jsonl *st, const train_record *rec, train_buf *out)
{
	if (rec->kind == TRAIN_RECORD_LINE)
		return TRAIN_EINVAL;
	int rc = TRAIN_ENOMEM;
	char *text = NULL;
	json_t *o = json_object();
	if (!o || put_str(o, "text", rec->text) ||
	    (rec->id && put_str(o, "id", rec->id)) ||
	    (rec->label && put_str(o, "label", rec->label)) ||
	    (rec->title && put_str(o, "title", rec->title)))
		goto out;
	if (rec->metadata) {
		json_t *meta = st->root ? json_object_get((json_t *)st->root, "metadata") : NULL;
		if (!meta || json_object_set_nocheck(o, "metadata", meta))
			goto out;
	}
	/* Sorted keys at every level and one spelling of each value: the same
	 * content always gives the same bytes, whatever the file's layout. */
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	if (!text || train_buf_str(out, text) || train_buf_add(out, "\n", 1))
		goto out;
	rc = TRAIN_OK;
out:
	free(text);
	json_decref(o);
	return rc;
}
