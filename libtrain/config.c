/*
 * libtrain/config.c - configuration trees (<train/config.h>).
 *
 * Sections: the node type and its getters; parsing YAML with libyaml's
 * event API (yaml_parser_parse) and typing plain scalars with the YAML 1.2
 * core schema; copying; validation against a component's train_param
 * table; the canonical bytes that fingerprints hash; one-line flow text.
 *
 * Left out on purpose: anchors and aliases (a config is a tree, and an
 * alias would make one value appear twice in the canonical form), tags
 * other than !!str/!!map/!!seq, multiple documents, and writing block YAML.
 * The Rasa readers parse with train_config_parse_flags() (util.h), which
 * can take anchors, aliases (each alias becomes a copy of its anchor's
 * node, with the anchor's places; at most CFG_MAX_ALIAS_NODES nodes copied
 * in all, so that nested aliases cannot blow a small file up) and "<<"
 * merge keys, and `${VAR}` in plain scalars as Rasa substitutes them.
 *
 * Numbers are read and written in the "C" numeric locale (uselocale, per
 * thread) so that a host that called setlocale() cannot change what "0.5"
 * means or the bytes a fingerprint is computed from.
 */
#include "config_private.h"
#include <train/config.h>

#include "util.h"

#include "yaml_fast.h"

#include <yaml.h>

#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Deeper nesting than this is refused: the parser, copy and destroy recurse. */
#define CFG_MAX_DEPTH 256

/* ------------------------------------------------------------------------
 * The node.
 */

struct train_config {
	train_cfg_kind kind;
	char *file;            /* never NULL; "" when unknown */
	unsigned line, col;    /* 1-based; 0 when unknown */
	char *text;            /* scalars: the text as written, NUL-terminated;
	                          NULL for null, list and map */
	size_t text_len;       /* bytes in `text` (a "\0" escape may be inside) */
	bool b;                /* BOOL */
	int64_t i;             /* INT */
	double f;              /* FLOAT */
	train_config **items;  /* LIST items, MAP values */
	train_config **keys;   /* MAP keys: STRING nodes, with their own location;
	                          in the block of `items`, after `cap` values */
	size_t len, cap;
	size_t *slots;         /* big MAPs: hash index of keys, open addressing;
	                          a slot holds index + 1, 0 is empty */
	size_t nslots;         /* a power of two, at least twice `len` */
	bool text_inline;      /* `text` lives in the node's own allocation */
	bool arena_owner;      /* the root of an arena tree: frees the arena */
	struct cfg_arena *arena; /* set: the node and what it points to live in
	                            this arena, freed with the tree's root */
};

/* ------------------------------------------------------------------------
 * Arenas: a tree that the fast reader read (no aliases or merges, so no
 * node is shared or copied in) is allocated in chunks and freed at once.
 */

typedef struct cfg_chunk {
	struct cfg_chunk *next;
	size_t used, size;
	size_t pad_;           /* keeps the data 16-byte aligned */
} cfg_chunk;

typedef struct cfg_arena {
	cfg_chunk *head;
	char *file;            /* the file name of every node, once */
} cfg_arena;

static cfg_arena *arena_new(const char *file)
{
	size_t flen = strlen(file ? file : "");
	cfg_arena *a = malloc(sizeof *a + flen + 1);
	if (!a)
		return NULL;
	a->head = NULL;
	a->file = (char *)(a + 1);
	memcpy(a->file, file ? file : "", flen + 1);
	return a;
}

static void arena_free(cfg_arena *a)
{
	if (!a)
		return;
	for (cfg_chunk *c = a->head, *next; c; c = next) {
		next = c->next;
		free(c);
	}
	free(a);
}

/* `n` zeroed bytes, 16-byte aligned. */
static void *arena_alloc(cfg_arena *a, size_t n)
{
	if (n > SIZE_MAX / 2)
		return NULL;
	n = (n + 15) & ~(size_t)15;
	cfg_chunk *c = a->head;
	if (!c || c->size - c->used < n) {
		size_t sz = c && c->size < (1u << 20) ? c->size * 2 : 16384;
		if (sz < n)
			sz = n;
		cfg_chunk *nc = malloc(sizeof *nc + sz);
		if (!nc)
			return NULL;
		nc->next = c;
		nc->used = 0;
		nc->size = sz;
		a->head = c = nc;
	}
	void *p = (char *)(c + 1) + c->used;
	c->used += n;
	memset(p, 0, n);
	return p;
}

/* A node in arena `a`, with the text `text` (len bytes) when has_text. */
static train_config *node_in(cfg_arena *a, train_cfg_kind kind, unsigned line, unsigned col,
                             const char *text, size_t len, bool has_text)
{
	if (has_text && len > SIZE_MAX / 4)
		return NULL;
	train_config *n = arena_alloc(a, sizeof *n + (has_text ? len + 1 : 0));
	if (!n)
		return NULL;
	n->arena = a;
	n->file = a->file;
	n->kind = kind;
	n->line = line;
	n->col = col;
	if (has_text) {
		n->text = (char *)(n + 1);
		if (len)
			memcpy(n->text, text, len);
		n->text[len] = '\0';
		n->text_len = len;
		n->text_inline = true;
	}
	return n;
}

/* Maps with more keys than this get a hash index, so that parsing (which
 * looks every key up to refuse duplicates) and lookups stay fast for a
 * recipe with thousands of nodes. */
#define CFG_INDEX_MIN 16

/* The file name lives in the node's own allocation (one malloc per node). */
static train_config *node_new(train_cfg_kind kind, const char *file, unsigned line, unsigned col)
{
	size_t flen = strlen(file ? file : "");
	train_config *n = calloc(1, sizeof *n + flen + 1);
	if (!n)
		return NULL;
	n->file = (char *)(n + 1);
	memcpy(n->file, file ? file : "", flen + 1);
	n->kind = kind;
	n->line = line;
	n->col = col;
	return n;
}

/* A scalar node with its text, in one allocation (node, file name, text). */
static train_config *node_new_text(train_cfg_kind kind, const char *file, unsigned line,
                                   unsigned col, const char *text, size_t len)
{
	size_t flen = strlen(file ? file : "");
	if (len > SIZE_MAX - sizeof(train_config) - flen - 2)
		return NULL;
	train_config *n = calloc(1, sizeof *n + flen + 1 + len + 1);
	if (!n)
		return NULL;
	n->file = (char *)(n + 1);
	memcpy(n->file, file ? file : "", flen + 1);
	n->text = n->file + flen + 1;
	if (len)
		memcpy(n->text, text, len);
	n->text[len] = '\0';
	n->text_len = len;
	n->text_inline = true;
	n->kind = kind;
	n->line = line;
	n->col = col;
	return n;
}

static void node_drop_text(train_config *n)
{
	if (!n->text_inline && !n->arena)
		free(n->text);
	n->text = NULL;
	n->text_inline = false;
}

static int node_set_text(train_config *n, const char *text, size_t len)
{
	char *t = n->arena ? arena_alloc(n->arena, len + 1) : malloc(len + 1);
	if (!t)
		return TRAIN_ENOMEM;
	memcpy(t, text, len);
	t[len] = '\0';
	node_drop_text(n);
	n->text = t;
	n->text_len = len;
	return TRAIN_OK;
}

/* FNV-1a: keys are short, and the index only needs a spread. */
static size_t key_hash(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return (size_t)h;
}

static void index_put(train_config *m, size_t i)
{
	size_t mask = m->nslots - 1;
	size_t at = key_hash(m->keys[i]->text, m->keys[i]->text_len) & mask;
	while (m->slots[at])
		at = (at + 1) & mask;
	m->slots[at] = i + 1;
}

/* Index key `m->len - 1`, which was just appended; rebuild when full. */
static int index_add(train_config *m)
{
	if (m->len <= CFG_INDEX_MIN)
		return TRAIN_OK;
	if (m->slots && m->len * 2 <= m->nslots) {
		index_put(m, m->len - 1);
		return TRAIN_OK;
	}
	size_t ns = 64;
	while (ns < m->len * 4)
		ns *= 2;
	size_t *slots = m->arena ? arena_alloc(m->arena, ns * sizeof *slots) : calloc(ns, sizeof *slots);
	if (!slots)
		return TRAIN_ENOMEM;
	if (!m->arena)
		free(m->slots);
	m->slots = slots;
	m->nslots = ns;
	for (size_t i = 0; i < m->len; i++)
		index_put(m, i);
	return TRAIN_OK;
}

/* Append an item (list) or a key and value (map); takes both on success. */
static int node_push(train_config *n, train_config *key, train_config *value)
{
	if (n->len == n->cap) {
		/* A map's keys follow its values in the same block. */
		bool map = n->kind == TRAIN_CFG_MAP;
		size_t nc = n->cap ? n->cap * 2 : 4;
		if (nc > SIZE_MAX / (2 * sizeof(train_config *)))
			return TRAIN_ENOMEM;
		size_t bytes = nc * (map ? 2 : 1) * sizeof(train_config *);
		train_config **ni = n->arena ? arena_alloc(n->arena, bytes) : malloc(bytes);
		if (!ni)
			return TRAIN_ENOMEM;
		if (n->len) {
			memcpy(ni, n->items, n->len * sizeof *ni);
			if (map)
				memcpy(ni + nc, n->keys, n->len * sizeof *ni);
		}
		if (!n->arena)
			free(n->items);
		n->items = ni;
		if (map)
			n->keys = ni + nc;
		n->cap = nc;
	}
	if (n->kind == TRAIN_CFG_MAP)
		n->keys[n->len] = key;
	n->items[n->len++] = value;
	if (n->kind == TRAIN_CFG_MAP && index_add(n)) {
		n->len--; /* the caller still owns key and value */
		return TRAIN_ENOMEM;
	}
	return TRAIN_OK;
}

