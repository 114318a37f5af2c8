/*
 * tests/test_rasa_validate.c - checking Rasa projects (issue 4).
 *
 * test_rasa_validate: every check fires on a small crafted project under
 * tests/data/rasa/validate/<case>/, whose `expect` file lists every
 * finding exactly ("error|warning FILE:LINE TEXT-PART"; "max-history N"
 * and "type NAME" lines set the option and the expected training type),
 * and nothing fires on `clean/`; plus what the state of a story conflict
 * is made of (slots, entities, listens), the error summary, and the
 * option and bound errors.
 *
 * test_rasa_validate_examples (this file built with -DEXAMPLES): the
 * example bots of the shared data validate without errors, as Rasa's
 * validator passes them.  The data comes from $TRAIN_SHARED_DATA, else
 * $top_srcdir/../shared/data; without it that program exits 77.
 */
#include "testlib.h"

#include <train/rasa_validate.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0;
}

/* Load and validate a project folder: domain.yml (if any) and data/, read
 * from inside the folder so that places are "data/nlu.yml:3", as the
 * command line shows them. */
typedef struct run {
	train_rasa_domain *domain;
	train_rasa_project *data;
	train_rasa_diags *diags;
	train_error err;
	int rc;                 /* of train_rasa_validate */
	train_rasa_training_type type;
} run;

static int run_project(const char *dir, int max_history, run *r)
{
	const char *dom = "domain.yml", *data = "data";
	const char *dp = dom, *ap = data;
	memset(r, 0, sizeof *r);
	int here = open(".", O_RDONLY | O_DIRECTORY);
	if (here < 0 || chdir(dir)) {
		perror(dir);
		abort();
	}
	int rc = train_rasa_diags_create(&r->diags);
	if (!rc && exists(dom))
		rc = train_rasa_domain_load(&dp, 1, &r->domain, r->diags, &r->err);
	if (!rc)
		rc = train_rasa_project_load(&ap, exists(data) ? 1 : 0, &r->data, r->diags, &r->err);
	if (rc) {
		char buf[700];
		fprintf(stderr, "%s: cannot load: %s\n", dir, train_error_format(&r->err, buf, sizeof buf));
		if (fchdir(here))
			abort();
		close(here);
		return rc;
	}
	train_rasa_validate_opts vo;
	train_rasa_validate_opts_init(&vo);
	vo.max_history = max_history;
	r->rc = train_rasa_validate(r->domain, r->data->nlu, r->data->stories, &vo, r->diags, &r->err);
	r->type = train_rasa_training_type_detect(r->domain, r->data->nlu, r->data->stories);
	if (fchdir(here))
		abort();
	close(here);
	return TRAIN_OK;
}

static void run_free(run *r)
{
	train_rasa_domain_free(r->domain);
	train_rasa_project_free(r->data);
	train_rasa_diags_destroy(r->diags);
}

static void print_diags(const char *what, const train_rasa_diags *d)
{
	char buf[2048];
	for (size_t i = 0; i < train_rasa_diags_len(d); i++)
		fprintf(stderr, "  %s: %s\n", what, train_rasa_diag_format(train_rasa_diags_at(d, i), buf,
		                                                             sizeof buf));
}

static size_t count_text(const train_rasa_diags *d, train_rasa_severity sev, const char *part)
{
	size_t n = 0;
	for (size_t i = 0; i < train_rasa_diags_len(d); i++) {
		const train_rasa_diag *g = train_rasa_diags_at(d, i);
		n += g->severity == sev && strstr(g->text, part) != NULL;
	}
	return n;
}

#ifndef EXAMPLES

/* ---- the crafted projects ------------------------------------------------ */

static const char *data_dir(void)
{
	const char *d = getenv("TRAIN_TEST_DATA");
	return d && *d ? d : "tests/data";
}

typedef struct expected {
	train_rasa_severity sev;
	char file[256];
	unsigned line;
	char part[512];
	int seen;
} expected;

typedef struct expect_file {
	expected e[64];
	size_t n;
	int max_history;
	char type[32];
} expect_file;

