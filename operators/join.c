/* operators/join.c -- the regular keyed inner join of two streams.
 *
 *   - name: join
 *     kind: join
 *     inputs: [{from: transactions, as: t}, {from: flagged, as: a}]
 *     key_by: account_id
 *     where: t.transaction_date > a.flag_date      # optional, over both rows
 *     fields: ["t.*", {name: flagged_on, expr: a.flag_date}]
 *     left_ttl: 1d                                 # optional, per side
 *
 * Like Flink's regular join: both inputs are hash-partitioned by the key,
 * every row is kept in its side's list state under its key, and each
 * arriving row is matched against every row the other side holds for the
 * same key; a match that satisfies `where` emits one output row. So either
 * side may arrive first, and the match appears when the second one does.
 * State grows with the inputs unless a side has a TTL.
 *
 * Rows are stored as one-row batches in the runtime's msgpack codec and
 * decoded into a reused scratch batch when probed; output fields are
 * expressions over both rows (resolved to indexes at plan time).
 */
#include <stdlib.h>
#include <string.h>

#include "../runtime/core/codec.h"
#include "../runtime/core/expr.h"
#include "../state/keyed_state.h"
#include "registry.h"

typedef struct {
    weir_expr_t  *where;             /* NULL: every key match joins */
    int           nout;
    weir_expr_t **out;               /* output fields */
    int64_t       ttl_us[2];
    char         *state_name[2];
} join_conf_t;

typedef struct {
    weir_state_t   *side[2];
    weir_buf_t      key;             /* packed key of the current row */
    weir_buf_t      row;             /* packed current row */
    weir_batch_t   *scratch[2];      /* decoded stored rows of each side */
    msgpack_packer  kpk;
    /* the probe in progress */
    const join_conf_t  *conf;
    const weir_value_t *probe_row;
    int             probe_side;
    weir_batch_t   *emit_to;
    weir_err_t     *err;
    int             rc;
} join_t;

static const char *const join_params[] = { "where", "fields", "left_ttl", "right_ttl", NULL };

static void
join_conf_free(void *p)
{
    join_conf_t *c = p;

    if (c == NULL)
        return;
    weir_expr_destroy(c->where);
    for (int i = 0; i < c->nout; i++)
        weir_expr_destroy(c->out[i]);
    free(c->out);
    free(c->state_name[0]);
    free(c->state_name[1]);
    free(c);
}

static int
add_output(join_conf_t *c, weir_expr_t *e)
{
    weir_expr_t **o = realloc(c->out, (size_t)(c->nout + 1) * sizeof(*o));

    if (o == NULL) {
        weir_expr_destroy(e);
        return WEIR_ENOMEM;
    }
    c->out = o;
    c->out[c->nout++] = e;
    return 0;
}

