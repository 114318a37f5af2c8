/*
 * plugins/policy/rule.c - RulePolicy (issue 6), after Rasa 3's
 * rasa/core/policies/rule_policy.py.
 *
 * Training:
 *  - each rule becomes keys: the states of the rule (only slots the rule
 *    sets; `null` is "should not be set") from after its "..." snippet
 *    state up to each action -> that action; keys that two rules map to
 *    different actions are dropped, keys predicting "..." too;
 *  - restrict_rules: a rule with more than one user turn is an error;
 *  - the unhappy-path table of active loops from rules and stories: after
 *    a listen inside a loop, going back to the loop means "the loop was
 *    interrupted"; another action than the loop after a non-listen means
 *    "do not predict the loop";
 *  - check_for_contradictions: the policy predicts every action of every
 *    rule and story (emulating a loop rejection where the loop was
 *    predicted instead of the written action, as Rasa's test does); an
 *    action that a rule predicts differently is an error naming the rules
 *    (a listen predicted inside a story where a longer rule continues
 *    removes that key, as Rasa does).  Slots and loops that only rules use
 *    are recorded for the ML policies.  Before that, an action that sets a
 *    slot or a loop in one rule but not where another rule continues after
 *    it is an error (incomplete rules).
 *
 * Prediction, in Rasa's order: rules on the user's text (end-to-end),
 * default actions (restart, back, session_start intents), the active
 * loop's happy path (the loop, then listen after it, unless rejected),
 * then rules on the intent.  Of the rules whose states match the end of
 * the conversation (a state with no previous action only matches the
 * conversation start), the longest key wins.  Inside an active loop a
 * general rule's listen becomes the loop, unless an unhappy path says
 * not to.  With no rule, core_fallback_action_name gets
 * core_fallback_threshold (enable_fallback_prediction).
 *
 * Left out: the list of rules not in stories (which hides rule turns from
 * ML policies at prediction time).
 */
#include "policy.h"

#include <stdlib.h>
#include <string.h>

#define LOOP_WAS_INTERRUPTED "loop_was_interrupted"
#define DO_NOT_PREDICT_LOOP "do_not_predict_loop_action"
#define DEFAULT_RULES "predicting default action with intent "
#define LOOP_RULES "handling active loops and forms - "

typedef struct pair {
	const char *key, *value;
	size_t order;
} pair;

static int cmp_pair(const void *a, const void *b)
{
	const pair *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : x->order < y->order ? -1 : x->order > y->order;
}

static int is_snippet_state(const pstate *s)
{
	return s->act_name && !strcmp(s->act_name, RULE_SNIPPET);
}

/* RulePolicy._create_feature_key: the states after the last snippet state;
 * 0 when none are left. */
static int feature_key(pbuf *b, const pstate *st, size_t n)
{
	size_t s0 = n;
	while (s0 > 0 && !is_snippet_state(&st[s0 - 1]))
		s0--;
	b->len = 0;
	if (s0 == n)
		return 0;
	state_key(b, st + s0, n - s0);
	return 1;
}

static int push_pair(pair **v, size_t *n, size_t *cap, ppool *pool, const char *key,
                     const char *value)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 256;
		pair *nv = realloc(*v, c * sizeof *nv);
		if (!nv)
			return TRAIN_ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[*n].key = pp_strdup(pool, key);
	(*v)[*n].value = value;
	(*v)[*n].order = *n;
	(*n)++;
	return pool->oom ? TRAIN_ENOMEM : TRAIN_OK;
}

static int parse_entry(rule_entry *e, ppool *pool)
{
	json_t *j = json_loads(e->key, 0, NULL);
	int rc = json_is_array(j) ? TRAIN_OK : TRAIN_ECORRUPT;
	size_t n = rc ? 0 : json_array_size(j);
	e->st = n ? pp_alloc(pool, n * sizeof *e->st) : NULL;
	if (n && !e->st)
		rc = TRAIN_ENOMEM;
	for (size_t i = 0; !rc && i < n; i++)
		rc = state_parse(json_array_get(j, i), pool, &e->st[i]);
	e->n_st = rc ? 0 : n;
	json_decref(j);
	return rc;
}

