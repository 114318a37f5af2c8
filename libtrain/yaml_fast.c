/*
 * libtrain/yaml_fast.c - libyaml's events for the plain block subset of
 * YAML (yaml_fast.h), in one pass over lines.
 *
 * The subset: block maps with plain keys and block sequences, nested by
 * indentation with spaces; values that are plain scalars on one line,
 * single-quoted scalars without '' and double-quoted scalars with the
 * common escapes, each on one line; one-line flow lists of such scalars
 * ("[]", "[a, b]") and "{}"; empty values (null); comments and blank lines
 * anywhere.  Anything else declines: other flow collections, block
 * scalars (| and >), anchors, aliases, tags, directives and document
 * markers, "? " keys, quoted keys, merge keys ("<<"), "- - " entries, a scalar that would
 * continue on the next line, tabs, CR, control characters and what libyaml
 * treats as line breaks (U+0085, U+2028, U+2029), a byte-order mark,
 * invalid UTF-8, nesting deeper than YF_MAX_DEPTH, and every layout that
 * libyaml refuses.  Declining is always safe: the caller then parses with
 * libyaml.
 *
 * Marks are libyaml's: a block map starts at its first key, a sequence at
 * its first '-', a scalar at its first character (a quoted one at its
 * quote), and an empty value just after its ':' or '-'.
 */
#include "yaml_fast.h"

#include <stdlib.h>
#include <string.h>

int train_yaml_fast = 1;

/* Well below the config reader's own limit, so that its message is kept. */
#define YF_MAX_DEPTH 128
/* libyaml refuses a simple key longer than 1024 characters. */
#define YF_MAX_KEY 1000

typedef struct yf_line {
	size_t s, e;           /* bytes of the line, without its '\n' */
	uint32_t ind;          /* leading spaces */
	bool content;          /* neither blank nor a comment */
	bool ascii;            /* every byte below 0x80 */
} yf_line;

typedef struct yf {
	const char *t;
	yf_line *L;
	size_t nl;
	size_t cur;            /* the current content line; nl at the end */
	yf_events *ev;
	int depth;
} yf;

/* 1 ok, 0 declined, -1 out of memory */
#define TRY(x)                   \
	do {                     \
		int r_ = (x);    \
		if (r_ != 1)     \
			return r_; \
	} while (0)

void yfast_free(yf_events *e)
{
	for (size_t i = 0; i < e->n_own; i++)
		free(e->own[i]);
	free(e->own);
	free(e->v);
	memset(e, 0, sizeof *e);
}

static int emit(yf *f, int type, size_t line, uint32_t col, const char *v, size_t len, int style)
{
	yf_events *e = f->ev;
	if (e->n == e->cap) {
		size_t nc = e->cap ? e->cap * 2 : 256;
		yf_event *nv = realloc(e->v, nc * sizeof *nv);
		if (!nv)
			return -1;
		e->v = nv;
		e->cap = nc;
	}
	yf_event *x = &e->v[e->n++];
	x->type = (uint8_t)type;
	x->style = (uint8_t)style;
	x->line = (uint32_t)line;
	x->col = col;
	x->value = v;
	x->len = len;
	return 1;
}

/* Column in characters of byte `off` of line `li`. */
static uint32_t colof(const yf *f, size_t li, size_t off)
{
	const yf_line *l = &f->L[li];
	if (l->ascii)
		return (uint32_t)(off - l->s);
	uint32_t c = 0;
	for (size_t i = l->s; i < off; i++)
		c += ((unsigned char)f->t[i] & 0xC0) != 0x80;
	return c;
}

static bool eof(const yf *f) { return f->cur >= f->nl; }

static void advance(yf *f)
{
	f->cur++;
	while (f->cur < f->nl && !f->L[f->cur].content)
		f->cur++;
}

/* "-" then a space or the end of the line */
static bool is_dash(const yf *f, size_t p, size_t e)
{
	return f->t[p] == '-' && (p + 1 == e || f->t[p + 1] == ' ');
}

/* A character that cannot start a plain scalar here (or might not). */
static bool indicator(char c)
{
	return strchr("-?:,[]{}#&*!|>'\"%@`", c) != NULL;
}

