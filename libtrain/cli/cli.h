/*
 * cli.h - the `train` program: one file per subcommand.
 */
#ifndef TRAIN_CLI_H
#define TRAIN_CLI_H

#include <train/train.h>
#include <train/cache.h>

/* Exit statuses (train.1, EXIT STATUS).  Dry runs use 0..7 as bit flags. */
#define EXIT_USAGE 64
#define EXIT_DATAERR 65
#define EXIT_UNAVAILABLE 69
#define EXIT_SOFTWARE 70
#define EXIT_IOERR 74
#define EXIT_INTERRUPTED 130

/* Map a TRAIN_E* code to an exit status. */
int cli_exit_code(int rc);
/* Print "train: <formatted error>" to stderr; returns cli_exit_code(err->code). */
int cli_report(const train_error *err);
/* Load plugins from --plugin-path (may be NULL) plus the defaults; refusals
 * are warned about at verbosity >= 1 unless `quiet_refusals`. */
int cli_load_plugins(const char *plugin_path, int verbosity, int quiet_refusals,
                     train_registry **out);

int cmd_train(int argc, char **argv, const char *sub);
int cmd_plugins(int argc, char **argv);
int cmd_cache(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_hardware(int argc, char **argv); /* cmd_hardware.c */
#ifdef JANSSON_H
#include <train/hardware.h>
/* The hardware as `train hardware --json` prints it (a new reference). */
json_t *cli_hardware_json(const train_hardware *hw, const char *dir);
#endif
/* cmd_rag.c (issue 8): train query MODEL QUESTION; train test rag MODEL --queries FILE */
int cmd_query(int argc, char **argv);
int cmd_test_rag(int argc, char **argv);
int cmd_generate(int argc, char **argv); /* cmd_generate.c: text from a prompt */
/* `train nlu|core` with --data/--domain: import and check the Rasa project
 * first (cmd_data.c); 0 to go on, else the exit status. */
int cli_rasa_precheck(const char *sub, const char *domain, const char *data, int verbosity);
/* A Rasa config.yml as the recipe (cmd_rasa.c): detect it (--config/--recipe,
 * or ./config.yml when there is no recipe.yml) and default --domain and --data;
 * 1 when it is one.  cli_rasa_recipe expands it into a temporary recipe file
 * (*tmp_path, to unlink and free) that opt->recipe_path then names; 0 or an
 * exit status. */
int cli_rasa_detect(const char *sub, train_run_options *opt);
int cli_rasa_recipe(const char *sub, const train_registry *reg, train_run_options *opt,
                    char **tmp_path);

/* `--target NAME` (cli_target.c): the path of NAME.yml, malloc'd, or NULL
 * after saying on stderr where it looked and which targets exist. */
char *cli_target_recipe(const char *name);
/* Call fn for every NAME.yml in the target folders, in search order (a name
 * may come twice: the first one is the one --target runs); the count. */
int cli_target_each(void (*fn)(void *ud, const char *name, const char *path), void *ud);

/* `train check` (cmd_check.c, issue 10) and `train finetune` (cmd_finetune.c). */
int cmd_check(int argc, char **argv);
int cmd_finetune(int argc, char **argv);
#if defined(JANSSON_H) && defined(TRAIN_CHECK_H)
/* The report as `train check --json` prints it (a new reference). */
json_t *cli_check_json(const train_check_report *r, const train_check_options *o);
#endif

/* `train serve` (cmd_serve.c, libtrain/serve/). */
int cmd_serve(int argc, char **argv);

#endif