static int cmp_entry(const void *a, const void *b)
{
	return strcmp(((const rule_entry *)a)->key, ((const rule_entry *)b)->key);
}

/* ------------------------------------------------------------------------ */
/* prediction */

/* RulePolicy._is_rule_applicable over the whole conversation. */
static int applicable(const rule_entry *e, const pstate *conv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i >= e->n_st)
			return 1;
		const pstate *r = &e->st[e->n_st - 1 - i], *c = &conv[n - 1 - i];
		int rp = state_has_prev(r), cp = state_has_prev(c);
		if (!rp && !cp)
			continue;
		if (!rp || !cp || !state_match(r, c))
			return 0;
	}
	return 1;
}

typedef struct found {
	const char *action;
	const char *source;            /* the best key (borrowed), or NULL */
	int returning;                 /* back from an unhappy path */
} found;

static const char *loop_of_last(const rule_entry *e)
{
	const char *l = e->n_st ? e->st[e->n_st - 1].loop : NULL;
	return l && strcmp(l, SNB) ? l : NULL;
}

/* RulePolicy._find_action_from_rules on states (the last one already
 * chosen by intent or text). */
static void match_rules(const rule_policy *r, const pstate *st, size_t ns, const pturn *now,
                        found *out)
{
	memset(out, 0, sizeof *out);
	const rule_entry *best = NULL;
	for (size_t i = 0; i < r->n_rules; i++) {
		const rule_entry *e = &r->rules[i];
		if (e->dead || !applicable(e, st, ns))
			continue;
		if (!best || strlen(e->key) > strlen(best->key))
			best = e;
	}
	out->action = best ? best->value : NULL;
	out->source = best ? best->key : NULL;
	if (!now->loop)
		return;
	int do_not = 0, interrupted = 0;
	for (size_t i = 0; i < r->n_unhappy; i++) {
		const rule_entry *e = &r->unhappy[i];
		if (!applicable(e, st, ns))
			continue;
		do_not |= !strcmp(e->value, DO_NOT_PREDICT_LOOP);
		interrupted |= !strcmp(e->value, LOOP_WAS_INTERRUPTED);
	}
	/* rules need not switch back to the loop explicitly */
	if (out->action && !strcmp(out->action, ACTION_LISTEN) && !loop_of_last(best)) {
		if (!do_not) {
			out->action = now->loop;
			return;
		}
		out->action = NULL;
	}
	out->returning = interrupted;
}

static int from_rules(const rule_policy *r, const pdomain *pd, const pdialog *conv, int use_text,
                      found *out, pbuf *src)
{
	memset(out, 0, sizeof *out);
	ppool tmp = { 0 };
	pstate *st;
	pturn *tu;
	size_t ns;
	int rc = dialog_states(pd, conv, conv->n, NULL, &tmp, &st, &tu, &ns);
	if (!rc) {
		const pturn *now = &tu[ns - 1];
		/* text only right after the user spoke */
		if (!use_text || (now->latest_action && !strcmp(now->latest_action, ACTION_LISTEN))) {
			if (use_text)
				state_use_text(&st[ns - 1], now);
			match_rules(r, st, ns, now, out);
			if (src) {
				src->len = 0;
				if (out->source)
					pb_str(src, out->source);
				else
					feature_key(src, st, ns);
			}
		}
	}
	/* what `out` points to lives in the rules and the conversation */
	pp_free(&tmp);
	return rc;
}

static const char *default_action(const pturn *now)
{
	if (!now->latest_action || strcmp(now->latest_action, ACTION_LISTEN) || !now->user ||
	    !now->user->name)
		return NULL;
	const char *i = now->user->name;
	return !strcmp(i, "restart")         ? "action_restart"
	       : !strcmp(i, "back")          ? "action_back"
	       : !strcmp(i, "session_start") ? "action_session_start"
	                                     : NULL;
}

static void default_predictions(const rule_policy *r, const pdomain *pd, double *p)
{
	memset(p, 0, pd->n_actions * sizeof *p);
	long fb = r->enable_fallback ? pdomain_action(pd, r->fallback_action) : -1;
	if (fb >= 0)
		p[fb] = r->fallback_threshold;
}

