/* tests/state/test_snapshot.c -- snapshots and restore, on every backend.
 *
 * A snapshot is a consistent cut: writes after it are in the live backend
 * and not in the snapshot, and a backend restored from it holds exactly
 * what the live one held at the cut -- value, list (in order) and map
 * states, TTL write times byte for byte. Restoring rescales: two subtasks'
 * snapshots restored at parallelism 3 and 1 put every entry exactly once
 * into the backend owning its key group. Snapshots cross backends (memory
 * -> RocksDB -> memory). The RocksDB fast path hard-links the snapshot's
 * SST files, and what is written after the restore never reaches the
 * snapshot; consecutive snapshots share unchanged SST files, and deleting
 * one keeps the next restorable; across filesystems both copy instead; a
 * savepoint copy shares no file with its source. A snapshot directory is
 * never modified by a restore. Odd state names, empty keys and states
 * without entries survive. Errors (existing or missing directories,
 * damaged metadata, entries, SST files) come as codes with messages, never
 * as crashes. The last case prints how long
 * a RocksDB snapshot takes for ~20 MB and ~200 MB of state (not asserted).
 *
 * Every case compares whole contents: dump() lists every entry of every
 * state as sorted text lines, a list's elements numbered in their order.
 */
#include "backends.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define T0      1000000000000ll      /* the fake clock's start, microseconds */
#define HOUR    3600000000ll

/* ---- groups: a temporary root for snapshots on every backend ----------- */

static int
setup_memory_snap(void **state)
{
    const char *tmp = getenv("TMPDIR");

    setup_memory(state);
    snprintf(g_root, sizeof(g_root), "%s/weir-snap-test-XXXXXX",
             tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    return mkdtemp(g_root) == NULL ? -1 : 0;
}

static int
teardown_snap(void **state)
{
    rm_tree(g_root);
    return teardown_backend(state);
}

static bool
is_rocksdb(void)
{
    return g_kind == &backend_rocksdb;
}

/* ---- dumps ------------------------------------------------------------ */

typedef struct lines {
    char **v;
    int    n, cap;
    const char *state;               /* the state being dumped */
    char   run[256];                 /* list: the key of the current run */
    int    ord;                      /* list: index in the run */
} lines_t;

static void
lines_add(lines_t *l, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->v = realloc(l->v, (size_t)l->cap * sizeof(*l->v));
        assert_non_null(l->v);
    }
    l->v[l->n] = strdup(buf);
    assert_non_null(l->v[l->n]);
    l->n++;
}

static int
visit_value(void *arg, int kg, const void *key, size_t klen, const void *val, size_t vlen)
{
    lines_t *l = arg;

    lines_add(l, "%s %05d %.*s = %.*s", l->state, kg, (int)klen, (const char *)key,
              (int)vlen, (const char *)val);
    return 0;
}

/* A key's elements come one after the other in insertion order (the scan
 * contract): number them within their run. */
static int
visit_list(void *arg, int kg, const void *key, size_t klen, const void *val, size_t vlen)
{
    lines_t *l = arg;
    char id[256];

    snprintf(id, sizeof(id), "%05d %.*s", kg, (int)klen, (const char *)key);
    if (strcmp(id, l->run) != 0) {
        snprintf(l->run, sizeof(l->run), "%s", id);
        l->ord = 0;
    }
    lines_add(l, "%s %s #%03d = %.*s", l->state, id, l->ord++, (int)vlen, (const char *)val);
    return 0;
}

