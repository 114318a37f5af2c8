#!/usr/bin/python3
"""CLINC150 as the BERT benchmark's files (bench/bert_clinc.sh):

  /usr/bin/python3 bench/clinc_to_jsonl.py DATA_FULL_JSON OUTDIR

writes, from the 150 in-scope intents of data_full.json (the oos_* splits
are left out, as in bench/clinc_sklearn.py):
  train.jsonl   the "train" split, {"text", "label"} a line (15,000)
  val.jsonl     the "val" split, the same (3,000)
  corpus.txt    the train texts, one a line (the masked-LM pretraining)
  test.txt      the "test" texts, one a line (4,500)
  test.labels   their intents, one a line, in the same order
"""
import json
import os
import sys


def main(argv):
    if len(argv) != 3:
        sys.exit(__doc__)
    with open(argv[1], encoding="utf-8") as f:
        data = json.load(f)
    out = argv[2]
    os.makedirs(out, exist_ok=True)

    def one_line(t):
        return " ".join(t.split())

    for split in ("train", "val"):
        with open(os.path.join(out, split + ".jsonl"), "w", encoding="utf-8") as f:
            for text, label in data[split]:
                f.write(json.dumps({"text": one_line(text), "label": label}) + "\n")
    with open(os.path.join(out, "corpus.txt"), "w", encoding="utf-8") as f:
        for text, _ in data["train"]:
            f.write(one_line(text) + "\n")
    with open(os.path.join(out, "test.txt"), "w", encoding="utf-8") as t, \
         open(os.path.join(out, "test.labels"), "w", encoding="utf-8") as l:
        for text, label in data["test"]:
            t.write(one_line(text) + "\n")
            l.write(label + "\n")


if __name__ == "__main__":
    main(sys.argv)
