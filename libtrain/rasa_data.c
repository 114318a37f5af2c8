/*
 * libtrain/rasa_data.c - what the Rasa readers share (<train/rasa.h>,
 * issue 4).
 *
 * Sections: the arena and its arrays (big ones on huge pages); the string
 * index; diagnostics; the reading context and its messages; YAML node
 * helpers; canonical JSON; the `version:` check; sorting files into NLU /
 * stories / rules / domain by their top-level keys; the pre-scan of
 * example blocks and what the fast paths of rasa_nlu.c and rasa_domain.c
 * share; walking files and folders (a file's buffer may stay with the NLU
 * result); the public loaders; the binary serialization of the three
 * kinds of value.
 *
 * The formats themselves are read in rasa_nlu.c, rasa_domain.c and
 * rasa_stories.c.  Files are parsed as Rasa's ruamel reads them: anchors,
 * aliases and "<<" merge keys, `${ENV_VAR}` in plain scalars (config.c's
 * TRAIN_CFG_PARSE_RASA).  Left out: the Markdown and JSON training data
 * formats of Rasa 1.
 */
#include "rasa_private.h"

#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

/* ------------------------------------------------------------------------
 * Arena.
 */

struct rasa_chunk {
	struct rasa_chunk *next;
	size_t used, cap;
	size_t mapped;          /* bytes mapped with mmap (then unmapped), or 0: malloc'd */
	_Alignas(16) unsigned char data[];
};

#define HUGE_SZ ((size_t)2 << 20)

/*
 * Big buffers (a big NLU file, its messages, the validator's table) are
 * mapped on their own, 2 MiB aligned and in whole 2 MiB, with
 * MADV_HUGEPAGE: where the system gives transparent huge pages, a fresh
 * 2 MiB costs one fault and one clear instead of 512 of each (here about
 * 0.07 ms instead of 0.7 ms), and a load mostly writes fresh memory.
 * Elsewhere it is a plain mapping.  Returns NULL when mmap fails (then use
 * malloc); *mapped gets the size to unmap.
 */
void *rasa_huge_map(size_t size, size_t *mapped)
{
	if (size == 0 || size > SIZE_MAX / 4)
		return NULL;
	size_t want = (size + HUGE_SZ - 1) & ~(HUGE_SZ - 1);
	char *p = mmap(NULL, want + HUGE_SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	char *q = (char *)(((uintptr_t)p + HUGE_SZ - 1) & ~(uintptr_t)(HUGE_SZ - 1));
	if (q > p)
		munmap(p, (size_t)(q - p));
	if (q + want < p + want + HUGE_SZ)
		munmap(q + want, (size_t)(p + want + HUGE_SZ - (q + want)));
#ifdef MADV_HUGEPAGE
	madvise(q, want, MADV_HUGEPAGE);
#endif
	*mapped = want;
	return q;
}

void rasa_huge_unmap(void *p, size_t mapped)
{
	if (p)
		munmap(p, mapped);
}

static void chunk_free(struct rasa_chunk *c)
{
	if (c && c->mapped)
		rasa_huge_unmap(c, c->mapped);
	else
		free(c);
}

/* Chunks start at 64 KiB and grow with the arena, up to 4 MiB: few
 * mallocs for a big NLU file, little waste for a small one. */
#define RASA_CHUNK (64u << 10)
#define RASA_CHUNK_MAX (4u << 20)

rasa_arena *rasa_arena_new(void)
{
	return calloc(1, sizeof(rasa_arena));
}

void rasa_arena_free(rasa_arena *a)
{
	if (!a)
		return;
	struct rasa_chunk *ch = a->head;
	while (ch) {
		struct rasa_chunk *next = ch->next;
		chunk_free(ch);
		ch = next;
	}
	free(a);
}

static struct rasa_chunk *chunk_new(size_t cap)
{
	struct rasa_chunk *c = NULL;
	size_t mapped = 0;
	if (cap >= ((size_t)1 << 20) && cap < SIZE_MAX / 4 &&
	    (c = rasa_huge_map(sizeof(struct rasa_chunk) + cap, &mapped)))
		cap = mapped - sizeof(struct rasa_chunk);
	if (!c)
		c = malloc(sizeof(struct rasa_chunk) + cap);
	if (!c)
		return NULL;
	c->used = 0;
	c->cap = cap;
	c->next = NULL;
	c->mapped = mapped;
	return c;
}

/* A buffer is a full chunk: adopting it is linking it in. */
static struct rasa_chunk *buf_chunk(char *buf)
{
	return (struct rasa_chunk *)(void *)(buf - offsetof(struct rasa_chunk, data));
}

char *rasa_buf_new(size_t size)
{
	if (size > SIZE_MAX - sizeof(struct rasa_chunk))
		return NULL;
	struct rasa_chunk *c = chunk_new(size);
	if (!c)
		return NULL;
	c->used = size;
	return (char *)c->data;
}

void rasa_buf_free(char *buf)
{
	if (buf)
		chunk_free(buf_chunk(buf));
}

void rasa_arena_adopt(rasa_arena *a, char *buf)
{
	struct rasa_chunk *c = buf_chunk(buf);
	c->used = c->cap; /* nothing is allocated from it */
	if (a->head) {
		c->next = a->head->next; /* behind the current chunk, which keeps its room */
		a->head->next = c;
	} else {
		a->head = c;
	}
}

void *rasa_alloc(rasa_arena *a, size_t size)
{
	void *p = rasa_alloc_raw(a, size);
	if (p)
		memset(p, 0, size);
	return p;
}

void *rasa_alloc_raw(rasa_arena *a, size_t size)
{
	if (!a || size > SIZE_MAX / 2)
		return NULL;
	size = (size + 15) & ~(size_t)15;
	if (a->head)
		a->head->used = (a->head->used + 15) & ~(size_t)15; /* after packed strings */
	if (size == 0)
		size = 16;
	struct rasa_chunk *ch = a->head;
	if (!ch || ch->cap - ch->used < size) {
		size_t cap = a->total < RASA_CHUNK ? RASA_CHUNK : a->total;
		if (cap > RASA_CHUNK_MAX)
			cap = RASA_CHUNK_MAX;
		cap = (cap + 15) & ~(size_t)15;
		bool own = size > cap / 4;
		if (own)
			cap = size;
		struct rasa_chunk *nc = chunk_new(cap);
		if (!nc)
			return NULL;
		if (ch && own) {
			/* A big block gets its own chunk behind the current one, so
			 * the current chunk's free room is not abandoned. */
			nc->next = ch->next;
			ch->next = nc;
		} else {
			nc->next = ch;
			a->head = nc;
		}
		ch = nc;
	}
	void *p = ch->data + ch->used;
	ch->used += size;
	a->total += size;
	return p;
}

/* Unaligned bytes from the current chunk (strings pack tightly). */
static void *alloc_bytes(rasa_arena *a, size_t size)
{
	struct rasa_chunk *ch = a ? a->head : NULL;
	if (ch && ch->cap - ch->used >= size) {
		void *p = ch->data + ch->used;
		ch->used += size;
		a->total += size;
		return p;
	}
	return rasa_alloc_raw(a, size);
}

char *rasa_strndup(rasa_arena *a, const char *s, size_t n)
{
	if (n == SIZE_MAX)
		return NULL;
	char *p = alloc_bytes(a, n + 1);
	if (!p)
		return NULL;
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *rasa_strdup(rasa_arena *a, const char *s)
{
	return s ? rasa_strndup(a, s, strlen(s)) : NULL;
}

int rasa_vec_reserve(rasa_arena *a, rasa_vec *vec, size_t more, size_t size)
{
	if (vec->cap - vec->n >= more)
		return TRAIN_OK;
	if (more > SIZE_MAX / size - vec->n)
		return TRAIN_ENOMEM;
	size_t nc = vec->n + more;
	if (nc < vec->cap * 2 && vec->cap <= SIZE_MAX / 2 / size)
		nc = vec->cap * 2; /* geometric, or repeated reserves copy quadratically */
	void *nv = rasa_alloc_raw(a, nc * size);
	if (!nv)
		return TRAIN_ENOMEM;
	if (vec->n)
		memcpy(nv, vec->v, vec->n * size);
	vec->v = nv;
	vec->cap = nc;
	return TRAIN_OK;
}

void *rasa_vec_push(rasa_arena *a, rasa_vec *vec, size_t size)
{
	if (vec->n == vec->cap) {
		size_t nc = vec->cap ? vec->cap * 2 : 4;
		if (nc > SIZE_MAX / size)
			return NULL;
		void *nv = rasa_alloc_raw(a, nc * size);
		if (!nv)
			return NULL;
		if (vec->n)
			memcpy(nv, vec->v, vec->n * size);
		vec->v = nv;
		vec->cap = nc;
	}
	void *p = (char *)vec->v + vec->n * size;
	memset(p, 0, size);
	vec->n++;
	return p;
}

int rasa_vec_push_str(rasa_arena *a, rasa_vec *vec, const char *s)
{
	const char **slot = rasa_vec_push(a, vec, sizeof *slot);
	if (!slot)
		return TRAIN_ENOMEM;
	*slot = s;
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------
 * String index.
 */

static uint64_t str_hash(const char *s) { return XXH3_64bits(s, strlen(s)); }

/* The slot of `key` (hash h): its own, or the empty one where it goes. */
static rasa_index_slot *index_slot(const rasa_index *ix, const char *key, uint64_t h)
{
	size_t mask = ix->cap - 1;
	for (size_t at = (size_t)h & mask;; at = (at + 1) & mask) {
		rasa_index_slot *sl = &ix->slots[at];
		if (!sl->key || sl->key == key || (sl->hash == h && strcmp(sl->key, key) == 0))
			return sl;
	}
}

size_t rasa_index_get(const rasa_index *ix, const char *key)
{
	if (!ix->cap || !key)
		return SIZE_MAX;
	const rasa_index_slot *sl = index_slot(ix, key, str_hash(key));
	return sl->key ? sl->val : SIZE_MAX;
}

int rasa_index_put(rasa_index *ix, const char *key, size_t val)
{
	if (!key)
		return TRAIN_EINVAL;
	if ((ix->n + 1) * 2 > ix->cap) {
		size_t nc = ix->cap ? ix->cap * 2 : 32;
		rasa_index_slot *ns = calloc(nc, sizeof *ns);
		if (!ns)
			return TRAIN_ENOMEM;
		for (size_t i = 0; i < ix->cap; i++) {
			const rasa_index_slot *sl = &ix->slots[i];
			if (!sl->key)
				continue;
			size_t at = (size_t)sl->hash & (nc - 1);
			while (ns[at].key)
				at = (at + 1) & (nc - 1);
			ns[at] = *sl;
		}
		free(ix->slots);
		ix->slots = ns;
		ix->cap = nc;
	}
	uint64_t h = str_hash(key);
	rasa_index_slot *sl = index_slot(ix, key, h);
	if (!sl->key)
		ix->n++;
	sl->key = key;
	sl->val = val;
	sl->hash = h;
	return TRAIN_OK;
}

void rasa_index_free(rasa_index *ix)
{
	free(ix->slots);
	memset(ix, 0, sizeof *ix);
}

/* ------------------------------------------------------------------------
 * Diagnostics.
 */

struct train_rasa_diags {
	train_rasa_diag *v;
	size_t n, cap;
	size_t count[3];
	size_t dropped;
};

int train_rasa_diags_create(train_rasa_diags **out)
{
	if (!out)
		return TRAIN_EINVAL;
	*out = calloc(1, sizeof **out);
	return *out ? TRAIN_OK : TRAIN_ENOMEM;
}

void train_rasa_diags_destroy(train_rasa_diags *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++)
		free((char *)d->v[i].file); /* file and text share one block */
	free(d->v);
	free(d);
}

size_t train_rasa_diags_len(const train_rasa_diags *d) { return d ? d->n : 0; }

const train_rasa_diag *train_rasa_diags_at(const train_rasa_diags *d, size_t i)
{
	return d && i < d->n ? &d->v[i] : NULL;
}

size_t train_rasa_diags_count(const train_rasa_diags *d, train_rasa_severity sev)
{
	return d && (sev == TRAIN_RASA_WARNING || sev == TRAIN_RASA_ERROR) ? d->count[sev] : 0;
}

size_t train_rasa_diags_dropped(const train_rasa_diags *d) { return d ? d->dropped : 0; }

static int diags_addv(train_rasa_diags *d, train_rasa_severity sev, const char *file,
                      unsigned line, unsigned col, const char *fmt, va_list ap)
{
	if (!d || !fmt || (sev != TRAIN_RASA_WARNING && sev != TRAIN_RASA_ERROR))
		return TRAIN_EINVAL;
	d->count[sev]++;
	if (d->n >= TRAIN_RASA_MAX_DIAGS) {
		d->dropped++;
		return TRAIN_OK;
	}
	/* Most messages fit the stack buffer: formatted once. */
	char tmp[512];
	va_list aq;
	va_copy(aq, ap);
	int tl = vsnprintf(tmp, sizeof tmp, fmt, aq);
	va_end(aq);
	if (tl < 0)
		tl = 0;
	if (!file)
		file = "";
	size_t fl = strlen(file);
	char *blk = malloc(fl + 1 + (size_t)tl + 1);
	if (!blk)
		goto nomem;
	memcpy(blk, file, fl + 1);
	if ((size_t)tl < sizeof tmp)
		memcpy(blk + fl + 1, tmp, (size_t)tl + 1);
	else
		vsnprintf(blk + fl + 1, (size_t)tl + 1, fmt, ap);
	if (d->n == d->cap) {
		size_t nc = d->cap ? d->cap * 2 : 16;
		train_rasa_diag *nv = realloc(d->v, nc * sizeof *nv);
		if (!nv) {
			free(blk);
			goto nomem;
		}
		d->v = nv;
		d->cap = nc;
	}
	d->v[d->n++] = (train_rasa_diag){ sev, blk, line, col, blk + fl + 1 };
	return TRAIN_OK;
nomem:
	d->count[sev]--;
	return TRAIN_ENOMEM;
}

int train_rasa_diags_add(train_rasa_diags *d, train_rasa_severity sev, const char *file,
                         unsigned line, unsigned col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = diags_addv(d, sev, file, line, col, fmt, ap);
	va_end(ap);
	return rc;
}

char *train_rasa_diag_format(const train_rasa_diag *g, char *buf, size_t size)
{
	if (!buf || !size)
		return buf;
	if (!g) {
		buf[0] = '\0';
		return buf;
	}
	const char *sev = g->severity == TRAIN_RASA_ERROR ? "error" : "warning";
	const char *file = g->file ? g->file : "";
	const char *text = g->text ? g->text : "";
	if (file[0] && g->line && g->col)
		snprintf(buf, size, "%s:%u:%u: %s: %s", file, g->line, g->col, sev, text);
	else if (file[0] && g->line)
		snprintf(buf, size, "%s:%u: %s: %s", file, g->line, sev, text);
	else if (file[0])
		snprintf(buf, size, "%s: %s: %s", file, sev, text);
	else
		snprintf(buf, size, "%s: %s", sev, text);
	return buf;
}

/* ------------------------------------------------------------------------
 * Reading context and its messages.
 */

void rasa_ctx_set_file(rasa_ctx *c, const char *file, const char *src, size_t len)
{
	c->file = file ? file : "";
	c->afile = "";
	c->file_seq++;
	c->src = src;
	c->src_len = len;
	free(c->line_starts);
	c->line_starts = NULL;
	c->n_lines = 0;
	c->major = 3;
	c->blocks = NULL;
	c->n_blocks = 0;
	c->block_lines = 0;
}

void rasa_ctx_clear(rasa_ctx *c)
{
	free(c->line_starts);
	c->line_starts = NULL;
	c->n_lines = 0;
	if (c->c_locale)
		freelocale((locale_t)c->c_locale);
	c->c_locale = NULL;
}

int rasa_ctx_enter(rasa_ctx *c, rasa_arena *a, rasa_file_cache *fc)
{
	c->arena = a;
	if (fc->seq != c->file_seq || !fc->name) {
		fc->name = rasa_strdup(a, c->file ? c->file : "");
		if (!fc->name)
			return rasa_nomem(c);
		fc->seq = c->file_seq;
	}
	c->afile = fc->name;
	return TRAIN_OK;
}

train_rasa_loc rasa_loc_at(const rasa_ctx *c, unsigned line, unsigned col)
{
	train_rasa_loc l = { c->afile ? c->afile : "", line, col };
	return l;
}

train_rasa_loc rasa_loc_of(const rasa_ctx *c, const train_config *node)
{
	if (!node)
		return rasa_loc_at(c, 0, 0);
	return rasa_loc_at(c, train_config_line(node), train_config_col(node));
}

static char *vfmt(const char *fmt, va_list ap)
{
	va_list aq;
	va_copy(aq, ap);
	int n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		return NULL;
	char *s = malloc((size_t)n + 1);
	if (s)
		vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

static void warn_v(rasa_ctx *c, unsigned line, unsigned col, const char *fmt, va_list ap)
{
	if (!c->diags)
		return;
	if (diags_addv(c->diags, TRAIN_RASA_WARNING, c->file, line, col, fmt, ap) != TRAIN_OK)
		c->oom = true;
}

void rasa_warn(rasa_ctx *c, const train_config *at, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	warn_v(c, at ? train_config_line(at) : 0, at ? train_config_col(at) : 0, fmt, ap);
	va_end(ap);
}

void rasa_warn_at(rasa_ctx *c, unsigned line, unsigned col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	warn_v(c, line, col, fmt, ap);
	va_end(ap);
}

static int fail_v(rasa_ctx *c, int code, unsigned line, unsigned col, const char *fmt, va_list ap)
{
	char *text = vfmt(fmt, ap);
	const char *t = text ? text : "out of memory while formatting a message";
	train_error_set(c->err, code, c->file && c->file[0] ? c->file : NULL, line, col, "%s", t);
	if (c->diags)
		train_rasa_diags_add(c->diags, TRAIN_RASA_ERROR, c->file, line, col, "%s", t);
	free(text);
	return code;
}

int rasa_fail(rasa_ctx *c, int code, const train_config *at, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = fail_v(c, code, at ? train_config_line(at) : 0, at ? train_config_col(at) : 0, fmt, ap);
	va_end(ap);
	return rc;
}

int rasa_fail_at(rasa_ctx *c, int code, unsigned line, unsigned col, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = fail_v(c, code, line, col, fmt, ap);
	va_end(ap);
	return rc;
}

int rasa_nomem(rasa_ctx *c)
{
	return rasa_fail(c, TRAIN_ENOMEM, NULL, "out of memory");
}

int rasa_fail_from(rasa_ctx *c, int code, const train_error *e)
{
	if (c->err && c->err != e)
		*c->err = *e;
	if (c->diags)
		train_rasa_diags_add(c->diags, TRAIN_RASA_ERROR, e->file[0] ? e->file : c->file, e->line,
		                     e->col, "%s", e->text[0] ? e->text : train_strerror(code));
	return code;
}

/* ------------------------------------------------------------------------
 * YAML node helpers.
 */

const char *rasa_kind_name(const train_config *n)
{
	switch (n ? train_config_kind(n) : TRAIN_CFG_NULL) {
	case TRAIN_CFG_NULL: return "null";
	case TRAIN_CFG_BOOL: return "true/false";
	case TRAIN_CFG_INT:
	case TRAIN_CFG_FLOAT: return "a number";
	case TRAIN_CFG_STRING: return "a string";
	case TRAIN_CFG_LIST: return "a list";
	case TRAIN_CFG_MAP: return "a map";
	}
	return "something else";
}

static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return SIZE_MAX;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t prev = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t cur = row[j];
			size_t best = prev + (a[i - 1] != b[j - 1]);
			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			prev = cur;
		}
	}
	return row[lb];
}

