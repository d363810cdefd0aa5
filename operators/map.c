/* operators/map.c -- the "map" operator (alias "project"): one output row per
 * input row, its fields copied or computed.
 *
 *   - name: enrich
 *     kind: map
 *     input: tx
 *     fields:
 *       - transaction_id                      # copied as is
 *       - {name: cents, expr: int(amount * 100)}
 *       - {name: minute, expr: "floor_time(ts, '1m')"}
 *       - {expr: account_id}                  # named after the field
 *
 *   - name: slim
 *     kind: project
 *     input: tx
 *     select: [transaction_id, amount]
 *
 * Every output field is resolved at configure time: a copied field to its
 * input index, an expression to a parsed tree whose type and nullability
 * give the output field's. Per row there is no name lookup and no malloc;
 * string results (and copied strings, since the input batch is borrowed)
 * go into the out batch's arena.
 */
#include "registry.h"

#include <stdlib.h>
#include <string.h>

#include "../runtime/core/expr.h"

typedef struct map_field {
    int          src;            /* >= 0: copy this input field */
    weir_expr_t *expr;           /* else: evaluate this */
} map_field_t;

typedef struct map_conf {
    int          n;
    map_field_t *fields;
} map_conf_t;

static const char *const map_params[] = { "fields", "select", NULL };
static const char *const map_item_keys[] = { "expr", NULL };

static void
map_conf_free(void *p)
{
    map_conf_t *c = p;

    if (c == NULL)
        return;
    for (int i = 0; i < c->n; i++)
        weir_expr_destroy(c->fields[i].expr);
    free(c->fields);
    free(c);
}

/* One item of `fields:` (or of `select:` when select is true). Sets *name
 * (new) and f; the output field's type into *t, *nullable. */
static int
configure_item(const weir_op_config_t *cfg, const weir_params_t *it, bool select,
               map_field_t *f, char **name, weir_type_t *t, bool *nullable, weir_err_t *err)
{
    const weir_schema_t *in = cfg->input_schemas[0];
    weir_expr_input_t ein = { cfg->input_aliases[0], in };
    weir_err_t perr = { 0 };
    char *src = NULL;
    size_t off = 0;
    int rc;

    f->src = -1;
    if (!weir_params_is_map(it)) {
        /* a bare field name */
        if ((rc = weir_params_scalar(it, name, err)) != 0)
            return rc;
        if ((rc = weir__op_field(it, NULL, in, *name, &f->src, err)) != 0)
            return rc;
        *t = in->fields[f->src].type;
        *nullable = in->fields[f->src].nullable;
        return 0;
    }
    if (select)
        return weir_params_error(it, NULL, WEIR_EINVAL, err,
                                 "'select' lists field names; use 'fields' for {name, expr} items");
    if ((rc = weir_params_check_keys(it, map_item_keys, err)) != 0)
        return rc;
    if ((rc = weir_params_req_str(it, "expr", &src, err)) != 0)
        return rc;
    rc = weir_expr_parse(src, &ein, 1, &f->expr, &off, &perr);
    free(src);
    if (rc != 0)
        return weir__op_expr_error(it, "expr", off, rc, &perr, err);
    *t = weir_expr_type(f->expr);
    *nullable = weir_expr_nullable(f->expr);
    if (*t == WEIR_T_NULL)
        return weir_params_error(it, "expr", WEIR_ETYPE, err,
                                 "the type of a bare 'null' is unknown; give it one, e.g. if(false, 0, null)");
    if (weir_params_has(it, "name")) {
        if ((rc = weir_params_req_str(it, "name", name, err)) != 0)
            return rc;
        if ((*name)[0] == '\0')
            return weir_params_error(it, "name", WEIR_EINVAL, err, "'name' must not be empty");
    } else {
        const char *fname = weir_expr_field_name(f->expr);
        if (fname == NULL)
            return weir_params_error(it, NULL, WEIR_EINVAL, err,
                                     "an expression field needs a 'name'");
        *name = strdup(fname);
        if (*name == NULL)
            return WEIR_ENOMEM;
    }
    /* a computed field that is a bare reference is a copy */
    if (weir_expr_field_name(f->expr) != NULL) {
        int idx = weir_schema_find(in, weir_expr_field_name(f->expr));
        if (idx >= 0 && in->fields[idx].type == *t) {
            f->src = idx;
            weir_expr_destroy(f->expr);
            f->expr = NULL;
        }
    }
    return 0;
}

