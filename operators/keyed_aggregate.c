/* operators/keyed_aggregate.c -- the "count" and "sum" operators: a running
 * aggregate per key, kept in keyed state.
 *
 *   - name: per_word
 *     kind: count
 *     input: words
 *     key_by: word
 *     emit: updates          # or: final
 *
 *   - name: spend
 *     kind: sum
 *     input: tx
 *     key_by: [account_id]
 *     field: amount
 *     as: total
 *
 * Output: the key fields, then the aggregate (`count`: int; `sum`: int for
 * an int field, double for a double field; named by `as`).
 *
 * With `emit: updates` (the default) every input row updates its key and
 * emits the key's new value, like Flink's non-windowed keyed aggregation on
 * a stream. With `emit: final` nothing is emitted until finish() (end of a
 * bounded input), which scans this subtask's key groups and emits each key
 * once with its final value, in no particular order.
 *
 * The state key is the msgpack array of the key values, packed into one
 * reused buffer; the state value is one msgpack int or float64, decoded by
 * hand (no msgpack zone per record). A row whose key group this subtask
 * does not own was routed wrongly upstream: that is a runtime error, not
 * something to paper over, so process() fails with a message.
 *
 * NULL values of the summed field are skipped (SQL SUM); the row still
 * counts as an update and emits the current sum. Integer sums wrap around
 * on overflow, as Java longs do in Flink.
 */
#include "registry.h"

#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/core/codec.h"
#include "../state/keyed_state.h"

typedef enum { AGG_COUNT, AGG_SUM } agg_kind_t;

typedef struct agg_conf {
    agg_kind_t   kind;
    int          nkeys;
    int          key_idx[WEIR_MAX_KEYS];
    weir_type_t  key_types[WEIR_MAX_KEYS];
    int          field;          /* sum: the summed input field */
    weir_type_t  type;           /* the aggregate's type */
    bool         final;          /* emit: final */
    char        *state_name;
} agg_conf_t;

typedef struct agg {
    const agg_conf_t *conf;
    weir_state_t     *state;
    weir_buf_t        key;       /* reused: packed key of the current row */
    weir_buf_t        val;       /* reused: state value */
    msgpack_packer    kpk;       /* writes into key */
    msgpack_packer    vpk;       /* writes into val */
} agg_t;

static const char *const count_params[] = { "as", "emit", NULL };
static const char *const sum_params[] = { "field", "as", "emit", NULL };

static void
agg_conf_free(void *p)
{
    agg_conf_t *c = p;

    if (c == NULL)
        return;
    free(c->state_name);
    free(c);
}

