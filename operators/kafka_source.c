/* operators/kafka_source.c -- the "kafka" source: records from Kafka topics.
 *
 *   - name: transactions
 *     kind: kafka
 *     bootstrap: 127.0.0.1:9092
 *     topic: transactions            # or topics: [a, b]
 *     startup: earliest              # latest | group-offsets | timestamp
 *     startup_timestamp: "2024-01-01 00:00:00"   # with startup: timestamp
 *     stop_at: latest                # bounded: stop at the end offsets seen at start
 *     format: json                   # or raw: columns key, value (bytes)
 *     schema: [{name: account_id, type: int}, ...]
 *     group: fraud-detection         # consumer group for committed offsets
 *     commit_interval: 5s
 *     dead_letter: {topic: transactions-dead-letter}   # or {path: /var/weir/dlq}
 *     properties: {fetch.max.bytes: "52428800"}       # passed to librdkafka
 *
 * Partitions. No consumer-group rebalancing: each subtask computes the
 * partitions it owns with Flink's KafkaTopicPartitionAssigner (a function of
 * topic, partition and parallelism, the same in every process) from the
 * topic metadata at open, and takes them with rd_kafka_assign(). A subtask
 * that owns none idles (or, bounded, finishes at once). The group is used
 * only to store offsets, so standard tools see the job's consumer lag.
 *
 * Offsets. Without checkpoints, the source commits the next offset of every
 * partition it has read to the group every commit_interval and when it
 * stops (asynchronously, never on the record path). With checkpoints, the
 * offsets are part of each checkpoint (the next offset per partition; a
 * restored source seeks there, whatever `startup` says) and are committed
 * to the group when that checkpoint completes, like Flink's KafkaSource:
 * the group's offsets are then for monitoring and `startup: group-offsets`,
 * never for recovery. `startup: latest` is resolved to concrete offsets at
 * open so that a restore before the first record replays nothing it missed.
 *
 * Offset out of range. The broker may delete records before they are read
 * (retention; the embedded broker keeps about 5 MB per partition). The
 * consumer runs with auto.offset.reset=error so that this never passes
 * silently: the source asks the broker for the partition's first offset,
 * logs a warning with how many records were lost, counts them
 * (skipped_out_of_range) and continues at the first offset. A partition with
 * no committed offset under `startup: group-offsets` starts at
 * `group_offsets_reset` (earliest by default) without a warning.
 *
 * Malformed records. With format json, a value that is not a JSON object of
 * the schema (bad JSON, a missing required field, a wrong type, a null
 * value) goes to the dead-letter output with its original bytes, topic,
 * partition, offset and the reason, and is counted; it never stops the job.
 * A dead-letter topic receives the original key and value unchanged, with
 * headers weir.dlq.topic, .partition, .offset, .reason (the Kafka Connect
 * convention); a dead-letter path receives JSON lines in
 * <path>/<source>-<subtask>.jsonl. Without a dead-letter output, malformed
 * records are logged (first, then every 1000th) and counted. A dead-letter
 * topic that cannot be written fails the task: nothing is dropped silently.
 *
 * Hot path. Messages come in batches from the consumer queue
 * (rd_kafka_consume_batch_queue, non-blocking while data is there) and are
 * parsed in place by the JSON row reader straight into the output batch.
 */
#include "registry.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <msgpack.h>

#include "../runtime/core/json_row.h"
#include "../runtime/core/log.h"
#include "../runtime/core/watermark.h"
#include "kafka_common.h"

#define MAX_MSGS       1024
#define META_TIMEOUT   10000     /* ms for metadata and watermark queries */
#define WARN_EVERY     1000

enum { START_EARLIEST, START_LATEST, START_GROUP, START_TIMESTAMP };
enum { FMT_JSON, FMT_RAW };

typedef struct ks_conf {
    char      *bootstrap;
    char     **topics;
    int        ntopics;
    char      *group;
    int        startup;
    int64_t    startup_ts_ms;
    bool       reset_latest;        /* group_offsets_reset: latest */
    bool       bounded;
    int        format;
    int64_t    commit_interval_us;  /* 0 = no commits */
    char      *dlq_topic;
    char      *dlq_path;
    wk_props_t props;
    char      *name;                /* the source node's name */
} ks_conf_t;

typedef struct ks_part {
    int       topic;                /* index into conf->topics */
    int32_t   partition;
    int64_t   start;                /* where reading starts (offset or logical) */
    int64_t   next;                 /* next offset to read; -1 before any */
    int64_t   end;                  /* bounded: stop here */
    int64_t   committed;            /* last 'next' committed; -1 none */
    bool      done;
} ks_part_t;

typedef struct kafka_source {
    const ks_conf_t    *conf;
    const weir_op_config_t *cfg;
    const weir_op_ctx_t *ctx;
    rd_kafka_t         *rk;
    rd_kafka_queue_t   *q;
    weir_json_reader_t *reader;
    ks_part_t          *parts;
    int                 nparts;
    int                 nopen;      /* bounded: partitions not done */
    int               **index;      /* [topic][partition] -> parts index, or -1 */
    int                *nindex;     /* partitions per topic */
    rd_kafka_topic_t   *last_rkt;   /* cache of the topic of the last message */
    int                 last_topic;
    rd_kafka_message_t *msgs[MAX_MSGS];
    int64_t             last_commit_us;
    bool                dirty;      /* offsets moved since the last commit */
    bool                assigned;   /* rd_kafka_assign done (at the first poll) */
    bool                reassign;   /* after an offset reset: assign again */
    /* checkpoints: offsets snapshotted, committed when their checkpoint completes */
    struct { int64_t ckpt; int64_t *next; } snaps[8];
    int                 nsnaps;
    /* dead letters */
    wk_producer_t       dlq;
    bool                dlq_open;
    int                 dlq_fd;
    weir_buf_t          line;
    char                what[256];
    /* counters */
    uint64_t            records;
    uint64_t            dead_lettered;
    uint64_t            skipped_out_of_range;
    bool                records_ok;  /* reached its end (bounded) without an error */
    int64_t             last_lag_us;
    weir_split_metrics_t *split_m;   /* per partition, for the metrics; may be NULL */
} kafka_source_t;

static const char *const ks_params[] = {
    "bootstrap", "topic", "topics", "startup", "startup_timestamp", "group_offsets_reset",
    "stop_at", "format", "schema", "group", "commit_interval", "dead_letter", "properties",
    NULL,
};

/* weir sets these; overriding them would break assignment or loss reports */
static const char *const ks_reserved[] = {
    "group.id", "enable.auto.commit", "enable.auto.offset.store", "enable.partition.eof",
    "auto.offset.reset", NULL,
};