static int read_expect(const char *path, expect_file *x)
{
	FILE *f = fopen(path, "r");
	char line[1024];
	memset(x, 0, sizeof *x);
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = '\0';
		char sev[16], loc[250];
		int off = 0;
		if (!line[0] || line[0] == '#')
			continue;
		if (sscanf(line, "max-history %d", &x->max_history) == 1)
			continue;
		if (sscanf(line, "type %31s", x->type) == 1)
			continue;
		if (sscanf(line, "%15s %249s %n", sev, loc, &off) != 2 || x->n == 64) {
			fprintf(stderr, "%s: cannot read: %s\n", path, line);
			fclose(f);
			return -1;
		}
		expected *e = &x->e[x->n++];
		e->sev = !strcmp(sev, "error") ? TRAIN_RASA_ERROR : TRAIN_RASA_WARNING;
		char *colon = strrchr(loc, ':');
		if (!colon || (strcmp(sev, "error") && strcmp(sev, "warning"))) {
			fprintf(stderr, "%s: expected \"error|warning FILE:LINE TEXT\": %s\n", path, line);
			fclose(f);
			return -1;
		}
		*colon = '\0';
		snprintf(e->file, sizeof e->file, "%s", loc);
		e->line = (unsigned)strtoul(colon + 1, NULL, 10);
		snprintf(e->part, sizeof e->part, "%s", line + off);
	}
	fclose(f);
	return 0;
}

/* `file` names `want` (a path relative to the case folder). */
static int same_file(const char *file, const char *want)
{
	size_t n = strlen(file), w = strlen(want);
	return n >= w && !strcmp(file + n - w, want) && (n == w || file[n - w - 1] == '/');
}

/* Check one case; returns 1 if it matched its expect file. */
static int check_case(const char *dir, const char *name)
{
	char path[1400], buf[2048];
	expect_file x;
	run r;
	int ok = 1;

	snprintf(path, sizeof path, "%s/expect", dir);
	if (read_expect(path, &x)) {
		fprintf(stderr, "%s: no readable expect file\n", name);
		return 0;
	}
	if (run_project(dir, x.max_history, &r)) {
		run_free(&r);
		return 0;
	}
	int want_error = 0;
	for (size_t i = 0; i < x.n; i++)
		want_error |= x.e[i].sev == TRAIN_RASA_ERROR;
	for (size_t i = 0; i < train_rasa_diags_len(r.diags); i++) {
		const train_rasa_diag *g = train_rasa_diags_at(r.diags, i);
		expected *hit = NULL;
		for (size_t k = 0; k < x.n && !hit; k++) {
			expected *e = &x.e[k];
			if (!e->seen && e->sev == g->severity && e->line == g->line &&
			    same_file(g->file, e->file) && strstr(g->text, e->part))
				hit = e;
		}
		if (hit) {
			hit->seen = 1;
		} else {
			fprintf(stderr, "%s: unexpected finding: %s\n", name,
			        train_rasa_diag_format(g, buf, sizeof buf));
			ok = 0;
		}
	}
	for (size_t k = 0; k < x.n; k++)
		if (!x.e[k].seen) {
			fprintf(stderr, "%s: missing finding: %s %s:%u %s\n", name,
			        x.e[k].sev == TRAIN_RASA_ERROR ? "error" : "warning", x.e[k].file,
			        x.e[k].line, x.e[k].part);
			ok = 0;
		}
	if ((r.rc == TRAIN_EINVAL) != want_error || (r.rc && r.rc != TRAIN_EINVAL)) {
		fprintf(stderr, "%s: train_rasa_validate returned %d (%s)\n", name, r.rc,
		        train_strerror(r.rc));
		ok = 0;
	}
	if (x.type[0] && strcmp(x.type, train_rasa_training_type_name(r.type))) {
		fprintf(stderr, "%s: training type %s, expected %s\n", name,
		        train_rasa_training_type_name(r.type), x.type);
		ok = 0;
	}
	if (!ok)
		print_diags(name, r.diags);
	run_free(&r);
	return ok;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_cases(void)
{
	char dir[1024];
	snprintf(dir, sizeof dir, "%s/rasa/validate", data_dir());
	DIR *d = opendir(dir);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	char *names[256];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) && n < 256) {
		char p[1300];
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		if (e->d_name[0] != '.' && is_dir(p))
			names[n++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmp_name);
	CU_ASSERT(n >= 25);
	size_t failed = 0;
	for (size_t i = 0; i < n; i++) {
		char p[1300];
		snprintf(p, sizeof p, "%s/%s", dir, names[i]);
		int ok = check_case(p, names[i]);
		CU_ASSERT(ok);
		failed += !ok;
		free(names[i]);
	}
	if (failed)
		fprintf(stderr, "%zu of %zu cases failed\n", failed, n);
}

