/*
 * corpus.c - the streaming line reader behind <train/corpus.h>: fixed-size
 * reads into one buffer, lines across chunk boundaries, CRLF, the byte
 * order mark, UTF-8 checks, the longest-line limit, the bad-line policy,
 * plain-text records, and whole corpora as canonical values.  JSON Lines
 * records are decoded by jsonl.c.
 *
 * The buffer: buf[start, end) holds bytes read but not yet handed out;
 * buf[start, scan) is known to hold no '\n'.  A line is cut in place (its
 * '\n' becomes a NUL), so records point into the buffer and nothing is
 * copied.  When no '\n' is left, the partial line moves to the front and
 * the next read completes it; only a partial line that fills the whole
 * buffer makes it grow, and only up to the longest allowed line.  One byte
 * is always kept spare so that a last line without '\n' can be
 * NUL-terminated too.
 */
#include <train/corpus.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "jsonl.h"
#include "util.h"

#define BOM "\xEF\xBB\xBF" /* U+FEFF in UTF-8 */

struct train_corpus {
	char *name;
	int fd;                      /* -1 when reading from memory */
	const unsigned char *mem;    /* memory input */
	size_t mem_size, mem_pos;
	train_corpus_options opt;    /* resolved: format, chunk_size and max_line set */

	char *buf;
	size_t cap, start, scan, end, peak;
	bool eof;
	bool discarding;             /* skipping the rest of an over-long line */

	uint64_t lineno, skipped;
	int failed;                  /* sticky error code once spent, 0 before */
	train_error fail;            /* its report, given again on later calls */

	train_record rec;
	train_jsonl js;
};

/* ---- errors ------------------------------------------------------------ */

static unsigned clamp_line(uint64_t n)
{
	return n > UINT_MAX ? UINT_MAX : (unsigned)n;
}

/* The reader is spent: remember the error and report it. */
static int fail(train_corpus *r, train_error *err, int code, unsigned line, unsigned col,
                const char *msg)
{
	r->failed = code;
	train_error_set(&r->fail, code, r->name, line, col, "%s", msg);
	if (err)
		*err = r->fail;
	return code;
}

/*
 * A bad line at the current line number: 0 to go on (SKIP, after telling
 * on_skip), or TRAIN_EPARSE with the reader spent (FATAL).
 */
static int bad_line(train_corpus *r, train_error *err, unsigned col, const char *fmt, ...)
	TRAIN_PRINTF(4, 5);
static int bad_line(train_corpus *r, train_error *err, unsigned col, const char *fmt, ...)
{
	char msg[TRAIN_ERROR_TEXT];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (r->opt.on_bad_line == TRAIN_BAD_LINE_FATAL)
		return fail(r, err, TRAIN_EPARSE, clamp_line(r->lineno), col, msg);
	r->skipped++;
	if (r->opt.on_skip) {
		train_error e;
		train_error_set(&e, TRAIN_EPARSE, r->name, clamp_line(r->lineno), col, "%s", msg);
		r->opt.on_skip(r->opt.ud, &e);
	}
	return 0;
}

/* ---- opening and closing ----------------------------------------------- */

static bool ends_with_ci(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcasecmp(s + n - m, suffix) == 0;
}

static int corpus_new(const char *name, const train_corpus_options *opt, train_corpus **out,
                      train_error *err)
{
	train_corpus_options o = TRAIN_CORPUS_OPTIONS_INIT;
	if (opt)
		o = *opt;
	if ((unsigned)o.format > TRAIN_CORPUS_JSONL || (unsigned)o.schema > TRAIN_JSONL_EXAMPLES ||
	    (unsigned)o.on_bad_line > TRAIN_BAD_LINE_SKIP || o.chunk_size == 1)
		return train_error_set(err, TRAIN_EINVAL, name, 0, 0,
		                       "bad corpus options (format, schema, on_bad_line or chunk_size)");
	if (o.format == TRAIN_CORPUS_AUTO)
		o.format = ends_with_ci(name, ".jsonl") || ends_with_ci(name, ".ndjson")
		           ? TRAIN_CORPUS_JSONL : TRAIN_CORPUS_TEXT;
	if (!o.chunk_size)
		o.chunk_size = TRAIN_CORPUS_CHUNK_DEFAULT;
	if (!o.max_line)
		o.max_line = TRAIN_CORPUS_MAX_LINE_DEFAULT;
	/* max_line + 3 (line, "\r\n", NUL) must not overflow. */
	if (o.max_line > SIZE_MAX / 2 || o.chunk_size > SIZE_MAX / 2)
		return train_error_set(err, TRAIN_EINVAL, name, 0, 0, "chunk_size or max_line too large");

	train_corpus *r = calloc(1, sizeof *r);
	if (!r)
		return train_error_set(err, TRAIN_ENOMEM, name, 0, 0, "out of memory");
	r->fd = -1;
	r->opt = o;
	r->cap = o.chunk_size + 1;
	r->peak = r->cap;
	if (!(r->name = strdup(name)) || !(r->buf = malloc(r->cap))) {
		train_corpus_close(r);
		return train_error_set(err, TRAIN_ENOMEM, name, 0, 0, "out of memory");
	}
	*out = r;
	return TRAIN_OK;
}

