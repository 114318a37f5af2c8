# plugins/mamba (issue 7): the Mamba language model, its tests and benchmark.
mamba_sources = plugins/mamba/mamba.h plugins/mamba/scan.c plugins/mamba/model.c plugins/mamba/mamba_io.c
# The scan's lane loops are written to be vectorized; gcc's -O2 cost model
# ("very cheap") leaves some of them scalar.
MAMBA_VEC_CFLAGS = -fvect-cost-model=dynamic
unit_tests += tests/test_mamba
tests_test_mamba_SOURCES = tests/test_mamba.c tests/testlib.h $(mamba_sources)
tests_test_mamba_CFLAGS = $(UNIT_CFLAGS) $(MAMBA_VEC_CFLAGS) $(JANSSON_CFLAGS)
tests_test_mamba_LDADD = $(UNIT_LDADD) $(JANSSON_LIBS)
plugin_LTLIBRARIES += plugins/mamba/mamba.la
plugins_mamba_mamba_la_SOURCES = plugins/mamba/mamba.c $(mamba_sources)
plugins_mamba_mamba_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(MAMBA_VEC_CFLAGS)
plugins_mamba_mamba_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_mamba_mamba_la_LIBADD = libtrain/libtrain.la $(JANSSON_LIBS) $(PTHREAD_LIBS) $(LIBM)
# `make bench`: against PyTorch on tinyshakespeare (bench/mamba_bench.sh).
EXTRA_DIST += bench/mamba_bench.sh bench/mamba_torch.py
bench_targets += bench-mamba
bench-mamba: all
	$(SHELL) $(srcdir)/bench/mamba_bench.sh '$(abs_top_builddir)' '$(abs_top_srcdir)'
.PHONY: bench-mamba
# `train generate MODEL PROMPT` (issue 7): any model whose predict schema
# takes a `prompt`.
train_SOURCES += libtrain/cli/cmd_generate.c
recipe_DATA += recipes/mamba.yml
cli_tests += tests/cli_mamba.sh
