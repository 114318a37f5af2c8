#!/usr/bin/python3
"""Out-of-scope detection for the CLINC150 benchmark (bench/clinc_bench.sh):
a message is "oos" when the classifier's confidence is under a threshold,
and the threshold is the one that gives the best accuracy (151 classes:
the 150 intents and oos) on the "val" and "oos_val" splits; with it, the
share of "oos_test" messages called oos is the out-of-scope recall.

  /usr/bin/python3 bench/clinc_oos.py texts DATA_FULL_JSON OUTDIR
      writes OUTDIR/val.txt and OUTDIR/test.txt (val + oos_val, and test +
      oos_test: one text a line) and .labels beside them (intent or oos)
  /usr/bin/python3 bench/clinc_oos.py score VAL_PRED TEST_PRED OUTDIR
      reads `train predict` output (one parse result as JSON a line, in
      the order of val.txt and test.txt) and prints
        accuracy: X % (150-way, the in-scope test messages, no threshold)
        val accuracy: X % (150-way, the in-scope val messages: for choosing
          a configuration without looking at test)
        oos: threshold T, recall R %, in-scope accuracy A %, overall O %

pick_threshold() and report() are used by bench/clinc_sklearn.py too.
Standard library only.
"""
import json
import os
import sys


def one_line(t):
    return " ".join(t.split())


def pick_threshold(conf, pred, gold):
    """The confidence threshold with the best 151-class accuracy (ties: the
    lowest threshold).  conf, pred, gold: lists over the val messages."""
    order = sorted(range(len(conf)), key=lambda i: conf[i])
    # threshold just above conf[order[k-1]]: the k least confident are oos
    right = sum(1 for p, g in zip(pred, gold) if p == g)  # k = 0
    best, best_t = right, 0.0
    for k, i in enumerate(order, 1):
        right += (gold[i] == "oos") - (pred[i] == gold[i])
        t = conf[i] if k == len(order) else (conf[i] + conf[order[k]]) / 2
        if k < len(order) and conf[order[k]] == conf[i]:
            continue  # a threshold cannot split equal confidences
        if right > best:
            best, best_t = right, t
    return best_t


def report(t, conf, pred, gold):
    """(recall of oos, in-scope accuracy, overall accuracy) at threshold t."""
    final = ["oos" if c < t else p for c, p in zip(conf, pred)]
    oos = [f == "oos" for f, g in zip(final, gold) if g == "oos"]
    ins = [f == g for f, g in zip(final, gold) if g != "oos"]
    allr = [f == g for f, g in zip(final, gold)]
    pct = lambda v: 100.0 * sum(v) / max(len(v), 1)
    return pct(oos), pct(ins), pct(allr)


def read_pred(path):
    conf, pred = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            p = json.loads(line)
            pred.append(p["intent"]["name"])
            conf.append(float(p["intent"]["confidence"]))
    return conf, pred


def read_labels(path):
    with open(path, encoding="utf-8") as f:
        return [x.rstrip("\n") for x in f]


def main(argv):
    if len(argv) == 4 and argv[1] == "texts":
        with open(argv[2], encoding="utf-8") as f:
            data = json.load(f)
        os.makedirs(argv[3], exist_ok=True)
        for name, splits in (("val", ("val", "oos_val")), ("test", ("test", "oos_test"))):
            rows = [(one_line(t), i) for s in splits for t, i in data[s]]
            with open(os.path.join(argv[3], name + ".txt"), "w", encoding="utf-8") as f:
                f.writelines(t + "\n" for t, _ in rows)
            with open(os.path.join(argv[3], name + ".labels"), "w", encoding="utf-8") as f:
                f.writelines(i + "\n" for _, i in rows)
    elif len(argv) == 5 and argv[1] == "score":
        vc, vp = read_pred(argv[2])
        tc, tp = read_pred(argv[3])
        vg = read_labels(os.path.join(argv[4], "val.labels"))
        tg = read_labels(os.path.join(argv[4], "test.labels"))
        if len(vc) != len(vg) or len(tc) != len(tg):
            sys.exit("clinc_oos.py: the predictions and the labels differ in number")
        ins = [p == g for p, g in zip(tp, tg) if g != "oos"]
        print(f"accuracy: {100.0 * sum(ins) / len(ins):.2f} % (150-way, {len(ins)} in-scope "
              f"test messages)")
        vins = [p == g for p, g in zip(vp, vg) if g != "oos"]
        print(f"val accuracy: {100.0 * sum(vins) / len(vins):.2f} % (150-way, {len(vins)} "
              f"in-scope val messages)")
        t = pick_threshold(vc, vp, vg)
        r, a, o = report(t, tc, tp, tg)
        print(f"oos: threshold {t:.4f}, recall {r:.2f} %, in-scope accuracy {a:.2f} %, "
              f"overall {o:.2f} %")
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