/* The conflict of conflict_history is in the last state only: the default
 * history (5) and the whole history tell the stories apart. */
static void test_history_default(void)
{
	char dir[1024];
	int hist[] = { 0, -1, 5, 2 };
	snprintf(dir, sizeof dir, "%s/rasa/validate/conflict_history", data_dir());
	for (size_t i = 0; i < sizeof hist / sizeof hist[0]; i++) {
		run r;
		CU_ASSERT_EQUAL_FATAL(run_project(dir, hist[i], &r), TRAIN_OK);
		CU_ASSERT_EQUAL(r.rc, TRAIN_OK);
		CU_ASSERT_EQUAL(count_text(r.diags, TRAIN_RASA_WARNING, "conflict"), 0);
		run_free(&r);
	}
	run r;
	CU_ASSERT_EQUAL_FATAL(run_project(dir, 1, &r), TRAIN_OK);
	CU_ASSERT_EQUAL(count_text(r.diags, TRAIN_RASA_WARNING, "the same last state of history"), 1);
	run_free(&r);
}

/* ---- projects from text -------------------------------------------------- */

typedef struct mem {
	train_rasa_domain *domain;
	train_rasa_nlu *nlu;
	train_rasa_stories *stories;
	train_rasa_diags *diags;
	train_error err;
	int rc;
} mem;

static void mem_run(mem *m, const char *domain, const char *nlu, const char *stories,
                    int max_history)
{
	memset(m, 0, sizeof *m);
	CU_ASSERT_EQUAL_FATAL(train_rasa_diags_create(&m->diags), TRAIN_OK);
	if (domain)
		CU_ASSERT_EQUAL_FATAL(train_rasa_domain_parse(domain, strlen(domain), "domain.yml",
		                                              &m->domain, m->diags, &m->err), TRAIN_OK);
	if (nlu)
		CU_ASSERT_EQUAL_FATAL(train_rasa_nlu_parse(nlu, strlen(nlu), "nlu.yml", &m->nlu,
		                                           m->diags, &m->err), TRAIN_OK);
	if (stories)
		CU_ASSERT_EQUAL_FATAL(train_rasa_stories_parse(stories, strlen(stories), "stories.yml",
		                                               &m->stories, m->diags, &m->err), TRAIN_OK);
	train_rasa_validate_opts vo;
	train_rasa_validate_opts_init(&vo);
	vo.max_history = max_history;
	m->rc = train_rasa_validate(m->domain, m->nlu, m->stories, &vo, m->diags, &m->err);
}

static void mem_free(mem *m)
{
	train_rasa_domain_free(m->domain);
	train_rasa_nlu_free(m->nlu);
	train_rasa_stories_free(m->stories);
	train_rasa_diags_destroy(m->diags);
}

static size_t conflicts(const char *domain, const char *stories, int max_history)
{
	mem m;
	mem_run(&m, domain, NULL, stories, max_history);
	size_t n = count_text(m.diags, TRAIN_RASA_WARNING, "story structure conflict");
	if (getenv("VERBOSE_TESTS"))
		print_diags("conflicts", m.diags);
	mem_free(&m);
	return n;
}

#define DOMAIN_HEAD \
	"version: \"3.1\"\n" \
	"intents: [greet, inform, affirm]\n" \
	"entities: [city]\n" \
	"actions: [action_a, action_b]\n" \
	"responses:\n" \
	"  utter_greet: [{text: hi}]\n" \
	"  utter_ask: [{text: what?}]\n"

