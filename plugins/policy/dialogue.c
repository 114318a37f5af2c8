/*
 * plugins/policy/dialogue.c - the domain as the policies see it,
 * dialogues as explicit event lists, and Rasa's dialogue states (issue 6).
 *
 * Facts from Rasa 3 (rasa/shared/core/domain.py, slots.py, trackers.py,
 * training_data/structures.py, yaml_story_reader.py, generator.py):
 *  - an action_listen goes before every user turn unless the event before
 *    is one, and after the last event of a story; a rule ends with an
 *    action_listen, or with the "..." snippet when wait_for_user_input is
 *    false, and starts (after its condition) with "..." unless it is a
 *    conversation_start rule;
 *  - in rules, `active_loop: null` and a slot set to null mean "should not
 *    be set";
 *  - after a user turn, slots whose from_entity mappings (without an
 *    active_loop condition) match an entity are set: list slots to all
 *    the matching values, others to the last;
 *  - slot features: text [set], list [non-empty], bool [set, value],
 *    float [set, (capped - min) / range], categorical one-hot over the
 *    lower-cased values with "__other__" for anything else; a slot is in a
 *    state only when one feature is non-zero (or it is "should not be
 *    set"), and only when it influences the conversation;
 *  - an intent featurizes the entities it uses (use_entities /
 *    ignore_entities, and only entities that influence the conversation),
 *    their roles and groups as "entity#role".
 */
#include "policy.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* memory */

struct pchunk {
	struct pchunk *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

void *pp_alloc(ppool *p, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	if (!n)
		n = 16;
	struct pchunk *c = p->head;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > 16384 ? n : 16384;
		c = malloc(sizeof *c + cap);
		if (!c) {
			p->oom = 1;
			return NULL;
		}
		c->used = 0;
		c->cap = cap;
		c->next = p->head;
		p->head = c;
	}
	void *r = c->data + c->used;
	c->used += n;
	memset(r, 0, n);
	return r;
}

char *pp_strdup(ppool *p, const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s) + 1;
	char *r = pp_alloc(p, n);
	if (r)
		memcpy(r, s, n);
	return r;
}

void pp_free(ppool *p)
{
	for (struct pchunk *c = p->head, *next; c; c = next) {
		next = c->next;
		free(c);
	}
	p->head = NULL;
	p->oom = 0;
}

static int pb_grow(pbuf *b, size_t extra)
{
	if (b->oom)
		return -1;
	if (extra >= SIZE_MAX / 2 - b->len) {
		b->oom = 1;
		return -1;
	}
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *d = realloc(b->d, cap);
	if (!d) {
		b->oom = 1;
		return -1;
	}
	b->d = d;
	b->cap = cap;
	return 0;
}

void pb_add(pbuf *b, const void *p, size_t n)
{
	if (pb_grow(b, n))
		return;
	if (n)
		memcpy(b->d + b->len, p, n);
	b->len += n;
	b->d[b->len] = '\0';
}

void pb_str(pbuf *b, const char *s)
{
	pb_add(b, s, strlen(s));
}

