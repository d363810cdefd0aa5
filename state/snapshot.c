/* state/snapshot.c -- snapshots of keyed state, and restoring from them.
 *
 * A checkpoint asks each keyed subtask for a snapshot of its backend; a
 * restart, or a rescaled job, builds new backends from those snapshots.
 * This file is the part both backends share: the snapshot directory and
 * its metadata, the checks, the copy for savepoints, and the restore loop.
 * What a backend writes and how a snapshot's entries are read are the
 * backends' (keyed_state_memory.c, keyed_state_rocksdb.c).
 *
 * A snapshot directory (the caller names it; it must not exist):
 *
 *   WEIR_SNAPSHOT   metadata, a few lines of text, written last (write,
 *                   fsync, rename): a directory without it is not a
 *                   snapshot, so a crash mid-way never looks complete
 *   db/             RocksDB backend: a RocksDB checkpoint, SST files
 *                   hard-linked to the live instance's
 *   entries         memory backend: every entry in one checksummed file
 *
 * The metadata names the backend kind, its key-group range, the list
 * sequence mark, and every state with its kind and TTL:
 *
 *   weir-state-snapshot 1
 *   backend rocksdb
 *   key-groups 0 63
 *   list-seq 65536
 *   states 2
 *   state value 0 count.counts
 *   state list 86400000000 join.left
 *   end
 *
 * (a name is escaped: %XX for '%', spaces, control and non-ASCII bytes).
 *
 * Both kinds of snapshot hold entries as stored keys and stored values
 * (keyed_state.h's layout, the TTL write time first), so restore is one
 * loop: for each snapshot whose key groups meet the target's, each state,
 * each entry of the target's key groups -> the backend's restore_put.
 * Write times are kept byte for byte; items already expired are left out.
 *
 * The RocksDB fast path (weir_state_backend_rocksdb_restore with one
 * RocksDB snapshot covering the range) skips the loop: it hard-links the
 * snapshot's SST files into the new directory, copies the files RocksDB
 * rewrites (MANIFEST, CURRENT, OPTIONS, WAL), opens it, and range-deletes
 * the key groups it does not own. SST files are never modified in place,
 * so the new instance and the snapshot stay independent: compactions
 * write new files and unlink their own names only.
 *
 * Library code: returns codes with messages in err, never logs.
 */
#include "keyed_state_int.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define META_VERSION   1
#define META_MAX       (64u << 20)   /* bytes of a metadata file we will read */
#define COPY_BUF       (1u << 20)

/* ---- metadata --------------------------------------------------------- */

int
weir__snap_meta_add(weir__snap_meta_t *m, const char *name, int kind, int64_t ttl_us)
{
    if (m->nstates == m->cap) {
        int cap = m->cap == 0 ? 8 : 2 * m->cap;
        weir__snap_state_t *v = realloc(m->states, (size_t)cap * sizeof(*v));

        if (v == NULL)
            return WEIR_ENOMEM;
        m->states = v;
        m->cap = cap;
    }
    if ((m->states[m->nstates].name = strdup(name)) == NULL)
        return WEIR_ENOMEM;
    m->states[m->nstates].kind = kind;
    m->states[m->nstates].ttl_us = ttl_us;
    m->nstates++;
    return 0;
}

void
weir__snap_meta_free(weir__snap_meta_t *m)
{
    for (int i = 0; i < m->nstates; i++)
        free(m->states[i].name);
    free(m->states);
    memset(m, 0, sizeof(*m));
}

static const char *
backend_name(int backend)
{
    return backend == WEIR__SNAP_ROCKSDB ? "rocksdb" : "memory";
}

static int
kind_of(const char *s)
{
    for (int k = WEIR__STATE_VALUE; k <= WEIR__STATE_MAP; k++)
        if (strcmp(s, weir__state_kind_name(k)) == 0)
            return k;
    return 0;
}

