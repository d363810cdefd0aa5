/* tests/cluster/test_kafka_watermarks.c -- event time from Kafka, per
 * partition, and the partitions' offsets and lags in the metrics.
 *
 * Real processes: weir-kafka, a job manager and two task managers. Records
 * are produced by this test with chosen partitions, JSON event times and
 * message timestamps. A Kafka source at parallelism 1 owns both partitions
 * of its topic and feeds a keyed file sink at parallelism 2 (another
 * vertex, so the watermark crosses the network).
 *
 *   per partition  the watermark is the minimum over the partitions: with
 *                  partition 0 at 120 s and partition 1 at 60 s, the sink's
 *                  input watermark settles at exactly 60 s - 5 s - 1 ms;
 *                  after partition 1 moves to 200 s, at 120 s - 5.001 s
 *   message time   without `field`, the message timestamps are the event
 *                  times
 *   idleness       a partition that never gets a record holds the watermark
 *                  back; with idle_timeout: 1s it is left out, and the
 *                  watermark is the busy partition's
 *   metrics        REST lists, per partition, the topic, the partition, the
 *                  next offset (currentOffset) and pendingRecords; so does
 *                  Prometheus (weir_kafka_partition_current_offset ...)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "harness.h"
#include "../kafka/kafka_harness.h"

#define START_MS 1704067200000LL      /* 2024-01-01 00:00:00 UTC */

static kh_broker_t broker;

static int
teardown(void **state)
{
    hc_teardown(state);
    kh_stop_all();
    return 0;
}

static const char *const job_yaml =
    "name: kwm\n"
    "sources:\n"
    "  - name: events\n"
    "    kind: kafka\n"
    "    bootstrap: ${BOOTSTRAP}\n"
    "    topic: ${TOPIC}\n"
    "    startup: earliest\n"
    "    schema:\n"
    "      - {name: id, type: int}\n"
    "      - {name: ts, type: timestamp}\n"
    "    watermark: %s\n"
    "sinks:\n"
    "  - {name: out, kind: file, input: events, key_by: id, parallelism: 2, path: \"${OUT}\"}\n";

/* The job file with the given watermark mapping; a static buffer. */
static const char *
job(const char *watermark)
{
    static char text[2048];
    snprintf(text, sizeof(text), job_yaml, watermark);
    return text;
}

/* Produces {"id": id, "ts": ts_ms} to topic[partition] with the message
 * timestamp msg_ms, and waits for the delivery. */
