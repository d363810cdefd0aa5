/* tests/cluster/test_savepoint.c -- savepoints, stop, resume, rescaling.
 *
 * A rate-limited generator of ids 0..N-1 -> key = id % 7 -> keyed count
 * (emit: final) -> file. `jobctl stop` writes a savepoint and stops the job
 * (FINISHED, no final counts: the input did not end); the job is submitted
 * again from the savepoint at parallelism 3, stopped again, and resumed at
 * parallelism 1, where it runs to the end. The final counts are exact only
 * if every rescaled restore handed each key's count to exactly one new
 * subtask and the generators resumed exactly where the old ones stopped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

#define N_ROWS 60000
#define N_KEYS 7

static const char job_fmt[] =
    "name: rescale\n"
    "parallelism: 2\n"
    "sources:\n"
    "  - name: gen\n"
    "    kind: datagen\n"
    "    count: %d\n"
    "    rate: 12000\n"
    "    fields:\n"
    "      - {name: id, type: int, gen: sequence, start: 0}\n"
    "operators:\n"
    "  - {name: keyed, kind: map, input: gen, fields: [id, {name: key, expr: \"id %% 7\"}]}\n"
    "  - {name: %s, kind: count, input: keyed, key_by: key, as: n, emit: final}\n"
    "sinks:\n"
    "  - {name: out, kind: file, input: %s, path: \"${OUT}\"}\n";

static void
write_job(hc_cluster_t *c, const char *name, const char *count_name, char path[PATH_MAX])
{
    char text[2048];

    snprintf(text, sizeof(text), job_fmt, N_ROWS, count_name, count_name);
    hc_write_file(c, name, text, path);
}

/* Runs jobctl with the arguments; fails the test unless it exits 0; returns
 * the first line of its stdout (new). */
#define JOBCTL_OK(c, ...) jobctl_check((c), hc_jobctl_out((c), __VA_ARGS__, NULL))

static char *g_out, *g_err;

static int hc_jobctl_out(hc_cluster_t *c, ...) __attribute__((sentinel));

static int
hc_jobctl_out(hc_cluster_t *c, ...)
{
    const char *argv[16];
    va_list ap;
    int n = 0;

    va_start(ap, c);
    while (n < 15 && (argv[n] = va_arg(ap, const char *)) != NULL)
        n++;
    va_end(ap);
    argv[n] = NULL;
    free(g_out);
    free(g_err);
    g_out = g_err = NULL;
    /* hc_jobctl takes its arguments as varargs too: at most 9 here */
    return hc_jobctl(c, &g_out, &g_err, argv[0], argv[1], argv[2], argv[3], argv[4], argv[5],
                     argv[6], argv[7], argv[8], NULL);
}

static char *
jobctl_check(hc_cluster_t *c, int st)
{
    (void)c;
    if (st != 0)
        fail_msg("jobctl exited %d: %s", st, g_err ? g_err : "");
    g_out[strcspn(g_out, "\n")] = '\0';
    return strdup(g_out);
}

static void
wait_running_a_while(hc_cluster_t *c, const char *jid, int ms)
{
    json_t *job = hc_wait_subtasks(c, jid, "RUNNING", 20000);
    json_decref(job);
    hc_sleep_ms(ms);
}

static void
check_savepoint(const char *sp, const char *under)
{
    char meta[PATH_MAX + 32];
    struct stat st;

    snprintf(meta, sizeof(meta), "%s/_metadata", sp);
    if (stat(meta, &st) != 0)
        fail_msg("savepoint %s has no _metadata", sp);
    assert_non_null(strstr(sp, under));
}

