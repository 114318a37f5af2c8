/*
 * libtrain/rasa_stories.c - the reader of Rasa stories and rules, and the
 * resolution of checkpoints and `or` steps into trackers
 * (<train/rasa.h>, issue 4).
 *
 * Reads what Rasa 3's YAMLStoryReader reads after the checks of its
 * schema (shared/utils/schemas/stories.yml):
 *
 *   stories:                         rules:
 *   - story: NAME                    - rule: NAME
 *     metadata: ...                    condition: [active_loop / slot_was_set]
 *     steps:                           conversation_start: false
 *     - intent: greet                  wait_for_user_input: true
 *       entities: [city: Paris]        steps: [no bot, no checkpoint]
 *     - user: hi [Ann](name)
 *     - action: utter_greet
 *     - bot: Hello!
 *     - slot_was_set: [- name: value]
 *     - active_loop: form (or null)
 *     - checkpoint: NAME (+ slot_was_set conditions)
 *     - or: [- intent: a, - intent: b, - slot_was_set: ...]
 *
 * A step holds the keys of exactly one kind (`intent` with `entities` and
 * `user` is one kind); a step with another key, or keys of two kinds, is
 * an error, as in Rasa's schema.  What the reader skips with a warning
 * (an empty action name, an item without a name, a story without steps)
 * is skipped here with a warning.  Rules with more than one user turn are
 * a warning: Rasa's RulePolicy refuses them unless `restrict_rules` is
 * off.
 *
 * Trackers: see train_rasa_trackers_generate() in <train/rasa.h>.
 */
#include "rasa_private.h"

#include <jansson.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rasa_stories_b {
	rasa_arena *a;
	rasa_file_cache fc;
	rasa_vec items;    /* train_rasa_story */
	size_t n_stories, n_rules;
};

rasa_stories_b *rasa_stories_b_new(rasa_arena *a)
{
	rasa_stories_b *b = calloc(1, sizeof *b);
	if (b)
		b->a = a;
	return b;
}

void rasa_stories_b_free(rasa_stories_b *b)
{
	if (!b)
		return;
	rasa_arena_free(b->a);
	free(b);
}

train_rasa_stories *rasa_stories_b_finish(rasa_stories_b *b)
{
	if (!b)
		return NULL;
	train_rasa_stories *s = rasa_alloc(b->a, sizeof *s);
	if (!s) {
		rasa_stories_b_free(b);
		return NULL;
	}
	s->items = b->items.v;
	s->n_items = b->items.n;
	s->n_stories = b->n_stories;
	s->n_rules = b->n_rules;
	s->arena_ = b->a;
	b->a = NULL;
	rasa_stories_b_free(b);
	return s;
}

void train_rasa_stories_free(train_rasa_stories *s)
{
	if (s)
		rasa_arena_free(s->arena_);
}

/* ------------------------------------------------------------------------
 * Steps.
 */

typedef enum where { IN_STORY, IN_RULE, IN_CONDITION, IN_OR } where;

static const char *const user_keys[] = { "intent", "user", "entities", NULL };
static const char *const checkpoint_keys[] = { "checkpoint", "slot_was_set", NULL };
static const char *const step_keys[] = { "intent", "user", "entities", "action", "bot",
	                                     "slot_was_set", "active_loop", "checkpoint", "or", NULL };

typedef struct step_kind {
	train_rasa_event_kind kind;
	const char *key;                 /* the key that decides */
	const char *const *allowed;      /* keys allowed with it */
} step_kind;

static const char *const k_or[] = { "or", NULL };
static const char *const k_action[] = { "action", NULL };
static const char *const k_bot[] = { "bot", NULL };
static const char *const k_slot[] = { "slot_was_set", NULL };
static const char *const k_loop[] = { "active_loop", NULL };

/* Rasa's order of precedence (YAMLStoryReader._parse_step). */
static bool kind_of_step(const train_config *step, step_kind *out)
{
	if (train_config_get(step, "intent") || train_config_get(step, "user")) {
		*out = (step_kind){ TRAIN_RASA_EV_USER, train_config_get(step, "intent") ? "intent" : "user",
			                user_keys };
	} else if (train_config_get(step, "or")) {
		*out = (step_kind){ TRAIN_RASA_EV_OR, "or", k_or };
	} else if (train_config_get(step, "action")) {
		*out = (step_kind){ TRAIN_RASA_EV_ACTION, "action", k_action };
	} else if (train_config_get(step, "bot")) {
		*out = (step_kind){ TRAIN_RASA_EV_BOT, "bot", k_bot };
	} else if (train_config_get(step, "checkpoint")) {
		*out = (step_kind){ TRAIN_RASA_EV_CHECKPOINT, "checkpoint", checkpoint_keys };
	} else if (train_config_get(step, "slot_was_set")) {
		*out = (step_kind){ TRAIN_RASA_EV_SLOT, "slot_was_set", k_slot };
	} else if (train_config_get(step, "active_loop")) {
		*out = (step_kind){ TRAIN_RASA_EV_ACTIVE_LOOP, "active_loop", k_loop };
	} else {
		return false;
	}
	return true;
}

static bool in_keys(const char *k, const char *const *keys)
{
	for (; *keys; keys++)
		if (strcmp(k, *keys) == 0)
			return true;
	return false;
}

static void strip_ws(const char *s, size_t *a, size_t *b)
{
	while (*a < *b && isspace((unsigned char)s[*a]))
		(*a)++;
	while (*b > *a && isspace((unsigned char)s[*b - 1]))
		(*b)--;
}

static bool is_test_file(const rasa_ctx *c)
{
	const char *base = strrchr(c->file, '/');
	base = base ? base + 1 : c->file;
	return strncmp(base, "test_", 5) == 0;
}

