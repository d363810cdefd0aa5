/* operators/chaos.c -- the "chaos" operator: passes rows through unchanged,
 * and fails its task on command. For testing recovery, in tests and by
 * hand; it changes nothing else.
 *
 *   - name: monkey
 *     kind: chaos
 *     input: gen
 *     fail_when_file: /tmp/fail-now     # fail once this file exists (it is removed)
 *     fail_after_checkpoint: 3          # fail right after checkpoint 3 completed
 *     fail_after_rows: 10000            # fail after this many rows (per subtask)
 *     attempts: 1                       # only in the first N attempts of the job (default 1)
 *     subtask: 0                        # only this subtask (default: every subtask)
 *
 * A failure is a task failure like any other ("chaos: ..."): the job
 * restarts from its latest checkpoint when its restart strategy allows.
 * `attempts` keeps the restarted job from failing again forever.
 */
#include "registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct chaos_conf {
    char   *file;
    int64_t after_ckpt;       /* 0 = off */
    int64_t after_rows;       /* 0 = off */
    int64_t attempts;
    int64_t subtask;          /* -1 = all */
} chaos_conf_t;

typedef struct chaos {
    const chaos_conf_t *conf;
    bool                armed;
    uint64_t            rows;
} chaos_t;

static const char *const chaos_params[] = { "fail_when_file", "fail_after_checkpoint",
                                            "fail_after_rows", "attempts", "subtask", NULL };

static void
chaos_conf_free(void *p)
{
    chaos_conf_t *c = p;

    if (c == NULL)
        return;
    free(c->file);
    free(c);
}

static int
chaos_configure(weir_op_config_t *cfg, weir_err_t *err)
{
    const weir_params_t *p = &cfg->params;
    chaos_conf_t *c;
    int rc;

    if ((rc = weir_params_check_keys(p, chaos_params, err)) != 0)
        return rc;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return WEIR_ENOMEM;
    if ((rc = weir_params_opt_str(p, "fail_when_file", NULL, &c->file, err)) != 0 ||
        (rc = weir_params_opt_int(p, "fail_after_checkpoint", 0, &c->after_ckpt, err)) != 0 ||
        (rc = weir_params_opt_int(p, "fail_after_rows", 0, &c->after_rows, err)) != 0 ||
        (rc = weir_params_opt_int(p, "attempts", 1, &c->attempts, err)) != 0 ||
        (rc = weir_params_opt_int(p, "subtask", -1, &c->subtask, err)) != 0)
        goto fail;
    if (c->after_ckpt < 0 || c->after_rows < 0 || c->attempts < 0 || c->subtask < -1) {
        rc = weir_params_error(p, NULL, WEIR_ERANGE, err,
                               "chaos: counts must not be negative");
        goto fail;
    }
    cfg->output_schema = weir_schema_ref(cfg->input_schemas[0]);
    cfg->conf = c;
    return 0;

fail:
    chaos_conf_free(c);
    return rc;
}

static int
chaos_open(weir_op_t *op, weir_err_t *err)
{
    const chaos_conf_t *c = op->cfg->conf;
    chaos_t *s = calloc(1, sizeof(*s));

    (void)err;
    if (s == NULL)
        return WEIR_ENOMEM;
    s->conf = c;
    s->armed = op->ctx->attempt < c->attempts &&
               (c->subtask < 0 || c->subtask == op->ctx->subtask);
    op->self = s;
    return 0;
}

static void
chaos_close(weir_op_t *op)
{
    free(op->self);
    op->self = NULL;
}

static int
chaos_process(weir_op_t *op, int input, const weir_batch_t *in, weir_batch_t *out,
              weir_err_t *err)
{
    chaos_t *s = op->self;
    const chaos_conf_t *c = s->conf;
    struct stat st;

    (void)input;
    for (int r = 0; r < in->nrows; r++) {
        if (weir_batch_append_copy(out, weir_batch_row(in, r)) != 0)
            return weir_err_set(err, WEIR_ENOMEM, "%s chaos: out of memory", op->ctx->log_prefix);
        s->rows++;
        if (s->armed && c->after_rows > 0 && s->rows >= (uint64_t)c->after_rows)
            return weir_err_set(err, WEIR_EFAILED, "chaos: failing after %llu rows, as asked",
                                (unsigned long long)s->rows);
    }
    if (s->armed && c->file != NULL && stat(c->file, &st) == 0) {
        unlink(c->file);
        return weir_err_set(err, WEIR_EFAILED, "chaos: failing on command (%s)", c->file);
    }
    return 0;
}

static int
chaos_notify(weir_op_t *op, int64_t ckpt, weir_err_t *err)
{
    chaos_t *s = op->self;

    if (s->armed && s->conf->after_ckpt > 0 && ckpt >= s->conf->after_ckpt)
        return weir_err_set(err, WEIR_EFAILED, "chaos: failing after checkpoint %lld, as asked",
                            (long long)ckpt);
    return 0;
}

const weir_op_kind_t weir_op_chaos = {
    .name       = "chaos",
    .roles      = WEIR_ROLE_OPERATOR,
    .min_inputs = 1,
    .max_inputs = 1,
    .keyed      = false,
    .params     = chaos_params,
    .summary    = "passes rows through; fails its task on command (recovery testing)",
    .configure  = chaos_configure,
    .conf_free  = chaos_conf_free,
    .open       = chaos_open,
    .process    = chaos_process,
    .close      = chaos_close,
    .notify_complete = chaos_notify,
};
