/*
 * tests/test_config.c - configuration trees: YAML typing, locations, the
 * errors parsing reports, validation against parameter tables, canonical
 * bytes and flow text.
 */
#include <train/config.h>

#include "config_private.h"
#include "testlib.h"
#include "util.h"
#include "yaml_fast.h"
#include "config_same.h"

#include <dirent.h>
#include <sys/stat.h>

#include <locale.h>
#include <math.h>

/* ---- helpers ------------------------------------------------------------- */

static train_config *parse(const char *yaml)
{
	train_config *c = NULL;
	train_error err = { 0 };
	int rc = train_config_parse(yaml, strlen(yaml), "t.yml", &c, &err);
	if (rc) {
		char buf[700];
		fprintf(stderr, "unexpected parse error: %s\n", train_error_format(&err, buf, sizeof buf));
	}
	CU_ASSERT_EQUAL(rc, TRAIN_OK);
	return c;
}

/* Parse text that must fail; the formatted error goes to a static buffer. */
static int parse_err_code;
static const char *parse_err(const char *yaml)
{
	static char buf[700];
	train_config *c = NULL;
	train_error err = { 0 };
	parse_err_code = train_config_parse(yaml, strlen(yaml), "t.yml", &c, &err);
	CU_ASSERT_NOT_EQUAL(parse_err_code, TRAIN_OK);
	CU_ASSERT_PTR_NULL(c);
	train_config_destroy(c);
	return train_error_format(&err, buf, sizeof buf);
}

static bool same_canonical(const char *a, const char *b)
{
	train_config *x = parse(a), *y = parse(b);
	char *cx = NULL, *cy = NULL;
	size_t nx = 0, ny = 0;
	bool same = false;
	if (x && y && train_config_canonical(x, &cx, &nx) == 0 && train_config_canonical(y, &cy, &ny) == 0)
		same = nx == ny && memcmp(cx, cy, nx) == 0;
	free(cx);
	free(cy);
	train_config_destroy(x);
	train_config_destroy(y);
	return same;
}

/* ---- typing -------------------------------------------------------------- */

static void test_scalar_typing(void)
{
	static const struct {
		const char *text;
		train_cfg_kind kind;
	} cases[] = {
		{ "3", TRAIN_CFG_INT }, { "-3", TRAIN_CFG_INT }, { "+3", TRAIN_CFG_INT },
		{ "007", TRAIN_CFG_INT }, { "0x1F", TRAIN_CFG_INT }, { "0o17", TRAIN_CFG_INT },
		{ "3.0", TRAIN_CFG_FLOAT }, { ".5", TRAIN_CFG_FLOAT }, { "1e-3", TRAIN_CFG_FLOAT },
		{ "-1.5E+2", TRAIN_CFG_FLOAT }, { "1.", TRAIN_CFG_FLOAT }, { ".inf", TRAIN_CFG_FLOAT },
		{ "-.Inf", TRAIN_CFG_FLOAT }, { ".NaN", TRAIN_CFG_FLOAT },
		{ "true", TRAIN_CFG_BOOL }, { "True", TRAIN_CFG_BOOL }, { "FALSE", TRAIN_CFG_BOOL },
		{ "~", TRAIN_CFG_NULL }, { "null", TRAIN_CFG_NULL }, { "NULL", TRAIN_CFG_NULL },
		{ "yes", TRAIN_CFG_STRING }, { "on", TRAIN_CFG_STRING }, { "tRue", TRAIN_CFG_STRING },
		{ "1_000", TRAIN_CFG_STRING }, { "0x", TRAIN_CFG_STRING }, { "0b101", TRAIN_CFG_STRING },
		{ ".", TRAIN_CFG_STRING }, { "1e", TRAIN_CFG_STRING }, { "+.nan", TRAIN_CFG_STRING },
		{ "-0x5", TRAIN_CFG_STRING }, { "12:30", TRAIN_CFG_STRING }, { "inf", TRAIN_CFG_STRING },
		{ "\"3\"", TRAIN_CFG_STRING }, { "'true'", TRAIN_CFG_STRING }, { "\"\"", TRAIN_CFG_STRING },
		{ "!!str 3", TRAIN_CFG_STRING }, { "! 3", TRAIN_CFG_STRING }, { "|\n  3\n", TRAIN_CFG_STRING },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char doc[64];
		snprintf(doc, sizeof doc, "v: %s", cases[i].text);
		train_config *c = parse(doc);
		const train_config *v = train_config_get(c, "v");
		if (train_config_kind(v) != cases[i].kind)
			fprintf(stderr, "'%s': kind %d, expected %d\n", cases[i].text,
			        (int)train_config_kind(v), (int)cases[i].kind);
		CU_ASSERT_EQUAL(train_config_kind(v), cases[i].kind);
		train_config_destroy(c);
	}
}

static void test_scalar_values(void)
{
	train_config *c = parse("a: -42\nb: 0x1F\nc: 0o17\nd: .5\ne: 1e-3\nf: -.inf\ng: .nan\n"
	                        "h: True\ni: \"x y\"\nj:\nk: 9223372036854775807\nl: '7'\n");
	CU_ASSERT_EQUAL(train_config_int(c, "a"), -42);
	CU_ASSERT_EQUAL(train_config_int(c, "b"), 31);
	CU_ASSERT_EQUAL(train_config_int(c, "c"), 15);
	CU_ASSERT_EQUAL(train_config_float(c, "d"), 0.5);
	CU_ASSERT_EQUAL(train_config_float(c, "e"), 0.001);
	CU_ASSERT_TRUE(isinf(train_config_float(c, "f")) && train_config_float(c, "f") < 0);
	CU_ASSERT_TRUE(isnan(train_config_float(c, "g")));
	CU_ASSERT_TRUE(train_config_bool(c, "h"));
	CU_ASSERT_STRING_EQUAL(train_config_string(c, "i"), "x y");
	CU_ASSERT_EQUAL(train_config_kind(train_config_get(c, "j")), TRAIN_CFG_NULL);
	CU_ASSERT_PTR_NOT_NULL(train_config_get(c, "j"));
	CU_ASSERT_PTR_NULL(train_config_string(c, "j"));
	CU_ASSERT_EQUAL(train_config_int(c, "k"), INT64_MAX);
	CU_ASSERT_STRING_EQUAL(train_config_string(c, "l"), "7");
	/* Text of any scalar, as written. */
	CU_ASSERT_STRING_EQUAL(train_config_string(c, "b"), "0x1F");
	CU_ASSERT_STRING_EQUAL(train_config_string(c, "h"), "True");
	/* Ints convert to float; other kinds give 0 / false / NULL. */
	CU_ASSERT_EQUAL(train_config_float(c, "a"), -42.0);
	CU_ASSERT_EQUAL(train_config_int(c, "d"), 0);
	CU_ASSERT_FALSE(train_config_bool(c, "i"));
	CU_ASSERT_EQUAL(train_config_int(c, "missing"), 0);
	CU_ASSERT_PTR_NULL(train_config_get(c, "missing"));
	CU_ASSERT_PTR_NULL(train_config_get(train_config_get(c, "a"), "x"));
	CU_ASSERT_EQUAL(train_config_len(train_config_get(c, "a")), 0);
	train_config_destroy(c);
}

