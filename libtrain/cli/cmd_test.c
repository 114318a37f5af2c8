/*
 * cmd_test.c - `train test nlu|core` (issue 6): evaluate a model as
 * `rasa test` does.
 *
 *   train test nlu MODEL --data DIR [--out results]
 *       intent accuracy, per-intent precision, recall, F1 and support with
 *       macro and weighted averages (OUT/intent_report.json, laid out as
 *       scikit-learn's classification_report(output_dict=True), with each
 *       intent's "confused_with"), entity precision/recall/F1 over exact
 *       spans (OUT/entity_report.json), the confusion pairs;
 *   train test core MODEL --stories FILE [--out results]
 *       each story replayed with its own turns, every action predicted from
 *       the history before it: story and action accuracy, the failed stories
 *       (OUT/failed_test_stories.yml, Rasa's "# predicted:" comments),
 *       OUT/story_report.json over actions in the same layout;
 *   train test rl MODEL [--episodes N] [--seed S] [--stochastic]
 *       (issue 9) a reinforcement-learning policy (recipes/rl.yml) played
 *       for N episodes (default 100) in its environment: the mean return
 *       and its spread (standard deviation, min, max).
 *
 * --fail-on-prediction-errors exits 1 when anything was mispredicted.
 */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <train/rasa.h>

#include "rasa_model.h"

static const char usage_text[] =
	"usage: train test nlu MODEL --data PATH [--out DIR] [--plugin-path DIRS]\n"
	"       train test core MODEL --stories PATH [--out DIR] [--plugin-path DIRS]\n"
	"       train test rl MODEL [--episodes N] [--seed S] [--stochastic] [--plugin-path DIRS]\n"
	"  --out DIR                      where the reports go (default: results)\n"
	"  --fail-on-prediction-errors    exit 1 when a prediction was wrong\n";

/* ---- scikit-learn's classification report ---------------------------------- */

typedef struct pairs {
	char **gold, **pred;
	size_t n, cap;
} pairs;

static int pairs_add(pairs *p, const char *gold, const char *pred)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 64;
		char **g = realloc(p->gold, cap * sizeof *g);
		if (!g)
			return -1;
		p->gold = g;
		char **q = realloc(p->pred, cap * sizeof *q);
		if (!q)
			return -1;
		p->pred = q;
		p->cap = cap;
	}
	p->gold[p->n] = strdup(gold ? gold : "None");
	p->pred[p->n] = strdup(pred ? pred : "None");
	p->n++;
	return p->gold[p->n - 1] && p->pred[p->n - 1] ? 0 : -1;
}

static void pairs_free(pairs *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->gold[i]);
		free(p->pred[i]);
	}
	free(p->gold);
	free(p->pred);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static json_t *prf(double p, double r, double f, double support)
{
	return json_pack("{s:f, s:f, s:f, s:I}", "precision", p, "recall", r, "f1-score", f,
	                 "support", (json_int_t)support);
}

/* {"label": {precision, recall, f1-score, support, confused_with}, ...,
 *  "accuracy", "macro avg", "weighted avg"}; labels are the sorted union of
 * gold and predicted ones, as scikit-learn takes them. */
