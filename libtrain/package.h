/*
 * libtrain/package.h - model archives and folder blobs (private), on
 * libarchive.
 *
 * A model archive is a gzip'd POSIX tar of a staging folder:
 *   metadata.json              libtrain version, time, training type,
 *                              per-node fingerprints, plugins, predict schema
 *   components/<node>/...      each component's persisted files
 * Archives are deterministic for the same folder contents: members sorted
 * by name, mtime 0, uid/gid 0, modes 0644 (files) / 0755 (folders), no gzip
 * timestamp, so identical components give identical member bytes.
 *
 * Reading refuses (TRAIN_EUNSAFE, naming the member) absolute names, any
 * ".." component, symlinks and hard links (a model has no need of links),
 * and anything that is not a regular file or a folder.
 */
#ifndef TRAIN_PACKAGE_H
#define TRAIN_PACKAGE_H

#include <train/train.h>
#include "util.h"

/* Pack `staging_dir` into `archive_path`: written as a temporary file in
 * the same folder, then renamed, so a crash never leaves half a model. */
int train_package_write(const char *staging_dir, const char *archive_path, train_error *err);
/* Extract every member into `dest_dir` (which exists), refusing unsafe ones.
 * On error, what was extracted is left for the caller to remove. */
int train_package_extract(const char *archive_path, const char *dest_dir, train_error *err);
/* Read one member (e.g. "metadata.json") into a malloc'd NUL-terminated
 * buffer.  TRAIN_ENOTFOUND if absent; unsafe names anywhere in the archive
 * are refused as in extract. */
int train_package_read_member(const char *archive_path, const char *member, char **data,
                              size_t *size, train_error *err);

/* A folder as one deterministic uncompressed tar blob (for the output
 * cache), and back.  unpack applies the same safety rules as extract. */
int train_dir_pack(const char *dir, void **blob, size_t *size, train_error *err);
int train_dir_unpack(const void *blob, size_t size, const char *dest_dir, train_error *err);

#endif
