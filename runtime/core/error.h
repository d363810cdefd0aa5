/* runtime/core/error.h -- error codes and error messages with context.
 *
 * Every fallible function returns 0 or a negative WEIR_E* code. Errors a
 * person will read (a job file, a request, a record) also carry a message in
 * a weir_err_t that the caller passes in; it may be NULL when the caller only
 * wants the code.
 */
#ifndef WEIR_CORE_ERROR_H
#define WEIR_CORE_ERROR_H

#include <stdarg.h>

#define WEIR_ERRNO_MAP(X)                                  \
    X(ENOMEM,    -1, "out of memory")                      \
    X(EINVAL,    -2, "invalid argument")                   \
    X(EPARSE,    -3, "parse error")                        \
    X(EIO,       -4, "i/o error")                          \
    X(ENOENT,    -5, "not found")                          \
    X(EEXIST,    -6, "already exists")                     \
    X(ERANGE,    -7, "out of range")                       \
    X(ETYPE,     -8, "type mismatch")                      \
    X(EPROTO,    -9, "protocol error")                     \
    X(E2BIG,    -10, "too large")                          \
    X(EAGAIN,   -11, "try again")                          \
    X(ECANCELED,-12, "canceled")                           \
    X(EOS,      -13, "end of stream")                      \
    X(ETIMEDOUT,-14, "timed out")                          \
    X(ESTATE,   -15, "invalid state")                      \
    X(ENOSLOTS, -16, "not enough slots")                   \
    X(EFAILED,  -17, "failed")

enum {
    WEIR_OK = 0,
#define WEIR__ERR_ENUM(name, val, msg) WEIR_##name = (val),
    WEIR_ERRNO_MAP(WEIR__ERR_ENUM)
#undef WEIR__ERR_ENUM
};

/* Returns a static description of 'code'; never NULL. */
const char *weir_strerror(int code);

#define WEIR_ERR_MSG_MAX 1024

typedef struct weir_err {
    int  code;
    char msg[WEIR_ERR_MSG_MAX];
} weir_err_t;

/* Sets err (which may be NULL) to code and a formatted message. Returns code,
 * so callers can write `return weir_err_set(err, WEIR_EINVAL, "...")`. */
int weir_err_set(weir_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int weir_err_vset(weir_err_t *err, int code, const char *fmt, va_list ap);

/* Prepends "prefix: " to err's message (e.g. a file name). */
void weir_err_prefix(weir_err_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Clears err (code 0, empty message). */
void weir_err_clear(weir_err_t *err);

#endif
