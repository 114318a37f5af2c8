/*
 * <train/plugin.h> - the plugin ABI: what a shared object must export to
 * give libtrain components.
 *
 * A plugin is a shared object that exports one symbol,
 * `train_plugin_descriptor`, a const train_plugin_desc.  Write it with
 * TRAIN_PLUGIN_DEFINE().  The host opens the file (libltdl, local symbols),
 * reads the descriptor, checks it *before running any plugin code*:
 *
 *  - abi_major must equal the host's TRAIN_ABI_MAJOR;
 *  - abi_minor must be <= the host's TRAIN_ABI_MINOR (a plugin built
 *    against a newer minor may rely on host features this host lacks);
 *  - struct_size, name, version, license and the component list must be set,
 *    and every class must have create, train, persist, load and destroy;
 *
 * then calls init (if any) and registers the classes by name.
 *
 * Stability (doc/plugin-abi.md says it in full): a minor bump may only
 * append fields at the end of train_plugin_desc and train_component_class
 * (each carries its struct_size, so the host reads a new field only when
 * the plugin's struct is large enough) and add host functions.  Anything
 * else (removing, reordering or retyping a field, changing a call's
 * meaning) needs a major bump.
 *
 * Plugins link against libtrain.so and call its functions directly
 * (pkg-config --libs libtrain).
 *
 * Threads: the runner may call train()/process() of *different* component
 * instances at the same time on different threads; one instance is only
 * ever used by one thread at a time.
 */
#ifndef TRAIN_PLUGIN_H
#define TRAIN_PLUGIN_H

#include <train/common.h>
#include <train/config.h>
#include <train/value.h>
#include <train/resource.h>
#include <train/env.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TRAIN_ABI_MAJOR 1
#define TRAIN_ABI_MINOR 1

/** The symbol every plugin exports. */
#define TRAIN_PLUGIN_SYMBOL "train_plugin_descriptor"

/* ---- the context a component runs in ------------------------------------ */

/**
 * Per-call context from the host: logging, progress, run settings.
 * Borrowed; valid for the duration of the call it was passed to.
 */
typedef struct train_ctx train_ctx;

/** Log a line, prefixed by the node's name.  No trailing newline needed. */
TRAIN_API void train_log(train_ctx *ctx, train_log_level level, const char *fmt, ...)
	TRAIN_PRINTF(3, 4);
/**
 * Say why the current call fails; the runner prints it with the node's
 * name.  Returns TRAIN_ECOMPONENT so a component can `return train_fail(...)`.
 */
TRAIN_API int train_fail(train_ctx *ctx, const char *fmt, ...) TRAIN_PRINTF(2, 3);
/** Report progress (e.g. epoch 3 of 10). */
TRAIN_API void train_progress(train_ctx *ctx, uint64_t done, uint64_t total);
/** The same with the training loss at that point (for the run's progress
 *  stream, train_run_options.progress_path; a non-finite loss is left out).
 *  Since plugin ABI 1.1. */
TRAIN_API void train_progress_loss(train_ctx *ctx, uint64_t done, uint64_t total, double loss);
/** The same with the learning rate of that step too (the job service draws
 *  it beside the loss; a non-finite value is left out).  Since plugin ABI
 *  1.1 (added before the next baseline, issue 11). */
TRAIN_API void train_progress_lr(train_ctx *ctx, uint64_t done, uint64_t total, double loss,
                                 double lr);
/** The same with more per-step metrics: n pairs of a name (lower-case
 *  letters, digits and '_'; not loss, step, total, node, event or t)
 *  and a value, each added to the step's line of the progress stream (say
 *  "lr" as train_progress_lr names the learning rate, "grad_norm",
 *  "tokens_per_second", "rss_bytes");
 *  other names and non-finite values are left out.  Plugin ABI 1.1
 *  (issue 10). */
TRAIN_API void train_progress_metrics(train_ctx *ctx, uint64_t done, uint64_t total, double loss,
                                      const char *const *names, const double *values, size_t n);