void train_config_destroy(train_config *c)
{
	if (!c)
		return;
	if (c->arena) { /* the whole tree at once, by its root */
		if (c->arena_owner)
			arena_free(c->arena);
		return;
	}
	for (size_t i = 0; i < c->len; i++) {
		if (c->keys)
			train_config_destroy(c->keys[i]);
		train_config_destroy(c->items[i]);
	}
	free(c->items); /* and the keys of a map, in the same block */
	free(c->slots);
	node_drop_text(c);
	free(c);
}

/* Index of `key` in a map, or -1. */
static long map_find(const train_config *c, const char *key, size_t klen)
{
	if (!c || c->kind != TRAIN_CFG_MAP)
		return -1;
	if (c->slots) {
		size_t mask = c->nslots - 1;
		for (size_t at = key_hash(key, klen) & mask; c->slots[at]; at = (at + 1) & mask) {
			const train_config *k = c->keys[c->slots[at] - 1];
			if (k->text_len == klen && memcmp(k->text, key, klen) == 0)
				return (long)(c->slots[at] - 1);
		}
		return -1;
	}
	for (size_t i = 0; i < c->len; i++)
		if (c->keys[i]->text_len == klen && memcmp(c->keys[i]->text, key, klen) == 0)
			return (long)i;
	return -1;
}

/* ------------------------------------------------------------------------
 * Reading a tree.
 */

train_cfg_kind train_config_kind(const train_config *c)
{
	return c ? c->kind : TRAIN_CFG_NULL;
}

const train_config *train_config_get(const train_config *c, const char *key)
{
	if (!key)
		return NULL;
	long i = map_find(c, key, strlen(key));
	return i < 0 ? NULL : c->items[i];
}

size_t train_config_len(const train_config *c)
{
	if (!c || (c->kind != TRAIN_CFG_LIST && c->kind != TRAIN_CFG_MAP))
		return 0;
	return c->len;
}

const train_config *train_config_at(const train_config *c, size_t i)
{
	if (i >= train_config_len(c))
		return NULL;
	return c->items[i];
}

const char *train_config_key_at(const train_config *c, size_t i)
{
	const train_config *k = train_config_key_node_at(c, i);
	return k ? k->text : NULL;
}

const train_config *train_config_key_node_at(const train_config *c, size_t i)
{
	if (!c || c->kind != TRAIN_CFG_MAP || i >= c->len)
		return NULL;
	return c->keys[i];
}

bool train_config_as_bool(const train_config *c)
{
	return c && c->kind == TRAIN_CFG_BOOL ? c->b : false;
}

int64_t train_config_as_int(const train_config *c)
{
	return c && c->kind == TRAIN_CFG_INT ? c->i : 0;
}

double train_config_as_float(const train_config *c)
{
	if (c && c->kind == TRAIN_CFG_FLOAT)
		return c->f;
	if (c && c->kind == TRAIN_CFG_INT)
		return (double)c->i;
	return 0.0;
}

const char *train_config_as_string(const train_config *c)
{
	return c ? c->text : NULL;
}

bool train_config_bool(const train_config *map, const char *key)
{
	return train_config_as_bool(train_config_get(map, key));
}

int64_t train_config_int(const train_config *map, const char *key)
{
	return train_config_as_int(train_config_get(map, key));
}

double train_config_float(const train_config *map, const char *key)
{
	return train_config_as_float(train_config_get(map, key));
}

const char *train_config_string(const train_config *map, const char *key)
{
	return train_config_as_string(train_config_get(map, key));
}

const char *train_config_file(const train_config *c)
{
	return c ? c->file : "";
}

unsigned train_config_line(const train_config *c)
{
	return c ? c->line : 0;
}

unsigned train_config_col(const train_config *c)
{
	return c ? c->col : 0;
}

/* ------------------------------------------------------------------------
 * Numbers in the "C" locale.
 */

typedef struct c_numeric {
	locale_t c, old;
} c_numeric;

/* If newlocale fails (out of memory) we carry on in the current locale:
 * that is right for every program that never calls setlocale(). */
static void c_numeric_enter(c_numeric *s)
{
	s->c = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	s->old = s->c ? uselocale(s->c) : (locale_t)0;
}

static void c_numeric_leave(c_numeric *s)
{
	if (s->c) {
		uselocale(s->old);
		freelocale(s->c);
	}
}

/* ------------------------------------------------------------------------
 * YAML 1.2 core schema for plain scalars.
 */

static bool is_digit(char ch) { return ch >= '0' && ch <= '9'; }

static bool is_one_of(const char *s, const char *const *words)
{
	for (; *words; words++)
		if (strcmp(s, *words) == 0)
			return true;
	return false;
}

static const char *const null_words[] = { "~", "null", "Null", "NULL", NULL };
static const char *const true_words[] = { "true", "True", "TRUE", NULL };
static const char *const false_words[] = { "false", "False", "FALSE", NULL };
static const char *const inf_words[] = { ".inf", ".Inf", ".INF", NULL };
static const char *const nan_words[] = { ".nan", ".NaN", ".NAN", NULL };

/* [-+]?[0-9]+ */
static bool match_dec_int(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (!is_digit(*s))
			return false;
	return true;
}

