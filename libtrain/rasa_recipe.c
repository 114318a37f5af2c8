/*
 * libtrain/rasa_recipe.c - Rasa's default recipe: config.yml -> a recipe
 * (issue 6).  <train/rasa_recipe.h> describes the graph it builds.
 */
#include <train/rasa_recipe.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* What a pipeline component does in the graph. */
typedef enum role {
	R_TOKENIZER,   /* nlu -> features; process: text -> features */
	R_FEATURIZER,  /* features -> features */
	R_FEAT_NLU,    /* features + nlu -> features; process: features -> features */
	R_CLASSIFIER,  /* features -> report; process: features -> parse */
	R_PARSE_TRAIN, /* nlu -> (trained); process: parse -> parse */
	R_PARSE_ONLY,  /* nothing to train; process: parse -> parse */
	R_SELECTOR,    /* features + nlu -> report; process: features + parse -> parse */
	R_POLICY,      /* domain + stories -> policy; process: conversation -> conversation */
} role;

typedef struct known {
	const char *name;
	role r;
} known;

static const known pipeline_known[] = {
	{ "WhitespaceTokenizer", R_TOKENIZER },
	{ "WordPieceTokenizer", R_TOKENIZER },
	{ "CountVectorsFeaturizer", R_FEATURIZER },
	{ "RegexFeaturizer", R_FEAT_NLU },
	{ "LexicalSyntacticFeaturizer", R_FEATURIZER },
	{ "DIETClassifier", R_CLASSIFIER },
	{ "EntitySynonymMapper", R_PARSE_TRAIN },
	{ "FallbackClassifier", R_PARSE_ONLY },
	{ "ResponseSelector", R_SELECTOR },
	{ NULL, R_TOKENIZER },
};

static const known policy_known[] = {
	{ "MemoizationPolicy", R_POLICY },
	{ "AugmentedMemoizationPolicy", R_POLICY },
	{ "RulePolicy", R_POLICY },
	{ "TEDPolicy", R_POLICY },
	{ NULL, R_POLICY },
};

/* Rasa 3's default config (rasa/shared/importers/default_config.yml),
 * without the components libtrain does not have (UnexpecTEDIntentPolicy)
 * and without ResponseSelector (Rasa's default has it; here it would fail
 * a project without retrieval intents: name it in config.yml). */
static const char default_config[] =
	"pipeline:\n"
	"- name: WhitespaceTokenizer\n"
	"- name: RegexFeaturizer\n"
	"- name: LexicalSyntacticFeaturizer\n"
	"- name: CountVectorsFeaturizer\n"
	"- name: CountVectorsFeaturizer\n"
	"  analyzer: char_wb\n"
	"  min_ngram: 1\n"
	"  max_ngram: 4\n"
	"- name: DIETClassifier\n"
	"  epochs: 100\n"
	"- name: EntitySynonymMapper\n"
	"- name: FallbackClassifier\n"
	"  threshold: 0.3\n"
	"  ambiguity_threshold: 0.1\n"
	"policies:\n"
	"- name: MemoizationPolicy\n"
	"- name: RulePolicy\n"
	"- name: TEDPolicy\n"
	"  max_history: 5\n"
	"  epochs: 100\n"
	"  constrain_similarities: true\n";

static const char *const top_keys[] = { "recipe", "language", "pipeline", "policies",
	                                "assistant_id", "version", "train_schema",
	                                "predict_schema", "nlu_target", "core_target", NULL };

/* One component of the pipeline or the policies. */
typedef struct comp {
	const char *name;
	role r;
	char *node;   /* graph node name */
	char *flow;   /* its config as YAML flow text: "{a: 1}" */
} comp;

static int set_at(train_error *err, int code, const train_config *at, const char *fallback,
                  const char *fmt, ...) TRAIN_PRINTF(5, 6);
static int set_at(train_error *err, int code, const train_config *at, const char *fallback,
                  const char *fmt, ...)
{
	char text[TRAIN_ERROR_TEXT];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	const char *file = at ? train_config_file(at) : fallback;
	return train_error_set(err, code, file && *file ? file : fallback, at ? train_config_line(at) : 0,
	                       at ? train_config_col(at) : 0, "%s", text);
}

static const known *find_known(const known *k, const char *name)
{
	for (; k->name; k++)
		if (!strcmp(k->name, name))
			return k;
	return NULL;
}

static char *known_list(const known *k)
{
	train_buf b = { 0 };
	int rc = 0;
	for (const known *p = k; p->name && !rc; p++)
		rc = train_buf_printf(&b, "%s%s", p == k ? "" : ", ", p->name);
	if (rc || train_buf_add(&b, "", 1)) {
		train_buf_free(&b);
		return NULL;
	}
	return b.data;
}

/* YAML double-quoted text of s. */
static int put_quoted(train_buf *b, const char *s)
{
	int rc = train_buf_str(b, "\"");
	for (; *s && !rc; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			rc = train_buf_printf(b, "\\%c", c);
		else if (c < 0x20)
			rc = train_buf_printf(b, "\\x%02x", c);
		else
			rc = train_buf_add(b, s, 1);
	}
	return rc ? rc : train_buf_str(b, "\"");
}

/* The item's config without `name`, as flow text. */
static int item_flow(const train_config *item, char **out)
{
	train_buf b = { 0 };
	int rc = train_buf_str(&b, "{"), first = 1;
	for (size_t i = 0; i < train_config_len(item) && !rc; i++) {
		const char *key = train_config_key_at(item, i);
		if (!strcmp(key, "name"))
			continue;
		char *v = NULL;
		rc = train_config_to_flow(train_config_at(item, i), &v);
		if (!rc && !first)
			rc = train_buf_str(&b, ", ");
		if (!rc)
			rc = put_quoted(&b, key);
		if (!rc)
			rc = train_buf_printf(&b, ": %s", v);
		free(v);
		first = 0;
	}
	if (!rc)
		rc = train_buf_add(&b, "}", 2);
	if (rc) {
		train_buf_free(&b);
		return rc;
	}
	*out = b.data;
	return TRAIN_OK;
}

/* Check one component against the registry's class: it exists, its keys fit. */
static int check_class(const train_registry *reg, const train_config *item, const char *name,
                       int named, const char *path, train_error *err)
{
	const train_component_class *cls = NULL;
	train_error ferr = { 0 };
	int rc = train_registry_find(reg, name, &cls, NULL, &ferr);
	if (rc == TRAIN_ENOTFOUND)
		return set_at(err, TRAIN_EPLUGIN, train_config_get(item, "name"), path,
		              "component '%s' is in no loaded plugin (install libtrain's plugins, or "
		              "give --plugin-path with the folder of its .so)", name);
	if (rc) {
		*err = ferr;
		return rc;
	}
	size_t n = 0;
	while (cls->params && cls->params[n].type != TRAIN_PARAM_END)
		n++;
	train_param *p = calloc(n + 2, sizeof *p);
	if (!p)
		return TRAIN_ENOMEM;
	/* a pipeline item has its `name`; a graph node's config has none */
	if (named)
		p[0] = (train_param){ "name", TRAIN_PARAM_STRING, NULL, "the component" };
	if (n)
		memcpy(p + !!named, cls->params, n * sizeof *p);
	char what[160];
	snprintf(what, sizeof what, "component %s", name);
	train_config *valid = NULL;
	rc = train_config_validate(item, p, what, &valid, err);
	train_config_destroy(valid);
	free(p);
	if (rc && !err->file[0])
		snprintf(err->file, sizeof err->file, "%s", path);
	return rc;
}

