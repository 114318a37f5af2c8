/*
 * plugin.c - the plugin registry: find plugin files, open them with
 * libltdl, check their descriptors, and look component classes up by name.
 *
 * Search order (train.h): folders given to train_registry_add_dirs(), then
 * TRAIN_PLUGIN_PATH, then the installed folder TRAIN_PLUGINDIR.  Within a
 * folder the files named "*.so" are taken in bytewise order, so that which
 * of two same-named plugins wins never depends on readdir().
 *
 * A file is opened with local symbols (like Redis' RTLD_LOCAL: two plugins
 * may define the same internal names without clobbering each other) and
 * its descriptor is checked completely before any function of the plugin
 * runs: ABI major and minor, struct sizes, required fields, required class
 * entries, class names unique in the plugin, plugin name not yet loaded.
 * Only then does init() run (once per registry that loads the file).  ELF
 * constructors of the shared object do run at open time; no loader can
 * prevent that.  libltdl's dlopen loader binds lazily (RTLD_LAZY), so a
 * plugin that calls a missing function is only caught when it calls it.
 *
 * Every file that fails is recorded with a one-line reason and closed
 * again; the others still load.  Refusals are not errors of scan().
 *
 * After scan the registry is never written to, so lookups from several
 * threads need no lock.
 *
 * Notes on missing folders, skipped files, loads and refusals are debug
 * lines, shown on stderr when TRAIN_DEBUG is set (train.h has no way to pass
 * a log sink to the registry yet).
 *
 * Not here: the LMDB cache of plugin metadata (STYLE.md, GStreamer); every
 * scan opens every file.
 */
#include <train/train.h>

#include "util.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <ltdl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef TRAIN_PLUGINDIR
#define TRAIN_PLUGINDIR "/usr/local/lib/libtrain/plugins"
#endif

/* Sizes of the ABI 1.0 structs: a plugin of any 1.x minor has at least
 * these.  ABI 1.1 appended nothing (it gave the 1.0 field `environments` a
 * meaning), so they are this host's own sizes; when a minor appends
 * fields these must stay the 1.0 sizes (offsetof the first new field), and
 * the new fields are read only when the plugin's struct_size covers them. */
#define DESC_SIZE_1_0 sizeof(train_plugin_desc)
#define CLASS_SIZE_1_0 sizeof(train_component_class)

/* ---------------------------------------------------------------------------
 * libltdl keeps process-wide state (its handle list, its init count and the
 * text behind lt_dlerror()) and has no lock of its own.  This
 * mutex serializes our calls into it, so that registries may be created,
 * scanned and destroyed on different threads.  It is the only global here,
 * and it guards libltdl's globals, not ours.
 */
static pthread_mutex_t ltdl_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---------------------------------------------------------------------------
 * The registry.
 */

typedef struct plugin {
	train_plugin_info info;  /* info.path is `path` below; find() hands out &info */
	char *path;              /* the file as found: "<folder>/<name>.so" */
	lt_dlhandle handle;
} plugin;

typedef struct refusal {
	char *path;
	char *reason;
} refusal;

struct train_registry {
	char **dirs;             /* from train_registry_add_dirs, in order */
	size_t n_dirs, cap_dirs;
	int use_env, use_installed;
	int ltdl_up;             /* this registry holds one lt_dlinit() */
	int scanned;

	/* Plugins are held by pointer so that &info stays put while the
	 * array grows during scan. */
	plugin **plugins;
	size_t n_plugins, cap_plugins;

	refusal *refused;
	size_t n_refused, cap_refused;

	/* Real paths of every file opened, loaded or refused, so that a file
	 * reached twice (symlink, folder listed twice) is looked at once. */
	char **seen;
	size_t n_seen, cap_seen;

	train_log_sink log;
};

/* Room for element `n` in array `v` of `*cap` elements of `size` bytes:
 * returns the array (moved, maybe) or NULL, leaving `v` intact. */
static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return v;
	size_t ncap = *cap ? *cap * 2 : 8;
	if (ncap > SIZE_MAX / size)
		return NULL;
	void *nv = realloc(v, ncap * size);
	if (nv)
		*cap = ncap;
	return nv;
}

/* Make room for element `n` of `arr`, or run the statements `fail` (e.g.
 * `rc = TRAIN_ENOMEM; goto out`) with `arr` unchanged. */
#define GROW_OR(arr, cap, n, fail) \
	do { \
		void *nv_ = grow((arr), &(cap), (n), sizeof *(arr)); \
		if (!nv_) { \
			fail; \
		} \
		(arr) = nv_; \
	} while (0)