static void test_collections(void)
{
	train_config *c = parse("list: [1, two, {three: 3}]\nmap:\n  z: 1\n  a: 2\n  1: x\nempty: {}\n");
	const train_config *l = train_config_get(c, "list");
	CU_ASSERT_EQUAL(train_config_kind(l), TRAIN_CFG_LIST);
	CU_ASSERT_EQUAL(train_config_len(l), 3);
	CU_ASSERT_EQUAL(train_config_as_int(train_config_at(l, 0)), 1);
	CU_ASSERT_STRING_EQUAL(train_config_as_string(train_config_at(l, 1)), "two");
	CU_ASSERT_EQUAL(train_config_int(train_config_at(l, 2), "three"), 3);
	CU_ASSERT_PTR_NULL(train_config_at(l, 3));
	CU_ASSERT_PTR_NULL(train_config_key_at(l, 0));
	const train_config *m = train_config_get(c, "map");
	CU_ASSERT_EQUAL(train_config_len(m), 3);
	/* File order, keys kept as text. */
	CU_ASSERT_STRING_EQUAL(train_config_key_at(m, 0), "z");
	CU_ASSERT_STRING_EQUAL(train_config_key_at(m, 1), "a");
	CU_ASSERT_STRING_EQUAL(train_config_key_at(m, 2), "1");
	CU_ASSERT_EQUAL(train_config_as_int(train_config_at(m, 1)), 2);
	CU_ASSERT_STRING_EQUAL(train_config_string(m, "1"), "x");
	CU_ASSERT_PTR_NULL(train_config_key_at(m, 3));
	CU_ASSERT_EQUAL(train_config_kind(train_config_get(c, "empty")), TRAIN_CFG_MAP);
	CU_ASSERT_EQUAL(train_config_len(train_config_get(c, "empty")), 0);
	train_config_destroy(c);
}

static void test_empty_document(void)
{
	const char *docs[] = { "", "# only a comment\n", "---\n", "\n\n" };
	for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
		train_config *c = parse(docs[i]);
		CU_ASSERT_PTR_NOT_NULL(c);
		CU_ASSERT_EQUAL(train_config_kind(c), TRAIN_CFG_NULL);
		train_config_destroy(c);
	}
	/* NULL is harmless everywhere. */
	train_config_destroy(NULL);
	CU_ASSERT_EQUAL(train_config_kind(NULL), TRAIN_CFG_NULL);
	CU_ASSERT_EQUAL(train_config_line(NULL), 0);
	CU_ASSERT_STRING_EQUAL(train_config_file(NULL), "");
}

/* ---- locations ----------------------------------------------------------- */

static void test_locations(void)
{
	train_config *c = parse("# comment\ntop:\n  epochs: 10\n  list:\n    - a\n    - {x: 1}\n");
	const train_config *top = train_config_get(c, "top");
	CU_ASSERT_STRING_EQUAL(train_config_file(c), "t.yml");
	CU_ASSERT_EQUAL(train_config_line(c), 2);
	CU_ASSERT_EQUAL(train_config_col(c), 1);
	const train_config *ep = train_config_get(top, "epochs");
	CU_ASSERT_EQUAL(train_config_line(ep), 3);
	CU_ASSERT_EQUAL(train_config_col(ep), 11);
	const train_config *k = train_config_key_node_at(top, 0);
	CU_ASSERT_STRING_EQUAL(train_config_as_string(k), "epochs");
	CU_ASSERT_EQUAL(train_config_line(k), 3);
	CU_ASSERT_EQUAL(train_config_col(k), 3);
	const train_config *l = train_config_get(top, "list");
	CU_ASSERT_EQUAL(train_config_line(train_config_at(l, 0)), 5);
	CU_ASSERT_EQUAL(train_config_col(train_config_at(l, 0)), 7);
	const train_config *x = train_config_get(train_config_at(l, 1), "x");
	CU_ASSERT_EQUAL(train_config_line(x), 6);
	CU_ASSERT_EQUAL(train_config_col(x), 11);
	train_config_destroy(c);
}

/* ---- parse errors -------------------------------------------------------- */

static void test_duplicate_keys(void)
{
	CU_ASSERT_STRING_EQUAL(parse_err("a: 1\nb:\n  x: 1\n  y: 2\n  x: 3\n"),
	                       "t.yml:5:3: duplicate key 'x' (first at line 3)");
	CU_ASSERT_EQUAL(parse_err_code, TRAIN_EEXIST);
	/* Quoting does not make a key different. */
	CU_ASSERT_STRING_EQUAL(parse_err("{a: 1, \"a\": 2}"), "t.yml:1:8: duplicate key 'a' (first at line 1)");
	/* The same key in two maps is fine. */
	train_config *c = parse("a: {x: 1}\nb: {x: 2}\n");
	train_config_destroy(c);
}

/* Big maps are indexed: lookups, duplicates and copies still work. */
static void test_big_map(void)
{
	char *doc = malloc(200 * 32);
	size_t o = 0;
	for (int i = 0; i < 200; i++)
		o += (size_t)sprintf(doc + o, "k%d: %d\n", i, i * 2);
	train_config *c = parse(doc), *d = NULL;
	CU_ASSERT_EQUAL(train_config_len(c), 200);
	for (int i = 0; i < 200; i++) {
		char k[16];
		snprintf(k, sizeof k, "k%d", i);
		CU_ASSERT_EQUAL(train_config_int(c, k), i * 2);
	}
	CU_ASSERT_PTR_NULL(train_config_get(c, "k200"));
	CU_ASSERT_EQUAL(train_config_copy(c, &d), TRAIN_OK);
	CU_ASSERT_EQUAL(train_config_int(d, "k123"), 246);
	train_config_destroy(d);
	train_config_destroy(c);
	sprintf(doc + o, "k77: x\n");
	CU_ASSERT_STRING_EQUAL(parse_err(doc), "t.yml:201:1: duplicate key 'k77' (first at line 78)");
	free(doc);
}

static void test_parse_errors(void)
{
	CU_ASSERT_STRING_EQUAL(parse_err("a:\n\tb: 2\n"),
	                       "t.yml:2:1: while scanning for the next token: "
	                       "found character that cannot start any token");
	CU_ASSERT_EQUAL(parse_err_code, TRAIN_EPARSE);
	CU_ASSERT_STRING_EQUAL(parse_err("a: 1\n\tb: 2\n"),
	                       "t.yml:2:1: while scanning a plain scalar (line 1, column 4): "
	                       "found a tab character that violates indentation");
	CU_ASSERT_EQUAL(parse_err_code, TRAIN_EPARSE);
	CU_ASSERT_STRING_EQUAL(parse_err("a: [1, 2\nb: 3\n"),
	                       "t.yml:2:2: while parsing a flow sequence (line 1, column 4): "
	                       "did not find expected ',' or ']'");
	CU_ASSERT_STRING_EQUAL(parse_err("a: &x 1\nb: *x\n"),
	                       "t.yml:1:4: anchor 'x': anchors and aliases are not supported");
	CU_ASSERT_STRING_EQUAL(parse_err("- *x\n"), "t.yml:1:3: aliases are not supported");
	CU_ASSERT_STRING_EQUAL(parse_err("a: 1\n---\nb: 2\n"), "t.yml:2:1: multiple documents are not supported");
	CU_ASSERT_STRING_EQUAL(parse_err("? [a]\n: 1\n"), "t.yml:1:3: map keys must be scalars");
	CU_ASSERT_STRING_EQUAL(parse_err("n: 9223372036854775808\n"),
	                       "t.yml:1:4: integer out of range: 9223372036854775808");
	CU_ASSERT_STRING_EQUAL(parse_err("n: 0x8000000000000000\n"),
	                       "t.yml:1:4: integer out of range: 0x8000000000000000");
	CU_ASSERT_STRING_EQUAL(parse_err("n: 1e999\n"),
	                       "t.yml:1:4: number out of range (write .inf for infinity): 1e999");
	CU_ASSERT_STRING_EQUAL(parse_err("n: !!int 3\n"), "t.yml:1:4: tag 'tag:yaml.org,2002:int' is not supported");
	CU_ASSERT_STRING_EQUAL(parse_err("n: !!set {a: 1}\n"), "t.yml:1:4: tag 'tag:yaml.org,2002:set' is not supported");
	CU_ASSERT_EQUAL(strncmp(parse_err("a: \"\\xff\xff\"\n"), "t.yml:1:", 8), 0); /* invalid UTF-8 */
	CU_ASSERT_EQUAL(parse_err_code, TRAIN_EPARSE);
	/* Nesting is limited, not a stack overflow. */
	char deep[2000];
	memset(deep, '[', 1000);
	memset(deep + 1000, ']', 999);
	deep[1999] = '\0';
	deep[1000] = '\0';
	CU_ASSERT_PTR_NOT_NULL(strstr(parse_err(deep), "nested more than 256 levels deep"));
}