/** Non-zero when the run has been asked to stop: return TRAIN_ECANCELED soon. */
TRAIN_API int train_ctx_canceled(const train_ctx *ctx);
/** Threads this component may use for its own work (>= 1). */
TRAIN_API int train_ctx_threads(const train_ctx *ctx);
/** Name of the graph node being run. */
TRAIN_API const char *train_ctx_node(const train_ctx *ctx);
/**
 * Finetuning: non-zero when the component was made by load() from an
 * earlier model and train() should continue from it.  epoch_fraction is the
 * share of the configured epochs to run (1.0 when not finetuning).
 */
TRAIN_API int train_ctx_finetuning(const train_ctx *ctx);
TRAIN_API double train_ctx_epoch_fraction(const train_ctx *ctx);
/** Folder the recipe was read from (to resolve relative paths), or ".". */
TRAIN_API const char *train_ctx_base_dir(const train_ctx *ctx);
/**
 * Resolve a PATH-typed config value the way the host fingerprinted it:
 * "$data" and "$domain" (alone or followed by "/rest") stand for the
 * run's --data and --domain; other relative paths are taken from the
 * recipe's folder.  Returns a malloc'd path (free() it), NULL when out of
 * memory or when "$data"/"$domain" was not given.
 */
TRAIN_API char *train_ctx_resolve(const train_ctx *ctx, const char *path);
/**
 * Find an environment class (<train/env.h>) by "Name" or "plugin/Name"
 * among the loaded plugins (plugin ABI 1.1).  On failure the reason is set
 * as by train_fail() and TRAIN_ENOTFOUND (no such class, or the context
 * has no registry) or TRAIN_EEXIST (two plugins offer it) is returned.
 */
TRAIN_API int train_ctx_find_env(train_ctx *ctx, const char *name, const train_env_class **cls);
/**
 * Checkpoints of a long training run (plugin ABI 1.1).  The folder, made by
 * the host, where this node may keep checkpoints: it belongs to the node's
 * fingerprint (its class, config and inputs), so whatever a component finds
 * there was written by the same training; the host removes it when the
 * node has trained.  NULL when the run keeps no checkpoints (e.g. predict).
 * Write files under a temporary name and rename them.
 */
TRAIN_API const char *train_ctx_checkpoint_dir(const train_ctx *ctx);
/** Non-zero when the run was asked to resume (`train --resume`): continue
 * from the newest checkpoint in train_ctx_checkpoint_dir() if there is one,
 * so that the result equals an uninterrupted run. */
TRAIN_API int train_ctx_resuming(const train_ctx *ctx);

/* ---- component classes --------------------------------------------------- */

/**
 * A component class.  All function pointers receive `self` as made by
 * create() or load().  Return TRAIN_OK or a negative code (use train_fail()
 * to say why).
 *
 * create(config, ctx, &self)   Build an untrained component.  `config` has
 *                              passed validation against `params` (defaults
 *                              filled in).  Must be cheap: the host creates
 *                              a component to fingerprint it even when its
 *                              output comes from the cache.
 * fingerprint(self, h)         Optional.  Add to `h` whatever besides the
 *                              config and inputs decides the output.
 * train(self, in, out, ctx)    Learn from `in`; put every declared output
 *                              into `out`.
 * process(self, in, out, ctx)  Optional.  Inference: put outputs for `in`.
 * persist(self, res)           Write the trained state into `res`.
 * load(config, res, ctx, &self) Rebuild a trained component.
 * destroy(self)                Free everything; must accept a component that
 *                              never trained.
 */
