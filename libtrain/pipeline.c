/*
 * pipeline.c - pipelines (issue 9, `train --target full-pipeline`): a
 * recipe file whose `stages:` name other recipes, run one after another.
 *
 *   version: 1
 *   name: full-pipeline
 *   stages:                          # in this order
 *     data:  {recipe: data-check, settings: ., data_prep: true, export: false}
 *     mamba: {recipe: mamba, needs: [data]}
 *     ...
 *   config_ignored: {device: "why"}  # settings sections no stage takes
 *
 * Each stage is an ordinary run of its recipe (train_run_settings), so its
 * nodes are fingerprinted and cached as in any run: a rerun after a crash
 * or a kill restores the finished stages from the cache and trains from
 * the first unfinished one.  A stage's `$config.` values refer to its
 * section of the one settings file (`settings:`, default: the stage's
 * name; "." the whole file, whose keys are then left to the stages that
 * own them); so the settings file of a pipeline is the settings files of
 * its targets, one section each, and adding a stage is one line.
 *
 * What it writes: each exported stage's model as OUT/STAGE.tar.gz (the
 * runner writes it to a temporary name and renames it), then, when every
 * stage ran, OUT/manifest.json (temporary name, renamed): each model's
 * path, size, SHA-256 and its nodes' metrics (the numbers of their JSON
 * outputs, runner.c), the libtrain version; and one report of all stages.
 */
#include "pipeline.h"
#include "target.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctx_private.h"
#include "util.h"

#define MANIFEST "manifest.json"
#define MANIFEST_FORMAT 1
#define MAX_STAGES 64

void train_pipeline_options_init(train_pipeline_options *o)
{
	memset(o, 0, sizeof *o);
	o->struct_size = sizeof *o;
}

/* ---- SHA-256 (FIPS 180-4) --------------------------------------------------- */

typedef struct sha256 {
	uint32_t h[8];
	uint64_t len;      /* bytes so far */
	uint8_t buf[64];
	size_t n;          /* bytes in buf */
} sha256;

static const uint32_t K256[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(sha256 *s, const uint8_t *p)
{
	uint32_t w[64], a[8];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
		       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
	for (int i = 16; i < 64; i++) {
		uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
		uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
		w[i] = w[i - 16] + s0 + w[i - 7] + s1;
	}
	memcpy(a, s->h, sizeof a);
	for (int i = 0; i < 64; i++) {
		uint32_t S1 = ROR(a[4], 6) ^ ROR(a[4], 11) ^ ROR(a[4], 25);
		uint32_t ch = (a[4] & a[5]) ^ (~a[4] & a[6]);
		uint32_t t1 = a[7] + S1 + ch + K256[i] + w[i];
		uint32_t S0 = ROR(a[0], 2) ^ ROR(a[0], 13) ^ ROR(a[0], 22);
		uint32_t mj = (a[0] & a[1]) ^ (a[0] & a[2]) ^ (a[1] & a[2]);
		memmove(a + 1, a, 7 * sizeof *a);
		a[4] += t1;
		a[0] = t1 + S0 + mj;
	}
	for (int i = 0; i < 8; i++)
		s->h[i] += a[i];
}

static void sha256_init(sha256 *s)
{
	static const uint32_t h0[8] = { 0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		                        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19 };
	memcpy(s->h, h0, sizeof h0);
	s->len = 0;
	s->n = 0;
}

static void sha256_update(sha256 *s, const void *data, size_t size)
{
	const uint8_t *p = data;
	s->len += size;
	while (size) {
		size_t take = 64 - s->n < size ? 64 - s->n : size;
		memcpy(s->buf + s->n, p, take);
		s->n += take;
		p += take;
		size -= take;
		if (s->n == 64) {
			sha256_block(s, s->buf);
			s->n = 0;
		}
	}
}

static void sha256_hex(sha256 *s, char out[65])
{
	uint64_t bits = s->len * 8;
	uint8_t pad = 0x80, zero = 0, len[8];
	sha256_update(s, &pad, 1);
	while (s->n != 56)
		sha256_update(s, &zero, 1);
	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)(bits >> (56 - 8 * i));
	sha256_update(s, len, 8);
	for (int i = 0; i < 8; i++)
		snprintf(out + 8 * i, 9, "%08x", s->h[i]);
}

