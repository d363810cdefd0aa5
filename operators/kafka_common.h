/* operators/kafka_common.h -- what the Kafka source and sink share.
 *
 * Client configuration: `bootstrap` plus a `properties:` mapping passed to
 * librdkafka unchanged (security.protocol, sasl.*, fetch sizes...). The
 * mapping is checked at plan time against librdkafka's own property table
 * (rd_kafka_conf_set on a scratch configuration: no network), so a typo is
 * refused with its file:line:column before anything runs.
 *
 * A producer with delivery reports: the sink and the dead-letter output
 * both need "send, and fail loudly if the broker refuses". Delivery reports
 * are served by rd_kafka_poll() in the task thread, so the first error is
 * kept without locking and returned by the next send or flush.
 */
#ifndef WEIR_OPERATORS_KAFKA_COMMON_H
#define WEIR_OPERATORS_KAFKA_COMMON_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>

#include "operator.h"

typedef struct wk_props {
    int    n;
    char **keys;
    char **vals;
} wk_props_t;

/* Reads the `properties:` mapping of p (may be absent) and validates every
 * entry; names that weir sets itself and must not be overridden (listed in
 * 'reserved', NULL-terminated, may be NULL) are refused. */
int  wk_props_read(const weir_params_t *p, const char *const *reserved, wk_props_t *out,
                   weir_err_t *err);
void wk_props_free(wk_props_t *pr);
bool wk_props_has(const wk_props_t *pr, const char *key);

/* A new librdkafka configuration: bootstrap.servers, then the defaults
 * (NULL-terminated name, value pairs), then the user's properties, which
 * win. NULL with err set on failure. */
rd_kafka_conf_t *wk_conf_new(const char *bootstrap, const char *const *defaults,
                             const wk_props_t *props, const char *what, weir_err_t *err);

typedef struct wk_producer {
    rd_kafka_t       *rk;
    rd_kafka_topic_t *rkt;
    const char       *what;          /* "[job..] kafka sink 'out'" for messages */
    char             *topic;
    int               error;         /* first delivery error, 0 if none */
    char              errmsg[256];
    uint64_t          sent, delivered;
} wk_producer_t;

/* Creates an idempotent producer for topic (acks=all, linger 5 ms, 1 MB
 * batches, murmur2_random partitioner like the Java client). */
int  wk_producer_open(wk_producer_t *p, const char *bootstrap, const wk_props_t *props,
                      const char *topic, const char *what, weir_err_t *err);
/* The same, transactional: transactional.id txn_id, initialized (fencing
 * earlier producers with that id). */
int  wk_producer_open_tx(wk_producer_t *p, const char *bootstrap, const wk_props_t *props,
                         const char *topic, const char *what, const char *txn_id,
                         int64_t txn_timeout_ms, weir_err_t *err);
/* Queues one message (copied). partition may be RD_KAFKA_PARTITION_UA (by
 * key). hdrs may be NULL (ownership passes to librdkafka on success). Waits
 * for room when the local queue is full, returning WEIR_ECANCELED if
 * *canceled becomes set meanwhile. */
int  wk_producer_send(wk_producer_t *p, const void *key, size_t klen, const void *val,
                      size_t vlen, rd_kafka_headers_t *hdrs, volatile int *canceled,
                      weir_err_t *err);
/* Serves delivery reports without waiting; returns a delivery error if any. */
int  wk_producer_poll(wk_producer_t *p, weir_err_t *err);
/* Waits until every queued message is delivered (or failed). */
int  wk_producer_flush(wk_producer_t *p, volatile int *canceled, weir_err_t *err);
void wk_producer_close(wk_producer_t *p);

/* Flink's KafkaTopicPartitionAssigner: the subtask that reads partition of
 * topic, so that partitions of several topics spread over subtasks. */
int  wk_partition_owner(const char *topic, int32_t partition, int parallelism);

#endif