const char *rasa_suggest(const char *word, const char *const *known)
{
	if (!word)
		return NULL;
	const char *best = NULL;
	size_t best_d = SIZE_MAX;
	size_t lw = strlen(word);
	size_t limit = lw / 3 > 1 ? lw / 3 : 1;
	if (limit > 3)
		limit = 3;
	for (; *known; known++) {
		size_t d = edit_distance(word, *known);
		if (d <= limit && d < best_d) {
			best = *known;
			best_d = d;
		}
	}
	return best;
}

const char *rasa_did_you_mean(rasa_ctx *c, const char *word, const char *const *known)
{
	const char *s = rasa_suggest(word, known);
	if (!s)
		return "";
	size_t n = strlen(s) + 32;
	char *t = rasa_alloc(c->scratch, n);
	if (!t)
		return "";
	snprintf(t, n, " (did you mean '%s'?)", s);
	return t;
}

const char *rasa_join(rasa_ctx *c, const char *const *words)
{
	size_t n = 1;
	for (const char *const *w = words; *w; w++)
		n += strlen(*w) + 2;
	char *t = rasa_alloc(c->scratch, n);
	if (!t)
		return "";
	char *p = t;
	for (const char *const *w = words; *w; w++) {
		if (w != words) {
			memcpy(p, ", ", 2);
			p += 2;
		}
		size_t l = strlen(*w);
		memcpy(p, *w, l);
		p += l;
	}
	*p = '\0';
	return t;
}

static bool in_list(const char *k, const char *const *known)
{
	for (; *known; known++)
		if (strcmp(k, *known) == 0)
			return true;
	return false;
}

int rasa_check_keys(rasa_ctx *c, const train_config *map, const char *const *known,
                    const char *what, bool warn_only)
{
	size_t n = train_config_len(map);
	for (size_t i = 0; i < n; i++) {
		const char *k = train_config_key_at(map, i);
		if (!k || in_list(k, known))
			continue;
		const train_config *kn = train_config_key_node_at(map, i);
		if (warn_only) {
			rasa_warn(c, kn, "unknown key '%s' in %s is ignored; known keys: %s%s", k, what,
			          rasa_join(c, known), rasa_did_you_mean(c, k, known));
			continue;
		}
		return rasa_fail(c, TRAIN_EINVAL, kn, "unknown key '%s' in %s; known keys: %s%s", k, what,
		                 rasa_join(c, known), rasa_did_you_mean(c, k, known));
	}
	return TRAIN_OK;
}

int rasa_string(rasa_ctx *c, const train_config *n, const char *what, bool allow_null,
                bool allow_empty, const char **out)
{
	*out = NULL;
	train_cfg_kind k = n ? train_config_kind(n) : TRAIN_CFG_NULL;
	if (k == TRAIN_CFG_NULL) {
		if (allow_null)
			return TRAIN_OK;
		return rasa_fail(c, TRAIN_EPARSE, n, "%s must be a string, not null", what);
	}
	if (k != TRAIN_CFG_STRING) {
		const char *t = rasa_text(c, n);
		return rasa_fail(c, TRAIN_EPARSE, n, "%s must be a string, not %s%s%s%s (quote it)", what,
		                 rasa_kind_name(n), t ? " (" : "", t ? t : "", t ? ")" : "");
	}
	const char *s = rasa_text(c, n);
	if (!allow_empty && (!s || !*s))
		return rasa_fail(c, TRAIN_EINVAL, n, "%s must not be empty", what);
	*out = rasa_strdup(c->arena, s ? s : "");
	return *out ? TRAIN_OK : rasa_nomem(c);
}

int rasa_string_list(rasa_ctx *c, const train_config *n, const char *what, rasa_vec *out)
{
	train_cfg_kind k = n ? train_config_kind(n) : TRAIN_CFG_NULL;
	if (k == TRAIN_CFG_NULL)
		return TRAIN_OK;
	if (k != TRAIN_CFG_LIST)
		return rasa_fail(c, TRAIN_EPARSE, n, "%s must be a list of names, not %s", what,
		                 rasa_kind_name(n));
	size_t len = train_config_len(n);
	for (size_t i = 0; i < len; i++) {
		const char *s;
		int rc = rasa_string(c, train_config_at(n, i), what, false, false, &s);
		if (rc)
			return rc;
		if (rasa_vec_push_str(c->arena, out, s))
			return rasa_nomem(c);
	}
	return TRAIN_OK;
}

int rasa_bool(rasa_ctx *c, const train_config *n, const char *what, bool *out)
{
	if (!n || train_config_kind(n) != TRAIN_CFG_BOOL) {
		const char *t = n ? rasa_text(c, n) : NULL;
		return rasa_fail(c, TRAIN_EPARSE, n, "%s must be true or false, not %s%s%s%s", what,
		                 rasa_kind_name(n), t ? " (" : "", t ? t : "", t ? ")" : "");
	}
	*out = train_config_as_bool(n);
	return TRAIN_OK;
}

int rasa_number(rasa_ctx *c, const train_config *n, const char *what, double *out)
{
	train_cfg_kind k = n ? train_config_kind(n) : TRAIN_CFG_NULL;
	if (k != TRAIN_CFG_INT && k != TRAIN_CFG_FLOAT) {
		const char *t = n ? rasa_text(c, n) : NULL;
		return rasa_fail(c, TRAIN_EPARSE, n, "%s must be a number, not %s%s%s%s", what,
		                 rasa_kind_name(n), t ? " (" : "", t ? t : "", t ? ")" : "");
	}
	*out = train_config_as_float(n);
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------
 * Canonical JSON.
 */

int rasa_json_str(train_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	if (train_buf_add(b, "\"", 1))
		return TRAIN_ENOMEM;
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		char esc[7];
		size_t el = 0;
		if (ch == '"' || ch == '\\') {
			esc[0] = '\\';
			esc[1] = (char)ch;
			el = 2;
		} else if (ch == '\n') {
			memcpy(esc, "\\n", 2);
			el = 2;
		} else if (ch == '\t') {
			memcpy(esc, "\\t", 2);
			el = 2;
		} else if (ch == '\r') {
			memcpy(esc, "\\r", 2);
			el = 2;
		} else if (ch < 0x20 || ch == 0x7f) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[ch >> 4];
			esc[5] = hex[ch & 15];
			el = 6;
		}
		if (el) {
			if (run && train_buf_add(b, s + i - run, run))
				return TRAIN_ENOMEM;
			run = 0;
			if (train_buf_add(b, esc, el))
				return TRAIN_ENOMEM;
		} else {
			run++;
		}
	}
	if (run && train_buf_add(b, s + n - run, run))
		return TRAIN_ENOMEM;
	return train_buf_add(b, "\"", 1) ? TRAIN_ENOMEM : TRAIN_OK;
}

