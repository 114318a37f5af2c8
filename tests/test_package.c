/*
 * tests/test_package.c - model archives and folder blobs (libtrain/package.c).
 *
 * Round trips, byte-for-byte determinism, atomic writes, single-member
 * reads, and refusal of hostile archives, which are built here with
 * libarchive directly.
 */
#include "package.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>

#include "testlib.h"

/* ---- helpers ----------------------------------------------------------------- */

static char *path_of(const char *a, const char *b)
{
	char *p = train_path_join(a, b);
	if (!p)
		abort();
	return p;
}

static void mkdir_or_die(const char *dir, const char *rel)
{
	char *p = path_of(dir, rel);
	if (mkdir(p, 0755) != 0) {
		perror(p);
		abort();
	}
	free(p);
}

static void write_bytes(const char *dir, const char *rel, const void *data, size_t size)
{
	char *p = path_of(dir, rel);
	FILE *f = fopen(p, "wb");
	if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
		perror(p);
		abort();
	}
	free(p);
}

static void write_text(const char *dir, const char *rel, const char *text)
{
	write_bytes(dir, rel, text, strlen(text));
}

#define METADATA "{\"libtrain\": \"0.1.0\", \"type\": \"regression\"}\n"

/* A model-like tree with nested and empty folders, binary and empty files.
 * `reverse` creates it in another order, with other modes and times, which
 * must not change an archive of it. */
static void make_tree(const char *dir, int reverse)
{
	unsigned char bin[70000]; /* more than one 64 KiB chunk, all byte values, NULs */
	uint32_t x = 12345;
	for (size_t i = 0; i < sizeof bin; i++) {
		x = x * 1103515245u + 12345u;
		bin[i] = (unsigned char)(x >> 16);
	}
	bin[0] = 0;
	bin[1] = 0xff;
	if (!reverse) {
		write_text(dir, "metadata.json", METADATA);
		mkdir_or_die(dir, "components");
		mkdir_or_die(dir, "components/model");
		write_bytes(dir, "components/model/weights.bin", bin, sizeof bin);
		mkdir_or_die(dir, "components/model/deep");
		mkdir_or_die(dir, "components/model/deep/er");
		write_text(dir, "components/model/deep/er/note.txt", "nested\n");
		write_bytes(dir, "components/model/empty.bin", "", 0);
		mkdir_or_die(dir, "components/scaler");
		mkdir_or_die(dir, "components/scaler/empty-folder");
		write_text(dir, "components/scaler/mean+std@v1.json", "[0.5, 2.0]");
	} else {
		mkdir_or_die(dir, "components");
		mkdir_or_die(dir, "components/scaler");
		write_text(dir, "components/scaler/mean+std@v1.json", "[0.5, 2.0]");
		mkdir_or_die(dir, "components/scaler/empty-folder");
		mkdir_or_die(dir, "components/model");
		write_bytes(dir, "components/model/empty.bin", "", 0);
		mkdir_or_die(dir, "components/model/deep");
		mkdir_or_die(dir, "components/model/deep/er");
		write_text(dir, "components/model/deep/er/note.txt", "nested\n");
		write_bytes(dir, "components/model/weights.bin", bin, sizeof bin);
		write_text(dir, "metadata.json", METADATA);
		char *p = path_of(dir, "metadata.json");
		CU_ASSERT_EQUAL(chmod(p, 0600), 0);
		struct timespec ts[2] = { { 1000000, 5 }, { 2000000, 7 } };
		CU_ASSERT_EQUAL(utimensat(AT_FDCWD, p, ts, 0), 0);
		free(p);
		p = path_of(dir, "components/model");
		CU_ASSERT_EQUAL(chmod(p, 0700), 0);
		free(p);
	}
}

/* A text listing of everything under dir/rel: "d name" for folders,
 * "f name size fingerprint" for files, "? name" otherwise; sorted. */
static void listing_rec(const char *dir, const char *rel, train_buf *out)
{
	char *path = rel[0] ? path_of(dir, rel) : train_strdup(dir);
	DIR *d = opendir(path);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	char *names[256];
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		CU_ASSERT_FATAL(n < 256);
		names[n++] = rel[0] ? train_strfmt("%s/%s", rel, de->d_name) : train_strdup(de->d_name);
	}
	closedir(d);
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			if (strcmp(names[j], names[i]) < 0) {
				char *t = names[i];
				names[i] = names[j];
				names[j] = t;
			}
	for (size_t i = 0; i < n; i++) {
		char *p = path_of(dir, names[i]);
		struct stat st;
		CU_ASSERT_EQUAL_FATAL(lstat(p, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			train_buf_printf(out, "d %s\n", names[i]);
			listing_rec(dir, names[i], out);
		} else if (S_ISREG(st.st_mode)) {
			char *data;
			size_t size;
			CU_ASSERT_EQUAL_FATAL(train_read_file(p, &data, &size, NULL), 0);
			char hex[TRAIN_FP_HEX];
			train_buf_printf(out, "f %s %zu %s\n", names[i], size,
			                 train_fp_hex(train_fp_of(data, size), hex));
			free(data);
		} else {
			train_buf_printf(out, "? %s\n", names[i]);
		}
		free(p);
		free(names[i]);
	}
	free(path);
}

static char *listing(const char *dir)
{
	train_buf b = { 0 };
	train_buf_str(&b, "");
	listing_rec(dir, "", &b);
	return b.data;
}

