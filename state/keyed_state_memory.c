/* state/keyed_state_memory.c -- keyed state in hash tables, in memory.
 *
 * The in-memory backend of keyed_state.h. A backend is a short list of named
 * states; each state is one open-addressing hash table with linear probing.
 * A slot holds the entry's 64-bit hash (xxh3 of the user key, seeded with
 * the key group, so the same key bytes in two key groups are two entries)
 * and a pointer to the entry. An entry is one malloc holding its header, the
 * key bytes and the value bytes, and the value part has some slack: an
 * update whose value still fits is written in place, so the steady state of
 * a running aggregate (get, then put of the same key) allocates nothing.
 *
 * Deletion uses backward shifting instead of tombstones: the entries after
 * the removed one in its probe run move back when their home slot allows,
 * so lookups never wade through dead slots and the table never needs a
 * cleaning pass. The table doubles when it is three quarters full.
 *
 * Library code: returns codes, never logs. Not thread-safe (one backend per
 * subtask, used by its task thread).
 */
#include "keyed_state.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../runtime/core/error.h"

#define MIN_SLOTS   16u
#define MAX_KG      65535        /* the stored key prefix is 2 bytes */
#define MAX_LEN     0x7fffffffu

typedef struct entry {
    uint32_t klen;
    uint32_t vlen;
    uint32_t vcap;               /* room for the value after the key */
    uint16_t kg;
    char     data[];             /* key bytes, then vcap value bytes */
} entry_t;

typedef struct slot {
    uint64_t hash;
    entry_t *e;                  /* NULL: empty */
} slot_t;

struct weir_state {
    weir_state_t *next;          /* the backend's list */
    int           kg_first;      /* the backend's key groups */
    int           kg_last;
    char         *name;
    slot_t       *slots;
    size_t        nslots;        /* a power of two */
    size_t        count;
};

struct weir_state_backend {
    int           kg_first;
    int           kg_last;
    weir_state_t *states;
};

/* ---- backend ---------------------------------------------------------- */

int
weir_state_backend_memory(int kg_first, int kg_last, weir_state_backend_t **out)
{
    weir_state_backend_t *b;

    if (kg_first < 0 || kg_last < kg_first || kg_last > MAX_KG)
        return WEIR_EINVAL;
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return WEIR_ENOMEM;
    b->kg_first = kg_first;
    b->kg_last = kg_last;
    *out = b;                    /* caller owns: weir_state_backend_destroy() */
    return 0;
}

static void
state_free(weir_state_t *s)
{
    for (size_t i = 0; i < s->nslots; i++)
        free(s->slots[i].e);
    free(s->slots);
    free(s->name);
    free(s);
}

void
weir_state_backend_destroy(weir_state_backend_t *b)
{
    weir_state_t *s, *next;

    if (b == NULL)
        return;
    for (s = b->states; s != NULL; s = next) {
        next = s->next;
        state_free(s);
    }
    free(b);
}

