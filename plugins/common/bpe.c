/*
 * plugins/common/bpe.c - byte-level BPE: GPT-2's pieces, merges applied
 * by rank, merges learnt from a text, vocab.json and merges.txt (see
 * bpe.h).
 *
 * Facts from GPT-2's encoder.py (the byte-to-unicode map, the pattern,
 * merges by rank) and from the usual BPE trainers (word types counted
 * once, pair counts updated from the words that hold the merged pair, a
 * priority queue); the code is ours.  The pattern's letter and number
 * classes are bpe_unicode.h, its \s the `regex` module's White_Space
 * (plugins/common/text.h).
 */
#include "bpe.h"

#include "hf.h"
#include "text.h"
#include "bpe_unicode.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a map of symbol pairs -------------------------------------------------------- */

/* (a, b) -> value, open addressing; key a << 32 | b, used[] marks slots. */
typedef struct bpe_pairs {
	uint64_t *key;
	int64_t *val;
	uint8_t *used;
	size_t cap, len;
} bpe_pairs;

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t pair_key(int32_t a, int32_t b)
{
	return (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
}

static void pairs_free(bpe_pairs *p)
{
	if (!p)
		return;
	free(p->key);
	free(p->val);
	free(p->used);
	memset(p, 0, sizeof *p);
}

static size_t pairs_slot(const bpe_pairs *p, uint64_t k)
{
	size_t mask = p->cap - 1;
	size_t i = (size_t)mix64(k) & mask;
	while (p->used[i] && p->key[i] != k)
		i = (i + 1) & mask;
	return i;
}

/* The value of (a, b), or -1. */
static int64_t pairs_get(const bpe_pairs *p, int32_t a, int32_t b)
{
	if (!p || !p->cap)
		return -1;
	size_t i = pairs_slot(p, pair_key(a, b));
	return p->used[i] ? p->val[i] : -1;
}

static int pairs_grow(bpe_pairs *p)
{
	bpe_pairs n = { 0 };
	n.cap = p->cap ? 2 * p->cap : 1024;
	n.key = malloc(n.cap * sizeof *n.key);
	n.val = malloc(n.cap * sizeof *n.val);
	n.used = calloc(n.cap, 1);
	if (!n.key || !n.val || !n.used) {
		pairs_free(&n);
		return TRAIN_ENOMEM;
	}
	for (size_t i = 0; i < p->cap; i++)
		if (p->used[i]) {
			size_t j = pairs_slot(&n, p->key[i]);
			n.used[j] = 1;
			n.key[j] = p->key[i];
			n.val[j] = p->val[i];
		}
	n.len = p->len;
	pairs_free(p);
	*p = n;
	return TRAIN_OK;
}

/* The slot's value for (a, b), added as `val` when new (*added = 1);
 * NULL when out of memory. */
static int64_t *pairs_put(bpe_pairs *p, int32_t a, int32_t b, int64_t val, int *added)
{
	*added = 0;
	if ((p->len + 1) * 2 > p->cap && pairs_grow(p))
		return NULL;
	uint64_t k = pair_key(a, b);
	size_t i = pairs_slot(p, k);
	if (!p->used[i]) {
		p->used[i] = 1;
		p->key[i] = k;
		p->val[i] = val;
		p->len++;
		*added = 1;
	}
	return &p->val[i];
}

/* ---- GPT-2's byte map and pieces ------------------------------------------------------ */

void bpe_byte_map(bpe_tok *b)
{
	int extra = 0;
	for (int i = 0; i < 512; i++)
		b->char_byte[i] = -1;
	for (int c = 0; c < 256; c++) {
		int keep = (c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF);
		b->byte_char[c] = (uint16_t)(keep ? c : 256 + extra++);
		b->char_byte[b->byte_char[c]] = (int16_t)c;
	}
}

static int in_ranges(const uint32_t (*r)[2], size_t n, uint32_t c)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c < r[mid][0])
			hi = mid;
		else if (c > r[mid][1])
			lo = mid + 1;
		else
			return 1;
	}
	return 0;
}

static int is_letter(uint32_t c)
{
	if (c < 128)
		return (c | 32) >= 'a' && (c | 32) <= 'z';
	return in_ranges(gpt2_uni_letter, sizeof gpt2_uni_letter / sizeof gpt2_uni_letter[0], c);
}

static int is_number(uint32_t c)
{
	if (c < 128)
		return c >= '0' && c <= '9';
	return in_ranges(gpt2_uni_number, sizeof gpt2_uni_number / sizeof gpt2_uni_number[0], c);
}

static int is_space(uint32_t c)
{
	return text_is_regex_space(c);
}

static const char *const contractions[] = { "'s", "'t", "'re", "'ve", "'m", "'ll", "'d" };

size_t bpe_next_piece(const uint32_t *cp, size_t n, size_t i)
{
	for (size_t k = 0; k < sizeof contractions / sizeof contractions[0]; k++) {
		const char *c = contractions[k];
		size_t l = strlen(c), j = 0;
		while (j < l && i + j < n && cp[i + j] == (unsigned char)c[j])
			j++;
		if (j == l)
			return l;
	}
	size_t s = cp[i] == ' ' && i + 1 < n ? 1 : 0, j;
	if (is_letter(cp[i + s])) {
		for (j = i + s; j < n && is_letter(cp[j]); j++)
			;
		return j - i;
	}
	if (is_number(cp[i + s])) {
		for (j = i + s; j < n && is_number(cp[j]); j++)
			;
		return j - i;
	}
#define OTHER(c) (!is_space(c) && !is_letter(c) && !is_number(c))
	if (OTHER(cp[i + s])) {
		for (j = i + s; j < n && OTHER(cp[j]); j++)
			;
		return j - i;
	}
#undef OTHER
	/* white space: \s+(?!\S), else \s+ */
	for (j = i; j < n && is_space(cp[j]); j++)
		;
	size_t k = j - i;
	if (j == n || k == 1)
		return k;
	return k - 1;
}