/* entities: [name, {name: value, role: r, group: g}] (Rasa: _parse_raw_entities) */
static int parse_entities(rasa_ctx *c, const train_config *n, rasa_vec *out)
{
	if (!n || train_config_kind(n) == TRAIN_CFG_NULL)
		return TRAIN_OK;
	if (train_config_kind(n) != TRAIN_CFG_LIST)
		return rasa_fail(c, TRAIN_EPARSE, n, "'entities' must be a list (- city: Paris, or - city), "
		                 "not %s", rasa_kind_name(n));
	for (size_t i = 0; i < train_config_len(n); i++) {
		const train_config *it = train_config_at(n, i);
		train_rasa_entity *e = rasa_vec_push(c->arena, out, sizeof *e);
		if (!e)
			return rasa_nomem(c);
		int rc;
		if (train_config_kind(it) == TRAIN_CFG_STRING) {
			if ((rc = rasa_string(c, it, "an entity name", false, false, &e->entity)))
				return rc;
			e->value = "";
			continue;
		}
		if (train_config_kind(it) != TRAIN_CFG_MAP)
			return rasa_fail(c, TRAIN_EPARSE, it, "an entity must be a name or 'NAME: value', not %s",
			                 rasa_kind_name(it));
		for (size_t k = 0; k < train_config_len(it); k++) {
			const char *key = train_config_key_at(it, k);
			const train_config *v = train_config_at(it, k);
			if (strcmp(key, "role") == 0 || strcmp(key, "group") == 0) {
				const char *s;
				if ((rc = rasa_string(c, v, key[0] == 'r' ? "an entity's 'role'" : "an entity's 'group'",
				                      true, true, &s)))
					return rc;
				if (key[0] == 'r')
					e->role = s;
				else
					e->group = s;
				continue;
			}
			if (e->entity)
				rasa_warn(c, train_config_key_node_at(it, k), "an entity item names '%s' and '%s': "
				          "the later one is kept, as Rasa does (one entity per item)", e->entity, key);
			e->entity = rasa_strdup(c->arena, key);
			if (!e->entity || (rc = rasa_scalar_or_json(c, v, &e->value)))
				return e->entity ? rc : rasa_nomem(c);
			if (!e->value)
				e->value = "";
		}
		if (!e->entity)
			return rasa_fail(c, TRAIN_EINVAL, it, "an entity item needs 'NAME: value' besides role "
			                 "and group");
	}
	return TRAIN_OK;
}

/*
 * A `user` text that starts with '/' is unpacked as Rasa's story reader
 * unpacks it (YAMLStoryReader.unpack_regex_message with no domain): the
 * pattern ^/(INTENT: [^{@]+)(@[0-9.]+)?({.+})?(REST: .*) where '.' stops at
 * a line break and {.+} reaches the line's last '}'.  Its entities, and
 * only those (annotations in such a text are dropped, as Rasa drops them),
 * come from the JSON object: each key an entity, each value (each item of
 * a list value) one entity, spanning the whole JSON text.  The text and
 * the step's intent stay as written (a step without `intent:` is an
 * end-to-end turn in Rasa too).  What Rasa warns about and reads past is a
 * warning here: no intent after '/', JSON that is not an object, text after
 * it.
 */
static size_t cp_count(const char *s, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		k += ((unsigned char)s[i] & 0xC0) != 0x80;
	return k;
}

static int unpack_intent_text(rasa_ctx *c, const train_config *un, train_rasa_event *ev)
{
	const char *t = ev->text;
	size_t len = strlen(t);
	ev->entities = NULL;
	ev->n_entities = 0;
	size_t i = 1;
	while (i < len && t[i] != '{' && t[i] != '@')
		i++;
	if (i == 1) {
		rasa_warn(c, un, "user text '%.200s' starts with '/' but names no intent after it (the form "
		          "is /intent{\"entity\": \"value\"}): Rasa reads it as plain text", t);
		return TRAIN_OK;
	}
	if (i < len && t[i] == '@') {
		size_t j = i + 1;
		while (j < len && ((t[j] >= '0' && t[j] <= '9') || t[j] == '.'))
			j++;
		if (j > i + 1)
			i = j;
	}
	size_t eol = i;
	while (eol < len && t[eol] != '\n')
		eol++;
	size_t js = 0, je = 0; /* the JSON text t[js..je) */
	if (i < eol && t[i] == '{') {
		for (size_t k = eol; k > i + 2; k--)
			if (t[k - 1] == '}') {
				js = i;
				je = k;
				break;
			}
	}
	size_t rest = je ? je : i;
	if (rest < eol)
		rasa_warn(c, un, "user text '%.200s': '%.*s' after the intent%s is not read (the form is "
		          "/intent@confidence{\"entity\": \"value\"}); Rasa goes on without it", t,
		          (int)(eol - rest), t + rest, je ? " and its entities" : "");
	if (!je)
		return TRAIN_OK;
	json_error_t jerr;
	json_t *o = json_loadb(t + js, je - js, 0, &jerr);
	if (!o || !json_is_object(o)) {
		rasa_warn(c, un, "user text '%.200s': %.*s is not a JSON object (%s): the turn is read "
		          "without entities; write them like /greet{\"name\": \"Ann\"}", t, (int)(je - js),
		          t + js, o ? "another JSON value" : jerr.text);
		json_decref(o);
		return TRAIN_OK;
	}
	rasa_vec ents = { 0 };
	uint32_t cs = (uint32_t)cp_count(t, js), ce = cs + (uint32_t)cp_count(t + js, je - js);
	const char *key;
	json_t *val;
	int rc = TRAIN_OK;
	json_object_foreach(o, key, val) {
		size_t nv = json_is_array(val) ? json_array_size(val) : 1;
		for (size_t k = 0; k < nv && rc == TRAIN_OK; k++) {
			json_t *v = json_is_array(val) ? json_array_get(val, k) : val;
			train_rasa_entity *e = rasa_vec_push(c->arena, &ents, sizeof *e);
			char *dump = NULL;
			if (!e) {
				rc = rasa_nomem(c);
				break;
			}
			memset(e, 0, sizeof *e);
			e->entity = rasa_strdup(c->arena, key);
			if (json_is_string(v)) {
				e->value = rasa_strdup(c->arena, json_string_value(v));
			} else if ((dump = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT))) {
				e->value = rasa_strdup(c->arena, dump);
				free(dump);
			}
			e->start = cs;
			e->end = ce;
			e->byte_start = (uint32_t)js;
			e->byte_end = (uint32_t)je;
			if (!e->entity || !e->value)
				rc = rasa_nomem(c);
		}
	}
	json_decref(o);
	if (rc)
		return rc;
	ev->entities = ents.v;
	ev->n_entities = ents.n;
	return TRAIN_OK;
}