static void
ks_conf_free(void *p)
{
    ks_conf_t *c = p;

    if (c == NULL)
        return;
    free(c->bootstrap);
    weir_str_list_free(c->topics, c->ntopics);
    free(c->group);
    free(c->dlq_topic);
    free(c->dlq_path);
    free(c->name);
    wk_props_free(&c->props);
    free(c);
}

static int
read_choice(const weir_params_t *p, const char *key, const char *def, const char *const *names,
            int *out, weir_err_t *err)
{
    char *v = NULL;
    int rc = weir_params_opt_str(p, key, def, &v, err);

    if (rc != 0)
        return rc;
    for (int i = 0; names[i] != NULL; i++) {
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            free(v);
            return 0;
        }
    }
    char list[256] = "";
    for (int i = 0; names[i] != NULL; i++)
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
                 names[i]);
    rc = weir_params_error(p, key, WEIR_EINVAL, err, "'%s' must be one of %s, not '%s'", key,
                           list, v);
    free(v);
    return rc;
}

static int
read_dead_letter(const weir_params_t *p, ks_conf_t *c, weir_err_t *err)
{
    static const char *const dl_keys[] = { "topic", "path", NULL };
    weir_params_t dl;
    int rc;

    if (!weir_params_has(p, "dead_letter"))
        return 0;
    if ((rc = weir_params_child(p, "dead_letter", false, &dl, err)) != 0)
        return rc;
    if (!weir_params_is_map(&dl))
        return weir_params_error(p, "dead_letter", WEIR_ETYPE, err,
                                 "'dead_letter' must be a mapping: {topic: T} or {path: DIR}");
    for (int i = 0; weir_params_common_keys[i] != NULL; i++)
        if (weir_params_has(&dl, weir_params_common_keys[i]))
            return weir_params_error(&dl, weir_params_common_keys[i], WEIR_EINVAL, err,
                                     "unknown key '%s' in 'dead_letter' (topic or path)",
                                     weir_params_common_keys[i]);
    if ((rc = weir_params_check_keys(&dl, dl_keys, err)) != 0)
        return rc;
    if ((rc = weir_params_opt_str(&dl, "topic", NULL, &c->dlq_topic, err)) != 0 ||
        (rc = weir_params_opt_str(&dl, "path", NULL, &c->dlq_path, err)) != 0)
        return rc;
    if ((c->dlq_topic == NULL) == (c->dlq_path == NULL))
        return weir_params_error(p, "dead_letter", WEIR_EINVAL, err,
                                 "'dead_letter' needs exactly one of 'topic' or 'path'");
    if ((c->dlq_topic != NULL && c->dlq_topic[0] == '\0') ||
        (c->dlq_path != NULL && c->dlq_path[0] == '\0'))
        return weir_params_error(&dl, c->dlq_topic != NULL ? "topic" : "path", WEIR_EINVAL,
                                 err, "the dead-letter %s must not be empty",
                                 c->dlq_topic != NULL ? "topic" : "path");
    for (int i = 0; c->dlq_topic != NULL && i < c->ntopics; i++)
        if (strcmp(c->dlq_topic, c->topics[i]) == 0)
            return weir_params_error(&dl, "topic", WEIR_EINVAL, err,
                                     "the dead-letter topic must not be a topic the source "
                                     "reads ('%s')", c->dlq_topic);
    return 0;
}

static int
ks_configure(weir_op_config_t *cfg, weir_err_t *err)
{
    static const char *const startups[] = { "earliest", "latest", "group-offsets", "timestamp",
                                            NULL };
    static const char *const resets[] = { "earliest", "latest", NULL };
    static const char *const stops[] = { "none", "latest", NULL };
    static const char *const formats[] = { "json", "raw", NULL };
    const weir_params_t *p = &cfg->params;
    weir_schema_t *schema = NULL;
    ks_conf_t *c;
    int stop = 0, reset = 0, rc;
    int64_t ival;

    if ((rc = weir_params_check_keys(p, ks_params, err)) != 0)
        return rc;
    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->name = strdup(cfg->name)) == NULL) {
        free(c);
        return WEIR_ENOMEM;
    }
    if ((rc = weir_params_req_str(p, "bootstrap", &c->bootstrap, err)) != 0)
        goto fail;
    if (c->bootstrap[0] == '\0') {
        rc = weir_params_error(p, "bootstrap", WEIR_EINVAL, err,
                               "'bootstrap' is empty (is KAFKA_BOOTSTRAP set?)");
        goto fail;
    }
    if (weir_params_has(p, "topic") == weir_params_has(p, "topics")) {
        rc = weir_params_error(p, NULL, WEIR_EINVAL, err,
                               "a kafka source needs exactly one of 'topic' or 'topics'");
        goto fail;
    }
    rc = weir_params_str_list(p, weir_params_has(p, "topic") ? "topic" : "topics", true,
                              &c->topics, &c->ntopics, err);
    if (rc != 0)
        goto fail;
    for (int i = 0; i < c->ntopics; i++) {
        if (c->topics[i][0] == '\0' || strlen(c->topics[i]) > 249) {
            rc = weir_params_error(p, weir_params_has(p, "topic") ? "topic" : "topics",
                                   WEIR_EINVAL, err, "topic names are 1 to 249 characters");
            goto fail;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(c->topics[i], c->topics[j]) == 0) {
                rc = weir_params_error(p, "topics", WEIR_EINVAL, err,
                                       "topic '%s' is listed twice", c->topics[i]);
                goto fail;
            }
    }
    if ((rc = read_choice(p, "startup", "group-offsets", startups, &c->startup, err)) != 0 ||
        (rc = read_choice(p, "group_offsets_reset", "earliest", resets, &reset, err)) != 0 ||
        (rc = read_choice(p, "stop_at", "none", stops, &stop, err)) != 0 ||
        (rc = read_choice(p, "format", "json", formats, &c->format, err)) != 0)
        goto fail;
    c->reset_latest = reset == 1;
    c->bounded = stop == 1;
    if (c->startup == START_TIMESTAMP) {
        char *ts = NULL;
        int64_t us;

        if ((rc = weir_params_req_str(p, "startup_timestamp", &ts, err)) != 0)
            goto fail;
        char *end;
        errno = 0;
        long long ms = strtoll(ts, &end, 10);
        if (*ts != '\0' && *end == '\0' && errno == 0 && ms >= 0) {
            c->startup_ts_ms = ms;
        } else if (weir_ts_parse(ts, strlen(ts), &us) == 0 && us >= 0) {
            c->startup_ts_ms = us / 1000;
        } else {
            free(ts);
            rc = weir_params_error(p, "startup_timestamp", WEIR_EINVAL, err,
                                   "'startup_timestamp' must be epoch milliseconds or a "
                                   "timestamp like \"2024-01-01 00:00:00\"");
            goto fail;
        }
        free(ts);
    } else if (weir_params_has(p, "startup_timestamp")) {
        rc = weir_params_error(p, "startup_timestamp", WEIR_EINVAL, err,
                               "'startup_timestamp' needs 'startup: timestamp'");
        goto fail;
    }
    if (weir_params_has(p, "group")) {
        if ((rc = weir_params_req_str(p, "group", &c->group, err)) != 0)
            goto fail;
        if (c->group[0] == '\0') {
            rc = weir_params_error(p, "group", WEIR_EINVAL, err, "'group' must not be empty");
            goto fail;
        }
    } else {
        /* one group per source of a job: two sources on one topic must not
         * overwrite each other's offsets */
        const char *job = p->jf != NULL && p->jf->name != NULL ? p->jf->name : "job";
        size_t n = strlen(job) + strlen(cfg->name) + 8;
        if ((c->group = malloc(n)) == NULL) {
            rc = WEIR_ENOMEM;
            goto fail;
        }
        snprintf(c->group, n, "weir-%s-%s", job, cfg->name);
    }
    if ((rc = weir_params_opt_duration(p, "commit_interval", 5000000, &ival, err)) != 0)
        goto fail;
    if (ival < 0) {
        rc = weir_params_error(p, "commit_interval", WEIR_ERANGE, err,
                               "'commit_interval' must not be negative (0 turns commits off)");
        goto fail;
    }
    c->commit_interval_us = ival;
    if ((rc = wk_props_read(p, ks_reserved, &c->props, err)) != 0)
        goto fail;
    if ((rc = read_dead_letter(p, c, err)) != 0)
        goto fail;
    if (c->format == FMT_JSON) {
        if (!weir_params_has(p, "schema")) {
            rc = weir_params_error(p, NULL, WEIR_EINVAL, err,
                                   "a kafka source with format json needs a 'schema'");
            goto fail;
        }
        if ((rc = weir_params_schema(p, "schema", &schema, err)) != 0)
            goto fail;
    } else {
        if (weir_params_has(p, "schema")) {
            rc = weir_params_error(p, "schema", WEIR_EINVAL, err,
                                   "format raw has a fixed schema (key, value as bytes); "
                                   "drop 'schema'");
            goto fail;
        }
        if (c->dlq_topic != NULL || c->dlq_path != NULL) {
            rc = weir_params_error(p, "dead_letter", WEIR_EINVAL, err,
                                   "format raw never dead-letters a record; drop "
                                   "'dead_letter'");
            goto fail;
        }
        schema = weir_schema_new(2);
        if (schema == NULL) {
            rc = WEIR_ENOMEM;
            goto fail;
        }
        weir_schema_set(schema, 0, "key", WEIR_T_BYTES, true);
        weir_schema_set(schema, 1, "value", WEIR_T_BYTES, true);
    }
    cfg->output_schema = schema;
    cfg->conf = c;
    return 0;