static int
put_escaped(weir_buf_t *out, const char *name)
{
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
        int rc = *p <= ' ' || *p >= 0x7f || *p == '%'
                 ? weir_buf_appendf(out, "%%%02X", *p)
                 : weir_buf_putc(out, (char)*p);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Undoes put_escaped in place; -1 for a malformed escape or a NUL byte. */
static int
unescape(char *s)
{
    char *w = s;

    for (char *r = s; *r != '\0'; r++) {
        unsigned v;

        if (*r != '%') {
            *w++ = *r;
            continue;
        }
        if (!isxdigit((unsigned char)r[1]) || !isxdigit((unsigned char)r[2]) ||
            sscanf(r + 1, "%2x", &v) != 1 || v == 0)
            return -1;
        *w++ = (char)v;
        r += 2;
    }
    *w = '\0';
    return 0;
}

static int
fsync_dir(const char *dir, weir_err_t *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;

    if (fd < 0)
        return weir_err_set(err, WEIR_EIO, "cannot open directory %s: %s", dir, strerror(errno));
    if (fsync(fd) != 0 && errno != EINVAL)
        rc = weir_err_set(err, WEIR_EIO, "cannot fsync directory %s: %s", dir, strerror(errno));
    close(fd);
    return rc;
}

/* Writes n bytes to a new file path (O_EXCL) and fsyncs it. */
static int
write_new_file(const char *path, const void *data, size_t n, weir_err_t *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600), rc = 0;

    if (fd < 0)
        return weir_err_set(err, WEIR_EIO, "cannot create %s: %s", path, strerror(errno));
    for (size_t off = 0; off < n && rc == 0;) {
        ssize_t w = write(fd, (const char *)data + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = weir_err_set(err, WEIR_EIO, "cannot write %s: %s", path,
                              w < 0 ? strerror(errno) : "short write");
        else
            off += (size_t)w;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = weir_err_set(err, WEIR_EIO, "cannot fsync %s: %s", path, strerror(errno));
    close(fd);
    if (rc != 0)
        unlink(path);
    return rc;
}

/* Writes dir/WEIR_SNAPSHOT: a temporary file, fsync, rename, fsync of dir.
 * The rename is what makes dir a snapshot. */
static int
meta_write(const char *dir, const weir__snap_meta_t *m, weir_err_t *err)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    weir_buf_t out = WEIR_BUF_INIT;
    int rc = 0;

    snprintf(path, sizeof(path), "%s/%s", dir, WEIR__SNAP_META);
    snprintf(tmp, sizeof(tmp), "%s/%s.tmp", dir, WEIR__SNAP_META);
    rc = weir_buf_appendf(&out, "weir-state-snapshot %d\nbackend %s\nkey-groups %d %d\n"
                          "list-seq %llu\nstates %d\n", META_VERSION,
                          backend_name(m->backend), m->kg_first, m->kg_last,
                          (unsigned long long)m->list_seq, m->nstates);
    for (int i = 0; i < m->nstates && rc == 0; i++) {
        rc = weir_buf_appendf(&out, "state %s %lld ", weir__state_kind_name(m->states[i].kind),
                              (long long)m->states[i].ttl_us);
        if (rc == 0)
            rc = put_escaped(&out, m->states[i].name);
        if (rc == 0)
            rc = weir_buf_putc(&out, '\n');
    }
    if (rc == 0)
        rc = weir_buf_appendf(&out, "end\n");
    if (rc != 0) {
        weir_buf_free(&out);
        return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    }
    rc = write_new_file(tmp, out.data, out.len, err);
    weir_buf_free(&out);
    if (rc != 0)
        return rc;
    if (rename(tmp, path) != 0) {
        rc = weir_err_set(err, WEIR_EIO, "cannot rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return rc;
    }
    return fsync_dir(dir, err);
}

/* Reads the whole (small) file path into out, NUL-terminated. */
static int
slurp(const char *path, weir_buf_t *out, weir_err_t *err)
{
    char chunk[8192];
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

    if (fd < 0)
        return weir_err_set(err, errno == ENOENT ? WEIR_ENOENT : WEIR_EIO,
                            "cannot open %s: %s", path, strerror(errno));
    for (;;) {
        ssize_t r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = weir_err_set(err, WEIR_EIO, "cannot read %s: %s", path, strerror(errno));
            break;
        }
        if (r == 0)
            break;
        if (out->len + (size_t)r > META_MAX) {
            rc = weir_err_set(err, WEIR_EPROTO, "%s is too large to be snapshot metadata", path);
            break;
        }
        if (weir_buf_append(out, chunk, (size_t)r) != 0) {
            rc = weir_err_set(err, WEIR_ENOMEM, "out of memory");
            break;
        }
    }
    close(fd);
    if (rc == 0 && weir_buf_nul(out) != 0)
        rc = weir_err_set(err, WEIR_ENOMEM, "out of memory");
    return rc;
}

/* Reads and checks dir's metadata into m (zeroed here; free it with
 * weir__snap_meta_free, also on failure). */
static int
meta_read(const char *dir, weir__snap_meta_t *m, weir_err_t *err)
{
    char path[PATH_MAX], word[32], *line, *next, *name;
    weir_buf_t text = WEIR_BUF_INIT;
    struct stat st;
    unsigned long long seq;
    long long ttl;
    int version, nstates = -1, lineno = 0, rc, off;
    bool ended = false;

    memset(m, 0, sizeof(*m));
    if (stat(dir, &st) != 0)
        return weir_err_set(err, errno == ENOENT ? WEIR_ENOENT : WEIR_EIO,
                            "snapshot %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return weir_err_set(err, WEIR_EPROTO, "snapshot %s is not a directory", dir);
    if (snprintf(path, sizeof(path), "%s/%s", dir, WEIR__SNAP_META) >= (int)sizeof(path))
        return weir_err_set(err, WEIR_EINVAL, "snapshot path too long: %s", dir);
    if ((rc = slurp(path, &text, err)) != 0) {
        if (rc == WEIR_ENOENT)
            rc = weir_err_set(err, WEIR_EPROTO, "%s is not a complete weir state snapshot "
                              "(no %s file)", dir, WEIR__SNAP_META);
        weir_buf_free(&text);
        return rc;
    }
    if (strlen(text.data) != text.len)
        goto corrupt;
    for (line = text.data; line != NULL && *line != '\0'; line = next) {
        if ((next = strchr(line, '\n')) == NULL)
            goto corrupt;                  /* every line ends: a torn file does not */
        *next++ = '\0';
        lineno++;
        if (ended)
            goto corrupt;
        switch (lineno) {
        case 1:
            if (sscanf(line, "weir-state-snapshot %d%n", &version, &off) != 1 ||
                line[off] != '\0')
                goto corrupt;
            if (version != META_VERSION) {
                weir_buf_free(&text);
                return weir_err_set(err, WEIR_EPROTO, "snapshot %s has format %d; this "
                                    "build reads format %d", dir, version, META_VERSION);
            }
            continue;
        case 2:
            if (strcmp(line, "backend rocksdb") == 0)
                m->backend = WEIR__SNAP_ROCKSDB;
            else if (strcmp(line, "backend memory") == 0)
                m->backend = WEIR__SNAP_MEMORY;
            else
                goto corrupt;
            continue;
        case 3:
            if (sscanf(line, "key-groups %d %d%n", &m->kg_first, &m->kg_last, &off) != 2 ||
                line[off] != '\0' || m->kg_first < 0 || m->kg_last < m->kg_first ||
                m->kg_last > WEIR_STATE_MAX_KEY_GROUP)
                goto corrupt;
            continue;
        case 4:
            if (sscanf(line, "list-seq %llu%n", &seq, &off) != 1 || line[off] != '\0')
                goto corrupt;
            m->list_seq = seq;
            continue;
        case 5:
            if (sscanf(line, "states %d%n", &nstates, &off) != 1 || line[off] != '\0' ||
                nstates < 0)
                goto corrupt;
            continue;
        default:
            break;
        }
        if (strcmp(line, "end") == 0) {
            ended = true;
            continue;
        }
        if (sscanf(line, "state %31s %lld %n", word, &ttl, &off) != 2 || kind_of(word) == 0 ||
            ttl < 0 || m->nstates >= nstates)
            goto corrupt;
        name = line + off;
        if (unescape(name) != 0 || name[0] == '\0' || strlen(name) > WEIR_STATE_NAME_MAX)
            goto corrupt;
        for (int i = 0; i < m->nstates; i++)
            if (strcmp(m->states[i].name, name) == 0)
                goto corrupt;
        if (weir__snap_meta_add(m, name, kind_of(word), ttl) != 0) {
            weir_buf_free(&text);
            return weir_err_set(err, WEIR_ENOMEM, "out of memory");
        }
    }
    if (!ended || m->nstates != nstates)
        goto corrupt;
    weir_buf_free(&text);
    return 0;

corrupt:
    weir_buf_free(&text);
    return weir_err_set(err, WEIR_EPROTO, "snapshot %s: %s is corrupt (line %d)", dir,
                        WEIR__SNAP_META, lineno);
}

/* ---- files ------------------------------------------------------------ */

/* Creates dir, which must not exist, and whose parent must. */
static int
mkdir_new(const char *dir, weir_err_t *err)
{
    if (mkdir(dir, 0700) == 0)
        return 0;
    if (errno == EEXIST)
        return weir_err_set(err, WEIR_EEXIST, "snapshot directory %s already exists", dir);
    if (errno == ENOENT)
        return weir_err_set(err, WEIR_ENOENT, "cannot create %s: its parent directory does "
                            "not exist", dir);
    return weir_err_set(err, WEIR_EIO, "cannot create %s: %s", dir, strerror(errno));
}

/* mkdir -p of dir's parent (mode 0700, as the backend's directories). */
static int
mkdir_parent(const char *dir, weir_err_t *err)
{
    char path[PATH_MAX], *slash;
    size_t n = strlen(dir);

    if (n >= sizeof(path))
        return weir_err_set(err, WEIR_EINVAL, "path too long: %s", dir);
    memcpy(path, dir, n + 1);
    while (n > 1 && path[n - 1] == '/')
        path[--n] = '\0';
    if ((slash = strrchr(path, '/')) == NULL || slash == path)
        return 0;                            /* "." or "/" */
    *slash = '\0';
    for (char *p = path + 1; ; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return weir_err_set(err, WEIR_EIO, "cannot create %s: %s", path, strerror(errno));
        *p = c;
        if (c == '\0')
            return 0;
    }
}

/* fsync of dir's parent, so that dir itself is durable. */
static int
fsync_parent(const char *dir, weir_err_t *err)
{
    char path[PATH_MAX];
    char *slash;

    snprintf(path, sizeof(path), "%s", dir);
    while ((slash = strrchr(path, '/')) != NULL && slash[1] == '\0' && slash != path)
        *slash = '\0';
    if ((slash = strrchr(path, '/')) == NULL)
        return fsync_dir(".", err);
    if (slash == path)
        slash[1] = '\0';
    else
        *slash = '\0';
    return fsync_dir(path, err);
}

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

/* Removes a directory this file created (never one it found). */
static void
rm_tree(const char *dir)
{
    (void)nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* The bytes of every file under dir (depth-first), hard-linked ones
 * counted in full. */
static uint64_t
dir_bytes(const char *dir)
{
    char path[PATH_MAX];
    struct dirent *de;
    uint64_t n = 0;
    DIR *d;

    if ((d = opendir(dir)) == NULL)
        return 0;
    while ((de = readdir(d)) != NULL) {
        struct stat st;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path) ||
            lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            n += dir_bytes(path);
        else if (S_ISREG(st.st_mode))
            n += (uint64_t)st.st_size;
    }
    closedir(d);
    return n;
}

/* Copies the regular file src into the new file dst, and fsyncs it. */
static int
copy_file(const char *src, const char *dst, weir_err_t *err)
{
    int in, out, rc = 0;
    char *buf = NULL;

    if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0)
        return weir_err_set(err, WEIR_EIO, "cannot open %s: %s", src, strerror(errno));
    if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
        rc = weir_err_set(err, WEIR_EIO, "cannot create %s: %s", dst, strerror(errno));
        close(in);
        return rc;
    }
    /* copy_file_range: in the kernel, and a reflink where the filesystem
     * can (still a file of its own); read/write where it cannot */
    for (;;) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, 1u << 30, 0);
        if (n > 0)
            continue;
        if (n == 0)
            goto synced;
        if (errno == EINTR)
            continue;
        if (errno == EXDEV || errno == ENOSYS || errno == EINVAL || errno == EOPNOTSUPP)
            break;
        rc = weir_err_set(err, WEIR_EIO, "cannot copy %s to %s: %s", src, dst, strerror(errno));
        goto done;
    }
    if ((buf = malloc(COPY_BUF)) == NULL) {
        rc = weir_err_set(err, WEIR_ENOMEM, "out of memory");
        goto done;
    }
    /* nothing was copied when copy_file_range fails on its first call */
    if (lseek(in, 0, SEEK_SET) != 0 || ftruncate(out, 0) != 0 || lseek(out, 0, SEEK_SET) != 0) {
        rc = weir_err_set(err, WEIR_EIO, "cannot copy %s: %s", src, strerror(errno));
        goto done;
    }
    for (;;) {
        ssize_t r = read(in, buf, COPY_BUF), off = 0;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = weir_err_set(err, WEIR_EIO, "cannot read %s: %s", src, strerror(errno));
            goto done;
        }
        if (r == 0)
            break;
        while (off < r) {
            ssize_t w = write(out, buf + off, (size_t)(r - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = weir_err_set(err, WEIR_EIO, "cannot write %s: %s", dst,
                                  w < 0 ? strerror(errno) : "short write");
                goto done;
            }
            off += w;
        }
    }
