/* tests/cluster/test_fraud_recovery.c -- jobs/fraud-detection.yaml, exactly
 * once, across crashes: task managers and the job manager killed with
 * SIGKILL while the transactions stream in.
 *
 * The set up is test_fraud_kafka.c's (a weir-kafka broker with every topic
 * pre-created with 16 partitions, weir-gen producing the seed's datasets, the
 * expected output computed here from `weir-gen --print --print-keys` with the
 * seed's SQL), plus a private PostgreSQL server (tests/pg/pg_harness.h) for
 * the job's `flagged_db` sink and a directory for its `flagged_files` sink.
 * The job runs unbounded (STOP_AT=none), with parallelism 2 and a checkpoint
 * every 500 ms (CHECKPOINT_INTERVAL), on two task managers with two slots
 * each; it has no restart block, so it restarts every second without limit.
 *
 * The data: flags 1..150 are produced before the job starts; 50,000
 * transactions then stream in from a weir-gen run in the background
 * (--rate, about ten seconds) while the crashes happen; flags 151..300 come
 * in the middle of it (after the first recovery), so the join matches from
 * both sides: a transaction waiting in the join's keyed state for its flag
 * must survive the restores too.
 *
 * What must come out, once the generator is done and the outputs settle:
 *
 *   - PostgreSQL (exactly-once: rows written when their checkpoint
 *     completes, pending ones re-applied on restore): the table holds
 *     exactly the expected transactions, every column equal to the input;
 *   - the file copy (exactly-once: part files published when their
 *     checkpoint completes; in-progress files are dot-files, which
 *     hc_read_lines skips): line count = distinct transaction ids =
 *     expected, each line equal to its input transaction;
 *   - Kafka (the job's sink is exactly_once, but weir-kafka can show only
 *     at-least-once: it accepts the sink's commit marker without storing
 *     it, so a restore republishes a checkpoint already committed, and its
 *     read_committed consumers also see aborted transactions): every
 *     expected transaction at least once, nothing else; the duplicates are
 *     counted and printed. Against a real cluster (WEIR_TEST_KAFKA_BOOTSTRAP,
 *     tests/kafka/kafka_harness.h: the topics are created there under names
 *     of their own, given to the job through its *_TOPIC variables) a
 *     duplicate is a failure.
 *
 * fraud_kill_taskmanagers: a task manager that runs a subtask of the job,
 *   chosen at random, is killed with SIGKILL three times at random moments
 *   and started again by the test (as a supervisor would); each time the
 *   test waits for a checkpoint of the new attempt before the next kill, so
 *   the job makes progress in between. The job must count >= 3 restarts.
 *
 * fraud_kill_jobmanager: the job manager is killed with SIGKILL once at a
 *   random moment and started again on the same data directory; the job
 *   resumes from its latest checkpoint (a new attempt, restored_from set).
 *
 * The moments come from a PRNG whose seed is printed; WEIR_TEST_SEED=N
 * repeats a run's choices (the timing of the processes still varies).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "harness.h"
#include "../kafka/kafka_harness.h"
#include "../pg/pg_harness.h"

#define ACCOUNTS       1000
#define FIRST_ACCOUNT  1000000001LL
#define N_FLAGS        300
#define FLAGS_WAVE1    150
#define N_TX           50000
#define TX_RATE        "5000"        /* records/s: the stream lasts ~10 s */
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
#define PG_TABLE       "flagged_transactions"

/* weir-gen's flags: flag j (in account order) dated j*6 min after midnight,
 * 0..30 h; the transactions, every 2 s from midnight, span 0..27.8 h: the
 * dates cut through both waves of flags */
#define FLAG_ARGS "--accounts", XSTR(ACCOUNTS), "--flagged-share", "0.3", \
                  "--start-date", "2024-01-01 00:00:00", "--step", "6m"
#define TX_ARGS   "--accounts", XSTR(ACCOUNTS), "--count", XSTR(N_TX), "--seed", "7", \
                  "--start-date", "2024-01-01 00:00:00", "--step", "2s"

/* ---- the datasets, as weir-gen --print writes them ------------------------ */

typedef struct {
    const char *key, *value;         /* into a run's stdout (borrowed) */
    size_t      key_len, value_len;
    json_t     *jkey;                /* parsed key (always JSON) */
    json_t     *jval;                /* parsed value */
    uint64_t    id;                  /* transaction_id (16 hex digits), or 0 */
    long long   account;
    bool        expect;              /* in the output once every flag is there */
} rec_t;

