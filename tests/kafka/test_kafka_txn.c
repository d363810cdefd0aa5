/* tests/kafka/test_kafka_txn.c -- the kafka sink's exactly-once protocol,
 * request by request, on an in-process librdkafka mock cluster.
 *
 * test_kafka_eo.c shows what a consumer sees; this file shows what the
 * sink's transactional producer says to the brokers, and what it does
 * when they refuse. The sink loads ktrace_plugin (its path is argv[1], or
 * $WEIR_KTRACE_PLUGIN) through its `properties:`, which appends every
 * request it sends, every response, and every transaction state change to
 * a trace file (format in ktrace_plugin.c). Errors are injected with
 * rd_kafka_mock_push_request_errors(). The operator is driven by hand
 * (snapshot = the barrier, notify_complete, restore) as the task would.
 *
 * What librdkafka 2.0.2 and its mock cluster do, and so what is checked:
 *   - The mock writes records when they are produced: no transaction
 *     markers, and Fetch and ListOffsets ignore the isolation level, so
 *     records of an aborted transaction would stay readable. "Aborted, not
 *     committed" is checked on the trace (transaction states, EndTxn
 *     labelled abort) and on the sink's state (the records still pending).
 *     Usually the abort comes before the records' Produce (linger.ms and
 *     the partition registration), and none reach the topic, but not
 *     always (seen once in ~20 runs); the topic check allows a copy per
 *     aborted attempt only when the trace shows that attempt's Produce.
 *   - TxnOffsetCommit is accepted but not stored: the commit marker always
 *     reads as none, and a restore republishes every pending checkpoint
 *     (the "already committed" path is covered by test_kafka_eo.c against
 *     a real broker only).
 *   - InitProducerId for a transactional id gives a new producer id and
 *     leaves the old one valid: a second producer does not fence the first
 *     by itself. The answers a broker gives a fenced producer are injected
 *     instead.
 *   - EndTxn's Committed flag is not in on_request_sent()'s arguments; the
 *     plugin labels each EndTxn commit or abort from the client's
 *     transaction state (debug "eos" lines), see ktrace_plugin.c.
 *   - The wire order is not "AddPartitionsToTxn, Produce, AddOffsetsToTxn,
 *     TxnOffsetCommit, EndTxn": AddOffsetsToTxn goes out as soon as the
 *     sink adds the marker, concurrently with AddPartitionsToTxn, and the
 *     Produce after its partition is registered and linger.ms has passed,
 *     usually after TxnOffsetCommit, in the commit's flush. What the
 *     protocol needs is asserted (expect_commits): the partition added
 *     before the first Produce, every Produce answered before EndTxn,
 *     AddOffsetsToTxn answered before TxnOffsetCommit, answered before
 *     EndTxn, one EndTxn(commit) per checkpoint, last.
 *   - An abort sends EndTxn(abort) only if librdkafka counted a request
 *     the coordinator took in the transaction; an AddPartitionsToTxn
 *     answered after the abortable error is dropped as outdated, so
 *     whether an abort reaches the broker depends on timing (both seen).
 *   - Each test makes its own cluster; destroying one takes up to 1 s (the
 *     mock's thread wakes once a second).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <fcntl.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "kafka_harness.h"
#include "../operators/op_harness.h"

#define TOPIC "txn"
#define TXN_ID "weir-t-out-0"         /* the default prefix weir-<job>-<node>, subtask 0 */

static const char *plugin;            /* path of ktrace_plugin */
static char trace_path[256];
static rd_kafka_t *mock_rk;           /* the handle the mock cluster lives in */
static rd_kafka_mock_cluster_t *mock;
static char bootstrap[512];
static weir_schema_t *schema;

/* ---- the mock cluster -------------------------------------------------- */

static void
mock_start(int brokers, int partitions)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();

    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        fail_msg("conf: %s", errstr);
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (mock_rk == NULL)
        fail_msg("rd_kafka_new: %s", errstr);
    mock = rd_kafka_mock_cluster_new(mock_rk, brokers);
    assert_non_null(mock);
    snprintf(bootstrap, sizeof(bootstrap), "%s", rd_kafka_mock_cluster_bootstraps(mock));
    assert_int_equal(rd_kafka_mock_topic_create(mock, TOPIC, partitions, 1),
                     RD_KAFKA_RESP_ERR_NO_ERROR);
}

static int
teardown(void **state)
{
    (void)state;
    if (mock != NULL)
        rd_kafka_mock_cluster_destroy(mock);
    if (mock_rk != NULL)
        rd_kafka_destroy(mock_rk);
    mock = NULL;
    mock_rk = NULL;
    weir_schema_unref(schema);
    schema = NULL;
    return 0;
}

/* ---- the sink, by hand ------------------------------------------------- */

static void
open_sink(h_op_t *h, int attempt)
{
    char yaml[2048];

    snprintf(yaml, sizeof(yaml),
             "name: t\nsources:\n  - {name: src, kind: datagen}\n"
             "sinks:\n  - {name: out, kind: kafka, input: src, bootstrap: \"%s\", topic: " TOPIC
             ",\n     key_fields: id, delivery: exactly_once,\n"
             "     properties: {plugin.library.paths: \"%s\"}}\n", bootstrap, plugin);
    if (schema == NULL)
        schema = h_schema("id:int,name:string");
    h_configure_ok(h, yaml, "out", WEIR_ROLE_SINK, schema);
    h->ctx[0].checkpoint_interval_us = 100000;
    h->ctx[0].attempt = attempt;
    h_open(h, 1);
}

