#!/bin/bash
# The quick start: the example bot trains with the basic plugin, retrains
# from the cache, and its model answers.
. "${top_srcdir:-.}/tests/lib.sh"

: "${TRAIN_BASIC_PLUGINS:=$top_builddir/plugins/basic/.libs}"
T=("$TRAIN" --recipe "$top_srcdir/examples/hello/recipe.yml" --plugin-path "$TRAIN_BASIC_PLUGINS"
	--cache-dir "$WORK/cache" --out "$WORK/models")
status_is 0 "train the example" "${T[@]}" --fixed-model-name hello --report "$WORK/r1.json"
check "three nodes trained" test "$(count_status "$WORK/r1.json" trained)" -eq 3
status_is 0 "retrain the example" "${T[@]}" --fixed-model-name again --report "$WORK/r2.json"
check "nothing retrained" test "$(count_status "$WORK/r2.json" cached)" -eq 3
check "identical classifier state" cmp <(tar -xzOf "$WORK/models/hello.tar.gz" components/classifier) \
	<(tar -xzOf "$WORK/models/again.tar.gz" components/classifier)

predict_intent() {
	"$TRAIN" predict "$WORK/models/hello.tar.gz" --plugin-path "$TRAIN_BASIC_PLUGINS" text="$1" |
		sed -n 's/.*"intent": {"name": "\([a-z_]*\)".*/\1/p'
}
check "greeting" test "$(predict_intent 'hello there')" = greet
check "farewell" test "$(predict_intent 'bye, see you later')" = goodbye
check "bot challenge" test "$(predict_intent 'am I talking to a bot?')" = bot_challenge
finish