synced:
    if (fsync(out) != 0)
        rc = weir_err_set(err, WEIR_EIO, "cannot fsync %s: %s", dst, strerror(errno));
done:
    free(buf);
    close(in);
    close(out);
    return rc;
}

static bool
ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Puts every regular file of src into dst (both exist): SST files
 * hard-linked when link_sst (copied when linking is impossible, e.g.
 * across filesystems), every other file copied. */
static int
copy_dir(const char *src, const char *dst, bool link_sst, weir_err_t *err)
{
    char from[PATH_MAX], to[PATH_MAX];
    struct dirent *de;
    DIR *d;
    int rc = 0;

    if ((d = opendir(src)) == NULL)
        return weir_err_set(err, errno == ENOENT ? WEIR_EPROTO : WEIR_EIO,
                            "cannot open %s: %s", src, strerror(errno));
    while (rc == 0 && (de = readdir(d)) != NULL) {
        struct stat st;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (snprintf(from, sizeof(from), "%s/%s", src, de->d_name) >= (int)sizeof(from) ||
            snprintf(to, sizeof(to), "%s/%s", dst, de->d_name) >= (int)sizeof(to)) {
            rc = weir_err_set(err, WEIR_EINVAL, "path too long under %s", src);
            break;
        }
        if (lstat(from, &st) != 0) {
            rc = weir_err_set(err, WEIR_EIO, "cannot stat %s: %s", from, strerror(errno));
            break;
        }
        if (!S_ISREG(st.st_mode)) {
            rc = weir_err_set(err, WEIR_EPROTO, "%s is not a regular file: not a snapshot's",
                              from);
            break;
        }
        if (link_sst && ends_with(de->d_name, ".sst")) {
            if (link(from, to) == 0)
                continue;
            if (errno != EXDEV && errno != EPERM && errno != EMLINK && errno != ENOTSUP) {
                rc = weir_err_set(err, WEIR_EIO, "cannot link %s to %s: %s", from, to,
                                  strerror(errno));
                break;
            }
        }
        rc = copy_file(from, to, err);
    }
    closedir(d);
    return rc == 0 ? fsync_dir(dst, err) : rc;
}

