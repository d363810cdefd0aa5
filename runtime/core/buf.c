/* runtime/core/buf.c -- growable byte buffer. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

int
weir_buf_reserve(weir_buf_t *b, size_t extra)
{
    size_t need = b->len + extra + 1, cap;
    char *p;

    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    p = realloc(b->data, cap);
    if (p == NULL)
        return WEIR_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int
weir_buf_append(weir_buf_t *b, const void *p, size_t n)
{
    if (weir_buf_reserve(b, n) != 0)
        return WEIR_ENOMEM;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int
weir_buf_putc(weir_buf_t *b, char c)
{
    if (b->len + 1 >= b->cap && weir_buf_reserve(b, 1) != 0)
        return WEIR_ENOMEM;
    b->data[b->len++] = c;
    return 0;
}

int
weir_buf_appendf(weir_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return WEIR_EINVAL;
    if (weir_buf_reserve(b, (size_t)n + 1) != 0)
        return WEIR_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int
weir_buf_append_json_str(weir_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, run = 0;

    /* worst case every byte becomes \u00XX */
    if (weir_buf_reserve(b, n * 6 + 2) != 0)
        return WEIR_ENOMEM;
    b->data[b->len++] = '"';
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;

        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        memcpy(b->data + b->len, s + run, i - run);
        b->len += i - run;
        run = i + 1;
        switch (c) {
        case '"':  esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        }
        if (esc != NULL) {
            b->data[b->len++] = esc[0];
            b->data[b->len++] = esc[1];
        } else {
            memcpy(b->data + b->len, "\\u00", 4);
            b->len += 4;
            b->data[b->len++] = hex[c >> 4];
            b->data[b->len++] = hex[c & 15];
        }
    }
    memcpy(b->data + b->len, s + run, n - run);
    b->len += n - run;
    b->data[b->len++] = '"';
    return 0;
}

int
weir_buf_nul(weir_buf_t *b)
{
    if (weir_buf_reserve(b, 0) != 0)
        return WEIR_ENOMEM;
    b->data[b->len] = '\0';
    return 0;
}

void
weir_buf_free(weir_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int
weir_buf_msgpack_write(void *data, const char *buf, size_t len)
{
    return weir_buf_append(data, buf, len) == 0 ? 0 : -1;
}
