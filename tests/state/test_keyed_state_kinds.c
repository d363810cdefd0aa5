/* tests/state/test_keyed_state_kinds.c -- list, map and TTL state, on every backend.
 *
 * List state gives a key's elements back in insertion order; map state is
 * a map per key; both are scoped by key group and key like value state, so
 * the same key in two key groups, or keys that are prefixes of each other
 * ("a" and "ab": the RocksDB layout stores the key length to tell them
 * apart), never mix. TTL hides an item ttl after its last write; a read that
 * meets an expired item removes it (moving the fake clock back afterwards
 * proves it is gone, not hidden), and compaction removes expired items that
 * nobody reads. drop_key_groups empties a key-group range in every state.
 * Kinds and arguments are checked the same way by every backend. The last
 * case prints throughput figures for 100k keys (not asserted).
 */
#include "backends.h"

#define T0 1000000000000ll          /* the fake clock's start, microseconds */

/* ---- helpers ---------------------------------------------------------- */

typedef struct collect {
    char text[8192];                 /* elements or entries, comma-separated */
    int  n;
    int  stop_at;                    /* return 7 at this element (1-based) */
} collect_t;

static int
collect_elem(void *arg, const void *val, size_t vlen)
{
    collect_t *c = arg;
    size_t len = strlen(c->text);

    assert_true(len + vlen + 2 < sizeof(c->text));
    if (c->n > 0)
        c->text[len++] = ',';
    memcpy(c->text + len, val, vlen);
    c->text[len + vlen] = '\0';
    return ++c->n == c->stop_at ? 7 : 0;
}

static const char *
list_str(weir_state_t *s, int kg, const char *key, collect_t *c)
{
    memset(c, 0, sizeof(*c));
    assert_int_equal(weir_state_list_get(s, kg, key, strlen(key), collect_elem, c), 0);
    return c->text;
}

static void
add(weir_state_t *s, int kg, const char *key, const char *val)
{
    assert_int_equal(weir_state_list_add(s, kg, key, strlen(key), val, strlen(val)), 0);
}

static void
mput(weir_state_t *s, int kg, const char *key, const char *ukey, const char *val)
{
    assert_int_equal(weir_state_map_put(s, kg, key, strlen(key), ukey, strlen(ukey),
                                        val, strlen(val)), 0);
}

/* map_get as a string; NULL when absent. */
static const char *
mget(weir_state_t *s, int kg, const char *key, const char *ukey, char *buf, size_t cap)
{
    weir_buf_t out = WEIR_BUF_INIT;
    int found = -1;

    assert_int_equal(weir_state_map_get(s, kg, key, strlen(key), ukey, strlen(ukey),
                                        &out, &found), 0);
    assert_true(found == 0 || found == 1);
    if (found) {
        assert_true(out.len < cap);
        memcpy(buf, out.data, out.len);
        buf[out.len] = '\0';
    }
    weir_buf_free(&out);
    return found ? buf : NULL;
}

static const char *
vget(weir_state_t *s, int kg, const char *key, char *buf, size_t cap)
{
    weir_buf_t out = WEIR_BUF_INIT;
    int found = -1;

    assert_int_equal(weir_state_get(s, kg, key, strlen(key), &out, &found), 0);
    if (found) {
        assert_true(out.len < cap);
        memcpy(buf, out.data, out.len);
        buf[out.len] = '\0';
    }
    weir_buf_free(&out);
    return found ? buf : NULL;
}

static void
vput(weir_state_t *s, int kg, const char *key, const char *val)
{
    assert_int_equal(weir_state_put(s, kg, key, strlen(key), val, strlen(val)), 0);
}

/* Map entries as "ukey=val" strings, sorted and comma-joined. */
typedef struct entries {
    char item[64][64];
    int  n;
    int  kg_seen;
    int  stop_at;
} entries_t;

static int
collect_entry(void *arg, int kg, const void *ukey, size_t uklen, const void *val, size_t vlen)
{
    entries_t *e = arg;

    assert_true(e->n < 64 && uklen + vlen + 2 < 64);
    snprintf(e->item[e->n++], 64, "%.*s=%.*s", (int)uklen, (const char *)ukey,
             (int)vlen, (const char *)val);
    e->kg_seen = kg;
    return e->n == e->stop_at ? 9 : 0;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(a, b);
}

static const char *
joined(entries_t *e, char *buf, size_t cap)
{
    qsort(e->item, (size_t)e->n, sizeof(e->item[0]), cmp_str);
    buf[0] = '\0';
    for (int i = 0; i < e->n; i++) {
        if (i > 0)
            strncat(buf, ",", cap - strlen(buf) - 1);
        strncat(buf, e->item[i], cap - strlen(buf) - 1);
    }
    return buf;
}

static const char *
map_str(weir_state_t *s, int kg, const char *key, char *buf, size_t cap)
{
    entries_t e;

    memset(&e, 0, sizeof(e));
    e.kg_seen = -1;
    assert_int_equal(weir_state_map_iter(s, kg, key, strlen(key), collect_entry, &e), 0);
    if (e.n > 0)
        assert_int_equal(e.kg_seen, kg);
    return joined(&e, buf, cap);
}

/* ---- list state ------------------------------------------------------- */