static void result_for(const rule_policy *r, const pdomain *pd, const char *action,
                       const pturn *now, double *p)
{
	default_predictions(r, pd, p);
	long a = pdomain_action(pd, action);
	if (a < 0)
		return;
	p[a] = r->use_nlu_confidence && now->user ? now->user->confidence : 1.0;
}

/* RulePolicy._predict; `src` (may be NULL) gets the prediction source. */
static int predict(const rule_policy *r, const pdomain *pd, const pdialog *conv, ppred *out,
                   pbuf *src)
{
	ppool tmp = { 0 };
	pstate *st;
	pturn *tu;
	size_t ns;
	found text, intent;
	pbuf src_text = { 0 };
	int rc = dialog_states(pd, conv, conv->n, NULL, &tmp, &st, &tu, &ns);
	if (!rc)
		rc = from_rules(r, pd, conv, 1, &text, &src_text);
	if (rc)
		goto out;
	const pturn *now = &tu[ns - 1];
	const char *def = default_action(now);
	if (def && !text.action) {
		result_for(r, pd, def, now, out->p);
		if (src)
			pb_printf(src, "%s%s", DEFAULT_RULES, now->user->name);
		goto out;
	}
	/* the active loop's happy path */
	if (now->loop && !now->rejected) {
		int listen = now->latest_action && !strcmp(now->latest_action, now->loop);
		result_for(r, pd, listen ? ACTION_LISTEN : now->loop, now, out->p);
		out->no_user = 1;
		if (src)
			pb_printf(src, "%s%s%s", LOOP_RULES, now->loop, listen ? " - " ACTION_LISTEN : "");
		goto out;
	}
	if (text.action) {
		result_for(r, pd, text.action, now, out->p);
		out->end_to_end = 1;
		out->loop_interrupted = text.returning;
		if (src && src_text.d)
			pb_str(src, src_text.d);
		goto out;
	}
	if ((rc = from_rules(r, pd, conv, 0, &intent, src)))
		goto out;
	if (intent.action)
		result_for(r, pd, intent.action, now, out->p);
	else
		default_predictions(r, pd, out->p);
	out->loop_interrupted = text.returning || intent.returning;
out:
	pb_free(&src_text);
	pp_free(&tmp);
	return rc;
}

int rule_predict(const rule_policy *r, const pdomain *pd, const pdialog *conv, ppred *out,
                 pbuf *source)
{
	return predict(r, pd, conv, out, source);
}

/* ------------------------------------------------------------------------ */
/* training */

static int build_table(ppool *pool, pair *v, size_t n, int ambiguity, rule_entry **out,
                       size_t *n_out)
{
	*out = NULL;
	*n_out = 0;
	if (!n)
		return TRAIN_OK;
	qsort(v, n, sizeof *v, cmp_pair);
	rule_entry *e = pp_alloc(pool, n * sizeof *e);
	if (!e)
		return TRAIN_ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;
		int agree = 1;
		while (j < n && !strcmp(v[j].key, v[i].key)) {
			agree &= !strcmp(v[j].value, v[i].value);
			j++;
		}
		/* memoization drops ambiguous keys; the unhappy-path table keeps
		 * the last value written (a dict assignment) */
		const char *value = ambiguity ? (agree ? v[i].value : NULL) : v[j - 1].value;
		if (value && (!ambiguity || strcmp(value, RULE_SNIPPET))) {
			e[k].key = v[i].key;
			e[k].value = value;
			int rc = parse_entry(&e[k], pool);
			if (rc)
				return rc;
			k++;
		}
		i = j;
	}
	*out = e;
	*n_out = k;
	return TRAIN_OK;
}

static int is_listen_state(const pstate *s)
{
	return s->act_name && !strcmp(s->act_name, ACTION_LISTEN);
}