static json_t *class_report(const pairs *p, double *accuracy, double *macro_f1, double *weighted_f1)
{
	size_t nl = 0;
	char **labels = malloc((2 * p->n + 1) * sizeof *labels);
	if (!labels)
		return NULL;
	for (size_t i = 0; i < p->n; i++) {
		labels[nl++] = p->gold[i];
		labels[nl++] = p->pred[i];
	}
	qsort(labels, nl, sizeof *labels, cmp_str);
	size_t u = 0;
	for (size_t i = 0; i < nl; i++)
		if (!u || strcmp(labels[u - 1], labels[i]))
			labels[u++] = labels[i];
	json_t *rep = json_object();
	double correct = 0, mp = 0, mr = 0, mf = 0, wp = 0, wr = 0, wf = 0, total = (double)p->n;
	for (size_t i = 0; i < p->n; i++)
		correct += !strcmp(p->gold[i], p->pred[i]);
	for (size_t l = 0; l < u; l++) {
		double tp = 0, np = 0, ng = 0;
		json_t *conf = json_object();
		for (size_t i = 0; i < p->n; i++) {
			int g = !strcmp(p->gold[i], labels[l]), q = !strcmp(p->pred[i], labels[l]);
			tp += g && q;
			np += q;
			ng += g;
			if (g && !q) {
				json_t *c = json_object_get(conf, p->pred[i]);
				json_object_set_new(conf, p->pred[i], json_integer(c ? json_integer_value(c) + 1 : 1));
			}
		}
		double pr = np ? tp / np : 0, rc = ng ? tp / ng : 0, f = pr + rc > 0 ? 2 * pr * rc / (pr + rc) : 0;
		json_t *o = prf(pr, rc, f, ng);
		json_object_set_new(o, "confused_with", conf);
		json_object_set_new(rep, labels[l], o);
		mp += pr;
		mr += rc;
		mf += f;
		wp += pr * ng;
		wr += rc * ng;
		wf += f * ng;
	}
	double acc = total ? correct / total : 0, nu = u ? (double)u : 1, t = total ? total : 1;
	json_object_set_new(rep, "accuracy", json_real(acc));
	json_object_set_new(rep, "macro avg", prf(mp / nu, mr / nu, mf / nu, total));
	json_object_set_new(rep, "weighted avg", prf(wp / t, wr / t, wf / t, total));
	*accuracy = acc;
	*macro_f1 = mf / nu;
	*weighted_f1 = wf / t;
	free(labels);
	return rep;
}

static int write_json(const char *dir, const char *name, json_t *j)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	if (json_dump_file(j, path, JSON_INDENT(2) | JSON_REAL_PRECISION(9))) {
		fprintf(stderr, "train: test: cannot write %s\n", path);
		return EXIT_IOERR;
	}
	return 0;
}

static int make_dir(const char *dir)
{
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", dir);
	for (char *s = buf + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			mkdir(buf, 0777);
			*s = '/';
		}
	struct stat st;
	if (mkdir(buf, 0777) && (stat(buf, &st) || !S_ISDIR(st.st_mode))) {
		fprintf(stderr, "train: test: cannot make the folder %s\n", dir);
		return EXIT_IOERR;
	}
	return 0;
}

/* ---- train test nlu ------------------------------------------------------------ */

static int same_entity(json_t *e, const train_rasa_entity *g)
{
	const char *t = json_string_value(json_object_get(e, "entity"));
	return t && !strcmp(t, g->entity) && json_integer_value(json_object_get(e, "start")) == g->start &&
	       json_integer_value(json_object_get(e, "end")) == g->end;
}

