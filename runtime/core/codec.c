/* runtime/core/codec.c -- msgpack for batches, and stream framing.
 *
 * A batch goes on the wire as one flat msgpack array
 *   [nrows, nfields, v00, v01, ..., v(n-1)(f-1)]
 * which costs one array header for the whole batch instead of one per row.
 * The decoder reads the cells with a small cursor of its own (scalars only:
 * no header can make it allocate, unlike a DOM unpack), checks every cell
 * against the receiving schema, and copies strings into the batch's arena.
 */
#include "codec.h"

#include <string.h>

int
weir_codec_pack_value(msgpack_packer *pk, const weir_value_t *v)
{
    if (v->null)
        return msgpack_pack_nil(pk);
    switch ((weir_type_t)v->type) {
    case WEIR_T_INT:
    case WEIR_T_TIMESTAMP:
        return msgpack_pack_int64(pk, v->u.i);
    case WEIR_T_DOUBLE:
        return msgpack_pack_double(pk, v->u.d);
    case WEIR_T_BOOL:
        return v->u.b ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
    case WEIR_T_STRING:
        if (msgpack_pack_str(pk, v->len) != 0)
            return -1;
        return msgpack_pack_str_body(pk, v->u.s, v->len);
    case WEIR_T_BYTES:
        if (msgpack_pack_bin(pk, v->len) != 0)
            return -1;
        return msgpack_pack_bin_body(pk, v->u.s, v->len);
    case WEIR_T_NULL:
        return msgpack_pack_nil(pk);
    }
    return -1;
}

int
weir_codec_encode_rows(const weir_batch_t *b, int from, int to, weir_buf_t *out)
{
    msgpack_packer pk;
    int nf = b->nfields;

    msgpack_packer_init(&pk, out, weir_buf_msgpack_write);
    if (msgpack_pack_array(&pk, 2 + (size_t)(to - from) * (size_t)nf) != 0 ||
        msgpack_pack_int(&pk, to - from) != 0 || msgpack_pack_int(&pk, nf) != 0)
        return WEIR_ENOMEM;
    for (int r = from; r < to; r++) {
        const weir_value_t *row = weir_batch_row(b, r);
        for (int f = 0; f < nf; f++)
            if (weir_codec_pack_value(&pk, &row[f]) != 0)
                return WEIR_ENOMEM;
    }
    return 0;
}

int
weir_codec_unpack_value(const msgpack_object *o, weir_type_t t, weir_value_t *out)
{
    if (o->type == MSGPACK_OBJECT_NIL) {
        *out = weir_value_null(t);
        return 0;
    }
    switch (t) {
    case WEIR_T_INT:
    case WEIR_T_TIMESTAMP:
        if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            if (o->via.u64 > (uint64_t)INT64_MAX)
                return WEIR_ERANGE;
            out->u.i = (int64_t)o->via.u64;
        } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
            out->u.i = o->via.i64;
        } else {
            return WEIR_ETYPE;
        }
        break;
    case WEIR_T_DOUBLE:
        if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
            out->u.d = o->via.f64;
        else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            out->u.d = (double)o->via.u64;
        else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            out->u.d = (double)o->via.i64;
        else
            return WEIR_ETYPE;
        break;
    case WEIR_T_BOOL:
        if (o->type != MSGPACK_OBJECT_BOOLEAN)
            return WEIR_ETYPE;
        out->u.b = o->via.boolean;
        break;
    case WEIR_T_STRING:
        if (o->type != MSGPACK_OBJECT_STR)
            return WEIR_ETYPE;
        out->u.s = o->via.str.ptr;
        out->len = o->via.str.size;
        break;
    case WEIR_T_BYTES:
        if (o->type == MSGPACK_OBJECT_BIN) {
            out->u.s = o->via.bin.ptr;
            out->len = o->via.bin.size;
        } else if (o->type == MSGPACK_OBJECT_STR) {
            out->u.s = o->via.str.ptr;
            out->len = o->via.str.size;
        } else {
            return WEIR_ETYPE;
        }
        break;
    case WEIR_T_NULL:
        return WEIR_ETYPE;
    }
    out->type = (uint8_t)t;
    out->null = 0;
    return 0;
}

/* A cursor over msgpack bytes, for the decoder below. */
typedef struct {
    const unsigned char *p;
    size_t               len, off;
} mp_cursor_t;

static int
mp_need(const mp_cursor_t *c, size_t n)
{
    return c->len - c->off >= n ? 0 : WEIR_EPROTO;
}

