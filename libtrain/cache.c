/*
 * cache.c - the fingerprint and output caches: one LMDB environment per
 * cache folder (see <train/cache.h> for the contract).
 *
 * Databases (keys are 16-byte fingerprints: hi then lo, little-endian):
 *   "nodes"   node fp  -> node record
 *   "values"  value fp -> value record
 *   "atime"   value fp -> secs u64, seq u64, size u64 (last use, payload size)
 *   "meta"    "bytes" -> u64 payload bytes of all values,
 *             "seq"   -> u64 last stamp handed out (orders uses within a second)
 *
 * Records (all integers little-endian):
 *   0  magic      4 bytes, "TRND" (node) or "TRVC" (value)
 *   4  version    u16, REC_VERSION
 *   6  flags      u16, 0
 *   8  checksum   u64, XXH3_64bits of bytes 16..end
 *   16 node:  count u32, then count x (name length u32, name, fp hi u64, fp lo u64)
 *      value: type length u32, type (no NUL), payload
 *
 * Every write (store, flush, gc, clear) is one write transaction, so the
 * meta counters stay exact across processes: LMDB serializes writers.  The
 * "atime" record carries each value's size, so eviction reads one small
 * database and never the values themselves.
 *
 * Left out: compression of payloads, and sharing one environment between
 * two train_cache handles of one process (LMDB forbids it).
 */
#include <train/cache.h>

#include <ctype.h>
#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "util.h"

/* ---- constants ------------------------------------------------------------- */

#define CACHE_DEFAULT_MAX  ((uint64_t)4 << 30)  /* 4 GiB of payload */
#define CACHE_INITIAL_MAP  ((size_t)64 << 20)   /* first LMDB map size */
#define CACHE_MAX_DBS      8
#define CACHE_MAX_READERS  1022 /* reader slots; LMDB's default (126) is tight for
                                   several multi-threaded train processes */
#define CACHE_MAX_ATTEMPTS 64   /* a txn retried on MAP_FULL/MAP_RESIZED/READERS_FULL */
#define CACHE_READER_WAITS 12   /* READERS_FULL: sleeps of 1, 2, 4 ... ms (~4 s in all) */
#define CACHE_PENDING_MAX  4096 /* a lookup flushes access times past this many hits */

#define REC_VERSION   1
#define REC_HEADER    16
#define REC_MAGIC_NODE  "TRND"
#define REC_MAGIC_VALUE "TRVC"
#define REC_TYPE_MAX  1024  /* longest content type in a value record */
#define REC_NAME_MAX  4096  /* longest output name in a node record */
#define ATIME_SIZE    24

static const char META_BYTES[] = "bytes";
static const char META_SEQ[] = "seq";

struct train_cache {
	MDB_env *env;
	MDB_dbi nodes, values, atime, meta;
	int dbs_open;
	char *dir;
	uint64_t max_size;
	train_log_sink log;
	int has_log;

	/* Read-locked around every transaction, write-locked to change the map
	 * size: mdb_env_set_mapsize() needs no txn open in this process. */
	pthread_rwlock_t maplock;
	int maplock_ok;
	size_t map_size; /* guarded by maplock */

	/* Value fingerprints read since the last flush, in order of use. */
	pthread_mutex_t hitlock;
	int hitlock_ok;
	train_fp *hits;
	size_t nhits, hitcap;
};

/* ---- small helpers --------------------------------------------------------- */

TRAIN_PRINTF(3, 4)
static void cache_log(const train_cache *c, train_log_level level, const char *fmt, ...)
{
	/* Without a sink, train_logf prints every level; keep stderr to warnings. */
	if (!c->has_log && level > TRAIN_LOG_WARN)
		return;
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	train_logf(c->has_log ? &c->log : NULL, level, "cache: %s", msg);
}

static int is_train_code(int rc)
{
	return rc <= -30900 && rc >= -30999;
}

/* Turn an LMDB or errno code into a TRAIN_E* code, filling `err`. */
static int cache_fail(const train_cache *c, train_error *err, int rc, const char *what)
{
	if (rc == ENOMEM || rc == TRAIN_ENOMEM)
		return train_error_set(err, TRAIN_ENOMEM, c->dir, 0, 0, "%s: out of memory", what);
	if (is_train_code(rc))
		return train_error_set(err, rc, c->dir, 0, 0, "%s: %s", what, train_strerror(rc));
	return train_error_set(err, TRAIN_ECACHE, c->dir, 0, 0, "%s: %s", what, mdb_strerror(rc));
}

static void put_u16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static unsigned get_u16(const unsigned char *p)
{
	return (unsigned)p[0] | (unsigned)p[1] << 8;
}

static void put_fp(unsigned char *p, train_fp fp)
{
	train_put_u64(p, fp.hi);
	train_put_u64(p + 8, fp.lo);
}

static train_fp get_fp(const unsigned char *p)
{
	train_fp fp = { train_get_u64(p), train_get_u64(p + 8) };
	return fp;
}

static MDB_val fp_key(train_fp fp, unsigned char buf[16])
{
	put_fp(buf, fp);
	MDB_val k = { 16, buf };
	return k;
}