/* The ':' of a "KEY:" at `p` with a plain key, or 0. */
static size_t key_colon(const yf *f, size_t p, size_t e)
{
	const char *t = f->t;
	if (p >= e || indicator(t[p]))
		return 0;
	for (size_t i = p + 1; i < e && i - p <= YF_MAX_KEY; i++) {
		if (t[i] == '#' && t[i - 1] == ' ')
			return 0;
		if (t[i] == ':' && (i + 1 == e || t[i + 1] == ' '))
			return i;
	}
	return 0;
}

static size_t skip_spaces(const char *t, size_t p, size_t e)
{
	while (p < e && t[p] == ' ')
		p++;
	return p;
}

/* After a quoted scalar: spaces, then the end or a comment. */
static bool rest_ok(const char *t, size_t p, size_t e)
{
	size_t q = skip_spaces(t, p, e);
	return q == e || (t[q] == '#' && q > p);
}

/* The quoted scalar at `p` (its quote) on line `li`, ending before `e`:
 * emitted, with *end just past its closing quote.  Double-quoted texts may
 * have the common one-character escapes; others decline. */
static int quoted(yf *f, size_t li, size_t p, size_t e, size_t *end)
{
	const char *t = f->t;
	char c = t[p];
	size_t q = p + 1, esc = 0;
	while (q < e && t[q] != c) {
		if (c == '"' && t[q] == '\\') {
			if (q + 1 >= e || !strchr("0abtnvfre \"/\\", t[q + 1]))
				return 0;
			esc++;
			q++;
		}
		q++;
	}
	if (q >= e || (c == '\'' && q + 1 < e && t[q + 1] == '\''))
		return 0;
	const char *v = t + p + 1;
	size_t n = q - p - 1;
	if (esc) {
		yf_events *ev = f->ev;
		if (ev->n_own == ev->cap_own) {
			size_t nc = ev->cap_own ? ev->cap_own * 2 : 16;
			char **no = realloc(ev->own, nc * sizeof *no);
			if (!no)
				return -1;
			ev->own = no;
			ev->cap_own = nc;
		}
		char *d = malloc(n + 1);
		if (!d)
			return -1;
		ev->own[ev->n_own++] = d;
		size_t k = 0;
		for (size_t i = p + 1; i < q; i++) {
			if (t[i] != '\\') {
				d[k++] = t[i];
				continue;
			}
			static const char from[] = "0abtnvfre", to[] = "\0\a\b\t\n\v\f\r\x1b";
			const char *x = strchr(from, t[++i]);
			d[k++] = x ? to[x - from] : t[i];
		}
		d[k] = '\0';
		v = d;
		n = k;
	}
	*end = q + 1;
	return emit(f, YF_SCALAR, li, colof(f, li, p), v, n, c == '"' ? YF_DOUBLE : YF_SINGLE);
}

/* A one-line flow list at `p` ('['): scalars without indicators in them,
 * or quoted ones. */
static int flow_list(yf *f, size_t li, size_t p, size_t e, size_t *end)
{
	const char *t = f->t;
	TRY(emit(f, YF_SEQ_START, li, colof(f, li, p), NULL, 0, 0));
	size_t q = skip_spaces(t, p + 1, e);
	if (q < e && t[q] == ']') {
		*end = q + 1;
		return emit(f, YF_SEQ_END, li, 0, NULL, 0, 0);
	}
	for (;;) {
		if (q >= e)
			return 0;
		if (t[q] == '"' || t[q] == '\'') {
			TRY(quoted(f, li, q, e, &q));
		} else {
			size_t s = q;
			while (q < e && (((unsigned char)t[q] >= 0x80) || (t[q] >= 'a' && t[q] <= 'z') ||
			                 (t[q] >= 'A' && t[q] <= 'Z') || (t[q] >= '0' && t[q] <= '9') ||
			                 strchr("_-./ ", t[q])))
				q++;
			size_t z = q;
			while (z > s && t[z - 1] == ' ')
				z--;
			if (z == s || t[s] == '-')
				return 0;
			TRY(emit(f, YF_SCALAR, li, colof(f, li, s), t + s, z - s, YF_PLAIN));
		}
		q = skip_spaces(t, q, e);
		if (q < e && t[q] == ']')
			break;
		if (q >= e || t[q] != ',')
			return 0;
		q = skip_spaces(t, q + 1, e);
		if (q < e && t[q] == ']')
			return 0; /* a trailing comma */
	}
	*end = q + 1;
	return emit(f, YF_SEQ_END, li, 0, NULL, 0, 0);
}

