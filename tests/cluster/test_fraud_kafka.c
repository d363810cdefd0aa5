/* tests/cluster/test_fraud_kafka.c -- jobs/fraud-detection.yaml, end to end, on
 * Kafka: a weir-kafka broker, weir-gen producing the seed's datasets, a real
 * job manager and two task managers, and the output read back with an
 * independent consumer.
 *
 * What the job must produce is computed here, not by weir: `weir-gen --print
 * --print-keys` writes exactly the records a producing run writes (each
 * record is a function of the seed, its number and the options), so the test
 * parses those lines with jansson and applies the seed's SQL itself:
 *
 *   SELECT t.* FROM transactions t JOIN flagged_accounts a
 *     ON t.account_id = a.account_id AND t.transaction_date > a.flag_date
 *
 * (dates compared as their fixed-width "YYYY-MM-DD HH:MM:SS.ffffff" strings,
 * which order like the instants), leaving out the records `--malformed K`
 * replaced (records K, 2K, ... counting from 1). The output must hold exactly
 * those transaction ids, each value the input's JSON field for field (parsed
 * and compared with json_equal: amounts and dates must round-trip exactly),
 * each key the input's key {"account_id":..,"transaction_id":".."}.
 *
 * weir-gen has no option to skip the first flags (--count only shortens the
 * list), so a second wave of flags is produced here from the --print-keys
 * lines with a plain producer and the same murmur2 partitioner weir-gen
 * uses: the broker sees what one weir-gen run would have written.
 *
 * fraud_exact: bounded (STOP_AT=latest). Flags 1..150, then 100,000
 *   transactions with malformed ones mixed in, then flags 151..300; the job
 *   must reach FINISHED with the exact output, and the dead-letter topic
 *   must hold the malformed records, byte for byte, once each.
 *
 * fraud_unbounded_cancel_continue: unbounded, the transactions read from the
 *   group's offsets (a copy of the job file, see job_with_group_offsets()),
 *   from the first run on, as the job would be deployed. Wave 1 of
 *   transactions, then the flags in two waves while the job runs (so joins
 *   are made from either side); exact output; cancel; wave 2 of
 *   transactions; the job submitted again continues from the committed
 *   offsets. Without checkpoints the offsets are committed periodically and
 *   when a source closes, so records may be read twice: nothing may be
 *   missing, a wave-2 id appears once, a wave-1 id at most twice; the
 *   duplicates are counted and printed. The test cancels only after the
 *   whole of wave 1 is out: without checkpoints a new run starts with empty
 *   join state and a cancel drops what is in flight, so a transaction read
 *   (and committed) before its flag arrived, or not yet delivered, would be
 *   lost, not repeated.
 *
 * Against a real cluster (WEIR_TEST_KAFKA_BOOTSTRAP, see
 * tests/kafka/kafka_harness.h) the topics are created there under names of
 * their own, given to the job files through their *_TOPIC variables; the
 * output is read with isolation.level=read_committed either way.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "harness.h"
#include "../kafka/kafka_harness.h"

#define ACCOUNTS       1000
#define FIRST_ACCOUNT  1000000001LL
#define FLAGGED_SHARE  "0.3"
#define N_FLAGS        300
#define FLAGS_WAVE1    150
#define PARTITIONS     "16"
#define STR(x)         #x
#define XSTR(x)        STR(x)

/* The topics as named to weir-kafka (--topic), and as the broker knows
 * them: the same with weir-kafka, prefixed on an external cluster. */
#define NAME_TX        "transactions"
#define NAME_FLAGS     "flagged-accounts"
#define NAME_OUT       "flagged-transactions"
#define NAME_DLQ       "transactions-dead-letter"
#define TOPIC_TX       kh_topic(&broker, NAME_TX)
#define TOPIC_FLAGS    kh_topic(&broker, NAME_FLAGS)
#define TOPIC_OUT      kh_topic(&broker, NAME_OUT)
#define TOPIC_DLQ      kh_topic(&broker, NAME_DLQ)

/* ---- the datasets, as weir-gen --print writes them ------------------------ */

typedef struct {
    const char *key, *value;         /* into a run's stdout (borrowed) */
    size_t      key_len, value_len;
    json_t     *jkey;                /* parsed key (always JSON) */
    json_t     *jval;                /* parsed value; NULL when malformed */
    uint64_t    id;                  /* transaction_id (16 hex digits), or 0 */
    long long   account;
    int         wave;
    bool        malformed;
    bool        expect;              /* in the output once every flag is there */
    bool        want;                /* expected in the output now */
} rec_t;

typedef struct {
    rec_t    *recs;
    size_t    n, cap;
    kh_run_t  runs[4];               /* the outputs the records point into */
    int       nruns;
    size_t   *by_id;                 /* indexes of recs sorted by id */
} recs_t;

typedef struct {
    recs_t tx;                       /* transactions of every wave */
    recs_t flags;                    /* one per flagged account, in id order */
    char   flag_date[ACCOUNTS][32];  /* "" when the account is not flagged */
} data_t;