static char *dup_n(const void *p, size_t n)
{
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

static int key_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

/* ---- records --------------------------------------------------------------- */

/* Write the header of a record whose body (from byte 16) is filled in. */
static void rec_seal(unsigned char *rec, size_t size, const char *magic)
{
	memcpy(rec, magic, 4);
	put_u16(rec + 4, REC_VERSION);
	put_u16(rec + 6, 0);
	train_put_u64(rec + 8, XXH3_64bits(rec + REC_HEADER, size - REC_HEADER));
}

/* NULL if the header and checksum are right, else what is wrong. */
static const char *rec_check(const MDB_val *rec, const char *magic)
{
	const unsigned char *p = rec->mv_data;
	if (rec->mv_size < REC_HEADER)
		return "short record";
	if (memcmp(p, magic, 4) != 0)
		return "bad magic";
	if (get_u16(p + 4) != REC_VERSION)
		return "unknown format version";
	if (get_u16(p + 6) != 0)
		return "unknown flags";
	if (train_get_u64(p + 8) != XXH3_64bits(p + REC_HEADER, rec->mv_size - REC_HEADER))
		return "bad checksum";
	return NULL;
}

typedef struct value_view {
	const char *type; /* not NUL-terminated */
	size_t type_len;
	const void *data;
	size_t size;
} value_view;

static size_t value_rec_size(size_t type_len, size_t size)
{
	return REC_HEADER + 4 + type_len + size;
}

static const char *value_parse(const MDB_val *rec, value_view *vv)
{
	const char *why = rec_check(rec, REC_MAGIC_VALUE);
	if (why)
		return why;
	const unsigned char *p = rec->mv_data;
	size_t body = rec->mv_size - REC_HEADER;
	if (body < 4)
		return "short record";
	uint32_t tl = train_get_u32(p + REC_HEADER);
	if (tl == 0 || tl > REC_TYPE_MAX || tl > body - 4)
		return "bad type length";
	if (memchr(p + REC_HEADER + 4, '\0', tl))
		return "bad type";
	vv->type = (const char *)p + REC_HEADER + 4;
	vv->type_len = tl;
	vv->data = p + REC_HEADER + 4 + tl;
	vv->size = body - 4 - tl;
	return NULL;
}

/* A checked node record: `count` entries from `p` to `end`. */
typedef struct node_view {
	uint32_t count;
	const unsigned char *p, *end;
} node_view;

/* One entry of a node record, read at `p` (already checked); returns the next. */
static const unsigned char *node_entry(const unsigned char *p, const char **name, size_t *len,
                                       train_fp *fp)
{
	*len = train_get_u32(p);
	*name = (const char *)p + 4;
	*fp = get_fp(p + 4 + *len);
	return p + 4 + *len + 16;
}

static const char *node_parse(const MDB_val *rec, node_view *nv)
{
	const char *why = rec_check(rec, REC_MAGIC_NODE);
	if (why)
		return why;
	const unsigned char *p = rec->mv_data, *end = p + rec->mv_size;
	if (rec->mv_size < REC_HEADER + 4)
		return "short record";
	nv->count = train_get_u32(p + REC_HEADER);
	nv->p = p + REC_HEADER + 4;
	nv->end = end;
	p = nv->p;
	for (uint32_t i = 0; i < nv->count; i++) {
		if ((size_t)(end - p) < 4)
			return "short record";
		uint32_t len = train_get_u32(p);
		if (len == 0 || len > REC_NAME_MAX || (size_t)(end - p) - 4 < (size_t)len + 16)
			return "bad output name";
		if (memchr(p + 4, '\0', len))
			return "bad output name";
		p += 4 + len + 16;
	}
	if (p != end)
		return "trailing bytes";
	return NULL;
}

/* ---- meta counters and access times ---------------------------------------- */

static int meta_get(train_cache *c, MDB_txn *txn, const char *key, uint64_t *v)
{
	MDB_val k = { strlen(key), (void *)key }, d;
	int rc = mdb_get(txn, c->meta, &k, &d);
	*v = 0;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc == 0 && d.mv_size == 8)
		*v = train_get_u64(d.mv_data);
	return rc;
}

static int meta_put(train_cache *c, MDB_txn *txn, const char *key, uint64_t v)
{
	unsigned char buf[8];
	train_put_u64(buf, v);
	MDB_val k = { strlen(key), (void *)key }, d = { 8, buf };
	return mdb_put(txn, c->meta, &k, &d, 0);
}

/* What a write transaction reads once and writes back at the end. */
typedef struct wstate {
	uint64_t now;   /* wall-clock seconds */
	uint64_t seq;   /* last stamp handed out */
	uint64_t total; /* payload bytes of all values */
} wstate;

static int wstate_load(train_cache *c, MDB_txn *txn, wstate *st)
{
	time_t t = time(NULL);
	st->now = t > 0 ? (uint64_t)t : 0;
	int rc = meta_get(c, txn, META_SEQ, &st->seq);
	if (!rc)
		rc = meta_get(c, txn, META_BYTES, &st->total);
	return rc;
}

static int wstate_save(train_cache *c, MDB_txn *txn, const wstate *st)
{
	int rc = meta_put(c, txn, META_SEQ, st->seq);
	if (!rc)
		rc = meta_put(c, txn, META_BYTES, st->total);
	return rc;
}

typedef struct atime_rec {
	uint64_t secs, seq, size;
} atime_rec;

/* MDB_NOTFOUND also for a record of the wrong size. */
static int atime_get(train_cache *c, MDB_txn *txn, MDB_val *key, atime_rec *a)
{
	MDB_val d;
	int rc = mdb_get(txn, c->atime, key, &d);
	if (rc)
		return rc;
	if (d.mv_size != ATIME_SIZE)
		return MDB_NOTFOUND;
	const unsigned char *p = d.mv_data;
	a->secs = train_get_u64(p);
	a->seq = train_get_u64(p + 8);
	a->size = train_get_u64(p + 16);
	return 0;
}

static int atime_put(train_cache *c, MDB_txn *txn, MDB_val *key, const atime_rec *a)
{
	unsigned char buf[ATIME_SIZE];
	train_put_u64(buf, a->secs);
	train_put_u64(buf + 8, a->seq);
	train_put_u64(buf + 16, a->size);
	MDB_val d = { ATIME_SIZE, buf };
	return mdb_put(txn, c->atime, key, &d, 0);
}

/* Stamp the values in `fps` as used now; values gone meanwhile are skipped. */
static int hits_apply(train_cache *c, MDB_txn *txn, wstate *st, const train_fp *fps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char kb[16];
		MDB_val key = fp_key(fps[i], kb);
		atime_rec a;
		int rc = atime_get(c, txn, &key, &a);
		if (rc == MDB_NOTFOUND)
			continue;
		if (rc)
			return rc;
		a.secs = st->now;
		a.seq = ++st->seq;
		if ((rc = atime_put(c, txn, &key, &a)))
			return rc;
	}
	return 0;
}

/* ---- pending hits ---------------------------------------------------------- */

