/* operators/file_source.c -- the "file" source: JSON lines from a file.
 *
 *   - name: orders
 *     kind: file
 *     path: data/orders.jsonl
 *     format: json
 *     schema: {order_id: string, amount: double, ts: timestamp}
 *
 * The file is read by every subtask; subtask s of P keeps the lines whose
 * 0-based number n has n % P == s, so together the subtasks read each line
 * exactly once and no coordination is needed. Blank lines are skipped (they
 * still count in the numbering).
 *
 * Reading is one fread into a reusable buffer at a time; lines are found
 * with memchr and parsed in place with the JSON row reader, which copies
 * strings into the output batch's arena: nothing is allocated per line. A
 * line longer than the buffer grows it, up to `max_line_bytes` (64 MiB by
 * default); a longer line is skipped as bad, without being held in memory.
 *
 * A line that does not parse or does not fit the schema is skipped and
 * counted; the first and then every 1000th is logged with its line number
 * and reason. It never stops the job. (The count is what will go to the
 * dead-letter output once there is one.)
 *
 * Each poll does a bounded amount of work, so a file that is mostly other
 * subtasks' lines or bad lines still lets the task thread look up often.
 */
#include "registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/core/json_row.h"
#include "../runtime/core/log.h"

#define READ_CHUNK   (1u << 20)        /* initial buffer, bytes */
#define MAX_LINE     (64 << 20)        /* default max_line_bytes */
#define WARN_EVERY   1000

typedef struct file_source_conf {
    char          *path;
    size_t         max_line;       /* longest line kept, bytes */
} file_source_conf_t;

typedef struct file_source {
    const file_source_conf_t *conf;
    FILE               *fp;
    weir_json_reader_t *reader;
    char               *buf;
    size_t              cap;
    size_t              start, end;     /* unconsumed bytes buf[start, end) */
    bool                eof;
    bool                skipping;       /* inside an over-long line */
    uint64_t            line;           /* 0-based number of the next line */
    uint64_t            stride, mine;   /* parallelism, subtask */
    uint64_t            bad_lines;      /* dead-letter count */
    uint64_t            rows;
} file_source_t;

static const char *const file_source_params[] = { "path", "schema", "format", "max_line_bytes",
                                                   NULL };

static void
file_source_conf_free(void *p)
{
    file_source_conf_t *c = p;

    if (c == NULL)
        return;
    free(c->path);
    free(c);
}

static int
file_source_configure(weir_op_config_t *cfg, weir_err_t *err)
{
    const weir_params_t *p = &cfg->params;
    file_source_conf_t *c;
    weir_schema_t *schema = NULL;
    char *format = NULL;
    int64_t max_line;
    int rc;

    if ((rc = weir_params_check_keys(p, file_source_params, err)) != 0)
        return rc;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return WEIR_ENOMEM;
    if ((rc = weir_params_req_str(p, "path", &c->path, err)) != 0 ||
        (rc = weir_params_opt_str(p, "format", "json", &format, err)) != 0)
        goto fail;
    if (strcmp(format, "json") != 0) {
        rc = weir_params_error(p, "format", WEIR_EINVAL, err,
                               "unsupported format '%s' for a file source (json)", format);
        goto fail;
    }
    if (c->path[0] == '\0') {
        rc = weir_params_error(p, "path", WEIR_EINVAL, err, "'path' must not be empty");
        goto fail;
    }
    if ((rc = weir_params_opt_int(p, "max_line_bytes", MAX_LINE, &max_line, err)) != 0)
        goto fail;
    if (max_line < 16 || max_line > (1 << 30)) {
        rc = weir_params_error(p, "max_line_bytes", WEIR_ERANGE, err,
                               "'max_line_bytes' must be between 16 and 1073741824");
        goto fail;
    }
    c->max_line = (size_t)max_line;
    if ((rc = weir_params_schema(p, "schema", &schema, err)) != 0)
        goto fail;
    free(format);
    cfg->output_schema = schema;
    cfg->conf = c;
    return 0;

fail:
    free(format);
    file_source_conf_free(c);
    return rc;
}

static int
file_source_open(weir_op_t *op, weir_err_t *err)
{
    const file_source_conf_t *c = op->cfg->conf;
    file_source_t *s;
    int rc;

    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return WEIR_ENOMEM;
    s->conf = c;
    s->stride = op->ctx->parallelism > 0 ? (uint64_t)op->ctx->parallelism : 1;
    s->mine = (uint64_t)op->ctx->subtask;
    /* room for the longest line and its newline, at most */
    s->cap = c->max_line + 1 < READ_CHUNK ? c->max_line + 1 : READ_CHUNK;
    s->buf = malloc(s->cap);
    if (s->buf == NULL) {
        rc = WEIR_ENOMEM;
        goto fail_buf;
    }
    if ((rc = weir_json_reader_create(op->cfg->output_schema, &s->reader)) != 0)
        goto fail_reader;
    s->fp = fopen(c->path, "rb");
    if (s->fp == NULL) {
        rc = weir_err_set(err, WEIR_EIO, "%s file source: cannot open '%s': %s",
                          op->ctx->log_prefix, c->path, strerror(errno));
        goto fail_open;
    }
    op->self = s;
    return 0;

fail_open:
    weir_json_reader_destroy(s->reader);
fail_reader:
    free(s->buf);
fail_buf:
    free(s);
    return rc;
}

