/*
 * bench/rag_fusion.c - retrieval quality of a RAG model's retrievers and of
 * fusion settings, in one pass (issue 8's benchmark 1; bench/rag_bench.sh).
 *
 *   rag_fusion MODEL_DIR QUERIES.jsonl [CANDIDATES] [EF]
 *
 * MODEL_DIR is an unpacked model's components/retriever folder
 * (chunks.jsonl, bm25.idx, hnsw.idx, encoder/, encoder.json).  Every query
 * is encoded (batches of 64), BM25 and HNSW give CANDIDATES chunks each
 * (100), and recall@1/5/10/20 and MRR of the gold document are computed for
 * BM25, dense, and fusions: reciprocal rank fusion for several k, and
 * weighted sums w * dense + (1 - w) * bm25 after min-max or z-score
 * normalisation of each list, for several w.  `train test rag` computes the
 * model's own setting one predict call at a time; this tool is the same
 * arithmetic (the retriever's fuse()) over a grid, to choose the setting.
 * One line per setting:  NAME R@1 R@5 R@10 R@20 MRR, over all queries; then
 * the same for the even-numbered queries (2nd, 4th, ...) as "choose:NAME"
 * and for the odd-numbered ones as "report:NAME", so that a setting can be
 * chosen on one half and reported on the other.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../plugins/rag/bm25.h"
#include "../plugins/rag/dense.h"
#include "../plugins/rag/hnsw.h"

#include <train/kernels.h>

typedef struct list {
	uint32_t ids[512];
	float s[512];
	size_t n;
} list;

static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *b = malloc((size_t)sz + 1);
	if (b && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
		free(b);
		b = NULL;
	}
	fclose(f);
	if (b)
		b[sz] = 0;
	*n = (size_t)sz;
	return b;
}

#define NCUT 4
static const int cuts[NCUT] = { 1, 5, 10, 20 };

typedef struct tally {
	char name[48];
	double hit[NCUT], rr;
} tally;

/* docs of the fused chunk list, best first; rank of gold (0: absent) */
static size_t gold_rank(const uint32_t *ids, size_t n, const uint32_t *docix, uint32_t gold, uint8_t *seen,
                        size_t ndocs)
{
	size_t rank = 0, got = 0;
	memset(seen, 0, ndocs);
	for (size_t i = 0; i < n && got < 20; i++) {
		uint32_t d = docix[ids[i]];
		if (seen[d])
			continue;
		seen[d] = 1;
		got++;
		if (d == gold) {
			rank = got;
			break;
		}
	}
	return rank;
}

static void add(tally *t, size_t rank)
{
	for (int c = 0; c < NCUT; c++)
		t->hit[c] += rank && rank <= (size_t)cuts[c];
	t->rr += rank ? 1.0 / (double)rank : 0;
}

/* setting i of all queries (t) and of the query's half (h) */
static void add_both(tally *t, tally *h, size_t i, size_t rank)
{
	add(&t[i], rank);
	add(&h[i], rank);
}

typedef struct sc {
	uint32_t id;
	float s;
} sc;

