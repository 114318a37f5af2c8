/*
 * plugins/envs/envs.c - the "envs" plugin: first-party reinforcement
 * learning environments (issue 9), through the environment ABI of
 * <train/env.h>.
 *
 *   CartPole-v1   gymnasium's classic-control cart-pole: gravity 9.8, cart
 *                 mass 1.0, pole mass 0.1, half pole length 0.5, force 10,
 *                 tau 0.02, explicit Euler; terminated when |x| > 2.4 or
 *                 |theta| > 12 degrees, truncated after 500 steps; reward 1
 *                 per step (the last one included); start uniform in
 *                 [-0.05, 0.05] for all four state variables; actions 0
 *                 (push left) and 1 (push right).
 *   Pendulum-v1   gymnasium's inverted pendulum: g 10, m 1, l 1, dt 0.05,
 *                 torque clipped to [-2, 2], speed clipped to [-8, 8],
 *                 reward -(angle^2 + 0.1 speed^2 + 0.001 torque^2) with the
 *                 angle normalised to [-pi, pi); observation (cos, sin,
 *                 speed); start angle uniform in [-pi, pi], speed in
 *                 [-1, 1]; truncated after 200 steps, never terminated.
 *
 * As in gymnasium, the state is kept in double precision and the
 * observation is its fp32 rounding; the dynamics are the same expressions
 * in the same order (tests/test_envs.c recomputes them from the equations).
 * What differs from gymnasium is the random stream: each copy draws its
 * starts from its own xoshiro256** (train_rng) seeded with seed + i, not
 * from NumPy's PCG64, so start states are equally distributed but not the
 * same numbers.
 */
#include <train/plugin.h>
#include <train/tensor.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A uniform double in [lo, hi): the top 53 bits of one draw. */
static double uniform(train_rng *r, double lo, double hi)
{
	return lo + (hi - lo) * ((double)(train_rng_u64(r) >> 11) * 0x1p-53);
}

/* ---- saved states ---------------------------------------------------------- */

/* A saved state: magic, the copies' count, then the arrays as they are in
 * memory (doubles, step counters, generators).  For this machine only. */
#define STATE_MAGIC 0x53564e45u /* "ENVS" */

typedef struct state_part {
	void *p;
	size_t size;
} state_part;

static int save_parts(uint32_t n, const state_part *parts, size_t np, void **buf, size_t *size)
{
	size_t total = 8;
	for (size_t k = 0; k < np; k++)
		total += parts[k].size;
	unsigned char *b = malloc(total);
	if (!b)
		return TRAIN_ENOMEM;
	uint32_t head[2] = { STATE_MAGIC, n };
	memcpy(b, head, 8);
	size_t at = 8;
	for (size_t k = 0; k < np; k++) {
		memcpy(b + at, parts[k].p, parts[k].size);
		at += parts[k].size;
	}
	*buf = b;
	*size = total;
	return TRAIN_OK;
}

static int load_parts(uint32_t n, const state_part *parts, size_t np, const void *buf, size_t size)
{
	size_t total = 8;
	for (size_t k = 0; k < np; k++)
		total += parts[k].size;
	uint32_t head[2];
	if (!buf || size != total)
		return TRAIN_ECORRUPT;
	memcpy(head, buf, 8);
	if (head[0] != STATE_MAGIC || head[1] != n)
		return TRAIN_ECORRUPT;
	size_t at = 8;
	for (size_t k = 0; k < np; k++) {
		memcpy(parts[k].p, (const unsigned char *)buf + at, parts[k].size);
		at += parts[k].size;
	}
	return TRAIN_OK;
}

/* ---- CartPole-v1 ----------------------------------------------------------- */

#define CP_GRAVITY 9.8
#define CP_MASSCART 1.0
#define CP_MASSPOLE 0.1
#define CP_TOTAL_MASS (CP_MASSPOLE + CP_MASSCART)
#define CP_LENGTH 0.5 /* half the pole's length */
#define CP_POLEMASS_LENGTH (CP_MASSPOLE * CP_LENGTH)
#define CP_FORCE_MAG 10.0
#define CP_TAU 0.02
#define CP_THETA_LIMIT (12 * 2 * M_PI / 360)
#define CP_X_LIMIT 2.4

