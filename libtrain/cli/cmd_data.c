/*
 * cmd_data.c - `train data validate`: read a Rasa project and check it as
 * `rasa data validate` does, one finding per line; and the same import
 * and check that `train nlu` and `train core` run before their recipe
 * (cli_rasa_precheck), with a clear word when their data is missing.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <train/rasa_validate.h>

#include "cli.h"

#define DEFAULT_DOMAIN "domain.yml"
#define DEFAULT_DATA "data"

static void help(FILE *f)
{
	fputs("usage: train data validate [--domain FILE|DIR] [--data DIR]... [--max-history N]\n"
	      "                           [--fail-on-warnings] [-q]\n\n"
	      "Check a Rasa project before training: every finding on one line as\n"
	      "FILE:LINE: error|warning: what is wrong and what to do.\n\n"
	      "  --domain PATH          the domain: a file, or a folder of domain files\n"
	      "                         (default: domain.yml; without it only the data is checked)\n"
	      "  --data PATH            NLU data, stories and rules: a file or folder; repeatable\n"
	      "                         (default: data)\n"
	      "  --max-history N        states of history that make two stories conflict\n"
	      "                         (default: 5; 0: the whole history)\n"
	      "  --fail-on-warnings     exit 65 also when there are only warnings\n"
	      "  -q, --quiet            print errors only\n"
	      "Exit status: 0 no errors, 65 errors (or warnings with --fail-on-warnings),\n"
	      "64 usage, 74 a file that cannot be read.\n",
	      f);
}

static int is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* "data/" for a folder, "data.yml" for a file: how messages name a path. */
static const char *shown(const char *path, char *buf, size_t size)
{
	size_t n = strlen(path);
	snprintf(buf, size, "%s%s", path, is_dir(path) && n && path[n - 1] != '/' ? "/" : "");
	return buf;
}

/* One finding per line: "file:line: error: text" (as far as the place is known). */
static void print_diags(FILE *f, const train_rasa_diags *d, size_t from, int quiet)
{
	for (size_t i = from; i < train_rasa_diags_len(d); i++) {
		const train_rasa_diag *g = train_rasa_diags_at(d, i);
		if (quiet && g->severity != TRAIN_RASA_ERROR)
			continue;
		const char *sev = g->severity == TRAIN_RASA_ERROR ? "error" : "warning";
		const char *file = g->file ? g->file : "";
		if (file[0] && g->line)
			fprintf(f, "%s:%u: %s: %s\n", file, g->line, sev, g->text);
		else if (file[0])
			fprintf(f, "%s: %s: %s\n", file, sev, g->text);
		else
			fprintf(f, "%s: %s\n", sev, g->text);
	}
	if (train_rasa_diags_dropped(d))
		fprintf(f, "(%zu more findings not shown)\n", train_rasa_diags_dropped(d));
}

/* A Rasa project as the CLI reads it: the domain from --domain, the data
 * from --data (a domain file among the data is not the domain, as in Rasa). */
typedef struct project {
	train_rasa_domain *domain;   /* NULL: none given or found */
	train_rasa_project *data;    /* NULL: no --data */
} project;

static void project_free(project *p)
{
	train_rasa_domain_free(p->domain);
	train_rasa_project_free(p->data);
	memset(p, 0, sizeof *p);
}

static int project_load(const char *domain, const char *const *data, size_t n_data, project *p,
                        train_rasa_diags *diags, train_error *err)
{
	int rc = TRAIN_OK;
	memset(p, 0, sizeof *p);
	if (domain)
		rc = train_rasa_domain_load(&domain, 1, &p->domain, diags, err);
	if (!rc && n_data)
		rc = train_rasa_project_load(data, n_data, &p->data, diags, err);
	if (rc)
		project_free(p);
	return rc;
}

/* A loader's failure: its diagnostics (the error among them), or the error. */
static int load_failed(FILE *f, const train_rasa_diags *d, size_t from, const train_error *err)
{
	size_t n = train_rasa_diags_len(d);
	int listed = n > from && train_rasa_diags_at(d, n - 1)->severity == TRAIN_RASA_ERROR;
	print_diags(f, d, from, 0);
	if (!listed)
		cli_report(err);
	return cli_exit_code(err->code);
}

