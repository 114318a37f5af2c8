#!/bin/bash
# End to end: `train data validate` on the crafted Rasa projects of
# tests/data/rasa/validate (exit statuses, file:line findings, options),
# and `train nlu` / `train core` importing and checking a project before
# their recipe: missing data, errors that stop them, warnings that do not.
. "${top_srcdir:-.}/tests/lib.sh"

V="${TRAIN_TEST_DATA:-$top_srcdir/tests/data}/rasa/validate"
in_dir() { # in_dir DIR COMMAND...: run it from DIR (the project's folder)
	local d=$1
	shift
	(cd "$d" && "$@")
}
has() { # has DESCRIPTION REGEX FILE: a line of FILE matches
	if grep -Eq -- "$2" "$3"; then ok "$1"; else fail "$1: no /$2/ in:"; sed 's/^/  | /' "$3" >&2; fi
}
hasnt() {
	if grep -Eq -- "$2" "$3"; then fail "$1: /$2/ in:"; sed 's/^/  | /' "$3" >&2; else ok "$1"; fi
}

# ---- train data validate ---------------------------------------------------

status_is 0 "clean project" in_dir "$V/clean" "$TRAIN" data validate
has "clean: a summary" '^0 errors, 0 warnings; training type: both \(6 NLU examples, 1 stories, 1 rules\)$' "$WORK/out"

status_is 65 "an error" in_dir "$V/story_intent_missing" "$TRAIN" data validate
has "the error at file:line" "^data/stories.yml:19: error: intent 'thank' is used in a story or rule but is not in the domain: add it to 'intents:' in domain.yml" "$WORK/out"
has "error count" '^1 error, 0 warnings' "$WORK/out"

status_is 65 "unresolved slot" in_dir "$V/slot_missing" "$TRAIN" data validate
has "the slot at file:line" "^data/stories.yml:16: error: slot 'mood' is set in a story or rule but is not in the domain" "$WORK/out"
status_is 65 "missing response" in_dir "$V/response_missing" "$TRAIN" data validate
has "the rule's action at file:line" "^data/rules.yml:7: error: action 'utter_bye' has no response" "$WORK/out"
status_is 65 "form slot not in the domain" in_dir "$V/form_slot_missing" "$TRAIN" data validate
has "the form at file:line" "^domain.yml:30: error: form 'weather_form' requires slot 'date'" "$WORK/out"

status_is 0 "warnings only" in_dir "$V/intent_unused" "$TRAIN" data validate
has "the warning at file:line" "^domain.yml:7: warning: intent 'affirm' has no NLU examples and no story or rule uses it" "$WORK/out"
status_is 65 "warnings with --fail-on-warnings" in_dir "$V/intent_unused" "$TRAIN" data validate --fail-on-warnings
status_is 0 "-q" in_dir "$V/intent_unused" "$TRAIN" data validate -q
check "-q prints no warning" test ! -s "$WORK/out"
status_is 65 "-q still prints errors" in_dir "$V/action_missing" "$TRAIN" data validate -q
has "-q: the error" "^data/stories.yml:14: error: action 'action_wether'" "$WORK/out"
hasnt "-q: no warning" "warning" "$WORK/out"

status_is 0 "no conflict with the default history" in_dir "$V/conflict_history" "$TRAIN" data validate
hasnt "default history: no conflict" "conflict" "$WORK/out"
status_is 0 "--max-history 1" in_dir "$V/conflict_history" "$TRAIN" data validate --max-history 1
has "--max-history 1: the conflict" "^data/stories.yml:24: warning: story structure conflict after intent 'inform': 'weather_form' in 'weather' \(data/stories.yml:11\), 'action_weather' in 'goodbye then weather' \(data/stories.yml:24\)" "$WORK/out"
status_is 0 "--max-history 0 (the whole history)" in_dir "$V/conflict_history" "$TRAIN" data validate --max-history 0
hasnt "whole history: no conflict" "conflict" "$WORK/out"
status_is 65 "conflicts are warnings" in_dir "$V/story_conflict" "$TRAIN" data validate --fail-on-warnings
has "the conflict at the second story" "^data/stories.yml:20: warning: story structure conflict after intent 'greet'" "$WORK/out"

# paths given on the command line; a domain folder; several --data
status_is 0 "explicit paths" "$TRAIN" data validate --domain "$V/clean/domain.yml" --data "$V/clean/data"
has "explicit paths: summary" '^0 errors, 0 warnings' "$WORK/out"
mkdir -p "$WORK/split/domain" "$WORK/split/nlu" "$WORK/split/core"
sed -n '1,17p' "$V/clean/domain.yml" >"$WORK/split/domain/a.yml"
{ echo 'version: "3.1"'; sed -n '18,$p' "$V/clean/domain.yml"; } >"$WORK/split/domain/b.yml"
cp "$V/clean/data/nlu.yml" "$WORK/split/nlu/"
cp "$V/clean/data/stories.yml" "$V/clean/data/rules.yml" "$WORK/split/core/"
status_is 0 "a domain folder and two --data" "$TRAIN" data validate --domain "$WORK/split/domain" \
	--data "$WORK/split/nlu" --data "$WORK/split/core"
