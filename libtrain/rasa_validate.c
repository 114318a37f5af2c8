/*
 * rasa_validate.c - the checks `rasa data validate` and `rasa train` make
 * on a Rasa project, and the training type its data allows (issue 4).
 *
 * The facts come from Rasa 3.x (rasa/validator.py, rasa/model_training.py,
 * rasa/core/training/story_conflict.py, rasa/shared/core/domain.py and
 * slots.py); the code is our own.  Where Rasa only warns about a name a
 * story or rule uses but the domain lacks, we make it an error (the name
 * can only be a mistake, and the dialogue model would fail on it or
 * silently ignore it); names of the NLU data stay warnings, as in Rasa (an
 * NLU model trains without the domain), and so does what Rasa treats as
 * harmless.  <train/rasa_validate.h> lists the checks.
 *
 * Sections: names and findings (small containers), the domain's names,
 * what the data uses, the checks, story conflicts, training type.
 *
 * Left out: Rasa's flows (Rasa Pro), config.yml checks (mandatory keys,
 * assistant_id), the deprecated MappingPolicy `triggers`, and the NLU
 * "competing extractors" warnings (they need the pipeline).
 */
#include <train/rasa_validate.h>

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rasa_private.h"
#include "util.h"

#include <xxhash.h>

/* ------------------------------------------------------------------------
 * What Rasa 3 defines without being told (rasa/shared/core/constants.py).
 */

static const char *const default_intents[] = {
	"restart", "back", "out_of_scope", "session_start", "nlu_fallback", NULL,
};

static const char *const default_actions[] = {
	"action_listen", "action_restart", "action_session_start", "action_default_fallback",
	"action_deactivate_loop", "action_revert_fallback_events",
	"action_default_ask_affirmation", "action_default_ask_rephrase",
	"action_two_stage_fallback", "action_unlikely_intent", "action_back", "action_send_text",
	"...", "action_extract_slots", NULL,
};

/* Responses that default actions utter when the domain has them. */
static const char *const default_action_responses[] = {
	"utter_default", "utter_ask_rephrase", "utter_restart", "utter_back",
	"utter_revert_fallback_and_reapply_last_intent", NULL,
};

/* Slots every domain has, and those the knowledge base action adds. */
static const char *const default_slots[] = { "requested_slot", "session_started_metadata", NULL };
static const char *const kb_slots[] = {
	"knowledge_base_listed_objects", "knowledge_base_last_object",
	"knowledge_base_last_object_type", NULL,
};

#define ACTION_LISTEN "action_listen"
#define ACTION_UNLIKELY_INTENT "action_unlikely_intent"
#define UTTER "utter_"

static int in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (!strcmp(*list, s))
			return 1;
	return 0;
}

static int has_prefix(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

/* ------------------------------------------------------------------------
 * A set of names with where each was first seen and how often.  Keys are
 * borrowed (from the loaded structs, static tables, or the pool below).
 */

typedef struct name_ent {
	const char *key;
	uint64_t hash;         /* of key: compared before the text, and kept for growing */
	train_rasa_loc loc;    /* first place */
	size_t count;
	unsigned flags;        /* free for the check that owns the set */
	const void *ptr;       /* what defined it (a slot, a form, ...), or NULL */
} name_ent;

typedef struct nameset {
	name_ent *e;
	size_t n, cap;          /* cap: 0 or a power of two, at least twice n */
} nameset;

static uint64_t str_hash(const char *s, size_t n) { return XXH3_64bits(s, n); }

/* The slot of `key` (whose hash is `h`): its entry, or the empty slot where
 * it goes.  The table is at most half full, so there is one. */
static name_ent *ns_slot(const nameset *s, const char *key, uint64_t h)
{
	for (size_t i = h & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		name_ent *e = &s->e[i];
		if (!e->key || e->key == key || (e->hash == h && !strcmp(e->key, key)))
			return e;
	}
}

static name_ent *ns_get(const nameset *s, const char *key)
{
	if (!s->cap || !key)
		return NULL;
	name_ent *e = ns_slot(s, key, str_hash(key, strlen(key)));
	return e->key ? e : NULL;
}

static int ns_has(const nameset *s, const char *key) { return ns_get(s, key) != NULL; }

/* Room for `more` further keys with the table at most half full. */
static int ns_reserve(nameset *s, size_t more)
{
	if (more > SIZE_MAX / 4 - s->n)
		return TRAIN_ENOMEM;
	size_t want = (s->n + more) * 2;
	if (want <= s->cap)
		return TRAIN_OK;
	size_t cap = s->cap ? s->cap : 64;
	while (cap < want)
		cap *= 2;
	if (cap > SIZE_MAX / sizeof(name_ent))
		return TRAIN_ENOMEM;
	name_ent *ne = calloc(cap, sizeof *ne);
	if (!ne)
		return TRAIN_ENOMEM;
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->e[i].key)
			continue;
		size_t j = s->e[i].hash & (cap - 1);
		while (ne[j].key)
			j = (j + 1) & (cap - 1);
		ne[j] = s->e[i];
	}
	free(s->e);
	s->e = ne;
	s->cap = cap;
	return TRAIN_OK;
}

/* Add a use of `key` (first use keeps its loc); NULL when out of memory. */
static name_ent *ns_add(nameset *s, const char *key, const train_rasa_loc *loc)
{
	if (ns_reserve(s, 1))
		return NULL;
	uint64_t h = str_hash(key, strlen(key));
	name_ent *e = ns_slot(s, key, h);
	if (e->key) {
		e->count++;
		return e;
	}
	e->key = key;
	e->hash = h;
	if (loc)
		e->loc = *loc;
	else
		e->loc.file = "";
	e->count = 1;
	s->n++;
	return e;
}

static void ns_free(nameset *s)
{
	free(s->e);
	memset(s, 0, sizeof *s);
}

/* Entries in a stable order (by first place, then name), for messages
 * that do not depend on hashing.  malloc'd array of pointers. */
static int cmp_loc(const train_rasa_loc *a, const train_rasa_loc *b)
{
	int c = strcmp(a->file ? a->file : "", b->file ? b->file : "");
	if (c)
		return c;
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	if (a->col != b->col)
		return a->col < b->col ? -1 : 1;
	return 0;
}

static int cmp_ent(const void *x, const void *y)
{
	const name_ent *a = *(const name_ent *const *)x, *b = *(const name_ent *const *)y;
	int c = cmp_loc(&a->loc, &b->loc);
	return c ? c : strcmp(a->key, b->key);
}

static name_ent **ns_sorted(const nameset *s)
{
	name_ent **v = malloc((s->n ? s->n : 1) * sizeof *v);
	if (!v)
		return NULL;
	size_t k = 0;
	for (size_t i = 0; i < s->cap; i++)
		if (s->e[i].key)
			v[k++] = &s->e[i];
	qsort(v, k, sizeof *v, cmp_ent);
	return v;
}

/* ------------------------------------------------------------------------
 * The validation context: the inputs, the names, the findings.
 */

typedef struct finding {
	train_rasa_severity sev;
	train_rasa_loc loc;
	size_t seq;              /* insertion order, for a stable sort */
	char *text;
} finding;

/* A from_entity mapping that fills a slot from entities (auto-fill). */
typedef struct entity_fill {
	const char *entity, *role, *group; /* pool strings; role/group NULL when absent */
} entity_fill;

/* What the story conflict check needs to know about a slot. */
typedef struct slot_info {
	const train_rasa_slot *slot;
	int featurized;          /* influence_conversation and not `any` */
	entity_fill *fills;      /* from_entity mappings without conditions */
	size_t n_fills;
	char **values;           /* categorical: lower-cased values */
	size_t n_values;
	/* The last value whose features were computed and those features (a
	 * story's states repeat a slot's value step after step; each value
	 * is JSON text to parse). */
	train_buf memo_val, memo_feat;
	bool memo_ok;
	/* check_slots' finding for check_unused: the mappings are a non-empty
	 * list (valid when mapped_known) */
	bool mapped, mapped_known;
} slot_info;

typedef struct vctx {
	const train_rasa_domain *dom;   /* NULL: no domain given */
	const train_rasa_nlu *nlu;
	const train_rasa_stories *st;
	int max_history;                /* < 0: all */
	train_rasa_tracker_opts topts;
	train_rasa_diags *diags;

	/* defined by the domain (and Rasa's defaults) */
	nameset d_intents, d_entities, d_slots, d_responses, d_actions, d_forms;
	nameset d_utter_ok;             /* utter_ names that have a response (bases included) */
	/* used by the data */
	nameset u_intents_nlu, u_intents_story, u_entities_nlu, u_entities_story, u_actions;
	nameset u_loops, u_slots_set;
	nameset u_slots_read, u_slots_cond, u_entities_mapped, u_responses_implicit;
	nameset u_actions_implicit;
	size_t n_story_items;           /* stories + rules */
	int has_nlu;                    /* NLU examples */
	int has_retrieval;              /* NLU examples of retrieval intents */
	size_t (*dups)[2];              /* duplicate examples: (message, first of its text) */
	size_t n_dups, cap_dups;

	slot_info *slots;               /* parallel to dom->slots */

	finding *f;
	size_t nf, capf;
	train_error gen_err;            /* why tracker generation failed */
	char **pool;                    /* malloc'd strings owned here */
	size_t npool, cappool;
	int oom;
} vctx;