/* The rule and unhappy-path keys of one dialogue. */
static int keys_of(const pdomain *pd, const pdialog *d, ppool *pool, pair **rv, size_t *rn,
                   size_t *rcap, pair **uv, size_t *un, size_t *ucap)
{
	ppool tmp = { 0 };
	pstate *st;
	pturn *tu;
	size_t ns;
	pstate_opts o = { .omit_unset_slots = d->is_rule };
	pbuf b = { 0 };
	int rc = dialog_states(pd, d, d->n, &o, &tmp, &st, &tu, &ns);
	for (size_t k = 0; !rc && k + 1 < ns; k++) {
		const pevent *e = &d->ev[tu[k].event];
		const char *label = e->name ? e->name : e->text;
		const char *plabel = pp_strdup(pool, label);
		if (!plabel) {
			rc = TRAIN_ENOMEM;
			break;
		}
		if (d->is_rule && feature_key(&b, st, k + 1))
			rc = push_pair(rv, rn, rcap, pool, b.d, plabel);
		/* the unhappy paths of active loops */
		const char *loop = st[k].loop && strcmp(st[k].loop, SNB) ? st[k].loop : NULL;
		if (rc || !loop)
			continue;
		pstate two[2];
		size_t nt = 0;
		if (k > 0 && state_has_prev(&st[k - 1])) {
			memset(&two[0], 0, sizeof two[0]);
			two[0].act_name = st[k - 1].act_name;
			two[0].act_text = st[k - 1].act_text;
			nt = 1;
		}
		two[nt++] = st[k];
		if (!feature_key(&b, two, nt))
			continue;
		int listen = is_listen_state(&st[k]);
		if (listen && !strcmp(label, loop))
			rc = push_pair(uv, un, ucap, pool, b.d, LOOP_WAS_INTERRUPTED);
		else if (!listen && strcmp(label, loop))
			rc = push_pair(uv, un, ucap, pool, b.d, DO_NOT_PREDICT_LOOP);
	}
	if (!rc && b.oom)
		rc = TRAIN_ENOMEM;
	pb_free(&b);
	pp_free(&tmp);
	return rc;
}

/* What the contradiction check remembers about a prediction source. */
typedef struct source {
	const char *key;               /* the prediction source */
	const char *rule;              /* rule name (or the source itself) */
	const char *action;            /* the action it should predict */
} source;

typedef struct check {
	source *s;
	size_t n, cap;
	ppool pool;
} check;

static int add_source(check *c, const char *key, const char *rule, const char *action)
{
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 256;
		source *s = realloc(c->s, cap * sizeof *s);
		if (!s)
			return TRAIN_ENOMEM;
		c->s = s;
		c->cap = cap;
	}
	c->s[c->n].key = pp_strdup(&c->pool, key);
	c->s[c->n].rule = pp_strdup(&c->pool, rule);
	c->s[c->n].action = pp_strdup(&c->pool, action);
	c->n++;
	return c->pool.oom ? TRAIN_ENOMEM : TRAIN_OK;
}

static int starts_with(const char *s, const char *p)
{
	return !strncmp(s, p, strlen(p));
}

static size_t count_of(const char *s, const char *sub)
{
	size_t n = 0, len = strlen(sub);
	for (const char *p = strstr(s, sub); p; p = strstr(p + len, sub))
		n++;
	return n;
}

/* RulePolicy._predict_next_action: NULL when a story gets only the
 * default predictions. */
static int next_action(const rule_policy *r, const pdomain *pd, const pdialog *run, int is_rule,
                       double *p, double *def, const char **action, pbuf *src)
{
	ppred pr = { .p = p };
	memset(p, 0, pd->n_actions * sizeof *p);
	src->len = 0;
	int rc = predict(r, pd, run, &pr, src);
	*action = NULL;
	if (rc)
		return rc;
	default_predictions(r, pd, def);
	if (!is_rule && !memcmp(p, def, pd->n_actions * sizeof *p))
		return TRAIN_OK;
	size_t best = 0;
	for (size_t i = 1; i < pd->n_actions; i++)
		if (p[i] > p[best])
			best = i;
	*action = pd->actions[best];
	return TRAIN_OK;
}