/* A user turn.  Returns TRAIN_OK with ev->kind 0 when the step is skipped. */
static int parse_user(rasa_ctx *c, const train_config *step, train_rasa_event *ev)
{
	const train_config *in = train_config_get(step, "intent");
	const train_config *un = train_config_get(step, "user");
	int rc;
	ev->loc = rasa_loc_of(c, step);
	if (in && train_config_kind(in) != TRAIN_CFG_NULL) {
		const char *s;
		if ((rc = rasa_string(c, in, "'intent'", false, true, &s)))
			return rc;
		size_t a = 0, b = strlen(s);
		strip_ws(s, &a, &b);
		if (a < b && s[a] == '/') {
			rasa_warn(c, in, "intent '%s' starts with '/', which is not needed: read as '%.*s'", s,
			          (int)(b - a - 1), s + a + 1);
			a++;
		}
		if (a < b) {
			char *full = rasa_strndup(c->arena, s + a, b - a);
			if (!full)
				return rasa_nomem(c);
			if ((rc = rasa_split_intent(c, in, full, &ev->name, &ev->response_key)))
				return rc;
			if (ev->response_key && !is_test_file(c))
				rasa_warn(c, in, "'%s' is a full retrieval intent: stories and rules use the base "
				          "intent '%s' (Rasa trains on that)", full, ev->name);
		}
	}
	if (un && train_config_kind(un) != TRAIN_CFG_NULL) {
		const char *s;
		if ((rc = rasa_string(c, un, "'user'", false, true, &s)))
			return rc;
		size_t a = 0, b = strlen(s);
		strip_ws(s, &a, &b);
		rasa_vec ents = { 0 };
		size_t tl, tc;
		if ((rc = rasa_parse_annotations(c, s + a, b - a, un, 0, 0, &ev->text, &tl, &tc, &ents)))
			return rc;
		ev->entities = ents.v;
		ev->n_entities = ents.n;
		if (ev->text && ev->text[0] == '/' && (rc = unpack_intent_text(c, un, ev)))
			return rc;
		if (train_config_get(step, "entities"))
			rasa_warn(c, train_config_get(step, "entities"), "'entities' is ignored when the step "
			          "has a 'user' text (annotate the entities in the text)");
	} else {
		rasa_vec ents = { 0 };
		if ((rc = parse_entities(c, train_config_get(step, "entities"), &ents)))
			return rc;
		ev->entities = ents.v;
		ev->n_entities = ents.n;
	}
	if (!ev->name && !ev->text) {
		rasa_warn(c, step, "a user step has no intent and no text and is skipped");
		return TRAIN_OK;
	}
	ev->kind = TRAIN_RASA_EV_USER;
	return TRAIN_OK;
}

/* Check a slot value's shape (Rasa's schema: text, bool, null, or a list
 * of those and of maps of those). */
static int check_slot_value(rasa_ctx *c, const train_config *v, const char *slot)
{
	train_cfg_kind k = train_config_kind(v);
	if (k == TRAIN_CFG_MAP)
		return rasa_fail(c, TRAIN_EPARSE, v, "the value of slot '%s' must be a scalar or a list, "
		                 "not a map", slot);
	if (k != TRAIN_CFG_LIST)
		return TRAIN_OK;
	for (size_t i = 0; i < train_config_len(v); i++) {
		const train_config *x = train_config_at(v, i);
		if (train_config_kind(x) == TRAIN_CFG_LIST)
			return rasa_fail(c, TRAIN_EPARSE, x, "the value of slot '%s' cannot hold a list in a "
			                 "list", slot);
		if (train_config_kind(x) == TRAIN_CFG_MAP)
			for (size_t j = 0; j < train_config_len(x); j++) {
				train_cfg_kind kk = train_config_kind(train_config_at(x, j));
				if (kk == TRAIN_CFG_LIST || kk == TRAIN_CFG_MAP)
					return rasa_fail(c, TRAIN_EPARSE, train_config_at(x, j), "the value of slot "
					                 "'%s' is nested too deeply (a list of maps of scalars at most)",
					                 slot);
			}
	}
	return TRAIN_OK;
}

/* slot_was_set: [- name: value, - name] into SLOT events.  `names_ok`:
 * a bare name is allowed (not in checkpoint conditions). */
static int parse_slots(rasa_ctx *c, const train_config *n, rasa_vec *out, bool names_ok, bool *skip)
{
	*skip = false;
	if (train_config_kind(n) == TRAIN_CFG_NULL)
		return TRAIN_OK;
	if (train_config_kind(n) != TRAIN_CFG_LIST)
		return rasa_fail(c, TRAIN_EPARSE, n, "'slot_was_set' must be a list (- slot_name: value), "
		                 "not %s", rasa_kind_name(n));
	for (size_t i = 0; i < train_config_len(n); i++) {
		const train_config *it = train_config_at(n, i);
		train_cfg_kind k = train_config_kind(it);
		int rc;
		if (k == TRAIN_CFG_STRING) {
			if (!names_ok) {
				rasa_warn(c, it, "a checkpoint's slot_was_set item must be 'NAME: value', not just "
				          "'%s': the checkpoint is skipped, as Rasa does", rasa_text(c, it));
				*skip = true;
				return TRAIN_OK;
			}
			train_rasa_event *ev = rasa_vec_push(c->arena, out, sizeof *ev);
			if (!ev)
				return rasa_nomem(c);
			ev->kind = TRAIN_RASA_EV_SLOT;
			ev->loc = rasa_loc_of(c, it);
			if ((rc = rasa_string(c, it, "a slot name", false, false, &ev->name)))
				return rc;
			continue;
		}
		if (k != TRAIN_CFG_MAP)
			return rasa_fail(c, TRAIN_EPARSE, it, "an item of 'slot_was_set' must be 'NAME: value' "
			                 "or a slot name, not %s", rasa_kind_name(it));
		for (size_t j = 0; j < train_config_len(it); j++) {
			const char *name = train_config_key_at(it, j);
			const train_config *v = train_config_at(it, j);
			if ((rc = check_slot_value(c, v, name)))
				return rc;
			train_rasa_event *ev = rasa_vec_push(c->arena, out, sizeof *ev);
			if (!ev)
				return rasa_nomem(c);
			ev->kind = TRAIN_RASA_EV_SLOT;
			ev->loc = rasa_loc_of(c, train_config_key_node_at(it, j));
			ev->name = rasa_strdup(c->arena, name);
			if (!ev->name || (rc = rasa_json(c, v, &ev->value)))
				return ev->name ? rc : rasa_nomem(c);
		}
	}
	return TRAIN_OK;
}

