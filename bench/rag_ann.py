#!/usr/bin/python3
"""bench/rag_ann.py - vectors for the ANN benchmark and the references.

  rag_ann.py gen DIR N NQ DIM [SEEDS.f32 SEED_DIM]
                                   write DIR/base.f32, queries.f32, gt.i32
  rag_ann.py ref DIR DIM M EFC THREADS EF...   hnswlib and FAISS IndexHNSWFlat

Without SEEDS the vectors are a Gaussian mixture shaped like sentence
embeddings: 2,000 topic centres in a 64-dimensional subspace of R^DIM
(embeddings use few directions), each point a centre plus a smaller
within-topic Gaussian and isotropic noise, normalized to unit length (as
all-MiniLM-L6-v2 outputs); queries are drawn the same way.

With SEEDS (float32 rows of SEED_DIM: real sentence and passage vectors of
libtrain's dense encoder, written by bench/rag_fusion with RAG_FUSION_DUMP)
the seeds themselves come first in the base set (at most N), lifted into
R^DIM by a fixed random orthonormal map when SEED_DIM < DIM; the rest of the
base set and the queries are a Gaussian mixture around them: a random seed
plus noise in a random 32-dimensional subspace around it and a little
isotropic noise, normalized.  Distances are inner products (= cosine).
Exact neighbours come from FAISS IndexFlatIP.  Output lines: "key value...".
"""
import os
import resource
import sys
import time

import numpy as np


def gen_seeded(d, n, nq, dim, seeds_path, sdim):
    rng = np.random.default_rng(8)
    s = np.fromfile(seeds_path, dtype=np.float32).reshape(-1, sdim)
    if sdim < dim:
        lift = np.linalg.qr(rng.standard_normal((dim, sdim)))[0].T.astype(np.float32)  # sdim x dim
        s = s @ lift
    s = s / np.linalg.norm(s, axis=1, keepdims=True)
    rng.shuffle(s)
    bases = rng.standard_normal((64, dim, 32)).astype(np.float32)

    def draw(m):
        out = np.empty((m, dim), np.float32)
        for lo in range(0, m, 20000):
            k = min(20000, m - lo)
            c = s[rng.integers(0, len(s), k)]
            b = bases[rng.integers(0, 64, k)]  # k x dim x 32
            local = np.einsum("kdj,kj->kd", b, rng.standard_normal((k, 32)).astype(np.float32)) / np.sqrt(32 * dim)
            # |local| ~ 1: a point is about 0.5 from its seed, plus 0.2 of isotropic noise
            x = c + 0.5 * local + 0.01 * rng.standard_normal((k, dim)).astype(np.float32)
            out[lo:lo + k] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out

    keep = s[:min(n, len(s))]
    base = np.vstack([keep, draw(n - len(keep))]) if n > len(keep) else keep
    q = draw(nq)
    return base.astype(np.float32), q


def gen(d, n, nq, dim, seeds=None, sdim=0):
    rng = np.random.default_rng(8)
    if seeds:
        base, q = gen_seeded(d, n, nq, dim, seeds, sdim)
        import faiss
        ix = faiss.IndexFlatIP(dim)
        ix.add(base)
        _, gt = ix.search(q, 10)
        base.tofile(os.path.join(d, "base.f32"))
        q.tofile(os.path.join(d, "queries.f32"))
        gt.astype(np.int32).tofile(os.path.join(d, "gt.i32"))
        return
    basis = np.linalg.qr(rng.standard_normal((dim, 64)))[0].T.astype(np.float32)  # 64 x dim
    cent = rng.standard_normal((2000, 64)).astype(np.float32)

    def draw(m):
        c = cent[rng.integers(0, 2000, m)]
        x = (c + 0.6 * rng.standard_normal((m, 64)).astype(np.float32)) @ basis
        x += 0.08 * rng.standard_normal((m, dim)).astype(np.float32)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    base, q = draw(n), draw(nq)
    import faiss
    ix = faiss.IndexFlatIP(dim)
    ix.add(base)
    _, gt = ix.search(q, 10)
    base.tofile(os.path.join(d, "base.f32"))
    q.tofile(os.path.join(d, "queries.f32"))
    gt.astype(np.int32).tofile(os.path.join(d, "gt.i32"))


def recall(got, gt):
    return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, gt)])


def ref(d, dim, M, efc, threads, efs):
    base = np.fromfile(os.path.join(d, "base.f32"), dtype=np.float32).reshape(-1, dim)
    q = np.fromfile(os.path.join(d, "queries.f32"), dtype=np.float32).reshape(-1, dim)
    gt = np.fromfile(os.path.join(d, "gt.i32"), dtype=np.int32).reshape(-1, 10)
    import hnswlib
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    p = hnswlib.Index(space="ip", dim=dim)
    p.init_index(max_elements=len(base), M=M, ef_construction=efc, random_seed=1)
    p.set_num_threads(threads)
    t, c = time.time(), time.process_time()
    p.add_items(base, np.arange(len(base)))
    print("hnswlib build %.3f s cpu %.3f s rss_mb %.1f" % (time.time() - t, time.process_time() - c,
          (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - r0) / 1024))
    for ef in efs:
        p.set_ef(ef)
        out = []
        for th in (1, 2):
            p.set_num_threads(th)
            # one query per call on 1 thread, as a server answers them; the
            # batch call on 2 threads (hnswlib's own parallel loop)
            t, c = time.time(), time.process_time()
            if th == 1:
                labels = np.vstack([p.knn_query(q[i:i + 1], k=10)[0] for i in range(len(q))])
                cq = len(q) / (time.process_time() - c)
            else:
                labels, _ = p.knn_query(q, k=10)
            out.append(len(q) / (time.time() - t))
        print("hnswlib ef %d recall10 %.4f qps1 %.0f qps2 %.0f cpu_qps1 %.0f" % (ef, recall(labels, gt), out[0], out[1], cq))
    del p
    if os.environ.get("RAG_BENCH_FAISS", "1") == "0":
        return
    import faiss
    faiss.omp_set_num_threads(threads)
    f = faiss.IndexHNSWFlat(dim, M, faiss.METRIC_INNER_PRODUCT)
    f.hnsw.efConstruction = efc
    t, c = time.time(), time.process_time()
    f.add(base)
    print("faiss build %.3f s cpu %.3f s" % (time.time() - t, time.process_time() - c))
    for ef in efs:
        f.hnsw.efSearch = ef
        out = []
        for th in (1, 2):
            faiss.omp_set_num_threads(th)
            t = time.time()
            _, labels = f.search(q, 10)
            out.append(len(q) / (time.time() - t))
        print("faiss ef %d recall10 %.4f qps1 %.0f qps2 %.0f" % (ef, recall(labels, gt), out[0], out[1]))


if __name__ == "__main__":
    if sys.argv[1] == "gen":
        gen(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]),
            sys.argv[6] if len(sys.argv) > 7 else None, int(sys.argv[7]) if len(sys.argv) > 7 else 0)
    else:
        ref(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]),
            [int(x) for x in sys.argv[7:]])