static void
test_list_gives_elements_back_in_insertion_order(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 127);
    weir_state_t *s = NULL, *again = NULL;
    collect_t c;

    assert_int_equal(weir_state_list(b, "l", 0, &s), 0);
    assert_string_equal(list_str(s, 3, "a", &c), "");
    assert_int_equal(c.n, 0);
    add(s, 3, "a", "one");
    add(s, 3, "b", "b1");
    add(s, 3, "a", "two");
    add(s, 4, "a", "other-group");
    add(s, 3, "a", "");
    add(s, 3, "a", "three");
    add(s, 3, "b", "b2");
    assert_string_equal(list_str(s, 3, "a", &c), "one,two,,three");
    assert_int_equal(c.n, 4);
    assert_string_equal(list_str(s, 3, "b", &c), "b1,b2");
    assert_string_equal(list_str(s, 4, "a", &c), "other-group");
    assert_string_equal(list_str(s, 5, "a", &c), "");
    assert_int_equal(weir_state_count(s), 7);

    assert_int_equal(weir_state_list(b, "l", 0, &again), 0);
    assert_ptr_equal(again, s);
    free_backend(b);
}

static void
test_list_get_stops_when_the_callback_says_so(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 7);
    weir_state_t *s = NULL;
    collect_t c;

    assert_int_equal(weir_state_list(b, "l", 0, &s), 0);
    add(s, 1, "k", "x");
    add(s, 1, "k", "y");
    add(s, 1, "k", "z");
    memset(&c, 0, sizeof(c));
    c.stop_at = 2;
    assert_int_equal(weir_state_list_get(s, 1, "k", 1, collect_elem, &c), 7);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.text, "x,y");
    free_backend(b);
}

static void
test_list_clear_removes_one_key_and_the_list_starts_over(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 127);
    weir_state_t *s = NULL;
    collect_t c;

    assert_int_equal(weir_state_list(b, "l", 0, &s), 0);
    add(s, 3, "a", "1");
    add(s, 3, "a", "2");
    add(s, 3, "b", "3");
    add(s, 4, "a", "4");
    assert_int_equal(weir_state_list_clear(s, 3, "a", 1), 0);
    assert_string_equal(list_str(s, 3, "a", &c), "");
    assert_string_equal(list_str(s, 3, "b", &c), "3");
    assert_string_equal(list_str(s, 4, "a", &c), "4");
    assert_int_equal(weir_state_count(s), 2);
    assert_int_equal(weir_state_list_clear(s, 3, "a", 1), 0);     /* missing: fine */
    add(s, 3, "a", "5");
    assert_string_equal(list_str(s, 3, "a", &c), "5");
    /* weir_state_del clears a list too */
    assert_int_equal(weir_state_del(s, 3, "b", 1), 0);
    assert_string_equal(list_str(s, 3, "b", &c), "");
    assert_int_equal(weir_state_count(s), 2);
    free_backend(b);
}

/* "a" and "ab" (and "a\0", and long keys whose length needs two varint
 * bytes) are different keys, not one a prefix range of the other. */
static void
test_keys_that_are_prefixes_of_each_other_stay_apart(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 1);
    weir_state_t *l = NULL, *m = NULL;
    char long1[200], long2[201], buf[64];
    collect_t c;

    assert_int_equal(weir_state_list(b, "l", 0, &l), 0);
    assert_int_equal(weir_state_map(b, "m", 0, &m), 0);
    memset(long1, 'k', sizeof(long1));
    memset(long2, 'k', sizeof(long2));
    add(l, 0, "a", "in-a");
    add(l, 0, "ab", "in-ab");
    assert_int_equal(weir_state_list_add(l, 0, "a\0", 2, "in-a0", 5), 0);
    assert_int_equal(weir_state_list_add(l, 0, long1, sizeof(long1), "L1", 2), 0);
    assert_int_equal(weir_state_list_add(l, 0, long2, sizeof(long2), "L2", 2), 0);
    assert_int_equal(weir_state_list_add(l, 0, NULL, 0, "empty", 5), 0);
    assert_string_equal(list_str(l, 0, "a", &c), "in-a");
    assert_string_equal(list_str(l, 0, "ab", &c), "in-ab");
    assert_string_equal(list_str(l, 0, "", &c), "empty");
    memset(&c, 0, sizeof(c));
    assert_int_equal(weir_state_list_get(l, 0, long1, sizeof(long1), collect_elem, &c), 0);
    assert_string_equal(c.text, "L1");

    mput(m, 0, "a", "x", "1");
    mput(m, 0, "ab", "x", "2");
    mput(m, 0, "a", "bx", "3");           /* "a"+"bx" vs "ab"+"x" */
    assert_string_equal(map_str(m, 0, "a", buf, sizeof(buf)), "bx=3,x=1");
    assert_string_equal(map_str(m, 0, "ab", buf, sizeof(buf)), "x=2");
    assert_string_equal(mget(m, 0, "ab", "x", buf, sizeof(buf)), "2");
    assert_null(mget(m, 0, "ab", "bx", buf, sizeof(buf)));
    free_backend(b);
}

typedef struct order {
    int next;                        /* the element expected next */
    int bad;
} order_t;

static int
check_order(void *arg, const void *val, size_t vlen)
{
    order_t *o = arg;
    int v;

    if (vlen != sizeof(v)) {
        o->bad++;
        return 1;
    }
    memcpy(&v, val, sizeof(v));
    o->bad += v != o->next;
    o->next++;
    return 0;
}

