/* tests/pg/test_pg_sink.c -- the postgres sink against a real server.
 *
 * One private PostgreSQL server per run of this binary (pg_harness.h); the
 * operator is driven by hand (tests/operators/op_harness.h), its checkpoint
 * hooks called directly as the task runtime will call them. What a test
 * asserts is what a person sees with psql: the rows of the table, read back
 * on the harness's own connection, exactly.
 *
 * Without checkpoints the sink writes every batch_rows rows and at finish.
 * With checkpoints nothing is visible before its checkpoint completes; a
 * crash after a snapshot loses nothing and duplicates nothing once a fresh
 * operator restores the snapshot, also at another parallelism. Doubles,
 * timestamps, strings and bytes round-trip bit for bit. Errors carry the
 * server's message and the table's name; configure errors their place in
 * the job file.
 *
 * `test_pg_sink --bench` instead times 100,000 rows through the sink (COPY
 * into a stage, one upsert) against multi-row INSERT ... VALUES with
 * parameters, and prints the figures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <time.h>
#include <unistd.h>

#include "op_harness.h"
#include "pg_harness.h"

#define SCHEMA "id:int, name:string?, amount:double?, ok:bool?, ts:timestamp?"

static char yaml[4096];

/* The job file of one postgres sink 'db' on 'table' with extra params. */
static const char *
sink_yaml(const char *table, const char *extra)
{
    snprintf(yaml, sizeof(yaml),
             "name: t\n"
             "sources:\n"
             "  - name: src\n"
             "    kind: datagen\n"
             "sinks:\n"
             "  - name: db\n"
             "    kind: postgres\n"
             "    input: src\n"
             "    dsn: \"%s\"\n"
             "    table: %s\n"
             "%s",
             pgh_dsn(), table, extra);
    return yaml;
}

/* Configures and opens subtasks 0..p-1 with checkpoint interval ckpt_us. */
static void
sink_open(h_op_t *h, weir_schema_t *s, const char *table, const char *extra, int64_t ckpt_us,
          int p)
{
    h_configure_ok(h, sink_yaml(table, extra), "db", WEIR_ROLE_SINK, s);
    for (int i = 0; i < H_MAX_SUBTASKS; i++) {
        h->ctx[i].checkpoint_interval_us = ckpt_us;
        h->ctx[i].exactly_once = true;
    }
    h_open(h, p);
}

static void
push(h_op_t *h, int sub, weir_schema_t *s, const char *const *rows)
{
    weir_batch_t *b = h_batch(s, rows);

    if (h_process(h, sub, b, NULL) != 0)
        fail_msg("process failed: %s", h->err.msg);
    weir_batch_destroy(b);
}

static void
finish(h_op_t *h, int sub)
{
    if (h_finish(h, sub, NULL) != 0)
        fail_msg("finish failed: %s", h->err.msg);
}

/* snapshot(ckpt) of subtask sub; the blob is appended to out. */
static void
snap(h_op_t *h, int sub, int64_t ckpt, weir_buf_t *out)
{
    weir_buf_t tmp = WEIR_BUF_INIT;

    if (h->cfg.kind->snapshot(&h->op[sub], ckpt, out != NULL ? out : &tmp, &h->err) != 0)
        fail_msg("snapshot %lld failed: %s", (long long)ckpt, h->err.msg);
    weir_buf_free(&tmp);
}

static void
notify(h_op_t *h, int sub, int64_t ckpt)
{
    if (h->cfg.kind->notify_complete(&h->op[sub], ckpt, &h->err) != 0)
        fail_msg("notify_complete %lld failed: %s", (long long)ckpt, h->err.msg);
}

static void
restore(h_op_t *h, int sub, int64_t ckpt, int old_p, const weir_op_blob_t *blobs, int n)
{
    if (h->cfg.kind->restore(&h->op[sub], ckpt, old_p, blobs, n, &h->err) != 0)
        fail_msg("restore failed: %s", h->err.msg);
}

#define ROWS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define NO_ROWS   ((const char *const[]){ NULL })

static int
setup(void **unused)
{
    pgh_start();
    return 0;
}

static int
teardown(void **unused)
{
    pgh_stop();
    return 0;
}

/* ---- the table ------------------------------------------------------------ */

static void
test_pg_sink_is_registered_as_a_sink(void **unused)
{
    const weir_op_kind_t *k = weir_op_kind_find_role("postgres", WEIR_ROLE_SINK);

    assert_non_null(k);
    assert_ptr_equal(k, &weir_op_pg_sink);
    assert_null(weir_op_kind_find_role("postgres", WEIR_ROLE_SOURCE));
    assert_non_null(k->snapshot);
    assert_non_null(k->notify_complete);
    assert_non_null(k->restore);
}

static void
test_pg_sink_creates_table_from_schema(void **unused)
{
    weir_schema_t *s = h_schema("id:int, name:string, amount:double?, ok:bool?, ts:timestamp, "
                                "raw:bytes?, account_id:int, order:string?");
    h_op_t h;

    pgh_exec("DROP SCHEMA IF EXISTS sch1 CASCADE; CREATE SCHEMA sch1");
    /* two subtasks: both run CREATE ... IF NOT EXISTS */
    sink_open(&h, s, "sch1.created", "    key: id\n"
                                     "    indexes: [[account_id], \"name;ts\", [order, id]]\n",
              0, 2);
    h_close(&h);

    pgh_expect("SELECT column_name, data_type, is_nullable FROM information_schema.columns "
               "WHERE table_schema = 'sch1' AND table_name = 'created' ORDER BY ordinal_position",
               ROWS("id|bigint|NO", "name|text|NO", "amount|double precision|YES",
                    "ok|boolean|YES", "ts|timestamp without time zone|NO", "raw|bytea|YES",
                    "account_id|bigint|NO", "order|text|YES"));
    pgh_expect("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
               "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'sch1.created'::regclass "
               "AND i.indisprimary",
               ROWS("id"));
    pgh_expect("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'sch1' "
               "AND tablename = 'created' ORDER BY indexname",
               ROWS("created_account_id_idx|CREATE INDEX created_account_id_idx ON "
                    "sch1.created USING btree (account_id)",
                    "created_name_ts_idx|CREATE INDEX created_name_ts_idx ON sch1.created "
                    "USING btree (name, ts)",
                    "created_order_id_idx|CREATE INDEX created_order_id_idx ON sch1.created "
                    "USING btree (\"order\", id)",
                    "created_pkey|CREATE UNIQUE INDEX created_pkey ON sch1.created USING "
                    "btree (id)"));
    weir_schema_unref(s);
}

