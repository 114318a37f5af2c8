/*
 * plugins/nlu/nlu.c - the "nlu" plugin (issue 6): Rasa's intent and
 * entity components, under Rasa's names and configuration keys.
 *
 *   DIETClassifier       features -> report  (train: the examples with
 *                                              their intents and entities)
 *                        features -> parse   (process: messages to label)
 *   EntitySynonymMapper  nlu      -> synonyms (train: `synonym:` items and
 *                                              annotated values)
 *                        parse    -> parse   (process: entity values mapped)
 *   FallbackClassifier   (nothing to train)
 *                        parse    -> parse   (process: low or ambiguous
 *                                              intents become nlu_fallback)
 *   ResponseSelector     features, nlu -> report (train: retrieval intents'
 *                                              examples and responses)
 *                        features, parse -> parse (process: adds
 *                                              "response_selector")
 *
 * `features` is the <train/features.h> value that the tokenizers and
 * featurizers produce; `nlu` the TRAIN_RASA_NLU_TYPE value of the RasaNLU
 * importer.  `parse` is Rasa's parse result as JSON (application/json):
 *
 *   {"text": "...", "intent": {"name": "greet", "confidence": 0.98},
 *    "entities": [{"entity": "city", "start": 10, "end": 16,
 *                  "confidence_entity": 0.99, "value": "Berlin",
 *                  "extractor": "DIETClassifier"}],
 *    "intent_ranking": [{"name": "greet", "confidence": 0.98}, ...]}
 *
 * for one message, and a JSON array of such objects when the features
 * hold any other number of messages (a test set).  "intent" and
 * "intent_ranking" are there when intent_classification is on,
 * "entities" when entity_recognition is; a DIETClassifier that had too
 * little data to learn (fewer than two intents and no entities, as Rasa
 * skips) predicts {"name": null, "confidence": 0.0} and no entities.
 * Offsets are code points, as Rasa's.  Confidences are float32 values
 * written with 9 significant digits (they read back exactly).
 *
 * The model itself is in diet.c, the CRF in crf.c.
 *
 * Threads: no global mutable state; every call works on its own instance.
 */
#include "nlu.h"

#include "../common/text.h"

#include <train/rasa.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(9))

/* ------------------------------------------------------------------------ */
/* shared helpers */

static int put_json(train_values *out, const char *name, json_t *j)
{
	if (!j)
		return TRAIN_ENOMEM;
	char *s = json_dumps(j, JSON_FLAGS | JSON_ENCODE_ANY);
	json_decref(j);
	if (!s)
		return TRAIN_ENOMEM;
	/* json_dumps' buffer comes from jansson's allocator, which is malloc
	 * unless an application changed it: copy to be safe */
	int rc = train_values_put_bytes(out, name, NLU_PARSE_TYPE, s, strlen(s));
	free(s);
	return rc;
}

/* The "parse" input: one object or an array of them. */
static int get_parse(const train_values *in, json_t **out, train_ctx *ctx)
{
	const train_value *v = train_values_get(in, "parse");
	if (!v)
		return train_fail(ctx, "no input \"parse\"");
	if (strcmp(train_value_type(v), NLU_PARSE_TYPE))
		return train_fail(ctx, "input parse: expected type %s (a parse result), got %s",
		                  NLU_PARSE_TYPE, train_value_type(v));
	json_error_t je;
	json_t *j = json_loadb(train_value_data(v), train_value_size(v), 0, &je);
	if (!j)
		return train_fail(ctx, "input parse: not JSON: %s (line %d)", je.text, je.line);
	if (!json_is_object(j) && !json_is_array(j)) {
		json_decref(j);
		return train_fail(ctx, "input parse: expected a JSON object or array");
	}
	*out = j;
	return TRAIN_OK;
}

/* Messages of a parse value: the object itself, or the array's objects. */
static size_t parse_count(json_t *j) { return json_is_array(j) ? json_array_size(j) : 1; }
static json_t *parse_at(json_t *j, size_t i) { return json_is_array(j) ? json_array_get(j, i) : j; }

static int get_features(const train_values *in, train_features **f, train_ctx *ctx)
{
	const train_value *v = train_values_get(in, "features");
	if (!v)
		return train_fail(ctx, "no input \"features\"");
	if (strcmp(train_value_type(v), TRAIN_FEATURES_TYPE))
		return train_fail(ctx, "input features: expected type %s (from a tokenizer and "
		                  "featurizers), got %s", TRAIN_FEATURES_TYPE, train_value_type(v));
	train_error err = { 0 };
	int rc = train_features_from_value(v, f, &err);
	if (rc)
		return train_fail(ctx, "input features: %s", err.text);
	return TRAIN_OK;
}

/* A copy of s as a fresh C string from a config string node, or NULL. */
static char *cfg_strdup(const train_config *c)
{
	const char *s = train_config_as_string(c);
	if (!s)
		return NULL;
	size_t n = strlen(s) + 1;
	char *p = malloc(n);
	if (p)
		memcpy(p, s, n);
	return p;
}

/* ------------------------------------------------------------------------ */
/* DIETClassifier */