has "split project: clean" '^0 errors, 0 warnings; training type: both' "$WORK/out"
status_is 65 "the same files with a story error" "$TRAIN" data validate --domain "$WORK/split/domain" \
	--data "$WORK/split/nlu" --data "$V/story_intent_missing/data/stories.yml"
has "the error names the file given" "^$V/story_intent_missing/data/stories.yml:19: error: intent 'thank'" "$WORK/out"

# no domain: only the data is checked, with a word about it
mkdir -p "$WORK/nodomain"
cp -r "$V/clean/data" "$WORK/nodomain/"
status_is 0 "no domain.yml" in_dir "$WORK/nodomain" "$TRAIN" data validate
has "no domain: said so" "no domain" "$WORK/err"
has "no domain: summary" 'training type: nlu .*no domain' "$WORK/out"

# broken input and usage
printf 'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - hi\n  bad: [\n' >"$WORK/nodomain/data/broken.yml"
status_is 65 "a YAML error" in_dir "$WORK/nodomain" "$TRAIN" data validate
has "the YAML error at file:line" '^data/broken.yml:[0-9]+: error: ' "$WORK/out"
status_is 65 "--domain that does not exist" "$TRAIN" data validate --domain "$WORK/nope.yml" --data "$V/clean/data"
status_is 65 "no data folder" in_dir "$WORK" "$TRAIN" data validate
has "no data folder: said so" "give --data" "$WORK/err"
status_is 64 "train data" "$TRAIN" data
status_is 64 "unknown data command" "$TRAIN" data frobnicate
status_is 64 "bad --max-history" "$TRAIN" data validate --max-history many
status_is 64 "unexpected argument" in_dir "$V/clean" "$TRAIN" data validate extra
status_is 0 "train data validate --help" "$TRAIN" data validate --help
has "help: options" "max-history N" "$WORK/out"

# ---- train nlu / train core: import and check first ----------------------------

P=$(plugin_dir testparts.so)
R="$WORK/recipe.yml"
printf 'version: 1\nname: rasa\ntrain:\n  targets: [a]\n  nodes:\n    a: {component: Source, config: {value: A}}\n' >"$R"
T=("$TRAIN" --recipe "$R" --plugin-path "$P" --cache-dir "$WORK/cache" --out "$WORK/models")

status_is 65 "train nlu without NLU data" "$TRAIN" nlu "${T[@]:1}" --data "$V/type_core/data"
has "train nlu: says the NLU data is missing" "^train nlu: no NLU training data in $V/type_core/data/ \(no nlu: examples; it has stories or rules, which \`train core\` trains\)$" "$WORK/err"
status_is 65 "train core without stories" "$TRAIN" core "${T[@]:1}" --data "$V/type_nlu/data" --domain "$V/type_nlu/domain.yml"
has "train core: says the stories are missing" "^train core: no stories or rules in $V/type_nlu/data/ \(no stories: or rules: items; it has NLU data, which \`train nlu\` trains\)$" "$WORK/err"
status_is 65 "train core without a domain" in_dir "$WORK" "$TRAIN" core "${T[@]:1}" --data "$V/clean/data"
has "train core: says the domain is missing" "^train core: no domain: give --domain FILE" "$WORK/err"
status_is 65 "train core with end-to-end stories" "$TRAIN" core "${T[@]:1}" --data "$V/type_e2e/data" --domain "$V/type_e2e/domain.yml"
has "train core: says end-to-end needs train" "end-to-end turns" "$WORK/err"
status_is 65 "train core with an error" "$TRAIN" core "${T[@]:1}" --data "$V/slot_missing/data" --domain "$V/slot_missing/domain.yml"
has "train core: the error at file:line" "^$V/slot_missing/data/stories.yml:16: error: slot 'mood'" "$WORK/err"
has "train core: nothing trained" "^train core: 1 error in the Rasa project" "$WORK/err"
status_is 65 "train nlu with a missing --data" "$TRAIN" nlu "${T[@]:1}" --data "$WORK/nope"
check "nothing was trained" test ! -e "$WORK/models"