/* The scalar (or one-line flow list, or {}) at `p` of the current line, as
 * a value of a collection indented `n`; the next content line must not
 * continue it. */
static int scalar(yf *f, size_t p, uint32_t n)
{
	const char *t = f->t;
	size_t li = f->cur, e = f->L[li].e, end;
	char c = t[p];
	if (c == '"' || c == '\'' || c == '[' || c == '{') {
		if (c == '[') {
			TRY(flow_list(f, li, p, e, &end));
		} else if (c == '{') {
			end = skip_spaces(t, p + 1, e);
			if (end >= e || t[end] != '}')
				return 0;
			end++;
			TRY(emit(f, YF_MAP_START, li, colof(f, li, p), NULL, 0, 0));
			TRY(emit(f, YF_MAP_END, li, 0, NULL, 0, 0));
		} else {
			TRY(quoted(f, li, p, e, &end));
		}
		if (!rest_ok(t, end, e))
			return 0;
	} else {
		if (indicator(c))
			return 0;
		size_t q = p + 1;
		for (; q < e; q++) {
			if (t[q] == '#' && t[q - 1] == ' ')
				break;
			if (t[q] == ':' && (q + 1 == e || t[q + 1] == ' '))
				return 0;
		}
		while (t[q - 1] == ' ')
			q--;
		TRY(emit(f, YF_SCALAR, li, colof(f, li, p), t + p, q - p, YF_PLAIN));
	}
	advance(f);
	return eof(f) || f->L[f->cur].ind <= n ? 1 : 0;
}

static int block(yf *f);
static int seq(yf *f, uint32_t n, bool indentless);

/* A block map whose keys are at column `n`; the first one at byte `p` of
 * the current line, its ':' at `c`. */
static int map(yf *f, uint32_t n, size_t p, size_t c)
{
	const char *t = f->t;
	if (++f->depth > YF_MAX_DEPTH)
		return 0;
	TRY(emit(f, YF_MAP_START, f->cur, n, NULL, 0, 0));
	for (;;) {
		size_t li = f->cur, e = f->L[li].e, ke = c;
		while (t[ke - 1] == ' ')
			ke--;
		/* a merge key copies nodes: libyaml's reading, without the arena */
		if (ke - p == 2 && t[p] == '<' && t[p + 1] == '<')
			return 0;
		TRY(emit(f, YF_SCALAR, li, n, t + p, ke - p, YF_PLAIN));
		size_t v = skip_spaces(t, c + 1, e);
		if (v == e || t[v] == '#') {
			uint32_t after = colof(f, li, c) + 1;
			advance(f);
			if (!eof(f) && f->L[f->cur].ind > n)
				TRY(block(f));
			else if (!eof(f) && f->L[f->cur].ind == n && is_dash(f, f->L[f->cur].s + n, f->L[f->cur].e))
				TRY(seq(f, n, true));
			else
				TRY(emit(f, YF_SCALAR, li, after, t + c + 1, 0, YF_PLAIN));
		} else {
			TRY(scalar(f, v, n));
		}
		if (eof(f) || f->L[f->cur].ind < n)
			break;
		const yf_line *l = &f->L[f->cur];
		if (l->ind > n)
			return 0;
		p = l->s + n;
		if (!(c = key_colon(f, p, l->e)))
			return 0;
	}
	f->depth--;
	return emit(f, YF_MAP_END, f->cur, 0, NULL, 0, 0);
}

/* A block sequence whose '-' are at column `n`; `indentless`: the value of
 * a map key at that same column. */
static int seq(yf *f, uint32_t n, bool indentless)
{
	const char *t = f->t;
	if (++f->depth > YF_MAX_DEPTH)
		return 0;
	TRY(emit(f, YF_SEQ_START, f->cur, n, NULL, 0, 0));
	while (!eof(f) && f->L[f->cur].ind == n && is_dash(f, f->L[f->cur].s + n, f->L[f->cur].e)) {
		size_t li = f->cur, s = f->L[li].s, e = f->L[li].e;
		size_t d = s + n, v = skip_spaces(t, d + 1, e), c;
		if (v == e || t[v] == '#') {
			advance(f);
			if (!eof(f) && f->L[f->cur].ind > n)
				TRY(block(f));
			else
				TRY(emit(f, YF_SCALAR, li, n + 1, t + d + 1, 0, YF_PLAIN));
		} else if (is_dash(f, v, e)) {
			return 0;
		} else if ((c = key_colon(f, v, e))) {
			TRY(map(f, (uint32_t)(v - s), v, c));
		} else {
			TRY(scalar(f, v, n));
		}
	}
	if (!eof(f) && (f->L[f->cur].ind > n || (!indentless && f->L[f->cur].ind == n)))
		return 0;
	f->depth--;
	return emit(f, YF_SEQ_END, f->cur, 0, NULL, 0, 0);
}

