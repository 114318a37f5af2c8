/*
 * libtrain/rasa_private.h - what the Rasa readers share (issue 4): the
 * arena every loaded struct lives in, growable arrays in it, a string
 * index, the reading context (file, source text, diagnostics, the first
 * error), YAML node helpers, canonical JSON text of a subtree, and the
 * per-format entry points that rasa_data.c drives.  Not part of the SDK.
 */
#ifndef TRAIN_RASA_PRIVATE_H
#define TRAIN_RASA_PRIVATE_H

#include <train/rasa.h>
#include <train/config.h>

#include "util.h"

#include <stdarg.h>
#include <stdbool.h>

/* ------------------------------------------------------------------------
 * Arena: chunks of zeroed memory, freed all at once.
 */
struct train_rasa_arena {
	struct rasa_chunk *head;
	size_t total; /* bytes handed out, for nothing but curiosity */
};
typedef struct train_rasa_arena rasa_arena;

rasa_arena *rasa_arena_new(void);
/* A big buffer of its own mapping, zeroed, with huge pages where the
 * system has them (rasa_data.c says why); NULL when mmap fails. */
void *rasa_huge_map(size_t size, size_t *mapped);
void rasa_huge_unmap(void *p, size_t mapped);
/* Memory from rasa_buf_new() that the arena frees with itself from now on. */
void rasa_arena_adopt(rasa_arena *a, char *buf);
/* `size` bytes that an arena can adopt (free with rasa_buf_free otherwise). */
char *rasa_buf_new(size_t size);
void rasa_buf_free(char *buf);
void rasa_arena_free(rasa_arena *a);
/* `size` zeroed bytes aligned to 16; NULL when out of memory. */
void *rasa_alloc(rasa_arena *a, size_t size);
/* The same, not zeroed (strings, arrays about to be filled). */
void *rasa_alloc_raw(rasa_arena *a, size_t size);
char *rasa_strndup(rasa_arena *a, const char *s, size_t n);
char *rasa_strdup(rasa_arena *a, const char *s); /* NULL stays NULL (and is not an error) */

/* A growable array in an arena (old storage is abandoned to the arena). */
typedef struct rasa_vec {
	void *v;
	size_t n, cap;
} rasa_vec;
/* Room for one more element of `size` bytes, zeroed; NULL when out of memory. */
void *rasa_vec_push(rasa_arena *a, rasa_vec *vec, size_t size);
/* Make room for `more` elements at once (avoids the copies of doubling). */
int rasa_vec_reserve(rasa_arena *a, rasa_vec *vec, size_t more, size_t size);
/* Append a string pointer. */
int rasa_vec_push_str(rasa_arena *a, rasa_vec *vec, const char *s);
static inline train_rasa_names rasa_names_of(const rasa_vec *vec)
{
	train_rasa_names r = { (const char *const *)vec->v, vec->n };
	return r;
}

/* ------------------------------------------------------------------------
 * String index: key -> size_t, open addressing, malloc'd (not in the arena).
 * Keys are borrowed: they must outlive the index.  Each slot keeps its
 * key's hash: probes compare hashes before texts, growing rehashes nothing.
 */
typedef struct rasa_index_slot {
	const char *key;   /* NULL: empty */
	size_t val;
	uint64_t hash;
} rasa_index_slot;

typedef struct rasa_index {
	rasa_index_slot *slots;
	size_t n, cap; /* cap: 0 or a power of two, at least twice n */
} rasa_index;

/* Value of `key`, or SIZE_MAX when absent. */
size_t rasa_index_get(const rasa_index *ix, const char *key);
/* Insert or replace. */
int rasa_index_put(rasa_index *ix, const char *key, size_t val);
void rasa_index_free(rasa_index *ix);

/* ------------------------------------------------------------------------
 * Reading context: one per load; `file`, `src` change per file.
 */
typedef struct rasa_ctx {
	rasa_arena *arena;         /* the builder being filled: where results go */
	rasa_arena *scratch;       /* for message text (suggestions, key lists) */
	train_rasa_diags *diags;   /* may be NULL */
	train_error *err;          /* may be NULL */
	const char *file;          /* current file name, as given (for messages) */
	const char *afile;         /* the same, in `arena` (for locations) */
	unsigned long file_seq;    /* bumped per file */
	const char *src;           /* its text (for lines of block scalars) */
	size_t src_len;
	size_t *line_starts;       /* lazily: offset of each line, malloc'd */
	size_t n_lines;
	int major;                 /* the file's format major version: 2 or 3 */
	struct rasa_block *blocks; /* literal blocks read by the pre-scan (see
	                                    rasa_data.c), sorted by line; per file */
	size_t n_blocks;
	size_t block_lines;        /* lines in all of them: a size hint */
	bool keep_src;             /* `src` is a buffer the NLU result may keep:
	                              plain example texts stay in it */
	bool text_in_src;          /* set around an NLU example's annotations */
	size_t src_open;           /* texts left in `src` not yet ended by a NUL */
	bool src_used;             /* texts left in `src` (ended or not) */
	bool oom;                  /* a warning could not be recorded */
	void *c_locale;            /* locale_t for number text, lazily */
} rasa_ctx;

