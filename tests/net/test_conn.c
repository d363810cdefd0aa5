/* tests/net/test_conn.c -- framed messages over loopback TCP. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "runtime/net/conn.h"

typedef struct {
    uv_loop_t       loop;
    weir_listener_t l;
    int             port;
    int             frames;
    char            last_type[32];
    int64_t         last_n;
    char            big[64];
    int             server_closed;
    int             server_close_status;
    int             client_closed;
    int             connected;
    weir_conn_t    *client;
    weir_conn_t    *server;
} fixture_t;

static void
server_frame_cb(weir_conn_t *c, const char *frame, uint32_t len)
{
    fixture_t *f = c->data;
    msgpack_unpacked u;
    size_t off = 0;

    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, frame, len, &off), MSGPACK_UNPACK_SUCCESS);
    weir_msg_get_str(&u.data, "t", f->last_type, sizeof(f->last_type));
    f->last_n = weir_msg_get_int(&u.data, "n", -1);
    weir_msg_get_str(&u.data, "s", f->big, sizeof(f->big));
    msgpack_unpacked_destroy(&u);
    f->frames++;
}

static void
server_close_cb(weir_conn_t *c, int status)
{
    fixture_t *f = c->data;
    f->server_closed++;
    f->server_close_status = status;
}

static void
accept_cb(weir_listener_t *l, weir_conn_t *c)
{
    fixture_t *f = l->data;
    c->data = f;
    c->on_frame = server_frame_cb;
    c->on_close = server_close_cb;
    f->server = c;
}

static void client_frame_cb(weir_conn_t *c, const char *fr, uint32_t n) { (void)c; (void)fr; (void)n; }
static void client_connect_cb(weir_conn_t *c, int status) { ((fixture_t *)c->data)->connected = status == 0 ? 1 : -1; }
static void client_close_cb(weir_conn_t *c, int status) { (void)status; ((fixture_t *)c->data)->client_closed++; }

static int
setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    weir_err_t err;

    uv_loop_init(&f->loop);
    f->l.accept_cb = accept_cb;
    f->l.data = f;
    f->l.max_frame = 1024;
    assert_int_equal(weir_listen(&f->loop, &f->l, "127.0.0.1", 0, &f->port, &err), 0);
    assert_true(f->port > 0);
    f->client = weir_connect(&f->loop, "127.0.0.1", f->port, 0, client_frame_cb,
                             client_connect_cb, client_close_cb, f);
    assert_non_null(f->client);
    while (f->connected == 0 || f->server == NULL)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->connected, 1);
    *state = f;
    return 0;
}

static void
close_all(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int
teardown(void **state)
{
    fixture_t *f = *state;

    if (!f->client_closed)
        weir_conn_close(f->client, 0);
    if (f->server != NULL && !f->server_closed)
        weir_conn_close(f->server, 0);      /* frees it in its close callback */
    weir_listener_close(&f->l);
    uv_walk(&f->loop, close_all, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static void
run_until(fixture_t *f, int *flag, int want)
{
    for (int i = 0; i < 1000 && *flag < want; i++)
        uv_run(&f->loop, UV_RUN_ONCE);
}

static void
test_conn_delivers_frames_in_order(void **state)
{
    fixture_t *f = *state;

    for (int i = 0; i < 50; i++) {
        weir_msg_t m;
        weir_msg_begin(&m, "ping", 3);
        weir_msg_int(&m, "n", i);
        weir_msg_str(&m, "s", "hello");
        assert_int_equal(weir_msg_send(&m, f->client), 0);
    }
    run_until(f, &f->frames, 50);
    assert_int_equal(f->frames, 50);
    assert_string_equal(f->last_type, "ping");
    assert_int_equal(f->last_n, 49);
    assert_string_equal(f->big, "hello");
}

static void
test_conn_frame_over_limit_closes_connection(void **state)
{
    fixture_t *f = *state;
    char payload[2000];
    weir_msg_t m;

    memset(payload, 'x', sizeof(payload));
    weir_msg_begin(&m, "big", 2);
    weir_msg_strn(&m, "s", payload, sizeof(payload));      /* > the listener's 1024 */
    assert_int_equal(weir_msg_send(&m, f->client), 0);
    run_until(f, &f->server_closed, 1);
    assert_int_equal(f->server_closed, 1);
    assert_int_equal(f->server_close_status, UV_E2BIG);
    assert_int_equal(f->frames, 0);
    run_until(f, &f->client_closed, 1);                     /* the peer sees EOF */
    assert_int_equal(f->client_closed, 1);
}

static void
test_conn_frame_split_across_reads(void **state)
{
    fixture_t *f = *state;
    weir_msg_t m;
    weir_buf_t part = WEIR_BUF_INIT;

    weir_msg_begin(&m, "split", 2);
    weir_msg_int(&m, "n", 7);
    assert_int_equal(weir_msg_end(&m), 0);
    /* send the header and first bytes, then the rest, in two writes */
    weir_buf_append(&part, m.buf.data, 3);
    assert_int_equal(weir_conn_send(f->client, &part), 0);
    for (int i = 0; i < 20; i++)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(f->frames, 0);
    weir_buf_append(&part, m.buf.data + 3, m.buf.len - 3);
    assert_int_equal(weir_conn_send(f->client, &part), 0);
    weir_buf_free(&m.buf);
    run_until(f, &f->frames, 1);
    assert_int_equal(f->frames, 1);
    assert_string_equal(f->last_type, "split");
    assert_int_equal(f->last_n, 7);
}

static void
test_msg_get_missing_and_wrong_types(void **state)
{
    weir_msg_t m;
    msgpack_unpacked u;
    size_t off = 0;
    char s[8];

    (void)state;
    weir_msg_begin(&m, "x", 3);
    weir_msg_str(&m, "long", "0123456789");
    weir_msg_int(&m, "neg", -5);
    assert_int_equal(weir_msg_end(&m), 0);
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, m.buf.data + 4, m.buf.len - 4, &off),
                     MSGPACK_UNPACK_SUCCESS);
    assert_string_equal(weir_msg_get_str(&u.data, "long", s, sizeof(s)), "0123456");  /* truncated */
    assert_string_equal(weir_msg_get_str(&u.data, "neg", s, sizeof(s)), "");          /* not a string */
    assert_int_equal(weir_msg_get_int(&u.data, "neg", 0), -5);
    assert_int_equal(weir_msg_get_int(&u.data, "long", 42), 42);                      /* not an int */
    assert_int_equal(weir_msg_get_int(&u.data, "absent", 9), 9);
    assert_null(weir_msg_get(&u.data, "absent"));
    msgpack_unpacked_destroy(&u);
    weir_buf_free(&m.buf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_conn_delivers_frames_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conn_frame_over_limit_closes_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conn_frame_split_across_reads, setup, teardown),
        cmocka_unit_test(test_msg_get_missing_and_wrong_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
