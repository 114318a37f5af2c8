/*
 * rasa_model.h - a model opened for `train predict` and `train test`: which
 * predict inputs it takes (`text`, `conversation`) and where its parse
 * result and next action come out (Rasa's default recipe: the NLU target
 * and "PolicyEnsemble").
 */
#ifndef TRAIN_CLI_RASA_MODEL_H
#define TRAIN_CLI_RASA_MODEL_H

#include <jansson.h>

#include "cli.h"

typedef struct cli_model {
	train_registry *reg;
	train_model *m;
	char **inputs;       /* the predict schema's inputs */
	size_t n_inputs;
	char **targets;      /* its targets (output keys of single-output nodes) */
	size_t n_targets;
	int has_text, has_conv;
	const char *nlu_target;  /* the output holding the parse result, or NULL */
	const char *conv_target; /* "PolicyEnsemble", or NULL */
} cli_model;

/* Load plugins and open the model; 0 or an exit status (reported). */
int cli_model_open(const char *path, const char *plugin_path, cli_model *cm);
void cli_model_close(cli_model *cm);
/* Run the predict schema with `in`, filling the inputs it lacks with a
 * neutral value ("" text, [] conversation); `out` gets the outputs. */
int cli_model_run(cli_model *cm, train_values *in, train_values *out, train_error *err);
/* The parse result of one text (a new reference). */
int cli_model_parse(cli_model *cm, const char *text, json_t **parse, train_error *err);
/* The ensemble's decision after `events` (a new reference):
 * {"action", "confidence", "policy", ...}. */
int cli_model_next_action(cli_model *cm, json_t *events, json_t **action, train_error *err);
/* A user event from a parse result: {"event": "user", "text", "intent",
 * "entities", "confidence"} (a new reference). */
json_t *cli_user_event(const char *text, json_t *parse);

#endif
