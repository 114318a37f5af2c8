/*
 * util.c - private helpers: whole-file I/O, atomic writes, folders,
 * strings, clocks, growable buffers, and the host log sink.
 */
#include <train/common.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int train_read_file(const char *path, char **data, size_t *size, train_error *err)
{
	int rc = TRAIN_OK;
	char *buf = NULL;
	FILE *f = fopen(path, "rb");
	if (!f)
		return train_error_set(err, -errno, path, 0, 0, "cannot open: %s", strerror(errno));
	size_t cap = 4096, len = 0;
	buf = malloc(cap);
	if (!buf) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	for (;;) {
		if (cap - len < 2) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				rc = TRAIN_ENOMEM;
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	if (ferror(f)) {
		rc = train_error_set(err, TRAIN_EIO, path, 0, 0, "read error");
		goto out;
	}
	buf[len] = '\0';
	*data = buf;
	*size = len;
	buf = NULL;
out:
	free(buf);
	fclose(f);
	return rc;
}

int train_write_file_atomic(const char *path, const void *data, size_t size, train_error *err)
{
	return train_write_file(path, data, size, true, err);
}

int train_write_file(const char *path, const void *data, size_t size, bool sync, train_error *err)
{
	static atomic_uint counter;
	char *tmp = train_strfmt("%s.tmp-%ld-%u", path, (long)getpid(), atomic_fetch_add(&counter, 1));
	if (!tmp)
		return TRAIN_ENOMEM;
	int rc = TRAIN_OK;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = train_error_set(err, -errno, path, 0, 0, "cannot create: %s", strerror(errno));
		goto out;
	}
	const char *p = data;
	size_t left = size;
	while (left) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = train_error_set(err, TRAIN_EIO, path, 0, 0, "write failed: %s", strerror(errno));
			break;
		}
		p += n;
		left -= (size_t)n;
	}
	if (!rc && sync && fsync(fd) != 0)
		rc = train_error_set(err, TRAIN_EIO, path, 0, 0, "fsync failed: %s", strerror(errno));
	if (close(fd) != 0 && !rc)
		rc = train_error_set(err, TRAIN_EIO, path, 0, 0, "close failed: %s", strerror(errno));
	if (!rc && rename(tmp, path) != 0)
		rc = train_error_set(err, -errno, path, 0, 0, "rename failed: %s", strerror(errno));
	if (rc)
		unlink(tmp);
out:
	free(tmp);
	return rc;
}

int train_mkdirs(const char *path, train_error *err)
{
	char *p = train_strdup(path);
	if (!p)
		return TRAIN_ENOMEM;
	int rc = TRAIN_OK;
	size_t len = strlen(p);
	for (size_t i = 1; i <= len; i++) {
		if (p[i] != '/' && p[i] != '\0')
			continue;
		char c = p[i];
		p[i] = '\0';
		if (mkdir(p, 0755) != 0 && errno != EEXIST) {
			rc = train_error_set(err, -errno, p, 0, 0, "cannot create folder: %s", strerror(errno));
			break;
		}
		p[i] = c;
	}
	if (!rc && !train_is_dir(path))
		rc = train_error_set(err, -ENOTDIR, path, 0, 0, "not a folder");
	free(p);
	return rc;
}

int train_rmtree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? TRAIN_OK : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlink(path) == 0 ? TRAIN_OK : -errno;
	DIR *d = opendir(path);
	if (!d)
		return -errno;
	int rc = TRAIN_OK;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *sub = train_path_join(path, e->d_name);
		if (!sub) {
			rc = TRAIN_ENOMEM;
			break;
		}
		int r = train_rmtree(sub);
		if (r && !rc)
			rc = r;
		free(sub);
	}
	closedir(d);
	if (rmdir(path) != 0 && !rc)
		rc = -errno;
	return rc;
}

const char *train_tmpdir(void)
{
	const char *t = getenv("TMPDIR");
	return t && *t ? t : "/tmp";
}

int train_mkdtemp(const char *parent, const char *prefix, char **out, train_error *err)
{
	char *p = train_strfmt("%s/%sXXXXXX", parent ? parent : train_tmpdir(), prefix);
	if (!p)
		return TRAIN_ENOMEM;
	if (!mkdtemp(p)) {
		int rc = train_error_set(err, -errno, p, 0, 0, "cannot create a temporary folder: %s",
		                         strerror(errno));
		free(p);
		return rc;
	}
	*out = p;
	return TRAIN_OK;
}

bool train_path_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

bool train_is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

char *train_dirname(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return train_strdup(".");
	if (slash == path)
		return train_strdup("/");
	return strndup(path, (size_t)(slash - path));
}

char *train_path_join(const char *a, const char *b)
{
	if (!a || !*a)
		return train_strdup(b);
	size_t la = strlen(a);
	return train_strfmt("%s%s%s", a, a[la - 1] == '/' ? "" : "/", b);
}

char *train_strdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

char *train_strfmt(const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	return n < 0 ? NULL : s;
}

double train_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

