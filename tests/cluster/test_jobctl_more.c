/* tests/cluster/test_jobctl_more.c -- jobctl's read commands and plan
 * against a real cluster.
 *
 * A running job that checkpoints every 300 ms (datagen, rate-limited ->
 * keyed count -> print) is inspected with `jobctl checkpoints`, `metrics`
 * (whole job and --vertex), `status` and `exceptions`, as a person reads
 * them (tables: headers exact, columns found by their header) and as a
 * script does (--json parses and has the fields). `jobctl plan` checks a
 * job file locally: exact lines for a small job, file:line:col for a bad
 * one, and no job appears on the cluster. Every subcommand's --help exits 0
 * and names its options.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* 2 vertices x parallelism 2: every checkpoint is acknowledged by 4 */
static const char job_yaml[] =
    "name: jobctl-more\n"
    "parallelism: 2\n"
    "checkpoint: {interval: 300ms}\n"
    "restart: {strategy: fixed_delay, attempts: 3, delay: 200ms}\n"
    "sources:\n"
    "  - name: gen\n"
    "    kind: datagen\n"
    "    rate: 200\n"
    "    fields:\n"
    "      - {name: id, type: int, gen: sequence, start: 0}\n"
    "operators:\n"
    "  - {name: keyed, kind: map, input: gen, fields: [id, {name: key, expr: \"id % 7\"}]}\n"
    "  - {name: counts, kind: count, input: keyed, key_by: key, as: n}\n"
    "sinks:\n"
    "  - {name: out, kind: print, input: counts, limit: 3}\n";

/* the same, with a chaos operator that fails subtask 0 once, right after
 * checkpoint 2 */
static const char chaos_yaml[] =
    "name: jobctl-chaos\n"
    "parallelism: 2\n"
    "checkpoint: {interval: 300ms}\n"
    "restart: {strategy: fixed_delay, attempts: 3, delay: 200ms}\n"
    "sources:\n"
    "  - name: gen\n"
    "    kind: datagen\n"
    "    rate: 200\n"
    "    fields:\n"
    "      - {name: id, type: int, gen: sequence, start: 0}\n"
    "operators:\n"
    "  - {name: monkey, kind: chaos, input: gen, fail_after_checkpoint: 2, subtask: 0}\n"
    "  - {name: keyed, kind: map, input: monkey, fields: [id, {name: key, expr: \"id % 7\"}]}\n"
    "  - {name: counts, kind: count, input: keyed, key_by: key, as: n}\n"
    "sinks:\n"
    "  - {name: out, kind: print, input: counts, limit: 3}\n";

/* a small job for plan: ${RATE} has no default */
static const char plan_yaml[] =
    "name: jobctl-plan\n"
    "parallelism: 2\n"
    "sources:\n"
    "  - name: gen\n"
    "    kind: datagen\n"
    "    rate: ${RATE}\n"
    "    fields:\n"
    "      - {name: id, type: int, gen: sequence, start: 0}\n"
    "operators:\n"
    "  - {name: keyed, kind: map, input: gen, fields: [id, {name: key, expr: \"id % 7\"}]}\n"
    "  - {name: counts, kind: count, input: keyed, key_by: key, as: n}\n"
    "sinks:\n"
    "  - {name: out, kind: print, input: counts}\n";

/* line 10 holds the typo; "    kind: " is 10 columns wide */
static const char typo_yaml[] =
    "name: jobctl-typo\n"
    "sources:\n"
    "  - name: gen\n"
    "    kind: datagen\n"
    "    count: 10\n"
    "    fields:\n"
    "      - {name: id, type: int, gen: sequence, start: 0}\n"
    "operators:\n"
    "  - name: small\n"
    "    kind: fliter\n"
    "    input: gen\n"
    "    where: \"id < 5\"\n"
    "sinks:\n"
    "  - {name: out, kind: print, input: small}\n";

/* ---- running jobctl ---------------------------------------------------- */

static char *g_out, *g_err;