static kh_broker_t broker;

/* The job files' topic variables for the fraud job's topics. */
#define FRAUD_TOPIC_VARS "TRANSACTIONS_TOPIC", TOPIC_TX, "FLAGGED_TOPIC", TOPIC_FLAGS, \
                         "OUTPUT_TOPIC", TOPIC_OUT, "DEAD_LETTER_TOPIC", TOPIC_DLQ, \
                         "KAFKA_TXN_PREFIX", TOPIC_OUT

static int
teardown(void **state)
{
    int rc = hc_teardown(state);

    kh_stop_all();
    return rc;
}

/* Runs weir-gen DATASET --print --print-keys ARGS... and appends its records
 * to r (tagged with wave). */
static void
gen_print(recs_t *r, const char *dataset, int wave, const char *const *args)
{
    const char *argv[32];
    kh_run_t *run;
    char **lines;
    size_t n;
    int k = 0;

    assert_true(r->nruns < 4);
    argv[k++] = kh_bin("weir-gen");
    argv[k++] = dataset;
    argv[k++] = "--print";
    argv[k++] = "--print-keys";
    for (int i = 0; args[i] != NULL && k < 31; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    run = &r->runs[r->nruns++];
    kh_run(run, argv, 60000);
    if (run->status != 0)
        fail_msg("weir-gen %s --print exited %d: %s", dataset, run->status, run->err);
    n = kh_lines(run->out, &lines);
    if (r->n + n > r->cap) {
        r->cap = r->n + n;
        r->recs = realloc(r->recs, r->cap * sizeof(*r->recs));
        assert_non_null(r->recs);
    }
    for (size_t i = 0; i < n; i++) {
        rec_t *x = &r->recs[r->n++];
        char *tab = strchr(lines[i], '\t');

        if (tab == NULL)
            fail_msg("weir-gen --print-keys line without a tab: %s", lines[i]);
        *tab = '\0';
        memset(x, 0, sizeof(*x));
        x->key = lines[i];
        x->key_len = (size_t)(tab - lines[i]);
        x->value = tab + 1;
        x->value_len = strlen(tab + 1);
        x->wave = wave;
        x->jkey = json_loadb(x->key, x->key_len, 0, NULL);
        if (x->jkey == NULL)
            fail_msg("weir-gen key is not JSON: %s", x->key);
    }
    free(lines);
}

static void
recs_free(recs_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        json_decref(r->recs[i].jkey);
        json_decref(r->recs[i].jval);
    }
    for (int i = 0; i < r->nruns; i++)
        kh_run_free(&r->runs[i]);
    free(r->recs);
    free(r->by_id);
    memset(r, 0, sizeof(*r));
}

static bool
is_str(json_t *o, const char *f)
{
    return json_is_string(json_object_get(o, f));
}

/* A transaction value that the job's schema accepts, checked with jansson
 * alone: an object with the seven fields of their types. */
static bool
tx_valid(json_t *v)
{
    return json_is_object(v) && json_object_size(v) == 7 &&
           json_is_integer(json_object_get(v, "account_id")) &&
           json_is_real(json_object_get(v, "transaction_amount")) &&
           is_str(v, "customer_id") && is_str(v, "merchant_type") &&
           is_str(v, "transaction_id") && is_str(v, "transaction_type") &&
           is_str(v, "transaction_date");
}

/* The flags: every value valid, one per flagged account, in id order. */
static void
parse_flags(data_t *d)
{
    long long prev = 0;

    assert_int_equal(d->flags.n, N_FLAGS);
    for (size_t i = 0; i < d->flags.n; i++) {
        rec_t *f = &d->flags.recs[i];
        json_t *acc, *date;

        f->jval = json_loadb(f->value, f->value_len, 0, NULL);
        acc = json_object_get(f->jval, "account_id");
        date = json_object_get(f->jval, "flag_date");
        if (!json_is_integer(acc) || !json_is_string(date))
            fail_msg("unexpected flag record: %s", f->value);
        f->account = json_integer_value(acc);
        if (f->account < FIRST_ACCOUNT || f->account >= FIRST_ACCOUNT + ACCOUNTS ||
            f->account <= prev)
            fail_msg("flag %zu: account %lld out of range or order", i, f->account);
        prev = f->account;
        snprintf(d->flag_date[f->account - FIRST_ACCOUNT], 32, "%s", json_string_value(date));
    }
}

static const rec_t *sort_recs;       /* qsort has no argument: the records being sorted */

static int
by_id(const void *a, const void *b)
{
    uint64_t x = sort_recs[*(const size_t *)a].id, y = sort_recs[*(const size_t *)b].id;

    return x < y ? -1 : x > y;
}

/* Parses the transactions of wave 'wave' (malformed every K-th, K 0 for
 * none) and marks the expected ones (expect). Returns the number expected in
 * that wave; *before and *after count the well-formed transactions of
 * flagged accounts dated at or before, and after, the account's flag. */