static void
test_list_of_many_elements_keeps_them_all_in_order(void **unused)
{
    enum { N = 20000 };
    weir_state_backend_t *b = new_backend(0, 7);
    weir_state_t *s = NULL;
    order_t o = { 0, 0 };

    assert_int_equal(weir_state_list(b, "big", 0, &s), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(weir_state_list_add(s, 2, "k", 1, &i, sizeof(i)), 0);
    assert_int_equal(weir_state_count(s), N);
    assert_int_equal(weir_state_list_get(s, 2, "k", 1, check_order, &o), 0);
    assert_int_equal(o.bad, 0);
    assert_int_equal(o.next, N);
    free_backend(b);
}

/* ---- map state -------------------------------------------------------- */

static void
test_map_put_get_overwrite_delete(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 127);
    weir_state_t *s = NULL;
    char buf[64];

    assert_int_equal(weir_state_map(b, "m", 0, &s), 0);
    assert_null(mget(s, 9, "user", "clicks", buf, sizeof(buf)));
    mput(s, 9, "user", "clicks", "1");
    mput(s, 9, "user", "views", "10");
    mput(s, 10, "user", "clicks", "other group");
    assert_string_equal(mget(s, 9, "user", "clicks", buf, sizeof(buf)), "1");
    assert_string_equal(mget(s, 9, "user", "views", buf, sizeof(buf)), "10");
    assert_string_equal(mget(s, 10, "user", "clicks", buf, sizeof(buf)), "other group");
    assert_int_equal(weir_state_count(s), 3);

    mput(s, 9, "user", "clicks", "a much longer value than before, to move it");
    assert_string_equal(mget(s, 9, "user", "clicks", buf, sizeof(buf)),
                        "a much longer value than before, to move it");
    assert_int_equal(weir_state_count(s), 3);

    assert_int_equal(weir_state_map_del(s, 9, "user", 4, "clicks", 6), 0);
    assert_null(mget(s, 9, "user", "clicks", buf, sizeof(buf)));
    assert_string_equal(mget(s, 9, "user", "views", buf, sizeof(buf)), "10");
    assert_int_equal(weir_state_map_del(s, 9, "user", 4, "clicks", 6), 0);   /* again */
    assert_int_equal(weir_state_map_del(s, 9, "nobody", 6, "clicks", 6), 0);
    assert_int_equal(weir_state_count(s), 2);

    /* empty map key and empty value */
    assert_int_equal(weir_state_map_put(s, 9, "user", 4, NULL, 0, NULL, 0), 0);
    assert_string_equal(mget(s, 9, "user", "", buf, sizeof(buf)), "");
    assert_int_equal(weir_state_count(s), 3);
    free_backend(b);
}

static void
test_map_iter_visits_exactly_one_keys_entries(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 127);
    weir_state_t *s = NULL;
    entries_t e;
    char buf[256];

    assert_int_equal(weir_state_map(b, "m", 0, &s), 0);
    mput(s, 5, "k1", "a", "1");
    mput(s, 5, "k1", "b", "2");
    mput(s, 5, "k1", "c", "3");
    mput(s, 5, "k10", "a", "4");
    mput(s, 5, "k10", "z", "5");
    mput(s, 6, "k1", "a", "6");
    assert_string_equal(map_str(s, 5, "k1", buf, sizeof(buf)), "a=1,b=2,c=3");
    assert_string_equal(map_str(s, 5, "k10", buf, sizeof(buf)), "a=4,z=5");
    assert_string_equal(map_str(s, 6, "k1", buf, sizeof(buf)), "a=6");
    assert_string_equal(map_str(s, 7, "k1", buf, sizeof(buf)), "");

    memset(&e, 0, sizeof(e));
    e.stop_at = 2;
    assert_int_equal(weir_state_map_iter(s, 5, "k1", 2, collect_entry, &e), 9);
    assert_int_equal(e.n, 2);

    /* weir_state_del clears the whole map of a key */
    assert_int_equal(weir_state_del(s, 5, "k1", 2), 0);
    assert_string_equal(map_str(s, 5, "k1", buf, sizeof(buf)), "");
    assert_null(mget(s, 5, "k1", "a", buf, sizeof(buf)));
    assert_string_equal(map_str(s, 5, "k10", buf, sizeof(buf)), "a=4,z=5");
    assert_int_equal(weir_state_count(s), 3);
    mput(s, 5, "k1", "new", "7");
    assert_string_equal(map_str(s, 5, "k1", buf, sizeof(buf)), "new=7");
    free_backend(b);
}

typedef struct mscan {
    int  n;
    int  per_kg[16];
    long sum;
} mscan_t;

static int
mscan_cb(void *arg, int kg, const void *key, size_t klen, const void *ukey, size_t uklen,
         const void *val, size_t vlen)
{
    mscan_t *m = arg;
    char v[16];

    assert_true(kg >= 0 && kg < 16 && vlen < sizeof(v));
    assert_int_equal(klen, 3);
    assert_memory_equal(key, "key", 3);
    assert_int_equal(uklen, 2);
    memcpy(v, val, vlen);
    v[vlen] = '\0';
    m->n++;
    m->per_kg[kg]++;
    m->sum += atol(v);
    return 0;
}

