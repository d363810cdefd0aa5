/* runtime/net/conn.h -- framed msgpack messages over libuv TCP.
 *
 * A weir_conn_t is one TCP connection carrying frames (4-byte big-endian
 * length + msgpack payload, at most max_frame bytes). It is used from its
 * loop's thread only. Reading delivers whole frames to frame_cb; a frame over
 * the limit or a read error closes the connection. close_cb runs exactly once
 * per connection that was opened (accepted or connected), after which the
 * connection memory is freed by the layer: do not touch it afterwards.
 *
 * Messages are msgpack maps with a "t" (type) key; weir_msg_* read them.
 */
#ifndef WEIR_NET_CONN_H
#define WEIR_NET_CONN_H

#include <msgpack.h>
#include <stdbool.h>
#include <uv.h>

#include "../core/buf.h"
#include "../core/codec.h"
#include "../core/error.h"

#define WEIR_PROTOCOL_VERSION 1

typedef struct weir_conn weir_conn_t;

typedef void (*weir_conn_frame_cb)(weir_conn_t *c, const char *frame, uint32_t len);
typedef void (*weir_conn_event_cb)(weir_conn_t *c, int status);

struct weir_conn {
    uv_tcp_t            tcp;
    uv_connect_t        connect_req;
    weir_frame_reader_t rd;
    weir_conn_frame_cb  on_frame;
    weir_conn_event_cb  on_connect;   /* status 0 or a libuv error */
    weir_conn_event_cb  on_close;     /* status: why (0 = closed by us) */
    void               *data;         /* the owner's */
    bool                connected;
    bool                closing;
    int                 close_status;
    size_t              pending_write_bytes;
    char                peer[64];     /* "host:port" */
    weir_conn_t        *live_prev, *live_next;   /* every open connection */
};

/* Listens on host:port (0 = free port) and calls accept_cb with every new
 * connection (already reading; set its callbacks and data in accept_cb).
 * *port_out gets the bound port. The listener is embedded in 'srv'. */
typedef struct weir_listener {
    uv_tcp_t           tcp;
    uint32_t           max_frame;
    void             (*accept_cb)(struct weir_listener *l, weir_conn_t *c);
    void              *data;
} weir_listener_t;

int  weir_listen(uv_loop_t *loop, weir_listener_t *l, const char *host, int port,
                 int *port_out, weir_err_t *err);
void weir_listener_close(weir_listener_t *l);

/* Connects to host:port; on_connect runs with the outcome, then frames flow.
 * When the connect fails, on_connect gets the error and then on_close runs.
 * Returns a new connection (owned by the layer until on_close). */
weir_conn_t *weir_connect(uv_loop_t *loop, const char *host, int port, uint32_t max_frame,
                          weir_conn_frame_cb on_frame, weir_conn_event_cb on_connect,
                          weir_conn_event_cb on_close, void *data);

/* Sends the bytes of b (one or more whole frames); takes ownership of
 * b->data and resets b. Returns 0 or a negative code (closing connection). */
int  weir_conn_send(weir_conn_t *c, weir_buf_t *b);
void weir_conn_close(weir_conn_t *c, int status);
/* Closes every open connection of the process (at shutdown, before walking
 * the loop's other handles): each one's close callback runs and frees it.
 * Connections belong to one loop thread per process. */
void weir_conn_close_all(int status);

/* ---- message building and reading ------------------------------------- */

typedef struct weir_msg {
    weir_buf_t     buf;
    size_t         hdr;
    msgpack_packer pk;
} weir_msg_t;

/* Starts a frame holding a map of npairs entries, first "t": type. */
void weir_msg_begin(weir_msg_t *m, const char *type, int npairs);
void weir_msg_str(weir_msg_t *m, const char *key, const char *val);   /* NULL -> nil */
void weir_msg_strn(weir_msg_t *m, const char *key, const char *val, size_t n);
void weir_msg_int(weir_msg_t *m, const char *key, int64_t val);
void weir_msg_key(weir_msg_t *m, const char *key);  /* then pack the value with m->pk */
/* Finishes the frame; returns 0 or WEIR_E2BIG / WEIR_ENOMEM. */
int  weir_msg_end(weir_msg_t *m);
/* Sends a finished message on c and frees it. */
int  weir_msg_send(weir_msg_t *m, weir_conn_t *c);

const msgpack_object *weir_msg_get(const msgpack_object *map, const char *key);
/* Copies a string field into out (cap); "" when absent or not a string. */
const char *weir_msg_get_str(const msgpack_object *map, const char *key, char *out, size_t cap);
int64_t weir_msg_get_int(const msgpack_object *map, const char *key, int64_t def);

#endif