/* Runs jobctl with up to 9 arguments; keeps stdout and stderr in g_out and
 * g_err (replaced by the next call); returns its exit status. */
static int run_jobctl(hc_cluster_t *c, ...) __attribute__((sentinel));

static int
run_jobctl(hc_cluster_t *c, ...)
{
    const char *argv[10] = { NULL };
    va_list ap;
    int n = 0;

    va_start(ap, c);
    while ((argv[n] = va_arg(ap, const char *)) != NULL)
        if (++n == 9)
            fail_msg("run_jobctl: too many arguments");
    va_end(ap);
    free(g_out);
    free(g_err);
    g_out = g_err = NULL;
    return hc_jobctl(c, &g_out, &g_err, argv[0], argv[1], argv[2], argv[3], argv[4], argv[5],
                     argv[6], argv[7], argv[8], NULL);
}

/* The same, and fails the test unless it exits 0 with nothing on stderr. */
#define JOBCTL_OK(c, ...)                                                        \
    do {                                                                         \
        int st_ = run_jobctl((c), __VA_ARGS__, NULL);                            \
        if (st_ != 0 || g_err[0] != '\0')                                        \
            fail_msg("jobctl exited %d; stdout:\n%s\nstderr:\n%s", st_, g_out,   \
                     g_err);                                                     \
    } while (0)

static int
teardown(void **state)
{
    free(g_out);
    free(g_err);
    g_out = g_err = NULL;
    return hc_teardown(state);
}

/* ---- reading tables ---------------------------------------------------- */

/* The line of text that starts with prefix (at the start of text or after a
 * newline), from 'from' on; a new string without the newline, or NULL. */
static char *
line_starting(const char *text, const char *from, const char *prefix)
{
    const char *p = from;
    size_t n = strlen(prefix);

    for (;;) {
        if ((p == text || p[-1] == '\n') && strncmp(p, prefix, n) == 0)
            return strndup(p, strcspn(p, "\n"));
        p = strchr(p, '\n');
        if (p == NULL)
            return NULL;
        p++;
    }
}

/* The same, failing the test when there is none. */
static char *
must_line(const char *text, const char *from, const char *prefix)
{
    char *l = line_starting(text, from, prefix);

    if (l == NULL)
        fail_msg("no line starting with '%s' in:\n%s", prefix, text);
    return l;
}

/* s with every run of blanks made one space, without leading and trailing
 * blanks (in place). */
static char *
squeeze(char *s)
{
    char *r = s, *w = s;

    while (*r == ' ')
        r++;
    for (; *r != '\0'; r++)
        if (*r != ' ' || (r[1] != ' ' && r[1] != '\0'))
            *w++ = *r;
    *w = '\0';
    return s;
}

/* Fails the test unless the header line head, blanks squeezed, is want. */
static void
expect_header(const char *head, const char *want)
{
    char *flat = squeeze(strdup(head));

    if (strcmp(flat, want) != 0)
        fail_msg("header '%s', want '%s'", flat, want);
    free(flat);
}

/* The cell of row under the column headed 'col' in header head: tables are
 * aligned, so the cell starts where its header does. New string. */
static char *
cell(const char *head, const char *row, const char *col)
{
    const char *h = strstr(head, col);
    size_t off;

    if (h == NULL)
        fail_msg("no column '%s' in '%s'", col, head);
    off = (size_t)(h - head);
    if (strlen(row) <= off)
        fail_msg("row '%s' has no column '%s' (header '%s')", row, col, head);
    return strndup(row + off, strcspn(row + off, " "));
}

static double
cell_num(const char *head, const char *row, const char *col)
{
    char *s = cell(head, row, col), *end;
    double v = strtod(s, &end);

    if (end == s)
        fail_msg("column '%s' of '%s' is not a number: '%s'", col, row, s);
    free(s);
    return v;
}

/* ---- the job --------------------------------------------------------- */