int train_sha256_file(const char *path, char out[65], train_error *err)
{
	FILE *f = fopen(path, "rbe");
	if (!f)
		return train_error_set(err, -errno, path, 0, 0, "cannot open: %s", strerror(errno));
	sha256 s;
	sha256_init(&s);
	static __thread uint8_t buf[1 << 16];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		sha256_update(&s, buf, n);
	int bad = ferror(f);
	fclose(f);
	if (bad)
		return train_error_set(err, TRAIN_EIO, path, 0, 0, "cannot read");
	sha256_hex(&s, out);
	return TRAIN_OK;
}

/* ---- run results ------------------------------------------------------------ */

/* ---- the pipeline file ------------------------------------------------------ */

typedef struct stage {
	const char *name;
	char *recipe;              /* the recipe's path */
	const char *section;       /* settings section; NULL: the whole file, unchecked */
	bool data_prep, export_model, optional, selected;
	size_t needs[MAX_STAGES];  /* indices of earlier stages */
	size_t n_needs;
	/* the run */
	enum { ST_NOT_RUN, ST_DONE, ST_FAILED } state;
	train_run_result res;
	json_t *metrics;
	char *model;               /* the exported model, or NULL */
} stage;

typedef struct pipeline {
	train_config *root;
	char *dir;
	const char *name;
	stage st[MAX_STAGES];
	size_t n;
	const train_config *ignored;
} pipeline;

static void pipeline_free(pipeline *p)
{
	for (size_t i = 0; i < p->n; i++) {
		free(p->st[i].recipe);
		train_run_result_free(&p->st[i].res);
		json_decref(p->st[i].metrics);
		free(p->st[i].model);
	}
	train_config_destroy(p->root);
	free(p->dir);
}

static int at(train_error *err, const train_config *c, const char *fmt, ...) TRAIN_PRINTF(3, 4);
static int at(train_error *err, const train_config *c, const char *fmt, ...)
{
	char text[TRAIN_ERROR_TEXT];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	return train_error_set(err, TRAIN_ECONFIG, train_config_file(c), train_config_line(c),
	                       train_config_col(c), "%s", text);
}

static bool good_name(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '-'))
			return false;
	return true;
}

static void stage_names(const pipeline *p, char *buf, size_t cap)
{
	size_t o = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < p->n && o < cap; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? ", " : "", p->st[i].name);
}

static long find_stage(const pipeline *p, const char *name, size_t len)
{
	for (size_t i = 0; i < p->n; i++)
		if (strlen(p->st[i].name) == len && !strncmp(p->st[i].name, name, len))
			return (long)i;
	return -1;
}

