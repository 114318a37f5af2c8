/*
 * test_corpus.c - the streaming text and JSON Lines readers: lines across
 * chunk boundaries (tiny chunks force them), the longest-line limit, bad
 * lines skipped or fatal with their file:line:col, empty files, a missing
 * last newline, CRLF, UTF-8 checks, the JSON Lines schemas, canonical
 * values and their fingerprints, and a 50 MB file read in bounded memory.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <train/corpus.h>

#include "testlib.h"
#include "util.h"

/* ---- helpers ------------------------------------------------------------ */

/* Everything a reader gives, as text: "line:text" per record, '|'
 * between; documents "line:id=..;text;title=..;meta=..", examples
 * "line:label=..;text".  Ends with "!" + the formatted error on failure. */
static char *dump(train_corpus *r, int *rc_out)
{
	train_buf b = { 0 };
	const train_record *rec;
	train_error err = { 0 };
	int rc;
	while ((rc = train_corpus_next(r, &rec, &err)) > 0) {
		if (b.len)
			train_buf_add(&b, "|", 1);
		switch (rec->kind) {
		case TRAIN_RECORD_LINE:
			train_buf_printf(&b, "%" PRIu64 ":%s", rec->line, rec->text);
			CU_ASSERT_EQUAL(strlen(rec->text), rec->text_len);
			break;
		case TRAIN_RECORD_DOCUMENT:
			train_buf_printf(&b, "%" PRIu64 ":id=%s;%s", rec->line, rec->id, rec->text);
			if (rec->title)
				train_buf_printf(&b, ";title=%s", rec->title);
			if (rec->metadata)
				train_buf_printf(&b, ";meta=%s", rec->metadata);
			break;
		case TRAIN_RECORD_EXAMPLE:
			train_buf_printf(&b, "%" PRIu64 ":label=%s;%s", rec->line, rec->label, rec->text);
			break;
		}
	}
	CU_ASSERT_PTR_NULL(rec);
	if (rc < 0) {
		char line[1024];
		train_buf_printf(&b, "!%s", train_error_format(&err, line, sizeof line));
	}
	if (rc_out)
		*rc_out = rc;
	train_buf_add(&b, "", 0); /* NUL-terminated even when empty */
	return b.data;
}

/* Read `text` from memory with the given options; the dump. */
static char *read_mem(const char *text, size_t size, const char *name, const train_corpus_options *opt,
                      int *rc)
{
	train_corpus *r;
	train_error err;
	CU_ASSERT_EQUAL_FATAL(train_corpus_open_mem(text, size, name, opt, &r, &err), 0);
	char *d = dump(r, rc);
	train_corpus_close(r);
	return d;
}

/* The same through a file of that name in a scratch folder. */
static char *read_file_as(const char *text, size_t size, const char *name,
                          const train_corpus_options *opt, int *rc)
{
	const char *dir = test_tmpdir();
	char *path = train_path_join(dir, name);
	CU_ASSERT_EQUAL_FATAL(train_write_file_atomic(path, text, size, NULL), 0);
	train_corpus *r;
	train_error err;
	CU_ASSERT_EQUAL_FATAL(train_corpus_open(path, opt, &r, &err), 0);
	char *d = dump(r, rc);
	train_corpus_close(r);
	free(path);
	return d;
}

#define CHECK_DUMP(d, expect) do { \
		char *d_ = (d); \
		CU_ASSERT_STRING_EQUAL(d_, expect); \
		if (strcmp(d_, expect)) \
			fprintf(stderr, "\n  got      %s\n  expected %s\n", d_, expect); \
		free(d_); \
	} while (0)

/* ---- tests -------------------------------------------------------------- */

static void test_chunk_boundaries(void)
{
	/* Lines of 0..12 bytes, CRLF on some, no newline at the end: every
	 * chunk size from 2 up puts the boundaries somewhere else, inside a
	 * line, on a '\r', between '\r' and '\n', on the '\n'. */
	const char text[] = "a\nbc\r\n\ndefg\nhijklmnopqrs\r\n\r\nt\nuvwxyz012345\nend";
	const char *expect = "1:a|2:bc|3:|4:defg|5:hijklmnopqrs|6:|7:t|8:uvwxyz012345|9:end";
	for (size_t chunk = 2; chunk <= sizeof text + 2; chunk++) {
		train_corpus_options opt = TRAIN_CORPUS_OPTIONS_INIT;
		opt.chunk_size = chunk;
		int rc;
		CHECK_DUMP(read_mem(text, sizeof text - 1, "t.txt", &opt, &rc), expect);
		CU_ASSERT_EQUAL(rc, 0);
		if (chunk % 5 == 0)
			CHECK_DUMP(read_file_as(text, sizeof text - 1, "t.txt", &opt, &rc), expect);
	}
	/* Blank lines skipped on request. */
	train_corpus_options opt = TRAIN_CORPUS_OPTIONS_INIT;
	opt.chunk_size = 3;
	opt.skip_blank = 1;
	CHECK_DUMP(read_mem("a\n \t\n\nb\n", 8, "x", &opt, NULL), "1:a|4:b");
}

