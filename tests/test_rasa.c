/*
 * tests/test_rasa.c - the Rasa readers and data model (<train/rasa.h>,
 * issue 4), on data in this repository: the mini project
 * (tests/data/rasa/mini, original text), the broken projects of
 * tests/data/rasa/bad/<case>/ with their `expected` messages, snippets
 * written here, serialization, content fingerprints and trackers.
 * tests/test_rasa_examples.c reads the example bots of the shared data.
 */
#include "testlib.h"

#include <train/rasa.h>

#include "rasa_private.h" /* the NLU fast path's switch */

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <sys/stat.h>

static char data_[1024];

/* $TRAIN_TEST_DATA/rasa/<rel> */
static const char *data_path(const char *rel)
{
	const char *base = getenv("TRAIN_TEST_DATA");
	snprintf(data_, sizeof data_, "%s/rasa/%s", base && *base ? base : "tests/data", rel);
	return data_;
}

static train_rasa_project *load_dir(const char *dir, train_rasa_diags *d, int *rc_out)
{
	const char *paths[] = { dir };
	train_rasa_project *p = NULL;
	train_error e = { 0 };
	int rc = train_rasa_project_load(paths, 1, &p, d, &e);
	if (rc_out)
		*rc_out = rc;
	else if (rc)
		fprintf(stderr, "%s:%u:%u: %s\n", e.file, e.line, e.col, e.text);
	return p;
}

