/*
 * cmd_inspect.c - `train inspect MODEL`: print the model's metadata.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_inspect(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		if (argc == 2 && !strcmp(argv[1], "--help")) {
			printf("usage: train inspect MODEL\n");
			return 0;
		}
		fprintf(stderr, "usage: train inspect MODEL\n");
		return EXIT_USAGE;
	}
	char *json = NULL;
	train_error err = { 0 };
	int rc = train_model_inspect(argv[1], &json, &err);
	if (rc)
		return cli_report(&err);
	fputs(json, stdout);
	if (json[0] && json[strlen(json) - 1] != '\n')
		putchar('\n');
	free(json);
	return 0;
}