static int read_stage(pipeline *p, const train_config *key, const train_config *v, train_error *err)
{
	static const char *const known = "recipe, settings, needs, data_prep, export, optional";
	stage *s = &p->st[p->n];
	s->name = train_config_as_string(key);
	if (!good_name(s->name))
		return at(err, key, "bad stage name '%s' (use letters, digits, '_' and '-')", s->name);
	if (find_stage(p, s->name, strlen(s->name)) >= 0)
		return at(err, key, "stage '%s' is listed twice", s->name);
	if (train_config_kind(v) != TRAIN_CFG_MAP && train_config_kind(v) != TRAIN_CFG_NULL)
		return at(err, v, "stage '%s' must be a map (%s)", s->name, known);
	s->section = s->name;
	s->export_model = true;
	const char *recipe = s->name;
	for (size_t i = 0; i < train_config_len(v); i++) {
		const char *k = train_config_key_at(v, i);
		const train_config *x = train_config_at(v, i);
		train_cfg_kind kind = train_config_kind(x);
		if (!strcmp(k, "recipe") || !strcmp(k, "settings")) {
			if (kind != TRAIN_CFG_STRING || !*train_config_as_string(x))
				return at(err, x, "'%s' of stage '%s' must be a name", k, s->name);
			if (!strcmp(k, "recipe"))
				recipe = train_config_as_string(x);
			else
				s->section = strcmp(train_config_as_string(x), ".") ? train_config_as_string(x)
				                                                    : NULL;
		} else if (!strcmp(k, "data_prep") || !strcmp(k, "export") || !strcmp(k, "optional")) {
			if (kind != TRAIN_CFG_BOOL)
				return at(err, x, "'%s' of stage '%s' must be true or false", k, s->name);
			if (!strcmp(k, "data_prep"))
				s->data_prep = train_config_as_bool(x);
			else if (!strcmp(k, "export"))
				s->export_model = train_config_as_bool(x);
			else
				s->optional = train_config_as_bool(x);
		} else if (!strcmp(k, "needs")) {
			if (kind != TRAIN_CFG_LIST)
				return at(err, x, "'needs' of stage '%s' must be a list of stages", s->name);
			for (size_t j = 0; j < train_config_len(x); j++) {
				const train_config *e = train_config_at(x, j);
				const char *n = train_config_as_string(e);
				long w = n ? find_stage(p, n, strlen(n)) : -1;
				if (w < 0) {
					char names[512];
					stage_names(p, names, sizeof names);
					return at(err, e, "stage '%s' needs '%s', which is not a stage before it "
					          "(earlier stages: %s)", s->name, n ? n : "?",
					          p->n ? names : "none");
				}
				if (s->n_needs < MAX_STAGES)
					s->needs[s->n_needs++] = (size_t)w;
			}
		} else {
			return at(err, train_config_key_node_at(v, i),
			          "unknown key '%s' in stage '%s'; known keys: %s", k, s->name, known);
		}
	}
	/* A recipe name is NAME.yml beside the pipeline; a path (with a '/' or
	 * ending in .yml) is taken from the pipeline's folder. */
	size_t rl = strlen(recipe);
	if (strchr(recipe, '/') || (rl > 4 && !strcmp(recipe + rl - 4, ".yml")))
		s->recipe = recipe[0] == '/' ? train_strdup(recipe) : train_path_join(p->dir, recipe);
	else
		s->recipe = train_strfmt("%s/%s.yml", p->dir, recipe);
	if (!s->recipe)
		return TRAIN_ENOMEM;
	p->n++;
	return TRAIN_OK;
}

static int pipeline_load(const char *path, pipeline *p, train_error *err)
{
	static const char *const known = "version, name, stages, config_ignored";
	int rc = train_config_load(path, &p->root, err);
	if (rc)
		return rc;
	if (!(p->dir = train_dirname(path)))
		return TRAIN_ENOMEM;
	const train_config *root = p->root;
	if (train_config_kind(root) != TRAIN_CFG_MAP)
		return at(err, root, "a pipeline must be a map with version, name and stages");
	for (size_t i = 0; i < train_config_len(root); i++) {
		const char *k = train_config_key_at(root, i);
		if (strcmp(k, "version") && strcmp(k, "name") && strcmp(k, "stages") &&
		    strcmp(k, "config_ignored"))
			return at(err, train_config_key_node_at(root, i),
			          "unknown key '%s' in a pipeline; known keys: %s", k, known);
	}
	const train_config *ver = train_config_get(root, "version");
	if (!ver || train_config_kind(ver) != TRAIN_CFG_INT || train_config_as_int(ver) != 1)
		return at(err, ver ? ver : root, "a pipeline needs version: 1");
	const train_config *name = train_config_get(root, "name");
	p->name = name ? train_config_as_string(name) : NULL;
	if (name && (train_config_kind(name) != TRAIN_CFG_STRING || !good_name(p->name)))
		return at(err, name, "bad pipeline name (use letters, digits, '_' and '-')");
	if (!p->name)
		p->name = "pipeline";
	const train_config *ign = train_config_get(root, "config_ignored");
	if (ign && train_config_kind(ign) != TRAIN_CFG_MAP && train_config_kind(ign) != TRAIN_CFG_NULL)
		return at(err, ign, "'config_ignored' must be a map of SECTION: reason");
	p->ignored = ign;
	const train_config *stages = train_config_get(root, "stages");
	if (train_config_kind(stages) != TRAIN_CFG_MAP || !train_config_len(stages))
		return at(err, stages, "'stages' must be a map of stage name -> {recipe, settings, ...}");
	if (train_config_len(stages) > MAX_STAGES)
		return at(err, stages, "more than %d stages", MAX_STAGES);
	for (size_t i = 0; i < train_config_len(stages); i++)
		if ((rc = read_stage(p, train_config_key_node_at(stages, i), train_config_at(stages, i),
		                     err)))
			return rc;
	return TRAIN_OK;
}