/* 0x[0-9a-fA-F]+ or 0o[0-7]+ (no sign, as in the core schema) */
static int match_radix_int(const char *s)
{
	if (s[0] != '0' || (s[1] != 'x' && s[1] != 'o') || !s[2])
		return 0;
	int base = s[1] == 'x' ? 16 : 8;
	for (const char *p = s + 2; *p; p++) {
		char ch = *p;
		bool ok = base == 16 ? (is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F'))
		                     : (ch >= '0' && ch <= '7');
		if (!ok)
			return 0;
	}
	return base;
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool match_float(const char *s)
{
	if (*s == '-' || *s == '+')
		s++;
	size_t int_digits = 0, frac_digits = 0;
	while (is_digit(*s)) {
		s++;
		int_digits++;
	}
	if (*s == '.') {
		s++;
		while (is_digit(*s)) {
			s++;
			frac_digits++;
		}
		if (!int_digits && !frac_digits)
			return false;
	} else if (!int_digits) {
		return false;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '-' || *s == '+')
			s++;
		if (!is_digit(*s))
			return false;
		while (is_digit(*s))
			s++;
	}
	return *s == '\0';
}

/* What a plain scalar means.  Sets kind and value; the text is kept as is.
 * Returns TRAIN_OK, or TRAIN_EPARSE for a number out of range (a message
 * goes to `why`).  Must run in the "C" numeric locale. */
static int resolve_plain(train_config *n, const char **why)
{
	const char *s = n->text ? n->text : "";
	/* Most plain scalars are words: a first letter that begins none of the
	 * null, true and false words (and no number, .inf or .nan begins with
	 * a letter) makes a string, whatever follows. */
	if (((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z')) && !strchr("nNtTfF", *s)) {
		n->kind = TRAIN_CFG_STRING;
		return TRAIN_OK;
	}
	if (n->text && strlen(s) != n->text_len) { /* a NUL inside: only a string */
		n->kind = TRAIN_CFG_STRING;
		return TRAIN_OK;
	}
	if (!*s || is_one_of(s, null_words)) {
		n->kind = TRAIN_CFG_NULL;
		node_drop_text(n);
		n->text_len = 0;
		return TRAIN_OK;
	}
	if (is_one_of(s, true_words) || is_one_of(s, false_words)) {
		n->kind = TRAIN_CFG_BOOL;
		n->b = s[0] == 't' || s[0] == 'T';
		return TRAIN_OK;
	}
	if (match_dec_int(s)) {
		errno = 0;
		long long v = strtoll(s, NULL, 10);
		if (errno == ERANGE) {
			*why = "integer out of range";
			return TRAIN_EPARSE;
		}
		n->kind = TRAIN_CFG_INT;
		n->i = (int64_t)v;
		return TRAIN_OK;
	}
	int base = match_radix_int(s);
	if (base) {
		errno = 0;
		unsigned long long v = strtoull(s + 2, NULL, base);
		if (errno == ERANGE || v > (unsigned long long)INT64_MAX) {
			*why = "integer out of range";
			return TRAIN_EPARSE;
		}
		n->kind = TRAIN_CFG_INT;
		n->i = (int64_t)v;
		return TRAIN_OK;
	}
	if (match_float(s)) {
		double v = strtod(s, NULL);
		if (isinf(v)) {
			*why = "number out of range (write .inf for infinity)";
			return TRAIN_EPARSE;
		}
		n->kind = TRAIN_CFG_FLOAT;
		n->f = v;
		return TRAIN_OK;
	}
	const char *t = (*s == '-' || *s == '+') ? s + 1 : s;
	if (is_one_of(t, inf_words)) {
		n->kind = TRAIN_CFG_FLOAT;
		n->f = *s == '-' ? -INFINITY : INFINITY;
		return TRAIN_OK;
	}
	if (is_one_of(s, nan_words)) {
		n->kind = TRAIN_CFG_FLOAT;
		n->f = NAN;
		return TRAIN_OK;
	}
	n->kind = TRAIN_CFG_STRING;
	return TRAIN_OK;
}

/* The kind a plain scalar with this text would get (for flow output). */
static train_cfg_kind plain_kind(const char *s, size_t len)
{
	train_config tmp = { .kind = TRAIN_CFG_STRING, .text = (char *)s, .text_len = len };
	const char *why = NULL;
	/* resolve_plain only frees the text for null, which we detect first. */
	if (!len || is_one_of(s, null_words))
		return TRAIN_CFG_NULL;
	if (resolve_plain(&tmp, &why) != TRAIN_OK)
		return TRAIN_CFG_INT; /* out of range, but not a string either */
	return tmp.kind;
}

/* ------------------------------------------------------------------------
 * Parsing.
 */

typedef struct cfg_anchor {
	char *name;
	train_config *node;    /* a copy, owned here */
} cfg_anchor;

typedef struct cfg_parser {
	yaml_parser_t yp;
	bool fast;             /* the events come from yfast_scan(), not libyaml */
	cfg_arena *arena;      /* fast: where the nodes go */
	yf_events fe;
	size_t fi;             /* the next of `fe` */
	const char *name;      /* file name for locations */
	const char *text;      /* the input, to place reader errors */
	size_t size;
	train_error *err;
	unsigned flags;        /* TRAIN_CFG_PARSE_* */
	cfg_anchor *anchors;   /* in the order defined; a later one of a name wins */
	size_t n_anchors, cap_anchors;
	size_t alias_nodes;    /* nodes copied for aliases and merges so far */
} cfg_parser;

/* Nodes that aliases may copy in one file (a "billion laughs" file is
 * refused with a message instead of taking the memory). */
#define CFG_MAX_ALIAS_NODES 1000000

static unsigned mark_line(yaml_mark_t m) { return (unsigned)m.line + 1; }
static unsigned mark_col(yaml_mark_t m) { return (unsigned)m.column + 1; }

/* Line and column (in characters) of a byte offset in the input. */
static void offset_place(const cfg_parser *p, size_t off, unsigned *line, unsigned *col)
{
	unsigned l = 1, c = 1;
	for (size_t i = 0; i < off && i < p->size; i++) {
		unsigned char ch = (unsigned char)p->text[i];
		if (ch == '\n') {
			l++;
			c = 1;
		} else if ((ch & 0xC0) != 0x80) {
			c++;
		}
	}
	*line = l;
	*col = c;
}

/* Report the error libyaml stopped on: its problem, and the context (with
 * the context's own mark when that differs from the problem's). */
static int yaml_fail(cfg_parser *p)
{
	yaml_parser_t *y = &p->yp;
	const char *problem = y->problem ? y->problem : "invalid YAML";
	if (y->error == YAML_MEMORY_ERROR)
		return train_error_set(p->err, TRAIN_ENOMEM, p->name, 0, 0, "out of memory while parsing YAML");
	if (y->error == YAML_READER_ERROR) {
		unsigned line, col;
		offset_place(p, y->problem_offset, &line, &col);
		if (y->problem_value != -1)
			return train_error_set(p->err, TRAIN_EPARSE, p->name, line, col, "%s: #%X", problem,
			                       (unsigned)y->problem_value);
		return train_error_set(p->err, TRAIN_EPARSE, p->name, line, col, "%s", problem);
	}
	yaml_mark_t pm = y->problem_mark, cm = y->context_mark;
	if (!y->context)
		return train_error_set(p->err, TRAIN_EPARSE, p->name, mark_line(pm), mark_col(pm), "%s", problem);
	if (cm.line == pm.line && cm.column == pm.column)
		return train_error_set(p->err, TRAIN_EPARSE, p->name, mark_line(pm), mark_col(pm), "%s: %s",
		                       y->context, problem);
	return train_error_set(p->err, TRAIN_EPARSE, p->name, mark_line(pm), mark_col(pm),
	                       "%s (line %u, column %u): %s", y->context, mark_line(cm), mark_col(cm),
	                       problem);
}

static int next_event(cfg_parser *p, yaml_event_t *ev)
{
	if (p->fast) {
		static const yaml_event_type_t types[] = {
			[YF_STREAM_START] = YAML_STREAM_START_EVENT, [YF_STREAM_END] = YAML_STREAM_END_EVENT,
			[YF_DOC_START] = YAML_DOCUMENT_START_EVENT,  [YF_DOC_END] = YAML_DOCUMENT_END_EVENT,
			[YF_SEQ_START] = YAML_SEQUENCE_START_EVENT,  [YF_SEQ_END] = YAML_SEQUENCE_END_EVENT,
			[YF_MAP_START] = YAML_MAPPING_START_EVENT,   [YF_MAP_END] = YAML_MAPPING_END_EVENT,
			[YF_SCALAR] = YAML_SCALAR_EVENT,
		};
		static const yaml_scalar_style_t styles[] = {
			[YF_PLAIN] = YAML_PLAIN_SCALAR_STYLE,
			[YF_SINGLE] = YAML_SINGLE_QUOTED_SCALAR_STYLE,
			[YF_DOUBLE] = YAML_DOUBLE_QUOTED_SCALAR_STYLE,
		};
		memset(ev, 0, sizeof *ev);
		if (p->fi >= p->fe.n) /* not reached: the stream ends with STREAM-END */
			return train_error_set(p->err, TRAIN_EPARSE, p->name, 0, 0, "unexpected end of YAML");
		const yf_event *x = &p->fe.v[p->fi++];
		ev->type = types[x->type];
		ev->start_mark.line = x->line;
		ev->start_mark.column = x->col;
		ev->end_mark = ev->start_mark;
		if (x->type == YF_SCALAR) {
			/* read only: the builders copy it, and ev_delete() does not free it */
			ev->data.scalar.value = (yaml_char_t *)(uintptr_t)x->value;
			ev->data.scalar.length = x->len;
			ev->data.scalar.style = styles[x->style];
			ev->data.scalar.plain_implicit = x->style == YF_PLAIN;
			ev->data.scalar.quoted_implicit = x->style != YF_PLAIN;
		} else if (x->type == YF_SEQ_START) {
			ev->data.sequence_start.implicit = 1;
			ev->data.sequence_start.style = YAML_BLOCK_SEQUENCE_STYLE;
		} else if (x->type == YF_MAP_START) {
			ev->data.mapping_start.implicit = 1;
			ev->data.mapping_start.style = YAML_BLOCK_MAPPING_STYLE;
		}
		return TRAIN_OK;
	}
	if (!yaml_parser_parse(&p->yp, ev))
		return yaml_fail(p);
	return TRAIN_OK;
}

/* Release an event from next_event(). */
static void ev_delete(const cfg_parser *p, yaml_event_t *ev)
{
	if (!p->fast)
		yaml_event_delete(ev);
}

static int nomem(train_error *err)
{
	return train_error_set(err, TRAIN_ENOMEM, NULL, 0, 0, "out of memory");
}

#define TAG_STR "tag:yaml.org,2002:str"
#define TAG_MAP "tag:yaml.org,2002:map"
#define TAG_SEQ "tag:yaml.org,2002:seq"

static int parse_value(cfg_parser *p, yaml_event_t *ev, int depth, train_config **out);

/* ------------------------------------------------------------------------
 * Environment variables (TRAIN_CFG_PARSE_ENV), as Rasa reads YAML: a plain
 * scalar that matches ^(.*)\$\{(.*)\}(.*)$ (one line with "${" and a later
 * "}") is a string with $NAME and ${NAME} replaced by the variables' values
 * (Python's os.path.expandvars: NAME of [A-Za-z0-9_], "${...}" up to the
 * first "}"; an unset variable stays as written).  Rasa then refuses the
 * value when a whitespace-separated word of the result starts with '$' and
 * appears in the original text; so do we, naming the unset variables.
 * Quoted and block scalars are never substituted (Rasa's resolver is an
 * implicit one, and those only apply to plain scalars).
 */

static bool env_pattern(const char *s, size_t len)
{
	if (memchr(s, '\n', len))
		return false;
	const char *o = NULL;
	for (size_t i = 0; i + 1 < len; i++)
		if (s[i] == '$' && s[i + 1] == '{') {
			o = s + i;
			break;
		}
	return o && memchr(o + 2, '}', len - (size_t)(o + 2 - s)) != NULL;
}

static bool env_word_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '_';
}

static bool env_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* memmem for short needles */
static bool env_contains(const char *h, size_t hn, const char *nd, size_t nn)
{
	if (nn == 0)
		return true;
	for (size_t i = 0; i + nn <= hn; i++)
		if (h[i] == nd[0] && memcmp(h + i, nd, nn) == 0)
			return true;
	return false;
}

static int env_expand(cfg_parser *p, train_config *n)
{
	const char *s = n->text;
	size_t len = n->text_len;
	train_buf out = { 0 }, unset = { 0 };
	int rc = TRAIN_OK;
	size_t n_unset = 0;
	for (size_t i = 0; i < len && rc == TRAIN_OK;) {
		size_t name0 = 0, name_len = 0, end = 0;
		if (s[i] == '$' && i + 1 < len && s[i + 1] == '{') {
			const char *close = memchr(s + i + 2, '}', len - i - 2);
			if (close) {
				name0 = i + 2;
				name_len = (size_t)(close - (s + name0));
				end = (size_t)(close - s) + 1;
			}
		} else if (s[i] == '$' && i + 1 < len && env_word_char(s[i + 1])) {
			name0 = i + 1;
			end = name0;
			while (end < len && env_word_char(s[end]))
				end++;
			name_len = end - name0;
		}
		if (!end) {
			rc = train_buf_add(&out, s + i, 1);
			i++;
			continue;
		}
		char *name = strndup(s + name0, name_len);
		if (!name) {
			rc = TRAIN_ENOMEM;
			break;
		}
		const char *v = name_len ? getenv(name) : NULL;
		if (v) {
			rc = train_buf_str(&out, v);
		} else {
			rc = train_buf_add(&out, s + i, end - i);
			if (rc == TRAIN_OK)
				rc = train_buf_printf(&unset, "%s'%s'", n_unset ? ", " : "", name);
			n_unset++;
		}
		free(name);
		i = end;
	}
	if (rc == TRAIN_OK)
		rc = train_buf_add(&out, "", 1);
	if (rc) {
		rc = nomem(p->err);
		goto done;
	}
	/* Rasa's check: a word of the result that starts with '$' and is in the value. */
	bool refuse = false;
	size_t olen = out.len - 1;
	for (size_t i = 0; i < olen && !refuse;) {
		while (i < olen && env_space(out.data[i]))
			i++;
		size_t w = i;
		while (i < olen && !env_space(out.data[i]))
			i++;
		if (i > w && out.data[w] == '$' && env_contains(s, len, out.data + w, i - w))
			refuse = true;
	}
	if (refuse) {
		rc = train_error_set(p->err, TRAIN_EINVAL, p->name, n->line, n->col,
		                     "environment variable%s %s of '%s' %s not set: set %s, or quote the "
		                     "value to keep it as written",
		                     n_unset == 1 ? "" : "s", unset.data ? unset.data : "''", s,
		                     n_unset == 1 ? "is" : "are", n_unset == 1 ? "it" : "them");
		goto done;
	}
	if (node_set_text(n, out.data, olen))
		rc = nomem(p->err);
	n->kind = TRAIN_CFG_STRING;
done:
	train_buf_free(&out);
	train_buf_free(&unset);
	return rc;
}

/* ------------------------------------------------------------------------
 * Anchors and aliases (TRAIN_CFG_PARSE_ALIASES).
 */

static void anchors_free(cfg_parser *p)
{
	for (size_t i = 0; i < p->n_anchors; i++) {
		free(p->anchors[i].name);
		train_config_destroy(p->anchors[i].node);
	}
	free(p->anchors);
	p->anchors = NULL;
	p->n_anchors = p->cap_anchors = 0;
}

static size_t count_nodes(const train_config *c)
{
	size_t k = 1;
	for (size_t i = 0; i < c->len; i++)
		k += count_nodes(c->items[i]) + (c->keys && c->keys[i] ? 1 : 0);
	return k;
}

static train_config *copy_node(const train_config *c);

/* A copy of `c` for an alias or a merge, within the budget. */
static int alias_copy(cfg_parser *p, const train_config *c, yaml_mark_t m, train_config **out)
{
	size_t k = count_nodes(c);
	*out = NULL;
	if (k > CFG_MAX_ALIAS_NODES - p->alias_nodes)
		return train_error_set(p->err, TRAIN_EPARSE, p->name, mark_line(m), mark_col(m),
		                       "aliases expand to more than %d nodes", CFG_MAX_ALIAS_NODES);
	p->alias_nodes += k;
	if (!(*out = copy_node(c)))
		return nomem(p->err);
	return TRAIN_OK;
}

static int anchor_add(cfg_parser *p, const char *name, const train_config *node)
{
	if (p->n_anchors == p->cap_anchors) {
		size_t nc = p->cap_anchors ? p->cap_anchors * 2 : 8;
		cfg_anchor *v = realloc(p->anchors, nc * sizeof *v);
		if (!v)
			return nomem(p->err);
		p->anchors = v;
		p->cap_anchors = nc;
	}
	cfg_anchor *a = &p->anchors[p->n_anchors];
	if (!(a->name = train_strdup(name)) || !(a->node = copy_node(node))) {
		free(a->name);
		return nomem(p->err);
	}
	p->n_anchors++;
	return TRAIN_OK;
}

static int alias_value(cfg_parser *p, const yaml_event_t *ev, train_config **out)
{
	const char *name = (const char *)ev->data.alias.anchor;
	for (size_t i = p->n_anchors; i-- > 0;)
		if (strcmp(p->anchors[i].name, name) == 0)
			return alias_copy(p, p->anchors[i].node, ev->start_mark, out);
	return train_error_set(p->err, TRAIN_EPARSE, p->name, mark_line(ev->start_mark),
	                       mark_col(ev->start_mark), "alias '*%s' names no anchor before it", name);
}

/* The "<<" key's value: a map, or a list of maps; their keys that `n` does
 * not have yet are added (the first map of a list wins, keys written in `n`
 * win over every merged one). */
static int merge_into(cfg_parser *p, train_config *n, const train_config *v)
{
	const train_config *const *maps = (const train_config *const *)&v;
	size_t n_maps = 1;
	if (v->kind == TRAIN_CFG_LIST) {
		maps = (const train_config *const *)v->items;
		n_maps = v->len;
	}
	for (size_t m = 0; m < n_maps; m++) {
		const train_config *src = maps[m];
		if (src->kind != TRAIN_CFG_MAP)
			return train_error_set(p->err, TRAIN_EPARSE, p->name, src->line, src->col,
			                       "the value of a merge key '<<' must be a map or a list of maps");
		for (size_t i = 0; i < src->len; i++) {
			if (map_find(n, src->keys[i]->text, src->keys[i]->text_len) >= 0)
				continue;
			yaml_mark_t mk = { 0 };
			mk.line = src->line ? src->line - 1 : 0;
			mk.column = src->col ? src->col - 1 : 0;
			train_config *k = NULL, *val = NULL;
			int rc = alias_copy(p, src->keys[i], mk, &k);
			if (!rc)
				rc = alias_copy(p, src->items[i], mk, &val);
			if (!rc && node_push(n, k, val))
				rc = nomem(p->err);
			if (rc) {
				train_config_destroy(k);
				train_config_destroy(val);
				return rc;
			}
		}
	}
	return TRAIN_OK;
}

static int parse_scalar(cfg_parser *p, yaml_event_t *ev, train_config **out)
{
	int rc = TRAIN_OK;
	yaml_mark_t m = ev->start_mark;
	const char *tag = (const char *)ev->data.scalar.tag;
	bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
	if (tag) {
		if (strcmp(tag, TAG_STR) != 0 && strcmp(tag, "!") != 0)
			return train_error_set(p->err, TRAIN_EPARSE, p->name, mark_line(m), mark_col(m),
			                       "tag '%s' is not supported", tag);
		plain = false; /* !!str and the non-specific "!" both mean string */
	}
	train_config *n =
		p->arena ? node_in(p->arena, TRAIN_CFG_STRING, mark_line(m), mark_col(m),
		                   (const char *)ev->data.scalar.value, ev->data.scalar.length, true)
		         : node_new_text(TRAIN_CFG_STRING, p->name, mark_line(m), mark_col(m),
		                         (const char *)ev->data.scalar.value, ev->data.scalar.length);
	if (!n) {
		rc = nomem(p->err);
		goto out;
	}
	if (plain && (p->flags & TRAIN_CFG_PARSE_ENV) && env_pattern(n->text, n->text_len)) {
		rc = env_expand(p, n);
		goto out;
	}
	if (plain) {
		const char *why = NULL;
		rc = resolve_plain(n, &why);
		if (rc) {
			rc = train_error_set(p->err, rc, p->name, n->line, n->col, "%s: %s", why, n->text);
			goto out;
		}
	}
out:
	if (rc) {
		train_config_destroy(n);
		n = NULL;
	}
	*out = n;
	return rc;
}

static int parse_sequence(cfg_parser *p, yaml_event_t *start, int depth, train_config **out)
{
	int rc = TRAIN_OK;
	yaml_mark_t m = start->start_mark;
	train_config *n = p->arena ? node_in(p->arena, TRAIN_CFG_LIST, mark_line(m), mark_col(m), NULL, 0, false)
	                           : node_new(TRAIN_CFG_LIST, p->name, mark_line(m), mark_col(m));
	if (!n) {
		rc = nomem(p->err);
		goto out;
	}
	for (;;) {
		yaml_event_t ev;
		rc = next_event(p, &ev);
		if (rc)
			goto out;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			ev_delete(p, &ev);
			break;
		}
		train_config *item = NULL;
		rc = parse_value(p, &ev, depth + 1, &item);
		ev_delete(p, &ev);
		if (rc)
			goto out;
		if (node_push(n, NULL, item)) {
			train_config_destroy(item);
			rc = nomem(p->err);
			goto out;
		}
	}
out:
	if (rc) {
		train_config_destroy(n);
		n = NULL;
	}
	*out = n;
	return rc;
}

static int parse_mapping(cfg_parser *p, yaml_event_t *start, int depth, train_config **out)
{
	int rc = TRAIN_OK;
	yaml_mark_t m = start->start_mark;
	train_config *key = NULL, *value = NULL, *merges = NULL;
	train_config *n = p->arena ? node_in(p->arena, TRAIN_CFG_MAP, mark_line(m), mark_col(m), NULL, 0, false)
	                           : node_new(TRAIN_CFG_MAP, p->name, mark_line(m), mark_col(m));
	if (!n) {
		rc = nomem(p->err);
		goto out;
	}
	for (;;) {
		yaml_event_t ev;
		rc = next_event(p, &ev);
		if (rc)
			goto out;
		if (ev.type == YAML_MAPPING_END_EVENT) {
			ev_delete(p, &ev);
			break;
		}
		if (ev.type != YAML_SCALAR_EVENT) {
			/* An alias key gets the alias message; any other is a collection. */
			if (ev.type == YAML_ALIAS_EVENT && !(p->flags & TRAIN_CFG_PARSE_ALIASES))
				rc = parse_value(p, &ev, depth + 1, &key);
			else if (ev.type == YAML_ALIAS_EVENT)
				rc = train_error_set(p->err, TRAIN_EPARSE, p->name, mark_line(ev.start_mark),
				                     mark_col(ev.start_mark), "an alias as a map key is not "
				                     "supported");
			else
				rc = train_error_set(p->err, TRAIN_EPARSE, p->name, mark_line(ev.start_mark),
				                     mark_col(ev.start_mark), "map keys must be scalars");
			ev_delete(p, &ev);
			goto out;
		}
		/* "<<" (plain, untagged) is a merge key where aliases are taken. */
		bool merge = (p->flags & TRAIN_CFG_PARSE_ALIASES) && ev.data.scalar.length == 2 &&
		             memcmp(ev.data.scalar.value, "<<", 2) == 0 &&
		             ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev.data.scalar.tag &&
		             !ev.data.scalar.anchor;
		if (merge) {
			ev_delete(p, &ev);
			if ((rc = next_event(p, &ev)))
				goto out;
			rc = parse_value(p, &ev, depth + 1, &value);
			ev_delete(p, &ev);
			if (rc)
				goto out;
			if (!merges && !(merges = node_new(TRAIN_CFG_LIST, p->name, value->line, value->col))) {
				rc = nomem(p->err);
				goto out;
			}
			if (node_push(merges, NULL, value)) {
				rc = nomem(p->err);
				goto out;
			}
			value = NULL;
			continue;
		}
		rc = parse_value(p, &ev, depth + 1, &key);
		/* A key is a name: keep its text ("1", "~", "") whatever it would
		 * mean as a value. */
		if (!rc) {
			key->kind = TRAIN_CFG_STRING;
			if ((!key->text || key->text_len != ev.data.scalar.length ||
			     memcmp(key->text, ev.data.scalar.value, key->text_len) != 0) &&
			    node_set_text(key, (const char *)ev.data.scalar.value, ev.data.scalar.length))
				rc = nomem(p->err);
		}
		ev_delete(p, &ev);
		if (rc)
			goto out;
		long dup = map_find(n, key->text, key->text_len);
		if (dup >= 0) {
			rc = train_error_set(p->err, TRAIN_EEXIST, p->name, key->line, key->col,
			                     "duplicate key '%s' (first at line %u)", key->text,
			                     n->keys[dup]->line);
			goto out;
		}
		rc = next_event(p, &ev);
		if (rc)
			goto out;
		rc = parse_value(p, &ev, depth + 1, &value);
		ev_delete(p, &ev);
		if (rc)
			goto out;
		if (node_push(n, key, value)) {
			rc = nomem(p->err);
			goto out;
		}
		key = value = NULL;
	}
	for (size_t i = 0; merges && i < merges->len && rc == TRAIN_OK; i++)
		rc = merge_into(p, n, merges->items[i]);
out:
	train_config_destroy(key);
	train_config_destroy(value);
	train_config_destroy(merges);
	if (rc) {
		train_config_destroy(n);
		n = NULL;
	}
	*out = n;
	return rc;
}

/* Build the node that starts with `ev` (which the caller still owns). */
static int parse_value(cfg_parser *p, yaml_event_t *ev, int depth, train_config **out)
{
	yaml_mark_t m = ev->start_mark;
	const yaml_char_t *anchor = NULL, *tag = NULL;
	*out = NULL;
	if (depth > CFG_MAX_DEPTH)
		return train_error_set(p->err, TRAIN_EPARSE, p->name, mark_line(m), mark_col(m),
		                       "nested more than %d levels deep", CFG_MAX_DEPTH);
	switch (ev->type) {
	case YAML_ALIAS_EVENT:
		if (p->flags & TRAIN_CFG_PARSE_ALIASES)
			return alias_value(p, ev, out);
		return train_error_set(p->err, TRAIN_EPARSE, p->name, mark_line(m), mark_col(m),
		                       "aliases are not supported");
	case YAML_SCALAR_EVENT:
		anchor = ev->data.scalar.anchor;
		break;
	case YAML_SEQUENCE_START_EVENT:
		anchor = ev->data.sequence_start.anchor;
		tag = ev->data.sequence_start.tag;
		if (tag && strcmp((const char *)tag, TAG_SEQ) != 0)
			goto bad_tag;
		break;
	case YAML_MAPPING_START_EVENT:
		anchor = ev->data.mapping_start.anchor;
		tag = ev->data.mapping_start.tag;
		if (tag && strcmp((const char *)tag, TAG_MAP) != 0)
			goto bad_tag;
		break;
	default:
		return train_error_set(p->err, TRAIN_EPARSE, p->name, mark_line(m), mark_col(m),
		                       "unexpected YAML event %d", (int)ev->type);
	}
	if (anchor && !(p->flags & TRAIN_CFG_PARSE_ALIASES))
		return train_error_set(p->err, TRAIN_EPARSE, p->name, mark_line(m), mark_col(m),
		                       "anchor '%s': anchors and aliases are not supported",
		                       (const char *)anchor);
	int rc;
	if (ev->type == YAML_SCALAR_EVENT)
		rc = parse_scalar(p, ev, out);
	else if (ev->type == YAML_SEQUENCE_START_EVENT)
		rc = parse_sequence(p, ev, depth, out);
	else
		rc = parse_mapping(p, ev, depth, out);
	if (rc == TRAIN_OK && anchor && (rc = anchor_add(p, (const char *)anchor, *out))) {
		train_config_destroy(*out);
		*out = NULL;
	}
	return rc;
bad_tag:
	return train_error_set(p->err, TRAIN_EPARSE, p->name, mark_line(m), mark_col(m),
	                       "tag '%s' is not supported", (const char *)tag);
}

static int parse_stream(cfg_parser *p, train_config **out)
{
	int rc = TRAIN_OK;
	train_config *root = NULL;
	yaml_event_t ev;
	bool have = false;

	rc = next_event(p, &ev); /* STREAM-START */
	if (rc)
		goto out;
	ev_delete(p, &ev);
	rc = next_event(p, &ev);
	if (rc)
		goto out;
	have = true;
	if (ev.type == YAML_STREAM_END_EVENT) { /* nothing but comments or blanks */
		root = node_new(TRAIN_CFG_NULL, p->name, 1, 1);
		if (!root)
			rc = nomem(p->err);
		goto out;
	}
	/* DOCUMENT-START, the root node, DOCUMENT-END */
	ev_delete(p, &ev);
	have = false;
	rc = next_event(p, &ev);
	if (rc)
		goto out;
	have = true;
	rc = parse_value(p, &ev, 0, &root);
	if (rc)
		goto out;
	ev_delete(p, &ev);
	have = false;
	rc = next_event(p, &ev); /* DOCUMENT-END */
	if (rc)
		goto out;
	ev_delete(p, &ev);
	have = false;
	rc = next_event(p, &ev);
	if (rc)
		goto out;
	have = true;
	if (ev.type != YAML_STREAM_END_EVENT)
		rc = train_error_set(p->err, TRAIN_EPARSE, p->name, mark_line(ev.start_mark),
		                     mark_col(ev.start_mark), "multiple documents are not supported");
out:
	if (have)
		ev_delete(p, &ev);
	if (rc) {
		train_config_destroy(root);
		root = NULL;
	}
	*out = root;
	return rc;
}

int train_config_parse(const char *text, size_t size, const char *name, train_config **out,
                       train_error *err)
{
	return train_config_parse_flags(text, size, name, 0, out, err);
}

int train_config_parse_flags(const char *text, size_t size, const char *name, unsigned flags,
                             train_config **out, train_error *err)
{
	int rc = TRAIN_OK;
	cfg_parser p = { .name = name ? name : "", .text = text, .size = size, .err = err,
		         .flags = flags };
	c_numeric loc;
	bool inited = false;

	*out = NULL;
	if (!text && size)
		return train_error_set(err, TRAIN_EINVAL, name, 0, 0, "no text");
	int fr = train_yaml_fast ? yfast_scan(text, size, &p.fe) : 0;
	if (fr < 0)
		return nomem(err);
	p.fast = fr == 1;
	if (p.fast && !(p.arena = arena_new(p.name))) {
		yfast_free(&p.fe);
		return nomem(err);
	}
	if (!p.fast) {
		if (!yaml_parser_initialize(&p.yp))
			return nomem(err);
		inited = true;
		yaml_parser_set_input_string(&p.yp, (const unsigned char *)(text ? text : ""), size);
	}
	c_numeric_enter(&loc);
	rc = parse_stream(&p, out);
	c_numeric_leave(&loc);
	anchors_free(&p);
	yfast_free(&p.fe);
	if (p.arena) { /* the tree's root owns it; on an error nothing does */
		if (rc == TRAIN_OK && *out && (*out)->arena == p.arena)
			(*out)->arena_owner = true;
		else
			arena_free(p.arena);
	}
	if (inited)
		yaml_parser_delete(&p.yp);
	return rc;
}

int train_config_load(const char *path, train_config **out, train_error *err)
{
	return train_config_load_flags(path, 0, out, err);
}

int train_config_load_flags(const char *path, unsigned flags, train_config **out, train_error *err)
{
	char *data = NULL;
	size_t size = 0;
	*out = NULL;
	int rc = train_read_file(path, &data, &size, err);
	if (rc)
		return rc;
	rc = train_config_parse_flags(data, size, path, flags, out, err);
	free(data);
	return rc;
}

/* ------------------------------------------------------------------------
 * Copying.
 */

static train_config *copy_node(const train_config *c)
{
	train_config *n = node_new(c->kind, c->file, c->line, c->col);
	if (!n)
		return NULL;
	n->b = c->b;
	n->i = c->i;
	n->f = c->f;
	if (c->text && node_set_text(n, c->text, c->text_len))
		goto fail;
	for (size_t i = 0; i < c->len; i++) {
		train_config *k = NULL, *v = copy_node(c->items[i]);
		if (!v)
			goto fail;
		if (c->kind == TRAIN_CFG_MAP && !(k = copy_node(c->keys[i]))) {
			train_config_destroy(v);
			goto fail;
		}
		if (node_push(n, k, v)) {
			train_config_destroy(k);
			train_config_destroy(v);
			goto fail;
		}
	}
	return n;
fail:
	train_config_destroy(n);
	return NULL;
}

int train_config_copy(const train_config *c, train_config **out)
{
	*out = NULL;
	if (!c)
		return TRAIN_EINVAL;
	*out = copy_node(c);
	return *out ? TRAIN_OK : TRAIN_ENOMEM;
}

/* A copy in which `fn` may replace or drop string scalars (see
 * config_private.h). */
static train_config *copy_subst(const train_config *c, train_config_subst_fn fn, void *arg,
                                int *rc, bool *drop)
{
	*drop = false;
	if (c->kind == TRAIN_CFG_STRING && fn) {
		const train_config *repl = NULL;
		int r = fn(c, &repl, arg);
		if (r < 0) {
			*rc = r;
			return NULL;
		}
		if (r == TRAIN_SUBST_DROP) {
			*drop = true;
			return NULL;
		}
		if (r == TRAIN_SUBST_REPLACE && repl) {
			train_config *n = copy_node(repl);
			if (!n)
				*rc = TRAIN_ENOMEM;
			return n;
		}
	}
	train_config *n = node_new(c->kind, c->file, c->line, c->col);
	if (!n)
		goto nomem;
	n->b = c->b;
	n->i = c->i;
	n->f = c->f;
	if (c->text && node_set_text(n, c->text, c->text_len))
		goto nomem;
	for (size_t i = 0; i < c->len; i++) {
		bool d = false;
		train_config *k = NULL, *v = copy_subst(c->items[i], fn, arg, rc, &d);
		if (d)
			continue;
		if (!v)
			goto fail;
		if (c->kind == TRAIN_CFG_MAP && !(k = copy_node(c->keys[i]))) {
			train_config_destroy(v);
			goto nomem;
		}
		if (node_push(n, k, v)) {
			train_config_destroy(k);
			train_config_destroy(v);
			goto nomem;
		}
	}
	return n;
nomem:
	*rc = TRAIN_ENOMEM;
fail:
	train_config_destroy(n);
	return NULL;
}

int train_config_copy_subst(const train_config *c, train_config_subst_fn fn, void *arg,
                            train_config **out)
{
	int rc = TRAIN_OK;
	bool drop = false;
	*out = NULL;
	if (!c)
		return TRAIN_EINVAL;
	*out = copy_subst(c, fn, arg, &rc, &drop);
	if (drop) /* the root itself was dropped: an empty (null) node */
		*out = node_new(TRAIN_CFG_NULL, c->file, c->line, c->col);
	if (!*out && !rc)
		rc = TRAIN_ENOMEM;
	return rc;
}

int train_config_set_string(train_config *n, const char *text)
{
	if (!n || n->kind != TRAIN_CFG_STRING)
		return TRAIN_EINVAL;
	return node_set_text(n, text, strlen(text));
}

/* A key (STRING) node made at `origin`. */
static train_config *origin_key(const char *origin, const char *k, size_t len)
{
	return node_new_text(TRAIN_CFG_STRING, origin, 0, 0, k, len);
}

int train_config_set_path(train_config **root, const char *path, const char *text,
                          const char *origin, train_error *err)
{
	train_config *parsed = NULL, *value = NULL;
	int rc = TRAIN_OK;
	/* SECTION.KEY: words of [A-Za-z0-9_-] joined by single dots */
	bool ok = path && strchr(path, '.') != NULL && *path != '.';
	for (const char *q = path; ok && *q; q++)
		ok = (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') || (*q >= '0' && *q <= '9') ||
		     *q == '_' || *q == '-' || (*q == '.' && q[1] && q[1] != '.');
	if (!ok)
		return train_error_set(err, TRAIN_ECONFIG, origin, 0, 0,
		                       "'%s' is not a settings key (write SECTION.KEY=VALUE, e.g. "
		                       "training.num_rl_steps=3)", path ? path : "");
	/* the value: one YAML scalar, typed as the same text in the file would be */
	train_error perr = { 0 };
	if ((rc = train_config_parse(text, strlen(text), origin, &parsed, &perr))) {
		if (rc == TRAIN_ENOMEM)
			goto nomem;
		rc = train_error_set(err, TRAIN_ECONFIG, origin, 0, 0,
		                     "the value '%s' is not a YAML scalar: %s", text, perr.text);
		goto out;
	}
	train_cfg_kind kind = parsed ? parsed->kind : TRAIN_CFG_NULL;
	if (kind == TRAIN_CFG_MAP || kind == TRAIN_CFG_LIST) {
		rc = train_error_set(err, TRAIN_ECONFIG, origin, 0, 0,
		                     "the value '%s' is a %s; give one scalar (a number, true/false, "
		                     "or text; quote text with ': ' or a leading '[' or '{')", text,
		                     kind == TRAIN_CFG_MAP ? "map" : "list");
		goto out;
	}
	value = parsed && parsed->text ? node_new_text(kind, origin, 0, 0, parsed->text, parsed->text_len)
	                               : node_new(kind, origin, 0, 0);
	if (!value)
		goto nomem;
	if (parsed) {
		value->b = parsed->b;
		value->i = parsed->i;
		value->f = parsed->f;
	}
	/* a tree to change: out of its arena, or a new map */
	if (*root && (*root)->arena) {
		train_config *copy = copy_node(*root);
		if (!copy)
			goto nomem;
		train_config_destroy(*root);
		*root = copy;
	}
	if (*root && (*root)->kind == TRAIN_CFG_NULL) {
		train_config_destroy(*root);
		*root = NULL;
	}
	if (!*root && !(*root = node_new(TRAIN_CFG_MAP, origin, 0, 0)))
		goto nomem;
	if ((*root)->kind != TRAIN_CFG_MAP) {
		rc = train_error_set(err, TRAIN_ECONFIG, origin, 0, 0,
		                     "%s:%u: the settings are not a map of sections, so '%s' cannot be set",
		                     (*root)->file, (*root)->line, path);
		goto out;
	}
	train_config *m = *root;
	for (const char *p = path;;) {
		const char *dot = strchr(p, '.');
		size_t len = dot ? (size_t)(dot - p) : strlen(p);
		long at = map_find(m, p, len);
		if (!dot) { /* the key itself: replace its value, or add it */
			if (at >= 0) {
				train_config_destroy(m->items[at]);
				m->items[at] = value;
			} else {
				train_config *k = origin_key(origin, p, len);
				if (!k || node_push(m, k, value)) {
					train_config_destroy(k);
					goto nomem;
				}
			}
			value = NULL;
			break;
		}
		if (at >= 0 && m->items[at]->kind == TRAIN_CFG_NULL) {
			/* `section:` with nothing under it: a section */
			train_config_destroy(m->items[at]);
			if (!(m->items[at] = node_new(TRAIN_CFG_MAP, origin, 0, 0)))
				goto nomem;
		}
		if (at >= 0 && m->items[at]->kind != TRAIN_CFG_MAP) {
			const train_config *v = m->items[at];
			char where[300] = "";
			if (v->file[0] && v->line)
				snprintf(where, sizeof where, " (%s:%u sets it to a value)", v->file, v->line);
			else if (v->file[0])
				snprintf(where, sizeof where, " (%s sets it to a value)", v->file);
			rc = train_error_set(err, TRAIN_ECONFIG, origin, 0, 0,
			                     "'%.*s' is not a section%s, so '%s' cannot be set",
			                     (int)(dot - path), path, where, path);
			goto out;
		}
		if (at < 0) {
			train_config *k = origin_key(origin, p, len), *sec = node_new(TRAIN_CFG_MAP, origin, 0, 0);
			if (!k || !sec || node_push(m, k, sec)) {
				train_config_destroy(k);
				train_config_destroy(sec);
				goto nomem;
			}
			at = (long)m->len - 1;
		}
		m = m->items[at];
		p = dot + 1;
	}
	goto out;
nomem:
	rc = train_error_set(err, TRAIN_ENOMEM, origin, 0, 0, "out of memory");
out:
	train_config_destroy(value);
	train_config_destroy(parsed);
	return rc;
}

/* ------------------------------------------------------------------------
 * Validation.
 */

/* `s` as a short double-quoted string for messages ("ten", "a\"b", "long..."). */
static void quote_short(const char *s, size_t len, char *buf, size_t cap)
{
	size_t o = 0;
	const size_t max_shown = 40;
	buf[o++] = '"';
	for (size_t i = 0; i < len && i < max_shown && o + 6 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\') {
			buf[o++] = '\\';
			buf[o++] = (char)ch;
		} else if (ch < 0x20 || ch == 0x7f) {
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02X", ch);
		} else {
			buf[o++] = (char)ch;
		}
	}
	if (len > max_shown && o + 5 < cap) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o++] = '"';
	buf[o] = '\0';
}