static void
test_map_scan_visits_a_key_group_range_with_map_keys(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 15);
    weir_state_t *s = NULL, *v = NULL;
    mscan_t m;
    char ukey[8], val[8];

    assert_int_equal(weir_state_map(b, "m", 0, &s), 0);
    for (int kg = 0; kg < 16; kg++) {
        for (int u = 0; u < 3; u++) {
            snprintf(ukey, sizeof(ukey), "u%d", u);
            snprintf(val, sizeof(val), "%d", kg * 10 + u);
            mput(s, kg, "key", ukey, val);
        }
    }
    memset(&m, 0, sizeof(m));
    assert_int_equal(weir_state_map_scan(s, 3, 5, mscan_cb, &m), 0);
    assert_int_equal(m.n, 9);
    for (int kg = 0; kg < 16; kg++)
        assert_int_equal(m.per_kg[kg], kg >= 3 && kg <= 5 ? 3 : 0);
    assert_int_equal(m.sum, 30 + 31 + 32 + 40 + 41 + 42 + 50 + 51 + 52);

    /* scan is for value and list states; map_scan for map states only */
    assert_int_equal(weir_state_scan(s, 0, 15, NULL, NULL), WEIR_EINVAL);
    assert_int_equal(weir_state_value(b, "v", &v), 0);
    assert_int_equal(weir_state_map_scan(v, 0, 15, mscan_cb, &m), WEIR_ETYPE);
    free_backend(b);
}

static int
scan_list_cb(void *arg, int kg, const void *key, size_t klen, const void *val, size_t vlen)
{
    collect_t *c = arg;
    char item[64];

    snprintf(item, sizeof(item), "%d/%.*s/%.*s", kg, (int)klen, (const char *)key,
             (int)vlen, (const char *)val);
    return collect_elem(c, item, strlen(item));
}

static void
test_scan_of_a_list_state_visits_each_element(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 15);
    weir_state_t *s = NULL;
    collect_t c;

    assert_int_equal(weir_state_list(b, "l", 0, &s), 0);
    add(s, 2, "k", "skip");
    add(s, 3, "k", "e1");
    add(s, 3, "k", "e2");
    add(s, 6, "k", "skip");
    memset(&c, 0, sizeof(c));
    assert_int_equal(weir_state_scan(s, 3, 5, scan_list_cb, &c), 0);
    assert_string_equal(c.text, "3/k/e1,3/k/e2");
    free_backend(b);
}

/* ---- kinds, names, arguments ------------------------------------------ */

static void
test_a_name_keeps_its_kind_and_its_ttl_layout(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 7);
    weir_state_t *v = NULL, *l = NULL, *m = NULL, *x = NULL;
    weir_buf_t out = WEIR_BUF_INIT;
    int found = 0;

    assert_int_equal(weir_state_value(b, "v", &v), 0);
    assert_int_equal(weir_state_list(b, "l", 1000, &l), 0);
    assert_int_equal(weir_state_map(b, "m", 0, &m), 0);

    assert_int_equal(weir_state_list(b, "v", 0, &x), WEIR_ETYPE);
    assert_non_null(strstr(weir_state_backend_error(b), "'v' is a value state"));
    assert_int_equal(weir_state_map(b, "l", 1000, &x), WEIR_ETYPE);
    assert_int_equal(weir_state_value(b, "m", &x), WEIR_ETYPE);
    /* TTL cannot be turned on or off; its duration can change */
    assert_int_equal(weir_state_list(b, "l", 0, &x), WEIR_ETYPE);
    assert_non_null(strstr(weir_state_backend_error(b), "TTL"));
    assert_int_equal(weir_state_value_ttl(b, "v", 5, &x), WEIR_ETYPE);
    assert_int_equal(weir_state_list(b, "l", 2000, &x), 0);
    assert_ptr_equal(x, l);

    /* operations of the wrong kind */
    assert_int_equal(weir_state_get(l, 0, "k", 1, &out, &found), WEIR_ETYPE);
    assert_int_equal(weir_state_put(m, 0, "k", 1, "v", 1), WEIR_ETYPE);
    assert_int_equal(weir_state_list_add(v, 0, "k", 1, "v", 1), WEIR_ETYPE);
    assert_int_equal(weir_state_list_get(m, 0, "k", 1, collect_elem, NULL), WEIR_ETYPE);
    assert_int_equal(weir_state_list_clear(v, 0, "k", 1), WEIR_ETYPE);
    assert_int_equal(weir_state_map_put(v, 0, "k", 1, "u", 1, "v", 1), WEIR_ETYPE);
    assert_int_equal(weir_state_map_get(l, 0, "k", 1, "u", 1, &out, &found), WEIR_ETYPE);
    assert_int_equal(weir_state_map_del(v, 0, "k", 1, "u", 1), WEIR_ETYPE);
    assert_int_equal(weir_state_map_iter(l, 0, "k", 1, collect_entry, NULL), WEIR_ETYPE);
    assert_non_null(strstr(weir_state_backend_error(b), "not a map state"));
    weir_buf_free(&out);
    free_backend(b);
}

