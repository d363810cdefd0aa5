/* tests/core/test_expression.c -- the expression language of filter, map and
 * joins, checked the way a reviewer would: value by value.
 *
 * Every operator and function in expr.h's grammar comment is evaluated over a
 * fixed row whose values were chosen so that a wrong operator, a swapped
 * operand or a lost conversion gives a different answer (qty is 3, not 1 or
 * 2; the timestamp has non-zero microseconds). The SQL NULL rules are tested
 * case by case (Kleene and/or, NULL-propagating comparisons and arithmetic,
 * in-lists holding NULL), as are the Java-long wrap of + - * and the NULL of
 * integer division by zero. Parse errors are checked by their exact message,
 * column and byte offset, because a person reads them in a job file.
 *
 * Expected timestamps were computed independently with Python's datetime.
 * Two properties are checked with instruments rather than examples:
 * evaluation allocates nothing (malloc/calloc/realloc are wrapped with the
 * linker's --wrap, see tests/core/meson.build), and a result whose static
 * nullability is false is never NULL whatever the row holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/core/arena.h"
#include "runtime/core/error.h"
#include "runtime/core/expr.h"
#include "runtime/core/schema.h"
#include "runtime/core/value.h"

/* ---- allocation counting (linked with -Wl,--wrap=malloc etc.) ------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static long nallocs;                  /* calls since the last reset */