static void
test_pg_sink_composite_key_is_the_primary_key(void **unused)
{
    weir_schema_t *s = h_schema("a:int, b:string, v:double?");
    h_op_t h;

    pgh_exec("DROP TABLE IF EXISTS composite");
    sink_open(&h, s, "composite", "    key: [b, a]\n", 0, 1);
    h_close(&h);
    pgh_expect("SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY "
               "AS k(attnum, n) ON true JOIN pg_attribute a ON a.attrelid = i.indrelid AND "
               "a.attnum = k.attnum WHERE i.indrelid = 'composite'::regclass AND i.indisprimary "
               "ORDER BY k.n",
               ROWS("b", "a"));
    weir_schema_unref(s);
}

static void
test_pg_sink_without_create_table_needs_the_table(void **unused)
{
    weir_schema_t *s = h_schema("id:int, v:string?");
    h_op_t h;
    int rc;

    pgh_exec("DROP TABLE IF EXISTS missing_table");
    h_configure_ok(&h, sink_yaml("missing_table", "    key: id\n    create_table: false\n"),
                   "db", WEIR_ROLE_SINK, s);
    h.ctx[0].log_prefix = "[test]";
    h.ctx[0].parallelism = 1;
    h.op[0].cfg = &h.cfg;
    h.op[0].ctx = &h.ctx[0];
    rc = h.cfg.kind->open(&h.op[0], &h.err);
    assert_int_not_equal(rc, 0);
    if (strstr(h.err.msg, "relation \"missing_table\" does not exist") == NULL ||
        strstr(h.err.msg, "table missing_table") == NULL)
        fail_msg("unexpected message: %s", h.err.msg);
    h_close(&h);

    /* an existing table of other (compatible) types is written through
     * assignment casts */
    pgh_exec("CREATE TABLE missing_table (id integer PRIMARY KEY, v varchar(10), extra text "
             "DEFAULT 'd')");
    sink_open(&h, s, "missing_table", "    key: id\n    create_table: false\n", 0, 1);
    push(&h, 0, s, ROWS("1|one", "2|null"));
    finish(&h, 0);
    h_close(&h);
    pgh_expect("SELECT id, v, extra FROM missing_table ORDER BY id", ROWS("1|one|d", "2|null|d"));
    weir_schema_unref(s);
}

/* ---- without checkpoints ---------------------------------------------------- */

static void
test_pg_sink_writes_every_batch_rows_and_at_finish(void **unused)
{
    weir_schema_t *s = h_schema(SCHEMA);
    h_op_t h;

    pgh_exec("DROP TABLE IF EXISTS plain");
    sink_open(&h, s, "plain", "    key: id\n    batch_rows: 2\n", 0, 1);
    push(&h, 0, s, ROWS("1|alice|10.5|true|2024-01-01 10:00:00.123456",
                        "2|null|null|null|null",
                        "3|carol|-0.25|false|1999-12-31 23:59:59.999999"));
    /* two rows make a batch: written; the third waits */
    pgh_expect("SELECT id FROM plain ORDER BY id", ROWS("1", "2"));
    finish(&h, 0);
    h_close(&h);
    pgh_expect("SELECT id, name, amount, ok, ts FROM plain ORDER BY id",
               ROWS("1|alice|10.5|t|2024-01-01 10:00:00.123456",
                    "2|null|null|null|null",
                    "3|carol|-0.25|f|1999-12-31 23:59:59.999999"));
    weir_schema_unref(s);
}

static void
test_pg_sink_upsert_replaces_on_key_conflict(void **unused)
{
    weir_schema_t *s = h_schema("a:int, b:string, v:double?");
    weir_schema_t *k = h_schema("a:int");
    h_op_t h;

    pgh_exec("DROP TABLE IF EXISTS upserts; DROP TABLE IF EXISTS keys_only");
    sink_open(&h, s, "upserts", "    key: a;b\n", 0, 1);
    /* one key three times in one write: the last one wins */
    push(&h, 0, s, ROWS("1|x|1", "1|y|2", "1|x|3", "2|x|4"));
    finish(&h, 0);
    h_close(&h);
    pgh_expect("SELECT a, b, v FROM upserts ORDER BY a, b", ROWS("1|x|3", "1|y|2", "2|x|4"));

    /* a later job replaces, and leaves other keys alone */
    sink_open(&h, s, "upserts", "    key: a;b\n", 0, 1);
    push(&h, 0, s, ROWS("1|y|5", "2|x|null", "3|z|6"));
    finish(&h, 0);
    h_close(&h);
    pgh_expect("SELECT a, b, v FROM upserts ORDER BY a, b",
               ROWS("1|x|3", "1|y|5", "2|x|null", "3|z|6"));

    /* every column a key column: ON CONFLICT DO NOTHING */
    sink_open(&h, k, "keys_only", "    key: a\n", 0, 1);
    push(&h, 0, k, ROWS("1", "1", "2"));
    push(&h, 0, k, ROWS("2", "3"));
    finish(&h, 0);
    h_close(&h);
    pgh_expect("SELECT a FROM keys_only ORDER BY a", ROWS("1", "2", "3"));
    weir_schema_unref(s);
    weir_schema_unref(k);
}

static void
test_pg_sink_snapshot_without_checkpoints_writes_now(void **unused)
{
    weir_schema_t *s = h_schema(SCHEMA);
    weir_buf_t blob = WEIR_BUF_INIT;
    h_op_t h;

    pgh_exec("DROP TABLE IF EXISTS savepointed");
    sink_open(&h, s, "savepointed", "    key: id\n", 0, 1);
    push(&h, 0, s, ROWS("1|a|1|true|null"));
    assert_int_equal(pgh_count("savepointed"), 0);
    /* a savepoint of a job without periodic checkpoints */
    snap(&h, 0, 1, &blob);
    assert_int_equal(pgh_count("savepointed"), 1);
    notify(&h, 0, 1);
    h_close(&h);

    /* its state holds nothing to re-apply */
    pgh_exec("TRUNCATE savepointed");
    sink_open(&h, s, "savepointed", "    key: id\n", 0, 1);
    restore(&h, 0, 1, 1, &(weir_op_blob_t){ 0, blob.data, blob.len }, 1);
    h_close(&h);
    assert_int_equal(pgh_count("savepointed"), 0);
    weir_buf_free(&blob);
    weir_schema_unref(s);
}

