/*
 * libtrain/rasa_nlu.c - the reader of Rasa NLU training data (`nlu:` items
 * of data files, <train/rasa.h>, issue 4).
 *
 * Reads what Rasa 3's RasaYAMLReader reads, after the checks of its NLU
 * schema (shared/nlu/training_data/schemas/nlu.yml):
 *
 *   - intent: greet            # or "faq/ask_name": a retrieval intent
 *     metadata: {...}          # optional, any YAML
 *     examples: |              # a block string of "- " lines, or
 *       - hi [Ann](name)       # a list of {text: ..., metadata: ...}
 *   - synonym: NAME / regex: NAME / lookup: NAME
 *     examples: |
 *       - ...
 *
 * and the inline entity annotations of Rasa's entities parser, matched
 * exactly like its regular expression
 *   \[(text)\](\((type)(:value)?\)|\{(json)\}|\[(list of {json})\])
 * so that the cleaned text and the character offsets are the ones Rasa
 * computes (offsets count code points, as Python does).  What Rasa's
 * schema refuses (an unknown key in an item, a list where a block string
 * is required, a name that is not a string) is an error here; what its
 * reader skips with a warning (an item without a name, a line without
 * "- ", an intent without examples) is skipped with a warning.  Markup
 * that looks like an annotation but does not match (an unclosed bracket)
 * stays plain text, as in Rasa, with a warning.
 */
#include "rasa_private.h"

#include <jansson.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

struct syn_group {
	const char *value;
	rasa_vec names;        /* const char * */
	train_rasa_loc loc;
};

struct rasa_nlu_b {
	rasa_arena *a;
	rasa_file_cache fc;
	rasa_vec messages;     /* train_rasa_message */
	rasa_vec groups;       /* struct syn_group */
	rasa_vec regexes;      /* struct named */
	rasa_vec lookups;      /* struct named */
	rasa_vec responses;    /* train_rasa_response */
	rasa_index syn_value;  /* value -> group */
	rasa_index syn_name;   /* name -> group */
	rasa_index regex_ix, lookup_ix, resp_ix;
};

struct named {
	const char *name;
	rasa_vec items;
	train_rasa_loc loc;
};

/* ------------------------------------------------------------------------
 * Builder lifecycle.
 */

rasa_nlu_b *rasa_nlu_b_new(rasa_arena *a)
{
	rasa_nlu_b *b = calloc(1, sizeof *b);
	if (b)
		b->a = a;
	return b;
}

void rasa_nlu_b_free(rasa_nlu_b *b)
{
	if (!b)
		return;
	rasa_index_free(&b->syn_value);
	rasa_index_free(&b->syn_name);
	rasa_index_free(&b->regex_ix);
	rasa_index_free(&b->lookup_ix);
	rasa_index_free(&b->resp_ix);
	rasa_arena_free(b->a);
	free(b);
}

static train_rasa_named_list *finish_named(rasa_arena *a, const rasa_vec *v)
{
	if (!v->n)
		return NULL;
	train_rasa_named_list *out = rasa_alloc(a, v->n * sizeof *out);
	if (!out)
		return NULL;
	const struct named *in = v->v;
	for (size_t i = 0; i < v->n; i++) {
		out[i].name = in[i].name;
		out[i].items = rasa_names_of(&in[i].items);
		out[i].loc = in[i].loc;
	}
	return out;
}

train_rasa_nlu *rasa_nlu_b_finish(rasa_nlu_b *b)
{
	if (!b)
		return NULL;
	rasa_arena *a = b->a;
	train_rasa_nlu *nlu = rasa_alloc(a, sizeof *nlu);
	if (!nlu)
		goto fail;
	nlu->messages = b->messages.v;
	nlu->n_messages = b->messages.n;
	/* Synonym groups that lost all their names to later definitions go. */
	size_t ng = 0;
	const struct syn_group *g = b->groups.v;
	for (size_t i = 0; i < b->groups.n; i++)
		ng += g[i].names.n > 0;
	if (ng) {
		train_rasa_synonym *s = rasa_alloc(a, ng * sizeof *s);
		if (!s)
			goto fail;
		size_t k = 0;
		for (size_t i = 0; i < b->groups.n; i++) {
			if (!g[i].names.n)
				continue;
			s[k].value = g[i].value;
			s[k].names = rasa_names_of(&g[i].names);
			s[k].loc = g[i].loc;
			k++;
		}
		nlu->synonyms = s;
		nlu->n_synonyms = ng;
	}
	nlu->regexes = finish_named(a, &b->regexes);
	nlu->n_regexes = b->regexes.n;
	nlu->lookups = finish_named(a, &b->lookups);
	nlu->n_lookups = b->lookups.n;
	if ((b->regexes.n && !nlu->regexes) || (b->lookups.n && !nlu->lookups))
		goto fail;
	nlu->responses = b->responses.v;
	nlu->n_responses = b->responses.n;
	nlu->arena_ = a;
	b->a = NULL;
	rasa_nlu_b_free(b);
	return nlu;
fail:
	rasa_nlu_b_free(b);
	return NULL;
}

void train_rasa_nlu_free(train_rasa_nlu *nlu)
{
	if (nlu)
		rasa_arena_free(nlu->arena_);
}

/* ------------------------------------------------------------------------
 * Entity annotations.
 */

/* One match of Rasa's ENTITY_REGEX at s[p] == '['. */
typedef struct ann {
	size_t end;                 /* one past the match */
	size_t t0, t1;              /* entity text */
	enum { ANN_TYPE, ANN_DICT, ANN_LIST } kind;
	size_t a0, a1;              /* type, dict body or list body */
	size_t v0, v1;              /* value (ANN_TYPE with ":value"), else v0 == v1 == 0 */
} ann;

static bool match_ann(const char *s, size_t n, size_t p, ann *m)
{
	size_t q = p + 1;
	const char *r = q < n ? memchr(s + q, ']', n - q) : NULL;
	if (!r || (size_t)(r - s) == q)
		return false;
	memset(m, 0, sizeof *m);
	m->t0 = q;
	m->t1 = (size_t)(r - s);
	size_t a = m->t1 + 1;
	if (a >= n)
		return false;
	if (s[a] == '(') {
		/* (type) or (type:value): type is [^:)]+, value [^)]+ */
		size_t e0 = a + 1, e = e0;
		while (e < n && s[e] != ':' && s[e] != ')')
			e++;
		if (e == e0 || e >= n)
			return false;
		m->kind = ANN_TYPE;
		m->a0 = e0;
		m->a1 = e;
		if (s[e] == ')') {
			m->end = e + 1;
			return true;
		}
		size_t v0 = e + 1;
		const char *v = v0 < n ? memchr(s + v0, ')', n - v0) : NULL;
		if (!v || (size_t)(v - s) == v0)
			return false;
		m->v0 = v0;
		m->v1 = (size_t)(v - s);
		m->end = m->v1 + 1;
		return true;
	}
	if (s[a] == '{') {
		size_t d0 = a + 1;
		const char *d = d0 < n ? memchr(s + d0, '}', n - d0) : NULL;
		if (!d || (size_t)(d - s) == d0)
			return false;
		m->kind = ANN_DICT;
		m->a0 = d0;
		m->a1 = (size_t)(d - s);
		m->end = m->a1 + 1;
		return true;
	}
	if (s[a] == '[') {
		/* .*? up to the first ']' on the same line (no DOTALL in Rasa) */
		size_t k = a + 1;
		while (k < n && s[k] != ']' && s[k] != '\n')
			k++;
		if (k >= n || s[k] != ']')
			return false;
		m->kind = ANN_LIST;
		m->a0 = a + 1;
		m->a1 = k;
		m->end = k + 1;
		return true;
	}
	return false;
}

typedef struct ann_ctx {
	rasa_ctx *c;
	const train_config *at;
	unsigned line, col0;
	const char *s;
} ann_ctx;

static unsigned ann_col(const ann_ctx *x, size_t pos)
{
	if (!x->col0)
		return x->at ? train_config_col(x->at) : 0;
	return x->col0 + (unsigned)rasa_utf8_len(x->s, pos);
}

static unsigned ann_line(const ann_ctx *x)
{
	return x->line ? x->line : (x->at ? train_config_line(x->at) : 0);
}

