/*
 * fuzz_features.c - the decoder of the features value (train_features_decode,
 * <train/features.h>), which reads bytes from the cache: whatever decodes
 * holds to its bounds (offsets, columns, spans), encodes, and its encoding
 * decodes and encodes again to the same bytes.
 */
#define FUZZ_NAME "features"
#include "fuzz.h"

#include <train/features.h>

static void fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz: property broken: %s\n", what);
	abort();
}

/* Strict UTF-8 without NUL, decoded here apart from the library's check. */
static int utf8_ok(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i], need, cp;
		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xE0) == 0xC0) { need = 1; cp = c & 0x1F; }
		else if ((c & 0xF0) == 0xE0) { need = 2; cp = c & 0x0F; }
		else if ((c & 0xF8) == 0xF0) { need = 3; cp = c & 0x07; }
		else return 0;
		if (n - i <= need)
			return 0;
		for (unsigned j = 1; j <= need; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + j] & 0x3Fu);
		}
		static const unsigned min[] = { 0, 0x80, 0x800, 0x10000 };
		if (cp < min[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += need + 1;
	}
	return 1;
}

static void check_bounds(const train_features *f)
{
	for (size_t m = 0; m < f->n_messages; m++) {
		const train_feat_message *msg = &f->messages[m];
		if (strlen(msg->text) != msg->text_len || !utf8_ok((const unsigned char *)msg->text, msg->text_len))
			fuzz_fail("message texts are UTF-8 of their length");
		for (size_t t = 0; t < msg->n_tokens; t++)
			if (msg->tokens[t].start > msg->tokens[t].end || msg->tokens[t].end > msg->text_chars)
				fuzz_fail("tokens lie in their text");
		for (size_t e = 0; e < msg->n_entities; e++)
			if (msg->entities[e].end > msg->text_chars || msg->entities[e].byte_end > msg->text_len)
				fuzz_fail("entities lie in their text");
		for (size_t b = 0; b < f->n_blocks; b++) {
			const train_feat_matrix *x = &msg->features[b];
			if (x->rows != msg->n_tokens + 1)
				fuzz_fail("n_tokens + 1 rows");
			if (f->blocks[b].kind != TRAIN_FEAT_SPARSE)
				continue;
			if (x->indptr[0] != 0 || x->indptr[x->rows] != x->nnz)
				fuzz_fail("row offsets cover the entries");
			for (uint32_t r = 0; r < x->rows; r++)
				for (uint32_t j = x->indptr[r]; j < x->indptr[r + 1]; j++)
					if (x->indices[j] >= f->blocks[b].dim || (j > x->indptr[r] && x->indices[j] <= x->indices[j - 1]))
						fuzz_fail("columns increase within a row and stay below dim");
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	train_features *f = NULL, *g = NULL;
	train_error err;
	int rc = train_features_decode(data, size, &f, &err);
	if ((rc == TRAIN_OK) != (f != NULL))
		fuzz_fail("a result exactly when decoding succeeds");
	if (!f)
		return 0;
	check_bounds(f);
	train_value *v = NULL, *w = NULL;
	if (train_features_to_value(f, &v, &err) != TRAIN_OK)
		fuzz_fail("what decoded must encode");
	if (train_value_size(v) != size || memcmp(train_value_data(v), data, size) != 0)
		fuzz_fail("one encoding per set: the bytes come back as they were");
	if (train_features_from_value(v, &g, &err) != TRAIN_OK || train_features_to_value(g, &w, &err) != TRAIN_OK)
		fuzz_fail("an encoding decodes and encodes again");
	if (train_value_size(v) != train_value_size(w) ||
	    memcmp(train_value_data(v), train_value_data(w), train_value_size(v)) != 0)
		fuzz_fail("the same bytes the second time");
	train_value_unref(v);
	train_value_unref(w);
	train_features_free(g);
	train_features_free(f);
	return 0;
}