/* ---- snapshot ---------------------------------------------------------- */

int
weir_state_snapshot(weir_state_backend_t *b, const char *dir, uint64_t *bytes, weir_err_t *err)
{
    weir__snap_meta_t meta = { 0 };
    int rc;

    if (b == NULL || dir == NULL || dir[0] == '\0')
        return weir_err_set(err, WEIR_EINVAL, "snapshot: no backend or no directory");
    if (strlen(dir) > PATH_MAX - 64)
        return weir_err_set(err, WEIR_EINVAL, "snapshot path too long: %s", dir);
    if ((rc = mkdir_new(dir, err)) != 0)
        return rc;
    meta.kg_first = b->kg_first;
    meta.kg_last = b->kg_last;
    if ((rc = b->ops->snapshot(b, dir, &meta, err)) != 0)
        goto fail;
    if ((rc = meta_write(dir, &meta, err)) != 0 || (rc = fsync_parent(dir, err)) != 0)
        goto fail;
    weir__snap_meta_free(&meta);
    if (bytes != NULL)
        *bytes = dir_bytes(dir);
    return 0;

fail:
    weir__snap_meta_free(&meta);
    rm_tree(dir);                /* ours: mkdir_new created it */
    return rc;
}

int
weir_state_snapshot_copy(const char *src, const char *dir, weir_err_t *err)
{
    weir__snap_meta_t meta;
    char from[PATH_MAX], to[PATH_MAX];
    int rc;

    if (src == NULL || dir == NULL || dir[0] == '\0')
        return weir_err_set(err, WEIR_EINVAL, "snapshot copy: no source or no directory");
    if (strlen(src) > PATH_MAX - 64 || strlen(dir) > PATH_MAX - 64)
        return weir_err_set(err, WEIR_EINVAL, "snapshot path too long");
    if ((rc = meta_read(src, &meta, err)) != 0)
        goto out;
    if ((rc = mkdir_new(dir, err)) != 0)
        goto out;
    if (meta.backend == WEIR__SNAP_ROCKSDB) {
        snprintf(from, sizeof(from), "%s/%s", src, WEIR__SNAP_DB);
        snprintf(to, sizeof(to), "%s/%s", dir, WEIR__SNAP_DB);
        if (mkdir(to, 0700) != 0)
            rc = weir_err_set(err, WEIR_EIO, "cannot create %s: %s", to, strerror(errno));
        else
            rc = copy_dir(from, to, false, err);
    } else {
        snprintf(from, sizeof(from), "%s/%s", src, WEIR__SNAP_ENTRIES);
        snprintf(to, sizeof(to), "%s/%s", dir, WEIR__SNAP_ENTRIES);
        rc = copy_file(from, to, err);
    }
    /* the metadata last, as for a snapshot: written anew, not copied, so
     * the copy is complete exactly when it is there */
    if (rc == 0)
        rc = meta_write(dir, &meta, err);
    if (rc == 0)
        rc = fsync_parent(dir, err);
    if (rc != 0)
        rm_tree(dir);
out:
    weir__snap_meta_free(&meta);
    return rc;
}

