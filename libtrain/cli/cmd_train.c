/*
 * cmd_train.c - `train [train|nlu|core]` and `train graph`.
 */
#include <dirent.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static volatile sig_atomic_t interrupted;
static volatile int cancel_flag;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
	cancel_flag = 1;
}

static void help(const char *sub)
{
	printf("usage: train %s [OPTIONS]\n\n"
	       "  --recipe FILE          the recipe (default: ./recipe.yml)\n"
	       "  --target NAME          the recipe NAME.yml of the installed targets\n"
	       "                         (mamba, transformer, ...; $TRAIN_RECIPE_PATH first)\n"
	       "  --config FILE          with --target: the target's settings (model:,\n"
	       "                         training:, data:); else a Rasa config.yml\n"
	       "                         (default recipe), or a recipe\n"
	       "  --set SECTION.KEY=V    with --target: set one settings key (repeatable;\n"
	       "                         V a YAML scalar) over --config's file; a\n"
	       "                         pipeline's keys are STAGE.SECTION.KEY\n"
	       "  --num-rl-steps N       --target rlhf: --set training.num_rl_steps=N\n"
	       "  --skip-sft             --target rlhf: --set training.skip_sft=true\n"
	       "  --skip-reward          --target rlhf: --set training.skip_reward=true\n"
	       "                         (full-pipeline: the same keys under rlhf.)\n"
	       "  --domain FILE          what \"$domain\" means in path keys\n"
	       "  --data DIR             what \"$data\" means in path keys\n"
	       "  --out DIR              where models go (default: models)\n"
	       "  --fixed-model-name N   name the model N.tar.gz\n"
	       "  --dry-run              say what would train; exit status = flags\n"
	       "  --force                train every node, ignore the cache\n"
	       "  --resume               continue long trainings from their checkpoints\n"
	       "  --finetune[=MODEL]     continue from MODEL (default: newest in --out)\n"
	       "  --epoch-fraction F     share of epochs when finetuning\n"
	       "  --plugin-path DIRS     colon-separated plugin folders, searched first\n"
	       "  --cache-dir DIR        the cache (default: $TRAIN_CACHE_DIR or\n"
	       "                         $XDG_CACHE_HOME/train)\n"
	       "  --threads N            nodes run at once (default: the cores)\n"
	       "  --report FILE          write a JSON report of the run\n"
	       "  --progress FILE        append a JSON Lines progress stream (nodes,\n"
	       "                         steps, loss) as the run goes\n"
	       "  --dot FILE             write the plan as Graphviz\n"
	       "  --evaluate QUERIES     then test a RAG model: recall@k and MRR (train test rag)\n"
	       "  --stages A,B           a pipeline (full-pipeline): run these stages and\n"
	       "                         what they need\n"
	       "  --skip-data-prep       a pipeline: leave out its data stage\n"
	       "  --output-dir DIR       where the models (a pipeline's too, with\n"
	       "                         manifest.json) go; the same as --out\n"
	       "  --device cpu           where to train (this build has only the CPU)\n"
	       "  -q, --quiet            only errors\n"
	       "  -v, --verbose          more detail\n",
	       sub);
}

/* The newest *.tar.gz in `dir`, malloc'd, or NULL. */
static char *newest_model(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return NULL;
	char *best = NULL;
	time_t best_t = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (e->d_name[0] == '.' || l <= 7 || strcmp(e->d_name + l - 7, ".tar.gz"))
			continue;
		size_t pl = strlen(dir) + l + 2;
		char *p = malloc(pl);
		if (!p)
			break;
		snprintf(p, pl, "%s/%s", dir, e->d_name);
		struct stat st;
		if (stat(p, &st) == 0 && (!best || st.st_mtime > best_t ||
		                          (st.st_mtime == best_t && strcmp(p, best) > 0))) {
			free(best);
			best = p;
			best_t = st.st_mtime;
		} else {
			free(p);
		}
	}
	closedir(d);
	return best;
}