static int test_nlu(cli_model *cm, const char *data, const char *out, int strict)
{
	train_rasa_nlu *nlu = NULL;
	train_error err = { 0 };
	if (train_rasa_nlu_load(&data, 1, &nlu, NULL, &err))
		return cli_report(&err);
	if (!cm->nlu_target) {
		train_rasa_nlu_free(nlu);
		fprintf(stderr, "train: test nlu: the model has no NLU pipeline\n");
		return EXIT_USAGE;
	}
	pairs ip = { 0 };
	int status = 0;
	json_t *ents = json_object(); /* entity -> [tp, predicted, gold] */
	json_t *errors = json_array();
	for (size_t i = 0; i < nlu->n_messages && !status; i++) {
		const train_rasa_message *m = &nlu->messages[i];
		json_t *parse = NULL;
		if (cli_model_parse(cm, m->text, &parse, &err)) {
			status = cli_report(&err);
			break;
		}
		const char *pred = json_string_value(json_object_get(json_object_get(parse, "intent"), "name"));
		if (pairs_add(&ip, m->intent, pred))
			status = EXIT_SOFTWARE;
		if (!pred || strcmp(pred, m->intent))
			json_array_append_new(errors, json_pack("{s:s, s:s, s:s?}", "text", m->text, "intent",
			                                        m->intent, "predicted", pred));
		json_t *pe = json_object_get(parse, "entities");
		size_t k;
		json_t *e;
		for (size_t g = 0; g < m->n_entities; g++) {
			json_t *c = json_object_get(ents, m->entities[g].entity);
			if (!c) {
				c = json_pack("[i, i, i]", 0, 0, 0);
				json_object_set_new(ents, m->entities[g].entity, c);
			}
			json_array_set_new(c, 2, json_integer(json_integer_value(json_array_get(c, 2)) + 1));
			json_array_foreach(pe, k, e)
				if (same_entity(e, &m->entities[g])) {
					json_array_set_new(c, 0, json_integer(json_integer_value(json_array_get(c, 0)) + 1));
					break;
				}
		}
		json_array_foreach(pe, k, e) {
			const char *t = json_string_value(json_object_get(e, "entity"));
			if (!t)
				continue;
			json_t *c = json_object_get(ents, t);
			if (!c) {
				c = json_pack("[i, i, i]", 0, 0, 0);
				json_object_set_new(ents, t, c);
			}
			json_array_set_new(c, 1, json_integer(json_integer_value(json_array_get(c, 1)) + 1));
		}
		json_decref(parse);
	}
	if (!status) {
		double acc, mf, wf;
		json_t *rep = class_report(&ip, &acc, &mf, &wf);
		size_t nc = 0;
		for (size_t i = 0; i < ip.n; i++)
			nc += !strcmp(ip.gold[i], ip.pred[i]);
		printf("intent accuracy: %.2f %% (%zu of %zu)\n", 100 * acc, nc, ip.n);
		printf("intent F1: macro %.4f, weighted %.4f\n", mf, wf);
		/* entities: exact spans */
		double tp = 0, np = 0, ng = 0;
		json_t *erep = json_object();
		const char *key;
		json_t *c;
		json_object_foreach(ents, key, c) {
			double a = (double)json_integer_value(json_array_get(c, 0)),
			       b = (double)json_integer_value(json_array_get(c, 1)),
			       g = (double)json_integer_value(json_array_get(c, 2));
			double p = b ? a / b : 0, r = g ? a / g : 0, f = p + r > 0 ? 2 * p * r / (p + r) : 0;
			json_object_set_new(erep, key, prf(p, r, f, g));
			tp += a;
			np += b;
			ng += g;
		}
		double p = np ? tp / np : 0, r = ng ? tp / ng : 0, f = p + r > 0 ? 2 * p * r / (p + r) : 0;
		json_object_set_new(erep, "micro avg", prf(p, r, f, ng));
		if (ng || np)
			printf("entity F1: %.4f (precision %.4f, recall %.4f, %.0f annotated, %.0f predicted)\n",
			       f, p, r, ng, np);
		else
			printf("entity F1: no entities annotated or predicted\n");
		/* confusion pairs, most frequent first */
		const char *label;
		json_t *o;
		size_t shown = 0;
		json_object_foreach(rep, label, o) {
			json_t *cw = json_object_get(o, "confused_with");
			const char *to;
			json_t *n;
			json_object_foreach(cw, to, n) {
				if (!shown++)
					printf("confused intents (gold -> predicted: count):\n");
				printf("  %s -> %s: %lld\n", label, to, (long long)json_integer_value(n));
			}
		}
		if (!(status = make_dir(out)))
			status = write_json(out, "intent_report.json", rep);
		if (!status)
			status = write_json(out, "intent_errors.json", errors);
		if (!status)
			status = write_json(out, "entity_report.json", erep);
		if (!status)
			printf("reports in %s/ (intent_report.json, intent_errors.json, entity_report.json)\n", out);
		if (!status && strict && (nc < ip.n || tp < ng || tp < np))
			status = 1;
		json_decref(rep);
		json_decref(erep);
	}
	json_decref(ents);
	json_decref(errors);
	pairs_free(&ip);
	train_rasa_nlu_free(nlu);
	return status;
}

/* ---- train test core ------------------------------------------------------------- */

static json_t *entities_json(const train_rasa_event *e)
{
	json_t *a = json_array();
	for (size_t i = 0; i < e->n_entities; i++) {
		const train_rasa_entity *x = &e->entities[i];
		json_t *o = json_pack("{s:s}", "entity", x->entity);
		json_t *v = x->value ? json_loads(x->value, JSON_DECODE_ANY, NULL) : NULL;
		if (!v || (!json_is_string(v) && !json_is_number(v) && !json_is_boolean(v) && !json_is_null(v))) {
			json_decref(v);
			v = json_string(x->value ? x->value : "");
		}
		json_object_set_new(o, "value", v);
		if (x->role)
			json_object_set_new(o, "role", json_string(x->role));
		if (x->group)
			json_object_set_new(o, "group", json_string(x->group));
		json_array_append_new(a, o);
	}
	return a;
}

