/* tests/kafka/test_kafka_ops.c -- the kafka source and sink operators against a
 * real weir-kafka.
 *
 * Each test starts its own broker (kafka_harness.h), fills topics with
 * weir-gen, drives the operators by hand (op_harness.h: configure, open,
 * poll or process, finish, close, for several subtasks) and checks the
 * result with independent means: what `weir-gen --print --print-keys` says
 * was produced, a plain librdkafka consumer defined here (byte-exact keys
 * and values, null vs empty, headers), committed offsets and watermarks
 * asked of the broker directly, jansson for JSON, and the Java client's
 * murmur2 written out below.
 *
 * Row text is op_harness.h's "v0|v1|...". The transactions schema read here
 * is account_id|customer_id|transaction_id|transaction_amount|transaction_date
 * and the expected text of a produced record is computed from its JSON with
 * jansson, not with weir's JSON reader.
 *
 * What the embedded broker cannot do is said where it matters: it keeps
 * ~5 MB per partition (used on purpose below to delete records), and its
 * ListOffsets cannot look up offsets by timestamp (librdkafka 2.0.2's mock
 * answers -1 for every timestamp), so the `startup: timestamp` case checks
 * that first and is skipped, saying why, on such a broker.
 *
 * Against a real cluster (WEIR_TEST_KAFKA_BOOTSTRAP, see kafka_harness.h)
 * every topic and consumer group goes through kh_topic(): the helpers below
 * (gen, read_topic, committed, commit_offset, produce_raw) take the names
 * the test uses and map them, YAML and assertions map with T(); partition
 * counts come from kh_partitions(). The cases that need the mock's
 * retention, or stop the broker, are skipped there, saying why; the
 * timestamp case runs in full on a broker that can look offsets up by time.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "kafka_harness.h"
#include "operators/kafka_common.h"
#include "runtime/core/json_row.h"
#include "tests/operators/op_harness.h"

#define READ_MS 20000

static kh_broker_t broker;
static char tmpdir[256];

/* A topic or group as the broker knows it, and a topic's partition count. */
#define T(name)     kh_topic(&broker, name)
#define NPART(name) kh_partitions(&broker, name)
/* The operators under test live here, not on the stack, so that teardown
 * can close what a failed test left open (consumers would otherwise keep
 * talking to a broker that is gone). */
static h_op_t ops[2];

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int
setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/weir-test-kafka-ops-XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        h_close(&ops[i]);
        memset(&ops[i], 0, sizeof(ops[i]));
    }
    kh_stop_all();
    return nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int64_t
wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
start_broker(const char *topics)
{
    kh_broker_start(&broker, (const char *[]){ "--topic", topics, NULL });
}

/* ---- weir-gen ------------------------------------------------------------- */

/* Runs `weir-gen transactions` with args to the broker, expects exit 0. */
static void
gen(const char *topic, const char *const *args)
{
    const char *argv[40] = { kh_bin("weir-gen"), "transactions", "--bootstrap",
                             broker.bootstrap, "--topic", T(topic) };
    int n = 6;
    kh_run_t r;

    for (int i = 0; args[i] != NULL && n < 39; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    kh_run(&r, argv, 60000);
    if (r.status != 0)
        fail_msg("weir-gen exited %d: %s", r.status, r.err);
    kh_run_free(&r);
}

/* The records `weir-gen transactions --print --print-keys args` computes. */
typedef struct {
    size_t n;
    char **key;                        /* borrowed from run.out */
    char **value;
    int   *bad;                        /* malformation: -1 none, 0 not JSON, 1 missing, 2 type */
    kh_run_t run;
} printed_t;

static void
gen_print(printed_t *p, long long malformed, const char *const *args)
{
    const char *argv[40] = { kh_bin("weir-gen"), "transactions", "--print", "--print-keys" };
    int n = 4;
    char **lines;

    memset(p, 0, sizeof(*p));
    for (int i = 0; args[i] != NULL && n < 39; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    kh_run(&p->run, argv, 60000);
    if (p->run.status != 0)
        fail_msg("weir-gen --print exited %d: %s", p->run.status, p->run.err);
    p->n = kh_lines(p->run.out, &lines);
    p->key = lines;
    p->value = calloc(p->n + 1, sizeof(char *));
    p->bad = calloc(p->n + 1, sizeof(int));
    assert_non_null(p->value);
    assert_non_null(p->bad);
    for (size_t i = 0; i < p->n; i++) {
        char *tab = strchr(lines[i], '\t');

        assert_non_null(tab);
        *tab = '\0';
        p->value[i] = tab + 1;
        /* gen.c: records K, 2K, ... (1-based) in turn: not JSON, missing, type */
        p->bad[i] = malformed > 0 && (long long)(i + 1) % malformed == 0
                    ? (int)(((long long)(i + 1) / malformed - 1) % 3) : -1;
    }
}

static void
printed_free(printed_t *p)
{
    free(p->key);
    free(p->value);
    free(p->bad);
    kh_run_free(&p->run);
    memset(p, 0, sizeof(*p));
}

/* The index of the printed record with this key (keys hold the unique
 * transaction id), or -1. Linear: the sets here are small. */
static long
printed_find(const printed_t *p, const char *key, size_t klen)
{
    for (size_t i = 0; i < p->n; i++)
        if (strlen(p->key[i]) == klen && memcmp(p->key[i], key, klen) == 0)
            return (long)i;
    return -1;
}

#define TX_SCHEMA \
    "    schema: {account_id: int, customer_id: string, transaction_id: string,\n" \
    "             transaction_amount: double, transaction_date: timestamp}\n"

/* The row text a well-formed transaction value must become, new. */
static char *
tx_row_text(const char *value)
{
    json_error_t jerr;
    json_t *v = json_loads(value, 0, &jerr);
    char buf[512];

    if (v == NULL)
        fail_msg("not JSON: %s", value);
    snprintf(buf, sizeof(buf), "%lld|%s|%s|%.15g|%s",
             (long long)json_integer_value(json_object_get(v, "account_id")),
             json_string_value(json_object_get(v, "customer_id")),
             json_string_value(json_object_get(v, "transaction_id")),
             json_real_value(json_object_get(v, "transaction_amount")),
             json_string_value(json_object_get(v, "transaction_date")));
    json_decref(v);
    return strdup(buf);
}

/* Rows the well-formed printed records [from, to) must become. */
static void
expected_rows(const printed_t *p, size_t from, size_t to, h_rows_t *out)
{
    for (size_t i = from; i < to && i < p->n; i++)
        if (p->bad[i] < 0)
            h_rows_add(out, tx_row_text(p->value[i]));
}

/* Asserts got and want hold the same rows, each once (order ignored). */
static void
expect_same_rows(h_rows_t *got, h_rows_t *want, const char *what)
{
    h_rows_sort(got);
    h_rows_sort(want);
    for (int i = 1; i < got->n; i++)
        if (strcmp(got->rows[i - 1], got->rows[i]) == 0)
            fail_msg("%s: row read twice: %s", what, got->rows[i]);
    for (int i = 0; i < got->n && i < want->n; i++)
        if (strcmp(got->rows[i], want->rows[i]) != 0)
            fail_msg("%s: row %d differs:\n got  %s\n want %s", what, i, got->rows[i],
                     want->rows[i]);
    if (got->n != want->n)
        fail_msg("%s: %d rows, want %d", what, got->n, want->n);
}

/* The transaction_id of a row of the transactions schema (third field). */
static void
row_txid(const char *row, char out[17])
{
    const char *p = strchr(row, '|');

    assert_non_null(p);
    p = strchr(p + 1, '|');
    assert_non_null(p);
    memcpy(out, p + 1, 16);
    out[16] = '\0';
}

/* ---- a plain consumer: byte-exact records with headers -------------------- */

typedef struct {
    char   *name;
    char   *val;
    size_t  len;
} hdr_t;

typedef struct {
    int32_t partition;
    int64_t offset;
    bool    key_null, value_null;
    char   *key;                        /* NUL-terminated copies (may hold NULs) */
    size_t  key_len;
    char   *value;
    size_t  value_len;
    int     nh;
    hdr_t   h[8];
} rec_t;

typedef struct {
    int    partitions;
    rec_t *r;
    size_t n;
} recs_t;

static rd_kafka_t *
client(rd_kafka_type_t type, const char *bootstrap, const char *group)
{
    char errstr[512], gid[128];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    static int seq;

    if (group == NULL) {
        snprintf(gid, sizeof(gid), "kt-reader-%d-%d", (int)getpid(), seq++);
        group = gid;
    }
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) ||
        (type == RD_KAFKA_CONSUMER &&
         (rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr)) ||
          rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
          rd_kafka_conf_set(conf, "auto.offset.reset", "error", errstr, sizeof(errstr)))))
        fail_msg("conf: %s", errstr);
    rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (rk == NULL)
        fail_msg("rd_kafka_new: %s", errstr);
    return rk;
}

static char *
copy_bytes(const void *p, size_t n)
{
    char *c = malloc(n + 1);

    assert_non_null(c);
    if (n > 0)
        memcpy(c, p, n);
    c[n] = '\0';
    return c;
}