typedef struct {
    rec_t    *recs;
    size_t    n, cap;
    kh_run_t  runs[2];               /* the outputs the records point into */
    int       nruns;
    size_t   *by_id;                 /* indexes of recs sorted by id */
} recs_t;

typedef struct {
    recs_t tx;
    recs_t flags;                    /* one per flagged account, in id order */
    char   flag_date[ACCOUNTS][32];  /* "" when the account is not flagged */
    size_t want;                     /* expected transactions */
} data_t;

static kh_broker_t broker;
static pid_t       gen_pid;          /* the background weir-gen, 0 when none */
static char        gen_log[PATH_MAX]; /* its stdout and stderr */
static data_t      g_data;
/* what a run holds, released by the teardown when a test fails first */
static rd_kafka_t *g_wm;             /* a client for watermarks */
static unsigned   *g_seen;
static char       *g_yaml;
static uint64_t    rng_state;

/* ---- set up and tear down ------------------------------------------------- */

static void
gen_kill(void)
{
    if (gen_pid > 0) {
        kill(gen_pid, SIGKILL);
        waitpid(gen_pid, NULL, 0);
        gen_pid = 0;
    }
}

static int
group_setup(void **state)
{
    (void)state;
    pgh_start();
    return 0;
}

static void data_free(data_t *d);

/* After a failure too: no process, and the datasets freed (a failed test
 * left them for this) */
static int
teardown(void **state)
{
    int rc;

    gen_kill();
    rc = hc_teardown(state);
    kh_stop_all();
    data_free(&g_data);
    if (g_wm != NULL)
        rd_kafka_destroy(g_wm);
    free(g_seen);
    free(g_yaml);
    g_wm = NULL;
    g_seen = NULL;
    g_yaml = NULL;
    return rc;
}

/* splitmix64: the moments of the crashes */
static uint64_t
rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A number in [lo, hi]. */
static int
rng_between(int lo, int hi)
{
    return lo + (int)(rng_next() % (uint64_t)(hi - lo + 1));
}

