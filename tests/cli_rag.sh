#!/bin/bash
# End to end (issue 8): `train --target rag --config SETTINGS` indexes the
# documents of tests/data/rag with BM25 and a dense encoder (trained here by
# the inverse cloze task: MARK's hub name is not a local folder; or a local
# Hugging Face folder); `train query` answers as JSON;
# `train test rag` reports recall@k and MRR; bad lines are fatal or skipped
# with file:line; a hybrid recipe fuses BM25 with an HNSW index over given
# vectors; one changed document retrains the nodes downstream of it only,
# and with a fixed encoder re-encodes its own shard only.
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
encoder: {steps: 20, layers: 1}
YML
cd "$WORK"
T=("$TRAIN" --target rag --plugin-path "$P" --cache-dir "$WORK/cache" --out "$WORK/models")

status_is 0 "train the rag target from MARK's settings file" "${T[@]}" --config "$S" \
	--fixed-model-name rag --report "$WORK/r1.json"
check "the hub name is noted: trained here" grep -q "training the encoder here" "$WORK/err"
check "the encoder trained" grep -q '"component": "DenseEncoder"' "$WORK/r1.json"
check "the retriever trained" grep -q '"component": "EncoderRetriever"' "$WORK/r1.json"
M="$WORK/models/rag.tar.gz"

status_is 0 "query" "$TRAIN" query "$M" --plugin-path "$P" "Who built the Colosseum?" -k 2
check "the best document first" grep -q '"id": "rome"' "$WORK/out"
check "a text span with offsets" grep -q '"start"' "$WORK/out"
check "ranked JSON with k results" test "$(grep -c '"rank"' "$WORK/out")" -eq 2
status_is 0 "an integer id comes back as text" "$TRAIN" query "$M" --plugin-path "$P" \
	"chlorophyll glucose" -k 1
check "id 4" grep -q '"id": "4"' "$WORK/out"
status_is 0 "dense mode: the query is encoded by the model's encoder" "$TRAIN" query "$M" \
	--plugin-path "$P" "the Nile" --mode dense -k 6
check "six documents ranked" test "$(grep -c '"rank"' "$WORK/out")" -eq 6
check "the encoder is in the model as a Hugging Face folder" \
	sh -c "tar tzf '$M' | grep -q 'components/retriever/encoder/model.safetensors'"

status_is 0 "test rag" "$TRAIN" test rag "$M" --plugin-path "$P" --queries "$D/queries.jsonl" \
	--out "$WORK/results"
check "bm25 row" grep -q "^bm25 " "$WORK/out"
check "JSON report" grep -q '"recall@5"' "$WORK/results/rag_report.json"
check "every gold document within 5" grep -q '"recall@5": 1' "$WORK/results/rag_report.json"
check "dense row" grep -q "^dense " "$WORK/out"
check "hybrid row" grep -q "^hybrid " "$WORK/out"

status_is 0 "train --evaluate QUERIES" "${T[@]}" --config "$S" -q --evaluate "$D/queries.jsonl"
check "the table after training" grep -q "^bm25 " "$WORK/out"

# Nothing changed: nothing trains.
status_is 0 "retrain, nothing changed" "${T[@]}" --config "$S" -q --report "$WORK/r2.json"
check "nothing trained" test "$(count_status "$WORK/r2.json" trained)" -eq 0

# A fixed encoder (a local Hugging Face folder), one document per block:
# one changed document re-encodes its own shard only.
F="$WORK/proj/fixed.yaml"
cat >"$F" <<YML
model: {embedding_model: "$top_srcdir/tests/fixtures/bert-tiny-hf", embedding_dim: 24}
data:  {documents_file: "data/documents.jsonl"}
rag:   {shard_docs: 1}
encoder: {max_length: 16}
YML
# the encode nodes that trained, by name (the two empty shards share one
# fingerprint: one of them trains)
encoded() { awk '/"name":/ { gsub(/[",]/, "", $2); n = $2 } /"status": "trained"/ && n ~ /^encode[0-9]/ { print n }' "$1" | sort | tr '\n' ' '; }
status_is 0 "a local encoder folder" "${T[@]}" --config "$F" --report "$WORK/f1.json"
check "the folder is loaded" grep -q "bert-tiny-hf: 2 layers, hidden 24" "$WORK/err"
e1=$(encoded "$WORK/f1.json")
echo "encoded: $e1"
check "six shards encoded (and the empty ones: both, or one when the other finds it cached)" \
	sh -c "echo '$e1' | grep -Eq '^encode0 encode1 encode2 encode3 encode4 encode5 (encode6 )?(encode7 )?\$'"
