/*
 * main.c - `train`: dispatch to a subcommand; shared error reporting.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static void usage(FILE *f)
{
	fputs("usage: train [train|nlu|core] [--recipe FILE] [OPTIONS]   train a recipe\n"
	      "       train graph [OPTIONS] [--dot FILE]             show what would train\n"
	      "       train plugins [--plugin-path DIRS] [-v]         list plugins\n"
	      "       train cache stats|clear|gc [--cache-dir DIR] [--max-size SIZE]\n"
	      "       train inspect MODEL                             print a model's metadata\n"
	      "       train predict MODEL [--plugin-path DIRS] NAME=VALUE...|TEXT...|--conversation FILE\n"
	      "       train generate MODEL [--temperature T] [--top-k K] [--seed S] PROMPT...  sample text\n"
	      "       train test nlu|core MODEL [--data DIR|--stories FILE] [--out DIR]\n"
	      "       train test rag MODEL --queries FILE [--out DIR]     recall@k and MRR\n"
	      "       train query MODEL QUESTION [-k 5] [--mode bm25|dense|hybrid]\n"
	      "       train data validate [--domain PATH] [--data PATH]...  check a Rasa project\n"
	      "       train hardware [--dir DIR] [--json]             what this machine offers\n"
	      "       train check MODEL --type TYPE [--json]          can it train here, memory, time\n"
	      "       train finetune MODEL --data FILE [--mode basic|advanced|expert]  fine-tune it\n"
	      "       train --help | --version\n"
	      "Run `train train --help` for the training options; man train for everything.\n",
	      f);
}

int cli_exit_code(int rc)
{
	switch (rc) {
	case TRAIN_OK: return 0;
	case TRAIN_EINVAL:
	case TRAIN_EPARSE:
	case TRAIN_ECONFIG:
	case TRAIN_ENOTFOUND:
	case TRAIN_EEXIST:
	case TRAIN_ECYCLE:
	case TRAIN_EMISMATCH:
	case TRAIN_EUNSAFE:
	case TRAIN_ECORRUPT: return EXIT_DATAERR;
	case TRAIN_EPLUGIN:
	case TRAIN_EABI:
	case TRAIN_EUNSUPPORTED: return EXIT_UNAVAILABLE;
	case TRAIN_EIO:
	case TRAIN_ECACHE: return EXIT_IOERR;
	case TRAIN_ECANCELED: return EXIT_INTERRUPTED;
	case -ENOENT: return EXIT_DATAERR;
	default: return rc < 0 && rc > -4096 ? EXIT_IOERR : EXIT_SOFTWARE;
	}
}

int cli_report(const train_error *err)
{
	char buf[1024];
	fprintf(stderr, "train: %s\n", train_error_format(err, buf, sizeof buf));
	return cli_exit_code(err->code);
}

int cli_load_plugins(const char *plugin_path, int verbosity, int quiet_refusals,
                     train_registry **out)
{
	train_registry *reg = NULL;
	train_error err = { 0 };
	int rc = train_registry_create(&reg);
	if (!rc && plugin_path)
		rc = train_registry_add_dirs(reg, plugin_path);
	if (!rc)
		rc = train_registry_scan(reg, &err);
	if (rc) {
		if (!err.text[0])
			train_error_set(&err, rc, NULL, 0, 0, "cannot load plugins: %s", train_strerror(rc));
		train_registry_destroy(reg);
		return cli_report(&err);
	}
	if (!quiet_refusals && verbosity >= 1)
		for (size_t i = 0; i < train_registry_refused_count(reg); i++) {
			train_plugin_refusal f = train_registry_refused_at(reg, i);
			fprintf(stderr, "train: warning: plugin refused: %s: %s\n", f.path, f.reason);
		}
	*out = reg;
	return 0;
}

/*
 * Training runs many small oneDNN primitives (DIET, TED: a few hundred per
 * step, each one OpenMP parallel region).  libgomp's default is to spin
 * at the end of a region; on a machine whose cores are shared with other
 * work, the spinning threads take the CPU from the thread the region waits
 * for, and DIET on CLINC150 ran 7x slower on two loaded cores than with
 * OMP_WAIT_POLICY=passive (issue 6).  Sleeping threads cost a wake-up per
 * region instead: on an idle machine a short spin (GOMP_SPINCOUNT=10000,
 * some microseconds, then sleep) made a bert-mini LoRA step 1.3x faster
 * than passive (doc/bert.md).  So a command that runs kernels and finds
 * neither variable set picks by the load: the short spin when the
 * 1-minute load average is under a quarter of the online CPUs, passive
 * otherwise.  libgomp reads the variables when it is loaded, before main,
 * so the command sets one and executes itself again (once: it is then
 * set).  Setting OMP_WAIT_POLICY (e.g. to active) or GOMP_SPINCOUNT keeps
 * the caller's choice.
 */