/* Two stories that differ only in a slot set before the user turn. */
#define SLOT_STORIES(v1, v2) \
	"version: \"3.1\"\n" \
	"stories:\n" \
	"- story: one\n" \
	"  steps:\n" \
	"  - slot_was_set: [{s: " v1 "}]\n" \
	"  - intent: greet\n" \
	"  - action: action_a\n" \
	"- story: two\n" \
	"  steps:\n" \
	"  - slot_was_set: [{s: " v2 "}]\n" \
	"  - intent: greet\n" \
	"  - action: action_b\n"

static void test_conflict_slots(void)
{
	/* a featurized text slot: only set/unset counts */
	const char *text_infl = DOMAIN_HEAD "slots:\n  s: {type: text, mappings: [{type: custom}]}\n";
	CU_ASSERT_EQUAL(conflicts(text_infl, SLOT_STORIES("x", "y"), 0), 1);
	CU_ASSERT_EQUAL(conflicts(text_infl, SLOT_STORIES("x", "null"), 0), 0);
	/* not featurized: never tells stories apart */
	const char *text_no = DOMAIN_HEAD "slots:\n  s: {type: text, influence_conversation: false, "
	                                  "mappings: [{type: custom}]}\n";
	CU_ASSERT_EQUAL(conflicts(text_no, SLOT_STORIES("x", "null"), 0), 1);
	/* categorical: the value counts (case-insensitively), unknown ones are __other__ */
	const char *cat = DOMAIN_HEAD "slots:\n  s: {type: categorical, values: [low, high], "
	                              "mappings: [{type: custom}]}\n";
	CU_ASSERT_EQUAL(conflicts(cat, SLOT_STORIES("low", "high"), 0), 0);
	CU_ASSERT_EQUAL(conflicts(cat, SLOT_STORIES("low", "LOW"), 0), 1);
	CU_ASSERT_EQUAL(conflicts(cat, SLOT_STORIES("what", "else"), 0), 1);
	/* bool: true and false differ */
	const char *b = DOMAIN_HEAD "slots:\n  s: {type: bool, mappings: [{type: custom}]}\n";
	CU_ASSERT_EQUAL(conflicts(b, SLOT_STORIES("true", "false"), 0), 0);
	CU_ASSERT_EQUAL(conflicts(b, SLOT_STORIES("true", "\"true\""), 0), 1);
	/* float: clipped into [min, max] */
	const char *f = DOMAIN_HEAD "slots:\n  s: {type: float, min_value: 0, max_value: 10, "
	                            "mappings: [{type: custom}]}\n";
	CU_ASSERT_EQUAL(conflicts(f, SLOT_STORIES("3", "4"), 0), 0);
	CU_ASSERT_EQUAL(conflicts(f, SLOT_STORIES("20", "30"), 0), 1);
	/* any: never featurized */
	const char *any = DOMAIN_HEAD "slots:\n  s: {type: any, influence_conversation: false, "
	                              "mappings: [{type: custom}]}\n";
	CU_ASSERT_EQUAL(conflicts(any, SLOT_STORIES("1", "2"), 0), 1);
}

/* Two stories whose user turns differ only in an entity. */
static const char entity_stories[] =
	"version: \"3.1\"\n"
	"stories:\n"
	"- story: with city\n"
	"  steps:\n"
	"  - intent: inform\n"
	"    entities: [{city: Paris}]\n"
	"  - action: action_a\n"
	"- story: without\n"
	"  steps:\n"
	"  - intent: inform\n"
	"  - action: action_b\n";