static void test_long_lines(void)
{
	train_corpus_options opt = TRAIN_CORPUS_OPTIONS_INIT;
	opt.chunk_size = 4;
	opt.max_line = 10;
	int rc;
	/* Exactly 10 bytes passes, also with "\r\n" (the line end does not
	 * count) and at the end without one; the buffer grows past the chunk
	 * but not past max_line + 3. */
	train_corpus *r;
	const char ok[] = "0123456789\r\n0123456789\n0123456789";
	CU_ASSERT_EQUAL_FATAL(train_corpus_open_mem(ok, sizeof ok - 1, "ok.txt", &opt, &r, NULL), 0);
	CHECK_DUMP(dump(r, &rc), "1:0123456789|2:0123456789|3:0123456789");
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT(train_corpus_buffer_peak(r) > 5);
	CU_ASSERT(train_corpus_buffer_peak(r) <= 13);
	train_corpus_close(r);

	/* 11 bytes: fatal, at its line. */
	const char bad[] = "short\n01234567890\nafter\n";
	CHECK_DUMP(read_mem(bad, sizeof bad - 1, "big.txt", &opt, &rc),
	           "1:short!big.txt:2: line longer than the maximum of 10 bytes");
	CU_ASSERT_EQUAL(rc, TRAIN_EPARSE);
	/* Same when the chunk is larger than the limit (caught after the cut). */
	opt.chunk_size = 64;
	CHECK_DUMP(read_mem(bad, sizeof bad - 1, "big.txt", &opt, &rc),
	           "1:short!big.txt:2: line longer than the maximum of 10 bytes");
	/* Skipped: a very long line (1 MB) never held whole, counted, and the
	 * reading goes on at the right line number. */
	size_t n = 1 << 20;
	char *huge = malloc(n + 32);
	strcpy(huge, "first\n");
	memset(huge + 6, 'x', n);
	strcpy(huge + 6 + n, "\r\nlast");
	opt.chunk_size = 7;
	opt.on_bad_line = TRAIN_BAD_LINE_SKIP;
	CU_ASSERT_EQUAL_FATAL(train_corpus_open_mem(huge, strlen(huge), "huge.txt", &opt, &r, NULL), 0);
	CHECK_DUMP(dump(r, &rc), "1:first|3:last");
	CU_ASSERT_EQUAL(train_corpus_skipped(r), 1);
	CU_ASSERT_EQUAL(train_corpus_lines(r), 3);
	CU_ASSERT(train_corpus_buffer_peak(r) <= 13);
	train_corpus_close(r);
	/* Over-long last line with no newline, skipped. */
	CHECK_DUMP(read_mem(huge + 6, strlen(huge + 6) - 6, "h.txt", &opt, &rc), "");
	CU_ASSERT_EQUAL(rc, 0);
	free(huge);
}

static int n_skip_reports;
static char last_skip[1024];

static void on_skip(void *ud, const train_error *why)
{
	(*(int *)ud)++;
	n_skip_reports++;
	train_error_format(why, last_skip, sizeof last_skip);
}

