/*
 * bench/bert_bench.c - training steps/s of a bert-mini-shaped sequence
 * classifier (4 layers, hidden 256, 4 heads, FFN 1024, vocabulary 8000,
 * 150 labels), batch 32 of 32 tokens (CLINC150-sized utterances, the last
 * quarter of each sequence padded), hidden dropout 0.1: forward, cross-
 * entropy, backward, gradient clipping and one AdamW step per step, fp32.
 * bench/bert_torch.py is the same model and step in PyTorch.
 *
 *   bert_bench THREADS STEPS   prints "steps/s X"
 */
#include "../plugins/bert/bert.h"

#include <train/kernels.h>
#include <train/nn.h>
#include <train/optim.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { B = 32, T = 32, V = 8000, LABELS = 150 };

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 2, steps = argc > 2 ? atoi(argv[2]) : 20;
	if (train_kernels_init(threads, TRAIN_PRECISION_FP32))
		return 1;
	bert_config cfg;
	bert_builtin_config("bert-mini", &cfg);
	cfg.vocab_size = V;
	cfg.num_labels = LABELS;
	bert_model *m;
	if (bert_model_create(&cfg, &m))
		return 1;
	bert_model_init(m, 1);
	static int32_t ids[B * T], labels[B];
	static uint8_t mask[B * T];
	train_rng r;
	train_rng_seed(&r, 2);
	for (int i = 0; i < B * T; i++) {
		ids[i] = 5 + (int32_t)train_rng_below(&r, V - 5);
		mask[i] = (i % T) < T * 3 / 4;
	}
	for (int b = 0; b < B; b++)
		labels[b] = (int32_t)train_rng_below(&r, LABELS);
	float *am = calloc(m->n_params, sizeof *am), *av = calloc(m->n_params, sizeof *av);
	float *dh = malloc((size_t)B * T * cfg.hidden * sizeof *dh), probs[B * LABELS], dl[B * LABELS];
	bert_acts a = { 0 };
	train_adamw_cfg oc = train_adamw_defaults();
	double t0 = 0;
	float loss = 0;
	for (int s = 0; s < steps + 3; s++) {
		if (s == 3)
			t0 = now();
		bert_zero_grad(m);
		if (bert_forward(m, &a, ids, NULL, mask, B, T, 0.1f, &r) || bert_cls_forward(m, &a, &r))
			return 1;
		train_cross_entropy_forward(&loss, NULL, probs, a.logits, labels, B, LABELS, 0.0f);
		memset(dl, 0, sizeof dl);
		train_cross_entropy_backward(dl, probs, labels, B, LABELS, 0.0f, 1.0f);
		memset(dh, 0, (size_t)B * T * cfg.hidden * sizeof *dh);
		if (bert_cls_backward(m, &a, dl, dh) || bert_backward(m, &a, dh))
			return 1;
		train_clip_grad_norm(m->grads, m->n_params, 1.0f);
		train_adamw_step(&oc, m->params, m->grads, am, av, m->n_params, 5e-5f, s + 1);
	}
	double el = now() - t0;
	printf("steps/s %.3f (loss %.3f)\n", steps / el, loss);
	free(am);
	free(av);
	free(dh);
	bert_acts_free(&a);
	bert_model_destroy(m);
	return 0;
}
