/* bench/kpipe.c -- weir-kpipe: the plain-librdkafka baseline of
 * bench/fraud.sh, and its measuring tools.
 *
 *   weir-kpipe pipe    --bootstrap B --from T --to U [--join FLAGGED]
 *   weir-kpipe pipe    --bootstrap B --from T --count-only
 *   weir-kpipe offsets --bootstrap B --topic T
 *   weir-kpipe latency --bootstrap B --input T --output U
 *
 * Any command takes -X PROP=VALUE for its consumers (librdkafka properties,
 * e.g. -X isolation.level=read_committed to read like weir's source).
 *
 * pipe. What a competent engineer would write instead of a stream processor:
 * one process, one consumer that is assigned every partition of T
 * (rd_kafka_assign, from the first offset kept; no group, no rebalancing),
 * reads each partition up to the high watermark seen at start (so it is
 * bounded, like weir's `stop_at: latest`), and one producer to U tuned like
 * weir's sink (idempotent: acks=all; linger.ms 5, batch.size 1 MB, the Java
 * client's murmur2 partitioner). Messages come in batches of up to 1024
 * (rd_kafka_consume_batch_queue). The work per record is deliberately
 * minimal: find "account_id" (an integer) and "transaction_date" (parsed to
 * microseconds) in the JSON value by substring search -- no full parse, no
 * validation, no re-rendering -- and produce the value bytes unchanged with
 * the message's own key. With --join FLAGGED it first reads FLAGGED
 * (flagged-accounts: account_id, flag_date) into a hash table and forwards
 * only the transactions of a flagged account dated after its flag: the
 * fraud-detection job's result, hand-written. --count-only produces
 * nothing: the consumer's ceiling, and a way to count a topic by reading it.
 * It prints one line: records in and out, seconds since the process started
 * (connections and metadata included, as weir's submit -> FINISHED includes
 * its start-up) and since the first record, and records in per second.
 *
 * offsets. The number of records in T by its watermarks (sum of high - low
 * over partitions), and whether any partition lost records to retention
 * (low watermark > 0): cheap enough to poll while a job runs.
 *
 * latency. End-to-end latency per output record from Kafka's own message
 * timestamps. Both producers (weir-gen's and weir's sink) leave the
 * timestamp to librdkafka, which sets CreateTime to the wall clock when
 * rd_kafka_producev() is called, and the broker keeps it. So reading the
 * input topic gives transaction_id -> the time weir-gen handed the record
 * to its producer, reading the output topic gives, per transaction_id, the
 * time weir's sink handed the result to its producer, and the difference is
 * the latency through: weir-gen's producer queue (linger.ms 5) and delivery,
 * the broker, weir's source fetch, parse, the shuffle to the join, the join,
 * and rendering in the sink. It does not include the sink's own linger and
 * delivery to the broker. Resolution: 1 ms (Kafka timestamps are in ms);
 * all processes share this machine's clock. It also checks the output:
 * records whose transaction_id is not in the input, and duplicates.
 */
