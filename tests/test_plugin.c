/*
 * test_plugin.c - the plugin registry: loading, refusals, lookups, search
 * order.
 *
 * The build puts the test plugins (the sources in tests/plugins/) into
 * $TRAIN_TEST_PLUGINS.  Each test copies the ones it needs into a fresh
 * folder and scans only that folder (defaults off), so that the scenario is
 * exactly what the test says.  A copy is a new file (new inode), so the
 * dynamic linker loads it afresh even when another copy is loaded.
 *
 * Uses only the public API: the program links libtrain.so like a user.
 */
#include "testlib.h"

#include <train/train.h>

#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>

/* ---------------------------------------------------------------------------
 * Helpers (set-up failures abort: they are not what is tested).
 */

static const char *plugins_dir(void)
{
	const char *d = getenv("TRAIN_TEST_PLUGINS");
	if (!d || !*d) {
		test_skip("TRAIN_TEST_PLUGINS is not set (run through make check)");
		return NULL;
	}
	return d;
}

static void copy_file(const char *src, const char *dst)
{
	FILE *in = fopen(src, "rb");
	FILE *out = in ? fopen(dst, "wb") : NULL;
	if (!in || !out) {
		perror(in ? dst : src);
		abort();
	}
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, in)) > 0)
		if (fwrite(buf, 1, n, out) != n) {
			perror(dst);
			abort();
		}
	if (ferror(in) || fclose(out) != 0) {
		perror(dst);
		abort();
	}
	fclose(in);
}

/* Copy test plugin `name`.so into `dir` as `as` (NULL: the same name). */
static void add_plugin(const char *dir, const char *name, const char *as)
{
	char src[4096], dst[4096];
	snprintf(src, sizeof src, "%s/%s.so", plugins_dir(), name);
	snprintf(dst, sizeof dst, "%s/%s", dir, as ? as : name);
	if (!as)
		snprintf(dst, sizeof dst, "%s/%s.so", dir, name);
	copy_file(src, dst);
}

/* A new folder `name` under `parent`; the path goes into `out`. */
static const char *subdir(const char *parent, const char *name, char *out, size_t size)
{
	snprintf(out, size, "%s/%s", parent, name);
	if (mkdir(out, 0755) != 0) {
		perror(out);
		abort();
	}
	return out;
}

/* A registry that scanned `dirs` only. */
static train_registry *scan_only(const char *dirs)
{
	train_registry *r = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_registry_create(&r), TRAIN_OK);
	train_registry_use_defaults(r, 0, 0);
	CU_ASSERT_EQUAL(train_registry_add_dirs(r, dirs), TRAIN_OK);
	int rc = train_registry_scan(r, &err);
	CU_ASSERT_EQUAL(rc, TRAIN_OK);
	if (rc != TRAIN_OK)
		fprintf(stderr, "scan: %s\n", err.text);
	return r;
}

