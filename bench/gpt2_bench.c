/*
 * bench/gpt2_bench.c - one training configuration of issue 10's benchmark,
 * run in its own process so that its peak resident memory is its own:
 *
 *   gpt2_bench gpt2 DIR MODE B T STEPS THREADS PRECISION
 *       a GPT-2 loaded from the Hugging Face folder DIR (weights only);
 *       MODE full (every weight), lora (r 8, alpha 16, dropout 0.1 on the
 *       q and v parts of c_attn, base frozen), lora-ckpt (the same with
 *       gradient checkpointing) or full-ckpt
 *   gpt2_bench bert - MODE B T STEPS THREADS PRECISION
 *       a bert-mini classifier (4 layers, 256 wide, vocabulary 30522, 2
 *       labels; random weights); MODE full, lora (r 8, alpha 16, dropout
 *       0.1 on query and value, the base frozen, the classifier trained
 *       beside the adapters as PEFT's modules_to_save), lora-ckpt (the same
 *       with gradient checkpointing) or full-ckpt
 *
 * A step: forward, next-token (GPT-2) or label (BERT) cross-entropy,
 * backward, clipping at 1 and one AdamW step over the trainable weights,
 * as GPT2LM's training does.  PRECISION fp32 or bf16 (bf16 matmuls where
 * the CPU has them).  After one warm-up step, prints
 *   step_ms MEDIAN cpu_ms MEAN peak_rss_mb RSS loss LOSS
 * (the median wall time of a step, the mean CPU time of one: user and
 * system of all threads, which a loaded machine does not inflate).
 */
#include "../plugins/bert/bert.h"
#include "../plugins/gpt2/gpt2.h"

#include <train/kernels.h>
#include <train/nn.h>
#include <train/optim.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* CPU seconds (user + system) of the process so far */
static double cpu(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + 1e-6 * ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_sec +
	       1e-6 * ru.ru_stime.tv_usec;
}

static void report(double *ms, double cpu_s, int steps, double loss)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	qsort(ms, (size_t)steps, sizeof *ms, cmp_d);
	printf("step_ms %.1f cpu_ms %.1f peak_rss_mb %.1f loss %.4f\n", ms[steps / 2], 1e3 * cpu_s / steps,
	       ru.ru_maxrss / 1024.0, loss);
}

static int run_gpt2(const char *dir, const char *mode, int B, int T, int steps)
{
	int lora = !strncmp(mode, "lora", 4), ckpt = strstr(mode, "ckpt") != NULL;
	gpt2_model *m = NULL;
	train_error err = { 0 };
	if (gpt2_hf_load(dir, !lora, &m, NULL, &err)) {
		fprintf(stderr, "gpt2_bench: %s: %s\n", err.file, err.text);
		return 1;
	}
	if (lora && gpt2_lora_add(m, 1u << GPT2_ATTN, GPT2_Q | GPT2_V, 8, 16.0f, 0.1f, 1))
		return 1;
	train_kernels_weights_register(m->params, m->n_params);
	size_t n = lora ? m->lora->n : m->n_params;
	float *p = lora ? m->lora->params : m->params, *g = lora ? m->lora->grads : m->grads;
	float *mo = calloc(n, sizeof *mo), *ve = calloc(n, sizeof *ve);
	int32_t *ids = malloc((size_t)B * T * sizeof *ids), *tg = malloc((size_t)B * T * sizeof *tg);
	double *ms = malloc((size_t)steps * sizeof *ms), loss = 0;
	if (!mo || !ve || !ids || !tg || !ms)
		return 1;
	train_rng r;
	train_rng_seed(&r, 2);
	for (int i = 0; i < B * T; i++)
		ids[i] = (int32_t)train_rng_below(&r, (uint64_t)m->cfg.vocab_size);
	for (int i = 0; i < B * T; i++)
		tg[i] = (i + 1) % T ? ids[i + 1] : -1;
	gpt2_acts a = { 0 };
	train_adamw_cfg oc = train_adamw_defaults();
	double c0 = 0;
	for (int s = 0; s <= steps; s++) {
		double t0 = now();
		if (s == 1)
			c0 = cpu();
		gpt2_zero_grad(m);
		if (gpt2_forward(m, &a, ids, B, T, ckpt, &r) || gpt2_loss(m, &a, tg, 1.0f, 1, &loss, NULL) ||
		    gpt2_backward(m, &a))
			return 1;
		train_clip_grad_norm(g, n, 1.0f);
		train_adamw_step(&oc, p, g, mo, ve, n, 1e-4f, s + 1);
		if (!lora)
			train_kernels_weights_changed(m->params);
		if (s)
			ms[s - 1] = 1e3 * (now() - t0);
	}
	report(ms, cpu() - c0, steps, loss);
	train_kernels_weights_unregister(m->params);
	gpt2_acts_free(&a);
	gpt2_model_destroy(m);
	free(mo); free(ve); free(ids); free(tg); free(ms);
	return 0;
}

