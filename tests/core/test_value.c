/* tests/core/test_value.c -- values: type names, equality, order, hashing,
 * timestamp text.
 *
 * Values are the cells of every row, so their semantics leak into every
 * operator: a join matches keys with weir_value_equal and partitions them with
 * weir_value_hash, a window sorts with weir_value_compare, and every JSON
 * record's dates go through weir_ts_parse. These tests pin those semantics
 * with exact numbers: expected timestamps were computed independently (Python's
 * datetime for years 1..9999, the proleptic Gregorian calendar beyond), and the
 * pinned hashes come from calling libxxhash's XXH3 directly on the documented
 * input bytes, so a change of the hash function (which would move every key to
 * another key group and break restoring old savepoints) is caught here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "runtime/core/error.h"
#include "runtime/core/value.h"

/* cmocka 1.1 prints integers in hex; these print int64 values in decimal. */
#define assert_i64_equal(a, b)                                                   \
    do {                                                                         \
        int64_t a_ = (a), b_ = (b);                                              \
        if (a_ != b_) {                                                          \
            print_error("%s = %lld, expected %lld\n", #a, (long long)a_,         \
                        (long long)b_);                                          \
            fail();                                                              \
        }                                                                        \
    } while (0)

#define assert_u64_equal(a, b)                                                   \
    do {                                                                         \
        uint64_t a_ = (a), b_ = (b);                                             \
        if (a_ != b_) {                                                          \
            print_error("%s = %#llx, expected %#llx\n", #a, (unsigned long long)a_, \
                        (unsigned long long)b_);                                 \
            fail();                                                              \
        }                                                                        \
    } while (0)

static int
sign(int c)
{
    return (c > 0) - (c < 0);
}

/* Parses a NUL-terminated literal; returns the code, the value in *out. */
static int
parse(const char *s, int64_t *out)
{
    *out = INT64_MIN + 12345;       /* a sentinel no test expects */
    return weir_ts_parse(s, strlen(s), out);
}

static void
assert_parses_to(const char *s, int64_t want)
{
    int64_t got;
    int rc = parse(s, &got);

    if (rc != 0) {
        print_error("weir_ts_parse(\"%s\") = %d (%s), expected 0\n", s, rc, weir_strerror(rc));
        fail();
    }
    if (got != want) {
        print_error("weir_ts_parse(\"%s\") -> %lld, expected %lld\n", s, (long long)got,
                    (long long)want);
        fail();
    }
}

static void
assert_rejected(const char *s)
{
    int64_t got;
    int rc = parse(s, &got);

    if (rc != WEIR_EPARSE) {
        print_error("weir_ts_parse(\"%s\") = %d (value %lld), expected WEIR_EPARSE\n", s, rc,
                    (long long)got);
        fail();
    }
}

static void
assert_formats_as(int64_t us, const char *want)
{
    char out[32];

    memset(out, 'X', sizeof(out));
    weir_ts_format(us, out);
    if (memchr(out, '\0', sizeof(out)) == NULL) {
        print_error("weir_ts_format(%lld) left out[] unterminated\n", (long long)us);
        fail();
    }
    if (strcmp(out, want) != 0) {
        print_error("weir_ts_format(%lld) = \"%s\", expected \"%s\"\n", (long long)us, out, want);
        fail();
    }
}

/* 2024-03-01 12:34:56 UTC, in microseconds */
#define T_20240301_123456 INT64_C(1709296496000000)

/* ---- type names ------------------------------------------------------- */

static void
test_type_name_of_every_type(void **state)
{
    assert_string_equal(weir_type_name(WEIR_T_INT), "int");
    assert_string_equal(weir_type_name(WEIR_T_DOUBLE), "double");
    assert_string_equal(weir_type_name(WEIR_T_BOOL), "bool");
    assert_string_equal(weir_type_name(WEIR_T_STRING), "string");
    assert_string_equal(weir_type_name(WEIR_T_BYTES), "bytes");
    assert_string_equal(weir_type_name(WEIR_T_TIMESTAMP), "timestamp");
}

static void
test_type_name_of_unknown_type_is_null(void **state)
{
    assert_null(weir_type_name((weir_type_t)99));
    assert_null(weir_type_name((weir_type_t)(WEIR_T_TIMESTAMP + 1)));
    assert_null(weir_type_name((weir_type_t)-1));
}

