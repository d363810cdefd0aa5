/* tests/state/test_write_cache.c -- the RocksDB backend's write-back cache
 * changes no result.
 *
 * The same long random sequence of operations -- value put/get/delete,
 * list append/read/clear, map put/get/delete/iterate/clear, counts and
 * scans, over a few hundred keys in 8 key groups -- runs against the
 * memory backend (the oracle) and against RocksDB with a cache so small
 * (1 MiB: about 3,000 entries) that it fills and starts over again and
 * again, and with the cache off. Every read must give the same answer.
 * At the end the RocksDB state is compared whole, then again after a
 * snapshot restored into a memory backend (the snapshot saw every cached
 * write) and after a clean close and reopen (the close wrote them).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "state/keyed_state.h"
#include "runtime/core/fsutil.h"

#define NKEYS 300
#define NOPS  120000

typedef struct {
    weir_state_backend_t *b;
    weir_state_t *v, *l, *m;
} side_t;

static char tmp[256];

static uint64_t rng = 88172645463325252ull;
static uint64_t
next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void
states(side_t *s)
{
    assert_int_equal(weir_state_value(s->b, "v", &s->v), 0);
    assert_int_equal(weir_state_list(s->b, "l", 0, &s->l), 0);
    assert_int_equal(weir_state_map(s->b, "m", 0, &s->m), 0);
}

/* ---- answers as text ---------------------------------------------------- */

typedef struct {
    char **s;
    int    n, cap;
} lines_t;

static void
push(lines_t *t, const char *fmt, ...)
{
    va_list ap;
    char buf[512];

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->s = realloc(t->s, sizeof(char *) * (size_t)t->cap);
        assert_non_null(t->s);
    }
    t->s[t->n++] = strdup(buf);
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted and joined with '\n' (new string); frees t. */
static char *
joined(lines_t *t, bool sort)
{
    size_t len = 1;
    char *out, *p;

    if (sort && t->n > 1)
        qsort(t->s, (size_t)t->n, sizeof(char *), cmp_str);
    for (int i = 0; i < t->n; i++)
        len += strlen(t->s[i]) + 1;
    p = out = malloc(len);
    assert_non_null(out);
    for (int i = 0; i < t->n; i++) {
        p += sprintf(p, "%s\n", t->s[i]);
        free(t->s[i]);
    }
    *p = '\0';
    free(t->s);
    memset(t, 0, sizeof(*t));
    return out;
}

static int
elem_cb(void *arg, const void *val, size_t vlen)
{
    push(arg, "%.*s", (int)vlen, (const char *)val);
    return 0;
}

static int
visit_cb(void *arg, int kg, const void *key, size_t klen, const void *val, size_t vlen)
{
    push(arg, "%d/%.*s=%.*s", kg, (int)klen, (const char *)key, (int)vlen, (const char *)val);
    return 0;
}

static int
mvisit_cb(void *arg, int kg, const void *key, size_t klen, const void *ukey, size_t uklen,
          const void *val, size_t vlen)
{
    push(arg, "%d/%.*s/%.*s=%.*s", kg, (int)klen, (const char *)key, (int)uklen,
         (const char *)ukey, (int)vlen, (const char *)val);
    return 0;
}

/* One operation on a side; the answer as a new string. */
static char *
apply(side_t *s, uint64_t op, int kg, const char *key, const char *ukey, const char *val)
{
    weir_buf_t out = WEIR_BUF_INIT;
    lines_t t = { 0 };
    size_t kl = strlen(key), ul = strlen(ukey), vl = strlen(val);
    int found = 0;
    char *r;

    switch (op % 16) {
    case 0: case 1: case 2:
        assert_int_equal(weir_state_put(s->v, kg, key, kl, val, vl), 0);
        return strdup("put");
    case 3: case 4:
        assert_int_equal(weir_state_get(s->v, kg, key, kl, &out, &found), 0);
        push(&t, "%d:%.*s", found, (int)out.len, out.data ? out.data : "");
        weir_buf_free(&out);
        return joined(&t, false);
    case 5:
        assert_int_equal(weir_state_del(s->v, kg, key, kl), 0);
        return strdup("del");
    case 6: case 7:
        assert_int_equal(weir_state_list_add(s->l, kg, key, kl, val, vl), 0);
        return strdup("add");
    case 8:
        assert_int_equal(weir_state_list_get(s->l, kg, key, kl, elem_cb, &t), 0);
        return joined(&t, false);
    case 9:
        if (op % 64 == 9)
            assert_int_equal(weir_state_del(s->l, kg, key, kl), 0);
        return strdup("list del");
    case 10: case 11:
        assert_int_equal(weir_state_map_put(s->m, kg, key, kl, ukey, ul, val, vl), 0);
        return strdup("map put");
    case 12:
        assert_int_equal(weir_state_map_get(s->m, kg, key, kl, ukey, ul, &out, &found), 0);
        push(&t, "%d:%.*s", found, (int)out.len, out.data ? out.data : "");
        weir_buf_free(&out);
        return joined(&t, false);
    case 13:
        assert_int_equal(weir_state_map_del(s->m, kg, key, kl, ukey, ul), 0);
        return strdup("map del");
    case 14:
        if (op % 64 == 14)
            assert_int_equal(weir_state_del(s->m, kg, key, kl), 0);
        assert_int_equal(weir_state_map_iter(s->m, kg, key, kl, visit_cb, &t), 0);
        return joined(&t, true);
    default:
        if (op % 512 == 15) {
            push(&t, "%zu %zu %zu", weir_state_count(s->v), weir_state_count(s->l),
                 weir_state_count(s->m));
            assert_int_equal(weir_state_scan(s->v, kg, kg, visit_cb, &t), 0);
            return joined(&t, true);
        }
        assert_int_equal(weir_state_get(s->v, kg, key, kl, &out, &found), 0);
        push(&t, "%d:%.*s", found, (int)out.len, out.data ? out.data : "");
        weir_buf_free(&out);
        r = joined(&t, false);
        return r;
    }
}

