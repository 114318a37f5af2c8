/*
 * fuzz_rasa_decode.c - the decoders of the Rasa graph values
 * (train_rasa_decode, <train/rasa.h>), which read bytes from the cache:
 * the first input byte picks the type (NLU, domain, stories), the rest is
 * the value.  Whatever decodes must encode, and that encoding must decode
 * and encode again to the same bytes.
 */
#define FUZZ_NAME "rasa_decode"
#include "fuzz.h"

#include "fuzz_rasa.h"

static int enc_nlu(const void *x, train_value **out, train_error *err)
{
	return train_rasa_nlu_to_value(x, out, err);
}
static int enc_domain(const void *x, train_value **out, train_error *err)
{
	return train_rasa_domain_to_value(x, out, err);
}
static int enc_stories(const void *x, train_value **out, train_error *err)
{
	return train_rasa_stories_to_value(x, out, err);
}
static void free_nlu(void *x) { train_rasa_nlu_free(x); }
static void free_domain(void *x) { train_rasa_domain_free(x); }
static void free_stories(void *x) { train_rasa_stories_free(x); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = { TRAIN_RASA_NLU_TYPE, TRAIN_RASA_DOMAIN_TYPE,
	                                     TRAIN_RASA_STORIES_TYPE };
	static const fuzz_encode_fn encs[] = { enc_nlu, enc_domain, enc_stories };
	static const fuzz_free_fn frees[] = { free_nlu, free_domain, free_stories };
	if (size < 1)
		return 0;
	unsigned k = data[0] % 3;
	void *x = NULL;
	train_error err;
	int rc = train_rasa_decode(types[k], data + 1, size - 1, &x, &err);
	if ((rc == TRAIN_OK) != (x != NULL))
		fuzz_fail("a result exactly when decoding succeeds");
	if (!x)
		return 0;
	train_value *v = NULL;
	if (encs[k](x, &v, &err) != TRAIN_OK)
		fuzz_fail("what decoded must encode");
	fuzz_check_value(v, encs[k], frees[k]);
	train_value_unref(v);
	frees[k](x);
	return 0;
}
