#!/usr/bin/python3
"""bench/rag_bm25.py - SQuAD v1.1 dev as RAG data, and a plain Python BM25.

  rag_bm25.py convert SQUAD_DIR OUT_DIR   passages.tsv/queries.tsv ->
                                          documents.jsonl, queries.jsonl
  rag_bm25.py eval OUT_DIR [K1 B]         recall@1/3/5/10/20 and MRR of the
                                          gold passage, one "key value" line each

The reference scores as plugins/rag/bm25.c says: terms are runs of \\w
lower-cased, idf = ln(1 + (N - df + 0.5) / (df + 0.5)), k1 0.9, b 0.4
(Anserini's defaults, the issue's numbers).
"""
import collections
import csv
import json
import math
import os
import re
import sys
import time

WORD = re.compile(r"\w+")


def terms(s):
    return [w.lower() for w in WORD.findall(s)]


def convert(src, out):
    os.makedirs(out, exist_ok=True)
    csv.field_size_limit(1 << 30)
    with open(os.path.join(src, "passages.tsv"), newline="") as f, \
            open(os.path.join(out, "documents.jsonl"), "w") as o:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            o.write(json.dumps({"id": row["pid"], "title": row["title"], "text": row["passage"]}) + "\n")
    with open(os.path.join(src, "queries.tsv"), newline="") as f, \
            open(os.path.join(out, "queries.jsonl"), "w") as o:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            o.write(json.dumps({"question": row["question"], "gold_id": row["gold_pid"]}) + "\n")


def evaluate(d, k1=0.9, b=0.4):
    docs = [json.loads(l) for l in open(os.path.join(d, "documents.jsonl"))]
    qs = [json.loads(l) for l in open(os.path.join(d, "queries.jsonl"))]
    t0 = time.time()
    tfs = [collections.Counter(terms(x["text"])) for x in docs]
    lens = [sum(c.values()) for c in tfs]
    avg = sum(lens) / len(lens)
    df = collections.Counter(t for c in tfs for t in c)
    post = collections.defaultdict(list)
    for i, c in enumerate(tfs):
        for t, n in c.items():
            post[t].append((i, n))
    N = len(docs)
    idf = {t: math.log(1 + (N - n + 0.5) / (n + 0.5)) for t, n in df.items()}
    norm = [k1 * (1 - b + b * l / avg) for l in lens]
    cut = [1, 3, 5, 10, 20]
    hits = [0] * len(cut)
    rr = 0.0
    for q in qs:
        sc = collections.defaultdict(float)
        for t in terms(q["question"]):
            for i, n in post.get(t, ()):
                sc[i] += idf[t] * n * (k1 + 1) / (n + norm[i])
        ranked = sorted(sc.items(), key=lambda x: (-x[1], x[0]))[:20]
        ids = [docs[i]["id"] for i, _ in ranked]
        rank = ids.index(q["gold_id"]) + 1 if q["gold_id"] in ids else 0
        for j, c in enumerate(cut):
            hits[j] += 0 < rank <= c
        rr += 1 / rank if rank else 0
    dt = time.time() - t0
    for j, c in enumerate(cut):
        print("recall@%d %.4f" % (c, hits[j] / len(qs)))
    print("mrr %.4f" % (rr / len(qs)))
    print("seconds %.2f" % dt)


if __name__ == "__main__":
    if sys.argv[1] == "convert":
        convert(sys.argv[2], sys.argv[3])
    else:
        evaluate(sys.argv[2], *[float(x) for x in sys.argv[3:5]])
