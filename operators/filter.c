/* operators/filter.c -- the "filter" operator: keeps the rows for which an
 * expression is true.
 *
 *   - name: big
 *     kind: filter
 *     input: tx
 *     where: amount > 1000 and merchant_type == "online"
 *
 * The predicate is parsed once at configure time against the input schema
 * (field names resolved to indexes, types checked; it must be bool). A row
 * is kept only when the predicate is true: NULL counts as false, as in SQL.
 * The output schema is the input schema. Kept rows are copied into the out
 * batch, strings into its arena, since the input batch is only borrowed.
 * A parse or type error points at the offending token inside `where`:
 *   jobs/x.yaml:9:21: operator 'big': unknown field 'amout' ...
 */
#include "registry.h"

#include <stdlib.h>

#include "../runtime/core/expr.h"

typedef struct filter_conf {
    weir_expr_t *predicate;
} filter_conf_t;

static const char *const filter_params[] = { "where", NULL };

static void
filter_conf_free(void *p)
{
    filter_conf_t *c = p;

    if (c == NULL)
        return;
    weir_expr_destroy(c->predicate);
    free(c);
}

static int
filter_configure(weir_op_config_t *cfg, weir_err_t *err)
{
    const weir_params_t *p = &cfg->params;
    weir_expr_input_t in = { cfg->input_aliases[0], cfg->input_schemas[0] };
    filter_conf_t *c;
    weir_err_t perr = { 0 };
    size_t off = 0;
    char *src = NULL;
    int rc;

    if ((rc = weir_params_check_keys(p, filter_params, err)) != 0)
        return rc;
    if (cfg->ninputs != 1 || cfg->input_schemas[0] == NULL)
        return weir_params_error(p, NULL, WEIR_EINVAL, err, "filter takes exactly one input");
    if ((rc = weir_params_req_str(p, "where", &src, err)) != 0)
        return rc;
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        rc = WEIR_ENOMEM;
        goto fail;
    }
    rc = weir_expr_parse(src, &in, 1, &c->predicate, &off, &perr);
    if (rc != 0) {
        rc = weir__op_expr_error(p, "where", off, rc, &perr, err);
        goto fail;
    }
    if (weir_expr_type(c->predicate) != WEIR_T_BOOL) {
        rc = weir_params_error_at(p, "where", 0, WEIR_ETYPE, err,
                                  "'where' must be a bool expression, this one is %s",
                                  weir_type_name(weir_expr_type(c->predicate)));
        goto fail;
    }
    free(src);
    cfg->output_schema = weir_schema_ref(cfg->input_schemas[0]);
    cfg->conf = c;
    return 0;

fail:
    free(src);
    filter_conf_free(c);
    return rc;
}

static int
filter_open(weir_op_t *op, weir_err_t *err)
{
    op->self = NULL;             /* stateless: the conf is all it needs */
    return 0;
}

static int
filter_process(weir_op_t *op, int input, const weir_batch_t *in, weir_batch_t *out, weir_err_t *err)
{
    const filter_conf_t *c = op->cfg->conf;

    for (int r = 0; r < in->nrows; r++) {
        const weir_value_t *row = weir_batch_row(in, r);
        if (weir_expr_eval_bool(c->predicate, &row) != 1)
            continue;
        if (weir_batch_append_copy(out, row) != 0)
            return weir_err_set(err, WEIR_ENOMEM, "%s filter: out of memory", op->ctx->log_prefix);
    }
    return 0;
}

const weir_op_kind_t weir_op_filter = {
    .name       = "filter",
    .roles      = WEIR_ROLE_OPERATOR,
    .min_inputs = 1,
    .max_inputs = 1,
    .keyed      = false,
    .params     = filter_params,
    .summary    = "keeps the rows for which 'where' is true",
    .configure  = filter_configure,
    .conf_free  = filter_conf_free,
    .open       = filter_open,
    .process    = filter_process,
};