static size_t
parse_transactions(data_t *d, int wave, long long k, size_t *before, size_t *after)
{
    recs_t *r = &d->tx;
    size_t want = 0, nth = 0;

    *before = *after = 0;
    for (size_t i = 0; i < r->n; i++) {
        rec_t *x = &r->recs[i];
        json_t *tid = json_object_get(x->jkey, "transaction_id");
        json_t *acc = json_object_get(x->jkey, "account_id");
        const char *flag;
        json_t *v;
        bool bad;

        if (x->wave != wave)
            continue;
        nth++;                                   /* 1-based within the run */
        if (!json_is_string(tid) || !json_is_integer(acc) || json_object_size(x->jkey) != 2 ||
            strlen(json_string_value(tid)) != 16)
            fail_msg("unexpected transaction key: %s", x->key);
        x->id = strtoull(json_string_value(tid), NULL, 16);
        x->account = json_integer_value(acc);
        assert_true(x->account >= FIRST_ACCOUNT && x->account < FIRST_ACCOUNT + ACCOUNTS);
        x->malformed = k > 0 && nth % (size_t)k == 0;
        v = json_loadb(x->value, x->value_len, 0, NULL);
        bad = !tx_valid(v) ||
              json_integer_value(json_object_get(v, "account_id")) != x->account ||
              strcmp(json_string_value(json_object_get(v, "transaction_id")),
                     json_string_value(tid)) != 0;
        if (bad != x->malformed)
            fail_msg("transaction %zu of wave %d is %s, but --malformed %lld says otherwise: %s",
                     nth, wave, bad ? "malformed" : "well-formed", k, x->value);
        if (bad) {
            json_decref(v);
            continue;
        }
        x->jval = v;
        flag = d->flag_date[x->account - FIRST_ACCOUNT];
        if (flag[0] == '\0')
            continue;
        if (strcmp(json_string_value(json_object_get(v, "transaction_date")), flag) > 0) {
            x->expect = x->want = true;
            want++;
            (*after)++;
        } else {
            (*before)++;
        }
    }
    return want;
}

/* The index by transaction id, once every wave is parsed; ids must be unique. */
static void
index_transactions(recs_t *r)
{
    free(r->by_id);
    r->by_id = malloc((r->n > 0 ? r->n : 1) * sizeof(size_t));
    assert_non_null(r->by_id);
    for (size_t i = 0; i < r->n; i++)
        r->by_id[i] = i;
    sort_recs = r->recs;
    qsort(r->by_id, r->n, sizeof(size_t), by_id);
    for (size_t i = 1; i < r->n; i++)
        if (r->recs[r->by_id[i]].id == r->recs[r->by_id[i - 1]].id)
            fail_msg("transaction id %016" PRIx64 " generated twice (waves %d and %d)",
                     r->recs[r->by_id[i]].id, r->recs[r->by_id[i - 1]].wave,
                     r->recs[r->by_id[i]].wave);
}

/* What the output must hold now: the expected transactions of waves up to
 * max_wave whose account is at most max_account (the flags produced so far
 * are the first ones in account order). Returns their count. */
static size_t
set_want(data_t *d, int max_wave, long long max_account)
{
    size_t n = 0;

    for (size_t i = 0; i < d->tx.n; i++) {
        rec_t *x = &d->tx.recs[i];

        x->want = x->expect && x->wave <= max_wave && x->account <= max_account;
        n += x->want;
    }
    return n;
}