/* One {json} body: entity, value (default `text`), role, group. */
static int ann_dict(ann_ctx *x, size_t at_pos, const char *body, size_t blen, const char *text,
                    size_t tlen, train_rasa_entity *e)
{
	rasa_ctx *c = x->c;
	int rc = TRAIN_OK;
	char *js = malloc(blen + 3);
	if (!js)
		return rasa_nomem(c);
	js[0] = '{';
	memcpy(js + 1, body, blen);
	js[blen + 1] = '}';
	js[blen + 2] = '\0';
	json_error_t je;
	json_t *o = json_loadb(js, blen + 2, 0, &je);
	if (!o) {
		rc = rasa_fail_at(c, TRAIN_EPARSE, ann_line(x), ann_col(x, at_pos),
		                  "entity annotation %.200s is not valid JSON (%s); write it like "
		                  "[text]{\"entity\": \"city\", \"role\": \"from\", \"value\": \"NYC\"}",
		                  js, je.text);
		goto out;
	}
	static const char *const keys[] = { "entity", "value", "role", "group" };
	const char *vals[4] = { NULL, NULL, NULL, NULL };
	for (int i = 0; i < 4; i++) {
		json_t *v = json_object_get(o, keys[i]);
		if (!v)
			continue;
		if (!json_is_string(v)) {
			rc = rasa_fail_at(c, TRAIN_EPARSE, ann_line(x), ann_col(x, at_pos),
			                  "\"%s\" in entity annotation %.200s must be a string", keys[i], js);
			goto out;
		}
		vals[i] = json_string_value(v);
	}
	if (!vals[0]) {
		rc = rasa_fail_at(c, TRAIN_EPARSE, ann_line(x), ann_col(x, at_pos),
		                  "entity annotation %.200s has no \"entity\" key; write it like "
		                  "[text]{\"entity\": \"city\"}", js);
		goto out;
	}
	e->entity = rasa_strdup(c->arena, vals[0]);
	e->value = vals[1] ? rasa_strdup(c->arena, vals[1]) : rasa_strndup(c->arena, text, tlen);
	e->role = rasa_strdup(c->arena, vals[2]);
	e->group = rasa_strdup(c->arena, vals[3]);
	if (!e->entity || !e->value || (vals[2] && !e->role) || (vals[3] && !e->group))
		rc = rasa_nomem(c);
out:
	json_decref(o);
	free(js);
	return rc;
}

/* Warn about markup Rasa leaves as plain text: "](" "]{" "][" in a segment
 * no annotation matched.  Once per example. */
static void check_plain(ann_ctx *x, size_t from, size_t to, bool *warned)
{
	if (*warned)
		return;
	for (size_t i = from; i + 1 < to; i++) {
		const char *rb = memchr(x->s + i, ']', to - 1 - i);
		if (!rb)
			return;
		i = (size_t)(rb - x->s);
		if (x->s[i + 1] == '(' || x->s[i + 1] == '{' || x->s[i + 1] == '[') {
			rasa_warn_at(x->c, ann_line(x), ann_col(x, i),
			             "'%c%c' here is not a complete entity annotation (an unclosed bracket, an "
			             "empty part or a brace inside the JSON?): Rasa keeps it as plain text; "
			             "write [text](entity), [text](entity:value) or [text]{\"entity\": ...}",
			             x->s[i], x->s[i + 1]);
			*warned = true;
			return;
		}
	}
}

int rasa_parse_annotations(rasa_ctx *c, const char *s, size_t n, const train_config *at,
                           unsigned line, unsigned col0, const char **text, size_t *text_len,
                           size_t *text_chars, rasa_vec *ents)
{
	*text = NULL;
	*text_len = 0;
	*text_chars = 0;
	if (n >= UINT32_MAX)
		return rasa_fail(c, TRAIN_EINVAL, at, "text of %zu bytes is too long (at most 4 GiB)", n);
	ann_ctx x = { c, at, line, col0, s };
	char *out = NULL; /* made at the first annotation: most texts have none */
	size_t o = 0, ochars = 0, last = 0, i = 0;
	bool warned = false;
	while (i < n) {
		const char *br = memchr(s + i, '[', n - i);
		if (!br)
			break;
		size_t p = (size_t)(br - s);
		ann m;
		if (!match_ann(s, n, p, &m)) {
			i = p + 1;
			continue;
		}
		check_plain(&x, last, p, &warned);
		if (!out && !(out = rasa_alloc_raw(c->arena, n + 1)))
			return rasa_nomem(c);
		memcpy(out + o, s + last, p - last);
		ochars += rasa_utf8_len(s + last, p - last);
		o += p - last;
		const char *et = s + m.t0;
		size_t etl = m.t1 - m.t0;
		size_t start_b = o, start_c = ochars;
		memcpy(out + o, et, etl);
		o += etl;
		ochars += rasa_utf8_len(et, etl);
		if (memchr(et, '[', etl))
			rasa_warn_at(c, ann_line(&x), ann_col(&x, p),
			             "entity text '%.*s' holds a '[': annotations cannot be nested (Rasa takes "
			             "the text up to the first ']')", (int)(etl > 80 ? 80 : etl), et);
		else if (et[0] == ' ' || et[etl - 1] == ' ')
			rasa_warn_at(c, ann_line(&x), ann_col(&x, p),
			             "entity text '%.*s' starts or ends with a space: its offsets will not line "
			             "up with token boundaries; move the space out of the brackets",
			             (int)(etl > 80 ? 80 : etl), et);
		train_rasa_entity proto = { 0 };
		proto.start = (uint32_t)start_c;
		proto.end = (uint32_t)ochars;
		proto.byte_start = (uint32_t)start_b;
		proto.byte_end = (uint32_t)o;
		if (m.kind == ANN_TYPE) {
			train_rasa_entity *e = rasa_vec_push(c->arena, ents, sizeof *e);
			if (!e)
				return rasa_nomem(c);
			*e = proto;
			e->entity = rasa_strndup(c->arena, s + m.a0, m.a1 - m.a0);
			e->value = m.v1 > m.v0 ? rasa_strndup(c->arena, s + m.v0, m.v1 - m.v0)
			                       : rasa_strndup(c->arena, et, etl);
			if (!e->entity || !e->value)
				return rasa_nomem(c);
		} else if (m.kind == ANN_DICT) {
			train_rasa_entity *e = rasa_vec_push(c->arena, ents, sizeof *e);
			if (!e)
				return rasa_nomem(c);
			*e = proto;
			int rc = ann_dict(&x, p, s + m.a0, m.a1 - m.a0, et, etl, e);
			if (rc)
				return rc;
		} else {
			/* [text][{...}, {...}]: every {json} in the list, same span */
			size_t k = m.a0, found = 0;
			while (k < m.a1) {
				const char *lb = memchr(s + k, '{', m.a1 - k);
				if (!lb)
					break;
				size_t b0 = (size_t)(lb - s) + 1;
				const char *rb = b0 < m.a1 ? memchr(s + b0, '}', m.a1 - b0) : NULL;
				if (!rb)
					break;
				if ((size_t)(rb - s) == b0) {
					k = b0;
					continue;
				}
				train_rasa_entity *e = rasa_vec_push(c->arena, ents, sizeof *e);
				if (!e)
					return rasa_nomem(c);
				*e = proto;
				int rc = ann_dict(&x, p, s + b0, (size_t)(rb - s) - b0, et, etl, e);
				if (rc)
					return rc;
				found++;
				k = (size_t)(rb - s) + 1;
			}
			if (!found)
				rasa_warn_at(c, ann_line(&x), ann_col(&x, p),
				             "entity annotation list [%.*s] holds no {\"entity\": ...} object: the "
				             "text is kept without an entity",
				             (int)(m.a1 - m.a0 > 80 ? 80 : m.a1 - m.a0), s + m.a0);
		}
		last = i = m.end;
	}
	check_plain(&x, last, n, &warned);
	if (!out) {
		/* No annotation: the text is s itself.  In the source text of a
		 * file the NLU result keeps, it stays there (rasa_nlu_b_seal
		 * ends it with a NUL once the file is read). */
		uintptr_t p0 = (uintptr_t)c->src, ps = (uintptr_t)s;
		if (c->text_in_src && c->src && ps >= p0 && ps - p0 <= c->src_len &&
		    n <= c->src_len - (ps - p0)) {
			c->src_open++;
			c->src_used = true;
			*text = s;
			*text_len = n;
			*text_chars = rasa_utf8_len(s, n);
			return TRAIN_OK;
		}
		if (!(out = rasa_alloc_raw(c->arena, n + 1)))
			return rasa_nomem(c);
	}
	memcpy(out + o, s + last, n - last);
	ochars += rasa_utf8_len(s + last, n - last);
	o += n - last;
	out[o] = '\0';
	*text = out;
	*text_len = o;
	*text_chars = ochars;
	return TRAIN_OK;
}