static void
test_bad_arguments_are_refused_not_crashed_on(void **unused)
{
    weir_state_backend_t *b = new_backend(10, 20);
    weir_state_t *v = NULL, *l = NULL, *m = NULL, *x = NULL;
    weir_buf_t out = WEIR_BUF_INIT;
    char name[WEIR_STATE_NAME_MAX + 2];
    int found = 0;

    assert_int_equal(weir_state_value(b, "v", &v), 0);
    assert_int_equal(weir_state_list(b, "l", 0, &l), 0);
    assert_int_equal(weir_state_map(b, "m", 0, &m), 0);

    assert_int_equal(weir_state_value(b, "", &x), WEIR_EINVAL);
    assert_int_equal(weir_state_value(b, NULL, &x), WEIR_EINVAL);
    assert_int_equal(weir_state_value(NULL, "v", &x), WEIR_EINVAL);
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    assert_int_equal(weir_state_value(b, name, &x), WEIR_EINVAL);
    name[WEIR_STATE_NAME_MAX] = '\0';
    assert_int_equal(weir_state_value(b, name, &x), 0);          /* the limit itself */
    assert_int_equal(weir_state_list(b, "neg", -1, &x), WEIR_EINVAL);

    assert_int_equal(weir_state_put(v, 10, NULL, 3, "v", 1), WEIR_EINVAL);
    assert_int_equal(weir_state_put(v, 10, "k", 1, NULL, 3), WEIR_EINVAL);
    assert_int_equal(weir_state_put(v, 10, "k", WEIR_STATE_KEY_MAX + 1, "v", 1), WEIR_E2BIG);
    assert_int_equal(weir_state_put(v, 10, "k", 1, "v", (size_t)WEIR_STATE_VALUE_MAX + 1),
                     WEIR_E2BIG);
    assert_non_null(strstr(weir_state_backend_error(b), "value of"));
    assert_int_equal(weir_state_get(v, 10, "k", 1, NULL, &found), WEIR_EINVAL);
    assert_int_equal(weir_state_get(NULL, 10, "k", 1, &out, &found), WEIR_EINVAL);

    assert_int_equal(weir_state_list_add(l, 9, "k", 1, "v", 1), WEIR_ERANGE);
    assert_non_null(strstr(weir_state_backend_error(b), "key group 9"));
    assert_int_equal(weir_state_list_get(l, 21, "k", 1, collect_elem, NULL), WEIR_ERANGE);
    assert_int_equal(weir_state_list_get(l, 10, "k", 1, NULL, NULL), WEIR_EINVAL);
    assert_int_equal(weir_state_map_put(m, 21, "k", 1, "u", 1, "v", 1), WEIR_ERANGE);
    assert_int_equal(weir_state_map_put(m, 10, "k", 1, NULL, 1, "v", 1), WEIR_EINVAL);
    assert_int_equal(weir_state_map_put(m, 10, "k", 1, "u", WEIR_STATE_KEY_MAX + 1, "v", 1),
                     WEIR_E2BIG);
    assert_int_equal(weir_state_map_iter(m, 10, "k", 1, NULL, NULL), WEIR_EINVAL);
    assert_int_equal(weir_state_del(m, -1, "k", 1), WEIR_ERANGE);

    assert_int_equal(weir_state_scan(v, 5, 4, scan_list_cb, NULL), WEIR_EINVAL);
    assert_int_equal(weir_state_scan(v, 0, 32768, scan_list_cb, NULL), WEIR_EINVAL);
    assert_int_equal(weir_state_drop_key_groups(b, -1, 3), WEIR_EINVAL);
    assert_int_equal(weir_state_drop_key_groups(b, 3, 2), WEIR_EINVAL);
    assert_int_equal(weir_state_drop_key_groups(NULL, 0, 2), WEIR_EINVAL);
    assert_int_equal(weir_state_count(NULL), 0);
    assert_int_equal(weir_state_count(v), 0);
    assert_string_equal(weir_state_backend_error(NULL), "");
    weir_buf_free(&out);
    free_backend(b);
}

/* A callback may write to other states of the same backend. */
typedef struct copier {
    weir_state_t *to;
    int           n;
} copier_t;

static int
copy_elem(void *arg, const void *val, size_t vlen)
{
    copier_t *c = arg;
    char key[16];

    snprintf(key, sizeof(key), "copy%d", c->n++);
    return weir_state_put(c->to, 1, key, strlen(key), val, vlen);
}

static void
test_callbacks_may_write_to_other_states(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 3);
    weir_state_t *l = NULL, *v = NULL;
    copier_t c;
    char buf[16];

    assert_int_equal(weir_state_list(b, "l", 0, &l), 0);
    assert_int_equal(weir_state_value(b, "v", &v), 0);
    for (int i = 0; i < 100; i++) {
        snprintf(buf, sizeof(buf), "e%d", i);
        add(l, 1, "k", buf);
    }
    c.to = v;
    c.n = 0;
    assert_int_equal(weir_state_list_get(l, 1, "k", 1, copy_elem, &c), 0);
    assert_int_equal(c.n, 100);
    assert_int_equal(weir_state_count(v), 100);
    assert_string_equal(vget(v, 1, "copy99", buf, sizeof(buf)), "e99");
    free_backend(b);
}

/* ---- TTL -------------------------------------------------------------- */

static void
test_ttl_value_expires_after_its_last_write(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 7);
    weir_state_t *s = NULL;
    char buf[32];

    clock_fake(T0);
    assert_int_equal(weir_state_value_ttl(b, "v", 100, &s), 0);
    vput(s, 1, "a", "A");
    vput(s, 1, "b", "B");
    clock_fake(T0 + 99);
    assert_string_equal(vget(s, 1, "a", buf, sizeof(buf)), "A");
    vput(s, 1, "b", "B2");                       /* a write restarts its clock */
    assert_int_equal(weir_state_count(s), 2);
    clock_fake(T0 + 100);                        /* a: exactly ttl after its write */
    assert_int_equal(weir_state_count(s), 1);
    assert_string_equal(vget(s, 1, "b", buf, sizeof(buf)), "B2");
    clock_fake(T0 + 198);
    assert_string_equal(vget(s, 1, "b", buf, sizeof(buf)), "B2");

    /* not read: hidden, not removed -- going back in time shows it again */
    clock_fake(T0 + 50);
    assert_string_equal(vget(s, 1, "a", buf, sizeof(buf)), "A");
    /* read while expired: removed for good */
    clock_fake(T0 + 150);
    assert_null(vget(s, 1, "a", buf, sizeof(buf)));
    clock_fake(T0 + 50);
    assert_null(vget(s, 1, "a", buf, sizeof(buf)));
    assert_string_equal(vget(s, 1, "b", buf, sizeof(buf)), "B2");
    clock_real();
    free_backend(b);
}

