/*
 * fuzz_package.c - the model archive reader: train_dir_unpack()
 * (libtrain/package.h) of the input as a folder blob (a tar, which
 * libarchive also takes compressed), into a fresh folder each time.  Any
 * input must give TRAIN_OK or an error, never write outside the folder,
 * and leave only regular files and folders behind.
 */
#define FUZZ_NAME "package"
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

#include "package.h"
#include "util.h"

static void fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz: property broken: %s\n", what);
	abort();
}

static char root[4096]; /* the scratch folder; the destination is root/d */

static void cleanup(void)
{
	train_rmtree(root);
}

/* Everything under `dir` is a regular file or a folder (lstat: no links). */
static void check_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char path[8192];
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		struct stat st;
		if (lstat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode))
			check_tree(path);
		else if (!S_ISREG(st.st_mode))
			fuzz_fail("unpack left something that is not a file or a folder");
	}
	closedir(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!root[0]) {
		const char *tmp = getenv("TMPDIR");
		snprintf(root, sizeof root, "%s/train-fuzz-pkg-XXXXXX", tmp && *tmp ? tmp : "/tmp");
		if (!mkdtemp(root))
			fuzz_fail("mkdtemp");
		atexit(cleanup);
	}
	char dest[4200];
	snprintf(dest, sizeof dest, "%s/d", root);
	train_rmtree(dest);
	if (mkdir(dest, 0755) != 0)
		fuzz_fail("mkdir");
	train_error err;
	int rc = train_dir_unpack(data, size, dest, &err);
	if (rc > 0)
		fuzz_fail("a positive return code");
	check_tree(dest);
	/* Nothing but the destination in the scratch folder. */
	DIR *d = opendir(root);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "d"))
			fuzz_fail("unpack wrote outside its folder");
	if (d)
		closedir(d);
	return 0;
}