static int
visit_map(void *arg, int kg, const void *key, size_t klen, const void *ukey, size_t uklen,
          const void *val, size_t vlen)
{
    lines_t *l = arg;

    lines_add(l, "%s %05d %.*s [%.*s] = %.*s", l->state, kg, (int)klen, (const char *)key,
              (int)uklen, (const char *)ukey, (int)vlen, (const char *)val);
    return 0;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The states every case writes: value, list, map, each without and with a
 * TTL (one hour: nothing expires unless a case moves the clock). */
static weir_state_t *
st(weir_state_backend_t *b, const char *name)
{
    weir_state_t *s = NULL;
    int rc;

    if (strcmp(name, "v") == 0)
        rc = weir_state_value(b, name, &s);
    else if (strcmp(name, "t") == 0)
        rc = weir_state_value_ttl(b, name, HOUR, &s);
    else if (strcmp(name, "l") == 0)
        rc = weir_state_list(b, name, 0, &s);
    else if (strcmp(name, "tl") == 0)
        rc = weir_state_list(b, name, HOUR, &s);
    else if (strcmp(name, "m") == 0)
        rc = weir_state_map(b, name, 0, &s);
    else
        rc = weir_state_map(b, name, HOUR, &s);
    if (rc != 0)
        fail_msg("state %s: %s", name, weir_state_backend_error(b));
    return s;
}

static const char *const state_names[] = { "v", "t", "l", "tl", "m", "tm" };

/* Every entry of b as sorted lines "state kg key [ukey] #n = value";
 * returns new (free), *nlines the count. */
static char *
dump_n(weir_state_backend_t *b, int first, int last, int *nlines)
{
    lines_t l = { 0 };
    size_t len = 1;
    char *out;

    for (size_t i = 0; i < sizeof(state_names) / sizeof(*state_names); i++) {
        weir_state_t *s = st(b, state_names[i]);

        l.state = state_names[i];
        l.run[0] = '\0';
        if (state_names[i][strlen(state_names[i]) - 1] == 'm')
            assert_int_equal(weir_state_map_scan(s, first, last, visit_map, &l), 0);
        else if (state_names[i][strlen(state_names[i]) - 1] == 'l')
            assert_int_equal(weir_state_scan(s, first, last, visit_list, &l), 0);
        else
            assert_int_equal(weir_state_scan(s, first, last, visit_value, &l), 0);
    }
    qsort(l.v, (size_t)l.n, sizeof(*l.v), cmp_str);
    for (int i = 0; i < l.n; i++)
        len += strlen(l.v[i]) + 1;
    out = malloc(len);
    assert_non_null(out);
    out[0] = '\0';
    for (int i = 0, at = 0; i < l.n; i++) {
        at += sprintf(out + at, "%s\n", l.v[i]);
        free(l.v[i]);
    }
    free(l.v);
    if (nlines != NULL)
        *nlines = l.n;
    return out;
}

static char *
dump(weir_state_backend_t *b)
{
    return dump_n(b, 0, WEIR_STATE_MAX_KEY_GROUP, NULL);
}

/* The lines of several dumps, merged and sorted. */
static char *
merge_dumps(char **d, int n)
{
    lines_t l = { 0 };
    size_t len = 1;
    char *out;

    for (int i = 0; i < n; i++) {
        char *copy = strdup(d[i]), *save = NULL;
        for (char *t = strtok_r(copy, "\n", &save); t != NULL; t = strtok_r(NULL, "\n", &save))
            lines_add(&l, "%s", t);
        free(copy);
    }
    qsort(l.v, (size_t)l.n, sizeof(*l.v), cmp_str);
    for (int i = 0; i < l.n; i++)
        len += strlen(l.v[i]) + 1;
    out = malloc(len);
    out[0] = '\0';
    for (int i = 0, at = 0; i < l.n; i++) {
        at += sprintf(out + at, "%s\n", l.v[i]);
        free(l.v[i]);
    }
    free(l.v);
    return out;
}

/* Every line's key group is in [first, last]. */
static void
assert_key_groups_within(const char *d, int first, int last)
{
    for (const char *p = d; *p != '\0'; p = strchr(p, '\n') + 1) {
        int kg = atoi(strchr(p, ' ') + 1);
        if (kg < first || kg > last)
            fail_msg("key group %d outside [%d, %d]: %.60s", kg, first, last, p);
    }
}

/* Two dumps are equal; else the first line where they differ is shown. */
#define assert_same(got, want) assert_same_at((got), (want), __FILE__, __LINE__)

static void
assert_same_at(const char *got, const char *want, const char *file, int line)
{
    const char *g = got, *w = want;

    if (strcmp(got, want) == 0)
        return;
    while (*g != '\0' && *w != '\0') {
        const char *ge = strchr(g, '\n'), *we = strchr(w, '\n');
        if (ge - g != we - w || memcmp(g, w, (size_t)(ge - g)) != 0)
            break;
        g = ge + 1;
        w = we + 1;
    }
    fail_msg("%s:%d: contents differ (%zu vs %zu bytes): got \"%.*s\", want \"%.*s\"", file,
             line, strlen(got), strlen(want),
             *g ? (int)(strchr(g, '\n') - g) : 5, *g ? g : "<end>",
             *w ? (int)(strchr(w, '\n') - w) : 5, *w ? w : "<end>");
}

/* ---- writing ---------------------------------------------------------- */

/* Key i lives in key group (i * 37) % 128. */
static int
kg_of(int i)
{
    return (i * 37) % 128;
}

static void
write_key(weir_state_backend_t *b, int i, const char *tag)
{
    char key[32], val[64];
    size_t kl = (size_t)snprintf(key, sizeof(key), "k%d", i);
    int kg = kg_of(i);

#define V(...) (size_t)snprintf(val, sizeof(val), __VA_ARGS__)
    assert_int_equal(weir_state_put(st(b, "v"), kg, key, kl, val, V("v%d-%s", i, tag)), 0);
    assert_int_equal(weir_state_put(st(b, "t"), kg, key, kl, val, V("t%d-%s", i, tag)), 0);
    assert_int_equal(weir_state_list_add(st(b, "l"), kg, key, kl, val, V("b%d-%s", i, tag)), 0);
    assert_int_equal(weir_state_list_add(st(b, "l"), kg, key, kl, val, V("a%d-%s", i, tag)), 0);
    if (i % 3 == 0)
        assert_int_equal(weir_state_list_add(st(b, "l"), kg, key, kl, val,
                                             V("c%d-%s", i, tag)), 0);
    assert_int_equal(weir_state_list_add(st(b, "tl"), kg, key, kl, val, V("tl%d-%s", i, tag)), 0);
    assert_int_equal(weir_state_map_put(st(b, "m"), kg, key, kl, "x", 1, val,
                                        V("mx%d-%s", i, tag)), 0);
    assert_int_equal(weir_state_map_put(st(b, "m"), kg, key, kl, "y", 1, val,
                                        V("my%d-%s", i, tag)), 0);
    assert_int_equal(weir_state_map_put(st(b, "tm"), kg, key, kl, "z", 1, val,
                                        V("tz%d-%s", i, tag)), 0);
#undef V
}

/* Keys [from, to) whose key group is b's. */
static void
fill(weir_state_backend_t *b, int first, int last, int from, int to, const char *tag)
{
    for (int i = from; i < to; i++)
        if (kg_of(i) >= first && kg_of(i) <= last)
            write_key(b, i, tag);
}

/* Changes after a snapshot: overwrites, appends, deletes, new keys. */
static void
write_more(weir_state_backend_t *b, int first, int last, int n)
{
    for (int i = 0; i < n; i++) {
        char key[32];
        size_t kl = (size_t)snprintf(key, sizeof(key), "k%d", i);
        int kg = kg_of(i);

        if (kg < first || kg > last)
            continue;
        if (i % 2 == 0)
            assert_int_equal(weir_state_put(st(b, "v"), kg, key, kl, "changed", 7), 0);
        if (i % 5 == 0)
            assert_int_equal(weir_state_list_add(st(b, "l"), kg, key, kl, "later", 5), 0);
        if (i % 7 == 0)
            assert_int_equal(weir_state_map_del(st(b, "m"), kg, key, kl, "x", 1), 0);
        if (i % 11 == 0)
            assert_int_equal(weir_state_del(st(b, "tl"), kg, key, kl), 0);
    }
    fill(b, first, last, n, n + 20, "new");
}

/* ---- snapshots and restores ------------------------------------------- */

static void
snap(weir_state_backend_t *b, char *dir, size_t cap)
{
    weir_err_t err = { 0 };
    uint64_t bytes = 0;

    fresh_dir(dir, cap);
    if (weir_state_snapshot(b, dir, &bytes, &err) != 0)
        fail_msg("snapshot into %s: %s", dir, err.msg);
    assert_true(bytes > 0);
}

/* A new backend of the group's kind for [first, last], restored from
 * dirs: RocksDB through weir_state_backend_rocksdb_restore (fast path when
 * it can), memory through weir_state_restore. */
static weir_state_backend_t *
restored(int first, int last, const char *const *dirs, int n)
{
    weir_state_backend_t *b = NULL;
    weir_err_t err = { 0 };
    char dir[300];

    if (is_rocksdb()) {
        fresh_dir(dir, sizeof(dir));
        if (weir_state_backend_rocksdb_restore(dir, first, last, dirs, n, &b, &err) != 0)
            fail_msg("restore into %s: %s", dir, err.msg);
    } else {
        assert_int_equal(weir_state_backend_memory(first, last, &b), 0);
        if (weir_state_restore(b, dirs, n, &err) != 0)
            fail_msg("restore: %s", err.msg);
    }
    return b;
}

/* The same through weir_state_restore into a just-opened backend of the
 * group's kind (RocksDB: no fast path). */
static weir_state_backend_t *
restored_slow(int first, int last, const char *const *dirs, int n)
{
    weir_state_backend_t *b = new_backend(first, last);
    weir_err_t err = { 0 };

    if (weir_state_restore(b, dirs, n, &err) != 0)
        fail_msg("restore: %s", err.msg);
    return b;
}

/* A listing of every file under dir: name, size, inode, mtime. */
static void
listing_into(const char *dir, const char *rel, lines_t *l)
{
    char path[600], sub[600];
    struct dirent *de;
    DIR *d = opendir(dir);

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        struct stat sb;

        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        snprintf(sub, sizeof(sub), "%s%s", rel, de->d_name);
        assert_int_equal(lstat(path, &sb), 0);
        if (S_ISDIR(sb.st_mode)) {
            strcat(sub, "/");
            listing_into(path, sub, l);
        } else {
            lines_add(l, "%s %lld %llu %lld.%09ld", sub, (long long)sb.st_size,
                      (unsigned long long)sb.st_ino, (long long)sb.st_mtim.tv_sec,
                      sb.st_mtim.tv_nsec);
        }
    }
    closedir(d);
}