static void
test_type_parse_accepts_names_and_aliases(void **state)
{
    assert_int_equal(weir_type_parse("int"), WEIR_T_INT);
    assert_int_equal(weir_type_parse("long"), WEIR_T_INT);
    assert_int_equal(weir_type_parse("bigint"), WEIR_T_INT);
    assert_int_equal(weir_type_parse("double"), WEIR_T_DOUBLE);
    assert_int_equal(weir_type_parse("float"), WEIR_T_DOUBLE);
    assert_int_equal(weir_type_parse("bool"), WEIR_T_BOOL);
    assert_int_equal(weir_type_parse("boolean"), WEIR_T_BOOL);
    assert_int_equal(weir_type_parse("string"), WEIR_T_STRING);
    assert_int_equal(weir_type_parse("varchar"), WEIR_T_STRING);
    assert_int_equal(weir_type_parse("bytes"), WEIR_T_BYTES);
    assert_int_equal(weir_type_parse("timestamp"), WEIR_T_TIMESTAMP);
}

static void
test_type_parse_ignores_case(void **state)
{
    assert_int_equal(weir_type_parse("BIGINT"), WEIR_T_INT);
    assert_int_equal(weir_type_parse("Timestamp"), WEIR_T_TIMESTAMP);
    assert_int_equal(weir_type_parse("VarChar"), WEIR_T_STRING);
}

static void
test_type_parse_rejects_unknown_names(void **state)
{
    assert_int_equal(weir_type_parse(""), -1);
    assert_int_equal(weir_type_parse("decimal"), -1);
    assert_int_equal(weir_type_parse("int "), -1);
    assert_int_equal(weir_type_parse("str"), -1);
    assert_int_equal(weir_type_parse("timestamps"), -1);
}

static void
test_type_parse_round_trips_every_type_name(void **state)
{
    for (int t = WEIR_T_INT; t <= WEIR_T_TIMESTAMP; t++)
        assert_int_equal(weir_type_parse(weir_type_name((weir_type_t)t)), t);
}

/* ---- equality --------------------------------------------------------- */

static void
test_value_null_equals_nothing_not_even_null(void **state)
{
    weir_value_t n1 = weir_value_null(WEIR_T_INT), n2 = weir_value_null(WEIR_T_INT);
    weir_value_t ns = weir_value_null(WEIR_T_STRING), zero = weir_value_int(0);
    weir_value_t empty = weir_value_str("", 0);

    assert_false(weir_value_equal(&n1, &n2));
    assert_false(weir_value_equal(&n1, &n1));
    assert_false(weir_value_equal(&n1, &zero));
    assert_false(weir_value_equal(&zero, &n1));
    assert_false(weir_value_equal(&ns, &empty));
    assert_false(weir_value_equal(&empty, &ns));
}

static void
test_value_equal_int_and_double_compare_numerically(void **state)
{
    weir_value_t i3 = weir_value_int(3), d3 = weir_value_double(3.0);
    weir_value_t d35 = weir_value_double(3.5), im7 = weir_value_int(-7);
    weir_value_t dm7 = weir_value_double(-7.0), i0 = weir_value_int(0);
    weir_value_t dneg0 = weir_value_double(-0.0);

    assert_true(weir_value_equal(&i3, &d3));
    assert_true(weir_value_equal(&d3, &i3));
    assert_false(weir_value_equal(&i3, &d35));
    assert_false(weir_value_equal(&d35, &i3));
    assert_true(weir_value_equal(&im7, &dm7));
    assert_true(weir_value_equal(&i0, &dneg0));
}

static void
test_value_equal_same_type_by_value(void **state)
{
    char a[] = "hello", b[] = "hello", c[] = "hellp";
    char bin1[] = { 'a', '\0', 'b' }, bin2[] = { 'a', '\0', 'b' }, bin3[] = { 'a', '\0', 'c' };
    weir_value_t sa = weir_value_str(a, 5), sb = weir_value_str(b, 5);
    weir_value_t sc = weir_value_str(c, 5), sprefix = weir_value_str(a, 4);
    weir_value_t e1 = weir_value_str("", 0), e2 = weir_value_str(NULL, 0);
    weir_value_t y1 = weir_value_bytes(bin1, 3), y2 = weir_value_bytes(bin2, 3);
    weir_value_t y3 = weir_value_bytes(bin3, 3);
    weir_value_t t1 = weir_value_bool(true), t2 = weir_value_bool(true);
    weir_value_t f1 = weir_value_bool(false);
    weir_value_t ts1 = weir_value_ts(42), ts2 = weir_value_ts(42), ts3 = weir_value_ts(43);
    weir_value_t d1 = weir_value_double(0.1 + 0.2), d2 = weir_value_double(0.3);

    assert_true(weir_value_equal(&sa, &sb));
    assert_false(weir_value_equal(&sa, &sc));
    assert_false(weir_value_equal(&sa, &sprefix));
    assert_true(weir_value_equal(&e1, &e2));
    assert_true(weir_value_equal(&y1, &y2));
    assert_false(weir_value_equal(&y1, &y3));
    assert_true(weir_value_equal(&t1, &t2));
    assert_false(weir_value_equal(&t1, &f1));
    assert_true(weir_value_equal(&ts1, &ts2));
    assert_false(weir_value_equal(&ts1, &ts3));
    assert_false(weir_value_equal(&d1, &d2));       /* exact, no epsilon */
}