int cmd_data(int argc, char **argv)
{
	enum { O_DOMAIN = 256, O_DATA, O_MAXH, O_FAILW, O_HELP };
	static const struct option longopts[] = {
		{ "domain", required_argument, NULL, O_DOMAIN },
		{ "data", required_argument, NULL, O_DATA },
		{ "max-history", required_argument, NULL, O_MAXH },
		{ "fail-on-warnings", no_argument, NULL, O_FAILW },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	const char *domain = NULL;
	const char **data = NULL;
	size_t n_data = 0;
	long max_history = TRAIN_RASA_DEFAULT_MAX_HISTORY;
	int fail_on_warnings = 0, quiet = 0, c, status = EXIT_USAGE;
	char *end;
	project p = { 0 };
	train_rasa_diags *diags = NULL;
	train_error err = { 0 };

	if (argc < 2 || (strcmp(argv[1], "validate") && strcmp(argv[1], "--help") &&
	                 strcmp(argv[1], "-h"))) {
		if (argc >= 2)
			fprintf(stderr, "train: data: unknown command '%s' (known: validate)\n", argv[1]);
		help(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[1], "validate")) {
		help(stdout);
		return 0;
	}
	if (!(data = calloc((size_t)argc + 1, sizeof *data)))
		return cli_exit_code(TRAIN_ENOMEM);
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "q", longopts, NULL)) != -1) {
		switch (c) {
		case O_DOMAIN: domain = optarg; break;
		case O_DATA: data[n_data++] = optarg; break;
		case O_MAXH:
			max_history = strtol(optarg, &end, 10);
			if (*end || !*optarg || max_history < 0 || max_history > 1000000) {
				fprintf(stderr, "train: --max-history: '%s' is not a count (0 for the whole "
				        "history)\n", optarg);
				goto out;
			}
			break;
		case O_FAILW: fail_on_warnings = 1; break;
		case 'q': quiet = 1; break;
		case O_HELP: help(stdout); status = 0; goto out;
		default: fprintf(stderr, "train: try 'train data validate --help'\n"); goto out;
		}
	}
	if (optind < argc - 1) {
		fprintf(stderr, "train: data validate: unexpected argument '%s'\n", argv[optind + 1]);
		goto out;
	}
	if (!domain) {
		if (exists(DEFAULT_DOMAIN))
			domain = DEFAULT_DOMAIN;
		else if (!quiet)
			fprintf(stderr, "train: warning: no domain (there is no " DEFAULT_DOMAIN
			        " here; give --domain): only the data is checked\n");
	}
	if (!n_data) {
		if (!exists(DEFAULT_DATA)) {
			fprintf(stderr, "train: data validate: there is no '" DEFAULT_DATA "' folder "
			        "here: give --data DIR\n");
			status = EXIT_DATAERR;
			goto out;
		}
		data[n_data++] = DEFAULT_DATA;
	}

	int rc = train_rasa_diags_create(&diags);
	if (!rc)
		rc = project_load(domain, data, n_data, &p, diags, &err);
	if (rc) {
		status = diags ? load_failed(stdout, diags, 0, &err) : cli_exit_code(rc);
		goto out;
	}
	train_rasa_validate_opts vo;
	train_rasa_validate_opts_init(&vo);
	vo.max_history = max_history ? (int)max_history : -1;
	rc = train_rasa_validate(p.domain, p.data->nlu, p.data->stories, &vo, diags, &err);
	print_diags(stdout, diags, 0, quiet);
	if (rc && rc != TRAIN_EINVAL) {
		status = cli_report(&err);
		goto out;
	}
	size_t n_err = train_rasa_diags_count(diags, TRAIN_RASA_ERROR);
	size_t n_warn = train_rasa_diags_count(diags, TRAIN_RASA_WARNING);
	train_rasa_training_type tt =
		train_rasa_training_type_detect(p.domain, p.data->nlu, p.data->stories);
	if (!quiet)
		printf("%zu error%s, %zu warning%s; training type: %s (%zu NLU examples, %zu stories, "
		       "%zu rules%s)\n",
		       n_err, n_err == 1 ? "" : "s", n_warn, n_warn == 1 ? "" : "s",
		       train_rasa_training_type_name(tt), p.data->nlu->n_messages,
		       p.data->stories->n_stories, p.data->stories->n_rules,
		       p.domain ? "" : ", no domain");
	status = n_err || (fail_on_warnings && n_warn) ? EXIT_DATAERR : 0;
out:
	project_free(&p);
	train_rasa_diags_destroy(diags);
	free(data);
	return status;
}