/* memmem needs _GNU_SOURCE, which meson defines for the whole build */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#define MAX_BATCH      1024
#define TIMEOUT_MS     10000            /* metadata and watermark queries */
#define IDLE_LIMIT_MS  30000            /* no message for this long while reading: fail */
#define MAX_ID         48               /* longest transaction_id kept */

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void
die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void
die(const char *fmt, ...)
{
    va_list ap;

    fputs("weir-kpipe: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);

    if (p == NULL)
        die("out of memory");
    return p;
}

/* ---- the little JSON this needs ------------------------------------------ */

/* The value of "name": in the JSON object v (not NUL-terminated), or NULL.
 * A substring search, not a parser: enough for weir-gen's and weir's
 * records, whose string values never contain a quoted field name. */
static const char *
json_field(const char *v, size_t len, const char *name, size_t namelen, const char **end)
{
    char pat[64];
    const char *p;

    if (namelen + 3 > sizeof(pat))
        return NULL;
    pat[0] = '"';
    memcpy(pat + 1, name, namelen);
    pat[namelen + 1] = '"';
    pat[namelen + 2] = ':';
    p = memmem(v, len, pat, namelen + 3);
    if (p == NULL)
        return NULL;
    p += namelen + 3;
    *end = v + len;
    while (p < *end && *p == ' ')
        p++;
    return p < *end ? p : NULL;
}

#define FIELD(v, len, lit, end) json_field((v), (len), (lit), sizeof(lit) - 1, (end))

static bool
json_int(const char *v, size_t len, const char *name, size_t namelen, int64_t *out)
{
    const char *end, *p = json_field(v, len, name, namelen, &end);
    int64_t x = 0;
    bool neg = false, any = false;

    if (p == NULL)
        return false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    for (; p < end && *p >= '0' && *p <= '9'; p++, any = true)
        x = x * 10 + (*p - '0');
    *out = neg ? -x : x;
    return any;
}

/* A quoted string value: [*s, *s + *n), without the quotes. */
static bool
json_str(const char *v, size_t len, const char *name, size_t namelen, const char **s, size_t *n)
{
    const char *end, *p = json_field(v, len, name, namelen, &end);
    const char *q;

    if (p == NULL || *p != '"')
        return false;
    p++;
    q = memchr(p, '"', (size_t)(end - p));
    if (q == NULL)
        return false;
    *s = p;
    *n = (size_t)(q - p);
    return true;
}

/* days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's) */
static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int
digits(const char *p, int n)
{
    int x = 0;

    for (int i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        x = x * 10 + (p[i] - '0');
    }
    return x;
}

/* "YYYY-MM-DD HH:MM:SS[.ffffff]" (UTC) -> microseconds since the epoch */
static bool
json_ts(const char *v, size_t len, const char *name, size_t namelen, int64_t *out)
{
    const char *s;
    size_t n;

    if (!json_str(v, len, name, namelen, &s, &n) || n < 19)
        return false;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    int h = digits(s + 11, 2), mi = digits(s + 14, 2), se = digits(s + 17, 2);
    if (y < 0 || mo < 1 || d < 1 || h < 0 || mi < 0 || se < 0)
        return false;
    int64_t us = 0, scale = 100000;
    if (n > 20 && s[19] == '.')
        for (size_t i = 20; i < n && i < 26 && s[i] >= '0' && s[i] <= '9'; i++, scale /= 10)
            us += (s[i] - '0') * scale;
    *out = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000000LL + se * 1000000LL + us;
    return true;
}

/* ---- hash tables ----------------------------------------------------------- */

static uint64_t
mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* account_id -> flag_date (open addressing; key 0 never occurs: ids start
 * at 1000000001) */
typedef struct {
    int64_t *keys, *vals;
    size_t   cap, n;
} imap_t;

static void
imap_put(imap_t *m, int64_t k, int64_t v)
{
    if (2 * (m->n + 1) > m->cap) {
        imap_t g = { .cap = m->cap ? 2 * m->cap : 1024 };
        g.keys = xcalloc(g.cap, sizeof(int64_t));
        g.vals = xcalloc(g.cap, sizeof(int64_t));
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i] != 0)
                imap_put(&g, m->keys[i], m->vals[i]);
        free(m->keys);
        free(m->vals);
        *m = g;
    }
    size_t i = mix64((uint64_t)k) & (m->cap - 1);
    while (m->keys[i] != 0 && m->keys[i] != k)
        i = (i + 1) & (m->cap - 1);
    if (m->keys[i] == 0)
        m->n++;
    m->keys[i] = k;
    m->vals[i] = v;
}

static const int64_t *
imap_get(const imap_t *m, int64_t k)
{
    if (m->cap == 0)
        return NULL;
    size_t i = mix64((uint64_t)k) & (m->cap - 1);
    while (m->keys[i] != 0) {
        if (m->keys[i] == k)
            return &m->vals[i];
        i = (i + 1) & (m->cap - 1);
    }
    return NULL;
}