static void
test_value_equal_is_false_across_non_numeric_types(void **state)
{
    weir_value_t i1 = weir_value_int(1), ts1 = weir_value_ts(1), bt = weir_value_bool(true);
    weir_value_t s = weir_value_str("a", 1), y = weir_value_bytes("a", 1);
    weir_value_t s1 = weir_value_str("1", 1);

    assert_false(weir_value_equal(&i1, &ts1));
    assert_false(weir_value_equal(&ts1, &i1));
    assert_false(weir_value_equal(&i1, &bt));
    assert_false(weir_value_equal(&s, &y));
    assert_false(weir_value_equal(&i1, &s1));
}

/* ---- order ------------------------------------------------------------ */

static void
test_value_compare_sorts_null_first(void **state)
{
    weir_value_t n = weir_value_null(WEIR_T_INT), n2 = weir_value_null(WEIR_T_STRING);
    weir_value_t small = weir_value_int(INT64_MIN), s = weir_value_str("", 0);
    weir_value_t f = weir_value_bool(false);

    assert_int_equal(weir_value_compare(&n, &n), 0);
    assert_int_equal(weir_value_compare(&n, &n2), 0);
    assert_int_equal(sign(weir_value_compare(&n, &small)), -1);
    assert_int_equal(sign(weir_value_compare(&small, &n)), 1);
    assert_int_equal(sign(weir_value_compare(&n2, &s)), -1);
    assert_int_equal(sign(weir_value_compare(&s, &n2)), 1);
    assert_int_equal(sign(weir_value_compare(&n, &f)), -1);
}

static void
test_value_compare_orders_int_and_double_numerically(void **state)
{
    weir_value_t i2 = weir_value_int(2), d25 = weir_value_double(2.5);
    weir_value_t i3 = weir_value_int(3), d3 = weir_value_double(3.0);
    weir_value_t im1 = weir_value_int(-1), dm15 = weir_value_double(-1.5);

    assert_int_equal(sign(weir_value_compare(&i2, &d25)), -1);
    assert_int_equal(sign(weir_value_compare(&d25, &i3)), -1);
    assert_int_equal(sign(weir_value_compare(&i3, &d25)), 1);
    assert_int_equal(weir_value_compare(&i3, &d3), 0);
    assert_int_equal(weir_value_compare(&d3, &i3), 0);
    assert_int_equal(sign(weir_value_compare(&dm15, &im1)), -1);
    assert_int_equal(sign(weir_value_compare(&im1, &dm15)), 1);
}

static void
test_value_compare_ints_and_timestamps_over_full_range(void **state)
{
    weir_value_t lo = weir_value_int(INT64_MIN), hi = weir_value_int(INT64_MAX);
    weir_value_t z = weir_value_int(0);
    weir_value_t tlo = weir_value_ts(-1), thi = weir_value_ts(1);

    assert_int_equal(sign(weir_value_compare(&lo, &hi)), -1);
    assert_int_equal(sign(weir_value_compare(&hi, &lo)), 1);
    assert_int_equal(sign(weir_value_compare(&lo, &z)), -1);
    assert_int_equal(weir_value_compare(&hi, &hi), 0);
    assert_int_equal(sign(weir_value_compare(&tlo, &thi)), -1);
}

static void
test_value_compare_strings_bytewise_then_by_length(void **state)
{
    weir_value_t ab = weir_value_str("ab", 2), abc = weir_value_str("abc", 3);
    weir_value_t abd = weir_value_str("abd", 3), b = weir_value_str("b", 1);
    weir_value_t e = weir_value_str("", 0), enull = weir_value_str(NULL, 0);
    weir_value_t hi = weir_value_str("\xc3\xa9", 2), z = weir_value_str("z", 1);
    weir_value_t y1 = weir_value_bytes("a\0a", 3), y2 = weir_value_bytes("a\0b", 3);

    assert_int_equal(sign(weir_value_compare(&ab, &abc)), -1);
    assert_int_equal(sign(weir_value_compare(&abc, &ab)), 1);
    assert_int_equal(sign(weir_value_compare(&abc, &abd)), -1);
    assert_int_equal(sign(weir_value_compare(&b, &abc)), 1);
    assert_int_equal(sign(weir_value_compare(&e, &ab)), -1);
    assert_int_equal(weir_value_compare(&e, &enull), 0);
    assert_int_equal(weir_value_compare(&abc, &abc), 0);
    /* bytes compare unsigned: UTF-8 'é' (0xc3..) sorts after 'z' */
    assert_int_equal(sign(weir_value_compare(&hi, &z)), 1);
    assert_int_equal(sign(weir_value_compare(&y1, &y2)), -1);
}

