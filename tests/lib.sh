# tests/lib.sh - shared by the end-to-end tests of the `train` program.
# Sourced by tests/cli_*.sh; the harness sets top_srcdir, top_builddir and
# TRAIN_TEST_PLUGINS (see AM_TESTS_ENVIRONMENT in Makefile.am).

set -eu
: "${top_builddir:=$(pwd)}"
: "${top_srcdir:=$top_builddir}"
: "${TRAIN_TEST_PLUGINS:=$top_builddir/tests/plugins/.libs}"
TRAIN="$top_builddir/train"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/train-cli-XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# Runs get their own temporary folder, so that what a killed run leaves
# there can be checked.
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"
unset TRAIN_PLUGIN_PATH TRAIN_CACHE_DIR TRAIN_CACHE_MAX_SIZE
export XDG_CACHE_HOME="$WORK/xdg"

n_ok=0
n_fail=0
fail() { echo "FAIL: $*" >&2; n_fail=$((n_fail + 1)); }
ok() { echo "ok: $*"; n_ok=$((n_ok + 1)); }

# check DESCRIPTION COMMAND...: the command must succeed
check() {
	local what=$1
	shift
	if "$@"; then ok "$what"; else fail "$what"; fi
}

# status_is WANT DESCRIPTION COMMAND...: run it, compare its exit status
status_is() {
	local want=$1 what=$2
	shift 2
	set +e
	"$@" >"$WORK/out" 2>"$WORK/err"
	local got=$?
	set -e
	if [ "$got" -eq "$want" ]; then
		ok "$what (exit $got)"
	else
		fail "$what: exit $got, expected $want"
		sed 's/^/  | /' "$WORK/err" >&2
	fi
}

# plugin_dir NAME.so...: a folder with links to the named test plugins
plugin_dir() {
	local d
	d=$(mktemp -d "$WORK/plugins-XXXXXX")
	for p in "$@"; do ln -s "$TRAIN_TEST_PLUGINS/$p" "$d/$p"; done
	echo "$d"
}

# count_status REPORT STATUS: nodes with that status in a JSON report
count_status() {
	grep -c "\"status\": \"$2\"" "$1" || true
}

finish() {
	echo "$n_ok passed, $n_fail failed"
	[ "$n_fail" -eq 0 ]
}