int train_corpus_open(const char *path, const train_corpus_options *opt, train_corpus **out,
                      train_error *err)
{
	if (out)
		*out = NULL;
	if (!path || !out)
		return train_error_set(err, TRAIN_EINVAL, path, 0, 0, "no path or no reader to open");
	train_corpus *r;
	int rc = corpus_new(path, opt, &r, err);
	if (rc)
		return rc;
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		rc = -errno;
		train_error_set(err, rc, path, 0, 0, "cannot open: %s", strerror(errno));
		train_corpus_close(r);
		return rc;
	}
#ifdef POSIX_FADV_SEQUENTIAL
	(void)posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
	*out = r;
	return TRAIN_OK;
}

int train_corpus_open_mem(const void *data, size_t size, const char *name,
                          const train_corpus_options *opt, train_corpus **out, train_error *err)
{
	if (out)
		*out = NULL;
	if (!name)
		name = "";
	if (!out || (!data && size))
		return train_error_set(err, TRAIN_EINVAL, name, 0, 0, "no data or no reader to open");
	train_corpus *r;
	int rc = corpus_new(name, opt, &r, err);
	if (rc)
		return rc;
	r->mem = data;
	r->mem_size = size;
	*out = r;
	return TRAIN_OK;
}

void train_corpus_close(train_corpus *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	train_jsonl_clear(&r->js);
	free(r->buf);
	free(r->name);
	free(r);
}

uint64_t train_corpus_lines(const train_corpus *r) { return r ? r->lineno : 0; }
uint64_t train_corpus_skipped(const train_corpus *r) { return r ? r->skipped : 0; }
size_t train_corpus_buffer_peak(const train_corpus *r) { return r ? r->peak : 0; }

/* ---- reading lines ----------------------------------------------------- */

/* Read up to one chunk into buf[end, cap - 1).  Sets eof at the end. */
static int fill(train_corpus *r, train_error *err)
{
	size_t room = r->cap - 1 - r->end;
	if (room > r->opt.chunk_size)
		room = r->opt.chunk_size;
	if (r->fd < 0) {
		size_t n = r->mem_size - r->mem_pos;
		if (n > room)
			n = room;
		if (n)
			memcpy(r->buf + r->end, r->mem + r->mem_pos, n);
		r->mem_pos += n;
		r->end += n;
		r->eof = n == 0;
		return TRAIN_OK;
	}
	ssize_t n;
	do
		n = read(r->fd, r->buf + r->end, room);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		char msg[TRAIN_ERROR_TEXT];
		snprintf(msg, sizeof msg, "read error: %s", strerror(errno));
		return fail(r, err, -errno, clamp_line(r->lineno + 1), 0, msg);
	}
	r->end += (size_t)n;
	r->eof = n == 0;
	return TRAIN_OK;
}

/* Make room after the partial line buf[start, end): move it to the front,
 * and grow the buffer if it is full (the caller checked the line may still
 * fit max_line, so the buffer never grows past max_line + 3). */
static int make_room(train_corpus *r, train_error *err)
{
	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->end - r->start);
		r->end -= r->start;
		r->scan -= r->start;
		r->start = 0;
	}
	if (r->end < r->cap - 1)
		return TRAIN_OK;
	size_t limit = r->opt.max_line + 3;
	size_t ncap = r->cap * 2 < limit ? r->cap * 2 : limit;
	char *nb = realloc(r->buf, ncap);
	if (!nb)
		return fail(r, err, TRAIN_ENOMEM, clamp_line(r->lineno + 1), 0, "out of memory");
	r->buf = nb;
	r->cap = ncap;
	if (ncap > r->peak)
		r->peak = ncap;
	return TRAIN_OK;
}