fail:
    ks_conf_free(c);
    return rc;
}

/* ---- open: metadata, assignment, start offsets -------------------------- */

static const char *
topic_of(const kafka_source_t *s, int t)
{
    return s->conf->topics[t];
}

/* The parts index of (rkt, partition), or -1. */
static int
part_of(kafka_source_t *s, rd_kafka_topic_t *rkt, int32_t partition)
{
    int t = -1;

    if (rkt == NULL)
        return -1;
    if (rkt == s->last_rkt) {
        t = s->last_topic;
    } else {
        const char *name = rd_kafka_topic_name(rkt);
        for (int i = 0; i < s->conf->ntopics; i++)
            if (strcmp(name, s->conf->topics[i]) == 0)
                t = i;
        if (t < 0)
            return -1;
        s->last_rkt = rkt;
        s->last_topic = t;
    }
    if (partition < 0 || partition >= s->nindex[t])
        return -1;
    return s->index[t][partition];
}

static int
topic_partitions(kafka_source_t *s, int t, int *n, weir_err_t *err)
{
    const char *topic = topic_of(s, t);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(s->rk, topic, NULL);
    rd_kafka_resp_err_t e;

    if (rkt == NULL)
        return weir_err_set(err, WEIR_EINVAL, "%s: topic '%s': %s", s->what, topic,
                            rd_kafka_err2str(rd_kafka_last_error()));
    e = rd_kafka_metadata(s->rk, 0, rkt, &md, META_TIMEOUT);
    rd_kafka_topic_destroy(rkt);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return weir_err_set(err, WEIR_EIO, "%s: cannot read the metadata of topic '%s' from %s: %s",
                            s->what, topic, s->conf->bootstrap, rd_kafka_err2str(e));
    if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        e = md->topic_cnt == 1 ? md->topics[0].err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        rd_kafka_metadata_destroy(md);
        if (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            return weir_err_set(err, WEIR_ENOENT, "%s: topic '%s' does not exist on %s",
                                s->what, topic, s->conf->bootstrap);
        return weir_err_set(err, WEIR_EIO, "%s: topic '%s': %s", s->what, topic,
                            rd_kafka_err2str(e));
    }
    *n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return 0;
}

static void
on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t e, rd_kafka_topic_partition_list_t *offsets,
          void *opaque)
{
    kafka_source_t *s = opaque;

    (void)rk;
    (void)offsets;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__NO_OFFSET)
        weir_log_warn("%s: committing offsets to group '%s' failed: %s", s->what,
                      s->conf->group, rd_kafka_err2str(e));
}

static int
create_consumer(kafka_source_t *s, weir_err_t *err)
{
    const ks_conf_t *c = s->conf;
    char client_id[256], errstr[512];
    const char *defaults[] = {
        "client.id", client_id,
        "group.id", c->group,
        "enable.auto.commit", "false",
        "enable.auto.offset.store", "false",
        "enable.partition.eof", "true",
        "auto.offset.reset", "error",
        "isolation.level", "read_committed",
        /* a fetch that finds nothing waits this long for data: 100 ms keeps
         * a trickle's latency low for a little idle polling */
        "fetch.wait.max.ms", "100",
        NULL,
    };
    rd_kafka_conf_t *conf;

    snprintf(client_id, sizeof(client_id), "weir-%s-%d", c->name, s->ctx->subtask);
    conf = wk_conf_new(c->bootstrap, defaults, &c->props, s->what, err);
    if (conf == NULL)
        return err->code;
    rd_kafka_conf_set_opaque(conf, s);
    rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
    s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (s->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return weir_err_set(err, WEIR_EINVAL, "%s: cannot create a consumer: %s", s->what,
                            errstr);
    }
    rd_kafka_poll_set_consumer(s->rk);
    s->q = rd_kafka_queue_get_consumer(s->rk);
    return 0;
}

static void check_done_at_start(kafka_source_t *s, ks_part_t *pt);

