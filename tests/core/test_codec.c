/* tests/core/test_codec.c -- msgpack batches and stream framing.
 *
 * Every record that crosses a task manager boundary or lands in a checkpoint
 * goes through weir_codec_encode_rows / weir_codec_decode_rows, and every
 * message on a socket through the frame reader. The decoder faces bytes from
 * the network and from old snapshots, so most of these tests feed it what a
 * peer should never send -- a different schema, a NULL where none is allowed,
 * a cut-off buffer, noise -- and check it answers with a code and a message,
 * leaves the batch as it was, and never crashes. The frame reader is fed the
 * way a socket delivers: a byte at a time, several frames at once, a header
 * whose length is a lie.
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

#include "runtime/core/codec.h"

/* ---- helpers ---------------------------------------------------------- */

enum { F_I, F_D, F_B, F_S, F_Y, F_T, NF_ALL };

/* {i: int, d: double, b: bool, s: string, y: bytes, t: timestamp}; returns new
 * (caller unrefs). */
static weir_schema_t *
all_types_schema(bool nullable)
{
    static const struct { const char *name; weir_type_t t; } f[NF_ALL] = {
        { "i", WEIR_T_INT }, { "d", WEIR_T_DOUBLE }, { "b", WEIR_T_BOOL },
        { "s", WEIR_T_STRING }, { "y", WEIR_T_BYTES }, { "t", WEIR_T_TIMESTAMP },
    };
    weir_schema_t *s = weir_schema_new(NF_ALL);

    assert_non_null(s);
    for (int i = 0; i < NF_ALL; i++)
        assert_int_equal(weir_schema_set(s, i, f[i].name, f[i].t, nullable), 0);
    return s;
}

/* A schema of n fields "c0".."c<n-1>", all of type t; returns new. */
static weir_schema_t *
uniform_schema(int n, weir_type_t t, bool nullable)
{
    weir_schema_t *s = weir_schema_new(n);
    char name[16];

    assert_non_null(s);
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "c%d", i);
        assert_int_equal(weir_schema_set(s, i, name, t, nullable), 0);
    }
    return s;
}

/* Batch of schema; the batch holds its own reference, ours is dropped. */
static weir_batch_t *
batch_of(weir_schema_t *s, int cap)
{
    weir_batch_t *b = weir_batch_new(s, cap);

    assert_non_null(b);
    weir_schema_unref(s);
    return b;
}

static void
assert_value_same(const weir_value_t *got, const weir_value_t *want, int row, int field)
{
    bool same = got->null == want->null && got->type == want->type;

    if (same && !got->null) {
        switch ((weir_type_t)want->type) {
        case WEIR_T_INT:
        case WEIR_T_TIMESTAMP:
            same = got->u.i == want->u.i;
            break;
        case WEIR_T_DOUBLE:               /* bitwise: -0.0 and NaN survive */
            same = memcmp(&got->u.d, &want->u.d, sizeof(double)) == 0;
            break;
        case WEIR_T_BOOL:
            same = got->u.b == want->u.b;
            break;
        case WEIR_T_STRING:
        case WEIR_T_BYTES:
            same = got->len == want->len &&
                   (want->len == 0 || memcmp(got->u.s, want->u.s, want->len) == 0);
            break;
        case WEIR_T_NULL:
            break;
        }
    }
    if (!same) {
        print_error("row %d field %d: got type %d null %d, expected type %d null %d "
                    "(or a different value)\n", row, field, got->type, got->null,
                    want->type, want->null);
        fail();
    }
}

static void
assert_batches_same(const weir_batch_t *got, int got_from, const weir_batch_t *want,
                    int want_from, int n)
{
    assert_int_equal(got->nfields, want->nfields);
    for (int r = 0; r < n; r++) {
        const weir_value_t *g = weir_batch_row(got, got_from + r);
        const weir_value_t *w = weir_batch_row(want, want_from + r);
        for (int f = 0; f < want->nfields; f++)
            assert_value_same(&g[f], &w[f], r, f);
    }
}

static const char bin_with_nul[] = { 'a', '\0', 'b', '\0', '\xff' };

/* Fills b (all_types_schema) with rows covering every type, NULLs, empty
 * strings, bytes with NUL, and extreme numbers. Returns the number of rows. */
static int
fill_every_type(weir_batch_t *b)
{
    weir_value_t *r;

    r = weir_batch_append(b);
    r[F_I] = weir_value_int(42);
    r[F_D] = weir_value_double(3.25);
    r[F_B] = weir_value_bool(true);
    r[F_S] = weir_value_str("hello", 5);
    r[F_Y] = weir_value_bytes("\x01\x02\x03", 3);
    r[F_T] = weir_value_ts(INT64_C(1709296496123456));

    r = weir_batch_append(b);                           /* all NULL */
    r[F_I] = weir_value_null(WEIR_T_INT);
    r[F_D] = weir_value_null(WEIR_T_DOUBLE);
    r[F_B] = weir_value_null(WEIR_T_BOOL);
    r[F_S] = weir_value_null(WEIR_T_STRING);
    r[F_Y] = weir_value_null(WEIR_T_BYTES);
    r[F_T] = weir_value_null(WEIR_T_TIMESTAMP);

    r = weir_batch_append(b);                           /* empty and zero */
    r[F_I] = weir_value_int(0);
    r[F_D] = weir_value_double(-0.0);
    r[F_B] = weir_value_bool(false);
    r[F_S] = weir_value_str("", 0);
    r[F_Y] = weir_value_bytes(NULL, 0);
    r[F_T] = weir_value_ts(0);

    r = weir_batch_append(b);                           /* extremes */
    r[F_I] = weir_value_int(INT64_MIN);
    r[F_D] = weir_value_double(-1.7976931348623157e308);
    r[F_B] = weir_value_bool(true);
    r[F_S] = weir_value_str("h\xc3\xa9llo \xe2\x82\xac \"q\" \\", 16);
    r[F_Y] = weir_value_bytes(bin_with_nul, sizeof(bin_with_nul));
    r[F_T] = weir_value_ts(-1);

    r = weir_batch_append(b);
    r[F_I] = weir_value_int(INT64_MAX);
    r[F_D] = weir_value_double(INFINITY);
    r[F_B] = weir_value_null(WEIR_T_BOOL);
    r[F_S] = weir_value_str("a\0b", 3);                 /* strings may hold NUL too */
    r[F_Y] = weir_value_bytes("", 0);
    r[F_T] = weir_value_ts(INT64_C(-62135596800000000));

    r = weir_batch_append(b);
    r[F_I] = weir_value_int(-1);
    r[F_D] = weir_value_double(NAN);
    r[F_B] = weir_value_bool(false);
    r[F_S] = weir_value_null(WEIR_T_STRING);
    r[F_Y] = weir_value_null(WEIR_T_BYTES);
    r[F_T] = weir_value_ts(INT64_MAX);

    r = weir_batch_append(b);                           /* msgpack int width edges */
    r[F_I] = weir_value_int(127);
    r[F_D] = weir_value_double(4.9406564584124654e-324);
    r[F_B] = weir_value_bool(true);
    r[F_S] = weir_value_str("x", 1);
    r[F_Y] = weir_value_bytes("y", 1);
    r[F_T] = weir_value_ts(-33);

    r = weir_batch_append(b);
    r[F_I] = weir_value_int(INT64_C(4294967296));
    r[F_D] = weir_value_double(1e-300);
    r[F_B] = weir_value_bool(false);
    r[F_S] = weir_value_null(WEIR_T_STRING);
    r[F_Y] = weir_value_bytes("z", 1);
    r[F_T] = weir_value_ts(-129);
    return b->nrows;
}

