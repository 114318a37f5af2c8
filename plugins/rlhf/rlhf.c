/*
 * plugins/rlhf/rlhf.c - the "rlhf" plugin (issue 9): MARK's three RLHF
 * stages as graph nodes, on the qa-feedback data (Wu et al., 2023).
 *
 *   QAFeedback   (no inputs)  -> sft_train, sft_heldout, pairs_train,
 *                                pairs_heldout, prompts_train,
 *                                prompts_heldout, metrics
 *       reads the data set, splits it by question (a seeded hash of the
 *       question decides; `heldout` questions are held out) and writes
 *       JSON Lines for the stages: SFT examples {"prompt", "completion"},
 *       preference pairs {"prompt", "chosen", "rejected"} and prompts
 *       {"prompt", "question"}.
 *   (stage 1 is plugins/mamba's MambaSFT on sft_train / sft_heldout)
 *   RewardModel  train, heldout -> model, metrics
 *       a Mamba encoder with a scalar head over the mean (or last) hidden
 *       state of the answer's tokens, trained on the pairs with the
 *       Bradley-Terry loss -log sigmoid(r_chosen - r_rejected); metrics:
 *       the held-out pairwise accuracy, beside chance and a length
 *       heuristic (the longer answer preferred).
 *   RlhfPPO      policy, reward, prompts, heldout -> model, metrics
 *       PPO on the language model (Ziegler et al., 2019; Stiennon et al.,
 *       2020): answers sampled from the policy (started from the SFT
 *       model), scored by the reward model, a per-token KL penalty to the
 *       frozen SFT model with an adaptive KL coefficient (target KL,
 *       horizon), a value head on the policy, GAE over tokens
 *       (plugins/ppo/gae.c), the clipped surrogate and clipped value loss
 *       (plugins/ppo/ppo.h); metrics: held-out mean reward and KL to the
 *       SFT model before and after.  process: a prompt's answer.
 *
 * Every `metrics` output is application/json; the runner copies it into
 * the run's --report.  Models travel between nodes as MAMBA_VALUE_TYPE
 * values (plugins/mamba/mamba_io.c) and persist as model.safetensors.
 *
 * Threads: no global state; the kernels' settings are the process's.
 */
#include "rlhf.h"

#include <train/plugin.h>

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define JSON_TYPE "application/json"
#define JSONL_TYPE "application/jsonl"
#define TEXT_TYPE "text/plain"

/* ======================================================================== */
/* the math (tests/test_rlhf.c checks it by hand and by finite differences) */

void rlhf_kl_rewards(int L, const float *logp, const float *ref_logp, float score, float beta,
                     float *rew, double *kl)
{
	double k = 0;
	for (int t = 0; t < L; t++) {
		float d = logp[t] - ref_logp[t];
		rew[t] = -beta * d;
		k += d;
	}
	if (L > 0)
		rew[L - 1] += score;
	if (kl)
		*kl = k;
}

void rlhf_klctl_update(rlhf_klctl *c, double kl, int n_steps)
{
	if (!c->adaptive || c->target <= 0 || c->horizon <= 0)
		return;
	double e = kl / c->target - 1.0;
	e = e < -0.2 ? -0.2 : e > 0.2 ? 0.2 : e;
	c->value *= 1.0 + e * (double)n_steps / c->horizon;
}

void rlhf_whiten(float *x, const uint8_t *mask, size_t n)
{
	double s = 0, ss = 0;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (mask[i]) {
			s += x[i];
			k++;
		}
	if (k < 2)
		return;
	double mean = s / (double)k;
	for (size_t i = 0; i < n; i++)
		if (mask[i])
			ss += (x[i] - mean) * (x[i] - mean);
	double sd = sqrt(ss / (double)(k - 1));
	for (size_t i = 0; i < n; i++)
		x[i] = mask[i] ? (float)((x[i] - mean) / (sd + 1e-8)) : 0.0f;
}

/* ---- the reward model: backbone + pooling + scalar head ------------------- */

int rlhf_rm_create(const mamba_dims *d, int pool_last, rlhf_rm **out)
{
	rlhf_rm *r = calloc(1, sizeof *r);
	if (!r)
		return TRAIN_ENOMEM;
	int rc = mamba_model_create(d, 1, &r->m);
	r->pool_last = pool_last;
	r->head = calloc((size_t)d->D + 1, sizeof(float));
	r->dhead = calloc((size_t)d->D + 1, sizeof(float));
	if (rc || !r->head || !r->dhead) {
		rlhf_rm_destroy(r);
		return rc ? rc : TRAIN_ENOMEM;
	}
	*out = r;
	return TRAIN_OK;
}

void rlhf_rm_destroy(rlhf_rm *r)
{
	if (!r)
		return;
	mamba_model_destroy(r->m);
	free(r->head);
	free(r->dhead);
	free(r->pooled);
	free(r->dh);
	free(r);
}

/* Rows of ids (B, T); row b's answer is [start[b], end[b]) (end > start).
 * scores (B) = w . pool + b. */
int rlhf_rm_forward(rlhf_rm *r, const int32_t *ids, const int *start, const int *end, int B,
                    int T, float *scores)
{
	int D = r->m->d.D, rc;
	if ((rc = mamba_forward_hidden(r->m, ids, B, T, 0)))
		return rc;
	if (r->cap < (size_t)B * T) {
		free(r->pooled);
		free(r->dh);
		r->cap = (size_t)B * T;
		r->pooled = malloc(r->cap * D * sizeof(float)); /* B <= B*T rows */
		r->dh = malloc(r->cap * D * sizeof(float));
		if (!r->pooled || !r->dh) {
			r->cap = 0;
			return TRAIN_ENOMEM;
		}
	}
	const float *h = mamba_hidden(r->m);
	for (int b = 0; b < B; b++) {
		float *p = r->pooled + (size_t)b * D;
		int s = r->pool_last ? end[b] - 1 : start[b], e = end[b];
		memset(p, 0, (size_t)D * sizeof *p);
		for (int t = s; t < e; t++)
			for (int c = 0; c < D; c++)
				p[c] += h[((size_t)b * T + t) * D + c];
		float inv = 1.0f / (float)(e - s), z = r->head[D];
		for (int c = 0; c < D; c++) {
			p[c] *= inv;
			z += r->head[c] * p[c];
		}
		scores[b] = z;
	}
	return TRAIN_OK;
}