static const train_param cartpole_params[] = {
	{ "max_episode_steps", TRAIN_PARAM_INT, "500", "steps after which an episode is truncated" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

typedef struct cartpole {
	int n;
	int64_t max_steps;
	int was_reset;
	double *state;    /* (n, 4): x, x_dot, theta, theta_dot */
	int64_t *steps;   /* (n) steps in the current episode */
	train_rng *rng;   /* (n) */
	float low[4], high[4];
} cartpole;

static void cartpole_destroy(void *self)
{
	cartpole *c = self;
	if (!c)
		return;
	free(c->state);
	free(c->steps);
	free(c->rng);
	free(c);
}

static int cartpole_create(const train_config *cfg, int n, void **self, train_error *err)
{
	int64_t max_steps = train_config_int(cfg, "max_episode_steps");
	if (max_steps < 1)
		return train_error_set(err, TRAIN_ECONFIG, NULL, 0, 0,
		                       "CartPole-v1: max_episode_steps must be at least 1");
	cartpole *c = calloc(1, sizeof *c);
	if (!c)
		return TRAIN_ENOMEM;
	c->n = n;
	c->max_steps = max_steps;
	c->state = calloc((size_t)n * 4, sizeof *c->state);
	c->steps = calloc((size_t)n, sizeof *c->steps);
	c->rng = calloc((size_t)n, sizeof *c->rng);
	if (!c->state || !c->steps || !c->rng) {
		cartpole_destroy(c);
		return TRAIN_ENOMEM;
	}
	/* gymnasium's observation bounds: twice the termination limits, and
	 * unbounded speeds (float32 max there; infinity here). */
	float hi[4] = { (float)(CP_X_LIMIT * 2), INFINITY, (float)(CP_THETA_LIMIT * 2), INFINITY };
	for (int k = 0; k < 4; k++) {
		c->high[k] = hi[k];
		c->low[k] = -hi[k];
	}
	*self = c;
	return TRAIN_OK;
}

static void cartpole_spaces(const void *self, train_space *obs, train_space *act)
{
	const cartpole *c = self;
	*obs = (train_space){ TRAIN_SPACE_BOX, 0, 4, c->low, c->high };
	*act = (train_space){ TRAIN_SPACE_DISCRETE, 2, 1, NULL, NULL };
}

static void cartpole_start(cartpole *c, int i)
{
	for (int k = 0; k < 4; k++)
		c->state[4 * i + k] = uniform(&c->rng[i], -0.05, 0.05);
	c->steps[i] = 0;
}

static void cartpole_obs(const cartpole *c, int i, float *obs)
{
	for (int k = 0; k < 4; k++)
		obs[k] = (float)c->state[4 * i + k];
}

static int cartpole_reset(void *self, uint64_t seed, float *obs)
{
	cartpole *c = self;
	for (int i = 0; i < c->n; i++) {
		train_rng_seed(&c->rng[i], seed + (uint64_t)i);
		cartpole_start(c, i);
		cartpole_obs(c, i, obs + 4 * i);
	}
	c->was_reset = 1;
	return TRAIN_OK;
}

static int cartpole_step(void *self, const void *actions, float *obs, float *reward,
                         uint8_t *terminated, uint8_t *truncated, float *final_obs)
{
	cartpole *c = self;
	const int32_t *a = actions;
	if (!c->was_reset)
		return TRAIN_EINVAL;
	for (int i = 0; i < c->n; i++)
		if (a[i] != 0 && a[i] != 1)
			return TRAIN_EINVAL;
	for (int i = 0; i < c->n; i++) {
		double *s = c->state + 4 * i;
		double x = s[0], x_dot = s[1], theta = s[2], theta_dot = s[3];
		double force = a[i] == 1 ? CP_FORCE_MAG : -CP_FORCE_MAG;
		double costheta = cos(theta), sintheta = sin(theta);
		double temp = (force + CP_POLEMASS_LENGTH * theta_dot * theta_dot * sintheta) /
		              CP_TOTAL_MASS;
		double thetaacc = (CP_GRAVITY * sintheta - costheta * temp) /
		                  (CP_LENGTH * (4.0 / 3.0 - CP_MASSPOLE * costheta * costheta / CP_TOTAL_MASS));
		double xacc = temp - CP_POLEMASS_LENGTH * thetaacc * costheta / CP_TOTAL_MASS;
		/* Euler, in gymnasium's order: positions from the old speeds. */
		x = x + CP_TAU * x_dot;
		x_dot = x_dot + CP_TAU * xacc;
		theta = theta + CP_TAU * theta_dot;
		theta_dot = theta_dot + CP_TAU * thetaacc;
		s[0] = x;
		s[1] = x_dot;
		s[2] = theta;
		s[3] = theta_dot;
		c->steps[i]++;
		int term = x < -CP_X_LIMIT || x > CP_X_LIMIT || theta < -CP_THETA_LIMIT ||
		           theta > CP_THETA_LIMIT;
		int trunc = !term && c->steps[i] >= c->max_steps;
		reward[i] = 1.0f;
		terminated[i] = (uint8_t)term;
		truncated[i] = (uint8_t)trunc;
		if (term || trunc) {
			if (final_obs)
				cartpole_obs(c, i, final_obs + 4 * i);
			cartpole_start(c, i);
		}
		cartpole_obs(c, i, obs + 4 * i);
	}
	return TRAIN_OK;
}

static int cartpole_save(const void *self, void **buf, size_t *size)
{
	const cartpole *c = self;
	int32_t r = c->was_reset;
	size_t n = (size_t)c->n;
	state_part parts[] = { { &r, sizeof r }, { c->state, 4 * n * sizeof *c->state },
	                       { c->steps, n * sizeof *c->steps }, { c->rng, n * sizeof *c->rng } };
	return save_parts((uint32_t)c->n, parts, 4, buf, size);
}

static int cartpole_load(void *self, const void *buf, size_t size)
{
	cartpole *c = self;
	int32_t r = 0;
	size_t n = (size_t)c->n;
	state_part parts[] = { { &r, sizeof r }, { c->state, 4 * n * sizeof *c->state },
	                       { c->steps, n * sizeof *c->steps }, { c->rng, n * sizeof *c->rng } };
	int rc = load_parts((uint32_t)c->n, parts, 4, buf, size);
	if (!rc)
		c->was_reset = r != 0;
	return rc;
}

static const train_env_class cartpole_class = {
	.struct_size = sizeof(train_env_class),
	.name = "CartPole-v1",
	.version = "1",
	.doc = "gymnasium's CartPole-v1: balance a pole on a cart (2 actions, 4 observations)",
	.params = cartpole_params,
	.create = cartpole_create,
	.spaces = cartpole_spaces,
	.reset = cartpole_reset,
	.step = cartpole_step,
	.destroy = cartpole_destroy,
	.save_state = cartpole_save,
	.load_state = cartpole_load,
};

/* ---- Pendulum-v1 ----------------------------------------------------------- */

#define PD_MAX_SPEED 8.0
#define PD_MAX_TORQUE 2.0
#define PD_DT 0.05
#define PD_M 1.0
#define PD_L 1.0

static const train_param pendulum_params[] = {
	{ "max_episode_steps", TRAIN_PARAM_INT, "200", "steps after which an episode is truncated" },
	{ "g", TRAIN_PARAM_FLOAT, "10.0", "gravity" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

typedef struct pendulum {
	int n;
	int64_t max_steps;
	double g;
	int was_reset;
	double *state;   /* (n, 2): theta, theta_dot */
	int64_t *steps;
	train_rng *rng;
	float olow[3], ohigh[3], alow[1], ahigh[1];
} pendulum;

static void pendulum_destroy(void *self)
{
	pendulum *p = self;
	if (!p)
		return;
	free(p->state);
	free(p->steps);
	free(p->rng);
	free(p);
}

static int pendulum_create(const train_config *cfg, int n, void **self, train_error *err)
{
	int64_t max_steps = train_config_int(cfg, "max_episode_steps");
	if (max_steps < 1)
		return train_error_set(err, TRAIN_ECONFIG, NULL, 0, 0,
		                       "Pendulum-v1: max_episode_steps must be at least 1");
	pendulum *p = calloc(1, sizeof *p);
	if (!p)
		return TRAIN_ENOMEM;
	p->n = n;
	p->max_steps = max_steps;
	p->g = train_config_float(cfg, "g");
	p->state = calloc((size_t)n * 2, sizeof *p->state);
	p->steps = calloc((size_t)n, sizeof *p->steps);
	p->rng = calloc((size_t)n, sizeof *p->rng);
	if (!p->state || !p->steps || !p->rng) {
		pendulum_destroy(p);
		return TRAIN_ENOMEM;
	}
	p->ohigh[0] = p->ohigh[1] = 1.0f;
	p->ohigh[2] = (float)PD_MAX_SPEED;
	for (int k = 0; k < 3; k++)
		p->olow[k] = -p->ohigh[k];
	p->ahigh[0] = (float)PD_MAX_TORQUE;
	p->alow[0] = (float)-PD_MAX_TORQUE;
	*self = p;
	return TRAIN_OK;
}

static void pendulum_spaces(const void *self, train_space *obs, train_space *act)
{
	const pendulum *p = self;
	*obs = (train_space){ TRAIN_SPACE_BOX, 0, 3, p->olow, p->ohigh };
	*act = (train_space){ TRAIN_SPACE_BOX, 0, 1, p->alow, p->ahigh };
}

static void pendulum_start(pendulum *p, int i)
{
	p->state[2 * i] = uniform(&p->rng[i], -M_PI, M_PI);
	p->state[2 * i + 1] = uniform(&p->rng[i], -1.0, 1.0);
	p->steps[i] = 0;
}

static void pendulum_obs(const pendulum *p, int i, float *obs)
{
	double th = p->state[2 * i], thdot = p->state[2 * i + 1];
	obs[0] = (float)cos(th);
	obs[1] = (float)sin(th);
	obs[2] = (float)thdot;
}

static int pendulum_reset(void *self, uint64_t seed, float *obs)
{
	pendulum *p = self;
	for (int i = 0; i < p->n; i++) {
		train_rng_seed(&p->rng[i], seed + (uint64_t)i);
		pendulum_start(p, i);
		pendulum_obs(p, i, obs + 3 * i);
	}
	p->was_reset = 1;
	return TRAIN_OK;
}

/* Python's ((x + pi) % (2 pi)) - pi: the modulo takes the divisor's sign. */
static double angle_normalize(double x)
{
	double m = fmod(x + M_PI, 2 * M_PI);
	if (m < 0)
		m += 2 * M_PI;
	return m - M_PI;
}

static double clip(double x, double lo, double hi)
{
	return x < lo ? lo : x > hi ? hi : x;
}

static int pendulum_step(void *self, const void *actions, float *obs, float *reward,
                         uint8_t *terminated, uint8_t *truncated, float *final_obs)
{
	pendulum *p = self;
	const float *a = actions;
	if (!p->was_reset)
		return TRAIN_EINVAL;
	for (int i = 0; i < p->n; i++) {
		double th = p->state[2 * i], thdot = p->state[2 * i + 1];
		/* NaN torque: clip() passes NaN through, as np.clip does. */
		double u = clip((double)a[i], -PD_MAX_TORQUE, PD_MAX_TORQUE);
		double an = angle_normalize(th);
		double costs = an * an + .1 * thdot * thdot + .001 * (u * u);
		double newthdot = thdot + (3 * p->g / (2 * PD_L) * sin(th) + 3.0 / (PD_M * PD_L * PD_L) * u) * PD_DT;
		newthdot = clip(newthdot, -PD_MAX_SPEED, PD_MAX_SPEED);
		double newth = th + newthdot * PD_DT;
		p->state[2 * i] = newth;
		p->state[2 * i + 1] = newthdot;
		p->steps[i]++;
		reward[i] = (float)-costs;
		terminated[i] = 0;
		truncated[i] = p->steps[i] >= p->max_steps;
		if (truncated[i]) {
			if (final_obs)
				pendulum_obs(p, i, final_obs + 3 * i);
			pendulum_start(p, i);
		}
		pendulum_obs(p, i, obs + 3 * i);
	}
	return TRAIN_OK;
}

static int pendulum_save(const void *self, void **buf, size_t *size)
{
	const pendulum *p = self;
	int32_t r = p->was_reset;
	size_t n = (size_t)p->n;
	state_part parts[] = { { &r, sizeof r }, { p->state, 2 * n * sizeof *p->state },
	                       { p->steps, n * sizeof *p->steps }, { p->rng, n * sizeof *p->rng } };
	return save_parts((uint32_t)p->n, parts, 4, buf, size);
}

static int pendulum_load(void *self, const void *buf, size_t size)
{
	pendulum *p = self;
	int32_t r = 0;
	size_t n = (size_t)p->n;
	state_part parts[] = { { &r, sizeof r }, { p->state, 2 * n * sizeof *p->state },
	                       { p->steps, n * sizeof *p->steps }, { p->rng, n * sizeof *p->rng } };
	int rc = load_parts((uint32_t)p->n, parts, 4, buf, size);
	if (!rc)
		p->was_reset = r != 0;
	return rc;
}

static const train_env_class pendulum_class = {
	.struct_size = sizeof(train_env_class),
	.name = "Pendulum-v1",
	.version = "1",
	.doc = "gymnasium's Pendulum-v1: swing a pendulum up (1 continuous torque, 3 observations)",
	.params = pendulum_params,
	.create = pendulum_create,
	.spaces = pendulum_spaces,
	.reset = pendulum_reset,
	.step = pendulum_step,
	.destroy = pendulum_destroy,
	.save_state = pendulum_save,
	.load_state = pendulum_load,
};

const train_env_class *const envs_classes[] = { &cartpole_class, &pendulum_class, NULL };

#ifndef ENVS_NO_DESCRIPTOR
static const train_component_class *const no_classes[] = { NULL };
TRAIN_PLUGIN_DEFINE_ENVS("envs", "1.0.0", "MIT",
                         "Reinforcement-learning environments: CartPole-v1, Pendulum-v1",
                         no_classes, envs_classes);
#endif