/* RulePolicy._run_prediction_on_trackers. */
static int run_on(rule_policy *r, const pdomain *pd, const pdialog *dl, size_t n, int collect,
                  check *c, pbuf *msg, size_t *n_errors)
{
	double *p = malloc((pd->n_actions + 1) * sizeof *p);
	double *def = malloc((pd->n_actions + 1) * sizeof *def);
	pbuf src = { 0 };
	int rc = p && def ? TRAIN_OK : TRAIN_ENOMEM;
	for (size_t t = 0; !rc && t < n; t++) {
		if (collect && !dl[t].is_rule)
			continue;
		const pdialog *d = &dl[t];
		pdialog run = { .name = d->name, .is_rule = d->is_rule };
		int unpredictable = 1;
		for (size_t i = 0; !rc && i < d->n; i++) {
			const pevent *e = &d->ev[i];
			if (e->kind == PE_ACTION && e->name && !strcmp(e->name, RULE_SNIPPET)) {
				unpredictable = 1;
			} else if (e->kind == PE_ACTION && (unpredictable || e->unpredictable)) {
				unpredictable = 0;
			} else if (e->kind == PE_ACTION) {
				const char *gold = e->name ? e->name : e->text, *pred;
				rc = next_action(r, pd, &run, d->is_rule, p, def, &pred, &src);
				/* inside a loop the loop comes first: emulate its rejection */
				ppool tmp = { 0 };
				pstate *st;
				pturn *tu;
				size_t ns;
				if (!rc)
					rc = dialog_states(pd, &run, run.n, NULL, &tmp, &st, &tu, &ns);
				const char *loop = rc ? NULL : tu[ns - 1].loop;
				if (!rc && loop && pred && strcmp(pred, gold) && !strcmp(pred, loop)) {
					pevent rej = { .kind = PE_REJECT, .name = loop };
					rc = dialog_push(&run, &rej);
					if (!rc)
						rc = next_action(r, pd, &run, d->is_rule, p, def, &pred, &src);
				}
				pp_free(&tmp);
				if (rc || !pred || !src.len || !src.d)
					;
				else if (collect) {
					const char *rule = d->name ? d->name : "";
					const char *action = gold;
					if (starts_with(src.d, DEFAULT_RULES) || starts_with(src.d, LOOP_RULES))
						rule = src.d, action = pred;
					rc = add_source(c, src.d, rule, action);
				} else if (strcmp(pred, gold)) {
					/* a listen where a story goes on and a longer rule exists:
					 * Rasa removes the rule key instead (_should_delete) */
					int del = 0;
					if (!d->is_rule && count_of(src.d, "prev_action") <= 1 &&
					    !strcmp(pred, ACTION_LISTEN) && src.len >= 2) {
						for (size_t k = 0; k < r->n_rules && !del; k++)
							del = !r->rules[k].dead && strcmp(r->rules[k].key, src.d) &&
							      !strncmp(r->rules[k].key, src.d, src.len - 2);
					}
					if (del) {
						for (size_t k = 0; k < r->n_rules; k++)
							if (!strcmp(r->rules[k].key, src.d))
								r->rules[k].dead = 1;
					} else {
						pbuf names = { 0 };
						for (size_t k = 0; k < c->n; k++) {
							if (strcmp(c->s[k].key, src.d) || !strcmp(c->s[k].action, gold))
								continue;
							int dup = 0;
							for (size_t q = 0; q < k && !dup; q++)
								dup = !strcmp(c->s[q].key, src.d) &&
								      strcmp(c->s[q].action, gold) &&
								      !strcmp(c->s[q].rule, c->s[k].rule);
							if (!dup)
								pb_printf(&names, "%s%s", names.len ? ", " : "", c->s[k].rule);
						}
						if (names.len) {
							pb_printf(msg, "- the prediction of the action '%s' in %s '%s' is "
							          "contradicting with rule(s) '%s'", gold,
							          d->is_rule ? "rule" : "story", d->name ? d->name : "",
							          names.d);
							if (strcmp(pred, r->fallback_action))
								pb_printf(msg, " which predicted action '%s'", pred);
							pb_str(msg, ".\n");
							(*n_errors)++;
						}
						pb_free(&names);
					}
				}
			}
			if (!rc)
				rc = dialog_push(&run, e);
		}
		free(run.ev);
	}
	free(p);
	free(def);
	pb_free(&src);
	if (!rc && (msg->oom || c->pool.oom))
		rc = TRAIN_ENOMEM;
	return rc;
}