/* Gradients (+=) of sum_b dscore[b] * scores[b] after rlhf_rm_forward. */
int rlhf_rm_backward(rlhf_rm *r, const int32_t *ids, const int *start, const int *end, int B,
                     int T, const float *dscore)
{
	int D = r->m->d.D;
	memset(r->dh, 0, (size_t)B * T * D * sizeof(float));
	for (int b = 0; b < B; b++) {
		const float *p = r->pooled + (size_t)b * D;
		int s = r->pool_last ? end[b] - 1 : start[b], e = end[b];
		float g = dscore[b], inv = 1.0f / (float)(e - s);
		for (int c = 0; c < D; c++)
			r->dhead[c] += g * p[c];
		r->dhead[D] += g;
		for (int t = s; t < e; t++)
			for (int c = 0; c < D; c++)
				r->dh[((size_t)b * T + t) * D + c] = g * r->head[c] * inv;
	}
	return mamba_backward_from(r->m, ids, NULL, r->dh, B, T);
}

/* Bradley-Terry over P pairs: rows 0..P-1 chosen, P..2P-1 rejected.
 * loss = mean -log sigmoid(r_c - r_r); gradients added when grad. */
int rlhf_rm_pair_loss(rlhf_rm *r, const int32_t *ids, const int *start, const int *end, int P,
                      int T, int grad, float *loss, int *correct)
{
	float *sc = malloc((size_t)4 * P * sizeof *sc);
	if (!sc)
		return TRAIN_ENOMEM;
	float *ds = sc + 2 * P;
	int rc = rlhf_rm_forward(r, ids, start, end, 2 * P, T, sc);
	double l = 0;
	int ok = 0;
	for (int i = 0; !rc && i < P; i++) {
		float z = sc[i] - sc[P + i];
		/* -log sigmoid(z) = softplus(-z) */
		l += z > 0 ? log1p(exp(-z)) : -z + log1p(exp(z));
		ok += z > 0;
		float sg = 1.0f / (1.0f + expf(z)); /* sigmoid(-z) */
		ds[i] = -sg / (float)P;
		ds[P + i] = sg / (float)P;
	}
	if (!rc && grad)
		rc = rlhf_rm_backward(r, ids, start, end, 2 * P, T, ds);
	if (loss)
		*loss = (float)(l / P);
	if (correct)
		*correct = ok;
	free(sc);
	return rc;
}

/* ======================================================================== */
/* small helpers */

double rlhf_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* JSON Lines in a value: each line's object, or an error naming the line. */

void rlhf_jl_free(rlhf_jl *j)
{
	for (size_t i = 0; i < j->n; i++)
		json_decref(j->o[i]);
	free(j->o);
	j->o = NULL;
	j->n = 0;
}

int rlhf_jl_read(const train_value *v, const char *name, const char *const *keys, rlhf_jl *j,
                   train_ctx *ctx)
{
	const char *p = v ? train_value_data(v) : NULL, *end = p ? p + train_value_size(v) : NULL;
	unsigned line = 0;
	size_t cap = 0;
	memset(j, 0, sizeof *j);
	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
		line++;
		if (le > p) {
			json_error_t je;
			json_t *o = json_loadb(p, (size_t)(le - p), 0, &je);
			if (!json_is_object(o)) {
				json_decref(o);
				return train_fail(ctx, "%s:%u: %s", name, line, o ? "not an object" : je.text);
			}
			for (int k = 0; keys[k]; k++)
				if (!json_is_string(json_object_get(o, keys[k]))) {
					json_decref(o);
					return train_fail(ctx, "%s:%u: \"%s\" must be a string", name, line, keys[k]);
				}
			if (j->n == cap) {
				cap = cap ? 2 * cap : 64;
				json_t **a = realloc(j->o, cap * sizeof *a);
				if (!a) {
					json_decref(o);
					return TRAIN_ENOMEM;
				}
				j->o = a;
			}
			j->o[j->n++] = o;
		}
		p = le + 1;
	}
	return TRAIN_OK;
}

const char *rlhf_jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* Code points of UTF-8 text to ids of a vocabulary; returns the count
 * (at most max). */
int rlhf_encode(const char *s, const int32_t *vocab, int nvocab, int32_t *ids, int max)
{
	size_t n = strlen(s);
	int32_t *cps = malloc((n + 1) * sizeof *cps);
	if (!cps)
		return -1;
	size_t k = mamba_utf8_decode(s, n, cps);
	int m = (int)(k < (size_t)max ? k : (size_t)max);
	for (int i = 0; i < m; i++)
		ids[i] = mamba_char_id(vocab, nvocab, cps[i]);
	free(cps);
	return m;
}

/* ids -> UTF-8 (unknown and END OF TEXT left out); malloc'd. */
char *rlhf_decode(const int32_t *ids, int n, const int32_t *vocab)
{
	char *s = malloc((size_t)n * 4 + 1), *o = s;
	if (!s)
		return NULL;
	for (int i = 0; i < n; i++)
		if (ids[i] > 0 && vocab[ids[i]] != MAMBA_EOT)
			o += mamba_utf8_encode(vocab[ids[i]], o);
	*o = 0;
	return s;
}

int rlhf_put_json(train_values *out, const char *name, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
	if (!s)
		return TRAIN_ENOMEM;
	int rc = train_values_put_bytes(out, name, JSON_TYPE, s, strlen(s));
	free(s);
	return rc;
}

char *rlhf_res_path(const train_resource *res, const char *name)
{
	const char *d = train_resource_dir(res);
	size_t n = strlen(d) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", d, name);
	return p;
}

/* ======================================================================== */
/* QAFeedback: the data set and its split */

