/* tests/state/backends.h -- the table of backends the state tests run on.
 *
 * The keyed state contract is one contract: every test file that includes
 * this runs its cases once per backend, as cmocka groups named after them.
 * A RocksDB backend gets a fresh directory under a per-group temporary
 * root, and free_backend() drops it; the root is removed at teardown, so a
 * failing case leaves nothing behind either.
 *
 * Also the fake TTL clock (tests move time instead of sleeping).
 */
#ifndef TESTS_STATE_BACKENDS_H
#define TESTS_STATE_BACKENDS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/core/error.h"
#include "state/keyed_state.h"

typedef struct backend_kind {
    const char *name;
    bool        persistent;          /* survives destroy + reopen */
    bool        cheap_count;         /* weir_state_count is O(1) without TTL */
} backend_kind_t;

static const backend_kind_t backend_memory = { "memory", false, true };
static const backend_kind_t backend_rocksdb = { "rocksdb", true, false };

static const backend_kind_t *g_kind;     /* the group being run */
static char g_root[256];                 /* rocksdb: temporary root */
static int g_dirs;

static inline int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static inline void
rm_tree(const char *path)
{
    nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static inline int
setup_memory(void **unused)
{
    g_kind = &backend_memory;
    return 0;
}

static inline int
setup_rocksdb(void **unused)
{
    const char *tmp = getenv("TMPDIR");

    g_kind = &backend_rocksdb;
    snprintf(g_root, sizeof(g_root), "%s/weir-state-test-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    return mkdtemp(g_root) == NULL ? -1 : 0;
}

static inline int
teardown_backend(void **unused)
{
    if (g_kind == &backend_rocksdb)
        rm_tree(g_root);
    g_kind = NULL;
    return 0;
}

/* A fresh directory name under the root (not created). */
static inline void
fresh_dir(char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/b%d", g_root, g_dirs++);
}

static inline weir_state_backend_t *
new_backend(int first, int last)
{
    weir_state_backend_t *b = NULL;
    weir_err_t err = { 0 };
    char dir[300];

    if (g_kind == &backend_memory) {
        assert_int_equal(weir_state_backend_memory(first, last, &b), 0);
    } else {
        fresh_dir(dir, sizeof(dir));
        if (weir_state_backend_rocksdb(dir, first, last, &b, &err) != 0)
            fail_msg("cannot open rocksdb backend: %s", err.msg);
    }
    assert_non_null(b);
    return b;
}

static inline void
free_backend(weir_state_backend_t *b)
{
    assert_int_equal(weir_state_backend_drop(b), 0);
}

/* ---- the fake clock --------------------------------------------------- */

static _Atomic int64_t fake_now;

static inline int64_t
fake_clock(void)
{
    return atomic_load(&fake_now);
}

static inline void
clock_fake(int64_t now_us)
{
    atomic_store(&fake_now, now_us);
    weir_state_set_clock(fake_clock);
}

static inline void
clock_real(void)
{
    weir_state_set_clock(NULL);
}

static inline double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Runs the tests once per backend; returns the number of failures. */
#define RUN_ON_ALL_BACKENDS(tests)                                                   \
    (cmocka_run_group_tests_name("memory", tests, setup_memory, teardown_backend) + \
     cmocka_run_group_tests_name("rocksdb", tests, setup_rocksdb, teardown_backend))

#endif
