#!/usr/bin/python3
"""The scikit-learn reference of the CLINC150 benchmark (bench/clinc_bench.sh):
TF-IDF over word 1-2-grams and char_wb 1-4-grams (sublinear tf), then a
linear classifier (LinearSVC, LogisticRegression), trained on "train" and
scored on the 150-way in-scope "test" split of data_full.json; and
out-of-scope recall on "oos_test" with the confidence threshold that is
best on "val" + "oos_val" (bench/clinc_oos.py; the confidence is the
largest decision value for LinearSVC, the largest probability for
LogisticRegression).

  /usr/bin/python3 bench/clinc_sklearn.py DATA_FULL_JSON

Prints one line per classifier:

  sklearn NAME: accuracy A %, train T s, cpu C s, oos recall R %
  sklearn NAME: val accuracy V %

where T is the wall time of fitting the vectorizers and the classifier
(the data already in memory), as the benchmark times `train nlu` from a
project on disk, and C the process's CPU time over the same span.
Needs python3-sklearn (Debian); never used by the tests.
"""
import json
import os
import sys
import time

from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clinc_oos  # noqa: E402


def vectorizers():
    return (TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True))


def confidences(clf, x):
    if hasattr(clf, "predict_proba"):
        p = clf.predict_proba(x)
    else:
        p = clf.decision_function(x)
    return [float(r.max()) for r in p], [clf.classes_[r.argmax()] for r in p]


def run(name, make_clf, data):
    xtr = [t for t, _ in data["train"]]
    ytr = [i for _, i in data["train"]]
    t0, c0 = time.perf_counter(), time.process_time()
    vecs = vectorizers()
    a = hstack([v.fit_transform(xtr) for v in vecs]).tocsr()
    clf = make_clf().fit(a, ytr)
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0

    def feats(splits):
        x = [t for s in splits for t, _ in data[s]]
        y = [i for s in splits for _, i in data[s]]
        return hstack([v.transform(x) for v in vecs]).tocsr(), y

    b, yte = feats(("test",))
    pred = clf.predict(b)
    acc = 100.0 * sum(p == y for p, y in zip(pred, yte)) / len(yte)
    bv, yv = feats(("val",))
    vacc = 100.0 * sum(p == y for p, y in zip(clf.predict(bv), yv)) / len(yv)
    vx, vy = feats(("val", "oos_val"))
    tx, ty = feats(("test", "oos_test"))
    vc, vp = confidences(clf, vx)
    tc, tp = confidences(clf, tx)
    recall, _, _ = clinc_oos.report(clinc_oos.pick_threshold(vc, vp, vy), tc, tp, ty)
    print(f"sklearn {name}: accuracy {acc:.2f} %, train {secs:.2f} s, cpu {cpu:.2f} s, "
          f"oos recall {recall:.2f} %", flush=True)
    print(f"sklearn {name}: val accuracy {vacc:.2f} %", flush=True)


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    with open(argv[1], encoding="utf-8") as f:
        data = json.load(f)
    run("LinearSVC", lambda: LinearSVC(C=1.0), data)
    run("LogisticRegression", lambda: LogisticRegression(C=10.0, max_iter=1000), data)


if __name__ == "__main__":
    main(sys.argv)
