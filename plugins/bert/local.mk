# plugins/bert (issue 7): the BERT encoder, its masked-LM and classifier
# components, Hugging Face checkpoints.  Other plugins reuse the encoder by
# adding $(bert_sources) (and $(rasa_text_sources)) to their own sources.
bert_sources = plugins/bert/bert.c plugins/bert/bert_io.c plugins/bert/bert.h \
	plugins/common/hf.c plugins/common/hf.h plugins/common/lora.c plugins/common/lora.h

unit_tests += tests/test_bert
tests_test_bert_SOURCES = tests/test_bert.c tests/testlib.h $(bert_sources) plugins/bert/bert_train.c plugins/bert/bert_train.h $(rasa_text_sources)
tests_test_bert_CFLAGS = $(UNIT_CFLAGS) $(JANSSON_CFLAGS)
tests_test_bert_LDADD = $(UNIT_LDADD) $(JANSSON_LIBS) $(LIBM)
EXTRA_DIST += tests/fixtures/bert_fixture.py tests/fixtures/bert_expected.safetensors \
	tests/fixtures/bert-tiny-hf/config.json tests/fixtures/bert-tiny-hf/vocab.txt \
	tests/fixtures/bert-tiny-hf/tokenizer_config.json tests/fixtures/bert-tiny-hf/model.safetensors

plugin_LTLIBRARIES += plugins/bert/bert.la
plugins_bert_bert_la_SOURCES = plugins/bert/bert_plugin.c plugins/bert/bert_train.c \
	plugins/bert/bert_train.h $(bert_sources) $(rasa_text_sources)
plugins_bert_bert_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
plugins_bert_bert_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_bert_bert_la_LIBADD = libtrain/libtrain.la $(JANSSON_LIBS) $(LIBM)

cli_tests += tests/cli_bert.sh
EXTRA_DIST += tests/cli_bert.sh
recipe_DATA += recipes/transformer.yml

# `make bench`: bench/bert_bench.sh (ours against PyTorch, steps/s).
EXTRA_PROGRAMS += bench/bert_bench
bench_bert_bench_SOURCES = bench/bert_bench.c $(bert_sources) $(rasa_text_sources)
bench_bert_bench_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
bench_bert_bench_LDADD = libtrain/libtrain.la $(JANSSON_LIBS) $(LIBM)
EXTRA_DIST += bench/bert_bench.sh bench/bert_torch.py
bench_targets += bench-bert
bench-bert: bench/bert_bench$(EXEEXT)
	$(SHELL) $(srcdir)/bench/bert_bench.sh '$(abs_top_builddir)' '$(abs_top_srcdir)'
.PHONY: bench-bert
EXTRA_DIST += doc/bert.md

# `make bench`: bench/bert_clinc.sh (issue 7, BERT fine-tuning: CLINC150
# intent accuracy of a bert-mini pretrained and fine-tuned through
# `train --target transformer`, against scikit-learn; about 10 minutes).
EXTRA_DIST += bench/bert_clinc.sh bench/clinc_to_jsonl.py
bench_targets += bench-bert-clinc
bench-bert-clinc: all
	$(SHELL) $(srcdir)/bench/bert_clinc.sh '$(abs_top_builddir)' '$(abs_top_srcdir)'
.PHONY: bench-bert-clinc