/* What an action does in the rules: the featurized slots it sets and
 * the loops it (de)activates, right after it (create_action_fingerprints). */
typedef struct fprint {
	const char *action;
	const char **slots, **loops;
	size_t n_slots, n_loops, cap_slots, cap_loops;
} fprint;

static int add_name(const char ***v, size_t *n, size_t *cap, const char *s)
{
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*v)[i], s))
			return TRAIN_OK;
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 4;
		const char **nv = realloc((void *)*v, c * sizeof *nv);
		if (!nv)
			return TRAIN_ENOMEM;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = s;
	return TRAIN_OK;
}

static int has_slot(const pstate *s, const char *name)
{
	for (size_t i = 0; i < s->n_slots; i++)
		if (!strcmp(s->slots[i].name, name))
			return 1;
	return 0;
}

/* RulePolicy._check_for_incomplete_rules: an action that sets a slot or a
 * loop in one rule must do so wherever a rule continues after it. */
static int incomplete_rules(const pdomain *pd, const pdialog *dl, size_t n, pbuf *msg,
                            size_t *n_errors)
{
	fprint *fp = NULL;
	size_t nf = 0, capf = 0;
	int rc = TRAIN_OK;
	for (size_t i = 0; i < n && !rc; i++) {
		const char *latest = NULL;
		for (size_t k = 0; k < dl[i].n && dl[i].is_rule && !rc; k++) {
			const pevent *e = &dl[i].ev[k];
			if (e->kind == PE_ACTION) {
				latest = e->name ? e->name : e->text;
				continue;
			}
			if (!latest || (e->kind != PE_SLOT && e->kind != PE_LOOP))
				continue;
			if (e->kind == PE_SLOT) {
				int featurized = 0;
				for (size_t s = 0; s < pd->n_slots; s++)
					featurized |= pd->slots[s].dims && !strcmp(pd->slots[s].name, e->name);
				if (!featurized)
					continue;
			}
			fprint *f = NULL;
			for (size_t j = 0; j < nf && !f; j++)
				if (!strcmp(fp[j].action, latest))
					f = &fp[j];
			if (!f) {
				if (nf == capf) {
					capf = capf ? capf * 2 : 16;
					fprint *x = realloc(fp, capf * sizeof *x);
					if (!x) {
						rc = TRAIN_ENOMEM;
						break;
					}
					fp = x;
				}
				f = &fp[nf++];
				memset(f, 0, sizeof *f);
				f->action = latest;
			}
			if (e->kind == PE_SLOT)
				rc = add_name(&f->slots, &f->n_slots, &f->cap_slots, e->name);
			else
				rc = add_name(&f->loops, &f->n_loops, &f->cap_loops,
				              e->name ? e->name : e->snb ? SNB : "None");
		}
	}
	for (size_t i = 0; i < n && !rc && nf; i++) {
		if (!dl[i].is_rule)
			continue;
		ppool tmp = { 0 };
		pstate *st;
		size_t ns;
		rc = dialog_states(pd, &dl[i], dl[i].n, NULL, &tmp, &st, NULL, &ns);
		for (size_t k = 0; !rc && k < ns; k++) {
			const char *prev = st[k].act_name ? st[k].act_name : st[k].act_text;
			const char *next = k + 1 < ns ? (st[k + 1].act_name ? st[k + 1].act_name
			                                                    : st[k + 1].act_text)
			                              : ACTION_LISTEN;
			const fprint *f = NULL;
			for (size_t j = 0; prev && j < nf && !f; j++)
				if (!strcmp(fp[j].action, prev))
					f = &fp[j];
			if (!f || !next || !strcmp(next, RULE_SNIPPET) || !strcmp(prev, RULE_SNIPPET))
				continue;
			pbuf miss = { 0 };
			for (size_t j = 0; j < f->n_slots; j++)
				if (!has_slot(&st[k], f->slots[j]))
					pb_printf(&miss, "%s%s", miss.len ? ", " : "", f->slots[j]);
			if (miss.len) {
				pb_printf(msg, "- the action '%s' in rule '%s' does not set some of the slots "
				          "that it sets in other rules. Slots not set in rule '%s': '%s'. Please "
				          "update the rule with an appropriate slot or if it is the last action "
				          "add 'wait_for_user_input: false' after this action.\n", prev,
				          dl[i].name ? dl[i].name : "", dl[i].name ? dl[i].name : "", miss.d);
				(*n_errors)++;
			}
			pb_free(&miss);
			int loop_ok = !f->n_loops;
			for (size_t j = 0; j < f->n_loops && !loop_ok; j++)
				loop_ok = st[k].loop && !strcmp(st[k].loop, f->loops[j]);
			if (!loop_ok) {
				/* what to write: the loops, `null` for "not set", and the form */
				pbuf loops = { 0 };
				int listed = 0;
				for (size_t j = 0; j < f->n_loops; j++) {
					const char *l = strcmp(f->loops[j], SNB) ? f->loops[j] : "null";
					listed |= !strcmp(l, prev);
					pb_printf(&loops, "%s%s", j ? ", " : "", l);
				}
				if (!listed)
					pb_printf(&loops, ", %s", prev);
				pb_printf(msg, "- the form '%s' in rule '%s' does not set the 'active_loop', that "
				          "it sets in other rules: '%s'. Please update the rule with the "
				          "appropriate 'active loop' property or if it is the last action add "
				          "'wait_for_user_input: false' after this action.\n", prev,
				          dl[i].name ? dl[i].name : "", loops.d ? loops.d : prev);
				pb_free(&loops);
				(*n_errors)++;
			}
		}
		pp_free(&tmp);
	}
	for (size_t j = 0; j < nf; j++) {
		free((void *)fp[j].slots);
		free((void *)fp[j].loops);
	}
	free(fp);
	return rc ? rc : msg->oom ? TRAIN_ENOMEM : TRAIN_OK;
}