# `train nlu` reads no stories: a story error does not stop it
status_is 0 "train nlu ignores story errors" "$TRAIN" nlu "${T[@]:1}" --data "$V/slot_missing/data" --domain "$V/slot_missing/domain.yml"
check "train nlu trained" test "$(ls "$WORK/models" | wc -l)" -eq 1
status_is 0 "train core with warnings goes on" "$TRAIN" core "${T[@]:1}" --data "$V/action_unused/data" --domain "$V/action_unused/domain.yml"
has "train core: the warning" "domain.yml:28: warning: action 'action_unused'" "$WORK/err"
status_is 0 "train core -q: no warning" "$TRAIN" core "${T[@]:1}" -q --data "$V/action_unused/data" --domain "$V/action_unused/domain.yml"
hasnt "train core -q: quiet" "warning" "$WORK/err"
status_is 0 "train core, clean" "$TRAIN" core "${T[@]:1}" --data "$V/clean/data" --domain "$V/clean/domain.yml"
check "train core wrote models" test "$(ls "$WORK/models" | wc -l)" -ge 2
# without --data or --domain, nlu and core train the recipe as before
status_is 0 "train nlu without Rasa options" "$TRAIN" nlu "${T[@]:1}"

# ---- the rasa plugin: three values, each of its own content -------------------

RP="$P:$top_builddir/plugins/rasa/.libs"
mkdir -p "$WORK/proj"
cp -r "$V/clean/domain.yml" "$V/clean/data" "$WORK/proj/"
I=("$TRAIN" --plugin-path "$RP" --cache-dir "$WORK/cache2" --out "$WORK/models2"
	--domain "$WORK/proj/domain.yml" --data "$WORK/proj/data")
status_is 0 "the rasa-import recipe" "${I[@]}" --recipe "$top_srcdir/recipes/rasa-import.yml" \
	--report "$WORK/i1.json"
check "rasa-import: three nodes trained" test "$(count_status "$WORK/i1.json" trained)" -eq 3
status_is 0 "rasa-import again: cached" "${I[@]}" --recipe "$top_srcdir/recipes/rasa-import.yml" \
	--report "$WORK/i2.json"
check "rasa-import again: three cached" test "$(count_status "$WORK/i2.json" cached)" -eq 3

# Readers of each value: after a story changes, only the stories reader retrains.
R2="$WORK/import.yml"
cat >"$R2" <<YML
version: 1
name: import
train:
  targets: [on_domain, on_nlu, on_stories]
  nodes:
    domain: {component: RasaDomain}
    nlu: {component: RasaNLU}
    stories: {component: RasaStories}
    on_domain: {component: Echo, needs: {in: domain}}
    on_nlu: {component: Echo, needs: {in: nlu}}
    on_stories: {component: Echo, needs: {in: stories}}
YML
status() { # status REPORT NODE: that node's status
	tr -d '\n' <"$1" | grep -o "\"name\": \"$2\"[^}]*" | grep -o '"status": "[a-z]*"' | cut -d'"' -f4
}
status_is 0 "readers: first run" "${I[@]}" --recipe "$R2" --report "$WORK/r1.json"
check "readers: the readers trained" test "$(count_status "$WORK/r1.json" trained)" -eq 3
check "readers: the importers came from the rasa-import run" \
	test "$(count_status "$WORK/r1.json" cached)" -eq 3
sed -i 's/      - action: utter_greet/      - action: utter_greet\n      - action: utter_ask_city/' "$WORK/proj/data/stories.yml"
echo "# a comment changes no value" >>"$WORK/proj/domain.yml"
status_is 0 "readers: a story changed" "${I[@]}" --recipe "$R2" --report "$WORK/r2.json"
check "readers: the stories reader retrained" test "$(status "$WORK/r2.json" on_stories)" = trained
check "readers: the NLU reader stayed cached" test "$(status "$WORK/r2.json" on_nlu)" = cached
check "readers: the domain reader stayed cached" test "$(status "$WORK/r2.json" on_domain)" = cached
sed -i 's/      - hello$/      - hello\n      - hey there/' "$WORK/proj/data/nlu.yml"
status_is 0 "readers: an example changed" "${I[@]}" --recipe "$R2" --report "$WORK/r3.json"
check "readers: now the NLU reader retrained" test "$(status "$WORK/r3.json" on_nlu)" = trained
check "readers: and the stories reader is cached" test "$(status "$WORK/r3.json" on_stories)" = cached
printf 'version: "3.1"\nnlu:\n- intent: greet\n  examples: [\n' >"$WORK/proj/data/bad.yml"
status_is 70 "a broken file fails its reader" "${I[@]}" --recipe "$R2"
has "the reader's failure has file:line" "data/bad.yml:[0-9]+" "$WORK/err"
status_is 65 "without --data" "$TRAIN" --plugin-path "$RP" --cache-dir "$WORK/cache2" --out "$WORK/models2" \
	--recipe "$top_srcdir/recipes/rasa-import.yml" --domain "$WORK/proj/domain.yml"
has "without --data: says so" 'needs --data' "$WORK/err"
finish