/* Shortest "%.{p}g" text that reads back to the same double, "C" locale. */
static int json_double(rasa_ctx *c, double v, train_buf *b)
{
	if (isnan(v))
		return train_buf_str(b, "\"nan\"") ? TRAIN_ENOMEM : TRAIN_OK;
	if (isinf(v))
		return train_buf_str(b, v < 0 ? "\"-inf\"" : "\"inf\"") ? TRAIN_ENOMEM : TRAIN_OK;
	if (!c->c_locale)
		c->c_locale = (void *)newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
	locale_t old = c->c_locale ? uselocale((locale_t)c->c_locale) : (locale_t)0;
	char tmp[40];
	for (int p = 1; p <= 17; p++) {
		snprintf(tmp, sizeof tmp, "%.*g", p, v);
		if (strtod(tmp, NULL) == v)
			break;
	}
	if (c->c_locale)
		uselocale(old);
	/* Keep it a float in JSON readers that care: "1" -> "1.0". */
	if (!strpbrk(tmp, ".eEn"))
		strcat(tmp, ".0");
	return train_buf_str(b, tmp) ? TRAIN_ENOMEM : TRAIN_OK;
}

typedef struct key_ix {
	const char *key;
	size_t i;
} key_ix;

static int cmp_key_ix(const void *a, const void *b)
{
	return strcmp(((const key_ix *)a)->key, ((const key_ix *)b)->key);
}

int rasa_json_buf(rasa_ctx *c, const train_config *n, train_buf *b)
{
	switch (n ? train_config_kind(n) : TRAIN_CFG_NULL) {
	case TRAIN_CFG_NULL:
		return train_buf_str(b, "null") ? TRAIN_ENOMEM : TRAIN_OK;
	case TRAIN_CFG_BOOL:
		return train_buf_str(b, train_config_as_bool(n) ? "true" : "false") ? TRAIN_ENOMEM : TRAIN_OK;
	case TRAIN_CFG_INT:
		return train_buf_printf(b, "%" PRId64, train_config_as_int(n)) ? TRAIN_ENOMEM : TRAIN_OK;
	case TRAIN_CFG_FLOAT:
		return json_double(c, train_config_as_float(n), b);
	case TRAIN_CFG_STRING: {
		rasa_block *blk = rasa_block_of(c, n);
		if (blk) {
			size_t bl;
			const char *bt = rasa_block_text(c, blk, &bl);
			return bt ? rasa_json_str(b, bt, bl) : TRAIN_ENOMEM;
		}
		const char *s = train_config_as_string(n);
		return rasa_json_str(b, s ? s : "", s ? strlen(s) : 0);
	}
	case TRAIN_CFG_LIST: {
		if (train_buf_add(b, "[", 1))
			return TRAIN_ENOMEM;
		size_t len = train_config_len(n);
		for (size_t i = 0; i < len; i++) {
			if (i && train_buf_add(b, ",", 1))
				return TRAIN_ENOMEM;
			int rc = rasa_json_buf(c, train_config_at(n, i), b);
			if (rc)
				return rc;
		}
		return train_buf_add(b, "]", 1) ? TRAIN_ENOMEM : TRAIN_OK;
	}
	case TRAIN_CFG_MAP: {
		size_t len = train_config_len(n);
		key_ix *ks = len ? malloc(len * sizeof *ks) : NULL;
		if (len && !ks)
			return TRAIN_ENOMEM;
		for (size_t i = 0; i < len; i++) {
			const char *k = train_config_key_at(n, i);
			ks[i] = (key_ix){ k ? k : "", i };
		}
		if (len > 1)
			qsort(ks, len, sizeof *ks, cmp_key_ix);
		int rc = train_buf_add(b, "{", 1) ? TRAIN_ENOMEM : TRAIN_OK;
		for (size_t i = 0; !rc && i < len; i++) {
			if (i && train_buf_add(b, ",", 1)) {
				rc = TRAIN_ENOMEM;
				break;
			}
			rc = rasa_json_str(b, ks[i].key, strlen(ks[i].key));
			if (!rc && train_buf_add(b, ":", 1))
				rc = TRAIN_ENOMEM;
			if (!rc)
				rc = rasa_json_buf(c, train_config_at(n, ks[i].i), b);
		}
		free(ks);
		if (!rc && train_buf_add(b, "}", 1))
			rc = TRAIN_ENOMEM;
		return rc;
	}
	}
	return TRAIN_EINVAL;
}

int rasa_json(rasa_ctx *c, const train_config *n, const char **out)
{
	*out = NULL;
	if (!n)
		return TRAIN_OK;
	train_buf b = { 0 };
	int rc = rasa_json_buf(c, n, &b);
	if (!rc) {
		*out = rasa_strndup(c->arena, b.data ? b.data : "", b.len);
		if (!*out)
			rc = TRAIN_ENOMEM;
	}
	train_buf_free(&b);
	return rc ? rasa_nomem(c) : TRAIN_OK;
}

int rasa_scalar_or_json(rasa_ctx *c, const train_config *n, const char **out)
{
	*out = NULL;
	switch (n ? train_config_kind(n) : TRAIN_CFG_NULL) {
	case TRAIN_CFG_NULL:
		return TRAIN_OK;
	case TRAIN_CFG_LIST:
	case TRAIN_CFG_MAP:
		return rasa_json(c, n, out);
	default:
		*out = rasa_strdup(c->arena, rasa_text(c, n));
		return *out ? TRAIN_OK : rasa_nomem(c);
	}
}

/* ------------------------------------------------------------------------
 * Source lines and UTF-8.
 */

const char *rasa_src_line(rasa_ctx *c, unsigned line, size_t *len)
{
	if (!c->src || line == 0)
		return NULL;
	if (!c->line_starts) {
		size_t n = 1;
		for (size_t i = 0; i < c->src_len; i++)
			if (c->src[i] == '\n')
				n++;
		c->line_starts = malloc(n * sizeof *c->line_starts);
		if (!c->line_starts) {
			c->oom = true;
			return NULL;
		}
		size_t k = 0;
		c->line_starts[k++] = 0;
		for (size_t i = 0; i < c->src_len; i++)
			if (c->src[i] == '\n')
				c->line_starts[k++] = i + 1;
		c->n_lines = n;
	}
	if (line > c->n_lines)
		return NULL;
	size_t a = c->line_starts[line - 1];
	size_t b = line < c->n_lines ? c->line_starts[line] - 1 : c->src_len;
	if (b > a && c->src[b - 1] == '\r')
		b--;
	*len = b - a;
	return c->src + a;
}

size_t rasa_utf8_len(const char *s, size_t n)
{
	/* bytes that are not continuation bytes (10xxxxxx), 8 at a time */
	size_t k = 0, i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t w;
		memcpy(&w, s + i, 8);
		uint64_t cont = (w & ~(w << 1) & 0x8080808080808080ULL) >> 7;
		k += 8 - (size_t)((cont * 0x0101010101010101ULL) >> 56);
	}
	for (; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			k++;
	return k;
}

/* ------------------------------------------------------------------------
 * The `version:` key (Rasa: validate_training_data_format_version).
 *
 * Rasa reads a file without a version, or with an older one, as the
 * newest format and warns; it skips a file with a newer version (a
 * warning).  Skipping would silently lose training data, so a newer
 * *major* version is an error here; a newer minor within 3 is read with
 * a warning.  Files of major version 2 are read with Rasa 2's domain
 * rules (c->major = 2): slots without mappings, `auto_fill`, forms that
 * list slot mappings.
 */

int rasa_check_version(rasa_ctx *c, const train_config *root)
{
	c->major = 3;
	const train_config *v = train_config_get(root, "version");
	if (!v || train_config_kind(v) == TRAIN_CFG_NULL)
		return rasa_check_version_str(c, NULL, v ? train_config_line(v) : 1,
		                              v ? train_config_col(v) : 1);
	if (train_config_kind(v) != TRAIN_CFG_STRING)
		return rasa_fail(c, TRAIN_EPARSE, v,
		                 "'version' must be a quoted string such as \"%s\", not %s (%s)",
		                 TRAIN_RASA_FORMAT_VERSION, rasa_kind_name(v), rasa_text(c, v));
	return rasa_check_version_str(c, rasa_text(c, v), train_config_line(v), train_config_col(v));
}

int rasa_check_version_str(rasa_ctx *c, const char *s, unsigned line, unsigned col)
{
	c->major = 3;
	if (!s || !*s) {
		rasa_warn_at(c, line, col,
		             "no 'version' key: read as a version \"%s\" file, as Rasa does "
		             "(add version: \"%s\" at the top)",
		             TRAIN_RASA_FORMAT_VERSION, TRAIN_RASA_FORMAT_VERSION);
		return TRAIN_OK;
	}
	size_t a = 0, b = strlen(s);
	while (a < b && (s[a] == '"' || s[a] == '\''))
		a++;
	while (b > a && (s[b - 1] == '"' || s[b - 1] == '\''))
		b--;
	size_t i = a;
	if (i < b && (s[i] == 'v' || s[i] == 'V'))
		i++;
	long parts[2] = { 0, 0 };
	int np = 0;
	bool ok = i < b;
	while (ok && i < b) {
		if (s[i] < '0' || s[i] > '9') {
			ok = false;
			break;
		}
		long x = 0;
		while (i < b && s[i] >= '0' && s[i] <= '9') {
			if (x < 100000)
				x = x * 10 + (s[i] - '0');
			i++;
		}
		if (np < 2)
			parts[np] = x;
		np++;
		if (i < b) {
			if (s[i] != '.' || i + 1 == b) {
				ok = false;
				break;
			}
			i++;
		}
	}
	if (!ok) {
		rasa_warn_at(c, line, col, "cannot read version \"%s\": read as a version \"%s\" file "
		             "(write it like \"%s\")", s, TRAIN_RASA_FORMAT_VERSION, TRAIN_RASA_FORMAT_VERSION);
		return TRAIN_OK;
	}
	if (parts[0] > 3)
		return rasa_fail_at(c, TRAIN_EINVAL, line, col,
		                    "version \"%s\" is newer than the newest format this reader knows (\"%s\"); "
		                    "Rasa 3 would skip the whole file. Write version: \"%s\" if the file is in "
		                    "the Rasa 3 format, or use a reader for the newer format",
		                    s, TRAIN_RASA_FORMAT_VERSION, TRAIN_RASA_FORMAT_VERSION);
	if (parts[0] == 3 && parts[1] > 1) {
		rasa_warn_at(c, line, col, "version \"%s\" is newer than \"%s\": read as a version \"%s\" file",
		             s, TRAIN_RASA_FORMAT_VERSION, TRAIN_RASA_FORMAT_VERSION);
		return TRAIN_OK;
	}
	if (parts[0] < 3) {
		c->major = 2;
		rasa_warn_at(c, line, col, "version \"%s\" is older than \"%s\": read as Rasa 3 reads it, with the "
		             "Rasa 2 domain keys still accepted (update the key to \"%s\" once the file "
		             "is migrated)", s, TRAIN_RASA_FORMAT_VERSION, TRAIN_RASA_FORMAT_VERSION);
		return TRAIN_OK;
	}
	if (parts[1] < 1)
		rasa_warn_at(c, line, col, "version \"%s\" is older than \"%s\": read as a version \"%s\" file "
		             "(update the key)", s, TRAIN_RASA_FORMAT_VERSION, TRAIN_RASA_FORMAT_VERSION);
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------
 * Sorting files by their top-level keys (Rasa: RasaYAMLReader.is_yaml_nlu_file,
 * YAMLStoryReader.is_stories_file, Domain.is_domain_file).
 */

const char *const rasa_nlu_keys[] = { "nlu", "responses", NULL };
const char *const rasa_story_keys[] = { "stories", "rules", NULL };
const char *const rasa_domain_keys[] = { "intents", "entities", "slots", "responses", "actions",
	                                     "forms", "session_config", "config", "e2e_actions", NULL };
static const char *const all_top_keys[] = { "version", "nlu", "responses", "stories", "rules",
	                                        "intents", "entities", "slots", "actions", "forms",
	                                        "session_config", "config", "e2e_actions", NULL };

static int kinds_of(const train_config *root)
{
	if (!root || train_config_kind(root) != TRAIN_CFG_MAP)
		return 0;
	int k = 0;
	bool nlu = train_config_get(root, "nlu") != NULL;
	if (nlu)
		k |= TRAIN_RASA_FILE_NLU;
	if (train_config_get(root, "stories"))
		k |= TRAIN_RASA_FILE_STORIES;
	if (train_config_get(root, "rules"))
		k |= TRAIN_RASA_FILE_RULES;
	for (const char *const *d = rasa_domain_keys; *d; d++) {
		if (strcmp(*d, "responses") == 0) {
			if (!nlu && train_config_get(root, *d))
				k |= TRAIN_RASA_FILE_DOMAIN;
		} else if (train_config_get(root, *d)) {
			k |= TRAIN_RASA_FILE_DOMAIN;
		}
	}
	return k;
}

int train_rasa_classify(const char *text, size_t len, const char *name, int *kinds, train_error *err)
{
	if (!kinds || (!text && len))
		return train_error_set(err, TRAIN_EINVAL, name, 0, 0, "train_rasa_classify: NULL argument");
	train_config *root = NULL;
	int rc = train_config_parse_flags(text ? text : "", len, name, TRAIN_CFG_PARSE_RASA, &root, err);
	if (rc)
		return rc;
	*kinds = kinds_of(root);
	train_config_destroy(root);
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------
 * The pre-scan of literal blocks.
 *
 * Why: an NLU file is mostly `examples: |` blocks, and libyaml reads them
 * a character at a time; on a 24,000-example file libyaml alone takes
 * about 60% of what PyYAML's C loader (the same libyaml plus Python
 * objects) takes for the whole load, which leaves no room for the 5x of
 * issue 4's benchmark.  So the lines of such a block are found here with
 * memchr and read straight from the source, and libyaml gets a copy of
 * the file in which those lines are empty: the same lines and columns,
 * so every location stays right.
 *
 * How it stays exact: a block is taken only in the plain case (the line
 * is `<spaces>examples: |` with a `-` or `+` at most and no comment; no
 * blank line before the first content line; content indented deeper
 * than the key; every body byte one libyaml's reader accepts, with no
 * CR, NEL, LS or PS; no tab where indentation is read).  Its value
 * follows libyaml's rules for literal scalars (indentation from the
 * first line, chomping).  After parsing the copy, every block must be a
 * string node that starts exactly at its '|' and holds only line breaks:
 * then libyaml saw a literal block scalar there whose body is exactly the
 * blanked lines (had the pre-scan stopped early, the node would hold
 * text; had it stopped late, the line it stopped at would be in the
 * node, as empty lines are indented deeper than nothing).  If anything is
 * off, or the copy does not parse, the original text is parsed as usual
 * and no block is used.  Files under 4 KiB are not worth it.
 */