bool train_pipeline_detect(const char *path)
{
	train_config *c = NULL;
	if (!path || train_config_load(path, &c, NULL))
		return false;
	bool yes = train_config_kind(c) == TRAIN_CFG_MAP && train_config_get(c, "stages") &&
	           !train_config_get(c, "train");
	train_config_destroy(c);
	return yes;
}

/* ---- which stages ----------------------------------------------------------- */

/* The stages to run: those --stages names (default: all, but an optional
 * stage only when the settings have its section), what they need, less
 * the data stage with --skip-data-prep. */
static int select_stages(pipeline *p, const train_pipeline_options *popt,
                         const train_config *settings, train_error *err)
{
	const char *list = popt ? popt->stages : NULL;
	for (size_t i = 0; i < p->n; i++)
		p->st[i].selected = !list && (!p->st[i].optional ||
		                              (p->st[i].section && train_config_get(settings, p->st[i].section)));
	for (const char *s = list; s && *s;) {
		const char *e = strchr(s, ',');
		size_t len = e ? (size_t)(e - s) : strlen(s);
		if (len) {
			long w = find_stage(p, s, len);
			if (w < 0) {
				char names[512];
				stage_names(p, names, sizeof names);
				return train_error_set(err, TRAIN_ECONFIG, NULL, 0, 0,
				                       "--stages: unknown stage '%.*s' in %s; its stages: %s",
				                       (int)len, s, p->name, names);
			}
			p->st[w].selected = true;
		}
		s = e ? e + 1 : s + len;
	}
	/* what the chosen stages need (needs point backwards) */
	for (size_t i = p->n; i-- > 0;)
		for (size_t k = 0; p->st[i].selected && k < p->st[i].n_needs; k++)
			p->st[p->st[i].needs[k]].selected = true;
	size_t any = 0;
	for (size_t i = 0; i < p->n; i++) {
		if (popt && popt->skip_data_prep && p->st[i].data_prep)
			p->st[i].selected = false;
		any += p->st[i].selected;
	}
	if (!any)
		return train_error_set(err, TRAIN_ECONFIG, NULL, 0, 0, "no stage of %s left to run",
		                       p->name);
	return TRAIN_OK;
}

/* Every section of the settings file is some stage's, or config_ignored. */
static int check_sections(const pipeline *p, const train_config *settings,
                          const train_log_sink *log, train_error *err)
{
	if (!settings || train_config_kind(settings) == TRAIN_CFG_NULL)
		return TRAIN_OK;
	if (train_config_kind(settings) != TRAIN_CFG_MAP)
		return at(err, settings, "the settings of a pipeline must be a map of sections, one "
		          "per stage");
	for (size_t i = 0; i < train_config_len(settings); i++) {
		const char *k = train_config_key_at(settings, i);
		bool known = false;
		for (size_t s = 0; s < p->n && !known; s++)
			known = p->st[s].section && !strcmp(p->st[s].section, k);
		if (known)
			continue;
		const train_config *why = train_config_get(p->ignored, k);
		if (why) {
			train_logf(log, TRAIN_LOG_INFO, "note: %s:%u: '%s' is not used by %s: %s",
			           train_config_file(settings), train_config_line(train_config_at(settings, i)),
			           k, p->name, train_config_as_string(why) ? train_config_as_string(why) : "");
			continue;
		}
		char names[512];
		size_t o = 0;
		names[0] = '\0';
		for (size_t s = 0; s < p->n && o < sizeof names; s++)
			if (p->st[s].section)
				o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", o ? ", " : "",
				                      p->st[s].section);
		return at(err, train_config_key_node_at(settings, i),
		          "unknown section '%s' for %s; its sections (one per stage): %s", k, p->name,
		          names);
	}
	return TRAIN_OK;
}

/* ---- output ----------------------------------------------------------------- */

static const char *stage_result(const stage *s, bool selected_only)
{
	if (!s->selected)
		return selected_only ? "skipped" : "not selected";
	if (s->state == ST_FAILED)
		return "failed";
	if (s->state == ST_NOT_RUN)
		return "not run";
	return s->res.n_trained ? "trained" : "cached";
}

static int write_json(const char *path, json_t *o, train_error *err)
{
	char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!text)
		return TRAIN_ENOMEM;
	train_buf b = { 0 };
	int rc = train_buf_str(&b, text);
	if (!rc)
		rc = train_buf_str(&b, "\n");
	free(text);
	if (!rc)
		rc = train_write_file_atomic(path, b.data, b.len, err);
	train_buf_free(&b);
	return rc;
}