/* ---- the vocabulary and the merges --------------------------------------------------- */

void bpe_free(bpe_tok *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->n; i++)
		free(b->tok[i]);
	free(b->tok);
	for (size_t i = 0; i < b->n_merges; i++)
		free(b->merges[i]);
	free(b->merges);
	strmap_free(&b->vocab);
	free(b->vocab_raw);
	free(b->merges_raw);
	strmap_free(&b->sym);
	for (size_t i = 0; i < b->n_sym; i++)
		free(b->sym_str[i]);
	free(b->sym_str);
	free(b->mrg);
	pairs_free(b->pairs);
	free(b->pairs);
	memset(b, 0, sizeof *b);
	b->eot = -1;
}

/* The symbol of s[0..len), added when new; -1 when out of memory. */
static int32_t intern(bpe_tok *b, const char *s, size_t len, size_t *cap)
{
	int added;
	strmap_entry *e = strmap_put(&b->sym, s, len, b->n_sym, &added);
	if (!e)
		return -1;
	if (!added)
		return (int32_t)e->value;
	if (b->n_sym == *cap) {
		size_t nc = *cap ? 2 * *cap : 1024;
		char **ns = realloc(b->sym_str, nc * sizeof *ns);
		if (!ns)
			return -1;
		b->sym_str = ns;
		*cap = nc;
	}
	if (!(b->sym_str[b->n_sym] = strndup(s, len)))
		return -1;
	return (int32_t)b->n_sym++;
}

/* Every code point of s[0..len) stands for a byte. */
static int byte_level(const bpe_tok *b, const char *s, size_t len)
{
	for (size_t q = 0; q < len;) {
		uint32_t c = text_next(s, len, &q);
		if (c >= 512 || b->char_byte[c] < 0)
			return 0;
	}
	return 1;
}

