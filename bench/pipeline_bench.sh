#!/bin/bash
# pipeline_bench.sh BUILDDIR SRCDIR: the wall time of each stage of
# `train --target full-pipeline` with the realistic settings of
# bench/pipeline.yml (issue 9), and of a rerun (every stage from the
# cache).  No reference exists to run beside it (MARK's PyTorch
# orchestrator is not in the repository), so the lines say so.
#
# Data: ../shared/data (or $TRAIN_SHARED_DATA): tinyshakespeare/input.txt
# (MIT), clinc150/data_full.json (CC-BY 3.0) through bench/clinc_to_jsonl.py,
# squad-v1.1-dev/passages.tsv (CC-BY-SA 4.0) through bench/rag_bm25.py, in
# a scratch folder removed at the end.
#
# PIPELINE_BENCH_CHARS=N trains Mamba on the first N characters of
# tinyshakespeare only (default: all 1,115,394), and
# PIPELINE_BENCH_CLINC=data_small.json the smaller CLINC150 (7,500 train
# texts instead of 15,000), for a loaded machine.
#
# Measured (2026-11-28, 2 cores shared with other jobs at a load of 9-22,
# PIPELINE_BENCH_CHARS=100000 PIPELINE_BENCH_CLINC=data_small.json): data
# 0.4 s, mamba 24.8 s (3,756 tokens/s, best validation loss 1.868), transformer
# 298.1 s (2.27 classifier steps/s, 8.7 % on val after 2 epochs), rag 1.3 s,
# rl 7.0 s (72k steps/s, mean return 492); all 333 s, the cached rerun 7.1 s.
#
# Prints, per stage, then for the rerun:
#   bench pipeline-STAGE: ours X s, no reference
set -eu
build=${1:-.}
src=${2:-.}
data=${TRAIN_SHARED_DATA:-$src/../shared/data}
# a worktree under /work/wt/NAME sees the data one folder further up
[ -d "$data" ] || [ ! -d "$src/../../shared/data" ] || data="$src/../../shared/data"
PY=${PYTHON:-/usr/bin/python3}
threads=${BENCH_THREADS:-2}
TRAIN="$build/train"
L="$build/plugins"
P="$L/pipeline/.libs:$L/mamba/.libs:$L/bert/.libs:$L/rag/.libs:$L/envs/.libs:$L/ppo/.libs"

clinc=${PIPELINE_BENCH_CLINC:-data_full.json}
for f in tinyshakespeare/input.txt clinc150/$clinc squad-v1.1-dev/passages.tsv; do
	if [ ! -f "$data/$f" ]; then
		echo "bench pipeline: skipped, no $data/$f (set TRAIN_SHARED_DATA)" >&2
		exit 0
	fi
done
work=$(mktemp -d "${TMPDIR:-/tmp}/train-pipeline-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/data"
cp "$src/bench/pipeline.yml" "$work/"
if [ -n "${PIPELINE_BENCH_CHARS:-}" ]; then
	head -c "$PIPELINE_BENCH_CHARS" "$data/tinyshakespeare/input.txt" >"$work/data/input.txt"
else
	cp "$data/tinyshakespeare/input.txt" "$work/data/"
fi
"$PY" "$src/bench/clinc_to_jsonl.py" "$data/clinc150/$clinc" "$work/data"
"$PY" "$src/bench/rag_bm25.py" convert "$data/squad-v1.1-dev" "$work/sq" >/dev/null
mv "$work/sq/documents.jsonl" "$work/data/"

echo "== machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) (shared with other jobs)"
run() { # run REPORT: the whole pipeline, timed
	TRAIN_RECIPE_PATH="$src/recipes" "$TRAIN" --target full-pipeline --config "$work/pipeline.yml" \
		--plugin-path "$P" --cache-dir "$work/cache" --output-dir "$work/export" \
		--threads "$threads" --report "$1" -q
}
t0=$(date +%s.%N)
run "$work/r1.json"
t1=$(date +%s.%N)
run "$work/r2.json"
t2=$(date +%s.%N)
"$PY" - "$work/r1.json" "$work/r2.json" "$work/export/manifest.json" <<'PY'
import json, sys
r1, r2, man = (json.load(open(p)) for p in sys.argv[1:4])
print("%-12s %8s %8s  %s" % ("stage", "seconds", "rerun", "metrics"))
for a, b in zip(r1["stages"], r2["stages"]):
    m = next((x["metrics"] for x in man["stages"] if x["stage"] == a["stage"]), {})
    keys = ("best.loss", "tokens_per_second", "val_accuracy", "steps_per_second",
            "mean_return_100", "records")
    short = {n: {k: v for k, v in d.items() if k in keys} for n, d in m.items()}
    print("%-12s %8.1f %8.2f  %s" % (a["stage"], a["seconds"], b["seconds"], json.dumps(short)))
for a in r1["stages"]:
    print("bench pipeline-%s: ours %.1f s, no reference" % (a["stage"], a["seconds"]))
PY
echo "bench pipeline-total: ours $(echo "$t1 - $t0" | bc) s, no reference"
echo "bench pipeline-rerun: ours $(echo "$t2 - $t1" | bc) s (every stage from the cache), no reference"