/* AdamW over two arrays as one: the norm of both for clipping at 1 */
static void clip2(float *g1, size_t n1, float *g2, size_t n2)
{
	double ss = 0;
	for (size_t i = 0; i < n1; i++)
		ss += (double)g1[i] * g1[i];
	for (size_t i = 0; i < n2; i++)
		ss += (double)g2[i] * g2[i];
	double nrm = sqrt(ss);
	if (nrm <= 1.0)
		return;
	float k = (float)(1.0 / (nrm + 1e-6));
	for (size_t i = 0; i < n1; i++)
		g1[i] *= k;
	for (size_t i = 0; i < n2; i++)
		g2[i] *= k;
}

static int run_bert(const char *mode, int B, int T, int steps)
{
	bert_config cfg;
	bert_builtin_config("bert-mini", &cfg);
	cfg.vocab_size = 30522;
	cfg.num_labels = 2;
	const int lora = !strncmp(mode, "lora", 4), ckpt = strstr(mode, "ckpt") != NULL;
	bert_model *m;
	if (bert_model_create(&cfg, &m))
		return 1;
	bert_model_init(m, 1);
	if (lora && (bert_lora_add(m, 1u << BERT_Q | 1u << BERT_V, 8, 16.0f, 0.1f, 3) || bert_freeze_base(m, 1)))
		return 1;
	const float *wreg;
	size_t nreg;
	bert_matmul_weights(m, &wreg, &nreg);
	train_kernels_weights_register(wreg, nreg);
	/* the trainable arrays: the adapters and the model's gradient range */
	const size_t nl = lora ? m->lora->n : 0, ng = bert_n_grads(m);
	float *pl = lora ? m->lora->params : NULL, *gl = lora ? m->lora->grads : NULL;
	float *pg = m->params + m->grad_off;
	int32_t *ids = malloc((size_t)B * T * sizeof *ids), labels[64];
	float *am = calloc(ng + nl, sizeof *am), *av = calloc(ng + nl, sizeof *av);
	float *dh = malloc((size_t)B * T * cfg.hidden * sizeof *dh), probs[128], dl[128];
	double *ms = malloc((size_t)steps * sizeof *ms);
	if (!ids || !am || !av || !dh || !ms || B > 64)
		return 1;
	train_rng r;
	train_rng_seed(&r, 2);
	for (int i = 0; i < B * T; i++)
		ids[i] = 5 + (int32_t)train_rng_below(&r, (uint64_t)cfg.vocab_size - 5);
	for (int b = 0; b < B; b++)
		labels[b] = (int32_t)train_rng_below(&r, 2);
	bert_acts a = { 0 };
	a.ckpt = ckpt;
	train_adamw_cfg oc = train_adamw_defaults();
	float loss = 0;
	double c0 = 0;
	for (int s = 0; s <= steps; s++) {
		double t0 = now();
		if (s == 1)
			c0 = cpu();
		bert_zero_grad(m);
		if (bert_forward(m, &a, ids, NULL, NULL, B, T, 0.1f, &r) || bert_cls_forward(m, &a, &r))
			return 1;
		train_cross_entropy_forward(&loss, NULL, probs, a.logits, labels, B, 2, 0.0f);
		memset(dl, 0, sizeof dl);
		train_cross_entropy_backward(dl, probs, labels, B, 2, 0.0f, 1.0f);
		memset(dh, 0, (size_t)B * T * cfg.hidden * sizeof *dh);
		if (bert_cls_backward(m, &a, dl, dh) || bert_backward(m, &a, dh))
			return 1;
		if (lora) {
			clip2(gl, nl, m->grads, ng);
			train_adamw_step(&oc, pl, gl, am, av, nl, 5e-5f, s + 1);
			train_adamw_step(&oc, pg, m->grads, am + nl, av + nl, ng, 5e-5f, s + 1);
		} else {
			train_clip_grad_norm(m->grads, ng, 1.0f);
			train_adamw_step(&oc, pg, m->grads, am, av, ng, 5e-5f, s + 1);
		}
		if (!lora) /* the frozen base's bf16 copy is made once */
			train_kernels_weights_changed(wreg);
		if (s)
			ms[s - 1] = 1e3 * (now() - t0);
	}
	report(ms, cpu() - c0, steps, loss);
	train_kernels_weights_unregister(wreg);
	bert_acts_free(&a);
	bert_model_destroy(m);
	free(ids); free(am); free(av); free(dh); free(ms);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 9) {
		fprintf(stderr, "usage: gpt2_bench gpt2|bert DIR MODE B T STEPS THREADS fp32|bf16\n");
		return 2;
	}
	int B = atoi(argv[4]), T = atoi(argv[5]), steps = atoi(argv[6]), threads = atoi(argv[7]);
	train_precision prec = !strcmp(argv[8], "bf16") ? TRAIN_PRECISION_AUTO : TRAIN_PRECISION_FP32;
	if (B < 1 || T < 2 || steps < 1 || threads < 1 || train_kernels_init(threads, prec))
		return 2;
	if (!strcmp(argv[1], "gpt2"))
		return run_gpt2(argv[2], argv[3], B, T, steps);
	if (!strcmp(argv[1], "bert") && (!strcmp(argv[3], "full") || !strcmp(argv[3], "lora") ||
	                                 !strcmp(argv[3], "lora-ckpt") || !strcmp(argv[3], "full-ckpt")))
		return run_bert(argv[3], B, T, steps);
	fprintf(stderr, "gpt2_bench: unknown model or mode\n");
	return 2;
}
