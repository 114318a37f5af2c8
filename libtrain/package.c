/*
 * libtrain/package.c - model archives (gzip'd tar files) and folder blobs
 * (plain tar in memory), on libarchive.
 *
 * Writing walks the folder without following links, sorts every entry
 * (folders included) bytewise by relative name and writes each one with
 * fixed metadata: mtime 0, uid/gid 0, no user or group name, mode 0644 or
 * 0755.  The format is restricted pax, which is plain ustar unless a name or
 * a size needs an extended header, and the gzip header carries no time and
 * no file name.  So the same folder content always gives the same bytes,
 * whatever the files' times, owners and modes, and whoever packs them.
 *
 * Reading checks every member before anything is done with it
 * (member_check): the name must pass train_safe_relname (which also rules
 * out absolute names and "." / ".." components), links, devices, fifos and
 * sockets are refused, a name may appear once, and no member may need a
 * file where another needs a folder.  All three readers run the same checks
 * over the whole archive, so they agree on what an archive contains.
 *
 * Extraction does not use archive_write_disk: each folder is reached one
 * component at a time from a descriptor of dest_dir with O_NOFOLLOW, and
 * files are created with O_CREAT|O_EXCL|O_NOFOLLOW, so no member, and no
 * link planted in dest_dir meanwhile, can make a write land outside it.
 * Extracted files get 0644 and folders 0755 (less the umask); the modes in
 * the archive are ignored.
 *
 * Not handled: a limit on the total size extracted (models may be large; a
 * caller that fears a gzip bomb should extract to a quota'd place).
 */
#include "package.h"

#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PKG_CHUNK (64 * 1024)      /* read and write buffer size */
#define PKG_NAME_MAX 4096          /* longest member name, in bytes */
#define PKG_DEPTH_MAX 256          /* deepest folder nesting packed */
#define PKG_MEMBERS_MAX 1000000    /* most members in one archive */
#define PKG_SHOWN 160              /* longest name quoted in a message */

/* ---- messages --------------------------------------------------------------- */

/* A member name fit for a one-line message: control and non-ASCII bytes
 * become '?', and long names are cut with "...". */
static const char *name_shown(const char *name, char out[PKG_SHOWN])
{
	size_t i = 0;
	for (; name[i] && i < PKG_SHOWN - 4; i++) {
		unsigned char c = (unsigned char)name[i];
		out[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
	}
	if (name[i]) {
		memcpy(out + i, "...", 3);
		i += 3;
	}
	out[i] = '\0';
	return out;
}

/* ---- a set of member names ------------------------------------------------- */

/* What a name is known to be: a file member, a folder member, or the parent
 * folder of some member (which need not be a member itself). */
enum { NAME_FILE = 1, NAME_DIR = 2, NAME_PARENT = 4 };

typedef struct name_set {
	char **keys;            /* cap slots, NULL when empty */
	unsigned char *flags;   /* NAME_* per slot */
	size_t cap, count;      /* cap is a power of two, or 0 */
} name_set;

static uint64_t name_hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603u; /* FNV-1a */
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211u;
	}
	return h;
}

/* The slot holding the first `n` bytes of `name`, or the empty slot where
 * they would go.  The set must have room (count < cap). */
static size_t name_set_slot(const name_set *s, const char *name, size_t n)
{
	size_t mask = s->cap - 1;
	size_t i = (size_t)name_hash(name, n) & mask;
	while (s->keys[i] && !(strncmp(s->keys[i], name, n) == 0 && s->keys[i][n] == '\0'))
		i = (i + 1) & mask;
	return i;
}

static int name_set_grow(name_set *s)
{
	size_t ncap = s->cap ? s->cap * 2 : 64;
	name_set ns = { calloc(ncap, sizeof *ns.keys), calloc(ncap, 1), ncap, s->count };
	if (!ns.keys || !ns.flags) {
		free(ns.keys);
		free(ns.flags);
		return TRAIN_ENOMEM;
	}
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->keys[i])
			continue;
		size_t j = name_set_slot(&ns, s->keys[i], strlen(s->keys[i]));
		ns.keys[j] = s->keys[i];
		ns.flags[j] = s->flags[i];
	}
	free(s->keys);
	free(s->flags);
	*s = ns;
	return TRAIN_OK;
}

/* Add `flag` to the first `n` bytes of `name`; its flags before go to *old. */
static int name_set_mark(name_set *s, const char *name, size_t n, unsigned char flag,
                         unsigned char *old)
{
	if ((s->count + 1) * 2 > s->cap && name_set_grow(s) != TRAIN_OK)
		return TRAIN_ENOMEM;
	size_t i = name_set_slot(s, name, n);
	if (!s->keys[i]) {
		s->keys[i] = strndup(name, n);
		if (!s->keys[i])
			return TRAIN_ENOMEM;
		s->flags[i] = 0;
		s->count++;
	}
	*old = s->flags[i];
	s->flags[i] |= flag;
	return TRAIN_OK;
}