static const train_param qa_params[] = {
	{ "path", TRAIN_PARAM_PATH, "~", "qa-feedback's dev_feedback.json (or a file of the same form); required" },
	{ "heldout", TRAIN_PARAM_INT, "100", "questions held out for evaluation (the rest train)" },
	{ "limit", TRAIN_PARAM_INT, "0", "use only this many questions, train and held out (0: all)" },
	{ "max_passage_chars", TRAIN_PARAM_INT, "300", "characters of passages in an SFT/policy prompt" },
	{ "max_question_chars", TRAIN_PARAM_INT, "200", "characters of a question kept" },
	{ "max_answer_chars", TRAIN_PARAM_INT, "300", "answers are cut at the last sentence end within this" },
	{ "seed", TRAIN_PARAM_INT, "0", "seed of the hash that splits the questions" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};
static const char *const qa_outputs[] = { "sft_train", "sft_heldout", "pairs_train", "pairs_heldout",
	                                  "prompts_train", "prompts_heldout", "metrics", NULL };

typedef struct qa {
	char *path;
	int64_t heldout, limit, max_pass, max_q, max_ans, seed;
	char *summary;
} qa;

static void qa_destroy(void *self)
{
	qa *q = self;
	if (!q)
		return;
	free(q->path);
	free(q->summary);
	free(q);
}

static int qa_create(const train_config *cfg, train_ctx *ctx, void **self)
{
	qa *q = calloc(1, sizeof *q);
	*self = NULL;
	if (!q)
		return TRAIN_ENOMEM;
	const train_config *p = train_config_get(cfg, "path");
	if (train_config_kind(p) == TRAIN_CFG_STRING && !(q->path = strdup(train_config_as_string(p)))) {
		qa_destroy(q);
		return TRAIN_ENOMEM;
	}
	q->heldout = train_config_int(cfg, "heldout");
	q->limit = train_config_int(cfg, "limit");
	q->max_pass = train_config_int(cfg, "max_passage_chars");
	q->max_q = train_config_int(cfg, "max_question_chars");
	q->max_ans = train_config_int(cfg, "max_answer_chars");
	q->seed = train_config_int(cfg, "seed");
	if (q->heldout < 1 || q->limit < 0 || q->max_pass < 0 || q->max_q < 1 || q->max_ans < 8) {
		qa_destroy(q);
		return train_fail(ctx, "heldout must be at least 1, limit and max_passage_chars not "
		                  "negative, max_question_chars at least 1 and max_answer_chars at least 8");
	}
	*self = q;
	return TRAIN_OK;
}

/* A growing string. */
typedef struct sbuf {
	char *s;
	size_t n, cap;
} sbuf;

static int sb_add(sbuf *b, const char *s, size_t n)
{
	if (b->n + n + 1 > b->cap) {
		size_t nc = (b->n + n + 1) * 2;
		char *x = realloc(b->s, nc);
		if (!x)
			return TRAIN_ENOMEM;
		b->s = x;
		b->cap = nc;
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = 0;
	return TRAIN_OK;
}

static int sb_str(sbuf *b, const char *s)
{
	return sb_add(b, s, strlen(s));
}

/* At most max bytes of s, not splitting a UTF-8 character; with `sentence`,
 * cut after the last ". " (or final '.') within them when there is one. */
static size_t cut_len(const char *s, size_t max, int sentence)
{
	size_t n = strlen(s);
	if (n <= max)
		return n;
	size_t k = max;
	while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80)
		k--;
	if (sentence)
		for (size_t i = k; i > max / 3; i--)
			if (s[i - 1] == '.' && (s[i] == ' ' || s[i] == '\n'))
				return i;
	return k;
}

/* One line {"k1": v1, ...} of JSON Lines into b. */
static int sb_json_line(sbuf *b, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (!s)
		return TRAIN_ENOMEM;
	int rc = sb_str(b, s);
	if (!rc)
		rc = sb_add(b, "\n", 1);
	free(s);
	return rc;
}

typedef struct qorder {
	uint64_t h;
	size_t i;
} qorder;

static int cmp_qorder(const void *a, const void *b)
{
	const qorder *x = a, *y = b;
	return x->h < y->h ? -1 : x->h > y->h ? 1 : x->i < y->i ? -1 : x->i > y->i;
}

static int qa_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	(void)in;
	qa *q = self;
	char *path = NULL;
	json_t *root = NULL;
	qorder *ord = NULL;
	sbuf sft[2] = { { 0 } }, pairs[2] = { { 0 } }, prompts[2] = { { 0 } };
	size_t npairs[2] = { 0, 0 }, nq[2] = { 0, 0 };
	int rc = TRAIN_OK;
	if (!q->path)
		return train_fail(ctx, "no path: QAFeedback reads qa-feedback's dev_feedback.json");
	if (!(path = train_ctx_resolve(ctx, q->path))) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	json_error_t je;
	root = json_load_file(path, 0, &je);
	if (!root) {
		rc = train_fail(ctx, "%s:%d:%d: %s", path, je.line, je.column, je.text);
		goto out;
	}
	if (!json_is_array(root)) {
		rc = train_fail(ctx, "%s: not a list of questions", path);
		goto out;
	}
	size_t n = json_array_size(root);
	/* check every entry first */
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(root, i), *pr = json_object_get(e, "preference");
		const char *bad = NULL;
		if (!json_is_object(e))
			bad = "not an object";
		else if (!json_is_string(json_object_get(e, "question")) || !json_is_string(json_object_get(e, "gold")))
			bad = "\"question\" and \"gold\" must be strings";
		else if (!json_is_array(json_object_get(e, "passages")))
			bad = "\"passages\" must be a list of [title, sentence...] lists";
		else if (!json_is_array(pr) || json_array_size(pr) != 6)
			bad = "\"preference\" must be a list of 6 comparisons (1v2 1v3 1v4 2v3 2v4 3v4)";
		for (int k = 1; !bad && k <= 4; k++) {
			char key[16];
			snprintf(key, sizeof key, "prediction %d", k);
			if (!json_is_string(json_object_get(e, key)))
				bad = "\"prediction 1\" .. \"prediction 4\" must be strings";
		}
		for (size_t k = 0; !bad && k < 6; k++) {
			json_t *x = json_array_get(pr, k);
			if (!json_is_integer(x) || json_integer_value(x) < 0 || json_integer_value(x) > 2)
				bad = "a preference is 0 (none), 1 (the first) or 2 (the second)";
		}
		if (bad) {
			rc = train_fail(ctx, "%s: question %zu (0-based): %s", path, i, bad);
			goto out;
		}
	}
	/* the split: a seeded hash of each question's text orders them; the
	 * first `heldout` are held out (so the file's order does not matter) */
	ord = malloc((n ? n : 1) * sizeof *ord);
	if (!ord) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const char *qs = rlhf_jstr(json_array_get(root, i), "question");
		train_hasher *h = NULL;
		if (train_hasher_create(&h)) {
			rc = TRAIN_ENOMEM;
			goto out;
		}
		train_hasher_u64(h, (uint64_t)q->seed);
		train_hasher_str(h, qs);
		train_fp fp = train_hasher_digest(h);
		train_hasher_destroy(h);
		ord[i].h = fp.lo;
		ord[i].i = i;
	}
	qsort(ord, n, sizeof *ord, cmp_qorder);
	size_t use = q->limit > 0 && (size_t)q->limit < n ? (size_t)q->limit : n;
	if (use <= (size_t)q->heldout) {
		rc = train_fail(ctx, "%s: %zu questions, not more than heldout = %lld", path, use,
		                (long long)q->heldout);
		goto out;
	}
	static const int pa[6] = { 1, 1, 1, 2, 2, 3 }, pb[6] = { 2, 3, 4, 3, 4, 4 };
	const char *prev_q = NULL;
	int prev_part = 0;
	for (size_t k = 0; k < use; k++) {
		json_t *e = json_array_get(root, ord[k].i);
		const char *qs = rlhf_jstr(e, "question");
		/* the same question twice stays on one side */
		int part = k < (size_t)q->heldout ? 1 : 0;
		if (prev_q && !strcmp(prev_q, qs))
			part = prev_part;
		prev_q = qs;
		prev_part = part;
		nq[part]++;
		sbuf pp = { 0 }, rq = { 0 };
		char tmp[64];
		size_t ql = cut_len(qs, (size_t)q->max_q, 0);
		/* the policy's prompt: question, passages (titles and sentences), "Answer:" */
		if ((rc = sb_str(&pp, "Question: ")) || (rc = sb_add(&pp, qs, ql)) ||
		    (rc = sb_str(&pp, "\nContext:")))
			goto item_out;
		sbuf ctxs = { 0 };
		json_t *ps = json_object_get(e, "passages");
		for (size_t i = 0; i < json_array_size(ps) && !rc; i++) {
			json_t *p = json_array_get(ps, i);
			for (size_t j = 1; j < json_array_size(p) && !rc; j++) {
				const char *sent = json_string_value(json_array_get(p, j));
				if (sent && (rc = sb_str(&ctxs, " ")) == 0)
					rc = sb_str(&ctxs, sent);
			}
		}
		if (!rc && ctxs.s)
			rc = sb_add(&pp, ctxs.s, cut_len(ctxs.s, (size_t)q->max_pass, 0));
		free(ctxs.s);
		if (!rc)
			rc = sb_str(&pp, "\nAnswer: ");
		/* the reward model's prompt: the question only */
		if (!rc && !(rc = sb_str(&rq, "Question: ")) && !(rc = sb_add(&rq, qs, ql)))
			rc = sb_str(&rq, "\nAnswer: ");
		if (rc)
			goto item_out;
		const char *gold = rlhf_jstr(e, "gold");
		json_t *line = json_pack("{s:s, s:s%}", "prompt", pp.s, "completion", gold,
		                         cut_len(gold, (size_t)q->max_ans, 1));
		if (!line || (rc = sb_json_line(&sft[part], line))) {
			rc = rc ? rc : TRAIN_ENOMEM;
			goto item_out;
		}
		line = json_pack("{s:s, s:s, s:s}", "prompt", pp.s, "question", rq.s, "gold", gold);
		if (!line || (rc = sb_json_line(&prompts[part], line))) {
			rc = rc ? rc : TRAIN_ENOMEM;
			goto item_out;
		}
		json_t *pr = json_object_get(e, "preference");
		for (int c = 0; c < 6; c++) {
			json_int_t w = json_integer_value(json_array_get(pr, (size_t)c));
			if (w == 0)
				continue;
			snprintf(tmp, sizeof tmp, "prediction %d", w == 1 ? pa[c] : pb[c]);
			const char *ch = rlhf_jstr(e, tmp);
			snprintf(tmp, sizeof tmp, "prediction %d", w == 1 ? pb[c] : pa[c]);
			const char *rj = rlhf_jstr(e, tmp);
			line = json_pack("{s:s, s:s%, s:s%}", "prompt", rq.s, "chosen", ch,
			                 cut_len(ch, (size_t)q->max_ans, 1), "rejected", rj,
			                 cut_len(rj, (size_t)q->max_ans, 1));
			if (!line || (rc = sb_json_line(&pairs[part], line))) {
				rc = rc ? rc : TRAIN_ENOMEM;
				goto item_out;
			}
			npairs[part]++;
		}
	item_out:
		free(pp.s);
		free(rq.s);
		if (rc)
			goto out;
	}
	const char *names[6] = { "sft_train", "sft_heldout", "pairs_train", "pairs_heldout",
		                 "prompts_train", "prompts_heldout" };
	sbuf *bufs[6] = { &sft[0], &sft[1], &pairs[0], &pairs[1], &prompts[0], &prompts[1] };
	for (int i = 0; i < 6; i++)
		if ((rc = train_values_put_bytes(out, names[i], JSONL_TYPE, bufs[i]->s ? bufs[i]->s : "",
		                                 bufs[i]->n)))
			goto out;
	json_t *m = json_pack("{s:I, s:I, s:I, s:I}", "questions_train", (json_int_t)nq[0],
	                      "questions_heldout", (json_int_t)nq[1], "pairs_train",
	                      (json_int_t)npairs[0], "pairs_heldout", (json_int_t)npairs[1]);
	if (!m) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	free(q->summary);
	q->summary = json_dumps(m, JSON_COMPACT);
	rc = rlhf_put_json(out, "metrics", m);
	json_decref(m);
	train_log(ctx, TRAIN_LOG_INFO, "%zu questions train (%zu preference pairs), %zu held out (%zu pairs)",
	          nq[0], npairs[0], nq[1], npairs[1]);
