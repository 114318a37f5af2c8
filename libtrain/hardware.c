/*
 * hardware.c - train_hardware_detect(): CPUID, /proc, /sys and statvfs().
 */
#include <train/hardware.h>

#include <ctype.h>
#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

/* ---- CPUID ----------------------------------------------------------------- */

#if defined(__x86_64__) || defined(__i386__)
static uint64_t xcr0(void)
{
	unsigned lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((uint64_t)hi << 32) | lo;
}

static void cpu_ids(train_hardware *hw)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(0, &a, &b, &c, &d))
		return;
	unsigned max_leaf = a;
	memcpy(hw->cpu_vendor, &b, 4);
	memcpy(hw->cpu_vendor + 4, &d, 4);
	memcpy(hw->cpu_vendor + 8, &c, 4);
	hw->cpu_vendor[12] = '\0';

	if (__get_cpuid_max(0x80000000u, NULL) >= 0x80000004u) {
		char brand[49] = { 0 };
		for (unsigned i = 0; i < 3; i++) {
			__get_cpuid(0x80000002u + i, &a, &b, &c, &d);
			memcpy(brand + 16 * i, &a, 4);
			memcpy(brand + 16 * i + 4, &b, 4);
			memcpy(brand + 16 * i + 8, &c, 4);
			memcpy(brand + 16 * i + 12, &d, 4);
		}
		const char *s = brand;
		while (*s == ' ')
			s++;
		snprintf(hw->cpu_model, sizeof hw->cpu_model, "%s", s);
		size_t l = strlen(hw->cpu_model);
		while (l && hw->cpu_model[l - 1] == ' ')
			hw->cpu_model[--l] = '\0';
	}

	__get_cpuid(1, &a, &b, &c, &d);
	uint32_t isa = 0;
	if (c & (1u << 20))
		isa |= TRAIN_ISA_SSE42;
	uint64_t x = (c & (1u << 27)) ? xcr0() : 0; /* OSXSAVE */
	int os_avx = (x & 0x6) == 0x6, os_avx512 = (x & 0xe6) == 0xe6,
	    os_amx = (x & 0x60000) == 0x60000;
	if (os_avx) {
		if (c & (1u << 28))
			isa |= TRAIN_ISA_AVX;
		if (c & (1u << 12))
			isa |= TRAIN_ISA_FMA;
		if (c & (1u << 29))
			isa |= TRAIN_ISA_F16C;
	}
	if (max_leaf >= 7) {
		__cpuid_count(7, 0, a, b, c, d);
		unsigned max_sub = a;
		if (os_avx && (b & (1u << 5)))
			isa |= TRAIN_ISA_AVX2;
		if (os_avx512) {
			if (b & (1u << 16))
				isa |= TRAIN_ISA_AVX512F;
			if (b & (1u << 30))
				isa |= TRAIN_ISA_AVX512BW;
			if (b & (1u << 31))
				isa |= TRAIN_ISA_AVX512VL;
			if (c & (1u << 11))
				isa |= TRAIN_ISA_AVX512_VNNI;
			if (d & (1u << 23))
				isa |= TRAIN_ISA_AVX512_FP16;
		}
		if (os_amx) {
			if (d & (1u << 24))
				isa |= TRAIN_ISA_AMX_TILE;
			if (d & (1u << 22))
				isa |= TRAIN_ISA_AMX_BF16;
			if (d & (1u << 25))
				isa |= TRAIN_ISA_AMX_INT8;
		}
		if (max_sub >= 1) {
			__cpuid_count(7, 1, a, b, c, d);
			if (os_avx && (a & (1u << 4)))
				isa |= TRAIN_ISA_AVX_VNNI;
			if (os_avx512 && (isa & TRAIN_ISA_AVX512F) && (a & (1u << 5)))
				isa |= TRAIN_ISA_AVX512_BF16;
		}
	}
	hw->isa = isa;
}
#else
static void cpu_ids(train_hardware *hw) { (void)hw; }
#endif

