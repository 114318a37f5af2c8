# plugins/mamba (issue 7): the Mamba language model, its tests and benchmark.
mamba_sources = plugins/mamba/mamba.h plugins/mamba/scan.c plugins/mamba/model.c
# The scan's lane loops are written to be vectorized; gcc's -O2 cost model
# ("very cheap") leaves some of them scalar.
MAMBA_VEC_CFLAGS = -fvect-cost-model=dynamic
unit_tests += tests/test_mamba
tests_test_mamba_SOURCES = tests/test_mamba.c tests/testlib.h $(mamba_sources)
tests_test_mamba_CFLAGS = $(UNIT_CFLAGS) $(MAMBA_VEC_CFLAGS)
tests_test_mamba_LDADD = $(UNIT_LDADD)
plugin_LTLIBRARIES += plugins/mamba/mamba.la
plugins_mamba_mamba_la_SOURCES = plugins/mamba/mamba.c $(mamba_sources)
plugins_mamba_mamba_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(MAMBA_VEC_CFLAGS)
plugins_mamba_mamba_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_mamba_mamba_la_LIBADD = libtrain/libtrain.la $(JANSSON_LIBS) $(PTHREAD_LIBS) $(LIBM)
