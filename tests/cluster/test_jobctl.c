/* tests/cluster/test_jobctl.c -- the real jobctl against a real cluster.
 *
 * Each case runs the jobctl binary (--rest pointing at the test cluster) and
 * checks its exit status, stdout and stderr, and what it did through the
 * REST API: submit prints the id alone, -D reaches the job's ${VAR}s, status
 * and list show the job, a bad job file is refused with its file:line:col,
 * cancel cancels, an unknown job id is an error.
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

#define UNKNOWN_ID "0123456789abcdef0123456789abcdef"

static const char finite_yaml[] =
    "name: jobctl-finite\n"
    "parallelism: 2\n"
    "sources:\n"
    "  - name: gen\n"
    "    kind: datagen\n"
    "    count: 500\n"
    "    fields:\n"
    "      - {name: id, type: int, gen: sequence, start: 0}\n"
    "operators:\n"
    "  - {name: small, kind: filter, input: gen, where: \"id < ${LIMIT}\"}\n"
    "sinks:\n"
    "  - {name: out, kind: file, input: small, parallelism: 1, path: \"${OUT}\"}\n";

static const char endless_yaml[] =
    "name: jobctl-endless\n"
    "parallelism: 2\n"
    "sources:\n"
    "  - name: gen\n"
    "    kind: datagen\n"
    "    rate: 500\n"
    "    fields:\n"
    "      - {name: id, type: int, gen: sequence, start: 0}\n"
    "sinks:\n"
    "  - {name: out, kind: file, input: gen, path: \"${OUT}\"}\n";

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

static bool
is_id_line(const char *s)
{
    for (int i = 0; i < HC_JOB_ID_LEN; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
            return false;
    return strcmp(s + HC_JOB_ID_LEN, "\n") == 0;
}

/* jobctl submit FILE -D OUT=out -D LIMIT=limit [extra...]; returns the id. */
static void
submit(hc_cluster_t *c, const char *file, const char *out, const char *limit, const char *p,
       char jid[HC_JOB_ID_LEN + 1])
{
    char d_out[PATH_MAX + 8], d_limit[64], *o, *e;
    int rc;

    snprintf(d_out, sizeof(d_out), "OUT=%s", out);
    snprintf(d_limit, sizeof(d_limit), "LIMIT=%s", limit);
    if (p != NULL)
        rc = hc_jobctl(c, &o, &e, "submit", file, "-D", d_out, "-D", d_limit, "-p", p, NULL);
    else
        rc = hc_jobctl(c, &o, &e, "submit", file, "-D", d_out, "-D", d_limit, NULL);
    if (rc != 0 || !is_id_line(o))
        fail_msg("jobctl submit: exit %d, stdout '%s', stderr '%s'", rc, o, e);
    memcpy(jid, o, HC_JOB_ID_LEN);
    jid[HC_JOB_ID_LEN] = '\0';
    free(o);
    free(e);
}

static void
test_jobctl_submit_prints_id_and_substitutes_vars(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 1, .slots = 2 });
    char file[PATH_MAX], out[PATH_MAX], jid[HC_JOB_ID_LEN + 1];
    char **lines;
    json_t *job;
    int n;

    hc_write_file(c, "finite.yaml", finite_yaml, file);
    snprintf(out, sizeof(out), "%s/out", c->dir);
    submit(c, file, out, "42", NULL, jid);

    job = hc_wait_job(c, jid, "FINISHED", 30000);
    assert_string_equal(json_string_value(json_object_get(job, "name")), "jobctl-finite");
    json_decref(job);
    /* OUT chose the directory, LIMIT the filter: ids 0..41 */
    lines = hc_read_lines(out, &n);
    assert_int_equal(n, 42);
    hc_free_lines(lines, n);
    hc_stop(c);
}