static char *pool_keep(vctx *v, char *s)
{
	if (!s) {
		v->oom = 1;
		return NULL;
	}
	if (v->npool == v->cappool) {
		size_t cap = v->cappool ? v->cappool * 2 : 64;
		char **p = realloc(v->pool, cap * sizeof *p);
		if (!p) {
			free(s);
			v->oom = 1;
			return NULL;
		}
		v->pool = p;
		v->cappool = cap;
	}
	v->pool[v->npool++] = s;
	return s;
}

TRAIN_PRINTF(2, 3)
static const char *pool_fmt(vctx *v, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return pool_keep(v, s);
}

static void use(vctx *v, nameset *s, const char *key, const train_rasa_loc *loc)
{
	if (key && !ns_add(s, key, loc))
		v->oom = 1;
}

TRAIN_PRINTF(4, 5)
static void report(vctx *v, train_rasa_severity sev, const train_rasa_loc *loc, const char *fmt,
                   ...)
{
	if (v->nf == v->capf) {
		size_t cap = v->capf ? v->capf * 2 : 32;
		finding *f = realloc(v->f, cap * sizeof *f);
		if (!f) {
			v->oom = 1;
			return;
		}
		v->f = f;
		v->capf = cap;
	}
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	if (!s) {
		v->oom = 1;
		return;
	}
	finding *f = &v->f[v->nf];
	f->sev = sev;
	if (loc)
		f->loc = *loc;
	else
		memset(&f->loc, 0, sizeof f->loc);
	if (!f->loc.file)
		f->loc.file = "";
	f->seq = v->nf;
	f->text = s;
	v->nf++;
}

/* "data/nlu.yml:12" for messages that point at a second place. */
static const char *where(vctx *v, const train_rasa_loc *loc)
{
	if (!loc || !loc->file || !loc->file[0])
		return "";
	if (!loc->line)
		return pool_fmt(v, " (%s)", loc->file);
	return pool_fmt(v, " (%s:%u)", loc->file, (unsigned)loc->line);
}

/* Where the domain was read, for "add it to ..." hints. */
static const char *domain_file(const vctx *v)
{
	const train_rasa_domain *d = v->dom;
	const train_rasa_loc *locs[] = {
		d->n_intents ? &d->intents[0].loc : NULL, d->n_entities ? &d->entities[0].loc : NULL,
		d->n_slots ? &d->slots[0].loc : NULL, d->n_responses ? &d->responses[0].loc : NULL,
		d->n_actions ? &d->actions[0].loc : NULL, d->n_forms ? &d->forms[0].loc : NULL,
	};
	for (size_t i = 0; i < sizeof locs / sizeof locs[0]; i++)
		if (locs[i] && locs[i]->file && locs[i]->file[0])
			return locs[i]->file;
	return "the domain";
}

/* ------------------------------------------------------------------------
 * JSON helpers (slot mappings, values and response conditions arrive as
 * canonical JSON text).
 */

static json_t *json_of(const char *text)
{
	if (!text)
		return NULL;
	json_error_t je;
	return json_loads(text, JSON_DECODE_ANY, &je);
}

/* A string member, or NULL. */
static const char *jstr(const json_t *o, const char *key)
{
	const json_t *m = json_object_get(o, key);
	return json_is_string(m) ? json_string_value(m) : NULL;
}

/* ------------------------------------------------------------------------
 * The domain's names.
 */

static void collect_domain(vctx *v)
{
	const train_rasa_domain *d = v->dom;
	int kb = 0;

	/* Default names have no `ptr`: an intent without one uses every entity. */
	for (const char *const *p = default_intents; *p; p++)
		use(v, &v->d_intents, *p, NULL);
	for (size_t i = 0; i < d->n_intents; i++) {
		name_ent *e = ns_add(&v->d_intents, d->intents[i].name, &d->intents[i].loc);
		if (!e) {
			v->oom = 1;
			continue;
		}
		e->loc = d->intents[i].loc; /* a default intent the domain lists */
		e->ptr = &d->intents[i];
	}
	for (size_t i = 0; i < d->n_entities; i++) {
		name_ent *e = ns_add(&v->d_entities, d->entities[i].name, &d->entities[i].loc);
		if (e)
			e->ptr = &d->entities[i];
		else
			v->oom = 1;
	}
	for (size_t i = 0; i < d->n_actions; i++) {
		use(v, &v->d_actions, d->actions[i].name, &d->actions[i].loc);
		if (!strcmp(d->actions[i].name, "action_query_knowledge_base"))
			kb = 1;
	}
	for (size_t i = 0; i < d->n_slots; i++) {
		name_ent *e = ns_add(&v->d_slots, d->slots[i].name, &d->slots[i].loc);
		if (e)
			e->ptr = &d->slots[i];
		else
			v->oom = 1;
	}
	for (const char *const *p = default_slots; *p; p++)
		if (!ns_has(&v->d_slots, *p))
			use(v, &v->d_slots, *p, NULL);
	for (const char *const *p = kb_slots; kb && *p; p++)
		if (!ns_has(&v->d_slots, *p))
			use(v, &v->d_slots, *p, NULL);
	for (size_t i = 0; i < d->n_forms; i++) {
		name_ent *e = ns_add(&v->d_forms, d->forms[i].name, &d->forms[i].loc);
		if (e)
			e->ptr = &d->forms[i];
		else
			v->oom = 1;
		use(v, &v->d_actions, d->forms[i].name, &d->forms[i].loc);
	}
	for (const char *const *p = default_actions; *p; p++)
		use(v, &v->d_actions, *p, NULL);
	for (size_t i = 0; i < d->e2e_actions.n; i++)
		use(v, &v->d_actions, d->e2e_actions.v[i], NULL);

	/* Responses of the domain and of the NLU files; a retrieval response
	 * "utter_faq/ask_x" makes "utter_faq" an action (Rasa's
	 * ResponsesSyncImporter). */
	const train_rasa_response *lists[2] = { d->responses, v->nlu ? v->nlu->responses : NULL };
	size_t counts[2] = { d->n_responses, v->nlu ? v->nlu->n_responses : 0 };
	for (int k = 0; k < 2; k++)
		for (size_t i = 0; i < counts[k]; i++) {
			const train_rasa_response *r = &lists[k][i];
			name_ent *e = ns_add(&v->d_responses, r->name, &r->loc);
			if (e)
				e->ptr = r;
			else
				v->oom = 1;
			use(v, &v->d_actions, r->name, &r->loc);
			use(v, &v->d_utter_ok, r->name, &r->loc);
			const char *slash = strchr(r->name, '/');
			if (slash) {
				char *base = strndup(r->name, (size_t)(slash - r->name));
				if (pool_keep(v, base)) {
					use(v, &v->d_actions, base, &r->loc);
					use(v, &v->d_utter_ok, base, &r->loc);
				}
			}
		}
	/* Retrieval intents of the NLU data: "utter_<intent>" is an action. */
	for (size_t i = 0; v->has_retrieval && i < v->nlu->n_messages; i++) {
		const train_rasa_message *m = &v->nlu->messages[i];
		char name[512];
		if (!m->response_key || !m->intent ||
		    (size_t)snprintf(name, sizeof name, UTTER "%s", m->intent) >= sizeof name ||
		    ns_has(&v->d_actions, name))
			continue;
		use(v, &v->d_actions, pool_keep(v, strdup(name)), NULL);
	}
}

/* ------------------------------------------------------------------------
 * What the data uses.
 */

static void use_entities(vctx *v, nameset *set, const train_rasa_entity *ents, size_t n,
                         const train_rasa_loc *loc)
{
	for (size_t i = 0; i < n; i++)
		use(v, set, ents[i].entity, loc);
}

static void use_event(vctx *v, const train_rasa_event *e)
{
	switch (e->kind) {
	case TRAIN_RASA_EV_USER:
		use(v, &v->u_intents_story, e->name, &e->loc);
		use_entities(v, &v->u_entities_story, e->entities, e->n_entities, &e->loc);
		break;
	case TRAIN_RASA_EV_ACTION:
		use(v, &v->u_actions, e->name, &e->loc);
		break;
	case TRAIN_RASA_EV_SLOT:
		use(v, &v->u_slots_set, e->name, &e->loc);
		break;
	case TRAIN_RASA_EV_ACTIVE_LOOP:
		use(v, &v->u_loops, e->name, &e->loc);
		break;
	case TRAIN_RASA_EV_OR:
		for (size_t i = 0; i < e->n_sub; i++)
			use_event(v, &e->sub[i]);
		break;
	case TRAIN_RASA_EV_CHECKPOINT:
		/* Slot conditions of a checkpoint read slots; Rasa does not
		 * count them among the slots a story sets. */
		for (size_t i = 0; i < e->n_sub; i++) {
			use(v, &v->u_slots_read, e->sub[i].name, &e->sub[i].loc);
			use(v, &v->u_slots_cond, e->sub[i].name, &e->sub[i].loc);
		}
		break;
	case TRAIN_RASA_EV_BOT:
	default:
		break;
	}
}

static void scan_nlu(vctx *v);

static void collect_data(vctx *v)
{
	scan_nlu(v);
	for (size_t i = 0; v->st && i < v->st->n_items; i++) {
		const train_rasa_story *s = &v->st->items[i];
		for (size_t j = 0; j < s->n_condition; j++)
			use_event(v, &s->condition[j]);
		for (size_t j = 0; j < s->n_events; j++)
			use_event(v, &s->events[j]);
	}
}

/* ------------------------------------------------------------------------
 * Domain-internal references: slot mappings, forms, responses.
 */