static int
map_configure(weir_op_config_t *cfg, weir_err_t *err)
{
    const weir_params_t *p = &cfg->params;
    const char *key;
    map_conf_t *c;
    weir_params_t *items = NULL;
    weir_schema_t *schema = NULL;
    char *name = NULL;
    int n = 0, rc;

    if ((rc = weir_params_check_keys(p, map_params, err)) != 0)
        return rc;
    if (cfg->ninputs != 1 || cfg->input_schemas[0] == NULL)
        return weir_params_error(p, NULL, WEIR_EINVAL, err, "%s takes exactly one input",
                                 cfg->kind ? cfg->kind->name : "map");
    if (weir_params_has(p, "fields") == weir_params_has(p, "select"))
        return weir_params_error(p, weir_params_has(p, "select") ? "select" : NULL, WEIR_EINVAL, err,
                                 "give either 'fields' (names or {name, expr}) or 'select' (names)");
    key = weir_params_has(p, "fields") ? "fields" : "select";
    if ((rc = weir_params_items(p, key, true, &items, &n, err)) != 0)
        return rc;
    if (n == 0) {
        free(items);
        return weir_params_error(p, key, WEIR_EINVAL, err, "'%s' must list at least one field", key);
    }
    c = calloc(1, sizeof(*c));
    schema = weir_schema_new(n);
    if (c == NULL || schema == NULL || (c->fields = calloc((size_t)n, sizeof(*c->fields))) == NULL) {
        rc = WEIR_ENOMEM;
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        weir_type_t t = WEIR_T_NULL;
        bool nullable = false;

        c->n = i + 1;
        rc = configure_item(cfg, &items[i], key[0] == 's', &c->fields[i], &name, &t, &nullable, err);
        if (rc != 0)
            goto fail;
        if (weir_schema_find(schema, name) >= 0) {
            rc = weir_params_error(&items[i], NULL, WEIR_EEXIST, err,
                                   "output field '%s' is defined twice", name);
            goto fail;
        }
        if ((rc = weir_schema_set(schema, i, name, t, nullable)) != 0)
            goto fail;
        free(name);
        name = NULL;
    }
    free(items);
    cfg->output_schema = schema;
    cfg->conf = c;
    return 0;

fail:
    free(name);
    free(items);
    weir_schema_unref(schema);
    map_conf_free(c);
    return rc;
}

static int
map_open(weir_op_t *op, weir_err_t *err)
{
    op->self = NULL;             /* stateless */
    return 0;
}

static int
map_process(weir_op_t *op, int input, const weir_batch_t *in, weir_batch_t *out, weir_err_t *err)
{
    const map_conf_t *c = op->cfg->conf;
    int rc;

    for (int r = 0; r < in->nrows; r++) {
        const weir_value_t *row = weir_batch_row(in, r);
        weir_value_t *o = weir_batch_append(out);

        if (o == NULL)
            return weir_err_set(err, WEIR_ENOMEM, "%s %s: out of memory", op->ctx->log_prefix,
                                op->cfg->kind->name);
        for (int i = 0; i < c->n; i++) {
            const map_field_t *f = &c->fields[i];

            if (f->expr == NULL) {
                o[i] = row[f->src];
            } else if ((rc = weir_expr_eval(f->expr, &row, &out->arena, &o[i])) != 0) {
                weir_batch_pop(out);
                return weir_err_set(err, rc, "%s %s: evaluating field '%s': %s", op->ctx->log_prefix,
                                    op->cfg->kind->name, out->schema->fields[i].name,
                                    weir_strerror(rc));
            }
            if ((rc = weir_batch_own(out, &o[i])) != 0) {
                weir_batch_pop(out);
                return weir_err_set(err, rc, "%s %s: out of memory", op->ctx->log_prefix,
                                    op->cfg->kind->name);
            }
        }
    }
    return 0;
}

const weir_op_kind_t weir_op_map = {
    .name       = "map",
    .roles      = WEIR_ROLE_OPERATOR,
    .min_inputs = 1,
    .max_inputs = 1,
    .keyed      = false,
    .params     = map_params,
    .summary    = "computes each output row's fields from expressions over the input row",
    .configure  = map_configure,
    .conf_free  = map_conf_free,
    .open       = map_open,
    .process    = map_process,
};

const weir_op_kind_t weir_op_project = {
    .name       = "project",
    .roles      = WEIR_ROLE_OPERATOR,
    .min_inputs = 1,
    .max_inputs = 1,
    .keyed      = false,
    .params     = map_params,
    .summary    = "map under another name: select or compute fields",
    .configure  = map_configure,
    .conf_free  = map_conf_free,
    .open       = map_open,
    .process    = map_process,
};