static int hits_add(train_cache *c, const train_fp *fps, size_t n)
{
	int rc = TRAIN_OK;
	if (!n)
		return rc;
	pthread_mutex_lock(&c->hitlock);
	if (c->nhits + n > c->hitcap) {
		size_t cap = c->hitcap ? c->hitcap : 64;
		while (cap < c->nhits + n)
			cap *= 2;
		train_fp *h = realloc(c->hits, cap * sizeof *h);
		if (!h) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		c->hits = h;
		c->hitcap = cap;
	}
	memcpy(c->hits + c->nhits, fps, n * sizeof *fps);
	c->nhits += n;
out:
	pthread_mutex_unlock(&c->hitlock);
	return rc;
}

/* Take the pending hits (the caller owns the array). */
static void hits_take(train_cache *c, train_fp **fps, size_t *n)
{
	pthread_mutex_lock(&c->hitlock);
	*fps = c->hits;
	*n = c->nhits;
	c->hits = NULL;
	c->nhits = c->hitcap = 0;
	pthread_mutex_unlock(&c->hitlock);
}

/* Give back hits that could not be written (before any added meanwhile). */
static void hits_restore(train_cache *c, train_fp *fps, size_t n)
{
	if (!n) {
		free(fps);
		return;
	}
	pthread_mutex_lock(&c->hitlock);
	train_fp *merged = realloc(fps, (n + c->nhits) * sizeof *fps);
	if (merged) {
		if (c->nhits)
			memcpy(merged + n, c->hits, c->nhits * sizeof *fps);
		free(c->hits);
		c->hits = merged;
		c->nhits += n;
		c->hitcap = c->nhits;
	} else {
		free(fps); /* access times are advice: losing them only ages entries */
	}
	pthread_mutex_unlock(&c->hitlock);
}

/* ---- transactions and the map ---------------------------------------------- */

static int map_size_refresh(train_cache *c)
{
	MDB_envinfo info;
	int rc = mdb_env_info(c->env, &info);
	if (!rc)
		c->map_size = info.me_mapsize;
	return rc;
}

/* MDB_MAP_FULL: double the map, unless another thread already grew it. */
static int map_grow(train_cache *c, size_t seen)
{
	int rc = 0;
	pthread_rwlock_wrlock(&c->maplock);
	if (c->map_size == seen) {
		rc = seen > SIZE_MAX / 2 ? MDB_MAP_FULL : mdb_env_set_mapsize(c->env, seen * 2);
		if (!rc)
			rc = map_size_refresh(c);
		if (!rc)
			cache_log(c, TRAIN_LOG_DEBUG, "map grown to %zu bytes", c->map_size);
	}
	pthread_rwlock_unlock(&c->maplock);
	return rc;
}

/* MDB_MAP_RESIZED: another process grew the map; adopt its size. */
static int map_adopt(train_cache *c)
{
	pthread_rwlock_wrlock(&c->maplock);
	int rc = mdb_env_set_mapsize(c->env, 0);
	if (!rc)
		rc = map_size_refresh(c);
	pthread_rwlock_unlock(&c->maplock);
	return rc;
}

/* MDB_READERS_FULL: free the slots of dead processes, else wait a little. */
static int readers_wait(train_cache *c, int *waits)
{
	int dead = 0;
	int rc = mdb_reader_check(c->env, &dead);
	if (rc || dead > 0)
		return rc;
	if (*waits >= CACHE_READER_WAITS)
		return MDB_READERS_FULL;
	struct timespec ts = { 0, 1000000L << *waits };
	while (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	(*waits)++;
	nanosleep(&ts, NULL);
	return 0;
}

typedef int (*txn_fn)(train_cache *c, MDB_txn *txn, void *ctx);

/*
 * Run `fn` in a transaction (read-only if `flags` has MDB_RDONLY; a write
 * txn is committed when `fn` returns 0).  `fn` may run several times: on
 * MDB_MAP_FULL the map is doubled and on MDB_MAP_RESIZED adopted, then the
 * whole transaction is retried, so `fn` must start from scratch each time.
 * Returns 0, an LMDB/errno code, or whatever `fn` returned.
 */
static int cache_txn(train_cache *c, unsigned flags, txn_fn fn, void *ctx)
{
	int rc = 0, waits = 0;
	for (int attempt = 0; attempt < CACHE_MAX_ATTEMPTS; attempt++) {
		MDB_txn *txn = NULL;
		pthread_rwlock_rdlock(&c->maplock);
		size_t seen = c->map_size;
		rc = mdb_txn_begin(c->env, NULL, flags, &txn);
		if (!rc) {
			rc = fn(c, txn, ctx);
			if (!rc && !(flags & MDB_RDONLY))
				rc = mdb_txn_commit(txn); /* frees txn, also on failure */
			else
				mdb_txn_abort(txn);
		}
		pthread_rwlock_unlock(&c->maplock);

		int again;
		if (rc == MDB_MAP_FULL)
			again = map_grow(c, seen);
		else if (rc == MDB_MAP_RESIZED)
			again = map_adopt(c);
		else if (rc == MDB_READERS_FULL)
			again = readers_wait(c, &waits);
		else
			return rc;
		if (again)
			return again;
	}
	return rc;
}

/* ---- eviction -------------------------------------------------------------- */

typedef struct lru_ent {
	unsigned char key[16];
	uint64_t secs, seq, size;
} lru_ent;

static int lru_cmp(const void *pa, const void *pb)
{
	const lru_ent *a = pa, *b = pb;
	if (a->secs != b->secs)
		return a->secs < b->secs ? -1 : 1;
	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return memcmp(a->key, b->key, 16);
}

/* Sum of the payload sizes in the value records (headers only, no checksums). */
static int values_sum(train_cache *c, MDB_txn *txn, uint64_t *total)
{
	MDB_cursor *cur;
	MDB_val k, d;
	int rc = mdb_cursor_open(txn, c->values, &cur);
	if (rc)
		return rc;
	*total = 0;
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); !rc; rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT))
		if (d.mv_size >= REC_HEADER + 4) {
			uint32_t tl = train_get_u32((const unsigned char *)d.mv_data + REC_HEADER);
			if (tl <= d.mv_size - REC_HEADER - 4)
				*total += d.mv_size - REC_HEADER - 4 - tl;
		}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * Delete every node record that refers to one of the `n` sorted 16-byte keys
 * in `gone` (or that is unreadable).  *dropped counts them.
 */