static int write_manifest(const pipeline *p, const train_run_options *opt, char **path_out,
                          train_error *err)
{
	int rc = TRAIN_OK;
	json_t *m = json_object(), *models = json_array(), *stages = json_array();
	json_object_set_new(m, "format", json_integer(MANIFEST_FORMAT));
	json_object_set_new(m, "pipeline", json_string(p->name));
	json_object_set_new(m, "libtrain_version", json_string(train_version()));
	char stamp[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_set_new(m, "created", json_string(stamp));
	for (size_t i = 0; i < p->n && !rc; i++) {
		const stage *s = &p->st[i];
		if (!s->selected)
			continue;
		json_t *o = json_object();
		json_object_set_new(o, "stage", json_string(s->name));
		json_object_set_new(o, "result", json_string(stage_result(s, true)));
		json_object_set_new(o, "metrics", s->metrics ? json_incref(s->metrics) : json_object());
		json_array_append_new(stages, o);
		if (!s->model)
			continue;
		char sum[65];
		if ((rc = train_sha256_file(s->model, sum, err)))
			break;
		FILE *f = fopen(s->model, "rbe");
		long size = -1;
		if (f && fseek(f, 0, SEEK_END) == 0)
			size = ftell(f);
		if (f)
			fclose(f);
		const char *base = strrchr(s->model, '/');
		o = json_object();
		json_object_set_new(o, "name", json_string(s->name));
		json_object_set_new(o, "path", json_string(base ? base + 1 : s->model));
		json_object_set_new(o, "size", json_integer(size));
		json_object_set_new(o, "sha256", json_string(sum));
		json_object_set_new(o, "recipe", json_string(s->recipe));
		json_object_set_new(o, "metrics", s->metrics ? json_incref(s->metrics) : json_object());
		json_array_append_new(models, o);
	}
	json_object_set_new(m, "models", models);
	json_object_set_new(m, "stages", stages);
	char *path = train_path_join(opt->out_dir, MANIFEST);
	if (!rc && !path)
		rc = TRAIN_ENOMEM;
	if (!rc)
		rc = write_json(path, m, err);
	json_decref(m);
	if (!rc)
		*path_out = path;
	else
		free(path);
	return rc;
}

static int write_report(const pipeline *p, const train_run_options *opt, const char *manifest,
                        double seconds, train_error *err)
{
	json_t *o = json_object(), *stages = json_array(), *nodes = json_array();
	size_t tr = 0, ca = 0, pr = 0;
	json_object_set_new(o, "recipe", json_string(opt->recipe_path));
	json_object_set_new(o, "pipeline", json_string(p->name));
	json_object_set_new(o, "dry_run", json_boolean(opt->dry_run));
	json_object_set_new(o, "output_dir", json_string(opt->out_dir));
	json_object_set_new(o, "manifest", manifest ? json_string(manifest) : json_null());
	json_object_set_new(o, "seconds", json_real(seconds));
	for (size_t i = 0; i < p->n; i++) {
		const stage *s = &p->st[i];
		json_t *x = json_object();
		json_object_set_new(x, "stage", json_string(s->name));
		json_object_set_new(x, "result", json_string(stage_result(s, false)));
		json_object_set_new(x, "recipe", json_string(s->recipe));
		json_object_set_new(x, "model", s->model ? json_string(s->model) : json_null());
		json_object_set_new(x, "seconds", json_real(s->res.seconds));
		json_object_set_new(x, "trained", json_integer((json_int_t)s->res.n_trained));
		json_object_set_new(x, "cached", json_integer((json_int_t)s->res.n_cached));
		json_array_append_new(stages, x);
		tr += s->res.n_trained;
		ca += s->res.n_cached;
		pr += s->res.n_pruned;
		for (size_t k = 0; k < s->res.n_nodes; k++) {
			const train_node_result *n = &s->res.nodes[k];
			json_t *y = json_object();
			json_object_set_new(y, "name", json_string(n->name));
			json_object_set_new(y, "component", json_string(n->component));
			json_object_set_new(y, "fingerprint", json_string(n->fingerprint));
			json_object_set_new(y, "status", json_string(train_node_status_name(n->status)));
			json_object_set_new(y, "seconds", json_real(n->seconds));
			json_t *m = json_object_get(s->metrics, n->name);
			if (m)
				json_object_set(y, "metrics", m);
			json_object_set_new(y, "stage", json_string(s->name));
			json_array_append_new(nodes, y);
		}
	}
	json_object_set_new(o, "trained", json_integer((json_int_t)tr));
	json_object_set_new(o, "cached", json_integer((json_int_t)ca));
	json_object_set_new(o, "pruned", json_integer((json_int_t)pr));
	json_object_set_new(o, "stages", stages);
	json_object_set_new(o, "nodes", nodes);
	int rc = write_json(opt->report_path, o, err);
	json_decref(o);
	return rc;
}

/* The process's CPU seconds so far (the "cpu" of every progress line). */
static double cpu_seconds(void)
{
	struct timespec cpu;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu);
	return (double)cpu.tv_sec + 1e-9 * (double)cpu.tv_nsec;
}

