# plugins/ppo (issue 9): PPO on environment plugins.  -ffp-contract=fast:
# the kernels' a*b+c become fused multiply-adds.
ppo_sources = plugins/ppo/ppo.c plugins/ppo/ppo.h plugins/ppo/net.c plugins/ppo/gae.c plugins/ppo/ppo_kern.c \
	plugins/ppo/ppo_kern.h
plugin_LTLIBRARIES += plugins/ppo/ppo.la
plugins_ppo_ppo_la_SOURCES = $(ppo_sources)
plugins_ppo_ppo_la_CFLAGS = $(AM_CFLAGS) -ffp-contract=fast
plugins_ppo_ppo_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_ppo_ppo_la_LIBADD = libtrain/libtrain.la $(LIBM)
recipe_DATA += recipes/rl.yml
EXTRA_DIST += plugins/ppo/local.mk

# Loss and gradient (hand-checked batch, finite differences), kernels
# against plain loops, exact resume, and a short training run.
unit_tests += tests/test_ppo
tests_test_ppo_SOURCES = tests/test_ppo.c tests/testlib.h plugins/ppo/net.c plugins/ppo/gae.c plugins/ppo/ppo_kern.c plugins/ppo/ppo.h plugins/ppo/ppo_kern.h
tests_test_ppo_CFLAGS = $(UNIT_CFLAGS) -ffp-contract=fast -DPPO_NO_DESCRIPTOR
tests_test_ppo_LDADD = $(UNIT_LDADD)

# End to end: train --target rl, train test rl, kill -9 and --resume.
cli_tests += tests/cli_rl.sh

# `make bench`: ours against a CleanRL-style PyTorch PPO (bench/ppo_bench.sh).
EXTRA_DIST += bench/ppo_bench.sh bench/ppo_torch.py
bench_targets += bench-ppo
bench-ppo: all
	$(SHELL) $(srcdir)/bench/ppo_bench.sh '$(abs_top_builddir)' '$(abs_top_srcdir)'
.PHONY: bench-ppo
