/*
 * libtrain/config_private.h - what the core does to config trees beyond
 * <train/config.h>: copies with substitutions (a target's `$config.a.b`
 * values) and rewriting a string in place (a PATH made absolute).
 */
#ifndef TRAIN_CONFIG_PRIVATE_H
#define TRAIN_CONFIG_PRIVATE_H

#include <train/config.h>

enum { TRAIN_SUBST_KEEP = 0, TRAIN_SUBST_REPLACE = 1, TRAIN_SUBST_DROP = 2 };

/*
 * Called for every string scalar of the tree being copied: return
 * TRAIN_SUBST_KEEP (copy it), TRAIN_SUBST_REPLACE with *repl set (a deep
 * copy of *repl, locations included, takes its place), TRAIN_SUBST_DROP
 * (a map entry or list item that is left out), or a negative TRAIN_E* code
 * that stops the copy.
 */
typedef int (*train_config_subst_fn)(const train_config *s, const train_config **repl, void *arg);

/* Deep copy of `c` through `fn`.  Errors: fn's, TRAIN_EINVAL, TRAIN_ENOMEM. */
int train_config_copy_subst(const train_config *c, train_config_subst_fn fn, void *arg,
                            train_config **out);
/* Replace the text of a STRING node.  TRAIN_EINVAL for another kind. */
int train_config_set_string(train_config *n, const char *text);

/*
 * Set the value at dotted `path` (at least SECTION.KEY) of the map *root to
 * the YAML scalar `text` (a command-line override, train_setting).  *root
 * may be NULL (a new map is made) or a null node; a tree read into an arena
 * is first copied out of it (*root changes).  Every node made (sections,
 * keys, the value) carries `origin` as its file and no line, so messages
 * about it name the flag; an origin begins with "--" (graph.c takes a
 * relative PATH value from the command line from the working folder).
 * Errors at `origin`: TRAIN_ECONFIG (a bad path,
 * text that is not one scalar, a part of the path that the settings set to
 * something other than a section), TRAIN_ENOMEM.
 */
int train_config_set_path(train_config **root, const char *path, const char *text,
                          const char *origin, train_error *err);

#endif
