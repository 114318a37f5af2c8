/*
 * plugins/policy/policy.c - the "policy" plugin: Rasa's dialogue policies
 * and their ensemble (issue 6).
 *
 *   MemoizationPolicy            exact recall of story histories (memo.c)
 *   AugmentedMemoizationPolicy   the same, forgetting the oldest turns on a miss
 *   RulePolicy                   rules, forms' active loops, fallback (rule.c)
 *   TEDPolicy                    a transformer over the dialogue (ted.c)
 *   PolicyEnsemble               picks one prediction as Rasa's default ensemble
 *
 * Training.  Each policy's train inputs are `domain` and `stories` (the
 * values of RasaDomain and RasaStories, <train/rasa.h>); stories and rules
 * are resolved into trackers (checkpoints, `or`), made explicit and turned
 * into Rasa's dialogue states (dialogue.c).  The output `policy` is the
 * persisted state: the JSON table of a memoization or rule policy
 * (application/json), TED's weights (train/tensors+safetensors).  The
 * resource holds domain.bin (the domain value), <policy>.json (the
 * action space, the priority and the policy's own state, keys sorted) and,
 * for TED, ted.safetensors.
 *
 * Prediction.  A policy's process input `conversation` is a conversation:
 *
 *   [{"event": "user", "intent": "greet", "entities": [{"entity": "city",
 *     "value": "Berlin", "role": "from"}], "text": "hi", "confidence": 0.9},
 *    {"event": "action", "name": "utter_greet"},
 *    {"event": "bot", "text": "end-to-end bot text"},
 *    {"event": "slot", "name": "cuisine", "value": "thai"},
 *    {"event": "active_loop", "name": "restaurant_form"},   (null: none)
 *    {"event": "rejected", "name": "restaurant_form"},      (the action refused to run)
 *    {"event": "restart"}, {"event": "session_started"}]    (start over)
 *
 * as Rasa's tracker holds them: a user event implies the action_listen
 * before it, and fills the slots that from_entity mappings take from its
 * entities (as Rasa's story reader does); "text", "entities", "role",
 * "group" and "confidence" are optional, an entity may also be just its
 * name, and a slot event without "value" sets what a story's bare
 * `- slot_was_set: [name]` sets ("filled" for text and list slots).  The next action is predicted after the last event.  The output
 * `prediction` is
 *
 *   {"action": "utter_greet" or null, "confidence": 1.0, "policy": "RulePolicy",
 *    "events": [the conversation], "predictions": [earlier ones..., this one]}
 *
 * where each prediction is {"policy", "priority", "action", "confidence",
 * "no_user", "end_to_end", "loop_interrupted", "ranking": [{"name",
 * "confidence"} for every action with a non-zero score, best first]}.  A
 * policy also accepts that output as its input, so policies chain:
 * $input.conversation -> RulePolicy -> MemoizationPolicy -> TEDPolicy ->
 * PolicyEnsemble (recipes/rasa-core.yml), each adding its prediction.
 *
 * PolicyEnsemble's process input `conversation` is such a chain's output;
 * its output `action` is {"action", "confidence", "policy", "predictions"}:
 * as Rasa's DefaultPolicyPredictionEnsemble, an action that was just
 * rejected gets 0 everywhere, predictions that do not use the user's input
 * (a form's happy path) win over the rest, end-to-end predictions over
 * intent-based ones, then the highest confidence, ties to the higher
 * priority (RulePolicy 6, Memoization 3, TED 1); all zero gives
 * action_listen, as Rasa's argmax does.
 *
 * Threads: no global state; each call works on its own instance.
 */
#include "policy.h"

#include <train/optim.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define JSON_TYPE "application/json"
#define TENSORS_TYPE "train/tensors+safetensors"
#define STATE_FORMAT_VERSION 1

typedef enum pkind { P_MEMO, P_AUGMENTED, P_RULE, P_TED, P_ENSEMBLE } pkind;

static const char *const kind_names[] = { "MemoizationPolicy", "AugmentedMemoizationPolicy",
	                                      "RulePolicy", "TEDPolicy", "PolicyEnsemble" };
static const char *const state_files[] = { "memoization.json", "memoization.json",
	                                       "rule_policy.json", "ted.json", NULL };

typedef struct policy {
	pkind kind;
	int priority;
	memo memo;
	rule_policy rule;
	memo memo_cfg;               /* the configured settings, for a new training */
	rule_policy rule_cfg;
	ted_cfg tc;
	ted *ted;
	pdomain pd;
	int have_pd;
	void *domain_bytes;
	size_t domain_size;
	char *state;                 /* <policy>.json */
	size_t state_size;
	void *weights;               /* TED's safetensors */
	size_t weights_size;
	char *fallback_action;       /* RulePolicy config (the rule keeps a pointer) */
} policy;

/* ------------------------------------------------------------------------ */
/* parameters */