/* Read one list (`pipeline` or `policies`) into comps. */
static int read_list(const train_config *list, const known *kn, const char *what, int policies,
                     const train_registry *reg, const char *path, comp **out, size_t *n_out,
                     train_error *err)
{
	size_t n = train_config_len(list);
	comp *c = calloc(n ? n : 1, sizeof *c);
	if (!c)
		return TRAIN_ENOMEM;
	*out = c;
	*n_out = n;
	for (size_t i = 0; i < n; i++) {
		const train_config *item = train_config_at(list, i);
		const train_config *nm = train_config_get(item, "name");
		if (train_config_kind(item) != TRAIN_CFG_MAP || !nm || train_config_kind(nm) != TRAIN_CFG_STRING)
			return set_at(err, TRAIN_ECONFIG, item, path,
			              "each item of '%s' must be a map with a component's 'name'", what);
		const char *name = train_config_as_string(nm);
		const known *k = find_known(kn, name);
		if (!k) {
			char *list_text = known_list(kn);
			int other = find_known(policies ? pipeline_known : policy_known, name) != NULL;
			train_error_set(err, TRAIN_ECONFIG, train_config_file(nm), train_config_line(nm),
			                train_config_col(nm), "unknown %s component '%s'%s; known: %s",
			                policies ? "policies" : "pipeline", name,
			                other ? (policies ? " (an NLU component: put it under 'pipeline')"
			                                  : " (a policy: put it under 'policies')")
			                      : "",
			                list_text ? list_text : "?");
			free(list_text);
			if (!err->file[0])
				snprintf(err->file, sizeof err->file, "%s", path);
			return TRAIN_ECONFIG;
		}
		int rc = reg ? check_class(reg, item, name, 1, path, err) : TRAIN_OK;
		if (rc)
			return rc;
		c[i].name = k->name;
		c[i].r = k->r;
		if (!(c[i].node = train_strfmt("%s%zu", name, i)))
			return TRAIN_ENOMEM;
		if ((rc = item_flow(item, &c[i].flow)))
			return rc;
	}
	return TRAIN_OK;
}

static void free_comps(comp *c, size_t n)
{
	for (size_t i = 0; c && i < n; i++) {
		free(c[i].node);
		free(c[i].flow);
	}
	free(c);
}

/* Check the pipeline's order: one tokenizer first, featurizers after it, at
 * most one classifier after features, parse processors after a classifier. */
static int check_order(const comp *c, size_t n, const train_config *list, const char *path,
                       train_error *err)
{
	int tok = 0, cls = 0;
	for (size_t i = 0; i < n; i++) {
		const train_config *at = train_config_get(train_config_at(list, i), "name");
		switch (c[i].r) {
		case R_TOKENIZER:
			if (tok)
				return set_at(err, TRAIN_ECONFIG, at, path, "a second tokenizer ('%s'): a "
				              "pipeline has one tokenizer", c[i].name);
			tok = 1;
			break;
		case R_FEATURIZER:
		case R_FEAT_NLU:
			if (!tok)
				return set_at(err, TRAIN_ECONFIG, at, path, "'%s' needs tokens: put a tokenizer "
				              "(e.g. WhitespaceTokenizer) before it in the pipeline", c[i].name);
			if (cls)
				return set_at(err, TRAIN_ECONFIG, at, path, "'%s' comes after the classifier: "
				              "featurizers go before it", c[i].name);
			break;
		case R_CLASSIFIER:
			if (!tok)
				return set_at(err, TRAIN_ECONFIG, at, path, "'%s' needs features: put a tokenizer "
				              "and featurizers before it in the pipeline", c[i].name);
			if (cls)
				return set_at(err, TRAIN_ECONFIG, at, path, "a second classifier ('%s'): one "
				              "DIETClassifier does intents and entities", c[i].name);
			cls = 1;
			break;
		case R_PARSE_TRAIN:
		case R_PARSE_ONLY:
		case R_SELECTOR:
			if (!cls)
				return set_at(err, TRAIN_ECONFIG, at, path, "'%s' works on a classifier's "
				              "predictions: put it after DIETClassifier", c[i].name);
			break;
		case R_POLICY: break;
		}
	}
	return TRAIN_OK;
}

static int emit(train_buf *b, train_rasa_part part, const comp *pl, size_t npl, const comp *po,
                size_t npo)
{
	int nlu = part != TRAIN_RASA_PART_CORE && npl, core = part != TRAIN_RASA_PART_NLU && npo;
	int rc = train_buf_printf(b, "# Generated from a Rasa config.yml by libtrain's default recipe.\n"
	                          "version: 1\nname: %s\ntrain:\n  targets: [",
	                          part == TRAIN_RASA_PART_NLU ? "nlu" : part == TRAIN_RASA_PART_CORE ? "core" : "rasa");
	int first = 1;
	for (size_t i = 0; nlu && i < npl && !rc; i++)
		if (pl[i].r != R_PARSE_ONLY) {
			rc = train_buf_printf(b, "%s%s", first ? "" : ", ", pl[i].node);
			first = 0;
		}
	for (size_t i = 0; core && i < npo && !rc; i++) {
		rc = train_buf_printf(b, "%s%s", first ? "" : ", ", po[i].node);
		first = 0;
	}
	if (!rc)
		rc = train_buf_str(b, "]\n  nodes:\n");
	if (!rc && nlu)
		rc = train_buf_str(b, "    nlu: {component: RasaNLU, config: {path: $data}}\n");
	if (!rc && core)
		rc = train_buf_str(b, "    domain: {component: RasaDomain, config: {path: $domain}}\n"
		                      "    stories: {component: RasaStories, config: {path: $data}}\n");
	const char *feat = NULL;
	for (size_t i = 0; nlu && i < npl && !rc; i++) {
		const comp *c = &pl[i];
		switch (c->r) {
		case R_TOKENIZER:
			rc = train_buf_printf(b, "    %s: {component: %s, needs: {nlu: nlu}, config: %s}\n",
			                      c->node, c->name, c->flow);
			feat = c->node;
			break;
		case R_FEATURIZER:
			rc = train_buf_printf(b, "    %s: {component: %s, needs: {features: %s}, config: %s}\n",
			                      c->node, c->name, feat, c->flow);
			feat = c->node;
			break;
		case R_FEAT_NLU:
			rc = train_buf_printf(b, "    %s: {component: %s, needs: {features: %s, nlu: nlu}, "
			                      "config: %s}\n", c->node, c->name, feat, c->flow);
			feat = c->node;
			break;
		case R_CLASSIFIER:
			rc = train_buf_printf(b, "    %s: {component: %s, needs: {features: %s}, config: %s}\n",
			                      c->node, c->name, feat, c->flow);
			break;
		case R_PARSE_TRAIN:
			rc = train_buf_printf(b, "    %s: {component: %s, needs: {nlu: nlu}, config: %s}\n",
			                      c->node, c->name, c->flow);
			break;
		case R_SELECTOR:
			rc = train_buf_printf(b, "    %s: {component: %s, needs: {features: %s, nlu: nlu}, "
			                      "config: %s}\n", c->node, c->name, feat, c->flow);
			break;
		case R_PARSE_ONLY:
		case R_POLICY: break;
		}
	}
	for (size_t i = 0; core && i < npo && !rc; i++)
		rc = train_buf_printf(b, "    %s: {component: %s, needs: {domain: domain, stories: stories}, "
		                      "config: %s}\n", po[i].node, po[i].name, po[i].flow);

	/* predict: text -> the process() chain; conversation -> policies -> ensemble */
	if (!rc)
		rc = train_buf_printf(b, "predict:\n  inputs: [%s%s%s]\n  targets: [",
		                      nlu ? "text" : "", nlu && core ? ", " : "", core ? "conversation" : "");
	const char *last = NULL;
	for (size_t i = 0; nlu && i < npl; i++)
		last = pl[i].node;
	if (!rc && nlu)
		rc = train_buf_printf(b, "%s%s", last, core ? ", " : "");
	if (!rc && core)
		rc = train_buf_str(b, "PolicyEnsemble");
	if (!rc)
		rc = train_buf_str(b, "]\n  nodes:\n");
	const char *prev = NULL;
	feat = NULL;
	for (size_t i = 0; nlu && i < npl && !rc; i++) {
		const comp *c = &pl[i];
		const char *key = c->r == R_TOKENIZER ? "text" :
		                  c->r == R_PARSE_TRAIN || c->r == R_PARSE_ONLY ? "parse" : "features";
		if (c->r == R_TOKENIZER || c->r == R_FEATURIZER || c->r == R_FEAT_NLU)
			feat = c->node;
		if (c->r == R_SELECTOR)
			rc = train_buf_printf(b, "    %s: {component: %s, resource: %s, needs: {features: %s, "
			                      "parse: %s}, config: %s}\n", c->node, c->name, c->node, feat,
			                      prev, c->flow);
		else if (c->r == R_PARSE_ONLY)
			rc = train_buf_printf(b, "    %s: {component: %s, needs: {%s: %s}, config: %s}\n",
			                      c->node, c->name, key, prev, c->flow);
		else
			rc = train_buf_printf(b, "    %s: {component: %s, resource: %s, needs: {%s: %s%s}, "
			                      "config: %s}\n", c->node, c->name, c->node, key,
			                      prev ? "" : "$input.", prev ? prev : "text", c->flow);
		prev = c->node;
	}
	prev = NULL;
	for (size_t i = 0; core && i < npo && !rc; i++) {
		rc = train_buf_printf(b, "    %s: {component: %s, resource: %s, needs: {conversation: %s%s}, "
		                      "config: %s}\n", po[i].node, po[i].name, po[i].node,
		                      prev ? "" : "$input.", prev ? prev : "conversation", po[i].flow);
		prev = po[i].node;
	}
	if (!rc && core)
		rc = train_buf_printf(b, "    PolicyEnsemble: {component: PolicyEnsemble, needs: "
		                      "{conversation: %s}}\n", prev);
	return rc ? rc : train_buf_add(b, "", 1);
}