/* ---- restore ---------------------------------------------------------- */

typedef struct restore {
    weir_state_backend_t    *b;
    const char              *dir;    /* the snapshot, for messages */
    const weir__snap_meta_t *meta;
    weir_state_t            *cur;    /* the state whose entries come */
    int64_t                  now;
    uint64_t                 list_seq;   /* above every restored element's */
    weir_err_t              *err;
} restore_t;

static int
restore_state_cb(void *arg, int idx)
{
    restore_t *r = arg;
    const weir__snap_state_t *st = &r->meta->states[idx];
    int rc;

    r->cur = NULL;
    if ((rc = weir__state_open(r->b, st->name, st->kind, st->ttl_us, &r->cur)) != 0)
        return weir_err_set(r->err, rc, "restoring from %s: %s", r->dir,
                            r->b->errmsg[0] ? r->b->errmsg : weir_strerror(rc));
    return 0;
}

/* Checks one entry as a snapshot holds it and hands it to the backend. */
static int
restore_entry_cb(void *arg, const char *k, size_t n, const char *val, size_t vlen)
{
    restore_t *r = arg;
    weir_state_t *s = r->cur;
    size_t hdr = s->ttl_us > 0 ? WEIR__TS_LEN : 0, klen, slen;
    const char *key, *suffix;
    int kg, rc;

    if (weir__key_split(k, n, &kg, &key, &klen, &suffix, &slen) != 0 ||
        klen > WEIR_STATE_KEY_MAX ||
        (s->kind == WEIR__STATE_VALUE && slen != 0) ||
        (s->kind == WEIR__STATE_LIST && slen != 8) ||
        (s->kind == WEIR__STATE_MAP && slen > WEIR_STATE_KEY_MAX) ||
        vlen < hdr || vlen - hdr > WEIR_STATE_VALUE_MAX)
        return weir_err_set(r->err, WEIR_EPROTO, "snapshot %s: state '%s' holds a corrupt "
                            "entry", r->dir, s->name);
    if (kg < r->b->kg_first || kg > r->b->kg_last)
        return 0;                            /* another subtask's key group */
    if (hdr > 0 && weir__state_expired((int64_t)weir__be64_get(val), s->ttl_us, r->now))
        return 0;                            /* expired: not worth restoring */
    if (s->kind == WEIR__STATE_LIST) {
        uint64_t seq = weir__be64_get(suffix);
        if (seq >= r->list_seq)
            r->list_seq = seq + 1;
    }
    if ((rc = r->b->ops->restore_put(s, k, n, val, vlen)) != 0)
        return weir_err_set(r->err, rc, "restoring state '%s' from %s: %s", s->name, r->dir,
                            r->b->errmsg[0] ? r->b->errmsg : weir_strerror(rc));
    return 0;
}