/* Intent names of a mapping's `intent` or `not_intent` (a string or a list). */
static void check_mapping_intents(vctx *v, const char *slot, const json_t *m, const char *key,
                                  const train_rasa_loc *loc)
{
	const char *type = jstr(m, "type");
	int from_intent = type && !strcmp(type, "from_intent") && !strcmp(key, "intent");
	const json_t *x = json_object_get(m, key);
	size_t n = json_is_array(x) ? json_array_size(x) : 1;
	for (size_t i = 0; x && i < n; i++) {
		const json_t *it = json_is_array(x) ? json_array_get(x, i) : x;
		if (!json_is_string(it) || ns_has(&v->d_intents, json_string_value(it)))
			continue;
		report(v, TRAIN_RASA_WARNING, loc,
		       "slot '%s' has a mapping with %s '%s', which is not an intent in the domain, so "
		       "the mapping never applies for it%s: add the intent to 'intents:' in %s or "
		       "correct the name",
		       slot, key, json_string_value(it),
		       from_intent ? " (Rasa skips the whole mapping)" : "", domain_file(v));
	}
}

/* One mapping of `slot` (from the domain's `mappings`, or a Rasa 2 form's). */
static void check_mapping(vctx *v, const train_rasa_slot *slot, const char *slot_name,
                          const json_t *m, const train_rasa_loc *loc, slot_info *si)
{
	if (!json_is_object(m))
		return;
	const char *type = jstr(m, "type");
	const char *entity = jstr(m, "entity");
	int from_entity = type && !strcmp(type, "from_entity");
	if (from_entity && entity) {
		/* the JSON tree goes away: keep the name */
		use(v, &v->u_entities_mapped, pool_keep(v, strdup(entity)), loc);
		if (!ns_has(&v->d_entities, entity))
			report(v, TRAIN_RASA_WARNING, loc,
			       "slot '%s' is mapped from entity '%s', which is not in the domain; Rasa "
			       "skips such a mapping, so the slot is never filled from it: add '%s' to "
			       "'entities:' in %s or correct the name",
			       slot_name, entity, entity, domain_file(v));
	}
	check_mapping_intents(v, slot_name, m, "intent", loc);
	check_mapping_intents(v, slot_name, m, "not_intent", loc);
	const json_t *conds = json_object_get(m, "conditions");
	for (size_t i = 0; slot && json_is_array(conds) && i < json_array_size(conds); i++) {
		const char *loop = jstr(json_array_get(conds, i), "active_loop");
		if (!loop)
			continue;
		name_ent *fe = ns_get(&v->d_forms, loop);
		if (!fe) {
			report(v, TRAIN_RASA_ERROR, loc,
			       "slot '%s' has a mapping condition on active_loop '%s', which is not a form "
			       "in the domain: add the form under 'forms:' in %s or correct the name",
			       slot_name, loop, domain_file(v));
			continue;
		}
		const train_rasa_form *form = fe->ptr;
		int listed = 0;
		for (size_t k = 0; k < form->required_slots.n; k++)
			listed |= !strcmp(form->required_slots.v[k], slot_name);
		if (form->required_slots.n && !listed && !(type && !strcmp(type, "from_trigger_intent")))
			report(v, TRAIN_RASA_ERROR, loc,
			       "slot '%s' has a mapping condition on form '%s', but the form does not ask "
			       "for it: add '%s' to the form's required_slots, or remove the condition",
			       slot_name, loop, slot_name);
	}
	/* Rasa fills slots from entities after each user turn when a
	 * from_entity mapping has no conditions (Domain.slots_for_entities);
	 * the conflict check replays that. */
	if (si && from_entity && entity) {
		if (json_is_array(conds) && json_array_size(conds))
			return;
		entity_fill *f = realloc(si->fills, (si->n_fills + 1) * sizeof *f);
		if (!f) {
			v->oom = 1;
			return;
		}
		si->fills = f;
		const char *role = jstr(m, "role"), *group = jstr(m, "group");
		f[si->n_fills].entity = pool_keep(v, strdup(entity));
		f[si->n_fills].role = role ? pool_keep(v, strdup(role)) : NULL;
		f[si->n_fills].group = group ? pool_keep(v, strdup(group)) : NULL;
		si->n_fills++;
	}
}

static void check_slots(vctx *v)
{
	const train_rasa_domain *d = v->dom;
	for (size_t i = 0; i < d->n_slots; i++) {
		const train_rasa_slot *s = &d->slots[i];
		slot_info *si = &v->slots[i];
		si->slot = s;
		si->featurized = s->influence_conversation && s->type != TRAIN_RASA_SLOT_ANY;
		if (s->type == TRAIN_RASA_SLOT_CATEGORICAL) {
			si->values = calloc(s->values.n + 1, sizeof *si->values);
			if (!si->values) {
				v->oom = 1;
				continue;
			}
			for (size_t k = 0; k < s->values.n; k++) {
				char *x = strdup(s->values.v[k]);
				if (!x) {
					v->oom = 1;
					break;
				}
				for (char *p = x; *p; p++)
					if (*p >= 'A' && *p <= 'Z')
						*p = (char)(*p - 'A' + 'a');
				si->values[si->n_values++] = x;
			}
		}
		json_t *maps = json_of(s->mappings);
		for (size_t k = 0; json_is_array(maps) && k < json_array_size(maps); k++)
			check_mapping(v, s, s->name, json_array_get(maps, k), &s->loc, si);
		/* a failed parse (out of memory) is asked again by check_unused */
		si->mapped_known = !s->mappings || maps;
		si->mapped = json_is_array(maps) && json_array_size(maps) > 0;
		json_decref(maps);
	}
}

static void check_forms(vctx *v)
{
	const train_rasa_domain *d = v->dom;
	for (size_t i = 0; i < d->n_forms; i++) {
		const train_rasa_form *f = &d->forms[i];
		for (size_t k = 0; k < f->required_slots.n; k++) {
			const char *slot = f->required_slots.v[k];
			if (!ns_has(&v->d_slots, slot))
				report(v, TRAIN_RASA_ERROR, &f->loc,
				       "form '%s' requires slot '%s', which is not in the domain: add it "
				       "under 'slots:' in %s (with mappings that fill it) or correct the name",
				       f->name, slot, domain_file(v));
			/* The responses a form asks with count as used. */
			use(v, &v->u_responses_implicit, pool_fmt(v, UTTER "ask_%s", slot), NULL);
			use(v, &v->u_responses_implicit, pool_fmt(v, UTTER "ask_%s_%s", f->name, slot),
			    NULL);
			/* ... and so do the custom actions that ask instead */
			use(v, &v->u_actions_implicit, pool_fmt(v, "action_ask_%s", slot), NULL);
			use(v, &v->u_actions_implicit, pool_fmt(v, "action_ask_%s_%s", f->name, slot),
			    NULL);
		}
		for (size_t k = 0; k < f->ignored_intents.n; k++)
			if (!ns_has(&v->d_intents, f->ignored_intents.v[k]))
				report(v, TRAIN_RASA_WARNING, &f->loc,
				       "form '%s' ignores intent '%s', which is not in the domain: add it to "
				       "'intents:' in %s or correct the name",
				       f->name, f->ignored_intents.v[k], domain_file(v));
		/* Rasa 2 forms: required_slots as a map of slot -> mappings. */
		json_t *fm = json_of(f->mappings);
		const char *slot;
		json_t *list;
		json_object_foreach(fm, slot, list) {
			for (size_t k = 0; json_is_array(list) && k < json_array_size(list); k++)
				check_mapping(v, NULL, slot, json_array_get(list, k), &f->loc, NULL);
		}
		json_decref(fm);
	}
}

/* `{name}` placeholders of response texts and slot conditions read slots. */
static void scan_responses(vctx *v, const train_rasa_response *rs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < rs[i].n_variations; j++) {
			const train_rasa_variation *var = &rs[i].variations[j];
			for (const char *p = var->text; p && (p = strchr(p, '{'));) {
				const char *q = ++p;
				while (*q && *q != '}' && *q != '{' && *q != ' ')
					q++;
				if (*q == '}' && q > p) {
					char *name = strndup(p, (size_t)(q - p));
					if (pool_keep(v, name))
						use(v, &v->u_slots_read, name, &var->loc);
				}
				p = q;
			}
			json_t *conds = json_of(var->condition);
			for (size_t k = 0; json_is_array(conds) && k < json_array_size(conds); k++) {
				const json_t *c = json_array_get(conds, k);
				const char *type = jstr(c, "type"), *name = jstr(c, "name");
				if (!name || (type && strcmp(type, "slot")))
					continue;
				if (!ns_has(&v->d_slots, name))
					report(v, TRAIN_RASA_WARNING, &var->loc,
					       "a variation of response '%s' has a condition on slot '%s', which "
					       "is not in the domain, so it never holds: add the slot or correct "
					       "the name",
					       rs[i].name, name);
				char *kept = pool_keep(v, strdup(name));
				if (kept)
					use(v, &v->u_slots_read, kept, &var->loc);
			}
			json_decref(conds);
		}
}

static void check_intent_entities(vctx *v)
{
	const train_rasa_domain *d = v->dom;
	for (size_t i = 0; i < d->n_intents; i++) {
		const train_rasa_intent *it = &d->intents[i];
		for (size_t k = 0; k < it->entities.n; k++)
			if (!ns_has(&v->d_entities, it->entities.v[k]))
				report(v, TRAIN_RASA_WARNING, &it->loc,
				       "intent '%s' %s entity '%s', which is not in the domain: add it to "
				       "'entities:' in %s or correct the name",
				       it->name, it->use == TRAIN_RASA_USE_IGNORING ? "ignores" : "uses",
				       it->entities.v[k], domain_file(v));
	}
}

