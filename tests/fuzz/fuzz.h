/*
 * tests/fuzz/fuzz.h - what every fuzz target shares.  A target is one file:
 *
 *   #define FUZZ_NAME "jsonl"          // seeds in tests/fuzz/corpus/jsonl/
 *   #include "fuzz.h"
 *   int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { ... }
 *
 * Built with --enable-fuzzing (TRAIN_FUZZING defined, linked with
 * -fsanitize=fuzzer), the program is a libFuzzer fuzzer.  Run with
 * arguments, they are libFuzzer's own.  Run with none, as `make check`
 * does, it fuzzes for $TRAIN_FUZZ_SECONDS seconds (default 20), starting
 * from the seed corpus in $top_srcdir/tests/fuzz/corpus/NAME and adding
 * what it finds to a scratch folder (the seeds are never written); a crash
 * or leak fails the test, and its input is kept as
 * tests/fuzz/NAME-crash-<sha1> (leak-, timeout-, oom-) in the build folder.
 *
 * Built without it, the program is a replayer: it runs every file of the
 * seed corpus (or the files and folders given as arguments, e.g. a crash
 * input) through the target once, so that the targets are compiled and
 * exercised in every `make check`.
 */
#ifndef TRAIN_FUZZ_H
#define TRAIN_FUZZ_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef FUZZ_NAME
#error "define FUZZ_NAME before including fuzz.h"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The seed folder: $top_srcdir/tests/fuzz/corpus/NAME (top_srcdir is set
 * by make check; "." otherwise). */
static inline void fuzz_seed_dir_(char *buf, size_t size)
{
	const char *top = getenv("top_srcdir");
	snprintf(buf, size, "%s/tests/fuzz/corpus/%s", top && *top ? top : ".", FUZZ_NAME);
}

#ifdef TRAIN_FUZZING

int LLVMFuzzerInitialize(int *argc, char ***argv);

static char fuzz_work_[4096];

static void fuzz_cleanup_(void)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_work_);
	if (fuzz_work_[0] && system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", fuzz_work_);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	if (*argc > 1)
		return 0;
	static char seeds[4096], time_arg[64], seed_arg[64], artifacts[256];
	static char *args[16];
	const char *secs = getenv("TRAIN_FUZZ_SECONDS");
	const char *tmp = getenv("TMPDIR");
	fuzz_seed_dir_(seeds, sizeof seeds);
	/* TRAIN_FUZZ_RUNS and TRAIN_FUZZ_SEED make a run repeatable (CI uses
	 * both, so that what passed here passes there); otherwise fuzz for a
	 * time from a random seed. */
	const char *runs = getenv("TRAIN_FUZZ_RUNS"), *seed = getenv("TRAIN_FUZZ_SEED");
	if (runs && *runs)
		snprintf(time_arg, sizeof time_arg, "-runs=%s", runs);
	else
		snprintf(time_arg, sizeof time_arg, "-max_total_time=%s", secs && *secs ? secs : "20");
	snprintf(seed_arg, sizeof seed_arg, "-seed=%s", seed && *seed ? seed : "0");
	snprintf(artifacts, sizeof artifacts, "-artifact_prefix=tests/fuzz/%s-", FUZZ_NAME);
	snprintf(fuzz_work_, sizeof fuzz_work_, "%s/train-fuzz-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp",
	         FUZZ_NAME);
	if (!mkdtemp(fuzz_work_)) {
		perror(fuzz_work_);
		exit(2);
	}
	atexit(fuzz_cleanup_);
	int n = 0;
	args[n++] = (*argv)[0];
	args[n++] = time_arg;
	args[n++] = seed_arg;                /* 0: libFuzzer picks one */
	args[n++] = "-timeout=10";           /* one input taking 10 s is a hang */
	/* libFuzzer's default exit codes, 77 and 70, mean "skipped" and
	 * nothing to automake's test driver: any failure must fail. */
	args[n++] = "-error_exitcode=1";
	args[n++] = "-timeout_exitcode=1";
	args[n++] = "-rss_limit_mb=2048";
	args[n++] = "-print_final_stats=1";
	args[n++] = artifacts;
	args[n++] = fuzz_work_;              /* new inputs go here */
	args[n++] = seeds;                   /* read only */
	args[n] = NULL;
	*argc = n;
	*argv = args;
	fprintf(stderr, "fuzz %s: %s, seeds %s\n", FUZZ_NAME, time_arg, seeds);
	return 0;
}

#else /* a replayer */

static int fuzz_cmp_(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Run one file through the target; 0, or 1 if it cannot be read. */
static int fuzz_run_file_(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return 1;
	}
	size_t cap = 4096, len = 0;
	uint8_t *buf = malloc(cap);
	size_t n;
	while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			uint8_t *nb = realloc(buf, cap *= 2);
			if (!nb)
				free(buf);
			buf = nb;
		}
	}
	fclose(f);
	if (!buf) {
		fprintf(stderr, "%s: out of memory\n", path);
		return 1;
	}
	/* An exact-size copy, so that ASan sees a read past the input. */
	uint8_t *exact = malloc(len ? len : 1);
	if (exact && len)
		memcpy(exact, buf, len);
	free(buf);
	if (!exact)
		return 1;
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

/* A file, or every regular file in a folder (sorted, not recursive).
 * Adds to *count; returns the number of failures. */
static int fuzz_run_path_(const char *path, size_t *count)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		perror(path);
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return fuzz_run_file_(path);
	}
	DIR *d = opendir(path);
	if (!d) {
		perror(path);
		return 1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	int fails = 0;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *names);
			if (!nn) {
				fails++;
				break;
			}
			names = nn;
		}
		names[n++] = strdup(e->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, fuzz_cmp_);
	for (size_t i = 0; i < n; i++) {
		char full[4096];
		snprintf(full, sizeof full, "%s/%s", path, names[i]);
		if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
			(*count)++;
			fails += fuzz_run_file_(full);
		}
		free(names[i]);
	}
	free(names);
	return fails;
}

int main(int argc, char **argv)
{
	char seeds[4096];
	size_t count = 0;
	int fails = 0;
	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			fails += fuzz_run_path_(argv[i], &count);
	} else {
		fuzz_seed_dir_(seeds, sizeof seeds);
		fails += fuzz_run_path_(seeds, &count);
		if (count == 0) {
			fprintf(stderr, "fuzz %s: no seeds in %s\n", FUZZ_NAME, seeds);
			return 1;
		}
	}
	printf("fuzz %s: replayed %zu input(s)\n", FUZZ_NAME, count);
	return fails ? 1 : 0;
}

#endif /* TRAIN_FUZZING */
#endif /* TRAIN_FUZZ_H */