/* ------------------------------------------------------------------------
 * recipe: graph.v1 - Rasa's explicit graph schemas (rasa/engine/recipes/
 * graph_recipe.py; the format of rasa/engine/graph.py's SchemaNode):
 *
 *   train_schema: {nodes: {NAME: {needs: {ARG: NODE}, uses: CLASS,
 *                  constructor_name, fn, config, eager, is_target,
 *                  is_input, resource: null | {name: NODE}}}}
 *   predict_schema: {nodes: ...}
 *   nlu_target, core_target: the predict nodes whose results are wanted
 *                  (default run_RegexMessageHandler, select_prediction)
 *
 * Rasa's graph passes whole objects (an importer, TrainingData, lists of
 * messages, trackers) from node to node; a libtrain recipe passes typed
 * values.  So every node is resolved to the value it stands for, and the
 * libtrain nodes are written from those:
 *
 *   __importer__, the validators             the project
 *   NLUTrainingDataProvider                  RasaNLU node ($data)
 *   DomainProvider (provide_train), the      RasaDomain node ($domain)
 *     domain-for-core, forms and responses
 *     providers
 *   StoryGraphProvider, TrainingTrackerProvider  RasaStories node ($data)
 *   a pipeline component with fn train        its train node; with fn
 *     process_training_data and needs           process_training_data and
 *     `resource: train_X`: the features of      no resource (a tokenizer):
 *     train_X                                   a train node of its own
 *   a policy with fn train                    its train node (domain, stories)
 *   __message__, NLUMessageConverter          predict input `text`
 *   __tracker__                               predict input `conversation`
 *   a pipeline component with fn process      its predict node (resource:
 *                                             the train node it names)
 *   RegexMessageHandler                       the parse it is given
 *   policies (predict_action_probabilities)   predict nodes chained in the
 *     and DefaultPolicyPredictionEnsemble     order the ensemble lists
 *                                             them, then PolicyEnsemble
 *   DomainProvider (provide_inference),       nothing (libtrain's policies
 *     RuleOnlyDataProvider                    carry what they need)
 *
 * `uses` may be the full Python path or the bare class name; `eager`,
 * `is_input` and `constructor_name` are checked and otherwise change
 * nothing here (libtrain fingerprints every node and builds predict nodes
 * when the model is loaded).  Every train node is a target (Rasa's
 * is_target keeps a node from being pruned; here the model needs them all).
 * A class libtrain does not have, an fn the class does not offer, a need
 * that names no node or gives a value of the wrong kind is an error at
 * the config file's line.
 */

typedef enum gkind {
	G_VALIDATOR,      /* importer -> importer */
	G_NLU_PROVIDER,   /* importer -> nlu */
	G_DOMAIN_PROVIDER,/* importer -> domain (train); nothing (predict) */
	G_DOMAIN_PASS,    /* domain -> domain */
	G_STORY_PROVIDER, /* importer -> stories */
	G_TRACKERS,       /* stories (+ domain) -> stories */
	G_CONVERTER,      /* __message__ -> text */
	G_MSG_HANDLER,    /* parse -> parse */
	G_RULE_DATA,      /* -> nothing */
	G_ENSEMBLE,       /* policies -> the prediction */
	G_PIPELINE,       /* a pipeline component (role r) */
	G_POLICY,         /* a policy */
} gkind;

typedef struct gclass {
	const char *name;
	gkind k;
	const char *train_fns, *predict_fns;  /* "a b c"; NULL: not in that schema */
} gclass;

static const gclass graph_helpers[] = {
	{ "DefaultV1RecipeValidator", G_VALIDATOR, "validate", NULL },
	{ "FinetuningValidator", G_VALIDATOR, "validate", NULL },
	{ "NLUTrainingDataProvider", G_NLU_PROVIDER, "provide", NULL },
	{ "DomainProvider", G_DOMAIN_PROVIDER, "provide_train", "provide_inference" },
	{ "DomainForCoreTrainingProvider", G_DOMAIN_PASS, "provide", NULL },
	{ "FormsProvider", G_DOMAIN_PASS, "provide", NULL },
	{ "ResponsesProvider", G_DOMAIN_PASS, "provide", NULL },
	{ "StoryGraphProvider", G_STORY_PROVIDER, "provide", NULL },
	{ "TrainingTrackerProvider", G_TRACKERS, "provide", NULL },
	{ "NLUMessageConverter", G_CONVERTER, NULL, "convert_user_message" },
	{ "RegexMessageHandler", G_MSG_HANDLER, NULL, "process" },
	{ "RuleOnlyDataProvider", G_RULE_DATA, NULL, "provide" },
	{ "DefaultPolicyPredictionEnsemble", G_ENSEMBLE, NULL, "combine_predictions_from_kwargs" },
	{ NULL, G_VALIDATOR, NULL, NULL },
};

/* What a node stands for. */
typedef enum vkind {
	V_NOTHING,  /* resolved to nothing libtrain needs */
	V_IMPORTER, V_NLU, V_DOMAIN, V_STORIES,
	V_FEATURES, /* node: the libtrain node whose features these are */
	V_TRAINED,  /* a train node without features (classifier, policy, ...) */
	V_TEXT, V_TRACKER,
	V_PARSE,    /* node: the libtrain predict node; feat: the features it read */
	V_POLICY,   /* a policy's predict node, waiting for the ensemble */
	V_SKIPPED,  /* outside the part being built (train nlu / core) */
} vkind;

static const char *const vkind_names[] = {
	"nothing", "the importer", "NLU training data", "the domain", "the stories",
	"messages with features", "a trained component", "the user's message",
	"the tracker", "parsed messages", "a policy's prediction", "(not built)",
};

typedef struct gnode {
	const char *name;
	const train_config *item, *needs, *uses_at, *fn_at;
	gclass c;                 /* the class (name points into a table) */
	role r;                   /* G_PIPELINE / G_POLICY */
	const char *fn;
	const char *resource;     /* resource.name, or needs.resource */
	const train_config *resource_at;
	char *flow;               /* config as flow text */
	int state;                /* 0 new, 1 resolving, 2 done */
	vkind v;
	const char *node, *feat;  /* libtrain node names (into gnode names or fixed) */
	const char *reads;        /* train: the features node a run_X node read */
} gnode;

typedef struct gschema {
	const char *what;         /* "train_schema" / "predict_schema" */
	gnode *n;
	size_t len;
	int predict;
} gschema;