static void print_plan(const train_run_result *res)
{
	for (size_t i = 0; i < res->n_nodes; i++) {
		const train_node_result *n = &res->nodes[i];
		printf("%-8s %-24s %-24s %s\n", train_node_status_name(n->status), n->name,
		       n->component, n->fingerprint);
	}
	printf("%zu to train, %zu cached, %zu pruned\n", res->n_trained, res->n_cached,
	       res->n_pruned);
}

/* --set and its sugar, in the order given (train_setting). */
typedef struct cli_sets {
	train_setting *v;
	size_t n;
} cli_sets;

/* Add `arg` = "PATH=VALUE" of a --set (value NULL), or a flag that is sugar
 * for one: PATH `arg`, `value`, and `origin`, the flag as the user wrote it
 * (only sugar has an origin: a pipeline's gets `rlhf.` in front of its
 * path once the recipe is known).  0, 1 (a usage error, said), or -1 (out
 * of memory). */
static int cli_sets_add(cli_sets *s, const char *arg, const char *value, const char *origin)
{
	train_setting *nv = realloc(s->v, (s->n + 1) * sizeof *nv);
	if (!nv)
		return -1;
	s->v = nv;
	train_setting *t = &s->v[s->n];
	if (value) { /* sugar: path and value given apart */
		t->path = strdup(arg);
		t->value = strdup(value);
		t->origin = origin ? strdup(origin) : NULL;
		s->n++; /* freed by cli_sets_free, even when a copy failed */
		return t->path && t->value && (!origin || t->origin) ? 0 : -1;
	}
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg) {
		fprintf(stderr, "train: --set %s: write --set SECTION.KEY=VALUE (e.g. --set "
		        "training.num_rl_steps=3)\n", arg);
		return 1;
	}
	t->path = strndup(arg, (size_t)(eq - arg));
	t->value = strdup(eq + 1);
	t->origin = NULL;
	s->n++;
	return t->path && t->value ? 0 : -1;
}

/* The first failure of the flags stays (1: usage, -1: out of memory). */
static void keep_bad(int *bad, int rc)
{
	if (!*bad)
		*bad = rc;
}

static void cli_sets_free(cli_sets *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free((char *)s->v[i].path);
		free((char *)s->v[i].value);
		free((char *)s->v[i].origin);
	}
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

/* A pipeline is a recipe with `stages:` (train_run_pipeline). */
static int cli_is_pipeline(const char *path)
{
	train_config *c = NULL;
	if (!path || train_config_load(path, &c, NULL))
		return 0;
	int yes = train_config_get(c, "stages") != NULL && !train_config_get(c, "train");
	train_config_destroy(c);
	return yes;
}

static int train_with_sets(int argc, char **argv, const char *sub, cli_sets *sets);

int cmd_train(int argc, char **argv, const char *sub)
{
	cli_sets sets = { 0 };
	int status = train_with_sets(argc, argv, sub, &sets);
	cli_sets_free(&sets);
	return status;
}