/* Parses one output item: "alias.*", a field reference, or {name, expr}. */
static int
parse_item(weir_op_config_t *cfg, join_conf_t *c, const weir_params_t *item,
           const weir_expr_input_t *in, char ***names, int *nnames, weir_err_t *err)
{
    char *text = NULL, *name = NULL;
    weir_expr_t *e;
    weir_err_t perr = { 0 };
    size_t off = 0;
    int rc;

    if (weir_params_is_map(item)) {
        static const char *const keys[] = { "expr", NULL };
        if ((rc = weir_params_check_keys(item, keys, err)) != 0 ||
            (rc = weir_params_req_str(item, "name", &name, err)) != 0 ||
            (rc = weir_params_req_str(item, "expr", &text, err)) != 0)
            goto out;
        if ((rc = weir_expr_parse(text, in, 2, &e, &off, &perr)) != 0) {
            rc = weir__op_expr_error(item, "expr", off, rc, &perr, err);
            goto out;
        }
        rc = add_output(c, e);
    } else {
        size_t n;
        if ((rc = weir_params_scalar(item, &text, err)) != 0)
            goto out;
        n = strlen(text);
        if (n > 2 && strcmp(text + n - 2, ".*") == 0) {
            int side = -1;
            text[n - 2] = '\0';
            for (int i = 0; i < 2; i++)
                if (strcmp(in[i].alias, text) == 0)
                    side = i;
            if (side < 0) {
                rc = weir_params_error(item, NULL, WEIR_EINVAL, err,
                                       "'%s.*' names no input (the inputs are '%s' and '%s')",
                                       text, in[0].alias, in[1].alias);
                goto out;
            }
            for (int f = 0; f < in[side].schema->nfields && rc == 0; f++) {
                char ref[512];
                snprintf(ref, sizeof(ref), "%s.%s", in[side].alias, in[side].schema->fields[f].name);
                if ((rc = weir_expr_parse(ref, in, 2, &e, &off, &perr)) != 0)
                    rc = weir_params_error(item, NULL, rc, err, "%s", perr.msg);
                else
                    rc = add_output(c, e);
            }
            goto names;
        }
        if ((rc = weir_expr_parse(text, in, 2, &e, &off, &perr)) != 0) {
            rc = weir__op_expr_error(item, NULL, off, rc, &perr, err);
            goto out;
        }
        if (weir_expr_field_name(e) == NULL) {
            weir_expr_destroy(e);
            rc = weir_params_error(item, NULL, WEIR_EINVAL, err,
                                   "an expression needs a name: write {name: N, expr: %s}", text);
            goto out;
        }
        rc = add_output(c, e);
    }
names:
    /* record the name of every output added by this item */
    while (rc == 0 && *nnames < c->nout) {
        const char *nm = name != NULL ? name : weir_expr_field_name(c->out[*nnames]);
        for (int i = 0; i < *nnames; i++)
            if (strcmp((*names)[i], nm) == 0) {
                rc = weir_params_error(item, NULL, WEIR_EINVAL, err,
                                       "output field '%s' is defined twice (rename one with {name: N, expr: ...})", nm);
                goto out;
            }
        char **nn = realloc(*names, (size_t)(*nnames + 1) * sizeof(*nn));
        if (nn == NULL || (nn[*nnames] = strdup(nm)) == NULL) {
            if (nn != NULL)
                *names = nn;
            rc = WEIR_ENOMEM;
            goto out;
        }
        *names = nn;
        (*nnames)++;
    }
out:
    free(text);
    free(name);
    return rc;
}