static void test_conflict_entities(void)
{
	const char *base = "version: \"3.1\"\nactions: [action_a, action_b]\n";
	char d[1024];
	/* the entity tells them apart ... */
	snprintf(d, sizeof d, "%sintents: [inform]\nentities: [city]\n", base);
	CU_ASSERT_EQUAL(conflicts(d, entity_stories, 0), 0);
	/* ... unless the intent does not use it ... */
	snprintf(d, sizeof d, "%sintents: [{inform: {use_entities: []}}]\nentities: [city]\n", base);
	CU_ASSERT_EQUAL(conflicts(d, entity_stories, 0), 1);
	snprintf(d, sizeof d, "%sintents: [{inform: {ignore_entities: [city]}}]\nentities: [city]\n",
	         base);
	CU_ASSERT_EQUAL(conflicts(d, entity_stories, 0), 1);
	/* ... or the entity does not influence the conversation */
	snprintf(d, sizeof d, "%sintents: [inform]\nentities:\n- city: {influence_conversation: false}\n",
	         base);
	CU_ASSERT_EQUAL(conflicts(d, entity_stories, 0), 1);
	/* a featurized slot filled from the entity also tells them apart */
	snprintf(d, sizeof d, "%sintents: [{inform: {use_entities: []}}]\nentities: [city]\n"
	         "slots:\n  c: {type: text, mappings: [{type: from_entity, entity: city}]}\n", base);
	CU_ASSERT_EQUAL(conflicts(d, entity_stories, 0), 0);
	/* ... but not a mapping with conditions (it fills only inside its form) */
	snprintf(d, sizeof d, "%sintents: [{inform: {use_entities: []}}]\nentities: [city]\n"
	         "slots:\n  c: {type: text, mappings: [{type: from_entity, entity: city, "
	         "conditions: [{active_loop: f}]}]}\nforms:\n  f: {required_slots: [c]}\n", base);
	CU_ASSERT_EQUAL(conflicts(d, entity_stories, 0), 1);
	/* nor when the domain says not to store entities as slots */
	snprintf(d, sizeof d, "%sintents: [{inform: {use_entities: []}}]\nentities: [city]\n"
	         "config: {store_entities_as_slots: false}\n"
	         "slots:\n  c: {type: text, mappings: [{type: from_entity, entity: city}]}\n", base);
	CU_ASSERT_EQUAL(conflicts(d, entity_stories, 0), 1);
}

/* A story that ends (waits for the user) against one that goes on. */
static void test_conflict_listen(void)
{
	const char *stories =
		"version: \"3.1\"\n"
		"stories:\n"
		"- story: short\n"
		"  steps:\n"
		"  - intent: greet\n"
		"  - action: utter_greet\n"
		"- story: long\n"
		"  steps:\n"
		"  - intent: greet\n"
		"  - action: utter_greet\n"
		"  - action: utter_ask\n";
	mem m;
	mem_run(&m, DOMAIN_HEAD, NULL, stories, 0);
	CU_ASSERT_EQUAL(count_text(m.diags, TRAIN_RASA_WARNING, "conflict after action 'utter_greet'"),
	                1);
	CU_ASSERT_EQUAL(count_text(m.diags, TRAIN_RASA_WARNING, "'action_listen' (waiting for the "
	                                                        "user) in 'short' (stories.yml:6)"),
	                1);
	CU_ASSERT_EQUAL(count_text(m.diags, TRAIN_RASA_WARNING, "'utter_ask' in 'long' (stories.yml:11)"),
	                1);
	/* the finding is placed at the second action */
	for (size_t i = 0; i < train_rasa_diags_len(m.diags); i++) {
		const train_rasa_diag *g = train_rasa_diags_at(m.diags, i);
		if (strstr(g->text, "conflict"))
			CU_ASSERT_EQUAL(g->line, 11);
	}
	mem_free(&m);
	/* rules never conflict with stories: Rasa checks stories only */
	const char *rules =
		"version: \"3.1\"\n"
		"rules:\n"
		"- rule: one\n"
		"  steps:\n"
		"  - intent: greet\n"
		"  - action: utter_greet\n"
		"- rule: two\n"
		"  steps:\n"
		"  - intent: greet\n"
		"  - action: utter_ask\n";
	CU_ASSERT_EQUAL(conflicts(DOMAIN_HEAD, rules, 0), 0);
	/* `or` and checkpoints are resolved into trackers first */
	const char *or_stories =
		"version: \"3.1\"\n"
		"stories:\n"
		"- story: either\n"
		"  steps:\n"
		"  - or:\n"
		"    - intent: greet\n"
		"    - intent: affirm\n"
		"  - action: utter_greet\n"
		"- story: affirm\n"
		"  steps:\n"
		"  - intent: affirm\n"
		"  - checkpoint: more\n"
		"- story: then\n"
		"  steps:\n"
		"  - checkpoint: more\n"
		"  - action: utter_ask\n";
	CU_ASSERT_EQUAL(conflicts(DOMAIN_HEAD, or_stories, 0), 1);
}

