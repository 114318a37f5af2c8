#!/bin/bash
# End to end (issue 6): the Rasa example bots of ../shared/data (skipped, 77,
# without them) through Rasa's default recipe.  Their own config.yml files
# name components libtrain does not have (SpacyNLP, DucklingEntityExtractor,
# ResponseSelector, UnexpecTEDIntentPolicy), so each bot trains with a
# config of libtrain's components and few epochs (the test's time): every
# bot trains, predicts, reaches 100 % intent accuracy on its own NLU data,
# and its test stories (where it ships them) pass `train test core`.
. "${top_srcdir:-.}/tests/lib.sh"

S="${TRAIN_SHARED_DATA:-$top_srcdir/../shared/data}/rasa"
if [ ! -d "$S/rasa-examples" ]; then
	echo "no Rasa example bots in $S: skipped"
	exit 77
fi
B="$top_builddir/plugins"
P="$B/rasa/.libs:$B/tokenizers/.libs:$B/featurizers/.libs:$B/nlu/.libs:$B/policy/.libs"
# Own-data NLU accuracy: 100 % except for examples whose text the data
# itself gives two intents (moodbot and responseselectorbot have "good
# afternoon" under greet and under goodbye, financial-demo "what places
# have I spent money?" under check_balance and search_transactions): one
# of each pair is necessarily wrong.  `train data validate` names them; the
# test allows a miss only on such a text, at most one per text.
# formbot's test story "unhappy path" (chitchat inside the form) passes as
# in Rasa's test, which emulates the form's rejection when the form is
# predicted where the story has another action.
# Known gaps, reported but not failed (TRAIN_RASA_STRICT=1 fails them):
# none now; list "BOT:nlu" or "BOT:core" here to add one.
KNOWN=" "
has() { # has DESCRIPTION REGEX FILE [KEY]
	if grep -Eq -- "$2" "$3"; then
		ok "$1"
	elif [ -n "${4:-}" ] && [ -z "${TRAIN_RASA_STRICT:-}" ] && [[ $KNOWN == *" $4 "* ]]; then
		echo "known gap: $1:"; sed 's/^/  | /' "$3"
	else
		fail "$1: no /$2/ in:"; sed 's/^/  | /' "$3" >&2
	fi
}
# nlu_own_data BOT TEST_OUTPUT ERRORS_JSON: every example right but those
# whose text is under two intents (from `train data validate`).
nlu_own_data() {
	local conflicts missed n_conf n_miss bad=""
	conflicts=$(cd "$WORK/$1" && "$TRAIN" data validate 2>&1 |
		sed -n "s/.*warning: example '\(.*\)' is under intent '.*' here and under .*/\1/p" | sort -u)
	missed=$(sed -n 's/^ *"text": "\(.*\)",$/\1/p' "$3" 2>/dev/null | sort)
	n_conf=$(printf '%s' "$conflicts" | grep -c . || true)
	n_miss=$(printf '%s' "$missed" | grep -c . || true)
	while IFS= read -r t; do
		[ -n "$t" ] || continue
		printf '%s\n' "$conflicts" | grep -Fxq -- "$t" || bad="$bad '$t'"
	done <<<"$missed"
	if grep -Eq '^intent accuracy: 100.00 %' "$2"; then
		ok "$1: 100 % on its own NLU data"
	elif [ -z "$bad" ] && [ "$n_miss" -le "$n_conf" ] && [ "$(printf '%s\n' "$missed" | uniq -d)" = "" ]; then
		ok "$1: every NLU example right but $n_miss of the $n_conf the data gives two intents"
	else
		fail "$1: NLU examples missed that the data does not give two intents:$bad ($n_miss missed, $n_conf conflicting):"
		sed 's/^/  | /' "$2" >&2
	fi
}
config() {
	cat <<'YML'
recipe: default.v1
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: RegexFeaturizer
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
  - name: DIETClassifier
    epochs: 150
    transformer_size: 64
    number_of_transformer_layers: 1
    random_seed: 1
  - name: EntitySynonymMapper
YML
	# a bot with retrieval intents ("intent: chitchat/ask_name") gets a
	# ResponseSelector, as its own config.yml has
	if grep -Eq '^- intent: [^ ]+/' "$1"/data/*.yml 2>/dev/null; then
		cat <<'YML'
  - name: ResponseSelector
    epochs: 100
    random_seed: 1
YML
	fi
	cat <<'YML'
policies:
  - name: MemoizationPolicy
  - name: RulePolicy
  - name: TEDPolicy
    max_history: 5
    epochs: 60
    transformer_size: 32
    random_seed: 1
YML
}

for d in ${TRAIN_RASA_BOTS:-"$S"/rasa-examples/*/ "$S"/financial-demo/}; do
	[ -f "$d/domain.yml" ] && [ -d "$d/data" ] || continue
	bot=$(basename "$d")
	mkdir -p "$WORK/$bot"
	cp -r "$d/domain.yml" "$d/data" "$WORK/$bot/"
	[ -d "$d/tests" ] && cp -r "$d/tests" "$WORK/$bot/"
	config "$d" >"$WORK/$bot/config.yml"
	status_is 0 "$bot: trains" sh -c "cd '$WORK/$bot' && '$TRAIN' -q --plugin-path '$P' --cache-dir '$WORK/cache' \
		--out '$WORK/models' --fixed-model-name '$bot'"
	M="$WORK/models/$bot.tar.gz"
	[ -f "$M" ] || continue
	status_is 0 "$bot: test nlu" sh -c "cd '$WORK/$bot' && '$TRAIN' test nlu '$M' --plugin-path '$P' \
		--out '$WORK/results/$bot'"
	nlu_own_data "$bot" "$WORK/out" "$WORK/results/$bot/intent_errors.json"
	check "$bot: intent_report.json" test -s "$WORK/results/$bot/intent_report.json"
	if grep -q ResponseSelector "$WORK/$bot/config.yml"; then
		status_is 0 "$bot: predict" "$TRAIN" predict "$M" --plugin-path "$P" "what is your name"
		has "$bot: the response selector picks ask_name" '"utter_action":"utter_chitchat/ask_name"' "$WORK/out"
	fi
	for t in "$WORK/$bot"/tests/*.yml; do
		[ -f "$t" ] || continue
		grep -q '^stories:' "$t" || continue
		status_is 0 "$bot: test core $(basename "$t")" "$TRAIN" test core "$M" --plugin-path "$P" \
			--stories "$t" --out "$WORK/results/$bot"
		has "$bot: every test story passes" '^stories: ([0-9]+) of \1 correct' "$WORK/out" "$bot:core"
	done
done
finish
