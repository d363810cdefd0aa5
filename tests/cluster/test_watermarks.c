/* tests/cluster/test_watermarks.c -- event time across real processes.
 *
 * A datagen source at parallelism 2 makes rows whose `ts` is 2024-01-01
 * plus one second per row index, with `watermark: {field: ts,
 * max_out_of_orderness: 5s}`; a keyed file sink at parallelism 2 on
 * another task manager reads both source subtasks over the network. While
 * the job runs, the REST API must show, for every value it ever reports:
 *
 *   - sources: currentOutputWatermark = (some row's ts) - 5 s - 1 ms,
 *     never going back; currentInputWatermark Long.MIN_VALUE (no input);
 *   - the sink: currentInputWatermark of the same form, never going back,
 *     and reaching at least 2024-01-01 + 20 s;
 *   - currentEmitEventTimeLag of the sources: now minus the event time of a
 *     recent row; Prometheus has the watermark gauges of the sink.
 *
 * A job without a `watermark:` block reports Long.MIN_VALUE everywhere, and
 * bad watermark blocks are refused with line and column.
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
#include <sys/time.h>

#include "harness.h"

#define START_MS 1704067200000LL      /* 2024-01-01 00:00:00 UTC */
#define OOO_MS   5000LL

static const char *const job_yaml =
    "name: wm\n"
    "parallelism: 2\n"
    "sources:\n"
    "  - name: gen\n"
    "    kind: datagen\n"
    "    rate: ${RATE}\n"
    "    fields:\n"
    "      - {name: id, type: int, gen: sequence, start: 0}\n"
    "      - {name: k, type: int, gen: random, min: 0, max: 99}\n"
    "      - {name: ts, type: timestamp, gen: sequence, start: \"2024-01-01 00:00:00\", step: 1s}\n"
    "%s"
    "sinks:\n"
    "  - {name: out, kind: file, input: gen, key_by: k, path: \"${OUT}\"}\n";

static const char *const wm_block =
    "    watermark: {field: ts, max_out_of_orderness: 5s, interval: 50ms}\n";

/* The job file with the watermark block (may be ""); a static buffer. */
static const char *
job(const char *block)
{
    static char text[2048];
    snprintf(text, sizeof(text), job_yaml, block);
    return text;
}

/* The watermarks of vertex v as REST lists them: in[s], out[s] (ms). */
static void
watermarks(hc_cluster_t *c, const char *jid, int v, long long in[2], long long out[2])
{
    char path[128];
    long status;
    json_t *a, *e;
    size_t i;

    snprintf(path, sizeof(path), "/jobs/%s/vertices/v%d/watermarks", jid, v);
    a = hc_get_json(c, path, &status);
    assert_int_equal(status, 200);
    assert_true(json_is_array(a));
    assert_int_equal(json_array_size(a), 4);
    json_array_foreach(a, i, e) {
        const char *id = json_string_value(json_object_get(e, "id"));
        const char *val = json_string_value(json_object_get(e, "value"));
        int s;
        assert_non_null(id);
        assert_non_null(val);
        s = id[0] - '0';
        assert_true(s == 0 || s == 1);
        if (strcmp(id + 1, ".currentInputWatermark") == 0)
            in[s] = strtoll(val, NULL, 10);
        else if (strcmp(id + 1, ".currentOutputWatermark") == 0)
            out[s] = strtoll(val, NULL, 10);
        else
            fail_msg("unexpected watermark metric '%s'", id);
    }
    json_decref(a);
}

/* A watermark derived from a row: START + k s - 5 s - 1 ms for some k >= 0. */
static void
check_form(long long wm, const char *what)
{
    if (wm == INT64_MIN)
        return;
    if (wm < START_MS - OOO_MS - 1 || (wm - START_MS + OOO_MS + 1) % 1000 != 0)
        fail_msg("%s = %lld is not (a row's ts) - 5 s - 1 ms", what, wm);
}

