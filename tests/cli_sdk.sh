#!/bin/bash
# cli_sdk.sh - the SDK works from outside the tree: install libtrain into a
# temporary DESTDIR, build sdk/examples/uppercase with its own Makefile
# against that install (pkg-config), then train, inspect and predict with the
# installed `train` program.
#
# Environment (from the test harness): top_srcdir, top_builddir, absolute.
# Exit status: 0 pass, 1 fail, 77 skip (no make or pkg-config).
set -eu

: "${top_srcdir:?top_srcdir is not set (run through make check)}"
: "${top_builddir:?top_builddir is not set (run through make check)}"

for tool in make pkg-config; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP: $tool is not installed"
		exit 77
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cli_sdk.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# Run a command with its output in a log; show the log if it fails.
logged() {
	local log=$1
	shift
	if ! "$@" >"$log" 2>&1; then
		cat "$log" >&2
		fail "$* (log above)"
	fi
}

# The outer `make check` may pass its jobserver and flags down; the makes
# run here are independent builds.
unset MAKEFLAGS MFLAGS MAKELEVEL

# ---------------------------------------------------------------------------
# Install into $tmp/destdir.  The configured prefix stays what it is; every
# installed path is that path with $destdir in front.

destdir=$tmp/destdir
logged "$tmp/install.log" make -C "$top_builddir" install DESTDIR="$destdir"

pc=$(find "$destdir" -name libtrain.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || fail "make install put no libtrain.pc under $destdir"

# PKG_CONFIG_SYSROOT_DIR puts $destdir in front of the -I and -L paths, so
# the example's own Makefile (plain `pkg-config --cflags --libs libtrain`)
# builds against the temporary install.
PKG_CONFIG_PATH=$(dirname "$pc")
PKG_CONFIG_SYSROOT_DIR=$destdir
export PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR

# Find what was installed by name, so that any --prefix, --bindir or
# --libdir the tree was configured with works.
train=$(find "$destdir" -path '*/bin/train' -type f | head -n 1)
[ -n "$train" ] || fail "make install put no train program under $destdir"
lib=$(find "$destdir" -name 'libtrain.so*' | head -n 1)
[ -n "$lib" ] || fail "make install put no libtrain.so under $destdir"
libdir=$(dirname "$lib")
[ -n "$(find "$destdir" -path '*/include/train/plugin.h')" ] ||
	fail "make install put no <train/plugin.h> under $destdir"

LD_LIBRARY_PATH=$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export LD_LIBRARY_PATH
# Only the plugins asked for: not the developer's, not the system's.
TRAIN_PLUGIN_PATH=
export TRAIN_PLUGIN_PATH

# ---------------------------------------------------------------------------
# Build the example out of tree, with its own Makefile.

work=$tmp/uppercase
cp -R "$top_srcdir/sdk/examples/uppercase" "$work"
chmod -R u+w "$work"  # a distcheck source tree is read-only
rm -f "$work/uppercase.so"
logged "$tmp/build.log" make -C "$work"
[ -f "$work/uppercase.so" ] || fail "make built no uppercase.so"
cd "$work"

logged "$tmp/plugins.log" "$train" plugins --plugin-path .
grep -q uppercase "$tmp/plugins.log" || { cat "$tmp/plugins.log" >&2; fail "train plugins does not list uppercase"; }
grep -q Uppercase "$tmp/plugins.log" || { cat "$tmp/plugins.log" >&2; fail "train plugins does not list the Uppercase component"; }

# ---------------------------------------------------------------------------
# Train, then check the model.

cache=$tmp/cache
out=$tmp/models
logged "$tmp/train.log" "$train" --plugin-path . --recipe recipe.yml \
	--cache-dir "$cache" --out "$out" -q

models=$(find "$out" -maxdepth 1 -name '*-uppercase.tar.gz' | wc -l)
[ "$models" -eq 1 ] || { ls -l "$out" >&2 || true; fail "expected one $out/<time>-uppercase.tar.gz, found $models"; }
model=$(find "$out" -maxdepth 1 -name '*-uppercase.tar.gz')

logged "$tmp/inspect.log" "$train" inspect "$model"
grep -q '"upper"' "$tmp/inspect.log" || { cat "$tmp/inspect.log" >&2; fail "train inspect does not show node upper"; }

logged "$tmp/predict.log" "$train" predict "$model" --plugin-path . text=hello
grep -q HELLO "$tmp/predict.log" || { cat "$tmp/predict.log" >&2; fail "train predict text=hello did not print HELLO"; }

# A dry run now finds everything in the cache and a model in --out: 0.
# (Exit statuses of --dry-run are flags; see train(1).)
set +e
"$train" --plugin-path . --recipe recipe.yml --cache-dir "$cache" --out "$out" \
	--dry-run -q >"$tmp/dry.log" 2>&1
status=$?
set -e
[ "$status" -eq 0 ] || { cat "$tmp/dry.log" >&2; fail "dry run after training exited $status, expected 0 (all cached)"; }

echo "PASS: the uppercase example builds against an installed libtrain, trains and predicts"
exit 0