/* "the string \"ten\"", "the integer 3", "a list", ... */
static void describe_found(const train_config *c, char *buf, size_t cap)
{
	char q[128];
	switch (train_config_kind(c)) {
	case TRAIN_CFG_NULL: snprintf(buf, cap, "null"); break;
	case TRAIN_CFG_BOOL: snprintf(buf, cap, "the boolean %s", c->text ? c->text : (c->b ? "true" : "false")); break;
	case TRAIN_CFG_INT: snprintf(buf, cap, "the integer %.40s", c->text ? c->text : "?"); break;
	case TRAIN_CFG_FLOAT: snprintf(buf, cap, "the number %.40s", c->text ? c->text : "?"); break;
	case TRAIN_CFG_STRING:
		quote_short(c->text, c->text_len, q, sizeof q);
		snprintf(buf, cap, "the string %s", q);
		break;
	case TRAIN_CFG_LIST: snprintf(buf, cap, "a list"); break;
	case TRAIN_CFG_MAP: snprintf(buf, cap, "a map"); break;
	}
}

static const char *describe_expected(train_param_type t)
{
	switch (t) {
	case TRAIN_PARAM_INT: return "an integer";
	case TRAIN_PARAM_FLOAT: return "a number";
	case TRAIN_PARAM_BOOL: return "true or false";
	case TRAIN_PARAM_STRING: return "a string";
	case TRAIN_PARAM_LIST: return "a list";
	case TRAIN_PARAM_MAP: return "a map";
	case TRAIN_PARAM_PATH: return "a path (a string)";
	case TRAIN_PARAM_ANY:
	case TRAIN_PARAM_END: break;
	}
	return "a value";
}

