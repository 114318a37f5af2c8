/*
 * <train/train.h> - the host API: load plugins, run a recipe, open a model.
 *
 * Lifecycle of a training run:
 *
 *   train_registry *reg;  train_registry_create(&reg);
 *   train_registry_add_dirs(reg, "plugins:more");       // --plugin-path
 *   train_registry_scan(reg, &err);                      // + TRAIN_PLUGIN_PATH, installed dir
 *   train_run_options opt;  train_run_options_init(&opt);
 *   opt.recipe_path = "recipe.yml";  opt.out_dir = "models";
 *   train_run_result res;
 *   rc = train_run(reg, &opt, &res, &err);
 *   ...  train_run_result_free(&res);  train_registry_destroy(reg);
 *
 * and of prediction:
 *
 *   train_model *m;  train_model_open("models/x.tar.gz", reg, &m, &err);
 *   train_model_predict(m, inputs, outputs, &err);
 *   train_model_close(m);
 *
 * Threads: a registry is read-only after scan and may be shared; a model
 * must be used by one thread at a time.
 */
#ifndef TRAIN_TRAIN_H
#define TRAIN_TRAIN_H

#include <train/common.h>
#include <train/config.h>
#include <train/value.h>
#include <train/resource.h>
#include <train/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- plugins ------------------------------------------------------------- */

typedef struct train_registry train_registry;

/** A loaded plugin, as `train plugins` lists it.  Borrowed from the registry. */
typedef struct train_plugin_info {
	const char *path;               /**< the file it was loaded from */
	const train_plugin_desc *desc;  /**< its descriptor */
} train_plugin_info;

/** A file that was refused, with one line saying why. */
typedef struct train_plugin_refusal {
	const char *path;
	const char *reason;
} train_plugin_refusal;

TRAIN_API int train_registry_create(train_registry **out);
/** Unloads every plugin.  NULL is fine. */
TRAIN_API void train_registry_destroy(train_registry *r);
/**
 * Append folders to search, colon-separated, in order (--plugin-path).
 * Call before train_registry_scan().
 */
TRAIN_API int train_registry_add_dirs(train_registry *r, const char *dirs);
/** Whether scan also searches TRAIN_PLUGIN_PATH and the installed plugin
 * folder (both on by default). */
TRAIN_API void train_registry_use_defaults(train_registry *r, int use_env, int use_installed);
/**
 * Load every `*.so` in the search folders, in order: the added folders,
 * then TRAIN_PLUGIN_PATH, then the installed folder.  A file that fails
 * (not a plugin, no descriptor symbol, another ABI major or a newer minor,
 * dlopen error, init failure) is recorded as refused and the rest still
 * load.  A file seen twice (same real path) loads once.
 * Errors: TRAIN_EPLUGIN if libltdl cannot start; refusals are not errors.
 */
TRAIN_API int train_registry_scan(train_registry *r, train_error *err);
TRAIN_API size_t train_registry_plugin_count(const train_registry *r);
TRAIN_API train_plugin_info train_registry_plugin_at(const train_registry *r, size_t i);
TRAIN_API size_t train_registry_refused_count(const train_registry *r);
TRAIN_API train_plugin_refusal train_registry_refused_at(const train_registry *r, size_t i);
/**
 * Find a component class by "Name" or by "plugin/Name" (to pick one when
 * several plugins offer the same name).  `*plugin_out` may be NULL.
 * Errors: TRAIN_ENOTFOUND (message lists nothing; the caller knows the
 * context), TRAIN_EEXIST when two plugins offer "Name" (the message names
 * both files and how to pick one).
 */
TRAIN_API int train_registry_find(const train_registry *r, const char *name,
                                  const train_component_class **cls_out,
                                  const train_plugin_info **plugin_out, train_error *err);

/**
 * Find an environment class (<train/env.h>) by "Name" or "plugin/Name".
 * Errors as train_registry_find(); `*plugin_out` may be NULL.
 */
TRAIN_API int train_registry_find_env(const train_registry *r, const char *name,
                                      const train_env_class **cls_out,
                                      const train_plugin_info **plugin_out, train_error *err);

/* ---- training runs ------------------------------------------------------- */

/** How a node ended up in a run. */
typedef enum train_node_status {
	TRAIN_NODE_TRAINED = 0, /**< ran (or, in a dry run, would run) */
	TRAIN_NODE_CACHED,      /**< outputs taken from the cache */
	TRAIN_NODE_PRUNED,      /**< not needed by any target */
	TRAIN_NODE_FAILED,      /**< ran and failed */
	TRAIN_NODE_SKIPPED,     /**< not run because the run stopped first */
} train_node_status;

