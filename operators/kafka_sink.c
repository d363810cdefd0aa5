/* operators/kafka_sink.c -- the "kafka" sink: rows to a Kafka topic.
 *
 *   - name: out
 *     kind: kafka
 *     input: flagged_transactions
 *     bootstrap: 127.0.0.1:9092
 *     topic: flagged-transactions
 *     format: json                      # or raw: the input's value (and key) columns
 *     key_fields: account_id;transaction_id   # or a list; optional
 *     properties: {compression.type: lz4}     # passed to librdkafka
 *
 * Each row becomes one message: the value is the row as a JSON object (the
 * same rendering as the file sink), the key is a JSON object of the
 * key_fields ({"account_id":1000000003,"transaction_id":"5c0a..."}, as
 * Flink's key.format json writes it) or absent. Messages with a key go to
 * the partition of the Java client's murmur2 partitioner, so records of one
 * key keep their order and land where other Kafka clients would put them.
 * With format raw the input must have a `value` column (bytes or string)
 * and may have a `key` column; both are sent unchanged, which makes a raw
 * source -> raw sink job a byte-exact copy.
 *
 * The producer is idempotent (acks=all): a retry after a lost response does
 * not duplicate a record. Delivery is asynchronous; any failed delivery
 * (the broker's message included) fails the task at the next batch or at
 * finish, which waits for every delivery: a finished job's output is in the
 * topic. With checkpoints, every barrier waits for the deliveries before
 * it, so a restore replays only records after a checkpoint: at-least-once.
 * (Exactly-once delivery through Kafka transactions is not built yet.)
 *
 * Hot path: one reused buffer per batch for values and one for keys, field
 * positions resolved at plan time; librdkafka copies each message into its
 * own queue (RD_KAFKA_MSG_F_COPY).
 */
#include "registry.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../runtime/core/json_row.h"
#include "../runtime/core/log.h"
#include "kafka_common.h"

enum { FMT_JSON, FMT_RAW };

typedef struct ksink_conf {
    char       *bootstrap;
    char       *topic;
    char       *name;
    int         format;
    int         nkeys;
    int         key_idx[WEIR_MAX_KEYS];
    char       *key_names[WEIR_MAX_KEYS];
    int         raw_key, raw_value;   /* raw: column indexes, key may be -1 */
    wk_props_t  props;
} ksink_conf_t;

typedef struct kafka_sink {
    const ksink_conf_t *conf;
    wk_producer_t       prod;
    weir_buf_t          val;
    weir_buf_t          key;
    char                what[256];
} kafka_sink_t;

static const char *const ksink_params[] = {
    "bootstrap", "topic", "format", "key_fields", "properties", NULL,
};

static void
ksink_conf_free(void *p)
{
    ksink_conf_t *c = p;

    if (c == NULL)
        return;
    free(c->bootstrap);
    free(c->topic);
    free(c->name);
    for (int i = 0; i < c->nkeys; i++)
        free(c->key_names[i]);
    wk_props_free(&c->props);
    free(c);
}

/* key_fields: "a;b" (Flink's key.fields syntax) or a YAML list. */
static int
read_key_fields(const weir_params_t *p, const weir_schema_t *in, ksink_conf_t *c,
                weir_err_t *err)
{
    char **list = NULL;
    int n = 0, rc;

    if (!weir_params_has(p, "key_fields"))
        return 0;
    if ((rc = weir_params_str_list(p, "key_fields", true, &list, &n, err)) != 0)
        return rc;
    for (int i = 0; i < n && rc == 0; i++) {
        char *save = NULL;
        for (char *f = strtok_r(list[i], ";", &save); f != NULL && rc == 0;
             f = strtok_r(NULL, ";", &save)) {
            while (*f == ' ')
                f++;
            size_t len = strlen(f);
            while (len > 0 && f[len - 1] == ' ')
                f[--len] = '\0';
            if (len == 0)
                continue;
            if (c->nkeys == WEIR_MAX_KEYS) {
                rc = weir_params_error(p, "key_fields", WEIR_ERANGE, err,
                                       "at most %d key fields", WEIR_MAX_KEYS);
                break;
            }
            int idx;
            if ((rc = weir__op_field(p, "key_fields", in, f, &idx, err)) != 0)
                break;
            for (int k = 0; k < c->nkeys; k++)
                if (c->key_idx[k] == idx)
                    rc = weir_params_error(p, "key_fields", WEIR_EINVAL, err,
                                           "key field '%s' is listed twice", f);
            if (rc != 0)
                break;
            c->key_idx[c->nkeys] = idx;
            if ((c->key_names[c->nkeys] = strdup(in->fields[idx].name)) == NULL)
                rc = WEIR_ENOMEM;
            else
                c->nkeys++;
        }
    }
    weir_str_list_free(list, n);
    if (rc == 0 && c->nkeys == 0)
        rc = weir_params_error(p, "key_fields", WEIR_EINVAL, err,
                               "'key_fields' names no field");
    return rc;
}

