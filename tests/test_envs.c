/*
 * tests/test_envs.c - plugins/envs (issue 9): CartPole-v1 and Pendulum-v1
 * step by step against their equations, written out here again from
 * gymnasium's classic-control definitions; a hand-computed first step;
 * termination, truncation and auto-reset; vectorised copies against single
 * ones; saved states.  The plugin's source is compiled in (its state is
 * read directly).
 */
#include <math.h>

#include "testlib.h"
#include "../plugins/envs/envs.c"

static void *make(const train_env_class *cls, const char *yaml, int n)
{
	train_config *cfg = NULL;
	train_error err = { 0 };
	if (yaml)
		CU_ASSERT_EQUAL_FATAL(train_config_parse(yaml, strlen(yaml), "t", &cfg, &err), 0);
	void *env = NULL;
	int rc = train_env_create(cls, cfg, n, &env, &err);
	train_config_destroy(cfg);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	return env;
}

/* The textbook cart-pole step (gymnasium's CartPoleEnv.step, Euler). */
static void cp_reference(double s[4], int action)
{
	const double g = 9.8, mc = 1.0, mp = 0.1, l = 0.5, f = 10.0, tau = 0.02;
	double x = s[0], xd = s[1], th = s[2], thd = s[3];
	double F = action ? f : -f;
	double temp = (F + mp * l * thd * thd * sin(th)) / (mc + mp);
	double thacc = (g * sin(th) - cos(th) * temp) /
	               (l * (4.0 / 3.0 - mp * cos(th) * cos(th) / (mc + mp)));
	double xacc = temp - mp * l * thacc * cos(th) / (mc + mp);
	s[0] = x + tau * xd;
	s[1] = xd + tau * xacc;
	s[2] = th + tau * thd;
	s[3] = thd + tau * thacc;
}

static void test_cartpole_first_step(void)
{
	cartpole *c = make(&cartpole_class, NULL, 1);
	float obs[4], r;
	uint8_t te, tr;
	CU_ASSERT_EQUAL(cartpole_class.reset(c, 3, obs), 0);
	memset(c->state, 0, 4 * sizeof(double));
	int32_t a = 1;
	CU_ASSERT_EQUAL(cartpole_class.step(c, &a, obs, &r, &te, &tr, NULL), 0);
	/* by hand: temp = 10/1.1, thetaacc = -temp / (0.5 (4/3 - 0.1/1.1)),
	 * xacc = temp - 0.05 thetaacc / 1.1; then one Euler step of 0.02 */
	double temp = 10.0 / 1.1, thacc = -temp / (0.5 * (4.0 / 3.0 - 0.1 / 1.1));
	double xacc = temp - 0.05 * thacc / 1.1;
	CU_ASSERT(fabs(thacc - -14.634146341) < 1e-8);
	CU_ASSERT(fabs(xacc - 9.756097561) < 1e-8);
	CU_ASSERT_EQUAL(obs[0], 0.0f);
	CU_ASSERT(fabsf(obs[1] - 0.19512195f) < 1e-7f);
	CU_ASSERT_EQUAL(obs[2], 0.0f);
	CU_ASSERT(fabsf(obs[3] - -0.29268292f) < 1e-7f);
	CU_ASSERT_EQUAL(r, 1.0f);
	CU_ASSERT_EQUAL(te, 0);
	CU_ASSERT_EQUAL(tr, 0);
	/* an action out of range steps nothing */
	a = 2;
	CU_ASSERT_EQUAL(cartpole_class.step(c, &a, obs, &r, &te, &tr, NULL), TRAIN_EINVAL);
	cartpole_class.destroy(c);
}

