/*
 * <train/config.h> - component configuration: a typed tree read from YAML,
 * and the parameter declarations components publish.
 *
 * A config is a tree of nodes: null, bool, int (int64), float (double),
 * string, list, map.  Plain YAML scalars are typed with the YAML 1.2 core
 * schema (`3` is int, `3.0` and `1e-3` float, `true` bool, `~`/`null`
 * null); quoted scalars are always strings.  Every node remembers the file,
 * line and column it came from, for error messages.
 *
 * Components declare their keys with a train_param table.  Before create()
 * runs, the host checks the user's config against it (unknown key, wrong
 * type: a file:line:col error that lists the known keys), fills in the
 * defaults, and coerces ints to floats where a float is declared.  So a
 * component reads its declared keys with the getters below and never sees a
 * missing or mistyped one.
 *
 * Ownership: a config belongs to whoever created it; nodes returned by the
 * getters are borrowed and live as long as the root.
 * Threads: nothing changes a tree after it is built, so one tree may be read
 * from several threads; parsing uses no global state.
 */
#ifndef TRAIN_CONFIG_H
#define TRAIN_CONFIG_H

#include <train/common.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum train_cfg_kind {
	TRAIN_CFG_NULL = 0,
	TRAIN_CFG_BOOL,
	TRAIN_CFG_INT,
	TRAIN_CFG_FLOAT,
	TRAIN_CFG_STRING,
	TRAIN_CFG_LIST,
	TRAIN_CFG_MAP,
} train_cfg_kind;

typedef struct train_config train_config;

/** Declared type of a component parameter. */
typedef enum train_param_type {
	TRAIN_PARAM_END = 0, /**< terminates a train_param table */
	TRAIN_PARAM_INT,     /**< an integer */
	TRAIN_PARAM_FLOAT,   /**< a number; an integer is accepted and converted */
	TRAIN_PARAM_BOOL,    /**< true or false */
	TRAIN_PARAM_STRING,  /**< any scalar, kept as its text */
	TRAIN_PARAM_LIST,    /**< a sequence of anything */
	TRAIN_PARAM_MAP,     /**< a mapping of anything */
	TRAIN_PARAM_ANY,     /**< anything, including null */
	TRAIN_PARAM_PATH,    /**< a file or folder, relative to the recipe; its
	                          *content* is fingerprinted, its name is not */
} train_param_type;

/**
 * One declared key.  A table of these ends with an entry whose `type` is
 * TRAIN_PARAM_END.  `def` is the default as YAML flow text ("3", "0.001",
 * "true", "[1, 2]", "~"); NULL makes the key required.
 */
typedef struct train_param {
	const char *name;
	train_param_type type;
	const char *def;
	const char *doc;
} train_param;

/* ---- reading a tree ---------------------------------------------------- */

TRAIN_API train_cfg_kind train_config_kind(const train_config *c);
/** Map lookup; NULL if `c` is not a map or has no such key. */
TRAIN_API const train_config *train_config_get(const train_config *c, const char *key);
/** Number of items in a list or entries in a map; 0 otherwise. */
TRAIN_API size_t train_config_len(const train_config *c);
/** Item `i` of a list or value `i` of a map (in file order); NULL if out of range. */
TRAIN_API const train_config *train_config_at(const train_config *c, size_t i);
/** Key `i` of a map (in file order); NULL if out of range. */
TRAIN_API const char *train_config_key_at(const train_config *c, size_t i);
/**
 * Key `i` of a map as a node (a STRING node holding the key's text), so
 * that messages can point at the key itself: train_config_line() of it is
 * where the key was written.  NULL if out of range.
 */
TRAIN_API const train_config *train_config_key_node_at(const train_config *c, size_t i);

/* Scalar values of a node.  A node of another kind gives 0 / false / NULL. */
TRAIN_API bool train_config_as_bool(const train_config *c);
TRAIN_API int64_t train_config_as_int(const train_config *c);
TRAIN_API double train_config_as_float(const train_config *c); /* ints convert */
/** Text of a scalar (any scalar kind: "3", "true", "x"); NULL for list/map/null. */
TRAIN_API const char *train_config_as_string(const train_config *c);

/* Shorthands for a map member: train_config_int(cfg, "epochs") etc. */
TRAIN_API bool train_config_bool(const train_config *map, const char *key);
TRAIN_API int64_t train_config_int(const train_config *map, const char *key);
TRAIN_API double train_config_float(const train_config *map, const char *key);
TRAIN_API const char *train_config_string(const train_config *map, const char *key);

/** Where a node was read: file (may be "") and 1-based line/col (0 if unknown). */
TRAIN_API const char *train_config_file(const train_config *c);
TRAIN_API unsigned train_config_line(const train_config *c);
TRAIN_API unsigned train_config_col(const train_config *c);

