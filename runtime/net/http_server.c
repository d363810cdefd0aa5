/* runtime/net/http_server.c -- a small HTTP/1.1 server on a libuv loop.
 *
 * This is the server behind the job manager's REST API and dashboard. It is
 * deliberately small: requests are parsed by http-parser, each complete
 * request is handed to one synchronous handler on the loop thread, and the
 * response is written back in the order the requests arrived.
 *
 * A connection owns two handles, embedded in its struct: the TCP stream and
 * an idle timer. Both are closed together and the struct is freed only when
 * the second close callback has run (libuv style). The server itself is
 * freed once its listener and every connection have been closed.
 *
 * Reading works like this: libuv reads into the connection's input buffer
 * ('in'); conn_process() feeds the unparsed part to the parser, which pauses
 * itself after each complete message. So a burst of pipelined requests is
 * answered one request at a time, and when the client does not read its
 * responses (the write queue grows past WRITE_HIGH_WATER) reading stops until
 * the queue drains. Nothing a client sends is buffered without bound: the
 * header section is counted against max_header_bytes (431), the body against
 * max_body_bytes (413, decided from Content-Length before any body byte is
 * stored), and anything http-parser rejects is a 400.
 *
 * After an error response, or when either side asked for "Connection:
 * close", the connection is drained: reading the request stream stops, the
 * write side is shut down once the pending responses are written (uv_shutdown
 * waits for them), and whatever the client still sends is read and dropped
 * until it closes or a short linger timer fires. Closing at once would make
 * the kernel answer unread input with a reset, which can destroy the error
 * response before the client reads it.
 *
 * Paths are percent-decoded strictly: a bad escape, a decoded NUL or a ".."
 * segment (after decoding, so "%2e%2e" counts) is a 400. No handler maps a
 * path to a file today; this keeps it that way should one ever do.
 */
#include "http_server.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

/* ---- constants ------------------------------------------------------- */

#define DEFAULT_MAX_HEADER_BYTES  (16u * 1024)
#define DEFAULT_MAX_BODY_BYTES    (4u * 1024 * 1024)
#define DEFAULT_IDLE_TIMEOUT_MS   30000u
#define DEFAULT_MAX_CONNECTIONS   256u

#define READ_CHUNK        (64u * 1024)   /* bytes offered to each read */
#define WRITE_HIGH_WATER  (1u << 20)     /* stop parsing above this queue */
#define LINGER_MS         2000u          /* drop-reading after our FIN */
#define MAX_URL_BYTES     65535u         /* http_parser_url offsets are 16-bit */

/* ---- types ----------------------------------------------------------- */

typedef enum {
    CONN_OPEN,       /* reading and answering requests */
    CONN_DRAIN,      /* last response queued: shut down, drop further input */
    CONN_CLOSING,    /* uv_close called on both handles */
} conn_state_t;

typedef enum {
    LAST_NONE,       /* message begun, nothing yet */
    LAST_URL,
    LAST_FIELD,
    LAST_VALUE,
} last_cb_t;

typedef struct http_conn http_conn_t;

struct http_conn {
    uv_tcp_t            tcp;          /* handle; data = this */
    uv_timer_t          timer;        /* idle / linger timer; data = this */
    uv_shutdown_t       shutdown_req;
    int                 open_handles; /* freed when it drops to 0 */
    conn_state_t        state;
    bool                reading;
    bool                eof;          /* the client shut down its side */
    bool                shut_down;    /* our FIN is sent, responses written */
    unsigned            pending_writes;

    weir_http_server_t *server;       /* borrowed; outlives the connection */
    http_conn_t        *prev, *next;  /* the server's list */

    http_parser         parser;
    weir_buf_t          in;           /* bytes read, in[in_off..] unparsed */
    size_t              in_off;

    /* The request being parsed. 'strs' holds the URL then each header name
     * and value, each NUL-terminated; offsets, because 'strs' may move. */
    weir_buf_t          strs;
    last_cb_t           last;
    bool                str_open;     /* the last string lacks its NUL */
    size_t              url_len;
    int                 nheaders;
    size_t              name_off[WEIR_HTTP_MAX_HEADERS];
    size_t              value_off[WEIR_HTTP_MAX_HEADERS];
    size_t              header_bytes;
    weir_buf_t          target;       /* raw_path\0path\0query\0 */
    size_t              path_off, query_off;
    weir_buf_t          body;

