/*
 * import_bench.c - the library side of `make bench`'s Rasa import
 * benchmark (bench/import_bench.sh): read a Rasa project REPS times and
 * print each run's time in milliseconds, one per line, then what was read.
 *
 *   import_bench [-n REPS] PATH...      (the domain file, the data folder)
 *
 * One run is what `train data validate` and training do before anything
 * trains: every YAML file under the paths read once and sorted into NLU,
 * stories/rules and domain (train_rasa_project_load: parse, check against
 * Rasa's schema, the version check, entity annotations), the project
 * validated (train_rasa_validate, whole story histories, as `train data
 * validate` does), then each part turned into its content-fingerprinted
 * graph value.  Timed in-process around exactly that, as the PyYAML side
 * is timed around yaml.load() only.  Findings are counted and the first
 * few printed; a file that does not load fails the run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <train/rasa.h>
#include <train/rasa_validate.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* One import: 0 or a TRAIN_E* code; *out keeps the project of the last. */
static int import_once(const char *const *paths, size_t n, train_rasa_project **out,
                       train_rasa_diags *diags)
{
	train_error err = { 0 };
	train_value *v[3] = { NULL, NULL, NULL };
	int rc = train_rasa_project_load(paths, n, out, diags, &err);
	if (rc == TRAIN_OK) {
		train_rasa_validate_opts vo;
		train_rasa_validate_opts_init(&vo);
		vo.max_history = -1;
		rc = train_rasa_validate((*out)->domain, (*out)->nlu, (*out)->stories, &vo, diags, &err);
		if (rc == TRAIN_EINVAL && train_rasa_diags_count(diags, TRAIN_RASA_ERROR))
			rc = TRAIN_OK; /* error findings are a result, reported below */
	}
	if (rc == TRAIN_OK)
		rc = train_rasa_nlu_to_value((*out)->nlu, &v[0], &err);
	if (rc == TRAIN_OK)
		rc = train_rasa_stories_to_value((*out)->stories, &v[1], &err);
	if (rc == TRAIN_OK)
		rc = train_rasa_domain_to_value((*out)->domain, &v[2], &err);
	for (int i = 0; i < 3; i++)
		train_value_unref(v[i]);
	if (rc) {
		char line[1024];
		fprintf(stderr, "import_bench: %s\n", train_error_format(&err, line, sizeof line));
	}
	return rc;
}

int main(int argc, char **argv)
{
	int reps = 5, first = 1;
	if (argc > 2 && !strcmp(argv[1], "-n")) {
		reps = atoi(argv[2]);
		first = 3;
	}
	if (first >= argc || reps < 1) {
		fprintf(stderr, "usage: import_bench [-n REPS] PATH...\n");
		return 2;
	}
	const char *const *paths = (const char *const *)argv + first;
	size_t n = (size_t)(argc - first);
	train_rasa_project *p = NULL;
	train_rasa_diags *diags = NULL;
	for (int r = 0; r < reps; r++) {
		train_rasa_project_free(p);
		p = NULL;
		train_rasa_diags_destroy(diags);
		diags = NULL;
		if (train_rasa_diags_create(&diags))
			return 1;
		double t0 = now_ms();
		int rc = import_once(paths, n, &p, diags);
		double t1 = now_ms();
		if (rc) {
			train_rasa_diags_destroy(diags);
			return 1;
		}
		printf("%.3f\n", t1 - t0);
	}
	size_t nd = train_rasa_diags_len(diags);
	for (size_t i = 0; i < nd && i < 20; i++) {
		char line[1024];
		fprintf(stderr, "import_bench: %s\n",
		        train_rasa_diag_format(train_rasa_diags_at(diags, i), line, sizeof line));
	}
	if (nd > 20)
		fprintf(stderr, "import_bench: ... and %zu more\n", nd - 20);
	printf("files=%zu messages=%zu intents=%zu responses=%zu stories=%zu rules=%zu warnings=%zu ",
	       p->n_files, p->nlu->n_messages, p->domain->n_intents, p->domain->n_responses,
	       p->stories->n_stories, p->stories->n_rules,
	       train_rasa_diags_count(diags, TRAIN_RASA_WARNING));
	printf("errors=%zu training-type=%s\n", train_rasa_diags_count(diags, TRAIN_RASA_ERROR),
	       train_rasa_training_type_name(
	               train_rasa_training_type_detect(p->domain, p->nlu, p->stories)));
	train_rasa_diags_destroy(diags);
	train_rasa_project_free(p);
	return 0;
}