static void name_set_free(name_set *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->keys[i]);
	free(s->keys);
	free(s->flags);
	memset(s, 0, sizeof *s);
}

/* ---- walking a folder to pack ------------------------------------------------ */

typedef struct pack_entry {
	char *name;     /* relative, no trailing '/' */
	int is_dir;
} pack_entry;

typedef struct pack_list {
	pack_entry *v;
	size_t n, cap;
} pack_list;

static void pack_list_free(pack_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].name);
	free(l->v);
	memset(l, 0, sizeof *l);
}

static int pack_list_add(pack_list *l, char *name, int is_dir)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 32;
		pack_entry *nv = realloc(l->v, ncap * sizeof *nv);
		if (!nv)
			return TRAIN_ENOMEM;
		l->v = nv;
		l->cap = ncap;
	}
	l->v[l->n].name = name;
	l->v[l->n].is_dir = is_dir;
	l->n++;
	return TRAIN_OK;
}

static int pack_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const pack_entry *)a)->name, ((const pack_entry *)b)->name);
}

/* Add everything under root/rel (rel "" for root itself) to `l`.  Only
 * regular files and folders may be there, under names the readers accept. */
static int pack_walk(const char *root, const char *rel, int depth, pack_list *l, train_error *err)
{
	int rc = TRAIN_OK;
	char shown[PKG_SHOWN];
	char *path = rel[0] ? train_path_join(root, rel) : train_strdup(root);
	DIR *d = NULL;
	if (!path) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	if (depth > PKG_DEPTH_MAX) {
		rc = train_error_set(err, TRAIN_EINVAL, root, 0, 0,
		                     "'%s': folders nested more than %d deep", name_shown(rel, shown),
		                     PKG_DEPTH_MAX);
		goto out;
	}
	d = opendir(path);
	if (!d) {
		rc = train_error_set(err, -errno, path, 0, 0, "cannot open folder: %s", strerror(errno));
		goto out;
	}
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				rc = train_error_set(err, TRAIN_EIO, path, 0, 0, "cannot read folder: %s",
				                     strerror(errno));
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char *name = rel[0] ? train_strfmt("%s/%s", rel, de->d_name) : train_strdup(de->d_name);
		if (!name) {
			rc = TRAIN_ENOMEM;
			break;
		}
		struct stat st;
		if (strlen(name) > PKG_NAME_MAX || !train_safe_relname(name)) {
			rc = train_error_set(err, TRAIN_EINVAL, root, 0, 0,
			                     "'%s' cannot go into an archive: names may only use "
			                     "A-Z a-z 0-9 . _ - + @ and be at most %d bytes",
			                     name_shown(name, shown), PKG_NAME_MAX);
		} else if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			rc = train_error_set(err, -errno, root, 0, 0, "'%s': cannot stat: %s",
			                     name_shown(name, shown), strerror(errno));
		} else if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
			rc = train_error_set(err, TRAIN_EINVAL, root, 0, 0,
			                     "'%s' cannot go into an archive: not a regular file or folder",
			                     name_shown(name, shown));
		} else if ((rc = pack_list_add(l, name, S_ISDIR(st.st_mode))) == TRAIN_OK) {
			if (S_ISDIR(st.st_mode))
				rc = pack_walk(root, name, depth + 1, l, err);
			name = NULL; /* owned by l */
		}
		free(name);
		if (rc)
			break;
	}
out:
	if (d)
		closedir(d);
	free(path);
	return rc;
}

/* The sorted entries under `root`. */
static int pack_list_make(const char *root, pack_list *l, train_error *err)
{
	int rc = pack_walk(root, "", 0, l, err);
	if (rc) {
		pack_list_free(l);
		return rc;
	}
	if (l->n)
		qsort(l->v, l->n, sizeof *l->v, pack_entry_cmp);
	return TRAIN_OK;
}

/* ---- writing an archive -------------------------------------------------------- */

/* Where libarchive's output goes: a file descriptor, or memory (fd < 0). */
typedef struct pack_sink {
	int fd;
	train_buf mem;
	int write_errno;  /* errno of the failed write, 0 if none */
	int discard;      /* set once packing failed: drop what is still flushed */
} pack_sink;

static la_ssize_t pack_sink_write(struct archive *a, void *ud, const void *data, size_t size)
{
	pack_sink *s = ud;
	if (s->discard)
		return (la_ssize_t)size;
	if (s->fd < 0) {
		if (train_buf_add(&s->mem, data, size) != TRAIN_OK) {
			s->write_errno = ENOMEM;
			archive_set_error(a, ENOMEM, "out of memory");
			return -1;
		}
		return (la_ssize_t)size;
	}
	const char *p = data;
	size_t left = size;
	while (left) {
		ssize_t n = write(s->fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			s->write_errno = errno;
			archive_set_error(a, errno, "write failed: %s", strerror(errno));
			return -1;
		}
		p += n;
		left -= (size_t)n;
	}
	return (la_ssize_t)size;
}