static char *
listing(const char *dir)
{
    lines_t l = { 0 };
    char *out;
    size_t len = 1;

    listing_into(dir, "", &l);
    qsort(l.v, (size_t)l.n, sizeof(*l.v), cmp_str);
    for (int i = 0; i < l.n; i++)
        len += strlen(l.v[i]) + 1;
    out = calloc(1, len);
    for (int i = 0, at = 0; i < l.n; i++) {
        at += sprintf(out + at, "%s\n", l.v[i]);
        free(l.v[i]);
    }
    free(l.v);
    return out;
}

/* Inode of some .sst file in dir with st_nlink > 1, or 0. */
static ino_t
linked_sst(const char *dir)
{
    struct dirent *de;
    DIR *d = opendir(dir);
    ino_t ino = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL && ino == 0) {
        char path[600];
        struct stat sb;
        size_t n = strlen(de->d_name);

        if (n < 4 || strcmp(de->d_name + n - 4, ".sst") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (stat(path, &sb) == 0 && sb.st_nlink > 1)
            ino = sb.st_ino;
    }
    closedir(d);
    return ino;
}

static bool
has_inode(const char *dir, ino_t ino)
{
    struct dirent *de;
    DIR *d = opendir(dir);
    bool found = false;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL && !found) {
        char path[600];
        struct stat sb;

        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        found = stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_ino == ino;
    }
    closedir(d);
    return found;
}

/* Number of .sst files of dir_a whose inode is also in dir_b. */
static int
shared_ssts(const char *dir_a, const char *dir_b)
{
    struct dirent *de;
    DIR *d = opendir(dir_a);
    int n = 0;

    assert_non_null(d);
    while ((de = readdir(d)) != NULL) {
        char path[600];
        struct stat sb;
        size_t len = strlen(de->d_name);

        if (len < 4 || strcmp(de->d_name + len - 4, ".sst") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir_a, de->d_name);
        if (stat(path, &sb) == 0 && has_inode(dir_b, sb.st_ino))
            n++;
    }
    closedir(d);
    return n;
}

/* ---- cases ------------------------------------------------------------ */

static void
test_restore_gives_exactly_the_snapshot_not_later_writes(void **unused)
{
    weir_state_backend_t *b, *r, *r2;
    char dir[300], *before, *after, *got, *files;
    const char *dirs[1] = { dir };

    clock_fake(T0);
    b = new_backend(0, 127);
    fill(b, 0, 127, 0, 300, "one");
    before = dump(b);
    snap(b, dir, sizeof(dir));
    files = listing(dir);

    /* the live backend goes on, undisturbed by the snapshot */
    write_more(b, 0, 127, 300);
    after = dump(b);
    assert_string_not_equal(before, after);
    assert_non_null(strstr(after, "changed"));

    r = restored(0, 127, dirs, 1);
    got = dump(r);
    assert_same(got, before);
    free(got);
    /* the live backend still holds its later writes */
    got = dump(b);
    assert_same(got, after);
    free(got);

    /* restored lists go on in order: an element added now comes last */
    assert_int_equal(weir_state_list_add(st(r, "l"), kg_of(3), "k3", 2, "z-after", 7), 0);
    got = dump_n(r, kg_of(3), kg_of(3), NULL);
    assert_non_null(strstr(got, "l 00111 k3 #003 = z-after\n"));
    assert_non_null(strstr(got, "l 00111 k3 #000 = b3-one\n"));
    free(got);

    /* and through weir_state_restore into a just-opened backend */
    r2 = restored_slow(0, 127, dirs, 1);
    got = dump(r2);
    assert_same(got, before);
    free(got);

    /* restoring never wrote into the snapshot: no file, size or mtime
     * changed (RocksDB: opened read-only, no LOG, no LOCK) */
    got = listing(dir);
    assert_same(got, files);
    if (getenv("WEIR_TEST_VERBOSE") != NULL)
        printf("snapshot %s:\n%s", dir, files);
    free(got);
    free(files);

    free_backend(r2);
    free_backend(r);
    free_backend(b);
    free(before);
    free(after);
    clock_real();
}

/* Reads a value as a string into buf; NULL when absent. */
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

    assert_int_equal(weir_state_map_get(s, kg, key, strlen(key), ukey, strlen(ukey), &out,
                                        &found), 0);
    if (found) {
        assert_true(out.len < cap);
        memcpy(buf, out.data, out.len);
        buf[out.len] = '\0';
    }
    weir_buf_free(&out);
    return found ? buf : NULL;
}

