/*
 * plugins/common/pyre.c - Python-`re`-style regular expressions (pyre.h).
 *
 * The pattern is parsed into a tree: a body is a list of alternatives,
 * each a sequence of nodes.  Matching is backtracking with explicit
 * continuations (what to match after the current node), as Python's sre
 * does it in effect: alternatives are tried in order and repeats are
 * greedy unless lazy, so the first match found is Python's match.
 * Repeats of a single-character node loop without recursion, so "\w+"
 * over a long word costs no stack.
 */
#include "pyre.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

enum {
	N_CHAR, N_ANY, N_CLASS, N_BOL, N_EOL, N_BOS, N_EOS, N_WB, N_NWB,
	N_GROUP, N_REP, N_LOOK, N_BACKREF,
};

/* Class escapes inside [...] or alone. */
enum { C_DIGIT = 1, C_NDIGIT = 2, C_WORD = 4, C_NWORD = 8, C_SPACE = 16, C_NSPACE = 32 };

typedef struct cls {
	uint32_t (*r)[2];
	size_t n, cap;
	int esc;      /* C_* bits */
	int neg;
} cls;

typedef struct node node;
typedef struct seq {
	node **v;
	size_t n, cap;
} seq;
typedef struct body {
	seq *alt;
	size_t n;
} body;

struct node {
	int type;
	uint32_t c;         /* N_CHAR (lowered when ignoring case) */
	cls *cl;            /* N_CLASS */
	int group;          /* N_GROUP: capture index, -1 none; N_BACKREF: index */
	body b;             /* N_GROUP, N_LOOK */
	int min, max, lazy; /* N_REP; max -1: no limit */
	node *child;        /* N_REP */
	int behind, neg;    /* N_LOOK */
	size_t width;       /* N_LOOK behind: fixed width */
};

struct pyre {
	node *top;          /* a group 0 node */
	size_t ngroups;
	int icase, multiline, dotall, ascii;
};

/* ---- parsing ------------------------------------------------------------- */

typedef struct P {
	const uint32_t *p;
	size_t n, i;
	pyre *re;
	char *err;
	size_t errsize;
	int rc;
	int depth;
} P;

static void perr(P *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void perr(P *ps, const char *fmt, ...)
{
	if (ps->rc)
		return;
	ps->rc = PYRE_ESYNTAX;
	if (ps->err && ps->errsize) {
		char msg[200];
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(msg, sizeof msg, fmt, ap);
		va_end(ap);
		snprintf(ps->err, ps->errsize, "%s at position %zu", msg, ps->i);
	}
}

static void oom(P *ps)
{
	if (!ps->rc)
		ps->rc = PYRE_ENOMEM;
}

static void node_free(node *nd);

static void body_free(body *b)
{
	for (size_t i = 0; i < b->n; i++) {
		for (size_t j = 0; j < b->alt[i].n; j++)
			node_free(b->alt[i].v[j]);
		free(b->alt[i].v);
	}
	free(b->alt);
	b->alt = NULL;
	b->n = 0;
}

static void node_free(node *nd)
{
	if (!nd)
		return;
	if (nd->cl) {
		free(nd->cl->r);
		free(nd->cl);
	}
	body_free(&nd->b);
	node_free(nd->child);
	free(nd);
}

static node *new_node(P *ps, int type)
{
	node *nd = calloc(1, sizeof *nd);
	if (!nd) {
		oom(ps);
		return NULL;
	}
	nd->type = type;
	nd->group = -1;
	return nd;
}

static int seq_add(P *ps, seq *s, node *nd)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 8;
		node **v = realloc(s->v, cap * sizeof *v);
		if (!v) {
			node_free(nd);
			oom(ps);
			return -1;
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = nd;
	return 0;
}

static int cls_add(P *ps, cls *c, uint32_t a, uint32_t b)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 8;
		uint32_t (*r)[2] = realloc(c->r, cap * sizeof *r);
		if (!r) {
			oom(ps);
			return -1;
		}
		c->r = r;
		c->cap = cap;
	}
	c->r[c->n][0] = a;
	c->r[c->n][1] = b;
	c->n++;
	return 0;
}

static int hexval(uint32_t c)
{
	if (c >= '0' && c <= '9')
		return (int)(c - '0');
	if (c >= 'a' && c <= 'f')
		return (int)(c - 'a' + 10);
	if (c >= 'A' && c <= 'F')
		return (int)(c - 'A' + 10);
	return -1;
}

