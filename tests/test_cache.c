/*
 * test_cache.c - the LMDB fingerprint/output cache (libtrain/cache.c).
 *
 * Corruption tests open the environment with the LMDB API directly (with
 * the cache closed: LMDB forbids one environment open twice in a process)
 * and damage records the way a disk or a foreign writer could.  Process
 * tests fork children that open their own handle.
 */
#include <train/cache.h>

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "testlib.h"

/* ---- helpers --------------------------------------------------------------- */

static char log_text[16384];
static int log_warns;

static void log_fn(void *ud, train_log_level level, const char *msg)
{
	(void)ud;
	if (level == TRAIN_LOG_WARN)
		log_warns++;
	size_t len = strlen(log_text);
	snprintf(log_text + len, sizeof log_text - len, "%s\n", msg);
}

static const train_log_sink sink = { log_fn, NULL, TRAIN_LOG_WARN };

static void log_reset(void)
{
	log_text[0] = '\0';
	log_warns = 0;
}

static train_fp node_fp(int i)
{
	train_fp fp = { 0x1000u + (uint64_t)i, 0xfeedfacecafebeefu ^ (uint64_t)i };
	return fp;
}

/* Deterministic bytes for value `seed`. */
static void fill(unsigned char *p, size_t size, int seed)
{
	uint64_t x = 0x9e3779b97f4a7c15u * (uint64_t)(seed + 1);
	for (size_t i = 0; i < size; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)x;
	}
}

/* A set with one output "out" of `size` bytes made from `seed`. */
static train_values *outputs_of(int seed, size_t size)
{
	train_values *s = NULL;
	unsigned char *buf = malloc(size ? size : 1);
	if (!buf || train_values_create(&s))
		abort();
	fill(buf, size, seed);
	if (train_values_put_bytes(s, "out", "application/octet-stream", buf, size))
		abort();
	free(buf);
	return s;
}

static int store_seed(train_cache *c, int node, int seed, size_t size)
{
	train_values *s = outputs_of(seed, size);
	int rc = train_cache_store(c, node_fp(node), s, NULL);
	train_values_destroy(s);
	return rc;
}

/* 1 if `node` hits with the output that store_seed(node, seed, size) stored. */
static int hits_seed(train_cache *c, int node, int seed, size_t size)
{
	train_values *got = NULL;
	if (train_cache_lookup(c, node_fp(node), &got, NULL))
		return 0;
	const train_value *v = train_values_get(got, "out");
	unsigned char *want = malloc(size ? size : 1);
	fill(want, size, seed);
	int ok = train_values_len(got) == 1 && v && train_value_size(v) == size &&
	         !strcmp(train_value_type(v), "application/octet-stream") &&
	         (size == 0 || !memcmp(train_value_data(v), want, size));
	free(want);
	train_values_destroy(got);
	return ok;
}

static train_cache *open_cache(const char *dir, uint64_t max_size)
{
	train_cache *c = NULL;
	train_error err;
	int rc = train_cache_open(dir, max_size, &sink, &c, &err);
	if (rc) {
		fprintf(stderr, "open %s: %s\n", dir, err.text);
		return NULL;
	}
	return c;
}

static train_cache_stats stats_of(train_cache *c)
{
	train_cache_stats st;
	memset(&st, 0xff, sizeof st);
	CU_ASSERT_EQUAL(train_cache_stats_get(c, &st, NULL), TRAIN_OK);
	return st;
}

/* ---- raw LMDB access (the cache must be closed) ----------------------------- */

static void raw_key(train_fp fp, unsigned char k[16])
{
	for (int i = 0; i < 8; i++) {
		k[i] = (unsigned char)(fp.hi >> (8 * i));
		k[8 + i] = (unsigned char)(fp.lo >> (8 * i));
	}
}

/* Get (copy out), put or delete one record; `op` is 'g', 'p' or 'd'. */
static int raw_op(const char *dir, const char *db, train_fp fp, char op, unsigned char **buf,
                  size_t *size)
{
	MDB_env *env = NULL;
	MDB_txn *txn = NULL;
	MDB_dbi dbi;
	unsigned char kb[16];
	MDB_val k = { 16, kb }, d;
	raw_key(fp, kb);
	int rc = mdb_env_create(&env);
	if (!rc)
		rc = mdb_env_set_maxdbs(env, 8);
	if (!rc)
		rc = mdb_env_open(env, dir, 0, 0644);
	if (!rc)
		rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (!rc)
		rc = mdb_dbi_open(txn, db, 0, &dbi);
	if (!rc && op == 'g') {
		rc = mdb_get(txn, dbi, &k, &d);
		if (!rc) {
			*buf = malloc(d.mv_size + 1);
			memcpy(*buf, d.mv_data, d.mv_size);
			*size = d.mv_size;
		}
	} else if (!rc && op == 'p') {
		d.mv_size = *size;
		d.mv_data = *buf;
		rc = mdb_put(txn, dbi, &k, &d, 0);
	} else if (!rc && op == 'd') {
		rc = mdb_del(txn, dbi, &k, NULL);
	}
	if (txn) {
		if (!rc)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
	}
	mdb_env_close(env);
	if (rc)
		fprintf(stderr, "raw %c %s: %s\n", op, db, mdb_strerror(rc));
	return rc;
}