    int                 err_status;   /* set by a callback that stopped the parser */
    char                err_msg[160];
};

struct weir_http_server {
    uv_tcp_t             listener;    /* data = this */
    uv_loop_t           *loop;        /* borrowed */
    weir_http_limits_t   limits;
    weir_http_handler_cb cb;
    void                *arg;         /* borrowed */
    http_parser_settings settings;
    http_conn_t         *conns;
    unsigned             nconns;      /* including those being closed */
    int                  port;
    bool                 closing;
    bool                 listener_closed;
};

typedef struct {
    uv_write_t   req;                 /* data = the connection */
    weir_buf_t   head;
    weir_buf_t   body;
} write_req_t;

static void conn_close(http_conn_t *c);
static void conn_process(http_conn_t *c);
static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void conn_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

/* ---- small helpers --------------------------------------------------- */

static int
hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into out (at least n bytes; not NUL-terminated).
 * strict: a '%' not followed by two hex digits is an error (-1); otherwise it
 * is kept as is. plus_space: '+' decodes to ' ' (query strings). Returns the
 * decoded length. */
static long
pct_decode(const char *s, size_t n, bool strict, bool plus_space, char *out)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++) {
        if (s[i] == '%') {
            if (i + 2 < n) {
                int hi = hexval((unsigned char)s[i + 1]);
                int lo = hexval((unsigned char)s[i + 2]);

                if (hi >= 0 && lo >= 0) {
                    out[o++] = (char)(hi << 4 | lo);
                    i += 2;
                    continue;
                }
            }
            if (strict)
                return -1;
            out[o++] = '%';
        } else if (s[i] == '+' && plus_space) {
            out[o++] = ' ';
        } else {
            out[o++] = s[i];
        }
    }
    return (long)o;
}

/* ---- writing --------------------------------------------------------- */

static void
write_req_free(write_req_t *w)
{
    weir_buf_free(&w->head);
    weir_buf_free(&w->body);
    free(w);
}

static void
conn_write_cb(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    http_conn_t *c = req->data;

    write_req_free(w);
    c->pending_writes--;
    if (c->state == CONN_CLOSING)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->state == CONN_OPEN) {
        uv_timer_again(&c->timer);
        /* the client read some responses: unparsed requests may continue */
        if (c->in_off < c->in.len || !c->reading)
            conn_process(c);
    }
}

/* Queues head (+ body) on c. Takes ownership of both buffers' contents
 * (they are reset to empty), also on failure. */
static int
conn_write(http_conn_t *c, weir_buf_t *head, weir_buf_t *body)
{
    write_req_t *w;
    uv_buf_t bufs[2];
    unsigned nbufs = 1;
    int rc;

    w = calloc(1, sizeof(*w));
    if (w == NULL) {
        weir_buf_free(head);
        if (body != NULL)
            weir_buf_free(body);
        return WEIR_ENOMEM;
    }
    w->head = *head;
    *head = (weir_buf_t)WEIR_BUF_INIT;
    if (body != NULL) {
        w->body = *body;
        *body = (weir_buf_t)WEIR_BUF_INIT;
    }
    bufs[0] = uv_buf_init(w->head.data, (unsigned)w->head.len);
    if (w->body.len > 0)
        bufs[nbufs++] = uv_buf_init(w->body.data, (unsigned)w->body.len);
    w->req.data = c;
    rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, nbufs, conn_write_cb);
    if (rc != 0) {
        write_req_free(w);   /* the callback never runs */
        return WEIR_EIO;
    }
    c->pending_writes++;
    return 0;
}