/* Finds the owned partitions and where each starts (and, bounded, ends). */
static int
assign(kafka_source_t *s, weir_err_t *err)
{
    const ks_conf_t *c = s->conf;
    rd_kafka_topic_partition_list_t *list = NULL;
    int rc = 0;

    s->index = calloc((size_t)c->ntopics, sizeof(*s->index));
    s->nindex = calloc((size_t)c->ntopics, sizeof(*s->nindex));
    if (s->index == NULL || s->nindex == NULL)
        return WEIR_ENOMEM;
    for (int t = 0; t < c->ntopics; t++) {
        int n = 0;

        if ((rc = topic_partitions(s, t, &n, err)) != 0)
            return rc;
        s->index[t] = malloc(sizeof(int) * (size_t)(n > 0 ? n : 1));
        if (s->index[t] == NULL)
            return WEIR_ENOMEM;
        s->nindex[t] = n;
        for (int32_t p = 0; p < n; p++) {
            s->index[t][p] = -1;
            if (wk_partition_owner(topic_of(s, t), p, s->ctx->parallelism) != s->ctx->subtask)
                continue;
            ks_part_t *np = realloc(s->parts, sizeof(*np) * (size_t)(s->nparts + 1));
            if (np == NULL)
                return WEIR_ENOMEM;
            s->parts = np;
            s->parts[s->nparts] = (ks_part_t){ .topic = t, .partition = p, .next = -1,
                                               .end = -1, .committed = -1 };
            s->index[t][p] = s->nparts++;
        }
    }
    list = rd_kafka_topic_partition_list_new(s->nparts > 0 ? s->nparts : 1);
    if (list == NULL)
        return WEIR_ENOMEM;
    for (int i = 0; i < s->nparts; i++) {
        ks_part_t *pt = &s->parts[i];
        rd_kafka_topic_partition_t *tp =
            rd_kafka_topic_partition_list_add(list, topic_of(s, pt->topic), pt->partition);

        switch (c->startup) {
        case START_EARLIEST:  tp->offset = RD_KAFKA_OFFSET_BEGINNING; break;
        case START_LATEST:    tp->offset = RD_KAFKA_OFFSET_END; break;
        case START_GROUP:     tp->offset = RD_KAFKA_OFFSET_STORED; break;
        case START_TIMESTAMP: tp->offset = c->startup_ts_ms; break;
        }
    }
    if (c->startup == START_TIMESTAMP && s->nparts > 0) {
        rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(s->rk, list, META_TIMEOUT);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = weir_err_set(err, WEIR_EIO, "%s: cannot find the offsets for the start time: %s",
                              s->what, rd_kafka_err2str(e));
            goto out;
        }
    }
    if (c->startup == START_GROUP && s->nparts > 0) {
        /* the group's offsets now, as concrete offsets: a partition without
         * one starts per group_offsets_reset (resolved below) */
        rd_kafka_resp_err_t e = rd_kafka_committed(s->rk, list, META_TIMEOUT);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = weir_err_set(err, WEIR_EIO, "%s: cannot read the offsets of group '%s': %s",
                              s->what, c->group, rd_kafka_err2str(e));
            goto out;
        }
    }
    for (int i = 0; i < s->nparts; i++) {
        ks_part_t *pt = &s->parts[i];
        int64_t lo = 0, hi = 0;
        bool unresolved;

        pt->start = list->elems[i].offset;
        /* latest, a start time after the last record, a group without an
         * offset for this partition: resolved to a concrete offset now */
        unresolved = c->startup == START_LATEST ||
                     (c->startup == START_TIMESTAMP && pt->start < 0) ||
                     (c->startup == START_GROUP && pt->start < 0);
        if (!c->bounded && !unresolved && c->startup != START_GROUP)
            continue;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
            s->rk, topic_of(s, pt->topic), pt->partition, &lo, &hi, META_TIMEOUT);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = weir_err_set(err, WEIR_EIO, "%s: cannot read the offsets of %s[%d]: %s",
                              s->what, topic_of(s, pt->topic), (int)pt->partition,
                              rd_kafka_err2str(e));
            goto out;
        }
        /* concrete, so that a checkpoint taken before any record arrives
         * brings a restored source back here, not to a later end */
        if (c->startup == START_GROUP && pt->start < 0) {
            pt->start = c->reset_latest ? hi : lo;
            weir_log_info("%s: %s[%d]: group '%s' has no offset; starting at the %s (%" PRId64
                          ")", s->what, topic_of(s, pt->topic), (int)pt->partition, c->group,
                          c->reset_latest ? "end" : "beginning", pt->start);
        } else if (c->startup == START_GROUP && pt->start < lo) {
            uint64_t lost = (uint64_t)(lo - pt->start);
            s->skipped_out_of_range += lost;
            weir_log_warn("%s: %s[%d]: group '%s' is at offset %" PRId64 ", no longer on the "
                          "broker (the first is %" PRId64 "): %" PRIu64 " records were deleted "
                          "before they were read (retention); starting at %" PRId64, s->what,
                          topic_of(s, pt->topic), (int)pt->partition, c->group, pt->start, lo,
                          lost, lo);
            pt->start = lo;
        } else if (c->startup == START_GROUP && pt->start > hi) {
            weir_log_warn("%s: %s[%d]: group '%s' is at offset %" PRId64 ", beyond the end (%"
                          PRId64 "; was the topic recreated?); starting at the first offset %"
                          PRId64, s->what, topic_of(s, pt->topic), (int)pt->partition, c->group,
                          pt->start, hi, lo);
            pt->start = lo;
        } else if (unresolved) {
            if (c->startup == START_TIMESTAMP && hi > lo)
                weir_log_warn("%s: %s[%d]: no record at or after the start time (or the broker "
                              "cannot look offsets up by time, as weir-kafka cannot); starting "
                              "at the end (%" PRId64 ")", s->what, topic_of(s, pt->topic),
                              (int)pt->partition, hi);
            pt->start = hi;
        }
        pt->end = hi;
    }
    s->nopen = s->nparts;
    if (c->bounded)
        for (int i = 0; i < s->nparts; i++)
            check_done_at_start(s, &s->parts[i]);
    weir_log_info("%s: %d partition(s) of %d topic(s), group '%s'%s", s->what, s->nparts,
                  c->ntopics, c->group, c->bounded ? ", bounded" : "");
out:
    rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

/* Bounded: a partition with nothing to read from its start is done. */
static void
check_done_at_start(kafka_source_t *s, ks_part_t *pt)
{
    if (pt->done)
        return;
    if (pt->end == 0 || (pt->start >= 0 && pt->start >= pt->end)) {
        pt->done = true;
        s->nopen--;
    }
}