sed -i 's/Jupiter is the fifth planet/Jupiter, the fifth planet,/' "$WORK/proj/data/documents.jsonl"
status_is 0 "one document changed" "${T[@]}" --config "$F" --report "$WORK/f2.json"
check "only its shard re-encoded (jupiter: document 6, shard 5)" test "$(encoded "$WORK/f2.json")" = "encode5 "
check "the graph of shards 0..4 came from the cache" \
	test "$(awk '/"name":/ { n = $2 } /"status": "cached"/ && n ~ /hnsw[0-4]"/' "$WORK/f2.json" | wc -l)" -eq 5
check "its vector was inserted into that graph, not rebuilt" \
	grep -q "hnsw5: 1 vectors inserted into a graph of 5" "$WORK/err"
check "the other shards' encodings came from the cache" \
	test "$(awk '/"name":/ { n = $2 } /"status": "cached"/ && n ~ /encode[0-4]"/' "$WORK/f2.json" | wc -l)" -eq 5
# Twelve documents, one per block: documents 8..11 share shards 0..3 with
# documents 0..3, so the graph's order (shard by shard) is not the chunk
# order; a document's own text as the query finds it first in dense mode.
mkdir -p "$WORK/twelve"
# (words of the fixture's vocabulary, three per document)
W="quick brown fox jumps over lazy dog hello world book flight paris weather today play music"
w() { echo $W | cut -d' ' -f$(($1 % 16 + 1)); }
for i in 0 1 2 3 4 5 6 7 8 9 10 11; do
	printf '{"id": "d%s", "text": "%s %s %s"}\n' "$i" "$(w $i)" "$(w $((i * 5 + 3)))" "$(w $((i * 7 + 1)))"
done >"$WORK/twelve/documents.jsonl"
sed 's#data/documents.jsonl#../twelve/documents.jsonl#' "$F" >"$WORK/proj/twelve.yaml"
status_is 0 "twelve documents" "${T[@]}" --config "$WORK/proj/twelve.yaml" -q --fixed-model-name twelve
for i in 9 2; do
	status_is 0 "dense query: document $i's own text" "$TRAIN" query "$WORK/models/twelve.tar.gz" \
		--plugin-path "$P" "$(sed -n "$((i + 1))p" "$WORK/twelve/documents.jsonl" | sed 's/.*"text": "//; s/"}//')" \
		--mode dense -k 1
	check "document $i first (graph ids mapped back to chunks)" grep -q "\"id\": \"d$i\"" "$WORK/out"
done
echo 'model: {embedding_model: "./no/such/folder", embedding_dim: 24}' >"$WORK/proj/nofolder.yaml"
echo 'data:  {documents_file: "data/documents.jsonl"}' >>"$WORK/proj/nofolder.yaml"
status_is 70 "a missing encoder folder is an error" "${T[@]}" --config "$WORK/proj/nofolder.yaml" -q
check "says which and that nothing is downloaded" grep -q "no/such/folder.*nothing is downloaded" "$WORK/err"
sed 's/embedding_dim: 24/embedding_dim: 384/' "$F" >"$WORK/proj/baddim.yaml"
status_is 70 "embedding_dim is checked against hidden_size" "${T[@]}" --config "$WORK/proj/baddim.yaml" -q
check "says both" grep -q "embedding_dim is 384 but the model's hidden_size is 24" "$WORK/err"

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