/* transaction_id -> input timestamp, and how often it came out */
typedef struct {
    uint64_t h;                         /* 0 = empty */
    int64_t  ts;
    uint32_t seen;
    uint8_t  len;
    char     id[MAX_ID];
} sent_t;

typedef struct {
    sent_t *e;
    size_t  cap, n;
} smap_t;

static uint64_t
str_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;        /* FNV-1a, then mixed */

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    h = mix64(h);
    return h ? h : 1;
}

static sent_t *
smap_slot(smap_t *m, const char *s, size_t n, uint64_t h)
{
    size_t i = h & (m->cap - 1);

    while (m->e[i].h != 0 &&
           !(m->e[i].h == h && m->e[i].len == n && memcmp(m->e[i].id, s, n) == 0))
        i = (i + 1) & (m->cap - 1);
    return &m->e[i];
}

/* false when the id was there already */
static bool
smap_put(smap_t *m, const char *s, size_t n, int64_t ts)
{
    if (n > MAX_ID)
        n = MAX_ID;
    if (2 * (m->n + 1) > m->cap) {
        smap_t g = { .cap = m->cap ? 2 * m->cap : 65536 };
        g.e = xcalloc(g.cap, sizeof(sent_t));
        for (size_t i = 0; i < m->cap; i++)
            if (m->e[i].h != 0)
                *smap_slot(&g, m->e[i].id, m->e[i].len, m->e[i].h) = m->e[i];
        g.n = m->n;
        free(m->e);
        *m = g;
    }
    uint64_t h = str_hash(s, n);
    sent_t *e = smap_slot(m, s, n, h);
    if (e->h != 0)
        return false;
    *e = (sent_t){ .h = h, .ts = ts, .len = (uint8_t)n };
    memcpy(e->id, s, n);
    m->n++;
    return true;
}

static sent_t *
smap_get(smap_t *m, const char *s, size_t n)
{
    if (m->cap == 0)
        return NULL;
    if (n > MAX_ID)
        n = MAX_ID;
    sent_t *e = smap_slot(m, s, n, str_hash(s, n));
    return e->h != 0 ? e : NULL;
}

/* ---- reading a topic to its end --------------------------------------------- */

typedef void (*on_msg_fn)(const rd_kafka_message_t *m, void *arg);

typedef struct {
    uint64_t records;                   /* messages handed to on_msg */
    int      partitions;
    int      lost_partitions;           /* low watermark > 0: retention dropped some */
    int64_t  lost_records;              /*   that many before the first kept offset */
    double   first_s;                   /* now_s() of the first message, 0 if none */
} read_stats_t;

/* -X PROP=VALUE: extra consumer properties (e.g. to read like weir's source:
 * -X isolation.level=read_committed), as NAME, VALUE pairs; NULL-terminated */
#define MAX_EXTRA 32
static const char *consumer_extra[2 * MAX_EXTRA + 1];

