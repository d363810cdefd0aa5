/* tests/cluster/test_tm_loss.c -- losing a task manager fails its jobs.
 *
 * The job manager runs with --heartbeat-timeout 2s; an unbounded job runs
 * on two task managers x 2 slots (parallelism 4, so both hold subtasks).
 *
 * - kill -9 of tm-2: its connection drops; within twice the heartbeat
 *   timeout the job is FAILED with a reason naming tm-2, /overview shows one
 *   task manager and its two slots, all free. A restarted tm-2 registers
 *   again and the cluster runs a new job to FINISHED.
 * - SIGSTOP of tm-2: the connection stays open but heartbeats stop, so only
 *   the heartbeat timeout can notice; same outcome within twice the timeout.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

#define HEARTBEAT_TIMEOUT_MS 2000
/* twice the timeout, plus the polling interval and some scheduling slack */
#define DETECT_MS            (2 * HEARTBEAT_TIMEOUT_MS + 500)

static const char endless_yaml[] =
    "name: endless\n"
    "parallelism: 4\n"
    "sources:\n"
    "  - name: gen\n"
    "    kind: datagen\n"
    "    rate: 1000\n"
    "    fields:\n"
    "      - {name: id, type: int, gen: sequence, start: 0}\n"
    "operators:\n"
    "  - {name: keyed, kind: map, input: gen, fields: [id, {name: key, expr: \"id % 10\"}]}\n"
    "  - {name: counts, kind: count, input: keyed, key_by: key}\n"
    "sinks:\n"
    "  - {name: out, kind: file, input: counts, path: \"${OUT}\"}\n";

static const char bounded_yaml[] =
    "name: after\n"
    "parallelism: 4\n"
    "sources:\n"
    "  - name: gen\n"
    "    kind: datagen\n"
    "    count: 1000\n"
    "    fields:\n"
    "      - {name: id, type: int, gen: sequence, start: 0}\n"
    "sinks:\n"
    "  - {name: out, kind: file, input: gen, path: \"${OUT}\"}\n";

/* Runs the endless job, applies sig to tm-2 and checks the job fails in
 * time, naming tm-2, and that the cluster shrank to tm-1. */
static void
lose_tm2(hc_cluster_t *c, int sig)
{
    char out[PATH_MAX], jid[HC_JOB_ID_LEN + 1];
    const char *why;
    json_t *job;
    long long t0, took;

    snprintf(out, sizeof(out), "%s/out-endless", c->dir);
    hc_submit_ok(c, endless_yaml, (const char *const[]){ "OUT", out, NULL }, jid);
    json_decref(hc_wait_subtasks(c, jid, "RUNNING", 30000));
    assert_int_equal(hc_overview_int(c, "slots-available"), 0);
    hc_sleep_ms(300);

    t0 = hc_now_ms();
    hc_signal_tm(c, 1, sig);
    job = hc_wait_job(c, jid, "FAILED", DETECT_MS);
    took = hc_now_ms() - t0;
    fprintf(stderr, "signal %d: job FAILED after %lld ms\n", sig, took);
    /* a silent task manager heartbeated at most one interval (1 s) before it
     * stopped, so the timeout cannot have expired much sooner than 1 s */
    if (sig == SIGSTOP && took < HEARTBEAT_TIMEOUT_MS - 1000 - 100)
        fail_msg("tm-2 was declared lost %lld ms after it went silent, before the timeout", took);
    why = hc_job_failure(job);
    if (why == NULL || strstr(why, "tm-2") == NULL)
        fail_msg("the failure does not name tm-2: %s", why ? why : "(none)");
    json_decref(job);

    /* tm-2's slots are gone, tm-1's are free again */
    hc_wait_tms(c, 1, 2, 2000);
    assert_int_equal(hc_overview_int(c, "slots-available"), 2);
    assert_int_equal(hc_overview_int(c, "jobs-failed"), 1);
    assert_int_equal(hc_overview_int(c, "jobs-running"), 0);
}

static void
test_kill_9_of_task_manager_fails_job_naming_it(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2, .heartbeat_timeout = "2s" });
    char out[PATH_MAX], jid[HC_JOB_ID_LEN + 1];
    char **lines;
    int n;

    lose_tm2(c, SIGKILL);

    /* a restarted tm-2 registers again and the cluster runs jobs again */
    hc_start_tm(c, 1);
    hc_wait_tms(c, 2, 4, 15000);
    assert_int_equal(hc_overview_int(c, "slots-available"), 4);
    snprintf(out, sizeof(out), "%s/out-after", c->dir);
    hc_submit_ok(c, bounded_yaml, (const char *const[]){ "OUT", out, NULL }, jid);
    json_decref(hc_wait_job(c, jid, "FINISHED", 30000));
    lines = hc_read_lines(out, &n);
    assert_int_equal(n, 1000);
    hc_free_lines(lines, n);
    hc_stop(c);
}

static void
test_silent_task_manager_is_lost_after_heartbeat_timeout(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2, .heartbeat_timeout = "2s" });

    lose_tm2(c, SIGSTOP);
    hc_signal_tm(c, 1, SIGKILL);
    hc_stop(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_kill_9_of_task_manager_fails_job_naming_it, hc_teardown),
        cmocka_unit_test_teardown(test_silent_task_manager_is_lost_after_heartbeat_timeout,
                                  hc_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