static const train_param diet_param_table[] = {
	/* architecture */
	{ "hidden_layers_sizes", TRAIN_PARAM_MAP, "{text: [], label: []}",
	  "feed-forward layers before the embeddings: text and label sizes" },
	{ "share_hidden_layers", TRAIN_PARAM_BOOL, "false", "share text and label hidden layers "
	  "(not supported: labels are one-hot)" },
	{ "transformer_size", TRAIN_PARAM_ANY, "256", "transformer units (or {text: N})" },
	{ "number_of_transformer_layers", TRAIN_PARAM_ANY, "2",
	  "transformer layers, 0 for none (or {text: N})" },
	{ "number_of_attention_heads", TRAIN_PARAM_INT, "4", "attention heads" },
	{ "use_key_relative_attention", TRAIN_PARAM_BOOL, "false", "not supported" },
	{ "use_value_relative_attention", TRAIN_PARAM_BOOL, "false", "not supported" },
	{ "max_relative_position", TRAIN_PARAM_ANY, "5", "relative attention only (unused)" },
	{ "unidirectional_encoder", TRAIN_PARAM_BOOL, "false", "causal attention" },
	/* training */
	{ "batch_size", TRAIN_PARAM_ANY, "[64, 256]",
	  "batch size, or [first, last] growing linearly over the epochs" },
	{ "batch_strategy", TRAIN_PARAM_STRING, "balanced", "balanced or sequence" },
	{ "epochs", TRAIN_PARAM_INT, "300", "passes over the data" },
	{ "random_seed", TRAIN_PARAM_ANY, "~", "seed of every random draw (null: 0)" },
	{ "learning_rate", TRAIN_PARAM_FLOAT, "0.001", "Adam's learning rate" },
	/* embeddings */
	{ "embedding_dimension", TRAIN_PARAM_INT, "20", "size of the text and label embeddings" },
	{ "dense_dimension", TRAIN_PARAM_MAP, "{text: 128, label: 20}",
	  "units of the sparse-to-dense layers (text)" },
	{ "concat_dimension", TRAIN_PARAM_MAP, "{text: 128, label: 20}",
	  "accepted; token and sentence features always have one width here" },
	{ "number_of_negative_examples", TRAIN_PARAM_INT, "20",
	  "accepted; the loss uses every label (a full softmax)" },
	{ "similarity_type", TRAIN_PARAM_STRING, "auto", "auto or inner (cosine: not supported)" },
	{ "loss_type", TRAIN_PARAM_STRING, "cross_entropy", "cross_entropy (margin: not supported)" },
	{ "ranking_length", TRAIN_PARAM_INT, "10", "intents in the ranking, 0 for all" },
	{ "renormalize_confidences", TRAIN_PARAM_BOOL, "false",
	  "make the ranked confidences sum to 1" },
	{ "maximum_positive_similarity", TRAIN_PARAM_FLOAT, "0.8", "margin loss only (unused)" },
	{ "maximum_negative_similarity", TRAIN_PARAM_FLOAT, "-0.4", "margin loss only (unused)" },
	{ "use_maximum_negative_similarity", TRAIN_PARAM_BOOL, "true", "margin loss only (unused)" },
	{ "scale_loss", TRAIN_PARAM_BOOL, "false",
	  "weight each loss by how badly the example is predicted" },
	/* regularization */
	{ "regularization_constant", TRAIN_PARAM_FLOAT, "0.002", "L2 factor of the kernels" },
	{ "negative_margin_scale", TRAIN_PARAM_FLOAT, "0.8", "margin loss only (unused)" },
	{ "drop_rate", TRAIN_PARAM_FLOAT, "0.2", "dropout rate" },
	{ "drop_rate_attention", TRAIN_PARAM_FLOAT, "0.0", "attention dropout (only 0 supported)" },
	{ "connection_density", TRAIN_PARAM_FLOAT, "0.2",
	  "fraction of the weights of the hidden and transformer layers that are trained" },
	{ "weight_sparsity", TRAIN_PARAM_ANY, "~",
	  "deprecated: connection_density = 1 - weight_sparsity" },
	{ "use_sparse_input_dropout", TRAIN_PARAM_BOOL, "true", "drop sparse feature entries" },
	{ "use_dense_input_dropout", TRAIN_PARAM_BOOL, "true",
	  "dropout after the sparse-to-dense layers" },
	/* evaluation */
	{ "evaluate_every_number_of_epochs", TRAIN_PARAM_INT, "20", "hold-out evaluation period" },
	{ "evaluate_on_number_of_examples", TRAIN_PARAM_INT, "0", "hold-out examples, 0 for none" },
	/* tasks */
	{ "intent_classification", TRAIN_PARAM_BOOL, "true", "learn and predict intents" },
	{ "entity_recognition", TRAIN_PARAM_BOOL, "true", "learn and predict entities" },
	{ "use_masked_language_model", TRAIN_PARAM_BOOL, "false", "not supported" },
	{ "BILOU_flag", TRAIN_PARAM_BOOL, "true", "BILOU entity tags" },
	{ "tensorboard_log_directory", TRAIN_PARAM_ANY, "~", "accepted, ignored (no TensorBoard)" },
	{ "tensorboard_log_level", TRAIN_PARAM_STRING, "epoch", "accepted, ignored" },
	{ "checkpoint_model", TRAIN_PARAM_BOOL, "false",
	  "accepted; the last epoch's weights are kept" },
	{ "featurizers", TRAIN_PARAM_LIST, "[]", "feature blocks to use, [] for all" },
	{ "split_entities_by_comma", TRAIN_PARAM_ANY, "true",
	  "split entities at commas (true/false, or per entity type)" },
	{ "constrain_similarities", TRAIN_PARAM_BOOL, "false",
	  "add a sigmoid loss on every similarity" },
	{ "model_confidence", TRAIN_PARAM_STRING, "softmax", "softmax (the only choice)" },
	{ "run_eagerly", TRAIN_PARAM_BOOL, "false", "accepted, ignored" },
	{ "drop_small_last_batch", TRAIN_PARAM_BOOL, "false",
	  "skip an epoch's last batch when it has under half a batch" },
	{ "lazy_adam", TRAIN_PARAM_BOOL, "false",
	  "libtrain's: update only the sparse-to-dense rows of each batch's features "
	  "(LazyAdam; much faster on a large vocabulary)" },
	{ "weight_averaging_epochs", TRAIN_PARAM_INT, "0",
	  "libtrain's: keep the mean of the weights at the ends of the last N epochs "
	  "(stochastic weight averaging; 0: the last weights)" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

static const char *const diet_inputs[] = { "features", NULL };
static const char *const diet_outputs[] = { "report", NULL };
static const char *const diet_process_outputs[] = { "parse", NULL };

typedef struct diet_comp {
	diet_opts o;
	diet_model *model;
} diet_comp;

static void diet_destroy(void *self)
{
	diet_comp *d = self;
	if (!d)
		return;
	diet_opts_free(&d->o);
	diet_free(d->model);
	free(d);
}

/* An int, or a map with an int under "text" (Rasa's per-attribute form). */
static int int_or_text(const train_config *c, const char *key, int64_t *out, int null_ok,
                       train_ctx *ctx)
{
	const train_config *v = train_config_get(c, key);
	if (train_config_kind(v) == TRAIN_CFG_MAP)
		v = train_config_get(v, "text");
	if (null_ok && (!v || train_config_kind(v) == TRAIN_CFG_NULL)) {
		*out = -1;
		return TRAIN_OK;
	}
	if (!v || train_config_kind(v) != TRAIN_CFG_INT)
		return train_fail(ctx, "%s: expected an integer or {text: integer}", key);
	*out = train_config_as_int(v);
	return TRAIN_OK;
}

static int int_list(const train_config *l, const char *what, int **out, int *n, train_ctx *ctx)
{
	*out = NULL;
	*n = 0;
	if (!l || train_config_kind(l) == TRAIN_CFG_NULL)
		return TRAIN_OK;
	if (train_config_kind(l) != TRAIN_CFG_LIST || train_config_len(l) > 64)
		return train_fail(ctx, "%s: expected a list of at most 64 layer sizes", what);
	size_t k = train_config_len(l);
	if (k && !(*out = malloc(k * sizeof **out)))
		return TRAIN_ENOMEM;
	for (size_t i = 0; i < k; i++) {
		const train_config *x = train_config_at(l, i);
		if (train_config_kind(x) != TRAIN_CFG_INT || train_config_as_int(x) < 1 ||
		    train_config_as_int(x) > 65536)
			return train_fail(ctx, "%s: layer sizes are integers from 1 to 65536", what);
		(*out)[i] = (int)train_config_as_int(x);
	}
	*n = (int)k;
	return TRAIN_OK;
}

static int check_map_keys(const train_config *m, const char *what, train_ctx *ctx)
{
	for (size_t i = 0; i < train_config_len(m); i++) {
		const char *k = train_config_key_at(m, i);
		if (strcmp(k, "text") && strcmp(k, "label"))
			return train_fail(ctx, "%s: unknown key '%s' (known: text, label)", what, k);
	}
	return TRAIN_OK;
}

/* Read and check the config into o (o is freed by the caller on error). */
static int diet_read_opts(const train_config *c, diet_opts *o, train_ctx *ctx)
{
	int rc;
	int64_t v;
	memset(o, 0, sizeof *o);
	o->epochs = train_config_int(c, "epochs");
	if (o->epochs < 0)
		return train_fail(ctx, "epochs: must be >= 0, got %lld", (long long)o->epochs);
	/* batch_size: an int or [a, b] */
	const train_config *bs = train_config_get(c, "batch_size");
	if (train_config_kind(bs) == TRAIN_CFG_INT) {
		o->batch_min = o->batch_max = (int)train_config_as_int(bs);
		if (train_config_as_int(bs) < 1 || train_config_as_int(bs) > 1000000)
			return train_fail(ctx, "batch_size: must be from 1 to 1000000");
	} else if (train_config_kind(bs) == TRAIN_CFG_LIST && train_config_len(bs) == 2 &&
	           train_config_kind(train_config_at(bs, 0)) == TRAIN_CFG_INT &&
	           train_config_kind(train_config_at(bs, 1)) == TRAIN_CFG_INT) {
		int64_t a = train_config_as_int(train_config_at(bs, 0));
		int64_t b = train_config_as_int(train_config_at(bs, 1));
		if (a < 1 || b < 1 || a > 1000000 || b > 1000000)
			return train_fail(ctx, "batch_size: sizes must be from 1 to 1000000");
		o->batch_min = (int)a;
		o->batch_max = (int)b;
	} else {
		return train_fail(ctx, "batch_size: expected an integer or [first, last]");
	}
	const char *strat = train_config_string(c, "batch_strategy");
	if (!strcmp(strat, "balanced"))
		o->balanced = 1;
	else if (strcmp(strat, "sequence"))
		return train_fail(ctx, "batch_strategy: expected \"balanced\" or \"sequence\", got \"%s\"",
		                  strat);
	o->learning_rate = train_config_float(c, "learning_rate");
	if (!(o->learning_rate > 0) || !isfinite(o->learning_rate))
		return train_fail(ctx, "learning_rate: must be > 0");
	const train_config *seed = train_config_get(c, "random_seed");
	if (train_config_kind(seed) == TRAIN_CFG_INT)
		o->seed = (uint64_t)train_config_as_int(seed);
	else if (train_config_kind(seed) != TRAIN_CFG_NULL)
		return train_fail(ctx, "random_seed: expected an integer or null");
	o->embed_dim = (int)train_config_int(c, "embedding_dimension");
	if (train_config_int(c, "embedding_dimension") < 1 ||
	    train_config_int(c, "embedding_dimension") > 65536)
		return train_fail(ctx, "embedding_dimension: must be from 1 to 65536");
	if ((rc = int_or_text(c, "number_of_transformer_layers", &v, 0, ctx)))
		return rc;
	if (v < 0 || v > 64)
		return train_fail(ctx, "number_of_transformer_layers: must be from 0 to 64");
	o->n_layers = (int)v;
	if ((rc = int_or_text(c, "transformer_size", &v, 1, ctx)))
		return rc;
	/* Rasa: a transformer with no size (null or < 1) gets 256 */
	o->d_model = v < 1 ? 256 : (int)(v > 65536 ? 65536 : v);
	if (v > 65536)
		return train_fail(ctx, "transformer_size: at most 65536");
	int64_t nh = train_config_int(c, "number_of_attention_heads");
	if (nh < 1 || nh > 1024)
		return train_fail(ctx, "number_of_attention_heads: must be from 1 to 1024");
	o->n_heads = (int)nh;
	if (o->n_layers > 0 && o->d_model % o->n_heads)
		return train_fail(ctx, "transformer_size %d must be a multiple of "
		                  "number_of_attention_heads %d", o->d_model, o->n_heads);
	o->unidirectional = train_config_bool(c, "unidirectional_encoder");
	if (train_config_bool(c, "use_key_relative_attention") ||
	    train_config_bool(c, "use_value_relative_attention"))
		return train_fail(ctx, "use_key_relative_attention / use_value_relative_attention: "
		                  "relative attention is not supported; set them to false");
	if (train_config_bool(c, "share_hidden_layers"))
		return train_fail(ctx, "share_hidden_layers: not supported (labels are one-hot, so "
		                  "text and label inputs differ); set it to false");
	const train_config *hl = train_config_get(c, "hidden_layers_sizes");
	if ((rc = check_map_keys(hl, "hidden_layers_sizes", ctx)) ||
	    (rc = int_list(train_config_get(hl, "text"), "hidden_layers_sizes.text", &o->hid_text,
	                   &o->n_hid_text, ctx)) ||
	    (rc = int_list(train_config_get(hl, "label"), "hidden_layers_sizes.label", &o->hid_label,
	                   &o->n_hid_label, ctx)))
		return rc;
	const train_config *dd = train_config_get(c, "dense_dimension");
	if ((rc = check_map_keys(dd, "dense_dimension", ctx)) ||
	    (rc = check_map_keys(train_config_get(c, "concat_dimension"), "concat_dimension", ctx)))
		return rc;
	const train_config *ddt = train_config_get(dd, "text");
	o->units = 128;
	if (ddt) {
		if (train_config_kind(ddt) != TRAIN_CFG_INT || train_config_as_int(ddt) < 1 ||
		    train_config_as_int(ddt) > 65536)
			return train_fail(ctx, "dense_dimension.text: must be an integer from 1 to 65536");
		o->units = (int)train_config_as_int(ddt);
	}
	const char *sim = train_config_string(c, "similarity_type");
	if (strcmp(sim, "auto") && strcmp(sim, "inner"))
		return train_fail(ctx, "similarity_type: only \"auto\" and \"inner\" (dot product) are "
		                  "supported, got \"%s\"", sim);
	const char *loss = train_config_string(c, "loss_type");
	if (!strcmp(loss, "softmax"))
		train_log(ctx, TRAIN_LOG_WARN, "loss_type: \"softmax\" is deprecated; it means "
		          "\"cross_entropy\"");
	else if (strcmp(loss, "cross_entropy"))
		return train_fail(ctx, "loss_type: only \"cross_entropy\" is supported, got \"%s\"", loss);
	int64_t rl = train_config_int(c, "ranking_length");
	if (rl < 0 || rl > INT32_MAX)
		return train_fail(ctx, "ranking_length: must be >= 0");
	o->ranking_length = (int)rl;
	o->renormalize = train_config_bool(c, "renormalize_confidences");
	o->scale_loss = train_config_bool(c, "scale_loss");
	o->reg = (float)train_config_float(c, "regularization_constant");
	if (!(o->reg >= 0) || !isfinite(o->reg))
		return train_fail(ctx, "regularization_constant: must be >= 0");
	double dr = train_config_float(c, "drop_rate");
	if (!(dr >= 0 && dr < 1))
		return train_fail(ctx, "drop_rate: must be in [0, 1)");
	o->drop_rate = (float)dr;
	if (train_config_float(c, "drop_rate_attention") != 0)
		return train_fail(ctx, "drop_rate_attention: only 0 is supported");
	double dens = train_config_float(c, "connection_density");
	const train_config *ws = train_config_get(c, "weight_sparsity");
	if (ws && train_config_kind(ws) != TRAIN_CFG_NULL) {
		if (train_config_kind(ws) != TRAIN_CFG_INT && train_config_kind(ws) != TRAIN_CFG_FLOAT)
			return train_fail(ctx, "weight_sparsity: expected a number");
		double w = train_config_kind(ws) == TRAIN_CFG_INT ? (double)train_config_as_int(ws)
		                                                   : train_config_as_float(ws);
		train_log(ctx, TRAIN_LOG_WARN, "weight_sparsity is deprecated: using connection_density "
		          "= 1 - weight_sparsity = %g", 1 - w);
		dens = 1 - w;
	}
	if (!(dens >= 0 && dens <= 1))
		return train_fail(ctx, "connection_density: must be in [0, 1]");
	o->density = (float)dens;
	o->sparse_input_dropout = train_config_bool(c, "use_sparse_input_dropout");
	o->dense_input_dropout = train_config_bool(c, "use_dense_input_dropout");
	o->eval_epochs = train_config_int(c, "evaluate_every_number_of_epochs");
	o->eval_examples = train_config_int(c, "evaluate_on_number_of_examples");
	if (o->eval_examples < 0)
		return train_fail(ctx, "evaluate_on_number_of_examples: must be >= 0");
	if (o->eval_examples > 0 && o->eval_epochs < 1)
		return train_fail(ctx, "evaluate_every_number_of_epochs: must be >= 1 when "
		                  "evaluate_on_number_of_examples is set");
	o->intent = train_config_bool(c, "intent_classification");
	o->entity = train_config_bool(c, "entity_recognition");
	if (train_config_bool(c, "use_masked_language_model"))
		return train_fail(ctx, "use_masked_language_model: not supported; set it to false");
	o->bilou = train_config_bool(c, "BILOU_flag");
	const train_config *tb = train_config_get(c, "tensorboard_log_directory");
	if (tb && train_config_kind(tb) != TRAIN_CFG_NULL)
		train_log(ctx, TRAIN_LOG_WARN, "tensorboard_log_directory: ignored (no TensorBoard logs)");
	if (train_config_bool(c, "checkpoint_model"))
		train_log(ctx, TRAIN_LOG_WARN, "checkpoint_model: ignored; the weights of the last epoch "
		          "are kept");
	const train_config *fz = train_config_get(c, "featurizers");
	size_t nf = train_config_len(fz);
	if (nf && !(o->featurizers = calloc(nf, sizeof *o->featurizers)))
		return TRAIN_ENOMEM;
	for (size_t i = 0; i < nf; i++) {
		const train_config *x = train_config_at(fz, i);
		if (train_config_kind(x) != TRAIN_CFG_STRING)
			return train_fail(ctx, "featurizers: expected a list of names");
		if (!(o->featurizers[i] = cfg_strdup(x)))
			return TRAIN_ENOMEM;
		o->n_featurizers++;
	}
	/* split_entities_by_comma: a bool, or {entity: bool} (default true for the rest) */
	const train_config *sp = train_config_get(c, "split_entities_by_comma");
	o->split_default = 1;
	if (train_config_kind(sp) == TRAIN_CFG_BOOL) {
		o->split_default = train_config_as_bool(sp);
	} else if (train_config_kind(sp) == TRAIN_CFG_MAP) {
		size_t n = train_config_len(sp);
		if (!(o->split_names = calloc(n + 1, sizeof *o->split_names)) ||
		    !(o->split_values = calloc(n + 1, sizeof *o->split_values)))
			return TRAIN_ENOMEM;
		for (size_t i = 0; i < n; i++) {
			const train_config *x = train_config_at(sp, i);
			if (train_config_kind(x) != TRAIN_CFG_BOOL)
				return train_fail(ctx, "split_entities_by_comma: expected true/false per "
				                  "entity type");
			const char *k = train_config_key_at(sp, i);
			size_t kl = strlen(k) + 1;
			if (!(o->split_names[i] = malloc(kl)))
				return TRAIN_ENOMEM;
			memcpy(o->split_names[i], k, kl);
			o->split_values[i] = train_config_as_bool(x);
			o->n_split++;
		}
	} else {
		return train_fail(ctx, "split_entities_by_comma: expected true/false or a map of entity "
		                  "types to true/false");
	}
	o->constrain_similarities = train_config_bool(c, "constrain_similarities");
	const char *mc = train_config_string(c, "model_confidence");
	if (strcmp(mc, "softmax"))
		return train_fail(ctx, "model_confidence: only \"softmax\" is supported (as in Rasa 3), "
		                  "got \"%s\"", mc);
	o->drop_small_last_batch = train_config_bool(c, "drop_small_last_batch");
	o->lazy_adam = train_config_bool(c, "lazy_adam");
	int64_t swa = train_config_int(c, "weight_averaging_epochs");
	if (swa < 0 || swa > INT32_MAX)
		return train_fail(ctx, "weight_averaging_epochs: must be >= 0");
	o->swa_epochs = (int)swa;
	if (!o->intent && !o->entity)
		return train_fail(ctx, "intent_classification and entity_recognition are both false: "
		                  "nothing to learn");
	return TRAIN_OK;
}

static int diet_make(const train_config *config, train_ctx *ctx, diet_comp **out)
{
	diet_comp *d = calloc(1, sizeof *d);
	if (!d)
		return TRAIN_ENOMEM;
	int rc = diet_read_opts(config, &d->o, ctx);
	if (rc) {
		diet_destroy(d);
		return rc;
	}
	*out = d;
	return TRAIN_OK;
}

static int diet_create(const train_config *config, train_ctx *ctx, void **self)
{
	*self = NULL;
	return diet_make(config, ctx, (diet_comp **)self);
}

static int diet_train_entry(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	diet_comp *d = self;
	train_features *f = NULL;
	int rc = get_features(in, &f, ctx);
	if (rc)
		return rc;
	int64_t epochs = d->o.epochs;
	int finetune = train_ctx_finetuning(ctx) && d->model;
	if (finetune) {
		/* Rasa: ceil(epochs * epoch_fraction) */
		double e = ceil((double)epochs * train_ctx_epoch_fraction(ctx));
		epochs = e < 1 ? 1 : (int64_t)e;
		if (!diet_trained(d->model)) {
			diet_free(d->model);
			d->model = NULL;
			finetune = 0;
		}
	} else {
		diet_free(d->model);
		d->model = NULL;
	}
	diet_report rep;
	char why[512] = "";
	rc = diet_train(&d->model, &d->o, epochs, f, ctx, &rep, why, sizeof why);
	train_features_free(f);
	if (rc == TRAIN_ECANCELED)
		return rc;
	if (rc)
		return why[0] ? train_fail(ctx, "%s", why) : rc;
	train_log(ctx, TRAIN_LOG_INFO, "%zu examples, %d intents, %d entity tags, %zu parameters; "
	          "%lld epochs, loss %.4f, intent accuracy %.4f", rep.examples, rep.labels, rep.tags,
	          rep.parameters, (long long)rep.epochs, rep.loss, rep.train_accuracy);
	json_t *j = json_pack("{s:b, s:b, s:I, s:I, s:i, s:i, s:I, s:I, s:I}", "trained", rep.trained,
	                      "finetuned", finetune, "examples", (json_int_t)rep.examples,
	                      "eval_examples", (json_int_t)rep.eval_examples, "intents", rep.labels,
	                      "entity_tags", rep.tags, "parameters", (json_int_t)rep.parameters,
	                      "epochs", (json_int_t)rep.epochs, "steps", (json_int_t)rep.steps);
	if (j) {
		json_object_set_new(j, "loss", json_real(rep.loss));
		json_object_set_new(j, "intent_loss", json_real(rep.intent_loss));
		json_object_set_new(j, "entity_loss", json_real(rep.entity_loss));
		json_object_set_new(j, "first_epoch_loss", json_real(rep.first_epoch_loss));
		json_object_set_new(j, "training_accuracy",
		                    rep.train_accuracy >= 0 ? json_real(rep.train_accuracy) : json_null());
		json_object_set_new(j, "training_entity_f1", rep.train_entity_f1 >= 0 ?
		                    json_real(rep.train_entity_f1) : json_null());
		json_object_set_new(j, "evaluation_accuracy", rep.eval_accuracy >= 0 ?
		                    json_real(rep.eval_accuracy) : json_null());
	}
	return put_json(out, "report", j);
}

/* A code-point range of the text as a new JSON string. */
static json_t *text_span(const char *text, uint32_t len, uint32_t start, uint32_t end)
{
	size_t i = 0, b = 0, e = 0;
	for (uint32_t cp = 0; i <= len; cp++) {
		if (cp == start)
			b = i;
		if (cp == end) {
			e = i;
			break;
		}
		if (i == len)
			break;
		text_next(text, len, &i);
	}
	if (e < b)
		e = b;
	return json_stringn(text + b, e - b);
}

static json_t *diet_message_json(const diet_comp *d, const train_feat_message *msg,
                                 const diet_pred *p)
{
	const diet_model *m = d->model;
	json_t *j = json_object();
	if (!j || json_object_set_new(j, "text", json_stringn(msg->text, msg->text_len)))
		goto fail;
	if (d->o.intent) {
		json_t *intent = p->n_rank ?
		                 json_pack("{s:s, s:f}", "name", diet_label(m, p->rank[0]), "confidence",
		                           (double)p->conf[0]) :
		                 json_pack("{s:n, s:f}", "name", "confidence", 0.0);
		if (json_object_set_new(j, "intent", intent))
			goto fail;
	}
	if (d->o.entity) {
		json_t *ents = json_array();
		if (json_object_set_new(j, "entities", ents))
			goto fail;
		for (int i = 0; i < p->n_ents; i++) {
			const diet_entity *e = &p->ents[i];
			json_t *x = json_pack("{s:s, s:i, s:i, s:f, s:o, s:s}", "entity",
			                      diet_entity_type(m, e->type), "start", (int)e->start, "end",
			                      (int)e->end, "confidence_entity", (double)e->confidence,
			                      "value", text_span(msg->text, msg->text_len, e->start, e->end),
			                      "extractor", "DIETClassifier");
			if (json_array_append_new(ents, x))
				goto fail;
		}
	}
	if (d->o.intent) {
		json_t *rank = json_array();
		if (json_object_set_new(j, "intent_ranking", rank))
			goto fail;
		for (int i = 0; i < p->n_rank; i++)
			if (json_array_append_new(rank, json_pack("{s:s, s:f}", "name",
			                                          diet_label(m, p->rank[i]), "confidence",
			                                          (double)p->conf[i])))
				goto fail;
	}
	return j;
fail:
	json_decref(j);
	return NULL;
}

static int diet_process(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	diet_comp *d = self;
	if (!d->model)
		return train_fail(ctx, "the classifier has not been trained");
	train_features *f = NULL;
	int rc = get_features(in, &f, ctx);
	if (rc)
		return rc;
	diet_pred *preds = calloc(f->n_messages + 1, sizeof *preds);
	json_t *res = NULL;
	char why[512] = "";
	if (!preds) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	if ((rc = diet_predict(d->model, &d->o, f, preds, why, sizeof why))) {
		if (why[0])
			rc = train_fail(ctx, "%s", why);
		goto out;
	}
	rc = TRAIN_ENOMEM;
	if (f->n_messages == 1) {
		if (!(res = diet_message_json(d, &f->messages[0], &preds[0])))
			goto out;
	} else {
		if (!(res = json_array()))
			goto out;
		for (size_t i = 0; i < f->n_messages; i++)
			if (json_array_append_new(res, diet_message_json(d, &f->messages[i], &preds[i])))
				goto out;
	}
	rc = put_json(out, "parse", res);
	res = NULL;
out:
	if (preds)
		for (size_t i = 0; i < f->n_messages; i++)
			diet_pred_free(&preds[i]);
	free(preds);
	json_decref(res);
	train_features_free(f);
	return rc;
}

static int diet_persist(void *self, train_resource *res)
{
	diet_comp *d = self;
	if (!d->model)
		return TRAIN_EINVAL;
	char why[512];
	return diet_save(d->model, res, why, sizeof why);
}

static int diet_load_entry(const train_config *config, const train_resource *res, train_ctx *ctx,
                           void **self)
{
	*self = NULL;
	diet_comp *d;
	int rc = diet_make(config, ctx, &d);
	if (rc)
		return rc;
	char why[512] = "";
	if ((rc = diet_load(&d->model, res, why, sizeof why))) {
		diet_destroy(d);
		return why[0] ? train_fail(ctx, "%s", why) : rc;
	}
	*self = d;
	return TRAIN_OK;
}

const train_component_class nlu_diet_class = {
	.struct_size = sizeof(train_component_class),
	.name = "DIETClassifier",
	.version = "1",
	.doc = "Rasa's DIET: joint intent classification and entity recognition (transformer, "
	       "label embeddings, CRF)",
	.inputs = diet_inputs,
	.outputs = diet_outputs,
	.process_outputs = diet_process_outputs,
	.params = diet_param_table,
	.create = diet_create,
	.train = diet_train_entry,
	.process = diet_process,
	.persist = diet_persist,
	.load = diet_load_entry,
	.destroy = diet_destroy,
};

/* ------------------------------------------------------------------------ */
/* ResponseSelector */

/*
 * Rasa's ResponseSelector (DIET2BOW, use_text_as_label false): the same
 * model as DIETClassifier without entities, whose labels are the
 * retrieval intents' response keys ("chitchat/ask_name", Rasa's
 * intent_response_key), one-hot; trained on the examples of retrieval
 * intents (only `retrieval_intent`'s when set).  Its defaults are Rasa's:
 * no transformer, hidden layers [256, 128] on both sides, dense dimension
 * 512, connection density 1, no input dropout, scale_loss on.
 *
 * process adds Rasa's "response_selector" to each message of the parse:
 *
 *   "response_selector": {"all_retrieval_intents": ["chitchat"],
 *     "default": {"response": {"responses": [{"text": "..."}],
 *                              "confidence": 0.97,
 *                              "intent_response_key": "chitchat/ask_name",
 *                              "utter_action": "utter_chitchat/ask_name"},
 *                 "ranking": [{"confidence": 0.97,
 *                              "intent_response_key": "chitchat/ask_name"}, ...]}}
 *
 * under the retrieval intent's name instead of "default" when it is set.
 * The responses are those of the NLU data's `responses:` (utter_<key>).
 * use_text_as_label (DIET2DIET) is not supported.
 */
#define RS_FILE "responses.json"
#define RS_FORMAT "libtrain.response_selector"

static const train_param rs_param_table[] = {
	{ "hidden_layers_sizes", TRAIN_PARAM_MAP, "{text: [256, 128], label: [256, 128]}",
	  "feed-forward layers before the embeddings: text and label sizes" },
	{ "share_hidden_layers", TRAIN_PARAM_BOOL, "false", "not supported" },
	{ "transformer_size", TRAIN_PARAM_ANY, "~", "transformer units (256 when layers > 0)" },
	{ "number_of_transformer_layers", TRAIN_PARAM_ANY, "0", "transformer layers" },
	{ "number_of_attention_heads", TRAIN_PARAM_INT, "4", "attention heads" },
	{ "use_key_relative_attention", TRAIN_PARAM_BOOL, "false", "not supported" },
	{ "use_value_relative_attention", TRAIN_PARAM_BOOL, "false", "not supported" },
	{ "max_relative_position", TRAIN_PARAM_ANY, "5", "relative attention only (unused)" },
	{ "unidirectional_encoder", TRAIN_PARAM_BOOL, "false", "causal attention" },
	{ "batch_size", TRAIN_PARAM_ANY, "[64, 256]", "batch size, or [first, last]" },
	{ "batch_strategy", TRAIN_PARAM_STRING, "balanced", "balanced or sequence" },
	{ "epochs", TRAIN_PARAM_INT, "300", "passes over the data" },
	{ "random_seed", TRAIN_PARAM_ANY, "~", "seed of every random draw (null: 0)" },
	{ "learning_rate", TRAIN_PARAM_FLOAT, "0.001", "Adam's learning rate" },
	{ "embedding_dimension", TRAIN_PARAM_INT, "20", "size of the embeddings" },
	{ "dense_dimension", TRAIN_PARAM_MAP, "{text: 512, label: 512}",
	  "units of the sparse-to-dense layers (text)" },
	{ "concat_dimension", TRAIN_PARAM_MAP, "{text: 512, label: 512}", "accepted" },
	{ "number_of_negative_examples", TRAIN_PARAM_INT, "20", "accepted; a full softmax" },
	{ "similarity_type", TRAIN_PARAM_STRING, "auto", "auto or inner" },
	{ "loss_type", TRAIN_PARAM_STRING, "cross_entropy", "cross_entropy" },
	{ "ranking_length", TRAIN_PARAM_INT, "10", "responses in the ranking, 0 for all" },
	{ "renormalize_confidences", TRAIN_PARAM_BOOL, "false", "ranked confidences sum to 1" },
	{ "maximum_positive_similarity", TRAIN_PARAM_FLOAT, "0.8", "margin loss only (unused)" },
	{ "maximum_negative_similarity", TRAIN_PARAM_FLOAT, "-0.4", "margin loss only (unused)" },
	{ "use_maximum_negative_similarity", TRAIN_PARAM_BOOL, "true", "margin loss only (unused)" },
	{ "scale_loss", TRAIN_PARAM_BOOL, "true", "weight each loss by how badly it is predicted" },
	{ "regularization_constant", TRAIN_PARAM_FLOAT, "0.002", "L2 factor of the kernels" },
	{ "connection_density", TRAIN_PARAM_FLOAT, "1.0", "fraction of trained weights" },
	{ "weight_sparsity", TRAIN_PARAM_ANY, "~", "deprecated: 1 - connection_density" },
	{ "negative_margin_scale", TRAIN_PARAM_FLOAT, "0.8", "margin loss only (unused)" },
	{ "drop_rate", TRAIN_PARAM_FLOAT, "0.2", "dropout rate" },
	{ "drop_rate_attention", TRAIN_PARAM_FLOAT, "0.0", "only 0 is supported" },
	{ "use_sparse_input_dropout", TRAIN_PARAM_BOOL, "false", "drop sparse feature entries" },
	{ "use_dense_input_dropout", TRAIN_PARAM_BOOL, "false", "dropout after sparse-to-dense" },
	{ "evaluate_every_number_of_epochs", TRAIN_PARAM_INT, "20", "hold-out evaluation period" },
	{ "evaluate_on_number_of_examples", TRAIN_PARAM_INT, "0", "hold-out examples" },
	{ "use_masked_language_model", TRAIN_PARAM_BOOL, "false", "not supported" },
	{ "retrieval_intent", TRAIN_PARAM_ANY, "~", "the retrieval intent to learn (null: all)" },
	{ "use_text_as_label", TRAIN_PARAM_BOOL, "false", "not supported" },
	{ "tensorboard_log_directory", TRAIN_PARAM_ANY, "~", "accepted, ignored" },
	{ "tensorboard_log_level", TRAIN_PARAM_STRING, "epoch", "accepted, ignored" },
	{ "featurizers", TRAIN_PARAM_LIST, "[]", "feature blocks to use, [] for all" },
	{ "checkpoint_model", TRAIN_PARAM_BOOL, "false", "accepted; the last weights are kept" },
	{ "constrain_similarities", TRAIN_PARAM_BOOL, "false", "sigmoid loss on similarities" },
	{ "model_confidence", TRAIN_PARAM_STRING, "softmax", "softmax" },
	/* DIETClassifier's keys, which Rasa's ResponseSelector inherits */
	{ "intent_classification", TRAIN_PARAM_BOOL, "true", "always on" },
	{ "entity_recognition", TRAIN_PARAM_BOOL, "true", "always off" },
	{ "BILOU_flag", TRAIN_PARAM_BOOL, "true", "unused" },
	{ "split_entities_by_comma", TRAIN_PARAM_ANY, "true", "unused" },
	{ "run_eagerly", TRAIN_PARAM_BOOL, "false", "accepted, ignored" },
	{ "drop_small_last_batch", TRAIN_PARAM_BOOL, "false", "skip a small last batch" },
	{ "lazy_adam", TRAIN_PARAM_BOOL, "false",
	  "libtrain's: Adam on the sparse-to-dense rows of each batch's features only" },
	{ "weight_averaging_epochs", TRAIN_PARAM_INT, "0",
	  "libtrain's: the mean of the weights at the ends of the last N epochs" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

static const char *const rs_inputs[] = { "features", "nlu", NULL };
static const char *const rs_process_inputs[] = { "features", "parse", NULL };

typedef struct selector {
	diet_comp d;               /* the model and its options */
	json_t *responses;         /* "utter_<key>" -> [variations] */
	json_t *retrieval_intents; /* sorted names */
} selector;

static void rs_destroy(void *self)
{
	selector *s = self;
	if (!s)
		return;
	diet_opts_free(&s->d.o);
	diet_free(s->d.model);
	json_decref(s->responses);
	json_decref(s->retrieval_intents);
	free(s);
}

static int rs_make(const train_config *config, train_ctx *ctx, selector **out)
{
	selector *s = calloc(1, sizeof *s);
	if (!s)
		return TRAIN_ENOMEM;
	int rc = diet_read_opts(config, &s->d.o, ctx);
	if (!rc && train_config_bool(config, "use_text_as_label"))
		rc = train_fail(ctx, "use_text_as_label: not supported; set it to false");
	const train_config *ri = train_config_get(config, "retrieval_intent");
	if (!rc && ri && train_config_kind(ri) != TRAIN_CFG_NULL) {
		if (train_config_kind(ri) != TRAIN_CFG_STRING)
			rc = train_fail(ctx, "retrieval_intent: expected an intent name or null");
		else if (!(s->d.o.retrieval_intent = cfg_strdup(ri)))
			rc = TRAIN_ENOMEM;
	}
	if (rc) {
		rs_destroy(s);
		return rc;
	}
	/* Rasa forces these for the response selector */
	s->d.o.intent = 1;
	s->d.o.entity = 0;
	s->d.o.label_response_key = 1;
	if (!(s->responses = json_object()) || !(s->retrieval_intents = json_array())) {
		rs_destroy(s);
		return TRAIN_ENOMEM;
	}
	*out = s;
	return TRAIN_OK;
}

static int rs_create(const train_config *config, train_ctx *ctx, void **self)
{
	*self = NULL;
	return rs_make(config, ctx, (selector **)self);
}

/* A response variation as Rasa keeps it: text, image, channel, custom,
 * condition, buttons, and the other keys. */
static json_t *variation_json(const train_rasa_variation *v)
{
	json_t *j = json_object();
	if (!j)
		return NULL;
	if (v->extra) {
		json_t *x = json_loads(v->extra, 0, NULL);
		if (json_is_object(x))
			json_object_update(j, x);
		json_decref(x);
	}
	if (v->text)
		json_object_set_new(j, "text", json_string(v->text));
	if (v->image)
		json_object_set_new(j, "image", json_string(v->image));
	if (v->channel)
		json_object_set_new(j, "channel", json_string(v->channel));
	if (v->custom)
		json_object_set_new(j, "custom", json_loads(v->custom, 0, NULL));
	if (v->condition)
		json_object_set_new(j, "condition", json_loads(v->condition, 0, NULL));
	if (v->n_buttons) {
		json_t *bs = json_array();
		for (size_t i = 0; bs && i < v->n_buttons; i++) {
			const train_rasa_button *b = &v->buttons[i];
			json_t *bj = json_object();
			if (b->extra) {
				json_t *x = json_loads(b->extra, 0, NULL);
				if (json_is_object(x))
					json_object_update(bj, x);
				json_decref(x);
			}
			if (b->title)
				json_object_set_new(bj, "title", json_string(b->title));
			if (b->payload)
				json_object_set_new(bj, "payload", json_string(b->payload));
			json_array_append_new(bs, bj);
		}
		json_object_set_new(j, "buttons", bs);
	}
	return j;
}

/* The "nlu" input (a RasaNLU value) decoded; a message through ctx on error. */
static int nlu_input(const train_values *in, train_ctx *ctx, train_rasa_nlu **out)
{
	const train_value *v = train_values_get(in, "nlu");
	if (!v)
		return train_fail(ctx, "no input \"nlu\"");
	if (strcmp(train_value_type(v), TRAIN_RASA_NLU_TYPE))
		return train_fail(ctx, "input nlu: expected type %s (from RasaNLU), got %s",
		                  TRAIN_RASA_NLU_TYPE, train_value_type(v));
	train_error err = { 0 };
	if (train_rasa_nlu_from_value(v, out, &err))
		return train_fail(ctx, "input nlu: %s", err.text);
	return TRAIN_OK;
}

static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int rs_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	selector *s = self;
	train_rasa_nlu *nlu = NULL;
	int rc = nlu_input(in, ctx, &nlu);
	if (rc)
		return rc;
	json_t *resp = json_object(), *ris = json_array();
	const char **names = calloc(nlu->n_messages + 1, sizeof *names);
	size_t nn = 0;
	rc = TRAIN_ENOMEM;
	if (!resp || !ris || !names)
		goto out;
	for (size_t i = 0; i < nlu->n_responses; i++) {
		const train_rasa_response *r = &nlu->responses[i];
		json_t *vs = json_array();
		for (size_t k = 0; vs && k < r->n_variations; k++)
			json_array_append_new(vs, variation_json(&r->variations[k]));
		if (!vs || json_object_set_new(resp, r->name, vs))
			goto out;
	}
	/* all retrieval intents of the data (before any retrieval_intent filter) */
	for (size_t i = 0; i < nlu->n_messages; i++)
		if (nlu->messages[i].response_key && *nlu->messages[i].response_key)
			names[nn++] = nlu->messages[i].intent;
	qsort(names, nn, sizeof *names, cmp_cstr);
	for (size_t i = 0; i < nn; i++)
		if ((i == 0 || strcmp(names[i], names[i - 1])) &&
		    json_array_append_new(ris, json_string(names[i])))
			goto out;
	json_decref(s->responses);
	json_decref(s->retrieval_intents);
	s->responses = resp;
	s->retrieval_intents = ris;
	resp = ris = NULL;
	rc = diet_train_entry(&s->d, in, out, ctx);
out:
	json_decref(resp);
	json_decref(ris);
	free(names);
	train_rasa_nlu_free(nlu);
	return rc;
}

/* The "response_selector" of one message. */
static json_t *rs_message_json(const selector *s, const diet_pred *p, json_t *old)
{
	const diet_model *m = s->d.model;
	const char *key = p->n_rank ? diet_label(m, p->rank[0]) : NULL;
	char *utter = NULL;
	json_t *responses = NULL;
	if (key) {
		size_t n = strlen(key) + 7;
		if (!(utter = malloc(n)))
			return NULL;
		snprintf(utter, n, "utter_%s", key);
		responses = json_object_get(s->responses, utter);
		/* Rasa: no responses for the key is a problem of the data; the key
		 * stands in as the text */
		responses = responses ? json_incref(responses) : json_pack("[{s:s}]", "text", key);
	} else {
		responses = json_null();
	}
	json_t *rank = json_array();
	for (int i = 0; rank && i < p->n_rank; i++)
		json_array_append_new(rank, json_pack("{s:f, s:s}", "confidence", (double)p->conf[i],
		                                      "intent_response_key",
		                                      diet_label(m, p->rank[i])));
	json_t *pred = json_pack("{s:{s:o, s:f, s:s?, s:s?}, s:o}", "response", "responses",
	                         responses, "confidence", p->n_rank ? (double)p->conf[0] : 0.0,
	                         "intent_response_key", key, "utter_action", utter, "ranking", rank);
	free(utter);
	json_t *sel = json_is_object(old) ? json_deep_copy(old) : json_object();
	if (!pred || !sel || json_object_set(sel, "all_retrieval_intents", s->retrieval_intents) ||
	    json_object_set_new(sel, s->d.o.retrieval_intent ? s->d.o.retrieval_intent : "default",
	                        pred)) {
		json_decref(sel);
		return NULL;
	}
	return sel;
}

static int rs_process(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	selector *s = self;
	if (!s->d.model)
		return train_fail(ctx, "the response selector has not been trained");
	json_t *j = NULL;
	train_features *f = NULL;
	diet_pred *preds = NULL;
	char why[512] = "";
	int rc = get_parse(in, &j, ctx);
	if (rc || (rc = get_features(in, &f, ctx)))
		goto out;
	if (parse_count(j) != f->n_messages) {
		rc = train_fail(ctx, "input parse has %zu messages, features %zu", parse_count(j),
		                f->n_messages);
		goto out;
	}
	rc = TRAIN_ENOMEM;
	if (!(preds = calloc(f->n_messages + 1, sizeof *preds)))
		goto out;
	if ((rc = diet_predict(s->d.model, &s->d.o, f, preds, why, sizeof why))) {
		if (why[0])
			rc = train_fail(ctx, "%s", why);
		goto out;
	}
	for (size_t i = 0; i < f->n_messages; i++) {
		json_t *msg = parse_at(j, i);
		if (!json_is_object(msg))
			continue;
		json_t *sel = rs_message_json(s, &preds[i], json_object_get(msg, "response_selector"));
		if (!sel || json_object_set_new(msg, "response_selector", sel)) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
	}
	rc = put_json(out, "parse", j);
	j = NULL;
out:
	if (preds && f)
		for (size_t i = 0; i < f->n_messages; i++)
			diet_pred_free(&preds[i]);
	free(preds);
	json_decref(j);
	train_features_free(f);
	return rc;
}

static int rs_persist(void *self, train_resource *res)
{
	selector *s = self;
	int rc = diet_persist(&s->d, res);
	if (rc)
		return rc;
	json_t *j = json_pack("{s:s, s:i, s:O, s:O}", "format", RS_FORMAT, "version", 1,
	                      "responses", s->responses, "retrieval_intents", s->retrieval_intents);
	char *text = j ? json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17)) :
	                 NULL;
	json_decref(j);
	if (!text)
		return TRAIN_ENOMEM;
	rc = train_resource_write(res, RS_FILE, text, strlen(text));
	free(text);
	return rc;
}

static int rs_load(const train_config *config, const train_resource *res, train_ctx *ctx,
                   void **self)
{
	*self = NULL;
	selector *s;
	int rc = rs_make(config, ctx, &s);
	if (rc)
		return rc;
	char why[512] = "";
	if ((rc = diet_load(&s->d.model, res, why, sizeof why))) {
		rs_destroy(s);
		return why[0] ? train_fail(ctx, "%s", why) : rc;
	}
	void *data;
	size_t size;
	if ((rc = train_resource_read(res, RS_FILE, &data, &size))) {
		rs_destroy(s);
		return train_fail(ctx, RS_FILE ": cannot read: %s", train_strerror(rc));
	}
	json_t *j = json_loadb(data, size, 0, NULL), *resp = NULL, *ris = NULL;
	free(data);
	const char *format = NULL;
	int version = 0;
	if (!j || json_unpack(j, "{s:s, s:i, s:o, s:o}", "format", &format, "version", &version,
	                      "responses", &resp, "retrieval_intents", &ris) ||
	    strcmp(format, RS_FORMAT) || version != 1 || !json_is_object(resp) ||
	    !json_is_array(ris)) {
		json_decref(j);
		rs_destroy(s);
		return train_fail(ctx, RS_FILE ": not a response table of format version 1");
	}
	json_decref(s->responses);
	json_decref(s->retrieval_intents);
	s->responses = json_incref(resp);
	s->retrieval_intents = json_incref(ris);
	json_decref(j);
	*self = s;
	return TRAIN_OK;
}

const train_component_class nlu_selector_class = {
	.struct_size = sizeof(train_component_class),
	.name = "ResponseSelector",
	.version = "1",
	.doc = "Rasa's ResponseSelector: picks the response of a retrieval intent (DIET's model "
	       "with response keys as labels)",
	.inputs = rs_inputs,
	.outputs = diet_outputs,
	.process_inputs = rs_process_inputs,
	.process_outputs = diet_process_outputs,
	.params = rs_param_table,
	.create = rs_create,
	.train = rs_train,
	.process = rs_process,
	.persist = rs_persist,
	.load = rs_load,
	.destroy = rs_destroy,
};

/* ------------------------------------------------------------------------ */
/* EntitySynonymMapper */

/*
 * Rasa's EntitySynonymMapper: in training, every `synonym:` item and every
 * annotated entity whose value differs from its text map the lower-cased
 * text (str.lower()) to the value (a later mapping replaces an earlier one,
 * with a warning); in processing, an entity whose value, lower-cased, is a
 * key gets the mapped value and "EntitySynonymMapper" appended to its
 * "processors".
 */
#define SYN_FILE "synonyms.json"
#define SYN_FORMAT "libtrain.synonyms"

static const char *const syn_inputs[] = { "nlu", NULL };
static const char *const syn_outputs[] = { "synonyms", NULL };
static const char *const syn_process_io[] = { "parse", NULL };

typedef struct synonyms {
	json_t *map;   /* object: lower-cased text -> value */
} synonyms;

static void syn_destroy(void *self)
{
	synonyms *s = self;
	if (!s)
		return;
	json_decref(s->map);
	free(s);
}

static int syn_create(const train_config *config, train_ctx *ctx, void **self)
{
	(void)config;
	(void)ctx;
	synonyms *s = calloc(1, sizeof *s);
	if (!s || !(s->map = json_object())) {
		free(s);
		return TRAIN_ENOMEM;
	}
	*self = s;
	return TRAIN_OK;
}

static int syn_add(synonyms *s, const char *text, size_t len, const char *value, train_ctx *ctx)
{
	if (len == strlen(value) && !memcmp(text, value, len))
		return TRAIN_OK;
	size_t ll;
	char *low = text_lower(text, len, &ll);
	if (!low)
		return TRAIN_ENOMEM;
	const char *old = json_string_value(json_object_get(s->map, low));
	if (old && strcmp(old, value))
		train_log(ctx, TRAIN_LOG_WARN, "synonym '%s' maps to '%s' and to '%s'; the later one wins",
		          low, old, value);
	int rc = json_object_set_new(s->map, low, json_string(value)) ? TRAIN_ENOMEM : TRAIN_OK;
	free(low);
	return rc;
}

static int syn_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	synonyms *s = self;
	train_rasa_nlu *nlu = NULL;
	int rc = nlu_input(in, ctx, &nlu);
	if (rc)
		return rc;
	json_decref(s->map);
	if (!(s->map = json_object())) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	/* Rasa: training_data.entity_synonyms first, then the entity examples */
	for (size_t i = 0; i < nlu->n_synonyms && !rc; i++) {
		const train_rasa_synonym *sy = &nlu->synonyms[i];
		for (size_t k = 0; k < sy->names.n && !rc; k++)
			rc = syn_add(s, sy->names.v[k], strlen(sy->names.v[k]), sy->value, ctx);
	}
	for (size_t i = 0; i < nlu->n_messages && !rc; i++) {
		const train_rasa_message *msg = &nlu->messages[i];
		for (size_t e = 0; e < msg->n_entities && !rc; e++) {
			const train_rasa_entity *en = &msg->entities[e];
			if (en->byte_end > msg->text_len || en->byte_start > en->byte_end || !en->value)
				continue;
			rc = syn_add(s, msg->text + en->byte_start, en->byte_end - en->byte_start, en->value,
			             ctx);
		}
	}
	if (!rc) {
		train_log(ctx, TRAIN_LOG_INFO, "%zu synonyms", json_object_size(s->map));
		rc = put_json(out, "synonyms", json_incref(s->map));
	}
out:
	train_rasa_nlu_free(nlu);
	return rc;
}

