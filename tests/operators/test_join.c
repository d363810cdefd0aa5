/* tests/operators/test_join.c -- the regular keyed inner join. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "op_harness.h"

#include "runtime/graph/plan.h"
#include "state/keyed_state.h"

/* t: transactions, a: flagged accounts, joined on account */
static const char yaml_head[] =
    "name: j\n"
    "sources:\n"
    "  - {name: tx, kind: file, path: /nonexistent, schema: {account: int, tid: string, at: timestamp}}\n"
    "  - {name: flags, kind: file, path: /nonexistent, schema: {account: int, flagged: timestamp}}\n"
    "operators:\n"
    "  - name: join\n"
    "    kind: join\n"
    "    inputs: [{from: tx, as: t}, {from: flags, as: a}]\n"
    "    key_by: account\n";

typedef struct {
    weir_plan_t          *plan;
    weir_op_config_t     *cfg;
    weir_state_backend_t *state;
    weir_op_ctx_t         ctx;
    weir_op_t             op;
    weir_batch_t         *out;
    weir_err_t            err;
} jh_t;

static void
jh_open(jh_t *h, const char *ops_tail)
{
    char yaml[4096];
    int canceled = 0;

    (void)canceled;
    snprintf(yaml, sizeof(yaml), "%s%ssinks:\n  - {name: out, kind: print, input: join}\n",
             yaml_head, ops_tail);
    memset(h, 0, sizeof(*h));
    if (weir_plan_from_text("j.yaml", yaml, strlen(yaml), NULL, 1, &h->plan, &h->err) != 0)
        fail_msg("plan: %s", h->err.msg);
    h->cfg = &h->plan->configs[weir_jobfile_find(h->plan->jf, "join")];
    assert_int_equal(weir_state_backend_memory(0, 127, &h->state), 0);
    h->ctx.log_prefix = "[test]";
    h->ctx.parallelism = 1;
    h->ctx.max_parallelism = 128;
    h->ctx.kg_first = 0;
    h->ctx.kg_last = 127;
    h->ctx.state = h->state;
    h->op.cfg = h->cfg;
    h->op.ctx = &h->ctx;
    assert_int_equal(h->cfg->kind->open(&h->op, &h->err), 0);
    h->out = weir_batch_new(h->cfg->output_schema, 16);
}

static void
jh_close(jh_t *h)
{
    h->cfg->kind->close(&h->op);
    weir_batch_destroy(h->out);
    weir_state_backend_destroy(h->state);
    weir_plan_destroy(h->plan);
}

/* Feeds rows to input side and returns the formatted output rows. */
static void
jh_feed(jh_t *h, int side, const char *const *rows, const char *const *want)
{
    weir_batch_t *in = h_batch(h->cfg->input_schemas[side], rows);
    h_rows_t got = { 0 };

    weir_batch_clear(h->out);
    assert_int_equal(h->cfg->kind->process(&h->op, side, in, h->out, &h->err), 0);
    weir_batch_destroy(in);          /* the output must not borrow from it */
    h_rows_add_batch(&got, h->out);
    h_rows_expect(&got, want);
    h_rows_free(&got);
}

static void
test_join_emits_when_flag_arrives_after_transaction(void **unused)
{
    jh_t h;
    (void)unused;
    jh_open(&h, "    fields: [\"t.*\", {name: flagged, expr: a.flagged}]\n");
    jh_feed(&h, 0, (const char *const[]){ "1|x1|2024-01-02 00:00:00.000000",
                                          "2|x2|2024-01-02 00:00:00.000000", NULL },
            (const char *const[]){ NULL });
    jh_feed(&h, 1, (const char *const[]){ "1|2024-01-01 00:00:00.000000", NULL },
            (const char *const[]){ "1|x1|2024-01-02 00:00:00.000000|2024-01-01 00:00:00.000000", NULL });
    jh_close(&h);
}