static void test_bad_lines(void)
{
	const char text[] =
		"{\"text\": \"hi\", \"label\": \"greet\"}\n"
		"{\"text\": \"bye\", \"label\": \"greet\",}\n"        /* 2: trailing comma */
		"[1, 2]\n"                                             /* 3: not an object */
		"{\"text\": \"x\"}\n"                                  /* 4: no label */
		"{\"text\": 5, \"label\": \"n\"}\n"                    /* 5: text not a string */
		"{\"text\": \"a\", \"label\": [\"l\"]}\n"              /* 6: label an array */
		"{\"text\": \"a\", \"text\": \"b\", \"label\": \"l\"}\n" /* 7: duplicate key */
		"{\"text\": \"caf\xC3\", \"label\": \"l\"}\n"          /* 8: bad UTF-8 */
		"{\"text\": \"a\\u0000b\", \"label\": \"l\"}\n"        /* 9: \u0000 */
		"{\"text\": \"ok\", \"label\": 3}\n";                  /* 10: fine, label 3 */
	train_corpus_options opt = TRAIN_CORPUS_OPTIONS_INIT;
	opt.format = TRAIN_CORPUS_JSONL;
	opt.schema = TRAIN_JSONL_EXAMPLES;
	opt.chunk_size = 16;
	int rc;
	CHECK_DUMP(read_mem(text, sizeof text - 1, "ex.jsonl", &opt, &rc),
	           "1:label=greet;hi!ex.jsonl:2:34: invalid JSON: string or '}' expected near '}'");
	CU_ASSERT_EQUAL(rc, TRAIN_EPARSE);

	/* The reader is spent after a fatal error: the same report again. */
	train_corpus *r;
	const train_record *rec;
	train_error err;
	CU_ASSERT_EQUAL_FATAL(train_corpus_open_mem(text, sizeof text - 1, "ex.jsonl", &opt, &r, NULL), 0);
	CU_ASSERT_EQUAL(train_corpus_next(r, &rec, &err), 1);
	CU_ASSERT_EQUAL(train_corpus_next(r, &rec, &err), TRAIN_EPARSE);
	memset(&err, 0, sizeof err);
	CU_ASSERT_EQUAL(train_corpus_next(r, &rec, &err), TRAIN_EPARSE);
	CU_ASSERT_PTR_NULL(rec);
	CU_ASSERT_STRING_EQUAL(err.file, "ex.jsonl");
	CU_ASSERT_EQUAL(err.line, 2);
	train_corpus_close(r);

	/* Skipped: each one reported with its place and reason. */
	struct { unsigned line, col; const char *text; } want[] = {
		{ 2, 34, "invalid JSON: string or '}' expected near '}'" },
		{ 3, 1, "a JSON object expected, not an array" },
		{ 4, 0, "missing key \"label\" (a labelled example has \"text\" and \"label\")" },
		{ 5, 0, "\"text\" must be a string, not an integer" },
		{ 6, 0, "\"label\" must be a string or an integer, not an array" },
		{ 7, 20, "invalid JSON: duplicate object key near '\"text\"'" },
		{ 8, 14, "invalid UTF-8 (byte 0xC3)" },
		{ 9, 19, "invalid JSON: \\u0000 (a NUL character) is not allowed in a string" },
	};
	size_t nwant = sizeof want / sizeof want[0];
	opt.on_bad_line = TRAIN_BAD_LINE_SKIP;
	CU_ASSERT_EQUAL_FATAL(train_corpus_open_mem(text, sizeof text - 1, "ex.jsonl", &opt, &r, NULL), 0);
	size_t i = 0;
	int got = 0;
	while ((rc = train_corpus_next(r, &rec, &err)) > 0) {
		if (rec->line == 1)
			continue;
		CU_ASSERT_EQUAL(rec->line, 10);
		CU_ASSERT_STRING_EQUAL(rec->label, "3");
		got++;
	}
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(got, 1);
	CU_ASSERT_EQUAL(train_corpus_skipped(r), nwant);
	train_corpus_close(r);

	/* The same through on_skip, one report per line, checked in order. */
	int count = 0;
	opt.on_skip = on_skip;
	opt.ud = &count;
	CU_ASSERT_EQUAL_FATAL(train_corpus_open_mem(text, sizeof text - 1, "ex.jsonl", &opt, &r, NULL), 0);
	n_skip_reports = 0;
	for (i = 0; i < nwant + 2; i++) {
		int before = n_skip_reports;
		rc = train_corpus_next(r, &rec, &err);
		if (rc <= 0)
			break;
		if (i == 1) {
			/* Between record 1 and record 10, eight reports came. */
			CU_ASSERT_EQUAL(n_skip_reports - before, (int)nwant);
		}
	}
	CU_ASSERT_EQUAL(count, (int)nwant);
	CU_ASSERT_STRING_EQUAL(last_skip, "ex.jsonl:9:19: invalid JSON: \\u0000 (a NUL character) is not allowed in a string");
	train_corpus_close(r);

	/* And each one fatal on its own, with its exact location. */
	opt.on_bad_line = TRAIN_BAD_LINE_FATAL;
	opt.on_skip = NULL;
	const char *p = text;
	for (unsigned ln = 1; *p; ln++) {
		const char *e = strchr(p, '\n');
		size_t len = (size_t)(e - p) + 1;
		for (i = 0; i < nwant; i++) {
			if (want[i].line != ln)
				continue;
			/* The bad line as line 3 of its own file, after two good lines. */
			char *file = train_strfmt("{\"text\":\"a\",\"label\":\"b\"}\n\n%.*s", (int)len, p);
			CU_ASSERT_EQUAL_FATAL(train_corpus_open_mem(file, strlen(file), "one.jsonl", &opt, &r, NULL), 0);
			CU_ASSERT_EQUAL(train_corpus_next(r, &rec, &err), 1);
			CU_ASSERT_EQUAL(train_corpus_next(r, &rec, &err), TRAIN_EPARSE);
			CU_ASSERT_STRING_EQUAL(err.file, "one.jsonl");
			CU_ASSERT_EQUAL(err.line, 3);
			CU_ASSERT_EQUAL(err.col, want[i].col);
			CU_ASSERT_STRING_EQUAL(err.text, want[i].text);
			if (strcmp(err.text, want[i].text) || err.col != want[i].col)
				fprintf(stderr, "\n  line %u: got %u '%s'\n", ln, err.col, err.text);
			train_corpus_close(r);
			free(file);
		}
		p = e + 1;
	}
}

