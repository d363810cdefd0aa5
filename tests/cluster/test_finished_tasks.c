/* tests/cluster/test_finished_tasks.c -- checkpoints after part of a job
 * finished (Flink's FLIP-147), and a restore that does not run the
 * finished part again.
 *
 * One job, two pipelines at parallelism 2 with exactly-once file sinks:
 * `small` (50 rows, done at once) -> small_out, and `big` (6,000 rows at
 * 1,500/s) -> chaos -> big_out, checkpointing every 100 ms.
 *
 *   - once small's subtasks FINISHED, checkpoints go on completing: three
 *     more after that moment (before, the coordinator stopped at the first
 *     finished subtask, so a long bounded job with a short side input had
 *     no checkpoint at all);
 *   - the chaos operator then fails the big pipeline; the job restarts from
 *     a checkpoint whose metadata lists small's subtasks as finished, and
 *     they are not run again (the task manager says so);
 *   - the end: small_out holds rows 0..49 once each, big_out rows
 *     0..5999 once each. Had small run again its rows would be there twice
 *     (its sink committed them when it finished).
 *
 * And the final checkpoint (Flink's too): a bounded job with checkpoints
 * ends only after one more checkpoint that holds what finish() left, and a
 * restore from that checkpoint commits and runs nothing again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static const char *const job_yaml =
    "name: fin\n"
    "parallelism: 2\n"
    "checkpoint: {interval: 100ms}\n"
    "restart: {strategy: fixed_delay, attempts: 3, delay: 100ms}\n"
    "sources:\n"
    "  - {name: small, kind: datagen, count: 50,\n"
    "     fields: [{name: id, type: int, gen: sequence, start: 0}]}\n"
    "  - {name: big, kind: datagen, count: 6000, rate: 1500,\n"
    "     fields: [{name: id, type: int, gen: sequence, start: 0}]}\n"
    "operators:\n"
    "  - {name: monkey, kind: chaos, input: big, fail_when_file: \"${FAIL}\"}\n"
    "sinks:\n"
    "  - {name: small_out, kind: file, input: small, path: \"${SMALL}\"}\n"
    "  - {name: big_out, kind: file, input: monkey, path: \"${BIG}\"}\n";

static long long
completed(hc_cluster_t *c, const char *jid)
{
    json_t *j = hc_job(c, jid);
    long long n = json_integer_value(json_object_get(json_object_get(j, "checkpoints"),
                                                     "completed"));
    json_decref(j);
    return n;
}

/* Whether both subtasks of the vertex whose name starts with prefix are FINISHED. */
static bool
vertex_finished(hc_cluster_t *c, const char *jid, const char *prefix)
{
    json_t *j = hc_job(c, jid), *v;
    size_t i;
    bool fin = false;

    json_array_foreach(json_object_get(j, "vertices"), i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        if (name != NULL && strncmp(name, prefix, strlen(prefix)) == 0)
            fin = strcmp(json_string_value(json_object_get(v, "status")), "FINISHED") == 0;
    }
    json_decref(j);
    return fin;
}

/* The sink's rows are {"id":N}: each of 0..n-1 exactly once. */
static void
check_once(const char *dir, int n, const char *what)
{
    char **lines;
    int got, *seen = calloc((size_t)n, sizeof(int));

    assert_non_null(seen);
    lines = hc_read_lines(dir, &got);
    for (int l = 0; l < got; l++) {
        long id = -1;
        if (sscanf(lines[l], "{\"id\":%ld}", &id) != 1 || id < 0 || id >= n)
            fail_msg("%s: unexpected line '%s'", what, lines[l]);
        if (seen[id]++ > 0)
            fail_msg("%s: row %ld written twice", what, id);
    }
    for (int i = 0; i < n; i++)
        if (seen[i] == 0)
            fail_msg("%s: row %d missing (%d lines)", what, i, got);
    hc_free_lines(lines, got);
    free(seen);
}