/* The fingerprint of the output stored by store_seed(_, seed, size). */
static train_fp value_fp_of(int seed, size_t size)
{
	train_values *s = outputs_of(seed, size);
	train_fp fp = train_value_fp(train_values_get(s, "out"));
	train_values_destroy(s);
	return fp;
}

/* ---- a second process ------------------------------------------------------ */

/*
 * Children are this program run again as a worker (fork + exec), so that
 * they are fresh processes like two `train` runs, and so that valgrind does
 * not count the parent's heap, inherited by a plain fork, as their leaks.
 *   test_cache --worker DIR FIRST COUNT SIZE WAITFD
 * waits for a byte on WAITFD (-1: no wait), stores nodes FIRST.. with
 * store_seed(n, n, SIZE + i), reads every 7th back, and exits 0 if all went well.
 */
static int worker_main(char **argv)
{
	const char *dir = argv[0];
	int first = atoi(argv[1]), count = atoi(argv[2]), size = atoi(argv[3]), fd = atoi(argv[4]);
	char ch;
	if (fd >= 0 && read(fd, &ch, 1) != 1)
		return 2;
	train_cache *c = NULL;
	int bad = train_cache_open(dir, 0, NULL, &c, NULL) != 0;
	for (int i = 0; !bad && i < count; i++)
		bad = store_seed(c, first + i, first + i, (size_t)(size + i)) != 0;
	for (int i = 0; !bad && i < count; i += 7)
		bad = !hits_seed(c, first + i, first + i, (size_t)(size + i));
	train_cache_close(c);
	return bad;
}

static const char *self_exe; /* this program, for worker_spawn() */

