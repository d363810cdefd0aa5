/* tests/operators/test_datagen.c -- the datagen source.
 *
 * What a job relies on: the rows are a pure function of the seed and the
 * row index, so a job run at parallelism 1 and at 3 (or with other batch
 * sizes) sees the same multiset of rows; `count` is split exactly between
 * subtasks by i % P; each generator does what its recipe says; the rate
 * limit never sleeps in poll but asks the runtime to idle; bad recipes are
 * errors at the right line and column.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <time.h>

#include "op_harness.h"

static const char *const mixed_yaml =
    "name: gen-test\n"
    "sources:\n"
    "  - name: gen\n"
    "    kind: datagen\n"
    "    count: 1000\n"
    "    seed: 7\n"
    "    fields:\n"
    "      - {name: id, type: int, gen: sequence, start: 1}\n"
    "      - {name: amount, type: double, gen: random, min: 1, max: 5000, decimals: 2}\n"
    "      - {name: kind, type: string, gen: choice, values: [online, pos, atm]}\n"
    "      - {name: code, type: string, gen: random, length: 6, chars: hex}\n"
    "      - {name: ts, type: timestamp, gen: sequence, start: '2024-01-01 00:00:00', step: 1m}\n"
    "      - {name: maybe, type: int, gen: random, min: -3, max: 3, null_rate: 0.5}\n"
    "      - {name: flag, type: bool, gen: random}\n";

/* All rows of a run at the given parallelism and poll size, sorted. */
static void
run_all(const char *yaml, int parallelism, int max, h_rows_t *rows)
{
    h_op_t h;

    h_configure_ok(&h, yaml, "gen", WEIR_ROLE_SOURCE, NULL);
    h_open(&h, parallelism);
    for (int s = 0; s < parallelism; s++)
        h_poll_all(&h, s, max, rows);
    h_close(&h);
    h_rows_sort(rows);
}

static void
test_datagen_same_rows_at_parallelism_1_and_3(void **unused)
{
    h_rows_t one = { 0 }, three = { 0 }, small = { 0 };

    run_all(mixed_yaml, 1, 1024, &one);
    run_all(mixed_yaml, 3, 1024, &three);
    run_all(mixed_yaml, 3, 7, &small);
    assert_int_equal(one.n, 1000);
    assert_int_equal(three.n, 1000);
    assert_int_equal(small.n, 1000);
    for (int i = 0; i < one.n; i++) {
        assert_string_equal(one.rows[i], three.rows[i]);
        assert_string_equal(one.rows[i], small.rows[i]);
    }
    /* and they are 1000 different rows (the ids differ) */
    for (int i = 1; i < one.n; i++)
        assert_true(strcmp(one.rows[i - 1], one.rows[i]) != 0);
    h_rows_free(&one);
    h_rows_free(&three);
    h_rows_free(&small);
}

static void
test_datagen_count_is_split_exactly_by_index(void **unused)
{
    static const char yaml[] =
        "name: t\n"
        "sources:\n"
        "  - name: gen\n"
        "    kind: datagen\n"
        "    count: 10\n"
        "    fields:\n"
        "      - {name: i, type: int}\n";
    static const char *const want0[] = { "0", "3", "6", "9", NULL };
    static const char *const want1[] = { "1", "4", "7", NULL };
    static const char *const want2[] = { "2", "5", "8", NULL };
    const char *const *want[] = { want0, want1, want2 };
    weir_batch_t *out;
    h_op_t h;

    h_configure_ok(&h, yaml, "gen", WEIR_ROLE_SOURCE, NULL);
    h_open(&h, 3);
    for (int s = 0; s < 3; s++) {
        h_rows_t rows = { 0 };
        h_poll_all(&h, s, 2, &rows);
        h_rows_expect(&rows, want[s]);
        h_rows_free(&rows);
    }
    /* polling past the end keeps saying end of stream, with no rows */
    out = weir_batch_new(h.cfg.output_schema, 4);
    for (int s = 0; s < 3; s++) {
        int64_t idle = 0;
        assert_int_equal(h.cfg.kind->poll(&h.op[s], out, 4, &idle, &h.err), WEIR_EOS);
        assert_int_equal(out->nrows, 0);
    }
    weir_batch_destroy(out);
    h_close(&h);

    /* count: 0 ends at once */
    static const char zero[] =
        "name: t\n"
        "sources:\n"
        "  - name: gen\n"
        "    kind: datagen\n"
        "    count: 0\n"
        "    fields: [{name: i, type: int}]\n";
    h_rows_t rows = { 0 };
    h_configure_ok(&h, zero, "gen", WEIR_ROLE_SOURCE, NULL);
    h_open(&h, 2);
    h_poll_all(&h, 0, 8, &rows);
    h_poll_all(&h, 1, 8, &rows);
    assert_int_equal(rows.n, 0);
    h_close(&h);
}

