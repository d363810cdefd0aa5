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
 * it, so a restore replays only records after a checkpoint: at-least-once
 * (`delivery: at_least_once`, the default; `none` skips that wait).
 *
 * `delivery: exactly_once` (needs checkpoints) writes each checkpoint's
 * records in one Kafka transaction, committed only when the checkpoint
 * completed, so read_committed consumers see each record once. The
 * records of a checkpoint are kept (rendered) until then and are part of
 * the checkpoint; the commit produces them in a transaction of the
 * subtask's transactional producer (`<prefix>-<subtask>`; opening it
 * fences any zombie of an earlier attempt) together with a marker: the
 * checkpoint id committed as the offset of partition 0 of the topic for
 * the consumer group `<prefix>-<subtask>` (send_offsets_to_transaction),
 * atomically with the records. A restored subtask reads the marker of each
 * old subtask whose pending records it took over, and publishes again only
 * the checkpoints the marker does not cover: a crash between a checkpoint's
 * completion and its commit loses nothing and duplicates nothing. The cost
 * is visibility one checkpoint later (as with Flink's exactly-once sink)
 * and memory for one interval of output. The transaction timeout
 * (`transaction_timeout`, 10 min) must exceed the longest commit; the
 * broker caps it (transaction.max.timeout.ms, 15 min by default).
 *
 * Hot path: one reused buffer per batch for values and one for keys, field
 * positions resolved at plan time; librdkafka copies each message into its
 * own queue (RD_KAFKA_MSG_F_COPY).
 */
#include "registry.h"

#include <inttypes.h>
#include <msgpack.h>
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
    int         delivery;             /* DELIVERY_* */
    char       *txn_prefix;
    int64_t     txn_timeout_ms;
} ksink_conf_t;

enum { DELIVERY_AT_LEAST_ONCE, DELIVERY_NONE, DELIVERY_EXACTLY_ONCE };

/* exactly-once: a checkpoint's rendered records, [u32 klen|~0][key][u32 vlen][val]... */
typedef struct eo_batch {
    int64_t    ckpt;
    weir_buf_t recs;
    uint64_t   n;
} eo_batch_t;

typedef struct kafka_sink {
    const ksink_conf_t *conf;
    wk_producer_t       prod;
    weir_buf_t          val;
    weir_buf_t          key;
    char                what[256];
    /* exactly-once */
    char                txn_id[300];
    eo_batch_t          cur;          /* records since the last barrier */
    eo_batch_t         *pend;         /* taken in a checkpoint, not committed */
    int                 npend;
    int64_t             last_ckpt;
} kafka_sink_t;

