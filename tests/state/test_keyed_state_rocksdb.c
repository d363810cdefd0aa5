/* tests/state/test_keyed_state_rocksdb.c -- what only the RocksDB backend does.
 *
 * A RocksDB backend lives in a directory: closing and reopening it keeps
 * every state, its column family, its kind and its TTL; list elements
 * appended after a reopen still come after the old ones (the sequence
 * counter persists past a block boundary); the TTL compaction filter knows a
 * state's TTL from the directory before any operator asks for it;
 * drop_key_groups reaches column families not asked for since the reopen.
 * destroy keeps the directory, drop deletes it, and a directory that is not
 * ours (not empty, no marker) is refused and left untouched, as is one that
 * is already open. Tuning is checked.
 */
#include "backends.h"

#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#define T0 1000000000000ll

static weir_state_backend_t *
open_at(const char *dir, int first, int last)
{
    weir_state_backend_t *b = NULL;
    weir_err_t err = { 0 };

    if (weir_state_backend_rocksdb(dir, first, last, &b, &err) != 0)
        fail_msg("cannot open %s: %s", dir, err.msg);
    return b;
}

static bool
exists(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0;
}

static int
collect_elem(void *arg, const void *val, size_t vlen)
{
    char *text = arg;
    size_t len = strlen(text);

    assert_true(len + vlen + 2 < 512);
    if (len > 0)
        text[len++] = ',';
    memcpy(text + len, val, vlen);
    text[len + vlen] = '\0';
    return 0;
}

static const char *
list_str(weir_state_t *s, int kg, const char *key, char *text)
{
    text[0] = '\0';
    assert_int_equal(weir_state_list_get(s, kg, key, strlen(key), collect_elem, text), 0);
    return text;
}

static const char *
get_str(weir_state_t *s, int kg, const char *key, char *buf, size_t cap)
{
    weir_buf_t out = WEIR_BUF_INIT;
    int found = 0;

    assert_int_equal(weir_state_get(s, kg, key, strlen(key), &out, &found), 0);
    if (found) {
        assert_true(out.len < cap);
        memcpy(buf, out.data, out.len);
        buf[out.len] = '\0';
    }
    weir_buf_free(&out);
    return found ? buf : NULL;
}

static const char *
mget(weir_state_t *s, int kg, const char *key, const char *ukey, char *buf, size_t cap)
{
    weir_buf_t out = WEIR_BUF_INIT;
    int found = 0;

    assert_int_equal(weir_state_map_get(s, kg, key, strlen(key), ukey, strlen(ukey),
                                        &out, &found), 0);
    if (found) {
        assert_true(out.len < cap);
        memcpy(buf, out.data, out.len);
        buf[out.len] = '\0';
    }
    weir_buf_free(&out);
    return found ? buf : NULL;
}