/* Starts a cluster (one task manager, 2 slots), submits yaml with jobctl and
 * waits until its subtasks run and nckpt checkpoints completed. */
static hc_cluster_t *
start_job(const char *yaml, int nckpt, char jid[HC_JOB_ID_LEN + 1])
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 1, .slots = 2 });
    char file[PATH_MAX];
    long long t0;

    hc_write_file(c, "job.yaml", yaml, file);
    JOBCTL_OK(c, "submit", file);
    assert_int_equal(strlen(g_out), HC_JOB_ID_LEN + 1);
    memcpy(jid, g_out, HC_JOB_ID_LEN);
    jid[HC_JOB_ID_LEN] = '\0';
    json_decref(hc_wait_subtasks(c, jid, "RUNNING", 30000));
    for (t0 = hc_now_ms();; hc_sleep_ms(100)) {
        json_t *job = hc_job(c, jid);
        json_int_t n = json_integer_value(
            json_object_get(json_object_get(job, "checkpoints"), "completed"));

        json_decref(job);
        if (n >= nckpt)
            break;
        if (hc_now_ms() - t0 > 30000)
            fail_msg("fewer than %d checkpoints after 30 s", nckpt);
    }
    return c;
}

/* ---- checkpoints --------------------------------------------------------- */

/* The ids of the history table of `jobctl checkpoints` (in its order) and
 * how many rows are COMPLETED checkpoints acknowledged by all 4 subtasks. */
static int
history_ids(const char *out, long long *ids, int cap, int *ncompleted)
{
    const char *p = strstr(out, "History (newest first):\n");
    char *head;
    int n = 0;

    assert_non_null(p);
    p += strlen("History (newest first):\n");
    head = must_line(out, p, "  ID");
    expect_header(head, "ID TYPE STATUS TRIGGERED DURATION SIZE ACKS FAILURE");
    p = strchr(p, '\n') + 1;
    *ncompleted = 0;
    while (p[0] == ' ' && p[1] == ' ' && isdigit((unsigned char)p[2]) && n < cap) {
        char *row = strndup(p, strcspn(p, "\n"));
        char *type = cell(head, row, "TYPE"), *status = cell(head, row, "STATUS");
        char *acks = cell(head, row, "ACKS");

        ids[n++] = atoll(row);
        assert_string_equal(type, "checkpoint");
        if (strcmp(status, "COMPLETED") == 0 && strcmp(acks, "4/4") == 0)
            (*ncompleted)++;
        free(type);
        free(status);
        free(acks);
        free(row);
        p += strcspn(p, "\n") + 1;
    }
    free(head);
    return n;
}

static void
test_jobctl_checkpoints_shows_counts_latest_and_history(void **state)
{
    char jid[HC_JOB_ID_LEN + 1], *l;
    hc_cluster_t *c = start_job(job_yaml, 3, jid);
    long long ids[64], first_latest, t0;
    int n, ncompleted, i;

    JOBCTL_OK(c, "checkpoints", jid);
    l = must_line(g_out, g_out, "Job ID:");
    assert_non_null(strstr(l, jid));
    free(l);
    l = must_line(g_out, g_out, "Checkpoints:");
    assert_string_equal(l, "Checkpoints:      every 300 ms, exactly_once");
    free(l);
    l = must_line(g_out, g_out, "Completed:");
    assert_true(atoi(l + strlen("Completed:")) >= 3);
    free(l);
    l = must_line(g_out, g_out, "Failed:");
    assert_string_equal(l, "Failed:           0");
    free(l);
    l = must_line(g_out, g_out, "Latest:");
    first_latest = atoll(l + strlen("Latest:"));
    assert_true(first_latest >= 3);
    assert_non_null(strstr(l, ", completed "));
    free(l);
    l = must_line(g_out, g_out, "Latest path:");
    assert_non_null(strstr(l, "/chk-"));
    free(l);

    /* newest first: the ids go down the table; the completed ones were
     * acknowledged by every subtask */
    n = history_ids(g_out, ids, 64, &ncompleted);
    assert_true(n >= 3);
    assert_true(ncompleted >= 3);
    for (i = 1; i < n; i++)
        if (ids[i] >= ids[i - 1])
            fail_msg("history not newest first: %lld after %lld\n%s", ids[i], ids[i - 1], g_out);
    assert_true(ids[0] >= first_latest);

    l = must_line(g_out, g_out, "Summary of the completed checkpoints in the history:");
    free(l);
    l = must_line(g_out, g_out, "  duration  ");
    free(l);
    l = must_line(g_out, g_out, "  size  ");
    free(l);

    /* later, the checkpoints went on: the newest id grew */
    for (t0 = hc_now_ms();; hc_sleep_ms(100)) {
        long long latest;

        JOBCTL_OK(c, "checkpoints", jid);
        l = must_line(g_out, g_out, "Latest:");
        latest = atoll(l + strlen("Latest:"));
        free(l);
        if (latest > first_latest)
            break;
        if (hc_now_ms() - t0 > 15000)
            fail_msg("no checkpoint after %lld within 15 s:\n%s", first_latest, g_out);
    }
    history_ids(g_out, ids, 64, &ncompleted);
    assert_true(ids[0] > first_latest);
    hc_stop(c);
}

