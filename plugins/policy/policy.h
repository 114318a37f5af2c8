/*
 * plugins/policy/policy.h - what the files of the "policy" plugin share
 * (issue 6): memory helpers, the domain as the policies see it, dialogues
 * as event lists, Rasa's dialogue states, and the three policies.
 *
 * A dialogue is a list of events, made either from a tracker of the Rasa
 * readers (<train/rasa.h>: a story path or a rule) or from a conversation
 * in JSON (policy.c's header comment gives the format).  Both go through
 * the same builder, which makes the events explicit as Rasa's story
 * reader does: an action_listen before every user turn (unless the event
 * before is one), slots filled from entities after it, and for rules the
 * "..." snippet action and `null` as "should not be set".
 *
 * The states of a dialogue are Rasa's (rasa/shared/core/domain.py,
 * get_active_state): one before every action and one at the end, each
 * with the latest user turn (intent and the entities the intent
 * featurizes, or the end-to-end text), the previous action (name or bot
 * text), the active loop and the featurized slots (their feature values,
 * only when one is non-zero).  Their text form is what Rasa's policies use
 * as keys: json.dumps(states, sort_keys=True), byte for byte.
 *
 * Nothing here keeps global state; every object belongs to one caller.
 */
#ifndef TRAIN_POLICY_H
#define TRAIN_POLICY_H

#include <train/plugin.h>
#include <train/rasa.h>

#include <jansson.h>
#include <stdio.h>

#define ACTION_LISTEN "action_listen"
#define RULE_SNIPPET "..."
#define SNB "should_not_be_set"

/* ------------------------------------------------------------------------ */
/* memory: a pool that frees everything at once, and a growable buffer */

/* Allocation failures are sticky (`oom`): a run of calls is checked once. */
typedef struct ppool {
	struct pchunk *head;
	int oom;
} ppool;

void *pp_alloc(ppool *p, size_t n);            /* zeroed, 16-byte aligned */
char *pp_strdup(ppool *p, const char *s);      /* NULL stays NULL */
void pp_free(ppool *p);

typedef struct pbuf {
	char *d;
	size_t len, cap;
	int oom;
} pbuf;

void pb_add(pbuf *b, const void *p, size_t n);
void pb_str(pbuf *b, const char *s);
void pb_printf(pbuf *b, const char *fmt, ...) TRAIN_PRINTF(2, 3);
/* A string as Python's json.dumps writes it (ensure_ascii). */
void pb_pystr(pbuf *b, const char *s);
/* A float as Python's repr (shortest round trip, "1.0" for integers). */
void pb_pyfloat(pbuf *b, double x);
void pb_free(pbuf *b);

/* ------------------------------------------------------------------------ */
/* the domain */

typedef struct pfill {
	const char *entity, *role, *group;
	int any;                 /* Rasa 2 auto-fill: any role and group */
} pfill;

typedef struct pslot {
	const char *name;
	train_rasa_slot_type type;
	int dims;                /* features; 0: does not influence the conversation */
	const char **values;     /* categorical: lower-cased, "__other__" last */
	size_t n_values;
	double min, max;
	const char *initial;     /* JSON text, NULL for unset */
	const double *initial_f; /* its features (dims), NULL when unset */
	pfill *fills;            /* entity fills (Domain.slots_for_entities) */
	size_t n_fills;
} pslot;

typedef struct pdomain {
	train_rasa_domain *dom;  /* owned */
	ppool pool;
	pslot *slots;
	size_t n_slots;
	size_t *slot_order;      /* slot indices sorted by name */
	const char **actions;    /* the action space, in Rasa's order */
	size_t n_actions;
	size_t *action_order;    /* action indices sorted by name */
	const char **intents;    /* sorted, Rasa's default intents included */
	size_t n_intents;
	const char **entity_labels; /* sorted: entity, entity#role, entity#group */
	size_t n_entity_labels;
	const char **forms;      /* sorted */
	size_t n_forms;
} pdomain;

/* Decode a serialized domain (TRAIN_RASA_DOMAIN_TYPE bytes) and derive the
 * rest.  The action space is the domain's until pdomain_set_actions. */
int pdomain_init(pdomain *pd, const void *bytes, size_t size, train_error *err);
void pdomain_free(pdomain *pd);
/* Add the actions and intents that stories and rules use but the domain
 * does not list (validation warns about them; the policies still learn). */
