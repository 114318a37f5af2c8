/*
 * wrongabi.c - a plugin built for another major of the plugin ABI
 * (abi_major = TRAIN_ABI_MAJOR + 1).  The registry must refuse it without
 * running any of its code.  Apart from the major it is a correct plugin.
 *
 * The same file also serves the other descriptor checks, so that each can
 * be tested without a shared object per case: its descriptor and class are
 * writable, and an ELF constructor (which runs inside dlopen, before the
 * registry reads anything) reads TRAIN_TEST_BREAK and, when it is set,
 * restores the right major and breaks one other thing instead:
 *
 *   struct_size  class_size  name  version  license  components
 *   plugin_slash  slash  class_name  class_version  create  train  persist
 *   load  destroy
 *   dupclass  init_fail  init_ok (nothing broken, init() returns 0)
 *
 * init() sets TRAIN_TEST_INIT_RAN=1 in the environment, so a test can tell
 * whether the registry ran it.  Real plugins use TRAIN_PLUGIN_DEFINE and a
 * const descriptor; do not copy this one.
 */
#define _POSIX_C_SOURCE 200809L
#include <train/plugin.h>

#include <stdlib.h>
#include <string.h>

static int wa_create(const train_config *config, train_ctx *ctx, void **self)
{
	(void)config;
	(void)ctx;
	*self = malloc(1);
	return *self ? TRAIN_OK : TRAIN_ENOMEM;
}

static int wa_train(void *self, const train_values *in, train_values *out, train_ctx *ctx)
{
	(void)ctx;
	(void)in;
	(void)out;
	(void)self;
	return TRAIN_OK;
}

static int wa_persist(void *self, train_resource *res)
{
	(void)res;
	(void)self;
	return TRAIN_OK;
}

static int wa_load(const train_config *config, const train_resource *res, train_ctx *ctx,
                   void **self)
{
	(void)res;
	return wa_create(config, ctx, self);
}

static void wa_destroy(void *self)
{
	free(self);
}

static int init_result;

static int wa_init(void)
{
	setenv("TRAIN_TEST_INIT_RAN", "1", 1);
	return init_result;
}

static train_component_class wrongabi_class = {
	.struct_size = sizeof(train_component_class),
	.name = "WrongAbi",
	.version = "1",
	.doc = "never loads: its plugin was built for another ABI major",
	.create = wa_create,
	.train = wa_train,
	.persist = wa_persist,
	.load = wa_load,
	.destroy = wa_destroy,
};

static const train_component_class *classes[] = { &wrongabi_class, NULL, NULL };

TRAIN_PLUGIN_EXPORT train_plugin_desc train_plugin_descriptor = {
	.abi_major = TRAIN_ABI_MAJOR + 1,
	.abi_minor = TRAIN_ABI_MINOR,
	.struct_size = sizeof(train_plugin_desc),
	.name = "wrongabi",
	.version = "1.0.0",
	.license = "MIT",
	.description = "a plugin for another ABI major",
	.components = classes,
	.environments = NULL,
	.init = wa_init,
	.reserved = { 0 },
};

__attribute__((constructor)) static void wa_break(void)
{
	const char *what = getenv("TRAIN_TEST_BREAK");
	if (!what || !*what)
		return;
	train_plugin_desc *d = &train_plugin_descriptor;
	train_component_class *c = &wrongabi_class;
	d->abi_major = TRAIN_ABI_MAJOR;
	if (!strcmp(what, "struct_size"))
		d->struct_size = 3 * sizeof(uint32_t);
	else if (!strcmp(what, "class_size"))
		c->struct_size = 2 * sizeof(void *);
	else if (!strcmp(what, "name"))
		d->name = NULL;
	else if (!strcmp(what, "version"))
		d->version = "";
	else if (!strcmp(what, "license"))
		d->license = NULL;
	else if (!strcmp(what, "components"))
		d->components = NULL;
	else if (!strcmp(what, "plugin_slash"))
		d->name = "wrong/abi";
	else if (!strcmp(what, "slash"))
		c->name = "Wrong/Abi";
	else if (!strcmp(what, "class_name"))
		c->name = NULL;
	else if (!strcmp(what, "class_version"))
		c->version = NULL;
	else if (!strcmp(what, "create"))
		c->create = NULL;
	else if (!strcmp(what, "train"))
		c->train = NULL;
	else if (!strcmp(what, "persist"))
		c->persist = NULL;
	else if (!strcmp(what, "load"))
		c->load = NULL;
	else if (!strcmp(what, "destroy"))
		c->destroy = NULL;
	else if (!strcmp(what, "dupclass"))
		classes[1] = &wrongabi_class;
	else if (!strcmp(what, "init_fail"))
		init_result = -7;
	/* "init_ok" and unknown words: a correct plugin. */
}