static bool
meets(const weir__snap_meta_t *m, int first, int last)
{
    return m->kg_first <= last && m->kg_last >= first;
}

/* Reads the metadata of every snapshot and checks that those meeting
 * [first, last] do not share a key group in it: each key group of a
 * checkpoint comes from exactly one subtask, and a second copy of a list
 * would double its elements. metas: returns new, n entries. */
static int
read_metas(const char *const *dirs, int n, int first, int last, weir__snap_meta_t **metas,
           weir_err_t *err)
{
    weir__snap_meta_t *m;
    int rc = 0;

    if (n < 0 || (n > 0 && dirs == NULL))
        return weir_err_set(err, WEIR_EINVAL, "restore: bad list of snapshots");
    if ((m = calloc((size_t)n + 1, sizeof(*m))) == NULL)
        return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    for (int i = 0; i < n && rc == 0; i++) {
        if (dirs[i] == NULL)
            rc = weir_err_set(err, WEIR_EINVAL, "restore: snapshot %d not given", i);
        else
            rc = meta_read(dirs[i], &m[i], err);
    }
    for (int i = 0; i < n && rc == 0; i++) {
        for (int j = 0; j < i && rc == 0; j++) {
            int lo, hi;

            if (!meets(&m[i], first, last) || !meets(&m[j], first, last))
                continue;
            lo = m[i].kg_first > m[j].kg_first ? m[i].kg_first : m[j].kg_first;
            hi = m[i].kg_last < m[j].kg_last ? m[i].kg_last : m[j].kg_last;
            if (lo < first)
                lo = first;
            if (hi > last)
                hi = last;
            if (lo <= hi)
                rc = weir_err_set(err, WEIR_EINVAL, "snapshots %s and %s both hold key groups "
                                  "[%d, %d]", dirs[j], dirs[i], lo, hi);
        }
    }
    if (rc != 0) {
        for (int i = 0; i < n; i++)
            weir__snap_meta_free(&m[i]);
        free(m);
        return rc;
    }
    *metas = m;
    return 0;
}