/* The conversation event of a story step, or NULL to skip it. */
static json_t *story_event(cli_model *cm, const train_rasa_event *e, int *status)
{
	train_error err = { 0 };
	switch (e->kind) {
	case TRAIN_RASA_EV_USER: {
		if (!e->name && e->text && cm->nlu_target) {
			json_t *parse = NULL;
			if (cli_model_parse(cm, e->text, &parse, &err)) {
				*status = cli_report(&err);
				return NULL;
			}
			json_t *ev = cli_user_event(e->text, parse);
			json_decref(parse);
			return ev;
		}
		json_t *ev = json_pack("{s:s, s:o}", "event", "user", "entities", entities_json(e));
		if (e->name)
			json_object_set_new(ev, "intent", json_string(e->name));
		if (e->text)
			json_object_set_new(ev, "text", json_string(e->text));
		return ev;
	}
	case TRAIN_RASA_EV_SLOT: {
		json_t *ev = json_pack("{s:s, s:s}", "event", "slot", "name", e->name);
		if (e->value) {
			json_t *v = json_loads(e->value, JSON_DECODE_ANY, NULL);
			json_object_set_new(ev, "value", v ? v : json_string(e->value));
		}
		return ev;
	}
	case TRAIN_RASA_EV_ACTIVE_LOOP:
		return json_pack("{s:s, s:s?}", "event", "active_loop", "name", e->name);
	case TRAIN_RASA_EV_BOT:
		return json_pack("{s:s, s:s}", "event", "bot", "text", e->text ? e->text : "");
	default: return NULL;
	}
}