int rule_train(rule_policy *r, const pdomain *pd, const pdialog *dl, size_t n, pbuf *msg)
{
	if (r->enable_fallback && pdomain_action(pd, r->fallback_action) < 0) {
		pb_printf(msg, "The fallback action '%s' which was configured for the RulePolicy must "
		          "be present in the domain.\n", r->fallback_action);
		return TRAIN_EINVAL;
	}
	if (r->restrict_rules) {
		pbuf names = { 0 };
		for (size_t i = 0; i < n; i++) {
			size_t users = 0;
			for (size_t k = 0; dl[i].is_rule && k < dl[i].n; k++)
				users += dl[i].ev[k].kind == PE_USER;
			if (users > 1)
				pb_printf(&names, "%s%s", names.len ? ", " : "", dl[i].name ? dl[i].name : "");
		}
		if (names.len) {
			pb_printf(msg, "Found rules '%s' that contain more than 1 user message. Rules are "
			          "not meant to hardcode a state machine. Please use stories for these "
			          "cases.\n", names.d);
			pb_free(&names);
			return TRAIN_EINVAL;
		}
		pb_free(&names);
	}
	if (r->check_contradictions) {
		size_t n_errors = 0;
		int rc = incomplete_rules(pd, dl, n, msg, &n_errors);
		if (rc || n_errors)
			return rc ? rc : TRAIN_EINVAL;
	}
	pair *rv = NULL, *uv = NULL;
	size_t rn = 0, rcap = 0, un = 0, ucap = 0;
	int rc = TRAIN_OK;
	/* rules first, then stories: the unhappy-path table keeps the last */
	for (int pass = 0; pass < 2 && !rc; pass++)
		for (size_t i = 0; i < n && !rc; i++)
			if (dl[i].is_rule == !pass)
				rc = keys_of(pd, &dl[i], &r->pool, &rv, &rn, &rcap, &uv, &un, &ucap);
	if (!rc)
		rc = build_table(&r->pool, rv, rn, 1, &r->rules, &r->n_rules);
	if (!rc)
		rc = build_table(&r->pool, uv, un, 0, &r->unhappy, &r->n_unhappy);
	free(rv);
	free(uv);
	if (!rc && r->check_contradictions)
		rc = rule_only_find(pd, dl, n, &r->pool, &r->ro);
	if (rc || !r->check_contradictions)
		return rc;
	check c = { 0 };
	size_t n_errors = 0;
	rc = run_on(r, pd, dl, n, 1, &c, msg, &n_errors);
	if (!rc)
		rc = run_on(r, pd, dl, n, 0, &c, msg, &n_errors);
	free(c.s);
	pp_free(&c.pool);
	if (!rc && n_errors)
		rc = TRAIN_EINVAL;
	return rc;
}

