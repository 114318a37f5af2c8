/*
 * cmd_generate.c - `train generate MODEL [OPTIONS] PROMPT...`: text from a
 * language model (issue 7).
 *
 * Any model whose predict schema takes an input named `prompt` and has
 * one target producing text: the options become the inputs of the same
 * names (`temperature`, `top_k`, `seed`, `max_new_tokens`) when the schema
 * has them; every input of the schema that is not given gets "" (the
 * component's configured value).  The target's output is printed as it
 * is, followed by a newline, once per prompt (one per line of stdin
 * without prompts).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rasa_model.h"

static const char usage_text[] =
	"usage: train generate MODEL [--plugin-path DIRS] [--temperature T] [--top-k K] [--seed S]\n"
	"                            [--max-new-tokens N] [PROMPT...]\n";

static int has_input(const cli_model *cm, const char *name)
{
	for (size_t i = 0; i < cm->n_inputs; i++)
		if (!strcmp(cm->inputs[i], name))
			return 1;
	return 0;
}

static int generate_one(cli_model *cm, const char *prompt, const char *const opt[][2], size_t nopt)
{
	train_values *in = NULL, *out = NULL;
	train_error err = { 0 };
	int status = 0, rc = train_values_create(&in);
	if (!rc)
		rc = train_values_create(&out);
	if (!rc)
		rc = train_values_put_bytes(in, "prompt", "text/plain", prompt, strlen(prompt));
	for (size_t i = 0; i < nopt && !rc; i++)
		if (opt[i][1])
			rc = train_values_put_bytes(in, opt[i][0], "text/plain", opt[i][1], strlen(opt[i][1]));
	for (size_t i = 0; i < cm->n_inputs && !rc; i++)
		if (!train_values_get(in, cm->inputs[i]))
			rc = train_values_put_bytes(in, cm->inputs[i], "text/plain", "", 0);
	if (rc)
		train_error_set(&err, rc, NULL, 0, 0, "%s", train_strerror(rc));
	else
		rc = train_model_predict(cm->m, in, out, &err);
	if (rc) {
		status = cli_report(&err);
	} else if (train_values_len(out) != 1) {
		fprintf(stderr, "train: generate: the model's predict schema has %zu outputs, not one\n",
		        train_values_len(out));
		status = EXIT_USAGE;
	} else {
		const train_value *v = train_values_at(out, 0);
		fwrite(train_value_data(v), 1, train_value_size(v), stdout);
		putchar('\n');
		fflush(stdout);
	}
	train_values_destroy(in);
	train_values_destroy(out);
	return status;
}

int cmd_generate(int argc, char **argv)
{
	enum { O_PLUGINS = 256, O_TEMP, O_TOPK, O_SEED, O_MAX, O_HELP };
	static const struct option longopts[] = {
		{ "plugin-path", required_argument, NULL, O_PLUGINS },
		{ "temperature", required_argument, NULL, O_TEMP },
		{ "top-k", required_argument, NULL, O_TOPK },
		{ "seed", required_argument, NULL, O_SEED },
		{ "max-new-tokens", required_argument, NULL, O_MAX },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char *plugin_path = NULL;
	const char *opt[4][2] = { { "temperature", NULL }, { "top_k", NULL }, { "seed", NULL },
		                  { "max_new_tokens", NULL } };
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_PLUGINS: plugin_path = optarg; break;
		case O_TEMP: opt[0][1] = optarg; break;
		case O_TOPK: opt[1][1] = optarg; break;
		case O_SEED: opt[2][1] = optarg; break;
		case O_MAX: opt[3][1] = optarg; break;
		case O_HELP: fputs(usage_text, stdout); return 0;
		default: fputs(usage_text, stderr); return EXIT_USAGE;
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
	if (!has_input(&cm, "prompt")) {
		fprintf(stderr, "train: generate: %s takes no prompt (its predict schema has no input "
		        "'prompt')\n", path);
		status = EXIT_USAGE;
		goto out;
	}
	for (size_t i = 0; i < 4; i++)
		if (opt[i][1] && !has_input(&cm, opt[i][0])) {
			fprintf(stderr, "train: generate: %s has no input '%s' for --%s\n", path, opt[i][0],
			        longopts[i + 1].name);
			status = EXIT_USAGE;
			goto out;
		}
	if (optind < argc) {
		for (int i = optind; i < argc && !status; i++)
			status = generate_one(&cm, argv[i], opt, 4);
	} else {
		char *line = NULL;
		size_t cap = 0;
		ssize_t n;
		while (!status && (n = getline(&line, &cap, stdin)) >= 0) {
			while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
				line[--n] = '\0';
			status = generate_one(&cm, line, opt, 4);
		}
		free(line);
	}
out:
	cli_model_close(&cm);
	return status;
}
