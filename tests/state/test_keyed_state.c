/* tests/state/test_keyed_state.c -- value state, on every backend.
 *
 * The contract operators rely on: a value put under (key group, key) comes
 * back from get until it is overwritten or deleted; the same key bytes in
 * two key groups, or in two named states, are unrelated entries; the
 * memory table keeps every entry through growth and through deletions in
 * the middle of probe runs (backward shifting must not lose a neighbour);
 * and a scan over a key-group range visits exactly the entries of that
 * range. Key groups outside the backend's range are refused, so misrouting
 * shows up. Every case runs on the memory and on the RocksDB backend.
 */
#include "backends.h"

/* get into a fresh buffer; returns found, copies the value into val. */
static int
get_str(weir_state_t *s, int kg, const char *key, char *val, size_t cap)
{
    weir_buf_t out = WEIR_BUF_INIT;
    int found = -1;

    assert_int_equal(weir_state_get(s, kg, key, strlen(key), &out, &found), 0);
    assert_true(found == 0 || found == 1);
    if (found) {
        assert_true(out.len < cap);
        memcpy(val, out.data, out.len);
        val[out.len] = '\0';
    }
    weir_buf_free(&out);
    return found;
}

static void
put_str(weir_state_t *s, int kg, const char *key, const char *val)
{
    assert_int_equal(weir_state_put(s, kg, key, strlen(key), val, strlen(val)), 0);
}

static void
test_keyed_state_put_get_overwrite_delete(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 127);
    weir_state_t *s = NULL;
    char val[64];

    assert_int_equal(weir_state_value(b, "counts", &s), 0);
    assert_int_equal(get_str(s, 5, "alice", val, sizeof(val)), 0);
    put_str(s, 5, "alice", "1");
    assert_int_equal(get_str(s, 5, "alice", val, sizeof(val)), 1);
    assert_string_equal(val, "1");
    assert_int_equal(weir_state_count(s), 1);

    /* overwrite in place, then with a value longer than the slack */
    put_str(s, 5, "alice", "2");
    assert_int_equal(get_str(s, 5, "alice", val, sizeof(val)), 1);
    assert_string_equal(val, "2");
    put_str(s, 5, "alice", "a value much longer than sixteen bytes");
    assert_int_equal(get_str(s, 5, "alice", val, sizeof(val)), 1);
    assert_string_equal(val, "a value much longer than sixteen bytes");
    put_str(s, 5, "alice", "");
    assert_int_equal(get_str(s, 5, "alice", val, sizeof(val)), 1);
    assert_string_equal(val, "");
    assert_int_equal(weir_state_count(s), 1);

    assert_int_equal(weir_state_del(s, 5, "alice", 5), 0);
    assert_int_equal(get_str(s, 5, "alice", val, sizeof(val)), 0);
    assert_int_equal(weir_state_count(s), 0);
    /* deleting again is fine */
    assert_int_equal(weir_state_del(s, 5, "alice", 5), 0);
    assert_int_equal(weir_state_count(s), 0);

    /* the same name gives the same state */
    weir_state_t *again = NULL;
    assert_int_equal(weir_state_value(b, "counts", &again), 0);
    assert_ptr_equal(again, s);
    free_backend(b);
}

static void
test_keyed_state_get_appends_to_buffer(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 3);
    weir_state_t *s = NULL;
    weir_buf_t out = WEIR_BUF_INIT;
    int found = 0;

    assert_int_equal(weir_state_value(b, "v", &s), 0);
    put_str(s, 1, "k", "world");
    assert_int_equal(weir_buf_append(&out, "hello ", 6), 0);
    assert_int_equal(weir_state_get(s, 1, "k", 1, &out, &found), 0);
    assert_int_equal(found, 1);
    assert_int_equal(out.len, 11);
    assert_memory_equal(out.data, "hello world", 11);
    weir_buf_free(&out);
    free_backend(b);
}

static void
test_keyed_state_many_keys_survive_growth_and_deletes(void **unused)
{
    enum { N = 20000 };
    weir_state_backend_t *b = new_backend(0, 127);
    weir_state_t *s = NULL;
    char key[32], val[32], got[64];

    assert_int_equal(weir_state_value(b, "big", &s), 0);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        snprintf(val, sizeof(val), "v%d", i * 7);
        put_str(s, i % 128, key, val);
    }
    assert_int_equal(weir_state_count(s), N);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        snprintf(val, sizeof(val), "v%d", i * 7);
        assert_int_equal(get_str(s, i % 128, key, got, sizeof(got)), 1);
        assert_string_equal(got, val);
    }
    /* delete every third key: the others must all stay reachable */
    for (int i = 0; i < N; i += 3) {
        snprintf(key, sizeof(key), "key-%d", i);
        assert_int_equal(weir_state_del(s, i % 128, key, strlen(key)), 0);
    }
    assert_int_equal(weir_state_count(s), N - (N + 2) / 3);
    for (int i = 0; i < N; i++) {
        snprintf(key, sizeof(key), "key-%d", i);
        snprintf(val, sizeof(val), "v%d", i * 7);
        if (i % 3 == 0) {
            assert_int_equal(get_str(s, i % 128, key, got, sizeof(got)), 0);
        } else {
            assert_int_equal(get_str(s, i % 128, key, got, sizeof(got)), 1);
            assert_string_equal(got, val);
        }
    }
    /* and re-inserting after deletes works */
    for (int i = 0; i < N; i += 3) {
        snprintf(key, sizeof(key), "key-%d", i);
        put_str(s, i % 128, key, "back");
    }
    assert_int_equal(weir_state_count(s), N);
    assert_int_equal(get_str(s, 0, "key-0", got, sizeof(got)), 1);
    assert_string_equal(got, "back");
    free_backend(b);
}