/* Number of entries in a folder. */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static char *slurp(const char *path, size_t *size)
{
	char *data = NULL;
	*size = 0;
	if (train_read_file(path, &data, size, NULL) != 0)
		return NULL;
	return data;
}

/* ---- round trips and determinism --------------------------------------------- */

static void test_roundtrip(void)
{
	const char *src = test_tmpdir(), *out = test_tmpdir(), *dest = test_tmpdir();
	make_tree(src, 0);
	char *arc = path_of(out, "model.tar.gz");
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_package_write(src, arc, &err), 0);
	CU_ASSERT_EQUAL(train_package_extract(arc, dest, &err), 0);
	char *a = listing(src), *b = listing(dest);
	CU_ASSERT_STRING_EQUAL(a, b);
	/* the listing really covers the tree */
	CU_ASSERT_PTR_NOT_NULL(strstr(a, "d components/scaler/empty-folder\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(a, "f components/model/weights.bin 70000 "));
	CU_ASSERT_PTR_NOT_NULL(strstr(a, "f components/model/empty.bin 0 "));
	free(a);
	free(b);

	/* extracting again over the same files is refused, not merged */
	CU_ASSERT_EQUAL(train_package_extract(arc, dest, &err), TRAIN_EEXIST);
	free(arc);
}

/* The gzip header has no time and no name; members are sorted, folders
 * included, with fixed owners, times and modes. */
static void check_format(const char *arc)
{
	size_t size;
	unsigned char *d = (unsigned char *)slurp(arc, &size);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_FATAL(size > 10);
	CU_ASSERT_EQUAL(d[0], 0x1f);
	CU_ASSERT_EQUAL(d[1], 0x8b);
	CU_ASSERT_EQUAL(d[3] & 0x08, 0); /* FNAME */
	CU_ASSERT_EQUAL(d[4] | d[5] | d[6] | d[7], 0); /* MTIME */
	free(d);

	struct archive *a = archive_read_new();
	archive_read_support_filter_gzip(a);
	archive_read_support_format_tar(a);
	CU_ASSERT_EQUAL_FATAL(archive_read_open_filename(a, arc, 10240), ARCHIVE_OK);
	struct archive_entry *e;
	char prev[4096] = "";
	int n = 0, dirs = 0;
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		char name[4096];
		snprintf(name, sizeof name, "%s", archive_entry_pathname(e));
		size_t len = strlen(name);
		int is_dir = archive_entry_filetype(e) == AE_IFDIR;
		if (is_dir) {
			CU_ASSERT(len > 0 && name[len - 1] == '/');
			name[len - 1] = '\0';
			dirs++;
			CU_ASSERT_EQUAL(archive_entry_perm(e), 0755);
		} else {
			CU_ASSERT_EQUAL(archive_entry_filetype(e), AE_IFREG);
			CU_ASSERT_EQUAL(archive_entry_perm(e), 0644);
		}
		CU_ASSERT(strcmp(prev, name) < 0);
		snprintf(prev, sizeof prev, "%s", name);
		CU_ASSERT_EQUAL(archive_entry_mtime(e), 0);
		CU_ASSERT_EQUAL(archive_entry_uid(e), 0);
		CU_ASSERT_EQUAL(archive_entry_gid(e), 0);
		const char *un = archive_entry_uname(e), *gn = archive_entry_gname(e);
		CU_ASSERT(!un || !*un);
		CU_ASSERT(!gn || !*gn);
		n++;
	}
	CU_ASSERT_EQUAL(n, 11);
	CU_ASSERT_EQUAL(dirs, 6);
	archive_read_free(a);
}

static void test_deterministic(void)
{
	const char *src = test_tmpdir(), *src2 = test_tmpdir(), *out = test_tmpdir();
	make_tree(src, 0);
	make_tree(src2, 1);
	char *p1 = path_of(out, "a.tar.gz"), *p2 = path_of(out, "b.tar.gz"),
	     *p3 = path_of(out, "c.tar.gz");
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_package_write(src, p1, &err), 0);
	CU_ASSERT_EQUAL_FATAL(train_package_write(src, p2, &err), 0);
	CU_ASSERT_EQUAL_FATAL(train_package_write(src2, p3, &err), 0);
	size_t s1, s2, s3;
	char *d1 = slurp(p1, &s1), *d2 = slurp(p2, &s2), *d3 = slurp(p3, &s3);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d2);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d3);
	CU_ASSERT(s1 == s2 && memcmp(d1, d2, s1) == 0);
	CU_ASSERT(s1 == s3 && memcmp(d1, d3, s1) == 0);
	check_format(p1);

	/* and different content gives a different archive */
	write_text(src2, "metadata.json", "{}");
	CU_ASSERT_EQUAL(train_package_write(src2, p3, &err), 0);
	free(d3);
	d3 = slurp(p3, &s3);
	CU_ASSERT(s1 != s3 || memcmp(d1, d3, s1) != 0);
	free(d1);
	free(d2);
	free(d3);
	free(p1);
	free(p2);
	free(p3);
}