/* Orders list lines "kg/key=value" by kg/key only, keeping the order of a
 * key's elements (the scan gives them in insertion order): a stable sort,
 * the index breaking ties. */
typedef struct { const char *s; int i; } keyed_line_t;

static int
cmp_keyed(const void *a, const void *b)
{
    const keyed_line_t *x = a, *y = b;
    size_t nx = strcspn(x->s, "="), ny = strcspn(y->s, "=");
    int c = memcmp(x->s, y->s, nx < ny ? nx : ny);

    if (c == 0 && nx != ny)
        c = nx < ny ? -1 : 1;
    return c != 0 ? c : (x->i > y->i) - (x->i < y->i);
}

/* Everything a side holds, as text; list elements in their order. */
static char *
dump(side_t *s)
{
    lines_t t = { 0 }, l = { 0 };
    keyed_line_t *kl;
    char *a, *b, *out;

    push(&t, "counts %zu %zu %zu", weir_state_count(s->v), weir_state_count(s->l),
         weir_state_count(s->m));
    assert_int_equal(weir_state_scan(s->v, 0, 7, visit_cb, &t), 0);
    assert_int_equal(weir_state_map_scan(s->m, 0, 7, mvisit_cb, &t), 0);
    a = joined(&t, true);
    assert_int_equal(weir_state_scan(s->l, 0, 7, visit_cb, &l), 0);
    kl = calloc((size_t)l.n + 1, sizeof(*kl));
    assert_non_null(kl);
    for (int i = 0; i < l.n; i++)
        kl[i] = (keyed_line_t){ l.s[i], i };
    qsort(kl, (size_t)l.n, sizeof(*kl), cmp_keyed);
    for (int i = 0; i < l.n; i++)
        push(&t, "%s", kl[i].s);
    free(kl);
    b = joined(&t, false);
    free(joined(&l, false));                /* frees l */
    out = malloc(strlen(a) + strlen(b) + 1);
    assert_non_null(out);
    strcpy(out, a);
    strcat(out, b);
    free(a);
    free(b);
    return out;
}