/* ---- with checkpoints ------------------------------------------------------- */

static void
test_pg_sink_commits_when_the_checkpoint_completes(void **unused)
{
    weir_schema_t *s = h_schema(SCHEMA);
    h_op_t h;

    pgh_exec("DROP TABLE IF EXISTS ckpt");
    sink_open(&h, s, "ckpt", "    key: id\n    batch_rows: 1\n", 1000000, 1);
    push(&h, 0, s, ROWS("1|a|1|true|null", "2|b|2|true|null"));
    assert_int_equal(pgh_count("ckpt"), 0);               /* batch_rows does not apply */
    snap(&h, 0, 1, NULL);
    assert_int_equal(pgh_count("ckpt"), 0);               /* pre-committed only */
    push(&h, 0, s, ROWS("3|c|3|false|null", "1|a2|10|false|null"));
    assert_int_equal(pgh_count("ckpt"), 0);
    notify(&h, 0, 1);
    pgh_expect("SELECT id, name FROM ckpt ORDER BY id", ROWS("1|a", "2|b"));
    snap(&h, 0, 2, NULL);
    pgh_expect("SELECT id, name FROM ckpt ORDER BY id", ROWS("1|a", "2|b"));
    push(&h, 0, s, ROWS("4|d|4|false|null"));
    notify(&h, 0, 2);
    pgh_expect("SELECT id, name FROM ckpt ORDER BY id", ROWS("1|a2", "2|b", "3|c"));
    notify(&h, 0, 2);                                     /* again: nothing to do */
    /* a bounded job ends without a final checkpoint: finish writes the rest */
    finish(&h, 0);
    h_close(&h);
    pgh_expect("SELECT id, name FROM ckpt ORDER BY id", ROWS("1|a2", "2|b", "3|c", "4|d"));
    weir_schema_unref(s);
}

static void
test_pg_sink_notify_commits_every_pending_checkpoint_up_to_n(void **unused)
{
    weir_schema_t *s = h_schema(SCHEMA);
    h_op_t h;

    pgh_exec("DROP TABLE IF EXISTS ckpt_many");
    sink_open(&h, s, "ckpt_many", "    key: id\n", 1000000, 1);
    push(&h, 0, s, ROWS("1|a|1|true|null"));
    snap(&h, 0, 1, NULL);
    push(&h, 0, s, ROWS("1|b|1|true|null", "2|b|1|true|null"));
    snap(&h, 0, 2, NULL);
    push(&h, 0, s, ROWS("3|c|1|true|null"));
    snap(&h, 0, 3, NULL);
    push(&h, 0, s, ROWS("4|d|1|true|null"));
    /* checkpoint 1's notification was lost; 2 implies it */
    notify(&h, 0, 2);
    pgh_expect("SELECT id, name FROM ckpt_many ORDER BY id", ROWS("1|b", "2|b"));
    notify(&h, 0, 1);                                     /* late: nothing left */
    notify(&h, 0, 3);
    pgh_expect("SELECT id, name FROM ckpt_many ORDER BY id", ROWS("1|b", "2|b", "3|c"));
    h_close(&h);                                          /* 4 is lost: never checkpointed */
    assert_int_equal(pgh_count("ckpt_many"), 3);
    weir_schema_unref(s);
}

static void
test_pg_sink_restore_after_crash_commits_exactly_the_checkpointed_rows(void **unused)
{
    weir_schema_t *s = h_schema(SCHEMA);
    weir_buf_t blob2 = WEIR_BUF_INIT;
    weir_op_blob_t b;
    h_op_t h;

    pgh_exec("DROP TABLE IF EXISTS crash");
    sink_open(&h, s, "crash", "    key: id\n", 1000000, 1);
    push(&h, 0, s, ROWS("1|a|1|true|null"));
    snap(&h, 0, 1, NULL);
    notify(&h, 0, 1);
    push(&h, 0, s, ROWS("2|b|2|true|null", "3|c|3|true|null", "1|a2|1|true|null"));
    snap(&h, 0, 2, &blob2);
    push(&h, 0, s, ROWS("4|d|4|false|null"));             /* after barrier 2 */
    h_close(&h);                                          /* crash: no notify, no finish */
    pgh_expect("SELECT id, name FROM crash ORDER BY id", ROWS("1|a"));

    /* checkpoint 2 completed: the next attempt restores it */
    b = (weir_op_blob_t){ .subtask = 0, .data = blob2.data, .len = blob2.len };
    sink_open(&h, s, "crash", "    key: id\n", 1000000, 1);
    restore(&h, 0, 2, 1, &b, 1);
    pgh_expect("SELECT id, name FROM crash ORDER BY id", ROWS("1|a2", "2|b", "3|c"));
    /* its notification after the restore finds nothing pending */
    notify(&h, 0, 2);
    h_close(&h);

    /* a second failure restores the same checkpoint again: still once */
    sink_open(&h, s, "crash", "    key: id\n", 1000000, 1);
    restore(&h, 0, 2, 1, &b, 1);
    h_close(&h);
    pgh_expect("SELECT id, name FROM crash ORDER BY id", ROWS("1|a2", "2|b", "3|c"));
    weir_buf_free(&blob2);
    weir_schema_unref(s);
}

static void
test_pg_sink_restore_after_commit_is_idempotent(void **unused)
{
    weir_schema_t *s = h_schema(SCHEMA);
    weir_buf_t blob = WEIR_BUF_INIT;
    h_op_t h;

    pgh_exec("DROP TABLE IF EXISTS recommit");
    sink_open(&h, s, "recommit", "    key: id\n", 1000000, 1);
    push(&h, 0, s, ROWS("1|a|1|true|null", "2|b|2|true|null"));
    snap(&h, 0, 5, &blob);
    notify(&h, 0, 5);                                     /* committed, then the crash */
    h_close(&h);
    sink_open(&h, s, "recommit", "    key: id\n", 1000000, 1);
    restore(&h, 0, 5, 1, &(weir_op_blob_t){ 0, blob.data, blob.len }, 1);
    h_close(&h);
    pgh_expect("SELECT id, name FROM recommit ORDER BY id", ROWS("1|a", "2|b"));
    weir_buf_free(&blob);
    weir_schema_unref(s);
}

