/* tests/core/test_json_row.c -- the JSON reader's grammar check and number edges.
 *
 * tests/core/test_json_rows.c covers what records mean and cost; this file
 * covers the pass that makes the reader strict where jsmn is lenient: the
 * text between tokens at every depth (including under unknown keys, which
 * are otherwise skipped unread), raw control characters in strings, the
 * byte offset a reason points at, keys whose escapes spell a field name
 * (up to surrogate pairs) or could not, exact int64 edges without a detour
 * through double, and the writer's shortest doubles at the extremes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/core/batch.h"
#include "runtime/core/buf.h"
#include "runtime/core/error.h"
#include "runtime/core/json_row.h"
#include "runtime/core/schema.h"
#include "runtime/core/value.h"

/* {id int, ok bool?, name string?, "\xf0\x9f\x98\x80" int? (an emoji), ts timestamp?} */
enum { C_ID, C_OK, C_NAME, C_EMOJI, C_TS, NC };

typedef struct {
    weir_schema_t      *schema;
    weir_json_reader_t *reader;
    weir_batch_t       *batch;
    weir_buf_t          buf;
} fx_t;

static int
setup(void **state)
{
    fx_t *fx = calloc(1, sizeof(*fx));

    if (fx == NULL || (fx->schema = weir_schema_new(NC)) == NULL ||
        weir_schema_set(fx->schema, C_ID, "id", WEIR_T_INT, false) != 0 ||
        weir_schema_set(fx->schema, C_OK, "ok", WEIR_T_BOOL, true) != 0 ||
        weir_schema_set(fx->schema, C_NAME, "name", WEIR_T_STRING, true) != 0 ||
        weir_schema_set(fx->schema, C_EMOJI, "\xf0\x9f\x98\x80", WEIR_T_INT, true) != 0 ||
        weir_schema_set(fx->schema, C_TS, "ts", WEIR_T_TIMESTAMP, true) != 0 ||
        weir_json_reader_create(fx->schema, &fx->reader) != 0 ||
        (fx->batch = weir_batch_new(fx->schema, 4)) == NULL)
        return -1;
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    fx_t *fx = *state;

    weir_json_reader_destroy(fx->reader);
    weir_batch_destroy(fx->batch);
    weir_schema_unref(fx->schema);
    weir_buf_free(&fx->buf);
    free(fx);
    return 0;
}

static const weir_value_t *
parse_ok_(fx_t *fx, const char *text, int line)
{
    weir_err_t err;
    int before = fx->batch->nrows;

    memset(&err, 0, sizeof(err));
    if (weir_json_reader_parse(fx->reader, text, strlen(text), fx->batch, &err) != 0) {
        print_error("line %d: %s: refused: %s\n", line, text, err.msg);
        fail();
    }
    assert_int_equal(fx->batch->nrows, before + 1);
    return weir_batch_row(fx->batch, fx->batch->nrows - 1);
}
#define parse_ok(fx, text) parse_ok_((fx), (text), __LINE__)

/* msg NULL: any message; else the exact message */
static void
expect_reject_(fx_t *fx, const char *text, int code, const char *msg, int line)
{
    weir_err_t err;
    int before = fx->batch->nrows, rc;

    memset(&err, 0, sizeof(err));
    rc = weir_json_reader_parse(fx->reader, text, strlen(text), fx->batch, &err);
    if (rc != code || err.code != code || (msg != NULL && strcmp(err.msg, msg) != 0) ||
        fx->batch->nrows != before) {
        print_error("line %d: %s:\n  got      rc %d \"%s\" nrows %d\n  expected rc %d \"%s\" nrows %d\n",
                    line, text, rc, err.msg, fx->batch->nrows, code, msg ? msg : "(any)", before);
        fail();
    }
}
#define expect_reject(fx, text, code, msg) expect_reject_((fx), (text), (code), (msg), __LINE__)

static const char *
written(fx_t *fx, weir_value_t v)
{
    weir_buf_reset(&fx->buf);
    assert_int_equal(weir_json_write_value(&v, &fx->buf), 0);
    assert_int_equal(weir_buf_nul(&fx->buf), 0);
    return fx->buf.data;
}