static const train_param memo_params[] = {
	{ "max_history", TRAIN_PARAM_ANY, "5",
	  "states of history to match (an integer >= 1, or null for the whole dialogue)" },
	{ "priority", TRAIN_PARAM_INT, "3", "breaks ties between policies (higher wins)" },
	{ "use_nlu_confidence_as_score", TRAIN_PARAM_BOOL, "false",
	  "predict with the intent's confidence instead of 1" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

static const train_param rule_params[] = {
	{ "core_fallback_threshold", TRAIN_PARAM_FLOAT, "0.3",
	  "confidence of the fallback action when no rule matches" },
	{ "core_fallback_action_name", TRAIN_PARAM_STRING, "action_default_fallback",
	  "the action predicted when no rule matches" },
	{ "enable_fallback_prediction", TRAIN_PARAM_BOOL, "true",
	  "predict core_fallback_action_name when no rule matches" },
	{ "restrict_rules", TRAIN_PARAM_BOOL, "true",
	  "refuse rules with more than one user turn" },
	{ "check_for_contradictions", TRAIN_PARAM_BOOL, "true",
	  "refuse rules that contradict each other or the stories" },
	{ "use_nlu_confidence_as_score", TRAIN_PARAM_BOOL, "false",
	  "predict with the intent's confidence instead of 1" },
	{ "priority", TRAIN_PARAM_INT, "6", "breaks ties between policies (higher wins)" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

static const train_param ted_params[] = {
	{ "max_history", TRAIN_PARAM_ANY, "~",
	  "states of history the transformer sees (null: the longest story)" },
	{ "epochs", TRAIN_PARAM_INT, "1", "passes over the training examples" },
	{ "batch_size", TRAIN_PARAM_ANY, "[64, 256]",
	  "an integer, or [first, last] growing linearly over the epochs" },
	{ "learning_rate", TRAIN_PARAM_FLOAT, "0.001", "AdamW's learning rate" },
	{ "random_seed", TRAIN_PARAM_ANY, "~",
	  "seed of the initial weights, the order and dropout (null: 0, so runs repeat)" },
	{ "embedding_dimension", TRAIN_PARAM_INT, "20", "size of the dialogue and action embeddings" },
	{ "transformer_size", TRAIN_PARAM_ANY, "128",
	  "width of the transformer (an integer, or a map with `dialogue`)" },
	{ "number_of_transformer_layers", TRAIN_PARAM_ANY, "1",
	  "transformer blocks (an integer, or a map with `dialogue`; 0 allowed)" },
	{ "number_of_attention_heads", TRAIN_PARAM_INT, "4", "attention heads (divide transformer_size)" },
	{ "drop_rate_dialogue", TRAIN_PARAM_FLOAT, "0.1", "dropout after the input layer" },
	{ "regularization_constant", TRAIN_PARAM_FLOAT, "0.001", "AdamW's weight decay" },
	{ "constrain_similarities", TRAIN_PARAM_BOOL, "false",
	  "accepted for Rasa configs; the loss is always a full softmax" },
	{ "model_confidence", TRAIN_PARAM_STRING, "softmax", "only softmax" },
	{ "priority", TRAIN_PARAM_INT, "1", "breaks ties between policies (higher wins)" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

/* ------------------------------------------------------------------------ */
/* lifecycle */

static void policy_destroy(void *self)
{
	policy *p = self;
	if (!p)
		return;
	memo_free(&p->memo);
	rule_free(&p->rule);
	ted_free(p->ted);
	if (p->have_pd)
		pdomain_free(&p->pd);
	free(p->domain_bytes);
	free(p->state);
	free(p->weights);
	free(p->fallback_action);
	free(p);
}

/* An integer >= lo, or null (0), from an ANY key; a map takes `dialogue`. */
static int int_or_null(const train_config *c, const char *key, int lo, int allow_null, int *out,
                       train_ctx *ctx)
{
	const train_config *v = train_config_get(c, key);
	if (v && train_config_kind(v) == TRAIN_CFG_MAP && train_config_get(v, "dialogue"))
		v = train_config_get(v, "dialogue");
	if (!v || train_config_kind(v) == TRAIN_CFG_NULL) {
		if (allow_null) {
			*out = 0;
			return TRAIN_OK;
		}
	} else if (train_config_kind(v) == TRAIN_CFG_INT && train_config_as_int(v) >= lo &&
	           train_config_as_int(v) <= 1 << 20) {
		*out = (int)train_config_as_int(v);
		return TRAIN_OK;
	}
	return train_fail(ctx, "%s: expected an integer >= %d%s", key, lo, allow_null ? " or null" : "");
}

static int create_kind(pkind kind, const train_config *c, train_ctx *ctx, void **self)
{
	*self = NULL;
	policy *p = calloc(1, sizeof *p);
	if (!p)
		return TRAIN_ENOMEM;
	p->kind = kind;
	int rc = TRAIN_OK;
	if (kind == P_MEMO || kind == P_AUGMENTED) {
		p->priority = (int)train_config_int(c, "priority");
		p->memo.augmented = kind == P_AUGMENTED;
		p->memo.use_nlu_confidence = train_config_bool(c, "use_nlu_confidence_as_score");
		rc = int_or_null(c, "max_history", 1, 1, &p->memo.max_history, ctx);
	} else if (kind == P_RULE) {
		rule_policy *r = &p->rule;
		p->priority = (int)train_config_int(c, "priority");
		r->fallback_threshold = train_config_float(c, "core_fallback_threshold");
		p->fallback_action = strdup(train_config_string(c, "core_fallback_action_name"));
		r->fallback_action = p->fallback_action;
		r->enable_fallback = train_config_bool(c, "enable_fallback_prediction");
		r->restrict_rules = train_config_bool(c, "restrict_rules");
		r->check_contradictions = train_config_bool(c, "check_for_contradictions");
		r->use_nlu_confidence = train_config_bool(c, "use_nlu_confidence_as_score");
		if (!p->fallback_action)
			rc = TRAIN_ENOMEM;
		else if (!(r->fallback_threshold >= 0 && r->fallback_threshold <= 1))
			rc = train_fail(ctx, "core_fallback_threshold: expected a number in [0, 1]");
	} else if (kind == P_TED) {
		ted_cfg *t = &p->tc;
		p->priority = (int)train_config_int(c, "priority");
		t->epochs = (int)train_config_int(c, "epochs");
		t->learning_rate = train_config_float(c, "learning_rate");
		t->embed_dim = (int)train_config_int(c, "embedding_dimension");
		t->heads = (int)train_config_int(c, "number_of_attention_heads");
		t->drop_rate = train_config_float(c, "drop_rate_dialogue");
		t->weight_decay = train_config_float(c, "regularization_constant");
		int seed = 0;
		rc = int_or_null(c, "max_history", 1, 1, &t->max_history, ctx);
		if (!rc)
			rc = int_or_null(c, "transformer_size", 1, 0, &t->size, ctx);
		if (!rc)
			rc = int_or_null(c, "number_of_transformer_layers", 0, 0, &t->layers, ctx);
		if (!rc)
			rc = int_or_null(c, "random_seed", 0, 1, &seed, ctx);
		t->seed = (uint64_t)seed;
		const train_config *bs = train_config_get(c, "batch_size");
		if (!rc && train_config_kind(bs) == TRAIN_CFG_INT) {
			t->batch_min = t->batch_max = (int)train_config_as_int(bs);
		} else if (!rc && train_config_kind(bs) == TRAIN_CFG_LIST && train_config_len(bs) == 2 &&
		           train_config_kind(train_config_at(bs, 0)) == TRAIN_CFG_INT &&
		           train_config_kind(train_config_at(bs, 1)) == TRAIN_CFG_INT) {
			t->batch_min = (int)train_config_as_int(train_config_at(bs, 0));
			t->batch_max = (int)train_config_as_int(train_config_at(bs, 1));
		} else if (!rc) {
			rc = train_fail(ctx, "batch_size: expected an integer or [first, last]");
		}
		const char *mc = train_config_string(c, "model_confidence");
		if (rc)
			;
		else if (t->epochs < 1)
			rc = train_fail(ctx, "epochs: expected an integer >= 1");
		else if (t->batch_min < 1 || t->batch_max < 1 || t->batch_min > 1 << 20 ||
		         t->batch_max > 1 << 20)
			rc = train_fail(ctx, "batch_size: expected positive sizes");
		else if (!(t->learning_rate > 0))
			rc = train_fail(ctx, "learning_rate: expected a positive number");
		else if (t->embed_dim < 1 || t->embed_dim > 1 << 16)
			rc = train_fail(ctx, "embedding_dimension: expected an integer >= 1");
		else if (t->heads < 1 || t->size % t->heads)
			rc = train_fail(ctx, "number_of_attention_heads: expected a divisor of "
			                "transformer_size (%d)", t->size);
		else if (!(t->drop_rate >= 0 && t->drop_rate < 1))
			rc = train_fail(ctx, "drop_rate_dialogue: expected a number in [0, 1)");
		else if (!(t->weight_decay >= 0))
			rc = train_fail(ctx, "regularization_constant: expected a number >= 0");
		else if (!mc || strcmp(mc, "softmax"))
			rc = train_fail(ctx, "model_confidence: only \"softmax\" is supported");
	}
	if (rc) {
		policy_destroy(p);
		return rc;
	}
	p->memo_cfg = p->memo;
	p->rule_cfg = p->rule;
	*self = p;
	return TRAIN_OK;
}

/* Back to the configured, untrained state (train() on a loaded policy:
 * finetuning); TED's weights go to *prev. */
static void policy_reset(policy *p, ted **prev)
{
	memo_free(&p->memo);
	rule_free(&p->rule);
	p->memo = p->memo_cfg;
	p->rule = p->rule_cfg;
	*prev = p->ted;
	p->ted = NULL;
	if (p->have_pd)
		pdomain_free(&p->pd);
	p->have_pd = 0;
	free(p->domain_bytes);
	free(p->state);
	free(p->weights);
	p->domain_bytes = p->weights = NULL;
	p->state = NULL;
	p->domain_size = p->state_size = p->weights_size = 0;
}

static int memo_create(const train_config *c, train_ctx *ctx, void **self)
{
	return create_kind(P_MEMO, c, ctx, self);
}
static int augmented_create(const train_config *c, train_ctx *ctx, void **self)
{
	return create_kind(P_AUGMENTED, c, ctx, self);
}
static int rule_create(const train_config *c, train_ctx *ctx, void **self)
{
	return create_kind(P_RULE, c, ctx, self);
}
static int ted_create(const train_config *c, train_ctx *ctx, void **self)
{
	return create_kind(P_TED, c, ctx, self);
}
static int ensemble_create(const train_config *c, train_ctx *ctx, void **self)
{
	return create_kind(P_ENSEMBLE, c, ctx, self);
}

/* ------------------------------------------------------------------------ */
/* training */

static int fail_err(train_ctx *ctx, int rc, const train_error *err)
{
	char buf[1024];
	if (rc == TRAIN_ENOMEM)
		return rc;
	return train_fail(ctx, "%s", err->text[0] ? train_error_format(err, buf, sizeof buf)
	                                           : train_strerror(rc));
}

/* TED's weights as bytes: written to a temporary file, read back. */
static int weights_bytes(policy *p, json_t **meta, train_ctx *ctx)
{
	const char *dir = getenv("TMPDIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/train-ted-XXXXXX", dir && *dir ? dir : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0)
		return train_fail(ctx, "cannot make a temporary file in %s: %s", dir ? dir : "/tmp",
		                  strerror(errno));
	close(fd);
	train_error err = { 0 };
	int rc = ted_save(p->ted, path, meta, &err);
	FILE *f = rc ? NULL : fopen(path, "rb");
	if (!rc && !f)
		rc = train_fail(ctx, "%s: %s", path, strerror(errno));
	else if (rc)
		rc = fail_err(ctx, rc, &err);
	if (f) {
		fseek(f, 0, SEEK_END);
		long n = ftell(f);
		fseek(f, 0, SEEK_SET);
		p->weights = n > 0 ? malloc((size_t)n) : NULL;
		if (!p->weights || fread(p->weights, 1, (size_t)n, f) != (size_t)n)
			rc = p->weights ? train_fail(ctx, "%s: short read", path) : TRAIN_ENOMEM;
		else
			p->weights_size = (size_t)n;
		fclose(f);
	}
	unlink(path);
	return rc;
}

static int set_state(policy *p, json_t *own)
{
	json_t *j = own ? own : json_object();
	if (!j)
		return TRAIN_ENOMEM;
	int bad = json_object_set_new(j, "format", json_string("libtrain.policy"));
	bad |= json_object_set_new(j, "version", json_integer(STATE_FORMAT_VERSION));
	bad |= json_object_set_new(j, "policy", json_string(kind_names[p->kind]));
	bad |= json_object_set_new(j, "priority", json_integer(p->priority));
	bad |= json_object_set_new(j, "actions", pdomain_actions_json(&p->pd));
	char *s = bad ? NULL : json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(1) | JSON_REAL_PRECISION(17));
	json_decref(j);
	if (!s)
		return TRAIN_ENOMEM;
	p->state = s;
	p->state_size = strlen(s);
	return TRAIN_OK;
}

static int policy_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	policy *p = self;
	const train_value *dv = train_values_get(in, "domain"), *sv = train_values_get(in, "stories");
	if (p->kind == P_ENSEMBLE)
		return TRAIN_OK;
	if (!dv || strcmp(train_value_type(dv), TRAIN_RASA_DOMAIN_TYPE))
		return train_fail(ctx, "input 'domain' must be a domain value (%s, as RasaDomain makes)",
		                  TRAIN_RASA_DOMAIN_TYPE);
	if (!sv || strcmp(train_value_type(sv), TRAIN_RASA_STORIES_TYPE))
		return train_fail(ctx, "input 'stories' must be a stories value (%s, as RasaStories "
		                  "makes)", TRAIN_RASA_STORIES_TYPE);
	train_error err = { 0 };
	train_rasa_stories *st = NULL;
	train_rasa_trackers *trk = NULL;
	train_rasa_diags *diags = NULL;
	pdialog *dl = NULL;
	size_t n = 0;
	ppool pool = { 0 };
	pbuf msg = { 0 };
	json_t *own = NULL;
	ted *prev = NULL;
	policy_reset(p, &prev);
	int rc = pdomain_init(&p->pd, train_value_data(dv), train_value_size(dv), &err);
	p->have_pd = !rc;
	if (rc) {
		rc = fail_err(ctx, rc, &err);
		goto out;
	}
	p->domain_size = train_value_size(dv);
	p->domain_bytes = malloc(p->domain_size + 1);
	if (!p->domain_bytes) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	memcpy(p->domain_bytes, train_value_data(dv), p->domain_size);
	if ((rc = train_rasa_stories_from_value(sv, &st, &err)) ||
	    (rc = train_rasa_diags_create(&diags)) ||
	    (rc = train_rasa_trackers_generate(st, NULL, &trk, diags, &err))) {
		rc = fail_err(ctx, rc, &err);
		goto out;
	}
	for (size_t i = 0; i < train_rasa_diags_len(diags); i++)
		train_log(ctx, TRAIN_LOG_WARN, "%s", train_rasa_diags_at(diags, i)->text);
	if ((rc = pdomain_add_from_stories(&p->pd, st)))
		goto out;
	dl = calloc(trk->n_items + 1, sizeof *dl);
	if (!dl) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	for (; n < trk->n_items && !rc; n++)
		rc = dialog_from_tracker(&p->pd, &trk->items[n], &pool, &dl[n]);
	if (rc)
		goto out;
	switch (p->kind) {
	case P_MEMO:
	case P_AUGMENTED:
		rc = memo_train(&p->memo, &p->pd, dl, n);
		if (!rc) {
			train_log(ctx, TRAIN_LOG_INFO, "memorized %zu unique state histories from %zu "
			          "stories", p->memo.n, st->n_stories);
			own = memo_to_json(&p->memo);
			rc = own ? TRAIN_OK : TRAIN_ENOMEM;
		}
		break;
	case P_RULE:
		rc = rule_train(&p->rule, &p->pd, dl, n, &msg);
		if (rc == TRAIN_EINVAL) {
			/* one finding per line, as Rasa lists them */
			size_t lines = 0;
			for (char *s = msg.d, *nl; s && *s; s = nl + 1) {
				nl = strchr(s, '\n');
				if (!nl)
					nl = s + strlen(s) - 1;
				else
					*nl = '\0';
				train_log(ctx, TRAIN_LOG_ERROR, "%s", s);
				lines++;
			}
			rc = train_fail(ctx, "%zu problem%s with the rules (listed above); Rasa refuses "
			                "to train on them", lines, lines == 1 ? "" : "s");
		} else if (!rc) {
			train_log(ctx, TRAIN_LOG_INFO, "memorized %zu rule keys from %zu rules", p->rule.n_rules,
			          st->n_rules);
			own = rule_to_json(&p->rule);
			rc = own ? TRAIN_OK : TRAIN_ENOMEM;
		}
		break;
	case P_TED:
		rc = ted_train(&p->tc, &p->pd, dl, n, train_ctx_finetuning(ctx) ? prev : NULL, ctx,
		               &p->ted);
		if (!rc)
			rc = weights_bytes(p, &own, ctx);
		break;
	case P_ENSEMBLE:
		break;
	}
	if (!rc)
		rc = set_state(p, own);
	own = NULL;
	if (!rc && p->kind == P_TED)
		rc = train_values_put_bytes(out, "policy", TENSORS_TYPE, p->weights, p->weights_size);
	else if (!rc)
		rc = train_values_put_bytes(out, "policy", JSON_TYPE, p->state, p->state_size);
out:
	ted_free(prev);
	json_decref(own);
	for (size_t i = 0; dl && i < n; i++)
		dialog_free(&dl[i]);
	free(dl);
	pp_free(&pool);
	pb_free(&msg);
	train_rasa_trackers_free(trk);
	train_rasa_stories_free(st);
	train_rasa_diags_destroy(diags);
	return rc;
}

static int policy_persist(void *self, train_resource *res)
{
	policy *p = self;
	if (p->kind == P_ENSEMBLE)
		return TRAIN_OK;
	int rc = train_resource_write(res, "domain.bin", p->domain_bytes, p->domain_size);
	if (!rc)
		rc = train_resource_write(res, state_files[p->kind], p->state, p->state_size);
	if (!rc && p->kind == P_TED)
		rc = train_resource_write(res, "ted.safetensors", p->weights, p->weights_size);
	return rc;
}

static int load_kind(pkind kind, const train_config *c, const train_resource *res,
                     train_ctx *ctx, void **self)
{
	policy *p;
	int rc = create_kind(kind, c, ctx, self);
	if (rc || kind == P_ENSEMBLE)
		return rc;
	p = *self;
	*self = NULL;
	void *data = NULL;
	size_t size = 0;
	json_t *j = NULL;
	train_error err = { 0 };
	char *wpath = NULL;
	if ((rc = train_resource_read(res, "domain.bin", &data, &size)))
		goto out;
	rc = pdomain_init(&p->pd, data, size, &err);
	p->have_pd = !rc;
	free(data);
	data = NULL;
	if (rc) {
		rc = fail_err(ctx, rc, &err);
		goto out;
	}
	if ((rc = train_resource_read(res, state_files[kind], &data, &size)))
		goto out;
	json_error_t jerr;
	j = json_loadb(data, size, 0, &jerr);
	json_t *ver = json_object_get(j, "version");
	const char *fmt = json_string_value(json_object_get(j, "format"));
	if (!j || !fmt || strcmp(fmt, "libtrain.policy") || !json_is_integer(ver)) {
		rc = train_fail(ctx, "%s: not a policy state file", state_files[kind]);
		goto out;
	}
	if (json_integer_value(ver) != STATE_FORMAT_VERSION) {
		rc = train_fail(ctx, "%s: format version %lld, this plugin reads %d", state_files[kind],
		                (long long)json_integer_value(ver), STATE_FORMAT_VERSION);
		goto out;
	}
	json_t *pri = json_object_get(j, "priority");
	if (json_is_integer(pri))
		p->priority = (int)json_integer_value(pri);
	if ((rc = pdomain_set_actions(&p->pd, json_object_get(j, "actions"))))
		goto out;
	switch (kind) {
	case P_MEMO:
	case P_AUGMENTED:
		rc = memo_from_json(&p->memo, j);
		break;
	case P_RULE:
		rc = rule_from_json(&p->rule, j);
		break;
	case P_TED:
		wpath = malloc(strlen(train_resource_dir(res)) + 32);
		if (!wpath) {
			rc = TRAIN_ENOMEM;
			break;
		}
		sprintf(wpath, "%s/ted.safetensors", train_resource_dir(res));
		rc = ted_load(j, wpath, &p->pd, &p->ted, &err);
		if (rc && rc != TRAIN_ENOMEM)
			rc = err.text[0] ? fail_err(ctx, rc, &err)
			                 : train_fail(ctx, "%s: bad TED state", state_files[kind]);
		break;
	case P_ENSEMBLE:
		break;
	}
	if (rc == TRAIN_ECORRUPT)
		rc = train_fail(ctx, "%s: bad policy state", state_files[kind]);
out:
	free(wpath);
	free(data);
	json_decref(j);
	if (rc) {
		policy_destroy(p);
		return rc;
	}
	*self = p;
	return TRAIN_OK;
}

static int memo_load(const train_config *c, const train_resource *res, train_ctx *ctx, void **self)
{
	return load_kind(P_MEMO, c, res, ctx, self);
}
static int augmented_load(const train_config *c, const train_resource *res, train_ctx *ctx,
                          void **self)
{
	return load_kind(P_AUGMENTED, c, res, ctx, self);
}
static int rule_load(const train_config *c, const train_resource *res, train_ctx *ctx, void **self)
{
	return load_kind(P_RULE, c, res, ctx, self);
}
static int ted_load_c(const train_config *c, const train_resource *res, train_ctx *ctx, void **self)
{
	return load_kind(P_TED, c, res, ctx, self);
}
static int ensemble_load(const train_config *c, const train_resource *res, train_ctx *ctx,
                         void **self)
{
	return load_kind(P_ENSEMBLE, c, res, ctx, self);
}

/* ------------------------------------------------------------------------ */
/* prediction */

#define OUT_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(9))

static json_t *parse_input(const train_values *in, train_ctx *ctx, int *rc)
{
	const train_value *v = train_values_get(in, "conversation");
	json_error_t jerr;
	json_t *j = v ? json_loadb(train_value_data(v), train_value_size(v), 0, &jerr) : NULL;
	*rc = TRAIN_OK;
	if (!j)
		*rc = train_fail(ctx, "conversation: not JSON%s%s", v ? ": " : "", v ? jerr.text : "");
	return j;
}

typedef struct ranked {
	size_t i;
	double p;
} ranked;

static int cmp_ranked(const void *a, const void *b)
{
	const ranked *x = a, *y = b;
	if (x->p != y->p)
		return x->p > y->p ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

static json_t *prediction_json(const policy *p, const ppred *pr, const char *source)
{
	size_t n = p->pd.n_actions, k = 0;
	ranked *r = malloc((n + 1) * sizeof *r);
	json_t *o = json_object(), *rank = json_array();
	if (!r || !o || !rank) {
		free(r);
		json_decref(o);
		json_decref(rank);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		if (pr->p[i] > 0)
			r[k].i = i, r[k++].p = pr->p[i];
	qsort(r, k, sizeof *r, cmp_ranked);
	int bad = 0;
	for (size_t i = 0; i < k; i++)
		bad |= json_array_append_new(rank, json_pack("{s:s,s:f}", "name", p->pd.actions[r[i].i],
		                                             "confidence", r[i].p));
	bad |= json_object_set_new(o, "policy", json_string(kind_names[p->kind]));
	bad |= json_object_set_new(o, "priority", json_integer(p->priority));
	bad |= json_object_set_new(o, "action", k ? json_string(p->pd.actions[r[0].i]) : json_null());
	bad |= json_object_set_new(o, "confidence", json_real(k ? r[0].p : 0.0));
	bad |= json_object_set_new(o, "no_user", json_boolean(pr->no_user));
	bad |= json_object_set_new(o, "end_to_end", json_boolean(pr->end_to_end));
	bad |= json_object_set_new(o, "loop_interrupted", json_boolean(pr->loop_interrupted));
	if (source && *source)
		bad |= json_object_set_new(o, "source", json_string(source));
	bad |= json_object_set_new(o, "ranking", rank);
	free(r);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static int put_json(train_values *out, const char *name, json_t *j)
{
	char *s = json_dumps(j, OUT_FLAGS);
	if (!s)
		return TRAIN_ENOMEM;
	train_value *v;
	int rc = train_value_new_take(JSON_TYPE, s, strlen(s), &v);
	return rc ? rc : train_values_put_take(out, name, v);
}

static int ensemble_process(const train_values *in, train_values *out, train_ctx *ctx)
{
	int rc;
	json_t *j = parse_input(in, ctx, &rc);
	if (rc)
		return rc;
	json_t *preds = json_object_get(j, "predictions"), *events = json_object_get(j, "events");
	if (!json_is_array(preds) || !json_array_size(preds)) {
		json_decref(j);
		return train_fail(ctx, "conversation: no predictions to combine (connect the ensemble "
		                  "after the policies)");
	}
	/* an action rejected right before: 0 in every prediction */
	const char *rejected = NULL;
	for (size_t i = json_is_array(events) ? json_array_size(events) : 0; i-- > 0;) {
		json_t *e = json_array_get(events, i);
		const char *k = json_string_value(json_object_get(e, "event"));
		if (!k || (strcmp(k, "action") && strcmp(k, "bot") && strcmp(k, "rejected") &&
		           strcmp(k, "user")))
			continue;
		if (!strcmp(k, "rejected"))
			rejected = json_string_value(json_object_get(e, "name"));
		break;
	}
	int any_no_user = 0, any_e2e = 0;
	size_t i;
	json_t *pr;
	json_array_foreach(preds, i, pr) {
		any_no_user |= json_is_true(json_object_get(pr, "no_user"));
		any_e2e |= json_is_true(json_object_get(pr, "end_to_end"));
	}
	json_t *best = NULL;
	const char *best_action = NULL;
	double best_conf = -1;
	long best_pri = -1;
	json_array_foreach(preds, i, pr) {
		if (json_is_true(json_object_get(pr, "no_user")) != any_no_user)
			continue;
		if (!any_no_user && json_is_true(json_object_get(pr, "end_to_end")) != any_e2e)
			continue;
		json_t *rank = json_object_get(pr, "ranking"), *r;
		const char *top = NULL;
		double conf = 0;
		size_t k;
		json_array_foreach(rank, k, r) {
			const char *name = json_string_value(json_object_get(r, "name"));
			double c = json_number_value(json_object_get(r, "confidence"));
			if (!name || (rejected && !strcmp(name, rejected)))
				continue;
			if (!top || c > conf)
				top = name, conf = c;
		}
		long pri = (long)json_integer_value(json_object_get(pr, "priority"));
		if (conf > best_conf || (conf == best_conf && pri > best_pri)) {
			best = pr;
			best_conf = conf;
			best_pri = pri;
			best_action = conf > 0 ? top : ACTION_LISTEN;
		}
	}
	json_t *o = json_object();
	rc = o ? TRAIN_OK : TRAIN_ENOMEM;
	if (!rc && best) {
		int bad = json_object_set_new(o, "action", json_string(best_action));
		bad |= json_object_set_new(o, "confidence", json_real(best_conf > 0 ? best_conf : 0));
		bad |= json_object_set(o, "policy", json_object_get(best, "policy"));
		bad |= json_object_set(o, "predictions", preds);
		rc = bad ? TRAIN_ENOMEM : put_json(out, "action", o);
	} else if (!rc) {
		rc = train_fail(ctx, "conversation: no usable prediction");
	}
	json_decref(o);
	json_decref(j);
	return rc;
}

static int policy_process(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	policy *p = self;
	if (p->kind == P_ENSEMBLE)
		return ensemble_process(in, out, ctx);
	int rc;
	json_t *j = parse_input(in, ctx, &rc);
	if (rc)
		return rc;
	ppool pool = { 0 };
	pdialog conv = { 0 };
	pbuf src = { 0 };
	char why[256] = "";
	json_t *events = json_is_object(j) ? json_object_get(j, "events") : j;
	json_t *preds = json_is_object(j) ? json_object_get(j, "predictions") : NULL;
	ppred pr = { 0 };
	json_t *o = NULL, *mine = NULL;
	rc = dialog_from_json(&p->pd, events, &pool, &conv, why, sizeof why);
	if (rc == TRAIN_EINVAL) {
		rc = train_fail(ctx, "conversation: %s", why);
		goto out;
	}
	pr.p = calloc(p->pd.n_actions + 1, sizeof *pr.p);
	if (!rc && !pr.p)
		rc = TRAIN_ENOMEM;
	if (!rc) {
		switch (p->kind) {
		case P_MEMO:
		case P_AUGMENTED: rc = memo_predict(&p->memo, &p->pd, &conv, &pr); break;
		case P_RULE: rc = rule_predict(&p->rule, &p->pd, &conv, &pr, &src); break;
		case P_TED: rc = ted_predict(p->ted, &p->pd, &conv, &pr); break;
		case P_ENSEMBLE: break;
		}
	}
	if (!rc && !(mine = prediction_json(p, &pr, src.oom ? NULL : src.d)))
		rc = TRAIN_ENOMEM;
	if (!rc) {
		o = json_object();
		json_t *all = json_is_array(preds) ? json_copy(preds) : json_array();
		int bad = !o || !all || json_array_append(all, mine);
		if (!bad) {
			bad |= json_object_set(o, "action", json_object_get(mine, "action"));
			bad |= json_object_set(o, "confidence", json_object_get(mine, "confidence"));
			bad |= json_object_set(o, "policy", json_object_get(mine, "policy"));
			bad |= json_object_set(o, "events", events);
			bad |= json_object_set(o, "predictions", all);
		}
		json_decref(all);
		rc = bad ? TRAIN_ENOMEM : put_json(out, "prediction", o);
	}
out:
	json_decref(o);
	json_decref(mine);
	json_decref(j);
	free(pr.p);
	pb_free(&src);
	dialog_free(&conv);
	pp_free(&pool);
	return rc;
}

/* ------------------------------------------------------------------------ */
/* classes */

static const char *const policy_inputs[] = { "domain", "stories", NULL };
static const char *const policy_outputs[] = { "policy", NULL };
static const char *const conv_inputs[] = { "conversation", NULL };
static const char *const prediction_outputs[] = { "prediction", NULL };
static const char *const action_outputs[] = { "action", NULL };

#define POLICY_CLASS(VAR, NAME, VERSION, DOC, PARAMS, CREATE, LOAD) \
	static const train_component_class VAR = { \
		.struct_size = sizeof(train_component_class), \
		.name = NAME, \
		.version = VERSION, \
		.doc = DOC, \
		.inputs = policy_inputs, \
		.outputs = policy_outputs, \
		.process_inputs = conv_inputs, \
		.process_outputs = prediction_outputs, \
		.params = PARAMS, \
		.create = CREATE, \
		.train = policy_train, \
		.process = policy_process, \
		.persist = policy_persist, \
		.load = LOAD, \
		.destroy = policy_destroy, \
	}

POLICY_CLASS(memo_class, "MemoizationPolicy", "1",
             "Rasa's MemoizationPolicy: recall the next action of story histories exactly",
             memo_params, memo_create, memo_load);
POLICY_CLASS(augmented_class, "AugmentedMemoizationPolicy", "1",
             "Memoization that forgets the oldest turns until a history is known",
             memo_params, augmented_create, augmented_load);
POLICY_CLASS(rule_class, "RulePolicy", "1",
             "Rasa's RulePolicy: rules, forms' active loops, core fallback", rule_params,
             rule_create, rule_load);
POLICY_CLASS(ted_class, "TEDPolicy", "1",
             "Rasa's TEDPolicy: a transformer over the dialogue predicting the next action",
             ted_params, ted_create, ted_load_c);

static const train_component_class ensemble_class = {
	.struct_size = sizeof(train_component_class),
	.name = "PolicyEnsemble",
	.version = "1",
	.doc = "Pick the next action from the chained policies' predictions, as Rasa's ensemble",
	.inputs = NULL,
	.outputs = NULL,
	.process_inputs = conv_inputs,
	.process_outputs = action_outputs,
	.params = NULL,
	.create = ensemble_create,
	.train = policy_train,
	.process = policy_process,
	.persist = policy_persist,
	.load = ensemble_load,
	.destroy = policy_destroy,
};

static const train_component_class *const policy_classes[] = {
	&memo_class, &augmented_class, &rule_class, &ted_class, &ensemble_class, NULL,
};

TRAIN_PLUGIN_DEFINE("policy", "1.0.0", "MIT",
                    "Rasa's dialogue policies: Memoization, AugmentedMemoization, Rule, TED, "
                    "and their ensemble",
                    policy_classes);