/* End-to-end turns: the text is the state. */
static void test_conflict_e2e(void)
{
	const char *stories =
		"version: \"3.1\"\n"
		"stories:\n"
		"- story: a\n"
		"  steps:\n"
		"  - user: hello\n"
		"  - bot: Hi!\n"
		"- story: b\n"
		"  steps:\n"
		"  - user: hello\n"
		"  - action: utter_greet\n"
		"- story: c\n"
		"  steps:\n"
		"  - user: good day\n"
		"  - action: utter_ask\n";
	mem m;
	mem_run(&m, DOMAIN_HEAD, NULL, stories, 0);
	CU_ASSERT_EQUAL(count_text(m.diags, TRAIN_RASA_WARNING,
	                           "conflict after user utterance 'hello': bot text 'Hi!' in 'a'"), 1);
	CU_ASSERT_EQUAL(count_text(m.diags, TRAIN_RASA_WARNING, "conflict"), 1);
	CU_ASSERT_EQUAL(train_rasa_training_type_detect(m.domain, m.nlu, m.stories),
	                TRAIN_RASA_TRAINING_END_TO_END);
	mem_free(&m);
}

/* Several errors: the return code, the summary in err, the sort order. */
static void test_errors(void)
{
	const char *stories =
		"version: \"3.1\"\n"
		"stories:\n"
		"- story: s\n"
		"  steps:\n"
		"  - intent: nope\n"
		"  - action: action_nope\n"
		"  - slot_was_set: [{nope: 1}]\n";
	mem m;
	mem_run(&m, DOMAIN_HEAD, NULL, stories, 0);
	CU_ASSERT_EQUAL(m.rc, TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_rasa_diags_count(m.diags, TRAIN_RASA_ERROR), 3);
	CU_ASSERT_PTR_NOT_NULL(strstr(m.err.text, "3 errors in the Rasa project; the first: intent "
	                                          "'nope'"));
	CU_ASSERT_STRING_EQUAL(m.err.file, "stories.yml");
	CU_ASSERT_EQUAL(m.err.line, 5);
	unsigned last = 0;
	for (size_t i = 0; i < train_rasa_diags_len(m.diags); i++) {
		const train_rasa_diag *g = train_rasa_diags_at(m.diags, i);
		if (strcmp(g->file, "stories.yml"))
			continue;
		CU_ASSERT(g->line >= last);
		last = g->line;
	}
	mem_free(&m);

	/* no diags: err alone says it */
	train_rasa_stories *st = NULL;
	train_rasa_domain *d = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_rasa_stories_parse(stories, strlen(stories), "s.yml", &st, NULL,
	                                               &err), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(train_rasa_domain_parse(DOMAIN_HEAD, strlen(DOMAIN_HEAD), "d.yml", &d,
	                                              NULL, &err), TRAIN_OK);
	CU_ASSERT_EQUAL(train_rasa_validate(d, NULL, st, NULL, NULL, &err), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(err.line, 5);

	/* an empty domain with stories */
	train_rasa_domain *empty = NULL;
	const char *ev = "version: \"3.1\"\n";
	CU_ASSERT_EQUAL_FATAL(train_rasa_domain_parse(ev, strlen(ev), "e.yml", &empty, NULL, &err),
	                      TRAIN_OK);
	CU_ASSERT(train_rasa_domain_is_empty(empty));
	CU_ASSERT_EQUAL(train_rasa_validate(empty, NULL, st, NULL, NULL, &err), TRAIN_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "the domain is empty"));

	/* a bad struct_size */
	train_rasa_validate_opts vo;
	train_rasa_validate_opts_init(&vo);
	vo.struct_size = 4;
	CU_ASSERT_EQUAL(train_rasa_validate(d, NULL, st, &vo, NULL, &err), TRAIN_EINVAL);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "struct_size"));

	/* the tracker bound: an error, not a partial check */
	const char *two =
		"version: \"3.1\"\nstories:\n- story: a\n  steps:\n  - intent: greet\n"
		"  - action: utter_greet\n- story: b\n  steps:\n  - intent: greet\n"
		"  - action: utter_greet\n";
	train_rasa_stories *st2 = NULL;
	CU_ASSERT_EQUAL_FATAL(train_rasa_stories_parse(two, strlen(two), "t.yml", &st2, NULL, &err),
	                      TRAIN_OK);
	train_rasa_validate_opts_init(&vo);
	vo.trackers.max_trackers = 1;
	memset(&err, 0, sizeof err);
	CU_ASSERT_EQUAL(train_rasa_validate(d, NULL, st2, &vo, NULL, &err), TRAIN_EINVAL);
	CU_ASSERT(err.text[0] != '\0');
	vo.trackers.max_trackers = 0;
	CU_ASSERT_EQUAL(train_rasa_validate(d, NULL, st2, &vo, NULL, &err), TRAIN_OK);

	/* nothing given: nothing to say */
	CU_ASSERT_EQUAL(train_rasa_validate(NULL, NULL, NULL, NULL, NULL, &err), TRAIN_OK);
	train_rasa_stories_free(st);
	train_rasa_stories_free(st2);
	train_rasa_domain_free(d);
	train_rasa_domain_free(empty);
}

