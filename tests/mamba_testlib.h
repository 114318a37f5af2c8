/*
 * tests/mamba_testlib.h - a small Mamba for the tests of the plugins built
 * on it (test_mamba, test_mamba_lora, test_rlhf).  Include after the
 * Mamba model's declarations (plugins/mamba/mamba.h) and testlib.h.
 */
#ifndef TESTS_MAMBA_TESTLIB_H
#define TESTS_MAMBA_TESTLIB_H

/* A V-token, D-wide, nl-layer model initialised from `seed`, its parameters
 * then moved off their special initial values (ones, zeros) so that every
 * path carries gradient; with gradient arrays when `grads`. */
static mamba_model *tiny_model(int V, int D, int nl, uint64_t seed, int grads)
{
	mamba_dims d;
	mamba_model *m = NULL;
	CU_ASSERT_EQUAL_FATAL(mamba_dims_make(V, D, nl, &d), TRAIN_OK);
	CU_ASSERT_EQUAL_FATAL(mamba_model_create(&d, grads, &m), TRAIN_OK);
	train_rng r;
	train_rng_seed(&r, seed);
	mamba_model_init(m, &r);
	for (size_t i = 0; i < m->n_params; i++)
		m->params[i] += 0.05f * (train_rng_uniform(&r) - 0.5f);
	return m;
}

#endif