static int nodes_drop_refs(train_cache *c, MDB_txn *txn, const unsigned char *gone, size_t n,
                           size_t stride, uint64_t *dropped)
{
	MDB_cursor *cur;
	MDB_val k, d;
	int rc = mdb_cursor_open(txn, c->nodes, &cur);
	if (rc)
		return rc;
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); !rc; rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		node_view nv;
		int drop = k.mv_size != 16 || node_parse(&d, &nv) != NULL;
		const unsigned char *p = drop ? NULL : nv.p;
		for (uint32_t i = 0; !drop && i < nv.count; i++) {
			const char *name;
			size_t len;
			train_fp fp;
			unsigned char kb[16];
			p = node_entry(p, &name, &len, &fp);
			put_fp(kb, fp);
			drop = n && bsearch(kb, gone, n, stride, key_cmp) != NULL;
		}
		if (drop) {
			if ((rc = mdb_cursor_del(cur, 0)))
				break;
			if (dropped)
				(*dropped)++;
		}
	}
	mdb_cursor_close(cur);
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/*
 * Evict least-recently-used values until the payload total is at most
 * `target`, then drop the node records that referred to them.
 */
static int evict(train_cache *c, MDB_txn *txn, wstate *st, uint64_t target, uint64_t *freed)
{
	if (st->total <= target)
		return 0;
	lru_ent *ents = NULL;
	size_t n = 0, cap = 0, i;
	MDB_cursor *cur = NULL;
	MDB_val k, d;
	uint64_t before = st->total;
	int rc = mdb_cursor_open(txn, c->atime, &cur);
	if (rc)
		goto out;
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); !rc; rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		if (k.mv_size != 16)
			continue; /* not ours; train_cache_gc() deletes it */
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 256;
			lru_ent *e = realloc(ents, nc * sizeof *e);
			if (!e) {
				rc = TRAIN_ENOMEM;
				goto out;
			}
			ents = e;
			cap = nc;
		}
		lru_ent *e = &ents[n++];
		memcpy(e->key, k.mv_data, 16);
		e->secs = e->seq = e->size = 0;
		if (d.mv_size == ATIME_SIZE) {
			const unsigned char *p = d.mv_data;
			e->secs = train_get_u64(p);
			e->seq = train_get_u64(p + 8);
			e->size = train_get_u64(p + 16);
		}
	}
	if (rc != MDB_NOTFOUND)
		goto out;
	mdb_cursor_close(cur);
	cur = NULL;

	if (n)
		qsort(ents, n, sizeof *ents, lru_cmp);
	for (i = 0; i < n && st->total > target; i++) {
		MDB_val key = { 16, ents[i].key };
		rc = mdb_del(txn, c->values, &key, NULL);
		if (!rc || rc == MDB_NOTFOUND)
			rc = mdb_del(txn, c->atime, &key, NULL);
		if (rc && rc != MDB_NOTFOUND)
			goto out;
		st->total -= ents[i].size < st->total ? ents[i].size : st->total;
		if (freed)
			(*freed)++;
	}
	if (st->total > target) {
		/* Every value with an access time is gone and the counter still says
		 * too much: it has drifted (records written by hand).  Recount rather
		 * than scanning again at every store. */
		if ((rc = values_sum(c, txn, &st->total)))
			goto out;
	}
	cache_log(c, TRAIN_LOG_DEBUG, "evicted %zu values (%llu -> %llu payload bytes)", i,
	          (unsigned long long)before, (unsigned long long)st->total);
	if (i) {
		/* the first i entries, now sorted by key, are what went */
		qsort(ents, i, sizeof *ents, key_cmp);
		rc = nodes_drop_refs(c, txn, ents[0].key, i, sizeof *ents, NULL);
	} else {
		rc = 0;
	}
out:
	if (cur)
		mdb_cursor_close(cur);
	free(ents);
	return rc;
}

/* Where a store evicts down to: 1/8 below the bound, so that the scan of
 * the access times runs once per 1/8 of the bound stored, not per store. */
static uint64_t low_water(uint64_t max_size)
{
	return max_size - max_size / 8;
}

/* ---- open and close -------------------------------------------------------- */

/* "123", "64K", "3M", "4G", "1T" (powers of 1024; "KB"/"KiB" also fine). */
static int parse_size(const char *s, uint64_t *out)
{
	if (!s || !isdigit((unsigned char)*s))
		return TRAIN_EINVAL;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return TRAIN_EINVAL;
	uint64_t mul = 1;
	switch (toupper((unsigned char)*end)) {
	case 'K': mul = (uint64_t)1 << 10; break;
	case 'M': mul = (uint64_t)1 << 20; break;
	case 'G': mul = (uint64_t)1 << 30; break;
	case 'T': mul = (uint64_t)1 << 40; break;
	default: break;
	}
	if (mul > 1) {
		end++;
		if (end[0] == 'i' && end[1] == 'B')
			end += 2;
		else if (end[0] == 'B')
			end++;
	} else if (*end == 'B') {
		end++;
	}
	if (*end || v > UINT64_MAX / mul)
		return TRAIN_EINVAL;
	*out = v * mul;
	return TRAIN_OK;
}

/* A size from the environment, or `def` if unset or empty. */
static int env_size(const char *var, uint64_t def, uint64_t *out, train_error *err)
{
	const char *s = getenv(var);
	*out = def;
	if (!s || !*s)
		return TRAIN_OK;
	if (parse_size(s, out))
		return train_error_set(err, TRAIN_ECONFIG, NULL, 0, 0,
		                       "%s=\"%s\": expected a size in bytes such as 500M or 4G", var, s);
	if (!*out)
		*out = def;
	return TRAIN_OK;
}

static int open_dbs(train_cache *c, MDB_txn *txn, void *ctx)
{
	(void)ctx;
	int rc = mdb_dbi_open(txn, "nodes", MDB_CREATE, &c->nodes);
	if (!rc)
		rc = mdb_dbi_open(txn, "values", MDB_CREATE, &c->values);
	if (!rc)
		rc = mdb_dbi_open(txn, "atime", MDB_CREATE, &c->atime);
	if (!rc)
		rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &c->meta);
	return rc;
}

