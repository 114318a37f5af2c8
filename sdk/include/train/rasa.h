/*
 * <train/rasa.h> - Rasa projects as typed data: NLU training data, the
 * domain, stories and rules, the trackers stories resolve into, and their
 * serialization as graph values (issue 4).
 *
 * Formats: the Rasa 3.x YAML training data format (and the Rasa 2.x
 * files it grew from, which Rasa 3 still reads with a warning): `nlu:`,
 * `responses:`, `stories:`, `rules:` in data files, and the domain keys
 * `version`, `intents`, `entities`, `slots`, `responses`, `actions`,
 * `forms`, `session_config`, `config`, `e2e_actions`.  The readers accept
 * what Rasa accepts and refuse what Rasa refuses, with a file:line:col
 * message that says what is wrong and what to do; where Rasa silently
 * skips or rewrites something (an example line without "- ", an unknown
 * top-level key in a data file, a missing `version`), the reader does
 * the same and adds a warning.
 *
 * Lifecycle.  Each of the three kinds is a read-only struct that the
 * library allocates in one arena and frees in one call:
 *
 *   train_rasa_nlu_load(paths, n, &nlu, diags, &err)   files and folders
 *   train_rasa_nlu_parse(text, len, name, &nlu, diags, &err)  one file's text
 *   ... read nlu->messages[i] ...
 *   train_rasa_nlu_to_value(nlu, &value, &err)          for the graph/cache
 *   train_rasa_nlu_free(nlu)                            NULL is fine
 *
 * and likewise train_rasa_domain_* and train_rasa_stories_*.
 * train_rasa_project_load() reads a set of files and folders once and
 * sorts every YAML file into NLU, stories/rules and domain by its
 * top-level keys, as Rasa's importer does.
 *
 * Ownership: every pointer inside a loaded struct (strings, arrays,
 * locations) points into the struct's arena and lives until its _free.
 * Strings are UTF-8 and NUL-terminated; "optional" strings are NULL when
 * absent.  Nothing in a loaded struct may be modified.
 *
 * Threads: loaded structs are immutable and may be read from several
 * threads.  A train_rasa_diags is not thread-safe.  The readers use no
 * global state.
 *
 * Errors (every call that returns int): TRAIN_OK, or
 *  - TRAIN_EPARSE   YAML syntax, or a value of the wrong YAML type where
 *                   Rasa's schema requires another (a map where a list is
 *                   expected, a number where a name is expected, ...),
 *                   bad entity annotation JSON, a corrupt serialized value;
 *  - TRAIN_EINVAL   content Rasa refuses: unknown keys where Rasa's schema
 *                   lists the keys, an unknown slot type, a float slot
 *                   whose min_value > max_value, a response variation with
 *                   neither `text` nor `custom`, a `version` newer than
 *                   this reader (major > 3), NULL arguments;
 *  - TRAIN_EEXIST   a key written twice in one YAML map;
 *  - TRAIN_ECORRUPT a serialized value that fails its checks (decode);
 *  - TRAIN_ENOMEM, -errno (a file or folder that cannot be read).
 * The first error stops the load: `err` gets it (file, line, col, text),
 * and `diags`, when given, gets it too as a TRAIN_RASA_ERROR entry after
 * the warnings that came before it.  On error `*out` is set to NULL.
 *
 * Limits: YAML nesting of 256 levels (the config reader's), entity
 * annotations and texts of up to 2^32-1 bytes, at most
 * TRAIN_RASA_MAX_DIAGS diagnostics kept per train_rasa_diags (later ones
 * are counted, not stored).
 */
#ifndef TRAIN_RASA_H
#define TRAIN_RASA_H

#include <train/common.h>
#include <train/value.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The newest training data format version the readers know ("3.1"). */
#define TRAIN_RASA_FORMAT_VERSION "3.1"