static void
rows(h_op_t *h, const char *const *r)
{
    weir_batch_t *b = h_batch(schema, r);
    if (h->cfg.kind->process(&h->op[0], 0, b, NULL, &h->err) != 0)
        fail_msg("process: %s", h->err.msg);
    weir_batch_destroy(b);
}

static void
barrier(h_op_t *h, int64_t ckpt, weir_buf_t *blob)
{
    weir_buf_reset(blob);
    if (h->cfg.kind->snapshot(&h->op[0], ckpt, blob, &h->err) != 0)
        fail_msg("snapshot %lld: %s", (long long)ckpt, h->err.msg);
}

static void
notify_ok(h_op_t *h, int64_t ckpt)
{
    if (h->cfg.kind->notify_complete(&h->op[0], ckpt, &h->err) != 0)
        fail_msg("notify_complete %lld: %s", (long long)ckpt, h->err.msg);
}

static void
restore_ok(h_op_t *h, int64_t ckpt, const weir_buf_t *blob)
{
    weir_op_blob_t ob = { .subtask = 0, .data = blob->data, .len = blob->len };
    if (h->cfg.kind->restore(&h->op[0], ckpt, 1, &ob, 1, &h->err) != 0)
        fail_msg("restore %lld: %s", (long long)ckpt, h->err.msg);
}

/* The checkpoint ids pending in a snapshot blob ([[ckpt, bin], ...]) into
 * ckpts; the records' bytes of the first into rec0 (if not NULL). */
static int
pending(const weir_buf_t *blob, int64_t *ckpts, int max, weir_buf_t *rec0)
{
    msgpack_unpacked u;
    size_t off = 0;
    int n;

    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, blob->data, blob->len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
    n = (int)u.data.via.array.size;
    assert_true(n <= max);
    for (int i = 0; i < n; i++) {
        const msgpack_object *e = &u.data.via.array.ptr[i];
        assert_int_equal(e->type, MSGPACK_OBJECT_ARRAY);
        assert_int_equal(e->via.array.size, 2);
        assert_int_equal(e->via.array.ptr[1].type, MSGPACK_OBJECT_BIN);
        ckpts[i] = e->via.array.ptr[0].via.i64;
        if (i == 0 && rec0 != NULL) {
            weir_buf_reset(rec0);
            assert_int_equal(weir_buf_append(rec0, e->via.array.ptr[1].via.bin.ptr,
                                             e->via.array.ptr[1].via.bin.size), 0);
        }
    }
    msgpack_unpacked_destroy(&u);
    return n;
}

/* The topic's records as sorted "key value" lines, compared with want
 * (NULL-terminated, in any order). */
static void
expect_topic(const char *const *want)
{
    kh_topic_t t;
    h_rows_t got = { 0 }, exp = { 0 };

    kh_topic_read(bootstrap, TOPIC, 20000, &t);
    for (size_t i = 0; i < t.n; i++) {
        char *s = NULL;
        assert_true(asprintf(&s, "%s %s", t.recs[i].key != NULL ? t.recs[i].key : "-",
                             t.recs[i].value) > 0);
        h_rows_add(&got, s);
    }
    kh_topic_free(&t);
    for (int i = 0; want[i] != NULL; i++)
        h_rows_add(&exp, strdup(want[i]));
    h_rows_sort(&got);
    h_rows_sort(&exp);
    h_rows_add(&exp, NULL);           /* h_rows_expect's terminator */
    exp.n--;
    h_rows_expect(&got, (const char *const *)exp.rows);
    h_rows_free(&got);
    h_rows_free(&exp);
}

/* ---- the trace --------------------------------------------------------- */

typedef struct {
    long seq;
    char ev[8];                       /* new, send, recv, state */
    int  client;
    char txn[128];
    char what[40];                    /* send/recv: the Api; state: the state */
    char end[32];                     /* send EndTxn: commit/abort/?; recv: transport error */
} kt_ev_t;

typedef struct {
    kt_ev_t *ev;
    int      n;
} kt_trace_t;

static void
trace_read(kt_trace_t *t)
{
    FILE *f = fopen(trace_path, "r");
    char line[2048];
    int cap = 0;

    memset(t, 0, sizeof(*t));
    if (f == NULL)
        return;
    while (fgets(line, sizeof(line), f) != NULL) {
        kt_ev_t e = { 0 };
        char *save = NULL, *tok[12];
        int n = 0;

        if (strchr(line, '\n') == NULL)
            break;                    /* being written: not an event yet */
        for (char *p = strtok_r(line, " \n", &save); p != NULL && n < 12;
             p = strtok_r(NULL, " \n", &save))
            tok[n++] = p;
        if (n < 4)
            fail_msg("bad trace line in %s", trace_path);
        e.seq = atol(tok[0]);
        snprintf(e.ev, sizeof(e.ev), "%s", tok[1]);
        e.client = atoi(tok[2]);
        snprintf(e.txn, sizeof(e.txn), "%s", tok[3]);
        if (n > 4)
            snprintf(e.what, sizeof(e.what), "%s", tok[4]);
        if (strcmp(e.ev, "send") == 0 && n > 8)
            snprintf(e.end, sizeof(e.end), "%s", tok[8]);
        if (strcmp(e.ev, "recv") == 0 && n > 6)
            snprintf(e.end, sizeof(e.end), "%s", tok[6]);
        if (t->n == cap) {
            cap = cap ? cap * 2 : 256;
            t->ev = realloc(t->ev, (size_t)cap * sizeof(*t->ev));
            assert_non_null(t->ev);
        }
        t->ev[t->n++] = e;
    }
    fclose(f);
}