static int
join_elem(void *arg, const void *val, size_t vlen)
{
    char *text = arg;
    size_t len = strlen(text);

    assert_true(len + vlen + 2 < 256);
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
    assert_int_equal(weir_state_list_get(s, kg, key, strlen(key), join_elem, text), 0);
    return text;
}

typedef struct ttl_states {
    weir_state_t *v, *l, *m;
} ttl_states_t;

#define TTL 1000                    /* microseconds */

static ttl_states_t
ttl_states(weir_state_backend_t *b)
{
    ttl_states_t t;

    assert_int_equal(weir_state_value_ttl(b, "ttl.v", TTL, &t.v), 0);
    assert_int_equal(weir_state_list(b, "ttl.l", TTL, &t.l), 0);
    assert_int_equal(weir_state_map(b, "ttl.m", TTL, &t.m), 0);
    return t;
}

/* What the TTL states hold at the fake time now. */
static void
check_ttl_at(weir_state_backend_t *b, int64_t now, const char *v_old, const char *v_new,
             const char *list, const char *m_old, const char *m_new)
{
    ttl_states_t t = ttl_states(b);
    char buf[256];
    const char *got;

    clock_fake(now);
    got = get_str(t.v, 5, "old", buf, sizeof(buf));
    if (v_old == NULL)
        assert_null(got);
    else
        assert_string_equal(got, v_old);
    got = get_str(t.v, 5, "new", buf, sizeof(buf));
    if (v_new == NULL)
        assert_null(got);
    else
        assert_string_equal(got, v_new);
    assert_string_equal(list_str(t.l, 5, "k", buf), list);
    got = mget(t.m, 5, "k", "old", buf, sizeof(buf));
    if (m_old == NULL)
        assert_null(got);
    else
        assert_string_equal(got, m_old);
    got = mget(t.m, 5, "k", "new", buf, sizeof(buf));
    if (m_new == NULL)
        assert_null(got);
    else
        assert_string_equal(got, m_new);
}

static void
test_ttl_write_times_survive_a_restore_exactly(void **unused)
{
    weir_state_backend_t *b, *r[3];
    ttl_states_t t;
    char dir[300];
    const char *dirs[1] = { dir };

    clock_fake(T0);
    b = new_backend(0, 127);
    t = ttl_states(b);
    assert_int_equal(weir_state_put(t.v, 5, "old", 3, "o", 1), 0);
    assert_int_equal(weir_state_put(t.v, 5, "gone", 4, "g", 1), 0);
    assert_int_equal(weir_state_list_add(t.l, 5, "k", 1, "e1", 2), 0);
    assert_int_equal(weir_state_map_put(t.m, 5, "k", 1, "old", 3, "mo", 2), 0);
    clock_fake(T0 + 600);
    assert_int_equal(weir_state_put(t.v, 5, "new", 3, "n", 1), 0);
    assert_int_equal(weir_state_list_add(t.l, 5, "k", 1, "e2", 2), 0);
    assert_int_equal(weir_state_map_put(t.m, 5, "k", 1, "new", 3, "mn", 2), 0);
    snap(b, dir, sizeof(dir));

    /* restored later than written: the write times come along, not the
     * restore's time */
    clock_fake(T0 + 700);
    r[0] = restored(0, 127, dirs, 1);
    r[1] = restored_slow(0, 127, dirs, 1);
    r[2] = NULL;
    if (is_rocksdb()) {
        /* and across kinds: RocksDB snapshot into memory */
        weir_err_t err = { 0 };
        assert_int_equal(weir_state_backend_memory(0, 127, &r[2]), 0);
        if (weir_state_restore(r[2], dirs, 1, &err) != 0)
            fail_msg("restore: %s", err.msg);
    }
    for (int i = 0; i < 3 && r[i] != NULL; i++) {
        char buf[256];

        check_ttl_at(r[i], T0 + 999, "o", "n", "e1,e2", "mo", "mn");
        check_ttl_at(r[i], T0 + 1000, NULL, "n", "e2", NULL, "mn");
        check_ttl_at(r[i], T0 + 1599, NULL, "n", "e2", NULL, "mn");
        check_ttl_at(r[i], T0 + 1600, NULL, NULL, "", NULL, NULL);
        /* an item written after the restore gets the time of its write */
        assert_int_equal(weir_state_put(ttl_states(r[i]).v, 5, "old", 3, "again", 5), 0);
        clock_fake(T0 + 2599);
        assert_string_equal(get_str(ttl_states(r[i]).v, 5, "old", buf, sizeof(buf)), "again");
        clock_fake(T0 + 2600);
        assert_null(get_str(ttl_states(r[i]).v, 5, "old", buf, sizeof(buf)));
    }
    /* an item expired when restored entry by entry is not restored at all:
     * move the clock back and it is still not there (the RocksDB fast path
     * takes whole files; its compaction filter drops such items later) */
    clock_fake(T0 + 1200);
    {
        weir_state_backend_t *late = restored_slow(0, 127, dirs, 1);
        char buf[256];

        clock_fake(T0 + 1);
        assert_null(get_str(ttl_states(late).v, 5, "gone", buf, sizeof(buf)));
        assert_null(get_str(ttl_states(late).v, 5, "old", buf, sizeof(buf)));
        assert_string_equal(get_str(ttl_states(late).v, 5, "new", buf, sizeof(buf)), "n");
        free_backend(late);
    }
    for (int i = 0; i < 3; i++)
        if (r[i] != NULL)
            free_backend(r[i]);
    free_backend(b);
    clock_real();
}