bool train_safe_relname(const char *name)
{
	if (!name || !*name || name[0] == '/')
		return false;
	const char *seg = name;
	for (const char *p = name;; p++) {
		if (*p == '/' || *p == '\0') {
			size_t n = (size_t)(p - seg);
			if (n == 0 && *p == '/')
				return false; /* "a//b" */
			if ((n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
				return false;
			if (*p == '\0')
				return true; /* n == 0 here is a trailing '/', fine for folders */
			seg = p + 1;
			continue;
		}
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-' || c == '+' || c == '@'))
			return false;
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_rec(const char *root, const char *rel, char ***v, size_t *n, size_t *cap,
                    train_error *err)
{
	char *dir = rel[0] ? train_path_join(root, rel) : train_strdup(root);
	if (!dir)
		return TRAIN_ENOMEM;
	int rc = TRAIN_OK;
	DIR *d = opendir(dir);
	if (!d) {
		rc = train_error_set(err, -errno, dir, 0, 0, "cannot read folder: %s", strerror(errno));
		free(dir);
		return rc;
	}
	struct dirent *e;
	while (!rc && (e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *sub = rel[0] ? train_path_join(rel, e->d_name) : train_strdup(e->d_name);
		char *full = sub ? train_path_join(root, sub) : NULL;
		struct stat st;
		if (!sub || !full) {
			rc = TRAIN_ENOMEM;
		} else if (lstat(full, &st) != 0) {
			rc = train_error_set(err, -errno, full, 0, 0, "cannot stat: %s", strerror(errno));
		} else if (S_ISDIR(st.st_mode)) {
			rc = list_rec(root, sub, v, n, cap, err);
		} else if (S_ISREG(st.st_mode)) {
			if (*n == *cap) {
				size_t nc = *cap ? *cap * 2 : 16;
				char **nv = realloc(*v, nc * sizeof *nv);
				if (!nv) {
					rc = TRAIN_ENOMEM;
					goto next;
				}
				*v = nv;
				*cap = nc;
			}
			(*v)[(*n)++] = sub;
			sub = NULL;
		}
	next:
		free(sub);
		free(full);
	}
	closedir(d);
	free(dir);
	return rc;
}

int train_list_files(const char *dir, char ***names, size_t *count, train_error *err)
{
	char **v = NULL;
	size_t n = 0, cap = 0;
	int rc = list_rec(dir, "", &v, &n, &cap, err);
	if (rc) {
		train_strv_free(v, n);
		return rc;
	}
	if (n)
		qsort(v, n, sizeof *v, cmp_str);
	*names = v;
	*count = n;
	return TRAIN_OK;
}

void train_strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Room for `size` more bytes and a NUL. */
static int buf_room(train_buf *b, size_t size)
{
	if (b->cap - b->len < size + 1) {
		size_t nc = b->cap ? b->cap : 256;
		while (nc - b->len < size + 1)
			nc *= 2;
		char *nd = realloc(b->data, nc);
		if (!nd)
			return TRAIN_ENOMEM;
		b->data = nd;
		b->cap = nc;
	}
	return TRAIN_OK;
}

int train_buf_add(train_buf *b, const void *data, size_t size)
{
	if (buf_room(b, size))
		return TRAIN_ENOMEM;
	if (size)
		memcpy(b->data + b->len, data, size);
	b->len += size;
	b->data[b->len] = '\0';
	return TRAIN_OK;
}

int train_buf_str(train_buf *b, const char *s)
{
	return train_buf_add(b, s, strlen(s));
}

/* Formats straight into the spare room (no temporary string); when that
 * is too small, grows once and formats again.  No argument may point into
 * `b` itself. */
int train_buf_printf(train_buf *b, const char *fmt, ...)
{
	va_list ap;
	size_t room = b->data ? b->cap - b->len : 0;
	va_start(ap, fmt);
	int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < room) {
		b->len += (size_t)n;
		return TRAIN_OK;
	}
	if (room)
		b->data[b->len] = '\0'; /* a cut-off attempt wrote past the end */
	if (n < 0)
		return TRAIN_ENOMEM;
	/* make room for n bytes and the NUL, keeping the contents */
	size_t len = b->len;
	if (buf_room(b, (size_t)n))
		return TRAIN_ENOMEM;
	va_start(ap, fmt);
	int m = vsnprintf(b->data + len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	if (m != n) {
		b->data[len] = '\0';
		return TRAIN_ENOMEM;
	}
	b->len = len + (size_t)n;
	return TRAIN_OK;
}

void train_buf_free(train_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void train_logf(const train_log_sink *lg, train_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	train_vlogf(lg, level, fmt, ap);
	va_end(ap);
}

void train_vlogf(const train_log_sink *lg, train_log_level level, const char *fmt, va_list ap)
{
	if (lg && level > lg->max_level)
		return;
	char msg[1024];
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (lg && lg->fn) {
		lg->fn(lg->ud, level, msg);
		return;
	}
	static const char *const names[] = { "error", "warning", "", "" };
	if (level <= TRAIN_LOG_WARN)
		fprintf(stderr, "train: %s: %s\n", names[level], msg);
	else
		fprintf(stderr, "train: %s\n", msg);
}