static void
trace_free(kt_trace_t *t)
{
    free(t->ev);
    memset(t, 0, sizeof(*t));
}

/* The sequence number of the last event so far: a mark. */
static long
trace_mark(void)
{
    kt_trace_t t;
    long m;

    trace_read(&t);
    m = t.n > 0 ? t.ev[t.n - 1].seq : 0;
    trace_free(&t);
    return m;
}

/* The newest client with transactional id txn (the sink's producer just
 * opened). */
static int
trace_client(const char *txn)
{
    kt_trace_t t;
    int c = -1;

    trace_read(&t);
    for (int i = 0; i < t.n; i++)
        if (strcmp(t.ev[i].ev, "new") == 0 && strcmp(t.ev[i].txn, txn) == 0)
            c = t.ev[i].client;
    trace_free(&t);
    assert_true(c > 0);
    return c;
}

static bool
is_txn_api(const char *api)
{
    static const char *const apis[] = { "InitProducerId", "AddPartitionsToTxn", "Produce",
                                        "AddOffsetsToTxn", "TxnOffsetCommit", "EndTxn", NULL };
    for (int i = 0; apis[i] != NULL; i++)
        if (strcmp(api, apis[i]) == 0)
            return true;
    return false;
}

/* The transaction requests client sent, and their responses, in (from,
 * to] (to 0: to the end). "Sends nothing" is an empty text: a response
 * may come in late. */
typedef struct {
    kt_ev_t ev[256];
    int     n;
    char    text[4096];               /* "AddPartitionsToTxn Produce ... EndTxn:commit" */
} kt_win_t;

static void
window(int client, long from, long to, kt_win_t *w)
{
    kt_trace_t t;
    size_t len = 0;

    memset(w, 0, sizeof(*w));
    trace_read(&t);
    for (int i = 0; i < t.n; i++) {
        const kt_ev_t *e = &t.ev[i];
        if (e->seq <= from || (to > 0 && e->seq > to) || e->client != client)
            continue;
        if (strcmp(e->ev, "send") != 0 && strcmp(e->ev, "recv") != 0)
            continue;
        if (!is_txn_api(e->what))
            continue;
        assert_true(w->n < 256);
        w->ev[w->n++] = *e;
        if (strcmp(e->ev, "send") == 0)
            len += (size_t)snprintf(w->text + len, sizeof(w->text) - len, "%s%s%s%s",
                                    len > 0 ? " " : "", e->what, e->end[0] ? ":" : "", e->end);
        assert_true(len < sizeof(w->text));
    }
    trace_free(&t);
}

/* Sends of api in w (recv: responses). */
static int
count(const kt_win_t *w, const char *ev, const char *api)
{
    int n = 0;
    for (int i = 0; i < w->n; i++)
        n += strcmp(w->ev[i].ev, ev) == 0 && strcmp(w->ev[i].what, api) == 0;
    return n;
}

/* Index in w of the first (last = false) or last event ev of api, -1 if none. */
static int
find(const kt_win_t *w, const char *ev, const char *api, bool last)
{
    int at = -1;
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->ev[i].ev, ev) == 0 && strcmp(w->ev[i].what, api) == 0) {
            at = i;
            if (!last)
                break;
        }
    return at;
}

/* The whole trace but Metadata and ApiVersion, to stderr (on a failure). */
static void
dump_trace(const char *why)
{
    FILE *f = fopen(trace_path, "r");
    char line[2048];

    fprintf(stderr, "---- trace %s\n", why);
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strstr(line, " Metadata ") == NULL && strstr(line, " ApiVersion ") == NULL)
            fputs(line, stderr);
    if (f != NULL)
        fclose(f);
}

#define EXPECT_WIN(w, cond)                                                              \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            dump_trace("at the failure");                                               \
            fail_msg("%s does not hold for the requests [%s]", #cond, (w)->text);       \
        }                                                                               \
    } while (0)

/* One committed transaction of records: the partition(s) added before the
 * first Produce, every Produce answered before EndTxn, the marker
 * (AddOffsetsToTxn, then TxnOffsetCommit on the group coordinator) before
 * EndTxn, which is a commit and the last request. ntx transactions in a
 * row are checked as a whole when ntx > 1 (counts only). */
