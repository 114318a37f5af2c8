/*
 * fuzz_config.c - the YAML readers: train_config_parse() (the config tree
 * every recipe and component config goes through) and train_recipe_parse()
 * (libtrain/recipe.h) on the same input.  Besides "no crash", it checks the
 * round trip <train/config.h> documents: the flow text of a tree parses to
 * a tree with the same canonical form, and a copy has it too.  A config
 * validation against a small parameter table runs on every map.  The
 * Rasa readers' parse (train_config_parse_flags: anchors, aliases, merge
 * keys, ${VAR}) runs too, with the same properties, and must accept what
 * the plain parse accepts with the same tree unless the text has '$' or
 * "<<".  The fast reader (libtrain/yaml_fast.c) must read every text as
 * libyaml does: the same tree with the same places, or the same error.
 */
#define FUZZ_NAME "config"
#include "fuzz.h"

#include <train/config.h>

#include "recipe.h"
#include "util.h"
#include "yaml_fast.h"

#include "../config_same.h"

static void fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz: property broken: %s\n", what);
	abort();
}

static const train_param params[] = {
	{ "epochs", TRAIN_PARAM_INT, "3", NULL },
	{ "lr", TRAIN_PARAM_FLOAT, "0.001", NULL },
	{ "name", TRAIN_PARAM_STRING, "~", NULL },
	{ "layers", TRAIN_PARAM_LIST, "[1, 2]", NULL },
	{ "opts", TRAIN_PARAM_MAP, "{}", NULL },
	{ "on", TRAIN_PARAM_BOOL, "true", NULL },
	{ "x", TRAIN_PARAM_ANY, "~", NULL },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

static void check_tree(const train_config *c)
{
	char *canon = NULL, *flow = NULL, *canon2 = NULL, *canon3 = NULL;
	size_t n = 0, n2 = 0, n3 = 0;
	train_config *back = NULL, *copy = NULL, *valid = NULL;
	train_error err;
	if (train_config_canonical(c, &canon, &n))
		fuzz_fail("canonical of a parsed tree");
	if (train_config_to_flow(c, &flow))
		fuzz_fail("to_flow of a parsed tree");
	if (train_config_parse(flow, strlen(flow), "flow", &back, &err)) {
		fprintf(stderr, "flow text: %s\nerror: %s\n", flow, err.text);
		fuzz_fail("the flow text of a tree must parse");
	}
	if (train_config_canonical(back, &canon2, &n2) || n2 != n || memcmp(canon, canon2, n)) {
		fprintf(stderr, "flow text: %s\n", flow);
		fuzz_fail("the flow text must parse to the same canonical form");
	}
	if (train_config_copy(c, &copy) || train_config_canonical(copy, &canon3, &n3) || n3 != n ||
	    memcmp(canon, canon3, n))
		fuzz_fail("a copy must have the same canonical form");
	if (train_config_kind(c) == TRAIN_CFG_MAP &&
	    train_config_validate(c, params, "component Fuzz", &valid, &err) == TRAIN_OK &&
	    train_config_len(valid) != sizeof params / sizeof params[0] - 1)
		fuzz_fail("a validated config has every declared key");
	train_config_destroy(valid);
	train_config_destroy(copy);
	train_config_destroy(back);
	free(canon3);
	free(canon2);
	free(flow);
	free(canon);
}

/* With `flags`, the fast reader's reading of the text against libyaml's. */
static void check_fast(const uint8_t *data, size_t size, unsigned flags)
{
	train_config *a = NULL, *b = NULL;
	train_error ea, eb;
	memset(&ea, 0, sizeof ea);
	memset(&eb, 0, sizeof eb);
	train_yaml_fast = 1;
	int ra = train_config_parse_flags((const char *)data, size, "fuzz.yml", flags, &a, &ea);
	train_yaml_fast = 0;
	int rb = train_config_parse_flags((const char *)data, size, "fuzz.yml", flags, &b, &eb);
	train_yaml_fast = 1;
	char why[200];
	if (ra != rb) {
		fprintf(stderr, "fast %d (%s), libyaml %d (%s)\n", ra, ea.text, rb, eb.text);
		fuzz_fail("the fast reader accepts what libyaml accepts, and only that");
	}
	if (ra == TRAIN_OK && !config_same(a, b, why, sizeof why)) {
		fprintf(stderr, "%s\n", why);
		fuzz_fail("the fast reader reads the tree libyaml reads, places included");
	}
	if (ra != TRAIN_OK && (strcmp(ea.text, eb.text) || ea.line != eb.line || ea.col != eb.col)) {
		fprintf(stderr, "%u:%u %s | %u:%u %s\n", ea.line, ea.col, ea.text, eb.line, eb.col, eb.text);
		fuzz_fail("the fast reader's errors are libyaml's");
	}
	train_config_destroy(a);
	train_config_destroy(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_fast(data, size, 0);
	check_fast(data, size, TRAIN_CFG_PARSE_RASA);

	train_config *c = NULL;
	train_error err;
	if (train_config_parse((const char *)data, size, "fuzz.yml", &c, &err) == TRAIN_OK)
		check_tree(c);
	else if (c)
		fuzz_fail("no tree on error");

	/* what only the Rasa parse reads differently: ${VAR} and "<<" keys */
	bool same = !memchr(data, '$', size) && !memmem(data, size, "<<", 2);
	train_config *x = NULL;
	int rx = train_config_parse_flags((const char *)data, size, "fuzz.yml", TRAIN_CFG_PARSE_RASA, &x, &err);
	if (rx == TRAIN_OK) {
		check_tree(x);
		if (c && same) {
			char *a = NULL, *b = NULL;
			size_t na = 0, nb = 0;
			if (train_config_canonical(c, &a, &na) || train_config_canonical(x, &b, &nb) || na != nb ||
			    memcmp(a, b, na))
				fuzz_fail("without '$' or '<<', the Rasa parse of a plain-parsed text is the same tree");
			free(a);
			free(b);
		}
	} else if (x) {
		fuzz_fail("no tree on error (Rasa parse)");
	} else if (c && same) {
		fuzz_fail("the Rasa parse accepts what the plain parse accepts");
	}
	train_config_destroy(x);
	train_config_destroy(c);

	train_recipe *r = NULL;
	if (train_recipe_parse((const char *)data, size, "fuzz.yml", NULL, &r, &err) == TRAIN_OK) {
		for (size_t i = 0; i < r->train.n_nodes; i++)
			if (train_recipe_find(&r->train, r->train.nodes[i].name) < 0)
				fuzz_fail("every node of a recipe can be found by name");
	} else if (r)
		fuzz_fail("no recipe on error");
	train_recipe_destroy(r);
	return 0;
}
