/*
 * <train/rasa_validate.h> - check a Rasa project the way `rasa data
 * validate` and `rasa train` do, before anything trains, and decide what
 * kind of training its data allows (issue 4).
 *
 * Lifecycle.  Load the parts with <train/rasa.h>, then:
 *
 *   train_rasa_diags *diags;  train_rasa_diags_create(&diags);
 *   train_rasa_validate_opts vo;  train_rasa_validate_opts_init(&vo);
 *   rc = train_rasa_validate(domain, nlu, stories, &vo, diags, &err);
 *   ... print train_rasa_diags_at(diags, i) ...
 *   type = train_rasa_training_type_detect(domain, nlu, stories);
 *
 * What is checked.  Every finding has a severity, the file and line it is
 * about, and one line of text that says what is wrong and what to do.
 *
 * Errors (Rasa refuses to train, or the name can only be a mistake):
 *  - an intent, entity, action, form (`active_loop`) or slot
 *    (`slot_was_set`, Rasa's "unresolved slots") that the NLU data,
 *    stories or rules use but the domain does not define;
 *  - an `utter_` action with no response (neither in the domain's nor in
 *    the NLU files' `responses`) that is not listed as a custom action;
 *  - a form's required slot that is not a domain slot;
 *  - a slot mapping whose `conditions` name an `active_loop` that is not a
 *    form, or a form whose `required_slots` do not include the slot
 *    (except for `from_trigger_intent` mappings, as Rasa allows);
 *  - stories or rules with an empty domain.
 * Warnings (Rasa trains, but something is likely wrong):
 *  - intents, entities, slots, responses and custom actions that the
 *    domain defines but no data uses (intents without NLU examples only
 *    when there is NLU data, intents no story or rule uses only when there
 *    are stories or rules; responses a form asks with (`utter_ask_<slot>`,
 *    `utter_ask_<form>_<slot>`) or a default action utters, slots a form
 *    fills, a mapping fills or a response reads, and `validate_<form>`
 *    actions count as used);
 *  - the same example text under two intents (retrieval intents count
 *    with their response key);
 *  - conflicting stories: the same dialogue history (the last
 *    max_history states, computed as Rasa's story conflict check computes
 *    them: intent and featurized entities, previous action, active loop,
 *    featurized slots) followed by different actions in two stories;
 *  - a slot mapping that names an entity or intent the domain does not
 *    define (Rasa skips such a mapping at run time);
 *  - an `utter_` action listed under `actions` without a response, and a
 *    response condition on a slot the domain does not define.
 * Domain checks run only when a domain is given (non-NULL); NLU checks
 * only with NLU data, story checks only with stories or rules.
 *
 * Findings are appended to `diags` sorted by file, line and column, after
 * whatever the loaders put there.
 *
 * Threads: the calls use no global state; the loaded structs are only
 * read.
 */
#ifndef TRAIN_RASA_VALIDATE_H
#define TRAIN_RASA_VALIDATE_H

#include <train/rasa.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Turns of history that make two stories conflict, unless told otherwise. */
#define TRAIN_RASA_DEFAULT_MAX_HISTORY 5

typedef struct train_rasa_validate_opts {
	uint32_t struct_size;        /**< sizeof(train_rasa_validate_opts) */
	/** States of history compared for story conflicts: 0 for
	 * TRAIN_RASA_DEFAULT_MAX_HISTORY, a negative number for the whole
	 * history (what `rasa data validate` does without --max-history). */
	int max_history;
	/** Bounds for resolving checkpoints and `or` into trackers (zeros: the
	 * defaults of train_rasa_trackers_generate()). */
	train_rasa_tracker_opts trackers;
} train_rasa_validate_opts;

/** Fill `o` with the defaults (max_history 0, default tracker bounds). */
TRAIN_API void train_rasa_validate_opts_init(train_rasa_validate_opts *o);

/**
 * Validate a project.  Any of `domain`, `nlu`, `stories` may be NULL (not
 * given: the checks that need it are skipped).  `opts` may be NULL (the
 * defaults).  Findings go to `diags` (may be NULL: then only `err` says
 * something, about the first error).
 * @return TRAIN_OK when there is no error finding (warnings are fine);
 *   TRAIN_EINVAL when there is at least one, with `err` set to the first
 *   (by file and line) and its text prefixed by the number of errors;
 *   TRAIN_EINVAL also for a bad `opts->struct_size`; the errors of
 *   train_rasa_trackers_generate() (a bound exceeded: TRAIN_EINVAL with
 *   its message); TRAIN_ENOMEM.
 */
TRAIN_API int train_rasa_validate(const train_rasa_domain *domain, const train_rasa_nlu *nlu,
                                  const train_rasa_stories *stories,
                                  const train_rasa_validate_opts *opts, train_rasa_diags *diags,
                                  train_error *err);

/** What a project's data allows training, decided as `rasa train` decides it. */
typedef enum train_rasa_training_type {
	TRAIN_RASA_TRAINING_NONE = 0,   /**< no NLU data, no stories or rules */
	TRAIN_RASA_TRAINING_NLU = 1,    /**< NLU only: no stories/rules, or an empty domain */
	TRAIN_RASA_TRAINING_CORE = 2,   /**< dialogue only: no NLU data */
	TRAIN_RASA_TRAINING_BOTH = 3,   /**< NLU data and stories/rules */
	TRAIN_RASA_TRAINING_END_TO_END = 4, /**< stories with `user` text without an
	                                       intent, or `bot` text */
} train_rasa_training_type;

/**
 * Decide the training type.  NLU data means NLU examples, synonyms, regex
 * or lookup tables; end-to-end means a story or rule with a `user` turn
 * without an intent or a `bot` turn.  As in Rasa: no NLU data and no
 * stories or rules is NONE; with an empty (or NULL) domain or without
 * stories and rules only NLU trains; with end-to-end turns it is
 * END_TO_END; without NLU data (and no end-to-end turns) CORE; else BOTH.
 */
TRAIN_API train_rasa_training_type train_rasa_training_type_detect(const train_rasa_domain *domain,
                                                                   const train_rasa_nlu *nlu,
                                                                   const train_rasa_stories *stories);
/** "none", "nlu", "core", "both", "end-to-end" ("?" for anything else). */
TRAIN_API const char *train_rasa_training_type_name(train_rasa_training_type t);

/** 1 if `nlu` holds NLU data (examples, synonyms, regexes, lookups). */
TRAIN_API int train_rasa_nlu_has_data(const train_rasa_nlu *nlu);
/** 1 if `stories` has an end-to-end turn (`user` without intent, or `bot`). */
TRAIN_API int train_rasa_stories_have_e2e(const train_rasa_stories *stories);
/** 1 if `domain` is NULL or defines nothing (no intents, entities, slots,
 * responses, actions, forms or e2e actions). */
TRAIN_API int train_rasa_domain_is_empty(const train_rasa_domain *domain);

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_RASA_VALIDATE_H */
