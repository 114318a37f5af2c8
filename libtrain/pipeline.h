/*
 * libtrain/pipeline.h - pipelines: a recipe file whose `stages:` name
 * other recipes, run one after another with their sections of one
 * settings file (private; pipeline.c, doc/recipes.md "Pipelines").
 */
#ifndef TRAIN_PIPELINE_H
#define TRAIN_PIPELINE_H

#include <jansson.h>
#include <stdbool.h>

#include <train/train.h>

/* What a pipeline tells the run of one of its stages. */
typedef struct train_stage_run {
	double t0; /* the pipeline's start (train_now): the progress stream's "t"
	              counts from it, so that it grows over the whole pipeline */
} train_stage_run;

/*
 * train_run() with the settings tree given instead of read from
 * opt->settings_path (NULL: none), which lets a pipeline hand each stage
 * its section.  `check_settings`: every key of `settings` must be taken by
 * the recipe (target.h); false for a stage that reads other stages'
 * sections.  `metrics` (may be NULL) receives, after a run that trained or
 * restored every node, a JSON object: node name -> the numbers of its JSON
 * outputs (a new reference, or NULL when there are none).  `stage` (NULL:
 * a run of its own) makes it a pipeline's stage: its progress stream has
 * no "end" event (the pipeline writes one when its last stage ends).
 */
int train_run_settings(train_registry *reg, const train_run_options *opt,
                       const train_config *settings, bool check_settings,
                       const train_stage_run *stage, train_run_result *res, json_t **metrics,
                       train_error *err);

/* Whether the recipe file at `path` is a pipeline (a map with `stages`);
 * false when it cannot be read or parsed (train_run then says why). */
bool train_pipeline_detect(const char *path);

/* SHA-256 of a file as 64 lower-case hex digits (out[65]). */
int train_sha256_file(const char *path, char out[65], train_error *err);

#endif