typedef struct gctx {
	const char *path;
	train_rasa_part part;
	const train_registry *reg;
	train_error *err;
	gschema train, predict;
	train_buf nodes, targets;  /* the train schema's node lines and targets */
	int n_targets;
} gctx;

static int fn_in(const char *list, const char *fn)
{
	size_t n = strlen(fn);
	for (const char *p = list; p && *p;) {
		const char *e = strchr(p, ' ');
		size_t l = e ? (size_t)(e - p) : strlen(p);
		if (l == n && !strncmp(p, fn, n))
			return 1;
		p = e ? e + 1 : p + l;
	}
	return 0;
}

static int good_name(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '-'))
			return 0;
	return 1;
}

/* `uses`: a Python path whose last part is a class libtrain knows. */
static int graph_class(gctx *g, gnode *n, const char *uses)
{
	const char *dot = strrchr(uses, '.');
	const char *cls = dot ? dot + 1 : uses;
	const known *k;
	for (const gclass *h = graph_helpers; h->name; h++)
		if (!strcmp(h->name, cls)) {
			n->c = *h;
			return TRAIN_OK;
		}
	if ((k = find_known(pipeline_known, cls))) {
		n->c = (gclass){ k->name, G_PIPELINE, "train process_training_data", "process" };
		n->r = k->r;
		return TRAIN_OK;
	}
	if ((k = find_known(policy_known, cls))) {
		n->c = (gclass){ k->name, G_POLICY, "train", "predict_action_probabilities" };
		n->r = k->r;
		return TRAIN_OK;
	}
	/* the components first: the helpers' list is long (the message is cut
	 * at TRAIN_ERROR_TEXT) */
	train_buf b = { 0 };
	int rc = 0;
	for (const gclass *h = graph_helpers; h->name && !rc; h++)
		rc = train_buf_printf(&b, ", %s", h->name);
	char *pl = known_list(pipeline_known), *po = known_list(policy_known);
	set_at(g->err, TRAIN_ECONFIG, n->uses_at, g->path,
	       "node '%s': class '%s' is not one libtrain has; known: %s, %s%s", n->name, uses,
	       pl ? pl : "?", po ? po : "?", !rc && b.data ? b.data : "");
	free(pl);
	free(po);
	train_buf_free(&b);
	return TRAIN_ECONFIG;
}

static const char *const node_keys[] = { "needs", "uses", "constructor_name", "fn", "config",
	                                 "eager", "is_target", "is_input", "resource", NULL };

static int read_schema(gctx *g, const train_config *cfg, const char *what, int predict,
                       gschema *s)
{
	const train_config *sc = train_config_get(cfg, what);
	s->what = what;
	s->predict = predict;
	if (!sc || train_config_kind(sc) == TRAIN_CFG_NULL)
		return TRAIN_OK;
	const train_config *nodes = train_config_get(sc, "nodes");
	if (train_config_kind(sc) != TRAIN_CFG_MAP || !nodes || train_config_kind(nodes) != TRAIN_CFG_MAP)
		return set_at(g->err, TRAIN_ECONFIG, sc, g->path, "'%s' must be a map with 'nodes': a map "
		              "of node name -> node", what);
	for (size_t i = 0; i < train_config_len(sc); i++)
		if (strcmp(train_config_key_at(sc, i), "nodes"))
			return set_at(g->err, TRAIN_ECONFIG, train_config_key_node_at(sc, i), g->path,
			              "unknown key '%s' in '%s'; known: nodes", train_config_key_at(sc, i),
			              what);
	s->len = train_config_len(nodes);
	if (!(s->n = calloc(s->len ? s->len : 1, sizeof *s->n)))
		return TRAIN_ENOMEM;
	for (size_t i = 0; i < s->len; i++) {
		gnode *n = &s->n[i];
		const train_config *item = train_config_at(nodes, i);
		n->name = train_config_key_at(nodes, i);
		n->item = item;
		const train_config *key_at = train_config_key_node_at(nodes, i);
		if (!good_name(n->name))
			return set_at(g->err, TRAIN_ECONFIG, key_at, g->path, "bad node name '%s' (use "
			              "letters, digits, '_' and '-')", n->name);
		if (train_config_kind(item) != TRAIN_CFG_MAP)
			return set_at(g->err, TRAIN_ECONFIG, item, g->path, "node '%s' must be a map with "
			              "'uses', 'fn', 'needs', ...", n->name);
		for (size_t k = 0; k < train_config_len(item); k++) {
			const char *key = train_config_key_at(item, k);
			size_t j = 0;
			while (node_keys[j] && strcmp(node_keys[j], key))
				j++;
			if (!node_keys[j])
				return set_at(g->err, TRAIN_ECONFIG, train_config_key_node_at(item, k), g->path,
				              "node '%s': unknown key '%s'; known: needs, uses, "
				              "constructor_name, fn, config, eager, is_target, is_input, "
				              "resource", n->name, key);
		}
		const train_config *uses = train_config_get(item, "uses");
		const train_config *fn = train_config_get(item, "fn");
		const train_config *ctor = train_config_get(item, "constructor_name");
		const train_config *conf = train_config_get(item, "config");
		const train_config *res = train_config_get(item, "resource");
		n->needs = train_config_get(item, "needs");
		n->uses_at = uses;
		n->fn_at = fn;
		if (!uses || train_config_kind(uses) != TRAIN_CFG_STRING)
			return set_at(g->err, TRAIN_ECONFIG, uses ? uses : item, g->path, "node '%s' needs "
			              "'uses': the component's class", n->name);
		if (!fn || train_config_kind(fn) != TRAIN_CFG_STRING)
			return set_at(g->err, TRAIN_ECONFIG, fn ? fn : item, g->path, "node '%s' needs "
			              "'fn': the function the graph calls", n->name);
		n->fn = train_config_as_string(fn);
		if (ctor && train_config_kind(ctor) != TRAIN_CFG_NULL &&
		    (!train_config_as_string(ctor) || (strcmp(train_config_as_string(ctor), "create") &&
		                                       strcmp(train_config_as_string(ctor), "load"))))
			return set_at(g->err, TRAIN_ECONFIG, ctor, g->path, "node '%s': constructor_name "
			              "must be create or load", n->name);
		static const char *const flags[] = { "eager", "is_target", "is_input" };
		for (int f = 0; f < 3; f++) {
			const train_config *x = train_config_get(item, flags[f]);
			if (x && train_config_kind(x) != TRAIN_CFG_BOOL)
				return set_at(g->err, TRAIN_ECONFIG, x, g->path, "node '%s': '%s' must be "
				              "true or false", n->name, flags[f]);
		}
		if (n->needs && train_config_kind(n->needs) != TRAIN_CFG_NULL) {
			if (train_config_kind(n->needs) != TRAIN_CFG_MAP)
				return set_at(g->err, TRAIN_ECONFIG, n->needs, g->path, "node '%s': 'needs' "
				              "must be a map of argument -> node", n->name);
			for (size_t k = 0; k < train_config_len(n->needs); k++)
				if (train_config_kind(train_config_at(n->needs, k)) != TRAIN_CFG_STRING)
					return set_at(g->err, TRAIN_ECONFIG, train_config_at(n->needs, k), g->path,
					              "node '%s': need '%s' must name a node", n->name,
					              train_config_key_at(n->needs, k));
		} else {
			n->needs = NULL;
		}
		if (res && train_config_kind(res) != TRAIN_CFG_NULL) {
			const train_config *rn = train_config_get(res, "name");
			if (train_config_kind(res) != TRAIN_CFG_MAP || !rn ||
			    train_config_kind(rn) != TRAIN_CFG_STRING || train_config_len(res) != 1)
				return set_at(g->err, TRAIN_ECONFIG, res, g->path, "node '%s': 'resource' "
				              "must be null or {name: NODE}", n->name);
			n->resource = train_config_as_string(rn);
			n->resource_at = rn;
		}
		int rc = graph_class(g, n, train_config_as_string(uses));
		if (rc)
			return rc;
		const char *fns = predict ? n->c.predict_fns : n->c.train_fns;
		if (!fns)
			return set_at(g->err, TRAIN_ECONFIG, uses, g->path, "node '%s': %s belongs in %s, "
			              "not in %s", n->name, n->c.name,
			              predict ? "train_schema" : "predict_schema", what);
		if (!fn_in(fns, n->fn))
			return set_at(g->err, TRAIN_ECONFIG, fn, g->path, "node '%s': %s has no fn '%s' "
			              "in %s; known: %s", n->name, n->c.name, n->fn, what, fns);
		if (conf && train_config_kind(conf) != TRAIN_CFG_NULL &&
		    train_config_kind(conf) != TRAIN_CFG_MAP)
			return set_at(g->err, TRAIN_ECONFIG, conf, g->path, "node '%s': 'config' must be "
			              "a map", n->name);
		if (n->c.k == G_PIPELINE || n->c.k == G_POLICY) {
			int has = conf && train_config_kind(conf) == TRAIN_CFG_MAP;
			if (g->reg) {
				const train_component_class *cls = NULL;
				train_error ferr = { 0 };
				if (train_registry_find(g->reg, n->c.name, &cls, NULL, &ferr) == TRAIN_ENOTFOUND)
					return set_at(g->err, TRAIN_EPLUGIN, uses, g->path, "component '%s' is in "
					              "no loaded plugin (install libtrain's plugins, or give "
					              "--plugin-path with the folder of its .so)", n->c.name);
				if (has && (rc = check_class(g->reg, conf, n->c.name, 0, g->path, g->err)))
					return rc;
			}
			if (has)
				rc = item_flow(conf, &n->flow);
			else if (!(n->flow = strdup("{}")))
				rc = TRAIN_ENOMEM;
			if (rc)
				return rc;
		}
	}
	return TRAIN_OK;
}

