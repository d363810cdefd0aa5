/* tests/cluster/test_checkpoint_recovery.c -- checkpoints, restarts and
 * exactly-once state across a task manager killed with SIGKILL.
 *
 * The job: a rate-limited generator of ids 0..N-1 -> key = id % 7 -> keyed
 * count (emit: final) -> file, checkpointing every 200 ms. Its answer is
 * computed here from the definition. A final count is exact only if, after
 * the crash, every generator resumed exactly at its checkpointed position and
 * every count resumed from the same checkpoint: a record replayed into a
 * count that already had it would count twice, a record skipped would be
 * missing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

#define N_KEYS 7

/* %s: the restart block */
static const char job_fmt[] =
    "name: recover\n"
    "parallelism: 2\n"
    "checkpoint:\n"
    "  interval: 200ms\n"
    "  retained: 2\n"
    "restart: %s\n"
    "sources:\n"
    "  - name: gen\n"
    "    kind: datagen\n"
    "    count: ${COUNT}\n"
    "    rate: ${RATE}\n"
    "    fields:\n"
    "      - {name: id, type: int, gen: sequence, start: 0}\n"
    "operators:\n"
    "  - {name: keyed, kind: map, input: gen, fields: [id, {name: key, expr: \"id %% 7\"}]}\n"
    "  - {name: counts, kind: count, input: keyed, key_by: key, as: n, emit: final}\n"
    "sinks:\n"
    "  - {name: out, kind: file, input: counts, path: \"${OUT}\"}\n";

static char job_yaml[2048];
static const char fixed_restart[] = "{strategy: fixed_delay, attempts: 5, delay: 200ms}";

static void
make_job(const char *restart)
{
    snprintf(job_yaml, sizeof(job_yaml), job_fmt, restart);
}

static long long
jint(json_t *o, const char *a, const char *b)
{
    json_t *x = json_object_get(o, a);
    if (b != NULL)
        x = json_object_get(x, b);
    return json_is_integer(x) ? (long long)json_integer_value(x) : -1;
}

/* Waits until the job has completed at least n checkpoints. */
static void
wait_checkpoints(hc_cluster_t *c, const char *jid, int n, int timeout_ms)
{
    long long deadline = hc_now_ms() + timeout_ms;

    for (;;) {
        json_t *job = hc_job(c, jid);
        long long done = jint(job, "checkpoints", "completed");
        const char *st = hc_job_state(job);
        if (done >= n) {
            json_decref(job);
            return;
        }
        if (strcmp(st, "RUNNING") != 0 && strcmp(st, "CREATED") != 0 &&
            strcmp(st, "RESTARTING") != 0)
            fail_msg("job is %s before %d checkpoints (failure: %s)", st, n,
                     hc_job_failure(job) ? hc_job_failure(job) : "-");
        json_decref(job);
        if (hc_now_ms() > deadline)
            fail_msg("fewer than %d checkpoints within %d ms", n, timeout_ms);
        hc_sleep_ms(50);
    }
}

/* Lines of every task manager log containing what. */
static void
check_counts(const char *out, long long rows)
{
    long long want[N_KEYS] = { 0 }, seen[N_KEYS];
    char **lines;
    int n;

    for (long long id = 0; id < rows; id++)
        want[id % N_KEYS]++;
    for (int k = 0; k < N_KEYS; k++)
        seen[k] = -1;
    lines = hc_read_lines(out, &n);
    for (int l = 0; l < n; l++) {
        json_t *row = json_loads(lines[l], 0, NULL);
        long long key = jint(row, "key", NULL), cnt = jint(row, "n", NULL);
        if (key < 0 || key >= N_KEYS)
            fail_msg("unexpected output line %s", lines[l]);
        if (seen[key] != -1)
            fail_msg("key %lld emitted twice: %s", key, lines[l]);
        seen[key] = cnt;
        json_decref(row);
    }
    assert_int_equal(n, N_KEYS);
    for (int k = 0; k < N_KEYS; k++)
        if (seen[k] != want[k])
            fail_msg("key %d: counted %lld, expected %lld (a record %s)", k, seen[k], want[k],
                     seen[k] > want[k] ? "was counted twice" : "was lost");
    hc_free_lines(lines, n);
}

/* kill -9 of a task manager mid-run: the job restarts from its latest
 * checkpoint, and the result is exact. */