static void
expect_commits(const kt_win_t *w, int ntx)
{
    int end = find(w, "send", "EndTxn", true);

    EXPECT_WIN(w, count(w, "send", "EndTxn") == ntx);
    EXPECT_WIN(w, count(w, "send", "AddOffsetsToTxn") == ntx);
    EXPECT_WIN(w, count(w, "send", "TxnOffsetCommit") == ntx);
    EXPECT_WIN(w, count(w, "send", "InitProducerId") == 0);
    EXPECT_WIN(w, count(w, "send", "AddPartitionsToTxn") >= ntx);
    EXPECT_WIN(w, count(w, "send", "Produce") >= ntx);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->ev[i].ev, "send") == 0 && strcmp(w->ev[i].what, "EndTxn") == 0)
            EXPECT_WIN(w, strcmp(w->ev[i].end, "commit") == 0);
    /* the last request is the EndTxn, answered */
    EXPECT_WIN(w, end >= 0);
    for (int i = end + 1; i < w->n; i++)
        EXPECT_WIN(w, strcmp(w->ev[i].ev, "recv") == 0);
    EXPECT_WIN(w, find(w, "recv", "EndTxn", true) > end);
    if (ntx != 1)
        return;
    {
        int add_parts = find(w, "send", "AddPartitionsToTxn", false);
        int add_parts_ok = find(w, "recv", "AddPartitionsToTxn", false);
        int produce = find(w, "send", "Produce", false);
        int produce_ok = find(w, "recv", "Produce", true);
        int add_offsets_ok = find(w, "recv", "AddOffsetsToTxn", false);
        int offsets = find(w, "send", "TxnOffsetCommit", false);
        int offsets_ok = find(w, "recv", "TxnOffsetCommit", false);

        EXPECT_WIN(w, add_parts >= 0 && add_parts_ok >= 0 && produce >= 0 && produce_ok >= 0 &&
                      add_offsets_ok >= 0 && offsets >= 0 && offsets_ok >= 0);
        EXPECT_WIN(w, add_parts < add_parts_ok && add_parts_ok < produce);
        /* Produce requests are answered once each (no reply queue) */
        EXPECT_WIN(w, count(w, "recv", "Produce") == count(w, "send", "Produce"));
        EXPECT_WIN(w, produce_ok < end);
        EXPECT_WIN(w, add_offsets_ok < offsets && offsets < offsets_ok && offsets_ok < end);
    }
}

/* ---- a. the order of the protocol -------------------------------------- */

static void
test_protocol_order(void **state)
{
    h_op_t h;
    weir_buf_t b = WEIR_BUF_INIT;
    kt_win_t w;
    long m0, m1, m2;
    int a;

    (void)state;
    mock_start(3, 3);
    m0 = trace_mark();
    open_sink(&h, 0);
    a = trace_client(TXN_ID);
    /* opening: InitProducerId (fences earlier producers), nothing else */
    window(a, m0, 0, &w);
    EXPECT_WIN(&w, strcmp(w.text, "InitProducerId") == 0);

    m0 = trace_mark();
    rows(&h, (const char *const[]){ "1|a", "2|b", "3|c", NULL });
    barrier(&h, 1, &b);
    rows(&h, (const char *const[]){ "4|d", "5|e", NULL });   /* after barrier 1 */
    expect_topic((const char *const[]){ NULL });
    m1 = trace_mark();
    window(a, m0, m1, &w);
    EXPECT_WIN(&w, w.text[0] == '\0');                /* the barrier sends nothing */

    notify_ok(&h, 1);
    m2 = trace_mark();
    window(a, m1, m2, &w);
    expect_commits(&w, 1);
    expect_topic((const char *const[]){
        "{\"id\":1} {\"id\":1,\"name\":\"a\"}", "{\"id\":2} {\"id\":2,\"name\":\"b\"}",
        "{\"id\":3} {\"id\":3,\"name\":\"c\"}", NULL });

    /* checkpoint 2 has the rows after barrier 1 */
    barrier(&h, 2, &b);
    notify_ok(&h, 2);
    window(a, m2, 0, &w);
    expect_commits(&w, 1);
    expect_topic((const char *const[]){
        "{\"id\":1} {\"id\":1,\"name\":\"a\"}", "{\"id\":2} {\"id\":2,\"name\":\"b\"}",
        "{\"id\":3} {\"id\":3,\"name\":\"c\"}", "{\"id\":4} {\"id\":4,\"name\":\"d\"}",
        "{\"id\":5} {\"id\":5,\"name\":\"e\"}", NULL });

    /* a checkpoint without records has no transaction */
    m0 = trace_mark();
    barrier(&h, 3, &b);
    notify_ok(&h, 3);
    window(a, m0, 0, &w);
    EXPECT_WIN(&w, w.text[0] == '\0');

    /* two checkpoints completed at once: one transaction each, in order */
    rows(&h, (const char *const[]){ "6|f", NULL });
    barrier(&h, 4, &b);
    rows(&h, (const char *const[]){ "7|g", NULL });
    barrier(&h, 5, &b);
    m0 = trace_mark();
    notify_ok(&h, 5);
    window(a, m0, 0, &w);
    expect_commits(&w, 2);
    {
        /* each EndTxn after its own marker: AddOffsetsToTxn, TxnOffsetCommit,
         * EndTxn, twice */
        char want[] = "AddOffsetsToTxn TxnOffsetCommit EndTxn:commit "
                      "AddOffsetsToTxn TxnOffsetCommit EndTxn:commit";
        char got[1024] = "";
        for (int i = 0; i < w.n; i++)
            if (strcmp(w.ev[i].ev, "send") == 0 &&
                (strcmp(w.ev[i].what, "AddOffsetsToTxn") == 0 ||
                 strcmp(w.ev[i].what, "TxnOffsetCommit") == 0 ||
                 strcmp(w.ev[i].what, "EndTxn") == 0))
                snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s%s%s",
                         got[0] ? " " : "", w.ev[i].what, w.ev[i].end[0] ? ":" : "",
                         w.ev[i].end);
        if (strcmp(got, want) != 0)
            fail_msg("markers and ends: got [%s], want [%s]", got, want);
    }
    expect_topic((const char *const[]){
        "{\"id\":1} {\"id\":1,\"name\":\"a\"}", "{\"id\":2} {\"id\":2,\"name\":\"b\"}",
        "{\"id\":3} {\"id\":3,\"name\":\"c\"}", "{\"id\":4} {\"id\":4,\"name\":\"d\"}",
        "{\"id\":5} {\"id\":5,\"name\":\"e\"}", "{\"id\":6} {\"id\":6,\"name\":\"f\"}",
        "{\"id\":7} {\"id\":7,\"name\":\"g\"}", NULL });
    h_close(&h);
    weir_buf_free(&b);
}