/* Python's str() of an entity value: strings as they are, True/False,
 * other JSON as its text. */
static char *py_str(json_t *v)
{
	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t n = json_string_length(v);
		char *p = malloc(n + 1);
		if (p) {
			memcpy(p, s, n);
			p[n] = '\0';
		}
		return p;
	}
	if (json_is_true(v) || json_is_false(v)) {
		const char *s = json_is_true(v) ? "True" : "False";
		char *p = malloc(6);
		if (p)
			memcpy(p, s, strlen(s) + 1);
		return p;
	}
	if (json_is_null(v)) {
		char *p = malloc(5);
		if (p)
			memcpy(p, "None", 5);
		return p;
	}
	return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

static int syn_process(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	synonyms *s = self;
	json_t *j;
	int rc = get_parse(in, &j, ctx);
	if (rc)
		return rc;
	for (size_t i = 0; i < parse_count(j); i++) {
		json_t *ents = json_object_get(parse_at(j, i), "entities");
		for (size_t e = 0; e < json_array_size(ents); e++) {
			json_t *en = json_array_get(ents, e), *val = json_object_get(en, "value");
			if (!json_is_object(en) || !val)
				continue;
			char *str = py_str(val), *low = NULL;
			size_t ll;
			if (!str || !(low = text_lower(str, strlen(str), &ll))) {
				free(str);
				json_decref(j);
				return TRAIN_ENOMEM;
			}
			json_t *to = json_object_get(s->map, low);
			free(str);
			free(low);
			if (!to)
				continue;
			json_t *procs = json_object_get(en, "processors");
			if (!json_is_array(procs)) {
				procs = json_array();
				json_object_set_new(en, "processors", procs);
			}
			if (json_object_set(en, "value", to) ||
			    json_array_append_new(procs, json_string("EntitySynonymMapper"))) {
				json_decref(j);
				return TRAIN_ENOMEM;
			}
		}
	}
	return put_json(out, "parse", j);
}

