/* tests/core/test_json_rows.c -- JSON objects to rows and back.
 *
 * The JSON reader sits on the hot path of every source, so these tests check
 * three things with care. First, what a record means: every type's accepted
 * forms (timestamps as text in two layouts or as epoch milliseconds, integral
 * numbers like 1e3 for an int), NULL versus missing versus JSON null, unknown
 * keys skipped together with everything nested under them even when nested
 * keys carry a field's name, escapes down to surrogate pairs. Second, what a
 * bad record does: the exact reason a person will read, and a batch left as
 * it was, rows and strings intact, including when the failed append had grown
 * the batch. Third, cost: nothing is allocated per record once the reader and
 * the batch are warm (malloc/calloc/realloc are wrapped with the linker's
 * --wrap, see tests/core/meson.build), and records of any token count parse.
 *
 * The writer is checked by exact text, since downstream systems compare it.
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
#include <time.h>

#include "runtime/core/batch.h"
#include "runtime/core/buf.h"
#include "runtime/core/error.h"
#include "runtime/core/json_row.h"
#include "runtime/core/schema.h"
#include "runtime/core/value.h"

/* ---- allocation counting (linked with -Wl,--wrap=malloc etc.) ------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static long nallocs;

void *__wrap_malloc(size_t n) { nallocs++; return __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { nallocs++; return __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { nallocs++; return __real_realloc(p, n); }

/* ---- fixture ---------------------------------------------------------------- */

#define assert_i64_equal(a, b)                                                   \
    do {                                                                         \
        int64_t a_ = (a), b_ = (b);                                              \
        if (a_ != b_) {                                                          \
            print_error("%s = %lld, expected %lld\n", #a, (long long)a_,         \
                        (long long)b_);                                          \
            fail();                                                              \
        }                                                                        \
    } while (0)

enum { C_ID, C_AMOUNT, C_OK, C_NAME, C_RAW, C_TS, NC };

/* 2024-03-01 12:34:56.789012 UTC, computed with Python's datetime */
#define TS_ROW 1709296496789012LL

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

    if (fx == NULL)
        return -1;
    fx->schema = weir_schema_new(NC);
    if (fx->schema == NULL ||
        weir_schema_set(fx->schema, C_ID, "id", WEIR_T_INT, false) != 0 ||
        weir_schema_set(fx->schema, C_AMOUNT, "amount", WEIR_T_DOUBLE, true) != 0 ||
        weir_schema_set(fx->schema, C_OK, "ok", WEIR_T_BOOL, true) != 0 ||
        weir_schema_set(fx->schema, C_NAME, "name", WEIR_T_STRING, true) != 0 ||
        weir_schema_set(fx->schema, C_RAW, "raw", WEIR_T_BYTES, true) != 0 ||
        weir_schema_set(fx->schema, C_TS, "ts", WEIR_T_TIMESTAMP, true) != 0)
        return -1;
    if (weir_json_reader_create(fx->schema, &fx->reader) != 0)
        return -1;
    fx->batch = weir_batch_new(fx->schema, 2);     /* small: appends must grow it */
    if (fx->batch == NULL)
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

/* Parses text (NUL-terminated) into fx's batch. */
static int
parse(fx_t *fx, const char *text, weir_err_t *err)
{
    memset(err, 0, sizeof(*err));
    return weir_json_reader_parse(fx->reader, text, strlen(text), fx->batch, err);
}

/* Parses text, fails the test on error, returns the new row. */
static const weir_value_t *
parse_ok_(fx_t *fx, const char *text, int line)
{
    weir_err_t err;
    int before = fx->batch->nrows;
    int rc = parse(fx, text, &err);

    if (rc != 0) {
        print_error("line %d: %s: rc %d: %s\n", line, text, rc, err.msg);
        fail();
    }
    if (fx->batch->nrows != before + 1) {
        print_error("line %d: %s: nrows %d, expected %d\n", line, text, fx->batch->nrows, before + 1);
        fail();
    }
    return weir_batch_row(fx->batch, fx->batch->nrows - 1);
}
#define parse_ok(fx, text) parse_ok_((fx), (text), __LINE__)

/* Expects text to be refused with code and, when msg is non-NULL, exactly
 * that message (when prefix is true, a message starting with msg), with the
 * batch's row count unchanged. */
static void
expect_reject_(fx_t *fx, const char *text, size_t len, int code, const char *msg, bool prefix,
               int line)
{
    weir_err_t err;
    int before = fx->batch->nrows;
    int rc;

    memset(&err, 0, sizeof(err));
    rc = weir_json_reader_parse(fx->reader, text, len, fx->batch, &err);
    if (rc == 0) {
        print_error("line %d: %.*s: accepted, expected error %d \"%s\"\n", line, (int)len, text,
                    code, msg ? msg : "");
        fail();
    }
    if (rc != code || err.code != code ||
        (msg != NULL && (prefix ? strncmp(err.msg, msg, strlen(msg)) != 0 : strcmp(err.msg, msg) != 0))) {
        print_error("line %d: %.*s:\n  got      rc %d (err.code %d) \"%s\"\n  expected rc %d %s\"%s\"\n",
                    line, (int)len, text, rc, err.code, err.msg, code, prefix ? "starting with " : "",
                    msg ? msg : "(any)");
        fail();
    }
    if (fx->batch->nrows != before) {
        print_error("line %d: %.*s: nrows %d after a failed parse, expected %d\n", line, (int)len,
                    text, fx->batch->nrows, before);
        fail();
    }
}
#define expect_reject(fx, text, code, msg) \
    expect_reject_((fx), (text), strlen(text), (code), (msg), false, __LINE__)
#define expect_reject_prefix(fx, text, code, msg) \
    expect_reject_((fx), (text), strlen(text), (code), (msg), true, __LINE__)

static void
expect_str_value(const weir_value_t *v, weir_type_t t, const char *want, size_t wantlen)
{
    assert_false(v->null);
    assert_int_equal(v->type, t);
    if (v->len != wantlen || (wantlen > 0 && memcmp(v->u.s, want, wantlen) != 0)) {
        print_error("string value '%.*s' (%u bytes), expected '%.*s' (%zu bytes)\n", (int)v->len,
                    v->u.s, v->len, (int)wantlen, want, wantlen);
        fail();
    }
}

static void
expect_null_value(const weir_value_t *v, weir_type_t t)
{
    assert_true(v->null);
    assert_int_equal(v->type, t);
}

/* Writes one value and returns the text (valid until the next call). */
static const char *
write_value(fx_t *fx, weir_value_t v)
{
    weir_buf_reset(&fx->buf);
    assert_int_equal(weir_json_write_value(&v, &fx->buf), 0);
    assert_int_equal(weir_buf_nul(&fx->buf), 0);
    return fx->buf.data;
}

#define expect_written(fx, v, want) assert_string_equal(write_value((fx), (v)), (want))

/* ---- round trips ------------------------------------------------------------------ */

