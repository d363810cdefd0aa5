/* tests/core/test_expr.c -- the expression engine at its limits.
 *
 * tests/core/test_expression.c covers the language operator by operator;
 * this file covers what keeps the engine safe and cheap when the input is
 * hostile or the load is high: the bounds on nesting and tree depth (job
 * files arrive over HTTP, and evaluation recurses over the tree), the
 * most negative integer literal, eval_bool's per-thread scratch arena for
 * predicates that build strings (correct on several threads at once, and
 * allocation-free once warm), the text of string(double), coalesce's typing
 * across arguments, and weir_duration_parse's exact arithmetic and its
 * WEIR_ERANGE, which the job file layer turns into "out of range".
 *
 * malloc/calloc/realloc are wrapped with the linker's --wrap (see
 * tests/core/meson.build) to count allocations.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/core/arena.h"
#include "runtime/core/error.h"
#include "runtime/core/expr.h"
#include "runtime/core/schema.h"
#include "runtime/core/value.h"

/* ---- allocation counting ------------------------------------------------ */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static _Atomic long nallocs;

void *__wrap_malloc(size_t n) { nallocs++; return __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { nallocs++; return __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { nallocs++; return __real_realloc(p, n); }

/* ---- fixture: one input {qty int, name string?, amount double, ok bool, ni int?} */

enum { C_QTY, C_NAME, C_AMOUNT, C_OK, C_NI, NF };

static weir_schema_t *schema;
static weir_expr_input_t in[1];
static weir_value_t row[NF];
static const weir_value_t *rows[1] = { row };
static weir_arena_t arena;

static int
group_setup(void **state)
{
    if ((schema = weir_schema_new(NF)) == NULL ||
        weir_schema_set(schema, C_QTY, "qty", WEIR_T_INT, false) != 0 ||
        weir_schema_set(schema, C_NAME, "name", WEIR_T_STRING, true) != 0 ||
        weir_schema_set(schema, C_AMOUNT, "amount", WEIR_T_DOUBLE, false) != 0 ||
        weir_schema_set(schema, C_OK, "ok", WEIR_T_BOOL, false) != 0 ||
        weir_schema_set(schema, C_NI, "ni", WEIR_T_INT, true) != 0)
        return -1;
    in[0].alias = NULL;
    in[0].schema = schema;
    weir_arena_init(&arena, 1024);
    return 0;
}

static int
group_teardown(void **state)
{
    weir_arena_free(&arena);
    weir_schema_unref(schema);
    return 0;
}

static int
setup(void **state)
{
    row[C_QTY] = weir_value_int(3);
    row[C_NAME] = weir_value_str("Alice", 5);
    row[C_AMOUNT] = weir_value_double(1500.5);
    row[C_OK] = weir_value_bool(true);
    row[C_NI] = weir_value_null(WEIR_T_INT);
    weir_arena_reset(&arena);
    return 0;
}

static weir_expr_t *
compile_(const char *src, int line)
{
    weir_expr_t *e = NULL;
    weir_err_t err;

    memset(&err, 0, sizeof(err));
    if (weir_expr_parse(src, in, 1, &e, NULL, &err) != 0) {
        print_error("line %d: parse of \"%.60s\" failed: %s\n", line, src, err.msg);
        fail();
    }
    return e;
}
#define compile(src) compile_((src), __LINE__)

static weir_value_t
eval_(const char *src, int line)
{
    weir_expr_t *e = compile_(src, line);
    weir_value_t v;

    assert_int_equal(weir_expr_eval(e, rows, &arena, &v), 0);
    weir_expr_destroy(e);
    return v;
}

static void
expect_str_(const char *src, const char *want, int line)
{
    weir_value_t v = eval_(src, line);

    if (v.null || v.type != WEIR_T_STRING || v.len != strlen(want) || memcmp(v.u.s, want, v.len) != 0) {
        print_error("line %d: \"%s\" = '%.*s' (null %d, type %d), expected '%s'\n", line, src,
                    v.null ? 0 : (int)v.len, v.null ? "" : v.u.s, v.null, v.type, want);
        fail();
    }
}
#define expect_str(src, want) expect_str_((src), (want), __LINE__)

static void
expect_int_(const char *src, int64_t want, int line)
{
    weir_value_t v = eval_(src, line);

    if (v.null || v.type != WEIR_T_INT || v.u.i != want) {
        print_error("line %d: \"%s\" = %lld (null %d, type %d), expected %lld\n", line, src,
                    (long long)v.u.i, v.null, v.type, (long long)want);
        fail();
    }
}
#define expect_int(src, want) expect_int_((src), (want), __LINE__)

static void
expect_double_(const char *src, double want, int line)
{
    weir_value_t v = eval_(src, line);

    if (v.null || v.type != WEIR_T_DOUBLE || v.u.d != want) {
        print_error("line %d: \"%s\" = %.17g (null %d, type %d), expected %.17g\n", line, src,
                    v.u.d, v.null, v.type, want);
        fail();
    }
}
#define expect_double(src, want) expect_double_((src), (want), __LINE__)

static void
expect_error_(const char *src, int code, const char *msg, size_t off, int line)
{
    weir_expr_t *e = NULL;
    weir_err_t err;
    size_t got_off = 12345;
    int rc;

    memset(&err, 0, sizeof(err));
    rc = weir_expr_parse(src, in, 1, &e, &got_off, &err);
    if (rc != code || err.code != code || strcmp(err.msg, msg) != 0 || got_off != off) {
        print_error("line %d: \"%.60s\": rc %d offset %zu \"%s\"; expected rc %d offset %zu \"%s\"\n",
                    line, src, rc, got_off, err.msg, code, off, msg);
        if (rc == 0)
            weir_expr_destroy(e);
        fail();
    }
}
#define expect_error(src, code, msg, off) expect_error_((src), (code), (msg), (off), __LINE__)

/* "<item><sep><item>...<sep><last>" with n items in a new string */
static char *
repeat(const char *item, const char *sep, int n, const char *last)
{
    size_t li = strlen(item), ls = strlen(sep), ll = strlen(last);
    char *s = malloc((size_t)n * (li + ls) + ll + 1), *p = s;

    assert_non_null(s);
    for (int i = 0; i < n; i++) {
        memcpy(p, item, li);
        p += li;
        memcpy(p, sep, ls);
        p += ls;
    }
    memcpy(p, last, ll + 1);
    return s;
}

/* ---- depth and nesting bounds ---------------------------------------------- */

static void
test_expr_operator_chain_up_to_256_levels_parses_and_evaluates(void **state)
{
    char *src = repeat("1", "+", 255, "1");     /* 256 terms: a left-deep tree 256 deep */

    expect_int(src, 256);
    free(src);
}

static void
test_expr_operator_chain_deeper_than_256_is_refused_at_its_operator(void **state)
{
    /* 257 terms: the 256th '+' (byte 511) would make the tree 257 deep, and
     * evaluation recurses once per level */
    char *src = repeat("1", "+", 256, "1");

    expect_error(src, WEIR_EPARSE, "column 512: expression nested too deeply (more than 256 levels)", 511);
    free(src);
    src = repeat("1", "+", 100000, "1");       /* far beyond: still an error, not a crash */
    expect_error(src, WEIR_EPARSE, "column 512: expression nested too deeply (more than 256 levels)", 511);
    free(src);
}

static void
test_expr_not_chain_is_bounded_at_the_not_that_goes_too_deep(void **state)
{
    char *src = repeat("not", " ", 126, "ok");  /* the top level plus 126 'not's: fine */
    weir_expr_t *e = compile(src);

    assert_int_equal(weir_expr_eval_bool(e, rows), 1);          /* an even count of nots */
    weir_expr_destroy(e);
    free(src);
    src = repeat("not", " ", 50000, "ok");      /* the 128th 'not' starts at byte 127 * 4 */
    expect_error(src, WEIR_EPARSE, "column 509: expression nested too deeply (more than 128 levels)", 508);
    free(src);
}

static void
test_expr_unary_minus_chain_is_bounded(void **state)
{
    char *src = repeat("-", " ", 126, "qty");

    expect_int(src, 3);
    free(src);
    src = repeat("-", "", 100000, "1");
    expect_error(src, WEIR_EPARSE, "column 128: expression nested too deeply (more than 128 levels)", 127);
    free(src);
}

static void
test_expr_parentheses_are_bounded(void **state)
{
    char *open = repeat("(", "", 126, "qty"), *src;
    char close[130];

    memset(close, ')', 126);
    close[126] = '\0';
    src = malloc(strlen(open) + sizeof(close));
    assert_non_null(src);
    strcpy(src, open);
    strcat(src, close);
    expect_int(src, 3);                         /* 127 levels with the top one */
    free(src);
    free(open);
    src = repeat("(", "", 200, "1");            /* level 129 opens at byte 128 */
    expect_error(src, WEIR_EPARSE, "column 129: expression nested too deeply (more than 128 levels)", 128);
    free(src);
}

static void
test_expr_nested_function_calls_are_bounded(void **state)
{
    char *src = repeat("abs(", "", 300, "qty");

    /* each call is a level of nesting and of the tree */
    expect_error(src, WEIR_EPARSE, "column 513: expression nested too deeply (more than 128 levels)", 512);
    free(src);
}

/* ---- literals -------------------------------------------------------------- */

static void
test_expr_most_negative_literal_needs_its_minus(void **state)
{
    expect_int("- 9223372036854775808", INT64_MIN);
    expect_int("-9223372036854775808 + 1", INT64_MIN + 1);
    expect_int("--9223372036854775808", INT64_MIN);             /* negating it wraps */
    expect_error("9223372036854775808", WEIR_EPARSE, "column 1: integer literal out of range", 0);
    expect_error("1 - 9223372036854775808", WEIR_EPARSE, "column 5: integer literal out of range", 4);
    expect_error("-9223372036854775809", WEIR_EPARSE, "column 2: integer literal out of range", 1);
    expect_error("-09223372036854775808", WEIR_EPARSE, "column 2: integer literal out of range", 1);
}

/* ---- eval_bool's scratch arena ------------------------------------------------ */

static void
test_expr_eval_bool_string_predicates_allocate_nothing_when_warm(void **state)
{
    weir_expr_t *e = compile("lower(name) || string(qty) == 'alice3' and upper(name) starts_with 'ALI'");
    long before;

    assert_int_equal(weir_expr_eval_bool(e, rows), 1);          /* warms this thread's arena */
    before = nallocs;
    for (int i = 0; i < 10000; i++) {
        row[C_QTY] = weir_value_int(i % 5);
        assert_int_equal(weir_expr_eval_bool(e, rows), i % 5 == 3);
    }
    assert_int_equal(nallocs - before, 0);
    weir_expr_destroy(e);
}

typedef struct {
    const weir_expr_t *e;
    int                id;
    int                wrong;
} worker_t;

static void *
worker(void *arg)
{
    worker_t *w = arg;
    char name[32];
    weir_value_t r[NF];
    const weir_value_t *rs[1] = { r };

    /* each thread its own rows; the expression is shared, read-only */
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(name, sizeof(name), "%c%d-%d", i % 2 ? 'W' : 'X', w->id, i);
        r[C_QTY] = weir_value_int(i);
        r[C_NAME] = weir_value_str(name, (uint32_t)n);
        r[C_AMOUNT] = weir_value_double(0);
        r[C_OK] = weir_value_bool(false);
        r[C_NI] = weir_value_null(WEIR_T_INT);
        if (weir_expr_eval_bool(w->e, rs) != i % 2)
            w->wrong++;
    }
    return NULL;
}

static void
test_expr_eval_bool_string_predicates_are_safe_on_many_threads(void **state)
{
    /* true exactly when the name starts with 'W': the lowered name must
     * equal 'w' glued to the rest of it; every thread builds these strings
     * in its own scratch arena at the same time */
    weir_expr_t *e = compile("lower(name) == 'w' || substr(name, 2) and length(lower(name)) > 2");
    pthread_t th[4];
    worker_t w[4];

    for (int i = 0; i < 4; i++) {
        w[i].e = e;
        w[i].id = i;
        w[i].wrong = 0;
        assert_int_equal(pthread_create(&th[i], NULL, worker, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(w[i].wrong, 0);
    }
    weir_expr_destroy(e);
}

static void
test_expr_eval_bool_null_from_a_string_predicate_is_false(void **state)
{
    weir_expr_t *e = compile("lower(name) == 'alice'");

    assert_int_equal(weir_expr_eval_bool(e, rows), 1);
    row[C_NAME] = weir_value_null(WEIR_T_STRING);
    assert_int_equal(weir_expr_eval_bool(e, rows), 0);
    weir_expr_destroy(e);
}

/* ---- string(double) and coalesce ---------------------------------------------- */

static void
test_expr_string_of_double_says_double(void **state)
{
    /* like Java's Double.toString: integral values keep ".0", non-finite
     * values are spelled out, and double('...') reads every one back */
    expect_str("string(3.0)", "3.0");
    expect_str("string(-0.0)", "-0.0");
    expect_str("string(amount * 2)", "3001.0");
    expect_str("string(1e300)", "1e+300");
    expect_str("string(amount / 0)", "Infinity");
    expect_str("string(-amount / 0)", "-Infinity");
    expect_str("string(0.0 / 0)", "NaN");
    expect_double("double(string(0.1 + 0.2))", 0.1 + 0.2);
    expect_double("double(string(amount / 0))", INFINITY);
}

static void
test_expr_coalesce_type_is_settled_across_all_arguments(void **state)
{
    weir_expr_t *e = compile("coalesce(null, ni, 2.5)");

    assert_int_equal(weir_expr_type(e), WEIR_T_DOUBLE);
    assert_false(weir_expr_nullable(e));
    weir_expr_destroy(e);
    expect_double("coalesce(null, ni, 2.5)", 2.5);
    row[C_NI] = weir_value_int(7);
    expect_double("coalesce(null, ni, 2.5)", 7.0);          /* the int is promoted */
    expect_int("coalesce(null, null, qty)", 3);
    expect_error("coalesce(ni, 1.5, name)", WEIR_ETYPE,
                 "column 19: coalesce() arguments differ: double and string", 18);
    expect_error("coalesce(name, null, ok)", WEIR_ETYPE,
                 "column 22: coalesce() arguments differ: string and bool", 21);
}

/* ---- durations ----------------------------------------------------------------- */

static void
test_duration_fractions_are_exact_and_truncate_below_a_microsecond(void **state)
{
    static const struct { const char *s; int64_t us; } ok[] = {
        { "1.5m", 90000000 }, { "0.001ms", 1 }, { "0.0005ms", 0 }, { "2.25h", 8100000000LL },
        { "0.1s", 100000 }, { " 5 s ", 5000000 }, { "1.5", 1500 },
        { "0.000000000000000000000001d", 0 },
        { "9223372036854775807us", INT64_MAX }, { "106751991d", 106751991LL * 86400000000LL },
        { "2562047788h", 2562047788LL * 3600000000LL }, { "9223372036854775807.9us", INT64_MAX },
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t us = -1;
        int rc = weir_duration_parse(ok[i].s, &us);
        if (rc != 0 || us != ok[i].us) {
            print_error("'%s': rc %d, %lld us, expected %lld\n", ok[i].s, rc, (long long)us,
                        (long long)ok[i].us);
            fail();
        }
    }
}

static void
test_duration_beyond_int64_microseconds_is_erange(void **state)
{
    static const char *const big[] = {
        "9223372036854775808us", "106751992d", "200000000d", "99999999999999999999",
        "9223372036854775807.5ms", "2562047789h",
    };

    /* the job file layer reports WEIR_ERANGE as "parameter 'x' is out of range" */
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
        int64_t us = -1;
        int rc = weir_duration_parse(big[i], &us);
        if (rc != WEIR_ERANGE || us != -1) {
            print_error("'%s': rc %d, %lld us; expected WEIR_ERANGE and no output\n", big[i], rc,
                        (long long)us);
            fail();
        }
    }
}

static void
test_duration_malformed_numbers_are_eparse(void **state)
{
    static const char *const bad[] = { "1.s", ".5s", "1..5s", "1.5.5s", "1e3s", "inf", "nan", "1 5s", "5 m s" };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t us = -1;
        int rc = weir_duration_parse(bad[i], &us);
        if (rc != WEIR_EPARSE || us != -1) {
            print_error("'%s': rc %d, %lld us; expected WEIR_EPARSE\n", bad[i], rc, (long long)us);
            fail();
        }
    }
}

int
main(void)
{
#define T(t) cmocka_unit_test_setup(t, setup)
    const struct CMUnitTest tests[] = {
        T(test_expr_operator_chain_up_to_256_levels_parses_and_evaluates),
        T(test_expr_operator_chain_deeper_than_256_is_refused_at_its_operator),
        T(test_expr_not_chain_is_bounded_at_the_not_that_goes_too_deep),
        T(test_expr_unary_minus_chain_is_bounded),
        T(test_expr_parentheses_are_bounded),
        T(test_expr_nested_function_calls_are_bounded),
        T(test_expr_most_negative_literal_needs_its_minus),
        T(test_expr_eval_bool_string_predicates_allocate_nothing_when_warm),
        T(test_expr_eval_bool_string_predicates_are_safe_on_many_threads),
        T(test_expr_eval_bool_null_from_a_string_predicate_is_false),
        T(test_expr_string_of_double_says_double),
        T(test_expr_coalesce_type_is_settled_across_all_arguments),
        T(test_duration_fractions_are_exact_and_truncate_below_a_microsecond),
        T(test_duration_beyond_int64_microseconds_is_erange),
        T(test_duration_malformed_numbers_are_eparse),
    };
#undef T
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