static void
test_jobctl_status_and_list_show_the_job(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 1, .slots = 2 });
    char file[PATH_MAX], out[PATH_MAX], jid[HC_JOB_ID_LEN + 1];
    char *o, *e;
    json_t *doc;
    int rc;

    hc_write_file(c, "finite.yaml", finite_yaml, file);
    snprintf(out, sizeof(out), "%s/out", c->dir);
    submit(c, file, out, "10", NULL, jid);
    json_decref(hc_wait_job(c, jid, "FINISHED", 30000));

    rc = hc_jobctl(c, &o, &e, "status", jid, NULL);
    if (rc != 0)
        fail_msg("jobctl status: exit %d: %s", rc, e);
    assert_non_null(strstr(o, jid));
    assert_non_null(strstr(o, "jobctl-finite"));
    assert_non_null(strstr(o, "FINISHED"));
    assert_non_null(strstr(o, "Vertices:"));
    /* gen and small are chained; the sink runs at parallelism 1, so it is
     * a vertex of its own */
    assert_non_null(strstr(o, "gen -> small"));
    assert_non_null(strstr(o, "Parallelism:"));
    assert_string_equal(e, "");
    free(o);
    free(e);

    rc = hc_jobctl(c, &o, &e, "--json", "status", jid, NULL);
    assert_int_equal(rc, 0);
    doc = json_loads(o, 0, NULL);
    assert_non_null(doc);
    assert_string_equal(json_string_value(json_object_get(doc, "state")), "FINISHED");
    assert_int_equal(json_array_size(json_object_get(doc, "vertices")), 2);
    json_decref(doc);
    free(o);
    free(e);

    rc = hc_jobctl(c, &o, &e, "list", NULL);
    if (rc != 0)
        fail_msg("jobctl list: exit %d: %s", rc, e);
    assert_non_null(strstr(o, jid));
    assert_non_null(strstr(o, "jobctl-finite"));
    assert_non_null(strstr(o, "FINISHED"));
    free(o);
    free(e);
    hc_stop(c);
}

static void
test_jobctl_rejects_bad_job_file_with_location(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 1, .slots = 2 });
    char file[PATH_MAX], prefix[PATH_MAX + 32], *o, *e;
    json_t *jobs;
    int rc;

    hc_write_file(c, "typo.yaml", typo_yaml, file);
    rc = hc_jobctl(c, &o, &e, "submit", file, NULL);
    assert_int_equal(rc, 1);
    assert_string_equal(o, "");
    snprintf(prefix, sizeof(prefix), "jobctl: %s:10:11: ", file);
    if (strncmp(e, prefix, strlen(prefix)) != 0 ||
        strstr(e, "unknown operator kind 'fliter' (did you mean 'filter'?)") == NULL)
        fail_msg("unexpected stderr: '%s' (want '%s...')", e, prefix);
    free(o);
    free(e);

    /* nothing was created */
    jobs = hc_get_json(c, "/jobs/overview", NULL);
    assert_int_equal(json_array_size(json_object_get(jobs, "jobs")), 0);
    json_decref(jobs);
    hc_stop(c);
}

static void
test_jobctl_cancel_cancels_running_job(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 1, .slots = 2 });
    char file[PATH_MAX], out[PATH_MAX], jid[HC_JOB_ID_LEN + 1], want[64], *o, *e;
    json_t *job;
    int rc;

    hc_write_file(c, "endless.yaml", endless_yaml, file);
    snprintf(out, sizeof(out), "%s/out", c->dir);
    submit(c, file, out, "0", "1", jid);          /* -p 1 overrides the file's 2 */
    job = hc_wait_subtasks(c, jid, "RUNNING", 30000);
    assert_int_equal(json_integer_value(json_object_get(job, "parallelism")), 1);
    json_decref(job);
    assert_int_equal(hc_overview_int(c, "slots-available"), 1);

    rc = hc_jobctl(c, &o, &e, "cancel", jid, NULL);
    if (rc != 0)
        fail_msg("jobctl cancel: exit %d: %s", rc, e);
    snprintf(want, sizeof(want), "cancelling %s\n", jid);
    assert_string_equal(o, want);
    free(o);
    free(e);
    json_decref(hc_wait_job(c, jid, "CANCELED", 15000));
    assert_int_equal(hc_overview_int(c, "slots-available"), 2);
    hc_stop(c);
}

static void
test_jobctl_unknown_job_id_fails(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 1, .slots = 2 });
    char *o, *e;
    int rc;

    rc = hc_jobctl(c, &o, &e, "status", UNKNOWN_ID, NULL);
    assert_int_equal(rc, 1);
    assert_string_equal(o, "");
    assert_true(strncmp(e, "jobctl: ", 8) == 0);
    free(o);
    free(e);

    rc = hc_jobctl(c, &o, &e, "cancel", UNKNOWN_ID, NULL);
    assert_int_equal(rc, 1);
    assert_string_equal(o, "");
    assert_true(strncmp(e, "jobctl: ", 8) == 0);
    free(o);
    free(e);
    hc_stop(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_jobctl_submit_prints_id_and_substitutes_vars, hc_teardown),
        cmocka_unit_test_teardown(test_jobctl_status_and_list_show_the_job, hc_teardown),
        cmocka_unit_test_teardown(test_jobctl_rejects_bad_job_file_with_location, hc_teardown),
        cmocka_unit_test_teardown(test_jobctl_cancel_cancels_running_job, hc_teardown),
        cmocka_unit_test_teardown(test_jobctl_unknown_job_id_fails, hc_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
