/*
 * plugins/ppo/gae.c - generalized advantage estimation (Schulman et al.,
 * 2016) as CleanRL's ppo.py computes it; shared by PPO on environments and
 * by PPO on language models (plugins/rlhf, one token a step).
 */
#include "ppo.h"

void ppo_gae(int T, int E, const float *rew, const float *val, const uint8_t *done,
             const float *next_val, const uint8_t *next_done, float gamma, float lambda,
             float *adv, float *ret)
{
	for (int e = 0; e < E; e++) {
		float last = 0.0f;
		for (int t = T - 1; t >= 0; t--) {
			float nnt, nv;
			if (t == T - 1) {
				nnt = 1.0f - next_done[e];
				nv = next_val[e];
			} else {
				nnt = 1.0f - done[(size_t)(t + 1) * E + e];
				nv = val[(size_t)(t + 1) * E + e];
			}
			size_t i = (size_t)t * E + e;
			float delta = rew[i] + gamma * nv * nnt - val[i];
			last = delta + gamma * lambda * nnt * last;
			adv[i] = last;
			ret[i] = last + val[i];
		}
	}
}
