# `train check` and `train finetune` (issue 10): the compatibility and cost
# estimate (<train/check.h>, libtrain/workload.c) and the basic/advanced/expert
# modes (libtrain/cli/cmd_finetune.c).
# libtrain/workload.c holds the estimate behind `train check`.
libtrain_libtrain_core_la_SOURCES += libtrain/workload.c
traininclude_HEADERS += sdk/include/train/check.h
train_SOURCES += libtrain/cli/cmd_check.c libtrain/cli/cmd_finetune.c libtrain/serve/compat.c
cli_tests += tests/cli_check.sh tests/cli_finetune.sh
# tests/maxrss: runs a command and prints its peak resident memory (wait4).
check_PROGRAMS += tests/maxrss
tests_maxrss_SOURCES = tests/maxrss.c
EXTRA_DIST += doc/check.md
