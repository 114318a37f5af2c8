# Pipelines (issue 9): `train --target full-pipeline`.  The stages runner is
# part of the library (libtrain/pipeline.c); the data stage's DataCheck is
# the "pipeline" plugin.
libtrain_libtrain_core_la_SOURCES += libtrain/pipeline.c libtrain/pipeline.h
plugin_LTLIBRARIES += plugins/pipeline/pipeline.la
plugins_pipeline_pipeline_la_SOURCES = plugins/pipeline/datacheck.c
plugins_pipeline_pipeline_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
plugins_pipeline_pipeline_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_pipeline_pipeline_la_LIBADD = libtrain/libtrain.la $(JANSSON_LIBS)
recipe_DATA += recipes/full-pipeline.yml recipes/data-check.yml
EXTRA_DIST += plugins/pipeline/local.mk

# SHA-256 against FIPS 180-4's examples; bad pipeline files and stage lists.
unit_tests += tests/test_pipeline
tests_test_pipeline_SOURCES = tests/test_pipeline.c tests/testlib.h
tests_test_pipeline_CFLAGS = $(UNIT_CFLAGS)
tests_test_pipeline_LDADD = $(UNIT_LDADD)

# End to end: the full pipeline on tiny settings, its manifest's checksums,
# kill -9 in stage 3 and a rerun from there, --stages, the errors.
cli_tests += tests/cli_pipeline.sh

# `make bench`: the wall time of each stage with realistic settings (no
# reference exists to run beside it; bench/pipeline_bench.sh says so).
EXTRA_DIST += bench/pipeline_bench.sh bench/pipeline.yml
bench_targets += bench-pipeline
bench-pipeline: all
	$(SHELL) $(srcdir)/bench/pipeline_bench.sh '$(abs_top_builddir)' '$(abs_top_srcdir)'
.PHONY: bench-pipeline
