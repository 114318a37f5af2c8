/*
 * tests/test_gpt2_resume.c - GPT2LM's checkpoints (plugins/gpt2, compiled
 * in): a run stopped midway (in an epoch, after a checkpoint of its own)
 * and resumed from its checkpoint (`train --resume`) ends with the weights
 * of an uninterrupted run, bit for bit, and the same loss at every step:
 * full fine-tuning, and LoRA with dropout and gradient checkpointing (the
 * generator drives the data order and the dropout).  The tiny random GPT-2
 * of tests/fixtures/gpt2 on its four dialogues.
 */
#include "testlib.h"

#define GPT2_NO_DESCRIPTOR
#include "../plugins/gpt2/gpt2_plugin.c"
#include "ctx_private.h"

#include <sys/stat.h>

static const char *fixture(const char *name)
{
	static char buf[4][1024];
	static int k;
	const char *top = getenv("top_srcdir");
	char *b = buf[k++ & 3];
	char cwd[512];
	if (!top && !getcwd(cwd, sizeof cwd))
		cwd[0] = '\0';
	snprintf(b, sizeof buf[0], "%s/tests/fixtures/gpt2/%s", top ? top : cwd, name);
	return b;
}

/* The "resuming at ..." line of the last run, or "". */
static char resumed[256];

static void quiet_fn(void *ud, train_log_level level, const char *msg)
{
	(void)ud;
	(void)level;
	if (getenv("TEST_VERBOSE"))
		fprintf(stderr, "  %s\n", msg);
	const char *r = strstr(msg, "resuming at");
	if (r)
		snprintf(resumed, sizeof resumed, "%s", r);
}

static const train_log_sink quiet = { quiet_fn, NULL, TRAIN_LOG_DEBUG };

static train_config *make_cfg(const char *keys)
{
	char flow[4096];
	snprintf(flow, sizeof flow, "{model_path: '%s', data: '%s', num_epochs: 2, batch_size: 1, "
	         "learning_rate: 0.01, checkpoint_every: 3, seed: 5, threads: 1, %s}",
	         fixture("tiny"), fixture("dialogues.jsonl"), keys);
	train_config *user = NULL, *cfg = NULL;
	train_error err = { 0 };
	CU_ASSERT_EQUAL_FATAL(train_config_parse(flow, strlen(flow), "test.yml", &user, &err), TRAIN_OK);
	int rc = train_config_validate(user, gpt2_lm.params, "test", &cfg, &err);
	if (rc)
		fprintf(stderr, "%s\n", err.text);
	CU_ASSERT_EQUAL_FATAL(rc, TRAIN_OK);
	train_config_destroy(user);
	return cfg;
}

/* One run: checkpoints in `ckdir` (NULL: none), resuming or not, stopped
 * after stop_after steps (0: not); the component, its log in *log. */
static g2 *run(const train_config *cfg, const char *ckdir, int resume, int64_t stop_after,
               int want_rc, json_t **log)
{
	train_ctx ctx;
	train_ctx_init(&ctx, "lm", &quiet, 1, ".");
	resumed[0] = '\0';
	ctx.checkpoint_dir = ckdir;
	ctx.resume = resume;
	void *self = NULL;
	CU_ASSERT_EQUAL_FATAL(gpt2_lm.create(cfg, &ctx, &self), TRAIN_OK);
	train_values *out = NULL;
	train_values_create(&out);
	int rc = g2_train_run(self, out, &ctx, stop_after);
	if (rc != want_rc)
		fprintf(stderr, "rc %d: %s\n", rc, ctx.fail);
	CU_ASSERT_EQUAL(rc, want_rc);
	const train_value *v = train_values_get(out, "log");
	if (log)
		*log = v ? json_loadb(train_value_data(v), train_value_size(v), 0, NULL) : NULL;
	train_values_destroy(out);
	return self;
}

/* Every step's loss of a run's log, in order. */
static int same_losses(json_t *a, json_t *b)
{
	json_t *sa = json_object_get(a, "steps"), *sb = json_object_get(b, "steps");
	if (!json_array_size(sa) || json_array_size(sa) != json_array_size(sb))
		return 0;
	for (size_t i = 0; i < json_array_size(sa); i++)
		if (json_real_value(json_object_get(json_array_get(sa, i), "loss")) !=
		    json_real_value(json_object_get(json_array_get(sb, i), "loss")))
			return 0;
	return 1;
}

static void check_resume(const char *keys, const char *sub)
{
	train_config *cfg = make_cfg(keys);
	char dir[1200], ckf[1300];
	snprintf(dir, sizeof dir, "%s/%s", test_tmpdir(), sub);
	CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
	snprintf(ckf, sizeof ckf, "%s/%s", dir, CKPT_NAME);
	json_t *la = NULL, *lc = NULL;
	g2 *a = run(cfg, NULL, 0, 0, TRAIN_OK, &la);
	/* 8 steps (2 epochs of 4): stopped after 5, in the second epoch */
	g2 *b = run(cfg, dir, 0, 5, TRAIN_ECANCELED, NULL);
	CU_ASSERT_EQUAL(access(ckf, F_OK), 0);
	g2 *c = run(cfg, dir, 1, 0, TRAIN_OK, &lc);
	CU_ASSERT_STRING_EQUAL(resumed, "resuming at step 5 of 8");
	int lora = a->type == T_LORA;
	const float *wa = lora ? a->m->lora->params : a->m->params;
	const float *wb = lora ? b->m->lora->params : b->m->params;
	const float *wc = lora ? c->m->lora->params : c->m->params;
	size_t n = lora ? a->m->lora->n : a->m->n_params;
	CU_ASSERT_EQUAL(memcmp(wa, wc, n * sizeof(float)), 0);
	CU_ASSERT_NOT_EQUAL(memcmp(wa, wb, n * sizeof(float)), 0); /* b stopped early */
	if (lora) /* the base weights are the base's */
		CU_ASSERT_EQUAL(memcmp(a->m->params, c->m->params, a->m->n_params * sizeof(float)), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(la);
	CU_ASSERT_PTR_NOT_NULL_FATAL(lc);
	CU_ASSERT_EQUAL(json_array_size(json_object_get(lc, "steps")), 8);
	CU_ASSERT(same_losses(la, lc));
	json_decref(la);
	json_decref(lc);
	g2_free(a);
	g2_free(b);
	g2_free(c);

	/* resuming from a checkpoint of other data is refused */
	train_config *other = make_cfg("training_type: continued-pretrain, max_length: 8");
	g2 *d = run(cfg, dir, 0, 2, TRAIN_ECANCELED, NULL); /* a checkpoint at step 2 */
	g2 *e = run(other, dir, 1, 0, TRAIN_ECOMPONENT, NULL);
	g2_free(d);
	g2_free(e);
	train_config_destroy(other);
	train_config_destroy(cfg);
}

static void test_resume_full(void)
{
	check_resume("training_type: full", "full");
}

static void test_resume_lora(void)
{
	check_resume("training_type: lora, lora_r: 2, lora_dropout: 0.1, lora_target_modules: [c_attn, c_fc], "
	             "gradient_checkpointing: true", "lora");
}

static const test_case cases[] = {
	{ "full fine-tuning: stopped and resumed = uninterrupted", test_resume_full },
	{ "LoRA with dropout and checkpointing: the same", test_resume_lora },
	{ NULL, NULL },
};

int main(void)
{
	return test_main("gpt2_resume", cases);
}
