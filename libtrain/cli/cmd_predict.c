/*
 * cmd_predict.c - `train predict MODEL NAME=VALUE...`: run the model's
 * predict schema on text inputs and print each output.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_predict(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "plugin-path", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *plugin_path = NULL;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': plugin_path = optarg; break;
		case 'h': printf("usage: train predict MODEL [--plugin-path DIRS] NAME=VALUE...\n"); return 0;
		default: return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: train predict MODEL [--plugin-path DIRS] NAME=VALUE...\n");
		return EXIT_USAGE;
	}
	const char *path = argv[optind++];
	train_values *in = NULL, *out = NULL;
	train_registry *reg = NULL;
	train_model *m = NULL;
	train_error err = { 0 };
	int status = 0, rc = train_values_create(&in);
	if (!rc)
		rc = train_values_create(&out);
	for (int i = optind; i < argc && !rc; i++) {
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
	if (rc) {
		train_error_set(&err, rc, NULL, 0, 0, "%s", train_strerror(rc));
		status = cli_report(&err);
		goto out;
	}
	if ((status = cli_load_plugins(plugin_path, 0, 1, &reg)))
		goto out;
	if ((rc = train_model_open(path, reg, &m, &err)) || (rc = train_model_predict(m, in, out, &err))) {
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
	train_model_close(m);
	train_registry_destroy(reg);
	train_values_destroy(in);
	train_values_destroy(out);
	return status;
}