static void
test_pg_sink_restore_rescales(void **unused)
{
    weir_schema_t *s = h_schema(SCHEMA);
    weir_buf_t blob[2] = { WEIR_BUF_INIT, WEIR_BUF_INIT };
    weir_op_blob_t b[2];
    h_op_t h;

    pgh_exec("DROP TABLE IF EXISTS rescale");
    sink_open(&h, s, "rescale", "    key: id\n", 1000000, 2);
    push(&h, 0, s, ROWS("1|a|1|true|null", "2|a|1|true|null"));
    push(&h, 1, s, ROWS("3|b|1|true|null", "4|b|1|true|null"));
    snap(&h, 0, 7, &blob[0]);
    snap(&h, 1, 7, &blob[1]);
    h_close(&h);                                          /* crash before notify */
    assert_int_equal(pgh_count("rescale"), 0);
    for (int i = 0; i < 2; i++)
        b[i] = (weir_op_blob_t){ .subtask = i, .data = blob[i].data, .len = blob[i].len };

    /* parallelism 2 -> 1: subtask 0 owns both */
    sink_open(&h, s, "rescale", "    key: id\n", 1000000, 1);
    restore(&h, 0, 7, 2, b, 2);
    h_close(&h);
    pgh_expect("SELECT id, name FROM rescale ORDER BY id", ROWS("1|a", "2|a", "3|b", "4|b"));

    /* parallelism 2 -> 3: old i goes to new i % 3; new subtask 2 owns none */
    pgh_exec("TRUNCATE rescale");
    sink_open(&h, s, "rescale", "    key: id\n", 1000000, 3);
    restore(&h, 1, 7, 2, b, 2);
    pgh_expect("SELECT id, name FROM rescale ORDER BY id", ROWS("3|b", "4|b"));
    restore(&h, 2, 7, 2, b, 2);
    pgh_expect("SELECT id, name FROM rescale ORDER BY id", ROWS("3|b", "4|b"));
    restore(&h, 0, 7, 2, b, 2);
    pgh_expect("SELECT id, name FROM rescale ORDER BY id", ROWS("1|a", "2|a", "3|b", "4|b"));
    h_close(&h);
    weir_buf_free(&blob[0]);
    weir_buf_free(&blob[1]);
    weir_schema_unref(s);
}

static void
test_pg_sink_restore_rejects_a_corrupt_or_foreign_state(void **unused)
{
    weir_schema_t *s = h_schema(SCHEMA), *other = h_schema("id:int, name:string?");
    weir_buf_t blob = WEIR_BUF_INIT;
    h_op_t h;
    int rc;

    pgh_exec("DROP TABLE IF EXISTS foreign_state; DROP TABLE IF EXISTS foreign_state2");
    sink_open(&h, s, "foreign_state", "    key: id\n", 1000000, 1);
    push(&h, 0, s, ROWS("1|a|1|true|null"));
    snap(&h, 0, 1, &blob);
    h_close(&h);

    sink_open(&h, other, "foreign_state2", "    key: id\n", 1000000, 1);
    rc = h.cfg.kind->restore(&h.op[0], 1, 1, &(weir_op_blob_t){ 0, blob.data, blob.len }, 1,
                             &h.err);
    assert_int_equal(rc, WEIR_ESTATE);
    assert_non_null(strstr(h.err.msg, "another input schema"));
    h_close(&h);

    sink_open(&h, s, "foreign_state", "    key: id\n", 1000000, 1);
    rc = h.cfg.kind->restore(&h.op[0], 1, 1, &(weir_op_blob_t){ 0, blob.data, blob.len - 3 },
                             1, &h.err);
    assert_int_equal(rc, WEIR_EPARSE);
    assert_non_null(strstr(h.err.msg, "corrupt"));
    h_close(&h);
    assert_int_equal(pgh_count("foreign_state"), 0);
    weir_buf_free(&blob);
    weir_schema_unref(s);
    weir_schema_unref(other);
}

static void
test_pg_sink_many_rows_with_repeated_keys_across_checkpoints(void **unused)
{
    weir_schema_t *s = h_schema("id:int, v:int");
    weir_batch_t *b = weir_batch_new(s, 1024);
    char *v;
    h_op_t h;

    pgh_exec("DROP TABLE IF EXISTS many");
    sink_open(&h, s, "many", "    key: id\n", 1000000, 1);
    for (int i = 0; i < 30000; i++) {
        weir_value_t *row = weir_batch_append(b);
        row[0] = weir_value_int(i % 7000);
        row[1] = weir_value_int(i);
        if (b->nrows == 1024 || i == 29999) {
            assert_int_equal(h_process(&h, 0, b, NULL), 0);
            weir_batch_clear(b);
        }
        if (i == 9999)
            snap(&h, 0, 1, NULL);
        if (i == 19999)
            snap(&h, 0, 2, NULL);
    }
    snap(&h, 0, 3, NULL);
    notify(&h, 0, 3);
    h_close(&h);
    /* every key holds its last value, the largest i < 30000 with
     * i % 7000 == id: 28000 + id below 2000, 21000 + id above */
    v = pgh_value("SELECT count(*) || '|' || count(*) FILTER (WHERE v = CASE WHEN id < 2000 "
                  "THEN 28000 + id ELSE 21000 + id END) FROM many");
    assert_string_equal(v, "7000|7000");
    free(v);
    weir_batch_destroy(b);
    weir_schema_unref(s);
}

/* ---- values ----------------------------------------------------------------- */

