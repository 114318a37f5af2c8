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
	                                "assistant_id", "version", NULL };

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
                       const char *path, train_error *err)
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
	p[0] = (train_param){ "name", TRAIN_PARAM_STRING, NULL, "the component" };
	if (n)
		memcpy(p + 1, cls->params, n * sizeof *p);
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
		int rc = reg ? check_class(reg, item, name, path, err) : TRAIN_OK;
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
			            "pipeline, policies, assistant_id, version", k);
			goto out;
		}
	}
	const train_config *recipe = train_config_get(cfg, "recipe");
	if (recipe && train_config_kind(recipe) != TRAIN_CFG_NULL &&
	    (!train_config_as_string(recipe) || strcmp(train_config_as_string(recipe), "default.v1"))) {
		rc = set_at(err, TRAIN_ECONFIG, recipe, path, "recipe '%s' is not supported here: only "
		            "default.v1 (for an explicit graph write a libtrain recipe and give it "
		            "with --recipe)", train_config_as_string(recipe) ? train_config_as_string(recipe) : "?");
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