/** Content types of the serialized values (train_rasa_*_to_value). */
#define TRAIN_RASA_NLU_TYPE     "application/vnd.train.rasa-nlu"
#define TRAIN_RASA_DOMAIN_TYPE  "application/vnd.train.rasa-domain"
#define TRAIN_RASA_STORIES_TYPE "application/vnd.train.rasa-stories"

/* ---- diagnostics ---------------------------------------------------------- */

/** Severity of a finding.  Errors stop a load (or training); warnings do not. */
typedef enum train_rasa_severity {
	TRAIN_RASA_WARNING = 1,
	TRAIN_RASA_ERROR = 2,
} train_rasa_severity;

/** One finding, with the place it is about (file "" and line 0 when none). */
typedef struct train_rasa_diag {
	train_rasa_severity severity;
	const char *file;
	unsigned line, col;   /**< 1-based; 0 when unknown */
	const char *text;     /**< what is wrong and what to do; one line */
} train_rasa_diag;

/** Diagnostics kept per collection; more are counted in _dropped(). */
#define TRAIN_RASA_MAX_DIAGS 10000

/**
 * A growing list of findings, owned by the caller.  Readers append their
 * warnings (and the error that stopped them); validation may append its
 * own findings with train_rasa_diags_add().
 */
typedef struct train_rasa_diags train_rasa_diags;

TRAIN_API int train_rasa_diags_create(train_rasa_diags **out);
/** NULL is fine. */
TRAIN_API void train_rasa_diags_destroy(train_rasa_diags *d);
TRAIN_API size_t train_rasa_diags_len(const train_rasa_diags *d);
/** Entry `i` in the order added (borrowed, lives as long as `d`); NULL if out of range. */
TRAIN_API const train_rasa_diag *train_rasa_diags_at(const train_rasa_diags *d, size_t i);
/** How many entries of that severity were added (dropped ones included). */
TRAIN_API size_t train_rasa_diags_count(const train_rasa_diags *d, train_rasa_severity sev);
/** How many entries were not kept because of TRAIN_RASA_MAX_DIAGS. */
TRAIN_API size_t train_rasa_diags_dropped(const train_rasa_diags *d);
/**
 * Append a finding.  `file` may be NULL.  Returns TRAIN_OK, TRAIN_EINVAL
 * (d or fmt NULL) or TRAIN_ENOMEM.
 */
TRAIN_API int train_rasa_diags_add(train_rasa_diags *d, train_rasa_severity sev, const char *file,
                                   unsigned line, unsigned col, const char *fmt, ...)
	TRAIN_PRINTF(6, 7);
/**
 * "file:line:col: warning: text" (or "file:line: ...", "file: ...",
 * "error: ..." as far as the location is known) into `buf` (at most
 * `size` bytes, NUL included); returns `buf`.
 */
TRAIN_API char *train_rasa_diag_format(const train_rasa_diag *g, char *buf, size_t size);

/* ---- shared pieces -------------------------------------------------------- */

/** Where an item was written.  `file` is as given to the loader ("" if none). */
typedef struct train_rasa_loc {
	const char *file;
	uint32_t line, col;   /**< 1-based; 0 when unknown (e.g. after decoding a value) */
} train_rasa_loc;

/**
 * An entity annotation.  In NLU messages and end-to-end user turns the
 * span is known: `start`/`end` are character offsets (Unicode code
 * points, end exclusive, as Rasa counts them) into the cleaned text (the
 * text with the annotation markup removed), and `byte_start`/`byte_end`
 * the same span in bytes.  Entities listed under a story's `entities:`
 * have no span: all four are 0.
 */
typedef struct train_rasa_entity {
	const char *entity;   /**< the entity type */
	const char *value;    /**< the value: the annotated text unless one was given;
	                           for story `entities:` the scalar as written ("" for a
	                           bare name or a null value) or JSON text for a list
	                           or map */
	const char *role;     /**< optional */
	const char *group;    /**< optional */
	uint32_t start, end;
	uint32_t byte_start, byte_end;
} train_rasa_entity;