int bpe_load_mem(const char *vtext, size_t vlen, const char *vname, const char *text, size_t len,
                 const char *mname, int eot_required, int strict, bpe_tok *b, train_error *err)
{
	json_t *j = NULL;
	char *cat = NULL;
	size_t sym_cap = 0, mcap = 0, cat_cap = 0;
	unsigned line = 0;
	int rc;
	memset(b, 0, sizeof *b);
	bpe_byte_map(b);
	b->eot = -1;
	json_error_t je;
	if (!(j = json_loadb(vtext, vlen, JSON_REJECT_DUPLICATES, &je)) || !json_is_object(j)) {
		rc = train_error_set(err, TRAIN_EPARSE, vname, j ? 0 : (unsigned)je.line,
		                     j ? 0 : (unsigned)je.column, "%s",
		                     j ? "not a JSON object of token: id" : je.text);
		goto out;
	}
	size_t n = 0;
	const char *key;
	json_t *v;
	json_object_foreach(j, key, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) >= (1 << 24)) {
			rc = train_error_set(err, TRAIN_ECORRUPT, vname, 0, 0,
			                     "token \"%.40s\": the id must be an integer in [0, 2^24)", key);
			goto out;
		}
		if ((size_t)json_integer_value(v) + 1 > n)
			n = (size_t)json_integer_value(v) + 1;
	}
	if (!n) {
		rc = train_error_set(err, TRAIN_ECORRUPT, vname, 0, 0, "the vocabulary is empty");
		goto out;
	}
	if (!(b->tok = calloc(n, sizeof *b->tok)) || !(b->sym_str = calloc(n, sizeof *b->sym_str))) {
		rc = train_error_set(err, TRAIN_ENOMEM, vname, 0, 0, "out of memory");
		goto out;
	}
	b->n = n;
	b->n_sym = sym_cap = n;
	json_object_foreach(j, key, v) {
		size_t id = (size_t)json_integer_value(v), kl = strlen(key);
		int added;
		if (b->tok[id]) {
			rc = train_error_set(err, TRAIN_ECORRUPT, vname, 0, 0,
			                     "id %zu is given to \"%.40s\" and \"%.40s\"", id, b->tok[id], key);
			goto out;
		}
		if (!(b->tok[id] = strdup(key)) || !(b->sym_str[id] = strdup(key)) ||
		    !strmap_put(&b->vocab, key, kl, id, &added) || !strmap_put(&b->sym, key, kl, id, &added)) {
			rc = train_error_set(err, TRAIN_ENOMEM, vname, 0, 0, "out of memory");
			goto out;
		}
		if (!strcmp(key, BPE_EOT_TEXT))
			b->eot = (int32_t)id;
	}
	if (eot_required && b->eot < 0) {
		rc = train_error_set(err, TRAIN_ECORRUPT, vname, 0, 0, "no " BPE_EOT_TEXT " token");
		goto out;
	}
	/* every byte must have its token, or some texts cannot be encoded */
	for (int c = 0; c < 256; c++) {
		char s[4];
		size_t k = text_put(s, b->byte_char[c]);
		strmap_entry *e = strmap_get(&b->vocab, s, k);
		if (!e || (strict && e->value != (size_t)c)) {
			rc = train_error_set(err, TRAIN_ECORRUPT, vname, 0, 0,
			                     e ? "the token of byte 0x%02X (\"%.*s\") is not id %d"
			                       : "no token for byte 0x%02X (\"%.*s\"): not a byte-level BPE vocabulary",
			                     c, (int)k, s, c);
			goto out;
		}
		b->byte_sym[c] = (int32_t)e->value;
	}
	if (!(b->pairs = calloc(1, sizeof *b->pairs))) {
		rc = train_error_set(err, TRAIN_ENOMEM, vname, 0, 0, "out of memory");
		goto out;
	}
	/* merges.txt: an optional "#version" line, then "a b" per line */
	for (size_t i = 0; i < len;) {
		size_t e = i;
		while (e < len && text[e] != '\n')
			e++;
		size_t next = e + 1, end = e;
		if (end > i && text[end - 1] == '\r')
			end--;
		line++;
		if ((line == 1 && end - i >= 8 && !memcmp(text + i, "#version", 8)) || end == i) {
			i = next;
			continue;
		}
		const char *sp = memchr(text + i, ' ', end - i);
		if (!sp || sp == text + i || sp + 1 == text + end || memchr(sp + 1, ' ', (size_t)(text + end - sp - 1)) ||
		    memchr(text + i, '\0', end - i)) {
			rc = train_error_set(err, TRAIN_ECORRUPT, mname, line, 0,
			                     "not a merge (two tokens separated by one space)");
			goto out;
		}
		size_t al = (size_t)(sp - (text + i)), bl = (size_t)(text + end - sp - 1);
		if (!byte_level(b, text + i, al) || !byte_level(b, sp + 1, bl)) {
			rc = train_error_set(err, TRAIN_ECORRUPT, mname, line, 0,
			                     "not byte-level characters (GPT-2's bytes_to_unicode)");
			goto out;
		}
		if (al + bl + 1 > cat_cap) {
			cat_cap = 2 * (al + bl + 1);
			char *nc = realloc(cat, cat_cap);
			if (!nc) {
				rc = train_error_set(err, TRAIN_ENOMEM, mname, line, 0, "out of memory");
				goto out;
			}
			cat = nc;
		}
		memcpy(cat, text + i, al);
		memcpy(cat + al, sp + 1, bl);
		int32_t sa = intern(b, text + i, al, &sym_cap), sb = intern(b, sp + 1, bl, &sym_cap);
		int32_t sr = sa < 0 || sb < 0 ? -1 : intern(b, cat, al + bl, &sym_cap);
		int added = 0;
		int64_t *slot = sr < 0 ? NULL : pairs_put(b->pairs, sa, sb, (int64_t)b->n_merges, &added);
		if (!slot) {
			rc = train_error_set(err, TRAIN_ENOMEM, mname, line, 0, "out of memory");
			goto out;
		}
		if (!added) {
			rc = train_error_set(err, TRAIN_ECORRUPT, mname, line, 0, "the merge \"%.*s\" appears twice",
			                     (int)(end - i > 64 ? 64 : end - i), text + i);
			goto out;
		}
		if (strict && ((size_t)sa >= b->n || (size_t)sb >= b->n || (size_t)sr >= b->n)) {
			rc = train_error_set(err, TRAIN_ECORRUPT, mname, line, 0,
			                     "the merge \"%.*s\" takes or makes a token that %s lacks",
			                     (int)(end - i > 64 ? 64 : end - i), text + i, vname);
			goto out;
		}
		if (b->n_merges == mcap) {
			mcap = mcap ? 2 * mcap : 1024;
			char **m = realloc(b->merges, mcap * sizeof *m);
			bpe_merge *mg = realloc(b->mrg, mcap * sizeof *mg);
			if (m)
				b->merges = m;
			if (mg)
				b->mrg = mg;
			if (!m || !mg) {
				rc = train_error_set(err, TRAIN_ENOMEM, mname, line, 0, "out of memory");
				goto out;
			}
		}
		if (!(b->merges[b->n_merges] = strndup(text + i, end - i))) {
			rc = train_error_set(err, TRAIN_ENOMEM, mname, line, 0, "out of memory");
			goto out;
		}
		b->mrg[b->n_merges++] = (bpe_merge){ sa, sb, sr };
		i = next;
	}
	if (strict) {
		/* every token but the bytes and the special one comes from a merge,
		 * so a merges.txt cut short is refused */
		uint8_t *made = calloc(b->n, 1);
		if (!made) {
			rc = train_error_set(err, TRAIN_ENOMEM, mname, line, 0, "out of memory");
			goto out;
		}
		for (size_t r = 0; r < b->n_merges; r++)
			made[b->mrg[r].r] = 1;
		size_t miss = b->n;
		for (size_t id = 256; id < b->n && miss == b->n; id++)
			if ((int32_t)id != b->eot && (!b->tok[id] || !made[id]))
				miss = id;
		free(made);
		if (miss < b->n) {
			rc = train_error_set(err, TRAIN_ECORRUPT, mname, line + 1, 0,
			                     "the file ends after %zu merges, and none makes token %zu (\"%.40s\") "
			                     "of %s: cut short?",
			                     b->n_merges, miss, b->tok[miss] ? b->tok[miss] : "(no token)", vname);
			goto out;
		}
	}
	if (!(b->vocab_raw = malloc(vlen + 1)) || !(b->merges_raw = malloc(len + 1))) {
		rc = train_error_set(err, TRAIN_ENOMEM, mname, 0, 0, "out of memory");
		goto out;
	}
	memcpy(b->vocab_raw, vtext, vlen);
	b->vocab_raw[vlen] = '\0';
	b->vocab_raw_len = vlen;
	memcpy(b->merges_raw, text, len);
	b->merges_raw[len] = '\0';
	b->merges_raw_len = len;
	rc = TRAIN_OK;
