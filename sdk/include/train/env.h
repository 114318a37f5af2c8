/*
 * <train/env.h> - the environment ABI: reinforcement-learning environments
 * that a plugin ships beside (or instead of) components (issue 9).
 *
 * An environment class is a batch of `num_envs` independent copies of one
 * environment, stepped together.  A plugin lists its classes in the
 * descriptor's `environments` field (plugin ABI 1.1; write the descriptor
 * with TRAIN_PLUGIN_DEFINE_ENVS).  Components find a class by name with
 * train_ctx_find_env(); programs with train_registry_find_env().
 *
 * Lifecycle:
 *
 *   const train_env_class *cls;  train_ctx_find_env(ctx, "CartPole-v1", &cls);
 *   void *env;  train_env_create(cls, user_config, 4, &env, &err);  // validates
 *   train_space obs, act;  cls->spaces(env, &obs, &act);
 *   cls->reset(env, seed, obs_buf);                        // (num_envs, obs.dim)
 *   cls->step(env, actions, obs_buf, reward, term, trunc, final_obs);  // repeat
 *   cls->destroy(env);
 *
 * Spaces.  Observations are always fp32, laid out (num_envs, obs.dim).
 * Actions are int32 (num_envs) for a DISCRETE space (values in [0, n)) and
 * fp32 (num_envs, dim) for a BOX space.  A BOX space has per-dimension
 * bounds (which may be +-INFINITY); an environment clips out-of-bounds
 * actions itself when its dynamics say so (Pendulum clips the torque).
 *
 * Seeds.  reset(seed) seeds copy i with seed + i, so copy i of a batch of N
 * behaves exactly like copy 0 of a batch of 1 reset with seed + i: a
 * vectorised run equals N single runs, step for step.  Each copy owns its
 * random state; nothing is global.
 *
 * Auto-reset.  When step() ends an episode of copy i (terminated: a
 * terminal state of the dynamics; truncated: a time limit), that copy is
 * reset at once, drawing its new start from its own random stream, and
 * obs[i] is the *first* observation of the next episode.  The last
 * observation of the episode that ended goes to final_obs[i] (when the
 * caller passes final_obs; rows of copies that did not end are left
 * untouched), for bootstrapping a truncated episode.  reward[i] is the
 * reward of the step that ended it.  This is gymnasium's "same-step"
 * auto-reset (gymnasium 0.26-0.29 SyncVectorEnv), which CleanRL uses.
 *
 * Threads: one environment instance is used by one thread at a time;
 * classes keep no global mutable state.
 *
 * Versioning: as component classes (doc/env-abi.md, doc/plugin-abi.md):
 * train_env_class starts with struct_size and only grows at the end; the
 * plugin ABI minor that added a field is written beside it.
 */
#ifndef TRAIN_ENV_H
#define TRAIN_ENV_H

#include <train/common.h>
#include <train/config.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Kinds of observation and action spaces. */
typedef enum train_space_kind {
	TRAIN_SPACE_DISCRETE = 1, /**< one integer in [0, n) per copy (int32) */
	TRAIN_SPACE_BOX = 2,      /**< `dim` floats per copy, within [low, high] */
} train_space_kind;

/**
 * A space.  DISCRETE: `n` choices, dim 1, no bounds.  BOX: `dim` floats
 * with bounds low[dim], high[dim] (owned by the environment, valid until
 * destroy).  Observations are always BOX.
 */
typedef struct train_space {
	train_space_kind kind;
	int32_t n;          /**< DISCRETE: number of actions; BOX: 0 */
	int32_t dim;        /**< floats per copy (BOX) or 1 (DISCRETE) */
	const float *low;   /**< BOX: dim lower bounds; DISCRETE: NULL */
	const float *high;  /**< BOX: dim upper bounds; DISCRETE: NULL */
} train_space;

/**
 * An environment class.  Every call returns TRAIN_OK or a negative code.
 *
 * create(config, num_envs, &self, err)
 *                  Build num_envs (>= 1) copies.  `config` has passed
 *                  validation against `params` (train_env_create does it;
 *                  defaults filled in); copy what you keep.  Say why it
 *                  fails through `err` (may be NULL).
 * spaces(self, obs, act)
 *                  Describe the spaces (fixed for the instance's life).
 * reset(self, seed, obs)
 *                  Start a new episode in every copy, copy i seeded with
 *                  seed + i; write obs (num_envs, obs.dim).  Must be called
 *                  before the first step.
 * step(self, actions, obs, reward, terminated, truncated, final_obs)
 *                  Advance every copy by one step with its action (int32
 *                  (num_envs) or float (num_envs, act.dim)); write obs
 *                  (num_envs, obs.dim), reward (num_envs), terminated and
 *                  truncated (num_envs, 0 or 1), and, where final_obs is not
 *                  NULL, the final observation of each copy whose episode
 *                  ended (see Auto-reset).  TRAIN_EINVAL for a discrete
 *                  action out of range (nothing is stepped) or a call before
 *                  reset.
 * destroy(self)    Free everything (NULL is not passed).
 * save_state(self, &buf, &size)
 *                  Optional (NULL: the class cannot be checkpointed, and a
 *                  trainer cannot resume exactly).  Everything that decides
 *                  future observations (states, step counters, random
 *                  states) as a malloc'd buffer, for this build on this kind
 *                  of machine (byte order, sizes): not an exchange format.
 * load_state(self, buf, size)
 *                  Optional, with save_state.  Put a saved state back into an
 *                  instance made with the same config and num_envs.
 *                  TRAIN_ECORRUPT when the buffer does not fit.
 */
typedef struct train_env_class {
	uint32_t struct_size;   /**< sizeof(train_env_class) as built */
	const char *name;       /**< e.g. "CartPole-v1"; unique in the plugin, no '/' */
	const char *version;    /**< bump when the dynamics change */
	const char *doc;        /**< one line */
	const train_param *params; /**< declared config keys (may be NULL: none) */

	int (*create)(const train_config *config, int num_envs, void **self, train_error *err);
	void (*spaces)(const void *self, train_space *obs, train_space *act);
	int (*reset)(void *self, uint64_t seed, float *obs);
	int (*step)(void *self, const void *actions, float *obs, float *reward,
	            uint8_t *terminated, uint8_t *truncated, float *final_obs);
	void (*destroy)(void *self);
	int (*save_state)(const void *self, void **buf, size_t *size);
	int (*load_state)(void *self, const void *buf, size_t size);
	/* Plugin ABI 1.1 ends here; later minors append below. */
} train_env_class;

/**
 * Validate `user` (a map, NULL or a null node) against cls->params and
 * create `num_envs` copies: the one way hosts and components should build
 * an environment.  `*self` is NULL on failure.
 * Errors: TRAIN_EINVAL (num_envs < 1, NULL class or out), TRAIN_ECONFIG
 * (a bad key, with its location), TRAIN_ENOMEM, or the class's own.
 */
TRAIN_API int train_env_create(const train_env_class *cls, const train_config *user, int num_envs,
                               void **self, train_error *err);

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_ENV_H */