static void
test_rescaling_two_into_three_and_into_one_puts_each_entry_once(void **unused)
{
    /* Flink's ranges for max parallelism 128 at parallelism 2, 3 and 1 */
    static const int two[2][2] = { { 0, 63 }, { 64, 127 } };
    static const int three[3][2] = { { 0, 42 }, { 43, 85 }, { 86, 127 } };
    weir_state_backend_t *src[2], *dst[3], *one;
    char d0[300], d1[300], *want, *src_dumps[2], *dst_dumps[3], *got;
    const char *dirs[2] = { d0, d1 };

    clock_fake(T0);
    for (int i = 0; i < 2; i++) {
        src[i] = new_backend(two[i][0], two[i][1]);
        fill(src[i], two[i][0], two[i][1], 0, 400, "r");
        src_dumps[i] = dump(src[i]);
    }
    snap(src[0], d0, sizeof(d0));
    snap(src[1], d1, sizeof(d1));
    want = merge_dumps(src_dumps, 2);

    for (int i = 0; i < 3; i++) {
        dst[i] = restored(three[i][0], three[i][1], dirs, 2);
        dst_dumps[i] = dump(dst[i]);
        assert_key_groups_within(dst_dumps[i], three[i][0], three[i][1]);
        /* exactly the source entries of those key groups */
        got = dump_n(src[three[i][0] < 64 ? 0 : 1], three[i][0], three[i][1], NULL);
        if (three[i][0] < 64 && three[i][1] >= 64) {
            char *parts[2] = { got, dump_n(src[1], three[i][0], three[i][1], NULL) };
            char *merged = merge_dumps(parts, 2);
            free(parts[1]);
            free(got);
            got = merged;
        }
        assert_same(dst_dumps[i], got);
        free(got);
    }
    got = merge_dumps(dst_dumps, 3);
    assert_same(got, want);
    free(got);

    one = restored(0, 127, dirs, 2);
    got = dump(one);
    assert_same(got, want);
    free(got);

    /* a list merged from two snapshots goes on in order in the new owner */
    for (int i = 0; i < 400; i++) {
        if (kg_of(i) >= 43 && kg_of(i) <= 85 && i % 3 == 0) {
            char key[32], *d;
            size_t kl = (size_t)snprintf(key, sizeof(key), "k%d", i);
            char line[128];

            assert_int_equal(weir_state_list_add(st(dst[1], "l"), kg_of(i), key, kl, "zz", 2),
                             0);
            d = dump_n(dst[1], kg_of(i), kg_of(i), NULL);
            snprintf(line, sizeof(line), "l %05d %s #003 = zz\n", kg_of(i), key);
            assert_non_null(strstr(d, line));
            free(d);
        }
    }

    for (int i = 0; i < 3; i++) {
        free(dst_dumps[i]);
        free_backend(dst[i]);
    }
    for (int i = 0; i < 2; i++) {
        free(src_dumps[i]);
        free_backend(src[i]);
    }
    free_backend(one);
    free(want);
    clock_real();
}

/* Restored from a memory snapshot into RocksDB, then from a RocksDB
 * snapshot into memory: the same entries all the way. */
static void
test_memory_to_rocksdb_and_back(void **unused)
{
    weir_state_backend_t *m, *r, *m2;
    weir_err_t err = { 0 };
    char d0[300], d1[300], rdir[300], *want, *got;
    const char *dirs0[1] = { d0 }, *dirs1[1] = { d1 };

    clock_fake(T0);
    assert_int_equal(weir_state_backend_memory(0, 127, &m), 0);
    fill(m, 0, 127, 0, 300, "mem");
    want = dump(m);
    fresh_dir(d0, sizeof(d0));
    if (weir_state_snapshot(m, d0, NULL, &err) != 0)
        fail_msg("%s", err.msg);

    fresh_dir(rdir, sizeof(rdir));
    if (weir_state_backend_rocksdb_restore(rdir, 0, 127, dirs0, 1, &r, &err) != 0)
        fail_msg("%s", err.msg);
    got = dump(r);
    assert_same(got, want);
    free(got);
    /* list elements added in RocksDB after the restore come last */
    assert_int_equal(weir_state_list_add(st(r, "l"), kg_of(3), "k3", 2, "z", 1), 0);
    got = dump_n(r, kg_of(3), kg_of(3), NULL);
    assert_non_null(strstr(got, "l 00111 k3 #003 = z\n"));
    free(got);
    assert_int_equal(weir_state_list_clear(st(r, "l"), kg_of(3), "k3", 2), 0);
    assert_int_equal(weir_state_list_clear(st(r, "tl"), kg_of(3), "k3", 2), 0);
    write_key(r, 3, "mem");                  /* as it was */

    fresh_dir(d1, sizeof(d1));
    if (weir_state_snapshot(r, d1, NULL, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal(weir_state_backend_memory(0, 127, &m2), 0);
    if (weir_state_restore(m2, dirs1, 1, &err) != 0)
        fail_msg("%s", err.msg);
    got = dump(m2);
    assert_same(got, want);
    free(got);

    free(want);
    weir_state_backend_destroy(m);
    weir_state_backend_destroy(m2);
    free_backend(r);
    clock_real();
}

static void
test_rocksdb_fast_path_links_and_stays_independent_of_the_snapshot(void **unused)
{
    weir_state_backend_t *b, *r, *r2;
    char dir[300], db[320], *want, *got, *files;
    const char *dirs[1] = { dir };
    ino_t ino;

    clock_fake(T0);
    b = new_backend(0, 127);
    fill(b, 0, 127, 0, 500, "fast");
    want = dump(b);
    snap(b, dir, sizeof(dir));
    snprintf(db, sizeof(db), "%s/db", dir);
    files = listing(dir);

    r = restored(0, 127, dirs, 1);
    /* the new instance's SST files are the snapshot's, linked */
    {
        char rdir[300];
        snprintf(rdir, sizeof(rdir), "%s/b%d", g_root, g_dirs - 1);
        ino = linked_sst(rdir);
        assert_true(ino != 0);
        assert_true(has_inode(db, ino));
    }
    got = dump(r);
    assert_same(got, want);
    free(got);

    /* rewrite everything, delete some, compact: RocksDB writes new files
     * and drops its links, the snapshot keeps its own */
    write_more(r, 0, 127, 500);
    fill(r, 0, 127, 0, 500, "over");
    assert_int_equal(weir_state_drop_key_groups(r, 0, 10), 0);
    assert_int_equal(weir_state_backend_compact(r), 0);
    got = dump(r);
    assert_string_not_equal(got, want);
    free(got);

    r2 = restored(0, 127, dirs, 1);
    got = dump(r2);
    assert_same(got, want);
    free(got);
    got = listing(dir);
    assert_same(got, files);          /* not a byte, not an mtime changed */
    free(got);

    free(files);
    free(want);
    free_backend(r2);
    free_backend(r);
    free_backend(b);
    clock_real();
}

/* Restoring a subrange with the fast path drops the other key groups. */
static void
test_rocksdb_fast_path_keeps_only_the_new_range(void **unused)
{
    weir_state_backend_t *b, *r;
    char dir[300], *want, *got;
    const char *dirs[1] = { dir };
    int n = 0;

    clock_fake(T0);
    b = new_backend(0, 127);
    fill(b, 0, 127, 0, 300, "sub");
    snap(b, dir, sizeof(dir));
    want = dump_n(b, 43, 85, NULL);
    r = restored(43, 85, dirs, 1);
    got = dump_n(r, 0, WEIR_STATE_MAX_KEY_GROUP, &n);
    assert_true(n > 0);
    assert_same(got, want);
    /* the range deletes hide the other key groups from counts too */
    {
        int nv = 0;
        for (const char *p = want; *p != '\0'; p = strchr(p, '\n') + 1)
            nv += strncmp(p, "v ", 2) == 0;
        assert_true(nv > 0);
        assert_int_equal((int)weir_state_count(st(r, "v")), nv);
    }
    free(got);
    free(want);
    free_backend(r);
    free_backend(b);
    clock_real();
}

static void
test_consecutive_snapshots_share_unchanged_sst_files(void **unused)
{
    weir_state_backend_t *b, *r;
    char d1[300], d2[300], db1[320], db2[320], *want, *got;
    const char *dirs[1] = { d2 };

    clock_fake(T0);
    b = new_backend(0, 127);
    fill(b, 0, 127, 0, 500, "s1");
    snap(b, d1, sizeof(d1));
    write_more(b, 0, 127, 50);               /* a little more: a new small SST */
    want = dump(b);
    snap(b, d2, sizeof(d2));
    snprintf(db1, sizeof(db1), "%s/db", d1);
    snprintf(db2, sizeof(db2), "%s/db", d2);
    assert_true(shared_ssts(db1, db2) > 0);

    /* deleting the first snapshot leaves the second whole */
    rm_tree(d1);
    r = restored(0, 127, dirs, 1);
    got = dump(r);
    assert_same(got, want);
    free(got);
    free(want);
    free_backend(r);
    free_backend(b);
    clock_real();
}

static void
test_snapshot_copy_shares_no_inodes_and_restores_alone(void **unused)
{
    weir_state_backend_t *b, *r;
    weir_err_t err = { 0 };
    char dir[300], copy[300], sub[320], csub[320], *want, *got;
    const char *dirs[1] = { copy };

    clock_fake(T0);
    b = new_backend(0, 127);
    fill(b, 0, 127, 0, 300, "cp");
    want = dump(b);
    snap(b, dir, sizeof(dir));
    fresh_dir(copy, sizeof(copy));
    if (weir_state_snapshot_copy(dir, copy, &err) != 0)
        fail_msg("copy: %s", err.msg);
    /* a copy into an existing directory is refused */
    assert_int_equal(weir_state_snapshot_copy(dir, copy, &err), WEIR_EEXIST);

    /* no file of the copy is a file of the snapshot, none is linked */
    snprintf(sub, sizeof(sub), "%s%s", dir, is_rocksdb() ? "/db" : "");
    snprintf(csub, sizeof(csub), "%s%s", copy, is_rocksdb() ? "/db" : "");
    {
        DIR *d = opendir(csub);
        struct dirent *de;
        int files = 0;

        assert_non_null(d);
        while ((de = readdir(d)) != NULL) {
            char path[700];
            struct stat sb;

            snprintf(path, sizeof(path), "%s/%s", csub, de->d_name);
            if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
                continue;
            files++;
            assert_int_equal((int)sb.st_nlink, 1);
            assert_false(has_inode(sub, sb.st_ino));
        }
        closedir(d);
        assert_true(files > 0);
    }

    /* the live backend and the snapshot go away; the copy restores */
    fill(b, 0, 127, 0, 300, "later");
    rm_tree(dir);
    r = restored(0, 127, dirs, 1);
    got = dump(r);
    assert_same(got, want);
    free(got);
    free(want);
    free_backend(r);
    free_backend(b);
    clock_real();
}

static void
write_bytes(const char *path, const char *text, off_t at)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);

    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, text, strlen(text), at), (ssize_t)strlen(text));
    close(fd);
}