int
weir_state_value(weir_state_backend_t *b, const char *name, weir_state_t **out)
{
    weir_state_t *s;

    if (b == NULL || name == NULL)
        return WEIR_EINVAL;
    for (s = b->states; s != NULL; s = s->next) {
        if (strcmp(s->name, name) == 0) {
            *out = s;
            return 0;
        }
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return WEIR_ENOMEM;
    s->name = strdup(name);
    s->slots = calloc(MIN_SLOTS, sizeof(*s->slots));
    if (s->name == NULL || s->slots == NULL) {
        free(s->name);
        free(s->slots);
        free(s);
        return WEIR_ENOMEM;
    }
    s->nslots = MIN_SLOTS;
    s->kg_first = b->kg_first;
    s->kg_last = b->kg_last;
    s->next = b->states;
    b->states = s;
    *out = s;                    /* borrowed: lives as long as b */
    return 0;
}

/* ---- the table -------------------------------------------------------- */

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

/* Slot index of (kg, key), or of the empty slot where it would go. */
static size_t
find_slot(const weir_state_t *s, uint64_t h, int kg, const void *key, size_t klen)
{
    size_t mask = s->nslots - 1, i = (size_t)h & mask;

    for (;;) {
        const slot_t *sl = &s->slots[i];
        if (sl->e == NULL || (sl->hash == h && entry_is(sl->e, kg, key, klen)))
            return i;
        i = (i + 1) & mask;
    }
}

static int
grow(weir_state_t *s)
{
    size_t n = s->nslots * 2, mask = n - 1;
    slot_t *slots = calloc(n, sizeof(*slots));

    if (slots == NULL)
        return WEIR_ENOMEM;
    for (size_t i = 0; i < s->nslots; i++) {
        slot_t *old = &s->slots[i];
        size_t j;

        if (old->e == NULL)
            continue;
        for (j = (size_t)old->hash & mask; slots[j].e != NULL; j = (j + 1) & mask)
            ;
        slots[j] = *old;
    }
    free(s->slots);
    s->slots = slots;
    s->nslots = n;
    return 0;
}

/* A key group outside the backend's range is a routing error upstream:
 * WEIR_ERANGE, so the caller can say so. */
static int
check_args(const weir_state_t *s, int kg, const void *key, size_t klen)
{
    if ((key == NULL && klen > 0) || klen > MAX_LEN)
        return WEIR_EINVAL;
    if (kg < s->kg_first || kg > s->kg_last)
        return WEIR_ERANGE;
    return 0;
}

/* Value capacity for a value of n bytes: some slack so that a value that
 * grows a little (a msgpack int crossing a width) is still updated in place. */
static size_t
value_cap(size_t n)
{
    size_t cap = n < 16 ? 16 : n + n / 4;

    cap = (cap + 7) & ~(size_t)7;
    return cap > MAX_LEN ? n : cap;
}

int
weir_state_get(weir_state_t *s, int kg, const void *key, size_t klen,
               weir_buf_t *out, int *found)
{
    uint64_t h;
    size_t i;
    const entry_t *e;
    int rc;

    if ((rc = check_args(s, kg, key, klen)) != 0)
        return rc;
    h = key_hash(kg, key, klen);
    i = find_slot(s, h, kg, key, klen);
    e = s->slots[i].e;
    if (e == NULL) {
        *found = 0;
        return 0;
    }
    *found = 1;
    return weir_buf_append(out, e->data + e->klen, e->vlen);
}

int
weir_state_put(weir_state_t *s, int kg, const void *key, size_t klen,
               const void *val, size_t vlen)
{
    uint64_t h;
    size_t i, cap;
    entry_t *e;
    int rc;

    if ((rc = check_args(s, kg, key, klen)) != 0)
        return rc;
    if ((val == NULL && vlen > 0) || vlen > MAX_LEN || klen + vlen > MAX_LEN)
        return WEIR_EINVAL;
    h = key_hash(kg, key, klen);
    i = find_slot(s, h, kg, key, klen);
    e = s->slots[i].e;
    if (e != NULL) {
        if (vlen > e->vcap) {
            cap = value_cap(vlen);
            entry_t *ne = realloc(e, sizeof(*e) + klen + cap);
            if (ne == NULL)
                return WEIR_ENOMEM;
            e = ne;
            e->vcap = (uint32_t)cap;
            s->slots[i].e = e;
        }
        if (vlen > 0)
            memmove(e->data + klen, val, vlen);
        e->vlen = (uint32_t)vlen;
        return 0;
    }

    /* a new entry: make room first, so the slot found stays valid */
    if ((s->count + 1) * 4 > s->nslots * 3) {
        if ((rc = grow(s)) != 0)
            return rc;
        i = find_slot(s, h, kg, key, klen);
    }
    cap = value_cap(vlen);
    e = malloc(sizeof(*e) + klen + cap);
    if (e == NULL)
        return WEIR_ENOMEM;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    e->vcap = (uint32_t)cap;
    e->kg = (uint16_t)kg;
    if (klen > 0)
        memcpy(e->data, key, klen);
    if (vlen > 0)
        memcpy(e->data + klen, val, vlen);
    s->slots[i].hash = h;
    s->slots[i].e = e;
    s->count++;
    return 0;
}

int
weir_state_del(weir_state_t *s, int kg, const void *key, size_t klen)
{
    size_t mask = s->nslots - 1, i, j;
    uint64_t h;
    int rc;

    if ((rc = check_args(s, kg, key, klen)) != 0)
        return rc;
    h = key_hash(kg, key, klen);
    i = find_slot(s, h, kg, key, klen);
    if (s->slots[i].e == NULL)
        return 0;                /* deleting a missing key is not an error */
    free(s->slots[i].e);
    s->slots[i].e = NULL;
    s->count--;

    /* Backward shift: move later members of the probe run into the hole
     * when the hole lies on their way from their home slot. */
    for (j = (i + 1) & mask; s->slots[j].e != NULL; j = (j + 1) & mask) {
        size_t home = (size_t)s->slots[j].hash & mask;
        /* the entry at j may fill i when home is not in (i, j] cyclically */
        bool movable = i <= j ? (home <= i || home > j) : (home <= i && home > j);
        if (movable) {
            s->slots[i] = s->slots[j];
            s->slots[j].e = NULL;
            i = j;
        }
    }
    return 0;
}

size_t
weir_state_count(const weir_state_t *s)
{
    return s == NULL ? 0 : s->count;
}

/* cb must not put or delete in s while the scan runs. */
int
weir_state_scan(weir_state_t *s, int kg_first, int kg_last, weir_state_visit_cb cb, void *arg)
{
    for (size_t i = 0; i < s->nslots; i++) {
        const entry_t *e = s->slots[i].e;
        int rc;

        if (e == NULL || e->kg < kg_first || e->kg > kg_last)
            continue;
        rc = cb(arg, e->kg, e->data, e->klen, e->data + e->klen, e->vlen);
        if (rc != 0)
            return rc;
    }
    return 0;
}