/* The error after a libarchive write call failed. */
static int pack_fail(struct archive *a, const pack_sink *s, const char *file, train_error *err)
{
	if (s->write_errno == ENOMEM || archive_errno(a) == ENOMEM)
		return train_error_set(err, TRAIN_ENOMEM, file, 0, 0, "out of memory");
	if (s->write_errno)
		return train_error_set(err, TRAIN_EIO, file, 0, 0, "write failed: %s",
		                       strerror(s->write_errno));
	const char *msg = archive_error_string(a);
	return train_error_set(err, TRAIN_EIO, file, 0, 0, "cannot write archive: %s",
	                       msg ? msg : "unknown libarchive error");
}

/* A libarchive writer for our format, output to `s`, optionally gzip'd. */
static int pack_open(struct archive **out, pack_sink *s, int gzip, const char *file,
                     train_error *err)
{
	int rc = TRAIN_OK;
	struct archive *a = archive_write_new();
	if (!a)
		return TRAIN_ENOMEM;
	if (archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    (gzip && archive_write_add_filter_gzip(a) != ARCHIVE_OK) ||
	    /* A time in the gzip header would make every archive different.
	     * libarchive writes no file name there. */
	    (gzip && archive_write_set_filter_option(a, "gzip", "timestamp", NULL) != ARCHIVE_OK) ||
	    /* No padding to 10240-byte blocks: the end-of-archive records suffice. */
	    archive_write_set_bytes_in_last_block(a, 1) != ARCHIVE_OK) {
		const char *msg = archive_error_string(a);
		rc = train_error_set(err, TRAIN_EUNSUPPORTED, file, 0, 0,
		                     "libarchive cannot write deterministic archives: %s",
		                     msg ? msg : "option refused");
		goto out;
	}
	if (archive_write_open(a, s, NULL, pack_sink_write, NULL) != ARCHIVE_OK) {
		rc = pack_fail(a, s, file, err);
		goto out;
	}
out:
	if (rc) {
		s->discard = 1;
		archive_write_free(a);
		a = NULL;
	}
	*out = a;
	return rc;
}

/* Write one regular file's header and data. */
static int pack_file(struct archive *a, pack_sink *s, struct archive_entry *e, const char *root,
                     const char *name, void *buf, const char *file, train_error *err)
{
	int rc = TRAIN_OK;
	char shown[PKG_SHOWN];
	char *path = train_path_join(root, name);
	int fd = -1;
	if (!path) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		rc = train_error_set(err, -errno, path, 0, 0, "cannot open: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = train_error_set(err, TRAIN_EINVAL, path, 0, 0, "no longer a regular file");
		goto out;
	}
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, st.st_size);
	if (archive_write_header(a, e) != ARCHIVE_OK) {
		rc = pack_fail(a, s, file, err);
		goto out;
	}
	int64_t left = st.st_size;
	while (left > 0) {
		size_t want = left < PKG_CHUNK ? (size_t)left : PKG_CHUNK;
		ssize_t n = read(fd, buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = train_error_set(err, TRAIN_EIO, path, 0, 0, "read failed: %s", strerror(errno));
			goto out;
		}
		if (n == 0) {
			/* The header already promised st_size bytes. */
			rc = train_error_set(err, TRAIN_EIO, root, 0, 0, "'%s' shrank while being packed",
			                     name_shown(name, shown));
			goto out;
		}
		if (archive_write_data(a, buf, (size_t)n) != n) {
			rc = pack_fail(a, s, file, err);
			goto out;
		}
		left -= n;
	}
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

/* Write the entries of `l` (from pack_list_make on `root`) to `a`, then
 * close it, which flushes everything to the sink.  `file` names the output
 * in messages (NULL for memory). */
static int pack_write(struct archive *a, pack_sink *s, const char *root, const pack_list *l,
                      const char *file, train_error *err)
{
	int rc = TRAIN_OK;
	void *buf = malloc(PKG_CHUNK);
	struct archive_entry *e = archive_entry_new();
	char *dname = NULL;
	if (!buf || !e) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < l->n; i++) {
		archive_entry_clear(e);
		/* Everything but the name, type, mode and size is fixed (and mostly
		 * left unset, which writes zeros and empty names). */
		archive_entry_set_mtime(e, 0, 0);
		archive_entry_set_uid(e, 0);
		archive_entry_set_gid(e, 0);
		if (!l->v[i].is_dir) {
			rc = pack_file(a, s, e, root, l->v[i].name, buf, file, err);
			if (rc)
				goto out;
			continue;
		}
		dname = train_strfmt("%s/", l->v[i].name);
		if (!dname) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		archive_entry_set_pathname(e, dname);
		archive_entry_set_filetype(e, AE_IFDIR);
		archive_entry_set_perm(e, 0755);
		archive_entry_set_size(e, 0);
		if (archive_write_header(a, e) != ARCHIVE_OK) {
			rc = pack_fail(a, s, file, err);
			goto out;
		}
		free(dname);
		dname = NULL;
	}
	if (archive_write_close(a) != ARCHIVE_OK)
		rc = pack_fail(a, s, file, err);