/* ------------------------------------------------------------------------
 * Used but not defined (errors), defined but not used (warnings).
 */

static void check_used(vctx *v)
{
	const char *df = domain_file(v);
	name_ent **s;

	/* NLU data with names the domain lacks still trains an NLU model, so
	 * Rasa only warns (and so do we); the dialogue data cannot. */
	if ((s = ns_sorted(&v->u_intents_nlu))) {
		for (size_t i = 0; i < v->u_intents_nlu.n; i++)
			if (!ns_has(&v->d_intents, s[i]->key))
				report(v, TRAIN_RASA_WARNING, &s[i]->loc,
				       "intent '%s' has NLU examples but is not in the domain, so the "
				       "dialogue model does not know it: add it to 'intents:' in %s or "
				       "correct the name",
				       s[i]->key, df);
		free(s);
	}
	if ((s = ns_sorted(&v->u_entities_nlu))) {
		for (size_t i = 0; i < v->u_entities_nlu.n; i++)
			if (!ns_has(&v->d_entities, s[i]->key))
				report(v, TRAIN_RASA_WARNING, &s[i]->loc,
				       "entity '%s' is annotated in the NLU data but is not in the domain, so "
				       "the dialogue model ignores it and no slot is filled from it: add it "
				       "to 'entities:' in %s or correct the name",
				       s[i]->key, df);
		free(s);
	}
	if ((s = ns_sorted(&v->u_intents_story))) {
		for (size_t i = 0; i < v->u_intents_story.n; i++)
			if (!ns_has(&v->d_intents, s[i]->key))
				report(v, TRAIN_RASA_ERROR, &s[i]->loc,
				       "intent '%s' is used in a story or rule but is not in the domain: add "
				       "it to 'intents:' in %s or correct the name",
				       s[i]->key, df);
		free(s);
	}
	if ((s = ns_sorted(&v->u_entities_story))) {
		for (size_t i = 0; i < v->u_entities_story.n; i++)
			if (!ns_has(&v->d_entities, s[i]->key))
				report(v, TRAIN_RASA_ERROR, &s[i]->loc,
				       "entity '%s' is used in a story or rule but is not in the domain: add "
				       "it to 'entities:' in %s or correct the name",
				       s[i]->key, df);
		free(s);
	}
	if ((s = ns_sorted(&v->u_actions))) {
		for (size_t i = 0; i < v->u_actions.n; i++) {
			const char *a = s[i]->key;
			int utter = has_prefix(a, UTTER);
			if (!ns_has(&v->d_actions, a) && utter)
				report(v, TRAIN_RASA_ERROR, &s[i]->loc,
				       "action '%s' has no response: add a response '%s' under 'responses:' "
				       "in %s, or correct the name",
				       a, a, df);
			else if (!ns_has(&v->d_actions, a))
				report(v, TRAIN_RASA_ERROR, &s[i]->loc,
				       "action '%s' is not in the domain: add it to 'actions:' in %s (and "
				       "implement it in your action server), or correct the name",
				       a, df);
			else if (utter && !ns_has(&v->d_utter_ok, a))
				report(v, TRAIN_RASA_WARNING, &s[i]->loc,
				       "action '%s' is listed under 'actions:' but has no response: if it is "
				       "a custom action this is fine, otherwise add a response '%s'",
				       a, a);
		}
		free(s);
	}
	if ((s = ns_sorted(&v->u_loops))) {
		for (size_t i = 0; i < v->u_loops.n; i++)
			if (!ns_has(&v->d_actions, s[i]->key))
				report(v, TRAIN_RASA_ERROR, &s[i]->loc,
				       "active_loop '%s' is not a form or action in the domain: add it under "
				       "'forms:' in %s or correct the name",
				       s[i]->key, df);
		free(s);
	}
	if ((s = ns_sorted(&v->u_slots_set))) {
		for (size_t i = 0; i < v->u_slots_set.n; i++)
			if (!ns_has(&v->d_slots, s[i]->key))
				report(v, TRAIN_RASA_ERROR, &s[i]->loc,
				       "slot '%s' is set in a story or rule but is not in the domain (Rasa "
				       "refuses to train with unresolved slots): add it under 'slots:' in %s "
				       "or correct the name",
				       s[i]->key, df);
		free(s);
	}
	if ((s = ns_sorted(&v->u_slots_cond))) {
		for (size_t i = 0; i < v->u_slots_cond.n; i++)
			if (!ns_has(&v->d_slots, s[i]->key))
				report(v, TRAIN_RASA_WARNING, &s[i]->loc,
				       "a checkpoint's condition is on slot '%s', which is not in the domain, "
				       "so it never holds and the stories after it are never joined: add the "
				       "slot under 'slots:' in %s or correct the name",
				       s[i]->key, df);
		free(s);
	}
}

static void check_unused(vctx *v)
{
	const train_rasa_domain *d = v->dom;
	int has_stories = v->n_story_items > 0;

	for (size_t i = 0; i < d->n_intents; i++) {
		const train_rasa_intent *it = &d->intents[i];
		if (in_list(default_intents, it->name))
			continue;
		int nlu = ns_has(&v->u_intents_nlu, it->name);
		int story = ns_has(&v->u_intents_story, it->name);
		if (v->has_nlu && has_stories && !nlu && !story)
			report(v, TRAIN_RASA_WARNING, &it->loc,
			       "intent '%s' has no NLU examples and no story or rule uses it: remove it "
			       "from the domain, or add examples and stories",
			       it->name);
		else if (v->has_nlu && !nlu)
			report(v, TRAIN_RASA_WARNING, &it->loc,
			       "intent '%s' is in the domain but has no NLU examples: add examples under "
			       "'nlu:', or remove it",
			       it->name);
		else if (has_stories && !story)
			report(v, TRAIN_RASA_WARNING, &it->loc,
			       "intent '%s' is not used in any story or rule: add one that shows what the "
			       "bot does after it, or remove the intent",
			       it->name);
	}
	for (size_t i = 0; i < d->n_entities; i++) {
		const train_rasa_entity_decl *e = &d->entities[i];
		if (!ns_has(&v->u_entities_nlu, e->name) && !ns_has(&v->u_entities_story, e->name) &&
		    !ns_has(&v->u_entities_mapped, e->name))
			report(v, TRAIN_RASA_WARNING, &e->loc,
			       "entity '%s' is in the domain but no NLU example, story or slot mapping uses "
			       "it: annotate examples with it, or remove it",
			       e->name);
	}
	for (size_t i = 0; has_stories && i < d->n_responses; i++) {
		const train_rasa_response *r = &d->responses[i];
		const char *slash = strchr(r->name, '/');
		int used = ns_has(&v->u_actions, r->name) || ns_has(&v->u_responses_implicit, r->name) ||
		           in_list(default_action_responses, r->name);
		if (!used && slash) {
			char *base = strndup(r->name, (size_t)(slash - r->name));
			if (!base)
				v->oom = 1;
			used = base && ns_has(&v->u_actions, base);
			free(base);
		}
		if (!used)
			report(v, TRAIN_RASA_WARNING, &r->loc,
			       "response '%s' is not used in any story or rule: use it as an action, or "
			       "remove it (a custom action that utters it is fine)",
			       r->name);
	}
	for (size_t i = 0; has_stories && i < d->n_actions; i++) {
		const train_rasa_action *a = &d->actions[i];
		int used = ns_has(&v->u_actions, a->name) || ns_has(&v->u_loops, a->name) ||
		           ns_has(&v->u_actions_implicit, a->name) ||
		           in_list(default_actions, a->name) || ns_has(&v->d_forms, a->name) ||
		           !strcmp(a->name, "action_validate_slot_mappings") ||
		           ns_has(&v->d_responses, a->name);
		if (!used && has_prefix(a->name, "validate_"))
			used = ns_has(&v->d_forms, a->name + strlen("validate_"));
		if (!used)
			report(v, TRAIN_RASA_WARNING, &a->loc,
			       "action '%s' is in the domain but no story or rule uses it: use it, or "
			       "remove it",
			       a->name);
	}
	for (size_t i = 0; i < d->n_slots; i++) {
		const train_rasa_slot *s = &d->slots[i];
		int required = 0;
		for (size_t k = 0; k < d->n_forms && !required; k++)
			for (size_t j = 0; j < d->forms[k].required_slots.n; j++)
				required |= !strcmp(d->forms[k].required_slots.v[j], s->name);
		int mapped;
		if (v->slots[i].mapped_known) {
			mapped = v->slots[i].mapped;
		} else {
			json_t *maps = json_of(s->mappings);
			mapped = json_is_array(maps) && json_array_size(maps) > 0;
			json_decref(maps);
		}
		/* Rasa 2 domains: a slot named like an entity was filled from it. */
		int autofill = !s->mappings && d->store_entities_as_slots && ns_has(&v->d_entities, s->name);
		if (required || mapped || autofill || ns_has(&v->u_slots_set, s->name) ||
		    ns_has(&v->u_slots_read, s->name) || in_list(default_slots, s->name))
			continue;
		report(v, TRAIN_RASA_WARNING, &s->loc,
		       "slot '%s' is never filled: no mapping, form, story or rule sets it; add "
		       "'mappings:' (type custom if an action sets it), or remove it",
		       s->name);
	}
}