out:
	free(cat);
	json_decref(j);
	if (rc)
		bpe_free(b);
	return rc;
}

int bpe_load(const char *vocab_path, const char *merges_path, int eot_required, int strict, bpe_tok *b,
             train_error *err)
{
	char *vt = NULL, *mt = NULL;
	size_t vl, ml;
	int rc;
	memset(b, 0, sizeof *b);
	b->eot = -1;
	if (!(rc = hf_read_file(vocab_path, &vt, &vl, err)) &&
	    !(rc = hf_read_file(merges_path, &mt, &ml, err)))
		rc = bpe_load_mem(vt, vl, vocab_path, mt, ml, merges_path, eot_required, strict, b, err);
	free(vt);
	free(mt);
	return rc;
}

int bpe_save(const bpe_tok *b, const char *dir, train_error *err)
{
	int rc = hf_write_atomic(dir, "vocab.json", b->vocab_raw, b->vocab_raw_len, err);
	if (!rc)
		rc = hf_write_atomic(dir, "merges.txt", b->merges_raw, b->merges_raw_len, err);
	return rc;
}

/* ---- encoding ------------------------------------------------------------------------- */

/* A candidate merge at symbol position pos: the pair (a, b) of rank. */
typedef struct cand {
	int64_t rank;
	int32_t pos, a, b;
} cand;

typedef struct scratch {
	int32_t *sym, *next, *prev;
	cand *heap, *pend;
	size_t cap, hn, pn;
	/* pieces already encoded: bytes -> [off, off + len) of ids */
	strmap cache;
	int32_t *cids;
	size_t cn, ccap;
} scratch;

static void scratch_free(scratch *s)
{
	free(s->sym);
	free(s->next);
	free(s->prev);
	free(s->heap);
	free(s->pend);
	strmap_free(&s->cache);
	free(s->cids);
}

static int scratch_reserve(scratch *s, size_t n)
{
	if (n <= s->cap)
		return TRAIN_OK;
	size_t c = 2 * n;
	int32_t *a = realloc(s->sym, c * sizeof *a);
	if (a)
		s->sym = a;
	int32_t *b = realloc(s->next, c * sizeof *b);
	if (b)
		s->next = b;
	int32_t *d = realloc(s->prev, c * sizeof *d);
	if (d)
		s->prev = d;
	/* each merge adds at most two candidates: 3n bounds the heap */
	cand *h = realloc(s->heap, 3 * c * sizeof *h);
	if (h)
		s->heap = h;
	cand *p = realloc(s->pend, 3 * c * sizeof *p);
	if (p)
		s->pend = p;
	if (!a || !b || !d || !h || !p)
		return TRAIN_ENOMEM;
	s->cap = c;
	return TRAIN_OK;
}

static int cand_less(const cand *x, const cand *y)
{
	return x->rank < y->rank || (x->rank == y->rank && x->pos < y->pos);
}

static void heap_push(scratch *s, cand c)
{
	size_t i = s->hn++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!cand_less(&c, &s->heap[p]))
			break;
		s->heap[i] = s->heap[p];
		i = p;
	}
	s->heap[i] = c;
}

static cand heap_pop(scratch *s)
{
	cand top = s->heap[0], last = s->heap[--s->hn];
	size_t i = 0, n = s->hn;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const cand *best = &last;
		if (l < n && cand_less(&s->heap[l], best)) {
			m = l;
			best = &s->heap[l];
		}
		if (r < n && cand_less(&s->heap[r], best))
			m = r;
		if (m == i)
			break;
		s->heap[i] = s->heap[m];
		i = m;
	}
	if (n)
		s->heap[i] = last;
	return top;
}

static void consider(const bpe_tok *b, scratch *s, int32_t pos, int to_pending)
{
	int32_t nx = pos < 0 ? -1 : s->next[pos];
	if (nx < 0)
		return;
	int64_t r = pairs_get(b->pairs, s->sym[pos], s->sym[nx]);
	if (r < 0)
		return;
	cand c = { r, pos, s->sym[pos], s->sym[nx] };
	if (to_pending)
		s->pend[s->pn++] = c;
	else
		heap_push(s, c);
}

static int emit(int32_t *ids, size_t max, size_t *n, int32_t id)
{
	if (*n < max)
		ids[*n] = id;
	(*n)++;
	return TRAIN_OK;
}

/* Push the ids of symbol v (a token, or the bytes of a string outside the
 * vocabulary) to out via emit. */
static void emit_sym(const bpe_tok *b, int32_t v, int32_t *ids, size_t max, size_t *n)
{
	if ((size_t)v < b->n) {
		emit(ids, max, n, v);
		return;
	}
	const char *t = b->sym_str[v];
	size_t tl = strlen(t);
	for (size_t q = 0; q < tl;) {
		uint32_t c = text_next(t, tl, &q);
		emit(ids, max, n, b->byte_sym[b->char_byte[c]]);
	}
}