/** A list of names (entities of an intent, roles, required slots, ...). */
typedef struct train_rasa_names {
	const char *const *v;
	size_t n;
} train_rasa_names;

/* ---- (a) NLU training data ---------------------------------------------- */

/**
 * One training example.  A retrieval intent "faq/ask_name" is split as
 * Rasa splits it: `intent` "faq", `response_key` "ask_name".
 */
typedef struct train_rasa_message {
	const char *text;             /**< cleaned text (annotations removed, trimmed) */
	uint32_t text_len;            /**< bytes in `text` */
	uint32_t text_chars;          /**< code points in `text` */
	const char *intent;           /**< base intent name */
	const char *response_key;     /**< optional: the part after '/' */
	const train_rasa_entity *entities;
	size_t n_entities;
	const char *metadata;         /**< optional: the example's `metadata` as JSON text */
	const char *intent_metadata;  /**< optional: the intent item's `metadata` as JSON text */
	train_rasa_loc loc;           /**< the example's own line */
} train_rasa_message;

/**
 * A synonym: every name in `names` is normalized to `value`.  Made from
 * `synonym:` items and from annotations whose value differs from the
 * annotated text (`[NYC]{"entity": "city", "value": "New York"}`), as Rasa
 * does; a name mapped to two values keeps the later one (with a warning).
 */
typedef struct train_rasa_synonym {
	const char *value;
	train_rasa_names names;
	train_rasa_loc loc;           /**< where the value was first seen */
} train_rasa_synonym;

/** A named list of strings: `regex:` patterns or `lookup:` elements (merged by name). */
typedef struct train_rasa_named_list {
	const char *name;
	train_rasa_names items;
	train_rasa_loc loc;           /**< first item of that name */
} train_rasa_named_list;

typedef struct train_rasa_response train_rasa_response;

/** NLU training data: everything under `nlu:` (and `responses:`) of the data files. */
typedef struct train_rasa_nlu {
	const train_rasa_message *messages;   size_t n_messages;
	const train_rasa_synonym *synonyms;   size_t n_synonyms;
	const train_rasa_named_list *regexes; size_t n_regexes;
	const train_rasa_named_list *lookups; size_t n_lookups;
	/** Responses written in NLU files (retrieval intents: "utter_faq/ask_name"). */
	const train_rasa_response *responses; size_t n_responses;
	struct train_rasa_arena *arena_;      /**< private */
} train_rasa_nlu;

/* ---- (b) the domain ------------------------------------------------------- */

/** How an intent uses entities (`use_entities` / `ignore_entities`). */
typedef enum train_rasa_use_entities {
	TRAIN_RASA_USE_ALL = 0,   /**< default, or `use_entities: true` */
	TRAIN_RASA_USE_NONE,      /**< `use_entities: false` or `[]` */
	TRAIN_RASA_USE_LISTED,    /**< `use_entities: [a, b]`: only those */
	TRAIN_RASA_USE_IGNORING,  /**< `ignore_entities: [a, b]`: all but those */
} train_rasa_use_entities;

typedef struct train_rasa_intent {
	const char *name;
	train_rasa_use_entities use;
	train_rasa_names entities;    /**< the listed or ignored entities */
	train_rasa_loc loc;
} train_rasa_intent;

typedef struct train_rasa_entity_decl {
	const char *name;
	train_rasa_names roles;
	train_rasa_names groups;
	bool influence_conversation;  /**< default true */
	train_rasa_loc loc;
} train_rasa_entity_decl;

typedef enum train_rasa_slot_type {
	TRAIN_RASA_SLOT_TEXT = 1,
	TRAIN_RASA_SLOT_BOOL,
	TRAIN_RASA_SLOT_CATEGORICAL,
	TRAIN_RASA_SLOT_FLOAT,
	TRAIN_RASA_SLOT_LIST,
	TRAIN_RASA_SLOT_ANY,
} train_rasa_slot_type;

