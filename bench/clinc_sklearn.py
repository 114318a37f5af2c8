#!/usr/bin/python3
"""The scikit-learn reference of the CLINC150 benchmark (bench/clinc_bench.sh):
TF-IDF over word 1-2-grams and char_wb 1-4-grams (sublinear tf), then a
linear classifier (LinearSVC, LogisticRegression), trained on "train" and
scored on the 150-way in-scope "test" split of data_full.json.

  /usr/bin/python3 bench/clinc_sklearn.py DATA_FULL_JSON

Prints one line per classifier:

  sklearn NAME: accuracy A %, train T s

where T is the wall time of fitting the vectorizers and the classifier
(the data already in memory), as the benchmark times `train nlu` from a
project on disk.  Needs python3-sklearn (Debian); never used by the tests.
"""
import json
import sys
import time

from scipy.sparse import hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC


def vectorizers():
    return (TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True))


def run(name, make_clf, xtr, ytr, xte, yte):
    t0 = time.perf_counter()
    vecs = vectorizers()
    a = hstack([v.fit_transform(xtr) for v in vecs]).tocsr()
    clf = make_clf().fit(a, ytr)
    secs = time.perf_counter() - t0
    b = hstack([v.transform(xte) for v in vecs]).tocsr()
    pred = clf.predict(b)
    acc = 100.0 * sum(p == y for p, y in zip(pred, yte)) / len(yte)
    print(f"sklearn {name}: accuracy {acc:.2f} %, train {secs:.2f} s", flush=True)


def main(argv):
    if len(argv) != 2:
        sys.exit(__doc__)
    with open(argv[1], encoding="utf-8") as f:
        data = json.load(f)
    xtr = [t for t, _ in data["train"]]
    ytr = [i for _, i in data["train"]]
    xte = [t for t, _ in data["test"]]
    yte = [i for _, i in data["test"]]
    run("LinearSVC", lambda: LinearSVC(C=1.0), xtr, ytr, xte, yte)
    run("LogisticRegression", lambda: LogisticRegression(C=10.0, max_iter=1000), xtr, ytr, xte, yte)


if __name__ == "__main__":
    main(sys.argv)
