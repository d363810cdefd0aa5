/* tests/cluster/test_cancel.c -- cancelling a running job.
 *
 * An unbounded, rate-limited datagen job runs on both task managers; a
 * PATCH /jobs/{id}?mode=cancel brings it to CANCELED within seconds, every
 * subtask ends CANCELED, and all slots are free again. Cancelling it a second
 * time is a conflict (409), cancelling an unknown job is 404.
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
    "name: endless\n"
    "parallelism: 4\n"
    "sources:\n"
    "  - name: gen\n"
    "    kind: datagen\n"
    "    rate: 2000\n"
    "    fields:\n"
    "      - {name: id, type: int, gen: sequence, start: 0}\n"
    "      - {name: key, type: string, gen: choice, values: [a, b, c]}\n"
    "operators:\n"
    "  - {name: some, kind: filter, input: gen, where: \"id % 2 == 0\"}\n"
    "  - {name: counts, kind: count, input: some, key_by: key}\n"
    "sinks:\n"
    "  - {name: out, kind: file, input: counts, path: \"${OUT}\"}\n";

static void
test_cancel_of_unbounded_job_reaches_canceled_and_frees_slots(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    char out[PATH_MAX], jid[HC_JOB_ID_LEN + 1];
    json_t *job, *v, *s;
    size_t i, j;
    long long t0;

    snprintf(out, sizeof(out), "%s/out", c->dir);
    hc_submit_ok(c, job_yaml, (const char *const[]){ "OUT", out, NULL }, jid);
    json_decref(hc_wait_job(c, jid, "RUNNING", 30000));
    json_decref(hc_wait_subtasks(c, jid, "RUNNING", 30000));
    assert_int_equal(hc_overview_int(c, "slots-available"), 0);
    assert_int_equal(hc_overview_int(c, "jobs-running"), 1);
    hc_sleep_ms(500);                          /* let records flow */

    t0 = hc_now_ms();
    assert_int_equal(hc_cancel(c, jid), 202);
    job = hc_wait_job(c, jid, "CANCELED", 15000);
    fprintf(stderr, "canceled in %lld ms\n", hc_now_ms() - t0);
    assert_null(hc_job_failure(job));
    json_array_foreach(json_object_get(job, "vertices"), i, v)
        json_array_foreach(json_object_get(v, "subtasks"), j, s)
            assert_string_equal(json_string_value(json_object_get(s, "status")), "CANCELED");
    assert_true(json_integer_value(json_object_get(job, "end-time")) > 0);
    json_decref(job);

    assert_int_equal(hc_overview_int(c, "slots-available"), 4);
    assert_int_equal(hc_overview_int(c, "slots-total"), 4);
    assert_int_equal(hc_overview_int(c, "jobs-running"), 0);
    assert_int_equal(hc_overview_int(c, "jobs-cancelled"), 1);

    /* a terminal job cannot be cancelled again; an unknown one is not found */
    assert_int_equal(hc_cancel(c, jid), 409);
    assert_int_equal(hc_cancel(c, "00000000000000000000000000000000"), 404);
    hc_stop(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_cancel_of_unbounded_job_reaches_canceled_and_frees_slots,
                                  hc_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