static void
test_datagen_generators_follow_their_recipe(void **unused)
{
    static const char yaml[] =
        "name: t\n"
        "sources:\n"
        "  - name: gen\n"
        "    kind: datagen\n"
        "    count: 2000\n"
        "    fields:\n"
        "      - {name: seq, type: int, gen: sequence, start: 10, step: 5}\n"
        "      - {name: ts, type: timestamp, start: '2024-01-01 00:00:00', step: 1500ms}\n"
        "      - {name: r, type: int, gen: random, min: -2, max: 2}\n"
        "      - {name: d, type: double, gen: random, min: 1, max: 2, decimals: 2}\n"
        "      - {name: c, type: string, gen: choice, values: [a, bb, ccc]}\n"
        "      - {name: k, type: string, gen: const, value: fixed}\n"
        "      - {name: s, type: string, length: 12}\n"
        "      - {name: n, type: double, gen: const, value: 2.5, null_rate: 0.25}\n"
        "      - {name: now, type: timestamp, gen: now}\n"
        "      - {name: ci, type: int, gen: choice, values: [7, 9]}\n";
    weir_batch_t *out;
    h_op_t h;
    int64_t idle = 0, t0 = 1704067200ll * 1000000, before, after;
    static const char *const choices[] = { "a", "bb", "ccc" };
    int seen_r[5] = { 0 }, seen_c[3] = { 0 }, nulls = 0, rc;

    h_configure_ok(&h, yaml, "gen", WEIR_ROLE_SOURCE, NULL);
    const weir_schema_t *s = h.cfg.output_schema;
    assert_int_equal(s->nfields, 10);
    assert_string_equal(s->fields[1].name, "ts");
    assert_int_equal(s->fields[1].type, WEIR_T_TIMESTAMP);
    assert_int_equal(s->fields[3].type, WEIR_T_DOUBLE);
    assert_int_equal(s->fields[4].type, WEIR_T_STRING);
    assert_false(s->fields[4].nullable);
    assert_true(s->fields[7].nullable);
    assert_int_equal(s->fields[9].type, WEIR_T_INT);

    h_open(&h, 1);
    out = weir_batch_new(h.cfg.output_schema, 4096);
    before = weir_now_us();
    rc = h.cfg.kind->poll(&h.op[0], out, 4096, &idle, &h.err);
    after = weir_now_us();
    assert_int_equal(rc, WEIR_EOS);
    assert_int_equal(out->nrows, 2000);
    for (int r = 0; r < out->nrows; r++) {
        const weir_value_t *v = weir_batch_row(out, r);
        assert_int_equal(v[0].u.i, 10 + 5 * r);
        assert_int_equal(v[1].type, WEIR_T_TIMESTAMP);
        assert_int_equal(v[1].u.i, t0 + (int64_t)r * 1500000);
        assert_true(v[2].u.i >= -2 && v[2].u.i <= 2);
        seen_r[v[2].u.i + 2]++;
        assert_true(v[3].u.d >= 1 && v[3].u.d <= 2);
        assert_true(fabs(v[3].u.d * 100 - round(v[3].u.d * 100)) < 1e-6);
        assert_true(v[4].len >= 1 && v[4].len <= 3);
        seen_c[v[4].len - 1]++;
        assert_memory_equal(v[4].u.s, choices[v[4].len - 1], v[4].len);
        assert_int_equal(v[5].len, 5);
        assert_memory_equal(v[5].u.s, "fixed", 5);
        assert_int_equal(v[6].len, 12);
        for (uint32_t k = 0; k < v[6].len; k++)
            assert_non_null(strchr("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
                                   v[6].u.s[k]));
        if (v[7].null)
            nulls++;
        else
            assert_true(v[7].u.d == 2.5);
        assert_true(v[8].u.i >= before && v[8].u.i <= after);
        assert_true(v[9].u.i == 7 || v[9].u.i == 9);
    }
    /* every outcome shows up, in plausible proportions */
    for (int i = 0; i < 5; i++)
        assert_true(seen_r[i] > 300 && seen_r[i] < 500);
    for (int i = 0; i < 3; i++)
        assert_true(seen_c[i] > 550 && seen_c[i] < 800);
    assert_true(nulls > 400 && nulls < 600);
    weir_batch_destroy(out);
    h_close(&h);
}