static const char *const ksink_params[] = {
    "bootstrap", "topic", "format", "key_fields", "properties", "delivery",
    "transactional_id_prefix", "transaction_timeout", NULL,
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
    free(c->txn_prefix);
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
    if ((rc = wk_props_read(p, (const char *const[]){ "transactional.id", NULL }, &c->props,
                            err)) != 0)
        goto fail;
    {
        char *d = NULL;
        int64_t tmo;
        if ((rc = weir_params_opt_str(p, "delivery", "at_least_once", &d, err)) != 0)
            goto fail;
        if (strcmp(d, "at_least_once") == 0)
            c->delivery = DELIVERY_AT_LEAST_ONCE;
        else if (strcmp(d, "none") == 0)
            c->delivery = DELIVERY_NONE;
        else if (strcmp(d, "exactly_once") == 0)
            c->delivery = DELIVERY_EXACTLY_ONCE;
        else
            rc = weir_params_error(p, "delivery", WEIR_EINVAL, err, "delivery must be "
                                   "exactly_once, at_least_once or none, not '%s'", d);
        free(d);
        if (rc != 0)
            goto fail;
        const char *job = p->jf != NULL && p->jf->name != NULL ? p->jf->name : "job";
        char def[300];
        snprintf(def, sizeof(def), "weir-%s-%s", job, cfg->name);
        if ((rc = weir_params_opt_str(p, "transactional_id_prefix", def, &c->txn_prefix, err)) != 0 ||
            (rc = weir_params_opt_duration(p, "transaction_timeout", 600000000, &tmo, err)) != 0)
            goto fail;
        if (tmo < 1000000 || tmo > 24 * 3600 * 1000000LL) {
            rc = weir_params_error(p, "transaction_timeout", WEIR_ERANGE, err,
                                   "transaction_timeout must be between 1s and 24h");
            goto fail;
        }
        c->txn_timeout_ms = tmo / 1000;
    }
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
    if (c->delivery == DELIVERY_EXACTLY_ONCE) {
        if (op->ctx->checkpoint_interval_us == 0) {
            rc = weir_err_set(err, WEIR_EINVAL, "%s: delivery: exactly_once needs checkpoints "
                              "(a checkpoint: block in the job)", s->what);
            free(s);
            return rc;
        }
        snprintf(s->txn_id, sizeof(s->txn_id), "%s-%d", c->txn_prefix, op->ctx->subtask);
        rc = wk_producer_open_tx(&s->prod, c->bootstrap, &c->props, c->topic, s->what,
                                 s->txn_id, c->txn_timeout_ms, err);
    } else {
        rc = wk_producer_open(&s->prod, c->bootstrap, &c->props, c->topic, s->what, err);
    }
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

static int eo_add(eo_batch_t *b, const void *key, size_t klen, const void *val, size_t vlen);

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
        if (c->delivery == DELIVERY_EXACTLY_ONCE) {
            if (eo_add(&s->cur, key, klen, val, vlen) != 0)
                return weir_err_set(err, WEIR_ENOMEM, "%s: out of memory", s->what);
            continue;
        }
        rc = wk_producer_send(&s->prod, key, klen, val, vlen, NULL, op->ctx->canceled, err);
        if (rc != 0)
            return rc;
    }
    return c->delivery == DELIVERY_EXACTLY_ONCE ? 0 : wk_producer_poll(&s->prod, err);
}


/* ---- exactly-once -------------------------------------------------------- */

static int
eo_add(eo_batch_t *b, const void *key, size_t klen, const void *val, size_t vlen)
{
    uint32_t kl = key != NULL ? (uint32_t)klen : UINT32_MAX, vl = (uint32_t)vlen;

    if (weir_buf_append(&b->recs, &kl, 4) != 0 ||
        (key != NULL && weir_buf_append(&b->recs, key, klen) != 0) ||
        weir_buf_append(&b->recs, &vl, 4) != 0 || weir_buf_append(&b->recs, val, vlen) != 0)
        return WEIR_ENOMEM;
    b->n++;
    return 0;
}

/* The offset the marker group `group` committed for the topic's partition
 * 0: the last checkpoint published under it, or -1. */
static int
read_marker(kafka_sink_t *s, const char *group, int64_t *out, weir_err_t *err)
{
    const ksink_conf_t *c = s->conf;
    const char *defaults[] = { "group.id", group, "enable.auto.commit", "false", NULL };
    rd_kafka_conf_t *conf = wk_conf_new(c->bootstrap, defaults, &(wk_props_t){ 0 }, s->what, err);
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_resp_err_t e;
    char errstr[512];
    rd_kafka_t *rk;

    if (conf == NULL)
        return err->code;
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return weir_err_set(err, WEIR_EIO, "%s: %s", s->what, errstr);
    }
    l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, c->topic, 0);
    e = rd_kafka_committed(rk, l, 30000);
    *out = e == RD_KAFKA_RESP_ERR_NO_ERROR && l->elems[0].offset >= 0 ? l->elems[0].offset : -1;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return weir_err_set(err, WEIR_EIO, "%s: cannot read the commit marker of '%s': %s",
                            s->what, group, rd_kafka_err2str(e));
    return 0;
}

/* Aborts the open transaction. Its records stay pending in the sink (a
 * later commit or a restore publishes them), so the purge reports of the
 * aborted ones are not a delivery failure of the producer. */
static void
txn_abort(kafka_sink_t *s)
{
    rd_kafka_error_t *a = rd_kafka_abort_transaction(s->prod.rk, 30000);

    if (a != NULL) {
        rd_kafka_error_destroy(a);
        return;
    }
    s->prod.error = 0;
    s->prod.errmsg[0] = '\0';
}