static void
test_jobctl_checkpoints_json_is_the_server_document(void **state)
{
    char jid[HC_JOB_ID_LEN + 1];
    hc_cluster_t *c = start_job(job_yaml, 3, jid);
    static const char *const hist_fields[] = {
        "id", "status", "is_savepoint", "trigger_timestamp", "end_to_end_duration",
        "state_size", "num_acknowledged_subtasks", "num_subtasks",
    };
    json_error_t je;
    json_t *doc, *h, *s;
    size_t i;

    JOBCTL_OK(c, "checkpoints", jid, "--json");
    doc = json_loads(g_out, 0, &je);
    if (doc == NULL)
        fail_msg("not JSON (%s): %s", je.text, g_out);
    assert_int_equal(json_integer_value(json_object_get(doc, "interval_ms")), 300);
    assert_true(json_integer_value(json_object_get(json_object_get(doc, "counts"),
                                                   "completed")) >= 3);
    assert_true(json_is_integer(json_object_get(json_object_get(doc, "latest"), "id")));
    h = json_object_get(doc, "history");
    assert_true(json_array_size(h) >= 3);
    for (i = 0; i < sizeof(hist_fields) / sizeof(hist_fields[0]); i++)
        if (json_object_get(json_array_get(h, 0), hist_fields[i]) == NULL)
            fail_msg("history entry without '%s': %s", hist_fields[i], g_out);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(h, 1), "num_subtasks")), 4);
    s = json_object_get(doc, "summary");
    assert_true(json_is_integer(json_object_get(json_object_get(s, "end_to_end_duration"), "max")));
    assert_true(json_is_integer(json_object_get(json_object_get(s, "state_size"), "avg")));
    json_decref(doc);
    hc_stop(c);
}

/* ---- metrics and status -------------------------------------------------- */