out:
	if (rc)
		s->discard = 1;
	free(dname);
	archive_entry_free(e);
	free(buf);
	return rc;
}

/* A model archive being written: a temporary file beside the final name. */
typedef struct pkg_out {
	pack_sink s;
	struct archive *a;
	char *dir, *tmp;
	const char *path;
} pkg_out;

static int out_begin(pkg_out *o, const char *archive_path, train_error *err)
{
	memset(o, 0, sizeof *o);
	o->s.fd = -1;
	o->path = archive_path;
	const char *base = strrchr(archive_path, '/');
	base = base ? base + 1 : archive_path;
	if (!*base)
		return train_error_set(err, TRAIN_EINVAL, archive_path, 0, 0, "not a file name");
	o->dir = train_dirname(archive_path);
	o->tmp = o->dir ? train_strfmt("%s/.%s.tmp-%ld-XXXXXX", o->dir, base, (long)getpid()) : NULL;
	if (!o->tmp)
		return TRAIN_ENOMEM;
	o->s.fd = mkostemp(o->tmp, O_CLOEXEC);
	if (o->s.fd < 0) {
		int rc = train_error_set(err, -errno, archive_path, 0, 0,
		                         "cannot create a temporary file in '%s': %s", o->dir,
		                         strerror(errno));
		free(o->tmp);
		o->tmp = NULL; /* nothing to remove */
		return rc;
	}
	/* mkostemp makes 0600; a model is as readable as any written file. */
	if (fchmod(o->s.fd, 0644) != 0)
		return train_error_set(err, TRAIN_EIO, o->tmp, 0, 0, "cannot set mode: %s",
		                       strerror(errno));
	return pack_open(&o->a, &o->s, 1, archive_path, err);
}

/* After the archive was closed (flushed): make it durable and give it its
 * name.  With rc != 0, undo instead.  Returns rc or the new error. */
static int out_end(pkg_out *o, int rc, train_error *err)
{
	if (!rc && fsync(o->s.fd) != 0)
		rc = train_error_set(err, TRAIN_EIO, o->tmp, 0, 0, "fsync failed: %s", strerror(errno));
	if (o->a) {
		/* Before the descriptor closes: free flushes an unclosed archive
		 * (to nowhere, since discard is set on failure). */
		if (rc)
			o->s.discard = 1;
		archive_write_free(o->a);
		o->a = NULL;
	}
	if (o->s.fd >= 0 && close(o->s.fd) != 0 && !rc)
		rc = train_error_set(err, TRAIN_EIO, o->tmp, 0, 0, "close failed: %s", strerror(errno));
	o->s.fd = -1;
	if (!rc && rename(o->tmp, o->path) != 0)
		rc = train_error_set(err, -errno, o->path, 0, 0, "cannot rename '%s' to it: %s", o->tmp,
		                     strerror(errno));
	if (!rc) {
		/* Make the rename itself durable.  The archive is in place whatever
		 * happens here, so a failure is not reported. */
		int dfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			if (fsync(dfd) != 0) {
				/* nothing to do: see above */
			}
			close(dfd);
		}
	}
	if (rc && o->tmp)
		unlink(o->tmp);
	free(o->tmp);
	free(o->dir);
	train_buf_free(&o->s.mem);
	return rc;
}

int train_package_write(const char *staging_dir, const char *archive_path, train_error *err)
{
	pack_list l = { 0 };
	pkg_out o;
	/* Walk first, so that a bad staging folder never creates a file. */
	int rc = pack_list_make(staging_dir, &l, err);
	if (rc) {
		pack_list_free(&l);
		return rc;
	}
	rc = out_begin(&o, archive_path, err);
	if (!rc)
		rc = pack_write(o.a, &o.s, staging_dir, &l, archive_path, err);
	rc = out_end(&o, rc, err);
	pack_list_free(&l);
	return rc;
}

int train_dir_pack(const char *dir, void **blob, size_t *size, train_error *err)
{
	int rc = TRAIN_OK;
	pack_list l = { 0 };
	pack_sink s = { .fd = -1 };
	struct archive *a = NULL;
	*blob = NULL;
	*size = 0;
	rc = pack_list_make(dir, &l, err);
	if (rc)
		goto out;
	rc = pack_open(&a, &s, 0, NULL, err);
	if (rc)
		goto out;
	rc = pack_write(a, &s, dir, &l, NULL, err);
	if (rc)
		goto out;
	*blob = s.mem.data;
	*size = s.mem.len;
	s.mem.data = NULL;
out:
	if (a) {
		if (rc)
			s.discard = 1;
		archive_write_free(a);
	}
	train_buf_free(&s.mem);
	pack_list_free(&l);
	return rc;
}

/* ---- reading an archive -------------------------------------------------------- */