static int
txn_error(kafka_sink_t *s, rd_kafka_error_t *e, const char *doing, weir_err_t *err)
{
    int rc = weir_err_set(err, WEIR_EIO, "%s: %s (transactional id '%s'): %s", s->what, doing,
                          s->txn_id, rd_kafka_error_string(e));
    if (rd_kafka_error_txn_requires_abort(e))
        txn_abort(s);
    rd_kafka_error_destroy(e);
    return rc;
}

/* Produces b's records in one transaction with the marker `ckpt` for
 * group, and commits it. */
static int
publish(weir_op_t *op, kafka_sink_t *s, const eo_batch_t *b, int64_t ckpt, const char *group,
        weir_err_t *err)
{
    rd_kafka_error_t *e;
    rd_kafka_topic_partition_list_t *marker;
    rd_kafka_consumer_group_metadata_t *gm;
    const char *p = b->recs.data, *end = b->recs.data + b->recs.len;
    int rc;

    if ((e = rd_kafka_begin_transaction(s->prod.rk)) != NULL)
        return txn_error(s, e, "begin a transaction", err);
    while (p < end) {
        uint32_t kl, vl;
        const char *key = NULL;
        memcpy(&kl, p, 4);
        p += 4;
        if (kl != UINT32_MAX) {
            key = p;
            p += kl;
        } else {
            kl = 0;
        }
        memcpy(&vl, p, 4);
        p += 4;
        rc = wk_producer_send(&s->prod, key, kl, p, vl, NULL, op->ctx->canceled, err);
        if (rc != 0) {
            txn_abort(s);
            return rc;
        }
        p += vl;
    }
    marker = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(marker, s->conf->topic, 0)->offset = ckpt;
    gm = rd_kafka_consumer_group_metadata_new(group);
    e = rd_kafka_send_offsets_to_transaction(s->prod.rk, marker, gm, 30000);
    rd_kafka_consumer_group_metadata_destroy(gm);
    rd_kafka_topic_partition_list_destroy(marker);
    if (e != NULL)
        return txn_error(s, e, "add the commit marker", err);
    /* a commit waits for every record's delivery: in steps of a second, so
     * that a canceled task does not wait for the transaction timeout */
    while ((e = rd_kafka_commit_transaction(s->prod.rk, 1000)) != NULL &&
           rd_kafka_error_is_retriable(e) && !(op->ctx->canceled && *op->ctx->canceled))
        rd_kafka_error_destroy(e);
    if (e != NULL)
        return txn_error(s, e, "commit", err);
    if (s->prod.error != 0)
        return wk_producer_poll(&s->prod, err);
    return 0;
}

static int
ksink_snapshot_eo(kafka_sink_t *s, int64_t ckpt, weir_buf_t *out, weir_err_t *err)
{
    msgpack_packer pk;

    if (s->cur.n > 0) {
        eo_batch_t *p = realloc(s->pend, sizeof(*p) * (size_t)(s->npend + 1));
        if (p == NULL)
            return weir_err_set(err, WEIR_ENOMEM, "%s: out of memory", s->what);
        s->pend = p;
        s->cur.ckpt = ckpt;
        s->pend[s->npend++] = s->cur;
        memset(&s->cur, 0, sizeof(s->cur));
    }
    s->last_ckpt = ckpt;
    msgpack_packer_init(&pk, out, weir_buf_msgpack_write);
    msgpack_pack_array(&pk, (size_t)s->npend);
    for (int i = 0; i < s->npend; i++) {
        msgpack_pack_array(&pk, 2);
        msgpack_pack_int64(&pk, s->pend[i].ckpt);
        msgpack_pack_bin(&pk, s->pend[i].recs.len);
        msgpack_pack_bin_body(&pk, s->pend[i].recs.data, s->pend[i].recs.len);
    }
    return 0;
}

static int
ksink_notify(weir_op_t *op, int64_t ckpt, weir_err_t *err)
{
    kafka_sink_t *s = op->self;
    int k = 0, rc = 0;

    if (s->conf->delivery != DELIVERY_EXACTLY_ONCE)
        return 0;
    for (int i = 0; i < s->npend; i++) {
        if (rc == 0 && s->pend[i].ckpt <= ckpt) {
            rc = publish(op, s, &s->pend[i], s->pend[i].ckpt, s->txn_id, err);
            if (rc == 0) {
                weir_buf_free(&s->pend[i].recs);
                continue;
            }
        }
        s->pend[k++] = s->pend[i];
    }
    s->npend = k;
    return rc;
}