/* Whether `v` fits type `t`; if so, convert it in place (INT -> FLOAT,
 * scalar -> STRING).  A null fits when `null_ok` (the default is null). */
static bool fit_type(train_config *v, train_param_type t, bool null_ok)
{
	train_cfg_kind k = v->kind;
	if (k == TRAIN_CFG_NULL)
		return null_ok || t == TRAIN_PARAM_ANY;
	switch (t) {
	case TRAIN_PARAM_INT: return k == TRAIN_CFG_INT;
	case TRAIN_PARAM_FLOAT:
		if (k == TRAIN_CFG_INT) {
			v->kind = TRAIN_CFG_FLOAT;
			v->f = (double)v->i;
			v->i = 0;
			return true;
		}
		return k == TRAIN_CFG_FLOAT;
	case TRAIN_PARAM_BOOL: return k == TRAIN_CFG_BOOL;
	case TRAIN_PARAM_STRING:
		if (k == TRAIN_CFG_BOOL || k == TRAIN_CFG_INT || k == TRAIN_CFG_FLOAT) {
			v->kind = TRAIN_CFG_STRING; /* kept as its text */
			return true;
		}
		return k == TRAIN_CFG_STRING;
	case TRAIN_PARAM_PATH: return k == TRAIN_CFG_STRING;
	case TRAIN_PARAM_LIST: return k == TRAIN_CFG_LIST;
	case TRAIN_PARAM_MAP: return k == TRAIN_CFG_MAP;
	case TRAIN_PARAM_ANY: return true;
	case TRAIN_PARAM_END: break;
	}
	return false;
}