/*
 * BPE of one piece p[0..len): the merges in rounds, one rank per round
 * (lowest first), each round's occurrences left to right, as GPT-2's
 * loop that merges every occurrence of the best pair before looking
 * again; candidates made during a round wait for the next one.  A
 * candidate whose symbols changed since it was made is dropped when it
 * comes up.  O(len log len).
 */
static int bpe_piece(const bpe_tok *b, scratch *s, const unsigned char *p, size_t len, int32_t *ids,
                     size_t max, size_t *count)
{
	if (len == 0)
		return TRAIN_OK;
	if (len > INT32_MAX / 4 || scratch_reserve(s, len))
		return TRAIN_ENOMEM;
	int32_t n = (int32_t)len;
	for (int32_t i = 0; i < n; i++) {
		s->sym[i] = b->byte_sym[p[i]];
		s->next[i] = i + 1 < n ? i + 1 : -1;
		s->prev[i] = i - 1;
	}
	s->hn = s->pn = 0;
	for (int32_t i = 0; i + 1 < n; i++)
		consider(b, s, i, 0);
	while (s->hn) {
		int64_t r = s->heap[0].rank;
		s->pn = 0;
		while (s->hn && s->heap[0].rank == r) {
			cand c = heap_pop(s);
			int32_t nx = s->next[c.pos];
			/* merged away positions keep sym -1 */
			if (s->sym[c.pos] != c.a || nx < 0 || s->sym[nx] != c.b)
				continue;
			s->sym[c.pos] = b->mrg[r].r;
			s->next[c.pos] = s->next[nx];
			if (s->next[nx] >= 0)
				s->prev[s->next[nx]] = c.pos;
			s->sym[nx] = -1;
			s->next[nx] = -1;
			if (s->prev[c.pos] >= 0)
				consider(b, s, s->prev[c.pos], 1);
			consider(b, s, c.pos, 1);
		}
		for (size_t k = 0; k < s->pn; k++)
			heap_push(s, s->pend[k]);
	}
	for (int32_t i = 0; i >= 0; i = s->next[i])
		emit_sym(b, s->sym[i], ids, max, count);
	return TRAIN_OK;
}

/* A piece through the cache of pieces seen (short ones only). */
static int piece_cached(const bpe_tok *b, scratch *s, const unsigned char *p, size_t len, int32_t *ids,
                        size_t max, size_t *count)
{
	if (len > 64)
		return bpe_piece(b, s, p, len, ids, max, count);
	strmap_entry *e = strmap_get(&s->cache, (const char *)p, len);
	if (!e) {
		size_t k = 0;
		int rc = bpe_piece(b, s, p, len, NULL, 0, &k);
		if (rc)
			return rc;
		if (s->cn + k > s->ccap) {
			size_t nc = 2 * (s->cn + k) + 1024;
			int32_t *c = realloc(s->cids, nc * sizeof *c);
			if (!c)
				return TRAIN_ENOMEM;
			s->cids = c;
			s->ccap = nc;
		}
		size_t at = s->cn;
		k = 0;
		if ((rc = bpe_piece(b, s, p, len, s->cids + at, SIZE_MAX, &k)))
			return rc;
		s->cn += k;
		int added;
		if (!(e = strmap_put(&s->cache, (const char *)p, len, at << 8 | k, &added)))
			return TRAIN_ENOMEM;
	}
	size_t at = e->value >> 8, k = e->value & 0xff;
	for (size_t i = 0; i < k; i++)
		emit(ids, max, count, s->cids[at + i]);
	return TRAIN_OK;
}

static int encode_text(const bpe_tok *b, scratch *s, const char *text, size_t len, int32_t *ids,
                       size_t max, size_t *count)
{
	size_t n;
	size_t *offs = NULL;
	uint32_t *cp = text_decode(text, len, &n, &offs);
	int rc = TRAIN_OK;
	if (!cp)
		return TRAIN_ENOMEM;
	for (size_t i = 0; i < n && !rc;) {
		size_t k = bpe_next_piece(cp, n, i);
		rc = piece_cached(b, s, (const unsigned char *)text + offs[i], offs[i + k] - offs[i], ids,
		                  max, count);
		i += k;
	}
	free(cp);
	free(offs);
	return rc;
}

int bpe_encode(const bpe_tok *b, const char *text, size_t len, int32_t *ids, size_t max, size_t *n)
{
	const size_t el = strlen(BPE_EOT_TEXT);
	scratch s = { 0 };
	int rc = TRAIN_OK;
	*n = 0;
	while (!rc) {
		const char *e = NULL;
		for (size_t i = 0; b->eot >= 0 && i + el <= len; i++)
			if (text[i] == '<' && !memcmp(text + i, BPE_EOT_TEXT, el)) {
				e = text + i;
				break;
			}
		size_t seg = e ? (size_t)(e - text) : len;
		if (seg)
			rc = encode_text(b, &s, text, seg, ids, max, n);
		if (!e || rc)
			break;
		emit(ids, max, n, b->eot);
		text = e + el;
		len -= seg + el;
	}
	scratch_free(&s);
	return rc;
}

