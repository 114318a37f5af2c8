/*
 * plugins/ppo/ppo_kern.h - the MLP kernels of ppo.h, written once over
 * GCC vector types and included by ppo_kern.c once per instruction set
 * (KSUF names the set, VW is its vector width in floats; the includer sets
 * the target with #pragma GCC target).  Every loop runs over the hidden
 * width H in whole vectors, so H must be a multiple of VW.
 *
 * Why not oneDNN: at PPO's sizes (64 x 64 weights, 128-row minibatches,
 * 4-row rollout batches) a primitive's call overhead is larger than the
 * arithmetic; these loops keep a weight row per iteration in registers
 * and the whole network in L1 (ppo_bench.sh measures the result).
 *
 * tanh is a rational minimax approximation (the one Eigen uses for float:
 * odd degree 13 over even degree 6, input clamped to +-7.9053), absolute
 * error under 4e-7 over the reals; its derivative is taken as 1 - y^2.
 */
#define KCAT2(a, b) a##_##b
#define KCAT(a, b) KCAT2(a, b)
#define K(name) KCAT(name, KSUF)

typedef float K(vf) __attribute__((vector_size(VW * 4), aligned(4)));
typedef int32_t K(vi) __attribute__((vector_size(VW * 4), aligned(4)));

#define VF K(vf)
#define VI K(vi)
#define LD(p) (*(const VF *)(const void *)(p))
#define ST(p, x) (*(VF *)(void *)(p) = (x))

static inline VF K(splat)(float x)
{
	VF v = { 0 };
	return v + x;
}

static inline float K(hsum)(VF v)
{
	float s = 0.0f;
	for (int i = 0; i < VW; i++)
		s += v[i];
	return s;
}

static inline VF K(tanh_v)(VF x)
{
	const VF lim = K(splat)(7.90531110763549805f), nlim = K(splat)(-7.90531110763549805f);
	VI hi = x > lim, lo = x < nlim;
	x = (VF)(((VI)x & ~hi) | ((VI)lim & hi));
	x = (VF)(((VI)x & ~lo) | ((VI)nlim & lo));
	VF x2 = x * x;
	VF p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
	p = p * x2 + -8.60467152213735e-11f;
	p = p * x2 + 5.12229709037114e-08f;
	p = p * x2 + 1.48572235717979e-05f;
	p = p * x2 + 6.37261928875436e-04f;
	p = p * x2 + 4.89352455891786e-03f;
	p = p * x;
	VF q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
	q = q * x2 + 2.26843463243900e-03f;
	q = q * x2 + 4.89352518554385e-03f;
	return p / q;
}

static void K(tanh_n)(float *y, const float *x, size_t n)
{
	for (size_t i = 0; i < n; i += VW)
		ST(y + i, K(tanh_v)(LD(x + i)));
}

/* y = act(x wt + b) for rows n0..n1, two rows at a time (each weight
 * vector loaded once serves both), four vectors (4 VW outputs) per pass
 * over the inputs; a tail of fewer vectors one at a time.  `tanh_out`:
 * apply tanh (the forward pass) or not (dx = dpre w, w the transposed
 * weights, in the backward pass). */