static void
test_json_round_trip_of_every_type(void **state)
{
    fx_t *fx = *state;
    static const char text[] =
        "{\"id\":42,\"amount\":1500.25,\"ok\":true,\"name\":\"Zo\xc3\xab \\\"q\\\"\\n\","
        "\"raw\":\"a\\\\b\",\"ts\":\"2024-03-01 12:34:56.789012\"}";
    const weir_value_t *r = parse_ok(fx, text);
    weir_value_t copy[NC];
    const weir_value_t *r2;

    assert_int_equal(r[C_ID].type, WEIR_T_INT);
    assert_false(r[C_ID].null);
    assert_i64_equal(r[C_ID].u.i, 42);
    assert_int_equal(r[C_AMOUNT].type, WEIR_T_DOUBLE);
    assert_true(r[C_AMOUNT].u.d == 1500.25);
    assert_int_equal(r[C_OK].type, WEIR_T_BOOL);
    assert_true(r[C_OK].u.b);
    expect_str_value(&r[C_NAME], WEIR_T_STRING, "Zo\xc3\xab \"q\"\n", 9);
    expect_str_value(&r[C_RAW], WEIR_T_BYTES, "a\\b", 3);
    assert_int_equal(r[C_TS].type, WEIR_T_TIMESTAMP);
    assert_i64_equal(r[C_TS].u.i, TS_ROW);

    /* the writer gives the same text back, and reading it gives the same row */
    assert_int_equal(weir_json_write_row(fx->schema, r, &fx->buf), 0);
    assert_int_equal(weir_buf_nul(&fx->buf), 0);
    assert_string_equal(fx->buf.data, text);
    memcpy(copy, r, sizeof(copy));
    r2 = parse_ok(fx, fx->buf.data);
    for (int i = 0; i < NC; i++)
        assert_true(weir_value_equal(&copy[i], &r2[i]));
}

static void
test_json_round_trip_of_nulls_and_false(void **state)
{
    fx_t *fx = *state;
    static const char text[] =
        "{\"id\":-7,\"amount\":null,\"ok\":false,\"name\":null,\"raw\":null,\"ts\":null}";
    const weir_value_t *r = parse_ok(fx, text);

    assert_i64_equal(r[C_ID].u.i, -7);
    expect_null_value(&r[C_AMOUNT], WEIR_T_DOUBLE);
    assert_false(r[C_OK].null);
    assert_false(r[C_OK].u.b);
    expect_null_value(&r[C_NAME], WEIR_T_STRING);
    expect_null_value(&r[C_RAW], WEIR_T_BYTES);
    expect_null_value(&r[C_TS], WEIR_T_TIMESTAMP);
    assert_int_equal(weir_json_write_row(fx->schema, r, &fx->buf), 0);
    assert_int_equal(weir_buf_nul(&fx->buf), 0);
    assert_string_equal(fx->buf.data, text);
}

static void
test_json_bytes_and_strings_keep_nul_bytes(void **state)
{
    fx_t *fx = *state;
    const weir_value_t *r = parse_ok(fx, "{\"id\":1,\"raw\":\"a\\u0000b\",\"name\":\"\\u0000\"}");

    expect_str_value(&r[C_RAW], WEIR_T_BYTES, "a\0b", 3);
    expect_str_value(&r[C_NAME], WEIR_T_STRING, "\0", 1);
    assert_string_equal(write_value(fx, r[C_RAW]), "\"a\\u0000b\"");
}

/* ---- timestamps ---------------------------------------------------------------------- */

static void
test_json_timestamp_forms(void **state)
{
    fx_t *fx = *state;
    static const struct { const char *text; int64_t us; } cases[] = {
        { "{\"id\":0,\"ts\":\"2024-03-01 12:34:56.789012\"}", TS_ROW },
        { "{\"id\":0,\"ts\":\"2024-03-01T12:34:56.789012Z\"}", TS_ROW },
        { "{\"id\":0,\"ts\":\"2024-03-01T13:34:56.789012+01:00\"}", TS_ROW },
        { "{\"id\":0,\"ts\":\"2024-03-01T12:34:56.789012345Z\"}", TS_ROW },    /* nanoseconds cut */
        { "{\"id\":0,\"ts\":\"2024-03-01 12:34:56\"}", 1709296496000000LL },
        { "{\"id\":0,\"ts\":1700000000123}", 1700000000123000LL },               /* epoch ms */
        { "{\"id\":0,\"ts\":0}", 0 },
        { "{\"id\":0,\"ts\":-1}", -1000 },
        { "{\"id\":0,\"ts\":1e3}", 1000000 },
        { "{\"id\":0,\"ts\":9223372036854775}", 9223372036854775000LL },
        { "{\"id\":0,\"ts\":\"1969-12-31 23:59:30.5\"}", -29500000LL },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const weir_value_t *r = parse_ok(fx, cases[i].text);
        assert_int_equal(r[C_TS].type, WEIR_T_TIMESTAMP);
        assert_false(r[C_TS].null);
        if (r[C_TS].u.i != cases[i].us) {
            print_error("%s: ts = %lld, expected %lld\n", cases[i].text, (long long)r[C_TS].u.i,
                        (long long)cases[i].us);
            fail();
        }
    }
    expect_written(fx, weir_value_ts(TS_ROW), "\"2024-03-01 12:34:56.789012\"");
    expect_written(fx, weir_value_ts(-1000), "\"1969-12-31 23:59:59.999000\"");
    expect_written(fx, weir_value_ts(0), "\"1970-01-01 00:00:00.000000\"");
}

static void
test_json_timestamp_errors(void **state)
{
    fx_t *fx = *state;

    expect_reject(fx, "{\"id\":0,\"ts\":\"2024-13-01\"}", WEIR_EPARSE,
                  "field 'ts': bad timestamp '2024-13-01'");
    expect_reject(fx, "{\"id\":0,\"ts\":\"yesterday\"}", WEIR_EPARSE,
                  "field 'ts': bad timestamp 'yesterday'");
    expect_reject(fx, "{\"id\":0,\"ts\":\"\"}", WEIR_EPARSE, "field 'ts': bad timestamp ''");
    expect_reject(fx, "{\"id\":0,\"ts\":1.5}", WEIR_EPARSE,
                  "field 'ts': bad epoch milliseconds '1.5'");
    expect_reject(fx, "{\"id\":0,\"ts\":9223372036854776}", WEIR_EPARSE,
                  "field 'ts': bad epoch milliseconds '9223372036854776'");
    expect_reject(fx, "{\"id\":0,\"ts\":-9223372036854776}", WEIR_EPARSE,
                  "field 'ts': bad epoch milliseconds '-9223372036854776'");
    expect_reject(fx, "{\"id\":0,\"ts\":true}", WEIR_ETYPE, "field 'ts': expected timestamp, got bool");
    expect_reject(fx, "{\"id\":0,\"ts\":[1]}", WEIR_ETYPE, "field 'ts': expected timestamp, got array");
    expect_reject(fx, "{\"id\":0,\"ts\":{}}", WEIR_ETYPE, "field 'ts': expected timestamp, got object");
}

/* ---- NULL, missing, required ------------------------------------------------------------ */

static void
test_json_missing_nullable_fields_are_null(void **state)
{
    fx_t *fx = *state;
    const weir_value_t *r = parse_ok(fx, "{\"id\":5}");

    assert_i64_equal(r[C_ID].u.i, 5);
    expect_null_value(&r[C_AMOUNT], WEIR_T_DOUBLE);
    expect_null_value(&r[C_OK], WEIR_T_BOOL);
    expect_null_value(&r[C_NAME], WEIR_T_STRING);
    expect_null_value(&r[C_RAW], WEIR_T_BYTES);
    expect_null_value(&r[C_TS], WEIR_T_TIMESTAMP);

    /* a stale value in a reused row must not survive as "missing" */
    weir_batch_clear(fx->batch);
    r = parse_ok(fx, "{\"id\":1,\"amount\":2.5,\"ok\":true,\"name\":\"x\",\"raw\":\"y\",\"ts\":3}");
    assert_false(r[C_NAME].null);
    weir_batch_clear(fx->batch);
    r = parse_ok(fx, "{\"id\":2}");
    expect_null_value(&r[C_AMOUNT], WEIR_T_DOUBLE);
    expect_null_value(&r[C_OK], WEIR_T_BOOL);
    expect_null_value(&r[C_NAME], WEIR_T_STRING);
    expect_null_value(&r[C_TS], WEIR_T_TIMESTAMP);
}