/* The collection that starts on the current line. */
static int block(yf *f)
{
	const yf_line *l = &f->L[f->cur];
	size_t p = l->s + l->ind, c;
	if (is_dash(f, p, l->e))
		return seq(f, l->ind, false);
	if ((c = key_colon(f, p, l->e)))
		return map(f, l->ind, p, c);
	return 0;
}

/* Split into lines, checking every character on the way. */
static int lines(yf *f, const char *t, size_t len)
{
	size_t cap = 64, n = 0;
	yf_line *L = malloc(cap * sizeof *L);
	if (!L)
		return -1;
	size_t i = 0;
	while (i < len) {
		if (n == cap) {
			yf_line *nl = realloc(L, cap * 2 * sizeof *nl);
			if (!nl) {
				free(L);
				return -1;
			}
			L = nl;
			cap *= 2;
		}
		yf_line *l = &L[n++];
		l->s = i;
		l->ascii = true;
		while (i < len && t[i] == ' ')
			i++;
		l->ind = (uint32_t)(i - l->s);
		l->content = i < len && t[i] != '\n' && t[i] != '#';
		if (l->ind > UINT32_MAX / 2)
			goto no;
		while (i < len && t[i] != '\n') {
			unsigned char b = (unsigned char)t[i];
			if (b < 0x80) {
				if (b < 0x20 || b == 0x7F)
					goto no;
				i++;
				continue;
			}
			l->ascii = false;
			uint32_t cp;
			size_t k;
			if (b >= 0xC2 && b <= 0xDF) {
				cp = b & 0x1F;
				k = 1;
			} else if (b >= 0xE0 && b <= 0xEF) {
				cp = b & 0x0F;
				k = 2;
			} else if (b >= 0xF0 && b <= 0xF4) {
				cp = b & 0x07;
				k = 3;
			} else {
				goto no;
			}
			if (len - i <= k)
				goto no;
			for (size_t j = 1; j <= k; j++) {
				unsigned char x = (unsigned char)t[i + j];
				if ((x & 0xC0) != 0x80)
					goto no;
				cp = cp << 6 | (x & 0x3F);
			}
			if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
			    cp < 0xA0 || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFEFF || cp == 0xFFFE ||
			    cp == 0xFFFF || cp == 0x2028 || cp == 0x2029)
				goto no;
			i += k + 1;
		}
		l->e = i;
		/* document markers and directives */
		if (l->ind == 0 && l->content &&
		    ((l->e - l->s >= 3 && (memcmp(t + l->s, "---", 3) == 0 || memcmp(t + l->s, "...", 3) == 0)) ||
		     t[l->s] == '%'))
			goto no;
		if (i < len)
			i++; /* the '\n' */
	}
	f->L = L;
	f->nl = n;
	return 1;
no:
	free(L);
	return 0;
}

int yfast_scan(const char *text, size_t len, yf_events *out)
{
	memset(out, 0, sizeof *out);
	if (!text || len == 0 || len > UINT32_MAX)
		return 0;
	yf f = { .t = text, .ev = out };
	int r = lines(&f, text, len);
	if (r != 1)
		return r;
	f.cur = 0;
	while (f.cur < f.nl && !f.L[f.cur].content)
		f.cur++;
	if (eof(&f)) {
		r = 0;
		goto out;
	}
	size_t first = f.cur;
	if ((r = emit(&f, YF_STREAM_START, 0, 0, NULL, 0, 0)) != 1 ||
	    (r = emit(&f, YF_DOC_START, first, f.L[first].ind, NULL, 0, 0)) != 1 || (r = block(&f)) != 1)
		goto out;
	if (!eof(&f)) {
		r = 0;
		goto out;
	}
	if ((r = emit(&f, YF_DOC_END, f.nl, 0, NULL, 0, 0)) != 1)
		goto out;
	r = emit(&f, YF_STREAM_END, f.nl, 0, NULL, 0, 0);
out:
	free(f.L);
	if (r != 1)
		yfast_free(out);
	return r;
}
