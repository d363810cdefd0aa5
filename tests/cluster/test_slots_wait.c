/* tests/cluster/test_slots_wait.c -- a job that needs more slots than are
 * free waits for them, up to the slot timeout.
 *
 * One task manager with 2 slots, a job of parallelism 4:
 * - with --slot-timeout 3s nothing else arrives: the job stays CREATED for
 *   the first seconds, then FAILS with a message about slots, no earlier
 *   than the timeout and not much later;
 * - while it waits, a second task manager registers: the job is scheduled,
 *   runs, and FINISHES with all its output.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "harness.h"

static const char job_yaml[] =
    "name: wide\n"
    "parallelism: 4\n"
    "sources:\n"
    "  - name: gen\n"
    "    kind: datagen\n"
    "    count: 2000\n"
    "    fields:\n"
    "      - {name: id, type: int, gen: sequence, start: 0}\n"
    "operators:\n"
    "  - {name: odd, kind: filter, input: gen, where: \"id % 2 == 1\"}\n"
    "sinks:\n"
    "  - {name: out, kind: file, input: odd, path: \"${OUT}\"}\n";

static void
expect_state_for(hc_cluster_t *c, const char *jid, const char *state, int ms)
{
    long long deadline = hc_now_ms() + ms;

    while (hc_now_ms() < deadline) {
        json_t *job = hc_job(c, jid);

        if (strcmp(hc_job_state(job), state) != 0)
            fail_msg("job is %s, expected it to stay %s", hc_job_state(job), state);
        json_decref(job);
        hc_sleep_ms(100);
    }
}

static void
test_job_waits_for_slots_then_fails_with_slots_message(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 1, .slots = 2, .slot_timeout = "3s" });
    char out[PATH_MAX], jid[HC_JOB_ID_LEN + 1];
    const char *why;
    json_t *job;
    long long t0, took;

    snprintf(out, sizeof(out), "%s/out", c->dir);
    t0 = hc_now_ms();
    hc_submit_ok(c, job_yaml, (const char *const[]){ "OUT", out, NULL }, jid);
    expect_state_for(c, jid, "CREATED", 2000);
    /* waiting holds no slots */
    assert_int_equal(hc_overview_int(c, "slots-available"), 2);

    job = hc_wait_job(c, jid, "FAILED", 5000);
    took = hc_now_ms() - t0;
    fprintf(stderr, "FAILED after %lld ms\n", took);
    assert_true(took >= 2900);
    why = hc_job_failure(job);
    if (why == NULL || strstr(why, "slots") == NULL)
        fail_msg("failure message does not mention slots: %s", why ? why : "(none)");
    json_decref(job);
    assert_int_equal(hc_overview_int(c, "jobs-failed"), 1);
    assert_int_equal(hc_overview_int(c, "slots-available"), 2);
    hc_stop(c);
}

static void
test_waiting_job_runs_when_a_task_manager_joins(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 1, .slots = 2, .slot_timeout = "20s" });
    char out[PATH_MAX], jid[HC_JOB_ID_LEN + 1];
    char **lines;
    json_t *job;
    int n;

    snprintf(out, sizeof(out), "%s/out", c->dir);
    hc_submit_ok(c, job_yaml, (const char *const[]){ "OUT", out, NULL }, jid);
    expect_state_for(c, jid, "CREATED", 1000);

    hc_add_tm(c, 2);
    job = hc_wait_job(c, jid, "FINISHED", 30000);
    assert_null(hc_job_failure(job));
    json_decref(job);
    lines = hc_read_lines(out, &n);
    assert_int_equal(n, 1000);              /* the odd ids of 0..1999 */
    hc_free_lines(lines, n);
    assert_int_equal(hc_overview_int(c, "slots-available"), 4);
    hc_stop(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_job_waits_for_slots_then_fails_with_slots_message,
                                  hc_teardown),
        cmocka_unit_test_teardown(test_waiting_job_runs_when_a_task_manager_joins, hc_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
