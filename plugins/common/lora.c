/*
 * plugins/common/lora.c - one LoRA adapter's forward, backward,
 * initialisation and merge (see lora.h).
 */
#include "lora.h"

#include <train/kernels.h>
#include <train/nn.h>

#include <math.h>

int lora_forward(const lora_shape *s, int N, const float *x, const float *A, const float *B,
                 float *xd, uint8_t *mask, float *u, float *y, int ldy, train_rng *rng)
{
	int rc;
	if (s->dropout > 0) {
		if ((rc = train_dropout_forward(xd, mask, x, (size_t)N * s->in, s->dropout, rng)))
			return rc;
		x = xd;
	}
	if ((rc = train_matmul(0, 1, N, s->r, s->in, 1.0f, x, s->in, A, s->in, 0.0f, u, s->r)))
		return rc;
	return train_matmul(0, 1, N, s->out, s->r, s->scale, u, s->r, B, s->r, 1.0f, y, ldy);
}

int lora_backward(const lora_shape *s, int N, const float *x, const float *xd, const uint8_t *mask,
                  const float *u, const float *A, const float *B, float *dA, float *dB,
                  const float *dy, int lddy, float *du, float *dxd, float *dx)
{
	const int in = s->in, out = s->out, r = s->r;
	const float *xin = s->dropout > 0 ? xd : x;
	int rc;
	/* dB += scale dy^T u;  du = scale dy B;  dA += du^T xd;  dx += drop'(du A) */
	if ((rc = train_matmul(1, 0, out, r, N, s->scale, dy, lddy, u, r, 1.0f, dB, r)) ||
	    (rc = train_matmul(0, 0, N, r, out, s->scale, dy, lddy, B, r, 0.0f, du, r)) ||
	    (rc = train_matmul(1, 0, r, in, N, 1.0f, du, r, xin, in, 1.0f, dA, in)))
		return rc;
	if (!dx)
		return TRAIN_OK;
	if (s->dropout > 0) {
		if ((rc = train_matmul(0, 0, N, in, r, 1.0f, du, r, A, in, 0.0f, dxd, in)))
			return rc;
		return train_dropout_backward(dx, dxd, mask, (size_t)N * in, s->dropout);
	}
	return train_matmul(0, 0, N, in, r, 1.0f, du, r, A, in, 1.0f, dx, in);
}

void lora_init_a(float *A, int r, int in, train_rng *rng)
{
	float bound = 1.0f / sqrtf((float)in);
	train_rng_fill_uniform(rng, A, (size_t)r * in, -bound, bound);
}

void lora_merge_into(float *W, size_t so, size_t si, const float *A, const float *B, int in,
                     int out, int r, float scale)
{
	for (int i = 0; i < in; i++)
		for (int o = 0; o < out; o++) {
			float acc = 0.0f;
			for (int k = 0; k < r; k++)
				acc += B[(size_t)o * r + k] * A[(size_t)k * in + i];
			W[(size_t)o * so + (size_t)i * si] += scale * acc;
		}
}
