/*
 * plugins/policy/memo.c - MemoizationPolicy and AugmentedMemoizationPolicy
 * (issue 6), after rasa/core/policies/memoization.py.
 *
 * Training: every action of every story (rules are not ML data) is an
 * example: the last max_history states before it -> the action.  The key
 * is the states' JSON (json.dumps(sort_keys=True)); a key that two
 * examples map to different actions is ambiguous and dropped, so what is
 * kept reproduces every story whose history windows do not conflict.
 * Slots and loops that only rules use are left out of the states, as
 * Rasa's rule-only data does for ML policies.
 *
 * Prediction: the conversation's last max_history states; a hit predicts
 * its action with confidence 1 (or the intent's confidence with
 * use_nlu_confidence_as_score).  The augmented variant, on a miss, cuts
 * the conversation to the events of the last max_history user turns,
 * then drops leading events up to the next action again and again
 * (keeping no slots from before the cut, as Rasa) until a window hits.
 *
 * Left out: Rasa's zlib+base64 compression of the keys (the table is
 * kept as readable JSON), hidden rule turns.
 */
#include "policy.h"

#include <stdlib.h>
#include <string.h>

typedef struct pair {
	const char *key, *action;
} pair;

static int cmp_pair(const void *a, const void *b)
{
	const pair *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : strcmp(x->action, y->action);
}

static pstate_opts ml_opts(const prule_only *ro)
{
	pstate_opts o = { 0 };
	o.drop_slots = ro->slots;
	o.n_drop_slots = ro->n_slots;
	o.drop_loops = ro->loops;
	o.n_drop_loops = ro->n_loops;
	return o;
}

static size_t window_start(size_t k, int h)
{
	return h > 0 && k + 1 > (size_t)h ? k + 1 - (size_t)h : 0;
}

int memo_train(memo *m, const pdomain *pd, const pdialog *dl, size_t n)
{
	pair *v = NULL;
	size_t nv = 0, cap = 0;
	int rc = rule_only_find(pd, dl, n, &m->pool, &m->ro);
	pstate_opts o = ml_opts(&m->ro);
	pbuf b = { 0 };
	for (size_t i = 0; !rc && i < n; i++) {
		if (dl[i].is_rule)
			continue;
		ppool tmp = { 0 };
		pstate *st;
		pturn *tu;
		size_t ns;
		rc = dialog_states(pd, &dl[i], dl[i].n, &o, &tmp, &st, &tu, &ns);
		for (size_t k = 0; !rc && k + 1 < ns; k++) {
			const pevent *e = &dl[i].ev[tu[k].event];
			if (e->unpredictable)
				continue;
			size_t s0 = window_start(k, m->max_history);
			b.len = 0;
			state_key(&b, st + s0, k + 1 - s0);
			if (nv == cap) {
				cap = cap ? cap * 2 : 256;
				pair *nvp = realloc(v, cap * sizeof *v);
				if (!nvp) {
					rc = TRAIN_ENOMEM;
					break;
				}
				v = nvp;
			}
			v[nv].key = b.oom ? NULL : pp_strdup(&m->pool, b.d);
			v[nv].action = pp_strdup(&m->pool, e->name ? e->name : e->text);
			if (!v[nv].key || !v[nv].action)
				rc = TRAIN_ENOMEM;
			nv++;
		}
		pp_free(&tmp);
	}
	pb_free(&b);
	if (!rc && nv) {
		qsort(v, nv, sizeof *v, cmp_pair);
		m->e = pp_alloc(&m->pool, nv * sizeof *m->e);
		if (!m->e)
			rc = TRAIN_ENOMEM;
		for (size_t i = 0; !rc && i < nv;) {
			size_t j = i + 1;
			int agree = 1;
			while (j < nv && !strcmp(v[j].key, v[i].key)) {
				agree &= !strcmp(v[j].action, v[i].action);
				j++;
			}
			if (agree) {
				m->e[m->n].key = v[i].key;
				m->e[m->n].action = v[i].action;
				m->n++;
			}
			i = j;
		}
	}
	free(v);
	return rc;
}

json_t *memo_to_json(const memo *m)
{
	json_t *j = json_object(), *lk = json_object();
	if (!j || !lk) {
		json_decref(j);
		json_decref(lk);
		return NULL;
	}
	int bad = 0;
	for (size_t i = 0; i < m->n; i++)
		bad |= json_object_set_new(lk, m->e[i].key, json_string(m->e[i].action));
	bad |= json_object_set_new(j, "lookup", lk);
	bad |= json_object_set_new(j, "max_history", m->max_history > 0 ? json_integer(m->max_history)
	                                                               : json_null());
	bad |= json_object_set_new(j, "rule_only_slots", names_json(m->ro.slots, m->ro.n_slots));
	bad |= json_object_set_new(j, "rule_only_loops", names_json(m->ro.loops, m->ro.n_loops));
	if (bad) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const memo_entry *)a)->key, ((const memo_entry *)b)->key);
}