static void
test_join_emits_when_transaction_arrives_after_flag(void **unused)
{
    jh_t h;
    (void)unused;
    jh_open(&h, "    fields: [\"t.*\"]\n");
    jh_feed(&h, 1, (const char *const[]){ "3|2024-01-01 00:00:00.000000", NULL },
            (const char *const[]){ NULL });
    jh_feed(&h, 0, (const char *const[]){ "3|x3|2024-01-05 00:00:00.000000",
                                          "4|x4|2024-01-05 00:00:00.000000",
                                          "3|x5|2024-01-06 00:00:00.000000", NULL },
            (const char *const[]){ "3|x3|2024-01-05 00:00:00.000000",
                                   "3|x5|2024-01-06 00:00:00.000000", NULL });
    jh_close(&h);
}

static void
test_join_condition_filters_matches(void **unused)
{
    jh_t h;
    (void)unused;
    jh_open(&h, "    where: t.at > a.flagged\n    fields: [t.tid]\n");
    jh_feed(&h, 0, (const char *const[]){ "1|before|2023-12-31 00:00:00.000000",
                                          "1|after|2024-02-01 00:00:00.000000", NULL },
            (const char *const[]){ NULL });
    jh_feed(&h, 1, (const char *const[]){ "1|2024-01-01 00:00:00.000000", NULL },
            (const char *const[]){ "after", NULL });
    /* a later transaction of the same account joins the stored flag */
    jh_feed(&h, 0, (const char *const[]){ "1|later|2024-03-01 00:00:00.000000",
                                          "1|earlier|2023-01-01 00:00:00.000000", NULL },
            (const char *const[]){ "later", NULL });
    jh_close(&h);
}

static void
test_join_default_output_rejects_colliding_names(void **unused)
{
    weir_plan_t *p = NULL;
    weir_err_t err = { 0 };
    char yaml[2048];

    (void)unused;
    snprintf(yaml, sizeof(yaml), "%ssinks:\n  - {name: out, kind: print, input: join}\n", yaml_head);
    assert_int_not_equal(weir_plan_from_text("j.yaml", yaml, strlen(yaml), NULL, 1, &p, &err), 0);
    assert_non_null(strstr(err.msg, "both inputs have a field 'account'"));
}

static void
test_join_errors_are_located(void **unused)
{
    static const struct { const char *tail, *needle; } cases[] = {
        { "    where: t.at > a.flaged\n    fields: [\"t.*\"]\n", "unknown field 'flaged' (did you mean 'flagged'?)" },
        { "    where: t.tid\n    fields: [\"t.*\"]\n", "'where' must be a bool expression" },
        { "    fields: [\"x.*\"]\n", "'x.*' names no input" },
        { "    fields: [t.tid, {name: tid, expr: a.account}]\n", "output field 'tid' is defined twice" },
    };
    (void)unused;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        weir_plan_t *p = NULL;
        weir_err_t err = { 0 };
        char yaml[2048];
        snprintf(yaml, sizeof(yaml), "%s%ssinks:\n  - {name: out, kind: print, input: join}\n",
                 yaml_head, cases[i].tail);
        assert_int_not_equal(weir_plan_from_text("j.yaml", yaml, strlen(yaml), NULL, 1, &p, &err), 0);
        if (strstr(err.msg, cases[i].needle) == NULL || strncmp(err.msg, "j.yaml:1", 8) != 0)
            fail_msg("case %zu: '%s' lacks '%s' or a j.yaml:line:col prefix", i, err.msg, cases[i].needle);
    }
}

static void
test_join_needs_key_by_and_two_inputs(void **unused)
{
    weir_plan_t *p = NULL;
    weir_err_t err = { 0 };
    const char *y =
        "name: j\nsources:\n"
        "  - {name: tx, kind: file, path: /x, schema: {account: int}}\n"
        "operators:\n  - {name: join, kind: join, input: tx, key_by: account}\n"
        "sinks:\n  - {name: out, kind: print, input: join}\n";
    (void)unused;
    assert_int_not_equal(weir_plan_from_text("j.yaml", y, strlen(y), NULL, 1, &p, &err), 0);
    assert_non_null(strstr(err.msg, "kind 'join' takes 2 inputs, got 1"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_join_emits_when_flag_arrives_after_transaction),
        cmocka_unit_test(test_join_emits_when_transaction_arrives_after_flag),
        cmocka_unit_test(test_join_condition_filters_matches),
        cmocka_unit_test(test_join_default_output_rejects_colliding_names),
        cmocka_unit_test(test_join_errors_are_located),
        cmocka_unit_test(test_join_needs_key_by_and_two_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