/* ---- b. restore in a new attempt --------------------------------------- */

static void
test_restore_in_a_new_attempt(void **state)
{
    h_op_t h, h2;
    weir_buf_t b1 = WEIR_BUF_INIT, b2 = WEIR_BUF_INIT;
    kt_win_t w;
    int64_t ck[4];
    long m0;
    int a, b;

    (void)state;
    mock_start(1, 2);
    open_sink(&h, 0);
    a = trace_client(TXN_ID);
    rows(&h, (const char *const[]){ "1|a", "2|b", NULL });
    barrier(&h, 1, &b1);
    assert_int_equal(pending(&b1, ck, 4, NULL), 1);
    assert_int_equal(ck[0], 1);
    rows(&h, (const char *const[]){ "3|c", NULL });         /* lost: the source replays it */
    /* checkpoint 1 completes; the task dies before its notification */
    h_close(&h);
    window(a, 0, 0, &w);
    EXPECT_WIN(&w, strcmp(w.text, "InitProducerId") == 0);  /* attempt 0 produced nothing */
    expect_topic((const char *const[]){ NULL });

    /* attempt 1: a new producer with the same transactional id, which
     * registers first (InitProducerId: the fence), then the restore
     * publishes checkpoint 1 in one committed transaction */
    m0 = trace_mark();
    open_sink(&h2, 1);
    b = trace_client(TXN_ID);
    assert_int_not_equal(a, b);
    window(b, m0, 0, &w);
    EXPECT_WIN(&w, strcmp(w.text, "InitProducerId") == 0);
    m0 = trace_mark();
    restore_ok(&h2, 1, &b1);
    window(b, m0, 0, &w);
    expect_commits(&w, 1);
    window(a, m0, 0, &w);
    EXPECT_WIN(&w, w.text[0] == '\0');                /* the old producer is gone */
    expect_topic((const char *const[]){
        "{\"id\":1} {\"id\":1,\"name\":\"a\"}", "{\"id\":2} {\"id\":2,\"name\":\"b\"}", NULL });

    /* nothing else: no pending checkpoint is left, the next one is empty
     * and its completion sends nothing */
    m0 = trace_mark();
    barrier(&h2, 2, &b2);
    assert_int_equal(pending(&b2, ck, 4, NULL), 0);
    notify_ok(&h2, 2);
    window(b, m0, 0, &w);
    EXPECT_WIN(&w, w.text[0] == '\0');
    /* and the replayed row goes with the next checkpoint */
    rows(&h2, (const char *const[]){ "3|c", NULL });
    barrier(&h2, 3, &b2);
    m0 = trace_mark();
    notify_ok(&h2, 3);
    window(b, m0, 0, &w);
    expect_commits(&w, 1);
    expect_topic((const char *const[]){
        "{\"id\":1} {\"id\":1,\"name\":\"a\"}", "{\"id\":2} {\"id\":2,\"name\":\"b\"}",
        "{\"id\":3} {\"id\":3,\"name\":\"c\"}", NULL });
    h_close(&h2);
    weir_buf_free(&b1);
    weir_buf_free(&b2);
}

/* ---- c. a fenced producer never commits -------------------------------- */

enum {                                /* Kafka ApiKeys (rdkafka_proto.h is not public) */
    API_PRODUCE               = 0,
    API_ADD_PARTITIONS_TO_TXN = 24,
    API_ADD_OFFSETS_TO_TXN    = 25,
    API_END_TXN               = 26,
    API_TXN_OFFSET_COMMIT     = 28,
};

static bool
mentions(const char *msg, const char *word)
{
    for (const char *p = msg; *p != '\0'; p++) {
        size_t i = 0;
        while (word[i] != '\0' && tolower((unsigned char)p[i]) == word[i])
            i++;
        if (word[i] == '\0')
            return true;
    }
    return false;
}

/* The state events of client since from, as "A B C". */
static void
states(int client, long from, char *out, size_t cap)
{
    kt_trace_t t;
    size_t len = 0;

    out[0] = '\0';
    trace_read(&t);
    for (int i = 0; i < t.n; i++)
        if (t.ev[i].seq > from && t.ev[i].client == client && strcmp(t.ev[i].ev, "state") == 0)
            len += (size_t)snprintf(out + len, cap - len, "%s%s", len > 0 ? " " : "",
                                    t.ev[i].what);
    trace_free(&t);
}