static int
agg_configure(weir_op_config_t *cfg, agg_kind_t kind, weir_err_t *err)
{
    const weir_params_t *p = &cfg->params;
    const weir_schema_t *in = cfg->input_schemas[0];
    weir_schema_t *schema = NULL;
    agg_conf_t *c;
    char *as = NULL, *emit = NULL, *field = NULL;
    int rc;

    if ((rc = weir_params_check_keys(p, kind == AGG_SUM ? sum_params : count_params, err)) != 0)
        return rc;
    if (cfg->ninputs != 1 || in == NULL)
        return weir_params_error(p, NULL, WEIR_EINVAL, err, "%s takes exactly one input",
                                 kind == AGG_SUM ? "sum" : "count");
    if (cfg->nkeys <= 0 || cfg->nkeys > WEIR_MAX_KEYS)
        return weir_params_error(p, NULL, WEIR_EINVAL, err,
                                 "%s is keyed: set key_by (1 to %d fields) on its input",
                                 kind == AGG_SUM ? "sum" : "count", WEIR_MAX_KEYS);
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return WEIR_ENOMEM;
    c->kind = kind;
    c->nkeys = cfg->nkeys;
    c->field = -1;
    c->type = WEIR_T_INT;
    for (int k = 0; k < c->nkeys; k++) {
        int idx = cfg->key_idx[0][k];
        if (idx < 0 || idx >= in->nfields) {
            rc = weir_params_error(p, NULL, WEIR_EINVAL, err, "key field %d is out of range", k);
            goto fail;
        }
        c->key_idx[k] = idx;
        c->key_types[k] = in->fields[idx].type;
    }
    if (kind == AGG_SUM) {
        if ((rc = weir_params_req_str(p, "field", &field, err)) != 0 ||
            (rc = weir__op_field(p, "field", in, field, &c->field, err)) != 0)
            goto fail;
        c->type = in->fields[c->field].type;
        if (c->type != WEIR_T_INT && c->type != WEIR_T_DOUBLE) {
            rc = weir_params_error(p, "field", WEIR_ETYPE, err,
                                   "sum needs an int or double field; '%s' is %s", field,
                                   weir_type_name(c->type));
            goto fail;
        }
    }
    if ((rc = weir_params_opt_str(p, "as", kind == AGG_SUM ? "sum" : "count", &as, err)) != 0 ||
        (rc = weir_params_opt_str(p, "emit", "updates", &emit, err)) != 0)
        goto fail;
    if (strcmp(emit, "final") == 0) {
        c->final = true;
    } else if (strcmp(emit, "updates") != 0) {
        rc = weir_params_error(p, "emit", WEIR_EINVAL, err,
                               "'emit' is 'updates' (every change) or 'final' (at end of input), not '%s'",
                               emit);
        goto fail;
    }
    if (as[0] == '\0') {
        rc = weir_params_error(p, "as", WEIR_EINVAL, err, "'as' must not be empty");
        goto fail;
    }
    schema = weir_schema_new(c->nkeys + 1);
    if (schema == NULL) {
        rc = WEIR_ENOMEM;
        goto fail;
    }
    for (int k = 0; k < c->nkeys; k++) {
        const weir_field_t *f = &in->fields[c->key_idx[k]];
        if (strcmp(f->name, as) == 0) {
            rc = weir_params_error(p, weir_params_has(p, "as") ? "as" : NULL, WEIR_EEXIST, err,
                                   "the output field '%s' clashes with a key field; choose another name with 'as'",
                                   as);
            goto fail;
        }
        for (int j = 0; j < k; j++) {
            if (c->key_idx[j] == c->key_idx[k]) {
                rc = weir_params_error(p, NULL, WEIR_EEXIST, err,
                                       "key field '%s' is listed twice in key_by", f->name);
                goto fail;
            }
        }
        if ((rc = weir_schema_set(schema, k, f->name, f->type, f->nullable)) != 0)
            goto fail;
    }
    if ((rc = weir_schema_set(schema, c->nkeys, as, c->type, false)) != 0)
        goto fail;
    c->state_name = strdup(cfg->name ? cfg->name : (kind == AGG_SUM ? "sum" : "count"));
    if (c->state_name == NULL) {
        rc = WEIR_ENOMEM;
        goto fail;
    }
    free(as);
    free(emit);
    free(field);
    cfg->output_schema = schema;
    cfg->conf = c;
    return 0;

fail:
    free(as);
    free(emit);
    free(field);
    weir_schema_unref(schema);
    agg_conf_free(c);
    return rc;
}

static int
count_configure(weir_op_config_t *cfg, weir_err_t *err)
{
    return agg_configure(cfg, AGG_COUNT, err);
}

static int
sum_configure(weir_op_config_t *cfg, weir_err_t *err)
{
    return agg_configure(cfg, AGG_SUM, err);
}

/* ---- run time -------------------------------------------------------- */

static int
agg_open(weir_op_t *op, weir_err_t *err)
{
    const agg_conf_t *c = op->cfg->conf;
    agg_t *a;
    int rc;

    if (op->ctx->state == NULL)
        return weir_err_set(err, WEIR_ESTATE, "%s %s: no keyed state backend", op->ctx->log_prefix,
                            op->cfg->kind->name);
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        return WEIR_ENOMEM;
    a->conf = c;
    if ((rc = weir_state_value(op->ctx->state, c->state_name, &a->state)) != 0) {
        free(a);
        return weir_err_set(err, rc, "%s %s: state '%s': %s", op->ctx->log_prefix,
                            op->cfg->kind->name, c->state_name, weir_strerror(rc));
    }
    msgpack_packer_init(&a->kpk, &a->key, weir_buf_msgpack_write);
    msgpack_packer_init(&a->vpk, &a->val, weir_buf_msgpack_write);
    if (weir_buf_reserve(&a->key, 256) != 0 || weir_buf_reserve(&a->val, 32) != 0) {
        weir_buf_free(&a->key);
        weir_buf_free(&a->val);
        free(a);
        return WEIR_ENOMEM;
    }
    op->self = a;
    return 0;
}

static void
agg_close(weir_op_t *op)
{
    agg_t *a = op->self;

    if (a == NULL)
        return;
    weir_buf_free(&a->key);
    weir_buf_free(&a->val);
    free(a);
    op->self = NULL;
}