static void
test_kill_taskmanager_restores_exactly(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    char out[PATH_MAX], jid[HC_JOB_ID_LEN + 1];
    json_t *job;

    (void)state;
    snprintf(out, sizeof(out), "%s/out", c->dir);
    make_job(fixed_restart);
    hc_submit_ok(c, job_yaml, (const char *const[]){ "OUT", out, "COUNT", "60000", "RATE",
                                                     "15000", NULL }, jid);
    wait_checkpoints(c, jid, 3, 20000);
    hc_signal_tm(c, 1, SIGKILL);                 /* tm-2: half of every vertex */
    hc_start_tm(c, 1);                           /* and back, as a supervisor would */
    job = hc_wait_job(c, jid, "FINISHED", 60000);
    assert_true(jint(job, "restarts", NULL) >= 1);
    assert_true(jint(job, "checkpoints", "restored_from") >= 3);
    assert_non_null(hc_job_failure(job));        /* the last failure names tm-2 */
    assert_non_null(strstr(hc_job_failure(job), "tm-2"));
    json_decref(job);
    /* the new attempt really started from the checkpoint: both generator
     * subtasks took their positions and both counts their keyed state
     * (a restart from scratch would give the same final counts) */
    assert_int_equal(hc_log_count(c, "restored 'gen' from checkpoint"), 2);
    assert_int_equal(hc_log_count(c, "restored keyed state of checkpoint"), 2);
    check_counts(out, 60000);
    hc_stop(c);
}

/* Two failures in a row, each restoring the latest checkpoint of the
 * attempt before. */
static void
test_two_kills_still_exact(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    char out[PATH_MAX], jid[HC_JOB_ID_LEN + 1];
    json_t *job;

    (void)state;
    snprintf(out, sizeof(out), "%s/out", c->dir);
    make_job(fixed_restart);
    hc_submit_ok(c, job_yaml, (const char *const[]){ "OUT", out, "COUNT", "80000", "RATE",
                                                     "16000", NULL }, jid);
    wait_checkpoints(c, jid, 2, 20000);
    hc_signal_tm(c, 0, SIGKILL);
    hc_start_tm(c, 0);
    job = hc_wait_job(c, jid, "RUNNING", 20000);
    long long before = jint(job, "checkpoints", "completed");
    json_decref(job);
    wait_checkpoints(c, jid, (int)before + 2, 20000);
    hc_signal_tm(c, 1, SIGKILL);
    hc_start_tm(c, 1);
    job = hc_wait_job(c, jid, "FINISHED", 60000);
    assert_true(jint(job, "restarts", NULL) >= 2);
    json_decref(job);
    check_counts(out, 80000);
    hc_stop(c);
}

/* Without a restart strategy the failure is final. */
static void
test_restart_none_fails(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    char out[PATH_MAX], jid[HC_JOB_ID_LEN + 1];
    json_t *job;

    (void)state;
    snprintf(out, sizeof(out), "%s/out", c->dir);
    make_job("{strategy: none}");
    hc_submit_ok(c, job_yaml, (const char *const[]){ "OUT", out, "COUNT", "1000000", "RATE",
                                                     "10000", NULL }, jid);
    wait_checkpoints(c, jid, 1, 20000);
    hc_signal_tm(c, 1, SIGKILL);
    job = hc_wait_job(c, jid, "FAILED", 20000);
    assert_int_equal(jint(job, "restarts", NULL), 0);
    json_decref(job);
    hc_stop(c);
}

static int
count_chk_dirs(const char *dir, long long *max)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int n = 0;

    *max = 0;
    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "chk-", 4) == 0) {
            n++;
            if (atoll(de->d_name + 4) > *max)
                *max = atoll(de->d_name + 4);
        }
    closedir(d);
    return n;
}

/* On disk: chk-<n>/_metadata for the retained ones only; the newest is the
 * latest the job reports. */
