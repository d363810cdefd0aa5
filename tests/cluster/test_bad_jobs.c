/* tests/cluster/test_bad_jobs.c -- the job manager refuses bad job files.
 *
 * Each case takes one valid job file, breaks one thing, POSTs it to /jobs
 * and expects 400 with an error that starts "bad.yaml:LINE:COL: " (the
 * position of the broken thing, 1-based) and names the reason. None of them
 * may become a job: /jobs/overview stays empty and no task manager gives a
 * slot away. Finally the unbroken file is accepted, so every refusal above
 * was caused by its one change.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* The valid job, one line per entry (line numbers in comments). */
static const char *const base[] = {
    "name: bad",                                                        /*  1 */
    "parallelism: 2",                                                   /*  2 */
    "sources:",                                                         /*  3 */
    "  - name: gen",                                                    /*  4 */
    "    kind: datagen",                                                /*  5 */
    "    count: 100",                                                   /*  6 */
    "    fields:",                                                      /*  7 */
    "      - {name: id, type: int, gen: sequence, start: 0}",           /*  8 */
    "      - {name: key, type: string, gen: choice, values: [a, b]}",   /*  9 */
    "operators:",                                                       /* 10 */
    "  - name: small",                                                  /* 11 */
    "    kind: filter",                                                 /* 12 */
    "    input: gen",                                                   /* 13 */
    "    where: \"id < 50\"",                                           /* 14 */
    "sinks:",                                                           /* 15 */
    "  - name: out",                                                    /* 16 */
    "    kind: print",                                                  /* 17 */
    "    input: small",                                                 /* 18 */
};
#define BASE_LINES ((int)(sizeof(base) / sizeof(base[0])))

typedef struct bad_case {
    const char *what;
    int         line;          /* the first base line to replace (1-based) */
    int         nlines;        /* how many (0 means 1) */
    const char *text;          /* their replacement; "" deletes them; may hold '\n' */
    int         err_line;      /* where the error must point */
    int         err_col;
    const char *reason;        /* must appear in the message */
} bad_case_t;

static const bad_case_t cases[] = {
    { "YAML syntax error", 12, 0, "    kind: filter: x",
      12, 17, "invalid nested block mapping on the same line" },
    { "unknown operator kind", 12, 0, "    kind: fliter",
      12, 11, "unknown operator kind 'fliter' (did you mean 'filter'?)" },
    { "missing required parameter", 14, 0, "",
      11, 5, "missing required parameter 'where'" },
    { "ill-typed parameter", 6, 0, "    count: many",
      6, 12, "parameter 'count' must be an integer, got 'many'" },
    { "unknown input", 13, 0, "    input: gne",
      13, 12, "input 'gne' is not a node of this job (did you mean 'gen'?)" },
    { "cycle", 13, 2, "    input: other\n    where: \"id < 50\"\n"
                      "  - {name: other, kind: filter, input: small, where: \"id > 1\"}",
      11, 5, "cycle: small -> other -> small" },
    { "bad expression", 14, 0, "    where: \"id < < 50\"",
      14, 18, "unexpected '<'" },
    { "unknown field in expression", 14, 0, "    where: \"amount > 5\"",
      14, 13, "amount" },
    { "undefined variable", 6, 0, "    count: ${N}",
      6, 12, "variable 'N' is not set" },
};

/* The base with lines line..line+nlines-1 replaced by text (new string). */
static char *
mutate(int line, int nlines, const char *text)
{
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);

    assert_non_null(out);
    if (nlines <= 0)
        nlines = 1;
    for (int i = 1; i <= BASE_LINES; i++) {
        const char *l = base[i - 1];

        if (i >= line && i < line + nlines) {
            if (i > line || *text == '\0')
                continue;
            l = text;
        }
        len += (size_t)snprintf(out + len, cap - len, "%s\n", l);
        assert_true(len < cap);
    }
    return out;
}

static void
test_bad_job_files_are_refused_with_position_and_reason(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 1, .slots = 2 });
    int failures = 0;
    json_t *doc;

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const bad_case_t *bc = &cases[k];
        char *yaml = mutate(bc->line, bc->nlines, bc->text), prefix[64];
        json_t *resp = NULL, *errors;
        const char *msg;
        long st;

        st = hc_submit(c, "bad.yaml", yaml, NULL, NULL, &resp);
        errors = json_object_get(resp, "errors");
        msg = json_string_value(json_array_get(errors, 0));
        snprintf(prefix, sizeof(prefix), "bad.yaml:%d:%d: ", bc->err_line, bc->err_col);
        if (st != 400 || msg == NULL || strncmp(msg, prefix, strlen(prefix)) != 0 ||
            strstr(msg, bc->reason) == NULL) {
            char *s = json_dumps(resp, 0);

            fprintf(stderr, "FAIL %s: HTTP %ld %s\n  want 400 and '%s...%s'\n", bc->what, st,
                    s ? s : "(no body)", prefix, bc->reason);
            free(s);
            failures++;
        } else {
            fprintf(stderr, "ok   %s: %s\n", bc->what, msg);
        }
        json_decref(resp);
        free(yaml);
    }
    assert_int_equal(failures, 0);

    /* none of them became a job or took a slot */
    doc = hc_get_json(c, "/jobs/overview", NULL);
    assert_true(json_is_array(json_object_get(doc, "jobs")));
    assert_int_equal(json_array_size(json_object_get(doc, "jobs")), 0);
    json_decref(doc);
    assert_int_equal(hc_overview_int(c, "slots-available"), 2);
    assert_int_equal(hc_overview_int(c, "jobs-failed"), 0);

    /* the unbroken file is fine */
    {
        char *yaml = mutate(0, 0, ""), jid[HC_JOB_ID_LEN + 1];

        hc_submit_ok(c, yaml, NULL, jid);
        json_decref(hc_wait_job(c, jid, "FINISHED", 30000));
        free(yaml);
    }
    hc_stop(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_bad_job_files_are_refused_with_position_and_reason,
                                  hc_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
