/*
 * cmd_rag.c - a RAG model (plugins/rag, issue 8) from the command line:
 *
 *   train query MODEL "question" [-k 5] [--mode bm25|dense|hybrid] [--vector JSON]
 *       the ranked documents as one JSON object {"mode", "hits": [{"rank",
 *       "id", "score", "chunk", "start", "end", "text"}]}
 *   train test rag MODEL --queries FILE [--query-vectors FILE] [--out DIR]
 *       recall@1/3/5/10/20 and MRR of each query's gold document, for each
 *       retriever the model has (bm25, dense, hybrid) side by side; the
 *       table on stdout, OUT/rag_report.json
 *
 * The model's predict schema takes `query`, `k`, `mode` and `query_vector`
 * and answers the JSON above from its (only) target.  Until the dense
 * encoder lands, a dense query needs its vector from the caller: --vector
 * for one query, --query-vectors (float32 rows, one per query line) for a
 * test.  A queries file is JSON Lines: {"question": "...", "gold_id": ...}
 * (gold_id a string or an integer); a bad line is reported as file:line.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rasa_model.h"

static const char query_usage[] =
	"usage: train query MODEL QUESTION [-k N] [--mode bm25|dense|hybrid] [--vector JSON]\n"
	"                   [--plugin-path DIRS]\n";
static const char test_usage[] =
	"usage: train test rag MODEL --queries FILE [--query-vectors FILE] [--out DIR]\n"
	"                      [--plugin-path DIRS]\n";

/* Run one query; the answer's JSON (new reference) or NULL with err set. */
static json_t *run_query(cli_model *cm, const char *q, int k, const char *mode, const char *vec,
                         train_error *err)
{
	train_values *in = NULL, *out = NULL;
	json_t *res = NULL;
	char kb[24];
	snprintf(kb, sizeof kb, "%d", k);
	int rc = train_values_create(&in);
	if (!rc)
		rc = train_values_create(&out);
	if (!rc)
		rc = train_values_put_bytes(in, "query", "text/plain", q, strlen(q));
	if (!rc)
		rc = train_values_put_bytes(in, "k", "text/plain", kb, strlen(kb));
	if (!rc && mode)
		rc = train_values_put_bytes(in, "mode", "text/plain", mode, strlen(mode));
	else if (!rc)
		rc = train_values_put_bytes(in, "mode", "text/plain", "", 0);
	if (!rc)
		rc = train_values_put_bytes(in, "query_vector", "application/json", vec ? vec : "",
		                            vec ? strlen(vec) : 0);
	if (rc)
		train_error_set(err, rc, NULL, 0, 0, "%s", train_strerror(rc));
	else if (!(rc = cli_model_run(cm, in, out, err))) {
		const train_value *v = train_values_len(out) ? train_values_at(out, 0) : NULL;
		res = v ? json_loadb(train_value_data(v), train_value_size(v), 0, NULL) : NULL;
		if (!res || !json_is_array(json_object_get(res, "hits"))) {
			json_decref(res);
			res = NULL;
			train_error_set(err, TRAIN_ECOMPONENT, NULL, 0, 0,
			                "the model's answer is not a retriever's JSON (is it a RAG model?)");
		}
	}
	train_values_destroy(in);
	train_values_destroy(out);
	return res;
}

int cmd_query(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "plugin-path", required_argument, NULL, 'p' },
		{ "mode", required_argument, NULL, 'm' },
		{ "vector", required_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *plugin_path = NULL, *mode = NULL, *vec = NULL, *pos[2] = { NULL, NULL };
	int k = 5, c, npos = 0;
	optind = 0; /* 0: GNU getopt starts afresh (cmd_train may have used it) */
	while (optind < argc) {
		if ((c = getopt_long(argc, argv, "+k:", longopts, NULL)) == -1) {
			if (npos == 2) {
				fputs(query_usage, stderr);
				return EXIT_USAGE;
			}
			pos[npos++] = argv[optind++];
			continue;
		}
		switch (c) {
		case 'p': plugin_path = optarg; break;
		case 'm': mode = optarg; break;
		case 'v': vec = optarg; break;
		case 'k':
			k = atoi(optarg);
			if (k < 1) {
				fprintf(stderr, "train: query: -k must be a positive number\n");
				return EXIT_USAGE;
			}
			break;
		case 'h': fputs(query_usage, stdout); return 0;
		default: return EXIT_USAGE;
		}
	}
	if (npos != 2) {
		fputs(query_usage, stderr);
		return EXIT_USAGE;
	}
	cli_model cm;
	int status = cli_model_open(pos[0], plugin_path, &cm);
	if (!status) {
		train_error err = { 0 };
		json_t *res = run_query(&cm, pos[1], k, mode, vec, &err);
		if (!res)
			status = cli_report(&err);
		else {
			char *s = json_dumps(res, JSON_INDENT(2) | JSON_REAL_PRECISION(7));
			if (s)
				puts(s);
			free(s);
			json_decref(res);
		}
	}
	cli_model_close(&cm);
	return status;
}