static void
test_checkpoint_layout_and_retention(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    char out[PATH_MAX], jid[HC_JOB_ID_LEN + 1], dir[PATH_MAX], meta[PATH_MAX + 64];
    long long max = 0;
    json_t *job, *m;
    struct stat st;

    (void)state;
    snprintf(out, sizeof(out), "%s/out", c->dir);
    make_job(fixed_restart);
    hc_submit_ok(c, job_yaml, (const char *const[]){ "OUT", out, "COUNT", "10000000", "RATE",
                                                     "5000", NULL }, jid);
    wait_checkpoints(c, jid, 4, 20000);
    assert_int_equal(hc_cancel(c, jid), 202);
    job = hc_wait_job(c, jid, "CANCELED", 20000);
    long long latest = jint(json_object_get(job, "checkpoints"), "latest", "id");
    /* the keyed count has 2 input channels: its alignment is measured */
    assert_true(jint(json_object_get(job, "checkpoints"), "latest", "alignment_ms") >= 0);
    assert_true(latest >= 4);
    json_decref(job);
    snprintf(dir, sizeof(dir), "%s/checkpoints/%s", c->dir, jid);
    assert_int_equal(count_chk_dirs(dir, &max), 2);          /* retained: 2 */
    assert_int_equal(max, latest);
    snprintf(meta, sizeof(meta), "%s/chk-%lld/_metadata", dir, latest);
    m = json_load_file(meta, 0, NULL);
    assert_non_null(m);
    assert_int_equal(jint(m, "checkpoint", NULL), latest);
    assert_int_equal(json_array_size(json_object_get(m, "vertices")), 2);
    json_decref(m);
    /* the keyed count's subtasks each left a keyed-state snapshot */
    snprintf(meta, sizeof(meta), "%s/chk-%lld/v1-s0/keyed", dir, latest);
    assert_int_equal(stat(meta, &st), 0);
    snprintf(meta, sizeof(meta), "%s/chk-%lld/v0-s1/ops", dir, latest);
    assert_int_equal(stat(meta, &st), 0);
    hc_stop(c);
}

/* The job manager crashes mid-run and comes back on the same data
 * directory: the job resumes from its latest checkpoint, exactly. */
static void
test_jobmanager_crash_resumes(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    char out[PATH_MAX], jid[HC_JOB_ID_LEN + 1];
    json_t *job;

    (void)state;
    snprintf(out, sizeof(out), "%s/out", c->dir);
    make_job(fixed_restart);
    hc_submit_ok(c, job_yaml, (const char *const[]){ "OUT", out, "COUNT", "60000", "RATE",
                                                     "15000", NULL }, jid);
    wait_checkpoints(c, jid, 3, 20000);
    hc_restart_jm(c, SIGKILL);
    job = hc_wait_job(c, jid, "FINISHED", 60000);
    assert_true(jint(job, "attempt", NULL) >= 1);
    assert_true(jint(json_object_get(job, "checkpoints"), "restored_from", NULL) >= 3);
    json_decref(job);
    assert_int_equal(hc_log_count(c, "restored 'gen' from checkpoint"), 2);
    check_counts(out, 60000);
    hc_stop(c);
}

/* The job manager dies in the middle of writing checkpoint 4's metadata:
 * restarted on the same data directory it resumes from checkpoint 3 (the
 * torn one never existed), and the result is exact. */
static void
test_crash_while_writing_metadata(void **state)
{
    hc_cluster_t *c;
    char out[PATH_MAX], jid[HC_JOB_ID_LEN + 1], meta[PATH_MAX + 96];
    struct stat st;
    json_t *job;

    (void)state;
    setenv("WEIR_TEST_CRASH_IN_METADATA", "4", 1);
    c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    unsetenv("WEIR_TEST_CRASH_IN_METADATA");
    snprintf(out, sizeof(out), "%s/out", c->dir);
    make_job(fixed_restart);
    hc_submit_ok(c, job_yaml, (const char *const[]){ "OUT", out, "COUNT", "60000", "RATE",
                                                     "15000", NULL }, jid);
    assert_int_equal(hc_wait_jm_exit(c, 30000), 128 + SIGKILL);
    snprintf(meta, sizeof(meta), "%s/checkpoints/%s/chk-4/_metadata", c->dir, jid);
    assert_int_not_equal(stat(meta, &st), 0);           /* torn: never renamed */
    snprintf(meta, sizeof(meta), "%s/checkpoints/%s/chk-3/_metadata", c->dir, jid);
    assert_int_equal(stat(meta, &st), 0);
    hc_restart_jm(c, SIGTERM);                          /* no hook this time */
    job = hc_wait_job(c, jid, "FINISHED", 60000);
    assert_int_equal(jint(json_object_get(job, "checkpoints"), "restored_from", NULL), 3);
    json_decref(job);
    check_counts(out, 60000);
    hc_stop(c);
}