static int test_core(cli_model *cm, const char *stories_path, const char *out, int strict)
{
	train_rasa_stories *st = NULL;
	train_rasa_trackers *tr = NULL;
	train_error err = { 0 };
	if (train_rasa_stories_load(&stories_path, 1, &st, NULL, &err) ||
	    train_rasa_trackers_generate(st, NULL, &tr, NULL, &err)) {
		train_rasa_stories_free(st);
		return cli_report(&err);
	}
	if (!cm->conv_target) {
		train_rasa_trackers_free(tr);
		train_rasa_stories_free(st);
		fprintf(stderr, "train: test core: the model has no policies\n");
		return EXIT_USAGE;
	}
	pairs ap = { 0 };
	int status = 0;
	size_t n_stories = 0, n_ok = 0;
	json_t *failed = json_array();
	char failed_path[4096];
	snprintf(failed_path, sizeof failed_path, "%s/failed_test_stories.yml", out);
	FILE *fy = NULL;
	for (size_t t = 0; t < tr->n_items && !status; t++) {
		const train_rasa_tracker *k = &tr->items[t];
		if (k->kind != TRAIN_RASA_STORY)
			continue;
		n_stories++;
		json_t *hist = json_array(), *steps = json_array();
		int ok = 1;
		int acted = 0; /* an action since the last user turn: the bot listens next */
		const char *loop = NULL; /* the active loop, as the story's events set it */
		for (size_t i = 0; i < k->n_events && !status; i++) {
			const train_rasa_event *e = k->events[i];
			if (e->kind == TRAIN_RASA_EV_ACTION || (e->kind == TRAIN_RASA_EV_USER && acted)) {
				const char *gold = e->kind == TRAIN_RASA_EV_ACTION ? e->name : "action_listen";
				json_t *a = NULL;
				if (cli_model_next_action(cm, hist, &a, &err)) {
					status = cli_report(&err);
					break;
				}
				const char *pred = json_string_value(json_object_get(a, "action"));
				/* Rasa's test: when the active form is predicted where the
				 * story has another action, the form might have rejected
				 * the user's input when it ran; emulate the rejection
				 * and predict again (rasa/core/test.py,
				 * emulate_loop_rejection).  The rejection stays in the
				 * history, as it does in Rasa's tracker. */
				if (pred && loop && strcmp(pred, gold) && !strcmp(pred, loop)) {
					json_array_append_new(hist, json_pack("{s:s, s:s}", "event", "rejected",
					                                      "name", loop));
					json_decref(a);
					a = NULL;
					if (cli_model_next_action(cm, hist, &a, &err)) {
						status = cli_report(&err);
						break;
					}
					pred = json_string_value(json_object_get(a, "action"));
				}
				if (pairs_add(&ap, gold, pred))
					status = EXIT_SOFTWARE;
				int right = pred && !strcmp(pred, gold);
				ok &= right;
				json_array_append_new(steps, json_pack("{s:s, s:s?, s:b}", "action", gold,
				                                       "predicted", pred, "correct", right));
				json_decref(a);
				acted = e->kind == TRAIN_RASA_EV_ACTION;
				if (acted) {
					json_array_append_new(hist, json_pack("{s:s, s:s}", "event", "action", "name", e->name));
					continue;
				}
			}
			if (e->kind == TRAIN_RASA_EV_ACTIVE_LOOP)
				loop = e->name;
			json_t *ev = story_event(cm, e, &status);
			if (ev) {
				if (e->kind == TRAIN_RASA_EV_USER)
					json_array_append_new(steps, json_pack("{s:O}", "intent", json_object_get(ev, "intent")));
				json_array_append_new(hist, ev);
			}
		}
		n_ok += ok && !status;
		if (!ok && !status) {
			json_array_append_new(failed, json_pack("{s:s, s:s, s:i, s:O}", "story", k->name, "file",
			                                        k->loc.file ? k->loc.file : "", "line",
			                                        (int)k->loc.line, "steps", steps));
			if (!fy && make_dir(out) == 0)
				fy = fopen(failed_path, "w");
			if (fy) {
				fprintf(fy, "%sstories:\n", ftell(fy) ? "" : "version: \"3.1\"\n");
				fprintf(fy, "- story: %s (%s:%u)\n  steps:\n", k->name, k->loc.file ? k->loc.file : "",
				        (unsigned)k->loc.line);
				size_t i;
				json_t *s;
				json_array_foreach(steps, i, s) {
					if (json_object_get(s, "intent")) {
						const char *in = json_string_value(json_object_get(s, "intent"));
						fprintf(fy, "  - intent: %s\n", in ? in : "null");
					} else {
						const char *p = json_string_value(json_object_get(s, "predicted"));
						fprintf(fy, "  - action: %s", json_string_value(json_object_get(s, "action")));
						if (!json_is_true(json_object_get(s, "correct")))
							fprintf(fy, "  # predicted: %s", p ? p : "null");
						fputc('\n', fy);
					}
				}
			}
		}
		json_decref(hist);
		json_decref(steps);
	}
	if (fy)
		fclose(fy);
	if (!status) {
		double acc, mf, wf;
		json_t *rep = class_report(&ap, &acc, &mf, &wf);
		size_t nc = 0;
		for (size_t i = 0; i < ap.n; i++)
			nc += !strcmp(ap.gold[i], ap.pred[i]);
		printf("stories: %zu of %zu correct (%.2f %%)\n", n_ok, n_stories,
		       n_stories ? 100.0 * (double)n_ok / (double)n_stories : 0.0);
		printf("actions: %zu of %zu correct (accuracy %.2f %%, macro F1 %.4f, weighted F1 %.4f)\n", nc,
		       ap.n, 100 * acc, mf, wf);
		size_t i;
		json_t *f;
		json_array_foreach(failed, i, f)
			printf("failed story: %s (%s:%lld)\n", json_string_value(json_object_get(f, "story")),
			       json_string_value(json_object_get(f, "file")),
			       (long long)json_integer_value(json_object_get(f, "line")));
		json_object_set_new(rep, "conversation_accuracy",
		                    json_pack("{s:f, s:i, s:i}", "accuracy",
		                              n_stories ? (double)n_ok / (double)n_stories : 0.0,
		                              "correct", (int)n_ok, "total", (int)n_stories));
		if (!(status = make_dir(out)))
			status = write_json(out, "story_report.json", rep);
		if (!status)
			status = write_json(out, "failed_stories.json", failed);
		if (!status && !json_array_size(failed))
			remove(failed_path);
		if (!status)
			printf("reports in %s/ (story_report.json%s)\n", out,
			       json_array_size(failed) ? ", failed_test_stories.yml" : "");
		if (!status && strict && json_array_size(failed))
			status = 1;
		json_decref(rep);
	}
	json_decref(failed);
	pairs_free(&ap);
	train_rasa_trackers_free(tr);
	train_rasa_stories_free(st);
	return status;
}