void rasa_ctx_set_file(rasa_ctx *c, const char *file, const char *src, size_t len);
void rasa_ctx_clear(rasa_ctx *c);

/* A builder's copy of the current file name (interned once per file). */
typedef struct rasa_file_cache {
	unsigned long seq;
	const char *name;
} rasa_file_cache;
/* Make `a` the arena results go to and intern the file name in it. */
int rasa_ctx_enter(rasa_ctx *c, rasa_arena *a, rasa_file_cache *fc);

/* A location in the current file. */
train_rasa_loc rasa_loc_at(const rasa_ctx *c, unsigned line, unsigned col);
train_rasa_loc rasa_loc_of(const rasa_ctx *c, const train_config *node);

/* Record a warning at a node (NULL: the file) or a place. */
void rasa_warn(rasa_ctx *c, const train_config *at, const char *fmt, ...) TRAIN_PRINTF(3, 4);
void rasa_warn_at(rasa_ctx *c, unsigned line, unsigned col, const char *fmt, ...)
	TRAIN_PRINTF(4, 5);
/* Record an error (err and diags) and return `code`. */
int rasa_fail(rasa_ctx *c, int code, const train_config *at, const char *fmt, ...)
	TRAIN_PRINTF(4, 5);
int rasa_fail_at(rasa_ctx *c, int code, unsigned line, unsigned col, const char *fmt, ...)
	TRAIN_PRINTF(5, 6);
/* For allocation failures. */
int rasa_nomem(rasa_ctx *c);
/* Take over an error from train_config_parse() etc. into diags. */
int rasa_fail_from(rasa_ctx *c, int code, const train_error *e);

/* ------------------------------------------------------------------------
 * YAML nodes.
 */

/* "a string", "a number", "a list", "a map", "null", "true/false" */
const char *rasa_kind_name(const train_config *n);
/* The closest of `known` (NULL-terminated) to `word`, or NULL if none is close. */
const char *rasa_suggest(const char *word, const char *const *known);
/* ", did you mean 'x'?" or "" (static or arena text). */
const char *rasa_did_you_mean(rasa_ctx *c, const char *word, const char *const *known);
/* "a, b, c" of a NULL-terminated list, in the arena ("" when out of memory). */
const char *rasa_join(rasa_ctx *c, const char *const *words);

/*
 * Check that every key of `map` is in `known`; the first unknown key is
 * an error (TRAIN_EINVAL) "unknown key 'k' in WHAT; known keys: ... (did you
 * mean ...)", or, with `warn_only`, a warning per unknown key.
 */
int rasa_check_keys(rasa_ctx *c, const train_config *map, const char *const *known,
                    const char *what, bool warn_only);

/*
 * A string-valued field: the text of a STRING node copied into the arena.
 * Other kinds: TRAIN_EPARSE "WHAT must be a string, not a number".
 * `allow_null`: a null node gives *out = NULL.  `allow_empty`: "" is fine
 * (otherwise "WHAT must not be empty").
 */
int rasa_string(rasa_ctx *c, const train_config *n, const char *what, bool allow_null,
                bool allow_empty, const char **out);
/* A list of strings (a null node gives an empty list). */
int rasa_string_list(rasa_ctx *c, const train_config *n, const char *what, rasa_vec *out);
/* A bool field. */
int rasa_bool(rasa_ctx *c, const train_config *n, const char *what, bool *out);
/* A number (int or float). */
int rasa_number(rasa_ctx *c, const train_config *n, const char *what, double *out);

/*
 * Canonical JSON text of a subtree into the arena: object keys sorted
 * bytewise, ints in decimal, floats as the shortest text that reads back
 * ("nan", "inf", "-inf" as strings), strings escaped (UTF-8 kept).
 * A NULL node gives NULL; a null node gives "null".
 */
int rasa_json(rasa_ctx *c, const train_config *n, const char **out);
/* The same into a buffer. */
int rasa_json_buf(rasa_ctx *c, const train_config *n, train_buf *b);
/* JSON string literal of `s` (n bytes) into `b`. */
int rasa_json_str(train_buf *b, const char *s, size_t n);
/* Scalar text as Rasa would see it in a name or value: the text for any
 * scalar, canonical JSON for lists and maps, NULL for null. */
