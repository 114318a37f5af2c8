/*
 * resource.c - the folder a component persists into and loads from.
 * Names are checked (train_safe_relname) so a component cannot write
 * outside its folder; writes are atomic.
 */
#include <train/resource.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ctx_private.h"

const char *train_resource_dir(const train_resource *r)
{
	return r->dir;
}

int train_resource_write(train_resource *r, const char *name, const void *data, size_t size)
{
	if (!train_safe_relname(name) || name[strlen(name) - 1] == '/')
		return TRAIN_EINVAL;
	char *path = train_path_join(r->dir, name);
	if (!path)
		return TRAIN_ENOMEM;
	int rc = TRAIN_OK;
	const char *slash = strrchr(name, '/');
	if (slash) {
		char *parent = train_dirname(path);
		rc = parent ? train_mkdirs(parent, NULL) : TRAIN_ENOMEM;
		free(parent);
	}
	if (!rc)
		/* No fsync: the state is durable once it is in the cache or a
		 * model archive, which are synced; this folder is scratch. */
		rc = train_write_file(path, data, size, 0, NULL);
	free(path);
	return rc ? (rc == TRAIN_ENOMEM ? rc : TRAIN_EIO) : TRAIN_OK;
}

int train_resource_read(const train_resource *r, const char *name, void **data, size_t *size)
{
	if (!train_safe_relname(name))
		return TRAIN_EINVAL;
	char *path = train_path_join(r->dir, name);
	if (!path)
		return TRAIN_ENOMEM;
	char *buf = NULL;
	int rc = train_read_file(path, &buf, size, NULL);
	free(path);
	if (rc == -ENOENT)
		return TRAIN_ENOTFOUND;
	if (rc)
		return rc == TRAIN_ENOMEM ? rc : TRAIN_EIO;
	*data = buf;
	return TRAIN_OK;
}
