# plugins/mamba (issue 7): the Mamba language model, its tests and benchmark.
# tokenizer: bpe (plugins/common/bpe.c, shared with gpt2)
bpe_sources = plugins/common/bpe.c plugins/common/bpe.h plugins/common/bpe_unicode.h \
	plugins/common/text.c plugins/common/text.h plugins/common/unicode_tables.h \
	plugins/common/strmap.c plugins/common/strmap.h plugins/common/hf.c plugins/common/hf.h
mamba_sources = plugins/mamba/mamba.h plugins/mamba/scan.c plugins/mamba/model.c plugins/mamba/mamba_io.c \
	plugins/mamba/mamba_lora.c plugins/common/lora.c plugins/common/lora.h \
	plugins/common/gen.c plugins/common/gen.h \
	$(bpe_sources)
# The scan's lane loops are written to be vectorized; gcc's -O2 cost model
# ("very cheap") leaves some of them scalar.
MAMBA_VEC_CFLAGS = -fvect-cost-model=dynamic
unit_tests += tests/test_mamba
tests_test_mamba_SOURCES = tests/test_mamba.c tests/testlib.h tests/mamba_testlib.h $(mamba_sources)
tests_test_mamba_CFLAGS = $(UNIT_CFLAGS) $(MAMBA_VEC_CFLAGS) $(JANSSON_CFLAGS) $(ARCHIVE_CFLAGS)
tests_test_mamba_LDADD = $(UNIT_LDADD) $(JANSSON_LIBS) $(ARCHIVE_LIBS)
# MambaLM from a saved model, and LoRA (issue 10)
unit_tests += tests/test_mamba_lora
tests_test_mamba_lora_SOURCES = tests/test_mamba_lora.c tests/testlib.h tests/mamba_testlib.h $(mamba_sources)
tests_test_mamba_lora_CFLAGS = $(tests_test_mamba_CFLAGS)
tests_test_mamba_lora_LDADD = $(tests_test_mamba_LDADD)
# the byte-level BPE against a Python fixture (tests/fixtures/bpe)
unit_tests += tests/test_bpe
tests_test_bpe_SOURCES = tests/test_bpe.c tests/testlib.h $(bpe_sources)
tests_test_bpe_CFLAGS = $(UNIT_CFLAGS) $(JANSSON_CFLAGS)
tests_test_bpe_LDADD = $(UNIT_LDADD) $(JANSSON_LIBS)
EXTRA_DIST += tests/fixtures/bpe/make_fixture.py tests/fixtures/bpe/expected.json
plugin_LTLIBRARIES += plugins/mamba/mamba.la
plugins_mamba_mamba_la_SOURCES = plugins/mamba/mamba.c $(mamba_sources)
plugins_mamba_mamba_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(MAMBA_VEC_CFLAGS) $(ARCHIVE_CFLAGS)
plugins_mamba_mamba_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_mamba_mamba_la_LIBADD = libtrain/libtrain.la $(JANSSON_LIBS) $(ARCHIVE_LIBS) $(PTHREAD_LIBS) $(LIBM)
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
# `make bench`: MambaLM with tokenizer: bpe against tokenizer: char on
# tinyshakespeare, the same wall budget, in bits per character
# (bench/mamba_bpe_bench.sh).
EXTRA_DIST += bench/mamba_bpe_bench.sh doc/mamba.md
bench_targets += bench-mamba-bpe
bench-mamba-bpe: all
	$(SHELL) $(srcdir)/bench/mamba_bpe_bench.sh '$(abs_top_builddir)' '$(abs_top_srcdir)'
.PHONY: bench-mamba-bpe