typedef struct train_rasa_slot {
	const char *name;
	train_rasa_slot_type type;
	const char *type_name;        /**< as written: "text", "rasa.shared.core.slots.TextSlot" */
	train_rasa_names values;      /**< categorical: the values as written */
	double min_value, max_value;  /**< float: default 0.0 and 1.0 */
	bool influence_conversation;  /**< default true; false for `any` */
	const char *initial_value;    /**< optional: JSON text ("null" when written as null) */
	const char *mappings;         /**< optional: the `mappings` list as JSON text;
	                                   NULL when the slot has none (Rasa 2 files) */
	train_rasa_loc loc;
} train_rasa_slot;

/** A response button (`title`, `payload`; other keys in `extra`). */
typedef struct train_rasa_button {
	const char *title;            /**< optional */
	const char *payload;          /**< optional */
	const char *extra;            /**< optional: JSON object of the other keys */
} train_rasa_button;

/** One variation of a response. */
typedef struct train_rasa_variation {
	const char *text;             /**< optional (required unless `custom`) */
	const char *image;            /**< optional */
	const char *channel;          /**< optional */
	const char *custom;           /**< optional: JSON object */
	const char *condition;        /**< optional: JSON list of {type, name, value} */
	const train_rasa_button *buttons; size_t n_buttons;
	const char *extra;            /**< optional: JSON object of the other keys
	                                   (id, button_type, quick_replies, attachment,
	                                   elements, metadata) */
	train_rasa_loc loc;
} train_rasa_variation;

struct train_rasa_response {
	const char *name;             /**< "utter_greet", "utter_faq/ask_name" */
	const train_rasa_variation *variations; size_t n_variations;
	train_rasa_loc loc;
};

typedef struct train_rasa_action {
	const char *name;
	bool send_domain;             /**< `- action_x: {send_domain: true}` */
	train_rasa_loc loc;
} train_rasa_action;

typedef struct train_rasa_form {
	const char *name;
	train_rasa_names required_slots;
	train_rasa_names ignored_intents;
	const char *mappings;         /**< optional: Rasa 2 forms (required_slots as a map of
	                                   slot -> mappings): that map as JSON text */
	train_rasa_loc loc;
} train_rasa_form;

/** The domain: one file or several merged (duplicates are warnings, first wins). */
typedef struct train_rasa_domain {
	const char *version;          /**< optional: `version` of the first file that had one */
	const train_rasa_intent *intents;     size_t n_intents;
	const train_rasa_entity_decl *entities; size_t n_entities;
	const train_rasa_slot *slots;         size_t n_slots;
	const train_rasa_response *responses; size_t n_responses;
	const train_rasa_action *actions;     size_t n_actions;
	const train_rasa_form *forms;         size_t n_forms;
	train_rasa_names e2e_actions;         /**< `e2e_actions`: bot texts */
	double session_expiration_time;       /**< minutes; default 60 */
	bool carry_over_slots_to_new_session; /**< default true */
	bool store_entities_as_slots;         /**< `config:`; default true */
	struct train_rasa_arena *arena_;      /**< private */
} train_rasa_domain;

/* ---- (c) stories and rules ------------------------------------------------ */

typedef enum train_rasa_event_kind {
	TRAIN_RASA_EV_USER = 1,     /**< `intent` (+ `entities`) and/or `user` text */
	TRAIN_RASA_EV_ACTION,       /**< `action` */
	TRAIN_RASA_EV_BOT,          /**< `bot`: end-to-end bot text */
	TRAIN_RASA_EV_SLOT,         /**< one slot of a `slot_was_set` */
	TRAIN_RASA_EV_ACTIVE_LOOP,  /**< `active_loop`: a name, or NULL for `null` */
	TRAIN_RASA_EV_CHECKPOINT,   /**< `checkpoint` (+ its slot conditions) */
	TRAIN_RASA_EV_OR,           /**< `or`: alternatives, each a USER or SLOT event */
} train_rasa_event_kind;

typedef struct train_rasa_event train_rasa_event;