/* ---- the grammar under unknown keys ---------------------------------------------- */

static void
test_json_row_bad_json_nested_under_an_unknown_key_is_rejected(void **state)
{
    fx_t *fx = *state;
    static const char *const bad[] = {
        "{\"id\":1,\"x\":{\"a\":1 \"b\":2}}",        /* missing comma, one level down */
        "{\"id\":1,\"x\":[1 2]}",
        "{\"id\":1,\"x\":[1,,2]}",
        "{\"id\":1,\"x\":[,1]}",
        "{\"id\":1,\"x\":[1,]}",
        "{\"id\":1,\"x\":{\"a\":1,}}",
        "{\"id\":1,\"x\":{\"a\"}}",                 /* a key without a value */
        "{\"id\":1,\"x\":{\"a\":}}",
        "{\"id\":1,\"x\":{\"a\"::1}}",
        "{\"id\":1,\"x\":[1:2]}",                   /* a colon in an array */
        "{\"id\":1,\"x\":{\"a\":1:2}}",
        "{\"id\":1,\"x\":{\"a\":\"b\":1}}",
        "{\"id\":1,\"x\":[[[[tru]]]]}",
        "{\"id\":1,\"x\":[{\"y\":[-]}]}",
        "{\"id\":1,\"x\":{\"y\":{\"z\":1.e5}}}",
        "{\"id\":1,\"x\":[\"a\" \"b\"]}",
        "{\"id\":1,\"x\":{}{}}",
        "{\"id\":1 ,, \"ok\":true}",
        "{\"id\":1,\"x\":[1]]}",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_reject(fx, bad[i], WEIR_EPARSE, NULL);
    assert_int_equal(fx->batch->nrows, 0);
}

static void
test_json_row_valid_nesting_of_every_kind_is_accepted(void **state)
{
    fx_t *fx = *state;
    const weir_value_t *r;

    r = parse_ok(fx, " \t\r\n{ \"x\" : [ [ [ { \"a\" : [ ] , \"b\" : { } } ] ] , 1 , -0.5e-3 , "
                     "\"s\" , true , false , null ] , \"id\" : 7 , \"y\" : { \"id\" : \"no\" } } \n");
    assert_int_equal(r[C_ID].u.i, 7);
    assert_true(r[C_NAME].null);
    r = parse_ok(fx, "{\"id\":8,\"x\":{},\"y\":[],\"z\":[{}],\"w\":[[]]}");
    assert_int_equal(r[C_ID].u.i, 8);
    r = parse_ok(fx, "{\"x\":{\"a\":{\"b\":{\"c\":[0,1,2,{\"d\":null}]}}},\"id\":9}");
    assert_int_equal(r[C_ID].u.i, 9);
}

static void
test_json_row_reason_points_at_the_byte(void **state)
{
    fx_t *fx = *state;

    expect_reject(fx, "{\"id\":1 \"ok\":true}", WEIR_EPARSE,
                  "not valid JSON (unexpected '\"' at byte 8)");
    expect_reject(fx, "{\"id\":1,\"x\":[1,,2]}", WEIR_EPARSE,
                  "not valid JSON (unexpected ',' at byte 15)");
    expect_reject(fx, "{\"id\":01}", WEIR_EPARSE, "not valid JSON (unexpected '0' at byte 6)");
    expect_reject(fx, "{\"id\":1,\"ok\":tru}", WEIR_EPARSE, "not valid JSON (unexpected 't' at byte 13)");
    expect_reject(fx, "{\"id\":1,}", WEIR_EPARSE, "not valid JSON (unexpected ',' at byte 7)");
    expect_reject(fx, "{\"id\"}", WEIR_EPARSE, "not valid JSON (unexpected '}' at byte 5)");
    expect_reject(fx, "{\"id\": }", WEIR_EPARSE, "not valid JSON (unexpected '}' at byte 7)");
    expect_reject(fx, "{\"id\":1,\"x\":{}{}}", WEIR_EPARSE, "not valid JSON (unexpected '{' at byte 14)");
}

static void
test_json_row_raw_control_characters_in_strings_are_rejected(void **state)
{
    fx_t *fx = *state;
    const weir_value_t *r;

    expect_reject(fx, "{\"id\":1,\"name\":\"a\tb\"}", WEIR_EPARSE,
                  "not valid JSON (unexpected byte 0x09 at byte 17)");
    expect_reject(fx, "{\"id\":1,\"other\":\"a\nb\"}", WEIR_EPARSE, NULL);     /* also when skipped */
    expect_reject(fx, "{\"id\":1,\"x\x01y\":2}", WEIR_EPARSE, NULL);           /* also in a key */
    r = parse_ok(fx, "{\"id\":1,\"name\":\"a\\tb\x7f\"}");       /* escaped tab and DEL are fine */
    assert_int_equal(r[C_NAME].len, 4);
    assert_memory_equal(r[C_NAME].u.s, "a\tb\x7f", 4);
}

/* ---- keys ------------------------------------------------------------------------ */

static void
test_json_row_key_spelled_with_a_surrogate_pair_matches(void **state)
{
    fx_t *fx = *state;
    const weir_value_t *r = parse_ok(fx, "{\"id\":1,\"\\ud83d\\ude00\":42}");

    assert_false(r[C_EMOJI].null);
    assert_int_equal(r[C_EMOJI].u.i, 42);
    r = parse_ok(fx, "{\"id\":1,\"\xf0\x9f\x98\x80\":43}");                  /* raw UTF-8 too */
    assert_int_equal(r[C_EMOJI].u.i, 43);
}

static void
test_json_row_escaped_keys_that_cannot_be_fields_are_ignored(void **state)
{
    fx_t *fx = *state;
    char text[4096];
    size_t n = 0;
    const weir_value_t *r;

    /* a key far longer than any field name, escapes and all; a key with a
     * lone surrogate; a key that only decodes to a prefix of a field name */
    n += (size_t)snprintf(text + n, sizeof(text) - n, "{\"");
    for (int i = 0; i < 400; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "\\u0069");
    snprintf(text + n, sizeof(text) - n, "\":5,\"\\ud800x\":6,\"n\\u0061m\":7,\"id\":8}");
    r = parse_ok(fx, text);
    assert_int_equal(r[C_ID].u.i, 8);
    assert_true(r[C_NAME].null);
}

static void
test_json_row_escaped_key_repeating_a_field_keeps_the_first(void **state)
{
    fx_t *fx = *state;
    const weir_value_t *r = parse_ok(fx, "{\"id\":1,\"i\\u0064\":2}");

    assert_int_equal(r[C_ID].u.i, 1);
    r = parse_ok(fx, "{\"\\u0069d\":3,\"id\":\"not even an int\"}");
    assert_int_equal(r[C_ID].u.i, 3);
}

/* ---- numbers ---------------------------------------------------------------------- */

static void
test_json_row_int64_edges_are_exact(void **state)
{
    fx_t *fx = *state;
    const weir_value_t *r;

    /* beyond 2^53 a detour through double would round these */
    r = parse_ok(fx, "{\"id\":9223372036854775807}");
    assert_true(r[C_ID].u.i == INT64_MAX);
    r = parse_ok(fx, "{\"id\":-9223372036854775808}");
    assert_true(r[C_ID].u.i == INT64_MIN);
    r = parse_ok(fx, "{\"id\":9007199254740993}");
    assert_true(r[C_ID].u.i == 9007199254740993LL);
    r = parse_ok(fx, "{\"id\":-0}");
    assert_true(r[C_ID].u.i == 0);
    r = parse_ok(fx, "{\"id\":2.5e1}");
    assert_true(r[C_ID].u.i == 25);
    expect_reject(fx, "{\"id\":92233720368547758070}", WEIR_ETYPE,
                  "field 'id': 92233720368547758070 is not an integer in range");
    expect_reject(fx, "{\"id\":-9223372036854775809}", WEIR_ETYPE,
                  "field 'id': -9223372036854775809 is not an integer in range");
}

static void
test_json_row_epoch_millisecond_edges(void **state)
{
    fx_t *fx = *state;
    const weir_value_t *r;

    r = parse_ok(fx, "{\"id\":1,\"ts\":-1}");
    assert_true(r[C_TS].u.i == -1000);
    r = parse_ok(fx, "{\"id\":1,\"ts\":1.5e3}");
    assert_true(r[C_TS].u.i == 1500000);
    r = parse_ok(fx, "{\"id\":1,\"ts\":9223372036854775}");
    assert_true(r[C_TS].u.i == 9223372036854775000LL);
    expect_reject(fx, "{\"id\":1,\"ts\":9223372036854776}", WEIR_EPARSE,
                  "field 'ts': bad epoch milliseconds '9223372036854776'");
    expect_reject(fx, "{\"id\":1,\"ts\":1.5}", WEIR_EPARSE, "field 'ts': bad epoch milliseconds '1.5'");
}

/* ---- writer ----------------------------------------------------------------------- */

static void
test_json_row_writes_extreme_doubles_shortest(void **state)
{
    fx_t *fx = *state;

    assert_string_equal(written(fx, weir_value_double(DBL_MAX)), "1.7976931348623157e+308");
    assert_string_equal(written(fx, weir_value_double(DBL_MIN)), "2.2250738585072014e-308");
    assert_string_equal(written(fx, weir_value_double(-DBL_TRUE_MIN)), "-5e-324");
    assert_string_equal(written(fx, weir_value_double(1e-310)), "1e-310");
    assert_string_equal(written(fx, weir_value_double(1e21)), "1e+21");
    assert_string_equal(written(fx, weir_value_double(123456789012345.0)), "123456789012345.0");
    assert_string_equal(written(fx, weir_value_double(-0.0)), "-0.0");
    assert_string_equal(written(fx, weir_value_double(100.0)), "100.0");
}

static void
test_json_row_written_doubles_read_back_identical(void **state)
{
    fx_t *fx = *state;
    static const double ds[] = { 0.1, 0.1 + 0.2, 1.0 / 3.0, 19.99, 2.5e-7, 1e300, 4.9e-324,
                                 123456.789e10, -7.0 };
    weir_schema_t *s = weir_schema_new(1);
    weir_json_reader_t *rd = NULL;
    weir_batch_t *b;

    assert_non_null(s);
    assert_int_equal(weir_schema_set(s, 0, "d", WEIR_T_DOUBLE, false), 0);
    assert_int_equal(weir_json_reader_create(s, &rd), 0);
    b = weir_batch_new(s, 4);
    assert_non_null(b);
    for (size_t i = 0; i < sizeof(ds) / sizeof(ds[0]); i++) {
        weir_value_t v = weir_value_double(ds[i]);
        weir_err_t err;

        weir_buf_reset(&fx->buf);
        assert_int_equal(weir_json_write_row(s, &v, &fx->buf), 0);
        assert_int_equal(weir_json_reader_parse(rd, fx->buf.data, fx->buf.len, b, &err), 0);
        assert_true(weir_batch_row(b, b->nrows - 1)[0].u.d == ds[i]);
    }
    weir_batch_destroy(b);
    weir_json_reader_destroy(rd);
    weir_schema_unref(s);
}

int
main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_json_row_bad_json_nested_under_an_unknown_key_is_rejected),
        T(test_json_row_valid_nesting_of_every_kind_is_accepted),
        T(test_json_row_reason_points_at_the_byte),
        T(test_json_row_raw_control_characters_in_strings_are_rejected),
        T(test_json_row_key_spelled_with_a_surrogate_pair_matches),
        T(test_json_row_escaped_keys_that_cannot_be_fields_are_ignored),
        T(test_json_row_escaped_key_repeating_a_field_keeps_the_first),
        T(test_json_row_int64_edges_are_exact),
        T(test_json_row_epoch_millisecond_edges),
        T(test_json_row_writes_extreme_doubles_shortest),
        T(test_json_row_written_doubles_read_back_identical),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