static inline void K(rows_times)(float *y, const float *x, const float *wt, const float *b,
                                 int N, int I, int H, int tanh_out)
{
	int n = 0;
	for (; n + 2 <= N; n += 2) {
		const float *x0 = x + (size_t)n * I, *x1 = x0 + I;
		float *y0 = y + (size_t)n * H, *y1 = y0 + H;
		int o = 0;
		for (; o + 4 * VW <= H; o += 4 * VW) {
			VF a0, a1, a2, a3;
			if (b) {
				a0 = LD(b + o);
				a1 = LD(b + o + VW);
				a2 = LD(b + o + 2 * VW);
				a3 = LD(b + o + 3 * VW);
			} else {
				a0 = a1 = a2 = a3 = K(splat)(0.0f);
			}
			VF c0 = a0, c1 = a1, c2 = a2, c3 = a3;
			for (int i = 0; i < I; i++) {
				const float *w = wt + (size_t)i * H + o;
				VF w0 = LD(w), w1 = LD(w + VW), w2 = LD(w + 2 * VW), w3 = LD(w + 3 * VW);
				VF p = K(splat)(x0[i]), q = K(splat)(x1[i]);
				a0 += p * w0;
				a1 += p * w1;
				a2 += p * w2;
				a3 += p * w3;
				c0 += q * w0;
				c1 += q * w1;
				c2 += q * w2;
				c3 += q * w3;
			}
			if (tanh_out) {
				a0 = K(tanh_v)(a0); a1 = K(tanh_v)(a1); a2 = K(tanh_v)(a2); a3 = K(tanh_v)(a3);
				c0 = K(tanh_v)(c0); c1 = K(tanh_v)(c1); c2 = K(tanh_v)(c2); c3 = K(tanh_v)(c3);
			}
			ST(y0 + o, a0);
			ST(y0 + o + VW, a1);
			ST(y0 + o + 2 * VW, a2);
			ST(y0 + o + 3 * VW, a3);
			ST(y1 + o, c0);
			ST(y1 + o + VW, c1);
			ST(y1 + o + 2 * VW, c2);
			ST(y1 + o + 3 * VW, c3);
		}
		for (; o < H; o += VW) {
			VF a0 = b ? LD(b + o) : K(splat)(0.0f), c0 = a0;
			for (int i = 0; i < I; i++) {
				VF w0 = LD(wt + (size_t)i * H + o);
				a0 += K(splat)(x0[i]) * w0;
				c0 += K(splat)(x1[i]) * w0;
			}
			ST(y0 + o, tanh_out ? K(tanh_v)(a0) : a0);
			ST(y1 + o, tanh_out ? K(tanh_v)(c0) : c0);
		}
	}
	for (; n < N; n++) {
		const float *xr = x + (size_t)n * I;
		float *yr = y + (size_t)n * H;
		for (int o = 0; o < H; o += VW) {
			VF a0 = b ? LD(b + o) : K(splat)(0.0f);
			for (int i = 0; i < I; i++)
				a0 += K(splat)(xr[i]) * LD(wt + (size_t)i * H + o);
			ST(yr + o, tanh_out ? K(tanh_v)(a0) : a0);
		}
	}
}

static void K(fwd_hidden)(float *y, const float *x, const float *wt, const float *b, int N, int I,
                          int H)
{
	K(rows_times)(y, x, wt, b, N, I, H, 1);
}

static void K(fwd_head)(float *out, const float *h, const float *w, const float *b, int N, int H,
                        int K)
{
	for (int n = 0; n < N; n++) {
		const float *hr = h + (size_t)n * H;
		for (int k = 0; k < K; k++) {
			const float *wr = w + (size_t)k * H;
			VF acc = { 0 };
			for (int o = 0; o < H; o += VW)
				acc += LD(hr + o) * LD(wr + o);
			out[(size_t)n * K + k] = b[k] + K(hsum)(acc);
		}
	}
}

static void K(bwd_head)(float *dh, float *dw, float *db, const float *dout, const float *h,
                        const float *w, int N, int H, int K)
{
	for (int n = 0; n < N; n++) {
		float *dhr = dh + (size_t)n * H;
		for (int k = 0; k < K; k++) {
			VF d = K(splat)(dout[(size_t)n * K + k]);
			const float *wr = w + (size_t)k * H;
			for (int o = 0; o < H; o += VW)
				ST(dhr + o, LD(dhr + o) + d * LD(wr + o));
		}
	}
	for (int k = 0; k < K; k++) {
		float *dwr = dw + (size_t)k * H;
		float s = 0.0f;
		for (int o = 0; o < H; o += VW) {
			VF acc = LD(dwr + o);
			for (int n = 0; n < N; n++)
				acc += K(splat)(dout[(size_t)n * K + k]) * LD(h + (size_t)n * H + o);
			ST(dwr + o, acc);
		}
		for (int n = 0; n < N; n++)
			s += dout[(size_t)n * K + k];
		db[k] += s;
	}
}

