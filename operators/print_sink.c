/* operators/print_sink.c -- the "print" sink: rows as JSON on stdout.
 *
 *   - name: show
 *     kind: print
 *     input: counts
 *     limit: 100            # optional: print at most 100 rows per subtask
 *
 * Each row becomes one line "<log prefix> {json}", so the lines of several
 * subtasks interleaved in one task manager's output still say whose they
 * are. A batch is rendered into one reusable buffer and written with one
 * fwrite and a flush, so lines of concurrent subtasks do not tear within a
 * batch of moderate size. Rows beyond `limit` are consumed and dropped.
 */
#include "registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/core/json_row.h"

typedef struct print_conf {
    int64_t limit;               /* -1 = no limit */
} print_conf_t;

typedef struct print_sink {
    const print_conf_t *conf;
    weir_buf_t          buf;
    int64_t             printed;
} print_sink_t;

static const char *const print_params[] = { "limit", NULL };

static void
print_conf_free(void *p)
{
    free(p);
}

static int
print_configure(weir_op_config_t *cfg, weir_err_t *err)
{
    const weir_params_t *p = &cfg->params;
    print_conf_t *c;
    int rc;

    if ((rc = weir_params_check_keys(p, print_params, err)) != 0)
        return rc;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return WEIR_ENOMEM;
    if ((rc = weir_params_opt_int(p, "limit", -1, &c->limit, err)) != 0) {
        free(c);
        return rc;
    }
    if (c->limit < -1) {
        free(c);
        return weir_params_error(p, "limit", WEIR_ERANGE, err,
                                 "'limit' must be >= 0, or -1 for no limit");
    }
    cfg->output_schema = NULL;
    cfg->conf = c;
    return 0;
}

static int
print_open(weir_op_t *op, weir_err_t *err)
{
    print_sink_t *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return WEIR_ENOMEM;
    s->conf = op->cfg->conf;
    op->self = s;
    return 0;
}

static void
print_close(weir_op_t *op)
{
    print_sink_t *s = op->self;

    if (s == NULL)
        return;
    weir_buf_free(&s->buf);
    free(s);
    op->self = NULL;
}

static int
print_process(weir_op_t *op, int input, const weir_batch_t *in, weir_batch_t *out, weir_err_t *err)
{
    print_sink_t *s = op->self;
    const char *prefix = op->ctx->log_prefix ? op->ctx->log_prefix : "";
    size_t plen = strlen(prefix);
    int rc = 0;

    weir_buf_reset(&s->buf);
    for (int r = 0; r < in->nrows; r++) {
        if (s->conf->limit >= 0 && s->printed >= s->conf->limit)
            break;
        if (plen > 0 && ((rc = weir_buf_append(&s->buf, prefix, plen)) != 0 ||
                         (rc = weir_buf_putc(&s->buf, ' ')) != 0))
            break;
        if ((rc = weir_json_write_row(in->schema, weir_batch_row(in, r), &s->buf)) != 0 ||
            (rc = weir_buf_putc(&s->buf, '\n')) != 0)
            break;
        s->printed++;
    }
    if (rc != 0)
        return weir_err_set(err, rc, "%s print: cannot render a row: %s", prefix, weir_strerror(rc));
    if (s->buf.len == 0)
        return 0;
    if (fwrite(s->buf.data, 1, s->buf.len, stdout) != s->buf.len || fflush(stdout) != 0)
        return weir_err_set(err, WEIR_EIO, "%s print: write to stdout: %s", prefix, strerror(errno));
    return 0;
}

const weir_op_kind_t weir_op_print = {
    .name       = "print",
    .roles      = WEIR_ROLE_SINK,
    .min_inputs = 1,
    .max_inputs = 1,
    .keyed      = false,
    .params     = print_params,
    .summary    = "prints rows as JSON lines on stdout, prefixed with the subtask",
    .configure  = print_configure,
    .conf_free  = print_conf_free,
    .open       = print_open,
    .process    = print_process,
    .close      = print_close,
};
