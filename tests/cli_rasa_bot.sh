#!/bin/bash
# End to end (issue 6): a Rasa project (examples/weatherbot, with a small
# config for speed) through Rasa's default recipe: `train` in the project's
# folder, `train predict` (texts, stdin, a conversation), `train test nlu`
# (100 % on its own data) and `train test core`; what retrains after an NLU
# example or a story changes (from --report); the same bytes for the same
# seed; `train nlu` / `train core`; config errors at config.yml's line.
. "${top_srcdir:-.}/tests/lib.sh"

B="$top_builddir/plugins"
P="$B/rasa/.libs:$B/tokenizers/.libs:$B/featurizers/.libs:$B/nlu/.libs:$B/policy/.libs"
cp -r "$top_srcdir/examples/weatherbot" "$WORK/bot"
cat >"$WORK/bot/config.yml" <<'YML'
recipe: default.v1
language: en
assistant_id: weatherbot-test
pipeline:
  - name: WhitespaceTokenizer
  - name: RegexFeaturizer
  - name: LexicalSyntacticFeaturizer
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
  - name: DIETClassifier
    epochs: 60
    transformer_size: 64
    number_of_transformer_layers: 1
    random_seed: 3
  - name: EntitySynonymMapper
  - name: FallbackClassifier
    threshold: 0.3
policies:
  - name: MemoizationPolicy
  - name: RulePolicy
  - name: TEDPolicy
    max_history: 5
    epochs: 40
    transformer_size: 32
    random_seed: 1
YML
in_bot() { (cd "$WORK/bot" && "$@"); }
T=("$TRAIN" --plugin-path "$P" --cache-dir "$WORK/cache" --out "$WORK/models")
status() { # status REPORT NODE: that node's status
	tr -d '\n' <"$1" | grep -o "\"name\": \"$2\"[^}]*" | grep -o '"status": "[a-z]*"' | cut -d'"' -f4
}
has() { # has DESCRIPTION REGEX FILE
	if grep -Eq -- "$2" "$3"; then ok "$1"; else fail "$1: no /$2/ in:"; sed 's/^/  | /' "$3" >&2; fi
}
NLU_NODES="nlu WhitespaceTokenizer0 RegexFeaturizer1 LexicalSyntacticFeaturizer2 CountVectorsFeaturizer3 CountVectorsFeaturizer4 DIETClassifier5"
CORE_NODES="MemoizationPolicy0 RulePolicy1 TEDPolicy2"
all_are() { # all_are REPORT STATUS NODES...: every node has that status
	local r=$1 s=$2 n
	shift 2
	for n in "$@"; do
		[ "$(status "$r" "$n")" = "$s" ] || { echo "  $n: $(status "$r" "$n"), not $s" >&2; return 1; }
	done
}

# ---- train in the project folder, no options ---------------------------------
status_is 0 "train in a Rasa project folder" in_bot "${T[@]}" --fixed-model-name m1 --report "$WORK/r1.json"
check "all 13 nodes trained" test "$(count_status "$WORK/r1.json" trained)" -eq 13
M="$WORK/models/m1.tar.gz"

# ---- predict --------------------------------------------------------------------
status_is 0 "predict a text" "$TRAIN" predict "$M" --plugin-path "$P" "what's the weather in Paris"
has "the intent" '"intent":\{"name":"ask_weather"' "$WORK/out"
has "the entity" '"entity":"city","start":22,"end":27,.*"value":"Paris"' "$WORK/out"
has "the ranking" '"intent_ranking":\[\{"name":"ask_weather"' "$WORK/out"
status_is 0 "predict lines of stdin" sh -c "printf 'hello\nweather in NYC\n' | '$TRAIN' predict '$M' --plugin-path '$P'"
check "one JSON line per text" test "$(wc -l <"$WORK/out")" -eq 2
has "a synonym mapped" '"value":"New York"' "$WORK/out"
status_is 0 "NAME=VALUE still works" "$TRAIN" predict "$M" --plugin-path "$P" text=hello
has "NAME=VALUE: the outputs by name" '^FallbackClassifier7: \{"text":"hello"' "$WORK/out"
printf 'hello\nParis\nno thanks\n' >"$WORK/conv.txt"
status_is 0 "predict a conversation" "$TRAIN" predict "$M" --plugin-path "$P" --conversation "$WORK/conv.txt"
has "turn 1: greet" '^\{"turn":1,.*"intent":"greet".*"actions":\[\{"action":"utter_greet"' "$WORK/out"
has "turn 2: the weather" '^\{"turn":2,.*"actions":\[\{"action":"utter_weather"' "$WORK/out"
has "turn 3: goodbye" '^\{"turn":3,.*"actions":\[\{"action":"utter_goodbye"' "$WORK/out"
echo '[{"event": "user", "intent": "thank"}]' >"$WORK/conv.json"
status_is 0 "a JSON conversation" "$TRAIN" predict "$M" --plugin-path "$P" --conversation "$WORK/conv.json"
has "the rule answers" '"actions":\[\{"action":"utter_welcome","confidence":1.0,"policy":"RulePolicy"' "$WORK/out"