/* A restore from dir fails with a message (into both a memory and, for
 * the group, a RocksDB backend) and leaves no directory behind. */
static void
assert_restore_fails(const char *dir, int code)
{
    weir_state_backend_t *b = NULL, *m = NULL;
    weir_err_t err = { 0 };
    const char *dirs[1] = { dir };
    char rdir[300];
    struct stat sb;
    int rc;

    assert_int_equal(weir_state_backend_memory(0, 127, &m), 0);
    rc = weir_state_restore(m, dirs, 1, &err);
    if (code != 0)
        assert_int_equal(rc, code);
    else
        assert_true(rc < 0);
    assert_true(err.msg[0] != '\0');
    weir_state_backend_destroy(m);

    memset(&err, 0, sizeof(err));
    fresh_dir(rdir, sizeof(rdir));
    rc = weir_state_backend_rocksdb_restore(rdir, 0, 127, dirs, 1, &b, &err);
    assert_true(rc < 0);
    assert_null(b);
    assert_true(err.msg[0] != '\0');
    assert_int_equal(stat(rdir, &sb), -1);      /* nothing left behind */
}

/* Names are bytes: spaces, '%', newlines and UTF-8 come back as they were,
 * as do empty keys and values, and states without a single entry. */
static void
test_odd_names_empty_keys_and_empty_states_survive(void **unused)
{
    static const char *const names[] = { "odd name", "100%", "two\nlines", "caf\xc3\xa9" };
    weir_state_backend_t *b, *r;
    weir_state_t *s;
    char dir[300], buf[64];
    const char *dirs[1] = { dir };

    clock_fake(T0);
    b = new_backend(0, 127);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(weir_state_value_ttl(b, names[i], i * HOUR, &s), 0);
        assert_int_equal(weir_state_put(s, i, names[i], strlen(names[i]), names[i], 3), 0);
    }
    assert_int_equal(weir_state_put(s, 9, "", 0, "", 0), 0);
    assert_int_equal(weir_state_map(b, "empty.map", 0, &s), 0);
    snap(b, dir, sizeof(dir));
    r = restored_slow(0, 127, dirs, 1);
    for (int i = 0; i < 4; i++) {
        char want[4];

        snprintf(want, sizeof(want), "%.3s", names[i]);
        assert_int_equal(weir_state_value_ttl(r, names[i], i * HOUR, &s), 0);
        assert_string_equal(get_str(s, i, names[i], buf, sizeof(buf)), want);
    }
    assert_string_equal(get_str(s, 9, "", buf, sizeof(buf)), "");
    /* the restored kinds and TTL layouts are enforced as the originals' */
    assert_int_equal(weir_state_value(r, "empty.map", &s), WEIR_ETYPE);
    assert_int_equal(weir_state_value(r, "odd name", &s), 0);
    assert_int_equal(weir_state_value(r, "100%", &s), WEIR_ETYPE);
    free_backend(r);
    free_backend(b);
    clock_real();
}