size_t bpe_token_bytes(const bpe_tok *b, int32_t id, char *out, size_t cap)
{
	if (id < 0 || (size_t)id >= b->n || !b->tok[id])
		return 0;
	const char *t = b->tok[id];
	size_t tl = strlen(t), o = 0;
	if (id == b->eot) {
		if (tl > cap)
			return 0;
		memcpy(out, t, tl);
		return tl;
	}
	for (size_t q = 0; q < tl && o < cap;) {
		uint32_t c = text_next(t, tl, &q);
		if (c < 512 && b->char_byte[c] >= 0)
			out[o++] = (char)b->char_byte[c];
	}
	return o;
}

int bpe_decode(const bpe_tok *b, const int32_t *ids, size_t n, char **out, size_t *len)
{
	size_t cap = 64, o = 0;
	char *buf = malloc(cap);
	if (!buf)
		return TRAIN_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (ids[i] < 0 || (size_t)ids[i] >= b->n || !b->tok[ids[i]])
			continue;
		size_t tl = strlen(b->tok[ids[i]]); /* at least the bytes' count */
		if (o + tl + 1 > cap) {
			cap = 2 * (o + tl + 1);
			char *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				return TRAIN_ENOMEM;
			}
			buf = nb;
		}
		o += bpe_token_bytes(b, ids[i], buf + o, tl);
	}
	buf[o] = '\0';
	*out = buf;
	*len = o;
	return TRAIN_OK;
}

/* ---- training ------------------------------------------------------------------------- */

/* A pair's count in the heap (lazy: checked against the current count). */
typedef struct hent {
	int64_t count;
	int32_t a, b;
} hent;

typedef struct theap {
	hent *v;
	size_t n, cap;
} theap;

/* count high first, then (a, b) low first */
static int hent_before(const hent *x, const hent *y)
{
	if (x->count != y->count)
		return x->count > y->count;
	if (x->a != y->a)
		return x->a < y->a;
	return x->b < y->b;
}

static int theap_push(theap *h, hent e)
{
	if (h->n == h->cap) {
		size_t nc = h->cap ? 2 * h->cap : 4096;
		hent *v = realloc(h->v, nc * sizeof *v);
		if (!v)
			return TRAIN_ENOMEM;
		h->v = v;
		h->cap = nc;
	}
	size_t i = h->n++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!hent_before(&e, &h->v[p]))
			break;
		h->v[i] = h->v[p];
		i = p;
	}
	h->v[i] = e;
	return TRAIN_OK;
}

static hent theap_pop(theap *h)
{
	hent top = h->v[0], last = h->v[--h->n];
	size_t i = 0, n = h->n;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const hent *best = &last;
		if (l < n && hent_before(&h->v[l], best)) {
			m = l;
			best = &h->v[l];
		}
		if (r < n && hent_before(&h->v[r], best))
			m = r;
		if (m == i)
			break;
		h->v[i] = h->v[m];
		i = m;
	}
	if (n)
		h->v[i] = last;
	return top;
}

/* Per pair: its symbols, its count and the words that hold (or held) it. */
typedef struct tpair {
	int32_t a, b;
	int64_t count;
	int32_t *w;
	size_t nw, cap;
	int64_t stamp; /* the last merge that noted it */
} tpair;

typedef struct trainer {
	bpe_pairs index;  /* (a, b) -> pair number */
	tpair *p;
	size_t np, pcap;
	/* word types: symbols at wsym[woff[w]], wlen[w] of them, seen wcnt[w] times */
	int32_t *wsym;
	size_t *woff;
	int32_t *wlen;
	int64_t *wcnt;
	size_t nw;
	theap heap;
	int64_t *touch;   /* pairs made by the current merge */
	size_t ntouch, tcap;
} trainer;

/* The pair number of (a, b), made when new; -1 when out of memory. */
static int64_t tpair_of(trainer *t, int32_t a, int32_t b)
{
	int added;
	int64_t *v = pairs_put(&t->index, a, b, (int64_t)t->np, &added);
	if (!v)
		return -1;
	if (added) {
		if (t->np == t->pcap) {
			size_t nc = t->pcap ? 2 * t->pcap : 4096;
			tpair *np = realloc(t->p, nc * sizeof *np);
			if (!np)
				return -1;
			t->p = np;
			t->pcap = nc;
		}
		memset(&t->p[t->np], 0, sizeof t->p[t->np]);
		t->p[t->np].a = a;
		t->p[t->np].b = b;
		t->p[t->np].stamp = -1;
		t->np++;
	}
	return *v;
}

static int tpair_add_word(tpair *p, int32_t w)
{
	if (p->nw && p->w[p->nw - 1] == w)
		return TRAIN_OK;
	if (p->nw == p->cap) {
		size_t nc = p->cap ? 2 * p->cap : 4;
		int32_t *v = realloc(p->w, nc * sizeof *v);
		if (!v)
			return TRAIN_ENOMEM;
		p->w = v;
		p->cap = nc;
	}
	p->w[p->nw++] = w;
	return TRAIN_OK;
}

static void trainer_free(trainer *t)
{
	pairs_free(&t->index);
	for (size_t i = 0; i < t->np; i++)
		free(t->p[i].w);
	free(t->p);
	free(t->wsym);
	free(t->woff);
	free(t->wlen);
	free(t->wcnt);
	free(t->heap.v);
	free(t->touch);
}