# ---- test ------------------------------------------------------------------------
status_is 0 "train test nlu" in_bot "$TRAIN" test nlu "$M" --plugin-path "$P" --out "$WORK/results"
has "100 % on its own data" '^intent accuracy: 100.00 % \(38 of 38\)$' "$WORK/out"
has "entity F1" '^entity F1: 1.0000' "$WORK/out"
has "report: weighted avg" '"weighted avg"' "$WORK/results/intent_report.json"
has "report: per intent" '"ask_weather": \{' "$WORK/results/intent_report.json"
has "report: accuracy" '"accuracy": 1.0' "$WORK/results/intent_report.json"
status_is 0 "train test core" in_bot "$TRAIN" test core "$M" --plugin-path "$P" --stories tests/test_stories.yml \
	--out "$WORK/results" --fail-on-prediction-errors
has "every test story" '^stories: 3 of 3 correct' "$WORK/out"
has "story report" '"action_listen": \{' "$WORK/results/story_report.json"
printf 'version: "3.1"\nstories:\n- story: wrong\n  steps:\n  - intent: greet\n  - action: utter_goodbye\n' >"$WORK/bad.yml"
status_is 1 "a failing story" "$TRAIN" test core "$M" --plugin-path "$P" --stories "$WORK/bad.yml" \
	--out "$WORK/results2" --fail-on-prediction-errors
has "the failed story" '^failed story: wrong' "$WORK/out"
has "what was predicted" '# predicted: utter_greet' "$WORK/results2/failed_test_stories.yml"

# ---- what retrains ---------------------------------------------------------------
status_is 0 "retrain, nothing changed" in_bot "${T[@]}" --fixed-model-name m2 --report "$WORK/r2.json"
check "everything cached" test "$(count_status "$WORK/r2.json" cached)" -eq 13
sed -i 's/    - hey there/    - hey there you/' "$WORK/bot/data/nlu.yml"
status_is 0 "an NLU example changed" in_bot "${T[@]}" --fixed-model-name m3 --report "$WORK/r3.json"
# shellcheck disable=SC2086
check "example: tokenizer, featurizers and DIET retrained" all_are "$WORK/r3.json" trained $NLU_NODES
# shellcheck disable=SC2086
check "example: the policies did not" all_are "$WORK/r3.json" cached $CORE_NODES
sed -i 's/  - action: utter_welcome/  - action: utter_welcome\n  - intent: goodbye\n  - action: utter_goodbye/' \
	"$WORK/bot/data/stories.yml"
status_is 0 "a story changed" in_bot "${T[@]}" --fixed-model-name m4 --report "$WORK/r4.json"
# shellcheck disable=SC2086
check "story: the policies retrained" all_are "$WORK/r4.json" trained $CORE_NODES
# shellcheck disable=SC2086
check "story: no NLU node after the reader did" all_are "$WORK/r4.json" cached \
	WhitespaceTokenizer0 RegexFeaturizer1 LexicalSyntacticFeaturizer2 CountVectorsFeaturizer3 \
	CountVectorsFeaturizer4 DIETClassifier5 EntitySynonymMapper6

# ---- the same seed, the same bytes -------------------------------------------------
status_is 0 "retrain everything (--force)" in_bot "${T[@]}" --force --fixed-model-name m5 --report "$WORK/r5.json"
check "forced: all trained" test "$(count_status "$WORK/r5.json" trained)" -eq 13
same_members() {
	local a=$1 b=$2 f
	for f in $(tar -tzf "$a" | grep '^components/.*[^/]$'); do
		cmp -s <(tar -xzOf "$a" "$f") <(tar -xzOf "$b" "$f") || { echo "  $f differs" >&2; return 1; }
	done
	test "$(tar -tzf "$a" | grep -c '^components/')" -gt 10
}
check "identical component bytes for the same seed" same_members "$WORK/models/m4.tar.gz" "$WORK/models/m5.tar.gz"