char *train_cache_default_dir(const char *dir)
{
	if (dir && *dir)
		return train_strdup(dir);
	const char *e = getenv("TRAIN_CACHE_DIR");
	if (e && *e)
		return train_strdup(e);
	e = getenv("XDG_CACHE_HOME");
	if (e && e[0] == '/') /* the XDG spec says to ignore relative paths */
		return train_path_join(e, "train");
	e = getenv("HOME");
	if (e && *e)
		return train_path_join(e, ".cache/train");
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwuid_r(getuid(), &pw, buf, sizeof buf, &res) == 0 && res && res->pw_dir && *res->pw_dir)
		return train_path_join(res->pw_dir, ".cache/train");
	return NULL;
}

int train_cache_open(const char *dir, uint64_t max_size, const train_log_sink *log,
                     train_cache **out, train_error *err)
{
	int rc;
	train_cache *c = NULL;
	uint64_t initial;

	if (!out)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_cache_open: out is NULL");
	*out = NULL;
	if (!dir || !*dir)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_cache_open: no folder");
	if (!(c = calloc(1, sizeof *c)))
		return train_error_set(err, TRAIN_ENOMEM, dir, 0, 0, "out of memory");
	if (!(c->dir = train_strdup(dir))) {
		rc = train_error_set(err, TRAIN_ENOMEM, dir, 0, 0, "out of memory");
		goto out;
	}
	if (log) {
		c->log = *log;
		c->has_log = 1;
	}
	c->maplock_ok = pthread_rwlock_init(&c->maplock, NULL) == 0;
	c->hitlock_ok = pthread_mutex_init(&c->hitlock, NULL) == 0;
	if (!c->maplock_ok || !c->hitlock_ok) {
		rc = train_error_set(err, TRAIN_ENOMEM, dir, 0, 0, "cannot create locks");
		goto out;
	}

	c->max_size = max_size;
	if (!max_size && (rc = env_size("TRAIN_CACHE_MAX_SIZE", CACHE_DEFAULT_MAX, &c->max_size, err)))
		goto out;
	if ((rc = env_size("TRAIN_CACHE_MAP_SIZE", CACHE_INITIAL_MAP, &initial, err)))
		goto out;
	if (initial > SIZE_MAX / 4)
		initial = SIZE_MAX / 4;
	if ((rc = train_mkdirs(dir, err)))
		goto out;

	if ((rc = mdb_env_create(&c->env)) || (rc = mdb_env_set_maxdbs(c->env, CACHE_MAX_DBS)) ||
	    (rc = mdb_env_set_maxreaders(c->env, CACHE_MAX_READERS))) {
		rc = cache_fail(c, err, rc, "cannot create the LMDB environment");
		goto out;
	}
	/* No map size before the open: an existing environment then keeps the size
	 * it has grown to, and a new one starts at LMDB's 1 MiB, raised below.
	 * MDB_NOTLS: reader slots belong to txns, not threads, so any thread may
	 * look up.  MDB_NOMETASYNC: commits sync the data but not the meta page;
	 * a crash of the machine may lose the last commit, a kill -9 loses nothing,
	 * and either way the file stays consistent. */
	rc = mdb_env_open(c->env, dir, MDB_NOTLS | MDB_NOMETASYNC, 0644);
	if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH) {
		rc = train_error_set(err, TRAIN_ECORRUPT, dir, 0, 0,
		                     "not a usable cache (%s); remove the folder to start afresh",
		                     mdb_strerror(rc));
		goto out;
	}
	if (rc) {
		rc = cache_fail(c, err, rc, "cannot open the cache");
		goto out;
	}
	/* Readers left behind by killed processes pin old pages: free them. */
	int dead = 0;
	if ((rc = mdb_reader_check(c->env, &dead)) || (rc = map_size_refresh(c)) ||
	    (c->map_size < initial && (rc = mdb_env_set_mapsize(c->env, (size_t)initial))) ||
	    (rc = map_size_refresh(c))) {
		rc = cache_fail(c, err, rc, "cannot set up the cache");
		goto out;
	}
	if ((rc = cache_txn(c, 0, open_dbs, NULL))) {
		rc = cache_fail(c, err, rc, "cannot open the cache databases");
		goto out;
	}
	c->dbs_open = 1;
	*out = c;
	c = NULL;
out:
	train_cache_close(c);
	return rc;
}

void train_cache_close(train_cache *c)
{
	if (!c)
		return;
	if (c->dbs_open) {
		train_error e;
		if (train_cache_flush(c, &e))
			cache_log(c, TRAIN_LOG_WARN, "could not record access times: %s", e.text);
	}
	if (c->env)
		mdb_env_close(c->env);
	if (c->maplock_ok)
		pthread_rwlock_destroy(&c->maplock);
	if (c->hitlock_ok)
		pthread_mutex_destroy(&c->hitlock);
	free(c->hits);
	free(c->dir);
	free(c);
}

/* ---- lookup ---------------------------------------------------------------- */

typedef struct lookup_ctx {
	train_fp node;
	int build;          /* 0: only check (train_cache_has) */
	train_values *out;  /* built set */
	train_fp *fps;      /* the values read, for the access times */
	size_t nfps;
} lookup_ctx;

