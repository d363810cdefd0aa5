/* state/keyed_state.c -- the keyed state API in front of its backends.
 *
 * Operators call the functions of keyed_state.h; this file checks their
 * arguments once for every backend (key group inside the subtask's range,
 * lengths within limits, the state of the kind the call is for) and then
 * hands the call to the backend's table of operations. So the memory and
 * the RocksDB backends cannot drift apart in what they accept, and each
 * backend's code deals only with valid calls.
 *
 * It also keeps the registry of named states of a backend: the first ask
 * for a name creates the state (the backend may find it on disk), later
 * asks return the same state, after checking that the kind and the TTL
 * layout agree. And it owns the processing-time clock that TTL uses, which
 * tests replace to expire entries without sleeping.
 *
 * Library code: returns codes, never logs.
 */
#include "keyed_state_int.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef int64_t (*clock_fn)(void);

static _Atomic(clock_fn) state_clock;    /* NULL: the real clock */

/* ---- clock, messages -------------------------------------------------- */

void
weir_state_set_clock(int64_t (*now_us)(void))
{
    atomic_store(&state_clock, now_us);
}

int64_t
weir__state_now(void)
{
    clock_fn f = atomic_load(&state_clock);
    struct timespec ts;

    if (f != NULL)
        return f();
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int
weir__state_fail(weir_state_backend_t *b, int code, const char *fmt, ...)
{
    va_list ap;

    if (b != NULL) {
        va_start(ap, fmt);
        vsnprintf(b->errmsg, sizeof(b->errmsg), fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *
weir__state_kind_name(int kind)
{
    switch (kind) {
    case WEIR__STATE_VALUE: return "value";
    case WEIR__STATE_LIST:  return "list";
    case WEIR__STATE_MAP:   return "map";
    default:                return "unknown";
    }
}

const char *
weir_state_backend_error(const weir_state_backend_t *b)
{
    return b == NULL ? "" : b->errmsg;
}

/* ---- backends --------------------------------------------------------- */

static void
free_states(weir_state_backend_t *b)
{
    weir_state_t *s, *next;

    for (s = b->states; s != NULL; s = next) {
        next = s->next;
        free(s->name);
        b->ops->state_free(s);
    }
    b->states = NULL;
}

void
weir_state_backend_destroy(weir_state_backend_t *b)
{
    if (b == NULL)
        return;
    free_states(b);
    b->ops->close(b);
}

int
weir_state_backend_drop(weir_state_backend_t *b)
{
    if (b == NULL)
        return 0;
    free_states(b);
    return b->ops->drop(b);
}

static int
check_kg_range(weir_state_backend_t *b, int kg_first, int kg_last)
{
    if (kg_first < 0 || kg_last < kg_first || kg_last > WEIR_STATE_MAX_KEY_GROUP)
        return weir__state_fail(b, WEIR_EINVAL, "key group range [%d, %d] is not within [0, %d]",
                                kg_first, kg_last, WEIR_STATE_MAX_KEY_GROUP);
    return 0;
}

int
weir_state_drop_key_groups(weir_state_backend_t *b, int kg_first, int kg_last)
{
    int rc;

    if (b == NULL)
        return WEIR_EINVAL;
    if ((rc = check_kg_range(b, kg_first, kg_last)) != 0)
        return rc;
    return b->ops->drop_key_groups(b, kg_first, kg_last);
}

int
weir_state_backend_compact(weir_state_backend_t *b)
{
    if (b == NULL)
        return WEIR_EINVAL;
    return b->ops->compact(b);
}

/* ---- the registry of named states -------------------------------------- */

int
weir__state_open(weir_state_backend_t *b, const char *name, int kind, int64_t ttl_us,
                 weir_state_t **out)
{
    weir_state_t *s;
    size_t n;
    int rc;

    if (b == NULL || name == NULL || out == NULL)
        return WEIR_EINVAL;
    n = strlen(name);
    if (n == 0 || n > WEIR_STATE_NAME_MAX)
        return weir__state_fail(b, WEIR_EINVAL, "state name must be 1..%d bytes, not %zu",
                                WEIR_STATE_NAME_MAX, n);
    if (ttl_us < 0)
        return weir__state_fail(b, WEIR_EINVAL, "state '%s': negative TTL", name);

    for (s = b->states; s != NULL; s = s->next) {
        if (strcmp(s->name, name) != 0)
            continue;
        if (s->kind != kind)
            return weir__state_fail(b, WEIR_ETYPE, "state '%s' is a %s state, not a %s state",
                                    name, weir__state_kind_name(s->kind),
                                    weir__state_kind_name(kind));
        if ((s->ttl_us > 0) != (ttl_us > 0))
            return weir__state_fail(b, WEIR_ETYPE, "state '%s' was opened %s TTL; "
                                    "TTL cannot be turned %s", name,
                                    s->ttl_us > 0 ? "with" : "without",
                                    s->ttl_us > 0 ? "off" : "on");
        if (s->ttl_us != ttl_us) {
            if ((rc = b->ops->state_set_ttl(s, ttl_us)) != 0)
                return rc;
            s->ttl_us = ttl_us;
        }
        *out = s;
        return 0;
    }

    if ((rc = b->ops->state_open(b, name, kind, ttl_us, &s)) != 0)
        return rc;
    if ((s->name = strdup(name)) == NULL) {
        b->ops->state_free(s);
        return WEIR_ENOMEM;
    }
    s->b = b;
    s->kind = kind;
    s->ttl_us = ttl_us;
    s->next = b->states;
    b->states = s;
    *out = s;                    /* borrowed: lives as long as b */
    return 0;
}

int
weir_state_value(weir_state_backend_t *b, const char *name, weir_state_t **out)
{
    return weir__state_open(b, name, WEIR__STATE_VALUE, 0, out);
}

int
weir_state_value_ttl(weir_state_backend_t *b, const char *name, int64_t ttl_us,
                     weir_state_t **out)
{
    return weir__state_open(b, name, WEIR__STATE_VALUE, ttl_us, out);
}

int
weir_state_list(weir_state_backend_t *b, const char *name, int64_t ttl_us, weir_state_t **out)
{
    return weir__state_open(b, name, WEIR__STATE_LIST, ttl_us, out);
}

int
weir_state_map(weir_state_backend_t *b, const char *name, int64_t ttl_us, weir_state_t **out)
{
    return weir__state_open(b, name, WEIR__STATE_MAP, ttl_us, out);
}

/* ---- argument checks -------------------------------------------------- */

/* kind 0: any kind. */
static int
check(weir_state_t *s, int kind, int kg, const void *key, size_t klen)
{
    if (s == NULL || (key == NULL && klen > 0))
        return WEIR_EINVAL;
    if (kind != 0 && s->kind != kind)
        return weir__state_fail(s->b, WEIR_ETYPE, "state '%s' is a %s state, not a %s state",
                                s->name, weir__state_kind_name(s->kind),
                                weir__state_kind_name(kind));
    if (kg < s->b->kg_first || kg > s->b->kg_last)
        return weir__state_fail(s->b, WEIR_ERANGE, "state '%s': key group %d is outside "
                                "this subtask's [%d, %d]", s->name, kg,
                                s->b->kg_first, s->b->kg_last);
    if (klen > WEIR_STATE_KEY_MAX)
        return weir__state_fail(s->b, WEIR_E2BIG, "state '%s': key of %zu bytes (max %u)",
                                s->name, klen, WEIR_STATE_KEY_MAX);
    return 0;
}

static int
check_bytes(weir_state_t *s, const void *p, size_t n, size_t max, const char *what)
{
    if (p == NULL && n > 0)
        return WEIR_EINVAL;
    if (n > max)
        return weir__state_fail(s->b, WEIR_E2BIG, "state '%s': %s of %zu bytes (max %zu)",
                                s->name, what, n, max);
    return 0;
}

/* ---- value state ------------------------------------------------------ */

int
weir_state_get(weir_state_t *s, int kg, const void *key, size_t klen,
               weir_buf_t *out, int *found)
{
    int rc;

    if ((rc = check(s, WEIR__STATE_VALUE, kg, key, klen)) != 0)
        return rc;
    if (out == NULL || found == NULL)
        return WEIR_EINVAL;
    *found = 0;
    return s->b->ops->get(s, kg, key, klen, out, found);
}

int
weir_state_put(weir_state_t *s, int kg, const void *key, size_t klen,
               const void *val, size_t vlen)
{
    int rc;

    if ((rc = check(s, WEIR__STATE_VALUE, kg, key, klen)) != 0 ||
        (rc = check_bytes(s, val, vlen, WEIR_STATE_VALUE_MAX, "value")) != 0)
        return rc;
    return s->b->ops->put(s, kg, key, klen, val, vlen);
}

int
weir_state_del(weir_state_t *s, int kg, const void *key, size_t klen)
{
    int rc;

    if ((rc = check(s, 0, kg, key, klen)) != 0)
        return rc;
    return s->b->ops->clear(s, kg, key, klen);
}

size_t
weir_state_count(const weir_state_t *s)
{
    weir_state_t *m = (weir_state_t *)s;     /* a read, that may use scratch */
    size_t n = 0;

    if (m == NULL || m->b->ops->count(m, &n) != 0)
        return 0;
    return n;
}

int
weir_state_scan(weir_state_t *s, int kg_first, int kg_last, weir_state_visit_cb cb, void *arg)
{
    int rc;

    if (s == NULL || cb == NULL)
        return WEIR_EINVAL;
    if (s->kind == WEIR__STATE_MAP)
        return weir__state_fail(s->b, WEIR_ETYPE, "state '%s' is a map state: "
                                "scan it with weir_state_map_scan", s->name);
    if ((rc = check_kg_range(s->b, kg_first, kg_last)) != 0)
        return rc;
    return s->b->ops->scan(s, kg_first, kg_last, cb, arg);
}

/* ---- list state ------------------------------------------------------- */

int
weir_state_list_add(weir_state_t *s, int kg, const void *key, size_t klen,
                    const void *val, size_t vlen)
{
    int rc;

    if ((rc = check(s, WEIR__STATE_LIST, kg, key, klen)) != 0 ||
        (rc = check_bytes(s, val, vlen, WEIR_STATE_VALUE_MAX, "list element")) != 0)
        return rc;
    return s->b->ops->list_add(s, kg, key, klen, val, vlen);
}

int
weir_state_list_get(weir_state_t *s, int kg, const void *key, size_t klen,
                    weir_state_elem_cb cb, void *arg)
{
    int rc;

    if ((rc = check(s, WEIR__STATE_LIST, kg, key, klen)) != 0)
        return rc;
    if (cb == NULL)
        return WEIR_EINVAL;
    return s->b->ops->list_get(s, kg, key, klen, cb, arg);
}

int
weir_state_list_clear(weir_state_t *s, int kg, const void *key, size_t klen)
{
    int rc;

    if ((rc = check(s, WEIR__STATE_LIST, kg, key, klen)) != 0)
        return rc;
    return s->b->ops->clear(s, kg, key, klen);
}

/* ---- map state -------------------------------------------------------- */

int
weir_state_map_put(weir_state_t *s, int kg, const void *key, size_t klen,
                   const void *ukey, size_t uklen, const void *val, size_t vlen)
{
    int rc;

    if ((rc = check(s, WEIR__STATE_MAP, kg, key, klen)) != 0 ||
        (rc = check_bytes(s, ukey, uklen, WEIR_STATE_KEY_MAX, "map key")) != 0 ||
        (rc = check_bytes(s, val, vlen, WEIR_STATE_VALUE_MAX, "map value")) != 0)
        return rc;
    return s->b->ops->map_put(s, kg, key, klen, ukey, uklen, val, vlen);
}

int
weir_state_map_get(weir_state_t *s, int kg, const void *key, size_t klen,
                   const void *ukey, size_t uklen, weir_buf_t *out, int *found)
{
    int rc;

    if ((rc = check(s, WEIR__STATE_MAP, kg, key, klen)) != 0 ||
        (rc = check_bytes(s, ukey, uklen, WEIR_STATE_KEY_MAX, "map key")) != 0)
        return rc;
    if (out == NULL || found == NULL)
        return WEIR_EINVAL;
    *found = 0;
    return s->b->ops->map_get(s, kg, key, klen, ukey, uklen, out, found);
}

int
weir_state_map_del(weir_state_t *s, int kg, const void *key, size_t klen,
                   const void *ukey, size_t uklen)
{
    int rc;

    if ((rc = check(s, WEIR__STATE_MAP, kg, key, klen)) != 0 ||
        (rc = check_bytes(s, ukey, uklen, WEIR_STATE_KEY_MAX, "map key")) != 0)
        return rc;
    return s->b->ops->map_del(s, kg, key, klen, ukey, uklen);
}

int
weir_state_map_iter(weir_state_t *s, int kg, const void *key, size_t klen,
                    weir_state_visit_cb cb, void *arg)
{
    int rc;

    if ((rc = check(s, WEIR__STATE_MAP, kg, key, klen)) != 0)
        return rc;
    if (cb == NULL)
        return WEIR_EINVAL;
    return s->b->ops->map_iter(s, kg, key, klen, cb, arg);
}

int
weir_state_map_scan(weir_state_t *s, int kg_first, int kg_last,
                    weir_state_map_visit_cb cb, void *arg)
{
    int rc;

    if (s == NULL || cb == NULL)
        return WEIR_EINVAL;
    if (s->kind != WEIR__STATE_MAP)
        return weir__state_fail(s->b, WEIR_ETYPE, "state '%s' is a %s state, not a map state",
                                s->name, weir__state_kind_name(s->kind));
    if ((rc = check_kg_range(s->b, kg_first, kg_last)) != 0)
        return rc;
    return s->b->ops->map_scan(s, kg_first, kg_last, cb, arg);
}
