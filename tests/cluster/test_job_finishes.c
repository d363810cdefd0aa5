/* tests/cluster/test_job_finishes.c -- a bounded job runs to FINISHED with
 * exactly the right answer.
 *
 * datagen -> map -> filter -> count (keyed, emit: final) -> file, at
 * parallelism 3 on 2 task managers x 2 slots, so the job spans both task
 * managers: the three generator subtasks each make a third of the rows, and
 * the keyed count is hash-partitioned over three subtasks, so records cross
 * TCP channels and in-memory channels. The generator is a
 * plain sequence, the key and the filter are arithmetic on it, so the test
 * computes the expected per-key counts itself, independently of the
 * runtime, and compares every output row.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

#define N_ROWS  30000
#define N_KEYS  7

static const char job_yaml[] =
    "name: finishes\n"
    "parallelism: 3\n"
    "sources:\n"
    "  - name: gen\n"
    "    kind: datagen\n"
    "    count: ${COUNT}\n"
    "    fields:\n"
    "      - {name: id, type: int, gen: sequence, start: 0}\n"
    "operators:\n"
    "  - name: keyed\n"
    "    kind: map\n"
    "    input: gen\n"
    "    fields: [id, {name: key, expr: \"id % 7\"}]\n"
    "  - {name: thirds, kind: filter, input: keyed, where: \"id % 3 == 0\"}\n"
    "  - {name: counts, kind: count, input: thirds, key_by: key, as: n, emit: final}\n"
    "sinks:\n"
    "  - {name: out, kind: file, input: counts, path: \"${OUT}\"}\n";

/* The answer, from the job's definition: ids 0..N-1, keep id % 3 == 0,
 * count per id % 7. */
static void
expected_counts(long long counts[N_KEYS])
{
    memset(counts, 0, sizeof(long long) * N_KEYS);
    for (long long id = 0; id < N_ROWS; id++)
        if (id % 3 == 0)
            counts[id % 7]++;
}

/* Each task manager that holds a subtask of the job, as a bit (tm-1 = 1). */
static unsigned
taskmanagers_used(const json_t *job)
{
    json_t *v, *s;
    size_t i, j;
    unsigned used = 0;

    json_array_foreach(json_object_get(job, "vertices"), i, v)
        json_array_foreach(json_object_get(v, "subtasks"), j, s) {
            const char *tm = json_string_value(json_object_get(s, "taskmanager-id"));

            if (tm != NULL && strncmp(tm, "tm-", 3) == 0)
                used |= 1u << (atoi(tm + 3) - 1);
        }
    return used;
}

static void
run_count_job(void)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    char out[PATH_MAX], count[32], jid[HC_JOB_ID_LEN + 1];
    long long want[N_KEYS], seen[N_KEYS];
    json_t *job, *edges, *e;
    char **lines;
    int n;
    size_t i;
    bool hash_edge = false;

    snprintf(out, sizeof(out), "%s/out", c->dir);
    snprintf(count, sizeof(count), "%d", N_ROWS);
    hc_submit_ok(c, job_yaml, (const char *const[]){ "OUT", out, "COUNT", count, NULL }, jid);

    job = hc_wait_job(c, jid, "FINISHED", 60000);
    assert_int_equal(json_integer_value(json_object_get(job, "parallelism")), 3);
    assert_null(hc_job_failure(job));
    /* three slots over two task managers: both hold subtasks */
    assert_int_equal(taskmanagers_used(job), 3);
    edges = json_object_get(job, "edges");
    json_array_foreach(edges, i, e)
        {
        const char *ship = json_string_value(json_object_get(e, "ship_strategy"));

        if (ship != NULL && strcmp(ship, "HASH") == 0)
            hash_edge = true;
    }
    assert_true(hash_edge);
    json_decref(job);

    /* every key exactly once, with exactly the expected count */
    expected_counts(want);
    for (int k = 0; k < N_KEYS; k++)
        seen[k] = -1;
    lines = hc_read_lines(out, &n);
    for (int l = 0; l < n; l++) {
        json_error_t jerr;
        json_t *row = json_loads(lines[l], 0, &jerr);
        json_t *key, *cnt;

        if (row == NULL)
            fail_msg("output line is not JSON: %s (%s)", lines[l], jerr.text);
        key = json_object_get(row, "key");
        cnt = json_object_get(row, "n");
        if (!json_is_integer(key) || !json_is_integer(cnt))
            fail_msg("output line lacks integer key and n: %s", lines[l]);
        if (json_integer_value(key) < 0 || json_integer_value(key) >= N_KEYS)
            fail_msg("unexpected key in %s", lines[l]);
        if (seen[json_integer_value(key)] != -1)
            fail_msg("key emitted twice: %s", lines[l]);
        seen[json_integer_value(key)] = json_integer_value(cnt);
        json_decref(row);
    }
    assert_int_equal(n, N_KEYS);
    for (int k = 0; k < N_KEYS; k++) {
        if (seen[k] != want[k])
            fail_msg("key %d: counted %lld, expected %lld", k, seen[k], want[k]);
    }
    hc_free_lines(lines, n);

    /* the finished job gave its slots back */
    assert_int_equal(hc_overview_int(c, "slots-available"), 4);
    assert_int_equal(hc_overview_int(c, "jobs-finished"), 1);
    assert_int_equal(hc_overview_int(c, "jobs-running"), 0);
    {
        /* the task managers say how their keyed state is cached */
        const char *want = getenv("WEIR_STATE_CACHE_MB") != NULL ? "RocksDB write cache off"
                                                                : "RocksDB write cache 32 MiB";
        for (int i = 0; i < c->ntms; i++) {
            char *log = hc_slurp(c->tms[i].log, NULL);
            if (log == NULL || strstr(log, want) == NULL)
                fail_msg("%s's log does not say '%s'", c->tms[i].id, want);
            free(log);
        }
    }
    hc_stop(c);
}

static void
test_bounded_count_job_finishes_with_exact_per_key_counts(void **state)
{
    (void)state;
    run_count_job();
}

/* The same with the RocksDB write-back cache off (--state-cache-mb 0, here
 * through the environment the task managers inherit): the same answer. */
static void
test_the_same_without_the_state_cache(void **state)
{
    (void)state;
    setenv("WEIR_STATE_CACHE_MB", "0", 1);
    run_count_job();
    unsetenv("WEIR_STATE_CACHE_MB");
}

/* A bad size is refused before anything starts. */
static void
test_bad_cache_sizes_are_refused(void **state)
{
    static const char *const bad[] = { "--state-cache-mb x", "--state-cache-mb -1",
                                       "--block-cache-mb 0", "--state-cache-mb 12abc" };
    const char *bd = getenv("WEIR_BUILD_DIR");
    char cmd[1024];

    (void)state;
    assert_non_null(bd);
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        int st;
        snprintf(cmd, sizeof(cmd), "%s/runtime/taskmanager/weir-taskmanager "
                 "--jobmanager 127.0.0.1:1 %s 2>/dev/null", bd, bad[k]);
        st = system(cmd);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 2)
            fail_msg("'%s' did not exit 2 (status %d)", bad[k], st);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_bounded_count_job_finishes_with_exact_per_key_counts,
                                  hc_teardown),
        cmocka_unit_test_teardown(test_the_same_without_the_state_cache, hc_teardown),
        cmocka_unit_test(test_bad_cache_sizes_are_refused),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
