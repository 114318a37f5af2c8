# `train serve` (issue 11): the training-job HTTP API, built into the train
# program (libmicrohttpd, jansson, LMDB).  The page is page.html, turned
# into a C string at build time (no external assets).
train_SOURCES += libtrain/cli/cmd_serve.c libtrain/serve/serve.h libtrain/serve/serve.c \
	libtrain/serve/jobs.c
nodist_train_SOURCES = libtrain/serve/page.c
train_CFLAGS += $(MHD_CFLAGS) $(LMDB_CFLAGS)
train_LDADD += $(MHD_LIBS) $(LMDB_LIBS)
CLEANFILES += libtrain/serve/page.c
EXTRA_DIST += doc/serve.md libtrain/serve/page.html tests/cli_serve.sh tests/serve_page.sh \
	tests/data/serve/steps.yml tests/data/serve/two-steps.yml bench/serve_bench.sh bench/serve_bench.c

libtrain/serve/page.c: $(srcdir)/libtrain/serve/page.html
	$(AM_V_GEN)$(MKDIR_P) libtrain/serve && { \
	  echo '/* generated from page.html by libtrain/serve/local.mk */'; \
	  echo 'const char serve_page_html[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $(srcdir)/libtrain/serve/page.html; \
	  echo ';'; } >$@.tmp && mv $@.tmp $@

cli_tests += tests/cli_serve.sh tests/serve_page.sh

EXTRA_PROGRAMS += bench/serve_bench
bench_serve_bench_SOURCES = bench/serve_bench.c
bench_serve_bench_LDADD = $(PTHREAD_LIBS)
bench_targets += bench-serve
bench-serve: all bench/serve_bench$(EXEEXT)
	$(SHELL) $(srcdir)/bench/serve_bench.sh '$(abs_top_builddir)' '$(abs_top_srcdir)'
.PHONY: bench-serve