/* Encodes all of src into a fresh buffer. */
static weir_buf_t
encode_all(const weir_batch_t *src)
{
    weir_buf_t out = WEIR_BUF_INIT;

    assert_int_equal(weir_codec_encode_rows(src, 0, src->nrows, &out), 0);
    assert_true(out.len > 0);
    return out;
}

static weir_batch_t *
every_type_batch(void)
{
    weir_batch_t *b = batch_of(all_types_schema(true), 4);

    fill_every_type(b);
    return b;
}

/* ---- round trips ------------------------------------------------------ */

static void
test_codec_round_trip_every_type_with_nulls_and_empties(void **state)
{
    weir_batch_t *src = every_type_batch();
    weir_batch_t *dst = batch_of(all_types_schema(true), 2);
    weir_buf_t out = encode_all(src);
    weir_err_t err = { 0 };

    assert_int_equal(weir_codec_decode_rows(out.data, out.len, dst, &err), 0);
    assert_int_equal(err.code, 0);
    assert_int_equal(dst->nrows, src->nrows);
    /* decoded strings live in dst's arena, not in the wire buffer */
    memset(out.data, 0xee, out.len);
    weir_buf_free(&out);
    assert_batches_same(dst, 0, src, 0, src->nrows);
    weir_batch_destroy(src);
    weir_batch_destroy(dst);
}

static void
test_codec_decoded_nulls_carry_the_schema_type(void **state)
{
    weir_batch_t *src = every_type_batch();
    weir_batch_t *dst = batch_of(all_types_schema(true), 0);
    weir_buf_t out = encode_all(src);
    const weir_value_t *r;

    assert_int_equal(weir_codec_decode_rows(out.data, out.len, dst, NULL), 0);
    r = weir_batch_row(dst, 1);
    for (int f = 0; f < NF_ALL; f++) {
        assert_int_equal(r[f].null, 1);
        assert_int_equal(r[f].type, dst->schema->fields[f].type);
    }
    weir_buf_free(&out);
    weir_batch_destroy(src);
    weir_batch_destroy(dst);
}

static void
test_codec_decoded_strings_point_into_the_batch_arena(void **state)
{
    weir_batch_t *src = every_type_batch();
    weir_batch_t *dst = batch_of(all_types_schema(true), 0);
    weir_buf_t out = encode_all(src);
    const weir_value_t *r;

    assert_int_equal(weir_codec_decode_rows(out.data, out.len, dst, NULL), 0);
    r = weir_batch_row(dst, 0);
    assert_true((uintptr_t)r[F_S].u.s < (uintptr_t)out.data ||
                (uintptr_t)r[F_S].u.s >= (uintptr_t)out.data + out.len);
    assert_true(weir_arena_used(&dst->arena) >= 5 + 3);
    weir_buf_free(&out);
    weir_batch_destroy(src);
    weir_batch_destroy(dst);
}

static void
test_codec_encode_row_range(void **state)
{
    weir_batch_t *src = every_type_batch();
    weir_batch_t *dst = batch_of(all_types_schema(true), 0);
    weir_buf_t out = WEIR_BUF_INIT;

    assert_int_equal(weir_codec_encode_rows(src, 2, 5, &out), 0);
    assert_int_equal(weir_codec_decode_rows(out.data, out.len, dst, NULL), 0);
    assert_int_equal(dst->nrows, 3);
    assert_batches_same(dst, 0, src, 2, 3);

    /* an empty range is a valid, empty batch */
    weir_buf_reset(&out);
    assert_int_equal(weir_codec_encode_rows(src, 4, 4, &out), 0);
    assert_int_equal(weir_codec_decode_rows(out.data, out.len, dst, NULL), 0);
    assert_int_equal(dst->nrows, 3);
    weir_buf_free(&out);
    weir_batch_destroy(src);
    weir_batch_destroy(dst);
}

static void
test_codec_encode_appends_to_the_buffer(void **state)
{
    weir_batch_t *src = every_type_batch();
    weir_batch_t *dst = batch_of(all_types_schema(true), 0);
    weir_buf_t out = WEIR_BUF_INIT;
    size_t first;

    assert_int_equal(weir_buf_append(&out, "PFX", 3), 0);
    assert_int_equal(weir_codec_encode_rows(src, 0, 1, &out), 0);
    first = out.len;
    assert_int_equal(weir_codec_encode_rows(src, 1, src->nrows, &out), 0);
    assert_memory_equal(out.data, "PFX", 3);
    assert_int_equal(weir_codec_decode_rows(out.data + 3, first - 3, dst, NULL), 0);
    assert_int_equal(weir_codec_decode_rows(out.data + first, out.len - first, dst, NULL), 0);
    assert_int_equal(dst->nrows, src->nrows);
    assert_batches_same(dst, 0, src, 0, src->nrows);
    weir_buf_free(&out);
    weir_batch_destroy(src);
    weir_batch_destroy(dst);
}

static void
test_codec_decode_appends_after_existing_rows(void **state)
{
    weir_batch_t *src = every_type_batch();
    weir_batch_t *dst = batch_of(all_types_schema(true), 1);
    weir_buf_t out = encode_all(src);

    fill_every_type(dst);
    assert_int_equal(dst->nrows, src->nrows);
    assert_int_equal(weir_codec_decode_rows(out.data, out.len, dst, NULL), 0);
    assert_int_equal(dst->nrows, 2 * src->nrows);
    assert_batches_same(dst, 0, src, 0, src->nrows);
    assert_batches_same(dst, src->nrows, src, 0, src->nrows);
    weir_buf_free(&out);
    weir_batch_destroy(src);
    weir_batch_destroy(dst);
}

static void
test_codec_round_trip_10000_rows(void **state)
{
    enum { N = 10000 };
    weir_batch_t *src = batch_of(all_types_schema(true), 16);
    weir_batch_t *dst = batch_of(all_types_schema(true), 16);
    weir_buf_t out = WEIR_BUF_INIT;
    char text[128];
    weir_err_t err;

    for (int i = 0; i < N; i++) {
        weir_value_t row[NF_ALL];
        int n = snprintf(text, sizeof(text), "row-%d-%.*s", i, i % 50,
                         "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz");
        row[F_I] = i % 7 == 0 ? weir_value_null(WEIR_T_INT) : weir_value_int((int64_t)i * 7919 - 50000);
        row[F_D] = weir_value_double(i / 3.0);
        row[F_B] = weir_value_bool(i % 2);
        row[F_S] = i % 11 == 0 ? weir_value_null(WEIR_T_STRING) : weir_value_str(text, (uint32_t)n);
        row[F_Y] = weir_value_bytes(text, (uint32_t)(i % 13));
        row[F_T] = weir_value_ts(INT64_C(1709296496000000) + (int64_t)i * 1000003);
        assert_int_equal(weir_batch_append_copy(src, row), 0);
    }
    assert_int_equal(src->nrows, N);
    assert_int_equal(weir_codec_encode_rows(src, 0, N, &out), 0);
    assert_int_equal(weir_codec_decode_rows(out.data, out.len, dst, &err), 0);
    assert_int_equal(dst->nrows, N);
    weir_buf_free(&out);
    assert_batches_same(dst, 0, src, 0, N);
    /* spot-check content independently of the source batch */
    assert_int_equal(weir_batch_row(dst, 9998)[F_S].len, 57);
    assert_memory_equal(weir_batch_row(dst, 9998)[F_S].u.s,
                        "row-9998-abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuv", 57);
    assert_true(weir_batch_row(dst, 9999)[F_S].null);
    assert_true(weir_batch_row(dst, 9996)[F_I].null);
    assert_int_equal(weir_batch_row(dst, 9998)[F_I].u.i, (int64_t)9998 * 7919 - 50000);
    weir_batch_destroy(src);
    weir_batch_destroy(dst);
}

