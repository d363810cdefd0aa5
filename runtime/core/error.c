/* runtime/core/error.c -- error codes and messages. */
#include "error.h"

#include <stdio.h>
#include <string.h>

const char *
weir_strerror(int code)
{
    switch (code) {
    case 0: return "ok";
#define WEIR__ERR_CASE(name, val, msg) case (val): return (msg);
    WEIR_ERRNO_MAP(WEIR__ERR_CASE)
#undef WEIR__ERR_CASE
    default: return "unknown error";
    }
}

int
weir_err_vset(weir_err_t *err, int code, const char *fmt, va_list ap)
{
    if (err != NULL) {
        err->code = code;
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    }
    return code;
}

int
weir_err_set(weir_err_t *err, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    weir_err_vset(err, code, fmt, ap);
    va_end(ap);
    return code;
}

void
weir_err_prefix(weir_err_t *err, const char *fmt, ...)
{
    char pre[WEIR_ERR_MSG_MAX], old[WEIR_ERR_MSG_MAX];
    va_list ap;

    if (err == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof(pre), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    snprintf(err->msg, sizeof(err->msg), "%s: %s", pre, old);
}

void
weir_err_clear(weir_err_t *err)
{
    if (err != NULL) {
        err->code = 0;
        err->msg[0] = '\0';
    }
}
