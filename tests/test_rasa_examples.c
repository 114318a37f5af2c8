/*
 * tests/test_rasa_examples.c - every Rasa example bot in the shared data
 * (rasa-examples/NAME, financial-demo; Apache-2.0, not in this repository)
 * parses with the counts established by reading the files (grep/awk over
 * the YAML and an independent YAML parser, see the table), and a few
 * annotated examples have Rasa's exact offsets (issue 4).
 *
 * The data comes from $TRAIN_SHARED_DATA, else $top_srcdir/../shared/data;
 * without it the program exits 77 (skipped).  tests/test_rasa.c covers
 * what must run without it.
 */
#include "testlib.h"

#include <train/rasa.h>

#include <sys/stat.h>

static char shared_[1024];

static const char *shared_dir(void)
{
	if (shared_[0])
		return shared_;
	const char *env = getenv("TRAIN_SHARED_DATA");
	if (env && *env) {
		snprintf(shared_, sizeof shared_, "%s", env);
	} else {
		const char *top = getenv("top_srcdir");
		snprintf(shared_, sizeof shared_, "%s/../shared/data", top && *top ? top : ".");
	}
	return shared_;
}

static bool have_shared(void)
{
	char p[1200];
	struct stat st;
	snprintf(p, sizeof p, "%s/rasa", shared_dir());
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/*
 * Expected counts, read off the files:
 *  examples   "- " lines of the `examples: |` blocks of `- intent:` items
 *             (awk over nlu.yml, indentation-aware);
 *  entities   annotations: occurrences of "](" and "]{" (grep -o | wc -l);
 *  synonyms   values: `- synonym:` items plus the distinct annotation values
 *             that differ from their text ([gastro pub](cuisine:gastropub),
 *             "value": "credit", ...);
 *  stories, rules: "- story:" / "- rule:" lines;
 *  domain     list and map sizes (PyYAML safe_load of domain.yml).
 */
typedef struct bot {
	const char *dir;
	size_t examples, entities, synonyms, lookups, nlu_responses;
	size_t stories, rules;
	size_t intents, entity_decls, slots, responses, actions, forms;
} bot;

static const bot bots[] = {
	{ "rasa-examples/breakoutbot", 85, 62, 0, 1, 0, 3, 3, 9, 1, 2, 3, 4, 0 },
	{ "rasa-examples/concertbot", 29, 0, 0, 0, 0, 6, 5, 11, 1, 3, 7, 5, 0 },
	{ "rasa-examples/formbot", 288, 132, 2, 0, 0, 2, 6, 9, 4, 6, 17, 1, 1 },
	{ "rasa-examples/knowledgebasebot", 44, 53, 13, 2, 0, 1, 4, 4, 7, 7, 4, 1, 0 },
	{ "rasa-examples/moodbot", 68, 0, 0, 0, 0, 3, 2, 7, 0, 0, 6, 0, 0 },
	{ "rasa-examples/reminderbot", 35, 0, 0, 0, 0, 1, 7, 8, 2, 1, 2, 5, 0 },
	{ "rasa-examples/responseselectorbot", 76, 0, 0, 0, 2, 3, 3, 8, 0, 0, 6, 0, 0 },
	{ "rasa-examples/rules", 289, 132, 2, 0, 0, 0, 13, 11, 1, 2, 13, 12, 1 },
	{ "financial-demo", 578, 258, 3, 0, 0, 19, 20, 22, 10, 24, 51, 18, 3 },
};

static train_rasa_project *load_bot(const char *dir, train_rasa_diags *d)
{
	char domain[1200], data[1200];
	snprintf(domain, sizeof domain, "%s/rasa/%s/domain.yml", shared_dir(), dir);
	snprintf(data, sizeof data, "%s/rasa/%s/data", shared_dir(), dir);
	const char *paths[] = { domain, data };
	train_rasa_project *p = NULL;
	train_error e = { 0 };
	int rc = train_rasa_project_load(paths, 2, &p, d, &e);
	if (rc)
		fprintf(stderr, "%s: %s:%u:%u: %s\n", dir, e.file, e.line, e.col, e.text);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	return p;
}

static void test_bots(void)
{
	if (!have_shared()) {
		test_skip("no shared data (set TRAIN_SHARED_DATA)");
		return;
	}
	for (size_t b = 0; b < sizeof bots / sizeof bots[0]; b++) {
		const bot *x = &bots[b];
		train_rasa_diags *d = NULL;
		CU_ASSERT_EQUAL_FATAL(train_rasa_diags_create(&d), TRAIN_OK);
		train_rasa_project *p = load_bot(x->dir, d);
		size_t ents = 0;
		for (size_t i = 0; i < p->nlu->n_messages; i++)
			ents += p->nlu->messages[i].n_entities;
		fprintf(stderr, "%s: %zu examples, %zu entities, %zu stories, %zu rules, %zu warnings\n",
		        x->dir, p->nlu->n_messages, ents, p->stories->n_stories, p->stories->n_rules,
		        train_rasa_diags_count(d, TRAIN_RASA_WARNING));
		CU_ASSERT_EQUAL(p->nlu->n_messages, x->examples);
		CU_ASSERT_EQUAL(ents, x->entities);
		CU_ASSERT_EQUAL(p->nlu->n_synonyms, x->synonyms);
		CU_ASSERT_EQUAL(p->nlu->n_lookups, x->lookups);
		CU_ASSERT_EQUAL(p->nlu->n_responses, x->nlu_responses);
		CU_ASSERT_EQUAL(p->stories->n_stories, x->stories);
		CU_ASSERT_EQUAL(p->stories->n_rules, x->rules);
		CU_ASSERT_EQUAL(p->domain->n_intents, x->intents);
		CU_ASSERT_EQUAL(p->domain->n_entities, x->entity_decls);
		CU_ASSERT_EQUAL(p->domain->n_slots, x->slots);
		CU_ASSERT_EQUAL(p->domain->n_responses, x->responses);
		CU_ASSERT_EQUAL(p->domain->n_actions, x->actions);
		CU_ASSERT_EQUAL(p->domain->n_forms, x->forms);
		CU_ASSERT_EQUAL(train_rasa_diags_count(d, TRAIN_RASA_ERROR), 0);
		/* Every message has an intent and a place. */
		for (size_t i = 0; i < p->nlu->n_messages; i++) {
			CU_ASSERT_PTR_NOT_NULL(p->nlu->messages[i].intent);
			CU_ASSERT(p->nlu->messages[i].loc.line > 0);
		}
		/* Stories resolve, and every value round-trips to the same bytes. */
		train_rasa_trackers *t = NULL;
		CU_ASSERT_EQUAL(train_rasa_trackers_generate(p->stories, NULL, &t, d, NULL), TRAIN_OK);
		CU_ASSERT(t && t->n_items >= p->stories->n_items);
		train_rasa_trackers_free(t);
		train_value *v1 = NULL, *v2 = NULL;
		train_rasa_nlu *nlu2 = NULL;
		CU_ASSERT_EQUAL(train_rasa_nlu_to_value(p->nlu, &v1, NULL), TRAIN_OK);
		CU_ASSERT_EQUAL(train_rasa_nlu_from_value(v1, &nlu2, NULL), TRAIN_OK);
		CU_ASSERT_EQUAL(train_rasa_nlu_to_value(nlu2, &v2, NULL), TRAIN_OK);
		CU_ASSERT(train_fp_eq(train_value_fp(v1), train_value_fp(v2)));
		train_value_unref(v1);
		train_value_unref(v2);
		train_rasa_nlu_free(nlu2);
		train_rasa_project_free(p);
		train_rasa_diags_destroy(d);
	}
}

static const train_rasa_message *find(const train_rasa_nlu *nlu, const char *text)
{
	for (size_t i = 0; i < nlu->n_messages; i++)
		if (strcmp(nlu->messages[i].text, text) == 0)
			return &nlu->messages[i];
	return NULL;
}

static void test_offsets(void)
{
	if (!have_shared()) {
		test_skip("no shared data (set TRAIN_SHARED_DATA)");
		return;
	}
	train_rasa_project *p = load_bot("rasa-examples/knowledgebasebot", NULL);
	const train_rasa_message *m = find(p->nlu, "what restaurants can you recommend?");
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL_FATAL(m->n_entities, 1);
	CU_ASSERT_STRING_EQUAL(m->entities[0].entity, "object_type");
	CU_ASSERT_STRING_EQUAL(m->entities[0].value, "restaurant");
	CU_ASSERT_EQUAL(m->entities[0].start, 5);
	CU_ASSERT_EQUAL(m->entities[0].end, 16);
	m = find(p->nlu, "does the second one include breakfast?");
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL_FATAL(m->n_entities, 2);
	CU_ASSERT_EQUAL(m->entities[0].start, 9);
	CU_ASSERT_EQUAL(m->entities[0].end, 19);
	CU_ASSERT_STRING_EQUAL(m->entities[0].value, "2");
	CU_ASSERT_EQUAL(m->entities[1].start, 20);
	CU_ASSERT_EQUAL(m->entities[1].end, 37);
	CU_ASSERT_STRING_EQUAL(m->entities[1].value, "breakfast-included");
	/* "Lụa Restaurant" is a lookup element with a non-ASCII letter */
	CU_ASSERT_EQUAL_FATAL(p->nlu->n_lookups, 2);
	CU_ASSERT_STRING_EQUAL(p->nlu->lookups[0].name, "restaurant");
	CU_ASSERT_STRING_EQUAL(p->nlu->lookups[0].items.v[3], "Lụa Restaurant");
	train_rasa_project_free(p);

	p = load_bot("rasa-examples/breakoutbot", NULL);
	m = find(p->nlu, "look at room");
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_STRING_EQUAL(m->intent, "look");
	CU_ASSERT_EQUAL_FATAL(m->n_entities, 1);
	CU_ASSERT_STRING_EQUAL(m->entities[0].entity, "object");
	CU_ASSERT_STRING_EQUAL(m->entities[0].value, "room");
	CU_ASSERT_EQUAL(m->entities[0].start, 8);
	CU_ASSERT_EQUAL(m->entities[0].end, 12);
	/* the first example of `look` is on line 18, its text from column 7 */
	CU_ASSERT_EQUAL(m->loc.line, 18);
	CU_ASSERT_EQUAL(m->loc.col, 7);
	train_rasa_project_free(p);

	p = load_bot("financial-demo", NULL);
	m = find(p->nlu, "what's my emblm credit card balance?");
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL_FATAL(m->n_entities, 3);
	CU_ASSERT_EQUAL(m->entities[0].start, 10);
	CU_ASSERT_EQUAL(m->entities[0].end, 15);
	CU_ASSERT_EQUAL(m->entities[1].start, 16);
	CU_ASSERT_EQUAL(m->entities[1].end, 27);
	CU_ASSERT_EQUAL(m->entities[2].start, 28);
	CU_ASSERT_EQUAL(m->entities[2].end, 35);
	CU_ASSERT_STRING_EQUAL(m->entities[2].entity, "amount-of-money");
	CU_ASSERT_EQUAL(m->loc.line, 114);
	train_rasa_project_free(p);

	/* formbot is a Rasa 2 domain: auto_fill, mappings under the form */
	p = load_bot("rasa-examples/formbot", NULL);
	CU_ASSERT_STRING_EQUAL(p->domain->forms[0].name, "restaurant_form");
	CU_ASSERT_EQUAL(p->domain->forms[0].required_slots.n, 5);
	CU_ASSERT_PTR_NOT_NULL(p->domain->forms[0].mappings);
	CU_ASSERT_EQUAL(p->domain->slots[1].type, TRAIN_RASA_SLOT_FLOAT);
	CU_ASSERT_STRING_EQUAL(p->domain->slots[1].type_name, "rasa.shared.core.slots.FloatSlot");
	train_rasa_project_free(p);
}

/* Conversation tests of two bots are story files too (with `user` texts). */
static void test_test_stories(void)
{
	if (!have_shared()) {
		test_skip("no shared data (set TRAIN_SHARED_DATA)");
		return;
	}
	char p1[1200], p2[1200];
	snprintf(p1, sizeof p1, "%s/rasa/rasa-examples/breakoutbot/tests", shared_dir());
	snprintf(p2, sizeof p2, "%s/rasa/rasa-examples/formbot/tests", shared_dir());
	const char *paths[] = { p1, p2 };
	train_rasa_stories *s = NULL;
	train_error e = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_rasa_stories_load(paths, 2, &s, NULL, &e), TRAIN_OK);
	CU_ASSERT(s->n_stories >= 2);
	const train_rasa_event *ev = &s->items[0].events[0];
	CU_ASSERT_EQUAL(ev->kind, TRAIN_RASA_EV_USER);
	CU_ASSERT_STRING_EQUAL(ev->name, "greet");
	CU_ASSERT_STRING_EQUAL(ev->text, "hello");
	train_rasa_stories_free(s);
}

static const test_case cases[] = {
	{ "bots", test_bots },
	{ "offsets", test_offsets },
	{ "test_stories", test_test_stories },
	{ NULL, NULL },
};

int main(void)
{
	return test_main("rasa_examples", cases);
}