typedef struct train_component_class {
	uint32_t struct_size;   /**< sizeof(train_component_class) as built */
	const char *name;       /**< unique component name, e.g. "WordCount" */
	const char *version;    /**< bump when output for the same input changes */
	const char *doc;        /**< one line */
	const char *const *inputs;  /**< NULL-terminated input names (may be NULL: none) */
	const char *const *outputs; /**< NULL-terminated output names (may be NULL: none) */
	/** Inputs and outputs of process(), where they differ from train()'s
	 * (a classifier trains on examples but predicts from a text).  NULL:
	 * the same as `inputs` / `outputs`. */
	const char *const *process_inputs;
	const char *const *process_outputs;
	const train_param *params;  /**< declared config keys (may be NULL: none) */

	int (*create)(const train_config *config, train_ctx *ctx, void **self);
	int (*fingerprint)(void *self, train_hasher *h);
	int (*train)(void *self, const train_values *in, train_values *out, train_ctx *ctx);
	int (*process)(void *self, const train_values *in, train_values *out, train_ctx *ctx);
	int (*persist)(void *self, train_resource *res);
	int (*load)(const train_config *config, const train_resource *res, train_ctx *ctx, void **self);
	void (*destroy)(void *self);
	/* ABI 1.0 ends here; later minors append below. */
} train_component_class;

/* ---- the plugin descriptor ----------------------------------------------- */

#define TRAIN_PLUGIN_RESERVED 8

typedef struct train_plugin_desc {
	uint32_t abi_major;     /**< TRAIN_ABI_MAJOR the plugin was built with */
	uint32_t abi_minor;     /**< TRAIN_ABI_MINOR the plugin was built with */
	uint32_t struct_size;   /**< sizeof(train_plugin_desc) as built */
	const char *name;       /**< plugin name, e.g. "tokenizers" */
	const char *version;    /**< plugin version */
	const char *license;    /**< SPDX identifier, e.g. "MIT" */
	const char *description;/**< one line */
	/** NULL-terminated list of component classes. */
	const train_component_class *const *components;
	/** NULL-terminated list of environment classes (<train/env.h>), or
	 * NULL.  ABI 1.1; the host ignores it in a 1.0 plugin. */
	const train_env_class *const *environments;
	/** Optional: runs once after the checks pass; non-zero refuses the plugin. */
	int (*init)(void);
	void *reserved[TRAIN_PLUGIN_RESERVED];
} train_plugin_desc;

#if defined(__GNUC__)
#define TRAIN_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define TRAIN_PLUGIN_EXPORT
#endif

/**
 * Define the plugin's descriptor.  Use once per plugin:
 *
 *   static const train_component_class *const classes[] = { &my_class, NULL };
 *   TRAIN_PLUGIN_DEFINE("myplugin", "1.0.0", "MIT", "What it offers", classes);
 */
#define TRAIN_PLUGIN_DEFINE(NAME, VERSION, LICENSE, DESCRIPTION, CLASSES) \
	TRAIN_PLUGIN_EXPORT const train_plugin_desc train_plugin_descriptor = { \
		.abi_major = TRAIN_ABI_MAJOR, \
		.abi_minor = TRAIN_ABI_MINOR, \
		.struct_size = sizeof(train_plugin_desc), \
		.name = (NAME), \
		.version = (VERSION), \
		.license = (LICENSE), \
		.description = (DESCRIPTION), \
		.components = (CLASSES), \
		.environments = NULL, \
		.init = NULL, \
		.reserved = { 0 }, \
	}

/**
 * The same with environment classes (plugin ABI 1.1); CLASSES may be an
 * empty list:
 *
 *   static const train_env_class *const envs[] = { &my_env, NULL };
 *   TRAIN_PLUGIN_DEFINE_ENVS("myenvs", "1.0.0", "MIT", "What it offers", no_classes, envs);
 */
#define TRAIN_PLUGIN_DEFINE_ENVS(NAME, VERSION, LICENSE, DESCRIPTION, CLASSES, ENVS) \
	TRAIN_PLUGIN_EXPORT const train_plugin_desc train_plugin_descriptor = { \
		.abi_major = TRAIN_ABI_MAJOR, \
		.abi_minor = TRAIN_ABI_MINOR, \
		.struct_size = sizeof(train_plugin_desc), \
		.name = (NAME), \
		.version = (VERSION), \
		.license = (LICENSE), \
		.description = (DESCRIPTION), \
		.components = (CLASSES), \
		.environments = (ENVS), \
		.init = NULL, \
		.reserved = { 0 }, \
	}

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_PLUGIN_H */
