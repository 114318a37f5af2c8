/*
 * cmd_plugins.c - `train plugins`: what was found, and what was refused.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

int cmd_plugins(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "plugin-path", required_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *plugin_path = NULL;
	int verbose = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "v", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': plugin_path = optarg; break;
		case 'v': verbose = 1; break;
		case 'h': printf("usage: train plugins [--plugin-path DIRS] [-v]\n"); return 0;
		default: return EXIT_USAGE;
		}
	}
	train_registry *reg;
	int status = cli_load_plugins(plugin_path, 0, 1, &reg);
	if (status)
		return status;
	size_t np = train_registry_plugin_count(reg), nr = train_registry_refused_count(reg);
	for (size_t i = 0; i < np; i++) {
		train_plugin_info p = train_registry_plugin_at(reg, i);
		printf("%s %s (ABI %u.%u, %s): %s\n", p.desc->name, p.desc->version, p.desc->abi_major,
		       p.desc->abi_minor, p.desc->license, p.path);
		for (size_t k = 0; p.desc->components[k]; k++) {
			const train_component_class *cls = p.desc->components[k];
			printf("  %-24s %-8s", cls->name, cls->version);
			if (verbose && cls->doc)
				printf(" %s", cls->doc);
			printf("\n");
			if (!verbose)
				continue;
			for (size_t q = 0; cls->params && cls->params[q].type != TRAIN_PARAM_END; q++)
				printf("      %s = %s%s%s\n", cls->params[q].name,
				       cls->params[q].def ? cls->params[q].def : "(required)",
				       cls->params[q].doc ? "  # " : "",
				       cls->params[q].doc ? cls->params[q].doc : "");
		}
	}
	for (size_t i = 0; i < nr; i++) {
		train_plugin_refusal f = train_registry_refused_at(reg, i);
		printf("refused %s: %s\n", f.path, f.reason);
	}
	if (!np && !nr)
		printf("no plugins found (use --plugin-path or TRAIN_PLUGIN_PATH)\n");
	train_registry_destroy(reg);
	return 0;
}
