/*
 * <train/hardware.h> - what this machine offers for training: the CPU, its
 * instruction sets, memory, free disk, and GPUs seen.
 *
 * `train hardware` prints this; `train check` and the job service use it
 * to decide a precision, a batch size and whether a model fits.  Nothing
 * here needs privileges: it reads CPUID, /proc, /sys and statvfs().  Limits
 * set by a cgroup (a container's CPU quota or memory limit) count: `threads`
 * and `mem_available` are what this process may really use.
 */
#ifndef TRAIN_HARDWARE_H
#define TRAIN_HARDWARE_H

#include <train/common.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Instruction-set features (bits of train_hardware.isa): only those the
 *  CPU has AND the operating system saves the registers of. */
enum {
	TRAIN_ISA_SSE42       = 1u << 0,
	TRAIN_ISA_AVX         = 1u << 1,
	TRAIN_ISA_AVX2        = 1u << 2,
	TRAIN_ISA_FMA         = 1u << 3,
	TRAIN_ISA_F16C        = 1u << 4,
	TRAIN_ISA_AVX512F     = 1u << 5,
	TRAIN_ISA_AVX512BW    = 1u << 6,
	TRAIN_ISA_AVX512VL    = 1u << 7,
	TRAIN_ISA_AVX512_VNNI = 1u << 8,
	TRAIN_ISA_AVX512_BF16 = 1u << 9,
	TRAIN_ISA_AVX512_FP16 = 1u << 10,
	TRAIN_ISA_AVX_VNNI    = 1u << 11,
	TRAIN_ISA_AMX_TILE    = 1u << 12,
	TRAIN_ISA_AMX_BF16    = 1u << 13,
	TRAIN_ISA_AMX_INT8    = 1u << 14,
};

#define TRAIN_HW_MAX_GPUS 8

typedef struct train_hardware {
	uint32_t struct_size;
	char cpu_vendor[16];      /**< "GenuineIntel", "AuthenticAMD", ... */
	char cpu_model[64];       /**< the brand string, trimmed */
	int sockets;              /**< physical packages (>= 1) */
	int cores;                /**< physical cores on line */
	int threads;              /**< logical CPUs this process may run on,
	                               after affinity and a cgroup quota */
	uint32_t isa;             /**< TRAIN_ISA_* bits */
	uint64_t mem_total;       /**< bytes: RAM, or a lower cgroup limit */
	uint64_t mem_available;   /**< bytes: MemAvailable, within the limit */
	uint64_t disk_free;       /**< bytes free for an unprivileged user in
	                               the folder asked about; 0 if unknown */
	int n_gpus;               /**< GPUs seen (PCI display devices, NVIDIA
	                               device nodes); none is usable by this
	                               build, which trains on the CPU */
	char gpus[TRAIN_HW_MAX_GPUS][64]; /**< "NVIDIA 10de:2204" and the like */
	int bf16_native;          /**< bf16 matmuls run natively (AVX512-BF16 or AMX) */
	const char *precision;    /**< recommended: "bf16" or "fp32" (static text) */
} train_hardware;

/**
 * Fill `hw` (set hw->struct_size = sizeof *hw first, or zero it) for this
 * machine; `dir` is the folder whose free space is wanted (NULL: ".").
 * Never fails for lack of a /proc or /sys file: what cannot be read stays
 * 0 or "".  Errors: TRAIN_EINVAL (hw is NULL).
 */
TRAIN_API int train_hardware_detect(train_hardware *hw, const char *dir);

/** The names of the bits set in `isa`, space-separated ("avx2 fma ..."),
 *  into buf (always NUL-terminated); returns buf. */
TRAIN_API const char *train_hardware_isa_names(uint32_t isa, char *buf, size_t cap);

#ifdef __cplusplus
}
#endif
#endif /* TRAIN_HARDWARE_H */
