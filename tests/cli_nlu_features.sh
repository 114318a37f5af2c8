#!/bin/bash
# End to end: the Rasa NLU front of a pipeline through the `train`
# program (issue 6): RasaNLU -> WhitespaceTokenizer -> CountVectorsFeaturizer
# (words, then char_wb) -> RegexFeaturizer -> LexicalSyntacticFeaturizer,
# and a WordPieceTokenizer beside them, on the mini project; retraining
# from the cache; a changed story that leaves the NLU nodes cached; a
# changed example that retrains them; the persisted state in the model;
# prediction through the predict schema.
. "${top_srcdir:-.}/tests/lib.sh"

P="$top_builddir/plugins/rasa/.libs:$top_builddir/plugins/tokenizers/.libs:$top_builddir/plugins/featurizers/.libs"
cp -r "${TRAIN_TEST_DATA:-$top_srcdir/tests/data}/rasa/mini" "$WORK/mini"
cat >"$WORK/nlu.yml" <<'YML'
version: 1
name: nlu-features
train:
  targets: [lexical, wordpiece]
  nodes:
    nlu:
      component: RasaNLU
    tokens:
      component: WhitespaceTokenizer
      needs: {nlu: nlu}
    words:
      component: CountVectorsFeaturizer
      needs: {features: tokens}
      config: {OOV_token: oov}
    chars:
      component: CountVectorsFeaturizer
      needs: {features: words}
      config: {analyzer: char_wb, min_ngram: 1, max_ngram: 4}
    regex:
      component: RegexFeaturizer
      needs: {features: chars, nlu: nlu}
    lexical:
      component: LexicalSyntacticFeaturizer
      needs: {features: regex}
    wordpiece:
      component: WordPieceTokenizer
      needs: {nlu: nlu}
      config: {vocab_size: 80}
predict:
  inputs: [text]
  targets: [lexical, pieces]
  nodes:
    tokens:
      component: WhitespaceTokenizer
      resource: tokens
      needs: {text: $input.text}
    words:
      component: CountVectorsFeaturizer
      resource: words
      needs: {features: tokens}
    chars:
      component: CountVectorsFeaturizer
      resource: chars
      needs: {features: words}
    regex:
      component: RegexFeaturizer
      resource: regex
      needs: {features: chars}
    lexical:
      component: LexicalSyntacticFeaturizer
      resource: lexical
      needs: {features: regex}
    pieces:
      component: WordPieceTokenizer
      resource: wordpiece
      needs: {text: $input.text}
YML
T=("$TRAIN" --recipe "$WORK/nlu.yml" --plugin-path "$P" --data "$WORK/mini/data"
	--cache-dir "$WORK/cache" --out "$WORK/models")

status_is 0 "train the NLU front" "${T[@]}" --fixed-model-name m1 --report "$WORK/r1.json"
check "seven nodes trained" test "$(count_status "$WORK/r1.json" trained)" -eq 7
status_is 0 "retrain" "${T[@]}" --fixed-model-name m2 --report "$WORK/r2.json"
check "everything from the cache" test "$(count_status "$WORK/r2.json" cached)" -eq 7
check "the same model state" cmp <(tar -xzOf "$WORK/models/m1.tar.gz" components/chars/vocabulary.txt) \
	<(tar -xzOf "$WORK/models/m2.tar.gz" components/chars/vocabulary.txt)

tar -tzf "$WORK/models/m1.tar.gz" >"$WORK/members"
for f in components/words/vocabulary.txt components/regex/patterns.txt \
	components/lexical/feature_to_idx.txt components/wordpiece/vocab.txt; do
	check "model holds $f" grep -qx "$f" "$WORK/members"
done
check "the regex and lookup patterns" test "$(tar -xzOf "$WORK/models/m1.tar.gz" components/regex/patterns.txt |
	sed -n 2p)" = party_size
check "WordPiece: [PAD] first" test "$(tar -xzOf "$WORK/models/m1.tar.gz" components/wordpiece/vocab.txt |
	head -1)" = "[PAD]"

# a story changes: the NLU value is the same, so only the reader reruns
sed -i 's/utter_greet/utter_greet_again/' "$WORK/mini/data/stories.yml"
status_is 0 "a story changed" "${T[@]}" --fixed-model-name m3 --report "$WORK/r3.json"
check "only the reader ran" test "$(count_status "$WORK/r3.json" trained)" -eq 1
check "the rest from the cache" test "$(count_status "$WORK/r3.json" cached)" -eq 6
# an example changes: everything after the reader retrains
sed -i 's/- hello there/- hello over there/' "$WORK/mini/data/nlu.yml"
status_is 0 "an example changed" "${T[@]}" --fixed-model-name m4 --report "$WORK/r4.json"
check "all seven trained" test "$(count_status "$WORK/r4.json" trained)" -eq 7

# prediction: the features value of the text, through every featurizer
status_is 0 "predict" "$TRAIN" predict "$WORK/models/m4.tar.gz" --plugin-path "$P" \
	text="book a table in Rome for 4"
check "the features value holds the text" grep -aq "book a table in Rome for 4" "$WORK/out"
check "and the blocks" grep -aq "CountVectorsFeaturizer_2" "$WORK/out"
check "and the subword tokens" grep -aq "##" "$WORK/out"
status_is 70 "a text that is not UTF-8 (the tokenizer fails)" "$TRAIN" predict "$WORK/models/m4.tar.gz" --plugin-path "$P" \
	text=$'\xff'
finish