static int
scan_count_cb(void *arg, int kg, const void *key, size_t klen, const void *val, size_t vlen)
{
    (*(int *)arg)++;
    return 0;
}

static void
test_ttl_expired_values_are_invisible_to_scan_and_removed_by_it(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 7);
    weir_state_t *s = NULL;
    char key[16];
    int n = 0;

    clock_fake(T0);
    assert_int_equal(weir_state_value_ttl(b, "v", 1000, &s), 0);
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof(key), "old%d", i);
        vput(s, i % 8, key, "x");
    }
    clock_fake(T0 + 600);
    for (int i = 0; i < 5; i++) {
        snprintf(key, sizeof(key), "new%d", i);
        vput(s, i % 8, key, "y");
    }
    clock_fake(T0 + 1200);
    assert_int_equal(weir_state_scan(s, 0, 7, scan_count_cb, &n), 0);
    assert_int_equal(n, 5);
    clock_fake(T0 + 10);                         /* back: the old ones are gone */
    n = 0;
    assert_int_equal(weir_state_scan(s, 0, 7, scan_count_cb, &n), 0);
    assert_int_equal(n, 5);
    assert_int_equal(weir_state_count(s), 5);
    clock_real();
    free_backend(b);
}

static void
test_ttl_list_elements_expire_one_by_one(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 7);
    weir_state_t *s = NULL;
    collect_t c;

    clock_fake(T0);
    assert_int_equal(weir_state_list(b, "l", 100, &s), 0);
    add(s, 2, "k", "e0");
    clock_fake(T0 + 40);
    add(s, 2, "k", "e40");
    add(s, 2, "other", "o40");
    clock_fake(T0 + 80);
    add(s, 2, "k", "e80");
    assert_int_equal(weir_state_count(s), 4);

    clock_fake(T0 + 100);
    assert_int_equal(weir_state_count(s), 3);
    assert_string_equal(list_str(s, 2, "k", &c), "e40,e80");
    clock_fake(T0 + 150);
    assert_string_equal(list_str(s, 2, "k", &c), "e80");
    assert_int_equal(weir_state_count(s), 1);     /* "other" expired, unread */
    add(s, 2, "k", "e150");
    clock_fake(T0 + 200);
    assert_string_equal(list_str(s, 2, "k", &c), "e150");
    clock_fake(T0 + 300);
    assert_string_equal(list_str(s, 2, "k", &c), "");
    assert_int_equal(weir_state_count(s), 0);

    /* the reads removed what they met; "other" was never read */
    clock_fake(T0 + 41);
    assert_string_equal(list_str(s, 2, "k", &c), "");
    assert_string_equal(list_str(s, 2, "other", &c), "o40");
    clock_real();
    free_backend(b);
}

static void
test_ttl_map_entries_expire_one_by_one(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 7);
    weir_state_t *s = NULL;
    char buf[128];
    mscan_t m;

    clock_fake(T0);
    assert_int_equal(weir_state_map(b, "m", 100, &s), 0);
    mput(s, 3, "key", "u1", "1");
    mput(s, 3, "key", "u2", "2");
    clock_fake(T0 + 60);
    mput(s, 3, "key", "u2", "22");               /* rewritten: its clock restarts */
    mput(s, 3, "key", "u3", "3");
    clock_fake(T0 + 120);
    assert_null(mget(s, 3, "key", "u1", buf, sizeof(buf)));
    assert_string_equal(mget(s, 3, "key", "u2", buf, sizeof(buf)), "22");
    assert_string_equal(map_str(s, 3, "key", buf, sizeof(buf)), "u2=22,u3=3");
    assert_int_equal(weir_state_count(s), 2);
    memset(&m, 0, sizeof(m));
    assert_int_equal(weir_state_map_scan(s, 0, 7, mscan_cb, &m), 0);
    assert_int_equal(m.n, 2);
    clock_fake(T0 + 160);
    assert_string_equal(map_str(s, 3, "key", buf, sizeof(buf)), "");
    assert_int_equal(weir_state_count(s), 0);
    clock_fake(T0);                              /* removed, not hidden */
    assert_string_equal(map_str(s, 3, "key", buf, sizeof(buf)), "");
    assert_null(mget(s, 3, "key", "u1", buf, sizeof(buf)));
    clock_real();
    free_backend(b);
}

/* Entries nobody reads go away in compaction (RocksDB: the compaction
 * filter; memory: the purge). Going back in time afterwards shows that
 * they were removed, and that live entries were kept. */