/* Writes resp (whose body is taken) as the answer to a request of method. */
static int
conn_send_response(http_conn_t *c, const char *method, weir_http_response_t *resp,
                   bool keep_alive, bool http10)
{
    weir_buf_t head = WEIR_BUF_INIT;
    bool no_body = resp->status == 204 || resp->status == 304;
    bool head_req = method != NULL && strcmp(method, "HEAD") == 0;
    int rc;

    rc = weir_buf_appendf(&head, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n",
                          resp->status, weir_http_reason(resp->status),
                          resp->content_type != NULL ? resp->content_type
                                                     : "application/json");
    if (rc == 0 && !no_body)
        rc = weir_buf_appendf(&head, "Content-Length: %zu\r\n", resp->body.len);
    if (rc == 0 && !keep_alive)
        rc = weir_buf_appendf(&head, "Connection: close\r\n");
    else if (rc == 0 && http10)
        rc = weir_buf_appendf(&head, "Connection: keep-alive\r\n");
    if (rc == 0 && resp->extra_headers != NULL)
        rc = weir_buf_appendf(&head, "%s", resp->extra_headers);
    if (rc == 0)
        rc = weir_buf_appendf(&head, "\r\n");
    if (rc != 0) {
        weir_buf_free(&head);
        weir_buf_free(&resp->body);
        return rc;
    }
    if (no_body || head_req)
        weir_buf_free(&resp->body);
    return conn_write(c, &head, &resp->body);
}

/* ---- connection life ------------------------------------------------- */

static void
server_maybe_free(weir_http_server_t *s)
{
    if (s->closing && s->listener_closed && s->nconns == 0)
        free(s);
}

static void
conn_handle_close_cb(uv_handle_t *h)
{
    http_conn_t *c = h->data;
    weir_http_server_t *s = c->server;

    if (--c->open_handles > 0)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    s->nconns--;
    weir_buf_free(&c->in);
    weir_buf_free(&c->strs);
    weir_buf_free(&c->target);
    weir_buf_free(&c->body);
    free(c);
    server_maybe_free(s);
}

/* Closes both handles; pending writes are cancelled (their callbacks run
 * first, with UV_ECANCELED). c is freed by the last close callback. */
static void
conn_close(http_conn_t *c)
{
    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, conn_handle_close_cb);
    uv_close((uv_handle_t *)&c->timer, conn_handle_close_cb);
}

static void
conn_timer_cb(uv_timer_t *t)
{
    conn_close(t->data);
}

static void
conn_shutdown_cb(uv_shutdown_t *req, int status)
{
    http_conn_t *c = req->data;

    if (c->state == CONN_CLOSING)
        return;
    c->shut_down = true;
    if (status < 0 || c->eof) {
        conn_close(c);
        return;
    }
    /* every response is out and our FIN is sent: give the client a moment
     * to read and close, dropping what it still sends */
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, conn_timer_cb,
                   LINGER_MS < c->server->limits.idle_timeout_ms
                       ? LINGER_MS : c->server->limits.idle_timeout_ms, 0);
}

/* Stops answering: the queued responses go out, then our FIN, then the
 * connection lingers until the client closes. */
static void
conn_drain(http_conn_t *c)
{
    if (c->state != CONN_OPEN)
        return;
    c->state = CONN_DRAIN;
    c->in.len = c->in_off = 0;
    /* the idle timeout still bounds a client that never reads */
    uv_timer_stop(&c->timer);
    uv_timer_start(&c->timer, conn_timer_cb, c->server->limits.idle_timeout_ms, 0);
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, conn_shutdown_cb) != 0) {
        conn_close(c);
        return;
    }
    /* keep reading (and dropping) so unread input cannot reset the stream */
    if (!c->reading && !c->eof) {
        if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb) != 0) {
            conn_close(c);
            return;
        }
        c->reading = true;
    }
}

/* Answers with an error (JSON body) and drains the connection. */
static void
conn_fail(http_conn_t *c, int status, const char *msg)
{
    weir_http_response_t resp = { .status = status };

    weir_http_error(&resp, status, "%s", msg);
    if (conn_send_response(c, NULL, &resp, false, false) != 0) {
        conn_close(c);
        return;
    }
    conn_drain(c);
}

/* ---- parser callbacks ------------------------------------------------ */