static void test_empty_and_endings(void)
{
	train_corpus_options opt = TRAIN_CORPUS_OPTIONS_INIT;
	int rc;
	/* Empty: no record, in both formats, from memory and from a file. */
	CHECK_DUMP(read_mem("", 0, "e.txt", &opt, &rc), "");
	CU_ASSERT_EQUAL(rc, 0);
	CHECK_DUMP(read_mem(NULL, 0, "e.jsonl", &opt, &rc), "");
	CHECK_DUMP(read_file_as("", 0, "e.txt", &opt, &rc), "");
	CU_ASSERT_EQUAL(rc, 0);
	CHECK_DUMP(read_file_as("", 0, "e.jsonl", &opt, &rc), "");
	/* One newline: one empty line of text; no record in JSON Lines. */
	CHECK_DUMP(read_mem("\n", 1, "n.txt", &opt, NULL), "1:");
	CHECK_DUMP(read_mem("\r\n", 2, "n.txt", &opt, NULL), "1:");
	CHECK_DUMP(read_mem("\n \t\r\n", 5, "n.jsonl", &opt, &rc), "");
	CU_ASSERT_EQUAL(rc, 0);
	/* No newline at the end; a lone '\r' at the very end is a line end too. */
	CHECK_DUMP(read_mem("a\nb", 3, "x.txt", &opt, NULL), "1:a|2:b");
	CHECK_DUMP(read_mem("a\nb\r", 4, "x.txt", &opt, NULL), "1:a|2:b");
	CHECK_DUMP(read_mem("{\"id\":1,\"text\":\"t\"}", 19, "x.jsonl", &opt, NULL), "1:id=1;t");
	/* CRLF everywhere; a '\r' inside a line stays, more before the end go. */
	CHECK_DUMP(read_mem("a\r\nb\rc\r\n\r\nd", 11, "x.txt", &opt, NULL), "1:a|2:b\rc|3:|4:d");
	CHECK_DUMP(read_mem("x\r\r\ny\r\r", 7, "x.txt", &opt, NULL), "1:x|2:y");
	opt.chunk_size = 2;
	opt.max_line = 2;
	CHECK_DUMP(read_mem("ab\r\r\nc", 6, "x.txt", &opt, NULL),
	           "!x.txt:1: line longer than the maximum of 2 bytes");
	opt.max_line = 3;
	CHECK_DUMP(read_mem("ab\r\r\nc", 6, "x.txt", &opt, NULL), "1:ab|2:c");
	opt.chunk_size = opt.max_line = 0;
	/* A byte order mark is dropped, only at the start of the file. */
	CHECK_DUMP(read_mem("\xEF\xBB\xBFhi\n\xEF\xBB\xBFho", 11, "x.txt", &opt, NULL),
	           "1:hi|2:\xEF\xBB\xBFho");
	CHECK_DUMP(read_mem("\xEF\xBB\xBF\xEF\xBB\xBFhi", 8, "x.txt", &opt, NULL), "1:\xEF\xBB\xBFhi");
	CHECK_DUMP(read_mem("\xEF\xBB\xBF{\"id\":\"a\",\"text\":\"t\"}\r\n", 26, "b.jsonl", &opt, NULL),
	           "1:id=a;t");
	/* A missing file. */
	train_corpus *r;
	train_error err;
	CU_ASSERT_EQUAL(train_corpus_open("/nonexistent/x.txt", NULL, &r, &err), -ENOENT);
	CU_ASSERT_PTR_NULL(r);
	CU_ASSERT_STRING_EQUAL(err.file, "/nonexistent/x.txt");
	/* Bad arguments. */
	opt.chunk_size = 1;
	CU_ASSERT_EQUAL(train_corpus_open_mem("a", 1, "x", &opt, &r, NULL), TRAIN_EINVAL);
	opt.chunk_size = 0;
	opt.format = (train_corpus_format)7;
	CU_ASSERT_EQUAL(train_corpus_open_mem("a", 1, "x", &opt, &r, NULL), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_corpus_open_mem(NULL, 1, "x", NULL, &r, NULL), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_corpus_next(NULL, NULL, NULL), TRAIN_EINVAL);
	train_corpus_close(NULL);
}

