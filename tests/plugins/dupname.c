/*
 * dupname.c - a correct plugin, "dupname", whose one component is called
 * "Echo" like a component of testparts.c.  With both loaded, "Echo" is
 * ambiguous (TRAIN_EEXIST) and "dupname/Echo" or "testparts/Echo" picks.
 *
 * Its Echo copies input "in" to output "out" unchanged, and persists one
 * file, "dupname-echo", so that a test can tell whose Echo ran.
 */
#include <train/plugin.h>

#include <stdlib.h>
#include <string.h>

#define MARK "dupname Echo v1"

typedef struct echo {
	int trained;
} echo;

static int echo_create(const train_config *config, train_ctx *ctx, void **self)
{
	(void)config;
	(void)ctx;
	echo *e = calloc(1, sizeof *e);
	if (!e)
		return TRAIN_ENOMEM;
	*self = e;
	return TRAIN_OK;
}

static int echo_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	echo *e = self;
	const train_value *v = train_values_get(in, "in");
	if (!v)
		return train_fail(ctx, "no input 'in'");
	int rc = train_values_put_bytes(out, "out", train_value_type(v), train_value_data(v),
	                                train_value_size(v));
	if (rc == TRAIN_OK)
		e->trained = 1;
	return rc;
}

static int echo_persist(void *self, train_resource *res)
{
	(void)self;
	return train_resource_write(res, "dupname-echo", MARK, strlen(MARK));
}

static int echo_load(const train_config *config, const train_resource *res, train_ctx *ctx,
                     void **self)
{
	void *data = NULL;
	size_t size = 0;
	int rc = train_resource_read(res, "dupname-echo", &data, &size);
	if (rc != TRAIN_OK)
		return rc;
	if (size != strlen(MARK) || memcmp(data, MARK, size) != 0) {
		free(data);
		return train_fail(ctx, "dupname-echo is not from this Echo");
	}
	free(data);
	if ((rc = echo_create(config, ctx, self)) == TRAIN_OK)
		((echo *)*self)->trained = 1;
	return rc;
}

static void echo_destroy(void *self)
{
	free(self);
}

static const char *const echo_io_in[] = { "in", NULL };
static const char *const echo_io_out[] = { "out", NULL };

static const train_component_class echo_class = {
	.struct_size = sizeof(train_component_class),
	.name = "Echo",
	.version = "1",
	.doc = "copies input 'in' to output 'out' (dupname's Echo)",
	.inputs = echo_io_in,
	.outputs = echo_io_out,
	.params = NULL,
	.create = echo_create,
	.fingerprint = NULL,
	.train = echo_train,
	.process = echo_train,
	.persist = echo_persist,
	.load = echo_load,
	.destroy = echo_destroy,
};

static const train_component_class *const classes[] = { &echo_class, NULL };

TRAIN_PLUGIN_DEFINE("dupname", "1.0.0", "MIT", "a second Echo, to test name clashes", classes);
