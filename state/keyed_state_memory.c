/* state/keyed_state_memory.c -- keyed state in hash tables, in memory.
 *
 * The in-memory backend of keyed_state.h. Each named state is one
 * open-addressing hash table with linear probing, keyed by (key group,
 * key). A slot holds the entry's 64-bit hash (xxh3 of the key, seeded with
 * the key group, so the same key bytes in two key groups are two entries)
 * and a pointer to the entry. An entry is one malloc holding its header,
 * the key bytes and the value bytes, and the value part has some slack: an
 * update whose value still fits is written in place, so the steady state of
 * a running aggregate (get, then put of the same key) allocates nothing.
 *
 * What the value part holds depends on the kind of state:
 *   value  [write time, TTL only][value]
 *   list   the elements packed one after the other, each
 *          [length: 4 bytes][write time, TTL only][bytes]; an append grows
 *          the entry by a quarter more than it needs, so appends are
 *          amortized O(1) and a list is one allocation
 *   map    a pointer to an inner table of the same kind, keyed by the map
 *          key (key group 0), whose values are [write time][value]
 *
 * Deletion uses backward shifting instead of tombstones: the entries after
 * the removed one in its probe run move back when their home slot allows,
 * so lookups never wade through dead slots. A table is rebuilt when it is
 * three quarters full (to half full), and the rebuild is also where expired
 * items of TTL states are dropped and where weir_state_drop_key_groups()
 * and weir_state_backend_compact() do their work: one pass that filters
 * every entry into a fresh slot array, so no pass ever deletes while it
 * walks a probe run.
 *
 * Snapshots (the last section) write every live item into one file, in
 * the stored-key layout the RocksDB backend uses, so either backend can be
 * restored from either kind of snapshot.
 *
 * Library code: returns codes, never logs. Not thread-safe (one backend per
 * subtask, used by its task thread).
 */
#include "keyed_state_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#define MIN_SLOTS   16u
#define ENTRY_MAX   0xfffffff0u      /* value bytes of one entry (uint32) */
#define ELEM_HDR    4u               /* length of a packed list element */

typedef struct entry {
    uint32_t klen;
    uint32_t vlen;
    uint32_t vcap;                   /* room for the value after the key */
    uint16_t kg;
    char     data[];                 /* key bytes, then vcap value bytes */
} entry_t;

typedef struct slot {
    uint64_t hash;
    entry_t *e;                      /* NULL: empty */
} slot_t;

typedef struct table {
    slot_t *slots;
    size_t  nslots;                  /* a power of two */
    size_t  count;                   /* entries */
} table_t;

typedef struct mem_state {
    struct weir_state base;
    table_t           t;             /* (kg, key) -> value, list, or map */
    size_t            stored;        /* items (values, elements, map entries),
                                        expired ones not yet dropped included */
} mem_state_t;

typedef struct mem_backend {
    struct weir_state_backend base;
} mem_backend_t;

static const weir__state_ops_t mem_ops;

/* ---- entries ---------------------------------------------------------- */

static inline uint64_t
key_hash(int kg, const void *key, size_t klen)
{
    return XXH3_64bits_withSeed(key, klen, (uint64_t)kg * 0x9e3779b97f4a7c15ull + 1);
}

static inline bool
entry_is(const entry_t *e, int kg, const void *key, size_t klen)
{
    return e->kg == (uint16_t)kg && e->klen == klen &&
           (klen == 0 || memcmp(e->data, key, klen) == 0);
}

static inline char *
entry_val(entry_t *e)
{
    return e->data + e->klen;
}

/* Value capacity for a value of n bytes: some slack so that a value that
 * grows a little (a msgpack int crossing a width, one more list element) is
 * still updated in place. */
static size_t
value_cap(size_t n)
{
    size_t cap = n < 16 ? 16 : n + n / 4;

    cap = (cap + 7) & ~(size_t)7;
    return cap > ENTRY_MAX ? n : cap;
}

static entry_t *
entry_new(int kg, const void *key, size_t klen, size_t vlen)
{
    size_t cap = value_cap(vlen);
    entry_t *e = malloc(sizeof(*e) + klen + cap);

    if (e == NULL)
        return NULL;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    e->vcap = (uint32_t)cap;
    e->kg = (uint16_t)kg;
    if (klen > 0)
        memcpy(e->data, key, klen);
    return e;
}

static inline table_t *
map_of(const entry_t *e)
{
    table_t *t;

    memcpy(&t, e->data + e->klen, sizeof(t));
    return t;
}

static inline int64_t
ts_of(const char *p)
{
    return (int64_t)weir__be64_get(p);
}

/* ---- tables ----------------------------------------------------------- */

static int
tab_init(table_t *t)
{
    t->slots = calloc(MIN_SLOTS, sizeof(*t->slots));
    if (t->slots == NULL)
        return WEIR_ENOMEM;
    t->nslots = MIN_SLOTS;
    t->count = 0;
    return 0;
}

/* Frees t's slots and plain entries (an outer map table frees its inner
 * tables first, see entry_free). */
static void
tab_free(table_t *t)
{
    for (size_t i = 0; i < t->nslots; i++)
        free(t->slots[i].e);
    free(t->slots);
    t->slots = NULL;
    t->nslots = t->count = 0;
}

/* Slot index of (kg, key), or of the empty slot where it would go. */
static size_t
tab_find(const table_t *t, uint64_t h, int kg, const void *key, size_t klen)
{
    size_t mask = t->nslots - 1, i = (size_t)h & mask;

    for (;;) {
        const slot_t *sl = &t->slots[i];
        if (sl->e == NULL || (sl->hash == h && entry_is(sl->e, kg, key, klen)))
            return i;
        i = (i + 1) & mask;
    }
}

/* Unlinks the entry at slot i (the caller frees it). Backward shift: later
 * members of the probe run move into the hole when it lies on their way
 * from their home slot. */
