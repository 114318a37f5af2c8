# Packaging, ABI tracking and manual pages (issue 12).  Included at the end
# of Makefile.am.

# ---------------------------------------------------------------------------
# Manual pages: train(1) is in Makefile.am; the recipe format and the plugin
# ABI.  `make check-man` formats each with man's warnings on (groff -ww) and
# fails on any warning, and checks that train(1) names every subcommand and
# long option of the built program's help texts (doc/check-options.sh).
dist_man_MANS += doc/train-recipe.5 doc/train-plugin.7

check-man: train$(EXEEXT)
	@if ! command -v man >/dev/null 2>&1; then \
	  echo "FAIL: check-man needs man (Debian package man-db)"; exit 1; fi
	@fail=0; for m in $(dist_man_MANS); do \
	  w=$$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -E UTF-8 -l $(srcdir)/$$m 2>&1 >/dev/null); \
	  if test -n "$$w"; then echo "FAIL: $$m"; echo "$$w"; fail=1; \
	  else echo "PASS: $$m (man --warnings)"; fi; \
	done; \
	$(SHELL) $(srcdir)/doc/check-options.sh ./train$(EXEEXT) $(srcdir)/doc/train.1 || fail=1; \
	exit $$fail

.PHONY: check-man

# ---------------------------------------------------------------------------
# The ABI (doc/abi.md): abi/libtrain.abi is libabigail's abidw dump of
# libtrain.so's public interface (the types of sdk/include/train only), and
# abi/plugin.abi the dump of a minimal plugin's descriptor (abi/probe.c).
# abi/versions records the version numbers they were taken at.  `make
# abi-check` compares the build against them and fails when a change is not
# matched by a bump of -version-info (configure.ac) or of the plugin ABI
# (TRAIN_ABI_MAJOR/MINOR in <train/plugin.h>); `make abi-baseline` takes a new
# baseline (after a release, or after the bump).
ABI_PROBE_CFLAGS = -g -Og -fPIC -shared -I$(top_srcdir)/sdk/include

abi/probe.so: $(srcdir)/abi/probe.c $(traininclude_HEADERS)
	@$(MKDIR_P) abi
	$(AM_V_CC)$(CC) $(ABI_PROBE_CFLAGS) -o $@ $(srcdir)/abi/probe.c

abi-check: libtrain/libtrain.la abi/probe.so
	@$(SHELL) $(srcdir)/abi/abi-check check '$(srcdir)' '$(abs_top_builddir)/libtrain/.libs/libtrain.so' \
	  abi/probe.so $(LT_CURRENT) $(LT_REVISION) $(LT_AGE)

abi-baseline: libtrain/libtrain.la abi/probe.so
	@$(SHELL) $(srcdir)/abi/abi-check baseline '$(srcdir)' '$(abs_top_builddir)/libtrain/.libs/libtrain.so' \
	  abi/probe.so $(LT_CURRENT) $(LT_REVISION) $(LT_AGE)

.PHONY: abi-check abi-baseline
CLEANFILES += abi/probe.so
# The judge itself, on made-up changes (skips without abidw).
cli_tests += tests/abi_compare.sh

# ---------------------------------------------------------------------------
# Debian packaging (debian/, packaging/check) and the ABI files travel in
# the release tarball.
EXTRA_DIST += debian packaging/check packaging/local.mk doc/abi.md doc/check-options.sh \
	abi/libtrain.abi abi/plugin.abi abi/versions abi/probe.c abi/abi-check abi/compare.py