static int machine_idle(double *load, long *cpus)
{
	FILE *f = fopen("/proc/loadavg", "r");
	*load = -1.0;
	if (f) {
		if (fscanf(f, "%lf", load) != 1)
			*load = -1.0;
		fclose(f);
	}
	*cpus = sysconf(_SC_NPROCESSORS_ONLN);
	return *load >= 0.0 && *cpus > 0 && *load < 0.25 * (double)*cpus;
}

static void choose_openmp_wait(char **argv)
{
	if (getenv("OMP_WAIT_POLICY") || getenv("GOMP_SPINCOUNT"))
		return;
	/* Under valgrind /proc/self/exe is valgrind's tool, which refuses to be
	 * run that way, and executing the program itself would leave valgrind:
	 * run on with libgomp's default. */
	const char *pre = getenv("LD_PRELOAD");
	if (pre && strstr(pre, "vgpreload"))
		return;
	double load;
	long cpus;
	int idle = machine_idle(&load, &cpus);
	const char *var = idle ? "GOMP_SPINCOUNT" : "OMP_WAIT_POLICY", *val = idle ? "10000" : "passive";
	if (setenv(var, val, 1))
		return;
	const char *dbg = getenv("TRAIN_DEBUG");
	if (dbg && *dbg)
		fprintf(stderr, "train: OpenMP threads wait with %s=%s (1-minute load %.2f, %ld CPUs)\n",
		        var, val, load, cpus);
	execv("/proc/self/exe", argv);
	/* not re-executed (no /proc): run on with libgomp's default */
}

/* Commands that run kernels: training, and using a model (prediction on
 * 100 messages took 10x its CPU in spinning on the loaded machine). */
static int runs_kernels(const char *cmd)
{
	static const char *const cmds[] = { "train", "nlu", "core", "graph", "predict", "test",
		                            "generate", "query", "finetune", "check", NULL };
	for (size_t i = 0; cmds[i]; i++)
		if (!strcmp(cmd, cmds[i]))
			return 1;
	return cmd[0] == '-' && strcmp(cmd, "--version") && strcmp(cmd, "-V") && strcmp(cmd, "--help") &&
	       strcmp(cmd, "-h");
}

int main(int argc, char **argv)
{
	if (argc < 2 || runs_kernels(argv[1]))
		choose_openmp_wait(argv);
	if (argc < 2)
		return cmd_train(argc, argv, "train");
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
		printf("train (libtrain) %s, plugin ABI %d.%d\n", train_version(), TRAIN_ABI_MAJOR,
		       TRAIN_ABI_MINOR);
		return 0;
	}
	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "train") || !strcmp(cmd, "nlu") || !strcmp(cmd, "core") ||
	    !strcmp(cmd, "graph"))
		return cmd_train(argc - 1, argv + 1, cmd);
	if (!strcmp(cmd, "plugins"))
		return cmd_plugins(argc - 1, argv + 1);
	if (!strcmp(cmd, "cache"))
		return cmd_cache(argc - 1, argv + 1);
	if (!strcmp(cmd, "inspect"))
		return cmd_inspect(argc - 1, argv + 1);
	if (!strcmp(cmd, "predict"))
		return cmd_predict(argc - 1, argv + 1);
	if (!strcmp(cmd, "generate"))
		return cmd_generate(argc - 1, argv + 1);
	if (!strcmp(cmd, "data"))
		return cmd_data(argc - 1, argv + 1);
	if (!strcmp(cmd, "test"))
		return cmd_test(argc - 1, argv + 1);
	if (!strcmp(cmd, "query"))
		return cmd_query(argc - 1, argv + 1);
	if (!strcmp(cmd, "hardware"))
		return cmd_hardware(argc - 1, argv + 1);
	if (!strcmp(cmd, "check"))
		return cmd_check(argc - 1, argv + 1);
	if (!strcmp(cmd, "finetune"))
		return cmd_finetune(argc - 1, argv + 1);
	if (!strcmp(cmd, "serve"))
		return cmd_serve(argc - 1, argv + 1);
	if (cmd[0] == '-')
		return cmd_train(argc, argv, "train");
	fprintf(stderr, "train: unknown command '%s'\n", cmd);
	usage(stderr);
	return EXIT_USAGE;
}