/* Forget where a node came from (defaults come from no file). */
static void clear_location(train_config *c)
{
	c->file[0] = '\0';
	c->line = c->col = 0;
	for (size_t i = 0; i < c->len; i++) {
		if (c->keys)
			clear_location(c->keys[i]);
		clear_location(c->items[i]);
	}
}

/* The parsed default of `p` (a fresh tree), checked against its type. */
static int parse_default(const train_param *p, const char *what, train_config **out, train_error *err)
{
	train_error e = { 0 };
	char ebuf[TRAIN_ERROR_TEXT + 64];
	*out = NULL;
	int rc = train_config_parse(p->def, strlen(p->def), "", out, &e);
	if (rc == TRAIN_ENOMEM)
		return nomem(err);
	if (rc)
		return train_error_set(err, TRAIN_ECONFIG, NULL, 0, 0, "bad default for '%s' of %s: %s",
		                       p->name, what, train_error_format(&e, ebuf, sizeof ebuf));
	clear_location(*out);
	if (!fit_type(*out, p->type, true)) {
		describe_found(*out, ebuf, sizeof ebuf);
		train_config_destroy(*out);
		*out = NULL;
		return train_error_set(err, TRAIN_ECONFIG, NULL, 0, 0,
		                       "bad default for '%s' of %s: must be %s, not %s", p->name, what,
		                       describe_expected(p->type), ebuf);
	}
	return TRAIN_OK;
}

