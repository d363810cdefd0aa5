/* operators/datagen.c -- the "datagen" source: rows made up from a recipe.
 *
 *   - name: gen
 *     kind: datagen
 *     count: 1000000          # in total, across subtasks; omit for unbounded
 *     rate: 5000              # rows/s in total; 0 = as fast as possible
 *     seed: 42
 *     fields:
 *       - {name: id, type: int, gen: sequence, start: 1}
 *       - {name: amount, type: double, gen: random, min: 1, max: 5000, decimals: 2}
 *       - {name: kind, type: string, gen: choice, values: [online, pos]}
 *       - {name: ts, type: timestamp, gen: sequence, start: "2024-01-01 00:00:00", step: 1s}
 *
 * Every row has a global sequence index i = 0, 1, 2, ...; subtask s of P
 * makes the rows with i % P == s, so the subtasks together make each row
 * exactly once. Every value is a pure function of (seed, i, field): random
 * values come from a counter-based hash (xxh3 of seed, row and field), not
 * from a stateful generator, so the same rows come out whatever the
 * parallelism, the batch size or the order of polls -- a job run at
 * parallelism 1 and at 3 sees the same multiset of rows. Only `gen: now`
 * reads a clock.
 *
 * Checkpoints: a subtask's position is its next index. Restored at the same
 * parallelism it continues there. Restored at another parallelism P' from
 * positions taken at P, row i was already made exactly when
 * i < next_old[i % P]: the new subtasks start at the smallest old position
 * and skip those rows until they pass the largest, so no row is made twice
 * or lost. (Rescaling again before they passed it is refused.)
 *
 * The rate is a token bucket per subtask (rate / P tokens per second, at
 * most 100 ms worth banked). When the bucket is empty, poll returns no rows
 * and asks, through *idle_us, to be polled again when about 10 ms of rows
 * are due; it never sleeps, so the task thread stays responsive.
 */
#include "registry.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <msgpack.h>
#include <xxhash.h>

#include "../runtime/core/log.h"

typedef enum { GEN_SEQUENCE, GEN_RANDOM, GEN_CHOICE, GEN_CONST, GEN_NOW } gen_kind_t;

static const char *const gen_names[] = { "sequence", "random", "choice", "const", "now" };
#define NGENS ((int)(sizeof(gen_names) / sizeof(gen_names[0])))

/* Lanes of the per-(row, field) hash, so that the null decision and the
 * value draw are independent. */
enum { LANE_VALUE = 0, LANE_NULL = 1, LANE_CHARS = 2 };

typedef struct gen_field {
    gen_kind_t   gen;
    weir_type_t  type;
    double       null_rate;      /* 0 = never NULL */
    int64_t      istart, istep;  /* int, timestamp (us) */
    int64_t      imin, imax;
    double       dstart, dstep;  /* double */
    double       dmin, dmax;
    double       scale;          /* 10^decimals, 0 = no rounding */
    int          length;         /* random strings */
    const char  *alphabet;       /* static */
    int          nalpha;
    int          nvalues;        /* choice */
    weir_value_t *values;        /* strings point into strs */
    char        **strs;
    weir_value_t cval;           /* const (string points into cstr) */
    char        *cstr;
} gen_field_t;

typedef struct datagen_conf {
    int64_t      count;          /* -1 = unbounded */
    double       rate;           /* rows/s over all subtasks, 0 = unlimited */
    uint64_t     seed;
    int          nfields;
    gen_field_t *fields;
} datagen_conf_t;

typedef struct datagen {
    const datagen_conf_t *conf;
    uint64_t next;               /* next sequence index of this subtask */
    uint64_t stride;             /* parallelism */
    uint64_t end;                /* count, or UINT64_MAX when unbounded */
    double   per_sec;            /* this subtask's rate, 0 = unlimited */
    double   tokens;
    double   burst;              /* most tokens banked */
    double   target;             /* tokens worth waking up for */
    uint64_t last_ns;
    /* after a rescaled restore: rows below old_max made by the old subtasks */
    int       old_p;
    uint64_t *old_next;
    uint64_t  old_max;
} datagen_t;