static void test_load(void)
{
	const char *dir = test_tmpdir();
	char path[600], buf[700];
	snprintf(path, sizeof path, "%s/c.yml", dir);
	test_write(path, "x: 1\ny: [a, b]\n");
	train_config *c = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL(train_config_load(path, &c, &err), TRAIN_OK);
	CU_ASSERT_EQUAL(train_config_int(c, "x"), 1);
	CU_ASSERT_STRING_EQUAL(train_config_file(c), path);
	train_config_destroy(c);
	snprintf(path, sizeof path, "%s/missing.yml", dir);
	c = (train_config *)1;
	CU_ASSERT_NOT_EQUAL(train_config_load(path, &c, &err), TRAIN_OK);
	CU_ASSERT_PTR_NULL(c);
	CU_ASSERT_PTR_NOT_NULL(strstr(train_error_format(&err, buf, sizeof buf), "missing.yml"));
}

static void test_copy(void)
{
	train_config *c = parse("a: {b: [1, 2.5, x, ~, true]}\n"), *d = NULL;
	CU_ASSERT_EQUAL(train_config_copy(c, &d), TRAIN_OK);
	char *fc = NULL, *fd = NULL;
	size_t nc = 0, nd = 0;
	CU_ASSERT_EQUAL(train_config_canonical(c, &fc, &nc), 0);
	CU_ASSERT_EQUAL(train_config_canonical(d, &fd, &nd), 0);
	CU_ASSERT_TRUE(nc == nd && memcmp(fc, fd, nc) == 0);
	const train_config *b = train_config_get(train_config_get(d, "a"), "b");
	CU_ASSERT_EQUAL(train_config_line(b), 1);
	CU_ASSERT_EQUAL(train_config_col(b), 8);
	CU_ASSERT_STRING_EQUAL(train_config_file(b), "t.yml");
	free(fc);
	free(fd);
	train_config_destroy(c);
	train_config_destroy(d);
	CU_ASSERT_EQUAL(train_config_copy(NULL, &d), TRAIN_EINVAL);
}

/* ---- validation ---------------------------------------------------------- */

