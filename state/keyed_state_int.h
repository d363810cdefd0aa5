/* state/keyed_state_int.h -- what the keyed state backends share.
 *
 * keyed_state.c checks every argument (key group range, lengths, state
 * kind) and then calls the backend through a table of operations, so each
 * backend sees only valid calls and both refuse bad ones the same way. A
 * backend's structs start with the common ones below and are cast to their
 * own type inside the backend.
 *
 * Also here: the processing-time clock, the write-time prefix of TTL
 * states, the byte layout of stored keys (the RocksDB backend stores it;
 * the memory backend hashes the same fields), and what snapshot.c shares
 * with the backends: the snapshot's metadata, the readers of both kinds of
 * snapshot, and the operations that write and restore one.
 */
#ifndef WEIR_STATE_KEYED_STATE_INT_H
#define WEIR_STATE_KEYED_STATE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "keyed_state.h"

enum {
    WEIR__STATE_VALUE = 1,
    WEIR__STATE_LIST  = 2,
    WEIR__STATE_MAP   = 3,
};

#define WEIR__TS_LEN      8          /* write-time prefix of TTL states */
#define WEIR__PREFIX_MAX  (2 + 5)    /* key group + varint of a key length */
#define WEIR__ERRMSG_MAX  512

typedef struct weir__state_ops weir__state_ops_t;
typedef struct weir__snap_meta weir__snap_meta_t;

struct weir_state_backend {
    const weir__state_ops_t *ops;
    int           kg_first;          /* the subtask's key groups */
    int           kg_last;
    weir_state_t *states;            /* every state asked for, newest first */
    char          errmsg[WEIR__ERRMSG_MAX];
};

struct weir_state {
    weir_state_t         *next;      /* the backend's list */
    weir_state_backend_t *b;
    char                 *name;      /* owned */
    int                   kind;      /* WEIR__STATE_* */
    int64_t               ttl_us;    /* 0: no TTL, no write-time prefix */
};

/* Arguments are checked before any of these runs: kg is in the backend's
 * range, lengths within limits, s of the right kind. */
struct weir__state_ops {
    /* a state not asked for before in this run: allocate the backend's
     * struct (it sets no common field; the caller does), checking what the
     * backend already holds under that name (RocksDB after a reopen) */
    int    (*state_open)(weir_state_backend_t *b, const char *name, int kind,
                         int64_t ttl_us, weir_state_t **out);
    int    (*state_set_ttl)(weir_state_t *s, int64_t ttl_us);
    void   (*state_free)(weir_state_t *s);          /* the struct only */
    void   (*close)(weir_state_backend_t *b);       /* after state_free of all */
    int    (*drop)(weir_state_backend_t *b);        /* after state_free of all */

    int    (*get)(weir_state_t *s, int kg, const void *key, size_t klen,
                  weir_buf_t *out, int *found);
    int    (*put)(weir_state_t *s, int kg, const void *key, size_t klen,
                  const void *val, size_t vlen);
    int    (*clear)(weir_state_t *s, int kg, const void *key, size_t klen);
    int    (*count)(weir_state_t *s, size_t *n);
    int    (*scan)(weir_state_t *s, int kg_first, int kg_last,
                   weir_state_visit_cb cb, void *arg);
    int    (*list_add)(weir_state_t *s, int kg, const void *key, size_t klen,
                       const void *val, size_t vlen);
    int    (*list_get)(weir_state_t *s, int kg, const void *key, size_t klen,
                       weir_state_elem_cb cb, void *arg);
    int    (*map_put)(weir_state_t *s, int kg, const void *key, size_t klen,
                      const void *ukey, size_t uklen, const void *val, size_t vlen);
    int    (*map_get)(weir_state_t *s, int kg, const void *key, size_t klen,
                      const void *ukey, size_t uklen, weir_buf_t *out, int *found);
    int    (*map_del)(weir_state_t *s, int kg, const void *key, size_t klen,
                      const void *ukey, size_t uklen);
    int    (*map_iter)(weir_state_t *s, int kg, const void *key, size_t klen,
                       weir_state_visit_cb cb, void *arg);
    int    (*map_scan)(weir_state_t *s, int kg_first, int kg_last,
                       weir_state_map_visit_cb cb, void *arg);
    int    (*drop_key_groups)(weir_state_backend_t *b, int kg_first, int kg_last);
    int    (*compact)(weir_state_backend_t *b);

    /* snapshots (snapshot.c calls these; see the section below) */

    /* writes b's data into dir (exists, empty, ours) and adds every state b
     * holds -- not only those asked for in this run -- to meta, with
     * meta->list_seq; never changes what b holds */
    int    (*snapshot)(weir_state_backend_t *b, const char *dir, weir__snap_meta_t *meta,
                       weir_err_t *err);
    /* *empty: no state of b holds an entry */
    int    (*is_empty)(weir_state_backend_t *b, bool *empty);
    /* stores one entry as a snapshot holds it: the stored key (checked: a
     * key group of b, a suffix fitting s's kind) and the stored value (the
     * write time first when s has TTL, checked to be there). A list
     * element is appended after those of its key restored before. */
    int    (*restore_put)(weir_state_t *s, const char *key, size_t klen,
                          const char *val, size_t vlen);
    /* after the last restore_put: ok, make it all visible and have new list
     * elements numbered from list_seq on; !ok, undo what can be undone */
    int    (*restore_end)(weir_state_backend_t *b, uint64_t list_seq, bool ok);
};

