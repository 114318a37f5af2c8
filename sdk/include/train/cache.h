/*
 * <train/cache.h> - the fingerprint and output caches, in one LMDB
 * environment (public, so that
 * tools can show and manage a cache).
 *
 * Databases in the environment:
 *   "nodes"  node fingerprint (16 bytes) -> record: format version, then the
 *            node's outputs as (name, output fingerprint) pairs;
 *   "values" output fingerprint (16 bytes) -> record: format version, a
 *            checksum of the rest, the content type, the bytes;
 *   "atime"  output fingerprint -> last use (u64 seconds), for LRU eviction.
 * Every record starts with a magic and a format version; one that fails
 * its checks is treated as a miss and a warning is logged, never returned.
 *
 * Size bound: max_size bytes (TRAIN_CACHE_MAX_SIZE; 0 = the default, 4 GiB).
 * After a store pushes the data past it, least-recently-used values are
 * evicted (node records whose values are gone become misses).  The LMDB map
 * starts small and doubles on MDB_MAP_FULL; a map grown by another process
 * is picked up (MDB_MAP_RESIZED).  Several processes may use one cache at
 * once (LMDB's own locking).  Commits use MDB_NOMETASYNC: a kill -9 at any
 * point leaves a consistent cache.
 */
#ifndef TRAIN_CACHE_H
#define TRAIN_CACHE_H

#include <train/common.h>
#include <train/value.h>

#ifdef __cplusplus
extern "C" {
#ifdef __cplusplus
}
#endif
#endif

typedef struct train_cache train_cache;

typedef struct train_cache_stats {
	uint64_t nodes;       /* node records */
	uint64_t values;      /* value records */
	uint64_t value_bytes; /* payload bytes of all values */
	uint64_t file_bytes;  /* bytes used in the LMDB file (pages in use * page size) */
	uint64_t map_size;    /* current LMDB map size */
	uint64_t max_size;    /* the size bound */
} train_cache_stats;

/*
 * The cache folder for a run: `dir` if not NULL, else $TRAIN_CACHE_DIR,
 * else $XDG_CACHE_HOME/train, else $HOME/.cache/train.  malloc'd.
 */
TRAIN_API char *train_cache_default_dir(const char *dir);

/* Open (creating the folder and the environment if needed).  `log` may be
 * NULL.  max_size 0: TRAIN_CACHE_MAX_SIZE from the environment, else 4 GiB. */
TRAIN_API int train_cache_open(const char *dir, uint64_t max_size, const train_log_sink *log,
                     train_cache **out, train_error *err);
/* Flushes pending access times; NULL is fine. */
TRAIN_API void train_cache_close(train_cache *c);

/*
 * Look up a node.  On a hit: TRAIN_OK and *out a new value set with the
 * node's outputs (caller destroys it).  On a miss, or when the node record
 * or any of its values is missing or corrupt (warning logged): TRAIN_ENOTFOUND.
 * Hits are remembered and their access times written at train_cache_flush().
 */
TRAIN_API int train_cache_lookup(train_cache *c, train_fp node, train_values **out, train_error *err);
/* 1 if the node has a complete, readable entry (a dry run's check). */
TRAIN_API int train_cache_has(train_cache *c, train_fp node);
/*
 * Store a node's outputs: every value under its fingerprint, then the node
 * record, in one write transaction; then evict if over the bound.
 */
TRAIN_API int train_cache_store(train_cache *c, train_fp node, const train_values *outputs, train_error *err);
/* Write the access times of the hits since the last flush (one transaction). */
TRAIN_API int train_cache_flush(train_cache *c, train_error *err);

TRAIN_API int train_cache_stats_get(train_cache *c, train_cache_stats *st, train_error *err);
/* Delete every record. */
TRAIN_API int train_cache_clear(train_cache *c, train_error *err);
/* Evict LRU values until the data fits max_size (0: the cache's bound), drop
 * node records that point at missing values.  *freed_values may be NULL. */
TRAIN_API int train_cache_gc(train_cache *c, uint64_t max_size, uint64_t *freed_values, train_error *err);

#ifdef __cplusplus
}
#endif
#endif