static gnode *gfind(gschema *s, const char *name)
{
	for (size_t i = 0; i < s->len; i++)
		if (!strcmp(s->n[i].name, name))
			return &s->n[i];
	return NULL;
}

static int resolve(gctx *g, gschema *s, gnode *n);

/* The value of need `arg` of n (NULL: not there); *at its YAML node. */
static int need(gctx *g, gschema *s, gnode *n, const char *arg, gnode **out, vkind *v,
                const train_config **at)
{
	*out = NULL;
	*v = V_NOTHING;
	const train_config *x = n->needs ? train_config_get(n->needs, arg) : NULL;
	*at = x;
	if (!x)
		return TRAIN_OK;
	const char *ref = train_config_as_string(x);
	if (!strcmp(ref, "__importer__") && !s->predict) {
		*v = V_IMPORTER;
		return TRAIN_OK;
	}
	if (!strcmp(ref, "__message__") && s->predict) {
		*v = V_TEXT;
		return TRAIN_OK;
	}
	if (!strcmp(ref, "__tracker__") && s->predict) {
		*v = V_TRACKER;
		return TRAIN_OK;
	}
	gnode *p = gfind(s, ref);
	if (!p)
		return set_at(g->err, TRAIN_ECONFIG, x, g->path, "node '%s' needs '%s', which is no node "
		              "of %s%s", n->name, ref, s->what,
		              s->predict ? " (nor __message__ or __tracker__)" : " (nor __importer__)");
	int rc = resolve(g, s, p);
	if (rc)
		return rc;
	*out = p;
	*v = p->v;
	return TRAIN_OK;
}

/* The need `arg` must be there and of kind `want` (or of `want2`). */
static int need_kind(gctx *g, gschema *s, gnode *n, const char *arg, vkind want, vkind want2,
                     gnode **out, vkind *v)
{
	const train_config *at;
	int rc = need(g, s, n, arg, out, v, &at);
	if (rc)
		return rc;
	if (!at)
		return set_at(g->err, TRAIN_ECONFIG, n->needs ? n->needs : n->item, g->path,
		              "node '%s' (%s, fn %s) needs '%s'", n->name, n->c.name, n->fn, arg);
	if (*v == V_SKIPPED)
		return TRAIN_OK;
	if (*v != want && *v != want2)
		return set_at(g->err, TRAIN_ECONFIG, at, g->path, "node '%s' needs %s as '%s', but '%s' "
		              "gives %s", n->name, vkind_names[want], arg, train_config_as_string(at),
		              vkind_names[*v]);
	return TRAIN_OK;
}

/* The training-data need of a pipeline node: `training_data` (Rasa's
 * name), or its only need besides `resource`. */
static const char *data_arg(const gnode *n, const char *usual)
{
	if (n->needs && train_config_get(n->needs, usual))
		return usual;
	const char *only = NULL;
	for (size_t i = 0; n->needs && i < train_config_len(n->needs); i++) {
		const char *k = train_config_key_at(n->needs, i);
		if (strcmp(k, "resource") && strcmp(k, "domain")) {
			if (only)
				return usual;
			only = k;
		}
	}
	return only ? only : usual;
}

/* The train node's RasaNLU / RasaDomain / RasaStories provider, written once. */
static int emit_provider(gctx *g, gnode *p, const char *component, const char *path)
{
	if (p->node)
		return TRAIN_OK;
	p->node = p->name;
	return train_buf_printf(&g->nodes, "    %s: {component: %s, config: {path: %s}}\n", p->name,
	                        component, path);
}

static int add_target(gctx *g, const char *node)
{
	int rc = train_buf_printf(&g->targets, "%s%s", g->n_targets ? ", " : "", node);
	g->n_targets++;
	return rc;
}

/* The nlu provider behind a pipeline node's data (RegexFeaturizer, the
 * synonym mapper and ResponseSelector read the NLU data too). */
static gnode *nlu_of(gschema *s)
{
	for (size_t i = 0; i < s->len; i++)
		if (s->n[i].c.k == G_NLU_PROVIDER && s->n[i].node)
			return &s->n[i];
	return NULL;
}

