/* operators/kafka_common.c -- client configuration and the checked producer
 * shared by the Kafka source (dead letters) and sink. See kafka_common.h. */
#include "kafka_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "registry.h"

void
wk_props_free(wk_props_t *pr)
{
    if (pr == NULL)
        return;
    weir_str_list_free(pr->keys, pr->n);
    weir_str_list_free(pr->vals, pr->n);
    pr->keys = pr->vals = NULL;
    pr->n = 0;
}

bool
wk_props_has(const wk_props_t *pr, const char *key)
{
    for (int i = 0; i < pr->n; i++)
        if (strcmp(pr->keys[i], key) == 0)
            return true;
    return false;
}

int
wk_props_read(const weir_params_t *p, const char *const *reserved, wk_props_t *out,
              weir_err_t *err)
{
    weir_params_t *at = NULL;
    rd_kafka_conf_t *scratch;
    char errstr[512];
    int rc;

    memset(out, 0, sizeof(*out));
    rc = weir_params_map(p, "properties", &out->keys, &out->vals, &at, &out->n, err);
    if (rc != 0)
        return rc;
    if (out->n == 0) {
        free(at);
        return 0;
    }
    scratch = rd_kafka_conf_new();
    if (scratch == NULL) {
        free(at);
        wk_props_free(out);
        return WEIR_ENOMEM;
    }
    for (int i = 0; i < out->n; i++) {
        for (int r = 0; reserved != NULL && reserved[r] != NULL; r++) {
            if (strcmp(out->keys[i], reserved[r]) == 0) {
                rc = weir_params_error(&at[i], NULL, WEIR_EINVAL, err,
                                       "property '%s' is set by weir and cannot be overridden "
                                       "here", out->keys[i]);
                goto done;
            }
        }
        if (strcmp(out->keys[i], "bootstrap.servers") == 0) {
            rc = weir_params_error(&at[i], NULL, WEIR_EINVAL, err,
                                   "give the brokers as the 'bootstrap' parameter, not as "
                                   "property 'bootstrap.servers'");
            goto done;
        }
        if (rd_kafka_conf_set(scratch, out->keys[i], out->vals[i], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
            rc = weir_params_error(&at[i], NULL, WEIR_EINVAL, err, "Kafka property '%s': %s",
                                   out->keys[i], errstr);
            goto done;
        }
    }
    rc = 0;
done:
    rd_kafka_conf_destroy(scratch);
    free(at);
    if (rc != 0)
        wk_props_free(out);
    return rc;
}

rd_kafka_conf_t *
wk_conf_new(const char *bootstrap, const char *const *defaults, const wk_props_t *props,
            const char *what, weir_err_t *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];

    if (conf == NULL) {
        weir_err_set(err, WEIR_ENOMEM, "%s: out of memory", what);
        return NULL;
    }
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK)
        goto fail;
    for (int i = 0; defaults != NULL && defaults[i] != NULL; i += 2)
        if (!wk_props_has(props, defaults[i]) &&
            rd_kafka_conf_set(conf, defaults[i], defaults[i + 1], errstr, sizeof(errstr)) !=
                RD_KAFKA_CONF_OK)
            goto fail;
    for (int i = 0; i < props->n; i++)
        if (rd_kafka_conf_set(conf, props->keys[i], props->vals[i], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK)
            goto fail;
    return conf;

fail:
    weir_err_set(err, WEIR_EINVAL, "%s: %s", what, errstr);
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* ---- the producer ------------------------------------------------------ */

/* Runs in the thread that calls rd_kafka_poll/flush: the task thread. */
static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    wk_producer_t *p = opaque;

    (void)rk;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        p->delivered++;
        return;
    }
    if (p->error == 0) {
        p->error = WEIR_EIO;
        snprintf(p->errmsg, sizeof(p->errmsg), "%s", rd_kafka_err2str(m->err));
    }
}

static const char *const producer_defaults[] = {
    "enable.idempotence", "true",       /* acks=all, no duplicates on retry */
    "linger.ms", "5",
    "batch.size", "1000000",
    "partitioner", "murmur2_random",    /* the Java client's: same key, same partition */
    "message.timeout.ms", "120000",     /* Kafka's delivery.timeout.ms default, as Flink */
    NULL,
};

int
wk_producer_open(wk_producer_t *p, const char *bootstrap, const wk_props_t *props,
                 const char *topic, const char *what, weir_err_t *err)
{
    return wk_producer_open_tx(p, bootstrap, props, topic, what, NULL, 0, err);
}