/* Stops the parser with status and a message for the client. */
static int
parse_error(http_conn_t *c, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
parse_error(http_conn_t *c, int status, const char *fmt, ...)
{
    va_list ap;

    c->err_status = status;
    va_start(ap, fmt);
    vsnprintf(c->err_msg, sizeof(c->err_msg), fmt, ap);
    va_end(ap);
    return -1;
}

static int
count_header_bytes(http_conn_t *c, size_t n)
{
    c->header_bytes += n;
    if (c->header_bytes > c->server->limits.max_header_bytes)
        return parse_error(c, 431, "request header section exceeds %zu bytes",
                           c->server->limits.max_header_bytes);
    return 0;
}

static int
strs_end(http_conn_t *c)
{
    if (!c->str_open)
        return 0;
    c->str_open = false;
    if (weir_buf_putc(&c->strs, '\0') != 0)
        return parse_error(c, 500, "out of memory");
    return 0;
}

static int
on_message_begin(http_parser *p)
{
    http_conn_t *c = p->data;

    weir_buf_reset(&c->strs);
    weir_buf_reset(&c->target);
    weir_buf_reset(&c->body);
    c->last = LAST_NONE;
    c->str_open = false;
    c->url_len = 0;
    c->nheaders = 0;
    c->header_bytes = 0;
    return 0;
}

static int
on_url(http_parser *p, const char *at, size_t n)
{
    http_conn_t *c = p->data;

    if (count_header_bytes(c, n) != 0)
        return -1;
    if (c->url_len + n > MAX_URL_BYTES)
        return parse_error(c, 414, "request target exceeds %u bytes", MAX_URL_BYTES);
    c->last = LAST_URL;
    c->str_open = true;
    c->url_len += n;
    if (weir_buf_append(&c->strs, at, n) != 0)
        return parse_error(c, 500, "out of memory");
    return 0;
}

static int
on_header_field(http_parser *p, const char *at, size_t n)
{
    http_conn_t *c = p->data;
    size_t i;

    /* ": " and CRLF count too */
    if (count_header_bytes(c, n + (c->last != LAST_FIELD ? 4 : 0)) != 0)
        return -1;
    if (c->last != LAST_FIELD) {
        if (strs_end(c) != 0)
            return -1;
        if (c->nheaders == WEIR_HTTP_MAX_HEADERS)
            return parse_error(c, 431, "more than %d request headers", WEIR_HTTP_MAX_HEADERS);
        c->name_off[c->nheaders] = c->strs.len;
        c->value_off[c->nheaders] = SIZE_MAX;
        c->nheaders++;
        c->last = LAST_FIELD;
        c->str_open = true;
    }
    if (weir_buf_reserve(&c->strs, n) != 0)
        return parse_error(c, 500, "out of memory");
    for (i = 0; i < n; i++)
        c->strs.data[c->strs.len++] = (char)tolower((unsigned char)at[i]);
    return 0;
}

static int
on_header_value(http_parser *p, const char *at, size_t n)
{
    http_conn_t *c = p->data;

    if (count_header_bytes(c, n) != 0)
        return -1;
    if (c->last != LAST_VALUE) {
        if (strs_end(c) != 0)
            return -1;
        c->value_off[c->nheaders - 1] = c->strs.len;
        c->last = LAST_VALUE;
        c->str_open = true;
    }
    if (weir_buf_append(&c->strs, at, n) != 0)
        return parse_error(c, 500, "out of memory");
    return 0;
}

/* A header value of the request being parsed (name lower-case), or NULL. */
static const char *
conn_header(const http_conn_t *c, const char *name)
{
    int i;

    for (i = 0; i < c->nheaders; i++)
        if (c->value_off[i] != SIZE_MAX && strcmp(c->strs.data + c->name_off[i], name) == 0)
            return c->strs.data + c->value_off[i];
    return NULL;
}

/* Splits and decodes the request target into c->target. */
static int
parse_target(http_conn_t *c)
{
    const char *url = c->strs.data;
    struct http_parser_url u;
    const char *raw, *q = "";
    size_t raw_len, q_len = 0, i, seg;
    long n;

    http_parser_url_init(&u);
    if (c->url_len == 0 || http_parser_parse_url(url, c->url_len, 0, &u) != 0
        || !(u.field_set & (1 << UF_PATH)))
        return parse_error(c, 400, "malformed request target");
    raw = url + u.field_data[UF_PATH].off;
    raw_len = u.field_data[UF_PATH].len;
    if (u.field_set & (1 << UF_QUERY)) {
        q = url + u.field_data[UF_QUERY].off;
        q_len = u.field_data[UF_QUERY].len;
    }
    if (raw_len == 0 || raw[0] != '/')
        return parse_error(c, 400, "request path must start with '/'");

    /* raw_path \0 path \0 query \0; the decoded path is never longer */
    if (weir_buf_reserve(&c->target, raw_len * 2 + q_len + 3) != 0)
        return parse_error(c, 500, "out of memory");
    memcpy(c->target.data, raw, raw_len);
    c->target.data[raw_len] = '\0';
    c->path_off = raw_len + 1;
    n = pct_decode(raw, raw_len, true, false, c->target.data + c->path_off);
    if (n < 0)
        return parse_error(c, 400, "malformed percent-encoding in request path");
    if (memchr(c->target.data + c->path_off, '\0', (size_t)n) != NULL)
        return parse_error(c, 400, "request path contains a NUL byte");
    c->target.data[c->path_off + (size_t)n] = '\0';
    /* reject any ".." segment of the decoded path */
    for (i = 0, seg = 0; i <= (size_t)n; i++) {
        char ch = i < (size_t)n ? c->target.data[c->path_off + i] : '/';

        if (ch != '/')
            continue;
        if (i - seg == 2 && memcmp(c->target.data + c->path_off + seg, "..", 2) == 0)
            return parse_error(c, 400, "request path contains a '..' segment");
        seg = i + 1;
    }
    c->query_off = c->path_off + (size_t)n + 1;
    memcpy(c->target.data + c->query_off, q, q_len);
    c->target.data[c->query_off + q_len] = '\0';
    c->target.len = c->query_off + q_len + 1;
    return 0;
}

static int
on_headers_complete(http_parser *p)
{
    http_conn_t *c = p->data;
    const weir_http_limits_t *lim = &c->server->limits;
    const char *expect;
    int rc;

    if (strs_end(c) != 0)
        return -1;
    if (c->last == LAST_NONE)
        return parse_error(c, 400, "malformed request target");
    if (parse_target(c) != 0)
        return -1;
    if ((p->flags & F_CONTENTLENGTH) && p->content_length != UINT64_MAX
        && p->content_length > lim->max_body_bytes)
        return parse_error(c, 413, "request body exceeds %zu bytes", lim->max_body_bytes);

    expect = conn_header(c, "expect");
    if (expect != NULL) {
        if (strcasecmp(expect, "100-continue") != 0)
            return parse_error(c, 417, "unsupported expectation '%.64s'", expect);
        if (p->http_major == 1 && p->http_minor >= 1) {
            weir_buf_t head = WEIR_BUF_INIT;

            rc = weir_buf_appendf(&head, "HTTP/1.1 100 Continue\r\n\r\n");
            if (rc != 0 || conn_write(c, &head, NULL) != 0)
                return parse_error(c, 500, "cannot write 100 Continue");
        }
    }
    return 0;
}

static int
on_body(http_parser *p, const char *at, size_t n)
{
    http_conn_t *c = p->data;

    if (c->body.len + n > c->server->limits.max_body_bytes)
        return parse_error(c, 413, "request body exceeds %zu bytes",
                           c->server->limits.max_body_bytes);
    if (weir_buf_append(&c->body, at, n) != 0)
        return parse_error(c, 500, "out of memory");
    return 0;
}

static int
on_message_complete(http_parser *p)
{
    http_conn_t *c = p->data;
    weir_http_server_t *s = c->server;
    weir_http_request_t req;
    weir_http_response_t resp = { .status = 200, .body = WEIR_BUF_INIT };
    bool keep_alive;
    int i, n = 0;

    /* trailers of a chunked body end without another headers_complete */
    if (strs_end(c) != 0 || weir_buf_nul(&c->body) != 0)
        return -1;

    memset(&req, 0, sizeof(req));
    req.method = http_method_str((enum http_method)p->method);
    req.raw_path = c->target.data;
    req.path = c->target.data + c->path_off;
    req.query = c->target.data + c->query_off;
    req.body = c->body.data != NULL ? c->body.data : "";
    req.body_len = c->body.len;
    for (i = 0; i < c->nheaders; i++) {
        req.header_names[n] = c->strs.data + c->name_off[i];
        req.header_values[n] = c->value_off[i] != SIZE_MAX ? c->strs.data + c->value_off[i] : "";
        n++;
    }
    req.nheaders = n;
    keep_alive = http_should_keep_alive(p) && !p->upgrade && !s->closing;

    s->cb(s->arg, &req, &resp);

    if (c->state != CONN_OPEN) {        /* the handler closed the server */
        weir_buf_free(&resp.body);
        return -1;
    }
    if (resp.status < 200 || resp.status > 599) {
        int bad = resp.status;

        weir_http_error(&resp, 500, "handler returned invalid status %d", bad);
    }
    if (conn_send_response(c, req.method, &resp, keep_alive, p->http_minor == 0) != 0) {
        conn_close(c);
        return -1;
    }
    if (!keep_alive) {
        conn_drain(c);
        return -1;
    }
    /* one request at a time: conn_process() resumes the parser */
    http_parser_pause(p, 1);
    return 0;
}

/* ---- reading --------------------------------------------------------- */

static void
conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    http_conn_t *c = h->data;

    if (c->state != CONN_OPEN) {
        /* draining: reuse the buffer's start, the bytes are dropped */
        if (c->in.cap < READ_CHUNK && weir_buf_reserve(&c->in, READ_CHUNK) != 0) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        *buf = uv_buf_init(c->in.data, (unsigned)(c->in.cap - 1));
        return;
    }
    if (weir_buf_reserve(&c->in, READ_CHUNK) != 0) {
        *buf = uv_buf_init(NULL, 0);   /* read_cb gets UV_ENOBUFS */
        return;
    }
    *buf = uv_buf_init(c->in.data + c->in.len, (unsigned)(c->in.cap - c->in.len - 1));
}