/* The state value: one msgpack integer or float64. Returns 0 or WEIR_EPROTO. */
static int
decode_number(const unsigned char *p, size_t n, int64_t *i, double *d, bool *is_double)
{
    uint64_t u = 0;
    size_t w;

    if (n == 0)
        return WEIR_EPROTO;
    *is_double = false;
    if (p[0] <= 0x7f) {
        *i = p[0];
        return n == 1 ? 0 : WEIR_EPROTO;
    }
    if (p[0] >= 0xe0) {
        *i = (int8_t)p[0];
        return n == 1 ? 0 : WEIR_EPROTO;
    }
    switch (p[0]) {
    case 0xcc: case 0xd0: w = 1; break;
    case 0xcd: case 0xd1: w = 2; break;
    case 0xce: case 0xd2: case 0xca: w = 4; break;
    case 0xcf: case 0xd3: case 0xcb: w = 8; break;
    default: return WEIR_EPROTO;
    }
    if (n != 1 + w)
        return WEIR_EPROTO;
    for (size_t k = 0; k < w; k++)
        u = (u << 8) | p[1 + k];
    switch (p[0]) {
    case 0xcc: case 0xcd: case 0xce: *i = (int64_t)u; break;
    case 0xcf: *i = (int64_t)u; break;       /* wraps like the sum itself */
    case 0xd0: *i = (int8_t)u; break;
    case 0xd1: *i = (int16_t)u; break;
    case 0xd2: *i = (int32_t)u; break;
    case 0xd3: *i = (int64_t)u; break;
    case 0xca: {
        uint32_t u32 = (uint32_t)u;
        float f;
        memcpy(&f, &u32, sizeof(f));
        *d = f;
        *is_double = true;
        break;
    }
    case 0xcb:
        memcpy(d, &u, sizeof(*d));
        *is_double = true;
        break;
    }
    return 0;
}

/* Appends the output row: the key values of 'row' (or 'keys' when row is
 * NULL), then the aggregate value. */
static int
emit_row(const agg_conf_t *c, const weir_value_t *row, const weir_value_t *keys,
         const weir_value_t *agg, weir_batch_t *out)
{
    weir_value_t *o = weir_batch_append(out);

    if (o == NULL)
        return WEIR_ENOMEM;
    for (int k = 0; k < c->nkeys; k++) {
        o[k] = row != NULL ? row[c->key_idx[k]] : keys[k];
        if (weir_batch_own(out, &o[k]) != 0) {
            weir_batch_pop(out);
            return WEIR_ENOMEM;
        }
    }
    o[c->nkeys] = *agg;
    return 0;
}

static int
agg_process(weir_op_t *op, int input, const weir_batch_t *in, weir_batch_t *out, weir_err_t *err)
{
    agg_t *a = op->self;
    const agg_conf_t *c = a->conf;
    const weir_op_ctx_t *ctx = op->ctx;
    int maxp = ctx->max_parallelism > 0 ? ctx->max_parallelism : op->cfg->max_parallelism;
    int rc;

    for (int r = 0; r < in->nrows; r++) {
        const weir_value_t *row = weir_batch_row(in, r);
        int kg = weir_key_group(weir_key_hash(row, c->key_idx, c->nkeys), maxp);
        int64_t i = 0;
        double d = 0;
        bool is_double = false;
        int found = 0;
        weir_value_t agg;

        if (kg < ctx->kg_first || kg > ctx->kg_last)
            return weir_err_set(err, WEIR_ESTATE,
                                "%s %s: a row of key group %d reached subtask %d, which owns key groups %d..%d (misrouted input)",
                                ctx->log_prefix, op->cfg->kind->name, kg, ctx->subtask,
                                ctx->kg_first, ctx->kg_last);
        weir_buf_reset(&a->key);
        if (msgpack_pack_array(&a->kpk, (size_t)c->nkeys) != 0)
            return weir_err_set(err, WEIR_ENOMEM, "%s: out of memory", ctx->log_prefix);
        for (int k = 0; k < c->nkeys; k++)
            if (weir_codec_pack_value(&a->kpk, &row[c->key_idx[k]]) != 0)
                return weir_err_set(err, WEIR_ENOMEM, "%s: out of memory", ctx->log_prefix);
        weir_buf_reset(&a->val);
        rc = weir_state_get(a->state, kg, a->key.data, a->key.len, &a->val, &found);
        if (rc != 0)
            return weir_err_set(err, rc, "%s %s: state get: %s", ctx->log_prefix,
                                op->cfg->kind->name, weir_state_backend_error(ctx->state));
        if (found && decode_number((const unsigned char *)a->val.data, a->val.len, &i, &d,
                                   &is_double) != 0)
            return weir_err_set(err, WEIR_EPROTO, "%s %s: corrupt state value for a key",
                                ctx->log_prefix, op->cfg->kind->name);
        if (is_double && c->type == WEIR_T_INT)
            i = (int64_t)d;
        else if (!is_double && c->type == WEIR_T_DOUBLE)
            d = (double)i;

        if (c->kind == AGG_COUNT) {
            i = (int64_t)((uint64_t)i + 1);
        } else {
            const weir_value_t *v = &row[c->field];
            if (!v->null) {
                if (c->type == WEIR_T_INT)
                    i = (int64_t)((uint64_t)i + (uint64_t)v->u.i);
                else
                    d += v->type == WEIR_T_INT ? (double)v->u.i : v->u.d;
            }
        }
        weir_buf_reset(&a->val);
        rc = c->type == WEIR_T_INT ? msgpack_pack_int64(&a->vpk, i) : msgpack_pack_double(&a->vpk, d);
        if (rc != 0)
            return weir_err_set(err, WEIR_ENOMEM, "%s: out of memory", ctx->log_prefix);
        rc = weir_state_put(a->state, kg, a->key.data, a->key.len, a->val.data, a->val.len);
        if (rc != 0)
            return weir_err_set(err, rc, "%s %s: state put: %s", ctx->log_prefix,
                                op->cfg->kind->name, weir_state_backend_error(ctx->state));
        if (c->final)
            continue;
        agg = c->type == WEIR_T_INT ? weir_value_int(i) : weir_value_double(d);
        if (emit_row(c, row, NULL, &agg, out) != 0)
            return weir_err_set(err, WEIR_ENOMEM, "%s: out of memory", ctx->log_prefix);
    }
    return 0;
}