static void
test_pg_sink_round_trips_doubles_timestamps_strings_bytes(void **unused)
{
    static const double ds[] = {
        0.1, -0.0, 1e-300, 5e-324, 1.7976931348623157e308, -123456.78901234567,
        3.141592653589793, 2.2250738585072014e-308, 1.0 / 3.0, INFINITY, -INFINITY,
    };
    static const int64_t ts[] = {
        0, -1, INT64_C(946684800000000), INT64_C(946684799999999), INT64_C(1700000000123456),
        INT64_C(-62135596800000000), INT64_C(253402300799999999), INT64_C(1), INT64_C(-210866803200000000),
    };
    static const char *const strs[] = {
        "tab\there", "new\nline\r\n", "back\\slash \\N", "quote' \"double\"", "ünïcødé € 😀", "",
        "|pipe|", "x",
    };
    weir_schema_t *s = h_schema("id:int, d:double?, t:timestamp?, s:string?, b:bytes?");
    weir_batch_t *bt = weir_batch_new(s, 16);
    const char bytes[] = { 0, (char)0xff, 1, '\\', 'x', '\n', 0 };
    int n = 11;
    h_op_t h;

    pgh_exec("DROP TABLE IF EXISTS roundtrip");
    for (int i = 0; i < n; i++) {
        weir_value_t *row = weir_batch_append(bt);
        row[0] = weir_value_int(i);
        row[1] = weir_value_double(ds[i]);
        row[2] = i < 9 ? weir_value_ts(ts[i]) : weir_value_null(WEIR_T_TIMESTAMP);
        row[3] = i < 8 ? weir_value_str(strs[i], (uint32_t)strlen(strs[i]))
                       : weir_value_null(WEIR_T_STRING);
        row[4] = i == 0 ? weir_value_bytes(bytes, sizeof(bytes))
                        : i == 1 ? weir_value_bytes("", 0) : weir_value_null(WEIR_T_BYTES);
    }
    sink_open(&h, s, "roundtrip", "    key: id\n", 0, 1);
    assert_int_equal(h_process(&h, 0, bt, NULL), 0);
    finish(&h, 0);
    h_close(&h);

    for (int i = 0; i < n; i++) {
        uint64_t bits, got;
        char *v;

        memcpy(&bits, &ds[i], 8);
        v = pgh_value("SELECT encode(float8send(d), 'hex') FROM roundtrip WHERE id = %d", i);
        got = strtoull(v, NULL, 16);
        if (got != bits)
            fail_msg("double %d (%.17g): stored %s, want %016llx", i, ds[i], v,
                     (unsigned long long)bits);
        free(v);
        if (i < 9) {
            v = pgh_value("SELECT (extract(epoch FROM t) * 1000000)::bigint FROM roundtrip "
                          "WHERE id = %d", i);
            if (strtoll(v, NULL, 10) != ts[i])
                fail_msg("timestamp %d: stored %s, want %lld", i, v, (long long)ts[i]);
            free(v);
        }
        if (i < 8) {
            v = pgh_value("SELECT s FROM roundtrip WHERE id = %d", i);
            assert_string_equal(v, strs[i]);
            free(v);
        }
    }
    pgh_expect("SELECT id, encode(b, 'hex') FROM roundtrip WHERE b IS NOT NULL ORDER BY id",
               ROWS("0|00ff015c780a00", "1|"));
    pgh_expect("SELECT t FROM roundtrip WHERE id IN (1, 4, 6) ORDER BY id",
               ROWS("1969-12-31 23:59:59.999999", "2023-11-14 22:13:20.123456",
                    "9999-12-31 23:59:59.999999"));
    pgh_expect("SELECT d FROM roundtrip WHERE id IN (0, 9) ORDER BY id", ROWS("0.1", "Infinity"));
    weir_batch_destroy(bt);
    weir_schema_unref(s);
}

static void
test_pg_sink_nan_and_negative_zero_keys_meet_themselves(void **unused)
{
    weir_schema_t *s = h_schema("k:double, v:int");
    weir_batch_t *b = weir_batch_new(s, 4);
    weir_value_t *row;
    h_op_t h;

    pgh_exec("DROP TABLE IF EXISTS dkeys");
    row = weir_batch_append(b);
    row[0] = weir_value_double(0.0);
    row[1] = weir_value_int(1);
    row = weir_batch_append(b);
    row[0] = weir_value_double(-0.0);
    row[1] = weir_value_int(2);
    row = weir_batch_append(b);
    row[0] = weir_value_double(NAN);
    row[1] = weir_value_int(3);
    row = weir_batch_append(b);
    row[0] = weir_value_double(-NAN);
    row[1] = weir_value_int(4);
    /* PostgreSQL finds 0 = -0 and NaN = NaN: one upsert must not meet them twice */
    sink_open(&h, s, "dkeys", "    key: k\n", 0, 1);
    assert_int_equal(h_process(&h, 0, b, NULL), 0);
    finish(&h, 0);
    h_close(&h);
    pgh_expect("SELECT v FROM dkeys ORDER BY v", ROWS("2", "4"));
    weir_batch_destroy(b);
    weir_schema_unref(s);
}

/* ---- errors ----------------------------------------------------------------- */

static void
test_pg_sink_bad_dsn_fails_open_with_the_libpq_message(void **unused)
{
    weir_schema_t *s = h_schema("id:int");
    h_op_t h;
    int rc;

    h_configure_ok(&h, "name: t\n"
                       "sources:\n"
                       "  - name: src\n"
                       "    kind: datagen\n"
                       "sinks:\n"
                       "  - name: db\n"
                       "    kind: postgres\n"
                       "    input: src\n"
                       "    dsn: postgresql://nobody@127.0.0.1:1/weir\n"
                       "    table: unreachable\n"
                       "    key: id\n",
                   "db", WEIR_ROLE_SINK, s);
    h.ctx[0].log_prefix = "[job:test vertex:db#1/1]";
    h.ctx[0].parallelism = 1;
    h.op[0].cfg = &h.cfg;
    h.op[0].ctx = &h.ctx[0];
    rc = h.cfg.kind->open(&h.op[0], &h.err);
    assert_int_equal(rc, WEIR_EIO);
    if (strstr(h.err.msg, "cannot connect") == NULL ||
        strstr(h.err.msg, "Connection refused") == NULL ||
        strstr(h.err.msg, "table unreachable") == NULL ||
        strstr(h.err.msg, "postgres sink 'db'") == NULL || strchr(h.err.msg, '\n') != NULL)
        fail_msg("unexpected message: %s", h.err.msg);
    h_close(&h);
    weir_schema_unref(s);
}