/*
 * The next line, without its line end, NUL-terminated in the buffer.
 * Returns 1 with a line, 0 at the end, or a negative error (reader spent).
 * Over-long lines are bad lines: reported here, and with SKIP their bytes
 * are dropped up to the next '\n' without ever being held whole.
 */
static int next_line(train_corpus *r, char **line, size_t *len, train_error *err)
{
	int rc;
	for (;;) {
		if (r->discarding) {
			char *nl = memchr(r->buf + r->start, '\n', r->end - r->start);
			if (nl) {
				r->start = r->scan = (size_t)(nl - r->buf) + 1;
				r->discarding = false;
				continue;
			}
			r->start = r->scan = r->end = 0;
			if (r->eof)
				return 0;
			if ((rc = fill(r, err)))
				return rc;
			continue;
		}
		char *nl = r->scan < r->end ? memchr(r->buf + r->scan, '\n', r->end - r->scan) : NULL;
		if (nl || (r->eof && r->start < r->end)) {
			char *p = r->buf + r->start;
			size_t n = nl ? (size_t)(nl - p) : r->end - r->start;
			r->start = r->scan = nl ? (size_t)(nl - r->buf) + 1 : r->end;
			r->lineno++;
			if (n && p[n - 1] == '\r')
				n--;
			p[n] = '\0'; /* over the '\r', the '\n' or the spare byte */
			if (n > r->opt.max_line) {
				if ((rc = bad_line(r, err, 0, "line longer than the maximum of %zu bytes",
				                   r->opt.max_line)))
					return rc;
				continue;
			}
			/* More '\r' before the line end ("a\r\r\n") go too, after the
			 * length check so that it does not depend on where the chunks
			 * fall: a text never ends in '\r', so a line written back with
			 * "\n" reads back the same. */
			while (n && p[n - 1] == '\r')
				p[--n] = '\0';
			*line = p;
			*len = n;
			return 1;
		}
		if (r->eof)
			return 0;
		r->scan = r->end;
		/* Content plus a possible '\r' already over the limit: the line
		 * is too long whatever follows; say so now instead of buffering. */
		if (r->end - r->start > r->opt.max_line + 1) {
			r->lineno++;
			if ((rc = bad_line(r, err, 0, "line longer than the maximum of %zu bytes",
			                   r->opt.max_line)))
				return rc;
			r->discarding = true;
			r->start = r->scan = r->end;
			continue;
		}
		if ((rc = make_room(r, err)) || (rc = fill(r, err)))
			return rc;
	}
}

/*
 * Offset of the first byte that is not valid UTF-8 (or is NUL) in s[0, n),
 * or n if there is none.  Strict: no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing above U+10FFFF.  `nul` tells which it was.
 */
static size_t utf8_check(const unsigned char *s, size_t n, bool *nul)
{
	size_t i = 0;
	*nul = false;
	while (i < n) {
		/* ASCII fast path: 8 bytes with no high bit and no zero byte. */
		while (i + 8 <= n) {
			uint64_t w;
			memcpy(&w, s + i, 8);
			if ((w & 0x8080808080808080ull) ||
			    ((w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull))
				break;
			i += 8;
		}
		if (i >= n)
			break;
		unsigned c = s[i];
		if (c == 0) {
			*nul = true;
			return i;
		}
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t k;
		unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
		if (c >= 0xC2 && c <= 0xDF)
			k = 1;
		else if (c >= 0xE0 && c <= 0xEF) {
			k = 2;
			if (c == 0xE0) lo = 0xA0;      /* overlong */
			if (c == 0xED) hi = 0x9F;      /* surrogates */
		} else if (c >= 0xF0 && c <= 0xF4) {
			k = 3;
			if (c == 0xF0) lo = 0x90;      /* overlong */
			if (c == 0xF4) hi = 0x8F;      /* above U+10FFFF */
		} else
			return i;
		if (n - i <= k || s[i + 1] < lo || s[i + 1] > hi)
			return i;
		for (size_t j = 2; j <= k; j++)
			if ((s[i + j] & 0xC0) != 0x80)
				return i;
		i += k + 1;
	}
	return n;
}

static bool is_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			return false;
	return true;
}