int pdomain_add_from_stories(pdomain *pd, const train_rasa_stories *st);
/* Replace the action space (from a persisted policy). */
int pdomain_set_actions(pdomain *pd, json_t *names);
json_t *pdomain_actions_json(const pdomain *pd);
long pdomain_action(const pdomain *pd, const char *name);    /* index or -1 */
long pdomain_sorted_find(const char *const *v, size_t n, const char *name);

/* ------------------------------------------------------------------------ */
/* dialogues */

typedef enum pev_kind {
	PE_USER = 1,
	PE_ACTION,   /* name, or text for an end-to-end bot utterance */
	PE_SLOT,     /* name, value (JSON text; NULL: null) */
	PE_LOOP,     /* name; NULL: deactivated */
	PE_REJECT,   /* ActionExecutionRejected of action `name` */
	PE_RESET,    /* restart / session start: everything back to the start */
} pev_kind;

typedef struct pent {
	const char *entity, *role, *group;
	const char *value;       /* JSON text */
} pent;

typedef struct pevent {
	pev_kind kind;
	const char *name, *text, *value;
	int snb;                 /* rules: `null` means "should not be set" */
	const pent *ents;
	size_t n_ents;
	double confidence;       /* user: the intent's confidence (1 when not given) */
	int unpredictable;       /* action: not a training label for ML policies */
} pevent;

typedef struct pdialog {
	const char *name;
	int is_rule;
	pevent *ev;
	size_t n, cap;
} pdialog;

void dialog_free(pdialog *d);
/* Trackers of the Rasa readers -> dialogues; strings stay borrowed from
 * the stories, entity lists go into `pool`. */
int dialog_from_tracker(const pdomain *pd, const train_rasa_tracker *t, ppool *pool, pdialog *out);
/* A conversation: a JSON array of events, or an object whose "events" is
 * one.  Strings are copied into `pool`.  On a bad event, a message goes
 * into why[] and TRAIN_EINVAL is returned. */
int dialog_from_json(const pdomain *pd, json_t *events, ppool *pool, pdialog *out, char *why,
                     size_t why_size);
/* Append an event as it is (no implicit events). */
int dialog_push(pdialog *d, const pevent *e);

/* ------------------------------------------------------------------------ */
/* states */

typedef struct pslotf {
	const char *name;
	int snb;
	int nf;
	const double *f;
} pslotf;

typedef struct pstate {
	const char *intent, *text;     /* user */
	const char **ents;             /* sorted featurized entity labels */
	size_t n_ents;
	const char *act_name, *act_text; /* previous action */
	const char *loop;              /* active loop (SNB possible) */
	pslotf *slots;                 /* sorted by name */
	size_t n_slots;
} pstate;

/* What the tracker was when a state was taken. */
typedef struct pturn {
	size_t event;                  /* the action event it precedes; n for the final state */
	const char *loop;              /* active loop name (never SNB), or NULL */
	int rejected;                  /* the active loop was rejected */
	const char *latest_action;     /* name or text, NULL before any */
	const pevent *user;            /* the latest user turn */
	int last_was_reject;           /* the last action-like event was a rejection */
	const char *rejected_action;   /* ... of this action */
} pturn;

typedef struct pstate_opts {
	int omit_unset_slots;          /* rules: only slots set in the dialogue */
	const char *const *drop_slots; /* rule-only slots and loops (ML policies) */
	size_t n_drop_slots;
	const char *const *drop_loops;
	size_t n_drop_loops;
} pstate_opts;

/*
 * The states of the first `n_events` events: one before each action event
 * and one after the last event.  Users are featurized by intent (the text
 * only without an intent).  `turns` may be NULL.
 */
int dialog_states(const pdomain *pd, const pdialog *d, size_t n_events, const pstate_opts *o,
                  ppool *pool, pstate **states, pturn **turns, size_t *n_states);
/* Rasa's use_text_for_last_user_input: the last state (after a listen)
 * keeps the user's text instead of intent and entities. */
void state_use_text(pstate *last, const pturn *turn);
/* json.dumps(states, sort_keys=True) */
void state_key(pbuf *b, const pstate *st, size_t n);
/* A state from its JSON form (a key read back). */
int state_parse(json_t *j, ppool *pool, pstate *out);
/* Rasa's RulePolicy._does_rule_match_state. */
int state_match(const pstate *rule, const pstate *conv);
int state_empty(const pstate *s);
int state_has_prev(const pstate *s);