/* ------------------------------------------------------------------------ */
/* persistence */

static json_t *table_json(const rule_entry *e, size_t n)
{
	json_t *o = json_object();
	for (size_t i = 0; o && i < n; i++)
		if (!e[i].dead && json_object_set_new(o, e[i].key, json_string(e[i].value))) {
			json_decref(o);
			return NULL;
		}
	return o;
}

json_t *rule_to_json(const rule_policy *r)
{
	json_t *j = json_object();
	if (!j)
		return NULL;
	int bad = json_object_set_new(j, "rules", table_json(r->rules, r->n_rules));
	bad |= json_object_set_new(j, "rules_for_loop_unhappy_path",
	                           table_json(r->unhappy, r->n_unhappy));
	bad |= json_object_set_new(j, "rule_only_slots", names_json(r->ro.slots, r->ro.n_slots));
	bad |= json_object_set_new(j, "rule_only_loops", names_json(r->ro.loops, r->ro.n_loops));
	bad |= json_object_set_new(j, "core_fallback_threshold", json_real(r->fallback_threshold));
	bad |= json_object_set_new(j, "core_fallback_action_name", json_string(r->fallback_action));
	bad |= json_object_set_new(j, "enable_fallback_prediction", json_boolean(r->enable_fallback));
	bad |= json_object_set_new(j, "use_nlu_confidence_as_score",
	                           json_boolean(r->use_nlu_confidence));
	if (bad) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static int table_from_json(json_t *o, ppool *pool, rule_entry **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!json_is_object(o))
		return TRAIN_ECORRUPT;
	rule_entry *e = pp_alloc(pool, (json_object_size(o) + 1) * sizeof *e);
	if (!e)
		return TRAIN_ENOMEM;
	const char *key;
	json_t *v;
	size_t k = 0;
	json_object_foreach(o, key, v) {
		if (!json_is_string(v))
			return TRAIN_ECORRUPT;
		e[k].key = pp_strdup(pool, key);
		e[k].value = pp_strdup(pool, json_string_value(v));
		if (pool->oom)
			return TRAIN_ENOMEM;
		int rc = parse_entry(&e[k], pool);
		if (rc)
			return rc;
		k++;
	}
	qsort(e, k, sizeof *e, cmp_entry);
	*out = e;
	*n = k;
	return TRAIN_OK;
}

int rule_from_json(rule_policy *r, json_t *j)
{
	json_t *th = json_object_get(j, "core_fallback_threshold");
	const char *fb = json_string_value(json_object_get(j, "core_fallback_action_name"));
	if (!json_is_number(th) || !fb)
		return TRAIN_ECORRUPT;
	r->fallback_threshold = json_number_value(th);
	r->fallback_action = pp_strdup(&r->pool, fb);
	r->enable_fallback = json_is_true(json_object_get(j, "enable_fallback_prediction"));
	r->use_nlu_confidence = json_is_true(json_object_get(j, "use_nlu_confidence_as_score"));
	int rc = table_from_json(json_object_get(j, "rules"), &r->pool, &r->rules, &r->n_rules);
	if (!rc)
		rc = table_from_json(json_object_get(j, "rules_for_loop_unhappy_path"), &r->pool,
		                     &r->unhappy, &r->n_unhappy);
	if (!rc)
		rc = names_from_json(json_object_get(j, "rule_only_slots"), &r->pool, &r->ro.slots,
		                     &r->ro.n_slots);
	if (!rc)
		rc = names_from_json(json_object_get(j, "rule_only_loops"), &r->pool, &r->ro.loops,
		                     &r->ro.n_loops);
	return rc;
}

void rule_free(rule_policy *r)
{
	pp_free(&r->pool);
	memset(r, 0, sizeof *r);
}