static int lookup_txn(train_cache *c, MDB_txn *txn, void *ctx)
{
	lookup_ctx *l = ctx;
	char nhex[TRAIN_FP_HEX], vhex[TRAIN_FP_HEX];
	unsigned char kb[16];
	MDB_val key = fp_key(l->node, kb), rec;
	node_view nv;
	const char *why;
	char *name = NULL, *type = NULL;
	train_value *v = NULL;

	train_values_destroy(l->out);
	l->out = NULL;
	free(l->fps);
	l->fps = NULL;
	l->nfps = 0;

	int rc = mdb_get(txn, c->nodes, &key, &rec);
	if (rc == MDB_NOTFOUND)
		return TRAIN_ENOTFOUND;
	if (rc)
		return rc;
	if ((why = node_parse(&rec, &nv))) {
		cache_log(c, TRAIN_LOG_WARN, "node record %s is unreadable (%s); treated as a miss",
		          train_fp_hex(l->node, nhex), why);
		return TRAIN_ENOTFOUND;
	}
	if (nv.count && !(l->fps = malloc(nv.count * sizeof *l->fps)))
		return TRAIN_ENOMEM;
	if (l->build && (rc = train_values_create(&l->out)))
		goto out;
	const unsigned char *p = nv.p;
	for (uint32_t i = 0; i < nv.count; i++) {
		const char *nm;
		size_t len;
		train_fp fp;
		value_view vv;
		p = node_entry(p, &nm, &len, &fp);
		MDB_val vkey = fp_key(fp, kb);
		rc = mdb_get(txn, c->values, &vkey, &rec);
		if (rc == MDB_NOTFOUND) {
			cache_log(c, TRAIN_LOG_WARN, "node %s: value %s (output \"%.*s\") is missing; "
			          "treated as a miss", train_fp_hex(l->node, nhex), train_fp_hex(fp, vhex),
			          (int)len, nm);
			rc = TRAIN_ENOTFOUND;
			goto out;
		}
		if (rc)
			goto out;
		if ((why = value_parse(&rec, &vv))) {
			cache_log(c, TRAIN_LOG_WARN, "node %s: value record %s is unreadable (%s); "
			          "treated as a miss", train_fp_hex(l->node, nhex), train_fp_hex(fp, vhex), why);
			rc = TRAIN_ENOTFOUND;
			goto out;
		}
		l->fps[l->nfps++] = fp;
		if (!l->build)
			continue;
		/* Copy out of the map: it is only valid until the txn ends. */
		if (!(name = dup_n(nm, len)) || !(type = dup_n(vv.type, vv.type_len))) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		if ((rc = train_value_new(type, vv.data, vv.size, &v)))
			goto out;
		if (!train_fp_eq(train_value_fp(v), fp)) {
			cache_log(c, TRAIN_LOG_WARN, "node %s: value record %s holds other content; "
			          "treated as a miss", train_fp_hex(l->node, nhex), train_fp_hex(fp, vhex));
			rc = TRAIN_ENOTFOUND;
			goto out;
		}
		rc = train_values_put_take(l->out, name, v);
		v = NULL;
		if (rc)
			goto out;
		free(name);
		free(type);
		name = type = NULL;
	}
	rc = 0;
out:
	train_value_unref(v);
	free(name);
	free(type);
	if (rc) {
		train_values_destroy(l->out);
		l->out = NULL;
	}
	return rc;
}

int train_cache_lookup(train_cache *c, train_fp node, train_values **out, train_error *err)
{
	lookup_ctx l = { node, 1, NULL, NULL, 0 };
	int rc;

	if (out)
		*out = NULL;
	if (!c || !out)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_cache_lookup: NULL argument");
	rc = cache_txn(c, MDB_RDONLY, lookup_txn, &l);
	if (rc == TRAIN_ENOTFOUND) {
		char hex[TRAIN_FP_HEX];
		rc = train_error_set(err, rc, NULL, 0, 0, "no usable cache entry for node %s",
		                     train_fp_hex(node, hex));
		goto out;
	}
	if (rc) {
		rc = cache_fail(c, err, rc, "cache lookup");
		goto out;
	}
	*out = l.out;
	l.out = NULL;
	/* Access times are advice: a hit stays a hit if they cannot be kept. */
	if (hits_add(c, l.fps, l.nfps) == 0) {
		pthread_mutex_lock(&c->hitlock);
		int full = c->nhits >= CACHE_PENDING_MAX;
		pthread_mutex_unlock(&c->hitlock);
		train_error e;
		if (full && train_cache_flush(c, &e))
			cache_log(c, TRAIN_LOG_WARN, "could not record access times: %s", e.text);
	}
out:
	train_values_destroy(l.out);
	free(l.fps);
	return rc;
}

int train_cache_has(train_cache *c, train_fp node)
{
	lookup_ctx l = { node, 0, NULL, NULL, 0 };
	if (!c)
		return 0;
	int rc = cache_txn(c, MDB_RDONLY, lookup_txn, &l);
	free(l.fps);
	return rc == 0;
}

/* ---- store and flush ------------------------------------------------------- */

typedef struct store_ctx {
	train_fp node;
	const train_values *outputs;
	const train_fp *hits; /* pending access times, written in the same txn */
	size_t nhits;
} store_ctx;

/* Put one value (or, if a good record is there, only stamp it). */
static int value_put(train_cache *c, MDB_txn *txn, wstate *st, const train_value *v)
{
	train_fp fp = train_value_fp(v);
	unsigned char kb[16];
	MDB_val key = fp_key(fp, kb), rec;
	const char *type = train_value_type(v);
	size_t tl = strlen(type), size = train_value_size(v);
	atime_rec a = { 0, 0, 0 };
	value_view vv;
	const char *why = NULL;

	int have_atime = atime_get(c, txn, &key, &a) == 0;
	int rc = mdb_get(txn, c->values, &key, &rec);
	if (rc && rc != MDB_NOTFOUND)
		return rc;
	if (rc == 0 && !(why = value_parse(&rec, &vv)) && vv.size == size && vv.type_len == tl &&
	    !memcmp(vv.type, type, tl) && (!size || !memcmp(vv.data, train_value_data(v), size))) {
		if (!have_atime) /* (hand-edited cache) account for it now */
			st->total += size;
	} else {
		if (why) {
			char hex[TRAIN_FP_HEX];
			cache_log(c, TRAIN_LOG_WARN, "replacing unreadable value record %s (%s)",
			          train_fp_hex(fp, hex), why);
		}
		if (have_atime)
			st->total -= a.size < st->total ? a.size : st->total;
		rec.mv_size = value_rec_size(tl, size);
		rec.mv_data = NULL;
		/* MDB_RESERVE: build the record in place, no copy of the payload. */
		if ((rc = mdb_put(txn, c->values, &key, &rec, MDB_RESERVE)))
			return rc;
		unsigned char *p = rec.mv_data;
		train_put_u32(p + REC_HEADER, (uint32_t)tl);
		memcpy(p + REC_HEADER + 4, type, tl);
		if (size)
			memcpy(p + REC_HEADER + 4 + tl, train_value_data(v), size);
		rec_seal(p, rec.mv_size, REC_MAGIC_VALUE);
		st->total += size;
	}
	a.secs = st->now;
	a.seq = ++st->seq;
	a.size = size;
	return atime_put(c, txn, &key, &a);
}