out:
	for (int i = 0; i < 2; i++) {
		free(sft[i].s);
		free(pairs[i].s);
		free(prompts[i].s);
	}
	free(ord);
	json_decref(root);
	free(path);
	return rc;
}

static int qa_persist(void *self, train_resource *res)
{
	qa *q = self;
	const char *s = q->summary ? q->summary : "{}";
	return train_resource_write(res, "split.json", s, strlen(s));
}

static int qa_load(const train_config *cfg, const train_resource *res, train_ctx *ctx, void **self)
{
	(void)res;
	return qa_create(cfg, ctx, self);
}

/* ======================================================================== */
/* RewardModel */

static const train_param rm_params[] = {
	{ "d_model", TRAIN_PARAM_INT, "32", "width of the Mamba encoder (a multiple of 8)" },
	{ "n_layers", TRAIN_PARAM_INT, "2", "Mamba blocks" },
	{ "vocab_size", TRAIN_PARAM_INT, "5000", "most tokens (characters + 1)" },
	{ "max_length", TRAIN_PARAM_INT, "512", "tokens of prompt + answer kept" },
	{ "pooling", TRAIN_PARAM_STRING, "mean", "mean (over the answer's tokens) or last (its last token)" },
	{ "batch_size", TRAIN_PARAM_INT, "8", "pairs per step" },
	{ "num_epochs", TRAIN_PARAM_INT, "2", "passes over the training pairs" },
	{ "max_steps", TRAIN_PARAM_INT, "0", "steps; 0: num_epochs decides" },
	{ "learning_rate", TRAIN_PARAM_FLOAT, "0.001", "AdamW's rate (cosine decay to a tenth)" },
	{ "weight_decay", TRAIN_PARAM_FLOAT, "0.0", "AdamW's decoupled weight decay" },
	{ "skip", TRAIN_PARAM_BOOL, "false", "do not train: the initialised model (settings training.skip_reward)" },
	{ "seed", TRAIN_PARAM_INT, "42", "seed of the initialisation and the order" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};
static const char *const rm_inputs[] = { "train", "heldout", NULL };
static const char *const rm_outputs[] = { "model", "metrics", NULL };
static const char *const rm_proc_in[] = { "prompt", "answer", NULL };
static const char *const rm_proc_out[] = { "score", NULL };

typedef struct rmc {
	int64_t d_model, n_layers, vocab_size, max_length, batch, epochs, max_steps, seed;
	double lr, wd;
	int pool_last, skip;
	rlhf_rm *r;
	int32_t *vocab;
	int nvocab;
	char *metrics;
} rmc;

static void rm_destroy(void *self)
{
	rmc *c = self;
	if (!c)
		return;
	rlhf_rm_destroy(c->r);
	free(c->vocab);
	free(c->metrics);
	free(c);
}

static int rm_create(const train_config *cfg, train_ctx *ctx, void **self)
{
	rmc *c = calloc(1, sizeof *c);
	*self = NULL;
	if (!c)
		return TRAIN_ENOMEM;
	c->d_model = train_config_int(cfg, "d_model");
	c->n_layers = train_config_int(cfg, "n_layers");
	c->vocab_size = train_config_int(cfg, "vocab_size");
	c->max_length = train_config_int(cfg, "max_length");
	c->batch = train_config_int(cfg, "batch_size");
	c->epochs = train_config_int(cfg, "num_epochs");
	c->max_steps = train_config_int(cfg, "max_steps");
	c->seed = train_config_int(cfg, "seed");
	c->lr = train_config_float(cfg, "learning_rate");
	c->wd = train_config_float(cfg, "weight_decay");
	c->skip = train_config_bool(cfg, "skip");
	const char *pool = train_config_string(cfg, "pooling");
	mamba_dims d;
	const char *bad = NULL;
	if (!pool || (strcmp(pool, "mean") && strcmp(pool, "last")))
		bad = "pooling must be mean or last";
	else if (mamba_dims_make(2, (int)c->d_model, (int)c->n_layers, &d) || c->d_model > 4096)
		bad = "d_model must be a multiple of 8 up to 4096 and n_layers from 1 to 256";
	else if (c->vocab_size < 2 || c->vocab_size > (1 << 24))
		bad = "vocab_size must be from 2 to 16777216";
	else if (c->max_length < 2 || c->max_length > 65536 || c->batch < 1 || c->batch > 4096)
		bad = "max_length must be from 2 to 65536 and batch_size from 1 to 4096";
	else if (c->epochs < 0 || c->max_steps < 0 || !(c->lr > 0 && c->lr < 10) || !(c->wd >= 0 && c->wd < 1))
		bad = "num_epochs and max_steps not negative, learning_rate in (0, 10), weight_decay in [0, 1)";
	if (bad) {
		rm_destroy(c);
		return train_fail(ctx, "%s", bad);
	}
	c->pool_last = !strcmp(pool, "last");
	*self = c;
	return TRAIN_OK;
}

/* Encoded pairs: per pair the prompt and the two answers as ids. */
typedef struct pairset {
	int32_t *ids;       /* (n, 2, L) chosen row, rejected row */
	int *plen, *len;    /* (n, 2) */
	int *chars;         /* (n, 2) answer lengths in characters (the length heuristic) */
	size_t n;
	int L;
} pairset;

static void pairset_free(pairset *p)
{
	free(p->ids);
	free(p->plen);
	free(p->len);
	free(p->chars);
	memset(p, 0, sizeof *p);
}

static int count_cps(const char *s)
{
	int k = 0;
	for (; *s; s++)
		k += ((unsigned char)*s & 0xC0) != 0x80;
	return k;
}

/* prompt + answer -> row of at most L ids; *plen = prompt tokens kept
 * (at least one answer token is kept: the prompt is cut first). */
static int encode_pa(const char *prompt, const char *answer, const int32_t *vocab, int nvocab,
                     int L, int32_t *row, int *plen, int *len)
{
	int pl = rlhf_encode(prompt, vocab, nvocab, row, L - 1);
	if (pl < 0)
		return TRAIN_ENOMEM;
	int al = rlhf_encode(answer, vocab, nvocab, row + pl, L - pl);
	if (al < 0)
		return TRAIN_ENOMEM;
	if (al == 0) /* an empty answer: its end stands for it */
		row[pl + al++] = mamba_char_id(vocab, nvocab, MAMBA_EOT);
	*plen = pl;
	*len = pl + al;
	return TRAIN_OK;
}

static int pairs_encode(const rlhf_jl *j, const int32_t *vocab, int nvocab, int L, pairset *p)
{
	memset(p, 0, sizeof *p);
	p->n = j->n;
	p->L = L;
	p->ids = calloc(j->n * 2 * (size_t)L + 1, sizeof *p->ids);
	p->plen = malloc((j->n * 2 + 1) * sizeof *p->plen);
	p->len = malloc((j->n * 2 + 1) * sizeof *p->len);
	p->chars = malloc((j->n * 2 + 1) * sizeof *p->chars);
	if (!p->ids || !p->plen || !p->len || !p->chars)
		return TRAIN_ENOMEM;
	for (size_t i = 0; i < j->n; i++)
		for (int s = 0; s < 2; s++) {
			const char *a = rlhf_jstr(j->o[i], s ? "rejected" : "chosen");
			size_t k = i * 2 + (size_t)s;
			int rc = encode_pa(rlhf_jstr(j->o[i], "prompt"), a, vocab, nvocab, L,
			                   p->ids + k * (size_t)L, &p->plen[k], &p->len[k]);
			if (rc)
				return rc;
			p->chars[k] = count_cps(a);
		}
	return TRAIN_OK;
}

/* Character vocabulary of texts: sorted code points after id 0. */
static int vocab_of(const rlhf_jl *j, const char *const *keys, int64_t max, int32_t **out, int *nout,
                    train_ctx *ctx)
{
	unsigned char *seen = calloc(0x110000, 1);
	if (!seen)
		return TRAIN_ENOMEM;
	seen[MAMBA_EOT] = 1;
	for (size_t i = 0; i < j->n; i++)
		for (int k = 0; keys[k]; k++) {
			const char *s = rlhf_jstr(j->o[i], keys[k]);
			size_t n = strlen(s);
			int32_t *cps = malloc((n + 1) * sizeof *cps);
			if (!cps) {
				free(seen);
				return TRAIN_ENOMEM;
			}
			size_t m = mamba_utf8_decode(s, n, cps);
			for (size_t q = 0; q < m; q++)
				if (cps[q] >= 0 && cps[q] < 0x110000)
					seen[cps[q]] = 1;
			free(cps);
		}
	int cnt = 1;
	for (int v = 0; v < 0x110000; v++)
		cnt += seen[v];
	if (cnt > max) {
		free(seen);
		return train_fail(ctx, "%d distinct characters: more than vocab_size %lld allows",
		                  cnt - 1, (long long)max);
	}
	int32_t *voc = malloc((size_t)cnt * sizeof *voc);
	if (!voc) {
		free(seen);
		return TRAIN_ENOMEM;
	}
	voc[0] = -1;
	int k = 1;
	for (int v = 0; v < 0x110000; v++)
		if (seen[v])
			voc[k++] = v;
	free(seen);
	*out = voc;
	*nout = cnt;
	return TRAIN_OK;
}

/* Build the batch of pairs idx[0..P) into ids (2P, T): chosen rows first. */
static int pair_batch(const pairset *ps, const size_t *idx, int P, int32_t *ids, int *start,
                      int *end)
{
	int T = 1;
	for (int i = 0; i < P; i++)
		for (int s = 0; s < 2; s++)
			if (ps->len[idx[i] * 2 + s] > T)
				T = ps->len[idx[i] * 2 + s];
	for (int i = 0; i < P; i++)
		for (int s = 0; s < 2; s++) {
			size_t k = idx[i] * 2 + (size_t)s;
			int row = s * P + i;
			memset(ids + (size_t)row * T, 0, (size_t)T * sizeof *ids);
			memcpy(ids + (size_t)row * T, ps->ids + k * (size_t)ps->L,
			       (size_t)ps->len[k] * sizeof *ids);
			start[row] = ps->plen[k];
			end[row] = ps->len[k];
		}
	return T;
}

/* Pairwise accuracy (ties count half) of the model and of the length heuristic. */
static int rm_accuracy(rlhf_rm *r, const pairset *ps, int P, double *acc, double *len_acc,
                       double *mean_loss)
{
	int32_t *ids = malloc((size_t)2 * P * ps->L * sizeof *ids);
	int *se = malloc((size_t)4 * P * sizeof *se);
	size_t *idx = malloc((size_t)P * sizeof *idx);
	float *sc = malloc((size_t)2 * P * sizeof *sc);
	int rc = ids && se && idx && sc ? TRAIN_OK : TRAIN_ENOMEM;
	double ok = 0, lok = 0, ls = 0;
	for (size_t b = 0; !rc && b < ps->n; b += (size_t)P) {
		int np = (int)(ps->n - b < (size_t)P ? ps->n - b : (size_t)P);
		for (int i = 0; i < np; i++)
			idx[i] = b + (size_t)i;
		int T = pair_batch(ps, idx, np, ids, se, se + 2 * P);
		if ((rc = rlhf_rm_forward(r, ids, se, se + 2 * P, 2 * np, T, sc)))
			break;
		for (int i = 0; i < np; i++) {
			float z = sc[i] - sc[np + i];
			ok += z > 0 ? 1.0 : z == 0 ? 0.5 : 0.0;
			ls += z > 0 ? log1p(exp(-z)) : -z + log1p(exp(z));
			int lc = ps->chars[idx[i] * 2], lr = ps->chars[idx[i] * 2 + 1];
			lok += lc > lr ? 1.0 : lc == lr ? 0.5 : 0.0;
		}
	}
	if (!rc) {
		*acc = ps->n ? ok / (double)ps->n : NAN;
		*len_acc = ps->n ? lok / (double)ps->n : NAN;
		*mean_loss = ps->n ? ls / (double)ps->n : NAN;
	}
	free(ids);
	free(se);
	free(idx);
	free(sc);
	return rc;
}

/* The joint gradient norm of the backbone and the head, clipped to max. */
static void clip_two(float *a, size_t na, float *b, size_t nb, float max)
{
	double ss = 0;
	for (size_t i = 0; i < na; i++)
		ss += (double)a[i] * a[i];
	for (size_t i = 0; i < nb; i++)
		ss += (double)b[i] * b[i];
	double n = sqrt(ss);
	if (n > max) {
		float s = (float)(max / (n + 1e-6));
		for (size_t i = 0; i < na; i++)
			a[i] *= s;
		for (size_t i = 0; i < nb; i++)
			b[i] *= s;
	}
}

static int rm_value(const rmc *c, train_value **out, train_ctx *ctx)
{
	train_named_tensor ex[2] = {
		{ "score.weight", { .dtype = TRAIN_F32, .ndim = 2, .shape = { 1, c->r->m->d.D, 1, 1 }, .data = c->r->head } },
		{ "score.bias", { .dtype = TRAIN_F32, .ndim = 1, .shape = { 1, 1, 1, 1 }, .data = c->r->head + c->r->m->d.D } },
	};
	train_error err = { 0 };
	char msg[1024];
	int rc = mamba_value_make(c->r->m, c->vocab, c->nvocab, ex, 2,
	                          c->pool_last ? "reward-last" : "reward-mean", out, &err);
	return rc && err.text[0] ? train_fail(ctx, "%s", train_error_format(&err, msg, sizeof msg)) : rc;
}

static int rm_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	rmc *c = self;
	static const char *const keys[] = { "prompt", "chosen", "rejected", NULL };
	rlhf_jl tr = { 0 }, va = { 0 };
	pairset ptr = { 0 }, pva = { 0 };
	float *mom = NULL, *vel = NULL, *hm = NULL, *hv = NULL;
	int32_t *ids = NULL;
	int *se = NULL;
	size_t *order = NULL;
	json_t *curve = json_array();
	int rc;
	if ((rc = rlhf_jl_read(train_values_get(in, "train"), "train", keys, &tr, ctx)) ||
	    (rc = rlhf_jl_read(train_values_get(in, "heldout"), "heldout", keys, &va, ctx)))
		goto out;
	if (tr.n == 0) {
		rc = train_fail(ctx, "train: no preference pairs");
		goto out;
	}
	free(c->vocab);
	c->vocab = NULL;
	if ((rc = vocab_of(&tr, keys, c->vocab_size, &c->vocab, &c->nvocab, ctx)))
		goto out;
	int L = (int)c->max_length, P = (int)c->batch;
	if ((rc = pairs_encode(&tr, c->vocab, c->nvocab, L, &ptr)) ||
	    (rc = pairs_encode(&va, c->vocab, c->nvocab, L, &pva)))
		goto out;
	mamba_dims d;
	if ((rc = mamba_dims_make(c->nvocab, (int)c->d_model, (int)c->n_layers, &d)))
		goto out;
	rlhf_rm_destroy(c->r);
	c->r = NULL;
	if ((rc = rlhf_rm_create(&d, c->pool_last, &c->r)))
		goto out;
	rlhf_rm *r = c->r;
	r->m->threads = train_ctx_threads(ctx);
	train_rng rng;
	train_rng_seed(&rng, (uint64_t)c->seed);
	mamba_model_init(r->m, &rng);
	/* the head: small normal weights, zero bias */
	train_rng_fill_normal(&rng, r->head, (size_t)d.D, 0.0f, 1.0f / sqrtf((float)d.D));
	size_t np = r->m->n_params, nh = (size_t)d.D + 1;
	mom = calloc(np, sizeof *mom);
	vel = calloc(np, sizeof *vel);
	hm = calloc(nh, sizeof *hm);
	hv = calloc(nh, sizeof *hv);
	ids = malloc((size_t)2 * P * L * sizeof *ids);
	se = malloc((size_t)4 * P * sizeof *se);
	order = malloc(ptr.n * sizeof *order);
	if (!mom || !vel || !hm || !hv || !ids || !se || !order || !curve) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	int64_t spe = (int64_t)((ptr.n + (size_t)P - 1) / (size_t)P);
	int64_t total = c->skip ? 0 : c->max_steps > 0 ? c->max_steps : c->epochs * spe;
	train_adamw_cfg acfg = train_adamw_defaults();
	acfg.weight_decay = (float)c->wd;
	train_log(ctx, TRAIN_LOG_INFO, "%zu parameters, %d characters, %zu training and %zu held-out "
	          "pairs, %lld steps", np + nh, c->nvocab, ptr.n, pva.n, (long long)total);
	double t0 = rlhf_now(), lsum = 0;
	int lcount = 0;
	size_t pos = ptr.n;
	for (int64_t step = 0; step < total; step++) {
		if (train_ctx_canceled(ctx)) {
			rc = TRAIN_ECANCELED;
			goto out;
		}
		int nb = P;
		size_t idx[4096];
		for (int i = 0; i < nb; i++) {
			if (pos == ptr.n) { /* a new epoch: a new order */
				for (size_t k = 0; k < ptr.n; k++)
					order[k] = k;
				for (size_t k = ptr.n - 1; k > 0; k--) {
					size_t j = (size_t)train_rng_below(&rng, k + 1), t = order[k];
					order[k] = order[j];
					order[j] = t;
				}
				pos = 0;
			}
			idx[i] = order[pos++];
		}
		int T = pair_batch(&ptr, idx, nb, ids, se, se + 2 * P);
		memset(r->m->grads, 0, np * sizeof(float));
		memset(r->dhead, 0, nh * sizeof(float));
		float loss;
		if ((rc = rlhf_rm_pair_loss(r, ids, se, se + 2 * P, nb, T, 1, &loss, NULL)))
			goto out;
		if (!isfinite(loss)) {
			rc = train_fail(ctx, "the loss is not finite at step %lld: lower learning_rate",
			                (long long)step);
			goto out;
		}
		clip_two(r->m->grads, np, r->dhead, nh, 1.0f);
		float lr = train_lr_at(TRAIN_SCHED_COSINE, (float)c->lr, (float)c->lr * 0.1f, step, 0, total);
		train_adamw_step(&acfg, r->m->params, r->m->grads, mom, vel, np, lr, step + 1);
		train_adamw_step(&acfg, r->head, r->dhead, hm, hv, nh, lr, step + 1);
		train_kernels_weights_changed(NULL);
		lsum += loss;
		lcount++;
		train_progress_loss(ctx, (uint64_t)step + 1, (uint64_t)total, loss);
		if ((step + 1) % 50 == 0 || step + 1 == total) {
			json_array_append_new(curve, json_pack("[I, f]", (json_int_t)step + 1, lsum / lcount));
			train_log(ctx, TRAIN_LOG_INFO, "step %lld/%lld: loss %.4f", (long long)step + 1,
			          (long long)total, lsum / lcount);
			lsum = 0;
			lcount = 0;
		}
	}
	double secs = rlhf_now() - t0;
	double acc_tr, lacc_tr, loss_tr, acc_va = NAN, lacc_va = NAN, loss_va = NAN;
	if ((rc = rm_accuracy(r, &ptr, P, &acc_tr, &lacc_tr, &loss_tr)) ||
	    (pva.n && (rc = rm_accuracy(r, &pva, P, &acc_va, &lacc_va, &loss_va))))
		goto out;
	train_log(ctx, TRAIN_LOG_INFO, "pairwise accuracy: held out %.3f (%zu pairs; chance 0.5, "
	          "longer-answer heuristic %.3f), train %.3f", acc_va, pva.n, lacc_va, acc_tr);
	json_t *m = json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:I, s:I, s:I, s:I, s:f, s:o}",
	                      "heldout_accuracy", pva.n ? acc_va : -1.0, "heldout_loss", pva.n ? loss_va : -1.0,
	                      "heldout_length_baseline", pva.n ? lacc_va : -1.0, "chance", 0.5,
	                      "train_accuracy", acc_tr, "train_loss", loss_tr,
	                      "pairs_train", (json_int_t)ptr.n, "pairs_heldout", (json_int_t)pva.n,
	                      "steps", (json_int_t)total, "parameters", (json_int_t)(np + nh),
	                      "seconds", secs, "loss_curve", curve);
	curve = NULL;
	if (!m) {
		rc = TRAIN_ENOMEM;
		goto out;
	}
	free(c->metrics);
	c->metrics = json_dumps(m, JSON_COMPACT | JSON_REAL_PRECISION(6));
	rc = rlhf_put_json(out, "metrics", m);
	json_decref(m);
	train_value *mv = NULL;
	if (!rc && !(rc = rm_value(c, &mv, ctx)))
		rc = train_values_put_take(out, "model", mv);