static void test_cartpole_equations(void)
{
	const char *cfgs[] = { NULL, "{max_episode_steps: 50}" };
	for (int ci = 0; ci < 2; ci++) {
		int64_t limit = ci ? 50 : 500;
		cartpole *c = make(&cartpole_class, cfgs[ci], 1);
		float obs[4], fin[4], r;
		uint8_t te, tr;
		train_rng pick;
		train_rng_seed(&pick, 5);
		CU_ASSERT_EQUAL(cartpole_class.reset(c, 42, obs), 0);
		double s[4];
		int64_t len = 0, episodes = 0, terms = 0, truncs = 0;
		for (int t = 0; t < 4000; t++) {
			memcpy(s, c->state, sizeof s);
			for (int k = 0; k < 4; k++) {
				CU_ASSERT_EQUAL(obs[k], (float)s[k]);
				if (len == 0)
					CU_ASSERT(s[k] >= -0.05 && s[k] < 0.05);
			}
			/* a PD controller, sometimes overridden, so that episodes
			 * both fail and last */
			int32_t a = s[2] + 0.5 * s[3] > 0;
			if (train_rng_uniform(&pick) < (t < 2000 ? 0.05f : 0.5f))
				a = !a;
			cp_reference(s, a);
			CU_ASSERT_EQUAL_FATAL(cartpole_class.step(c, &a, obs, &r, &te, &tr, fin), 0);
			len++;
			int want_term = fabs(s[0]) > 2.4 || fabs(s[2]) > 12 * 2 * M_PI / 360;
			int want_trunc = !want_term && len == limit;
			CU_ASSERT_EQUAL(te, want_term);
			CU_ASSERT_EQUAL(tr, want_trunc);
			CU_ASSERT_EQUAL(r, 1.0f);
			if (want_term || want_trunc) {
				for (int k = 0; k < 4; k++)
					CU_ASSERT(fabs(fin[k] - s[k]) <= 1e-6 * fabs(s[k]) + 1e-12);
				episodes++;
				terms += want_term;
				truncs += want_trunc;
				len = 0;
			} else {
				for (int k = 0; k < 4; k++)
					CU_ASSERT(fabs(c->state[k] - s[k]) <= 1e-12 * (1 + fabs(s[k])));
			}
		}
		CU_ASSERT(terms > 0);
		CU_ASSERT(truncs > 0);
		cartpole_class.destroy(c);
	}
}

/* Python's modulo, the pendulum's angle normalisation. */
static double pd_norm(double x)
{
	double y = x + M_PI - 2 * M_PI * floor((x + M_PI) / (2 * M_PI));
	return y - M_PI;
}

static void test_pendulum_equations(void)
{
	pendulum *p = make(&pendulum_class, NULL, 1);
	float obs[3], fin[3], r;
	uint8_t te, tr;
	CU_ASSERT_EQUAL(pendulum_class.reset(p, 9, obs), 0);
	CU_ASSERT(fabs(angle_normalize(-4.0) - (2 * M_PI - 4.0)) < 1e-12);
	CU_ASSERT(fabs(angle_normalize(7.0) - (7.0 - 2 * M_PI)) < 1e-12);
	train_rng pick;
	train_rng_seed(&pick, 1);
	int len = 0, truncs = 0;
	for (int t = 0; t < 700; t++) {
		double th = p->state[0], thd = p->state[1];
		CU_ASSERT(fabsf(obs[0] - (float)cos(th)) == 0 && fabsf(obs[1] - (float)sin(th)) == 0);
		CU_ASSERT_EQUAL(obs[2], (float)thd);
		float a = 6 * train_rng_uniform(&pick) - 3; /* beyond the torque limit too */
		double u = a < -2 ? -2 : a > 2 ? 2 : a;
		double cost = pd_norm(th) * pd_norm(th) + .1 * thd * thd + .001 * u * u;
		double nthd = thd + (3 * 10.0 / 2 * sin(th) + 3.0 * u) * 0.05;
		nthd = nthd < -8 ? -8 : nthd > 8 ? 8 : nthd;
		double nth = th + nthd * 0.05;
		CU_ASSERT_EQUAL_FATAL(pendulum_class.step(p, &a, obs, &r, &te, &tr, fin), 0);
		len++;
		CU_ASSERT(fabs(r - -cost) <= 1e-6 * (1 + cost));
		CU_ASSERT_EQUAL(te, 0);
		CU_ASSERT_EQUAL(tr, len == 200);
		if (tr) {
			CU_ASSERT(fabsf(fin[2] - (float)nthd) <= 1e-6f);
			CU_ASSERT(fabsf(fin[0] - (float)cos(nth)) <= 1e-6f);
			truncs++;
			len = 0;
			CU_ASSERT(p->state[0] >= -M_PI && p->state[0] < M_PI);
			CU_ASSERT(p->state[1] >= -1 && p->state[1] < 1);
		} else {
			CU_ASSERT(fabs(p->state[0] - nth) <= 1e-12 * (1 + fabs(nth)));
			CU_ASSERT(fabs(p->state[1] - nthd) <= 1e-12 * (1 + fabs(nthd)));
		}
	}
	CU_ASSERT_EQUAL(truncs, 3);
	pendulum_class.destroy(p);
}