typedef struct pkg_reader {
	struct archive *a;
	const char *path;       /* the archive file, for messages; NULL for a blob */
	const char *what;       /* "model archive" or "folder blob" */
	int fd;                 /* the archive file, or -1 */
	int read_errno;         /* errno of a failed read(2), 0 if none */
	unsigned char *inbuf;   /* buffer of reader_read */
	unsigned char *databuf; /* buffer for member data */
	name_set names;         /* every member name and parent folder so far */
	size_t members;
	int64_t size;           /* current member's data size (0 for folders) */
	int is_dir;             /* current member is a folder */
	char name[PKG_NAME_MAX + 1]; /* current member, without a folder's '/' */
	char shown[PKG_SHOWN];  /* the same, fit for messages */
} pkg_reader;

static la_ssize_t reader_read(struct archive *a, void *ud, const void **buf)
{
	pkg_reader *r = ud;
	for (;;) {
		ssize_t n = read(r->fd, r->inbuf, PKG_CHUNK);
		if (n >= 0) {
			*buf = r->inbuf;
			return n;
		}
		if (errno != EINTR) {
			r->read_errno = errno;
			archive_set_error(a, errno, "read failed: %s", strerror(errno));
			return -1;
		}
	}
}

/* The error after a libarchive read call failed; `context` opens the message. */
static int reader_fail(pkg_reader *r, const char *context, train_error *err)
{
	if (r->read_errno)
		return train_error_set(err, TRAIN_EIO, r->path, 0, 0, "%s: read failed: %s", context,
		                       strerror(r->read_errno));
	if (archive_errno(r->a) == ENOMEM)
		return train_error_set(err, TRAIN_ENOMEM, r->path, 0, 0, "out of memory");
	const char *msg = archive_error_string(r->a);
	return train_error_set(err, TRAIN_EPARSE, r->path, 0, 0, "%s: %s", context,
	                       msg ? msg : "unknown libarchive error");
}

static void reader_close(pkg_reader *r)
{
	if (r->a)
		archive_read_free(r->a);
	if (r->fd >= 0)
		close(r->fd);
	free(r->inbuf);
	free(r->databuf);
	name_set_free(&r->names);
	r->a = NULL;
	r->fd = -1;
	r->inbuf = r->databuf = NULL;
}

/* Open a model archive file (path != NULL) or a folder blob in memory. */
static int reader_open(pkg_reader *r, const char *path, const void *blob, size_t size,
                       train_error *err)
{
	int rc = TRAIN_OK;
	memset(r, 0, sizeof *r);
	r->fd = -1;
	r->path = path;
	r->what = path ? "model archive" : "folder blob";
	r->databuf = malloc(PKG_CHUNK);
	r->a = archive_read_new();
	if (!r->databuf || !r->a) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	/* Tar only: no other format can sneak in, and a blob is never compressed. */
	if (archive_read_support_format_tar(r->a) != ARCHIVE_OK ||
	    (path && archive_read_support_filter_gzip(r->a) != ARCHIVE_OK)) {
		rc = train_error_set(err, TRAIN_EUNSUPPORTED, path, 0, 0,
		                     "libarchive cannot read gzip'd tar files");
		goto out;
	}
	int ar;
	if (path) {
		r->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (r->fd < 0) {
			rc = train_error_set(err, -errno, path, 0, 0, "cannot open: %s", strerror(errno));
			goto out;
		}
		r->inbuf = malloc(PKG_CHUNK);
		if (!r->inbuf) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		ar = archive_read_open(r->a, r, NULL, reader_read, NULL);
	} else {
		ar = archive_read_open_memory(r->a, blob, size);
	}
	if (ar != ARCHIVE_OK) {
		rc = reader_fail(r, path ? "not a model archive" : "not a folder blob", err);
		goto out;
	}
out:
	if (rc)
		reader_close(r);
	return rc;
}

/* The error for an unsafe current member: TRAIN_EUNSAFE, naming it. */
static int reader_unsafe(pkg_reader *r, const char *why, train_error *err)
{
	return train_error_set(err, TRAIN_EUNSAFE, r->path, 0, 0, "%s member '%s' refused: %s",
	                       r->what, r->shown, why);
}