static void test_type_names(void)
{
	CU_ASSERT_STRING_EQUAL(train_rasa_training_type_name(TRAIN_RASA_TRAINING_NONE), "none");
	CU_ASSERT_STRING_EQUAL(train_rasa_training_type_name(TRAIN_RASA_TRAINING_NLU), "nlu");
	CU_ASSERT_STRING_EQUAL(train_rasa_training_type_name(TRAIN_RASA_TRAINING_CORE), "core");
	CU_ASSERT_STRING_EQUAL(train_rasa_training_type_name(TRAIN_RASA_TRAINING_BOTH), "both");
	CU_ASSERT_STRING_EQUAL(train_rasa_training_type_name(TRAIN_RASA_TRAINING_END_TO_END),
	                       "end-to-end");
	CU_ASSERT_STRING_EQUAL(train_rasa_training_type_name((train_rasa_training_type)9), "?");
	/* nothing at all */
	CU_ASSERT_EQUAL(train_rasa_training_type_detect(NULL, NULL, NULL), TRAIN_RASA_TRAINING_NONE);
	/* NLU data alone, or with stories but no domain: NLU */
	const char *nlu = "version: \"3.1\"\nnlu:\n- synonym: NYC\n  examples: |\n    - New York\n";
	train_rasa_nlu *n = NULL;
	train_rasa_stories *s = NULL;
	const char *st = "version: \"3.1\"\nrules:\n- rule: r\n  steps:\n  - intent: greet\n"
	                 "  - action: utter_greet\n";
	CU_ASSERT_EQUAL_FATAL(train_rasa_nlu_parse(nlu, strlen(nlu), "n.yml", &n, NULL, NULL),
	                      TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(train_rasa_stories_parse(st, strlen(st), "s.yml", &s, NULL, NULL),
	                      TRAIN_OK);
	CU_ASSERT(train_rasa_nlu_has_data(n)); /* a synonym is NLU data */
	CU_ASSERT_EQUAL(train_rasa_training_type_detect(NULL, n, NULL), TRAIN_RASA_TRAINING_NLU);
	CU_ASSERT_EQUAL(train_rasa_training_type_detect(NULL, n, s), TRAIN_RASA_TRAINING_NLU);
	train_rasa_nlu_free(n);
	train_rasa_stories_free(s);
}

static const test_case cases[] = {
	{ "crafted projects", test_cases },
	{ "max_history default", test_history_default },
	{ "conflict state: slots", test_conflict_slots },
	{ "conflict state: entities", test_conflict_entities },
	{ "conflict: listen, rules, or, checkpoints", test_conflict_listen },
	{ "conflict: end-to-end", test_conflict_e2e },
	{ "errors", test_errors },
	{ "training types", test_type_names },
	{ NULL, NULL },
};

int main(void)
{
	return test_main("rasa_validate", cases);
}

#else /* EXAMPLES */

/* ---- the example bots ------------------------------------------------------ */

static char shared_[1024];

static const char *shared_dir(void)
{
	const char *env = getenv("TRAIN_SHARED_DATA");
	if (env && *env)
		snprintf(shared_, sizeof shared_, "%s", env);
	else {
		const char *top = getenv("top_srcdir");
		snprintf(shared_, sizeof shared_, "%s/../shared/data", top && *top ? top : ".");
	}
	return shared_;
}

/*
 * Every bot passes Rasa's validator (`rasa data validate` exits 0): no
 * `action_` names, forms or form slots missing from the domain, no slot
 * mapping conditions on unknown forms.  What Rasa warns about stays a
 * warning here (for example the rules bot's NLU intents that its domain
 * lacks).
 */
static const struct {
	const char *dir;
	train_rasa_training_type type;
	size_t min_warnings; /* at least these (warnings we know are there) */
	const char *warning; /* one of them */
} bots[] = {
	{ "rasa/rasa-examples/breakoutbot", TRAIN_RASA_TRAINING_BOTH, 2, "intent 'violence'" },
	{ "rasa/rasa-examples/concertbot", TRAIN_RASA_TRAINING_BOTH, 1, "intent 'bot_challenge'" },
	{ "rasa/rasa-examples/formbot", TRAIN_RASA_TRAINING_BOTH, 1, "utter_wrong_cuisine" },
	{ "rasa/rasa-examples/knowledgebasebot", TRAIN_RASA_TRAINING_BOTH, 0, NULL },
	{ "rasa/rasa-examples/moodbot", TRAIN_RASA_TRAINING_BOTH, 1, "example 'good afternoon'" },
	{ "rasa/rasa-examples/reminderbot", TRAIN_RASA_TRAINING_BOTH, 1, "intent 'EXT_reminder'" },
	{ "rasa/rasa-examples/responseselectorbot", TRAIN_RASA_TRAINING_BOTH, 1,
	  "example 'good afternoon'" },
	{ "rasa/rasa-examples/rules", TRAIN_RASA_TRAINING_BOTH, 1,
	  "intent 'request_restaurant' has NLU examples but is not in the domain" },
	{ "financial-demo", TRAIN_RASA_TRAINING_BOTH, 1, "intent 'cc_payment_form'" },
};

static void test_examples(void)
{
	char p[1200];
	snprintf(p, sizeof p, "%s/rasa", shared_dir());
	if (!is_dir(p)) {
		test_skip("no shared data (set TRAIN_SHARED_DATA)");
		return;
	}
	for (size_t i = 0; i < sizeof bots / sizeof bots[0]; i++) {
		const char *sub = bots[i].dir;
		if (!strncmp(sub, "financial-demo", 14))
			snprintf(p, sizeof p, "%s/rasa/%s", shared_dir(), sub);
		else
			snprintf(p, sizeof p, "%s/%s", shared_dir(), sub);
		run r;
		CU_ASSERT_EQUAL_FATAL(run_project(p, 0, &r), TRAIN_OK);
		size_t n_err = train_rasa_diags_count(r.diags, TRAIN_RASA_ERROR);
		size_t n_warn = train_rasa_diags_count(r.diags, TRAIN_RASA_WARNING);
		CU_ASSERT_EQUAL(r.rc, TRAIN_OK);
		CU_ASSERT_EQUAL(n_err, 0);
		CU_ASSERT(n_warn >= bots[i].min_warnings);
		if (bots[i].warning)
			CU_ASSERT(count_text(r.diags, TRAIN_RASA_WARNING, bots[i].warning) >= 1);
		CU_ASSERT_EQUAL(r.type, bots[i].type);
		if (n_err || r.rc || getenv("VERBOSE_TESTS")) {
			fprintf(stderr, "%s: %zu errors, %zu warnings, type %s\n", sub, n_err, n_warn,
			        train_rasa_training_type_name(r.type));
			print_diags(sub, r.diags);
		}
		/* the whole history, as `rasa data validate` without --max-history */
		run all;
		CU_ASSERT_EQUAL_FATAL(run_project(p, -1, &all), TRAIN_OK);
		CU_ASSERT_EQUAL(all.rc, TRAIN_OK);
		run_free(&all);
		run_free(&r);
	}
}

static const test_case cases[] = {
	{ "example bots", test_examples },
	{ NULL, NULL },
};

int main(void)
{
	return test_main("rasa_validate_examples", cases);
}

#endif