#ifndef RASA_PRESCAN_MIN
#define RASA_PRESCAN_MIN 4096 /* bytes; a fuzz build sets 0 to exercise it */
#endif

struct prescan {
	rasa_block *v;
	size_t n, cap;
	char *patched;       /* the copy for libyaml */
	size_t patched_len;
};

static void prescan_free(struct prescan *ps)
{
	free(ps->v);
	free(ps->patched);
	memset(ps, 0, sizeof *ps);
}

/* Bytes libyaml's reader accepts on a block line, other than line breaks:
 * TAB, 0x20-0x7E, and UTF-8 for U+00A0..U+D7FF, U+E000..U+FFFD (not LS,
 * PS), U+10000..U+10FFFF.  (NEL, U+0085, is below U+00A0.) */
bool rasa_body_bytes_ok(const unsigned char *p, size_t n)
{
	size_t i = 0;
	while (i < n) {
		if (i + 8 <= n) {
			/* 8 bytes in 0x20..0x7E: no high bit, none below 0x20, none 0x7F */
			uint64_t w;
			memcpy(&w, p + i, 8);
			const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
			uint64_t low = (w - ones * 0x20) & ~w & highs;
			uint64_t x = w ^ (ones * 0x7F);
			uint64_t del = (x - ones) & ~x & highs;
			if (!((w & highs) | low | del)) {
				i += 8;
				continue;
			}
		}
		unsigned char ch = p[i];
		if (ch < 0x80) {
			if (ch != '\t' && (ch < 0x20 || ch == 0x7f))
				return false;
			i++;
			continue;
		}
		uint32_t v;
		size_t k;
		if (ch >= 0xC2 && ch <= 0xDF) {
			v = ch & 0x1F;
			k = 1;
		} else if (ch >= 0xE0 && ch <= 0xEF) {
			v = ch & 0x0F;
			k = 2;
		} else if (ch >= 0xF0 && ch <= 0xF4) {
			v = ch & 0x07;
			k = 3;
		} else {
			return false;
		}
		for (size_t j = 1; j <= k; j++) {
			if (i + j >= n || (p[i + j] & 0xC0) != 0x80)
				return false;
			v = (v << 6) | (p[i + j] & 0x3F);
		}
		if ((k == 1 && v < 0xA0) ||
		    (k == 2 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF) || v == 0xFFFE || v == 0xFFFF ||
		                v == 0x2028 || v == 0x2029)) ||
		    (k == 3 && (v < 0x10000 || v > 0x10FFFF)))
			return false;
		i += k + 1;
	}
	return true;
}

/* "<spaces>examples: |" with an optional chomping indicator and spaces.
 * Returns the byte column (0-based) of '|', or -1; *chomp: 0 clip, '-', '+'. */
long rasa_prescan_header(const char *l, size_t n, size_t *indent, int *chomp)
{
	static const char key[] = "examples:";
	size_t i = 0;
	while (i < n && l[i] == ' ')
		i++;
	*indent = i;
	if (n - i < sizeof key - 1 || memcmp(l + i, key, sizeof key - 1) != 0)
		return -1;
	i += sizeof key - 1;
	if (i >= n || l[i] != ' ')
		return -1;
	while (i < n && l[i] == ' ')
		i++;
	if (i >= n || l[i] != '|')
		return -1;
	long bar = (long)i++;
	*chomp = 0;
	if (i < n && (l[i] == '-' || l[i] == '+'))
		*chomp = l[i++];
	while (i < n && l[i] == ' ')
		i++;
	return i == n ? bar : -1;
}

/* The body of a block whose header line ends at `b0`.  Returns 1 with its
 * end (one past the LF of its last line, blank lines included), line
 * count and indentation; 0 when there is no body to take; -1 when the
 * file is not in the plain case. */
int rasa_prescan_body(const char *text, size_t len, size_t b0, size_t key_indent, size_t *end,
                      unsigned *nlines, unsigned *indent_out)
{
	size_t q = b0, cindent = 0;
	bool any = false;
	*nlines = 0;
	*end = b0;
	while (q < len) {
		const char *nl = memchr(text + q, '\n', len - q);
		size_t e = nl ? (size_t)(nl - text) : len;
		size_t sp = 0;
		while (q + sp < e && text[q + sp] == ' ')
			sp++;
		bool blank = q + sp == e;
		if (!any) {
			if (blank)
				return -1; /* a blank line before the content */
			if (sp <= key_indent)
				return 0;  /* an empty scalar */
			cindent = sp;
			any = true;
		}
		if (!blank && sp < cindent)
			return text[q + sp] == '\t' ? -1 : 1;
		if (!(blank && sp < cindent) &&
		    !rasa_body_bytes_ok((const unsigned char *)text + q + cindent, e - q - cindent))
			return -1;
		(*nlines)++;
		*indent_out = (unsigned)cindent;
		q = nl ? e + 1 : len;
		*end = q;
	}
	return any ? 1 : 0;
}

/* Pre-scan `text`: fills `ps` (blocks, patched copy), or leaves it empty
 * when nothing is to be gained or the file is not in the plain case. */
static int prescan_run(const char *text, size_t len, struct prescan *ps)
{
	memset(ps, 0, sizeof *ps);
	if (len < RASA_PRESCAN_MIN || memchr(text, '\r', len))
		return TRAIN_OK;
	/* Room for all of it; only what is written is touched, and the
	 * copy is small: the blocks shrink to their line breaks. */
	char *out = malloc(len + 1);
	if (!out)
		return TRAIN_ENOMEM;
	size_t o = 0, pos = 0, copied = 0;
	unsigned line = 1;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		if (!nl)
			break;
		size_t eol = (size_t)(nl - text), indent;
		int chomp;
		long bar = rasa_prescan_header(text + pos, eol - pos, &indent, &chomp);
		size_t end;
		unsigned nlines = 0, cindent = 0;
		int got = bar < 0 ? 0 : rasa_prescan_body(text, len, eol + 1, indent, &end, &nlines, &cindent);
		if (got < 0)
			goto drop;
		if (got == 0) {
			pos = eol + 1;
			line++;
			continue;
		}
		if (ps->n == ps->cap) {
			size_t nc = ps->cap ? ps->cap * 2 : 64;
			rasa_block *nv = realloc(ps->v, nc * sizeof *nv);
			if (!nv) {
				free(out);
				prescan_free(ps);
				return TRAIN_ENOMEM;
			}
			ps->v = nv;
			ps->cap = nc;
		}
		ps->v[ps->n++] = (rasa_block){ line, (unsigned)bar + 1, line + 1, cindent, text + eol + 1,
			                           end - (eol + 1), chomp, NULL, 0 };
		/* the copy: everything up to the body, then one LF per body line */
		memcpy(out + o, text + copied, eol + 1 - copied);
		o += eol + 1 - copied;
		size_t lfs = nlines - (end == len && text[len - 1] != '\n');
		memset(out + o, '\n', lfs);
		o += lfs;
		copied = end;
		line += 1 + nlines;
		pos = end;
	}
	if (!ps->n)
		goto drop;
	memcpy(out + o, text + copied, len - copied);
	o += len - copied;
	out[o] = '\0';
	ps->patched = out;
	ps->patched_len = o;
	return TRAIN_OK;
drop:
	free(out);
	prescan_free(ps);
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------
 * What the fast paths (rasa_nlu.c, rasa_domain.c) share.
 */

void rasa_line_at(const char *t, size_t len, size_t p, rasa_line *l)
{
	const char *nl = memchr(t + p, '\n', len - p);
	l->p = p;
	l->e = nl ? (size_t)(nl - t) : len;
	l->next = nl ? l->e + 1 : len;
}

size_t rasa_spaces(const char *t, size_t p, size_t e)
{
	size_t i = p;
	while (i < e && t[i] == ' ')
		i++;
	return i - p;
}

size_t rasa_fast_name(const char *t, size_t p, size_t e, bool spaces)
{
	static const char *const words[] = { "null", "Null", "NULL", "true", "True", "TRUE",
		                             "false", "False", "FALSE", NULL };
	if (p >= e)
		return 0;
	unsigned char ch = (unsigned char)t[p];
	if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_'))
		return 0;
	size_t i = p, end = p;
	for (; i < e; i++) {
		ch = (unsigned char)t[i];
		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		    ch == '_' || ch == '.' || ch == '/' || ch == '-')
			end = i + 1;
		else if (ch != ' ' || (!spaces && i == end))
			break;
	}
	if (rasa_spaces(t, end, e) != e - end)
		return 0;
	size_t n = end - p;
	for (const char *const *w = words; *w; w++)
		if (strlen(*w) == n && memcmp(*w, t + p, n) == 0)
			return 0;
	return n;
}