static int unknown_key(const train_config *key, const train_param *params, const char *what,
                       train_error *err)
{
	train_buf known = { 0 };
	int rc = TRAIN_OK;
	for (const train_param *p = params; p->type != TRAIN_PARAM_END; p++) {
		rc = train_buf_printf(&known, "%s%s", p == params ? "" : ", ", p->name);
		if (rc)
			goto out;
	}
	rc = train_error_set(err, TRAIN_ECONFIG, key->file, key->line, key->col,
	                     "unknown key '%s' for %s; known keys: %s", key->text, what,
	                     known.len ? known.data : "(none)");
out:
	if (rc == TRAIN_ENOMEM)
		rc = nomem(err);
	train_buf_free(&known);
	return rc;
}

int train_config_validate(const train_config *user, const train_param *params, const char *what,
                          train_config **out, train_error *err)
{
	int rc = TRAIN_OK;
	train_config *res = NULL, *key = NULL, *value = NULL;
	char found[192];

	static const train_param no_params[] = { { NULL, TRAIN_PARAM_END, NULL, NULL } };

	*out = NULL;
	if (!what)
		what = "config";
	if (!params)
		params = no_params;
	if (user && user->kind != TRAIN_CFG_MAP && user->kind != TRAIN_CFG_NULL) {
		describe_found(user, found, sizeof found);
		return train_error_set(err, TRAIN_EINVAL, user->file, user->line, user->col,
		                       "config of %s must be a map, not %s", what, found);
	}
	/* Unknown keys first, in file order, so the first one written is reported. */
	for (size_t i = 0; i < train_config_len(user); i++) {
		const train_param *p = params;
		while (p->type != TRAIN_PARAM_END && strcmp(p->name, user->keys[i]->text) != 0)
			p++;
		if (p->type == TRAIN_PARAM_END)
			return unknown_key(user->keys[i], params, what, err);
	}
	res = node_new(TRAIN_CFG_MAP, user ? user->file : "", user ? user->line : 0, user ? user->col : 0);
	if (!res) {
		rc = nomem(err);
		goto out;
	}
	for (const train_param *p = params; p->type != TRAIN_PARAM_END; p++) {
		long at = map_find(user, p->name, strlen(p->name));
		train_config *def = NULL;
		if (p->def) {
			rc = parse_default(p, what, &def, err);
			if (rc)
				goto out;
		}
		if (at >= 0) {
			const train_config *uv = user->items[at];
			value = copy_node(uv);
			key = copy_node(user->keys[at]);
			if (!value || !key) {
				train_config_destroy(def);
				rc = nomem(err);
				goto out;
			}
			bool null_ok = def && def->kind == TRAIN_CFG_NULL;
			train_config_destroy(def);
			if (!fit_type(value, p->type, null_ok)) {
				describe_found(uv, found, sizeof found);
				rc = train_error_set(err, TRAIN_ECONFIG, uv->file, uv->line, uv->col,
				                     "'%s' must be %s, not %s", p->name,
				                     describe_expected(p->type), found);
				goto out;
			}
		} else if (def) {
			value = def;
			key = node_new(TRAIN_CFG_STRING, "", 0, 0);
			if (!key || node_set_text(key, p->name, strlen(p->name))) {
				rc = nomem(err);
				goto out;
			}
		} else {
			rc = train_error_set(err, TRAIN_ECONFIG, user ? user->file : NULL,
			                     user ? user->line : 0, user ? user->col : 0,
			                     "missing required key '%s' for %s", p->name, what);
			goto out;
		}
		if (node_push(res, key, value)) {
			rc = nomem(err);
			goto out;
		}
		key = value = NULL;
	}
out:
	train_config_destroy(key);
	train_config_destroy(value);
	if (rc) {
		train_config_destroy(res);
		res = NULL;
	}
	*out = res;
	return rc;
}