static int resolve_train(gctx *g, gschema *s, gnode *n)
{
	gnode *p = NULL, *q = NULL;
	vkind v, w;
	int rc = TRAIN_OK;
	switch (n->c.k) {
	case G_VALIDATOR:
		if ((rc = need_kind(g, s, n, "importer", V_IMPORTER, V_IMPORTER, &p, &v)))
			return rc;
		n->v = V_IMPORTER;
		return TRAIN_OK;
	case G_NLU_PROVIDER:
	case G_DOMAIN_PROVIDER:
	case G_STORY_PROVIDER:
		if ((rc = need_kind(g, s, n, "importer", V_IMPORTER, V_IMPORTER, &p, &v)))
			return rc;
		n->v = n->c.k == G_NLU_PROVIDER ? V_NLU : n->c.k == G_DOMAIN_PROVIDER ? V_DOMAIN : V_STORIES;
		return TRAIN_OK;   /* written when something reads it */
	case G_DOMAIN_PASS:
		if ((rc = need_kind(g, s, n, "domain", V_DOMAIN, V_DOMAIN, &p, &v)))
			return rc;
		n->v = V_DOMAIN;
		n->feat = p->feat ? p->feat : p->name;  /* the provider */
		return TRAIN_OK;
	case G_TRACKERS:
		if ((rc = need_kind(g, s, n, "story_graph", V_STORIES, V_STORIES, &p, &v)))
			return rc;
		n->v = V_STORIES;
		n->feat = p->name;
		return TRAIN_OK;
	case G_POLICY: {
		if (g->part == TRAIN_RASA_PART_NLU) {
			n->v = V_SKIPPED;
			return TRAIN_OK;
		}
		if ((rc = need_kind(g, s, n, "training_trackers", V_STORIES, V_STORIES, &p, &v)) ||
		    (rc = need_kind(g, s, n, "domain", V_DOMAIN, V_DOMAIN, &q, &w)))
			return rc;
		gnode *sp = p->c.k == G_TRACKERS ? gfind(s, p->feat) : p;
		gnode *dp = q->c.k == G_DOMAIN_PASS ? gfind(s, q->feat) : q;
		if ((rc = emit_provider(g, sp, "RasaStories", "$data")) ||
		    (rc = emit_provider(g, dp, "RasaDomain", "$domain")))
			return rc;
		n->v = V_TRAINED;
		n->node = n->name;
		if ((rc = train_buf_printf(&g->nodes, "    %s: {component: %s, needs: {domain: %s, "
		                           "stories: %s}, config: %s}\n", n->name, n->c.name, dp->node,
		                           sp->node, n->flow)))
			return rc;
		return add_target(g, n->name);
	}
	case G_PIPELINE:
		break;
	default:
		return set_at(g->err, TRAIN_ECONFIG, n->uses_at, g->path, "node '%s': %s has no place "
		              "in train_schema", n->name, n->c.name);
	}
	if (g->part == TRAIN_RASA_PART_CORE) {
		n->v = V_SKIPPED;
		return TRAIN_OK;
	}
	/* a pipeline component */
	const char *arg = data_arg(n, "training_data");
	if (n->r == R_PARSE_ONLY)
		return set_at(g->err, TRAIN_ECONFIG, n->uses_at, g->path, "node '%s': %s learns nothing; "
		              "it belongs in predict_schema only", n->name, n->c.name);
	if (!strcmp(n->fn, "process_training_data") && n->needs &&
	    train_config_get(n->needs, "resource")) {
		/* run_X: the features that train_X made from the same data */
		const train_config *rat;
		gnode *t;
		if ((rc = need(g, s, n, "resource", &t, &v, &rat)))
			return rc;
		if (!t || t->c.k != G_PIPELINE || strcmp(t->c.name, n->c.name) || strcmp(t->fn, "train"))
			return set_at(g->err, TRAIN_ECONFIG, rat, g->path, "node '%s': resource '%s' must "
			              "be a node that trains %s (fn train)", n->name,
			              train_config_as_string(rat), n->c.name);
		if ((rc = need_kind(g, s, n, arg, V_FEATURES, V_NLU, &p, &w)))
			return rc;
		if (t->v != V_FEATURES || !p || !t->reads || strcmp(t->reads, p->name))
			return set_at(g->err, TRAIN_ECONFIG, train_config_get(n->needs, arg), g->path,
			              "node '%s' must read the data its resource '%s' was trained on",
			              n->name, t->name);
		n->v = V_FEATURES;
		n->node = t->node;
		return TRAIN_OK;
	}
	if (n->r == R_TOKENIZER) {
		if ((rc = need_kind(g, s, n, arg, V_NLU, V_NLU, &p, &v)) ||
		    (rc = emit_provider(g, p, "RasaNLU", "$data")))
			return rc;
		n->v = V_FEATURES;
		n->node = n->name;
		n->reads = p->name;
		if ((rc = train_buf_printf(&g->nodes, "    %s: {component: %s, needs: {nlu: %s}, config: "
		                           "%s}\n", n->name, n->c.name, p->node, n->flow)))
			return rc;
		return add_target(g, n->name);
	}
	if ((rc = need_kind(g, s, n, arg, V_FEATURES, V_FEATURES, &p, &v)))
		return rc;
	gnode *nlu = nlu_of(s);
	if (!nlu && (n->r == R_FEAT_NLU || n->r == R_PARSE_TRAIN || n->r == R_SELECTOR))
		return set_at(g->err, TRAIN_ECONFIG, n->uses_at, g->path, "node '%s': %s reads the NLU "
		              "data, but no NLUTrainingDataProvider feeds the pipeline", n->name,
		              n->c.name);
	n->reads = p->name;
	n->node = n->name;
	switch (n->r) {
	case R_FEATURIZER:
		n->v = V_FEATURES;
		rc = train_buf_printf(&g->nodes, "    %s: {component: %s, needs: {features: %s}, config: "
		                      "%s}\n", n->name, n->c.name, p->node, n->flow);
		break;
	case R_FEAT_NLU:
		n->v = V_FEATURES;
		rc = train_buf_printf(&g->nodes, "    %s: {component: %s, needs: {features: %s, nlu: %s}, "
		                      "config: %s}\n", n->name, n->c.name, p->node, nlu->node, n->flow);
		break;
	case R_CLASSIFIER:
		n->v = V_TRAINED;
		rc = train_buf_printf(&g->nodes, "    %s: {component: %s, needs: {features: %s}, config: "
		                      "%s}\n", n->name, n->c.name, p->node, n->flow);
		break;
	case R_PARSE_TRAIN:
		n->v = V_TRAINED;
		rc = train_buf_printf(&g->nodes, "    %s: {component: %s, needs: {nlu: %s}, config: %s}\n",
		                      n->name, n->c.name, nlu->node, n->flow);
		break;
	case R_SELECTOR:
		n->v = V_TRAINED;
		rc = train_buf_printf(&g->nodes, "    %s: {component: %s, needs: {features: %s, nlu: %s}, "
		                      "config: %s}\n", n->name, n->c.name, p->node, nlu->node, n->flow);
		break;
	default:
		return set_at(g->err, TRAIN_ECONFIG, n->uses_at, g->path, "node '%s': %s cannot train "
		              "here", n->name, n->c.name);
	}
	return rc ? rc : add_target(g, n->name);
}

/* A predict node's train node: resource.name, else a train node of the
 * same name and class; it must have been written. */
static int predict_resource(gctx *g, gnode *n, const char **out)
{
	const char *name = n->resource ? n->resource : n->name;
	gnode *t = gfind(&g->train, name);
	if (t && t->c.k == n->c.k && !strcmp(t->c.name, n->c.name) && t->node &&
	    (t->v == V_FEATURES || t->v == V_TRAINED)) {
		*out = t->node;
		return TRAIN_OK;
	}
	return set_at(g->err, TRAIN_ECONFIG, n->resource_at ? n->resource_at : n->uses_at, g->path,
	              "node '%s': %s '%s' is no node of train_schema that trains %s", n->name,
	              n->resource ? "resource" : "without a resource, its own name", name, n->c.name);
}