bool rasa_fast_version(const char *t, const rasa_line *l, const char **v, size_t *vlen, unsigned *col)
{
	if (l->e - l->p <= 8 || memcmp(t + l->p, "version:", 8) != 0)
		return false;
	size_t k = l->p + 8, gap = rasa_spaces(t, k, l->e);
	k += gap;
	if (!gap || k >= l->e || (t[k] != '"' && t[k] != '\''))
		return false;
	char quote = t[k];
	size_t v0 = k + 1, i = v0;
	while (i < l->e && t[i] != quote) {
		unsigned char ch = (unsigned char)t[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-'))
			return false;
		i++;
	}
	if (i >= l->e || i + 1 + rasa_spaces(t, i + 1, l->e) != l->e)
		return false;
	*v = t + v0;
	*vlen = i - v0;
	*col = (unsigned)(k - l->p) + 1;
	return true;
}

const char *rasa_block_text(rasa_ctx *c, rasa_block *b, size_t *len)
{
	if (b->text) {
		*len = b->len;
		return b->text;
	}
	/* libyaml's value: the lines without their indentation, blank lines
	 * as empty ones, then chomping (clip: one final LF, strip: none, keep:
	 * all trailing ones) */
	char *t = rasa_alloc_raw(c->scratch, b->body_len + 2);
	if (!t) {
		c->oom = true;
		return NULL;
	}
	size_t o = 0, q = 0, kept = 0; /* kept: length up to the last content line's end */
	bool last_broken = false;
	while (q < b->body_len) {
		const char *nl = memchr(b->body + q, '\n', b->body_len - q);
		size_t e = nl ? (size_t)(nl - b->body) : b->body_len;
		if (e - q > b->indent) {
			memcpy(t + o, b->body + q + b->indent, e - q - b->indent);
			o += e - q - b->indent;
			kept = o;
			last_broken = nl != NULL;
		}
		if (nl)
			t[o++] = '\n';
		q = nl ? e + 1 : b->body_len;
	}
	if (b->chomp == '+')
		kept = o;
	else if (b->chomp == 0 && last_broken)
		kept++;
	t[kept] = '\0';
	b->text = t;
	b->len = kept;
	*len = kept;
	return t;
}

static int cmp_block_pos(unsigned l1, unsigned c1, const rasa_block *b)
{
	if (l1 != b->line)
		return l1 < b->line ? -1 : 1;
	if (c1 != b->col)
		return c1 < b->col ? -1 : 1;
	return 0;
}

rasa_block *rasa_block_of(const rasa_ctx *c, const train_config *n)
{
	if (!c->n_blocks || !n || train_config_kind(n) != TRAIN_CFG_STRING)
		return NULL;
	unsigned l = train_config_line(n), col = train_config_col(n);
	size_t lo = 0, hi = c->n_blocks;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d = cmp_block_pos(l, col, &c->blocks[mid]);
		if (d == 0)
			return &c->blocks[mid];
		if (d < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const char *rasa_text(rasa_ctx *c, const train_config *n)
{
	rasa_block *b = rasa_block_of(c, n);
	size_t len;
	return b ? rasa_block_text(c, b, &len) : train_config_as_string(n);
}

/* Mark the blocks found as nodes: a string at the '|' with only line breaks. */
static void verify_walk(const rasa_ctx *c, const train_config *n, bool *seen, int depth)
{
	train_cfg_kind k = train_config_kind(n);
	if (k == TRAIN_CFG_STRING) {
		const rasa_block *b = rasa_block_of(c, n);
		if (b) {
			const char *t = train_config_as_string(n);
			if (t && strspn(t, "\n") == strlen(t))
				seen[b - c->blocks] = true;
		}
		return;
	}
	if ((k != TRAIN_CFG_LIST && k != TRAIN_CFG_MAP) || depth > 300)
		return;
	for (size_t i = 0; i < train_config_len(n); i++)
		verify_walk(c, train_config_at(n, i), seen, depth + 1);
}

/* Parse a file's text: through the pre-scan when it applies and checks
 * out, else as it is.  `ps` keeps the blocks alive while the tree is read. */
static int parse_fast(rasa_ctx *c, const char *text, size_t len, const char *name, struct prescan *ps,
                      train_config **root, train_error *e)
{
	*root = NULL;
	c->blocks = NULL;
	c->n_blocks = 0;
	int rc = prescan_run(text, len, ps);
	if (rc)
		return train_error_set(e, rc, name, 0, 0, "out of memory");
	if (ps->n) {
		train_error e2;
		memset(&e2, 0, sizeof e2);
		if (train_config_parse_flags(ps->patched, ps->patched_len, name, TRAIN_CFG_PARSE_RASA, root,
		                             &e2) == TRAIN_OK) {
			c->blocks = ps->v;
			c->n_blocks = ps->n;
			c->block_lines = 0;
			for (size_t i = 0; i < ps->n; i++)
				for (const char *q = ps->v[i].body;
				     (q = memchr(q, '\n', ps->v[i].body_len - (size_t)(q - ps->v[i].body))); q++)
					c->block_lines++;
			bool *seen = calloc(ps->n, sizeof *seen);
			bool ok = seen != NULL;
			if (seen) {
				verify_walk(c, *root, seen, 0);
				for (size_t i = 0; i < ps->n; i++)
					ok = ok && seen[i];
			}
			free(seen);
			if (ok)
				return TRAIN_OK;
			train_config_destroy(*root);
			*root = NULL;
		}
		c->blocks = NULL;
		c->n_blocks = 0;
		prescan_free(ps);
	}
	return train_config_parse_flags(text, len, name, TRAIN_CFG_PARSE_RASA, root, e);
}

/* ------------------------------------------------------------------------
 * Loading: files and folders into the builders.
 */

typedef struct loader {
	rasa_ctx ctx;
	rasa_nlu_b *nlu;
	rasa_stories_b *stories;
	rasa_domain_b *domain;
	size_t n_files;
} loader;

/* Read one YAML text and hand its parts to the builders that `mask` asks
 * for.  `forced`: read as `mask`'s kind whatever the keys (the _parse
 * entry points). */
static int read_text(loader *L, const char *text, size_t len, const char *name, int mask, bool forced,
                     char *own, bool *adopted)
{
	rasa_ctx *c = &L->ctx;
	train_config *root = NULL;
	train_error e;
	memset(&e, 0, sizeof e);
	struct prescan ps;
	memset(&ps, 0, sizeof ps);
	rasa_ctx_set_file(c, name, text, len);
	/* A buffer of our own (a file read) may stay with the NLU result, with
	 * the plain example texts in it, instead of copies of them. */
	c->keep_src = own && L->nlu;
	c->src_open = 0;
	c->src_used = false;
	size_t first = L->nlu ? rasa_nlu_b_count(L->nlu) : 0;
	int rc;
	if (L->nlu && (mask & TRAIN_RASA_FILE_NLU) && rasa_nlu_fast) {
		bool done = false;
		rc = rasa_nlu_fast_read(L->nlu, c, &done);
		if (rc || done) {
			if (!rc) {
				L->n_files++;
				if (c->oom)
					rc = rasa_nomem(c);
			}
			goto out;
		}
	}
	if (L->domain && (mask & TRAIN_RASA_FILE_DOMAIN) && rasa_domain_fast) {
		bool done = false;
		rc = rasa_domain_fast_read(L->domain, c, &done);
		if (rc || done) {
			if (!rc) {
				L->n_files++;
				if (c->oom)
					rc = rasa_nomem(c);
			}
			goto out;
		}
	}
	rc = parse_fast(c, text, len, name, &ps, &root, &e);
	if (rc) {
		rc = rasa_fail_from(c, rc, &e);
		goto out;
	}
	if (train_config_kind(root) == TRAIN_CFG_NULL) {
		rasa_warn_at(c, 0, 0, "empty file: nothing to read");
		goto out;
	}
	if (train_config_kind(root) != TRAIN_CFG_MAP) {
		if (forced) {
			rc = rasa_fail(c, TRAIN_EPARSE, root, "the top level must be a map of keys such as "
			               "'nlu:', 'stories:' or 'intents:', not %s", rasa_kind_name(root));
			goto out;
		}
		rasa_warn(c, root, "the top level is %s, not a map of keys such as 'nlu:': the file is "
		          "skipped", rasa_kind_name(root));
		goto out;
	}
	int kinds = kinds_of(root);
	if (!forced && !(kinds & mask)) {
		if (!kinds) {
			const char *hint = "";
			for (size_t i = 0; i < train_config_len(root) && !*hint; i++)
				if (!in_list(train_config_key_at(root, i), all_top_keys))
					hint = rasa_did_you_mean(c, train_config_key_at(root, i), all_top_keys);
			rasa_warn_at(c, 1, 1, "none of the keys nlu, responses, stories, rules or the domain "
			             "keys is here: the file is skipped%s", hint);
		}
		goto out;
	}
	L->n_files++;
	/* Unknown top-level keys: Rasa's domain schema refuses them; its data
	 * readers ignore them. */
	bool strict = (kinds & TRAIN_RASA_FILE_DOMAIN) && (mask & TRAIN_RASA_FILE_DOMAIN) &&
	              !(forced && mask != TRAIN_RASA_FILE_DOMAIN);
	for (size_t i = 0; i < train_config_len(root); i++) {
		const char *k = train_config_key_at(root, i);
		if (!k || in_list(k, all_top_keys))
			continue;
		const train_config *kn = train_config_key_node_at(root, i);
		if (strict) {
			rc = rasa_fail(c, TRAIN_EINVAL, kn, "unknown top-level key '%s' in a domain file; "
			               "known keys: version, %s%s", k, rasa_join(c, rasa_domain_keys),
			               rasa_did_you_mean(c, k, all_top_keys));
			goto out;
		}
		rasa_warn(c, kn, "unknown top-level key '%s' is ignored%s", k,
		          rasa_did_you_mean(c, k, all_top_keys));
	}
	rc = rasa_check_version(c, root);
	if (rc)
		goto out;
	if (L->nlu && (mask & TRAIN_RASA_FILE_NLU) && (forced || (kinds & TRAIN_RASA_FILE_NLU))) {
		rc = rasa_nlu_b_read(L->nlu, c, root, !(kinds & TRAIN_RASA_FILE_DOMAIN));
		if (rc)
			goto out;
	}
	if (L->stories && (mask & (TRAIN_RASA_FILE_STORIES | TRAIN_RASA_FILE_RULES)) &&
	    (forced || (kinds & (TRAIN_RASA_FILE_STORIES | TRAIN_RASA_FILE_RULES)))) {
		rc = rasa_stories_b_read(L->stories, c, root);
		if (rc)
			goto out;
	}
	if (L->domain && (mask & TRAIN_RASA_FILE_DOMAIN) && (forced || (kinds & TRAIN_RASA_FILE_DOMAIN))) {
		rc = rasa_domain_b_read(L->domain, c, root);
		if (rc)
			goto out;
	}
	if (c->oom)
		rc = rasa_nomem(c);
out:
	train_config_destroy(root);
	c->blocks = NULL;
	c->n_blocks = 0;
	prescan_free(&ps);
	if (!rc && c->keep_src && rasa_nlu_b_seal(L->nlu, c, first)) {
		rasa_arena_adopt(rasa_nlu_b_arena(L->nlu), own);
		*adopted = true;
	}
	c->keep_src = false;
	return rc;
}

static bool is_yaml_name(const char *name)
{
	size_t n = strlen(name);
	return (n > 4 && strcmp(name + n - 4, ".yml") == 0) || (n > 5 && strcmp(name + n - 5, ".yaml") == 0);
}

/* train_read_file, into a buffer from rasa_buf_new. */
static int slurp_slowly(const char *path, char **text, size_t *len, train_error *e)
{
	char *t = NULL;
	size_t n = 0;
	int rc = train_read_file(path, &t, &n, e);
	if (rc)
		return rc;
	char *buf = n < SIZE_MAX ? rasa_buf_new(n + 1) : NULL;
	if (buf) {
		memcpy(buf, t, n);
		buf[n] = '\0';
	}
	free(t);
	if (!buf)
		return train_error_set(e, TRAIN_ENOMEM, path, 0, 0, "out of memory");
	*text = buf;
	*len = n;
	return TRAIN_OK;
}

/* A whole file in one read() when its size is known (train_read_file
 * grows its buffer by doubling, which shows on big NLU files); the
 * buffer is from rasa_buf_new, so an NLU result can keep it. */
static int slurp(const char *path, char **text, size_t *len, train_error *e)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0 ||
	    (uint64_t)st.st_size >= SIZE_MAX / 2) {
		if (fd >= 0)
			close(fd);
		return slurp_slowly(path, text, len, e);
	}
	size_t size = (size_t)st.st_size, got = 0;
	char *buf = rasa_buf_new(size + 1);
	if (!buf) {
		close(fd);
		return train_error_set(e, TRAIN_ENOMEM, path, 0, 0, "out of memory");
	}
	while (got < size) {
		ssize_t r = read(fd, buf + got, size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	char extra;
	bool grew = got == size && read(fd, &extra, 1) > 0;
	close(fd);
	if (got != size || grew) { /* it changed while read: the slow way */
		rasa_buf_free(buf);
		return slurp_slowly(path, text, len, e);
	}
	buf[size] = '\0';
	*text = buf;
	*len = size;
	return TRAIN_OK;
}

static int read_file(loader *L, const char *path, int mask)
{
	char *text = NULL;
	size_t len = 0;
	train_error e;
	memset(&e, 0, sizeof e);
	int rc = slurp(path, &text, &len, &e);
	if (rc) {
		rasa_ctx_set_file(&L->ctx, path, NULL, 0);
		return rasa_fail_from(&L->ctx, rc, &e);
	}
	bool adopted = false;
	rc = read_text(L, text, len, path, mask, false, text, &adopted);
	rasa_ctx_set_file(&L->ctx, NULL, NULL, 0);
	if (!adopted)
		rasa_buf_free(text);
	return rc;
}

static int load_paths(loader *L, const char *const *paths, size_t n, int mask)
{
	rasa_ctx *c = &L->ctx;
	if (n && !paths)
		return rasa_fail(c, TRAIN_EINVAL, NULL, "no paths given (NULL list)");
	for (size_t i = 0; i < n; i++) {
		const char *p = paths[i];
		if (!p)
			return rasa_fail(c, TRAIN_EINVAL, NULL, "path %zu is NULL", i);
		struct stat st;
		if (stat(p, &st) != 0) {
			int en = errno;
			rasa_ctx_set_file(c, p, NULL, 0);
			return rasa_fail(c, -en, NULL, "cannot read: %s (give an existing file or folder)",
			                 strerror(en));
		}
		if (!S_ISDIR(st.st_mode)) {
			int rc = read_file(L, p, mask);
			if (rc)
				return rc;
			continue;
		}
		char **names = NULL;
		size_t nn = 0;
		train_error e;
		memset(&e, 0, sizeof e);
		int rc = train_list_files(p, &names, &nn, &e);
		if (rc) {
			rasa_ctx_set_file(c, p, NULL, 0);
			return rasa_fail_from(c, rc, &e);
		}
		for (size_t k = 0; !rc && k < nn; k++) {
			if (!is_yaml_name(names[k]))
				continue;
			char *full = train_path_join(p, names[k]);
			if (!full) {
				rc = rasa_nomem(c);
				break;
			}
			rc = read_file(L, full, mask);
			free(full);
		}
		train_strv_free(names, nn);
		if (rc)
			return rc;
	}
	return TRAIN_OK;
}

/* Set up a loader with the builders for `mask`. */
static int loader_init(loader *L, int mask, train_rasa_diags *diags, train_error *err)
{
	memset(L, 0, sizeof *L);
	L->ctx.diags = diags;
	L->ctx.err = err;
	L->ctx.major = 3;
	L->ctx.scratch = rasa_arena_new();
	if (!L->ctx.scratch)
		return TRAIN_ENOMEM;
	if (mask & TRAIN_RASA_FILE_NLU) {
		rasa_arena *a = rasa_arena_new();
		L->nlu = a ? rasa_nlu_b_new(a) : NULL;
		if (!L->nlu) {
			rasa_arena_free(a);
			return TRAIN_ENOMEM;
		}
	}
	if (mask & (TRAIN_RASA_FILE_STORIES | TRAIN_RASA_FILE_RULES)) {
		rasa_arena *a = rasa_arena_new();
		L->stories = a ? rasa_stories_b_new(a) : NULL;
		if (!L->stories) {
			rasa_arena_free(a);
			return TRAIN_ENOMEM;
		}
	}
	if (mask & TRAIN_RASA_FILE_DOMAIN) {
		rasa_arena *a = rasa_arena_new();
		L->domain = a ? rasa_domain_b_new(a) : NULL;
		if (!L->domain) {
			rasa_arena_free(a);
			return TRAIN_ENOMEM;
		}
	}
	return TRAIN_OK;
}

static void loader_done(loader *L)
{
	rasa_nlu_b_free(L->nlu);
	rasa_stories_b_free(L->stories);
	rasa_domain_b_free(L->domain);
	rasa_ctx_clear(&L->ctx);
	rasa_arena_free(L->ctx.scratch);
	L->ctx.scratch = NULL;
	L->nlu = NULL;
	L->stories = NULL;
	L->domain = NULL;
}

#define ALL_KINDS (TRAIN_RASA_FILE_NLU | TRAIN_RASA_FILE_STORIES | TRAIN_RASA_FILE_RULES | \
                   TRAIN_RASA_FILE_DOMAIN)

/* Run a load (paths, or one text when `text` is not NULL). */
static int run_load_own(int mask, const char *const *paths, size_t n, const char *text, size_t len,
                        const char *name, char *own, loader *L, train_rasa_diags *diags,
                        train_error *err)
{
	int rc = loader_init(L, mask, diags, err);
	if (rc) {
		rasa_buf_free(own);
		loader_done(L);
		return train_error_set(err, rc, NULL, 0, 0, "out of memory");
	}
	if (text) {
		bool adopted = false;
		rc = read_text(L, text, len, name ? name : "", mask, true, own, &adopted);
		rasa_ctx_set_file(&L->ctx, NULL, NULL, 0);
		if (!adopted)
			rasa_buf_free(own);
	} else {
		rc = load_paths(L, paths, n, mask);
	}
	if (!rc && L->ctx.oom)
		rc = rasa_nomem(&L->ctx);
	return rc;
}

static int run_load(int mask, const char *const *paths, size_t n, const char *text, size_t len,
                    const char *name, loader *L, train_rasa_diags *diags, train_error *err)
{
	return run_load_own(mask, paths, n, text, len, name, NULL, L, diags, err);
}

int train_rasa_nlu_load(const char *const *paths, size_t n, train_rasa_nlu **out,
                        train_rasa_diags *diags, train_error *err)
{
	if (!out)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_rasa_nlu_load: out is NULL");
	*out = NULL;
	loader L;
	int rc = run_load(TRAIN_RASA_FILE_NLU, paths, n, NULL, 0, NULL, &L, diags, err);
	if (!rc) {
		*out = rasa_nlu_b_finish(L.nlu);
		L.nlu = NULL;
		if (!*out)
			rc = train_error_set(err, TRAIN_ENOMEM, NULL, 0, 0, "out of memory");
	}
	loader_done(&L);
	return rc;
}

int train_rasa_nlu_parse(const char *text, size_t len, const char *name, train_rasa_nlu **out,
                         train_rasa_diags *diags, train_error *err)
{
	if (!out || (!text && len))
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_rasa_nlu_parse: NULL argument");
	*out = NULL;
	loader L;
	int rc = run_load(TRAIN_RASA_FILE_NLU, NULL, 0, text ? text : "", len, name, &L, diags, err);
	if (!rc) {
		*out = rasa_nlu_b_finish(L.nlu);
		L.nlu = NULL;
		if (!*out)
			rc = train_error_set(err, TRAIN_ENOMEM, NULL, 0, 0, "out of memory");
	}
	loader_done(&L);
	return rc;
}

int rasa_nlu_parse_kept(const char *text, size_t len, const char *name, train_rasa_nlu **out,
                        train_rasa_diags *diags, train_error *err)
{
	if (!out || (!text && len) || len == SIZE_MAX)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "rasa_nlu_parse_kept: bad argument");
	*out = NULL;
	char *own = rasa_buf_new(len + 1);
	if (!own)
		return train_error_set(err, TRAIN_ENOMEM, NULL, 0, 0, "out of memory");
	if (len)
		memcpy(own, text, len);
	own[len] = '\0';
	loader L;
	int rc = run_load_own(TRAIN_RASA_FILE_NLU, NULL, 0, own, len, name, own, &L, diags, err);
	if (!rc) {
		*out = rasa_nlu_b_finish(L.nlu);
		L.nlu = NULL;
		if (!*out)
			rc = train_error_set(err, TRAIN_ENOMEM, NULL, 0, 0, "out of memory");
	}
	loader_done(&L);
	return rc;
}

int train_rasa_domain_load(const char *const *paths, size_t n, train_rasa_domain **out,
                           train_rasa_diags *diags, train_error *err)
{
	if (!out)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_rasa_domain_load: out is NULL");
	*out = NULL;
	loader L;
	int rc = run_load(TRAIN_RASA_FILE_DOMAIN, paths, n, NULL, 0, NULL, &L, diags, err);
	if (!rc) {
		*out = rasa_domain_b_finish(L.domain);
		L.domain = NULL;
		if (!*out)
			rc = train_error_set(err, TRAIN_ENOMEM, NULL, 0, 0, "out of memory");
	}
	loader_done(&L);
	return rc;
}

int train_rasa_domain_parse(const char *text, size_t len, const char *name, train_rasa_domain **out,
                            train_rasa_diags *diags, train_error *err)
{
	if (!out || (!text && len))
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_rasa_domain_parse: NULL argument");
	*out = NULL;
	loader L;
	int rc = run_load(TRAIN_RASA_FILE_DOMAIN, NULL, 0, text ? text : "", len, name, &L, diags, err);
	if (!rc) {
		*out = rasa_domain_b_finish(L.domain);
		L.domain = NULL;
		if (!*out)
			rc = train_error_set(err, TRAIN_ENOMEM, NULL, 0, 0, "out of memory");
	}
	loader_done(&L);
	return rc;
}

int train_rasa_stories_load(const char *const *paths, size_t n, train_rasa_stories **out,
                            train_rasa_diags *diags, train_error *err)
{
	if (!out)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_rasa_stories_load: out is NULL");
	*out = NULL;
	loader L;
	int rc = run_load(TRAIN_RASA_FILE_STORIES | TRAIN_RASA_FILE_RULES, paths, n, NULL, 0, NULL, &L,
	                  diags, err);
	if (!rc) {
		*out = rasa_stories_b_finish(L.stories);
		L.stories = NULL;
		if (!*out)
			rc = train_error_set(err, TRAIN_ENOMEM, NULL, 0, 0, "out of memory");
	}
	loader_done(&L);
	return rc;
}

int train_rasa_stories_parse(const char *text, size_t len, const char *name, train_rasa_stories **out,
                             train_rasa_diags *diags, train_error *err)
{
	if (!out || (!text && len))
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_rasa_stories_parse: NULL argument");
	*out = NULL;
	loader L;
	int rc = run_load(TRAIN_RASA_FILE_STORIES | TRAIN_RASA_FILE_RULES, NULL, 0, text ? text : "", len,
	                  name, &L, diags, err);
	if (!rc) {
		*out = rasa_stories_b_finish(L.stories);
		L.stories = NULL;
		if (!*out)
			rc = train_error_set(err, TRAIN_ENOMEM, NULL, 0, 0, "out of memory");
	}
	loader_done(&L);
	return rc;
}

int train_rasa_project_load(const char *const *paths, size_t n, train_rasa_project **out,
                            train_rasa_diags *diags, train_error *err)
{
	if (!out)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_rasa_project_load: out is NULL");
	*out = NULL;
	loader L;
	int rc = run_load(ALL_KINDS, paths, n, NULL, 0, NULL, &L, diags, err);
	train_rasa_project *p = NULL;
	if (!rc) {
		p = calloc(1, sizeof *p);
		if (p) {
			p->n_files = L.n_files;
			p->nlu = rasa_nlu_b_finish(L.nlu);
			L.nlu = NULL; /* finish consumes the builder */
			p->stories = rasa_stories_b_finish(L.stories);
			L.stories = NULL;
			p->domain = rasa_domain_b_finish(L.domain);
			L.domain = NULL;
		}
		if (!p || !p->nlu || !p->stories || !p->domain) {
			train_rasa_project_free(p);
			p = NULL;
			rc = train_error_set(err, TRAIN_ENOMEM, NULL, 0, 0, "out of memory");
		}
	}
	loader_done(&L);
	*out = p;
	return rc;
}

void train_rasa_project_free(train_rasa_project *p)
{
	if (!p)
		return;
	train_rasa_nlu_free(p->nlu);
	train_rasa_stories_free(p->stories);
	train_rasa_domain_free(p->domain);
	free(p);
}

/* ------------------------------------------------------------------------
 * Serialization.
 *
 * Layout: "TRR" + kind letter ('N', 'D', 'S'), u32 format version, then
 * the fields in a fixed order.  u32/u64 little-endian; a string is a u32
 * length + bytes, 0xFFFFFFFF for NULL; a double is its IEEE bits (all
 * NaNs written as one); bools and enums one byte; lists a u32 count.
 * No locations: they are not content (see <train/rasa.h>).
 */

#define SER_VERSION 1u
#define SER_NULL 0xFFFFFFFFu

/* A writer into a buffer reserved up front from a size hint (encode_value),
 * grown by doubling past it.  Untouched reserved memory costs nothing. */
typedef struct wr {
	unsigned char *p;
	size_t len, cap;
	int rc;
} wr;

static void w_grow(wr *w, size_t n)
{
	size_t nc = w->cap ? w->cap : 256;
	while (nc - w->len < n) {
		if (nc > SIZE_MAX / 2) {
			w->rc = TRAIN_ENOMEM;
			return;
		}
		nc *= 2;
	}
	unsigned char *np = realloc(w->p, nc);
	if (!np) {
		w->rc = TRAIN_ENOMEM;
		return;
	}
	w->p = np;
	w->cap = nc;
}

static inline void w_bytes(wr *w, const void *p, size_t n)
{
	if (w->rc)
		return;
	if (w->cap - w->len < n && (w_grow(w, n), w->rc))
		return;
	if (n)
		memcpy(w->p + w->len, p, n);
	w->len += n;
}
static void w_u8(wr *w, unsigned v)
{
	unsigned char b = (unsigned char)v;
	w_bytes(w, &b, 1);
}
static inline void w_u32(wr *w, uint32_t v)
{
	unsigned char b[4];
	train_put_u32(b, v);
	w_bytes(w, b, 4);
}
static void w_count(wr *w, size_t n)
{
	if (n >= SER_NULL) {
		w->rc = TRAIN_EINVAL;
		return;
	}
	w_u32(w, (uint32_t)n);
}
static void w_f64(wr *w, double d)
{
	uint64_t u;
	if (isnan(d))
		d = NAN;
	memcpy(&u, &d, 8);
	unsigned char b[8];
	train_put_u64(b, u);
	w_bytes(w, b, 8);
}
/* w_str of s (not NULL) whose strlen is n */
static inline void w_strn(wr *w, const char *s, size_t n);

/* (w_bytes(length) then w_bytes(text), in one step: most of a value) */
static inline void w_str(wr *w, const char *s)
{
	if (s)
		w_strn(w, s, strlen(s));
	else
		w_u32(w, SER_NULL);
}

static inline void w_strn(wr *w, const char *s, size_t n)
{
	if (n >= SER_NULL)
		w->rc = TRAIN_EINVAL;
	if (w->rc)
		return;
	size_t need = 4 + n;
	if (w->cap - w->len < need && (w_grow(w, need), w->rc))
		return;
	unsigned char *q = w->p + w->len;
	train_put_u32(q, (uint32_t)n);
	if (n)
		memcpy(q + 4, s, n);
	w->len += need;
}
static void w_names(wr *w, train_rasa_names ns)
{
	w_count(w, ns.n);
	for (size_t i = 0; i < ns.n; i++)
		w_str(w, ns.v[i]);
}
static void w_head(wr *w, char kind)
{
	char m[4] = { 'T', 'R', 'R', kind };
	w_bytes(w, m, 4);
	w_u32(w, SER_VERSION);
}

typedef struct rd {
	const unsigned char *p, *end;
	rasa_arena *a;
	int rc;
} rd;

static bool r_need(rd *r, size_t n)
{
	if (r->rc)
		return false;
	if ((size_t)(r->end - r->p) < n) {
		r->rc = TRAIN_ECORRUPT;
		return false;
	}
	return true;
}
static unsigned r_u8(rd *r)
{
	if (!r_need(r, 1))
		return 0;
	return *r->p++;
}
static uint32_t r_u32(rd *r)
{
	if (!r_need(r, 4))
		return 0;
	uint32_t v = train_get_u32(r->p);
	r->p += 4;
	return v;
}
/* A count of items of at least `min_size` bytes each: never more than the bytes left allow. */
static size_t r_count(rd *r, size_t min_size)
{
	uint32_t n = r_u32(r);
	if (r->rc)
		return 0;
	if (n == SER_NULL || (min_size && n > (size_t)(r->end - r->p) / min_size)) {
		r->rc = TRAIN_ECORRUPT;
		return 0;
	}
	return n;
}
static double r_f64(rd *r)
{
	if (!r_need(r, 8))
		return 0;
	uint64_t u = train_get_u64(r->p);
	r->p += 8;
	double d;
	memcpy(&d, &u, 8);
	return d;
}
static bool r_bool(rd *r)
{
	unsigned v = r_u8(r);
	if (v > 1)
		r->rc = TRAIN_ECORRUPT;
	return v == 1;
}
static const char *r_str(rd *r)
{
	uint32_t n = r_u32(r);
	if (r->rc || n == SER_NULL)
		return NULL;
	if (!r_need(r, n))
		return NULL;
	if (memchr(r->p, '\0', n)) {
		r->rc = TRAIN_ECORRUPT;
		return NULL;
	}
	char *s = rasa_strndup(r->a, (const char *)r->p, n);
	if (!s)
		r->rc = TRAIN_ENOMEM;
	r->p += n;
	return s;
}
/* A string that must be there. */
static const char *r_req(rd *r)
{
	const char *s = r_str(r);
	if (!s && !r->rc)
		r->rc = TRAIN_ECORRUPT;
	return s;
}
static void *r_array(rd *r, size_t n, size_t size)
{
	if (r->rc || !n)
		return NULL;
	void *p = rasa_alloc(r->a, n * size);
	if (!p)
		r->rc = TRAIN_ENOMEM;
	return p;
}
static train_rasa_names r_names(rd *r)
{
	train_rasa_names ns = { NULL, 0 };
	size_t n = r_count(r, 4);
	const char **v = r_array(r, n, sizeof *v);
	for (size_t i = 0; v && i < n && !r->rc; i++)
		v[i] = r_req(r);
	if (!r->rc) {
		ns.v = v;
		ns.n = n;
	}
	return ns;
}
static void r_head(rd *r, char kind)
{
	if (!r_need(r, 8))
		return;
	if (memcmp(r->p, "TRR", 3) != 0 || r->p[3] != (unsigned char)kind) {
		r->rc = TRAIN_ECORRUPT;
		return;
	}
	r->p += 4;
	if (r_u32(r) != SER_VERSION)
		r->rc = TRAIN_ECORRUPT;
}

static train_rasa_loc no_loc(void)
{
	train_rasa_loc l = { "", 0, 0 };
	return l;
}

/* ---- entities, responses (shared by NLU, domain, stories) ---- */

static void w_entities(wr *w, const train_rasa_entity *e, size_t n)
{
	w_count(w, n);
	for (size_t i = 0; i < n; i++) {
		w_str(w, e[i].entity);
		w_str(w, e[i].value);
		w_str(w, e[i].role);
		w_str(w, e[i].group);
		w_u32(w, e[i].start);
		w_u32(w, e[i].end);
		w_u32(w, e[i].byte_start);
		w_u32(w, e[i].byte_end);
	}
}

/* Entities; when `text` is given their spans must lie in it. */
static const train_rasa_entity *r_entities(rd *r, size_t *n_out, const char *text, size_t tl, size_t tc)
{
	size_t n = r_count(r, 32);
	train_rasa_entity *e = r_array(r, n, sizeof *e);
	for (size_t i = 0; e && i < n && !r->rc; i++) {
		e[i].entity = r_req(r);
		e[i].value = r_req(r);
		e[i].role = r_str(r);
		e[i].group = r_str(r);
		e[i].start = r_u32(r);
		e[i].end = r_u32(r);
		e[i].byte_start = r_u32(r);
		e[i].byte_end = r_u32(r);
		if (r->rc)
			break;
		if (text) {
			if (e[i].start > e[i].end || e[i].end > tc || e[i].byte_start > e[i].byte_end ||
			    e[i].byte_end > tl ||
			    rasa_utf8_len(text, e[i].byte_start) != e[i].start ||
			    rasa_utf8_len(text + e[i].byte_start, e[i].byte_end - e[i].byte_start) !=
			        e[i].end - e[i].start)
				r->rc = TRAIN_ECORRUPT;
		} else if (e[i].start || e[i].end || e[i].byte_start || e[i].byte_end) {
			r->rc = TRAIN_ECORRUPT;
		}
	}
	*n_out = r->rc ? 0 : n;
	return r->rc ? NULL : e;
}

static void w_responses(wr *w, const train_rasa_response *rs, size_t n)
{
	w_count(w, n);
	for (size_t i = 0; i < n; i++) {
		w_str(w, rs[i].name);
		w_count(w, rs[i].n_variations);
		for (size_t k = 0; k < rs[i].n_variations; k++) {
			const train_rasa_variation *v = &rs[i].variations[k];
			w_str(w, v->text);
			w_str(w, v->image);
			w_str(w, v->channel);
			w_str(w, v->custom);
			w_str(w, v->condition);
			w_str(w, v->extra);
			w_count(w, v->n_buttons);
			for (size_t j = 0; j < v->n_buttons; j++) {
				w_str(w, v->buttons[j].title);
				w_str(w, v->buttons[j].payload);
				w_str(w, v->buttons[j].extra);
			}
		}
	}
}

static const train_rasa_response *r_responses(rd *r, size_t *n_out)
{
	size_t n = r_count(r, 8);
	train_rasa_response *rs = r_array(r, n, sizeof *rs);
	for (size_t i = 0; rs && i < n && !r->rc; i++) {
		rs[i].name = r_req(r);
		rs[i].loc = no_loc();
		size_t nv = r_count(r, 28);
		train_rasa_variation *vs = r_array(r, nv, sizeof *vs);
		for (size_t k = 0; vs && k < nv && !r->rc; k++) {
			vs[k].text = r_str(r);
			vs[k].image = r_str(r);
			vs[k].channel = r_str(r);
			vs[k].custom = r_str(r);
			vs[k].condition = r_str(r);
			vs[k].extra = r_str(r);
			vs[k].loc = no_loc();
			size_t nb = r_count(r, 12);
			train_rasa_button *bs = r_array(r, nb, sizeof *bs);
			for (size_t j = 0; bs && j < nb && !r->rc; j++) {
				bs[j].title = r_str(r);
				bs[j].payload = r_str(r);
				bs[j].extra = r_str(r);
			}
			vs[k].buttons = bs;
			vs[k].n_buttons = nb;
		}
		rs[i].variations = vs;
		rs[i].n_variations = nv;
	}
	*n_out = r->rc ? 0 : n;
	return r->rc ? NULL : rs;
}

static void w_named_lists(wr *w, const train_rasa_named_list *l, size_t n)
{
	w_count(w, n);
	for (size_t i = 0; i < n; i++) {
		w_str(w, l[i].name);
		w_names(w, l[i].items);
	}
}

static const train_rasa_named_list *r_named_lists(rd *r, size_t *n_out)
{
	size_t n = r_count(r, 8);
	train_rasa_named_list *l = r_array(r, n, sizeof *l);
	for (size_t i = 0; l && i < n && !r->rc; i++) {
		l[i].name = r_req(r);
		l[i].items = r_names(r);
		l[i].loc = no_loc();
	}
	*n_out = r->rc ? 0 : n;
	return r->rc ? NULL : l;
}

/* Room for a value's bytes (*cap or more): malloc'd, as the value frees
 * it.  A big one is 2 MiB aligned and asks for huge pages over its whole
 * 2 MiB blocks (see rasa_huge_map; glibc's hugetlb tunable does the same
 * to its own blocks): a value is mostly fresh memory written once. */
static unsigned char *value_buffer(size_t *cap)
{
	size_t c = *cap;
	if (c >= HUGE_SZ && c < SIZE_MAX / 4) {
		size_t r = (c + HUGE_SZ - 1) & ~(HUGE_SZ - 1);
		void *p = NULL;
		if (posix_memalign(&p, HUGE_SZ, r) == 0) {
#ifdef MADV_HUGEPAGE
			madvise(p, r, MADV_HUGEPAGE);
#endif
			*cap = r;
			return p;
		}
	}
	return malloc(c);
}

/* Encode `x` with `body` into a value of `type`; `hint`: the bytes to
 * reserve (about the size, better more than less). */
static int encode_value(void (*body)(wr *, const void *), const void *x, size_t hint,
                        const char *type, train_value **out, train_error *err)
{
	wr w = { NULL, 0, 0, 0 };
	w.cap = hint < 256 ? 256 : hint;
	if (!(w.p = value_buffer(&w.cap)))
		w.rc = TRAIN_ENOMEM;
	else
		body(&w, x);
	if (w.rc) {
		free(w.p);
		return train_error_set(err, w.rc, NULL, 0, 0, "%s",
		                       w.rc == TRAIN_ENOMEM ? "out of memory" : "a field is too large to serialize");
	}
	int rc = train_value_new_take(type, w.p, w.len, out);
	if (rc)
		return train_error_set(err, rc, NULL, 0, 0, "out of memory");
	return TRAIN_OK;
}

static int decode_fail(rd *r, const char *what, train_error *err)
{
	int rc = r->rc ? r->rc : TRAIN_ECORRUPT;
	return train_error_set(err, rc, NULL, 0, 0, "%s", rc == TRAIN_ENOMEM ? "out of memory" : what);
}

/* ---- NLU ---- */

static void nlu_write(wr *w, const void *x)
{
	const train_rasa_nlu *nlu = x;
	w_head(w, 'N');
	w_count(w, nlu->n_messages);
	const char *run = NULL; /* runs of messages share their intent's string */
	size_t run_len = 0;
	for (size_t i = 0; i < nlu->n_messages; i++) {
		const train_rasa_message *m = &nlu->messages[i];
		if (m->intent && m->intent != run) {
			run = m->intent;
			run_len = strlen(run);
		}
		if (m->text && m->intent && !m->response_key && !m->metadata && !m->intent_metadata &&
		    !m->n_entities && !w->rc) {
			/* the usual message, in one step: the same bytes as below (its
			 * text_len is its text's strlen, as in every message the
			 * readers and the decoder make) */
			size_t tl = m->text_len, need = 4 + tl + 4 + run_len + 4 * 4;
			if (tl < SER_NULL && run_len < SER_NULL && w->cap - w->len >= need) {
				unsigned char *q = w->p + w->len;
				train_put_u32(q, (uint32_t)tl);
				memcpy(q + 4, m->text, tl);
				q += 4 + tl;
				train_put_u32(q, (uint32_t)run_len);
				memcpy(q + 4, run, run_len);
				q += 4 + run_len;
				train_put_u32(q, SER_NULL);      /* response_key */
				train_put_u32(q + 4, SER_NULL);  /* metadata */
				train_put_u32(q + 8, SER_NULL);  /* intent_metadata */
				train_put_u32(q + 12, 0);        /* no entities */
				w->len += need;
				continue;
			}
		}
		w_str(w, m->text);
		if (m->intent)
			w_strn(w, run, run_len);
		else
			w_str(w, NULL);
		w_str(w, m->response_key);
		w_str(w, m->metadata);
		w_str(w, m->intent_metadata);
		w_entities(w, m->entities, m->n_entities);
	}
	w_count(w, nlu->n_synonyms);
	for (size_t i = 0; i < nlu->n_synonyms; i++) {
		w_str(w, nlu->synonyms[i].value);
		w_names(w, nlu->synonyms[i].names);
	}
	w_named_lists(w, nlu->regexes, nlu->n_regexes);
	w_named_lists(w, nlu->lookups, nlu->n_lookups);
	w_responses(w, nlu->responses, nlu->n_responses);
}

int train_rasa_nlu_to_value(const train_rasa_nlu *nlu, train_value **out, train_error *err)
{
	if (!nlu || !out)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_rasa_nlu_to_value: NULL argument");
	/* texts and names: about 128 bytes a message, which is generous; more
	 * grows the buffer */
	size_t hint = nlu->n_messages < SIZE_MAX / 256 ? 4096 + nlu->n_messages * 128 : 4096;
	return encode_value(nlu_write, nlu, hint, TRAIN_RASA_NLU_TYPE, out, err);
}

static int nlu_decode(const void *data, size_t size, train_rasa_nlu **out, train_error *err)
{
	*out = NULL;
	rasa_arena *a = rasa_arena_new();
	train_rasa_nlu *nlu = a ? rasa_alloc(a, sizeof *nlu) : NULL;
	if (!nlu) {
		rasa_arena_free(a);
		return train_error_set(err, TRAIN_ENOMEM, NULL, 0, 0, "out of memory");
	}
	nlu->arena_ = a;
	rd r = { data, (const unsigned char *)data + size, a, 0 };
	r_head(&r, 'N');
	size_t n = r_count(&r, 24);
	train_rasa_message *ms = r_array(&r, n, sizeof *ms);
	for (size_t i = 0; ms && i < n && !r.rc; i++) {
		ms[i].text = r_req(&r);
		ms[i].intent = r_req(&r);
		ms[i].response_key = r_str(&r);
		ms[i].metadata = r_str(&r);
		ms[i].intent_metadata = r_str(&r);
		ms[i].loc = no_loc();
		if (r.rc)
			break;
		size_t tl = strlen(ms[i].text);
		if (tl > UINT32_MAX) {
			r.rc = TRAIN_ECORRUPT;
			break;
		}
		ms[i].text_len = (uint32_t)tl;
		ms[i].text_chars = (uint32_t)rasa_utf8_len(ms[i].text, tl);
		ms[i].entities = r_entities(&r, &ms[i].n_entities, ms[i].text, tl, ms[i].text_chars);
	}
	nlu->messages = ms;
	nlu->n_messages = r.rc ? 0 : n;
	size_t ns = r_count(&r, 8);
	train_rasa_synonym *ss = r_array(&r, ns, sizeof *ss);
	for (size_t i = 0; ss && i < ns && !r.rc; i++) {
		ss[i].value = r_req(&r);
		ss[i].names = r_names(&r);
		ss[i].loc = no_loc();
	}
	nlu->synonyms = ss;
	nlu->n_synonyms = ns;
	nlu->regexes = r_named_lists(&r, &nlu->n_regexes);
	nlu->lookups = r_named_lists(&r, &nlu->n_lookups);
	nlu->responses = r_responses(&r, &nlu->n_responses);
	if (!r.rc && r.p != r.end)
		r.rc = TRAIN_ECORRUPT;
	if (r.rc) {
		rasa_arena_free(a);
		return decode_fail(&r, "not a valid serialized NLU training data value", err);
	}
	*out = nlu;
	return TRAIN_OK;
}

/* ---- domain ---- */

static void domain_write(wr *w, const void *x)
{
	const train_rasa_domain *d = x;
	w_head(w, 'D');
	w_str(w, d->version);
	w_count(w, d->n_intents);
	for (size_t i = 0; i < d->n_intents; i++) {
		w_str(w, d->intents[i].name);
		w_u8(w, (unsigned)d->intents[i].use);
		w_names(w, d->intents[i].entities);
	}
	w_count(w, d->n_entities);
	for (size_t i = 0; i < d->n_entities; i++) {
		w_str(w, d->entities[i].name);
		w_names(w, d->entities[i].roles);
		w_names(w, d->entities[i].groups);
		w_u8(w, d->entities[i].influence_conversation);
	}
	w_count(w, d->n_slots);
	for (size_t i = 0; i < d->n_slots; i++) {
		const train_rasa_slot *s = &d->slots[i];
		w_str(w, s->name);
		w_u8(w, (unsigned)s->type);
		w_str(w, s->type_name);
		w_names(w, s->values);
		w_f64(w, s->min_value);
		w_f64(w, s->max_value);
		w_u8(w, s->influence_conversation);
		w_str(w, s->initial_value);
		w_str(w, s->mappings);
	}
	w_responses(w, d->responses, d->n_responses);
	w_count(w, d->n_actions);
	for (size_t i = 0; i < d->n_actions; i++) {
		w_str(w, d->actions[i].name);
		w_u8(w, d->actions[i].send_domain);
	}
	w_count(w, d->n_forms);
	for (size_t i = 0; i < d->n_forms; i++) {
		w_str(w, d->forms[i].name);
		w_names(w, d->forms[i].required_slots);
		w_names(w, d->forms[i].ignored_intents);
		w_str(w, d->forms[i].mappings);
	}
	w_names(w, d->e2e_actions);
	w_f64(w, d->session_expiration_time);
	w_u8(w, d->carry_over_slots_to_new_session);
	w_u8(w, d->store_entities_as_slots);
}

int train_rasa_domain_to_value(const train_rasa_domain *d, train_value **out, train_error *err)
{
	if (!d || !out)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_rasa_domain_to_value: NULL argument");
	return encode_value(domain_write, d, 4096, TRAIN_RASA_DOMAIN_TYPE, out, err);
}

static int domain_decode(const void *data, size_t size, train_rasa_domain **out, train_error *err)
{
	*out = NULL;
	rasa_arena *a = rasa_arena_new();
	train_rasa_domain *d = a ? rasa_alloc(a, sizeof *d) : NULL;
	if (!d) {
		rasa_arena_free(a);
		return train_error_set(err, TRAIN_ENOMEM, NULL, 0, 0, "out of memory");
	}
	d->arena_ = a;
	rd r = { data, (const unsigned char *)data + size, a, 0 };
	r_head(&r, 'D');
	d->version = r_str(&r);
	size_t n = r_count(&r, 9);
	train_rasa_intent *in = r_array(&r, n, sizeof *in);
	for (size_t i = 0; in && i < n && !r.rc; i++) {
		in[i].name = r_req(&r);
		unsigned u = r_u8(&r);
		if (u > TRAIN_RASA_USE_IGNORING)
			r.rc = TRAIN_ECORRUPT;
		in[i].use = (train_rasa_use_entities)u;
		in[i].entities = r_names(&r);
		in[i].loc = no_loc();
	}
	d->intents = in;
	d->n_intents = r.rc ? 0 : n;
	n = r_count(&r, 13);
	train_rasa_entity_decl *en = r_array(&r, n, sizeof *en);
	for (size_t i = 0; en && i < n && !r.rc; i++) {
		en[i].name = r_req(&r);
		en[i].roles = r_names(&r);
		en[i].groups = r_names(&r);
		en[i].influence_conversation = r_bool(&r);
		en[i].loc = no_loc();
	}
	d->entities = en;
	d->n_entities = r.rc ? 0 : n;
	n = r_count(&r, 34);
	train_rasa_slot *sl = r_array(&r, n, sizeof *sl);
	for (size_t i = 0; sl && i < n && !r.rc; i++) {
		sl[i].name = r_req(&r);
		unsigned t = r_u8(&r);
		if (t < TRAIN_RASA_SLOT_TEXT || t > TRAIN_RASA_SLOT_ANY)
			r.rc = TRAIN_ECORRUPT;
		sl[i].type = (train_rasa_slot_type)t;
		sl[i].type_name = r_req(&r);
		sl[i].values = r_names(&r);
		sl[i].min_value = r_f64(&r);
		sl[i].max_value = r_f64(&r);
		sl[i].influence_conversation = r_bool(&r);
		sl[i].initial_value = r_str(&r);
		sl[i].mappings = r_str(&r);
		sl[i].loc = no_loc();
	}
	d->slots = sl;
	d->n_slots = r.rc ? 0 : n;
	d->responses = r_responses(&r, &d->n_responses);
	n = r_count(&r, 5);
	train_rasa_action *ac = r_array(&r, n, sizeof *ac);
	for (size_t i = 0; ac && i < n && !r.rc; i++) {
		ac[i].name = r_req(&r);
		ac[i].send_domain = r_bool(&r);
		ac[i].loc = no_loc();
	}
	d->actions = ac;
	d->n_actions = r.rc ? 0 : n;
	n = r_count(&r, 16);
	train_rasa_form *fo = r_array(&r, n, sizeof *fo);
	for (size_t i = 0; fo && i < n && !r.rc; i++) {
		fo[i].name = r_req(&r);
		fo[i].required_slots = r_names(&r);
		fo[i].ignored_intents = r_names(&r);
		fo[i].mappings = r_str(&r);
		fo[i].loc = no_loc();
	}
	d->forms = fo;
	d->n_forms = r.rc ? 0 : n;
	d->e2e_actions = r_names(&r);
	d->session_expiration_time = r_f64(&r);
	d->carry_over_slots_to_new_session = r_bool(&r);
	d->store_entities_as_slots = r_bool(&r);
	if (!r.rc && r.p != r.end)
		r.rc = TRAIN_ECORRUPT;
	if (r.rc) {
		rasa_arena_free(a);
		return decode_fail(&r, "not a valid serialized domain value", err);
	}
	*out = d;
	return TRAIN_OK;
}

/* ---- stories ---- */

static void w_events(wr *w, const train_rasa_event *ev, size_t n)
{
	w_count(w, n);
	for (size_t i = 0; i < n; i++) {
		w_u8(w, (unsigned)ev[i].kind);
		w_str(w, ev[i].name);
		w_str(w, ev[i].response_key);
		w_str(w, ev[i].text);
		w_str(w, ev[i].value);
		w_entities(w, ev[i].entities, ev[i].n_entities);
		w_events(w, ev[i].sub, ev[i].n_sub);
	}
}

/* Events at nesting `depth` (0: steps; 1: the alternatives of an `or` or
 * the slots of a checkpoint, which hold nothing nested). */
static const train_rasa_event *r_events(rd *r, size_t *n_out, int depth)
{
	size_t n = r_count(r, 25);
	train_rasa_event *ev = r_array(r, n, sizeof *ev);
	for (size_t i = 0; ev && i < n && !r->rc; i++) {
		unsigned k = r_u8(r);
		if (k < TRAIN_RASA_EV_USER || k > TRAIN_RASA_EV_OR ||
		    (depth > 0 && k != TRAIN_RASA_EV_USER && k != TRAIN_RASA_EV_SLOT)) {
			r->rc = TRAIN_ECORRUPT;
			break;
		}
		ev[i].kind = (train_rasa_event_kind)k;
		ev[i].name = r_str(r);
		ev[i].response_key = r_str(r);
		ev[i].text = r_str(r);
		ev[i].value = r_str(r);
		ev[i].loc = no_loc();
		if (r->rc)
			break;
		const char *t = ev[i].text;
		size_t tl = t ? strlen(t) : 0;
		ev[i].entities = r_entities(r, &ev[i].n_entities, t, tl, t ? rasa_utf8_len(t, tl) : 0);
		if (depth == 0)
			ev[i].sub = r_events(r, &ev[i].n_sub, 1);
		else if (r_count(r, 0) != 0)
			r->rc = TRAIN_ECORRUPT;
		if (r->rc)
			break;
		bool named = ev[i].name != NULL;
		switch (ev[i].kind) {
		case TRAIN_RASA_EV_USER:
			if (!named && !ev[i].text)
				r->rc = TRAIN_ECORRUPT;
			break;
		case TRAIN_RASA_EV_ACTION:
		case TRAIN_RASA_EV_SLOT:
		case TRAIN_RASA_EV_CHECKPOINT:
			if (!named)
				r->rc = TRAIN_ECORRUPT;
			break;
		case TRAIN_RASA_EV_BOT:
			if (!ev[i].text)
				r->rc = TRAIN_ECORRUPT;
			break;
		default:
			break;
		}
		if (ev[i].kind == TRAIN_RASA_EV_CHECKPOINT)
			for (size_t j = 0; j < ev[i].n_sub; j++)
				if (ev[i].sub[j].kind != TRAIN_RASA_EV_SLOT)
					r->rc = TRAIN_ECORRUPT;
		if (ev[i].kind != TRAIN_RASA_EV_CHECKPOINT && ev[i].kind != TRAIN_RASA_EV_OR && ev[i].n_sub)
			r->rc = TRAIN_ECORRUPT;
	}
	*n_out = r->rc ? 0 : n;
	return r->rc ? NULL : ev;
}

static void stories_write(wr *w, const void *x)
{
	const train_rasa_stories *s = x;
	w_head(w, 'S');
	w_count(w, s->n_items);
	for (size_t i = 0; i < s->n_items; i++) {
		const train_rasa_story *st = &s->items[i];
		w_str(w, st->name);
		w_u8(w, (unsigned)st->kind);
		w_u8(w, st->conversation_start);
		w_u8(w, st->wait_for_user_input);
		w_str(w, st->metadata);
		w_events(w, st->condition, st->n_condition);
		w_events(w, st->events, st->n_events);
	}
}

int train_rasa_stories_to_value(const train_rasa_stories *s, train_value **out, train_error *err)
{
	if (!s || !out)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_rasa_stories_to_value: NULL argument");
	return encode_value(stories_write, s, 4096, TRAIN_RASA_STORIES_TYPE, out, err);
}

static int stories_decode(const void *data, size_t size, train_rasa_stories **out, train_error *err)
{
	*out = NULL;
	rasa_arena *a = rasa_arena_new();
	train_rasa_stories *s = a ? rasa_alloc(a, sizeof *s) : NULL;
	if (!s) {
		rasa_arena_free(a);
		return train_error_set(err, TRAIN_ENOMEM, NULL, 0, 0, "out of memory");
	}
	s->arena_ = a;
	rd r = { data, (const unsigned char *)data + size, a, 0 };
	r_head(&r, 'S');
	size_t n = r_count(&r, 19);
	train_rasa_story *st = r_array(&r, n, sizeof *st);
	for (size_t i = 0; st && i < n && !r.rc; i++) {
		st[i].name = r_req(&r);
		unsigned k = r_u8(&r);
		if (k != TRAIN_RASA_STORY && k != TRAIN_RASA_RULE)
			r.rc = TRAIN_ECORRUPT;
		st[i].kind = (train_rasa_story_kind)k;
		st[i].conversation_start = r_bool(&r);
		st[i].wait_for_user_input = r_bool(&r);
		st[i].metadata = r_str(&r);
		st[i].condition = r_events(&r, &st[i].n_condition, 0);
		st[i].events = r_events(&r, &st[i].n_events, 0);
		st[i].loc = no_loc();
		if (r.rc)
			break;
		if (k == TRAIN_RASA_RULE)
			s->n_rules++;
		else
			s->n_stories++;
	}
	s->items = st;
	s->n_items = r.rc ? 0 : n;
	if (!r.rc && r.p != r.end)
		r.rc = TRAIN_ECORRUPT;
	if (r.rc) {
		rasa_arena_free(a);
		return decode_fail(&r, "not a valid serialized stories value", err);
	}
	*out = s;
	return TRAIN_OK;
}

/* ---- by content type ---- */

int train_rasa_decode(const char *type, const void *data, size_t size, void **out, train_error *err)
{
	if (!type || !out || (!data && size))
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_rasa_decode: NULL argument");
	*out = NULL;
	static const unsigned char empty[1];
	if (!data)
		data = empty;
	int rc;
	if (strcmp(type, TRAIN_RASA_NLU_TYPE) == 0) {
		train_rasa_nlu *x = NULL;
		rc = nlu_decode(data, size, &x, err);
		*out = x;
	} else if (strcmp(type, TRAIN_RASA_DOMAIN_TYPE) == 0) {
		train_rasa_domain *x = NULL;
		rc = domain_decode(data, size, &x, err);
		*out = x;
	} else if (strcmp(type, TRAIN_RASA_STORIES_TYPE) == 0) {
		train_rasa_stories *x = NULL;
		rc = stories_decode(data, size, &x, err);
		*out = x;
	} else {
		rc = train_error_set(err, TRAIN_ECORRUPT, NULL, 0, 0,
		                     "content type '%s' is not a Rasa value", type);
	}
	return rc;
}

static int from_value(const train_value *v, const char *type, void **out, train_error *err)
{
	if (!v || !out)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "from_value: NULL argument");
	*out = NULL;
	if (strcmp(train_value_type(v), type) != 0)
		return train_error_set(err, TRAIN_ECORRUPT, NULL, 0, 0, "value of type '%s' where '%s' was expected",
		                       train_value_type(v), type);
	return train_rasa_decode(type, train_value_data(v), train_value_size(v), out, err);
}

int train_rasa_nlu_from_value(const train_value *v, train_rasa_nlu **out, train_error *err)
{
	void *p = NULL;
	int rc = from_value(v, TRAIN_RASA_NLU_TYPE, &p, err);
	if (out)
		*out = p;
	return rc;
}

int train_rasa_domain_from_value(const train_value *v, train_rasa_domain **out, train_error *err)
{
	void *p = NULL;
	int rc = from_value(v, TRAIN_RASA_DOMAIN_TYPE, &p, err);
	if (out)
		*out = p;
	return rc;
}

int train_rasa_stories_from_value(const train_value *v, train_rasa_stories **out, train_error *err)
{
	void *p = NULL;
	int rc = from_value(v, TRAIN_RASA_STORIES_TYPE, &p, err);
	if (out)
		*out = p;
	return rc;
}