/* ------------------------------------------------------------------------
 * Canonical bytes.
 *
 *   null  'N'                     bool  'T' | 'F'
 *   int   'I' u64 len, decimal    float 'D' u64 len, text (see float_text)
 *   string 'S' u64 len, bytes
 *   list  'L' u64 count, items
 *   map   'M' u64 count, then per entry sorted by key bytes:
 *         u64 key len, key bytes, value
 * All u64 little-endian.  Lengths make every encoding self-delimiting, so
 * two different trees never give the same bytes.
 */

/* The shortest "%.{p}g" (p = 1..17) that strtod reads back to the same
 * bits; "nan", "inf", "-inf" for the special values.  -0.0 gives "-0".
 * Must run in the "C" numeric locale. */
static void float_text(double v, char buf[40])
{
	if (isnan(v)) {
		strcpy(buf, "nan");
		return;
	}
	if (isinf(v)) {
		strcpy(buf, v < 0 ? "-inf" : "inf");
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, 40, "%.*g", prec, v);
		double back = strtod(buf, NULL);
		if (memcmp(&back, &v, sizeof v) == 0)
			return;
	}
	snprintf(buf, 40, "%.17g", v); /* not reached: 17 digits always round-trip */
}

static int put_len(train_buf *b, uint64_t n)
{
	unsigned char le[8];
	train_put_u64(le, n);
	return train_buf_add(b, le, sizeof le);
}

static int put_tagged(train_buf *b, char tag, const char *s, size_t len)
{
	int rc = train_buf_add(b, &tag, 1);
	if (!rc)
		rc = put_len(b, len);
	if (!rc)
		rc = train_buf_add(b, s, len);
	return rc;
}

typedef struct key_ref {
	const train_config *key;
	size_t index;
} key_ref;

static int key_cmp(const void *a, const void *b)
{
	const train_config *x = ((const key_ref *)a)->key, *y = ((const key_ref *)b)->key;
	size_t n = x->text_len < y->text_len ? x->text_len : y->text_len;
	int r = memcmp(x->text, y->text, n);
	if (r)
		return r;
	return x->text_len < y->text_len ? -1 : x->text_len > y->text_len;
}

static int canon_node(train_buf *b, const train_config *c)
{
	char num[40];
	int rc = TRAIN_OK;
	key_ref *order = NULL;

	switch (c->kind) {
	case TRAIN_CFG_NULL: return train_buf_add(b, "N", 1);
	case TRAIN_CFG_BOOL: return train_buf_add(b, c->b ? "T" : "F", 1);
	case TRAIN_CFG_INT:
		snprintf(num, sizeof num, "%" PRId64, c->i);
		return put_tagged(b, 'I', num, strlen(num));
	case TRAIN_CFG_FLOAT:
		float_text(c->f, num);
		return put_tagged(b, 'D', num, strlen(num));
	case TRAIN_CFG_STRING: return put_tagged(b, 'S', c->text ? c->text : "", c->text_len);
	case TRAIN_CFG_LIST:
		rc = train_buf_add(b, "L", 1);
		if (!rc)
			rc = put_len(b, c->len);
		for (size_t i = 0; !rc && i < c->len; i++)
			rc = canon_node(b, c->items[i]);
		return rc;
	case TRAIN_CFG_MAP:
		break;
	}
	rc = train_buf_add(b, "M", 1);
	if (!rc)
		rc = put_len(b, c->len);
	if (rc || !c->len)
		goto out;
	order = malloc(c->len * sizeof *order);
	if (!order) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < c->len; i++)
		order[i] = (key_ref){ c->keys[i], i };
	qsort(order, c->len, sizeof *order, key_cmp);
	for (size_t i = 0; !rc && i < c->len; i++) {
		const train_config *k = order[i].key;
		rc = put_len(b, k->text_len);
		if (!rc)
			rc = train_buf_add(b, k->text, k->text_len);
		if (!rc)
			rc = canon_node(b, c->items[order[i].index]);
	}
out:
	free(order);
	return rc;
}

int train_config_canonical(const train_config *c, char **out, size_t *size)
{
	train_buf b = { 0 };
	c_numeric loc;
	*out = NULL;
	*size = 0;
	c_numeric_enter(&loc);
	int rc = c ? canon_node(&b, c) : train_buf_add(&b, "N", 1);
	c_numeric_leave(&loc);
	if (rc) {
		train_buf_free(&b);
		return rc;
	}
	*out = b.data;
	*size = b.len;
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------
 * Flow text.
 */

/* A string can be written plain when it is made of "safe" characters, does
 * not start or end with a space, and would read back as a string. */
static bool plain_safe(const char *s, size_t len)
{
	if (!len || s[0] == ' ' || s[len - 1] == ' ' || strlen(s) != len)
		return false;
	if (s[0] == '-' && (len == 1 || s[1] == ' '))
		return false;
	/* '@' cannot start a plain scalar; "---" and "..." at the start of a
	 * line are document markers */
	if (s[0] == '@' || (len >= 3 && (memcmp(s, "---", 3) == 0 || memcmp(s, "...", 3) == 0)))
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = s[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || is_digit(ch) ||
		          strchr("_./@+- ", ch) != NULL;
		if (!ok)
			return false;
	}
	return plain_kind(s, len) == TRAIN_CFG_STRING;
}

static int flow_string(train_buf *b, const char *s, size_t len)
{
	if (plain_safe(s, len))
		return train_buf_add(b, s, len);
	int rc = train_buf_add(b, "\"", 1);
	for (size_t i = 0; !rc && i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		switch (ch) {
		case '"': rc = train_buf_str(b, "\\\""); break;
		case '\\': rc = train_buf_str(b, "\\\\"); break;
		case '\n': rc = train_buf_str(b, "\\n"); break;
		case '\t': rc = train_buf_str(b, "\\t"); break;
		case '\r': rc = train_buf_str(b, "\\r"); break;
		case '\0': rc = train_buf_str(b, "\\0"); break;
		default:
			if (ch < 0x20 || ch == 0x7f)
				rc = train_buf_printf(b, "\\x%02X", ch);
			else
				rc = train_buf_add(b, &ch, 1);
		}
	}
	if (!rc)
		rc = train_buf_add(b, "\"", 1);
	return rc;
}

static int flow_node(train_buf *b, const train_config *c)
{
	char num[48];
	int rc = TRAIN_OK;
	switch (c->kind) {
	case TRAIN_CFG_NULL: return train_buf_str(b, "null");
	case TRAIN_CFG_BOOL: return train_buf_str(b, c->b ? "true" : "false");
	case TRAIN_CFG_INT: return train_buf_printf(b, "%" PRId64, c->i);
	case TRAIN_CFG_FLOAT:
		if (isnan(c->f))
			return train_buf_str(b, ".nan");
		if (isinf(c->f))
			return train_buf_str(b, c->f < 0 ? "-.inf" : ".inf");
		float_text(c->f, num);
		if (!strpbrk(num, ".e"))
			strcat(num, ".0"); /* "3" would read back as an int */
		return train_buf_str(b, num);
	case TRAIN_CFG_STRING: return flow_string(b, c->text ? c->text : "", c->text_len);
	case TRAIN_CFG_LIST:
		rc = train_buf_add(b, "[", 1);
		for (size_t i = 0; !rc && i < c->len; i++) {
			if (i)
				rc = train_buf_str(b, ", ");
			if (!rc)
				rc = flow_node(b, c->items[i]);
		}
		return rc ? rc : train_buf_add(b, "]", 1);
	case TRAIN_CFG_MAP:
		rc = train_buf_add(b, "{", 1);
		for (size_t i = 0; !rc && i < c->len; i++) {
			if (i)
				rc = train_buf_str(b, ", ");
			/* a key written longer than libyaml's 1024 characters for a
			 * simple key is an explicit one ("? KEY: VALUE") */
			size_t at = b->len;
			if (!rc)
				rc = flow_string(b, c->keys[i]->text, c->keys[i]->text_len);
			if (!rc && b->len - at > 1000 && !(rc = train_buf_add(b, "??", 2))) {
				memmove(b->data + at + 2, b->data + at, b->len - 2 - at);
				memcpy(b->data + at, "? ", 2);
			}
			if (!rc)
				rc = train_buf_str(b, ": ");
			if (!rc)
				rc = flow_node(b, c->items[i]);
		}
		return rc ? rc : train_buf_add(b, "}", 1);
	}
	return TRAIN_EINVAL;
}

int train_config_to_flow(const train_config *c, char **out)
{
	train_buf b = { 0 };
	c_numeric loc;
	*out = NULL;
	c_numeric_enter(&loc);
	int rc = c ? flow_node(&b, c) : train_buf_str(&b, "null");
	c_numeric_leave(&loc);
	if (rc) {
		train_buf_free(&b);
		return rc;
	}
	*out = b.data;
	return TRAIN_OK;
}