static void
conn_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    http_conn_t *c = stream->data;

    if (c->state == CONN_CLOSING)
        return;
    if (nread < 0) {
        if (nread != UV_EOF) {
            conn_close(c);
            return;
        }
        /* the client half-closed: finish writing what was answered (an
         * unfinished request is dropped), then close */
        c->eof = true;
        uv_read_stop(stream);
        c->reading = false;
        if (c->state == CONN_OPEN)
            conn_drain(c);
        else if (c->shut_down)
            conn_close(c);
        return;
    }
    if (c->state != CONN_OPEN || nread == 0)
        return;                          /* draining: drop the bytes */
    c->in.len += (size_t)nread;
    uv_timer_again(&c->timer);
    conn_process(c);
}

/* Parses what is buffered, one message at a time; stops reading while the
 * client is not reading our responses. */
static void
conn_process(http_conn_t *c)
{
    uv_stream_t *stream = (uv_stream_t *)&c->tcp;
    size_t n;
    enum http_errno e;

    while (c->state == CONN_OPEN && c->in_off < c->in.len) {
        if (uv_stream_get_write_queue_size(stream) > WRITE_HIGH_WATER)
            break;
        c->err_status = 0;
        n = http_parser_execute(&c->parser, &c->server->settings,
                                c->in.data + c->in_off, c->in.len - c->in_off);
        if (c->state != CONN_OPEN)
            return;                      /* drained or closed in a callback */
        c->in_off += n;
        e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            continue;
        }
        if (e != HPE_OK) {
            if (c->err_status != 0)
                conn_fail(c, c->err_status, c->err_msg);
            else if (e == HPE_HEADER_OVERFLOW)
                conn_fail(c, 431, "request header section too large");
            else {
                char msg[160];

                snprintf(msg, sizeof(msg), "malformed request: %s",
                         http_errno_description(e));
                conn_fail(c, 400, msg);
            }
            return;
        }
        if (n == 0)
            break;
    }
    if (c->state != CONN_OPEN)
        return;
    if (c->in_off == c->in.len) {
        c->in.len = c->in_off = 0;
    } else if (c->in_off > 0) {
        memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
        c->in.len -= c->in_off;
        c->in_off = 0;
    }
    if (uv_stream_get_write_queue_size(stream) > WRITE_HIGH_WATER || c->in.len > 0) {
        /* wait for conn_write_cb to call us again */
        if (c->reading && c->in.len > 0) {
            uv_read_stop(stream);
            c->reading = false;
        }
    } else if (!c->reading) {
        if (uv_read_start(stream, conn_alloc_cb, conn_read_cb) != 0) {
            conn_close(c);
            return;
        }
        c->reading = true;
    }
}