static pid_t worker_spawn(const char *dir, int first, int count, int size, int fd)
{
	char a[4][32];
	snprintf(a[0], sizeof a[0], "%d", first);
	snprintf(a[1], sizeof a[1], "%d", count);
	snprintf(a[2], sizeof a[2], "%d", size);
	snprintf(a[3], sizeof a[3], "%d", fd);
	pid_t pid = fork();
	if (pid == 0) {
		execl(self_exe, self_exe, "--worker", dir, a[0], a[1], a[2], a[3], (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int worker_wait(pid_t pid)
{
	int status = 0;
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* ---- tests ----------------------------------------------------------------- */

static void test_roundtrip(void)
{
	const char *dir = test_tmpdir();
	train_cache *c = open_cache(dir, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);

	static const unsigned char bin[] = { 0, 1, 2, 0xff, 0, 0x80, 'x', 0 };
	train_values *s = NULL;
	CU_ASSERT_FATAL(train_values_create(&s) == TRAIN_OK);
	CU_ASSERT(train_values_put_bytes(s, "text", "text/plain", "hello", 5) == TRAIN_OK);
	CU_ASSERT(train_values_put_bytes(s, "blob", "application/octet-stream", bin, sizeof bin) == TRAIN_OK);
	CU_ASSERT(train_values_put_bytes(s, "empty", "vendor/nothing", NULL, 0) == TRAIN_OK);
	CU_ASSERT_EQUAL(train_cache_store(c, node_fp(1), s, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(train_cache_has(c, node_fp(1)), 1);

	train_values *got = NULL;
	CU_ASSERT_EQUAL_FATAL(train_cache_lookup(c, node_fp(1), &got, NULL), TRAIN_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(got);
	CU_ASSERT_EQUAL(train_values_len(got), 3);
	for (size_t i = 0; i < train_values_len(s); i++) {
		const char *name = train_values_name_at(s, i);
		const train_value *a = train_values_at(s, i), *b = train_values_get(got, name);
		CU_ASSERT_PTR_NOT_NULL_FATAL(b);
		CU_ASSERT_STRING_EQUAL(train_value_type(a), train_value_type(b));
		CU_ASSERT_EQUAL(train_value_size(a), train_value_size(b));
		CU_ASSERT(train_value_size(a) == 0 ||
		          !memcmp(train_value_data(a), train_value_data(b), train_value_size(a)));
		CU_ASSERT(train_fp_eq(train_value_fp(a), train_value_fp(b)));
	}
	train_values_destroy(got);

	/* An empty output set is a valid entry too. */
	train_values *none = NULL;
	CU_ASSERT_FATAL(train_values_create(&none) == TRAIN_OK);
	CU_ASSERT_EQUAL(train_cache_store(c, node_fp(2), none, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(train_cache_lookup(c, node_fp(2), &got, NULL), TRAIN_OK);
	CU_ASSERT(got && train_values_len(got) == 0);
	train_values_destroy(got);
	train_values_destroy(none);

	/* Storing a node again replaces its outputs. */
	train_values *s2 = outputs_of(7, 100);
	CU_ASSERT_EQUAL(train_cache_store(c, node_fp(1), s2, NULL), TRAIN_OK);
	CU_ASSERT(hits_seed(c, 1, 7, 100));
	train_values_destroy(s2);
	train_values_destroy(s);
	train_cache_close(c);
}

static void test_miss(void)
{
	const char *dir = test_tmpdir();
	train_cache *c = open_cache(dir, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	log_reset();
	train_values *got = (train_values *)&got; /* must be reset to NULL */
	train_error err;
	CU_ASSERT_EQUAL(train_cache_lookup(c, node_fp(42), &got, &err), TRAIN_ENOTFOUND);
	CU_ASSERT_PTR_NULL(got);
	CU_ASSERT_EQUAL(err.code, TRAIN_ENOTFOUND);
	CU_ASSERT_EQUAL(train_cache_has(c, node_fp(42)), 0);
	CU_ASSERT_EQUAL(store_seed(c, 1, 1, 10), TRAIN_OK);
	CU_ASSERT_EQUAL(train_cache_lookup(c, node_fp(42), &got, NULL), TRAIN_ENOTFOUND);
	CU_ASSERT_EQUAL(log_warns, 0); /* a plain miss is not worth a warning */
	train_cache_close(c);
}

static void test_bad_args(void)
{
	const char *dir = test_tmpdir();
	train_cache *c = (train_cache *)&c;
	train_values *got = NULL;
	CU_ASSERT_EQUAL(train_cache_open(NULL, 0, NULL, &c, NULL), TRAIN_EINVAL);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_EQUAL(train_cache_open(dir, 0, NULL, NULL, NULL), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_cache_lookup(NULL, node_fp(1), &got, NULL), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_cache_store(NULL, node_fp(1), NULL, NULL), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_cache_has(NULL, node_fp(1)), 0);
	CU_ASSERT_EQUAL(train_cache_flush(NULL, NULL), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_cache_clear(NULL, NULL), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_cache_gc(NULL, 0, NULL, NULL), TRAIN_EINVAL);
	train_cache_close(NULL);

	/* A folder that cannot be created: a file is in the way. */
	char path[600];
	snprintf(path, sizeof path, "%s/file", dir);
	test_write(path, "x");
	snprintf(path, sizeof path, "%s/file/cache", dir);
	train_error err;
	CU_ASSERT(train_cache_open(path, 0, NULL, &c, &err) < 0);
	CU_ASSERT_PTR_NULL(c);

	/* A folder holding garbage where the LMDB file should be. */
	snprintf(path, sizeof path, "%s/bad", dir);
	CU_ASSERT_EQUAL(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/bad/data.mdb", dir);
	char junk[8192];
	memset(junk, 'j', sizeof junk - 1);
	junk[sizeof junk - 1] = '\0';
	test_write(path, junk);
	snprintf(path, sizeof path, "%s/bad", dir);
	CU_ASSERT_EQUAL(train_cache_open(path, 0, &sink, &c, &err), TRAIN_ECORRUPT);
	CU_ASSERT_PTR_NULL(c);
}

/* Damage one record of an entry, reopen, expect a miss with a warning naming
 * the fingerprint, then check that storing again repairs the entry. */
static void corrupt_case(const char *dir, const char *what, const char *db, char op,
                         void (*damage)(unsigned char **buf, size_t *size))
{
	char nhex[TRAIN_FP_HEX], vhex[TRAIN_FP_HEX];
	train_fp vfp = value_fp_of(5, 300);
	train_fp key = !strcmp(db, "nodes") ? node_fp(5) : vfp;
	train_fp_hex(node_fp(5), nhex);
	train_fp_hex(vfp, vhex);

	train_cache *c = open_cache(dir, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(store_seed(c, 5, 5, 300), TRAIN_OK);
	CU_ASSERT_EQUAL(store_seed(c, 6, 6, 300), TRAIN_OK);
	CU_ASSERT(hits_seed(c, 5, 5, 300));
	train_cache_close(c);

	unsigned char *buf = NULL;
	size_t size = 0;
	if (op == 'd') {
		CU_ASSERT_EQUAL(raw_op(dir, db, key, 'd', NULL, NULL), 0);
	} else {
		CU_ASSERT_EQUAL_FATAL(raw_op(dir, db, key, 'g', &buf, &size), 0);
		damage(&buf, &size);
		CU_ASSERT_EQUAL(raw_op(dir, db, key, 'p', &buf, &size), 0);
		free(buf);
	}

	c = open_cache(dir, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	log_reset();
	train_values *got = NULL;
	int rc = train_cache_lookup(c, node_fp(5), &got, NULL);
	if (rc != TRAIN_ENOTFOUND)
		fprintf(stderr, "case %s: lookup gave %d\n", what, rc);
	CU_ASSERT_EQUAL(rc, TRAIN_ENOTFOUND);
	CU_ASSERT_PTR_NULL(got);
	CU_ASSERT_EQUAL(log_warns, 1);
	CU_ASSERT_PTR_NOT_NULL(strstr(log_text, !strcmp(db, "nodes") ? nhex : vhex));
	CU_ASSERT_EQUAL(train_cache_has(c, node_fp(5)), 0);
	CU_ASSERT(hits_seed(c, 6, 6, 300)); /* the neighbour is fine */

	CU_ASSERT_EQUAL(store_seed(c, 5, 5, 300), TRAIN_OK);
	CU_ASSERT(hits_seed(c, 5, 5, 300));
	train_cache_close(c);
}

static void flip_last(unsigned char **buf, size_t *size)
{
	(*buf)[*size - 1] ^= 0x40;
}
static void flip_middle(unsigned char **buf, size_t *size)
{
	(*buf)[*size / 2] ^= 0x01;
}
static void truncate_short(unsigned char **buf, size_t *size)
{
	(void)buf;
	*size = 10;
}
static void truncate_tail(unsigned char **buf, size_t *size)
{
	(void)buf;
	*size -= 7;
}
static void bad_magic(unsigned char **buf, size_t *size)
{
	(void)size;
	(*buf)[0] = 'X';
}
static void bad_version(unsigned char **buf, size_t *size)
{
	(void)size;
	(*buf)[4] = 99;
}
static void garbage(unsigned char **buf, size_t *size)
{
	fill(*buf, *size, 1234);
}
static void empty(unsigned char **buf, size_t *size)
{
	(void)buf;
	*size = 0;
}

static void test_corrupt(void)
{
	const char *dir = test_tmpdir();
	corrupt_case(dir, "value: flipped payload byte", "values", 'p', flip_last);
	corrupt_case(dir, "value: flipped middle byte", "values", 'p', flip_middle);
	corrupt_case(dir, "value: short", "values", 'p', truncate_short);
	corrupt_case(dir, "value: truncated", "values", 'p', truncate_tail);
	corrupt_case(dir, "value: magic", "values", 'p', bad_magic);
	corrupt_case(dir, "value: version", "values", 'p', bad_version);
	corrupt_case(dir, "value: garbage", "values", 'p', garbage);
	corrupt_case(dir, "value: empty", "values", 'p', empty);
	corrupt_case(dir, "value: missing", "values", 'd', NULL);
	corrupt_case(dir, "node: flipped byte", "nodes", 'p', flip_middle);
	corrupt_case(dir, "node: short", "nodes", 'p', truncate_short);
	corrupt_case(dir, "node: truncated", "nodes", 'p', truncate_tail);
	corrupt_case(dir, "node: magic", "nodes", 'p', bad_magic);
	corrupt_case(dir, "node: garbage", "nodes", 'p', garbage);
}

/* A well-formed record under the wrong key (another value's content). */
static void test_corrupt_swapped(void)
{
	const char *dir = test_tmpdir();
	train_cache *c = open_cache(dir, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(store_seed(c, 1, 1, 64), TRAIN_OK);
	CU_ASSERT_EQUAL(store_seed(c, 2, 2, 64), TRAIN_OK);
	train_cache_close(c);

	unsigned char *buf = NULL;
	size_t size = 0;
	CU_ASSERT_EQUAL_FATAL(raw_op(dir, "values", value_fp_of(2, 64), 'g', &buf, &size), 0);
	CU_ASSERT_EQUAL(raw_op(dir, "values", value_fp_of(1, 64), 'p', &buf, &size), 0);
	free(buf);

	c = open_cache(dir, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	log_reset();
	train_values *got = NULL;
	CU_ASSERT_EQUAL(train_cache_lookup(c, node_fp(1), &got, NULL), TRAIN_ENOTFOUND);
	CU_ASSERT_PTR_NULL(got);
	CU_ASSERT_EQUAL(log_warns, 1);
	CU_ASSERT(hits_seed(c, 2, 2, 64));
	train_cache_close(c);
}

static void test_map_growth(void)
{
	const char *dir = test_tmpdir();
	setenv("TRAIN_CACHE_MAP_SIZE", "1M", 1);
	train_cache *c = open_cache(dir, 0);
	unsetenv("TRAIN_CACHE_MAP_SIZE");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	train_cache_stats st = stats_of(c);
	CU_ASSERT(st.map_size >= (1u << 20) && st.map_size < (2u << 20));

	const size_t sz = 256 << 10;
	for (int i = 0; i < 24; i++) /* 6 MiB */
		CU_ASSERT_EQUAL(store_seed(c, i, i, sz), TRAIN_OK);
	CU_ASSERT_EQUAL(store_seed(c, 100, 100, 3 << 20), TRAIN_OK); /* one value > 2x the start */
	st = stats_of(c);
	CU_ASSERT(st.map_size >= (8u << 20));
	CU_ASSERT_EQUAL(st.values, 25);
	CU_ASSERT_EQUAL(st.value_bytes, 24 * sz + (3 << 20));
	CU_ASSERT(st.file_bytes >= st.value_bytes && st.file_bytes <= st.map_size);
	for (int i = 0; i < 24; i++)
		CU_ASSERT(hits_seed(c, i, i, sz));
	CU_ASSERT(hits_seed(c, 100, 100, 3 << 20));
	train_cache_close(c);
}

/* Another process grows the map while this one has the cache open. */
static void test_map_resized(void)
{
	const char *dir = test_tmpdir();
	setenv("TRAIN_CACHE_MAP_SIZE", "1M", 1);
	train_cache *c = open_cache(dir, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(store_seed(c, 1, 1, 1000), TRAIN_OK);
	uint64_t before = stats_of(c).map_size;

	pid_t pid = worker_spawn(dir, 100, 16, 256 << 10, -1);
	CU_ASSERT(worker_wait(pid));
	unsetenv("TRAIN_CACHE_MAP_SIZE");

	/* Reads and writes past our old map need the map the child made. */
	for (int i = 0; i < 16; i++)
		CU_ASSERT(hits_seed(c, 100 + i, 100 + i, (256 << 10) + (size_t)i));
	CU_ASSERT_EQUAL(store_seed(c, 2, 2, 1000), TRAIN_OK);
	CU_ASSERT(hits_seed(c, 1, 1, 1000));
	CU_ASSERT(hits_seed(c, 2, 2, 1000));
	CU_ASSERT(stats_of(c).map_size > before);
	train_cache_close(c);
}

static void test_lru_eviction(void)
{
	const char *dir = test_tmpdir();
	train_cache *c = open_cache(dir, 10000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (int i = 0; i < 10; i++)
		CU_ASSERT_EQUAL(store_seed(c, i, i, 1000), TRAIN_OK);
	train_cache_stats st = stats_of(c);
	CU_ASSERT_EQUAL(st.values, 10); /* at the bound, not past it */
	CU_ASSERT_EQUAL(st.value_bytes, 10000);

	/* Use the two oldest; the next store writes their access times first. */
	CU_ASSERT(hits_seed(c, 0, 0, 1000));
	CU_ASSERT(hits_seed(c, 1, 1, 1000));
	log_reset();
	CU_ASSERT_EQUAL(store_seed(c, 10, 10, 1000), TRAIN_OK);

	/* 11000 > 10000: down to 7/8 of the bound, i.e. nodes 2, 3, 4 go. */
	st = stats_of(c);
	CU_ASSERT_EQUAL(st.values, 8);
	CU_ASSERT_EQUAL(st.nodes, 8); /* their node records went with them */
	CU_ASSERT_EQUAL(st.value_bytes, 8000);
	CU_ASSERT(st.value_bytes <= st.max_size);
	for (int i = 2; i <= 4; i++)
		CU_ASSERT_EQUAL(train_cache_has(c, node_fp(i)), 0);
	for (int i = 5; i <= 10; i++)
		CU_ASSERT(hits_seed(c, i, i, 1000));
	CU_ASSERT(hits_seed(c, 0, 0, 1000));
	CU_ASSERT(hits_seed(c, 1, 1, 1000));
	CU_ASSERT_EQUAL(log_warns, 0); /* an evicted entry is a plain miss */

	/* An explicit flush also counts: use 5 and 6, flush, then push 3 out. */
	CU_ASSERT(hits_seed(c, 5, 5, 1000));
	CU_ASSERT(hits_seed(c, 6, 6, 1000));
	CU_ASSERT_EQUAL(train_cache_flush(c, NULL), TRAIN_OK);
	for (int i = 11; i <= 13; i++)
		CU_ASSERT_EQUAL(store_seed(c, i, i, 1000), TRAIN_OK);
	/* 11000 again: the three oldest now are 7, 8, 9. */
	for (int i = 7; i <= 9; i++)
		CU_ASSERT_EQUAL(train_cache_has(c, node_fp(i)), 0);
	CU_ASSERT(train_cache_has(c, node_fp(5)) && train_cache_has(c, node_fp(6)));
	CU_ASSERT(train_cache_has(c, node_fp(13)));
	train_cache_close(c);
}

/* A value shared by two nodes: evicting it drops both node records. */
static void test_lru_shared_value(void)
{
	const char *dir = test_tmpdir();
	train_cache *c = open_cache(dir, 3000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	train_values *s = outputs_of(1, 1000);
	CU_ASSERT_EQUAL(train_cache_store(c, node_fp(1), s, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(train_cache_store(c, node_fp(2), s, NULL), TRAIN_OK);
	train_values_destroy(s);
	train_cache_stats st = stats_of(c);
	CU_ASSERT_EQUAL(st.values, 1);
	CU_ASSERT_EQUAL(st.nodes, 2);
	CU_ASSERT_EQUAL(st.value_bytes, 1000);
	CU_ASSERT_EQUAL(store_seed(c, 3, 3, 1000), TRAIN_OK);
	CU_ASSERT_EQUAL(store_seed(c, 4, 4, 1500), TRAIN_OK); /* 3500 > 3000 -> <= 2625 */
	st = stats_of(c);
	CU_ASSERT_EQUAL(st.nodes, 2);
	CU_ASSERT_EQUAL(st.values, 2);
	CU_ASSERT_EQUAL(st.value_bytes, 2500);
	CU_ASSERT_EQUAL(train_cache_has(c, node_fp(1)), 0);
	CU_ASSERT_EQUAL(train_cache_has(c, node_fp(2)), 0);
	CU_ASSERT(hits_seed(c, 3, 3, 1000));
	CU_ASSERT(hits_seed(c, 4, 4, 1500));
	train_cache_close(c);
}

/* Access times of hits reach the file when the cache is closed. */
static void test_close_flushes(void)
{
	const char *dir = test_tmpdir();
	train_cache *c = open_cache(dir, 10000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (int i = 0; i < 10; i++)
		CU_ASSERT_EQUAL(store_seed(c, i, i, 1000), TRAIN_OK);
	CU_ASSERT(hits_seed(c, 0, 0, 1000));
	train_cache_close(c);

	c = open_cache(dir, 10000);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(store_seed(c, 10, 10, 1000), TRAIN_OK);
	CU_ASSERT_EQUAL(train_cache_has(c, node_fp(0)), 1);
	CU_ASSERT_EQUAL(train_cache_has(c, node_fp(1)), 0);
	train_cache_close(c);
}

static void test_gc(void)
{
	const char *dir = test_tmpdir();
	train_cache *c = open_cache(dir, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (int i = 1; i <= 4; i++)
		CU_ASSERT_EQUAL(store_seed(c, i, i, 500), TRAIN_OK);
	CU_ASSERT_EQUAL(store_seed(c, 4, 40, 700), TRAIN_OK); /* value 4 becomes an orphan */
	CU_ASSERT_EQUAL(store_seed(c, 5, 5, 600), TRAIN_OK);
	uint64_t freed = 99;
	CU_ASSERT_EQUAL(train_cache_gc(c, 0, &freed, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(freed, 1);
	train_cache_stats st = stats_of(c);
	CU_ASSERT_EQUAL(st.nodes, 5);
	CU_ASSERT_EQUAL(st.values, 5);
	CU_ASSERT_EQUAL(st.value_bytes, 3 * 500 + 700 + 600);
	train_cache_close(c);

	/* Damage: a corrupt value (node 1), a missing one (node 2). */
	unsigned char *buf = NULL;
	size_t size = 0;
	CU_ASSERT_EQUAL_FATAL(raw_op(dir, "values", value_fp_of(1, 500), 'g', &buf, &size), 0);
	flip_last(&buf, &size);
	CU_ASSERT_EQUAL(raw_op(dir, "values", value_fp_of(1, 500), 'p', &buf, &size), 0);
	free(buf);
	CU_ASSERT_EQUAL(raw_op(dir, "values", value_fp_of(2, 500), 'd', NULL, NULL), 0);

	c = open_cache(dir, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	log_reset();
	freed = 0;
	CU_ASSERT_EQUAL(train_cache_gc(c, 0, &freed, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(freed, 1); /* the corrupt one; the missing one was gone already */
	CU_ASSERT_EQUAL(log_warns, 1);
	st = stats_of(c);
	CU_ASSERT_EQUAL(st.nodes, 3);
	CU_ASSERT_EQUAL(st.values, 3);
	CU_ASSERT_EQUAL(st.value_bytes, 500 + 700 + 600); /* recounted */
	CU_ASSERT(hits_seed(c, 3, 3, 500));
	CU_ASSERT(hits_seed(c, 4, 40, 700));
	CU_ASSERT(hits_seed(c, 5, 5, 600));

	/* A tighter bound for one pass: node 5 was used last, then 4; 3 goes first. */
	CU_ASSERT(hits_seed(c, 4, 40, 700));
	CU_ASSERT(hits_seed(c, 5, 5, 600));
	CU_ASSERT_EQUAL(train_cache_gc(c, 1300, &freed, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(freed, 1);
	CU_ASSERT_EQUAL(train_cache_has(c, node_fp(3)), 0);
	CU_ASSERT(hits_seed(c, 4, 40, 700) && hits_seed(c, 5, 5, 600));
	CU_ASSERT_EQUAL(stats_of(c).value_bytes, 1300);
	CU_ASSERT_EQUAL(train_cache_gc(c, 1, &freed, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(freed, 2);
	st = stats_of(c);
	CU_ASSERT(st.nodes == 0 && st.values == 0 && st.value_bytes == 0);
	train_cache_close(c);
}

/* gc trusts no counter: a wrong size in an access-time record is fixed. */
static void test_gc_fixes_atime(void)
{
	const char *dir = test_tmpdir();
	train_cache *c = open_cache(dir, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (int i = 1; i <= 3; i++)
		CU_ASSERT_EQUAL(store_seed(c, i, i, 500), TRAIN_OK);
	train_cache_close(c);

	/* value 1: used at time 0 (the oldest), size 99999 */
	unsigned char rec[24] = { 0 };
	unsigned char *buf = rec;
	size_t size = sizeof rec;
	rec[16] = 0x9f;
	rec[17] = 0x86;
	rec[18] = 0x01;
	CU_ASSERT_EQUAL(raw_op(dir, "atime", value_fp_of(1, 500), 'p', &buf, &size), 0);

	c = open_cache(dir, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	uint64_t freed = 9;
	CU_ASSERT_EQUAL(train_cache_gc(c, 0, &freed, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(freed, 0);
	CU_ASSERT_EQUAL(stats_of(c).value_bytes, 1500);
	CU_ASSERT_EQUAL(train_cache_gc(c, 1000, &freed, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(freed, 1);
	CU_ASSERT_EQUAL(train_cache_has(c, node_fp(1)), 0);
	CU_ASSERT_EQUAL(stats_of(c).value_bytes, 1000);
	/* and the next store sees the right total: 1500 <= 1600, nothing goes */
	train_cache_close(c);
	c = open_cache(dir, 1600);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(store_seed(c, 4, 4, 500), TRAIN_OK);
	CU_ASSERT_EQUAL(stats_of(c).values, 3);
	train_cache_close(c);
}

static void test_clear(void)
{
	const char *dir = test_tmpdir();
	train_cache *c = open_cache(dir, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (int i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(store_seed(c, i, i, 100), TRAIN_OK);
	CU_ASSERT(hits_seed(c, 0, 0, 100)); /* a pending hit to forget */
	CU_ASSERT_EQUAL(train_cache_clear(c, NULL), TRAIN_OK);
	train_cache_stats st = stats_of(c);
	CU_ASSERT(st.nodes == 0 && st.values == 0 && st.value_bytes == 0);
	for (int i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(train_cache_has(c, node_fp(i)), 0);
	CU_ASSERT_EQUAL(train_cache_flush(c, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(store_seed(c, 9, 9, 100), TRAIN_OK);
	CU_ASSERT(hits_seed(c, 9, 9, 100));
	CU_ASSERT_EQUAL(stats_of(c).value_bytes, 100);
	train_cache_close(c);
}

static void test_stats(void)
{
	const char *dir = test_tmpdir();
	train_cache *c = open_cache(dir, 123456);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	train_cache_stats st = stats_of(c);
	CU_ASSERT(st.nodes == 0 && st.values == 0 && st.value_bytes == 0);
	CU_ASSERT_EQUAL(st.max_size, 123456);
	CU_ASSERT(st.map_size >= (64u << 20));
	CU_ASSERT(st.file_bytes > 0);

	train_values *s = NULL;
	CU_ASSERT_FATAL(train_values_create(&s) == TRAIN_OK);
	CU_ASSERT(train_values_put_bytes(s, "a", "text/plain", "0123456789", 10) == TRAIN_OK);
	CU_ASSERT(train_values_put_bytes(s, "b", "text/plain", "abc", 3) == TRAIN_OK);
	CU_ASSERT_EQUAL(train_cache_store(c, node_fp(1), s, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(train_cache_store(c, node_fp(2), s, NULL), TRAIN_OK); /* same values */
	CU_ASSERT_EQUAL(train_cache_store(c, node_fp(1), s, NULL), TRAIN_OK); /* again */
	train_values_destroy(s);
	st = stats_of(c);
	CU_ASSERT_EQUAL(st.nodes, 2);
	CU_ASSERT_EQUAL(st.values, 2);
	CU_ASSERT_EQUAL(st.value_bytes, 13);
	train_cache_close(c);
}

static void test_max_size_env(void)
{
	static const struct {
		const char *text;
		uint64_t want; /* 0: refused */
	} cases[] = {
		{ "3M", 3u << 20 }, { "12345", 12345 }, { "2GiB", (uint64_t)2 << 30 },
		{ "64k", 64u << 10 }, { "1T", (uint64_t)1 << 40 }, { "500MB", 500u << 20 },
		{ "0", (uint64_t)4 << 30 }, { "", (uint64_t)4 << 30 },
		{ "12X", 0 }, { "M", 0 }, { "-5", 0 }, { "5 M", 0 }, { "99999999999999999999", 0 },
	};
	const char *dir = test_tmpdir();
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		setenv("TRAIN_CACHE_MAX_SIZE", cases[i].text, 1);
		train_cache *c = NULL;
		train_error err;
		int rc = train_cache_open(dir, 0, &sink, &c, &err);
		if (!cases[i].want) {
			CU_ASSERT_EQUAL(rc, TRAIN_ECONFIG);
			CU_ASSERT_PTR_NULL(c);
			CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "TRAIN_CACHE_MAX_SIZE"));
		} else {
			CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
			CU_ASSERT_EQUAL(stats_of(c).max_size, cases[i].want);
		}
		train_cache_close(c);
	}
	/* An explicit bound wins over the environment. */
	setenv("TRAIN_CACHE_MAX_SIZE", "3M", 1);
	train_cache *c = open_cache(dir, 777);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(stats_of(c).max_size, 777);
	train_cache_close(c);
	unsetenv("TRAIN_CACHE_MAX_SIZE");
	c = open_cache(dir, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(stats_of(c).max_size, (uint64_t)4 << 30);
	train_cache_close(c);
}

static void test_persistence(void)
{
	const char *dir = test_tmpdir();
	char sub[600];
	snprintf(sub, sizeof sub, "%s/a/b/cache", dir); /* folders are created */
	train_cache *c = open_cache(sub, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (int i = 0; i < 20; i++)
		CU_ASSERT_EQUAL(store_seed(c, i, i, 50 * (size_t)i), TRAIN_OK);
	train_cache_close(c);
	c = open_cache(sub, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	for (int i = 0; i < 20; i++)
		CU_ASSERT(hits_seed(c, i, i, 50 * (size_t)i));
	train_cache_stats st = stats_of(c);
	CU_ASSERT_EQUAL(st.nodes, 20);
	CU_ASSERT_EQUAL(st.value_bytes, 50 * 190);
	train_cache_close(c);
}

/* Two processes store at the same time into one cache with a small map. */
static void test_two_processes(void)
{
	const char *dir = test_tmpdir();
	int go[2];
	CU_ASSERT_FATAL(pipe(go) == 0);
	setenv("TRAIN_CACHE_MAP_SIZE", "1M", 1);
	pid_t pid = worker_spawn(dir, 1000, 200, 4000, go[0]);
	CU_ASSERT_FATAL(pid > 0);
	close(go[0]);
	train_cache *c = open_cache(dir, 0);
	CU_ASSERT(write(go[1], "x", 1) == 1);
	close(go[1]);
	int failed = c == NULL;
	for (int i = 0; !failed && i < 200; i++)
		failed = store_seed(c, 2000 + i, 2000 + i, 4000 + (size_t)i) != 0;
	CU_ASSERT_FALSE(failed);
	CU_ASSERT(worker_wait(pid));
	unsetenv("TRAIN_CACHE_MAP_SIZE");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);

	int missing = 0;
	for (int i = 0; i < 200; i++) {
		missing += !hits_seed(c, 1000 + i, 1000 + i, 4000 + (size_t)i);
		missing += !hits_seed(c, 2000 + i, 2000 + i, 4000 + (size_t)i);
	}
	CU_ASSERT_EQUAL(missing, 0);
	train_cache_stats st = stats_of(c);
	CU_ASSERT_EQUAL(st.nodes, 400);
	CU_ASSERT_EQUAL(st.values, 400);
	CU_ASSERT_EQUAL(st.value_bytes, 2 * (200 * 4000 + 199 * 100));
	train_cache_close(c);
}

/* Threads share one handle; the map grows under them. */
typedef struct thread_arg {
	train_cache *c;
	int base, bad;
} thread_arg;

static void *thread_main(void *p)
{
	thread_arg *a = p;
	for (int i = 0; i < 50 && !a->bad; i++) {
		int n = a->base + i;
		a->bad = store_seed(a->c, n, n, 8000) != 0 || !hits_seed(a->c, n, n, 8000) ||
		         !hits_seed(a->c, a->base, a->base, 8000);
	}
	return NULL;
}

static void test_threads(void)
{
	const char *dir = test_tmpdir();
	setenv("TRAIN_CACHE_MAP_SIZE", "1M", 1);
	train_cache *c = open_cache(dir, 0);
	unsetenv("TRAIN_CACHE_MAP_SIZE");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	pthread_t th[4];
	thread_arg args[4];
	for (int t = 0; t < 4; t++) {
		args[t] = (thread_arg){ c, 100 * t, 0 };
		CU_ASSERT_FATAL(pthread_create(&th[t], NULL, thread_main, &args[t]) == 0);
	}
	for (int t = 0; t < 4; t++) {
		pthread_join(th[t], NULL);
		CU_ASSERT_EQUAL(args[t].bad, 0);
	}
	train_cache_stats st = stats_of(c);
	CU_ASSERT_EQUAL(st.values, 200);
	CU_ASSERT_EQUAL(st.value_bytes, 200 * 8000);
	CU_ASSERT(st.map_size >= (2u << 20));
	CU_ASSERT_EQUAL(train_cache_flush(c, NULL), TRAIN_OK);
	train_cache_close(c);
}

static void test_default_dir(void)
{
	char *saved[3];
	static const char *const vars[3] = { "TRAIN_CACHE_DIR", "XDG_CACHE_HOME", "HOME" };
	for (int i = 0; i < 3; i++) {
		const char *v = getenv(vars[i]);
		saved[i] = v ? strdup(v) : NULL;
	}
	char *d;
	setenv("TRAIN_CACHE_DIR", "/tc", 1);
	setenv("XDG_CACHE_HOME", "/xdg", 1);
	setenv("HOME", "/home/u", 1);
	d = train_cache_default_dir("/given");
	CU_ASSERT_STRING_EQUAL(d, "/given");
	free(d);
	d = train_cache_default_dir(NULL);
	CU_ASSERT_STRING_EQUAL(d, "/tc");
	free(d);
	setenv("TRAIN_CACHE_DIR", "", 1);
	d = train_cache_default_dir(NULL);
	CU_ASSERT_STRING_EQUAL(d, "/xdg/train");
	free(d);
	setenv("XDG_CACHE_HOME", "relative", 1); /* ignored, as XDG says */
	d = train_cache_default_dir(NULL);
	CU_ASSERT_STRING_EQUAL(d, "/home/u/.cache/train");
	free(d);
	unsetenv("XDG_CACHE_HOME");
	d = train_cache_default_dir("");
	CU_ASSERT_STRING_EQUAL(d, "/home/u/.cache/train");
	free(d);
	unsetenv("HOME");
	d = train_cache_default_dir(NULL); /* from the password database, if any */
	CU_ASSERT(d == NULL || strstr(d, "/.cache/train") != NULL);
	free(d);
	for (int i = 0; i < 3; i++) {
		if (saved[i])
			setenv(vars[i], saved[i], 1);
		else
			unsetenv(vars[i]);
		free(saved[i]);
	}
}

static const test_case cases[] = {
	{ "roundtrip", test_roundtrip },
	{ "miss", test_miss },
	{ "bad_args", test_bad_args },
	{ "corrupt", test_corrupt },
	{ "corrupt_swapped", test_corrupt_swapped },
	{ "map_growth", test_map_growth },
	{ "map_resized", test_map_resized },
	{ "lru_eviction", test_lru_eviction },
	{ "lru_shared_value", test_lru_shared_value },
	{ "close_flushes", test_close_flushes },
	{ "gc", test_gc },
	{ "gc_fixes_atime", test_gc_fixes_atime },
	{ "clear", test_clear },
	{ "stats", test_stats },
	{ "max_size_env", test_max_size_env },
	{ "persistence", test_persistence },
	{ "two_processes", test_two_processes },
	{ "threads", test_threads },
	{ "default_dir", test_default_dir },
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	if (argc == 7 && !strcmp(argv[1], "--worker"))
		return worker_main(argv + 2);
	/* argv[0], not /proc/self/exe, which under valgrind is valgrind itself */
	static char path[4096];
	self_exe = realpath(argv[0], path) ? path : "/proc/self/exe";
	return test_main("cache", cases);
}