static int
rec_order(const void *a, const void *b)
{
    const rec_t *x = a, *y = b;

    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Every record of topic (the test's name for it) from the low to the high
 * watermark seen now. */
static void
read_topic(const char *name, recs_t *t)
{
    const char *topic = T(name);
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *parts;
    int64_t hi[64];
    int remaining = 0;
    size_t cap = 0;
    double deadline = now_s() + READ_MS / 1000.0;

    memset(t, 0, sizeof(*t));
    t->partitions = kh_topic_partitions(broker.bootstrap, topic, false, NULL);
    if (t->partitions <= 0 || t->partitions > 64)
        fail_msg("topic '%s': %d partitions", topic, t->partitions);
    rk = client(RD_KAFKA_CONSUMER, broker.bootstrap, NULL);
    parts = rd_kafka_topic_partition_list_new(t->partitions);
    for (int p = 0; p < t->partitions; p++) {
        int64_t lo;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi[p],
                                                                 10000);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            fail_msg("watermarks of %s[%d]: %s", topic, p, rd_kafka_err2str(e));
        if (hi[p] > lo) {
            rd_kafka_topic_partition_list_add(parts, topic, p)->offset = lo;
            remaining++;
        }
    }
    assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    while (remaining > 0) {
        rd_kafka_message_t *m;
        rd_kafka_headers_t *hs = NULL;
        rec_t *r;

        if (now_s() > deadline)
            fail_msg("read %zu records of '%s', %d partitions short of their end", t->n, topic,
                     remaining);
        m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL)
            continue;
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                rd_kafka_message_destroy(m);
                continue;
            }
            fail_msg("consuming '%s': %s", topic, rd_kafka_message_errstr(m));
        }
        if (m->offset >= hi[m->partition]) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (t->n == cap) {
            cap = cap ? cap * 2 : 1024;
            t->r = realloc(t->r, cap * sizeof(*t->r));
            assert_non_null(t->r);
        }
        r = &t->r[t->n++];
        memset(r, 0, sizeof(*r));
        r->partition = m->partition;
        r->offset = m->offset;
        r->key_null = m->key == NULL;
        r->key = copy_bytes(m->key, m->key_len);
        r->key_len = m->key_len;
        r->value_null = m->payload == NULL;
        r->value = copy_bytes(m->payload, m->len);
        r->value_len = m->len;
        if (rd_kafka_message_headers(m, &hs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            const char *name;
            const void *val;
            size_t len;

            for (size_t i = 0; r->nh < 8 &&
                 rd_kafka_header_get_all(hs, i, &name, &val, &len) ==
                     RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
                r->h[r->nh].name = strdup(name);
                r->h[r->nh].val = copy_bytes(val, len);
                r->h[r->nh].len = len;
                r->nh++;
            }
        }
        if (m->offset == hi[m->partition] - 1)
            remaining--;
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (t->n > 1)
        qsort(t->r, t->n, sizeof(*t->r), rec_order);
}

static void
recs_free(recs_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->r[i].key);
        free(t->r[i].value);
        for (int k = 0; k < t->r[i].nh; k++) {
            free(t->r[i].h[k].name);
            free(t->r[i].h[k].val);
        }
    }
    free(t->r);
    memset(t, 0, sizeof(*t));
}

/* The value of header name of r, or NULL. */
static const char *
header(const rec_t *r, const char *name)
{
    for (int k = 0; k < r->nh; k++)
        if (strcmp(r->h[k].name, name) == 0)
            return r->h[k].val;
    return NULL;
}

/* The record of t whose key is key, or NULL. */
static const rec_t *
rec_by_key(const recs_t *t, const char *key, size_t klen)
{
    for (size_t i = 0; i < t->n; i++)
        if (!t->r[i].key_null && t->r[i].key_len == klen && memcmp(t->r[i].key, key, klen) == 0)
            return &t->r[i];
    return NULL;
}

/* ---- offsets -------------------------------------------------------------- */

/* The committed offsets of group for partitions 0..n-1 of topic (-1001 when
 * none), asked with a consumer in the group that joins nothing. */
static void
committed(const char *group_name, const char *name, int n, int64_t *out)
{
    const char *group = T(group_name), *topic = T(name);
    rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, broker.bootstrap, group);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    rd_kafka_resp_err_t e;

    for (int p = 0; p < n; p++)
        rd_kafka_topic_partition_list_add(l, topic, p);
    e = rd_kafka_committed(rk, l, 10000);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        fail_msg("committed offsets of group %s: %s", group, rd_kafka_err2str(e));
    for (int p = 0; p < n; p++) {
        rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_find(l, topic, p);

        assert_non_null(tp);
        out[p] = tp->offset;
    }
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
}