/* ---- accepting ------------------------------------------------------- */

static void
on_connection(uv_stream_t *listener, int status)
{
    weir_http_server_t *s = listener->data;
    http_conn_t *c;

    if (status < 0 || s->closing)
        return;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;                          /* stays in the backlog */
    c->server = s;
    c->state = CONN_OPEN;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;

    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 || s->nconns > s->limits.max_connections) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_read_cb) != 0) {
        conn_close(c);
        return;
    }
    c->reading = true;
    uv_timer_start(&c->timer, conn_timer_cb, s->limits.idle_timeout_ms,
                   s->limits.idle_timeout_ms);
}

/* ---- public ---------------------------------------------------------- */

static void
listener_close_cb(uv_handle_t *h)
{
    weir_http_server_t *s = h->data;

    s->listener_closed = true;
    server_maybe_free(s);
}

int
weir_http_server_start(uv_loop_t *loop, const char *host, int port,
                       const weir_http_limits_t *limits,
                       weir_http_handler_cb cb, void *arg,
                       weir_http_server_t **out, weir_err_t *err)
{
    weir_http_server_t *s;
    struct sockaddr_storage ss;
    int namelen = sizeof(ss);
    int rc;

    if (host == NULL)
        host = "127.0.0.1";
    if (loop == NULL || cb == NULL || out == NULL)
        return weir_err_set(err, WEIR_EINVAL, "http: missing loop, handler or result");
    if (port < 0 || port > 65535)
        return weir_err_set(err, WEIR_EINVAL, "http: port %d out of range", port);
    memset(&ss, 0, sizeof(ss));
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0
        && uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
        uv_getaddrinfo_t gai;
        struct addrinfo hints;

        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        rc = uv_getaddrinfo(loop, &gai, NULL, host, NULL, &hints);   /* synchronous */
        if (rc != 0)
            return weir_err_set(err, WEIR_EINVAL, "http: cannot resolve '%s': %s",
                                host, uv_strerror(rc));
        memcpy(&ss, gai.addrinfo->ai_addr, gai.addrinfo->ai_addrlen);
        uv_freeaddrinfo(gai.addrinfo);
        if (ss.ss_family == AF_INET)
            ((struct sockaddr_in *)&ss)->sin_port = htons((uint16_t)port);
        else
            ((struct sockaddr_in6 *)&ss)->sin6_port = htons((uint16_t)port);
    }

    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return weir_err_set(err, WEIR_ENOMEM, "http: out of memory");
    s->loop = loop;
    s->cb = cb;
    s->arg = arg;
    if (limits != NULL)
        s->limits = *limits;
    if (s->limits.max_header_bytes == 0)
        s->limits.max_header_bytes = DEFAULT_MAX_HEADER_BYTES;
    if (s->limits.max_body_bytes == 0)
        s->limits.max_body_bytes = DEFAULT_MAX_BODY_BYTES;
    if (s->limits.idle_timeout_ms == 0)
        s->limits.idle_timeout_ms = DEFAULT_IDLE_TIMEOUT_MS;
    if (s->limits.max_connections == 0)
        s->limits.max_connections = DEFAULT_MAX_CONNECTIONS;
    http_parser_settings_init(&s->settings);
    s->settings.on_message_begin = on_message_begin;
    s->settings.on_url = on_url;
    s->settings.on_header_field = on_header_field;
    s->settings.on_header_value = on_header_value;
    s->settings.on_headers_complete = on_headers_complete;
    s->settings.on_body = on_body;
    s->settings.on_message_complete = on_message_complete;

    rc = uv_tcp_init(loop, &s->listener);
    if (rc != 0) {
        free(s);
        return weir_err_set(err, WEIR_EIO, "http: %s", uv_strerror(rc));
    }
    s->listener.data = s;
    rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
    if (rc == 0)
        rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &namelen);
    if (rc != 0) {
        weir_err_set(err, WEIR_EIO, "http: cannot listen on %s:%d: %s", host, port,
                     uv_strerror(rc));
        goto fail_listen;
    }
    s->port = ss.ss_family == AF_INET ? ntohs(((struct sockaddr_in *)&ss)->sin_port)
                                      : ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    *out = s;                  /* caller owns: weir_http_server_close() */
    return 0;