int train_registry_create(train_registry **out)
{
	if (!out)
		return TRAIN_EINVAL;
	*out = NULL;
	train_registry *r = calloc(1, sizeof *r);
	if (!r)
		return TRAIN_ENOMEM;
	r->use_env = 1;
	r->use_installed = 1;
	/* Folder and refusal notes go to stderr; debug notes (missing folders,
	 * files skipped) only when TRAIN_DEBUG is set. */
	const char *dbg = getenv("TRAIN_DEBUG");
	r->log.fn = NULL;
	r->log.ud = NULL;
	r->log.max_level = dbg && *dbg ? TRAIN_LOG_DEBUG : TRAIN_LOG_WARN;
	*out = r;
	return TRAIN_OK;
}

void train_registry_destroy(train_registry *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&ltdl_lock);
	/* Close in reverse load order: a plugin may depend on one loaded
	 * before it. */
	for (size_t i = r->n_plugins; i-- > 0;) {
		plugin *p = r->plugins[i];
		if (lt_dlclose(p->handle) != 0)
			train_logf(&r->log, TRAIN_LOG_DEBUG, "closing %s: %s", p->path,
			           lt_dlerror());
		free(p->path);
		free(p);
	}
	if (r->ltdl_up)
		lt_dlexit();
	pthread_mutex_unlock(&ltdl_lock);
	free(r->plugins);
	for (size_t i = 0; i < r->n_refused; i++) {
		free(r->refused[i].path);
		free(r->refused[i].reason);
	}
	free(r->refused);
	train_strv_free(r->seen, r->n_seen);
	train_strv_free(r->dirs, r->n_dirs);
	free(r);
}

/* Append each non-empty part of the colon-separated `list` to *v. */
static int split_path_list(const char *list, char ***v, size_t *n, size_t *cap)
{
	const char *s = list;
	while (*s) {
		const char *e = strchr(s, ':');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		if (len > 0) {
			GROW_OR(*v, *cap, *n, return TRAIN_ENOMEM);
			char *d = strndup(s, len);
			if (!d)
				return TRAIN_ENOMEM;
			(*v)[(*n)++] = d;
		}
		s += len;
		if (*s == ':')
			s++;
	}
	return TRAIN_OK;
}

int train_registry_add_dirs(train_registry *r, const char *dirs)
{
	if (!r || !dirs)
		return TRAIN_EINVAL;
	if (r->scanned)
		return TRAIN_EINVAL; /* read-only after scan */
	return split_path_list(dirs, &r->dirs, &r->n_dirs, &r->cap_dirs);
}

void train_registry_use_defaults(train_registry *r, int use_env, int use_installed)
{
	if (!r || r->scanned)
		return;
	r->use_env = use_env;
	r->use_installed = use_installed;
}

/* ---------------------------------------------------------------------------
 * Refusals.
 */

/* Record that `path` was refused.  A reason is one line: newlines (which
 * a dlerror text may hold) become spaces. */
static int refuse(train_registry *r, const char *path, const char *fmt, ...)
	TRAIN_PRINTF(3, 4);