/* One pass over the NLU examples for what the checks need of them: the
 * intents and entities they use, whether there are retrieval intents, and
 * the same text under two intents (Rasa: verify_example_repetition_in_intents,
 * reported by check_duplicates in the checks' order).
 *
 * Messages come in runs of one intent (one string): a run is one lookup,
 * the rest count on its entry (valid until the set grows, which only the
 * next new intent does).  The duplicates: a table of the first message of
 * each text, sized once to at most half full; a slot is the text's hash
 * (high half) and that message's index + 1 (low half), so most probes
 * compare hashes, not texts, and each text is hashed once; hashes run AHEAD
 * messages in front with their slots prefetched (the table is bigger than
 * the caches close to the core).  A message's text_len is its text's
 * strlen: the readers and the decoder make every message so (<train/rasa.h>:
 * loaded structs are the library's and read-only). */
static void scan_nlu(vctx *v)
{
	size_t n = v->nlu ? v->nlu->n_messages : 0;
	if (!n)
		return;
	const train_rasa_message *ms = v->nlu->messages;
	uint64_t *tab = NULL;
	unsigned char *warned = NULL; /* by first message: once per text */
	size_t cap = 64, mapped = 0;
	if (n < UINT32_MAX / 2) {
		while (cap < n * 2)
			cap *= 2;
		/* a big table is fresh memory written all over: huge pages */
		if (cap * sizeof *tab < ((size_t)256 << 10) ||
		    !(tab = rasa_huge_map(cap * sizeof *tab, &mapped)))
			tab = calloc(cap, sizeof *tab);
		warned = calloc((n + 7) / 8, 1);
	}
	if (!tab || !warned) { /* (or more messages than the index half holds: no such memory) */
		if (mapped)
			rasa_huge_unmap(tab, mapped);
		else
			free(tab);
		free(warned);
		v->oom = 1;
		return;
	}
	enum { AHEAD = 16 };
	uint64_t ring[AHEAD];
	for (size_t i = 0; i < n && i < AHEAD; i++) {
		const train_rasa_message *m = &ms[i];
		ring[i] = m->text ? str_hash(m->text, m->text_len) : 0;
		__builtin_prefetch(&tab[ring[i] & (cap - 1)]);
	}
	const char *run = NULL;
	name_ent *run_e = NULL;
	for (size_t i = 0; i < n; i++) {
		const train_rasa_message *m = &ms[i];
		uint64_t h = ring[i % AHEAD];
		if (i + AHEAD < n) {
			const train_rasa_message *ma = &ms[i + AHEAD];
			uint64_t ha = ma->text ? str_hash(ma->text, ma->text_len) : 0;
			ring[i % AHEAD] = ha;
			__builtin_prefetch(&tab[ha & (cap - 1)]);
		}
		if (m->intent && m->intent == run) {
			run_e->count++;
		} else if (m->intent) {
			if (!(run_e = ns_add(&v->u_intents_nlu, m->intent, &m->loc))) {
				v->oom = 1;
				run = NULL;
			} else {
				run = m->intent;
			}
		}
		use_entities(v, &v->u_entities_nlu, m->entities, m->n_entities, &m->loc);
		v->has_retrieval |= m->response_key != NULL;
		if (!m->text || !m->intent)
			continue;
		uint64_t tag = h & 0xFFFFFFFF00000000ull;
		size_t j = (size_t)h & (cap - 1);
		for (; tab[j]; j = (j + 1) & (cap - 1)) {
			const train_rasa_message *o = &ms[(tab[j] & 0xFFFFFFFFu) - 1];
			if ((tab[j] & 0xFFFFFFFF00000000ull) == tag && o->text_len == m->text_len &&
			    !memcmp(o->text, m->text, m->text_len))
				break;
		}
		if (!tab[j]) {
			tab[j] = tag | (uint64_t)(i + 1);
			continue;
		}
		size_t fi = (size_t)(tab[j] & 0xFFFFFFFFu) - 1;
		const train_rasa_message *first = &ms[fi];
		int same = !strcmp(first->intent, m->intent) &&
		           !strcmp(first->response_key ? first->response_key : "",
		                   m->response_key ? m->response_key : "");
		if (same || (warned[fi / 8] & (1u << (fi % 8))))
			continue;
		warned[fi / 8] |= (unsigned char)(1u << (fi % 8));
		if (v->n_dups == v->cap_dups) {
			size_t nc = v->cap_dups ? v->cap_dups * 2 : 16;
			size_t(*nd)[2] = realloc(v->dups, nc * sizeof *nd);
			if (!nd) {
				v->oom = 1;
				continue;
			}
			v->dups = nd;
			v->cap_dups = nc;
		}
		v->dups[v->n_dups][0] = i;
		v->dups[v->n_dups][1] = fi;
		v->n_dups++;
	}
	if (mapped)
		rasa_huge_unmap(tab, mapped);
	else
		free(tab);
	free(warned);
}

/* The same example text under two intents, as scan_nlu found them. */
static void check_duplicates(vctx *v)
{
	for (size_t k = 0; k < v->n_dups; k++) {
		const train_rasa_message *m = &v->nlu->messages[v->dups[k][0]];
		const train_rasa_message *first = &v->nlu->messages[v->dups[k][1]];
		report(v, TRAIN_RASA_WARNING, &m->loc,
		       "example '%s' is under intent '%s%s%s' here and under '%s%s%s'%s: an example "
		       "should belong to one intent, remove one of them",
		       m->text, m->intent, m->response_key ? "/" : "",
		       m->response_key ? m->response_key : "", first->intent,
		       first->response_key ? "/" : "", first->response_key ? first->response_key : "",
		       where(v, &first->loc));
	}
}

/* ------------------------------------------------------------------------
 * Story conflicts (Rasa: rasa/core/training/story_conflict.py).
 *
 * Each story tracker is replayed as Rasa's training data generator makes
 * its events explicit: an action_listen before every user turn (unless
 * one is already there) and at the end, and the slots that from_entity
 * mappings fill after each user turn.  Before every action the dialogue
 * state is taken: the latest user turn (intent and the entities the
 * intent featurizes, or the end-to-end text), the previous action (name
 * or bot text), the active loop, and the featurized slots (set and, for
 * bool/categorical/float, their feature value).  Two action events whose
 * last max_history states are equal but whose actions differ are a
 * conflict, unless the last state has no prior event (the start of a
 * conversation).  An action_unlikely_intent is always reported, as Rasa
 * does.
 */

typedef struct conflict_act {
	const char *id;             /* "action name" or bot text */
	int is_text;
	const char *stories[3];     /* first distinct tracker names */
	size_t n_stories, n_more;
	train_rasa_loc loc;         /* first occurrence */
} conflict_act;

typedef struct conflict_ent {
	train_fp key;
	char *prior;                /* "intent 'greet'" etc.; NULL: no prior event */
	conflict_act *acts;
	size_t n_acts;
	int unlikely;               /* an action_unlikely_intent followed */
	size_t order;               /* creation order, for reporting */
} conflict_ent;

typedef struct conflict_tab {
	conflict_ent *e;            /* open addressing on key.lo */
	size_t n, cap;
} conflict_tab;

static conflict_ent *ct_find(conflict_tab *t, train_fp key, int create, int *oom)
{
	if (create && (t->n + 1) * 4 > t->cap * 3) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		conflict_ent *ne = calloc(cap, sizeof *ne);
		if (!ne) {
			*oom = 1;
			return NULL;
		}
		for (size_t i = 0; i < t->cap; i++) {
			if (!t->e[i].acts)
				continue;
			size_t j = t->e[i].key.lo & (cap - 1);
			while (ne[j].acts)
				j = (j + 1) & (cap - 1);
			ne[j] = t->e[i];
		}
		free(t->e);
		t->e = ne;
		t->cap = cap;
	}
	if (!t->cap)
		return NULL;
	for (size_t i = key.lo & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
		if (!t->e[i].acts) {
			if (!create)
				return NULL;
			t->e[i].key = key;
			t->e[i].acts = calloc(1, sizeof *t->e[i].acts);
			if (!t->e[i].acts) {
				*oom = 1;
				return NULL;
			}
			t->e[i].order = t->n++;
			return &t->e[i];
		}
		if (train_fp_eq(t->e[i].key, key))
			return &t->e[i];
	}
}

static void ct_free(conflict_tab *t)
{
	for (size_t i = 0; i < t->cap; i++) {
		free(t->e[i].acts);
		free(t->e[i].prior);
	}
	free(t->e);
	memset(t, 0, sizeof *t);
}

/* The state of a replayed tracker. */
typedef struct replay {
	const train_rasa_event *user;   /* latest user turn, or NULL */
	const char *prev;               /* previous action name or bot text, or NULL */
	int prev_is_text;
	const char *loop;               /* active loop, or NULL */
	const char **slot_val;          /* per domain slot: JSON text (borrowed), NULL: unset */
} replay;

/* Python's str(x).lower() for a categorical slot value. */
static char *category_of(const json_t *j)
{
	char buf[64];
	const char *s = NULL;
	if (json_is_string(j))
		s = json_string_value(j);
	else if (json_is_true(j))
		s = "true";
	else if (json_is_false(j))
		s = "false";
	else if (json_is_integer(j)) {
		snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(j));
		s = buf;
	} else if (json_is_real(j)) {
		double x = json_real_value(j);
		for (int p = 1; p <= 17; p++) {
			snprintf(buf, sizeof buf, "%.*g", p, x);
			if (strtod(buf, NULL) == x)
				break;
		}
		if (!strpbrk(buf, ".eninf"))
			strcat(buf, ".0");
		s = buf;
	}
	if (!s)
		return NULL;
	char *r = strdup(s);
	for (char *p = r; p && *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return r;
}