/* ---- small file readers ---------------------------------------------------- */

/* The first line of a file, without its newline; 0 if it was read. */
static int read_line(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int ok = fgets(buf, (int)cap, f) != NULL;
	fclose(f);
	if (!ok)
		return -1;
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

/* The cgroup v2 folder of this process ("/sys/fs/cgroup/..."), or "". */
static void cgroup_dir(char *out, size_t cap)
{
	out[0] = '\0';
	FILE *f = fopen("/proc/self/cgroup", "r");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, "0::", 3)) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(out, cap, "/sys/fs/cgroup%.480s", strcmp(line + 3, "/") ? line + 3 : "");
			break;
		}
	}
	fclose(f);
}

/* A cgroup file's number ("max" and unreadable: 0). */
static uint64_t cgroup_u64(const char *dir, const char *name)
{
	char path[1024], buf[64];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (read_line(path, buf, sizeof buf) || !isdigit((unsigned char)buf[0]))
		return 0;
	return strtoull(buf, NULL, 10);
}

/* ---- CPUs ------------------------------------------------------------------ */

static void cpu_counts(train_hardware *hw, const char *cg)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	int threads = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
	if (threads <= 0)
		threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (threads <= 0)
		threads = 1;
	/* cgroup v2 "quota period": a quota below the CPUs caps the threads. */
	if (cg[0]) {
		char path[1024], buf[64];
		snprintf(path, sizeof path, "%s/cpu.max", cg);
		long long quota, period;
		if (!read_line(path, buf, sizeof buf) && sscanf(buf, "%lld %lld", &quota, &period) == 2 &&
		    quota > 0 && period > 0) {
			int q = (int)((quota + period - 1) / period);
			if (q >= 1 && q < threads)
				threads = q;
		}
	}
	hw->threads = threads;

	/* Physical cores: distinct (package, core) pairs of the CPUs on line. */
	enum { MAX_PAIRS = 4096 };
	int (*pairs)[2] = calloc(MAX_PAIRS, sizeof *pairs);
	int npairs = 0, maxpkg = -1;
	DIR *d = pairs ? opendir("/sys/devices/system/cpu") : NULL;
	struct dirent *e;
	while (d && (e = readdir(d))) {
		if (strncmp(e->d_name, "cpu", 3) || !isdigit((unsigned char)e->d_name[3]))
			continue;
		char path[320], buf[32];
		int pkg, core;
		snprintf(path, sizeof path, "/sys/devices/system/cpu/%s/online", e->d_name);
		if (!read_line(path, buf, sizeof buf) && buf[0] == '0')
			continue;
		snprintf(path, sizeof path, "/sys/devices/system/cpu/%s/topology/physical_package_id",
		         e->d_name);
		if (read_line(path, buf, sizeof buf))
			continue;
		pkg = atoi(buf);
		snprintf(path, sizeof path, "/sys/devices/system/cpu/%s/topology/core_id", e->d_name);
		if (read_line(path, buf, sizeof buf))
			continue;
		core = atoi(buf);
		int seen = 0;
		for (int i = 0; i < npairs && !seen; i++)
			seen = pairs[i][0] == pkg && pairs[i][1] == core;
		if (!seen && npairs < MAX_PAIRS) {
			pairs[npairs][0] = pkg;
			pairs[npairs][1] = core;
			npairs++;
		}
		if (pkg > maxpkg)
			maxpkg = pkg;
	}
	if (d)
		closedir(d);
	free(pairs);
	hw->cores = npairs > 0 ? npairs : threads;
	hw->sockets = maxpkg >= 0 ? maxpkg + 1 : 1;
}

/* ---- memory, disk, GPUs ---------------------------------------------------- */