static long long
wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void
test_watermarks_flow(void **state)
{
    hc_cluster_t *c;
    char jid[HC_JOB_ID_LEN + 1], out_dir[PATH_MAX], path[256];
    long long last_src[2] = { INT64_MIN, INT64_MIN }, last_sink[2] = { INT64_MIN, INT64_MIN };
    long long t0;
    int polls = 0;

    (void)state;
    c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    snprintf(out_dir, sizeof(out_dir), "%s/out", c->dir);
    hc_submit_ok(c, job(wm_block), (const char *const[]){ "RATE", "100", "OUT", out_dir, NULL },
                 jid);
    json_decref(hc_wait_subtasks(c, jid, "RUNNING", 30000));
    t0 = hc_now_ms();
    for (;;) {
        long long sin[2], sout[2], kin[2], kout[2];

        /* the sink first: what it has seen was emitted before what the
         * sources report afterwards */
        watermarks(c, jid, 1, kin, kout);
        watermarks(c, jid, 0, sin, sout);
        polls++;
        for (int s = 0; s < 2; s++) {
            assert_true(sin[s] == INT64_MIN);                 /* a source has no input */
            check_form(sout[s], "source currentOutputWatermark");
            check_form(kin[s], "sink currentInputWatermark");
            if (sout[s] < last_src[s] || kin[s] < last_sink[s])
                fail_msg("a watermark went back: source %d %lld -> %lld, sink %d %lld -> %lld",
                         s, last_src[s], sout[s], s, last_sink[s], kin[s]);
            last_src[s] = sout[s];
            last_sink[s] = kin[s];
        }
        /* (no check of the sink against the sources here: their figures come
         * from different task managers' heartbeats, sampled at different
         * times; the minimum rule is checked exactly in
         * test_kafka_watermarks.c) */
        if (kin[0] >= START_MS + 20000 && kin[1] >= START_MS + 20000)
            break;
        if (hc_now_ms() - t0 > 60000)
            fail_msg("the sink's watermark did not pass 2024-01-01 00:00:20 in 60 s (at %lld, "
                     "%lld; sources at %lld, %lld)", kin[0], kin[1], sout[0], sout[1]);
        hc_sleep_ms(100);
    }
    fprintf(stderr, "watermarks after %d polls: sink %lld %lld, sources %lld %lld\n", polls,
            last_sink[0], last_sink[1], last_src[0], last_src[1]);

    /* the sources' event-time lag: now - (2024-01-01 + the rows made so far) */
    snprintf(path, sizeof(path), "/jobs/%s/vertices/v0", jid);
    {
        long status;
        json_t *d = hc_get_json(c, path, &status), *subs, *st;
        size_t i;
        long long now = wall_ms();
        assert_int_equal(status, 200);
        subs = json_object_get(d, "subtasks");
        assert_int_equal(json_array_size(subs), 2);
        json_array_foreach(subs, i, st) {
            json_t *m = json_object_get(st, "metrics");
            json_t *lag = json_object_get(m, "currentEmitEventTimeLag");
            assert_true(json_is_integer(lag));
            /* a few thousand rows at most were made: the last one's time is
             * within the first hours of 2024 */
            assert_true(json_integer_value(lag) <= now - START_MS);
            assert_true(json_integer_value(lag) >= now - START_MS - 3600 * 1000LL);
            assert_true(json_is_integer(json_object_get(m, "currentOutputWatermark")));
        }
        json_decref(d);
    }
    /* Prometheus: the sink's input watermark, per subtask */
    {
        char *body = NULL;
        assert_int_equal(hc_http(c, "GET", "/metrics", NULL, NULL, &body), 200);
        assert_non_null(strstr(body, "# TYPE weir_task_current_input_watermark_ms gauge"));
        assert_non_null(strstr(body, "weir_task_current_input_watermark_ms{job=\""));
        assert_non_null(strstr(body, "weir_task_current_emit_event_time_lag_ms{job=\""));
        free(body);
    }
    /* jobctl metrics shows the vertices' watermarks as UTC times */
    {
        char *out = NULL, *err = NULL;
        assert_int_equal(hc_jobctl(c, &out, &err, "metrics", jid, NULL), 0);
        if (strstr(out, "WATERMARK (UTC)") == NULL || strstr(out, "2024-01-01 00:0") == NULL ||
            strstr(out, ".999") == NULL)
            fail_msg("jobctl metrics does not show the watermarks:\n%s", out);
        free(out);
        free(err);
    }
    assert_int_equal(hc_cancel(c, jid), 202);
    json_decref(hc_wait_job(c, jid, "CANCELED", 30000));
    hc_stop(c);
}

