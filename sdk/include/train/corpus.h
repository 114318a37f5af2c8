/*
 * <train/corpus.h> - streaming readers for text corpora and JSON Lines.
 *
 * Two formats, one reader:
 *  - plain text (TRAIN_CORPUS_TEXT): one record per line;
 *  - JSON Lines (TRAIN_CORPUS_JSONL): one JSON object per line, either a
 *    document  {"id": "d1", "text": "...", "title": "...", "metadata": {...}}
 *    or a labelled example  {"text": "...", "label": "greet"}.
 *
 * The reader streams: it reads the file in chunks of `chunk_size` bytes
 * (1 MiB by default) into one buffer and hands out one record at a time, so
 * a corpus larger than memory is read in pieces.  A line that crosses a
 * chunk boundary is moved to the front of the buffer and completed by the
 * next read; the buffer grows only for a line longer than a chunk, and
 * never past `max_line` (+2 bytes for the line end), so memory stays below
 * max(chunk_size, max_line + 2) plus the current record whatever the size
 * of the file.  A longer line is a bad line.
 *
 * Every line is checked:
 *  - it must be valid UTF-8 (no overlong forms, no surrogates, nothing
 *    above U+10FFFF) and hold no NUL byte;
 *  - "\r\n" ends a line like "\n" does (and any more '\r' just before the
 *    line end are dropped too, so a text never ends in '\r'); the last
 *    line needs no line end; a UTF-8 byte order mark at the start of the
 *    file is dropped;
 *  - JSON Lines: each non-blank line is one JSON object (duplicate keys
 *    refused; "\u0000" refused) that fits the schema below; blank lines
 *    (spaces, tabs and '\r' only) are passed over and are not records.
 *
 * A line that fails a check is a *bad line*, reported as file:line (and the
 * column where one is known) with what is wrong, e.g.
 *     data.jsonl:7:12: invalid JSON: ']' expected near '}'
 *     data.jsonl:9: "label" must be a string or an integer, not an array
 *     big.txt:3: line longer than the maximum of 1048576 bytes
 *     notes.txt:5:17: invalid UTF-8 (byte 0xC3 starts a sequence it does not finish)
 * With on_bad_line = TRAIN_BAD_LINE_FATAL (the default) the reader stops at
 * the first one and returns its error; with TRAIN_BAD_LINE_SKIP it passes
 * over the line (telling `on_skip`, when set), counts it and goes on.
 *
 * JSON Lines schema.  Strings must be JSON strings; "id" and "label" may
 * also be integers (given as their decimal text).  Other keys are ignored.
 *  - document: "id" (required), "text" (required), "title" (optional,
 *    string or null), "metadata" (optional, object or null);
 *  - example: "text" (required), "label" (required), "id" (optional).
 * The caller names the schema, or lets the reader infer it line by line
 * (TRAIN_JSONL_INFER): a line with a "label" key is an example, otherwise a
 * document.
 *
 * Lifecycle:
 *     train_corpus_options opt = TRAIN_CORPUS_OPTIONS_INIT;
 *     opt.format = TRAIN_CORPUS_JSONL;
 *     train_corpus *r;
 *     const train_record *rec;
 *     if ((rc = train_corpus_open(path, &opt, &r, &err)) == 0) {
 *         while ((rc = train_corpus_next(r, &rec, &err)) > 0)
 *             use(rec->text, rec->label);
 *         train_corpus_close(r);
 *     }
 * train_corpus_close() accepts NULL and a reader that failed part-way.
 * A reader is not thread-safe; different readers are independent.
 *
 * Values for the graph.  train_corpus_to_value() reads a whole corpus into
 * one train_value in a canonical form, so that its fingerprint depends on
 * the content and not on line ends, key order or JSON spelling:
 *  - TRAIN_CORPUS_TYPE_LINES: each line's text followed by "\n" (and a
 *    byte order mark first if the first line begins with U+FEFF, which
 *    reading would drop otherwise);
 *  - TRAIN_CORPUS_TYPE_DOCUMENTS, TRAIN_CORPUS_TYPE_EXAMPLES: JSON Lines,
 *    one compact object per record with its keys sorted (metadata objects
 *    included), ids and labels as strings, absent or null title and
 *    metadata left out, e.g.  {"id":"7","text":"hi"}  and
 *    {"label":"greet","text":"hi"}.
 * A component reads such a value back with train_corpus_open_mem() on its
 * bytes (format TRAIN_CORPUS_JSONL or TRAIN_CORPUS_TEXT).
 */