static void
test_fenced_producer_never_commits(void **state)
{
    h_op_t ha, hb;
    weir_buf_t b1 = WEIR_BUF_INIT;
    kt_win_t w;
    char st[1024];
    long m0, fence;
    int a, b, rc;

    (void)state;
    mock_start(1, 1);
    open_sink(&ha, 0);
    a = trace_client(TXN_ID);
    rows(&ha, (const char *const[]){ "1|a", "2|b", NULL });
    barrier(&ha, 1, &b1);

    /* attempt 1 opens its producer while A (a zombie of attempt 0) lives */
    m0 = trace_mark();
    open_sink(&hb, 1);
    b = trace_client(TXN_ID);
    window(b, m0, 0, &w);
    EXPECT_WIN(&w, strcmp(w.text, "InitProducerId") == 0);
    fence = w.ev[0].seq;

    /* The mock gives B a new producer id and leaves A's valid; a broker
     * answers A's old epoch like this from now on. Whichever of its
     * requests A sends first gets its fencing error. */
    rd_kafka_mock_push_request_errors(mock, API_ADD_PARTITIONS_TO_TXN, 1,
                                      RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
    rd_kafka_mock_push_request_errors(mock, API_ADD_OFFSETS_TO_TXN, 1,
                                      RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH);
    rd_kafka_mock_push_request_errors(mock, API_TXN_OFFSET_COMMIT, 1,
                                      RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH);
    rd_kafka_mock_push_request_errors(mock, API_END_TXN, 1, RD_KAFKA_RESP_ERR_PRODUCER_FENCED);
    rc = ha.cfg.kind->notify_complete(&ha.op[0], 1, &ha.err);
    assert_int_not_equal(rc, 0);
    fprintf(stderr, "fenced notify: %s\n", ha.err.msg);
    if (!mentions(ha.err.msg, "fenced") && !mentions(ha.err.msg, "epoch"))
        fail_msg("the error does not name the fencing: %s", ha.err.msg);
    assert_non_null(strstr(ha.err.msg, TXN_ID));
    /* ...and again: a fenced producer stays so, and sends nothing more */
    m0 = trace_mark();
    assert_int_not_equal(ha.cfg.kind->notify_complete(&ha.op[0], 1, &ha.err), 0);
    window(a, m0, 0, &w);
    EXPECT_WIN(&w, w.text[0] == '\0');
    for (int k = API_ADD_PARTITIONS_TO_TXN; k <= API_TXN_OFFSET_COMMIT; k++)
        rd_kafka_mock_clear_request_errors(mock, (int16_t)k);

    /* after the fence A committed nothing, ended nothing, wrote nothing */
    window(a, fence, 0, &w);
    EXPECT_WIN(&w, count(&w, "send", "EndTxn") == 0);
    EXPECT_WIN(&w, count(&w, "send", "Produce") == 0);
    EXPECT_WIN(&w, count(&w, "send", "TxnOffsetCommit") == 0);
    states(a, fence, st, sizeof(st));
    if (strstr(st, "FatalError") == NULL || strstr(st, "Commit") != NULL)
        fail_msg("A's transaction states after the fence: %s", st);
    h_close(&ha);

    /* B takes over checkpoint 1 and commits it, once */
    m0 = trace_mark();
    restore_ok(&hb, 1, &b1);
    window(b, m0, 0, &w);
    expect_commits(&w, 1);
    expect_topic((const char *const[]){
        "{\"id\":1} {\"id\":1,\"name\":\"a\"}", "{\"id\":2} {\"id\":2,\"name\":\"b\"}", NULL });
    h_close(&hb);
    weir_buf_free(&b1);
}

/* The fence lands between A's marker and its records: the marker requests
 * pass, the Produce of the commit's flush is refused with the epoch error
 * a broker gives a fenced producer. librdkafka makes that fatal; the
 * commit must fail without an EndTxn (a commit, or an abort, from A). */
static void
test_fenced_on_produce_never_commits(void **state)
{
    h_op_t ha, hb;
    weir_buf_t b1 = WEIR_BUF_INIT;
    kt_win_t w;
    char st[1024];
    long m0, fence;
    int a, b;

    (void)state;
    mock_start(1, 1);
    open_sink(&ha, 0);
    a = trace_client(TXN_ID);
    rows(&ha, (const char *const[]){ "1|a", "2|b", NULL });
    barrier(&ha, 1, &b1);
    m0 = trace_mark();
    open_sink(&hb, 1);
    b = trace_client(TXN_ID);
    window(b, m0, 0, &w);
    EXPECT_WIN(&w, strcmp(w.text, "InitProducerId") == 0);
    fence = w.ev[0].seq;

    rd_kafka_mock_push_request_errors(mock, API_PRODUCE, 1,
                                      RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH);
    assert_int_not_equal(ha.cfg.kind->notify_complete(&ha.op[0], 1, &ha.err), 0);
    fprintf(stderr, "notify fenced on Produce: %s\n", ha.err.msg);
    if (!mentions(ha.err.msg, "fenced") && !mentions(ha.err.msg, "epoch"))
        fail_msg("the error does not name the fencing: %s", ha.err.msg);
    rd_kafka_mock_clear_request_errors(mock, API_PRODUCE);
    window(a, fence, 0, &w);
    EXPECT_WIN(&w, count(&w, "send", "Produce") >= 1);      /* the refused one */
    EXPECT_WIN(&w, count(&w, "send", "EndTxn") == 0);
    states(a, fence, st, sizeof(st));
    if (strstr(st, "FatalError") == NULL || strstr(st, "CommittingTransaction") != NULL ||
        strstr(st, "Abort") != NULL)
        fail_msg("A's transaction states after the fence: %s", st);
    h_close(&ha);

    m0 = trace_mark();
    restore_ok(&hb, 1, &b1);
    window(b, m0, 0, &w);
    expect_commits(&w, 1);
    expect_topic((const char *const[]){
        "{\"id\":1} {\"id\":1,\"name\":\"a\"}", "{\"id\":2} {\"id\":2,\"name\":\"b\"}", NULL });
    h_close(&hb);
    weir_buf_free(&b1);
}

/* ---- d. an abortable error on the commit marker ------------------------ */

/* How many times each record of want is in the topic: between 1 and max
 * copies, and nothing else is there. */
static void
expect_topic_copies(const char *const *want, int max)
{
    kh_topic_t t;
    int nwant = 0;

    while (want[nwant] != NULL)
        nwant++;
    kh_topic_read(bootstrap, TOPIC, 20000, &t);
    for (int i = 0; i < nwant; i++) {
        int n = 0;
        for (size_t r = 0; r < t.n; r++) {
            char line[512];
            snprintf(line, sizeof(line), "%s %s", t.recs[r].key != NULL ? t.recs[r].key : "-",
                     t.recs[r].value);
            n += strcmp(line, want[i]) == 0;
        }
        if (n < 1 || n > max)
            fail_msg("'%s' is %d times in the topic, want 1 to %d", want[i], n, max);
    }
    for (size_t r = 0; r < t.n; r++) {
        char line[512];
        bool known = false;
        snprintf(line, sizeof(line), "%s %s", t.recs[r].key != NULL ? t.recs[r].key : "-",
                 t.recs[r].value);
        for (int i = 0; i < nwant; i++)
            known |= strcmp(line, want[i]) == 0;
        if (!known)
            fail_msg("unexpected record '%s'", line);
    }
    kh_topic_free(&t);
}

/* An aborted attempt of client since from (w: its requests): the marker
 * request failed, the transaction went BeginAbort ... Ready and never
 * towards a commit; an EndTxn, if any, is an abort and the last request.
 * librdkafka sends EndTxn(abort) only when it counts a request the
 * coordinator took in this transaction: an AddPartitionsToTxn answered
 * after the abortable error is ignored as outdated (and so not counted),
 * so whether the abort goes to the broker depends on the timing.
 * Returns 1 if records went out before the abort (the mock keeps them
 * readable), else 0. */
static int
expect_aborted(int client, long from, const kt_win_t *w, bool offsets_committed)
{
    int end = find(w, "send", "EndTxn", false);
    char st[1024];
    size_t len;

    states(client, from, st, sizeof(st));
    len = strlen(st);
    if (strstr(st, "BeginAbort") == NULL || strstr(st, "Commit") != NULL ||
        len < 6 || strcmp(st + len - 6, " Ready") != 0) {
        dump_trace("at the failure");
        fail_msg("transaction states [%s]: not one abort", st);
    }
    EXPECT_WIN(w, count(w, "send", "EndTxn") <= 1);
    EXPECT_WIN(w, end < 0 || strcmp(w->ev[end].end, "abort") == 0);
    EXPECT_WIN(w, count(w, "send", "AddOffsetsToTxn") == 1);
    EXPECT_WIN(w, count(w, "send", "TxnOffsetCommit") == (offsets_committed ? 1 : 0));
    for (int i = end + 1; end >= 0 && i < w->n; i++)
        EXPECT_WIN(w, strcmp(w->ev[i].ev, "recv") == 0);
    fprintf(stderr, "aborted: states [%s], requests [%s]\n", st, w->text);
    return count(w, "send", "Produce") > 0;
}

static void
test_abortable_marker_error_keeps_the_records(void **state)
{
    static const char *const recs[] = {
        "{\"id\":1} {\"id\":1,\"name\":\"a\"}", "{\"id\":2} {\"id\":2,\"name\":\"b\"}", NULL };
    h_op_t h, h2, h3;
    weir_buf_t b1 = WEIR_BUF_INIT, b2 = WEIR_BUF_INIT, r1 = WEIR_BUF_INIT, r2 = WEIR_BUF_INIT;
    kt_win_t w;
    int64_t ck[4];
    long m0;
    int a, aborted_out = 0;

    (void)state;
    mock_start(1, 1);
    open_sink(&h, 0);
    a = trace_client(TXN_ID);
    rows(&h, (const char *const[]){ "1|a", "2|b", NULL });
    barrier(&h, 1, &b1);
    assert_int_equal(pending(&b1, ck, 4, &r1), 1);

    /* AddOffsetsToTxn refused (not retriable, not fatal): abortable */
    rd_kafka_mock_push_request_errors(mock, API_ADD_OFFSETS_TO_TXN, 1,
                                      RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED);
    m0 = trace_mark();
    assert_int_not_equal(h.cfg.kind->notify_complete(&h.op[0], 1, &h.err), 0);
    fprintf(stderr, "notify with AddOffsetsToTxn refused: %s\n", h.err.msg);
    assert_non_null(strstr(h.err.msg, "add the commit marker"));
    assert_true(mentions(h.err.msg, "authoriz"));
    window(a, m0, 0, &w);
    aborted_out += expect_aborted(a, m0, &w, false);
    /* the checkpoint's records are still pending, unchanged: the next
     * barrier carries them */
    barrier(&h, 2, &b2);
    assert_int_equal(pending(&b2, ck, 4, &r2), 1);
    assert_int_equal(ck[0], 1);
    assert_int_equal(r2.len, r1.len);
    assert_memory_equal(r2.data, r1.data, r1.len);
    /* the same producer goes on after the abort: the next completion
     * commits checkpoint 1 (the purge reports of the aborted records are
     * not a delivery failure: the records are still pending) */
    m0 = trace_mark();
    if (h.cfg.kind->notify_complete(&h.op[0], 2, &h.err) != 0)
        fail_msg("notify after an aborted transaction: %s", h.err.msg);
    window(a, m0, 0, &w);
    expect_commits(&w, 1);
    h_close(&h);                                   /* as if the task failed now */

    /* attempt 1 restores checkpoint 1; now TxnOffsetCommit is refused on
     * the group coordinator: the restore fails, aborted */
    open_sink(&h2, 1);
    a = trace_client(TXN_ID);
    rd_kafka_mock_push_request_errors(mock, API_TXN_OFFSET_COMMIT, 1,
                                      RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED);
    m0 = trace_mark();
    {
        weir_op_blob_t ob = { .subtask = 0, .data = b1.data, .len = b1.len };
        assert_int_not_equal(h2.cfg.kind->restore(&h2.op[0], 1, 1, &ob, 1, &h2.err), 0);
    }
    fprintf(stderr, "restore with TxnOffsetCommit refused: %s\n", h2.err.msg);
    assert_non_null(strstr(h2.err.msg, "add the commit marker"));
    window(a, m0, 0, &w);
    aborted_out += expect_aborted(a, m0, &w, true);
    h_close(&h2);

    /* attempt 2 restores checkpoint 1 again: committed, once */
    open_sink(&h3, 2);
    a = trace_client(TXN_ID);
    m0 = trace_mark();
    restore_ok(&h3, 1, &b1);
    window(a, m0, 0, &w);
    expect_commits(&w, 1);
    /* the committed copy, plus the aborted ones that reached the mock
     * before their abort (no isolation there) */
    fprintf(stderr, "aborted attempts that produced before their abort: %d\n", aborted_out);
    expect_topic_copies(recs, 2 + aborted_out);     /* attempt 0's commit, and attempt 2's:
                                                      * the mock keeps no marker */
    h_close(&h3);
    weir_buf_free(&b1);
    weir_buf_free(&b2);
    weir_buf_free(&r1);
    weir_buf_free(&r2);
}

/* ---- e. retriable EndTxn errors ---------------------------------------- */

static void
test_retriable_end_txn_errors(void **state)
{
    h_op_t h;
    weir_buf_t b1 = WEIR_BUF_INIT;
    kt_win_t w;
    long m0;
    int a;

    (void)state;
    mock_start(3, 2);
    open_sink(&h, 0);
    a = trace_client(TXN_ID);
    rows(&h, (const char *const[]){ "1|a", "2|b", "3|c", NULL });
    barrier(&h, 1, &b1);
    rd_kafka_mock_push_request_errors(mock, API_END_TXN, 3,
                                      RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
                                      RD_KAFKA_RESP_ERR_CONCURRENT_TRANSACTIONS,
                                      RD_KAFKA_RESP_ERR_NOT_COORDINATOR);
    m0 = trace_mark();
    notify_ok(&h, 1);
    window(a, m0, 0, &w);
    /* three refused EndTxn(commit), the fourth accepted; nothing aborted */
    EXPECT_WIN(&w, count(&w, "send", "EndTxn") == 4);
    for (int i = 0; i < w.n; i++)
        if (strcmp(w.ev[i].ev, "send") == 0 && strcmp(w.ev[i].what, "EndTxn") == 0)
            EXPECT_WIN(&w, strcmp(w.ev[i].end, "commit") == 0);
    EXPECT_WIN(&w, count(&w, "send", "AddOffsetsToTxn") == 1);
    EXPECT_WIN(&w, count(&w, "send", "TxnOffsetCommit") == 1);
    expect_topic((const char *const[]){
        "{\"id\":1} {\"id\":1,\"name\":\"a\"}", "{\"id\":2} {\"id\":2,\"name\":\"b\"}",
        "{\"id\":3} {\"id\":3,\"name\":\"c\"}", NULL });
    /* committed: nothing pending any more */
    {
        int64_t ck[4];
        barrier(&h, 2, &b1);
        assert_int_equal(pending(&b1, ck, 4, NULL), 0);
    }
    h_close(&h);
    weir_buf_free(&b1);
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_protocol_order, teardown),
        cmocka_unit_test_teardown(test_restore_in_a_new_attempt, teardown),
        cmocka_unit_test_teardown(test_fenced_producer_never_commits, teardown),
        cmocka_unit_test_teardown(test_fenced_on_produce_never_commits, teardown),
        cmocka_unit_test_teardown(test_abortable_marker_error_keeps_the_records, teardown),
        cmocka_unit_test_teardown(test_retriable_end_txn_errors, teardown),
    };
    int fd, rc;

    plugin = argc > 1 ? argv[1] : getenv("WEIR_KTRACE_PLUGIN");
    if (plugin == NULL || access(plugin, R_OK) != 0) {
        fprintf(stderr, "usage: %s PATH-OF-libktrace_plugin.so (or $WEIR_KTRACE_PLUGIN)\n",
                argv[0]);
        return 2;
    }
    snprintf(trace_path, sizeof(trace_path), "%s/weir-ktrace-XXXXXX",
             getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    fd = mkstemp(trace_path);
    if (fd < 0) {
        perror("mkstemp");
        return 2;
    }
    close(fd);
    setenv("WEIR_KTRACE", trace_path, 1);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(trace_path);
    return rc;
}