int rasa_split_intent(rasa_ctx *c, const train_config *at, const char *full,
                      const char **intent, const char **response_key)
{
	*intent = full;
	*response_key = NULL;
	const char *p = strchr(full, '/');
	if (!p)
		return TRAIN_OK;
	if (strchr(p + 1, '/'))
		return rasa_fail(c, TRAIN_EINVAL, at, "intent name '%s' has more than one '/'; a retrieval "
		                 "intent is written 'base/response_key'", full);
	if (p == full)
		return rasa_fail(c, TRAIN_EINVAL, at, "intent name '%s' has nothing before the '/'; a "
		                 "retrieval intent is written 'base/response_key'", full);
	*intent = rasa_strndup(c->arena, full, (size_t)(p - full));
	if (!*intent)
		return rasa_nomem(c);
	if (p[1])
		*response_key = p + 1;
	else
		rasa_warn(c, at, "intent name '%s' ends with '/': read as intent '%s' without a response "
		          "key", full, *intent);
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------
 * Synonyms (Rasa: synonyms_parser.add_synonym).
 */

static int add_synonym(rasa_nlu_b *b, rasa_ctx *c, const char *name, const char *value,
                       train_rasa_loc loc, const train_config *at, unsigned line, unsigned col)
{
	size_t gi = rasa_index_get(&b->syn_value, value);
	size_t prev = rasa_index_get(&b->syn_name, name);
	if (prev != SIZE_MAX) {
		if (prev == gi)
			return TRAIN_OK;
		struct syn_group *pg = &((struct syn_group *)b->groups.v)[prev];
		if (at)
			rasa_warn(c, at, "'%s' is a synonym of '%s' and now of '%s' too: the later one "
			          "('%s') is kept, as Rasa does", name, pg->value, value, value);
		else
			rasa_warn_at(c, line, col, "'%s' is a synonym of '%s' and now of '%s' too: the later "
			             "one ('%s') is kept, as Rasa does", name, pg->value, value, value);
		const char **nv = pg->names.v;
		for (size_t i = 0; i < pg->names.n; i++) {
			if (strcmp(nv[i], name) == 0) {
				memmove(&nv[i], &nv[i + 1], (pg->names.n - i - 1) * sizeof *nv);
				pg->names.n--;
				break;
			}
		}
	}
	if (gi == SIZE_MAX) {
		struct syn_group *g = rasa_vec_push(b->a, &b->groups, sizeof *g);
		if (!g)
			return rasa_nomem(c);
		g->value = rasa_strdup(b->a, value);
		if (!g->value)
			return rasa_nomem(c);
		g->loc = loc;
		gi = b->groups.n - 1;
		if (rasa_index_put(&b->syn_value, g->value, gi))
			return rasa_nomem(c);
	}
	struct syn_group *g = &((struct syn_group *)b->groups.v)[gi];
	const char *nm = rasa_strdup(b->a, name);
	if (!nm || rasa_vec_push_str(b->a, &g->names, nm) || rasa_index_put(&b->syn_name, nm, gi))
		return rasa_nomem(c);
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------
 * Block strings of "- " lines.
 */

/* Where the lines of a block string are in the file: for a literal block
 * ("|"), line k of the text is on file line first_line + k, and its
 * column follows from the file line; otherwise every line is placed at
 * the node. */
typedef struct block_pos {
	bool literal;
	unsigned first_line;
} block_pos;

static block_pos block_pos_of(rasa_ctx *c, const train_config *node)
{
	block_pos bp = { false, 0 };
	unsigned line = train_config_line(node), col = train_config_col(node);
	size_t len;
	const char *l = rasa_src_line(c, line, &len);
	if (!l || !col)
		return bp;
	/* walk col - 1 code points */
	size_t i = 0;
	for (unsigned k = 1; k < col && i < len; k++) {
		i++;
		while (i < len && ((unsigned char)l[i] & 0xC0) == 0x80)
			i++;
	}
	if (i < len && l[i] == '|') {
		bp.literal = true;
		bp.first_line = line + 1;
	}
	return bp;
}

/* File column (1-based) of byte `off` of text line `tl` (tlen bytes) that
 * is file line `fline`; 0 when it cannot be placed. */
static unsigned block_col(rasa_ctx *c, unsigned fline, const char *tl, size_t tlen, size_t off)
{
	size_t slen;
	const char *sl = rasa_src_line(c, fline, &slen);
	if (!sl || slen < tlen || memcmp(sl + slen - tlen, tl, tlen) != 0)
		return 0;
	size_t indent = slen - tlen;
	return 1 + (unsigned)rasa_utf8_len(sl, indent) + (unsigned)rasa_utf8_len(tl, off);
}

/* Python's str.splitlines() separators: \n \r \r\n \v \f \x1c-\x1e, and
 * U+0085, U+2028, U+2029.  Returns the separator length at s[i] (0: none). */
static size_t line_break_at(const char *s, size_t n, size_t i)
{
	unsigned char ch = (unsigned char)s[i];
	if (ch == '\r')
		return (i + 1 < n && s[i + 1] == '\n') ? 2 : 1;
	if (ch == '\n' || ch == '\v' || ch == '\f' || (ch >= 0x1c && ch <= 0x1e))
		return 1;
	if (ch == 0xC2 && i + 1 < n && (unsigned char)s[i + 1] == 0x85)
		return 2;
	if (ch == 0xE2 && i + 2 < n && (unsigned char)s[i + 1] == 0x80 &&
	    ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9))
		return 3;
	return 0;
}

typedef int (*line_fn)(void *ud, const char *ex, size_t n, unsigned line, unsigned col);

static bool strip_char(char ch) { return ch == '\n' || ch == '\r' || ch == ' '; }

/* Call `fn` for each "- " line of a block string (Rasa:
 * _parse_multiline_example): the text after "-", stripped of "\n\r ".
 * Lines without the "-" are skipped with a warning (blank lines quietly). */
/* Does `s` hold a line break other than LF? */
static bool other_breaks(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0xC2 || ch == 0xE2)
			if (line_break_at(s, n, i))
				return true;
	}
	return false;
}

/* Line `l` of a pre-scanned block (`len` bytes after the indentation, file
 * line `fline`): `fn` for a "- " line, a warning for other text. */
static int block_line(rasa_ctx *c, const rasa_block *blk, const char *item_kind, const char *name,
                      const char *l, size_t len, unsigned fline, line_fn fn, void *ud, size_t *count)
{
	if (len == 0)
		return TRAIN_OK; /* a blank line */
	if (l[0] != '-') {
		bool blank = true;
		for (size_t k = 0; k < len; k++)
			if (l[k] != ' ' && l[k] != '\t')
				blank = false;
		if (!blank)
			rasa_warn_at(c, fline, blk->indent + 1, "a line of the examples of %s '%s' does not "
			             "start with '- ' and is skipped: %.*s", item_kind, name,
			             (int)(len > 80 ? 80 : len), l);
		return TRAIN_OK;
	}
	size_t x0 = 1, x1 = len;
	while (x0 < x1 && strip_char(l[x0]))
		x0++;
	while (x1 > x0 && strip_char(l[x1 - 1]))
		x1--;
	unsigned col = blk->indent + 1 + (unsigned)rasa_utf8_len(l, x0);
	int rc = fn(ud, l + x0, x1 - x0, fline, col);
	if (rc)
		return rc;
	(*count)++;
	return TRAIN_OK;
}

/* The lines of a pre-scanned block, read from the source (rasa_data.c). */
static int each_block_line(rasa_ctx *c, const rasa_block *blk, const char *item_kind, const char *name,
                           line_fn fn, void *ud, size_t *count)
{
	const char *s = blk->body;
	size_t n = blk->body_len, i = 0;
	unsigned fline = blk->first_line;
	*count = 0;
	for (; i < n; fline++) {
		const char *e = memchr(s + i, '\n', n - i);
		size_t b = e ? (size_t)(e - s) : n;
		const char *l = s + i + blk->indent;
		size_t len = b - i > blk->indent ? b - i - blk->indent : 0;
		i = e ? b + 1 : n;
		int rc = block_line(c, blk, item_kind, name, l, len, fline, fn, ud, count);
		if (rc)
			return rc;
	}
	return TRAIN_OK;
}

