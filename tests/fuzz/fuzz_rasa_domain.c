/*
 * fuzz_rasa_domain.c - the Rasa domain reader: train_rasa_domain_parse()
 * (<train/rasa.h>) of the input as one YAML file, then, when it reads,
 * its graph value, which must decode and encode back to the same bytes.
 * train_rasa_classify() runs on the same text.
 */
#define FUZZ_NAME "rasa_domain"
#include "fuzz.h"

#include "fuzz_rasa.h"

static int encode(const void *x, train_value **out, train_error *err)
{
	return train_rasa_domain_to_value(x, out, err);
}

static void release(void *x)
{
	train_rasa_domain_free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	train_rasa_diags *diags;
	train_rasa_domain *x = NULL;
	train_error err;
	int kinds;
	if (train_rasa_diags_create(&diags))
		fuzz_fail("diags_create");
	(void)train_rasa_classify((const char *)data, size, "fuzz.yml", &kinds, &err);
	int rc = train_rasa_domain_parse((const char *)data, size, "fuzz.yml", &x, diags, &err);
	if ((rc == TRAIN_OK) != (x != NULL))
		fuzz_fail("a result exactly when parsing succeeds");
	if (rc != TRAIN_OK && train_rasa_diags_count(diags, TRAIN_RASA_ERROR) == 0)
		fuzz_fail("an error is also in the diagnostics");
	fuzz_check_diags(diags);
	if (x) {
		train_value *v = NULL;
		if (train_rasa_domain_to_value(x, &v, &err) != TRAIN_OK)
			fuzz_fail("what was read must encode");
		fuzz_check_value(v, encode, release);
		train_value_unref(v);
	}
	train_rasa_domain_free(x);
	train_rasa_diags_destroy(diags);
	return 0;
}
