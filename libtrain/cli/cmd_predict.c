/*
 * cmd_predict.c - `train predict MODEL ...`:
 *
 *   train predict MODEL NAME=VALUE...      the predict schema's outputs, "name: value"
 *   train predict MODEL "text"...          one parse result per text, as JSON (a
 *                                          model with a `text` input); without
 *                                          texts, one per line of stdin
 *   train predict MODEL --conversation F   the next actions after each turn of a
 *                                          conversation (a model with policies)
 *
 * A conversation file is a JSON list of events (plugins/policy/policy.c: "user"
 * with "intent" or only "text", which the model's NLU part then reads;
 * "action", "slot", ...), or plain text, one user message a line.  For each
 * user turn it prints {"turn", "text", "intent", "entities", "actions"}: the
 * actions the bot takes until it listens again (at most 10), as Rasa does.
 * Recorded actions in a JSON file continue the conversation as written (the
 * turn lists them as "expected"); otherwise the predicted ones do.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rasa_model.h"

#define MAX_ACTIONS 10

static const char usage_text[] =
	"usage: train predict MODEL [--plugin-path DIRS] [NAME=VALUE... | TEXT...]\n"
	"       train predict MODEL [--plugin-path DIRS] --conversation FILE\n";

/* NAME=VALUE where NAME is one of the model's inputs. */
static int is_assignment(const cli_model *cm, const char *arg)
{
	const char *eq = strchr(arg, '=');
	if (!eq || eq == arg)
		return 0;
	for (size_t i = 0; i < cm->n_inputs; i++)
		if (strlen(cm->inputs[i]) == (size_t)(eq - arg) && !strncmp(cm->inputs[i], arg, (size_t)(eq - arg)))
			return 1;
	return 0;
}

static int predict_assignments(cli_model *cm, int argc, char **argv)
{
	train_values *in = NULL, *out = NULL;
	train_error err = { 0 };
	int status = 0, rc = train_values_create(&in);
	if (!rc)
		rc = train_values_create(&out);
	for (int i = 0; i < argc && !rc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq || eq == argv[i]) {
			fprintf(stderr, "train: predict: '%s' is not NAME=VALUE\n", argv[i]);
			status = EXIT_USAGE;
			goto out;
		}
		*eq = '\0';
		rc = train_values_put_bytes(in, argv[i], "text/plain", eq + 1, strlen(eq + 1));
		*eq = '=';
	}
	if (rc)
		train_error_set(&err, rc, NULL, 0, 0, "%s", train_strerror(rc));
	else
		rc = cli_model_run(cm, in, out, &err);
	if (rc) {
		status = cli_report(&err);
		goto out;
	}
	for (size_t i = 0; i < train_values_len(out); i++) {
		const train_value *v = train_values_at(out, i);
		printf("%s: ", train_values_name_at(out, i));
		fwrite(train_value_data(v), 1, train_value_size(v), stdout);
		putchar('\n');
	}
out:
	train_values_destroy(in);
	train_values_destroy(out);
	return status;
}

static int predict_text(cli_model *cm, const char *text)
{
	json_t *parse = NULL;
	train_error err = { 0 };
	if (cli_model_parse(cm, text, &parse, &err))
		return cli_report(&err);
	char *s = json_dumps(parse, JSON_COMPACT | JSON_REAL_PRECISION(9));
	json_decref(parse);
	if (!s)
		return EXIT_SOFTWARE;
	puts(s);
	free(s);
	fflush(stdout);
	return 0;
}

/* The events of a conversation file: a JSON list, or one user text a line. */
static json_t *read_conversation(const char *path)
{
	json_error_t je;
	FILE *f = fopen(path, "r");
	if (!f) {
		perror(path);
		return NULL;
	}
	json_t *ev = json_loadf(f, 0, &je);
	if (ev && !json_is_array(ev)) {
		fprintf(stderr, "train: %s: a conversation is a JSON list of events\n", path);
		json_decref(ev);
		fclose(f);
		return NULL;
	}
	if (!ev) {
		int c = 0;
		rewind(f);
		while ((c = fgetc(f)) == ' ' || c == '\t' || c == '\n' || c == '\r')
			;
		if (c == '[' || c == '{') {
			fprintf(stderr, "train: %s:%d:%d: %s\n", path, je.line, je.column, je.text);
			fclose(f);
			return NULL;
		}
		rewind(f);
		ev = json_array();
		char *line = NULL;
		size_t cap = 0;
		ssize_t n;
		while ((n = getline(&line, &cap, f)) >= 0) {
			while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
				line[--n] = '\0';
			if (n == 0 || line[0] == '#')
				continue;
			json_array_append_new(ev, json_pack("{s:s, s:s}", "event", "user", "text", line));
		}
		free(line);
	}
	fclose(f);
	return ev;
}

static int is_event(json_t *e, const char *kind)
{
	const char *k = json_string_value(json_object_get(e, "event"));
	return k && !strcmp(k, kind);
}