static int train_with_sets(int argc, char **argv, const char *sub, cli_sets *sets)
{
	enum { O_RECIPE = 256, O_CONFIG, O_DOMAIN, O_DATA, O_OUT, O_FIXED, O_DRY, O_FORCE,
	       O_FINETUNE, O_FRACTION, O_PLUGINS, O_CACHE, O_THREADS, O_REPORT, O_DOT, O_HELP, O_TARGET,
	       O_EVALUATE, O_PROGRESS, O_RESUME, O_STAGES, O_SKIP_PREP, O_OUTPUT_DIR, O_DEVICE,
	       O_SET, O_NUM_RL_STEPS, O_SKIP_SFT, O_SKIP_REWARD };
	static const struct option longopts[] = {
		{ "recipe", required_argument, NULL, O_RECIPE },
		{ "target", required_argument, NULL, O_TARGET },
		{ "config", required_argument, NULL, O_CONFIG },
		{ "domain", required_argument, NULL, O_DOMAIN },
		{ "data", required_argument, NULL, O_DATA },
		{ "out", required_argument, NULL, O_OUT },
		{ "fixed-model-name", required_argument, NULL, O_FIXED },
		{ "dry-run", no_argument, NULL, O_DRY },
		{ "force", no_argument, NULL, O_FORCE },
		{ "resume", no_argument, NULL, O_RESUME },
		{ "finetune", optional_argument, NULL, O_FINETUNE },
		{ "epoch-fraction", required_argument, NULL, O_FRACTION },
		{ "plugin-path", required_argument, NULL, O_PLUGINS },
		{ "cache-dir", required_argument, NULL, O_CACHE },
		{ "threads", required_argument, NULL, O_THREADS },
		{ "report", required_argument, NULL, O_REPORT },
		{ "progress", required_argument, NULL, O_PROGRESS },
		{ "dot", required_argument, NULL, O_DOT },
		{ "evaluate", required_argument, NULL, O_EVALUATE },
		{ "stages", required_argument, NULL, O_STAGES },
		{ "skip-data-prep", no_argument, NULL, O_SKIP_PREP },
		{ "output-dir", required_argument, NULL, O_OUTPUT_DIR },
		{ "device", required_argument, NULL, O_DEVICE },
		{ "set", required_argument, NULL, O_SET },
		{ "num-rl-steps", required_argument, NULL, O_NUM_RL_STEPS },
		{ "skip-sft", no_argument, NULL, O_SKIP_SFT },
		{ "skip-reward", no_argument, NULL, O_SKIP_REWARD },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	int graph = !strcmp(sub, "graph");
	train_run_options opt;
	train_run_options_init(&opt);
	opt.training_type = !strcmp(sub, "nlu") || !strcmp(sub, "core") ? sub : "recipe";
	const char *plugin_path = NULL;
	int finetune = 0, c;
	char *finetune_model = NULL;
	char *end;
	const char *target = NULL, *config = NULL, *recipe = NULL;
	const char *evaluate = NULL; /* --evaluate QUERIES: train test rag on the new model */
	char *target_recipe = NULL;
	train_pipeline_options popt; /* --stages, --skip-data-prep (issue 9) */
	train_pipeline_options_init(&popt);
	const char *output_dir = NULL;
	size_t n_rlhf_sets = 0; /* the sugar flags: their paths get `rlhf.` in a pipeline */
	int bad_set = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "qvV", longopts, NULL)) != -1) {
		switch (c) {
		case O_RECIPE: recipe = optarg; break;
		case O_CONFIG: config = optarg; break;
		case O_TARGET: target = optarg; break;
		case O_DOMAIN: opt.domain_path = optarg; break;
		case O_DATA: opt.data_path = optarg; break;
		case O_OUT: opt.out_dir = optarg; break;
		case O_FIXED: opt.fixed_model_name = optarg; break;
		case O_DRY: opt.dry_run = 1; break;
		case O_FORCE: opt.force = 1; break;
		case O_RESUME: opt.resume = 1; break;
		case O_FINETUNE:
			finetune = 1;
			if (optarg)
				finetune_model = strdup(optarg);
			else if (optind < argc && argv[optind][0] != '-')
				finetune_model = strdup(argv[optind++]);
			break;
		case O_FRACTION:
			opt.epoch_fraction = strtod(optarg, &end);
			if (*end || !(opt.epoch_fraction > 0 && opt.epoch_fraction <= 1000)) {
				fprintf(stderr, "train: --epoch-fraction: '%s' is not a positive number\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case O_PLUGINS: plugin_path = optarg; break;
		case O_CACHE: opt.cache_dir = optarg; break;
		case O_THREADS:
			opt.threads = (int)strtol(optarg, &end, 10);
			if (*end || opt.threads < 1 || opt.threads > 4096) {
				fprintf(stderr, "train: --threads: '%s' is not a count from 1 to 4096\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case O_REPORT: opt.report_path = optarg; break;
		case O_PROGRESS: opt.progress_path = optarg; break;
		case O_DOT: opt.dot_path = optarg; break;
		case O_EVALUATE: evaluate = optarg; break;
		case O_STAGES: popt.stages = optarg; break;
		case O_SKIP_PREP: popt.skip_data_prep = 1; break;
		case O_OUTPUT_DIR: output_dir = optarg; break;
		case O_DEVICE:
			/* The kernels are oneDNN and OpenBLAS on the CPU; no GPU
			 * backend is compiled in, so asking for one is an error
			 * rather than a silent CPU run. */
			if (strcmp(optarg, "cpu")) {
				fprintf(stderr, "train: --device %s: no GPU backend in this build (the only "
				        "device is cpu)\n", optarg);
				free(finetune_model);
				return EXIT_UNAVAILABLE;
			}
			break;
		case O_SET: keep_bad(&bad_set, cli_sets_add(sets, optarg, NULL, NULL)); break;
		case O_NUM_RL_STEPS: {
			/* checked here too, so that the message is about the flag */
			long v = strtol(optarg, &end, 10);
			char origin[96], text[32];
			if (*end || end == optarg || v < 0 || v > 100000000) {
				fprintf(stderr, "train: --num-rl-steps: '%s' is not a count of PPO steps (0 or "
				        "more)\n", optarg);
				keep_bad(&bad_set, 1);
				break;
			}
			snprintf(origin, sizeof origin, "--num-rl-steps %ld", v);
			snprintf(text, sizeof text, "%ld", v);
			keep_bad(&bad_set, cli_sets_add(sets, "training.num_rl_steps", text, origin));
			n_rlhf_sets++;
			break;
		}
		case O_SKIP_SFT:
			keep_bad(&bad_set, cli_sets_add(sets, "training.skip_sft", "true", "--skip-sft"));
			n_rlhf_sets++;
			break;
		case O_SKIP_REWARD:
			keep_bad(&bad_set, cli_sets_add(sets, "training.skip_reward", "true", "--skip-reward"));
			n_rlhf_sets++;
			break;
		case 'q': opt.verbosity = TRAIN_QUIET; break;
		case 'v': opt.verbosity = TRAIN_VERBOSE; break;
		case O_HELP: help(sub); return 0;
		case 'V':
			printf("train (libtrain) %s, plugin ABI %d.%d\n", train_version(), TRAIN_ABI_MAJOR,
			       TRAIN_ABI_MINOR);
			return 0;
		default: fprintf(stderr, "train: try 'train %s --help'\n", sub); return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "train: unexpected argument '%s'\n", argv[optind]);
		free(finetune_model);
		return EXIT_USAGE;
	}
	if (bad_set || (sets->n && !target)) {
		if (bad_set < 0)
			fprintf(stderr, "train: out of memory\n");
		else if (!bad_set)
			fprintf(stderr, "train: --%s: settings keys are a target's (give --target NAME)\n",
			        n_rlhf_sets == sets->n ? "num-rl-steps, --skip-sft and --skip-reward"
			                              : "set");
		free(finetune_model);
		return bad_set < 0 ? EXIT_SOFTWARE : EXIT_USAGE;
	}
	if (target) {
		if (recipe) {
			fprintf(stderr, "train: --target and --recipe both name a recipe; give one\n");
			free(finetune_model);
			return EXIT_USAGE;
		}
		if (!(target_recipe = cli_target_recipe(target))) {
			free(finetune_model);
			return EXIT_USAGE;
		}
		opt.recipe_path = target_recipe;
		opt.settings_path = config;
		/* --num-rl-steps & co. name the RLHF target's keys; a pipeline (the
		 * full pipeline) has them in its rlhf stage's section */
		if (n_rlhf_sets && cli_is_pipeline(target_recipe)) {
			for (size_t i = 0; i < sets->n; i++) {
				if (!sets->v[i].origin)
					continue;
				char *p = malloc(strlen(sets->v[i].path) + 6);
				if (!p) {
					fprintf(stderr, "train: out of memory\n");
					free(finetune_model);
					free(target_recipe);
					return EXIT_SOFTWARE;
				}
				sprintf(p, "rlhf.%s", sets->v[i].path);
				free((char *)sets->v[i].path);
				sets->v[i].path = p;
			}
		}
		opt.settings_set = sets->v;
		opt.n_settings_set = sets->n;
	} else {
		opt.recipe_path = recipe ? recipe : config;
	}
	/* A Rasa config.yml (cmd_rasa.c): defaults for --domain and --data. */
	int rasa = target ? 0 : cli_rasa_detect(sub, &opt);
	char *rasa_recipe = NULL;
	/* A Rasa project: import and check it before anything trains (issue 4). */
	if ((!strcmp(sub, "nlu") || !strcmp(sub, "core")) && (opt.data_path || opt.domain_path)) {
		int st = cli_rasa_precheck(sub, opt.domain_path, opt.data_path, (int)opt.verbosity);
		if (st) {
			free(finetune_model);
			free(target_recipe);
			return st;
		}
	}
	if (!opt.recipe_path) {
		if (access("recipe.yml", R_OK) != 0) {
			fprintf(stderr, "train: no recipe: give --recipe FILE (no recipe.yml here)\n");
			free(finetune_model);
			return EXIT_USAGE;
		}
		opt.recipe_path = "recipe.yml";
	}
	if (finetune && !finetune_model) {
		finetune_model = newest_model(opt.out_dir);
		if (!finetune_model) {
			fprintf(stderr, "train: --finetune: no model in %s to continue from\n", opt.out_dir);
			free(target_recipe);
			return EXIT_USAGE;
		}
	}
	opt.finetune_model = finetune_model;
	if (graph)
		opt.dry_run = 1;
	if (output_dir)
		opt.out_dir = output_dir;
	int pipeline = (popt.stages || popt.skip_data_prep) && cli_is_pipeline(opt.recipe_path);
	if ((popt.stages || popt.skip_data_prep) && !pipeline) {
		fprintf(stderr, "train: --%s: %s is not a pipeline (a recipe with stages, such as "
		        "--target full-pipeline)\n", popt.stages ? "stages" : "skip-data-prep",
		        opt.recipe_path);
		free(finetune_model);
		free(target_recipe);
		return EXIT_USAGE;
	}

	train_registry *reg = NULL;
	int status = cli_load_plugins(plugin_path, opt.verbosity, 0, &reg);
	if (!status && rasa)
		status = cli_rasa_recipe(sub, reg, &opt, &rasa_recipe);
	if (status) {
		train_registry_destroy(reg);
		free(finetune_model);
		free(target_recipe);
		return status;
	}
	struct sigaction sa = { 0 };
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	opt.cancel = &cancel_flag;

	train_run_result res;
	train_error err = { 0 };
	int rc = pipeline ? train_run_pipeline(reg, &opt, &popt, &res, &err)
	                  : train_run(reg, &opt, &res, &err);
	if (rc) {
		status = cli_report(&err);
		if (interrupted)
			status = EXIT_INTERRUPTED;
	} else if (opt.dry_run) {
		if (opt.verbosity > TRAIN_QUIET)
			print_plan(&res);
		status = graph ? 0 : res.dry_flags;
	} else {
		status = 0;
		if (evaluate && res.model_path) {
			char *targv[] = { "rag", res.model_path, "--queries", (char *)evaluate,
			                  "--plugin-path", (char *)plugin_path, NULL };
			status = cmd_test_rag(plugin_path ? 6 : 4, targv);
		}
	}
	train_run_result_free(&res);
	train_registry_destroy(reg);
	free(finetune_model);
	free(target_recipe);
	if (rasa_recipe)
		unlink(rasa_recipe);
	free(rasa_recipe);
	return status;
}