typedef struct final_scan {
    const agg_conf_t *conf;
    weir_batch_t     *out;
    msgpack_zone      zone;
    int               rc;
} final_scan_t;

static int
final_visit(void *arg, int kg, const void *key, size_t klen, const void *val, size_t vlen)
{
    final_scan_t *f = arg;
    const agg_conf_t *c = f->conf;
    weir_value_t keys[WEIR_MAX_KEYS], agg;
    msgpack_object obj;
    size_t off = 0;
    int64_t i = 0;
    double d = 0;
    bool is_double;

    msgpack_zone_clear(&f->zone);
    if (msgpack_unpack(key, klen, &off, &f->zone, &obj) != MSGPACK_UNPACK_SUCCESS ||
        obj.type != MSGPACK_OBJECT_ARRAY || obj.via.array.size != (uint32_t)c->nkeys)
        return f->rc = WEIR_EPROTO;
    for (int k = 0; k < c->nkeys; k++)
        if (weir_codec_unpack_value(&obj.via.array.ptr[k], c->key_types[k], &keys[k]) != 0)
            return f->rc = WEIR_EPROTO;
    if (decode_number(val, vlen, &i, &d, &is_double) != 0)
        return f->rc = WEIR_EPROTO;
    if (c->type == WEIR_T_INT)
        agg = weir_value_int(is_double ? (int64_t)d : i);
    else
        agg = weir_value_double(is_double ? d : (double)i);
    if (emit_row(c, NULL, keys, &agg, f->out) != 0)
        return f->rc = WEIR_ENOMEM;
    return 0;
}

static int
agg_finish(weir_op_t *op, weir_batch_t *out, weir_err_t *err)
{
    agg_t *a = op->self;
    final_scan_t f = { .conf = a->conf, .out = out, .rc = 0 };
    int rc;

    if (!a->conf->final)
        return 0;
    if (!msgpack_zone_init(&f.zone, 1024))
        return weir_err_set(err, WEIR_ENOMEM, "%s: out of memory", op->ctx->log_prefix);
    rc = weir_state_scan(a->state, op->ctx->kg_first, op->ctx->kg_last, final_visit, &f);
    msgpack_zone_destroy(&f.zone);
    if (rc != 0)
        return weir_err_set(err, f.rc ? f.rc : rc, "%s %s: emitting final values: %s",
                            op->ctx->log_prefix, op->cfg->kind->name,
                            weir_strerror(f.rc ? f.rc : rc));
    return 0;
}

const weir_op_kind_t weir_op_count = {
    .name       = "count",
    .roles      = WEIR_ROLE_OPERATOR,
    .min_inputs = 1,
    .max_inputs = 1,
    .keyed      = true,
    .params     = count_params,
    .summary    = "running count of rows per key (emit: updates | final)",
    .configure  = count_configure,
    .conf_free  = agg_conf_free,
    .open       = agg_open,
    .process    = agg_process,
    .finish     = agg_finish,
    .close      = agg_close,
};

const weir_op_kind_t weir_op_sum = {
    .name       = "sum",
    .roles      = WEIR_ROLE_OPERATOR,
    .min_inputs = 1,
    .max_inputs = 1,
    .keyed      = true,
    .params     = sum_params,
    .summary    = "running sum of a numeric field per key (emit: updates | final)",
    .configure  = sum_configure,
    .conf_free  = agg_conf_free,
    .open       = agg_open,
    .process    = agg_process,
    .finish     = agg_finish,
    .close      = agg_close,
};