/* Check the member `e` just read and record its name (see the file comment). */
static int member_check(pkg_reader *r, struct archive_entry *e, train_error *err)
{
	const char *raw = archive_entry_pathname(e);
	if (!raw) {
		name_shown("", r->shown);
		return reader_unsafe(r, "its name cannot be read", err);
	}
	name_shown(raw, r->shown);
	size_t n = strlen(raw);
	if (n > PKG_NAME_MAX)
		return reader_unsafe(r, "name too long", err);
	if (++r->members > PKG_MEMBERS_MAX)
		return reader_unsafe(r, "too many members", err);
	mode_t type = archive_entry_filetype(e);
	if (archive_entry_hardlink(e))
		return reader_unsafe(r, "hard link", err);
	if (type == AE_IFLNK || archive_entry_symlink(e))
		return reader_unsafe(r, "symbolic link", err);
	if (type != AE_IFREG && type != AE_IFDIR)
		return reader_unsafe(r, "not a regular file or folder", err);
	r->is_dir = type == AE_IFDIR;
	if (raw[0] == '/')
		return reader_unsafe(r, "absolute name", err);
	for (const char *p = raw; *p;) {
		size_t len = strcspn(p, "/");
		if (len == 2 && p[0] == '.' && p[1] == '.')
			return reader_unsafe(r, "'..' in its name", err);
		p += len;
		p += *p == '/';
	}
	memcpy(r->name, raw, n + 1);
	if (n > 0 && r->name[n - 1] == '/') {
		if (!r->is_dir)
			return reader_unsafe(r, "a file name ends with '/'", err);
		r->name[--n] = '\0';
	}
	if (!train_safe_relname(r->name) || (n > 0 && r->name[n - 1] == '/'))
		return reader_unsafe(r, "name not allowed (components of A-Z a-z 0-9 . _ - + @, "
		                     "no empty, '.' or '..' ones)", err);
	r->size = 0;
	if (!r->is_dir) {
		if (!archive_entry_size_is_set(e) || archive_entry_size(e) < 0)
			return reader_unsafe(r, "no valid size", err);
		r->size = archive_entry_size(e);
	}

	/* One name, one member; and nothing both a file and a folder. */
	unsigned char old;
	int rc = name_set_mark(&r->names, r->name, n, r->is_dir ? NAME_DIR : NAME_FILE, &old);
	if (rc)
		return rc;
	if (old & (NAME_FILE | NAME_DIR))
		return reader_unsafe(r, "appears twice", err);
	if (!r->is_dir && (old & NAME_PARENT))
		return reader_unsafe(r, "a file where other members have a folder", err);
	for (size_t i = 0; i < n; i++) {
		if (r->name[i] != '/')
			continue;
		rc = name_set_mark(&r->names, r->name, i, NAME_PARENT, &old);
		if (rc)
			return rc;
		if (old & NAME_FILE)
			return reader_unsafe(r, "inside what another member has as a file", err);
	}
	return TRAIN_OK;
}

/* The next member: 1 when there is one (checked, in r->name etc.), 0 at
 * the end, or an error. */
static int reader_next(pkg_reader *r, train_error *err)
{
	struct archive_entry *e;
	int ar = archive_read_next_header(r->a, &e);
	if (ar == ARCHIVE_EOF)
		return 0;
	if (ar != ARCHIVE_OK) {
		/* ARCHIVE_WARN included: it means a header was not fully understood. */
		char ctx[PKG_SHOWN + 64];
		if (r->members == 0)
			snprintf(ctx, sizeof ctx, "not a %s", r->what);
		else
			snprintf(ctx, sizeof ctx, "damaged %s after member '%s'", r->what, r->shown);
		return reader_fail(r, ctx, err);
	}
	int rc = member_check(r, e, err);
	return rc ? rc : 1;
}

/* Read the current member's data in chunks, passing each to `fn` (which
 * returns 0 or an error), and check it has exactly the size its header says. */
static int reader_data(pkg_reader *r, int (*fn)(void *ud, const void *data, size_t n),
                       void *ud, train_error *err)
{
	int64_t total = 0;
	for (;;) {
		la_ssize_t n = archive_read_data(r->a, r->databuf, PKG_CHUNK);
		if (n < 0) {
			char ctx[PKG_SHOWN + 64];
			snprintf(ctx, sizeof ctx, "damaged %s in member '%s'", r->what, r->shown);
			return reader_fail(r, ctx, err);
		}
		if (n == 0)
			break;
		if (n > r->size - total)
			return train_error_set(err, TRAIN_EPARSE, r->path, 0, 0,
			                       "damaged %s: member '%s' is longer than its size", r->what,
			                       r->shown);
		total += n;
		int rc = fn(ud, r->databuf, (size_t)n);
		if (rc)
			return rc;
	}
	if (total != r->size)
		return train_error_set(err, TRAIN_EPARSE, r->path, 0, 0,
		                       "damaged %s: member '%s' is shorter than its size", r->what,
		                       r->shown);
	return TRAIN_OK;
}

/* ---- extraction ----------------------------------------------------------------- */

/* The folder made of the first `n` bytes of `rel` under the folder `root`,
 * opened (fd to *out) and created as needed, one component at a time
 * without following links. */
static int extract_dir(pkg_reader *r, int root, const char *rel, size_t n, int *out,
                       train_error *err)
{
	int rc = TRAIN_OK;
	char comp[PKG_NAME_MAX + 1];
	int fd = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		rc = train_error_set(err, -errno, r->path, 0, 0, "cannot open the destination: %s",
		                     strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < n;) {
		size_t len = strcspn(rel + i, "/");
		if (len > n - i)
			len = n - i;
		memcpy(comp, rel + i, len);
		comp[len] = '\0';
		i += len + 1;
		if (mkdirat(fd, comp, 0755) != 0 && errno != EEXIST) {
			rc = train_error_set(err, -errno, r->path, 0, 0,
			                     "member '%s': cannot create folder: %s", r->shown,
			                     strerror(errno));
			goto out;
		}
		int next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			int e = errno;
			rc = (e == ENOTDIR || e == ELOOP)
				? train_error_set(err, TRAIN_EEXIST, r->path, 0, 0,
				                  "member '%s': the destination has a non-folder "
				                  "in its way", r->shown)
				: train_error_set(err, -e, r->path, 0, 0, "member '%s': cannot open folder: %s",
				                  r->shown, strerror(e));
			goto out;
		}
		close(fd);
		fd = next;
	}
