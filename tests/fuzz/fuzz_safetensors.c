/*
 * fuzz_safetensors.c - the safetensors reader: train_safetensors_open()
 * (<train/optim.h>) of the input, written to a memory file (memfd) and
 * opened through /proc/self/fd, then every tensor, its bytes and the
 * metadata read.  Any input must open with every bound checked or fail
 * with an error; a tensor's view must lie inside the file.
 */
#define FUZZ_NAME "safetensors"
#include "fuzz.h"

#include <sys/mman.h>
#include <train/optim.h>
#include <train/tensor.h>

static void fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz: property broken: %s\n", what);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	if (fd < 0) {
		fd = memfd_create("fuzz.safetensors", MFD_CLOEXEC);
		if (fd < 0)
			fuzz_fail("memfd_create");
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
		fuzz_fail("writing the memory file");
	train_safetensors *f = NULL;
	train_error err;
	if (train_safetensors_open(path, &f, &err) != TRAIN_OK) {
		if (f)
			fuzz_fail("no reader on error");
		return 0;
	}
	volatile unsigned sum = 0;
	size_t n = train_safetensors_count(f);
	for (size_t i = 0; i < n; i++) {
		const char *name = train_safetensors_name_at(f, i);
		if (!name)
			fuzz_fail("a name for every index");
		train_tensor t;
		if (train_safetensors_get(f, name, &t) != TRAIN_OK)
			fuzz_fail("every listed tensor can be got");
		size_t bytes = train_tensor_nbytes(&t);
		const unsigned char *p = t.data;
		/* Touch the first and last byte: ASan/SEGV if the view is outside. */
		if (bytes)
			sum += p[0] + p[bytes - 1];
	}
	(void)train_safetensors_meta(f, "format");
	(void)sum;
	train_safetensors_close(f);
	return 0;
}