/* `train test rl`: the predict schema's one target plays the episodes. */
static int test_rl(cli_model *cm, long episodes, long seed, int stochastic)
{
	if (cm->n_inputs != 1 || strcmp(cm->inputs[0], "episodes") || cm->n_targets != 1) {
		fprintf(stderr, "train: this model is not a policy of recipes/rl.yml (its predict "
		                "schema does not take 'episodes')\n");
		return EXIT_USAGE;
	}
	char req[160];
	snprintf(req, sizeof req, "{\"episodes\": %ld, \"seed\": %ld, \"deterministic\": %s}",
	         episodes, seed, stochastic ? "false" : "true");
	train_values *in = NULL, *out = NULL;
	train_error err = { 0 };
	int status = 0;
	if (train_values_create(&in) || train_values_create(&out) ||
	    train_values_put_bytes(in, "episodes", "application/json", req, strlen(req))) {
		fprintf(stderr, "train: out of memory\n");
		status = EXIT_SOFTWARE;
	} else if (train_model_predict(cm->m, in, out, &err)) {
		status = cli_report(&err);
	} else {
		const train_value *v = train_values_get(out, cm->targets[0]);
		json_t *j = v ? json_loadb(train_value_data(v), train_value_size(v), 0, NULL) : NULL;
		if (!j) {
			fprintf(stderr, "train: the policy gave no result\n");
			status = EXIT_SOFTWARE;
		} else {
			printf("%s: %lld episodes, return mean %.2f, std %.2f, min %.2f, max %.2f\n",
			       json_string_value(json_object_get(j, "env")),
			       (long long)json_integer_value(json_object_get(j, "episodes")),
			       json_number_value(json_object_get(j, "mean")),
			       json_number_value(json_object_get(j, "std")),
			       json_number_value(json_object_get(j, "min")),
			       json_number_value(json_object_get(j, "max")));
			json_decref(j);
		}
	}
	train_values_destroy(in);
	train_values_destroy(out);
	return status;
}

int cmd_test(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "plugin-path", required_argument, NULL, 'p' },
		{ "data", required_argument, NULL, 'd' },
		{ "nlu", required_argument, NULL, 'd' },
		{ "stories", required_argument, NULL, 's' },
		{ "out", required_argument, NULL, 'o' },
		{ "model", required_argument, NULL, 'm' },
		{ "fail-on-prediction-errors", no_argument, NULL, 'f' },
		{ "episodes", required_argument, NULL, 'e' },
		{ "seed", required_argument, NULL, 'S' },
		{ "stochastic", no_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	if (argc >= 2 && !strcmp(argv[1], "rag")) /* cmd_rag.c (issue 8) */
		return cmd_test_rag(argc - 1, argv + 1);
	if (argc < 2 || (strcmp(argv[1], "nlu") && strcmp(argv[1], "core") && strcmp(argv[1], "rl"))) {
		if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
			fputs(usage_text, stdout);
			return 0;
		}
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	int core = !strcmp(argv[1], "core"), rl = !strcmp(argv[1], "rl"), strict = 0, c;
	int stochastic = 0;
	long episodes = 100, seed = 0;
	char *end;
	const char *plugin_path = NULL, *data = NULL, *stories = NULL, *out = "results", *model = NULL;
	optind = 1;
	while ((c = getopt_long(argc - 1, argv + 1, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': plugin_path = optarg; break;
		case 'd': data = optarg; break;
		case 's': stories = optarg; break;
		case 'o': out = optarg; break;
		case 'm': model = optarg; break;
		case 'f': strict = 1; break;
		case 'e':
			episodes = strtol(optarg, &end, 10);
			if (*end || episodes < 1 || episodes > 10000000) {
				fprintf(stderr, "train: --episodes takes a number from 1 to 10000000\n");
				return EXIT_USAGE;
			}
			break;
		case 'S':
			seed = strtol(optarg, &end, 10);
			if (*end || seed < 0) {
				fprintf(stderr, "train: --seed takes a number >= 0\n");
				return EXIT_USAGE;
			}
			break;
		case 'x': stochastic = 1; break;
		case 'h': fputs(usage_text, stdout); return 0;
		default: return EXIT_USAGE;
		}
	}
	if (optind < argc - 1)
		model = argv[1 + optind++];
	if (!model || optind < argc - 1) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	if (core && !stories)
		stories = "tests";
	if (!core && !data)
		data = "data";
	cli_model cm;
	int status = cli_model_open(model, plugin_path, &cm);
	if (!status)
		status = rl     ? test_rl(&cm, episodes, seed, stochastic)
		         : core ? test_core(&cm, stories, out, strict)
		                : test_nlu(&cm, data, out, strict);
	cli_model_close(&cm);
	return status;
}