static const char *where_name(where w)
{
	switch (w) {
	case IN_STORY: return "a story";
	case IN_RULE: return "a rule";
	case IN_CONDITION: return "a rule condition";
	case IN_OR: return "an 'or' step";
	}
	return "";
}

static int parse_steps(rasa_ctx *c, const train_config *list, where w, rasa_vec *out);

static int parse_step(rasa_ctx *c, const train_config *step, where w, rasa_vec *out)
{
	if (train_config_kind(step) != TRAIN_CFG_MAP)
		return rasa_fail(c, TRAIN_EPARSE, step, "a step must be a map such as '- intent: greet' or "
		                 "'- action: utter_greet', not %s", rasa_kind_name(step));
	step_kind sk;
	if (!kind_of_step(step, &sk)) {
		const char *k = train_config_key_at(step, 0);
		if (!k)
			return rasa_fail(c, TRAIN_EPARSE, step, "an empty step; write '- intent: ...', "
			                 "'- action: ...' or another step");
		return rasa_fail(c, TRAIN_EINVAL, train_config_key_node_at(step, 0), "unknown step key '%s' "
		                 "in %s; a step is one of intent (+ entities), user, action, bot, "
		                 "slot_was_set, active_loop, checkpoint, or%s", k, where_name(w),
		                 rasa_did_you_mean(c, k, step_keys));
	}
	for (size_t i = 0; i < train_config_len(step); i++) {
		const char *k = train_config_key_at(step, i);
		if (in_keys(k, sk.allowed))
			continue;
		const train_config *kn = train_config_key_node_at(step, i);
		if (in_keys(k, step_keys))
			return rasa_fail(c, TRAIN_EINVAL, kn, "a step holds both '%s' and '%s': write them as "
			                 "two steps (one '- ' item each)", sk.key, k);
		return rasa_fail(c, TRAIN_EINVAL, kn, "unknown key '%s' in a '%s' step%s", k, sk.key,
		                 rasa_did_you_mean(c, k, step_keys));
	}
	bool ok;
	switch (w) {
	case IN_STORY: ok = true; break;
	case IN_RULE: ok = sk.kind != TRAIN_RASA_EV_BOT && sk.kind != TRAIN_RASA_EV_CHECKPOINT; break;
	case IN_CONDITION: ok = sk.kind == TRAIN_RASA_EV_SLOT || sk.kind == TRAIN_RASA_EV_ACTIVE_LOOP; break;
	case IN_OR: ok = sk.kind == TRAIN_RASA_EV_USER || sk.kind == TRAIN_RASA_EV_SLOT; break;
	default: ok = false;
	}
	if (!ok) {
		const char *hint = w == IN_CONDITION ? " (a condition holds only active_loop and slot_was_set "
		                                       "steps; the user turn goes under 'steps')"
		                 : w == IN_OR ? " (the alternatives of 'or' are intents or slot_was_set)"
		                 : " (rules have no checkpoints and no end-to-end bot texts: use a story)";
		return rasa_fail(c, TRAIN_EINVAL, step, "a step with '%s' cannot be in %s%s", sk.key,
		                 where_name(w), hint);
	}
	int rc;
	switch (sk.kind) {
	case TRAIN_RASA_EV_USER: {
		train_rasa_event ev = { 0 };
		if ((rc = parse_user(c, step, &ev)))
			return rc;
		if (!ev.kind)
			return TRAIN_OK;
		train_rasa_event *p = rasa_vec_push(c->arena, out, sizeof *p);
		if (!p)
			return rasa_nomem(c);
		*p = ev;
		return TRAIN_OK;
	}
	case TRAIN_RASA_EV_SLOT: {
		bool skip;
		return parse_slots(c, train_config_get(step, "slot_was_set"), out, true, &skip);
	}
	case TRAIN_RASA_EV_ACTION:
	case TRAIN_RASA_EV_BOT: {
		const train_config *v = train_config_get(step, sk.key);
		const char *s;
		if ((rc = rasa_string(c, v, sk.kind == TRAIN_RASA_EV_ACTION ? "'action'" : "'bot'", true, true,
		                      &s)))
			return rc;
		if (sk.kind == TRAIN_RASA_EV_ACTION && (!s || !*s)) {
			rasa_warn(c, step, "an action step has an empty name and is skipped");
			return TRAIN_OK;
		}
		train_rasa_event *p = rasa_vec_push(c->arena, out, sizeof *p);
		if (!p)
			return rasa_nomem(c);
		p->kind = sk.kind;
		p->loc = rasa_loc_of(c, step);
		if (sk.kind == TRAIN_RASA_EV_ACTION)
			p->name = s;
		else
			p->text = s ? s : "";
		return TRAIN_OK;
	}
	case TRAIN_RASA_EV_ACTIVE_LOOP: {
		const char *s;
		if ((rc = rasa_string(c, train_config_get(step, "active_loop"), "'active_loop'", true, false, &s)))
			return rc;
		train_rasa_event *p = rasa_vec_push(c->arena, out, sizeof *p);
		if (!p)
			return rasa_nomem(c);
		p->kind = TRAIN_RASA_EV_ACTIVE_LOOP;
		p->name = s;
		p->loc = rasa_loc_of(c, step);
		return TRAIN_OK;
	}
	case TRAIN_RASA_EV_CHECKPOINT: {
		const char *name;
		if ((rc = rasa_string(c, train_config_get(step, "checkpoint"), "'checkpoint'", false, false,
		                      &name)))
			return rc;
		rasa_vec conds = { 0 };
		bool skip = false;
		const train_config *sv = train_config_get(step, "slot_was_set");
		if (sv && (rc = parse_slots(c, sv, &conds, false, &skip)))
			return rc;
		if (skip)
			return TRAIN_OK;
		train_rasa_event *p = rasa_vec_push(c->arena, out, sizeof *p);
		if (!p)
			return rasa_nomem(c);
		p->kind = TRAIN_RASA_EV_CHECKPOINT;
		p->name = name;
		p->sub = conds.v;
		p->n_sub = conds.n;
		p->loc = rasa_loc_of(c, step);
		return TRAIN_OK;
	}
	case TRAIN_RASA_EV_OR: {
		const train_config *alts = train_config_get(step, "or");
		if (train_config_kind(alts) != TRAIN_CFG_LIST)
			return rasa_fail(c, TRAIN_EPARSE, alts, "'or' must be a list of alternatives (- intent: "
			                 "a, - intent: b), not %s", rasa_kind_name(alts));
		rasa_vec sub = { 0 };
		if ((rc = parse_steps(c, alts, IN_OR, &sub)))
			return rc;
		if (!sub.n) {
			rasa_warn(c, step, "an 'or' step has no alternatives and is skipped");
			return TRAIN_OK;
		}
		train_rasa_event *p = rasa_vec_push(c->arena, out, sizeof *p);
		if (!p)
			return rasa_nomem(c);
		p->kind = TRAIN_RASA_EV_OR;
		p->sub = sub.v;
		p->n_sub = sub.n;
		p->loc = rasa_loc_of(c, step);
		return TRAIN_OK;
	}
	}
	return TRAIN_OK;
}