out:
	if (rc && fd >= 0) {
		close(fd);
		fd = -1;
	}
	*out = fd;
	return rc;
}

typedef struct fd_writer {
	pkg_reader *r;
	int fd;
	train_error *err;
} fd_writer;

static int fd_writer_put(void *ud, const void *data, size_t size)
{
	fd_writer *w = ud;
	const char *p = data;
	while (size) {
		ssize_t n = write(w->fd, p, size);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return train_error_set(w->err, TRAIN_EIO, w->r->path, 0, 0,
			                       "member '%s': write failed: %s", w->r->shown, strerror(errno));
		p += n;
		size -= (size_t)n;
	}
	return TRAIN_OK;
}

/* Extract the current member under the folder `root`. */
static int extract_member(pkg_reader *r, int root, train_error *err)
{
	int rc = TRAIN_OK;
	int dfd = -1, fd = -1;
	if (r->is_dir) {
		rc = extract_dir(r, root, r->name, strlen(r->name), &dfd, err);
		goto out;
	}
	const char *slash = strrchr(r->name, '/');
	const char *base = slash ? slash + 1 : r->name;
	rc = extract_dir(r, root, r->name, slash ? (size_t)(slash - r->name) : 0, &dfd, err);
	if (rc)
		goto out;
	fd = openat(dfd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		int e = errno;
		rc = e == EEXIST
			? train_error_set(err, TRAIN_EEXIST, r->path, 0, 0,
			                  "member '%s': already exists in the destination", r->shown)
			: train_error_set(err, -e, r->path, 0, 0, "member '%s': cannot create: %s",
			                  r->shown, strerror(e));
		goto out;
	}
	fd_writer w = { r, fd, err };
	rc = reader_data(r, fd_writer_put, &w, err);
	if (rc)
		goto out;
	int cfd = fd;
	fd = -1;
	if (close(cfd) != 0)
		rc = train_error_set(err, TRAIN_EIO, r->path, 0, 0, "member '%s': write failed: %s",
		                     r->shown, strerror(errno));
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	return rc;
}

/* Extract every member of an open reader into `dest_dir`. */
static int extract_all(pkg_reader *r, const char *dest_dir, train_error *err)
{
	int rc = TRAIN_OK;
	int root = open(dest_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return train_error_set(err, -errno, dest_dir, 0, 0, "cannot open folder: %s",
		                       strerror(errno));
	while ((rc = reader_next(r, err)) == 1) {
		rc = extract_member(r, root, err);
		if (rc)
			break;
	}
	close(root);
	return rc;
}

int train_package_extract(const char *archive_path, const char *dest_dir, train_error *err)
{
	pkg_reader r;
	int rc = reader_open(&r, archive_path, NULL, 0, err);
	if (rc)
		return rc;
	rc = extract_all(&r, dest_dir, err);
	reader_close(&r);
	return rc;
}

int train_dir_unpack(const void *blob, size_t size, const char *dest_dir, train_error *err)
{
	pkg_reader r;
	int rc = reader_open(&r, NULL, blob, size, err);
	if (rc)
		return rc;
	rc = extract_all(&r, dest_dir, err);
	reader_close(&r);
	return rc;
}

/* ---- reading one member ------------------------------------------------------------ */

static int buf_put(void *ud, const void *data, size_t size)
{
	return train_buf_add(ud, data, size);
}

int train_package_read_member(const char *archive_path, const char *member, char **data,
                              size_t *size, train_error *err)
{
	int rc = TRAIN_OK;
	pkg_reader r;
	int opened = 0, found = 0;
	train_buf b = { 0 };
	char shown[PKG_SHOWN];
	*data = NULL;
	if (size)
		*size = 0;
	size_t mlen = strlen(member);
	if (!train_safe_relname(member) || member[mlen - 1] == '/') {
		rc = train_error_set(err, TRAIN_EINVAL, archive_path, 0, 0,
		                     "'%s' is not a member name", name_shown(member, shown));
		goto out;
	}
	rc = reader_open(&r, archive_path, NULL, 0, err);
	if (rc)
		goto out;
	opened = 1;
	/* Read to the end even after the member is found: an archive with an
	 * unsafe member is refused whole, as extract would refuse it. */
	while ((rc = reader_next(&r, err)) == 1) {
		if (strcmp(r.name, member) != 0)
			continue;
		found = 1;
		if (r.is_dir) {
			rc = train_error_set(err, TRAIN_EINVAL, archive_path, 0, 0,
			                     "member '%s' is a folder", r.shown);
			goto out;
		}
		if (r.size > TRAIN_PACKAGE_MEMBER_MAX) {
			rc = train_error_set(err, TRAIN_EINVAL, archive_path, 0, 0,
			                     "member '%s' is too large to read into memory (%lld bytes)",
			                     r.shown, (long long)r.size);
			goto out;
		}
		/* Data arrives in chunks; no allocation is made from the header
		 * size alone, so a lying header costs nothing. */
		rc = reader_data(&r, buf_put, &b, err);
		if (rc)
			goto out;
	}
	if (rc)
		goto out;
	if (!found) {
		rc = train_error_set(err, TRAIN_ENOTFOUND, archive_path, 0, 0, "no member '%s'",
		                     name_shown(member, shown));
		goto out;
	}
	if (!b.data && train_buf_add(&b, "", 0) != TRAIN_OK) { /* an empty member */
		rc = TRAIN_ENOMEM;
		goto out;
	}
	*data = b.data;
	if (size)
		*size = b.len;
	b.data = NULL;
out:
	if (opened)
		reader_close(&r);
	train_buf_free(&b);
	return rc;
}

/* ---- a model archive from memory --------------------------------------------- */

/* Header fields that never vary, then name, type, mode and size. */
static void entry_fixed(struct archive_entry *e, const char *name, int is_dir, int64_t size)
{
	archive_entry_clear(e);
	archive_entry_set_mtime(e, 0, 0);
	archive_entry_set_uid(e, 0);
	archive_entry_set_gid(e, 0);
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, is_dir ? AE_IFDIR : AE_IFREG);
	archive_entry_set_perm(e, is_dir ? 0755 : 0644);
	archive_entry_set_size(e, is_dir ? 0 : size);
}