static void
test_ttl_compaction_removes_expired_entries_nobody_reads(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 7);
    weir_state_t *v = NULL, *l = NULL, *m = NULL, *plain = NULL;
    char key[16], buf[64];
    collect_t c;

    clock_fake(T0);
    assert_int_equal(weir_state_value_ttl(b, "v", 1000, &v), 0);
    assert_int_equal(weir_state_list(b, "l", 1000, &l), 0);
    assert_int_equal(weir_state_map(b, "m", 1000, &m), 0);
    assert_int_equal(weir_state_value(b, "plain", &plain), 0);
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        vput(v, i % 8, key, "old");
        add(l, i % 8, key, "old");
        mput(m, i % 8, key, "u", "old");
        vput(plain, i % 8, key, "forever");
    }
    clock_fake(T0 + 500);
    vput(v, 0, "k0", "new");
    add(l, 0, "k0", "new");
    mput(m, 0, "k0", "u2", "new");

    clock_fake(T0 + 1200);
    assert_int_equal(weir_state_backend_compact(b), 0);
    clock_fake(T0 + 1);
    assert_int_equal(weir_state_count(v), 1);
    assert_int_equal(weir_state_count(l), 1);
    assert_int_equal(weir_state_count(m), 1);
    assert_int_equal(weir_state_count(plain), 200);
    assert_string_equal(vget(v, 0, "k0", buf, sizeof(buf)), "new");
    assert_null(vget(v, 1, "k1", buf, sizeof(buf)));
    assert_string_equal(list_str(l, 0, "k0", &c), "new");
    assert_string_equal(map_str(m, 0, "k0", buf, sizeof(buf)), "u2=new");
    assert_string_equal(vget(plain, 7, "k199", buf, sizeof(buf)), "forever");
    clock_real();
    free_backend(b);
}

/* Memory backend: a growing table drops expired entries instead of
 * doubling for them. */
static void
test_ttl_memory_table_growth_drops_expired_entries(void **unused)
{
    weir_state_backend_t *b;
    weir_state_t *s = NULL;
    char key[16], buf[16];

    if (g_kind != &backend_memory)
        skip();
    b = new_backend(0, 0);
    clock_fake(T0);
    assert_int_equal(weir_state_value_ttl(b, "v", 10, &s), 0);
    for (int i = 0; i < 12; i++) {               /* 12 of 16 slots */
        snprintf(key, sizeof(key), "old%d", i);
        vput(s, 0, key, "x");
    }
    clock_fake(T0 + 20);
    for (int i = 0; i < 20; i++) {               /* growth at the 13th entry */
        snprintf(key, sizeof(key), "new%d", i);
        vput(s, 0, key, "y");
    }
    clock_fake(T0);
    assert_null(vget(s, 0, "old3", buf, sizeof(buf)));
    assert_int_equal(weir_state_count(s), 20);
    clock_real();
    free_backend(b);
}

/* ---- key groups ------------------------------------------------------- */

static void
test_drop_key_groups_empties_a_range_in_every_state(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 15);
    weir_state_t *v = NULL, *l = NULL, *m = NULL;
    char key[16], buf[64];
    collect_t c;
    mscan_t ms;
    int n = 0;

    assert_int_equal(weir_state_value(b, "v", &v), 0);
    assert_int_equal(weir_state_list(b, "l", 0, &l), 0);
    assert_int_equal(weir_state_map(b, "m", 0, &m), 0);
    for (int i = 0; i < 160; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        vput(v, i % 16, key, "v");
        add(l, i % 16, key, "e1");
        add(l, i % 16, key, "e2");
        mput(m, i % 16, "key", key, "1");
    }
    assert_int_equal(weir_state_drop_key_groups(b, 4, 9), 0);
    assert_int_equal(weir_state_count(v), 100);
    assert_int_equal(weir_state_count(l), 200);
    assert_int_equal(weir_state_count(m), 100);
    assert_null(vget(v, 4, "k4", buf, sizeof(buf)));
    assert_null(vget(v, 9, "k25", buf, sizeof(buf)));
    assert_string_equal(vget(v, 3, "k3", buf, sizeof(buf)), "v");
    assert_string_equal(vget(v, 10, "k10", buf, sizeof(buf)), "v");
    assert_string_equal(list_str(l, 5, "k5", &c), "");
    assert_string_equal(list_str(l, 10, "k26", &c), "e1,e2");
    assert_null(mget(m, 6, "key", "k6", buf, sizeof(buf)));
    assert_string_equal(mget(m, 15, "key", "k15", buf, sizeof(buf)), "1");
    assert_int_equal(weir_state_scan(v, 0, 15, scan_count_cb, &n), 0);
    assert_int_equal(n, 100);
    memset(&ms, 0, sizeof(ms));
    assert_int_equal(weir_state_map_scan(m, 4, 9, mscan_cb, &ms), 0);
    assert_int_equal(ms.n, 0);

    /* a range outside the backend's own (rescaling) is fine; so is all */
    assert_int_equal(weir_state_drop_key_groups(b, 16, 32767), 0);
    assert_int_equal(weir_state_count(v), 100);
    assert_int_equal(weir_state_drop_key_groups(b, 0, 32767), 0);
    assert_int_equal(weir_state_count(v), 0);
    assert_int_equal(weir_state_count(l), 0);
    assert_int_equal(weir_state_count(m), 0);
    vput(v, 4, "k4", "back");
    assert_string_equal(vget(v, 4, "k4", buf, sizeof(buf)), "back");
    free_backend(b);
}

static void
test_list_and_map_keys_are_isolated_by_key_group(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 127);
    weir_state_t *l = NULL, *m = NULL;
    char buf[64];
    collect_t c;

    assert_int_equal(weir_state_list(b, "l", 0, &l), 0);
    assert_int_equal(weir_state_map(b, "m", 0, &m), 0);
    add(l, 3, "k", "three");
    add(l, 4, "k", "four");
    mput(m, 3, "k", "u", "three");
    mput(m, 4, "k", "u", "four");
    assert_int_equal(weir_state_list_clear(l, 3, "k", 1), 0);
    assert_int_equal(weir_state_del(m, 3, "k", 1), 0);
    assert_string_equal(list_str(l, 4, "k", &c), "four");
    assert_string_equal(mget(m, 4, "k", "u", buf, sizeof(buf)), "four");
    assert_string_equal(list_str(l, 3, "k", &c), "");
    assert_null(mget(m, 3, "k", "u", buf, sizeof(buf)));
    free_backend(b);
}