/* Names longer than ustar's 100 bytes still round trip, deterministically. */
static void test_long_names(void)
{
	const char *src = test_tmpdir(), *out = test_tmpdir(), *dest = test_tmpdir();
	char rel[600] = "";
	for (int i = 0; i < 6; i++) {
		strcat(rel, i ? "/" : "");
		strcat(rel, "a-rather-long-folder-name-to-go-past-one-hundred-bytes");
		mkdir_or_die(src, rel);
	}
	strcat(rel, "/and-a-file-name-that-is-long-as-well-so-no-prefix-split-can-hold-it-0123456789.bin");
	write_text(src, rel, "long");
	char *arc = path_of(out, "long.tar.gz"), *arc2 = path_of(out, "long2.tar.gz");
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_package_write(src, arc, &err), 0);
	CU_ASSERT_EQUAL_FATAL(train_package_write(src, arc2, &err), 0);
	size_t s1, s2;
	char *d1 = slurp(arc, &s1), *d2 = slurp(arc2, &s2);
	CU_ASSERT(d1 && d2 && s1 == s2 && memcmp(d1, d2, s1) == 0);
	CU_ASSERT_EQUAL(train_package_extract(arc, dest, &err), 0);
	char *a = listing(src), *b = listing(dest);
	CU_ASSERT_STRING_EQUAL(a, b);
	char *data = NULL;
	CU_ASSERT_EQUAL(train_package_read_member(arc, rel, &data, NULL, &err), 0);
	CU_ASSERT(data && !strcmp(data, "long"));
	free(data);
	free(a);
	free(b);
	free(d1);
	free(d2);
	free(arc);
	free(arc2);
}

static void test_empty_folder(void)
{
	const char *src = test_tmpdir(), *out = test_tmpdir(), *dest = test_tmpdir();
	char *arc = path_of(out, "empty.tar.gz");
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_package_write(src, arc, &err), 0);
	CU_ASSERT(train_path_exists(arc));
	CU_ASSERT_EQUAL(train_package_extract(arc, dest, &err), 0);
	CU_ASSERT_EQUAL(count_entries(dest), 0);
	char *data = NULL;
	CU_ASSERT_EQUAL(train_package_read_member(arc, "metadata.json", &data, NULL, &err),
	                TRAIN_ENOTFOUND);
	CU_ASSERT_PTR_NULL(data);

	void *blob = NULL;
	size_t size = 0;
	CU_ASSERT_EQUAL_FATAL(train_dir_pack(src, &blob, &size, &err), 0);
	CU_ASSERT_PTR_NOT_NULL(blob);
	CU_ASSERT(size > 0 && size % 512 == 0);
	CU_ASSERT_EQUAL(train_dir_unpack(blob, size, dest, &err), 0);
	CU_ASSERT_EQUAL(count_entries(dest), 0);
	free(blob);
	free(arc);
}

/* ---- atomic writes ----------------------------------------------------------------- */

static void test_atomic(void)
{
	const char *src = test_tmpdir(), *out = test_tmpdir();
	make_tree(src, 0);
	char *arc = path_of(out, "model.tar.gz");
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_package_write(src, arc, &err), 0);
	CU_ASSERT_EQUAL(count_entries(out), 1); /* no temporary file left */
	struct stat st;
	CU_ASSERT_EQUAL(stat(arc, &st), 0);
	CU_ASSERT_EQUAL(st.st_mode & 0777, 0644);
	size_t s1, s2;
	char *before = slurp(arc, &s1);

	/* a missing staging folder: error, old archive untouched, nothing else */
	char *missing = path_of(src, "no-such-folder");
	memset(&err, 0, sizeof err);
	CU_ASSERT_EQUAL(train_package_write(missing, arc, &err), -ENOENT);
	CU_ASSERT_EQUAL(err.code, -ENOENT);
	CU_ASSERT_EQUAL(count_entries(out), 1);
	char *after = slurp(arc, &s2);
	CU_ASSERT(before && after && s1 == s2 && memcmp(before, after, s1) == 0);
	free(after);

	/* ... and no archive at all where there was none */
	char *arc2 = path_of(out, "other.tar.gz");
	CU_ASSERT(train_package_write(missing, arc2, &err) < 0);
	CU_ASSERT(!train_path_exists(arc2));

	/* a missing destination folder */
	char *arc3 = path_of(out, "no-such-folder/m.tar.gz");
	CU_ASSERT_EQUAL(train_package_write(src, arc3, &err), -ENOENT);
	CU_ASSERT_EQUAL(count_entries(out), 1);

	/* a failure after the temporary file exists (rename onto a folder):
	 * the temporary file goes, the folder stays */
	char *arc4 = path_of(out, "taken.tar.gz");
	CU_ASSERT_EQUAL_FATAL(mkdir(arc4, 0755), 0);
	memset(&err, 0, sizeof err);
	CU_ASSERT(train_package_write(src, arc4, &err) < 0);
	CU_ASSERT(strstr(err.file, "taken.tar.gz") != NULL);
	CU_ASSERT_EQUAL(count_entries(out), 2);
	CU_ASSERT(train_is_dir(arc4));
	CU_ASSERT_EQUAL(count_entries(arc4), 0);

	/* a destination folder that cannot be written (root writes anyway) */
	if (geteuid() != 0) {
		char *ro = path_of(out, "ro");
		CU_ASSERT_EQUAL_FATAL(mkdir(ro, 0555), 0);
		char *arc5 = path_of(ro, "m.tar.gz");
		CU_ASSERT_EQUAL(train_package_write(src, arc5, &err), -EACCES);
		CU_ASSERT_EQUAL(count_entries(ro), 0);
		chmod(ro, 0755);
		free(arc5);
		free(ro);
	}

	/* a staging folder holding what cannot be packed: nothing written */
	char *link = path_of(src, "link.json");
	CU_ASSERT_EQUAL_FATAL(symlink("metadata.json", link), 0);
	memset(&err, 0, sizeof err);
	CU_ASSERT_EQUAL(train_package_write(src, arc2, &err), TRAIN_EINVAL);
	CU_ASSERT(strstr(err.text, "link.json") != NULL);
	CU_ASSERT(!train_path_exists(arc2));
	CU_ASSERT_EQUAL(unlink(link), 0);
	write_text(src, "bad name.txt", "x");
	CU_ASSERT_EQUAL(train_package_write(src, arc2, &err), TRAIN_EINVAL);
	CU_ASSERT(strstr(err.text, "bad name.txt") != NULL);
	CU_ASSERT_EQUAL(count_entries(out), 2);
	void *blob = NULL;
	size_t size = 0;
	CU_ASSERT_EQUAL(train_dir_pack(src, &blob, &size, &err), TRAIN_EINVAL);
	CU_ASSERT_PTR_NULL(blob);

	free(link);
	free(before);
	free(missing);
	free(arc);
	free(arc2);
	free(arc3);
	free(arc4);
}

