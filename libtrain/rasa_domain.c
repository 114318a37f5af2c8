/*
 * libtrain/rasa_domain.c - the reader of Rasa domain files
 * (<train/rasa.h>, issue 4), and of `responses:`, which NLU files may
 * hold too.
 *
 * Reads what Rasa 3's Domain.from_yaml reads after the checks of its
 * domain schema (shared/utils/schemas/domain.yml, responses.yml and the
 * require_response_keys extension) and of the slot classes:
 *
 *   version, intents (NAME or NAME: {use_entities, ignore_entities}),
 *   entities (NAME or NAME: {roles, groups, influence_conversation}),
 *   slots (NAME: {type, influence_conversation, values, min_value,
 *   max_value, initial_value, mappings}), responses (NAME: [variation]),
 *   actions (NAME or NAME: {send_domain}), forms (NAME: {required_slots,
 *   ignored_intents}), session_config, config, e2e_actions.
 *
 * Files of format version 2 keep what Rasa 2 allowed and Rasa 3 refuses:
 * `auto_fill`, the `unfeaturized` slot type, forms whose required_slots
 * map slots to their mappings; slots without `mappings` are read in any
 * version (Rasa 3 requires them: a warning).  Several domain files merge:
 * a name defined twice is a warning and the first definition stays, as
 * in Rasa's merge (which keeps the first file's definition).
 */
#include "rasa_private.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

struct rasa_domain_b {
	rasa_arena *a;
	rasa_file_cache fc;
	rasa_vec intents, entities, slots, responses, actions, forms, e2e;
	rasa_index intent_ix, entity_ix, slot_ix, resp_ix, action_ix, form_ix, e2e_ix;
	const char *version;
	bool have_session, have_config;
	double expiration;
	bool carry_over, store_entities;
};

rasa_domain_b *rasa_domain_b_new(rasa_arena *a)
{
	rasa_domain_b *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->a = a;
	b->expiration = 60;
	b->carry_over = true;
	b->store_entities = true;
	return b;
}

void rasa_domain_b_free(rasa_domain_b *b)
{
	if (!b)
		return;
	rasa_index_free(&b->intent_ix);
	rasa_index_free(&b->entity_ix);
	rasa_index_free(&b->slot_ix);
	rasa_index_free(&b->resp_ix);
	rasa_index_free(&b->action_ix);
	rasa_index_free(&b->form_ix);
	rasa_index_free(&b->e2e_ix);
	rasa_arena_free(b->a);
	free(b);
}

train_rasa_domain *rasa_domain_b_finish(rasa_domain_b *b)
{
	if (!b)
		return NULL;
	train_rasa_domain *d = rasa_alloc(b->a, sizeof *d);
	if (!d) {
		rasa_domain_b_free(b);
		return NULL;
	}
	d->version = b->version;
	d->intents = b->intents.v;
	d->n_intents = b->intents.n;
	d->entities = b->entities.v;
	d->n_entities = b->entities.n;
	d->slots = b->slots.v;
	d->n_slots = b->slots.n;
	d->responses = b->responses.v;
	d->n_responses = b->responses.n;
	d->actions = b->actions.v;
	d->n_actions = b->actions.n;
	d->forms = b->forms.v;
	d->n_forms = b->forms.n;
	d->e2e_actions = rasa_names_of(&b->e2e);
	d->session_expiration_time = b->expiration;
	d->carry_over_slots_to_new_session = b->carry_over;
	d->store_entities_as_slots = b->store_entities;
	d->arena_ = b->a;
	b->a = NULL;
	rasa_domain_b_free(b);
	return d;
}

void train_rasa_domain_free(train_rasa_domain *d)
{
	if (d)
		rasa_arena_free(d->arena_);
}

/* ------------------------------------------------------------------------
 * Helpers.
 */

/* A name seen before (`ix` -> index into items whose first field is the
 * name and whose loc is at `loc_off`): warn and say so. */
static bool duplicate_at(rasa_ctx *c, const rasa_index *ix, const rasa_vec *vec, size_t elem,
                         size_t loc_off, const char *what, const char *name, unsigned line,
                         unsigned col)
{
	size_t i = rasa_index_get(ix, name);
	if (i == SIZE_MAX)
		return false;
	const train_rasa_loc *l = (const train_rasa_loc *)((const char *)vec->v + i * elem + loc_off);
	rasa_warn_at(c, line, col, "%s '%s' is also defined at %s:%u; the first definition is kept",
	             what, name, l->file, l->line);
	return true;
}

static bool duplicate(rasa_ctx *c, const rasa_index *ix, const rasa_vec *vec, size_t elem,
                      size_t loc_off, const char *what, const char *name, const train_config *at)
{
	return duplicate_at(c, ix, vec, elem, loc_off, what, name, train_config_line(at),
	                    train_config_col(at));
}

static int names_from(rasa_ctx *c, const train_config *n, const char *what, train_rasa_names *out)
{
	rasa_vec v = { 0 };
	int rc = rasa_string_list(c, n, what, &v);
	if (rc)
		return rc;
	*out = rasa_names_of(&v);
	return TRAIN_OK;
}