static void
test_rocksdb_reopen_keeps_states_kinds_and_ttls(void **unused)
{
    weir_state_backend_t *b;
    weir_state_t *v = NULL, *l = NULL, *m = NULL, *x = NULL;
    char dir[300], buf[512];

    fresh_dir(dir, sizeof(dir));
    b = open_at(dir, 0, 127);
    assert_int_equal(weir_state_value(b, "counts", &v), 0);
    assert_int_equal(weir_state_list(b, "join.left", 0, &l), 0);
    assert_int_equal(weir_state_map(b, "sessions", 3600000000ll, &m), 0);
    assert_int_equal(weir_state_put(v, 7, "alice", 5, "41", 2), 0);
    assert_int_equal(weir_state_list_add(l, 9, "k", 1, "first", 5), 0);
    assert_int_equal(weir_state_list_add(l, 9, "k", 1, "second", 6), 0);
    assert_int_equal(weir_state_map_put(m, 100, "u", 1, "page", 4, "/home", 5), 0);
    weir_state_backend_destroy(b);
    assert_true(exists(dir));

    b = open_at(dir, 0, 127);
    assert_int_equal(weir_state_value(b, "counts", &v), 0);
    assert_string_equal(get_str(v, 7, "alice", buf, sizeof(buf)), "41");
    assert_int_equal(weir_state_count(v), 1);
    assert_int_equal(weir_state_list(b, "join.left", 0, &l), 0);
    assert_string_equal(list_str(l, 9, "k", buf), "first,second");
    /* kinds and TTL layouts persist */
    assert_int_equal(weir_state_value(b, "sessions", &x), WEIR_ETYPE);
    assert_non_null(strstr(weir_state_backend_error(b), "is a map state"));
    assert_int_equal(weir_state_map(b, "sessions", 0, &x), WEIR_ETYPE);
    assert_non_null(strstr(weir_state_backend_error(b), "written with TTL"));
    assert_int_equal(weir_state_map(b, "sessions", 7200000000ll, &m), 0);   /* new duration */
    assert_string_equal(mget(m, 100, "u", "page", buf, sizeof(buf)), "/home");
    assert_int_equal(weir_state_list(b, "counts", 0, &x), WEIR_ETYPE);
    weir_state_backend_destroy(b);

    /* a third open sees the new duration kept, and nothing lost */
    b = open_at(dir, 0, 127);
    assert_int_equal(weir_state_map(b, "sessions", 7200000000ll, &m), 0);
    assert_string_equal(mget(m, 100, "u", "page", buf, sizeof(buf)), "/home");
    assert_int_equal(weir_state_value(b, "counts", &v), 0);
    assert_string_equal(get_str(v, 7, "alice", buf, sizeof(buf)), "41");
    free_backend(b);
}

static void
test_rocksdb_list_order_continues_across_reopens(void **unused)
{
    enum { N = 65536 + 10 };          /* past the first sequence block */
    weir_state_backend_t *b;
    weir_state_t *l = NULL;
    char dir[300], buf[512];

    fresh_dir(dir, sizeof(dir));
    b = open_at(dir, 0, 3);
    assert_int_equal(weir_state_list(b, "l", 0, &l), 0);
    assert_int_equal(weir_state_list_add(l, 1, "k", 1, "a", 1), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(weir_state_list_add(l, 2, "filler", 6, "f", 1), 0);
    assert_int_equal(weir_state_list_add(l, 1, "k", 1, "b", 1), 0);
    weir_state_backend_destroy(b);

    b = open_at(dir, 0, 3);
    assert_int_equal(weir_state_list(b, "l", 0, &l), 0);
    assert_int_equal(weir_state_list_add(l, 1, "k", 1, "c", 1), 0);
    weir_state_backend_destroy(b);

    b = open_at(dir, 0, 3);
    assert_int_equal(weir_state_list(b, "l", 0, &l), 0);
    assert_int_equal(weir_state_list_add(l, 1, "k", 1, "d", 1), 0);
    assert_string_equal(list_str(l, 1, "k", buf), "a,b,c,d");
    assert_int_equal(weir_state_count(l), N + 4);
    free_backend(b);
}

/* The filter learns a state's TTL from the directory at open, so expired
 * entries go in a compaction even before the operator asks for the state. */
static void
test_rocksdb_compaction_after_reopen_drops_expired_entries(void **unused)
{
    weir_state_backend_t *b;
    weir_state_t *v = NULL;
    char dir[300], key[16], buf[16];

    fresh_dir(dir, sizeof(dir));
    clock_fake(T0);
    b = open_at(dir, 0, 7);
    assert_int_equal(weir_state_value_ttl(b, "v", 1000, &v), 0);
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(weir_state_put(v, i % 8, key, strlen(key), "x", 1), 0);
    }
    weir_state_backend_destroy(b);

    clock_fake(T0 + 5000);
    b = open_at(dir, 0, 7);
    assert_int_equal(weir_state_backend_compact(b), 0);
    clock_fake(T0 + 1);
    assert_int_equal(weir_state_value_ttl(b, "v", 1000, &v), 0);
    assert_int_equal(weir_state_count(v), 0);
    assert_null(get_str(v, 3, "k3", buf, sizeof(buf)));
    clock_real();
    free_backend(b);
}