/* Sets b's error message; returns code. */
int weir__state_fail(weir_state_backend_t *b, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

const char *weir__state_kind_name(int kind);

/* The registry's lookup-or-create (weir_state_value() and friends). */
int weir__state_open(weir_state_backend_t *b, const char *name, int kind, int64_t ttl_us,
                     weir_state_t **out);

/* The TTL clock (weir_state_set_clock), microseconds. Thread-safe. */
int64_t weir__state_now(void);

/* ---- byte helpers ----------------------------------------------------- */

static inline void
weir__be64_put(void *p, uint64_t v)
{
    unsigned char *c = p;
    for (int i = 7; i >= 0; i--, v >>= 8)
        c[i] = (unsigned char)v;
}

static inline uint64_t
weir__be64_get(const void *p)
{
    const unsigned char *c = p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | c[i];
    return v;
}

/* An item written at ts is expired at now when ttl_us > 0 and
 * now - ts >= ttl_us (a write time in the future never is). */
static inline bool
weir__state_expired(int64_t ts, int64_t ttl_us, int64_t now)
{
    return ttl_us > 0 && now >= ts && (uint64_t)now - (uint64_t)ts >= (uint64_t)ttl_us;
}

/* Writes [kg: 2 bytes big-endian][klen: LEB128 varint] to p (room for
 * WEIR__PREFIX_MAX bytes); returns the bytes written. */
static inline size_t
weir__key_prefix(unsigned char *p, int kg, size_t klen)
{
    size_t n = 2;

    p[0] = (unsigned char)(kg >> 8);
    p[1] = (unsigned char)kg;
    do {
        unsigned char c = klen & 0x7f;
        klen >>= 7;
        p[n++] = klen ? (unsigned char)(c | 0x80) : c;
    } while (klen);
    return n;
}

/* Splits a stored key into key group, user key and suffix. Returns 0, or
 * WEIR_EPROTO for bytes that are not a stored key. */
static inline int
weir__key_split(const void *k, size_t n, int *kg, const char **key, size_t *klen,
                const char **suffix, size_t *slen)
{
    const unsigned char *p = k;
    size_t i = 2, len = 0;
    int shift = 0;

    if (n < 3)
        return WEIR_EPROTO;
    for (;;) {
        if (i >= n || shift > 28)
            return WEIR_EPROTO;
        len |= (size_t)(p[i] & 0x7f) << shift;
        shift += 7;
        if (!(p[i++] & 0x80))
            break;
    }
    if (len > n - i)
        return WEIR_EPROTO;
    *kg = p[0] << 8 | p[1];
    *key = (const char *)p + i;
    *klen = len;
    *suffix = (const char *)p + i + len;
    *slen = n - i - len;
    return 0;
}

/* ---- snapshots -------------------------------------------------------- */

/* A snapshot directory holds
 *   WEIR_SNAPSHOT   the metadata (text), written last: no file, no snapshot
 *   db/             a RocksDB checkpoint (RocksDB backend), or
 *   entries         every entry in one file (memory backend)
 * Both kinds hold entries the same way: a stored key as RocksDB stores it
 * (a memory list element gets its index in the list as its sequence
 * number) and a stored value (write time first with TTL). */
#define WEIR__SNAP_META     "WEIR_SNAPSHOT"
#define WEIR__SNAP_DB       "db"
#define WEIR__SNAP_ENTRIES  "entries"

enum {
    WEIR__SNAP_MEMORY  = 1,
    WEIR__SNAP_ROCKSDB = 2,
};

typedef struct weir__snap_state {
    char    *name;                   /* owned */
    int      kind;                   /* WEIR__STATE_* */
    int64_t  ttl_us;                 /* 0: no TTL, no write times */
} weir__snap_state_t;

struct weir__snap_meta {
    int                 backend;     /* WEIR__SNAP_* */
    int                 kg_first;    /* the backend's key groups */
    int                 kg_last;
    uint64_t            list_seq;    /* every list sequence number used is below */
    weir__snap_state_t *states;
    int                 nstates;
    int                 cap;
};

/* Adds a state to m (name copied): 0 or WEIR_ENOMEM. */
int  weir__snap_meta_add(weir__snap_meta_t *m, const char *name, int kind, int64_t ttl_us);
void weir__snap_meta_free(weir__snap_meta_t *m);

/* What a snapshot reader feeds: state(arg, i) announces that the entries
 * of meta->states[i] follow (each state is announced once, also without
 * entries), entry() gives one. Non-zero from either stops the reader,
 * which returns it. */
typedef struct weir__snap_sink {
    int  (*state)(void *arg, int idx);
    int  (*entry)(void *arg, const char *key, size_t klen, const char *val, size_t vlen);
    void  *arg;
} weir__snap_sink_t;

/* Feed sink the entries of key groups [kg_first, kg_last] of a snapshot
 * described by meta: the memory backend's file (path), or the RocksDB
 * checkpoint (dbdir, opened read-only). Neither changes the snapshot. A
 * snapshot that is not what it should be is WEIR_EPROTO (or WEIR_EIO) with
 * a message in err. */
int  weir__mem_snapshot_read(const char *path, const weir__snap_meta_t *meta,
                             int kg_first, int kg_last, const weir__snap_sink_t *sink,
                             weir_err_t *err);
int  weir__rdb_snapshot_read(const char *dbdir, const weir__snap_meta_t *meta,
                             int kg_first, int kg_last, const weir__snap_sink_t *sink,
                             weir_err_t *err);

/* Makes the new, empty directory dir a RocksDB backend's (its marker file),
 * so weir_state_backend_rocksdb() accepts the files put there next. */
int  weir__rdb_claim_dir(const char *dir, weir_err_t *err);

#endif