/**
 * One step of a story or rule.  Fields by kind:
 *  USER        name = intent (NULL for an end-to-end turn with only `user`),
 *              response_key (a full retrieval intent was written), text =
 *              cleaned `user` text or NULL, entities (with spans when they
 *              come from annotations in `user`; for a `user` text
 *              /intent{"entity": "value"} the JSON's, each spanning it);
 *  ACTION      name;  BOT  text;
 *  SLOT        name, value = JSON text, or NULL when only the name was
 *              written (`- slot_was_set: [my_slot]`: Rasa takes "filled"
 *              for text slots, ["filled"] for list slots, null otherwise);
 *  ACTIVE_LOOP name or NULL;
 *  CHECKPOINT  name, sub = the SLOT events of its `slot_was_set`;
 *  OR          sub = the alternatives (USER or SLOT events).
 */
struct train_rasa_event {
	train_rasa_event_kind kind;
	const char *name;
	const char *response_key;
	const char *text;
	const char *value;
	const train_rasa_entity *entities; size_t n_entities;
	const train_rasa_event *sub; size_t n_sub;
	train_rasa_loc loc;
};

typedef enum train_rasa_story_kind {
	TRAIN_RASA_STORY = 1,
	TRAIN_RASA_RULE,
} train_rasa_story_kind;

/** A story or a rule, as written. */
typedef struct train_rasa_story {
	const char *name;
	train_rasa_story_kind kind;
	const train_rasa_event *condition; size_t n_condition; /**< rules: `condition` */
	const train_rasa_event *events;    size_t n_events;    /**< `steps` */
	bool conversation_start;     /**< rules: default false */
	bool wait_for_user_input;    /**< rules: default true */
	const char *metadata;        /**< optional: JSON text */
	train_rasa_loc loc;
} train_rasa_story;

/** Stories and rules of all story files, in file order. */
typedef struct train_rasa_stories {
	const train_rasa_story *items; size_t n_items;
	size_t n_stories, n_rules;   /**< how many items of each kind */
	struct train_rasa_arena *arena_; /**< private */
} train_rasa_stories;

/* ---- (d) trackers ------------------------------------------------------------ */

/**
 * A linear event sequence: a story path from the conversation start
 * through its checkpoints, with every `or` replaced by one of its
 * alternatives; or one rule (condition + steps, one alternative per `or`).
 * Events are borrowed from the train_rasa_stories they were made from
 * (never OR or CHECKPOINT events), which must outlive the trackers.
 */
typedef struct train_rasa_tracker {
	train_rasa_story_kind kind;
	const char *name;            /**< story names along the path, joined by " > " */
	const train_rasa_event *const *events; size_t n_events;
	size_t n_condition;          /**< rules: the first n events are the condition */
	bool conversation_start;     /**< rules: copied from the rule */
	bool wait_for_user_input;    /**< rules: copied; true for stories */
	train_rasa_loc loc;          /**< the first story or the rule */
} train_rasa_tracker;

typedef struct train_rasa_trackers {
	const train_rasa_tracker *items; size_t n_items;
	struct train_rasa_arena *arena_; /**< private */
} train_rasa_trackers;

/** Bounds on tracker generation; zero fields take the defaults. */
typedef struct train_rasa_tracker_opts {
	size_t max_trackers;         /**< default 100000 */
	size_t max_events;           /**< events over all paths; default 10000000 */
} train_rasa_tracker_opts;

