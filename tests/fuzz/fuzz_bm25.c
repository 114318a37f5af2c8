/*
 * fuzz_bm25.c - the RAG plugin's BM25 index reader: bm25_open_mem() of the
 * input (as a model package's bm25.idx is read), then searches.  Any input
 * must open with every offset, count and posting checked, or fail with a
 * message; an index that opens must answer queries with ids below its
 * document count, best first.
 */
#define FUZZ_NAME "bm25"
#include "fuzz.h"

#include <train/common.h>

#include "../../plugins/rag/bm25.h"

static void fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz: property broken: %s\n", what);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	void *buf = NULL;
	if (posix_memalign(&buf, 64, size ? size : 1))
		fuzz_fail("posix_memalign");
	if (size)
		memcpy(buf, data, size);
	bm25 *ix = NULL;
	char err[256] = "";
	int rc = bm25_open_mem(buf, size, "fuzz.idx", &ix, err);
	if (rc) {
		if (ix)
			fuzz_fail("an index on error");
		if (rc != TRAIN_ENOMEM && !strstr(err, "fuzz.idx"))
			fuzz_fail("an error that does not name the file");
		free(buf);
		return 0;
	}
	/* the input's last bytes as one more query (any bytes, as users type) */
	char tail[33];
	size_t nt = size < 32 ? size : 32;
	memcpy(tail, data + size - nt, nt);
	tail[nt] = '\0';
	const char *queries[] = { "cat", "the cat sat", "operating operators", "a b c d", tail };
	for (size_t q = 0; q < sizeof queries / sizeof *queries; q++) {
		uint32_t ids[8];
		float sc[8];
		size_t n = bm25_search(ix, queries[q], 8, ids, sc);
		for (size_t i = 0; i < n; i++) {
			if (ids[i] >= bm25_docs(ix))
				fuzz_fail("a document id past the count");
			if (!(sc[i] > 0) || (i && sc[i] > sc[i - 1]))
				fuzz_fail("scores not positive and best first");
		}
	}
	bm25_destroy(ix);
	free(buf);
	return 0;
}
