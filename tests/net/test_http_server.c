/* tests/net/test_http_server.c -- the HTTP server, over real sockets.
 *
 * Each test starts a server on 127.0.0.1, port 0, on its own uv loop that a
 * thread runs, and talks to it with blocking sockets. The handler echoes
 * what it received as "key=value" lines, so the tests can check exactly what
 * the server parsed. Teardown stops the server through a uv_async and checks
 * that the loop closes with no handle left (ASan then checks the memory).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "runtime/net/http_server.h"

/* ---- fixture ---------------------------------------------------------- */

typedef struct {
    uv_loop_t           loop;
    uv_async_t          stop;
    uv_thread_t         thread;
    weir_http_server_t *srv;
    bool                srv_closed;
    int                 port;
    int                 nrequests;
} fixture_t;

static void
stop_cb(uv_async_t *a)
{
    fixture_t *f = a->data;

    if (!f->srv_closed)
        weir_http_server_close(f->srv);
    f->srv_closed = true;
    uv_close((uv_handle_t *)&f->stop, NULL);
}

static void
loop_thread(void *arg)
{
    fixture_t *f = arg;

    uv_run(&f->loop, UV_RUN_DEFAULT);
}

static void
append_line(weir_buf_t *b, const char *k, const char *v)
{
    weir_buf_appendf(b, "%s=%s\n", k, v);
}

/* Echoes the request; a few paths do something else. */
static void
handler(void *arg, const weir_http_request_t *req, weir_http_response_t *resp)
{
    fixture_t *f = arg;
    char val[64];
    int i;

    f->nrequests++;
    resp->content_type = "text/plain";
    if (strcmp(req->path, "/big") == 0) {
        /* 512 KiB of a repeating pattern, to fill the write queue */
        for (i = 0; i < 512 * 1024; i++)
            weir_buf_putc(&resp->body, (char)('a' + i % 26));
        return;
    }
    if (strcmp(req->path, "/bad-status") == 0) {
        resp->status = 42;
        return;
    }
    if (strcmp(req->path, "/nocontent") == 0) {
        resp->status = 204;
        weir_buf_appendf(&resp->body, "dropped");
        return;
    }
    if (strcmp(req->path, "/shutdown") == 0) {
        weir_http_server_close(f->srv);
        f->srv_closed = true;
        uv_close((uv_handle_t *)&f->stop, NULL);
        return;
    }
    if (strcmp(req->path, "/q") == 0) {
        int n = weir_http_query_get(req->query, "name", val, sizeof(val));

        weir_buf_appendf(&resp->body, "n=%d\nname=%s\n", n, n >= 0 ? val : "");
        return;
    }
    if (strcmp(req->path, "/extra") == 0) {
        resp->extra_headers = "X-One: 1\r\nX-Two: 2\r\n";
        weir_buf_appendf(&resp->body, "extra");
        return;
    }
    append_line(&resp->body, "method", req->method);
    append_line(&resp->body, "path", req->path);
    append_line(&resp->body, "raw_path", req->raw_path);
    append_line(&resp->body, "query", req->query);
    append_line(&resp->body, "body", req->body);
    weir_buf_appendf(&resp->body, "body_len=%zu\n", req->body_len);
    weir_buf_appendf(&resp->body, "nul=%d\n", req->body[req->body_len] == '\0');
    for (i = 0; i < req->nheaders; i++)
        weir_buf_appendf(&resp->body, "h:%s=%s\n", req->header_names[i], req->header_values[i]);
    append_line(&resp->body, "x-test",
                weir_http_header(req, "X-TEST") != NULL ? weir_http_header(req, "X-TEST") : "(none)");
}

