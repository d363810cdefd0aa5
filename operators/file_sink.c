/* operators/file_sink.c -- the "file" sink: JSON lines into a directory.
 *
 *   - name: out
 *     kind: file
 *     input: big
 *     path: /tmp/out/big          # a directory, created when missing
 *     format: json
 *
 * Subtask s writes <path>/part-<s>.jsonl (truncated at open), one JSON
 * object per line, so subtasks never share a file and need no locking. Each
 * batch is rendered into one reusable buffer and written with one write(2)
 * (looping only on short writes); finish() fsyncs, so a finished job's
 * output is on disk. Any failure (EACCES at open, ENOSPC at write, EIO at
 * fsync) is returned with a message naming the file, which fails the task:
 * a sink that silently drops rows is worse than one that stops.
 *
 * With checkpoints the sink is exactly-once, like Flink's FileSink: rows go
 * to an in-progress dot-file per checkpoint,
 *
 *   <path>/.part-<s>-<job>-a<attempt>-<n>.inprogress
 *
 * (n: the checkpoint its rows belong to; opened at the first row). At the
 * barrier of checkpoint n it is fsynced, closed and recorded as pending in
 * the checkpoint (name and size). When checkpoint n completes, every
 * pending file up to n is renamed to its final name
 *
 *   <path>/part-<s>-<job>-<n>.jsonl
 *
 * and the directory fsynced: a reader sees only whole, committed files
 * (dot-files are not output). A restored subtask first commits what its
 * checkpoint had pending -- the pending files of old subtasks i with
 * i % parallelism == subtask, each truncated to its recorded size (rows
 * written after the checkpoint belong to no checkpoint) unless it was
 * renamed before the crash -- then deletes the in-progress files those old
 * subtasks left from earlier attempts: their rows are replayed. At the end
 * of a bounded input the task waits for a final checkpoint, which seals
 * what is open, and its completion publishes it (docs/checkpoints.md);
 * finish() commits nothing then.
 */
#include "registry.h"

#include <dirent.h>
#include <errno.h>
#include <msgpack.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../runtime/core/json_row.h"

typedef struct file_sink_conf {
    char *path;                  /* the directory */
} file_sink_conf_t;

typedef struct pending_file {
    int64_t  ckpt;
    char    *name;               /* in-progress name, relative to the path */
    uint64_t size;
} pending_file_t;

typedef struct file_sink {
    const file_sink_conf_t *conf;
    char      *file;             /* the open file's full path */
    int        fd;
    weir_buf_t buf;              /* one batch of lines, reused */
    uint64_t   rows;
    /* exactly-once mode (checkpoints) */
    bool       eo;
    char       job8[9];
    int64_t    epoch;            /* the checkpoint the open file's rows belong to */
    char      *cur;              /* open in-progress file name (relative), or NULL */
    uint64_t   cur_size;
    pending_file_t *pend;
    int        npend;
} file_sink_t;

static const char *const file_sink_params[] = { "path", "format", NULL };

static void
file_sink_conf_free(void *p)
{
    file_sink_conf_t *c = p;

    if (c == NULL)
        return;
    free(c->path);
    free(c);
}

static int
file_sink_configure(weir_op_config_t *cfg, weir_err_t *err)
{
    const weir_params_t *p = &cfg->params;
    file_sink_conf_t *c;
    char *format = NULL;
    int rc;

    if ((rc = weir_params_check_keys(p, file_sink_params, err)) != 0)
        return rc;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return WEIR_ENOMEM;
    if ((rc = weir_params_req_str(p, "path", &c->path, err)) != 0 ||
        (rc = weir_params_opt_str(p, "format", "json", &format, err)) != 0)
        goto fail;
    if (c->path[0] == '\0') {
        rc = weir_params_error(p, "path", WEIR_EINVAL, err, "'path' must not be empty");
        goto fail;
    }
    if (strcmp(format, "json") != 0) {
        rc = weir_params_error(p, "format", WEIR_EINVAL, err,
                               "unsupported format '%s' for a file sink (json)", format);
        goto fail;
    }
    free(format);
    cfg->output_schema = NULL;
    cfg->conf = c;
    return 0;

fail:
    free(format);
    file_sink_conf_free(c);
    return rc;
}

/* mkdir -p: creates dir and its missing parents. Returns 0 or -errno. */
static int
mkdirs(const char *dir)
{
    char *p = strdup(dir), *s;
    struct stat st;
    int rc = 0;

    if (p == NULL)
        return -ENOMEM;
    for (s = p + 1; ; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        char c = *s;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            rc = -errno;
            break;
        }
        *s = c;
        if (c == '\0')
            break;
    }
    if (rc == 0 && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)))
        rc = stat(dir, &st) != 0 ? -errno : -ENOTDIR;
    free(p);
    return rc;
}