static void
tab_remove_at(table_t *t, size_t i)
{
    size_t mask = t->nslots - 1, j;

    t->slots[i].e = NULL;
    t->count--;
    for (j = (i + 1) & mask; t->slots[j].e != NULL; j = (j + 1) & mask) {
        size_t home = (size_t)t->slots[j].hash & mask;
        /* the entry at j may fill i when home is not in (i, j] cyclically */
        bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            t->slots[i] = t->slots[j];
            t->slots[j].e = NULL;
            i = j;
        }
    }
}

/* The smallest table that holds n entries at most half full. */
static size_t
slots_for(size_t n)
{
    size_t s = MIN_SLOTS;

    while (s < 2 * n)
        s *= 2;
    return s;
}

static void
place_all(slot_t *dst, size_t n, const slot_t *src, size_t srcn)
{
    size_t mask = n - 1;

    for (size_t i = 0; i < srcn; i++) {
        size_t j;

        if (src[i].e == NULL)
            continue;
        for (j = (size_t)src[i].hash & mask; dst[j].e != NULL; j = (j + 1) & mask)
            ;
        dst[j] = src[i];
    }
}

/* keep() decides an entry's fate in a rebuild: true keeps it (possibly
 * shrunk in place), false means it was freed. */
typedef bool (*keep_fn)(entry_t *e, void *arg);

/* Moves every entry that keep (NULL: all) keeps into a fresh slot array
 * with room for 'extra' more entries. On failure nothing has changed. */