static void
test_pg_sink_not_null_violation_fails_with_the_server_message(void **unused)
{
    weir_schema_t *s = h_schema("id:int, name:string");
    weir_batch_t *b = weir_batch_new(s, 4);
    weir_value_t *row;
    h_op_t h;
    int rc;

    pgh_exec("DROP TABLE IF EXISTS \"notnull\"");   /* a reserved word */
    row = weir_batch_append(b);
    row[0] = weir_value_int(1);
    row[1] = weir_value_str("ok", 2);
    row = weir_batch_append(b);
    row[0] = weir_value_int(2);
    row[1] = weir_value_null(WEIR_T_STRING);

    /* without checkpoints: the write of the batch fails */
    sink_open(&h, s, "notnull", "    key: id\n    batch_rows: 2\n", 0, 1);
    rc = h_process(&h, 0, b, NULL);
    assert_int_equal(rc, WEIR_EIO);
    if (strstr(h.err.msg, "null value in column \"name\" of relation \"notnull\" violates "
                          "not-null constraint") == NULL ||
        strstr(h.err.msg, "table notnull") == NULL)
        fail_msg("unexpected message: %s", h.err.msg);
    h_close(&h);
    assert_int_equal(pgh_count("\"notnull\""), 0);            /* the transaction is all or nothing */

    /* with checkpoints: the commit at notify fails */
    sink_open(&h, s, "notnull", "    key: id\n", 1000000, 1);
    assert_int_equal(h_process(&h, 0, b, NULL), 0);
    snap(&h, 0, 1, NULL);
    rc = h.cfg.kind->notify_complete(&h.op[0], 1, &h.err);
    assert_int_equal(rc, WEIR_EIO);
    if (strstr(h.err.msg, "violates not-null constraint") == NULL ||
        strstr(h.err.msg, "table notnull") == NULL)
        fail_msg("unexpected message: %s", h.err.msg);
    h_close(&h);
    assert_int_equal(pgh_count("\"notnull\""), 0);
    weir_batch_destroy(b);
    weir_schema_unref(s);
}

static void
test_pg_sink_type_error_fails_with_the_server_message(void **unused)
{
    weir_schema_t *s = h_schema("id:int, t:timestamp");
    weir_batch_t *b = weir_batch_new(s, 1);
    weir_value_t *row = weir_batch_append(b);
    h_op_t h;
    int rc;

    /* an existing table whose column cannot hold the value */
    pgh_exec("DROP TABLE IF EXISTS narrow; CREATE TABLE narrow (id smallint PRIMARY KEY, "
             "t timestamp NOT NULL)");
    row[0] = weir_value_int(100000);
    row[1] = weir_value_ts(0);
    sink_open(&h, s, "narrow", "    key: id\n    create_table: false\n", 0, 1);
    assert_int_equal(h_process(&h, 0, b, NULL), 0);
    rc = h_finish(&h, 0, NULL);
    assert_int_equal(rc, WEIR_EIO);
    if (strstr(h.err.msg, "smallint out of range") == NULL ||
        strstr(h.err.msg, "table narrow") == NULL)
        fail_msg("unexpected message: %s", h.err.msg);
    h_close(&h);
    weir_batch_destroy(b);
    weir_schema_unref(s);
}