fail_listen:
    /* like any libuv handle, the listener is released by its close
     * callback: s is freed the next time the loop runs */
    s->closing = true;
    uv_close((uv_handle_t *)&s->listener, listener_close_cb);
    return WEIR_EIO;
}

int
weir_http_server_port(const weir_http_server_t *s)
{
    return s->port;
}

void
weir_http_server_close(weir_http_server_t *s)
{
    http_conn_t *c;

    if (s == NULL || s->closing)
        return;
    s->closing = true;
    uv_close((uv_handle_t *)&s->listener, listener_close_cb);
    for (c = s->conns; c != NULL; c = c->next)
        conn_close(c);
}

const char *
weir_http_header(const weir_http_request_t *req, const char *name)
{
    int i;

    for (i = 0; i < req->nheaders; i++)
        if (strcasecmp(req->header_names[i], name) == 0)
            return req->header_values[i];
    return NULL;
}

int
weir_http_query_get(const char *query, const char *key, char *out, size_t cap)
{
    const char *p, *amp, *eq, *val;
    size_t klen, plen, vlen;
    char kbuf[256];
    long n;

    if (query == NULL || key == NULL || out == NULL || cap == 0)
        return -1;
    klen = strlen(key);
    for (p = query; *p != '\0'; p = *amp != '\0' ? amp + 1 : amp) {
        amp = strchr(p, '&');
        if (amp == NULL)
            amp = p + strlen(p);
        plen = (size_t)(amp - p);
        eq = memchr(p, '=', plen);
        val = eq != NULL ? eq + 1 : amp;
        vlen = (size_t)(amp - val);
        /* compare the decoded name (decoding never makes it longer) */
        if ((size_t)((eq != NULL ? eq : amp) - p) > sizeof(kbuf))
            continue;
        n = pct_decode(p, (size_t)((eq != NULL ? eq : amp) - p), false, true, kbuf);
        if ((size_t)n != klen || memcmp(kbuf, key, klen) != 0)
            continue;
        if (vlen >= cap) {
            /* decoding may shrink it: decode into a scratch copy */
            char *tmp = malloc(vlen + 1);

            if (tmp == NULL)
                return -1;
            n = pct_decode(val, vlen, false, true, tmp);
            if ((size_t)n >= cap || memchr(tmp, '\0', (size_t)n) != NULL) {
                free(tmp);
                return -1;
            }
            memcpy(out, tmp, (size_t)n);
            free(tmp);
        } else {
            n = pct_decode(val, vlen, false, true, out);
            if (memchr(out, '\0', (size_t)n) != NULL)
                return -1;
        }
        out[n] = '\0';
        return (int)n;
    }
    return -1;
}

void
weir_http_error(weir_http_response_t *resp, int status, const char *fmt, ...)
{
    char *msg = NULL;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    resp->status = status;
    resp->content_type = "application/json";
    weir_buf_reset(&resp->body);
    if (n < 0) {
        msg = NULL;
        weir_buf_appendf(&resp->body, "{\"errors\":[\"out of memory\"]}");
        return;
    }
    if (weir_buf_appendf(&resp->body, "{\"errors\":[") != 0
        || weir_buf_append_json_str(&resp->body, msg, (size_t)n) != 0
        || weir_buf_appendf(&resp->body, "]}") != 0)
        weir_buf_reset(&resp->body);
    free(msg);
}

const char *
weir_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default:
        if (status >= 200 && status < 300) return "OK";
        if (status >= 300 && status < 400) return "Redirection";
        if (status >= 400 && status < 500) return "Client Error";
        return "Server Error";
    }
}