static void
rng_seed(const char *test)
{
    const char *env = getenv("WEIR_TEST_SEED");
    struct timespec ts;
    uint64_t seed;

    clock_gettime(CLOCK_REALTIME, &ts);
    seed = env != NULL && *env != '\0' ? strtoull(env, NULL, 10)
                                       : ((uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec * 1000003ULL ^
                                          (uint64_t)getpid()) % 1000000000ULL;
    rng_state = seed;
    fprintf(stderr, "%s: seed %" PRIu64 " (repeat with WEIR_TEST_SEED=%" PRIu64 ")\n", test,
            seed, seed);
}

/* Runs weir-gen DATASET --print --print-keys ARGS... and appends its records
 * to r. */
static void
gen_print(recs_t *r, const char *dataset, const char *const *args)
{
    const char *argv[32];
    kh_run_t *run;
    char **lines;
    size_t n;
    int k = 0;

    assert_true(r->nruns < 2);
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

static void
data_free(data_t *d)
{
    recs_free(&d->tx);
    recs_free(&d->flags);
    memset(d, 0, sizeof(*d));
}

static bool
is_str(json_t *o, const char *f)
{
    return json_is_string(json_object_get(o, f));
}

/* A transaction value that the job's schema accepts: an object with the
 * seven fields of their types. */
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

/* Parses the transactions, marks the expected ones (the seed's SQL: the
 * account is flagged and the transaction is dated after the flag; the dates'
 * fixed-width strings order like the instants) and indexes them by id.
 * *before counts the flagged accounts' transactions dated at or before the
 * flag, *late those of accounts flagged in the second wave. */
static void
parse_transactions(data_t *d, size_t *before, size_t *late)
{
    recs_t *r = &d->tx;
    long long last_wave1 = d->flags.recs[FLAGS_WAVE1 - 1].account;

    d->want = *before = *late = 0;
    for (size_t i = 0; i < r->n; i++) {
        rec_t *x = &r->recs[i];
        json_t *tid = json_object_get(x->jkey, "transaction_id");
        json_t *acc = json_object_get(x->jkey, "account_id");
        const char *flag;

        if (!json_is_string(tid) || !json_is_integer(acc) || json_object_size(x->jkey) != 2 ||
            strlen(json_string_value(tid)) != 16)
            fail_msg("unexpected transaction key: %s", x->key);
        x->id = strtoull(json_string_value(tid), NULL, 16);
        x->account = json_integer_value(acc);
        assert_true(x->account >= FIRST_ACCOUNT && x->account < FIRST_ACCOUNT + ACCOUNTS);
        x->jval = json_loadb(x->value, x->value_len, 0, NULL);
        if (!tx_valid(x->jval) ||
            json_integer_value(json_object_get(x->jval, "account_id")) != x->account ||
            strcmp(json_string_value(json_object_get(x->jval, "transaction_id")),
                   json_string_value(tid)) != 0)
            fail_msg("transaction %zu is malformed: %s", i + 1, x->value);
        flag = d->flag_date[x->account - FIRST_ACCOUNT];
        if (flag[0] == '\0')
            continue;
        if (strcmp(json_string_value(json_object_get(x->jval, "transaction_date")), flag) > 0) {
            x->expect = true;
            d->want++;
            *late += x->account > last_wave1;
        } else {
            (*before)++;
        }
    }
    r->by_id = malloc((r->n > 0 ? r->n : 1) * sizeof(size_t));
    assert_non_null(r->by_id);
    for (size_t i = 0; i < r->n; i++)
        r->by_id[i] = i;
    sort_recs = r->recs;
    qsort(r->by_id, r->n, sizeof(size_t), by_id);
    for (size_t i = 1; i < r->n; i++)
        if (r->recs[r->by_id[i]].id == r->recs[r->by_id[i - 1]].id)
            fail_msg("transaction id %016" PRIx64 " generated twice", r->recs[r->by_id[i]].id);
}

/* The transaction with this id (16 hex digits); NULL if none. */
static rec_t *
tx_by_id(recs_t *r, const char *hex)
{
    size_t lo = 0, hi = r->n;
    uint64_t id;

    if (hex == NULL || strlen(hex) != 16)
        return NULL;
    id = strtoull(hex, NULL, 16);
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

/* The first few expected transactions with seen[] == 0, for a message. */
static void
first_missing(const data_t *d, const unsigned *seen, char *buf, size_t len)
{
    size_t at = 0;
    int shown = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < d->tx.n && shown < 5 && at < len; i++)
        if (d->tx.recs[i].expect && seen[i] == 0) {
            at += (size_t)snprintf(buf + at, len - at, "\n  %s", d->tx.recs[i].value);
            shown++;
        }
}

/* ---- Kafka ------------------------------------------------------------------ */

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
 * partition weir-gen would choose (murmur2 of the key), idempotently; waits
 * for every delivery. weir-gen cannot skip the first flags, so this is how
 * the second wave is written: the broker sees what one weir-gen run would
 * have written. */
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
 * test names it) to its end; fails unless it exits 0. */
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
    kh_run_free(&run);
}

/* Starts weir-gen transactions in the background, paced by --rate, its
 * output into log; it dies with the test process (PR_SET_PDEATHSIG), and the
 * teardown kills it when a test fails first. */