/* N copies reset with seed s behave like N single copies reset with s + i. */
static void vec_vs_single(const train_env_class *cls, int D, int discrete)
{
	enum { N = 5, STEPS = 1500 };
	void *vec = make(cls, NULL, N), *one[N];
	float vo[N * 8], vf[N * 8], vr[N], so[8], sf[8], sr;
	uint8_t vte[N], vtr[N], ste, str;
	CU_ASSERT_EQUAL(cls->reset(vec, 11, vo), 0);
	for (int i = 0; i < N; i++) {
		one[i] = make(cls, NULL, 1);
		CU_ASSERT_EQUAL(cls->reset(one[i], 11 + (uint64_t)i, so), 0);
		CU_ASSERT_EQUAL(memcmp(so, vo + i * D, sizeof(float) * D), 0);
	}
	train_rng pick;
	train_rng_seed(&pick, 3);
	int same = 1;
	for (int t = 0; t < STEPS; t++) {
		int32_t ai[N];
		float af[N];
		for (int i = 0; i < N; i++) {
			ai[i] = (int32_t)train_rng_below(&pick, 2);
			af[i] = 4 * train_rng_uniform(&pick) - 2;
		}
		memset(vf, 0, sizeof vf);
		CU_ASSERT_EQUAL_FATAL(cls->step(vec, discrete ? (void *)ai : (void *)af, vo, vr, vte, vtr, vf), 0);
		for (int i = 0; i < N; i++) {
			memset(sf, 0, sizeof sf);
			cls->step(one[i], discrete ? (void *)&ai[i] : (void *)&af[i], so, &sr, &ste, &str, sf);
			same &= !memcmp(so, vo + i * D, sizeof(float) * D) && sr == vr[i] &&
			        ste == vte[i] && str == vtr[i] &&
			        (!(ste | str) || !memcmp(sf, vf + i * D, sizeof(float) * D));
		}
	}
	CU_ASSERT(same);
	/* a saved state continues the same way */
	void *buf = NULL;
	size_t size = 0;
	CU_ASSERT_EQUAL(cls->save_state(vec, &buf, &size), 0);
	void *copy = make(cls, NULL, N);
	CU_ASSERT_EQUAL(cls->load_state(copy, buf, size), 0);
	CU_ASSERT_EQUAL(cls->load_state(copy, buf, size - 1), TRAIN_ECORRUPT);
	void *other = make(cls, NULL, N - 1);
	CU_ASSERT_EQUAL(cls->load_state(other, buf, size), TRAIN_ECORRUPT);
	cls->destroy(other);
	free(buf);
	float co[N * 8], cr[N];
	uint8_t cte[N], ctr[N];
	for (int t = 0; t < 600; t++) {
		int32_t ai[N];
		float af[N];
		for (int i = 0; i < N; i++) {
			ai[i] = t % 3 == 0;
			af[i] = (float)((t % 7) - 3) * 0.5f;
		}
		cls->step(vec, discrete ? (void *)ai : (void *)af, vo, vr, vte, vtr, NULL);
		cls->step(copy, discrete ? (void *)ai : (void *)af, co, cr, cte, ctr, NULL);
		same &= !memcmp(vo, co, sizeof(float) * N * D) && !memcmp(vr, cr, sizeof vr) &&
		        !memcmp(vte, cte, N) && !memcmp(vtr, ctr, N);
	}
	CU_ASSERT(same);
	cls->destroy(copy);
	cls->destroy(vec);
	for (int i = 0; i < N; i++)
		cls->destroy(one[i]);
}

static void test_vectorised(void)
{
	vec_vs_single(&cartpole_class, 4, 1);
	vec_vs_single(&pendulum_class, 3, 0);
}

static void test_config_errors(void)
{
	train_config *cfg = NULL;
	train_error err = { 0 };
	const char *y = "{max_episode_stepz: 3}";
	CU_ASSERT_EQUAL(train_config_parse(y, strlen(y), "e.yml", &cfg, &err), 0);
	void *env = (void *)1;
	CU_ASSERT_EQUAL(train_env_create(&cartpole_class, cfg, 1, &env, &err), TRAIN_ECONFIG);
	CU_ASSERT_PTR_NULL(env);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.text, "max_episode_steps"));
	train_config_destroy(cfg);
	CU_ASSERT_EQUAL(train_env_create(&cartpole_class, NULL, 0, &env, &err), TRAIN_EINVAL);
	y = "{max_episode_steps: 0}";
	CU_ASSERT_EQUAL(train_config_parse(y, strlen(y), "e.yml", &cfg, &err), 0);
	CU_ASSERT_EQUAL(train_env_create(&cartpole_class, cfg, 1, &env, &err), TRAIN_ECONFIG);
	train_config_destroy(cfg);
	/* step before reset */
	env = make(&cartpole_class, NULL, 1);
	int32_t a = 0;
	float o[4], r;
	uint8_t te, tr;
	CU_ASSERT_EQUAL(cartpole_class.step(env, &a, o, &r, &te, &tr, NULL), TRAIN_EINVAL);
	cartpole_class.destroy(env);
}

static const test_case cases[] = {
	{ "cartpole first step by hand", test_cartpole_first_step },
	{ "cartpole against the equations", test_cartpole_equations },
	{ "pendulum against the equations", test_pendulum_equations },
	{ "vectorised equals single, saved states", test_vectorised },
	{ "config errors", test_config_errors },
	{ NULL, NULL },
};

int main(void)
{
	return test_main("envs", cases);
}