static void
test_value_compare_bools_false_before_true(void **state)
{
    weir_value_t f = weir_value_bool(false), t = weir_value_bool(true);

    assert_int_equal(sign(weir_value_compare(&f, &t)), -1);
    assert_int_equal(sign(weir_value_compare(&t, &f)), 1);
    assert_int_equal(weir_value_compare(&t, &t), 0);
}

static void
test_value_compare_across_types_is_antisymmetric(void **state)
{
    weir_value_t v[] = {
        weir_value_int(5), weir_value_double(5.5), weir_value_bool(true),
        weir_value_str("5", 1), weir_value_bytes("5", 1), weir_value_ts(5),
    };
    size_t n = sizeof(v) / sizeof(v[0]);

    for (size_t i = 0; i < n; i++) {
        assert_int_equal(weir_value_compare(&v[i], &v[i]), 0);
        for (size_t j = 0; j < n; j++) {
            if (i == j)
                continue;
            int a = sign(weir_value_compare(&v[i], &v[j]));
            int b = sign(weir_value_compare(&v[j], &v[i]));
            assert_int_equal(a, -b);
            assert_int_not_equal(a, 0);
        }
    }
}

/* "Total order for sorting": NaN must have one place in it. Today NaN
 * compares 0 against every number, so 1 < 2 while NaN == 1 and NaN == 2,
 * which breaks qsort and merge-based windows. */
static void
test_value_compare_nan_has_one_place_in_the_order(void **state)
{
    weir_value_t nan = weir_value_double(NAN), one = weir_value_double(1.0);
    weir_value_t two = weir_value_double(2.0), itwo = weir_value_int(2);

    assert_int_equal(weir_value_compare(&nan, &nan), 0);
    assert_int_not_equal(weir_value_compare(&nan, &one), 0);
    assert_int_equal(sign(weir_value_compare(&nan, &one)), -sign(weir_value_compare(&one, &nan)));
    assert_int_equal(sign(weir_value_compare(&nan, &one)), sign(weir_value_compare(&nan, &two)));
    assert_int_equal(sign(weir_value_compare(&nan, &two)), sign(weir_value_compare(&nan, &itwo)));
}

/* ---- hashing ---------------------------------------------------------- */

static void
test_value_hash_int_and_integral_double_alike(void **state)
{
    static const int64_t ints[] = { 0, 1, 3, -7, 1000000007, -(INT64_C(1) << 40),
                                    INT64_C(1) << 52 };

    for (size_t k = 0; k < sizeof(ints) / sizeof(ints[0]); k++) {
        weir_value_t i = weir_value_int(ints[k]), d = weir_value_double((double)ints[k]);

        assert_u64_equal(weir_value_hash(&i, 0), weir_value_hash(&d, 0));
        assert_u64_equal(weir_value_hash(&i, 42), weir_value_hash(&d, 42));
    }
}

static void
test_value_hash_negative_zero_like_zero(void **state)
{
    weir_value_t z = weir_value_double(0.0), nz = weir_value_double(-0.0);
    weir_value_t iz = weir_value_int(0);

    assert_true(weir_value_equal(&z, &nz));
    assert_u64_equal(weir_value_hash(&z, 9), weir_value_hash(&nz, 9));
    assert_u64_equal(weir_value_hash(&iz, 9), weir_value_hash(&nz, 9));
}

static void
test_value_hash_non_integral_double_differs_from_int(void **state)
{
    weir_value_t i3 = weir_value_int(3), d35 = weir_value_double(3.5);
    weir_value_t d3x = weir_value_double(3.0000000001);

    assert_true(weir_value_hash(&i3, 0) != weir_value_hash(&d35, 0));
    assert_true(weir_value_hash(&i3, 0) != weir_value_hash(&d3x, 0));
}

/* The contract: equal values hash equal. Checked on the pairs that stress the
 * int/double bridge: beyond 2^53 an int is not exactly a double, and near
 * 2^63 the "fits in int64" test of the hash must agree with equality. */
static void
test_value_equal_values_hash_equal_near_int64_limits(void **state)
{
    struct { int64_t i; double d; } pairs[] = {
        { (INT64_C(1) << 53) + 1, 9007199254740992.0 },         /* 2^53+1 vs 2^53 */
        { INT64_C(9200000000000000000), 9.2e18 },
        { INT64_C(9223372036854774784), 9223372036854774784.0 }, /* 2^63-1024 */
        { INT64_MIN, -9223372036854775808.0 },
    };

    for (size_t k = 0; k < sizeof(pairs) / sizeof(pairs[0]); k++) {
        weir_value_t i = weir_value_int(pairs[k].i), d = weir_value_double(pairs[k].d);
        bool eq = weir_value_equal(&i, &d);
        uint64_t hi = weir_value_hash(&i, 0), hd = weir_value_hash(&d, 0);

        if (eq && hi != hd) {
            print_error("int %lld and double %.17g are equal but hash %#llx vs %#llx\n",
                        (long long)pairs[k].i, pairs[k].d, (unsigned long long)hi,
                        (unsigned long long)hd);
            fail();
        }
        /* equality must also agree with compare */
        assert_int_equal(eq, weir_value_compare(&i, &d) == 0);
    }
}

