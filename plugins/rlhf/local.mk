# plugins/rlhf (issue 9): RLHF's data, reward model and PPO on a Mamba
# language model; stage 1 (SFT) is plugins/mamba's MambaSFT.  Reuses the
# Mamba model ($(mamba_sources)) and PPO's GAE and clipped losses.
rlhf_sources = plugins/rlhf/rlhf.c plugins/rlhf/rlhf.h plugins/rlhf/ppo_lm.c plugins/ppo/gae.c \
	$(mamba_sources)
plugin_LTLIBRARIES += plugins/rlhf/rlhf.la
plugins_rlhf_rlhf_la_SOURCES = $(rlhf_sources)
plugins_rlhf_rlhf_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(MAMBA_VEC_CFLAGS)
plugins_rlhf_rlhf_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_rlhf_rlhf_la_LIBADD = libtrain/libtrain.la $(JANSSON_LIBS) $(PTHREAD_LIBS) $(LIBM)
recipe_DATA += recipes/rlhf.yml
EXTRA_DIST += plugins/rlhf/local.mk doc/rlhf.md

# The math by hand and by finite differences, the reward model on a
# synthetic preference set, a PPO step.
unit_tests += tests/test_rlhf
tests_test_rlhf_SOURCES = tests/test_rlhf.c tests/testlib.h tests/mamba_testlib.h plugins/rlhf/rlhf.h plugins/ppo/gae.c \
	$(mamba_sources)
tests_test_rlhf_CFLAGS = $(UNIT_CFLAGS) $(JANSSON_CFLAGS) $(MAMBA_VEC_CFLAGS) -DRLHF_NO_DESCRIPTOR
tests_test_rlhf_LDADD = $(UNIT_LDADD) $(JANSSON_LIBS) $(LIBM)
EXTRA_DIST += plugins/rlhf/rlhf.c plugins/rlhf/ppo_lm.c

# End to end: train --target rlhf on the in-repo fixture, the cache.
cli_tests += tests/cli_rlhf.sh
EXTRA_DIST += tests/cli_rlhf.sh tests/data/rlhf/feedback.json tests/data/rlhf/LICENSE \
	tests/fixtures/make_rlhf_fixture.py

# `make bench`: bench/rlhf_bench.sh on ../shared/data/rlhf/qa-feedback.
EXTRA_DIST += bench/rlhf_bench.sh
bench_targets += bench-rlhf
bench-rlhf: all
	$(SHELL) $(srcdir)/bench/rlhf_bench.sh '$(abs_top_builddir)' '$(abs_top_srcdir)'
.PHONY: bench-rlhf