/* One line of the progress stream, by hand: each stage's run opens and
 * closes the file itself. */
static void progress_stage(const char *path, double t, const stage *s, size_t index, size_t count)
{
	FILE *f = path ? fopen(path, "ae") : NULL;
	if (!f)
		return;
	char name[256];
	size_t len = 0;
	train_json_str(name, sizeof name, &len, s->name);
	fprintf(f, "{\"t\": %.3f, \"cpu\": %.3f, \"event\": \"stage\", \"stage\": %s, \"index\": %zu, "
	        "\"stages\": %zu}\n", t, cpu_seconds(), name, index, count);
	fclose(f);
}

/* The stream's last line: how the whole pipeline ended (each stage's run
 * writes no "end" of its own, so a reader that stops at "end" follows the
 * pipeline to its last stage). */
static void progress_end(const char *path, double t, int rc, const train_error *err)
{
	FILE *f = path ? fopen(path, "ae") : NULL;
	if (!f)
		return;
	char why[1100];
	size_t len = 0;
	if (rc)
		train_json_str(why, sizeof why, &len, err && err->text[0] ? err->text : train_strerror(rc));
	fprintf(f, "{\"t\": %.3f, \"cpu\": %.3f, \"event\": \"end\", \"status\": \"%s\"%s%s}\n", t,
	        cpu_seconds(), !rc ? "ok" : rc == TRAIN_ECANCELED ? "canceled" : "failed",
	        rc ? ", \"error\": " : "", rc ? why : "");
	fclose(f);
}

/* res: every stage's nodes as "stage/node". */
static int fill_result(const pipeline *p, train_run_result *res)
{
	size_t n = 0;
	for (size_t i = 0; i < p->n; i++)
		n += p->st[i].res.n_nodes;
	res->nodes = calloc(n ? n : 1, sizeof *res->nodes);
	if (!res->nodes)
		return TRAIN_ENOMEM;
	for (size_t i = 0; i < p->n; i++) {
		const stage *s = &p->st[i];
		for (size_t k = 0; k < s->res.n_nodes; k++) {
			train_node_result *x = &res->nodes[res->n_nodes++];
			*x = s->res.nodes[k];
			x->name = train_strfmt("%s/%s", s->name, s->res.nodes[k].name);
			x->component = train_strdup(s->res.nodes[k].component);
			if (!x->name || !x->component)
				return TRAIN_ENOMEM;
		}
		res->n_trained += s->res.n_trained;
		res->n_cached += s->res.n_cached;
		res->n_pruned += s->res.n_pruned;
		res->dry_flags |= s->res.dry_flags;
	}
	return TRAIN_OK;
}

/* ---- the run ---------------------------------------------------------------- */