TRAIN_API const char *train_node_status_name(train_node_status s);

/** Verbosity of the runner's own lines (to stderr). */
typedef enum train_verbosity { TRAIN_QUIET = 0, TRAIN_NORMAL = 1, TRAIN_VERBOSE = 2 } train_verbosity;

/**
 * One settings key given on the command line (`train --target X --set
 * SECTION.KEY=VALUE`, and the flags that are sugar for it such as
 * `--num-rl-steps N`): it takes the place of the same key of the settings
 * file, or is added to it (to an empty one when there is no file), before
 * the recipe's "$config.SECTION.KEY" values are looked up, so a node's
 * fingerprint is the same whether a value came from the file or from here.
 */
typedef struct train_setting {
	/** Dotted path: "training.num_rl_steps"; a pipeline's settings have a
	 *  section per stage: "rlhf.training.num_rl_steps". */
	const char *path;
	/** The value as a YAML scalar ("3", "0.5", "true", "text", "'3'");
	 *  "" or "null": the key is unset (the component's default applies). */
	const char *value;
	/** How the user wrote it, named in messages: a flag beginning with
	 *  "--" ("--num-rl-steps 3"); NULL: "--set PATH=VALUE".  A relative
	 *  path value is taken from the working folder, as a flag's would be. */
	const char *origin;
} train_setting;

typedef struct train_run_options {
	uint32_t struct_size;
	const char *recipe_path;      /**< the recipe YAML (required) */
	const char *out_dir;          /**< where models go ("models") */
	const char *fixed_model_name; /**< model file name without folder, or NULL */
	const char *cache_dir;        /**< NULL: TRAIN_CACHE_DIR or $XDG_CACHE_HOME/train */
	const char *finetune_model;   /**< a model archive to continue from, or NULL */
	double epoch_fraction;        /**< share of epochs when finetuning (1.0) */
	const char *report_path;      /**< write a JSON report here, or NULL */
	const char *training_type;    /**< recorded in the metadata ("recipe", "nlu", ...) */
	int threads;                  /**< nodes run at once; 0: the number of cores */
	int dry_run;                  /**< fingerprint and prune only */
	int force;                    /**< train every node, ignore the cache */
	train_verbosity verbosity;
	const volatile int *cancel;   /**< set non-zero (e.g. from a signal) to stop */
	const char *dot_path;         /**< write the plan as Graphviz here, or NULL */
	const train_log_sink *log;    /**< where the runner's lines go (NULL: stderr) */
	const char *data_path;        /**< --data: what "$data" in a PATH key means */
	const char *domain_path;      /**< --domain: what "$domain" in a PATH key means */
	/** A target's settings file (`--target X --config FILE`): what the
	 *  recipe's "$config.SECTION.KEY" values mean; NULL: none set. */
	const char *settings_path;
	/** Append a JSON Lines progress stream here (`train --progress FILE`),
	 *  or NULL: one object a line, flushed as written: {"event": "plan",
	 *  "nodes": N}; {"event": "node", "node", "status", "done", "nodes"} as
	 *  each node ends; {"event": "step", "node", "step", "total"[, "loss"][,
	 *  "lr"]} from train_progress()/train_progress_loss()/
	 *  train_progress_lr(); {"event": "end", "status": "ok"|"failed"|
	 *  "canceled"[, "error"]}.  Every line has "t", seconds since the run
	 *  began, and "cpu", the CPU seconds the process has used. */
	const char *progress_path;
	/** --resume: components that keep checkpoints continue from them
	 * (train_ctx_resuming); checkpoints live in the cache folder under
	 * checkpoints/<node fingerprint>/ and go when the node has trained. */
	int resume;
	/** --set: settings keys applied in order over settings_path's file
	 *  (train_setting); an unknown key is reported like one in the file,
	 *  at the flag.  Read only when struct_size covers them. */
	const train_setting *settings_set;
	size_t n_settings_set;
} train_run_options;

TRAIN_API void train_run_options_init(train_run_options *o);

typedef struct train_node_result {
	char *name;
	char *component;
	char fingerprint[TRAIN_FP_HEX];
	train_node_status status;
	double seconds;
} train_node_result;