static int store_txn(train_cache *c, MDB_txn *txn, void *ctx)
{
	store_ctx *s = ctx;
	wstate st;
	size_t n = train_values_len(s->outputs), size = REC_HEADER + 4;
	int rc = wstate_load(c, txn, &st);
	if (!rc)
		rc = hits_apply(c, txn, &st, s->hits, s->nhits);
	for (size_t i = 0; !rc && i < n; i++) {
		rc = value_put(c, txn, &st, train_values_at(s->outputs, i));
		size += 4 + strlen(train_values_name_at(s->outputs, i)) + 16;
	}
	if (rc)
		return rc;

	unsigned char kb[16];
	MDB_val key = fp_key(s->node, kb), rec = { size, NULL };
	if ((rc = mdb_put(txn, c->nodes, &key, &rec, MDB_RESERVE)))
		return rc;
	unsigned char *p = rec.mv_data;
	train_put_u32(p + REC_HEADER, (uint32_t)n);
	p += REC_HEADER + 4;
	for (size_t i = 0; i < n; i++) {
		const char *name = train_values_name_at(s->outputs, i);
		size_t len = strlen(name);
		train_put_u32(p, (uint32_t)len);
		memcpy(p + 4, name, len);
		put_fp(p + 4 + len, train_value_fp(train_values_at(s->outputs, i)));
		p += 4 + len + 16;
	}
	rec_seal(rec.mv_data, size, REC_MAGIC_NODE);

	if (st.total > c->max_size && (rc = evict(c, txn, &st, low_water(c->max_size), NULL)))
		return rc;
	return wstate_save(c, txn, &st);
}

int train_cache_store(train_cache *c, train_fp node, const train_values *outputs, train_error *err)
{
	if (!c || !outputs)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_cache_store: NULL argument");
	size_t n = train_values_len(outputs);
	if (n > UINT32_MAX)
		return train_error_set(err, TRAIN_EINVAL, c->dir, 0, 0, "too many outputs");
	for (size_t i = 0; i < n; i++) {
		const char *name = train_values_name_at(outputs, i);
		const char *type = train_value_type(train_values_at(outputs, i));
		if (strlen(name) > REC_NAME_MAX || strlen(type) > REC_TYPE_MAX)
			return train_error_set(err, TRAIN_EINVAL, c->dir, 0, 0,
			                       "output \"%.64s\": name or content type too long to cache", name);
	}

	train_fp *hits;
	size_t nhits;
	hits_take(c, &hits, &nhits);
	store_ctx s = { node, outputs, hits, nhits };
	int rc = cache_txn(c, 0, store_txn, &s);
	if (rc) {
		hits_restore(c, hits, nhits);
		char hex[TRAIN_FP_HEX];
		char what[64];
		snprintf(what, sizeof what, "cannot store node %s", train_fp_hex(node, hex));
		return cache_fail(c, err, rc, what);
	}
	free(hits);
	return TRAIN_OK;
}

typedef struct flush_ctx {
	const train_fp *hits;
	size_t nhits;
} flush_ctx;

static int flush_txn(train_cache *c, MDB_txn *txn, void *ctx)
{
	flush_ctx *f = ctx;
	wstate st;
	int rc = wstate_load(c, txn, &st);
	if (!rc)
		rc = hits_apply(c, txn, &st, f->hits, f->nhits);
	if (!rc)
		rc = wstate_save(c, txn, &st);
	return rc;
}

int train_cache_flush(train_cache *c, train_error *err)
{
	if (!c)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_cache_flush: NULL cache");
	flush_ctx f;
	train_fp *hits;
	hits_take(c, &hits, &f.nhits);
	f.hits = hits;
	if (!f.nhits) {
		free(hits);
		return TRAIN_OK;
	}
	int rc = cache_txn(c, 0, flush_txn, &f);
	if (rc) {
		hits_restore(c, hits, f.nhits);
		return cache_fail(c, err, rc, "cannot record access times");
	}
	free(hits);
	return TRAIN_OK;
}

/* ---- stats, clear, gc ------------------------------------------------------ */

static int stats_txn(train_cache *c, MDB_txn *txn, void *ctx)
{
	train_cache_stats *st = ctx;
	MDB_stat ms;
	MDB_envinfo info;
	int rc = mdb_stat(txn, c->nodes, &ms);
	if (rc)
		return rc;
	st->nodes = ms.ms_entries;
	if ((rc = mdb_stat(txn, c->values, &ms)))
		return rc;
	st->values = ms.ms_entries;
	if ((rc = meta_get(c, txn, META_BYTES, &st->value_bytes)))
		return rc;
	if ((rc = mdb_env_info(c->env, &info)))
		return rc;
	st->file_bytes = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
	st->map_size = info.me_mapsize;
	st->max_size = c->max_size;
	return 0;
}

int train_cache_stats_get(train_cache *c, train_cache_stats *st, train_error *err)
{
	if (!c || !st)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_cache_stats_get: NULL argument");
	memset(st, 0, sizeof *st);
	int rc = cache_txn(c, MDB_RDONLY, stats_txn, st);
	return rc ? cache_fail(c, err, rc, "cannot read cache statistics") : TRAIN_OK;
}

static int clear_txn(train_cache *c, MDB_txn *txn, void *ctx)
{
	(void)ctx;
	int rc = mdb_drop(txn, c->nodes, 0);
	if (!rc)
		rc = mdb_drop(txn, c->values, 0);
	if (!rc)
		rc = mdb_drop(txn, c->atime, 0);
	if (!rc)
		rc = mdb_drop(txn, c->meta, 0);
	return rc;
}

int train_cache_clear(train_cache *c, train_error *err)
{
	if (!c)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_cache_clear: NULL cache");
	train_fp *hits;
	size_t nhits;
	hits_take(c, &hits, &nhits); /* nothing left to stamp */
	free(hits);
	int rc = cache_txn(c, 0, clear_txn, NULL);
	return rc ? cache_fail(c, err, rc, "cannot clear the cache") : TRAIN_OK;
}

typedef struct live_ent {
	unsigned char key[16];
	uint64_t size;
	int used, has_atime;
} live_ent;

typedef struct gc_ctx {
	uint64_t target;
	uint64_t freed;
} gc_ctx;