/* Rasa's bool_from_any: 1/0, or -1 when it cannot convert. */
static int bool_of(const json_t *j)
{
	if (json_is_boolean(j))
		return json_is_true(j);
	if (json_is_number(j))
		return json_number_value(j) == 1.0;
	if (json_is_string(j)) {
		const char *s = json_string_value(j);
		char *end;
		int numeric = *s != '\0';
		for (const char *p = s; *p; p++)
			numeric &= (*p >= '0' && *p <= '9');
		if (numeric)
			return strtod(s, &end) == 1.0;
		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		size_t n = strlen(s);
		while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n'))
			n--;
		if (n == 4 && !strncasecmp(s, "true", 4))
			return 1;
		if (n == 5 && !strncasecmp(s, "false", 5))
			return 0;
	}
	return -1;
}

/* The feature text of a slot's value, "" when it has no non-zero feature
 * (not in the state). */
static void slot_feature(const slot_info *si, const char *value, train_buf *out)
{
	json_t *j = json_of(value);
	if (!j || json_is_null(j))
		goto out;
	switch (si->slot->type) {
	case TRAIN_RASA_SLOT_TEXT:
		train_buf_str(out, "1");
		break;
	case TRAIN_RASA_SLOT_LIST:
		if ((json_is_array(j) && json_array_size(j)) || (json_is_object(j) && json_object_size(j)) ||
		    (json_is_string(j) && json_string_length(j)))
			train_buf_str(out, "1");
		break;
	case TRAIN_RASA_SLOT_BOOL: {
		int b = bool_of(j);
		if (b >= 0)
			train_buf_str(out, b ? "1,1" : "1,0");
		break;
	}
	case TRAIN_RASA_SLOT_CATEGORICAL: {
		char *c = category_of(j);
		const char *hit = "__other__";
		for (size_t k = 0; c && k < si->n_values; k++)
			if (!strcmp(si->values[k], c))
				hit = si->values[k];
		train_buf_str(out, hit);
		free(c);
		break;
	}
	case TRAIN_RASA_SLOT_FLOAT: {
		double x;
		if (json_is_number(j))
			x = json_number_value(j);
		else if (json_is_boolean(j))
			x = json_is_true(j);
		else if (json_is_string(j)) {
			char *end;
			x = strtod(json_string_value(j), &end);
			if (end == json_string_value(j) || *end)
				break;
		} else
			break;
		double lo = si->slot->min_value, hi = si->slot->max_value;
		double capped = fmax(lo, fmin(hi, x));
		double range = fabs(hi - lo) > 0 ? fabs(hi - lo) : 1;
		train_buf_printf(out, "1,%.17g", (capped - lo) / range);
		break;
	}
	case TRAIN_RASA_SLOT_ANY:
	default:
		break;
	}
out:
	json_decref(j);
}

