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
 */
#include "registry.h"

#include <errno.h>
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

typedef struct file_sink {
    char      *file;             /* <path>/part-<subtask>.jsonl */
    int        fd;
    weir_buf_t buf;              /* one batch of lines, reused */
    uint64_t   rows;
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
    free(s);
    op->self = NULL;
}

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
    if ((rc = write_all(op, s, s->buf.data, s->buf.len, err)) != 0)
        return rc;
    s->rows += (uint64_t)in->nrows;
    return 0;
}

static int
file_sink_finish(weir_op_t *op, weir_batch_t *out, weir_err_t *err)
{
    file_sink_t *s = op->self;

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
};