int memo_from_json(memo *m, json_t *j)
{
	json_t *lk = json_object_get(j, "lookup"), *mh = json_object_get(j, "max_history");
	if (!json_is_object(lk) || (!json_is_integer(mh) && !json_is_null(mh)))
		return TRAIN_ECORRUPT;
	m->max_history = json_is_integer(mh) ? (int)json_integer_value(mh) : 0;
	int rc = names_from_json(json_object_get(j, "rule_only_slots"), &m->pool, &m->ro.slots,
	                         &m->ro.n_slots);
	if (!rc)
		rc = names_from_json(json_object_get(j, "rule_only_loops"), &m->pool, &m->ro.loops,
		                     &m->ro.n_loops);
	if (rc)
		return rc;
	m->e = pp_alloc(&m->pool, (json_object_size(lk) + 1) * sizeof *m->e);
	if (!m->e)
		return TRAIN_ENOMEM;
	const char *key;
	json_t *v;
	json_object_foreach(lk, key, v) {
		if (!json_is_string(v))
			return TRAIN_ECORRUPT;
		m->e[m->n].key = pp_strdup(&m->pool, key);
		m->e[m->n].action = pp_strdup(&m->pool, json_string_value(v));
		m->n++;
	}
	if (m->pool.oom)
		return TRAIN_ENOMEM;
	qsort(m->e, m->n, sizeof *m->e, cmp_entry);
	return TRAIN_OK;
}

static const char *recall(const memo *m, const char *key)
{
	memo_entry k = { .key = key };
	const memo_entry *e = m->n ? bsearch(&k, m->e, m->n, sizeof *m->e, cmp_entry) : NULL;
	return e ? e->action : NULL;
}

/* The key of the last max_history states of d's first `n` events (into b). */
static int window_key(const memo *m, const pdomain *pd, const pdialog *d, pbuf *b)
{
	ppool tmp = { 0 };
	pstate *st;
	size_t ns;
	pstate_opts o = ml_opts(&m->ro);
	int rc = dialog_states(pd, d, d->n, &o, &tmp, &st, NULL, &ns);
	if (!rc) {
		size_t s0 = window_start(ns - 1, m->max_history);
		b->len = 0;
		state_key(b, st + s0, ns - s0);
		rc = b->oom ? TRAIN_ENOMEM : TRAIN_OK;
	}
	pp_free(&tmp);
	return rc;
}

/* Index of the first action event at or after `from`, or d->n. */
static size_t next_action(const pdialog *d, size_t from)
{
	while (from < d->n && d->ev[from].kind != PE_ACTION)
		from++;
	return from;
}

/* AugmentedMemoizationPolicy._recall_using_truncation. */
static const char *recall_truncated(const memo *m, const pdomain *pd, const pdialog *conv,
                                    const char *old_key, int *rc)
{
	/* the events of the last max_history user turns */
	size_t start = 0;
	if (m->max_history > 0) {
		size_t listens = 0;
		for (size_t i = conv->n; i-- > 0;) {
			const pevent *e = &conv->ev[i];
			if (e->kind == PE_ACTION && e->name && !strcmp(e->name, ACTION_LISTEN) &&
			    ++listens > (size_t)m->max_history) {
				start = i;
				break;
			}
		}
	}
	pbuf old = { 0 }, key = { 0 };
	pb_str(&old, old_key);
	const char *hit = NULL;
	int again = 0;
	*rc = TRAIN_OK;
	for (;;) {
		size_t first = next_action(conv, start);
		if (again && first < conv->n)
			first = next_action(conv, first + 1);
		if (first >= conv->n)
			break;
		start = first;
		pdialog cut = { .ev = conv->ev + start, .n = conv->n - start };
		if ((*rc = window_key(m, pd, &cut, &key)))
			break;
		if (strcmp(key.d, old.d ? old.d : "")) {
			if ((hit = recall(m, key.d)))
				break;
			old.len = 0;
			pb_str(&old, key.d);
		}
		again = 1;
	}
	pb_free(&old);
	pb_free(&key);
	return hit;
}

int memo_predict(const memo *m, const pdomain *pd, const pdialog *conv, ppred *out)
{
	pbuf b = { 0 };
	int rc = window_key(m, pd, conv, &b);
	const char *action = rc ? NULL : recall(m, b.d);
	if (!rc && !action && m->augmented)
		action = recall_truncated(m, pd, conv, b.d, &rc);
	pb_free(&b);
	if (rc || !action)
		return rc;
	long a = pdomain_action(pd, action);
	if (a < 0)
		return TRAIN_OK;
	double score = 1.0;
	if (m->use_nlu_confidence) {
		for (size_t i = conv->n; i-- > 0;)
			if (conv->ev[i].kind == PE_USER) {
				score = conv->ev[i].confidence;
				break;
			}
	}
	out->p[a] = score;
	return TRAIN_OK;
}

void memo_free(memo *m)
{
	pp_free(&m->pool);
	memset(m, 0, sizeof *m);
}