static void
test_stop_resume_rescale_exact(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    char job[PATH_MAX], out[PATH_MAX], spdir[PATH_MAX], outd[PATH_MAX + 8];
    char *jid, *sp1, *sp2, *jid2, *jid3;
    long long want[N_KEYS] = { 0 }, seen[N_KEYS];
    json_t *doc;
    char **lines;
    int n;

    (void)state;
    write_job(c, "job.yaml", "counts", job);
    snprintf(out, sizeof(out), "%s/out", c->dir);
    snprintf(outd, sizeof(outd), "OUT=%s", out);
    snprintf(spdir, sizeof(spdir), "%s/savepoints", c->dir);

    jid = JOBCTL_OK(c, "submit", job, "-D", outd);
    wait_running_a_while(c, jid, 1200);
    sp1 = JOBCTL_OK(c, "stop", jid, "--dir", spdir);
    doc = hc_wait_job(c, jid, "FINISHED", 20000);
    json_decref(doc);
    check_savepoint(sp1, spdir);

    /* resume at parallelism 3, stop again */
    jid2 = JOBCTL_OK(c, "submit", job, "-D", outd, "-p", "3", "--from-savepoint", sp1);
    wait_running_a_while(c, jid2, 1200);
    doc = hc_job(c, jid2);
    assert_int_equal(json_integer_value(json_object_get(doc, "parallelism")), 3);
    json_decref(doc);
    sp2 = JOBCTL_OK(c, "stop", jid2, "--dir", spdir);
    doc = hc_wait_job(c, jid2, "FINISHED", 20000);
    json_decref(doc);
    check_savepoint(sp2, spdir);
    assert_string_not_equal(sp1, sp2);

    /* and at parallelism 1 to the end */
    jid3 = JOBCTL_OK(c, "submit", job, "-D", outd, "-p", "1", "--from-savepoint", sp2);
    doc = hc_wait_job(c, jid3, "FINISHED", 60000);
    json_decref(doc);

    for (long long id = 0; id < N_ROWS; id++)
        want[id % N_KEYS]++;
    for (int k = 0; k < N_KEYS; k++)
        seen[k] = -1;
    lines = hc_read_lines(out, &n);
    for (int l = 0; l < n; l++) {
        json_t *row = json_loads(lines[l], 0, NULL);
        long long key = json_integer_value(json_object_get(row, "key"));
        if (key < 0 || key >= N_KEYS || seen[key] != -1)
            fail_msg("unexpected output line %s", lines[l]);
        seen[key] = json_integer_value(json_object_get(row, "n"));
        json_decref(row);
    }
    assert_int_equal(n, N_KEYS);
    for (int k = 0; k < N_KEYS; k++)
        if (seen[k] != want[k])
            fail_msg("key %d: counted %lld, expected %lld", k, seen[k], want[k]);
    hc_free_lines(lines, n);
    free(jid);
    free(jid2);
    free(jid3);
    free(sp1);
    free(sp2);
    hc_stop(c);
}

/* A savepoint with state of an operator the new job lacks is refused, with
 * the operator's name, unless --allow-non-restored-state. */
static void
test_non_restored_state(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    char job[PATH_MAX], job2[PATH_MAX], out[PATH_MAX], spdir[PATH_MAX], outd[PATH_MAX + 8];
    char *jid, *sp, *jid2;
    json_t *doc;
    int st;

    (void)state;
    write_job(c, "job.yaml", "counts", job);
    write_job(c, "job2.yaml", "renamed", job2);
    snprintf(out, sizeof(out), "%s/out", c->dir);
    snprintf(outd, sizeof(outd), "OUT=%s", out);
    snprintf(spdir, sizeof(spdir), "%s/savepoints", c->dir);
    jid = JOBCTL_OK(c, "submit", job, "-D", outd);
    wait_running_a_while(c, jid, 500);
    sp = JOBCTL_OK(c, "savepoint", jid, "--dir", spdir);
    check_savepoint(sp, spdir);
    doc = hc_job(c, jid);
    assert_string_equal(hc_job_state(doc), "RUNNING");       /* savepoint alone: runs on */
    json_decref(doc);
    assert_int_equal(hc_cancel(c, jid), 202);

    st = hc_jobctl_out(c, "submit", job2, "-D", outd, "--from-savepoint", sp, NULL);
    assert_int_not_equal(st, 0);
    if (strstr(g_err, "operator 'counts'") == NULL)
        fail_msg("jobctl said: %s", g_err);
    assert_non_null(strstr(g_err, "--allow-non-restored-state"));

    jid2 = JOBCTL_OK(c, "submit", job2, "-D", outd, "--from-savepoint", sp,
                     "--allow-non-restored-state");
    doc = hc_wait_subtasks(c, jid2, "RUNNING", 20000);
    json_decref(doc);
    assert_int_equal(hc_cancel(c, jid2), 202);
    free(jid);
    free(jid2);
    free(sp);
    hc_stop(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_stop_resume_rescale_exact, hc_teardown),
        cmocka_unit_test_teardown(test_non_restored_state, hc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
