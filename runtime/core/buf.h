/* runtime/core/buf.h -- a growable byte buffer, reused across records. */
#ifndef WEIR_CORE_BUF_H
#define WEIR_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct weir_buf {
    char  *data;
    size_t len;
    size_t cap;
} weir_buf_t;

#define WEIR_BUF_INIT { NULL, 0, 0 }

/* All return 0 or WEIR_ENOMEM. */
int  weir_buf_reserve(weir_buf_t *b, size_t extra);
int  weir_buf_append(weir_buf_t *b, const void *p, size_t n);
int  weir_buf_appendf(weir_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int  weir_buf_putc(weir_buf_t *b, char c);
/* Appends s as a JSON string literal, quotes included. */
int  weir_buf_append_json_str(weir_buf_t *b, const char *s, size_t n);
/* Keeps data[len] == '\0' readable (does not count in len). */
int  weir_buf_nul(weir_buf_t *b);
static inline void weir_buf_reset(weir_buf_t *b) { b->len = 0; }
void weir_buf_free(weir_buf_t *b);

/* msgpack_packer write callback: data is a weir_buf_t *. */
int  weir_buf_msgpack_write(void *data, const char *buf, size_t len);

#endif