int train_run_pipeline(train_registry *reg, const train_run_options *opt,
                       const train_pipeline_options *popt, train_run_result *res,
                       train_error *err)
{
	double t0 = train_now();
	pipeline P = { 0 };
	pipeline *p = &P;
	train_config *settings = NULL;
	char *manifest = NULL, *scratch = NULL;
	bool started = false; /* a stage event written: the stream gets its "end" */
	int rc;
	memset(res, 0, sizeof *res);
	const train_log_sink stderr_sink = { NULL, NULL,
		                             opt->verbosity >= TRAIN_NORMAL ? TRAIN_LOG_INFO
		                                                            : TRAIN_LOG_ERROR };
	const train_log_sink *log = opt->log ? opt->log : &stderr_sink;
	const char *progress_path =
		opt->struct_size >= offsetof(train_run_options, progress_path) + sizeof(char *)
			? opt->progress_path : NULL;

	if (!opt->recipe_path) {
		rc = train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "no recipe given");
		goto out;
	}
	if ((rc = pipeline_load(opt->recipe_path, p, err)))
		goto out;
	if (popt && popt->struct_size < sizeof *popt) {
		rc = train_error_set(err, TRAIN_EINVAL, NULL, 0, 0, "train_pipeline_options: bad struct_size");
		goto out;
	}
	if ((rc = train_settings_load(opt, &settings, err)))
		goto out;
	if ((rc = select_stages(p, popt, settings, err)))
		goto out;
	if ((rc = check_sections(p, settings, log, err)))
		goto out;
	for (size_t i = 0; i < p->n && !rc; i++)
		if (p->st[i].selected && !train_path_exists(p->st[i].recipe))
			rc = train_error_set(err, TRAIN_ENOTFOUND, opt->recipe_path, 0, 0,
			                     "stage '%s': no recipe %s", p->st[i].name, p->st[i].recipe);
	if (rc)
		goto out;

	size_t count = 0, index = 0;
	for (size_t i = 0; i < p->n; i++)
		count += p->st[i].selected;
	for (size_t i = 0; i < p->n; i++) {
		stage *s = &p->st[i];
		if (!s->selected)
			continue;
		index++;
		if (opt->cancel && *opt->cancel) {
			rc = train_error_set(err, TRAIN_ECANCELED, NULL, 0, 0, "interrupted");
			break;
		}
		train_logf(log, TRAIN_LOG_INFO, "stage %zu/%zu: %s (%s)", index, count, s->name,
		           s->recipe);
		if (!opt->dry_run)
			progress_stage(progress_path, train_now() - t0, s, index, count);
		started = true;
		train_run_options so = *opt;
		so.struct_size = sizeof so;
		so.recipe_path = s->recipe;
		so.settings_path = NULL;
		so.settings_set = NULL; /* the stage's section of `settings` has them */
		so.n_settings_set = 0;
		so.report_path = NULL;
		so.dot_path = NULL;
		so.fixed_model_name = s->name;
		if (!s->export_model && !opt->dry_run) {
			/* a model nobody asked for (the data checks): written aside, removed */
			if ((rc = train_mkdtemp(NULL, "train-stage-", &scratch, err)))
				break;
			so.out_dir = scratch;
		}
		const train_config *sect = settings && s->section ? train_config_get(settings, s->section)
		                                                  : s->section ? NULL : settings;
		const train_stage_run sr = { .t0 = t0 };
		rc = train_run_settings(reg, &so, sect, s->section != NULL, &sr, &s->res, &s->metrics,
		                        err);
		if (scratch) {
			train_rmtree(scratch);
			free(scratch);
			scratch = NULL;
		}
		if (rc) {
			s->state = ST_FAILED;
			/* say which stage, keeping the place of the error */
			char text[sizeof err->text + 128];
			snprintf(text, sizeof text, "stage '%s': %s", s->name, err->text);
			text[sizeof err->text - 1] = '\0';
			memcpy(err->text, text, sizeof err->text);
			break;
		}
		s->state = ST_DONE;
		if (s->export_model && s->res.model_path)
			s->model = train_strdup(s->res.model_path);
	}
	if (!rc && !opt->dry_run) {
		if ((rc = write_manifest(p, opt, &manifest, err)))
			goto out;
		train_logf(log, TRAIN_LOG_INFO, "%s: %zu stages in %.3fs; manifest: %s", p->name, count,
		           train_now() - t0, manifest);
	}
	if (!rc || p->n) {
		int frc = fill_result(p, res);
		if (!rc)
			rc = frc;
	}
out:
	if (started && !opt->dry_run)
		progress_end(progress_path, train_now() - t0, rc, err);
	res->seconds = train_now() - t0;
	if (opt->report_path && p->n) {
		train_error rerr = { 0 };
		int wrc = write_report(p, opt, manifest, res->seconds, rc ? &rerr : err);
		if (!rc)
			rc = wrc;
	}
	free(manifest);
	free(scratch);
	train_config_destroy(settings);
	pipeline_free(p);
	return rc;
}