/* The wire layout is a contract with other processes and old snapshots:
 * [nrows, nfields, cells...] with documented msgpack types per value type. */
static void
test_codec_encodes_a_flat_array_with_documented_types(void **state)
{
    weir_batch_t *src = every_type_batch();
    weir_buf_t out = WEIR_BUF_INIT;
    msgpack_unpacked u;
    size_t off = 0;
    const msgpack_object *c;

    assert_int_equal(weir_codec_encode_rows(src, 0, 2, &out), 0);
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, out.data, out.len, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, out.len);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(u.data.via.array.size, 2 + 2 * NF_ALL);
    c = u.data.via.array.ptr;
    assert_int_equal(c[0].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(c[0].via.u64, 2);
    assert_int_equal(c[1].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(c[1].via.u64, NF_ALL);
    c += 2;
    assert_int_equal(c[F_I].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(c[F_I].via.u64, 42);
    assert_int_equal(c[F_D].type, MSGPACK_OBJECT_FLOAT64);
    assert_true(c[F_D].via.f64 == 3.25);
    assert_int_equal(c[F_B].type, MSGPACK_OBJECT_BOOLEAN);
    assert_true(c[F_B].via.boolean);
    assert_int_equal(c[F_S].type, MSGPACK_OBJECT_STR);
    assert_int_equal(c[F_S].via.str.size, 5);
    assert_memory_equal(c[F_S].via.str.ptr, "hello", 5);
    assert_int_equal(c[F_Y].type, MSGPACK_OBJECT_BIN);
    assert_int_equal(c[F_Y].via.bin.size, 3);
    assert_int_equal(c[F_T].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(c[F_T].via.u64, UINT64_C(1709296496123456));
    for (int f = 0; f < NF_ALL; f++)
        assert_int_equal(c[NF_ALL + f].type, MSGPACK_OBJECT_NIL);
    msgpack_unpacked_destroy(&u);
    weir_buf_free(&out);
    weir_batch_destroy(src);
}

static void
test_codec_pack_and_unpack_single_values(void **state)
{
    weir_value_t in[] = {
        weir_value_int(-5), weir_value_double(2.5), weir_value_bool(true),
        weir_value_str("st", 2), weir_value_bytes("b\0", 2), weir_value_ts(77),
        weir_value_null(WEIR_T_STRING),
    };
    weir_type_t types[] = {
        WEIR_T_INT, WEIR_T_DOUBLE, WEIR_T_BOOL, WEIR_T_STRING, WEIR_T_BYTES,
        WEIR_T_TIMESTAMP, WEIR_T_STRING,
    };
    weir_buf_t out = WEIR_BUF_INIT;
    msgpack_packer pk;
    msgpack_unpacked u;
    size_t off = 0;

    msgpack_packer_init(&pk, &out, weir_buf_msgpack_write);
    for (size_t k = 0; k < sizeof(in) / sizeof(in[0]); k++)
        assert_int_equal(weir_codec_pack_value(&pk, &in[k]), 0);
    msgpack_unpacked_init(&u);
    for (size_t k = 0; k < sizeof(in) / sizeof(in[0]); k++) {
        weir_value_t v;

        memset(&v, 0x5a, sizeof(v));
        assert_int_equal(msgpack_unpack_next(&u, out.data, out.len, &off), MSGPACK_UNPACK_SUCCESS);
        assert_int_equal(weir_codec_unpack_value(&u.data, types[k], &v), 0);
        assert_value_same(&v, &in[k], 0, (int)k);
    }
    assert_int_equal(off, out.len);
    msgpack_unpacked_destroy(&u);
    weir_buf_free(&out);
}

static void
test_codec_unpack_value_rejects_wrong_msgpack_types(void **state)
{
    msgpack_object o;
    weir_value_t v;

    memset(&o, 0, sizeof(o));
    o.type = MSGPACK_OBJECT_STR;
    o.via.str.ptr = "12";
    o.via.str.size = 2;
    assert_int_equal(weir_codec_unpack_value(&o, WEIR_T_INT, &v), WEIR_ETYPE);
    assert_int_equal(weir_codec_unpack_value(&o, WEIR_T_DOUBLE, &v), WEIR_ETYPE);
    assert_int_equal(weir_codec_unpack_value(&o, WEIR_T_BOOL, &v), WEIR_ETYPE);
    assert_int_equal(weir_codec_unpack_value(&o, WEIR_T_TIMESTAMP, &v), WEIR_ETYPE);

    o.type = MSGPACK_OBJECT_FLOAT64;
    o.via.f64 = 1.5;
    assert_int_equal(weir_codec_unpack_value(&o, WEIR_T_INT, &v), WEIR_ETYPE);
    assert_int_equal(weir_codec_unpack_value(&o, WEIR_T_STRING, &v), WEIR_ETYPE);

    o.type = MSGPACK_OBJECT_BOOLEAN;
    o.via.boolean = true;
    assert_int_equal(weir_codec_unpack_value(&o, WEIR_T_INT, &v), WEIR_ETYPE);
    assert_int_equal(weir_codec_unpack_value(&o, WEIR_T_STRING, &v), WEIR_ETYPE);

    o.type = MSGPACK_OBJECT_POSITIVE_INTEGER;
    o.via.u64 = UINT64_C(1) << 63;                  /* does not fit int64 */
    assert_int_equal(weir_codec_unpack_value(&o, WEIR_T_INT, &v), WEIR_ERANGE);
    assert_int_equal(weir_codec_unpack_value(&o, WEIR_T_TIMESTAMP, &v), WEIR_ERANGE);
    o.via.u64 = (uint64_t)INT64_MAX;
    assert_int_equal(weir_codec_unpack_value(&o, WEIR_T_INT, &v), 0);
    assert_int_equal(v.u.i, INT64_MAX);
    assert_int_equal(v.type, WEIR_T_INT);
    assert_int_equal(v.null, 0);
}

/* ---- rejected input --------------------------------------------------- */

static void
test_codec_decode_rejects_different_field_count_with_message(void **state)
{
    weir_batch_t *src = every_type_batch();
    weir_batch_t *narrow = batch_of(uniform_schema(5, WEIR_T_INT, true), 0);
    weir_batch_t *wide = batch_of(uniform_schema(7, WEIR_T_INT, true), 0);
    weir_buf_t out = encode_all(src);
    weir_err_t err = { 0 };

    assert_int_equal(weir_codec_decode_rows(out.data, out.len, narrow, &err), WEIR_EPROTO);
    assert_int_equal(err.code, WEIR_EPROTO);
    assert_non_null(strstr(err.msg, "6 fields"));
    assert_non_null(strstr(err.msg, "expected 5"));
    assert_int_equal(narrow->nrows, 0);

    weir_err_clear(&err);
    assert_int_equal(weir_codec_decode_rows(out.data, out.len, wide, &err), WEIR_EPROTO);
    assert_int_equal(err.code, WEIR_EPROTO);
    assert_non_null(strstr(err.msg, "expected 7"));
    assert_int_equal(wide->nrows, 0);
    weir_buf_free(&out);
    weir_batch_destroy(src);
    weir_batch_destroy(narrow);
    weir_batch_destroy(wide);
}

static void
test_codec_decode_rejects_different_field_type_with_message(void **state)
{
    weir_schema_t *ss = weir_schema_new(2);
    weir_batch_t *src, *dst;
    weir_buf_t out = WEIR_BUF_INIT;
    weir_err_t err = { 0 };
    weir_value_t *r;

    assert_int_equal(weir_schema_set(ss, 0, "id", WEIR_T_INT, false), 0);
    assert_int_equal(weir_schema_set(ss, 1, "name", WEIR_T_STRING, false), 0);
    src = batch_of(ss, 0);
    r = weir_batch_append(src);
    r[0] = weir_value_int(1);
    r[1] = weir_value_str("one", 3);
    r = weir_batch_append(src);
    r[0] = weir_value_int(2);
    r[1] = weir_value_str("two", 3);
    assert_int_equal(weir_codec_encode_rows(src, 0, 2, &out), 0);

    /* same count, second field now an int: the string does not fit */
    dst = batch_of(uniform_schema(2, WEIR_T_INT, false), 0);
    assert_int_equal(weir_codec_decode_rows(out.data, out.len, dst, &err), WEIR_ETYPE);
    assert_int_equal(err.code, WEIR_ETYPE);
    assert_non_null(strstr(err.msg, "row 0"));
    assert_non_null(strstr(err.msg, "'c1'"));
    assert_int_equal(dst->nrows, 0);
    weir_batch_destroy(dst);

    /* the int does not fit a string, nor a bool, nor bytes */
    static const weir_type_t wrong[] = { WEIR_T_STRING, WEIR_T_BOOL, WEIR_T_BYTES };
    for (size_t k = 0; k < 3; k++) {
        weir_schema_t *ds = weir_schema_new(2);
        assert_int_equal(weir_schema_set(ds, 0, "id", wrong[k], false), 0);
        assert_int_equal(weir_schema_set(ds, 1, "name", WEIR_T_STRING, false), 0);
        dst = batch_of(ds, 0);
        weir_err_clear(&err);
        assert_int_equal(weir_codec_decode_rows(out.data, out.len, dst, &err), WEIR_ETYPE);
        assert_non_null(strstr(err.msg, "'id'"));
        assert_int_equal(dst->nrows, 0);
        weir_batch_destroy(dst);
    }
    weir_buf_free(&out);
    weir_batch_destroy(src);
}

static void
test_codec_decode_rejects_double_into_int_field(void **state)
{
    weir_batch_t *src = batch_of(uniform_schema(1, WEIR_T_DOUBLE, false), 0);
    weir_batch_t *dst = batch_of(uniform_schema(1, WEIR_T_INT, false), 0);
    weir_buf_t out = WEIR_BUF_INIT;
    weir_err_t err = { 0 };

    weir_batch_append(src)[0] = weir_value_double(1.0);
    assert_int_equal(weir_codec_encode_rows(src, 0, 1, &out), 0);
    assert_int_equal(weir_codec_decode_rows(out.data, out.len, dst, &err), WEIR_ETYPE);
    assert_int_equal(dst->nrows, 0);
    assert_true(strlen(err.msg) > 0);
    weir_buf_free(&out);
    weir_batch_destroy(src);
    weir_batch_destroy(dst);
}

static void
test_codec_decode_rejects_null_in_non_nullable_field(void **state)
{
    weir_batch_t *src = batch_of(all_types_schema(true), 0);
    weir_batch_t *dst = batch_of(all_types_schema(false), 0);
    weir_buf_t out = WEIR_BUF_INIT;
    weir_err_t err = { 0 };
    weir_value_t *r;

    /* row 0 complete, row 1 has a NULL string only */
    for (int k = 0; k < 2; k++) {
        r = weir_batch_append(src);
        r[F_I] = weir_value_int(k);
        r[F_D] = weir_value_double(k);
        r[F_B] = weir_value_bool(k);
        r[F_S] = k == 1 ? weir_value_null(WEIR_T_STRING) : weir_value_str("s", 1);
        r[F_Y] = weir_value_bytes("y", 1);
        r[F_T] = weir_value_ts(k);
    }
    assert_int_equal(weir_codec_encode_rows(src, 0, 2, &out), 0);
    assert_int_equal(weir_codec_decode_rows(out.data, out.len, dst, &err), WEIR_ETYPE);
    assert_int_equal(err.code, WEIR_ETYPE);
    assert_non_null(strstr(err.msg, "row 1"));
    assert_non_null(strstr(err.msg, "'s'"));
    assert_int_equal(dst->nrows, 0);
    /* the first row alone is fine */
    weir_buf_reset(&out);
    assert_int_equal(weir_codec_encode_rows(src, 0, 1, &out), 0);
    assert_int_equal(weir_codec_decode_rows(out.data, out.len, dst, &err), 0);
    assert_int_equal(dst->nrows, 1);
    weir_buf_free(&out);
    weir_batch_destroy(src);
    weir_batch_destroy(dst);
}

static void
test_codec_decode_rejects_every_truncation(void **state)
{
    weir_batch_t *src = every_type_batch();
    weir_batch_t *dst = batch_of(all_types_schema(true), 0);
    weir_buf_t out = encode_all(src);
    weir_err_t err;

    fill_every_type(dst);
    for (size_t n = 0; n < out.len; n++) {
        /* a heap copy of exactly n bytes, so ASan sees any read past the end */
        char *cut = malloc(n ? n : 1);
        int rc;

        assert_non_null(cut);
        memcpy(cut, out.data, n);
        weir_err_clear(&err);
        rc = weir_codec_decode_rows(cut, n, dst, &err);
        free(cut);
        if (rc != WEIR_EPROTO) {
            print_error("decode of the first %zu of %zu bytes returned %d, expected WEIR_EPROTO\n",
                        n, out.len, rc);
            fail();
        }
        assert_int_equal(err.code, WEIR_EPROTO);
        assert_true(strlen(err.msg) > 0);
        assert_int_equal(dst->nrows, src->nrows);
    }
    assert_batches_same(dst, 0, src, 0, src->nrows);
    weir_buf_free(&out);
    weir_batch_destroy(src);
    weir_batch_destroy(dst);
}

/* Packs a msgpack document with 'build' and returns it. */
typedef void (*build_fn)(msgpack_packer *pk);

/* Packs a document with 'build', decodes it into dst and frees it. */
static int
decode_built(weir_batch_t *dst, build_fn build, weir_err_t *err)
{
    weir_buf_t out = WEIR_BUF_INIT;
    msgpack_packer pk;
    int rc;

    msgpack_packer_init(&pk, &out, weir_buf_msgpack_write);
    build(&pk);
    rc = weir_codec_decode_rows(out.data, out.len, dst, err);
    weir_buf_free(&out);
    return rc;
}

static void
expect_rejected(weir_batch_t *dst, build_fn build, const char *what)
{
    weir_err_t err = { 0 };
    int before = dst->nrows, rc;

    rc = decode_built(dst, build, &err);
    if (rc >= 0) {
        print_error("%s: decode returned %d, expected an error\n", what, rc);
        fail();
    }
    assert_int_equal(err.code, rc);
    assert_true(strlen(err.msg) > 0);
    assert_int_equal(dst->nrows, before);
}

static void build_map(msgpack_packer *pk)
{ msgpack_pack_map(pk, 1); msgpack_pack_int(pk, 1); msgpack_pack_int(pk, 2); }
static void build_int(msgpack_packer *pk) { msgpack_pack_int(pk, 7); }
static void build_str(msgpack_packer *pk) { msgpack_pack_str_with_body(pk, "batch", 5); }
static void build_nil(msgpack_packer *pk) { msgpack_pack_nil(pk); }
static void build_empty_array(msgpack_packer *pk) { msgpack_pack_array(pk, 0); }
static void build_array1(msgpack_packer *pk) { msgpack_pack_array(pk, 1); msgpack_pack_int(pk, 0); }
static void build_str_header(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 3);
    msgpack_pack_str_with_body(pk, "1", 1);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 5);
}
static void build_negative_rows(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 3);
    msgpack_pack_int(pk, -1);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 5);
}
static void build_more_rows_than_cells(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_int(pk, 3);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 5);
    msgpack_pack_int(pk, 6);
}
static void build_fewer_rows_than_cells(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 5);
    msgpack_pack_int(pk, 2);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 5);
    msgpack_pack_int(pk, 6);
    msgpack_pack_int(pk, 7);
}
static void build_nested_row(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 3);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 1);
    msgpack_pack_array(pk, 1);
    msgpack_pack_int(pk, 5);
}
static void build_uint64_cell(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 3);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 1);
    msgpack_pack_uint64(pk, UINT64_C(1) << 63);
}

