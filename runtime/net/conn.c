/* runtime/net/conn.c -- framed messages over libuv TCP. */
#include "conn.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uv_write_t req;
    uv_buf_t   buf;
    weir_conn_t *conn;
} write_req_t;

/* Every open connection, so shutdown can close them all properly. */
static weir_conn_t *live;

static void
conn_closed_cb(uv_handle_t *h)
{
    weir_conn_t *c = h->data;

    if (c->live_prev != NULL)
        c->live_prev->live_next = c->live_next;
    else
        live = c->live_next;
    if (c->live_next != NULL)
        c->live_next->live_prev = c->live_prev;

    if (c->on_close != NULL)
        c->on_close(c, c->close_status);
    weir_frame_reader_free(&c->rd);
    free(c);
}

void
weir_conn_close_all(int status)
{
    for (weir_conn_t *c = live; c != NULL; c = c->live_next)
        weir_conn_close(c, status);
}

void
weir_conn_close(weir_conn_t *c, int status)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_status = status;
    uv_close((uv_handle_t *)&c->tcp, conn_closed_cb);
}

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    weir_conn_t *c = h->data;

    /* read straight into the frame reader's buffer */
    if (weir_buf_reserve(&c->rd.buf, 65536) != 0) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = c->rd.buf.data + c->rd.buf.len;
    buf->len = c->rd.buf.cap - c->rd.buf.len - 1;
}

static void
read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    weir_conn_t *c = s->data;
    const char *frame;
    uint32_t len;
    int rc;

    if (n < 0) {
        weir_conn_close(c, (int)n);
        return;
    }
    if (n == 0)
        return;
    c->rd.buf.len += (size_t)n;
    while (!c->closing && (rc = weir_frame_reader_next(&c->rd, &frame, &len)) == 1)
        c->on_frame(c, frame, len);
    if (!c->closing && rc < 0) {
        weir_conn_close(c, UV_E2BIG);
        return;
    }
    /* compact: drop consumed bytes so the buffer does not grow */
    if (!c->closing && c->rd.off > 0) {
        memmove(c->rd.buf.data, c->rd.buf.data + c->rd.off, c->rd.buf.len - c->rd.off);
        c->rd.buf.len -= c->rd.off;
        c->rd.off = 0;
    }
}

static weir_conn_t *
conn_new(uv_loop_t *loop, uint32_t max_frame)
{
    weir_conn_t *c = calloc(1, sizeof(*c));

    if (c == NULL)
        return NULL;
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    weir_frame_reader_init(&c->rd, max_frame);
    c->live_next = live;
    if (live != NULL)
        live->live_prev = c;
    live = c;
    return c;
}

static void
set_peer(weir_conn_t *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char host[48] = "?";

    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&ss, host, sizeof(host));
            snprintf(c->peer, sizeof(c->peer), "%s:%d", host,
                     ntohs(((struct sockaddr_in *)&ss)->sin_port));
        } else if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, host, sizeof(host));
            snprintf(c->peer, sizeof(c->peer), "[%s]:%d", host,
                     ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
        }
    }
}

static void
listen_cb(uv_stream_t *server, int status)
{
    weir_listener_t *l = server->data;
    weir_conn_t *c;

    if (status < 0)
        return;
    c = conn_new(server->loop, l->max_frame);
    if (c == NULL)
        return;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        weir_conn_close(c, UV_ECONNABORTED);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->connected = true;
    set_peer(c);
    l->accept_cb(l, c);
    if (!c->closing)
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

static int
resolve(const char *host, int port, struct sockaddr_storage *ss)
{
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
        return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    if (strcmp(host, "localhost") == 0)
        return uv_ip4_addr("127.0.0.1", port, (struct sockaddr_in *)ss);
    return UV_EINVAL;
}

int
weir_listen(uv_loop_t *loop, weir_listener_t *l, const char *host, int port,
            int *port_out, weir_err_t *err)
{
    struct sockaddr_storage ss;
    int rc, len = sizeof(ss);

    if (resolve(host, port, &ss) != 0)
        return weir_err_set(err, WEIR_EINVAL, "bad listen address '%s' (use an IP address)", host);
    uv_tcp_init(loop, &l->tcp);
    l->tcp.data = l;
    if (l->max_frame == 0)
        l->max_frame = WEIR_FRAME_MAX_DEFAULT;
    rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&l->tcp, 128, listen_cb);
    if (rc != 0) {
        uv_close((uv_handle_t *)&l->tcp, NULL);
        return weir_err_set(err, WEIR_EIO, "cannot listen on %s:%d: %s", host, port, uv_strerror(rc));
    }
    if (port_out != NULL) {
        uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&ss, &len);
        *port_out = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                   : ((struct sockaddr_in *)&ss)->sin_port);
    }
    return 0;
}

void
weir_listener_close(weir_listener_t *l)
{
    if (!uv_is_closing((uv_handle_t *)&l->tcp))
        uv_close((uv_handle_t *)&l->tcp, NULL);
}