static int
file_sink_open(weir_op_t *op, weir_err_t *err)
{
    const file_sink_conf_t *c = op->cfg->conf;
    file_sink_t *s;
    int rc;

    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return WEIR_ENOMEM;
    s->fd = -1;
    if ((rc = mkdirs(c->path)) != 0) {
        rc = weir_err_set(err, WEIR_EIO, "%s file sink: cannot create directory '%s': %s",
                          op->ctx->log_prefix, c->path, strerror(-rc));
        goto fail;
    }
    s->conf = c;
    if (op->ctx->checkpoint_interval_us > 0) {
        /* exactly-once: files open at the first row of each checkpoint */
        s->eo = true;
        snprintf(s->job8, sizeof(s->job8), "%.8s", op->ctx->job_id ? op->ctx->job_id : "job");
        s->epoch = 1;
        op->self = s;
        return 0;
    }
    if (asprintf(&s->file, "%s/part-%d.jsonl", c->path, op->ctx->subtask) < 0) {
        s->file = NULL;
        rc = WEIR_ENOMEM;
        goto fail;
    }
    s->fd = open(s->file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s->fd < 0) {
        rc = weir_err_set(err, WEIR_EIO, "%s file sink: cannot open '%s': %s",
                          op->ctx->log_prefix, s->file, strerror(errno));
        goto fail;
    }
    op->self = s;
    return 0;

fail:
    free(s->file);
    free(s);
    return rc;
}

static void
file_sink_close(weir_op_t *op)
{
    file_sink_t *s = op->self;

    if (s == NULL)
        return;
    if (s->fd >= 0)
        close(s->fd);
    weir_buf_free(&s->buf);
    free(s->file);
    free(s->cur);
    for (int i = 0; i < s->npend; i++)
        free(s->pend[i].name);
    free(s->pend);
    free(s);
    op->self = NULL;
}

static int eo_open(weir_op_t *op, file_sink_t *s, weir_err_t *err);