static int is_ascii_alnum(uint32_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/*
 * An escape after '\' (ps->i at the character after it).  Returns the
 * literal code point, or sets *esc to a C_* class bit, or *node_type to an
 * assertion, or *backref.  `in_class`: inside [...], where \b is a
 * backspace and assertions are errors.
 */
static uint32_t parse_escape(P *ps, int in_class, int *esc, int *node_type, int *backref)
{
	*esc = 0;
	*node_type = -1;
	*backref = 0;
	if (ps->i >= ps->n) {
		perr(ps, "bad escape (end of pattern)");
		return 0;
	}
	uint32_t c = ps->p[ps->i++];
	switch (c) {
	case 'd': *esc = C_DIGIT; return 0;
	case 'D': *esc = C_NDIGIT; return 0;
	case 'w': *esc = C_WORD; return 0;
	case 'W': *esc = C_NWORD; return 0;
	case 's': *esc = C_SPACE; return 0;
	case 'S': *esc = C_NSPACE; return 0;
	case 'n': return '\n';
	case 't': return '\t';
	case 'r': return '\r';
	case 'f': return '\f';
	case 'v': return '\v';
	case 'a': return 7;
	case 'b':
		if (in_class)
			return 8;
		*node_type = N_WB;
		return 0;
	case 'B': case 'A': case 'Z':
		if (in_class) {
			perr(ps, "bad escape \\%c in a character set", (char)c);
			return 0;
		}
		*node_type = c == 'B' ? N_NWB : c == 'A' ? N_BOS : N_EOS;
		return 0;
	case 'x': case 'u': case 'U': {
		int digits = c == 'x' ? 2 : c == 'u' ? 4 : 8;
		uint32_t v = 0;
		for (int k = 0; k < digits; k++) {
			int h = ps->i < ps->n ? hexval(ps->p[ps->i]) : -1;
			if (h < 0) {
				perr(ps, "incomplete escape \\%c", (char)c);
				return 0;
			}
			v = v * 16 + (uint32_t)h;
			ps->i++;
		}
		if (v > 0x10ffff) {
			perr(ps, "bad escape \\%c", (char)c);
			return 0;
		}
		return v;
	}
	case '0': {
		/* octal: \0, \0n, \0nn */
		uint32_t v = 0;
		for (int k = 0; k < 2 && ps->i < ps->n && ps->p[ps->i] >= '0' && ps->p[ps->i] <= '7'; k++)
			v = v * 8 + (ps->p[ps->i++] - '0');
		return v;
	}
	default:
		break;
	}
	if (c >= '1' && c <= '9') {
		if (in_class) {
			perr(ps, "bad escape \\%c in a character set", (char)c);
			return 0;
		}
		int v = (int)(c - '0');
		if (ps->i < ps->n && ps->p[ps->i] >= '0' && ps->p[ps->i] <= '9')
			v = v * 10 + (int)(ps->p[ps->i++] - '0');
		*backref = v;
		return 0;
	}
	if (is_ascii_alnum(c)) {
		perr(ps, "bad escape \\%c", (char)c);
		return 0;
	}
	return c; /* an escaped symbol stands for itself */
}

static node *parse_class(P *ps)
{
	node *nd = new_node(ps, N_CLASS);
	cls *c = nd ? calloc(1, sizeof *c) : NULL;
	if (!c) {
		node_free(nd);
		oom(ps);
		return NULL;
	}
	nd->cl = c;
	if (ps->i < ps->n && ps->p[ps->i] == '^') {
		c->neg = 1;
		ps->i++;
	}
	int first = 1;
	while (!ps->rc) {
		if (ps->i >= ps->n) {
			perr(ps, "unterminated character set");
			break;
		}
		uint32_t ch = ps->p[ps->i];
		if (ch == ']' && !first) {
			ps->i++;
			break;
		}
		first = 0;
		ps->i++;
		uint32_t lo = ch;
		if (ch == '\\') {
			int esc, nt, br;
			lo = parse_escape(ps, 1, &esc, &nt, &br);
			if (esc) {
				c->esc |= esc;
				continue;
			}
		}
		uint32_t hi = lo;
		if (ps->i + 1 < ps->n && ps->p[ps->i] == '-' && ps->p[ps->i + 1] != ']') {
			ps->i++;
			uint32_t h = ps->p[ps->i++];
			if (h == '\\') {
				int esc, nt, br;
				h = parse_escape(ps, 1, &esc, &nt, &br);
				if (esc) {
					perr(ps, "bad character range");
					break;
				}
			}
			if (h < lo) {
				perr(ps, "bad character range");
				break;
			}
			hi = h;
		}
		cls_add(ps, c, lo, hi);
	}
	if (ps->rc) {
		node_free(nd);
		return NULL;
	}
	/* Ignoring case: add the lower-case forms, and match lower-cased text. */
	if (ps->re->icase) {
		size_t n0 = c->n;
		for (size_t k = 0; k < n0 && !ps->rc; k++) {
			uint32_t a = c->r[k][0], b = c->r[k][1];
			if (b - a > 0x30000)
				continue; /* huge ranges hold their lower-case forms anyway */
			for (uint32_t x = a; x <= b && !ps->rc; x++) {
				uint32_t l = text_tolower(x);
				if (l != x)
					cls_add(ps, c, l, l);
			}
		}
		if (ps->rc) {
			node_free(nd);
			return NULL;
		}
	}
	return nd;
}

static void parse_body(P *ps, body *b);

static size_t body_width(const body *b, int *fixed);

static size_t node_width(const node *nd, int *fixed)
{
	switch (nd->type) {
	case N_CHAR: case N_ANY: case N_CLASS:
		return 1;
	case N_GROUP:
		return body_width(&nd->b, fixed);
	case N_REP:
		if (nd->min != nd->max)
			*fixed = 0;
		return (size_t)nd->min * node_width(nd->child, fixed);
	case N_BACKREF:
		*fixed = 0;
		return 0;
	default:
		return 0; /* assertions and lookarounds take no width */
	}
}

static size_t body_width(const body *b, int *fixed)
{
	size_t w0 = 0;
	for (size_t i = 0; i < b->n; i++) {
		size_t w = 0;
		for (size_t j = 0; j < b->alt[i].n; j++)
			w += node_width(b->alt[i].v[j], fixed);
		if (i && w != w0)
			*fixed = 0;
		w0 = w;
	}
	return w0;
}

/* An atom: one node, or NULL at the end of a sequence ('|', ')', end). */
static node *parse_atom(P *ps)
{
	uint32_t c = ps->p[ps->i];
	if (c == '(') {
		ps->i++;
		node *nd = NULL;
		if (ps->i < ps->n && ps->p[ps->i] == '?') {
			ps->i++;
			uint32_t k = ps->i < ps->n ? ps->p[ps->i] : 0;
			if (k == ':') {
				ps->i++;
				nd = new_node(ps, N_GROUP);
			} else if (k == 'P' && ps->i + 1 < ps->n && ps->p[ps->i + 1] == '<') {
				ps->i += 2;
				while (ps->i < ps->n && ps->p[ps->i] != '>')
					ps->i++;
				if (ps->i >= ps->n) {
					perr(ps, "missing >, unterminated name");
					return NULL;
				}
				ps->i++;
				if ((nd = new_node(ps, N_GROUP)))
					nd->group = (int)++ps->re->ngroups;
			} else if (k == '=' || k == '!') {
				ps->i++;
				if ((nd = new_node(ps, N_LOOK)))
					nd->neg = k == '!';
			} else if (k == '<' && ps->i + 1 < ps->n &&
			           (ps->p[ps->i + 1] == '=' || ps->p[ps->i + 1] == '!')) {
				if ((nd = new_node(ps, N_LOOK))) {
					nd->behind = 1;
					nd->neg = ps->p[ps->i + 1] == '!';
				}
				ps->i += 2;
			} else {
				perr(ps, "unsupported group (?%c", k ? (char)(k < 0x80 ? k : '?') : ' ');
				return NULL;
			}
		} else if ((nd = new_node(ps, N_GROUP))) {
			nd->group = (int)++ps->re->ngroups;
		}
		if (!nd)
			return NULL;
		if (++ps->depth > 200) {
			perr(ps, "too deeply nested");
			node_free(nd);
			return NULL;
		}
		parse_body(ps, &nd->b);
		ps->depth--;
		if (!ps->rc && (ps->i >= ps->n || ps->p[ps->i] != ')'))
			perr(ps, "missing ), unterminated subpattern");
		if (ps->rc) {
			node_free(nd);
			return NULL;
		}
		ps->i++;
		if (nd->type == N_LOOK && nd->behind) {
			int fixed = 1;
			nd->width = body_width(&nd->b, &fixed);
			if (!fixed) {
				perr(ps, "look-behind requires fixed-width pattern");
				node_free(nd);
				return NULL;
			}
		}
		return nd;
	}
	ps->i++;
	node *nd = NULL;
	switch (c) {
	case '.':
		return new_node(ps, N_ANY);
	case '^':
		return new_node(ps, N_BOL);
	case '$':
		return new_node(ps, N_EOL);
	case '[':
		return parse_class(ps);
	case '*': case '+': case '?':
		perr(ps, "nothing to repeat");
		return NULL;
	case '\\': {
		int esc, nt, br;
		uint32_t v = parse_escape(ps, 0, &esc, &nt, &br);
		if (ps->rc)
			return NULL;
		if (esc) {
			if ((nd = new_node(ps, N_CLASS)) && !(nd->cl = calloc(1, sizeof *nd->cl))) {
				node_free(nd);
				oom(ps);
				return NULL;
			}
			if (nd)
				nd->cl->esc = esc;
			return nd;
		}
		if (nt >= 0)
			return new_node(ps, nt);
		if (br) {
			if ((size_t)br > ps->re->ngroups) {
				perr(ps, "invalid group reference %d", br);
				return NULL;
			}
			if ((nd = new_node(ps, N_BACKREF)))
				nd->group = br;
			return nd;
		}
		c = v;
		break;
	}
	default:
		break;
	}
	if ((nd = new_node(ps, N_CHAR)))
		nd->c = ps->re->icase ? text_tolower(c) : c;
	return nd;
}

/* {m}, {m,}, {,n}, {m,n} at ps->i ('{'); 0 and i unchanged when it is a literal. */
static int parse_braces(P *ps, int *min, int *max)
{
	size_t i = ps->i + 1;
	long a = -1, b = -1;
	while (i < ps->n && ps->p[i] >= '0' && ps->p[i] <= '9' && a < 100000)
		a = (a < 0 ? 0 : a * 10) + (long)(ps->p[i++] - '0');
	int comma = 0;
	if (i < ps->n && ps->p[i] == ',') {
		comma = 1;
		i++;
		while (i < ps->n && ps->p[i] >= '0' && ps->p[i] <= '9' && b < 100000)
			b = (b < 0 ? 0 : b * 10) + (long)(ps->p[i++] - '0');
	}
	if (i >= ps->n || ps->p[i] != '}' || (a < 0 && !comma))
		return 0;
	if (a > 65535 || b > 65535) {
		perr(ps, "the repetition number is too large");
		return 0;
	}
	*min = a < 0 ? 0 : (int)a;
	*max = comma ? (b < 0 ? -1 : (int)b) : *min;
	if (*max >= 0 && *max < *min) {
		perr(ps, "min repeat greater than max repeat");
		return 0;
	}
	ps->i = i + 1;
	return 1;
}

static void parse_seq(P *ps, seq *s)
{
	while (!ps->rc && ps->i < ps->n && ps->p[ps->i] != '|' && ps->p[ps->i] != ')') {
		size_t at = ps->i;
		if (ps->p[at] == '{') {
			int mn, mx;
			if (parse_braces(ps, &mn, &mx)) {
				ps->i = at;
				perr(ps, "nothing to repeat");
				return;
			}
			if (ps->rc)
				return;
		}
		node *a = parse_atom(ps);
		if (!a)
			return;
		/* quantifiers */
		for (;;) {
			if (ps->i >= ps->n)
				break;
			uint32_t q = ps->p[ps->i];
			int mn, mx;
			if (q == '*')
				mn = 0, mx = -1, ps->i++;
			else if (q == '+')
				mn = 1, mx = -1, ps->i++;
			else if (q == '?')
				mn = 0, mx = 1, ps->i++;
			else if (q == '{' && parse_braces(ps, &mn, &mx))
				;
			else
				break;
			if (a->type == N_REP || a->type == N_BOL || a->type == N_EOL || a->type == N_BOS ||
			    a->type == N_EOS || a->type == N_WB || a->type == N_NWB || a->type == N_LOOK) {
				if (a->type == N_REP)
					perr(ps, "multiple repeat");
				else
					perr(ps, "nothing to repeat");
				node_free(a);
				return;
			}
			node *r = new_node(ps, N_REP);
			if (!r) {
				node_free(a);
				return;
			}
			r->min = mn;
			r->max = mx;
			r->child = a;
			if (ps->i < ps->n && ps->p[ps->i] == '?') {
				r->lazy = 1;
				ps->i++;
			}
			a = r;
			if (ps->i < ps->n && (ps->p[ps->i] == '*' || ps->p[ps->i] == '+' || ps->p[ps->i] == '?')) {
				perr(ps, "multiple repeat");
				node_free(a);
				return;
			}
		}
		if (ps->rc) {
			node_free(a);
			return;
		}
		if (seq_add(ps, s, a))
			return;
	}
}

static void parse_body(P *ps, body *b)
{
	for (;;) {
		seq *alt = realloc(b->alt, (b->n + 1) * sizeof *alt);
		if (!alt) {
			oom(ps);
			return;
		}
		b->alt = alt;
		memset(&alt[b->n], 0, sizeof *alt);
		b->n++;
		parse_seq(ps, &alt[b->n - 1]);
		if (ps->rc || ps->i >= ps->n || ps->p[ps->i] != '|')
			return;
		ps->i++;
	}
}

int pyre_compile(const char *pattern, int flags, pyre **out, char *err, size_t errsize)
{
	*out = NULL;
	if (err && errsize)
		err[0] = '\0';
	size_t n = 0;
	uint32_t *p = text_decode(pattern, strlen(pattern), &n, NULL);
	pyre *re = calloc(1, sizeof *re);
	node *top = new_node(&(P){ 0 }, N_GROUP);
	if (!p || !re || !top) {
		free(p);
		free(re);
		node_free(top);
		return PYRE_ENOMEM;
	}
	re->icase = !!(flags & PYRE_IGNORECASE);
	top->group = 0;
	re->top = top;
	P ps = { p, n, 0, re, err, errsize, 0, 0 };
	/* global flags at the start: (?aimsux) */
	while (ps.i + 2 < n && p[ps.i] == '(' && p[ps.i + 1] == '?' && strchr("aimsux", (int)p[ps.i + 2]) &&
	       p[ps.i + 2]) {
		size_t j = ps.i + 2;
		while (j < n && p[j] < 0x80 && p[j] && strchr("aimsux", (int)p[j])) {
			switch (p[j]) {
			case 'a': re->ascii = 1; break;
			case 'i': re->icase = 1; break;
			case 'm': re->multiline = 1; break;
			case 's': re->dotall = 1; break;
			case 'x': perr(&ps, "verbose patterns (?x) are not supported"); break;
			default: break; /* u: Unicode is the default */
			}
			j++;
		}
		if (j >= n || p[j] != ')') {
			perr(&ps, "unsupported inline flags");
			break;
		}
		ps.i = j + 1;
	}
	if (!ps.rc)
		parse_body(&ps, &top->b);
	if (!ps.rc && ps.i < n)
		perr(&ps, "unbalanced parenthesis");
	free(p);
	if (ps.rc) {
		pyre_free(re);
		return ps.rc;
	}
	*out = re;
	return 0;
}

void pyre_free(pyre *re)
{
	if (!re)
		return;
	node_free(re->top);
	free(re);
}

size_t pyre_groups(const pyre *re) { return re->ngroups; }

/* ---- matching ------------------------------------------------------------ */

enum { K_SEQ, K_GROUP, K_REP, K_LOOK, K_LOOKAT };

typedef struct K K;
struct K {
	int kind;
	const seq *s;       /* K_SEQ */
	size_t i;
	const node *nd;     /* K_REP, K_GROUP */
	int count;          /* K_REP */
	size_t start;       /* K_REP: where the iteration began; K_GROUP: group start; K_LOOKAT: end */
	const K *next;
};

typedef struct M {
	const pyre *re;
	const uint32_t *t;
	size_t n;
	size_t *caps;       /* 2 per group, group 0 included; (size_t)-1 unset */
	long steps;
	int depth;
	int err;
	size_t end;
	size_t no_empty_at; /* a match may not end here when it started here; (size_t)-1: none */
	size_t start;
} M;

static int run_k(M *m, const K *k, size_t pos);
static int run_node(M *m, const node *nd, size_t pos, const K *k);

static int is_word(const M *m, uint32_t c)
{
	if (m->re->ascii)
		return c < 0x80 && text_is_re_word(c);
	return text_is_re_word(c);
}

static int cls_has(const M *m, const cls *c, uint32_t ch)
{
	uint32_t x = m->re->icase ? text_tolower(ch) : ch;
	int in = 0;
	for (size_t k = 0; k < c->n && !in; k++)
		in = (x >= c->r[k][0] && x <= c->r[k][1]) || (ch >= c->r[k][0] && ch <= c->r[k][1]);
	if (!in && c->esc) {
		int ascii = m->re->ascii;
		int d = ascii ? (ch >= '0' && ch <= '9') : text_is_decimal(ch);
		int w = is_word(m, ch);
		int s = ascii ? (ch == ' ' || (ch >= 9 && ch <= 13)) : text_is_space(ch);
		in = ((c->esc & C_DIGIT) && d) || ((c->esc & C_NDIGIT) && !d) || ((c->esc & C_WORD) && w) ||
		     ((c->esc & C_NWORD) && !w) || ((c->esc & C_SPACE) && s) || ((c->esc & C_NSPACE) && !s);
	}
	return in != c->neg;
}

/* Does the one-character node `nd` match text[pos]? */
static int char_ok(const M *m, const node *nd, size_t pos)
{
	if (pos >= m->n)
		return 0;
	uint32_t ch = m->t[pos];
	switch (nd->type) {
	case N_CHAR:
		return (m->re->icase ? text_tolower(ch) : ch) == nd->c;
	case N_ANY:
		return m->re->dotall || ch != '\n';
	default:
		return cls_has(m, nd->cl, ch);
	}
}

static int run_seq(M *m, const seq *s, size_t i, size_t pos, const K *next)
{
	if (i == s->n)
		return run_k(m, next, pos);
	K k = { K_SEQ, s, i + 1, NULL, 0, 0, next };
	return run_node(m, s->v[i], pos, i + 1 == s->n ? next : &k);
}

static int run_body(M *m, const body *b, size_t pos, const K *next)
{
	for (size_t a = 0; a < b->n && !m->err; a++)
		if (run_seq(m, &b->alt[a], 0, pos, next))
			return 1;
	return 0;
}

static int run_rep(M *m, const node *nd, int count, size_t pos, size_t start, const K *next)
{
	int more = (nd->max < 0 || count < nd->max) && !(count > 0 && pos == start && count >= nd->min);
	K k = { K_REP, NULL, 0, nd, count + 1, pos, next };
	if (nd->lazy) {
		if (count >= nd->min && run_k(m, next, pos))
			return 1;
		return more && !m->err && run_node(m, nd->child, pos, &k);
	}
	if (more && run_node(m, nd->child, pos, &k))
		return 1;
	return count >= nd->min && !m->err && run_k(m, next, pos);
}

static int run_k(M *m, const K *k, size_t pos)
{
	if (m->err)
		return 0;
	if (!k) {
		if (pos == m->start && pos == m->no_empty_at)
			return 0;
		m->end = pos;
		return 1;
	}
	switch (k->kind) {
	case K_SEQ:
		return run_seq(m, k->s, k->i, pos, k->next);
	case K_GROUP: {
		size_t g = (size_t)k->nd->group, s0 = m->caps[2 * g], e0 = m->caps[2 * g + 1];
		m->caps[2 * g] = k->start;
		m->caps[2 * g + 1] = pos;
		if (run_k(m, k->next, pos))
			return 1;
		m->caps[2 * g] = s0;
		m->caps[2 * g + 1] = e0;
		return 0;
	}
	case K_REP:
		return run_rep(m, k->nd, k->count, pos, k->start, k->next);
	case K_LOOK:
		return 1;
	case K_LOOKAT:
		return pos == k->start;
	default:
		return 0;
	}
}

static int run_node(M *m, const node *nd, size_t pos, const K *k)
{
	if (m->err)
		return 0;
	if (++m->steps > PYRE_MAX_STEPS || m->depth >= PYRE_MAX_DEPTH) {
		m->err = PYRE_ELIMIT;
		return 0;
	}
	const uint32_t *t = m->t;
	size_t n = m->n;
	int r = 0;
	m->depth++;
	switch (nd->type) {
	case N_CHAR: case N_ANY: case N_CLASS:
		r = char_ok(m, nd, pos) && run_k(m, k, pos + 1);
		break;
	case N_BOL:
		r = (pos == 0 || (m->re->multiline && t[pos - 1] == '\n')) && run_k(m, k, pos);
		break;
	case N_EOL:
		r = (pos == n || (pos + 1 == n && t[pos] == '\n') || (m->re->multiline && t[pos] == '\n')) &&
		    run_k(m, k, pos);
		break;
	case N_BOS:
		r = pos == 0 && run_k(m, k, pos);
		break;
	case N_EOS:
		r = pos == n && run_k(m, k, pos);
		break;
	case N_WB: case N_NWB: {
		int a = pos > 0 && is_word(m, t[pos - 1]), b = pos < n && is_word(m, t[pos]);
		r = ((a != b) == (nd->type == N_WB)) && run_k(m, k, pos);
		break;
	}
	case N_GROUP:
		if (nd->group >= 0) {
			K kg = { K_GROUP, NULL, 0, nd, 0, pos, k };
			r = run_body(m, &nd->b, pos, &kg);
		} else {
			r = run_body(m, &nd->b, pos, k);
		}
		break;
	case N_REP: {
		const node *c = nd->child;
		if (c->type == N_CHAR || c->type == N_ANY || c->type == N_CLASS) {
			/* one character per iteration: count, then back off (or step up, lazily) */
			size_t cnt = 0;
			while ((nd->max < 0 || cnt < (size_t)nd->max) && char_ok(m, c, pos + cnt))
				cnt++;
			m->steps += (long)cnt; /* the scan is work too: count it against the limit */
			if (cnt < (size_t)nd->min)
				break;
			if (nd->lazy) {
				for (size_t j = (size_t)nd->min; j <= cnt && !r && !m->err; j++)
					r = run_k(m, k, pos + j);
			} else {
				for (size_t j = cnt + 1; j-- > (size_t)nd->min && !r && !m->err;)
					r = run_k(m, k, pos + j);
			}
			break;
		}
		r = run_rep(m, nd, 0, pos, (size_t)-1, k);
		break;
	}
	case N_LOOK: {
		int ok;
		if (nd->behind) {
			K kl = { K_LOOKAT, NULL, 0, NULL, 0, pos, NULL };
			ok = pos >= nd->width && run_body(m, &nd->b, pos - nd->width, &kl);
		} else {
			K kl = { K_LOOK, NULL, 0, NULL, 0, 0, NULL };
			ok = run_body(m, &nd->b, pos, &kl);
		}
		r = !m->err && ok != nd->neg && run_k(m, k, pos);
		break;
	}
	case N_BACKREF: {
		size_t g = (size_t)nd->group, s = m->caps[2 * g], e = m->caps[2 * g + 1];
		if (s == (size_t)-1 || e == (size_t)-1)
			break;
		size_t len = e - s;
		if (len > n - pos)
			break;
		int same = 1;
		for (size_t j = 0; j < len && same; j++)
			same = m->re->icase ? text_tolower(t[s + j]) == text_tolower(t[pos + j])
			                    : t[s + j] == t[pos + j];
		r = same && run_k(m, k, pos + len);
		break;
	}
	default:
		break;
	}
	m->depth--;
	return r;
}

int pyre_search(const pyre *re, const uint32_t *text, size_t n, size_t from, int advance, size_t *ms,
                size_t *me, size_t *g1)
{
	size_t ncap = 2 * (re->ngroups + 1);
	size_t *caps = malloc(ncap * sizeof *caps);
	if (!caps)
		return PYRE_ENOMEM;
	M m = { re, text, n, caps, 0, 0, 0, 0, advance ? from : (size_t)-1, 0 };
	int found = 0;
	for (size_t s = from; s <= n && !found && !m.err; s++) {
		for (size_t j = 0; j < ncap; j++)
			caps[j] = (size_t)-1;
		m.start = s;
		if (run_node(&m, re->top, s, NULL)) {
			found = 1;
			*ms = s;
			*me = m.end;
			if (g1) {
				g1[0] = re->ngroups ? caps[2] : (size_t)-1;
				g1[1] = re->ngroups ? caps[3] : (size_t)-1;
			}
		}
	}
	free(caps);
	if (m.err)
		return m.err;
	return found;
}