#ifndef TRAIN_CORPUS_H
#define TRAIN_CORPUS_H

#include <train/common.h>
#include <train/value.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Content types of the values train_corpus_to_value() makes. @{ */
#define TRAIN_CORPUS_TYPE_LINES     "application/vnd.train.lines"
#define TRAIN_CORPUS_TYPE_DOCUMENTS "application/vnd.train.documents"
#define TRAIN_CORPUS_TYPE_EXAMPLES  "application/vnd.train.examples"
/** @} */

/** Default read size and longest line. @{ */
#define TRAIN_CORPUS_CHUNK_DEFAULT ((size_t)1 << 20)    /* 1 MiB */
#define TRAIN_CORPUS_MAX_LINE_DEFAULT ((size_t)8 << 20) /* 8 MiB */
/** @} */

typedef enum train_corpus_format {
	TRAIN_CORPUS_AUTO = 0, /**< JSON Lines if the name ends in .jsonl or
	                            .ndjson (any case), plain text otherwise */
	TRAIN_CORPUS_TEXT,     /**< one record per line */
	TRAIN_CORPUS_JSONL,    /**< one JSON object per line */
} train_corpus_format;

typedef enum train_jsonl_schema {
	TRAIN_JSONL_INFER = 0, /**< per line: "label" present -> example, else document */
	TRAIN_JSONL_DOCUMENTS, /**< every line is a document */
	TRAIN_JSONL_EXAMPLES,  /**< every line is a labelled example */
} train_jsonl_schema;

typedef enum train_bad_line {
	TRAIN_BAD_LINE_FATAL = 0, /**< stop at the first bad line with its error */
	TRAIN_BAD_LINE_SKIP,      /**< pass over it, count it, tell on_skip */
} train_bad_line;

/**
 * Reader options.  Zero (or TRAIN_CORPUS_OPTIONS_INIT) is the default for
 * every field; new fields are only ever appended and default to zero.
 */
typedef struct train_corpus_options {
	train_corpus_format format;   /**< how to read; default AUTO */
	train_jsonl_schema schema;    /**< JSON Lines only; default INFER */
	train_bad_line on_bad_line;   /**< default FATAL */
	size_t chunk_size;            /**< bytes per read; 0: TRAIN_CORPUS_CHUNK_DEFAULT */
	size_t max_line;              /**< longest line in bytes, line end not counted;
	                                   0: TRAIN_CORPUS_MAX_LINE_DEFAULT */
	int skip_blank;               /**< plain text: pass over empty lines (and
	                                   lines of spaces, tabs and '\r') instead
	                                   of returning them as records */
	/** Called for each bad line passed over (SKIP only), with its report;
	 *  may be NULL.  `why` is only valid during the call. */
	void (*on_skip)(void *ud, const train_error *why);
	void *ud;                     /**< passed to on_skip */
} train_corpus_options;

#define TRAIN_CORPUS_OPTIONS_INIT { TRAIN_CORPUS_AUTO, TRAIN_JSONL_INFER, TRAIN_BAD_LINE_FATAL, 0, 0, 0, NULL, NULL }

typedef enum train_record_kind {
	TRAIN_RECORD_LINE = 0, /**< a line of a plain-text corpus */
	TRAIN_RECORD_DOCUMENT, /**< a JSON Lines document */
	TRAIN_RECORD_EXAMPLE,  /**< a JSON Lines labelled example */
} train_record_kind;

/**
 * One record, borrowed from the reader: every pointer stays valid until the
 * next train_corpus_next() or train_corpus_close().  Strings are
 * NUL-terminated valid UTF-8 without NUL bytes; absent fields are NULL.
 */