static int syn_persist(void *self, train_resource *res)
{
	synonyms *s = self;
	json_t *j = json_pack("{s:s, s:i, s:O}", "format", SYN_FORMAT, "version", 1, "synonyms",
	                      s->map);
	char *text = j ? json_dumps(j, JSON_INDENT(1) | JSON_ENSURE_ASCII) : NULL;
	json_decref(j);
	if (!text)
		return TRAIN_ENOMEM;
	int rc = train_resource_write(res, SYN_FILE, text, strlen(text));
	free(text);
	return rc;
}

static int syn_load(const train_config *config, const train_resource *res, train_ctx *ctx,
                    void **self)
{
	(void)config;
	*self = NULL;
	void *data;
	size_t size;
	int rc = train_resource_read(res, SYN_FILE, &data, &size);
	if (rc)
		return train_fail(ctx, SYN_FILE ": cannot read: %s", train_strerror(rc));
	json_error_t je;
	json_t *j = json_loadb(data, size, 0, &je), *map = NULL;
	free(data);
	const char *format = NULL;
	int version = 0;
	if (!j || json_unpack(j, "{s:s, s:i, s:o}", "format", &format, "version", &version,
	                      "synonyms", &map) ||
	    strcmp(format, SYN_FORMAT) || version != 1 || !json_is_object(map)) {
		json_decref(j);
		return train_fail(ctx, SYN_FILE ": not a synonym table of format version 1");
	}
	const char *k;
	json_t *v;
	json_object_foreach(map, k, v) {
		if (!json_is_string(v)) {
			json_decref(j);
			return train_fail(ctx, SYN_FILE ": synonym '%s' does not map to a string", k);
		}
	}
	synonyms *s = calloc(1, sizeof *s);
	if (!s) {
		json_decref(j);
		return TRAIN_ENOMEM;
	}
	s->map = json_incref(map);
	json_decref(j);
	*self = s;
	return TRAIN_OK;
}

