/*
 * plugins/ppo/ppo_kern.c - the MLP kernels (ppo_kern.h) for AVX-512,
 * AVX2+FMA and plain x86-64/other processors, and the choice among them
 * at run time.  Build with -ffp-contract=fast (local.mk) so that a*b+c
 * becomes one fused multiply-add where the set has it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ppo.h"

#define KSUF generic
#define KNAME "generic"
#define VW 4
#include "ppo_kern.h"
#undef KSUF
#undef KNAME
#undef VW

#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define KSUF avx2
#define KNAME "avx2"
#define VW 8
#include "ppo_kern.h"
#undef KSUF
#undef KNAME
#undef VW
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx2,fma")
#define KSUF avx512
#define KNAME "avx512"
#define VW 16
#include "ppo_kern.h"
#undef KSUF
#undef KNAME
#undef VW
#pragma GCC pop_options
#define HAVE_X86_KERNELS 1
#endif

const ppo_kern *ppo_kern_pick(int H, const char *force)
{
#ifdef HAVE_X86_KERNELS
	int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl");
	int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	if (force) {
		if (!strcmp(force, "avx512"))
			return avx512 && H % 16 == 0 ? &kern_avx512 : NULL;
		if (!strcmp(force, "avx2"))
			return avx2 && H % 8 == 0 ? &kern_avx2 : NULL;
		return H % 8 == 0 ? &kern_generic : NULL;
	}
	if (avx512 && H % 16 == 0)
		return &kern_avx512;
	if (avx2 && H % 8 == 0)
		return &kern_avx2;
#else
	if (force && strcmp(force, "generic"))
		return NULL;
#endif
	return H % 8 == 0 ? &kern_generic : NULL;
}