static void test_utf8(void)
{
	static const struct { const char *bytes; size_t col; } bad[] = {
		{ "ab\x80", 3 },                /* lone continuation byte */
		{ "\xC0\x80", 1 },              /* overlong NUL */
		{ "\xC1\xBF", 1 },              /* overlong */
		{ "x\xE0\x80\x80", 2 },         /* overlong 3-byte */
		{ "\xED\xA0\x80", 1 },          /* surrogate U+D800 */
		{ "\xF0\x80\x80\x80", 1 },      /* overlong 4-byte */
		{ "\xF4\x90\x80\x80", 1 },      /* U+110000 */
		{ "\xF5\x80\x80\x80", 1 },      /* never valid */
		{ "\xFF", 1 },
		{ "abc\xE2\x82", 4 },           /* cut short at the line end */
		{ "\xE2\x82x", 1 },             /* cut short inside */
		{ "12345678\xC3(", 9 },         /* after the ASCII fast path */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char *text = train_strfmt("fine\n%s\n", bad[i].bytes);
		char *expect = train_strfmt("1:fine!u.txt:2:%zu: invalid UTF-8 (byte 0x%02X)", bad[i].col,
		                            (unsigned)(unsigned char)bad[i].bytes[bad[i].col - 1]);
		train_corpus_options opt = TRAIN_CORPUS_OPTIONS_INIT;
		opt.chunk_size = 3;
		int rc;
		CHECK_DUMP(read_mem(text, strlen(text), "u.txt", &opt, &rc), expect);
		CU_ASSERT_EQUAL(rc, TRAIN_EPARSE);
		free(text);
		free(expect);
	}
	/* Valid: 2-, 3- and 4-byte forms at their limits. */
	const char good[] = "\xC2\x80 \xDF\xBF \xE0\xA0\x80 \xED\x9F\xBF \xEE\x80\x80 \xEF\xBF\xBF "
	                    "\xF0\x90\x80\x80 \xF4\x8F\xBF\xBF \xE2\x82\xAC\xF0\x9F\x98\x80";
	char *expect = train_strfmt("1:%s", good);
	CHECK_DUMP(read_mem(good, sizeof good - 1, "g.txt", NULL, NULL), expect);
	free(expect);
	/* A NUL byte in a text line. */
	CHECK_DUMP(read_mem("ab\0c\n", 5, "z.txt", NULL, NULL), "!z.txt:1:3: NUL byte in text");
}