/* The assignment, at the first poll (after a restore changed the starts). */
static int
do_assign(kafka_source_t *s, weir_err_t *err)
{
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_resp_err_t e;

    s->assigned = true;
    if (s->nparts == 0)
        return 0;
    list = rd_kafka_topic_partition_list_new(s->nparts);
    if (list == NULL)
        return WEIR_ENOMEM;
    for (int i = 0; i < s->nparts; i++) {
        ks_part_t *pt = &s->parts[i];
        if (pt->done)
            continue;
        rd_kafka_topic_partition_list_add(list, topic_of(s, pt->topic), pt->partition)->offset =
            pt->start;
    }
    e = list->cnt > 0 ? rd_kafka_assign(s->rk, list) : RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_topic_partition_list_destroy(list);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return weir_err_set(err, WEIR_EIO, "%s: cannot assign partitions: %s", s->what,
                            rd_kafka_err2str(e));
    return 0;
}

static int
open_dead_letter(weir_op_t *op, kafka_source_t *s, weir_err_t *err)
{
    const ks_conf_t *c = s->conf;

    s->dlq_fd = -1;
    if (c->dlq_topic != NULL) {
        int rc = wk_producer_open(&s->dlq, c->bootstrap, &c->props, c->dlq_topic, s->what, err);
        if (rc != 0)
            return rc;
        s->dlq_open = true;
    } else if (c->dlq_path != NULL) {
        char file[4096];

        if (mkdir(c->dlq_path, 0755) != 0 && errno != EEXIST)
            return weir_err_set(err, WEIR_EIO, "%s: cannot create the dead-letter directory "
                                "'%s': %s", s->what, c->dlq_path, strerror(errno));
        snprintf(file, sizeof(file), "%s/%s-%d.jsonl", c->dlq_path, c->name, op->ctx->subtask);
        s->dlq_fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (s->dlq_fd < 0)
            return weir_err_set(err, WEIR_EIO, "%s: cannot open the dead-letter file '%s': %s",
                                s->what, file, strerror(errno));
    }
    return 0;
}

static void ks_close(weir_op_t *op);

static int
ks_open(weir_op_t *op, weir_err_t *err)
{
    kafka_source_t *s = calloc(1, sizeof(*s));
    int rc;

    if (s == NULL)
        return WEIR_ENOMEM;
    s->conf = op->cfg->conf;
    s->cfg = op->cfg;
    s->ctx = op->ctx;
    s->dlq_fd = -1;
    s->last_commit_us = weir_now_us();
    snprintf(s->what, sizeof(s->what), "%s kafka source '%s'", op->ctx->log_prefix,
             s->conf->name);
    op->self = s;
    if (s->conf->format == FMT_JSON &&
        (rc = weir_json_reader_create(op->cfg->output_schema, &s->reader)) != 0)
        goto fail;
    if ((rc = open_dead_letter(op, s, err)) != 0 ||
        (rc = create_consumer(s, err)) != 0 ||
        (rc = assign(s, err)) != 0)
        goto fail;
    /* event time per partition (Flink's per-split watermarks), and the
     * partitions' offsets and lags for the metrics */
    if (op->ctx->wm != NULL &&
        (rc = weir_wm_gen_splits(op->ctx->wm, s->nparts, weir_mono_us())) != 0)
        goto fail;
    if (op->ctx->metrics != NULL && s->nparts > 0 &&
        (s->split_m = weir_metrics_splits(op->ctx->metrics, s->nparts)) != NULL) {
        for (int i = 0; i < s->nparts; i++) {
            snprintf(s->split_m[i].topic, sizeof(s->split_m[i].topic), "%s",
                     topic_of(s, s->parts[i].topic));
            s->split_m[i].partition = s->parts[i].partition;
        }
        weir_metrics_splits_publish(op->ctx->metrics, s->nparts);
    }
    return 0;

fail:
    if (rc == WEIR_ENOMEM && err != NULL && err->code == 0)
        weir_err_set(err, rc, "%s: out of memory", s->what);
    ks_close(op);
    return rc;
}

/* ---- commits ------------------------------------------------------------ */

static void
commit(kafka_source_t *s, bool force)
{
    rd_kafka_topic_partition_list_t *list;

    if (s->conf->commit_interval_us == 0 || !s->dirty || s->ctx->checkpoint_interval_us > 0)
        return;
    if (!force && weir_now_us() - s->last_commit_us < s->conf->commit_interval_us)
        return;
    list = rd_kafka_topic_partition_list_new(s->nparts);
    if (list == NULL)
        return;
    for (int i = 0; i < s->nparts; i++) {
        ks_part_t *pt = &s->parts[i];

        if (pt->next >= 0 && pt->next != pt->committed) {
            rd_kafka_topic_partition_list_add(list, topic_of(s, pt->topic), pt->partition)
                ->offset = pt->next;
            pt->committed = pt->next;
        }
    }
    if (list->cnt > 0)
        rd_kafka_commit(s->rk, list, 1);
    rd_kafka_topic_partition_list_destroy(list);
    s->dirty = false;
    s->last_commit_us = weir_now_us();
}

/* ---- records ------------------------------------------------------------ */

static void
mark_read(kafka_source_t *s, ks_part_t *pt, int64_t next)
{
    if (next > pt->next) {
        pt->next = next;
        s->dirty = true;
        if (s->split_m != NULL)
            weir_metric_set(&s->split_m[pt - s->parts].offset, next);
    }
    if (s->conf->bounded && !pt->done && pt->next >= pt->end) {
        pt->done = true;
        s->nopen--;
    }
}

