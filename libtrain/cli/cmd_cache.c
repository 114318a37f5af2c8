/*
 * cmd_cache.c - `train cache stats|clear|gc`.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* "123", "64K", "10M", "2G" -> bytes; 0 on a bad value. */
static uint64_t parse_size(const char *s)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s)
		return 0;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	default: break;
	}
	return *end ? 0 : v;
}

int cmd_cache(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "cache-dir", required_argument, NULL, 'c' },
		{ "max-size", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL;
	uint64_t max_size = 0;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': dir = optarg; break;
		case 'm':
			if (!(max_size = parse_size(optarg))) {
				fprintf(stderr, "train: --max-size: '%s' is not a size (e.g. 512M)\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h': printf("usage: train cache stats|clear|gc [--cache-dir DIR] [--max-size SIZE]\n"); return 0;
		default: return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "usage: train cache stats|clear|gc [--cache-dir DIR] [--max-size SIZE]\n");
		return EXIT_USAGE;
	}
	const char *what = argv[optind];
	if (strcmp(what, "stats") && strcmp(what, "clear") && strcmp(what, "gc")) {
		fprintf(stderr, "train: cache: unknown action '%s' (stats, clear, gc)\n", what);
		return EXIT_USAGE;
	}
	char *path = train_cache_default_dir(dir);
	train_cache *cache = NULL;
	train_error err = { 0 };
	int rc = path ? train_cache_open(path, max_size, NULL, &cache, &err) : TRAIN_ENOMEM;
	if (!rc && !strcmp(what, "stats")) {
		train_cache_stats st;
		rc = train_cache_stats_get(cache, &st, &err);
		if (!rc)
			printf("cache:       %s\n"
			       "nodes:       %llu\n"
			       "values:      %llu\n"
			       "value bytes: %llu\n"
			       "file bytes:  %llu\n"
			       "map size:    %llu\n"
			       "max size:    %llu\n",
			       path, (unsigned long long)st.nodes, (unsigned long long)st.values,
			       (unsigned long long)st.value_bytes, (unsigned long long)st.file_bytes,
			       (unsigned long long)st.map_size, (unsigned long long)st.max_size);
	} else if (!rc && !strcmp(what, "clear")) {
		rc = train_cache_clear(cache, &err);
		if (!rc)
			printf("cleared %s\n", path);
	} else if (!rc) {
		uint64_t freed = 0;
		rc = train_cache_gc(cache, max_size, &freed, &err);
		if (!rc)
			printf("evicted %llu values\n", (unsigned long long)freed);
	}
	train_cache_close(cache);
	free(path);
	if (rc) {
		if (!err.text[0])
			train_error_set(&err, rc, NULL, 0, 0, "%s", train_strerror(rc));
		return cli_report(&err);
	}
	return 0;
}