static void
test_codec_decode_rejects_malformed_documents(void **state)
{
    weir_batch_t *dst = batch_of(uniform_schema(1, WEIR_T_INT, true), 0);

    weir_batch_append(dst)[0] = weir_value_int(99);
    expect_rejected(dst, build_map, "a map");
    expect_rejected(dst, build_int, "an int");
    expect_rejected(dst, build_str, "a string");
    expect_rejected(dst, build_nil, "nil");
    expect_rejected(dst, build_empty_array, "[]");
    expect_rejected(dst, build_array1, "[0]");
    expect_rejected(dst, build_str_header, "a string row count");
    expect_rejected(dst, build_negative_rows, "a negative row count");
    expect_rejected(dst, build_more_rows_than_cells, "3 rows of 1 in 2 cells");
    expect_rejected(dst, build_fewer_rows_than_cells, "2 rows of 1 in 3 cells");
    expect_rejected(dst, build_nested_row, "an array cell");
    expect_rejected(dst, build_uint64_cell, "2^63 in an int");
    assert_int_equal(dst->nrows, 1);
    assert_int_equal(weir_batch_row(dst, 0)[0].u.i, 99);
    weir_batch_destroy(dst);
}

static void
test_codec_decode_rejects_garbage_bytes(void **state)
{
    static const char *const junk[] = {
        "", "hello", "\xc1", "\xff\xff\xff\xff", "\x93\x01\x01", "\xdc\xff\xff\x01",
        "\x92\xa1x\xa1y", "\xdb\xff\xff\xff\xff" "abc",
    };
    weir_batch_t *dst = batch_of(uniform_schema(1, WEIR_T_INT, true), 0);
    weir_err_t err;

    for (size_t k = 0; k < sizeof(junk) / sizeof(junk[0]); k++) {
        weir_err_clear(&err);
        assert_int_equal(weir_codec_decode_rows(junk[k], strlen(junk[k]), dst, &err), WEIR_EPROTO);
        assert_int_equal(err.code, WEIR_EPROTO);
        assert_true(strlen(err.msg) > 0);
        assert_int_equal(dst->nrows, 0);
    }
    /* a NULL error pointer is allowed: only the code comes back */
    assert_int_equal(weir_codec_decode_rows("hello", 5, dst, NULL), WEIR_EPROTO);
    weir_batch_destroy(dst);
}