/* The transaction record of a Kafka key, by its transaction_id; NULL if none. */
static rec_t *
tx_of_key(recs_t *r, const char *key, size_t key_len, json_t **jkey)
{
    json_t *tid;
    uint64_t id;
    size_t lo = 0, hi = r->n;

    *jkey = json_loadb(key, key_len, 0, NULL);
    tid = json_object_get(*jkey, "transaction_id");
    if (!json_is_string(tid) || strlen(json_string_value(tid)) != 16)
        return NULL;
    id = strtoull(json_string_value(tid), NULL, 16);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        uint64_t m = r->recs[r->by_id[mid]].id;

        if (m == id)
            return &r->recs[r->by_id[mid]];
        if (m < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- reading the output ------------------------------------------------------ */

typedef struct {
    size_t records;                  /* in the topic */
    size_t distinct;
    size_t missing;                  /* expected, not there */
    size_t dups;                     /* records beyond the first of their id */
    size_t max_seen;                 /* most copies of one id */
} tally_t;

/* Reads the output topic and checks every record against its input; fails at
 * once on a record that is not an expected transaction or differs from it.
 * Counts per transaction go to seen[] (index as in d->tx.recs). */
static tally_t
read_output(const char *bootstrap, data_t *d, unsigned *seen)
{
    kh_topic_t t;
    tally_t r = { 0 };

    memset(seen, 0, d->tx.n * sizeof(*seen));
    kh_topic_read(bootstrap, TOPIC_OUT, 30000, &t);
    r.records = t.n;
    for (size_t i = 0; i < t.n; i++) {
        kh_record_t *m = &t.recs[i];
        json_t *jkey, *jval;
        rec_t *x = tx_of_key(&d->tx, m->key, m->key_len, &jkey);

        if (x == NULL || !x->want)
            fail_msg("%s[%d]@%" PRId64 ": not an expected transaction (%s): key %s value %s",
                     TOPIC_OUT, (int)m->partition, m->offset,
                     x == NULL ? "unknown id" : "not dated after a flag of its account",
                     m->key, m->value);
        if (!json_equal(jkey, x->jkey))
            fail_msg("%s[%d]@%" PRId64 ": key %s, expected the input's key %s", TOPIC_OUT,
                     (int)m->partition, m->offset, m->key, x->key);
        jval = json_loadb(m->value, m->value_len, 0, NULL);
        if (jval == NULL || !json_equal(jval, x->jval))
            fail_msg("%s[%d]@%" PRId64 ": value\n  %s\nis not the input transaction\n  %s",
                     TOPIC_OUT, (int)m->partition, m->offset, m->value, x->value);
        json_decref(jval);
        json_decref(jkey);
        seen[x - d->tx.recs]++;
    }
    for (size_t i = 0; i < d->tx.n; i++) {
        if (seen[i] > 0)
            r.distinct++;
        if (seen[i] > 1)
            r.dups += seen[i] - 1;
        if (seen[i] > r.max_seen)
            r.max_seen = seen[i];
        if (d->tx.recs[i].want && seen[i] == 0)
            r.missing++;
    }
    kh_topic_free(&t);
    return r;
}

static void
first_missing(const data_t *d, const unsigned *seen, char *buf, size_t len)
{
    int shown = 0;
    size_t at = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < d->tx.n && shown < 5; i++)
        if (d->tx.recs[i].want && seen[i] == 0) {
            at += (size_t)snprintf(buf + at, len - at, "\n  wave %d: %s", d->tx.recs[i].wave,
                                   d->tx.recs[i].value);
            shown++;
            if (at >= len)
                break;
        }
}

/* ---- Kafka helpers ------------------------------------------------------------ */

static rd_kafka_t *
client(rd_kafka_type_t type, const char *bootstrap, rd_kafka_conf_t *conf)
{
    char errstr[512];
    rd_kafka_t *rk;

    if (conf == NULL)
        conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr)) != 0 ||
        rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != 0)
        fail_msg("librdkafka conf: %s", errstr);
    rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (rk == NULL)
        fail_msg("rd_kafka_new: %s", errstr);
    return rk;
}

/* Records in all partitions of topic (nothing is deleted at these sizes). */
static long long
topic_total(rd_kafka_t *rk, const char *topic, int nparts)
{
    long long total = 0;

    for (int p = 0; p < nparts; p++) {
        int64_t lo, hi;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000);

        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            fail_msg("watermarks of %s[%d]: %s", topic, p, rd_kafka_err2str(e));
        total += hi - lo;
    }
    return total;
}

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    int *failed = opaque;

    (void)rk;
    if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR && (*failed)++ == 0)
        fprintf(stderr, "delivery to %s[%d] failed: %s\n", rd_kafka_topic_name(m->rkt),
                (int)m->partition, rd_kafka_err2str(m->err));
}

/* Produces records [from, to) of r with their keys to topic, each to the
 * partition weir-gen would choose (murmur2 of the key, as its flagged-
 * accounts records are partitioned), idempotently; waits for every delivery. */
static void
produce_recs(const char *bootstrap, const char *topic, const recs_t *r, size_t from, size_t to)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    int failed = 0, nparts;
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    const struct rd_kafka_metadata *md;

    if (rd_kafka_conf_set(conf, "enable.idempotence", "true", errstr, sizeof(errstr)) != 0)
        fail_msg("librdkafka conf: %s", errstr);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, &failed);
    rk = client(RD_KAFKA_PRODUCER, bootstrap, conf);
    rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (rd_kafka_metadata(rk, 0, rkt, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        md->topic_cnt != 1 || md->topics[0].partition_cnt <= 0)
        fail_msg("no metadata for %s", topic);
    nparts = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    for (size_t i = from; i < to; i++) {
        const rec_t *x = &r->recs[i];
        int32_t part = rd_kafka_msg_partitioner_murmur2(rkt, x->key, x->key_len, nparts, NULL,
                                                        NULL);
        rd_kafka_resp_err_t e = rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt),
                                                  RD_KAFKA_V_PARTITION(part),
                                                  RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                                  RD_KAFKA_V_KEY(x->key, x->key_len),
                                                  RD_KAFKA_V_VALUE((void *)x->value, x->value_len),
                                                  RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            fail_msg("produce to %s: %s", topic, rd_kafka_err2str(e));
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 30000);
    if (rd_kafka_outq_len(rk) > 0 || failed > 0)
        fail_msg("%d of %zu records to %s not delivered", failed + rd_kafka_outq_len(rk),
                 to - from, topic);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
}