static int
join_configure(weir_op_config_t *cfg, weir_err_t *err)
{
    const weir_params_t *p = &cfg->params;
    weir_expr_input_t in[2];
    weir_params_t *items = NULL;
    join_conf_t *c;
    char *where = NULL, **names = NULL;
    int nitems = 0, nnames = 0, rc;
    weir_err_t perr = { 0 };
    size_t off = 0;

    if (strcmp(cfg->input_aliases[0], cfg->input_aliases[1]) == 0)
        return weir_params_error(p, "inputs", WEIR_EINVAL, err,
                                 "both inputs are called '%s': give one an alias with 'as:'",
                                 cfg->input_aliases[0]);
    for (int i = 0; i < 2; i++) {
        in[i].alias = cfg->input_aliases[i];
        in[i].schema = cfg->input_schemas[i];
    }
    if ((c = calloc(1, sizeof(*c))) == NULL)
        return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    cfg->conf = c;
    if ((rc = weir_params_opt_duration(p, "left_ttl", 0, &c->ttl_us[0], err)) != 0 ||
        (rc = weir_params_opt_duration(p, "right_ttl", 0, &c->ttl_us[1], err)) != 0 ||
        (rc = weir_params_opt_str(p, "where", NULL, &where, err)) != 0)
        goto fail;
    if (where != NULL) {
        if ((rc = weir_expr_parse(where, in, 2, &c->where, &off, &perr)) != 0) {
            rc = weir__op_expr_error(p, "where", off, rc, &perr, err);
            goto fail;
        }
        if (weir_expr_type(c->where) != WEIR_T_BOOL) {
            rc = weir_params_error(p, "where", WEIR_ETYPE, err, "'where' must be a bool expression, not %s",
                                   weir_type_name(weir_expr_type(c->where)));
            goto fail;
        }
    }
    if (weir_params_has(p, "fields")) {
        if ((rc = weir_params_items(p, "fields", true, &items, &nitems, err)) != 0)
            goto fail;
        for (int i = 0; i < nitems && rc == 0; i++)
            rc = parse_item(cfg, c, &items[i], in, &names, &nnames, err);
        if (rc != 0)
            goto fail;
    } else {
        /* default: every field of both inputs, which must not collide */
        for (int side = 0; side < 2; side++) {
            for (int f = 0; f < in[side].schema->nfields; f++) {
                const char *nm = in[side].schema->fields[f].name;
                char ref[512];
                weir_expr_t *e;
                for (int k = 0; k < nnames; k++)
                    if (strcmp(names[k], nm) == 0) {
                        rc = weir_params_error(p, NULL, WEIR_EINVAL, err,
                                               "both inputs have a field '%s': choose the output with 'fields:'", nm);
                        goto fail;
                    }
                snprintf(ref, sizeof(ref), "%s.%s", in[side].alias, nm);
                if ((rc = weir_expr_parse(ref, in, 2, &e, &off, &perr)) != 0 ||
                    (rc = add_output(c, e)) != 0) {
                    weir_err_set(err, rc, "%s", perr.msg);
                    goto fail;
                }
                char **nn = realloc(names, (size_t)(nnames + 1) * sizeof(*nn));
                if (nn == NULL) {
                    rc = WEIR_ENOMEM;
                    goto fail;
                }
                names = nn;
                names[nnames++] = strdup(nm);
            }
        }
    }
    if (c->nout == 0) {
        rc = weir_params_error(p, "fields", WEIR_EINVAL, err, "the join outputs no field");
        goto fail;
    }
    cfg->output_schema = weir_schema_new(c->nout);
    if (cfg->output_schema == NULL) {
        rc = WEIR_ENOMEM;
        goto fail;
    }
    for (int i = 0; i < c->nout; i++) {
        if (weir_expr_type(c->out[i]) == WEIR_T_NULL) {
            rc = weir_params_error(p, "fields", WEIR_ETYPE, err, "output field '%s' has no type (null)", names[i]);
            goto fail;
        }
        if ((rc = weir_schema_set(cfg->output_schema, i, names[i], weir_expr_type(c->out[i]),
                                  weir_expr_nullable(c->out[i]))) != 0)
            goto fail;
    }
    for (int s = 0; s < 2; s++) {
        size_t n = strlen(cfg->name) + 16;
        if ((c->state_name[s] = malloc(n)) == NULL) {
            rc = WEIR_ENOMEM;
            goto fail;
        }
        snprintf(c->state_name[s], n, "%s.%s", cfg->name, s == 0 ? "left" : "right");
    }
    rc = 0;
fail:
    if (rc != 0 && rc != WEIR_ENOMEM && err != NULL && err->msg[0] == '\0')
        weir_params_error(p, NULL, rc, err, "%s", weir_strerror(rc));
    else if (rc == WEIR_ENOMEM)
        weir_err_set(err, rc, "out of memory");
    free(where);
    free(items);
    weir_str_list_free(names, nnames);
    return rc;
}

static int
join_open(weir_op_t *op, weir_err_t *err)
{
    const join_conf_t *c = op->cfg->conf;
    join_t *j;
    int rc;

    if (op->ctx->state == NULL)
        return weir_err_set(err, WEIR_ESTATE, "%s: join needs keyed state", op->ctx->log_prefix);
    if ((j = calloc(1, sizeof(*j))) == NULL)
        return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    op->self = j;
    for (int s = 0; s < 2; s++) {
        if ((rc = weir_state_list(op->ctx->state, c->state_name[s], c->ttl_us[s], &j->side[s])) != 0)
            return weir_err_set(err, rc, "%s: cannot open state '%s': %s", op->ctx->log_prefix,
                                c->state_name[s], weir_strerror(rc));
        if ((j->scratch[s] = weir_batch_new(op->cfg->input_schemas[s], 64)) == NULL)
            return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    }
    msgpack_packer_init(&j->kpk, &j->key, weir_buf_msgpack_write);
    return 0;
}

/* Emits the join of the probing row with one stored row of the other side.
 * Runs inside weir_state_list_get; returns non-zero to stop on an error. */
