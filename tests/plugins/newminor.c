/*
 * newminor.c - a plugin built against a newer minor of the plugin ABI than
 * this libtrain has (abi_minor = TRAIN_ABI_MINOR + 1).  It might rely on
 * host features this host lacks, so the registry must refuse it.  Apart
 * from the minor it is a correct plugin, so that nothing else can be the
 * reason it is refused.
 */
#include <train/plugin.h>

#include <stdlib.h>

static int nm_create(const train_config *config, train_ctx *ctx, void **self)
{
	(void)config;
	(void)ctx;
	*self = malloc(1);
	return *self ? TRAIN_OK : TRAIN_ENOMEM;
}

static int nm_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	(void)ctx;
	(void)in;
	(void)out;
	(void)self;
	return TRAIN_OK;
}

static int nm_persist(void *self, train_resource *res)
{
	(void)res;
	(void)self;
	return TRAIN_OK;
}

static int nm_load(const train_config *config, const train_resource *res, train_ctx *ctx,
                   void **self)
{
	(void)res;
	return nm_create(config, ctx, self);
}

static void nm_destroy(void *self)
{
	free(self);
}

static const train_component_class newminor_class = {
	.struct_size = sizeof(train_component_class),
	.name = "NewMinor",
	.version = "1",
	.doc = "never loads: its plugin needs a newer libtrain",
	.create = nm_create,
	.train = nm_train,
	.persist = nm_persist,
	.load = nm_load,
	.destroy = nm_destroy,
};

static const train_component_class *const classes[] = { &newminor_class, NULL };

/* TRAIN_PLUGIN_DEFINE with the minor bumped. */
TRAIN_PLUGIN_EXPORT const train_plugin_desc train_plugin_descriptor = {
	.abi_major = TRAIN_ABI_MAJOR,
	.abi_minor = TRAIN_ABI_MINOR + 1,
	.struct_size = sizeof(train_plugin_desc),
	.name = "newminor",
	.version = "1.0.0",
	.license = "MIT",
	.description = "a plugin from the future (ABI minor + 1)",
	.components = classes,
	.environments = NULL,
	.init = NULL,
	.reserved = { 0 },
};
