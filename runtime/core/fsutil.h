/* runtime/core/fsutil.h -- small filesystem helpers for checkpoints and
 * state directories. All return 0 or a negative WEIR_E* code and, when err
 * is not NULL, a message naming the path and the system's reason. */
#ifndef WEIR_CORE_FSUTIL_H
#define WEIR_CORE_FSUTIL_H

#include <stddef.h>

#include "buf.h"
#include "error.h"

/* mkdir -p with mode 0755; existing directories are fine. */
int weir_mkdir_p(const char *path, weir_err_t *err);

/* Writes data to path atomically: a temporary file in the same directory,
 * fsync, rename over path, fsync of the directory. A crash leaves either
 * the old file or the new one, never a mix. */
int weir_write_file_atomic(const char *path, const void *data, size_t len, weir_err_t *err);

/* Reads the whole file into out (appended). */
int weir_read_file(const char *path, weir_buf_t *out, weir_err_t *err);

/* rm -rf path (a missing path is fine). */
int weir_rm_rf(const char *path, weir_err_t *err);

/* fsync of a directory (after creating or renaming entries in it). */
int weir_fsync_dir(const char *path, weir_err_t *err);

#endif
