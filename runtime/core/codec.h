/* runtime/core/codec.h -- msgpack encoding of rows, batches and frames.
 *
 * On the wire and in state, values are msgpack, rows positional arrays:
 *   batch = [nrows, nfields, v00, v01, ..., v(n-1)(f-1)]   (flat, row-major)
 * Types map as: int -> int, double -> float64, bool -> bool, string -> str,
 * bytes -> bin, timestamp -> int (microseconds; the schema says it is a
 * timestamp), null -> nil. Decoding checks each value against the schema.
 *
 * Frames on a stream socket are a 4-byte big-endian length, then that
 * many bytes of msgpack; weir_frame_* handle the framing with a size limit.
 */
#ifndef WEIR_CORE_CODEC_H
#define WEIR_CORE_CODEC_H

#include <msgpack.h>

#include "batch.h"
#include "buf.h"
#include "error.h"

#define WEIR_FRAME_HDR 4
#define WEIR_FRAME_MAX_DEFAULT (64u << 20)    /* 64 MiB */

/* Appends the msgpack of rows [from, to) of b to out. */
int weir_codec_encode_rows(const weir_batch_t *b, int from, int to, weir_buf_t *out);
/* Packs one value with a packer. */
int weir_codec_pack_value(msgpack_packer *pk, const weir_value_t *v);
/* Decodes a batch encoded by weir_codec_encode_rows from data[0..len) and
 * appends its rows to b (whose schema must match: nfields and types).
 * Strings are copied into b's arena. */
int weir_codec_decode_rows(const char *data, size_t len, weir_batch_t *b, weir_err_t *err);
/* Converts a msgpack object to a value of type t (strings borrowed from obj). */
int weir_codec_unpack_value(const msgpack_object *o, weir_type_t t, weir_value_t *out);

/* Frame header helpers. */
static inline void weir_frame_put_len(char *hdr, uint32_t n)
{
    hdr[0] = (char)(n >> 24); hdr[1] = (char)(n >> 16);
    hdr[2] = (char)(n >> 8);  hdr[3] = (char)n;
}
static inline uint32_t weir_frame_get_len(const char *hdr)
{
    const unsigned char *h = (const unsigned char *)hdr;
    return ((uint32_t)h[0] << 24) | ((uint32_t)h[1] << 16) | ((uint32_t)h[2] << 8) | h[3];
}

/* Incremental frame reader: feed it bytes as they arrive from a socket;
 * it yields whole frames. */
typedef struct weir_frame_reader {
    weir_buf_t buf;         /* unconsumed bytes */
    size_t     off;         /* start of unconsumed data in buf */
    uint32_t   max_frame;
} weir_frame_reader_t;

void weir_frame_reader_init(weir_frame_reader_t *r, uint32_t max_frame);
void weir_frame_reader_free(weir_frame_reader_t *r);
int  weir_frame_reader_feed(weir_frame_reader_t *r, const char *p, size_t n);
/* Sets *frame and *len to the next whole frame's payload (valid until the next
 * feed or next call) and returns 1; returns 0 when no whole frame is
 * buffered; WEIR_E2BIG when a frame header announces more than max_frame. */
int  weir_frame_reader_next(weir_frame_reader_t *r, const char **frame, uint32_t *len);

/* Starts a frame in out: reserves the 4-byte header. Returns the offset of
 * the header, to pass to weir_frame_end once the payload is appended. */
size_t weir_frame_begin(weir_buf_t *out);
int    weir_frame_end(weir_buf_t *out, size_t hdr_off, uint32_t max_frame);

#endif