static void
test_json_null_for_nullable_fields_is_null(void **state)
{
    fx_t *fx = *state;
    const weir_value_t *r =
        parse_ok(fx, "{\"ts\":null,\"raw\":null,\"name\":null,\"ok\":null,\"amount\":null,\"id\":0}");

    expect_null_value(&r[C_AMOUNT], WEIR_T_DOUBLE);
    expect_null_value(&r[C_OK], WEIR_T_BOOL);
    expect_null_value(&r[C_NAME], WEIR_T_STRING);
    expect_null_value(&r[C_RAW], WEIR_T_BYTES);
    expect_null_value(&r[C_TS], WEIR_T_TIMESTAMP);
}

static void
test_json_required_field_missing_or_null_is_an_error(void **state)
{
    fx_t *fx = *state;

    expect_reject(fx, "{}", WEIR_ETYPE, "missing required field 'id'");
    expect_reject(fx, "{\"amount\":1.5,\"name\":\"x\"}", WEIR_ETYPE, "missing required field 'id'");
    expect_reject(fx, "{\"id\":null}", WEIR_ETYPE, "field 'id': null for a non-nullable int");
    expect_reject(fx, "{\"ID\":1}", WEIR_ETYPE, "missing required field 'id'");   /* case matters */
}

/* ---- wrong types ---------------------------------------------------------------------------- */

