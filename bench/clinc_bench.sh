#!/bin/bash
# clinc_bench.sh BUILDDIR SRCDIR: intent accuracy, out-of-scope recall and
# training time on CLINC150 (issue 6), libtrain's Rasa pipeline against
# scikit-learn, in one run.
#
# Data: ../shared/data/clinc150/data_full.json (or $TRAIN_SHARED_DATA),
# CC-BY 3.0 (Larson et al., 2019).  bench/clinc_to_rasa.py writes the
# "train" split (15,000 examples, 150 intents) as a Rasa project, in a
# scratch folder removed at the end; bench/clinc_oos.py writes val +
# oos_val and test + oos_test as lines of text.
#
# ours: `train nlu` on the project, from an empty cache (tokenizer,
# featurizers and DIET all train; wall and CPU time of the whole command,
# process start and writing the model included), then `train predict` over
# val + oos_val and test + oos_test (bench/clinc_oos.py): the 150-way
# in-scope accuracy on "test" (the top intent, as `train test nlu` counts
# it), and the out-of-scope recall on oos_test with "oos" when the top
# confidence is under the threshold that is best on val.
#
# The config.yml below is one a Rasa user writes: Rasa's pipeline shape
# (WhitespaceTokenizer, CountVectorsFeaturizer of word 1-2-grams and of
# char_wb 1-4-grams, DIETClassifier), with the settings that measured best
# here; Rasa's defaults stay the components' defaults.  Some of its keys
# are libtrain's own, which Rasa does not have: CountVectorsFeaturizer's
# sublinear_tf / use_idf / norm, scikit-learn's TF-IDF weighting (with
# Rasa's raw counts DIET measured 89.2 %), and DIETClassifier's
# weight_averaging_epochs (the mean of the weights at the ends of the
# last epochs, stochastic weight averaging: +1.3 points on val).  DIET: no transformer layers
# (DIET then reads only the sentence features), no hidden layers, the
# sparse features to 512 units, embedding 128, a full softmax over the
# labels (as every DIET here), L2 regularization 3e-5 (with L2-normalized
# TF-IDF rows Rasa's 0.002 pulls every weight to zero: 0.7 %), dropout
# 0.3, batches growing 64 -> 256, learning rate 0.003, CLINC_EPOCHS epochs
# (default 30), the weights averaged over the last 20.  doc/recipes.md ("CLINC150") has the measurements behind
# each choice.  CLINC_DIET="YAML lines" replaces the DIET keys and
# CLINC_CVF="YAML lines" the featurizers' extra keys, e.g. Rasa's raw
# counts: CLINC_CVF=' '.
#
# reference: bench/clinc_sklearn.py (/usr/bin/python3, python3-sklearn):
# TF-IDF word 1-2-grams + char_wb 1-4-grams and LinearSVC, and the same
# features with LogisticRegression; the better of the two is the
# reference, both are printed.  Its time is the fit (vectorizers and
# classifier) inside Python, wall and CPU.
#
# CLINC_REF=0 leaves the scikit-learn side out (for trying DIET
# configurations: choose them on the val accuracy printed by
# clinc_oos.py, not on test).
#
# The machine is shared: CPU time is the fair figure when it is loaded.
# Prints:
#   bench clinc150-accuracy: ours X %, sklearn Y %, ratio R
#   bench clinc150-oos-recall: ours X %, sklearn Y %, ratio R
#   bench clinc150-train-time: ours X s, sklearn Y s, ratio R     (wall)
#   bench clinc150-train-cpu: ours X s, sklearn Y s, ratio R      (CPU)
set -eu
build=${1:-.}
src=${2:-.}
data=${TRAIN_SHARED_DATA:-$src/../shared/data}
PY=${PYTHON:-/usr/bin/python3}
TRAIN="$build/train"
B="$build/plugins"
P="$B/rasa/.libs:$B/tokenizers/.libs:$B/featurizers/.libs:$B/nlu/.libs:$B/policy/.libs"

if [ ! -f "$data/clinc150/data_full.json" ]; then
	echo "bench clinc150: skipped, no $data/clinc150/data_full.json (set TRAIN_SHARED_DATA)" >&2
	exit 0
fi
if ! "$PY" -c 'import sklearn' 2>/dev/null; then
	echo "bench clinc150: skipped, scikit-learn missing (apt-get install -y python3-sklearn)" >&2
	exit 0
fi