static int refuse(train_registry *r, const char *path, const char *fmt, ...)
{
	char reason[TRAIN_ERROR_TEXT];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	for (char *c = reason; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	train_logf(&r->log, TRAIN_LOG_DEBUG, "refused %s: %s", path, reason);

	GROW_OR(r->refused, r->cap_refused, r->n_refused, return TRAIN_ENOMEM);
	refusal *f = &r->refused[r->n_refused];
	f->path = strdup(path);
	f->reason = strdup(reason);
	if (!f->path || !f->reason) {
		free(f->path);
		free(f->reason);
		return TRAIN_ENOMEM;
	}
	r->n_refused++;
	return TRAIN_OK;
}

/* ---------------------------------------------------------------------------
 * Descriptor checks.  These read data only; no plugin function runs.
 */

static const plugin *plugin_by_name(const train_registry *r, const char *name)
{
	for (size_t i = 0; i < r->n_plugins; i++)
		if (strcmp(r->plugins[i]->info.desc->name, name) == 0)
			return r->plugins[i];
	return NULL;
}

/* A name that find() can address: not empty, no '/' (it separates the
 * plugin from the class in "plugin/Name"). */
static int good_name(const char *s)
{
	return s && *s && !strchr(s, '/');
}

/* Check one class; on failure write the reason into `why`. */
static int check_class(const train_component_class *c, size_t i, char *why, size_t size)
{
	if (c->struct_size < CLASS_SIZE_1_0) {
		snprintf(why, size, "component #%zu: struct_size %u is smaller than %zu (ABI %d.0)",
		         i, (unsigned)c->struct_size, CLASS_SIZE_1_0, TRAIN_ABI_MAJOR);
		return -1;
	}
	if (!c->name || !*c->name) {
		snprintf(why, size, "component #%zu has no name", i);
		return -1;
	}
	if (strchr(c->name, '/')) {
		snprintf(why, size, "component name '%s' contains '/'", c->name);
		return -1;
	}
	if (!c->version || !*c->version) {
		snprintf(why, size, "component '%s' has no version", c->name);
		return -1;
	}
	const char *missing = !c->create ? "create"
	                      : !c->train ? "train"
	                      : !c->persist ? "persist"
	                      : !c->load ? "load"
	                      : !c->destroy ? "destroy"
	                      : NULL;
	if (missing) {
		snprintf(why, size, "component '%s' has no %s entry", c->name, missing);
		return -1;
	}
	return 0;
}

/* The environment classes of a descriptor: only a 1.1+ plugin has any
 * (the field was "NULL for now" in 1.0). */
static const train_env_class *const *desc_envs(const train_plugin_desc *d)
{
	return d->abi_minor >= 1 ? d->environments : NULL;
}

/* Check one environment class, as check_class(). */
static int check_env(const train_env_class *c, size_t i, char *why, size_t size)
{
	if (c->struct_size < sizeof(train_env_class)) {
		snprintf(why, size, "environment #%zu: struct_size %u is smaller than %zu (ABI %d.1)",
		         i, (unsigned)c->struct_size, sizeof(train_env_class), TRAIN_ABI_MAJOR);
		return -1;
	}
	if (!good_name(c->name)) {
		snprintf(why, size, "environment #%zu has no name or a name with '/'", i);
		return -1;
	}
	if (!c->version || !*c->version) {
		snprintf(why, size, "environment '%s' has no version", c->name);
		return -1;
	}
	const char *missing = !c->create ? "create"
	                      : !c->spaces ? "spaces"
	                      : !c->reset ? "reset"
	                      : !c->step ? "step"
	                      : !c->destroy ? "destroy"
	                      : NULL;
	if (missing) {
		snprintf(why, size, "environment '%s' has no %s entry", c->name, missing);
		return -1;
	}
	return 0;
}

/* Check a descriptor against this host.  Returns 0, or -1 with the reason
 * in `why`.  `r` is consulted for plugin names already loaded. */
static int check_desc(const train_registry *r, const train_plugin_desc *d, char *why,
                      size_t size)
{
	/* abi_major and abi_minor lead the struct in every ABI, so they are
	 * safe to read whatever the plugin was built for; nothing else is
	 * until the major matches. */
	if (d->abi_major != TRAIN_ABI_MAJOR) {
		snprintf(why, size, "built for plugin ABI %u.%u, this libtrain has %d.%d",
		         (unsigned)d->abi_major, (unsigned)d->abi_minor, TRAIN_ABI_MAJOR,
		         TRAIN_ABI_MINOR);
		return -1;
	}
	if (d->abi_minor > TRAIN_ABI_MINOR) {
		snprintf(why, size,
		         "built for plugin ABI %u.%u, newer than this libtrain's %d.%d "
		         "(it may need host features this libtrain lacks)",
		         (unsigned)d->abi_major, (unsigned)d->abi_minor, TRAIN_ABI_MAJOR,
		         TRAIN_ABI_MINOR);
		return -1;
	}
	if (d->struct_size < DESC_SIZE_1_0) {
		snprintf(why, size, "descriptor struct_size %u is smaller than %zu (ABI %d.0)",
		         (unsigned)d->struct_size, DESC_SIZE_1_0, TRAIN_ABI_MAJOR);
		return -1;
	}
	if (!d->name || !*d->name) {
		snprintf(why, size, "descriptor has no name");
		return -1;
	}
	if (!good_name(d->name)) {
		snprintf(why, size, "plugin name '%s' contains '/'", d->name);
		return -1;
	}
	const char *missing = !d->version || !*d->version ? "version"
	                      : !d->license || !*d->license ? "license"
	                      : !d->components ? "component list"
	                      : NULL;
	if (missing) {
		snprintf(why, size, "plugin '%s' has no %s", d->name, missing);
		return -1;
	}
	for (size_t i = 0; d->components[i]; i++) {
		if (check_class(d->components[i], i, why, size) != 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(d->components[j]->name, d->components[i]->name) == 0) {
				snprintf(why, size, "plugin '%s' offers component '%s' twice",
				         d->name, d->components[i]->name);
				return -1;
			}
	}
	const train_env_class *const *envs = desc_envs(d);
	for (size_t i = 0; envs && envs[i]; i++) {
		if (check_env(envs[i], i, why, size) != 0)
			return -1;
		for (size_t j = 0; j < i; j++)
			if (strcmp(envs[j]->name, envs[i]->name) == 0) {
				snprintf(why, size, "plugin '%s' offers environment '%s' twice", d->name,
				         envs[i]->name);
				return -1;
			}
	}
	const plugin *prev = plugin_by_name(r, d->name);
	if (prev) {
		snprintf(why, size, "plugin '%s' already loaded from %s", d->name, prev->path);
		return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------------------
 * Loading one file.
 */

/*
 * Why `path` (a file that exists: scan_dir stat'd it) would not open.
 * libltdl tries its loaders in turn, and after the dlopen loader fails its
 * text is replaced by "file not found", also for a file that is there but
 * is not an ELF object or lacks a dependency (libltdl 2.4.7).  That is
 * useless to someone looking at the file, so ask dlopen itself, which fails
 * the same way and says why.  Called with ltdl_lock held, right after the
 * failure.
 */
static const char *open_error(const char *path)
{
	const char *lterr = lt_dlerror();
	void *probe = dlopen(path, RTLD_LAZY | RTLD_LOCAL);
	if (probe) {
		/* Loads now: a race with someone replacing the file. */
		dlclose(probe);
	} else {
		const char *e = dlerror();
		if (e)
			return e;
	}
	return lterr ? lterr : "unknown libltdl error";
}

/* Open, check and register `path`.  Refusals are recorded and return
 * TRAIN_OK; only running out of memory is an error.  Called with ltdl_lock
 * held. */
static int load_file(train_registry *r, const char *path)
{
	int rc = TRAIN_OK;
	lt_dlhandle h = NULL;
	plugin *p = NULL;
	char why[TRAIN_ERROR_TEXT];

	lt_dladvise advise;
	if (lt_dladvise_init(&advise) != 0) {
		rc = refuse(r, path, "libltdl: %s", lt_dlerror());
		goto out;
	}
	if (lt_dladvise_local(&advise) == 0)
		h = lt_dlopenadvise(path, advise);
	else
		h = NULL;
	lt_dladvise_destroy(&advise);
	if (!h) {
		rc = refuse(r, path, "cannot open: %s", open_error(path));
		goto out;
	}

	const train_plugin_desc *d = lt_dlsym(h, TRAIN_PLUGIN_SYMBOL);
	if (!d) {
		rc = refuse(r, path, "no %s symbol: not a libtrain plugin", TRAIN_PLUGIN_SYMBOL);
		goto out;
	}
	if (check_desc(r, d, why, sizeof why) != 0) {
		rc = refuse(r, path, "%s", why);
		goto out;
	}

	/* Make room first, so that a plugin whose init() ran is never
	 * dropped for want of memory. */
	GROW_OR(r->plugins, r->cap_plugins, r->n_plugins, rc = TRAIN_ENOMEM; goto out);
	p = calloc(1, sizeof *p);
	if (!p || !(p->path = strdup(path))) {
		rc = TRAIN_ENOMEM;
		goto out;
	}

	/* All checks passed: the first plugin code to run. */
	if (d->init) {
		int irc = d->init();
		if (irc != 0) {
			rc = refuse(r, path, "init() of plugin '%s' returned %d", d->name, irc);
			goto out;
		}
	}

	p->handle = h;
	p->info.path = p->path;
	p->info.desc = d;
	r->plugins[r->n_plugins++] = p;
	train_logf(&r->log, TRAIN_LOG_DEBUG, "loaded plugin '%s' %s from %s", d->name,
	           d->version, path);
	p = NULL;
	h = NULL;
out:
	if (p) {
		free(p->path);
		free(p);
	}
	if (h)
		lt_dlclose(h);
	return rc;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_so_suffix(const char *name)
{
	size_t n = strlen(name);
	return n > 3 && strcmp(name + n - 3, ".so") == 0;
}

static int seen_before(const train_registry *r, const char *real)
{
	for (size_t i = 0; i < r->n_seen; i++)
		if (strcmp(r->seen[i], real) == 0)
			return 1;
	return 0;
}

/* Load every "*.so" in `dir`, in bytewise order.  `quiet`: a missing
 * folder is normal (the installed one), say nothing. */
static int scan_dir(train_registry *r, const char *dir, int quiet)
{
	int rc = TRAIN_OK;
	char **names = NULL;
	size_t n = 0, cap = 0;
	char *path = NULL;

	DIR *dh = opendir(dir);
	if (!dh) {
		int e = errno;
		if (e == ENOENT || e == ENOTDIR) {
			if (!quiet)
				train_logf(&r->log, TRAIN_LOG_DEBUG, "plugin folder %s: %s", dir,
				           strerror(e));
		} else {
			train_logf(&r->log, TRAIN_LOG_WARN, "cannot read plugin folder %s: %s", dir,
			           strerror(e));
		}
		return TRAIN_OK;
	}
	struct dirent *de;
	while ((de = readdir(dh)) != NULL) {
		if (!has_so_suffix(de->d_name))
			continue;
		GROW_OR(names, cap, n, rc = TRAIN_ENOMEM; goto out);
		if (!(names[n] = strdup(de->d_name))) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		n++;
	}
	if (n > 1)
		qsort(names, n, sizeof *names, cmp_str);

	for (size_t i = 0; i < n; i++) {
		free(path);
		if (!(path = train_path_join(dir, names[i]))) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		struct stat st;
		if (stat(path, &st) != 0) {
			/* e.g. a dangling symlink */
			if ((rc = refuse(r, path, "cannot open: %s", strerror(errno))) != TRAIN_OK)
				goto out;
			continue;
		}
		if (!S_ISREG(st.st_mode)) {
			train_logf(&r->log, TRAIN_LOG_DEBUG, "skipping %s: not a regular file", path);
			continue;
		}
		char *real = realpath(path, NULL);
		if (!real) {
			if ((rc = refuse(r, path, "cannot resolve path: %s", strerror(errno))) != TRAIN_OK)
				goto out;
			continue;
		}
		if (seen_before(r, real)) {
			train_logf(&r->log, TRAIN_LOG_DEBUG, "skipping %s: %s was already looked at",
			           path, real);
			free(real);
			continue;
		}
		GROW_OR(r->seen, r->cap_seen, r->n_seen, free(real); rc = TRAIN_ENOMEM; goto out);
		r->seen[r->n_seen++] = real;
		if ((rc = load_file(r, path)) != TRAIN_OK)
			goto out;
	}
out:
	free(path);
	closedir(dh);
	train_strv_free(names, n);
	return rc;
}

int train_registry_scan(train_registry *r, train_error *err)
{
	int rc = TRAIN_OK;
	char **env_dirs = NULL;
	size_t n_env = 0, cap_env = 0;

	if (!r)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "no registry");
	if (r->scanned)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0,
		                       "the plugin registry was already scanned");
	r->scanned = 1;

	if (r->use_env) {
		const char *env = getenv("TRAIN_PLUGIN_PATH");
		if (env && (rc = split_path_list(env, &env_dirs, &n_env, &cap_env)) != TRAIN_OK) {
			train_error_set(err, rc, NULL, 0, 0, "out of memory reading TRAIN_PLUGIN_PATH");
			goto out;
		}
	}

	pthread_mutex_lock(&ltdl_lock);
	if (lt_dlinit() != 0) {
		rc = train_error_set(err, TRAIN_EPLUGIN, NULL, 0, 0, "libltdl cannot start: %s",
		                     lt_dlerror());
		pthread_mutex_unlock(&ltdl_lock);
		goto out;
	}
	r->ltdl_up = 1;

	for (size_t i = 0; rc == TRAIN_OK && i < r->n_dirs; i++)
		rc = scan_dir(r, r->dirs[i], 0);
	for (size_t i = 0; rc == TRAIN_OK && i < n_env; i++)
		rc = scan_dir(r, env_dirs[i], 0);
	if (rc == TRAIN_OK && r->use_installed)
		rc = scan_dir(r, TRAIN_PLUGINDIR, 1);
	pthread_mutex_unlock(&ltdl_lock);

	if (rc != TRAIN_OK)
		train_error_set(err, rc, NULL, 0, 0, "scanning plugins: %s", train_strerror(rc));
out:
	train_strv_free(env_dirs, n_env);
	return rc;
}

/* ---------------------------------------------------------------------------
 * Lookups (read-only).
 */

size_t train_registry_plugin_count(const train_registry *r)
{
	return r ? r->n_plugins : 0;
}

train_plugin_info train_registry_plugin_at(const train_registry *r, size_t i)
{
	train_plugin_info none = { NULL, NULL };
	if (!r || i >= r->n_plugins)
		return none;
	return r->plugins[i]->info;
}

size_t train_registry_refused_count(const train_registry *r)
{
	return r ? r->n_refused : 0;
}

train_plugin_refusal train_registry_refused_at(const train_registry *r, size_t i)
{
	train_plugin_refusal none = { NULL, NULL };
	if (!r || i >= r->n_refused)
		return none;
	train_plugin_refusal f = { r->refused[i].path, r->refused[i].reason };
	return f;
}

static const void *class_in(const plugin *p, const char *name, int env)
{
	if (env) {
		const train_env_class *const *c = desc_envs(p->info.desc);
		for (; c && *c; c++)
			if (strcmp((*c)->name, name) == 0)
				return *c;
		return NULL;
	}
	for (const train_component_class *const *c = p->info.desc->components; *c; c++)
		if (strcmp((*c)->name, name) == 0)
			return *c;
	return NULL;
}

/* Components and environments are looked up the same way; `env` picks the
 * list and the word in messages. */
static int find_any(const train_registry *r, const char *name, int env, const void **cls_out,
                    const train_plugin_info **plugin_out, train_error *err)
{
	const char *what = env ? "environment" : "component";
	if (cls_out)
		*cls_out = NULL;
	if (plugin_out)
		*plugin_out = NULL;
	if (!r || !name || !*name)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "no %s name", what);

	const plugin *found = NULL;
	const void *cls = NULL;

	const char *slash = strchr(name, '/');
	if (slash) {
		/* "plugin/Name": exactly one place to look. */
		size_t plen = (size_t)(slash - name);
		const char *cname = slash + 1;
		for (size_t i = 0; i < r->n_plugins && !found; i++) {
			const plugin *p = r->plugins[i];
			if (strlen(p->info.desc->name) == plen &&
			    memcmp(p->info.desc->name, name, plen) == 0)
				found = p;
		}
		if (!found)
			return train_error_set(err, TRAIN_ENOTFOUND, NULL, 0, 0,
			                       "no plugin named '%.*s' is loaded", (int)plen, name);
		cls = class_in(found, cname, env);
		if (!cls)
			return train_error_set(err, TRAIN_ENOTFOUND, NULL, 0, 0,
			                       "plugin '%s' has no %s '%s'",
			                       found->info.desc->name, what, cname);
	} else {
		for (size_t i = 0; i < r->n_plugins; i++) {
			const plugin *p = r->plugins[i];
			const void *c = class_in(p, name, env);
			if (!c)
				continue;
			if (found) {
				size_t more = 0;
				for (size_t j = i + 1; j < r->n_plugins; j++)
					more += class_in(r->plugins[j], name, env) != NULL;
				char extra[64] = "";
				if (more)
					snprintf(extra, sizeof extra, " (and %zu more)", more);
				return train_error_set(
					err, TRAIN_EEXIST, NULL, 0, 0,
					"%s '%s' is offered by plugin '%s' (%s) and by plugin "
					"'%s' (%s)%s; write \"%s/%s\" or \"%s/%s\" to pick one",
					what, name, found->info.desc->name, found->path, p->info.desc->name,
					p->path, extra, found->info.desc->name, name,
					p->info.desc->name, name);
			}
			found = p;
			cls = c;
		}
		if (!found)
			return train_error_set(err, TRAIN_ENOTFOUND, NULL, 0, 0,
			                       "no plugin offers %s '%s'", what, name);
	}
	if (cls_out)
		*cls_out = cls;
	if (plugin_out)
		*plugin_out = &found->info;
	return TRAIN_OK;
}

int train_registry_find(const train_registry *r, const char *name,
                        const train_component_class **cls_out,
                        const train_plugin_info **plugin_out, train_error *err)
{
	const void *c = NULL;
	int rc = find_any(r, name, 0, &c, plugin_out, err);
	if (cls_out)
		*cls_out = c;
	return rc;
}

int train_registry_find_env(const train_registry *r, const char *name,
                            const train_env_class **cls_out,
                            const train_plugin_info **plugin_out, train_error *err)
{
	const void *c = NULL;
	int rc = find_any(r, name, 1, &c, plugin_out, err);
	if (cls_out)
		*cls_out = c;
	return rc;
}