out:
	rlhf_jl_free(&tr);
	rlhf_jl_free(&va);
	pairset_free(&ptr);
	pairset_free(&pva);
	free(mom);
	free(vel);
	free(hm);
	free(hv);
	free(ids);
	free(se);
	free(order);
	json_decref(curve);
	return rc;
}

/* Read a reward model value or file (the head as extra tensors). */
int rlhf_rm_read(const train_value *v, const char *path, rlhf_rm **out, int32_t **vocab,
                   int *nvocab, char *msg, size_t nmsg)
{
	mamba_model *m = NULL;
	train_safetensors *f = NULL;
	train_error err = { 0 };
	*out = NULL;
	int rc = v ? mamba_value_read(v, 0, NULL, &m, vocab, nvocab, &f, &err)
	           : mamba_file_read(path, 0, NULL, &m, vocab, nvocab, &f, &err);
	if (rc) {
		train_error_format(&err, msg, nmsg);
		return rc;
	}
	const char *kind = train_safetensors_meta(f, "kind");
	train_tensor w, b;
	int D = m->d.D;
	rlhf_rm *r = calloc(1, sizeof *r);
	if (!r || !kind || strncmp(kind, "reward-", 7) || train_safetensors_get(f, "score.weight", &w) ||
	    train_safetensors_get(f, "score.bias", &b) || w.dtype != TRAIN_F32 || b.dtype != TRAIN_F32 ||
	    train_tensor_numel(&w) != (size_t)D || train_tensor_numel(&b) != 1 ||
	    !(r->head = malloc(((size_t)D + 1) * sizeof(float)))) {
		snprintf(msg, nmsg, "not a reward model (kind reward-*, score.weight (1, %d), score.bias (1))", D);
		rc = r ? TRAIN_EINVAL : TRAIN_ENOMEM;
		train_safetensors_close(f);
		mamba_model_destroy(m);
		free(*vocab);
		*vocab = NULL;
		if (r)
			free(r->head);
		free(r);
		return rc;
	}
	memcpy(r->head, w.data, (size_t)D * sizeof(float));
	r->head[D] = *(const float *)b.data;
	r->pool_last = !strcmp(kind, "reward-last");
	r->m = m;
	train_safetensors_close(f);
	*out = r;
	return TRAIN_OK;
}