static const train_param wc_params[] = {
	{ "epochs", TRAIN_PARAM_INT, NULL, "passes over the data" },
	{ "lr", TRAIN_PARAM_FLOAT, "0.001", "learning rate" },
	{ "lower", TRAIN_PARAM_BOOL, "true", NULL },
	{ "name", TRAIN_PARAM_STRING, "~", NULL },
	{ "data", TRAIN_PARAM_PATH, "data.tsv", NULL },
	{ "layers", TRAIN_PARAM_LIST, "[64, 32]", NULL },
	{ "extra", TRAIN_PARAM_ANY, "~", NULL },
	{ "opts", TRAIN_PARAM_MAP, "{}", NULL },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

static int validate(const char *yaml, train_config **out, char *msg, size_t cap)
{
	train_config *u = parse(yaml);
	train_error err = { 0 };
	*out = NULL;
	int rc = train_config_validate(u, wc_params, "component WordCount", out, &err);
	if (rc)
		train_error_format(&err, msg, cap);
	else
		msg[0] = '\0';
	train_config_destroy(u);
	return rc;
}

static void test_validate_ok(void)
{
	train_config *v = NULL;
	char msg[700];
	CU_ASSERT_EQUAL(validate("lr: 1\nepochs: 3\nname: 42\n", &v, msg, sizeof msg), TRAIN_OK);
	CU_ASSERT_EQUAL(train_config_len(v), 8);
	/* Declaration order, every key. */
	CU_ASSERT_STRING_EQUAL(train_config_key_at(v, 0), "epochs");
	CU_ASSERT_STRING_EQUAL(train_config_key_at(v, 7), "opts");
	CU_ASSERT_EQUAL(train_config_int(v, "epochs"), 3);
	/* int -> float where a float is declared */
	CU_ASSERT_EQUAL(train_config_kind(train_config_get(v, "lr")), TRAIN_CFG_FLOAT);
	CU_ASSERT_EQUAL(train_config_float(v, "lr"), 1.0);
	/* any scalar -> its text where a string is declared */
	CU_ASSERT_EQUAL(train_config_kind(train_config_get(v, "name")), TRAIN_CFG_STRING);
	CU_ASSERT_STRING_EQUAL(train_config_string(v, "name"), "42");
	/* defaults, typed, without a location */
	CU_ASSERT_TRUE(train_config_bool(v, "lower"));
	CU_ASSERT_STRING_EQUAL(train_config_string(v, "data"), "data.tsv");
	CU_ASSERT_EQUAL(train_config_len(train_config_get(v, "layers")), 2);
	CU_ASSERT_EQUAL(train_config_as_int(train_config_at(train_config_get(v, "layers"), 1)), 32);
	CU_ASSERT_EQUAL(train_config_kind(train_config_get(v, "extra")), TRAIN_CFG_NULL);
	CU_ASSERT_EQUAL(train_config_kind(train_config_get(v, "opts")), TRAIN_CFG_MAP);
	CU_ASSERT_EQUAL(train_config_float(v, "lr"), 1.0);
	CU_ASSERT_EQUAL(train_config_line(train_config_get(v, "lower")), 0);
	/* the user's values keep their location */
	CU_ASSERT_EQUAL(train_config_line(train_config_get(v, "epochs")), 2);
	CU_ASSERT_EQUAL(train_config_col(train_config_get(v, "epochs")), 9);
	train_config_destroy(v);

	/* null is fine where the default is null; ANY takes anything */
	CU_ASSERT_EQUAL(validate("epochs: 1\nname: ~\nextra: {a: [1]}\n", &v, msg, sizeof msg), TRAIN_OK);
	CU_ASSERT_EQUAL(train_config_kind(train_config_get(v, "extra")), TRAIN_CFG_MAP);
	train_config_destroy(v);

	/* "no config" with no required key */
	static const train_param opt_only[] = {
		{ "k", TRAIN_PARAM_INT, "5", NULL },
		{ NULL, TRAIN_PARAM_END, NULL, NULL },
	};
	train_error err = { 0 };
	CU_ASSERT_EQUAL(train_config_validate(NULL, opt_only, "component X", &v, &err), TRAIN_OK);
	CU_ASSERT_EQUAL(train_config_int(v, "k"), 5);
	train_config_destroy(v);
	train_config *nul = parse("");
	CU_ASSERT_EQUAL(train_config_validate(nul, opt_only, "component X", &v, &err), TRAIN_OK);
	CU_ASSERT_EQUAL(train_config_int(v, "k"), 5);
	train_config_destroy(v);
	train_config_destroy(nul);
}

static void test_validate_errors(void)
{
	train_config *v = NULL;
	char msg[700];
	CU_ASSERT_EQUAL(validate("epochs: 1\nepochz: 2\n", &v, msg, sizeof msg), TRAIN_ECONFIG);
	CU_ASSERT_PTR_NULL(v);
	CU_ASSERT_STRING_EQUAL(msg, "t.yml:2:1: unknown key 'epochz' for component WordCount; known keys: "
	                            "epochs, lr, lower, name, data, layers, extra, opts");
	CU_ASSERT_EQUAL(validate("epochs: ten\n", &v, msg, sizeof msg), TRAIN_ECONFIG);
	CU_ASSERT_STRING_EQUAL(msg, "t.yml:1:9: 'epochs' must be an integer, not the string \"ten\"");
	CU_ASSERT_EQUAL(validate("epochs: 1.5\n", &v, msg, sizeof msg), TRAIN_ECONFIG);
	CU_ASSERT_STRING_EQUAL(msg, "t.yml:1:9: 'epochs' must be an integer, not the number 1.5");
	CU_ASSERT_EQUAL(validate("epochs: 1\nlr: fast\n", &v, msg, sizeof msg), TRAIN_ECONFIG);
	CU_ASSERT_STRING_EQUAL(msg, "t.yml:2:5: 'lr' must be a number, not the string \"fast\"");
	CU_ASSERT_EQUAL(validate("epochs: 1\nlower: 1\n", &v, msg, sizeof msg), TRAIN_ECONFIG);
	CU_ASSERT_STRING_EQUAL(msg, "t.yml:2:8: 'lower' must be true or false, not the integer 1");
	CU_ASSERT_EQUAL(validate("epochs: 1\ndata: 7\n", &v, msg, sizeof msg), TRAIN_ECONFIG);
	CU_ASSERT_STRING_EQUAL(msg, "t.yml:2:7: 'data' must be a path (a string), not the integer 7");
	CU_ASSERT_EQUAL(validate("epochs: 1\nlayers: {a: 1}\n", &v, msg, sizeof msg), TRAIN_ECONFIG);
	CU_ASSERT_STRING_EQUAL(msg, "t.yml:2:9: 'layers' must be a list, not a map");
	CU_ASSERT_EQUAL(validate("epochs: 1\nopts: [1]\n", &v, msg, sizeof msg), TRAIN_ECONFIG);
	CU_ASSERT_STRING_EQUAL(msg, "t.yml:2:7: 'opts' must be a map, not a list");
	CU_ASSERT_EQUAL(validate("epochs: 1\nlr: ~\n", &v, msg, sizeof msg), TRAIN_ECONFIG);
	CU_ASSERT_STRING_EQUAL(msg, "t.yml:2:5: 'lr' must be a number, not null");
	CU_ASSERT_EQUAL(validate("epochs: 1\nname: [a]\n", &v, msg, sizeof msg), TRAIN_ECONFIG);
	CU_ASSERT_STRING_EQUAL(msg, "t.yml:2:7: 'name' must be a string, not a list");
	CU_ASSERT_EQUAL(validate("lr: 0.1\n", &v, msg, sizeof msg), TRAIN_ECONFIG);
	CU_ASSERT_STRING_EQUAL(msg, "t.yml:1:1: missing required key 'epochs' for component WordCount");
	CU_ASSERT_EQUAL(validate("[1, 2]\n", &v, msg, sizeof msg), TRAIN_EINVAL);
	CU_ASSERT_STRING_EQUAL(msg, "t.yml:1:1: config of component WordCount must be a map, not a list");
	CU_ASSERT_PTR_NULL(v);

	/* A component's bad default is reported as such. */
	static const train_param bad_def[] = {
		{ "k", TRAIN_PARAM_INT, "[1", NULL },
		{ NULL, TRAIN_PARAM_END, NULL, NULL },
	};
	static const train_param mistyped_def[] = {
		{ "k", TRAIN_PARAM_INT, "x", NULL },
		{ NULL, TRAIN_PARAM_END, NULL, NULL },
	};
	static const train_param none[] = { { NULL, TRAIN_PARAM_END, NULL, NULL } };
	train_error err = { 0 };
	CU_ASSERT_EQUAL(train_config_validate(NULL, bad_def, "component X", &v, &err), TRAIN_ECONFIG);
	CU_ASSERT_EQUAL(strncmp(err.text, "bad default for 'k' of component X: ", 36), 0);
	CU_ASSERT_EQUAL(train_config_validate(NULL, mistyped_def, "component X", &v, &err), TRAIN_ECONFIG);
	CU_ASSERT_STRING_EQUAL(err.text, "bad default for 'k' of component X: must be an integer, not the string \"x\"");
	train_config *u = parse("a: 1\n");
	CU_ASSERT_EQUAL(train_config_validate(u, none, "component X", &v, &err), TRAIN_ECONFIG);
	CU_ASSERT_STRING_EQUAL(err.text, "unknown key 'a' for component X; known keys: (none)");
	CU_ASSERT_EQUAL(train_config_validate(u, NULL, "component X", &v, &err), TRAIN_ECONFIG);
	CU_ASSERT_STRING_EQUAL(err.text, "unknown key 'a' for component X; known keys: (none)");
	CU_ASSERT_EQUAL(train_config_validate(NULL, NULL, NULL, &v, &err), TRAIN_OK);
	CU_ASSERT_EQUAL(train_config_len(v), 0);
	train_config_destroy(v);
	train_config_destroy(u);
}

/* ---- canonical form ------------------------------------------------------ */

static void test_canonical_equal(void)
{
	static const char *pairs[][2] = {
		{ "a: 1\nb: 2\n", "b: 2\na: 1\n" },
		{ "a: 1\nb: 2\n", "{a: 1, b: 2}" },
		{ "a:   1\nb:    [x,   y]\n", "b:\n  - x\n  - y\na: 1\n" },
		{ "lr: 1e-3\n", "lr: 0.001\n" },
		{ "lr: 0.5\n", "lr: .5\n" },
		{ "lr: 1.0\n", "lr: 1.\n" },
		{ "lr: 100.0\n", "lr: 1e2\n" },
		{ "s: \"x\"\n", "s: x\n" },
		{ "s: 'it''s'\n", "s: \"it's\"\n" },
		{ "n: 16\n", "n: 0x10\n" },
		{ "n: 8\n", "n: 0o10\n" },
		{ "n: 7\n", "n: +007\n" },
		{ "b: true\n", "b: TRUE\n" },
		{ "z: ~\n", "z: null\n" },
		{ "z: ~\n", "z:\n" },
		{ "f: .inf\n", "f: .INF\n" },
		{ "f: .nan\n", "f: .NaN\n" },
		{ "\"k\": 1\n", "k: 1\n" },
		{ "m: {b: {d: 1, c: 2}, a: [1, {y: 2, x: 1}]}\n",
		  "m:\n  a:\n  - 1\n  - x: 1\n    y: 2\n  b:\n    c: 2\n    d: 1\n" },
		{ "t: |\n  a\n  b\n", "t: \"a\\nb\\n\"\n" },
		{ "# comment\nx: 1 # trailing\n", "x: 1" },
	};
	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
		bool same = same_canonical(pairs[i][0], pairs[i][1]);
		if (!same)
			fprintf(stderr, "differ: [%s] [%s]\n", pairs[i][0], pairs[i][1]);
		CU_ASSERT_TRUE(same);
	}
}

