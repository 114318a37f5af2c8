# plugins/gpt2 (issue 10): GPT2LM, a GPT-2 causal LM from a local Hugging
# Face folder with full fine-tuning, LoRA, continued pre-training and
# gradient checkpointing; its tests and benchmark.
# (plugins/common/hf.c, shared with bert, comes with $(bert_sources) in the
# benchmark, which links both models)
gpt2_core = plugins/gpt2/gpt2.h plugins/gpt2/gpt2.c plugins/gpt2/gpt2_io.c \
	plugins/common/bpe.c plugins/common/bpe.h plugins/common/bpe_unicode.h \
	plugins/common/text.c plugins/common/text.h \
	plugins/common/strmap.c plugins/common/strmap.h plugins/common/unicode_tables.h
gpt2_sources = $(gpt2_core) plugins/common/hf.c plugins/common/hf.h plugins/common/gen.c plugins/common/gen.h \
	plugins/common/lora.c plugins/common/lora.h

unit_tests += tests/test_gpt2
tests_test_gpt2_SOURCES = tests/test_gpt2.c tests/testlib.h $(gpt2_sources)
tests_test_gpt2_CFLAGS = $(UNIT_CFLAGS) $(JANSSON_CFLAGS)
tests_test_gpt2_LDADD = $(UNIT_LDADD) $(JANSSON_LIBS) $(LIBM)

plugin_LTLIBRARIES += plugins/gpt2/gpt2.la
plugins_gpt2_gpt2_la_SOURCES = plugins/gpt2/gpt2_plugin.c $(gpt2_sources)
plugins_gpt2_gpt2_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
plugins_gpt2_gpt2_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_gpt2_gpt2_la_LIBADD = libtrain/libtrain.la $(JANSSON_LIBS) $(LIBM)

recipe_DATA += recipes/gpt2.yml
cli_tests += tests/cli_gpt2.sh
EXTRA_DIST += tests/cli_gpt2.sh plugins/common/gen_bpe_unicode.py doc/gpt2.md \
	tests/fixtures/gpt2/make_fixture.py tests/fixtures/gpt2/LICENSE \
	tests/fixtures/gpt2/tiny/config.json tests/fixtures/gpt2/tiny/model.safetensors \
	tests/fixtures/gpt2/tiny/vocab.json tests/fixtures/gpt2/tiny/merges.txt \
	tests/fixtures/gpt2/expected.json tests/fixtures/gpt2/dialogues.jsonl

# `make bench`: bench/gpt2_bench.sh (GPT-2-small and bert-mini shapes, ours
# against a hand-written PyTorch LoRA step).
EXTRA_PROGRAMS += bench/gpt2_bench
bench_gpt2_bench_SOURCES = bench/gpt2_bench.c $(gpt2_core) $(bert_sources)
bench_gpt2_bench_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
bench_gpt2_bench_LDADD = libtrain/libtrain.la $(JANSSON_LIBS) $(LIBM)
EXTRA_DIST += bench/gpt2_bench.sh bench/gpt2_torch.py
bench_targets += bench-gpt2
bench-gpt2: bench/gpt2_bench$(EXEEXT)
	$(SHELL) $(srcdir)/bench/gpt2_bench.sh '$(abs_top_builddir)' '$(abs_top_srcdir)'
.PHONY: bench-gpt2

# Checkpoints and --resume: GPT2LM compiled in (GPT2_NO_DESCRIPTOR).
unit_tests += tests/test_gpt2_resume
tests_test_gpt2_resume_SOURCES = tests/test_gpt2_resume.c tests/testlib.h $(gpt2_sources)
tests_test_gpt2_resume_CFLAGS = $(UNIT_CFLAGS) $(JANSSON_CFLAGS)
tests_test_gpt2_resume_LDADD = $(UNIT_LDADD) $(JANSSON_LIBS) $(LIBM)
EXTRA_DIST += plugins/gpt2/gpt2_plugin.c
