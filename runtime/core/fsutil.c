/* runtime/core/fsutil.c -- see fsutil.h. */
#include "fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
weir_mkdir_p(const char *path, weir_err_t *err)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(buf))
        return weir_err_set(err, WEIR_EINVAL, "bad directory path '%s'", path);
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST)
                return weir_err_set(err, WEIR_EIO, "cannot create directory '%s': %s", buf,
                                    strerror(errno));
            *p = c;
            if (c == '\0')
                break;
        }
    }
    return 0;
}

int
weir_fsync_dir(const char *path, weir_err_t *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0)
        return weir_err_set(err, WEIR_EIO, "cannot open directory '%s': %s", path,
                            strerror(errno));
    if (fsync(fd) != 0 && errno != EINVAL) {
        int e = errno;
        close(fd);
        return weir_err_set(err, WEIR_EIO, "cannot fsync directory '%s': %s", path, strerror(e));
    }
    close(fd);
    return 0;
}

int
weir_write_file_atomic(const char *path, const void *data, size_t len, weir_err_t *err)
{
    char tmp[PATH_MAX], dir[PATH_MAX];
    const char *slash;
    int fd, rc;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid()) >= (int)sizeof(tmp))
        return weir_err_set(err, WEIR_EINVAL, "path too long: '%s'", path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return weir_err_set(err, WEIR_EIO, "cannot create '%s': %s", tmp, strerror(errno));
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, (const char *)data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            rc = weir_err_set(err, WEIR_EIO, "cannot write '%s': %s", tmp, strerror(errno));
            goto fail;
        }
        off += (size_t)w;
    }
    if (fsync(fd) != 0) {
        rc = weir_err_set(err, WEIR_EIO, "cannot fsync '%s': %s", tmp, strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;
    if (rename(tmp, path) != 0) {
        rc = weir_err_set(err, WEIR_EIO, "cannot rename '%s' to '%s': %s", tmp, path,
                          strerror(errno));
        goto fail;
    }
    slash = strrchr(path, '/');
    if (slash == NULL)
        return weir_fsync_dir(".", err);
    snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    return weir_fsync_dir(dir[0] ? dir : "/", err);

fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return rc;
}

int
weir_read_file(const char *path, weir_buf_t *out, weir_err_t *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char chunk[65536];

    if (fd < 0)
        return weir_err_set(err, errno == ENOENT ? WEIR_ENOENT : WEIR_EIO, "cannot open '%s': %s",
                            path, strerror(errno));
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return weir_err_set(err, WEIR_EIO, "cannot read '%s': %s", path, strerror(e));
        }
        if (r == 0)
            break;
        if (weir_buf_append(out, chunk, (size_t)r) != 0) {
            close(fd);
            return weir_err_set(err, WEIR_ENOMEM, "out of memory reading '%s'", path);
        }
    }
    close(fd);
    return 0;
}

static int
rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p) != 0 && errno != ENOENT ? -1 : 0;
}

int
weir_rm_rf(const char *path, weir_err_t *err)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : weir_err_set(err, WEIR_EIO, "cannot stat '%s': %s", path,
                                                  strerror(errno));
    if (nftw(path, rm_cb, 32, FTW_DEPTH | FTW_PHYS) != 0)
        return weir_err_set(err, WEIR_EIO, "cannot remove '%s': %s", path, strerror(errno));
    return 0;
}