/*
 * `train nlu` / `train core` with --data or --domain: import the project,
 * say clearly when the data the command trains on is missing, and check
 * it; errors stop the run (65), warnings are printed (unless quiet) and
 * the run goes on.  Returns 0 to continue, else the exit status.
 */
int cli_rasa_precheck(const char *sub, const char *domain, const char *data, int verbosity)
{
	int core = !strcmp(sub, "core");
	int status = EXIT_DATAERR, rc;
	project p = { 0 };
	train_rasa_diags *diags = NULL;
	train_error err = { 0 };
	char shown_data[1024], shown_domain[1024];

	if (core && !domain) {
		if (!exists(DEFAULT_DOMAIN)) {
			fprintf(stderr, "train core: no domain: give --domain FILE (there is no "
			        DEFAULT_DOMAIN " here); a dialogue model needs the intents, actions and "
			        "responses it chooses from\n");
			return EXIT_DATAERR;
		}
		domain = DEFAULT_DOMAIN;
	}
	if (data && !exists(data)) {
		fprintf(stderr, "train %s: --data %s: no such file or folder\n", sub, data);
		return EXIT_DATAERR;
	}
	if ((rc = train_rasa_diags_create(&diags)))
		return cli_exit_code(rc);
	if ((rc = project_load(domain, data ? &data : NULL, data ? 1 : 0, &p, diags, &err))) {
		status = load_failed(stderr, diags, 0, &err);
		goto out;
	}
	if (data)
		shown(data, shown_data, sizeof shown_data);
	if (domain)
		shown(domain, shown_domain, sizeof shown_domain);

	const train_rasa_nlu *nlu = p.data ? p.data->nlu : NULL;
	const train_rasa_stories *stories = p.data ? p.data->stories : NULL;
	if (!core && data && !train_rasa_nlu_has_data(nlu)) {
		print_diags(stderr, diags, 0, verbosity == TRAIN_QUIET);
		fprintf(stderr, "train nlu: no NLU training data in %s (no nlu: examples%s)\n",
		        shown_data, stories && stories->n_items ? "; it has stories or rules, which "
		        "`train core` trains" : "");
		goto out;
	}
	if (core && data && !(stories && stories->n_items)) {
		print_diags(stderr, diags, 0, verbosity == TRAIN_QUIET);
		fprintf(stderr, "train core: no stories or rules in %s (no stories: or rules: items%s)\n",
		        shown_data, train_rasa_nlu_has_data(nlu) ? "; it has NLU data, which `train nlu` "
		        "trains" : "");
		goto out;
	}
	if (core && train_rasa_domain_is_empty(p.domain)) {
		print_diags(stderr, diags, 0, verbosity == TRAIN_QUIET);
		fprintf(stderr, "train core: the domain %s defines nothing; a dialogue model needs the "
		        "intents, actions and responses it chooses from\n", shown_domain);
		goto out;
	}
	if (core && train_rasa_stories_have_e2e(stories)) {
		print_diags(stderr, diags, 0, verbosity == TRAIN_QUIET);
		fprintf(stderr, "train core: the stories in %s have end-to-end turns (`user` text "
		        "without an intent, or `bot` text), which need NLU training too: use `train`\n",
		        shown_data);
		goto out;
	}

	/* As Rasa: `train nlu` reads no stories, `train core` no NLU data. */
	rc = train_rasa_validate(p.domain, core ? NULL : nlu, core ? stories : NULL, NULL, diags,
	                         &err);
	print_diags(stderr, diags, 0, verbosity == TRAIN_QUIET);
	if (rc == TRAIN_EINVAL) {
		size_t n = train_rasa_diags_count(diags, TRAIN_RASA_ERROR);
		fprintf(stderr, "train %s: %zu error%s in the Rasa project (see above); nothing "
		        "trained (`train data validate` checks a project)\n", sub, n, n == 1 ? "" : "s");
		goto out;
	}
	if (rc) {
		status = cli_report(&err);
		goto out;
	}
	if (verbosity >= TRAIN_VERBOSE)
		fprintf(stderr, "train %s: Rasa project checked: %zu NLU examples, %zu stories, %zu "
		        "rules, %zu warnings\n", sub, nlu ? nlu->n_messages : 0,
		        stories ? stories->n_stories : 0, stories ? stories->n_rules : 0,
		        train_rasa_diags_count(diags, TRAIN_RASA_WARNING));
	status = 0;
out:
	project_free(&p);
	train_rasa_diags_destroy(diags);
	return status;
}