/**
 * Resolve checkpoints and `or` groups into trackers, as Rasa's training
 * data generator does without augmentation (augmentation_factor 0):
 *
 *  - a story is cut at its checkpoints into parts; leading checkpoints
 *    are where a part may start (any of them), trailing ones where it
 *    ends; a story with no leading checkpoint starts the conversation;
 *  - a path starts at a part that starts the conversation and continues,
 *    at each end checkpoint, with every part that starts at it whose
 *    checkpoint slot conditions hold for the slots set so far (the JSON
 *    text of the values compared; a slot never set is "null"); a path
 *    becomes a tracker when it reaches a part with no end checkpoint; a
 *    path that reaches an end checkpoint no part starts at is dropped, as
 *    Rasa drops it (a warning: "checkpoint 'x' is never used");
 *  - a part is not entered twice on one path (a checkpoint cycle is cut
 *    there, with a warning), so every path is finite;
 *  - each `or` multiplies the paths through it by its alternatives;
 *  - rules become one tracker per combination of `or` alternatives.
 *
 * Growth is bounded by `opts`: when more than max_trackers trackers
 * would be made, or more than max_events events stepped through in all
 * (which bounds both the output and the work, dropped paths included),
 * or more than 4096 `or` steps and parts lie on one path, generation
 * stops with TRAIN_EINVAL ("... more than N trackers ...") rather than
 * return a partial set.  Trackers come in story order (paths in the order
 * of their first part, depth first), then rules.
 * @param[in]  opts   NULL for the defaults
 * @param[out] out    free with train_rasa_trackers_free()
 * Errors: TRAIN_EINVAL (NULL args, bound exceeded), TRAIN_ENOMEM.
 */
TRAIN_API int train_rasa_trackers_generate(const train_rasa_stories *stories,
                                           const train_rasa_tracker_opts *opts,
                                           train_rasa_trackers **out, train_rasa_diags *diags,
                                           train_error *err);
TRAIN_API void train_rasa_trackers_free(train_rasa_trackers *t);

/* ---- loading ---------------------------------------------------------------- */

/**
 * What kinds of content a YAML file holds, from its top-level keys:
 * NLU (`nlu`, or `responses` with `nlu`), STORIES (`stories`), RULES
 * (`rules`), DOMAIN (any of `intents`, `entities`, `slots`, `responses`, `actions`,
 * `forms`, `session_config`, `config`, `e2e_actions`).  A file may be
 * several kinds; a file with only `responses` is a domain file.
 */
enum {
	TRAIN_RASA_FILE_NLU = 1,
	TRAIN_RASA_FILE_STORIES = 2,
	TRAIN_RASA_FILE_DOMAIN = 4,
	TRAIN_RASA_FILE_RULES = 8,
};

/**
 * Load NLU data from any number of files and folders.  Folders are
 * walked recursively (sorted by relative name, symbolic links not
 * followed); only `.yml`/`.yaml` files are read, and of those only the
 * ones holding NLU data.  Messages keep file order.
 * @param[in]  paths  `n` file or folder names
 * @param[out] out    free with train_rasa_nlu_free(); NULL on error
 * @param      diags  optional: receives warnings (and the error)
 */
TRAIN_API int train_rasa_nlu_load(const char *const *paths, size_t n, train_rasa_nlu **out,
                                  train_rasa_diags *diags, train_error *err);
/**
 * Parse one file's text (`len` bytes, need not be NUL-terminated) as NLU
 * data; `name` is the file name for locations (NULL: "").  Keys that
 * belong to other kinds of file (stories, domain) are ignored.  Never
 * crashes on any input (fuzzed).
 */
TRAIN_API int train_rasa_nlu_parse(const char *text, size_t len, const char *name,
                                   train_rasa_nlu **out, train_rasa_diags *diags,
                                   train_error *err);
TRAIN_API void train_rasa_nlu_free(train_rasa_nlu *nlu);

/**
 * Load a domain from files and folders; every domain file found is
 * merged into one domain, in path order (folders sorted).  An intent,
 * entity, slot, response, action or form defined twice is a warning
 * ("... also defined at FILE:LINE; the first definition is kept").
 */
TRAIN_API int train_rasa_domain_load(const char *const *paths, size_t n,
                                     train_rasa_domain **out, train_rasa_diags *diags,
                                     train_error *err);
TRAIN_API int train_rasa_domain_parse(const char *text, size_t len, const char *name,
                                      train_rasa_domain **out, train_rasa_diags *diags,
                                      train_error *err);