static void
test_errors_come_with_messages_never_crashes(void **unused)
{
    weir_state_backend_t *b, *r;
    weir_err_t err = { 0 };
    char dir[300], copy[300], path[400], missing[300];
    const char *dirs[2] = { dir, dir };

    clock_fake(T0);
    b = new_backend(0, 127);
    fill(b, 0, 127, 0, 400, "err");       /* enough for an SST of several blocks */
    snap(b, dir, sizeof(dir));

    /* into an existing directory */
    assert_int_equal(weir_state_snapshot(b, dir, NULL, &err), WEIR_EEXIST);
    assert_non_null(strstr(err.msg, dir));
    assert_non_null(strstr(err.msg, "exists"));
    /* under a missing parent */
    snprintf(path, sizeof(path), "%s/no/such/parent", g_root);
    assert_true(weir_state_snapshot(b, path, NULL, &err) < 0);
    assert_true(err.msg[0] != '\0');
    assert_int_equal(weir_state_snapshot(NULL, path, NULL, &err), WEIR_EINVAL);

    /* from a missing directory, a directory that is no snapshot */
    snprintf(missing, sizeof(missing), "%s/missing", g_root);
    assert_restore_fails(missing, WEIR_ENOENT);
    snprintf(path, sizeof(path), "%s/empty", g_root);
    assert_int_equal(mkdir(path, 0700), 0);
    assert_restore_fails(path, WEIR_EPROTO);

    /* into a backend that holds entries; the same key groups twice */
    assert_int_equal(weir_state_restore(b, dirs, 1, &err), WEIR_ESTATE);
    assert_non_null(strstr(err.msg, "empty"));
    assert_int_equal(weir_state_backend_memory(0, 127, &r), 0);
    assert_int_equal(weir_state_restore(r, dirs, 2, &err), WEIR_EINVAL);
    assert_non_null(strstr(err.msg, "both hold"));
    weir_state_backend_destroy(r);
    /* into a state directory that exists */
    fresh_dir(path, sizeof(path));
    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(weir_state_backend_rocksdb_restore(path, 0, 127, dirs, 1, &r, &err),
                     WEIR_EEXIST);

    /* corrupt metadata: garbage, a torn file */
    fresh_dir(copy, sizeof(copy));
    assert_int_equal(weir_state_snapshot_copy(dir, copy, &err), 0);
    snprintf(path, sizeof(path), "%s/WEIR_SNAPSHOT", copy);
    write_bytes(path, "garbage", 0);
    assert_restore_fails(copy, WEIR_EPROTO);
    assert_int_equal(truncate(path, 30), 0);
    assert_restore_fails(copy, WEIR_EPROTO);
    assert_int_equal(weir_state_snapshot_copy(copy, path, &err), WEIR_EPROTO);

    /* corrupt data */
    fresh_dir(copy, sizeof(copy));
    assert_int_equal(weir_state_snapshot_copy(dir, copy, &err), 0);
    if (is_rocksdb()) {
        char sst[400] = "";
        off_t biggest = 0;
        DIR *d;
        struct dirent *de;

        /* a damaged block of an SST file: found by the read of a restore
         * entry by entry (the fast path links files without reading them) */
        snprintf(path, sizeof(path), "%s/db", copy);
        assert_non_null(d = opendir(path));
        while ((de = readdir(d)) != NULL) {
            char p[700];
            struct stat sb;

            snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
            if (strstr(de->d_name, ".sst") != NULL && stat(p, &sb) == 0 &&
                sb.st_size > biggest) {
                biggest = sb.st_size;
                snprintf(sst, sizeof(sst), "%s", p);
            }
        }
        closedir(d);
        assert_true(biggest > 4096);
        write_bytes(sst, "0123456789abcdef", 64);
        r = NULL;
        assert_int_equal(weir_state_backend_memory(0, 127, &r), 0);
        dirs[1] = copy;
        assert_true(weir_state_restore(r, dirs + 1, 1, &err) < 0);
        assert_true(err.msg[0] != '\0');
        if (getenv("WEIR_TEST_VERBOSE") != NULL)
            printf("damaged SST: %s\n", err.msg);
        weir_state_backend_destroy(r);
        /* a truncated one: RocksDB checks file sizes when it opens */
        assert_int_equal(truncate(sst, biggest / 2), 0);
        assert_restore_fails(copy, 0);
        if (getenv("WEIR_TEST_VERBOSE") != NULL)
            printf("truncated SST: refused\n");

        snprintf(path, sizeof(path), "%s/db/CURRENT", copy);
        write_bytes(path, "MANIFEST-999999\n", 0);
        assert_restore_fails(copy, 0);
        unlink(path);
        assert_restore_fails(copy, 0);
    } else {
        struct stat sb;

        snprintf(path, sizeof(path), "%s/entries", copy);
        assert_int_equal(stat(path, &sb), 0);
        write_bytes(path, "X", sb.st_size / 2);         /* a flipped byte */
        assert_restore_fails(copy, WEIR_EPROTO);
        assert_int_equal(truncate(path, sb.st_size - 3), 0);
        assert_restore_fails(copy, WEIR_EPROTO);
        assert_int_equal(truncate(path, 5), 0);
        assert_restore_fails(copy, WEIR_EPROTO);
        unlink(path);
        assert_restore_fails(copy, WEIR_EPROTO);
    }
    free_backend(b);
    clock_real();
}

/* Across filesystems (/dev/shm is usually tmpfs) links are impossible:
 * the snapshot and the fast-path restore copy instead, and still work. */