static void
test_jobctl_metrics_shows_rates_vertices_and_operators(void **state)
{
    char jid[HC_JOB_ID_LEN + 1], *head, *v0, *v1, *l, want[256];
    const char *ops;
    hc_cluster_t *c = start_job(job_yaml, 1, jid);
    double out0 = 0, in1 = 0;
    json_t *doc;
    long long t0;

    /* the rates come with the task managers' heartbeats */
    for (t0 = hc_now_ms();; hc_sleep_ms(200)) {
        JOBCTL_OK(c, "metrics", jid);
        head = must_line(g_out, g_out, "  VERTEX  NAME ");
        v0 = must_line(g_out, g_out, "  v0  ");
        v1 = must_line(g_out, g_out, "  v1  ");
        out0 = cell_num(head, v0, "OUT/S");
        in1 = cell_num(head, v1, "IN/S");
        free(head);
        free(v0);
        free(v1);
        if (out0 > 0 && in1 > 0)
            break;
        if (hc_now_ms() - t0 > 15000)
            fail_msg("no rates after 15 s:\n%s", g_out);
    }
    head = must_line(g_out, g_out, "  VERTEX  NAME ");
    expect_header(head,
                        "VERTEX NAME IN/S OUT/S RECORDS IN RECORDS OUT BYTES IN BYTES OUT");
    free(head);
    head = must_line(g_out, g_out, "  VERTEX  BUSY ");
    expect_header(head,
                        "VERTEX BUSY IDLE BACKPRESSURED BACKPRESSURE DEAD-LETTERED PENDING WATERMARK (UTC)");
    free(head);
    v0 = must_line(g_out, g_out, "  v0      gen -> keyed ");
    free(v0);
    /* operators: the records each chained operator saw */
    ops = strstr(g_out, "\nOperators:\n");
    assert_non_null(ops);
    head = must_line(g_out, ops, "  VERTEX  OPERATOR ");
    expect_header(head, "VERTEX OPERATOR RECORDS IN RECORDS OUT");
    l = must_line(g_out, ops, "  v0      gen ");
    if (cell_num(head, l, "RECORDS OUT") <= 0)
        fail_msg("no records out of gen:\n%s", g_out);
    free(l);
    l = must_line(g_out, ops, "  v1      counts ");
    if (cell_num(head, l, "RECORDS IN") <= 0)
        fail_msg("no records into counts:\n%s", g_out);
    free(l);
    free(head);

    /* status has the rates too */
    JOBCTL_OK(c, "status", jid);
    head = must_line(g_out, g_out, "  VERTEX  NAME ");
    expect_header(head, "VERTEX NAME PARALLELISM STATUS IN/S OUT/S");
    free(head);
    l = must_line(g_out, g_out, "Checkpoints:");
    assert_true(strncmp(l, "Checkpoints:      every 300 ms, exactly_once; ", 46) == 0);
    assert_non_null(strstr(l, " failed; latest "));
    free(l);
    l = must_line(g_out, g_out, "Restarts:");
    assert_string_equal(l, "Restarts:         0");
    free(l);

    /* one vertex: both subtasks, the total, its operators */
    JOBCTL_OK(c, "metrics", jid, "--vertex", "v1");
    l = must_line(g_out, g_out, "Vertex:");
    assert_string_equal(l, "Vertex:           v1");
    free(l);
    l = must_line(g_out, g_out, "Name:");
    assert_string_equal(l, "Name:             counts -> out");
    free(l);
    head = must_line(g_out, g_out, "  SUBTASK  TASK MANAGER ");
    expect_header(head, "SUBTASK TASK MANAGER IN/S OUT/S RECORDS IN RECORDS OUT "
                                       "BYTES IN BYTES OUT");
    free(head);
    head = must_line(g_out, g_out, "  SUBTASK  TASK MANAGER ");
    l = must_line(g_out, g_out, "  0        tm-1 ");
    assert_true(cell_num(head, l, "RECORDS IN") > 0);
    free(l);
    l = must_line(g_out, g_out, "  1        tm-1 ");
    assert_true(cell_num(head, l, "RECORDS IN") > 0);
    free(l);
    l = must_line(g_out, g_out, "  all      -  ");
    free(l);
    free(head);
    head = must_line(g_out, g_out, "  SUBTASK  BUSY ");
    expect_header(head,
                        "SUBTASK BUSY IDLE BACKPRESSURED BACKPRESSURE DEAD-LETTERED PENDING WATERMARK (UTC)");
    free(head);
    l = must_line(g_out, g_out, "  v1      counts ");
    free(l);
    l = must_line(g_out, g_out, "  v1      out ");
    free(l);
    assert_null(line_starting(g_out, g_out, "  v0 "));

    /* by the name of one of its operators, and by its number */
    JOBCTL_OK(c, "metrics", jid, "--vertex", "counts");
    l = must_line(g_out, g_out, "Vertex:");
    assert_string_equal(l, "Vertex:           v1");
    free(l);
    JOBCTL_OK(c, "metrics", jid, "--vertex=gen -> keyed");
    l = must_line(g_out, g_out, "Vertex:");
    assert_string_equal(l, "Vertex:           v0");
    free(l);

    /* an unknown vertex */
    assert_int_equal(run_jobctl(c, "metrics", jid, "--vertex", "nope", NULL), 1);
    assert_string_equal(g_out, "");
    snprintf(want, sizeof(want), "jobctl: job %s has no vertex 'nope' "
             "(vertices: v0 'gen -> keyed', v1 'counts -> out')\n", jid);
    assert_string_equal(g_err, want);
    assert_int_equal(run_jobctl(c, "metrics", jid, "--vertex", "v7", NULL), 1);
    assert_string_equal(g_out, "");
    assert_non_null(strstr(g_err, "has no vertex 'v7'"));

    /* --json: the server's documents */
    JOBCTL_OK(c, "--json", "metrics", jid);
    doc = json_loads(g_out, 0, NULL);
    assert_non_null(doc);
    assert_true(json_is_number(json_object_get(json_object_get(json_array_get(
        json_object_get(doc, "vertices"), 0), "metrics"), "numRecordsOutPerSecond")));
    assert_true(json_is_array(json_object_get(json_array_get(json_object_get(doc, "vertices"), 1),
                                              "operator-metrics")));
    json_decref(doc);
    JOBCTL_OK(c, "--json", "metrics", jid, "--vertex", "v1");
    doc = json_loads(g_out, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "id")), "v1");
    assert_int_equal(json_array_size(json_object_get(doc, "subtasks")), 2);
    assert_true(json_is_object(json_object_get(doc, "metrics")));
    json_decref(doc);
    hc_stop(c);
}