/* The one key of a `- NAME: {...}` item. */
static int single_key(rasa_ctx *c, const train_config *item, const char *what, const char **name,
                      const train_config **props)
{
	if (train_config_len(item) != 1)
		return rasa_fail(c, TRAIN_EPARSE, item, "%s item must have exactly one name "
		                 "(- NAME or - NAME: {...}), not %zu keys", what, train_config_len(item));
	*name = rasa_strdup(c->arena, train_config_key_at(item, 0));
	*props = train_config_at(item, 0);
	if (!*name)
		return rasa_nomem(c);
	if (!**name)
		return rasa_fail(c, TRAIN_EINVAL, item, "%s name must not be empty", what);
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------
 * intents, entities, actions, e2e_actions.
 */

static const char *const intent_prop_keys[] = { "use_entities", "ignore_entities", NULL };

/* A new intent `name` at line:col (*out), or a warning and *out NULL for
 * one defined before. */
static int push_intent(rasa_domain_b *b, rasa_ctx *c, const char *name, unsigned line, unsigned col,
                       train_rasa_intent **out)
{
	*out = NULL;
	if (duplicate_at(c, &b->intent_ix, &b->intents, sizeof(train_rasa_intent),
	                 offsetof(train_rasa_intent, loc), "intent", name, line, col))
		return TRAIN_OK;
	train_rasa_intent *in = rasa_vec_push(b->a, &b->intents, sizeof *in);
	if (!in || rasa_index_put(&b->intent_ix, name, b->intents.n - 1))
		return rasa_nomem(c);
	in->name = name;
	in->loc = rasa_loc_at(c, line, col);
	in->use = TRAIN_RASA_USE_ALL;
	*out = in;
	return TRAIN_OK;
}

static int read_intents(rasa_domain_b *b, rasa_ctx *c, const train_config *node)
{
	if (train_config_kind(node) == TRAIN_CFG_NULL)
		return TRAIN_OK;
	if (train_config_kind(node) != TRAIN_CFG_LIST)
		return rasa_fail(c, TRAIN_EPARSE, node, "'intents' must be a list (- greet), not %s",
		                 rasa_kind_name(node));
	for (size_t i = 0; i < train_config_len(node); i++) {
		const train_config *it = train_config_at(node, i);
		const char *name = NULL;
		const train_config *props = NULL;
		int rc;
		if (train_config_kind(it) == TRAIN_CFG_STRING) {
			rc = rasa_string(c, it, "an intent name", false, false, &name);
		} else if (train_config_kind(it) == TRAIN_CFG_MAP) {
			rc = single_key(c, it, "an intent", &name, &props);
		} else {
			rc = rasa_fail(c, TRAIN_EPARSE, it, "an intent must be a name or 'NAME: "
			               "{use_entities: ...}', not %s", rasa_kind_name(it));
		}
		if (rc)
			return rc;
		train_rasa_intent *in;
		if ((rc = push_intent(b, c, name, train_config_line(it), train_config_col(it), &in)))
			return rc;
		if (!in)
			continue;
		if (!props || train_config_kind(props) == TRAIN_CFG_NULL)
			continue;
		if (train_config_kind(props) != TRAIN_CFG_MAP)
			return rasa_fail(c, TRAIN_EPARSE, props, "the properties of intent '%s' must be a map "
			                 "(use_entities: ..., ignore_entities: ...), not %s", name,
			                 rasa_kind_name(props));
		for (size_t k = 0; k < train_config_len(props); k++) {
			const char *key = train_config_key_at(props, k);
			if (strcmp(key, "use_entities") && strcmp(key, "ignore_entities"))
				rasa_warn(c, train_config_key_node_at(props, k),
				          "'%s' of intent '%s' is not read by Rasa 3 and is ignored%s", key, name,
				          strcmp(key, "triggers") == 0 ? " (triggers were removed: use a rule)"
				                                       : rasa_did_you_mean(c, key, intent_prop_keys));
		}
		const train_config *use = train_config_get(props, "use_entities");
		const train_config *ign = train_config_get(props, "ignore_entities");
		if (use) {
			train_cfg_kind k = train_config_kind(use);
			if (k == TRAIN_CFG_BOOL) {
				in->use = train_config_as_bool(use) ? TRAIN_RASA_USE_ALL : TRAIN_RASA_USE_NONE;
			} else if (k == TRAIN_CFG_NULL) {
				in->use = TRAIN_RASA_USE_NONE;
			} else if (k == TRAIN_CFG_LIST) {
				if ((rc = names_from(c, use, "'use_entities'", &in->entities)))
					return rc;
				in->use = in->entities.n ? TRAIN_RASA_USE_LISTED : TRAIN_RASA_USE_NONE;
			} else {
				return rasa_fail(c, TRAIN_EPARSE, use, "'use_entities' of intent '%s' must be true, "
				                 "false or a list of entity names, not %s", name, rasa_kind_name(use));
			}
		}
		if (ign && train_config_kind(ign) != TRAIN_CFG_NULL) {
			if (train_config_kind(ign) != TRAIN_CFG_LIST)
				return rasa_fail(c, TRAIN_EPARSE, ign, "'ignore_entities' of intent '%s' must be a "
				                 "list of entity names, not %s", name, rasa_kind_name(ign));
			train_rasa_names ig;
			if ((rc = names_from(c, ign, "'ignore_entities'", &ig)))
				return rc;
			if (in->use == TRAIN_RASA_USE_LISTED && ig.n)
				return rasa_fail(c, TRAIN_EINVAL, ign, "intent '%s' has both a 'use_entities' list "
				                 "and 'ignore_entities': give only one of them", name);
			if (in->use == TRAIN_RASA_USE_ALL && ig.n) {
				in->use = TRAIN_RASA_USE_IGNORING;
				in->entities = ig;
			} else if (in->use == TRAIN_RASA_USE_NONE && ig.n) {
				rasa_warn(c, ign, "intent '%s' uses no entities, so its 'ignore_entities' does "
				          "nothing", name);
			}
		}
	}
	return TRAIN_OK;
}

static const char *const entity_prop_keys[] = { "roles", "groups", "influence_conversation", NULL };

static int push_entity(rasa_domain_b *b, rasa_ctx *c, const char *name, unsigned line, unsigned col,
                       train_rasa_entity_decl **out)
{
	*out = NULL;
	if (duplicate_at(c, &b->entity_ix, &b->entities, sizeof(train_rasa_entity_decl),
	                 offsetof(train_rasa_entity_decl, loc), "entity", name, line, col))
		return TRAIN_OK;
	train_rasa_entity_decl *e = rasa_vec_push(b->a, &b->entities, sizeof *e);
	if (!e || rasa_index_put(&b->entity_ix, name, b->entities.n - 1))
		return rasa_nomem(c);
	e->name = name;
	e->loc = rasa_loc_at(c, line, col);
	e->influence_conversation = true;
	*out = e;
	return TRAIN_OK;
}

static int read_entities(rasa_domain_b *b, rasa_ctx *c, const train_config *node)
{
	if (train_config_kind(node) == TRAIN_CFG_NULL)
		return TRAIN_OK;
	if (train_config_kind(node) != TRAIN_CFG_LIST)
		return rasa_fail(c, TRAIN_EPARSE, node, "'entities' must be a list (- city), not %s",
		                 rasa_kind_name(node));
	for (size_t i = 0; i < train_config_len(node); i++) {
		const train_config *it = train_config_at(node, i);
		const char *name = NULL;
		const train_config *props = NULL;
		int rc;
		if (train_config_kind(it) == TRAIN_CFG_STRING)
			rc = rasa_string(c, it, "an entity name", false, false, &name);
		else if (train_config_kind(it) == TRAIN_CFG_MAP)
			rc = single_key(c, it, "an entity", &name, &props);
		else
			rc = rasa_fail(c, TRAIN_EPARSE, it, "an entity must be a name or 'NAME: {roles: ..., "
			               "groups: ...}', not %s", rasa_kind_name(it));
		if (rc)
			return rc;
		train_rasa_entity_decl *e;
		if ((rc = push_entity(b, c, name, train_config_line(it), train_config_col(it), &e)))
			return rc;
		if (!e)
			continue;
		if (!props || train_config_kind(props) == TRAIN_CFG_NULL)
			continue;
		if (train_config_kind(props) != TRAIN_CFG_MAP)
			return rasa_fail(c, TRAIN_EPARSE, props, "the properties of entity '%s' must be a map "
			                 "(roles: [...], groups: [...]), not %s", name, rasa_kind_name(props));
		if ((rc = rasa_check_keys(c, props, entity_prop_keys, "an entity", true)))
			return rc;
		if ((rc = names_from(c, train_config_get(props, "roles"), "'roles'", &e->roles)) ||
		    (rc = names_from(c, train_config_get(props, "groups"), "'groups'", &e->groups)))
			return rc;
		const train_config *ic = train_config_get(props, "influence_conversation");
		if (ic && (rc = rasa_bool(c, ic, "'influence_conversation'", &e->influence_conversation)))
			return rc;
	}
	return TRAIN_OK;
}

static const char *const action_prop_keys[] = { "send_domain", NULL };

static int push_action(rasa_domain_b *b, rasa_ctx *c, const char *name, unsigned line, unsigned col,
                       train_rasa_action **out)
{
	*out = NULL;
	if (duplicate_at(c, &b->action_ix, &b->actions, sizeof(train_rasa_action),
	                 offsetof(train_rasa_action, loc), "action", name, line, col))
		return TRAIN_OK;
	train_rasa_action *a = rasa_vec_push(b->a, &b->actions, sizeof *a);
	if (!a || rasa_index_put(&b->action_ix, name, b->actions.n - 1))
		return rasa_nomem(c);
	a->name = name;
	a->loc = rasa_loc_at(c, line, col);
	*out = a;
	return TRAIN_OK;
}

static int read_actions(rasa_domain_b *b, rasa_ctx *c, const train_config *node)
{
	if (train_config_kind(node) == TRAIN_CFG_NULL)
		return TRAIN_OK;
	if (train_config_kind(node) != TRAIN_CFG_LIST)
		return rasa_fail(c, TRAIN_EPARSE, node, "'actions' must be a list (- action_x), not %s",
		                 rasa_kind_name(node));
	for (size_t i = 0; i < train_config_len(node); i++) {
		const train_config *it = train_config_at(node, i);
		const char *name = NULL;
		const train_config *props = NULL;
		int rc;
		if (train_config_kind(it) == TRAIN_CFG_STRING)
			rc = rasa_string(c, it, "an action name", false, false, &name);
		else if (train_config_kind(it) == TRAIN_CFG_MAP)
			rc = single_key(c, it, "an action", &name, &props);
		else
			rc = rasa_fail(c, TRAIN_EPARSE, it, "an action must be a name or 'NAME: {send_domain: "
			               "true}', not %s", rasa_kind_name(it));
		if (rc)
			return rc;
		train_rasa_action *a;
		if ((rc = push_action(b, c, name, train_config_line(it), train_config_col(it), &a)))
			return rc;
		if (!a)
			continue;
		if (!props || train_config_kind(props) == TRAIN_CFG_NULL)
			continue;
		if (train_config_kind(props) != TRAIN_CFG_MAP)
			return rasa_fail(c, TRAIN_EPARSE, props, "the properties of action '%s' must be a map "
			                 "(send_domain: true), not %s", name, rasa_kind_name(props));
		if ((rc = rasa_check_keys(c, props, action_prop_keys, "an action", false)))
			return rc;
		const train_config *sd = train_config_get(props, "send_domain");
		if (sd && (rc = rasa_bool(c, sd, "'send_domain'", &a->send_domain)))
			return rc;
	}
	return TRAIN_OK;
}

static int read_e2e(rasa_domain_b *b, rasa_ctx *c, const train_config *node)
{
	if (train_config_kind(node) == TRAIN_CFG_NULL)
		return TRAIN_OK;
	if (train_config_kind(node) != TRAIN_CFG_LIST)
		return rasa_fail(c, TRAIN_EPARSE, node, "'e2e_actions' must be a list of bot texts, not %s",
		                 rasa_kind_name(node));
	for (size_t i = 0; i < train_config_len(node); i++) {
		const train_config *it = train_config_at(node, i);
		const char *t;
		int rc = rasa_string(c, it, "an e2e action text", false, false, &t);
		if (rc)
			return rc;
		if (rasa_index_get(&b->e2e_ix, t) != SIZE_MAX)
			continue;
		if (rasa_vec_push_str(b->a, &b->e2e, t) || rasa_index_put(&b->e2e_ix, t, b->e2e.n - 1))
			return rasa_nomem(c);
	}
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------
 * Slots (Rasa: Slot.resolve_by_type, the slot classes, validate_slot_mappings).
 */

static const struct {
	const char *name, *cls;
	train_rasa_slot_type type;
} slot_types[] = {
	{ "text", "TextSlot", TRAIN_RASA_SLOT_TEXT },
	{ "bool", "BooleanSlot", TRAIN_RASA_SLOT_BOOL },
	{ "categorical", "CategoricalSlot", TRAIN_RASA_SLOT_CATEGORICAL },
	{ "float", "FloatSlot", TRAIN_RASA_SLOT_FLOAT },
	{ "list", "ListSlot", TRAIN_RASA_SLOT_LIST },
	{ "any", "AnySlot", TRAIN_RASA_SLOT_ANY },
};
static const char *const slot_type_names[] = { "text", "bool", "categorical", "float", "list", "any", NULL };

/* 0: unknown; -1: Rasa 2's unfeaturized. */
static int resolve_slot_type(const char *t)
{
	for (size_t i = 0; i < sizeof slot_types / sizeof slot_types[0]; i++)
		if (strcmp(t, slot_types[i].name) == 0)
			return (int)slot_types[i].type;
	static const char *const prefixes[] = { "rasa.shared.core.slots.", "rasa.core.slots.", NULL };
	for (const char *const *p = prefixes; *p; p++) {
		size_t pl = strlen(*p);
		if (strncmp(t, *p, pl) != 0)
			continue;
		for (size_t i = 0; i < sizeof slot_types / sizeof slot_types[0]; i++)
			if (strcmp(t + pl, slot_types[i].cls) == 0)
				return (int)slot_types[i].type;
		if (strcmp(t + pl, "UnfeaturizedSlot") == 0)
			return -1;
	}
	return strcmp(t, "unfeaturized") == 0 ? -1 : 0;
}

static const char *const slot_keys3[] = { "type", "influence_conversation", "values", "min_value",
	                                      "max_value", "initial_value", "mappings", NULL };
static const char *const slot_keys2[] = { "type", "influence_conversation", "values", "min_value",
	                                      "max_value", "initial_value", "mappings", "auto_fill", NULL };
static const char *const mapping_keys[] = { "type", "intent", "not_intent", "entity", "role",
	                                        "group", "value", "action", "conditions", NULL };
static const char *const mapping_types[] = { "from_entity", "from_intent", "from_trigger_intent",
	                                         "from_text", "custom", NULL };
static const char *const condition_keys[] = { "active_loop", "requested_slot", NULL };

static int check_mappings(rasa_ctx *c, const train_config *m, const char *slot)
{
	if (train_config_kind(m) != TRAIN_CFG_LIST)
		return rasa_fail(c, TRAIN_EPARSE, m, "'mappings' of slot '%s' must be a list (- type: "
		                 "from_entity ...), not %s", slot, rasa_kind_name(m));
	for (size_t i = 0; i < train_config_len(m); i++) {
		const train_config *mp = train_config_at(m, i);
		if (train_config_kind(mp) != TRAIN_CFG_MAP)
			return rasa_fail(c, TRAIN_EPARSE, mp, "a mapping of slot '%s' must be a map (- type: "
			                 "...), not %s", slot, rasa_kind_name(mp));
		int rc = rasa_check_keys(c, mp, mapping_keys, "a slot mapping", true);
		if (rc)
			return rc;
		const train_config *t = train_config_get(mp, "type");
		const char *ts;
		if ((rc = rasa_string(c, t, "the 'type' of a slot mapping", true, false, &ts)))
			return rc;
		if (!ts)
			return rasa_fail(c, TRAIN_EINVAL, mp, "a mapping of slot '%s' has no 'type'; give one of "
			                 "%s", slot, rasa_join(c, mapping_types));
		bool known = false;
		for (const char *const *k = mapping_types; *k; k++)
			known |= strcmp(*k, ts) == 0;
		if (!known)
			return rasa_fail(c, TRAIN_EINVAL, t, "slot '%s' has a mapping of unknown type '%s'; known "
			                 "types: %s%s", slot, ts, rasa_join(c, mapping_types),
			                 rasa_did_you_mean(c, ts, mapping_types));
		if (strcmp(ts, "from_entity") == 0) {
			const char *en;
			if ((rc = rasa_string(c, train_config_get(mp, "entity"), "the 'entity' of a from_entity "
			                      "mapping", true, false, &en)))
				return rc;
			if (!en)
				return rasa_fail(c, TRAIN_EINVAL, mp, "a from_entity mapping of slot '%s' needs "
				                 "'entity: NAME'", slot);
		}
		const train_config *conds = train_config_get(mp, "conditions");
		if (conds && train_config_kind(conds) != TRAIN_CFG_NULL) {
			if (train_config_kind(conds) != TRAIN_CFG_LIST)
				return rasa_fail(c, TRAIN_EPARSE, conds, "'conditions' must be a list (- active_loop: "
				                 "FORM), not %s", rasa_kind_name(conds));
			for (size_t k = 0; k < train_config_len(conds); k++) {
				const train_config *cd = train_config_at(conds, k);
				if (train_config_kind(cd) != TRAIN_CFG_MAP)
					return rasa_fail(c, TRAIN_EPARSE, cd, "a mapping condition must be a map "
					                 "(active_loop: ..., requested_slot: ...), not %s",
					                 rasa_kind_name(cd));
				if ((rc = rasa_check_keys(c, cd, condition_keys, "a mapping condition", false)))
					return rc;
				const char *x;
				if ((rc = rasa_string(c, train_config_get(cd, "active_loop"), "'active_loop'", true,
				                      false, &x)) ||
				    (rc = rasa_string(c, train_config_get(cd, "requested_slot"), "'requested_slot'",
				                      true, false, &x)))
					return rc;
			}
		}
	}
	return TRAIN_OK;
}

static int read_slot(rasa_domain_b *b, rasa_ctx *c, const char *name, const train_config *kn,
                     const train_config *sv)
{
	if (train_config_kind(sv) != TRAIN_CFG_MAP)
		return rasa_fail(c, TRAIN_EPARSE, sv, "slot '%s' must be a map with at least 'type: ...', "
		                 "not %s", name, rasa_kind_name(sv));
	bool v2 = c->major < 3;
	for (size_t i = 0; !v2 && i < train_config_len(sv); i++)
		if (strcmp(train_config_key_at(sv, i), "auto_fill") == 0)
			return rasa_fail(c, TRAIN_EINVAL, train_config_key_node_at(sv, i), "'auto_fill' of slot "
			                 "'%s' was removed in Rasa 3: a slot is filled by its 'mappings' (or mark "
			                 "the file as Rasa 2 with version: \"2.0\")", name);
	int rc = rasa_check_keys(c, sv, v2 ? slot_keys2 : slot_keys3, "a slot", false);
	if (rc)
		return rc;
	if (duplicate(c, &b->slot_ix, &b->slots, sizeof(train_rasa_slot), offsetof(train_rasa_slot, loc),
	              "slot", name, kn))
		return TRAIN_OK;
	train_rasa_slot *s = rasa_vec_push(b->a, &b->slots, sizeof *s);
	if (!s || rasa_index_put(&b->slot_ix, name, b->slots.n - 1))
		return rasa_nomem(c);
	s->name = name;
	s->loc = rasa_loc_of(c, kn);
	s->min_value = 0.0;
	s->max_value = 1.0;
	const train_config *t = train_config_get(sv, "type");
	if ((rc = rasa_string(c, t, "the 'type' of a slot", true, false, &s->type_name)))
		return rc;
	if (!s->type_name)
		return rasa_fail(c, TRAIN_EINVAL, t ? t : kn, "slot '%s' has no 'type'; give one of %s", name,
		                 rasa_join(c, slot_type_names));
	int ty = resolve_slot_type(s->type_name);
	if (ty == -1) {
		if (!v2)
			return rasa_fail(c, TRAIN_EINVAL, t, "slot type '%s' was removed in Rasa 3; write "
			                 "'type: any' with 'influence_conversation: false'", s->type_name);
		ty = TRAIN_RASA_SLOT_ANY;
	} else if (ty == 0) {
		return rasa_fail(c, TRAIN_EINVAL, t, "slot '%s' has the unknown type '%s'; known types: %s "
		                 "(or a class path such as rasa.shared.core.slots.TextSlot)%s", name,
		                 s->type_name, rasa_join(c, slot_type_names),
		                 rasa_did_you_mean(c, s->type_name, slot_type_names));
	}
	s->type = (train_rasa_slot_type)ty;
	s->influence_conversation = s->type != TRAIN_RASA_SLOT_ANY;
	const train_config *ic = train_config_get(sv, "influence_conversation");
	if (ic && (rc = rasa_bool(c, ic, "'influence_conversation'", &s->influence_conversation)))
		return rc;
	if (s->type == TRAIN_RASA_SLOT_ANY && s->influence_conversation)
		return rasa_fail(c, TRAIN_EINVAL, ic, "slot '%s' of type any cannot influence the "
		                 "conversation (Rasa cannot featurize it): set influence_conversation: false "
		                 "or choose another type", name);
	const train_config *vals = train_config_get(sv, "values");
	if (vals) {
		if (s->type != TRAIN_RASA_SLOT_CATEGORICAL)
			return rasa_fail(c, TRAIN_EINVAL, vals, "'values' only applies to categorical slots, and slot '%s' is %s", name,
			                 s->type_name);
		if (train_config_kind(vals) != TRAIN_CFG_LIST && train_config_kind(vals) != TRAIN_CFG_NULL)
			return rasa_fail(c, TRAIN_EPARSE, vals, "'values' of slot '%s' must be a list, not %s",
			                 name, rasa_kind_name(vals));
		rasa_vec v = { 0 };
		for (size_t i = 0; i < train_config_len(vals); i++) {
			const train_config *x = train_config_at(vals, i);
			train_cfg_kind k = train_config_kind(x);
			if (k == TRAIN_CFG_LIST || k == TRAIN_CFG_MAP)
				return rasa_fail(c, TRAIN_EPARSE, x, "a value of categorical slot '%s' must be a "
				                 "scalar, not %s", name, rasa_kind_name(x));
			const char *txt = k == TRAIN_CFG_NULL ? "null" : rasa_text(c, x);
			if (!txt)
				return rasa_nomem(c);
			const char *cp = rasa_strdup(b->a, txt);
			if (!cp || rasa_vec_push_str(b->a, &v, cp))
				return rasa_nomem(c);
		}
		s->values = rasa_names_of(&v);
	} else if (s->type == TRAIN_RASA_SLOT_CATEGORICAL) {
		rasa_warn(c, kn, "categorical slot '%s' has no 'values'", name);
	}
	const train_config *mn = train_config_get(sv, "min_value");
	const train_config *mx = train_config_get(sv, "max_value");
	if ((mn || mx) && s->type != TRAIN_RASA_SLOT_FLOAT)
		return rasa_fail(c, TRAIN_EINVAL, mn ? mn : mx, "'%s' only applies to float slots, and slot "
		                 "'%s' is %s", mn ? "min_value" : "max_value", name, s->type_name);
	if (mn && (rc = rasa_number(c, mn, "'min_value'", &s->min_value)))
		return rc;
	if (mx && (rc = rasa_number(c, mx, "'max_value'", &s->max_value)))
		return rc;
	if (s->type == TRAIN_RASA_SLOT_FLOAT && !(s->min_value <= s->max_value))
		return rasa_fail(c, TRAIN_EINVAL, mn ? mn : mx, "float slot '%s' has min_value %g greater "
		                 "than max_value %g: make min_value <= max_value", name, s->min_value,
		                 s->max_value);
	const train_config *iv = train_config_get(sv, "initial_value");
	if (iv) {
		if ((rc = rasa_json(c, iv, &s->initial_value)))
			return rc;
		train_cfg_kind k = train_config_kind(iv);
		if (s->type == TRAIN_RASA_SLOT_FLOAT && (k == TRAIN_CFG_INT || k == TRAIN_CFG_FLOAT)) {
			double x = train_config_as_float(iv);
			if (x < s->min_value || x > s->max_value)
				rasa_warn(c, iv, "initial_value %g of float slot '%s' is outside [%g, %g]", x, name,
				          s->min_value, s->max_value);
		} else if (s->type == TRAIN_RASA_SLOT_BOOL && k != TRAIN_CFG_BOOL && k != TRAIN_CFG_NULL) {
			rasa_warn(c, iv, "initial_value of bool slot '%s' is %s, not true or false", name,
			          rasa_kind_name(iv));
		}
	}
	const train_config *m = train_config_get(sv, "mappings");
	if (m && train_config_kind(m) != TRAIN_CFG_NULL) {
		if ((rc = check_mappings(c, m, name)) || (rc = rasa_json(c, m, &s->mappings)))
			return rc;
	} else if (!v2) {
		rasa_warn(c, kn, "slot '%s' has no 'mappings', which Rasa 3 requires: it is read as filled "
		          "only by custom actions (write mappings: [{type: custom}] to say so)", name);
	}
	const train_config *af = train_config_get(sv, "auto_fill");
	bool dummy;
	if (af && (rc = rasa_bool(c, af, "'auto_fill'", &dummy)))
		return rc;
	return TRAIN_OK;
}

static int read_slots(rasa_domain_b *b, rasa_ctx *c, const train_config *node)
{
	if (train_config_kind(node) == TRAIN_CFG_NULL)
		return TRAIN_OK;
	if (train_config_kind(node) != TRAIN_CFG_MAP)
		return rasa_fail(c, TRAIN_EPARSE, node, "'slots' must be a map of slot names to "
		                 "{type: ...}, not %s", rasa_kind_name(node));
	for (size_t i = 0; i < train_config_len(node); i++) {
		const char *name = rasa_strdup(b->a, train_config_key_at(node, i));
		if (!name)
			return rasa_nomem(c);
		int rc = read_slot(b, c, name, train_config_key_node_at(node, i), train_config_at(node, i));
		if (rc)
			return rc;
	}
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------
 * Responses (Rasa: schemas/responses.yml and require_response_keys).
 */

static const char *const variation_keys[] = { "id", "text", "image", "custom", "buttons",
	                                          "button_type", "quick_replies", "attachment",
	                                          "elements", "channel", "metadata", "condition", NULL };
/* The keys kept as `extra`, in sorted order (canonical JSON). */
static const char *const extra_keys[] = { "attachment", "button_type", "elements", "id", "metadata",
	                                      "quick_replies", NULL };
static const char *const condition_item_keys[] = { "type", "name", "value", NULL };

/* JSON object of the entries of `map` whose keys are (not) in `keys`, sorted. */
static int json_subset(rasa_ctx *c, const train_config *map, const char *const *keys, bool keep_in,
                       const char **out)
{
	*out = NULL;
	size_t n = train_config_len(map);
	const char **ks = n ? malloc(n * sizeof *ks) : NULL;
	size_t *ix = n ? malloc(n * sizeof *ix) : NULL;
	if (n && (!ks || !ix)) {
		free(ks);
		free(ix);
		return rasa_nomem(c);
	}
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		const char *k = train_config_key_at(map, i);
		bool in = false;
		for (const char *const *p = keys; *p; p++)
			in |= strcmp(*p, k) == 0;
		if (in != keep_in)
			continue;
		/* insertion sort by key: maps here are small */
		size_t j = m++;
		while (j > 0 && strcmp(ks[j - 1], k) > 0) {
			ks[j] = ks[j - 1];
			ix[j] = ix[j - 1];
			j--;
		}
		ks[j] = k;
		ix[j] = i;
	}
	int rc = TRAIN_OK;
	if (m) {
		train_buf b = { 0 };
		rc = train_buf_add(&b, "{", 1) ? TRAIN_ENOMEM : TRAIN_OK;
		for (size_t j = 0; !rc && j < m; j++) {
			if (j && train_buf_add(&b, ",", 1))
				rc = TRAIN_ENOMEM;
			if (!rc)
				rc = rasa_json_str(&b, ks[j], strlen(ks[j]));
			if (!rc && train_buf_add(&b, ":", 1))
				rc = TRAIN_ENOMEM;
			if (!rc)
				rc = rasa_json_buf(c, train_config_at(map, ix[j]), &b);
		}
		if (!rc && train_buf_add(&b, "}", 1))
			rc = TRAIN_ENOMEM;
		if (!rc && !(*out = rasa_strndup(c->arena, b.data, b.len)))
			rc = TRAIN_ENOMEM;
		train_buf_free(&b);
	}
	free(ks);
	free(ix);
	return rc ? rasa_nomem(c) : TRAIN_OK;
}

static int list_of_maps(rasa_ctx *c, const train_config *n, const char *what)
{
	if (train_config_kind(n) == TRAIN_CFG_NULL)
		return TRAIN_OK;
	if (train_config_kind(n) != TRAIN_CFG_LIST)
		return rasa_fail(c, TRAIN_EPARSE, n, "%s must be a list of maps, not %s", what,
		                 rasa_kind_name(n));
	for (size_t i = 0; i < train_config_len(n); i++)
		if (train_config_kind(train_config_at(n, i)) != TRAIN_CFG_MAP)
			return rasa_fail(c, TRAIN_EPARSE, train_config_at(n, i), "an item of %s must be a map, "
			                 "not %s", what, rasa_kind_name(train_config_at(n, i)));
	return TRAIN_OK;
}

static int read_variation(rasa_ctx *c, const char *name, size_t k, const train_config *v,
                          train_rasa_variation *out)
{
	if (train_config_kind(v) != TRAIN_CFG_MAP)
		return rasa_fail(c, TRAIN_EPARSE, v, "variation %zu of response '%s' must be a map such as "
		                 "'- text: \"...\"', not %s", k + 1, name, rasa_kind_name(v));
	int rc = rasa_check_keys(c, v, variation_keys, "a response variation", false);
	if (rc)
		return rc;
	out->loc = rasa_loc_of(c, v);
	if ((rc = rasa_string(c, train_config_get(v, "text"), "'text' of a response", true, true,
	                      &out->text)) ||
	    (rc = rasa_string(c, train_config_get(v, "image"), "'image' of a response", true, true,
	                      &out->image)) ||
	    (rc = rasa_string(c, train_config_get(v, "channel"), "'channel' of a response", true, true,
	                      &out->channel)))
		return rc;
	const train_config *cu = train_config_get(v, "custom");
	if (cu && train_config_kind(cu) != TRAIN_CFG_NULL) {
		if (train_config_kind(cu) != TRAIN_CFG_MAP)
			return rasa_fail(c, TRAIN_EPARSE, cu, "'custom' of response '%s' must be a map, not %s",
			                 name, rasa_kind_name(cu));
		if ((rc = rasa_json(c, cu, &out->custom)))
			return rc;
	}
	if (!out->text && !(cu && train_config_len(cu)))
		return rasa_fail(c, TRAIN_EINVAL, v, "variation %zu of response '%s' has neither 'text' nor "
		                 "'custom'; Rasa needs one of them (an image or buttons alone are not "
		                 "enough: add a text)", k + 1, name);
	const train_config *bt = train_config_get(v, "buttons");
	if (bt && (rc = list_of_maps(c, bt, "'buttons'")))
		return rc;
	size_t nb = bt ? train_config_len(bt) : 0;
	if (nb) {
		train_rasa_button *bs = rasa_alloc(c->arena, nb * sizeof *bs);
		if (!bs)
			return rasa_nomem(c);
		static const char *const tp[] = { "title", "payload", NULL };
		for (size_t i = 0; i < nb; i++) {
			const train_config *bn = train_config_at(bt, i);
			if ((rc = rasa_string(c, train_config_get(bn, "title"), "a button's 'title'", true, true,
			                      &bs[i].title)) ||
			    (rc = rasa_string(c, train_config_get(bn, "payload"), "a button's 'payload'", true,
			                      true, &bs[i].payload)) ||
			    (rc = json_subset(c, bn, tp, false, &bs[i].extra)))
				return rc;
		}
		out->buttons = bs;
		out->n_buttons = nb;
	}
	const train_config *qr = train_config_get(v, "quick_replies");
	const train_config *el = train_config_get(v, "elements");
	const train_config *at = train_config_get(v, "attachment");
	const train_config *btype = train_config_get(v, "button_type");
	const char *dummy;
	if ((qr && (rc = list_of_maps(c, qr, "'quick_replies'"))) ||
	    (el && (rc = list_of_maps(c, el, "'elements'"))) ||
	    (btype && (rc = rasa_string(c, btype, "'button_type'", true, true, &dummy))) ||
	    (train_config_get(v, "id") &&
	     (rc = rasa_string(c, train_config_get(v, "id"), "'id' of a response", true, true, &dummy))))
		return rc;
	if (at && train_config_kind(at) != TRAIN_CFG_MAP && train_config_kind(at) != TRAIN_CFG_NULL)
		return rasa_fail(c, TRAIN_EPARSE, at, "'attachment' must be a map, not %s", rasa_kind_name(at));
	const train_config *cond = train_config_get(v, "condition");
	if (cond && train_config_kind(cond) != TRAIN_CFG_NULL) {
		if ((rc = list_of_maps(c, cond, "'condition'")))
			return rc;
		for (size_t i = 0; i < train_config_len(cond); i++) {
			const train_config *cd = train_config_at(cond, i);
			if ((rc = rasa_check_keys(c, cd, condition_item_keys, "a response condition", false)))
				return rc;
			for (const char *const *ck = condition_item_keys; *ck; ck++)
				if (!train_config_get(cd, *ck))
					return rasa_fail(c, TRAIN_EINVAL, cd, "a condition of response '%s' needs "
					                 "'type: slot', 'name' and 'value'", name);
			const char *ty;
			if ((rc = rasa_string(c, train_config_get(cd, "type"), "a condition's 'type'", false,
			                      false, &ty)) ||
			    (rc = rasa_string(c, train_config_get(cd, "name"), "a condition's 'name'", false,
			                      false, &dummy)))
				return rc;
			if (strcmp(ty, "slot") != 0)
				return rasa_fail(c, TRAIN_EINVAL, train_config_get(cd, "type"), "a condition of "
				                 "response '%s' has type '%s'; the only type is 'slot'", name, ty);
		}
		if ((rc = rasa_json(c, cond, &out->condition)))
			return rc;
	}
	return json_subset(c, v, extra_keys, true, &out->extra);
}

int rasa_read_responses(rasa_ctx *c, const train_config *node, rasa_vec *out, rasa_index *seen)
{
	if (train_config_kind(node) == TRAIN_CFG_NULL)
		return TRAIN_OK;
	if (train_config_kind(node) != TRAIN_CFG_MAP)
		return rasa_fail(c, TRAIN_EPARSE, node, "'responses' must be a map of response names to "
		                 "lists of variations, not %s", rasa_kind_name(node));
	for (size_t i = 0; i < train_config_len(node); i++) {
		const train_config *kn = train_config_key_node_at(node, i);
		const train_config *vs = train_config_at(node, i);
		const char *name = rasa_strdup(c->arena, train_config_key_at(node, i));
		if (!name)
			return rasa_nomem(c);
		if (train_config_kind(vs) != TRAIN_CFG_LIST)
			return rasa_fail(c, TRAIN_EPARSE, train_config_kind(vs) == TRAIN_CFG_NULL ? kn : vs,
			                 "response '%s' must be a list of variations (- text: \"...\"), not %s",
			                 name, rasa_kind_name(vs));
		if (duplicate(c, seen, out, sizeof(train_rasa_response), offsetof(train_rasa_response, loc),
		              "response", name, kn))
			continue;
		size_t nv = train_config_len(vs);
		train_rasa_variation *v = nv ? rasa_alloc(c->arena, nv * sizeof *v) : NULL;
		if (nv && !v)
			return rasa_nomem(c);
		for (size_t k = 0; k < nv; k++) {
			int rc = read_variation(c, name, k, train_config_at(vs, k), &v[k]);
			if (rc)
				return rc;
		}
		if (!nv)
			rasa_warn(c, kn, "response '%s' has no variations", name);
		train_rasa_response *r = rasa_vec_push(c->arena, out, sizeof *r);
		if (!r || rasa_index_put(seen, name, out->n - 1))
			return rasa_nomem(c);
		r->name = name;
		r->variations = v;
		r->n_variations = nv;
		r->loc = rasa_loc_of(c, kn);
	}
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------
 * Forms, session_config, config.
 */

static const char *const form_keys[] = { "required_slots", "ignored_intents", NULL };

static int read_forms(rasa_domain_b *b, rasa_ctx *c, const train_config *node)
{
	if (train_config_kind(node) == TRAIN_CFG_NULL)
		return TRAIN_OK;
	if (train_config_kind(node) != TRAIN_CFG_MAP)
		return rasa_fail(c, TRAIN_EPARSE, node, "'forms' must be a map of form names to "
		                 "{required_slots: [...]}, not %s", rasa_kind_name(node));
	for (size_t i = 0; i < train_config_len(node); i++) {
		const train_config *kn = train_config_key_node_at(node, i);
		const train_config *fv = train_config_at(node, i);
		const char *name = rasa_strdup(b->a, train_config_key_at(node, i));
		if (!name)
			return rasa_nomem(c);
		if (train_config_kind(fv) != TRAIN_CFG_MAP)
			return rasa_fail(c, TRAIN_EPARSE, train_config_kind(fv) == TRAIN_CFG_NULL ? kn : fv,
			                 "form '%s' must be a map (required_slots: [...]), not %s", name,
			                 rasa_kind_name(fv));
		int rc = rasa_check_keys(c, fv, form_keys, "a form", false);
		if (rc)
			return rc;
		if (duplicate(c, &b->form_ix, &b->forms, sizeof(train_rasa_form), offsetof(train_rasa_form, loc),
		              "form", name, kn))
			continue;
		train_rasa_form *f = rasa_vec_push(b->a, &b->forms, sizeof *f);
		if (!f || rasa_index_put(&b->form_ix, name, b->forms.n - 1))
			return rasa_nomem(c);
		f->name = name;
		f->loc = rasa_loc_of(c, kn);
		const train_config *rs = train_config_get(fv, "required_slots");
		if (rs && train_config_kind(rs) == TRAIN_CFG_MAP) {
			if (c->major >= 3)
				return rasa_fail(c, TRAIN_EPARSE, rs, "'required_slots' of form '%s' maps slots to "
				                 "mappings as in Rasa 2; in Rasa 3 it is a list of slot names and the "
				                 "mappings go to the slots (or mark the file version: \"2.0\")", name);
			rasa_vec v = { 0 };
			for (size_t k = 0; k < train_config_len(rs); k++) {
				const char *sn = rasa_strdup(b->a, train_config_key_at(rs, k));
				if (!sn || rasa_vec_push_str(b->a, &v, sn))
					return rasa_nomem(c);
				const train_config *ml = train_config_at(rs, k);
				if (train_config_kind(ml) != TRAIN_CFG_NULL && (rc = check_mappings(c, ml, sn)))
					return rc;
			}
			f->required_slots = rasa_names_of(&v);
			if ((rc = rasa_json(c, rs, &f->mappings)))
				return rc;
		} else if (rs && (rc = names_from(c, rs, "'required_slots'", &f->required_slots))) {
			return rc;
		}
		const train_config *ig = train_config_get(fv, "ignored_intents");
		if (ig && train_config_kind(ig) == TRAIN_CFG_STRING) {
			const char *one;
			rasa_vec v = { 0 };
			if ((rc = rasa_string(c, ig, "'ignored_intents'", false, false, &one)))
				return rc;
			if (rasa_vec_push_str(b->a, &v, one))
				return rasa_nomem(c);
			f->ignored_intents = rasa_names_of(&v);
		} else if (ig && (rc = names_from(c, ig, "'ignored_intents'", &f->ignored_intents))) {
			return rc;
		}
	}
	return TRAIN_OK;
}

static const char *const session_keys[] = { "session_expiration_time",
	                                        "carry_over_slots_to_new_session", NULL };
static const char *const config_keys[] = { "store_entities_as_slots", NULL };

/* A session_config read at line:col: the first one stays. */
static void session_set(rasa_domain_b *b, rasa_ctx *c, double exp, bool carry, unsigned line,
                        unsigned col)
{
	if (b->have_session) {
		if (exp != b->expiration || carry != b->carry_over)
			rasa_warn_at(c, line, col, "a second 'session_config' differs from the first; the "
			             "first is kept");
		return;
	}
	b->have_session = true;
	b->expiration = exp;
	b->carry_over = carry;
}

static int read_session(rasa_domain_b *b, rasa_ctx *c, const train_config *node)
{
	if (train_config_kind(node) == TRAIN_CFG_NULL)
		return TRAIN_OK;
	if (train_config_kind(node) != TRAIN_CFG_MAP)
		return rasa_fail(c, TRAIN_EPARSE, node, "'session_config' must be a map, not %s",
		                 rasa_kind_name(node));
	int rc = rasa_check_keys(c, node, session_keys, "session_config", true);
	if (rc)
		return rc;
	double exp = 60;
	bool carry = true;
	const train_config *e = train_config_get(node, "session_expiration_time");
	if (e && train_config_kind(e) != TRAIN_CFG_NULL) {
		if ((rc = rasa_number(c, e, "'session_expiration_time'", &exp)))
			return rc;
		if (!(exp >= 0))
			return rasa_fail(c, TRAIN_EINVAL, e, "'session_expiration_time' must be 0 or more "
			                 "minutes, not %g", exp);
	}
	const train_config *co = train_config_get(node, "carry_over_slots_to_new_session");
	if (co && (rc = rasa_bool(c, co, "'carry_over_slots_to_new_session'", &carry)))
		return rc;
	session_set(b, c, exp, carry, train_config_line(node), train_config_col(node));
	return TRAIN_OK;
}

static int read_config(rasa_domain_b *b, rasa_ctx *c, const train_config *node)
{
	if (train_config_kind(node) == TRAIN_CFG_NULL)
		return TRAIN_OK;
	if (train_config_kind(node) != TRAIN_CFG_MAP)
		return rasa_fail(c, TRAIN_EPARSE, node, "'config' must be a map, not %s", rasa_kind_name(node));
	int rc = rasa_check_keys(c, node, config_keys, "the domain's config", true);
	if (rc)
		return rc;
	bool store = true;
	const train_config *s = train_config_get(node, "store_entities_as_slots");
	if (s && (rc = rasa_bool(c, s, "'store_entities_as_slots'", &store)))
		return rc;
	if (!b->have_config) {
		b->have_config = true;
		b->store_entities = store;
	}
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------
 * A file.
 */

int rasa_domain_b_read(rasa_domain_b *b, rasa_ctx *c, const train_config *root)
{
	int rc = rasa_ctx_enter(c, b->a, &b->fc);
	if (rc)
		return rc;
	const train_config *v = train_config_get(root, "version");
	if (!b->version && v && train_config_kind(v) == TRAIN_CFG_STRING) {
		b->version = rasa_strdup(b->a, rasa_text(c, v));
		if (!b->version)
			return rasa_nomem(c);
	}
	const train_config *n;
	if ((n = train_config_get(root, "intents")) && (rc = read_intents(b, c, n)))
		return rc;
	if ((n = train_config_get(root, "entities")) && (rc = read_entities(b, c, n)))
		return rc;
	if ((n = train_config_get(root, "slots")) && (rc = read_slots(b, c, n)))
		return rc;
	if ((n = train_config_get(root, "responses")) &&
	    (rc = rasa_read_responses(c, n, &b->responses, &b->resp_ix)))
		return rc;
	if ((n = train_config_get(root, "actions")) && (rc = read_actions(b, c, n)))
		return rc;
	if ((n = train_config_get(root, "forms")) && (rc = read_forms(b, c, n)))
		return rc;
	if ((n = train_config_get(root, "session_config")) && (rc = read_session(b, c, n)))
		return rc;
	if ((n = train_config_get(root, "config")) && (rc = read_config(b, c, n)))
		return rc;
	if ((n = train_config_get(root, "e2e_actions")) && (rc = read_e2e(b, c, n)))
		return rc;
	return TRAIN_OK;
}

/* ------------------------------------------------------------------------
 * The fast path: a domain file in a simple shape, read without libyaml
 * (issue 4's benchmark; the reasons of rasa_nlu.c's fast path).
 *
 *   version: "3.1"                  top-level keys at column 0, once each,
 *   intents:                        in any order: version (a quoted
 *     - greet                       string), intents, entities, actions
 *   responses:                      (lists of names), responses (names,
 *     utter_greet:                  each with "- text: TEXT" variations,
 *     - text: "Hello!"              the list at the key's indentation or
 *   session_config:                 deeper), session_config (its two
 *     session_expiration_time: 60   keys: digits, and true or false)
 *     carry_over_slots_to_new_session: true
 *
 * with empty or space-only lines between lines; names as rasa_fast_name
 * takes them (no spaces in response names); TEXT a one-line "..." without
 * '\' or '"', '...' without '\'', or plain (a letter, then printable ASCII
 * but ':', '#' and '$' (a ${VAR} is libyaml's way); not null, true or
 * false), no tabs, no control bytes.
 * Any other file goes the libyaml way untouched: the recogniser reads the
 * whole file first.  The building then follows rasa_domain_b_read (its
 * order of keys, the same helpers, libyaml's places); the test
 * "domain_fast_path" and the fuzz target rasa_domain compare both ways.
 */

int rasa_domain_fast = 1;

typedef struct dfast_str {
	const char *s;
	size_t n;
	unsigned line, col;
} dfast_str;

typedef struct dfast_resp {
	dfast_str name;
	size_t first, n;         /* its variations: texts[first ..] */
} dfast_resp;

typedef struct dfast {
	struct {
		dfast_str *v;
		size_t n, cap;
	} lists[3], texts;       /* intents, entities, actions; response texts */
	dfast_resp *resp;
	size_t n_resp, cap_resp;
	bool seen[7];            /* version, intents, entities, actions, responses, session_config */
	const char *ver;
	size_t ver_len;
	unsigned ver_line, ver_col;
	bool has_exp, has_carry, carry;
	double exp;
	unsigned s_line, s_col;
} dfast;

static void dfast_free(dfast *f)
{
	for (int i = 0; i < 3; i++)
		free(f->lists[i].v);
	free(f->texts.v);
	free(f->resp);
	memset(f, 0, sizeof *f);
}

static bool dfast_push(dfast_str **v, size_t *n, size_t *cap, dfast_str s)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 32;
		dfast_str *nv = realloc(*v, nc * sizeof *nv);
		if (!nv)
			return false;
		*v = nv;
		*cap = nc;
	}
	(*v)[(*n)++] = s;
	return true;
}

/* The next non-blank line from *pos (counting *line), or false at the end. */
static bool dfast_next(const char *t, size_t len, size_t *pos, unsigned *line, rasa_line *l, size_t *sp)
{
	while (*pos < len) {
		rasa_line_at(t, len, *pos, l);
		*sp = rasa_spaces(t, l->p, l->e);
		if (l->p + *sp != l->e)
			return true;
		*pos = l->next;
		(*line)++;
	}
	return false;
}

/* A one-line scalar t[p..e) that reads as a string as it stands (see above). */
static bool dfast_text(const char *t, size_t p, size_t e, size_t *v0, size_t *vn)
{
	static const char *const words[] = { "null", "Null", "NULL", "true", "True", "TRUE",
		                             "false", "False", "FALSE", NULL };
	if (p >= e)
		return false;
	char q = t[p];
	if (q == '"' || q == '\'') {
		size_t i = p + 1;
		for (; i < e && t[i] != q; i++) {
			unsigned char ch = (unsigned char)t[i];
			if (ch < 0x20 || ch == 0x7f || (ch == '\\' && q == '"'))
				return false;
		}
		if (i >= e || rasa_spaces(t, i + 1, e) != e - i - 1 ||
		    !rasa_body_bytes_ok((const unsigned char *)t + p + 1, i - p - 1))
			return false;
		*v0 = p + 1;
		*vn = i - p - 1;
		return true;
	}
	if (!((q >= 'a' && q <= 'z') || (q >= 'A' && q <= 'Z')))
		return false;
	size_t end = p;
	for (size_t i = p; i < e; i++) {
		unsigned char ch = (unsigned char)t[i];
		if (ch < 0x20 || ch > 0x7e || ch == ':' || ch == '#' || ch == '$')
			return false;
		if (ch != ' ')
			end = i + 1;
	}
	for (const char *const *w = words; *w; w++)
		if (strlen(*w) == end - p && memcmp(*w, t + p, end - p) == 0)
			return false;
	*v0 = p;
	*vn = end - p;
	return true;
}

/* "NAME:" then spaces to e: NAME's length, or 0. */
static size_t dfast_key(const char *t, size_t p, size_t e)
{
	size_t i = p;
	while (i < e && t[i] != ':')
		i++;
	if (i >= e || rasa_spaces(t, i + 1, e) != e - i - 1)
		return 0;
	size_t n = rasa_fast_name(t, p, i, false);
	return n == i - p ? n : 0;
}

static int cmp_dfast_resp(const void *x, const void *y)
{
	const dfast_resp *a = x, *b = y;
	size_t n = a->name.n < b->name.n ? a->name.n : b->name.n;
	int c = memcmp(a->name.s, b->name.s, n);
	return c ? c : (a->name.n > b->name.n) - (a->name.n < b->name.n);
}

/* Two responses of one name in a file: a duplicate key, which the config
 * reader refuses. */
static bool dfast_dup_keys(const dfast *f)
{
	if (f->n_resp < 2)
		return false;
	dfast_resp *v = malloc(f->n_resp * sizeof *v);
	if (!v)
		return true;
	memcpy(v, f->resp, f->n_resp * sizeof *v);
	qsort(v, f->n_resp, sizeof *v, cmp_dfast_resp);
	bool dup = false;
	for (size_t i = 1; i < f->n_resp && !dup; i++)
		dup = cmp_dfast_resp(&v[i - 1], &v[i]) == 0;
	free(v);
	return dup;
}

static bool dfast_scan(const char *t, size_t len, dfast *f)
{
	static const char *const keys[] = { "version", "intents", "entities", "actions", "responses",
		                            "session_config", NULL };
	size_t pos = 0, sp;
	unsigned line = 1;
	rasa_line l;
	memset(f, 0, sizeof *f);
	if (len >= UINT32_MAX)
		goto no;
	bool have = dfast_next(t, len, &pos, &line, &l, &sp);
	while (have) {
		if (sp != 0)
			goto no;
		int k;
		const char *v;
		size_t vlen;
		unsigned vcol;
		if (rasa_fast_version(t, &l, &v, &vlen, &vcol)) {
			k = 0;
			f->ver = v;
			f->ver_len = vlen;
			f->ver_line = line;
			f->ver_col = vcol;
		} else {
			size_t kn = dfast_key(t, l.p, l.e);
			for (k = 1; keys[k]; k++)
				if (kn == strlen(keys[k]) && memcmp(t + l.p, keys[k], kn) == 0)
					break;
			if (!keys[k])
				goto no;
		}
		if (f->seen[k])
			goto no;
		f->seen[k] = true;
		pos = l.next;
		line++;
		have = dfast_next(t, len, &pos, &line, &l, &sp);
		if (k == 0)
			continue;
		if (k <= 3) { /* a list of names: "<d>- NAME" */
			size_t d = sp, count = 0;
			while (have && sp == d && t[l.p + sp] == '-') {
				size_t q = l.p + sp;
				size_t nn = q + 1 < l.e && t[q + 1] == ' ' ? rasa_fast_name(t, q + 2, l.e, true) : 0;
				if (!nn)
					goto no;
				dfast_str s = { t + q + 2, nn, line, (unsigned)(d + 3) };
				if (!dfast_push(&f->lists[k - 1].v, &f->lists[k - 1].n, &f->lists[k - 1].cap, s))
					goto no;
				count++;
				pos = l.next;
				line++;
				have = dfast_next(t, len, &pos, &line, &l, &sp);
			}
			if (!count)
				goto no;
			continue;
		}
		if (k == 4) { /* responses: "<r>NAME:", then "<v>- text: TEXT" lines, v >= r */
			size_t r = sp;
			if (!have || r == 0)
				goto no;
			while (have && sp == r) {
				size_t kn = dfast_key(t, l.p + r, l.e);
				if (!kn || t[l.p + r] == '-')
					goto no;
				if (f->n_resp == f->cap_resp) {
					size_t nc = f->cap_resp ? f->cap_resp * 2 : 32;
					dfast_resp *nr = realloc(f->resp, nc * sizeof *nr);
					if (!nr)
						goto no;
					f->resp = nr;
					f->cap_resp = nc;
				}
				dfast_resp *rs = &f->resp[f->n_resp++];
				rs->name = (dfast_str){ t + l.p + r, kn, line, (unsigned)(r + 1) };
				rs->first = f->texts.n;
				rs->n = 0;
				pos = l.next;
				line++;
				have = dfast_next(t, len, &pos, &line, &l, &sp);
				size_t vi = sp;
				while (have && sp == vi && vi >= r && t[l.p + sp] == '-') {
					size_t q = l.p + sp, v0, vn;
					if (l.e - q < 9 || memcmp(t + q, "- text: ", 8) != 0)
						goto no;
					size_t tp = q + 8 + rasa_spaces(t, q + 8, l.e);
					if (!dfast_text(t, tp, l.e, &v0, &vn))
						goto no;
					dfast_str s = { t + v0, vn, line, (unsigned)(vi + 3) };
					if (!dfast_push(&f->texts.v, &f->texts.n, &f->texts.cap, s))
						goto no;
					rs->n++;
					pos = l.next;
					line++;
					have = dfast_next(t, len, &pos, &line, &l, &sp);
				}
				if (!rs->n)
					goto no;
			}
			if (have && sp != 0)
				goto no;
			continue;
		}
		/* session_config: "<s>KEY: VALUE" for its two keys */
		size_t s = sp;
		if (!have || s == 0)
			goto no;
		f->s_line = line;
		f->s_col = (unsigned)(s + 1);
		while (have && sp == s) {
			static const char ek[] = "session_expiration_time:", ck[] = "carry_over_slots_to_new_session:";
			size_t q = l.p + s, vp, ve = l.e;
			while (ve > q && t[ve - 1] == ' ')
				ve--;
			if (l.e - q > sizeof ek - 1 && memcmp(t + q, ek, sizeof ek - 1) == 0 && !f->has_exp) {
				vp = q + sizeof ek - 1;
				size_t g = rasa_spaces(t, vp, ve);
				if (!g || ve - (vp + g) < 1 || ve - (vp + g) > 15)
					goto no;
				double x = 0;
				for (size_t i = vp + g; i < ve; i++) {
					if (t[i] < '0' || t[i] > '9')
						goto no;
					x = x * 10 + (t[i] - '0');
				}
				f->has_exp = true;
				f->exp = x;
			} else if (l.e - q > sizeof ck - 1 && memcmp(t + q, ck, sizeof ck - 1) == 0 &&
			           !f->has_carry) {
				vp = q + sizeof ck - 1;
				size_t g = rasa_spaces(t, vp, ve), vn = ve - (vp + g);
				const char *w = t + vp + g;
				if (!g)
					goto no;
				if ((vn == 4 && (!memcmp(w, "true", 4) || !memcmp(w, "True", 4) || !memcmp(w, "TRUE", 4))))
					f->carry = true;
				else if (vn == 5 && (!memcmp(w, "false", 5) || !memcmp(w, "False", 5) ||
				                     !memcmp(w, "FALSE", 5)))
					f->carry = false;
				else
					goto no;
				f->has_carry = true;
			} else {
				goto no;
			}
			pos = l.next;
			line++;
			have = dfast_next(t, len, &pos, &line, &l, &sp);
		}
	}
	if ((f->seen[1] || f->seen[2] || f->seen[3] || f->seen[4] || f->seen[5]) && !dfast_dup_keys(f))
		return true;
no:
	dfast_free(f);
	return false;
}

int rasa_domain_fast_read(rasa_domain_b *b, rasa_ctx *c, bool *done)
{
	*done = false;
	dfast f;
	if (!rasa_domain_fast || !c->src || !dfast_scan(c->src, c->src_len, &f))
		return TRAIN_OK;
	*done = true;
	int rc;
	/* read_text's version check, then rasa_domain_b_read's order */
	const char *vs = f.ver ? rasa_strndup(c->scratch, f.ver, f.ver_len) : NULL;
	if (f.ver && !vs) {
		rc = rasa_nomem(c);
		goto out;
	}
	if ((rc = rasa_check_version_str(c, vs, vs ? f.ver_line : 1, vs ? f.ver_col : 1)) ||
	    (rc = rasa_ctx_enter(c, b->a, &b->fc)))
		goto out;
	if (vs && !b->version && !(b->version = rasa_strdup(b->a, vs))) {
		rc = rasa_nomem(c);
		goto out;
	}
	for (int k = 0; k < 2 && !rc; k++) { /* intents, entities */
		for (size_t i = 0; i < f.lists[k].n && !rc; i++) {
			const dfast_str *s = &f.lists[k].v[i];
			const char *name = rasa_strndup(c->arena, s->s, s->n);
			train_rasa_intent *in;
			train_rasa_entity_decl *e;
			if (!name)
				rc = rasa_nomem(c);
			else if (k == 0)
				rc = push_intent(b, c, name, s->line, s->col, &in);
			else
				rc = push_entity(b, c, name, s->line, s->col, &e);
		}
	}
	for (size_t i = 0; i < f.n_resp && !rc; i++) {
		const dfast_resp *r = &f.resp[i];
		const char *name = rasa_strndup(c->arena, r->name.s, r->name.n);
		if (!name) {
			rc = rasa_nomem(c);
			break;
		}
		if (duplicate_at(c, &b->resp_ix, &b->responses, sizeof(train_rasa_response),
		                 offsetof(train_rasa_response, loc), "response", name, r->name.line,
		                 r->name.col))
			continue;
		train_rasa_variation *v = rasa_alloc(c->arena, r->n * sizeof *v);
		if (!v) {
			rc = rasa_nomem(c);
			break;
		}
		for (size_t k = 0; k < r->n; k++) {
			const dfast_str *s = &f.texts.v[r->first + k];
			v[k].loc = rasa_loc_at(c, s->line, s->col);
			if (!(v[k].text = rasa_strndup(c->arena, s->s, s->n)))
				rc = rasa_nomem(c);
		}
		train_rasa_response *out = rc ? NULL : rasa_vec_push(c->arena, &b->responses, sizeof *out);
		if (!out || rasa_index_put(&b->resp_ix, name, b->responses.n - 1)) {
			rc = rasa_nomem(c);
			break;
		}
		out->name = name;
		out->variations = v;
		out->n_variations = r->n;
		out->loc = rasa_loc_at(c, r->name.line, r->name.col);
	}
	for (size_t i = 0; i < f.lists[2].n && !rc; i++) {
		const dfast_str *s = &f.lists[2].v[i];
		const char *name = rasa_strndup(c->arena, s->s, s->n);
		train_rasa_action *a;
		rc = name ? push_action(b, c, name, s->line, s->col, &a) : rasa_nomem(c);
	}
	if (!rc && f.seen[5])
		session_set(b, c, f.has_exp ? f.exp : 60, f.has_carry ? f.carry : true, f.s_line, f.s_col);
out:
	dfast_free(&f);
	return rc;
}

bool rasa_domain_fast_accepts(const char *text, size_t len)
{
	dfast f;
	memset(&f, 0, sizeof f);
	bool ok = text && dfast_scan(text, len, &f);
	dfast_free(&f);
	return ok;
}