/* Noise never crashes the decoder (ASan checks the reads) and a failure
 * never leaves rows behind. Random buffers, and a valid batch with random
 * bytes flipped. The noise holds no array32/map32 marker (0xdd, 0xdf): a huge
 * container count is its own test, at the end of the list. */
static char
noise_byte(uint64_t x)
{
    char c = (char)(x >> 24);

    return c == '\xdd' || c == '\xdf' ? '\xdc' : c;
}

static void
test_codec_decode_survives_random_noise(void **state)
{
    weir_batch_t *src = every_type_batch();
    weir_batch_t *dst = batch_of(all_types_schema(true), 0);
    weir_buf_t good = encode_all(src);
    uint64_t x = 88172645463325252ull;
    int decoded = 0;

    for (int k = 0; k < 20000; k++) {
        size_t n;
        char *p;
        int before = dst->nrows, rc;

        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        if (k % 2 == 0) {
            n = (size_t)(x % 64);
            p = malloc(n ? n : 1);
            assert_non_null(p);
            for (size_t i = 0; i < n; i++) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                p[i] = noise_byte(x);
            }
        } else {
            n = good.len;
            p = malloc(n);
            assert_non_null(p);
            memcpy(p, good.data, n);
            for (int flips = 0; flips < 3; flips++) {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                p[x % n] = noise_byte(x);
            }
        }
        if (memchr(p, 0xdd, n) != NULL || memchr(p, 0xdf, n) != NULL) {
            free(p);                /* a payload byte of the batch is one */
            continue;
        }
        decoded++;
        rc = weir_codec_decode_rows(p, n, dst, NULL);
        free(p);
        if (rc != 0)
            assert_int_equal(dst->nrows, before);
        else
            assert_true(dst->nrows >= before);
        if (dst->nrows > 1000)
            weir_batch_clear(dst);
    }
    assert_true(decoded > 10000);
    weir_buf_free(&good);
    weir_batch_destroy(src);
    weir_batch_destroy(dst);
}