static void test_canonical_differ(void)
{
	static const char *pairs[][2] = {
		{ "a: 1\n", "a: 2\n" },
		{ "a: 1\n", "b: 1\n" },
		{ "a: 1\n", "a: 1.0\n" },
		{ "a: 1\n", "a: \"1\"\n" },
		{ "a: true\n", "a: \"true\"\n" },
		{ "a: ~\n", "a: \"\"\n" },
		{ "a: ~\n", "a: \"~\"\n" },
		{ "a: 0.0\n", "a: -0.0\n" },
		{ "a: 0.1\n", "a: 0.10000000000000002\n" },
		{ "a: .inf\n", "a: -.inf\n" },
		{ "a: [1, 2]\n", "a: [2, 1]\n" },
		{ "a: [1, 2]\n", "a: [1, 2, 3]\n" },
		{ "a: [[1], 2]\n", "a: [1, [2]]\n" },
		{ "a: {}\n", "a: []\n" },
		{ "a: {b: {c: 1}}\n", "a: {b: {c: 2}}\n" },
		{ "a: {b: 1}\n", "a: {b: 1, c: 1}\n" },
		{ "a: x y\n", "a: x  y\n" },
		{ "ab: c\n", "a: bc\n" },
		{ "a: [ab, c]\n", "a: [a, bc]\n" },
		{ "a: \"x\\0y\"\n", "a: \"x\\0z\"\n" },
	};
	for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
		bool same = same_canonical(pairs[i][0], pairs[i][1]);
		if (same)
			fprintf(stderr, "same: [%s] [%s]\n", pairs[i][0], pairs[i][1]);
		CU_ASSERT_FALSE(same);
	}
}

static void test_canonical_bytes(void)
{
	train_config *c = parse("{b: [1.5, x], a: ~, c: true}");
	char *buf = NULL;
	size_t n = 0;
	CU_ASSERT_EQUAL(train_config_canonical(c, &buf, &n), TRAIN_OK);
	static const char expect[] =
		"M\3\0\0\0\0\0\0\0"
		"\1\0\0\0\0\0\0\0a" "N"
		"\1\0\0\0\0\0\0\0b" "L\2\0\0\0\0\0\0\0" "D\3\0\0\0\0\0\0\0" "1.5" "S\1\0\0\0\0\0\0\0x"
		"\1\0\0\0\0\0\0\0c" "T";
	CU_ASSERT_EQUAL(n, sizeof expect - 1);
	CU_ASSERT_TRUE(n == sizeof expect - 1 && memcmp(buf, expect, n) == 0);
	free(buf);
	train_config_destroy(c);

	/* Shortest round-trip spellings. */
	static const struct {
		const char *yaml, *text;
	} floats[] = {
		{ "0.1", "0.1" }, { "1e-3", "0.001" }, { "1e21", "1e+21" }, { "-0.0", "-0" },
		{ "0.30000000000000004", "0.30000000000000004" }, { ".nan", "nan" }, { "-.inf", "-inf" },
		{ "2.5e-308", "2.5e-308" }, { "100.0", "1e+02" },
	};
	for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
		c = parse(floats[i].yaml);
		CU_ASSERT_EQUAL(train_config_canonical(c, &buf, &n), TRAIN_OK);
		size_t tl = strlen(floats[i].text);
		bool ok = n == 9 + tl && buf[0] == 'D' && (unsigned char)buf[1] == tl &&
		          memcmp(buf + 9, floats[i].text, tl) == 0;
		if (!ok)
			fprintf(stderr, "%s: got %.*s\n", floats[i].yaml, (int)(n > 9 ? n - 9 : 0), buf + 9);
		CU_ASSERT_TRUE(ok);
		free(buf);
		train_config_destroy(c);
	}
	CU_ASSERT_EQUAL(train_config_canonical(NULL, &buf, &n), TRAIN_OK);
	CU_ASSERT_TRUE(n == 1 && buf[0] == 'N');
	free(buf);
}

/* Validated configs: `lr: 1` and `lr: 1.0` mean the same there. */
static void test_canonical_validated(void)
{
	static const train_param ps[] = {
		{ "lr", TRAIN_PARAM_FLOAT, "0.5", NULL },
		{ "n", TRAIN_PARAM_INT, "3", NULL },
		{ NULL, TRAIN_PARAM_END, NULL, NULL },
	};
	const char *docs[] = { "lr: 1\n", "{lr: 1.0, n: 3}", "n: 0x3\nlr: 1e0\n" };
	char *first = NULL;
	size_t first_n = 0;
	for (size_t i = 0; i < 3; i++) {
		train_config *u = parse(docs[i]), *v = NULL;
		char *buf = NULL;
		size_t n = 0;
		CU_ASSERT_EQUAL(train_config_validate(u, ps, "component X", &v, NULL), TRAIN_OK);
		CU_ASSERT_EQUAL(train_config_canonical(v, &buf, &n), TRAIN_OK);
		if (!first) {
			first = buf;
			first_n = n;
		} else {
			CU_ASSERT_TRUE(n == first_n && memcmp(buf, first, n) == 0);
			free(buf);
		}
		train_config_destroy(u);
		train_config_destroy(v);
	}
	free(first);
}

/* ---- flow text ----------------------------------------------------------- */

static void check_flow(const char *yaml, const char *expect)
{
	train_config *c = parse(yaml);
	char *flow = NULL;
	CU_ASSERT_EQUAL(train_config_to_flow(c, &flow), TRAIN_OK);
	if (strcmp(flow, expect) != 0)
		fprintf(stderr, "flow of [%s]: got [%s], expected [%s]\n", yaml, flow, expect);
	CU_ASSERT_STRING_EQUAL(flow, expect);
	/* and it reads back to the same tree */
	CU_ASSERT_TRUE(same_canonical(yaml, flow));
	free(flow);
	train_config_destroy(c);
}

static void test_flow(void)
{
	check_flow("b: 1\na: [x, 2.5, true, ~]\n", "{b: 1, a: [x, 2.5, true, null]}");
	check_flow("lr: 1.0\nbig: 1e300\nneg: -0.0\n", "{lr: 1.0, big: 1e+300, neg: -0.0}");
	check_flow("f: [.inf, -.inf, .nan]\n", "{f: [.inf, -.inf, .nan]}");
	check_flow("n: 0x10\n", "{n: 16}");
	check_flow("s: [\"3\", \"true\", \"\", \"~\", \"null\", \"1e3\", \".inf\"]\n",
	           "{s: [\"3\", \"true\", \"\", \"~\", \"null\", \"1e3\", \".inf\"]}");
	check_flow("s: [\"a: b\", \"x, y\", \"[z]\", \"#c\", \" pad\", \"-\", \"- x\", \"q\\\"\", \"t\\tn\\n\"]\n",
	           "{s: [\"a: b\", \"x, y\", \"[z]\", \"#c\", \" pad\", \"-\", \"- x\", \"q\\\"\", \"t\\tn\\n\"]}");
	check_flow("p: data/train.tsv\nc: plugin/Name\nw: two words\nu: \"caf\xc3\xa9\"\n",
	           "{p: data/train.tsv, c: plugin/Name, w: two words, u: \"caf\xc3\xa9\"}");
	check_flow("\"key: x\": 1\n\"3\": 2\n", "{\"key: x\": 1, \"3\": 2}");
	/* document markers and '@' are quoted: " ---" is the string "---" */
	check_flow(" ---\n", "\"---\"");
	check_flow("- ...x\n- '@a'\n- a@b\n", "[\"...x\", \"@a\", a@b]");
	/* a key longer than a simple key may be is written as an explicit one */
	char longkey[1200], expect[1300];
	memset(longkey, 0, sizeof longkey);
	strcpy(longkey, "k: 1\n\"");
	memset(longkey + strlen(longkey), 'q', 1010);
	strcat(longkey, "\": 2\n");
	memset(expect, 0, sizeof expect);
	strcpy(expect, "{k: 1, ? ");
	memset(expect + strlen(expect), 'q', 1010);
	strcat(expect, ": 2}");
	check_flow(longkey, expect);
	check_flow("a: {}\nb: []\n", "{a: {}, b: []}");
	check_flow("z: \"\\0\\x01\"\n", "{z: \"\\0\\x01\"}");
	check_flow("", "null");
	check_flow("7", "7");
	char *flow = NULL;
	CU_ASSERT_EQUAL(train_config_to_flow(NULL, &flow), TRAIN_OK);
	CU_ASSERT_STRING_EQUAL(flow, "null");
	free(flow);
}