static int each_line(rasa_ctx *c, const train_config *node, const char *item_kind, const char *name,
                     line_fn fn, void *ud, size_t *count)
{
	const rasa_block *blk = rasa_block_of(c, node);
	if (blk)
		return each_block_line(c, blk, item_kind, name, fn, ud, count);
	const char *s = train_config_as_string(node);
	size_t n = s ? strlen(s) : 0;
	block_pos bp = block_pos_of(c, node);
	bool lf_only = !other_breaks(s, n);
	unsigned nl = 0; /* '\n' seen so far: file line offset */
	size_t i = 0;
	*count = 0;
	while (i < n) {
		size_t a = i, br = 0;
		if (lf_only) {
			const char *e = memchr(s + i, '\n', n - i);
			i = e ? (size_t)(e - s) : n;
			br = e ? 1 : 0;
		} else {
			while (i < n && !(br = line_break_at(s, n, i)))
				i++;
		}
		size_t b = i;
		unsigned fline = bp.literal ? bp.first_line + nl : train_config_line(node);
		if (lf_only)
			nl += br;
		else
			for (size_t k = b; k < b + br && k < n; k++)
				nl += s[k] == '\n';
		i += br;
		const char *l = s + a;
		size_t len = b - a;
		if (len == 0 || l[0] != '-') {
			bool blank = true;
			for (size_t k = 0; k < len; k++)
				if (l[k] != ' ' && l[k] != '\t')
					blank = false;
			if (!blank) {
				unsigned col = bp.literal ? block_col(c, fline, l, len, 0) : 0;
				rasa_warn_at(c, bp.literal ? fline : train_config_line(node),
				             col ? col : train_config_col(node),
				             "a line of the examples of %s '%s' does not start with '- ' and is "
				             "skipped: %.*s", item_kind, name, (int)(len > 80 ? 80 : len), l);
			}
			continue;
		}
		size_t x0 = 1, x1 = len;
		while (x0 < x1 && strip_char(l[x0]))
			x0++;
		while (x1 > x0 && strip_char(l[x1 - 1]))
			x1--;
		unsigned col = bp.literal ? block_col(c, fline, l, len, x0) : 0;
		int rc = fn(ud, l + x0, x1 - x0, bp.literal ? fline : 0, col);
		if (rc)
			return rc;
		(*count)++;
	}
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------
 * Intents.
 */

typedef struct intent_ctx {
	rasa_nlu_b *b;
	rasa_ctx *c;
	const train_config *node;  /* for places when the line is unknown */
	const char *intent, *response_key, *intent_meta, *meta;
} intent_ctx;

static int add_example(void *ud, const char *ex, size_t n, unsigned line, unsigned col)
{
	intent_ctx *ic = ud;
	rasa_ctx *c = ic->c;
	rasa_nlu_b *b = ic->b;
	if (n == 0) {
		if (line)
			rasa_warn_at(c, line, col, "empty example of intent '%s' is skipped", ic->intent);
		else
			rasa_warn(c, ic->node, "empty example of intent '%s' is skipped", ic->intent);
		return TRAIN_OK;
	}
	rasa_vec ents = { 0 };
	const char *text;
	size_t tl, tc;
	c->text_in_src = c->keep_src;
	int rc = rasa_parse_annotations(c, ex, n, ic->node, line, col, &text, &tl, &tc, &ents);
	c->text_in_src = false;
	if (rc)
		return rc;
	train_rasa_message *m = rasa_vec_push(b->a, &b->messages, sizeof *m);
	if (!m)
		return rasa_nomem(c);
	m->text = text;
	m->text_len = (uint32_t)tl;
	m->text_chars = (uint32_t)tc;
	m->intent = ic->intent;
	m->response_key = ic->response_key;
	m->entities = ents.v;
	m->n_entities = ents.n;
	m->metadata = ic->meta;
	m->intent_metadata = ic->intent_meta;
	m->loc = line ? rasa_loc_at(c, line, col ? col : train_config_col(ic->node))
	              : rasa_loc_of(c, ic->node);
	/* Rasa: add_synonyms_from_entities */
	for (size_t k = 0; k < ents.n; k++) {
		const train_rasa_entity *e = &((const train_rasa_entity *)ents.v)[k];
		size_t sl = e->byte_end - e->byte_start;
		if (strlen(e->value) == sl && memcmp(e->value, text + e->byte_start, sl) == 0)
			continue;
		char *span = rasa_strndup(c->scratch, text + e->byte_start, sl);
		if (!span)
			return rasa_nomem(c);
		rc = add_synonym(b, c, span, e->value, m->loc, line ? NULL : ic->node, m->loc.line,
		                 m->loc.col);
		if (rc)
			return rc;
	}
	return TRAIN_OK;
}

static void no_examples(rasa_ctx *c, const char *full, unsigned line, unsigned col)
{
	rasa_warn_at(c, line, col, "intent '%s' has no examples (add examples: | with \"- \" lines)", full);
}

static const char *const intent_keys[] = { "intent", "metadata", "examples", NULL };
static const char *const example_keys[] = { "text", "metadata", NULL };

static int read_intent(rasa_nlu_b *b, rasa_ctx *c, const train_config *item)
{
	int rc = rasa_check_keys(c, item, intent_keys, "an intent item", false);
	if (rc)
		return rc;
	const train_config *nn = train_config_get(item, "intent");
	const char *full;
	rc = rasa_string(c, nn, "'intent'", true, true, &full);
	if (rc)
		return rc;
	if (!full || !*full) {
		rasa_warn(c, nn, "an intent item has an empty name and is skipped (write - intent: NAME)");
		return TRAIN_OK;
	}
	intent_ctx ic = { b, c, item, NULL, NULL, NULL, NULL };
	rc = rasa_split_intent(c, nn, full, &ic.intent, &ic.response_key);
	if (rc)
		return rc;
	const train_config *meta = train_config_get(item, "metadata");
	if (meta && train_config_kind(meta) != TRAIN_CFG_NULL && (rc = rasa_json(c, meta, &ic.intent_meta)))
		return rc;
	const train_config *ex = train_config_get(item, "examples");
	train_cfg_kind k = ex ? train_config_kind(ex) : TRAIN_CFG_NULL;
	size_t count = 0;
	if (k == TRAIN_CFG_STRING) {
		ic.node = ex;
		/* one message per line, mostly: reserve them (no copies while growing) */
		const rasa_block *blk = rasa_block_of(c, ex);
		const char *t = blk ? blk->body : train_config_as_string(ex);
		size_t tl = blk ? blk->body_len : strlen(t), lines = 1;
		for (const char *q = t; (q = memchr(q, '\n', tl - (size_t)(q - t))); q++)
			lines++;
		if (rasa_vec_reserve(b->a, &b->messages, lines, sizeof(train_rasa_message)))
			return rasa_nomem(c);
		rc = blk ? each_block_line(c, blk, "intent", full, add_example, &ic, &count)
		         : each_line(c, ex, "intent", full, add_example, &ic, &count);
		if (rc)
			return rc;
	} else if (k == TRAIN_CFG_LIST) {
		size_t n = train_config_len(ex);
		for (size_t i = 0; i < n; i++) {
			const train_config *e = train_config_at(ex, i);
			if (train_config_kind(e) == TRAIN_CFG_NULL)
				continue;
			if (train_config_kind(e) != TRAIN_CFG_MAP)
				return rasa_fail(c, TRAIN_EPARSE, e, "an example of intent '%s' must be a map "
				                 "(- text: ...), not %s", full, rasa_kind_name(e));
			if ((rc = rasa_check_keys(c, e, example_keys, "an example", false)))
				return rc;
			if (!train_config_len(e))
				continue;
			const train_config *t = train_config_get(e, "text");
			const char *txt;
			if ((rc = rasa_string(c, t, "'text' of an example", true, true, &txt)))
				return rc;
			if (!txt) {
				rasa_warn(c, e, "an example of intent '%s' has no 'text' and is skipped", full);
				continue;
			}
			ic.meta = NULL;
			const train_config *em = train_config_get(e, "metadata");
			if (em && train_config_kind(em) != TRAIN_CFG_NULL && (rc = rasa_json(c, em, &ic.meta)))
				return rc;
			size_t tl = strlen(txt), x0 = 0, x1 = tl;
			while (x0 < x1 && strip_char(txt[x0]))
				x0++;
			while (x1 > x0 && strip_char(txt[x1 - 1]))
				x1--;
			/* A plain one-line scalar: columns follow the text. */
			unsigned col = 0;
			size_t sl;
			const char *src = rasa_src_line(c, train_config_line(t), &sl);
			if (src && !strchr(txt, '\n') && train_config_col(t) &&
			    train_config_col(t) - 1 + rasa_utf8_len(txt, tl) <= rasa_utf8_len(src, sl)) {
				size_t skip = 0;
				for (unsigned q = 1; q < train_config_col(t) && skip < sl; q++) {
					skip++;
					while (skip < sl && ((unsigned char)src[skip] & 0xC0) == 0x80)
						skip++;
				}
				if (sl - skip >= tl && memcmp(src + skip, txt, tl) == 0)
					col = train_config_col(t) + (unsigned)rasa_utf8_len(txt, x0);
			}
			ic.node = t;
			if ((rc = add_example(&ic, txt + x0, x1 - x0, train_config_line(t), col)))
				return rc;
			count++;
		}
	} else if (k != TRAIN_CFG_NULL) {
		return rasa_fail(c, TRAIN_EPARSE, ex, "the examples of intent '%s' must be a block string "
		                 "(examples: |, then one \"- example\" per line) or a list of {text: ...} "
		                 "items, not %s", full, rasa_kind_name(ex));
	}
	if (!count)
		no_examples(c, full, train_config_line(nn), train_config_col(nn));
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------
 * synonym, regex, lookup.
 */

typedef struct list_ctx {
	rasa_nlu_b *b;
	rasa_ctx *c;
	const train_config *node;
	const char *name;
	int kind;                 /* 0 synonym, 1 regex, 2 lookup */
	struct named *target;     /* regex / lookup */
} list_ctx;

static int add_list_line(void *ud, const char *ex, size_t n, unsigned line, unsigned col)
{
	list_ctx *lc = ud;
	rasa_ctx *c = lc->c;
	train_rasa_loc loc = line ? rasa_loc_at(c, line, col) : rasa_loc_of(c, lc->node);
	if (lc->kind == 0) {
		char *name = rasa_strndup(c->scratch, ex, n);
		if (!name)
			return rasa_nomem(c);
		return add_synonym(lc->b, c, name, lc->name, loc, line ? NULL : lc->node, loc.line, loc.col);
	}
	const char *item = rasa_strndup(lc->b->a, ex, n);
	if (!item || rasa_vec_push_str(lc->b->a, &lc->target->items, item))
		return rasa_nomem(c);
	return TRAIN_OK;
}

static int list_examples(rasa_nlu_b *b, rasa_ctx *c, const char *key, const char *name,
                         unsigned line, unsigned col, const train_config *ex, const rasa_block *blk);

static int read_list_item(rasa_nlu_b *b, rasa_ctx *c, const train_config *item, const char *key)
{
	const char *keys[] = { key, "examples", NULL };
	char what[32];
	snprintf(what, sizeof what, "a %s item", key);
	int rc = rasa_check_keys(c, item, keys, what, false);
	if (rc)
		return rc;
	const train_config *nn = train_config_get(item, key);
	char nwhat[32];
	snprintf(nwhat, sizeof nwhat, "'%s'", key);
	const char *name;
	if ((rc = rasa_string(c, nn, nwhat, true, true, &name)))
		return rc;
	if (!name || !*name) {
		rasa_warn(c, nn, "a %s item has an empty name and is skipped (write - %s: NAME)", key, key);
		return TRAIN_OK;
	}
	const train_config *ex = train_config_get(item, "examples");
	train_cfg_kind k = ex ? train_config_kind(ex) : TRAIN_CFG_NULL;
	const char *ext = k == TRAIN_CFG_STRING ? rasa_text(c, ex) : "";
	if (!ext)
		return rasa_nomem(c);
	if (k == TRAIN_CFG_NULL || (k == TRAIN_CFG_STRING && !*ext)) {
		rasa_warn(c, nn, "%s '%s' has no examples and is skipped", key, name);
		return TRAIN_OK;
	}
	if (k != TRAIN_CFG_STRING)
		return rasa_fail(c, TRAIN_EPARSE, ex, "the examples of %s '%s' must be a block string "
		                 "(examples: |, then one \"- item\" per line), not %s", key, name,
		                 rasa_kind_name(ex));
	return list_examples(b, c, key, name, train_config_line(nn), train_config_col(nn), ex,
	                     rasa_block_of(c, ex));
}

/* The examples of a synonym, regex or lookup item called `name` (at
 * line:col) in `ex`, or in the pre-scanned block `blk` when there is one. */
static int list_examples(rasa_nlu_b *b, rasa_ctx *c, const char *key, const char *name,
                         unsigned line, unsigned col, const train_config *ex, const rasa_block *blk)
{
	int rc;
	list_ctx lc = { b, c, ex, name, 0, NULL };
	if (strcmp(key, "regex") == 0 || strcmp(key, "lookup") == 0) {
		bool rx = key[0] == 'r';
		lc.kind = rx ? 1 : 2;
		rasa_vec *vec = rx ? &b->regexes : &b->lookups;
		rasa_index *ix = rx ? &b->regex_ix : &b->lookup_ix;
		size_t at = rasa_index_get(ix, name);
		if (at == SIZE_MAX) {
			struct named *nm = rasa_vec_push(b->a, vec, sizeof *nm);
			if (!nm)
				return rasa_nomem(c);
			nm->name = name;
			nm->loc = rasa_loc_at(c, line, col);
			at = vec->n - 1;
			if (rasa_index_put(ix, name, at))
				return rasa_nomem(c);
		}
		lc.target = &((struct named *)vec->v)[at];
	}
	size_t count;
	rc = blk ? each_block_line(c, blk, key, name, add_list_line, &lc, &count)
	         : each_line(c, ex, key, name, add_list_line, &lc, &count);
	if (rc)
		return rc;
	if (!count)
		rasa_warn_at(c, line, col, "%s '%s' has no examples", key, name);
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------
 * A file.
 */

int rasa_nlu_b_read(rasa_nlu_b *b, rasa_ctx *c, const train_config *root, bool with_responses)
{
	int rc = rasa_ctx_enter(c, b->a, &b->fc);
	if (rc)
		return rc;
	const train_config *nlu = train_config_get(root, "nlu");
	train_cfg_kind k = nlu ? train_config_kind(nlu) : TRAIN_CFG_NULL;
	/* a message per line of the pre-scanned blocks, about: one array */
	if (c->block_lines && rasa_vec_reserve(b->a, &b->messages, c->block_lines + 16,
	                                       sizeof(train_rasa_message)))
		return rasa_nomem(c);
	if (k != TRAIN_CFG_NULL && k != TRAIN_CFG_LIST)
		return rasa_fail(c, TRAIN_EPARSE, nlu, "'nlu' must be a list of items (- intent: ..., "
		                 "- synonym: ..., - regex: ..., - lookup: ...), not %s", rasa_kind_name(nlu));
	size_t n = train_config_len(nlu);
	for (size_t i = 0; i < n; i++) {
		const train_config *item = train_config_at(nlu, i);
		if (train_config_kind(item) != TRAIN_CFG_MAP)
			return rasa_fail(c, TRAIN_EPARSE, item, "an item under 'nlu' must be a map such as "
			                 "'- intent: NAME' with 'examples', not %s", rasa_kind_name(item));
		if (train_config_get(item, "intent"))
			rc = read_intent(b, c, item);
		else if (train_config_get(item, "synonym"))
			rc = read_list_item(b, c, item, "synonym");
		else if (train_config_get(item, "regex"))
			rc = read_list_item(b, c, item, "regex");
		else if (train_config_get(item, "lookup"))
			rc = read_list_item(b, c, item, "lookup");
		else {
			static const char *const kinds[] = { "intent", "synonym", "regex", "lookup", NULL };
			const char *first = train_config_key_at(item, 0);
			rc = rasa_fail(c, TRAIN_EINVAL, train_config_len(item) ? train_config_key_node_at(item, 0) : item,
			               "an item under 'nlu' needs one of the keys intent, synonym, regex or "
			               "lookup%s", first ? rasa_did_you_mean(c, first, kinds) : "");
		}
		if (rc)
			return rc;
	}
	if (with_responses) {
		const train_config *r = train_config_get(root, "responses");
		if (r && (rc = rasa_read_responses(c, r, &b->responses, &b->resp_ix)))
			return rc;
	}
	return TRAIN_OK;
}

size_t rasa_nlu_b_count(const rasa_nlu_b *b) { return b->messages.n; }

rasa_arena *rasa_nlu_b_arena(rasa_nlu_b *b) { return b->a; }

bool rasa_nlu_b_seal(rasa_nlu_b *b, const rasa_ctx *c, size_t from)
{
	bool any = false;
	uintptr_t p0 = (uintptr_t)c->src;
	train_rasa_message *m = b->messages.v;
	if (!c->src_open)
		return c->src_used;
	for (size_t i = from; c->src && i < b->messages.n; i++) {
		uintptr_t t = (uintptr_t)m[i].text;
		if (t >= p0 && t - p0 <= c->src_len) {
			/* the byte after a plain text is a stripped space, its line's
			 * LF, or the NUL after the file's last byte */
			((char *)c->src)[t - p0 + m[i].text_len] = '\0';
			any = true;
		}
	}
	return any;
}

/* ------------------------------------------------------------------------
 * The fast path: an NLU file in the common shape, read without libyaml.
 *
 * Why: issue 4's benchmark (importing CLINC150, 23,700 examples, at least
 * 5x faster than PyYAML's C loader merely loading it) leaves no room for
 * libyaml's tree, even with the pre-scan of the example blocks
 * (rasa_data.c), nor for reading each example line several times over.
 *
 * What: the shape Rasa itself writes, and nothing else:
 *
 *   version: "3.1"                 top-level keys at column 0: version (a
 *                                  quoted string) and nlu, once each, any
 *   nlu:                           order, version optional
 *   - intent: NAME                 items at one indentation (0 or more)
 *     examples: |                  each item: its kind and name on the
 *       - an example               dash line, then examples: | (with
 *       - another                  - or + at most) two columns deeper,
 *   - synonym: NAME / regex: NAME / lookup: NAME     then the block
 *     examples: |
 *       - ...
 *
 * with empty or space-only lines between lines; names plain ASCII
 * ([A-Za-z_] then letters, digits, spaces, "_-./"; not null/true/false;
 * an intent with one '/' between two parts at most); the block bodies
 * the pre-scan takes (rasa_prescan_body).  Anything else (a comment, a
 * tab, metadata, quotes in a name, flow style, anchors, another key, a
 * name libyaml would read as a number, a file of 2 GiB) makes the file go
 * the libyaml way, untouched: the recogniser runs over the whole file
 * before anything is built or reported, scanning each line once (its end,
 * its indentation, whether it is plain: printable ASCII without brackets).
 * What is built is then built by the same code as for libyaml's tree (the
 * version check, block_line, add_example, list_examples), with the places
 * libyaml would give, except that a plain "- text" line becomes its
 * message directly (what add_example makes of it: no annotation, no
 * warning, as many code points as bytes).  The test "fast_path" and the
 * fuzz target rasa_nlu compare the two ways.
 */

int rasa_nlu_fast = 1;

typedef struct fast_item {
	const char *key;       /* "intent", "synonym", "regex", "lookup" */
	const char *name;      /* in the source */
	size_t name_len;
	unsigned line, col;    /* of the name */
	size_t first, lines;   /* its body lines: fast_file.ends[first ..] */
	rasa_block blk;
} fast_item;

#define FAST_PLAIN 0x80000000u /* a line of printable ASCII (or tabs), no '[' or ']' */

/* What the recogniser found in a file. */
typedef struct fast_file {
	fast_item *items;
	size_t n, cap;
	uint32_t *ends;        /* per body line: its end (the LF, or the file's end), | FAST_PLAIN */
	size_t n_ends, cap_ends;
	const char *ver;       /* the version's text in the source, or NULL */
	size_t ver_len;
	unsigned ver_line, ver_col;
	int (*body)(struct fast_file *ff, const char *text, size_t len, size_t b0, size_t key_indent,
	            size_t *end, unsigned *nlines, unsigned *indent_out);
} fast_file;

typedef int (*fast_body_fn)(fast_file *ff, const char *text, size_t len, size_t b0, size_t key_indent,
                            size_t *end, unsigned *nlines, unsigned *indent_out);

static void fast_file_free(fast_file *f)
{
	free(f->items);
	free(f->ends);
	memset(f, 0, sizeof *f);
}

/* The offset of the first LF in s[0..n) (n when none), in one pass that
 * also counts the spaces the line starts with (*sp) and tells, for the
 * bytes before the LF, whether one is '[' or ']' (*flags bit 1) or
 * anything but printable ASCII and tab (bit 2). */
static inline __attribute__((always_inline)) size_t fast_scan_line_sse2(const unsigned char *s, size_t n,
                                                                         size_t *sp, unsigned *flags)
{
	size_t i = 0;
	unsigned f = 0;
	bool spaces = true; /* still in the leading spaces */
	*sp = 0;
#ifdef __SSE2__
	const __m128i lf = _mm_set1_epi8('\n'), ob = _mm_set1_epi8('['), cb = _mm_set1_epi8(']'),
	              blank = _mm_set1_epi8(' '), del = _mm_set1_epi8(0x7f), tab = _mm_set1_epi8('\t');
	for (; i + 16 <= n; i += 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
		if (spaces) {
			unsigned other = ~(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, blank)) & 0xFFFFu;
			if (other) {
				*sp = i + (size_t)__builtin_ctz(other);
				spaces = false;
			}
		}
		/* signed: below 0x20 is a control byte (LF and tab too) or one of 0x80..0xFF */
		__m128i low = _mm_cmplt_epi8(v, blank);
		__m128i br = _mm_or_si128(_mm_cmpeq_epi8(v, ob), _mm_cmpeq_epi8(v, cb));
		__m128i odd = _mm_or_si128(low, _mm_cmpeq_epi8(v, del));
		if (!_mm_movemask_epi8(_mm_or_si128(odd, br)))
			continue; /* printable ASCII without brackets: most of a text */
		unsigned m_lf = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, lf));
		unsigned m_br = (unsigned)_mm_movemask_epi8(br);
		unsigned m_odd = (unsigned)_mm_movemask_epi8(_mm_andnot_si128(_mm_cmpeq_epi8(v, tab), odd)) &
		                 ~m_lf;
		unsigned before = m_lf ? (m_lf & (0u - m_lf)) - 1 : 0xFFFFu; /* bytes before the LF */
		f |= (m_br & before ? 1u : 0u) | (m_odd & before ? 2u : 0u);
		if (m_lf) {
			*flags = f;
			return i + (size_t)__builtin_ctz(m_lf);
		}
	}
#endif
	for (; i < n; i++) {
		unsigned char ch = s[i];
		if (spaces && ch != ' ') {
			*sp = i;
			spaces = false;
		}
		if (ch == '\n')
			break;
		if (ch == '[' || ch == ']')
			f |= 1;
		else if ((ch < 0x20 && ch != '\t') || ch >= 0x7f)
			f |= 2;
	}
	if (spaces)
		*sp = i;
	*flags = f;
	return i;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FAST_WIDE 1
/* The same with 32 and 64 bytes at a time, where the processor has them
 * (most lines then take one step); the rest of the text as above. */
#define FAST_SCAN_WIDE(NAME, TARGET, W, VEC, LOAD, SET1, EQ, LT, MASK_T)                        \
	__attribute__((target(TARGET), always_inline)) static inline size_t NAME(                   \
	        const unsigned char *s, size_t n, size_t *sp, unsigned *flags)                      \
	{                                                                                           \
		size_t i = 0;                                                                       \
		unsigned f = 0;                                                                     \
		bool spaces = true;                                                                 \
		*sp = 0;                                                                            \
		const VEC lf = SET1('\n'), ob = SET1('['), cb = SET1(']'), blank = SET1(' '),       \
		          del = SET1(0x7f), tab = SET1('\t');                                       \
		for (; i + (W) <= n; i += (W)) {                                                    \
			VEC v = LOAD(s + i);                                                        \
			if (spaces) {                                                               \
				MASK_T other = (MASK_T)~EQ(v, blank);                              \
				if (other) {                                                        \
					*sp = i + (size_t)__builtin_ctzll(other);                   \
					spaces = false;                                             \
				}                                                                   \
			}                                                                           \
			MASK_T br = EQ(v, ob) | EQ(v, cb);                                          \
			MASK_T odd = LT(v, blank) | EQ(v, del);                                     \
			if (!(odd | br))                                                            \
				continue;                                                           \
			MASK_T m_lf = EQ(v, lf);                                                    \
			MASK_T m_odd = odd & ~m_lf & ~EQ(v, tab);                                   \
			MASK_T before = m_lf ? (m_lf & (0 - m_lf)) - 1 : (MASK_T)~(MASK_T)0;        \
			f |= (br & before ? 1u : 0u) | (m_odd & before ? 2u : 0u);                  \
			if (m_lf) {                                                                 \
				*flags = f;                                                         \
				return i + (size_t)__builtin_ctzll(m_lf);                           \
			}                                                                           \
		}                                                                                   \
		size_t sp2;                                                                         \
		unsigned f2;                                                                        \
		size_t e = i + fast_scan_line_sse2(s + i, n - i, &sp2, &f2);                        \
		if (spaces)                                                                         \
			*sp = i + sp2;                                                              \
		*flags = f | f2;                                                                    \
		return e;                                                                           \
	}

#define AVX2_LOAD(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define AVX2_EQ(a, b) ((uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(a, b)))
#define AVX2_LT(a, b) ((uint32_t)_mm256_movemask_epi8(_mm256_cmpgt_epi8(b, a)))
FAST_SCAN_WIDE(fast_scan_line_avx2, "avx2", 32, __m256i, AVX2_LOAD, _mm256_set1_epi8, AVX2_EQ, AVX2_LT,
               uint32_t)
#define AVX512_LOAD(p) _mm512_loadu_si512((const void *)(p))
FAST_SCAN_WIDE(fast_scan_line_avx512, "avx512bw", 64, __m512i, AVX512_LOAD, _mm512_set1_epi8,
               _mm512_cmpeq_epi8_mask, _mm512_cmplt_epi8_mask, uint64_t)
#endif

/* rasa_prescan_body, which it must equal (1, 0 or -1; the end, line
 * count and indentation), in one pass per line that also records each
 * line's end and whether it is plain; one per line scanner, with the
 * scanner inlined. */
#define FAST_BODY(NAME, ATTR, SCAN)                                                              \
	ATTR static int NAME(fast_file *ff, const char *text, size_t len, size_t b0,                 \
	                     size_t key_indent, size_t *end, unsigned *nlines, unsigned *indent_out)  \
	{                                                                                          \
		size_t q = b0, cindent = 0;                                                        \
		bool any = false;                                                                  \
		*nlines = 0;                                                                       \
		*end = b0;                                                                         \
		while (q < len) {                                                                  \
			/* the line's end, leading spaces and kinds of bytes, in one pass          \
			 * (spaces are fine bytes: the kinds are those of [q + sp, e)) */          \
			size_t sp;                                                                 \
			unsigned fl;                                                               \
			size_t e = q + SCAN((const unsigned char *)text + q, len - q, &sp, &fl);   \
			bool blank = q + sp == e;                                                  \
			if (!any) {                                                                \
				if (blank)                                                         \
					return -1; /* a blank line before the content */           \
				if (sp <= key_indent)                                              \
					return 0; /* an empty scalar */                            \
				cindent = sp;                                                      \
				any = true;                                                        \
			}                                                                          \
			if (!blank && sp < cindent)                                                \
				return text[q + sp] == '\t' ? -1 : 1;                              \
			/* bytes other than printable ASCII: as the pre-scan checks them      \
			 * (spaces up to sp are fine either way) */                                \
			if ((fl & 2) && !rasa_body_bytes_ok((const unsigned char *)text + q + cindent, \
			                                    e - q - cindent))                      \
				return -1;                                                         \
			if (ff->n_ends == ff->cap_ends && !fast_grow_ends(ff))                     \
				return -1;                                                         \
			ff->ends[ff->n_ends++] = (uint32_t)e | (fl ? 0 : FAST_PLAIN);              \
			(*nlines)++;                                                               \
			*indent_out = (unsigned)cindent;                                           \
			q = e < len ? e + 1 : len;                                                 \
			*end = q;                                                                  \
		}                                                                                  \
		return any ? 1 : 0;                                                                \
	}

static bool fast_grow_ends(fast_file *ff)
{
	size_t nc = ff->cap_ends ? ff->cap_ends * 2 : 1024;
	uint32_t *ne = realloc(ff->ends, nc * sizeof *ne);
	if (!ne)
		return false;
	ff->ends = ne;
	ff->cap_ends = nc;
	return true;
}

FAST_BODY(fast_body_sse2, , fast_scan_line_sse2)
#ifdef FAST_WIDE
FAST_BODY(fast_body_avx2, __attribute__((target("avx2"))), fast_scan_line_avx2)
FAST_BODY(fast_body_avx512_lines, __attribute__((target("avx512bw"))), fast_scan_line_avx512)

/* FAST_BODY for AVX-512BW, in batches of lines so that a line does not
 * wait for the one before it (in FAST_BODY each line's scan starts where
 * the last one's ended, one chain of dependent steps): first the ends of
 * the next lines, 64 bytes at a time, then each of those lines from one
 * 64-byte look at its start (a longer line as FAST_BODY scans it).  The
 * same results as fast_body_avx512_lines, which the test compares. */
__attribute__((target("avx512bw"))) static int fast_body_avx512(fast_file *ff, const char *text,
                                                                size_t len, size_t b0,
                                                                size_t key_indent, size_t *end,
                                                                unsigned *nlines, unsigned *indent_out)
{
	enum { BATCH = 64 };
	size_t ends[BATCH + 64 + 1];
	const __m512i lf = _mm512_set1_epi8('\n'), ob = _mm512_set1_epi8('['), cb = _mm512_set1_epi8(']'),
	              blank = _mm512_set1_epi8(' '), del = _mm512_set1_epi8(0x7f),
	              tab = _mm512_set1_epi8('\t');
	size_t q = b0, cindent = 0, ne = ff->n_ends;
	unsigned nl_count = 0;
	bool any = false;
	int rc = 1;
	while (q < len) {
		/* the ends of the next lines: LF offsets, or the file's end */
		size_t n = 0, p = q;
		while (n < BATCH && p < len) {
			if (p + 64 <= len) {
				/* the LFs' offsets: four written whatever their number (no
				 * branch on it), those past it overwritten next */
				uint64_t m = _mm512_cmpeq_epi8_mask(_mm512_loadu_si512((const void *)(text + p)), lf);
				size_t cnt = (size_t)__builtin_popcountll(m);
				for (int j = 0; j < 4; j++) {
					ends[n + (size_t)j] = p + (size_t)__builtin_ctzll(m | (1ull << 63));
					m &= m - 1;
				}
				for (size_t j = 4; j < cnt; j++) {
					ends[n + j] = p + (size_t)__builtin_ctzll(m);
					m &= m - 1;
				}
				n += cnt;
				p += 64;
			} else {
				const char *nl = memchr(text + p, '\n', len - p);
				ends[n++] = nl ? (size_t)(nl - text) : len;
				p = nl ? (size_t)(nl - text) + 1 : len;
			}
		}
		/* a last line without an LF that the blocks ran to the end of */
		if (p >= len && (n ? ends[n - 1] + 1 : q) < len)
			ends[n++] = len;
		for (size_t k = 0; k < n; k++) {
			size_t e = ends[k], sp;
			unsigned fl;
			if (q + 64 <= len && e - q < 64) {
				/* the line and its LF in one look */
				__m512i v = _mm512_loadu_si512((const void *)(text + q));
				uint64_t ns = ~_mm512_cmpeq_epi8_mask(v, blank); /* the LF is not a space */
				uint64_t range = ((uint64_t)1 << (e - q)) - 1;
				uint64_t br = _mm512_cmpeq_epi8_mask(v, ob) | _mm512_cmpeq_epi8_mask(v, cb);
				uint64_t odd = (_mm512_cmplt_epi8_mask(v, blank) | _mm512_cmpeq_epi8_mask(v, del)) &
				               ~_mm512_cmpeq_epi8_mask(v, tab);
				sp = (size_t)__builtin_ctzll(ns);
				fl = (br & range ? 1u : 0u) | (odd & range ? 2u : 0u);
			} else {
				size_t e2 = q + fast_scan_line_avx512((const unsigned char *)text + q, len - q, &sp, &fl);
				(void)e2; /* == e */
			}
			bool isblank = q + sp == e;
			if (!any) {
				if (isblank || sp <= key_indent) {
					/* a blank line before the content; an empty scalar */
					rc = isblank ? -1 : 0;
					goto done;
				}
				cindent = sp;
				any = true;
			}
			if (!isblank && sp < cindent) {
				rc = text[q + sp] == '\t' ? -1 : 1;
				goto done;
			}
			if ((fl & 2) && !rasa_body_bytes_ok((const unsigned char *)text + q + cindent,
			                                    e - q - cindent)) {
				rc = -1;
				goto done;
			}
			if (ne == ff->cap_ends) {
				ff->n_ends = ne;
				if (!fast_grow_ends(ff)) {
					rc = -1;
					goto done;
				}
			}
			ff->ends[ne++] = (uint32_t)e | (fl ? 0 : FAST_PLAIN);
			nl_count++;
			q = e < len ? e + 1 : len;
		}
	}
	rc = any ? 1 : 0;
done:
	/* (the results are kept in locals while the loop runs: stores through
	 * these pointers could alias ff's fields and make them reloaded) */
	ff->n_ends = ne;
	*nlines = nl_count;
	*indent_out = (unsigned)cindent;
	*end = any ? q : b0;
	return rc;
}
#endif

int rasa_nlu_fast_isa = 0;

static fast_body_fn fast_body_for_cpu(void)
{
#ifdef FAST_WIDE
	if (rasa_nlu_fast_isa == 4 && __builtin_cpu_supports("avx512bw"))
		return fast_body_avx512_lines;
	if ((!rasa_nlu_fast_isa || rasa_nlu_fast_isa >= 3) && __builtin_cpu_supports("avx512bw"))
		return fast_body_avx512;
	if ((!rasa_nlu_fast_isa || rasa_nlu_fast_isa >= 2) && __builtin_cpu_supports("avx2"))
		return fast_body_avx2;
#endif
	return fast_body_sse2;
}

/* Recognise the file into *ff, or return false (ff then empty). */
static bool fast_scan(const char *t, size_t len, fast_file *ff)
{
	static const char *const kinds[] = { "intent", "synonym", "regex", "lookup" };
	bool seen_version = false, seen_nlu = false;
	long d = -1;          /* the items' indentation, once known */
	int state = 0;        /* 0 top level, 1 right after "nlu:", 2 in the items */
	unsigned line = 1;
	size_t pos = 0;
	memset(ff, 0, sizeof *ff);
	ff->body = fast_body_for_cpu();
	if (len >= FAST_PLAIN) /* offsets fit 31 bits; and columns, lines 32 */
		goto no;
	while (pos < len) {
		rasa_line l;
		rasa_line_at(t, len, pos, &l);
		size_t sp = rasa_spaces(t, l.p, l.e);
		if (l.p + sp == l.e) { /* blank */
			pos = l.next;
			line++;
			continue;
		}
		size_t q = l.p + sp;
		if (state != 0 && t[q] == '-' && (long)sp == (d < 0 ? (long)sp : d) && q + 1 < l.e &&
		    t[q + 1] == ' ') {
			/* an item: "- KIND: NAME" */
			if (d < 0)
				d = (long)sp;
			state = 2;
			size_t k = q + 2, ki;
			for (ki = 0; ki < 4; ki++) {
				size_t kl = strlen(kinds[ki]);
				if (l.e - k > kl && memcmp(t + k, kinds[ki], kl) == 0 && t[k + kl] == ':')
					break;
			}
			if (ki == 4)
				goto no;
			k += strlen(kinds[ki]) + 1;
			size_t gap = rasa_spaces(t, k, l.e);
			if (!gap)
				goto no;
			size_t nl = rasa_fast_name(t, k + gap, l.e, true);
			if (!nl)
				goto no;
			const char *name = t + k + gap;
			if (ki == 0) { /* an intent: at most one '/', with text on both sides */
				const char *sl = memchr(name, '/', nl);
				if (sl && (sl == name || sl == name + nl - 1 ||
				           memchr(sl + 1, '/', nl - (size_t)(sl + 1 - name))))
					goto no;
			}
			unsigned name_line = line, name_col = (unsigned)(k + gap - l.p) + 1;
			/* then blank lines, and the examples header two columns deeper */
			pos = l.next;
			line++;
			rasa_line h;
			for (;;) {
				if (pos >= len)
					goto no;
				rasa_line_at(t, len, pos, &h);
				if (h.p + rasa_spaces(t, h.p, h.e) != h.e)
					break;
				pos = h.next;
				line++;
			}
			size_t ind;
			int chomp;
			long bar = rasa_prescan_header(t + h.p, h.e - h.p, &ind, &chomp);
			if (bar < 0 || ind != (size_t)d + 2 || h.next == h.e) /* no LF: no body */
				goto no;
			size_t end, first = ff->n_ends;
			unsigned nlines = 0, cind = 0;
			if (ff->body(ff, t, len, h.next, ind, &end, &nlines, &cind) != 1)
				goto no;
			if (ff->n == ff->cap) {
				size_t nc = ff->cap ? ff->cap * 2 : 64;
				fast_item *ni = realloc(ff->items, nc * sizeof *ni);
				if (!ni)
					goto no;
				ff->items = ni;
				ff->cap = nc;
			}
			ff->items[ff->n++] = (fast_item){ kinds[ki], name, nl, name_line, name_col, first, nlines,
				                          { line, (unsigned)bar + 1, line + 1, cind, t + h.next,
				                            end - h.next, chomp, NULL, 0 } };
			line += 1 + nlines;
			pos = end;
			continue;
		}
		if (sp != 0 || state == 1)
			goto no;
		/* a top-level key */
		state = 0;
		if (l.e - l.p >= 4 && memcmp(t + l.p, "nlu:", 4) == 0 &&
		    l.p + 4 + rasa_spaces(t, l.p + 4, l.e) == l.e) {
			if (seen_nlu)
				goto no;
			seen_nlu = true;
			state = 1;
		} else if (rasa_fast_version(t, &l, &ff->ver, &ff->ver_len, &ff->ver_col)) {
			if (seen_version)
				goto no;
			seen_version = true;
			ff->ver_line = line;
		} else {
			goto no;
		}
		pos = l.next;
		line++;
	}
	if (seen_nlu && ff->n)
		return true;
no:
	fast_file_free(ff);
	return false;
}

/* The examples of an intent: the plain "- text" lines straight into
 * messages (what add_example makes of them: no annotations, no warnings,
 * ASCII so code points are bytes), any other line as each_block_line
 * takes it. */
static int fast_intent(rasa_nlu_b *b, rasa_ctx *c, const fast_file *ff, const fast_item *it,
                       intent_ctx *ic, const char *name, size_t *count)
{
	const rasa_block *blk = &it->blk;
	const char *src = c->src;
	const uint32_t *ends = ff->ends + it->first;
	size_t start = (size_t)(blk->body - src), ind = blk->indent;
	unsigned fline = blk->first_line;
	*count = 0;
	for (size_t k = 0; k < it->lines; k++, fline++) {
		size_t e = ends[k] & ~FAST_PLAIN;
		const char *l = src + start + ind;
		size_t ll = e - start > ind ? e - start - ind : 0;
		start = e + 1;
		if ((ends[k] & FAST_PLAIN) && ll && l[0] == '-' && b->messages.n < b->messages.cap) {
			size_t x0 = 1, x1 = ll;
			while (x0 < x1 && l[x0] == ' ')
				x0++;
			while (x1 > x0 && l[x1 - 1] == ' ')
				x1--;
			if (x1 > x0) {
				size_t n = x1 - x0;
				const char *text = l + x0;
				if (c->keep_src) {
					/* ended at once: its line is read (the next lines are
					 * found by their recorded ends, not by their LFs) */
					((char *)l)[x1] = '\0';
					c->src_used = true;
				} else if (!(text = rasa_strndup(b->a, text, n))) {
					return rasa_nomem(c);
				}
				train_rasa_message *m = (train_rasa_message *)b->messages.v + b->messages.n++;
				*m = (train_rasa_message){ text, (uint32_t)n, (uint32_t)n, ic->intent,
					                   ic->response_key, NULL, 0, NULL, NULL,
					                   rasa_loc_at(c, fline, (unsigned)(ind + 1 + x0)) };
				(*count)++;
				continue;
			}
		}
		int rc = block_line(c, blk, "intent", name, l, ll, fline, add_example, ic, count);
		if (rc)
			return rc;
	}
	return TRAIN_OK;
}

int rasa_nlu_fast_read(rasa_nlu_b *b, rasa_ctx *c, bool *done)
{
	*done = false;
	fast_file ff;
	if (!rasa_nlu_fast || !c->src || !fast_scan(c->src, c->src_len, &ff))
		return TRAIN_OK;
	*done = true;
	int rc = TRAIN_OK;
	/* as read_text and rasa_nlu_b_read do with libyaml's tree */
	char *vs = NULL;
	if (ff.ver && !(vs = rasa_strndup(c->scratch, ff.ver, ff.ver_len))) {
		rc = rasa_nomem(c);
		goto out;
	}
	if ((rc = rasa_check_version_str(c, vs, vs ? ff.ver_line : 1, vs ? ff.ver_col : 1)))
		goto out;
	if ((rc = rasa_ctx_enter(c, b->a, &b->fc)))
		goto out;
	if (rasa_vec_reserve(b->a, &b->messages, ff.n_ends + 16, sizeof(train_rasa_message))) {
		rc = rasa_nomem(c);
		goto out;
	}
	for (size_t i = 0; i < ff.n && !rc; i++) {
		const fast_item *it = &ff.items[i];
		const char *name = rasa_strndup(c->arena, it->name, it->name_len);
		if (!name) {
			rc = rasa_nomem(c);
			break;
		}
		if (it->key[0] != 'i') {
			rc = list_examples(b, c, it->key, name, it->line, it->col, NULL, &it->blk);
			continue;
		}
		intent_ctx ic = { b, c, NULL, name, NULL, NULL, NULL };
		const char *sl = memchr(name, '/', it->name_len);
		if (sl) {
			if (!(ic.intent = rasa_strndup(c->arena, name, (size_t)(sl - name)))) {
				rc = rasa_nomem(c);
				break;
			}
			ic.response_key = sl + 1;
		}
		size_t count = 0;
		rc = fast_intent(b, c, &ff, it, &ic, name, &count);
		if (!rc && !count)
			no_examples(c, name, it->line, it->col);
	}
out:
	fast_file_free(&ff);
	return rc;
}

bool rasa_nlu_fast_accepts(const char *text, size_t len)
{
	fast_file ff;
	memset(&ff, 0, sizeof ff);
	bool ok = text && fast_scan(text, len, &ff);
	fast_file_free(&ff);
	return ok;
}
