/*
 * test_hardware.c - train_hardware_detect() against what the kernel says
 * in /proc/cpuinfo, /proc/meminfo and statvfs().
 */
#include <train/hardware.h>
#include <train/kernels.h>

#include <sys/statvfs.h>

#include "testlib.h"

static train_hardware hw;

/* The "flags" line of /proc/cpuinfo, or NULL. */
static char *cpuinfo_flags(void)
{
	static char line[8192];
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (!f)
		return NULL;
	char *found = NULL;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, "flags", 5)) {
			line[strcspn(line, "\n")] = '\0';
			strcat(line, " ");
			found = strchr(line, ':');
			break;
		}
	fclose(f);
	return found;
}

static int has_flag(const char *flags, const char *name)
{
	char word[64];
	snprintf(word, sizeof word, " %s ", name);
	return strstr(flags, word) != NULL;
}

static void test_counts(void)
{
	CU_ASSERT_EQUAL(train_hardware_detect(&hw, test_tmpdir()), TRAIN_OK);
	CU_ASSERT_EQUAL(hw.struct_size, sizeof hw);
	CU_ASSERT_TRUE(hw.threads >= 1);
	CU_ASSERT_TRUE(hw.cores >= 1);
	CU_ASSERT_TRUE(hw.sockets >= 1 && hw.sockets <= hw.cores);
	CU_ASSERT_TRUE(hw.mem_total > 0);
	CU_ASSERT_TRUE(hw.mem_available <= hw.mem_total);
	CU_ASSERT_TRUE(hw.precision && (!strcmp(hw.precision, "bf16") || !strcmp(hw.precision, "fp32")));
	CU_ASSERT_EQUAL(hw.bf16_native, !strcmp(hw.precision, "bf16"));
	CU_ASSERT_TRUE(hw.n_gpus >= 0 && hw.n_gpus <= TRAIN_HW_MAX_GPUS);
	CU_ASSERT_EQUAL(train_hardware_detect(NULL, NULL), TRAIN_EINVAL);
}

static void test_disk(void)
{
	struct statvfs v;
	CU_ASSERT_EQUAL_FATAL(statvfs(test_tmpdir(), &v), 0);
	uint64_t want = (uint64_t)v.f_bavail * v.f_frsize;
	/* other processes write meanwhile: within 1 % */
	double diff = (double)hw.disk_free - (double)want;
	CU_ASSERT_TRUE(diff < 0.01 * (double)want + 1e6 && -diff < 0.01 * (double)want + 1e6);
	train_hardware h2;
	train_hardware_detect(&h2, "/nonexistent/folder");
	CU_ASSERT_EQUAL(h2.disk_free, 0);
}

/* Each ISA bit agrees with the kernel's flag of the same feature (the
 * kernel, too, lists only what it saves the registers of). */
static void test_isa(void)
{
	CU_ASSERT_EQUAL(hw.bf16_native, train_cpu_has_bf16());
	const char *flags = cpuinfo_flags();
	if (!flags) {
		test_skip("no flags in /proc/cpuinfo");
		return;
	}
	/* valgrind runs the program on a CPU of its own (no AVX-512): CPUID
	 * then answers for that one, /proc/cpuinfo for the real one. */
	const char *pre = getenv("LD_PRELOAD");
	if (pre && strstr(pre, "vgpreload")) {
		fprintf(stderr, "  (flags not compared: under valgrind CPUID describes valgrind's CPU)\n");
		return;
	}
	static const struct { uint32_t bit; const char *flag; } map[] = {
		{ TRAIN_ISA_SSE42, "sse4_2" },         { TRAIN_ISA_AVX, "avx" },
		{ TRAIN_ISA_AVX2, "avx2" },            { TRAIN_ISA_FMA, "fma" },
		{ TRAIN_ISA_F16C, "f16c" },            { TRAIN_ISA_AVX512F, "avx512f" },
		{ TRAIN_ISA_AVX512BW, "avx512bw" },    { TRAIN_ISA_AVX512VL, "avx512vl" },
		{ TRAIN_ISA_AVX512_VNNI, "avx512_vnni" }, { TRAIN_ISA_AVX512_BF16, "avx512_bf16" },
		{ TRAIN_ISA_AVX512_FP16, "avx512_fp16" }, { TRAIN_ISA_AVX_VNNI, "avx_vnni" },
		{ TRAIN_ISA_AMX_TILE, "amx_tile" },    { TRAIN_ISA_AMX_BF16, "amx_bf16" },
		{ TRAIN_ISA_AMX_INT8, "amx_int8" },
	};
	for (size_t i = 0; i < sizeof map / sizeof *map; i++) {
		int ours = (hw.isa & map[i].bit) != 0, kernel = has_flag(flags, map[i].flag);
		if (ours != kernel)
			fprintf(stderr, "  %s: ours %d, /proc/cpuinfo %d\n", map[i].flag, ours, kernel);
		CU_ASSERT_EQUAL(ours, kernel);
	}
	char buf[512];
	train_hardware_isa_names(TRAIN_ISA_AVX2 | TRAIN_ISA_FMA, buf, sizeof buf);
	CU_ASSERT_STRING_EQUAL(buf, "avx2 fma");
	train_hardware_isa_names(0xffffffffu, buf, 12); /* cut at a whole name */
	CU_ASSERT_STRING_EQUAL(buf, "sse4.2 avx");
	train_hardware_isa_names(0, buf, sizeof buf);
	CU_ASSERT_STRING_EQUAL(buf, "");
}

int main(void)
{
	static const test_case cases[] = {
		{ "counts", test_counts },
		{ "disk", test_disk },
		{ "isa against /proc/cpuinfo", test_isa },
		{ NULL, NULL },
	};
	return test_main("hardware", cases);
}
