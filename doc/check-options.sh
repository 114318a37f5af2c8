#!/bin/sh
# doc/check-options.sh TRAIN TRAIN.1 - every subcommand and every long
# option that the program's help texts name must appear in train(1), so
# that the manual keeps up with the program (`make check-man`).
set -eu
train=$1 man=$2
status=0
# The subcommands: the second word of each "usage:" line of `train --help`.
subs=$("$train" --help | sed -n 's/^ *\(usage:\)\{0,1\} *train \([a-z][a-z|]*\).*/\2/p' | tr '|' '\n' | sort -u)
for s in $subs; do
	grep -q "^\.B[RI]* *\"*$s\b\|^\.B[RI]* .*[ \"]$s\b\|^\.BR \[ *$s\b\|^\.RB \[ $s\b" "$man" ||
		{ echo "FAIL: train(1) does not describe the subcommand '$s'"; status=1; }
done
helps() {
	"$train" --help
	for s in train graph plugins cache inspect predict hardware serve check finetune; do "$train" "$s" --help 2>/dev/null || true; done
	"$train" data validate --help 2>/dev/null || true
	"$train" test --help 2>/dev/null || true
}
opts=$(helps | grep -o -- '--[a-z][a-z-]*' | sort -u)
for o in $opts; do
	esc=$(printf '%s' "$o" | sed 's/-/\\\\-/g')
	grep -q -- "$esc" "$man" || { echo "FAIL: train(1) does not describe the option $o"; status=1; }
done
[ "$status" = 0 ] && echo "PASS: train(1) names every subcommand and option of the program's help texts ($(echo $subs | wc -w) subcommands, $(echo $opts | wc -w) options)"
exit "$status"