/* Count the word types of text (the pieces) into t. */
static int count_words(trainer *t, const char *text, size_t len)
{
	strmap types = { 0 };
	size_t n, *offs = NULL, cap = 0, scap = 0, nsym = 0;
	uint32_t *cp = text_decode(text, len, &n, &offs);
	int rc = TRAIN_OK;
	if (!cp)
		return TRAIN_ENOMEM;
	for (size_t i = 0; i < n && !rc;) {
		size_t k = bpe_next_piece(cp, n, i);
		const char *p = text + offs[i];
		size_t pl = offs[i + k] - offs[i];
		i += k;
		int added;
		strmap_entry *e = strmap_put(&types, p, pl, t->nw, &added);
		if (!e || pl > INT32_MAX) {
			rc = TRAIN_ENOMEM;
			break;
		}
		if (!added) {
			t->wcnt[e->value]++;
			continue;
		}
		if (t->nw == cap) {
			cap = cap ? 2 * cap : 4096;
			size_t *wo = realloc(t->woff, cap * sizeof *wo);
			if (wo)
				t->woff = wo;
			int32_t *wl = realloc(t->wlen, cap * sizeof *wl);
			if (wl)
				t->wlen = wl;
			int64_t *wc = realloc(t->wcnt, cap * sizeof *wc);
			if (wc)
				t->wcnt = wc;
			if (!wo || !wl || !wc) {
				rc = TRAIN_ENOMEM;
				break;
			}
		}
		if (nsym + pl > scap) {
			scap = 2 * (nsym + pl) + 4096;
			int32_t *s = realloc(t->wsym, scap * sizeof *s);
			if (!s) {
				rc = TRAIN_ENOMEM;
				break;
			}
			t->wsym = s;
		}
		t->woff[t->nw] = nsym;
		t->wlen[t->nw] = (int32_t)pl;
		t->wcnt[t->nw] = 1;
		for (size_t q = 0; q < pl; q++)
			t->wsym[nsym++] = (unsigned char)p[q];
		t->nw++;
	}
	strmap_free(&types);
	free(cp);
	free(offs);
	if (!rc && t->nw > INT32_MAX)
		rc = TRAIN_ENOMEM;
	return rc;
}

/*
 * Add (sign +1) or remove (-1) the counts of the pairs of word w.  Adding,
 * the pairs that hold `fresh` (all of them when fresh is -1) note the word,
 * and are noted once per merge `stamp` in t->touch.
 */
static int word_pairs(trainer *t, int32_t w, int sign, int32_t fresh, int64_t stamp)
{
	const int32_t *s = t->wsym + t->woff[w];
	for (int32_t i = 0; i + 1 < t->wlen[w]; i++) {
		int64_t q = tpair_of(t, s[i], s[i + 1]);
		if (q < 0)
			return TRAIN_ENOMEM;
		tpair *p = &t->p[q];
		p->count += sign * t->wcnt[w];
		if (sign < 0 || (fresh >= 0 && s[i] != fresh && s[i + 1] != fresh))
			continue;
		if (tpair_add_word(p, w))
			return TRAIN_ENOMEM;
		if (p->stamp != stamp) {
			p->stamp = stamp;
			if (t->ntouch == t->tcap) {
				size_t nc = t->tcap ? 2 * t->tcap : 1024;
				int64_t *v = realloc(t->touch, nc * sizeof *v);
				if (!v)
					return TRAIN_ENOMEM;
				t->touch = v;
				t->tcap = nc;
			}
			t->touch[t->ntouch++] = q;
		}
	}
	return TRAIN_OK;
}

/* Merge (a, b) -> r in every word of t that holds it; the pairs made are
 * noted in t->touch. */
static int merge_words(trainer *t, int64_t q, int32_t a, int32_t b, int32_t r, int64_t stamp)
{
	int32_t *ws = t->p[q].w;
	size_t nws = t->p[q].nw;
	int rc = TRAIN_OK;
	/* (a, b) is gone after this merge: its word list goes with it */
	t->p[q].w = NULL;
	t->p[q].nw = t->p[q].cap = 0;
	t->ntouch = 0;
	for (size_t k = 0; k < nws && !rc; k++) {
		int32_t w = ws[k];
		int32_t *s = t->wsym + t->woff[w], wl = t->wlen[w];
		int found = 0;
		for (int32_t i = 0; i + 1 < wl && !found; i++)
			found = s[i] == a && s[i + 1] == b;
		if (!found)
			continue;
		if ((rc = word_pairs(t, w, -1, 0, stamp)))
			break;
		int32_t o = 0;
		for (int32_t i = 0; i < wl;) {
			if (i + 1 < wl && s[i] == a && s[i + 1] == b) {
				s[o++] = r;
				i += 2;
			} else {
				s[o++] = s[i++];
			}
		}
		t->wlen[w] = o;
		rc = word_pairs(t, w, +1, r, stamp);
	}
	free(ws);
	t->p[q].count = 0;
	return rc;
}

/* The byte-level characters of bytes p[0..n) into out (room: 2n). */
static size_t chars_of(const bpe_tok *b, const unsigned char *p, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++)
		o += text_put(out + o, b->byte_char[p[i]]);
	return o;
}

typedef struct sbuf {
	char *s;
	size_t n, cap;
} sbuf;

static int sbuf_put(sbuf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t nc = 2 * (b->n + n + 1) + 4096;
		char *ns = realloc(b->s, nc);
		if (!ns)
			return TRAIN_ENOMEM;
		b->s = ns;
		b->cap = nc;
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = '\0';
	return TRAIN_OK;
}

