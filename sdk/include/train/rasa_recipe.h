/*
 * <train/rasa_recipe.h> - Rasa's default recipe: a Rasa 3.x `config.yml`
 * (`recipe: default.v1`, `language`, `pipeline`, `policies`,
 * `assistant_id`) expanded into a libtrain recipe (issue 6).
 *
 *   char *yaml;
 *   if (train_rasa_config_detect("config.yml") == 1 &&
 *       !train_rasa_recipe_from_config("config.yml", TRAIN_RASA_PART_ALL, reg, &yaml, &err))
 *           ... write yaml to a file and train it (train_run_options.recipe_path) ...
 *
 * The train graph, as Rasa's default recipe builds it:
 *
 *   RasaNLU -> tokenizer -> featurizer -> ... -> featurizer -> DIETClassifier
 *          \-> RegexFeaturizer's `nlu` (its patterns), EntitySynonymMapper
 *   RasaDomain + RasaStories -> each policy
 *
 * Each pipeline component is fed the features value of the one before it;
 * NLU nodes never read the stories and policies never read the NLU data, so
 * a changed story retrains only the policies and a changed example only the
 * NLU nodes.  Node names are the component's name and its position in its
 * list ("CountVectorsFeaturizer4", "TEDPolicy0").
 *
 * The predict schema has two inputs: `text` -> the pipeline's process()
 * chain -> the parse result (intent, ranking, entities; the target is the
 * last NLU node), and `conversation` -> each policy in order ->
 * PolicyEnsemble (the target "PolicyEnsemble").
 *
 * `recipe: graph.v1` (Rasa's graph recipe: `train_schema` and
 * `predict_schema` of nodes with `needs`, `uses`, `fn`, `config`, ...,
 * and `nlu_target` / `core_target`) is expanded too: each Rasa node is
 * resolved to the value it stands for (the NLU data, the domain, the
 * stories, a node's features, a parse result, the tracker) and the libtrain
 * nodes are written from those (doc/recipes.md has the table); classes
 * libtrain does not have and fns they do not offer are errors at the line.
 *
 * An absent `pipeline` or `policies` takes Rasa's default one (without the
 * components libtrain does not have: ResponseSelector, UnexpecTEDIntentPolicy).
 * Errors are reported at the config file's line: an unknown top-level key,
 * an unknown component (the message lists the known ones), a component in a
 * place where it cannot work (a featurizer before any tokenizer, a second
 * tokenizer or classifier), and, when a registry is given, a component no
 * loaded plugin offers and config keys its class does not declare (with the
 * known keys).
 */
#ifndef TRAIN_RASA_RECIPE_H
#define TRAIN_RASA_RECIPE_H

#include <train/train.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Which part of a Rasa model to build. */
typedef enum train_rasa_part {
	TRAIN_RASA_PART_ALL = 0, /**< `train`: the pipeline and the policies */
	TRAIN_RASA_PART_NLU,     /**< `train nlu`: the pipeline only */
	TRAIN_RASA_PART_CORE,    /**< `train core`: the policies only */
} train_rasa_part;

/**
 * Whether a YAML file is a Rasa config rather than a libtrain recipe: a
 * top-level map with `pipeline`, `policies`, or `recipe` (and no `train`).
 * 1 yes, 0 no (also when it does not parse), a negative code when it cannot
 * be read.
 */
TRAIN_API int train_rasa_config_detect(const char *path);

/**
 * Expand the Rasa config at `path` into recipe YAML text (malloc'd, NUL
 * terminated, to *yaml).  `reg` may be NULL (component names and config
 * keys are then checked only against the known names); with a registry
 * every component must be offered by a loaded plugin and its keys fit its
 * class.  The recipe's paths are `$data` and `$domain` (the run's --data
 * and --domain); its name is "rasa", "nlu" or "core" by `part`.
 * Errors: TRAIN_EPARSE (YAML), TRAIN_ECONFIG (shape, unknown component or
 * key, order), TRAIN_EPLUGIN (no plugin offers a component), TRAIN_ENOMEM,
 * -errno reading the file; err has the config file's line.
 */
TRAIN_API int train_rasa_recipe_from_config(const char *path, train_rasa_part part,
                                            const train_registry *reg, char **yaml,
                                            train_error *err);

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_RASA_RECIPE_H */
