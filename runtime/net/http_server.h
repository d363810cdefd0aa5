/* runtime/net/http_server.h -- a small HTTP/1.1 server on a libuv loop.
 *
 * Requests are parsed with http-parser (nodejs/http-parser). The handler is
 * called on the loop thread with a whole request (headers and body read, the
 * body bounded by limits) and fills a response, which the server writes and
 * then either keeps the connection alive or closes it. Everything the server
 * allocates per connection is freed when the connection closes.
 *
 * Limits: a request whose header section exceeds max_header_bytes gets 431,
 * a body over max_body_bytes gets 413 (without buffering it), a malformed
 * request gets 400, all with a JSON body {"errors": ["..."]}, then the
 * connection is closed. Idle connections are closed after idle_timeout_ms.
 */
#ifndef WEIR_NET_HTTP_SERVER_H
#define WEIR_NET_HTTP_SERVER_H

#include <stddef.h>
#include <uv.h>

#include "../core/buf.h"
#include "../core/error.h"

typedef struct weir_http_server weir_http_server_t;

#define WEIR_HTTP_MAX_HEADERS 32

typedef struct weir_http_request {
    const char *method;        /* "GET", "POST", ... */
    const char *path;          /* percent-decoded path, no query ("/jobs/ab") */
    const char *raw_path;      /* as received, without the query */
    const char *query;         /* raw query string after '?', or "" */
    const char *body;          /* NUL-terminated for convenience */
    size_t      body_len;
    int         nheaders;
    const char *header_names[WEIR_HTTP_MAX_HEADERS];   /* lower-cased */
    const char *header_values[WEIR_HTTP_MAX_HEADERS];
} weir_http_request_t;

typedef struct weir_http_response {
    int         status;        /* default 200 */
    const char *content_type;  /* default "application/json" (borrowed, static) */
    const char *extra_headers; /* "Name: value\r\n..." or NULL (borrowed, static) */
    weir_buf_t  body;          /* the handler appends; the server frees */
} weir_http_response_t;

typedef void (*weir_http_handler_cb)(void *arg, const weir_http_request_t *req,
                                     weir_http_response_t *resp);

typedef struct weir_http_limits {
    size_t   max_header_bytes;    /* default 16 KiB */
    size_t   max_body_bytes;      /* default 4 MiB */
    unsigned idle_timeout_ms;     /* default 30 s */
    unsigned max_connections;     /* default 256; more are closed at accept */
} weir_http_limits_t;

/* Binds host:port (port 0 picks a free one) on loop and starts serving.
 * limits may be NULL for the defaults. cb/arg are borrowed for the server's
 * life. On success *out is new; stop it with weir_http_server_close(). */
int  weir_http_server_start(uv_loop_t *loop, const char *host, int port,
                            const weir_http_limits_t *limits,
                            weir_http_handler_cb cb, void *arg,
                            weir_http_server_t **out, weir_err_t *err);
/* The bound port. */
int  weir_http_server_port(const weir_http_server_t *s);
/* Closes the listener and every connection; frees s once the loop has run
 * the close callbacks. */
void weir_http_server_close(weir_http_server_t *s);

/* Case-insensitive header lookup; NULL when absent. */
const char *weir_http_header(const weir_http_request_t *req, const char *name);
/* Percent-decodes query parameter key into out (cap bytes, NUL-terminated).
 * Returns its length, or -1 when absent or too long. */
int  weir_http_query_get(const char *query, const char *key, char *out, size_t cap);
/* Sets resp to status with body {"errors": [message]} (message JSON-escaped). */
void weir_http_error(weir_http_response_t *resp, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* "OK", "Not Found", ... */
const char *weir_http_reason(int status);

#endif