/* Publishes what the restored checkpoint had pending, for the old subtasks
 * i with i % parallelism == subtask, unless their marker shows it was. */
static int
ksink_restore(weir_op_t *op, int64_t ckpt, int old_parallelism, const weir_op_blob_t *blobs,
              int nblobs, weir_err_t *err)
{
    kafka_sink_t *s = op->self;
    int rc = 0, republished = 0, skipped = 0;

    (void)old_parallelism;
    s->last_ckpt = ckpt;
    if (s->conf->delivery != DELIVERY_EXACTLY_ONCE)
        return 0;
    for (int b = 0; b < nblobs && rc == 0; b++) {
        char group[320];
        int64_t marker = -1;
        msgpack_unpacked u;
        size_t off = 0;

        if (blobs[b].subtask % op->ctx->parallelism != op->ctx->subtask)
            continue;
        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, blobs[b].data, blobs[b].len, &off) != MSGPACK_UNPACK_SUCCESS ||
            u.data.type != MSGPACK_OBJECT_ARRAY) {
            msgpack_unpacked_destroy(&u);
            return weir_err_set(err, WEIR_EPARSE, "%s: corrupt checkpoint state", s->what);
        }
        snprintf(group, sizeof(group), "%s-%d", s->conf->txn_prefix, blobs[b].subtask);
        if (u.data.via.array.size > 0)
            rc = read_marker(s, group, &marker, err);
        for (uint32_t i = 0; i < u.data.via.array.size && rc == 0; i++) {
            const msgpack_object *e = &u.data.via.array.ptr[i];
            if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 2 ||
                e->via.array.ptr[1].type != MSGPACK_OBJECT_BIN)
                continue;
            int64_t m = e->via.array.ptr[0].via.i64;
            if (m <= marker) {
                skipped++;
                continue;                    /* committed before the failure */
            }
            eo_batch_t tmp = { .ckpt = m };
            tmp.recs.data = (char *)e->via.array.ptr[1].via.bin.ptr;
            tmp.recs.len = e->via.array.ptr[1].via.bin.size;
            rc = publish(op, s, &tmp, m, group, err);
            republished++;
        }
        msgpack_unpacked_destroy(&u);
    }
    if (rc == 0 && republished + skipped > 0)
        weir_log_info("%s: checkpoint %lld had %d pending transaction(s): %d committed now, %d "
                      "had been", s->what, (long long)ckpt, republished + skipped, republished,
                      skipped);
    return rc;
}

static int
ksink_finish(weir_op_t *op, weir_batch_t *out, weir_err_t *err)
{
    kafka_sink_t *s = op->self;
    int rc;

    (void)out;
    if (s->conf->delivery == DELIVERY_EXACTLY_ONCE && !op->ctx->final_checkpoint) {
        /* end of a bounded input, no final checkpoint to come: what is
         * pending and what came since, now */
        if ((rc = ksink_notify(op, INT64_MAX, err)) != 0)
            return rc;
        if (s->cur.n > 0 &&
            (rc = publish(op, s, &s->cur, s->last_ckpt + 1, s->txn_id, err)) != 0)
            return rc;
        weir_buf_reset(&s->cur.recs);
        s->cur.n = 0;
    }
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

    if (s->conf->delivery == DELIVERY_EXACTLY_ONCE)
        return ksink_snapshot_eo(s, ckpt, out, err);
    (void)out;
    if (s->conf->delivery == DELIVERY_NONE)
        return wk_producer_poll(&s->prod, err);
    return wk_producer_flush(&s->prod, op->ctx->canceled, err);
}

static void
ksink_close(weir_op_t *op)
{
    kafka_sink_t *s = op->self;

    if (s == NULL)
        return;
    wk_producer_close(&s->prod);
    weir_buf_free(&s->cur.recs);
    for (int i = 0; i < s->npend; i++)
        weir_buf_free(&s->pend[i].recs);
    free(s->pend);
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
    .notify_complete = ksink_notify,
    .restore    = ksink_restore,
};