static int
ksink_configure(weir_op_config_t *cfg, weir_err_t *err)
{
    const weir_params_t *p = &cfg->params;
    const weir_schema_t *in = cfg->input_schemas[0];
    ksink_conf_t *c;
    char *format = NULL;
    int rc;

    if ((rc = weir_params_check_keys(p, ksink_params, err)) != 0)
        return rc;
    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->name = strdup(cfg->name)) == NULL) {
        free(c);
        return WEIR_ENOMEM;
    }
    c->raw_key = c->raw_value = -1;
    if ((rc = weir_params_req_str(p, "bootstrap", &c->bootstrap, err)) != 0 ||
        (rc = weir_params_req_str(p, "topic", &c->topic, err)) != 0 ||
        (rc = weir_params_opt_str(p, "format", "json", &format, err)) != 0)
        goto fail;
    if (c->bootstrap[0] == '\0') {
        rc = weir_params_error(p, "bootstrap", WEIR_EINVAL, err,
                               "'bootstrap' is empty (is KAFKA_BOOTSTRAP set?)");
        goto fail;
    }
    if (c->topic[0] == '\0' || strlen(c->topic) > 249) {
        rc = weir_params_error(p, "topic", WEIR_EINVAL, err,
                               "topic names are 1 to 249 characters");
        goto fail;
    }
    if (strcmp(format, "json") == 0) {
        c->format = FMT_JSON;
        if ((rc = read_key_fields(p, in, c, err)) != 0)
            goto fail;
    } else if (strcmp(format, "raw") == 0) {
        c->format = FMT_RAW;
        if (weir_params_has(p, "key_fields")) {
            rc = weir_params_error(p, "key_fields", WEIR_EINVAL, err,
                                   "format raw sends the input's 'key' column as the key; "
                                   "drop 'key_fields'");
            goto fail;
        }
        c->raw_key = weir_schema_find(in, "key");
        c->raw_value = weir_schema_find(in, "value");
        if (c->raw_value < 0 ||
            (in->fields[c->raw_value].type != WEIR_T_BYTES &&
             in->fields[c->raw_value].type != WEIR_T_STRING)) {
            rc = weir_params_error(p, "format", WEIR_EINVAL, err,
                                   "format raw needs a 'value' column of type bytes or string");
            goto fail;
        }
        if (c->raw_key >= 0 && in->fields[c->raw_key].type != WEIR_T_BYTES &&
            in->fields[c->raw_key].type != WEIR_T_STRING) {
            rc = weir_params_error(p, "format", WEIR_EINVAL, err,
                                   "format raw needs the 'key' column to be bytes or string");
            goto fail;
        }
    } else {
        rc = weir_params_error(p, "format", WEIR_EINVAL, err,
                               "unsupported format '%s' for a kafka sink (json, raw)", format);
        goto fail;
    }
    if ((rc = wk_props_read(p, NULL, &c->props, err)) != 0)
        goto fail;
    free(format);
    cfg->output_schema = NULL;
    cfg->conf = c;
    return 0;

fail:
    free(format);
    ksink_conf_free(c);
    return rc;
}

static int
ksink_open(weir_op_t *op, weir_err_t *err)
{
    const ksink_conf_t *c = op->cfg->conf;
    kafka_sink_t *s = calloc(1, sizeof(*s));
    int rc;

    if (s == NULL)
        return WEIR_ENOMEM;
    s->conf = c;
    snprintf(s->what, sizeof(s->what), "%s kafka sink '%s'", op->ctx->log_prefix, c->name);
    rc = wk_producer_open(&s->prod, c->bootstrap, &c->props, c->topic, s->what, err);
    if (rc != 0) {
        free(s);
        return rc;
    }
    op->self = s;
    return 0;
}