static int parse_steps(rasa_ctx *c, const train_config *list, where w, rasa_vec *out)
{
	for (size_t i = 0; i < train_config_len(list); i++) {
		int rc = parse_step(c, train_config_at(list, i), w, out);
		if (rc)
			return rc;
	}
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------
 * Stories and rules.
 */

static const char *const story_item_keys[] = { "story", "metadata", "steps", NULL };
static const char *const rule_item_keys[] = { "rule", "metadata", "steps", "condition",
	                                          "conversation_start", "wait_for_user_input", NULL };

static int read_item(rasa_stories_b *b, rasa_ctx *c, const train_config *item, bool rule)
{
	const char *title = rule ? "rule" : "story";
	const char *plural = rule ? "rules" : "stories";
	if (train_config_kind(item) != TRAIN_CFG_MAP)
		return rasa_fail(c, TRAIN_EPARSE, item, "an item under '%s' must be a map (- %s: NAME, "
		                 "steps: ...), not %s", plural, title, rasa_kind_name(item));
	const train_config *nn = train_config_get(item, title);
	if (!nn) {
		const char *other = rule ? "story" : "rule";
		if (train_config_get(item, other))
			return rasa_fail(c, TRAIN_EINVAL, item, "a '%s' item is under '%s:': move it under "
			                 "'%s:'", other, plural, rule ? "stories" : "rules");
		rasa_warn(c, item, "an item under '%s' has no '%s' key and is skipped, as Rasa does", plural,
		          title);
		return TRAIN_OK;
	}
	int rc = rasa_check_keys(c, item, rule ? rule_item_keys : story_item_keys, rule ? "a rule" : "a story",
	                         false);
	if (rc)
		return rc;
	const char *name;
	if ((rc = rasa_string(c, nn, rule ? "a rule's name" : "a story's name", true, true, &name)))
		return rc;
	if (!name || !*name) {
		rasa_warn(c, nn, "a %s has an empty name", title);
		name = "";
	}
	const train_config *steps = train_config_get(item, "steps");
	if (steps && train_config_kind(steps) != TRAIN_CFG_NULL && train_config_kind(steps) != TRAIN_CFG_LIST)
		return rasa_fail(c, TRAIN_EPARSE, steps, "'steps' of %s '%s' must be a list, not %s", title,
		                 name, rasa_kind_name(steps));
	if (!steps || !train_config_len(steps)) {
		rasa_warn(c, nn, "%s '%s' has no steps and is skipped", title, name);
		return TRAIN_OK;
	}
	train_rasa_story st = { 0 };
	st.name = name;
	st.kind = rule ? TRAIN_RASA_RULE : TRAIN_RASA_STORY;
	st.loc = rasa_loc_of(c, nn);
	st.wait_for_user_input = true;
	const train_config *meta = train_config_get(item, "metadata");
	if (meta && train_config_kind(meta) != TRAIN_CFG_NULL && (rc = rasa_json(c, meta, &st.metadata)))
		return rc;
	if (rule) {
		const train_config *cs = train_config_get(item, "conversation_start");
		const train_config *wu = train_config_get(item, "wait_for_user_input");
		if (cs && train_config_kind(cs) != TRAIN_CFG_NULL &&
		    (rc = rasa_bool(c, cs, "'conversation_start'", &st.conversation_start)))
			return rc;
		if (wu && train_config_kind(wu) != TRAIN_CFG_NULL &&
		    (rc = rasa_bool(c, wu, "'wait_for_user_input'", &st.wait_for_user_input)))
			return rc;
		const train_config *cond = train_config_get(item, "condition");
		if (cond && train_config_kind(cond) != TRAIN_CFG_NULL) {
			if (train_config_kind(cond) != TRAIN_CFG_LIST)
				return rasa_fail(c, TRAIN_EPARSE, cond, "'condition' of rule '%s' must be a list "
				                 "(- active_loop: ..., - slot_was_set: ...), not %s", name,
				                 rasa_kind_name(cond));
			rasa_vec cv = { 0 };
			if ((rc = parse_steps(c, cond, IN_CONDITION, &cv)))
				return rc;
			st.condition = cv.v;
			st.n_condition = cv.n;
			if (st.conversation_start && cv.n)
				rasa_warn(c, cond, "rule '%s' applies at the conversation start and also has a "
				          "condition: at the start no slot is set and no loop is active", name);
		}
	}
	rasa_vec ev = { 0 };
	if ((rc = parse_steps(c, steps, rule ? IN_RULE : IN_STORY, &ev)))
		return rc;
	st.events = ev.v;
	st.n_events = ev.n;
	if (rule) {
		size_t users = 0;
		for (size_t i = 0; i < ev.n; i++) {
			const train_rasa_event *e = &((const train_rasa_event *)ev.v)[i];
			users += e->kind == TRAIN_RASA_EV_USER ||
			         (e->kind == TRAIN_RASA_EV_OR && e->n_sub && e->sub[0].kind == TRAIN_RASA_EV_USER);
		}
		if (users > 1)
			rasa_warn(c, nn, "rule '%s' has %zu user turns: rules are for short fixed pieces of a "
			          "conversation, and Rasa's RulePolicy refuses a rule with more than one user "
			          "turn unless restrict_rules is false; write it as a story", name, users);
	}
	train_rasa_story *p = rasa_vec_push(b->a, &b->items, sizeof *p);
	if (!p)
		return rasa_nomem(c);
	*p = st;
	if (rule)
		b->n_rules++;
	else
		b->n_stories++;
	return TRAIN_OK;
}

int rasa_stories_b_read(rasa_stories_b *b, rasa_ctx *c, const train_config *root)
{
	int rc = rasa_ctx_enter(c, b->a, &b->fc);
	if (rc)
		return rc;
	static const char *const keys[] = { "stories", "rules" };
	for (int k = 0; k < 2; k++) {
		const train_config *n = train_config_get(root, keys[k]);
		if (!n || train_config_kind(n) == TRAIN_CFG_NULL)
			continue;
		if (train_config_kind(n) != TRAIN_CFG_LIST)
			return rasa_fail(c, TRAIN_EPARSE, n, "'%s' must be a list of items (- %s: NAME), not %s",
			                 keys[k], k ? "rule" : "story", rasa_kind_name(n));
		for (size_t i = 0; i < train_config_len(n); i++)
			if ((rc = read_item(b, c, train_config_at(n, i), k == 1)))
				return rc;
	}
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------
 * Trackers.
 */

#define MAX_DEPTH 4096

typedef struct part {
	const train_rasa_story *st;
	const train_rasa_event *ev;        /* st's events */
	size_t first, last;                /* events [first, last) */
	const train_rasa_event *const *start; size_t n_start; /* CHECKPOINT events (conditions apply
	                                                         only for leading ones) */
	bool leading;                      /* start checkpoints are the story's leading ones */
	const train_rasa_event *const *end; size_t n_end;
} part;

typedef struct gen {
	const train_rasa_stories *s;
	rasa_ctx c;                  /* for warnings */
	rasa_arena *a;               /* the result's */
	part *parts; size_t n_parts;
	rasa_index starts_at;        /* checkpoint name -> index into `lists` */
	rasa_vec lists;              /* rasa_vec of size_t part indices */
	bool *on_path;
	const train_rasa_event **path; size_t n_path, cap_path;
	const char **names; size_t n_names, cap_names;
	rasa_vec out;                /* train_rasa_tracker */
	size_t max_trackers, max_events, work, depth;
	rasa_index warned;           /* checkpoint names warned about */
	int rc;
} gen;

static int g_fail(gen *g, int code, const char *fmt, ...) TRAIN_PRINTF(3, 4);
static int g_fail(gen *g, int code, const char *fmt, ...)
{
	char buf[TRAIN_ERROR_TEXT];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	g->c.file = "";
	g->rc = rasa_fail(&g->c, code, NULL, "%s", buf);
	return g->rc;
}

static int path_push(gen *g, const train_rasa_event *e)
{
	if (++g->work > g->max_events)
		return g_fail(g, TRAIN_EINVAL, "the stories produce more than %zu events over all their "
		              "paths (checkpoints and 'or' steps multiply them); simplify them or raise "
		              "max_events", g->max_events);
	if (g->n_path == g->cap_path) {
		size_t nc = g->cap_path ? g->cap_path * 2 : 64;
		const train_rasa_event **np = realloc(g->path, nc * sizeof *np);
		if (!np)
			return g_fail(g, TRAIN_ENOMEM, "out of memory");
		g->path = np;
		g->cap_path = nc;
	}
	g->path[g->n_path++] = e;
	return TRAIN_OK;
}

static int names_push(gen *g, const char *n)
{
	if (g->n_names == g->cap_names) {
		size_t nc = g->cap_names ? g->cap_names * 2 : 16;
		const char **np = realloc(g->names, nc * sizeof *np);
		if (!np)
			return g_fail(g, TRAIN_ENOMEM, "out of memory");
		g->names = np;
		g->cap_names = nc;
	}
	g->names[g->n_names++] = n;
	return TRAIN_OK;
}

enum { W_UNUSED, W_CYCLE, W_UNREACHED };

static void warn_once(gen *g, const char *name, const train_rasa_loc *loc, int which)
{
	if (rasa_index_get(&g->warned, name) != SIZE_MAX)
		return;
	if (rasa_index_put(&g->warned, name, 1)) {
		g->c.oom = true;
		return;
	}
	g->c.file = loc->file;
	if (which == W_UNUSED)
		rasa_warn_at(&g->c, loc->line, loc->col, "checkpoint '%s' is never used: no story starts "
		             "at it, so the story paths that end there are dropped, as Rasa drops them", name);
	else if (which == W_CYCLE)
		rasa_warn_at(&g->c, loc->line, loc->col, "checkpoint '%s' closes a cycle of stories: each "
		             "path takes the cycle once", name);
	else
		rasa_warn_at(&g->c, loc->line, loc->col, "checkpoint '%s' is never reached: no story ends "
		             "at it, so the stories that start there are not used", name);
}

static int emit(gen *g, const train_rasa_story *first, train_rasa_story_kind kind, size_t n_cond,
                bool conv_start, bool wait)
{
	if (g->out.n >= g->max_trackers)
		return g_fail(g, TRAIN_EINVAL, "the stories and rules make more than %zu trackers "
		              "(checkpoints and 'or' steps multiply them); simplify them or raise "
		              "max_trackers", g->max_trackers);
	train_rasa_tracker *t = rasa_vec_push(g->a, &g->out, sizeof *t);
	const train_rasa_event **ev = g->n_path ? rasa_alloc(g->a, g->n_path * sizeof *ev) : NULL;
	size_t len = 1;
	for (size_t i = 0; i < g->n_names; i++)
		len += strlen(g->names[i]) + 3;
	char *name = rasa_alloc(g->a, len);
	if (!t || (g->n_path && !ev) || !name)
		return g_fail(g, TRAIN_ENOMEM, "out of memory");
	if (g->n_path)
		memcpy(ev, g->path, g->n_path * sizeof *ev);
	char *p = name;
	for (size_t i = 0; i < g->n_names; i++) {
		if (i && strcmp(g->names[i], g->names[i - 1]) == 0)
			continue; /* parts of one story */
		if (p != name) {
			memcpy(p, " > ", 3);
			p += 3;
		}
		size_t l = strlen(g->names[i]);
		memcpy(p, g->names[i], l);
		p += l;
	}
	*p = '\0';
	t->kind = kind;
	t->name = name;
	t->events = ev;
	t->n_events = g->n_path;
	t->n_condition = n_cond;
	t->conversation_start = conv_start;
	t->wait_for_user_input = wait;
	t->loc = first->loc;
	return TRAIN_OK;
}

/* The JSON text of the last value set for `slot` on the path ("null" if none). */
static const char *slot_value(const gen *g, const char *slot)
{
	for (size_t i = g->n_path; i-- > 0;)
		if (g->path[i]->kind == TRAIN_RASA_EV_SLOT && strcmp(g->path[i]->name, slot) == 0)
			return g->path[i]->value ? g->path[i]->value : "null";
	return "null";
}

static bool conditions_hold(const gen *g, const train_rasa_event *cp)
{
	for (size_t i = 0; i < cp->n_sub; i++) {
		const char *want = cp->sub[i].value ? cp->sub[i].value : "null";
		if (strcmp(slot_value(g, cp->sub[i].name), want) != 0)
			return false;
	}
	return true;
}

static int walk(gen *g, size_t pi, size_t at, const train_rasa_story *first);

/* Continue after the end of part `pi`. */
static int walk_on(gen *g, size_t pi, const train_rasa_story *first)
{
	const part *p = &g->parts[pi];
	if (!p->n_end)
		return emit(g, first, TRAIN_RASA_STORY, 0, false, true);
	for (size_t k = 0; k < p->n_end; k++) {
		const train_rasa_event *cp = p->end[k];
		size_t li = rasa_index_get(&g->starts_at, cp->name);
		if (li == SIZE_MAX) {
			warn_once(g, cp->name, &cp->loc, W_UNUSED);
			if (g->c.oom)
				return g_fail(g, TRAIN_ENOMEM, "out of memory");
			continue;
		}
		const rasa_vec *lst = &((const rasa_vec *)g->lists.v)[li];
		for (size_t j = 0; j < lst->n; j++) {
			size_t qi = ((const size_t *)lst->v)[j];
			const part *q = &g->parts[qi];
			if (g->on_path[qi]) {
				warn_once(g, cp->name, &cp->loc, W_CYCLE);
				continue;
			}
			if (q->leading) {
				bool held = false;
				for (size_t s = 0; s < q->n_start && !held; s++)
					if (strcmp(q->start[s]->name, cp->name) == 0 && conditions_hold(g, q->start[s]))
						held = true;
				if (!held)
					continue;
			}
			int rc = walk(g, qi, q->first, first);
			if (rc)
				return rc;
		}
	}
	return TRAIN_OK;
}

/* Walk part `pi` from event `at`, with `g->path` holding what came before. */
static int walk(gen *g, size_t pi, size_t at, const train_rasa_story *first)
{
	const part *p = &g->parts[pi];
	size_t mark = g->n_path, nmark = g->n_names;
	int rc = TRAIN_OK;
	if (++g->depth > MAX_DEPTH) {
		rc = g_fail(g, TRAIN_EINVAL, "more than %d 'or' steps and checkpoints lie on one story "
		            "path; split the stories", MAX_DEPTH);
		goto out;
	}
	if (at == p->first) {
		g->on_path[pi] = true;
		if ((rc = names_push(g, p->st->name)))
			goto out;
	}
	for (size_t i = at; i < p->last; i++) {
		const train_rasa_event *e = &p->ev[i];
		if (e->kind != TRAIN_RASA_EV_OR) {
			if ((rc = path_push(g, e)))
				goto out;
			continue;
		}
		size_t m2 = g->n_path;
		for (size_t k = 0; k < e->n_sub; k++) {
			g->n_path = m2;
			if ((rc = path_push(g, &e->sub[k])) || (rc = walk(g, pi, i + 1, first)))
				goto out;
		}
		goto out; /* the alternatives walked the rest */
	}
	rc = walk_on(g, pi, first);
out:
	if (at == p->first)
		g->on_path[pi] = false;
	g->n_path = mark;
	g->n_names = nmark;
	g->depth--;
	return rc;
}

/* Cut the stories into parts at their checkpoints. */
static int make_parts(gen *g)
{
	const train_rasa_stories *s = g->s;
	size_t cap = 0;
	for (size_t i = 0; i < s->n_items; i++)
		if (s->items[i].kind == TRAIN_RASA_STORY)
			cap += 1 + s->items[i].n_events;
	g->parts = cap ? calloc(cap, sizeof *g->parts) : NULL;
	g->on_path = cap ? calloc(cap, sizeof *g->on_path) : NULL;
	if (cap && (!g->parts || !g->on_path))
		return g_fail(g, TRAIN_ENOMEM, "out of memory");
	for (size_t i = 0; i < s->n_items; i++) {
		const train_rasa_story *st = &s->items[i];
		if (st->kind != TRAIN_RASA_STORY)
			continue;
		const train_rasa_event *ev = st->events;
		size_t n = st->n_events, k = 0;
		/* pointers to CHECKPOINT events, kept in the arena */
		const train_rasa_event **cps = NULL;
		size_t ncp = 0;
		for (size_t j = 0; j < n; j++)
			ncp += ev[j].kind == TRAIN_RASA_EV_CHECKPOINT;
		if (ncp && !(cps = rasa_alloc(g->a, ncp * sizeof *cps)))
			return g_fail(g, TRAIN_ENOMEM, "out of memory");
		size_t used = 0;
		const train_rasa_event *const *start = cps;
		size_t n_start = 0;
		while (k < n && ev[k].kind == TRAIN_RASA_EV_CHECKPOINT) {
			cps[used++] = &ev[k++];
			n_start++;
		}
		bool leading = true;
		for (;;) {
			part *p = &g->parts[g->n_parts++];
			p->st = st;
			p->ev = ev;
			p->start = start;
			p->n_start = n_start;
			p->leading = leading;
			p->first = k;
			while (k < n && ev[k].kind != TRAIN_RASA_EV_CHECKPOINT)
				k++;
			p->last = k;
			p->end = cps ? cps + used : NULL; /* no checkpoints: no array (NULL + 0 is UB) */
			while (k < n && ev[k].kind == TRAIN_RASA_EV_CHECKPOINT) {
				if (ev[k].n_sub) {
					g->c.file = ev[k].loc.file;
					rasa_warn_at(&g->c, ev[k].loc.line, ev[k].loc.col, "the slot conditions of "
					             "checkpoint '%s' are ignored: only a checkpoint that starts a story "
					             "can have them, as in Rasa", ev[k].name);
				}
				cps[used++] = &ev[k++];
				p->n_end++;
			}
			if (k >= n)
				break;
			start = p->end;
			n_start = p->n_end;
			leading = false;
		}
	}
	/* checkpoint name -> parts that start at it */
	for (size_t pi = 0; pi < g->n_parts; pi++) {
		const part *p = &g->parts[pi];
		for (size_t k = 0; k < p->n_start; k++) {
			const char *nm = p->start[k]->name;
			size_t li = rasa_index_get(&g->starts_at, nm);
			if (li == SIZE_MAX) {
				if (!rasa_vec_push(g->a, &g->lists, sizeof(rasa_vec)) ||
				    rasa_index_put(&g->starts_at, nm, g->lists.n - 1))
					return g_fail(g, TRAIN_ENOMEM, "out of memory");
				li = g->lists.n - 1;
			}
			rasa_vec *lst = &((rasa_vec *)g->lists.v)[li];
			if (lst->n && ((size_t *)lst->v)[lst->n - 1] == pi)
				continue;
			size_t *slot = rasa_vec_push(g->a, lst, sizeof *slot);
			if (!slot)
				return g_fail(g, TRAIN_ENOMEM, "out of memory");
			*slot = pi;
		}
	}
	/* start checkpoints nothing ends at */
	rasa_index ends = { 0 };
	for (size_t pi = 0; pi < g->n_parts; pi++)
		for (size_t k = 0; k < g->parts[pi].n_end; k++)
			if (rasa_index_put(&ends, g->parts[pi].end[k]->name, 1)) {
				rasa_index_free(&ends);
				return g_fail(g, TRAIN_ENOMEM, "out of memory");
			}
	for (size_t pi = 0; pi < g->n_parts; pi++) {
		const part *p = &g->parts[pi];
		if (!p->leading)
			continue;
		for (size_t k = 0; k < p->n_start; k++)
			if (rasa_index_get(&ends, p->start[k]->name) == SIZE_MAX)
				warn_once(g, p->start[k]->name, &p->start[k]->loc, W_UNREACHED);
	}
	rasa_index_free(&ends);
	return g->c.oom ? g_fail(g, TRAIN_ENOMEM, "out of memory") : TRAIN_OK;
}

/* A rule: its condition, then its steps with one alternative per `or`. */
static int walk_rule(gen *g, const train_rasa_story *r, size_t at)
{
	size_t mark = g->n_path;
	int rc = TRAIN_OK;
	if (++g->depth > MAX_DEPTH) {
		rc = g_fail(g, TRAIN_EINVAL, "rule '%s' has more than %d 'or' steps", r->name, MAX_DEPTH);
		goto out;
	}
	for (size_t i = at; i < r->n_events; i++) {
		const train_rasa_event *e = &r->events[i];
		if (e->kind != TRAIN_RASA_EV_OR) {
			if ((rc = path_push(g, e)))
				goto out;
			continue;
		}
		size_t m2 = g->n_path;
		for (size_t k = 0; k < e->n_sub; k++) {
			g->n_path = m2;
			if ((rc = path_push(g, &e->sub[k])) || (rc = walk_rule(g, r, i + 1)))
				goto out;
		}
		goto out;
	}
	rc = emit(g, r, TRAIN_RASA_RULE, r->n_condition, r->conversation_start, r->wait_for_user_input);
out:
	g->n_path = mark;
	g->depth--;
	return rc;
}

void train_rasa_trackers_free(train_rasa_trackers *t)
{
	if (t)
		rasa_arena_free(t->arena_);
}

int train_rasa_trackers_generate(const train_rasa_stories *stories, const train_rasa_tracker_opts *opts,
                                 train_rasa_trackers **out, train_rasa_diags *diags, train_error *err)
{
	if (!stories || !out)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0,
		                       "train_rasa_trackers_generate: NULL argument");
	*out = NULL;
	gen g;
	memset(&g, 0, sizeof g);
	g.s = stories;
	g.c.diags = diags;
	g.c.err = err;
	g.c.file = "";
	g.max_trackers = opts && opts->max_trackers ? opts->max_trackers : 100000;
	g.max_events = opts && opts->max_events ? opts->max_events : 10000000;
	g.a = rasa_arena_new();
	g.c.scratch = rasa_arena_new();
	int rc;
	if (!g.a || !g.c.scratch) {
		rc = train_error_set(err, TRAIN_ENOMEM, NULL, 0, 0, "out of memory");
		goto out;
	}
	g.c.arena = g.a;
	if ((rc = make_parts(&g)))
		goto out;
	for (size_t pi = 0; pi < g.n_parts && !rc; pi++)
		if (g.parts[pi].leading && g.parts[pi].n_start == 0)
			rc = walk(&g, pi, g.parts[pi].first, g.parts[pi].st);
	for (size_t i = 0; i < stories->n_items && !rc; i++) {
		const train_rasa_story *r = &stories->items[i];
		if (r->kind != TRAIN_RASA_RULE)
			continue;
		g.n_names = 0;
		rc = names_push(&g, r->name);
		for (size_t k = 0; k < r->n_condition && !rc; k++)
			rc = path_push(&g, &r->condition[k]);
		if (!rc)
			rc = walk_rule(&g, r, 0);
		g.n_path = 0;
	}
	if (!rc && g.c.oom)
		rc = g_fail(&g, TRAIN_ENOMEM, "out of memory");
	if (!rc) {
		train_rasa_trackers *t = rasa_alloc(g.a, sizeof *t);
		if (!t) {
			rc = train_error_set(err, TRAIN_ENOMEM, NULL, 0, 0, "out of memory");
			goto out;
		}
		t->items = g.out.v;
		t->n_items = g.out.n;
		t->arena_ = g.a;
		g.a = NULL;
		*out = t;
	}
out:
	rasa_arena_free(g.a);
	rasa_arena_free(g.c.scratch);
	rasa_ctx_clear(&g.c);
	rasa_index_free(&g.starts_at);
	rasa_index_free(&g.warned);
	free(g.parts);
	free(g.on_path);
	free(g.path);
	free(g.names);
	return rc;
}