/* Every update of a per-key count, through an exactly-once file sink,
 * across an injected failure right after a checkpoint and a kill -9: each
 * key's counts must come out as exactly 1, 2, ..., n -- no gap (a lost
 * record or a lost output line), no repeat (a record counted twice, or an
 * output line written twice). */
static const char seq_fmt[] =
    "name: sequence\n"
    "parallelism: 2\n"
    "checkpoint: {interval: 150ms}\n"
    "restart: {strategy: fixed_delay, attempts: 10, delay: 100ms}\n"
    "sources:\n"
    "  - name: gen\n"
    "    kind: datagen\n"
    "    count: %d\n"
    "    rate: 10000\n"
    "    fields:\n"
    "      - {name: id, type: int, gen: sequence, start: 0}\n"
    "operators:\n"
    "  - {name: keyed, kind: map, input: gen, fields: [id, {name: key, expr: \"id %% 7\"}]}\n"
    "  - {name: monkey, kind: chaos, input: keyed, fail_after_checkpoint: 3, subtask: 1}\n"
    "  - {name: counts, kind: count, input: monkey, key_by: key, as: n}\n"
    "sinks:\n"
    "  - {name: out, kind: file, input: counts, path: \"${OUT}\"}\n";

static void
test_per_key_sequence_survives_failures(void **state)
{
    enum { ROWS = 40000 };
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    char out[PATH_MAX], jid[HC_JOB_ID_LEN + 1], yaml[2048];
    long long want[N_KEYS] = { 0 };
    unsigned char *seen[N_KEYS];
    json_t *job;
    char **lines;
    int n;

    (void)state;
    snprintf(out, sizeof(out), "%s/out", c->dir);
    snprintf(yaml, sizeof(yaml), seq_fmt, ROWS);
    hc_submit_ok(c, yaml, (const char *const[]){ "OUT", out, NULL }, jid);
    /* the chaos operator fails subtask 2 after checkpoint 3; then a crash */
    wait_checkpoints(c, jid, 6, 30000);
    hc_signal_tm(c, 0, SIGKILL);
    hc_start_tm(c, 0);
    job = hc_wait_job(c, jid, "FINISHED", 60000);
    assert_true(jint(job, "restarts", NULL) >= 2);
    json_decref(job);
    assert_true(hc_log_count(c, "chaos: failing after checkpoint 3") >= 1);

    for (long long id = 0; id < ROWS; id++)
        want[id % N_KEYS]++;
    for (int k = 0; k < N_KEYS; k++)
        seen[k] = calloc((size_t)want[k] + 1, 1);
    lines = hc_read_lines(out, &n);
    for (int l = 0; l < n; l++) {
        json_t *row = json_loads(lines[l], 0, NULL);
        long long key = jint(row, "key", NULL), cnt = jint(row, "n", NULL);
        if (key < 0 || key >= N_KEYS || cnt < 1 || cnt > want[key])
            fail_msg("unexpected output line %s", lines[l]);
        if (seen[key][cnt])
            fail_msg("key %lld: count %lld written twice", key, cnt);
        seen[key][cnt] = 1;
        json_decref(row);
    }
    for (int k = 0; k < N_KEYS; k++) {
        for (long long i = 1; i <= want[k]; i++)
            if (!seen[k][i])
                fail_msg("key %d: count %lld is missing (of %lld)", k, i, want[k]);
        free(seen[k]);
    }
    assert_int_equal(n, ROWS);
    hc_free_lines(lines, n);
    hc_stop(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_kill_taskmanager_restores_exactly, hc_teardown),
        cmocka_unit_test_teardown(test_two_kills_still_exact, hc_teardown),
        cmocka_unit_test_teardown(test_restart_none_fails, hc_teardown),
        cmocka_unit_test_teardown(test_checkpoint_layout_and_retention, hc_teardown),
        cmocka_unit_test_teardown(test_jobmanager_crash_resumes, hc_teardown),
        cmocka_unit_test_teardown(test_crash_while_writing_metadata, hc_teardown),
        cmocka_unit_test_teardown(test_per_key_sequence_survives_failures, hc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
