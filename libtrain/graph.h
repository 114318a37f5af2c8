/*
 * libtrain/graph.h - a recipe schema resolved against the plugins:
 * classes found, configs validated, edges wired, nodes in dependency order,
 * fingerprints computed (private).
 */
#ifndef TRAIN_GRAPH_H
#define TRAIN_GRAPH_H

#include <train/train.h>
#include <stdbool.h>
#include "recipe.h"

typedef struct train_gedge {
	size_t from;          /* producing node index; SIZE_MAX for a predict input */
	const char *output;   /* producer's output name (or the predict input name) */
	const char *input;    /* consumer's input name */
} train_gedge;

typedef struct train_gnode {
	const train_recipe_node *rn;
	const train_component_class *cls;
	const train_plugin_info *plugin;
	train_config *config;       /* validated, defaults filled in */
	train_gedge *in;            /* one per need, sorted by input name */
	size_t n_in;
	bool needed;                /* a target depends on it */
	train_fp config_fp;         /* canonical config without `epochs` (finetune check) */
} train_gnode;

typedef struct train_graph {
	const train_recipe *recipe;
	const train_recipe_schema *schema;
	train_gnode *nodes;         /* in recipe order */
	size_t n;
	size_t *order;              /* a topological order (producers first) */
} train_graph;

/* Path variables for PATH-typed keys. */
typedef struct train_graph_vars {
	const char *data_path;
	const char *domain_path;
} train_graph_vars;

/*
 * Resolve `schema` of `recipe`: every component found, configs validated,
 * inputs wired and type-checked against the classes, `needed` marked from
 * the targets.  Errors carry the recipe file:line:col.
 */
int train_graph_build(const train_recipe *recipe, const train_recipe_schema *schema,
                      train_registry *reg, train_graph **out, train_error *err);
/*
 * Fingerprint node `i`: class name and version, ABI major, canonical config
 * per declared key (PATH keys by file content), each input by name with
 * the fingerprint of the VALUE it receives (input_fps, in n->in order; a
 * predict input counts by name only), `salt` (may be NULL; finetuning),
 * and what the component's fingerprint() adds (it is created for that,
 * then destroyed).  Because inputs count by value, a producer that
 * retrains to the same output leaves its consumers cached.
 */
int train_graph_node_fp(const train_graph *g, size_t i, const train_fp *input_fps,
                        const train_graph_vars *vars, const train_ctx *proto, const char *salt,
                        train_fp *out, train_error *err);
void train_graph_destroy(train_graph *g);

/* The hex canonical-config fingerprint that ignores `epochs`. */
train_fp train_graph_config_fp(const train_config *config, const train_param *params);

#endif
