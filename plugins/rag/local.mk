# plugins/rag (issue 8): documents, BM25, HNSW, retrieval; included at the
# end of Makefile.am.
rag_sources = plugins/rag/rag.c plugins/rag/hnsw.c plugins/rag/hnsw.h \
	plugins/rag/bm25.c plugins/rag/bm25.h plugins/rag/dense.c plugins/rag/dense.h \
	plugins/common/porter.c plugins/common/porter.h
plugin_LTLIBRARIES += plugins/rag/rag.la
plugins_rag_rag_la_SOURCES = $(rag_sources) $(bert_sources) $(rasa_text_sources)
plugins_rag_rag_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(PTHREAD_CFLAGS)
plugins_rag_rag_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_rag_rag_la_LIBADD = libtrain/libtrain.la $(JANSSON_LIBS) $(LIBM) -lpthread

unit_tests += tests/test_hnsw tests/test_bm25 tests/test_dense
tests_test_dense_SOURCES = tests/test_dense.c tests/testlib.h plugins/rag/dense.c plugins/rag/dense.h \
	$(bert_sources) $(rasa_text_sources)
tests_test_dense_CFLAGS = $(UNIT_CFLAGS) $(JANSSON_CFLAGS)
tests_test_dense_LDADD = $(UNIT_LDADD) $(JANSSON_LIBS) $(LIBM)
EXTRA_DIST += tests/fixtures/dense_fixture.py tests/fixtures/dense_expected.safetensors doc/rag.md bench/rag_fusion.c
tests_test_hnsw_SOURCES = tests/test_hnsw.c tests/testlib.h plugins/rag/hnsw.c plugins/rag/hnsw.h
tests_test_hnsw_CFLAGS = $(UNIT_CFLAGS)
tests_test_hnsw_LDADD = $(UNIT_LDADD) $(LIBM) -lpthread
tests_test_bm25_SOURCES = tests/test_bm25.c tests/testlib.h plugins/rag/bm25.c plugins/rag/bm25.h \
	plugins/common/porter.c plugins/common/porter.h $(rasa_text_sources)
tests_test_bm25_CFLAGS = $(UNIT_CFLAGS)
tests_test_bm25_LDADD = $(UNIT_LDADD) $(LIBM)

# `train query` and `train test rag`
train_SOURCES += libtrain/cli/cmd_rag.c

cli_tests += tests/cli_rag.sh
EXTRA_DIST += tests/cli_rag.sh tests/data/rag bench/rag_bench.sh bench/rag_ann.py \
	bench/rag_bm25.py
recipe_DATA += recipes/rag.yml

check_PROGRAMS += bench/rag_ann
bench_rag_ann_SOURCES = bench/rag_ann.c plugins/rag/hnsw.c plugins/rag/hnsw.h
bench_rag_ann_CFLAGS = $(AM_CFLAGS) -O3
bench_rag_ann_LDADD = $(LIBM) -lpthread
bench_targets += rag-bench
rag-bench: all bench/rag_ann$(EXEEXT) bench/rag_fusion$(EXEEXT)
	$(SHELL) $(srcdir)/bench/rag_bench.sh '$(abs_top_builddir)' '$(abs_top_srcdir)'
.PHONY: rag-bench

# bench/rag_fusion: recall of BM25, dense and a grid of fusion settings of a
# trained model (bench/rag_bench.sh)
EXTRA_PROGRAMS += bench/rag_fusion
bench_rag_fusion_SOURCES = bench/rag_fusion.c plugins/rag/dense.c plugins/rag/dense.h \
	plugins/rag/bm25.c plugins/rag/bm25.h plugins/rag/hnsw.c plugins/rag/hnsw.h plugins/common/porter.c \
	$(bert_sources) $(rasa_text_sources)
bench_rag_fusion_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) -O3
bench_rag_fusion_LDADD = libtrain/libtrain.la $(JANSSON_LIBS) $(LIBM) -lpthread