static int
probe_cb(void *arg, const void *val, size_t vlen)
{
    join_t *j = arg;
    const join_conf_t *c = j->conf;
    int other = 1 - j->probe_side;
    weir_batch_t *sb = j->scratch[other], *out = j->emit_to;
    const weir_value_t *rows[2];
    weir_value_t *dst;

    weir_batch_clear(sb);
    if ((j->rc = weir_codec_decode_rows(val, vlen, sb, j->err)) != 0)
        return 1;
    if (sb->nrows != 1) {
        j->rc = weir_err_set(j->err, WEIR_EPROTO, "join: corrupt stored row");
        return 1;
    }
    rows[j->probe_side] = j->probe_row;
    rows[other] = weir_batch_row(sb, 0);
    if (c->where != NULL && !weir_expr_eval_bool(c->where, rows))
        return 0;
    if ((dst = weir_batch_append(out)) == NULL) {
        j->rc = weir_err_set(j->err, WEIR_ENOMEM, "out of memory");
        return 1;
    }
    for (int i = 0; i < c->nout; i++) {
        /* results may borrow from the scratch batch, which is reused: own them */
        if ((j->rc = weir_expr_eval(c->out[i], rows, &out->arena, &dst[i])) != 0 ||
            (j->rc = weir_batch_own(out, &dst[i])) != 0) {
            weir_batch_pop(out);
            weir_err_set(j->err, j->rc, "join: cannot build an output row: %s", weir_strerror(j->rc));
            return 1;
        }
    }
    return 0;
}

static int
join_process(weir_op_t *op, int input, const weir_batch_t *in, weir_batch_t *out, weir_err_t *err)
{
    const weir_op_config_t *cfg = op->cfg;
    join_t *j = op->self;
    int other = 1 - input, rc;

    j->conf = cfg->conf;
    j->emit_to = out;
    j->err = err;
    j->probe_side = input;
    for (int r = 0; r < in->nrows; r++) {
        const weir_value_t *row = weir_batch_row(in, r);
        int kg = weir_key_group(weir_key_hash(row, cfg->key_idx[input], cfg->nkeys),
                                cfg->max_parallelism);

        weir_buf_reset(&j->key);
        msgpack_pack_array(&j->kpk, (size_t)cfg->nkeys);
        for (int k = 0; k < cfg->nkeys; k++)
            if (weir_codec_pack_value(&j->kpk, &row[cfg->key_idx[input][k]]) != 0)
                return weir_err_set(err, WEIR_ENOMEM, "out of memory");
        weir_buf_reset(&j->row);
        if ((rc = weir_codec_encode_rows(in, r, r + 1, &j->row)) != 0)
            return weir_err_set(err, rc, "out of memory");
        rc = weir_state_list_add(j->side[input], kg, j->key.data, j->key.len, j->row.data, j->row.len);
        if (rc != 0)
            return weir_err_set(err, rc, "%s: join state write failed: %s", op->ctx->log_prefix,
                                weir_state_backend_error(op->ctx->state));
        j->probe_row = row;
        j->rc = 0;
        rc = weir_state_list_get(j->side[other], kg, j->key.data, j->key.len, probe_cb, j);
        if (j->rc != 0)
            return j->rc;
        if (rc < 0)
            return weir_err_set(err, rc, "%s: join state read failed: %s", op->ctx->log_prefix,
                                weir_state_backend_error(op->ctx->state));
    }
    return 0;
}

static void
join_close(weir_op_t *op)
{
    join_t *j = op->self;

    if (j == NULL)
        return;
    weir_buf_free(&j->key);
    weir_buf_free(&j->row);
    weir_batch_destroy(j->scratch[0]);
    weir_batch_destroy(j->scratch[1]);
    free(j);
    op->self = NULL;
}

const weir_op_kind_t weir_op_join = {
    .name = "join",
    .roles = WEIR_ROLE_OPERATOR,
    .min_inputs = 2,
    .max_inputs = 2,
    .keyed = true,
    .params = join_params,
    .summary = "regular keyed inner join of two inputs, with an optional condition",
    .configure = join_configure,
    .conf_free = join_conf_free,
    .open = join_open,
    .process = join_process,
    .close = join_close,
};