# ---- train nlu / train core --------------------------------------------------------
status_is 0 "train nlu" in_bot "$TRAIN" nlu --plugin-path "$P" --cache-dir "$WORK/cache" --out "$WORK/models" \
	--fixed-model-name nlu --report "$WORK/r6.json"
check "nlu: no policy in the run" test -z "$(status "$WORK/r6.json" TEDPolicy2)"
check "nlu: all from the cache" test "$(count_status "$WORK/r6.json" trained)" -eq 0
status_is 64 "nlu model: no conversation" "$TRAIN" predict "$WORK/models/nlu.tar.gz" --plugin-path "$P" \
	--conversation "$WORK/conv.txt"
status_is 0 "train core" in_bot "$TRAIN" core --plugin-path "$P" --cache-dir "$WORK/cache" --out "$WORK/models" \
	--fixed-model-name core --report "$WORK/r7.json"
check "core: no NLU node in the run" test -z "$(status "$WORK/r7.json" DIETClassifier5)"
status_is 0 "core model: a conversation" "$TRAIN" predict "$WORK/models/core.tar.gz" --plugin-path "$P" \
	--conversation "$WORK/conv.json"
# ---- finetuning through the Rasa config (issue 6) --------------------------------
status_is 0 "--finetune a Rasa project's model" in_bot "${T[@]}" --finetune "$WORK/models/m1.tar.gz" \
	--epoch-fraction 0.5 --fixed-model-name ft --report "$WORK/rft.json"
has "DIET continues for half its 60 epochs" '^train: DIETClassifier5: 38 examples, .* 30 epochs, ' "$WORK/err"
check "finetune: DIET trained" test "$(status "$WORK/rft.json" DIETClassifier5)" = trained
status_is 0 "finetuned model: test nlu" in_bot "$TRAIN" test nlu "$WORK/models/ft.tar.gz" --plugin-path "$P" \
	--out "$WORK/results-ft"
has "finetuned: 100 % on its own data" '^intent accuracy: 100.00 % \(38 of 38\)$' "$WORK/out"
status_is 0 "--config from elsewhere" "${T[@]}" --config "$WORK/bot/config.yml" --domain "$WORK/bot/domain.yml" \
	--data "$WORK/bot/data" --dry-run

# ---- config errors ----------------------------------------------------------------
mkdir -p "$WORK/bad"
cp -r "$WORK/bot/domain.yml" "$WORK/bot/data" "$WORK/bad/"
printf 'pipeline:\n  - name: WhitespaceTokenizer\n  - name: SpacyNLP\npolicies:\n  - name: RulePolicy\n' \
	>"$WORK/bad/config.yml"
status_is 65 "an unknown component" sh -c "cd '$WORK/bad' && '$TRAIN' --plugin-path '$P' --cache-dir '$WORK/cache' --out '$WORK/m'"
has "at its line, with the known ones" "^train: config.yml:3:[0-9]+: unknown pipeline component 'SpacyNLP'; known: WhitespaceTokenizer, .*DIETClassifier" "$WORK/err"
printf 'pipeline:\n  - name: WhitespaceTokenizer\n  - name: CountVectorsFeaturizer\n  - name: DIETClassifier\n    epochz: 3\n' \
	>"$WORK/bad/config.yml"
status_is 65 "an unknown key" sh -c "cd '$WORK/bad' && '$TRAIN' nlu --plugin-path '$P' --cache-dir '$WORK/cache' --out '$WORK/m'"
has "the key at its line" "^train: config.yml:5:[0-9]+: .*unknown key 'epochz'.*known keys: .*epochs" "$WORK/err"
printf 'pipeline:\n  - name: CountVectorsFeaturizer\n' >"$WORK/bad/config.yml"
status_is 65 "a featurizer without a tokenizer" sh -c "cd '$WORK/bad' && '$TRAIN' nlu --plugin-path '$P' --cache-dir '$WORK/cache' --out '$WORK/m'"
has "says what to do" "config.yml:2:.*put a tokenizer" "$WORK/err"
check "nothing trained" test ! -e "$WORK/m"
finish