/* ---- train test rag ------------------------------------------------------------ */

#define MAXK 20
static const int cutoffs[] = { 1, 3, 5, 10, 20 };
#define NCUT 5
static const char *const modes[] = { "bm25", "dense", "hybrid" };

typedef struct tally {
	int available;
	char why[600];
	size_t hits[NCUT];
	double rr;
	size_t n;
} tally;

static float *read_vectors(const char *path, size_t *bytes)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return NULL;
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	float *v = n > 0 ? malloc((size_t)n) : NULL;
	if (!v || fread(v, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "train: %s: cannot read\n", path);
		free(v);
		v = NULL;
	}
	fclose(f);
	*bytes = n > 0 ? (size_t)n : 0;
	return v;
}

static char *vector_json(const float *v, size_t dim)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < dim; i++)
		json_array_append_new(a, json_real(v[i]));
	char *s = a ? json_dumps(a, JSON_COMPACT | JSON_REAL_PRECISION(9)) : NULL;
	json_decref(a);
	return s;
}

int cmd_test_rag(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "plugin-path", required_argument, NULL, 'p' },
		{ "queries", required_argument, NULL, 'q' },
		{ "query-vectors", required_argument, NULL, 'v' },
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *plugin_path = NULL, *queries = NULL, *qvec = NULL, *out = "results", *model = NULL;
	int c;
	optind = 0; /* 0: GNU getopt starts afresh (cmd_train may have used it) */
	while (optind < argc) {
		if ((c = getopt_long(argc, argv, "+", longopts, NULL)) == -1) {
			if (model) {
				fputs(test_usage, stderr);
				return EXIT_USAGE;
			}
			model = argv[optind++];
			continue;
		}
		switch (c) {
		case 'p': plugin_path = optarg; break;
		case 'q': queries = optarg; break;
		case 'v': qvec = optarg; break;
		case 'o': out = optarg; break;
		case 'h': fputs(test_usage, stdout); return 0;
		default: return EXIT_USAGE;
		}
	}
	if (!model || !queries) {
		fputs(test_usage, stderr);
		return EXIT_USAGE;
	}
	FILE *qf = fopen(queries, "r");
	if (!qf) {
		perror(queries);
		return EXIT_DATAERR;
	}
	size_t vbytes = 0;
	float *vecs = qvec ? read_vectors(qvec, &vbytes) : NULL;
	if (qvec && !vecs) {
		fclose(qf);
		return EXIT_DATAERR;
	}
	cli_model cm;
	int status = cli_model_open(model, plugin_path, &cm);
	tally t[3];
	memset(t, 0, sizeof t);
	for (int m = 0; m < 3; m++)
		t[m].available = 1;
	char *line = NULL;
	size_t cap = 0, lineno = 0, nq = 0, dim = 0;
	ssize_t len;
	while (!status && (len = getline(&line, &cap, qf)) != -1) {
		lineno++;
		json_error_t je;
		json_t *o = json_loadb(line, (size_t)len, 0, &je);
		if (!o && strspn(line, " \t\r\n") == (size_t)len)
			continue;
		json_t *q = json_object_get(o, "question"), *g = json_object_get(o, "gold_id");
		char gold[64];
		if (!json_is_string(q) || !(json_is_string(g) || json_is_integer(g))) {
			fprintf(stderr, "train: %s:%zu: %s\n", queries, lineno,
			        !o ? je.text : "a query needs \"question\" (a string) and \"gold_id\"");
			json_decref(o);
			status = EXIT_DATAERR;
			break;
		}
		if (json_is_string(g))
			snprintf(gold, sizeof gold, "%s", json_string_value(g));
		else
			snprintf(gold, sizeof gold, "%lld", (long long)json_integer_value(g));
		char *vj = NULL;
		if (vecs) {
			if (!nq) {
				/* the dimension: the file holds one row per query line */
				size_t lines = 0;
				long pos = ftell(qf);
				char *l2 = NULL;
				size_t c2 = 0;
				lines = 1;
				while (getline(&l2, &c2, qf) != -1)
					lines += strspn(l2, " \t\r\n") != strlen(l2);
				free(l2);
				fseek(qf, pos, SEEK_SET);
				dim = vbytes / 4 / lines;
				if (!dim || dim * 4 * lines != vbytes) {
					fprintf(stderr, "train: %s: %zu bytes are not %zu rows of float32\n", qvec,
					        vbytes, lines);
					json_decref(o);
					status = EXIT_DATAERR;
					break;
				}
			}
			vj = vector_json(vecs + nq * dim, dim);
		}
		for (int m = 0; m < 3; m++) {
			if (!t[m].available)
				continue;
			train_error err = { 0 };
			json_t *res = run_query(&cm, json_string_value(q), MAXK, modes[m], vj, &err);
			if (!res) {
				if (nq == 0) { /* this model cannot do this mode: say why, go on */
					t[m].available = 0;
					snprintf(t[m].why, sizeof t[m].why, "%s", err.text);
					continue;
				}
				status = cli_report(&err);
				break;
			}
			json_t *hits = json_object_get(res, "hits");
			size_t rank = 0;
			for (size_t i = 0; i < json_array_size(hits) && !rank; i++) {
				const char *id = json_string_value(json_object_get(json_array_get(hits, i), "id"));
				if (id && !strcmp(id, gold))
					rank = i + 1;
			}
			for (int x = 0; x < NCUT; x++)
				t[m].hits[x] += rank && rank <= (size_t)cutoffs[x];
			t[m].rr += rank ? 1.0 / (double)rank : 0;
			t[m].n++;
			json_decref(res);
		}
		free(vj);
		json_decref(o);
		nq++;
	}
	free(line);
	fclose(qf);
	free(vecs);
	if (!status && !nq) {
		fprintf(stderr, "train: %s: no queries\n", queries);
		status = EXIT_DATAERR;
	}
	if (!status) {
		json_t *rep = json_object();
		json_object_set_new(rep, "queries", json_integer((json_int_t)nq));
		printf("%-8s %8s %8s %8s %8s %8s %8s\n", "", "R@1", "R@3", "R@5", "R@10", "R@20", "MRR");
		for (int m = 0; m < 3; m++) {
			if (!t[m].available) {
				printf("%-8s (not available: %s)\n", modes[m], t[m].why);
				continue;
			}
			json_t *r = json_object();
			printf("%-8s", modes[m]);
			for (int x = 0; x < NCUT; x++) {
				double v = (double)t[m].hits[x] / (double)t[m].n;
				char key[16];
				snprintf(key, sizeof key, "recall@%d", cutoffs[x]);
				json_object_set_new(r, key, json_real(v));
				printf(" %8.4f", v);
			}
			json_object_set_new(r, "mrr", json_real(t[m].rr / (double)t[m].n));
			printf(" %8.4f\n", t[m].rr / (double)t[m].n);
			json_object_set_new(rep, modes[m], r);
		}
		mkdir(out, 0777);
		size_t pl = strlen(out) + 32;
		char *path = malloc(pl);
		if (path) {
			snprintf(path, pl, "%s/rag_report.json", out);
			if (json_dump_file(rep, path, JSON_INDENT(2) | JSON_REAL_PRECISION(6)))
				fprintf(stderr, "train: cannot write %s\n", path), status = EXIT_IOERR;
			else
				printf("report in %s\n", path);
		}
		free(path);
		json_decref(rep);
	}
	cli_model_close(&cm);
	return status;
}