static int
write_all(weir_op_t *op, file_sink_t *s, const char *p, size_t n, weir_err_t *err)
{
    while (n > 0) {
        ssize_t w = write(s->fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return weir_err_set(err, WEIR_EIO, "%s file sink: write '%s': %s",
                                op->ctx->log_prefix, s->file, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int
file_sink_process(weir_op_t *op, int input, const weir_batch_t *in, weir_batch_t *out,
                  weir_err_t *err)
{
    file_sink_t *s = op->self;
    int rc;

    weir_buf_reset(&s->buf);
    for (int r = 0; r < in->nrows; r++) {
        if ((rc = weir_json_write_row(in->schema, weir_batch_row(in, r), &s->buf)) != 0 ||
            (rc = weir_buf_putc(&s->buf, '\n')) != 0)
            return weir_err_set(err, rc, "%s file sink: cannot render a row of '%s': %s",
                                op->ctx->log_prefix, s->file, weir_strerror(rc));
    }
    if (s->eo && s->fd < 0 && (rc = eo_open(op, s, err)) != 0)
        return rc;
    if ((rc = write_all(op, s, s->buf.data, s->buf.len, err)) != 0)
        return rc;
    s->cur_size += s->buf.len;
    s->rows += (uint64_t)in->nrows;
    return 0;
}


/* ---- exactly-once mode -------------------------------------------------- */

static int
eo_open(weir_op_t *op, file_sink_t *s, weir_err_t *err)
{
    free(s->cur);
    free(s->file);
    s->file = NULL;
    if (asprintf(&s->cur, ".part-%d-%s-a%d-%lld.inprogress", op->ctx->subtask, s->job8,
                 op->ctx->attempt, (long long)s->epoch) < 0 ||
        asprintf(&s->file, "%s/%s", s->conf->path, s->cur) < 0) {
        s->cur = NULL;
        return weir_err_set(err, WEIR_ENOMEM, "%s file sink: out of memory", op->ctx->log_prefix);
    }
    s->fd = open(s->file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (s->fd < 0)
        return weir_err_set(err, WEIR_EIO, "%s file sink: cannot open '%s': %s",
                            op->ctx->log_prefix, s->file, strerror(errno));
    s->cur_size = 0;
    return 0;
}

/* The final name of a pending file: the dot and the attempt dropped. */
static char *
final_name(const file_sink_conf_t *c, const char *inprogress, int64_t ckpt)
{
    char *out = NULL;
    int sub = -1;
    char job[16] = "";

    if (sscanf(inprogress, ".part-%d-%8[^-]-", &sub, job) != 2)
        return NULL;
    if (asprintf(&out, "%s/part-%d-%s-%lld.jsonl", c->path, sub, job, (long long)ckpt) < 0)
        return NULL;
    return out;
}

/* Ends the open file: fsync, close; it becomes pending for ckpt. */
static int
eo_seal(weir_op_t *op, file_sink_t *s, int64_t ckpt, weir_err_t *err)
{
    pending_file_t *p;

    if (s->fd < 0)
        return 0;
    if (fsync(s->fd) != 0 && errno != EINVAL && errno != EROFS)
        return weir_err_set(err, WEIR_EIO, "%s file sink: fsync '%s': %s", op->ctx->log_prefix,
                            s->file, strerror(errno));
    close(s->fd);
    s->fd = -1;
    p = realloc(s->pend, sizeof(*p) * (size_t)(s->npend + 1));
    if (p == NULL)
        return weir_err_set(err, WEIR_ENOMEM, "%s file sink: out of memory", op->ctx->log_prefix);
    s->pend = p;
    s->pend[s->npend++] = (pending_file_t){ .ckpt = ckpt, .name = s->cur, .size = s->cur_size };
    s->cur = NULL;
    return 0;
}

/* Publishes one pending file: truncated to its recorded size, renamed.
 * Already renamed (a commit before a crash): nothing to do. */
static int
publish(weir_op_t *op, const file_sink_conf_t *c, const char *name, int64_t ckpt, uint64_t size,
        weir_err_t *err)
{
    char *from = NULL, *to = final_name(c, name, ckpt);
    struct stat st;
    int rc = 0;

    if (to == NULL || asprintf(&from, "%s/%s", c->path, name) < 0) {
        free(to);
        return weir_err_set(err, WEIR_ENOMEM, "%s file sink: out of memory", op->ctx->log_prefix);
    }
    if (stat(to, &st) == 0 && stat(from, &st) != 0)
        goto out;                            /* committed before */
    if (stat(from, &st) != 0) {
        rc = weir_err_set(err, WEIR_EIO, "%s file sink: the pending file '%s' of checkpoint %lld "
                          "is gone: %s", op->ctx->log_prefix, from, (long long)ckpt,
                          strerror(errno));
        goto out;
    }
    if ((uint64_t)st.st_size > size && truncate(from, (off_t)size) != 0) {
        rc = weir_err_set(err, WEIR_EIO, "%s file sink: truncate '%s': %s", op->ctx->log_prefix,
                          from, strerror(errno));
        goto out;
    }
    if ((uint64_t)st.st_size < size) {
        rc = weir_err_set(err, WEIR_EIO, "%s file sink: the pending file '%s' is shorter (%lld) "
                          "than checkpoint %lld recorded (%llu)", op->ctx->log_prefix, from,
                          (long long)st.st_size, (long long)ckpt, (unsigned long long)size);
        goto out;
    }
    if (rename(from, to) != 0)
        rc = weir_err_set(err, WEIR_EIO, "%s file sink: rename '%s' to '%s': %s",
                          op->ctx->log_prefix, from, to, strerror(errno));
out:
    free(from);
    free(to);
    return rc;
}

static int
sync_dir(weir_op_t *op, const char *path, weir_err_t *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0 || (fsync(fd) != 0 && errno != EINVAL)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return weir_err_set(err, WEIR_EIO, "%s file sink: fsync of '%s': %s",
                            op->ctx->log_prefix, path, strerror(e));
    }
    close(fd);
    return 0;
}

/* Commits pending files of checkpoints <= ckpt. */
static int
eo_commit(weir_op_t *op, file_sink_t *s, int64_t ckpt, weir_err_t *err)
{
    int k = 0, rc = 0, done = 0;

    for (int i = 0; i < s->npend; i++) {
        pending_file_t *p = &s->pend[i];
        if (p->ckpt <= ckpt && rc == 0) {
            rc = publish(op, s->conf, p->name, p->ckpt, p->size, err);
            if (rc == 0) {
                free(p->name);
                done++;
                continue;
            }
        }
        s->pend[k++] = *p;
    }
    s->npend = k;
    if (rc == 0 && done > 0)
        rc = sync_dir(op, s->conf->path, err);
    return rc;
}

/* msgpack [[ckpt, name, size], ...]: every file not yet published */
static int
file_sink_snapshot(weir_op_t *op, int64_t ckpt, weir_buf_t *out, weir_err_t *err)
{
    file_sink_t *s = op->self;
    msgpack_packer pk;
    int rc;

    if (!s->eo)
        return 0;
    if ((rc = eo_seal(op, s, ckpt, err)) != 0)
        return rc;
    s->epoch = ckpt + 1;
    msgpack_packer_init(&pk, out, weir_buf_msgpack_write);
    msgpack_pack_array(&pk, (size_t)s->npend);
    for (int i = 0; i < s->npend; i++) {
        size_t n = strlen(s->pend[i].name);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_int64(&pk, s->pend[i].ckpt);
        msgpack_pack_str(&pk, n);
        msgpack_pack_str_body(&pk, s->pend[i].name, n);
        msgpack_pack_uint64(&pk, s->pend[i].size);
    }
    return 0;
}

static int
file_sink_notify(weir_op_t *op, int64_t ckpt, weir_err_t *err)
{
    file_sink_t *s = op->self;

    return s->eo ? eo_commit(op, s, ckpt, err) : 0;
}

/* Deletes the in-progress files that old subtask i left in earlier
 * attempts (everything still pending was published first). */
static int
remove_leftovers(weir_op_t *op, const file_sink_t *s, int i, weir_err_t *err)
{
    DIR *d = opendir(s->conf->path);
    struct dirent *de;
    char prefix[64];

    if (d == NULL)
        return weir_err_set(err, WEIR_EIO, "%s file sink: cannot read '%s': %s",
                            op->ctx->log_prefix, s->conf->path, strerror(errno));
    snprintf(prefix, sizeof(prefix), ".part-%d-%s-a", i, s->job8);
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        char path[4096];
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0 || n < 11 ||
            strcmp(de->d_name + n - 11, ".inprogress") != 0 ||
            atoi(de->d_name + strlen(prefix)) >= op->ctx->attempt)
            continue;
        snprintf(path, sizeof(path), "%s/%s", s->conf->path, de->d_name);
        unlink(path);
    }
    closedir(d);
    return 0;
}

static int
file_sink_restore(weir_op_t *op, int64_t ckpt, int old_parallelism, const weir_op_blob_t *blobs,
                  int nblobs, weir_err_t *err)
{
    file_sink_t *s = op->self;
    int p = op->ctx->parallelism, me = op->ctx->subtask, rc = 0, published = 0;

    if (!s->eo)
        return 0;
    s->epoch = ckpt + 1;
    for (int b = 0; b < nblobs && rc == 0; b++) {
        msgpack_unpacked u;
        size_t off = 0;

        if (blobs[b].subtask % p != me)
            continue;
        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, blobs[b].data, blobs[b].len, &off) != MSGPACK_UNPACK_SUCCESS ||
            u.data.type != MSGPACK_OBJECT_ARRAY) {
            msgpack_unpacked_destroy(&u);
            return weir_err_set(err, WEIR_EPARSE, "%s file sink: corrupt checkpoint state",
                                op->ctx->log_prefix);
        }
        for (uint32_t i = 0; i < u.data.via.array.size && rc == 0; i++) {
            const msgpack_object *e = &u.data.via.array.ptr[i];
            char name[512];
            if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 3 ||
                e->via.array.ptr[1].type != MSGPACK_OBJECT_STR ||
                e->via.array.ptr[1].via.str.size >= sizeof(name))
                continue;
            memcpy(name, e->via.array.ptr[1].via.str.ptr, e->via.array.ptr[1].via.str.size);
            name[e->via.array.ptr[1].via.str.size] = '\0';
            rc = publish(op, s->conf, name, e->via.array.ptr[0].via.i64,
                         e->via.array.ptr[2].via.u64, err);
            published++;
        }
        msgpack_unpacked_destroy(&u);
    }
    if (rc == 0 && published > 0)
        rc = sync_dir(op, s->conf->path, err);
    /* the leftovers of the old subtasks this one stands for, and its own */
    for (int i = me; rc == 0 && i < (old_parallelism > p ? old_parallelism : p); i += p)
        rc = remove_leftovers(op, s, i, err);
    return rc;
}