static void memory(train_hardware *hw, const char *cg)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	unsigned long long kb;
	while (f && fgets(line, sizeof line, f)) {
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			hw->mem_total = kb * 1024;
		else if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			hw->mem_available = kb * 1024;
	}
	if (f)
		fclose(f);
	if (cg[0]) {
		uint64_t limit = cgroup_u64(cg, "memory.max"), used = cgroup_u64(cg, "memory.current");
		if (limit && (!hw->mem_total || limit < hw->mem_total)) {
			hw->mem_total = limit;
			uint64_t left = limit > used ? limit - used : 0;
			if (!hw->mem_available || left < hw->mem_available)
				hw->mem_available = left;
		}
	}
}

static const char *gpu_vendor(unsigned v)
{
	switch (v) {
	case 0x10de: return "NVIDIA";
	case 0x1002: return "AMD";
	case 0x8086: return "Intel";
	default: return NULL; /* virtual displays (QEMU, virtio, VMware) are not GPUs */
	}
}

static void gpus(train_hardware *hw)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;
	while (d && (e = readdir(d)) && hw->n_gpus < TRAIN_HW_MAX_GPUS) {
		if (e->d_name[0] == '.')
			continue;
		char path[320], buf[32];
		snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/class", e->d_name);
		if (read_line(path, buf, sizeof buf) || strncmp(buf, "0x03", 4))
			continue; /* not a display controller */
		unsigned vendor = 0, device = 0;
		snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/vendor", e->d_name);
		if (!read_line(path, buf, sizeof buf))
			vendor = (unsigned)strtoul(buf, NULL, 16);
		snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/device", e->d_name);
		if (!read_line(path, buf, sizeof buf))
			device = (unsigned)strtoul(buf, NULL, 16);
		const char *name = gpu_vendor(vendor);
		if (!name)
			continue;
		snprintf(hw->gpus[hw->n_gpus++], sizeof hw->gpus[0], "%s %04x:%04x (PCI %.16s)", name,
		         vendor, device, e->d_name);
	}
	if (d)
		closedir(d);
	/* A GPU passed into a container shows as device nodes only. */
	if (!hw->n_gpus && access("/dev/nvidia0", F_OK) == 0)
		snprintf(hw->gpus[hw->n_gpus++], sizeof hw->gpus[0], "NVIDIA (/dev/nvidia0)");
}

int train_hardware_detect(train_hardware *hw, const char *dir)
{
	if (!hw)
		return TRAIN_EINVAL;
	memset(hw, 0, sizeof *hw);
	hw->struct_size = sizeof *hw;
	char cg[512];
	cgroup_dir(cg, sizeof cg);
	cpu_ids(hw);
	cpu_counts(hw, cg);
	memory(hw, cg);
	struct statvfs vfs;
	if (statvfs(dir ? dir : ".", &vfs) == 0)
		hw->disk_free = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	gpus(hw);
	hw->bf16_native = (hw->isa & (TRAIN_ISA_AVX512_BF16 | TRAIN_ISA_AMX_BF16)) != 0;
	hw->precision = hw->bf16_native ? "bf16" : "fp32";
	return TRAIN_OK;
}

const char *train_hardware_isa_names(uint32_t isa, char *buf, size_t cap)
{
	static const char *const names[] = { "sse4.2",      "avx",         "avx2",
		                             "fma",         "f16c",        "avx512f",
		                             "avx512bw",    "avx512vl",    "avx512_vnni",
		                             "avx512_bf16", "avx512_fp16", "avx_vnni",
		                             "amx_tile",    "amx_bf16",    "amx_int8" };
	size_t o = 0;
	if (cap)
		buf[0] = '\0';
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		if (!(isa & (1u << i)))
			continue;
		int n = snprintf(buf + o, o < cap ? cap - o : 0, "%s%s", o ? " " : "", names[i]);
		if (n < 0 || o + (size_t)n >= cap) {
			if (o < cap)
				buf[o] = '\0'; /* whole names only */
			break;
		}
		o += (size_t)n;
	}
	return buf;
}