int rasa_scalar_or_json(rasa_ctx *c, const train_config *n, const char **out);

/*
 * A literal block scalar (`examples: |`) whose body the pre-scan read
 * itself, so that libyaml did not have to (rasa_data.c says why and how
 * it stays exact).  The node at (line, col) reads as `text`.
 */
typedef struct rasa_block {
	unsigned line, col;        /* the '|' */
	unsigned first_line;       /* file line of the body's first line */
	unsigned indent;           /* content indentation (spaces) */
	const char *body;          /* the body's lines in the source text */
	size_t body_len;           /* up to the end of its last line (LF included) */
	int chomp;                 /* 0 clip, '-' strip, '+' keep */
	const char *text;          /* the value, built on first use (rasa_text) */
	size_t len;
} rasa_block;

/* The pre-scan's pieces, for the NLU fast path too.  The header: the line
 * l (n bytes, no LF) is "<spaces>examples: |" with an optional chomping
 * indicator and trailing spaces; returns the byte column (0-based) of '|',
 * or -1; *indent gets the spaces, *chomp 0, '-' or '+'.  The body, from
 * offset b0 (after the header's LF) of a key indented key_indent: returns
 * 1 with its end (one past the LF of its last line, trailing blank lines
 * included), line count and content indentation; 0 when the scalar is
 * empty; -1 when it is not in the plain case the pre-scan takes (see
 * rasa_data.c). */
long rasa_prescan_header(const char *l, size_t n, size_t *indent, int *chomp);
/* Bytes libyaml's reader takes on a line of a block (no line breaks). */
bool rasa_body_bytes_ok(const unsigned char *p, size_t n);
int rasa_prescan_body(const char *text, size_t len, size_t b0, size_t key_indent, size_t *end,
                      unsigned *nlines, unsigned *indent);

/* Lines for the fast paths: [p, e) without the LF; next: after the LF. */
typedef struct rasa_line {
	size_t p, e, next;
} rasa_line;
void rasa_line_at(const char *t, size_t len, size_t p, rasa_line *l);
/* Spaces at t[p..e). */
size_t rasa_spaces(const char *t, size_t p, size_t e);
/* A plain scalar at t[p..e) that libyaml reads as is and the config reader
 * as a string: [A-Za-z_] then [A-Za-z0-9_./-] (and inner spaces when
 * `spaces`), then only spaces to e; not a null or bool word.  Its length,
 * or 0 when t[p..e) is not one. */
size_t rasa_fast_name(const char *t, size_t p, size_t e, bool spaces);
/* The line is `version: "X"` (or 'X') with X of [A-Za-z0-9._-]: X's text,
 * length and the column of its quote (the node's place). */
bool rasa_fast_version(const char *t, const rasa_line *l, const char **v, size_t *vlen,
                       unsigned *col);

/* The block read for a node, or NULL. */
rasa_block *rasa_block_of(const rasa_ctx *c, const train_config *n);
/* The text of a scalar node as libyaml would give it: train_config_as_string(),
 * or the pre-scanned block's value (built in c->scratch on first use).
 * NULL for non-scalars and null, and when out of memory for a block. */
const char *rasa_text(rasa_ctx *c, const train_config *n);
/* A block's value and length (NULL when out of memory). */
const char *rasa_block_text(rasa_ctx *c, rasa_block *b, size_t *len);

/* Source line `line` (1-based) of the current file: pointer and length
 * without the line break; NULL when out of range. */
const char *rasa_src_line(rasa_ctx *c, unsigned line, size_t *len);
/* Number of UTF-8 code points in s[0..n). */
size_t rasa_utf8_len(const char *s, size_t n);

/* ------------------------------------------------------------------------
 * Version check of one file's root map.  Sets c->major (2 or 3).
 */
int rasa_check_version(rasa_ctx *c, const train_config *root);
/* The same for the version's text `s` (NULL: no version) at line:col; what
 * rasa_check_version does once it has a string or none (null or missing:
 * line 1, column 1, or the null's place). */
int rasa_check_version_str(rasa_ctx *c, const char *s, unsigned line, unsigned col);

/* ------------------------------------------------------------------------
 * Entity annotations (rasa_nlu.c), shared with end-to-end story turns.
 *
 * Parses `s` (n bytes) the way Rasa's entities parser does; `*text`
 * (arena) gets the cleaned text (its bytes and code points in *text_len and
 * *text_chars), `ents` the entities (train_rasa_entity
 * elements, arena).  `line`/`col0` place s[0] in the file for messages
 * (col0 0: unknown, point at the node `at`).
 */