static void test_jsonl_schemas(void)
{
	const char docs[] =
		"{\"id\": \"d1\", \"text\": \"Hello\", \"title\": \"T\", \"metadata\": {\"b\": 1, \"a\": [true]}}\n"
		"{\"text\": \"caf\\u00e9 \xE2\x82\xAC\", \"id\": 42, \"title\": null, \"metadata\": null, \"extra\": 1}\n"
		"\n"
		"{\"id\": -7, \"text\": \"\"}\n";
	train_corpus_options opt = TRAIN_CORPUS_OPTIONS_INIT;
	int rc;
	CHECK_DUMP(read_mem(docs, sizeof docs - 1, "d.jsonl", &opt, &rc),
	           "1:id=d1;Hello;title=T;meta={\"b\":1,\"a\":[true]}|2:id=42;caf\xC3\xA9 \xE2\x82\xAC|4:id=-7;");
	CU_ASSERT_EQUAL(rc, 0);
	/* Read as examples, the first document lacks a label. */
	opt.schema = TRAIN_JSONL_EXAMPLES;
	CHECK_DUMP(read_mem(docs, sizeof docs - 1, "d.jsonl", &opt, &rc),
	           "!d.jsonl:1: missing key \"label\" (a labelled example has \"text\" and \"label\")");
	/* Inferred per line: mixed is fine for the reader. */
	opt.schema = TRAIN_JSONL_INFER;
	const char mixed[] = "{\"text\":\"a\",\"label\":\"x\",\"id\":\"e1\"}\n{\"id\":\"d\",\"text\":\"b\"}\n{\"text\":\"c\"}\n";
	CHECK_DUMP(read_mem(mixed, sizeof mixed - 1, "m.jsonl", &opt, &rc),
	           "1:label=x;a|2:id=d;b!m.jsonl:3: missing key \"id\" (a document has \"id\" and \"text\"; "
	           "a labelled example has \"label\")");
	/* Mistyped document keys. */
	static const struct { const char *line, *why; } bad[] = {
		{ "{\"id\": 1.5, \"text\": \"a\"}", "\"id\" must be a string or an integer, not a number with a fraction or exponent" },
		{ "{\"id\": \"a\", \"text\": null}", "\"text\" must be a string, not null" },
		{ "{\"id\": \"a\"}", "missing key \"text\" (a document has \"id\" and \"text\")" },
		{ "{\"id\": \"a\", \"text\": \"t\", \"title\": 3}", "\"title\" must be a string or null, not an integer" },
		{ "{\"id\": \"a\", \"text\": \"t\", \"metadata\": []}", "\"metadata\" must be an object or null, not an array" },
		{ "\"just a string\"", "invalid JSON: '[' or '{' expected near '\"just a string\"'" },
		{ "{\"id\": \"a\", \"text\": \"t\"} {}", "invalid JSON: end of file expected near '{'" },
	};
	opt.schema = TRAIN_JSONL_DOCUMENTS;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		train_corpus *r;
		const train_record *rec;
		train_error err;
		CU_ASSERT_EQUAL_FATAL(train_corpus_open_mem(bad[i].line, strlen(bad[i].line), "b.jsonl", &opt, &r, NULL), 0);
		CU_ASSERT_EQUAL(train_corpus_next(r, &rec, &err), TRAIN_EPARSE);
		CU_ASSERT_EQUAL(err.line, 1);
		CU_ASSERT_STRING_EQUAL(err.text, bad[i].why);
		if (strcmp(err.text, bad[i].why))
			fprintf(stderr, "\n  got '%s'\n", err.text);
		train_corpus_close(r);
	}
	/* AUTO: by the name. */
	opt.format = TRAIN_CORPUS_AUTO;
	opt.schema = TRAIN_JSONL_INFER;
	CHECK_DUMP(read_mem("{\"id\":1,\"text\":\"x\"}", 19, "D.NDJSON", &opt, NULL), "1:id=1;x");
	CHECK_DUMP(read_mem("{\"id\":1,\"text\":\"x\"}", 19, "d.json", &opt, NULL), "1:{\"id\":1,\"text\":\"x\"}");
}

/* The value of `text` read with `opt` (name decides AUTO). */
static train_value *value_of(const char *text, const char *name, const train_corpus_options *opt,
                             int *rc, train_error *err)
{
	train_corpus *r;
	train_value *v = NULL;
	CU_ASSERT_EQUAL_FATAL(train_corpus_open_mem(text, strlen(text), name, opt, &r, NULL), 0);
	*rc = train_corpus_to_value(r, &v, err);
	train_corpus_close(r);
	return v;
}