static int put_entry(pkg_out *o, struct archive_entry *e, const char *name, int is_dir,
                     const void *data, size_t size, train_error *err)
{
	entry_fixed(e, name, is_dir, (int64_t)size);
	if (archive_write_header(o->a, e) != ARCHIVE_OK)
		return pack_fail(o->a, &o->s, o->path, err);
	if (size && archive_write_data(o->a, data, size) != (la_ssize_t)size)
		return pack_fail(o->a, &o->s, o->path, err);
	return TRAIN_OK;
}

typedef struct copy_ctx {
	pkg_out *o;
	train_error *err;
} copy_ctx;

static int copy_data(void *ud, const void *data, size_t n)
{
	copy_ctx *c = ud;
	if (archive_write_data(c->o->a, data, n) != (la_ssize_t)n)
		return pack_fail(c->o->a, &c->o->s, c->o->path, c->err);
	return TRAIN_OK;
}

int train_package_write_parts(const char *archive_path, const char *metadata, size_t meta_size,
                              const char *const *names, const void *const *blobs,
                              const size_t *sizes, size_t n, train_error *err)
{
	pkg_out o;
	pkg_reader r = { .fd = -1 };
	char *full = NULL;
	struct archive_entry *e = archive_entry_new();
	for (size_t i = 0; i < n; i++)
		if (!train_safe_relname(names[i]) || strchr(names[i], '/') ||
		    (i && strcmp(names[i - 1], names[i]) >= 0)) {
			archive_entry_free(e);
			return train_error_set(err, TRAIN_EINVAL, archive_path, 0, 0,
			                       "component names must be plain, sorted and unique ('%s')",
			                       names[i]);
		}
	if (!e)
		return TRAIN_ENOMEM;
	int rc = out_begin(&o, archive_path, err);
	if (!rc)
		rc = put_entry(&o, e, "components/", 1, NULL, 0, err);
	for (size_t i = 0; i < n && !rc; i++) {
		free(full);
		full = train_strfmt("components/%s/", names[i]);
		if (!full) {
			rc = TRAIN_ENOMEM;
			break;
		}
		if ((rc = put_entry(&o, e, full, 1, NULL, 0, err)))
			break;
		/* Re-emit the blob's members under the component's folder; the
		 * blob came from our own cache, but is checked like any archive. */
		if ((rc = reader_open(&r, NULL, blobs[i], sizes[i], err)))
			break;
		int more;
		while (!rc && (more = reader_next(&r, err)) == 1) {
			free(full);
			full = train_strfmt("components/%s/%s%s", names[i], r.name, r.is_dir ? "/" : "");
			if (!full) {
				rc = TRAIN_ENOMEM;
				break;
			}
			entry_fixed(e, full, r.is_dir, r.size);
			if (archive_write_header(o.a, e) != ARCHIVE_OK) {
				rc = pack_fail(o.a, &o.s, archive_path, err);
				break;
			}
			copy_ctx c = { &o, err };
			if (!r.is_dir)
				rc = reader_data(&r, copy_data, &c, err);
		}
		if (!rc && more < 0)
			rc = more;
		reader_close(&r);
	}
	if (!rc)
		rc = put_entry(&o, e, "metadata.json", 0, metadata, meta_size, err);
	if (!rc && archive_write_close(o.a) != ARCHIVE_OK)
		rc = pack_fail(o.a, &o.s, archive_path, err);
	rc = out_end(&o, rc, err);
	free(full);
	archive_entry_free(e);
	return rc;
}
