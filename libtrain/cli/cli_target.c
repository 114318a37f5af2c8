/*
 * cli_target.c - `--target NAME`: the recipe NAME.yml, looked up in
 * $TRAIN_RECIPE_PATH (colon-separated folders), then beside the program
 * (recipes/ next to an uninstalled build's `train`), then the installed
 * recipe folder.
 */
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define MAX_DIRS 32

/* The folders to search, in order; strings malloc'd into dirs[]. */
static size_t search_dirs(char **dirs)
{
	size_t n = 0;
	const char *env = getenv("TRAIN_RECIPE_PATH");
	if (env && *env) {
		char *copy = strdup(env), *save = NULL;
		for (char *d = copy ? strtok_r(copy, ":", &save) : NULL; d && n < MAX_DIRS - 3;
		     d = strtok_r(NULL, ":", &save))
			dirs[n++] = strdup(d);
		free(copy);
	}
	char exe[PATH_MAX];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (len > 0) {
		exe[len] = '\0';
		char *slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			/* libtool runs an uninstalled program from .libs/ */
			size_t el = strlen(exe);
			if (el >= 6 && !strcmp(exe + el - 6, "/.libs"))
				exe[el - 6] = '\0';
			char buf[PATH_MAX + 16];
			snprintf(buf, sizeof buf, "%s/recipes", exe);
			dirs[n++] = strdup(buf);
		}
	}
	dirs[n++] = strdup(TRAIN_RECIPEDIR);
	return n;
}

static int good_name(const char *s)
{
	if (!*s || *s == '.')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '-' || *s == '.'))
			return 0;
	return 1;
}

char *cli_target_recipe(const char *name)
{
	char *dirs[MAX_DIRS] = { 0 };
	size_t n = search_dirs(dirs);
	char *found = NULL;
	if (!good_name(name)) {
		fprintf(stderr, "train: --target: '%s' is not a target name\n", name);
		goto out;
	}
	for (size_t i = 0; i < n && !found; i++) {
		if (!dirs[i])
			continue;
		size_t l = strlen(dirs[i]) + strlen(name) + 6;
		char *p = malloc(l);
		if (p && (snprintf(p, l, "%s/%s.yml", dirs[i], name), access(p, R_OK) == 0))
			found = p;
		else
			free(p);
	}
	if (!found) {
		fprintf(stderr, "train: --target: no recipe '%s.yml' in", name);
		for (size_t i = 0; i < n; i++)
			if (dirs[i])
				fprintf(stderr, "%s %s", i ? "," : "", dirs[i]);
		fprintf(stderr, "; targets found:");
		int any = 0;
		for (size_t i = 0; i < n; i++) {
			DIR *d = dirs[i] ? opendir(dirs[i]) : NULL;
			struct dirent *e;
			while (d && (e = readdir(d))) {
				size_t l = strlen(e->d_name);
				if (l > 4 && !strcmp(e->d_name + l - 4, ".yml") && e->d_name[0] != '.') {
					fprintf(stderr, " %.*s", (int)(l - 4), e->d_name);
					any = 1;
				}
			}
			if (d)
				closedir(d);
		}
		fprintf(stderr, "%s\n", any ? "" : " none");
	}
out:
	for (size_t i = 0; i < n; i++)
		free(dirs[i]);
	return found;
}

int cli_target_each(void (*fn)(void *ud, const char *name, const char *path), void *ud)
{
	char *dirs[MAX_DIRS] = { 0 };
	size_t n = search_dirs(dirs);
	int count = 0;
	for (size_t i = 0; i < n; i++) {
		DIR *d = dirs[i] ? opendir(dirs[i]) : NULL;
		struct dirent *e;
		while (d && (e = readdir(d))) {
			size_t l = strlen(e->d_name);
			if (l > 4 && !strcmp(e->d_name + l - 4, ".yml") && good_name(e->d_name)) {
				char name[256], path[PATH_MAX];
				snprintf(name, sizeof name, "%.*s", (int)(l - 4), e->d_name);
				snprintf(path, sizeof path, "%s/%s", dirs[i], e->d_name);
				fn(ud, name, path);
				count++;
			}
		}
		if (d)
			closedir(d);
	}
	for (size_t i = 0; i < n; i++)
		free(dirs[i]);
	return count;
}