static void
test_pg_sink_retries_once_after_a_lost_connection(void **unused)
{
    weir_schema_t *s = h_schema(SCHEMA);
    char *v;
    h_op_t h;

    pgh_exec("DROP TABLE IF EXISTS lost");
    /* without checkpoints */
    sink_open(&h, s, "lost", "    key: id\n", 0, 1);
    push(&h, 0, s, ROWS("1|a|1|true|null"));
    v = pgh_value("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                  "WHERE application_name = 'weir test db#1'");
    assert_string_equal(v, "1");
    free(v);
    push(&h, 0, s, ROWS("2|b|1|true|null"));
    finish(&h, 0);
    h_close(&h);
    pgh_expect("SELECT id FROM lost ORDER BY id", ROWS("1", "2"));

    /* with checkpoints: the notification's transaction is redone */
    sink_open(&h, s, "lost", "    key: id\n", 1000000, 1);
    push(&h, 0, s, ROWS("3|c|1|true|null"));
    snap(&h, 0, 1, NULL);
    v = pgh_value("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                  "WHERE application_name = 'weir test db#1'");
    assert_string_equal(v, "1");
    free(v);
    notify(&h, 0, 1);
    h_close(&h);
    pgh_expect("SELECT id FROM lost ORDER BY id", ROWS("1", "2", "3"));
    weir_schema_unref(s);
}

/* ---- configure ---------------------------------------------------------------- */

/* Configures a sink whose params are 'params' (a YAML block) and expects an
 * error at needle's position mentioning part. */
static void
expect_configure_error(const char *params, const char *needle, const char *part)
{
    weir_schema_t *s = h_schema("id:int, account_id:int, name:string?");
    char text[2048];
    h_op_t h;

    snprintf(text, sizeof(text),
             "name: t\n"
             "sources:\n"
             "  - name: src\n"
             "    kind: datagen\n"
             "sinks:\n"
             "  - name: db\n"
             "    kind: postgres\n"
             "    input: src\n"
             "%s",
             params);
    assert_int_not_equal(h_configure(&h, text, "db", WEIR_ROLE_SINK, s), 0);
    h_expect_error_at(&h.err, text, needle, part);
    h_close(&h);
    weir_schema_unref(s);
}

static void
test_pg_sink_configure_errors_carry_their_place(void **unused)
{
    expect_configure_error("    dsn: postgresql://x@127.0.0.1:1/weir\n"
                           "    table: t\n"
                           "    key: acount_id\n",
                           "acount_id", "unknown field 'acount_id' (did you mean 'account_id'?)");
    expect_configure_error("    dsn: postgresql://x@127.0.0.1:1/weir\n"
                           "    table: t\n"
                           "    key: [id, nope]\n",
                           "[id, nope]", "unknown field 'nope'");
    expect_configure_error("    dsn: postgresql://x@127.0.0.1:1/weir\n"
                           "    table: bad-name\n"
                           "    key: id\n",
                           "bad-name", "'bad-name' is not a table name");
    expect_configure_error("    dsn: postgresql://x@127.0.0.1:1/weir\n"
                           "    table: a.b.c\n"
                           "    key: id\n",
                           "a.b.c", "not a table name");
    expect_configure_error("    dsn: postgresql://x@127.0.0.1:1/weir\n"
                           "    table: \"t; DROP TABLE x\"\n"
                           "    key: id\n",
                           "\"t; DROP", "not a table name");
    expect_configure_error("    dsn: postgresql://x@127.0.0.1:1/weir\n"
                           "    table: t\n"
                           "    key: id\n"
                           "    indexes: [[account_id], [nmae]]\n",
                           "nmae", "unknown field 'nmae' (did you mean 'name'?)");
    expect_configure_error("    dsn: postgresql://x@127.0.0.1:1/weir\n"
                           "    table: t\n"
                           "    key: id;id\n",
                           "id;id", "listed twice");
    expect_configure_error("    dsn: postgresql://x@127.0.0.1:1/weir\n"
                           "    table: t\n"
                           "    key: id\n"
                           "    batch_rows: 0\n",
                           "0\n", "'batch_rows' must be between");
    expect_configure_error("    dsn: \"\"\n"
                           "    table: t\n"
                           "    key: id\n",
                           "\"\"", "is PG_DSN set?");
    expect_configure_error("    dsn: postgresql://x@127.0.0.1:1/weir\n"
                           "    tabel: t\n"
                           "    key: id\n",
                           "tabel", "did you mean 'table'");
    expect_configure_error("    dsn: postgresql://x@127.0.0.1:1/weir\n"
                           "    table: t\n",
                           "name: db", "missing required parameter 'key'");
}

/* ---- the benchmark (--bench) --------------------------------------------------- */

#define BENCH_ROWS 100000

static double
now_s(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static weir_schema_t *
bench_schema(void)
{
    return h_schema("transaction_id:string, account_id:int, amount:double, merchant:string, "
                    "ts:timestamp, online:bool");
}

/* BENCH_ROWS rows in batches of 1024, new; 'round' varies the values. */
static weir_batch_t **
bench_batches(weir_schema_t *s, int round, int *nb)
{
    int n = (BENCH_ROWS + 1023) / 1024;
    weir_batch_t **bs = calloc((size_t)n, sizeof(*bs));

    assert_non_null(bs);
    for (int i = 0; i < BENCH_ROWS; i++) {
        weir_batch_t *b = bs[i / 1024];
        weir_value_t *row;
        char id[40], m[32];

        if (b == NULL)
            b = bs[i / 1024] = weir_batch_new(s, 1024);
        row = weir_batch_append(b);
        snprintf(id, sizeof(id), "tx-%08d-5c0a9b7e", i);
        snprintf(m, sizeof(m), "merchant-%d", (i * 7 + round) % 500);
        row[0] = weir_value_str(id, (uint32_t)strlen(id));
        weir_batch_own(b, &row[0]);
        row[1] = weir_value_int(1000000000 + i % 5000);
        row[2] = weir_value_double((i % 100000) / 100.0 + round);
        row[3] = weir_value_str(m, (uint32_t)strlen(m));
        weir_batch_own(b, &row[3]);
        row[4] = weir_value_ts(INT64_C(1700000000000000) + (int64_t)i * 1000);
        row[5] = weir_value_bool(i % 3 == 0);
    }
    *nb = n;
    return bs;
}

static double
bench_sink(weir_schema_t *s, weir_batch_t **bs, int nb, int batch_rows)
{
    char extra[128];
    double t0;
    h_op_t h;

    snprintf(extra, sizeof(extra), "    key: transaction_id\n    batch_rows: %d\n", batch_rows);
    sink_open(&h, s, "bench", extra, 0, 1);
    t0 = now_s();
    for (int i = 0; i < nb; i++)
        assert_int_equal(h_process(&h, 0, bs[i], NULL), 0);
    finish(&h, 0);
    t0 = now_s() - t0;
    h_close(&h);
    return t0;
}

static void
put_be(char *p, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        p[i] = (char)v;
}

/* Multi-row INSERT ... VALUES ($1, ...), ... ON CONFLICT with binary
 * parameters, stmt_rows rows a statement, txn_rows rows a transaction. */
static double
bench_values(weir_schema_t *s, weir_batch_t **bs, int nb, int stmt_rows, int txn_rows)
{
    PGconn *c = PQconnectdb(pgh_dsn());
    weir_buf_t sql = WEIR_BUF_INIT;
    int nf = s->nfields, np = stmt_rows * nf;
    const char **vals = calloc((size_t)np, sizeof(*vals));
    int *lens = calloc((size_t)np, sizeof(*lens)), *fmts = calloc((size_t)np, sizeof(*fmts));
    char (*num)[8] = calloc((size_t)np, 8);
    int in_stmt = 0, in_txn = 0;
    double t0;

    assert_int_equal(PQstatus(c), CONNECTION_OK);
    weir_buf_appendf(&sql, "INSERT INTO bench (transaction_id, account_id, amount, merchant, ts, "
                           "online) VALUES ");
    for (int r = 0; r < stmt_rows; r++) {
        weir_buf_appendf(&sql, "%s(", r ? ", " : "");
        for (int f = 0; f < nf; f++)
            weir_buf_appendf(&sql, "%s$%d", f ? ", " : "", r * nf + f + 1);
        weir_buf_putc(&sql, ')');
    }
    weir_buf_appendf(&sql, " ON CONFLICT (transaction_id) DO UPDATE SET account_id = "
                           "EXCLUDED.account_id, amount = EXCLUDED.amount, merchant = "
                           "EXCLUDED.merchant, ts = EXCLUDED.ts, online = EXCLUDED.online");
    weir_buf_nul(&sql);
    for (int i = 0; i < np; i++)
        fmts[i] = 1;
    t0 = now_s();
    PQclear(PQprepare(c, "ins", sql.data, 0, NULL));
    for (int bi = 0; bi < nb; bi++) {
        for (int r = 0; r < bs[bi]->nrows; r++) {
            const weir_value_t *row = weir_batch_row(bs[bi], r);
            int base = in_stmt * nf;
            uint64_t bits;

            if (in_txn == 0)
                PQclear(PQexec(c, "BEGIN"));
            vals[base + 0] = row[0].u.s;
            lens[base + 0] = (int)row[0].len;
            put_be(num[base + 1], (uint64_t)row[1].u.i, 8);
            vals[base + 1] = num[base + 1];
            lens[base + 1] = 8;
            memcpy(&bits, &row[2].u.d, 8);
            put_be(num[base + 2], bits, 8);
            vals[base + 2] = num[base + 2];
            lens[base + 2] = 8;
            vals[base + 3] = row[3].u.s;
            lens[base + 3] = (int)row[3].len;
            put_be(num[base + 4], (uint64_t)(row[4].u.i - INT64_C(946684800000000)), 8);
            vals[base + 4] = num[base + 4];
            lens[base + 4] = 8;
            num[base + 5][0] = row[5].u.b;
            vals[base + 5] = num[base + 5];
            lens[base + 5] = 1;
            in_stmt++;
            in_txn++;
            if (in_stmt == stmt_rows) {
                PGresult *res = PQexecPrepared(c, "ins", np, vals, lens, fmts, 0);
                if (PQresultStatus(res) != PGRES_COMMAND_OK)
                    fail_msg("%s", PQresultErrorMessage(res));
                PQclear(res);
                in_stmt = 0;
            }
            if (in_txn == txn_rows) {
                PQclear(PQexec(c, "COMMIT"));
                in_txn = 0;
            }
        }
    }
    assert_int_equal(in_stmt, 0);      /* BENCH_ROWS is a multiple of stmt_rows */
    if (in_txn > 0)
        PQclear(PQexec(c, "COMMIT"));
    t0 = now_s() - t0;
    PQfinish(c);
    weir_buf_free(&sql);
    free(vals);
    free(lens);
    free(fmts);
    free(num);
    return t0;
}

static void
run_bench(void)
{
    weir_schema_t *s = bench_schema();
    weir_batch_t **ins, **upd;
    int nb, nb2;
    h_op_t h;

    pgh_start();
    ins = bench_batches(s, 0, &nb);
    upd = bench_batches(s, 1, &nb2);
    pgh_exec("DROP TABLE IF EXISTS bench");
    sink_open(&h, s, "bench", "    key: transaction_id\n", 0, 1);
    h_close(&h);
    printf("%d rows of {transaction_id: string, account_id: int, amount: double, merchant: "
           "string, ts: timestamp, online: bool}, key transaction_id; seconds (best of 5):\n",
           BENCH_ROWS);
    printf("%-48s %10s %10s\n", "method", "insert", "update");
    struct {
        const char *name;
        int kind, a, b;
    } m[] = {
        { "sink: COPY+upsert, batch_rows 5000", 0, 5000, 0 },
        { "sink: COPY+upsert, one transaction", 0, BENCH_ROWS, 0 },
        { "VALUES: 1000 rows/stmt, 5000 rows/txn", 1, 1000, 5000 },
        { "VALUES: 1000 rows/stmt, one transaction", 1, 1000, BENCH_ROWS },
        { "VALUES: 100 rows/stmt, 5000 rows/txn", 1, 100, 5000 },
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
        double best_i = 1e9, best_u = 1e9;

        for (int rep = 0; rep < 5; rep++) {
            double t;

            pgh_exec("TRUNCATE bench");
            pgh_exec("VACUUM bench");
            t = m[i].kind == 0 ? bench_sink(s, ins, nb, m[i].a)
                               : bench_values(s, ins, nb, m[i].a, m[i].b);
            best_i = t < best_i ? t : best_i;
            t = m[i].kind == 0 ? bench_sink(s, upd, nb2, m[i].a)
                               : bench_values(s, upd, nb2, m[i].a, m[i].b);
            best_u = t < best_u ? t : best_u;
            assert_int_equal(pgh_count("bench"), BENCH_ROWS);
        }
        printf("%-48s %10.3f %10.3f   (%.0f / %.0f rows/s)\n", m[i].name, best_i, best_u,
               BENCH_ROWS / best_i, BENCH_ROWS / best_u);
    }
    for (int i = 0; i < nb; i++)
        weir_batch_destroy(ins[i]);
    for (int i = 0; i < nb2; i++)
        weir_batch_destroy(upd[i]);
    free(ins);
    free(upd);
    weir_schema_unref(s);
    pgh_stop();
}

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pg_sink_is_registered_as_a_sink),
        cmocka_unit_test(test_pg_sink_creates_table_from_schema),
        cmocka_unit_test(test_pg_sink_composite_key_is_the_primary_key),
        cmocka_unit_test(test_pg_sink_without_create_table_needs_the_table),
        cmocka_unit_test(test_pg_sink_writes_every_batch_rows_and_at_finish),
        cmocka_unit_test(test_pg_sink_upsert_replaces_on_key_conflict),
        cmocka_unit_test(test_pg_sink_snapshot_without_checkpoints_writes_now),
        cmocka_unit_test(test_pg_sink_commits_when_the_checkpoint_completes),
        cmocka_unit_test(test_pg_sink_notify_commits_every_pending_checkpoint_up_to_n),
        cmocka_unit_test(test_pg_sink_restore_after_crash_commits_exactly_the_checkpointed_rows),
        cmocka_unit_test(test_pg_sink_restore_after_commit_is_idempotent),
        cmocka_unit_test(test_pg_sink_restore_rescales),
        cmocka_unit_test(test_pg_sink_restore_rejects_a_corrupt_or_foreign_state),
        cmocka_unit_test(test_pg_sink_many_rows_with_repeated_keys_across_checkpoints),
        cmocka_unit_test(test_pg_sink_round_trips_doubles_timestamps_strings_bytes),
        cmocka_unit_test(test_pg_sink_nan_and_negative_zero_keys_meet_themselves),
        cmocka_unit_test(test_pg_sink_bad_dsn_fails_open_with_the_libpq_message),
        cmocka_unit_test(test_pg_sink_not_null_violation_fails_with_the_server_message),
        cmocka_unit_test(test_pg_sink_type_error_fails_with_the_server_message),
        cmocka_unit_test(test_pg_sink_retries_once_after_a_lost_connection),
        cmocka_unit_test(test_pg_sink_configure_errors_carry_their_place),
    };

    if (argc > 1 && strcmp(argv[1], "--bench") == 0) {
        run_bench();
        return 0;
    }
    return cmocka_run_group_tests(tests, setup, teardown);
}