static int rm_persist(void *self, train_resource *res)
{
	rmc *c = self;
	if (!c->r)
		return TRAIN_EINVAL;
	char *p = rlhf_res_path(res, "model.safetensors");
	train_error err = { 0 };
	if (!p)
		return TRAIN_ENOMEM;
	train_named_tensor ex[2] = {
		{ "score.weight", { .dtype = TRAIN_F32, .ndim = 2, .shape = { 1, c->r->m->d.D, 1, 1 }, .data = c->r->head } },
		{ "score.bias", { .dtype = TRAIN_F32, .ndim = 1, .shape = { 1, 1, 1, 1 }, .data = c->r->head + c->r->m->d.D } },
	};
	int rc = mamba_file_write(p, c->r->m, c->vocab, c->nvocab, ex, 2,
	                          c->pool_last ? "reward-last" : "reward-mean", &err);
	free(p);
	if (!rc && c->metrics)
		rc = train_resource_write(res, "metrics.json", c->metrics, strlen(c->metrics));
	return rc;
}

static int rm_load(const train_config *cfg, const train_resource *res, train_ctx *ctx, void **self)
{
	rmc *c = NULL;
	int rc = rm_create(cfg, ctx, (void **)&c);
	*self = NULL;
	if (rc)
		return rc;
	char *p = rlhf_res_path(res, "model.safetensors"), msg[1024];
	if (!p) {
		rm_destroy(c);
		return TRAIN_ENOMEM;
	}
	rc = rlhf_rm_read(NULL, p, &c->r, &c->vocab, &c->nvocab, msg, sizeof msg);
	free(p);
	if (rc) {
		rm_destroy(c);
		return train_fail(ctx, "%s", msg);
	}
	*self = c;
	return TRAIN_OK;
}