static void
gen_start(void)
{
    const char *argv[32];
    pid_t parent = getpid();
    int k = 0;

    argv[k++] = kh_bin("weir-gen");
    argv[k++] = "transactions";
    argv[k++] = "--bootstrap";
    argv[k++] = broker.bootstrap;
    argv[k++] = "--topic";
    argv[k++] = TOPIC_TX;
    argv[k++] = "--rate";
    argv[k++] = TX_RATE;
    for (const char *const *a = (const char *const[]){ TX_ARGS, NULL }; *a != NULL; a++)
        argv[k++] = *a;
    argv[k] = NULL;
    gen_pid = fork();
    if (gen_pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (gen_pid == 0) {
        int fd;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        fd = open(gen_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
            _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
}

/* True once the background weir-gen has exited; fails the test unless it
 * exited 0. */
static bool
gen_done(void)
{
    int status;
    pid_t r;

    if (gen_pid == 0)
        return true;
    r = waitpid(gen_pid, &status, WNOHANG);
    if (r == 0)
        return false;
    gen_pid = 0;
    if (r < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char *text = hc_slurp(gen_log, NULL);

        fail_msg("weir-gen transactions --rate failed (status 0x%x): %s", r < 0 ? -1 : status,
                 text ? text : "");
    }
    return true;
}

static void
start_broker(void)
{
    kh_broker_start(&broker, (const char *const[]){
        "--topic", NAME_TX ":" PARTITIONS "," NAME_FLAGS ":" PARTITIONS "," NAME_OUT ":"
        PARTITIONS "," NAME_DLQ ":" PARTITIONS, NULL });
}

/* Offsets taken in all partitions of topic (the test's name for it): its
 * records, as nothing is deleted at these sizes, and on a real broker also
 * the exactly-once sink's transaction markers, so at least the records. */
static long long
topic_total(rd_kafka_t *rk, const char *name)
{
    const char *topic = kh_topic(&broker, name);
    long long total = 0;

    for (int p = 0; p < kh_partitions(&broker, name); p++) {
        int64_t lo, hi;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 10000);

        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            fail_msg("watermarks of %s[%d]: %s", topic, p, rd_kafka_err2str(e));
        total += hi - lo;
    }
    return total;
}

typedef struct {
    size_t records;
    size_t distinct;
    size_t missing;                  /* expected, not there */
    size_t dups;                     /* records beyond the first of their id */
    size_t max_seen;                 /* most copies of one id */
} tally_t;

static void
tally(const data_t *d, const unsigned *seen, tally_t *t)
{
    for (size_t i = 0; i < d->tx.n; i++) {
        if (seen[i] > 0)
            t->distinct++;
        if (seen[i] > 1)
            t->dups += seen[i] - 1;
        if (seen[i] > t->max_seen)
            t->max_seen = seen[i];
        if (d->tx.recs[i].expect && seen[i] == 0)
            t->missing++;
    }
}

/* Reads the output topic; fails at once on a record that is not an expected
 * transaction, or whose key or value differs from the input's. Counts per
 * transaction go to seen[] (indexes as in d->tx.recs). */
static tally_t
read_kafka(data_t *d, unsigned *seen)
{
    kh_topic_t t;
    tally_t r = { 0 };

    memset(seen, 0, d->tx.n * sizeof(*seen));
    kh_topic_read(broker.bootstrap, TOPIC_OUT, 30000, &t);
    r.records = t.n;
    for (size_t i = 0; i < t.n; i++) {
        kh_record_t *m = &t.recs[i];
        json_t *jkey = json_loadb(m->key, m->key_len, 0, NULL), *jval;
        rec_t *x = tx_by_id(&d->tx, json_string_value(json_object_get(jkey, "transaction_id")));

        if (x == NULL || !x->expect)
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
    kh_topic_free(&t);
    tally(d, seen, &r);
    return r;
}

/* ---- PostgreSQL and the files ------------------------------------------------ */

static long long
pg_rows(void)
{
    char *v = pgh_value("SELECT to_regclass('" PG_TABLE "') IS NOT NULL");
    bool exists = strcmp(v, "t") == 0;

    free(v);
    return exists ? pgh_count(PG_TABLE) : 0;
}

/* The table holds exactly the expected transactions, every column equal to
 * the input's (the key is transaction_id + transaction_date, so a row twice
 * is impossible; a missing, extra or altered row is what this catches). */
static void
check_pg(data_t *d, unsigned *seen)
{
    pgh_rows_t r;
    size_t extra = 0, wrong = 0;
    char miss[2048];
    tally_t t = { 0 };

    memset(seen, 0, d->tx.n * sizeof(*seen));
    pgh_query(&r, "SELECT transaction_id, account_id, customer_id, merchant_type, "
                  "transaction_type, transaction_amount, "
                  "to_char(transaction_date, 'YYYY-MM-DD HH24:MI:SS.US') FROM " PG_TABLE);
    for (int i = 0; i < r.n; i++) {
        char *f[7], *save = NULL, *row = strdup(r.rows[i]);
        int nf = 0;
        rec_t *x;

        assert_non_null(row);
        for (char *p = strtok_r(row, "|", &save); p != NULL && nf < 7;
             p = strtok_r(NULL, "|", &save))
            f[nf++] = p;
        x = nf == 7 ? tx_by_id(&d->tx, f[0]) : NULL;
        if (x == NULL || !x->expect) {
            if (extra++ < 5)
                fprintf(stderr, "%s: unexpected row %s\n", PG_TABLE, r.rows[i]);
        } else if (seen[x - d->tx.recs]++ > 0) {
            fail_msg("%s: transaction %s twice", PG_TABLE, f[0]);
        } else if (strtoll(f[1], NULL, 10) != json_integer_value(json_object_get(x->jval, "account_id")) ||
                   strcmp(f[2], json_string_value(json_object_get(x->jval, "customer_id"))) != 0 ||
                   strcmp(f[3], json_string_value(json_object_get(x->jval, "merchant_type"))) != 0 ||
                   strcmp(f[4], json_string_value(json_object_get(x->jval, "transaction_type"))) != 0 ||
                   strtod(f[5], NULL) != json_real_value(json_object_get(x->jval, "transaction_amount")) ||
                   strcmp(f[6], json_string_value(json_object_get(x->jval, "transaction_date"))) != 0) {
            if (wrong++ < 5)
                fprintf(stderr, "%s: row %s differs from the input %s\n", PG_TABLE, r.rows[i],
                        x->value);
        }
        free(row);
    }
    tally(d, seen, &t);
    first_missing(d, seen, miss, sizeof(miss));
    fprintf(stderr, "postgres: %d rows, %zu expected, %zu missing, %zu unexpected, %zu "
            "differing\n", r.n, d->want, t.missing, extra, wrong);
    if (t.missing > 0)
        fail_msg("%s: %zu expected transactions missing, e.g.%s", PG_TABLE, t.missing, miss);
    if (extra > 0 || wrong > 0)
        fail_msg("%s: %zu unexpected and %zu differing rows", PG_TABLE, extra, wrong);
    assert_int_equal(r.n, d->want);
    pgh_rows_free(&r);
}

/* The file sink's published lines: each an expected transaction, equal to
 * the input; fails at once on anything else. Returns the tally. */
static tally_t
read_files(data_t *d, const char *dir, unsigned *seen)
{
    tally_t t = { 0 };
    char **lines;
    int n;

    memset(seen, 0, d->tx.n * sizeof(*seen));
    if (access(dir, F_OK) != 0)
        return t;
    lines = hc_read_lines(dir, &n);
    t.records = (size_t)n;
    for (int i = 0; i < n; i++) {
        json_t *v = json_loads(lines[i], 0, NULL);
        rec_t *x = tx_by_id(&d->tx, json_string_value(json_object_get(v, "transaction_id")));

        if (x == NULL || !x->expect)
            fail_msg("%s: not an expected transaction: %s", dir, lines[i]);
        if (!json_equal(v, x->jval))
            fail_msg("%s: line\n  %s\nis not the input transaction\n  %s", dir, lines[i],
                     x->value);
        json_decref(v);
        seen[x - d->tx.recs]++;
    }
    hc_free_lines(lines, n);
    tally(d, seen, &t);
    return t;
}

/* ---- the job ------------------------------------------------------------------- */

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

static long long
jint(json_t *o, const char *a, const char *b)
{
    json_t *x = json_object_get(o, a);

    if (b != NULL)
        x = json_object_get(x, b);
    return json_is_integer(x) ? (long long)json_integer_value(x) : -1;
}

/* The latest completed checkpoint's id, 0 when none. */
static long long
latest_checkpoint(json_t *job)
{
    long long id = jint(json_object_get(job, "checkpoints"), "latest", "id");

    return id > 0 ? id : 0;
}

/* Fails unless the job is in a state it may pass through while it recovers. */
static void
check_running(json_t *job, const char *what)
{
    const char *st = hc_job_state(job);

    if (strcmp(st, "RUNNING") != 0 && strcmp(st, "CREATED") != 0 &&
        strcmp(st, "RESTARTING") != 0)
        fail_msg("job is %s while %s (failure: %s)", st, what,
                 hc_job_failure(job) ? hc_job_failure(job) : "-");
}

/* Waits until the job runs an attempt after 'attempt' and has completed a
 * checkpoint in it (its latest id beyond the one seen when the new attempt
 * first showed); returns the job document (new reference). */
static json_t *
wait_recovered(hc_cluster_t *c, const char *jid, long long attempt, int timeout_ms)
{
    long long deadline = hc_now_ms() + timeout_ms, base = -1;

    for (;;) {
        json_t *job = hc_job(c, jid);

        check_running(job, "recovering");
        if (jint(job, "attempt", NULL) > attempt) {
            if (base < 0)
                base = latest_checkpoint(job);
            else if (latest_checkpoint(job) > base)
                return job;
        }
        if (hc_now_ms() > deadline)
            fail_msg("no checkpoint of an attempt after %lld within %d ms (job: attempt %lld, "
                     "state %s, latest checkpoint %lld)", attempt, timeout_ms,
                     jint(job, "attempt", NULL), hc_job_state(job), latest_checkpoint(job));
        json_decref(job);
        hc_sleep_ms(50);
    }
}

/* Waits until the job has a completed checkpoint with id > after. */
static void
wait_checkpoint_after(hc_cluster_t *c, const char *jid, long long after, int timeout_ms)
{
    long long deadline = hc_now_ms() + timeout_ms;

    for (;;) {
        json_t *job = hc_job(c, jid);
        long long id = latest_checkpoint(job);

        check_running(job, "waiting for a checkpoint");
        json_decref(job);
        if (id > after)
            return;
        if (hc_now_ms() > deadline)
            fail_msg("no checkpoint after %lld within %d ms", after, timeout_ms);
        hc_sleep_ms(50);
    }
}

/* The index of a task manager that runs a subtask of the job, at random. */
static int
pick_busy_tm(hc_cluster_t *c, const char *jid)
{
    json_t *job = hc_job(c, jid), *v, *s;
    bool busy[HC_MAX_TMS] = { false };
    int n = 0, k;
    size_t i, j;

    json_array_foreach(json_object_get(job, "vertices"), i, v)
        json_array_foreach(json_object_get(v, "subtasks"), j, s) {
            const char *tm = json_string_value(json_object_get(s, "taskmanager-id"));
            int idx = tm != NULL && strncmp(tm, "tm-", 3) == 0 ? atoi(tm + 3) - 1 : -1;

            if (idx >= 0 && idx < c->ntms && !busy[idx]) {
                busy[idx] = true;
                n++;
            }
        }
    json_decref(job);
    if (n == 0)
        fail_msg("no task manager runs a subtask of the job");
    k = rng_between(0, n - 1);
    for (int t = 0; t < c->ntms; t++)
        if (busy[t] && k-- == 0)
            return t;
    return -1;
}

/* One run of the fraud job across crashes; crash() does the crashing while
 * the transactions stream in and returns the number of crashes. */
typedef int (*crash_fn)(hc_cluster_t *c, const char *jid, data_t *d, long long t0);

static void
run_fraud(const char *name, crash_fn crash, long long min_restarts)
{
    data_t *d = &g_data;
    const char *const flag_args_wave1[] = { FLAG_ARGS, "--count", XSTR(FLAGS_WAVE1), NULL };
    const char *const flag_args[] = { FLAG_ARGS, NULL };
    const char *const tx_args[] = { TX_ARGS, NULL };
    char path[PATH_MAX], jid[HC_JOB_ID_LEN + 1], out[PATH_MAX];
    char miss[2048];
    size_t before, late;
    long long t_start, t0, t_gen, t_pg, t_kafka, t_files, last, n_pg;
    hc_cluster_t *c;
    bool files_ok;
    tally_t tk, tf;
    unsigned *seen;
    json_t *job;
    int crashes;

    t_start = hc_now_ms();
    rng_seed(name);
    data_free(d);
    gen_print(&d->flags, "flagged-accounts", flag_args);
    parse_flags(d);
    gen_print(&d->tx, "transactions", tx_args);
    assert_int_equal(d->tx.n, N_TX);
    parse_transactions(d, &before, &late);
    fprintf(stderr, "%s: expected %zu of %d transactions (%zu of them of accounts flagged in "
            "the second wave); %zu of flagged accounts dated at or before the flag\n", name,
            d->want, N_TX, late, before);
    assert_true(before > 1000 && late > 500 && d->want - late > 500);
    g_seen = calloc(d->tx.n, sizeof(*g_seen));
    assert_non_null(g_seen);
    seen = g_seen;

    pgh_exec("DROP TABLE IF EXISTS " PG_TABLE);
    start_broker();
    gen_produce("flagged-accounts", NAME_FLAGS, flag_args_wave1);
    g_wm = client(RD_KAFKA_PRODUCER, broker.bootstrap, NULL);

    c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    snprintf(out, sizeof(out), "%s/out", c->dir);
    snprintf(gen_log, sizeof(gen_log), "%s/weir-gen.log", c->dir);
    g_yaml = job_file(path);
    assert_int_equal(hc_submit(c, path, g_yaml, (const char *const[]){
        "KAFKA_BOOTSTRAP", broker.bootstrap, "STOP_AT", "none", "PARALLELISM", "2",
        "CHECKPOINT_INTERVAL", "500ms", "PG_DSN", pgh_dsn(), "FILE_OUT", out,
        "TRANSACTIONS_TOPIC", TOPIC_TX, "FLAGGED_TOPIC", TOPIC_FLAGS, "OUTPUT_TOPIC", TOPIC_OUT,
        "DEAD_LETTER_TOPIC", TOPIC_DLQ, "KAFKA_TXN_PREFIX", TOPIC_OUT, NULL },
        jid, NULL), 202);
    json_decref(hc_wait_subtasks(c, jid, "RUNNING", 30000));
    wait_checkpoint_after(c, jid, 0, 20000);

    /* the stream, and the crashes while it flows */
    t0 = hc_now_ms();
    gen_start();
    crashes = crash(c, jid, d, t0);
    while (!gen_done()) {
        if (hc_now_ms() - t0 > 120000)
            fail_msg("weir-gen --rate " TX_RATE " has not finished %d records in 120 s", N_TX);
        hc_sleep_ms(50);
    }
    t_gen = hc_now_ms();
    fprintf(stderr, "%s: %d records streamed in %lld ms, %d crashes\n", name, N_TX, t_gen - t0,
            crashes);

    /* the outputs complete: PostgreSQL, Kafka, the files (each exactly once
     * a checkpoint after the last records has completed) */
    for (;;) {
        n_pg = pg_rows();
        if (n_pg >= (long long)d->want)
            break;
        job = hc_job(c, jid);
        check_running(job, "waiting for the output");
        json_decref(job);
        if (hc_now_ms() - t_gen > 60000)
            fail_msg("%s: %lld rows of %zu expected after 60 s", PG_TABLE, n_pg, d->want);
        hc_sleep_ms(100);
    }
    t_pg = hc_now_ms();
    for (;;) {
        if (topic_total(g_wm, NAME_OUT) >= (long long)d->want) {
            tk = read_kafka(d, seen);
            if (tk.missing == 0)
                break;
        }
        if (hc_now_ms() - t_gen > 60000) {
            tk = read_kafka(d, seen);
            first_missing(d, seen, miss, sizeof(miss));
            fail_msg("%s: %zu expected transactions missing after 60 s, e.g.%s", TOPIC_OUT,
                     tk.missing, miss);
        }
        hc_sleep_ms(200);
    }
    t_kafka = hc_now_ms();
    for (;;) {
        tf = read_files(d, out, seen);
        files_ok = tf.missing == 0;
        if (files_ok || hc_now_ms() - t_pg > 15000)
            break;
        hc_sleep_ms(200);
    }
    t_files = hc_now_ms();
    fprintf(stderr, "%s: outputs complete after the stream: postgres %lld ms, kafka %lld ms, "
            "files %lld ms%s\n", name, t_pg - t_gen, t_kafka - t_gen, t_files - t_gen,
            files_ok ? "" : " (NOT COMPLETE: checked below)");

    /* ... and stay so: two more checkpoints change nothing */
    job = hc_job(c, jid);
    last = latest_checkpoint(job);
    json_decref(job);
    wait_checkpoint_after(c, jid, last + 1, 20000);
    assert_int_equal(pg_rows(), (long long)d->want);

    assert_int_equal(hc_cancel(c, jid), 202);
    job = hc_wait_job(c, jid, "CANCELED", 20000);
    fprintf(stderr, "%s: attempt %lld, restarts %lld, checkpoints %lld completed, %lld failed, "
            "restored from %lld; last failure: %s\n", name, jint(job, "attempt", NULL),
            jint(job, "restarts", NULL), jint(job, "checkpoints", "completed"),
            jint(job, "checkpoints", "failed"), jint(job, "checkpoints", "restored_from"),
            hc_job_failure(job) ? hc_job_failure(job) : "-");
    if (jint(job, "restarts", NULL) < min_restarts)
        fail_msg("the job counts %lld restarts, expected >= %lld", jint(job, "restarts", NULL),
                 min_restarts);
    json_decref(job);

    /* PostgreSQL: exactly the expected rows */
    check_pg(d, seen);

    /* Kafka: every expected transaction at least once, nothing else; on a
     * real cluster exactly once */
    tk = read_kafka(d, seen);
    fprintf(stderr, "kafka: %zu records, %zu distinct, %zu missing, %zu duplicates (one id up "
            "to %zu times)\n", tk.records, tk.distinct, tk.missing, tk.dups, tk.max_seen);
    assert_int_equal(tk.missing, 0);
    assert_int_equal(tk.distinct, d->want);
    if (kh_external() && tk.dups > 0)
        fail_msg("%s: %zu duplicates (one id up to %zu times) on a real cluster, where the "
                 "exactly-once sink's markers are kept and read_committed hides aborted "
                 "transactions", TOPIC_OUT, tk.dups, tk.max_seen);

    /* the files: each expected transaction exactly once */
    tf = read_files(d, out, seen);
    first_missing(d, seen, miss, sizeof(miss));
    fprintf(stderr, "files: %zu lines, %zu distinct, %zu missing, %zu duplicates (of %zu)\n",
            tf.records, tf.distinct, tf.missing, tf.dups, d->want);
    if (tf.missing > 0)
        fail_msg("%s: %zu expected transactions missing, e.g.%s", out, tf.missing, miss);
    if (tf.dups > 0)
        fail_msg("%s: %zu lines are duplicates (one id up to %zu times)", out, tf.dups,
                 tf.max_seen);
    assert_int_equal(tf.records, d->want);
    assert_int_equal(tf.distinct, d->want);

    fprintf(stderr, "%s: %lld ms in all\n", name, hc_now_ms() - t_start);
    hc_stop(c);
    rd_kafka_destroy(g_wm);           /* before its broker goes */
    g_wm = NULL;
    assert_int_equal(kh_broker_stop(&broker), 0);
    data_free(d);
}

/* The second wave of flags, once, after the first recovery. */
static void
flags_wave2(data_t *d)
{
    produce_recs(broker.bootstrap, TOPIC_FLAGS, &d->flags, FLAGS_WAVE1, N_FLAGS);
}

/* ---- fraud_kill_taskmanagers --------------------------------------------------- */

static int
crash_taskmanagers(hc_cluster_t *c, const char *jid, data_t *d, long long t0)
{
    for (int k = 0; k < 3; k++) {
        int pause = rng_between(200, 1500), tm;
        long long attempt, t_kill;
        json_t *job;

        hc_sleep_ms(pause);
        tm = pick_busy_tm(c, jid);
        job = hc_job(c, jid);
        check_running(job, "about to kill a task manager");
        attempt = jint(job, "attempt", NULL);
        json_decref(job);
        t_kill = hc_now_ms();
        hc_signal_tm(c, tm, SIGKILL);
        hc_start_tm(c, tm);
        job = wait_recovered(c, jid, attempt, 30000);
        fprintf(stderr, "kill %d: %s at %lld ms of the stream (%s), attempt %lld RUNNING and "
                "checkpoint %lld after %lld ms\n", k + 1, c->tms[tm].id, t_kill - t0,
                gen_done() ? "stream over" : "still streaming", jint(job, "attempt", NULL),
                latest_checkpoint(job), hc_now_ms() - t_kill);
        json_decref(job);
        if (k == 0)
            flags_wave2(d);
    }
    return 3;
}

static void
test_fraud_kill_taskmanagers(void **state)
{
    (void)state;
    run_fraud("fraud_kill_taskmanagers", crash_taskmanagers, 3);
}

/* ---- fraud_kill_jobmanager ------------------------------------------------------ */

static int
crash_jobmanager(hc_cluster_t *c, const char *jid, data_t *d, long long t0)
{
    int pause = rng_between(1000, 5000);
    long long attempt, t_kill;
    json_t *job;

    hc_sleep_ms(rng_between(300, 1000));
    flags_wave2(d);
    hc_sleep_ms(pause);
    job = hc_job(c, jid);
    check_running(job, "about to kill the job manager");
    attempt = jint(job, "attempt", NULL);
    json_decref(job);
    t_kill = hc_now_ms();
    hc_restart_jm(c, SIGKILL);
    job = wait_recovered(c, jid, attempt, 30000);
    fprintf(stderr, "job manager killed at %lld ms of the stream (%s); attempt %lld RUNNING, "
            "restored from %lld, checkpoint %lld after %lld ms\n", t_kill - t0,
            gen_done() ? "stream over" : "still streaming", jint(job, "attempt", NULL),
            jint(job, "checkpoints", "restored_from"), latest_checkpoint(job),
            hc_now_ms() - t_kill);
    if (jint(job, "checkpoints", "restored_from") <= 0)
        fail_msg("the job did not resume from a checkpoint after the job manager's restart");
    json_decref(job);
    return 1;
}

static void
test_fraud_kill_jobmanager(void **state)
{
    (void)state;
    run_fraud("fraud_kill_jobmanager", crash_jobmanager, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_fraud_kill_taskmanagers, teardown),
        cmocka_unit_test_teardown(test_fraud_kill_jobmanager, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