const train_component_class nlu_synonym_class = {
	.struct_size = sizeof(train_component_class),
	.name = "EntitySynonymMapper",
	.version = "1",
	.doc = "maps extracted entity values to their synonyms' values (Rasa's EntitySynonymMapper)",
	.inputs = syn_inputs,
	.outputs = syn_outputs,
	.process_inputs = syn_process_io,
	.process_outputs = syn_process_io,
	.create = syn_create,
	.train = syn_train,
	.process = syn_process,
	.persist = syn_persist,
	.load = syn_load,
	.destroy = syn_destroy,
};

/* ------------------------------------------------------------------------ */
/* FallbackClassifier */

/*
 * Rasa 3's FallbackClassifier: when the top intent's confidence is below
 * `threshold`, or the top two intents of the ranking are closer than
 * `ambiguity_threshold`, the intent becomes {"name": "nlu_fallback",
 * "confidence": threshold}, also put first in the ranking.  Nothing is
 * learned: train does nothing and persist writes nothing.
 */
static const train_param fb_params[] = {
	{ "threshold", TRAIN_PARAM_FLOAT, "0.3", "below this intent confidence: nlu_fallback" },
	{ "ambiguity_threshold", TRAIN_PARAM_FLOAT, "0.1",
	  "top two intents closer than this: nlu_fallback" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};
static const char *const fb_process_io[] = { "parse", NULL };

typedef struct fallback {
	double threshold, ambiguity;
} fallback;

static void fb_destroy(void *self) { free(self); }

static int fb_create(const train_config *config, train_ctx *ctx, void **self)
{
	*self = NULL;
	double t = train_config_float(config, "threshold");
	double a = train_config_float(config, "ambiguity_threshold");
	if (!isfinite(t) || !isfinite(a))
		return train_fail(ctx, "threshold and ambiguity_threshold must be finite");
	fallback *f = calloc(1, sizeof *f);
	if (!f)
		return TRAIN_ENOMEM;
	f->threshold = t;
	f->ambiguity = a;
	*self = f;
	return TRAIN_OK;
}

static int fb_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	(void)self;
	(void)in;
	(void)out;
	(void)ctx;
	return TRAIN_OK;
}

