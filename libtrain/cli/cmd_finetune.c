/*
 * cmd_finetune.c - `train finetune MODEL --data FILE --mode basic|advanced|
 * expert [--type TYPE] [--config settings.yml] [--recipe FILE] [--output DIR]`
 * (issue 10): the three modes of the user's current fine-tuning tool over
 * libtrain's targets.
 *
 *  basic     the tool's six keys and defaults (num_epochs 3, learning_rate
 *            2e-5, batch_size 8, max_length 512, use_mixed_precision true,
 *            gradient_checkpointing true); the batch size is fitted to the
 *            memory by train check's estimator, the precision is the
 *            hardware's (bf16 where the CPU has it natively, else fp32);
 *  advanced  also weight_decay, adam_beta1/2, lr_scheduler_type,
 *            warmup_steps, gradient_accumulation_steps, fp16/bf16 and the
 *            LoRA keys;
 *  expert    the user's own recipe (--recipe) with the settings file as its
 *            $config (any keys: the recipe's references decide).
 *
 * The model's config.json (model_type) picks the target: bert ->
 * transformer, mamba -> mamba, gpt2 -> gpt2.  Every key is checked (type,
 * range, mode, conflicts) with its file:line; the tool's keys are mapped
 * onto the target's settings (model:, training:, data:), written to
 * OUTPUT/finetune-settings.yml, and `train --target` runs in this process.
 * A key the target's component cannot honour is an error, never dropped.
 */
#include <getopt.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <train/check.h>
#include <train/config.h>
#include <train/hardware.h>

#include "cli.h"

enum { K_INT, K_FLOAT, K_BOOL, K_STRING, K_LIST };
enum { M_BASIC = 1, M_ADVANCED = 2 };

typedef struct key {
	const char *name;
	int type, mode;
	double lo, hi;            /* numbers: lo <= v <= hi (floats: lo < v when lo_open) */
	int lo_open;
	const char *def;          /* the tool's default, as YAML */
} key;

static const key keys[] = {
	{ "num_epochs", K_INT, M_BASIC, 1, 1000, 0, "3" },
	{ "learning_rate", K_FLOAT, M_BASIC, 0, 1, 1, "2e-5" },
	{ "batch_size", K_INT, M_BASIC, 1, 4096, 0, "8" },
	{ "max_length", K_INT, M_BASIC, 8, 1 << 20, 0, "512" },
	{ "use_mixed_precision", K_BOOL, M_BASIC, 0, 0, 0, "true" },
	{ "gradient_checkpointing", K_BOOL, M_BASIC, 0, 0, 0, "true" },
	{ "weight_decay", K_FLOAT, M_ADVANCED, 0, 0.999999, 0, "0.01" },
	{ "adam_beta1", K_FLOAT, M_ADVANCED, 0, 0.999999, 0, "0.9" },
	{ "adam_beta2", K_FLOAT, M_ADVANCED, 0, 0.999999, 0, "0.999" },
	{ "lr_scheduler_type", K_STRING, M_ADVANCED, 0, 0, 0, "linear" },
	{ "warmup_steps", K_INT, M_ADVANCED, 0, 1e9, 0, "0" },
	{ "gradient_accumulation_steps", K_INT, M_ADVANCED, 1, 65536, 0, "1" },
	{ "fp16", K_BOOL, M_ADVANCED, 0, 0, 0, "false" },
	{ "bf16", K_BOOL, M_ADVANCED, 0, 0, 0, "false" },
	{ "lora_r", K_INT, M_ADVANCED, 1, 4096, 0, "16" },
	{ "lora_alpha", K_FLOAT, M_ADVANCED, 0, 1e6, 1, "32" },
	{ "lora_dropout", K_FLOAT, M_ADVANCED, 0, 0.999999, 0, "0.1" },
	{ "lora_target_modules", K_LIST, M_ADVANCED, 0, 0, 0, NULL },
};
#define NKEYS (sizeof keys / sizeof keys[0])