static void
run(size_t cache_bytes)
{
    weir_state_rocksdb_tuning_t tu;
    weir_err_t err = { 0 };
    side_t mem = { 0 }, rdb = { 0 }, back = { 0 };
    char dir[300], snap[300], *a, *b;
    const char *dirs[1];

    weir_state_rocksdb_tuning_defaults(&tu);
    tu.write_cache_bytes = cache_bytes;
    assert_int_equal(weir_state_rocksdb_tune(&tu), 0);
    snprintf(dir, sizeof(dir), "%s/db-%zu", tmp, cache_bytes);
    snprintf(snap, sizeof(snap), "%s/snap-%zu", tmp, cache_bytes);
    assert_int_equal(weir_state_backend_memory(0, 7, &mem.b), 0);
    if (weir_state_backend_rocksdb(dir, 0, 7, &rdb.b, &err) != 0)
        fail_msg("open: %s", err.msg);
    states(&mem);
    states(&rdb);
    rng = 88172645463325252ull;
    for (int i = 0; i < NOPS; i++) {
        uint64_t op = next(), k = next();
        char key[32], ukey[16], val[48];
        int kg = (int)(k % 8);

        /* a hot core and a long tail: some keys stay cached, most do not */
        snprintf(key, sizeof(key), "key-%llu",
                 (unsigned long long)(k % 4 == 0 ? (k >> 8) % NKEYS : (k >> 8) % 16));
        snprintf(ukey, sizeof(ukey), "u%llu", (unsigned long long)((k >> 20) % 6));
        snprintf(val, sizeof(val), "v%d-%llu", i, (unsigned long long)((op >> 32) % 1000));
        a = apply(&mem, op, kg, key, ukey, val);
        b = apply(&rdb, op, kg, key, ukey, val);
        if (strcmp(a, b) != 0)
            fail_msg("op %d (%llu on %d/%s/%s): memory says\n%s\nRocksDB (cache %zu) says\n%s",
                     i, (unsigned long long)(op % 16), kg, key, ukey, a, cache_bytes, b);
        free(a);
        free(b);
    }
    /* writes that nothing read back yet: still in the cache (when on) */
    for (int i = 0; i < 50; i++) {
        char key[32], val[32];
        snprintf(key, sizeof(key), "late-%d", i);
        snprintf(val, sizeof(val), "w%d", i);
        for (int k = 0; k < 2; k++) {
            side_t *sd = k == 0 ? &mem : &rdb;
            assert_int_equal(weir_state_put(sd->v, i % 8, key, strlen(key), val, strlen(val)), 0);
            assert_int_equal(weir_state_list_add(sd->l, i % 8, key, strlen(key), val,
                                                 strlen(val)), 0);
            assert_int_equal(weir_state_map_put(sd->m, i % 8, key, strlen(key), "u", 1, val,
                                                strlen(val)), 0);
            assert_int_equal(weir_state_del(sd->v, 1, "key-1", 5), 0);
        }
    }
    a = dump(&mem);

    /* a snapshot sees every cached write */
    if (weir_state_snapshot(rdb.b, snap, NULL, &err) != 0)
        fail_msg("snapshot: %s", err.msg);
    assert_int_equal(weir_state_backend_memory(0, 7, &back.b), 0);
    dirs[0] = snap;
    if (weir_state_restore(back.b, dirs, 1, &err) != 0)
        fail_msg("restore: %s", err.msg);
    states(&back);
    b = dump(&back);
    assert_string_equal(a, b);
    free(b);
    weir_state_backend_destroy(back.b);
    b = dump(&rdb);
    assert_string_equal(a, b);
    free(b);
    /* more cached writes, and a close without reading them */
    for (int k = 0; k < 2; k++) {
        side_t *sd = k == 0 ? &mem : &rdb;
        assert_int_equal(weir_state_put(sd->v, 3, "closing", 7, "yes", 3), 0);
        assert_int_equal(weir_state_map_del(sd->m, 0, "late-0", 6, "u", 1), 0);
    }
    free(a);
    a = dump(&mem);

    /* and so does a clean close */
    weir_state_backend_destroy(rdb.b);
    if (weir_state_backend_rocksdb(dir, 0, 7, &rdb.b, &err) != 0)
        fail_msg("reopen: %s", err.msg);
    states(&rdb);
    b = dump(&rdb);
    assert_string_equal(a, b);
    free(b);
    free(a);
    assert_int_equal(weir_state_backend_drop(rdb.b), 0);
    weir_state_backend_destroy(mem.b);
    weir_state_rocksdb_tuning_defaults(&tu);
    assert_int_equal(weir_state_rocksdb_tune(&tu), 0);
}

static void
test_small_cache_that_keeps_starting_over(void **state)
{
    (void)state;
    run(1u << 20);
}

static void
test_default_cache(void **state)
{
    weir_state_rocksdb_tuning_t tu;

    (void)state;
    weir_state_rocksdb_tuning_defaults(&tu);
    run(tu.write_cache_bytes);
}

static void
test_no_cache(void **state)
{
    (void)state;
    run(0);
}

static void
test_tuning_checks_the_size(void **state)
{
    weir_state_rocksdb_tuning_t tu;

    (void)state;
    weir_state_rocksdb_tuning_defaults(&tu);
    assert_int_equal(tu.write_cache_bytes, 32u << 20);
    tu.write_cache_bytes = 1000;                /* below 1 MiB, not 0 */
    assert_int_equal(weir_state_rocksdb_tune(&tu), WEIR_EINVAL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_cache_that_keeps_starting_over),
        cmocka_unit_test(test_default_cache),
        cmocka_unit_test(test_no_cache),
        cmocka_unit_test(test_tuning_checks_the_size),
    };
    weir_err_t err = { 0 };
    int rc;

    snprintf(tmp, sizeof(tmp), "%s/weir-wcache-XXXXXX",
             getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(tmp) == NULL)
        return 2;
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    weir_rm_rf(tmp, &err);
    return rc;
}
