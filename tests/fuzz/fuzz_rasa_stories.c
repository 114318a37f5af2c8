/*
 * fuzz_rasa_stories.c - the Rasa stories reader: train_rasa_stories_parse()
 * (<train/rasa.h>) of the input as one YAML file, then, when it reads,
 * its graph value, which must decode and encode back to the same bytes.
 * train_rasa_classify() runs on the same text, and the stories are
 * resolved into trackers within small bounds.
 */
#define FUZZ_NAME "rasa_stories"
#include "fuzz.h"

#include "fuzz_rasa.h"

static int encode(const void *x, train_value **out, train_error *err)
{
	return train_rasa_stories_to_value(x, out, err);
}

static void release(void *x)
{
	train_rasa_stories_free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	train_rasa_diags *diags;
	train_rasa_stories *x = NULL;
	train_error err;
	int kinds;
	if (train_rasa_diags_create(&diags))
		fuzz_fail("diags_create");
	(void)train_rasa_classify((const char *)data, size, "fuzz.yml", &kinds, &err);
	int rc = train_rasa_stories_parse((const char *)data, size, "fuzz.yml", &x, diags, &err);
	if ((rc == TRAIN_OK) != (x != NULL))
		fuzz_fail("a result exactly when parsing succeeds");
	if (rc != TRAIN_OK && train_rasa_diags_count(diags, TRAIN_RASA_ERROR) == 0)
		fuzz_fail("an error is also in the diagnostics");
	fuzz_check_diags(diags);
	if (x) {
		train_value *v = NULL;
		if (train_rasa_stories_to_value(x, &v, &err) != TRAIN_OK)
			fuzz_fail("what was read must encode");
		fuzz_check_value(v, encode, release);
		train_value_unref(v);
		/* Checkpoints and `or`s resolved, within small bounds. */
		train_rasa_tracker_opts opts = { 1000, 100000 };
		train_rasa_trackers *t = NULL;
		rc = train_rasa_trackers_generate(x, &opts, &t, diags, &err);
		if ((rc == TRAIN_OK) != (t != NULL))
			fuzz_fail("trackers exactly when generation succeeds");
		if (t && t->n_items > opts.max_trackers)
			fuzz_fail("no more trackers than max_trackers");
		train_rasa_trackers_free(t);
	}
	train_rasa_stories_free(x);
	train_rasa_diags_destroy(diags);
	return 0;
}
