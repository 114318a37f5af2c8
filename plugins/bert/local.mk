# plugins/bert (issue 7): the BERT encoder, its masked-LM and classifier
# components, Hugging Face checkpoints.  Other plugins reuse the encoder by
# adding $(bert_sources) (and $(rasa_text_sources)) to their own sources.
bert_sources = plugins/bert/bert.c plugins/bert/bert_io.c plugins/bert/bert.h

unit_tests += tests/test_bert
tests_test_bert_SOURCES = tests/test_bert.c tests/testlib.h $(bert_sources) plugins/bert/bert_train.c plugins/bert/bert_train.h $(rasa_text_sources)
tests_test_bert_CFLAGS = $(UNIT_CFLAGS) $(JANSSON_CFLAGS)
tests_test_bert_LDADD = $(UNIT_LDADD) $(JANSSON_LIBS) $(LIBM)
EXTRA_DIST += tests/fixtures/bert_fixture.py tests/fixtures/bert_expected.safetensors \
	tests/fixtures/bert-tiny-hf/config.json tests/fixtures/bert-tiny-hf/vocab.txt \
	tests/fixtures/bert-tiny-hf/tokenizer_config.json tests/fixtures/bert-tiny-hf/model.safetensors