int bpe_train(const char *text, size_t len, size_t vocab_size, int64_t min_count, bpe_tok *out)
{
	trainer t = { 0 };
	bpe_tok map;
	strmap have = { 0 };                  /* token bytes -> id */
	unsigned char **tb = NULL;            /* id -> bytes */
	size_t *tl = NULL, ntok = 256;
	bpe_merge *mg = NULL;
	size_t nm = 0, mcap = 0;
	json_t *vj = NULL;
	char *vs = NULL, *cb = NULL;
	sbuf ms = { 0 };
	int rc = TRAIN_ENOMEM;
	memset(out, 0, sizeof *out);
	out->eot = -1;
	if (vocab_size < 257 || vocab_size > (1u << 24))
		return TRAIN_EINVAL;
	if (min_count < 1)
		min_count = 1;
	memset(&map, 0, sizeof map);
	bpe_byte_map(&map);
	if (!(tb = calloc(vocab_size, sizeof *tb)) || !(tl = calloc(vocab_size, sizeof *tl)))
		goto out;
	for (int c = 0; c < 256; c++) {
		int added;
		unsigned char ch = (unsigned char)c;
		if (!(tb[c] = malloc(1)) || !strmap_put(&have, (const char *)&ch, 1, (size_t)c, &added))
			goto out;
		tb[c][0] = ch;
		tl[c] = 1;
	}
	if ((rc = count_words(&t, text, len)))
		goto out;
	rc = TRAIN_ENOMEM;
	for (size_t w = 0; w < t.nw; w++)
		if (word_pairs(&t, (int32_t)w, +1, -1, -1))
			goto out;
	for (size_t q = 0; q < t.np; q++)
		if (theap_push(&t.heap, (hent){ t.p[q].count, t.p[q].a, t.p[q].b }))
			goto out;
	/* merges until the vocabulary is full: 256 bytes, merges, the special token */
	while (ntok + 1 < vocab_size && t.heap.n) {
		hent e = theap_pop(&t.heap);
		int64_t q = pairs_get(&t.index, e.a, e.b);
		int64_t cur = t.p[q].count;
		if (cur != e.count) {
			if (cur > 0 && theap_push(&t.heap, (hent){ cur, e.a, e.b }))
				goto out;
			continue;
		}
		if (cur < min_count)
			break;
		/* the merged token: new, or one that another merge made already */
		size_t nl = tl[e.a] + tl[e.b];
		unsigned char *nb = malloc(nl);
		if (!nb)
			goto out;
		memcpy(nb, tb[e.a], tl[e.a]);
		memcpy(nb + tl[e.a], tb[e.b], tl[e.b]);
		int added;
		strmap_entry *he = strmap_put(&have, (const char *)nb, nl, ntok, &added);
		if (!he) {
			free(nb);
			goto out;
		}
		int32_t r = (int32_t)he->value;
		if (added) {
			tb[ntok] = nb;
			tl[ntok] = nl;
			ntok++;
		} else {
			free(nb);
		}
		if (nm == mcap) {
			mcap = mcap ? 2 * mcap : 1024;
			bpe_merge *m2 = realloc(mg, mcap * sizeof *m2);
			if (!m2)
				goto out;
			mg = m2;
		}
		mg[nm++] = (bpe_merge){ e.a, e.b, r };
		if (merge_words(&t, q, e.a, e.b, r, (int64_t)nm))
			goto out;
		for (size_t k = 0; k < t.ntouch; k++) {
			const tpair *p = &t.p[t.touch[k]];
			if (p->count > 0 && theap_push(&t.heap, (hent){ p->count, p->a, p->b }))
				goto out;
		}
	}
	/* vocab.json and merges.txt, then the tokenizer read from them */
	size_t longest = 1;
	for (size_t i = 0; i < ntok; i++)
		if (tl[i] > longest)
			longest = tl[i];
	if (!(vj = json_object()) || !(cb = malloc(2 * longest + 2)))
		goto out;
	for (size_t i = 0; i < ntok; i++) {
		cb[chars_of(&map, tb[i], tl[i], cb)] = '\0';
		if (json_object_set_new_nocheck(vj, cb, json_integer((json_int_t)i)))
			goto out;
	}
	if (json_object_set_new_nocheck(vj, BPE_EOT_TEXT, json_integer((json_int_t)ntok)))
		goto out;
	if (!(vs = json_dumps(vj, JSON_PRESERVE_ORDER | JSON_COMPACT)))
		goto out;
	if (sbuf_put(&ms, "#version: 0.2\n", 14))
		goto out;
	for (size_t i = 0; i < nm; i++) {
		size_t k = chars_of(&map, tb[mg[i].a], tl[mg[i].a], cb);
		if (sbuf_put(&ms, cb, k) || sbuf_put(&ms, " ", 1))
			goto out;
		k = chars_of(&map, tb[mg[i].b], tl[mg[i].b], cb);
		if (sbuf_put(&ms, cb, k) || sbuf_put(&ms, "\n", 1))
			goto out;
	}
	rc = bpe_load_mem(vs, strlen(vs), "vocab.json", ms.s, ms.n, "merges.txt", 1, 1, out, NULL);
out:
	trainer_free(&t);
	strmap_free(&have);
	for (size_t i = 0; tb && i < vocab_size; i++)
		free(tb[i]);
	free(tb);
	free(tl);
	free(mg);
	json_decref(vj);
	free(vs);
	free(cb);
	free(ms.s);
	return rc;
}
