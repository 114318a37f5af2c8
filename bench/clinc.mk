# bench/clinc.mk - the CLINC150 intent benchmark (issue 6): libtrain's Rasa
# pipeline against scikit-learn, in one run (bench/clinc_bench.sh).
EXTRA_DIST += bench/clinc.mk bench/clinc_bench.sh bench/clinc_sklearn.py bench/clinc_oos.py
bench_targets += bench-clinc
bench-clinc: all
	$(SHELL) $(srcdir)/bench/clinc_bench.sh '$(abs_top_builddir)' '$(abs_top_srcdir)'
.PHONY: bench-clinc