static void
test_codec_failed_decode_leaves_batch_unchanged(void **state)
{
    weir_batch_t *src = batch_of(uniform_schema(2, WEIR_T_STRING, true), 0);
    weir_batch_t *dst = batch_of(uniform_schema(2, WEIR_T_STRING, false), 2);
    weir_buf_t out = WEIR_BUF_INIT;
    weir_value_t *r;
    char name[16];

    /* dst: three good rows */
    for (int i = 0; i < 3; i++) {
        weir_value_t row[2];
        snprintf(name, sizeof(name), "keep-%d", i);
        row[0] = weir_value_str(name, (uint32_t)strlen(name));
        row[1] = weir_value_str("v", 1);
        assert_int_equal(weir_batch_append_copy(dst, row), 0);
    }
    /* src: four rows, the third with a NULL dst does not allow; enough rows
     * that dst must grow while decoding */
    for (int i = 0; i < 4; i++) {
        r = weir_batch_append(src);
        r[0] = weir_value_str("new", 3);
        r[1] = i == 2 ? weir_value_null(WEIR_T_STRING) : weir_value_str("w", 1);
    }
    assert_int_equal(weir_codec_encode_rows(src, 0, 4, &out), 0);
    assert_int_equal(weir_codec_decode_rows(out.data, out.len, dst, NULL), WEIR_ETYPE);
    assert_int_equal(dst->nrows, 3);
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "keep-%d", i);
        r = weir_batch_row(dst, i);
        assert_int_equal(r[0].len, strlen(name));
        assert_memory_equal(r[0].u.s, name, strlen(name));
        assert_int_equal(r[1].len, 1);
        assert_memory_equal(r[1].u.s, "v", 1);
    }
    /* and the batch still takes good data afterwards */
    weir_buf_reset(&out);
    assert_int_equal(weir_codec_encode_rows(src, 0, 2, &out), 0);
    assert_int_equal(weir_codec_decode_rows(out.data, out.len, dst, NULL), 0);
    assert_int_equal(dst->nrows, 5);
    assert_memory_equal(weir_batch_row(dst, 4)[0].u.s, "new", 3);
    weir_buf_free(&out);
    weir_batch_destroy(src);
    weir_batch_destroy(dst);
}

/* data[0..len) is one batch: bytes after it mean the sender and receiver
 * disagree about the framing, and silently dropping them loses rows. */
static void
test_codec_decode_rejects_trailing_bytes(void **state)
{
    weir_batch_t *src = every_type_batch();
    weir_batch_t *dst = batch_of(all_types_schema(true), 0);
    weir_buf_t out = encode_all(src);
    weir_err_t err = { 0 };

    int rc, nrows;

    /* a second batch glued after the first */
    assert_int_equal(weir_codec_encode_rows(src, 0, 1, &out), 0);
    rc = weir_codec_decode_rows(out.data, out.len, dst, &err);
    nrows = dst->nrows;
    weir_buf_free(&out);                     /* before asserting: no leak on failure */
    weir_batch_destroy(src);
    weir_batch_destroy(dst);
    assert_int_equal(rc, WEIR_EPROTO);
    assert_int_equal(err.code, WEIR_EPROTO);
    assert_int_equal(nrows, 0);
}

/* nrows * nfields + 2 is computed in 64 bits: nrows = 2^63 + 1 with 2 fields
 * wraps to 4 == the cell count of [nrows, 2, 1, 2], and the cast of nrows to
 * int64 is negative, so the decoder accepts the header and returns success. */
static void
build_wrapping_row_count(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 4);
    msgpack_pack_uint64(pk, (UINT64_C(1) << 63) + 1);
    msgpack_pack_int(pk, 2);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 2);
}

static void
test_codec_decode_rejects_row_count_that_wraps(void **state)
{
    weir_batch_t *dst = batch_of(uniform_schema(2, WEIR_T_INT, true), 0);
    weir_err_t err = { 0 };
    int rc = decode_built(dst, build_wrapping_row_count, &err);
    int nrows = dst->nrows;

    weir_batch_destroy(dst);                 /* before asserting: no leak on failure */
    assert_int_equal(rc, WEIR_EPROTO);
    assert_int_equal(err.code, WEIR_EPROTO);
    assert_int_equal(nrows, 0);
}

/* Peak virtual memory of this process in KiB, from /proc/self/status. */
static long
vm_peak_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;

    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmPeak: %ld kB", &kib) == 1)
            break;
    fclose(f);
    assert_true(kib > 0);
    return kib;
}

/* A 5-byte array header announcing 2^24 (or 2^32-1) cells: msgpack-c sizes
 * the array's object storage from the header before it knows the bytes are
 * there (2^24 * 24 bytes = a 512 MiB zone chunk; 2^32-1 cells = 128 GiB),
 * whether the array is the batch or one of its cells. The decoder must refuse
 * a count larger than the bytes left, and a container as a cell, before
 * unpacking it. The 2^24 cases are measured as growth of VmPeak; the 2^32-1
 * case makes ASan abort on the request itself, which is why this test is
 * last. */
static void
test_codec_decode_rejects_huge_array_header_without_allocating(void **state)
{
    static const char big[] = "\xdd\x01\x00\x00\x00\x01\x01";
    static const char huge[] = "\xdd\xff\xff\xff\xff";
    static const char big_cell[] = "\x93\x01\x01\xdd\x01\x00\x00\x00";   /* [1, 1, <2^24 cells>] */
    weir_batch_t *dst = batch_of(uniform_schema(1, WEIR_T_INT, true), 0);
    weir_err_t err = { 0 };
    long before, grown;

    int rc_big, rc_cell, rc_huge, nrows;

    before = vm_peak_kib();
    rc_big = weir_codec_decode_rows(big, 7, dst, &err);
    grown = vm_peak_kib() - before;
    if (grown > 64 * 1024) {
        weir_batch_destroy(dst);
        print_error("decoding 7 bytes grew peak virtual memory by %ld MiB\n", grown / 1024);
        fail();
    }
    before = vm_peak_kib();
    rc_cell = weir_codec_decode_rows(big_cell, 8, dst, &err);
    grown = vm_peak_kib() - before;
    if (grown > 64 * 1024) {
        weir_batch_destroy(dst);
        print_error("decoding a cell of 5 bytes grew peak virtual memory by %ld MiB\n",
                    grown / 1024);
        fail();
    }
    rc_huge = weir_codec_decode_rows(huge, 5, dst, &err);
    nrows = dst->nrows;
    weir_batch_destroy(dst);
    assert_int_equal(rc_big, WEIR_EPROTO);
    assert_true(rc_cell < 0);               /* EPROTO or ETYPE: a cell is no array */
    assert_int_equal(rc_huge, WEIR_EPROTO);
    assert_true(strlen(err.msg) > 0);
    assert_int_equal(nrows, 0);
}

/* ---- frame header ----------------------------------------------------- */

static void
test_frame_len_is_big_endian(void **state)
{
    char h[4];

    weir_frame_put_len(h, 0x01020304u);
    assert_memory_equal(h, "\x01\x02\x03\x04", 4);
    assert_int_equal(weir_frame_get_len(h), 0x01020304u);
    weir_frame_put_len(h, 0xffffffffu);
    assert_memory_equal(h, "\xff\xff\xff\xff", 4);
    assert_int_equal(weir_frame_get_len(h), 0xffffffffu);
    weir_frame_put_len(h, 0);
    assert_memory_equal(h, "\0\0\0\0", 4);
    assert_int_equal(weir_frame_get_len(h), 0);
    weir_frame_put_len(h, 200);
    assert_memory_equal(h, "\0\0\0\xc8", 4);
    assert_int_equal(weir_frame_get_len("\x80\x00\x00\x01"), 0x80000001u);
}

