#!/bin/bash
# clinc_bench.sh BUILDDIR SRCDIR: intent accuracy and training time on
# CLINC150 (issue 6), libtrain's Rasa pipeline against scikit-learn, in
# one run.
#
# Data: ../shared/data/clinc150/data_full.json (or $TRAIN_SHARED_DATA),
# CC-BY 3.0 (Larson et al., 2019).  bench/clinc_to_rasa.py writes the
# "train" split (15,000 examples, 150 intents) as a Rasa project and the
# "test" split (4,500) as a second project's NLU data, in a scratch folder
# removed at the end.
#
# ours: `train nlu` on the project, from an empty cache (tokenizer,
# featurizers and DIET all train; wall time of the whole command, process
# start and writing the model included), then `train test nlu` on the test
# split (its "intent accuracy" line).  The pipeline is Rasa's shape:
# WhitespaceTokenizer, CountVectorsFeaturizer (words) and
# CountVectorsFeaturizer (char_wb 1-4), DIETClassifier.  DIET's config is
# the benchmark recipe below, not Rasa's defaults (those stay the
# component's defaults): Rasa's default DIET (2 transformer layers of 256,
# 100 epochs in Rasa's default config.yml) needs far more than the issue's
# 2 minutes on 2 cores.  The recipe: no transformer layers (DIET then reads
# only the sentence features), one hidden layer of 512 over a 512-wide
# sparse-to-dense layer, embedding 128, a full softmax over the labels (as
# every DIET here), CLINC_EPOCHS epochs (default 30) with batches growing
# 64 -> 256, learning rate 0.002, dropout 0.3.  Measured (2026-11-27, two
# heavily loaded cores): 89.2 %, no better than DIET without a
# transformer at its defaults for 40 epochs (89.0 %), and below
# scikit-learn's 93.0 %: the recipe is a starting point, not a tuned one.
# CLINC_DIET="YAML lines" replaces the recipe's DIET keys, e.g. to measure
# Rasa's defaults: CLINC_DIET='    epochs: 100'.
#
# reference: bench/clinc_sklearn.py (/usr/bin/python3, python3-sklearn):
# TF-IDF word 1-2-grams + char_wb 1-4-grams and LinearSVC, and the same
# features with LogisticRegression; the better of the two is the
# reference, both are printed.  Its time is the fit (vectorizers and
# classifier) inside Python.
#
# Prints the two lines of the issue:
#   bench clinc150-accuracy: ours X %, sklearn Y %, ratio R
#   bench clinc150-train-time: ours X s, sklearn Y s, ratio R
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

work=$(mktemp -d "${TMPDIR:-/tmp}/train-clinc-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
"$PY" "$src/bench/clinc_to_rasa.py" --splits train "$data/clinc150/data_full.json" "$work/train" >/dev/null
"$PY" "$src/bench/clinc_to_rasa.py" --splits test "$data/clinc150/data_full.json" "$work/test" >/dev/null

diet=${CLINC_DIET:-"    epochs: ${CLINC_EPOCHS:-30}
    number_of_transformer_layers: 0
    hidden_layers_sizes: {text: [512], label: []}
    dense_dimension: {text: 512, label: 20}
    embedding_dimension: 128
    batch_size: [64, 256]
    learning_rate: 0.002
    drop_rate: 0.3
    entity_recognition: false
    random_seed: 1"}
cat >"$work/train/config.yml" <<YML
recipe: default.v1
language: en
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: CountVectorsFeaturizer
    analyzer: char_wb
    min_ngram: 1
    max_ngram: 4
  - name: DIETClassifier
$diet
YML

t0=$(date +%s.%N)
(cd "$work/train" && "$TRAIN" nlu -q --plugin-path "$P" --cache-dir "$work/cache" --out "$work/models" \
	--fixed-model-name clinc)
t1=$(date +%s.%N)
ours_s=$(echo "$t1 - $t0" | bc)
(cd "$work/test" && "$TRAIN" test nlu "$work/models/clinc.tar.gz" --plugin-path "$P" --out "$work/results") \
	>"$work/test.out"
ours_acc=$(sed -n 's/^intent accuracy: \([0-9.]*\) %.*/\1/p' "$work/test.out")
echo "ours DIETClassifier: accuracy $ours_acc %, train $ours_s s"

"$PY" "$src/bench/clinc_sklearn.py" "$data/clinc150/data_full.json" | tee "$work/sk.out"
# the better of the two classifiers
read -r sk_acc sk_s < <(sed -n 's/^sklearn [A-Za-z]*: accuracy \([0-9.]*\) %, train \([0-9.]*\) s/\1 \2/p' \
	"$work/sk.out" | sort -k1,1gr | head -1)
awk -v a="$ours_acc" -v b="$sk_acc" 'BEGIN { printf "bench clinc150-accuracy: ours %.2f %%, sklearn %.2f %%, ratio %.3f\n", a, b, a / b }'
awk -v a="$ours_s" -v b="$sk_s" 'BEGIN { printf "bench clinc150-train-time: ours %.1f s, sklearn %.1f s, ratio %.3f\n", a, b, a / b }'