static void
test_rocksdb_drop_key_groups_reaches_states_not_yet_asked_for(void **unused)
{
    weir_state_backend_t *b;
    weir_state_t *v = NULL, *l = NULL;
    char dir[300], key[16], buf[512];

    fresh_dir(dir, sizeof(dir));
    b = open_at(dir, 0, 15);
    assert_int_equal(weir_state_value(b, "v", &v), 0);
    assert_int_equal(weir_state_list(b, "l", 0, &l), 0);
    for (int i = 0; i < 64; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        assert_int_equal(weir_state_put(v, i % 16, key, strlen(key), "x", 1), 0);
        assert_int_equal(weir_state_list_add(l, i % 16, key, strlen(key), "e", 1), 0);
    }
    weir_state_backend_destroy(b);

    /* reopened for the lower half only, as after a rescale: hand over the rest */
    b = open_at(dir, 0, 7);
    assert_int_equal(weir_state_drop_key_groups(b, 8, 15), 0);
    weir_state_backend_destroy(b);

    b = open_at(dir, 0, 15);
    assert_int_equal(weir_state_value(b, "v", &v), 0);
    assert_int_equal(weir_state_list(b, "l", 0, &l), 0);
    assert_int_equal(weir_state_count(v), 32);
    assert_int_equal(weir_state_count(l), 32);
    assert_null(get_str(v, 9, "k9", buf, sizeof(buf)));
    assert_string_equal(get_str(v, 7, "k7", buf, sizeof(buf)), "x");
    assert_string_equal(list_str(l, 15, "k15", buf), "");
    assert_string_equal(list_str(l, 0, "k16", buf), "e");
    free_backend(b);
}

static void
test_rocksdb_destroy_keeps_the_directory_and_drop_deletes_it(void **unused)
{
    weir_state_backend_t *b;
    weir_state_t *v = NULL;
    char dir[300], nested[400];

    fresh_dir(dir, sizeof(dir));
    snprintf(nested, sizeof(nested), "%s/job-ab12/vertex-3/subtask-1", dir);
    assert_false(exists(nested));
    b = open_at(nested, 0, 1);                   /* parents are created */
    assert_int_equal(weir_state_value(b, "v", &v), 0);
    assert_int_equal(weir_state_put(v, 0, "k", 1, "v", 1), 0);
    weir_state_backend_destroy(b);
    assert_true(exists(nested));

    b = open_at(nested, 0, 1);
    assert_int_equal(weir_state_backend_drop(b), 0);
    assert_false(exists(nested));
    assert_int_equal(errno, ENOENT);
    /* reopening the same place starts empty */
    b = open_at(nested, 0, 1);
    assert_int_equal(weir_state_value(b, "v", &v), 0);
    assert_int_equal(weir_state_count(v), 0);
    free_backend(b);
}

static void
test_rocksdb_refuses_a_directory_that_is_not_ours(void **unused)
{
    weir_state_backend_t *b = NULL, *b2 = NULL;
    weir_err_t err = { 0 };
    char dir[300], file[400];
    FILE *f;

    fresh_dir(dir, sizeof(dir));
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(file, sizeof(file), "%s/precious.txt", dir);
    f = fopen(file, "w");
    assert_non_null(f);
    fputs("keep me", f);
    fclose(f);
    assert_int_equal(weir_state_backend_rocksdb(dir, 0, 1, &b, &err), WEIR_EEXIST);
    assert_null(b);
    assert_non_null(strstr(err.msg, "not empty"));
    assert_true(exists(file));

    /* a marker of another format */
    fresh_dir(dir, sizeof(dir));
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(file, sizeof(file), "%s/WEIR_STATE", dir);
    f = fopen(file, "w");
    assert_non_null(f);
    fputs("weir keyed state, format 99\n", f);
    fclose(f);
    assert_int_equal(weir_state_backend_rocksdb(dir, 0, 1, &b, &err), WEIR_EPROTO);
    assert_non_null(strstr(err.msg, "another format"));

    /* a file where the directory should be */
    snprintf(file, sizeof(file), "%s/precious.txt", dir);
    f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(weir_state_backend_rocksdb(file, 0, 1, &b, &err), WEIR_EIO);
    assert_non_null(strstr(err.msg, "not a directory"));

    /* one directory, two backends: the second is refused (RocksDB's lock) */
    fresh_dir(dir, sizeof(dir));
    b = open_at(dir, 0, 1);
    assert_int_equal(weir_state_backend_rocksdb(dir, 0, 1, &b2, &err), WEIR_EIO);
    assert_null(b2);
    assert_non_null(strstr(err.msg, "lock"));
    free_backend(b);

    assert_int_equal(weir_state_backend_rocksdb(NULL, 0, 1, &b, &err), WEIR_EINVAL);
    assert_int_equal(weir_state_backend_rocksdb("", 0, 1, &b, &err), WEIR_EINVAL);
    assert_int_equal(weir_state_backend_rocksdb(dir, 2, 1, &b, &err), WEIR_EINVAL);
    assert_non_null(strstr(err.msg, "key group range"));
    assert_int_equal(weir_state_backend_rocksdb(dir, 0, 32768, &b, NULL), WEIR_EINVAL);
}

