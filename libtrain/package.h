/*
 * libtrain/package.h - model archives and folder blobs (private), on
 * libarchive.
 *
 * A model archive is a gzip'd POSIX tar of a staging folder:
 *   metadata.json              libtrain version, time, training type,
 *                              per-node fingerprints, plugins, predict schema
 *   components/<node>/...      each component's persisted files
 * Archives are deterministic for the same folder contents: members (folders
 * included) sorted bytewise by name, restricted pax format (plain ustar
 * unless a name or size needs more), mtime 0, uid/gid 0, no user or group
 * names, modes 0644 (files) / 0755 (folders), no gzip time or file name, so
 * identical folders give identical bytes.  A folder blob is the same tar,
 * uncompressed.
 *
 * Only regular files and folders can be packed, under names that
 * train_safe_relname accepts (at most 4096 bytes); anything else in the
 * folder (a symlink, a fifo, "a b.txt") fails with TRAIN_EINVAL.
 *
 * Reading refuses with TRAIN_EUNSAFE, naming the member: absolute names,
 * any ".." component, any name train_safe_relname rejects (one trailing '/'
 * on a folder is fine), symlinks and hard links (a model has no need of
 * links), devices, fifos and sockets, a name that appears twice, and a name
 * used both as a file and as a folder.  The check covers every member of the
 * archive, whichever call reads it.  Input that is not a (gzip'd) tar, or a
 * truncated one, gives TRAIN_EPARSE.
 *
 * Errors common to all calls: TRAIN_ENOMEM; -errno when a file or folder
 * cannot be opened or created (e.g. -ENOENT for a missing archive or
 * staging folder); TRAIN_EIO when a read or write fails.  `err` (optional)
 * gets the message and the archive path where there is one.
 *
 * Threads: no shared state; calls on different paths may run concurrently.
 */
#ifndef TRAIN_PACKAGE_H
#define TRAIN_PACKAGE_H

#include <train/train.h>
#include "util.h"

/* The largest member train_package_read_member reads into memory (1 GiB). */
#define TRAIN_PACKAGE_MEMBER_MAX ((int64_t)1 << 30)

/* Pack `staging_dir` into `archive_path`: written as a temporary file
 * ".<name>.tmp-<pid>-XXXXXX" in the same folder, fsync'd, then renamed over
 * `archive_path`, so a crash never leaves half a model.  On failure the
 * temporary file is removed and `archive_path` is untouched.  The archive
 * gets mode 0644.  TRAIN_EINVAL if the folder holds something that cannot
 * be packed or `archive_path` ends with '/'. */
int train_package_write(const char *staging_dir, const char *archive_path, train_error *err);
/*
 * Write a model archive straight from memory: "components/", then for each
 * component (names plain, sorted, unique) "components/<name>/" and the
 * members of its folder blob (from train_dir_pack, checked as in
 * train_dir_unpack), then "metadata.json".  Atomic like train_package_write,
 * and deterministic for the same inputs.
 */
int train_package_write_parts(const char *archive_path, const char *metadata, size_t meta_size,
                              const char *const *names, const void *const *blobs,
                              const size_t *sizes, size_t n, train_error *err);
/* Extract every member into `dest_dir` (which exists, and should be empty),
 * refusing unsafe ones.  Files get mode 0644 and folders 0755 (less the
 * umask); the archive's modes, owners and times are ignored.  Nothing is
 * ever written outside `dest_dir`, even through links already in it.
 * TRAIN_EEXIST if a member's path is already taken in `dest_dir`.
 * On error, what was extracted is left for the caller to remove. */
int train_package_extract(const char *archive_path, const char *dest_dir, train_error *err);
/* Read one file member (e.g. "metadata.json") into a malloc'd
 * NUL-terminated buffer; `size` (may be NULL) gets its length without the
 * NUL.  TRAIN_ENOTFOUND if absent, TRAIN_EINVAL if `member` is not a valid
 * name, names a folder or is larger than TRAIN_PACKAGE_MEMBER_MAX.  The
 * whole archive is read (and checked) even when the member comes first. */
int train_package_read_member(const char *archive_path, const char *member, char **data,
                              size_t *size, train_error *err);

/* A folder as one deterministic uncompressed tar blob (for the output
 * cache), and back.  pack gives a malloc'd blob (free() it) and accepts the
 * same folders as train_package_write; an empty folder gives a valid blob
 * with no members.  unpack applies the same rules as extract. */
int train_dir_pack(const char *dir, void **blob, size_t *size, train_error *err);
int train_dir_unpack(const void *blob, size_t size, const char *dest_dir, train_error *err);

#endif
