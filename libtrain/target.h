/*
 * libtrain/target.h - a target's settings file applied to its recipe
 * (private; see target.c and doc/recipes.md, "Targets").
 */
#ifndef TRAIN_TARGET_H
#define TRAIN_TARGET_H

#include "recipe.h"

#include <stdbool.h>

/*
 * Replace every `$config.a.b` string value in the node configs of `r`
 * (both schemas) by a copy of the value at a.b in `settings`, or leave the
 * key out when `settings` (which may be NULL) does not set it.  Then check
 * that every key of `settings` is taken by a reference or listed in the
 * recipe's config_ignored (a note on `log` with the reason), unless not
 * `check` (a pipeline's data stage reads other stages' sections: their
 * keys are checked by their own stages, pipeline.c).
 * Errors, at the place in the recipe or settings file: TRAIN_ECONFIG (a
 * malformed reference, a key the target does not know: the message lists
 * the known ones, settings that are not a map), TRAIN_ENOMEM.
 */
int train_target_apply(train_recipe *r, const train_config *settings, bool check,
                       const train_log_sink *log, train_error *err);

/*
 * The settings of a run: opt->settings_path's file (when set and
 * opt->struct_size covers it), then each of opt->settings_set applied in
 * order (train_config_set_path, at the flag's text).  *out is NULL when
 * there is neither.  Errors: train_config_load()'s, train_config_set_path()'s.
 */
int train_settings_load(const train_run_options *opt, train_config **out, train_error *err);

#endif