static void K(bwd_hidden)(float *dx, float *dwt, float *db, float *dy, const float *y,
                          const float *x, const float *wt, int N, int I, int H)
{
	const VF one = K(splat)(1.0f);
	for (int n = 0; n < N; n++) {
		float *d = dy + (size_t)n * H;
		const float *yr = y + (size_t)n * H;
		for (int o = 0; o < H; o += VW) {
			VF yy = LD(yr + o);
			ST(d + o, LD(d + o) * (one - yy * yy));
		}
	}
	for (int o = 0; o < H; o += VW) {
		VF acc = LD(db + o);
		for (int n = 0; n < N; n++)
			acc += LD(dy + (size_t)n * H + o);
		ST(db + o, acc);
	}
	/* dwt (I, H) += x^T dpre: a weight row's four vectors stay in
	 * registers over the batch. */
	for (int i = 0; i < I; i++) {
		float *w = dwt + (size_t)i * H;
		int o = 0;
		for (; o + 4 * VW <= H; o += 4 * VW) {
			VF a0 = LD(w + o), a1 = LD(w + o + VW), a2 = LD(w + o + 2 * VW), a3 = LD(w + o + 3 * VW);
			for (int n = 0; n < N; n++) {
				const float *dr = dy + (size_t)n * H + o;
				VF xi = K(splat)(x[(size_t)n * I + i]);
				a0 += xi * LD(dr);
				a1 += xi * LD(dr + VW);
				a2 += xi * LD(dr + 2 * VW);
				a3 += xi * LD(dr + 3 * VW);
			}
			ST(w + o, a0);
			ST(w + o + VW, a1);
			ST(w + o + 2 * VW, a2);
			ST(w + o + 3 * VW, a3);
		}
		for (; o < H; o += VW) {
			VF a0 = LD(w + o);
			for (int n = 0; n < N; n++)
				a0 += K(splat)(x[(size_t)n * I + i]) * LD(dy + (size_t)n * H + o);
			ST(w + o, a0);
		}
	}
	if (!dx)
		return;
	/* dx = dpre wt^T.  With I a whole number of vectors, through a
	 * transposed copy w (H, I), so that it runs like the forward pass
	 * (row dots would end in a horizontal sum per element); else dots. */
	float *w = I % VW == 0 ? malloc(sizeof(float) * (size_t)H * I) : NULL;
	if (w) {
		for (int i = 0; i < I; i++)
			for (int o = 0; o < H; o++)
				w[(size_t)o * I + i] = wt[(size_t)i * H + o];
		K(rows_times)(dx, dy, w, NULL, N, H, I, 0);
		free(w);
		return;
	}
	for (int n = 0; n < N; n++) {
		const float *dr = dy + (size_t)n * H;
		for (int i = 0; i < I; i++) {
			const float *wr = wt + (size_t)i * H;
			VF acc = { 0 };
			for (int o = 0; o < H; o += VW)
				acc += LD(dr + o) * LD(wr + o);
			dx[(size_t)n * I + i] = K(hsum)(acc);
		}
	}
}

static const ppo_kern K(kern) = {
	.isa = KNAME,
	.width = VW,
	.fwd_hidden = K(fwd_hidden),
	.fwd_head = K(fwd_head),
	.bwd_head = K(bwd_head),
	.bwd_hidden = K(bwd_hidden),
	.tanh_n = K(tanh_n),
};

#undef VF
#undef VI
#undef LD
#undef ST
#undef K
#undef KCAT
#undef KCAT2
