/*
 * <train/cache.h> - the fingerprint and output caches, in one LMDB
 * environment (public, so that tools can show and manage a cache).
 *
 * A node's fingerprint covers everything that decides its outputs; the
 * cache maps it to those outputs, so that a later run with the same
 * fingerprint skips the node.  Values are stored once under their own
 * fingerprint (train_value_fp()), however many nodes produce them.
 *
 * Databases in the environment (keys are 16-byte fingerprints: `hi` then
 * `lo`, each little-endian):
 *   "nodes"  node fingerprint -> record: the node's outputs as
 *            (name, value fingerprint) pairs;
 *   "values" value fingerprint -> record: the content type and the bytes;
 *   "atime"  value fingerprint -> last use (u64 seconds, u64 sequence
 *            number, u64 payload size), for LRU eviction;
 *   "meta"   counters: payload bytes of all values, last sequence number.
 * Every record starts with a magic ("TRND", "TRVC"), a u16 format version
 * and an XXH3-64 checksum of the rest.  A record that fails a check (short,
 * wrong magic or version, bad checksum, a value whose content does not
 * match its fingerprint, a node pointing at a missing value) is a miss: a
 * warning naming the fingerprint goes to the log sink, and neither an
 * error nor wrong data is ever returned.  Storing the node again repairs it.
 *
 * Size bound: the payload bytes of all values (types and record headers
 * not counted) are kept under max_size.  When a store pushes them past it,
 * least-recently-used values are evicted down to 7/8 of the bound (so that
 * the scan of access times runs once per eighth of the bound stored, not at
 * every store), with the node records that referred to them.  A single
 * store bigger than the bound is therefore stored and evicted at once.
 * "Use" is a store or a lookup hit; hits are remembered in memory and
 * written by train_cache_flush() (or the next store, or close).
 *
 * The LMDB map starts at 64 MiB (or the size an existing cache has grown
 * to) and doubles on MDB_MAP_FULL; a map grown by another process is
 * adopted (MDB_MAP_RESIZED).  The file only takes the pages in use.
 *
 * Environment variables, read by train_cache_open():
 *   TRAIN_CACHE_MAX_SIZE  the bound when max_size is 0: bytes, or with a
 *                         suffix K, M, G, T (powers of 1024; "MB", "MiB"
 *                         also accepted).  Unset, empty or 0: 4 GiB.
 *   TRAIN_CACHE_MAP_SIZE  the first map size (same syntax), for tests.
 *
 * Processes: several processes may use one cache folder at once (LMDB's
 * own locking; writers take turns, readers never wait).  Commits use
 * MDB_NOMETASYNC: a kill -9 at any point leaves a consistent cache, and a
 * crash of the machine loses at most the last commit.  Reader slots of
 * killed processes are freed at open and when the reader table is full.
 * A process must open a given folder at most once (an LMDB rule), and a
 * child after fork() must open its own handle, not use its parent's.
 *
 * Threads: a train_cache may be used from several threads at once.
 * Lookups run in parallel; stores take turns.
 */
#ifndef TRAIN_CACHE_H
#define TRAIN_CACHE_H

#include <train/common.h>
#include <train/value.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An open cache (opaque).  From train_cache_open(), freed by train_cache_close(). */
typedef struct train_cache train_cache;

/** What train_cache_stats_get() reports. */
typedef struct train_cache_stats {
	uint64_t nodes;       /**< node records */
	uint64_t values;      /**< value records */
	uint64_t value_bytes; /**< payload bytes of all values (what max_size bounds) */
	uint64_t file_bytes;  /**< high-water mark of the LMDB file: (last page + 1) * page size;
	                           pages freed by eviction are reused, not returned */
	uint64_t map_size;    /**< current LMDB map size */
	uint64_t max_size;    /**< the size bound */
} train_cache_stats;

/**
 * The cache folder for a run: `dir` if not NULL or empty, else
 * $TRAIN_CACHE_DIR if not empty, else $XDG_CACHE_HOME/train if that is an
 * absolute path, else $HOME/.cache/train (the password database's home
 * when $HOME is unset).
 * @return a malloc'd path (the caller frees it), or NULL if out of memory
 *         or no home folder is known.
 */
TRAIN_API char *train_cache_default_dir(const char *dir);

/**
 * Open a cache, creating the folder (mkdir -p) and the environment if
 * needed, and free the reader slots of dead processes.
 * @param[in] dir       the cache folder (see train_cache_default_dir()).
 * @param[in] max_size  the size bound in payload bytes; 0: TRAIN_CACHE_MAX_SIZE,
 *                      else 4 GiB.
 * @param[in] log       where warnings (corrupt records) go; copied, so only
 *                      `log->ud` must outlive the cache.  NULL: stderr.
 * @param[out] out      the cache; NULL on failure.
 * @param[out] err      filled on failure; may be NULL.
 * @return TRAIN_OK, or
 *   - TRAIN_EINVAL: `dir` or `out` NULL;
 *   - TRAIN_ECONFIG: TRAIN_CACHE_MAX_SIZE or TRAIN_CACHE_MAP_SIZE is not a size;
 *   - -errno: the folder cannot be created;
 *   - TRAIN_ECORRUPT: the folder holds a file that is not an LMDB environment
 *     of this LMDB version (remove the folder);
 *   - TRAIN_ECACHE: another LMDB failure (permissions, disk full, ...);
 *   - TRAIN_ENOMEM.
 */