static int resolve_predict(gctx *g, gschema *s, gnode *n)
{
	gnode *p = NULL;
	vkind v;
	int rc;
	const char *res = NULL;
	switch (n->c.k) {
	case G_CONVERTER:
		if ((rc = need_kind(g, s, n, "messages", V_TEXT, V_TEXT, &p, &v)))
			return rc;
		n->v = V_TEXT;
		return TRAIN_OK;
	case G_DOMAIN_PROVIDER:
	case G_RULE_DATA:
		n->v = V_NOTHING;
		return TRAIN_OK;
	case G_MSG_HANDLER:
		if ((rc = need_kind(g, s, n, data_arg(n, "messages"), V_PARSE, V_PARSE, &p, &v)))
			return rc;
		n->v = v;
		n->node = p ? p->node : NULL;
		n->feat = p ? p->feat : NULL;
		return TRAIN_OK;
	case G_POLICY:
		if (g->part == TRAIN_RASA_PART_NLU) {
			n->v = V_SKIPPED;
			return TRAIN_OK;
		}
		if ((rc = need_kind(g, s, n, "tracker", V_TRACKER, V_TRACKER, &p, &v)) ||
		    (rc = predict_resource(g, n, &res)))
			return rc;
		n->v = V_POLICY;
		n->feat = res;
		return TRAIN_OK;
	case G_ENSEMBLE:
		n->v = g->part == TRAIN_RASA_PART_NLU ? V_SKIPPED : V_TRAINED;
		return TRAIN_OK;   /* written by emit_ensemble */
	case G_PIPELINE:
		break;
	default:
		return set_at(g->err, TRAIN_ECONFIG, n->uses_at, g->path, "node '%s': %s has no place "
		              "in predict_schema", n->name, n->c.name);
	}
	if (g->part == TRAIN_RASA_PART_CORE) {
		n->v = V_SKIPPED;
		return TRAIN_OK;
	}
	const char *arg = data_arg(n, "messages");
	vkind want = n->r == R_TOKENIZER ? V_TEXT :
	             n->r == R_FEATURIZER || n->r == R_FEAT_NLU || n->r == R_CLASSIFIER ? V_FEATURES :
	             V_PARSE;
	if ((rc = need_kind(g, s, n, arg, want, want, &p, &v)))
		return rc;
	if (v == V_SKIPPED) {
		n->v = V_SKIPPED;
		return TRAIN_OK;
	}
	if (n->r != R_PARSE_ONLY && (rc = predict_resource(g, n, &res)))
		return rc;
	n->node = n->name;
	switch (n->r) {
	case R_TOKENIZER:
		n->v = V_FEATURES;
		return train_buf_printf(&g->nodes, "    %s: {component: %s, resource: %s, needs: {text: "
		                        "$input.text}, config: %s}\n", n->name, n->c.name, res, n->flow);
	case R_FEATURIZER:
	case R_FEAT_NLU:
		n->v = V_FEATURES;
		return train_buf_printf(&g->nodes, "    %s: {component: %s, resource: %s, needs: "
		                        "{features: %s}, config: %s}\n", n->name, n->c.name, res, p->node,
		                        n->flow);
	case R_CLASSIFIER:
		n->v = V_PARSE;
		n->feat = p->node;
		return train_buf_printf(&g->nodes, "    %s: {component: %s, resource: %s, needs: "
		                        "{features: %s}, config: %s}\n", n->name, n->c.name, res, p->node,
		                        n->flow);
	case R_SELECTOR:
		n->v = V_PARSE;
		n->feat = p->feat;
		return train_buf_printf(&g->nodes, "    %s: {component: %s, resource: %s, needs: "
		                        "{features: %s, parse: %s}, config: %s}\n", n->name, n->c.name, res,
		                        p->feat, p->node, n->flow);
	case R_PARSE_TRAIN:
	case R_PARSE_ONLY:
		n->v = V_PARSE;
		n->feat = p->feat;
		if (n->r == R_PARSE_ONLY)
			return train_buf_printf(&g->nodes, "    %s: {component: %s, needs: {parse: %s}, "
			                        "config: %s}\n", n->name, n->c.name, p->node, n->flow);
		return train_buf_printf(&g->nodes, "    %s: {component: %s, resource: %s, needs: {parse: "
		                        "%s}, config: %s}\n", n->name, n->c.name, res, p->node, n->flow);
	default:
		return TRAIN_ECONFIG;
	}
}

static int resolve(gctx *g, gschema *s, gnode *n)
{
	if (n->state == 2)
		return TRAIN_OK;
	if (n->state == 1)
		return set_at(g->err, TRAIN_ECONFIG, n->needs ? n->needs : n->item, g->path,
		              "node '%s' depends on itself (a cycle through its needs)", n->name);
	n->state = 1;
	/* every need names a node (or one of Rasa's placeholders) */
	for (size_t i = 0; n->needs && i < train_config_len(n->needs); i++) {
		const train_config *x = train_config_at(n->needs, i);
		const char *ref = train_config_as_string(x);
		if (!gfind(s, ref) && strcmp(ref, s->predict ? "__message__" : "__importer__") &&
		    (!s->predict || strcmp(ref, "__tracker__")))
			return set_at(g->err, TRAIN_ECONFIG, x, g->path, "node '%s' needs '%s', which is no "
			              "node of %s%s", n->name, ref, s->what, s->predict ?
			              " (nor __message__ or __tracker__)" : " (nor __importer__)");
	}
	int rc = s->predict ? resolve_predict(g, s, n) : resolve_train(g, s, n);
	n->state = 2;
	return rc;
}

/* The ensemble: its policy needs, in order, chained, then PolicyEnsemble. */
static int emit_ensemble(gctx *g, gschema *s, gnode *e)
{
	const char *prev = NULL;
	int rc = TRAIN_OK;
	for (size_t i = 0; e->needs && i < train_config_len(e->needs) && !rc; i++) {
		const char *ref = train_config_as_string(train_config_at(e->needs, i));
		gnode *p = gfind(s, ref);
		if (!p || p->v != V_POLICY)
			continue;  /* domain, tracker */
		rc = train_buf_printf(&g->nodes, "    %s: {component: %s, resource: %s, needs: "
		                      "{conversation: %s%s}, config: %s}\n", p->name, p->c.name, p->feat,
		                      prev ? "" : "$input.", prev ? prev : "conversation", p->flow);
		prev = p->name;
	}
	if (!rc && !prev)
		return set_at(g->err, TRAIN_ECONFIG, e->needs ? e->needs : e->item, g->path, "node '%s': "
		              "the ensemble needs at least one policy", e->name);
	/* named PolicyEnsemble whatever the Rasa node's name: `train predict
	 * --conversation` and `train test core` look for that target */
	gnode *clash = gfind(s, "PolicyEnsemble");
	if (!rc && clash && clash != e)
		return set_at(g->err, TRAIN_ECONFIG, clash->item, g->path, "a node named "
		              "PolicyEnsemble must be the ensemble (libtrain names the ensemble so)");
	if (!rc)
		rc = train_buf_printf(&g->nodes, "    PolicyEnsemble: {component: PolicyEnsemble, "
		                      "needs: {conversation: %s}}\n", prev);
	return rc;
}

static void free_schema(gschema *s)
{
	for (size_t i = 0; s->n && i < s->len; i++)
		free(s->n[i].flow);
	free(s->n);
}

