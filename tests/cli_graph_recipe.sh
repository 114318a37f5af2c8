#!/bin/bash
# End to end (issue 6): Rasa's graph recipe (`recipe: graph.v1`, explicit
# train_schema and predict_schema).  tests/data/graph_recipe/config.yml is
# examples/weatherbot/config.yml written as the graph Rasa's default recipe
# makes of it; trained from scratch it gives the same predictions (texts
# and a conversation) as the default recipe's model, and its nodes have the
# default recipe's fingerprints (a run of one is a cache hit for the
# other); `train nlu` and `train core` build their parts; mistakes are
# reported at config.yml's line.
. "${top_srcdir:-.}/tests/lib.sh"

B="$top_builddir/plugins"
P="$B/rasa/.libs:$B/tokenizers/.libs:$B/featurizers/.libs:$B/nlu/.libs:$B/policy/.libs"
cp -r "$top_srcdir/examples/weatherbot" "$WORK/def"
cp -r "$top_srcdir/examples/weatherbot" "$WORK/graph"
cp "$top_srcdir/tests/data/graph_recipe/config.yml" "$WORK/graph/config.yml"
has() { # has DESCRIPTION REGEX FILE
	if grep -Eq -- "$2" "$3"; then ok "$1"; else fail "$1: no /$2/ in:"; head -c 2000 "$3" | sed 's/^/  | /' >&2; fi
}
in_dir() { local d=$1; shift; (cd "$WORK/$d" && "$@"); }

# ---- the same model from both recipes ------------------------------------------
status_is 0 "train the default recipe" in_dir def "$TRAIN" --plugin-path "$P" --cache-dir "$WORK/c1" \
	--out "$WORK/models" --fixed-model-name def
status_is 0 "train the graph recipe (own cache)" in_dir graph "$TRAIN" --plugin-path "$P" \
	--cache-dir "$WORK/c2" --out "$WORK/models" --fixed-model-name graph --report "$WORK/r.json"
check "graph: all 13 nodes trained" test "$(count_status "$WORK/r.json" trained)" -eq 13
# every example text of the bot, and a few it has not seen
{ sed -n 's/^    - //p' "$WORK/def/data/nlu.yml" | sed 's/\[\([^]]*\)\]([^)]*)/\1/g'
  printf 'what is the weather like in Rome\nbye bye\nhmm\n'; } >"$WORK/texts"
for m in def graph; do
	"$TRAIN" predict "$WORK/models/$m.tar.gz" --plugin-path "$P" <"$WORK/texts" >"$WORK/$m.nlu" 2>"$WORK/err" ||
		fail "predict with $m"
done
check "texts: more than 40 predictions" test "$(wc -l <"$WORK/graph.nlu")" -gt 40
check "texts: the same parse results" cmp "$WORK/def.nlu" "$WORK/graph.nlu"
has "a parse result" '"intent":\{"name":"ask_weather"' "$WORK/graph.nlu"
printf 'hello\nwhat is the weather in Paris\nthanks\nbye\n' >"$WORK/conv.txt"
for m in def graph; do
	"$TRAIN" predict "$WORK/models/$m.tar.gz" --plugin-path "$P" --conversation "$WORK/conv.txt" \
		>"$WORK/$m.core" 2>"$WORK/err" || fail "conversation with $m"
done
check "conversation: the same actions" cmp "$WORK/def.core" "$WORK/graph.core"
has "an action" 'utter_greet' "$WORK/graph.core"
status_is 2 "graph recipe on the default recipe's cache: nothing to train (dry run)" in_dir graph \
	"$TRAIN" --dry-run --plugin-path "$P" --cache-dir "$WORK/c1"
has "every node cached" '^0 to train, 13 cached' "$WORK/out"

# ---- train nlu / train core ------------------------------------------------------
status_is 0 "graph: train nlu" in_dir graph "$TRAIN" nlu --plugin-path "$P" --cache-dir "$WORK/c2" \
	--out "$WORK/models" --fixed-model-name nlu --report "$WORK/r2.json"
check "nlu: no policy" test "$(grep -c '"name": "train_TEDPolicy2"' "$WORK/r2.json")" -eq 0
status_is 0 "nlu model predicts" "$TRAIN" predict "$WORK/models/nlu.tar.gz" --plugin-path "$P" "hello"
has "nlu model: greet" '"intent":\{"name":"greet"' "$WORK/out"
status_is 0 "graph: train core" in_dir graph "$TRAIN" core --plugin-path "$P" --cache-dir "$WORK/c2" \
	--out "$WORK/models" --fixed-model-name core --report "$WORK/r3.json"
check "core: no DIET" test "$(grep -c '"name": "train_DIETClassifier5"' "$WORK/r3.json")" -eq 0

# ---- errors at config.yml's line --------------------------------------------------
bad() { # bad DESCRIPTION SED-SCRIPT REGEX: break the config, expect the message
	mkdir -p "$WORK/bad"
	cp -r "$WORK/graph/domain.yml" "$WORK/graph/data" "$WORK/bad/"
	sed "$2" "$WORK/graph/config.yml" >"$WORK/bad/config.yml"
	status_is 65 "$1" in_dir bad "$TRAIN" --plugin-path "$P" --cache-dir "$WORK/c3" --out "$WORK/m"
	has "$1: at its line" "$3" "$WORK/err"
}
line() { grep -n -m1 -- "$1" "$WORK/graph/config.yml" | cut -d: -f1; }
L=$(line 'uses: rasa.nlu.classifiers.diet_classifier.DIETClassifier')
bad "an unknown class" "${L}s/DIETClassifier\$/SklearnIntentClassifier/" \
	"^train: config.yml:$L:[0-9]+: node 'train_DIETClassifier5': class '.*SklearnIntentClassifier' is not one libtrain has; known: .*DIETClassifier"
L=$(line 'fn: provide_train')
bad "an unknown fn" "${L}s/provide_train/provide_everything/" \
	"^train: config.yml:$L:[0-9]+: node 'domain_provider': DomainProvider has no fn 'provide_everything'.*known: provide_train"
L=$(line 'training_data: run_CountVectorsFeaturizer4')
bad "a need that names no node" "${L}s/run_CountVectorsFeaturizer4/run_CountVectors9/" \
	"^train: config.yml:$L:[0-9]+: node '.*' needs 'run_CountVectors9', which is no node of train_schema"
L=$(line 'constructor_name: create')
bad "an unknown key" "${L}s/constructor_name/constructor/" \
	"^train: config.yml:$L:[0-9]+: node 'schema_validator': unknown key 'constructor'"
L=$(grep -n -m1 -A8 'train_DIETClassifier5:' "$WORK/graph/config.yml" | grep 'epochs' | cut -d- -f1)
bad "a component's unknown config key" "${L}s/epochs/epochz/" \
	"^train: config.yml:$L:[0-9]+: .*unknown key 'epochz'.*epochs"
check "nothing trained" test ! -e "$WORK/m"
finish