TRAIN_API void train_rasa_domain_free(train_rasa_domain *d);

/** Load stories and rules from files and folders. */
TRAIN_API int train_rasa_stories_load(const char *const *paths, size_t n,
                                      train_rasa_stories **out, train_rasa_diags *diags,
                                      train_error *err);
TRAIN_API int train_rasa_stories_parse(const char *text, size_t len, const char *name,
                                       train_rasa_stories **out, train_rasa_diags *diags,
                                       train_error *err);
TRAIN_API void train_rasa_stories_free(train_rasa_stories *s);

/** A whole project: each part is never NULL after a successful load (maybe empty). */
typedef struct train_rasa_project {
	train_rasa_nlu *nlu;
	train_rasa_stories *stories;
	train_rasa_domain *domain;
	size_t n_files;              /**< YAML files read */
} train_rasa_project;

/**
 * Read every YAML file under `paths` once and sort it into NLU,
 * stories/rules and domain by its top-level keys (a file may feed
 * several).  A YAML file that holds none of the known keys is skipped
 * with a warning (with a suggestion when a key is close to a known one).
 * An unknown top-level key next to known ones is an error in a domain
 * file (Rasa's domain schema lists its keys) and a warning in a data file
 * (Rasa ignores it).
 * @param[out] out  free with train_rasa_project_free()
 */
TRAIN_API int train_rasa_project_load(const char *const *paths, size_t n,
                                      train_rasa_project **out, train_rasa_diags *diags,
                                      train_error *err);
TRAIN_API void train_rasa_project_free(train_rasa_project *p);

/**
 * The kinds (TRAIN_RASA_FILE_* bits) a YAML text holds, 0 for none.
 * Errors: TRAIN_EPARSE and the others of train_config_parse().
 */
TRAIN_API int train_rasa_classify(const char *text, size_t len, const char *name, int *kinds,
                                  train_error *err);

/* ---- serialization ---------------------------------------------------------- */

/*
 * Values for the graph and the cache.  The bytes are a versioned binary
 * encoding (magic "TRR" + a kind letter, a u32 format version, then
 * length-prefixed little-endian fields) of the *content only*: file
 * names, lines and columns are not in it, JSON text is canonical (object
 * keys sorted, numbers in one spelling), and the order of items is the
 * order they were read in.  So equal content gives equal bytes, the
 * value's fingerprint is a content fingerprint, and moving a file or
 * adding a comment changes nothing.  The NLU, domain and stories values
 * are independent: a change to a story changes only the stories value.
 *
 * Decoding checks every length and count against the bytes left and
 * refuses (TRAIN_ECORRUPT) anything malformed, another format version or
 * another content type; decoded structs have empty locations.
 */
TRAIN_API int train_rasa_nlu_to_value(const train_rasa_nlu *nlu, train_value **out, train_error *err);
TRAIN_API int train_rasa_nlu_from_value(const train_value *v, train_rasa_nlu **out, train_error *err);
TRAIN_API int train_rasa_domain_to_value(const train_rasa_domain *d, train_value **out, train_error *err);
TRAIN_API int train_rasa_domain_from_value(const train_value *v, train_rasa_domain **out,
                                           train_error *err);
TRAIN_API int train_rasa_stories_to_value(const train_rasa_stories *s, train_value **out,
                                          train_error *err);
TRAIN_API int train_rasa_stories_from_value(const train_value *v, train_rasa_stories **out,
                                            train_error *err);
/**
 * Decode raw bytes of the given content type (one of TRAIN_RASA_*_TYPE)
 * into the matching struct, returned through `out` as a train_rasa_nlu*,
 * train_rasa_domain* or train_rasa_stories* (free it with its own _free).
 * The entry point for fuzzing the decoders.
 */
TRAIN_API int train_rasa_decode(const char *type, const void *data, size_t size, void **out,
                                train_error *err);

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_RASA_H */