static void
test_datagen_seed_decides_the_random_values(void **unused)
{
    static const char fmt[] =
        "name: t\n"
        "sources:\n"
        "  - name: gen\n"
        "    kind: datagen\n"
        "    count: 50\n"
        "    seed: %d\n"
        "    fields:\n"
        "      - {name: x, type: int, gen: random, min: 0, max: 1000000000}\n"
        "      - {name: s, type: string, gen: random, length: 10}\n";
    char y1[512], y2[512];
    h_rows_t a = { 0 }, b = { 0 }, c = { 0 };
    int same = 0;

    snprintf(y1, sizeof(y1), fmt, 1);
    snprintf(y2, sizeof(y2), fmt, 2);
    run_all(y1, 1, 64, &a);
    run_all(y1, 2, 5, &b);
    run_all(y2, 1, 64, &c);
    assert_int_equal(a.n, 50);
    for (int i = 0; i < 50; i++)
        assert_string_equal(a.rows[i], b.rows[i]);
    for (int i = 0; i < 50; i++)
        same += strcmp(a.rows[i], c.rows[i]) == 0;
    assert_int_equal(same, 0);
    h_rows_free(&a);
    h_rows_free(&b);
    h_rows_free(&c);
}

static void
test_datagen_rate_token_bucket_asks_to_idle(void **unused)
{
    static const char yaml[] =
        "name: t\n"
        "sources:\n"
        "  - name: gen\n"
        "    kind: datagen\n"
        "    rate: 200\n"
        "    fields: [{name: i, type: int}]\n";
    struct timespec nap = { 0, 100 * 1000000 };
    weir_batch_t *out;
    int64_t idle = 0;
    uint64_t t0, t1;
    h_op_t h;
    int rc;

    h_configure_ok(&h, yaml, "gen", WEIR_ROLE_SOURCE, NULL);
    h_open(&h, 2);                 /* 100 rows/s per subtask */
    out = weir_batch_new(h.cfg.output_schema, 1024);

    /* nothing banked yet: no rows, and a hint of about one row's time */
    t0 = weir_mono_ns();
    rc = h.cfg.kind->poll(&h.op[0], out, 1024, &idle, &h.err);
    t1 = weir_mono_ns();
    assert_int_equal(rc, 0);
    assert_int_equal(out->nrows, 0);
    assert_true(idle > 0 && idle <= 10000);
    assert_true(t1 - t0 < 5000000);             /* it did not sleep */

    /* after 100 ms about 10 rows are due (at most 10 are banked) */
    nanosleep(&nap, NULL);
    rc = h.cfg.kind->poll(&h.op[0], out, 1024, &idle, &h.err);
    assert_int_equal(rc, 0);
    assert_true(out->nrows >= 5 && out->nrows <= 10);
    /* ids of subtask 0 of 2: 0, 2, 4, ... */
    for (int r = 0; r < out->nrows; r++)
        assert_int_equal(weir_batch_row(out, r)[0].u.i, 2 * r);

    /* spent: asks to idle again */
    weir_batch_clear(out);
    idle = 0;
    rc = h.cfg.kind->poll(&h.op[0], out, 1024, &idle, &h.err);
    assert_int_equal(rc, 0);
    assert_true(out->nrows <= 1);
    if (out->nrows == 0)
        assert_true(idle > 0);

    /* max is respected even with tokens banked */
    nanosleep(&nap, NULL);
    weir_batch_clear(out);
    rc = h.cfg.kind->poll(&h.op[0], out, 3, &idle, &h.err);
    assert_int_equal(rc, 0);
    assert_int_equal(out->nrows, 3);
    weir_batch_destroy(out);
    h_close(&h);
}