static void test_values(void)
{
	int rc;
	train_error err;
	/* Text: lines with "\n", whatever the line ends were. */
	train_value *a = value_of("one\r\ntwo", "a.txt", NULL, &rc, &err);
	train_value *b = value_of("one\ntwo\n", "b.txt", NULL, &rc, &err);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_STRING_EQUAL(train_value_type(a), TRAIN_CORPUS_TYPE_LINES);
	CU_ASSERT_EQUAL(train_value_size(a), 8);
	CU_ASSERT_EQUAL(memcmp(train_value_data(a), "one\ntwo\n", 8), 0);
	CU_ASSERT(train_fp_eq(train_value_fp(a), train_value_fp(b)));
	train_value_unref(a);
	train_value_unref(b);
	/* A first line that begins with U+FEFF (here after a skipped blank
	 * line) keeps it behind a byte order mark, so the value reads back. */
	train_corpus_options blank = TRAIN_CORPUS_OPTIONS_INIT;
	blank.skip_blank = 1;
	a = value_of("\n\xEF\xBB\xBFx\n", "a.txt", &blank, &rc, &err);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_EQUAL(train_value_size(a), 8);
	CU_ASSERT_EQUAL(memcmp(train_value_data(a), "\xEF\xBB\xBF\xEF\xBB\xBFx\n", 8), 0);
	CHECK_DUMP(read_mem(train_value_data(a), train_value_size(a), "v.txt", NULL, NULL), "1:\xEF\xBB\xBFx");
	train_value_unref(a);
	/* Documents: the same content in another layout, key order and
	 * spelling gives the same bytes and fingerprint. */
	a = value_of("{\"id\":\"1\",\"text\":\"caf\xC3\xA9\",\"metadata\":{\"z\":1,\"a\":{\"y\":2,\"b\":3}}}\n"
	             "{\"id\":2,\"text\":\"x\",\"title\":null}\n", "a.jsonl", NULL, &rc, &err);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	b = value_of("\xEF\xBB\xBF{ \"metadata\" : { \"a\": {\"b\": 3, \"y\": 2}, \"z\": 1 },\t\"text\": \"caf\\u00e9\", \"id\": \"1\" }\r\n"
	             "\r\n{\"text\":\"x\",\"id\":\"2\",\"unused\":[1]}", "b.jsonl", NULL, &rc, &err);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_STRING_EQUAL(train_value_type(a), TRAIN_CORPUS_TYPE_DOCUMENTS);
	const char canon[] = "{\"id\":\"1\",\"metadata\":{\"a\":{\"b\":3,\"y\":2},\"z\":1},\"text\":\"caf\xC3\xA9\"}\n"
	                     "{\"id\":\"2\",\"text\":\"x\"}\n";
	CU_ASSERT_EQUAL(train_value_size(a), sizeof canon - 1);
	CU_ASSERT_EQUAL(memcmp(train_value_data(a), canon, sizeof canon - 1), 0);
	CU_ASSERT(train_fp_eq(train_value_fp(a), train_value_fp(b)));
	train_value_unref(b);
	/* A changed text changes it. */
	b = value_of("{\"id\":\"1\",\"text\":\"cafe\",\"metadata\":{\"z\":1,\"a\":{\"y\":2,\"b\":3}}}\n"
	             "{\"id\":2,\"text\":\"x\"}\n", "a.jsonl", NULL, &rc, &err);
	CU_ASSERT(!train_fp_eq(train_value_fp(a), train_value_fp(b)));
	train_value_unref(a);
	train_value_unref(b);
	/* Examples. */
	a = value_of("{\"label\":3,\"text\":\"hi\"}\n{\"text\":\"yo\",\"label\":\"greet\",\"id\":\"e\"}\n",
	             "e.jsonl", NULL, &rc, &err);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_STRING_EQUAL(train_value_type(a), TRAIN_CORPUS_TYPE_EXAMPLES);
	const char ex[] = "{\"label\":\"3\",\"text\":\"hi\"}\n{\"id\":\"e\",\"label\":\"greet\",\"text\":\"yo\"}\n";
	CU_ASSERT_EQUAL(train_value_size(a), sizeof ex - 1);
	CU_ASSERT_EQUAL(memcmp(train_value_data(a), ex, sizeof ex - 1), 0);
	train_value_unref(a);
	/* Mixed kinds under INFER: the first record decides. */
	const char mixed[] = "{\"id\":\"1\",\"text\":\"a\"}\n{\"text\":\"b\",\"label\":\"l\"}\n{\"id\":\"2\",\"text\":\"c\"}\n";
	a = value_of(mixed, "m.jsonl", NULL, &rc, &err);
	CU_ASSERT_EQUAL(rc, TRAIN_EPARSE);
	CU_ASSERT_PTR_NULL(a);
	CU_ASSERT_EQUAL(err.line, 2);
	CU_ASSERT_STRING_EQUAL(err.text, "a labelled example among documents (the first record, line 1, is a document)");
	train_corpus_options opt = TRAIN_CORPUS_OPTIONS_INIT;
	opt.on_bad_line = TRAIN_BAD_LINE_SKIP;
	a = value_of(mixed, "m.jsonl", &opt, &rc, &err);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	const char two[] = "{\"id\":\"1\",\"text\":\"a\"}\n{\"id\":\"2\",\"text\":\"c\"}\n";
	CU_ASSERT_EQUAL(train_value_size(a), sizeof two - 1);
	CU_ASSERT_EQUAL(memcmp(train_value_data(a), two, sizeof two - 1), 0);
	train_value_unref(a);
	/* Empty input: an empty value of the schema's type. */
	a = value_of("", "e.jsonl", NULL, &rc, &err);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_STRING_EQUAL(train_value_type(a), TRAIN_CORPUS_TYPE_DOCUMENTS);
	CU_ASSERT_EQUAL(train_value_size(a), 0);
	train_value_unref(a);
	opt.schema = TRAIN_JSONL_EXAMPLES;
	a = value_of("\n", "e.jsonl", &opt, &rc, &err);
	CU_ASSERT_STRING_EQUAL(train_value_type(a), TRAIN_CORPUS_TYPE_EXAMPLES);
	train_value_unref(a);
	/* From a file; a missing one. */
	const char *dir = test_tmpdir();
	char *path = train_path_join(dir, "c.txt");
	test_write(path, "x\ny\n");
	CU_ASSERT_EQUAL(train_corpus_load_value(path, NULL, &a, &err), 0);
	CU_ASSERT_EQUAL(train_value_size(a), 4);
	train_value_unref(a);
	CU_ASSERT_EQUAL(train_corpus_load_value("/nonexistent.jsonl", NULL, &a, &err), -ENOENT);
	CU_ASSERT_PTR_NULL(a);
	free(path);
}