static void
test_checkpoints_after_tasks_finished(void **state)
{
    hc_cluster_t *c;
    char jid[HC_JOB_ID_LEN + 1], fail[PATH_MAX], small[PATH_MAX], big[PATH_MAX];
    long long t0, c0;
    FILE *f;

    (void)state;
    c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    snprintf(fail, sizeof(fail), "%s/fail-now", c->dir);
    snprintf(small, sizeof(small), "%s/small", c->dir);
    snprintf(big, sizeof(big), "%s/big", c->dir);
    hc_submit_ok(c, job_yaml, (const char *const[]){ "FAIL", fail, "SMALL", small, "BIG", big,
                                                    NULL }, jid);
    t0 = hc_now_ms();
    while (!vertex_finished(c, jid, "small")) {
        if (hc_now_ms() - t0 > 30000)
            fail_msg("the small pipeline did not finish in 30 s");
        hc_sleep_ms(20);
    }
    c0 = completed(c, jid);
    t0 = hc_now_ms();
    while (completed(c, jid) < c0 + 3) {
        if (hc_now_ms() - t0 > 20000)
            fail_msg("no checkpoint completed after part of the job finished (%lld before, "
                     "%lld now)", c0, completed(c, jid));
        hc_sleep_ms(50);
    }
    fprintf(stderr, "checkpoints completed: %lld when small finished, %lld now\n", c0,
            completed(c, jid));

    /* fail the big pipeline: the restart restores a checkpoint taken after
     * small finished */
    f = fopen(fail, "w");
    assert_non_null(f);
    fclose(f);
    json_decref(hc_wait_job(c, jid, "FINISHED", 60000));
    {
        json_t *j = hc_job(c, jid);
        assert_true(json_integer_value(json_object_get(j, "restarts")) >= 1);
        json_decref(j);
    }
    if (hc_log_count(c, "had finished before checkpoint") != 2)
        fail_msg("small's two subtasks were not both skipped on restore (%d)",
                 hc_log_count(c, "had finished before checkpoint"));
    check_once(small, 50, "small_out");
    check_once(big, 6000, "big_out");
    hc_stop(c);
}

/* The final checkpoint: a bounded job with checkpoints does not end when its
 * input does. Its tasks finish (the count emits its final counts), wait for
 * one more checkpoint -- triggered at once, the interval being a minute --
 * and only its completion commits the sink's last rows. A failure right
 * then (the chaos operator fails on that checkpoint's completion, before
 * the sink after it in the chain commits) restarts the job from that
 * checkpoint: every task had ended its input, so each restores (the sink
 * commits what the checkpoint held) and ends without running again. Each
 * key's count appears once: run again, the count would emit its final
 * counts a second time. */
static const char *const final_yaml =
    "name: final\n"
    "parallelism: 2\n"
    "checkpoint: {interval: 60s}\n"
    "restart: {strategy: fixed_delay, attempts: 2, delay: 100ms}\n"
    "sources:\n"
    "  - {name: gen, kind: datagen, count: 3000,\n"
    "     fields: [{name: id, type: int, gen: sequence, start: 0}]}\n"
    "operators:\n"
    "  - {name: keyed, kind: map, input: gen, fields: [id, {name: key, expr: \"id % 5\"}]}\n"
    "  - {name: counts, kind: count, input: keyed, key_by: key, as: n, emit: final}\n"
    "  - {name: monkey, kind: chaos, input: counts, fail_after_checkpoint: 1}\n"
    "sinks:\n"
    "  - {name: out, kind: file, input: monkey, path: \"${OUT}\"}\n";

/* The count sink's rows {"key":K,"n":N} (the id may come first): each of
 * the 5 keys exactly once; counts[K] = N. */
static void
read_key_counts(const char *dir, int counts[5])
{
    char **lines;
    int n, seen[5] = { 0 };

    lines = hc_read_lines(dir, &n);
    for (int l = 0; l < n; l++) {
        int key = -1, cnt = -1;
        if (sscanf(lines[l], "{\"id\":%*d,\"key\":%d,\"n\":%d}", &key, &cnt) != 2 &&
            sscanf(lines[l], "{\"key\":%d,\"n\":%d}", &key, &cnt) != 2)
            fail_msg("unexpected line '%s'", lines[l]);
        if (key < 0 || key >= 5 || seen[key]++ > 0)
            fail_msg("line '%s': each key once (%d lines)", lines[l], n);
        counts[key] = cnt;
    }
    assert_int_equal(n, 5);
    hc_free_lines(lines, n);
}