static void
produce(const char *topic, int partition, int id, long long ts_ms, long long msg_ms)
{
    char errstr[256], value[128];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    rd_kafka_resp_err_t e;

    rd_kafka_conf_set(conf, "bootstrap.servers", broker.bootstrap, errstr, sizeof(errstr));
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    snprintf(value, sizeof(value), "{\"id\": %d, \"ts\": %lld}", id, ts_ms);
    e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                          RD_KAFKA_V_VALUE(value, strlen(value)),
                          RD_KAFKA_V_TIMESTAMP(msg_ms), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_END);
    assert_int_equal(e, RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(rk, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
}

/* The sink's (vertex v1) input watermarks, ms. */
static void
sink_watermarks(hc_cluster_t *c, const char *jid, long long in[2])
{
    char path[128];
    long status;
    json_t *a, *e;
    size_t i;

    snprintf(path, sizeof(path), "/jobs/%s/vertices/v1/watermarks", jid);
    a = hc_get_json(c, path, &status);
    assert_int_equal(status, 200);
    in[0] = in[1] = 0;
    json_array_foreach(a, i, e) {
        const char *id = json_string_value(json_object_get(e, "id"));
        const char *val = json_string_value(json_object_get(e, "value"));
        if (id != NULL && val != NULL && strstr(id, ".currentInputWatermark") != NULL)
            in[id[0] - '0'] = strtoll(val, NULL, 10);
    }
    json_decref(a);
}

/* Waits until both sink subtasks are at exactly want; every value seen on
 * the way is none or at most want (event time never overtakes a partition
 * that is behind). */
static void
wait_watermark(hc_cluster_t *c, const char *jid, long long want, const char *what)
{
    long long t0 = hc_now_ms(), in[2];

    for (;;) {
        sink_watermarks(c, jid, in);
        for (int s = 0; s < 2; s++)
            if (in[s] != INT64_MIN && in[s] > want)
                fail_msg("%s: sink subtask %d at %lld, beyond %lld", what, s, in[s], want);
        if (in[0] == want && in[1] == want)
            return;
        if (hc_now_ms() - t0 > 30000)
            fail_msg("%s: the sink's watermarks are %lld and %lld after 30 s, want %lld", what,
                     in[0], in[1], want);
        hc_sleep_ms(100);
    }
}

/* The source subtask's partitions as REST shows them, waiting until the
 * offsets are off0 and off1 with nothing pending. */
static void
wait_partitions(hc_cluster_t *c, const char *jid, const char *topic, long long off0,
                long long off1)
{
    char path[128];
    long long t0 = hc_now_ms();
    char *last = NULL;

    snprintf(path, sizeof(path), "/jobs/%s/vertices/v0", jid);
    for (;;) {
        long status;
        json_t *d = hc_get_json(c, path, &status);
        json_t *parts = json_object_get(json_object_get(json_array_get(
            json_object_get(d, "subtasks"), 0), "metrics"), "partitions");
        bool ok = json_array_size(parts) == 2;
        for (size_t i = 0; ok && i < 2; i++) {
            json_t *p = json_array_get(parts, i);
            long long want = json_integer_value(json_object_get(p, "partition")) == 0 ? off0 : off1;
            ok = strcmp(json_string_value(json_object_get(p, "topic")), topic) == 0 &&
                 json_integer_value(json_object_get(p, "partition")) == (json_int_t)i &&
                 json_is_integer(json_object_get(p, "currentOffset")) &&
                 json_integer_value(json_object_get(p, "currentOffset")) == want &&
                 json_is_integer(json_object_get(p, "pendingRecords")) &&
                 json_integer_value(json_object_get(p, "pendingRecords")) == 0;
        }
        free(last);
        last = json_dumps(parts, 0);
        json_decref(d);
        if (ok)
            break;
        if (hc_now_ms() - t0 > 30000)
            fail_msg("partitions of '%s' not at offsets %lld and %lld after 30 s: %s", topic,
                     off0, off1, last ? last : "none");
        hc_sleep_ms(200);
    }
    free(last);
}

static void
test_min_over_partitions(void **state)
{
    hc_cluster_t *c;
    char jid[HC_JOB_ID_LEN + 1], out_dir[PATH_MAX], *body = NULL, want[512];
    const char *ev;

    (void)state;
    kh_broker_start(&broker, (const char *const[]){ "--topic", "ev:2", NULL });
    ev = kh_topic(&broker, "ev");
    if (kh_partitions(&broker, "ev") != 2) {
        kh_broker_stop(&broker);
        skip();                        /* an external weir-kafka: 4 partitions */
    }
    produce(ev, 0, 1, START_MS + 100000, START_MS);
    produce(ev, 0, 2, START_MS + 120000, START_MS);
    produce(ev, 0, 3, START_MS + 110000, START_MS);      /* out of order */
    produce(ev, 1, 4, START_MS + 50000, START_MS);
    produce(ev, 1, 5, START_MS + 60000, START_MS);
    c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    snprintf(out_dir, sizeof(out_dir), "%s/out", c->dir);
    hc_submit_ok(c, job("{field: ts, max_out_of_orderness: 5s, interval: 50ms}"),
                 (const char *const[]){ "BOOTSTRAP", broker.bootstrap, "TOPIC", ev,
                                        "OUT", out_dir, NULL }, jid);
    wait_watermark(c, jid, START_MS + 60000 - 5001, "partition 1 behind");
    wait_partitions(c, jid, ev, 3, 2);
    assert_int_equal(hc_http(c, "GET", "/metrics", NULL, NULL, &body), 200);
    snprintf(want, sizeof(want), "weir_kafka_partition_current_offset{job=\"%s\",job_name=\"kwm\","
             "vertex=\"events\",subtask=\"0\",topic=\"%s\",partition=\"1\"} 2\n", jid, ev);
    if (strstr(body, want) == NULL)
        fail_msg("/metrics lacks %s", want);
    assert_non_null(strstr(body, "# TYPE weir_kafka_partition_pending_records gauge"));
    free(body);

    /* partition 1 catches up past partition 0: partition 0 holds it now */
    produce(ev, 1, 6, START_MS + 200000, START_MS);
    wait_watermark(c, jid, START_MS + 120000 - 5001, "partition 0 behind");
    wait_partitions(c, jid, ev, 3, 3);
    assert_int_equal(hc_cancel(c, jid), 202);
    json_decref(hc_wait_job(c, jid, "CANCELED", 30000));
    hc_stop(c);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

static void
test_message_time_and_idleness(void **state)
{
    hc_cluster_t *c;
    char jid[HC_JOB_ID_LEN + 1], jid2[HC_JOB_ID_LEN + 1], out_dir[PATH_MAX], out2[PATH_MAX];
    long long in[2];
    const char *quiet;

    (void)state;
    kh_broker_start(&broker, (const char *const[]){ "--topic", "quiet:2", NULL });
    quiet = kh_topic(&broker, "quiet");
    if (kh_partitions(&broker, "quiet") != 2) {
        kh_broker_stop(&broker);
        skip();                        /* an external weir-kafka: 4 partitions */
    }
    /* only partition 0 gets records; the JSON times are not what counts */
    produce(quiet, 0, 1, 0, START_MS + 30000);
    produce(quiet, 0, 2, 0, START_MS + 40000);
    c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 4 });
    snprintf(out_dir, sizeof(out_dir), "%s/out", c->dir);
    snprintf(out2, sizeof(out2), "%s/out2", c->dir);
    /* without idleness the empty partition holds event time back for good */
    hc_submit_ok(c, job("{max_out_of_orderness: 2s, interval: 50ms}"),
                 (const char *const[]){ "BOOTSTRAP", broker.bootstrap, "TOPIC", quiet,
                                        "OUT", out_dir, NULL }, jid);
    /* with idle_timeout it is left out after a second */
    hc_submit_ok(c, job("{max_out_of_orderness: 2s, idle_timeout: 1s, interval: 50ms}"),
                 (const char *const[]){ "BOOTSTRAP", broker.bootstrap, "TOPIC", quiet,
                                        "OUT", out2, NULL }, jid2);
    wait_watermark(c, jid2, START_MS + 40000 - 2001, "idle partition 1 left out");
    wait_partitions(c, jid, quiet, 2, 0);
    sink_watermarks(c, jid, in);
    assert_true(in[0] == INT64_MIN && in[1] == INT64_MIN);
    assert_int_equal(hc_cancel(c, jid), 202);
    assert_int_equal(hc_cancel(c, jid2), 202);
    json_decref(hc_wait_job(c, jid, "CANCELED", 30000));
    json_decref(hc_wait_job(c, jid2, "CANCELED", 30000));
    hc_stop(c);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_min_over_partitions, teardown),
        cmocka_unit_test_teardown(test_message_time_and_idleness, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