static int graph_v1(const train_config *cfg, const char *path, train_rasa_part part,
                    const train_registry *reg, train_buf *out, train_error *err)
{
	gctx g = { .path = path, .part = part, .reg = reg, .err = err };
	int rc;
	const train_config *t[2] = { train_config_get(cfg, "nlu_target"),
		                     train_config_get(cfg, "core_target") };
	for (int i = 0; i < 2; i++)
		if (t[i] && train_config_kind(t[i]) != TRAIN_CFG_STRING)
			return set_at(err, TRAIN_ECONFIG, t[i], path, "'%s' must be a node name",
			              i ? "core_target" : "nlu_target");
	if (train_config_get(cfg, "pipeline") || train_config_get(cfg, "policies"))
		return set_at(err, TRAIN_ECONFIG, train_config_get(cfg, "pipeline") ?
		              train_config_get(cfg, "pipeline") : train_config_get(cfg, "policies"), path,
		              "recipe graph.v1 takes train_schema and predict_schema, not pipeline or "
		              "policies (those are default.v1's)");
	if (!train_config_get(cfg, "train_schema"))
		return set_at(err, TRAIN_ECONFIG, cfg, path, "recipe graph.v1 needs 'train_schema'");
	if ((rc = read_schema(&g, cfg, "train_schema", 0, &g.train)) ||
	    (rc = read_schema(&g, cfg, "predict_schema", 1, &g.predict)))
		goto out;
	for (size_t i = 0; i < g.train.len && !rc; i++)
		rc = resolve(&g, &g.train, &g.train.n[i]);
	if (rc)
		goto out;
	if (!g.n_targets) {
		rc = set_at(err, TRAIN_ECONFIG, train_config_get(cfg, "train_schema"), path,
		            "nothing to train: train_schema has no %scomponent that trains",
		            part == TRAIN_RASA_PART_NLU ? "pipeline " : part == TRAIN_RASA_PART_CORE ?
		            "policy " : "");
		goto out;
	}
	if ((rc = train_buf_printf(out, "# Generated from a Rasa config.yml (recipe: graph.v1) by "
	                           "libtrain.\nversion: 1\nname: %s\ntrain:\n  targets: [",
	                           part == TRAIN_RASA_PART_NLU ? "nlu" : part == TRAIN_RASA_PART_CORE ?
	                           "core" : "rasa")) ||
	    (rc = train_buf_add(out, g.targets.data, g.targets.len)) ||
	    (rc = train_buf_str(out, "]\n  nodes:\n")) ||
	    (rc = train_buf_add(out, g.nodes.data, g.nodes.len)))
		goto out;
	train_buf_free(&g.nodes);
	memset(&g.nodes, 0, sizeof g.nodes);
	/* predict: what the targets need */
	if (g.predict.len) {
		const char *nlu_t = t[0] ? train_config_as_string(t[0]) : "run_RegexMessageHandler";
		const char *core_t = t[1] ? train_config_as_string(t[1]) : "select_prediction";
		gnode *nt = part == TRAIN_RASA_PART_CORE ? NULL : gfind(&g.predict, nlu_t);
		gnode *ct = part == TRAIN_RASA_PART_NLU ? NULL : gfind(&g.predict, core_t);
		for (int i = 0; i < 2; i++)
			if (t[i] && !gfind(&g.predict, train_config_as_string(t[i]))) {
				rc = set_at(err, TRAIN_ECONFIG, t[i], path, "%s '%s' is no node of predict_schema",
				            i ? "core_target" : "nlu_target", train_config_as_string(t[i]));
				goto out;
			}
		if (nt && (rc = resolve(&g, &g.predict, nt)))
			goto out;
		if (ct && (rc = resolve(&g, &g.predict, ct)))
			goto out;
		if (nt && nt->v != V_PARSE && nt->v != V_SKIPPED) {
			rc = set_at(err, TRAIN_ECONFIG, nt->item, path, "nlu_target '%s' gives %s, not parsed "
			            "messages", nt->name, vkind_names[nt->v]);
			goto out;
		}
		if (ct && ct->c.k != G_ENSEMBLE) {
			rc = set_at(err, TRAIN_ECONFIG, ct->item, path, "core_target '%s' must be a "
			            "DefaultPolicyPredictionEnsemble node", ct->name);
			goto out;
		}
		if (ct) {
			/* resolve the ensemble's policies */
			for (size_t i = 0; ct->needs && i < train_config_len(ct->needs) && !rc; i++) {
				gnode *p;
				vkind v;
				const train_config *at;
				rc = need(&g, &g.predict, ct, train_config_key_at(ct->needs, i), &p, &v, &at);
			}
			if (rc || (rc = emit_ensemble(&g, &g.predict, ct)))
				goto out;
		}
		int has_nlu = nt && nt->v == V_PARSE, has_core = ct != NULL;
		if (has_nlu || has_core) {
			if ((rc = train_buf_printf(out, "predict:\n  inputs: [%s%s%s]\n  targets: [%s%s%s]\n"
			                           "  nodes:\n", has_nlu ? "text" : "",
			                           has_nlu && has_core ? ", " : "",
			                           has_core ? "conversation" : "",
			                           has_nlu ? nt->node : "", has_nlu && has_core ? ", " : "",
			                           has_core ? "PolicyEnsemble" : "")) ||
			    (rc = train_buf_add(out, g.nodes.data, g.nodes.len)))
				goto out;
		}
	}
	rc = train_buf_add(out, "", 1);
out:
	train_buf_free(&g.nodes);
	train_buf_free(&g.targets);
	free_schema(&g.train);
	free_schema(&g.predict);
	return rc;
}

int train_rasa_config_detect(const char *path)
{
	train_config *c = NULL;
	train_error err = { 0 };
	int rc = train_config_load_flags(path, TRAIN_CFG_PARSE_ALIASES, &c, &err);
	if (rc)
		return rc < 0 && rc > -4096 ? rc : 0;
	int yes = train_config_kind(c) == TRAIN_CFG_MAP && !train_config_get(c, "train") &&
	          (train_config_get(c, "pipeline") || train_config_get(c, "policies") ||
	           train_config_get(c, "recipe"));
	train_config_destroy(c);
	return yes;
}

int train_rasa_recipe_from_config(const char *path, train_rasa_part part,
                                  const train_registry *reg, char **yaml, train_error *err)
{
	train_config *cfg = NULL, *def = NULL;
	comp *pl = NULL, *po = NULL;
	size_t npl = 0, npo = 0;
	train_buf b = { 0 };
	*yaml = NULL;
	/* As Rasa reads config.yml: anchors, aliases, ${VAR} in plain scalars. */
	int rc = train_config_load_flags(path, TRAIN_CFG_PARSE_RASA, &cfg, err);
	if (rc)
		return rc;
	if (train_config_kind(cfg) != TRAIN_CFG_MAP) {
		rc = set_at(err, TRAIN_ECONFIG, cfg, path, "a Rasa config is a map with 'pipeline' and "
		            "'policies'");
		goto out;
	}
	for (size_t i = 0; i < train_config_len(cfg); i++) {
		const char *k = train_config_key_at(cfg, i);
		size_t j = 0;
		while (top_keys[j] && strcmp(top_keys[j], k))
			j++;
		if (!top_keys[j]) {
			rc = set_at(err, TRAIN_ECONFIG, train_config_key_node_at(cfg, i), path,
			            "unknown key '%s' in a Rasa config; known keys: recipe, language, "
			            "pipeline, policies, assistant_id, version (and with recipe graph.v1: "
			            "train_schema, predict_schema, nlu_target, core_target)", k);
			goto out;
		}
	}
	const train_config *recipe = train_config_get(cfg, "recipe");
	const char *rname = recipe ? train_config_as_string(recipe) : NULL;
	if (rname && !strcmp(rname, "graph.v1")) {
		rc = graph_v1(cfg, path, part, reg, &b, err);
		if (!rc) {
			*yaml = b.data;
			b.data = NULL;
		}
		goto out;
	}
	if (recipe && train_config_kind(recipe) != TRAIN_CFG_NULL &&
	    (!rname || strcmp(rname, "default.v1"))) {
		rc = set_at(err, TRAIN_ECONFIG, recipe, path, "recipe '%s' is not supported: only "
		            "default.v1 and graph.v1", rname ? rname : "?");
		goto out;
	}
	static const char *const graph_keys[] = { "train_schema", "predict_schema", "nlu_target",
		                                  "core_target" };
	for (int i = 0; i < 4; i++)
		if (train_config_get(cfg, graph_keys[i])) {
			rc = set_at(err, TRAIN_ECONFIG, train_config_get(cfg, graph_keys[i]), path,
			            "'%s' belongs to recipe graph.v1; this config's recipe is default.v1 "
			            "(add 'recipe: graph.v1')", graph_keys[i]);
			goto out;
		}
	const train_config *lists[2] = { train_config_get(cfg, "pipeline"), train_config_get(cfg, "policies") };
	const char *names[2] = { "pipeline", "policies" };
	for (int i = 0; i < 2; i++) {
		if (!lists[i] || train_config_kind(lists[i]) == TRAIN_CFG_NULL) {
			if (!def && (rc = train_config_parse(default_config, sizeof default_config - 1,
			                                     "(Rasa's default config)", &def, err)))
				goto out;
			lists[i] = train_config_get(def, names[i]);
		} else if (train_config_kind(lists[i]) != TRAIN_CFG_LIST) {
			rc = set_at(err, TRAIN_ECONFIG, lists[i], path, "'%s' must be a list of components "
			            "(- name: ...)", names[i]);
			goto out;
		}
	}
	if (part != TRAIN_RASA_PART_CORE &&
	    (rc = read_list(lists[0], pipeline_known, "pipeline", 0, reg, path, &pl, &npl, err)))
		goto out;
	if (part != TRAIN_RASA_PART_CORE && (rc = check_order(pl, npl, lists[0], path, err)))
		goto out;
	if (part != TRAIN_RASA_PART_NLU &&
	    (rc = read_list(lists[1], policy_known, "policies", 1, reg, path, &po, &npo, err)))
		goto out;
	if (!npl && !npo) {
		rc = set_at(err, TRAIN_ECONFIG, cfg, path, "nothing to train: the %s empty",
		            part == TRAIN_RASA_PART_NLU ? "pipeline is" : part == TRAIN_RASA_PART_CORE ?
		            "policies are" : "pipeline and the policies are");
		goto out;
	}
	if ((rc = emit(&b, part, pl, npl, po, npo)))
		goto out;
	*yaml = b.data;
	b.data = NULL;
out:
	train_buf_free(&b);
	free_comps(pl, npl);
	free_comps(po, npo);
	train_config_destroy(def);
	train_config_destroy(cfg);
	return rc;
}