static void
test_frame_begin_end_writes_payload_length(void **state)
{
    weir_buf_t out = WEIR_BUF_INIT;
    size_t h1, h2;

    assert_int_equal(weir_buf_append(&out, "xyz", 3), 0);
    h1 = weir_frame_begin(&out);
    assert_int_equal(h1, 3);
    assert_int_equal(out.len, 3 + WEIR_FRAME_HDR);
    assert_int_equal(weir_buf_append(&out, "hello", 5), 0);
    assert_int_equal(weir_frame_end(&out, h1, 0), 0);
    h2 = weir_frame_begin(&out);
    assert_int_equal(h2, 3 + 4 + 5);
    assert_int_equal(weir_frame_end(&out, h2, 0), 0);       /* an empty frame */
    assert_int_equal(out.len, 3 + 4 + 5 + 4);
    assert_memory_equal(out.data, "xyz\0\0\0\x05hello\0\0\0\0", out.len);
    weir_buf_free(&out);
}

static void
test_frame_end_rejects_oversize_payload(void **state)
{
    weir_buf_t out = WEIR_BUF_INIT;
    size_t h;

    h = weir_frame_begin(&out);
    assert_int_equal(weir_buf_append(&out, "0123456789", 10), 0);
    assert_int_equal(weir_frame_end(&out, h, 10), 0);
    assert_int_equal(weir_frame_get_len(out.data + h), 10);
    assert_int_equal(weir_buf_putc(&out, 'X'), 0);
    assert_int_equal(weir_frame_end(&out, h, 10), WEIR_E2BIG);
    assert_int_equal(weir_frame_end(&out, h, 11), 0);
    assert_int_equal(weir_frame_get_len(out.data + h), 11);
    weir_buf_free(&out);
}

/* A batch framed by frame_begin/end comes out of a frame reader whole and
 * decodes to the same rows. */
static void
test_frame_round_trip_of_encoded_batches(void **state)
{
    weir_batch_t *src = every_type_batch();
    weir_batch_t *dst = batch_of(all_types_schema(true), 0);
    weir_buf_t out = WEIR_BUF_INIT;
    weir_frame_reader_t rd;
    const char *frame;
    uint32_t len;
    size_t h;

    for (int k = 0; k < 3; k++) {
        h = weir_frame_begin(&out);
        assert_int_equal(weir_codec_encode_rows(src, k, src->nrows, &out), 0);
        assert_int_equal(weir_frame_end(&out, h, WEIR_FRAME_MAX_DEFAULT), 0);
    }
    weir_frame_reader_init(&rd, 0);
    assert_int_equal(rd.max_frame, WEIR_FRAME_MAX_DEFAULT);
    assert_int_equal(weir_frame_reader_feed(&rd, out.data, out.len), 0);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), 1);
        assert_int_equal(weir_codec_decode_rows(frame, len, dst, NULL), 0);
    }
    assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), 0);
    assert_int_equal(dst->nrows, 3 * src->nrows - 0 - 1 - 2);
    assert_batches_same(dst, 0, src, 0, src->nrows);
    assert_batches_same(dst, src->nrows, src, 1, src->nrows - 1);
    weir_frame_reader_free(&rd);
    weir_buf_free(&out);
    weir_batch_destroy(src);
    weir_batch_destroy(dst);
}

/* ---- frame reader ----------------------------------------------------- */

/* Three frames: "a", "" and 1000 bytes of a pattern. */
static weir_buf_t
three_frames(char big[1000])
{
    weir_buf_t s = WEIR_BUF_INIT;
    size_t h;

    for (int i = 0; i < 1000; i++)
        big[i] = (char)(i * 31 + 7);
    h = weir_frame_begin(&s);
    assert_int_equal(weir_buf_putc(&s, 'a'), 0);
    assert_int_equal(weir_frame_end(&s, h, 0), 0);
    h = weir_frame_begin(&s);
    assert_int_equal(weir_frame_end(&s, h, 0), 0);
    h = weir_frame_begin(&s);
    assert_int_equal(weir_buf_append(&s, big, 1000), 0);
    assert_int_equal(weir_frame_end(&s, h, 0), 0);
    assert_int_equal(s.len, 4 + 1 + 4 + 0 + 4 + 1000);
    return s;
}

static void
assert_three_frames(char got[3][1000], const uint32_t lens[3], const char big[1000])
{
    assert_int_equal(lens[0], 1);
    assert_int_equal(got[0][0], 'a');
    assert_int_equal(lens[1], 0);
    assert_int_equal(lens[2], 1000);
    assert_memory_equal(got[2], big, 1000);
}

static void
test_frame_reader_byte_by_byte_yields_whole_frames(void **state)
{
    char big[1000], got[3][1000];
    uint32_t lens[3];
    weir_buf_t s = three_frames(big);
    weir_frame_reader_t rd;
    const char *frame;
    uint32_t len;
    int nframes = 0;

    weir_frame_reader_init(&rd, 4096);
    for (size_t i = 0; i < s.len; i++) {
        int rc;

        assert_int_equal(weir_frame_reader_feed(&rd, s.data + i, 1), 0);
        while ((rc = weir_frame_reader_next(&rd, &frame, &len)) == 1) {
            assert_true(nframes < 3);
            lens[nframes] = len;
            memcpy(got[nframes], frame, len);
            nframes++;
            /* a frame completes exactly on its last byte */
            assert_true(i == 4 || i == 8 || i == s.len - 1);
        }
        assert_int_equal(rc, 0);
    }
    assert_int_equal(nframes, 3);
    assert_three_frames(got, lens, big);
    weir_frame_reader_free(&rd);
    weir_buf_free(&s);
}

static void
test_frame_reader_several_frames_in_one_feed(void **state)
{
    char big[1000], got[3][1000];
    uint32_t lens[3];
    weir_buf_t s = three_frames(big);
    weir_frame_reader_t rd;
    const char *frame;
    uint32_t len;

    weir_frame_reader_init(&rd, 4096);
    assert_int_equal(weir_frame_reader_feed(&rd, s.data, s.len), 0);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), 1);
        lens[k] = len;
        memcpy(got[k], frame, len);
    }
    assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), 0);
    assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), 0);
    assert_three_frames(got, lens, big);
    weir_frame_reader_free(&rd);
    weir_buf_free(&s);
}

static void
test_frame_reader_truncated_frame_yields_nothing_until_completed(void **state)
{
    char big[1000];
    weir_buf_t s = three_frames(big);
    weir_frame_reader_t rd;
    const char *frame = NULL;
    uint32_t len = 0;
    size_t third = 4 + 1 + 4;                /* offset of the 1000-byte frame */

    weir_frame_reader_init(&rd, 4096);
    /* the first two frames and the third's header plus half its payload */
    assert_int_equal(weir_frame_reader_feed(&rd, s.data, third + 4 + 500), 0);
    assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), 1);
    assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), 1);
    assert_int_equal(len, 0);
    for (int k = 0; k < 3; k++)
        assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), 0);
    /* all but the last byte */
    assert_int_equal(weir_frame_reader_feed(&rd, s.data + third + 4 + 500, 499), 0);
    assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), 0);
    assert_int_equal(weir_frame_reader_feed(&rd, s.data + s.len - 1, 1), 0);
    assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), 1);
    assert_int_equal(len, 1000);
    assert_memory_equal(frame, big, 1000);
    assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), 0);
    weir_frame_reader_free(&rd);
    weir_buf_free(&s);
}