static void
test_value_hash_strings_by_content_not_address(void **state)
{
    char a[] = "account-17", b[] = "account-17";
    weir_value_t sa = weir_value_str(a, 10), sb = weir_value_str(b, 10);
    weir_value_t sc = weir_value_str("account-18", 10), sp = weir_value_str(a, 9);

    assert_u64_equal(weir_value_hash(&sa, 0), weir_value_hash(&sb, 0));
    assert_true(weir_value_hash(&sa, 0) != weir_value_hash(&sc, 0));
    assert_true(weir_value_hash(&sa, 0) != weir_value_hash(&sp, 0));
    assert_true(weir_value_hash(&sa, 0) != weir_value_hash(&sa, 1));
}

static void
test_value_hash_null_alike_for_every_type(void **state)
{
    weir_value_t ni = weir_value_null(WEIR_T_INT), ns = weir_value_null(WEIR_T_STRING);
    weir_value_t nt = weir_value_null(WEIR_T_TIMESTAMP), e = weir_value_str("", 0);

    assert_u64_equal(weir_value_hash(&ni, 5), weir_value_hash(&ns, 5));
    assert_u64_equal(weir_value_hash(&ni, 5), weir_value_hash(&nt, 5));
    assert_true(weir_value_hash(&ns, 5) != weir_value_hash(&e, 5));
}

static void
test_value_hash_bools_differ(void **state)
{
    weir_value_t t = weir_value_bool(true), f = weir_value_bool(false);
    weir_value_t t2 = weir_value_bool(true);

    assert_true(weir_value_hash(&t, 0) != weir_value_hash(&f, 0));
    assert_u64_equal(weir_value_hash(&t, 0), weir_value_hash(&t2, 0));
}

/* Key groups are hash(key) mod max_parallelism and are stored in savepoints:
 * these values must never change. They are XXH3_64bits_withSeed over the
 * int64 (little-endian) or the string bytes, computed with libxxhash 0.8.1
 * directly, not through weir. */
static void
test_value_hash_is_stable(void **state)
{
    weir_value_t i3 = weir_value_int(3), d3 = weir_value_double(3.0);
    weir_value_t ts3 = weir_value_ts(3);
    weir_value_t weir = weir_value_str("weir", 4), hello = weir_value_str("hello", 5);
    weir_value_t hello_b = weir_value_bytes("hello", 5), e = weir_value_str("", 0);
    weir_value_t n = weir_value_null(WEIR_T_STRING);
    weir_value_t t = weir_value_bool(true), f = weir_value_bool(false);
    weir_value_t d35 = weir_value_double(3.5);

    assert_u64_equal(weir_value_hash(&i3, 0), UINT64_C(0x4d922029c1f42e7d));
    assert_u64_equal(weir_value_hash(&d3, 0), UINT64_C(0x4d922029c1f42e7d));
    assert_u64_equal(weir_value_hash(&ts3, 0), UINT64_C(0x4d922029c1f42e7d));
    assert_u64_equal(weir_value_hash(&i3, 42), UINT64_C(0xc0ee46e3c1e98bbe));
    assert_u64_equal(weir_value_hash(&weir, 0), UINT64_C(0x09831dc741817118));
    assert_u64_equal(weir_value_hash(&hello, 7), UINT64_C(0x1f683eda4e829e1b));
    assert_u64_equal(weir_value_hash(&hello_b, 7), UINT64_C(0x1f683eda4e829e1b));
    assert_u64_equal(weir_value_hash(&e, 0), UINT64_C(0x2d06800538d394c2));
    assert_u64_equal(weir_value_hash(&n, 0), UINT64_C(0xc44bdff4074eecdb));
    /* bool: one tag byte (true 2, false 1); non-integral double: its 8 bytes;
     * each with the seed xor-ed with a per-kind constant */
    assert_u64_equal(weir_value_hash(&t, 0), UINT64_C(0x62196651cfd040f5));
    assert_u64_equal(weir_value_hash(&f, 0), UINT64_C(0x44345ff073e331e4));
    assert_u64_equal(weir_value_hash(&d35, 0), UINT64_C(0xd22bb89c419ed0ed));
}

/* ---- timestamp parsing ------------------------------------------------ */

static void
test_ts_parse_space_separated_with_micros(void **state)
{
    assert_parses_to("2024-03-01 12:34:56.123456", T_20240301_123456 + 123456);
}