static int
dead_letter(kafka_source_t *s, const rd_kafka_message_t *m, const char *reason, weir_err_t *err)
{
    const char *topic = rd_kafka_topic_name(m->rkt);
    int rc;

    s->dead_lettered++;
    if (s->ctx->metrics != NULL)
        weir_metric_add(&s->ctx->metrics->dead_lettered, 1);
    if (s->dead_lettered % WARN_EVERY == 1)
        weir_log_warn("%s: %s[%d]@%" PRId64 ": malformed record (%" PRIu64 " so far)%s: %s",
                      s->what, topic, (int)m->partition, m->offset, s->dead_lettered,
                      s->dlq_open || s->dlq_fd >= 0 ? ", dead-lettered" : "", reason);
    if (s->dlq_open) {
        rd_kafka_headers_t *h = rd_kafka_headers_new(4);
        char num[32];

        if (h == NULL)
            return weir_err_set(err, WEIR_ENOMEM, "%s: out of memory", s->what);
        rd_kafka_header_add(h, "weir.dlq.topic", -1, topic, -1);
        snprintf(num, sizeof(num), "%d", (int)m->partition);
        rd_kafka_header_add(h, "weir.dlq.partition", -1, num, -1);
        snprintf(num, sizeof(num), "%" PRId64, m->offset);
        rd_kafka_header_add(h, "weir.dlq.offset", -1, num, -1);
        rd_kafka_header_add(h, "weir.dlq.reason", -1, reason, -1);
        return wk_producer_send(&s->dlq, m->key, m->key_len, m->payload, m->len, h,
                                s->ctx->canceled, err);
    }
    if (s->dlq_fd >= 0) {
        weir_buf_t *b = &s->line;

        weir_buf_reset(b);
        rc = weir_buf_appendf(b, "{\"topic\":");
        rc = rc ? rc : weir_buf_append_json_str(b, topic, strlen(topic));
        rc = rc ? rc : weir_buf_appendf(b, ",\"partition\":%d,\"offset\":%" PRId64
                                        ",\"reason\":", (int)m->partition, m->offset);
        rc = rc ? rc : weir_buf_append_json_str(b, reason, strlen(reason));
        rc = rc ? rc : weir_buf_appendf(b, ",\"key\":");
        if (m->key != NULL)
            rc = rc ? rc : weir_buf_append_json_str(b, m->key, m->key_len);
        else
            rc = rc ? rc : weir_buf_appendf(b, "null");
        rc = rc ? rc : weir_buf_appendf(b, ",\"value\":");
        if (m->payload != NULL)
            rc = rc ? rc : weir_buf_append_json_str(b, m->payload, m->len);
        else
            rc = rc ? rc : weir_buf_appendf(b, "null");
        rc = rc ? rc : weir_buf_appendf(b, "}\n");
        if (rc != 0)
            return weir_err_set(err, WEIR_ENOMEM, "%s: out of memory", s->what);
        for (size_t off = 0; off < b->len;) {
            ssize_t w = write(s->dlq_fd, b->data + off, b->len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return weir_err_set(err, WEIR_EIO, "%s: cannot write the dead-letter file: %s",
                                    s->what, strerror(errno));
            off += (size_t)w;
        }
    }
    return 0;
}

static int
one_record(kafka_source_t *s, const rd_kafka_message_t *m, weir_batch_t *out, weir_err_t *err)
{
    weir_err_t perr;
    int rc;

    if (s->conf->format == FMT_RAW) {
        weir_value_t *row = weir_batch_append(out);
        if (row == NULL)
            return WEIR_ENOMEM;
        row[0] = m->key != NULL ? weir_value_bytes(m->key, (uint32_t)m->key_len)
                                : weir_value_null(WEIR_T_BYTES);
        row[1] = m->payload != NULL ? weir_value_bytes(m->payload, (uint32_t)m->len)
                                    : weir_value_null(WEIR_T_BYTES);
        if (weir_batch_own(out, &row[0]) != 0 || weir_batch_own(out, &row[1]) != 0) {
            weir_batch_pop(out);
            return WEIR_ENOMEM;
        }
        s->records++;
        return 0;
    }
    if (m->payload == NULL)
        return dead_letter(s, m, "the record has no value (a tombstone)", err);
    perr.code = 0;
    perr.msg[0] = '\0';
    rc = weir_json_reader_parse(s->reader, m->payload, m->len, out, &perr);
    if (rc == WEIR_ENOMEM)
        return weir_err_set(err, rc, "%s: out of memory", s->what);
    if (rc != 0)
        return dead_letter(s, m, perr.msg[0] ? perr.msg : weir_strerror(rc), err);
    s->records++;
    return 0;
}

/* A record's event time: the watermark field, or the message timestamp
 * (CreateTime or LogAppendTime, as Flink's Kafka source takes it). */
static void
event_time(kafka_source_t *s, int part, const rd_kafka_message_t *m, const weir_value_t *row)
{
    const weir_wm_conf_t *w = &s->cfg->watermark;
    int64_t ts;

    if (w->on && w->field >= 0) {
        if (row[w->field].null)
            return;
        ts = row[w->field].u.i;
    } else {
        rd_kafka_timestamp_type_t type;
        int64_t ms = rd_kafka_message_timestamp(m, &type);
        if (type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE || ms < 0)
            return;
        ts = ms * 1000;
    }
    if (s->ctx->wm != NULL)
        weir_wm_observe(s->ctx->wm, part, ts);
    if (s->ctx->metrics != NULL)
        weir_metric_set(&s->ctx->metrics->event_time_us, ts);
}

/* The broker no longer has (or never had) the offset the partition is at. */
static int
out_of_range(kafka_source_t *s, ks_part_t *pt, int64_t at, weir_err_t *err)
{
    const char *topic = topic_of(s, pt->topic);
    int64_t lo = 0, hi = 0, target;
    rd_kafka_resp_err_t qe;

    qe = rd_kafka_query_watermark_offsets(s->rk, topic, pt->partition, &lo, &hi, META_TIMEOUT);
    if (qe != RD_KAFKA_RESP_ERR_NO_ERROR)
        return weir_err_set(err, WEIR_EIO, "%s: %s[%d]: offset %" PRId64 " is out of range and "
                            "the partition's offsets cannot be read: %s", s->what, topic,
                            (int)pt->partition, at, rd_kafka_err2str(qe));
    if (pt->next < 0 && at < 0) {
        /* no committed offset for the group: the configured reset */
        target = s->conf->reset_latest ? hi : lo;
        weir_log_info("%s: %s[%d]: group '%s' has no offset; starting at the %s (%" PRId64 ")",
                      s->what, topic, (int)pt->partition, s->conf->group,
                      s->conf->reset_latest ? "end" : "beginning", target);
    } else {
        if (at < 0)
            at = pt->next;
        if (at < lo) {
            uint64_t lost = (uint64_t)(lo - at);
            s->skipped_out_of_range += lost;
            weir_log_warn("%s: %s[%d]: offset %" PRId64 " is no longer on the broker (the first "
                          "is %" PRId64 "): %" PRIu64 " records were deleted before they were "
                          "read (retention); continuing at %" PRId64 " (%" PRIu64 " skipped in "
                          "all)", s->what, topic, (int)pt->partition, at, lo, lost, lo,
                          s->skipped_out_of_range);
            target = lo;
        } else {
            weir_log_warn("%s: %s[%d]: offset %" PRId64 " is beyond the end (%" PRId64 "; was "
                          "the topic recreated?); continuing at the first offset %" PRId64,
                          s->what, topic, (int)pt->partition, at, hi, lo);
            target = lo;
        }
    }
    /* the fetcher of a partition whose reset failed is stopped: it takes
     * a new assignment to move it (a seek is refused), done after this
     * batch so that no record already fetched is read twice */
    pt->next = target;
    pt->start = target;
    s->dirty = true;
    s->reassign = true;
    if (s->conf->bounded && !pt->done && target >= pt->end) {
        pt->done = true;
        s->nopen--;
    }
    return 0;
}

/* Assigns every partition not done again at its next offset. */
static int
reassign(kafka_source_t *s, weir_err_t *err)
{
    for (int i = 0; i < s->nparts; i++)
        if (s->parts[i].next >= 0)
            s->parts[i].start = s->parts[i].next;
    s->reassign = false;
    return do_assign(s, err);
}

static int
consumer_error(kafka_source_t *s, const rd_kafka_message_t *m, weir_err_t *err)
{
    int i = part_of(s, m->rkt, m->partition);

    switch (m->err) {
    case RD_KAFKA_RESP_ERR__PARTITION_EOF:
        if (i >= 0)
            mark_read(s, &s->parts[i], m->offset);
        return 0;
    case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET:
    case RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
        if (i < 0)
            break;
        return out_of_range(s, &s->parts[i], s->parts[i].next >= 0 ? s->parts[i].next
                            : s->parts[i].start >= 0 ? s->parts[i].start : m->offset, err);
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR__FATAL:
        return weir_err_set(err, WEIR_EIO, "%s: %s", s->what, rd_kafka_message_errstr(m));
    default:
        break;
    }
    /* transport errors and the like: librdkafka retries by itself */
    weir_log_warn("%s: %s", s->what, rd_kafka_message_errstr(m));
    return 0;
}

/* pendingRecords: how far behind the partitions' ends the source is, from
 * the watermarks librdkafka caches with each fetch (no request); once a
 * second. */
static void
lag(kafka_source_t *s)
{
    int64_t now = weir_now_us(), total = 0;

    if (s->ctx->metrics == NULL || now - s->last_lag_us < 1000000)
        return;
    s->last_lag_us = now;
    for (int i = 0; i < s->nparts; i++) {
        const ks_part_t *pt = &s->parts[i];
        int64_t lo = -1, hi = -1;
        if (pt->next < 0 ||
            rd_kafka_get_watermark_offsets(s->rk, topic_of(s, pt->topic), pt->partition, &lo,
                                           &hi) != RD_KAFKA_RESP_ERR_NO_ERROR || hi < 0)
            continue;
        if (hi > pt->next)
            total += hi - pt->next;
        if (s->split_m != NULL)
            weir_metric_set(&s->split_m[i].pending, hi > pt->next ? hi - pt->next : 0);
    }
    weir_metric_set(&s->ctx->metrics->pending_records, total);
}

static int
finish_bounded(kafka_source_t *s, weir_err_t *err)
{
    int rc = 0;

    if (s->dlq_open)
        rc = wk_producer_flush(&s->dlq, s->ctx->canceled, err);
    commit(s, true);
    s->records_ok = true;
    weir_log_info("%s: reached the end offsets: %" PRIu64 " records, %" PRIu64
                  " dead-lettered, %" PRIu64 " lost to retention", s->what, s->records,
                  s->dead_lettered, s->skipped_out_of_range);
    return rc != 0 ? rc : WEIR_EOS;
}

static int
ks_poll(weir_op_t *op, weir_batch_t *out, int max, int64_t *idle_us, weir_err_t *err)
{
    kafka_source_t *s = op->self;
    int rc = 0;
    ssize_t n;

    if (!s->assigned && (rc = do_assign(s, err)) != 0)
        return rc;
    if (s->conf->bounded && s->nopen == 0)
        return finish_bounded(s, err);
    if (s->nparts == 0) {
        *idle_us = 200000;
        return 0;
    }
    if (max > MAX_MSGS)
        max = MAX_MSGS;
    if (max < 1)
        max = 1;
    /* what is there now, without waiting; if nothing, wait up to 100 ms for
     * the first message only, so a trickle is not held back */
    n = rd_kafka_consume_batch_queue(s->q, 0, s->msgs, (size_t)max);
    if (n == 0) {
        rd_kafka_message_t *m = rd_kafka_consume_queue(s->q, 100);
        if (m != NULL) {
            s->msgs[0] = m;
            n = 1 + rd_kafka_consume_batch_queue(s->q, 0, s->msgs + 1, (size_t)max - 1);
        }
    }
    if (n < 0)
        return weir_err_set(err, WEIR_EIO, "%s: %s", s->what,
                            rd_kafka_err2str(rd_kafka_last_error()));
    for (ssize_t k = 0; k < n; k++) {
        rd_kafka_message_t *m = s->msgs[k];

        if (rc == 0) {
            if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                rc = consumer_error(s, m, err);
            } else {
                int i = part_of(s, m->rkt, m->partition);
                ks_part_t *pt = i >= 0 ? &s->parts[i] : NULL;

                /* bounded: records past the end seen at start are not ours */
                if (pt != NULL && !(s->conf->bounded && (pt->done || m->offset >= pt->end))) {
                    int before = out->nrows;
                    rc = one_record(s, m, out, err);
                    if (rc == 0 && out->nrows > before)
                        event_time(s, i, m, weir_batch_row(out, out->nrows - 1));
                    mark_read(s, pt, m->offset + 1);
                } else if (pt != NULL) {
                    mark_read(s, pt, pt->end);
                }
            }
        }
        rd_kafka_message_destroy(m);
    }
    if (rc != 0)
        return rc;
    if (s->reassign && (rc = reassign(s, err)) != 0)
        return rc;
    if (s->dlq_open && (rc = wk_producer_poll(&s->dlq, err)) != 0)
        return rc;
    commit(s, false);
    lag(s);
    if (s->conf->bounded && s->nopen == 0 && out->nrows == 0)
        return finish_bounded(s, err);
    return 0;
}