void pb_printf(pbuf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->oom = 1;
		return;
	}
	if (pb_grow(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->d + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* One code point of valid UTF-8 (jansson and the YAML reader check it);
 * a stray byte counts as itself. */
static unsigned utf8_next(const unsigned char **s)
{
	const unsigned char *p = *s;
	unsigned c = p[0];
	int k = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
	unsigned cp = k == 3 ? c & 7 : k == 2 ? c & 15 : k == 1 ? c & 31 : c;
	for (int i = 1; i <= k; i++) {
		if ((p[i] & 0xc0) != 0x80) {
			*s = p + 1;
			return c;
		}
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	*s = p + k + 1;
	return cp;
}

void pb_pystr(pbuf *b, const char *s)
{
	pb_add(b, "\"", 1);
	const unsigned char *p = (const unsigned char *)s;
	while (*p) {
		unsigned c = *p;
		if (c < 0x80) {
			p++;
			switch (c) {
			case '"': pb_str(b, "\\\""); break;
			case '\\': pb_str(b, "\\\\"); break;
			case '\n': pb_str(b, "\\n"); break;
			case '\r': pb_str(b, "\\r"); break;
			case '\t': pb_str(b, "\\t"); break;
			case '\b': pb_str(b, "\\b"); break;
			case '\f': pb_str(b, "\\f"); break;
			default:
				if (c < 0x20) {
					pb_printf(b, "\\u%04x", c);
				} else {
					char ch = (char)c;
					pb_add(b, &ch, 1);
				}
			}
			continue;
		}
		unsigned cp = utf8_next(&p);
		if (cp >= 0x10000) {
			cp -= 0x10000;
			pb_printf(b, "\\u%04x\\u%04x", 0xd800 + (cp >> 10), 0xdc00 + (cp & 0x3ff));
		} else {
			pb_printf(b, "\\u%04x", cp);
		}
	}
	pb_add(b, "\"", 1);
}

void pb_pyfloat(pbuf *b, double x)
{
	char buf[40];
	if (isnan(x)) {
		pb_str(b, "NaN");
		return;
	}
	if (isinf(x)) {
		pb_str(b, x > 0 ? "Infinity" : "-Infinity");
		return;
	}
	for (int p = 1; p <= 17; p++) {
		snprintf(buf, sizeof buf, "%.*g", p, x);
		if (strtod(buf, NULL) == x)
			break;
	}
	/* Python writes 1e-05 and 1e+16 as C does, but 1.0 where C writes 1 */
	if (!strpbrk(buf, ".e"))
		strcat(buf, ".0");
	pb_str(b, buf);
}

void pb_free(pbuf *b)
{
	free(b->d);
	memset(b, 0, sizeof *b);
}

/* ------------------------------------------------------------------------ */
/* the domain */

static const char *const default_actions[] = {
	ACTION_LISTEN, "action_restart", "action_session_start", "action_default_fallback",
	"action_deactivate_loop", "action_revert_fallback_events", "action_default_ask_affirmation",
	"action_default_ask_rephrase", "action_two_stage_fallback", "action_unlikely_intent",
	"action_back", "action_send_text", "action_extract_slots", NULL,
};
static const char *const default_intents[] = {
	"restart", "back", "out_of_scope", "session_start", "nlu_fallback", NULL,
};

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sort and drop duplicates in place. */
static size_t sort_unique(const char **v, size_t n)
{
	if (!n)
		return 0;
	qsort(v, n, sizeof *v, cmp_strp);
	size_t k = 1;
	for (size_t i = 1; i < n; i++)
		if (strcmp(v[i], v[k - 1]))
			v[k++] = v[i];
	return k;
}

long pdomain_sorted_find(const char *const *v, size_t n, const char *name)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(v[mid], name);
		if (!c)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static char *lower_dup(ppool *p, const char *s)
{
	char *r = pp_strdup(p, s);
	for (char *q = r; q && *q; q++)
		*q = (char)tolower((unsigned char)*q);
	return r;
}

/* Python's str(value).lower() for a categorical slot (NULL: no text). */
static char *category_of(ppool *pool, const json_t *j)
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
		if (isnan(x) || isinf(x)) {
			s = isnan(x) ? "nan" : x > 0 ? "inf" : "-inf";
		} else {
			pbuf b = { 0 };
			pb_pyfloat(&b, x);
			snprintf(buf, sizeof buf, "%s", b.d ? b.d : "");
			pb_free(&b);
			s = buf;
		}
	}
	return s ? lower_dup(pool, s) : NULL;
}

/* Rasa's bool_from_any: 1 or 0, -1 when it cannot convert. */
static int bool_of(const json_t *j)
{
	if (json_is_boolean(j))
		return json_is_true(j);
	if (json_is_number(j))
		return json_number_value(j) == 1.0;
	if (!json_is_string(j))
		return -1;
	const char *s = json_string_value(j);
	int numeric = *s != '\0';
	for (const char *p = s; *p; p++)
		numeric &= (*p >= '0' && *p <= '9');
	if (numeric)
		return strtod(s, NULL) == 1.0;
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	if (n == 4 && !strncasecmp(s, "true", 4))
		return 1;
	if (n == 5 && !strncasecmp(s, "false", 5))
		return 0;
	return -1;
}

/* Python's float(x) for a slot value; 0 when it raises. */
static int float_of(const json_t *j, double *x)
{
	if (json_is_boolean(j)) {
		*x = json_is_true(j);
		return 1;
	}
	if (json_is_number(j)) {
		*x = json_number_value(j);
		return 1;
	}
	if (!json_is_string(j))
		return 0;
	const char *s = json_string_value(j);
	char *end;
	while (isspace((unsigned char)*s))
		s++;
	*x = strtod(s, &end);
	if (end == s)
		return 0;
	while (isspace((unsigned char)*end))
		end++;
	return *end == '\0';
}

/* The features of a slot holding `value` (JSON text, NULL: None) into f
 * (dims). */
static void slot_features(const pslot *s, const char *value, double *f)
{
	memset(f, 0, (size_t)s->dims * sizeof *f);
	if (!value || !s->dims)
		return;
	json_t *j = json_loads(value, JSON_DECODE_ANY, NULL);
	if (!j || json_is_null(j)) {
		json_decref(j);
		return;
	}
	switch (s->type) {
	case TRAIN_RASA_SLOT_TEXT:
		f[0] = 1;
		break;
	case TRAIN_RASA_SLOT_LIST:
		/* ListSlot wraps a truthy non-list into [value] */
		if (json_is_array(j))
			f[0] = json_array_size(j) > 0;
		else if (json_is_object(j))
			f[0] = json_object_size(j) > 0;
		else if (json_is_string(j))
			f[0] = json_string_length(j) > 0;
		else if (json_is_number(j))
			f[0] = json_number_value(j) != 0;
		else
			f[0] = json_is_true(j);
		break;
	case TRAIN_RASA_SLOT_BOOL: {
		int v = bool_of(j);
		if (v >= 0)
			f[0] = 1, f[1] = v;
		break;
	}
	case TRAIN_RASA_SLOT_FLOAT: {
		double x;
		if (float_of(j, &x)) {
			double capped = fmax(s->min, fmin(s->max, x));
			double range = fabs(s->max - s->min) > 0 ? fabs(s->max - s->min) : 1;
			f[0] = 1;
			f[1] = (capped - s->min) / range;
		}
		break;
	}
	case TRAIN_RASA_SLOT_CATEGORICAL: {
		ppool tmp = { 0 };
		char *c = category_of(&tmp, j);
		size_t hit = s->n_values - 1; /* __other__ */
		for (size_t k = 0; c && k + 1 < s->n_values; k++)
			if (!strcmp(s->values[k], c))
				hit = k;
		if (c)
			f[hit] = 1;
		pp_free(&tmp);
		break;
	}
	default:
		break;
	}
	json_decref(j);
}

/* The from_entity mappings that fill a slot after a user turn. */
static void slot_fills(pdomain *pd, pslot *s, const train_rasa_slot *rs)
{
	ppool *p = &pd->pool;
	const train_rasa_domain *d = pd->dom;
	if (!d->store_entities_as_slots)
		return;
	if (!rs->mappings) {
		/* Rasa 2 (auto_fill): an entity of the slot's name */
		for (size_t i = 0; i < d->n_entities; i++)
			if (!strcmp(d->entities[i].name, rs->name)) {
				s->fills = pp_alloc(p, sizeof *s->fills);
				if (s->fills) {
					s->fills[0].entity = rs->name;
					s->fills[0].any = 1;
					s->n_fills = 1;
				}
			}
		return;
	}
	json_t *m = json_loads(rs->mappings, JSON_DECODE_ANY, NULL);
	size_t n = json_is_array(m) ? json_array_size(m) : 0;
	s->fills = n ? pp_alloc(p, n * sizeof *s->fills) : NULL;
	for (size_t i = 0; i < n && s->fills; i++) {
		json_t *o = json_array_get(m, i);
		const char *type = json_string_value(json_object_get(o, "type"));
		const char *entity = json_string_value(json_object_get(o, "entity"));
		json_t *conds = json_object_get(o, "conditions");
		if (!type || strcmp(type, "from_entity") || !entity)
			continue;
		if (json_is_array(conds) && json_array_size(conds)) {
			json_t *loop = json_object_get(json_array_get(conds, 0), "active_loop");
			if (loop && !json_is_null(loop))
				continue;
		}
		pfill *f = &s->fills[s->n_fills++];
		f->entity = pp_strdup(p, entity);
		f->role = pp_strdup(p, json_string_value(json_object_get(o, "role")));
		f->group = pp_strdup(p, json_string_value(json_object_get(o, "group")));
	}
	json_decref(m);
}

static int build_orders(pdomain *pd)
{
	ppool *p = &pd->pool;
	pd->action_order = pp_alloc(p, (pd->n_actions + 1) * sizeof *pd->action_order);
	pd->slot_order = pp_alloc(p, (pd->n_slots + 1) * sizeof *pd->slot_order);
	if (!pd->action_order || !pd->slot_order)
		return TRAIN_ENOMEM;
	for (size_t i = 0; i < pd->n_actions; i++)
		pd->action_order[i] = i;
	for (size_t i = 0; i < pd->n_slots; i++)
		pd->slot_order[i] = i;
	/* insertion sorts: the lists are short and this runs once */
	for (size_t i = 1; i < pd->n_actions; i++)
		for (size_t j = i; j && strcmp(pd->actions[pd->action_order[j - 1]],
		                               pd->actions[pd->action_order[j]]) > 0; j--) {
			size_t t = pd->action_order[j];
			pd->action_order[j] = pd->action_order[j - 1];
			pd->action_order[j - 1] = t;
		}
	for (size_t i = 1; i < pd->n_slots; i++)
		for (size_t j = i; j && strcmp(pd->slots[pd->slot_order[j - 1]].name,
		                               pd->slots[pd->slot_order[j]].name) > 0; j--) {
			size_t t = pd->slot_order[j];
			pd->slot_order[j] = pd->slot_order[j - 1];
			pd->slot_order[j - 1] = t;
		}
	return TRAIN_OK;
}

long pdomain_action(const pdomain *pd, const char *name)
{
	if (!name)
		return -1;
	size_t lo = 0, hi = pd->n_actions;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(pd->actions[pd->action_order[mid]], name);
		if (!c)
			return (long)pd->action_order[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Append names not yet in the action space (order kept). */
static int add_actions(pdomain *pd, const char *const *names, size_t n)
{
	const char **v = pp_alloc(&pd->pool, (pd->n_actions + n + 1) * sizeof *v);
	if (!v)
		return TRAIN_ENOMEM;
	if (pd->n_actions)
		memcpy(v, pd->actions, pd->n_actions * sizeof *v);
	size_t k = pd->n_actions;
	for (size_t i = 0; i < n; i++) {
		int seen = 0;
		for (size_t j = 0; j < k && !seen; j++)
			seen = !strcmp(v[j], names[i]);
		if (!seen)
			v[k++] = names[i];
	}
	pd->actions = v;
	pd->n_actions = k;
	return build_orders(pd);
}

int pdomain_init(pdomain *pd, const void *bytes, size_t size, train_error *err)
{
	memset(pd, 0, sizeof *pd);
	void *dv = NULL;
	int rc = train_rasa_decode(TRAIN_RASA_DOMAIN_TYPE, bytes, size, &dv, err);
	if (rc)
		return rc;
	pd->dom = dv;
	const train_rasa_domain *d = pd->dom;
	ppool *p = &pd->pool;

	/* slots */
	pd->n_slots = d->n_slots;
	pd->slots = pp_alloc(p, (d->n_slots + 1) * sizeof *pd->slots);
	for (size_t i = 0; pd->slots && i < d->n_slots; i++) {
		const train_rasa_slot *rs = &d->slots[i];
		pslot *s = &pd->slots[i];
		s->name = rs->name;
		s->type = rs->type;
		s->min = rs->min_value;
		s->max = rs->max_value;
		s->initial = rs->initial_value && strcmp(rs->initial_value, "null") ? rs->initial_value : NULL;
		if (rs->type == TRAIN_RASA_SLOT_CATEGORICAL) {
			s->values = pp_alloc(p, (rs->values.n + 1) * sizeof *s->values);
			for (size_t k = 0; s->values && k < rs->values.n; k++) {
				const char *v = lower_dup(p, rs->values.v[k]);
				if (v && strcmp(v, "__other__"))
					s->values[s->n_values++] = v;
			}
			if (s->values)
				s->values[s->n_values++] = "__other__";
		}
		int featurized = rs->influence_conversation && rs->type != TRAIN_RASA_SLOT_ANY;
		switch (rs->type) {
		case TRAIN_RASA_SLOT_BOOL:
		case TRAIN_RASA_SLOT_FLOAT: s->dims = 2; break;
		case TRAIN_RASA_SLOT_CATEGORICAL: s->dims = (int)s->n_values; break;
		case TRAIN_RASA_SLOT_TEXT:
		case TRAIN_RASA_SLOT_LIST: s->dims = 1; break;
		default: s->dims = 0; break;
		}
		if (!featurized)
			s->dims = 0;
		if (s->initial && s->dims) {
			double *f = pp_alloc(p, (size_t)s->dims * sizeof *f);
			if (f)
				slot_features(s, s->initial, f);
			s->initial_f = f;
		}
		slot_fills(pd, s, rs);
	}

	/* intents: the domain's and Rasa's defaults */
	size_t ni = d->n_intents;
	pd->intents = pp_alloc(p, (ni + 8) * sizeof *pd->intents);
	for (size_t i = 0; pd->intents && i < ni; i++)
		pd->intents[pd->n_intents++] = d->intents[i].name;
	for (size_t i = 0; pd->intents && default_intents[i]; i++)
		pd->intents[pd->n_intents++] = default_intents[i];
	if (pd->intents)
		pd->n_intents = sort_unique(pd->intents, pd->n_intents);

	/* entity labels */
	size_t ne = 0;
	for (size_t i = 0; i < d->n_entities; i++)
		ne += 1 + d->entities[i].roles.n + d->entities[i].groups.n;
	pd->entity_labels = pp_alloc(p, (ne + 1) * sizeof *pd->entity_labels);
	for (size_t i = 0; pd->entity_labels && i < d->n_entities; i++) {
		const train_rasa_entity_decl *e = &d->entities[i];
		pd->entity_labels[pd->n_entity_labels++] = e->name;
		for (int g = 0; g < 2; g++) {
			const train_rasa_names *sub = g ? &e->groups : &e->roles;
			for (size_t k = 0; k < sub->n; k++) {
				size_t len = strlen(e->name) + strlen(sub->v[k]) + 2;
				char *l = pp_alloc(p, len);
				if (l)
					snprintf(l, len, "%s#%s", e->name, sub->v[k]);
				pd->entity_labels[pd->n_entity_labels++] = l ? l : "";
			}
		}
	}
	if (pd->entity_labels)
		pd->n_entity_labels = sort_unique(pd->entity_labels, pd->n_entity_labels);

	/* forms */
	pd->forms = pp_alloc(p, (d->n_forms + 1) * sizeof *pd->forms);
	for (size_t i = 0; pd->forms && i < d->n_forms; i++)
		pd->forms[pd->n_forms++] = d->forms[i].name;
	if (pd->forms)
		pd->n_forms = sort_unique(pd->forms, pd->n_forms);

	/* the action space: defaults, custom actions, responses (sorted),
	 * forms, end-to-end bot texts */
	size_t nr = d->n_responses;
	const char **names = pp_alloc(p, (13 + d->n_actions + nr + d->n_forms + d->e2e_actions.n + 1) *
	                                     sizeof *names);
	size_t k = 0;
	for (size_t i = 0; names && default_actions[i]; i++)
		names[k++] = default_actions[i];
	for (size_t i = 0; names && i < d->n_actions; i++)
		names[k++] = d->actions[i].name;
	size_t rstart = k;
	for (size_t i = 0; names && i < nr; i++) {
		const char *r = d->responses[i].name;
		const char *slash = strchr(r, '/');
		names[k++] = slash ? pp_strdup(p, r) : r;
		if (slash && names[k - 1])
			((char *)names[k - 1])[slash - r] = '\0';
	}
	if (names) {
		for (size_t i = rstart; i < k; i++)
			if (!names[i])
				names[i] = "";
		qsort(names + rstart, k - rstart, sizeof *names, cmp_strp);
	}
	for (size_t i = 0; names && i < d->n_forms; i++)
		names[k++] = d->forms[i].name;
	for (size_t i = 0; names && i < d->e2e_actions.n; i++)
		names[k++] = d->e2e_actions.v[i];
	if (p->oom || !pd->slots || !names)
		return TRAIN_ENOMEM;
	return add_actions(pd, names, k);
}

void pdomain_free(pdomain *pd)
{
	train_rasa_domain_free(pd->dom);
	pp_free(&pd->pool);
	memset(pd, 0, sizeof *pd);
}

int pdomain_add_from_stories(pdomain *pd, const train_rasa_stories *st)
{
	size_t cap = 0;
	for (size_t i = 0; i < st->n_items; i++)
		cap += st->items[i].n_events;
	const char **names = malloc((cap + 1) * sizeof *names);
	if (!names)
		return TRAIN_ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < st->n_items; i++) {
		const train_rasa_story *s = &st->items[i];
		for (size_t j = 0; j < s->n_events; j++) {
			const train_rasa_event *e = &s->events[j];
			if (e->kind == TRAIN_RASA_EV_ACTION && e->name && strcmp(e->name, RULE_SNIPPET))
				names[k++] = e->name;
			else if (e->kind == TRAIN_RASA_EV_BOT && e->text)
				names[k++] = e->text;
		}
	}
	/* unknown ones, sorted so that the order does not depend on the files */
	size_t u = 0;
	for (size_t i = 0; i < k; i++)
		if (pdomain_action(pd, names[i]) < 0)
			names[u++] = names[i];
	u = sort_unique(names, u);
	int rc = add_actions(pd, names, u);
	free(names);
	return rc;
}

int pdomain_set_actions(pdomain *pd, json_t *a)
{
	const char **v = NULL;
	size_t n = 0;
	int rc = names_from_json(a, &pd->pool, &v, &n);
	if (rc)
		return rc;
	pd->actions = NULL;
	pd->n_actions = 0;
	return add_actions(pd, v, n);
}

json_t *pdomain_actions_json(const pdomain *pd)
{
	return names_json(pd->actions, pd->n_actions);
}

json_t *names_json(const char *const *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < n; i++)
		if (json_array_append_new(a, json_string(v[i]))) {
			json_decref(a);
			return NULL;
		}
	return a;
}

int names_from_json(json_t *a, ppool *pool, const char ***v, size_t *n)
{
	*v = NULL;
	*n = 0;
	if (!json_is_array(a))
		return TRAIN_ECORRUPT;
	const char **r = pp_alloc(pool, (json_array_size(a) + 1) * sizeof *r);
	if (!r)
		return TRAIN_ENOMEM;
	for (size_t i = 0; i < json_array_size(a); i++) {
		const char *s = json_string_value(json_array_get(a, i));
		if (!s)
			return TRAIN_ECORRUPT;
		if (!(r[i] = pp_strdup(pool, s)))
			return TRAIN_ENOMEM;
	}
	*v = r;
	*n = json_array_size(a);
	return TRAIN_OK;
}

/* Does `intent` featurize entity label `label` ("city", "city#from")? */
static int intent_uses(const pdomain *pd, const char *intent, const char *label)
{
	const train_rasa_domain *d = pd->dom;
	const train_rasa_intent *it = NULL;
	int known = 0;
	for (size_t i = 0; i < d->n_intents && !it; i++)
		if (!strcmp(d->intents[i].name, intent))
			it = &d->intents[i];
	for (size_t i = 0; default_intents[i] && !it && !known; i++)
		known = !strcmp(default_intents[i], intent);
	if (!it && !known)
		return 1; /* an intent the domain lacks: Rasa featurizes every label */
	size_t base_len = strcspn(label, "#");
	const train_rasa_entity_decl *decl = NULL;
	for (size_t i = 0; i < d->n_entities && !decl; i++)
		if (strlen(d->entities[i].name) == base_len &&
		    !strncmp(d->entities[i].name, label, base_len))
			decl = &d->entities[i];
	if (!decl)
		return 0; /* only entities (and roles, groups) of the domain */
	if (label[base_len]) {
		const char *sub = label + base_len + 1;
		int ok = 0;
		for (size_t i = 0; i < decl->roles.n; i++)
			ok |= !strcmp(decl->roles.v[i], sub);
		for (size_t i = 0; i < decl->groups.n; i++)
			ok |= !strcmp(decl->groups.v[i], sub);
		if (!ok)
			return 0;
	}
	int listed = 0;
	for (size_t i = 0; it && i < it->entities.n; i++)
		listed |= strlen(it->entities.v[i]) == base_len &&
		          !strncmp(it->entities.v[i], label, base_len);
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

/* ------------------------------------------------------------------------ */
/* dialogues */

void dialog_free(pdialog *d)
{
	free(d->ev);
	memset(d, 0, sizeof *d);
}

int dialog_push(pdialog *d, const pevent *e)
{
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 32;
		pevent *ev = realloc(d->ev, cap * sizeof *ev);
		if (!ev)
			return TRAIN_ENOMEM;
		d->ev = ev;
		d->cap = cap;
	}
	d->ev[d->n++] = *e;
	return TRAIN_OK;
}

static int is_listen(const pevent *e)
{
	return e->kind == PE_ACTION && e->name && !strcmp(e->name, ACTION_LISTEN);
}

static int push_action(pdialog *d, const char *name)
{
	pevent e = { .kind = PE_ACTION, .name = name };
	return dialog_push(d, &e);
}

static int fill_matches(const pfill *f, const pent *e)
{
	if (strcmp(f->entity, e->entity))
		return 0;
	if (f->any)
		return 1;
	return !strcmp(f->role ? f->role : "", e->role ? e->role : "") &&
	       !strcmp(f->group ? f->group : "", e->group ? e->group : "");
}

/* A user turn: the listen before it, the turn, the slots its entities fill. */
static int push_user(const pdomain *pd, pdialog *d, const pevent *u, ppool *pool)
{
	int rc = TRAIN_OK;
	if (!d->n || !is_listen(&d->ev[d->n - 1]))
		rc = push_action(d, ACTION_LISTEN);
	if (!rc)
		rc = dialog_push(d, u);
	for (size_t s = 0; !rc && s < pd->n_slots; s++) {
		const pslot *sl = &pd->slots[s];
		size_t hits = 0;
		const char *last = NULL;
		for (size_t k = 0; k < u->n_ents; k++)
			for (size_t f = 0; f < sl->n_fills; f++)
				if (fill_matches(&sl->fills[f], &u->ents[k])) {
					hits++;
					last = u->ents[k].value;
					break;
				}
		if (!hits)
			continue;
		const char *value = last;
		if (sl->type == TRAIN_RASA_SLOT_LIST) {
			pbuf b = { 0 };
			pb_str(&b, "[");
			size_t w = 0;
			for (size_t k = 0; k < u->n_ents; k++)
				for (size_t f = 0; f < sl->n_fills; f++)
					if (fill_matches(&sl->fills[f], &u->ents[k])) {
						pb_printf(&b, "%s%s", w++ ? ", " : "", u->ents[k].value);
						break;
					}
			pb_str(&b, "]");
			value = b.oom ? NULL : pp_strdup(pool, b.d);
			pb_free(&b);
			if (!value)
				return TRAIN_ENOMEM;
		}
		pevent e = { .kind = PE_SLOT, .name = sl->name, .value = value };
		rc = dialog_push(d, &e);
	}
	return rc;
}

/* The value of a story entity (`value` as written) as JSON text. */
static const char *entity_json(ppool *pool, const char *v)
{
	if (!v)
		return "null";
	if (v[0] == '[' || v[0] == '{') {
		json_t *j = json_loads(v, JSON_DECODE_ANY, NULL);
		json_decref(j);
		if (j)
			return v;
	}
	json_t *js = json_string(v);
	if (!js)
		return "null"; /* not UTF-8: the reader never gives one */
	char *s = json_dumps(js, JSON_ENCODE_ANY);
	json_decref(js);
	const char *r = s ? pp_strdup(pool, s) : NULL;
	free(s);
	return r;
}

static int event_from_rasa(const pdomain *pd, const train_rasa_event *re, int rule,
                           ppool *pool, pdialog *d)
{
	pevent e = { 0 };
	switch (re->kind) {
	case TRAIN_RASA_EV_USER: {
		e.kind = PE_USER;
		e.name = re->name;
		e.text = re->text;
		e.confidence = 1.0;
		pent *ents = re->n_entities ? pp_alloc(pool, re->n_entities * sizeof *ents) : NULL;
		if (re->n_entities && !ents)
			return TRAIN_ENOMEM;
		for (size_t i = 0; i < re->n_entities; i++) {
			ents[i].entity = re->entities[i].entity;
			ents[i].role = re->entities[i].role;
			ents[i].group = re->entities[i].group;
			if (!(ents[i].value = entity_json(pool, re->entities[i].value)))
				return TRAIN_ENOMEM;
		}
		e.ents = ents;
		e.n_ents = re->n_entities;
		return push_user(pd, d, &e, pool);
	}
	case TRAIN_RASA_EV_ACTION:
		e.kind = PE_ACTION;
		e.name = re->name;
		break;
	case TRAIN_RASA_EV_BOT:
		e.kind = PE_ACTION;
		e.text = re->text;
		break;
	case TRAIN_RASA_EV_SLOT: {
		e.kind = PE_SLOT;
		e.name = re->name;
		e.value = re->value;
		if (!e.value) { /* `- slot_was_set: [name]`: Rasa's defaults */
			for (size_t i = 0; i < pd->n_slots; i++)
				if (!strcmp(pd->slots[i].name, re->name))
					e.value = pd->slots[i].type == TRAIN_RASA_SLOT_TEXT   ? "\"filled\""
					          : pd->slots[i].type == TRAIN_RASA_SLOT_LIST ? "[\"filled\"]"
					                                                      : NULL;
		}
		if (e.value && !strcmp(e.value, "null"))
			e.value = NULL;
		e.snb = rule && !e.value;
		break;
	}
	case TRAIN_RASA_EV_ACTIVE_LOOP:
		e.kind = PE_LOOP;
		e.name = re->name;
		e.snb = rule && !re->name;
		break;
	default:
		return TRAIN_OK;
	}
	return dialog_push(d, &e);
}

int dialog_from_tracker(const pdomain *pd, const train_rasa_tracker *t, ppool *pool, pdialog *out)
{
	memset(out, 0, sizeof *out);
	out->name = t->name;
	int rule = t->kind == TRAIN_RASA_RULE;
	out->is_rule = rule;
	int rc = TRAIN_OK;
	size_t ncond = rule ? t->n_condition : 0;
	for (size_t i = 0; !rc && i < ncond; i++)
		rc = event_from_rasa(pd, t->events[i], rule, pool, out);
	if (!rc && rule && !t->conversation_start)
		rc = push_action(out, RULE_SNIPPET);
	/* A story that starts with an action (before any user turn) cannot
	 * predict it (Rasa's _mark_first_action_in_story_steps_as_unpredictable;
	 * the parts after checkpoints are not told apart here). */
	int seen_user = rule;
	for (size_t i = ncond; !rc && i < t->n_events; i++) {
		train_rasa_event_kind k = t->events[i]->kind;
		rc = event_from_rasa(pd, t->events[i], rule, pool, out);
		if (!rc && !seen_user && (k == TRAIN_RASA_EV_ACTION || k == TRAIN_RASA_EV_BOT))
			out->ev[out->n - 1].unpredictable = 1;
		seen_user |= k == TRAIN_RASA_EV_USER || k == TRAIN_RASA_EV_ACTION || k == TRAIN_RASA_EV_BOT;
	}
	if (!rc) {
		if (rule && !t->wait_for_user_input)
			rc = push_action(out, RULE_SNIPPET);
		else if (!out->n || !is_listen(&out->ev[out->n - 1]))
			rc = push_action(out, ACTION_LISTEN);
	}
	if (rc)
		dialog_free(out);
	return rc;
}

static long slot_index(const pdomain *pd, const char *name);

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

int dialog_from_json(const pdomain *pd, json_t *events, ppool *pool, pdialog *out, char *why,
                     size_t why_size)
{
	memset(out, 0, sizeof *out);
	if (json_is_object(events))
		events = json_object_get(events, "events");
	if (!json_is_array(events)) {
		snprintf(why, why_size, "a conversation is a JSON array of events "
		         "(or an object with \"events\")");
		return TRAIN_EINVAL;
	}
	int rc = TRAIN_OK;
	size_t i;
	json_t *o;
	json_array_foreach(events, i, o) {
		const char *kind = jstr(o, "event");
		pevent e = { 0 };
		if (!kind) {
			snprintf(why, why_size, "event %zu: no \"event\" key", i);
			rc = TRAIN_EINVAL;
			break;
		}
		if (!strcmp(kind, "user")) {
			e.kind = PE_USER;
			e.name = pp_strdup(pool, jstr(o, "intent"));
			e.text = pp_strdup(pool, jstr(o, "text"));
			json_t *c = json_object_get(o, "confidence");
			e.confidence = json_is_number(c) ? json_number_value(c) : 1.0;
			json_t *ents = json_object_get(o, "entities");
			size_t n = json_is_array(ents) ? json_array_size(ents) : 0;
			pent *pe = n ? pp_alloc(pool, n * sizeof *pe) : NULL;
			for (size_t k = 0; pe && k < n; k++) {
				json_t *x = json_array_get(ents, k);
				if (json_is_string(x)) {
					pe[k].entity = pp_strdup(pool, json_string_value(x));
					pe[k].value = "\"\"";
					continue;
				}
				pe[k].entity = pp_strdup(pool, jstr(x, "entity"));
				pe[k].role = pp_strdup(pool, jstr(x, "role"));
				pe[k].group = pp_strdup(pool, jstr(x, "group"));
				json_t *v = json_object_get(x, "value");
				char *s = v ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
				pe[k].value = pp_strdup(pool, s ? s : "null");
				free(s);
				if (!pe[k].entity) {
					snprintf(why, why_size, "event %zu: entity %zu has no \"entity\"", i, k);
					rc = TRAIN_EINVAL;
				}
			}
			if (ents && !json_is_array(ents)) {
				snprintf(why, why_size, "event %zu: \"entities\" must be a list", i);
				rc = TRAIN_EINVAL;
			}
			if (!e.name && !e.text && !rc) {
				snprintf(why, why_size, "event %zu: a user event needs \"intent\" or \"text\"", i);
				rc = TRAIN_EINVAL;
			}
			e.ents = pe;
			e.n_ents = pe ? n : 0;
			if (!rc)
				rc = push_user(pd, out, &e, pool);
		} else if (!strcmp(kind, "action") || !strcmp(kind, "bot")) {
			e.kind = PE_ACTION;
			e.name = pp_strdup(pool, jstr(o, "name"));
			e.text = e.name ? NULL : pp_strdup(pool, jstr(o, "text"));
			if (!e.name && !e.text) {
				snprintf(why, why_size, "event %zu: an action needs \"name\" (or \"text\")", i);
				rc = TRAIN_EINVAL;
			} else {
				rc = dialog_push(out, &e);
			}
		} else if (!strcmp(kind, "slot")) {
			e.kind = PE_SLOT;
			e.name = pp_strdup(pool, jstr(o, "name"));
			json_t *v = json_object_get(o, "value");
			if (v && !json_is_null(v)) {
				char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
				e.value = pp_strdup(pool, s ? s : "null");
				free(s);
			} else if (!v) { /* as a story's bare `- slot_was_set: [name]` */
				long k = e.name ? slot_index(pd, e.name) : -1;
				if (k >= 0 && pd->slots[k].type == TRAIN_RASA_SLOT_TEXT)
					e.value = "\"filled\"";
				else if (k >= 0 && pd->slots[k].type == TRAIN_RASA_SLOT_LIST)
					e.value = "[\"filled\"]";
			}
			if (!e.name) {
				snprintf(why, why_size, "event %zu: a slot event needs \"name\"", i);
				rc = TRAIN_EINVAL;
			} else {
				rc = dialog_push(out, &e);
			}
		} else if (!strcmp(kind, "active_loop")) {
			e.kind = PE_LOOP;
			e.name = pp_strdup(pool, jstr(o, "name"));
			rc = dialog_push(out, &e);
		} else if (!strcmp(kind, "rejected")) {
			e.kind = PE_REJECT;
			e.name = pp_strdup(pool, jstr(o, "name"));
			rc = dialog_push(out, &e);
		} else if (!strcmp(kind, "restart") || !strcmp(kind, "session_started")) {
			e.kind = PE_RESET;
			rc = dialog_push(out, &e);
		} else {
			snprintf(why, why_size, "event %zu: unknown event \"%s\" (known: user, action, bot, "
			         "slot, active_loop, rejected, restart, session_started)", i, kind);
			rc = TRAIN_EINVAL;
		}
		if (pool->oom)
			rc = TRAIN_ENOMEM;
		if (rc)
			break;
	}
	if (rc)
		dialog_free(out);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* states */

typedef struct tstate {
	const pevent *user;
	const char *act_name, *act_text;
	const char *loop;        /* name, SNB, or NULL */
	int rejected;
	int last_was_reject;
	const char *rejected_action;
	const double **f;        /* per slot: features, NULL when they are all zero/unset */
	char *set;               /* per slot: has been set */
	char *snb;
} tstate;

static void tstate_reset(const pdomain *pd, tstate *t)
{
	t->user = NULL;
	t->act_name = t->act_text = NULL;
	t->loop = NULL;
	t->rejected = t->last_was_reject = 0;
	t->rejected_action = NULL;
	for (size_t i = 0; i < pd->n_slots; i++) {
		t->f[i] = pd->slots[i].initial_f;
		t->set[i] = 0;
		t->snb[i] = 0;
	}
}

static int name_in(const char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (!strcmp(v[i], s))
			return 1;
	return 0;
}

static int any_nonzero(const double *f, int n)
{
	for (int i = 0; f && i < n; i++)
		if (f[i] != 0)
			return 1;
	return 0;
}

static int take_state(const pdomain *pd, const tstate *t, const pstate_opts *o, ppool *pool,
                      pstate *st)
{
	memset(st, 0, sizeof *st);
	const pevent *u = t->user;
	if (u) {
		st->intent = u->name;
		st->text = u->name ? NULL : u->text;
		if (u->name && u->n_ents) {
			const char **ents = pp_alloc(pool, 3 * u->n_ents * sizeof *ents);
			if (!ents)
				return TRAIN_ENOMEM;
			size_t n = 0;
			for (size_t i = 0; i < u->n_ents; i++) {
				const pent *e = &u->ents[i];
				const char *subs[3] = { NULL, e->role, e->group };
				for (int k = 0; k < 3; k++) {
					if (k && !subs[k])
						continue;
					const char *l = e->entity;
					if (k) {
						size_t len = strlen(e->entity) + strlen(subs[k]) + 2;
						char *x = pp_alloc(pool, len);
						if (!x)
							return TRAIN_ENOMEM;
						snprintf(x, len, "%s#%s", e->entity, subs[k]);
						l = x;
					}
					if (intent_uses(pd, u->name, l))
						ents[n++] = l;
				}
			}
			st->n_ents = sort_unique(ents, n);
			st->ents = ents;
		}
	}
	st->act_name = t->act_name;
	st->act_text = t->act_text;
	if (t->loop && !(o && name_in(o->drop_loops, o->n_drop_loops, t->loop)))
		st->loop = t->loop;
	st->slots = pp_alloc(pool, (pd->n_slots + 1) * sizeof *st->slots);
	if (!st->slots)
		return TRAIN_ENOMEM;
	for (size_t k = 0; k < pd->n_slots; k++) {
		size_t i = pd->slot_order[k];
		const pslot *s = &pd->slots[i];
		if (!s->dims)
			continue;
		if (o && o->omit_unset_slots && !t->set[i])
			continue;
		if (o && name_in(o->drop_slots, o->n_drop_slots, s->name))
			continue;
		pslotf *sf = &st->slots[st->n_slots];
		if (t->snb[i]) {
			sf->name = s->name;
			sf->snb = 1;
			st->n_slots++;
		} else if (any_nonzero(t->f[i], s->dims)) {
			sf->name = s->name;
			sf->nf = s->dims;
			sf->f = t->f[i];
			st->n_slots++;
		}
	}
	return TRAIN_OK;
}

static long slot_index(const pdomain *pd, const char *name)
{
	size_t lo = 0, hi = pd->n_slots;
	while (name && lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(pd->slots[pd->slot_order[mid]].name, name);
		if (!c)
			return (long)pd->slot_order[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

static int apply_event(const pdomain *pd, tstate *t, const pevent *e, ppool *pool)
{
	switch (e->kind) {
	case PE_USER:
		t->user = e;
		break;
	case PE_ACTION:
		t->act_name = e->name;
		t->act_text = e->name ? NULL : e->text;
		if (t->loop && e->name && !strcmp(e->name, t->loop))
			t->rejected = 0;
		t->last_was_reject = 0;
		break;
	case PE_SLOT: {
		long i = slot_index(pd, e->name);
		if (i < 0)
			break; /* not a slot of the domain: Rasa ignores it */
		const pslot *s = &pd->slots[i];
		t->set[i] = 1;
		t->snb[i] = e->snb;
		t->f[i] = NULL;
		if (s->dims && e->value) {
			double *f = pp_alloc(pool, (size_t)s->dims * sizeof *f);
			if (!f)
				return TRAIN_ENOMEM;
			slot_features(s, e->value, f);
			t->f[i] = f;
		}
		break;
	}
	case PE_LOOP:
		t->loop = e->name ? e->name : e->snb ? SNB : NULL;
		t->rejected = 0;
		break;
	case PE_REJECT:
		if (t->loop && e->name && !strcmp(e->name, t->loop))
			t->rejected = 1;
		t->last_was_reject = 1;
		t->rejected_action = e->name;
		break;
	case PE_RESET:
		tstate_reset(pd, t);
		break;
	}
	return TRAIN_OK;
}

int dialog_states(const pdomain *pd, const pdialog *d, size_t n_events, const pstate_opts *o,
                  ppool *pool, pstate **states, pturn **turns, size_t *n_states)
{
	*states = NULL;
	if (turns)
		*turns = NULL;
	*n_states = 0;
	if (n_events > d->n)
		n_events = d->n;
	size_t n = 1;
	for (size_t i = 0; i < n_events; i++)
		n += d->ev[i].kind == PE_ACTION;
	pstate *st = pp_alloc(pool, n * sizeof *st);
	pturn *tu = turns ? pp_alloc(pool, n * sizeof *tu) : NULL;
	tstate t = { 0 };
	t.f = calloc(pd->n_slots + 1, sizeof *t.f);
	t.set = calloc(pd->n_slots + 1, 1);
	t.snb = calloc(pd->n_slots + 1, 1);
	int rc = (!st || (turns && !tu) || !t.f || !t.set || !t.snb) ? TRAIN_ENOMEM : TRAIN_OK;
	if (!rc)
		tstate_reset(pd, &t);
	size_t k = 0;
	for (size_t i = 0; !rc && i <= n_events; i++) {
		if (i == n_events || d->ev[i].kind == PE_ACTION) {
			rc = take_state(pd, &t, o, pool, &st[k]);
			if (tu) {
				pturn *u = &tu[k];
				u->event = i;
				u->loop = t.loop && strcmp(t.loop, SNB) ? t.loop : NULL;
				u->rejected = u->loop && t.rejected;
				u->latest_action = t.act_name ? t.act_name : t.act_text;
				u->user = t.user;
				u->last_was_reject = t.last_was_reject;
				u->rejected_action = t.rejected_action;
			}
			k++;
		}
		if (!rc && i < n_events)
			rc = apply_event(pd, &t, &d->ev[i], pool);
		/* a restart or a new session: the history starts again (Rasa's
		 * applied_events) */
		if (!rc && i < n_events && d->ev[i].kind == PE_RESET)
			k = 0;
	}
	free(t.f);
	free(t.set);
	free(t.snb);
	if (!rc && pool->oom)
		rc = TRAIN_ENOMEM;
	if (rc)
		return rc;
	*states = st;
	if (turns)
		*turns = tu;
	*n_states = k;
	return TRAIN_OK;
}

void state_use_text(pstate *last, const pturn *turn)
{
	if (!turn->latest_action || strcmp(turn->latest_action, ACTION_LISTEN))
		return;
	last->intent = NULL;
	last->ents = NULL;
	last->n_ents = 0;
	last->text = turn->user ? turn->user->text : NULL;
}

int state_empty(const pstate *s)
{
	return !s->intent && !s->text && !s->n_ents && !s->act_name && !s->act_text && !s->loop &&
	       !s->n_slots;
}

int state_has_prev(const pstate *s)
{
	return s->act_name || s->act_text;
}

static void key_one(pbuf *b, const pstate *s)
{
	int first = 1;
	pb_str(b, "{");
	if (s->loop) {
		pb_str(b, "\"active_loop\": {\"name\": ");
		pb_pystr(b, s->loop);
		pb_str(b, "}");
		first = 0;
	}
	if (s->act_name || s->act_text) {
		pb_str(b, first ? "" : ", ");
		pb_str(b, s->act_name ? "\"prev_action\": {\"action_name\": "
		                      : "\"prev_action\": {\"action_text\": ");
		pb_pystr(b, s->act_name ? s->act_name : s->act_text);
		pb_str(b, "}");
		first = 0;
	}
	if (s->n_slots) {
		pb_str(b, first ? "\"slots\": {" : ", \"slots\": {");
		for (size_t i = 0; i < s->n_slots; i++) {
			const pslotf *f = &s->slots[i];
			pb_str(b, i ? ", " : "");
			pb_pystr(b, f->name);
			pb_str(b, ": ");
			if (f->snb) {
				pb_pystr(b, SNB);
				continue;
			}
			pb_str(b, "[");
			for (int k = 0; k < f->nf; k++) {
				pb_str(b, k ? ", " : "");
				pb_pyfloat(b, f->f[k]);
			}
			pb_str(b, "]");
		}
		pb_str(b, "}");
		first = 0;
	}
	if (s->intent || s->text || s->n_ents) {
		int ufirst = 1;
		pb_str(b, first ? "\"user\": {" : ", \"user\": {");
		if (s->n_ents) {
			pb_str(b, "\"entities\": [");
			for (size_t i = 0; i < s->n_ents; i++) {
				pb_str(b, i ? ", " : "");
				pb_pystr(b, s->ents[i]);
			}
			pb_str(b, "]");
			ufirst = 0;
		}
		if (s->intent) {
			pb_str(b, ufirst ? "\"intent\": " : ", \"intent\": ");
			pb_pystr(b, s->intent);
			ufirst = 0;
		}
		if (s->text) {
			pb_str(b, ufirst ? "\"text\": " : ", \"text\": ");
			pb_pystr(b, s->text);
		}
		pb_str(b, "}");
	}
	pb_str(b, "}");
}

void state_key(pbuf *b, const pstate *st, size_t n)
{
	pb_str(b, "[");
	for (size_t i = 0; i < n; i++) {
		pb_str(b, i ? ", " : "");
		key_one(b, &st[i]);
	}
	pb_str(b, "]");
}

int state_parse(json_t *j, ppool *pool, pstate *out)
{
	memset(out, 0, sizeof *out);
	if (!json_is_object(j))
		return TRAIN_ECORRUPT;
	json_t *u = json_object_get(j, "user"), *pa = json_object_get(j, "prev_action");
	json_t *al = json_object_get(j, "active_loop"), *sl = json_object_get(j, "slots");
	out->intent = pp_strdup(pool, jstr(u, "intent"));
	out->text = pp_strdup(pool, jstr(u, "text"));
	json_t *ents = json_object_get(u, "entities");
	if (json_is_array(ents) && json_array_size(ents)) {
		int rc = names_from_json(ents, pool, &out->ents, &out->n_ents);
		if (rc)
			return rc;
	}
	out->act_name = pp_strdup(pool, jstr(pa, "action_name"));
	out->act_text = pp_strdup(pool, jstr(pa, "action_text"));
	out->loop = pp_strdup(pool, jstr(al, "name"));
	if (json_is_object(sl)) {
		out->slots = pp_alloc(pool, (json_object_size(sl) + 1) * sizeof *out->slots);
		if (!out->slots)
			return TRAIN_ENOMEM;
		const char *key;
		json_t *v;
		json_object_foreach(sl, key, v) {
			pslotf *f = &out->slots[out->n_slots++];
			f->name = pp_strdup(pool, key);
			if (json_is_string(v)) {
				f->snb = 1;
				continue;
			}
			if (!json_is_array(v))
				return TRAIN_ECORRUPT;
			double *x = pp_alloc(pool, (json_array_size(v) + 1) * sizeof *x);
			if (!x)
				return TRAIN_ENOMEM;
			for (size_t k = 0; k < json_array_size(v); k++)
				x[k] = json_number_value(json_array_get(v, k));
			f->f = x;
			f->nf = (int)json_array_size(v);
		}
	}
	return pool->oom ? TRAIN_ENOMEM : TRAIN_OK;
}

static int same(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

static const pslotf *find_slotf(const pstate *s, const char *name)
{
	for (size_t i = 0; i < s->n_slots; i++)
		if (!strcmp(s->slots[i].name, name))
			return &s->slots[i];
	return NULL;
}

int state_match(const pstate *r, const pstate *c)
{
	if (r->intent && !same(r->intent, c->intent))
		return 0;
	if (r->text && !same(r->text, c->text))
		return 0;
	if (r->n_ents) {
		if (r->n_ents != c->n_ents)
			return 0;
		for (size_t i = 0; i < r->n_ents; i++)
			if (strcmp(r->ents[i], c->ents[i]))
				return 0;
	}
	if (r->act_name && !same(r->act_name, c->act_name))
		return 0;
	if (r->act_text && !same(r->act_text, c->act_text))
		return 0;
	if (r->loop) {
		if (!strcmp(r->loop, SNB)) {
			if (c->loop && strcmp(c->loop, SNB))
				return 0;
		} else if (!same(r->loop, c->loop)) {
			return 0;
		}
	}
	for (size_t i = 0; i < r->n_slots; i++) {
		const pslotf *rf = &r->slots[i], *cf = find_slotf(c, rf->name);
		if (rf->snb) {
			if (cf && !cf->snb)
				return 0;
			continue;
		}
		if (!cf || cf->snb || cf->nf != rf->nf)
			return 0;
		for (int k = 0; k < rf->nf; k++)
			if (cf->f[k] != rf->f[k])
				return 0;
	}
	return 1;
}

/* ------------------------------------------------------------------------ */
/* rule-only slots and loops */

int rule_only_find(const pdomain *pd, const pdialog *dl, size_t n, ppool *pool, prule_only *out)
{
	memset(out, 0, sizeof *out);
	/* per domain slot and form: used in rules (1), in stories (2) */
	char *slot_use = calloc(pd->n_slots + 1, 1);
	char *loop_use = calloc(pd->n_forms + 1, 1);
	int rc = slot_use && loop_use ? TRAIN_OK : TRAIN_ENOMEM;
	for (size_t i = 0; !rc && i < n; i++) {
		ppool tmp = { 0 };
		pstate *st;
		size_t ns;
		pstate_opts o = { .omit_unset_slots = dl[i].is_rule };
		rc = dialog_states(pd, &dl[i], dl[i].n, &o, &tmp, &st, NULL, &ns);
		char bit = dl[i].is_rule ? 1 : 2;
		for (size_t k = 0; !rc && k < ns; k++) {
			for (size_t s = 0; s < st[k].n_slots; s++) {
				long x = slot_index(pd, st[k].slots[s].name);
				if (x >= 0)
					slot_use[x] |= bit;
			}
			long f = st[k].loop ? pdomain_sorted_find(pd->forms, pd->n_forms, st[k].loop) : -1;
			if (f >= 0)
				loop_use[f] |= bit;
		}
		pp_free(&tmp);
	}
	if (!rc) {
		out->slots = pp_alloc(pool, (pd->n_slots + 1) * sizeof *out->slots);
		out->loops = pp_alloc(pool, (pd->n_forms + 1) * sizeof *out->loops);
		if (!out->slots || !out->loops)
			rc = TRAIN_ENOMEM;
	}
	for (size_t k = 0; !rc && k < pd->n_slots; k++) {
		size_t i = pd->slot_order[k];
		if (slot_use[i] == 1)
			out->slots[out->n_slots++] = pd->slots[i].name;
	}
	for (size_t i = 0; !rc && i < pd->n_forms; i++)
		if (loop_use[i] == 1)
			out->loops[out->n_loops++] = pd->forms[i];
	free(slot_use);
	free(loop_use);
	return rc;
}