static double conf_of(json_t *o, double dflt)
{
	json_t *c = json_object_get(o, "confidence");
	return json_is_number(c) ? json_number_value(c) : dflt;
}

static int fb_process(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	fallback *fb = self;
	json_t *j;
	int rc = get_parse(in, &j, ctx);
	if (rc)
		return rc;
	for (size_t i = 0; i < parse_count(j); i++) {
		json_t *msg = parse_at(j, i);
		if (!json_is_object(msg))
			continue;
		json_t *intent = json_object_get(msg, "intent");
		json_t *rank = json_object_get(msg, "intent_ranking");
		/* a missing confidence counts as 0 (Python would fail on None < x) */
		int fall = conf_of(intent, 0.0) < fb->threshold;
		if (!fall && json_array_size(rank) >= 2) {
			double d = conf_of(json_array_get(rank, 0), 1.0) - conf_of(json_array_get(rank, 1), 1.0);
			fall = d < fb->ambiguity;
		}
		if (!fall)
			continue;
		if (!json_is_array(rank)) {
			rank = json_array();
			if (json_object_set_new(msg, "intent_ranking", rank))
				rc = TRAIN_ENOMEM;
		}
		if (rc || json_object_set_new(msg, "intent", json_pack("{s:s, s:f}", "name",
		                                                       "nlu_fallback", "confidence",
		                                                       fb->threshold)) ||
		    json_array_insert_new(rank, 0, json_pack("{s:s, s:f}", "name", "nlu_fallback",
		                                             "confidence", fb->threshold))) {
			json_decref(j);
			return TRAIN_ENOMEM;
		}
	}
	return put_json(out, "parse", j);
}

static int fb_persist(void *self, train_resource *res)
{
	(void)self;
	(void)res;
	return TRAIN_OK;
}

static int fb_load(const train_config *config, const train_resource *res, train_ctx *ctx,
                   void **self)
{
	(void)res;
	return fb_create(config, ctx, self);
}

const train_component_class nlu_fallback_class = {
	.struct_size = sizeof(train_component_class),
	.name = "FallbackClassifier",
	.version = "1",
	.doc = "predicts nlu_fallback for low or ambiguous intent confidences (Rasa's "
	       "FallbackClassifier)",
	.process_inputs = fb_process_io,
	.process_outputs = fb_process_io,
	.params = fb_params,
	.create = fb_create,
	.train = fb_train,
	.process = fb_process,
	.persist = fb_persist,
	.load = fb_load,
	.destroy = fb_destroy,
};

static const train_component_class *const nlu_classes[] = {
	&nlu_diet_class, &nlu_synonym_class, &nlu_fallback_class, &nlu_selector_class, NULL,
};

TRAIN_PLUGIN_DEFINE("nlu", "1.0.0", "MIT",
                    "Rasa NLU components: DIETClassifier, EntitySynonymMapper, FallbackClassifier, "
                    "ResponseSelector",
                    nlu_classes);