/* ---- reading one member ------------------------------------------------------------ */

static void test_read_member(void)
{
	const char *src = test_tmpdir(), *out = test_tmpdir();
	make_tree(src, 0);
	char *arc = path_of(out, "model.tar.gz");
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_package_write(src, arc, &err), 0);

	char *data = NULL;
	size_t size = 0;
	CU_ASSERT_EQUAL(train_package_read_member(arc, "metadata.json", &data, &size, &err), 0);
	CU_ASSERT_EQUAL(size, strlen(METADATA));
	CU_ASSERT(data && !strcmp(data, METADATA));
	free(data);

	/* a binary member, NULs and all */
	char *p = path_of(src, "components/model/weights.bin");
	char *want;
	size_t wsize;
	CU_ASSERT_EQUAL_FATAL(train_read_file(p, &want, &wsize, NULL), 0);
	CU_ASSERT_EQUAL(train_package_read_member(arc, "components/model/weights.bin", &data, &size,
	                                          &err), 0);
	CU_ASSERT(data && size == wsize && memcmp(data, want, size) == 0);
	free(data);
	free(want);
	free(p);

	/* an empty member is an empty string */
	CU_ASSERT_EQUAL(train_package_read_member(arc, "components/model/empty.bin", &data, &size,
	                                          &err), 0);
	CU_ASSERT(data && size == 0 && data[0] == '\0');
	free(data);

	memset(&err, 0, sizeof err);
	data = (char *)1;
	CU_ASSERT_EQUAL(train_package_read_member(arc, "nope.json", &data, &size, &err),
	                TRAIN_ENOTFOUND);
	CU_ASSERT_PTR_NULL(data);
	CU_ASSERT(strstr(err.text, "nope.json") != NULL);
	CU_ASSERT_EQUAL(train_package_read_member(arc, "components", &data, &size, &err),
	                TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_package_read_member(arc, "../metadata.json", &data, &size, &err),
	                TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_package_read_member(arc, "", &data, &size, &err), TRAIN_EINVAL);

	char *missing = path_of(out, "missing.tar.gz");
	CU_ASSERT_EQUAL(train_package_read_member(missing, "metadata.json", &data, &size, &err),
	                -ENOENT);
	free(missing);
	free(arc);
}

/* ---- hostile and broken input -------------------------------------------------------- */

typedef struct member {
	const char *name;
	int type;          /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFIFO, AE_IFCHR */
	const char *data;  /* file content, or a link target */
	int hard;          /* a hard link to `data` */
} member;

/* Write members with libarchive, with no checks of ours in the way. */
static void build_archive(const char *path, int gzip, const member *m)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	if (gzip)
		archive_write_add_filter_gzip(a);
	if (archive_write_open_filename(a, path) != ARCHIVE_OK)
		abort();
	for (; m->name; m++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, m->name);
		archive_entry_set_filetype(e, (unsigned)m->type);
		archive_entry_set_perm(e, 0644);
		if (m->hard) {
			archive_entry_set_hardlink(e, m->data);
			archive_entry_set_size(e, 0);
		} else if (m->type == AE_IFLNK) {
			archive_entry_set_symlink(e, m->data);
		} else if (m->type == AE_IFREG) {
			archive_entry_set_size(e, (la_int64_t)strlen(m->data));
		}
		if (archive_write_header(a, e) != ARCHIVE_OK) {
			fprintf(stderr, "%s: %s\n", m->name, archive_error_string(a));
			abort();
		}
		if (m->type == AE_IFREG && !m->hard && m->data[0])
			archive_write_data(a, m->data, strlen(m->data));
		archive_entry_free(e);
	}
	if (archive_write_close(a) != ARCHIVE_OK)
		abort();
	archive_write_free(a);
}