static void
test_datagen_unbounded_keeps_going(void **unused)
{
    static const char yaml[] =
        "name: t\n"
        "sources:\n"
        "  - name: gen\n"
        "    kind: datagen\n"
        "    fields: [{name: i, type: int}]\n";
    weir_batch_t *out;
    int64_t idle = 0;
    h_op_t h;

    h_configure_ok(&h, yaml, "gen", WEIR_ROLE_SOURCE, NULL);
    h_open(&h, 1);
    out = weir_batch_new(h.cfg.output_schema, 1024);
    for (int p = 0; p < 5; p++) {
        weir_batch_clear(out);
        assert_int_equal(h.cfg.kind->poll(&h.op[0], out, 1000, &idle, &h.err), 0);
        assert_int_equal(out->nrows, 1000);
        assert_int_equal(weir_batch_row(out, 999)[0].u.i, p * 1000 + 999);
    }
    weir_batch_destroy(out);
    h_close(&h);
}

static void
expect_config_error(const char *field_line, const char *needle, const char *part)
{
    char yaml[1024];
    h_op_t h;

    snprintf(yaml, sizeof(yaml),
             "name: t\n"
             "sources:\n"
             "  - name: gen\n"
             "    kind: datagen\n"
             "    count: 5\n"
             "    fields:\n"
             "      - {name: ok, type: int}\n"
             "      %s\n",
             field_line);
    assert_int_not_equal(h_configure(&h, yaml, "gen", WEIR_ROLE_SOURCE, NULL), 0);
    h_expect_error_at(&h.err, yaml, needle, part);
    h_close(&h);
}

static void
test_datagen_bad_recipes_are_located_errors(void **unused)
{
    expect_config_error("- {name: x, type: int, gen: sequense}", "sequense",
                        "did you mean 'sequence'");
    expect_config_error("- {name: x, type: integr}", "integr", "unknown type");
    expect_config_error("- {name: x, type: int, gen: now}", "now}", "timestamp");
    expect_config_error("- {name: x, type: int, gen: random, min: 5, max: 1}", "1}", "'max'");
    expect_config_error("- {name: x, type: int, gen: choice, values: [1, two]}", "[1, two]",
                        "'two' is not of type int");
    expect_config_error("- {name: x, type: int, gen: random, values: [1]}", "values",
                        "unknown parameter 'values'");
    expect_config_error("- {name: ok, type: double}", "ok, type: double", "twice");
    expect_config_error("- {name: x, type: timestamp, start: yesterday}", "yesterday",
                        "expected a timestamp");
    expect_config_error("- {name: x, type: int, null_rate: 2}", "2}", "null_rate");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_datagen_same_rows_at_parallelism_1_and_3),
        cmocka_unit_test(test_datagen_count_is_split_exactly_by_index),
        cmocka_unit_test(test_datagen_generators_follow_their_recipe),
        cmocka_unit_test(test_datagen_seed_decides_the_random_values),
        cmocka_unit_test(test_datagen_rate_token_bucket_asks_to_idle),
        cmocka_unit_test(test_datagen_unbounded_keeps_going),
        cmocka_unit_test(test_datagen_bad_recipes_are_located_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
