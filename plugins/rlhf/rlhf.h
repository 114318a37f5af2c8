/*
 * plugins/rlhf/rlhf.h - the pieces of the "rlhf" plugin (issue 9) shared by
 * its files and tests/test_rlhf.c: the KL-penalised rewards, the adaptive
 * KL controller, the reward model's forward and backward passes, and PPO
 * on a Mamba language model.
 *
 * Legend: B rows, T tokens a row, D d_model, V vocabulary, P pairs, L
 * response tokens of one sequence.
 */
#ifndef RLHF_H
#define RLHF_H

#include "../mamba/mamba.h"
#include "../ppo/ppo.h"

#include <train/plugin.h>

/* ---- rewards and the KL controller ---------------------------------------- */

/*
 * Per-token rewards of one sampled response of L tokens (Ziegler et al.,
 * 2019): rew[t] = -beta (logp[t] - ref_logp[t]), and the reward model's
 * score added at the last token.  *kl (may be NULL) = sum_t logp - ref_logp,
 * the sequence's KL estimate.
 */
void rlhf_kl_rewards(int L, const float *logp, const float *ref_logp, float score, float beta,
                     float *rew, double *kl);

/* The adaptive KL coefficient (Ziegler et al., 2019, as trl's
 * AdaptiveKLController): e = clip(kl / target - 1, -0.2, 0.2);
 * value *= 1 + e * n_steps / horizon.  A fixed one when !adaptive. */
typedef struct rlhf_klctl {
	double value, target, horizon;
	int adaptive;
} rlhf_klctl;
void rlhf_klctl_update(rlhf_klctl *c, double kl, int n_steps);

/* x[i] = (x[i] - mean) / (std + 1e-8) over the entries with mask[i]
 * (std with ddof 1); others become 0.  Fewer than 2 entries: unchanged. */
void rlhf_whiten(float *x, const uint8_t *mask, size_t n);

/* ---- the reward model ------------------------------------------------------ */

typedef struct rlhf_rm {
	mamba_model *m;   /* the encoder (with gradients when trained) */
	float *head;      /* (D + 1): score weight, then bias */
	float *dhead;     /* (D + 1) gradients, or NULL */
	int pool_last;    /* pool the answer's last token instead of its mean */
	float *pooled;    /* (B, D) of the last forward */
	float *dh;        /* (B*T, D) scratch */
	size_t cap;
} rlhf_rm;

int rlhf_rm_create(const mamba_dims *d, int pool_last, rlhf_rm **out);
void rlhf_rm_destroy(rlhf_rm *r);
/* scores (B) of rows ids (B, T) whose answers are [start[b], end[b]). */
int rlhf_rm_forward(rlhf_rm *r, const int32_t *ids, const int *start, const int *end, int B,
                    int T, float *scores);
/* Add the gradient of sum_b dscore[b] * score[b] (after the forward). */
int rlhf_rm_backward(rlhf_rm *r, const int32_t *ids, const int *start, const int *end, int B,
                     int T, const float *dscore);
/* Bradley-Terry on P pairs (rows 0..P-1 chosen, P..2P-1 rejected):
 * *loss = mean -log sigmoid(r_c - r_r), *correct = pairs with r_c > r_r;
 * gradients added when grad. */
int rlhf_rm_pair_loss(rlhf_rm *r, const int32_t *ids, const int *start, const int *end, int P,
                      int T, int grad, float *loss, int *correct);

/* ---- PPO on the language model (ppo_lm.c) -------------------------------- */

/*
 * One batch of B sampled sequences (prompt + response) laid out in rows of
 * T tokens; sequence b's response is tokens [plen[b], plen[b] + rlen[b]),
 * each action j predicted at position plen[b] - 1 + j.  Per action (B, Lm)
 * with Lm the longest response: logp and values of the policy when
 * sampled, advantages and returns.
 */
typedef struct rlhf_batch {
	int B, T, Lm;
	int32_t *ids;     /* (B, T) */
	int *plen, *rlen; /* (B) */
	float *logp, *ref_logp, *val, *adv, *ret, *rew; /* (B, Lm) */
	uint8_t *mask;    /* (B, Lm) 1 for real actions */
	float *score;     /* (B) reward model */
} rlhf_batch;

typedef struct rlhf_ppo_coefs {
	float clip, vf_coef, clip_value;
} rlhf_ppo_coefs;

/* The policy: a Mamba LM (with gradients) and its value head. */
typedef struct rlhf_policy {
	mamba_model *m;
	float *vhead, *dvhead; /* (D + 1) */
	float *dlogits;        /* scratch */
	size_t cap;
} rlhf_policy;

/* Log-probabilities of each action (B, Lm) under `m` after a forward with
 * logits over b->ids; values from the head when vhead is not NULL. */
int rlhf_action_logp(mamba_model *m, const float *vhead, const rlhf_batch *b, const int *rows,
                     int nrows, float *logp, float *val);
/*
 * PPO's loss on rows[0..nrows) of the batch: the clipped surrogate on the
 * advantages and vf_coef * 0.5 * the clipped value loss, each a mean over
 * the actions; gradients added into p->m->grads and p->dvhead.
 * Statistics: *pg, *vf, *approx_kl, *clipfrac (NULL-able).
 */
int rlhf_ppo_loss_grad(rlhf_policy *p, const rlhf_batch *b, const int *rows, int nrows,
                       const rlhf_ppo_coefs *c, double *pg, double *vf, double *approx_kl,
                       double *clipfrac);

extern const train_component_class rlhf_ppo_lm_class;

/* ---- helpers of rlhf.c ------------------------------------------------------ */

#include <jansson.h>

typedef struct rlhf_jl {
	json_t **o;
	size_t n;
} rlhf_jl;
/* JSON Lines in a value (NULL: none) whose objects have string `keys`. */
int rlhf_jl_read(const train_value *v, const char *name, const char *const *keys, rlhf_jl *j,
                 train_ctx *ctx);
void rlhf_jl_free(rlhf_jl *j);
const char *rlhf_jstr(const json_t *o, const char *k);
/* UTF-8 -> at most max ids of a character vocabulary; -1: no memory. */
int rlhf_encode(const char *s, const int32_t *vocab, int nvocab, int32_t *ids, int max);
/* ids -> UTF-8, id 0 and END OF TEXT left out (malloc'd). */
char *rlhf_decode(const int32_t *ids, int n, const int32_t *vocab);
int rlhf_put_json(train_values *out, const char *name, json_t *o);
char *rlhf_res_path(const train_resource *res, const char *name);
double rlhf_now(void);
char *rlhf_value_text(const train_values *in, const char *name);
/* A reward model from a value (v) or a file (path); msg says why not. */
int rlhf_rm_read(const train_value *v, const char *path, rlhf_rm **out, int32_t **vocab,
                 int *nvocab, char *msg, size_t nmsg);
/* The score of prompt + answer, cut to L tokens. */
int rlhf_rm_score_text(rlhf_rm *r, const int32_t *vocab, int nvocab, int L, const char *prompt,
                       const char *answer, float *score);

#endif