static void
test_keyed_state_same_key_in_two_key_groups_is_distinct(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 127);
    weir_state_t *s = NULL;
    char got[16];

    assert_int_equal(weir_state_value(b, "v", &s), 0);
    put_str(s, 3, "k", "three");
    put_str(s, 4, "k", "four");
    assert_int_equal(weir_state_count(s), 2);
    assert_int_equal(get_str(s, 3, "k", got, sizeof(got)), 1);
    assert_string_equal(got, "three");
    assert_int_equal(get_str(s, 4, "k", got, sizeof(got)), 1);
    assert_string_equal(got, "four");
    assert_int_equal(get_str(s, 5, "k", got, sizeof(got)), 0);
    assert_int_equal(weir_state_del(s, 3, "k", 1), 0);
    assert_int_equal(get_str(s, 3, "k", got, sizeof(got)), 0);
    assert_int_equal(get_str(s, 4, "k", got, sizeof(got)), 1);
    assert_string_equal(got, "four");
    free_backend(b);
}

static void
test_keyed_state_empty_key_and_binary_keys(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 1);
    weir_state_t *s = NULL;
    weir_buf_t out = WEIR_BUF_INIT;
    const char k1[] = { 'a', 0, 'b' }, k2[] = { 'a', 0, 'c' };
    int found = 0;

    assert_int_equal(weir_state_value(b, "v", &s), 0);
    assert_int_equal(weir_state_put(s, 0, "", 0, "empty", 5), 0);
    assert_int_equal(weir_state_put(s, 0, k1, 3, "1", 1), 0);
    assert_int_equal(weir_state_put(s, 0, k2, 3, "2", 1), 0);
    assert_int_equal(weir_state_count(s), 3);
    assert_int_equal(weir_state_get(s, 0, NULL, 0, &out, &found), 0);
    assert_int_equal(found, 1);
    assert_memory_equal(out.data, "empty", 5);
    weir_buf_reset(&out);
    assert_int_equal(weir_state_get(s, 0, k2, 3, &out, &found), 0);
    assert_int_equal(found, 1);
    assert_int_equal(out.len, 1);
    assert_int_equal(out.data[0], '2');
    weir_buf_free(&out);
    free_backend(b);
}

/* Random puts, deletes and gets against a plain array as the oracle: any
 * slip in probing or backward shifting loses or resurrects an entry. */
static void
test_keyed_state_matches_a_model_under_random_churn(void **unused)
{
    enum { KEYS = 700, OPS = 200000 };
    static int model[KEYS];          /* -1: absent, else the value */
    weir_state_backend_t *b = new_backend(0, 127);
    weir_state_t *s = NULL;
    weir_buf_t out = WEIR_BUF_INIT;
    uint64_t x = 88172645463325252ull;
    size_t live = 0;

    assert_int_equal(weir_state_value(b, "churn", &s), 0);
    for (int k = 0; k < KEYS; k++)
        model[k] = -1;
    for (int op = 0; op < OPS; op++) {
        int k, v, found = 0;
        char key[16];

        x ^= x << 13; x ^= x >> 7; x ^= x << 17;          /* xorshift64 */
        k = (int)(x % KEYS);
        v = (int)((x >> 20) % 1000000);
        snprintf(key, sizeof(key), "%d", k);
        switch ((x >> 40) % 3) {
        case 0:
            assert_int_equal(weir_state_put(s, k % 128, key, strlen(key), &v, sizeof(v)), 0);
            live += model[k] < 0;
            model[k] = v;
            break;
        case 1:
            assert_int_equal(weir_state_del(s, k % 128, key, strlen(key)), 0);
            live -= model[k] >= 0;
            model[k] = -1;
            break;
        default:
            weir_buf_reset(&out);
            assert_int_equal(weir_state_get(s, k % 128, key, strlen(key), &out, &found), 0);
            assert_int_equal(found, model[k] >= 0);
            if (found) {
                assert_int_equal(out.len, sizeof(int));
                memcpy(&v, out.data, sizeof(v));
                assert_int_equal(v, model[k]);
            }
        }
        if (g_kind->cheap_count || op % 1000 == 0)
            assert_int_equal(weir_state_count(s), live);
    }
    assert_int_equal(weir_state_count(s), live);
    weir_buf_free(&out);
    free_backend(b);
}

typedef struct seen {
    int n;
    int per_kg[128];
    long sum;
} seen_t;