/* The settings after checking: values, and where each came from. */
typedef struct settings {
	double num[NKEYS];
	char str[NKEYS][64];
	char list[512];           /* lora_target_modules, "[a, b]" */
	int set[NKEYS];           /* given in the file */
	char where[NKEYS][300];   /* "file:line" */
} settings;

static int find_key(const char *name)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (!strcmp(keys[i].name, name))
			return (int)i;
	return -1;
}

#define V(s, name) ((s)->num[find_key(name)])
#define SET(s, name) ((s)->set[find_key(name)])
#define WHERE(s, name) ((s)->where[find_key(name)])

static int bad(const train_config *n, const char *fmt, ...) TRAIN_PRINTF(2, 3);

static int bad(const train_config *n, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "train: %s:%u: ", train_config_file(n) ? train_config_file(n) : "?", train_config_line(n));
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_DATAERR;
}

static void defaults(settings *s)
{
	memset(s, 0, sizeof *s);
	for (size_t i = 0; i < NKEYS; i++) {
		if (!keys[i].def)
			continue;
		if (keys[i].type == K_STRING)
			snprintf(s->str[i], sizeof s->str[i], "%s", keys[i].def);
		else if (keys[i].type == K_BOOL)
			s->num[i] = !strcmp(keys[i].def, "true");
		else
			s->num[i] = strtod(keys[i].def, NULL);
	}
}

/* Read and check the settings file against the mode. */
static int read_settings(const char *path, int mode, settings *s)
{
	train_config *c = NULL;
	train_error err = { 0 };
	int rc = 0;
	if (train_config_load(path, &c, &err))
		return cli_report(&err);
	if (train_config_kind(c) == TRAIN_CFG_NULL)
		goto out;
	if (train_config_kind(c) != TRAIN_CFG_MAP) {
		rc = bad(c, "%s%s", "", "a settings file is a map of keys (num_epochs: 3, ...)");
		goto out;
	}
	for (size_t i = 0; i < train_config_len(c) && !rc; i++) {
		const char *k = train_config_key_at(c, i);
		const train_config *v = train_config_at(c, i), *kn = train_config_key_node_at(c, i);
		int j = find_key(k);
		if (j < 0) {
			rc = bad(kn, "unknown key '%s'%s", k,
			         "; basic mode takes num_epochs, learning_rate, batch_size, max_length, "
			         "use_mixed_precision, gradient_checkpointing; advanced mode also weight_decay, "
			         "adam_beta1, adam_beta2, lr_scheduler_type, warmup_steps, "
			         "gradient_accumulation_steps, fp16, bf16, lora_r, lora_alpha, lora_dropout, "
			         "lora_target_modules");
			break;
		}
		const key *K = &keys[j];
		if (K->mode == M_ADVANCED && mode == M_BASIC) {
			rc = bad(kn, "%s is an advanced setting%s", k, ": use --mode advanced, or leave it out");
			break;
		}
		snprintf(s->where[j], sizeof s->where[j], "%s:%u", train_config_file(v), train_config_line(v));
		s->set[j] = 1;
		train_cfg_kind kd = train_config_kind(v);
		char range[128];
		switch (K->type) {
		case K_BOOL:
			if (kd != TRAIN_CFG_BOOL)
				rc = bad(v, "%s must be true or false%s", k, "");
			else
				s->num[j] = train_config_as_bool(v);
			break;
		case K_INT:
		case K_FLOAT: {
			if (kd != TRAIN_CFG_INT && !(K->type == K_FLOAT && kd == TRAIN_CFG_FLOAT) &&
			    !(K->type == K_FLOAT && kd == TRAIN_CFG_STRING)) {
				rc = bad(v, "%s must be %s", k, K->type == K_INT ? "an integer" : "a number");
				break;
			}
			double x;
			if (kd == TRAIN_CFG_STRING) { /* YAML 1.1 reads 2e-5 as a string */
				char *e;
				x = strtod(train_config_as_string(v), &e);
				if (*e || e == train_config_as_string(v)) {
					rc = bad(v, "%s must be a number, not '%s'", k, train_config_as_string(v));
					break;
				}
			} else
				x = train_config_as_float(v);
			if (!isfinite(x) || x < K->lo || x > K->hi || (K->lo_open && x <= K->lo)) {
				snprintf(range, sizeof range, K->lo_open ? "in (%g, %g]" : "from %g to %g", K->lo, K->hi);
				rc = bad(v, "%s must be %s", k, range);
				break;
			}
			s->num[j] = x;
			break;
		}
		case K_STRING:
			if (kd != TRAIN_CFG_STRING) {
				rc = bad(v, "%s must be a string%s", k, "");
				break;
			}
			const char *t = train_config_as_string(v);
			if (strcmp(t, "linear") && strcmp(t, "cosine") && strcmp(t, "constant")) {
				rc = bad(v, "lr_scheduler_type must be linear, cosine or constant, not '%s'%s", t, "");
				break;
			}
			snprintf(s->str[j], sizeof s->str[j], "%s", t);
			break;
		case K_LIST: {
			if (kd != TRAIN_CFG_LIST || train_config_len(v) == 0) {
				rc = bad(v, "%s must be a list of module names%s", k, " ([c_attn], [query, value], ...)");
				break;
			}
			size_t n = 0;
			n += (size_t)snprintf(s->list + n, sizeof s->list - n, "[");
			for (size_t q = 0; q < train_config_len(v) && !rc; q++) {
				const train_config *e = train_config_at(v, q);
				const char *t2 = train_config_kind(e) == TRAIN_CFG_STRING ? train_config_as_string(e) : NULL;
				if (!t2 || !*t2 || strpbrk(t2, "\"'\\\n,[]{}:#") || n + strlen(t2) + 4 >= sizeof s->list) {
					rc = bad(e, "%s: each entry is a module name%s", k, "");
					break;
				}
				n += (size_t)snprintf(s->list + n, sizeof s->list - n, "%s%s", q ? ", " : "", t2);
			}
			snprintf(s->list + n, sizeof s->list - n, "]");
			break;
		}
		}
	}
out:
	train_config_destroy(c);
	return rc;
}