static void
connect_cb(uv_connect_t *req, int status)
{
    weir_conn_t *c = req->data;

    if (status == 0 && !c->closing) {
        c->connected = true;
        uv_tcp_nodelay(&c->tcp, 1);
        set_peer(c);
        uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    }
    if (c->on_connect != NULL && !c->closing)
        c->on_connect(c, status);
    if (status != 0)
        weir_conn_close(c, status);
}

weir_conn_t *
weir_connect(uv_loop_t *loop, const char *host, int port, uint32_t max_frame,
             weir_conn_frame_cb on_frame, weir_conn_event_cb on_connect,
             weir_conn_event_cb on_close, void *data)
{
    struct sockaddr_storage ss;
    weir_conn_t *c;
    int rc;

    if (resolve(host, port, &ss) != 0)
        return NULL;
    c = conn_new(loop, max_frame);
    if (c == NULL)
        return NULL;
    c->on_frame = on_frame;
    c->on_connect = on_connect;
    c->on_close = on_close;
    c->data = data;
    snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
    c->connect_req.data = c;
    rc = uv_tcp_connect(&c->connect_req, &c->tcp, (struct sockaddr *)&ss, connect_cb);
    if (rc != 0) {
        c->on_connect = NULL;
        c->on_close = NULL;
        weir_conn_close(c, rc);
        return NULL;
    }
    return c;
}

static void
write_cb(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    weir_conn_t *c = w->conn;

    c->pending_write_bytes -= w->buf.len;
    free(w->buf.base);
    free(w);
    if (status < 0 && status != UV_ECANCELED)
        weir_conn_close(c, status);
}

int
weir_conn_send(weir_conn_t *c, weir_buf_t *b)
{
    write_req_t *w;
    int rc;

    if (c->closing || !c->connected) {
        weir_buf_free(b);
        return WEIR_ESTATE;
    }
    w = malloc(sizeof(*w));
    if (w == NULL) {
        weir_buf_free(b);
        return WEIR_ENOMEM;
    }
    w->conn = c;
    w->buf = uv_buf_init(b->data, (unsigned)b->len);
    b->data = NULL;
    b->len = b->cap = 0;
    c->pending_write_bytes += w->buf.len;
    rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->buf, 1, write_cb);
    if (rc != 0) {
        c->pending_write_bytes -= w->buf.len;
        free(w->buf.base);
        free(w);
        weir_conn_close(c, rc);
        return WEIR_EIO;
    }
    return 0;
}

/* ---- messages --------------------------------------------------------- */

void
weir_msg_begin(weir_msg_t *m, const char *type, int npairs)
{
    memset(m, 0, sizeof(*m));
    m->hdr = weir_frame_begin(&m->buf);
    msgpack_packer_init(&m->pk, &m->buf, weir_buf_msgpack_write);
    msgpack_pack_map(&m->pk, (size_t)npairs);
    weir_msg_str(m, "t", type);
}

void
weir_msg_key(weir_msg_t *m, const char *key)
{
    size_t n = strlen(key);

    msgpack_pack_str(&m->pk, n);
    msgpack_pack_str_body(&m->pk, key, n);
}

void
weir_msg_strn(weir_msg_t *m, const char *key, const char *val, size_t n)
{
    weir_msg_key(m, key);
    if (val == NULL) {
        msgpack_pack_nil(&m->pk);
        return;
    }
    msgpack_pack_str(&m->pk, n);
    msgpack_pack_str_body(&m->pk, val, n);
}

void
weir_msg_str(weir_msg_t *m, const char *key, const char *val)
{
    weir_msg_strn(m, key, val, val ? strlen(val) : 0);
}

void
weir_msg_int(weir_msg_t *m, const char *key, int64_t val)
{
    weir_msg_key(m, key);
    msgpack_pack_int64(&m->pk, val);
}

int
weir_msg_end(weir_msg_t *m)
{
    return weir_frame_end(&m->buf, m->hdr, WEIR_FRAME_MAX_DEFAULT);
}

int
weir_msg_send(weir_msg_t *m, weir_conn_t *c)
{
    int rc = weir_msg_end(m);

    if (rc != 0) {
        weir_buf_free(&m->buf);
        return rc;
    }
    return weir_conn_send(c, &m->buf);
}

const msgpack_object *
weir_msg_get(const msgpack_object *map, const char *key)
{
    size_t n = strlen(key);

    if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == n &&
            memcmp(kv->key.via.str.ptr, key, n) == 0)
            return &kv->val;
    }
    return NULL;
}

const char *
weir_msg_get_str(const msgpack_object *map, const char *key, char *out, size_t cap)
{
    const msgpack_object *o = weir_msg_get(map, key);
    size_t n;

    out[0] = '\0';
    if (o == NULL || o->type != MSGPACK_OBJECT_STR || cap == 0)
        return out;
    n = o->via.str.size < cap - 1 ? o->via.str.size : cap - 1;
    memcpy(out, o->via.str.ptr, n);
    out[n] = '\0';
    return out;
}

int64_t
weir_msg_get_int(const msgpack_object *map, const char *key, int64_t def)
{
    const msgpack_object *o = weir_msg_get(map, key);

    if (o == NULL)
        return def;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return o->via.u64 > (uint64_t)INT64_MAX ? def : (int64_t)o->via.u64;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return o->via.i64;
    return def;
}