static void check_refused(const char *label, const member *m, const char *bad)
{
	const char *base = test_tmpdir();
	char *outer = path_of(base, "outer"), *dest = path_of(outer, "dest");
	char *arc = path_of(base, "evil.tar.gz"), *tar = path_of(base, "evil.tar");
	CU_ASSERT_EQUAL_FATAL(mkdir(outer, 0755), 0);
	CU_ASSERT_EQUAL_FATAL(mkdir(dest, 0755), 0);
	build_archive(arc, 1, m);
	build_archive(tar, 0, m);
	train_error err = { 0 };

	int rc = train_package_extract(arc, dest, &err);
	if (getenv("SHOW_ERRORS") || rc != TRAIN_EUNSAFE || !strstr(err.text, bad))
		fprintf(stderr, "\n  %s: extract gave %d: %s\n", label, rc, err.text);
	CU_ASSERT_EQUAL(rc, TRAIN_EUNSAFE);
	CU_ASSERT_EQUAL(err.code, TRAIN_EUNSAFE);
	CU_ASSERT(strstr(err.text, bad) != NULL);
	CU_ASSERT_EQUAL(count_entries(outer), 1); /* only dest: nothing escaped */
	CU_ASSERT_EQUAL(count_entries(base), 3);  /* outer and the two archives */

	/* read_member refuses the archive even for a safe member */
	char *data = NULL;
	memset(&err, 0, sizeof err);
	CU_ASSERT_EQUAL(train_package_read_member(arc, "ok.txt", &data, NULL, &err), TRAIN_EUNSAFE);
	CU_ASSERT(strstr(err.text, bad) != NULL);
	CU_ASSERT_PTR_NULL(data);

	/* and so does dir_unpack, on the same members uncompressed */
	size_t size;
	char *blob = slurp(tar, &size);
	CU_ASSERT_PTR_NOT_NULL_FATAL(blob);
	char *dest2 = path_of(outer, "dest2");
	CU_ASSERT_EQUAL_FATAL(mkdir(dest2, 0755), 0);
	memset(&err, 0, sizeof err);
	CU_ASSERT_EQUAL(train_dir_unpack(blob, size, dest2, &err), TRAIN_EUNSAFE);
	CU_ASSERT(strstr(err.text, bad) != NULL);
	CU_ASSERT_EQUAL(count_entries(outer), 2);
	free(blob);
	free(dest2);
	free(outer);
	free(dest);
	free(arc);
	free(tar);
}

static void test_unsafe_members(void)
{
	char abs_name[64];
	snprintf(abs_name, sizeof abs_name, "/tmp/train-test-abs-%ld", (long)getpid());
	const member parent[] = { { "ok.txt", AE_IFREG, "fine", 0 }, { "../evil", AE_IFREG, "x", 0 },
	                          { NULL, 0, NULL, 0 } };
	check_refused("..", parent, "'../evil' refused: '..'");
	const member absolute[] = { { "ok.txt", AE_IFREG, "fine", 0 },
	                            { abs_name, AE_IFREG, "x", 0 }, { NULL, 0, NULL, 0 } };
	check_refused("absolute", absolute, "refused: absolute name");
	CU_ASSERT(!train_path_exists(abs_name));
	const member inner[] = { { "ok.txt", AE_IFREG, "fine", 0 }, { "a/", AE_IFDIR, NULL, 0 },
	                         { "a/../../b", AE_IFREG, "x", 0 }, { NULL, 0, NULL, 0 } };
	check_refused("a/../../b", inner, "'a/../../b'");
	const member dotdot_dir[] = { { "ok.txt", AE_IFREG, "fine", 0 }, { "../up/", AE_IFDIR, NULL, 0 },
	                              { NULL, 0, NULL, 0 } };
	check_refused("../up/", dotdot_dir, "'../up/'");
	const member sym[] = { { "ok.txt", AE_IFREG, "fine", 0 }, { "link", AE_IFLNK, "..", 0 },
	                       { "link/evil", AE_IFREG, "x", 0 }, { NULL, 0, NULL, 0 } };
	check_refused("symlink", sym, "'link' refused: symbolic link");
	const member hard[] = { { "ok.txt", AE_IFREG, "fine", 0 },
	                        { "hl", AE_IFREG, "ok.txt", 1 }, { NULL, 0, NULL, 0 } };
	check_refused("hardlink", hard, "'hl' refused: hard link");
	const member hard_out[] = { { "ok.txt", AE_IFREG, "fine", 0 },
	                            { "passwd", AE_IFREG, "/etc/passwd", 1 }, { NULL, 0, NULL, 0 } };
	check_refused("hardlink out", hard_out, "'passwd' refused: hard link");
	const member fifo[] = { { "ok.txt", AE_IFREG, "fine", 0 }, { "pipe", AE_IFIFO, NULL, 0 },
	                        { NULL, 0, NULL, 0 } };
	check_refused("fifo", fifo, "'pipe' refused: not a regular file");
	const member dev[] = { { "ok.txt", AE_IFREG, "fine", 0 }, { "null", AE_IFCHR, NULL, 0 },
	                       { NULL, 0, NULL, 0 } };
	check_refused("device", dev, "'null'");
	const member dup[] = { { "ok.txt", AE_IFREG, "fine", 0 }, { "ok.txt", AE_IFREG, "evil", 0 },
	                       { NULL, 0, NULL, 0 } };
	check_refused("duplicate", dup, "'ok.txt' refused: appears twice");
	const member dup_dir[] = { { "ok.txt", AE_IFREG, "fine", 0 }, { "d/", AE_IFDIR, NULL, 0 },
	                           { "d", AE_IFDIR, NULL, 0 }, { NULL, 0, NULL, 0 } };
	check_refused("duplicate folder", dup_dir, "'d/' refused: appears twice");
	const member file_dir[] = { { "ok.txt", AE_IFREG, "fine", 0 }, { "x", AE_IFREG, "f", 0 },
	                            { "x/y", AE_IFREG, "g", 0 }, { NULL, 0, NULL, 0 } };
	check_refused("file then folder", file_dir, "'x/y'");
	const member dir_file[] = { { "ok.txt", AE_IFREG, "fine", 0 }, { "x/y", AE_IFREG, "g", 0 },
	                            { "x", AE_IFREG, "f", 0 }, { NULL, 0, NULL, 0 } };
	check_refused("folder then file", dir_file, "'x'");
	const member dot[] = { { "ok.txt", AE_IFREG, "fine", 0 }, { "./x", AE_IFREG, "f", 0 },
	                       { NULL, 0, NULL, 0 } };
	check_refused("dot", dot, "'./x'");
	const member space[] = { { "ok.txt", AE_IFREG, "fine", 0 }, { "a b", AE_IFREG, "f", 0 },
	                         { NULL, 0, NULL, 0 } };
	check_refused("space", space, "'a b'");
	const member empty[] = { { "ok.txt", AE_IFREG, "fine", 0 }, { "a//b", AE_IFREG, "f", 0 },
	                         { NULL, 0, NULL, 0 } };
	check_refused("empty component", empty, "'a//b'");
	const member ctl[] = { { "ok.txt", AE_IFREG, "fine", 0 }, { "a\nb", AE_IFREG, "f", 0 },
	                       { NULL, 0, NULL, 0 } };
	check_refused("newline", ctl, "'a?b'"); /* shown without the newline */
}