TRAIN_API int train_cache_open(const char *dir, uint64_t max_size, const train_log_sink *log,
                               train_cache **out, train_error *err);

/**
 * Write pending access times (a failure is logged) and close.  No call on
 * `c` may be running in another thread.  NULL is fine.
 */
TRAIN_API void train_cache_close(train_cache *c);

/**
 * Look up a node.  The values are copied out of the map, so the set owes
 * nothing to the cache.  A hit is remembered and its access time written
 * at the next flush (a lookup flushes by itself after 4096 unwritten hits).
 * @param[in] c     the cache.
 * @param[in] node  the node's fingerprint.
 * @param[out] out  on a hit, a new set mapping each output name to its value
 *                  (the caller destroys it); NULL otherwise.
 * @param[out] err  filled on failure (a miss included); may be NULL.
 * @return TRAIN_OK on a hit, or
 *   - TRAIN_ENOTFOUND: no entry, or the node record or one of its values is
 *     missing or fails its checks (a warning is logged for those);
 *   - TRAIN_EINVAL: `c` or `out` NULL;
 *   - TRAIN_ECACHE: LMDB failed (callers may treat it as a miss);
 *   - TRAIN_ENOMEM.
 */
TRAIN_API int train_cache_lookup(train_cache *c, train_fp node, train_values **out, train_error *err);

/**
 * 1 if the node has a complete entry whose records pass their checks (what
 * a dry run asks), else 0 (errors included).  Cheaper than a lookup: no
 * copies, and the values are not rehashed against their fingerprints (the
 * checksums are checked).  Not a use: no access time is recorded.
 */
TRAIN_API int train_cache_has(train_cache *c, train_fp node);

/**
 * Store a node's outputs: every value under its fingerprint (a value
 * already stored intact is not written again), then the node record
 * (replacing any earlier one), in one write transaction, which also writes
 * the pending access times and, when the payload passes the bound, evicts.
 * The stored values count as used now.
 * @param[in] outputs  output name -> value; may be empty.  Names are at most
 *                     4096 bytes, content types 1024.
 * @return TRAIN_OK, or
 *   - TRAIN_EINVAL: a NULL argument, or a name or type too long;
 *   - TRAIN_ECACHE: LMDB failed (disk full, the map cannot grow, ...);
 *   - TRAIN_ENOMEM.
 */
TRAIN_API int train_cache_store(train_cache *c, train_fp node, const train_values *outputs,
                                train_error *err);

/**
 * Write the access times of the hits since the last flush, in one write
 * transaction.  Values evicted meanwhile are skipped.  On failure the hits
 * are kept for the next try.
 * @return TRAIN_OK, TRAIN_EINVAL (`c` NULL), TRAIN_ECACHE or TRAIN_ENOMEM.
 */
TRAIN_API int train_cache_flush(train_cache *c, train_error *err);

/**
 * Counts and sizes, from one read transaction.
 * @return TRAIN_OK, TRAIN_EINVAL (a NULL argument) or TRAIN_ECACHE.
 */
TRAIN_API int train_cache_stats_get(train_cache *c, train_cache_stats *st, train_error *err);

/**
 * Delete every record (in one write transaction; the file keeps its size,
 * its pages are reused) and forget pending hits.
 * @return TRAIN_OK, TRAIN_EINVAL (`c` NULL) or TRAIN_ECACHE.
 */
TRAIN_API int train_cache_clear(train_cache *c, train_error *err);

/**
 * Check and trim the whole cache in one write transaction: delete value
 * records that fail their checks, node records that fail theirs or point
 * at a missing value, and values no node refers to; recount the payload
 * bytes; then evict least-recently-used values until the payload is at
 * most `max_size` (exactly, no slack).  Pending hits are flushed first.
 * Reads every record, so it costs a pass over the file; meant for
 * `train cache gc`, not for every run.
 * @param[in] max_size       the bound for this pass; 0: the cache's bound.
 * @param[out] freed_values  value records deleted, for any reason; may be NULL.
 * @return TRAIN_OK, TRAIN_EINVAL (`c` NULL), TRAIN_ECACHE or TRAIN_ENOMEM.
 */
TRAIN_API int train_cache_gc(train_cache *c, uint64_t max_size, uint64_t *freed_values,
                             train_error *err);

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_CACHE_H */