static void
free_metas(weir__snap_meta_t *m, int n)
{
    if (m == NULL)
        return;
    for (int i = 0; i < n; i++)
        weir__snap_meta_free(&m[i]);
    free(m);
}

static int
restore_all(weir_state_backend_t *b, const char *const *dirs, int n,
            const weir__snap_meta_t *metas, weir_err_t *err)
{
    restore_t r = { .b = b, .now = weir__state_now(), .err = err };
    weir__snap_sink_t sink = { restore_state_cb, restore_entry_cb, &r };
    char path[PATH_MAX];
    bool empty = false;
    int rc = 0;

    if ((rc = b->ops->is_empty(b, &empty)) != 0)
        return weir_err_set(err, rc, "restore: %s", b->errmsg);
    if (!empty)
        return weir_err_set(err, WEIR_ESTATE, "restore: the backend already holds entries; "
                            "restore needs a new, empty one");
    for (int i = 0; i < n && rc == 0; i++) {
        const weir__snap_meta_t *m = &metas[i];
        int first = m->kg_first > b->kg_first ? m->kg_first : b->kg_first;
        int last = m->kg_last < b->kg_last ? m->kg_last : b->kg_last;

        if (first > last)
            continue;                        /* nothing of ours in it */
        r.dir = dirs[i];
        r.meta = m;
        if (m->list_seq > r.list_seq)
            r.list_seq = m->list_seq;
        if (m->backend == WEIR__SNAP_ROCKSDB) {
            snprintf(path, sizeof(path), "%s/%s", dirs[i], WEIR__SNAP_DB);
            rc = weir__rdb_snapshot_read(path, m, first, last, &sink, err);
        } else {
            snprintf(path, sizeof(path), "%s/%s", dirs[i], WEIR__SNAP_ENTRIES);
            rc = weir__mem_snapshot_read(path, m, first, last, &sink, err);
        }
    }
    if (rc != 0) {
        (void)b->ops->restore_end(b, 0, false);
        return rc;
    }
    if ((rc = b->ops->restore_end(b, r.list_seq, true)) != 0)
        return weir_err_set(err, rc, "restore: %s", b->errmsg);
    return 0;
}

int
weir_state_restore(weir_state_backend_t *b, const char *const *dirs, int n, weir_err_t *err)
{
    weir__snap_meta_t *metas = NULL;
    int rc;

    if (b == NULL)
        return weir_err_set(err, WEIR_EINVAL, "restore: no backend");
    if ((rc = read_metas(dirs, n, b->kg_first, b->kg_last, &metas, err)) != 0)
        return rc;
    rc = restore_all(b, dirs, n, metas, err);
    free_metas(metas, n);
    return rc;
}