/* Slots and loops that only rules use (RulePolicy._find_rule_only_slots_loops). */
typedef struct prule_only {
	const char **slots;
	size_t n_slots;
	const char **loops;
	size_t n_loops;
} prule_only;

int rule_only_find(const pdomain *pd, const pdialog *dl, size_t n, ppool *pool, prule_only *out);
json_t *names_json(const char *const *v, size_t n);
int names_from_json(json_t *a, ppool *pool, const char ***v, size_t *n);

/* ------------------------------------------------------------------------ */
/* predictions */

typedef struct ppred {
	double *p;                     /* n_actions */
	int no_user;                   /* is_no_user_prediction */
	int end_to_end;                /* is_end_to_end_prediction */
	int loop_interrupted;          /* the LoopInterrupted(True) event */
} ppred;

/* Memoization (and the augmented variant). */
typedef struct memo_entry {
	const char *key;
	const char *action;
} memo_entry;

typedef struct memo {
	int max_history;               /* <= 0: the whole history */
	int augmented;
	int use_nlu_confidence;
	memo_entry *e;                 /* sorted by key */
	size_t n;
	prule_only ro;
	ppool pool;
} memo;

int memo_train(memo *m, const pdomain *pd, const pdialog *dl, size_t n);
json_t *memo_to_json(const memo *m);
int memo_from_json(memo *m, json_t *j);
int memo_predict(const memo *m, const pdomain *pd, const pdialog *conv, ppred *out);
void memo_free(memo *m);

/* Rules. */
typedef struct rule_entry {
	const char *key;
	const char *value;             /* action, or an unhappy-path marker */
	pstate *st;
	size_t n_st;
	int dead;                      /* removed by the contradiction check */
} rule_entry;

typedef struct rule_policy {
	double fallback_threshold;
	const char *fallback_action;
	int enable_fallback;
	int restrict_rules;
	int check_contradictions;
	int use_nlu_confidence;
	rule_entry *rules;             /* sorted by key */
	size_t n_rules;
	rule_entry *unhappy;
	size_t n_unhappy;
	const char **not_in_stories;
	size_t n_not_in_stories;
	prule_only ro;
	ppool pool;
} rule_policy;

/* Errors go to `msg` (one finding per line) with TRAIN_EINVAL. */
int rule_train(rule_policy *r, const pdomain *pd, const pdialog *dl, size_t n, pbuf *msg);
json_t *rule_to_json(const rule_policy *r);
int rule_from_json(rule_policy *r, json_t *j);
/* `source` (may be NULL) gets the matching rule key or the state key. */
int rule_predict(const rule_policy *r, const pdomain *pd, const pdialog *conv, ppred *out,
                 pbuf *source);
void rule_free(rule_policy *r);

/* TED. */
typedef struct ted_cfg {
	int max_history;               /* <= 0: the longest training dialogue */
	int epochs;
	int batch_min, batch_max;      /* linearly increasing over the epochs */
	double learning_rate;
	uint64_t seed;
	int embed_dim;                 /* embedding_dimension */
	int size;                      /* transformer_size */
	int layers;                    /* number_of_transformer_layers */
	int heads;                     /* number_of_attention_heads */
	double drop_rate;              /* drop_rate_dialogue */
	double weight_decay;           /* regularization_constant, as AdamW's decay */
} ted_cfg;

typedef struct ted ted;

/* `init` (may be NULL): a trained model to continue from (finetuning),
 * used when its vocabulary and sizes are the same. */
int ted_train(const ted_cfg *cfg, const pdomain *pd, const pdialog *dl, size_t n, const ted *init,
              train_ctx *ctx, ted **out);
/* The trained model: metadata JSON (vocabulary, sizes) and weights. */
int ted_save(const ted *t, const char *weights_path, json_t **meta, train_error *err);
int ted_load(json_t *meta, const char *weights_path, const pdomain *pd, ted **out,
             train_error *err);
int ted_predict(const ted *t, const pdomain *pd, const pdialog *conv, ppred *out);
/* Accuracy of the argmax on the training examples (for the log). */
double ted_train_accuracy(const ted *t);
void ted_free(ted *t);

#endif /* TRAIN_POLICY_H */
