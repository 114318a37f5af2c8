/*
 * cmd_rasa.c - `train [nlu|core]` on a Rasa project: a config.yml with a
 * `pipeline` or `policies` becomes a recipe through Rasa's default recipe
 * (<train/rasa_recipe.h>), with --domain (default domain.yml) and --data
 * (default data/) as a Rasa user expects.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <train/rasa_recipe.h>

#include "cli.h"

int cli_rasa_detect(const char *sub, train_run_options *opt)
{
	const char *cfg = opt->recipe_path;
	if (!cfg) {
		/* `train` in a Rasa project folder: no recipe.yml, a config.yml */
		if (access("recipe.yml", R_OK) == 0 || access("config.yml", R_OK) != 0)
			return 0;
		cfg = "config.yml";
	}
	if (train_rasa_config_detect(cfg) != 1)
		return 0;
	opt->recipe_path = cfg;
	if (!opt->domain_path && strcmp(sub, "nlu") && access("domain.yml", R_OK) == 0)
		opt->domain_path = "domain.yml";
	if (!opt->data_path && access("data", R_OK) == 0)
		opt->data_path = "data";
	return 1;
}

int cli_rasa_recipe(const char *sub, const train_registry *reg, train_run_options *opt,
                    char **tmp_path)
{
	train_rasa_part part = !strcmp(sub, "nlu") ? TRAIN_RASA_PART_NLU :
	                       !strcmp(sub, "core") ? TRAIN_RASA_PART_CORE : TRAIN_RASA_PART_ALL;
	char *yaml = NULL;
	train_error err = { 0 };
	*tmp_path = NULL;
	int rc = train_rasa_recipe_from_config(opt->recipe_path, part, reg, &yaml, &err);
	if (rc)
		return cli_report(&err);
	if (!opt->data_path && part != TRAIN_RASA_PART_CORE) {
		fprintf(stderr, "train: %s is a Rasa config: give --data DIR with the training data "
		        "(there is no data/ here)\n", opt->recipe_path);
		free(yaml);
		return EXIT_USAGE;
	}
	if (!opt->domain_path && part != TRAIN_RASA_PART_NLU) {
		fprintf(stderr, "train: %s is a Rasa config: give --domain FILE for its policies "
		        "(there is no domain.yml here), or train only the NLU pipeline with `train nlu`\n",
		        opt->recipe_path);
		free(yaml);
		return EXIT_USAGE;
	}
	const char *tmp = getenv("TMPDIR");
	char *path = malloc(strlen(tmp && *tmp ? tmp : "/tmp") + 32);
	if (!path) {
		free(yaml);
		return EXIT_SOFTWARE;
	}
	sprintf(path, "%s/train-rasa-XXXXXX.yml", tmp && *tmp ? tmp : "/tmp");
	int fd = mkstemps(path, 4);
	size_t n = strlen(yaml);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	int ok = f && fwrite(yaml, 1, n, f) == n;
	if (f && fclose(f))
		ok = 0;
	else if (!f && fd >= 0)
		close(fd);
	if (!ok) {
		fprintf(stderr, "train: cannot write the recipe of %s to %s: %s\n", opt->recipe_path, path,
		        strerror(errno));
		if (fd >= 0)
			unlink(path);
		free(path);
		free(yaml);
		return EXIT_IOERR;
	}
	if (opt->verbosity >= TRAIN_VERBOSE)
		fprintf(stderr, "train: the recipe of %s (Rasa's %s recipe):\n%s", opt->recipe_path,
		        strstr(yaml, "(recipe: graph.v1)") ? "graph" : "default", yaml);
	free(yaml);
	opt->recipe_path = path;
	*tmp_path = path;
	return 0;
}