static void
test_frame_reader_partial_header_yields_nothing(void **state)
{
    weir_frame_reader_t rd;
    const char *frame;
    uint32_t len;

    weir_frame_reader_init(&rd, 16);
    assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), 0);   /* never fed */
    assert_int_equal(weir_frame_reader_feed(&rd, "\0\0", 2), 0);
    assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), 0);
    assert_int_equal(weir_frame_reader_feed(&rd, "\0", 1), 0);
    assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), 0);
    assert_int_equal(weir_frame_reader_feed(&rd, "\x02ok", 3), 0);
    assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), 1);
    assert_int_equal(len, 2);
    assert_memory_equal(frame, "ok", 2);
    assert_int_equal(weir_frame_reader_feed(&rd, NULL, 0), 0);          /* nothing is fine */
    assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), 0);
    weir_frame_reader_free(&rd);
}

static void
test_frame_reader_rejects_header_over_max_frame(void **state)
{
    weir_frame_reader_t rd;
    const char *frame;
    uint32_t len;
    char hdr[4];

    /* exactly max_frame is allowed and waits for its payload */
    weir_frame_reader_init(&rd, 100);
    weir_frame_put_len(hdr, 100);
    assert_int_equal(weir_frame_reader_feed(&rd, hdr, 4), 0);
    assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), 0);
    weir_frame_reader_free(&rd);

    /* one more is refused as soon as the header is in, payload or not */
    weir_frame_reader_init(&rd, 100);
    weir_frame_put_len(hdr, 101);
    assert_int_equal(weir_frame_reader_feed(&rd, hdr, 4), 0);
    assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), WEIR_E2BIG);
    assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), WEIR_E2BIG);   /* and stays so */
    weir_frame_reader_free(&rd);

    /* a lying 4 GiB header against the default limit */
    weir_frame_reader_init(&rd, 0);
    assert_int_equal(weir_frame_reader_feed(&rd, "\xff\xff\xff\xff", 4), 0);
    assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), WEIR_E2BIG);
    weir_frame_reader_free(&rd);

    /* after good frames, the bad header is still caught */
    weir_frame_reader_init(&rd, 8);
    assert_int_equal(weir_frame_reader_feed(&rd, "\0\0\0\x01z\0\0\0\x09", 9), 0);
    assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), 1);
    assert_int_equal(len, 1);
    assert_int_equal(weir_frame_reader_next(&rd, &frame, &len), WEIR_E2BIG);
    weir_frame_reader_free(&rd);
}

/* A long stream fed in odd-sized pieces comes out in order, and the reader's
 * buffer stays small because consumed bytes are dropped. */
static void
test_frame_reader_long_stream_in_odd_pieces_stays_bounded(void **state)
{
    enum { N = 10000 };
    weir_buf_t s = WEIR_BUF_INIT;
    weir_frame_reader_t rd;
    const char *frame;
    uint32_t len;
    int next = 0;
    char payload[32];
    size_t h, max_cap = 0;

    for (int i = 0; i < N; i++) {
        int n = snprintf(payload, sizeof(payload), "frame-%d", i);
        h = weir_frame_begin(&s);
        assert_int_equal(weir_buf_append(&s, payload, (size_t)n), 0);
        assert_int_equal(weir_frame_end(&s, h, 64), 0);
    }
    weir_frame_reader_init(&rd, 64);
    for (size_t off = 0; off < s.len;) {
        size_t n = 1 + (off * 7919) % 23;
        if (n > s.len - off)
            n = s.len - off;
        assert_int_equal(weir_frame_reader_feed(&rd, s.data + off, n), 0);
        off += n;
        while (weir_frame_reader_next(&rd, &frame, &len) == 1) {
            int want = snprintf(payload, sizeof(payload), "frame-%d", next);
            assert_int_equal(len, want);
            assert_memory_equal(frame, payload, len);
            next++;
        }
        if (rd.buf.cap > max_cap)
            max_cap = rd.buf.cap;
    }
    assert_int_equal(next, N);
    assert_true(max_cap <= 1024);
    weir_frame_reader_free(&rd);
    weir_buf_free(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_round_trip_every_type_with_nulls_and_empties),
        cmocka_unit_test(test_codec_decoded_nulls_carry_the_schema_type),
        cmocka_unit_test(test_codec_decoded_strings_point_into_the_batch_arena),
        cmocka_unit_test(test_codec_encode_row_range),
        cmocka_unit_test(test_codec_encode_appends_to_the_buffer),
        cmocka_unit_test(test_codec_decode_appends_after_existing_rows),
        cmocka_unit_test(test_codec_round_trip_10000_rows),
        cmocka_unit_test(test_codec_encodes_a_flat_array_with_documented_types),
        cmocka_unit_test(test_codec_pack_and_unpack_single_values),
        cmocka_unit_test(test_codec_unpack_value_rejects_wrong_msgpack_types),
        cmocka_unit_test(test_codec_decode_rejects_different_field_count_with_message),
        cmocka_unit_test(test_codec_decode_rejects_different_field_type_with_message),
        cmocka_unit_test(test_codec_decode_rejects_double_into_int_field),
        cmocka_unit_test(test_codec_decode_rejects_null_in_non_nullable_field),
        cmocka_unit_test(test_codec_decode_rejects_every_truncation),
        cmocka_unit_test(test_codec_decode_rejects_malformed_documents),
        cmocka_unit_test(test_codec_decode_rejects_garbage_bytes),
        cmocka_unit_test(test_codec_decode_survives_random_noise),
        cmocka_unit_test(test_codec_failed_decode_leaves_batch_unchanged),
        cmocka_unit_test(test_codec_decode_rejects_trailing_bytes),
        cmocka_unit_test(test_codec_decode_rejects_row_count_that_wraps),
        cmocka_unit_test(test_frame_len_is_big_endian),
        cmocka_unit_test(test_frame_begin_end_writes_payload_length),
        cmocka_unit_test(test_frame_end_rejects_oversize_payload),
        cmocka_unit_test(test_frame_round_trip_of_encoded_batches),
        cmocka_unit_test(test_frame_reader_byte_by_byte_yields_whole_frames),
        cmocka_unit_test(test_frame_reader_several_frames_in_one_feed),
        cmocka_unit_test(test_frame_reader_truncated_frame_yields_nothing_until_completed),
        cmocka_unit_test(test_frame_reader_partial_header_yields_nothing),
        cmocka_unit_test(test_frame_reader_rejects_header_over_max_frame),
        cmocka_unit_test(test_frame_reader_long_stream_in_odd_pieces_stays_bounded),
        /* last: under ASan its 128 GiB request may abort the process */
        cmocka_unit_test(test_codec_decode_rejects_huge_array_header_without_allocating),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