void *__wrap_malloc(size_t n) { nallocs++; return __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { nallocs++; return __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { nallocs++; return __real_realloc(p, n); }

/* ---- fixture ------------------------------------------------------------- */

/* cmocka 1.1 prints integers in hex; this prints int64 values in decimal. */
#define assert_i64_equal(a, b)                                                   \
    do {                                                                         \
        int64_t a_ = (a), b_ = (b);                                              \
        if (a_ != b_) {                                                          \
            print_error("%s = %lld, expected %lld\n", #a, (long long)a_,         \
                        (long long)b_);                                          \
            fail();                                                              \
        }                                                                        \
    } while (0)

enum {
    C_AMOUNT, C_QTY, C_NAME, C_MTYPE, C_TS, C_NTS, C_FLAG, C_OK, C_NI, C_ND,
    C_RAW, C_EMAIL, C_NS, C_BIG, NF
};

static const struct {
    const char *name;
    weir_type_t type;
    bool        nullable;
} single_fields[NF] = {
    [C_AMOUNT] = { "amount", WEIR_T_DOUBLE, false },
    [C_QTY] = { "qty", WEIR_T_INT, false },
    [C_NAME] = { "name", WEIR_T_STRING, true },
    [C_MTYPE] = { "merchant_type", WEIR_T_STRING, false },
    [C_TS] = { "ts", WEIR_T_TIMESTAMP, false },
    [C_NTS] = { "nts", WEIR_T_TIMESTAMP, true },
    [C_FLAG] = { "flag", WEIR_T_BOOL, true },
    [C_OK] = { "ok", WEIR_T_BOOL, false },
    [C_NI] = { "ni", WEIR_T_INT, true },
    [C_ND] = { "nd", WEIR_T_DOUBLE, true },
    [C_RAW] = { "raw", WEIR_T_BYTES, false },
    [C_EMAIL] = { "email", WEIR_T_STRING, true },
    [C_NS] = { "ns", WEIR_T_STRING, true },
    [C_BIG] = { "big", WEIR_T_INT, false },
};

/* 2024-03-01 12:34:56.789012 UTC */
#define TS_ROW 1709296496789012LL

static weir_schema_t *single_schema, *left_schema, *right_schema;
static weir_expr_input_t single_in[1], join_in[2];
static weir_value_t row[NF], left_row[4], right_row[4];
static const weir_value_t *single_rows[1] = { row };
static const weir_value_t *join_rows[2] = { left_row, right_row };
static weir_arena_t arena;

/* what the expect_* helpers parse against and evaluate over */
static const weir_expr_input_t *cur_in;
static int cur_nin;
static const weir_value_t *const *cur_rows;

static int
group_setup(void **state)
{
    single_schema = weir_schema_new(NF);
    if (single_schema == NULL)
        return -1;
    for (int i = 0; i < NF; i++)
        if (weir_schema_set(single_schema, i, single_fields[i].name, single_fields[i].type,
                            single_fields[i].nullable) != 0)
            return -1;
    single_in[0].alias = NULL;
    single_in[0].schema = single_schema;

    left_schema = weir_schema_new(4);
    right_schema = weir_schema_new(4);
    if (left_schema == NULL || right_schema == NULL)
        return -1;
    if (weir_schema_set(left_schema, 0, "id", WEIR_T_INT, false) != 0 ||
        weir_schema_set(left_schema, 1, "x", WEIR_T_INT, false) != 0 ||
        weir_schema_set(left_schema, 2, "amount", WEIR_T_DOUBLE, false) != 0 ||
        weir_schema_set(left_schema, 3, "name", WEIR_T_STRING, true) != 0 ||
        weir_schema_set(right_schema, 0, "id", WEIR_T_INT, false) != 0 ||
        weir_schema_set(right_schema, 1, "x", WEIR_T_INT, false) != 0 ||
        weir_schema_set(right_schema, 2, "flag", WEIR_T_BOOL, false) != 0 ||
        weir_schema_set(right_schema, 3, "score", WEIR_T_DOUBLE, true) != 0)
        return -1;
    join_in[0].alias = "t";
    join_in[0].schema = left_schema;
    join_in[1].alias = "a";
    join_in[1].schema = right_schema;
    weir_arena_init(&arena, 4096);
    return 0;
}

static int
group_teardown(void **state)
{
    weir_schema_unref(single_schema);
    weir_schema_unref(left_schema);
    weir_schema_unref(right_schema);
    weir_arena_free(&arena);
    return 0;
}

static void
fill_rows(void)
{
    row[C_AMOUNT] = weir_value_double(1500.5);
    row[C_QTY] = weir_value_int(3);
    row[C_NAME] = weir_value_str("Alice", 5);
    row[C_MTYPE] = weir_value_str("online", 6);
    row[C_TS] = weir_value_ts(TS_ROW);
    row[C_NTS] = weir_value_null(WEIR_T_TIMESTAMP);
    row[C_FLAG] = weir_value_null(WEIR_T_BOOL);
    row[C_OK] = weir_value_bool(true);
    row[C_NI] = weir_value_null(WEIR_T_INT);
    row[C_ND] = weir_value_null(WEIR_T_DOUBLE);
    row[C_RAW] = weir_value_bytes("a\xc3\xa9", 3);
    row[C_EMAIL] = weir_value_null(WEIR_T_STRING);
    row[C_NS] = weir_value_null(WEIR_T_STRING);
    row[C_BIG] = weir_value_int(INT64_MAX);

    left_row[0] = weir_value_int(7);
    left_row[1] = weir_value_int(10);
    left_row[2] = weir_value_double(99.5);
    left_row[3] = weir_value_str("left", 4);
    right_row[0] = weir_value_int(7);
    right_row[1] = weir_value_int(32);
    right_row[2] = weir_value_bool(true);
    right_row[3] = weir_value_null(WEIR_T_DOUBLE);
}

/* Per test: fresh rows, empty arena, single input. */
static int
setup_single(void **state)
{
    fill_rows();
    weir_arena_reset(&arena);
    cur_in = single_in;
    cur_nin = 1;
    cur_rows = single_rows;
    return 0;
}

static int
setup_join(void **state)
{
    setup_single(state);
    cur_in = join_in;
    cur_nin = 2;
    cur_rows = join_rows;
    return 0;
}

/* ---- helpers ----------------------------------------------------------------- */

/* Parses src against the current inputs; fails the test on error. */
static weir_expr_t *
compile_(const char *src, int line)
{
    weir_err_t err;
    weir_expr_t *e = NULL;
    size_t off = 0;
    int rc;

    memset(&err, 0, sizeof(err));
    rc = weir_expr_parse(src, cur_in, cur_nin, &e, &off, &err);
    if (rc != 0 || e == NULL) {
        print_error("line %d: parse of \"%s\" failed: rc %d: %s\n", line, src, rc, err.msg);
        fail();
    }
    return e;
}
#define compile(src) compile_((src), __LINE__)

/* Parses and evaluates src; the caller checks *out and destroys the result. */
static weir_expr_t *
run_(const char *src, weir_value_t *out, int line)
{
    weir_expr_t *e = compile_(src, line);
    int rc;

    memset(out, 0x5a, sizeof(*out));
    rc = weir_expr_eval(e, cur_rows, &arena, out);
    if (rc != 0) {
        print_error("line %d: eval of \"%s\" failed: rc %d\n", line, src, rc);
        weir_expr_destroy(e);
        fail();
    }
    return e;
}

static void
expect_ok_type(const char *src, const weir_value_t *v, weir_type_t t, int line)
{
    if (v->null) {
        print_error("line %d: \"%s\" is NULL, expected a %s\n", line, src, weir_type_name(t));
        fail();
    }
    if (v->type != t) {
        print_error("line %d: \"%s\" has type %s, expected %s\n", line, src,
                    weir_type_name((weir_type_t)v->type), weir_type_name(t));
        fail();
    }
}

static void
expect_int_(const char *src, int64_t want, int line)
{
    weir_value_t v;
    weir_expr_t *e = run_(src, &v, line);

    weir_expr_destroy(e);
    expect_ok_type(src, &v, WEIR_T_INT, line);
    if (v.u.i != want) {
        print_error("line %d: \"%s\" = %lld, expected %lld\n", line, src, (long long)v.u.i,
                    (long long)want);
        fail();
    }
}
#define expect_int(src, want) expect_int_((src), (want), __LINE__)

static void
expect_ts_(const char *src, int64_t want, int line)
{
    weir_value_t v;
    weir_expr_t *e = run_(src, &v, line);

    weir_expr_destroy(e);
    expect_ok_type(src, &v, WEIR_T_TIMESTAMP, line);
    if (v.u.i != want) {
        char got[32], exp[32];
        weir_ts_format(v.u.i, got);
        weir_ts_format(want, exp);
        print_error("line %d: \"%s\" = %lld (%s), expected %lld (%s)\n", line, src,
                    (long long)v.u.i, got, (long long)want, exp);
        fail();
    }
}
#define expect_ts(src, want) expect_ts_((src), (want), __LINE__)

static void
expect_double_(const char *src, double want, int line)
{
    weir_value_t v;
    weir_expr_t *e = run_(src, &v, line);

    weir_expr_destroy(e);
    expect_ok_type(src, &v, WEIR_T_DOUBLE, line);
    if (isnan(want) ? !isnan(v.u.d) : (v.u.d != want || signbit(v.u.d) != signbit(want))) {
        print_error("line %d: \"%s\" = %.17g, expected %.17g\n", line, src, v.u.d, want);
        fail();
    }
}
#define expect_double(src, want) expect_double_((src), (want), __LINE__)

static void
expect_bool_(const char *src, bool want, int line)
{
    weir_value_t v;
    weir_expr_t *e = run_(src, &v, line);

    weir_expr_destroy(e);
    expect_ok_type(src, &v, WEIR_T_BOOL, line);
    if (v.u.b != want) {
        print_error("line %d: \"%s\" = %s, expected %s\n", line, src, v.u.b ? "true" : "false",
                    want ? "true" : "false");
        fail();
    }
}
#define expect_true(src) expect_bool_((src), true, __LINE__)
#define expect_false(src) expect_bool_((src), false, __LINE__)

static void
expect_null_(const char *src, weir_type_t t, int line)
{
    weir_value_t v;
    weir_expr_t *e = run_(src, &v, line);

    weir_expr_destroy(e);
    if (!v.null) {
        print_error("line %d: \"%s\" is not NULL\n", line, src);
        fail();
    }
    if (v.type != t) {
        print_error("line %d: NULL of \"%s\" has type %s, expected %s\n", line, src,
                    weir_type_name((weir_type_t)v.type), weir_type_name(t));
        fail();
    }
}
#define expect_null(src, t) expect_null_((src), (t), __LINE__)

/* want may hold NULs: wantlen says how long it is. */
static void
expect_strn_(const char *src, const char *want, size_t wantlen, int line)
{
    weir_value_t v;
    weir_expr_t *e = run_(src, &v, line);
    bool same;

    expect_ok_type(src, &v, WEIR_T_STRING, line);
    same = v.len == wantlen && (wantlen == 0 || memcmp(v.u.s, want, wantlen) == 0);
    if (!same) {
        print_error("line %d: \"%s\" = '%.*s' (%u bytes), expected '%s' (%zu bytes)\n", line, src,
                    (int)v.len, v.u.s, v.len, want, wantlen);
        weir_expr_destroy(e);
        fail();
    }
    weir_expr_destroy(e);
}
#define expect_str(src, want) expect_strn_((src), (want), strlen(want), __LINE__)

static void
expect_type_(const char *src, weir_type_t t, bool nullable, int line)
{
    weir_expr_t *e = compile_(src, line);
    weir_type_t got = weir_expr_type(e);
    bool gotn = weir_expr_nullable(e);

    weir_expr_destroy(e);
    if (got != t || gotn != nullable) {
        print_error("line %d: \"%s\" is %s%s, expected %s%s\n", line, src, weir_type_name(got),
                    gotn ? " (nullable)" : "", weir_type_name(t), nullable ? " (nullable)" : "");
        fail();
    }
}
#define expect_type(src, t, n) expect_type_((src), (t), (n), __LINE__)

static void
expect_error_(const char *src, int code, const char *msg, size_t offset, int line)
{
    weir_err_t err;
    weir_expr_t *e = NULL;
    size_t off = 777777;
    int rc;

    memset(&err, 0, sizeof(err));
    rc = weir_expr_parse(src, cur_in, cur_nin, &e, &off, &err);
    if (rc == 0) {
        weir_expr_destroy(e);
        print_error("line %d: \"%s\" parsed, expected error \"%s\"\n", line, src, msg);
        fail();
    }
    if (rc != code || err.code != code || strcmp(err.msg, msg) != 0 || off != offset) {
        print_error("line %d: \"%s\":\n  got      rc %d (err.code %d) offset %zu \"%s\"\n"
                    "  expected rc %d offset %zu \"%s\"\n", line, src, rc, err.code, off, err.msg,
                    code, offset, msg);
        fail();
    }
}
#define expect_error(src, code, msg, off) expect_error_((src), (code), (msg), (off), __LINE__)

/* ---- arithmetic ----------------------------------------------------------------- */

static void
test_expr_int_arithmetic(void **state)
{
    expect_int("qty + 2", 5);
    expect_int("qty - 5", -2);
    expect_int("qty * 4", 12);
    expect_int("7 / 2", 3);
    expect_int("-7 / 2", -3);               /* truncates toward zero, like Java */
    expect_int("7 % 3", 1);
    expect_int("-7 % 3", -1);               /* sign of the dividend, like Java */
    expect_int("7 % -3", 1);
    expect_int("qty", 3);
    expect_int("-qty", -3);
    expect_int("- -qty", 3);
    expect_int("0", 0);
}

static void
test_expr_double_arithmetic(void **state)
{
    expect_double("amount + 0.5", 1501.0);
    expect_double("amount - 0.5", 1500.0);
    expect_double("amount * 2", 3001.0);
    expect_double("amount / 2", 750.25);
    expect_double("7.5 % 2", 1.5);
    expect_double("-amount", -1500.5);
    expect_double("1.5e3", 1500.0);
    expect_double("2.5E-1", 0.25);
    expect_double("1e2", 100.0);
}

static void
test_expr_int_op_double_promotes_to_double(void **state)
{
    expect_double("qty + 0.5", 3.5);
    expect_double("0.5 + qty", 3.5);
    expect_double("qty / 2.0", 1.5);
    expect_double("qty * amount", 4501.5);
    expect_double("10 - 0.25", 9.75);
    expect_double("7 % 2.5", 2.0);
    expect_type("qty + 1", WEIR_T_INT, false);
    expect_type("qty + 0.5", WEIR_T_DOUBLE, false);
    expect_type("qty / 2.0", WEIR_T_DOUBLE, false);
    expect_true("qty == 3.0");
    expect_true("qty < 3.5");
    expect_false("qty > 3.5");
    expect_true("3.0 == qty");
    expect_true("amount > 1500");
    expect_false("amount == 1500");
}

static void
test_expr_precedence_and_associativity(void **state)
{
    expect_int("1 - 2 - 3", -4);             /* (1 - 2) - 3, not 1 - (2 - 3) = 2 */
    expect_int("2 + 3 * 4", 14);
    expect_int("(2 + 3) * 4", 20);
    expect_int("100 / 10 / 5", 2);           /* (100 / 10) / 5, not 100 / 2 */
    expect_int("2 * 3 % 4", 2);              /* (2 * 3) % 4 = 2, not 2 * 3 = 6 */
    expect_int("-2 * 3", -6);
    expect_int("2 * -3", -6);
    expect_int("10 - -3", 13);
    expect_int("- - 5", 5);
    expect_int("-(2 + 3) * 2", -10);
    expect_false("not false and false");     /* (not false) and false */
    expect_true("true or true and false");   /* true or (true and false) */
    expect_true("false and true or true");   /* (false and true) or true */
    expect_true("not 1 == 2");               /* not (1 == 2) */
    expect_true("not not true");
    expect_true("1 + 2 == 3");
    expect_true("'a' || 'b' == 'ab'");
    expect_true("qty > 1 and qty < 5 or false");
    expect_false("ok and not ok or not ok");
    expect_str("'a' || 'b' || 'c'", "abc");
}

/* ---- comparison ------------------------------------------------------------------- */

static void
test_expr_every_comparison_spelling(void **state)
{
    expect_true("qty == 3");
    expect_false("qty == 4");
    expect_true("qty = 3");
    expect_false("qty = 2");
    expect_true("qty != 4");
    expect_false("qty != 3");
    expect_true("qty <> 4");
    expect_false("qty <> 3");
    expect_true("qty < 4");
    expect_false("qty < 3");
    expect_true("qty <= 3");
    expect_false("qty <= 2");
    expect_true("qty > 2");
    expect_false("qty > 3");
    expect_true("qty >= 3");
    expect_false("qty >= 4");
    expect_true("ok == true");
    expect_true("ok != false");
    expect_false("ok <> true");
}

static void
test_expr_string_equality_and_ordering(void **state)
{
    expect_true("name == 'Alice'");
    expect_true("name == \"Alice\"");
    expect_false("name == 'alice'");         /* case-sensitive */
    expect_false("name == 'Alic'");
    expect_true("name != 'Alice '");
    expect_true("name < 'Bob'");
    expect_true("'abc' < 'abd'");
    expect_true("'ab' < 'abc'");             /* a prefix orders first */
    expect_true("'b' > 'abc'");
    expect_true("'B' < 'a'");                /* bytewise, not collated */
    expect_true("'' < 'a'");
    expect_true("'' == ''");
    expect_true("merchant_type >= 'online'");
    expect_true("'tab\\there' == 'tab' || '\t' || 'here'");
    expect_true("\"say \\\"hi\\\"\" == 'say \"hi\"'");
    expect_true("'a\\'b' == \"a'b\"");
    expect_true("'back\\\\slash' == 'back' || '\\\\' || 'slash'");
    expect_int("length('a\\nb')", 3);
    expect_str("'a\\nb'", "a\nb");
    expect_str("'\\t\\r'", "\t\r");
    expect_str("'\\q'", "q");                      /* an unknown escape keeps the character */
    expect_str("\"\\\"\"", "\"");
    expect_str("'multi\nline'", "multi\nline");   /* a raw newline inside a literal */
}

static void
test_expr_null_payload_is_ignored(void **state)
{
    /* a NULL cell's payload is unspecified (reused batches keep old bits):
     * a NULL whose bits say true or 3 must still behave as NULL */
    weir_value_t v;
    weir_expr_t *e;

    row[C_FLAG] = weir_value_bool(true);
    row[C_FLAG].null = 1;
    row[C_NI] = weir_value_int(3);
    row[C_NI].null = 1;
    row[C_NS] = weir_value_str("Alice", 5);
    row[C_NS].null = 1;
    expect_null("flag or false", WEIR_T_BOOL);
    expect_null("false or flag", WEIR_T_BOOL);
    expect_null("flag and true", WEIR_T_BOOL);
    expect_null("not flag", WEIR_T_BOOL);
    expect_null("ni == 3", WEIR_T_BOOL);
    expect_null("ni + 1", WEIR_T_INT);
    expect_null("qty in (ni)", WEIR_T_BOOL);
    expect_null("ns == 'Alice'", WEIR_T_BOOL);
    expect_true("ni is null");
    expect_int("coalesce(ni, 7)", 7);
    expect_int("if(flag, 1, 2)", 2);
    static const char *const preds[] = { "flag", "flag and true", "not not flag", "ni == 3",
                                         "ns starts_with 'A'", "flag or false" };
    for (size_t i = 0; i < sizeof(preds) / sizeof(preds[0]); i++) {
        e = compile(preds[i]);
        if (weir_expr_eval_bool(e, single_rows) != 0) {
            print_error("eval_bool(\"%s\") over a NULL with a true payload is 1\n", preds[i]);
            weir_expr_destroy(e);
            fail();
        }
        weir_expr_destroy(e);
    }
    e = run_("flag", &v, __LINE__);
    weir_expr_destroy(e);
    assert_true(v.null);
}

static void
test_expr_nan_compares_unequal(void **state)
{
    expect_false("double('nan') == double('nan')");
    expect_true("double('nan') != double('nan')");
    expect_false("double('nan') < 1.0");
    expect_false("double('nan') >= 1.0");
}

/* ---- NULL semantics ------------------------------------------------------------------ */

static void
test_expr_and_is_kleene(void **state)
{
    expect_false("false and null");
    expect_false("null and false");
    expect_null("true and null", WEIR_T_BOOL);
    expect_null("null and true", WEIR_T_BOOL);
    expect_null("null and null", WEIR_T_BOOL);
    expect_true("true and true");
    expect_false("true and false");
    expect_false("flag and false");          /* flag is NULL */
    expect_false("false and flag");
    expect_null("flag and ok", WEIR_T_BOOL);
    expect_null("ok and flag", WEIR_T_BOOL);
}

static void
test_expr_or_is_kleene(void **state)
{
    expect_true("true or null");
    expect_true("null or true");
    expect_null("false or null", WEIR_T_BOOL);
    expect_null("null or false", WEIR_T_BOOL);
    expect_null("null or null", WEIR_T_BOOL);
    expect_false("false or false");
    expect_true("flag or ok");
    expect_true("ok or flag");
    expect_null("flag or not ok", WEIR_T_BOOL);
}

static void
test_expr_not_null_is_null(void **state)
{
    expect_null("not null", WEIR_T_BOOL);
    expect_null("not flag", WEIR_T_BOOL);
    expect_false("not ok");
}

static void
test_expr_comparison_and_arithmetic_with_null_are_null(void **state)
{
    expect_null("qty == null", WEIR_T_BOOL);
    expect_null("null == null", WEIR_T_BOOL);
    expect_null("null != null", WEIR_T_BOOL);
    expect_null("ni > 1", WEIR_T_BOOL);
    expect_null("ni == ni", WEIR_T_BOOL);
    expect_null("name == ns", WEIR_T_BOOL);
    expect_null("nts < ts", WEIR_T_BOOL);
    expect_null("ni + 1", WEIR_T_INT);
    expect_null("1 - ni", WEIR_T_INT);
    expect_null("ni * 0", WEIR_T_INT);
    expect_null("ni / 0", WEIR_T_INT);
    expect_null("nd * 2", WEIR_T_DOUBLE);
    expect_null("qty + nd", WEIR_T_DOUBLE);
    expect_null("-ni", WEIR_T_INT);
    expect_null("null + 1", WEIR_T_INT);
    expect_null("null * 1.5", WEIR_T_DOUBLE);
    expect_null("ns || 'x'", WEIR_T_STRING);
    expect_null("'x' || null", WEIR_T_STRING);
    expect_null("ns starts_with 'a'", WEIR_T_BOOL);
    expect_null("name starts_with ns", WEIR_T_BOOL);
    expect_null("nts + 1", WEIR_T_TIMESTAMP);
    expect_null("lower(ns)", WEIR_T_STRING);
    expect_null("length(email)", WEIR_T_INT);
    expect_null("abs(ni)", WEIR_T_INT);
    expect_null("floor(nd)", WEIR_T_DOUBLE);
    expect_null("substr(ns, 1)", WEIR_T_STRING);
    expect_null("substr(name, ni)", WEIR_T_STRING);
    expect_null("floor_time(nts, '1m')", WEIR_T_TIMESTAMP);
    expect_null("concat(name, ns)", WEIR_T_STRING);
    expect_null("string(ni)", WEIR_T_STRING);
    expect_null("int(ns)", WEIR_T_INT);
    expect_null("to_timestamp(ns)", WEIR_T_TIMESTAMP);
    expect_null("null", WEIR_T_NULL);
}

static void
test_expr_is_null_and_is_not_null(void **state)
{
    expect_true("ni is null");
    expect_false("ni is not null");
    expect_false("qty is null");
    expect_true("qty IS NOT NULL");
    expect_true("null is null");
    expect_true("(ni + 1) is null");
    expect_false("email is not null");
    expect_true("name is not null");
    expect_true("flag is null and ok");
    expect_true("nd Is Null");
}

static void
test_expr_in_list_with_nulls(void **state)
{
    expect_true("qty in (1, 2, 3)");
    expect_false("qty in (1, 2)");
    expect_true("qty in (3)");
    expect_null("qty in (1, null)", WEIR_T_BOOL);    /* not found, a NULL present */
    expect_true("qty in (null, 3)");                 /* found wins over NULL */
    expect_null("ni in (1, 2)", WEIR_T_BOOL);
    expect_null("ni in (null)", WEIR_T_BOOL);
    expect_true("name in ('Bob', 'Alice')");
    expect_false("name in ('alice')");
    expect_true("qty in (ni, 3)");
    expect_null("qty in (ni)", WEIR_T_BOOL);
    expect_true("qty in (2.5, 3.0)");                /* int found among doubles */
    expect_true("amount in (1500.5)");
    expect_true("qty + 1 in (4)");
    expect_true("not qty in (1, 2)");
    expect_true("ok in (true)");
}

static void
test_expr_coalesce(void **state)
{
    expect_int("coalesce(ni, 7)", 7);
    expect_int("coalesce(ni, qty)", 3);
    expect_int("coalesce(qty, 7)", 3);
    expect_int("coalesce(ni, ni, ni, 9)", 9);
    expect_str("coalesce(null, null, 'x')", "x");
    expect_str("coalesce(ns, email, name)", "Alice");
    expect_null("coalesce(ns, email)", WEIR_T_STRING);
    expect_null("coalesce(ni, null)", WEIR_T_INT);
    expect_double("coalesce(ni, 2.5)", 2.5);
    expect_double("coalesce(qty, 2.5)", 3.0);        /* int promoted to the common double */
    expect_double("coalesce(nd, qty)", 3.0);
    expect_ts("coalesce(nts, ts)", TS_ROW);
}

static void
test_expr_if(void **state)
{
    expect_int("if(ok, 1, 2)", 1);
    expect_int("if(not ok, 1, 2)", 2);
    expect_int("if(flag, 1, 2)", 2);                 /* NULL condition takes the else branch */
    expect_int("IF(qty > 2, qty * 10, 0)", 30);
    expect_double("if(ok, 1, 2.5)", 1.0);            /* int branch promoted */
    expect_double("if(not ok, 1, 2.5)", 2.5);
    expect_null("if(ok, ni, 5)", WEIR_T_INT);
    expect_null("if(ok, null, 1.5)", WEIR_T_DOUBLE);
    expect_str("if(ok, 'a', 'b')", "a");
    expect_str("if(ok and flag, 'a', 'b')", "b");
}

/* ---- integer overflow and division by zero ----------------------------------------- */

static void
test_expr_int_add_sub_mul_wrap_twos_complement(void **state)
{
    expect_int("9223372036854775807 + 1", INT64_MIN);
    expect_int("big + 1", INT64_MIN);
    expect_int("big + big", -2);
    expect_int("big * 2", -2);
    expect_int("big * big", 1);
    expect_int("-big - 2", INT64_MAX);               /* INT64_MIN - 1 wraps */
    expect_int("(-big - 1) - 1", INT64_MAX);
    expect_int("-(-big - 1)", INT64_MIN);            /* negating INT64_MIN wraps to itself */
    expect_int("(-big - 1) / -1", INT64_MIN);        /* Java: Long.MIN_VALUE / -1 */
    expect_int("(-big - 1) % -1", 0);
    expect_int("(-big - 1) * -1", INT64_MIN);
    expect_int("4611686018427387904 * 2", INT64_MIN);
}

static void
test_expr_int_division_by_zero_is_null(void **state)
{
    expect_null("qty / 0", WEIR_T_INT);
    expect_null("qty % 0", WEIR_T_INT);
    expect_null("qty / (qty - 3)", WEIR_T_INT);
    expect_null("0 / 0", WEIR_T_INT);
    expect_false("(qty / 0) is not null");
    expect_int("coalesce(qty / 0, -1)", -1);
    /* doubles follow IEEE 754 (and are typed non-nullable accordingly) */
    expect_double("amount / 0", INFINITY);
    expect_double("-amount / 0", -INFINITY);
    expect_double("1.0 % 0", NAN);
    expect_type("amount / 0", WEIR_T_DOUBLE, false);
}

/* ---- strings -------------------------------------------------------------------------- */

static void
test_expr_concat_operator_and_function(void **state)
{
    expect_str("name || ' ' || merchant_type", "Alice online");
    expect_str("'' || ''", "");
    expect_str("concat(name, '-', merchant_type)", "Alice-online");
    expect_str("concat(name)", "Alice");
    expect_str("concat('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p')",
               "abcdefghijklmnop");
    expect_str("concat(lower(name), upper(name))", "aliceALICE");
    expect_str("lower(name) || upper(merchant_type)", "aliceONLINE");
}

static void
test_expr_concat_evaluates_each_argument_once(void **state)
{
    weir_value_t v;
    weir_expr_t *e;
    size_t with_op, with_fn;

    /* concat(lower(name), 'x') builds the same strings as lower(name) || 'x':
     * one lowered copy and one result, not a second lowered copy */
    weir_arena_reset(&arena);
    e = run_("lower(name) || 'x'", &v, __LINE__);
    with_op = weir_arena_used(&arena);
    weir_expr_destroy(e);
    weir_arena_reset(&arena);
    e = run_("concat(lower(name), 'x')", &v, __LINE__);
    with_fn = weir_arena_used(&arena);
    weir_expr_destroy(e);
    assert_int_equal(v.len, 6);
    assert_memory_equal(v.u.s, "alicex", 6);
    if (with_fn != with_op) {
        print_error("concat() used %zu arena bytes, || used %zu\n", with_fn, with_op);
        fail();
    }
}

static void
test_expr_starts_with(void **state)
{
    expect_true("name starts_with 'Al'");
    expect_false("name starts_with 'al'");
    expect_true("name starts_with ''");
    expect_true("name starts_with 'Alice'");
    expect_false("name starts_with 'Alice!'");
    expect_true("merchant_type starts_with \"on\"");
    expect_true("'' starts_with ''");
    expect_false("'' starts_with 'a'");
    expect_true("lower(name) starts_with 'ali'");
    expect_true("name starts_with 'A' || 'l'");      /* the operand is an add-expression */
}

static void
test_expr_lower_upper_ascii_and_leave_other_bytes(void **state)
{
    expect_str("lower(name)", "alice");
    expect_str("upper(name)", "ALICE");
    expect_str("lower('MiXeD 123-_')", "mixed 123-_");
    expect_str("upper('MiXeD 123-_')", "MIXED 123-_");
    expect_str("lower('')", "");
    /* bytes of multi-byte characters are never split or altered */
    expect_str("lower('\xc3\x89T\xc3\x89')", "\xc3\x89t\xc3\x89");
    expect_str("upper('stra\xc3\x9f" "e')", "STRA\xc3\x9f" "E");
}

static void
test_expr_length_counts_utf8_code_points(void **state)
{
    expect_int("length(name)", 5);
    expect_int("length('')", 0);
    expect_int("length('h\xc3\xa9llo')", 5);                         /* é: 2 bytes */
    expect_int("length('\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e')", 3);   /* 日本語: 3 x 3 bytes */
    expect_int("length('\xf0\x9f\x98\x80!')", 2);                      /* emoji: 4 bytes */
    expect_int("length(raw)", 3);                                       /* bytes count bytes */
    expect_int("length(lower(merchant_type))", 6);
}

static void
test_expr_substr_is_one_based_and_clamps(void **state)
{
    expect_str("substr('hello', 1)", "hello");
    expect_str("substr('hello', 2)", "ello");
    expect_str("substr('hello', 2, 3)", "ell");
    expect_str("substr('hello', 1, 0)", "");
    expect_str("substr('hello', 1, 1)", "h");
    expect_str("substr('hello', 5)", "o");
    expect_str("substr('hello', 5, 10)", "o");
    expect_str("substr('hello', 6)", "");
    expect_str("substr('hello', 100, 2)", "");
    expect_str("substr('hello', 2, -1)", "");
    expect_str("substr('hello', 0)", "hello");
    expect_str("substr('hello', -3)", "hello");
    expect_str("substr(name, qty)", "ice");
    expect_str("substr(name, 2, qty)", "lic");
    expect_str("substr('', 1, 5)", "");
}

static void
test_expr_substr_positions_are_code_points(void **state)
{
    /* length() counts code points, so substr() must address them too, and
     * never cut a multi-byte character in half */
    expect_str("substr('h\xc3\xa9llo', 2, 3)", "\xc3\xa9ll");
    expect_str("substr('h\xc3\xa9llo', 3)", "llo");
    expect_str("substr('\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e', 2)", "\xe6\x9c\xac\xe8\xaa\x9e");
    expect_str("substr('\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e', 3, 1)", "\xe8\xaa\x9e");
    expect_str("substr('\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e', 1, 1)", "\xe6\x97\xa5");
}

static void
test_expr_string_results_borrow_or_use_the_arena(void **state)
{
    weir_value_t v;
    weir_expr_t *e;
    size_t before;

    /* a field, substr and string(s) of a string borrow the row's bytes */
    e = run_("name", &v, __LINE__);
    assert_ptr_equal(v.u.s, row[C_NAME].u.s);
    weir_expr_destroy(e);
    e = run_("substr(name, 3)", &v, __LINE__);
    assert_ptr_equal(v.u.s, row[C_NAME].u.s + 2);
    assert_int_equal(v.len, 3);
    weir_expr_destroy(e);
    e = run_("string(name)", &v, __LINE__);
    assert_ptr_equal(v.u.s, row[C_NAME].u.s);
    weir_expr_destroy(e);

    /* new strings go to the arena and stay valid after the expression is gone */
    before = weir_arena_used(&arena);
    e = run_("lower(name) || '!'", &v, __LINE__);
    weir_expr_destroy(e);
    assert_true(weir_arena_used(&arena) > before);
    assert_int_equal(v.len, 6);
    assert_memory_equal(v.u.s, "alice!", 6);
}

/* ---- numeric functions ----------------------------------------------------------------- */

static void
test_expr_abs_floor_ceil_round(void **state)
{
    expect_int("abs(-5)", 5);
    expect_int("abs(5)", 5);
    expect_int("abs(qty - 10)", 7);
    expect_int("abs(0)", 0);
    expect_double("abs(-2.5)", 2.5);
    expect_double("abs(amount)", 1500.5);
    expect_double("abs(-0.0)", 0.0);
    expect_double("floor(2.7)", 2.0);
    expect_double("floor(-2.5)", -3.0);
    expect_double("ceil(2.1)", 3.0);
    expect_double("ceil(-2.5)", -2.0);
    expect_double("round(2.5)", 3.0);                 /* half away from zero */
    expect_double("round(-2.5)", -3.0);
    expect_double("round(2.4999)", 2.0);
    expect_double("floor(amount)", 1500.0);
    expect_double("ceil(amount)", 1501.0);
    expect_int("floor(qty)", 3);
    expect_int("ceil(-qty)", -3);
    expect_int("round(qty)", 3);
    expect_type("floor(qty)", WEIR_T_INT, false);
    expect_type("round(amount)", WEIR_T_DOUBLE, false);
}

static void
test_expr_abs_of_int64_min_wraps_like_java(void **state)
{
    /* + - * and unary minus wrap like Java longs, and abs() is typed
     * non-nullable; Java's Math.abs(Long.MIN_VALUE) is Long.MIN_VALUE */
    row[C_BIG] = weir_value_int(INT64_MIN);
    expect_type("abs(big)", WEIR_T_INT, false);
    expect_int("abs(big)", INT64_MIN);
    expect_int("abs(-big)", INT64_MIN);
}

/* ---- conversions --------------------------------------------------------------------- */

static void
test_expr_int_conversion(void **state)
{
    expect_int("int('42')", 42);
    expect_int("int('-7')", -7);
    expect_int("int('9223372036854775807')", INT64_MAX);
    expect_null("int('9223372036854775808')", WEIR_T_INT);
    expect_null("int('42x')", WEIR_T_INT);
    expect_null("int('')", WEIR_T_INT);
    expect_null("int('3.5')", WEIR_T_INT);
    expect_null("int(merchant_type)", WEIR_T_INT);
    expect_int("int(3.9)", 3);                        /* truncation toward zero */
    expect_int("int(-3.9)", -3);
    expect_int("int(amount)", 1500);
    expect_int("int(ok)", 1);
    expect_int("int(not ok)", 0);
    expect_int("int(ts)", TS_ROW);                    /* microseconds since the epoch */
    expect_int("int(qty)", 3);
    expect_null("int(1e30)", WEIR_T_INT);
    expect_null("int(-1e30)", WEIR_T_INT);
    expect_null("int(double('nan'))", WEIR_T_INT);
    expect_null("int(double('inf'))", WEIR_T_INT);
}

static void
test_expr_double_conversion(void **state)
{
    expect_double("double('1.5')", 1.5);
    expect_double("double('-2e3')", -2000.0);
    expect_null("double('abc')", WEIR_T_DOUBLE);
    expect_null("double('1.5x')", WEIR_T_DOUBLE);
    expect_null("double('')", WEIR_T_DOUBLE);
    expect_double("double(qty)", 3.0);
    expect_double("double(ok)", 1.0);
    expect_double("double(amount)", 1500.5);
    expect_double("double(ts)", (double)TS_ROW);
    expect_double("double(qty) / 2", 1.5);
}

static void
test_expr_string_conversion(void **state)
{
    expect_str("string(qty)", "3");
    expect_str("string(-42)", "-42");
    expect_str("string(big)", "9223372036854775807");
    expect_str("string(ok)", "true");
    expect_str("string(false)", "false");
    expect_str("string(ts)", "2024-03-01 12:34:56.789012");
    expect_str("string(1.5)", "1.5");
    expect_str("string(-0.25)", "-0.25");
    expect_str("string(amount)", "1500.5");
    expect_str("string(name)", "Alice");
    expect_strn_("string(raw)", "a\xc3\xa9", 3, __LINE__);
    expect_str("string(qty) || '/' || string(ok)", "3/true");
}

static void
test_expr_string_of_double_is_shortest_round_trip(void **state)
{
    /* %.17g gives "0.10000000000000001"; a person (and the JSON writer)
     * expects the shortest text that reads back the same */
    expect_str("string(0.1)", "0.1");
    expect_str("string(0.1 + 0.2)", "0.30000000000000004");
    expect_str("string(19.99)", "19.99");
    expect_str("string(0.1 + 0.7)", "0.7999999999999999");     /* 16 digits */
    expect_str("string(3.0)", "3.0");                          /* still says double, like Java */
    expect_str("string(5e-324)", "5e-324");                    /* subnormal: shortest */
}

static void
test_expr_to_timestamp(void **state)
{
    expect_ts("to_timestamp('2024-03-01 12:34:56.789012')", TS_ROW);
    expect_ts("to_timestamp('2024-03-01T12:34:56.789012Z')", TS_ROW);
    expect_ts("to_timestamp('2024-03-01T13:34:56.789012+01:00')", TS_ROW);
    expect_ts("to_timestamp('2024-03-01')", 1709251200000000LL);
    expect_ts("to_timestamp('1969-12-31 23:59:30.5')", -29500000LL);
    expect_null("to_timestamp('nope')", WEIR_T_TIMESTAMP);
    expect_null("to_timestamp('2024-02-30')", WEIR_T_TIMESTAMP);
    expect_null("to_timestamp('2024-03-01 25:00:00')", WEIR_T_TIMESTAMP);
    expect_null("to_timestamp('')", WEIR_T_TIMESTAMP);
    expect_null("to_timestamp(merchant_type)", WEIR_T_TIMESTAMP);
    expect_true("to_timestamp('2024-03-01 12:34:56.789012') == ts");
}

/* ---- timestamps -------------------------------------------------------------------------- */

static void
test_expr_floor_time_every_unit(void **state)
{
    expect_ts("floor_time(ts, '1m')", 1709296440000000LL);   /* 12:34:00 */
    expect_ts("floor_time(ts, '1h')", 1709294400000000LL);   /* 12:00:00 */
    expect_ts("floor_time(ts, '1d')", 1709251200000000LL);   /* 00:00:00 */
    expect_ts("floor_time(ts, '15s')", 1709296485000000LL);  /* 12:34:45 */
    expect_ts("floor_time(ts, '500ms')", 1709296496500000LL);
    expect_ts("floor_time(ts, '100us')", 1709296496789000LL);
    expect_ts("floor_time(ts, '1us')", TS_ROW);
    expect_ts("floor_time(ts, '5min')", 1709296200000000LL);  /* 12:30:00 */
    expect_ts("floor_time(ts, '1000')", 1709296496000000LL);  /* bare number = ms */
    expect_ts("floor_time(floor_time(ts, '1h'), '1h')", 1709294400000000LL);
}

static void
test_expr_floor_time_before_1970_floors_down(void **state)
{
    row[C_TS] = weir_value_ts(-29500000LL);          /* 1969-12-31 23:59:30.5 */
    expect_ts("floor_time(ts, '1m')", -60000000LL);   /* 23:59:00, not 1970-01-01 00:00 */
    expect_ts("floor_time(ts, '1s')", -30000000LL);
    expect_ts("floor_time(ts, '1d')", -86400000000LL);
    row[C_TS] = weir_value_ts(-60000000LL);          /* exactly on a boundary */
    expect_ts("floor_time(ts, '1m')", -60000000LL);
    row[C_TS] = weir_value_ts(-2208988799999999LL);  /* 1900-01-01 00:00:00.000001 */
    expect_ts("floor_time(ts, '1d')", -2208988800000000LL);
    expect_ts("floor_time(ts, '1us')", -2208988799999999LL);
}

static void
test_expr_floor_time_at_int64_min_wraps_without_overflow(void **state)
{
    /* the floor of the earliest instant is below INT64_MIN; + - * wrap in
     * this language, so the result wraps too, but computing it must not be
     * signed overflow in C (run under UBSan with halt_on_error=1) */
    int64_t r = (int64_t)(((__int128)INT64_MIN % 60000000 + 60000000) % 60000000);
    int64_t want = (int64_t)((uint64_t)INT64_MIN - (uint64_t)r);

    row[C_TS] = weir_value_ts(INT64_MIN);
    expect_ts("floor_time(ts, '1m')", want);
}

static void
test_expr_timestamp_arithmetic(void **state)
{
    expect_ts("ts + 1000000", TS_ROW + 1000000);
    expect_ts("ts - 789012", 1709296496000000LL);
    expect_int("ts - ts", 0);
    expect_int("ts - floor_time(ts, '1s')", 789012);
    expect_type("ts - ts", WEIR_T_INT, false);
    expect_type("ts + qty", WEIR_T_TIMESTAMP, false);
}

static void
test_expr_timestamp_field_vs_string_literal(void **state)
{
    expect_true("ts > '2024-03-01 12:34:56'");
    expect_true("ts == '2024-03-01 12:34:56.789012'");
    expect_false("ts == '2024-03-01 12:34:56.789011'");
    expect_true("ts < '2024-03-01T12:34:57Z'");
    expect_true("ts = '2024-03-01T13:34:56.789012+01:00'");
    expect_true("ts >= \"2024-03-01\"");
    expect_true("'2024-03-01' < ts");                /* the literal may come first */
    expect_true("'2024-03-02' > ts");
    expect_true("ts in ('2024-01-01', '2024-03-01 12:34:56.789012')");
    expect_false("ts in ('2024-01-01 00:00:00')");
    expect_true("ts != '1970-01-01'");
    expect_null("nts < '2024-01-01'", WEIR_T_BOOL);
    expect_true("floor_time(ts, '1d') == '2024-03-01'");
}

static void
test_expr_now_is_the_wall_clock(void **state)
{
    weir_value_t v;
    weir_expr_t *e;
    int64_t before = weir_now_us(), after;

    e = run_("now()", &v, __LINE__);
    after = weir_now_us();
    weir_expr_destroy(e);
    assert_int_equal(v.type, WEIR_T_TIMESTAMP);
    assert_false(v.null);
    assert_true(v.u.i >= before && v.u.i <= after);
    expect_true("now() > '2020-01-01'");
    expect_true("now() - ts > 0");
}

/* ---- two inputs --------------------------------------------------------------------------- */

static void
test_expr_join_qualified_names_pick_the_input(void **state)
{
    expect_int("t.x + a.x", 42);
    expect_int("a.x - t.x", 22);
    expect_true("t.id == a.id");
    expect_double("amount", 99.5);                   /* only in t: no qualifier needed */
    expect_true("flag and t.x < a.x");               /* only in a */
    expect_true("score is null");
    expect_true("a.score is null");
    expect_str("t.name || '/' || string(a.x)", "left/32");
    expect_double("t.amount * 2", 199.0);
    expect_type("a.score", WEIR_T_DOUBLE, true);
    expect_type("t.x", WEIR_T_INT, false);
    expect_type("a.flag", WEIR_T_BOOL, false);
}

static void
test_expr_join_errors(void **state)
{
    expect_error("x > 1", WEIR_ETYPE,
                 "column 1: ambiguous field 'x': qualify it with an input alias (e.g. t.x)", 0);
    expect_error("a.id == id", WEIR_ETYPE,
                 "column 9: ambiguous field 'id': qualify it with an input alias (e.g. t.id)", 8);
    expect_error("z.x > 1", WEIR_ETYPE, "column 1: unknown input 'z'", 0);
    expect_error("t.x > z.x", WEIR_ETYPE, "column 7: unknown input 'z'", 6);
    expect_error("t.flag", WEIR_ETYPE, "column 3: unknown field 'flag'", 2);
    expect_error("a.scor > 1", WEIR_ETYPE,
                 "column 3: unknown field 'scor' (did you mean 'score'?)", 2);
    expect_error("t.", WEIR_EPARSE, "column 3: expected a field name after 't.'", 2);
    expect_error("t.5", WEIR_EPARSE, "column 3: expected a field name after 't.'", 2);
}

static void
test_expr_unknown_alias_with_a_single_input(void **state)
{
    expect_error("x.qty > 1", WEIR_ETYPE, "column 1: unknown input 'x'", 0);
}

/* ---- static types ------------------------------------------------------------------------- */

static void
test_expr_static_types_and_nullability(void **state)
{
    expect_type("qty", WEIR_T_INT, false);
    expect_type("ni", WEIR_T_INT, true);
    expect_type("amount", WEIR_T_DOUBLE, false);
    expect_type("name", WEIR_T_STRING, true);
    expect_type("raw", WEIR_T_BYTES, false);
    expect_type("ts", WEIR_T_TIMESTAMP, false);
    expect_type("-5", WEIR_T_INT, false);
    expect_type("1.5", WEIR_T_DOUBLE, false);
    expect_type("'a'", WEIR_T_STRING, false);
    expect_type("true", WEIR_T_BOOL, false);
    expect_type("null", WEIR_T_NULL, true);
    expect_type("qty + 1", WEIR_T_INT, false);
    expect_type("qty + ni", WEIR_T_INT, true);
    expect_type("qty * 2", WEIR_T_INT, false);
    expect_type("qty / 2", WEIR_T_INT, true);         /* division by zero is NULL */
    expect_type("qty % 2", WEIR_T_INT, true);
    expect_type("amount / 2", WEIR_T_DOUBLE, false);
    expect_type("-qty", WEIR_T_INT, false);
    expect_type("-ni", WEIR_T_INT, true);
    expect_type("-null", WEIR_T_INT, true);
    expect_type("null + 1", WEIR_T_INT, true);
    expect_type("null + 1.5", WEIR_T_DOUBLE, true);
    expect_type("qty > 1", WEIR_T_BOOL, false);
    expect_type("ni > 1", WEIR_T_BOOL, true);
    expect_type("qty > null", WEIR_T_BOOL, true);
    expect_type("ni is null", WEIR_T_BOOL, false);
    expect_type("flag is not null", WEIR_T_BOOL, false);
    expect_type("ok and flag", WEIR_T_BOOL, true);
    expect_type("ok and true", WEIR_T_BOOL, false);
    expect_type("ok or null", WEIR_T_BOOL, true);
    expect_type("not ok", WEIR_T_BOOL, false);
    expect_type("not flag", WEIR_T_BOOL, true);
    expect_type("name || 'x'", WEIR_T_STRING, true);
    expect_type("merchant_type || 'x'", WEIR_T_STRING, false);
    expect_type("'x' || null", WEIR_T_STRING, true);
    expect_type("lower(merchant_type)", WEIR_T_STRING, false);
    expect_type("upper(name)", WEIR_T_STRING, true);
    expect_type("length(name)", WEIR_T_INT, true);
    expect_type("length(raw)", WEIR_T_INT, false);
    expect_type("abs(qty)", WEIR_T_INT, false);
    expect_type("abs(nd)", WEIR_T_DOUBLE, true);
    expect_type("abs(null)", WEIR_T_DOUBLE, true);
    expect_type("floor(amount)", WEIR_T_DOUBLE, false);
    expect_type("ceil(nd)", WEIR_T_DOUBLE, true);
    expect_type("coalesce(ni, 0)", WEIR_T_INT, false);
    expect_type("coalesce(ni, ni)", WEIR_T_INT, true);
    expect_type("coalesce(ni, 0.5)", WEIR_T_DOUBLE, false);
    expect_type("coalesce(nd, 1)", WEIR_T_DOUBLE, false);
    expect_type("coalesce(null, name)", WEIR_T_STRING, true);
    expect_type("coalesce(null, name, 'x')", WEIR_T_STRING, false);
    expect_type("coalesce(null)", WEIR_T_NULL, true);
    expect_type("concat(merchant_type, 'x')", WEIR_T_STRING, false);
    expect_type("concat(name, 'x')", WEIR_T_STRING, true);
    expect_type("substr(merchant_type, 2)", WEIR_T_STRING, false);
    expect_type("substr(merchant_type, 2, ni)", WEIR_T_STRING, true);
    expect_type("floor_time(ts, '1m')", WEIR_T_TIMESTAMP, false);
    expect_type("floor_time(nts, '1h')", WEIR_T_TIMESTAMP, true);
    expect_type("to_timestamp(merchant_type)", WEIR_T_TIMESTAMP, true);
    expect_type("now()", WEIR_T_TIMESTAMP, false);
    expect_type("int(amount)", WEIR_T_INT, true);     /* NaN / out of range */
    expect_type("int(merchant_type)", WEIR_T_INT, true);
    expect_type("int(qty)", WEIR_T_INT, false);
    expect_type("int(ok)", WEIR_T_INT, false);
    expect_type("int(ts)", WEIR_T_INT, false);
    expect_type("double(qty)", WEIR_T_DOUBLE, false);
    expect_type("double(merchant_type)", WEIR_T_DOUBLE, true);
    expect_type("string(qty)", WEIR_T_STRING, false);
    expect_type("string(ni)", WEIR_T_STRING, true);
    expect_type("if(ok, 1, 2)", WEIR_T_INT, false);
    expect_type("if(flag, 1, 2)", WEIR_T_INT, false);  /* NULL condition -> else */
    expect_type("if(ok, 1, 2.5)", WEIR_T_DOUBLE, false);
    expect_type("if(ok, ni, 2)", WEIR_T_INT, true);
    expect_type("if(ok, null, 'a')", WEIR_T_STRING, true);
    expect_type("ts + 1", WEIR_T_TIMESTAMP, false);
    expect_type("ts - 1", WEIR_T_TIMESTAMP, false);
    expect_type("qty in (1, 2)", WEIR_T_BOOL, false);
    expect_type("qty in (1, ni)", WEIR_T_BOOL, true);
    expect_type("ni in (1, 2)", WEIR_T_BOOL, true);
    expect_type("name starts_with 'a'", WEIR_T_BOOL, true);
    expect_type("merchant_type starts_with 'a'", WEIR_T_BOOL, false);
    expect_type("ts > '2024-01-01'", WEIR_T_BOOL, false);
}

static void
test_expr_nullable_false_means_never_null(void **state)
{
    /* rows that push every function to its edge; whatever the static type
     * promises about NULL must hold for each of them */
    static const char *const exprs[] = {
        "abs(big)", "-big", "big + 1", "int(raw)", "double(raw)", "int(qty)", "string(raw)",
        "length(raw)", "floor_time(ts, '1d')", "int(ok)", "qty * big", "if(flag, big, qty)",
        "coalesce(ni, big)", "lower(merchant_type)", "substr(merchant_type, big)",
    };
    static const char *const raws[] = { "abc", "12", "1e400", "" };

    for (size_t r = 0; r < sizeof(raws) / sizeof(raws[0]); r++) {
        for (int b = 0; b < 3; b++) {
            fill_rows();
            row[C_RAW] = weir_value_bytes(raws[r], (uint32_t)strlen(raws[r]));
            row[C_BIG] = weir_value_int(b == 0 ? INT64_MIN : b == 1 ? -1 : 0);
            for (size_t i = 0; i < sizeof(exprs) / sizeof(exprs[0]); i++) {
                weir_err_t err;
                weir_expr_t *e = NULL;
                weir_value_t v;

                memset(&err, 0, sizeof(err));
                if (weir_expr_parse(exprs[i], single_in, 1, &e, NULL, &err) != 0)
                    continue;                 /* rejecting it at plan time is fine too */
                assert_int_equal(weir_expr_eval(e, single_rows, &arena, &v), 0);
                if (!weir_expr_nullable(e) && v.null) {
                    print_error("\"%s\" is typed non-nullable but gave NULL (raw '%s', big %lld)\n",
                                exprs[i], raws[r], (long long)row[C_BIG].u.i);
                    weir_expr_destroy(e);
                    fail();
                }
                weir_expr_destroy(e);
            }
        }
    }
}

static void
test_expr_field_name_only_for_bare_fields(void **state)
{
    weir_expr_t *e;

    e = compile("amount");
    assert_string_equal(weir_expr_field_name(e), "amount");
    weir_expr_destroy(e);
    e = compile("merchant_type");
    assert_string_equal(weir_expr_field_name(e), "merchant_type");
    weir_expr_destroy(e);
    static const char *const not_fields[] = {
        "amount + 1", "-amount", "'amount'", "lower(name)", "qty > 1", "ni is null", "null", "3",
        "coalesce(ni, 1)", "not ok",
    };
    for (size_t i = 0; i < sizeof(not_fields) / sizeof(not_fields[0]); i++) {
        e = compile(not_fields[i]);
        if (weir_expr_field_name(e) != NULL) {
            print_error("field name of \"%s\" is '%s', expected NULL\n", not_fields[i],
                        weir_expr_field_name(e));
            weir_expr_destroy(e);
            fail();
        }
        weir_expr_destroy(e);
    }
}

static void
test_expr_field_name_of_qualified_field_is_the_bare_name(void **state)
{
    weir_expr_t *e = compile("a.score");

    assert_string_equal(weir_expr_field_name(e), "score");
    weir_expr_destroy(e);
    e = compile("t.x");
    assert_string_equal(weir_expr_field_name(e), "x");
    weir_expr_destroy(e);
}

/* ---- errors --------------------------------------------------------------------------------- */

static void
test_expr_unknown_field_suggests_a_near_name(void **state)
{
    expect_error("amout > 5", WEIR_ETYPE,
                 "column 1: unknown field 'amout' (did you mean 'amount'?)", 0);
    expect_error("qty > 1 and merchant_typ == 'x'", WEIR_ETYPE,
                 "column 13: unknown field 'merchant_typ' (did you mean 'merchant_type'?)", 12);
    expect_error("zzz > 5", WEIR_ETYPE, "column 1: unknown field 'zzz'", 0);
    expect_error("1 + Qty", WEIR_ETYPE, "column 5: unknown field 'Qty' (did you mean 'qty'?)", 4);
}

static void
test_expr_unknown_function_and_arity(void **state)
{
    expect_error("qty + lowr(name)", WEIR_EPARSE, "column 7: unknown function 'lowr'", 6);
    expect_error("lower(name, name)", WEIR_ETYPE, "column 1: lower() takes 1 argument, got 2", 0);
    expect_error("lower()", WEIR_ETYPE, "column 1: lower() takes 1 argument, got 0", 0);
    expect_error("substr(name)", WEIR_ETYPE, "column 1: substr() takes 2 to 3 arguments, got 1", 0);
    expect_error("substr(name, 1, 2, 3)", WEIR_ETYPE,
                 "column 1: substr() takes 2 to 3 arguments, got 4", 0);
    expect_error("qty > 1 and now(1) > ts", WEIR_ETYPE,
                 "column 13: now() takes 0 arguments, got 1", 12);
    expect_error("if(ok, 1)", WEIR_ETYPE, "column 1: if() takes 3 arguments, got 2", 0);
    expect_error("floor_time(ts)", WEIR_ETYPE, "column 1: floor_time() takes 2 arguments, got 1", 0);
    expect_error("coalesce()", WEIR_ETYPE, "column 1: coalesce() takes 1 to 16 arguments, got 0", 0);
    {
        const char *src = "coalesce(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17)";
        size_t at = (size_t)(strstr(src, "17") - src);
        char msg[64];
        snprintf(msg, sizeof(msg), "column %zu: too many arguments", at + 1);
        expect_error(src, WEIR_EPARSE, msg, at);
    }
}

static void
test_expr_arithmetic_type_errors(void **state)
{
    expect_error("qty + 'x'", WEIR_ETYPE, "column 5: operator '+' cannot combine int and string", 4);
    expect_error("name + name", WEIR_ETYPE,
                 "column 6: operator '+' cannot combine string and string (use || to concatenate)", 5);
    expect_error("qty - ok", WEIR_ETYPE, "column 5: operator '-' cannot combine int and bool", 4);
    expect_error("ts + 1.5", WEIR_ETYPE, "column 4: operator '+' cannot combine timestamp and double", 3);
    expect_error("1 + ts", WEIR_ETYPE, "column 3: operator '+' cannot combine int and timestamp", 2);
    expect_error("ts + ts", WEIR_ETYPE, "column 4: operator '+' cannot combine timestamp and timestamp", 3);
    expect_error("name * 2", WEIR_ETYPE, "column 6: operator '*' needs numbers, got string and int", 5);
    expect_error("qty / ok", WEIR_ETYPE, "column 5: operator '/' needs numbers, got int and bool", 4);
    expect_error("qty % name", WEIR_ETYPE, "column 5: operator '%' needs numbers, got int and string", 4);
    expect_error("ts * 2", WEIR_ETYPE, "column 4: operator '*' needs numbers, got timestamp and int", 3);
    expect_error("name || qty", WEIR_ETYPE, "column 6: operator '||' needs strings, got string and int", 5);
    expect_error("raw || 'x'", WEIR_ETYPE, "column 5: operator '||' needs strings, got bytes and string", 4);
    expect_error("-name", WEIR_ETYPE, "column 1: cannot negate string", 0);
    expect_error("qty + -ok", WEIR_ETYPE, "column 7: cannot negate bool", 6);
}

static void
test_expr_comparison_type_errors(void **state)
{
    expect_error("name > 5", WEIR_ETYPE, "column 6: operator '>' cannot compare string with int", 5);
    expect_error("ok < true", WEIR_ETYPE, "column 4: operator '<' cannot order bools", 3);
    expect_error("ok >= flag", WEIR_ETYPE, "column 4: operator '>=' cannot order bools", 3);
    expect_error("ts == name", WEIR_ETYPE,
                 "column 4: operator '==' cannot compare timestamp with string", 3);
    expect_error("ts = qty", WEIR_ETYPE, "column 4: operator '=' cannot compare timestamp with int", 3);
    expect_error("raw <> name", WEIR_ETYPE, "column 5: operator '<>' cannot compare bytes with string", 4);
    expect_error("ok != 1", WEIR_ETYPE, "column 4: operator '!=' cannot compare bool with int", 3);
    expect_error("qty starts_with 'a'", WEIR_ETYPE,
                 "column 5: starts_with needs strings, got int and string", 4);
    expect_error("name starts_with 1", WEIR_ETYPE,
                 "column 6: starts_with needs strings, got string and int", 5);
    expect_error("qty in (1, 'a')", WEIR_ETYPE, "column 12: operator 'in' cannot compare int with string", 11);
}

static void
test_expr_boolean_operator_type_errors(void **state)
{
    expect_error("qty and ok", WEIR_ETYPE, "column 1: 'and' needs bool operands, got int", 0);
    expect_error("ok and qty", WEIR_ETYPE, "column 8: 'and' needs bool operands, got int", 7);
    expect_error("ok or name", WEIR_ETYPE, "column 7: 'or' needs bool operands, got string", 6);
    expect_error("amount or ok", WEIR_ETYPE, "column 1: 'or' needs bool operands, got double", 0);
    expect_error("not qty", WEIR_ETYPE, "column 1: 'not' needs bool operands, got int", 0);
    expect_error("ok and ok and ts", WEIR_ETYPE, "column 15: 'and' needs bool operands, got timestamp", 14);
}

static void
test_expr_function_argument_type_errors(void **state)
{
    expect_error("lower(qty)", WEIR_ETYPE, "column 7: lower() needs a string, got int", 6);
    expect_error("upper(ok)", WEIR_ETYPE, "column 7: upper() needs a string, got bool", 6);
    expect_error("length(qty)", WEIR_ETYPE, "column 8: length() needs a string, got int", 7);
    expect_error("abs(name)", WEIR_ETYPE, "column 5: abs() needs a number, got string", 4);
    expect_error("round(ts)", WEIR_ETYPE, "column 7: round() needs a number, got timestamp", 6);
    expect_error("concat(name, qty)", WEIR_ETYPE,
                 "column 14: concat() needs strings (use string(x) to convert), got int", 13);
    expect_error("substr(name, 1.5)", WEIR_ETYPE, "column 14: substr() needs integer positions, got double", 13);
    expect_error("substr(qty, 1)", WEIR_ETYPE, "column 8: substr() needs a string, got int", 7);
    expect_error("floor_time(qty, '1m')", WEIR_ETYPE, "column 12: floor_time() needs a timestamp, got int", 11);
    expect_error("floor_time(ts, name)", WEIR_ETYPE,
                 "column 16: floor_time() needs a duration literal such as '1m'", 15);
    expect_error("floor_time(ts, '1 fortnight')", WEIR_ETYPE,
                 "column 16: floor_time() needs a duration literal such as '1m'", 15);
    expect_error("floor_time(ts, '0s')", WEIR_ETYPE,
                 "column 16: floor_time() needs a duration literal such as '1m'", 15);
    expect_error("to_timestamp(qty)", WEIR_ETYPE, "column 14: to_timestamp() needs a string, got int", 13);
    expect_error("if(qty, 1, 2)", WEIR_ETYPE, "column 4: if() needs a bool condition, got int", 3);
    expect_error("if(ok, 1, 'a')", WEIR_ETYPE, "column 11: if() branches differ: int and string", 10);
    expect_error("coalesce(qty, name)", WEIR_ETYPE, "column 15: coalesce() arguments differ: int and string", 14);
}

static void
test_expr_coalesce_checks_every_argument_after_a_null(void **state)
{
    /* the type after 'null, 1' is int, so 'a' does not fit: accepting it
     * types the result int while it can evaluate to a string */
    expect_error("coalesce(null, 1, 'a')", WEIR_ETYPE,
                 "column 19: coalesce() arguments differ: int and string", 18);
    expect_error("coalesce(null, ni, name)", WEIR_ETYPE,
                 "column 20: coalesce() arguments differ: int and string", 19);
}

static void
test_expr_bad_timestamp_literal_is_a_parse_time_error(void **state)
{
    /* reported at the literal, as 'in (...)' already does */
    expect_error("ts > '2024-13-01'", WEIR_ETYPE,
                 "column 6: '2024-13-01' is not a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff])", 5);
    expect_error("'yesterday' < ts", WEIR_ETYPE,
                 "column 1: 'yesterday' is not a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff])", 0);
    expect_error("ts in ('2024-01-01', 'soon')", WEIR_ETYPE,
                 "column 22: 'soon' is not a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff])", 21);
}

static void
test_expr_lexical_and_syntax_errors(void **state)
{
    expect_error("name == 'abc", WEIR_EPARSE, "column 9: unterminated string", 8);
    expect_error("name == \"abc\\\"", WEIR_EPARSE, "column 9: unterminated string", 8);
    expect_error("qty > 1 2", WEIR_EPARSE, "column 9: unexpected '2' after a complete expression", 8);
    expect_error("qty qty", WEIR_EPARSE, "column 5: unexpected 'qty' after a complete expression", 4);
    expect_error("qty > 1)", WEIR_EPARSE, "column 8: unexpected ')' after a complete expression", 7);
    expect_error("1 < 2 < 3", WEIR_EPARSE, "column 7: unexpected '<' after a complete expression", 6);
    expect_error("", WEIR_EPARSE, "column 1: empty expression", 0);
    expect_error("   ", WEIR_EPARSE, "column 1: empty expression", 0);
    expect_error(NULL, WEIR_EPARSE, "column 1: empty expression", 0);
    expect_error("qty # 2", WEIR_EPARSE, "column 5: unexpected character '#'", 4);
    expect_error("qty > 1 & ok", WEIR_EPARSE, "column 9: unexpected character '&'", 8);
    expect_error("ok | ok", WEIR_EPARSE, "column 4: unexpected character '|'", 3);
    expect_error("!ok", WEIR_EPARSE, "column 1: unexpected character '!'", 0);
    expect_error("(qty > 1", WEIR_EPARSE, "column 9: expected ')'", 8);
    expect_error("lower(name", WEIR_EPARSE, "column 11: expected ')' to close lower(", 10);
    expect_error("qty is 5", WEIR_EPARSE, "column 8: expected 'null' after 'is'", 7);
    expect_error("qty is not 5", WEIR_EPARSE, "column 12: expected 'null' after 'is not'", 11);
    expect_error("qty in 1", WEIR_EPARSE, "column 8: expected '(' after 'in'", 7);
    expect_error("qty in (1, 2", WEIR_EPARSE, "column 13: expected ')' to close 'in ('", 12);
    expect_error("qty > and", WEIR_EPARSE, "column 7: expected a value, got 'and'", 6);
    expect_error("qty > ", WEIR_EPARSE, "column 7: unexpected end of expression", 6);
    expect_error("qty > ,", WEIR_EPARSE, "column 7: unexpected ','", 6);
    expect_error("lower(name,)", WEIR_EPARSE, "column 12: unexpected ')'", 11);
    expect_error("12abc", WEIR_EPARSE, "column 1: malformed number", 0);
    expect_error("qty > 9223372036854775808", WEIR_EPARSE, "column 7: integer literal out of range", 6);
}

static void
test_expr_int64_min_literal_parses(void **state)
{
    /* Java and SQL accept the most negative long as a literal */
    expect_int("-9223372036854775808", INT64_MIN);
    expect_true("big + 1 == -9223372036854775808");
}

static void
test_expr_in_list_item_limit(void **state)
{
    char src[1024], msg[96];
    size_t n = 0;
    weir_expr_t *e;

    n += (size_t)snprintf(src + n, sizeof(src) - n, "qty in (");
    for (int i = 1; i <= 64; i++)
        n += (size_t)snprintf(src + n, sizeof(src) - n, "%s%d", i > 1 ? ", " : "", i);
    snprintf(src + n, sizeof(src) - n, ")");
    e = compile(src);                           /* 64 items are fine */
    weir_expr_destroy(e);
    expect_true(src);
    snprintf(src + n, sizeof(src) - n, ", 65)");
    snprintf(msg, sizeof(msg), "column %zu: too many items in 'in (...)' (at most 64)", n + 3);
    expect_error(src, WEIR_EPARSE, msg, n + 2);
}

static void
test_expr_parse_reports_the_type_error_code_without_an_err(void **state)
{
    weir_expr_t *e = NULL;
    size_t off = 0;

    /* err may be NULL (callers that want only the code); the code must not
     * depend on it */
    assert_int_equal(weir_expr_parse("qty + 'x'", single_in, 1, &e, &off, NULL), WEIR_ETYPE);
    assert_int_equal(off, 4);
    assert_int_equal(weir_expr_parse("amout > 1", single_in, 1, &e, NULL, NULL), WEIR_ETYPE);
    assert_int_equal(weir_expr_parse("qty >", single_in, 1, &e, NULL, NULL), WEIR_EPARSE);
    assert_null(e);
}

static void
test_expr_deep_nesting_is_an_error_not_a_crash(void **state)
{
    /* expressions can come from job files submitted over HTTP: a million
     * nested parentheses must be refused, not overflow the stack. The parse
     * runs in a child process so a crash fails only this test. */
    static const struct { const char *what, *open, *mid, *close; } shapes[] = {
        { "nested parentheses", "(", "1", ")" },
        { "a chain of not", "not ", "ok", "" },
        { "a chain of unary minus", "-", "1", "" },
        { "nested calls", "abs(", "1", ")" },
        { "a flat sum (a deep tree)", "1 + ", "1", "" },
        { "a flat or-chain", "ok or ", "ok", "" },
        { "a flat concatenation", "'a' || ", "'b'", "" },
    };

    for (size_t k = 0; k < sizeof(shapes) / sizeof(shapes[0]); k++) {
        pid_t pid = fork();
        int status = 0;

        assert_true(pid >= 0);
        if (pid == 0) {
            size_t depth = 1000000, lo = strlen(shapes[k].open), lc = strlen(shapes[k].close);
            size_t lm = strlen(shapes[k].mid), n = 0;
            char *src = malloc(depth * (lo + lc) + lm + 1);
            weir_err_t err;
            weir_expr_t *e = NULL;
            int rc;

            if (src == NULL)
                _exit(3);
            for (size_t i = 0; i < depth; i++, n += lo)
                memcpy(src + n, shapes[k].open, lo);
            memcpy(src + n, shapes[k].mid, lm);
            n += lm;
            for (size_t i = 0; i < depth; i++, n += lc)
                memcpy(src + n, shapes[k].close, lc);
            src[n] = '\0';
            memset(&err, 0, sizeof(err));
            rc = weir_expr_parse(src, single_in, 1, &e, NULL, &err);
            if (rc == 0)
                weir_expr_destroy(e);
            free(src);
            _exit(rc == WEIR_EPARSE && strncmp(err.msg, "column ", 7) == 0 ? 0 : 2);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            print_error("parsing 10^6 levels of %s: %s %d (expected exit 0: WEIR_EPARSE)\n",
                        shapes[k].what, WIFSIGNALED(status) ? "killed by signal" : "exit status",
                        WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            fail();
        }
    }
}

static void
test_expr_long_flat_chains_within_the_limit_work(void **state)
{
    char src[4096];
    size_t n = 0;

    /* generated filters chain many alternatives; 100 of them must parse */
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(src + n, sizeof(src) - n, "%sqty == %d", i ? " or " : "", 100 - i);
    expect_true(src);
    n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(src + n, sizeof(src) - n, "%s1", i ? " + " : "");
    expect_int(src, 100);
    n = 0;
    for (int i = 0; i < 50; i++)
        n += (size_t)snprintf(src + n, sizeof(src) - n, "(");
    n += (size_t)snprintf(src + n, sizeof(src) - n, "qty");
    for (int i = 0; i < 50; i++)
        n += (size_t)snprintf(src + n, sizeof(src) - n, ")");
    expect_int(src, 3);
}

static void
test_expr_errors_do_not_leak(void **state)
{
    /* every failure path frees what it built (LeakSanitizer checks under ASan) */
    static const char *const bad[] = {
        "lower(name) + 1", "coalesce(qty, 1, 2, name)", "if(ok, lower(name), 1)",
        "(qty + 1) * (name || 'x')", "qty in (1, 2, 'x')", "qty in (1, 2", "lower(name) starts_with 1",
        "not not not qty", "ok and ok and ok and qty", "concat(name, name, qty)", "ts > 'x' and ok",
        "substr(lower(name), 1, 2) > 1", "floor_time(ts, lower(name))", "-lower(name)",
        "qty is not", "abs(qty) abs", "t.x", "(((qty)))) ",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        weir_expr_t *e = NULL;
        weir_err_t err;

        memset(&err, 0, sizeof(err));
        if (weir_expr_parse(bad[i], single_in, 1, &e, NULL, &err) == 0) {
            print_error("\"%s\" parsed, expected an error\n", bad[i]);
            weir_expr_destroy(e);
            fail();
        }
        assert_true(strncmp(err.msg, "column ", 7) == 0);
    }
}

static void
test_expr_keywords_and_functions_are_case_insensitive(void **state)
{
    expect_true("ok AND NOT flag IS NOT NULL");
    expect_true("TRUE Or FALSE");
    expect_str("LOWER(name)", "alice");
    expect_null("NULL", WEIR_T_NULL);
    expect_true("qty IN (3)");
    expect_true("name STARTS_WITH 'A'");
}

/* ---- eval_bool --------------------------------------------------------------------------- */

static void
test_expr_eval_bool_true_false_and_null(void **state)
{
    static const struct { const char *src; int want; } cases[] = {
        { "qty > 2", 1 }, { "qty > 5", 0 }, { "flag", 0 }, { "ni > 1", 0 }, { "ok", 1 },
        { "not ok", 0 }, { "true or flag", 1 }, { "false and flag", 0 }, { "null", 0 },
        { "ni is null", 1 }, { "qty in (1, null)", 0 }, { "amount > 1000 and ok", 1 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        weir_expr_t *e = compile(cases[i].src);
        int got = weir_expr_eval_bool(e, single_rows);
        weir_expr_destroy(e);
        if (got != cases[i].want) {
            print_error("eval_bool(\"%s\") = %d, expected %d\n", cases[i].src, got, cases[i].want);
            fail();
        }
    }
}

static void
test_expr_eval_bool_with_string_building_predicates(void **state)
{
    /* a filter's predicate may build strings (lower(), ||, string());
     * eval_bool has no arena parameter, so it must provide one itself
     * rather than report every such row as false */
    static const struct { const char *src; int want; } cases[] = {
        { "lower(name) == 'alice'", 1 },
        { "upper(merchant_type) starts_with 'ON'", 1 },
        { "name || '!' == 'Alice!'", 1 },
        { "string(qty) == '3'", 1 },
        { "concat(name, merchant_type) == 'Aliceonline'", 1 },
        { "lower(name) == 'bob'", 0 },
        /* strings built below other nodes */
        { "if(ok, lower(name), 'x') == 'alice'", 1 },
        { "coalesce(lower(ns), 'd') == 'd'", 1 },
        { "lower(name) in ('bob', 'alice')", 1 },
        { "length(lower(name)) == 5", 1 },
        { "substr(upper(name), 2) == 'LICE'", 1 },
        { "not (upper(name) == 'X')", 1 },
        { "string(qty) is not null", 1 },
        { "ok and string(amount) starts_with '1500'", 1 },
        { "int(string(qty) || '0') == 30", 1 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        weir_expr_t *e = compile(cases[i].src);
        int got = weir_expr_eval_bool(e, single_rows);
        weir_expr_destroy(e);
        if (got != cases[i].want) {
            print_error("eval_bool(\"%s\") = %d, expected %d\n", cases[i].src, got, cases[i].want);
            fail();
        }
    }
}

/* ---- allocation ---------------------------------------------------------------------------- */

static void
test_expr_eval_allocates_nothing_for_numeric_predicates(void **state)
{
    weir_expr_t *e = compile("amount > 1000 and qty in (1, 2, 3) and not (ni is not null) "
                             "and coalesce(nd, 0.5) < 5 and abs(qty - 10) % 4 == 3 "
                             "and floor_time(ts, '1m') < ts and name starts_with 'A' "
                             "and substr(name, 2) == 'lice' and if(flag, 1, 2) == 2");
    const weir_value_t *rows[1] = { row };
    long before;
    int trues = 0;

    before = nallocs;
    for (int i = 0; i < 20000; i++) {
        weir_value_t v;
        row[C_QTY] = weir_value_int(i % 5);
        row[C_AMOUNT] = weir_value_double(900.0 + (double)(i % 300));
        assert_int_equal(weir_expr_eval(e, rows, NULL, &v), 0);
        assert_int_equal(v.type, WEIR_T_BOOL);
        trues += weir_expr_eval_bool(e, rows);
        if (!v.null && v.u.b) {
            assert_true(row[C_AMOUNT].u.d > 1000);
            assert_int_equal(row[C_QTY].u.i, 3);
        }
    }
    assert_int_equal(nallocs - before, 0);
    weir_expr_destroy(e);
    /* qty == 3 on i % 5 == 3; amount > 1000 on i % 300 > 100 */
    int want = 0;
    for (int i = 0; i < 20000; i++)
        want += i % 5 == 3 && i % 300 > 100;
    assert_int_equal(trues, want);
}

static void
test_expr_string_results_allocate_only_in_the_arena(void **state)
{
    weir_expr_t *e = compile("lower(name) || '-' || string(qty) || concat(merchant_type, '!')");
    const weir_value_t *rows[1] = { row };
    long before;

    for (int i = 0; i < 3; i++) {             /* warm: the arena keeps its chunk */
        weir_value_t v;
        assert_int_equal(weir_expr_eval(e, rows, &arena, &v), 0);
        weir_arena_reset(&arena);
    }
    before = nallocs;
    for (int i = 0; i < 5000; i++) {
        weir_value_t v;
        row[C_QTY] = weir_value_int(i);
        assert_int_equal(weir_expr_eval(e, rows, &arena, &v), 0);
        if (i == 4321) {
            assert_int_equal(v.len, strlen("alice-4321online!"));
            assert_memory_equal(v.u.s, "alice-4321online!", v.len);
        }
        weir_arena_reset(&arena);
    }
    assert_int_equal(nallocs - before, 0);
    weir_expr_destroy(e);
}

/* ---- durations -------------------------------------------------------------------------------- */

static void
test_duration_parse_units(void **state)
{
    static const struct { const char *s; int64_t us; } ok[] = {
        { "100us", 100 }, { "500ms", 500000 }, { "30s", 30000000 }, { "1m", 60000000 },
        { "1min", 60000000 }, { "2h", 7200000000LL }, { "1d", 86400000000LL },
        { "250", 250000 }, { "0", 0 }, { "1.5s", 1500000 }, { "7d", 604800000000LL },
        { "90m", 5400000000LL },
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t us = -12345;
        int rc = weir_duration_parse(ok[i].s, &us);
        if (rc != 0 || us != ok[i].us) {
            print_error("duration '%s': rc %d, %lld us, expected %lld us\n", ok[i].s, rc,
                        (long long)us, (long long)ok[i].us);
            fail();
        }
    }
}

static void
test_duration_parse_rejects_garbage(void **state)
{
    static const char *const bad[] = {
        "", "   ", "abc", "ms", "5x", "5 hours", "-1s", "5sm", "1w", "s5", "5ms!", "1e999s", "+5s",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t us = -12345;
        int rc = weir_duration_parse(bad[i], &us);
        if (rc != WEIR_EPARSE || us != -12345) {
            print_error("duration '%s': rc %d, us %lld; expected WEIR_EPARSE and no output\n", bad[i],
                        rc, (long long)us);
            fail();
        }
    }
    assert_int_equal(weir_duration_parse(NULL, &(int64_t){ 0 }), WEIR_EPARSE);
}

static void
test_duration_parse_rejects_hex(void **state)
{
    int64_t us = -12345;

    /* strtod reads C hex floats; a job file's "0x10s" is a typo, not 16s */
    assert_int_equal(weir_duration_parse("0x10s", &us), WEIR_EPARSE);
    assert_int_equal(weir_duration_parse("0x1p4ms", &us), WEIR_EPARSE);
    assert_i64_equal(us, -12345);
}

static void
test_duration_parse_out_of_range_is_erange(void **state)
{
    int64_t us = -12345;

    /* expr.h: WEIR_ERANGE beyond int64 microseconds, which end 106751991.17
     * days after the epoch */
    assert_int_equal(weir_duration_parse("106751992d", &us), WEIR_ERANGE);
    assert_int_equal(weir_duration_parse("99999999999999999999", &us), WEIR_ERANGE);
    assert_int_equal(weir_duration_parse("9223372036854775808us", &us), WEIR_ERANGE);
    assert_i64_equal(us, -12345);
    assert_int_equal(weir_duration_parse("106751991d", &us), 0);  /* the largest whole day */
    assert_i64_equal(us, 106751991LL * 86400000000LL);
    assert_int_equal(weir_duration_parse("9223372036854775807us", &us), 0);
    assert_i64_equal(us, INT64_MAX);
}

int
main(void)
{
#define S(t) cmocka_unit_test_setup(t, setup_single)
#define J(t) cmocka_unit_test_setup(t, setup_join)
    const struct CMUnitTest tests[] = {
        S(test_expr_int_arithmetic),
        S(test_expr_double_arithmetic),
        S(test_expr_int_op_double_promotes_to_double),
        S(test_expr_precedence_and_associativity),
        S(test_expr_every_comparison_spelling),
        S(test_expr_string_equality_and_ordering),
        S(test_expr_nan_compares_unequal),
        S(test_expr_null_payload_is_ignored),
        S(test_expr_and_is_kleene),
        S(test_expr_or_is_kleene),
        S(test_expr_not_null_is_null),
        S(test_expr_comparison_and_arithmetic_with_null_are_null),
        S(test_expr_is_null_and_is_not_null),
        S(test_expr_in_list_with_nulls),
        S(test_expr_coalesce),
        S(test_expr_if),
        S(test_expr_int_add_sub_mul_wrap_twos_complement),
        S(test_expr_int_division_by_zero_is_null),
        S(test_expr_concat_operator_and_function),
        S(test_expr_concat_evaluates_each_argument_once),
        S(test_expr_starts_with),
        S(test_expr_lower_upper_ascii_and_leave_other_bytes),
        S(test_expr_length_counts_utf8_code_points),
        S(test_expr_substr_is_one_based_and_clamps),
        S(test_expr_substr_positions_are_code_points),
        S(test_expr_string_results_borrow_or_use_the_arena),
        S(test_expr_abs_floor_ceil_round),
        S(test_expr_abs_of_int64_min_wraps_like_java),
        S(test_expr_int_conversion),
        S(test_expr_double_conversion),
        S(test_expr_string_conversion),
        S(test_expr_string_of_double_is_shortest_round_trip),
        S(test_expr_to_timestamp),
        S(test_expr_floor_time_every_unit),
        S(test_expr_floor_time_before_1970_floors_down),
        S(test_expr_floor_time_at_int64_min_wraps_without_overflow),
        S(test_expr_timestamp_arithmetic),
        S(test_expr_timestamp_field_vs_string_literal),
        S(test_expr_now_is_the_wall_clock),
        J(test_expr_join_qualified_names_pick_the_input),
        J(test_expr_join_errors),
        S(test_expr_unknown_alias_with_a_single_input),
        S(test_expr_static_types_and_nullability),
        S(test_expr_nullable_false_means_never_null),
        S(test_expr_field_name_only_for_bare_fields),
        J(test_expr_field_name_of_qualified_field_is_the_bare_name),
        S(test_expr_unknown_field_suggests_a_near_name),
        S(test_expr_unknown_function_and_arity),
        S(test_expr_arithmetic_type_errors),
        S(test_expr_comparison_type_errors),
        S(test_expr_boolean_operator_type_errors),
        S(test_expr_function_argument_type_errors),
        S(test_expr_coalesce_checks_every_argument_after_a_null),
        S(test_expr_bad_timestamp_literal_is_a_parse_time_error),
        S(test_expr_lexical_and_syntax_errors),
        S(test_expr_int64_min_literal_parses),
        S(test_expr_in_list_item_limit),
        S(test_expr_parse_reports_the_type_error_code_without_an_err),
        S(test_expr_deep_nesting_is_an_error_not_a_crash),
        S(test_expr_long_flat_chains_within_the_limit_work),
        S(test_expr_errors_do_not_leak),
        S(test_expr_keywords_and_functions_are_case_insensitive),
        S(test_expr_eval_bool_true_false_and_null),
        S(test_expr_eval_bool_with_string_building_predicates),
        S(test_expr_eval_allocates_nothing_for_numeric_predicates),
        S(test_expr_string_results_allocate_only_in_the_arena),
        cmocka_unit_test(test_duration_parse_units),
        cmocka_unit_test(test_duration_parse_rejects_garbage),
        cmocka_unit_test(test_duration_parse_rejects_hex),
        cmocka_unit_test(test_duration_parse_out_of_range_is_erange),
    };
#undef S
#undef J
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