static int
start_fixture(void **state, const weir_http_limits_t *limits)
{
    fixture_t *f = calloc(1, sizeof(*f));
    weir_err_t err;

    assert_non_null(f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(weir_http_server_start(&f->loop, "127.0.0.1", 0, limits, handler, f,
                                            &f->srv, &err), 0);
    f->port = weir_http_server_port(f->srv);
    assert_true(f->port > 0);
    assert_int_equal(uv_async_init(&f->loop, &f->stop, stop_cb), 0);
    f->stop.data = f;
    assert_int_equal(uv_thread_create(&f->thread, loop_thread, f), 0);
    *state = f;
    return 0;
}

static int
setup_default(void **state)
{
    return start_fixture(state, NULL);
}

static int
setup_small(void **state)
{
    weir_http_limits_t lim = {
        .max_header_bytes = 1024,
        .max_body_bytes = 1000,
        .idle_timeout_ms = 300,
        .max_connections = 0,           /* default */
    };

    return start_fixture(state, &lim);
}

static int
setup_one_conn(void **state)
{
    weir_http_limits_t lim = { .max_connections = 1 };

    return start_fixture(state, &lim);
}

static int
teardown(void **state)
{
    fixture_t *f = *state;

    if (!f->srv_closed)
        uv_async_send(&f->stop);
    uv_thread_join(&f->thread);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

/* ---- a blocking client ------------------------------------------------ */

typedef struct {
    int    fd;
    char  *buf;
    size_t len, cap;
} client_t;

typedef struct {
    int    status;
    char   head[2048];
    char  *body;           /* NUL-terminated, new */
    size_t body_len;
} response_t;

static void
client_open(client_t *c, int port)
{
    struct sockaddr_in sa;
    struct timeval tv = { .tv_sec = 5 };

    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c->fd >= 0);
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
}

static void
client_close(client_t *c)
{
    close(c->fd);
    free(c->buf);
}

static void
client_send(client_t *c, const char *data, size_t n)
{
    size_t off = 0;

    while (off < n) {
        ssize_t w = send(c->fd, data + off, n - off, MSG_NOSIGNAL);

        assert_true(w > 0);
        off += (size_t)w;
    }
}

static void
client_sends(client_t *c, const char *s)
{
    client_send(c, s, strlen(s));
}

/* Reads more into c->buf; returns bytes read, 0 at EOF, -1 on error. */
static ssize_t
client_fill(client_t *c)
{
    ssize_t n;

    if (c->cap - c->len < 65536) {
        c->cap = c->cap ? c->cap * 2 : 131072;
        c->buf = realloc(c->buf, c->cap + 1);
        assert_non_null(c->buf);
    }
    n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
    if (n > 0)
        c->len += (size_t)n;
    return n;
}

/* Reads one response (skipping 100 Continue); -1 when the stream ends
 * first. r->body is new. */
static int
client_response(client_t *c, response_t *r)
{
    for (;;) {
        char *end, *cl;
        size_t hlen, blen = 0;

        memset(r, 0, sizeof(*r));
        for (;;) {
            if (c->buf != NULL) {
                c->buf[c->len] = '\0';
                end = strstr(c->buf, "\r\n\r\n");
                if (end != NULL)
                    break;
            }
            if (client_fill(c) <= 0)
                return -1;
        }
        hlen = (size_t)(end - c->buf) + 4;
        assert_true(hlen < sizeof(r->head));
        memcpy(r->head, c->buf, hlen);
        r->head[hlen] = '\0';
        assert_int_equal(sscanf(r->head, "HTTP/1.1 %d", &r->status), 1);
        cl = strcasestr(r->head, "\r\nContent-Length: ");
        if (cl != NULL)
            blen = strtoul(cl + 18, NULL, 10);
        if (strncmp(r->head, "HTTP/1.1 204", 12) == 0)
            blen = 0;
        while (c->len < hlen + blen)
            if (client_fill(c) <= 0)
                return -1;
        r->body = malloc(blen + 1);
        assert_non_null(r->body);
        memcpy(r->body, c->buf + hlen, blen);
        r->body[blen] = '\0';
        r->body_len = blen;
        memmove(c->buf, c->buf + hlen + blen, c->len - hlen - blen);
        c->len -= hlen + blen;
        if (r->status != 100)
            return 0;
        free(r->body);
    }
}

/* True when the server closes the stream (after any unread bytes). */
static bool
client_sees_eof(client_t *c)
{
    for (;;) {
        ssize_t n = client_fill(c);

        if (n == 0)
            return true;
        if (n < 0)
            return errno == ECONNRESET;
    }
}

/* Connects, sends req, returns the one response. */
static void
roundtrip(fixture_t *f, const char *req, response_t *r)
{
    client_t c;

    client_open(&c, f->port);
    client_sends(&c, req);
    assert_int_equal(client_response(&c, r), 0);
    client_close(&c);
}

static bool
has_line(const response_t *r, const char *line)
{
    size_t n = strlen(line);
    const char *p = r->body;

    while ((p = strstr(p, line)) != NULL) {
        if ((p == r->body || p[-1] == '\n') && p[n] == '\n')
            return true;
        p++;
    }
    return false;
}

#define assert_line(r, line) \
    do { if (!has_line((r), (line))) fail_msg("no line '%s' in:\n%s", (line), (r)->body); } while (0)

/* ---- requests ---------------------------------------------------------- */

static void
test_http_get_with_query_decodes_path_and_keeps_raw(void **state)
{
    fixture_t *f = *state;
    response_t r;

    roundtrip(f, "GET /jobs/a%20b?x=1&y=two HTTP/1.1\r\nHost: x\r\nX-Test: Hello\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "\r\nContent-Type: text/plain\r\n"));
    assert_null(strstr(r.head, "Connection: close"));
    assert_line(&r, "method=GET");
    assert_line(&r, "path=/jobs/a b");
    assert_line(&r, "raw_path=/jobs/a%20b");
    assert_line(&r, "query=x=1&y=two");
    assert_line(&r, "body=");
    assert_line(&r, "body_len=0");
    assert_line(&r, "x-test=Hello");
    assert_line(&r, "h:host=x");
    free(r.body);
}

static void
test_http_header_names_are_lower_cased_and_empty_values_kept(void **state)
{
    fixture_t *f = *state;
    response_t r;

    roundtrip(f, "GET / HTTP/1.1\r\nX-MiXeD-Case: Value\r\nX-Empty:\r\nX-Test: v\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_line(&r, "h:x-mixed-case=Value");
    assert_line(&r, "h:x-empty=");
    assert_line(&r, "x-test=v");
    free(r.body);
}

static void
test_http_post_body_is_passed_whole_and_nul_terminated(void **state)
{
    fixture_t *f = *state;
    client_t c;
    response_t r;

    client_open(&c, f->port);
    client_sends(&c, "POST /jobs HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello");
    usleep(50 * 1000);           /* the body arrives in two reads */
    client_sends(&c, " world");
    assert_int_equal(client_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_line(&r, "method=POST");
    assert_line(&r, "body=hello world");
    assert_line(&r, "body_len=11");
    assert_line(&r, "nul=1");
    free(r.body);
    client_close(&c);
}

static void
test_http_chunked_body_is_assembled(void **state)
{
    fixture_t *f = *state;
    response_t r;

    roundtrip(f, "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_line(&r, "body=hello world");
    assert_line(&r, "body_len=11");
    free(r.body);
}

static void
test_http_keep_alive_serves_two_requests_on_one_connection(void **state)
{
    fixture_t *f = *state;
    client_t c;
    response_t r;

    client_open(&c, f->port);
    client_sends(&c, "GET /one HTTP/1.1\r\n\r\n");
    assert_int_equal(client_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_line(&r, "path=/one");
    assert_null(strstr(r.head, "Connection: close"));
    free(r.body);
    client_sends(&c, "POST /two HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc");
    assert_int_equal(client_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_line(&r, "path=/two");
    assert_line(&r, "body=abc");
    free(r.body);
    client_close(&c);
}

static void
test_http_pipelined_requests_are_answered_in_order(void **state)
{
    fixture_t *f = *state;
    client_t c;
    response_t r;
    char want[32];
    int i;

    client_open(&c, f->port);
    client_sends(&c, "GET /p/1 HTTP/1.1\r\n\r\n"
                     "POST /p/2 HTTP/1.1\r\nContent-Length: 2\r\n\r\nhi"
                     "GET /p/3?z=9 HTTP/1.1\r\n\r\n"
                     "GET /p/4 HTTP/1.1\r\nConnection: close\r\n\r\n"
                     "GET /p/5 HTTP/1.1\r\n\r\n");
    for (i = 1; i <= 4; i++) {
        assert_int_equal(client_response(&c, &r), 0);
        assert_int_equal(r.status, 200);
        snprintf(want, sizeof(want), "path=/p/%d", i);
        assert_line(&r, want);
        if (i == 2)
            assert_line(&r, "body=hi");
        if (i == 3)
            assert_line(&r, "query=z=9");
        if (i == 4)
            assert_non_null(strstr(r.head, "\r\nConnection: close\r\n"));
        free(r.body);
    }
    /* nothing after the request that asked to close */
    assert_true(client_sees_eof(&c));
    assert_int_equal(c.len, 0);
    client_close(&c);
}

static void
test_http_pipelined_large_responses_all_arrive(void **state)
{
    fixture_t *f = *state;
    client_t c;
    response_t r;
    char req[2048] = "";
    int i, k, rcvbuf = 16 * 1024;

    /* 16 MiB of responses against a small receive buffer: the server's
     * write queue passes its high-water mark and reading pauses */
    for (i = 0; i < 32; i++)
        strcat(req, "GET /big HTTP/1.1\r\n\r\n");
    client_open(&c, f->port);
    setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    client_sends(&c, req);
    usleep(200 * 1000);
    for (i = 0; i < 32; i++) {
        assert_int_equal(client_response(&c, &r), 0);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.body_len, 512 * 1024);
        for (k = 0; k < 512 * 1024; k += 4099)
            assert_int_equal(r.body[k], 'a' + k % 26);
        free(r.body);
    }
    client_close(&c);
}

static void
test_http_head_response_has_length_but_no_body(void **state)
{
    fixture_t *f = *state;
    client_t c;

    client_open(&c, f->port);
    client_sends(&c, "HEAD /h HTTP/1.1\r\n\r\n");
    /* read the head only: the next response must follow it directly */
    client_sends(&c, "GET /after HTTP/1.1\r\n\r\n");
    while (c.buf == NULL || strstr(c.buf, "path=/after") == NULL) {
        assert_true(client_fill(&c) > 0);
        c.buf[c.len] = '\0';
    }
    assert_int_equal(strncmp(c.buf, "HTTP/1.1 200 OK\r\n", 17), 0);
    assert_non_null(strstr(c.buf, "Content-Length: "));
    /* the second status line comes right after the first blank line */
    assert_int_equal(strncmp(strstr(c.buf, "\r\n\r\n") + 4, "HTTP/1.1 200 OK\r\n", 17), 0);
    client_close(&c);
}

static void
test_http_expect_100_continue_is_answered(void **state)
{
    fixture_t *f = *state;
    client_t c;

    client_open(&c, f->port);
    client_sends(&c, "POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    while (c.buf == NULL || strstr(c.buf, "\r\n\r\n") == NULL) {
        assert_true(client_fill(&c) > 0);
        c.buf[c.len] = '\0';
    }
    assert_string_equal(c.buf, "HTTP/1.1 100 Continue\r\n\r\n");
    c.len = 0;
    client_sends(&c, "data");
    {
        response_t r;

        assert_int_equal(client_response(&c, &r), 0);
        assert_int_equal(r.status, 200);
        assert_line(&r, "body=data");
        free(r.body);
    }
    client_close(&c);
}

static void
test_http_connection_close_header_closes_after_response(void **state)
{
    fixture_t *f = *state;
    client_t c;
    response_t r;

    client_open(&c, f->port);
    client_sends(&c, "GET /bye HTTP/1.1\r\nConnection: close\r\n\r\n");
    assert_int_equal(client_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.head, "\r\nConnection: close\r\n"));
    free(r.body);
    assert_true(client_sees_eof(&c));
    client_close(&c);
}

static void
test_http_http10_closes_unless_keep_alive(void **state)
{
    fixture_t *f = *state;
    client_t c;
    response_t r;

    client_open(&c, f->port);
    client_sends(&c, "GET /old HTTP/1.0\r\n\r\n");
    assert_int_equal(client_response(&c, &r), 0);
    assert_int_equal(r.status, 200);
    free(r.body);
    assert_true(client_sees_eof(&c));
    client_close(&c);

    client_open(&c, f->port);
    client_sends(&c, "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(client_response(&c, &r), 0);
    assert_non_null(strstr(r.head, "\r\nConnection: keep-alive\r\n"));
    free(r.body);
    client_sends(&c, "GET /again HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_int_equal(client_response(&c, &r), 0);
    assert_line(&r, "path=/again");
    free(r.body);
    client_close(&c);
}

static void
test_http_extra_headers_and_204_are_written(void **state)
{
    fixture_t *f = *state;
    client_t c;
    response_t r;

    client_open(&c, f->port);
    client_sends(&c, "GET /extra HTTP/1.1\r\n\r\nGET /nocontent HTTP/1.1\r\n\r\n"
                     "GET /bad-status HTTP/1.1\r\n\r\n");
    assert_int_equal(client_response(&c, &r), 0);
    assert_non_null(strstr(r.head, "\r\nX-One: 1\r\nX-Two: 2\r\n\r\n"));
    assert_string_equal(r.body, "extra");
    free(r.body);
    assert_int_equal(client_response(&c, &r), 0);
    assert_int_equal(r.status, 204);
    assert_null(strstr(r.head, "Content-Length"));
    free(r.body);
    assert_int_equal(client_response(&c, &r), 0);
    assert_int_equal(r.status, 500);
    assert_string_equal(r.body, "{\"errors\":[\"handler returned invalid status 42\"]}");
    free(r.body);
    client_close(&c);
}

/* ---- limits and bad requests ------------------------------------------ */

static void
expect_error_then_close(fixture_t *f, const char *req, int status, const char *needle)
{
    client_t c;
    response_t r;

    client_open(&c, f->port);
    client_sends(&c, req);
    assert_int_equal(client_response(&c, &r), 0);
    if (r.status != status)
        fail_msg("'%s': status %d, want %d (%s)", req, r.status, status, r.body);
    assert_non_null(strstr(r.head, "\r\nContent-Type: application/json\r\n"));
    assert_non_null(strstr(r.head, "\r\nConnection: close\r\n"));
    assert_int_equal(strncmp(r.body, "{\"errors\":[\"", 12), 0);
    if (strstr(r.body, needle) == NULL)
        fail_msg("'%s' not in %s", needle, r.body);
    free(r.body);
    assert_true(client_sees_eof(&c));
    client_close(&c);
}

static void
test_http_oversized_headers_get_431_and_close(void **state)
{
    fixture_t *f = *state;
    char req[4096];
    int i, n;

    n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'x', 2000);
    strcpy(req + n + 2000, "\r\n\r\n");
    expect_error_then_close(f, req, 431, "header section exceeds 1024 bytes");

    /* a long request line counts too */
    n = snprintf(req, sizeof(req), "GET /");
    memset(req + n, 'y', 1500);
    strcpy(req + n + 1500, " HTTP/1.1\r\n\r\n");
    expect_error_then_close(f, req, 431, "exceeds");

    /* more headers than WEIR_HTTP_MAX_HEADERS */
    n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\n");
    for (i = 0; i < WEIR_HTTP_MAX_HEADERS + 1; i++)
        n += snprintf(req + n, sizeof(req) - (size_t)n, "h%d: v\r\n", i);
    snprintf(req + n, sizeof(req) - (size_t)n, "\r\n");
    expect_error_then_close(f, req, 431, "more than 32 request headers");
}

static void
test_http_oversized_body_gets_413_and_close(void **state)
{
    fixture_t *f = *state;
    char req[8192];
    int n;

    /* decided from Content-Length, before the body arrives */
    n = snprintf(req, sizeof(req), "POST /b HTTP/1.1\r\nContent-Length: 5000\r\n\r\n");
    memset(req + n, 'z', 5000);
    req[n + 5000] = '\0';
    expect_error_then_close(f, req, 413, "body exceeds 1000 bytes");

    /* chunked: decided when the body grows past the limit */
    n = snprintf(req, sizeof(req), "POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   "400\r\n");
    memset(req + n, 'z', 1024);
    strcpy(req + n + 1024, "\r\n0\r\n\r\n");
    expect_error_then_close(f, req, 413, "body exceeds 1000 bytes");

    /* exactly at the limit is fine */
    {
        response_t r;

        n = snprintf(req, sizeof(req), "POST /b HTTP/1.1\r\nContent-Length: 1000\r\n\r\n");
        memset(req + n, 'k', 1000);
        req[n + 1000] = '\0';
        roundtrip(f, req, &r);
        assert_int_equal(r.status, 200);
        assert_line(&r, "body_len=1000");
        free(r.body);
    }
}

static void
test_http_garbage_gets_400_and_close(void **state)
{
    fixture_t *f = *state;

    expect_error_then_close(f, "HELLO THERE\r\n\r\n", 400, "malformed request");
    expect_error_then_close(f, "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400,
                            "malformed request");
    expect_error_then_close(f, "GET nopath HTTP/1.1\r\n\r\n", 400, "malformed request");
}

static void
test_http_traversal_and_bad_paths_get_400(void **state)
{
    fixture_t *f = *state;

    expect_error_then_close(f, "GET /a/../b HTTP/1.1\r\n\r\n", 400, "'..' segment");
    expect_error_then_close(f, "GET /.. HTTP/1.1\r\n\r\n", 400, "'..' segment");
    expect_error_then_close(f, "GET /a/%2e%2e/b HTTP/1.1\r\n\r\n", 400, "'..' segment");
    expect_error_then_close(f, "GET /a%2f..%2fb HTTP/1.1\r\n\r\n", 400, "'..' segment");
    expect_error_then_close(f, "GET /a/%2E%2e HTTP/1.1\r\n\r\n", 400, "'..' segment");
    expect_error_then_close(f, "GET /x%00y HTTP/1.1\r\n\r\n", 400, "NUL");
    expect_error_then_close(f, "GET /bad%zz HTTP/1.1\r\n\r\n", 400, "percent-encoding");
    expect_error_then_close(f, "GET /bad%4 HTTP/1.1\r\n\r\n", 400, "percent-encoding");
}

static void
test_http_lookalike_paths_are_allowed(void **state)
{
    fixture_t *f = *state;
    response_t r;

    /* double encoding is decoded once */
    roundtrip(f, "GET /a/%252f HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_line(&r, "path=/a/%2f");
    assert_line(&r, "raw_path=/a/%252f");
    free(r.body);
    roundtrip(f, "GET /a/..b/.../c.. HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_line(&r, "path=/a/..b/.../c..");
    free(r.body);
    /* the query is not decoded nor checked by the server */
    roundtrip(f, "GET /x?p=../..%00 HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_line(&r, "query=p=../..%00");
    free(r.body);
}

static void
test_http_idle_connection_is_closed(void **state)
{
    fixture_t *f = *state;
    client_t c;
    struct timespec t0, t1;
    double ms;

    client_open(&c, f->port);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_true(client_sees_eof(&c));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    assert_true(ms >= 250 && ms < 3000);
    client_close(&c);
}

static void
test_http_connections_over_the_limit_are_closed(void **state)
{
    fixture_t *f = *state;
    client_t a, b;
    response_t r;

    client_open(&a, f->port);
    client_sends(&a, "GET /first HTTP/1.1\r\n\r\n");
    assert_int_equal(client_response(&a, &r), 0);
    free(r.body);

    client_open(&b, f->port);
    client_sends(&b, "GET /second HTTP/1.1\r\n\r\n");
    assert_true(client_sees_eof(&b));
    client_close(&b);

    client_sends(&a, "GET /still HTTP/1.1\r\n\r\n");
    assert_int_equal(client_response(&a, &r), 0);
    assert_line(&r, "path=/still");
    free(r.body);
    client_close(&a);
    assert_int_equal(f->nrequests, 2);
}

static void
test_http_server_closed_from_handler_drops_connections(void **state)
{
    fixture_t *f = *state;
    client_t a, b;

    client_open(&a, f->port);
    client_open(&b, f->port);
    client_sends(&a, "GET /shutdown HTTP/1.1\r\n\r\n");
    assert_true(client_sees_eof(&a));
    assert_true(client_sees_eof(&b));
    client_close(&a);
    client_close(&b);
    /* teardown joins the loop thread, which ends on its own */
}

static void
test_http_start_fails_on_a_busy_port(void **state)
{
    fixture_t *f = *state;
    uv_loop_t loop;
    weir_http_server_t *s = NULL;
    weir_err_t err;
    int rc;

    assert_int_equal(uv_loop_init(&loop), 0);
    rc = weir_http_server_start(&loop, "127.0.0.1", f->port, NULL, handler, f, &s, &err);
    assert_int_equal(rc, WEIR_EIO);
    assert_null(s);
    assert_non_null(strstr(err.msg, "cannot listen on 127.0.0.1:"));
    rc = weir_http_server_start(&loop, "not a host name!", 0, NULL, handler, f, &s, &err);
    assert_int_equal(rc, WEIR_EINVAL);
    assert_non_null(strstr(err.msg, "cannot resolve 'not a host name!'"));
    uv_run(&loop, UV_RUN_DEFAULT);   /* runs the failed listener's close */
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---- helpers without a server ----------------------------------------- */

static void
test_http_query_get_decodes_values(void **state)
{
    const char *q = "a=1&name=J%C3%B6rg+M&empty=&flag&x%20y=z&a=2&pct=%zz&nul=a%00b";
    char out[32];

    assert_int_equal(weir_http_query_get(q, "a", out, sizeof(out)), 1);
    assert_string_equal(out, "1");                 /* the first one wins */
    assert_int_equal(weir_http_query_get(q, "name", out, sizeof(out)), 7);
    assert_string_equal(out, "J\xc3\xb6rg M");
    assert_int_equal(weir_http_query_get(q, "empty", out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(weir_http_query_get(q, "flag", out, sizeof(out)), 0);
    assert_int_equal(weir_http_query_get(q, "x y", out, sizeof(out)), 1);
    assert_string_equal(out, "z");
    assert_int_equal(weir_http_query_get(q, "pct", out, sizeof(out)), 3);
    assert_string_equal(out, "%zz");
    assert_int_equal(weir_http_query_get(q, "nul", out, sizeof(out)), -1);
    assert_int_equal(weir_http_query_get(q, "missing", out, sizeof(out)), -1);
    assert_int_equal(weir_http_query_get(q, "nam", out, sizeof(out)), -1);
    assert_int_equal(weir_http_query_get("", "a", out, sizeof(out)), -1);
    assert_int_equal(weir_http_query_get(NULL, "a", out, sizeof(out)), -1);
    /* cap counts the NUL; an encoded value may be longer than cap yet fit */
    assert_int_equal(weir_http_query_get("k=abcd", "k", out, 4), -1);
    assert_int_equal(weir_http_query_get("k=abcd", "k", out, 5), 4);
    assert_int_equal(weir_http_query_get("k=%41%42%43", "k", out, 4), 3);
    assert_string_equal(out, "ABC");
}

static void
test_http_query_get_through_the_server(void **state)
{
    fixture_t *f = *state;
    response_t r;

    roundtrip(f, "GET /q?mode=x&name=a%26b%3Dc HTTP/1.1\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "n=5\nname=a&b=c\n");
    free(r.body);
}

static void
test_http_error_escapes_json(void **state)
{
    weir_http_response_t resp = { .status = 200, .body = WEIR_BUF_INIT };

    weir_buf_appendf(&resp.body, "partial output");
    weir_http_error(&resp, 404, "no job '%s'", "a\"b\\c\nd\x01/e");
    assert_int_equal(resp.status, 404);
    assert_string_equal(resp.content_type, "application/json");
    assert_int_equal(weir_buf_nul(&resp.body), 0);
    assert_string_equal(resp.body.data, "{\"errors\":[\"no job 'a\\\"b\\\\c\\nd\\u0001/e'\"]}");
    weir_buf_free(&resp.body);
}

static void
test_http_header_lookup_is_case_insensitive(void **state)
{
    weir_http_request_t req = {
        .nheaders = 2,
        .header_names = { "content-type", "x-a" },
        .header_values = { "text/plain", "1" },
    };

    assert_string_equal(weir_http_header(&req, "Content-Type"), "text/plain");
    assert_string_equal(weir_http_header(&req, "X-A"), "1");
    assert_null(weir_http_header(&req, "x-b"));
}

static void
test_http_reason_phrases(void **state)
{
    assert_string_equal(weir_http_reason(200), "OK");
    assert_string_equal(weir_http_reason(404), "Not Found");
    assert_string_equal(weir_http_reason(413), "Payload Too Large");
    assert_string_equal(weir_http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(weir_http_reason(299), "OK");
    assert_string_equal(weir_http_reason(499), "Client Error");
    assert_string_equal(weir_http_reason(599), "Server Error");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_http_get_with_query_decodes_path_and_keeps_raw, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_http_header_names_are_lower_cased_and_empty_values_kept, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_http_post_body_is_passed_whole_and_nul_terminated, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_http_chunked_body_is_assembled, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_http_keep_alive_serves_two_requests_on_one_connection, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_http_pipelined_requests_are_answered_in_order, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_http_pipelined_large_responses_all_arrive, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_http_head_response_has_length_but_no_body, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_http_expect_100_continue_is_answered, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_http_connection_close_header_closes_after_response, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_http_http10_closes_unless_keep_alive, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_http_extra_headers_and_204_are_written, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_http_oversized_headers_get_431_and_close, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_http_oversized_body_gets_413_and_close, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_http_garbage_gets_400_and_close, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_http_traversal_and_bad_paths_get_400, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_http_lookalike_paths_are_allowed, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_http_idle_connection_is_closed, setup_small, teardown),
        cmocka_unit_test_setup_teardown(test_http_connections_over_the_limit_are_closed, setup_one_conn, teardown),
        cmocka_unit_test_setup_teardown(test_http_server_closed_from_handler_drops_connections, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_http_start_fails_on_a_busy_port, setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_http_query_get_through_the_server, setup_default, teardown),
        cmocka_unit_test(test_http_query_get_decodes_values),
        cmocka_unit_test(test_http_error_escapes_json),
        cmocka_unit_test(test_http_header_lookup_is_case_insensitive),
        cmocka_unit_test(test_http_reason_phrases),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