static void
test_ts_parse_iso_with_z(void **state)
{
    assert_parses_to("2024-03-01T12:34:56.123456Z", T_20240301_123456 + 123456);
    assert_parses_to("2024-03-01T12:34:56Z", T_20240301_123456);
    assert_parses_to("1970-01-01T00:00:00Z", 0);
    assert_parses_to("1969-12-31T23:59:59.999999Z", -1);
}

static void
test_ts_parse_iso_with_positive_offset(void **state)
{
    assert_parses_to("2024-03-01T14:34:56.123456+02:00", T_20240301_123456 + 123456);
    assert_parses_to("2024-03-01T14:34:56+02:00", T_20240301_123456);
    assert_parses_to("2024-03-01T14:34:56+0200", T_20240301_123456);
    assert_parses_to("2024-03-01T18:04:56+05:30", T_20240301_123456);
    assert_parses_to("2024-03-01T12:34:56+00:00", T_20240301_123456);
}

static void
test_ts_parse_iso_with_negative_offset(void **state)
{
    assert_parses_to("2024-03-01T07:34:56-05:00", T_20240301_123456);
    assert_parses_to("2024-03-01T12:34:56-00:00", T_20240301_123456);
}

static void
test_ts_parse_offset_crosses_midnight_into_leap_day(void **state)
{
    /* 00:30 at +02:00 is 22:30 UTC on the day before: 2024-02-29 */
    assert_parses_to("2024-03-01T00:30:00+02:00", INT64_C(1709245800000000));
}

static void
test_ts_parse_without_fraction(void **state)
{
    assert_parses_to("2024-03-01 12:34:56", T_20240301_123456);
    assert_parses_to("2024-03-01T12:34:56", T_20240301_123456);
}

static void
test_ts_parse_fraction_of_1_to_9_digits_truncates_to_micros(void **state)
{
    static const int64_t want123[10] = {
        0, 100000, 120000, 123000, 123400, 123450, 123456, 123456, 123456, 123456,
    };
    static const int64_t want999[10] = {
        0, 900000, 990000, 999000, 999900, 999990, 999999, 999999, 999999, 999999,
    };
    char s[64];

    for (int nd = 1; nd <= 9; nd++) {
        snprintf(s, sizeof(s), "2024-03-01 12:34:56.%.*s", nd, "123456789");
        assert_parses_to(s, T_20240301_123456 + want123[nd]);
        /* truncated, not rounded: .9999999 stays in the same second */
        snprintf(s, sizeof(s), "2024-03-01T12:34:56.%.*sZ", nd, "999999999");
        assert_parses_to(s, T_20240301_123456 + want999[nd]);
    }
}

static void
test_ts_parse_date_only_is_midnight_utc(void **state)
{
    assert_parses_to("2024-03-01", INT64_C(1709251200000000));
    assert_parses_to("1970-01-01", 0);
    assert_parses_to("1900-01-01", INT64_C(-2208988800000000));
    assert_parses_to("0001-01-01", INT64_C(-62135596800000000));
    assert_parses_to("0000-01-01", INT64_C(-62167219200000000));
    assert_parses_to("9999-12-31", INT64_C(253402214400000000));
}

static void
test_ts_parse_leap_day_valid(void **state)
{
    assert_parses_to("2024-02-29 23:59:59.999999", INT64_C(1709251199999999));
    assert_parses_to("2000-02-29", INT64_C(951782400000000));
}

static void
test_ts_parse_leap_day_invalid(void **state)
{
    assert_rejected("2023-02-29");
    assert_rejected("1900-02-29");
    assert_rejected("2100-02-29 00:00:00");
    assert_rejected("2024-02-30");
}

static void
test_ts_parse_rejects_bad_months_and_days(void **state)
{
    assert_rejected("2024-00-10");
    assert_rejected("2024-13-01");
    assert_rejected("2024-99-01");
    assert_rejected("2024-01-00");
    assert_rejected("2024-01-32");
    assert_rejected("2024-04-31");
    assert_rejected("2024-06-31T00:00:00Z");
    assert_rejected("2024-11-31");
}

static void
test_ts_parse_rejects_bad_times_and_offsets(void **state)
{
    assert_rejected("2024-03-01 24:00:00");
    assert_rejected("2024-03-01 12:60:00");
    assert_rejected("2024-03-01 12:34:61");
    assert_rejected("2024-03-01T12:34:56+24:00");
    assert_rejected("2024-03-01T12:34:56+02:60");
    assert_rejected("2024-03-01T12:34:56+2");
    assert_rejected("2024-03-01T12:34:56+02:");
}