static int ends_with(const char *s, const char *suffix)
{
	if (!s)
		return 0;
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The reason `file` (a path ending in "/<file>") was refused, or NULL. */
static const char *refusal_of(const train_registry *r, const char *file)
{
	char tail[512];
	snprintf(tail, sizeof tail, "/%s", file);
	for (size_t i = 0; i < train_registry_refused_count(r); i++) {
		train_plugin_refusal f = train_registry_refused_at(r, i);
		if (ends_with(f.path, tail))
			return f.reason;
	}
	return NULL;
}

/* The plugin loaded under `name`, or NULL. */
static const char *loaded_from(const train_registry *r, const char *name)
{
	for (size_t i = 0; i < train_registry_plugin_count(r); i++) {
		train_plugin_info p = train_registry_plugin_at(r, i);
		if (strcmp(p.desc->name, name) == 0)
			return p.path;
	}
	return NULL;
}

static int contains(const char *s, const char *part)
{
	return s && strstr(s, part) != NULL;
}

/* CU_ASSERT_STRING_EQUAL that fails, rather than crashes, on NULL. */
#define ASSERT_STR_EQ(a, b) \
	do { \
		const char *a_ = (a), *b_ = (b); \
		CU_ASSERT_PTR_NOT_NULL(a_); \
		if (a_) \
			CU_ASSERT_STRING_EQUAL(a_, b_); \
	} while (0)

/* The name of plugin `i`, or NULL. */
static const char *plugin_name_at(const train_registry *r, size_t i)
{
	train_plugin_info p = train_registry_plugin_at(r, i);
	return p.desc ? p.desc->name : NULL;
}

/* Assert `file` was refused with a reason containing `part`. */
#define ASSERT_REFUSED(r, file, part) \
	do { \
		const char *why_ = refusal_of((r), (file)); \
		CU_ASSERT_PTR_NOT_NULL(why_); \
		CU_ASSERT(contains(why_, (part))); \
		if (!contains(why_, (part))) \
			fprintf(stderr, "\n  %s refused with \"%s\", expected \"%s\"\n", (file), \
			        why_ ? why_ : "(not refused)", (part)); \
	} while (0)

/* ---------------------------------------------------------------------------
 * Tests.
 */

static void test_lifecycle(void)
{
	train_registry_destroy(NULL);
	CU_ASSERT_EQUAL(train_registry_create(NULL), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_registry_plugin_count(NULL), 0);
	CU_ASSERT_EQUAL(train_registry_refused_count(NULL), 0);

	train_registry *r = NULL;
	CU_ASSERT_EQUAL_FATAL(train_registry_create(&r), TRAIN_OK);
	train_registry_destroy(r); /* never scanned */

	/* Empty and missing folders are fine and refuse nothing. */
	const char *tmp = test_tmpdir();
	char dirs[1200];
	snprintf(dirs, sizeof dirs, "%s::%s/missing:", tmp, tmp);
	r = scan_only(dirs);
	CU_ASSERT_EQUAL(train_registry_plugin_count(r), 0);
	CU_ASSERT_EQUAL(train_registry_refused_count(r), 0);
	CU_ASSERT_PTR_NULL(train_registry_plugin_at(r, 0).path);
	CU_ASSERT_PTR_NULL(train_registry_refused_at(r, 0).path);

	/* Read-only after scan. */
	train_error err = { 0 };
	CU_ASSERT_EQUAL(train_registry_scan(r, &err), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_registry_add_dirs(r, tmp), TRAIN_EINVAL);

	static const train_component_class sentinel;
	const train_component_class *cls = &sentinel;
	CU_ASSERT_EQUAL(train_registry_find(r, "Echo", &cls, NULL, &err), TRAIN_ENOTFOUND);
	CU_ASSERT_PTR_NULL(cls);
	CU_ASSERT_EQUAL(train_registry_find(r, NULL, NULL, NULL, NULL), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_registry_find(r, "", NULL, NULL, NULL), TRAIN_EINVAL);
	train_registry_destroy(r);
}

static void test_good_plugin(void)
{
	if (!plugins_dir())
		return;
	const char *dir = test_tmpdir();
	add_plugin(dir, "testparts", NULL);
	train_registry *r = scan_only(dir);

	CU_ASSERT_EQUAL(train_registry_plugin_count(r), 1);
	CU_ASSERT_EQUAL(train_registry_refused_count(r), 0);
	train_plugin_info p = train_registry_plugin_at(r, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p.desc);
	CU_ASSERT_STRING_EQUAL(p.desc->name, "testparts");
	CU_ASSERT(ends_with(p.path, "/testparts.so"));

	/* Every class it offers is findable, by "Name" and "plugin/Name". */
	size_t n = 0;
	for (const train_component_class *const *c = p.desc->components; *c; c++, n++) {
		const train_component_class *cls = NULL;
		const train_plugin_info *from = NULL;
		train_error err = { 0 };
		CU_ASSERT_EQUAL(train_registry_find(r, (*c)->name, &cls, &from, &err), TRAIN_OK);
		CU_ASSERT_PTR_EQUAL(cls, *c);
		CU_ASSERT_PTR_NOT_NULL(from);
		if (from)
			CU_ASSERT_PTR_EQUAL(from->desc, p.desc);
		char qual[256];
		snprintf(qual, sizeof qual, "testparts/%s", (*c)->name);
		cls = NULL;
		CU_ASSERT_EQUAL(train_registry_find(r, qual, &cls, NULL, NULL), TRAIN_OK);
		CU_ASSERT_PTR_EQUAL(cls, *c);
	}
	CU_ASSERT(n >= 1);

	const train_component_class *echo = NULL;
	CU_ASSERT_EQUAL(train_registry_find(r, "Echo", &echo, NULL, NULL), TRAIN_OK);
	CU_ASSERT_PTR_NOT_NULL(echo);

	train_error err = { 0 };
	CU_ASSERT_EQUAL(train_registry_find(r, "NoSuchThing", NULL, NULL, &err), TRAIN_ENOTFOUND);
	CU_ASSERT_EQUAL(err.code, TRAIN_ENOTFOUND);
	CU_ASSERT_EQUAL(train_registry_find(r, "other/Echo", NULL, NULL, &err), TRAIN_ENOTFOUND);
	CU_ASSERT(contains(err.text, "other"));
	CU_ASSERT_EQUAL(train_registry_find(r, "testparts/NoSuchThing", NULL, NULL, &err),
	                TRAIN_ENOTFOUND);
	CU_ASSERT_EQUAL(train_registry_find(r, "testparts/", NULL, NULL, NULL), TRAIN_ENOTFOUND);
	/* Names are exact. */
	CU_ASSERT_EQUAL(train_registry_find(r, "echo", NULL, NULL, NULL), TRAIN_ENOTFOUND);
	train_registry_destroy(r);
}

/* Refused with `part` in the reason, without running plugin code, while
 * testparts in the same folder still loads. */
static void check_refused_beside_good(const char *plugin, const char *as, const char *part)
{
	const char *dir = test_tmpdir();
	add_plugin(dir, "testparts", NULL);
	add_plugin(dir, plugin, as);
	unsetenv("TRAIN_TEST_INIT_RAN");
	train_registry *r = scan_only(dir);
	CU_ASSERT_EQUAL(train_registry_plugin_count(r), 1);
	CU_ASSERT_PTR_NOT_NULL(loaded_from(r, "testparts"));
	CU_ASSERT_EQUAL(train_registry_refused_count(r), 1);
	char file[256];
	snprintf(file, sizeof file, "%s%s", as ? as : plugin, as ? "" : ".so");
	ASSERT_REFUSED(r, file, part);
	CU_ASSERT_PTR_NULL(getenv("TRAIN_TEST_INIT_RAN"));
	train_registry_destroy(r);
}

static void test_wrong_abi(void)
{
	if (!plugins_dir())
		return;
	char want[128];
	snprintf(want, sizeof want, "built for plugin ABI %d.%d, this libtrain has %d.%d",
	         TRAIN_ABI_MAJOR + 1, TRAIN_ABI_MINOR, TRAIN_ABI_MAJOR, TRAIN_ABI_MINOR);
	check_refused_beside_good("wrongabi", NULL, want);

	const char *dir = test_tmpdir();
	add_plugin(dir, "wrongabi", NULL);
	train_registry *r = scan_only(dir);
	CU_ASSERT_EQUAL(train_registry_find(r, "WrongAbi", NULL, NULL, NULL), TRAIN_ENOTFOUND);
	CU_ASSERT_EQUAL(train_registry_find(r, "wrongabi/WrongAbi", NULL, NULL, NULL),
	                TRAIN_ENOTFOUND);
	train_registry_destroy(r);
}

static void test_newer_minor(void)
{
	if (!plugins_dir())
		return;
	char want[128];
	snprintf(want, sizeof want, "built for plugin ABI %d.%d, newer than this libtrain's %d.%d",
	         TRAIN_ABI_MAJOR, TRAIN_ABI_MINOR + 1, TRAIN_ABI_MAJOR, TRAIN_ABI_MINOR);
	check_refused_beside_good("newminor", NULL, want);

	const char *dir = test_tmpdir();
	add_plugin(dir, "newminor", NULL);
	train_registry *r = scan_only(dir);
	CU_ASSERT_EQUAL(train_registry_plugin_count(r), 0);
	CU_ASSERT_EQUAL(train_registry_find(r, "NewMinor", NULL, NULL, NULL), TRAIN_ENOTFOUND);
	train_registry_destroy(r);
}

static void test_missing_symbol(void)
{
	if (!plugins_dir())
		return;
	check_refused_beside_good("nosymbol", NULL,
	                          "no train_plugin_descriptor symbol: not a libtrain plugin");
}

static void test_not_a_plugin(void)
{
	if (!plugins_dir())
		return;
	/* A real shared object that is some other library. */
	check_refused_beside_good("nosymbol", "libhelper.so",
	                          "no train_plugin_descriptor symbol: not a libtrain plugin");

	/* A text file named like a shared object: dlopen's own complaint. */
	const char *dir = test_tmpdir();
	add_plugin(dir, "testparts", NULL);
	char path[1024];
	snprintf(path, sizeof path, "%s/junk.so", dir);
	test_write(path, "this is not an ELF file\n");
	/* Files not named *.so and folders named *.so are not looked at. */
	snprintf(path, sizeof path, "%s/README.txt", dir);
	test_write(path, "not a plugin either\n");
	snprintf(path, sizeof path, "%s/plugin.so.1", dir);
	test_write(path, "nor this\n");
	char sub[1024];
	subdir(dir, "folder.so", sub, sizeof sub);

	train_registry *r = scan_only(dir);
	CU_ASSERT_EQUAL(train_registry_plugin_count(r), 1);
	CU_ASSERT_PTR_NOT_NULL(loaded_from(r, "testparts"));
	CU_ASSERT_EQUAL(train_registry_refused_count(r), 1);
	const char *why = refusal_of(r, "junk.so");
	CU_ASSERT_PTR_NOT_NULL(why);
	CU_ASSERT(contains(why, "cannot open: "));
	CU_ASSERT(!contains(why, "symbol"));
	/* dlopen's reason ("invalid ELF header"), not libltdl's "file not found". */
	CU_ASSERT(!contains(why, "file not found"));
	CU_ASSERT(why && strlen(why) > strlen("cannot open: "));
	CU_ASSERT(why && !strchr(why, '\n'));
	train_registry_destroy(r);
}

/* The other descriptor checks, through wrongabi.so's TRAIN_TEST_BREAK. */
static void test_bad_descriptors(void)
{
	if (!plugins_dir())
		return;
	static const struct {
		const char *what, *reason;
	} cases[] = {
		{ "struct_size", "descriptor struct_size 12 is smaller than" },
		{ "name", "descriptor has no name" },
		{ "version", "plugin 'wrongabi' has no version" },
		{ "license", "plugin 'wrongabi' has no license" },
		{ "components", "plugin 'wrongabi' has no component list" },
		{ "plugin_slash", "plugin name 'wrong/abi' contains '/'" },
		{ "class_size", "component #0: struct_size" },
		{ "class_name", "component #0 has no name" },
		{ "class_version", "component 'WrongAbi' has no version" },
		{ "slash", "component name 'Wrong/Abi' contains '/'" },
		{ "create", "component 'WrongAbi' has no create entry" },
		{ "train", "component 'WrongAbi' has no train entry" },
		{ "persist", "component 'WrongAbi' has no persist entry" },
		{ "load", "component 'WrongAbi' has no load entry" },
		{ "destroy", "component 'WrongAbi' has no destroy entry" },
		{ "dupclass", "plugin 'wrongabi' offers component 'WrongAbi' twice" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		setenv("TRAIN_TEST_BREAK", cases[i].what, 1);
		check_refused_beside_good("wrongabi", NULL, cases[i].reason);
	}

	/* init() runs only after the checks pass; non-zero refuses. */
	setenv("TRAIN_TEST_BREAK", "init_fail", 1);
	unsetenv("TRAIN_TEST_INIT_RAN");
	const char *dir = test_tmpdir();
	add_plugin(dir, "testparts", NULL);
	add_plugin(dir, "wrongabi", NULL);
	train_registry *r = scan_only(dir);
	CU_ASSERT_PTR_NOT_NULL(getenv("TRAIN_TEST_INIT_RAN"));
	CU_ASSERT_EQUAL(train_registry_plugin_count(r), 1);
	ASSERT_REFUSED(r, "wrongabi.so", "init() of plugin 'wrongabi' returned -7");
	CU_ASSERT_EQUAL(train_registry_find(r, "WrongAbi", NULL, NULL, NULL), TRAIN_ENOTFOUND);
	train_registry_destroy(r);

	/* With nothing broken it loads, and init() ran. */
	setenv("TRAIN_TEST_BREAK", "init_ok", 1);
	unsetenv("TRAIN_TEST_INIT_RAN");
	dir = test_tmpdir();
	add_plugin(dir, "wrongabi", NULL);
	r = scan_only(dir);
	CU_ASSERT_PTR_NOT_NULL(getenv("TRAIN_TEST_INIT_RAN"));
	CU_ASSERT_EQUAL(train_registry_plugin_count(r), 1);
	CU_ASSERT_EQUAL(train_registry_refused_count(r), 0);
	CU_ASSERT_EQUAL(train_registry_find(r, "WrongAbi", NULL, NULL, NULL), TRAIN_OK);
	train_registry_destroy(r);

	unsetenv("TRAIN_TEST_BREAK");
	unsetenv("TRAIN_TEST_INIT_RAN");
}

static void test_duplicate_component(void)
{
	if (!plugins_dir())
		return;
	const char *dir = test_tmpdir();
	add_plugin(dir, "testparts", NULL);
	add_plugin(dir, "dupname", NULL);
	train_registry *r = scan_only(dir);
	CU_ASSERT_EQUAL(train_registry_plugin_count(r), 2);
	CU_ASSERT_EQUAL(train_registry_refused_count(r), 0);
	const char *tp = loaded_from(r, "testparts"), *dp = loaded_from(r, "dupname");
	CU_ASSERT_PTR_NOT_NULL_FATAL(tp);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dp);

	/* "Echo" alone is ambiguous: the message names both files and how to pick. */
	train_error err = { 0 };
	const train_component_class *cls = NULL;
	const train_plugin_info *from = NULL;
	CU_ASSERT_EQUAL(train_registry_find(r, "Echo", &cls, &from, &err), TRAIN_EEXIST);
	CU_ASSERT_EQUAL(err.code, TRAIN_EEXIST);
	CU_ASSERT_PTR_NULL(cls);
	CU_ASSERT_PTR_NULL(from);
	CU_ASSERT(contains(err.text, tp));
	CU_ASSERT(contains(err.text, dp));
	CU_ASSERT(contains(err.text, "\"testparts/Echo\""));
	CU_ASSERT(contains(err.text, "\"dupname/Echo\""));

	/* "plugin/Name" picks. */
	const train_component_class *a = NULL, *b = NULL;
	const train_plugin_info *pa = NULL, *pb = NULL;
	CU_ASSERT_EQUAL(train_registry_find(r, "testparts/Echo", &a, &pa, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(train_registry_find(r, "dupname/Echo", &b, &pb, NULL), TRAIN_OK);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_PTR_NOT_EQUAL(a, b);
	CU_ASSERT_STRING_EQUAL(a->name, "Echo");
	CU_ASSERT_STRING_EQUAL(b->name, "Echo");
	CU_ASSERT_PTR_NOT_NULL_FATAL(pa);
	CU_ASSERT_PTR_NOT_NULL_FATAL(pb);
	CU_ASSERT_STRING_EQUAL(pa->desc->name, "testparts");
	CU_ASSERT_STRING_EQUAL(pb->desc->name, "dupname");
	CU_ASSERT_STRING_EQUAL(pa->path, tp);
	CU_ASSERT_STRING_EQUAL(pb->path, dp);
	train_registry_destroy(r);
}

/* One plugin name from two different files: the first in search order wins. */
static void test_duplicate_plugin_name(void)
{
	if (!plugins_dir())
		return;
	const char *tmp = test_tmpdir();
	char a[1024], b[1024], dirs[2100], first[1100];
	subdir(tmp, "a", a, sizeof a);
	subdir(tmp, "b", b, sizeof b);
	add_plugin(a, "testparts", NULL);
	add_plugin(b, "testparts", NULL);
	snprintf(dirs, sizeof dirs, "%s:%s", b, a);
	train_registry *r = scan_only(dirs);
	CU_ASSERT_EQUAL(train_registry_plugin_count(r), 1);
	snprintf(first, sizeof first, "%s/testparts.so", b);
	ASSERT_STR_EQ(loaded_from(r, "testparts"), first);
	CU_ASSERT_EQUAL(train_registry_refused_count(r), 1);
	train_plugin_refusal f = train_registry_refused_at(r, 0);
	char want[1200];
	snprintf(want, sizeof want, "%s/testparts.so", a);
	ASSERT_STR_EQ(f.path, want);
	snprintf(want, sizeof want, "plugin 'testparts' already loaded from %s/testparts.so", b);
	ASSERT_STR_EQ(f.reason, want);
	train_registry_destroy(r);

	/* Inside one folder, files go in bytewise name order whatever order
	 * readdir gives (created in a scrambled order, so that an unsorted
	 * scan is unlikely to pass by chance). */
	static const char *const names[] = { "m.so", "B.so", "z.so", "a.so", "k.so",
	                                     "Z.so", "c.so", "a0.so" };
	static const char *const sorted[] = { "B.so", "Z.so", "a.so", "a0.so", "c.so",
	                                      "k.so", "m.so", "z.so" };
	enum { N_NAMES = sizeof names / sizeof names[0] };
	char c[1024];
	subdir(tmp, "c", c, sizeof c);
	for (size_t i = 0; i < N_NAMES; i++)
		add_plugin(c, "testparts", names[i]);
	r = scan_only(c);
	CU_ASSERT_EQUAL(train_registry_plugin_count(r), 1);
	CU_ASSERT(ends_with(loaded_from(r, "testparts"), "/B.so"));
	CU_ASSERT_EQUAL(train_registry_refused_count(r), N_NAMES - 1);
	for (size_t i = 1; i < N_NAMES; i++) {
		char tail[64];
		snprintf(tail, sizeof tail, "/%s", sorted[i]);
		CU_ASSERT(ends_with(train_registry_refused_at(r, i - 1).path, tail));
	}
	train_registry_destroy(r);
}

/* --plugin-path folders, then TRAIN_PLUGIN_PATH, each in its own order. */
static void test_search_order(void)
{
	if (!plugins_dir())
		return;
	const char *old = getenv("TRAIN_PLUGIN_PATH");
	char *saved = old ? strdup(old) : NULL;

	const char *tmp = test_tmpdir();
	char cli1[1024], cli2[1024], env1[1024], env2[1024];
	subdir(tmp, "cli1", cli1, sizeof cli1);
	subdir(tmp, "cli2", cli2, sizeof cli2);
	subdir(tmp, "env1", env1, sizeof env1);
	subdir(tmp, "env2", env2, sizeof env2);
	add_plugin(cli2, "testparts", NULL);
	add_plugin(env1, "testparts", NULL);
	add_plugin(env1, "dupname", NULL);
	add_plugin(env2, "dupname", NULL);

	char envpath[3000], dirs[2100], want[1200];
	snprintf(envpath, sizeof envpath, "%s::%s:%s/missing", env1, env2, tmp);
	setenv("TRAIN_PLUGIN_PATH", envpath, 1);
	snprintf(dirs, sizeof dirs, "%s:%s", cli1, cli2);

	train_registry *r = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_registry_create(&r), TRAIN_OK);
	train_registry_use_defaults(r, 1, 0);
	CU_ASSERT_EQUAL(train_registry_add_dirs(r, dirs), TRAIN_OK);
	CU_ASSERT_EQUAL(train_registry_scan(r, &err), TRAIN_OK);

	CU_ASSERT_EQUAL(train_registry_plugin_count(r), 2);
	snprintf(want, sizeof want, "%s/testparts.so", cli2);
	ASSERT_STR_EQ(loaded_from(r, "testparts"), want);
	snprintf(want, sizeof want, "%s/dupname.so", env1);
	ASSERT_STR_EQ(loaded_from(r, "dupname"), want);
	CU_ASSERT_EQUAL(train_registry_refused_count(r), 2);
	if (train_registry_refused_count(r) == 2) {
		snprintf(want, sizeof want, "%s/testparts.so", env1);
		ASSERT_STR_EQ(train_registry_refused_at(r, 0).path, want);
		snprintf(want, sizeof want, "%s/dupname.so", env2);
		ASSERT_STR_EQ(train_registry_refused_at(r, 1).path, want);
	}
	/* The plugin list is in load order. */
	ASSERT_STR_EQ(plugin_name_at(r, 0), "testparts");
	ASSERT_STR_EQ(plugin_name_at(r, 1), "dupname");
	train_registry_destroy(r);

	/* With the environment turned off only the added folders count. */
	CU_ASSERT_EQUAL_FATAL(train_registry_create(&r), TRAIN_OK);
	train_registry_use_defaults(r, 0, 0);
	CU_ASSERT_EQUAL(train_registry_add_dirs(r, dirs), TRAIN_OK);
	CU_ASSERT_EQUAL(train_registry_scan(r, &err), TRAIN_OK);
	CU_ASSERT_EQUAL(train_registry_plugin_count(r), 1);
	CU_ASSERT_PTR_NULL(loaded_from(r, "dupname"));
	CU_ASSERT_EQUAL(train_registry_refused_count(r), 0);
	train_registry_destroy(r);

	/* TRAIN_PLUGIN_PATH alone, in its order. */
	snprintf(envpath, sizeof envpath, "%s:%s", env2, env1);
	setenv("TRAIN_PLUGIN_PATH", envpath, 1);
	CU_ASSERT_EQUAL_FATAL(train_registry_create(&r), TRAIN_OK);
	train_registry_use_defaults(r, 1, 0);
	CU_ASSERT_EQUAL(train_registry_scan(r, &err), TRAIN_OK);
	snprintf(want, sizeof want, "%s/dupname.so", env2);
	ASSERT_STR_EQ(loaded_from(r, "dupname"), want);
	train_registry_destroy(r);

	if (saved)
		setenv("TRAIN_PLUGIN_PATH", saved, 1);
	else
		unsetenv("TRAIN_PLUGIN_PATH");
	free(saved);
}

/* One file reached through several paths loads once and is not refused. */
static void test_same_file_twice(void)
{
	if (!plugins_dir())
		return;
	const char *tmp = test_tmpdir();
	char a[1024], b[1024], link[1100], target[1100], dirs[5200];
	subdir(tmp, "a", a, sizeof a);
	subdir(tmp, "b", b, sizeof b);
	add_plugin(a, "testparts", NULL);
	snprintf(target, sizeof target, "%s/testparts.so", a);
	snprintf(link, sizeof link, "%s/link.so", b);
	if (symlink(target, link) != 0) {
		perror(link);
		abort();
	}
	snprintf(dirs, sizeof dirs, "%s:%s:%s/.:%s/../a:%s", a, b, a, b, a);
	train_registry *r = scan_only(dirs);
	CU_ASSERT_EQUAL(train_registry_plugin_count(r), 1);
	CU_ASSERT_EQUAL(train_registry_refused_count(r), 0);
	ASSERT_STR_EQ(loaded_from(r, "testparts"), target);
	train_registry_destroy(r);

	/* The link first: it is the path recorded, and the target is skipped. */
	snprintf(dirs, sizeof dirs, "%s:%s", b, a);
	r = scan_only(dirs);
	CU_ASSERT_EQUAL(train_registry_plugin_count(r), 1);
	CU_ASSERT_EQUAL(train_registry_refused_count(r), 0);
	ASSERT_STR_EQ(loaded_from(r, "testparts"), link);
	train_registry_destroy(r);
}

/* Two registries hold one plugin; destroying one leaves the other's
 * descriptor mapped (libltdl and dlopen count references). */
static void test_two_registries(void)
{
	if (!plugins_dir())
		return;
	const char *dir = test_tmpdir();
	add_plugin(dir, "testparts", NULL);
	train_registry *r1 = scan_only(dir);
	train_registry *r2 = scan_only(dir);
	const train_component_class *c1 = NULL, *c2 = NULL;
	CU_ASSERT_EQUAL(train_registry_find(r1, "Echo", &c1, NULL, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(train_registry_find(r2, "Echo", &c2, NULL, NULL), TRAIN_OK);
	CU_ASSERT_PTR_EQUAL(c1, c2);
	train_registry_destroy(r1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c2);
	CU_ASSERT_STRING_EQUAL(c2->name, "Echo"); /* would fault if unmapped */
	ASSERT_STR_EQ(plugin_name_at(r2, 0), "testparts");
	train_registry_destroy(r2);
}

/* Registries built and used on several threads at once. */
#define N_THREADS 4

static void *scan_thread(void *arg)
{
	const char *dir = arg;
	intptr_t ok = 1;
	for (int i = 0; i < 10 && ok; i++) {
		train_registry *r = NULL;
		if (train_registry_create(&r) != TRAIN_OK)
			return NULL;
		train_registry_use_defaults(r, 0, 0);
		ok = train_registry_add_dirs(r, dir) == TRAIN_OK &&
		     train_registry_scan(r, NULL) == TRAIN_OK &&
		     train_registry_plugin_count(r) == 2 && train_registry_refused_count(r) == 2 &&
		     train_registry_find(r, "Echo", NULL, NULL, NULL) == TRAIN_EEXIST &&
		     train_registry_find(r, "dupname/Echo", NULL, NULL, NULL) == TRAIN_OK;
		train_registry_destroy(r);
	}
	return (void *)ok;
}

static void test_threads(void)
{
	if (!plugins_dir())
		return;
	const char *dir = test_tmpdir();
	add_plugin(dir, "testparts", NULL);
	add_plugin(dir, "dupname", NULL);
	add_plugin(dir, "nosymbol", NULL);
	add_plugin(dir, "newminor", NULL);
	pthread_t t[N_THREADS];
	for (int i = 0; i < N_THREADS; i++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, scan_thread, (void *)dir), 0);
	for (int i = 0; i < N_THREADS; i++) {
		void *ok = NULL;
		pthread_join(t[i], &ok);
		CU_ASSERT_PTR_NOT_NULL(ok);
	}
}

int main(void)
{
	static const test_case cases[] = {
		{ "lifecycle", test_lifecycle },
		{ "good plugin", test_good_plugin },
		{ "wrong ABI major", test_wrong_abi },
		{ "newer ABI minor", test_newer_minor },
		{ "missing symbol", test_missing_symbol },
		{ "not a plugin", test_not_a_plugin },
		{ "bad descriptors", test_bad_descriptors },
		{ "duplicate component", test_duplicate_component },
		{ "duplicate plugin name", test_duplicate_plugin_name },
		{ "search order", test_search_order },
		{ "same file twice", test_same_file_twice },
		{ "two registries", test_two_registries },
		{ "threads", test_threads },
		{ NULL, NULL },
	};
	return test_main("plugin", cases);
}