/* Does `intent` featurize entity label `label` ("city", "city#from")? */
static int intent_uses(const vctx *v, const char *intent, const char *label)
{
	const train_rasa_domain *d = v->dom;
	if (!d)
		return 1;
	name_ent *ie = ns_get(&v->d_intents, intent);
	if (!ie)
		return 1; /* an intent the domain lacks: Rasa featurizes every label */
	const train_rasa_intent *it = ie->ptr; /* NULL for a default intent: use all */
	/* the entity the label is about */
	size_t base_len = strcspn(label, "#");
	const train_rasa_entity_decl *decl = NULL;
	for (size_t i = 0; i < d->n_entities; i++)
		if (strlen(d->entities[i].name) == base_len &&
		    !strncmp(d->entities[i].name, label, base_len))
			decl = &d->entities[i];
	if (!decl)
		return 0; /* Rasa featurizes only entities (and roles, groups) of the domain */
	if (label[base_len]) {
		const char *sub = label + base_len + 1;
		int known = 0;
		for (size_t i = 0; i < decl->roles.n; i++)
			known |= !strcmp(decl->roles.v[i], sub);
		for (size_t i = 0; i < decl->groups.n; i++)
			known |= !strcmp(decl->groups.v[i], sub);
		if (!known)
			return 0;
	}
	int listed = 0;
	for (size_t i = 0; it && i < it->entities.n; i++)
		listed |= strlen(it->entities.v[i]) == base_len &&
		          !strncmp(it->entities.v[i], label, base_len);
	/* Rasa: used = included - excluded, where the entities whose
	 * influence_conversation is false are excluded unless the intent lists
	 * its own ignore_entities, and are never in "all". */
	switch (it ? it->use : TRAIN_RASA_USE_ALL) {
	case TRAIN_RASA_USE_NONE:
		return 0;
	case TRAIN_RASA_USE_LISTED:
		return listed && decl->influence_conversation;
	case TRAIN_RASA_USE_IGNORING:
		return !listed && decl->influence_conversation;
	case TRAIN_RASA_USE_ALL:
	default:
		return decl->influence_conversation;
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* pre, s, post appended (states are built often: no format parsing) */
static int buf3(train_buf *b, const char *pre, const char *s, const char *post)
{
	int rc = train_buf_str(b, pre);
	if (!rc)
		rc = train_buf_str(b, s);
	if (!rc)
		rc = train_buf_str(b, post);
	return rc;
}

/* The user part of the state: "i:<intent>" with sorted featurized entity
 * labels, and/or "t:<text>" for end-to-end turns. */
static int user_state(const vctx *v, const train_rasa_event *u, train_buf *b)
{
	if (!u)
		return TRAIN_OK;
	int rc = TRAIN_OK;
	if (u->text)
		rc = buf3(b, "t:", u->text, "\x1f");
	if (!rc && u->name) {
		rc = buf3(b, "i:", u->name, "\x1f");
		/* labels: entity, entity#role, entity#group; a set, sorted */
		size_t n = 0;
		char **labels = calloc(3 * u->n_entities + 1, sizeof *labels);
		if (!labels)
			return TRAIN_ENOMEM;
		for (size_t i = 0; !rc && i < u->n_entities; i++) {
			const train_rasa_entity *e = &u->entities[i];
			const char *subs[3] = { NULL, e->role, e->group };
			for (int k = 0; k < 3; k++) {
				if (k && !subs[k])
					continue;
				char *l = k ? train_strfmt("%s#%s", e->entity, subs[k]) : train_strdup(e->entity);
				if (!l) {
					rc = TRAIN_ENOMEM;
					break;
				}
				if (!intent_uses(v, u->name, l)) {
					free(l);
					continue;
				}
				labels[n++] = l;
			}
		}
		qsort(labels, n, sizeof *labels, cmp_str);
		for (size_t i = 0; !rc && i < n; i++)
			if (!i || strcmp(labels[i], labels[i - 1]))
				rc = buf3(b, "e:", labels[i], "\x1f");
		for (size_t i = 0; i < n; i++)
			free(labels[i]);
		free(labels);
	}
	return rc;
}

static int state_of(const vctx *v, const replay *r, train_buf *b)
{
	b->len = 0;
	int rc = train_buf_str(b, "U");
	if (!rc)
		rc = user_state(v, r->user, b);
	if (!rc && r->prev)
		rc = buf3(b, r->prev_is_text ? "\x1ePt" : "\x1ePa", r->prev, "");
	if (!rc && r->loop)
		rc = buf3(b, "\x1eL", r->loop, "");
	if (!rc)
		rc = train_buf_str(b, "\x1eS");
	for (size_t i = 0; !rc && v->dom && i < v->dom->n_slots; i++) {
		const slot_info *si = &v->slots[i];
		if (!si->featurized || !r->slot_val[i])
			continue;
		size_t mark = b->len;
		if ((rc = buf3(b, "", si->slot->name, "=")))
			break;
		size_t before = b->len;
		slot_info *sm = &v->slots[i];
		const char *val = r->slot_val[i];
		size_t vlen = strlen(val);
		if (sm->memo_ok && sm->memo_val.len == vlen + 1 && !memcmp(sm->memo_val.data, val, vlen)) {
			if (sm->memo_feat.len && (rc = train_buf_add(b, sm->memo_feat.data, sm->memo_feat.len)))
				break;
		} else {
			slot_feature(si, val, b);
			sm->memo_val.len = sm->memo_feat.len = 0;
			sm->memo_ok = !train_buf_add(&sm->memo_val, val, vlen + 1) &&
			              !train_buf_add(&sm->memo_feat, b->data + before, b->len - before);
		}
		if (b->len == before)
			b->len = mark; /* all-zero features: not in the state */
		else
			rc = train_buf_str(b, "\x1f");
	}
	return rc;
}

/* What Rasa names as the event before a conflict, or NULL for none. */
static char *prior_event(const replay *r)
{
	if (r->prev && !r->prev_is_text && strcmp(r->prev, ACTION_LISTEN))
		return train_strfmt("action '%s'", r->prev);
	if (r->prev && r->prev_is_text)
		return train_strfmt("bot utterance '%s'", r->prev);
	if (r->user && r->user->name)
		return train_strfmt("intent '%s'", r->user->name);
	if (r->user && r->user->text)
		return train_strfmt("user utterance '%s'", r->user->text);
	return NULL;
}

static int slot_index(const vctx *v, const char *name)
{
	name_ent *e = v->dom ? ns_get(&v->d_slots, name) : NULL;
	if (!e || !e->ptr)
		return -1;
	return (int)((const train_rasa_slot *)e->ptr - v->dom->slots);
}

/* One action (or implicit listen) of a tracker: record it under its key. */
static int record_action(conflict_tab *t, train_fp key, const replay *r,
                         const char *id, int is_text, const char *story,
                         const train_rasa_loc *loc)
{
	int oom = 0;
	conflict_ent *e = ct_find(t, key, 1, &oom);
	if (!e)
		return TRAIN_ENOMEM;
	if (!e->n_acts && !e->prior) {
		e->prior = prior_event(r);
		/* no prior event: NULL is also what out of memory gives; harmless */
	}
	if (!is_text && !strcmp(id, ACTION_UNLIKELY_INTENT))
		e->unlikely = 1;
	conflict_act *a = NULL;
	for (size_t i = 0; i < e->n_acts; i++)
		if (e->acts[i].is_text == is_text && !strcmp(e->acts[i].id, id))
			a = &e->acts[i];
	if (!a) {
		if (e->n_acts) {
			conflict_act *na = realloc(e->acts, (e->n_acts + 1) * sizeof *na);
			if (!na)
				return TRAIN_ENOMEM;
			e->acts = na;
		}
		a = &e->acts[e->n_acts++];
		memset(a, 0, sizeof *a);
		a->id = id;
		a->is_text = is_text;
		a->loc = *loc;
	}
	for (size_t i = 0; i < a->n_stories; i++)
		if (!strcmp(a->stories[i], story))
			return TRAIN_OK;
	if (a->n_stories < 3)
		a->stories[a->n_stories++] = story;
	else
		a->n_more++;
	return TRAIN_OK;
}

/* The JSON value a from_entity mapping gives a slot: for text and list
 * slots only set/unset matters; for the others the entity's value. */
static const char *filled_value(vctx *v, const slot_info *si, const char *value)
{
	if (si->slot->type == TRAIN_RASA_SLOT_TEXT)
		return "\"filled\"";
	if (si->slot->type == TRAIN_RASA_SLOT_LIST)
		return "[\"filled\"]";
	json_t *j = json_string(value ? value : "");
	char *text = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
	json_decref(j);
	return pool_keep(v, text);
}

/* Replay one story tracker. */
static int replay_tracker(vctx *v, conflict_tab *t, const train_rasa_tracker *tr, replay *r,
                          train_buf *sb, train_fp **fps, size_t *fps_cap)
{
	int rc = TRAIN_OK;
	size_t n_states = 0;
	const train_rasa_loc *last_loc = &tr->loc;
	const train_rasa_domain *d = v->dom;

	r->user = NULL;
	r->prev = NULL;
	r->prev_is_text = 0;
	r->loop = NULL;
	for (size_t i = 0; d && i < d->n_slots; i++) {
		const char *iv = d->slots[i].initial_value;
		r->slot_val[i] = iv && strcmp(iv, "null") ? iv : NULL;
	}

	/* The explicit events: listens added, then the tracker's own. */
	for (size_t i = 0; i <= tr->n_events && !rc; i++) {
		const train_rasa_event *e = i < tr->n_events ? tr->events[i] : NULL;
		int listen = !e || e->kind == TRAIN_RASA_EV_USER;
		if (listen && r->prev && !r->prev_is_text && !strcmp(r->prev, ACTION_LISTEN))
			listen = 0; /* do not add a second action_listen */
		for (int pass = 0; pass < 2 && !rc; pass++) {
			/* pass 0: an implicit listen; pass 1: the event itself */
			const char *id = NULL;
			int is_text = 0;
			const train_rasa_loc *loc = last_loc;
			if (pass == 0) {
				if (!listen)
					continue;
				id = ACTION_LISTEN;
			} else {
				if (!e)
					break;
				loc = &e->loc;
				last_loc = &e->loc;
				if (e->kind == TRAIN_RASA_EV_ACTION)
					id = e->name;
				else if (e->kind == TRAIN_RASA_EV_BOT)
					id = e->text, is_text = 1;
			}
			if (id) {
				/* the state before this action, then the key of the window */
				if ((rc = state_of(v, r, sb)))
					break;
				if (n_states == *fps_cap) {
					size_t cap = *fps_cap ? *fps_cap * 2 : 256;
					train_fp *nf = realloc(*fps, cap * sizeof *nf);
					if (!nf) {
						rc = TRAIN_ENOMEM;
						break;
					}
					*fps = nf;
					*fps_cap = cap;
				}
				(*fps)[n_states++] = train_fp_of(sb->data, sb->len);
				size_t h = v->max_history < 0 ? n_states : (size_t)v->max_history;
				size_t start = n_states > h ? n_states - h : 0;
				train_fp key = train_fp_of(*fps + start, (n_states - start) * sizeof(train_fp));
				if ((rc = record_action(t, key, r, id, is_text, tr->name, loc)))
					break;
				r->prev = id;
				r->prev_is_text = is_text;
				continue;
			}
			switch (e->kind) {
			case TRAIN_RASA_EV_USER:
				r->user = e;
				/* from_entity mappings fill slots after the turn */
				for (size_t s = 0; d && d->store_entities_as_slots && s < d->n_slots; s++) {
					const slot_info *si = &v->slots[s];
					const char *last = NULL;
					size_t n_vals = 0;
					for (size_t k = 0; k < si->n_fills; k++)
						for (size_t x = 0; x < e->n_entities; x++) {
							const train_rasa_entity *en = &e->entities[x];
							const entity_fill *f = &si->fills[k];
							if (strcmp(en->entity, f->entity) ||
							    strcmp(en->role ? en->role : "", f->role ? f->role : "") ||
							    strcmp(en->group ? en->group : "", f->group ? f->group : ""))
								continue;
							last = en->value;
							n_vals++;
						}
					if (!n_vals)
						continue;
					/* Text and list slots only featurize set/unset; for the
					 * others the entity value decides (the last one, as Rasa) */
					r->slot_val[s] = filled_value(v, si, last);
				}
				break;
			case TRAIN_RASA_EV_SLOT: {
				int s = slot_index(v, e->name);
				if (s < 0)
					break;
				const char *val = e->value;
				if (!val) /* `- slot_was_set: [name]` */
					val = d->slots[s].type == TRAIN_RASA_SLOT_TEXT   ? "\"filled\""
					      : d->slots[s].type == TRAIN_RASA_SLOT_LIST ? "[\"filled\"]"
					                                                 : NULL;
				r->slot_val[s] = val && strcmp(val, "null") ? val : NULL;
				break;
			}
			case TRAIN_RASA_EV_ACTIVE_LOOP:
				r->loop = e->name;
				break;
			default:
				break;
			}
		}
	}
	return rc;
}

static int cmp_conflict(const void *x, const void *y)
{
	const conflict_ent *a = *(const conflict_ent *const *)x, *b = *(const conflict_ent *const *)y;
	return (a->order > b->order) - (a->order < b->order);
}

static void describe_act(vctx *v, train_buf *b, const conflict_act *a)
{
	train_buf_printf(b, a->is_text ? "bot text '%s'" : "'%s'", a->id);
	if (!a->is_text && !strcmp(a->id, ACTION_LISTEN))
		train_buf_str(b, " (waiting for the user)");
	train_buf_printf(b, " in '%s'", a->stories[0]);
	if (a->n_stories == 2)
		train_buf_printf(b, " and '%s'", a->stories[1]);
	else if (a->n_stories == 3 && !a->n_more)
		train_buf_printf(b, ", '%s' and '%s'", a->stories[1], a->stories[2]);
	else if (a->n_stories == 3)
		train_buf_printf(b, ", '%s' and %zu more", a->stories[1], a->n_more + 1);
	train_buf_str(b, where(v, &a->loc));
}

static int check_conflicts(vctx *v)
{
	train_rasa_trackers *trs = NULL;
	conflict_tab t = { 0 };
	replay r = { 0 };
	train_buf sb = { 0 }, msg = { 0 };
	train_fp *fps = NULL;
	size_t fps_cap = 0;
	conflict_ent **list = NULL;
	int rc;

	if ((rc = train_rasa_trackers_generate(v->st, &v->topts, &trs, v->diags, &v->gen_err))) {
		if (!v->gen_err.text[0])
			train_error_set(&v->gen_err, rc, NULL, 0, 0,
			                "cannot resolve the stories into trackers: %s", train_strerror(rc));
		return rc;
	}
	rc = TRAIN_ENOMEM;
	if (v->dom && !(r.slot_val = calloc(v->dom->n_slots + 1, sizeof *r.slot_val)))
		goto out;
	if (!v->dom && !(r.slot_val = calloc(1, sizeof *r.slot_val)))
		goto out;
	rc = TRAIN_OK;
	for (size_t i = 0; i < trs->n_items && !rc; i++)
		if (trs->items[i].kind == TRAIN_RASA_STORY)
			rc = replay_tracker(v, &t, &trs->items[i], &r, &sb, &fps, &fps_cap);
	if (rc)
		goto out;

	rc = TRAIN_ENOMEM;
	if (!(list = malloc((t.n ? t.n : 1) * sizeof *list)))
		goto out;
	size_t n = 0;
	for (size_t i = 0; i < t.cap; i++)
		if (t.e[i].acts && (t.e[i].n_acts > 1 || t.e[i].unlikely) && t.e[i].prior)
			list[n++] = &t.e[i];
	qsort(list, n, sizeof *list, cmp_conflict);
	for (size_t i = 0; i < n; i++) {
		const conflict_ent *e = list[i];
		msg.len = 0;
		train_buf_printf(&msg, "story structure conflict after %s: ", e->prior);
		for (size_t k = 0; k < e->n_acts; k++) {
			if (k)
				train_buf_str(&msg, ", ");
			describe_act(v, &msg, &e->acts[k]);
		}
		if (v->max_history < 0)
			train_buf_str(&msg, "; the same history leads to different actions");
		else if (v->max_history == 1)
			train_buf_str(&msg, "; the same last state of history leads to different actions");
		else
			train_buf_printf(&msg, "; the same last %d states of history lead to different "
			                 "actions", v->max_history);
		train_buf_str(&msg, ", which no policy can learn: make the stories agree, or tell them "
		              "apart earlier (another intent, entity or slot_was_set)");
		if (e->unlikely && e->n_acts == 1)
			train_buf_str(&msg, " (action_unlikely_intent does not belong in stories)");
		if (train_buf_add(&msg, "", 1))
			goto out;
		const train_rasa_loc *at = &e->acts[e->n_acts > 1 ? 1 : 0].loc;
		report(v, TRAIN_RASA_WARNING, at, "%s", msg.data);
	}
	rc = TRAIN_OK;
out:
	free(list);
	free(fps);
	free(r.slot_val);
	train_buf_free(&sb);
	train_buf_free(&msg);
	ct_free(&t);
	train_rasa_trackers_free(trs);
	return rc;
}

/* ------------------------------------------------------------------------
 * The entry point.
 */

void train_rasa_validate_opts_init(train_rasa_validate_opts *o)
{
	memset(o, 0, sizeof *o);
	o->struct_size = sizeof *o;
}

static int cmp_finding(const void *x, const void *y)
{
	const finding *a = x, *b = y;
	int c = cmp_loc(&a->loc, &b->loc);
	if (c)
		return c;
	return (a->seq > b->seq) - (a->seq < b->seq);
}

int train_rasa_validate(const train_rasa_domain *domain, const train_rasa_nlu *nlu,
                        const train_rasa_stories *stories, const train_rasa_validate_opts *opts,
                        train_rasa_diags *diags, train_error *err)
{
	vctx v = { 0 };
	int rc = TRAIN_OK;
	size_t n_errors = 0;

	if (opts && opts->struct_size != sizeof *opts)
		return train_error_set(err, TRAIN_EINVAL, NULL, 0, 0,
		                       "train_rasa_validate: opts->struct_size is %u, expected %zu "
		                       "(call train_rasa_validate_opts_init)",
		                       (unsigned)opts->struct_size, sizeof *opts);
	v.dom = domain;
	v.nlu = nlu;
	v.st = stories;
	v.diags = diags;
	v.max_history = opts && opts->max_history ? opts->max_history : TRAIN_RASA_DEFAULT_MAX_HISTORY;
	if (v.max_history < 0)
		v.max_history = -1;
	if (opts)
		v.topts = opts->trackers;
	v.n_story_items = stories ? stories->n_items : 0;
	v.has_nlu = nlu && nlu->n_messages > 0;

	if (domain && !(v.slots = calloc(domain->n_slots + 1, sizeof *v.slots)))
		return train_error_set(err, TRAIN_ENOMEM, NULL, 0, 0, "out of memory");

	collect_data(&v);
	if (domain) {
		collect_domain(&v);
		if (train_rasa_domain_is_empty(domain) && v.n_story_items)
			report(&v, TRAIN_RASA_ERROR, NULL,
			       "the domain is empty, but there are %zu stories and rules: a dialogue model "
			       "needs the intents, actions and responses they use in the domain "
			       "(give --domain)",
			       v.n_story_items);
		check_slots(&v);
		check_forms(&v);
		check_intent_entities(&v);
		scan_responses(&v, domain->responses, domain->n_responses);
		if (nlu)
			scan_responses(&v, nlu->responses, nlu->n_responses);
		check_used(&v);
		check_unused(&v);
	}
	check_duplicates(&v);
	if (stories && stories->n_stories && !v.oom)
		rc = check_conflicts(&v);
	if (v.oom && !rc)
		rc = TRAIN_ENOMEM;

	if (v.nf)
		qsort(v.f, v.nf, sizeof *v.f, cmp_finding);
	for (size_t i = 0; i < v.nf; i++) {
		const finding *f = &v.f[i];
		if (f->sev == TRAIN_RASA_ERROR && n_errors++ == 0 && !rc)
			train_error_set(err, TRAIN_EINVAL, f->loc.file, f->loc.line, f->loc.col, "%s",
			                f->text);
		if (diags && train_rasa_diags_add(diags, f->sev, f->loc.file, f->loc.line, f->loc.col,
		                                  "%s", f->text) == TRAIN_ENOMEM && !rc)
			rc = TRAIN_ENOMEM;
	}
	if (rc == TRAIN_ENOMEM)
		train_error_set(err, rc, NULL, 0, 0, "out of memory while validating the Rasa project");
	else if (rc && err)
		*err = v.gen_err;
	else if (!rc && n_errors) {
		rc = TRAIN_EINVAL;
		if (err && n_errors > 1) {
			char first[TRAIN_ERROR_TEXT];
			snprintf(first, sizeof first, "%s", err->text);
			snprintf(err->text, sizeof err->text, "%zu errors in the Rasa project; the first: %.400s",
			         n_errors, first);
		}
	}

	for (size_t i = 0; i < v.nf; i++)
		free(v.f[i].text);
	free(v.f);
	free(v.dups);
	for (size_t i = 0; i < v.npool; i++)
		free(v.pool[i]);
	free(v.pool);
	for (size_t i = 0; domain && v.slots && i < domain->n_slots; i++) {
		free(v.slots[i].fills);
		for (size_t k = 0; k < v.slots[i].n_values; k++)
			free(v.slots[i].values[k]);
		free(v.slots[i].values);
		train_buf_free(&v.slots[i].memo_val);
		train_buf_free(&v.slots[i].memo_feat);
	}
	free(v.slots);
	nameset *sets[] = { &v.d_intents, &v.d_entities, &v.d_slots, &v.d_responses, &v.d_actions,
		            &v.d_forms, &v.d_utter_ok, &v.u_intents_nlu,
		            &v.u_intents_story, &v.u_entities_nlu, &v.u_entities_story,
		            &v.u_actions, &v.u_actions_implicit, &v.u_loops,
		            &v.u_slots_set, &v.u_slots_read, &v.u_slots_cond, &v.u_entities_mapped,
		            &v.u_responses_implicit };
	for (size_t i = 0; i < sizeof sets / sizeof sets[0]; i++)
		ns_free(sets[i]);
	return rc;
}

/* ------------------------------------------------------------------------
 * Training type (Rasa: rasa/model_training.py, train()).
 */

int train_rasa_nlu_has_data(const train_rasa_nlu *nlu)
{
	return nlu && (nlu->n_messages || nlu->n_synonyms || nlu->n_regexes || nlu->n_lookups);
}

static int event_is_e2e(const train_rasa_event *e)
{
	if (e->kind == TRAIN_RASA_EV_BOT)
		return 1;
	if (e->kind == TRAIN_RASA_EV_USER)
		return !e->name && e->text;
	if (e->kind == TRAIN_RASA_EV_OR)
		for (size_t i = 0; i < e->n_sub; i++)
			if (event_is_e2e(&e->sub[i]))
				return 1;
	return 0;
}

int train_rasa_stories_have_e2e(const train_rasa_stories *s)
{
	for (size_t i = 0; s && i < s->n_items; i++) {
		const train_rasa_story *st = &s->items[i];
		for (size_t j = 0; j < st->n_condition; j++)
			if (event_is_e2e(&st->condition[j]))
				return 1;
		for (size_t j = 0; j < st->n_events; j++)
			if (event_is_e2e(&st->events[j]))
				return 1;
	}
	return 0;
}

int train_rasa_domain_is_empty(const train_rasa_domain *d)
{
	return !d || !(d->n_intents || d->n_entities || d->n_slots || d->n_responses ||
	               d->n_actions || d->n_forms || d->e2e_actions.n);
}

train_rasa_training_type train_rasa_training_type_detect(const train_rasa_domain *domain,
                                                         const train_rasa_nlu *nlu,
                                                         const train_rasa_stories *stories)
{
	int has_nlu = train_rasa_nlu_has_data(nlu);
	int has_stories = stories && stories->n_items;
	int e2e = has_stories && train_rasa_stories_have_e2e(stories);

	if (!has_stories && !has_nlu)
		return TRAIN_RASA_TRAINING_NONE;
	if (train_rasa_domain_is_empty(domain) || !has_stories)
		return TRAIN_RASA_TRAINING_NLU;
	if (e2e)
		return TRAIN_RASA_TRAINING_END_TO_END;
	if (!has_nlu)
		return TRAIN_RASA_TRAINING_CORE;
	return TRAIN_RASA_TRAINING_BOTH;
}

const char *train_rasa_training_type_name(train_rasa_training_type t)
{
	switch (t) {
	case TRAIN_RASA_TRAINING_NONE: return "none";
	case TRAIN_RASA_TRAINING_NLU: return "nlu";
	case TRAIN_RASA_TRAINING_CORE: return "core";
	case TRAIN_RASA_TRAINING_BOTH: return "both";
	case TRAIN_RASA_TRAINING_END_TO_END: return "end-to-end";
	default: return "?";
	}
}