int
wk_producer_open_tx(wk_producer_t *p, const char *bootstrap, const wk_props_t *props,
                    const char *topic, const char *what, const char *txn_id, int64_t txn_timeout_ms,
                    weir_err_t *err)
{
    rd_kafka_conf_t *conf;
    char errstr[512], tmo[32];

    memset(p, 0, sizeof(*p));
    p->what = what;
    p->topic = strdup(topic);
    if (p->topic == NULL)
        return WEIR_ENOMEM;
    conf = wk_conf_new(bootstrap, producer_defaults, props, what, err);
    if (conf == NULL)
        goto fail;
    if (txn_id != NULL) {
        snprintf(tmo, sizeof(tmo), "%lld", (long long)txn_timeout_ms);
        if (rd_kafka_conf_set(conf, "transactional.id", txn_id, errstr, sizeof(errstr)) ||
            rd_kafka_conf_set(conf, "transaction.timeout.ms", tmo, errstr, sizeof(errstr))) {
            rd_kafka_conf_destroy(conf);
            weir_err_set(err, WEIR_EINVAL, "%s: %s", what, errstr);
            goto fail;
        }
    }
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (p->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        weir_err_set(err, WEIR_EINVAL, "%s: cannot create a producer: %s", what, errstr);
        goto fail;
    }
    p->rkt = rd_kafka_topic_new(p->rk, topic, NULL);
    if (p->rkt == NULL) {
        weir_err_set(err, WEIR_EINVAL, "%s: topic '%s': %s", what, topic,
                     rd_kafka_err2str(rd_kafka_last_error()));
        goto fail;
    }
    if (txn_id != NULL) {
        /* fences every earlier producer with this id (a zombie of a failed
         * attempt) and aborts its open transaction */
        rd_kafka_error_t *e = rd_kafka_init_transactions(p->rk, 30000);
        if (e != NULL) {
            weir_err_set(err, WEIR_EIO, "%s: cannot start transactions as '%s': %s", what,
                         txn_id, rd_kafka_error_string(e));
            rd_kafka_error_destroy(e);
            goto fail;
        }
    }
    return 0;

fail:
    wk_producer_close(p);
    return err != NULL && err->code != 0 ? err->code : WEIR_EINVAL;
}

static int
delivery_error(wk_producer_t *p, weir_err_t *err)
{
    return weir_err_set(err, p->error, "%s: delivery to topic '%s' failed: %s", p->what,
                        p->topic, p->errmsg);
}

int
wk_producer_poll(wk_producer_t *p, weir_err_t *err)
{
    rd_kafka_poll(p->rk, 0);
    return p->error != 0 ? delivery_error(p, err) : 0;
}

int
wk_producer_send(wk_producer_t *p, const void *key, size_t klen, const void *val, size_t vlen,
                 rd_kafka_headers_t *hdrs, volatile int *canceled, weir_err_t *err)
{
    rd_kafka_resp_err_t e;

    if (p->error != 0)
        return delivery_error(p, err);
    for (;;) {
        if (hdrs != NULL)
            e = rd_kafka_producev(p->rk, RD_KAFKA_V_RKT(p->rkt),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)val, vlen),
                                  RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END);
        else
            e = rd_kafka_producev(p->rk, RD_KAFKA_V_RKT(p->rkt),
                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                  RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)val, vlen),
                                  RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
            p->sent++;
            return 0;
        }
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (hdrs != NULL)
                rd_kafka_headers_destroy(hdrs);
            return weir_err_set(err, WEIR_EIO, "%s: cannot produce to topic '%s': %s", p->what,
                                p->topic, rd_kafka_err2str(e));
        }
        /* the local queue is full: the broker is behind. Serve delivery
         * reports (which frees room) and try again: this is backpressure. */
        rd_kafka_poll(p->rk, 50);
        if (p->error != 0) {
            if (hdrs != NULL)
                rd_kafka_headers_destroy(hdrs);
            return delivery_error(p, err);
        }
        if (canceled != NULL && *canceled) {
            if (hdrs != NULL)
                rd_kafka_headers_destroy(hdrs);
            return WEIR_ECANCELED;
        }
    }
}

int
wk_producer_flush(wk_producer_t *p, volatile int *canceled, weir_err_t *err)
{
    while (rd_kafka_outq_len(p->rk) > 0) {
        if (p->error != 0)
            return delivery_error(p, err);
        if (canceled != NULL && *canceled)
            return WEIR_ECANCELED;
        rd_kafka_flush(p->rk, 100);
    }
    rd_kafka_poll(p->rk, 0);
    return p->error != 0 ? delivery_error(p, err) : 0;
}

void
wk_producer_close(wk_producer_t *p)
{
    if (p->rkt != NULL)
        rd_kafka_topic_destroy(p->rkt);
    if (p->rk != NULL) {
        /* undelivered messages (a failed or canceled task) are dropped
         * here; a finished task flushed them first */
        rd_kafka_purge(p->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
        rd_kafka_poll(p->rk, 0);
        rd_kafka_destroy(p->rk);
    }
    free(p->topic);
    p->rk = NULL;
    p->rkt = NULL;
    p->topic = NULL;
}

int
wk_partition_owner(const char *topic, int32_t partition, int parallelism)
{
    /* Java's String.hashCode over the UTF-16 units; topic names are ASCII */
    int32_t h = 0;

    if (parallelism <= 1)
        return 0;
    for (const unsigned char *c = (const unsigned char *)topic; *c != '\0'; c++)
        h = (int32_t)((uint32_t)h * 31u + *c);
    int start = (int)(((uint32_t)h * 31u & 0x7FFFFFFFu) % (uint32_t)parallelism);
    return (start + partition) % parallelism;
}
