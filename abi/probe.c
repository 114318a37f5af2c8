/*
 * abi/probe.c - the smallest plugin that uses every part of the plugin
 * descriptor, for `make abi-check` (doc/abi.md).  It is never loaded: abidw
 * reads its debug information, where the exported train_plugin_descriptor
 * carries the layout of train_plugin_desc, train_component_class and
 * train_param and the signatures of every entry point, as a plugin built
 * against these headers sees them.  libtrain.so's own dump does not cover
 * them all: the host only reads these structs, it exports no function that
 * takes them whole.
 */
#include <train/plugin.h>

static const train_param probe_params[] = {
	{ "n", TRAIN_PARAM_INT, "1", "a parameter" },
	{ NULL, TRAIN_PARAM_END, NULL, NULL },
};

static const char *const probe_io[] = { "text", NULL };

static const train_component_class probe_class = {
	.struct_size = sizeof(train_component_class),
	.name = "Probe",
	.version = "1",
	.inputs = probe_io,
	.outputs = probe_io,
	.params = probe_params,
};

static const train_component_class *const probe_classes[] = { &probe_class, NULL };

TRAIN_PLUGIN_DEFINE("probe", "1", "MIT", "the plugin ABI, for abidw", probe_classes);