static void
test_json_wrong_types_give_the_exact_reason(void **state)
{
    fx_t *fx = *state;
    static const struct { const char *text, *msg; } cases[] = {
        { "{\"id\":1,\"amount\":\"12.5\"}", "field 'amount': expected double, got string" },
        { "{\"id\":1,\"amount\":true}", "field 'amount': expected double, got bool" },
        { "{\"id\":1,\"amount\":{}}", "field 'amount': expected double, got object" },
        { "{\"id\":\"5\"}", "field 'id': expected int, got string" },
        { "{\"id\":true}", "field 'id': expected int, got bool" },
        { "{\"id\":[1]}", "field 'id': expected int, got array" },
        { "{\"id\":{\"id\":1}}", "field 'id': expected int, got object" },
        { "{\"id\":1,\"ok\":1}", "field 'ok': expected bool, got number" },
        { "{\"id\":1,\"ok\":\"true\"}", "field 'ok': expected bool, got string" },
        { "{\"id\":1,\"name\":5}", "field 'name': expected string, got number" },
        { "{\"id\":1,\"name\":true}", "field 'name': expected string, got bool" },
        { "{\"id\":1,\"name\":[\"a\"]}", "field 'name': expected string, got array" },
        { "{\"id\":1,\"raw\":false}", "field 'raw': expected bytes, got bool" },
        { "{\"id\":1,\"raw\":12}", "field 'raw': expected bytes, got number" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        expect_reject(fx, cases[i].text, WEIR_ETYPE, cases[i].msg);
}

static void
test_json_int_takes_integral_numbers_in_any_notation(void **state)
{
    fx_t *fx = *state;
    static const struct { const char *text; int64_t v; } cases[] = {
        { "{\"id\":1e3}", 1000 },               /* integral: the header's "must be integral" */
        { "{\"id\":1E3}", 1000 },
        { "{\"id\":2.5e1}", 25 },
        { "{\"id\":1.0}", 1 },
        { "{\"id\":-0}", 0 },
        { "{\"id\":-12}", -12 },
        { "{\"id\":9223372036854775807}", INT64_MAX },
        { "{\"id\":-9223372036854775808}", INT64_MIN },
        { "{\"id\":4611686018427387904e0}", 4611686018427387904LL },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const weir_value_t *r = parse_ok(fx, cases[i].text);
        if (r[C_ID].type != WEIR_T_INT || r[C_ID].null || r[C_ID].u.i != cases[i].v) {
            print_error("%s: id = %lld, expected %lld\n", cases[i].text, (long long)r[C_ID].u.i,
                        (long long)cases[i].v);
            fail();
        }
    }
}

static void
test_json_int_out_of_range_or_fractional_is_rejected(void **state)
{
    fx_t *fx = *state;
    static const struct { const char *text, *msg; } cases[] = {
        { "{\"id\":9223372036854775808}", "field 'id': 9223372036854775808 is not an integer in range" },
        { "{\"id\":-9223372036854775809}", "field 'id': -9223372036854775809 is not an integer in range" },
        { "{\"id\":1e19}", "field 'id': 1e19 is not an integer in range" },
        { "{\"id\":9.2233720368547758e18}", "field 'id': 9.2233720368547758e18 is not an integer in range" },
        { "{\"id\":1.5}", "field 'id': 1.5 is not an integer in range" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        weir_err_t err;
        int before = fx->batch->nrows;
        int rc = parse(fx, cases[i].text, &err);
        assert_true(rc < 0);
        assert_int_equal(fx->batch->nrows, before);
        if (strcmp(err.msg, cases[i].msg) != 0) {
            print_error("%s: \"%s\", expected \"%s\"\n", cases[i].text, err.msg, cases[i].msg);
            fail();
        }
    }
}

static void
test_json_error_codes_are_eparse_or_etype(void **state)
{
    fx_t *fx = *state;
    static const char *const bad[] = {
        "{\"id\":9223372036854775808}", "{\"id\":1.5}", "{\"id\":1e400}", "{\"id\":\"x\"}",
        "{\"id\":1", "{\"id\":1,\"ts\":\"x\"}",
    };

    /* json_row.h: "On bad input returns WEIR_EPARSE or WEIR_ETYPE" */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        weir_err_t err;
        int rc = parse(fx, bad[i], &err);
        if (rc != WEIR_EPARSE && rc != WEIR_ETYPE) {
            print_error("%s: rc %d (%s), expected WEIR_EPARSE or WEIR_ETYPE\n", bad[i], rc, err.msg);
            fail();
        }
    }
}

static void
test_json_error_code_does_not_depend_on_err(void **state)
{
    fx_t *fx = *state;
    static const char t1[] = "{\"id\":\"x\"}", t2[] = "{}", t3[] = "{\"id\":1";

    /* err may be NULL when the caller wants only the code */
    assert_int_equal(weir_json_reader_parse(fx->reader, t1, strlen(t1), fx->batch, NULL), WEIR_ETYPE);
    assert_int_equal(weir_json_reader_parse(fx->reader, t2, strlen(t2), fx->batch, NULL), WEIR_ETYPE);
    assert_int_equal(weir_json_reader_parse(fx->reader, t3, strlen(t3), fx->batch, NULL), WEIR_EPARSE);
    assert_int_equal(fx->batch->nrows, 0);
}

/* ---- unknown keys ------------------------------------------------------------------------- */

static void
test_json_unknown_keys_and_everything_under_them_are_ignored(void **state)
{
    fx_t *fx = *state;
    const weir_value_t *r;

    r = parse_ok(fx, "{\"meta\":{\"id\":\"nope\",\"amount\":\"x\"},\"id\":1,"
                     "\"list\":[{\"id\":2},\"id\",3,{\"name\":7}],\"amount\":2.5}");
    assert_i64_equal(r[C_ID].u.i, 1);
    assert_true(r[C_AMOUNT].u.d == 2.5);
    expect_null_value(&r[C_NAME], WEIR_T_STRING);

    r = parse_ok(fx, "{\"deep\":{\"a\":{\"b\":{\"ok\":\"no\",\"name\":5,\"id\":[1,{\"id\":3}]}}},"
                     "\"arr\":[[[\"name\",{\"ts\":true}]]],\"id\":5}");
    assert_i64_equal(r[C_ID].u.i, 5);
    expect_null_value(&r[C_OK], WEIR_T_BOOL);
    expect_null_value(&r[C_NAME], WEIR_T_STRING);
    expect_null_value(&r[C_TS], WEIR_T_TIMESTAMP);

    /* keys that are prefixes or extensions of a field's name, a value equal to one */
    r = parse_ok(fx, "{\"i\":\"x\",\"idx\":\"y\",\"nam\":1,\"names\":2,\"x\":\"id\",\"id\":3,"
                     "\"empty\":{},\"none\":[],\"n\":null,\"t\":true,\"\":0}");
    assert_i64_equal(r[C_ID].u.i, 3);
    expect_null_value(&r[C_NAME], WEIR_T_STRING);

    /* a known field after a long ignored value is still found */
    r = parse_ok(fx, "{\"blob\":{\"k\":[1,2,3,[4,5,{\"name\":\"inner\"}]],\"s\":\"}\"},\"name\":\"outer\",\"id\":9}");
    expect_str_value(&r[C_NAME], WEIR_T_STRING, "outer", 5);
    assert_i64_equal(r[C_ID].u.i, 9);
}

static void
test_json_escaped_key_matches_its_field(void **state)
{
    fx_t *fx = *state;
    /* "i\u0064" is the key "id" in JSON */
    const weir_value_t *r = parse_ok(fx, "{\"i\\u0064\":5,\"n\\u0061me\":\"x\"}");

    assert_i64_equal(r[C_ID].u.i, 5);
    expect_str_value(&r[C_NAME], WEIR_T_STRING, "x", 1);
    /* the longest name, every character escaped (6 bytes each) */
    r = parse_ok(fx, "{\"id\":0,\"\\u0061\\u006d\\u006f\\u0075\\u006e\\u0074\":2.5}");
    assert_true(r[C_AMOUNT].u.d == 2.5);
    /* escapes that spell something else, and a longer key, match nothing */
    r = parse_ok(fx, "{\"id\":0,\"\\u0061\\u006d\\u006f\\u0075\\u006e\\u0074\\u0073\":2.5,\"nam\\u0065s\":\"y\"}");
    expect_null_value(&r[C_AMOUNT], WEIR_T_DOUBLE);
    expect_null_value(&r[C_NAME], WEIR_T_STRING);
}

static void
test_json_duplicate_keys_first_wins(void **state)
{
    fx_t *fx = *state;
    const weir_value_t *r;

    r = parse_ok(fx, "{\"id\":1,\"id\":2}");
    assert_i64_equal(r[C_ID].u.i, 1);
    r = parse_ok(fx, "{\"id\":1,\"id\":\"not an int\"}");
    assert_i64_equal(r[C_ID].u.i, 1);
    r = parse_ok(fx, "{\"amount\":null,\"amount\":2.5,\"id\":0}");
    expect_null_value(&r[C_AMOUNT], WEIR_T_DOUBLE);
    r = parse_ok(fx, "{\"name\":\"first\",\"id\":0,\"name\":\"second\"}");
    expect_str_value(&r[C_NAME], WEIR_T_STRING, "first", 5);
}

/* ---- strings ------------------------------------------------------------------------------ */

static void
test_json_string_escapes(void **state)
{
    fx_t *fx = *state;
    static const struct { const char *json; const char *want; size_t len; } cases[] = {
        { "a\\\"b", "a\"b", 3 },
        { "\\\\", "\\", 1 },
        { "\\/", "/", 1 },
        { "\\b\\f\\n\\r\\t", "\b\f\n\r\t", 5 },
        { "\\u0041", "A", 1 },
        { "\\u00e9", "\xc3\xa9", 2 },
        { "\\u00E9", "\xc3\xa9", 2 },
        { "\\u007f", "\x7f", 1 },
        { "\\u0080", "\xc2\x80", 2 },
        { "\\u07ff", "\xdf\xbf", 2 },
        { "\\u0800", "\xe0\xa0\x80", 3 },
        { "\\u20ac", "\xe2\x82\xac", 3 },
        { "\\uffff", "\xef\xbf\xbf", 3 },
        { "\\ud83d\\ude00", "\xf0\x9f\x98\x80", 4 },
        { "\\uD83D\\uDE00", "\xf0\x9f\x98\x80", 4 },
        { "\\ud800\\udc00", "\xf0\x90\x80\x80", 4 },
        { "\\udbff\\udfff", "\xf4\x8f\xbf\xbf", 4 },
        { "x\\u0000y", "x\0y", 3 },
        { "h\xc3\xa9llo", "h\xc3\xa9llo", 6 },        /* raw UTF-8 passes through */
        { "", "", 0 },
        { "mix \\\"\\u00e9\\ud83d\\ude00\\n end", "mix \"\xc3\xa9\xf0\x9f\x98\x80\n end", 16 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[256];
        const weir_value_t *r;

        snprintf(text, sizeof(text), "{\"id\":0,\"name\":\"%s\"}", cases[i].json);
        r = parse_ok(fx, text);
        if (r[C_NAME].null || r[C_NAME].len != cases[i].len ||
            memcmp(r[C_NAME].u.s, cases[i].want, cases[i].len) != 0) {
            print_error("\"%s\" unescaped to %u bytes, expected %zu\n", cases[i].json, r[C_NAME].len,
                        cases[i].len);
            fail();
        }
    }
}

static void
test_json_invalid_surrogates_are_rejected(void **state)
{
    fx_t *fx = *state;
    static const char *const bad[] = {
        "\\ud800", "\\ud800x", "\\ud800\\u0041", "\\udc00", "\\udfff\\ud800", "\\ud800\\ud800",
        "ab\\ud83d", "\\ud83d\\n",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), "{\"id\":0,\"name\":\"%s\"}", bad[i]);
        expect_reject(fx, text, WEIR_EPARSE, "field 'name': bad string escape");
    }
}

static void
test_json_strings_are_copied_out_of_the_input(void **state)
{
    fx_t *fx = *state;
    char text[] = "{\"id\":1,\"name\":\"hello\",\"raw\":\"wor\\u006cd\"}";
    const weir_value_t *r = parse_ok(fx, text);

    memset(text, 'X', sizeof(text) - 1);             /* the source reuses its buffer */
    expect_str_value(&r[C_NAME], WEIR_T_STRING, "hello", 5);
    expect_str_value(&r[C_RAW], WEIR_T_BYTES, "world", 5);
}

static void
test_json_parse_reads_only_len_bytes(void **state)
{
    fx_t *fx = *state;
    static const char rec[] = "{\"id\":12,\"name\":\"ab\"}";
    size_t n = strlen(rec);
    char *exact = malloc(n);                          /* no NUL after it: ASan catches overreads */
    weir_err_t err;
    const weir_value_t *r;

    assert_non_null(exact);
    memcpy(exact, rec, n);
    memset(&err, 0, sizeof(err));
    assert_int_equal(weir_json_reader_parse(fx->reader, exact, n, fx->batch, &err), 0);
    r = weir_batch_row(fx->batch, 0);
    assert_i64_equal(r[C_ID].u.i, 12);
    expect_str_value(&r[C_NAME], WEIR_T_STRING, "ab", 2);
    free(exact);

    /* text beyond len is not part of the record */
    assert_int_equal(weir_json_reader_parse(fx->reader, "{\"id\":3}GARBAGE", 8, fx->batch, &err), 0);
    assert_i64_equal(weir_batch_row(fx->batch, 1)[C_ID].u.i, 3);
}

/* ---- malformed JSON -------------------------------------------------------------------------- */

static void
test_json_malformed_input_is_rejected(void **state)
{
    fx_t *fx = *state;

    expect_reject(fx, "{\"id\":1", WEIR_EPARSE, "not valid JSON (truncated)");
    expect_reject(fx, "{\"id\":1,\"name\":\"ab", WEIR_EPARSE, "not valid JSON (truncated)");
    expect_reject(fx, "{\"id\":1,", WEIR_EPARSE, "not valid JSON (truncated)");
    expect_reject(fx, "{", WEIR_EPARSE, "not valid JSON (truncated)");
    expect_reject(fx, "{\"id\":1}{\"id\":2}", WEIR_EPARSE, "not valid JSON (trailing characters)");
    expect_reject(fx, "{\"id\":1} x", WEIR_EPARSE, "not valid JSON (invalid character)");
    expect_reject(fx, "{\"id\":1}}", WEIR_EPARSE, "not valid JSON (invalid character)");
    expect_reject(fx, "{id:1}", WEIR_EPARSE, "not valid JSON (invalid character)");
    expect_reject(fx, "{'id':1}", WEIR_EPARSE, "not valid JSON (invalid character)");
    expect_reject(fx, "{\"id\" 1}", WEIR_EPARSE, "not valid JSON (invalid character)");
    expect_reject(fx, "{\"id\":1,\"x\":[1,2}", WEIR_EPARSE, "not valid JSON (invalid character)");
    expect_reject(fx, "{\"id\":1,\"name\":\"\\x\"}", WEIR_EPARSE, "not valid JSON (invalid character)");
    expect_reject(fx, "{\"id\":1,\"name\":\"\\u12G4\"}", WEIR_EPARSE, "not valid JSON (invalid character)");
    expect_reject(fx, "[1,2]", WEIR_EPARSE, "not a JSON object");
    expect_reject(fx, "[{\"id\":1}]", WEIR_EPARSE, "not a JSON object");
    expect_reject(fx, "\"str\"", WEIR_EPARSE, "not a JSON object");
    expect_reject(fx, "", WEIR_EPARSE, "not a JSON object");
    expect_reject(fx, "  \n ", WEIR_EPARSE, "not a JSON object");
    expect_reject_prefix(fx, "{\"id\":}", WEIR_EPARSE, "not valid JSON");
    expect_reject_prefix(fx, "{\"id\"}", WEIR_EPARSE, "not valid JSON");
    expect_reject_prefix(fx, "null", WEIR_EPARSE, "not ");
    expect_reject_prefix(fx, "42", WEIR_EPARSE, "not ");
}

static void
test_json_missing_or_extra_commas_are_rejected(void **state)
{
    fx_t *fx = *state;

    /* jsmn tolerates these; a JSON reader must not */
    expect_reject_prefix(fx, "{\"id\":1 \"amount\":2.5}", WEIR_EPARSE, "not valid JSON");
    expect_reject_prefix(fx, "{\"id\":1,}", WEIR_EPARSE, "not valid JSON");
    expect_reject_prefix(fx, "{,\"id\":1}", WEIR_EPARSE, "not valid JSON");
    expect_reject_prefix(fx, "{\"id\":1,,\"ok\":true}", WEIR_EPARSE, "not valid JSON");
    expect_reject_prefix(fx, "{\"name\":\"a\" \"id\":1}", WEIR_EPARSE, "not valid JSON");
    expect_reject_prefix(fx, "{\"id\":1,\"name\":,\"ok\":true}", WEIR_EPARSE, "not valid JSON");
}

static void
test_json_malformed_nested_values_are_rejected(void **state)
{
    fx_t *fx = *state;
    static const char *const bad[] = {
        "{\"id\":1,\"x\":[1 2]}", "{\"id\":1,\"x\":[1,]}", "{\"id\":1,\"x\":[,1]}",
        "{\"id\":1,\"x\":[1,,2]}", "{\"id\":1,\"x\":{\"a\":1,}}", "{\"id\":1,\"x\":{\"a\":1 \"b\":2}}",
        "{\"id\":1,\"x\":{\"a\"}}", "{\"id\":1,\"x\":{\"a\":}}", "{\"id\":1,\"x\":[tru]}",
        "{\"id\":1,\"x\":[[1],[2] [3]]}", "{\"id\":1,\"x\":{\"a\":{\"b\":nul}}}",
        /* raw control characters are not allowed inside JSON strings */
        "{\"id\":1,\"name\":\"a\tb\"}", "{\"id\":1,\"x\":\"raw\nnewline\"}",
        "{\"id\":1,\"x\\u0000\":1,\"\x01\":2}",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_reject_prefix(fx, bad[i], WEIR_EPARSE, "not valid JSON");
}

static void
test_json_valid_nested_values_are_accepted(void **state)
{
    fx_t *fx = *state;
    static const char *const good[] = {
        "{\"id\":1,\"x\":[]}", "{\"id\":1,\"x\":{}}", "{\"id\":1,\"x\":[[],{},[{}],{\"a\":[]}]}",
        "{ \"id\" : 1 , \"x\" : [ 1 , [ 2 ] , { \"k\" : [ true , false , null ] } ] }",
        "{\"x\":{\"a\":{\"b\":{\"c\":[-0.5e-3,1E+2,0,\"s\\\"}\"]}}},\"id\":1}",
        "{\"id\":1,\"x\":\"\\u0000 \x7f \xc3\xa9\"}",
    };

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_i64_equal(parse_ok(fx, good[i])[C_ID].u.i, 1);
}

static double
cpu_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* {"deep":[[[...]]],"id":42} with depth brackets; caller frees. */
static char *
deep_record(size_t depth)
{
    static const char head[] = "{\"deep\":", tail[] = ",\"id\":42}";
    const size_t hl = sizeof(head) - 1, tl = sizeof(tail);
    char *text = malloc(hl + 2 * depth + tl);

    if (text == NULL)
        return NULL;
    memcpy(text, head, hl);
    memset(text + hl, '[', depth);
    memset(text + hl + depth, ']', depth);
    memcpy(text + hl + 2 * depth, tail, tl);           /* with its NUL */
    return text;
}

static void
test_json_reasonable_nesting_is_accepted(void **state)
{
    fx_t *fx = *state;
    char *text = deep_record(64);

    if (text == NULL)
        fail();
    assert_i64_equal(parse_ok(fx, text)[C_ID].u.i, 42);
    free(text);
}

static void
test_json_deep_nesting_costs_linear_time(void **state)
{
    fx_t *fx = *state;
    const size_t depth = 30000;                        /* 60 KB */
    char *text = deep_record(depth);
    weir_err_t err;
    double t0, spent;
    int rc;

    /* jsmn with parent links climbs from the newest token at every closing
     * bracket, so [[[...]]] costs depth^2 / 2 steps: seconds for a record
     * of a few hundred KB (a cheap way to stall a source). Accepting or
     * refusing such a record are both fine; taking quadratic time is not.
     * A linear parse takes well under a millisecond here. */
    if (text == NULL)
        fail();
    t0 = cpu_seconds();
    rc = parse(fx, text, &err);
    spent = cpu_seconds() - t0;
    if (rc == 0) {
        assert_i64_equal(weir_batch_row(fx->batch, fx->batch->nrows - 1)[C_ID].u.i, 42);
    } else {
        assert_int_equal(rc, WEIR_EPARSE);
        assert_true(strncmp(err.msg, "not valid JSON", 14) == 0);
    }
    free(text);
    if (spent > 0.25) {
        print_error("a record nested %zu deep took %.2f s of CPU (rc %d)\n", depth, spent, rc);
        fail();
    }
}

static void
test_json_deep_nesting_mismatch_is_rejected(void **state)
{
    fx_t *fx = *state;
    char *text = deep_record(200);

    if (text == NULL)
        fail();
    text[sizeof("{\"deep\":") - 1 + 2 * 200 - 1] = '}';   /* the outermost ']' */
    expect_reject_prefix(fx, text, WEIR_EPARSE, "not valid JSON");
    free(text);
}

static void
test_json_misspelled_literals_are_rejected(void **state)
{
    fx_t *fx = *state;

    /* only true, false and null are JSON literals: "tru" is not true and
     * "nope" is not null */
    expect_reject_prefix(fx, "{\"id\":1,\"ok\":tru}", WEIR_EPARSE, "not valid JSON");
    expect_reject_prefix(fx, "{\"id\":1,\"ok\":trueish}", WEIR_EPARSE, "not valid JSON");
    expect_reject_prefix(fx, "{\"id\":1,\"ok\":fals}", WEIR_EPARSE, "not valid JSON");
    expect_reject_prefix(fx, "{\"id\":1,\"ok\":t}", WEIR_EPARSE, "not valid JSON");
    expect_reject_prefix(fx, "{\"id\":1,\"amount\":nope}", WEIR_EPARSE, "not valid JSON");
    expect_reject_prefix(fx, "{\"id\":1,\"amount\":nan}", WEIR_EPARSE, "not valid JSON");
    expect_reject_prefix(fx, "{\"id\":1,\"name\":nul}", WEIR_EPARSE, "not valid JSON");
    expect_reject_prefix(fx, "{\"id\":1,\"other\":nil}", WEIR_EPARSE, "not valid JSON");
}

static void
test_json_number_grammar_is_enforced(void **state)
{
    fx_t *fx = *state;
    static const char *const bad[] = {
        "{\"id\":1,\"amount\":0x10}", "{\"id\":0x1e}", "{\"id\":01}", "{\"id\":-01}",
        "{\"id\":1,\"amount\":1.}", "{\"id\":1,\"amount\":00.5}", "{\"id\":1,\"amount\":-0x1p3}",
        "{\"id\":1,\"amount\":1e}", "{\"id\":1x}", "{\"id\":1,\"ts\":0x10}",
        "{\"id\":1,\"other\":0x10}", "{\"id\":1,\"other\":[01]}",
    };

    /* strtod/strtoll read more than JSON numbers: hex, leading zeros, "1.";
     * the reason may be "not valid JSON" or a field's "bad number" */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_reject_(fx, bad[i], strlen(bad[i]), WEIR_EPARSE, NULL, false, __LINE__);
}

static void
test_json_double_takes_any_json_number(void **state)
{
    fx_t *fx = *state;
    static const struct { const char *text; double v; } cases[] = {
        { "{\"id\":0,\"amount\":0}", 0.0 },
        { "{\"id\":0,\"amount\":-0.0}", -0.0 },
        { "{\"id\":0,\"amount\":19.99}", 19.99 },
        { "{\"id\":0,\"amount\":1e300}", 1e300 },
        { "{\"id\":0,\"amount\":-2.5E-3}", -2.5e-3 },
        { "{\"id\":0,\"amount\":12345678901234567890}", 12345678901234567890.0 },
        /* a long but valid JSON number (e.g. a Decimal's text) */
        { "{\"id\":0,\"amount\":3.14159265358979323846264338327950288419716939937510582097494459230781640628}",
          3.14159265358979323846 },
        { "{\"id\":0,\"amount\":0.000000000000000000000000000000000000000000000000000000000000000000000001}",
          1e-72 },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const weir_value_t *r = parse_ok(fx, cases[i].text);
        if (r[C_AMOUNT].null || r[C_AMOUNT].u.d != cases[i].v ||
            signbit(r[C_AMOUNT].u.d) != signbit(cases[i].v)) {
            print_error("%s: amount = %.17g, expected %.17g\n", cases[i].text, r[C_AMOUNT].u.d,
                        cases[i].v);
            fail();
        }
    }
    expect_reject(fx, "{\"id\":0,\"amount\":1e400}", WEIR_EPARSE, "field 'amount': bad number '1e400'");
}

static void
test_json_whitespace_and_key_order_do_not_matter(void **state)
{
    fx_t *fx = *state;
    const weir_value_t *r;

    r = parse_ok(fx, " \t\r\n{ \"name\" : \"n\" ,\n\t\"id\"\t:\t7 , \"ok\" : false } \n");
    assert_i64_equal(r[C_ID].u.i, 7);
    expect_str_value(&r[C_NAME], WEIR_T_STRING, "n", 1);
    assert_false(r[C_OK].u.b);
}

/* ---- batches ------------------------------------------------------------------------------------ */

static void
test_json_failed_parse_leaves_the_batch_as_it_was(void **state)
{
    fx_t *fx = *state;
    static const char *const bad[] = {
        "{\"name\":\"zzz\",\"raw\":\"yyy\",\"id\":\"x\"}",       /* strings converted, then a type error */
        "{\"name\":\"zzz\"}",                                    /* missing required after a string */
        "{\"name\":\"zzz\",\"id\":null}",
        "{\"name\":\"zzz\",\"id\":1",                            /* truncated */
        "{\"id\":1,\"name\":\"zzz\",\"raw\":\"\\ud800\"}",       /* bad escape after a good string */
        "{\"id\":1,\"name\":\"zzz\"} trailing",
        "[{\"id\":1}]",
        "{\"id\":1,\"name\":\"zzz\",\"ts\":\"never\"}",
        "{\"id\":9223372036854775808,\"name\":\"zzz\"}",
    };
    weir_value_t snap[2][NC];
    const weir_value_t *r;

    parse_ok(fx, "{\"id\":1,\"name\":\"first\",\"raw\":\"r1\",\"amount\":1.5,\"ts\":1}");
    parse_ok(fx, "{\"id\":2,\"name\":\"second\",\"ok\":true}");
    assert_int_equal(fx->batch->nrows, 2);
    assert_int_equal(fx->batch->cap, 2);             /* the next append must grow the batch */
    memcpy(snap[0], weir_batch_row(fx->batch, 0), sizeof(snap[0]));
    memcpy(snap[1], weir_batch_row(fx->batch, 1), sizeof(snap[1]));

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        weir_err_t err;
        int rc = parse(fx, bad[i], &err);
        if (rc == 0) {
            print_error("%s: accepted\n", bad[i]);
            fail();
        }
        assert_int_equal(fx->batch->nrows, 2);
        for (int k = 0; k < 2; k++) {
            const weir_value_t *row = weir_batch_row(fx->batch, k);
            for (int f = 0; f < NC; f++) {
                assert_int_equal(row[f].null, snap[k][f].null);
                assert_int_equal(row[f].type, snap[k][f].type);
                if (!row[f].null)
                    assert_true(weir_value_equal(&row[f], &snap[k][f]));
            }
        }
    }
    r = weir_batch_row(fx->batch, 0);
    expect_str_value(&r[C_NAME], WEIR_T_STRING, "first", 5);
    expect_str_value(&r[C_RAW], WEIR_T_BYTES, "r1", 2);
    r = weir_batch_row(fx->batch, 1);
    expect_str_value(&r[C_NAME], WEIR_T_STRING, "second", 6);

    /* and the next good record lands right after them */
    r = parse_ok(fx, "{\"id\":3,\"name\":\"third\"}");
    assert_int_equal(fx->batch->nrows, 3);
    assert_i64_equal(r[C_ID].u.i, 3);
    expect_str_value(&r[C_NAME], WEIR_T_STRING, "third", 5);
    expect_null_value(&r[C_OK], WEIR_T_BOOL);
    r = weir_batch_row(fx->batch, 0);
    expect_str_value(&r[C_NAME], WEIR_T_STRING, "first", 5);
}

static void
test_json_many_records_into_one_reused_batch_allocate_nothing(void **state)
{
    fx_t *fx = *state;
    long before = 0;

    for (int round = 0; round < 12; round++) {
        if (round == 2)
            before = nallocs;                 /* reader and batch are warm now */
        weir_batch_clear(fx->batch);
        for (int i = 0; i < 500; i++) {
            char text[256];
            weir_err_t err;
            int id = round * 1000 + i;

            snprintf(text, sizeof(text),
                     "{\"id\":%d,\"amount\":%d.5,\"ok\":%s,\"name\":\"user-%d\\u00e9\","
                     "\"ts\":\"2024-03-01 12:34:56.789012\",\"extra\":{\"id\":[%d,%d]}}",
                     id, i, i % 2 ? "true" : "false", id, i, i);
            if (weir_json_reader_parse(fx->reader, text, strlen(text), fx->batch, &err) != 0) {
                print_error("%s: %s\n", text, err.msg);
                fail();
            }
        }
        assert_int_equal(fx->batch->nrows, 500);
        for (int i = 0; i < 500; i += 37) {
            const weir_value_t *r = weir_batch_row(fx->batch, i);
            char name[32];
            int n = snprintf(name, sizeof(name), "user-%d\xc3\xa9", round * 1000 + i);
            assert_i64_equal(r[C_ID].u.i, round * 1000 + i);
            assert_true(r[C_AMOUNT].u.d == i + 0.5);
            assert_int_equal(r[C_OK].u.b, i % 2);
            expect_str_value(&r[C_NAME], WEIR_T_STRING, name, (size_t)n);
            assert_i64_equal(r[C_TS].u.i, TS_ROW);
            expect_null_value(&r[C_RAW], WEIR_T_BYTES);
        }
    }
    assert_int_equal(nallocs - before, 0);
}

static void
test_json_records_with_more_than_64_tokens(void **state)
{
    fx_t *fx = *state;
    static char text[65536];

    /* tokens = 1 (object) + 2 (id) + 2 (arr) + m (elements) + 2 (name): cross
     * 64, 128, 256 ... one element at a time, in one reader that grows */
    for (int m = 0; m <= 600; m++) {
        size_t n = 0;
        const weir_value_t *r;

        n += (size_t)snprintf(text + n, sizeof(text) - n, "{\"id\":%d,\"arr\":[", m);
        for (int k = 0; k < m; k++)
            n += (size_t)snprintf(text + n, sizeof(text) - n, "%s{}", k ? "," : "");
        snprintf(text + n, sizeof(text) - n, "],\"name\":\"after-%d\"}", m);
        r = parse_ok(fx, text);
        assert_i64_equal(r[C_ID].u.i, m);
        char want[32];
        int wl = snprintf(want, sizeof(want), "after-%d", m);
        expect_str_value(&r[C_NAME], WEIR_T_STRING, want, (size_t)wl);
        weir_batch_clear(fx->batch);
    }

    /* many top-level keys, the known ones last */
    {
        size_t n = 0;
        const weir_value_t *r;
        n += (size_t)snprintf(text + n, sizeof(text) - n, "{");
        for (int k = 0; k < 1000; k++)
            n += (size_t)snprintf(text + n, sizeof(text) - n, "\"k%d\":%d,", k, k);
        snprintf(text + n, sizeof(text) - n, "\"ok\":true,\"id\":77}");
        r = parse_ok(fx, text);
        assert_i64_equal(r[C_ID].u.i, 77);
        assert_true(r[C_OK].u.b);
    }

    /* a small record still parses with the grown reader */
    assert_i64_equal(parse_ok(fx, "{\"id\":1}")[C_ID].u.i, 1);

    /* a fresh reader with a large first record */
    {
        weir_json_reader_t *r2 = NULL;
        weir_err_t err;
        size_t n = 0;
        assert_int_equal(weir_json_reader_create(fx->schema, &r2), 0);
        n += (size_t)snprintf(text + n, sizeof(text) - n, "{\"arr\":[");
        for (int k = 0; k < 5000; k++)
            n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%d", k ? "," : "", k);
        snprintf(text + n, sizeof(text) - n, "],\"id\":5000}");
        memset(&err, 0, sizeof(err));
        assert_int_equal(weir_json_reader_parse(r2, text, strlen(text), fx->batch, &err), 0);
        assert_i64_equal(weir_batch_row(fx->batch, fx->batch->nrows - 1)[C_ID].u.i, 5000);
        weir_json_reader_destroy(r2);
    }
}

/* ---- writer ---------------------------------------------------------------------------------- */

static void
test_json_write_doubles_exact_text(void **state)
{
    fx_t *fx = *state;

    expect_written(fx, weir_value_double(1.5), "1.5");
    expect_written(fx, weir_value_double(3.0), "3.0");           /* stays a double */
    expect_written(fx, weir_value_double(0.1), "0.1");
    expect_written(fx, weir_value_double(1e300), "1e+300");
    expect_written(fx, weir_value_double(-0.0), "-0.0");
    expect_written(fx, weir_value_double(0.0), "0.0");
    expect_written(fx, weir_value_double(19.99), "19.99");       /* money as it was read */
    expect_written(fx, weir_value_double(1500.25), "1500.25");
    expect_written(fx, weir_value_double(-2.5), "-2.5");
    expect_written(fx, weir_value_double(0.1 + 0.2), "0.30000000000000004");
    expect_written(fx, weir_value_double(1e-7), "1e-07");
    expect_written(fx, weir_value_double(123456789.0), "123456789.0");
    expect_written(fx, weir_value_double(1e15), "1e+15");
    expect_written(fx, weir_value_double(DBL_MAX), "1.7976931348623157e+308");
}

static void
test_json_write_doubles_shortest_round_trip(void **state)
{
    fx_t *fx = *state;

    /* json_row.h: "doubles with the shortest text that round-trips"; these
     * need 16 digits, and %.17g is one longer */
    expect_written(fx, weir_value_double(0.1 + 0.7), "0.7999999999999999");
    expect_written(fx, weir_value_double(5e-324), "5e-324");
    expect_written(fx, weir_value_double(1.0 / 3.0), "0.3333333333333333");
}

static void
test_json_write_nonfinite_doubles_as_null(void **state)
{
    fx_t *fx = *state;

    expect_written(fx, weir_value_double(NAN), "null");
    expect_written(fx, weir_value_double(INFINITY), "null");
    expect_written(fx, weir_value_double(-INFINITY), "null");
}

static void
test_json_write_scalars_and_nulls(void **state)
{
    fx_t *fx = *state;

    expect_written(fx, weir_value_int(0), "0");
    expect_written(fx, weir_value_int(-1), "-1");
    expect_written(fx, weir_value_int(INT64_MIN), "-9223372036854775808");
    expect_written(fx, weir_value_int(INT64_MAX), "9223372036854775807");
    expect_written(fx, weir_value_bool(true), "true");
    expect_written(fx, weir_value_bool(false), "false");
    expect_written(fx, weir_value_null(WEIR_T_INT), "null");
    expect_written(fx, weir_value_null(WEIR_T_STRING), "null");
    expect_written(fx, weir_value_null(WEIR_T_TIMESTAMP), "null");
    expect_written(fx, weir_value_null(WEIR_T_NULL), "null");
}

static void
test_json_write_strings_escaped(void **state)
{
    fx_t *fx = *state;
    static const char s[] = "a\"b\\c\n\t\r\b\f\x01\x1f\x7f\xc3\xa9/";

    expect_written(fx, weir_value_str(s, (uint32_t)strlen(s)),
                   "\"a\\\"b\\\\c\\n\\t\\r\\b\\f\\u0001\\u001f\x7f\xc3\xa9/\"");
    expect_written(fx, weir_value_str("", 0), "\"\"");
    expect_written(fx, weir_value_str("x\0y", 3), "\"x\\u0000y\"");
    expect_written(fx, weir_value_bytes("b\"y", 3), "\"b\\\"y\"");
    expect_written(fx, weir_value_str("</script>", 9), "\"</script>\"");
}

static void
test_json_write_row_exact_text_appended(void **state)
{
    fx_t *fx = *state;
    weir_value_t row[NC];
    weir_schema_t *odd = weir_schema_new(2);

    row[C_ID] = weir_value_int(42);
    row[C_AMOUNT] = weir_value_null(WEIR_T_DOUBLE);
    row[C_OK] = weir_value_bool(false);
    row[C_NAME] = weir_value_str("x\"y", 3);
    row[C_RAW] = weir_value_bytes("", 0);
    row[C_TS] = weir_value_ts(TS_ROW);
    weir_buf_reset(&fx->buf);
    assert_int_equal(weir_buf_append(&fx->buf, "prefix:", 7), 0);
    assert_int_equal(weir_json_write_row(fx->schema, row, &fx->buf), 0);
    assert_int_equal(weir_buf_nul(&fx->buf), 0);
    assert_string_equal(fx->buf.data,
                        "prefix:{\"id\":42,\"amount\":null,\"ok\":false,\"name\":\"x\\\"y\",\"raw\":\"\","
                        "\"ts\":\"2024-03-01 12:34:56.789012\"}");

    /* field names are escaped too; a second row appends, no newline between */
    assert_non_null(odd);
    assert_int_equal(weir_schema_set(odd, 0, "we\"ird", WEIR_T_INT, false), 0);
    assert_int_equal(weir_schema_set(odd, 1, "d", WEIR_T_DOUBLE, false), 0);
    weir_value_t orow[2] = { weir_value_int(1), weir_value_double(2.0) };
    weir_buf_reset(&fx->buf);
    assert_int_equal(weir_json_write_row(odd, orow, &fx->buf), 0);
    assert_int_equal(weir_json_write_row(odd, orow, &fx->buf), 0);
    assert_int_equal(weir_buf_nul(&fx->buf), 0);
    assert_string_equal(fx->buf.data, "{\"we\\\"ird\":1,\"d\":2.0}{\"we\\\"ird\":1,\"d\":2.0}");
    weir_schema_unref(odd);
}

static void
test_json_write_then_read_doubles_round_trip(void **state)
{
    fx_t *fx = *state;
    static const double ds[] = {
        0.1, 0.7999999999999999, 1.0 / 3.0, 2.0 / 3.0, 1e-300, 5e-324, DBL_MAX, -DBL_MIN,
        123456.789, 9007199254740993.0, 0.30000000000000004, 100.0, -0.0,
    };

    for (size_t i = 0; i < sizeof(ds) / sizeof(ds[0]); i++) {
        char text[128];
        const weir_value_t *r;
        snprintf(text, sizeof(text), "{\"id\":0,\"amount\":%s}", write_value(fx, weir_value_double(ds[i])));
        r = parse_ok(fx, text);
        if (r[C_AMOUNT].u.d != ds[i] || signbit(r[C_AMOUNT].u.d) != signbit(ds[i])) {
            print_error("%.17g written as %s read back as %.17g\n", ds[i], text, r[C_AMOUNT].u.d);
            fail();
        }
    }
}

static void
test_json_reader_for_an_empty_schema(void **state)
{
    weir_schema_t *empty = weir_schema_new(0);
    weir_json_reader_t *r = NULL;
    weir_batch_t *b;
    weir_err_t err;
    weir_buf_t out = WEIR_BUF_INIT;

    assert_non_null(empty);
    assert_int_equal(weir_json_reader_create(empty, &r), 0);
    b = weir_batch_new(empty, 4);
    assert_non_null(b);
    memset(&err, 0, sizeof(err));
    assert_int_equal(weir_json_reader_parse(r, "{\"a\":1}", 7, b, &err), 0);
    assert_int_equal(weir_json_reader_parse(r, "{}", 2, b, &err), 0);
    assert_int_equal(b->nrows, 2);
    assert_int_equal(weir_json_write_row(empty, weir_batch_row(b, 0), &out), 0);
    assert_int_equal(weir_buf_nul(&out), 0);
    assert_string_equal(out.data, "{}");
    weir_buf_free(&out);
    weir_batch_destroy(b);
    weir_json_reader_destroy(r);
    weir_schema_unref(empty);
    weir_json_reader_destroy(NULL);
}

int
main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_json_round_trip_of_every_type),
        T(test_json_round_trip_of_nulls_and_false),
        T(test_json_bytes_and_strings_keep_nul_bytes),
        T(test_json_timestamp_forms),
        T(test_json_timestamp_errors),
        T(test_json_missing_nullable_fields_are_null),
        T(test_json_null_for_nullable_fields_is_null),
        T(test_json_required_field_missing_or_null_is_an_error),
        T(test_json_wrong_types_give_the_exact_reason),
        T(test_json_int_takes_integral_numbers_in_any_notation),
        T(test_json_int_out_of_range_or_fractional_is_rejected),
        T(test_json_error_codes_are_eparse_or_etype),
        T(test_json_error_code_does_not_depend_on_err),
        T(test_json_unknown_keys_and_everything_under_them_are_ignored),
        T(test_json_escaped_key_matches_its_field),
        T(test_json_duplicate_keys_first_wins),
        T(test_json_string_escapes),
        T(test_json_invalid_surrogates_are_rejected),
        T(test_json_strings_are_copied_out_of_the_input),
        T(test_json_parse_reads_only_len_bytes),
        T(test_json_malformed_input_is_rejected),
        T(test_json_missing_or_extra_commas_are_rejected),
        T(test_json_malformed_nested_values_are_rejected),
        T(test_json_valid_nested_values_are_accepted),
        T(test_json_reasonable_nesting_is_accepted),
        T(test_json_deep_nesting_costs_linear_time),
        T(test_json_deep_nesting_mismatch_is_rejected),
        T(test_json_misspelled_literals_are_rejected),
        T(test_json_number_grammar_is_enforced),
        T(test_json_double_takes_any_json_number),
        T(test_json_whitespace_and_key_order_do_not_matter),
        T(test_json_failed_parse_leaves_the_batch_as_it_was),
        T(test_json_many_records_into_one_reused_batch_allocate_nothing),
        T(test_json_records_with_more_than_64_tokens),
        T(test_json_write_doubles_exact_text),
        T(test_json_write_doubles_shortest_round_trip),
        T(test_json_write_nonfinite_doubles_as_null),
        T(test_json_write_scalars_and_nulls),
        T(test_json_write_strings_escaped),
        T(test_json_write_row_exact_text_appended),
        T(test_json_write_then_read_doubles_round_trip),
        cmocka_unit_test(test_json_reader_for_an_empty_schema),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