/* ---- building and parsing ---------------------------------------------- */

/**
 * Parse YAML text (one document) into a tree.  `name` is used as the file
 * name in locations and errors (NULL: "").  An empty document (nothing, or
 * only comments) gives a null node.  Map keys are kept as text: `1: x` has
 * the key "1".  Integers must fit int64 (decimal, 0x.. or 0o..); floats
 * include .5, 1e-3, .inf, -.inf and .nan.  Tags other than !!str, !!map
 * and !!seq are refused; `!!str 3` and `! 3` are strings.
 * @param[out] out  the tree (free with train_config_destroy), NULL on error
 * Errors, with err's file:line:col at the offending place:
 *  - TRAIN_EPARSE  YAML syntax (libyaml's problem, with its context), a tab
 *    where indentation is expected, a non-scalar map key, an anchor or an
 *    alias ("aliases are not supported"), an unsupported tag, more than one
 *    document, an integer or float out of range, nesting over 256 levels;
 *  - TRAIN_EEXIST  a map key written twice ("duplicate key 'x' (first at
 *    line N)", at the second one);
 *  - TRAIN_ENOMEM.
 * Numbers are read in the "C" locale whatever setlocale() says.
 */
TRAIN_API int train_config_parse(const char *text, size_t size, const char *name,
                                 train_config **out, train_error *err);
/** Read and parse a YAML file. */
TRAIN_API int train_config_load(const char *path, train_config **out, train_error *err);
/** Deep copy, locations included.  TRAIN_EINVAL if `c` is NULL, TRAIN_ENOMEM. */
TRAIN_API int train_config_copy(const train_config *c, train_config **out);
/** Free a tree returned by parse/load/copy/validate.  NULL is fine. */
TRAIN_API void train_config_destroy(train_config *c);

/**
 * Check `user` (a map, or NULL or a null node for "no config") against
 * `params` and return a new map with every declared key, in table order:
 * copies of the user's values, coerced to the declared types, and the
 * parsed defaults for the rest (defaults have no location: file "", line
 * 0).  `what` names the component in messages ("component WordCount").
 * A NULL `params` is an empty table (every key is unknown).
 *
 * Types: INT takes an int; FLOAT an int (converted) or a float; BOOL a
 * bool; STRING any scalar but null, kept as its text (`3` becomes "3");
 * PATH only a string; LIST a list; MAP a map; ANY anything.  A null value
 * is also accepted for a key whose default is null ("~"): that is how a
 * component declares an optional key with no value.
 * Errors (err filled with the offending node's location; for an unknown
 * key, the key's):
 *  - TRAIN_ECONFIG "unknown key 'epochz' for component X; known keys: a, b",
 *    "'epochs' must be an integer, not the string \"ten\"",
 *    "missing required key 'x' for component X" (at the user's map), or a
 *    default that does not parse or does not fit its type (a bug in the
 *    component; no location);
 *  - TRAIN_EINVAL `user` is not a map;
 *  - TRAIN_ENOMEM.
 */
TRAIN_API int train_config_validate(const train_config *user, const train_param *params,
                                    const char *what, train_config **out, train_error *err);

/**
 * The canonical form of a tree, for fingerprints: maps sorted by key
 * (bytewise), numbers in one spelling (ints in decimal, floats as the
 * shortest text that reads back to the same double), strings
 * length-prefixed; independent of YAML layout and key order.  A malloc'd
 * buffer goes to `*out` (free() it), its size to `*size`.
 * PATH-typed entries are not special here: the graph hashes their content.
 *
 * Encoding (u64 = 8 bytes little-endian):
 *   null 'N'; bool 'T' or 'F'; int 'I' u64 len + decimal text;
 *   float 'D' u64 len + text: the shortest "%.{p}g", p = 1..17, that reads
 *   back to the same bits ("-0" differs from "0"), or "nan", "inf", "-inf";
 *   string 'S' u64 len + bytes; list 'L' u64 count + items;
 *   map 'M' u64 count + per entry, by key bytes: u64 len + key + value.
 * An int and a float are different (`1` vs `1.0`) unless validation
 * coerced them.  A NULL tree encodes as null.  Errors: TRAIN_ENOMEM.
 */
TRAIN_API int train_config_canonical(const train_config *c, char **out, size_t *size);

/**
 * Write the tree as one line of YAML flow text (for logs and metadata),
 * maps in file order: `{a: 1, b: [x, "two words: yes"], c: null}`.
 * Strings are quoted when they would not read back as the same string;
 * floats always read back as floats ("1.0", ".inf").  Parsing the text
 * gives a tree with the same canonical form.  `*out` is malloc'd.
 * Errors: TRAIN_ENOMEM.
 */
TRAIN_API int train_config_to_flow(const train_config *c, char **out);

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_CONFIG_H */
