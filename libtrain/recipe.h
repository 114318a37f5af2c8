/*
 * libtrain/recipe.h - recipes: the YAML that declares a training graph
 * (private).
 *
 *   version: 1                      # recipe format version (required, 1)
 *   name: hello                     # used in the default model name
 *   train:
 *     targets: [classifier]         # nodes whose results the run needs
 *     nodes:
 *       corpus:
 *         component: TextFile       # "Name" or "plugin/Name"
 *         config: {path: intents.tsv}
 *       classifier:
 *         component: NaiveBayes
 *         needs: {examples: corpus} # input name -> "node" or "node.output"
 *         config: {alpha: 0.5}
 *   config_ignored:                 # optional, targets: settings-file keys
 *     model.n_heads: "why"          # accepted with a note (see target.h)
 *   predict:                        # optional
 *     inputs: [text]                # names the caller passes in
 *     targets: [classify]
 *     nodes:
 *       classify:
 *         component: NaiveBayes
 *         resource: classifier      # load the state this train node persisted
 *         needs: {text: $input.text}
 *
 * train_recipe_load() checks the structure: required keys and their types,
 * unknown keys, duplicate names (YAML duplicate keys included), `needs`
 * naming an unknown node or input, targets naming unknown nodes, `resource`
 * naming an unknown train node, and cycles.  Every error is
 * TRAIN_EPARSE/TRAIN_ECONFIG/TRAIN_ENOTFOUND/TRAIN_EEXIST/TRAIN_ECYCLE with
 * err->file/line/col set to the offending YAML node.  Checks that need the
 * plugins (component exists, config keys and types, input names) are the
 * graph's (graph.c).
 *
 * Rules in detail:
 *  - top-level keys: version (the integer 1), name, train (required),
 *    predict; a schema: nodes and targets (both required), and for predict
 *    inputs; a node: component (required, a non-empty string), config (a
 *    map, or null/absent), needs (a map of input name -> string), and for
 *    predict nodes resource.  Anything else is an unknown key (ECONFIG,
 *    the message lists the known keys).
 *  - node and input names are [A-Za-z0-9_-]+; `name` is
 *    [A-Za-z0-9_.-]+ not starting with '.' (it ends up in a file name);
 *    the default name (file name without .yml/.yaml) has other bytes
 *    replaced by '_'.
 *  - a need "node.output" splits at the first '.'; "$input.x" (predict
 *    only) needs x to be listed in `inputs`.
 *  - targets: a non-empty list of node names.
 *  - a cycle is reported as "cycle: a -> b -> a" ("a needs b, b needs a")
 *    at the first node of the cycle, in file order of the search.
 * Error codes: TRAIN_EPARSE (YAML), TRAIN_EEXIST (a duplicate key or
 * input), TRAIN_ECONFIG (shape: missing/unknown/mistyped key, bad name,
 * version), TRAIN_ENOTFOUND (need, target or resource names nothing),
 * TRAIN_ECYCLE, TRAIN_ENOMEM, or -errno from reading the file.
 *
 * Ownership: a train_recipe owns every string and config in it; node
 * configs are copies, independent of `root`.  Free with
 * train_recipe_destroy().  A recipe is not changed after loading and may be
 * read from several threads.
 */
#ifndef TRAIN_RECIPE_H
#define TRAIN_RECIPE_H

#include <train/train.h>
#include <stdbool.h>

typedef struct train_recipe_need {
	char *input;      /* the consuming component's input name */
	char *node;       /* producing node, or NULL for a predict input */
	char *output;     /* producing node's output name, or NULL (its only output);
	                     for a predict input ($input.x): "x" */
	unsigned line, col;
} train_recipe_need;

typedef struct train_recipe_node {
	char *name;
	char *component;          /* as written: "Name" or "plugin/Name" */
	train_config *config;     /* the `config` map, or NULL if absent */
	train_recipe_need *needs;
	size_t n_needs;
	char *resource;           /* predict schema: train node to load, or NULL */
	bool is_target;
	unsigned line, col;       /* of the node's name */
	unsigned comp_line, comp_col; /* of the component value */
} train_recipe_node;

typedef struct train_recipe_schema {
	train_recipe_node *nodes; /* in file order */
	size_t n_nodes;
	char **inputs;            /* predict schema: declared inputs */
	size_t n_inputs;
	bool present;
	size_t *by_name;          /* node indices sorted by name, for
	                             train_recipe_find (NULL: it searches linearly) */
} train_recipe_schema;

typedef struct train_recipe {
	char *path;               /* as given */
	char *base_dir;           /* folder of the file, for relative paths */
	char *name;               /* `name`, or the file name without .yml */
	train_recipe_schema train;
	train_recipe_schema predict;
	train_config *root;       /* the whole parsed file */
	const train_config *config_ignored; /* `config_ignored` (in root), or NULL */
} train_recipe;

int train_recipe_load(const char *path, train_recipe **out, train_error *err);
/* Parse from memory; `name` is the file name for messages; `base_dir` for
 * relative paths (NULL: "."). */
int train_recipe_parse(const char *text, size_t size, const char *name, const char *base_dir,
                       train_recipe **out, train_error *err);
void train_recipe_destroy(train_recipe *r);
/* Index of a node by name in a schema, or -1 (O(log n) for a loaded recipe). */
long train_recipe_find(const train_recipe_schema *s, const char *name);

#endif