static void
test_final_checkpoint_commits_a_bounded_job_once(void **state)
{
    hc_cluster_t *c;
    char jid[HC_JOB_ID_LEN + 1], out[PATH_MAX];
    int counts[5];
    json_t *j;

    (void)state;
    c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    snprintf(out, sizeof(out), "%s/out", c->dir);
    hc_submit_ok(c, final_yaml, (const char *const[]){ "OUT", out, NULL }, jid);
    j = hc_wait_job(c, jid, "FINISHED", 60000);
    assert_int_equal(json_integer_value(json_object_get(j, "restarts")), 1);
    assert_true(json_integer_value(json_object_get(json_object_get(j, "checkpoints"),
                                                   "completed")) >= 1);
    json_decref(j);
    /* the chaos failure came on the final checkpoint, and the restart ran
     * nothing again */
    assert_true(hc_log_count(c, "waiting for a final checkpoint") >= 1);
    assert_true(hc_log_count(c, "chaos: failing after checkpoint 1") >= 1);
    if (hc_log_count(c, "had ended its input before checkpoint 1") != 4)   /* 2 vertices x 2 */
        fail_msg("not every task of the restored attempt ended at once (%d)",
                 hc_log_count(c, "had ended its input before checkpoint 1"));
    read_key_counts(out, counts);
    for (int k = 0; k < 5; k++)
        if (counts[k] != 600)
            fail_msg("key %d: counted %d, expected 600", k, counts[k]);
    hc_stop(c);
}

/* stop --drain (Flink's): the sources end their input now, every operator
 * emits its final output, and the final checkpoint they wait for is the
 * savepoint; then the job FINISHES. The counts of an unbounded stream come
 * out once per key (a plain stop would cancel before emit: final emits
 * anything), and the savepoint lists every subtask as ended. */
static const char *const drain_yaml =
    "name: drain\n"
    "parallelism: 2\n"
    "checkpoint: {interval: 60s}\n"
    "sources:\n"
    "  - {name: gen, kind: datagen, rate: 400,\n"
    "     fields: [{name: id, type: int, gen: sequence, start: 0}]}\n"
    "operators:\n"
    "  - {name: keyed, kind: map, input: gen, fields: [id, {name: key, expr: \"id % 5\"}]}\n"
    "  - {name: counts, kind: count, input: keyed, key_by: key, as: n, emit: final}\n"
    "sinks:\n"
    "  - {name: out, kind: file, input: counts, path: \"${OUT}\"}\n";

static void
test_stop_with_drain(void **state)
{
    hc_cluster_t *c;
    char jid[HC_JOB_ID_LEN + 1], out[PATH_MAX], spdir[PATH_MAX], meta[PATH_MAX + 64];
    char *sout = NULL, *serr = NULL, *text;
    int counts[5], st;
    long long total = 0;
    json_t *md, *v;
    size_t i;

    (void)state;
    c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    snprintf(out, sizeof(out), "%s/out", c->dir);
    snprintf(spdir, sizeof(spdir), "%s/savepoints", c->dir);
    hc_submit_ok(c, drain_yaml, (const char *const[]){ "OUT", out, NULL }, jid);
    json_decref(hc_wait_subtasks(c, jid, "RUNNING", 30000));
    hc_sleep_ms(1000);
    st = hc_jobctl(c, &sout, &serr, "stop", jid, "--dir", spdir, "--drain", NULL);
    if (st != 0)
        fail_msg("jobctl stop --drain exited %d: %s", st, serr);
    json_decref(hc_wait_job(c, jid, "FINISHED", 30000));
    assert_int_equal(hc_log_count(c, "drained: ending its input"), 2);

    read_key_counts(out, counts);
    for (int k = 0; k < 5; k++) {
        if (counts[k] <= 0)
            fail_msg("key %d: counted %d", k, counts[k]);
        total += counts[k];
    }
    assert_true(total >= 100);                   /* a second at 400 rows/s, at least */

    /* the savepoint jobctl printed: every subtask had ended */
    sout[strcspn(sout, "\n")] = '\0';
    snprintf(meta, sizeof(meta), "%s/_metadata", sout);
    text = hc_slurp(meta, NULL);
    if (text == NULL)
        fail_msg("no savepoint metadata at '%s'", meta);
    md = json_loads(text, 0, NULL);
    assert_non_null(md);
    json_array_foreach(json_object_get(md, "vertices"), i, v)
        assert_int_equal(json_array_size(json_object_get(v, "ended")), 2);
    json_decref(md);
    free(text);
    free(sout);
    free(serr);
    hc_stop(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_checkpoints_after_tasks_finished, hc_teardown),
        cmocka_unit_test_teardown(test_final_checkpoint_commits_a_bounded_job_once, hc_teardown),
        cmocka_unit_test_teardown(test_stop_with_drain, hc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