static int conflict(const char *a, const char *b, const char *why)
{
	fprintf(stderr, "train: %s%s%s: %s\n", a, b ? " and " : "", b ? b : "", why);
	return EXIT_DATAERR;
}

static int write_settings(const char *path, const char *text)
{
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (!f || fputs(text, f) < 0 || fclose(f)) {
		fprintf(stderr, "train: %s: cannot write the settings\n", path);
		return EXIT_IOERR;
	}
	if (rename(tmp, path)) {
		fprintf(stderr, "train: %s: cannot write the settings\n", path);
		return EXIT_IOERR;
	}
	return 0;
}

/* YAML's double-quoted string of a path. */
static void yq(char *out, size_t cap, const char *s)
{
	size_t n = 0;
	if (cap < 3)
		return;
	out[n++] = '"';
	for (; *s && n + 3 < cap; s++) {
		if (*s == '"' || *s == '\\')
			out[n++] = '\\';
		out[n++] = *s;
	}
	out[n++] = '"';
	out[n] = '\0';
}

static char *absolute(const char *p)
{
	char *r = realpath(p, NULL);
	return r ? r : strdup(p);
}

int cmd_finetune(int argc, char **argv)
{
	enum { O_DATA = 256, O_MODE, O_TYPE, O_CONFIG, O_OUTPUT, O_RECIPE, O_PLUGINS, O_CACHE, O_DRY, O_HELP,
	       O_PROGRESS, O_REPORT, O_RESUME, O_THREADS };
	static const struct option longopts[] = {
		{ "data", required_argument, NULL, O_DATA },
		{ "mode", required_argument, NULL, O_MODE },
		{ "type", required_argument, NULL, O_TYPE },
		{ "config", required_argument, NULL, O_CONFIG },
		{ "output", required_argument, NULL, O_OUTPUT },
		{ "recipe", required_argument, NULL, O_RECIPE },
		{ "plugin-path", required_argument, NULL, O_PLUGINS },
		{ "cache-dir", required_argument, NULL, O_CACHE },
		{ "dry-run", no_argument, NULL, O_DRY },
		{ "help", no_argument, NULL, O_HELP },
		/* handed to the run as they are (train serve's jobs use them) */
		{ "progress", required_argument, NULL, O_PROGRESS },
		{ "report", required_argument, NULL, O_REPORT },
		{ "resume", no_argument, NULL, O_RESUME },
		{ "threads", required_argument, NULL, O_THREADS },
		{ NULL, 0, NULL, 0 },
	};
	const char *data = NULL, *config = NULL, *output = "models", *recipe = NULL, *plugins = NULL,
	           *cache = NULL, *progress = NULL, *report = NULL, *threads = NULL;
	int resume = 0;
	int mode = M_BASIC, expert = 0, dry = 0, c, rc;
	train_check_type type = TRAIN_CHECK_FINE_TUNE;
	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case O_DATA: data = optarg; break;
		case O_MODE:
			if (!strcmp(optarg, "basic"))
				mode = M_BASIC;
			else if (!strcmp(optarg, "advanced"))
				mode = M_ADVANCED;
			else if (!strcmp(optarg, "expert"))
				expert = 1;
			else {
				fprintf(stderr, "train: finetune: --mode is basic, advanced or expert, not '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case O_TYPE:
			if (train_check_type_parse(optarg, &type)) {
				fprintf(stderr, "train: finetune: --type is fine-tune, lora, continued-pretrain, task or "
				                "full, not '%s'\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case O_CONFIG: config = optarg; break;
		case O_OUTPUT: output = optarg; break;
		case O_RECIPE: recipe = optarg; break;
		case O_PLUGINS: plugins = optarg; break;
		case O_CACHE: cache = optarg; break;
		case O_DRY: dry = 1; break;
		case O_PROGRESS: progress = optarg; break;
		case O_REPORT: report = optarg; break;
		case O_RESUME: resume = 1; break;
		case O_THREADS: threads = optarg; break;
		case O_HELP:
			printf("usage: train finetune MODEL --data FILE [--mode basic|advanced|expert]\n"
			       "         [--type fine-tune|lora|continued-pretrain|task|full] [--config settings.yml]\n"
			       "         [--recipe FILE] [--output DIR] [--plugin-path DIRS] [--cache-dir DIR] [--dry-run]\n"
			       "         [--progress FILE] [--report FILE] [--resume] [--threads N] (as train's)\n\n"
			       "basic: num_epochs, learning_rate, batch_size, max_length, use_mixed_precision,\n"
			       "gradient_checkpointing; advanced: also weight_decay, adam_beta1, adam_beta2,\n"
			       "lr_scheduler_type, warmup_steps, gradient_accumulation_steps, fp16, bf16, lora_r,\n"
			       "lora_alpha, lora_dropout, lora_target_modules; expert: --recipe FILE with the\n"
			       "settings file as its $config.  --dry-run writes and prints the settings only.\n");
			return 0;
		default: fprintf(stderr, "train: try 'train finetune --help'\n"); return EXIT_USAGE;
		}
	}
	if (optind != argc - 1) {
		fprintf(stderr, "train: finetune: %s\n", optind >= argc ? "which model? (train finetune MODEL --data FILE)"
		                                                        : "one model at a time");
		return EXIT_USAGE;
	}
	const char *model = argv[optind];
	if (expert != !!recipe) {
		fprintf(stderr, "train: finetune: %s\n", expert ? "--mode expert needs --recipe FILE (your recipe)"
		                                                 : "--recipe is for --mode expert");
		return EXIT_USAGE;
	}
	if (!data && !expert) {
		fprintf(stderr, "train: finetune: --data FILE is required\n");
		return EXIT_USAGE;
	}
	if (mkdir(output, 0755) && access(output, W_OK)) {
		fprintf(stderr, "train: finetune: cannot write into %s\n", output);
		return EXIT_IOERR;
	}
	char settings_path[4096], *argv2[32];
	int n2 = 0;
	if (expert) {
		/* the user's recipe as a target: its folder first on the recipe path */
		char *r1 = strdup(recipe), *r2 = strdup(recipe);
		const char *dir = dirname(r1);
		char *base = basename(r2), *dot = strrchr(base, '.');
		if (!dot || (strcmp(dot, ".yml") && strcmp(dot, ".yaml"))) {
			fprintf(stderr, "train: finetune: %s: a recipe is a .yml file\n", recipe);
			free(r1);
			free(r2);
			return EXIT_USAGE;
		}
		*dot = '\0';
		const char *old = getenv("TRAIN_RECIPE_PATH");
		char *rp = NULL;
		if (asprintf(&rp, "%s%s%s", dir, old && *old ? ":" : "", old ? old : "") < 0 ||
		    setenv("TRAIN_RECIPE_PATH", rp, 1)) {
			free(r1);
			free(r2);
			free(rp);
			return EXIT_SOFTWARE;
		}
		free(rp);
		argv2[n2++] = "train";
		argv2[n2++] = "--target";
		argv2[n2++] = strdup(base);
		free(r1);
		free(r2);
		if (config) {
			argv2[n2++] = "--config";
			argv2[n2++] = (char *)config;
		}
		snprintf(settings_path, sizeof settings_path, "%s", config ? config : "");
		goto run;
	}
	settings s;
	defaults(&s);
	if (config && (rc = read_settings(config, mode, &s)))
		return rc;
	/* the model: which target, and the shape for the batch size */
	train_check_options o = { .struct_size = sizeof o, .type = type, .no_probe = 1 };
	o.batch_size = (int)V(&s, "batch_size");
	o.max_length = (int)V(&s, "max_length");
	o.grad_accum = (int)V(&s, "gradient_accumulation_steps");
	o.cache_dir = cache;
	o.output_dir = output;
	train_check_report r = { .struct_size = sizeof r };
	train_error err = { 0 };
	if ((rc = train_check_model(model, &o, &r, &err)))
		return cli_report(&err);
	const char *mt = r.model_type;
	int gpt2 = !strcmp(mt, "gpt2"), bert = !strcmp(mt, "bert"), mamba = !strcmp(mt, "mamba");
	/* conflicts */
	if (V(&s, "fp16") && V(&s, "bf16"))
		return conflict(WHERE(&s, "fp16"), WHERE(&s, "bf16"), "fp16 and bf16 are both true: pick one");
	if (V(&s, "fp16"))
		return conflict(WHERE(&s, "fp16"), NULL,
		                "fp16 is not supported: this build trains on the CPU, which has no fp16 "
		                "matmuls; use bf16 (or use_mixed_precision)");
	if (SET(&s, "use_mixed_precision") && !V(&s, "use_mixed_precision") && V(&s, "bf16"))
		return conflict(WHERE(&s, "use_mixed_precision"), WHERE(&s, "bf16"),
		                "use_mixed_precision is false but bf16 is true");
	static const char *const lora_keys[] = { "lora_r", "lora_alpha", "lora_dropout", "lora_target_modules" };
	for (int i = 0; i < 4; i++)
		if (SET(&s, lora_keys[i]) && type != TRAIN_CHECK_LORA) {
			char what[160];
			snprintf(what, sizeof what, "%s is a LoRA setting, and this is a %s run (--type lora for LoRA)",
			         lora_keys[i], train_check_type_name(type));
			return conflict(WHERE(&s, lora_keys[i]), NULL, what);
		}
	/* what the component cannot honour */
	if (!gpt2) {
		const char *comp = r.component;
		if (type == TRAIN_CHECK_LORA && !bert && !mamba) {
			fprintf(stderr, "train: finetune: %s has no LoRA (LoRA is built for GPT-2, BERT and Mamba "
			        "models)\n", comp);
			return EXIT_UNAVAILABLE;
		}
		if (bert && type != TRAIN_CHECK_FINE_TUNE && type != TRAIN_CHECK_TASK && type != TRAIN_CHECK_LORA) {
			fprintf(stderr, "train: finetune: BERT models fine-tune with a classification head here "
			                "(--type fine-tune, task or lora); %s needs --mode expert with a recipe\n",
			        train_check_type_name(type));
			return EXIT_UNAVAILABLE;
		}
		if (mamba && type == TRAIN_CHECK_TASK) {
			fprintf(stderr, "train: finetune: MambaLM has no task head: --type fine-tune, "
			                "continued-pretrain or lora continue its language model\n");
			return EXIT_UNAVAILABLE;
		}
		if (mamba && type != TRAIN_CHECK_FULL && strcmp(r.source, "libtrain")) {
			fprintf(stderr, "train: finetune: MambaLM continues only its own models (a libtrain model "
			                "or MambaLM folder; a Hugging Face Mamba's tokenizer.json is not read): "
			                "--type full trains a Mamba of this model's shape\n");
			return EXIT_UNAVAILABLE;
		}
		const char *sched = s.str[find_key("lr_scheduler_type")];
		const char *own = bert ? "linear" : "cosine";
		if (SET(&s, "lr_scheduler_type") && strcmp(sched, own)) {
			char what[200];
			snprintf(what, sizeof what, "%s's schedule is %s (with warm-up%s), not %s", comp, own,
			         mamba ? ", down to a tenth of the rate" : "", sched);
			return conflict(WHERE(&s, "lr_scheduler_type"), NULL, what);
		}
		if ((SET(&s, "adam_beta1") && V(&s, "adam_beta1") != 0.9) ||
		    (SET(&s, "adam_beta2") && V(&s, "adam_beta2") != 0.999))
			return conflict(WHERE(&s, SET(&s, "adam_beta1") && V(&s, "adam_beta1") != 0.9 ? "adam_beta1"
			                                                                               : "adam_beta2"),
			                NULL, "this component's AdamW has betas 0.9 and 0.999; other values need GPT2LM or "
			                      "--mode expert");
	}
	if (!mamba && r.positions && V(&s, "max_length") > r.positions) {
		if (SET(&s, "max_length")) {
			char what[160];
			snprintf(what, sizeof what, "max_length %d is past the model's %d positions",
			         (int)V(&s, "max_length"), r.positions);
			return conflict(WHERE(&s, "max_length"), NULL, what);
		}
		V(&s, "max_length") = r.positions; /* the default, cut to the model */
	}
	/* basic mode chooses: precision from the hardware, the batch fitted to memory */
	int bf16 = SET(&s, "bf16") ? (int)V(&s, "bf16") : 0;
	if (!SET(&s, "bf16") && V(&s, "use_mixed_precision")) {
		train_hardware hw;
		train_hardware_detect(&hw, output);
		bf16 = hw.bf16_native;
	}
	int batch = (int)V(&s, "batch_size"), accum = (int)V(&s, "gradient_accumulation_steps");
	int ckpt = V(&s, "gradient_checkpointing") != 0;
	for (;;) {
		o.batch_size = batch;
		o.max_length = (int)V(&s, "max_length");
		o.precision = bf16 ? "bf16" : "fp32";
		o.gradient_checkpointing = ckpt;
		o.lora_r = (int)V(&s, "lora_r");
		if ((rc = train_check_model(model, &o, &r, &err)))
			return cli_report(&err);
		if (r.mem_peak <= r.mem_available || batch == 1 || (mode != M_BASIC && SET(&s, "batch_size")))
			break;
		batch = (batch + 1) / 2; /* halve, and accumulate to keep the effective batch */
		accum *= 2;
	}
	if (r.mem_available && r.mem_peak > r.mem_available) {
		fprintf(stderr, "train: finetune: needs %.0f MiB of memory at batch size %d, %.0f MiB is available\n",
		        (double)r.mem_peak / 1048576, batch, (double)r.mem_available / 1048576);
		return EXIT_UNAVAILABLE;
	}
	if (batch != (int)V(&s, "batch_size"))
		fprintf(stderr, "train: finetune: batch_size %d to fit the memory, with gradient_accumulation_steps %d\n",
		        batch, accum);
	/* the target's settings */
	char *mabs = absolute(model), *dabs = absolute(data), *oabs = absolute(output);
	char qm[8400], qd[8400], qo[8400];
	yq(qm, sizeof qm, mabs);
	yq(qd, sizeof qd, dabs);
	yq(qo, sizeof qo, oabs);
	free(mabs);
	free(dabs);
	free(oabs);
	char *text = NULL;
	const char *sched = s.str[find_key("lr_scheduler_type")];
	int sz = -1, lora = type == TRAIN_CHECK_LORA;
	char lkeys[800] = ""; /* the LoRA keys, for BERT and Mamba */
	if (lora)
		snprintf(lkeys, sizeof lkeys, "lora_r: %d, lora_alpha: %.9g, lora_dropout: %.9g%s%s",
		         (int)V(&s, "lora_r"), V(&s, "lora_alpha"), V(&s, "lora_dropout"),
		         s.list[0] ? ", lora_target_modules: " : "", s.list);
	if (bert) {
		sz = asprintf(&text,
		              "# train finetune (%s mode): %s\nmodel: {base_model: %s, max_length: %d}\n"
		              "training: {batch_size: %d, num_epochs: %d, learning_rate: %.9g, mixed_precision: %s,\n"
		              "  gradient_accumulation_steps: %d, warmup_steps: %d, weight_decay: %.9g,\n"
		              "  gradient_checkpointing: %s%s%s}\n"
		              "data: {train_file: %s}\n",
		              mode == M_BASIC ? "basic" : "advanced", model, qm, (int)V(&s, "max_length"), batch,
		              (int)V(&s, "num_epochs"), V(&s, "learning_rate"), bf16 ? "true" : "false", accum,
		              (int)V(&s, "warmup_steps"), V(&s, "weight_decay"), ckpt ? "true" : "false",
		              lora ? ",\n  training_type: lora, " : "", lkeys, qd);
	} else if (mamba && type != TRAIN_CHECK_FULL) {
		/* continue the model (model_path): its shape and tokenizer are kept */
		sz = asprintf(&text,
		              "# train finetune (%s mode): MambaLM from %s\n"
		              "model: {model_path: %s, max_length: %d}\n"
		              "training: {batch_size: %d, num_epochs: %d, learning_rate: %.9g, mixed_precision: %s,\n"
		              "  gradient_accumulation_steps: %d, warmup_steps: %d, weight_decay: %.9g,\n"
		              "  gradient_checkpointing: %s, training_type: %s%s%s}\n"
		              "data: {train_file: %s}\n",
		              mode == M_BASIC ? "basic" : "advanced", model, qm, (int)V(&s, "max_length"), batch,
		              (int)V(&s, "num_epochs"), V(&s, "learning_rate"), bf16 ? "true" : "false", accum,
		              (int)V(&s, "warmup_steps"), V(&s, "weight_decay"), ckpt ? "true" : "false",
		              lora ? "lora" : "full", lora ? ",\n  " : "", lkeys, qd);
	} else if (mamba)
		sz = asprintf(&text,
		              "# train finetune (%s mode): a Mamba of %s's shape, from scratch\n"
		              "model: {vocab_size: %d, d_model: %d, n_layers: %d, max_length: %d}\n"
		              "training: {batch_size: %d, num_epochs: %d, learning_rate: %.9g, mixed_precision: %s,\n"
		              "  gradient_accumulation_steps: %d, warmup_steps: %d, weight_decay: %.9g,\n"
		              "  gradient_checkpointing: %s}\n"
		              "data: {train_file: %s}\n",
		              mode == M_BASIC ? "basic" : "advanced", model, r.vocab, r.hidden, r.layers,
		              (int)V(&s, "max_length"), batch, (int)V(&s, "num_epochs"), V(&s, "learning_rate"),
		              bf16 ? "true" : "false", accum, (int)V(&s, "warmup_steps"), V(&s, "weight_decay"),
		              ckpt ? "true" : "false", qd);
	else
		sz = asprintf(&text,
		              "# train finetune (%s mode): recipes/gpt2.yml\n"
		              "model: {model_path: %s}\ndata: {train_file: %s}\ntraining:\n"
		              "  output: %s\n  training_type: %s\n"
		              "  num_epochs: %d\n  learning_rate: %.9g\n  batch_size: %d\n  max_length: %d\n"
		              "  weight_decay: %.9g\n  adam_beta1: %.9g\n  adam_beta2: %.9g\n"
		              "  lr_scheduler_type: %s\n  warmup_steps: %d\n  gradient_accumulation_steps: %d\n"
		              "  bf16: %s\n  fp16: false\n  gradient_checkpointing: %s\n"
		              "  lora_r: %d\n  lora_alpha: %.9g\n  lora_dropout: %.9g\n%s%s%s",
		              mode == M_BASIC ? "basic" : "advanced", qm, qd, qo,
		              lora ? "lora" : type == TRAIN_CHECK_CONTINUED ? "continued-pretrain"
		                                                                                  : "full",
		              (int)V(&s, "num_epochs"), V(&s, "learning_rate"), batch, (int)V(&s, "max_length"),
		              V(&s, "weight_decay"), V(&s, "adam_beta1"), V(&s, "adam_beta2"), sched,
		              (int)V(&s, "warmup_steps"), accum, bf16 ? "true" : "false", ckpt ? "true" : "false",
		              (int)V(&s, "lora_r"), V(&s, "lora_alpha"), V(&s, "lora_dropout"),
		              s.list[0] ? "  lora_target_modules: " : "", s.list, s.list[0] ? "\n" : "");
	if (sz < 0)
		return EXIT_SOFTWARE;
	snprintf(settings_path, sizeof settings_path, "%s/finetune-settings.yml", output);
	rc = write_settings(settings_path, text);
	if (!rc && dry)
		fputs(text, stdout);
	free(text);
	if (rc || dry)
		return rc;
	argv2[n2++] = "train";
	argv2[n2++] = "--target";
	argv2[n2++] = strdup(r.target);
	argv2[n2++] = "--config";
	argv2[n2++] = settings_path;
run:
	if (dry) {
		printf("train --target %s%s%s\n", argv2[2], settings_path[0] ? " --config " : "", settings_path);
		free(argv2[2]);
		return 0;
	}
	argv2[n2++] = "--out";
	argv2[n2++] = (char *)output;
	if (plugins) {
		argv2[n2++] = "--plugin-path";
		argv2[n2++] = (char *)plugins;
	}
	if (cache) {
		argv2[n2++] = "--cache-dir";
		argv2[n2++] = (char *)cache;
	}
	if (progress) {
		argv2[n2++] = "--progress";
		argv2[n2++] = (char *)progress;
	}
	if (report) {
		argv2[n2++] = "--report";
		argv2[n2++] = (char *)report;
	}
	if (threads) {
		argv2[n2++] = "--threads";
		argv2[n2++] = (char *)threads;
	}
	if (resume)
		argv2[n2++] = "--resume";
	argv2[n2] = NULL;
	char *target = argv2[2];
	rc = cmd_train(n2, argv2, "train");
	free(target);
	return rc;
}