/* ---- exceptions ---------------------------------------------------------- */

static void
test_jobctl_exceptions_shows_the_failure_that_restarted_the_job(void **state)
{
    char jid[HC_JOB_ID_LEN + 1], *l, *head;
    hc_cluster_t *c = start_job(chaos_yaml, 0, jid);
    json_t *doc;
    long long t0;

    /* chaos fails subtask 0 after checkpoint 2; the job restarts */
    for (t0 = hc_now_ms();; hc_sleep_ms(100)) {
        json_t *job = hc_job(c, jid);
        json_int_t r = json_integer_value(json_object_get(job, "restarts"));
        bool running = strcmp(hc_job_state(job), "RUNNING") == 0;

        json_decref(job);
        if (r >= 1 && running)
            break;
        if (hc_now_ms() - t0 > 30000)
            fail_msg("the job did not restart within 30 s");
    }
    JOBCTL_OK(c, "exceptions", jid);
    l = must_line(g_out, g_out, "Root exception:");
    assert_non_null(strstr(l, "chaos"));
    free(l);
    l = must_line(g_out, g_out, "Time:");
    assert_string_not_equal(l, "Time:             -");
    free(l);
    head = must_line(g_out, g_out, "  TIME ");
    expect_header(head, "TIME ATTEMPT EXCEPTION");
    free(head);
    head = must_line(g_out, g_out, "  TIME ");
    {
        const char *p = strstr(g_out, head) + strlen(head) + 1;
        char *row = strndup(p, strcspn(p, "\n"));

        assert_true(cell_num(head, row, "ATTEMPT") == 0);
        assert_non_null(strstr(row, "chaos"));
        free(row);
    }
    free(head);

    JOBCTL_OK(c, "status", jid);
    l = must_line(g_out, g_out, "Restarts:");
    assert_true(atoi(l + strlen("Restarts:")) >= 1);
    free(l);
    l = must_line(g_out, g_out, "Last failure:");
    assert_non_null(strstr(l, "chaos"));
    free(l);

    JOBCTL_OK(c, "exceptions", jid, "--json");
    doc = json_loads(g_out, 0, NULL);
    assert_non_null(doc);
    assert_true(json_array_size(json_object_get(json_object_get(doc, "exceptionHistory"),
                                                "entries")) >= 1);
    assert_true(json_is_string(json_object_get(doc, "rootException")));
    json_decref(doc);
    hc_stop(c);
}

