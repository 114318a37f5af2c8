# plugins/envs (issue 9): CartPole-v1 and Pendulum-v1 through <train/env.h>.
plugin_LTLIBRARIES += plugins/envs/envs.la
plugins_envs_envs_la_SOURCES = plugins/envs/envs.c
plugins_envs_envs_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_envs_envs_la_LIBADD = libtrain/libtrain.la $(LIBM)
EXTRA_DIST += plugins/envs/local.mk doc/env-abi.md

# The dynamics against the equations, vectorised against single copies.
unit_tests += tests/test_envs
tests_test_envs_SOURCES = tests/test_envs.c tests/testlib.h
tests_test_envs_CFLAGS = $(UNIT_CFLAGS) -DENVS_NO_DESCRIPTOR
tests_test_envs_LDADD = $(UNIT_LDADD)
