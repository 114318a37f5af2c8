/*
 * cmd_hardware.c - `train hardware [--dir DIR] [--json]`: what this machine
 * offers for training (see <train/hardware.h>).
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include <train/hardware.h>

#include "cli.h"

static double gib(uint64_t b) { return (double)b / (1024.0 * 1024.0 * 1024.0); }

static void print_text(const train_hardware *hw, const char *dir)
{
	char isa[512];
	train_hardware_isa_names(hw->isa, isa, sizeof isa);
	printf("cpu:        %s (%s), %d socket%s, %d core%s, %d thread%s usable\n",
	       hw->cpu_model[0] ? hw->cpu_model : "unknown", hw->cpu_vendor[0] ? hw->cpu_vendor : "?",
	       hw->sockets, hw->sockets == 1 ? "" : "s", hw->cores, hw->cores == 1 ? "" : "s",
	       hw->threads, hw->threads == 1 ? "" : "s");
	printf("isa:        %s\n", isa[0] ? isa : "(none detected)");
	printf("memory:     %.1f GiB total, %.1f GiB available\n", gib(hw->mem_total),
	       gib(hw->mem_available));
	printf("disk:       %.1f GiB free in %s\n", gib(hw->disk_free), dir);
	if (!hw->n_gpus)
		printf("gpus:       none seen\n");
	for (int i = 0; i < hw->n_gpus; i++)
		printf("gpu:        %s: seen, not usable (this build trains on the CPU)\n", hw->gpus[i]);
	printf("bf16:       %s\n", hw->bf16_native
	                               ? (hw->isa & TRAIN_ISA_AMX_BF16 ? "native (AMX)" : "native (AVX512-BF16)")
	                               : "not native (emulated: slower than fp32)");
	printf("mixed precision: %s; recommended precision: %s\n",
	       hw->bf16_native ? "supported (bf16)" : "not supported", hw->precision);
}

json_t *cli_hardware_json(const train_hardware *hw, const char *dir)
{
	char isa[512];
	train_hardware_isa_names(hw->isa, isa, sizeof isa);
	json_t *o = json_object(), *flags = json_array(), *g = json_array();
	char *save = NULL;
	for (char *t = strtok_r(isa, " ", &save); t; t = strtok_r(NULL, " ", &save))
		json_array_append_new(flags, json_string(t));
	for (int i = 0; i < hw->n_gpus; i++)
		json_array_append_new(g, json_pack("{s:s, s:b}", "name", hw->gpus[i], "usable", 0));
	json_object_set_new(o, "cpu", json_pack("{s:s, s:s, s:i, s:i, s:i}", "model", hw->cpu_model,
	                                        "vendor", hw->cpu_vendor, "sockets", hw->sockets,
	                                        "cores", hw->cores, "threads", hw->threads));
	json_object_set_new(o, "isa", flags);
	json_object_set_new(o, "memory", json_pack("{s:I, s:I}", "total_bytes", (json_int_t)hw->mem_total,
	                                           "available_bytes", (json_int_t)hw->mem_available));
	json_object_set_new(o, "disk", json_pack("{s:s, s:I}", "dir", dir, "free_bytes",
	                                         (json_int_t)hw->disk_free));
	json_object_set_new(o, "gpus", g);
	json_object_set_new(o, "bf16_native", json_boolean(hw->bf16_native));
	json_object_set_new(o, "mixed_precision", json_boolean(hw->bf16_native));
	json_object_set_new(o, "recommended_precision", json_string(hw->precision));
	return o;
}

static int print_json(const train_hardware *hw, const char *dir)
{
	json_t *o = cli_hardware_json(hw, dir);
	int rc = json_dumpf(o, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	putchar('\n');
	return rc ? EXIT_IOERR : 0;
}

int cmd_hardware(int argc, char **argv)
{
	enum { O_DIR = 256, O_JSON, O_HELP };
	static const struct option longopts[] = {
		{ "dir", required_argument, NULL, O_DIR },
		{ "json", no_argument, NULL, O_JSON },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = ".";
	int json = 0, c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_DIR: dir = optarg; break;
		case O_JSON: json = 1; break;
		case O_HELP:
			printf("usage: train hardware [--dir DIR] [--json]\n\n"
			       "  --dir DIR   the folder whose free space counts (default: .)\n"
			       "  --json      print JSON instead of text\n");
			return 0;
		default: fprintf(stderr, "train: try 'train hardware --help'\n"); return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "train: hardware: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	train_hardware hw;
	train_hardware_detect(&hw, dir);
	if (json)
		return print_json(&hw, dir);
	print_text(&hw, dir);
	return 0;
}