static int
tab_rebuild(table_t *t, size_t extra, keep_fn keep, void *arg)
{
    size_t n = slots_for(t->count + extra), kept = 0, m;
    slot_t *slots = calloc(n, sizeof(*slots)), *small;

    if (slots == NULL)
        return WEIR_ENOMEM;
    for (size_t i = 0; i < t->nslots; i++) {
        slot_t *old = &t->slots[i];
        size_t j;

        if (old->e == NULL)
            continue;
        if (keep != NULL && !keep(old->e, arg))
            continue;
        for (j = (size_t)old->hash & (n - 1); slots[j].e != NULL; j = (j + 1) & (n - 1))
            ;
        slots[j] = *old;
        kept++;
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = n;
    t->count = kept;

    /* many were dropped: give the memory back (failing to is harmless) */
    m = slots_for(kept + extra);
    if (m < n && (small = calloc(m, sizeof(*small))) != NULL) {
        place_all(small, m, slots, n);
        free(slots);
        t->slots = small;
        t->nslots = m;
    }
    return 0;
}

/* ---- items and purging ------------------------------------------------ */

static size_t
list_items(const entry_t *e, size_t hdr)
{
    const char *p = e->data + e->klen, *end = p + e->vlen;
    size_t n = 0;

    while (p < end) {
        uint32_t len;
        memcpy(&len, p, ELEM_HDR);
        p += ELEM_HDR + hdr + len;
        n++;
    }
    return n;
}

/* Removes the expired elements of a list entry in place; returns how many. */
static size_t
list_compact(entry_t *e, int64_t ttl, int64_t now)
{
    char *base = entry_val(e), *r = base, *w = base, *end = base + e->vlen;
    size_t removed = 0;

    while (r < end) {
        uint32_t len;
        size_t sz;

        memcpy(&len, r, ELEM_HDR);
        sz = ELEM_HDR + WEIR__TS_LEN + len;
        if (weir__state_expired(ts_of(r + ELEM_HDR), ttl, now)) {
            removed++;
        } else {
            if (w != r)
                memmove(w, r, sz);
            w += sz;
        }
        r += sz;
    }
    e->vlen = (uint32_t)(w - base);
    return removed;
}

/* Items an entry of s stands for. */
static size_t
entry_items(const mem_state_t *m, const entry_t *e)
{
    switch (m->base.kind) {
    case WEIR__STATE_LIST: return list_items(e, m->base.ttl_us > 0 ? WEIR__TS_LEN : 0);
    case WEIR__STATE_MAP:  return map_of(e)->count;
    default:               return 1;
    }
}

static void
entry_free(const mem_state_t *m, entry_t *e)
{
    if (m->base.kind == WEIR__STATE_MAP) {
        table_t *in = map_of(e);
        tab_free(in);
        free(in);
    }
    free(e);
}

typedef struct purge {
    mem_state_t *m;
    int64_t      now;
    int          drop_first;         /* key groups dropped; first > last: none */
    int          drop_last;
} purge_t;

static inline bool
in_drop(const purge_t *p, const entry_t *e)
{
    return e->kg >= p->drop_first && e->kg <= p->drop_last;
}

/* An entry holding one [write time][value] item: a value, or a map entry. */
static bool
keep_item(entry_t *e, void *arg)
{
    purge_t *p = arg;
    int64_t ttl = p->m->base.ttl_us;

    if (in_drop(p, e) || (ttl > 0 && weir__state_expired(ts_of(entry_val(e)), ttl, p->now))) {
        free(e);
        p->m->stored--;
        return false;
    }
    return true;
}

static bool
keep_list(entry_t *e, void *arg)
{
    purge_t *p = arg;
    int64_t ttl = p->m->base.ttl_us;

    if (in_drop(p, e)) {
        p->m->stored -= list_items(e, ttl > 0 ? WEIR__TS_LEN : 0);
        free(e);
        return false;
    }
    if (ttl > 0) {
        p->m->stored -= list_compact(e, ttl, p->now);
        if (e->vlen == 0) {
            free(e);
            return false;
        }
    }
    return true;
}

static bool
keep_map(entry_t *e, void *arg)
{
    purge_t *p = arg;
    purge_t inner = { p->m, p->now, 1, 0 };  /* map entries: no key groups */
    table_t *in = map_of(e);

    if (!in_drop(p, e) && p->m->base.ttl_us > 0)
        (void)tab_rebuild(in, 0, keep_item, &inner);     /* ENOMEM: purge later */
    if (in_drop(p, e) || in->count == 0) {
        p->m->stored -= in->count;
        entry_free(p->m, e);
        return false;
    }
    return true;
}

static keep_fn
outer_keep(const mem_state_t *m)
{
    switch (m->base.kind) {
    case WEIR__STATE_LIST: return keep_list;
    case WEIR__STATE_MAP:  return keep_map;
    default:               return keep_item;
    }
}

/* Rebuilds the outer table of m, dropping expired items and the key groups
 * [drop_first, drop_last]; 'extra' more entries will fit. */
static int
purge_state(mem_state_t *m, size_t extra, int drop_first, int drop_last)
{
    purge_t p = { m, m->base.ttl_us > 0 ? weir__state_now() : 0, drop_first, drop_last };

    return tab_rebuild(&m->t, extra, outer_keep(m), &p);
}

/* Makes room in t (m's outer table, or one of its inner map tables) for one
 * more entry. A TTL state drops its expired items in the same rebuild. */
static int
make_room(mem_state_t *m, table_t *t)
{
    purge_t p = { m, 0, 1, 0 };

    if ((t->count + 1) * 4 <= t->nslots * 3)
        return 0;
    if (m->base.ttl_us == 0)
        return tab_rebuild(t, 1, NULL, NULL);
    p.now = weir__state_now();
    return tab_rebuild(t, 1, t == &m->t ? outer_keep(m) : keep_item, &p);
}

/* Inserts a new entry (kg, key), known to be absent from t, with vlen value
 * bytes for the caller to fill. */
static int
tab_insert(mem_state_t *m, table_t *t, uint64_t h, int kg, const void *key, size_t klen,
           size_t vlen, entry_t **out)
{
    entry_t *e;
    size_t i;
    int rc;

    if ((rc = make_room(m, t)) != 0)
        return rc;
    if ((e = entry_new(kg, key, klen, vlen)) == NULL)
        return WEIR_ENOMEM;
    i = tab_find(t, h, kg, key, klen);
    t->slots[i].hash = h;
    t->slots[i].e = e;
    t->count++;
    *out = e;
    return 0;
}

/* Gives the entry at slot i of t room for vlen value bytes, keeping the
 * bytes it has; returns the entry (it may have moved). */
static int
entry_fit(table_t *t, size_t i, size_t vlen, entry_t **out)
{
    entry_t *e = t->slots[i].e;

    if (vlen > e->vcap) {
        size_t cap = value_cap(vlen);
        entry_t *ne = realloc(e, sizeof(*e) + e->klen + cap);
        if (ne == NULL)
            return WEIR_ENOMEM;
        ne->vcap = (uint32_t)cap;
        t->slots[i].e = e = ne;
    }
    *out = e;
    return 0;
}

/* Writes [write time][val] at p: the time now, or the 8 bytes at ts
 * (a restore keeps the write times of the snapshot). */
static inline void
put_item(char *p, size_t hdr, const char *ts, const void *val, size_t vlen)
{
    if (hdr > 0) {
        if (ts != NULL)
            memcpy(p, ts, WEIR__TS_LEN);
        else
            weir__be64_put(p, (uint64_t)weir__state_now());
    }
    if (vlen > 0)
        memmove(p + hdr, val, vlen);
}

/* ---- backend ---------------------------------------------------------- */

int
weir_state_backend_memory(int kg_first, int kg_last, weir_state_backend_t **out)
{
    mem_backend_t *b;

    if (out == NULL || kg_first < 0 || kg_last < kg_first || kg_last > WEIR_STATE_MAX_KEY_GROUP)
        return WEIR_EINVAL;
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return WEIR_ENOMEM;
    b->base.ops = &mem_ops;
    b->base.kg_first = kg_first;
    b->base.kg_last = kg_last;
    *out = &b->base;             /* caller owns: weir_state_backend_destroy() */
    return 0;
}

static int
mem_state_open(weir_state_backend_t *b, const char *name, int kind, int64_t ttl_us,
               weir_state_t **out)
{
    mem_state_t *m = calloc(1, sizeof(*m));

    if (m == NULL)
        return WEIR_ENOMEM;
    m->base.kind = kind;         /* entry_free needs it before the caller sets it */
    if (tab_init(&m->t) != 0) {
        free(m);
        return WEIR_ENOMEM;
    }
    *out = &m->base;
    return 0;
}

/* A new duration applies to the write times already stored. */
static int
mem_state_set_ttl(weir_state_t *s, int64_t ttl_us)
{
    return 0;
}

static void
mem_state_free(weir_state_t *s)
{
    mem_state_t *m = (mem_state_t *)s;

    if (m->base.kind == WEIR__STATE_MAP) {
        for (size_t i = 0; i < m->t.nslots; i++) {
            if (m->t.slots[i].e != NULL) {
                entry_free(m, m->t.slots[i].e);
                m->t.slots[i].e = NULL;
            }
        }
    }
    tab_free(&m->t);
    free(m);
}

static void
mem_close(weir_state_backend_t *b)
{
    free(b);
}

static int
mem_drop(weir_state_backend_t *b)
{
    free(b);
    return 0;
}

static int
mem_drop_key_groups(weir_state_backend_t *b, int kg_first, int kg_last)
{
    int rc;

    for (weir_state_t *s = b->states; s != NULL; s = s->next)
        if ((rc = purge_state((mem_state_t *)s, 0, kg_first, kg_last)) != 0)
            return weir__state_fail(b, rc, "state '%s': out of memory dropping key groups",
                                    s->name);
    return 0;
}

static int
mem_compact(weir_state_backend_t *b)
{
    int rc;

    for (weir_state_t *s = b->states; s != NULL; s = s->next)
        if ((rc = purge_state((mem_state_t *)s, 0, 1, 0)) != 0)
            return weir__state_fail(b, rc, "state '%s': out of memory compacting", s->name);
    return 0;
}

/* ---- value state ------------------------------------------------------ */

static int
mem_get(weir_state_t *s, int kg, const void *key, size_t klen, weir_buf_t *out, int *found)
{
    mem_state_t *m = (mem_state_t *)s;
    size_t hdr = s->ttl_us > 0 ? WEIR__TS_LEN : 0, i;
    entry_t *e;

    i = tab_find(&m->t, key_hash(kg, key, klen), kg, key, klen);
    if ((e = m->t.slots[i].e) == NULL)
        return 0;
    if (hdr > 0 && weir__state_expired(ts_of(entry_val(e)), s->ttl_us, weir__state_now())) {
        tab_remove_at(&m->t, i);
        free(e);
        m->stored--;
        return 0;
    }
    *found = 1;
    return weir_buf_append(out, entry_val(e) + hdr, e->vlen - hdr);
}

/* mem_put with the write time given (NULL: now). */
static int
store_value(weir_state_t *s, int kg, const void *key, size_t klen, const char *ts,
            const void *val, size_t vlen)
{
    mem_state_t *m = (mem_state_t *)s;
    size_t hdr = s->ttl_us > 0 ? WEIR__TS_LEN : 0, i;
    uint64_t h = key_hash(kg, key, klen);
    entry_t *e;
    int rc;

    i = tab_find(&m->t, h, kg, key, klen);
    if (m->t.slots[i].e != NULL) {
        if ((rc = entry_fit(&m->t, i, hdr + vlen, &e)) != 0)
            return rc;
    } else {
        if ((rc = tab_insert(m, &m->t, h, kg, key, klen, hdr + vlen, &e)) != 0)
            return rc;
        m->stored++;
    }
    put_item(entry_val(e), hdr, ts, val, vlen);
    e->vlen = (uint32_t)(hdr + vlen);
    return 0;
}

static int
mem_put(weir_state_t *s, int kg, const void *key, size_t klen, const void *val, size_t vlen)
{
    return store_value(s, kg, key, klen, NULL, val, vlen);
}

static int
mem_clear(weir_state_t *s, int kg, const void *key, size_t klen)
{
    mem_state_t *m = (mem_state_t *)s;
    size_t i = tab_find(&m->t, key_hash(kg, key, klen), kg, key, klen);
    entry_t *e = m->t.slots[i].e;

    if (e == NULL)
        return 0;                /* clearing a missing key is not an error */
    tab_remove_at(&m->t, i);
    m->stored -= entry_items(m, e);
    entry_free(m, e);
    return 0;
}

static int
mem_count(weir_state_t *s, size_t *n)
{
    mem_state_t *m = (mem_state_t *)s;
    int64_t ttl = s->ttl_us, now;
    size_t live = 0;

    if (ttl == 0) {
        *n = m->stored;
        return 0;
    }
    now = weir__state_now();
    for (size_t i = 0; i < m->t.nslots; i++) {
        entry_t *e = m->t.slots[i].e;

        if (e == NULL)
            continue;
        if (s->kind == WEIR__STATE_VALUE) {
            live += !weir__state_expired(ts_of(entry_val(e)), ttl, now);
        } else if (s->kind == WEIR__STATE_LIST) {
            const char *p = entry_val(e), *end = p + e->vlen;
            while (p < end) {
                uint32_t len;
                memcpy(&len, p, ELEM_HDR);
                live += !weir__state_expired(ts_of(p + ELEM_HDR), ttl, now);
                p += ELEM_HDR + WEIR__TS_LEN + len;
            }
        } else {
            table_t *in = map_of(e);
            for (size_t j = 0; j < in->nslots; j++)
                if (in->slots[j].e != NULL)
                    live += !weir__state_expired(ts_of(entry_val(in->slots[j].e)), ttl, now);
        }
    }
    *n = live;
    return 0;
}

/* Visits the live elements of a list entry; counts the expired ones. */
static int
visit_list(const mem_state_t *m, entry_t *e, int64_t now, size_t *expired,
           weir_state_elem_cb ecb, weir_state_visit_cb vcb, void *arg)
{
    int64_t ttl = m->base.ttl_us;
    size_t hdr = ttl > 0 ? WEIR__TS_LEN : 0;
    const char *p = entry_val(e), *end = p + e->vlen;
    int rc;

    while (p < end) {
        uint32_t len;
        const char *val;

        memcpy(&len, p, ELEM_HDR);
        val = p + ELEM_HDR + hdr;
        if (hdr > 0 && weir__state_expired(ts_of(p + ELEM_HDR), ttl, now)) {
            (*expired)++;
        } else {
            rc = ecb != NULL ? ecb(arg, val, len) : vcb(arg, e->kg, e->data, e->klen, val, len);
            if (rc != 0)
                return rc;
        }
        p = val + len;
    }
    return 0;
}

/* cb must not write to s while the scan runs (documented in the header). */
static int
mem_scan(weir_state_t *s, int kg_first, int kg_last, weir_state_visit_cb cb, void *arg)
{
    mem_state_t *m = (mem_state_t *)s;
    int64_t ttl = s->ttl_us, now = ttl > 0 ? weir__state_now() : 0;
    size_t hdr = ttl > 0 ? WEIR__TS_LEN : 0, expired = 0;
    int rc = 0;

    for (size_t i = 0; i < m->t.nslots && rc == 0; i++) {
        entry_t *e = m->t.slots[i].e;

        if (e == NULL || e->kg < kg_first || e->kg > kg_last)
            continue;
        if (s->kind == WEIR__STATE_LIST) {
            rc = visit_list(m, e, now, &expired, NULL, cb, arg);
        } else if (hdr > 0 && weir__state_expired(ts_of(entry_val(e)), ttl, now)) {
            expired++;
        } else {
            rc = cb(arg, e->kg, e->data, e->klen, entry_val(e) + hdr, e->vlen - hdr);
        }
    }
    /* the reads met expired items: drop them now that no one walks the table */
    if (expired > 0)
        (void)purge_state(m, 0, 1, 0);               /* ENOMEM: dropped later */
    return rc;
}

/* ---- list state ------------------------------------------------------- */

/* mem_list_add with the write time given (NULL: now). */
static int
store_elem(weir_state_t *s, int kg, const void *key, size_t klen, const char *ts,
           const void *val, size_t vlen)
{
    mem_state_t *m = (mem_state_t *)s;
    size_t hdr = s->ttl_us > 0 ? WEIR__TS_LEN : 0, elen = ELEM_HDR + hdr + vlen, i, at;
    uint64_t h = key_hash(kg, key, klen);
    uint32_t len32 = (uint32_t)vlen;
    entry_t *e;
    int rc;

    i = tab_find(&m->t, h, kg, key, klen);
    if ((e = m->t.slots[i].e) != NULL) {
        at = e->vlen;
        if (elen > ENTRY_MAX - at)
            return weir__state_fail(s->b, WEIR_E2BIG, "state '%s': a list over %u bytes "
                                    "does not fit the memory backend", s->name, ENTRY_MAX);
        if ((rc = entry_fit(&m->t, i, at + elen, &e)) != 0)
            return rc;
    } else {
        at = 0;
        if ((rc = tab_insert(m, &m->t, h, kg, key, klen, elen, &e)) != 0)
            return rc;
    }
    memcpy(entry_val(e) + at, &len32, ELEM_HDR);
    put_item(entry_val(e) + at + ELEM_HDR, hdr, ts, val, vlen);
    e->vlen = (uint32_t)(at + elen);
    m->stored++;
    return 0;
}

static int
mem_list_add(weir_state_t *s, int kg, const void *key, size_t klen, const void *val, size_t vlen)
{
    return store_elem(s, kg, key, klen, NULL, val, vlen);
}

static int
mem_list_get(weir_state_t *s, int kg, const void *key, size_t klen, weir_state_elem_cb cb, void *arg)
{
    mem_state_t *m = (mem_state_t *)s;
    size_t i = tab_find(&m->t, key_hash(kg, key, klen), kg, key, klen), expired = 0;
    entry_t *e = m->t.slots[i].e;
    int64_t now;

    if (e == NULL)
        return 0;
    now = s->ttl_us > 0 ? weir__state_now() : 0;
    if (s->ttl_us > 0) {
        /* expired elements go before anyone sees the list */
        m->stored -= list_compact(e, s->ttl_us, now);
        if (e->vlen == 0) {
            tab_remove_at(&m->t, i);
            free(e);
            return 0;
        }
    }
    return visit_list(m, e, now, &expired, cb, NULL, arg);
}

/* ---- map state -------------------------------------------------------- */

/* mem_map_put with the write time given (NULL: now). */
static int
store_map_entry(weir_state_t *s, int kg, const void *key, size_t klen, const void *ukey,
                size_t uklen, const char *ts, const void *val, size_t vlen)
{
    mem_state_t *m = (mem_state_t *)s;
    size_t hdr = s->ttl_us > 0 ? WEIR__TS_LEN : 0, i, j;
    uint64_t h = key_hash(kg, key, klen), uh = key_hash(0, ukey, uklen);
    entry_t *e, *ue;
    table_t *in;
    int rc;

    i = tab_find(&m->t, h, kg, key, klen);
    if ((e = m->t.slots[i].e) != NULL) {
        in = map_of(e);
    } else {
        if ((in = malloc(sizeof(*in))) == NULL)
            return WEIR_ENOMEM;
        if (tab_init(in) != 0) {
            free(in);
            return WEIR_ENOMEM;
        }
        if ((rc = tab_insert(m, &m->t, h, kg, key, klen, sizeof(in), &e)) != 0) {
            tab_free(in);
            free(in);
            return rc;
        }
        memcpy(entry_val(e), &in, sizeof(in));
    }

    j = tab_find(in, uh, 0, ukey, uklen);
    if (in->slots[j].e != NULL) {
        rc = entry_fit(in, j, hdr + vlen, &ue);
    } else {
        rc = tab_insert(m, in, uh, 0, ukey, uklen, hdr + vlen, &ue);
        if (rc == 0)
            m->stored++;
    }
    if (rc != 0) {
        if (in->count == 0)      /* a map made for this put: take it back */
            (void)mem_clear(s, kg, key, klen);
        return rc;
    }
    put_item(entry_val(ue), hdr, ts, val, vlen);
    ue->vlen = (uint32_t)(hdr + vlen);
    return 0;
}

static int
mem_map_put(weir_state_t *s, int kg, const void *key, size_t klen,
            const void *ukey, size_t uklen, const void *val, size_t vlen)
{
    return store_map_entry(s, kg, key, klen, ukey, uklen, NULL, val, vlen);
}

/* Finds the map of (kg, key): its outer slot and table, or NULL. */
static table_t *
map_find(mem_state_t *m, int kg, const void *key, size_t klen, size_t *slot)
{
    size_t i = tab_find(&m->t, key_hash(kg, key, klen), kg, key, klen);

    *slot = i;
    return m->t.slots[i].e == NULL ? NULL : map_of(m->t.slots[i].e);
}

/* Removes the entry at slot j of the map at outer slot i, and the map
 * itself when that was its last entry. */
static void
map_remove_at(mem_state_t *m, size_t i, table_t *in, size_t j)
{
    entry_t *ue = in->slots[j].e;

    tab_remove_at(in, j);
    free(ue);
    m->stored--;
    if (in->count == 0) {
        entry_t *e = m->t.slots[i].e;
        tab_remove_at(&m->t, i);
        entry_free(m, e);
    }
}

static int
mem_map_get(weir_state_t *s, int kg, const void *key, size_t klen,
            const void *ukey, size_t uklen, weir_buf_t *out, int *found)
{
    mem_state_t *m = (mem_state_t *)s;
    size_t hdr = s->ttl_us > 0 ? WEIR__TS_LEN : 0, i, j;
    table_t *in = map_find(m, kg, key, klen, &i);
    entry_t *ue;

    if (in == NULL)
        return 0;
    j = tab_find(in, key_hash(0, ukey, uklen), 0, ukey, uklen);
    if ((ue = in->slots[j].e) == NULL)
        return 0;
    if (hdr > 0 && weir__state_expired(ts_of(entry_val(ue)), s->ttl_us, weir__state_now())) {
        map_remove_at(m, i, in, j);
        return 0;
    }
    *found = 1;
    return weir_buf_append(out, entry_val(ue) + hdr, ue->vlen - hdr);
}

static int
mem_map_del(weir_state_t *s, int kg, const void *key, size_t klen, const void *ukey, size_t uklen)
{
    mem_state_t *m = (mem_state_t *)s;
    size_t i, j;
    table_t *in = map_find(m, kg, key, klen, &i);

    if (in == NULL)
        return 0;
    j = tab_find(in, key_hash(0, ukey, uklen), 0, ukey, uklen);
    if (in->slots[j].e != NULL)
        map_remove_at(m, i, in, j);
    return 0;
}

/* Visits the live entries of one map; counts the expired ones. */
static int
visit_map(const mem_state_t *m, const entry_t *e, int64_t now, size_t *expired,
          weir_state_visit_cb icb, weir_state_map_visit_cb scb, void *arg)
{
    int64_t ttl = m->base.ttl_us;
    size_t hdr = ttl > 0 ? WEIR__TS_LEN : 0;
    table_t *in = map_of(e);
    int rc;

    for (size_t j = 0; j < in->nslots; j++) {
        entry_t *ue = in->slots[j].e;
        const char *val;

        if (ue == NULL)
            continue;
        val = entry_val(ue);
        if (hdr > 0 && weir__state_expired(ts_of(val), ttl, now)) {
            (*expired)++;
            continue;
        }
        rc = icb != NULL ? icb(arg, e->kg, ue->data, ue->klen, val + hdr, ue->vlen - hdr)
                         : scb(arg, e->kg, e->data, e->klen, ue->data, ue->klen,
                               val + hdr, ue->vlen - hdr);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int
mem_map_iter(weir_state_t *s, int kg, const void *key, size_t klen, weir_state_visit_cb cb, void *arg)
{
    mem_state_t *m = (mem_state_t *)s;
    size_t i, expired = 0;
    table_t *in = map_find(m, kg, key, klen, &i);
    int rc;

    if (in == NULL)
        return 0;
    rc = visit_map(m, m->t.slots[i].e, s->ttl_us > 0 ? weir__state_now() : 0, &expired,
                   cb, NULL, arg);
    if (expired > 0) {
        purge_t p = { m, weir__state_now(), 1, 0 };
        (void)tab_rebuild(in, 0, keep_item, &p);     /* ENOMEM: dropped later */
        if (in->count == 0)
            (void)mem_clear(s, kg, key, klen);
    }
    return rc;
}

static int
mem_map_scan(weir_state_t *s, int kg_first, int kg_last, weir_state_map_visit_cb cb, void *arg)
{
    mem_state_t *m = (mem_state_t *)s;
    int64_t now = s->ttl_us > 0 ? weir__state_now() : 0;
    size_t expired = 0;
    int rc = 0;

    for (size_t i = 0; i < m->t.nslots && rc == 0; i++) {
        entry_t *e = m->t.slots[i].e;

        if (e != NULL && e->kg >= kg_first && e->kg <= kg_last)
            rc = visit_map(m, e, now, &expired, NULL, cb, arg);
    }
    if (expired > 0)
        (void)purge_state(m, 0, 1, 0);               /* ENOMEM: dropped later */
    return rc;
}

/* ---- snapshots ---------------------------------------------------------
 *
 * A snapshot of the memory backend is one file, "entries", written in one
 * pass over the tables (nothing in them changes: expired items are left
 * out, not purged), through a 1 MiB buffer, then fsync'ed. Numbers are
 * big-endian:
 *
 *   "WEIRMEM1"                             magic and format version
 *   'S' [state index: 4]                   the entries of state i follow
 *                                          (index into the metadata's list)
 *   'E' [klen: 4][stored key][vlen: 4][stored value]
 *   ...
 *   'Z' [entries: 8][checksum: 8]          XXH3-64 of every byte before it
 *
 * An entry is what the RocksDB backend would store: the stored key of
 * keyed_state.h (a list element's sequence number is its index in the
 * list, a map entry's suffix its map key) and the stored value, write time
 * first with TTL. So one reader of entries serves both kinds of snapshot,
 * and a restore into either backend does not care where they came from.
 * A reader checks the checksum before it hands out a single entry: a torn
 * or damaged file is refused whole.
 */

#define SNAP_MAGIC      "WEIRMEM1"
#define SNAP_MAGIC_LEN  8
#define SNAP_BUF        (1u << 20)

typedef struct snap_writer {
    int           fd;
    const char   *path;
    char         *buf;
    size_t        len;
    XXH3_state_t *hash;
    uint64_t      entries;
    int           rc;                /* the first failure; later writes do nothing */
    weir_err_t   *err;
} snap_writer_t;

static void
w_flush(snap_writer_t *w)
{
    size_t off = 0;

    while (w->rc == 0 && off < w->len) {
        ssize_t n = write(w->fd, w->buf + off, w->len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            w->rc = weir_err_set(w->err, WEIR_EIO, "cannot write %s: %s", w->path,
                                 n < 0 ? strerror(errno) : "short write");
        else
            off += (size_t)n;
    }
    w->len = 0;
}

/* Appends n bytes, hashed unless the checksum itself. */
static void
w_put(snap_writer_t *w, const void *p, size_t n, bool hash)
{
    const char *c = p;

    if (w->rc != 0 || n == 0)
        return;
    if (hash)
        XXH3_64bits_update(w->hash, p, n);
    while (n > 0 && w->rc == 0) {
        size_t k = SNAP_BUF - w->len < n ? SNAP_BUF - w->len : n;
        memcpy(w->buf + w->len, c, k);
        w->len += k;
        c += k;
        n -= k;
        if (w->len == SNAP_BUF)
            w_flush(w);
    }
}

static void
w_u32(snap_writer_t *w, uint32_t v)
{
    unsigned char b[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 8), (unsigned char)v };
    w_put(w, b, 4, true);
}

static void
w_tag(snap_writer_t *w, char tag)
{
    w_put(w, &tag, 1, true);
}

/* One 'E' record: [prefix of kg, klen][key][suffix] and [val]. */
static void
w_entry(snap_writer_t *w, const entry_t *e, const void *suffix, size_t slen,
        const void *val, size_t vlen)
{
    unsigned char pre[WEIR__PREFIX_MAX];
    size_t plen = weir__key_prefix(pre, e->kg, e->klen);

    w_tag(w, 'E');
    w_u32(w, (uint32_t)(plen + e->klen + slen));
    w_put(w, pre, plen, true);
    w_put(w, e->data, e->klen, true);
    w_put(w, suffix, slen, true);
    w_u32(w, (uint32_t)vlen);
    w_put(w, val, vlen, true);
    w->entries++;
}

/* Every live item of m. */
static void
w_state(snap_writer_t *w, const mem_state_t *m, int64_t now)
{
    int64_t ttl = m->base.ttl_us;
    size_t hdr = ttl > 0 ? WEIR__TS_LEN : 0;

    for (size_t i = 0; i < m->t.nslots && w->rc == 0; i++) {
        entry_t *e = m->t.slots[i].e;

        if (e == NULL)
            continue;
        if (m->base.kind == WEIR__STATE_VALUE) {
            if (hdr == 0 || !weir__state_expired(ts_of(entry_val(e)), ttl, now))
                w_entry(w, e, NULL, 0, entry_val(e), e->vlen);
        } else if (m->base.kind == WEIR__STATE_LIST) {
            const char *p = entry_val(e), *end = p + e->vlen;
            uint64_t seq = 0;

            while (p < end) {
                uint32_t len;
                char sq[8];

                memcpy(&len, p, ELEM_HDR);
                if (hdr == 0 || !weir__state_expired(ts_of(p + ELEM_HDR), ttl, now)) {
                    weir__be64_put(sq, seq++);
                    w_entry(w, e, sq, sizeof(sq), p + ELEM_HDR, hdr + len);
                }
                p += ELEM_HDR + hdr + len;
            }
        } else {
            table_t *in = map_of(e);

            for (size_t j = 0; j < in->nslots; j++) {
                entry_t *ue = in->slots[j].e;

                if (ue != NULL &&
                    (hdr == 0 || !weir__state_expired(ts_of(entry_val(ue)), ttl, now)))
                    w_entry(w, e, ue->data, ue->klen, entry_val(ue), ue->vlen);
            }
        }
    }
}

static int
mem_snapshot(weir_state_backend_t *b, const char *dir, weir__snap_meta_t *meta, weir_err_t *err)
{
    snap_writer_t w = { .fd = -1, .err = err };
    char path[PATH_MAX], sum[8], cnt[8];
    int64_t now = weir__state_now();
    uint32_t idx = 0;
    int rc;

    if (snprintf(path, sizeof(path), "%s/%s", dir, WEIR__SNAP_ENTRIES) >= (int)sizeof(path))
        return weir_err_set(err, WEIR_EINVAL, "snapshot path too long: %s", dir);
    for (weir_state_t *s = b->states; s != NULL; s = s->next)
        if (weir__snap_meta_add(meta, s->name, s->kind, s->ttl_us) != 0)
            return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    meta->backend = WEIR__SNAP_MEMORY;
    meta->list_seq = 0;              /* lists are packed, not numbered */

    w.path = path;
    w.buf = malloc(SNAP_BUF);
    w.hash = XXH3_createState();
    if (w.buf == NULL || w.hash == NULL) {
        rc = weir_err_set(err, WEIR_ENOMEM, "out of memory");
        goto done;
    }
    XXH3_64bits_reset(w.hash);
    w.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (w.fd < 0) {
        rc = weir_err_set(err, WEIR_EIO, "cannot create %s: %s", path, strerror(errno));
        goto done;
    }
    w_put(&w, SNAP_MAGIC, SNAP_MAGIC_LEN, true);
    /* the metadata lists the states in the same order: index i is states[i] */
    for (weir_state_t *s = b->states; s != NULL && w.rc == 0; s = s->next) {
        w_tag(&w, 'S');
        w_u32(&w, idx++);
        w_state(&w, (const mem_state_t *)s, now);
    }
    w_tag(&w, 'Z');
    weir__be64_put(cnt, w.entries);
    w_put(&w, cnt, sizeof(cnt), true);
    weir__be64_put(sum, XXH3_64bits_digest(w.hash));
    w_put(&w, sum, sizeof(sum), false);
    w_flush(&w);
    if ((rc = w.rc) == 0 && fsync(w.fd) != 0)
        rc = weir_err_set(err, WEIR_EIO, "cannot fsync %s: %s", path, strerror(errno));

done:
    if (w.fd >= 0)
        close(w.fd);
    free(w.buf);
    XXH3_freeState(w.hash);
    return rc;
}

static inline uint32_t
be32_get(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Walks the records of a file whose checksum matched. */
static int
read_records(const unsigned char *d, size_t size, const char *path,
             const weir__snap_meta_t *meta, int kg_first, int kg_last,
             const weir__snap_sink_t *sink, weir_err_t *err)
{
    size_t pos = SNAP_MAGIC_LEN, end = size - 8;     /* the checksum is last */
    uint64_t entries = 0;
    int64_t next = 0;                                /* the next state index */
    int rc;

    while (pos < end) {
        unsigned char tag = d[pos++];

        if (tag == 'S') {
            if (end - pos < 4 || be32_get(d + pos) != (uint32_t)next || next >= meta->nstates)
                goto corrupt;
            pos += 4;
            if ((rc = sink->state(sink->arg, (int)next++)) != 0)
                return rc;
        } else if (tag == 'E') {
            const unsigned char *key, *val;
            uint32_t klen, vlen;
            int kg;

            if (next == 0 || end - pos < 4)
                goto corrupt;
            klen = be32_get(d + pos);
            pos += 4;
            if (klen < 3 || end - pos < (size_t)klen + 4)
                goto corrupt;
            key = d + pos;
            pos += klen;
            vlen = be32_get(d + pos);
            pos += 4;
            if (end - pos < vlen)
                goto corrupt;
            val = d + pos;
            pos += vlen;
            entries++;
            kg = key[0] << 8 | key[1];
            if (kg < kg_first || kg > kg_last)
                continue;
            if ((rc = sink->entry(sink->arg, (const char *)key, klen, (const char *)val,
                                  vlen)) != 0)
                return rc;
        } else if (tag == 'Z') {
            if (end - pos != 8 || weir__be64_get(d + pos) != entries || next != meta->nstates)
                goto corrupt;
            return 0;
        } else {
            goto corrupt;
        }
    }
corrupt:
    return weir_err_set(err, WEIR_EPROTO, "snapshot file %s is corrupt (bad record at byte "
                        "%zu)", path, pos);
}

int
weir__mem_snapshot_read(const char *path, const weir__snap_meta_t *meta, int kg_first,
                        int kg_last, const weir__snap_sink_t *sink, weir_err_t *err)
{
    struct stat st;
    void *map;
    int fd, rc;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return weir_err_set(err, errno == ENOENT ? WEIR_EPROTO : WEIR_EIO,
                            "cannot open snapshot file %s: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        rc = weir_err_set(err, WEIR_EIO, "cannot stat %s: %s", path, strerror(errno));
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode) || st.st_size < SNAP_MAGIC_LEN + 1 + 8 + 8) {
        close(fd);
        return weir_err_set(err, WEIR_EPROTO, "snapshot file %s is truncated or not a file "
                            "(%lld bytes)", path, (long long)st.st_size);
    }
    map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return weir_err_set(err, WEIR_EIO, "cannot map %s: %s", path, strerror(errno));
    (void)madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);

    const unsigned char *d = map;
    size_t size = (size_t)st.st_size;
    if (memcmp(d, SNAP_MAGIC, SNAP_MAGIC_LEN) != 0)
        rc = weir_err_set(err, WEIR_EPROTO, "%s is not a memory state snapshot of this "
                          "format (bad magic)", path);
    else if (XXH3_64bits(d, size - 8) != weir__be64_get(d + size - 8))
        rc = weir_err_set(err, WEIR_EPROTO, "snapshot file %s is corrupt (checksum "
                          "mismatch)", path);
    else
        rc = read_records(d, size, path, meta, kg_first, kg_last, sink, err);
    munmap(map, size);
    return rc;
}

static int
mem_is_empty(weir_state_backend_t *b, bool *empty)
{
    *empty = true;
    for (weir_state_t *s = b->states; s != NULL; s = s->next)
        if (((mem_state_t *)s)->t.count > 0)
            *empty = false;
    return 0;
}

/* The caller checked the key (a key group of b, the suffix of s's kind) and
 * that a TTL value starts with its write time. */
static int
mem_restore_put(weir_state_t *s, const char *k, size_t n, const char *val, size_t vlen)
{
    size_t hdr = s->ttl_us > 0 ? WEIR__TS_LEN : 0, klen, slen;
    const char *key, *suffix, *ts = hdr > 0 ? val : NULL;
    int kg;

    if (weir__key_split(k, n, &kg, &key, &klen, &suffix, &slen) != 0)
        return WEIR_EPROTO;
    switch (s->kind) {
    case WEIR__STATE_VALUE:
        return store_value(s, kg, key, klen, ts, val + hdr, vlen - hdr);
    case WEIR__STATE_LIST:
        /* the elements of a key come in sequence order: appending keeps it */
        return store_elem(s, kg, key, klen, ts, val + hdr, vlen - hdr);
    default:
        return store_map_entry(s, kg, key, klen, suffix, slen, ts, val + hdr, vlen - hdr);
    }
}

static int
mem_restore_end(weir_state_backend_t *b, uint64_t list_seq, bool ok)
{
    return 0;
}

static const weir__state_ops_t mem_ops = {
    .state_open      = mem_state_open,
    .state_set_ttl   = mem_state_set_ttl,
    .state_free      = mem_state_free,
    .close           = mem_close,
    .drop            = mem_drop,
    .get             = mem_get,
    .put             = mem_put,
    .clear           = mem_clear,
    .count           = mem_count,
    .scan            = mem_scan,
    .list_add        = mem_list_add,
    .list_get        = mem_list_get,
    .map_put         = mem_map_put,
    .map_get         = mem_map_get,
    .map_del         = mem_map_del,
    .map_iter        = mem_map_iter,
    .map_scan        = mem_map_scan,
    .drop_key_groups = mem_drop_key_groups,
    .compact         = mem_compact,
    .snapshot        = mem_snapshot,
    .is_empty        = mem_is_empty,
    .restore_put     = mem_restore_put,
    .restore_end     = mem_restore_end,
};
