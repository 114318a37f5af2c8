/*
 * cmd_serve.c - `train serve`: the training-job HTTP API and its web page
 * (libtrain/serve/).
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "serve/serve.h"

static void help(FILE *f)
{
	fputs("usage: train serve [OPTIONS]\n\n"
	      "  --listen ADDR:PORT   where to listen (default 127.0.0.1:8790; port 0: any free\n"
	      "                       one, written to STATE/address)\n"
	      "  --state DIR          tokens, job records, audit log, job folders\n"
	      "                       (default: ./train-serve)\n"
	      "  --data DIR           the data sets jobs may name (default: STATE/datasets)\n"
	      "  --models DIR         the models jobs may name (default: STATE/models)\n"
	      "  --max-jobs N         jobs running at once (default 1; more wait in a queue)\n"
	      "  --job-threads N      --threads of each job's train (default: train's)\n"
	      "  --max-body BYTES     largest request body (default 65536)\n"
	      "  --plugin-path DIRS   passed to each job's train\n",
	      f);
}

static int count_arg(const char *opt, const char *s, long lo, long hi, long *out)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (*end || end == s || v < lo || v > hi) {
		fprintf(stderr, "train serve: %s: '%s' is not a number from %ld to %ld\n", opt, s, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

/* A colon-separated list of folders with each made absolute (malloc'd). */
static char *absolute_list(const char *list)
{
	size_t cap = strlen(list) * 2 + PATH_MAX * 8;
	char *copy = strdup(list), *save = NULL, *out = calloc(1, cap);
	for (char *t = copy ? strtok_r(copy, ":", &save) : NULL; t && out;
	     t = strtok_r(NULL, ":", &save)) {
		char *r = realpath(t, NULL);
		size_t l = strlen(out);
		snprintf(out + l, cap - l, "%s%s", l ? ":" : "", r ? r : t);
		free(r);
	}
	free(copy);
	return out;
}

int cmd_serve(int argc, char **argv)
{
	enum { O_LISTEN = 256, O_STATE, O_DATA, O_MODELS, O_MAXJOBS, O_JOBTHREADS, O_MAXBODY,
	       O_PLUGINS, O_HELP };
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "state", required_argument, NULL, O_STATE },
		{ "data", required_argument, NULL, O_DATA },
		{ "models", required_argument, NULL, O_MODELS },
		{ "max-jobs", required_argument, NULL, O_MAXJOBS },
		{ "job-threads", required_argument, NULL, O_JOBTHREADS },
		{ "max-body", required_argument, NULL, O_MAXBODY },
		{ "plugin-path", required_argument, NULL, O_PLUGINS },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	serve_options o = { .listen = "127.0.0.1:8790", .state_dir = "train-serve", .max_jobs = 1,
	                    .max_body = 65536 };
	const char *data = NULL, *models = NULL;
	long v;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_LISTEN: o.listen = optarg; break;
		case O_STATE: o.state_dir = optarg; break;
		case O_DATA: data = optarg; break;
		case O_MODELS: models = optarg; break;
		case O_PLUGINS: o.plugin_path = optarg; break;
		case O_MAXJOBS:
			if (count_arg("--max-jobs", optarg, 1, 64, &v))
				return EXIT_USAGE;
			o.max_jobs = (int)v;
			break;
		case O_JOBTHREADS:
			if (count_arg("--job-threads", optarg, 1, 4096, &v))
				return EXIT_USAGE;
			o.job_threads = (int)v;
			break;
		case O_MAXBODY:
			if (count_arg("--max-body", optarg, 256, 64L << 20, &v))
				return EXIT_USAGE;
			o.max_body = (size_t)v;
			break;
		case O_HELP: help(stdout); return 0;
		default: fprintf(stderr, "train: try 'train serve --help'\n"); return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "train serve: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	/* Jobs run this very program; paths are made absolute, since jobs run
	 * in their own folders. */
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0) {
		fprintf(stderr, "train serve: cannot find the train program (/proc/self/exe)\n");
		return EXIT_SOFTWARE;
	}
	exe[n] = '\0';
	o.exe = exe;
	char *state = NULL, *dd = NULL, *md = NULL, *pp = NULL;
	int status = EXIT_IOERR;
	if (access(o.state_dir, F_OK) != 0 && mkdir(o.state_dir, 0700) != 0) {
		fprintf(stderr, "train serve: --state %s: cannot make it\n", o.state_dir);
		return EXIT_IOERR;
	}
	if (!(state = realpath(o.state_dir, NULL))) {
		fprintf(stderr, "train serve: --state %s: no such folder\n", o.state_dir);
		return EXIT_IOERR;
	}
	o.state_dir = state;
	if (!data && asprintf(&dd, "%s/datasets", state) >= 0)
		mkdir(dd, 0700);
	if (!models && asprintf(&md, "%s/models", state) >= 0)
		mkdir(md, 0700);
	if (data && !(dd = realpath(data, NULL))) {
		fprintf(stderr, "train serve: --data %s: no such folder\n", data);
		goto out;
	}
	if (models && !(md = realpath(models, NULL))) {
		fprintf(stderr, "train serve: --models %s: no such folder\n", models);
		goto out;
	}
	o.data_dir = dd;
	o.models_dir = md;
	if (o.plugin_path)
		o.plugin_path = pp = absolute_list(o.plugin_path);
	/* the jobs' train runs in the job's folder: its recipe path too */
	const char *rp = getenv("TRAIN_RECIPE_PATH");
	if (rp && *rp) {
		char *abs = absolute_list(rp);
		if (abs)
			setenv("TRAIN_RECIPE_PATH", abs, 1);
		free(abs);
	}
	status = serve_run(&o);
out:
	free(state);
	free(dd);
	free(md);
	free(pp);
	return status;
}