/* Score one prompt + answer (train predict MODEL prompt=... answer=...). */
int rlhf_rm_score_text(rlhf_rm *r, const int32_t *vocab, int nvocab, int L, const char *prompt,
                          const char *answer, float *score)
{
	int32_t *ids = calloc((size_t)L, sizeof *ids);
	int s, e, rc = ids ? encode_pa(prompt, answer, vocab, nvocab, L, ids, &s, &e) : TRAIN_ENOMEM;
	if (!rc)
		rc = rlhf_rm_forward(r, ids, &s, &e, 1, e, score);
	free(ids);
	return rc;
}

char *rlhf_value_text(const train_values *in, const char *name)
{
	const train_value *v = train_values_get(in, name);
	size_t n = v ? train_value_size(v) : 0;
	char *s = malloc(n + 1);
	if (s) {
		if (n)
			memcpy(s, train_value_data(v), n);
		s[n] = 0;
	}
	return s;
}

static int rm_process(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	rmc *c = self;
	if (!c->r)
		return train_fail(ctx, "the reward model is not trained");
	char *p = rlhf_value_text(in, "prompt"), *a = rlhf_value_text(in, "answer");
	float sc = 0;
	int rc = p && a ? rlhf_rm_score_text(c->r, c->vocab, c->nvocab, (int)c->max_length, p, a, &sc)
	                : TRAIN_ENOMEM;
	free(p);
	free(a);
	if (!rc) {
		char buf[64];
		snprintf(buf, sizeof buf, "%.6g", sc);
		rc = train_values_put_bytes(out, "score", TEXT_TYPE, buf, strlen(buf));
	}
	return rc;
}