/* Commits offset for topic[partition] in group, synchronously. */
static void
commit_offset(const char *group_name, const char *name, int32_t partition, int64_t offset)
{
    const char *group = T(group_name), *topic = T(name);
    rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, broker.bootstrap, group);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t e;
    int64_t got;

    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
    e = rd_kafka_commit(rk, l, 0);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR && l->elems[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
        e = l->elems[0].err;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        fail_msg("commit %s[%d]@%" PRId64 " for %s: %s", topic, (int)partition, offset, group,
                 rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    {
        int64_t all[64];
        committed(group_name, name, partition + 1, all);
        got = all[partition];
    }
    assert_int_equal(got, offset);
}

/* ---- driving the operators ------------------------------------------------ */

/* The job file around a source's body, which is printf(fmt, ...). */
static void __attribute__((format(printf, 3, 4)))
source_yaml(char *yaml, size_t cap, const char *fmt, ...)
{
    char body[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    snprintf(yaml, cap,
             "name: kt\n"
             "sources:\n"
             "  - name: src\n"
             "    kind: kafka\n"
             "    bootstrap: %s\n"
             "%s"
             "sinks:\n"
             "  - name: out\n"
             "    kind: print\n"
             "    input: src\n",
             broker.bootstrap, body);
}

/* The job file around a sink's body, which is printf(fmt, ...). */
static void __attribute__((format(printf, 3, 4)))
sink_yaml(char *yaml, size_t cap, const char *fmt, ...)
{
    char body[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    snprintf(yaml, cap,
             "name: kt\n"
             "sources:\n"
             "  - name: src\n"
             "    kind: datagen\n"
             "    fields: [{name: id, type: int}]\n"
             "sinks:\n"
             "  - name: out\n"
             "    kind: kafka\n"
             "    input: src\n"
             "    bootstrap: %s\n"
             "%s",
             broker.bootstrap, body);
}

/* Polls subtask s of an unbounded source until it has want rows in rs (or
 * timeout_ms passed); every poll must succeed. */
static void
poll_for(h_op_t *h, int s, int want, h_rows_t *rs, int timeout_ms)
{
    weir_batch_t *out = weir_batch_new(h->cfg.output_schema, 512);
    double deadline = now_s() + timeout_ms / 1000.0;

    assert_non_null(out);
    while (rs->n < want && now_s() < deadline) {
        int64_t idle = 0;
        int rc;

        weir_batch_clear(out);
        rc = h->cfg.kind->poll(&h->op[s], out, 512, &idle, &h->err);
        if (rc != 0)
            fail_msg("poll of subtask %d returned %d: %s", s, rc, h->err.msg);
        h_rows_add_batch(rs, out);
        if (idle > 0)
            usleep((useconds_t)(idle < 100000 ? idle : 100000));
    }
    weir_batch_destroy(out);
}

/* Polls every subtask of a bounded source to WEIR_EOS; rows[s] gets its
 * rows. A source that does not get there within 30 s fails the test. */
static void
read_bounded(h_op_t *h, int parallelism, h_rows_t *rows)
{
    weir_batch_t *out = weir_batch_new(h->cfg.output_schema, 700);

    assert_non_null(out);
    for (int s = 0; s < parallelism; s++) {
        double deadline = now_s() + 30;
        int rc = 0;

        while (rc != WEIR_EOS) {
            int64_t idle = 0;

            if (now_s() > deadline)
                fail_msg("subtask %d: no end of stream after 30 s (%d rows)", s, rows[s].n);
            weir_batch_clear(out);
            rc = h->cfg.kind->poll(&h->op[s], out, 700, &idle, &h->err);
            if (rc != 0 && rc != WEIR_EOS)
                fail_msg("poll of subtask %d failed: %s", s, h->err.msg);
            assert_true(out->nrows <= 700);
            h_rows_add_batch(&rows[s], out);
        }
    }
    weir_batch_destroy(out);
}

/* ---- the Java client's partitioner ---------------------------------------- */

/* org.apache.kafka.common.utils.Utils.murmur2 */
static int32_t
murmur2(const void *key, size_t len)
{
    const uint8_t *d = key;
    const uint32_t m = 0x5bd1e995u;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t n4 = len / 4;

    for (size_t i = 0; i < n4; i++) {
        uint32_t k = (uint32_t)d[i * 4] | (uint32_t)d[i * 4 + 1] << 8 |
                     (uint32_t)d[i * 4 + 2] << 16 | (uint32_t)d[i * 4 + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (len % 4) {
    case 3: h ^= (uint32_t)d[(len & ~(size_t)3) + 2] << 16; /* fall through */
    case 2: h ^= (uint32_t)d[(len & ~(size_t)3) + 1] << 8;  /* fall through */
    case 1: h ^= (uint32_t)d[len & ~(size_t)3];
            h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)h;
}

/* DefaultPartitioner: toPositive(murmur2(key)) % partitions */
static int32_t
java_partition(const void *key, size_t len, int partitions)
{
    return (int32_t)(((uint32_t)murmur2(key, len) & 0x7fffffffu) % (uint32_t)partitions);
}

/* ---- source: bounded reads and partition assignment ----------------------- */

static void
test_kafka_source_bounded_read_splits_partitions_over_1_2_3_subtasks(void **state)
{
    const char *const args[] = { "--count", "2000", "--accounts", "1000", "--seed", "3", NULL };
    printed_t pr;
    recs_t topic;
    char yaml[2048];

    (void)state;
    start_broker("tx:16");
    gen("tx", args);
    gen_print(&pr, 0, args);
    assert_int_equal(pr.n, 2000);
    read_topic("tx", &topic);
    assert_int_equal(topic.n, 2000);
    /* every partition holds records, so every subtask has work */
    for (int p = 0; p < NPART("tx"); p++) {
        int64_t lo, hi;
        kh_watermarks(broker.bootstrap, T("tx"), p, &lo, &hi);
        assert_true(hi > 0);
    }

    source_yaml(yaml, sizeof(yaml),
                "    topic: %s\n"
                "    startup: earliest\n"
                "    stop_at: latest\n"
                TX_SCHEMA, T("tx"));
    for (int par = 1; par <= 3; par++) {
        h_rows_t rows[3] = { { 0 } }, all = { 0 }, want = { 0 };
        h_op_t *h = &ops[0];

        h_configure_ok(h, yaml, "src", WEIR_ROLE_SOURCE, NULL);
        h_open(h, par);
        read_bounded(h, par, rows);       /* each reaches WEIR_EOS */
        for (int s = 0; s < par; s++) {
            /* the subtask's rows come from the partitions it owns, only */
            for (int i = 0; i < rows[s].n; i++) {
                char txid[17], key_txid[40];
                const rec_t *r = NULL;

                row_txid(rows[s].rows[i], txid);
                snprintf(key_txid, sizeof(key_txid), "\"transaction_id\":\"%s\"}", txid);
                for (size_t k = 0; k < topic.n && r == NULL; k++)
                    if (strstr(topic.r[k].key, key_txid) != NULL)
                        r = &topic.r[k];
                if (r == NULL)
                    fail_msg("parallelism %d: row not in the topic: %s", par, rows[s].rows[i]);
                if (wk_partition_owner(T("tx"), r->partition, par) != s)
                    fail_msg("parallelism %d: subtask %d read partition %d, owned by %d", par, s,
                             (int)r->partition, wk_partition_owner(T("tx"), r->partition, par));
                h_rows_add(&all, strdup(rows[s].rows[i]));
            }
            assert_int_equal(weir_op_kafka_source_dead_lettered(&h->op[s]), 0);
            assert_int_equal(weir_op_kafka_source_skipped(&h->op[s]), 0);
        }
        expected_rows(&pr, 0, pr.n, &want);
        expect_same_rows(&all, &want, "bounded read");
        h_close(h);
        for (int s = 0; s < par; s++)
            h_rows_free(&rows[s]);
        h_rows_free(&all);
        h_rows_free(&want);
    }
    /* Flink's KafkaTopicPartitionAssigner for this topic, worked out by hand:
     * "tx".hashCode() = 116*31 + 120 = 3716, start = (3716*31 & 0x7fffffff) % n,
     * 115196 % 3 = 2 and % 2 = 0; owner = (start + partition) % n */
    assert_int_equal(wk_partition_owner("tx", 0, 3), 2);
    assert_int_equal(wk_partition_owner("tx", 4, 3), 0);
    assert_int_equal(wk_partition_owner("tx", 5, 2), 1);
    assert_int_equal(wk_partition_owner("tx", 15, 1), 0);
    recs_free(&topic);
    printed_free(&pr);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

static void
test_kafka_source_bounded_read_ignores_records_produced_after_open(void **state)
{
    const char *const wave1[] = { "--count", "1000", "--accounts", "1000", "--seed", "5", NULL };
    const char *const wave2[] = { "--count", "500", "--accounts", "1000", "--seed", "6", NULL };
    printed_t pr;
    h_rows_t rows[2] = { { 0 } }, all = { 0 }, want = { 0 };
    recs_t topic;
    char yaml[2048];
    h_op_t *h = &ops[0];

    (void)state;
    start_broker("tx:16");
    gen("tx", wave1);
    source_yaml(yaml, sizeof(yaml),
                "    topic: %s\n"
                "    startup: earliest\n"
                "    stop_at: latest\n"
                TX_SCHEMA, T("tx"));
    h_configure_ok(h, yaml, "src", WEIR_ROLE_SOURCE, NULL);
    h_open(h, 2);
    gen("tx", wave2);                      /* after open: past the end offsets */
    read_topic("tx", &topic);
    assert_int_equal(topic.n, 1500);       /* they did arrive */
    read_bounded(h, 2, rows);
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < rows[s].n; i++)
            h_rows_add(&all, strdup(rows[s].rows[i]));
    gen_print(&pr, 0, wave1);
    expected_rows(&pr, 0, pr.n, &want);
    expect_same_rows(&all, &want, "bounded read after a second wave");
    h_close(h);
    for (int s = 0; s < 2; s++)
        h_rows_free(&rows[s]);
    h_rows_free(&all);
    h_rows_free(&want);
    printed_free(&pr);
    recs_free(&topic);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

static void
test_kafka_source_reads_several_topics_and_idles_without_partitions(void **state)
{
    const char *const a[] = { "--count", "300", "--accounts", "1000", "--seed", "8", NULL };
    const char *const b[] = { "--count", "200", "--accounts", "1000", "--seed", "9", NULL };
    printed_t pa, pb;
    h_rows_t rows[3] = { { 0 } }, all = { 0 }, want = { 0 };
    char yaml[2048];
    h_op_t *h = &ops[0];
    int owner_one;

    (void)state;
    start_broker("one:1,many:5");
    if (NPART("one") != 1) {
        print_message("topic 'one' has %d partitions, not 1 (the broker could only auto-create "
                      "it): the case needs subtasks without a partition\n", NPART("one"));
        skip();
    }
    gen("one", a);
    gen("many", b);
    source_yaml(yaml, sizeof(yaml),
                "    topics: [%s, %s]\n"
                "    startup: earliest\n"
                "    stop_at: latest\n"
                TX_SCHEMA, T("one"), T("many"));
    h_configure_ok(h, yaml, "src", WEIR_ROLE_SOURCE, NULL);
    h_open(h, 3);
    read_bounded(h, 3, rows);
    owner_one = wk_partition_owner(T("one"), 0, 3);
    for (int s = 0; s < 3; s++) {
        int owned = s == owner_one;

        for (int p = 0; p < NPART("many"); p++)
            owned += wk_partition_owner(T("many"), p, 3) == s;
        /* a subtask that owns nothing has no rows (and reached EOS above) */
        if (owned == 0)
            assert_int_equal(rows[s].n, 0);
        for (int i = 0; i < rows[s].n; i++)
            h_rows_add(&all, strdup(rows[s].rows[i]));
    }
    gen_print(&pa, 0, a);
    gen_print(&pb, 0, b);
    expected_rows(&pa, 0, pa.n, &want);
    expected_rows(&pb, 0, pb.n, &want);
    expect_same_rows(&all, &want, "two topics");
    h_close(h);

    /* 1 partition, 3 subtasks: two of them own nothing and finish at once */
    source_yaml(yaml, sizeof(yaml),
                "    topic: %s\n"
                "    startup: earliest\n"
                "    stop_at: latest\n"
                TX_SCHEMA, T("one"));
    h_configure_ok(h, yaml, "src", WEIR_ROLE_SOURCE, NULL);
    h_open(h, 3);
    for (int s = 0; s < 3; s++) {
        weir_batch_t *out;
        int64_t idle = 0;

        if (s == owner_one)
            continue;
        out = weir_batch_new(h->cfg.output_schema, 16);
        assert_int_equal(h->cfg.kind->poll(&h->op[s], out, 16, &idle, &h->err), WEIR_EOS);
        assert_int_equal(out->nrows, 0);
        weir_batch_destroy(out);
    }
    h_close(h);
    for (int s = 0; s < 3; s++)
        h_rows_free(&rows[s]);
    h_rows_free(&all);
    h_rows_free(&want);
    printed_free(&pa);
    printed_free(&pb);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

/* ---- source: malformed records -------------------------------------------- */

static const char *const malformed_args[] = { "--count", "700", "--accounts", "1000", "--seed",
                                              "4", "--malformed", "7", NULL };

/* The reason a malformed record of kind bad must give. */
static void
check_reason(const char *reason, int bad, const char *value)
{
    assert_non_null(reason);
    assert_true(strlen(reason) > 0);
    if (bad == 1 && strstr(reason, "transaction_date") == NULL)
        fail_msg("reason '%s' for a missing transaction_date: %s", reason, value);
    if (bad == 2 && strstr(reason, "transaction_amount") == NULL)
        fail_msg("reason '%s' for a string transaction_amount: %s", reason, value);
    if (bad == 0 && (strstr(reason, "transaction_date") != NULL ||
                     strstr(reason, "transaction_amount") != NULL))
        fail_msg("reason '%s' for a value that is not JSON: %s", reason, value);
}

/* Reads the malformed topic with dead_letter 'dl' (may be NULL) at
 * parallelism 2 and checks the valid rows and the per-subtask counts;
 * leaves the source open in *h for the caller to inspect and close. */
static void
read_malformed(h_op_t *h, const char *dl, const printed_t *pr, const recs_t *topic)
{
    h_rows_t rows[2] = { { 0 } }, all = { 0 }, want = { 0 };
    char yaml[2048], body[1024];
    uint64_t per_subtask[2] = { 0, 0 };

    snprintf(body, sizeof(body),
             "    topic: %s\n"
             "    startup: earliest\n"
             "    stop_at: latest\n"
             "%s%s%s"
             TX_SCHEMA, T("tx"),
             dl ? "    dead_letter: " : "", dl ? dl : "", dl ? "\n" : "");
    source_yaml(yaml, sizeof(yaml), "%s", body);
    h_configure_ok(h, yaml, "src", WEIR_ROLE_SOURCE, NULL);
    h_open(h, 2);
    read_bounded(h, 2, rows);
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < rows[s].n; i++)
            h_rows_add(&all, strdup(rows[s].rows[i]));
    expected_rows(pr, 0, pr->n, &want);
    assert_int_equal(want.n, 600);
    expect_same_rows(&all, &want, "valid rows among malformed ones");
    /* each subtask counted the malformed records of its own partitions */
    for (size_t i = 0; i < pr->n; i++) {
        const rec_t *r;

        if (pr->bad[i] < 0)
            continue;
        r = rec_by_key(topic, pr->key[i], strlen(pr->key[i]));
        assert_non_null(r);
        per_subtask[wk_partition_owner(T("tx"), r->partition, 2)]++;
    }
    assert_int_equal(per_subtask[0] + per_subtask[1], 100);
    assert_int_equal(weir_op_kafka_source_dead_lettered(&h->op[0]), per_subtask[0]);
    assert_int_equal(weir_op_kafka_source_dead_lettered(&h->op[1]), per_subtask[1]);
    for (int s = 0; s < 2; s++)
        h_rows_free(&rows[s]);
    h_rows_free(&all);
    h_rows_free(&want);
}

static void
test_kafka_source_dead_letters_malformed_records_to_a_topic_with_headers(void **state)
{
    printed_t pr;
    recs_t topic, dlq;
    bool *seen;
    h_op_t *h = &ops[0];
    char dl[KH_NAME_LEN + 16];

    (void)state;
    start_broker("tx:16,tx-dlq:4");
    gen("tx", malformed_args);
    gen_print(&pr, 7, malformed_args);
    read_topic("tx", &topic);
    assert_int_equal(topic.n, 700);
    snprintf(dl, sizeof(dl), "{topic: %s}", T("tx-dlq"));
    read_malformed(h, dl, &pr, &topic);

    /* at WEIR_EOS, before close: every dead letter is already delivered */
    read_topic("tx-dlq", &dlq);
    assert_int_equal(dlq.n, 100);
    seen = calloc(pr.n, sizeof(bool));
    assert_non_null(seen);
    for (size_t i = 0; i < dlq.n; i++) {
        const rec_t *d = &dlq.r[i], *orig;
        long idx;
        char num[32];

        assert_false(d->key_null);
        idx = printed_find(&pr, d->key, d->key_len);
        if (idx < 0)
            fail_msg("dead letter with an unknown key: %s", d->key);
        if (pr.bad[idx] < 0)
            fail_msg("a valid record was dead-lettered: %s", pr.value[idx]);
        assert_false(seen[idx]);
        seen[idx] = true;
        /* the original value, byte for byte */
        assert_false(d->value_null);
        assert_int_equal(d->value_len, strlen(pr.value[idx]));
        assert_memory_equal(d->value, pr.value[idx], d->value_len);
        /* headers locate the source record exactly */
        orig = rec_by_key(&topic, d->key, d->key_len);
        assert_non_null(orig);
        assert_int_equal(orig->value_len, d->value_len);
        assert_memory_equal(orig->value, d->value, d->value_len);
        assert_int_equal(d->nh, 4);
        assert_string_equal(header(d, "weir.dlq.topic"), T("tx"));
        snprintf(num, sizeof(num), "%d", (int)orig->partition);
        assert_string_equal(header(d, "weir.dlq.partition"), num);
        snprintf(num, sizeof(num), "%" PRId64, orig->offset);
        assert_string_equal(header(d, "weir.dlq.offset"), num);
        check_reason(header(d, "weir.dlq.reason"), pr.bad[idx], pr.value[idx]);
    }
    h_close(h);
    free(seen);
    recs_free(&dlq);
    recs_free(&topic);
    printed_free(&pr);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

static void
test_kafka_source_dead_letters_malformed_records_to_json_lines(void **state)
{
    printed_t pr;
    recs_t topic;
    char dl[512], dir[400];
    size_t lines_total = 0;
    bool *seen;
    h_op_t *h = &ops[0];

    (void)state;
    start_broker("tx:16");
    gen("tx", malformed_args);
    gen_print(&pr, 7, malformed_args);
    read_topic("tx", &topic);
    snprintf(dir, sizeof(dir), "%s/dlq", tmpdir);
    snprintf(dl, sizeof(dl), "{path: %s}", dir);
    read_malformed(h, dl, &pr, &topic);
    seen = calloc(pr.n, sizeof(bool));
    assert_non_null(seen);
    for (int s = 0; s < 2; s++) {
        char file[512];
        FILE *f;
        char *line = NULL;
        size_t cap = 0, nlines = 0;
        ssize_t len;

        snprintf(file, sizeof(file), "%s/src-%d.jsonl", dir, s);
        f = fopen(file, "r");
        if (f == NULL)
            fail_msg("no dead-letter file %s: %s", file, strerror(errno));
        while ((len = getline(&line, &cap, f)) > 0) {
            json_error_t jerr;
            json_t *j = json_loadb(line, (size_t)len, 0, &jerr);
            const char *key, *value;
            const rec_t *orig;
            long idx;

            if (j == NULL)
                fail_msg("%s: not a JSON line (%s): %s", file, jerr.text, line);
            assert_int_equal(json_object_size(j), 6);
            key = json_string_value(json_object_get(j, "key"));
            value = json_string_value(json_object_get(j, "value"));
            assert_non_null(key);
            assert_non_null(value);
            idx = printed_find(&pr, key, strlen(key));
            assert_true(idx >= 0);
            assert_true(pr.bad[idx] >= 0);
            assert_false(seen[idx]);
            seen[idx] = true;
            assert_string_equal(value, pr.value[idx]);
            orig = rec_by_key(&topic, key, strlen(key));
            assert_non_null(orig);
            assert_int_equal(wk_partition_owner(T("tx"), orig->partition, 2), s);
            assert_string_equal(json_string_value(json_object_get(j, "topic")), T("tx"));
            assert_int_equal(json_integer_value(json_object_get(j, "partition")),
                             orig->partition);
            assert_int_equal(json_integer_value(json_object_get(j, "offset")), orig->offset);
            check_reason(json_string_value(json_object_get(j, "reason")), pr.bad[idx],
                         pr.value[idx]);
            json_decref(j);
            nlines++;
        }
        free(line);
        fclose(f);
        assert_int_equal(nlines, weir_op_kafka_source_dead_lettered(&h->op[s]));
        lines_total += nlines;
    }
    assert_int_equal(lines_total, 100);
    h_close(h);

    /* no dead-letter output: the same rows, the same counts */
    read_malformed(h, NULL, &pr, &topic);
    h_close(h);
    free(seen);
    recs_free(&topic);
    printed_free(&pr);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

/* ---- source: offsets ------------------------------------------------------ */

/* Asserts group's committed offsets on topic equal the high watermarks
 * (both the test's names). */
static bool
committed_at_end(const char *group, const char *topic, int n, bool must)
{
    int64_t off[64];

    committed(group, topic, n, off);
    for (int p = 0; p < n; p++) {
        int64_t lo, hi;

        kh_watermarks(broker.bootstrap, T(topic), p, &lo, &hi);
        if (off[p] != hi) {
            if (must)
                fail_msg("group %s: %s[%d] committed %" PRId64 ", end %" PRId64, group, topic, p,
                         off[p], hi);
            return false;
        }
    }
    return true;
}

static void
test_kafka_source_commits_group_offsets_periodically_and_at_the_end(void **state)
{
    const char *const args[] = { "--count", "1000", "--accounts", "1000", "--seed", "10", NULL };
    h_rows_t rows[2] = { { 0 } };
    char yaml[2048];
    int64_t off[64];
    double deadline;
    h_op_t *h = &ops[0];

    (void)state;
    start_broker("tx:16");
    gen("tx", args);

    /* unbounded: the periodic commit brings the group to the end while the
     * source is still open */
    source_yaml(yaml, sizeof(yaml),
                "    topic: %s\n"
                "    startup: earliest\n"
                "    group: %s\n"
                "    commit_interval: 100ms\n"
                TX_SCHEMA, T("tx"), T("periodic"));
    h_configure_ok(h, yaml, "src", WEIR_ROLE_SOURCE, NULL);
    h_open(h, 2);
    committed("periodic", "tx", NPART("tx"), off);
    for (int p = 0; p < NPART("tx"); p++)
        assert_true(off[p] < 0);           /* nothing committed yet */
    deadline = now_s() + 20;
    while (rows[0].n + rows[1].n < 1000 && now_s() < deadline)
        for (int s = 0; s < 2; s++)
            poll_for(h, s, rows[s].n + 1, &rows[s], 200);
    assert_int_equal(rows[0].n + rows[1].n, 1000);
    /* well within the default interval (5 s): it is the 100 ms one */
    deadline = now_s() + 2.5;
    for (;;) {
        for (int s = 0; s < 2; s++)
            poll_for(h, s, rows[s].n + 1, &rows[s], 150);
        if (committed_at_end("periodic", "tx", NPART("tx"), false))
            break;
        if (now_s() > deadline)
            committed_at_end("periodic", "tx", NPART("tx"), true);   /* fails, saying where */
    }
    assert_int_equal(rows[0].n + rows[1].n, 1000);
    h_close(h);
    h_rows_free(&rows[0]);
    h_rows_free(&rows[1]);

    /* bounded: the commit when it stops */
    source_yaml(yaml, sizeof(yaml),
                "    topic: %s\n"
                "    startup: earliest\n"
                "    stop_at: latest\n"
                "    group: %s\n"
                "    commit_interval: 100ms\n"
                TX_SCHEMA, T("tx"), T("bounded"));
    h_configure_ok(h, yaml, "src", WEIR_ROLE_SOURCE, NULL);
    h_open(h, 3);
    {
        h_rows_t r3[3] = { { 0 } };

        read_bounded(h, 3, r3);
        assert_int_equal(r3[0].n + r3[1].n + r3[2].n, 1000);
        for (int s = 0; s < 3; s++)
            h_rows_free(&r3[s]);
    }
    h_close(h);
    committed_at_end("bounded", "tx", NPART("tx"), true);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

static void
test_kafka_source_group_offsets_resume_after_the_committed_offsets(void **state)
{
    const char *const wave1[] = { "--count", "800", "--accounts", "1000", "--seed", "12", NULL };
    const char *const wave2[] = { "--count", "300", "--accounts", "1000", "--seed", "13", NULL };
    printed_t p1, p2;
    h_rows_t rows[2] = { { 0 } }, all = { 0 }, want = { 0 };
    char yaml[2048];
    h_op_t *h = &ops[0];

    (void)state;
    start_broker("tx:16");
    gen("tx", wave1);
    gen_print(&p1, 0, wave1);
    gen_print(&p2, 0, wave2);

    /* first run: reads wave 1 and commits (group G) */
    source_yaml(yaml, sizeof(yaml),
                "    topic: %s\n"
                "    startup: group-offsets\n"
                "    stop_at: latest\n"
                "    group: %s\n"
                "    commit_interval: 100ms\n"
                TX_SCHEMA, T("tx"), T("G"));
    h_configure_ok(h, yaml, "src", WEIR_ROLE_SOURCE, NULL);
    h_open(h, 2);
    read_bounded(h, 2, rows);
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < rows[s].n; i++)
            h_rows_add(&all, strdup(rows[s].rows[i]));
        /* no committed offset is not a loss */
        assert_int_equal(weir_op_kafka_source_skipped(&h->op[s]), 0);
        h_rows_free(&rows[s]);
    }
    expected_rows(&p1, 0, p1.n, &want);
    expect_same_rows(&all, &want, "group without offsets starts at the beginning");
    h_rows_free(&all);
    h_rows_free(&want);
    h_close(h);
    committed_at_end("G", "tx", NPART("tx"), true);

    /* second run, same group, after wave 2: only wave 2 */
    gen("tx", wave2);
    h_configure_ok(h, yaml, "src", WEIR_ROLE_SOURCE, NULL);
    h_open(h, 2);
    read_bounded(h, 2, rows);
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < rows[s].n; i++)
            h_rows_add(&all, strdup(rows[s].rows[i]));
        assert_int_equal(weir_op_kafka_source_skipped(&h->op[s]), 0);
        h_rows_free(&rows[s]);
    }
    expected_rows(&p2, 0, p2.n, &want);
    expect_same_rows(&all, &want, "group offsets resume");
    h_rows_free(&all);
    h_rows_free(&want);
    h_close(h);
    committed_at_end("G", "tx", NPART("tx"), true);

    /* a new group with group_offsets_reset: latest reads nothing old */
    source_yaml(yaml, sizeof(yaml),
                "    topic: %s\n"
                "    startup: group-offsets\n"
                "    group_offsets_reset: latest\n"
                "    stop_at: latest\n"
                "    group: %s\n"
                TX_SCHEMA, T("tx"), T("fresh"));
    h_configure_ok(h, yaml, "src", WEIR_ROLE_SOURCE, NULL);
    h_open(h, 2);
    read_bounded(h, 2, rows);
    assert_int_equal(rows[0].n + rows[1].n, 0);
    assert_int_equal(weir_op_kafka_source_skipped(&h->op[0]) +
                     weir_op_kafka_source_skipped(&h->op[1]), 0);
    h_close(h);
    printed_free(&p1);
    printed_free(&p2);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

static void
test_kafka_source_latest_reads_only_new_records(void **state)
{
    const char *const old[] = { "--count", "500", "--accounts", "1000", "--seed", "14", NULL };
    const char *const new[] = { "--count", "200", "--accounts", "1000", "--seed", "15", NULL };
    printed_t pr;
    h_rows_t rows[2] = { { 0 } }, all = { 0 }, want = { 0 };
    char yaml[2048];
    h_op_t *h = &ops[0];
    double until;

    (void)state;
    start_broker("tx:16");
    gen("tx", old);

    /* bounded: nothing at all, at once */
    source_yaml(yaml, sizeof(yaml),
                "    topic: %s\n"
                "    startup: latest\n"
                "    stop_at: latest\n"
                TX_SCHEMA, T("tx"));
    h_configure_ok(h, yaml, "src", WEIR_ROLE_SOURCE, NULL);
    h_open(h, 2);
    read_bounded(h, 2, rows);
    assert_int_equal(rows[0].n + rows[1].n, 0);
    h_close(h);

    /* unbounded: none of the old records, every new one */
    source_yaml(yaml, sizeof(yaml),
                "    topic: %s\n"
                "    startup: latest\n"
                TX_SCHEMA, T("tx"));
    h_configure_ok(h, yaml, "src", WEIR_ROLE_SOURCE, NULL);
    h_open(h, 2);
    /* let both consumers find their end offsets before producing */
    until = now_s() + 1.5;
    while (now_s() < until)
        for (int s = 0; s < 2; s++)
            poll_for(h, s, 1, &rows[s], 100);
    assert_int_equal(rows[0].n + rows[1].n, 0);
    gen("tx", new);
    until = now_s() + 20;
    while (rows[0].n + rows[1].n < 200 && now_s() < until)
        for (int s = 0; s < 2; s++)
            poll_for(h, s, rows[s].n + 1, &rows[s], 100);
    /* and nothing more arrives */
    for (int s = 0; s < 2; s++)
        poll_for(h, s, rows[s].n + 1, &rows[s], 300);
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < rows[s].n; i++)
            h_rows_add(&all, strdup(rows[s].rows[i]));
    gen_print(&pr, 0, new);
    expected_rows(&pr, 0, pr.n, &want);
    expect_same_rows(&all, &want, "startup latest");
    h_close(h);
    for (int s = 0; s < 2; s++)
        h_rows_free(&rows[s]);
    h_rows_free(&all);
    h_rows_free(&want);
    printed_free(&pr);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

static void
test_kafka_source_timestamp_reads_only_the_second_wave(void **state)
{
    const char *const wave1[] = { "--count", "400", "--accounts", "1000", "--seed", "16", NULL };
    const char *const wave2[] = { "--count", "300", "--accounts", "1000", "--seed", "17", NULL };
    printed_t pr;
    h_rows_t rows[2] = { { 0 } }, all = { 0 }, want = { 0 };
    char yaml[2048];
    int64_t t_ms;
    bool broker_finds_times = false;
    h_op_t *h = &ops[0];

    (void)state;
    start_broker("tx:16");
    gen("tx", wave1);
    usleep(300000);
    t_ms = wall_ms();
    usleep(300000);
    gen("tx", wave2);

    /* Can this broker look offsets up by time? One that can finds an
     * offset (>= 0) in every partition that holds wave-2 records. */
    {
        rd_kafka_t *rk = client(RD_KAFKA_CONSUMER, broker.bootstrap, NULL);
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(NPART("tx"));

        for (int p = 0; p < NPART("tx"); p++)
            rd_kafka_topic_partition_list_add(l, T("tx"), p)->offset = t_ms;
        assert_int_equal(rd_kafka_offsets_for_times(rk, l, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
        for (int p = 0; p < NPART("tx"); p++)
            broker_finds_times |= l->elems[p].offset >= 0;
        rd_kafka_topic_partition_list_destroy(l);
        rd_kafka_destroy(rk);
    }

    source_yaml(yaml, sizeof(yaml),
                "    topic: %s\n"
                "    startup: timestamp\n"
                "    startup_timestamp: \"%" PRId64 "\"\n"
                "    stop_at: latest\n"
                TX_SCHEMA, T("tx"), t_ms);
    h_configure_ok(h, yaml, "src", WEIR_ROLE_SOURCE, NULL);
    h_open(h, 2);
    read_bounded(h, 2, rows);
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < rows[s].n; i++)
            h_rows_add(&all, strdup(rows[s].rows[i]));
    gen_print(&pr, 0, wave2);
    if (broker_finds_times) {
        expected_rows(&pr, 0, pr.n, &want);
        expect_same_rows(&all, &want, "startup timestamp");
    } else {
        /* whatever the broker says, nothing from before the time */
        printed_t p1;
        h_rows_t old = { 0 };

        gen_print(&p1, 0, wave1);
        expected_rows(&p1, 0, p1.n, &old);
        for (int i = 0; i < all.n; i++)
            for (int k = 0; k < old.n; k++)
                if (strcmp(all.rows[i], old.rows[k]) == 0)
                    fail_msg("startup timestamp read a record from before the time: %s",
                             all.rows[i]);
        h_rows_free(&old);
        printed_free(&p1);
    }
    h_close(h);
    for (int s = 0; s < 2; s++)
        h_rows_free(&rows[s]);
    h_rows_free(&all);
    h_rows_free(&want);
    printed_free(&pr);
    assert_int_equal(kh_broker_stop(&broker), 0);
    if (!broker_finds_times) {
        print_message("weir-kafka answers ListOffsets by timestamp with -1 (librdkafka's mock "
                      "cluster does not implement it): startup: timestamp cannot be checked "
                      "against it\n");
        skip();
    }
}

/* ---- source: records lost to retention ------------------------------------ */

static void
test_kafka_source_counts_records_lost_to_retention_exactly(void **state)
{
    const char *const args[] = { "--count", "40000", "--seed", "18", NULL };
    printed_t pr;
    h_rows_t rows[1] = { { 0 } }, want = { 0 };
    int64_t lo, hi;
    char yaml[2048];
    h_op_t *h = &ops[0];

    (void)state;
    KH_SKIP_IF_EXTERNAL("it relies on weir-kafka's retention of ~5 MB per partition to delete "
                        "records");
    start_broker("big:1");
    /* group G has read nothing yet: offset 0, committed before any record */
    commit_offset("G", "big", 0, 0);
    commit_offset("beyond", "big", 0, 100000);
    gen("big", args);                      /* ~10 MB: the broker drops the oldest */
    kh_watermarks(broker.bootstrap, T("big"), 0, &lo, &hi);
    assert_int_equal(hi, 40000);
    assert_true(lo > 0);
    gen_print(&pr, 0, args);

    /* group-offsets at 0: the first lo records are gone, counted exactly */
    source_yaml(yaml, sizeof(yaml),
                "    topic: %s\n"
                "    startup: group-offsets\n"
                "    stop_at: latest\n"
                "    group: %s\n"
                TX_SCHEMA, T("big"), T("G"));
    h_configure_ok(h, yaml, "src", WEIR_ROLE_SOURCE, NULL);
    h_open(h, 1);
    read_bounded(h, 1, rows);
    assert_int_equal(weir_op_kafka_source_skipped(&h->op[0]), (uint64_t)lo);
    expected_rows(&pr, (size_t)lo, (size_t)hi, &want);
    expect_same_rows(&rows[0], &want, "after records lost to retention");
    h_close(h);
    h_rows_free(&rows[0]);

    /* earliest starts at the first offset the broker has: nothing lost */
    source_yaml(yaml, sizeof(yaml),
                "    topic: %s\n"
                "    startup: earliest\n"
                "    stop_at: latest\n"
                "    group: %s\n"
                TX_SCHEMA, T("big"), T("E"));
    h_configure_ok(h, yaml, "src", WEIR_ROLE_SOURCE, NULL);
    h_open(h, 1);
    read_bounded(h, 1, rows);
    assert_int_equal(weir_op_kafka_source_skipped(&h->op[0]), 0);
    expect_same_rows(&rows[0], &want, "earliest after retention");
    h_close(h);
    h_rows_free(&rows[0]);

    /* a committed offset past the end: starts over at the first, loses nothing */
    source_yaml(yaml, sizeof(yaml),
                "    topic: %s\n"
                "    startup: group-offsets\n"
                "    stop_at: latest\n"
                "    group: %s\n"
                TX_SCHEMA, T("big"), T("beyond"));
    h_configure_ok(h, yaml, "src", WEIR_ROLE_SOURCE, NULL);
    h_open(h, 1);
    read_bounded(h, 1, rows);
    assert_int_equal(weir_op_kafka_source_skipped(&h->op[0]), 0);
    expect_same_rows(&rows[0], &want, "committed offset beyond the end");
    h_close(h);
    h_rows_free(&rows[0]);
    h_rows_free(&want);
    printed_free(&pr);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

static void
test_kafka_source_counts_records_deleted_while_it_reads(void **state)
{
    /* wave A in batches of 10 records, so that the consumer (one batch per
     * fetch, 1 KB of local queue) is still in wave A when wave B arrives */
    const char *const a[] = { "--count", "1000", "--seed", "22", "-X", "batch.num.messages=10",
                              NULL };
    const char *const b[] = { "--count", "40000", "--seed", "23", NULL };
    printed_t pa, pb;
    h_rows_t rows[1] = { { 0 } }, want = { 0 };
    int64_t lo, hi, k;
    uint64_t skipped = 0;
    char yaml[2048];
    double deadline;
    h_op_t *h = &ops[0];

    (void)state;
    KH_SKIP_IF_EXTERNAL("it relies on weir-kafka's retention of ~5 MB per partition to delete "
                        "records while the source reads");
    start_broker("big:1");
    gen("big", a);
    source_yaml(yaml, sizeof(yaml),
                "    topic: %s\n"
                "    startup: earliest\n"
                "    group: %s\n"
                "    properties: {queued.max.messages.kbytes: \"1\", "
                "max.partition.fetch.bytes: \"1\"}\n"
                TX_SCHEMA, T("big"), T("R"));
    h_configure_ok(h, yaml, "src", WEIR_ROLE_SOURCE, NULL);
    h_open(h, 1);
    poll_for(h, 0, 10, &rows[0], 10000);
    assert_true(rows[0].n >= 10);
    gen("big", b);                         /* the broker drops wave A and more */
    kh_watermarks(broker.bootstrap, T("big"), 0, &lo, &hi);
    assert_int_equal(hi, 41000);
    assert_true(lo > 1000);
    deadline = now_s() + 30;
    while (now_s() < deadline) {
        skipped = weir_op_kafka_source_skipped(&h->op[0]);
        if ((int64_t)rows[0].n + (int64_t)skipped >= hi)
            break;
        poll_for(h, 0, rows[0].n + 1, &rows[0], 200);
    }
    /* read [0, k), lost [k, lo) exactly, read [lo, hi) */
    k = lo - (int64_t)skipped;
    assert_true(skipped > 0);
    assert_true(k >= 10 && k < 1000);
    gen_print(&pa, 0, a);
    gen_print(&pb, 0, b);
    expected_rows(&pa, 0, (size_t)k, &want);
    expected_rows(&pb, (size_t)(lo - 1000), (size_t)(hi - 1000), &want);
    expect_same_rows(&rows[0], &want, "records deleted while reading");
    h_close(h);
    h_rows_free(&rows[0]);
    h_rows_free(&want);
    printed_free(&pa);
    printed_free(&pb);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

/* ---- sink ------------------------------------------------------------------- */

/* The printed records as a batch of account_id:int, customer_id:string,
 * transaction_id:string, transaction_amount:double, transaction_date:timestamp. */
static weir_batch_t *
tx_batch(weir_schema_t *s, const printed_t *pr, size_t from, size_t to)
{
    weir_batch_t *b = weir_batch_new(s, 64);

    assert_non_null(b);
    for (size_t i = from; i < to; i++) {
        json_t *j = json_loads(pr->value[i], 0, NULL);
        weir_value_t *v = weir_batch_append(b);
        const char *str;
        int64_t us;

        assert_non_null(j);
        assert_non_null(v);
        v[0] = weir_value_int(json_integer_value(json_object_get(j, "account_id")));
        str = json_string_value(json_object_get(j, "customer_id"));
        v[1] = weir_value_str(str, (uint32_t)strlen(str));
        assert_int_equal(weir_batch_own(b, &v[1]), 0);
        str = json_string_value(json_object_get(j, "transaction_id"));
        v[2] = weir_value_str(str, (uint32_t)strlen(str));
        assert_int_equal(weir_batch_own(b, &v[2]), 0);
        v[3] = weir_value_double(json_real_value(json_object_get(j, "transaction_amount")));
        str = json_string_value(json_object_get(j, "transaction_date"));
        assert_int_equal(weir_ts_parse(str, strlen(str), &us), 0);
        v[4] = weir_value_ts(us);
        json_decref(j);
    }
    return b;
}

static void
test_kafka_sink_writes_json_rows_keyed_and_partitioned_like_java(void **state)
{
    const char *const args[] = { "--count", "1000", "--accounts", "200", "--seed", "19", NULL };
    weir_schema_t *s = h_schema("account_id:int, customer_id:string, transaction_id:string, "
                                "transaction_amount:double, transaction_date:timestamp");
    printed_t pr;
    recs_t out, src;
    char yaml[2048];
    int *copies;
    h_op_t *h = &ops[0];

    (void)state;
    start_broker("tx:16,out:16,by-account:16");
    gen("tx", args);
    gen_print(&pr, 0, args);

    /* key_fields account_id;transaction_id; every row sent twice */
    sink_yaml(yaml, sizeof(yaml),
              "    topic: %s\n"
              "    format: json\n"
              "    key_fields: \"account_id;transaction_id\"\n", T("out"));
    h_configure_ok(h, yaml, "out", WEIR_ROLE_SINK, s);
    h_open(h, 1);
    for (int round = 0; round < 2; round++)
        for (size_t from = 0; from < pr.n; from += 250) {
            weir_batch_t *b = tx_batch(s, &pr, from, from + 250 < pr.n ? from + 250 : pr.n);
            if (h_process(h, 0, b, NULL) != 0)
                fail_msg("process: %s", h->err.msg);
            weir_batch_destroy(b);
        }
    if (h_finish(h, 0, NULL) != 0)
        fail_msg("finish: %s", h->err.msg);
    /* finish returned: everything is in the topic (close would drop the rest) */
    read_topic("out", &out);
    assert_int_equal(out.n, 2 * pr.n);
    copies = calloc(pr.n, sizeof(int));
    assert_non_null(copies);
    for (size_t i = 0; i < out.n; i++) {
        const rec_t *r = &out.r[i];
        long idx = printed_find(&pr, r->key, r->key_len);
        json_t *want = NULL, *got;
        weir_buf_t wbuf = WEIR_BUF_INIT;
        weir_batch_t *b;

        if (idx < 0)
            fail_msg("record with an unexpected key: %s", r->key);
        copies[idx]++;
        /* key: {"account_id":N,"transaction_id":"..."}, exactly what weir-gen keyed */
        assert_string_equal(r->key, pr.key[idx]);
        /* partition: the Java client's for that key */
        assert_int_equal(r->partition, java_partition(r->key, r->key_len, NPART("out")));
        /* value: the row as JSON, the same fields and values as the input */
        b = tx_batch(s, &pr, (size_t)idx, (size_t)idx + 1);
        assert_int_equal(weir_json_write_row(s, weir_batch_row(b, 0), &wbuf), 0);
        assert_int_equal(r->value_len, wbuf.len);
        assert_memory_equal(r->value, wbuf.data, wbuf.len);
        weir_buf_free(&wbuf);
        weir_batch_destroy(b);
        want = json_loads(pr.value[idx], 0, NULL);
        got = json_loads(r->value, 0, NULL);
        assert_non_null(got);
        assert_int_equal(json_object_size(got), 5);
        assert_int_equal(json_integer_value(json_object_get(got, "account_id")),
                         json_integer_value(json_object_get(want, "account_id")));
        assert_string_equal(json_string_value(json_object_get(got, "customer_id")),
                            json_string_value(json_object_get(want, "customer_id")));
        assert_string_equal(json_string_value(json_object_get(got, "transaction_id")),
                            json_string_value(json_object_get(want, "transaction_id")));
        assert_true(json_number_value(json_object_get(got, "transaction_amount")) ==
                    json_real_value(json_object_get(want, "transaction_amount")));
        assert_string_equal(json_string_value(json_object_get(got, "transaction_date")),
                            json_string_value(json_object_get(want, "transaction_date")));
        json_decref(got);
        json_decref(want);
        /* both copies of a key: the same partition */
        for (size_t k = 0; k < i; k++)
            if (out.r[k].key_len == r->key_len && memcmp(out.r[k].key, r->key, r->key_len) == 0)
                assert_int_equal(out.r[k].partition, r->partition);
    }
    for (size_t i = 0; i < pr.n; i++)
        assert_int_equal(copies[i], 2);
    free(copies);
    recs_free(&out);
    h_close(h);

    /* keyed by account_id alone: each row lands in the partition weir-gen
     * (librdkafka's murmur2) put its transaction in */
    sink_yaml(yaml, sizeof(yaml),
              "    topic: %s\n"
              "    key_fields: [account_id]\n", T("by-account"));
    h_configure_ok(h, yaml, "out", WEIR_ROLE_SINK, s);
    h_open(h, 1);
    {
        weir_batch_t *b = tx_batch(s, &pr, 0, pr.n);
        assert_int_equal(h_process(h, 0, b, NULL), 0);
        weir_batch_destroy(b);
    }
    assert_int_equal(h_finish(h, 0, NULL), 0);
    read_topic("by-account", &out);
    read_topic("tx", &src);
    assert_int_equal(out.n, pr.n);
    assert_int_equal(src.n, pr.n);
    for (size_t i = 0; i < out.n; i++) {
        json_t *v = json_loads(out.r[i].value, 0, NULL);
        char key[64], needle[64];
        const rec_t *orig = NULL;

        assert_non_null(v);
        snprintf(key, sizeof(key), "{\"account_id\":%lld}",
                 (long long)json_integer_value(json_object_get(v, "account_id")));
        assert_string_equal(out.r[i].key, key);
        snprintf(needle, sizeof(needle), "\"transaction_id\":\"%s\"}",
                 json_string_value(json_object_get(v, "transaction_id")));
        for (size_t k = 0; k < src.n && orig == NULL; k++)
            if (strstr(src.r[k].key, needle) != NULL)
                orig = &src.r[k];
        assert_non_null(orig);
        assert_int_equal(out.r[i].partition, orig->partition);
        assert_int_equal(out.r[i].partition,
                         java_partition(key, strlen(key), NPART("by-account")));
        json_decref(v);
    }
    recs_free(&out);
    recs_free(&src);
    h_close(h);
    weir_schema_unref(s);
    printed_free(&pr);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

/* Produces one record to topic (the test's name) with a plain producer;
 * NULL key or value is null. */
static void
produce_raw(const char *name, int32_t partition, const void *key, size_t klen, const void *val,
            size_t vlen)
{
    const char *topic = T(name);
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER, broker.bootstrap, NULL);
    rd_kafka_resp_err_t e;

    e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                          RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE((void *)val, vlen),
                          RD_KAFKA_V_END);
    assert_int_equal(e, RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_flush(rk, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_outq_len(rk), 0);
    rd_kafka_destroy(rk);
}

static int
rec_content_cmp(const void *a, const void *b)
{
    const rec_t *x = a, *y = b;
    int c;

    if (x->key_null != y->key_null)
        return x->key_null ? -1 : 1;
    if (x->key_len != y->key_len)
        return x->key_len < y->key_len ? -1 : 1;
    if ((c = memcmp(x->key, y->key, x->key_len)) != 0)
        return c;
    if (x->value_null != y->value_null)
        return x->value_null ? -1 : 1;
    if (x->value_len != y->value_len)
        return x->value_len < y->value_len ? -1 : 1;
    return memcmp(x->value, y->value, x->value_len);
}

static void
test_kafka_raw_source_to_raw_sink_copies_bytes_exactly(void **state)
{
    static const char bin[] = { 'b', 0, 'i', '\xff', '\n', 'n', '"', '\\' };
    h_op_t *src = &ops[0], *snk = &ops[1];
    recs_t in, out;
    char yaml[2048];
    weir_batch_t *b;
    int eos = 0;

    (void)state;
    start_broker("raw-in:4,raw-out:4");
    gen("raw-in", malformed_args);         /* JSON, half JSON, whatever: bytes */
    produce_raw("raw-in", 0, NULL, 0, bin, sizeof(bin));          /* null key, binary value */
    produce_raw("raw-in", 1, "k\0ey", 4, NULL, 0);                /* tombstone */
    produce_raw("raw-in", 2, "", 0, "", 0);                       /* empty key and value */
    produce_raw("raw-in", 3, bin, sizeof(bin), "x", 1);           /* binary key */

    source_yaml(yaml, sizeof(yaml),
                "    topic: %s\n"
                "    format: raw\n"
                "    startup: earliest\n"
                "    stop_at: latest\n", T("raw-in"));
    h_configure_ok(src, yaml, "src", WEIR_ROLE_SOURCE, NULL);
    sink_yaml(yaml, sizeof(yaml),
              "    topic: %s\n"
              "    format: raw\n", T("raw-out"));
    h_configure_ok(snk, yaml, "out", WEIR_ROLE_SINK, src->cfg.output_schema);
    h_open(src, 1);
    h_open(snk, 1);
    b = weir_batch_new(src->cfg.output_schema, 300);
    assert_non_null(b);
    for (int polls = 0; !eos && polls < 100000; polls++) {
        int64_t idle = 0;
        int rc;

        weir_batch_clear(b);
        rc = src->cfg.kind->poll(&src->op[0], b, 300, &idle, &src->err);
        if (rc != 0 && rc != WEIR_EOS)
            fail_msg("poll: %s", src->err.msg);
        eos = rc == WEIR_EOS;
        if (b->nrows > 0 && h_process(snk, 0, b, NULL) != 0)
            fail_msg("process: %s", snk->err.msg);
    }
    assert_true(eos);
    weir_batch_destroy(b);
    if (h_finish(snk, 0, NULL) != 0)
        fail_msg("finish: %s", snk->err.msg);
    read_topic("raw-in", &in);
    read_topic("raw-out", &out);
    assert_int_equal(in.n, 704);
    assert_int_equal(out.n, in.n);
    qsort(in.r, in.n, sizeof(*in.r), rec_content_cmp);
    qsort(out.r, out.n, sizeof(*out.r), rec_content_cmp);
    for (size_t i = 0; i < in.n; i++) {
        const rec_t *x = &in.r[i], *y = &out.r[i];

        if (rec_content_cmp(x, y) != 0)
            fail_msg("record %zu differs: in key%s '%s' value%s '%s', out key%s '%s' value%s "
                     "'%s'", i, x->key_null ? "(null)" : "", x->key,
                     x->value_null ? "(null)" : "", x->value, y->key_null ? "(null)" : "",
                     y->key, y->value_null ? "(null)" : "", y->value);
        /* keyed copies go where the Java client would put them */
        if (!y->key_null)
            assert_int_equal(y->partition, java_partition(y->key, y->key_len, NPART("raw-out")));
    }
    h_close(snk);
    h_close(src);
    recs_free(&in);
    recs_free(&out);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

static void
test_kafka_sink_refuses_a_message_too_large_naming_the_topic(void **state)
{
    weir_schema_t *s = h_schema("id:int, text:string");
    weir_batch_t *b = weir_batch_new(s, 4);
    char big[2000], yaml[2048];
    weir_value_t *v;
    h_op_t *h = &ops[0];
    char quoted[KH_NAME_LEN + 2];
    int rc;

    (void)state;
    start_broker("small:1");
    snprintf(quoted, sizeof(quoted), "'%s'", T("small"));
    memset(big, 'x', sizeof(big));
    v = weir_batch_append(b);
    v[0] = weir_value_int(1);
    v[1] = weir_value_str("fits", 4);
    v = weir_batch_append(b);
    v[0] = weir_value_int(2);
    v[1] = weir_value_str(big, sizeof(big));
    sink_yaml(yaml, sizeof(yaml),
              "    topic: %s\n"
              "    properties: {message.max.bytes: \"1000\"}\n", T("small"));
    h_configure_ok(h, yaml, "out", WEIR_ROLE_SINK, s);
    h_open(h, 1);
    rc = h_process(h, 0, b, NULL);
    assert_int_not_equal(rc, 0);
    if (strstr(h->err.msg, quoted) == NULL || strstr(h->err.msg, "too large") == NULL)
        fail_msg("error does not name the topic and the reason: %s", h->err.msg);
    h_close(h);
    weir_batch_destroy(b);
    weir_schema_unref(s);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

static void
test_kafka_sink_finish_fails_when_the_broker_is_gone(void **state)
{
    const char *const rows1[] = { "1|one", "2|two", NULL };
    const char *const rows2[] = { "3|three", "4|four", NULL };
    weir_schema_t *s;
    weir_batch_t *b1, *b2;
    recs_t out;
    char yaml[2048];
    double t0;
    h_op_t *h = &ops[0];
    int rc;

    (void)state;
    KH_SKIP_IF_EXTERNAL("it stops the broker");
    s = h_schema("id:int, text:string");
    b1 = h_batch(s, rows1);
    b2 = h_batch(s, rows2);
    start_broker("gone:2");
    sink_yaml(yaml, sizeof(yaml),
              "    topic: %s\n"
              "    properties: {message.timeout.ms: \"2000\",\n"
              "                 reconnect.backoff.max.ms: \"500\"}\n", T("gone"));
    h_configure_ok(h, yaml, "out", WEIR_ROLE_SINK, s);
    h_open(h, 1);
    assert_int_equal(h_process(h, 0, b1, NULL), 0);
    assert_int_equal(h_finish(h, 0, NULL), 0);
    read_topic("gone", &out);
    assert_int_equal(out.n, 2);
    recs_free(&out);

    assert_int_equal(kh_broker_stop(&broker), 0);
    t0 = now_s();
    rc = h_process(h, 0, b2, NULL);
    if (rc == 0)
        rc = h_finish(h, 0, NULL);
    assert_int_not_equal(rc, 0);
    assert_true(now_s() - t0 < 8);         /* message.timeout.ms, not forever */
    if (strstr(h->err.msg, "'gone'") == NULL || strstr(h->err.msg, "timed out") == NULL)
        fail_msg("error does not name the topic and the reason: %s", h->err.msg);
    t0 = now_s();
    h_close(h);
    assert_true(now_s() - t0 < 15);
    weir_batch_destroy(b1);
    weir_batch_destroy(b2);
    weir_schema_unref(s);
}

/* ---- configuration -------------------------------------------------------- */

static void
expect_source_error(const char *body, const char *needle, const char *part)
{
    char yaml[2048];
    h_op_t *h = &ops[0];

    source_yaml(yaml, sizeof(yaml), "%s", body);
    if (h_configure(h, yaml, "src", WEIR_ROLE_SOURCE, NULL) == 0)
        fail_msg("configure accepted:\n%s", yaml);
    h_expect_error_at(&h->err, yaml, needle, part);
    h_close(h);
}

static void
test_kafka_config_errors_point_at_the_line_and_column(void **state)
{
    weir_schema_t *s = h_schema("account_id:int, transaction_id:string");
    char yaml[2048];
    h_op_t *h = &ops[0];

    (void)state;
    strcpy(broker.bootstrap, "127.0.0.1:1");     /* no broker: plan time only */

    /* no bootstrap: at the node */
    snprintf(yaml, sizeof(yaml),
             "name: kt\n"
             "sources:\n"
             "  - name: src\n"
             "    kind: kafka\n"
             "    topic: tx\n"
             TX_SCHEMA
             "sinks:\n"
             "  - name: out\n"
             "    kind: print\n"
             "    input: src\n");
    assert_int_not_equal(h_configure(h, yaml, "src", WEIR_ROLE_SOURCE, NULL), 0);
    h_expect_error_at(&h->err, yaml, "name: src", "bootstrap");
    h_close(h);

    expect_source_error("    topic: tx\n"
                        "    topics: [a, b]\n"
                        TX_SCHEMA,
                        "name: src", "exactly one of 'topic' or 'topics'");
    expect_source_error("    topic: tx\n"
                        "    startup: earlist\n"
                        TX_SCHEMA,
                        "earlist", "'startup' must be one of earliest, latest, group-offsets, "
                        "timestamp, not 'earlist'");
    expect_source_error("    topic: tx\n"
                        "    properties:\n"
                        "      fetch.max.bytes: \"52428800\"\n"
                        "      fetch.max.bytez: \"1048576\"\n"
                        TX_SCHEMA,
                        "\"1048576\"", "fetch.max.bytez");
    expect_source_error("    topic: tx\n"
                        "    properties:\n"
                        "      client.rack: r1\n"
                        "      group.id: mine\n"
                        TX_SCHEMA,
                        "mine", "'group.id' is set by weir");
    expect_source_error("    topic: tx\n"
                        "    format: raw\n"
                        TX_SCHEMA,
                        "{account_id", "format raw has a fixed schema");
    expect_source_error("    topic: tx\n"
                        "    dead_letter: {topic: dlq, path: /tmp/x}\n"
                        TX_SCHEMA,
                        "{topic: dlq", "exactly one of 'topic' or 'path'");
    expect_source_error("    topic: tx\n"
                        "    startup_timestamp: \"2024-01-01 00:00:00\"\n"
                        TX_SCHEMA,
                        "\"2024-01-01", "needs 'startup: timestamp'");
    expect_source_error("    topic: tx\n"
                        "    dead_letter: {topic: tx}\n"
                        TX_SCHEMA,
                        "tx}", "must not be a topic the source reads");

    /* sink: key field with a typo */
    sink_yaml(yaml, sizeof(yaml),
              "    topic: out\n"
              "    key_fields: \"account_id;transaction_idd\"\n");
    assert_int_not_equal(h_configure(h, yaml, "out", WEIR_ROLE_SINK, s), 0);
    h_expect_error_at(&h->err, yaml, "\"account_id;", "did you mean 'transaction_id'");
    h_close(h);
    /* sink: an unknown property */
    sink_yaml(yaml, sizeof(yaml),
              "    topic: out\n"
              "    properties:\n"
              "      linger.ms: \"5\"\n"
              "      lingerr.ms: \"7\"\n");
    assert_int_not_equal(h_configure(h, yaml, "out", WEIR_ROLE_SINK, s), 0);
    h_expect_error_at(&h->err, yaml, "\"7\"", "lingerr.ms");
    h_close(h);
    weir_schema_unref(s);
    memset(broker.bootstrap, 0, sizeof(broker.bootstrap));
}

static void
test_kafka_source_open_fails_on_a_missing_topic(void **state)
{
    char yaml[2048], says[KH_NAME_LEN + 32];
    h_op_t *h = &ops[0];
    int rc;

    (void)state;
    start_broker("tx:2");
    source_yaml(yaml, sizeof(yaml),
                "    topic: %s\n"
                "    startup: earliest\n"
                TX_SCHEMA, T("nope"));
    h_configure_ok(h, yaml, "src", WEIR_ROLE_SOURCE, NULL);
    h->ctx[0] = (weir_op_ctx_t){ .job_id = "test", .log_prefix = "[test]", .subtask = 0,
                                .parallelism = 1, .max_parallelism = 128 };
    h->op[0].cfg = &h->cfg;
    h->op[0].ctx = &h->ctx[0];
    rc = h->cfg.kind->open(&h->op[0], &h->err);
    assert_int_equal(rc, WEIR_ENOENT);
    snprintf(says, sizeof(says), "'%s' does not exist", T("nope"));
    if (strstr(h->err.msg, says) == NULL)
        fail_msg("open error: %s", h->err.msg);
    assert_null(h->op[0].self);
    /* and asking did not create it */
    assert_int_equal(kh_topic_partitions(broker.bootstrap, T("nope"), false, NULL), -1);
    h_close(h);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

/* every case gets a scratch directory and leaves no broker or client behind */
#define CASE(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        CASE(test_kafka_source_bounded_read_splits_partitions_over_1_2_3_subtasks),
        CASE(test_kafka_source_bounded_read_ignores_records_produced_after_open),
        CASE(test_kafka_source_reads_several_topics_and_idles_without_partitions),
        CASE(test_kafka_source_dead_letters_malformed_records_to_a_topic_with_headers),
        CASE(test_kafka_source_dead_letters_malformed_records_to_json_lines),
        CASE(test_kafka_source_commits_group_offsets_periodically_and_at_the_end),
        CASE(test_kafka_source_group_offsets_resume_after_the_committed_offsets),
        CASE(test_kafka_source_latest_reads_only_new_records),
        CASE(test_kafka_source_timestamp_reads_only_the_second_wave),
        CASE(test_kafka_source_counts_records_lost_to_retention_exactly),
        CASE(test_kafka_source_counts_records_deleted_while_it_reads),
        CASE(test_kafka_sink_writes_json_rows_keyed_and_partitioned_like_java),
        CASE(test_kafka_raw_source_to_raw_sink_copies_bytes_exactly),
        CASE(test_kafka_sink_refuses_a_message_too_large_naming_the_topic),
        CASE(test_kafka_sink_finish_fails_when_the_broker_is_gone),
        CASE(test_kafka_config_errors_point_at_the_line_and_column),
        CASE(test_kafka_source_open_fails_on_a_missing_topic),
    };

    /* KAFKA_OPS_FILTER='*sink*' runs some of them (cmocka's wildcards) */
    if (getenv("KAFKA_OPS_FILTER") != NULL)
        cmocka_set_test_filter(getenv("KAFKA_OPS_FILTER"));
    return cmocka_run_group_tests_name("kafka_ops", tests, NULL, NULL);
}