typedef struct train_record {
	train_record_kind kind;
	uint64_t line;        /**< 1-based line number in the file */
	const char *text;     /**< the line (LINE, without its line end) or "text" */
	size_t text_len;      /**< strlen(text) */
	const char *id;       /**< DOCUMENT: "id"; EXAMPLE: "id" or NULL */
	const char *title;    /**< DOCUMENT: "title" or NULL */
	const char *label;    /**< EXAMPLE: "label" */
	const char *metadata; /**< DOCUMENT: "metadata" as compact JSON text
	                           (keys in file order), or NULL */
} train_record;

typedef struct train_corpus train_corpus;

/**
 * Open a file for reading.  Nothing is read until train_corpus_next().
 * @param[in] path  the file; also the name in error reports
 * @param[in] opt   options, or NULL for the defaults (copied; the reader
 *                  keeps no pointer to `opt` itself)
 * @param[out] out  the reader, or NULL on error
 * Errors: -errno if the file cannot be opened (e.g. -ENOENT), with err's
 * file set; TRAIN_EINVAL for a bad argument (NULL path or out, an unknown
 * format, schema or policy, a chunk size under 2 bytes); TRAIN_ENOMEM.
 */
TRAIN_API int train_corpus_open(const char *path, const train_corpus_options *opt,
                                train_corpus **out, train_error *err);

/**
 * Open a reader over `size` bytes in memory (read in chunks like a file,
 * so the same limits and reports apply).  The bytes are not copied: they
 * must stay unchanged until the reader is closed.
 * @param[in] name  the file name for reports and for format AUTO (NULL: "")
 * Errors: TRAIN_EINVAL (as above, or `data` NULL with `size` > 0), TRAIN_ENOMEM.
 */
TRAIN_API int train_corpus_open_mem(const void *data, size_t size, const char *name,
                                    const train_corpus_options *opt, train_corpus **out,
                                    train_error *err);

/**
 * The next record.
 * @param[out] rec  the record (borrowed, see train_record); NULL at the end
 * @return 1 with a record, 0 at the end of the input, or a negative error:
 *  - TRAIN_EPARSE  a bad line (FATAL policy): invalid UTF-8, a NUL byte,
 *    a line over max_line, invalid JSON, not an object, a missing or
 *    mistyped key; err has file, line and (where known) column;
 *  - -errno or TRAIN_EIO  the file could not be read;
 *  - TRAIN_ENOMEM.
 * After an error the reader is spent: further calls return the same code
 * (and fill err again).
 */
TRAIN_API int train_corpus_next(train_corpus *r, const train_record **rec, train_error *err);

/** Close the reader and its file.  NULL is fine. */
TRAIN_API void train_corpus_close(train_corpus *r);

/** Lines read so far (blank and bad lines included). */
TRAIN_API uint64_t train_corpus_lines(const train_corpus *r);
/** Bad lines passed over so far (SKIP policy). */
TRAIN_API uint64_t train_corpus_skipped(const train_corpus *r);
/** The largest the read buffer has been, in bytes: at most
 *  max(chunk_size, max_line + 2) + 1.  For memory accounting and tests. */
TRAIN_API size_t train_corpus_buffer_peak(const train_corpus *r);

/**
 * Read the rest of a reader into one value in canonical form (see the top
 * of this file).  The type follows the format and, for JSON Lines, the
 * schema; with TRAIN_JSONL_INFER, the first record decides, and a record
 * of the other kind later is a bad line ("a labelled example among
 * documents") handled by the reader's policy.  A JSON Lines input with no
 * record at all gives an empty TRAIN_CORPUS_TYPE_DOCUMENTS value under
 * INFER.  The reader is at its end afterwards (or spent, on error); the
 * caller still closes it.  Unlike reading, the value is held in memory.
 * @param[out] out  the value (one reference, the caller's), NULL on error
 * Errors: those of train_corpus_next(); TRAIN_EINVAL if `r` or `out` is NULL.
 */
TRAIN_API int train_corpus_to_value(train_corpus *r, train_value **out, train_error *err);

/** train_corpus_open() then train_corpus_to_value() then close. */
TRAIN_API int train_corpus_load_value(const char *path, const train_corpus_options *opt,
                                      train_value **out, train_error *err);

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_CORPUS_H */