/* A host that switched to a locale with a decimal comma changes nothing. */
static void test_locale(void)
{
	const char *locs[] = { "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "ru_RU.UTF-8" };
	const char *set = NULL;
	for (size_t i = 0; i < 4 && !set; i++)
		set = setlocale(LC_NUMERIC, locs[i]);
	if (!set) {
		/* Nothing to test without such a locale; the other tests still count. */
		fprintf(stderr, "(no decimal-comma locale installed; locale test is a no-op)\n");
		return;
	}
	train_config *c = parse("x: 0.5\n");
	CU_ASSERT_EQUAL(train_config_float(c, "x"), 0.5);
	char *flow = NULL;
	CU_ASSERT_EQUAL(train_config_to_flow(c, &flow), TRAIN_OK);
	CU_ASSERT_STRING_EQUAL(flow, "{x: 0.5}");
	free(flow);
	train_config_destroy(c);
	setlocale(LC_NUMERIC, "C");
}

/* ------------------------------------------------------------------------
 * The Rasa readers' extensions (train_config_parse_flags).
 */

/* Parse with flags into flow text ("" on an error, whose text goes to *msg). */
static const char *rflow(const char *yaml, unsigned flags, const char **msg)
{
	static char buf[700];
	static char *last;
	train_config *c = NULL;
	train_error err = { 0 };
	free(last);
	last = NULL;
	*msg = "";
	if (train_config_parse_flags(yaml, strlen(yaml), "t.yml", flags, &c, &err)) {
		CU_ASSERT_PTR_NULL(c);
		*msg = train_error_format(&err, buf, sizeof buf);
		return "";
	}
	CU_ASSERT_EQUAL(train_config_to_flow(c, &last), TRAIN_OK);
	train_config_destroy(c);
	return last ? last : "";
}

static void test_aliases(void)
{
	const char *m;
	const unsigned A = TRAIN_CFG_PARSE_ALIASES;
	CU_ASSERT_STRING_EQUAL(rflow("a: &x 1\nb: *x\n", A, &m), "{a: 1, b: 1}");
	CU_ASSERT_STRING_EQUAL(rflow("a: &l [p, q]\nb: *l\nc: *l\n", A, &m),
	                       "{a: [p, q], b: [p, q], c: [p, q]}");
	/* a later anchor of the same name wins from there on */
	CU_ASSERT_STRING_EQUAL(rflow("- &x 1\n- *x\n- &x 2\n- *x\n", A, &m), "[1, 1, 2, 2]");
	/* merge keys: written keys win, the first map of a list wins */
	CU_ASSERT_STRING_EQUAL(rflow("d: &d {k: 1, v: 2}\ne: {<<: *d, v: 3}\n", A, &m),
	                       "{d: {k: 1, v: 2}, e: {v: 3, k: 1}}");
	CU_ASSERT_STRING_EQUAL(rflow("a: &a {k: 1}\nb: &b {k: 2, j: 3}\nc:\n  <<: [*a, *b]\n", A, &m),
	                       "{a: {k: 1}, b: {k: 2, j: 3}, c: {k: 1, j: 3}}");
	/* the alias keeps the anchor's place (a block map's: its anchor's line) */
	train_config *c = NULL;
	train_error err = { 0 };
	const char *y = "a: &x\n  k: 1\nb: *x\n";
	CU_ASSERT_EQUAL_FATAL(train_config_parse_flags(y, strlen(y), "t.yml", A, &c, &err), TRAIN_OK);
	CU_ASSERT_EQUAL(train_config_line(train_config_get(c, "b")), 1);
	train_config_destroy(c);
	/* a quoted "<<" is a plain key */
	CU_ASSERT_STRING_EQUAL(rflow("\"<<\": 1\n", A, &m), "{\"<<\": 1}");
	/* errors */
	CU_ASSERT_STRING_EQUAL(rflow("a: *nope\n", A, &m), "");
	CU_ASSERT_STRING_EQUAL(m, "t.yml:1:4: alias '*nope' names no anchor before it");
	CU_ASSERT_STRING_EQUAL(rflow("a: &k x\n*k : 1\n", A, &m), "");
	CU_ASSERT_STRING_EQUAL(m, "t.yml:2:1: an alias as a map key is not supported");
	CU_ASSERT_STRING_EQUAL(rflow("a: &s x\nb:\n  <<: *s\n", A, &m), "");
	CU_ASSERT_STRING_EQUAL(m, "t.yml:1:4: the value of a merge key '<<' must be a map or a list of maps");
	/* without the flag: refused as before */
	CU_ASSERT_STRING_EQUAL(rflow("a: &x 1\nb: *x\n", 0, &m), "");
	CU_ASSERT_STRING_EQUAL(m, "t.yml:1:4: anchor 'x': anchors and aliases are not supported");
	/* a billion laughs stops at the copy budget, with a message */
	char lol[2048];
	size_t o = (size_t)snprintf(lol, sizeof lol, "a: &a [x, x, x, x, x, x, x, x, x, x]\n");
	for (char ch = 'b'; ch <= 'i'; ch++)
		o += (size_t)snprintf(lol + o, sizeof lol - o, "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n",
		                      ch, ch, ch - 1, ch - 1, ch - 1, ch - 1, ch - 1, ch - 1, ch - 1, ch - 1, ch - 1, ch - 1);
	CU_ASSERT_STRING_EQUAL(rflow(lol, A, &m), "");
	CU_ASSERT_PTR_NOT_NULL(strstr(m, "aliases expand to more than 1000000 nodes"));
}

static void test_env(void)
{
	const char *m;
	const unsigned E = TRAIN_CFG_PARSE_ENV;
	setenv("TRAIN_TEST_ENV_A", "alpha", 1);
	setenv("TRAIN_TEST_ENV_N", "5005", 1);
	unsetenv("TRAIN_TEST_ENV_UNSET");
	CU_ASSERT_STRING_EQUAL(rflow("a: ${TRAIN_TEST_ENV_A}\n", E, &m), "{a: alpha}");
	/* the result is a string, whatever it looks like */
	CU_ASSERT_STRING_EQUAL(rflow("p: ${TRAIN_TEST_ENV_N}\n", E, &m), "{p: \"5005\"}");
	/* prefix, suffix, and $NAME too once the value has a ${...} */
	CU_ASSERT_STRING_EQUAL(rflow("u: http://${TRAIN_TEST_ENV_A}:$TRAIN_TEST_ENV_N/x\n", E, &m),
	                       "{u: \"http://alpha:5005/x\"}");
	/* quoted and block scalars, and plain ones without ${...}, stay as written */
	CU_ASSERT_STRING_EQUAL(rflow("a: \"${TRAIN_TEST_ENV_A}\"\nb: $TRAIN_TEST_ENV_A\nc: |\n  ${TRAIN_TEST_ENV_A}\n", E, &m),
	                       "{a: \"${TRAIN_TEST_ENV_A}\", b: \"$TRAIN_TEST_ENV_A\", c: \"${TRAIN_TEST_ENV_A}\\n\"}");
	/* keys are names */
	CU_ASSERT_STRING_EQUAL(rflow("${TRAIN_TEST_ENV_A}: 1\n", E, &m), "{\"${TRAIN_TEST_ENV_A}\": 1}");
	/* without the flag: as written */
	CU_ASSERT_STRING_EQUAL(rflow("a: ${TRAIN_TEST_ENV_A}\n", 0, &m), "{a: \"${TRAIN_TEST_ENV_A}\"}");
	/* an unset variable: refused as Rasa refuses it */
	CU_ASSERT_STRING_EQUAL(rflow("a:\n  b: x ${TRAIN_TEST_ENV_UNSET}\n", E, &m), "");
	CU_ASSERT_STRING_EQUAL(m, "t.yml:2:6: environment variable 'TRAIN_TEST_ENV_UNSET' of 'x "
	                          "${TRAIN_TEST_ENV_UNSET}' is not set: set it, or quote the value to "
	                          "keep it as written");
	CU_ASSERT_STRING_EQUAL(rflow("- ${TRAIN_TEST_ENV_UNSET}/${}\n", E, &m), "");
	CU_ASSERT_PTR_NOT_NULL(strstr(m, "t.yml:1:3: environment variables 'TRAIN_TEST_ENV_UNSET', '' of"));
	/* ... except where Rasa's check lets it through (the word does not start with '$') */
	CU_ASSERT_STRING_EQUAL(rflow("a: x${TRAIN_TEST_ENV_UNSET}\n", E, &m), "{a: \"x${TRAIN_TEST_ENV_UNSET}\"}");
	unsetenv("TRAIN_TEST_ENV_A");
	unsetenv("TRAIN_TEST_ENV_N");
}

/* ------------------------------------------------------------------------
 * The fast reader (libtrain/yaml_fast.c) against libyaml.
 */

static size_t fast_seen, fast_took;

/* Both readings of `text`, with and without the Rasa flags, must agree:
 * the same tree with the same places, or the same error. */
static void fast_same(const char *text, size_t len, const char *name)
{
	yf_events ev;
	int took = yfast_scan(text, len, &ev);
	yfast_free(&ev);
	CU_ASSERT(took >= 0);
	fast_seen++;
	fast_took += took == 1;
	for (int fl = 0; fl < 2; fl++) {
		unsigned flags = fl ? TRAIN_CFG_PARSE_RASA : 0;
		train_config *a = NULL, *b = NULL;
		train_error ea = { 0 }, eb = { 0 };
		train_yaml_fast = 1;
		int ra = train_config_parse_flags(text, len, name, flags, &a, &ea);
		train_yaml_fast = 0;
		int rb = train_config_parse_flags(text, len, name, flags, &b, &eb);
		train_yaml_fast = 1;
		CU_ASSERT_EQUAL(ra, rb);
		if (ra == TRAIN_OK && rb == TRAIN_OK) {
			char why[200];
			int same = config_same(a, b, why, sizeof why);
			if (!same)
				fprintf(stderr, "%s: the fast reading differs from libyaml's: %s\n", name, why);
			CU_ASSERT(same);
		} else if (ra != TRAIN_OK && rb != TRAIN_OK) {
			if (strcmp(ea.text, eb.text) != 0 || ea.line != eb.line || ea.col != eb.col)
				fprintf(stderr, "%s: errors differ: %u:%u %s | %u:%u %s\n", name, ea.line, ea.col,
				        ea.text, eb.line, eb.col, eb.text);
			CU_ASSERT_STRING_EQUAL(ea.text, eb.text);
			CU_ASSERT_EQUAL(ea.line, eb.line);
			CU_ASSERT_EQUAL(ea.col, eb.col);
		} else {
			fprintf(stderr, "%s: fast %d, libyaml %d (%s%s)\n", name, ra, rb, ea.text, eb.text);
		}
		train_config_destroy(a);
		train_config_destroy(b);
	}
}

static void fast_str(const char *text) { fast_same(text, strlen(text), "t.yml"); }

/* Whether the fast reader takes `text` (and agrees with libyaml). */
static bool fast_takes(const char *text)
{
	size_t before = fast_took;
	fast_str(text);
	return fast_took > before;
}

static void test_fast_reader(void)
{
	/* what it takes */
	CU_ASSERT(fast_takes("a: 1\nb: two words\n"));
	CU_ASSERT(fast_takes("# c\nversion: \"3.1\"\nintents:\n- greet\n- bye # c\n\nx:\n  - 1\n  -\n  - 'q'\n"));
	CU_ASSERT(fast_takes("stories:\n- story: s\n  steps:\n  - intent: greet\n  - action: utter_x\n"
	                     "  - slot_was_set:\n    - a: b\n    - c\n"));
	CU_ASSERT(fast_takes("a:\nb:\n  c:\n  d: e\nf: g:h\ni: x#y\n"));
	CU_ASSERT(fast_takes("-\n  a: 1\n- b\n-\n"));
	CU_ASSERT(fast_takes("  a: 1\n  b:  spaced   \n"));
	CU_ASSERT(fast_takes("k: caf\xc3\xa9 \xe2\x82\xac\n\xc3\xa9: x[1]\n"));
	CU_ASSERT(fast_takes("a: 1\na: 2\n")); /* the builder's duplicate-key error, the same */
	CU_ASSERT(fast_takes("a: 0x1g\nb: .5\nc: ~\nd: true\ne: -\"x\"\n") == false);
	CU_ASSERT(fast_takes("- a:\n  - b\n  c: d\n"));
	CU_ASSERT(fast_takes("a: [x, 'y z', \"w\\n\\\"\", 1.5]\nb: {}\nc: [ ]\nd:\n- []\n- { }\n"));
	CU_ASSERT(fast_takes("t: \"tab\\there \\\\ \\/ \\0 end\"\n"));
	/* what it leaves to libyaml, which must read it as before */
	const char *declined[] = {
		"a: [1, [2]]\n", "a: {b: 1}\n", "a: [x,]\n", "a: [a:b]\n", "a: [-1]\n", "a: [x] y\n", "a: |\n  x\n", "a: >\n  x\n", "a: &x 1\nb: *x\n",
		"a: !!str 1\n", "---\na: 1\n", "a: 1\n...\n", "%YAML 1.1\n---\na: 1\n", "? a\n: 1\n",
		"\"a\": 1\n", "- - a\n", "a: b\n  c\n", "a: 'it''s'\n", "a: \"x\\u00e9\"\n", "a: \"x\\\n", "a:\tb\n",
		"a: b\r\n", "\xef\xbb\xbf" "a: 1\n", "a: \xc2\x85\n", "a: \xe2\x80\xa8\n", "a: \xff\n",
		"a: b: c\n", "a: b:\n", "a:\n  b: 1\n c: 2\n", "- a\nb: 1\n", "a: 1\n- b\n",
		"a:\n  - b\n  c: 1\n", "plain\n", "# only\n", "", "a: 'x\n  y'\n", "a: \"x\" y\n",
		"a: 'x'#c\n", "- a: 1\n   b: 2\n", "-x: 1\n", "a: -1\n", "a: @x\n", "a: `x`\n",
		"a:\n    b: 1\n  c: 2\n", "a: 1 # c\n  b: 2\n", "<<: {}\n",
	};
	for (size_t i = 0; i < sizeof declined / sizeof declined[0]; i++)
		if (fast_takes(declined[i]))
			fprintf(stderr, "the fast reader took [%s]\n", declined[i]);
	/* control characters and a NUL anywhere */
	fast_same("a: 1\x01\n", 6, "t.yml");
	fast_same("a: 1\0b\n", 7, "t.yml");
	/* null values are placed just after their ':' or '-' */
	train_config *c = NULL;
	train_error err;
	fast_str("k:  # x\nl:\n- \n");
	CU_ASSERT_EQUAL(train_config_parse("k:  # x\nl:\n- \n", 14, "t.yml", &c, &err), TRAIN_OK);
	CU_ASSERT_EQUAL(train_config_col(train_config_get(c, "k")), 3);
	CU_ASSERT_EQUAL(train_config_col(train_config_at(train_config_get(c, "l"), 0)), 2);
	train_config_destroy(c);
}

/* Every YAML file under `dir`, both ways. */
static void fast_dir(const char *dir, int depth)
{
	DIR *d = opendir(dir);
	if (!d || depth > 8) {
		if (d)
			closedir(d);
		return;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		struct stat st;
		if (stat(path, &st) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			fast_dir(path, depth + 1);
			continue;
		}
		size_t n = strlen(de->d_name);
		if (!S_ISREG(st.st_mode) || st.st_size > (1 << 22) ||
		    !((n > 4 && strcmp(de->d_name + n - 4, ".yml") == 0) ||
		      (n > 5 && strcmp(de->d_name + n - 5, ".yaml") == 0)))
			continue;
		char *text = NULL;
		size_t len = 0;
		train_error err;
		if (train_read_file(path, &text, &len, &err) == TRAIN_OK)
			fast_same(text, len, path);
		free(text);
	}
	closedir(d);
}

static void test_fast_files(void)
{
	const char *top = getenv("top_srcdir");
	char path[4096];
	static const char *const dirs[] = { "tests", "examples", "recipes" };
	fast_seen = fast_took = 0;
	for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", top ? top : ".", dirs[i]);
		fast_dir(path, 0);
	}
	/* the Rasa projects of the shared data, when they are there */
	const char *shared = getenv("TRAIN_SHARED_DATA");
	if (shared)
		snprintf(path, sizeof path, "%s/rasa", shared);
	else
		snprintf(path, sizeof path, "%s/../shared/data/rasa", top ? top : ".");
	fast_dir(path, 0);
	/* the shipped bots and recipes are mostly in the subset */
	fprintf(stderr, "fast reader: took %zu of %zu YAML files\n", fast_took, fast_seen);
	CU_ASSERT(fast_seen > 20);
	CU_ASSERT(fast_took * 3 > fast_seen);
}