int rasa_parse_annotations(rasa_ctx *c, const char *s, size_t n, const train_config *at,
                           unsigned line, unsigned col0, const char **text, size_t *text_len,
                           size_t *text_chars, rasa_vec *ents);
/* "faq/ask_x" -> "faq", "ask_x"; error for more than one '/' or an empty base. */
int rasa_split_intent(rasa_ctx *c, const train_config *at, const char *full,
                      const char **intent, const char **response_key);

/* ------------------------------------------------------------------------
 * Builders: one per kind, filled file by file, then finished into the
 * public struct (which owns the arena).
 */
typedef struct rasa_nlu_b rasa_nlu_b;
typedef struct rasa_domain_b rasa_domain_b;
typedef struct rasa_stories_b rasa_stories_b;

rasa_nlu_b *rasa_nlu_b_new(rasa_arena *a);
/* `with_responses`: also read `responses` (not when they go to the domain). */
int rasa_nlu_b_read(rasa_nlu_b *b, rasa_ctx *c, const train_config *root, bool with_responses);
/* Consumes the builder: the arena moves into the result (NULL when out of
 * memory, and then everything is freed). */
train_rasa_nlu *rasa_nlu_b_finish(rasa_nlu_b *b);
/*
 * The fast path for the common shape of NLU file (rasa_nlu.c says which):
 * reads c->src as rasa_nlu_b_read would read libyaml's tree of it, the
 * version check included, and sets *done; or, for any other file, changes
 * nothing and leaves *done false (then parse it as usual).
 */
int rasa_nlu_fast_read(rasa_nlu_b *b, rasa_ctx *c, bool *done);
/* 0 turns the fast path off (tests compare the two); 1 by default. */
extern int rasa_nlu_fast;
/* The widest vectors its line scanner may use (tests): 0 the widest the
 * processor has, 1 SSE2 (or none), 2 AVX2, 3 AVX-512BW, 4 AVX-512BW a line
 * at a time. */
extern int rasa_nlu_fast_isa;
/* Would the fast path read `text`? (tests) */
bool rasa_nlu_fast_accepts(const char *text, size_t len);
/* train_rasa_nlu_parse of a copy of `text` that the result may keep, as
 * for a file read (tests and fuzzing: the kept-source texts). */
int rasa_nlu_parse_kept(const char *text, size_t len, const char *name, train_rasa_nlu **out,
                        train_rasa_diags *diags, train_error *err);
/* Messages so far (the first of a file, for rasa_nlu_b_seal). */
size_t rasa_nlu_b_count(const rasa_nlu_b *b);
/* After a file with c->keep_src is read: end the texts of messages from
 * `from` on that lie in c->src with a NUL there (when c->src_open says
 * some are not yet).  True when there are texts in c->src: then the result
 * must keep the source (adopt it into the arena). */
bool rasa_nlu_b_seal(rasa_nlu_b *b, const rasa_ctx *c, size_t from);
rasa_arena *rasa_nlu_b_arena(rasa_nlu_b *b);
void rasa_nlu_b_free(rasa_nlu_b *b); /* frees the arena unless finished */

rasa_domain_b *rasa_domain_b_new(rasa_arena *a);
/* The fast path for a domain file in a simple shape (rasa_domain.c), as
 * rasa_nlu_fast_read is for NLU files; the switch and the test as there. */
int rasa_domain_fast_read(rasa_domain_b *b, rasa_ctx *c, bool *done);
extern int rasa_domain_fast;
bool rasa_domain_fast_accepts(const char *text, size_t len);
int rasa_domain_b_read(rasa_domain_b *b, rasa_ctx *c, const train_config *root);
train_rasa_domain *rasa_domain_b_finish(rasa_domain_b *b);
void rasa_domain_b_free(rasa_domain_b *b);

rasa_stories_b *rasa_stories_b_new(rasa_arena *a);
int rasa_stories_b_read(rasa_stories_b *b, rasa_ctx *c, const train_config *root);
train_rasa_stories *rasa_stories_b_finish(rasa_stories_b *b);
void rasa_stories_b_free(rasa_stories_b *b);

/* Responses (`responses:` of a domain or an NLU file) into a vec of
 * train_rasa_response (rasa_domain.c).  `seen` indexes names already in
 * `out` (duplicates: warning, first kept). */
int rasa_read_responses(rasa_ctx *c, const train_config *node, rasa_vec *out, rasa_index *seen);

/* The top-level keys of each kind of file. */
extern const char *const rasa_nlu_keys[];
extern const char *const rasa_story_keys[];
extern const char *const rasa_domain_keys[];

#endif