static void
test_rocksdb_snapshot_on_another_filesystem_is_copied(void **unused)
{
    weir_state_backend_t *b, *r;
    weir_err_t err = { 0 };
    char shm[64] = "/dev/shm/weir-snap-test-XXXXXX", dir[128], db[160], rdir[300];
    char *want, *got;
    const char *dirs[1] = { dir };
    struct stat a, c;

    if (stat("/dev/shm", &a) != 0 || stat(g_root, &c) != 0 || a.st_dev == c.st_dev ||
        mkdtemp(shm) == NULL)
        skip();
    clock_fake(T0);
    b = new_backend(0, 127);
    fill(b, 0, 127, 0, 300, "shm");
    want = dump(b);
    snprintf(dir, sizeof(dir), "%s/snap", shm);
    if (weir_state_snapshot(b, dir, NULL, &err) != 0)
        fail_msg("%s", err.msg);
    snprintf(db, sizeof(db), "%s/db", dir);
    assert_int_equal((int)linked_sst(db), 0);         /* copies, not links */

    fresh_dir(rdir, sizeof(rdir));
    if (weir_state_backend_rocksdb_restore(rdir, 0, 127, dirs, 1, &r, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_equal((int)linked_sst(rdir), 0);
    got = dump(r);
    assert_same(got, want);
    free(got);
    free(want);
    free_backend(r);
    free_backend(b);
    rm_tree(shm);
    clock_real();
}

/* ~20 MB and ~200 MB of incompressible values in RocksDB: how long the
 * synchronous part of a snapshot takes (the flush of what is in memtables,
 * then a link per SST), and a second snapshot with nothing to flush. */
static void
test_rocksdb_snapshot_time_for_20_and_200_mb(void **unused)
{
    static const int sizes_mb[2] = { 20, 200 };
    char val[1000], key[32];
    uint64_t x = 88172645463325252ull;

    for (int s = 0; s < 2; s++) {
        weir_state_backend_t *b = new_backend(0, 127), *r, *m;
        weir_state_t *v = st(b, "v");
        char d1[300], d2[300], d3[300];
        const char *dirs[1] = { d1 };
        uint64_t bytes1 = 0, bytes2 = 0, bytes3 = 0;
        weir_err_t err = { 0 };
        int n = sizes_mb[s] * 1000;
        double t0, t1, t2, t3, t4, t5, t6, t7;

        t0 = now_s();
        for (int i = 0; i < n; i++) {
            for (size_t j = 0; j < sizeof(val); j += 8) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                memcpy(val + j, &x, sizeof(val) - j < 8 ? sizeof(val) - j : 8);
            }
            size_t kl = (size_t)snprintf(key, sizeof(key), "p%08d", i);
            assert_int_equal(weir_state_put(v, i % 128, key, kl, val, sizeof(val)), 0);
        }
        t1 = now_s();
        fresh_dir(d1, sizeof(d1));
        if (weir_state_snapshot(b, d1, &bytes1, &err) != 0)
            fail_msg("%s", err.msg);
        t2 = now_s();
        fresh_dir(d2, sizeof(d2));
        if (weir_state_snapshot(b, d2, &bytes2, &err) != 0)
            fail_msg("%s", err.msg);
        t3 = now_s();
        r = restored(0, 127, dirs, 1);
        t4 = now_s();
        assert_int_equal((int)weir_state_count(st(r, "v")), n);
        free_backend(r);
        /* entry by entry (a rescaled subtask): into RocksDB, into memory */
        r = restored_slow(0, 127, dirs, 1);
        t5 = now_s();
        assert_int_equal((int)weir_state_count(st(r, "v")), n);
        free_backend(r);
        assert_int_equal(weir_state_backend_memory(0, 127, &m), 0);
        if (weir_state_restore(m, dirs, 1, &err) != 0)
            fail_msg("%s", err.msg);
        t6 = now_s();
        assert_int_equal((int)weir_state_count(st(m, "v")), n);
        /* the memory backend's snapshot writes every byte */
        fresh_dir(d3, sizeof(d3));
        if (weir_state_snapshot(m, d3, &bytes3, &err) != 0)
            fail_msg("%s", err.msg);
        t7 = now_s();
        printf("[ figure ] rocksdb, %d MB of values (%d puts in %.2f s): snapshot %.3f s "
               "(%.1f MB, hard-linked SSTs counted in full), a second snapshot %.3f s; "
               "restore: fast path %.3f s, entry by entry into rocksdb %.2f s, into memory "
               "%.2f s; memory snapshot %.2f s (%.1f MB)\n",
               sizes_mb[s], n, t1 - t0, t2 - t1, (double)bytes1 / 1e6, t3 - t2, t4 - t3,
               t5 - t4, t6 - t5, t7 - t6, (double)bytes3 / 1e6);
        (void)bytes2;
        weir_state_backend_destroy(m);
        free_backend(b);
    }
    printf("[ figure ] note: rough, one machine, not asserted; the first snapshot's "
           "time is mostly the flush of the memtables (at most db_write_buffer_bytes)\n");
}

int
main(void)
{
    const struct CMUnitTest all[] = {
        cmocka_unit_test(test_restore_gives_exactly_the_snapshot_not_later_writes),
        cmocka_unit_test(test_ttl_write_times_survive_a_restore_exactly),
        cmocka_unit_test(test_rescaling_two_into_three_and_into_one_puts_each_entry_once),
        cmocka_unit_test(test_snapshot_copy_shares_no_inodes_and_restores_alone),
        cmocka_unit_test(test_odd_names_empty_keys_and_empty_states_survive),
        cmocka_unit_test(test_errors_come_with_messages_never_crashes),
    };
    const struct CMUnitTest rocksdb_only[] = {
        cmocka_unit_test(test_memory_to_rocksdb_and_back),
        cmocka_unit_test(test_rocksdb_fast_path_links_and_stays_independent_of_the_snapshot),
        cmocka_unit_test(test_rocksdb_fast_path_keeps_only_the_new_range),
        cmocka_unit_test(test_consecutive_snapshots_share_unchanged_sst_files),
        cmocka_unit_test(test_rocksdb_snapshot_on_another_filesystem_is_copied),
        cmocka_unit_test(test_rocksdb_snapshot_time_for_20_and_200_mb),
    };
    int failed = 0;

    failed += cmocka_run_group_tests_name("memory", all, setup_memory_snap, teardown_snap);
    failed += cmocka_run_group_tests_name("rocksdb", all, setup_rocksdb, teardown_snap);
    failed += cmocka_run_group_tests_name("rocksdb-only", rocksdb_only, setup_rocksdb,
                                          teardown_snap);
    return failed;
}