/* Archives written by other tools are fine when they keep to the rules:
 * folders with a trailing '/', files before their folder, no folder members. */
static void test_foreign_archive(void)
{
	const char *base = test_tmpdir(), *dest = test_tmpdir();
	const member ok[] = { { "z/deep/file.txt", AE_IFREG, "deep", 0 }, { "z/", AE_IFDIR, NULL, 0 },
	                      { "a/", AE_IFDIR, NULL, 0 }, { "metadata.json", AE_IFREG, "{}", 0 },
	                      { NULL, 0, NULL, 0 } };
	char *arc = path_of(base, "ok.tar.gz");
	build_archive(arc, 1, ok);
	train_error err = { 0 };
	CU_ASSERT_EQUAL(train_package_extract(arc, dest, &err), 0);
	char *l = listing(dest);
	CU_ASSERT_PTR_NOT_NULL(strstr(l, "d a\n"));
	CU_ASSERT_PTR_NOT_NULL(strstr(l, "d z\nd z/deep\nf z/deep/file.txt 4 "));
	CU_ASSERT_PTR_NOT_NULL(strstr(l, "f metadata.json 2 "));
	char *data = NULL;
	CU_ASSERT_EQUAL(train_package_read_member(arc, "z/deep/file.txt", &data, NULL, &err), 0);
	CU_ASSERT(data && !strcmp(data, "deep"));
	free(data);
	free(l);
	free(arc);
}

static void test_garbage(void)
{
	const char *base = test_tmpdir(), *dest = test_tmpdir();
	char *junk = path_of(base, "junk.tar.gz");
	char text[4096];
	for (size_t i = 0; i < sizeof text; i++)
		text[i] = (char)('a' + i % 26);
	write_bytes(base, "junk.tar.gz", text, sizeof text);
	train_error err = { 0 };
	CU_ASSERT_EQUAL(train_package_extract(junk, dest, &err), TRAIN_EPARSE);
	CU_ASSERT(strstr(err.text, "not a model archive") != NULL);
	CU_ASSERT(strstr(err.file, "junk.tar.gz") != NULL);
	char *data = NULL;
	CU_ASSERT_EQUAL(train_package_read_member(junk, "metadata.json", &data, NULL, &err),
	                TRAIN_EPARSE);
	CU_ASSERT_EQUAL(train_dir_unpack(text, sizeof text, dest, &err), TRAIN_EPARSE);
	CU_ASSERT_EQUAL(train_dir_unpack(text, 0, dest, &err), TRAIN_EPARSE);

	/* an empty file */
	write_bytes(base, "empty.tar.gz", "", 0);
	char *empty = path_of(base, "empty.tar.gz");
	CU_ASSERT_EQUAL(train_package_extract(empty, dest, &err), TRAIN_EPARSE);

	/* a real archive, truncated */
	const char *src = test_tmpdir();
	make_tree(src, 0);
	char *arc = path_of(base, "model.tar.gz");
	CU_ASSERT_EQUAL_FATAL(train_package_write(src, arc, &err), 0);
	size_t size;
	char *whole = slurp(arc, &size);
	CU_ASSERT_PTR_NOT_NULL_FATAL(whole);
	write_bytes(base, "cut.tar.gz", whole, size / 2);
	char *cut = path_of(base, "cut.tar.gz");
	const char *dest2 = test_tmpdir();
	memset(&err, 0, sizeof err);
	CU_ASSERT_EQUAL(train_package_extract(cut, dest2, &err), TRAIN_EPARSE);
	CU_ASSERT_EQUAL(train_package_read_member(cut, "metadata.json", &data, NULL, &err),
	                TRAIN_EPARSE);
	CU_ASSERT_PTR_NULL(data);

	/* a blob is an uncompressed tar: the gzip'd one is refused */
	CU_ASSERT_EQUAL(train_dir_unpack(whole, size, dest2, &err), TRAIN_EPARSE);

	/* a missing archive */
	char *missing = path_of(base, "missing.tar.gz");
	CU_ASSERT_EQUAL(train_package_extract(missing, dest, &err), -ENOENT);
	free(missing);
	free(whole);
	free(cut);
	free(arc);
	free(empty);
	free(junk);
}