/* ---- plan ----------------------------------------------------------------- */

static void
test_jobctl_plan_prints_the_chains_and_submits_nothing(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 1, .slots = 2 });
    char file[PATH_MAX], typo[PATH_MAX], prefix[PATH_MAX + 32];
    json_t *doc, *nodes, *in;

    hc_write_file(c, "plan.yaml", plan_yaml, file);
    JOBCTL_OK(c, "plan", file, "-D", "RATE=100");
    assert_string_equal(g_out,
        "job 'jobctl-plan': 2 vertices, 1 edges, parallelism 2, max parallelism 128, 2 slots\n"
        "  v0  gen -> keyed  (parallelism 2)\n"
        "        gen              datagen    -> {id: int}\n"
        "        keyed            map        -> {id: int, key: int?}\n"
        "  v1  counts -> out  (parallelism 2, keyed)\n"
        "        counts           count      -> {key: int?, n: int}\n"
        "        out              print      -> (sink)\n"
        "  v0 -> v1  hash by key\n");

    /* -p overrides the file's parallelism */
    JOBCTL_OK(c, "plan", file, "-DRATE=100", "-p", "3");
    assert_true(strncmp(g_out, "job 'jobctl-plan': 2 vertices, 1 edges, parallelism 3, "
                               "max parallelism 128, 3 slots\n", 78) == 0);

    /* --json: shaped like GET /jobs/{id}/plan */
    JOBCTL_OK(c, "plan", file, "-D", "RATE=100", "--json");
    doc = json_loads(g_out, 0, NULL);
    assert_non_null(doc);
    nodes = json_object_get(json_object_get(doc, "plan"), "nodes");
    assert_int_equal(json_array_size(nodes), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(nodes, 1),
                                                          "description")), "counts -> out");
    in = json_array_get(json_object_get(json_array_get(nodes, 1), "inputs"), 0);
    assert_string_equal(json_string_value(json_object_get(in, "id")), "v0");
    assert_string_equal(json_string_value(json_object_get(in, "ship_strategy")), "HASH");
    assert_string_equal(json_string_value(json_array_get(json_object_get(in, "keys"), 0)), "key");
    json_decref(doc);

    /* an unresolved variable, and a typo: file:line:col, exit 1 */
    assert_int_equal(run_jobctl(c, "plan", file, NULL), 1);
    assert_string_equal(g_out, "");
    snprintf(prefix, sizeof(prefix), "jobctl: %s:6:11: ", file);
    if (strncmp(g_err, prefix, strlen(prefix)) != 0 || strstr(g_err, "RATE") == NULL)
        fail_msg("unexpected stderr: '%s' (want '%s...RATE...')", g_err, prefix);
    hc_write_file(c, "typo.yaml", typo_yaml, typo);
    assert_int_equal(run_jobctl(c, "plan", typo, NULL), 1);
    assert_string_equal(g_out, "");
    snprintf(prefix, sizeof(prefix), "jobctl: %s:10:11: ", typo);
    if (strncmp(g_err, prefix, strlen(prefix)) != 0 ||
        strstr(g_err, "unknown operator kind 'fliter' (did you mean 'filter'?)") == NULL)
        fail_msg("unexpected stderr: '%s' (want '%s...')", g_err, prefix);
    assert_int_equal(run_jobctl(c, "plan", "/nonexistent/job.yaml", NULL), 1);
    assert_string_equal(g_err, "jobctl: cannot read /nonexistent/job.yaml: "
                               "No such file or directory\n");
    assert_int_equal(run_jobctl(c, "plan", NULL), 2);
    assert_non_null(strstr(g_err, "jobctl: plan: missing FILE\n"));

    /* nothing reached the job manager */
    JOBCTL_OK(c, "list");
    assert_string_equal(g_out, "JOB ID  NAME  STATE  START  DURATION\n");
    assert_int_equal(hc_overview_int(c, "jobs-running"), 0);
    hc_stop(c);
}