/* ---- command-line settings (train --set, train_config_set_path) ---------- */

static char *canon(const train_config *c)
{
	char *out = NULL;
	size_t n = 0;
	CU_ASSERT_EQUAL_FATAL(train_config_canonical(c, &out, &n), TRAIN_OK);
	return out;
}

static void test_set_path(void)
{
	train_error err = { 0 };
	/* over a file read by the fast reader (an arena tree): the same
	 * canonical bytes as the value written in the file */
	train_config *c = parse("model: {alpha: 0.5, n: 2}\ntraining: {steps: 20}\nempty:\n");
	CU_ASSERT_EQUAL(train_config_set_path(&c, "training.steps", "3", "--steps 3", &err), TRAIN_OK);
	CU_ASSERT_EQUAL(train_config_set_path(&c, "model.name", "'007'", "--set model.name='007'", &err),
	                TRAIN_OK);
	CU_ASSERT_EQUAL(train_config_set_path(&c, "data.deep.flag", "true", "--set d", &err), TRAIN_OK);
	CU_ASSERT_EQUAL(train_config_set_path(&c, "empty.x", "0.25", "--set e", &err), TRAIN_OK);
	CU_ASSERT_EQUAL(train_config_set_path(&c, "model.n", "", "--set model.n=", &err), TRAIN_OK);
	train_config *want = parse("model: {alpha: 0.5, n: null, name: '007'}\ntraining: {steps: 3}\n"
	                           "empty: {x: 0.25}\ndata: {deep: {flag: true}}\n");
	char *a = canon(c), *b = canon(want);
	CU_ASSERT_STRING_EQUAL(a, b);
	free(a);
	free(b);
	const train_config *steps = train_config_get(train_config_get(c, "training"), "steps");
	CU_ASSERT_EQUAL(train_config_kind(steps), TRAIN_CFG_INT);
	CU_ASSERT_STRING_EQUAL(train_config_file(steps), "--steps 3");
	CU_ASSERT_EQUAL(train_config_line(steps), 0);
	CU_ASSERT_EQUAL(train_config_kind(train_config_get(train_config_get(c, "model"), "name")),
	                TRAIN_CFG_STRING);
	CU_ASSERT_STRING_EQUAL(train_config_file(train_config_get(c, "model")), "t.yml");
	train_config_destroy(want);

	/* errors, at the origin */
	CU_ASSERT_EQUAL(train_config_set_path(&c, "model.alpha.x", "1", "--o1", &err), TRAIN_ECONFIG);
	CU_ASSERT_STRING_EQUAL(err.file, "--o1");
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "'model.alpha' is not a section (t.yml:1 sets it"));
	CU_ASSERT_EQUAL(train_config_set_path(&c, "model", "1", "--o2", &err), TRAIN_ECONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "not a settings key"));
	static const char *const bad_paths[] = { "a..b", ".a.b", "a.b.", "a b.c", "a.b/c", NULL };
	for (size_t i = 0; bad_paths[i]; i++)
		CU_ASSERT_EQUAL(train_config_set_path(&c, bad_paths[i], "1", "--o", &err), TRAIN_ECONFIG);
	CU_ASSERT_EQUAL(train_config_set_path(&c, "model.alpha", "[1, 2]", "--o3", &err), TRAIN_ECONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "is a list"));
	CU_ASSERT_EQUAL(train_config_set_path(&c, "model.alpha", "a: b", "--o4", &err), TRAIN_ECONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "is a map"));
	CU_ASSERT_EQUAL(train_config_set_path(&c, "model.alpha", "{", "--o5", &err), TRAIN_ECONFIG);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "not a YAML scalar"));
	train_config_destroy(c);

	/* no file: a new map; settings that are not a map */
	c = NULL;
	CU_ASSERT_EQUAL(train_config_set_path(&c, "a.b", "x", "--set a.b=x", &err), TRAIN_OK);
	CU_ASSERT_STRING_EQUAL(train_config_string(train_config_get(c, "a"), "b"), "x");
	train_config_destroy(c);
	c = parse("[1, 2]\n");
	CU_ASSERT_EQUAL(train_config_set_path(&c, "a.b", "x", "--o6", &err), TRAIN_ECONFIG);
	train_config_destroy(c);
	c = parse("~\n");
	CU_ASSERT_EQUAL(train_config_set_path(&c, "a.b", "1", "--o7", &err), TRAIN_OK);
	CU_ASSERT_EQUAL(train_config_int(train_config_get(c, "a"), "b"), 1);
	train_config_destroy(c);
}

int main(void)
{
	static const test_case cases[] = {
		{ "scalar typing", test_scalar_typing },
		{ "scalar values", test_scalar_values },
		{ "collections", test_collections },
		{ "empty document", test_empty_document },
		{ "locations", test_locations },
		{ "duplicate keys", test_duplicate_keys },
		{ "big map", test_big_map },
		{ "parse errors", test_parse_errors },
		{ "load", test_load },
		{ "copy", test_copy },
		{ "validate ok", test_validate_ok },
		{ "validate errors", test_validate_errors },
		{ "canonical equal", test_canonical_equal },
		{ "canonical differ", test_canonical_differ },
		{ "canonical bytes", test_canonical_bytes },
		{ "canonical validated", test_canonical_validated },
		{ "flow", test_flow },
		{ "locale", test_locale },
		{ "aliases", test_aliases },
		{ "environment variables", test_env },
		{ "fast reader", test_fast_reader },
		{ "fast reader on files", test_fast_files },
		{ "set a path (--set)", test_set_path },
		{ NULL, NULL },
	};
	return test_main("config", cases);
}