# libgomp's threads (oneDNN's, OpenBLAS's) spin while they wait; on a
# shared, loaded machine that spinning took 10 times the CPU of the work
# itself (train predict: 4.0 s of CPU for 100 messages, 0.4 s with
# passive waiting, the same output).  Waiting passively is what a loaded
# machine wants; set OMP_WAIT_POLICY=active, or GOMP_SPINCOUNT (a short
# spin, what train picks on an idle machine), to measure another way.
[ -n "${GOMP_SPINCOUNT:-}" ] || export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

work=$(mktemp -d "${TMPDIR:-/tmp}/train-clinc-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
"$PY" "$src/bench/clinc_to_rasa.py" --splits train "$data/clinc150/data_full.json" "$work/train" >/dev/null
"$PY" "$src/bench/clinc_oos.py" texts "$data/clinc150/data_full.json" "$work/oos"

diet=${CLINC_DIET:-"    epochs: ${CLINC_EPOCHS:-30}
    number_of_transformer_layers: 0
    hidden_layers_sizes: {text: [], label: []}
    dense_dimension: {text: 512, label: 20}
    embedding_dimension: 128
    batch_size: [64, 256]
    learning_rate: 0.003
    drop_rate: 0.3
    regularization_constant: 0.00003
    weight_averaging_epochs: 20
    entity_recognition: false
    random_seed: 1"}
cvf=${CLINC_CVF:-"    sublinear_tf: true
    use_idf: true
    norm: l2"}
cat >"$work/train/config.yml" <<YML
recipe: default.v1
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
    max_ngram: 2
$cvf
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
$cvf
  - name: DIETClassifier
$diet
YML

# wall and CPU (user + system, children included) of `train nlu`
# (bash's `time` reports on the shell's stderr: that goes to the file, the
# command's own stderr to the terminal)
TIMEFORMAT='%R %U %S'
exec 3>&2 2>"$work/time"
time (cd "$work/train" && "$TRAIN" nlu -q --plugin-path "$P" --cache-dir "$work/cache" \
	--out "$work/models" --fixed-model-name clinc 2>&3)
exec 2>&3 3>&-
read -r ours_s ours_u ours_sys <"$work/time"
ours_cpu=$(echo "$ours_u + $ours_sys" | bc)
for s in val test; do
	"$TRAIN" predict "$work/models/clinc.tar.gz" --plugin-path "$P" <"$work/oos/$s.txt" >"$work/$s.pred"
done
"$PY" "$src/bench/clinc_oos.py" score "$work/val.pred" "$work/test.pred" "$work/oos" | tee "$work/oos.out"
ours_oos=$(sed -n 's/.*recall \([0-9.]*\) %.*/\1/p' "$work/oos.out")
ours_acc=$(sed -n 's/^accuracy: \([0-9.]*\) %.*/\1/p' "$work/oos.out")
ours_val=$(sed -n 's/^val accuracy: \([0-9.]*\) %.*/\1/p' "$work/oos.out")
echo "ours DIETClassifier: accuracy $ours_acc %, val accuracy $ours_val %, train $ours_s s, cpu $ours_cpu s, oos recall $ours_oos %"
[ "${CLINC_REF:-1}" = 0 ] && exit 0

"$PY" "$src/bench/clinc_sklearn.py" "$data/clinc150/data_full.json" | tee "$work/sk.out"
# the better of the two classifiers
read -r sk_acc sk_s sk_cpu sk_oos < <(sed -n 's/^sklearn [A-Za-z]*: accuracy \([0-9.]*\) %, train \([0-9.]*\) s, cpu \([0-9.]*\) s, oos recall \([0-9.]*\) %/\1 \2 \3 \4/p' \
	"$work/sk.out" | sort -k1,1gr | head -1)
awk -v a="$ours_acc" -v b="$sk_acc" 'BEGIN { printf "bench clinc150-accuracy: ours %.2f %%, sklearn %.2f %%, ratio %.3f\n", a, b, a / b }'
awk -v a="$ours_oos" -v b="$sk_oos" 'BEGIN { printf "bench clinc150-oos-recall: ours %.2f %%, sklearn %.2f %%, ratio %.3f\n", a, b, a / b }'
awk -v a="$ours_s" -v b="$sk_s" 'BEGIN { printf "bench clinc150-train-time: ours %.1f s, sklearn %.1f s, ratio %.3f\n", a, b, a / b }'
awk -v a="$ours_cpu" -v b="$sk_cpu" 'BEGIN { printf "bench clinc150-train-cpu: ours %.1f s, sklearn %.1f s, ratio %.3f\n", a, b, a / b }'