/* ---- help ----------------------------------------------------------------- */

static void
test_jobctl_every_subcommand_help_exits_0_and_names_its_options(void **state)
{
    static const struct {
        const char *cmd;
        const char *opts[4];
    } cases[] = {
        { "submit",       { "-p N", "-D KEY=VALUE", "--from-savepoint DIR", "--json" } },
        { "plan",         { "-p N", "-D KEY=VALUE", "--json", NULL } },
        { "list",         { "--rest URL", "--json", NULL, NULL } },
        { "status",       { "--rest URL", "--json", NULL, NULL } },
        { "metrics",      { "--vertex V", "--json", NULL, NULL } },
        { "checkpoints",  { "--rest URL", "--json", NULL, NULL } },
        { "exceptions",   { "--rest URL", "--json", NULL, NULL } },
        { "cancel",       { "--rest URL", "--json", NULL, NULL } },
        { "savepoint",    { "--dir DIR", "--json", NULL, NULL } },
        { "stop",         { "--dir DIR", "--json", NULL, NULL } },
        { "taskmanagers", { "--rest URL", "--json", NULL, NULL } },
        { "overview",     { "--rest URL", "--json", NULL, NULL } },
    };
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 1, .slots = 2 });
    char want[64];
    size_t i, k;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        JOBCTL_OK(c, cases[i].cmd, "--help");
        snprintf(want, sizeof(want), "usage: jobctl %s ", cases[i].cmd);
        if (strncmp(g_out, want, strlen(want)) != 0)
            fail_msg("%s --help:\n%s", cases[i].cmd, g_out);
        for (k = 0; k < 4 && cases[i].opts[k] != NULL; k++)
            if (strstr(g_out, cases[i].opts[k]) == NULL)
                fail_msg("%s --help does not name '%s':\n%s", cases[i].cmd, cases[i].opts[k],
                         g_out);
    }
    /* the command list names the new commands */
    JOBCTL_OK(c, "--help");
    assert_non_null(strstr(g_out, "  plan FILE [-p N] [-D KEY=VALUE]... "));
    assert_non_null(strstr(g_out, "  metrics JOB [--vertex V] "));
    assert_non_null(strstr(g_out, "  checkpoints JOB "));
    assert_non_null(strstr(g_out, "  exceptions JOB "));
    /* an option of another command is a usage error */
    assert_int_equal(run_jobctl(c, "checkpoints", "x", "--vertex", "v1", NULL), 2);
    assert_non_null(strstr(g_err, "unknown option '--vertex' for 'checkpoints'"));
    assert_int_equal(run_jobctl(c, "plan", "x.yaml", "--from-savepoint", "/sp", NULL), 2);
    assert_int_equal(run_jobctl(c, "metrics", "x", "--vertex", NULL), 2);
    assert_non_null(strstr(g_err, "--vertex needs a vertex id or name"));
    hc_stop(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_jobctl_checkpoints_shows_counts_latest_and_history,
                                  teardown),
        cmocka_unit_test_teardown(test_jobctl_checkpoints_json_is_the_server_document, teardown),
        cmocka_unit_test_teardown(test_jobctl_metrics_shows_rates_vertices_and_operators,
                                  teardown),
        cmocka_unit_test_teardown(test_jobctl_exceptions_shows_the_failure_that_restarted_the_job,
                                  teardown),
        cmocka_unit_test_teardown(test_jobctl_plan_prints_the_chains_and_submits_nothing,
                                  teardown),
        cmocka_unit_test_teardown(test_jobctl_every_subcommand_help_exits_0_and_names_its_options,
                                  teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);

    free(g_out);
    free(g_err);
    return rc;
}