static int gc_txn(train_cache *c, MDB_txn *txn, void *ctx)
{
	gc_ctx *g = ctx;
	live_ent *live = NULL;
	size_t n = 0, cap = 0, i;
	MDB_cursor *cur = NULL;
	MDB_val k, d;
	wstate st;
	char hex[TRAIN_FP_HEX];

	g->freed = 0;
	int rc = wstate_load(c, txn, &st);
	if (rc)
		goto out;

	/* 1. Values: drop unreadable records, list the good ones (in key order). */
	if ((rc = mdb_cursor_open(txn, c->values, &cur)))
		goto out;
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); !rc; rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		value_view vv;
		const char *why = k.mv_size != 16 ? "bad key" : value_parse(&d, &vv);
		if (why) {
			if (k.mv_size == 16)
				train_fp_hex(get_fp(k.mv_data), hex);
			else
				snprintf(hex, sizeof hex, "(%zu-byte key)", k.mv_size);
			cache_log(c, TRAIN_LOG_WARN, "gc: deleting unreadable value record %s (%s)", hex, why);
			if ((rc = mdb_cursor_del(cur, 0)))
				goto out;
			g->freed++;
			continue;
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 256;
			live_ent *e = realloc(live, nc * sizeof *e);
			if (!e) {
				rc = TRAIN_ENOMEM;
				goto out;
			}
			live = e;
			cap = nc;
		}
		memcpy(live[n].key, k.mv_data, 16);
		live[n].size = vv.size;
		live[n].used = live[n].has_atime = 0;
		n++;
	}
	if (rc != MDB_NOTFOUND)
		goto out;
	mdb_cursor_close(cur);
	cur = NULL;

	/* 2. Nodes: drop unreadable ones and those missing a value; mark the rest's values. */
	if ((rc = mdb_cursor_open(txn, c->nodes, &cur)))
		goto out;
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); !rc; rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		node_view nv;
		const char *why = k.mv_size != 16 ? "bad key" : node_parse(&d, &nv);
		const unsigned char *p = why ? NULL : nv.p;
		for (uint32_t j = 0; !why && j < nv.count; j++) {
			const char *name;
			size_t len;
			train_fp fp;
			unsigned char kb[16];
			p = node_entry(p, &name, &len, &fp);
			put_fp(kb, fp);
			if (!bsearch(kb, live, n, sizeof *live, key_cmp))
				why = "a value is missing";
		}
		if (why) {
			if (k.mv_size == 16)
				cache_log(c, TRAIN_LOG_DEBUG, "gc: deleting node record %s (%s)",
				          train_fp_hex(get_fp(k.mv_data), hex), why);
			if ((rc = mdb_cursor_del(cur, 0)))
				goto out;
			continue;
		}
		p = nv.p;
		for (uint32_t j = 0; j < nv.count; j++) {
			const char *name;
			size_t len;
			train_fp fp;
			unsigned char kb[16];
			p = node_entry(p, &name, &len, &fp);
			put_fp(kb, fp);
			((live_ent *)bsearch(kb, live, n, sizeof *live, key_cmp))->used = 1;
		}
	}
	if (rc != MDB_NOTFOUND)
		goto out;
	mdb_cursor_close(cur);
	cur = NULL;

	/* 3. Values no node refers to (their node was stored again with other outputs). */
	for (i = 0; i < n; i++) {
		if (live[i].used)
			continue;
		MDB_val key = { 16, live[i].key };
		if ((rc = mdb_del(txn, c->values, &key, NULL)))
			goto out;
		g->freed++;
	}

	/* 4. Access times: drop those of gone values, fix sizes, add missing ones. */
	if ((rc = mdb_cursor_open(txn, c->atime, &cur)))
		goto out;
	for (rc = mdb_cursor_get(cur, &k, &d, MDB_FIRST); !rc; rc = mdb_cursor_get(cur, &k, &d, MDB_NEXT)) {
		live_ent *e = k.mv_size == 16 ? bsearch(k.mv_data, live, n, sizeof *live, key_cmp) : NULL;
		if (!e || !e->used) {
			if ((rc = mdb_cursor_del(cur, 0)))
				goto out;
			continue;
		}
		e->has_atime = 1;
		const unsigned char *p = d.mv_data;
		if (d.mv_size != ATIME_SIZE || train_get_u64(p + 16) != e->size) {
			atime_rec a = { 0, 0, e->size };
			if (d.mv_size == ATIME_SIZE) {
				a.secs = train_get_u64(p);
				a.seq = train_get_u64(p + 8);
			}
			unsigned char buf[ATIME_SIZE];
			train_put_u64(buf, a.secs);
			train_put_u64(buf + 8, a.seq);
			train_put_u64(buf + 16, a.size);
			MDB_val nd = { ATIME_SIZE, buf };
			if ((rc = mdb_cursor_put(cur, &k, &nd, MDB_CURRENT)))
				goto out;
		}
	}
	if (rc != MDB_NOTFOUND)
		goto out;
	mdb_cursor_close(cur);
	cur = NULL;
	st.total = 0;
	for (i = 0; i < n; i++) {
		if (!live[i].used)
			continue;
		st.total += live[i].size;
		if (!live[i].has_atime) { /* never used, as far as we know: first to go */
			atime_rec a = { 0, 0, live[i].size };
			MDB_val key = { 16, live[i].key };
			if ((rc = atime_put(c, txn, &key, &a)))
				goto out;
		}
	}

	/* 5. The size bound. */
	if ((rc = evict(c, txn, &st, g->target, &g->freed)))
		goto out;
	rc = wstate_save(c, txn, &st);
out:
	if (cur)
		mdb_cursor_close(cur);
	free(live);
	return rc;
}

int train_cache_gc(train_cache *c, uint64_t max_size, uint64_t *freed_values, train_error *err)
{
	if (freed_values)
		*freed_values = 0;
	if (!c)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_cache_gc: NULL cache");
	/* Write pending access times first, so that eviction sees them. */
	int rc = train_cache_flush(c, err);
	if (rc)
		return rc;
	gc_ctx g = { max_size ? max_size : c->max_size, 0 };
	if ((rc = cache_txn(c, 0, gc_txn, &g)))
		return cache_fail(c, err, rc, "cache gc");
	if (freed_values)
		*freed_values = g.freed;
	return TRAIN_OK;
}