static int
count_visit(void *arg, int kg, const void *key, size_t klen, const void *val, size_t vlen)
{
    seen_t *s = arg;
    char buf[32];

    assert_true(vlen < sizeof(buf));
    memcpy(buf, val, vlen);
    buf[vlen] = '\0';
    s->n++;
    s->per_kg[kg]++;
    s->sum += atol(buf);
    return 0;
}

static int
stop_visit(void *arg, int kg, const void *key, size_t klen, const void *val, size_t vlen)
{
    int *n = arg;
    return ++(*n) == 3 ? 42 : 0;
}

static void
test_keyed_state_scan_visits_exactly_a_key_group_range(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 127);
    weir_state_t *s = NULL;
    seen_t seen;
    char key[16], val[16];
    long want_sum = 0;
    int want_n = 0, stops = 0;

    assert_int_equal(weir_state_value(b, "v", &s), 0);
    for (int i = 0; i < 1280; i++) {
        snprintf(key, sizeof(key), "%d", i);
        snprintf(val, sizeof(val), "%d", i);
        put_str(s, i % 128, key, val);
        if (i % 128 >= 40 && i % 128 <= 59) {
            want_n++;
            want_sum += i;
        }
    }
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(weir_state_scan(s, 40, 59, count_visit, &seen), 0);
    assert_int_equal(seen.n, want_n);
    assert_int_equal(seen.n, 200);
    assert_int_equal(seen.sum, want_sum);
    for (int kg = 0; kg < 128; kg++)
        assert_int_equal(seen.per_kg[kg], kg >= 40 && kg <= 59 ? 10 : 0);

    /* a non-zero return stops the scan and is returned */
    assert_int_equal(weir_state_scan(s, 0, 127, stop_visit, &stops), 42);
    assert_int_equal(stops, 3);
    free_backend(b);
}

static void
test_keyed_state_named_states_are_independent(void **unused)
{
    weir_state_backend_t *b = new_backend(0, 127);
    weir_state_t *a = NULL, *c = NULL;
    char got[16];

    assert_int_equal(weir_state_value(b, "a", &a), 0);
    assert_int_equal(weir_state_value(b, "c", &c), 0);
    assert_ptr_not_equal(a, c);
    put_str(a, 7, "k", "in-a");
    assert_int_equal(get_str(c, 7, "k", got, sizeof(got)), 0);
    put_str(c, 7, "k", "in-c");
    assert_int_equal(get_str(a, 7, "k", got, sizeof(got)), 1);
    assert_string_equal(got, "in-a");
    assert_int_equal(get_str(c, 7, "k", got, sizeof(got)), 1);
    assert_string_equal(got, "in-c");
    assert_int_equal(weir_state_del(a, 7, "k", 1), 0);
    assert_int_equal(weir_state_count(a), 0);
    assert_int_equal(weir_state_count(c), 1);
    free_backend(b);
}

static void
test_keyed_state_refuses_key_groups_outside_its_range(void **unused)
{
    weir_state_backend_t *b = new_backend(43, 85), *bad = NULL;
    weir_state_t *s = NULL;
    weir_buf_t out = WEIR_BUF_INIT;
    int found = 0;

    assert_int_equal(weir_state_value(b, "v", &s), 0);
    assert_int_equal(weir_state_put(s, 42, "k", 1, "v", 1), WEIR_ERANGE);
    assert_int_equal(weir_state_put(s, 86, "k", 1, "v", 1), WEIR_ERANGE);
    assert_int_equal(weir_state_get(s, 86, "k", 1, &out, &found), WEIR_ERANGE);
    assert_int_equal(weir_state_put(s, 43, "k", 1, "v", 1), 0);
    assert_int_equal(weir_state_put(s, 85, "k", 1, "v", 1), 0);
    assert_int_equal(weir_state_count(s), 2);
    weir_buf_free(&out);
    free_backend(b);

    assert_int_equal(weir_state_backend_memory(5, 4, &bad), WEIR_EINVAL);
    assert_int_equal(weir_state_backend_memory(-1, 4, &bad), WEIR_EINVAL);
    assert_int_equal(weir_state_backend_memory(0, 32768, &bad), WEIR_EINVAL);
    assert_null(bad);
    weir_state_backend_destroy(NULL);
    assert_int_equal(weir_state_backend_drop(NULL), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyed_state_put_get_overwrite_delete),
        cmocka_unit_test(test_keyed_state_get_appends_to_buffer),
        cmocka_unit_test(test_keyed_state_many_keys_survive_growth_and_deletes),
        cmocka_unit_test(test_keyed_state_same_key_in_two_key_groups_is_distinct),
        cmocka_unit_test(test_keyed_state_empty_key_and_binary_keys),
        cmocka_unit_test(test_keyed_state_matches_a_model_under_random_churn),
        cmocka_unit_test(test_keyed_state_scan_visits_exactly_a_key_group_range),
        cmocka_unit_test(test_keyed_state_named_states_are_independent),
        cmocka_unit_test(test_keyed_state_refuses_key_groups_outside_its_range),
    };
    return RUN_ON_ALL_BACKENDS(tests);
}