static int sc_cmp(const void *a, const void *b)
{
	const sc *x = a, *y = b;
	if (x->s != y->s)
		return x->s > y->s ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

/* mode 0: rrf(k); 1: min-max weighted(w); 2: z-score weighted(w) */
static size_t fuse(const list *a, const list *b, int mode, double k, double w, sc *out, uint32_t *ids)
{
	size_t n = 0;
	for (int side = 0; side < 2; side++) {
		const list *l = side ? b : a;
		double lo = l->n ? l->s[l->n - 1] : 0, hi = l->n ? l->s[0] : 0, mu = 0, sd = 0;
		for (size_t i = 0; i < l->n; i++)
			mu += l->s[i];
		mu = l->n ? mu / (double)l->n : 0;
		for (size_t i = 0; i < l->n; i++)
			sd += (l->s[i] - mu) * (l->s[i] - mu);
		sd = l->n > 1 ? sqrt(sd / (double)(l->n - 1)) : 1;
		double ws = side ? w : 1 - w;
		for (size_t i = 0; i < l->n; i++) {
			double add;
			if (mode == 0)
				add = 1.0 / (k + (double)(i + 1));
			else if (mode == 1)
				add = ws * (hi > lo ? (l->s[i] - lo) / (hi - lo) : 1.0);
			else
				add = ws * (sd > 0 ? (l->s[i] - lo) / sd : 0.0); /* z - z(min): floor 0 */
			size_t j = 0;
			while (j < n && out[j].id != l->ids[i])
				j++;
			if (j == n)
				out[n++] = (sc){ l->ids[i], 0 };
			out[j].s += (float)add;
		}
	}
	/* a chunk missing from one list gets 0 from it: that list's floor */
	qsort(out, n, sizeof *out, sc_cmp);
	for (size_t i = 0; i < n; i++)
		ids[i] = out[i].id;
	return n;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: rag_fusion RETRIEVER_DIR QUERIES.jsonl [CANDIDATES] [EF]\n");
		return 2;
	}
	size_t cand = argc > 3 ? (size_t)atoi(argv[3]) : 100, ef = argc > 4 ? (size_t)atoi(argv[4]) : 128;
	if (cand < 20 || cand > 512)
		cand = 100;
	if (train_kernels_init(0, TRAIN_PRECISION_FP32))
		return 2;
	char p[4096], why[256] = "";
	size_t n;
	snprintf(p, sizeof p, "%s/chunks.jsonl", argv[1]);
	char *chunks = slurp(p, &n);
	snprintf(p, sizeof p, "%s/bm25.idx", argv[1]);
	size_t bn;
	char *bmb = slurp(p, &bn);
	if (!chunks || !bmb) {
		fprintf(stderr, "%s: cannot read the retriever's files\n", argv[1]);
		return 1;
	}
	/* chunk -> document number; document ids */
	size_t nch = 0, cap = 1024, ndocs = 0;
	uint32_t *docix = malloc(cap * sizeof *docix);
	char **docid = malloc(cap * sizeof *docid);
	for (char *s = chunks, *e; *s; s = e + 1) {
		e = strchr(s, '\n');
		if (!e)
			e = s + strlen(s);
		json_error_t je;
		json_t *o = json_loadb(s, (size_t)(e - s), 0, &je);
		const char *d = json_string_value(json_object_get(o, "doc"));
		if (!d) {
			fprintf(stderr, "chunks:%zu: bad\n", nch + 1);
			return 1;
		}
		if (nch == cap) {
			cap *= 2;
			docix = realloc(docix, cap * sizeof *docix);
			docid = realloc(docid, cap * sizeof *docid);
		}
		if (!ndocs || strcmp(docid[ndocs - 1], d))
			docid[ndocs++] = strdup(d);
		docix[nch++] = (uint32_t)(ndocs - 1);
		json_decref(o);
		if (!*e)
			break;
	}
	/* the recipe's graph holds the chunks in shard order (HNSWInsert):
	 * graph id -> chunk, as the EncoderRetriever maps them;
	 * RAG_FUSION_SHARD_DOCS (the model's rag.shard_docs, 32), 0: chunk order */
	const char *sdv = getenv("RAG_FUSION_SHARD_DOCS");
	long sdocs = sdv ? atol(sdv) : 32;
	uint32_t *gmap = malloc((nch ? nch : 1) * sizeof *gmap);
	for (size_t i = 0; i < nch; i++)
		gmap[i] = (uint32_t)i;
	if (sdocs > 0)
		for (int sh = 0, g = 0; sh < 8; sh++)
			for (size_t i = 0; i < nch; i++)
				if ((int)((docix[i] / (uint32_t)sdocs) % 8) == sh)
					gmap[g++] = (uint32_t)i;
	bm25 *bm = NULL;
	hnsw *hn = NULL;
	dense_encoder *enc = NULL;
	train_error err = { 0 };
	if (bm25_open_mem(bmb, bn, "bm25.idx", &bm, why)) {
		fprintf(stderr, "%s\n", why);
		return 1;
	}
	snprintf(p, sizeof p, "%s/hnsw.idx", argv[1]);
	if (hnsw_open(p, &hn, why)) {
		fprintf(stderr, "%s\n", why);
		return 1;
	}
	snprintf(p, sizeof p, "%s/encoder.json", argv[1]);
	size_t jn;
	char *js = slurp(p, &jn);
	json_error_t je;
	json_t *jo = js ? json_loads(js, 0, &je) : NULL;
	int ml = (int)json_integer_value(json_object_get(jo, "max_length"));
	snprintf(p, sizeof p, "%s/encoder", argv[1]);
	if (dense_encoder_load_hf(p, ml ? ml : 256, &enc, &err)) {
		fprintf(stderr, "%s\n", err.text);
		return 1;
	}
	/* queries */
	size_t qn;
	char *qs = slurp(argv[2], &qn);
	size_t nq = 0, qcap = 1024;
	char **qt = malloc(qcap * sizeof *qt);
	size_t *ql = malloc(qcap * sizeof *ql);
	uint32_t *gold = malloc(qcap * sizeof *gold);
	for (char *s = qs, *e; s && *s; s = e + 1) {
		e = strchr(s, '\n');
		if (!e)
			e = s + strlen(s);
		json_t *o = json_loadb(s, (size_t)(e - s), 0, &je);
		json_t *g = json_object_get(o, "gold_id");
		char gb[64];
		if (json_is_integer(g))
			snprintf(gb, sizeof gb, "%lld", (long long)json_integer_value(g));
		else
			snprintf(gb, sizeof gb, "%s", json_string_value(g) ? json_string_value(g) : "");
		if (nq == qcap) {
			qcap *= 2;
			qt = realloc(qt, qcap * sizeof *qt);
			ql = realloc(ql, qcap * sizeof *ql);
			gold = realloc(gold, qcap * sizeof *gold);
		}
		const char *q = json_string_value(json_object_get(o, "question"));
		if (!q) {
			json_decref(o);
			if (!*e)
				break;
			continue;
		}
		qt[nq] = strdup(q);
		ql[nq] = strlen(q);
		gold[nq] = UINT32_MAX;
		for (size_t d = 0; d < ndocs; d++)
			if (!strcmp(docid[d], gb)) {
				gold[nq] = (uint32_t)d;
				break;
			}
		nq++;
		json_decref(o);
		if (!*e)
			break;
	}
	/* RAG_FUSION_BM25_GRID=1: BM25 alone over a grid of k1, b and stop
	 * words (indexes built here from the chunks), then stop */
	if (getenv("RAG_FUSION_BM25_GRID")) {
		static const double k1s[] = { 0.6, 0.9, 1.2, 1.6 }, bs[] = { 0.3, 0.4, 0.6, 0.75 };
		const char **ct = malloc(nch * sizeof *ct);
		size_t k = 0;
		for (char *s = chunks, *e; *s && k < nch; s = e + 1) {
			e = strchr(s, '\n');
			if (!e)
				e = s + strlen(s);
			json_t *o = json_loadb(s, (size_t)(e - s), 0, &je);
			ct[k++] = strdup(json_string_value(json_object_get(o, "text")));
			json_decref(o);
			if (!*e)
				break;
		}
		uint8_t *seen = malloc(ndocs + 1);
		list a;
		for (int sw = 0; sw < 2; sw++)
			for (int i = 0; i < 4; i++)
				for (int j = 0; j < 4; j++) {
					bm25_builder *bb = NULL;
					void *buf = NULL;
					size_t size = 0;
					bm25 *ix = NULL;
					bm25_options bo = { k1s[i], bs[j], sw ? bm25_english_stop_words : NULL, 0, 0 };
					bm25_builder_create(&bo, &bb);
					for (size_t c = 0; c < k; c++)
						bm25_builder_add(bb, ct[c], strlen(ct[c]));
					bm25_builder_finish(bb, &buf, &size);
					bm25_builder_destroy(bb);
					if (bm25_open_mem(buf, size, "grid", &ix, why))
						return 1;
					tally t = { 0 };
					size_t cnt = 0;
					for (size_t q = 0; q < nq; q++) {
						if (gold[q] == UINT32_MAX)
							continue;
						cnt++;
						a.n = bm25_search(ix, qt[q], 100, a.ids, a.s);
						add(&t, gold_rank(a.ids, a.n, docix, gold[q], seen, ndocs));
					}
					printf("bm25 k1 %.1f b %.2f stop %-7s", k1s[i], bs[j], sw ? "english" : "none");
					for (int c = 0; c < NCUT; c++)
						printf(" %7.4f", t.hit[c] / (double)cnt);
					printf(" %7.4f\n", t.rr / (double)cnt);
					bm25_destroy(ix);
					free(buf);
				}
		return 0;
	}
	const int C = enc->m->cfg.hidden;
	float *qv = malloc(nq * (size_t)C * sizeof *qv);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (dense_encode(enc, (const char *const *)qt, ql, nq, 64, qv)) {
		fprintf(stderr, "encoding failed\n");
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "%zu queries encoded in %.1f s (%d wide)\n", nq,
	        (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec), C);
	/* RAG_FUSION_DUMP=FILE: the query vectors, then the chunks' (float32
	 * rows of C), the seeds of bench/rag_ann.py's vectors */
	const char *dump = getenv("RAG_FUSION_DUMP");
	if (dump) {
		const char **ct = malloc(nch * sizeof *ct);
		size_t *cl = malloc(nch * sizeof *cl), k = 0;
		float *cv = malloc(nch * (size_t)C * sizeof *cv);
		for (char *s = chunks, *e; *s && k < nch; s = e + 1) {
			e = strchr(s, '\n');
			if (!e)
				e = s + strlen(s);
			json_t *o = json_loadb(s, (size_t)(e - s), 0, &je);
			ct[k] = strdup(json_string_value(json_object_get(o, "text")));
			cl[k] = strlen(ct[k]);
			k++;
			json_decref(o);
			if (!*e)
				break;
		}
		FILE *df = fopen(dump, "wb");
		if (!df || dense_encode(enc, ct, cl, k, 64, cv) || fwrite(qv, sizeof *qv, nq * (size_t)C, df) != nq * (size_t)C ||
		    fwrite(cv, sizeof *cv, k * (size_t)C, df) != k * (size_t)C || fclose(df)) {
			fprintf(stderr, "%s: cannot write the vectors\n", dump);
			return 1;
		}
		fprintf(stderr, "%s: %zu query and %zu chunk vectors of %d\n", dump, nq, k, C);
	}
	/* the grid */
	static const double rrfk[] = { 1, 5, 10, 20, 30, 60 };
	static const double ws[] = { 0.1, 0.2, 0.3, 0.4, 0.5, 0.6 };
	enum { NR = 6, NW = 6 };
	size_t nt = 2 + NR + 2 * NW;
	tally *t = calloc(3 * nt, sizeof *t), *half[2] = { t + nt, t + 2 * nt };
	snprintf(t[0].name, sizeof t[0].name, "bm25");
	snprintf(t[1].name, sizeof t[1].name, "dense");
	for (int i = 0; i < NR; i++)
		snprintf(t[2 + i].name, sizeof t[0].name, "hybrid-rrf-k%g", rrfk[i]);
	for (int i = 0; i < NW; i++) {
		snprintf(t[2 + NR + i].name, sizeof t[0].name, "hybrid-minmax-w%.1f", ws[i]);
		snprintf(t[2 + NR + NW + i].name, sizeof t[0].name, "hybrid-zscore-w%.1f", ws[i]);
	}
	for (size_t i = 0; i < nt; i++) {
		snprintf(half[0][i].name, sizeof t[0].name, "choose:%s", t[i].name);
		snprintf(half[1][i].name, sizeof t[0].name, "report:%s", t[i].name);
	}
	list a, b;
	sc *f = malloc(2 * 512 * sizeof *f);
	uint32_t *fi = malloc(2 * 512 * sizeof *fi);
	uint8_t *seen = malloc(ndocs + 1);
	hnsw_scratch *scr = hnsw_scratch_new();
	size_t counted = 0;
	char *qbuf = NULL;
	size_t hcount[2] = { 0, 0 };
	for (size_t q = 0; q < nq; q++) {
		if (gold[q] == UINT32_MAX)
			continue;
		counted++;
		/* q 0 is the 1st question: odd-numbered, reported */
		tally *h = half[(q + 1) % 2];
		hcount[(q + 1) % 2]++;
		a.n = bm25_search(bm, qt[q], cand, a.ids, a.s);
		b.n = hnsw_search_with(hn, scr, qv + q * (size_t)C, cand, ef > cand ? ef : cand, b.ids, b.s);
		for (size_t i = 0; i < b.n; i++) {
			b.s[i] = 1.0f - b.s[i];
			b.ids[i] = gmap[b.ids[i]];
		}
		add_both(t, h, 0, gold_rank(a.ids, a.n, docix, gold[q], seen, ndocs));
		add_both(t, h, 1, gold_rank(b.ids, b.n, docix, gold[q], seen, ndocs));
		for (int i = 0; i < NR; i++) {
			size_t m = fuse(&a, &b, 0, rrfk[i], 0, f, fi);
			add_both(t, h, 2 + i, gold_rank(fi, m, docix, gold[q], seen, ndocs));
		}
		for (int i = 0; i < NW; i++) {
			size_t m = fuse(&a, &b, 1, 0, ws[i], f, fi);
			add_both(t, h, 2 + NR + i, gold_rank(fi, m, docix, gold[q], seen, ndocs));
			m = fuse(&a, &b, 2, 0, ws[i], f, fi);
			add_both(t, h, 2 + NR + NW + i, gold_rank(fi, m, docix, gold[q], seen, ndocs));
		}
	}
	free(qbuf);
	printf("%-22s %7s %7s %7s %7s %7s   (%zu queries, %zu candidates per side, ef %zu)\n", "", "R@1", "R@5",
	       "R@10", "R@20", "MRR", counted, cand, ef);
	for (size_t i = 0; i < 3 * nt; i++) {
		size_t cnt = i < nt ? counted : hcount[i / nt - 1];
		printf("%-22s", t[i].name);
		for (int c = 0; c < NCUT; c++)
			printf(" %7.4f", cnt ? t[i].hit[c] / (double)cnt : 0.0);
		printf(" %7.4f\n", cnt ? t[i].rr / (double)cnt : 0.0);
	}
	return 0;
}