static void
file_source_close(weir_op_t *op)
{
    file_source_t *s = op->self;

    if (s == NULL)
        return;
    if (s->fp != NULL)
        fclose(s->fp);
    weir_json_reader_destroy(s->reader);
    free(s->buf);
    free(s);
    op->self = NULL;
}

uint64_t
weir_op_file_source_bad_lines(const weir_op_t *op)
{
    const file_source_t *s = op->self;

    return s == NULL ? 0 : s->bad_lines;
}

/* Reads more bytes after the unconsumed ones: moves them to the front and
 * grows the buffer when a line fills it. Returns 0, or a negative code. */
static int
refill(weir_op_t *op, file_source_t *s, weir_err_t *err)
{
    size_t n, keep = s->end - s->start;

    if (s->start > 0) {
        memmove(s->buf, s->buf + s->start, keep);
        s->start = 0;
        s->end = keep;
    }
    if (s->end == s->cap) {
        if (s->cap >= s->conf->max_line + 1) {
            /* a line longer than we keep: drop what we have of it */
            s->skipping = true;
            s->end = 0;
        } else {
            size_t cap = s->cap * 2 > s->conf->max_line + 1 ? s->conf->max_line + 1 : s->cap * 2;
            char *p = realloc(s->buf, cap);
            if (p == NULL)
                return weir_err_set(err, WEIR_ENOMEM, "%s file source: out of memory", op->ctx->log_prefix);
            s->buf = p;
            s->cap = cap;
        }
    }
    n = fread(s->buf + s->end, 1, s->cap - s->end, s->fp);
    s->end += n;
    if (n == 0) {
        if (ferror(s->fp))
            return weir_err_set(err, WEIR_EIO, "%s file source: read '%s': %s", op->ctx->log_prefix,
                                s->conf->path, strerror(errno));
        s->eof = true;
    }
    return 0;
}

static void
bad_line(weir_op_t *op, file_source_t *s, uint64_t lineno, const char *reason)
{
    s->bad_lines++;
    if (s->bad_lines % WARN_EVERY == 1)
        weir_log_warn("%s file source: %s:%llu: skipped a bad line (%llu so far): %s",
                      op->ctx->log_prefix, s->conf->path, (unsigned long long)lineno,
                      (unsigned long long)s->bad_lines, reason);
}

/* Handles one whole line (without its newline) numbered s->line. */
static int
one_line(weir_op_t *op, file_source_t *s, const char *p, size_t len, weir_batch_t *out,
         weir_err_t *err)
{
    uint64_t n = s->line++;
    weir_err_t perr;
    int rc;

    if (n % s->stride != s->mine)
        return 0;
    if (len > 0 && p[len - 1] == '\r')
        len--;
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    while (len > 0 && (*p == ' ' || *p == '\t')) {
        p++;
        len--;
    }
    if (len == 0)
        return 0;
    perr.code = 0;
    perr.msg[0] = '\0';
    rc = weir_json_reader_parse(s->reader, p, len, out, &perr);
    if (rc == WEIR_ENOMEM)
        return weir_err_set(err, rc, "%s file source: out of memory", op->ctx->log_prefix);
    if (rc != 0) {
        bad_line(op, s, n + 1, perr.msg[0] ? perr.msg : weir_strerror(rc));
        return 0;
    }
    s->rows++;
    return 1;
}

static int
file_source_poll(weir_op_t *op, weir_batch_t *out, int max, int64_t *idle_us, weir_err_t *err)
{
    file_source_t *s = op->self;
    uint64_t budget;
    int got = 0, rc;

    if (max <= 0)
        max = 1;
    /* lines looked at per call: enough for a full batch of ours, bounded */
    budget = (uint64_t)max * s->stride + 4096;
    while (got < max && budget > 0) {
        char *p = s->buf + s->start;
        char *nl = s->end > s->start ? memchr(p, '\n', s->end - s->start) : NULL;

        if (nl != NULL) {
            size_t len = (size_t)(nl - p);
            s->start += len + 1;
            budget--;
            if (s->skipping) {
                s->skipping = false;
                if (s->line++ % s->stride == s->mine)
                    bad_line(op, s, s->line, "line longer than max_line_bytes");
                continue;
            }
            rc = one_line(op, s, p, len, out, err);
            if (rc < 0)
                return rc;
            got += rc;
            continue;
        }
        if (s->eof) {
            /* the last line may lack its newline */
            if (s->skipping) {
                s->skipping = false;
                if (s->line++ % s->stride == s->mine)
                    bad_line(op, s, s->line, "line longer than max_line_bytes");
            } else if (s->end > s->start) {
                rc = one_line(op, s, p, s->end - s->start, out, err);
                if (rc < 0)
                    return rc;
            }
            s->start = s->end = 0;
            return WEIR_EOS;
        }
        if ((rc = refill(op, s, err)) != 0)
            return rc;
    }
    return 0;
}

const weir_op_kind_t weir_op_file_source = {
    .name       = "file",
    .roles      = WEIR_ROLE_SOURCE,
    .min_inputs = 0,
    .max_inputs = 0,
    .keyed      = false,
    .params     = file_source_params,
    .summary    = "reads JSON lines from a file, each line by exactly one subtask",
    .configure  = file_source_configure,
    .conf_free  = file_source_conf_free,
    .open       = file_source_open,
    .poll       = file_source_poll,
    .close      = file_source_close,
};