static void
test_ts_parse_rejects_garbage(void **state)
{
    static const char *const bad[] = {
        "", "x", "hello world", "2024", "2024-03", "2024-3-1", "2024/03/01", "20240301",
        " 2024-03-01", "2024-03-01 ", "2024-03-01T", "2024-03-01 12", "2024-03-01 12:3",
        "2024-03-01 12:34:56.", "2024-03-01 12:34:56.Z", "2024-03-01T12:34:56ZZ",
        "2024-03-01T12:34:56Z+01:00", "2024-03-01X12:34:56", "2024-03-01 12:34:56 UTC",
        "2024-03-01 12:34:56.123abc", "2024-03-01Z", "abcd-ef-gh", "-024-03-01",
        "2024-03-01\n", "1709296496",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_rejected(bad[i]);
}

static void
test_ts_parse_respects_len_and_embedded_nul(void **state)
{
    const char s[] = "2024-03-01 12:34:56.123456 trailing text";
    const char withnul[] = "2024-03-01\0 12:00:00";
    int64_t got = 0;

    assert_int_equal(weir_ts_parse(s, 26, &got), 0);
    assert_i64_equal(got, T_20240301_123456 + 123456);
    assert_int_equal(weir_ts_parse(s, 19, &got), 0);
    assert_i64_equal(got, T_20240301_123456);
    assert_int_equal(weir_ts_parse(s, 10, &got), 0);
    assert_i64_equal(got, INT64_C(1709251200000000));
    assert_int_equal(weir_ts_parse(s, 9, &got), WEIR_EPARSE);
    assert_int_equal(weir_ts_parse(s, 27, &got), WEIR_EPARSE);
    assert_int_equal(weir_ts_parse(withnul, sizeof(withnul) - 1, &got), WEIR_EPARSE);
    assert_int_equal(weir_ts_parse(s, 0, &got), WEIR_EPARSE);
}

/* RFC 3339 section 5.6: "T" and "Z" may alternatively be lower case. The
 * parser takes 'z' but not 't', so a record with "2024-03-01t12:34:56z" goes
 * to the dead-letter output. */
static void
test_ts_parse_accepts_rfc3339_lowercase_t_and_z(void **state)
{
    assert_parses_to("2024-03-01T12:34:56z", T_20240301_123456);
    assert_parses_to("2024-03-01t12:34:56Z", T_20240301_123456);
    assert_parses_to("2024-03-01t12:34:56z", T_20240301_123456);
}

/* ---- timestamp formatting --------------------------------------------- */

static void
test_ts_format_known_instants(void **state)
{
    assert_formats_as(0, "1970-01-01 00:00:00.000000");
    assert_formats_as(1, "1970-01-01 00:00:00.000001");
    assert_formats_as(T_20240301_123456 + 123456, "2024-03-01 12:34:56.123456");
    assert_formats_as(INT64_C(1709251199999999), "2024-02-29 23:59:59.999999");
    assert_formats_as(INT64_C(2147483648000000), "2038-01-19 03:14:08.000000");
    assert_formats_as(INT64_C(253402300799999999), "9999-12-31 23:59:59.999999");
}

static void
test_ts_format_before_1970(void **state)
{
    assert_formats_as(-1, "1969-12-31 23:59:59.999999");
    assert_formats_as(-1000000, "1969-12-31 23:59:59.000000");
    assert_formats_as(-1000001, "1969-12-31 23:59:58.999999");
    assert_formats_as(INT64_C(-86400000000), "1969-12-31 00:00:00.000000");
    assert_formats_as(INT64_C(-86400000001), "1969-12-30 23:59:59.999999");
    assert_formats_as(INT64_C(-14182940000000), "1969-07-20 20:17:40.000000");
    assert_formats_as(INT64_C(-2208988800000000), "1900-01-01 00:00:00.000000");
    assert_formats_as(INT64_C(-62135596800000000), "0001-01-01 00:00:00.000000");
    assert_formats_as(INT64_C(-62167219200000000), "0000-01-01 00:00:00.000000");
}

/* The whole int64 range must format without overflow: a corrupt record can
 * carry any int64 as a timestamp. Values from the proleptic Gregorian
 * calendar (astronomical year numbering), as e.g. Java's Instant prints them. */
static void
test_ts_format_int64_extremes(void **state)
{
    assert_formats_as(INT64_MAX, "294247-01-10 04:00:54.775807");
    assert_formats_as(INT64_MIN + 1, "-290308-12-21 19:59:05.224193");
    assert_formats_as(INT64_MIN, "-290308-12-21 19:59:05.224192");
}

static void
test_ts_format_then_parse_round_trips_years_0_to_9999(void **state)
{
    const int64_t lo = INT64_C(-62167219200000000);    /* 0000-01-01 */
    const int64_t hi = INT64_C(253402300799999999);    /* 9999-12-31 23:59:59.999999 */
    uint64_t x = 0x9e3779b97f4a7c15ull;
    char out[32];
    int64_t got;

    for (int k = 0; k < 200000; k++) {
        int64_t us;

        x ^= x << 13; x ^= x >> 7; x ^= x << 17;   /* xorshift64 */
        if (k < 4000)
            us = (int64_t)(k - 2000) * 86400000000 / 7 + (k % 3) - 1;   /* around the epoch */
        else
            us = lo + (int64_t)(x % (uint64_t)(hi - lo + 1));
        weir_ts_format(us, out);
        if (weir_ts_parse(out, strlen(out), &got) != 0 || got != us) {
            print_error("format(%lld) = \"%s\" parses back to %lld\n", (long long)us, out,
                        (long long)got);
            fail();
        }
    }
    weir_ts_format(lo, out);
    assert_int_equal(weir_ts_parse(out, strlen(out), &got), 0);
    assert_i64_equal(got, lo);
    weir_ts_format(hi, out);
    assert_int_equal(weir_ts_parse(out, strlen(out), &got), 0);
    assert_i64_equal(got, hi);
}

/* ---- clocks ----------------------------------------------------------- */

static void
test_now_us_is_after_2024_and_mono_ns_does_not_go_back(void **state)
{
    uint64_t m1 = weir_mono_ns(), m2;
    int64_t now = weir_now_us();

    assert_true(now > INT64_C(1704067200000000));          /* 2024-01-01 */
    assert_true(now < INT64_C(4102444800000000));          /* 2100-01-01 */
    for (int i = 0; i < 1000; i++) {
        m2 = weir_mono_ns();
        assert_true(m2 >= m1);
        m1 = m2;
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_type_name_of_every_type),
        cmocka_unit_test(test_type_name_of_unknown_type_is_null),
        cmocka_unit_test(test_type_parse_accepts_names_and_aliases),
        cmocka_unit_test(test_type_parse_ignores_case),
        cmocka_unit_test(test_type_parse_rejects_unknown_names),
        cmocka_unit_test(test_type_parse_round_trips_every_type_name),
        cmocka_unit_test(test_value_null_equals_nothing_not_even_null),
        cmocka_unit_test(test_value_equal_int_and_double_compare_numerically),
        cmocka_unit_test(test_value_equal_same_type_by_value),
        cmocka_unit_test(test_value_equal_is_false_across_non_numeric_types),
        cmocka_unit_test(test_value_compare_sorts_null_first),
        cmocka_unit_test(test_value_compare_orders_int_and_double_numerically),
        cmocka_unit_test(test_value_compare_ints_and_timestamps_over_full_range),
        cmocka_unit_test(test_value_compare_strings_bytewise_then_by_length),
        cmocka_unit_test(test_value_compare_bools_false_before_true),
        cmocka_unit_test(test_value_compare_across_types_is_antisymmetric),
        cmocka_unit_test(test_value_compare_nan_has_one_place_in_the_order),
        cmocka_unit_test(test_value_hash_int_and_integral_double_alike),
        cmocka_unit_test(test_value_hash_negative_zero_like_zero),
        cmocka_unit_test(test_value_hash_non_integral_double_differs_from_int),
        cmocka_unit_test(test_value_equal_values_hash_equal_near_int64_limits),
        cmocka_unit_test(test_value_hash_strings_by_content_not_address),
        cmocka_unit_test(test_value_hash_null_alike_for_every_type),
        cmocka_unit_test(test_value_hash_bools_differ),
        cmocka_unit_test(test_value_hash_is_stable),
        cmocka_unit_test(test_ts_parse_space_separated_with_micros),
        cmocka_unit_test(test_ts_parse_iso_with_z),
        cmocka_unit_test(test_ts_parse_iso_with_positive_offset),
        cmocka_unit_test(test_ts_parse_iso_with_negative_offset),
        cmocka_unit_test(test_ts_parse_offset_crosses_midnight_into_leap_day),
        cmocka_unit_test(test_ts_parse_without_fraction),
        cmocka_unit_test(test_ts_parse_fraction_of_1_to_9_digits_truncates_to_micros),
        cmocka_unit_test(test_ts_parse_date_only_is_midnight_utc),
        cmocka_unit_test(test_ts_parse_leap_day_valid),
        cmocka_unit_test(test_ts_parse_leap_day_invalid),
        cmocka_unit_test(test_ts_parse_rejects_bad_months_and_days),
        cmocka_unit_test(test_ts_parse_rejects_bad_times_and_offsets),
        cmocka_unit_test(test_ts_parse_rejects_garbage),
        cmocka_unit_test(test_ts_parse_respects_len_and_embedded_nul),
        cmocka_unit_test(test_ts_parse_accepts_rfc3339_lowercase_t_and_z),
        cmocka_unit_test(test_ts_format_known_instants),
        cmocka_unit_test(test_ts_format_before_1970),
        cmocka_unit_test(test_ts_format_int64_extremes),
        cmocka_unit_test(test_ts_format_then_parse_round_trips_years_0_to_9999),
        cmocka_unit_test(test_now_us_is_after_2024_and_mono_ns_does_not_go_back),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
