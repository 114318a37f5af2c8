/*
 * rasa_model.c - a model as `train predict` and `train test` use it
 * (rasa_model.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rasa_model.h"

static char **str_array(json_t *a, size_t *n)
{
	*n = 0;
	size_t len = json_is_array(a) ? json_array_size(a) : 0;
	char **v = calloc(len + 1, sizeof *v);
	if (!v)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		const char *s = json_string_value(json_array_get(a, i));
		if (s && (v[*n] = strdup(s)))
			(*n)++;
	}
	return v;
}

int cli_model_open(const char *path, const char *plugin_path, cli_model *cm)
{
	memset(cm, 0, sizeof *cm);
	train_error err = { 0 };
	int status = cli_load_plugins(plugin_path, 0, 1, &cm->reg);
	if (status)
		return status;
	if (train_model_open(path, cm->reg, &cm->m, &err))
		return cli_report(&err);
	json_t *meta = json_loads(train_model_metadata(cm->m), 0, NULL);
	json_t *pred = json_object_get(meta, "predict");
	cm->inputs = str_array(json_object_get(pred, "inputs"), &cm->n_inputs);
	cm->targets = str_array(json_object_get(pred, "targets"), &cm->n_targets);
	json_decref(meta);
	if (!cm->inputs || !cm->targets) {
		fprintf(stderr, "train: out of memory\n");
		return EXIT_SOFTWARE;
	}
	for (size_t i = 0; i < cm->n_inputs; i++) {
		cm->has_text |= !strcmp(cm->inputs[i], "text");
		cm->has_conv |= !strcmp(cm->inputs[i], "conversation");
	}
	for (size_t i = 0; i < cm->n_targets; i++) {
		if (!strcmp(cm->targets[i], "PolicyEnsemble"))
			cm->conv_target = cm->targets[i];
		else if (!cm->nlu_target)
			cm->nlu_target = cm->targets[i];
	}
	if (!cm->has_text)
		cm->nlu_target = NULL;
	if (!cm->has_conv)
		cm->conv_target = NULL;
	return 0;
}

void cli_model_close(cli_model *cm)
{
	train_model_close(cm->m);
	train_registry_destroy(cm->reg);
	for (size_t i = 0; cm->inputs && i < cm->n_inputs; i++)
		free(cm->inputs[i]);
	for (size_t i = 0; cm->targets && i < cm->n_targets; i++)
		free(cm->targets[i]);
	free(cm->inputs);
	free(cm->targets);
	memset(cm, 0, sizeof *cm);
}

int cli_model_run(cli_model *cm, train_values *in, train_values *out, train_error *err)
{
	int rc = 0;
	if (cm->has_text && !train_values_get(in, "text"))
		rc = train_values_put_bytes(in, "text", "text/plain", "", 0);
	if (!rc && cm->has_conv && !train_values_get(in, "conversation"))
		rc = train_values_put_bytes(in, "conversation", "application/json", "[]", 2);
	if (rc)
		return train_error_set(err, rc, NULL, 0, 0, "%s", train_strerror(rc));
	return train_model_predict(cm->m, in, out, err);
}

/* Run with one input and decode the output `key` as JSON. */
static int run_json(cli_model *cm, const char *name, const char *type, const char *data,
                    const char *key, json_t **res, train_error *err)
{
	train_values *in = NULL, *out = NULL;
	*res = NULL;
	int rc = train_values_create(&in);
	if (!rc)
		rc = train_values_create(&out);
	if (!rc)
		rc = train_values_put_bytes(in, name, type, data, strlen(data));
	if (rc) {
		train_error_set(err, rc, NULL, 0, 0, "%s", train_strerror(rc));
	} else if (!(rc = cli_model_run(cm, in, out, err))) {
		const train_value *v = train_values_get(out, key);
		json_error_t je;
		*res = v ? json_loadb(train_value_data(v), train_value_size(v), 0, &je) : NULL;
		if (!*res)
			rc = train_error_set(err, TRAIN_ECOMPONENT, NULL, 0, 0,
			                     "the model's output '%s' is not JSON", key);
	}
	train_values_destroy(in);
	train_values_destroy(out);
	return rc;
}

int cli_model_parse(cli_model *cm, const char *text, json_t **parse, train_error *err)
{
	if (!cm->nlu_target)
		return train_error_set(err, TRAIN_EUNSUPPORTED, NULL, 0, 0,
		                       "the model has no NLU part (it takes no text)");
	return run_json(cm, "text", "text/plain", text, cm->nlu_target, parse, err);
}

int cli_model_next_action(cli_model *cm, json_t *events, json_t **action, train_error *err)
{
	if (!cm->conv_target)
		return train_error_set(err, TRAIN_EUNSUPPORTED, NULL, 0, 0,
		                       "the model has no dialogue part (no policies)");
	char *s = json_dumps(events, JSON_COMPACT);
	if (!s)
		return train_error_set(err, TRAIN_ENOMEM, NULL, 0, 0, "out of memory");
	int rc = run_json(cm, "conversation", "application/json", s, cm->conv_target, action, err);
	free(s);
	return rc;
}

json_t *cli_user_event(const char *text, json_t *parse)
{
	json_t *ev = json_object();
	json_t *intent = json_object_get(parse, "intent");
	json_object_set_new(ev, "event", json_string("user"));
	if (text)
		json_object_set_new(ev, "text", json_string(text));
	json_t *name = json_object_get(intent, "name");
	if (json_is_string(name)) {
		json_object_set(ev, "intent", name);
		json_object_set(ev, "confidence", json_object_get(intent, "confidence"));
	}
	json_t *ents = json_object_get(parse, "entities"), *out = json_array();
	size_t i;
	json_t *e;
	json_array_foreach(ents, i, e) {
		json_t *o = json_object();
		json_object_set(o, "entity", json_object_get(e, "entity"));
		json_object_set(o, "value", json_object_get(e, "value"));
		if (json_object_get(e, "role"))
			json_object_set(o, "role", json_object_get(e, "role"));
		if (json_object_get(e, "group"))
			json_object_set(o, "group", json_object_get(e, "group"));
		json_array_append_new(out, o);
	}
	json_object_set_new(ev, "entities", out);
	return ev;
}