/* A read error is TRAIN_EIO, not a parse error: a folder cannot be read(2). */
static void test_read_error(void)
{
	const char *base = test_tmpdir(), *dest = test_tmpdir();
	train_error err = { 0 };
	CU_ASSERT_EQUAL(train_package_extract(base, dest, &err), TRAIN_EIO);
	CU_ASSERT(strstr(err.text, "read failed") != NULL);
	char *data = NULL;
	CU_ASSERT_EQUAL(train_package_read_member(base, "metadata.json", &data, NULL, &err), TRAIN_EIO);
	CU_ASSERT_PTR_NULL(data);
	/* and a destination that is not a folder */
	const char *src = test_tmpdir();
	write_text(src, "metadata.json", "{}");
	char *arc = path_of(base, "m.tar.gz"), *file = path_of(src, "metadata.json");
	CU_ASSERT_EQUAL_FATAL(train_package_write(src, arc, &err), 0);
	CU_ASSERT_EQUAL(train_package_extract(arc, file, &err), -ENOTDIR);
	free(arc);
	free(file);
}

/* One ustar header (no data follows) claiming `size` bytes, then the end. */
static void write_header_only(const char *path, const char *name, unsigned long long size)
{
	unsigned char tar[512 * 3];
	memset(tar, 0, sizeof tar);
	snprintf((char *)tar, 100, "%s", name);
	memcpy(tar + 100, "0000644", 8);
	memcpy(tar + 108, "0000000", 8);
	memcpy(tar + 116, "0000000", 8);
	snprintf((char *)tar + 124, 12, "%011llo", size);
	memcpy(tar + 136, "00000000000", 12);
	tar[156] = '0';
	memcpy(tar + 257, "ustar\0" "00", 8);
	memset(tar + 148, ' ', 8);
	unsigned sum = 0;
	for (int i = 0; i < 512; i++)
		sum += tar[i];
	snprintf((char *)tar + 148, 8, "%06o", sum);
	FILE *f = fopen(path, "wb");
	CU_ASSERT_FATAL(f && fwrite(tar, 1, sizeof tar, f) == sizeof tar && fclose(f) == 0);
}

/* A header may claim any size: nothing is allocated or trusted from it. */
static void test_lying_size(void)
{
	const char *base = test_tmpdir(), *dest = test_tmpdir();
	char *arc = path_of(base, "big.tar");
	write_header_only(arc, "metadata.json", 3ull << 30);
	train_error err = { 0 };
	char *data = NULL;
	CU_ASSERT_EQUAL(train_package_read_member(arc, "metadata.json", &data, NULL, &err),
	                TRAIN_EINVAL);
	CU_ASSERT(strstr(err.text, "too large") != NULL);
	CU_ASSERT_PTR_NULL(data);
	CU_ASSERT_EQUAL(train_package_extract(arc, dest, &err), TRAIN_EPARSE);

	write_header_only(arc, "metadata.json", 100000);
	CU_ASSERT_EQUAL(train_package_read_member(arc, "metadata.json", &data, NULL, &err),
	                TRAIN_EPARSE);
	CU_ASSERT_PTR_NULL(data);
	size_t size;
	char *blob = slurp(arc, &size);
	const char *dest2 = test_tmpdir();
	CU_ASSERT_EQUAL(train_dir_unpack(blob, size, dest2, &err), TRAIN_EPARSE);
	free(blob);
	free(arc);
}

/* ---- folder blobs ------------------------------------------------------------------------ */

static void test_dir_blob(void)
{
	const char *src = test_tmpdir(), *src2 = test_tmpdir(), *dest = test_tmpdir();
	make_tree(src, 0);
	make_tree(src2, 1);
	void *b1 = NULL, *b2 = NULL, *b3 = NULL;
	size_t s1 = 0, s2 = 0, s3 = 0;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_dir_pack(src, &b1, &s1, &err), 0);
	CU_ASSERT_EQUAL_FATAL(train_dir_pack(src, &b2, &s2, &err), 0);
	CU_ASSERT_EQUAL_FATAL(train_dir_pack(src2, &b3, &s3, &err), 0);
	CU_ASSERT(s1 == s2 && memcmp(b1, b2, s1) == 0);
	CU_ASSERT(s1 == s3 && memcmp(b1, b3, s1) == 0);
	CU_ASSERT(s1 % 512 == 0);
	CU_ASSERT(s1 < 70000 + 20 * 512); /* uncompressed, but not padded to 10 KiB blocks */
	CU_ASSERT(!memcmp((char *)b1 + 257, "ustar", 5)); /* plain tar, no gzip */

	CU_ASSERT_EQUAL(train_dir_unpack(b1, s1, dest, &err), 0);
	char *a = listing(src), *b = listing(dest);
	CU_ASSERT_STRING_EQUAL(a, b);

	/* a truncated blob */
	const char *dest2 = test_tmpdir();
	CU_ASSERT_EQUAL(train_dir_unpack(b1, s1 / 2, dest2, &err), TRAIN_EPARSE);
	free(a);
	free(b);
	free(b1);
	free(b2);
	free(b3);
}