static int
file_sink_finish(weir_op_t *op, weir_batch_t *out, weir_err_t *err)
{
    file_sink_t *s = op->self;
    int rc;

    if (s->eo) {
        /* end of a bounded input: the final checkpoint seals what is open
         * and its completion publishes it (without one, everything now) */
        if (op->ctx->final_checkpoint)
            return 0;
        if ((rc = eo_seal(op, s, s->epoch, err)) != 0)
            return rc;
        return eo_commit(op, s, INT64_MAX, err);
    }
    if (fsync(s->fd) != 0 && errno != EINVAL && errno != EROFS)
        return weir_err_set(err, WEIR_EIO, "%s file sink: fsync '%s': %s", op->ctx->log_prefix,
                            s->file, strerror(errno));
    return 0;
}

const weir_op_kind_t weir_op_file_sink = {
    .name       = "file",
    .roles      = WEIR_ROLE_SINK,
    .min_inputs = 1,
    .max_inputs = 1,
    .keyed      = false,
    .params     = file_sink_params,
    .summary    = "writes JSON lines to <path>/part-<subtask>.jsonl",
    .configure  = file_sink_configure,
    .conf_free  = file_sink_conf_free,
    .open       = file_sink_open,
    .process    = file_sink_process,
    .finish     = file_sink_finish,
    .close      = file_sink_close,
    .snapshot   = file_sink_snapshot,
    .notify_complete = file_sink_notify,
    .restore    = file_sink_restore,
};