static void
test_rocksdb_tuning_is_checked_and_applies_to_new_backends(void **unused)
{
    weir_state_rocksdb_tuning_t t;
    weir_state_backend_t *b;
    weir_state_t *v = NULL;
    char dir[300], buf[80];

    weir_state_rocksdb_tuning_defaults(&t);
    assert_int_equal(t.block_cache_bytes, 128u << 20);
    t.block_cache_bytes = 1000;
    assert_int_equal(weir_state_rocksdb_tune(&t), WEIR_EINVAL);
    weir_state_rocksdb_tuning_defaults(&t);
    t.background_jobs = 0;
    assert_int_equal(weir_state_rocksdb_tune(&t), WEIR_EINVAL);
    weir_state_rocksdb_tuning_defaults(&t);
    t.max_open_files = 3;
    assert_int_equal(weir_state_rocksdb_tune(&t), WEIR_EINVAL);
    assert_int_equal(weir_state_rocksdb_tune(NULL), WEIR_EINVAL);

    weir_state_rocksdb_tuning_defaults(&t);
    t.block_cache_bytes = 8u << 20;
    t.write_buffer_bytes = 1u << 20;           /* small memtables: flushes happen */
    t.db_write_buffer_bytes = 4u << 20;
    t.max_open_files = -1;
    assert_int_equal(weir_state_rocksdb_tune(&t), 0);
    fresh_dir(dir, sizeof(dir));
    b = open_at(dir, 0, 0);
    assert_int_equal(weir_state_value(b, "v", &v), 0);
    for (int i = 0; i < 50000; i++) {
        char key[16], val[64];
        snprintf(key, sizeof(key), "%d", i);
        memset(val, 'a' + i % 26, sizeof(val));
        assert_int_equal(weir_state_put(v, 0, key, strlen(key), val, sizeof(val)), 0);
    }
    assert_int_equal(weir_state_count(v), 50000);
    assert_non_null(get_str(v, 0, "49999", buf, sizeof(buf)));
    assert_int_equal(strlen(buf), 64);
    assert_int_equal(buf[63], 'a' + 49999 % 26);
    weir_state_rocksdb_tuning_defaults(&t);
    assert_int_equal(weir_state_rocksdb_tune(&t), 0);
    free_backend(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rocksdb_reopen_keeps_states_kinds_and_ttls),
        cmocka_unit_test(test_rocksdb_list_order_continues_across_reopens),
        cmocka_unit_test(test_rocksdb_compaction_after_reopen_drops_expired_entries),
        cmocka_unit_test(test_rocksdb_drop_key_groups_reaches_states_not_yet_asked_for),
        cmocka_unit_test(test_rocksdb_destroy_keeps_the_directory_and_drop_deletes_it),
        cmocka_unit_test(test_rocksdb_refuses_a_directory_that_is_not_ours),
        cmocka_unit_test(test_rocksdb_tuning_is_checked_and_applies_to_new_backends),
    };
    return cmocka_run_group_tests_name("rocksdb", tests, setup_rocksdb, teardown_backend);
}