/* A model written from blobs in memory is what packing the same tree gives. */
static void test_write_parts(void)
{
	const char *a = test_tmpdir(), *b = test_tmpdir(), *out = test_tmpdir();
	const char *dest = test_tmpdir();
	char *pa = path_of(a, "state.txt"), *pb = path_of(b, "w.bin");
	test_write(pa, "alpha");
	test_write(pb, "binary\001\002");
	free(pa);
	free(pb);
	void *ba = NULL, *bb = NULL;
	size_t sa = 0, sb = 0;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_dir_pack(a, &ba, &sa, &err), 0);
	CU_ASSERT_EQUAL_FATAL(train_dir_pack(b, &bb, &sb, &err), 0);
	const char *names[] = { "first", "second" };
	const void *blobs[] = { ba, bb };
	size_t sizes[] = { sa, sb };
	const char meta[] = "{\"format\": 1}\n";
	char *m1 = path_of(out, "m1.tar.gz"), *m2 = path_of(out, "m2.tar.gz");
	CU_ASSERT_EQUAL_FATAL(train_package_write_parts(m1, meta, strlen(meta), names, blobs, sizes,
	                                                2, &err), 0);
	CU_ASSERT_EQUAL_FATAL(train_package_write_parts(m2, meta, strlen(meta), names, blobs, sizes,
	                                                2, &err), 0);
	size_t s1, s2;
	char *d1 = slurp(m1, &s1), *d2 = slurp(m2, &s2);
	CU_ASSERT(d1 && d2 && s1 == s2 && memcmp(d1, d2, s1) == 0);
	CU_ASSERT_EQUAL(train_package_extract(m1, dest, &err), 0);
	char *l = listing(dest);
	CU_ASSERT_PTR_NOT_NULL(strstr(l, "f components/first/state.txt 5 "));
	CU_ASSERT_PTR_NOT_NULL(strstr(l, "f components/second/w.bin 8 "));
	CU_ASSERT_PTR_NOT_NULL(strstr(l, "f metadata.json "));
	/* Names must be plain, sorted and unique; nothing is written otherwise. */
	const char *unsorted[] = { "second", "first" };
	char *m3 = path_of(out, "m3.tar.gz");
	CU_ASSERT_EQUAL(train_package_write_parts(m3, meta, strlen(meta), unsorted, blobs, sizes, 2,
	                                          &err), TRAIN_EINVAL);
	const char *nested[] = { "a/b" };
	CU_ASSERT_EQUAL(train_package_write_parts(m3, meta, strlen(meta), nested, blobs, sizes, 1,
	                                          &err), TRAIN_EINVAL);
	CU_ASSERT(!train_path_exists(m3));
	/* A damaged blob (cut inside its file's data) fails the write and
	 * leaves no file. */
	size_t half = 512 + 4;
	const void *bad[] = { ba, bb };
	size_t bad_sizes[] = { sa, half };
	CU_ASSERT_EQUAL(train_package_write_parts(m3, meta, strlen(meta), names, bad, bad_sizes, 2,
	                                          &err), TRAIN_EPARSE);
	CU_ASSERT(!train_path_exists(m3));
	CU_ASSERT_EQUAL(count_entries(out), 2);
	free(l);
	free(d1);
	free(d2);
	free(m1);
	free(m2);
	free(m3);
	free(ba);
	free(bb);
}

/* A link planted in dest_dir does not lead extraction out of it. */
static void test_planted_link(void)
{
	const char *base = test_tmpdir(), *outside = test_tmpdir();
	char *dest = path_of(base, "dest");
	CU_ASSERT_EQUAL_FATAL(mkdir(dest, 0755), 0);
	char *link = path_of(dest, "components");
	CU_ASSERT_EQUAL_FATAL(symlink(outside, link), 0);
	const member m[] = { { "components/x.txt", AE_IFREG, "x", 0 }, { NULL, 0, NULL, 0 } };
	char *arc = path_of(base, "m.tar.gz");
	build_archive(arc, 1, m);
	train_error err = { 0 };
	CU_ASSERT_EQUAL(train_package_extract(arc, dest, &err), TRAIN_EEXIST);
	CU_ASSERT_EQUAL(count_entries(outside), 0);
	/* a planted file link is not written through either */
	char *flink = path_of(dest, "metadata.json");
	char *target = path_of(outside, "target");
	CU_ASSERT_EQUAL_FATAL(symlink(target, flink), 0);
	const member m2[] = { { "metadata.json", AE_IFREG, "x", 0 }, { NULL, 0, NULL, 0 } };
	build_archive(arc, 1, m2);
	CU_ASSERT_EQUAL(train_package_extract(arc, dest, &err), TRAIN_EEXIST);
	CU_ASSERT_EQUAL(count_entries(outside), 0);
	free(flink);
	free(target);
	free(arc);
	free(link);
	free(dest);
}

int main(void)
{
	static const test_case cases[] = {
		{ "roundtrip", test_roundtrip },
		{ "deterministic", test_deterministic },
		{ "long_names", test_long_names },
		{ "empty_folder", test_empty_folder },
		{ "atomic", test_atomic },
		{ "read_member", test_read_member },
		{ "unsafe_members", test_unsafe_members },
		{ "foreign_archive", test_foreign_archive },
		{ "garbage", test_garbage },
		{ "read_error", test_read_error },
		{ "lying_size", test_lying_size },
		{ "dir_blob", test_dir_blob },
		{ "write_parts", test_write_parts },
		{ "planted_link", test_planted_link },
		{ NULL, NULL },
	};
	return test_main("package", cases);
}