static const train_rasa_message *find_msg(const train_rasa_nlu *nlu, const char *text)
{
	for (size_t i = 0; i < nlu->n_messages; i++)
		if (strcmp(nlu->messages[i].text, text) == 0)
			return &nlu->messages[i];
	return NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* ------------------------------------------------------------------------
 * The mini project, item by item.
 */

static void test_mini_nlu(void)
{
	train_rasa_diags *d = NULL;
	CU_ASSERT_EQUAL_FATAL(train_rasa_diags_create(&d), TRAIN_OK);
	train_rasa_project *p = load_dir(data_path("mini"), d, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	CU_ASSERT_EQUAL(train_rasa_diags_len(d), 0); /* a clean project: no warnings */
	CU_ASSERT_EQUAL(p->n_files, 4);
	const train_rasa_nlu *nlu = p->nlu;
	CU_ASSERT_EQUAL(nlu->n_messages, 22);
	size_t ents = 0;
	for (size_t i = 0; i < nlu->n_messages; i++)
		ents += nlu->messages[i].n_entities;
	CU_ASSERT_EQUAL(ents, 13);

	/* place of the first example: data/nlu.yml line 6, text from column 7 */
	const train_rasa_message *m = &nlu->messages[0];
	CU_ASSERT_STRING_EQUAL(m->text, "hi");
	CU_ASSERT_STRING_EQUAL(m->intent, "greet");
	CU_ASSERT_PTR_NULL(m->response_key);
	CU_ASSERT(ends_with(m->loc.file, "mini/data/nlu.yml"));
	CU_ASSERT_EQUAL(m->loc.line, 6);
	CU_ASSERT_EQUAL(m->loc.col, 7);

	/* roles; a non-ASCII entity: characters and bytes differ */
	m = find_msg(nlu, "fly from Berlin to Zürich");
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->text_len, 26);
	CU_ASSERT_EQUAL(m->text_chars, 25);
	CU_ASSERT_EQUAL_FATAL(m->n_entities, 2);
	CU_ASSERT_STRING_EQUAL(m->entities[0].entity, "city");
	CU_ASSERT_STRING_EQUAL(m->entities[0].role, "from");
	CU_ASSERT_STRING_EQUAL(m->entities[0].value, "Berlin");
	CU_ASSERT_EQUAL(m->entities[0].start, 9);
	CU_ASSERT_EQUAL(m->entities[0].end, 15);
	CU_ASSERT_STRING_EQUAL(m->entities[1].role, "to");
	CU_ASSERT_STRING_EQUAL(m->entities[1].value, "Zürich");
	CU_ASSERT_EQUAL(m->entities[1].start, 19);
	CU_ASSERT_EQUAL(m->entities[1].end, 25);
	CU_ASSERT_EQUAL(m->entities[1].byte_start, 19);
	CU_ASSERT_EQUAL(m->entities[1].byte_end, 26);
	CU_ASSERT_EQUAL(m->loc.line, 25);

	/* groups */
	m = find_msg(nlu, "thai for 2 and 3");
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL_FATAL(m->n_entities, 3);
	CU_ASSERT_EQUAL(m->entities[0].start, 0);
	CU_ASSERT_EQUAL(m->entities[0].end, 4);
	CU_ASSERT_PTR_NULL(m->entities[0].group);
	CU_ASSERT_STRING_EQUAL(m->entities[1].group, "first");
	CU_ASSERT_EQUAL(m->entities[1].start, 9);
	CU_ASSERT_EQUAL(m->entities[1].end, 10);
	CU_ASSERT_STRING_EQUAL(m->entities[2].group, "second");
	CU_ASSERT_EQUAL(m->entities[2].start, 15);

	/* the legacy synonym form [text](type:value) */
	m = find_msg(nlu, "a table for four in Oslo please");
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL_FATAL(m->n_entities, 2);
	CU_ASSERT_STRING_EQUAL(m->entities[0].entity, "party_size");
	CU_ASSERT_STRING_EQUAL(m->entities[0].value, "4");
	CU_ASSERT_EQUAL(m->entities[0].start, 12);
	CU_ASSERT_EQUAL(m->entities[0].end, 16);

	/* several entities on one span: [text][{...}, {...}] */
	m = find_msg(nlu, "Big Apple style");
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL_FATAL(m->n_entities, 2);
	CU_ASSERT_STRING_EQUAL(m->entities[0].value, "New York");
	CU_ASSERT_STRING_EQUAL(m->entities[1].entity, "cuisine");
	CU_ASSERT_STRING_EQUAL(m->entities[1].value, "Big Apple");
	CU_ASSERT_EQUAL(m->entities[1].start, 0);
	CU_ASSERT_EQUAL(m->entities[1].end, 9);

	/* the list-of-text form with metadata; intent metadata */
	m = find_msg(nlu, "vegan please");
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_STRING_EQUAL(m->intent, "inform");
	CU_ASSERT_STRING_EQUAL(m->metadata, "{\"sentiment\":\"neutral\"}");
	CU_ASSERT_STRING_EQUAL(m->intent_metadata, "{\"source\":\"handwritten\"}");
	m = find_msg(nlu, "I would like Italian food");
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_PTR_NULL(m->metadata);
	CU_ASSERT_EQUAL(m->entities[0].start, 13);
	CU_ASSERT_EQUAL(m->loc.col, 11); /* the quoted scalar's column */

	/* retrieval intents */
	m = find_msg(nlu, "when are you open");
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_STRING_EQUAL(m->intent, "faq");
	CU_ASSERT_STRING_EQUAL(m->response_key, "opening_hours");

	/* synonyms: from annotations and from the synonym item, in order */
	CU_ASSERT_EQUAL_FATAL(nlu->n_synonyms, 4);
	CU_ASSERT_STRING_EQUAL(nlu->synonyms[0].value, "4");
	CU_ASSERT_STRING_EQUAL(nlu->synonyms[0].names.v[0], "four");
	CU_ASSERT_STRING_EQUAL(nlu->synonyms[1].value, "New York");
	CU_ASSERT_EQUAL(nlu->synonyms[1].names.n, 2);
	CU_ASSERT_STRING_EQUAL(nlu->synonyms[1].names.v[0], "NYC");
	CU_ASSERT_STRING_EQUAL(nlu->synonyms[1].names.v[1], "Big Apple");
	CU_ASSERT_STRING_EQUAL(nlu->synonyms[2].value, "italian");
	CU_ASSERT_STRING_EQUAL(nlu->synonyms[3].value, "vegan");
	CU_ASSERT_EQUAL(nlu->synonyms[3].names.n, 2);
	CU_ASSERT_STRING_EQUAL(nlu->synonyms[3].names.v[1], "plant-based");

	/* regex, lookups merged by name, NLU responses */
	CU_ASSERT_EQUAL_FATAL(nlu->n_regexes, 1);
	CU_ASSERT_STRING_EQUAL(nlu->regexes[0].items.v[0], "\\b[0-9]{1,2}\\b");
	CU_ASSERT_EQUAL_FATAL(nlu->n_lookups, 1);
	CU_ASSERT_EQUAL(nlu->lookups[0].items.n, 4);
	CU_ASSERT_STRING_EQUAL(nlu->lookups[0].items.v[3], "Lima");
	CU_ASSERT_EQUAL_FATAL(nlu->n_responses, 2);
	CU_ASSERT_STRING_EQUAL(nlu->responses[0].name, "utter_faq/opening_hours");
	train_rasa_project_free(p);
	train_rasa_diags_destroy(d);
}

static void test_mini_domain(void)
{
	train_rasa_project *p = load_dir(data_path("mini"), NULL, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	const train_rasa_domain *dm = p->domain;
	CU_ASSERT_STRING_EQUAL(dm->version, "3.1");
	CU_ASSERT_EQUAL_FATAL(dm->n_intents, 8);
	CU_ASSERT_EQUAL(dm->intents[0].use, TRAIN_RASA_USE_ALL);
	CU_ASSERT_STRING_EQUAL(dm->intents[4].name, "book_table");
	CU_ASSERT_EQUAL(dm->intents[4].use, TRAIN_RASA_USE_LISTED);
	CU_ASSERT_EQUAL(dm->intents[4].entities.n, 2);
	CU_ASSERT_EQUAL(dm->intents[5].use, TRAIN_RASA_USE_NONE);
	CU_ASSERT_EQUAL(dm->intents[6].use, TRAIN_RASA_USE_IGNORING);
	CU_ASSERT_STRING_EQUAL(dm->intents[6].entities.v[0], "party_size");
	CU_ASSERT_EQUAL(dm->intents[0].loc.line, 6);
	CU_ASSERT_EQUAL_FATAL(dm->n_entities, 3);
	CU_ASSERT_EQUAL(dm->entities[0].roles.n, 2);
	CU_ASSERT_STRING_EQUAL(dm->entities[2].groups.v[1], "second");
	CU_ASSERT_EQUAL_FATAL(dm->n_slots, 6);
	const train_rasa_slot *s = &dm->slots[2];
	CU_ASSERT_STRING_EQUAL(s->name, "party_size");
	CU_ASSERT_EQUAL(s->type, TRAIN_RASA_SLOT_FLOAT);
	CU_ASSERT_EQUAL(s->min_value, 1.0);
	CU_ASSERT_EQUAL(s->max_value, 20.0);
	CU_ASSERT_STRING_EQUAL(s->initial_value, "2");
	CU_ASSERT_STRING_EQUAL(s->mappings, "[{\"entity\":\"party_size\",\"type\":\"from_entity\"}]");
	CU_ASSERT_EQUAL(dm->slots[1].type, TRAIN_RASA_SLOT_CATEGORICAL);
	CU_ASSERT_EQUAL(dm->slots[1].values.n, 3);
	CU_ASSERT_EQUAL(dm->slots[3].type, TRAIN_RASA_SLOT_BOOL);
	CU_ASSERT(dm->slots[3].influence_conversation);
	CU_ASSERT_EQUAL(dm->slots[4].type, TRAIN_RASA_SLOT_LIST);
	CU_ASSERT_EQUAL(dm->slots[5].type, TRAIN_RASA_SLOT_ANY);
	CU_ASSERT(!dm->slots[5].influence_conversation);
	CU_ASSERT_EQUAL_FATAL(dm->n_responses, 6);
	const train_rasa_response *r = &dm->responses[0];
	CU_ASSERT_STRING_EQUAL(r->name, "utter_greet");
	CU_ASSERT_EQUAL_FATAL(r->variations[0].n_buttons, 2);
	CU_ASSERT_STRING_EQUAL(r->variations[0].buttons[1].payload, "/deny");
	CU_ASSERT_STRING_EQUAL(dm->responses[1].variations[1].channel, "web");
	CU_ASSERT_STRING_EQUAL(dm->responses[3].variations[0].condition,
	                       "[{\"name\":\"city\",\"type\":\"slot\",\"value\":\"Rome\"}]");
	CU_ASSERT_PTR_NULL(dm->responses[5].variations[0].text);
	CU_ASSERT_STRING_EQUAL(dm->responses[5].variations[0].custom, "{\"kind\":\"booking\",\"ok\":true}");
	CU_ASSERT_EQUAL_FATAL(dm->n_actions, 2);
	CU_ASSERT(!dm->actions[0].send_domain);
	CU_ASSERT(dm->actions[1].send_domain);
	CU_ASSERT_EQUAL_FATAL(dm->n_forms, 1);
	CU_ASSERT_EQUAL(dm->forms[0].required_slots.n, 3);
	CU_ASSERT_STRING_EQUAL(dm->forms[0].ignored_intents.v[0], "chitchat");
	CU_ASSERT_EQUAL(dm->session_expiration_time, 30.0);
	CU_ASSERT(!dm->carry_over_slots_to_new_session);
	CU_ASSERT(dm->store_entities_as_slots);
	train_rasa_project_free(p);
}

static void test_mini_stories(void)
{
	train_rasa_project *p = load_dir(data_path("mini"), NULL, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	const train_rasa_stories *s = p->stories;
	CU_ASSERT_EQUAL_FATAL(s->n_items, 8);
	CU_ASSERT_EQUAL(s->n_stories, 4);
	CU_ASSERT_EQUAL(s->n_rules, 4);
	/* files sort bytewise: data/rules.yml before data/stories.yml */
	CU_ASSERT_EQUAL(s->items[0].kind, TRAIN_RASA_RULE);
	const train_rasa_story *st = &s->items[5];
	CU_ASSERT_STRING_EQUAL(st->name, "book after greeting");
	CU_ASSERT_EQUAL(st->kind, TRAIN_RASA_STORY);
	CU_ASSERT_EQUAL(st->loc.line, 10);
	CU_ASSERT_EQUAL_FATAL(st->n_events, 7);
	CU_ASSERT_EQUAL(st->events[0].kind, TRAIN_RASA_EV_CHECKPOINT);
	CU_ASSERT_EQUAL(st->events[1].kind, TRAIN_RASA_EV_OR);
	CU_ASSERT_EQUAL_FATAL(st->events[1].n_sub, 2);
	CU_ASSERT_STRING_EQUAL(st->events[1].sub[1].name, "book_table");
	CU_ASSERT_EQUAL_FATAL(st->events[1].sub[1].n_entities, 1);
	CU_ASSERT_STRING_EQUAL(st->events[1].sub[1].entities[0].entity, "city");
	CU_ASSERT_STRING_EQUAL(st->events[1].sub[1].entities[0].value, "Rome");
	CU_ASSERT_EQUAL(st->events[3].kind, TRAIN_RASA_EV_ACTIVE_LOOP);
	CU_ASSERT_STRING_EQUAL(st->events[3].name, "booking_form");
	CU_ASSERT_PTR_NULL(st->events[4].name);
	CU_ASSERT_EQUAL(st->events[5].kind, TRAIN_RASA_EV_SLOT);
	CU_ASSERT_STRING_EQUAL(st->events[5].value, "true");
	/* end to end */
	st = &s->items[7];
	CU_ASSERT_EQUAL_FATAL(st->n_events, 3);
	CU_ASSERT_STRING_EQUAL(st->events[0].name, "book_table");
	CU_ASSERT_STRING_EQUAL(st->events[0].text, "book a table in Oslo");
	CU_ASSERT_EQUAL_FATAL(st->events[0].n_entities, 1);
	CU_ASSERT_EQUAL(st->events[0].entities[0].start, 16);
	CU_ASSERT_EQUAL(st->events[0].entities[0].end, 20);
	CU_ASSERT_EQUAL(st->events[1].kind, TRAIN_RASA_EV_BOT);
	CU_ASSERT_STRING_EQUAL(st->events[1].text, "Certainly.");
	/* rules */
	CU_ASSERT(s->items[1].conversation_start);
	CU_ASSERT(!s->items[2].wait_for_user_input);
	CU_ASSERT(s->items[0].wait_for_user_input);
	CU_ASSERT_EQUAL(s->items[3].n_condition, 1);
	CU_ASSERT_STRING_EQUAL(s->items[3].condition[0].name, "booking_form");
	train_rasa_project_free(p);
}

/* ------------------------------------------------------------------------
 * Trackers.
 */

/* "U:greet A:utter_greet S:x=1 L:form L:- B:text" */
static void render(const train_rasa_tracker *t, char *buf, size_t size)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < t->n_events && o < size; i++) {
		const train_rasa_event *e = t->events[i];
		const char *sep = i ? " " : "";
		int n = 0;
		switch (e->kind) {
		case TRAIN_RASA_EV_USER: n = snprintf(buf + o, size - o, "%sU:%s", sep, e->name ? e->name : e->text); break;
		case TRAIN_RASA_EV_ACTION: n = snprintf(buf + o, size - o, "%sA:%s", sep, e->name); break;
		case TRAIN_RASA_EV_BOT: n = snprintf(buf + o, size - o, "%sB:%s", sep, e->text); break;
		case TRAIN_RASA_EV_SLOT: n = snprintf(buf + o, size - o, "%sS:%s=%s", sep, e->name, e->value ? e->value : "?"); break;
		case TRAIN_RASA_EV_ACTIVE_LOOP: n = snprintf(buf + o, size - o, "%sL:%s", sep, e->name ? e->name : "-"); break;
		default: n = snprintf(buf + o, size - o, "%s??", sep); break;
		}
		if (n > 0)
			o += (size_t)n;
	}
}

static void test_trackers_mini(void)
{
	train_rasa_project *p = load_dir(data_path("mini"), NULL, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	train_rasa_trackers *t = NULL;
	train_rasa_diags *d = NULL;
	train_rasa_diags_create(&d);
	CU_ASSERT_EQUAL_FATAL(train_rasa_trackers_generate(p->stories, NULL, &t, d, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(train_rasa_diags_len(d), 0);
	static const char *const want[][2] = {
		{ "greet > book after greeting", "U:greet A:utter_greet U:affirm A:booking_form L:booking_form L:- S:confirmed=true A:action_book" },
		{ "greet > book after greeting", "U:greet A:utter_greet U:book_table A:booking_form L:booking_form L:- S:confirmed=true A:action_book" },
		{ "greet > no booking", "U:greet A:utter_greet U:deny A:utter_goodbye" },
		{ "end to end", "U:book_table B:Certainly. A:utter_ask_cuisine" },
		{ "say goodbye", "U:goodbye A:utter_goodbye" },
		{ "greet at the start", "U:greet A:utter_greet" },
		{ "answer faq", "U:faq A:utter_faq" },
		{ "answer faq", "U:chitchat A:utter_faq" },
		{ "submit the form", "L:booking_form A:booking_form L:- S:requested_slot=null A:action_book" },
	};
	CU_ASSERT_EQUAL_FATAL(t->n_items, 9);
	char buf[1024];
	for (size_t i = 0; i < 9; i++) {
		render(&t->items[i], buf, sizeof buf);
		CU_ASSERT_STRING_EQUAL(t->items[i].name, want[i][0]);
		CU_ASSERT_STRING_EQUAL(buf, want[i][1]);
	}
	CU_ASSERT_EQUAL(t->items[0].kind, TRAIN_RASA_STORY);
	CU_ASSERT_EQUAL(t->items[4].kind, TRAIN_RASA_RULE);
	CU_ASSERT(t->items[5].conversation_start);
	CU_ASSERT(!t->items[6].wait_for_user_input);
	CU_ASSERT_EQUAL(t->items[8].n_condition, 1);
	train_rasa_trackers_free(t);
	train_rasa_diags_destroy(d);
	train_rasa_project_free(p);
}

/* Checkpoints with slot conditions, an unused and an unreached checkpoint,
 * a cycle and a checkpoint in the middle of a story. */
static const char checkpoint_stories[] =
	"version: \"3.1\"\n"
	"stories:\n"
	"- story: start\n"
	"  steps:\n"
	"  - intent: greet\n"
	"  - action: utter_greet\n"
	"  - checkpoint: greeted\n"
	"- story: start happy\n"
	"  steps:\n"
	"  - intent: greet\n"
	"  - slot_was_set:\n"
	"    - mood: good\n"
	"  - action: utter_greet\n"
	"  - checkpoint: greeted\n"
	"- story: continue\n"
	"  steps:\n"
	"  - checkpoint: greeted\n"
	"  - or:\n"
	"    - intent: affirm\n"
	"    - intent: thanks\n"
	"  - action: utter_happy\n"
	"- story: only when happy\n"
	"  steps:\n"
	"  - checkpoint: greeted\n"
	"    slot_was_set:\n"
	"    - mood: good\n"
	"  - intent: bye\n"
	"  - action: utter_bye\n"
	"- story: dead end\n"
	"  steps:\n"
	"  - checkpoint: greeted\n"
	"  - intent: deny\n"
	"  - checkpoint: nowhere\n"
	"- story: orphan\n"
	"  steps:\n"
	"  - checkpoint: never_ended\n"
	"  - intent: lost\n"
	"- story: middle\n"
	"  steps:\n"
	"  - intent: a\n"
	"  - checkpoint: loop\n"
	"  - action: b\n"
	"  - checkpoint: loop\n"
	"- story: leave loop\n"
	"  steps:\n"
	"  - checkpoint: loop\n"
	"  - intent: stop\n";

static void test_trackers_checkpoints(void)
{
	train_rasa_stories *s = NULL;
	train_rasa_diags *d = NULL;
	train_rasa_diags_create(&d);
	train_error e = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_rasa_stories_parse(checkpoint_stories, strlen(checkpoint_stories),
	                                               "cp.yml", &s, d, &e), TRAIN_OK);
	CU_ASSERT_EQUAL(s->n_stories, 8);
	train_rasa_trackers *t = NULL;
	CU_ASSERT_EQUAL_FATAL(train_rasa_trackers_generate(s, NULL, &t, d, &e), TRAIN_OK);
	static const char *const want[][2] = {
		{ "start > continue", "U:greet A:utter_greet U:affirm A:utter_happy" },
		{ "start > continue", "U:greet A:utter_greet U:thanks A:utter_happy" },
		{ "start happy > continue", "U:greet S:mood=\"good\" A:utter_greet U:affirm A:utter_happy" },
		{ "start happy > continue", "U:greet S:mood=\"good\" A:utter_greet U:thanks A:utter_happy" },
		{ "start happy > only when happy", "U:greet S:mood=\"good\" A:utter_greet U:bye A:utter_bye" },
		{ "middle > leave loop", "U:a A:b U:stop" },
		{ "middle > leave loop", "U:a U:stop" },
	};
	char buf[1024];
	CU_ASSERT_EQUAL_FATAL(t->n_items, 7);
	for (size_t i = 0; i < 7; i++) {
		render(&t->items[i], buf, sizeof buf);
		CU_ASSERT_STRING_EQUAL(t->items[i].name, want[i][0]);
		CU_ASSERT_STRING_EQUAL(buf, want[i][1]);
	}
	/* warnings: nowhere (unused), never_ended (unreached), loop (cycle) */
	char line[1024];
	int seen = 0;
	for (size_t i = 0; i < train_rasa_diags_len(d); i++) {
		train_rasa_diag_format(train_rasa_diags_at(d, i), line, sizeof line);
		seen |= strstr(line, "cp.yml:33:5: warning: checkpoint 'nowhere' is never used") ? 1 : 0;
		seen |= strstr(line, "cp.yml:36:5: warning: checkpoint 'never_ended' is never reached") ? 2 : 0;
		seen |= strstr(line, "checkpoint 'loop' closes a cycle") ? 4 : 0;
	}
	CU_ASSERT_EQUAL(seen, 7);
	train_rasa_trackers_free(t);

	/* bounds: 2^16 paths */
	char big[8192];
	size_t o = (size_t)snprintf(big, sizeof big, "stories:\n- story: many\n  steps:\n");
	for (int i = 0; i < 16; i++)
		o += (size_t)snprintf(big + o, sizeof big - o, "  - or:\n    - intent: a%d\n    - intent: b%d\n"
		                      "  - action: x%d\n", i, i, i);
	train_rasa_stories *bs = NULL;
	CU_ASSERT_EQUAL_FATAL(train_rasa_stories_parse(big, o, "big.yml", &bs, NULL, NULL), TRAIN_OK);
	train_rasa_tracker_opts opts = { 1000, 0 };
	CU_ASSERT_EQUAL(train_rasa_trackers_generate(bs, &opts, &t, NULL, &e), TRAIN_EINVAL);
	CU_ASSERT_PTR_NULL(t);
	CU_ASSERT(strstr(e.text, "more than 1000 trackers") != NULL);
	opts = (train_rasa_tracker_opts){ 0, 5000 };
	CU_ASSERT_EQUAL(train_rasa_trackers_generate(bs, &opts, &t, NULL, &e), TRAIN_EINVAL);
	CU_ASSERT(strstr(e.text, "more than 5000 events") != NULL);
	opts = (train_rasa_tracker_opts){ 100000, 0 };
	CU_ASSERT_EQUAL(train_rasa_trackers_generate(bs, &opts, &t, NULL, &e), TRAIN_OK);
	CU_ASSERT_EQUAL(t ? t->n_items : 0, 65536);
	CU_ASSERT_EQUAL(t ? t->items[65535].n_events : 0, 32);
	train_rasa_trackers_free(t);
	train_rasa_stories_free(bs);
	train_rasa_stories_free(s);
	train_rasa_diags_destroy(d);
}

/* ------------------------------------------------------------------------
 * Serialization and content fingerprints.
 */

typedef struct fps {
	train_fp nlu, stories, domain;
} fps;

static fps project_fps(const char *dir)
{
	fps f = { { 0, 0 }, { 0, 0 }, { 0, 0 } };
	train_rasa_project *p = load_dir(dir, NULL, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	train_value *a = NULL, *b = NULL, *c = NULL;
	CU_ASSERT_EQUAL(train_rasa_nlu_to_value(p->nlu, &a, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(train_rasa_stories_to_value(p->stories, &b, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(train_rasa_domain_to_value(p->domain, &c, NULL), TRAIN_OK);
	if (a && b && c) {
		f.nlu = train_value_fp(a);
		f.stories = train_value_fp(b);
		f.domain = train_value_fp(c);
	}
	train_value_unref(a);
	train_value_unref(b);
	train_value_unref(c);
	train_rasa_project_free(p);
	return f;
}

/* Copy the mini project into a scratch folder. */
static const char *copy_mini(void)
{
	const char *dir = test_tmpdir();
	char cmd[3000];
	snprintf(cmd, sizeof cmd, "cp -R '%s/.' '%s/'", data_path("mini"), dir);
	CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
	return dir;
}

/* Replace the first `from` in file `path` by `to`. */
static void edit(const char *path, const char *from, const char *to)
{
	FILE *f = fopen(path, "rb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	static char buf[65536];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *at = strstr(buf, from);
	CU_ASSERT_PTR_NOT_NULL_FATAL(at);
	static char out[70000];
	snprintf(out, sizeof out, "%.*s%s%s", (int)(at - buf), buf, to, at + strlen(from));
	test_write(path, out);
}

static void test_fingerprints(void)
{
	const char *dir = copy_mini();
	char nlu[1200], stories[1200], domain[1200];
	snprintf(nlu, sizeof nlu, "%s/data/nlu.yml", dir);
	snprintf(stories, sizeof stories, "%s/data/stories.yml", dir);
	snprintf(domain, sizeof domain, "%s/domain.yml", dir);
	fps f0 = project_fps(dir);
	/* the same content elsewhere gives the same fingerprints */
	fps fm = project_fps(data_path("mini"));
	CU_ASSERT(train_fp_eq(f0.nlu, fm.nlu) && train_fp_eq(f0.stories, fm.stories) &&
	          train_fp_eq(f0.domain, fm.domain));

	/* one NLU example: only the NLU value changes */
	edit(nlu, "    - see you later\n", "    - see you later on\n");
	fps f1 = project_fps(dir);
	CU_ASSERT(!train_fp_eq(f0.nlu, f1.nlu));
	CU_ASSERT(train_fp_eq(f0.stories, f1.stories));
	CU_ASSERT(train_fp_eq(f0.domain, f1.domain));

	/* one story step: only the stories value changes */
	edit(stories, "  - action: utter_goodbye\n", "  - action: utter_noworries\n");
	fps f2 = project_fps(dir);
	CU_ASSERT(train_fp_eq(f1.nlu, f2.nlu));
	CU_ASSERT(!train_fp_eq(f1.stories, f2.stories));
	CU_ASSERT(train_fp_eq(f1.domain, f2.domain));

	/* one response: only the domain value changes */
	edit(domain, "\"See you soon.\"", "\"See you!\"");
	fps f3 = project_fps(dir);
	CU_ASSERT(train_fp_eq(f2.nlu, f3.nlu));
	CU_ASSERT(train_fp_eq(f2.stories, f3.stories));
	CU_ASSERT(!train_fp_eq(f2.domain, f3.domain));

	/* comments, blank lines, key order and quoting are not content */
	edit(nlu, "nlu:\n", "# a comment\n\nnlu:\n");
	edit(domain, "    - text: \"Goodbye!\"\n      channel: \"web\"\n",
	     "    - channel: web\n      text: Goodbye!\n");
	edit(domain, "        kind: booking\n        ok: true\n", "        ok: true\n        kind: booking\n");
	edit(stories, "stories:\n", "stories:   # all of them\n\n");
	fps f4 = project_fps(dir);
	CU_ASSERT(train_fp_eq(f3.nlu, f4.nlu));
	CU_ASSERT(train_fp_eq(f3.stories, f4.stories));
	CU_ASSERT(train_fp_eq(f3.domain, f4.domain));
}

static void check_decode_refuses_damage(const train_value *v)
{
	const unsigned char *data = train_value_data(v);
	size_t size = train_value_size(v);
	unsigned char *copy = malloc(size + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
	/* every truncation is refused */
	for (size_t n = 0; n < size; n++) {
		void *out = (void *)1;
		train_error e = { 0 };
		memcpy(copy, data, n);
		int rc = train_rasa_decode(train_value_type(v), copy, n, &out, &e);
		CU_ASSERT_EQUAL(rc, TRAIN_ECORRUPT);
		CU_ASSERT_PTR_NULL(out);
	}
	/* flipped bytes never crash (the result may decode, differently) */
	for (size_t i = 0; i < size; i += 3) {
		memcpy(copy, data, size);
		copy[i] ^= 0x5a;
		void *out = NULL;
		int rc = train_rasa_decode(train_value_type(v), copy, size, &out, NULL);
		if (rc == TRAIN_OK) {
			if (strcmp(train_value_type(v), TRAIN_RASA_NLU_TYPE) == 0)
				train_rasa_nlu_free(out);
			else if (strcmp(train_value_type(v), TRAIN_RASA_DOMAIN_TYPE) == 0)
				train_rasa_domain_free(out);
			else
				train_rasa_stories_free(out);
		} else {
			CU_ASSERT_PTR_NULL(out);
		}
	}
	/* a trailing byte is refused too */
	memcpy(copy, data, size);
	copy[size] = 0;
	void *out = NULL;
	CU_ASSERT_EQUAL(train_rasa_decode(train_value_type(v), copy, size + 1, &out, NULL), TRAIN_ECORRUPT);
	free(copy);
}

static void test_roundtrip(void)
{
	train_rasa_project *p = load_dir(data_path("mini"), NULL, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(p);
	train_value *a = NULL, *a2 = NULL, *b = NULL, *b2 = NULL, *c = NULL, *c2 = NULL;
	train_rasa_nlu *nlu = NULL;
	train_rasa_stories *st = NULL;
	train_rasa_domain *dm = NULL;
	train_error e = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_rasa_nlu_to_value(p->nlu, &a, &e), TRAIN_OK);
	CU_ASSERT_STRING_EQUAL(train_value_type(a), TRAIN_RASA_NLU_TYPE);
	CU_ASSERT_EQUAL_FATAL(train_rasa_nlu_from_value(a, &nlu, &e), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(train_rasa_nlu_to_value(nlu, &a2, &e), TRAIN_OK);
	CU_ASSERT_EQUAL(train_value_size(a), train_value_size(a2));
	CU_ASSERT(memcmp(train_value_data(a), train_value_data(a2), train_value_size(a)) == 0);
	CU_ASSERT_EQUAL(nlu->n_messages, p->nlu->n_messages);
	const train_rasa_message *m = find_msg(nlu, "fly from Berlin to Zürich");
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(m->entities[1].byte_end, 26);
	CU_ASSERT_EQUAL(m->text_chars, 25);
	CU_ASSERT_EQUAL(m->loc.line, 0); /* locations are not content */
	CU_ASSERT_STRING_EQUAL(nlu->synonyms[3].names.v[1], "plant-based");

	CU_ASSERT_EQUAL_FATAL(train_rasa_stories_to_value(p->stories, &b, &e), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(train_rasa_stories_from_value(b, &st, &e), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(train_rasa_stories_to_value(st, &b2, &e), TRAIN_OK);
	CU_ASSERT(train_fp_eq(train_value_fp(b), train_value_fp(b2)));
	CU_ASSERT_EQUAL(st->n_stories, 4);
	CU_ASSERT_EQUAL(st->n_rules, 4);
	CU_ASSERT_EQUAL(st->items[5].events[1].n_sub, 2);

	CU_ASSERT_EQUAL_FATAL(train_rasa_domain_to_value(p->domain, &c, &e), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(train_rasa_domain_from_value(c, &dm, &e), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(train_rasa_domain_to_value(dm, &c2, &e), TRAIN_OK);
	CU_ASSERT(train_fp_eq(train_value_fp(c), train_value_fp(c2)));
	CU_ASSERT_EQUAL(dm->slots[2].max_value, 20.0);
	CU_ASSERT_STRING_EQUAL(dm->responses[0].variations[0].buttons[0].title, "Yes please");

	/* the trackers of decoded stories are the same */
	train_rasa_trackers *t1 = NULL, *t2 = NULL;
	CU_ASSERT_EQUAL(train_rasa_trackers_generate(p->stories, NULL, &t1, NULL, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(train_rasa_trackers_generate(st, NULL, &t2, NULL, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(t1->n_items, t2->n_items);
	train_rasa_trackers_free(t1);
	train_rasa_trackers_free(t2);

	/* a value of another type is refused */
	train_rasa_nlu *wrong = (train_rasa_nlu *)1;
	CU_ASSERT_EQUAL(train_rasa_nlu_from_value(c, &wrong, &e), TRAIN_ECORRUPT);
	CU_ASSERT_PTR_NULL(wrong);
	void *any = NULL;
	CU_ASSERT_EQUAL(train_rasa_decode("text/plain", "x", 1, &any, NULL), TRAIN_ECORRUPT);

	check_decode_refuses_damage(a);
	check_decode_refuses_damage(b);
	check_decode_refuses_damage(c);

	train_value_unref(a);
	train_value_unref(a2);
	train_value_unref(b);
	train_value_unref(b2);
	train_value_unref(c);
	train_value_unref(c2);
	train_rasa_nlu_free(nlu);
	train_rasa_stories_free(st);
	train_rasa_domain_free(dm);
	train_rasa_project_free(p);
}

/* ------------------------------------------------------------------------
 * Broken projects: tests/data/rasa/bad/<case>/ and its `expected`.
 */

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replace every occurrence of `prefix` in `s` by "". */
static void strip_prefix(char *s, const char *prefix)
{
	size_t pl = strlen(prefix);
	char *at;
	while (pl && (at = strstr(s, prefix)))
		memmove(at, at + pl, strlen(at + pl) + 1);
}

static void test_bad_cases(void)
{
	char root[1100];
	snprintf(root, sizeof root, "%s", data_path("bad"));
	DIR *dir = opendir(root);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
	char *names[256];
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(dir)) && n < 256)
		if (de->d_name[0] != '.')
			names[n++] = strdup(de->d_name);
	closedir(dir);
	qsort(names, n, sizeof *names, cmp_names);
	CU_ASSERT(n >= 50);
	for (size_t i = 0; i < n; i++) {
		char casedir[1400], expfile[1500], prefix[1500];
		snprintf(casedir, sizeof casedir, "%s/%s", root, names[i]);
		snprintf(expfile, sizeof expfile, "%s/expected", casedir);
		snprintf(prefix, sizeof prefix, "%s/", casedir);
		FILE *f = fopen(expfile, "r");
		if (!f) {
			fprintf(stderr, "bad case %s has no expected file\n", names[i]);
			CU_FAIL("no expected file");
			continue;
		}
		train_rasa_diags *d = NULL;
		train_rasa_diags_create(&d);
		int rc;
		train_rasa_project *p = load_dir(casedir, d, &rc);
		char want[2048];
		bool want_error = false;
		while (fgets(want, sizeof want, f)) {
			want[strcspn(want, "\n")] = '\0';
			if (!want[0])
				continue;
			want_error |= strstr(want, ": error: ") != NULL;
			bool found = false;
			for (size_t k = 0; k < train_rasa_diags_len(d) && !found; k++) {
				char got[2048];
				train_rasa_diag_format(train_rasa_diags_at(d, k), got, sizeof got);
				strip_prefix(got, prefix);
				found = strcmp(got, want) == 0;
			}
			if (!found) {
				fprintf(stderr, "bad case %s: expected\n  %s\nbut got:\n", names[i], want);
				for (size_t k = 0; k < train_rasa_diags_len(d); k++) {
					char got[2048];
					train_rasa_diag_format(train_rasa_diags_at(d, k), got, sizeof got);
					strip_prefix(got, prefix);
					fprintf(stderr, "  %s\n", got);
				}
			}
			CU_ASSERT(found);
		}
		fclose(f);
		if (want_error) {
			CU_ASSERT(rc != TRAIN_OK);
			CU_ASSERT_PTR_NULL(p);
			CU_ASSERT_EQUAL(train_rasa_diags_count(d, TRAIN_RASA_ERROR), 1);
		} else {
			if (rc != TRAIN_OK)
				fprintf(stderr, "bad case %s: a warning case failed to load\n", names[i]);
			CU_ASSERT_EQUAL(rc, TRAIN_OK);
			CU_ASSERT_EQUAL(train_rasa_diags_count(d, TRAIN_RASA_ERROR), 0);
		}
		train_rasa_project_free(p);
		train_rasa_diags_destroy(d);
		free(names[i]);
	}
}

/* ------------------------------------------------------------------------
 * Entry points and smaller behaviour.
 */

static void test_parse_api(void)
{
	train_rasa_nlu *nlu = NULL;
	train_error e = { 0 };
	/* from memory, no diagnostics wanted, not NUL-terminated */
	const char text[] = "nlu:\n- intent: x\n  examples: |\n    - [a](b) c\nTRAILING";
	CU_ASSERT_EQUAL_FATAL(train_rasa_nlu_parse(text, sizeof text - 1 - 8, "m.yml", &nlu, NULL, &e), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(nlu->n_messages, 1);
	CU_ASSERT_STRING_EQUAL(nlu->messages[0].text, "a c");
	CU_ASSERT_STRING_EQUAL(nlu->messages[0].loc.file, "m.yml");
	train_rasa_nlu_free(nlu);
	/* empty text: an empty result */
	CU_ASSERT_EQUAL(train_rasa_nlu_parse("", 0, NULL, &nlu, NULL, &e), TRAIN_OK);
	CU_ASSERT_EQUAL(nlu->n_messages, 0);
	train_rasa_nlu_free(nlu);
	/* binary junk: an error, not a crash */
	const char junk[] = "\x01\xff\xfe[{]}\x00\x80";
	nlu = (train_rasa_nlu *)1;
	CU_ASSERT(train_rasa_nlu_parse(junk, sizeof junk - 1, "j", &nlu, NULL, &e) != TRAIN_OK);
	CU_ASSERT_PTR_NULL(nlu);
	/* NULL arguments */
	CU_ASSERT_EQUAL(train_rasa_nlu_parse(NULL, 3, "x", &nlu, NULL, &e), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(train_rasa_domain_parse("x", 1, "x", NULL, NULL, &e), TRAIN_EINVAL);
	/* a top level that is not a map, read as one kind: an error */
	train_rasa_domain *dm = NULL;
	CU_ASSERT_EQUAL(train_rasa_domain_parse("- a\n", 4, "d.yml", &dm, NULL, &e), TRAIN_EPARSE);
	CU_ASSERT_EQUAL(e.line, 1);
	/* a stories parse ignores the NLU part of a file with both */
	const char both[] = "version: \"3.1\"\nnlu:\n- intent: a\n  examples: |\n    - a\nstories:\n"
	                    "- story: s\n  steps:\n  - intent: a\n";
	train_rasa_stories *s = NULL;
	CU_ASSERT_EQUAL(train_rasa_stories_parse(both, strlen(both), "b.yml", &s, NULL, &e), TRAIN_OK);
	CU_ASSERT_EQUAL(s->n_items, 1);
	train_rasa_stories_free(s);
}

/* Anchors, aliases, merge keys and ${VAR} as Rasa's YAML reader takes them. */
static void test_anchors_env(void)
{
	train_error e = { 0 };
	setenv("TRAIN_TEST_BOT_NAME", "Sara", 1);
	const char dom[] = "version: \"3.1\"\nintents: [greet]\nentities: [city]\nslots:\n"
	                   "  home: &city_slot\n    type: text\n    mappings:\n    - type: from_entity\n"
	                   "      entity: city\n  work:\n    <<: *city_slot\n    influence_conversation: false\n"
	                   "responses:\n  utter_greet:\n  - text: Hello from ${TRAIN_TEST_BOT_NAME}!\n"
	                   "  utter_bye:\n  - text: \"${TRAIN_TEST_BOT_NAME} stays\"\n";
	train_rasa_domain *d = NULL;
	CU_ASSERT_EQUAL_FATAL(train_rasa_domain_parse(dom, sizeof dom - 1, "domain.yml", &d, NULL, &e), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(d->n_slots, 2);
	CU_ASSERT_STRING_EQUAL(d->slots[1].name, "work");
	CU_ASSERT_EQUAL(d->slots[1].type, d->slots[0].type);
	CU_ASSERT_FALSE(d->slots[1].influence_conversation);
	CU_ASSERT_TRUE(d->slots[0].influence_conversation);
	CU_ASSERT_STRING_EQUAL(d->slots[1].mappings, d->slots[0].mappings);
	CU_ASSERT_EQUAL_FATAL(d->n_responses, 2);
	CU_ASSERT_STRING_EQUAL(d->responses[0].variations[0].text, "Hello from Sara!");
	CU_ASSERT_STRING_EQUAL(d->responses[1].variations[0].text, "${TRAIN_TEST_BOT_NAME} stays");
	train_rasa_domain_free(d);
	const char st[] = "version: \"3.1\"\nstories:\n- story: one\n  steps: &steps\n  - intent: greet\n"
	                  "  - action: utter_greet\n- story: two\n  steps: *steps\n";
	train_rasa_stories *s = NULL;
	CU_ASSERT_EQUAL_FATAL(train_rasa_stories_parse(st, sizeof st - 1, "stories.yml", &s, NULL, &e), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(s->n_items, 2);
	CU_ASSERT_EQUAL(s->items[1].n_events, 2);
	CU_ASSERT_STRING_EQUAL(s->items[1].events[1].name, "utter_greet");
	train_rasa_stories_free(s);
	/* an NLU file with an anchor goes the libyaml way and reads the same */
	const char nl[] = "version: \"3.1\"\nnlu:\n- intent: greet\n  examples: &ex |\n    - hi\n    - hello\n"
	                  "- intent: hello\n  examples: *ex\n";
	train_rasa_nlu *n = NULL;
	CU_ASSERT_EQUAL_FATAL(train_rasa_nlu_parse(nl, sizeof nl - 1, "nlu.yml", &n, NULL, &e), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(n->n_messages, 4);
	CU_ASSERT_STRING_EQUAL(n->messages[3].text, "hello");
	CU_ASSERT_STRING_EQUAL(n->messages[3].intent, "hello");
	train_rasa_nlu_free(n);
	unsetenv("TRAIN_TEST_BOT_NAME");
}

/* `user: /intent{"entity": "value"}` in stories: entities from the JSON, as Rasa unpacks them. */
static void test_user_intent_text(void)
{
	train_error e = { 0 };
	const char st[] = "version: \"3.1\"\nstories:\n- story: s\n  steps:\n  - intent: greet\n"
	                  "    user: '/greet@0.9{\"name\": \"Zoë\", \"city\": [\"Paris\", \"Rome\"], \"n\": 2}'\n"
	                  "  - action: utter_greet\n  - user: /bye\n  - action: utter_bye\n";
	train_rasa_stories *s = NULL;
	train_rasa_diags *d = NULL;
	train_rasa_diags_create(&d);
	CU_ASSERT_EQUAL_FATAL(train_rasa_stories_parse(st, sizeof st - 1, "stories.yml", &s, d, &e), TRAIN_OK);
	CU_ASSERT_EQUAL(train_rasa_diags_len(d), 0);
	CU_ASSERT_EQUAL_FATAL(s->n_items, 1);
	const train_rasa_event *ev = &s->items[0].events[0];
	CU_ASSERT_STRING_EQUAL(ev->name, "greet");
	CU_ASSERT_STRING_EQUAL(ev->text, "/greet@0.9{\"name\": \"Zoë\", \"city\": [\"Paris\", \"Rome\"], \"n\": 2}");
	CU_ASSERT_EQUAL_FATAL(ev->n_entities, 4);
	CU_ASSERT_STRING_EQUAL(ev->entities[0].entity, "name");
	CU_ASSERT_STRING_EQUAL(ev->entities[0].value, "Zoë");
	CU_ASSERT_STRING_EQUAL(ev->entities[1].value, "Paris");
	CU_ASSERT_STRING_EQUAL(ev->entities[2].entity, "city");
	CU_ASSERT_STRING_EQUAL(ev->entities[2].value, "Rome");
	CU_ASSERT_STRING_EQUAL(ev->entities[3].value, "2");
	/* the span is the JSON text, in code points and bytes */
	CU_ASSERT_EQUAL(ev->entities[0].start, 10);
	CU_ASSERT_EQUAL(ev->entities[0].end, 60);
	CU_ASSERT_EQUAL(ev->entities[0].byte_start, 10);
	CU_ASSERT_EQUAL(ev->entities[0].byte_end, 61);
	/* no intent key: an end-to-end turn with its text, as in Rasa */
	ev = &s->items[0].events[2];
	CU_ASSERT_PTR_NULL(ev->name);
	CU_ASSERT_STRING_EQUAL(ev->text, "/bye");
	CU_ASSERT_EQUAL(ev->n_entities, 0);
	train_rasa_stories_free(s);
	train_rasa_diags_destroy(d);
}

static void test_classify(void)
{
	int k = -1;
	CU_ASSERT_EQUAL(train_rasa_classify("nlu: []\nresponses: {}\n", 22, "a", &k, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(k, TRAIN_RASA_FILE_NLU);
	CU_ASSERT_EQUAL(train_rasa_classify("responses: {}\n", 14, "a", &k, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(k, TRAIN_RASA_FILE_DOMAIN);
	CU_ASSERT_EQUAL(train_rasa_classify("rules: []\nstories: []\n", 22, "a", &k, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(k, TRAIN_RASA_FILE_RULES | TRAIN_RASA_FILE_STORIES);
	CU_ASSERT_EQUAL(train_rasa_classify("nlu: []\nintents: []\n", 20, "a", &k, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(k, TRAIN_RASA_FILE_NLU | TRAIN_RASA_FILE_DOMAIN);
	CU_ASSERT_EQUAL(train_rasa_classify("pipeline: []\n", 13, "a", &k, NULL), TRAIN_OK);
	CU_ASSERT_EQUAL(k, 0);
	CU_ASSERT_EQUAL(train_rasa_classify("a: [\n", 5, "a", &k, NULL), TRAIN_EPARSE);
}

/* A Rasa 2 domain: what Rasa 2 allowed is read; a Rasa 3 file refuses it. */
static void test_rasa2_domain(void)
{
	const char d2[] =
		"version: \"2.0\"\n"
		"slots:\n"
		"  old:\n"
		"    type: unfeaturized\n"
		"    auto_fill: false\n"
		"  name:\n"
		"    type: rasa.shared.core.slots.TextSlot\n"
		"forms:\n"
		"  f:\n"
		"    required_slots:\n"
		"      name:\n"
		"      - type: from_text\n";
	train_rasa_domain *dm = NULL;
	train_rasa_diags *d = NULL;
	train_rasa_diags_create(&d);
	train_error e = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_rasa_domain_parse(d2, sizeof d2 - 1, "d2.yml", &dm, d, &e), TRAIN_OK);
	CU_ASSERT_EQUAL(dm->slots[0].type, TRAIN_RASA_SLOT_ANY);
	CU_ASSERT(!dm->slots[0].influence_conversation);
	CU_ASSERT_EQUAL(dm->slots[1].type, TRAIN_RASA_SLOT_TEXT);
	CU_ASSERT_PTR_NULL(dm->slots[1].mappings);
	CU_ASSERT_STRING_EQUAL(dm->forms[0].required_slots.v[0], "name");
	CU_ASSERT_STRING_EQUAL(dm->forms[0].mappings, "{\"name\":[{\"type\":\"from_text\"}]}");
	/* one warning: the version */
	CU_ASSERT_EQUAL(train_rasa_diags_len(d), 1);
	CU_ASSERT(strstr(train_rasa_diags_at(d, 0)->text, "older than \"3.1\"") != NULL);
	train_rasa_domain_free(dm);
	train_rasa_diags_destroy(d);
	/* the same as 3.x: unfeaturized is refused */
	char d3[sizeof d2];
	memcpy(d3, d2, sizeof d2);
	memcpy(d3 + 10, "3.1", 3);
	CU_ASSERT_EQUAL(train_rasa_domain_parse(d3, sizeof d3 - 1, "d3.yml", &dm, NULL, &e), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(e.line, 5);
	CU_ASSERT(strstr(e.text, "'auto_fill' of slot 'old' was removed in Rasa 3") != NULL);
	/* without auto_fill, the type is refused */
	const char d4[] = "version: \"3.1\"\nslots:\n  old:\n    type: unfeaturized\n";
	CU_ASSERT_EQUAL(train_rasa_domain_parse(d4, sizeof d4 - 1, "d4.yml", &dm, NULL, &e), TRAIN_EINVAL);
	CU_ASSERT_EQUAL(e.line, 4);
	CU_ASSERT(strstr(e.text, "removed in Rasa 3") != NULL);
}

static void test_loaders(void)
{
	/* per-kind loaders take only their files; a domain folder merges */
	const char *paths[] = { data_path("mini") };
	char mini[1100];
	snprintf(mini, sizeof mini, "%s", paths[0]);
	paths[0] = mini;
	train_rasa_nlu *nlu = NULL;
	train_rasa_domain *dm = NULL;
	train_rasa_stories *st = NULL;
	train_error e = { 0 };
	CU_ASSERT_EQUAL(train_rasa_nlu_load(paths, 1, &nlu, NULL, &e), TRAIN_OK);
	CU_ASSERT_EQUAL(train_rasa_domain_load(paths, 1, &dm, NULL, &e), TRAIN_OK);
	CU_ASSERT_EQUAL(train_rasa_stories_load(paths, 1, &st, NULL, &e), TRAIN_OK);
	CU_ASSERT_EQUAL(nlu ? nlu->n_messages : 0, 22);
	CU_ASSERT_EQUAL(dm ? dm->n_intents : 0, 8);
	CU_ASSERT_EQUAL(st ? st->n_items : 0, 8);
	train_rasa_nlu_free(nlu);
	train_rasa_domain_free(dm);
	train_rasa_stories_free(st);

	char dup[1100];
	snprintf(dup, sizeof dup, "%s", data_path("bad/domain_folder_duplicates"));
	const char *dp[] = { dup };
	train_rasa_diags *d = NULL;
	train_rasa_diags_create(&d);
	CU_ASSERT_EQUAL_FATAL(train_rasa_domain_load(dp, 1, &dm, d, &e), TRAIN_OK);
	CU_ASSERT_EQUAL(dm->n_intents, 2);
	CU_ASSERT_EQUAL(dm->n_responses, 1);
	CU_ASSERT_STRING_EQUAL(dm->responses[0].variations[0].text, "Hi"); /* the first stays */
	CU_ASSERT_EQUAL(train_rasa_diags_count(d, TRAIN_RASA_WARNING), 2);
	train_rasa_domain_free(dm);
	train_rasa_diags_destroy(d);

	/* a path that does not exist */
	const char *none[] = { "/nonexistent/rasa/project" };
	train_rasa_project *p = (train_rasa_project *)1;
	CU_ASSERT_EQUAL(train_rasa_project_load(none, 1, &p, NULL, &e), -ENOENT);
	CU_ASSERT_PTR_NULL(p);
	CU_ASSERT_STRING_EQUAL(e.file, "/nonexistent/rasa/project");
	CU_ASSERT_EQUAL(train_rasa_project_load(NULL, 1, &p, NULL, &e), TRAIN_EINVAL);
	/* no paths: an empty project */
	CU_ASSERT_EQUAL_FATAL(train_rasa_project_load(NULL, 0, &p, NULL, &e), TRAIN_OK);
	CU_ASSERT_EQUAL(p->nlu->n_messages + p->stories->n_items + p->domain->n_intents, 0);
	train_rasa_project_free(p);
}

static void test_diags(void)
{
	train_rasa_diags *d = NULL;
	CU_ASSERT_EQUAL_FATAL(train_rasa_diags_create(&d), TRAIN_OK);
	CU_ASSERT_EQUAL(train_rasa_diags_add(d, TRAIN_RASA_WARNING, "a.yml", 3, 4, "x %d", 1), TRAIN_OK);
	CU_ASSERT_EQUAL(train_rasa_diags_add(d, TRAIN_RASA_ERROR, "a.yml", 3, 0, "y"), TRAIN_OK);
	CU_ASSERT_EQUAL(train_rasa_diags_add(d, TRAIN_RASA_WARNING, NULL, 0, 0, "z"), TRAIN_OK);
	CU_ASSERT_EQUAL(train_rasa_diags_add(d, TRAIN_RASA_WARNING, "b.yml", 0, 0, "w"), TRAIN_OK);
	CU_ASSERT_EQUAL(train_rasa_diags_add(d, (train_rasa_severity)7, "b", 0, 0, "w"), TRAIN_EINVAL);
	char buf[128];
	CU_ASSERT_STRING_EQUAL(train_rasa_diag_format(train_rasa_diags_at(d, 0), buf, sizeof buf),
	                       "a.yml:3:4: warning: x 1");
	CU_ASSERT_STRING_EQUAL(train_rasa_diag_format(train_rasa_diags_at(d, 1), buf, sizeof buf),
	                       "a.yml:3: error: y");
	CU_ASSERT_STRING_EQUAL(train_rasa_diag_format(train_rasa_diags_at(d, 2), buf, sizeof buf),
	                       "warning: z");
	CU_ASSERT_STRING_EQUAL(train_rasa_diag_format(train_rasa_diags_at(d, 3), buf, sizeof buf),
	                       "b.yml: warning: w");
	CU_ASSERT_EQUAL(train_rasa_diags_count(d, TRAIN_RASA_WARNING), 3);
	CU_ASSERT_EQUAL(train_rasa_diags_count(d, TRAIN_RASA_ERROR), 1);
	CU_ASSERT_PTR_NULL(train_rasa_diags_at(d, 4));
	for (int i = 0; i < TRAIN_RASA_MAX_DIAGS; i++)
		train_rasa_diags_add(d, TRAIN_RASA_WARNING, NULL, 0, 0, "more");
	CU_ASSERT_EQUAL(train_rasa_diags_len(d), TRAIN_RASA_MAX_DIAGS);
	CU_ASSERT_EQUAL(train_rasa_diags_dropped(d), 4);
	CU_ASSERT_EQUAL(train_rasa_diags_count(d, TRAIN_RASA_WARNING), 3 + TRAIN_RASA_MAX_DIAGS);
	train_rasa_diags_destroy(d);
	train_rasa_diags_destroy(NULL);
}

/* Annotation corner cases, matched the way Rasa's regular expression matches. */
static void test_annotations(void)
{
	static const struct {
		const char *example, *text;
		size_t n_entities;
		unsigned start, end;
		const char *entity, *value;
	} cases[] = {
		{ "[a](b)", "a", 1, 0, 1, "b", "a" },
		{ "x [y z](t:v w) q", "x y z q", 1, 2, 5, "t", "v w" },
		{ "[a](b:)", "[a](b:)", 0, 0, 0, NULL, NULL },          /* empty value: no match */
		{ "[](b)", "[](b)", 0, 0, 0, NULL, NULL },              /* empty text */
		{ "[a [b](c)", "a [b", 1, 0, 4, "c", "a [b" },          /* text up to the first ] */
		{ "é [ü](x)", "é ü", 1, 2, 3, "x", "ü" },               /* code points */
		{ "[a]{\"entity\": \"e\", \"x\": 1}", "a", 1, 0, 1, "e", "a" }, /* extra keys allowed */
		{ "[a][]", "a", 0, 0, 0, NULL, NULL },                  /* an empty list: markup goes */
		{ "[a](b)[c](d)", "ac", 2, 0, 1, "b", "a" },
		{ "(b) [a]", "(b) [a]", 0, 0, 0, NULL, NULL },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char yml[512];
		snprintf(yml, sizeof yml, "nlu:\n- intent: t\n  examples:\n  - text: '%s'\n", cases[i].example);
		train_rasa_nlu *nlu = NULL;
		train_error e = { 0 };
		int rc = train_rasa_nlu_parse(yml, strlen(yml), "a.yml", &nlu, NULL, &e);
		CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
		CU_ASSERT_EQUAL_FATAL(nlu->n_messages, 1);
		const train_rasa_message *m = &nlu->messages[0];
		if (strcmp(m->text, cases[i].text) != 0)
			fprintf(stderr, "annotation case %zu: '%s' -> '%s'\n", i, cases[i].example, m->text);
		CU_ASSERT_STRING_EQUAL(m->text, cases[i].text);
		CU_ASSERT_EQUAL(m->n_entities, cases[i].n_entities);
		if (cases[i].n_entities && m->n_entities) {
			CU_ASSERT_EQUAL(m->entities[0].start, cases[i].start);
			CU_ASSERT_EQUAL(m->entities[0].end, cases[i].end);
			CU_ASSERT_STRING_EQUAL(m->entities[0].entity, cases[i].entity);
			CU_ASSERT_STRING_EQUAL(m->entities[0].value, cases[i].value);
		}
		train_rasa_nlu_free(nlu);
	}
}

/* ------------------------------------------------------------------------
 * The pre-scan of `examples: |` blocks (rasa_data.c) must read exactly
 * what libyaml reads: the same file with a comment after each '|' (which
 * turns the pre-scan off) gives the same result, locations included.
 */

typedef struct dump {
	char *p;
	size_t len, cap;
} dump;

static void dump_add(dump *b, const char *fmt, ...) TRAIN_PRINTF(2, 3);
static void dump_add(dump *b, const char *fmt, ...)
{
	va_list ap, aq;
	va_start(ap, fmt);
	va_copy(aq, ap);
	int n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n >= 0) {
		if (b->len + (size_t)n + 1 > b->cap) {
			b->cap = (b->len + (size_t)n + 1) * 2;
			b->p = realloc(b->p, b->cap);
			if (!b->p)
				abort();
		}
		vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
		b->len += (size_t)n;
	}
	va_end(ap);
}

/* Everything read, locations and diagnostics included, as text. */
static char *dump_nlu(const train_rasa_nlu *nlu, const train_rasa_diags *d)
{
	dump b = { 0 };
	for (size_t i = 0; i < nlu->n_messages; i++) {
		const train_rasa_message *m = &nlu->messages[i];
		dump_add(&b, "M %s|%s|%s|%s|%s @%u:%u\n", m->text, m->intent, m->response_key ? m->response_key : "-",
		         m->metadata ? m->metadata : "-", m->intent_metadata ? m->intent_metadata : "-",
		         m->loc.line, m->loc.col);
		for (size_t k = 0; k < m->n_entities; k++)
			dump_add(&b, " E %s=%s %u-%u\n", m->entities[k].entity, m->entities[k].value,
			         m->entities[k].start, m->entities[k].end);
	}
	for (size_t i = 0; i < nlu->n_synonyms; i++)
		for (size_t k = 0; k < nlu->synonyms[i].names.n; k++)
			dump_add(&b, "S %s<-%s\n", nlu->synonyms[i].value, nlu->synonyms[i].names.v[k]);
	for (size_t i = 0; i < nlu->n_lookups; i++)
		for (size_t k = 0; k < nlu->lookups[i].items.n; k++)
			dump_add(&b, "L %s:%s\n", nlu->lookups[i].name, nlu->lookups[i].items.v[k]);
	for (size_t i = 0; i < train_rasa_diags_len(d); i++) {
		char line[2048];
		dump_add(&b, "D %s\n", train_rasa_diag_format(train_rasa_diags_at(d, i), line, sizeof line));
	}
	return b.p ? b.p : strdup("");
}

static char *parse_dump(const char *text)
{
	train_rasa_nlu *nlu = NULL;
	train_rasa_diags *d = NULL;
	train_rasa_diags_create(&d);
	train_error e = { 0 };
	int rc = train_rasa_nlu_parse(text, strlen(text), "big.yml", &nlu, d, &e);
	char *s;
	if (rc) {
		s = malloc(700);
		snprintf(s, 700, "error %d %u:%u %s", rc, e.line, e.col, e.text);
	} else {
		s = dump_nlu(nlu, d);
	}
	train_rasa_nlu_free(nlu);
	train_rasa_diags_destroy(d);
	return s;
}

/* `text` with " # off" after every block indicator line "examples: |..." */
static char *without_prescan(const char *text)
{
	size_t n = strlen(text);
	char *out = malloc(n * 2 + 1);
	size_t o = 0;
	for (const char *l = text; *l;) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);
		memcpy(out + o, l, len);
		o += len;
		if (len && (l[len - 1] == '|' || ((l[len - 1] == '-' || l[len - 1] == '+') && len > 1 &&
		                                  l[len - 2] == '|')))
			o += (size_t)sprintf(out + o, " # off");
		if (e)
			out[o++] = '\n';
		l = e ? e + 1 : l + len;
	}
	out[o] = '\0';
	return out;
}

static void check_same(const char *text, const char *what)
{
	char *off = without_prescan(text);
	CU_ASSERT_FATAL(strcmp(off, text) != 0);
	char *a = parse_dump(text), *b = parse_dump(off);
	if (strcmp(a, b) != 0) {
		size_t i = 0, line = 0;
		while (a[i] && a[i] == b[i])
			i++;
		while (i > 0 && a[i - 1] != '\n')
			i--;
		for (size_t k = 0; k < i; k++)
			line += a[k] == '\n';
		fprintf(stderr, "%s: the pre-scan reads differently from dump line %zu:\n--- with\n%.400s\n"
		        "--- without\n%.400s\n", what, line + 1, a + i, b + i);
	}
	CU_ASSERT_STRING_EQUAL(a, b);
	free(a);
	free(b);
	free(off);
}

static void test_prescan(void)
{
	dump t = { 0 };
	dump_add(&t, "version: \"3.1\"\nnlu:\n");
	for (int i = 0; i < 40; i++) {
		static const char *const chomp[] = { "", "-", "+" };
		dump_add(&t, "- intent: intent_%d\n", i);
		if (i % 7 == 3)
			dump_add(&t, "  metadata:\n    examples: |\n      kept as metadata %d\n\n", i);
		dump_add(&t, "  examples: |%s\n", chomp[i % 3]);
		int ind = 4 + (i % 3) * 2;
		for (int k = 0; k < 8; k++) {
			dump_add(&t, "%*s- example %d of [intent](thing) %d, Zür [ich]{\"entity\": \"city\"}\t \n",
			         ind, "", k, i);
			if (k == 2)
				dump_add(&t, "\n"); /* a blank line inside */
			if (k == 4)
				dump_add(&t, "%*s\n", ind + 3, ""); /* spaces beyond the indentation */
			if (k == 5)
				dump_add(&t, "%*s\n", ind - 2, ""); /* fewer spaces */
			if (k == 6 && i % 5 == 0)
				dump_add(&t, "%*snot a dash line %d\n", ind, "", i);
			if (k == 7 && i % 4 == 0)
				dump_add(&t, "%*s  - deeper, so not an example\n", ind, "");
		}
		if (i % 6 == 5)
			dump_add(&t, "\n\n"); /* trailing blank lines */
	}
	dump_add(&t, "- synonym: vegan\n  examples: |\n    - plant based\n    - plant-based\n");
	dump_add(&t, "- lookup: city\n  examples: |\n    - Rome\n    - Lima");  /* no final LF */
	CU_ASSERT(t.len > 4096);
	check_same(t.p, "blocks");

	/* a header line inside a quoted scalar: the check fails and libyaml
	 * reads the original (the comparison above would edit the string) */
	dump q = { 0 };
	dump_add(&q, "%s", t.p);
	dump_add(&q, "\n- intent: quoted\n  metadata: \"a\n  examples: |\n    - not a block\n  b\"\n"
	             "  examples: |\n    - real one\n");
	char *qd = parse_dump(q.p);
	CU_ASSERT(strstr(qd, "M real one|quoted|-|-|\"a examples: | - not a block b\" @") != NULL);
	char *td = parse_dump(t.p);
	CU_ASSERT(strncmp(qd, td, strcspn(td, "S")) == 0); /* the rest reads the same */
	free(qd);
	free(td);

	/* something libyaml refuses inside a block: the same error either way */
	dump bad = { 0 };
	dump_add(&bad, "%s", t.p);
	dump_add(&bad, "\n- intent: bad\n  examples: |\n    - a control char \x01 here\n");
	check_same(bad.p, "control");
	dump tab = { 0 };
	dump_add(&tab, "%s", t.p);
	dump_add(&tab, "\n- intent: tab\n  examples: |\n      - six\n   \t- tab in the indentation\n");
	check_same(tab.p, "tab");
	free(t.p);
	free(q.p);
	free(bad.p);
	free(tab.p);
}

/* ------------------------------------------------------------------------
 * The NLU fast path (rasa_nlu.c) must read exactly what the libyaml path
 * reads, places, diagnostics and errors included, on every file it takes;
 * and it must take the common shapes (or it is no use).
 */

static char *dump_full(int rc, const train_error *e, const train_rasa_nlu *nlu,
                       const train_rasa_diags *d)
{
	dump b = { 0 };
	dump_add(&b, "rc %d", rc);
	if (rc)
		dump_add(&b, " %s:%u:%u %s", e->file, e->line, e->col, e->text);
	dump_add(&b, "\n");
	for (size_t i = 0; nlu && i < nlu->n_messages; i++) {
		const train_rasa_message *m = &nlu->messages[i];
		dump_add(&b, "M [%s] %u/%u/%zu|%s|%s|%s|%s @%s:%u:%u\n", m->text, m->text_len, m->text_chars,
		         strlen(m->text), m->intent, m->response_key ? m->response_key : "-",
		         m->metadata ? m->metadata : "-", m->intent_metadata ? m->intent_metadata : "-",
		         m->loc.file, m->loc.line, m->loc.col);
		for (size_t k = 0; k < m->n_entities; k++) {
			const train_rasa_entity *en = &m->entities[k];
			dump_add(&b, " E %s=%s r=%s g=%s %u-%u %u-%u\n", en->entity, en->value,
			         en->role ? en->role : "-", en->group ? en->group : "-", en->start, en->end,
			         en->byte_start, en->byte_end);
		}
	}
	for (size_t i = 0; nlu && i < nlu->n_synonyms; i++) {
		dump_add(&b, "S %s @%s:%u:%u\n", nlu->synonyms[i].value, nlu->synonyms[i].loc.file,
		         nlu->synonyms[i].loc.line, nlu->synonyms[i].loc.col);
		for (size_t k = 0; k < nlu->synonyms[i].names.n; k++)
			dump_add(&b, " <- %s\n", nlu->synonyms[i].names.v[k]);
	}
	const train_rasa_named_list *lists[2] = { nlu ? nlu->regexes : NULL, nlu ? nlu->lookups : NULL };
	size_t counts[2] = { nlu ? nlu->n_regexes : 0, nlu ? nlu->n_lookups : 0 };
	for (int t = 0; t < 2; t++)
		for (size_t i = 0; i < counts[t]; i++) {
			dump_add(&b, "%c %s @%s:%u:%u\n", "RL"[t], lists[t][i].name, lists[t][i].loc.file,
			         lists[t][i].loc.line, lists[t][i].loc.col);
			for (size_t k = 0; k < lists[t][i].items.n; k++)
				dump_add(&b, " - %s\n", lists[t][i].items.v[k]);
		}
	dump_add(&b, "responses %zu\n", nlu ? nlu->n_responses : 0);
	for (size_t i = 0; i < train_rasa_diags_len(d); i++) {
		char line[2048];
		dump_add(&b, "D %s\n", train_rasa_diag_format(train_rasa_diags_at(d, i), line, sizeof line));
	}
	return b.p;
}

/* how: 0 train_rasa_nlu_parse, 1 rasa_nlu_parse_kept, 2 a file loaded */
static char *read_dump(const char *text, int fast, int how)
{
	train_rasa_nlu *nlu = NULL;
	train_rasa_diags *d = NULL;
	train_rasa_diags_create(&d);
	train_error e = { 0 };
	int rc, was = rasa_nlu_fast;
	rasa_nlu_fast = fast;
	if (how == 0) {
		rc = train_rasa_nlu_parse(text, strlen(text), "nlu.yml", &nlu, d, &e);
	} else if (how == 1) {
		rc = rasa_nlu_parse_kept(text, strlen(text), "nlu.yml", &nlu, d, &e);
	} else {
		static char path[600];
		if (!path[0])
			snprintf(path, sizeof path, "%s/nlu.yml", test_tmpdir());
		test_write(path, text);
		const char *paths[] = { path };
		rc = train_rasa_nlu_load(paths, 1, &nlu, d, &e);
	}
	rasa_nlu_fast = was;
	char *s = dump_full(rc, &e, nlu, d);
	train_rasa_nlu_free(nlu);
	train_rasa_diags_destroy(d);
	return s;
}

static void check_fast(const char *text, bool takes, const char *what)
{
	bool took = rasa_nlu_fast_accepts(text, strlen(text));
	if (took != takes)
		fprintf(stderr, "%s: the fast path %s it\n", what, took ? "takes" : "does not take");
	CU_ASSERT(took == takes);
	for (int how = 0; how < 3; how++) {
		char *b = read_dump(text, 0, how);
		for (int isa = 1; isa <= 4; isa++) { /* each line scanner the processor has */
			rasa_nlu_fast_isa = isa;
			char *a = read_dump(text, 1, how);
			if (strcmp(a, b) != 0)
				fprintf(stderr, "%s (%d, isa %d): the fast path reads differently:\n--- fast\n%s"
				        "--- libyaml\n%s", what, how, isa, a, b);
			CU_ASSERT_STRING_EQUAL(a, b);
			free(a);
		}
		rasa_nlu_fast_isa = 0;
		free(b);
	}
}

static void test_fast_path(void)
{
	static const struct {
		bool takes;
		const char *text;
	} cases[] = {
		{ true, "version: \"3.1\"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n    - hello there\n" },
		{ true, "nlu:\n  - intent: greet\n    examples: |\n      - hi\n  - intent: bye\n    examples: |-\n"
		        "      - bye\n\n      - ciao   \n\n\n" },
		{ true, "nlu:\n- intent: a\n  examples: |+\n    - x\n\n\nversion: '3.0'\n" },
		{ true, "version: \"2.0\"\nnlu:\n- intent: a\n  examples: |\n    - x" },
		{ true, "version: \"3.7\"\n\n\nnlu:\n\n- intent: a\n\n  examples: |\n      - deeper\n" },
		{ true, "version: \"4.0\"\nnlu:\n- intent: a\n  examples: |\n    - x\n" },
		{ true, "version: \"\"\nnlu:\n- intent: a\n  examples: |\n    - x\n" },
		{ true, "version: \"v3.1.\"\nnlu:\n- intent: a\n  examples: |\n    - x\n" },
		{ true, "nlu:\n- intent: faq/ask_name\n  examples: |\n    - what's your name?\n"
		        "- intent: faq/ask_age\n  examples: |\n    - how old are you\n" },
		{ true, "nlu:\n- intent: book\n  examples: |\n    - fly to [Berlin](city)\n"
		        "    - from [NYC]{\"entity\": \"city\", \"value\": \"New York\", \"role\": \"from\"}\n"
		        "    - [big apple](city:New York) and [ x ](y) and [a [b]](c)\n"
		        "    - [two][{\"entity\": \"a\"}, {\"entity\": \"b\", \"group\": \"1\"}] or [none][]\n"
		        "    - an unclosed [bracket](city and a ](stray)\n"
		        "    - Zürich [Zürich](city) \xf0\x9f\x98\x80 [ok](x)\ttab\n" },
		{ true, "nlu:\n- intent: bad\n  examples: |\n    - [x]{\"entity\": 1}\n" },
		{ true, "nlu:\n- intent: bad\n  examples: |\n    - ok\n    - [x]{nope}\n" },
		{ true, "nlu:\n- intent: a\n  examples: |\n    not a dash line\n    -\n    - \n    -x\n"
		        "      - deeper\n    \t- tab content\n" },
		{ true, "nlu:\n- intent: empty\n  examples: |\n    just text\n- intent: b\n  examples: |\n    - b\n" },
		{ true, "nlu:\n- synonym: New York\n  examples: |\n    - NYC\n    - big apple\n"
		        "- synonym: NY state\n  examples: |\n    - NYC\n"
		        "- regex: zip_code\n  examples: |\n    - [0-9]{5}\n"
		        "- lookup: city.names-2\n  examples: |\n    - Berlin\n    - Lima\n"
		        "- lookup: city.names-2\n  examples: |\n    - Rome\n"
		        "- regex: none\n  examples: |\n    no dashes\n"
		        "- intent: go\n  examples: |\n    - to [NYC](city:New York)\n" },
		{ true, "nlu:\n- intent: Yes_no\n  examples: |\n    - yes\n- intent: nil\n  examples: |\n    - x\n" },
		/* lines across the scanners' 16, 32 and 64 bytes, with what they look for near the edges */
		{ true, "nlu:\n- intent: long\n  examples: |\n    - first\n"
		        "                                  - thirty-four spaces in front, then text\n"
		        "    - 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghij\n"
		        "    - 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ012345678[x](y) z\n"
		        "    - 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg\xc3\xa9\n"
		        "    - 0123456789abcdefghijklmnopqrstuvwxyz\t\x7e]( and more text to pass sixty-four bytes\n"
		        "    - 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijkl"
		        "mnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMN\n"
		        "    - short\n    - 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567" },
		{ false, "nlu:\n- intent: long\n  examples: |\n"
		         "    - 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefghij\x7f\n" },
		{ false, "nlu:\n- intent: long\n  examples: |\n"
		         "    - 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567\xff\n" },
		/* what the fast path leaves to libyaml */
		{ false, "# a comment\nnlu:\n- intent: a\n  examples: |\n    - x\n" },
		{ false, "nlu:\n- intent: a # c\n  examples: |\n    - x\n" },
		{ false, "nlu:\n- intent: a\n  examples: | # c\n    - x\n" },
		{ false, "nlu:\n- intent: a\n  metadata: {k: 1}\n  examples: |\n    - x\n" },
		{ false, "nlu:\n- intent: a\n  examples: |\n    - x\n  metadata: {k: 1}\n" },
		{ false, "nlu:\n- examples: |\n    - x\n  intent: a\n" },
		{ false, "nlu:\n- intent: true\n  examples: |\n    - x\n" },
		{ false, "nlu:\n- intent: null\n  examples: |\n    - x\n" },
		{ false, "nlu:\n- intent: 123\n  examples: |\n    - x\n" },
		{ false, "nlu:\n- intent: \"quoted\"\n  examples: |\n    - x\n" },
		{ false, "nlu:\n- intent: a/b/c\n  examples: |\n    - x\n" },
		{ false, "nlu:\n- intent: a/\n  examples: |\n    - x\n" },
		{ false, "nlu:\n- intent: /a\n  examples: |\n    - x\n" },
		{ false, "nlu:\n- intent:\n  examples: |\n    - x\n" },
		{ false, "nlu:\n- intent: a\n  examples: |\n" },
		{ false, "nlu:\n- intent: a\n  examples: |\n\n    - x\n" },
		{ false, "nlu:\n- intent: a\n  examples: |\n    - x\n   \t- y\n" },
		{ false, "nlu:\n- intent: a\n  examples: |\r\n    - x\r\n" },
		{ false, "nlu:\n- intent: a\n  examples: |\n    - x\r\n" },
		{ false, "nlu:\n- intent: a\n  examples: |\n    - x \x01\n" },
		{ false, "nlu:\n- intent: a\n  examples: |\n    - x \xc2\x85 nel\n" },
		{ false, "\xef\xbb\xbfnlu:\n- intent: a\n  examples: |\n    - x\n" },
		{ false, "nlu:\n- intent: a\n  examples: |2\n    - x\n" },
		{ false, "nlu:\n- intent: a\n  examples:\n  - text: x\n" },
		{ false, "nlu:\n- intent: a\n  examples: |\n    - x\n- intent: b\n   examples: |\n    - y\n" },
		{ false, "nlu:\n- intent: a\n  examples: |\n    - x\n  - intent: b\n    examples: |\n      - y\n" },
		{ false, "nlu:\n- intent: a\n  examples: |\n    - x\nnlu:\n- intent: b\n  examples: |\n    - y\n" },
		{ false, "version: \"3.1\"\nversion: \"3.1\"\nnlu:\n- intent: a\n  examples: |\n    - x\n" },
		{ false, "version: 3.1\nnlu:\n- intent: a\n  examples: |\n    - x\n" },
		{ false, "version: \"3.1\"\n" },
		{ false, "nlu:\n" },
		{ false, "nlu:\nversion: \"3.1\"\n" },
		{ false, "nlu: []\n" },
		{ false, "nlu:\n- intent: a\n  examples: |\n    - x\nresponses:\n  utter_a:\n  - text: a\n" },
		{ false, "---\nnlu:\n- intent: a\n  examples: |\n    - x\n" },
		{ false, "nlu:\n- intent: a\n  examples: |\n    - x\n---\n" },
		{ false, "nlu:\n-  intent: a\n   examples: |\n    - x\n" },
		{ false, "nlu:\n- intent: a\n    b\n  examples: |\n    - x\n" },
		{ false, "nlu:\n- intent: &x a\n  examples: |\n    - x\n" },
		{ false, "nlu:\n- intent: Zürich\n  examples: |\n    - x\n" },
		{ false, "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char what[32];
		snprintf(what, sizeof what, "case %zu", i);
		check_fast(cases[i].text, cases[i].takes, what);
	}
	/* a last line without an LF, of each length around the vector widths
	 * (found by fuzzing: one of 64 bytes hung the batched scanner) */
	for (int n = 1; n <= 140; n++) {
		for (int before = 0; before <= 70; before += 70) { /* after a batch of lines, too */
			dump e = { 0 };
			dump_add(&e, "nlu:\n- intent: a\n  examples: |\n");
			for (int k = 0; k < before; k++)
				dump_add(&e, "    - x\n");
			dump_add(&e, "    ");
			for (int k = 0; k < n; k++)
				dump_add(&e, "%c", k == 0 ? '-' : k == 1 ? ' ' : (char)('a' + k % 26));
			char what[48];
			snprintf(what, sizeof what, "last line of %d after %d", n, before);
			check_fast(e.p, true, what);
			free(e.p);
		}
	}
	/* a big one, as for the pre-scan */
	dump t = { 0 };
	dump_add(&t, "version: \"3.1\"\nnlu:\n");
	for (int i = 0; i < 60; i++) {
		static const char *const chomp[] = { "", "-", "+" };
		dump_add(&t, "- intent: intent_%d\n  examples: |%s\n", i, chomp[i % 3]);
		int ind = 4 + (i % 3) * 2;
		for (int k = 0; k < 10; k++) {
			dump_add(&t, "%*s- example %d of [intent](thing) %d, Zür [ich]{\"entity\": \"city\"}\t \n",
			         ind, "", k, i);
			if (k == 2)
				dump_add(&t, "\n");
			if (k == 4)
				dump_add(&t, "%*s\n", ind + 3, "");
			if (k == 5)
				dump_add(&t, "%*s\n", ind - 2, "");
			if (k == 6 && i % 5 == 0)
				dump_add(&t, "%*snot a dash line %d\n", ind, "", i);
			if (k == 7 && i % 4 == 0)
				dump_add(&t, "%*s  - deeper, so not an example\n", ind, "");
			if (k == 8)
				dump_add(&t, "%*s- plain example %d number %d\n", ind, "", k, i);
		}
		if (i % 6 == 5)
			dump_add(&t, "\n\n");
	}
	dump_add(&t, "- synonym: vegan\n  examples: |\n    - plant based\n    - plant-based\n");
	dump_add(&t, "- lookup: city\n  examples: |\n    - Rome\n    - Lima");
	CU_ASSERT(t.len > 4096);
	check_fast(t.p, true, "big");
	free(t.p);
}

/* The same for the domain fast path (rasa_domain.c): content (the value's
 * bytes), every place, the diagnostics. */
static char *domain_dump(const char *text, int fast, bool file)
{
	train_rasa_domain *dm = NULL;
	train_rasa_diags *d = NULL;
	train_rasa_diags_create(&d);
	train_error e = { 0 };
	int rc, was = rasa_domain_fast;
	size_t n_files = 0;
	rasa_domain_fast = fast;
	if (!file) {
		rc = train_rasa_domain_parse(text, strlen(text), "domain.yml", &dm, d, &e);
	} else {
		static char path[600];
		if (!path[0])
			snprintf(path, sizeof path, "%s/domain.yml", test_tmpdir());
		test_write(path, text);
		const char *paths[] = { path };
		train_rasa_project *p = NULL;
		rc = train_rasa_project_load(paths, 1, &p, d, &e);
		if (!rc) {
			dm = p->domain;
			p->domain = NULL;
			n_files = p->n_files;
		}
		train_rasa_project_free(p);
	}
	rasa_domain_fast = was;
	dump b = { 0 };
	dump_add(&b, "rc %d, %zu files", rc, n_files);
	if (rc)
		dump_add(&b, " %s:%u:%u %s", e.file, e.line, e.col, e.text);
	dump_add(&b, "\n");
	if (dm) {
		train_value *v = NULL;
		CU_ASSERT_EQUAL(train_rasa_domain_to_value(dm, &v, &e), TRAIN_OK);
		char hex[TRAIN_FP_HEX];
		dump_add(&b, "value %s %s\n", v ? train_fp_hex(train_value_fp(v), hex) : "-",
		         dm->version ? dm->version : "-");
		train_value_unref(v);
		for (size_t i = 0; i < dm->n_intents; i++)
			dump_add(&b, "I %s %s:%u:%u\n", dm->intents[i].name, dm->intents[i].loc.file,
			         dm->intents[i].loc.line, dm->intents[i].loc.col);
		for (size_t i = 0; i < dm->n_entities; i++)
			dump_add(&b, "E %s %u:%u\n", dm->entities[i].name, dm->entities[i].loc.line,
			         dm->entities[i].loc.col);
		for (size_t i = 0; i < dm->n_actions; i++)
			dump_add(&b, "A %s %u:%u\n", dm->actions[i].name, dm->actions[i].loc.line,
			         dm->actions[i].loc.col);
		for (size_t i = 0; i < dm->n_slots; i++)
			dump_add(&b, "S %s %u:%u\n", dm->slots[i].name, dm->slots[i].loc.line,
			         dm->slots[i].loc.col);
		for (size_t i = 0; i < dm->n_forms; i++)
			dump_add(&b, "F %s %u:%u\n", dm->forms[i].name, dm->forms[i].loc.line,
			         dm->forms[i].loc.col);
		for (size_t i = 0; i < dm->n_responses; i++) {
			const train_rasa_response *r = &dm->responses[i];
			dump_add(&b, "R %s %s:%u:%u\n", r->name, r->loc.file, r->loc.line, r->loc.col);
			for (size_t k = 0; k < r->n_variations; k++)
				dump_add(&b, " - [%s] %s:%u:%u\n", r->variations[k].text ? r->variations[k].text : "-",
				         r->variations[k].loc.file, r->variations[k].loc.line,
				         r->variations[k].loc.col);
		}
	}
	for (size_t i = 0; i < train_rasa_diags_len(d); i++) {
		char line[2048];
		dump_add(&b, "D %s\n", train_rasa_diag_format(train_rasa_diags_at(d, i), line, sizeof line));
	}
	train_rasa_domain_free(dm);
	train_rasa_diags_destroy(d);
	return b.p;
}

static void check_domain_fast(const char *text, bool takes, const char *what)
{
	bool took = rasa_domain_fast_accepts(text, strlen(text));
	if (took != takes)
		fprintf(stderr, "%s: the domain fast path %s it\n", what, took ? "takes" : "does not take");
	CU_ASSERT(took == takes);
	for (int file = 0; file < 2; file++) {
		char *a = domain_dump(text, 1, file), *b = domain_dump(text, 0, file);
		if (strcmp(a, b) != 0)
			fprintf(stderr, "%s (%d): the domain fast path reads differently:\n--- fast\n%s"
			        "--- libyaml\n%s", what, file, a, b);
		CU_ASSERT_STRING_EQUAL(a, b);
		free(a);
		free(b);
	}
}

static void test_domain_fast_path(void)
{
	static const struct {
		bool takes;
		const char *text;
	} cases[] = {
		{ true, "version: \"3.1\"\n\nintents:\n  - greet\n  - bye\nresponses:\n  utter_greet:\n"
		        "  - text: \"Hello (there)!\"\n  utter_bye:\n    - text: 'Bye, then'\n"
		        "    - text: See you [soon] - \"maybe\"  \nsession_config:\n"
		        "  session_expiration_time: 0060\n  carry_over_slots_to_new_session: False\n" },
		{ true, "intents:\n- greet\n- greet\n- two words\nentities:\n- city\n- city\nactions:\n"
		        "- action_x\n- utter_greet\n- action_x\n" },
		{ false, "responses:\n  utter_a:\n  - text: \"a\"\n  utter_a:\n  - text: \"b\"\n" },
		{ true, "responses:\n  utter_b:\n  - text: \"a\"\n  utter_a:\n  - text: \"b\"\n"
		        "  utter_ab:\n  - text: \"b\"\n" },
		{ true, "version: \"2.0\"\nsession_config:\n  carry_over_slots_to_new_session: true\n" },
		{ true, "version: \"9.0\"\nintents:\n  - a\n" },
		{ true, "version: \"3.2\"\nintents:\n  - a\n" },
		{ true, "version: \"x\"\nresponses:\n  utter_a:\n  - text: \"Zürich \xf0\x9f\x98\x80\"\n"
		        "  - text: \"\"\n  - text: ''\n" },
		{ true, "responses:\n    utter_a:\n        - text: x\n    utter_b:\n        - text: y\n" },
		/* left to libyaml */
		{ false, "intents:\n  - greet # hi\n" },
		{ false, "# c\nintents:\n  - greet\n" },
		{ false, "intents:\n  - greet:\n      use_entities: []\n" },
		{ false, "intents:\n  - true\n" },
		{ false, "intents:\n  - 12\n" },
		{ false, "intents: [a, b]\n" },
		{ false, "intents:\n" },
		{ false, "intents:\n  - a\nintents:\n  - b\n" },
		{ false, "intents:\n  - a\nslots:\n  x:\n    type: text\n" },
		{ false, "intents:\n  - a\n    b\n" },
		{ false, "responses:\n  utter_a:\n  - text: \"a\\\"b\"\n" },
		{ false, "responses:\n  utter_a:\n  - text: 'it''s'\n" },
		{ false, "responses:\n  utter_a:\n  - text: \"a\n    b\"\n" },
		{ false, "responses:\n  utter_a:\n  - text: a: b\n" },
		{ false, "responses:\n  utter_a:\n  - text: true\n" },
		{ false, "responses:\n  utter_a:\n  - text: 12\n" },
		{ false, "responses:\n  utter_a:\n  - text: a\n    image: b\n" },
		{ false, "responses:\n  utter_a:\n  - custom: {a: 1}\n" },
		{ false, "responses:\n  utter_a:\n  utter_b:\n  - text: b\n" },
		{ false, "responses:\n  utter_a:\n  - text: |\n      block\n" },
		{ false, "responses:\n  utter_a:\n  - text: a\ttab\n" },
		{ false, "responses:\nutter_a:\n- text: a\n" },
		{ false, "session_config:\n  session_expiration_time: 60  # minutes\n" },
		{ false, "session_config:\n  session_expiration_time: 1.5\n" },
		{ false, "session_config:\n  session_expiration_time: -1\n" },
		{ false, "session_config:\n  carry_over_slots_to_new_session: yes\n" },
		{ false, "session_config:\n  session_expiration_time: 1\n  session_expiration_time: 2\n" },
		{ false, "session_config:\n  other: 1\n" },
		{ false, "version: \"3.1\"\n" },
		{ false, "version: \"3.1\"\nnlu:\n- intent: a\n  examples: |\n    - x\n" },
		{ false, "intents:\n  - a\nnlu:\n- intent: a\n  examples: |\n    - x\n" },
		{ false, "intents:\r\n  - a\r\n" },
		{ false, "" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char what[32];
		snprintf(what, sizeof what, "domain case %zu", i);
		check_domain_fast(cases[i].text, cases[i].takes, what);
	}
	/* and the other way round: each fast path leaves the other kind alone */
	CU_ASSERT(!rasa_nlu_fast_accepts(cases[0].text, strlen(cases[0].text)));
	const char *nlu = "nlu:\n- intent: a\n  examples: |\n    - x\n";
	CU_ASSERT(!rasa_domain_fast_accepts(nlu, strlen(nlu)));
}

static const test_case cases[] = {
	{ "mini_nlu", test_mini_nlu },
	{ "prescan", test_prescan },
	{ "fast_path", test_fast_path },
	{ "domain_fast_path", test_domain_fast_path },
	{ "mini_domain", test_mini_domain },
	{ "mini_stories", test_mini_stories },
	{ "trackers_mini", test_trackers_mini },
	{ "trackers_checkpoints", test_trackers_checkpoints },
	{ "fingerprints", test_fingerprints },
	{ "roundtrip", test_roundtrip },
	{ "bad_cases", test_bad_cases },
	{ "parse_api", test_parse_api },
	{ "classify", test_classify },
	{ "anchors and environment variables", test_anchors_env },
	{ "user /intent{...} texts", test_user_intent_text },
	{ "rasa2_domain", test_rasa2_domain },
	{ "loaders", test_loaders },
	{ "diags", test_diags },
	{ "annotations", test_annotations },
	{ NULL, NULL },
};

int main(void)
{
	return test_main("rasa", cases);
}