static void
ks_close(weir_op_t *op)
{
    kafka_source_t *s = op->self;

    if (s == NULL)
        return;
    if (s->rk != NULL) {
        /* a canceled or failed source does not commit what it read last:
         * those records may not have reached the sink (read again, rather
         * than lost, by startup: group-offsets) */
        if (!(s->ctx->canceled != NULL && *s->ctx->canceled) && s->records_ok)
            commit(s, true);
        if (s->q != NULL)
            rd_kafka_queue_destroy(s->q);
        rd_kafka_consumer_close(s->rk);
        rd_kafka_destroy(s->rk);
    }
    if (s->dlq_open)
        wk_producer_close(&s->dlq);
    if (s->dlq_fd >= 0)
        close(s->dlq_fd);
    if (s->records + s->dead_lettered + s->skipped_out_of_range > 0)
        weir_log_info("%s: closed after %" PRIu64 " records, %" PRIu64 " dead-lettered, %" PRIu64
                      " lost to retention", s->what, s->records, s->dead_lettered,
                      s->skipped_out_of_range);
    weir_json_reader_destroy(s->reader);
    weir_buf_free(&s->line);
    for (int i = 0; i < s->nsnaps; i++)
        free(s->snaps[i].next);
    for (int t = 0; s->index != NULL && t < s->conf->ntopics; t++)
        free(s->index[t]);
    free(s->index);
    free(s->nindex);
    free(s->parts);
    free(s);
    op->self = NULL;
}


/* ---- checkpoints -------------------------------------------------------- */

