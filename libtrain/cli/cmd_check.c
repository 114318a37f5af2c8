/*
 * cmd_check.c - `train check MODEL --type TYPE [...] [--json]` (issue 10):
 * can this model be trained here, with what memory and time, and what to
 * change if not (<train/check.h>).  Exit status: 0 compatible, 1
 * compatible with changes, 2 not compatible; 64/65/69 for errors.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <train/check.h>

#include "cli.h"

static double mib(uint64_t b) { return (double)b / (1024.0 * 1024.0); }

json_t *cli_check_json(const train_check_report *r, const train_check_options *o)
{
	json_t *reasons = json_array();
	for (int i = 0; i < r->n_reasons; i++) {
		const train_check_reason *x = &r->reasons[i];
		json_array_append_new(reasons, json_pack("{s:s, s:s, s:s}", "severity",
		                                         x->severity == TRAIN_CHECK_NOT_COMPATIBLE ? "blocker"
		                                         : x->severity ? "change" : "note",
		                                         "what", x->what, "fix", x->fix));
	}
	json_t *j = json_object();
	json_object_set_new(j, "verdict", json_string(train_check_verdict_name(r->verdict)));
	json_object_set_new(j, "compatible", json_boolean(r->verdict != TRAIN_CHECK_NOT_COMPATIBLE));
	json_object_set_new(j, "model", json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i}",
	                                          "model_type", r->model_type, "source", r->source,
	                                          "component", r->component, "target", r->target,
	                                          "vocab_size", r->vocab, "hidden_size", r->hidden,
	                                          "layers", r->layers, "heads", r->heads,
	                                          "intermediate_size", r->intermediate,
	                                          "positions", r->positions, "state_size", r->state));
	json_object_set_new(j, "training", json_pack("{s:s, s:i, s:i, s:i, s:s, s:b, s:i}", "type",
	                                             train_check_type_name(o->type), "batch_size", r->batch_size,
	                                             "max_length", r->max_length, "gradient_accumulation_steps",
	                                             r->grad_accum, "precision", r->precision,
	                                             "gradient_checkpointing", r->checkpointing, "lora_r",
	                                             r->lora_r));
	json_object_set_new(j, "parameters", json_pack("{s:I, s:I, s:I, s:I}", "total", (json_int_t)r->params,
	                                               "trainable", (json_int_t)r->trainable, "from_config",
	                                               (json_int_t)r->params_config, "from_safetensors",
	                                               (json_int_t)r->params_file));
	json_object_set_new(j, "memory_bytes",
	                    json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "weights",
	                              (json_int_t)r->mem_weights, "gradients", (json_int_t)r->mem_grads,
	                              "optimizer", (json_int_t)r->mem_optimizer, "best_weights",
	                              (json_int_t)r->mem_best, "bf16_weights", (json_int_t)r->mem_bf16,
	                              "input_model_copies", (json_int_t)r->mem_workspace, "validation",
	                              (json_int_t)r->mem_eval,
	                              "activations", (json_int_t)r->mem_activations,
	                              "activations_checkpointed", (json_int_t)r->mem_activations_ckpt, "peak",
	                              (json_int_t)r->mem_peak, "available", (json_int_t)r->mem_available));
	json_object_set_new(j, "disk_bytes", json_pack("{s:I, s:I}", "needed", (json_int_t)r->disk_needed,
	                                               "free", (json_int_t)r->disk_free));
	json_object_set_new(j, "time", json_pack("{s:f, s:f, s:f, s:f, s:I, s:I, s:f, s:b}", "flops_per_token",
	                                         r->flops_per_token, "step_seconds", r->step_seconds,
	                                         "step_cpu_seconds", r->step_cpu_seconds,
	                                         "layer_seconds", r->layer_seconds, "steps_per_epoch",
	                                         (json_int_t)r->steps_per_epoch, "data_size",
	                                         (json_int_t)r->examples, "epoch_seconds", r->epoch_seconds,
	                                         "probe_cached", r->probe_cached));
	json_object_set_new(j, "reasons", reasons);
	return j;
}

static void print_text(const char *path, const train_check_report *r, const train_check_options *o)
{
	printf("model:       %s (%s %s, %s)\n", path, r->model_type,
	       !strcmp(r->source, "libtrain") ? "libtrain model" : "Hugging Face folder", r->component);
	if (!strcmp(r->model_type, "mamba"))
		printf("shape:       %d layers, d_model %d, d_inner %d, d_state %d, vocabulary %d\n", r->layers,
		       r->hidden, r->intermediate, r->state, r->vocab);
	else
		printf("shape:       %d layers, hidden %d, %d heads, intermediate %d, %d positions, vocabulary %d\n",
		       r->layers, r->hidden, r->heads, r->intermediate, r->positions, r->vocab);
	printf("training:    %s, batch %d x %d tokens%s, %s%s\n", train_check_type_name(o->type), r->batch_size,
	       r->max_length, r->grad_accum > 1 ? " (accumulated)" : "", r->precision,
	       r->checkpointing ? ", gradient checkpointing" : "");
	printf("parameters:  %llu (config: %llu, safetensors: %llu), trainable %llu\n",
	       (unsigned long long)r->params, (unsigned long long)r->params_config,
	       (unsigned long long)r->params_file, (unsigned long long)r->trainable);
	printf("memory:      weights %.1f MiB, gradients %.1f MiB, optimizer %.1f MiB, best weights %.1f MiB%s",
	       mib(r->mem_weights), mib(r->mem_grads), mib(r->mem_optimizer), mib(r->mem_best),
	       r->mem_bf16 ? "" : "\n");
	if (r->mem_bf16)
		printf(", bf16 copy %.1f MiB\n", mib(r->mem_bf16));
	if (r->mem_workspace || r->mem_eval)
		printf("             input model's copies %.1f MiB, validation %.1f MiB\n", mib(r->mem_workspace),
		       mib(r->mem_eval));
	printf("activations: %.1f MiB (with gradient checkpointing: %.1f MiB)\n", mib(r->mem_activations),
	       mib(r->mem_activations_ckpt));
	printf("peak:        %.1f MiB of %.1f MiB available\n", mib(r->mem_peak), mib(r->mem_available));
	printf("disk:        %.1f MiB needed, %.1f MiB free\n", mib(r->disk_needed), mib(r->disk_free));
	printf("compute:     %.3g FLOPs a token (forward and backward)\n", r->flops_per_token);
	if (r->step_seconds > 0)
		printf("step:        %.3f s (measured here%s: %.4f s a layer; %.3f s of CPU)\n", r->step_seconds,
		       r->probe_cached ? ", cached" : "", r->layer_seconds, r->step_cpu_seconds);
	else
		printf("step:        not measured (--no-probe and nothing cached)\n");
	if (r->steps_per_epoch > 0 && r->step_seconds > 0)
		printf("epoch:       %lld steps, about %.0f s (%.1f h)\n", (long long)r->steps_per_epoch,
		       r->epoch_seconds, r->epoch_seconds / 3600);
	printf("verdict:     %s\n", train_check_verdict_name(r->verdict));
	for (int i = 0; i < r->n_reasons; i++) {
		const train_check_reason *x = &r->reasons[i];
		printf("  - %s%s%s%s\n", x->severity == TRAIN_CHECK_NOT_COMPATIBLE ? "blocker: "
		                         : x->severity ? "change: " : "note: ",
		       x->what, x->fix[0] ? "; try " : "", x->fix);
	}
}

static int parse_int(const char *opt, const char *s, int lo, int hi, int *out)
{
	char *e;
	long v = strtol(s, &e, 10);
	if (!*s || *e || v < lo || v > hi) {
		fprintf(stderr, "train: check: %s wants an integer from %d to %d, not '%s'\n", opt, lo, hi, s);
		return EXIT_USAGE;
	}
	*out = (int)v;
	return 0;
}

int cmd_check(int argc, char **argv)
{
	enum { O_TYPE = 256, O_BATCH, O_LEN, O_PREC, O_CKPT, O_LORA, O_JSON, O_DATA, O_STEPS, O_OUT, O_CACHE,
	       O_NOPROBE, O_ACCUM, O_HELP };
	static const struct option longopts[] = {
		{ "type", required_argument, NULL, O_TYPE },
		{ "batch-size", required_argument, NULL, O_BATCH },
		{ "max-length", required_argument, NULL, O_LEN },
		{ "precision", required_argument, NULL, O_PREC },
		{ "gradient-checkpointing", no_argument, NULL, O_CKPT },
		{ "gradient-accumulation-steps", required_argument, NULL, O_ACCUM },
		{ "lora-r", required_argument, NULL, O_LORA },
		{ "json", no_argument, NULL, O_JSON },
		{ "data", required_argument, NULL, O_DATA },
		{ "steps", required_argument, NULL, O_STEPS },
		{ "output", required_argument, NULL, O_OUT },
		{ "cache-dir", required_argument, NULL, O_CACHE },
		{ "no-probe", no_argument, NULL, O_NOPROBE },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	train_check_options o = { .struct_size = sizeof o };
	int json = 0, c, rc, have_type = 0, steps = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_TYPE:
			if (train_check_type_parse(optarg, &o.type)) {
				fprintf(stderr, "train: check: --type is fine-tune, lora, continued-pretrain, task or "
				                "full, not '%s'\n", optarg);
				return EXIT_USAGE;
			}
			have_type = 1;
			break;
		case O_BATCH: if ((rc = parse_int("--batch-size", optarg, 1, 65536, &o.batch_size))) return rc; break;
		case O_LEN: if ((rc = parse_int("--max-length", optarg, 1, 1 << 20, &o.max_length))) return rc; break;
		case O_ACCUM:
			if ((rc = parse_int("--gradient-accumulation-steps", optarg, 1, 65536, &o.grad_accum)))
				return rc;
			break;
		case O_LORA: if ((rc = parse_int("--lora-r", optarg, 1, 4096, &o.lora_r))) return rc; break;
		case O_STEPS: if ((rc = parse_int("--steps", optarg, 1, 1 << 30, &steps))) return rc; break;
		case O_PREC:
			if (strcmp(optarg, "fp32") && strcmp(optarg, "bf16")) {
				fprintf(stderr, "train: check: --precision is fp32 or bf16, not '%s'\n", optarg);
				return EXIT_USAGE;
			}
			o.precision = optarg;
			break;
		case O_CKPT: o.gradient_checkpointing = 1; break;
		case O_JSON: json = 1; break;
		case O_DATA: o.data = optarg; break;
		case O_OUT: o.output_dir = optarg; break;
		case O_CACHE: o.cache_dir = optarg; break;
		case O_NOPROBE: o.no_probe = 1; break;
		case O_HELP:
			printf("usage: train check MODEL --type fine-tune|lora|continued-pretrain|task|full\n"
			       "         [--batch-size N] [--max-length N] [--gradient-accumulation-steps N]\n"
			       "         [--precision fp32|bf16] [--gradient-checkpointing] [--lora-r N]\n"
			       "         [--data FILE | --steps N] [--output DIR] [--cache-dir DIR] [--no-probe] [--json]\n\n"
			       "MODEL is a Hugging Face folder (config.json, model.safetensors) of a bert,\n"
			       "gpt2 or mamba model, or a libtrain model archive.  Prints the parameters,\n"
			       "the memory and time of training it here, and a verdict.  Exit status:\n"
			       "0 compatible, 1 compatible with changes, 2 not compatible.\n");
			return 0;
		default: fprintf(stderr, "train: try 'train check --help'\n"); return EXIT_USAGE;
		}
	}
	o.steps = steps;
	if (optind != argc - 1) {
		fprintf(stderr, "train: check: %s\n", optind >= argc ? "which model? (train check MODEL --type TYPE)"
		                                                     : "one model at a time");
		return EXIT_USAGE;
	}
	if (!have_type) {
		fprintf(stderr, "train: check: --type is required (fine-tune, lora, continued-pretrain, task, full)\n");
		return EXIT_USAGE;
	}
	const char *path = argv[optind];
	train_check_report r = { .struct_size = sizeof r };
	train_error err = { 0 };
	if ((rc = train_check_model(path, &o, &r, &err)))
		return cli_report(&err);
	if (json) {
		json_t *j = cli_check_json(&r, &o);
		json_object_set_new(j, "path", json_string(path));
		int bad = json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		putchar('\n');
		json_decref(j);
		if (bad)
			return EXIT_IOERR;
	} else
		print_text(path, &r, &o);
	return r.verdict;
}
