#!/bin/bash
# End to end (issue 8): `train --target rag --config SETTINGS` indexes the
# documents of tests/data/rag with BM25; `train query` answers as JSON;
# `train test rag` reports recall@k and MRR; bad lines are fatal or skipped
# with file:line; a hybrid recipe fuses BM25 with an HNSW index over given
# vectors; one changed document retrains the nodes downstream of it only.
. "${top_srcdir:-.}/tests/lib.sh"

P="$top_builddir/plugins/rag/.libs"
D="$top_srcdir/tests/data/rag"
export TRAIN_RECIPE_PATH="$top_srcdir/recipes"
mkdir -p "$WORK/proj/data"
cp "$D/documents.jsonl" "$WORK/proj/data/"
S="$WORK/proj/rag_indexer.yaml"
cat >"$S" <<'YML'
model: {embedding_model: "sentence-transformers/all-MiniLM-L6-v2", embedding_dim: 384}
data:  {documents_file: "data/documents.jsonl"}
rag:   {k1: 1.2, b: 0.75, chunk_tokens: 16, chunk_overlap: 4}
YML
cd "$WORK"
T=("$TRAIN" --target rag --plugin-path "$P" --cache-dir "$WORK/cache" --out "$WORK/models")

status_is 0 "train the rag target from MARK's settings file" "${T[@]}" --config "$S" \
	--fixed-model-name rag --report "$WORK/r1.json"
check "the embedding settings are noted" grep -q "model.embedding_model" "$WORK/err"
check "three nodes trained" test "$(count_status "$WORK/r1.json" trained)" -eq 3
M="$WORK/models/rag.tar.gz"

status_is 0 "query" "$TRAIN" query "$M" --plugin-path "$P" "Who built the Colosseum?" -k 2
check "the best document first" grep -q '"id": "rome"' "$WORK/out"
check "a text span with offsets" grep -q '"start"' "$WORK/out"
check "ranked JSON with k results" test "$(grep -c '"rank"' "$WORK/out")" -eq 2
status_is 0 "an integer id comes back as text" "$TRAIN" query "$M" --plugin-path "$P" \
	"chlorophyll glucose" -k 1
check "id 4" grep -q '"id": "4"' "$WORK/out"
status_is 70 "dense mode without a dense index is refused" "$TRAIN" query "$M" --plugin-path "$P" \
	"the Nile" --mode dense
check "says why" grep -q "no dense index" "$WORK/err"

status_is 0 "test rag" "$TRAIN" test rag "$M" --plugin-path "$P" --queries "$D/queries.jsonl" \
	--out "$WORK/results"
check "bm25 row" grep -q "^bm25 " "$WORK/out"
check "JSON report" grep -q '"recall@5"' "$WORK/results/rag_report.json"
check "every gold document within 5" grep -q '"recall@5": 1' "$WORK/results/rag_report.json"
check "dense reported as not available" grep -q "^dense.*not available" "$WORK/out"

status_is 0 "train --evaluate QUERIES" "${T[@]}" --config "$S" -q --evaluate "$D/queries.jsonl"
check "the table after training" grep -q "^bm25 " "$WORK/out"

# Nothing changed: nothing trains.  One document changed: the documents
# node and what reads its chunks retrain (3), nothing else exists to stay.
status_is 0 "retrain, nothing changed" "${T[@]}" --config "$S" -q --report "$WORK/r2.json"
check "nothing trained" test "$(count_status "$WORK/r2.json" trained)" -eq 0
sed -i 's/Jupiter is the fifth planet/Jupiter, the fifth planet,/' "$WORK/proj/data/documents.jsonl"
status_is 0 "one document changed" "${T[@]}" --config "$S" -q --report "$WORK/r3.json"
check "its chain retrained" test "$(count_status "$WORK/r3.json" trained)" -eq 3