/* Runs weir-gen DATASET --bootstrap B --topic TOPIC ARGS... (topic as the
 * test names it); fails unless it exits 0. */
static void
gen_produce(const char *dataset, const char *topic, const char *const *args)
{
    const char *argv[32];
    kh_run_t run;
    int k = 0;

    argv[k++] = kh_bin("weir-gen");
    argv[k++] = dataset;
    argv[k++] = "--bootstrap";
    argv[k++] = broker.bootstrap;
    argv[k++] = "--topic";
    argv[k++] = kh_topic(&broker, topic);
    for (int i = 0; args[i] != NULL && k < 31; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    kh_run(&run, argv, 60000);
    if (run.status != 0)
        fail_msg("weir-gen %s exited %d: %s", dataset, run.status, run.err);
    fprintf(stderr, "%s", run.err);
    kh_run_free(&run);
}

static void
start_broker(void)
{
    kh_broker_start(&broker, (const char *const[]){
        "--topic", NAME_TX ":" PARTITIONS "," NAME_FLAGS ":" PARTITIONS "," NAME_OUT ":"
        PARTITIONS "," NAME_DLQ ":" PARTITIONS, NULL });
}

/* The flags topic holds the printed flags, once each, byte for byte. */
static void
check_flags_topic(const data_t *d)
{
    kh_topic_t t;
    unsigned seen[N_FLAGS] = { 0 };

    kh_topic_read(broker.bootstrap, TOPIC_FLAGS, 20000, &t);
    assert_int_equal(t.n, N_FLAGS);
    for (size_t i = 0; i < t.n; i++) {
        size_t j;

        for (j = 0; j < d->flags.n; j++)
            if (t.recs[i].value_len == d->flags.recs[j].value_len &&
                memcmp(t.recs[i].value, d->flags.recs[j].value, t.recs[i].value_len) == 0 &&
                t.recs[i].key_len == d->flags.recs[j].key_len &&
                memcmp(t.recs[i].key, d->flags.recs[j].key, t.recs[i].key_len) == 0)
                break;
        if (j == d->flags.n || seen[j]++ > 0)
            fail_msg("%s: unexpected or repeated record %s", TOPIC_FLAGS, t.recs[i].value);
    }
    kh_topic_free(&t);
}

/* The job file of the repository. */
static char *
job_file(char path[PATH_MAX])
{
    const char *src = getenv("WEIR_SOURCE_DIR");
    char *yaml;

    if (src == NULL)
        fail_msg("WEIR_SOURCE_DIR is not set (run the tests with meson test)");
    snprintf(path, PATH_MAX, "%s/jobs/fraud-detection.yaml", src);
    yaml = hc_slurp(path, NULL);
    if (yaml == NULL)
        fail_msg("cannot read %s", path);
    return yaml;
}

/* weir-gen's flags: flag j (in account order) dated j*6 min after midnight,
 * so the last ones come after every transaction of fraud_exact */
#define FLAG_ARGS "--accounts", "1000", "--flagged-share", FLAGGED_SHARE, \
                  "--start-date", "2024-01-01 00:00:00", "--step", "6m"

/* ---- fraud_exact ---------------------------------------------------------------- */

#define EXACT_TX        "100000"
#define EXACT_MALFORMED 997

static void
test_fraud_exact(void **state)
{
    static data_t d;
    const char *const flag_args[] = { FLAG_ARGS, NULL };
    const char *const flag_args_wave1[] = { FLAG_ARGS, "--count", XSTR(FLAGS_WAVE1), NULL };
    const char *const tx_args[] = { "--accounts", "1000", "--count", EXACT_TX, "--seed", "1",
                                    "--start-date", "2024-01-01 00:00:00", "--step", "1s",
                                    "--malformed", XSTR(EXACT_MALFORMED), NULL };
    char path[PATH_MAX], jid[HC_JOB_ID_LEN + 1], miss[2048];
    size_t want, before, after, nbad = 0;
    hc_cluster_t *c;
    unsigned *seen;
    json_t *job;
    kh_topic_t dlq;
    tally_t tl;
    char *yaml;
    long long t0;

    (void)state;
    memset(&d, 0, sizeof(d));
    gen_print(&d.flags, "flagged-accounts", 1, flag_args);
    parse_flags(&d);
    gen_print(&d.tx, "transactions", 1, tx_args);
    assert_int_equal(d.tx.n, 100000);
    want = parse_transactions(&d, 1, EXACT_MALFORMED, &before, &after);
    index_transactions(&d.tx);
    for (size_t i = 0; i < d.tx.n; i++)
        nbad += d.tx.recs[i].malformed;
    fprintf(stderr, "expected: %zu of %zu transactions (%zu malformed); %zu of flagged "
            "accounts dated at or before the flag\n", want, d.tx.n, nbad, before);
    /* the dates cut through the flagged accounts' transactions */
    assert_true(before > 1000 && after > 1000);

    start_broker();
    if (kh_partitions(&broker, NAME_TX) < 16) {
        /* only with WEIR_TEST_KAFKA_BOOTSTRAP naming a weir-kafka, which can
         * only auto-create topics, with 4 partitions */
        print_message("topic '%s' has %d partitions, not 16 (the broker could only auto-create "
                      "it): 100,000 transactions would not fit a broker that keeps ~5 MB per "
                      "partition\n", TOPIC_TX, kh_partitions(&broker, NAME_TX));
        skip();
    }
    t0 = hc_now_ms();
    /* flags 1..150, the transactions, flags 151..300 */
    gen_produce("flagged-accounts", NAME_FLAGS, flag_args_wave1);
    gen_produce("transactions", NAME_TX, tx_args);
    produce_recs(broker.bootstrap, TOPIC_FLAGS, &d.flags, FLAGS_WAVE1, N_FLAGS);
    check_flags_topic(&d);
    fprintf(stderr, "produced in %lld ms\n", hc_now_ms() - t0);

    c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    yaml = job_file(path);
    t0 = hc_now_ms();
    assert_int_equal(hc_submit(c, path, yaml, (const char *const[]){
        "KAFKA_BOOTSTRAP", broker.bootstrap, "STOP_AT", "latest", "PARALLELISM", "2",
        FRAUD_TOPIC_VARS, NULL }, jid, NULL), 202);
    job = hc_wait_job(c, jid, "FINISHED", 120000);
    assert_null(hc_job_failure(job));
    json_decref(job);
    fprintf(stderr, "job finished in %lld ms\n", hc_now_ms() - t0);

    seen = calloc(d.tx.n, sizeof(*seen));
    assert_non_null(seen);
    tl = read_output(broker.bootstrap, &d, seen);
    first_missing(&d, seen, miss, sizeof(miss));
    fprintf(stderr, "output: %zu records, %zu distinct, %zu missing, %zu duplicates\n",
            tl.records, tl.distinct, tl.missing, tl.dups);
    if (tl.missing > 0)
        fail_msg("%zu expected transactions are missing, e.g.%s", tl.missing, miss);
    if (tl.dups > 0)
        fail_msg("%zu records are duplicates (one id up to %zu times)", tl.dups, tl.max_seen);
    assert_int_equal(tl.records, want);

    /* the dead letters: exactly the malformed records, original key and value */
    memset(seen, 0, d.tx.n * sizeof(*seen));
    kh_topic_read(broker.bootstrap, TOPIC_DLQ, 20000, &dlq);
    for (size_t i = 0; i < dlq.n; i++) {
        kh_record_t *m = &dlq.recs[i];
        json_t *jkey;
        rec_t *x = tx_of_key(&d.tx, m->key, m->key_len, &jkey);

        json_decref(jkey);
        if (x == NULL || !x->malformed)
            fail_msg("%s[%d]@%" PRId64 ": not a malformed input record: key %s value %s",
                     TOPIC_DLQ, (int)m->partition, m->offset, m->key, m->value);
        if (m->key_len != x->key_len || memcmp(m->key, x->key, x->key_len) != 0 ||
            m->value_len != x->value_len || memcmp(m->value, x->value, x->value_len) != 0)
            fail_msg("%s[%d]@%" PRId64 ": not byte-equal to the input:\n  %s\t%s\n  %s\t%s",
                     TOPIC_DLQ, (int)m->partition, m->offset, m->key, m->value, x->key,
                     x->value);
        if (seen[x - d.tx.recs]++ > 0)
            fail_msg("malformed record dead-lettered twice: %s", m->value);
    }
    assert_int_equal(dlq.n, nbad);
    kh_topic_free(&dlq);

    free(seen);
    free(yaml);
    hc_stop(c);
    assert_int_equal(kh_broker_stop(&broker), 0);
    recs_free(&d.tx);
    recs_free(&d.flags);
}

/* ---- fraud_unbounded_cancel_continue ------------------------------------------- */

#define WAVE_TX "20000"

/* The job file with the transactions source reading from the group's
 * committed offsets, committing every second. The job file has no variable
 * for either, so the first `startup: earliest` (the transactions source's)
 * is replaced. The flags keep `startup: earliest`: without checkpoints a new
 * run of the job starts with empty join state, so it must read every flag
 * again, or no transaction of the second wave would find its flag. */
static char *
job_with_group_offsets(const char *yaml)
{
    static const char from[] = "    startup: earliest\n";
    static const char to[] = "    startup: group-offsets\n    commit_interval: 1s\n";
    const char *at = strstr(yaml, from), *flags = strstr(yaml, "- name: flagged_accounts");
    size_t len = strlen(yaml) + sizeof(to);
    char *out = malloc(len);

    assert_non_null(out);
    if (at == NULL || flags == NULL || at > flags)
        fail_msg("jobs/fraud-detection.yaml: no 'startup: earliest' in the transactions "
                 "source to replace");
    snprintf(out, len, "%.*s%s%s", (int)(at - yaml), yaml, to, at + strlen(from));
    return out;
}

/* Polls the output topic until it holds at least 'count' records, then
 * until every expected record is there; fails after timeout_ms. */
static tally_t
wait_output(rd_kafka_t *wm, data_t *d, unsigned *seen, long long count, int timeout_ms)
{
    long long deadline = hc_now_ms() + timeout_ms, n = 0;
    char miss[2048];
    tally_t tl;

    for (;;) {
        n = topic_total(wm, TOPIC_OUT, kh_partitions(&broker, NAME_OUT));
        if (n >= count) {
            tl = read_output(broker.bootstrap, d, seen);
            if (tl.missing == 0)
                return tl;
        }
        if (hc_now_ms() > deadline)
            break;
        hc_sleep_ms(250);
    }
    tl = read_output(broker.bootstrap, d, seen);
    first_missing(d, seen, miss, sizeof(miss));
    fail_msg("after %d ms the output has %zu records (%zu distinct), waiting for %lld; %zu "
             "expected ones missing, e.g.%s", timeout_ms, tl.records, tl.distinct, count,
             tl.missing, miss);
    return tl;
}

static void
test_fraud_unbounded_cancel_continue(void **state)
{
    static data_t d;
    const char *const flag_args[] = { FLAG_ARGS, NULL };
    const char *const flag_args_wave1[] = { FLAG_ARGS, "--count", XSTR(FLAGS_WAVE1), NULL };
    /* the waves differ by seed (ids, accounts), and both cut through the flags */
    const char *const wave1[] = { "--accounts", "1000", "--count", WAVE_TX, "--seed", "1",
                                  "--start-date", "2024-01-01 00:00:00", "--step", "5s", NULL };
    const char *const wave2[] = { "--accounts", "1000", "--count", WAVE_TX, "--seed", "2",
                                  "--start-date", "2024-01-01 00:00:00", "--step", "5s", NULL };
    const char *const *vars;
    char path[PATH_MAX], jid[HC_JOB_ID_LEN + 1];
    size_t want1, want1a, want2, before, after;
    long long last_a;
    char *yaml, *job_yaml;
    hc_cluster_t *c;
    rd_kafka_t *wm;
    unsigned *seen;
    tally_t tl;
    long long t0;

    (void)state;
    memset(&d, 0, sizeof(d));
    gen_print(&d.flags, "flagged-accounts", 1, flag_args);
    parse_flags(&d);
    gen_print(&d.tx, "transactions", 1, wave1);
    gen_print(&d.tx, "transactions", 2, wave2);
    want1 = parse_transactions(&d, 1, 0, &before, &after);
    assert_true(before > 200 && after > 200);
    want2 = parse_transactions(&d, 2, 0, &before, &after);
    assert_true(before > 200 && after > 200);
    index_transactions(&d.tx);
    last_a = d.flags.recs[FLAGS_WAVE1 - 1].account;
    want1a = set_want(&d, 1, last_a);
    fprintf(stderr, "expected: wave 1 %zu (%zu with the first %d flags), wave 2 %zu\n",
            want1, want1a, FLAGS_WAVE1, want2);
    seen = calloc(d.tx.n, sizeof(*seen));
    assert_non_null(seen);

    start_broker();
    wm = client(RD_KAFKA_PRODUCER, broker.bootstrap, NULL);
    c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    yaml = job_file(path);
    job_yaml = job_with_group_offsets(yaml);
    vars = (const char *const[]){ "KAFKA_BOOTSTRAP", broker.bootstrap, "STOP_AT", "none",
                                  "PARALLELISM", "2", FRAUD_TOPIC_VARS, NULL };

    /* run 1: the job waits for data; transactions first, then the flags in
     * two waves, so the join matches from both sides */
    t0 = hc_now_ms();
    assert_int_equal(hc_submit(c, path, job_yaml, vars, jid, NULL), 202);
    json_decref(hc_wait_subtasks(c, jid, "RUNNING", 30000));
    gen_produce("transactions", NAME_TX, wave1);
    gen_produce("flagged-accounts", NAME_FLAGS, flag_args_wave1);
    /* the first 150 flags' matches; nothing of the other accounts yet */
    tl = wait_output(wm, &d, seen, (long long)want1a, 30000);
    assert_int_equal(tl.dups, 0);
    /* now every flag, and every wave-1 match */
    produce_recs(broker.bootstrap, TOPIC_FLAGS, &d.flags, FLAGS_WAVE1, N_FLAGS);
    assert_int_equal(set_want(&d, 1, LLONG_MAX), want1);
    tl = wait_output(wm, &d, seen, (long long)want1, 30000);
    fprintf(stderr, "run 1: %zu records in %lld ms\n", tl.records, hc_now_ms() - t0);
    assert_int_equal(tl.dups, 0);
    assert_int_equal(tl.records, want1);

    assert_int_equal(hc_cancel(c, jid), 202);
    json_decref(hc_wait_job(c, jid, "CANCELED", 20000));

    /* run 2: wave 2 while no job runs, then the same job again */
    gen_produce("transactions", NAME_TX, wave2);
    assert_int_equal(set_want(&d, 2, LLONG_MAX), want1 + want2);
    t0 = hc_now_ms();
    assert_int_equal(hc_submit(c, path, job_yaml, vars, jid, NULL), 202);
    tl = wait_output(wm, &d, seen, (long long)(want1 + want2), 45000);
    /* duplicates of wave 1 come before wave 2 in each partition; give any
     * stragglers of other partitions a moment */
    hc_sleep_ms(1500);
    tl = read_output(broker.bootstrap, &d, seen);
    fprintf(stderr, "run 2: %zu records in %lld ms: %zu distinct, %zu duplicates (of %zu "
            "wave-1 records)\n", tl.records, hc_now_ms() - t0, tl.distinct, tl.dups, want1);
    assert_int_equal(tl.missing, 0);
    assert_int_equal(tl.distinct, want1 + want2);
    assert_true(tl.dups <= want1);
    for (size_t i = 0; i < d.tx.n; i++) {
        const rec_t *x = &d.tx.recs[i];

        if (x->want && x->wave == 2 && seen[i] != 1)
            fail_msg("wave-2 transaction in the output %u times: %s", seen[i], x->value);
        if (x->wave == 1 && seen[i] > 2)
            fail_msg("wave-1 transaction in the output %u times: %s", seen[i], x->value);
    }

    assert_int_equal(hc_cancel(c, jid), 202);
    json_decref(hc_wait_job(c, jid, "CANCELED", 20000));
    hc_stop(c);
    rd_kafka_destroy(wm);
    assert_int_equal(kh_broker_stop(&broker), 0);
    free(seen);
    free(yaml);
    free(job_yaml);
    recs_free(&d.tx);
    recs_free(&d.flags);
}

/* ---- stocks passthrough --------------------------------------------------------- */

/* jobs/stocks-passthrough.yaml copies stocks-in to stocks-out byte for
 * byte: every key and value, each once. */
static void
test_stocks_passthrough_byte_exact(void **state)
{
    const char *src = getenv("WEIR_SOURCE_DIR");
    const char *const args[] = { "--count", "3000", NULL };
    char path[PATH_MAX], jid[HC_JOB_ID_LEN + 1];
    kh_topic_t in, out;
    hc_cluster_t *c;
    json_t *job;
    char *yaml;
    unsigned char *used;

    (void)state;
    kh_broker_start(&broker, (const char *const[]){ "--topic", "stocks-in:8,stocks-out:8",
                                                   NULL });
    gen_produce("stocks", "stocks-in", args);
    snprintf(path, sizeof(path), "%s/jobs/stocks-passthrough.yaml", src ? src : ".");
    yaml = hc_slurp(path, NULL);
    assert_non_null(yaml);
    c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    hc_submit_ok(c, yaml, (const char *const[]){ "KAFKA_BOOTSTRAP", broker.bootstrap,
                                                 "STOP_AT", "latest",
                                                 "INPUT_TOPIC", kh_topic(&broker, "stocks-in"),
                                                 "OUTPUT_TOPIC", kh_topic(&broker, "stocks-out"),
                                                 NULL }, jid);
    job = hc_wait_job(c, jid, "FINISHED", 60000);
    json_decref(job);
    kh_topic_read(broker.bootstrap, kh_topic(&broker, "stocks-in"), 20000, &in);
    kh_topic_read(broker.bootstrap, kh_topic(&broker, "stocks-out"), 20000, &out);
    assert_int_equal(in.n, 3000);
    assert_int_equal(out.n, in.n);
    used = calloc(in.n, 1);
    for (size_t i = 0; i < out.n; i++) {
        size_t j;
        for (j = 0; j < in.n; j++)
            if (!used[j] && in.recs[j].value_len == out.recs[i].value_len &&
                in.recs[j].key_len == out.recs[i].key_len &&
                memcmp(in.recs[j].value, out.recs[i].value, in.recs[j].value_len) == 0 &&
                memcmp(in.recs[j].key, out.recs[i].key, in.recs[j].key_len) == 0)
                break;
        if (j == in.n)
            fail_msg("stocks-out holds a record not in stocks-in (or twice): %s",
                     out.recs[i].value);
        used[j] = 1;
        /* keyed by ticker: the same partition as the input's */
        assert_int_equal(out.recs[i].partition, in.recs[j].partition);
    }
    free(used);
    kh_topic_free(&in);
    kh_topic_free(&out);
    free(yaml);
    hc_stop(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_fraud_exact, teardown),
        cmocka_unit_test_teardown(test_fraud_unbounded_cancel_continue, teardown),
        cmocka_unit_test_teardown(test_stocks_passthrough_byte_exact, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
