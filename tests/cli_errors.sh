#!/bin/bash
# Bad recipes: each gives "file:line:col: what" and a non-zero exit status,
# and nothing is trained.
. "${top_srcdir:-.}/tests/lib.sh"

P=$(plugin_dir testparts.so)
R="$WORK/recipe.yml"
bad() { # bad WHAT EXPECTED_STATUS EXPECTED_LOCATION_REGEX
	status_is "$2" "$1" "$TRAIN" --recipe "$R" --plugin-path "$P" --cache-dir "$WORK/cache" \
		--out "$WORK/models"
	if grep -Eq "^train: .*recipe.yml:$3: " "$WORK/err"; then
		ok "$1: located ($(head -1 "$WORK/err"))"
	else
		fail "$1: no location $3 in: $(cat "$WORK/err")"
	fi
}

printf 'version: 1\nname: x\ntrain:\n  targets: [a\n  nodes: {}\n' >"$R"
bad "malformed YAML" 65 '[0-9]+:[0-9]+'

printf 'version: 1\nname: x\ntrain:\n  targets: [a]\n  nodes:\n    a: {component: Nope}\n' >"$R"
bad "unknown component" 69 '6:[0-9]+'

printf 'version: 1\nname: x\ntrain:\n  targets: [a]\n  nodes:\n    a: {component: Echo, needs: {in: b}}\n    b: {component: Echo, needs: {in: a}}\n' >"$R"
bad "cycle" 65 '[67]:[0-9]+'

printf 'version: 1\nname: x\ntrain:\n  targets: [a]\n  nodes:\n    a:\n      component: Source\n      config: {sleep_ms: soon}\n' >"$R"
bad "bad config type" 65 '8:[0-9]+'

printf 'version: 1\nname: x\ntrain:\n  targets: [a]\n  nodes:\n    a: {component: Source, config: {valeu: 3}}\n' >"$R"
bad "unknown config key" 65 '6:[0-9]+'
check "unknown key lists the known ones" grep -q 'known keys: value' "$WORK/err"

printf 'version: 1\nname: x\ntrain:\n  targets: [a]\n  nodes:\n    a: {component: Source}\n    a: {component: Source}\n' >"$R"
bad "duplicate node" 65 '7:[0-9]+'

check "nothing was trained" test ! -e "$WORK/models" -o -z "$(ls -A "$WORK/models" 2>/dev/null)"

printf 'version: 1\nname: x\ntrain:\n  targets: [a]\n  nodes:\n    a: {component: Source, config: {fail: true}}\n' >"$R"
status_is 70 "a failing component" "$TRAIN" --recipe "$R" --plugin-path "$P" \
	--cache-dir "$WORK/cache" --out "$WORK/models"
check "the failure names the node" grep -q "node 'a' (Source): train failed: asked to fail" "$WORK/err"
status_is 64 "no recipe" "$TRAIN" --plugin-path "$P"
status_is 65 "missing recipe file" "$TRAIN" --recipe "$WORK/nope.yml"
finish
