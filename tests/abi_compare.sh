#!/bin/bash
# abi_compare.sh - abi/compare.py, the judge of `make abi-check` (doc/abi.md),
# on made-up changes: small shared objects built against copies of the
# public headers with one change each, dumped with abidw and compared, and
# the verdict checked for each set of version numbers.
#
# Environment (from the test harness): top_srcdir, absolute.
# Exit status: 0 pass, 1 fail, 77 skip (no abidw, python3 or cc).
set -u
: "${top_srcdir:?top_srcdir is not set (run through make check)}"
for tool in abidw python3 cc; do
	command -v "$tool" >/dev/null 2>&1 || { echo "SKIP: $tool is not installed"; exit 77; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/abi_compare.XXXXXX")
trap 'rm -rf "$work"' EXIT
n_ok=0 n_fail=0
fail() { echo "FAIL: $*" >&2; n_fail=$((n_fail + 1)); }
ok() { echo "ok: $*"; n_ok=$((n_ok + 1)); }

# variant NAME SED-ON-plugin.h [LIB-SOURCE [EXTRA-DECLS-kernels.h [EXTRA-DECLS-train.h]]]
variant() {
	local name=$1 plug=$2 src=${3:-} kdecl=${4:-} tdecl=${5:-}
	mkdir -p "$work/$name"
	cp -r "$top_srcdir/sdk/include" "$work/$name/inc"
	local h="$work/$name/inc/train"
	# Every variant starts from plugin ABI 1.0's untyped `environments`
	# (1.1 typed it), so that the `environments` variant can type it again.
	sed -i 's|\tconst train_env_class \*const \*environments;|\tconst void *const *environments;|' "$h/plugin.h"
	sed -i "$plug" "$h/plugin.h"
	[ -n "$kdecl" ] && printf '%s\n' "$kdecl" >>"$h/kernels.h"
	[ -n "$tdecl" ] && printf '%s\n' "$tdecl" >>"$h/train.h"
	cc -g -O0 -fPIC -shared -I"$work/$name/inc" -o "$work/$name/probe.so" "$top_srcdir/abi/probe.c" &&
	printf '#include <train/kernels.h>\n#include <train/train.h>\n%s\n' "$src" >"$work/$name/lib.c" &&
	cc -g -O0 -fPIC -shared -fvisibility=hidden -DTRAIN_BUILDING_LIBRARY -I"$work/$name/inc" \
		-o "$work/$name/lib.so" "$work/$name/lib.c" || { fail "$name: build"; return; }
	for f in lib probe; do
		abidw --no-corpus-path --no-comp-dir-path --short-locs --drop-private-types \
			--headers-dir "$h" --out-file "$work/$name/$f.abi" "$work/$name/$f.so" ||
			fail "$name: abidw $f"
	done
}

# judge NAME LT PLUGIN EXPECTED-STATUS PATTERN...: compare the base with
# NAME at those version numbers; the status and every pattern must match.
judge() {
	local name=$1 lt=$2 pv=$3 want=$4
	shift 4
	local out st=0
	out=$(python3 "$top_srcdir/abi/compare.py" "$work/base/lib.abi" "$work/base/probe.abi" \
		"$work/$name/lib.abi" "$work/$name/probe.abi" "$work/versions" "$lt" "$pv" \
		"$work/$name/inc/train" 2>&1) || st=$?
	local good=1
	[ "$st" = "$want" ] || good=0
	for p in "$@"; do
		grep -qF -- "$p" <<<"$out" || { good=0; echo "missing: $p"; }
	done
	if [ "$good" = 1 ]; then ok "$name at $lt, $pv: status $want"
	else echo "$out"; fail "$name at $lt, $pv: status $st, wanted $want"; fi
}

printf 'libtool 0:0:0\nplugin 1.0\n' >"$work/versions"
A='TRAIN_API int train_demo_a(int x) { return x; }'
B='TRAIN_API int train_demo_b(int x) { return x + 1; }'
C='TRAIN_API int train_host_c(int x) { return x + 2; }'
DA='TRAIN_API int train_demo_a(int x);'
DB='TRAIN_API int train_demo_b(int x);'
DC='TRAIN_API int train_host_c(int x);'

variant base 's/x/x/' "$A" "$DA"
variant same 's/x/x/' "$A" "$DA"
variant added 's/x/x/' "$A $B" "$DA $DB"
variant host_added 's/x/x/' "$A $C" "$DA" "$DC"
variant removed 's/x/x/' 'TRAIN_API int train_demo_z(void) { return 0; }' 'TRAIN_API int train_demo_z(void);'
variant changed 's/x/x/' 'TRAIN_API long train_demo_a(int x) { return x; }' 'TRAIN_API long train_demo_a(int x);'
variant append 's|\t/\* ABI 1.0 ends here; later minors append below. \*/|\tint (*extra)(void *self);|' "$A" "$DA"
variant insert 's|\tconst char \*doc;        /\*\*< one line \*/|\tconst char *doc;\n\tint flags;|' "$A" "$DA"
variant reserved 's|\tvoid \*reserved\[TRAIN_PLUGIN_RESERVED\];|\tint (*cancel)(void);\n\tvoid *reserved[TRAIN_PLUGIN_RESERVED - 1];|' "$A" "$DA"
variant environments 's|\tconst void \*const \*environments;|\tconst train_env_class *const *environments;|' "$A" "$DA"

judge same 0:0:0 1.0 0 "the ABI is the baseline's" "PASS"
judge added 0:0:0 1.0 1 "added: function train_demo_b added" \
	"set LT_CURRENT=1, LT_REVISION=0, LT_AGE=1" "TRAIN_ABI_MINOR 0 -> 1"
judge added 1:0:1 1.1 0 "PASS: the version numbers cover these changes"
judge added 1:0:0 1.1 0 "note: the SONAME changed"
judge host_added 0:0:0 1.0 1 "function train_host_c added" "[libtrain.so only (host API)]" \
	"set LT_CURRENT=1, LT_REVISION=0, LT_AGE=1"
judge host_added 1:0:1 1.0 0 "PASS"
judge removed 1:0:1 1.1 1 "incompatible: function train_demo_a removed" \
	"set LT_CURRENT=1, LT_REVISION=0, LT_AGE=0" "TRAIN_ABI_MAJOR 1 -> 2"
judge removed 1:0:0 2.0 0 "PASS"
judge changed 0:0:0 1.0 1 "function train_demo_a changed: was int (int), now long int (int)"
judge append 0:0:0 1.0 1 "train_component_class: member" "appended" "[plugin ABI only]" \
	"TRAIN_ABI_MINOR 0 -> 1"
judge append 0:0:0 1.1 0 "PASS"
judge insert 0:0:0 1.1 1 "inserted at byte 32" "TRAIN_ABI_MAJOR 1 -> 2"
judge reserved 0:0:0 1.1 0 "reserved room at byte 72 now holds" "PASS"
judge environments 0:0:0 1.0 1 "member environments" "now typed" "TRAIN_ABI_MINOR 0 -> 1"

echo "$n_ok passed, $n_fail failed"
[ "$n_fail" = 0 ]