# Bad lines: fatal by default with file:line, skipped on request.
printf '{"id": "x", "text": 5}\n' >>"$WORK/proj/data/documents.jsonl"
status_is 70 "a bad line is fatal" "${T[@]}" --config "$S" -q
check "reported as file:line" grep -q "documents.jsonl:7" "$WORK/err"
echo 'rag: {on_bad_line: skip}' >"$WORK/proj/skip.yaml"
sed 's/^rag: .*/rag: {on_bad_line: skip}/' "$S" >"$WORK/proj/skip.yaml"
status_is 0 "skipped on request" "${T[@]}" --config "$WORK/proj/skip.yaml" -v
check "the skipped line is reported" grep -q "documents.jsonl:7" "$WORK/err"

# Hybrid: BM25 and HNSW (vectors from a file until the encoder lands).
cat >"$WORK/hybrid.yml" <<YML
version: 1
name: hybrid
train:
  targets: [retriever]
  nodes:
    documents: {component: Documents, config: {path: $D/documents.jsonl}}
    bm25: {component: BM25, needs: {chunks: documents}}
    vectors: {component: VectorFile, config: {path: $WORK/vec.f32, dim: 8}}
    hnsw: {component: HNSW, needs: {vectors: vectors}, config: {M: 4, ef_construction: 16, threads: 2}}
    retriever: {component: HybridRetriever, needs: {chunks: documents, bm25: bm25, hnsw: hnsw}}
predict:
  inputs: [query, k, mode, query_vector]
  targets: [r]
  nodes:
    r:
      component: HybridRetriever
      resource: retriever
      needs: {query: \$input.query, k: \$input.k, mode: \$input.mode, query_vector: \$input.query_vector}
YML
# document i's vector is the unit vector e_i (float32 1.0 is 00 00 80 3f)
: >"$WORK/vec.f32"
for i in 0 1 2 3 4 5; do
	for j in 0 1 2 3 4 5 6 7; do
		if [ "$i" -eq "$j" ]; then printf '\000\000\200\077'; else printf '\000\000\000\000'; fi
	done >>"$WORK/vec.f32"
done
if [ -s "$WORK/vec.f32" ]; then
	status_is 0 "train the hybrid recipe" "$TRAIN" --recipe "$WORK/hybrid.yml" --plugin-path "$P" \
		--cache-dir "$WORK/cache" --out "$WORK/models" --fixed-model-name hybrid
	H="$WORK/models/hybrid.tar.gz"
	status_is 0 "dense query" "$TRAIN" query "$H" --plugin-path "$P" "anything" --mode dense -k 1 \
		--vector '[0,0,0,0,0,1,0,0]'
	check "the nearest vector's document" grep -q '"id": "jupiter"' "$WORK/out"
	status_is 0 "hybrid query (rrf)" "$TRAIN" query "$H" --plugin-path "$P" "capital of Germany" \
		--mode hybrid -k 3 --vector '[0,1,0,0,0,0,0,0]'
	check "both sides agree: berlin first" \
		test "$(grep -m1 '"id"' "$WORK/out" | tr -d ' ,')" = '"id":"berlin"'
	# weighted fusion, all weight on the dense side: its nearest wins
	sed 's/resource: retriever/resource: retriever\n      config: {fusion: weighted, dense_weight: 1.0}/' \
		"$WORK/hybrid.yml" >"$WORK/hybrid_w.yml"
	status_is 0 "package weighted fusion" "$TRAIN" --recipe "$WORK/hybrid_w.yml" --plugin-path "$P" \
		--cache-dir "$WORK/cache" --out "$WORK/models" --fixed-model-name hybrid_w
	status_is 0 "hybrid query (weighted)" "$TRAIN" query "$WORK/models/hybrid_w.tar.gz" \
		--plugin-path "$P" "capital of Germany" --mode hybrid -k 3 --vector '[0,0,0,0,0,1,0,0]'
	check "dense weight 1: jupiter first" \
		test "$(grep -m1 '"id"' "$WORK/out" | tr -d ' ,')" = '"id":"jupiter"'
	status_is 70 "a vector of the wrong size" "$TRAIN" query "$H" --plugin-path "$P" "x" \
		--mode dense --vector '[1,2]'
fi

echo "$n_ok passed, $n_fail failed"
[ "$n_fail" -eq 0 ]