/* msgpack: [[topic, partition, next offset], ...] for the partitions read so
 * far; a partition not read yet is left out and starts where `startup`
 * says (already a concrete offset for latest and timestamp). */
static int
ks_snapshot(weir_op_t *op, int64_t ckpt, weir_buf_t *out, weir_err_t *err)
{
    kafka_source_t *s = op->self;
    msgpack_packer pk;
    int n = 0, slot;

    for (int i = 0; i < s->nparts; i++)
        n += s->parts[i].next >= 0 || s->parts[i].start >= 0;
    msgpack_packer_init(&pk, out, weir_buf_msgpack_write);
    msgpack_pack_array(&pk, (size_t)n);
    for (int i = 0; i < s->nparts; i++) {
        const ks_part_t *pt = &s->parts[i];
        const char *topic = topic_of(s, pt->topic);
        int64_t at = pt->next >= 0 ? pt->next : pt->start;

        if (at < 0)
            continue;
        msgpack_pack_array(&pk, 3);
        msgpack_pack_str(&pk, strlen(topic));
        msgpack_pack_str_body(&pk, topic, strlen(topic));
        msgpack_pack_int32(&pk, pt->partition);
        msgpack_pack_int64(&pk, at);
    }
    /* remember them to commit when the checkpoint completes */
    if (s->nsnaps == (int)(sizeof(s->snaps) / sizeof(s->snaps[0]))) {
        free(s->snaps[0].next);
        memmove(&s->snaps[0], &s->snaps[1], sizeof(s->snaps[0]) * (size_t)(s->nsnaps - 1));
        s->nsnaps--;
    }
    slot = s->nsnaps;
    s->snaps[slot].next = malloc(sizeof(int64_t) * (size_t)(s->nparts > 0 ? s->nparts : 1));
    if (s->snaps[slot].next == NULL)
        return weir_err_set(err, WEIR_ENOMEM, "%s: out of memory", s->what);
    for (int i = 0; i < s->nparts; i++)
        s->snaps[slot].next[i] = s->parts[i].next;
    s->snaps[slot].ckpt = ckpt;
    s->nsnaps++;
    return 0;
}

static int
ks_notify_complete(weir_op_t *op, int64_t ckpt, weir_err_t *err)
{
    kafka_source_t *s = op->self;
    rd_kafka_topic_partition_list_t *list;
    int k = -1;

    (void)err;
    for (int i = 0; i < s->nsnaps; i++)
        if (s->snaps[i].ckpt <= ckpt)
            k = i;
    if (k < 0)
        return 0;
    list = rd_kafka_topic_partition_list_new(s->nparts > 0 ? s->nparts : 1);
    if (list != NULL) {
        for (int i = 0; i < s->nparts; i++)
            if (s->snaps[k].next[i] >= 0)
                rd_kafka_topic_partition_list_add(list, topic_of(s, s->parts[i].topic),
                                                  s->parts[i].partition)->offset =
                    s->snaps[k].next[i];
        if (list->cnt > 0 && s->conf->commit_interval_us > 0)
            rd_kafka_commit(s->rk, list, 1);
        rd_kafka_topic_partition_list_destroy(list);
    }
    for (int i = 0; i <= k; i++)
        free(s->snaps[i].next);
    memmove(&s->snaps[0], &s->snaps[k + 1], sizeof(s->snaps[0]) * (size_t)(s->nsnaps - k - 1));
    s->nsnaps -= k + 1;
    return 0;
}

/* Every old subtask's offsets (union): take those of the partitions owned
 * now. Partitions not in the checkpoint (new ones) start per `startup`. */
static int
ks_restore(weir_op_t *op, int64_t ckpt, int old_parallelism, const weir_op_blob_t *blobs,
           int nblobs, weir_err_t *err)
{
    kafka_source_t *s = op->self;
    int restored = 0;

    (void)ckpt;
    (void)old_parallelism;
    for (int b = 0; b < nblobs; b++) {
        msgpack_unpacked u;
        size_t off = 0;

        msgpack_unpacked_init(&u);
        if (msgpack_unpack_next(&u, blobs[b].data, blobs[b].len, &off) != MSGPACK_UNPACK_SUCCESS ||
            u.data.type != MSGPACK_OBJECT_ARRAY) {
            msgpack_unpacked_destroy(&u);
            return weir_err_set(err, WEIR_EPARSE, "%s: corrupt offsets in the checkpoint",
                                s->what);
        }
        for (uint32_t i = 0; i < u.data.via.array.size; i++) {
            const msgpack_object *e = &u.data.via.array.ptr[i];
            if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 3 ||
                e->via.array.ptr[0].type != MSGPACK_OBJECT_STR)
                continue;
            const msgpack_object_str *t = &e->via.array.ptr[0].via.str;
            int32_t p = (int32_t)e->via.array.ptr[1].via.i64;
            int64_t at = e->via.array.ptr[2].via.i64;
            for (int k = 0; k < s->nparts; k++) {
                ks_part_t *pt = &s->parts[k];
                const char *name = topic_of(s, pt->topic);
                if (pt->partition == p && strlen(name) == t->size &&
                    memcmp(name, t->ptr, t->size) == 0) {
                    pt->start = at;
                    pt->next = at;
                    pt->committed = -1;
                    restored++;
                }
            }
        }
        msgpack_unpacked_destroy(&u);
    }
    /* bounded: the ends were taken at open; a restored start may be at or
     * past them already */
    if (s->conf->bounded) {
        s->nopen = 0;
        for (int k = 0; k < s->nparts; k++) {
            s->parts[k].done = false;
            s->nopen++;
            check_done_at_start(s, &s->parts[k]);
        }
    }
    weir_log_info("%s: restored the offsets of %d of %d partition(s) from checkpoint %lld",
                  s->what, restored, s->nparts, (long long)ckpt);
    return 0;
}

uint64_t
weir_op_kafka_source_dead_lettered(const weir_op_t *op)
{
    const kafka_source_t *s = op->self;
    return s == NULL ? 0 : s->dead_lettered;
}

uint64_t
weir_op_kafka_source_skipped(const weir_op_t *op)
{
    const kafka_source_t *s = op->self;
    return s == NULL ? 0 : s->skipped_out_of_range;
}

const weir_op_kind_t weir_op_kafka_source = {
    .name       = "kafka",
    .roles      = WEIR_ROLE_SOURCE,
    .min_inputs = 0,
    .max_inputs = 0,
    .keyed      = false,
    .params     = ks_params,
    .summary    = "reads JSON (or raw) records from Kafka topics, partitions spread over subtasks",
    .own_event_time = true,
    .configure  = ks_configure,
    .conf_free  = ks_conf_free,
    .open       = ks_open,
    .poll       = ks_poll,
    .close      = ks_close,
    .snapshot   = ks_snapshot,
    .notify_complete = ks_notify_complete,
    .restore    = ks_restore,
};