/* The fast path: dir (created, claimed) gets the snapshot's files, is
 * opened, and loses the key groups outside [first, last]. */
static int
restore_linked(const char *dir, int first, int last, const char *snap,
               const weir__snap_meta_t *m, weir_state_backend_t **out, weir_err_t *err)
{
    weir_state_backend_t *b = NULL;
    char from[PATH_MAX];
    int rc;

    /* without CURRENT, RocksDB would happily create an empty instance */
    snprintf(from, sizeof(from), "%s/%s/CURRENT", snap, WEIR__SNAP_DB);
    if (access(from, F_OK) != 0)
        return weir_err_set(err, WEIR_EPROTO, "snapshot %s is incomplete: no %s", snap, from);
    snprintf(from, sizeof(from), "%s/%s", snap, WEIR__SNAP_DB);
    if ((rc = weir__rdb_claim_dir(dir, err)) != 0 ||
        (rc = copy_dir(from, dir, true, err)) != 0)
        return rc;
    if ((rc = weir_state_backend_rocksdb(dir, first, last, &b, err)) != 0) {
        weir_err_prefix(err, "restoring from %s", snap);
        return rc;
    }
    /* one range tombstone per column family on each side, if any */
    if ((first > m->kg_first && (rc = weir_state_drop_key_groups(b, 0, first - 1)) != 0) ||
        (last < m->kg_last &&
         (rc = weir_state_drop_key_groups(b, last + 1, WEIR_STATE_MAX_KEY_GROUP)) != 0)) {
        weir_err_set(err, rc, "restoring from %s: %s", snap, weir_state_backend_error(b));
        weir_state_backend_destroy(b);
        return rc;
    }
    *out = b;
    return 0;
}

int
weir_state_backend_rocksdb_restore(const char *dir, int kg_first, int kg_last,
                                   const char *const *dirs, int n,
                                   weir_state_backend_t **out, weir_err_t *err)
{
    weir__snap_meta_t *metas = NULL;
    weir_state_backend_t *b = NULL;
    struct stat st;
    int rc, meeting = 0, cover = -1;

    if (dir == NULL || dir[0] == '\0' || out == NULL)
        return weir_err_set(err, WEIR_EINVAL, "restore: no state directory");
    if (strlen(dir) > PATH_MAX - 64)
        return weir_err_set(err, WEIR_EINVAL, "state directory path too long");
    if (kg_first < 0 || kg_last < kg_first || kg_last > WEIR_STATE_MAX_KEY_GROUP)
        return weir_err_set(err, WEIR_EINVAL, "key group range [%d, %d] is not within [0, %d]",
                            kg_first, kg_last, WEIR_STATE_MAX_KEY_GROUP);
    if ((rc = read_metas(dirs, n, kg_first, kg_last, &metas, err)) != 0)
        return rc;
    if (lstat(dir, &st) == 0 || errno != ENOENT) {
        rc = weir_err_set(err, WEIR_EEXIST, "restore: state directory %s already exists", dir);
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (!meets(&metas[i], kg_first, kg_last))
            continue;
        meeting++;
        if (metas[i].backend == WEIR__SNAP_ROCKSDB && metas[i].kg_first <= kg_first &&
            metas[i].kg_last >= kg_last)
            cover = i;
    }
    if ((rc = mkdir_parent(dir, err)) != 0)
        goto out;

    if (meeting == 1 && cover >= 0) {
        if ((rc = mkdir_new(dir, err)) != 0)
            goto out;
        if ((rc = restore_linked(dir, kg_first, kg_last, dirs[cover], &metas[cover], &b,
                                 err)) != 0) {
            rm_tree(dir);            /* ours: mkdir_new created it */
            goto out;
        }
    } else {
        if ((rc = weir_state_backend_rocksdb(dir, kg_first, kg_last, &b, err)) != 0) {
            rm_tree(dir);            /* it did not exist: whatever is there is ours */
            goto out;
        }
        if ((rc = restore_all(b, dirs, n, metas, err)) != 0) {
            (void)weir_state_backend_drop(b);
            b = NULL;
            goto out;
        }
    }
    *out = b;                    /* caller owns: weir_state_backend_destroy() */
out:
    free_metas(metas, n);
    return rc;
}