/** Bit flags of a dry run (also `train --dry-run`'s exit status). */
#define TRAIN_DRY_NOTHING      0x0 /**< every needed node is cached */
#define TRAIN_DRY_RETRAIN      0x1 /**< at least one node would train */
#define TRAIN_DRY_NO_MODEL     0x2 /**< no model in out_dir yet */
#define TRAIN_DRY_FORCED       0x4 /**< --force: everything would train */

typedef struct train_run_result {
	train_node_result *nodes; /**< train schema nodes, in run order */
	size_t n_nodes;
	size_t n_trained, n_cached, n_pruned;
	char *model_path;         /**< the model written, NULL for a dry run */
	double seconds;           /**< wall time of the whole run */
	int dry_flags;            /**< TRAIN_DRY_* (dry run only) */
} train_run_result;

/**
 * Run a recipe: validate, fingerprint, prune, train, package.  On failure
 * `res` still lists what happened to each node and `err` says which node
 * failed and why.  Errors: any TRAIN_E* code.
 */
TRAIN_API int train_run(train_registry *reg, const train_run_options *opt,
                        train_run_result *res, train_error *err);
TRAIN_API void train_run_result_free(train_run_result *res);

/* ---- pipelines ----------------------------------------------------------- */

/**
 * A pipeline is a recipe file with `stages:` instead of `train:` (issue 9,
 * recipes/full-pipeline.yml): named stages in order, each a recipe of its
 * own run with its section of one settings file (doc/recipes.md,
 * "Pipelines").  train_run() on a pipeline runs every stage;
 * train_run_pipeline() also chooses which.
 */
typedef struct train_pipeline_options {
	uint32_t struct_size;
	/** Comma-separated stage names to run, each with the stages it needs
	 *  (those come from the cache when nothing changed); NULL: all. */
	const char *stages;
	/** Leave out the stages marked `data_prep: true` (--skip-data-prep). */
	int skip_data_prep;
} train_pipeline_options;

TRAIN_API void train_pipeline_options_init(train_pipeline_options *o);

/**
 * Run the pipeline opt->recipe_path: each selected stage in order as
 * train_run() would run its recipe, with opt->settings_path's section of
 * the stage (a settings file with a section per stage), its model written
 * to opt->out_dir as STAGE.tar.gz, and, when every stage ran, a manifest
 * (out_dir/manifest.json: each model's path, SHA-256, size and the metrics
 * of its nodes) written to a temporary name and renamed.  Because every
 * node is cached as it finishes, a rerun after a failure or a kill trains
 * from the first unfinished stage on.  `popt` may be NULL (all stages).
 * opt->report_path receives one report of all stages; opt->progress_path
 * gets {"event": "stage", "stage", "index", "stages"} before each stage's
 * own events, "t" counted from the pipeline's start, and one "end" event
 * after the last stage (or the one that failed), the stages' runs writing
 * none.  `res` lists the nodes of all stages as "stage/node".
 * Errors: TRAIN_ECONFIG (not a pipeline, an unknown stage: the message
 * lists the known ones, a settings section no stage takes), and every
 * error of train_run().
 */
TRAIN_API int train_run_pipeline(train_registry *reg, const train_run_options *opt,
                                 const train_pipeline_options *popt, train_run_result *res,
                                 train_error *err);

/* ---- models -------------------------------------------------------------- */

typedef struct train_model train_model;

/**
 * Open a model archive: extract it safely into a private temporary folder
 * (members with absolute paths, "..", or links that leave the model are
 * refused: TRAIN_EUNSAFE), read its metadata, and load each component of
 * its predict schema through the registry.
 */
TRAIN_API int train_model_open(const char *path, train_registry *reg, train_model **out,
                               train_error *err);
/** Removes the temporary folder.  NULL is fine. */
TRAIN_API void train_model_close(train_model *m);
/**
 * Read a model archive's metadata (metadata.json) without extracting it:
 * malloc'd JSON text to *json.  Errors: TRAIN_EIO, TRAIN_EPARSE (not a
 * model archive), TRAIN_EUNSAFE (an unsafe member name).
 */
TRAIN_API int train_model_inspect(const char *path, char **json, train_error *err);
/** The model's metadata, as JSON text (borrowed). */
TRAIN_API const char *train_model_metadata(const train_model *m);
/**
 * Run the predict schema: `in` holds the schema's inputs by name; the
 * outputs of its target nodes are put into `out` as "node" (single output)
 * or "node.output".
 */
TRAIN_API int train_model_predict(train_model *m, const train_values *in, train_values *out,
                                  train_error *err);

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_TRAIN_H */