/* No watermark block: nothing made up. */
static void
test_no_watermarks_without_event_time(void **state)
{
    hc_cluster_t *c;
    char jid[HC_JOB_ID_LEN + 1], out_dir[PATH_MAX];
    long long in[2], out[2];

    (void)state;
    c = hc_start(&(hc_opts_t){ .ntms = 1, .slots = 2 });
    snprintf(out_dir, sizeof(out_dir), "%s/out", c->dir);
    hc_submit_ok(c, job(""), (const char *const[]){ "RATE", "200", "OUT", out_dir, NULL }, jid);
    json_decref(hc_wait_subtasks(c, jid, "RUNNING", 30000));
    hc_sleep_ms(2500);                          /* two heartbeats */
    for (int v = 0; v < 2; v++) {
        watermarks(c, jid, v, in, out);
        for (int s = 0; s < 2; s++) {
            assert_true(in[s] == INT64_MIN);
            assert_true(out[s] == INT64_MIN);
        }
    }
    assert_int_equal(hc_cancel(c, jid), 202);
    json_decref(hc_wait_job(c, jid, "CANCELED", 30000));
    hc_stop(c);
}

/* Bad blocks: refused at submission with the place and the reason. */
static void
test_bad_watermark_blocks(void **state)
{
    static const struct { const char *block, *want; } cases[] = {
        { "    watermark: {field: tss, max_out_of_orderness: 5s}\n",
          "watermark field 'tss' is not a field of 'gen' (did you mean 'ts'?)" },
        { "    watermark: {field: id}\n",
          "watermark field 'id' is int; event time must be a timestamp field" },
        { "    watermark: {max_out_of_orderness: 5s}\n",
          "'watermark' needs 'field'" },
        { "    watermark: {field: ts, max_out_of_orderness: -1s}\n",
          "parameter 'max_out_of_orderness' must not be negative" },
        { "    watermark: {field: ts, idle_timout: 5s}\n",
          "unknown parameter 'idle_timout' (did you mean 'idle_timeout'?)" },
    };
    hc_cluster_t *c;

    (void)state;
    c = hc_start(&(hc_opts_t){ .ntms = 1, .slots = 2 });
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        json_t *resp = NULL;
        char *text;
        long st = hc_submit(c, "jobs/wm.yaml", job(cases[k].block),
                            (const char *const[]){ "RATE", "10", "OUT", "/tmp/none", NULL }, NULL,
                            &resp);
        text = json_dumps(resp, 0);
        if (st != 400 || strstr(text, cases[k].want) == NULL || strstr(text, "jobs/wm.yaml:11:") == NULL)
            fail_msg("case %zu: status %ld, answer %s; wanted 400 with jobs/wm.yaml:11: and '%s'",
                     k, st, text, cases[k].want);
        free(text);
        json_decref(resp);
    }
    hc_stop(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_watermarks_flow, hc_teardown),
        cmocka_unit_test_teardown(test_no_watermarks_without_event_time, hc_teardown),
        cmocka_unit_test_teardown(test_bad_watermark_blocks, hc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