/* ---- volume ----------------------------------------------------------- */

static int
sum_cb(void *arg, int kg, const void *key, size_t klen, const void *val, size_t vlen)
{
    long *sum = arg;
    int v;

    memcpy(&v, val, sizeof(v));
    *sum += v;
    return 0;
}

/* 100k keys in each kind; prints operations per second (not asserted). */
static void
test_many_keys_with_a_performance_figure(void **unused)
{
    enum { N = 100000 };
    weir_state_backend_t *b = new_backend(0, 127);
    weir_state_t *v = NULL, *l = NULL, *m = NULL;
    weir_buf_t out = WEIR_BUF_INIT;
    char key[32];
    double t0, t_put, t_get, t_add, t_lget, t_mput;
    long sum = 0, want = 0;
    collect_t c;

    assert_int_equal(weir_state_value(b, "v", &v), 0);
    assert_int_equal(weir_state_list(b, "l", 0, &l), 0);
    assert_int_equal(weir_state_map(b, "m", 0, &m), 0);

    t0 = now_s();
    for (int i = 0; i < N; i++) {
        int kn = snprintf(key, sizeof(key), "account-%d", i);
        assert_int_equal(weir_state_put(v, i % 128, key, (size_t)kn, &i, sizeof(i)), 0);
        want += i;
    }
    t_put = now_s() - t0;
    t0 = now_s();
    for (int i = 0; i < N; i++) {
        int kn = snprintf(key, sizeof(key), "account-%d", i), found = 0, got;
        weir_buf_reset(&out);
        assert_int_equal(weir_state_get(v, i % 128, key, (size_t)kn, &out, &found), 0);
        assert_int_equal(found, 1);
        memcpy(&got, out.data, sizeof(got));
        assert_int_equal(got, i);
    }
    t_get = now_s() - t0;
    assert_int_equal(weir_state_count(v), N);
    assert_int_equal(weir_state_scan(v, 0, 127, sum_cb, &sum), 0);
    assert_int_equal(sum, want);

    t0 = now_s();
    for (int i = 0; i < N; i++) {
        int kn = snprintf(key, sizeof(key), "account-%d", i % 1000);
        assert_int_equal(weir_state_list_add(l, i % 1000 % 128, key, (size_t)kn, "row", 3), 0);
    }
    t_add = now_s() - t0;
    t0 = now_s();
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof(key), "account-%d", i);
        list_str(l, i % 128, key, &c);
        assert_int_equal(c.n, 100);
    }
    t_lget = now_s() - t0;

    t0 = now_s();
    for (int i = 0; i < N; i++) {
        int kn = snprintf(key, sizeof(key), "account-%d", i % 1000);
        assert_int_equal(weir_state_map_put(m, i % 1000 % 128, key, (size_t)kn, &i, sizeof(i),
                                            "v", 1), 0);
    }
    t_mput = now_s() - t0;
    assert_int_equal(weir_state_count(m), N);

    print_message("[ PERF     ] %s: value put %.0f/s, get %.0f/s; list add %.0f/s, "
                  "get of 100 elements %.0f/s; map put %.0f/s\n", g_kind->name,
                  N / t_put, N / t_get, N / t_add, 1000 / t_lget, N / t_mput);
    weir_buf_free(&out);
    free_backend(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_gives_elements_back_in_insertion_order),
        cmocka_unit_test(test_list_get_stops_when_the_callback_says_so),
        cmocka_unit_test(test_list_clear_removes_one_key_and_the_list_starts_over),
        cmocka_unit_test(test_keys_that_are_prefixes_of_each_other_stay_apart),
        cmocka_unit_test(test_list_of_many_elements_keeps_them_all_in_order),
        cmocka_unit_test(test_map_put_get_overwrite_delete),
        cmocka_unit_test(test_map_iter_visits_exactly_one_keys_entries),
        cmocka_unit_test(test_map_scan_visits_a_key_group_range_with_map_keys),
        cmocka_unit_test(test_scan_of_a_list_state_visits_each_element),
        cmocka_unit_test(test_a_name_keeps_its_kind_and_its_ttl_layout),
        cmocka_unit_test(test_bad_arguments_are_refused_not_crashed_on),
        cmocka_unit_test(test_callbacks_may_write_to_other_states),
        cmocka_unit_test(test_ttl_value_expires_after_its_last_write),
        cmocka_unit_test(test_ttl_expired_values_are_invisible_to_scan_and_removed_by_it),
        cmocka_unit_test(test_ttl_list_elements_expire_one_by_one),
        cmocka_unit_test(test_ttl_map_entries_expire_one_by_one),
        cmocka_unit_test(test_ttl_compaction_removes_expired_entries_nobody_reads),
        cmocka_unit_test(test_ttl_memory_table_growth_drops_expired_entries),
        cmocka_unit_test(test_drop_key_groups_empties_a_range_in_every_state),
        cmocka_unit_test(test_list_and_map_keys_are_isolated_by_key_group),
        cmocka_unit_test(test_many_keys_with_a_performance_figure),
    };
    return RUN_ON_ALL_BACKENDS(tests);
}