static int predict_conversation(cli_model *cm, const char *path)
{
	json_t *events = read_conversation(path);
	if (!events)
		return EXIT_DATAERR;
	if (!cm->conv_target) {
		fprintf(stderr, "train: predict --conversation: the model has no policies (train it "
		        "with `train` or `train core`)\n");
		json_decref(events);
		return EXIT_USAGE;
	}
	train_error err = { 0 };
	int status = 0, turn = 0;
	json_t *hist = json_array();
	size_t n = json_array_size(events);
	for (size_t i = 0; i < n && !status; i++) {
		json_t *e = json_array_get(events, i);
		if (!is_event(e, "user")) {
			json_array_append(hist, e);
			continue;
		}
		json_t *ev = json_deep_copy(e);
		const char *text = json_string_value(json_object_get(e, "text"));
		if (!json_object_get(e, "intent")) {
			json_t *parse = NULL;
			if (!text || !cm->nlu_target) {
				fprintf(stderr, "train: %s: event %zu: a user event needs \"intent\"%s\n", path,
				        i + 1, cm->nlu_target ? " or \"text\"" : " (the model has no NLU part)");
				json_decref(ev);
				status = EXIT_DATAERR;
				break;
			}
			if (cli_model_parse(cm, text, &parse, &err)) {
				json_decref(ev);
				status = cli_report(&err);
				break;
			}
			json_decref(ev);
			ev = cli_user_event(text, parse);
			json_decref(parse);
		}
		json_array_append(hist, ev); /* ev stays ours until the turn is printed */
		/* the recorded actions after this turn, if any */
		size_t j = i + 1;
		json_t *expected = json_array();
		while (j < n && !is_event(json_array_get(events, j), "user")) {
			json_t *x = json_array_get(events, j++);
			if (is_event(x, "action") && json_object_get(x, "name"))
				json_array_append(expected, json_object_get(x, "name"));
		}
		json_t *actions = json_array(), *h = json_deep_copy(hist);
		for (int k = 0; k < MAX_ACTIONS; k++) {
			json_t *a = NULL;
			if (cli_model_next_action(cm, h, &a, &err)) {
				status = cli_report(&err);
				break;
			}
			json_t *name = json_object_get(a, "action");
			json_array_append_new(actions, json_pack("{s:O, s:O, s:O}", "action", name,
			                                         "confidence", json_object_get(a, "confidence"),
			                                         "policy", json_object_get(a, "policy")));
			int listen = !json_is_string(name) || !strcmp(json_string_value(name), "action_listen");
			if (!listen)
				json_array_append_new(h, json_pack("{s:s, s:O}", "event", "action", "name", name));
			/* Rasa's default fallback reverts the user's turn and listens */
			listen |= json_is_string(name) && !strcmp(json_string_value(name), "action_default_fallback");
			json_decref(a);
			if (listen)
				break;
		}
		/* without recorded actions, the bot's own ones continue the conversation */
		if (!json_array_size(expected) && !status) {
			json_decref(hist);
			hist = h;
		} else {
			json_decref(h);
		}
		json_t *out = json_pack("{s:i}", "turn", ++turn);
		if (text)
			json_object_set_new(out, "text", json_string(text));
		json_object_set(out, "intent", json_object_get(ev, "intent"));
		if (json_object_get(ev, "entities"))
			json_object_set(out, "entities", json_object_get(ev, "entities"));
		else
			json_object_set_new(out, "entities", json_array());
		json_object_set_new(out, "actions", actions);
		if (json_array_size(expected))
			json_object_set(out, "expected", expected);
		json_decref(expected);
		json_decref(ev);
		char *s = json_dumps(out, JSON_COMPACT | JSON_REAL_PRECISION(9));
		json_decref(out);
		if (s) {
			puts(s);
			free(s);
		}
	}
	json_decref(hist);
	json_decref(events);
	return status;
}

int cmd_predict(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "plugin-path", required_argument, NULL, 'p' },
		{ "conversation", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *plugin_path = NULL, *conversation = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': plugin_path = optarg; break;
		case 'c': conversation = optarg; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	const char *path = argv[optind++];
	cli_model cm;
	int status = cli_model_open(path, plugin_path, &cm);
	if (status)
		goto out;
	if (conversation) {
		if (optind < argc) {
			fprintf(stderr, "train: predict --conversation: unexpected argument '%s'\n", argv[optind]);
			status = EXIT_USAGE;
		} else {
			status = predict_conversation(&cm, conversation);
		}
		goto out;
	}
	int assign = optind < argc && is_assignment(&cm, argv[optind]);
	if (assign || (!cm.nlu_target && optind < argc)) {
		status = predict_assignments(&cm, argc - optind, argv + optind);
		goto out;
	}
	if (!cm.nlu_target) {
		fprintf(stderr, "train: predict: the model takes no text: give NAME=VALUE for its "
		        "inputs%s\n", cm.has_conv ? ", or --conversation FILE" : "");
		status = EXIT_USAGE;
		goto out;
	}
	if (optind < argc) {
		for (int i = optind; i < argc && !status; i++)
			status = predict_text(&cm, argv[i]);
	} else {
		char *line = NULL;
		size_t cap = 0;
		ssize_t n;
		while (!status && (n = getline(&line, &cap, stdin)) >= 0) {
			while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
				line[--n] = '\0';
			status = predict_text(&cm, line);
		}
		free(line);
	}
out:
	cli_model_close(&cm);
	return status;
}