/* ======================================================================== */
/* the plugin (RlhfPPO is ppo_lm.c) */

static const train_component_class qa_class = {
	.struct_size = sizeof(train_component_class),
	.name = "QAFeedback",
	.version = "1",
	.doc = "qa-feedback (Wu et al., 2023) split by question into SFT examples, preference pairs and prompts (issue 9)",
	.inputs = NULL,
	.outputs = qa_outputs,
	.params = qa_params,
	.create = qa_create,
	.train = qa_train,
	.persist = qa_persist,
	.load = qa_load,
	.destroy = qa_destroy,
};

static const train_component_class rm_class = {
	.struct_size = sizeof(train_component_class),
	.name = "RewardModel",
	.version = "1",
	.doc = "a Mamba encoder with a scalar head trained on preference pairs (Bradley-Terry) (issue 9)",
	.inputs = rm_inputs,
	.outputs = rm_outputs,
	.process_inputs = rm_proc_in,
	.process_outputs = rm_proc_out,
	.params = rm_params,
	.create = rm_create,
	.train = rm_train,
	.process = rm_process,
	.persist = rm_persist,
	.load = rm_load,
	.destroy = rm_destroy,
};

#ifndef RLHF_NO_DESCRIPTOR
static const train_component_class *const classes[] = { &qa_class, &rm_class, &rlhf_ppo_lm_class, NULL };
TRAIN_PLUGIN_DEFINE("rlhf", "1.0.0", "MIT", "RLHF: qa-feedback data, a reward model, PPO on a Mamba language model",
                    classes);
#endif