static int
render_key(kafka_sink_t *s, const weir_schema_t *schema, const weir_value_t *row)
{
    const ksink_conf_t *c = s->conf;
    int rc = weir_buf_putc(&s->key, '{');

    for (int k = 0; k < c->nkeys && rc == 0; k++) {
        if (k > 0)
            rc = weir_buf_putc(&s->key, ',');
        if (rc == 0)
            rc = weir_buf_append_json_str(&s->key, c->key_names[k], strlen(c->key_names[k]));
        if (rc == 0)
            rc = weir_buf_putc(&s->key, ':');
        if (rc == 0)
            rc = weir_json_write_value(&row[c->key_idx[k]], &s->key);
    }
    (void)schema;
    return rc != 0 ? rc : weir_buf_putc(&s->key, '}');
}

static int
ksink_process(weir_op_t *op, int input, const weir_batch_t *in, weir_batch_t *out,
              weir_err_t *err)
{
    kafka_sink_t *s = op->self;
    const ksink_conf_t *c = s->conf;
    int rc;

    (void)input;
    (void)out;
    for (int r = 0; r < in->nrows; r++) {
        const weir_value_t *row = weir_batch_row(in, r);
        const void *key = NULL, *val = NULL;
        size_t klen = 0, vlen = 0;

        if (c->format == FMT_RAW) {
            const weir_value_t *v = &row[c->raw_value];
            if (!v->null) {
                val = v->u.s;
                vlen = v->len;
            }
            if (c->raw_key >= 0 && !row[c->raw_key].null) {
                key = row[c->raw_key].u.s;
                klen = row[c->raw_key].len;
            }
        } else {
            weir_buf_reset(&s->val);
            if (weir_json_write_row(in->schema, row, &s->val) != 0)
                return weir_err_set(err, WEIR_ENOMEM, "%s: out of memory", s->what);
            val = s->val.data;
            vlen = s->val.len;
            if (c->nkeys > 0) {
                weir_buf_reset(&s->key);
                if (render_key(s, in->schema, row) != 0)
                    return weir_err_set(err, WEIR_ENOMEM, "%s: out of memory", s->what);
                key = s->key.data;
                klen = s->key.len;
            }
        }
        rc = wk_producer_send(&s->prod, key, klen, val, vlen, NULL, op->ctx->canceled, err);
        if (rc != 0)
            return rc;
    }
    return wk_producer_poll(&s->prod, err);
}

static int
ksink_finish(weir_op_t *op, weir_batch_t *out, weir_err_t *err)
{
    kafka_sink_t *s = op->self;
    int rc;

    (void)out;
    rc = wk_producer_flush(&s->prod, op->ctx->canceled, err);
    if (rc == 0)
        weir_log_info("%s: %" PRIu64 " records delivered to topic '%s'", s->what,
                      s->prod.delivered, s->conf->topic);
    return rc;
}

/* At a barrier every message before it must be in the topic: a restore
 * replays only what came after the checkpoint (at-least-once). */
static int
ksink_snapshot(weir_op_t *op, int64_t ckpt, weir_buf_t *out, weir_err_t *err)
{
    kafka_sink_t *s = op->self;

    (void)ckpt;
    (void)out;
    return wk_producer_flush(&s->prod, op->ctx->canceled, err);
}

static void
ksink_close(weir_op_t *op)
{
    kafka_sink_t *s = op->self;

    if (s == NULL)
        return;
    wk_producer_close(&s->prod);
    weir_buf_free(&s->val);
    weir_buf_free(&s->key);
    free(s);
    op->self = NULL;
}

const weir_op_kind_t weir_op_kafka_sink = {
    .name       = "kafka",
    .roles      = WEIR_ROLE_SINK,
    .min_inputs = 1,
    .max_inputs = 1,
    .keyed      = false,
    .params     = ksink_params,
    .summary    = "writes rows to a Kafka topic as JSON (or raw), keyed by key_fields",
    .configure  = ksink_configure,
    .conf_free  = ksink_conf_free,
    .open       = ksink_open,
    .process    = ksink_process,
    .finish     = ksink_finish,
    .close      = ksink_close,
    .snapshot   = ksink_snapshot,
};