static const char *const datagen_params[] = { "count", "rate", "seed", "fields", NULL };

static const char alnum[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
static const char hexdigits[] = "0123456789abcdef";

/* ---- configure ------------------------------------------------------- */

static void
datagen_conf_free(void *p)
{
    datagen_conf_t *c = p;

    if (c == NULL)
        return;
    for (int i = 0; i < c->nfields; i++) {
        gen_field_t *f = &c->fields[i];
        for (int v = 0; v < f->nvalues; v++)
            free(f->strs ? f->strs[v] : NULL);
        free(f->strs);
        free(f->values);
        free(f->cstr);
    }
    free(c->fields);
    free(c);
}

/* A timestamp parameter: "2024-01-01 00:00:00" (or ISO 8601), or an integer
 * of epoch milliseconds (as in JSON). */
static int
param_ts(const weir_params_t *p, const char *key, int64_t def, int64_t *out, weir_err_t *err)
{
    char *s = NULL, *end;
    long long ms;
    int rc;

    if (!weir_params_has(p, key)) {
        *out = def;
        return 0;
    }
    rc = weir_params_req_str(p, key, &s, err);
    if (rc != 0)
        return rc;
    ms = strtoll(s, &end, 10);
    if (end != s && *end == '\0') {
        if (ms > INT64_MAX / 1000 || ms < INT64_MIN / 1000)
            rc = weir_params_error(p, key, WEIR_ERANGE, err, "timestamp '%s' out of range", s);
        else
            *out = (int64_t)ms * 1000;
    } else if (weir_ts_parse(s, strlen(s), out) != 0) {
        rc = weir_params_error(p, key, WEIR_EPARSE, err,
                               "expected a timestamp ('2024-01-01 00:00:00') or epoch milliseconds, got '%s'",
                               s);
    }
    free(s);
    return rc;
}

/* Parses text as a value of type t (for `value:` and `values:`); strings
 * are returned borrowed from text. */
static int
parse_typed(const char *text, weir_type_t t, weir_value_t *v)
{
    char *end;

    switch (t) {
    case WEIR_T_INT: {
        long long x = strtoll(text, &end, 10);
        if (end == text || *end != '\0')
            return WEIR_EPARSE;
        *v = weir_value_int(x);
        return 0;
    }
    case WEIR_T_DOUBLE: {
        double d = strtod(text, &end);
        if (end == text || *end != '\0')
            return WEIR_EPARSE;
        *v = weir_value_double(d);
        return 0;
    }
    case WEIR_T_BOOL:
        if (strcmp(text, "true") == 0)
            *v = weir_value_bool(true);
        else if (strcmp(text, "false") == 0)
            *v = weir_value_bool(false);
        else
            return WEIR_EPARSE;
        return 0;
    case WEIR_T_STRING:
    case WEIR_T_BYTES:
        *v = weir_value_str(text, (uint32_t)strlen(text));
        v->type = (uint8_t)t;
        return 0;
    case WEIR_T_TIMESTAMP: {
        int64_t us;
        long long ms = strtoll(text, &end, 10);
        if (end != text && *end == '\0')
            us = ms * 1000;
        else if (weir_ts_parse(text, strlen(text), &us) != 0)
            return WEIR_EPARSE;
        *v = weir_value_ts(us);
        return 0;
    }
    case WEIR_T_NULL:
        break;
    }
    return WEIR_EINVAL;
}

static int
configure_sequence(const weir_params_t *it, gen_field_t *f, weir_err_t *err)
{
    static const char *const keys[] = { "type", "gen", "null_rate", "start", "step", NULL };
    int rc = weir_params_check_keys(it, keys, err);

    if (rc != 0)
        return rc;
    switch (f->type) {
    case WEIR_T_INT:
        if ((rc = weir_params_opt_int(it, "start", 0, &f->istart, err)) != 0 ||
            (rc = weir_params_opt_int(it, "step", 1, &f->istep, err)) != 0)
            return rc;
        return 0;
    case WEIR_T_DOUBLE:
        if ((rc = weir_params_opt_double(it, "start", 0, &f->dstart, err)) != 0 ||
            (rc = weir_params_opt_double(it, "step", 1, &f->dstep, err)) != 0)
            return rc;
        return 0;
    case WEIR_T_TIMESTAMP:
        if ((rc = param_ts(it, "start", 0, &f->istart, err)) != 0 ||
            (rc = weir_params_opt_duration(it, "step", 1000000, &f->istep, err)) != 0)
            return rc;
        return 0;
    default:
        return weir_params_error(it, "gen", WEIR_EINVAL, err,
                                 "gen 'sequence' makes int, double or timestamp fields, not %s",
                                 weir_type_name(f->type));
    }
}

static int
configure_random(const weir_params_t *it, gen_field_t *f, weir_err_t *err)
{
    static const char *const keys[] = { "type", "gen", "null_rate", "min", "max", "decimals",
                                        "length", "chars", NULL };
    char *chars = NULL;
    int64_t n;
    int rc = weir_params_check_keys(it, keys, err);

    if (rc != 0)
        return rc;
    switch (f->type) {
    case WEIR_T_INT:
        if ((rc = weir_params_opt_int(it, "min", 0, &f->imin, err)) != 0 ||
            (rc = weir_params_opt_int(it, "max", 100, &f->imax, err)) != 0)
            return rc;
        break;
    case WEIR_T_TIMESTAMP:
        if (!weir_params_has(it, "min") || !weir_params_has(it, "max"))
            return weir_params_error(it, weir_params_has(it, "min") ? "max" : "min", WEIR_EINVAL, err,
                                     "a random timestamp needs both 'min' and 'max'");
        if ((rc = param_ts(it, "min", 0, &f->imin, err)) != 0 ||
            (rc = param_ts(it, "max", 0, &f->imax, err)) != 0)
            return rc;
        break;
    case WEIR_T_DOUBLE:
        if ((rc = weir_params_opt_double(it, "min", 0, &f->dmin, err)) != 0 ||
            (rc = weir_params_opt_double(it, "max", 100, &f->dmax, err)) != 0)
            return rc;
        if (!isfinite(f->dmin) || !isfinite(f->dmax) || f->dmax < f->dmin)
            return weir_params_error(it, "max", WEIR_EINVAL, err,
                                     "'max' must be a number >= 'min'");
        if (weir_params_has(it, "decimals")) {
            if ((rc = weir_params_opt_int(it, "decimals", 0, &n, err)) != 0)
                return rc;
            if (n < 0 || n > 15)
                return weir_params_error(it, "decimals", WEIR_ERANGE, err,
                                         "'decimals' must be between 0 and 15");
            f->scale = pow(10.0, (double)n);
        }
        break;
    case WEIR_T_STRING:
    case WEIR_T_BYTES:
        if ((rc = weir_params_opt_int(it, "length", 8, &n, err)) != 0)
            return rc;
        if (n < 0 || n > 65536)
            return weir_params_error(it, "length", WEIR_ERANGE, err,
                                     "'length' must be between 0 and 65536");
        f->length = (int)n;
        if ((rc = weir_params_opt_str(it, "chars", "alnum", &chars, err)) != 0)
            return rc;
        if (strcmp(chars, "alnum") == 0) {
            f->alphabet = alnum;
        } else if (strcmp(chars, "hex") == 0) {
            f->alphabet = hexdigits;
        } else {
            free(chars);
            return weir_params_error(it, "chars", WEIR_EINVAL, err,
                                     "'chars' must be 'alnum' or 'hex'");
        }
        free(chars);
        f->nalpha = (int)strlen(f->alphabet);
        return 0;
    case WEIR_T_BOOL:
        return 0;
    default:
        return WEIR_EINVAL;
    }
    if ((f->type == WEIR_T_INT || f->type == WEIR_T_TIMESTAMP) && f->imax < f->imin)
        return weir_params_error(it, "max", WEIR_EINVAL, err, "'max' must be >= 'min'");
    return 0;
}

static int
configure_choice(const weir_params_t *it, gen_field_t *f, weir_err_t *err)
{
    static const char *const keys[] = { "type", "gen", "null_rate", "values", NULL };
    int rc = weir_params_check_keys(it, keys, err);

    if (rc != 0)
        return rc;
    if (f->type == WEIR_T_TIMESTAMP)
        return weir_params_error(it, "gen", WEIR_EINVAL, err,
                                 "gen 'choice' makes int, double, bool or string fields");
    rc = weir_params_str_list(it, "values", true, &f->strs, &f->nvalues, err);
    if (rc != 0)
        return rc;
    if (f->nvalues == 0)
        return weir_params_error(it, "values", WEIR_EINVAL, err, "'values' must not be empty");
    f->values = calloc((size_t)f->nvalues, sizeof(*f->values));
    if (f->values == NULL)
        return WEIR_ENOMEM;
    for (int v = 0; v < f->nvalues; v++)
        if (parse_typed(f->strs[v], f->type, &f->values[v]) != 0)
            return weir_params_error(it, "values", WEIR_ETYPE, err,
                                     "value '%s' is not of type %s", f->strs[v],
                                     weir_type_name(f->type));
    return 0;
}

static int
configure_const(const weir_params_t *it, gen_field_t *f, weir_err_t *err)
{
    static const char *const keys[] = { "type", "gen", "null_rate", "value", NULL };
    int rc = weir_params_check_keys(it, keys, err);

    if (rc != 0)
        return rc;
    if ((rc = weir_params_req_str(it, "value", &f->cstr, err)) != 0)
        return rc;
    if (parse_typed(f->cstr, f->type, &f->cval) != 0)
        return weir_params_error(it, "value", WEIR_ETYPE, err, "'%s' is not of type %s", f->cstr,
                                 weir_type_name(f->type));
    return 0;
}

static int
configure_field(const weir_params_t *it, gen_field_t *f, char **name, weir_err_t *err)
{
    char *type = NULL, *gen = NULL;
    int t, g = -1, rc;

    if (!weir_params_is_map(it))
        return weir_params_error(it, NULL, WEIR_EINVAL, err,
                                 "a datagen field is a mapping {name: N, type: T, gen: G, ...}");
    if ((rc = weir_params_req_str(it, "name", name, err)) != 0 ||
        (rc = weir_params_req_str(it, "type", &type, err)) != 0)
        goto out;
    if ((*name)[0] == '\0') {
        rc = weir_params_error(it, "name", WEIR_EINVAL, err, "a field name must not be empty");
        goto out;
    }
    t = weir_type_parse(type);
    if (t < 0 || t == WEIR_T_NULL) {
        rc = weir_params_error(it, "type", WEIR_EINVAL, err,
                               "unknown type '%s' (int, double, bool, string, bytes, timestamp)", type);
        goto out;
    }
    f->type = (weir_type_t)t;
    rc = weir_params_opt_str(it, "gen",
                             (t == WEIR_T_STRING || t == WEIR_T_BYTES || t == WEIR_T_BOOL) ? "random"
                                                                                          : "sequence",
                             &gen, err);
    if (rc != 0)
        goto out;
    for (int i = 0; i < NGENS; i++)
        if (strcmp(gen, gen_names[i]) == 0)
            g = i;
    if (g < 0) {
        const char *hint = weir_suggest(gen, gen_names, NGENS);
        if (hint != NULL)
            rc = weir_params_error(it, "gen", WEIR_EINVAL, err,
                                   "unknown gen '%s' (did you mean '%s'?)", gen, hint);
        else
            rc = weir_params_error(it, "gen", WEIR_EINVAL, err,
                                   "unknown gen '%s'; use sequence, random, choice, const or now",
                                   gen);
        goto out;
    }
    f->gen = (gen_kind_t)g;
    if ((rc = weir_params_opt_double(it, "null_rate", 0, &f->null_rate, err)) != 0)
        goto out;
    if (!(f->null_rate >= 0 && f->null_rate <= 1)) {
        rc = weir_params_error(it, "null_rate", WEIR_ERANGE, err,
                               "'null_rate' must be between 0 and 1");
        goto out;
    }
    switch (f->gen) {
    case GEN_SEQUENCE: rc = configure_sequence(it, f, err); break;
    case GEN_RANDOM:   rc = configure_random(it, f, err); break;
    case GEN_CHOICE:   rc = configure_choice(it, f, err); break;
    case GEN_CONST:    rc = configure_const(it, f, err); break;
    case GEN_NOW: {
        static const char *const keys[] = { "type", "gen", "null_rate", NULL };
        rc = weir_params_check_keys(it, keys, err);
        if (rc == 0 && f->type != WEIR_T_TIMESTAMP)
            rc = weir_params_error(it, "gen", WEIR_EINVAL, err,
                                   "gen 'now' makes timestamp fields, not %s", weir_type_name(f->type));
        break;
    }
    }
out:
    free(type);
    free(gen);
    return rc;
}

static int
datagen_configure(weir_op_config_t *cfg, weir_err_t *err)
{
    const weir_params_t *p = &cfg->params;
    datagen_conf_t *c;
    weir_params_t *items = NULL;
    weir_schema_t *schema = NULL;
    char **names = NULL;
    int n = 0, rc;
    int64_t seed;

    if ((rc = weir_params_check_keys(p, datagen_params, err)) != 0)
        return rc;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return WEIR_ENOMEM;
    if ((rc = weir_params_opt_int(p, "count", -1, &c->count, err)) != 0 ||
        (rc = weir_params_opt_double(p, "rate", 0, &c->rate, err)) != 0 ||
        (rc = weir_params_opt_int(p, "seed", 0, &seed, err)) != 0)
        goto fail;
    c->seed = (uint64_t)seed;
    if (c->count < -1) {
        rc = weir_params_error(p, "count", WEIR_ERANGE, err,
                               "'count' must be >= 0, or -1 for unbounded");
        goto fail;
    }
    if (!(c->rate >= 0) || isinf(c->rate)) {
        rc = weir_params_error(p, "rate", WEIR_ERANGE, err,
                               "'rate' must be >= 0 rows per second (0 = unlimited)");
        goto fail;
    }
    if ((rc = weir_params_items(p, "fields", true, &items, &n, err)) != 0)
        goto fail;
    if (n == 0) {
        rc = weir_params_error(p, "fields", WEIR_EINVAL, err, "'fields' must list at least one field");
        goto fail;
    }
    c->fields = calloc((size_t)n, sizeof(*c->fields));
    names = calloc((size_t)n, sizeof(*names));
    schema = weir_schema_new(n);
    if (c->fields == NULL || names == NULL || schema == NULL) {
        rc = WEIR_ENOMEM;
        goto fail;
    }
    c->nfields = n;
    for (int i = 0; i < n; i++) {
        if ((rc = configure_field(&items[i], &c->fields[i], &names[i], err)) != 0)
            goto fail;
        for (int j = 0; j < i; j++) {
            if (strcmp(names[i], names[j]) == 0) {
                rc = weir_params_error(&items[i], "name", WEIR_EEXIST, err,
                                       "field '%s' is defined twice", names[i]);
                goto fail;
            }
        }
        if ((rc = weir_schema_set(schema, i, names[i], c->fields[i].type,
                                  c->fields[i].null_rate > 0)) != 0)
            goto fail;
    }
    weir_str_list_free(names, n);
    free(items);
    cfg->output_schema = schema;
    cfg->conf = c;
    return 0;

fail:
    if (names != NULL)
        weir_str_list_free(names, n);
    free(items);
    weir_schema_unref(schema);
    datagen_conf_free(c);
    return rc;
}

/* ---- run time -------------------------------------------------------- */

static int
datagen_open(weir_op_t *op, weir_err_t *err)
{
    const datagen_conf_t *c = op->cfg->conf;
    datagen_t *g;
    int par = op->ctx->parallelism > 0 ? op->ctx->parallelism : 1;

    if (op->ctx->subtask < 0 || op->ctx->subtask >= par)
        return weir_err_set(err, WEIR_EINVAL, "%s datagen: subtask %d of %d", op->ctx->log_prefix,
                            op->ctx->subtask, par);
    g = calloc(1, sizeof(*g));
    if (g == NULL)
        return WEIR_ENOMEM;
    g->conf = c;
    g->next = (uint64_t)op->ctx->subtask;
    g->stride = (uint64_t)par;
    g->end = c->count < 0 ? UINT64_MAX : (uint64_t)c->count;
    if (c->rate > 0) {
        g->per_sec = c->rate / par;
        g->burst = g->per_sec / 10 > 1 ? g->per_sec / 10 : 1;
        g->target = g->per_sec / 100 > 1 ? g->per_sec / 100 : 1;
        if (g->target > g->burst)
            g->target = g->burst;
        g->last_ns = weir_mono_ns();
    }
    op->self = g;
    return 0;
}

static void
datagen_close(weir_op_t *op)
{
    datagen_t *g = op->self;

    if (g != NULL)
        free(g->old_next);
    free(op->self);
    op->self = NULL;
}

static inline uint64_t
draw(uint64_t seed, uint64_t row, uint64_t field, uint64_t lane)
{
    uint64_t in[3] = { row, field, lane };

    return XXH3_64bits_withSeed(in, sizeof(in), seed);
}

/* Uniform in [0, 1). */
static inline double
unit(uint64_t h)
{
    return (double)(h >> 11) * 0x1.0p-53;
}

/* Uniform in [lo, hi], both inclusive. */
static inline int64_t
in_range(uint64_t h, int64_t lo, int64_t hi)
{
    uint64_t span = (uint64_t)hi - (uint64_t)lo + 1;

    return (int64_t)((uint64_t)lo + (span == 0 ? h : h % span));
}

static int
gen_value(const datagen_conf_t *c, int fi, uint64_t i, int64_t now_us, weir_batch_t *b,
          weir_value_t *v)
{
    const gen_field_t *f = &c->fields[fi];
    uint64_t h;

    if (f->null_rate > 0 && unit(draw(c->seed, i, (uint64_t)fi, LANE_NULL)) < f->null_rate) {
        *v = weir_value_null(f->type);
        return 0;
    }
    switch (f->gen) {
    case GEN_SEQUENCE:
        if (f->type == WEIR_T_DOUBLE)
            *v = weir_value_double(f->dstart + (double)i * f->dstep);
        else if (f->type == WEIR_T_INT)
            *v = weir_value_int((int64_t)((uint64_t)f->istart + i * (uint64_t)f->istep));
        else
            *v = weir_value_ts((int64_t)((uint64_t)f->istart + i * (uint64_t)f->istep));
        return 0;
    case GEN_RANDOM:
        h = draw(c->seed, i, (uint64_t)fi, LANE_VALUE);
        switch (f->type) {
        case WEIR_T_INT:
            *v = weir_value_int(in_range(h, f->imin, f->imax));
            return 0;
        case WEIR_T_TIMESTAMP:
            *v = weir_value_ts(in_range(h, f->imin, f->imax));
            return 0;
        case WEIR_T_DOUBLE: {
            double d = f->dmin + unit(h) * (f->dmax - f->dmin);
            if (f->scale > 0)
                d = round(d * f->scale) / f->scale;
            *v = weir_value_double(d);
            return 0;
        }
        case WEIR_T_BOOL:
            *v = weir_value_bool((h >> 32) & 1);
            return 0;
        case WEIR_T_STRING:
        case WEIR_T_BYTES: {
            char *s = weir_arena_alloc(&b->arena, (size_t)f->length + 1);
            if (s == NULL)
                return WEIR_ENOMEM;
            for (int k = 0; k < f->length; k++) {
                if (k % 8 == 0)
                    h = draw(c->seed, i, (uint64_t)fi, LANE_CHARS + (uint64_t)(k / 8));
                s[k] = f->alphabet[((h >> (8 * (k % 8))) & 0xff) % (unsigned)f->nalpha];
            }
            s[f->length] = '\0';
            *v = weir_value_str(s, (uint32_t)f->length);
            v->type = (uint8_t)f->type;
            return 0;
        }
        default:
            return WEIR_EINVAL;
        }
    case GEN_CHOICE:
        h = draw(c->seed, i, (uint64_t)fi, LANE_VALUE);
        *v = f->values[h % (uint64_t)f->nvalues];
        return weir_batch_own(b, v);
    case GEN_CONST:
        *v = f->cval;
        return weir_batch_own(b, v);
    case GEN_NOW:
        *v = weir_value_ts(now_us);
        return 0;
    }
    return WEIR_EINVAL;
}

static int
datagen_poll(weir_op_t *op, weir_batch_t *out, int max, int64_t *idle_us, weir_err_t *err)
{
    datagen_t *g = op->self;
    const datagen_conf_t *c = g->conf;
    int64_t now_us = 0;
    int n, rc;

    if (g->next >= g->end)
        return WEIR_EOS;
    n = max > 0 ? max : 1;
    if (g->per_sec > 0) {
        uint64_t now = weir_mono_ns();
        g->tokens += (double)(now - g->last_ns) * 1e-9 * g->per_sec;
        if (g->tokens > g->burst)
            g->tokens = g->burst;
        g->last_ns = now;
        if (g->tokens < 1) {
            double wait = (g->target - g->tokens) / g->per_sec * 1e6;
            *idle_us = wait < 1 ? 1 : (int64_t)ceil(wait);
            return 0;
        }
        if ((double)n > g->tokens)
            n = (int)g->tokens;
    }
    for (int f = 0; f < c->nfields; f++)
        if (c->fields[f].gen == GEN_NOW)
            now_us = weir_now_us();
    for (int r = 0; r < n && g->next < g->end; r++) {
        if (g->old_p > 0) {
            if (g->next >= g->old_max) {
                g->old_p = 0;                /* past everything made before */
            } else if (g->next < g->old_next[g->next % (uint64_t)g->old_p]) {
                g->next = g->end - g->next <= g->stride ? g->end : g->next + g->stride;
                r--;                         /* made before the restore: skip */
                continue;
            }
        }
        weir_value_t *row = weir_batch_append(out);
        if (row == NULL)
            return weir_err_set(err, WEIR_ENOMEM, "%s datagen: out of memory", op->ctx->log_prefix);
        for (int f = 0; f < c->nfields; f++) {
            if ((rc = gen_value(c, f, g->next, now_us, out, &row[f])) != 0) {
                weir_batch_pop(out);
                return weir_err_set(err, rc, "%s datagen: %s", op->ctx->log_prefix,
                                    weir_strerror(rc));
            }
        }
        g->tokens -= 1;
        /* the last row's index may be the last representable one */
        if (g->end - g->next <= g->stride)
            g->next = g->end;
        else
            g->next += g->stride;
    }
    return g->next >= g->end ? WEIR_EOS : 0;
}


/* ---- checkpoints -------------------------------------------------------- */

/* msgpack [next] or, while a rescaled restore's rows are still being
 * skipped, [next, old_p, old_next...]. */
static int
datagen_snapshot(weir_op_t *op, int64_t ckpt, weir_buf_t *out, weir_err_t *err)
{
    datagen_t *g = op->self;
    msgpack_packer pk;

    (void)ckpt;
    (void)err;
    msgpack_packer_init(&pk, out, weir_buf_msgpack_write);
    msgpack_pack_array(&pk, g->old_p > 0 ? 2 + (size_t)g->old_p : 1);
    msgpack_pack_uint64(&pk, g->next);
    if (g->old_p > 0) {
        msgpack_pack_int(&pk, g->old_p);
        for (int i = 0; i < g->old_p; i++)
            msgpack_pack_uint64(&pk, g->old_next[i]);
    }
    return 0;
}

static int
datagen_restore(weir_op_t *op, int64_t ckpt, int old_parallelism, const weir_op_blob_t *blobs,
                int nblobs, weir_err_t *err)
{
    datagen_t *g = op->self;
    uint64_t *old;
    uint64_t min = UINT64_MAX, max = 0;
    int got = 0;

    (void)ckpt;
    if (nblobs == 0)
        return 0;
    old = calloc((size_t)old_parallelism, sizeof(*old));
    if (old == NULL)
        return weir_err_set(err, WEIR_ENOMEM, "%s datagen: out of memory", op->ctx->log_prefix);
    for (int b = 0; b < nblobs; b++) {
        msgpack_unpacked u;
        size_t off = 0;
        int s = blobs[b].subtask;

        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, blobs[b].data, blobs[b].len, &off) != MSGPACK_UNPACK_SUCCESS ||
            u.data.type != MSGPACK_OBJECT_ARRAY || u.data.via.array.size < 1 || s < 0 ||
            s >= old_parallelism) {
            msgpack_unpacked_destroy(&u);
            free(old);
            return weir_err_set(err, WEIR_EPARSE, "%s datagen: corrupt checkpoint position",
                                op->ctx->log_prefix);
        }
        if (u.data.via.array.size > 1 && old_parallelism != op->ctx->parallelism) {
            msgpack_unpacked_destroy(&u);
            free(old);
            return weir_err_set(err, WEIR_EINVAL, "%s datagen: cannot rescale again before the "
                                "previous rescale's rows are behind (restore at parallelism %d)",
                                op->ctx->log_prefix, old_parallelism);
        }
        old[s] = u.data.via.array.ptr[0].via.u64;
        if (s == op->ctx->subtask && old_parallelism == op->ctx->parallelism &&
            u.data.via.array.size > 1) {
            /* same parallelism, a skip table still active: keep it */
            int op_ = (int)u.data.via.array.ptr[1].via.i64;
            if (op_ > 0 && (int)u.data.via.array.size == 2 + op_) {
                free(g->old_next);
                g->old_next = calloc((size_t)op_, sizeof(uint64_t));
                if (g->old_next != NULL) {
                    g->old_p = op_;
                    g->old_max = 0;
                    for (int i = 0; i < op_; i++) {
                        g->old_next[i] = u.data.via.array.ptr[2 + i].via.u64;
                        if (g->old_next[i] > g->old_max)
                            g->old_max = g->old_next[i];
                    }
                }
            }
        }
        got++;
        msgpack_unpacked_destroy(&u);
    }
    if (old_parallelism == op->ctx->parallelism) {
        g->next = old[op->ctx->subtask];
        free(old);
        return 0;
    }
    if (got != old_parallelism) {
        free(old);
        return weir_err_set(err, WEIR_EINVAL, "%s datagen: the checkpoint has %d of %d positions",
                            op->ctx->log_prefix, got, old_parallelism);
    }
    for (int i = 0; i < old_parallelism; i++) {
        if (old[i] < min)
            min = old[i];
        if (old[i] > max)
            max = old[i];
    }
    /* the first row of ours at or after the smallest old position */
    uint64_t s = (uint64_t)op->ctx->subtask, p = (uint64_t)op->ctx->parallelism;
    g->next = min <= s ? s : min + ((s + p - min % p) % p);
    if (g->next > g->end)
        g->next = g->end;
    free(g->old_next);
    g->old_next = old;
    g->old_p = old_parallelism;
    g->old_max = max;
    return 0;
}

const weir_op_kind_t weir_op_datagen = {
    .name       = "datagen",
    .roles      = WEIR_ROLE_SOURCE,
    .min_inputs = 0,
    .max_inputs = 0,
    .keyed      = false,
    .params     = datagen_params,
    .summary    = "generates rows from a per-field recipe, deterministic for a seed",
    .configure  = datagen_configure,
    .conf_free  = datagen_conf_free,
    .open       = datagen_open,
    .poll       = datagen_poll,
    .close      = datagen_close,
    .snapshot   = datagen_snapshot,
    .restore    = datagen_restore,
};