/* Peak resident size in bytes. */
static long peak_rss(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss * 1024L;
}

static void test_large_file_bounded(void)
{
	/* 50 MB of lines of varied length (some multi-byte UTF-8), written
	 * 1 MiB at a time; read with 256 KiB chunks. */
	const size_t total = 50u << 20, block = 1u << 20;
	const char *dir = test_tmpdir();
	char *path = train_path_join(dir, "big.txt");
	char *blk = malloc(block);
	size_t lines_per_block = 0, len = 0;
	for (unsigned i = 0; len < block - 200; i++) {
		int n = snprintf(blk + len, 200, "line %u caf\xC3\xA9 %.*s\n", i, (int)(i * 7919 % 150),
		                 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
		                 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
		len += (size_t)n;
		lines_per_block++;
	}
	memset(blk + len, 'z', block - len - 1); /* the block ends in one long line */
	blk[block - 1] = '\n';
	lines_per_block++;
	FILE *f = fopen(path, "wb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	for (size_t w = 0; w < total; w += block)
		CU_ASSERT_EQUAL(fwrite(blk, 1, block, f), block);
	CU_ASSERT_EQUAL(fclose(f), 0);
	free(blk);

	long rss0 = peak_rss();
	train_corpus_options opt = TRAIN_CORPUS_OPTIONS_INIT;
	opt.chunk_size = 256u << 10;
	opt.max_line = 64u << 10;
	train_corpus *r;
	const train_record *rec;
	train_error err;
	CU_ASSERT_EQUAL_FATAL(train_corpus_open(path, &opt, &r, &err), 0);
	uint64_t n = 0, bytes = 0;
	int rc;
	while ((rc = train_corpus_next(r, &rec, &err)) > 0) {
		n++;
		bytes += rec->text_len + 1;
	}
	CU_ASSERT_EQUAL(rc, 0);
	CU_ASSERT_EQUAL(n, lines_per_block * (total / block));
	CU_ASSERT_EQUAL(bytes, total);
	/* The buffer never grew: every line fits a chunk. */
	CU_ASSERT_EQUAL(train_corpus_buffer_peak(r), opt.chunk_size + 1);
	train_corpus_close(r);
	/* And the process did not hold the file: its peak resident size grew
	 * by far less than 50 MB (under valgrind the figure is valgrind's own,
	 * so only the buffer check above counts there). */
	const char *pre = getenv("LD_PRELOAD");
	if (!pre || !strstr(pre, "vgpreload"))
		CU_ASSERT(peak_rss() - rss0 < (16L << 20));
	free(path);
}

int main(void)
{
	static const test_case cases[] = {
		{ "chunk_boundaries", test_chunk_boundaries },
		{ "long_lines", test_long_lines },
		{ "bad_lines", test_bad_lines },
		{ "empty_and_endings", test_empty_and_endings },
		{ "utf8", test_utf8 },
		{ "jsonl_schemas", test_jsonl_schemas },
		{ "values", test_values },
		{ "large_file_bounded", test_large_file_bounded },
		{ NULL, NULL },
	};
	return test_main("corpus", cases);
}