int train_corpus_next(train_corpus *r, const train_record **rec, train_error *err)
{
	if (rec)
		*rec = NULL;
	if (!r || !rec)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "no reader or no record pointer");
	if (r->failed) {
		if (err)
			*err = r->fail;
		return r->failed;
	}
	train_jsonl_clear(&r->js);
	for (;;) {
		char *line = NULL;
		size_t len = 0;
		int rc = next_line(r, &line, &len, err);
		if (rc <= 0)
			return rc;
		if (r->lineno == 1 && len >= 3 && memcmp(line, BOM, 3) == 0) {
			line += 3;
			len -= 3;
		}
		bool nul;
		size_t bad = utf8_check((const unsigned char *)line, len, &nul);
		if (bad < len) {
			unsigned col = bad + 1 > UINT_MAX ? UINT_MAX : (unsigned)(bad + 1);
			rc = nul ? bad_line(r, err, col, "NUL byte in text")
			         : bad_line(r, err, col, "invalid UTF-8 (byte 0x%02X)",
			                    (unsigned)(unsigned char)line[bad]);
			if (rc)
				return rc;
			continue;
		}
		if (r->opt.format == TRAIN_CORPUS_TEXT) {
			if (r->opt.skip_blank && is_blank(line, len))
				continue;
			memset(&r->rec, 0, sizeof r->rec);
			r->rec.kind = TRAIN_RECORD_LINE;
			r->rec.text = line;
			r->rec.text_len = len;
		} else {
			if (is_blank(line, len))
				continue;
			char why[TRAIN_ERROR_TEXT - 64];
			unsigned col;
			rc = train_jsonl_decode(&r->js, line, len, r->opt.schema, &r->rec, &col, why,
			                        sizeof why);
			if (rc == TRAIN_ENOMEM)
				return fail(r, err, rc, clamp_line(r->lineno), 0, "out of memory");
			if (rc) {
				train_jsonl_clear(&r->js);
				if ((rc = bad_line(r, err, col, "%s", why)))
					return rc;
				continue;
			}
		}
		r->rec.line = r->lineno;
		*rec = &r->rec;
		return 1;
	}
}

/* ---- whole corpora as values ------------------------------------------- */

int train_corpus_to_value(train_corpus *r, train_value **out, train_error *err)
{
	if (out)
		*out = NULL;
	if (!r || !out)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "no reader or no value pointer");
	train_buf b = { 0 };
	const train_record *rec;
	int rc, kind = -1;
	uint64_t first = 0;
	while ((rc = train_corpus_next(r, &rec, err)) > 0) {
		if (rec->kind == TRAIN_RECORD_LINE) {
			/* A first line that begins with U+FEFF keeps it behind a byte
			 * order mark, which reading drops: the value reads back the same. */
			if (!b.len && rec->text_len >= 3 && !memcmp(rec->text, BOM, 3) &&
			    train_buf_add(&b, BOM, 3))
				goto nomem;
			if (train_buf_add(&b, rec->text, rec->text_len) || train_buf_add(&b, "\n", 1))
				goto nomem;
			continue;
		}
		if (kind < 0) {
			kind = (int)rec->kind;
			first = rec->line;
		} else if ((int)rec->kind != kind) {
			/* One value has one type: a file under INFER must not mix. */
			bool ex = rec->kind == TRAIN_RECORD_EXAMPLE;
			rc = bad_line(r, err, 0, "%s among %s (the first record, line %" PRIu64 ", is %s)",
			              ex ? "a labelled example" : "a document",
			              ex ? "documents" : "labelled examples", first,
			              ex ? "a document" : "a labelled example");
			if (rc)
				goto out;
			continue;
		}
		if ((rc = train_jsonl_canonical(&r->js, rec, &b)))
			goto nomem;
	}
	if (rc < 0)
		goto out;
	const char *type = TRAIN_CORPUS_TYPE_LINES;
	if (r->opt.format == TRAIN_CORPUS_JSONL)
		type = kind == TRAIN_RECORD_EXAMPLE || (kind < 0 && r->opt.schema == TRAIN_JSONL_EXAMPLES)
		       ? TRAIN_CORPUS_TYPE_EXAMPLES : TRAIN_CORPUS_TYPE_DOCUMENTS;
	rc = train_value_new_take(type, b.data, b.len, out);
	b.data = NULL; /* taken, also on failure */
	if (rc)
		rc = train_error_set(err, rc, r->name, 0, 0, "out of memory");
	goto out;
nomem:
	rc = fail(r, err, TRAIN_ENOMEM, clamp_line(r->lineno), 0, "out of memory");
out:
	train_buf_free(&b);
	return rc;
}

int train_corpus_load_value(const char *path, const train_corpus_options *opt,
                            train_value **out, train_error *err)
{
	if (out)
		*out = NULL;
	train_corpus *r;
	int rc = train_corpus_open(path, opt, &r, err);
	if (rc)
		return rc;
	rc = train_corpus_to_value(r, out, err);
	train_corpus_close(r);
	return rc;
}