static uint64_t
mp_be(const unsigned char *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Reads an array header; *n = element count. */
static int
mp_array(mp_cursor_t *c, uint64_t *n)
{
    unsigned char t;

    if (mp_need(c, 1) != 0)
        return WEIR_EPROTO;
    t = c->p[c->off];
    if (t >= 0x90 && t <= 0x9f) {
        *n = t & 15;
        c->off += 1;
    } else if (t == 0xdc && mp_need(c, 3) == 0) {
        *n = mp_be(c->p + c->off + 1, 2);
        c->off += 3;
    } else if (t == 0xdd && mp_need(c, 5) == 0) {
        *n = mp_be(c->p + c->off + 1, 4);
        c->off += 5;
    } else {
        return WEIR_EPROTO;
    }
    return 0;
}

/* Reads one scalar into a msgpack_object (strings and bins point into the
 * input). Containers, ext types and truncated input are rejected, so no
 * header can make this allocate. */
static int
mp_scalar(mp_cursor_t *c, msgpack_object *o)
{
    const unsigned char *p;
    unsigned char t;
    uint64_t n = 0;
    int w = 0;

    if (mp_need(c, 1) != 0)
        return WEIR_EPROTO;
    p = c->p + c->off;
    t = p[0];
    if (t <= 0x7f) {
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = t;
        c->off += 1;
        return 0;
    }
    if (t >= 0xe0) {
        o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        o->via.i64 = (int8_t)t;
        c->off += 1;
        return 0;
    }
    if (t >= 0xa0 && t <= 0xbf) {
        n = t & 31;
        c->off += 1;
        goto str;
    }
    switch (t) {
    case 0xc0: o->type = MSGPACK_OBJECT_NIL; c->off += 1; return 0;
    case 0xc2:
    case 0xc3: o->type = MSGPACK_OBJECT_BOOLEAN; o->via.boolean = t == 0xc3; c->off += 1; return 0;
    case 0xcc: w = 1; break;
    case 0xcd: w = 2; break;
    case 0xce: w = 4; break;
    case 0xcf: w = 8; break;
    case 0xd0: w = -1; break;
    case 0xd1: w = -2; break;
    case 0xd2: w = -4; break;
    case 0xd3: w = -8; break;
    case 0xca:
    case 0xcb: {
        int fw = t == 0xca ? 4 : 8;
        uint64_t bits;
        if (mp_need(c, 1 + (size_t)fw) != 0)
            return WEIR_EPROTO;
        bits = mp_be(p + 1, fw);
        if (fw == 4) {
            uint32_t b32 = (uint32_t)bits;
            float f;
            memcpy(&f, &b32, 4);
            o->via.f64 = f;
        } else {
            memcpy(&o->via.f64, &bits, 8);
        }
        o->type = MSGPACK_OBJECT_FLOAT64;
        c->off += 1 + (size_t)fw;
        return 0;
    }
    case 0xd9: case 0xda: case 0xdb:
    case 0xc4: case 0xc5: case 0xc6: {
        int lw = (t == 0xd9 || t == 0xc4) ? 1 : (t == 0xda || t == 0xc5) ? 2 : 4;
        if (mp_need(c, 1 + (size_t)lw) != 0)
            return WEIR_EPROTO;
        n = mp_be(p + 1, lw);
        c->off += 1 + (size_t)lw;
        if (t >= 0xc4 && t <= 0xc6) {
            if (mp_need(c, n) != 0)
                return WEIR_EPROTO;
            o->type = MSGPACK_OBJECT_BIN;
            o->via.bin.ptr = (const char *)c->p + c->off;
            o->via.bin.size = (uint32_t)n;
            c->off += n;
            return 0;
        }
        goto str;
    }
    default:
        return WEIR_ETYPE;         /* containers and ext: never a cell */
    }
    if (mp_need(c, 1 + (size_t)(w < 0 ? -w : w)) != 0)
        return WEIR_EPROTO;
    if (w > 0) {
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = mp_be(p + 1, w);
        c->off += 1 + (size_t)w;
    } else {
        uint64_t u = mp_be(p + 1, -w);
        int bits = -w * 8;
        int64_t v = bits == 64 ? (int64_t)u
                  : (int64_t)(u ^ (1ull << (bits - 1))) - (int64_t)(1ull << (bits - 1));
        o->type = v < 0 ? MSGPACK_OBJECT_NEGATIVE_INTEGER : MSGPACK_OBJECT_POSITIVE_INTEGER;
        if (v < 0)
            o->via.i64 = v;
        else
            o->via.u64 = (uint64_t)v;
        c->off += 1 + (size_t)-w;
    }
    return 0;
str:
    if (mp_need(c, n) != 0)
        return WEIR_EPROTO;
    o->type = MSGPACK_OBJECT_STR;
    o->via.str.ptr = (const char *)c->p + c->off;
    o->via.str.size = (uint32_t)n;
    c->off += n;
    return 0;
}

int
weir_codec_decode_rows(const char *data, size_t len, weir_batch_t *b, weir_err_t *err)
{
    mp_cursor_t c = { (const unsigned char *)data, len, 0 };
    msgpack_object hdr[2], o;
    uint64_t ncells, nrows, nf;
    int rc = 0, start = b->nrows;

    /* every cell takes at least one byte: a count beyond the bytes left is a lie */
    if (mp_array(&c, &ncells) != 0 || ncells < 2 || ncells > len - c.off ||
        mp_scalar(&c, &hdr[0]) != 0 || mp_scalar(&c, &hdr[1]) != 0)
        return weir_err_set(err, WEIR_EPROTO, "batch: not a msgpack batch array");
    if (hdr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || hdr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return weir_err_set(err, WEIR_EPROTO, "batch: bad header");
    nrows = hdr[0].via.u64;
    nf = hdr[1].via.u64;
    if (nf != (uint64_t)b->nfields || nrows > INT32_MAX ||
        (nf > 0 && nrows > (ncells - 2) / nf) || nrows * nf + 2 != ncells)
        return weir_err_set(err, WEIR_EPROTO,
                            "batch: %llu fields x %llu rows in %llu cells, expected %d fields",
                            (unsigned long long)nf, (unsigned long long)nrows,
                            (unsigned long long)ncells, b->nfields);
    for (uint64_t r = 0; r < nrows; r++) {
        weir_value_t *row = weir_batch_append(b);
        if (row == NULL) {
            rc = weir_err_set(err, WEIR_ENOMEM, "batch: out of memory");
            goto done;
        }
        for (int f = 0; f < (int)nf; f++) {
            const weir_field_t *fd = &b->schema->fields[f];
            rc = mp_scalar(&c, &o);
            if (rc == 0)
                rc = weir_codec_unpack_value(&o, fd->type, &row[f]);
            if (rc == 0 && row[f].null && !fd->nullable)
                rc = WEIR_ETYPE;
            if (rc == 0)
                rc = weir_batch_own(b, &row[f]);
            if (rc != 0) {
                weir_err_set(err, rc, "batch: row %llu field '%s': %s", (unsigned long long)r,
                             fd->name, weir_strerror(rc));
                goto done;
            }
        }
    }
    if (c.off != len)
        rc = weir_err_set(err, WEIR_EPROTO, "batch: %zu trailing bytes", len - c.off);
done:
    if (rc != 0)
        b->nrows = start;
    return rc;
}

/* ---- framing ---------------------------------------------------------- */

void
weir_frame_reader_init(weir_frame_reader_t *r, uint32_t max_frame)
{
    memset(r, 0, sizeof(*r));
    r->max_frame = max_frame ? max_frame : WEIR_FRAME_MAX_DEFAULT;
}

void
weir_frame_reader_free(weir_frame_reader_t *r)
{
    weir_buf_free(&r->buf);
    r->off = 0;
}

int
weir_frame_reader_feed(weir_frame_reader_t *r, const char *p, size_t n)
{
    /* compact once the consumed prefix dominates, so the buffer stays small */
    if (r->off > 0 && (r->off == r->buf.len || r->off >= r->buf.len / 2)) {
        memmove(r->buf.data, r->buf.data + r->off, r->buf.len - r->off);
        r->buf.len -= r->off;
        r->off = 0;
    }
    return weir_buf_append(&r->buf, p, n);
}

int
weir_frame_reader_next(weir_frame_reader_t *r, const char **frame, uint32_t *len)
{
    size_t avail = r->buf.len - r->off;
    uint32_t n;

    if (avail < WEIR_FRAME_HDR)
        return 0;
    n = weir_frame_get_len(r->buf.data + r->off);
    if (n > r->max_frame)
        return WEIR_E2BIG;
    if (avail - WEIR_FRAME_HDR < n)
        return 0;
    *frame = r->buf.data + r->off + WEIR_FRAME_HDR;
    *len = n;
    r->off += WEIR_FRAME_HDR + n;
    return 1;
}

size_t
weir_frame_begin(weir_buf_t *out)
{
    size_t off = out->len;
    static const char zero[WEIR_FRAME_HDR] = { 0 };

    weir_buf_append(out, zero, sizeof(zero));
    return off;
}

int
weir_frame_end(weir_buf_t *out, size_t hdr_off, uint32_t max_frame)
{
    size_t n;

    if (out->len < hdr_off + WEIR_FRAME_HDR)
        return WEIR_ENOMEM;              /* the header append failed */
    n = out->len - hdr_off - WEIR_FRAME_HDR;
    if (n > (max_frame ? max_frame : WEIR_FRAME_MAX_DEFAULT))
        return WEIR_E2BIG;
    weir_frame_put_len(out->data + hdr_off, (uint32_t)n);
    return 0;
}