static rd_kafka_t *
new_client(rd_kafka_type_t type, const char *bootstrap, const char *const *props,
           const char *const *extra)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK)
        die("%s", errstr);
    for (int i = 0; props != NULL && props[i] != NULL; i += 2)
        if (rd_kafka_conf_set(conf, props[i], props[i + 1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK)
            die("%s=%s: %s", props[i], props[i + 1], errstr);
    for (int i = 0; extra != NULL && extra[i] != NULL; i += 2)
        if (rd_kafka_conf_set(conf, extra[i], extra[i + 1], errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK)
            die("-X %s=%s: %s", extra[i], extra[i + 1], errstr);
    rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (rk == NULL)
        die("cannot create a client: %s", errstr);
    return rk;
}

static rd_kafka_t *
new_consumer(const char *bootstrap)
{
    /* Partitions are assigned by hand and no offset is committed; librdkafka
     * still wants a group.id for rd_kafka_assign(). */
    static const char *const props[] = {
        "group.id", "weir-kpipe",
        "enable.auto.commit", "false",
        "enable.partition.eof", "true",    /* the end, even after a control record */
        "auto.offset.reset", "earliest",   /* only if a start offset vanished meanwhile */
        NULL,
    };
    rd_kafka_t *rk = new_client(RD_KAFKA_CONSUMER, bootstrap, props, consumer_extra);

    rd_kafka_poll_set_consumer(rk);
    return rk;
}

static int
partition_count(rd_kafka_t *rk, const char *topic)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e;
    int n;

    if (rkt == NULL)
        die("topic '%s': %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
    e = rd_kafka_metadata(rk, 0, rkt, &md, TIMEOUT_MS);
    rd_kafka_topic_destroy(rkt);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("metadata of '%s': %s", topic, rd_kafka_err2str(e));
    if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("topic '%s': %s", topic,
            rd_kafka_err2str(md->topic_cnt ? md->topics[0].err : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
    n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return n;
}

typedef struct {
    int64_t lo, hi;
} range_t;

/* Watermarks of every partition of topic; returns the partition count. */
static int
watermarks(rd_kafka_t *rk, const char *topic, range_t **out)
{
    int n = partition_count(rk, topic);
    range_t *r = xcalloc((size_t)(n > 0 ? n : 1), sizeof(*r));

    for (int p = 0; p < n; p++) {
        rd_kafka_resp_err_t e =
            rd_kafka_query_watermark_offsets(rk, topic, p, &r[p].lo, &r[p].hi, TIMEOUT_MS);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            die("watermarks of %s[%d]: %s", topic, p, rd_kafka_err2str(e));
    }
    *out = r;
    return n;
}

/* Reads every partition of topic from its low to its high watermark as
 * seen now, calling on_msg for each message (borrowed for the call); 'poll'
 * (may be NULL) is served after each batch: the producer of a pipe. */
static void
read_topic(const char *bootstrap, const char *topic, on_msg_fn on_msg, void *arg,
           rd_kafka_t *poll, read_stats_t *st)
{
    rd_kafka_t *rk = new_consumer(bootstrap);
    rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_message_t *msgs[MAX_BATCH];
    range_t *r;
    int n = watermarks(rk, topic, &r), open = 0;
    bool *done = xcalloc((size_t)(n > 0 ? n : 1), sizeof(bool));
    double idle_since = now_s();

    memset(st, 0, sizeof(*st));
    st->partitions = n;
    list = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
    for (int p = 0; p < n; p++) {
        if (r[p].lo > 0) {
            st->lost_partitions++;
            st->lost_records += r[p].lo;
        }
        if (r[p].hi > r[p].lo) {
            rd_kafka_topic_partition_list_add(list, topic, p)->offset = r[p].lo;
            open++;
        } else {
            done[p] = true;
        }
    }
    if (open > 0) {
        rd_kafka_resp_err_t e = rd_kafka_assign(rk, list);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            die("assign %s: %s", topic, rd_kafka_err2str(e));
    }
    rd_kafka_topic_partition_list_destroy(list);

    while (open > 0 && !stop) {
        ssize_t got = rd_kafka_consume_batch_queue(q, 100, msgs, MAX_BATCH);

        if (got < 0)
            die("consume %s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
        if (got == 0) {
            if (now_s() - idle_since > IDLE_LIMIT_MS / 1000.0)
                die("%s: no message for %d s with %d partition(s) unfinished", topic,
                    IDLE_LIMIT_MS / 1000, open);
        } else {
            idle_since = now_s();
            if (st->first_s == 0)
                st->first_s = idle_since;
        }
        for (ssize_t i = 0; i < got; i++) {
            rd_kafka_message_t *m = msgs[i];
            int32_t p = m->partition;
            bool in_range = p >= 0 && p < n && !done[p];

            if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
                if (in_range && m->offset >= r[p].hi) {
                    done[p] = true;
                    open--;
                }
            } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                /* out of range: retention removed records after the
                 * watermarks were read; reported, not hidden */
                die("%s[%d]: %s", topic, (int)p, rd_kafka_message_errstr(m));
            } else if (in_range) {
                if (m->offset < r[p].hi) {
                    on_msg(m, arg);
                    st->records++;
                }
                if (m->offset + 1 >= r[p].hi) {
                    done[p] = true;
                    open--;
                }
            }
            rd_kafka_message_destroy(m);
        }
        if (poll != NULL)
            rd_kafka_poll(poll, 0);
    }
    if (stop)
        die("interrupted");
    rd_kafka_queue_destroy(q);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    free(done);
    free(r);
}

static void
report_lost(const char *topic, const read_stats_t *st)
{
    if (st->lost_partitions > 0)
        fprintf(stderr,
                "weir-kpipe: WARNING: %s: %" PRId64 " record(s) in %d partition(s) were "
                "already deleted by retention (the embedded broker keeps ~5 MB per "
                "partition): use a smaller --count\n",
                topic, st->lost_records, st->lost_partitions);
}

/* ---- pipe ---------------------------------------------------------------------- */

typedef struct {
    rd_kafka_t       *prod;
    rd_kafka_topic_t *rkt;
    const imap_t     *flags;            /* --join: account -> flag date; else NULL */
    uint64_t          out;
    uint64_t          unparsed;         /* records without the two fields */
    uint64_t          delivered;
    uint64_t          failed;
    char              errmsg[256];
    bool              count_only;
} pipe_t;

static void
on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    pipe_t *pp = opaque;

    (void)rk;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
        pp->delivered++;
    } else if (pp->failed++ == 0) {
        snprintf(pp->errmsg, sizeof(pp->errmsg), "%s", rd_kafka_err2str(m->err));
    }
}

static void
on_flag(const rd_kafka_message_t *m, void *arg)
{
    imap_t *flags = arg;
    int64_t acct, date;

    if (json_int(m->payload, m->len, "account_id", 10, &acct) &&
        json_ts(m->payload, m->len, "flag_date", 9, &date))
        imap_put(flags, acct, date);
}

static void
on_pipe_msg(const rd_kafka_message_t *m, void *arg)
{
    pipe_t *pp = arg;
    int64_t acct, date;
    rd_kafka_resp_err_t e;

    if (!json_int(m->payload, m->len, "account_id", 10, &acct) ||
        !json_ts(m->payload, m->len, "transaction_date", 16, &date)) {
        pp->unparsed++;
        return;
    }
    if (pp->flags != NULL) {
        const int64_t *flag = imap_get(pp->flags, acct);
        if (flag == NULL || !(date > *flag))
            return;
    }
    if (pp->count_only) {
        pp->out++;
        return;
    }
    for (;;) {
        e = rd_kafka_producev(pp->prod, RD_KAFKA_V_RKT(pp->rkt),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_KEY(m->key, m->key_len),
                              RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_END);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        rd_kafka_poll(pp->prod, 10);    /* the broker is behind: wait for room */
    }
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        die("produce: %s", rd_kafka_err2str(e));
    pp->out++;
}

typedef struct {
    const char *bootstrap, *from, *to, *topic, *input, *output, *join;
    bool count_only;
} opts_t;

static int
cmd_pipe(const opts_t *o)
{
    static const char *const prod_props[] = {
        "enable.idempotence", "true",       /* acks=all, as weir's sink */
        "linger.ms", "5",
        "batch.size", "1000000",
        "partitioner", "murmur2_random",
        NULL,
    };
    double t0 = now_s(), t1;
    pipe_t pp = { .count_only = o->count_only };
    imap_t flags = { 0 };
    read_stats_t st, fst;

    if (!o->count_only) {
        rd_kafka_conf_t *conf;
        char errstr[512];

        conf = rd_kafka_conf_new();
        if (rd_kafka_conf_set(conf, "bootstrap.servers", o->bootstrap, errstr, sizeof(errstr)))
            die("%s", errstr);
        for (int i = 0; prod_props[i] != NULL; i += 2)
            if (rd_kafka_conf_set(conf, prod_props[i], prod_props[i + 1], errstr,
                                  sizeof(errstr)))
                die("%s", errstr);
        rd_kafka_conf_set_opaque(conf, &pp);
        rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
        pp.prod = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (pp.prod == NULL)
            die("cannot create a producer: %s", errstr);
        pp.rkt = rd_kafka_topic_new(pp.prod, o->to, NULL);
        partition_count(pp.prod, o->to);    /* fail now if U does not exist */
    }
    if (o->join != NULL) {
        read_topic(o->bootstrap, o->join, on_flag, &flags, NULL, &fst);
        report_lost(o->join, &fst);
        pp.flags = &flags;
    }
    read_topic(o->bootstrap, o->from, on_pipe_msg, &pp, pp.prod, &st);
    report_lost(o->from, &st);
    if (pp.prod != NULL) {
        while (rd_kafka_outq_len(pp.prod) > 0 && !stop)
            rd_kafka_flush(pp.prod, 100);
        rd_kafka_poll(pp.prod, 0);
        if (pp.failed > 0)
            die("%" PRIu64 " deliveries to '%s' failed, the first: %s", pp.failed, o->to,
                pp.errmsg);
        if (pp.delivered != pp.out)
            die("%" PRIu64 " produced but %" PRIu64 " delivered", pp.out, pp.delivered);
    }
    t1 = now_s();
    printf("pipe: in=%" PRIu64 " out=%" PRIu64 " unparsed=%" PRIu64 " seconds=%.3f"
           " from_first_record=%.3f records_per_s=%.0f%s%s\n",
           st.records, pp.out, pp.unparsed, t1 - t0,
           st.first_s > 0 ? t1 - st.first_s : 0.0, (double)st.records / (t1 - t0),
           o->count_only ? " (count only, nothing produced)" : "",
           o->join != NULL ? " (join with flagged accounts)" : "");
    if (pp.prod != NULL) {
        rd_kafka_topic_destroy(pp.rkt);
        rd_kafka_destroy(pp.prod);
    }
    free(flags.keys);
    free(flags.vals);
    return 0;
}

/* ---- offsets ------------------------------------------------------------------- */

static int
cmd_offsets(const opts_t *o)
{
    rd_kafka_t *rk = new_consumer(o->bootstrap);
    range_t *r;
    int n = watermarks(rk, o->topic, &r), lost = 0;
    int64_t records = 0, lost_records = 0;

    for (int p = 0; p < n; p++) {
        records += r[p].hi - r[p].lo;
        if (r[p].lo > 0) {
            lost++;
            lost_records += r[p].lo;
        }
    }
    printf("offsets: topic=%s partitions=%d records=%" PRId64 " deleted=%" PRId64
           " deleted_partitions=%d\n", o->topic, n, records, lost_records, lost);
    free(r);
    rd_kafka_destroy(rk);
    return 0;
}

/* ---- latency ------------------------------------------------------------------- */

typedef struct {
    smap_t   sent;
    int64_t *lat;                       /* ms, one per matched output record */
    size_t   nlat, caplat;
    uint64_t in_noid, in_dup;
    uint64_t out_noid, unmatched, duplicates;
    int64_t  in_min, in_max, out_min, out_max;   /* timestamps, ms */
    uint64_t no_ts;
} lat_t;

static int64_t
msg_ts(const rd_kafka_message_t *m, uint64_t *no_ts)
{
    rd_kafka_timestamp_type_t type;
    int64_t ts = rd_kafka_message_timestamp(m, &type);

    if (type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
        (*no_ts)++;
    return ts;
}

static void
span(int64_t *lo, int64_t *hi, int64_t ts)
{
    if (*lo == 0 || ts < *lo)
        *lo = ts;
    if (ts > *hi)
        *hi = ts;
}

static void
on_input(const rd_kafka_message_t *m, void *arg)
{
    lat_t *l = arg;
    const char *id;
    size_t n;
    int64_t ts = msg_ts(m, &l->no_ts);

    if (!json_str(m->payload, m->len, "transaction_id", 14, &id, &n)) {
        l->in_noid++;
        return;
    }
    span(&l->in_min, &l->in_max, ts);
    if (!smap_put(&l->sent, id, n, ts))
        l->in_dup++;
}

static void
on_output(const rd_kafka_message_t *m, void *arg)
{
    lat_t *l = arg;
    const char *id;
    size_t n;
    int64_t ts = msg_ts(m, &l->no_ts);
    sent_t *e;

    if (!json_str(m->payload, m->len, "transaction_id", 14, &id, &n)) {
        l->out_noid++;
        return;
    }
    span(&l->out_min, &l->out_max, ts);
    if ((e = smap_get(&l->sent, id, n)) == NULL) {
        l->unmatched++;
        return;
    }
    if (e->seen++ > 0) {
        l->duplicates++;
        return;                         /* the first delivery is the latency */
    }
    if (l->nlat == l->caplat) {
        l->caplat = l->caplat ? 2 * l->caplat : 65536;
        l->lat = realloc(l->lat, l->caplat * sizeof(*l->lat));
        if (l->lat == NULL)
            die("out of memory");
    }
    l->lat[l->nlat++] = ts - e->ts;
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

static int64_t
pct(const int64_t *v, size_t n, double q)
{
    size_t i = (size_t)(q * (double)n);     /* nearest rank, rounded up */

    if (i >= n)
        i = n - 1;
    return v[i];
}

static int
cmd_latency(const opts_t *o)
{
    lat_t l = { 0 };
    read_stats_t in, out;
    double sum = 0;

    read_topic(o->bootstrap, o->input, on_input, &l, NULL, &in);
    report_lost(o->input, &in);
    read_topic(o->bootstrap, o->output, on_output, &l, NULL, &out);
    report_lost(o->output, &out);
    if (l.no_ts > 0)
        fprintf(stderr, "weir-kpipe: WARNING: %" PRIu64 " message(s) have no timestamp\n",
                l.no_ts);
    printf("latency: input=%" PRIu64 " output=%" PRIu64 " matched=%zu unmatched=%" PRIu64
           " duplicates=%" PRIu64 " without_id=%" PRIu64 "\n",
           in.records, out.records, l.nlat, l.unmatched, l.duplicates,
           l.in_noid + l.out_noid);
    if (l.nlat == 0) {
        printf("latency: no output record matched an input record\n");
        return l.unmatched > 0 ? 1 : 0;
    }
    qsort(l.lat, l.nlat, sizeof(*l.lat), cmp_i64);
    for (size_t i = 0; i < l.nlat; i++)
        sum += (double)l.lat[i];
    printf("latency_ms: p50=%" PRId64 " p90=%" PRId64 " p99=%" PRId64 " p99.9=%" PRId64
           " max=%" PRId64 " min=%" PRId64 " mean=%.1f\n",
           pct(l.lat, l.nlat, 0.50), pct(l.lat, l.nlat, 0.90), pct(l.lat, l.nlat, 0.99),
           pct(l.lat, l.nlat, 0.999), l.lat[l.nlat - 1], l.lat[0], sum / (double)l.nlat);
    printf("spans_s: input_produced=%.3f output_produced=%.3f first_in_to_last_out=%.3f\n",
           (double)(l.in_max - l.in_min) / 1e3, (double)(l.out_max - l.out_min) / 1e3,
           (double)(l.out_max - l.in_min) / 1e3);
    printf("latency: = output CreateTime (weir's sink calls produce) - input CreateTime"
           " (weir-gen calls produce), per transaction_id, 1 ms resolution\n");
    free(l.lat);
    free(l.sent.e);
    return l.unmatched > 0 || l.duplicates > 0 ? 1 : 0;
}

/* ---- main ---------------------------------------------------------------------- */

static void
usage(FILE *f)
{
    fputs("usage: weir-kpipe pipe    --bootstrap B --from T (--to U [--join FLAGGED] | --count-only)\n"
          "       weir-kpipe offsets --bootstrap B --topic T\n"
          "       weir-kpipe latency --bootstrap B --input T --output U\n"
          "       (any command: -X PROP=VALUE sets a librdkafka consumer property)\n"
          "\n"
          "pipe     consume T to its end offsets (seen at start), produce every record\n"
          "         unchanged to U with its key (idempotent producer, linger.ms 5,\n"
          "         batch.size 1 MB); --join FLAGGED forwards only transactions of flagged\n"
          "         accounts dated after the flag; --count-only just reads\n"
          "offsets  records in T by its watermarks, and records lost to retention\n"
          "latency  per output record: its CreateTime minus that of the input record with\n"
          "         the same transaction_id; percentiles, unmatched and duplicate records\n"
          "         (exit 1 if any)\n",
          f);
}

int
main(int argc, char **argv)
{
    opts_t o = { .bootstrap = getenv("KAFKA_BOOTSTRAP") };
    const char *cmd;
    int nextra = 0;

    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    cmd = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char **dst = NULL;

        if (strcmp(a, "--count-only") == 0) {
            o.count_only = true;
            continue;
        }
        if (strcmp(a, "-X") == 0 && i + 1 < argc) {
            char *eq = strchr(argv[i + 1], '=');
            if (eq == NULL || eq == argv[i + 1] || nextra == MAX_EXTRA) {
                fprintf(stderr, "weir-kpipe: -X wants PROP=VALUE (at most %d), not '%s'\n",
                        MAX_EXTRA, argv[i + 1]);
                return 2;
            }
            *eq = '\0';
            consumer_extra[2 * nextra] = argv[i + 1];
            consumer_extra[2 * nextra + 1] = eq + 1;
            nextra++;
            i++;
            continue;
        }
        if (strcmp(a, "--bootstrap") == 0) dst = &o.bootstrap;
        else if (strcmp(a, "--from") == 0) dst = &o.from;
        else if (strcmp(a, "--to") == 0) dst = &o.to;
        else if (strcmp(a, "--join") == 0) dst = &o.join;
        else if (strcmp(a, "--topic") == 0) dst = &o.topic;
        else if (strcmp(a, "--input") == 0) dst = &o.input;
        else if (strcmp(a, "--output") == 0) dst = &o.output;
        if (dst == NULL || i + 1 >= argc) {
            fprintf(stderr, "weir-kpipe: %s '%s'\n", dst == NULL ? "unknown argument" :
                    "a value is missing after", a);
            usage(stderr);
            return 2;
        }
        *dst = argv[++i];
    }
    if (o.bootstrap == NULL || o.bootstrap[0] == '\0') {
        fprintf(stderr, "weir-kpipe: --bootstrap is required (or $KAFKA_BOOTSTRAP)\n");
        return 2;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    if (strcmp(cmd, "pipe") == 0) {
        if (o.from == NULL || (o.to == NULL) == !o.count_only) {
            fprintf(stderr, "weir-kpipe pipe: --from and exactly one of --to, --count-only\n");
            return 2;
        }
        return cmd_pipe(&o);
    }
    if (strcmp(cmd, "offsets") == 0) {
        if (o.topic == NULL) {
            fprintf(stderr, "weir-kpipe offsets: --topic is required\n");
            return 2;
        }
        return cmd_offsets(&o);
    }
    if (strcmp(cmd, "latency") == 0) {
        if (o.input == NULL || o.output == NULL) {
            fprintf(stderr, "weir-kpipe latency: --input and --output are required\n");
            return 2;
        }
        return cmd_latency(&o);
    }
    fprintf(stderr, "weir-kpipe: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
