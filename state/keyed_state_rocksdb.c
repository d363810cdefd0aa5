/* state/keyed_state_rocksdb.c -- keyed state in RocksDB.
 *
 * One RocksDB instance per keyed subtask, in a directory of its own (the
 * task manager picks it). Per subtask rather than per task manager, as in
 * Flink: subtasks of different jobs never share files, locks or compaction
 * debt; a subtask's checkpoint is one RocksDB checkpoint of one instance;
 * a canceled job's state goes away by deleting its directories; and the
 * instances of one process still share what is worth sharing -- the block
 * cache and the background threads (RocksDB's default thread pools).
 *
 * Each named state is a column family "st/<name>". Its kind and TTL live in
 * the default column family under "state/<name>", so a reopened instance
 * knows its states before an operator asks, and a state cannot come back as
 * another kind. The stored key is [key group][key length varint][key]
 * [suffix] (keyed_state.h); with TTL each value starts with its 8-byte
 * write time, and a compaction filter drops what has expired, so state
 * that is never read again does not stay forever; reads that meet an
 * expired item hide it and delete it.
 *
 * A list is one entry per element, suffixed with an 8-byte sequence number
 * from a per-instance counter, so an append is a blind write and a key's
 * elements come back in insertion order. The counter survives reopening
 * through a high-water mark in the default column family, raised one block
 * at a time before the numbers under it are used. Elements appended to a
 * list without TTL while they sit in the write cache go out together as one
 * chunk entry, suffixed [sequence number of its first element][0x01], whose
 * value is the elements as [u32 length][bytes]...: one memtable insert per
 * key and write-out instead of one per element (the join stores every row
 * it sees). Readers expand chunks; snapshots handed to other backends are
 * read as single elements.
 *
 * Writes skip the write-ahead log. A clean close flushes the memtables
 * (RocksDB flushes on close when the log is off), and atomic flush keeps
 * every flushed state consistent across column families; a crashed
 * instance is never reused: the subtask is restored from its checkpoint
 * (RocksDB's checkpoint API, which flushes first). That is Flink's choice
 * too, and it saves a write of every update.
 *
 * Snapshots are RocksDB checkpoints (hard-linked SST files); the last
 * section writes them and reads them back read-only, for snapshot.c.
 *
 * A write-back cache sits in front of the point operations (value and map
 * get/put/delete, list append): a hash table of stored keys to stored
 * values (TTL write time included) in an arena, per backend, so that a hot
 * key costs a hash lookup instead of a RocksDB get and put, and writes
 * reach RocksDB in write batches. Reads that miss load the entry (or its
 * absence). Whatever iterates a column family (list and map reads, scans,
 * counts, clears of lists and maps) writes that family's dirty entries
 * first; snapshots, compaction, dropping key groups and a clean close write
 * them all. When the table or its arena is full, every dirty entry is
 * written in one batch and the cache starts over. It is per subtask and
 * single-threaded like the backend, and it changes no result: a crash loses
 * what the memtables would have lost (the WAL is off), and a restore starts
 * from a snapshot, which saw every write. Size: tuning.write_cache_bytes
 * (0 turns it off).
 *
 * The C API allocates per call in places (a pinnable slice per get, an
 * iterator per list read); the keys we build reuse one buffer per backend.
 *
 * Library code: returns codes, never logs; RocksDB's own log (warnings
 * only) is the LOG file in the directory.
 */
#include "keyed_state_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rocksdb/c.h>
#include <xxhash.h>

#include "../runtime/core/arena.h"

#define MARKER_FILE   "WEIR_STATE"
#define MARKER_TEXT   "weir keyed state, format 1\n"
#define CF_PREFIX     "st/"
#define META_STATE    "state/"
#define META_SEQ      "seq"
#define META_LEN      10             /* [kind][has ttl][ttl: 8 bytes] */
#define SEQ_BLOCK     65536
#define SEQ_LEN       8
#define CHUNK_TAG     0x01           /* after the sequence number: a chunk */
#define MIB           ((size_t)1 << 20)

/* RocksDB's InfoLogLevel */
#define LOG_WARN      2

typedef struct cf {
    char                           *name;      /* state name, without CF_PREFIX */
    size_t                          dirty;     /* write cache: entries not written yet */
    rocksdb_column_family_handle_t *h;
    rocksdb_options_t              *opts;      /* holds filter; outlives the db */
    rocksdb_compactionfilter_t     *filter;
    _Atomic int64_t                 ttl_us;    /* read by compaction threads */
    int                             kind;      /* 0: no meta found */
    bool                            has_ttl;
} cf_t;

typedef struct rdb_state {
    struct weir_state base;
    cf_t             *cf;                      /* borrowed from the backend */
} rdb_state_t;

/* A write cache entry: the stored key and value of one column family. */
typedef struct wc_entry {
    cf_t     *cf;                              /* NULL: free slot */
    uint64_t  hash;
    char     *k, *v;                           /* in the cache's arena */
    uint32_t  klen, vlen, vcap;
    bool      dirty;                           /* RocksDB does not have it yet */
    bool      absent;                          /* no value: never stored, or deleted */
    bool      chunk;                           /* list appends of key k (no suffix) */
    uint64_t  seq;                             /* chunk: its first element's number */
} wc_entry_t;

typedef struct wcache {
    wc_entry_t  *slots;                        /* open addressing, power of 2 */
    size_t       cap, n, n_max;
    size_t       bytes_max;                    /* arena bytes before starting over */
    size_t       dirty;
    weir_arena_t arena;
    rocksdb_writebatch_t *wb;                  /* its own: a restore fills rb->wb */
    weir_buf_t   kbuf;                         /* chunk keys being written */
} wcache_t;

typedef struct rdb_backend {
    struct weir_state_backend       base;
    wcache_t                        wc;        /* cap 0: off */
    char                           *dir;
    rocksdb_t                      *db;
    rocksdb_options_t              *opts;      /* the db's and the default CF's */
    rocksdb_column_family_handle_t *meta;      /* the default column family */
    rocksdb_writeoptions_t         *wo;
    rocksdb_readoptions_t          *ro;
    rocksdb_writebatch_t           *wb;
    cf_t                          **cfs;       /* every state column family */
    int                             ncfs;
    uint64_t                        seq_next;  /* next list sequence number */
    uint64_t                        seq_mark;  /* persisted: all used < mark */
    bool                            cache_held;
    weir_buf_t                      key;       /* scratch: stored keys */
    weir_buf_t                      val;       /* scratch: [write time][value] */
} rdb_backend_t;

static const weir__state_ops_t rdb_ops;

static void wc_init(wcache_t *c, size_t bytes);
static void wc_free(wcache_t *c);
static int  wc_write(rdb_backend_t *rb, cf_t *only);

/* ---- the process-wide part: tuning and the block cache ----------------- */

static pthread_mutex_t tuning_mu = PTHREAD_MUTEX_INITIALIZER;
static weir_state_rocksdb_tuning_t tuning = {
    .write_cache_bytes     = 32 * MIB,
    .block_cache_bytes     = 128 * MIB,
    .write_buffer_bytes    = 16 * MIB,
    .db_write_buffer_bytes = 64 * MIB,
    .background_jobs       = 4,
    .max_open_files        = 256,
};
static rocksdb_cache_t *shared_cache;        /* while cache_users > 0 */
static int cache_users;

void
weir_state_rocksdb_tuning_defaults(weir_state_rocksdb_tuning_t *t)
{
    t->write_cache_bytes = 32 * MIB;
    t->block_cache_bytes = 128 * MIB;
    t->write_buffer_bytes = 16 * MIB;
    t->db_write_buffer_bytes = 64 * MIB;
    t->background_jobs = 4;
    t->max_open_files = 256;
}

int
weir_state_rocksdb_tune(const weir_state_rocksdb_tuning_t *t)
{
    if (t == NULL || t->block_cache_bytes < MIB || t->write_buffer_bytes < MIB ||
        (t->write_cache_bytes != 0 && t->write_cache_bytes < MIB) ||
        t->db_write_buffer_bytes < MIB || t->background_jobs < 1 || t->background_jobs > 64 ||
        (t->max_open_files != -1 && t->max_open_files < 16))
        return WEIR_EINVAL;
    pthread_mutex_lock(&tuning_mu);
    tuning = *t;
    if (shared_cache != NULL)
        rocksdb_cache_set_capacity(shared_cache, t->block_cache_bytes);
    pthread_mutex_unlock(&tuning_mu);
    return 0;
}

/* Takes a reference on the shared cache and a copy of the tuning. */
static rocksdb_cache_t *
cache_acquire(weir_state_rocksdb_tuning_t *t)
{
    rocksdb_cache_t *c;

    pthread_mutex_lock(&tuning_mu);
    *t = tuning;
    if (shared_cache == NULL)
        shared_cache = rocksdb_cache_create_lru(tuning.block_cache_bytes);
    if ((c = shared_cache) != NULL)
        cache_users++;
    pthread_mutex_unlock(&tuning_mu);
    return c;
}

/* Each database holds its own reference to the cache inside RocksDB; this
 * one only keeps the handle alive while some backend is open. */
static void
cache_release(void)
{
    pthread_mutex_lock(&tuning_mu);
    if (--cache_users == 0) {
        rocksdb_cache_destroy(shared_cache);
        shared_cache = NULL;
    }
    pthread_mutex_unlock(&tuning_mu);
}

/* ---- errors ----------------------------------------------------------- */

/* Turns a RocksDB error string (freed here) into WEIR_EIO and a message. */
static int
rdb_fail(rdb_backend_t *rb, char *rerr, const char *what)
{
    weir__state_fail(&rb->base, WEIR_EIO, "rocksdb %s (%s): %s", what, rb->dir,
                     rerr != NULL ? rerr : "unknown error");
    rocksdb_free(rerr);
    return WEIR_EIO;
}

/* ---- the directory ---------------------------------------------------- */

static int
mkdir_p(const char *dir, weir_err_t *err)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);
    struct stat st;

    if (n >= sizeof(path))
        return weir_err_set(err, WEIR_EINVAL, "state directory path too long");
    memcpy(path, dir, n + 1);
    for (char *p = path + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(path, 0700) != 0 && errno != EEXIST)
                return weir_err_set(err, WEIR_EIO, "cannot create state directory %s: %s",
                                    path, strerror(errno));
            *p = c;
            if (c == '\0')
                break;
        }
    }
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return weir_err_set(err, WEIR_EIO, "state directory %s is not a directory", dir);
    return 0;
}

static bool
dir_is_empty(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    bool empty = true;

    if (d == NULL)
        return false;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            empty = false;
            break;
        }
    }
    closedir(d);
    return empty;
}

static bool
file_exists(const char *dir, const char *name)
{
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* Creates dir when missing and makes sure it is ours: empty (the marker
 * file is written) or marked by an earlier open. *has_db: RocksDB files
 * are there to reopen. */
static int
prepare_dir(const char *dir, bool *has_db, weir_err_t *err)
{
    char path[PATH_MAX], text[sizeof(MARKER_TEXT) + 8];
    ssize_t n;
    int fd, rc;

    if ((rc = mkdir_p(dir, err)) != 0)
        return rc;
    snprintf(path, sizeof(path), "%s/%s", dir, MARKER_FILE);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
        n = read(fd, text, sizeof(text) - 1);
        close(fd);
        if (n != (ssize_t)strlen(MARKER_TEXT) || memcmp(text, MARKER_TEXT, (size_t)n) != 0)
            return weir_err_set(err, WEIR_EPROTO, "state directory %s has a %s file of "
                                "another format", dir, MARKER_FILE);
        *has_db = file_exists(dir, "CURRENT");
        return 0;
    }
    if (errno != ENOENT)
        return weir_err_set(err, WEIR_EIO, "cannot read %s: %s", path, strerror(errno));
    if (!dir_is_empty(dir))
        return weir_err_set(err, WEIR_EEXIST, "state directory %s is not empty and holds no "
                            "weir state (no %s file): refusing to use it", dir, MARKER_FILE);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return weir_err_set(err, WEIR_EIO, "cannot create %s: %s", path, strerror(errno));
    n = write(fd, MARKER_TEXT, strlen(MARKER_TEXT));
    if (n != (ssize_t)strlen(MARKER_TEXT) || fsync(fd) != 0) {
        rc = errno;
        close(fd);
        unlink(path);
        return weir_err_set(err, WEIR_EIO, "cannot write %s: %s", path, strerror(rc));
    }
    close(fd);
    *has_db = false;
    return 0;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path) != 0 ? -1 : 0;
}

/* ---- options ---------------------------------------------------------- */

static rocksdb_options_t *
db_options(const weir_state_rocksdb_tuning_t *t, rocksdb_cache_t *cache)
{
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_block_based_table_options_t *bb = rocksdb_block_based_options_create();

    if (o == NULL || bb == NULL) {
        if (o != NULL)
            rocksdb_options_destroy(o);
        if (bb != NULL)
            rocksdb_block_based_options_destroy(bb);
        return NULL;
    }
    rocksdb_options_set_create_if_missing(o, 1);
    /* the WAL is off: flushes must be consistent across column families */
    rocksdb_options_set_atomic_flush(o, 1);
    rocksdb_options_set_max_background_jobs(o, t->background_jobs);
    rocksdb_options_set_max_open_files(o, t->max_open_files);
    rocksdb_options_set_write_buffer_size(o, t->write_buffer_bytes);
    rocksdb_options_set_max_write_buffer_number(o, 3);
    rocksdb_options_set_db_write_buffer_size(o, t->db_write_buffer_bytes);
    rocksdb_options_set_level_compaction_dynamic_level_bytes(o, 1);
    rocksdb_options_set_target_file_size_base(o, 2 * (uint64_t)t->write_buffer_bytes);
    rocksdb_options_set_max_bytes_for_level_base(o, 8 * (uint64_t)t->write_buffer_bytes);
    rocksdb_options_set_compression(o, rocksdb_lz4_compression);
    rocksdb_options_set_bottommost_compression(o, rocksdb_zstd_compression);
    rocksdb_options_set_bytes_per_sync(o, MIB);
    rocksdb_options_set_info_log_level(o, LOG_WARN);
    rocksdb_options_set_keep_log_file_num(o, 2);
    rocksdb_options_set_max_log_file_size(o, 4 * MIB);
    rocksdb_options_set_stats_dump_period_sec(o, 0);
    /* one writer per instance (the task thread): the concurrent memtable
     * insert path and the write thread's spinning buy nothing */
    rocksdb_options_set_allow_concurrent_memtable_write(o, 0);
    rocksdb_options_set_enable_write_thread_adaptive_yield(o, 0);

    /* point reads (value and map get) go through a bloom filter; index and
     * filter blocks live in the shared cache, so memory stays bounded */
    rocksdb_block_based_options_set_block_size(bb, 16 * 1024);
    rocksdb_block_based_options_set_block_cache(bb, cache);
    rocksdb_block_based_options_set_filter_policy(bb, rocksdb_filterpolicy_create_bloom_full(10));
    rocksdb_block_based_options_set_cache_index_and_filter_blocks(bb, 1);
    rocksdb_block_based_options_set_pin_l0_filter_and_index_blocks_in_cache(bb, 1);
    rocksdb_block_based_options_set_format_version(bb, 5);
    rocksdb_options_set_block_based_table_factory(o, bb);
    rocksdb_block_based_options_destroy(bb);
    return o;
}

/* ---- column families -------------------------------------------------- */

static void
ttl_filter_destroy(void *arg)
{
}

static const char *
ttl_filter_name(void *arg)
{
    return "weir.ttl";
}

/* Runs on RocksDB's compaction threads: 1 drops the entry. */
static unsigned char
ttl_filter(void *arg, int level, const char *key, size_t klen, const char *val, size_t vlen,
           char **new_val, size_t *new_vlen, unsigned char *changed)
{
    cf_t *cf = arg;
    int64_t ttl = atomic_load(&cf->ttl_us);

    if (ttl <= 0 || vlen < WEIR__TS_LEN)
        return 0;
    return weir__state_expired((int64_t)weir__be64_get(val), ttl, weir__state_now());
}

static void
cf_free(cf_t *cf)
{
    if (cf == NULL)
        return;
    if (cf->opts != NULL)
        rocksdb_options_destroy(cf->opts);
    if (cf->filter != NULL)
        rocksdb_compactionfilter_destroy(cf->filter);
    free(cf->name);
    free(cf);
}

/* A column family's bookkeeping and options (with its own TTL filter). */
static cf_t *
cf_new(rdb_backend_t *rb, const char *name)
{
    cf_t *cf = calloc(1, sizeof(*cf));

    if (cf == NULL)
        return NULL;
    atomic_init(&cf->ttl_us, 0);
    cf->name = strdup(name);
    cf->opts = rocksdb_options_create_copy(rb->opts);
    cf->filter = rocksdb_compactionfilter_create(cf, ttl_filter_destroy, ttl_filter,
                                                 ttl_filter_name);
    if (cf->name == NULL || cf->opts == NULL || cf->filter == NULL) {
        cf_free(cf);
        return NULL;
    }
    rocksdb_options_set_compaction_filter(cf->opts, cf->filter);
    return cf;
}

static int
cf_push(rdb_backend_t *rb, cf_t *cf)
{
    cf_t **v = realloc(rb->cfs, (size_t)(rb->ncfs + 1) * sizeof(*v));

    if (v == NULL)
        return WEIR_ENOMEM;
    rb->cfs = v;
    rb->cfs[rb->ncfs++] = cf;
    return 0;
}

static cf_t *
cf_find(rdb_backend_t *rb, const char *name)
{
    for (int i = 0; i < rb->ncfs; i++)
        if (strcmp(rb->cfs[i]->name, name) == 0)
            return rb->cfs[i];
    return NULL;
}

static int
meta_key(rdb_backend_t *rb, const char *name)
{
    weir_buf_reset(&rb->key);
    if (weir_buf_append(&rb->key, META_STATE, strlen(META_STATE)) != 0 ||
        weir_buf_append(&rb->key, name, strlen(name)) != 0)
        return WEIR_ENOMEM;
    return 0;
}

/* Reads what the default column family says about cf's state. */
static int
meta_read(rdb_backend_t *rb, cf_t *cf)
{
    rocksdb_pinnableslice_t *p;
    const char *v;
    size_t n;
    char *rerr = NULL;

    if (meta_key(rb, cf->name) != 0)
        return WEIR_ENOMEM;
    p = rocksdb_get_pinned_cf(rb->db, rb->ro, rb->meta, rb->key.data, rb->key.len, &rerr);
    if (rerr != NULL)
        return rdb_fail(rb, rerr, "reading state metadata");
    if (p == NULL)
        return 0;                /* created, then crashed before a flush */
    v = rocksdb_pinnableslice_value(p, &n);
    if (n != META_LEN || v[0] < WEIR__STATE_VALUE || v[0] > WEIR__STATE_MAP) {
        rocksdb_pinnableslice_destroy(p);
        return weir__state_fail(&rb->base, WEIR_EPROTO, "state '%s' in %s: corrupt metadata",
                                cf->name, rb->dir);
    }
    cf->kind = v[0];
    cf->has_ttl = v[1] != 0;
    atomic_store(&cf->ttl_us, cf->has_ttl ? (int64_t)weir__be64_get(v + 2) : 0);
    rocksdb_pinnableslice_destroy(p);
    return 0;
}

static int
meta_write(rdb_backend_t *rb, const char *name, int kind, int64_t ttl_us)
{
    char v[META_LEN], *rerr = NULL;

    if (meta_key(rb, name) != 0)
        return WEIR_ENOMEM;
    v[0] = (char)kind;
    v[1] = ttl_us > 0;
    weir__be64_put(v + 2, (uint64_t)ttl_us);
    rocksdb_put_cf(rb->db, rb->wo, rb->meta, rb->key.data, rb->key.len, v, sizeof(v), &rerr);
    if (rerr != NULL)
        return rdb_fail(rb, rerr, "writing state metadata");
    return 0;
}

static int
seq_read(rdb_backend_t *rb)
{
    rocksdb_pinnableslice_t *p;
    const char *v;
    size_t n;
    char *rerr = NULL;

    p = rocksdb_get_pinned_cf(rb->db, rb->ro, rb->meta, META_SEQ, strlen(META_SEQ), &rerr);
    if (rerr != NULL)
        return rdb_fail(rb, rerr, "reading the list sequence");
    rb->seq_next = rb->seq_mark = 0;
    if (p == NULL)
        return 0;
    v = rocksdb_pinnableslice_value(p, &n);
    if (n == SEQ_LEN)
        rb->seq_next = rb->seq_mark = weir__be64_get(v);
    rocksdb_pinnableslice_destroy(p);
    return n == SEQ_LEN ? 0 : weir__state_fail(&rb->base, WEIR_EPROTO,
                                               "%s: corrupt list sequence", rb->dir);
}

/* ---- open, close, drop ------------------------------------------------ */

/* Closes the database and frees everything but rb itself, rb->dir and
 * rb->base. Safe on a half-opened backend. */
static void
rdb_shutdown(rdb_backend_t *rb, bool dropping)
{
    /* a clean close keeps what was cached (errors: nothing to tell) */
    if (!dropping && rb->db != NULL)
        (void)wc_write(rb, NULL);
    wc_free(&rb->wc);
    if (dropping && rb->db != NULL) {
        /* the data is about to be deleted: no flush, no compaction to wait
         * for (a close would flush every memtable, the WAL being off) */
        const char *k[] = { "avoid_flush_during_shutdown" }, *v[] = { "true" };
        char *e = NULL;
        rocksdb_set_options(rb->db, 1, k, v, &e);
        free(e);
        rocksdb_cancel_all_background_work(rb->db, 1);
    }
    for (int i = 0; i < rb->ncfs; i++) {
        if (rb->cfs[i]->h != NULL)
            rocksdb_column_family_handle_destroy(rb->cfs[i]->h);
        rb->cfs[i]->h = NULL;
    }
    if (rb->meta != NULL)
        rocksdb_column_family_handle_destroy(rb->meta);
    rb->meta = NULL;
    if (rb->db != NULL)
        rocksdb_close(rb->db);   /* flushes the memtables: the WAL is off */
    rb->db = NULL;
    /* options and filters only now: the closed database used them */
    for (int i = 0; i < rb->ncfs; i++)
        cf_free(rb->cfs[i]);
    free(rb->cfs);
    rb->cfs = NULL;
    rb->ncfs = 0;
    if (rb->opts != NULL)
        rocksdb_options_destroy(rb->opts);
    rb->opts = NULL;
    if (rb->wo != NULL)
        rocksdb_writeoptions_destroy(rb->wo);
    if (rb->ro != NULL)
        rocksdb_readoptions_destroy(rb->ro);
    if (rb->wb != NULL)
        rocksdb_writebatch_destroy(rb->wb);
    rb->wo = NULL;
    rb->ro = NULL;
    rb->wb = NULL;
    if (rb->cache_held)
        cache_release();
    rb->cache_held = false;
    weir_buf_free(&rb->key);
    weir_buf_free(&rb->val);
}

static void
rdb_close(weir_state_backend_t *b)
{
    rdb_backend_t *rb = (rdb_backend_t *)b;

    rdb_shutdown(rb, false);
    free(rb->dir);
    free(rb);
}

static int
rdb_drop(weir_state_backend_t *b)
{
    rdb_backend_t *rb = (rdb_backend_t *)b;
    int rc = 0;

    rdb_shutdown(rb, true);
    /* the directory is ours: prepare_dir found or wrote the marker */
    if (nftw(rb->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        rc = WEIR_EIO;
    free(rb->dir);
    free(rb);
    return rc;
}

/* Opens the database with every column family it has. */
static int
rdb_open_db(rdb_backend_t *rb, bool has_db, weir_err_t *err)
{
    char **names = NULL, *rerr = NULL;
    const char **cfnames = NULL;
    const rocksdb_options_t **cfopts = NULL;
    rocksdb_column_family_handle_t **handles = NULL;
    size_t n = 1;
    int rc = 0, i;

    if (has_db) {
        names = rocksdb_list_column_families(rb->opts, rb->dir, &n, &rerr);
        if (rerr != NULL) {
            /* the C API returns an array (of none) on failure too */
            if (names != NULL)
                rocksdb_list_column_families_destroy(names, n);
            rc = rdb_fail(rb, rerr, "listing column families");
            return weir_err_set(err, rc, "%s", rb->base.errmsg);
        }
    }
    cfnames = calloc(n, sizeof(*cfnames));
    cfopts = calloc(n, sizeof(*cfopts));
    handles = calloc(n, sizeof(*handles));
    if (cfnames == NULL || cfopts == NULL || handles == NULL) {
        rc = weir_err_set(err, WEIR_ENOMEM, "out of memory");
        goto done;
    }
    cfnames[0] = "default";
    cfopts[0] = rb->opts;
    for (i = 0; i < (int)n && names != NULL; i++) {
        cf_t *cf;

        if (strcmp(names[i], "default") == 0)
            continue;
        if (strncmp(names[i], CF_PREFIX, strlen(CF_PREFIX)) != 0) {
            rc = weir_err_set(err, WEIR_EPROTO, "state directory %s has a column family "
                              "'%s' that is not a weir state", rb->dir, names[i]);
            goto done;
        }
        if ((cf = cf_new(rb, names[i] + strlen(CF_PREFIX))) == NULL || cf_push(rb, cf) != 0) {
            cf_free(cf);
            rc = weir_err_set(err, WEIR_ENOMEM, "out of memory");
            goto done;
        }
        cfnames[rb->ncfs] = names[i];
        cfopts[rb->ncfs] = cf->opts;
    }
    if (rb->ncfs + 1 != (int)n) {
        rc = weir_err_set(err, WEIR_EPROTO, "state directory %s lacks its default column "
                          "family", rb->dir);
        goto done;
    }
    rb->db = rocksdb_open_column_families(rb->opts, rb->dir, (int)n, cfnames, cfopts,
                                          handles, &rerr);
    if (rerr != NULL) {
        rc = rdb_fail(rb, rerr, "open");
        weir_err_set(err, rc, "%s", rb->base.errmsg);
        goto done;
    }
    rb->meta = handles[0];
    for (i = 0; i < rb->ncfs; i++)
        rb->cfs[i]->h = handles[i + 1];

done:
    if (names != NULL)
        rocksdb_list_column_families_destroy(names, n);
    free(cfnames);
    free(cfopts);
    free(handles);
    return rc;
}

int
weir_state_backend_rocksdb(const char *dir, int kg_first, int kg_last,
                           weir_state_backend_t **out, weir_err_t *err)
{
    weir_state_rocksdb_tuning_t t;
    rocksdb_cache_t *cache;
    rdb_backend_t *rb;
    bool has_db = false;
    int rc;

    if (dir == NULL || dir[0] == '\0' || out == NULL)
        return weir_err_set(err, WEIR_EINVAL, "state directory not given");
    if (strlen(dir) > PATH_MAX - 64)
        return weir_err_set(err, WEIR_EINVAL, "state directory path too long");
    if (kg_first < 0 || kg_last < kg_first || kg_last > WEIR_STATE_MAX_KEY_GROUP)
        return weir_err_set(err, WEIR_EINVAL, "key group range [%d, %d] is not within [0, %d]",
                            kg_first, kg_last, WEIR_STATE_MAX_KEY_GROUP);
    if ((rb = calloc(1, sizeof(*rb))) == NULL)
        return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    rb->base.ops = &rdb_ops;
    rb->base.kg_first = kg_first;
    rb->base.kg_last = kg_last;
    if ((rb->dir = strdup(dir)) == NULL) {
        rc = weir_err_set(err, WEIR_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = prepare_dir(dir, &has_db, err)) != 0)
        goto fail;

    if ((cache = cache_acquire(&t)) == NULL) {
        rc = weir_err_set(err, WEIR_ENOMEM, "out of memory");
        goto fail;
    }
    rb->cache_held = true;
    rb->opts = db_options(&t, cache);
    rb->wo = rocksdb_writeoptions_create();
    rb->ro = rocksdb_readoptions_create();
    rb->wb = rocksdb_writebatch_create();
    if (rb->opts == NULL || rb->wo == NULL || rb->ro == NULL || rb->wb == NULL) {
        rc = weir_err_set(err, WEIR_ENOMEM, "out of memory");
        goto fail;
    }
    rocksdb_writeoptions_disable_WAL(rb->wo, 1);
    /* RocksDB's perf counters are thread-local and on by default (count
     * level): every operation paid for them. Off for the opening thread,
     * which is the task thread that does every operation. */
    rocksdb_set_perf_level(1);

    if ((rc = rdb_open_db(rb, has_db, err)) != 0)
        goto fail;
    for (int i = 0; i < rb->ncfs; i++)
        if ((rc = meta_read(rb, rb->cfs[i])) != 0)
            goto fail_msg;
    if ((rc = seq_read(rb)) != 0)
        goto fail_msg;
    wc_init(&rb->wc, t.write_cache_bytes);
    *out = &rb->base;            /* caller owns: weir_state_backend_destroy() */
    return 0;

fail_msg:
    weir_err_set(err, rc, "%s", rb->base.errmsg);
fail:
    rdb_shutdown(rb, false);
    free(rb->dir);
    free(rb);
    return rc;
}

/* ---- states ----------------------------------------------------------- */

static int
rdb_state_open(weir_state_backend_t *b, const char *name, int kind, int64_t ttl_us,
               weir_state_t **out)
{
    rdb_backend_t *rb = (rdb_backend_t *)b;
    cf_t *cf = cf_find(rb, name);
    rdb_state_t *rs;
    char cfname[sizeof(CF_PREFIX) + WEIR_STATE_NAME_MAX], *rerr = NULL;
    int rc;

    if (cf != NULL && cf->kind != 0) {
        if (cf->kind != kind)
            return weir__state_fail(b, WEIR_ETYPE, "state '%s' in %s is a %s state, not a "
                                    "%s state", name, rb->dir,
                                    weir__state_kind_name(cf->kind), weir__state_kind_name(kind));
        if (cf->has_ttl != (ttl_us > 0))
            return weir__state_fail(b, WEIR_ETYPE, "state '%s' in %s was written %s TTL; "
                                    "TTL cannot be turned %s", name, rb->dir,
                                    cf->has_ttl ? "with" : "without",
                                    cf->has_ttl ? "off" : "on");
    }
    if ((rs = calloc(1, sizeof(*rs))) == NULL)
        return WEIR_ENOMEM;

    /* the metadata first: a column family never exists without it for long */
    if ((cf == NULL || cf->kind == 0 || atomic_load(&cf->ttl_us) != ttl_us) &&
        (rc = meta_write(rb, name, kind, ttl_us)) != 0)
        goto fail;
    if (cf == NULL) {
        if ((cf = cf_new(rb, name)) == NULL) {
            rc = WEIR_ENOMEM;
            goto fail;
        }
        if ((rc = cf_push(rb, cf)) != 0) {
            cf_free(cf);
            goto fail;
        }
        snprintf(cfname, sizeof(cfname), "%s%s", CF_PREFIX, name);
        cf->h = rocksdb_create_column_family(rb->db, cf->opts, cfname, &rerr);
        if (rerr != NULL) {
            rb->ncfs--;
            cf_free(cf);
            rc = rdb_fail(rb, rerr, "creating a column family");
            goto fail;
        }
    }
    cf->kind = kind;
    cf->has_ttl = ttl_us > 0;
    atomic_store(&cf->ttl_us, ttl_us);
    rs->cf = cf;
    *out = &rs->base;
    return 0;

fail:
    free(rs);
    return rc;
}

static int
rdb_state_set_ttl(weir_state_t *s, int64_t ttl_us)
{
    rdb_state_t *rs = (rdb_state_t *)s;
    int rc;

    if ((rc = meta_write((rdb_backend_t *)s->b, s->name, s->kind, ttl_us)) != 0)
        return rc;
    atomic_store(&rs->cf->ttl_us, ttl_us);
    return 0;
}

static void
rdb_state_free(weir_state_t *s)
{
    free(s);
}

/* ---- keys and values -------------------------------------------------- */

static inline rdb_backend_t *
backend_of(weir_state_t *s)
{
    return (rdb_backend_t *)s->b;
}

static inline rocksdb_column_family_handle_t *
cf_of(weir_state_t *s)
{
    return ((rdb_state_t *)s)->cf->h;
}

/* Builds [kg][klen varint][key][suffix] in rb->key. */
static int
make_key(rdb_backend_t *rb, int kg, const void *key, size_t klen, const void *suffix, size_t slen)
{
    unsigned char pre[WEIR__PREFIX_MAX];
    size_t n = weir__key_prefix(pre, kg, klen);

    weir_buf_reset(&rb->key);
    if (weir_buf_reserve(&rb->key, n + klen + slen) != 0)
        return WEIR_ENOMEM;
    memcpy(rb->key.data, pre, n);
    if (klen > 0)
        memcpy(rb->key.data + n, key, klen);
    if (slen > 0)
        memcpy(rb->key.data + n + klen, suffix, slen);
    rb->key.len = n + klen + slen;
    return 0;
}

/* The stored form of val: itself, or [write time][val] in rb->val. */
static int
make_val(rdb_backend_t *rb, weir_state_t *s, const void *val, size_t vlen,
         const char **p, size_t *n)
{
    char ts[WEIR__TS_LEN];

    if (s->ttl_us == 0) {
        *p = val != NULL ? val : "";
        *n = vlen;
        return 0;
    }
    weir__be64_put(ts, (uint64_t)weir__state_now());
    weir_buf_reset(&rb->val);
    if (weir_buf_append(&rb->val, ts, sizeof(ts)) != 0 ||
        weir_buf_append(&rb->val, val, vlen) != 0)
        return WEIR_ENOMEM;
    *p = rb->val.data;
    *n = rb->val.len;
    return 0;
}

/* Checks a stored value of s: 1 when live, 0 when expired (deleted here,
 * key being its stored key), or WEIR_EPROTO. */
static int
live(weir_state_t *s, const char *key, size_t klen, const char *v, size_t n, int64_t now)
{
    rdb_backend_t *rb = backend_of(s);
    char *rerr = NULL;

    if (s->ttl_us == 0)
        return 1;
    if (n < WEIR__TS_LEN)
        return weir__state_fail(s->b, WEIR_EPROTO, "state '%s': stored value without its "
                                "write time", s->name);
    if (!weir__state_expired((int64_t)weir__be64_get(v), s->ttl_us, now))
        return 1;
    rocksdb_delete_cf(rb->db, rb->wo, cf_of(s), key, klen, &rerr);
    if (rerr != NULL)
        return rdb_fail(rb, rerr, "deleting an expired entry");
    return 0;
}

/* ---- the write cache (see the top of this file) ------------------------ */

static void
wc_init(wcache_t *c, size_t bytes)
{
    size_t cap = 1024;

    memset(c, 0, sizeof(*c));
    if (bytes == 0)
        return;
    while (cap * 256 < bytes)              /* a slot per 256 arena bytes */
        cap <<= 1;
    if ((c->slots = calloc(cap, sizeof(*c->slots))) == NULL ||
        (c->wb = rocksdb_writebatch_create()) == NULL) {
        free(c->slots);
        c->slots = NULL;
        return;                            /* no cache: slower, not wrong */
    }
    c->cap = cap;
    c->n_max = cap / 4 * 3;
    c->bytes_max = bytes;
    weir_arena_init(&c->arena, MIB);
}

static void
wc_free(wcache_t *c)
{
    free(c->slots);
    if (c->cap > 0) {
        weir_arena_free(&c->arena);
        rocksdb_writebatch_destroy(c->wb);
        weir_buf_free(&c->kbuf);
    }
    memset(c, 0, sizeof(*c));
}

/* Every entry gone; nothing may be dirty. */
static void
wc_clear(wcache_t *c)
{
    if (c->cap == 0 || c->n == 0)
        return;
    memset(c->slots, 0, c->cap * sizeof(*c->slots));
    c->n = 0;
    weir_arena_reset(&c->arena);
}

/* The slot of (cf, k): the entry, or the free slot where it would go. */
static wc_entry_t *
wc_slot(wcache_t *c, const cf_t *cf, const char *k, size_t klen, uint64_t h)
{
    for (size_t i = h & (c->cap - 1);; i = (i + 1) & (c->cap - 1)) {
        wc_entry_t *e = &c->slots[i];
        if (e->cf == NULL ||
            (e->hash == h && e->cf == cf && e->klen == klen && memcmp(e->k, k, klen) == 0))
            return e;
    }
}

/* Takes the free slot e for (cf, k): the key copied into the arena, no
 * value yet. */
static int
wc_take(wcache_t *c, wc_entry_t *e, cf_t *cf, const char *k, size_t klen, uint64_t h,
        bool chunk)
{
    if ((e->k = weir_arena_alloc(&c->arena, klen > 0 ? klen : 1)) == NULL)
        return WEIR_ENOMEM;
    memcpy(e->k, k, klen);
    e->klen = (uint32_t)klen;
    e->hash = h;
    e->cf = cf;
    e->v = NULL;
    e->vlen = e->vcap = 0;
    e->dirty = e->absent = false;
    e->chunk = chunk;
    c->n++;
    return 0;
}

/* Marks e as a write RocksDB does not have yet. */
static void
wc_dirty(wcache_t *c, wc_entry_t *e)
{
    if (e->dirty)
        return;
    e->dirty = true;
    e->cf->dirty++;
    c->dirty++;
}

/* Writes the dirty entries of cf (NULL: of every column family) in one
 * batch; they stay cached, clean. */
static int
wc_write(rdb_backend_t *rb, cf_t *only)
{
    wcache_t *c = &rb->wc;
    size_t todo = only != NULL ? only->dirty : c->dirty;
    char *rerr = NULL;

    if (todo == 0)
        return 0;
    rocksdb_writebatch_clear(c->wb);
    for (size_t i = 0; i < c->cap && todo > 0; i++) {
        wc_entry_t *e = &c->slots[i];
        if (e->cf == NULL || !e->dirty || (only != NULL && e->cf != only))
            continue;
        if (e->chunk) {
            /* [key][first seq][CHUNK_TAG]; the entry starts an empty chunk */
            char sfx[SEQ_LEN + 1];
            weir__be64_put(sfx, e->seq);
            sfx[SEQ_LEN] = CHUNK_TAG;
            weir_buf_reset(&c->kbuf);
            if (weir_buf_append(&c->kbuf, e->k, e->klen) != 0 ||
                weir_buf_append(&c->kbuf, sfx, sizeof(sfx)) != 0) {
                rocksdb_writebatch_clear(c->wb);
                return WEIR_ENOMEM;
            }
            rocksdb_writebatch_put_cf(c->wb, e->cf->h, c->kbuf.data, c->kbuf.len, e->v, e->vlen);
            e->vlen = 0;
        } else if (e->absent) {
            rocksdb_writebatch_delete_cf(c->wb, e->cf->h, e->k, e->klen);
        } else {
            rocksdb_writebatch_put_cf(c->wb, e->cf->h, e->k, e->klen, e->v, e->vlen);
        }
        e->dirty = false;
        e->cf->dirty--;
        c->dirty--;
        todo--;
    }
    rocksdb_write(rb->db, rb->wo, c->wb, &rerr);
    rocksdb_writebatch_clear(c->wb);
    return rerr != NULL ? rdb_fail(rb, rerr, "writing cached state") : 0;
}

/* Sets (cf, k) to the stored value v (absent: to none), dirty (a write) or
 * clean (what RocksDB holds). When the table or the arena is full, every
 * dirty entry is written first and the cache starts over. */
static int
wc_set(rdb_backend_t *rb, cf_t *cf, const char *k, size_t klen, const char *v, size_t vlen,
       bool absent, bool dirty)
{
    wcache_t *c = &rb->wc;
    uint64_t h = XXH3_64bits(k, klen);
    wc_entry_t *e = wc_slot(c, cf, k, klen, h);
    bool fresh = e->cf == NULL;
    size_t need = (fresh ? klen : 0) + (absent || (!fresh && vlen <= e->vcap) ? 0 : vlen);
    int rc;

    if (need > 0 && (c->n >= c->n_max || weir_arena_used(&c->arena) + need > c->bytes_max)) {
        if ((rc = wc_write(rb, NULL)) != 0)
            return rc;
        wc_clear(c);
        e = wc_slot(c, cf, k, klen, h);
        fresh = true;
    }
    if (fresh && (rc = wc_take(c, e, cf, k, klen, h, false)) != 0)
        return rc;
    e->absent = absent;
    if (!absent) {
        /* a value no longer than the room of the last one reuses its bytes */
        if (e->v == NULL || vlen > e->vcap) {
            if ((e->v = weir_arena_alloc(&c->arena, vlen > 0 ? vlen : 1)) == NULL) {
                e->absent = true;
                return WEIR_ENOMEM;
            }
            e->vcap = (uint32_t)(vlen > 0 ? vlen : 1);
        }
        memcpy(e->v, v, vlen);
        e->vlen = (uint32_t)vlen;
    }
    if (dirty)
        wc_dirty(c, e);
    return 0;
}

/* Appends element val (number seq) to the pending chunk of the list key
 * whose stored prefix is in rb->key. */
static int
wc_append(rdb_backend_t *rb, cf_t *cf, uint64_t seq, const void *val, size_t vlen)
{
    wcache_t *c = &rb->wc;
    const char *k = rb->key.data;
    size_t klen = rb->key.len, want;
    uint64_t h = XXH3_64bits(k, klen);
    wc_entry_t *e = wc_slot(c, cf, k, klen, h);
    char len4[4];
    int rc;

    if (vlen > UINT32_MAX - 4)
        return WEIR_E2BIG;
    if (e->cf != NULL && (e->absent || !e->chunk)) {
        e->absent = false;                   /* a cleared list starts over */
        e->chunk = true;
        e->vlen = 0;
    }
    want = (e->cf != NULL ? e->vlen : 0) + 4 + vlen;
    if (e->cf == NULL || want > e->vcap) {
        /* room doubles, so a hot key's appends copy O(n) bytes in all */
        size_t cap = e->cf != NULL && e->vcap > 0 ? (size_t)e->vcap * 2 : 64;
        size_t need;
        while (cap < want)
            cap *= 2;
        if (cap > UINT32_MAX)
            cap = want;
        need = cap + (e->cf == NULL ? klen : 0);
        if (c->n >= c->n_max || weir_arena_used(&c->arena) + need > c->bytes_max) {
            if ((rc = wc_write(rb, NULL)) != 0)
                return rc;
            wc_clear(c);
            e = wc_slot(c, cf, k, klen, h);
            want = 4 + vlen;
            cap = want > 64 ? want : 64;
        }
        if (e->cf == NULL && (rc = wc_take(c, e, cf, k, klen, h, true)) != 0)
            return rc;
        char *nv = weir_arena_alloc(&c->arena, cap);
        if (nv == NULL)
            return WEIR_ENOMEM;
        if (e->vlen > 0)
            memcpy(nv, e->v, e->vlen);
        e->v = nv;
        e->vcap = (uint32_t)cap;
    }
    if (e->vlen == 0)
        e->seq = seq;
    len4[0] = (char)(vlen & 0xff);
    len4[1] = (char)((vlen >> 8) & 0xff);
    len4[2] = (char)((vlen >> 16) & 0xff);
    len4[3] = (char)((vlen >> 24) & 0xff);
    memcpy(e->v + e->vlen, len4, 4);
    if (vlen > 0)
        memcpy(e->v + e->vlen + 4, val, vlen);
    e->vlen += (uint32_t)(4 + vlen);
    wc_dirty(c, e);
    return 0;
}

/* Whether stored key k is a list chunk. */
static bool
is_chunk(const char *k, size_t n)
{
    const char *key, *sfx;
    size_t klen, slen;
    int kg;

    return weir__key_split(k, n, &kg, &key, &klen, &sfx, &slen) == 0 &&
           slen == SEQ_LEN + 1 && (unsigned char)sfx[SEQ_LEN] == CHUNK_TAG;
}

/* The next element of chunk v (vlen bytes) at *off: 1 with it in *e, *elen;
 * 0 at the end; WEIR_EPROTO when malformed. */
static int
chunk_next(const char *v, size_t vlen, size_t *off, const char **e, size_t *elen)
{
    const unsigned char *p = (const unsigned char *)v + *off;
    size_t len;

    if (*off == vlen)
        return 0;
    if (vlen - *off < 4)
        return WEIR_EPROTO;
    len = (size_t)p[0] | (size_t)p[1] << 8 | (size_t)p[2] << 16 | (size_t)p[3] << 24;
    if (len > vlen - *off - 4)
        return WEIR_EPROTO;
    *e = v + *off + 4;
    *elen = len;
    *off += 4 + len;
    return 1;
}

/* Looks the key in rb->key up for s: 1 with the stored value in *v, *n;
 * 0 when it has none (or it expired: then deleted, in the cache); 2 when
 * the cache does not know; < 0 an error. */
static int
wc_get(weir_state_t *s, const char **v, size_t *n)
{
    rdb_backend_t *rb = backend_of(s);
    wcache_t *c = &rb->wc;
    cf_t *cf = ((rdb_state_t *)s)->cf;
    wc_entry_t *e;

    if (c->cap == 0)
        return 2;
    e = wc_slot(c, cf, rb->key.data, rb->key.len, XXH3_64bits(rb->key.data, rb->key.len));
    if (e->cf == NULL)
        return 2;
    if (e->absent)
        return 0;
    if (s->ttl_us > 0) {
        if (e->vlen < WEIR__TS_LEN)
            return weir__state_fail(s->b, WEIR_EPROTO, "state '%s': stored value without its "
                                    "write time", s->name);
        if (weir__state_expired((int64_t)weir__be64_get(e->v), s->ttl_us, weir__state_now())) {
            e->absent = true;
            wc_dirty(c, e);
            return 0;
        }
    }
    *v = e->v;
    *n = e->vlen;
    return 1;
}

/* A point read of the key in rb->key: from the cache, or from RocksDB
 * (and then remembered). Appends the value (without its write time) to
 * out and sets *found. */
static int
point_get(weir_state_t *s, weir_buf_t *out, int *found, const char *what)
{
    rdb_backend_t *rb = backend_of(s);
    size_t hdr = s->ttl_us > 0 ? WEIR__TS_LEN : 0, n = 0;
    rocksdb_pinnableslice_t *p;
    const char *v = NULL;
    char *rerr = NULL;
    int rc, rc2;

    if ((rc = wc_get(s, &v, &n)) == 1) {
        *found = 1;
        return weir_buf_append(out, v + hdr, n - hdr);
    }
    if (rc != 2)
        return rc < 0 ? rc : 0;
    p = rocksdb_get_pinned_cf(rb->db, rb->ro, cf_of(s), rb->key.data, rb->key.len, &rerr);
    if (rerr != NULL)
        return rdb_fail(rb, rerr, what);
    if (p == NULL)
        return rb->wc.cap > 0 ? wc_set(rb, ((rdb_state_t *)s)->cf, rb->key.data, rb->key.len,
                                      NULL, 0, true, false) : 0;
    v = rocksdb_pinnableslice_value(p, &n);
    rc = live(s, rb->key.data, rb->key.len, v, n, hdr > 0 ? weir__state_now() : 0);
    if (rc == 1) {
        *found = 1;
        rc = weir_buf_append(out, v + hdr, n - hdr);
    }
    if (rc >= 0 && rb->wc.cap > 0 &&
        (rc2 = wc_set(rb, ((rdb_state_t *)s)->cf, rb->key.data, rb->key.len, v, n, !*found,
                      false)) != 0)
        rc = rc2;
    rocksdb_pinnableslice_destroy(p);
    return rc < 0 ? rc : 0;
}

/* A point write of the key in rb->key (v NULL: a delete). */
static int
point_put(weir_state_t *s, const char *v, size_t n, const char *what)
{
    rdb_backend_t *rb = backend_of(s);
    char *rerr = NULL;

    if (rb->wc.cap > 0)
        return wc_set(rb, ((rdb_state_t *)s)->cf, rb->key.data, rb->key.len, v, n, v == NULL,
                      true);
    if (v == NULL)
        rocksdb_delete_cf(rb->db, rb->wo, cf_of(s), rb->key.data, rb->key.len, &rerr);
    else
        rocksdb_put_cf(rb->db, rb->wo, cf_of(s), rb->key.data, rb->key.len, v, n, &rerr);
    return rerr != NULL ? rdb_fail(rb, rerr, what) : 0;
}

/* Before iterating s's column family: RocksDB must have its writes. */
static int
wc_sync(weir_state_t *s)
{
    return wc_write(backend_of(s), ((rdb_state_t *)s)->cf);
}

/* ---- ranges ----------------------------------------------------------- */

/* An iterator over [lo, hi). hi is copied: RocksDB keeps a pointer to the
 * upper bound for the iterator's life. */
typedef struct range {
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t    *it;
    char                  *hi;
    char                   small[64];
} range_t;

static void
range_close(range_t *r)
{
    if (r->it != NULL)
        rocksdb_iter_destroy(r->it);
    if (r->ro != NULL)
        rocksdb_readoptions_destroy(r->ro);
    if (r->hi != r->small)
        free(r->hi);
}

static int
range_open(rdb_backend_t *rb, rocksdb_column_family_handle_t *h, const char *lo, size_t lolen,
           const char *hi, size_t hilen, range_t *r)
{
    r->it = NULL;
    r->hi = hilen <= sizeof(r->small) ? r->small : malloc(hilen);
    r->ro = rocksdb_readoptions_create();
    if (r->hi == NULL || r->ro == NULL) {
        range_close(r);
        return WEIR_ENOMEM;
    }
    memcpy(r->hi, hi, hilen);
    rocksdb_readoptions_set_iterate_upper_bound(r->ro, r->hi, hilen);
    if ((r->it = rocksdb_create_iterator_cf(rb->db, r->ro, h)) == NULL) {
        range_close(r);
        return WEIR_ENOMEM;
    }
    rocksdb_iter_seek(r->it, lo, lolen);
    return 0;
}

/* An iterator over every stored entry of (kg, key) of s. */
static int
range_open_key(weir_state_t *s, int kg, const void *key, size_t klen, range_t *r)
{
    rdb_backend_t *rb = backend_of(s);
    size_t i;
    char *hi;
    int rc;

    /* the upper bound: the prefix's successor. The first byte is a key group
     * byte below 0x80, so some byte can always be incremented. */
    if ((rc = make_key(rb, kg, key, klen, NULL, 0)) != 0)
        return rc;
    if ((hi = malloc(rb->key.len)) == NULL)
        return WEIR_ENOMEM;
    memcpy(hi, rb->key.data, rb->key.len);
    for (i = rb->key.len; i > 0 && (unsigned char)hi[i - 1] == 0xff; i--)
        ;
    hi[i - 1] = (char)((unsigned char)hi[i - 1] + 1);
    rc = range_open(rb, cf_of(s), rb->key.data, rb->key.len, hi, i, r);
    free(hi);
    return rc;
}

/* The range of key groups [first, last]. */
static int
range_open_kgs(weir_state_t *s, int first, int last, range_t *r)
{
    char lo[2] = { (char)(first >> 8), (char)first };
    char hi[2] = { (char)((last + 1) >> 8), (char)(last + 1) };

    return range_open(backend_of(s), cf_of(s), lo, 2, hi, 2, r);
}

static int
range_status(weir_state_t *s, range_t *r)
{
    char *rerr = NULL;

    rocksdb_iter_get_error(r->it, &rerr);
    return rerr != NULL ? rdb_fail(backend_of(s), rerr, "iterating") : 0;
}

/* ---- value state ------------------------------------------------------ */

static int
rdb_get(weir_state_t *s, int kg, const void *key, size_t klen, weir_buf_t *out, int *found)
{
    int rc = make_key(backend_of(s), kg, key, klen, NULL, 0);

    return rc != 0 ? rc : point_get(s, out, found, "get");
}

static int
rdb_put(weir_state_t *s, int kg, const void *key, size_t klen, const void *val, size_t vlen)
{
    rdb_backend_t *rb = backend_of(s);
    const char *v;
    size_t n;
    int rc;

    if ((rc = make_key(rb, kg, key, klen, NULL, 0)) != 0 ||
        (rc = make_val(rb, s, val, vlen, &v, &n)) != 0)
        return rc;
    return point_put(s, v, n, "put");
}

static int
rdb_clear(weir_state_t *s, int kg, const void *key, size_t klen)
{
    rdb_backend_t *rb = backend_of(s);
    char *rerr = NULL;
    range_t r;
    int rc;

    if (s->kind == WEIR__STATE_VALUE) {
        if ((rc = make_key(rb, kg, key, klen, NULL, 0)) != 0)
            return rc;
        return point_put(s, NULL, 0, "delete");
    }
    /* a list or a map: point deletes of its entries in one batch (a range
     * tombstone per cleared key would slow reads down), and the cached
     * entries of the key forgotten */
    if ((rc = wc_sync(s)) != 0 || (rc = range_open_key(s, kg, key, klen, &r)) != 0)
        return rc;
    rocksdb_writebatch_clear(rb->wb);
    for (; rocksdb_iter_valid(r.it); rocksdb_iter_next(r.it)) {
        size_t n;
        const char *k = rocksdb_iter_key(r.it, &n);
        rocksdb_writebatch_delete_cf(rb->wb, cf_of(s), k, n);
    }
    rc = range_status(s, &r);
    range_close(&r);
    if (rc == 0 && rocksdb_writebatch_count(rb->wb) > 0) {
        rocksdb_write(rb->db, rb->wo, rb->wb, &rerr);
        if (rerr != NULL)
            rc = rdb_fail(rb, rerr, "clear");
    }
    rocksdb_writebatch_clear(rb->wb);
    if (rc == 0 && rb->wc.n > 0 && (rc = make_key(rb, kg, key, klen, NULL, 0)) == 0) {
        const cf_t *cf = ((rdb_state_t *)s)->cf;
        for (size_t i = 0; i < rb->wc.cap; i++) {
            wc_entry_t *e = &rb->wc.slots[i];
            if (e->cf == cf && e->klen >= rb->key.len &&
                memcmp(e->k, rb->key.data, rb->key.len) == 0)
                e->absent = true;          /* clean: RocksDB has none either */
        }
    }
    return rc;
}

static int
rdb_count(weir_state_t *s, size_t *count)
{
    rdb_backend_t *rb = backend_of(s);
    int64_t now = s->ttl_us > 0 ? weir__state_now() : 0;
    rocksdb_iterator_t *it;
    size_t n = 0;
    char *rerr = NULL;
    int rc;

    if ((rc = wc_sync(s)) != 0)
        return rc;
    if ((it = rocksdb_create_iterator_cf(rb->db, rb->ro, cf_of(s))) == NULL)
        return WEIR_ENOMEM;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t vlen, kn;
        const char *v = rocksdb_iter_value(it, &vlen), *k = rocksdb_iter_key(it, &kn);

        if (s->kind == WEIR__STATE_LIST && s->ttl_us == 0 && is_chunk(k, kn)) {
            size_t off = 0, elen;
            const char *e;
            int r2;
            while ((r2 = chunk_next(v, vlen, &off, &e, &elen)) == 1)
                n++;
            if (r2 != 0) {
                rocksdb_iter_destroy(it);
                return weir__state_fail(s->b, WEIR_EPROTO, "state '%s': corrupt list chunk",
                                        s->name);
            }
            continue;
        }
        if (s->ttl_us == 0 ||
            (vlen >= WEIR__TS_LEN &&
             !weir__state_expired((int64_t)weir__be64_get(v), s->ttl_us, now)))
            n++;
    }
    rocksdb_iter_get_error(it, &rerr);
    rocksdb_iter_destroy(it);
    if (rerr != NULL)
        return rdb_fail(rb, rerr, "count");
    *count = n;
    return 0;
}

/* One pass over a key-group range of any kind: value and list states call
 * vcb, map states mcb. Expired entries met are deleted. */
static int
rdb_range_visit(weir_state_t *s, int kg_first, int kg_last, weir_state_visit_cb vcb,
                weir_state_map_visit_cb mcb, void *arg)
{
    size_t hdr = s->ttl_us > 0 ? WEIR__TS_LEN : 0;
    int64_t now = hdr > 0 ? weir__state_now() : 0;
    range_t r;
    int rc;

    if ((rc = wc_sync(s)) != 0 || (rc = range_open_kgs(s, kg_first, kg_last, &r)) != 0)
        return rc;
    for (; rocksdb_iter_valid(r.it); rocksdb_iter_next(r.it)) {
        size_t n, vlen, klen, slen;
        const char *k = rocksdb_iter_key(r.it, &n), *v = rocksdb_iter_value(r.it, &vlen);
        const char *key, *suffix;
        int kg;

        if (weir__key_split(k, n, &kg, &key, &klen, &suffix, &slen) != 0 ||
            (s->kind == WEIR__STATE_VALUE && slen != 0) ||
            (s->kind == WEIR__STATE_LIST && slen != SEQ_LEN && slen != SEQ_LEN + 1)) {
            rc = weir__state_fail(s->b, WEIR_EPROTO, "state '%s': corrupt stored key", s->name);
            break;
        }
        if (s->kind == WEIR__STATE_LIST && slen == SEQ_LEN + 1) {
            size_t off = 0, elen;
            const char *e;
            if (hdr != 0 || (unsigned char)suffix[SEQ_LEN] != CHUNK_TAG) {
                rc = weir__state_fail(s->b, WEIR_EPROTO, "state '%s': corrupt stored key",
                                      s->name);
                break;
            }
            while ((rc = chunk_next(v, vlen, &off, &e, &elen)) == 1 &&
                   (rc = vcb(arg, kg, key, klen, e, elen)) == 0)
                ;
            if (rc == WEIR_EPROTO)
                rc = weir__state_fail(s->b, rc, "state '%s': corrupt list chunk", s->name);
            if (rc != 0)
                break;
            continue;
        }
        if ((rc = live(s, k, n, v, vlen, now)) < 0)
            break;
        if (rc == 0)
            continue;
        rc = mcb != NULL ? mcb(arg, kg, key, klen, suffix, slen, v + hdr, vlen - hdr)
                         : vcb(arg, kg, key, klen, v + hdr, vlen - hdr);
        if (rc != 0)
            break;
    }
    if (rc == 0)
        rc = range_status(s, &r);
    range_close(&r);
    return rc;
}

static int
rdb_scan(weir_state_t *s, int kg_first, int kg_last, weir_state_visit_cb cb, void *arg)
{
    return rdb_range_visit(s, kg_first, kg_last, cb, NULL, arg);
}

/* ---- list state ------------------------------------------------------- */

static int
rdb_list_add(weir_state_t *s, int kg, const void *key, size_t klen, const void *val, size_t vlen)
{
    rdb_backend_t *rb = backend_of(s);
    char seq[SEQ_LEN], *rerr = NULL;
    const char *v;
    size_t n;
    int rc;

    if (rb->seq_next >= rb->seq_mark) {
        /* persist a new mark before using the numbers under it */
        char mark[SEQ_LEN];
        weir__be64_put(mark, rb->seq_next + SEQ_BLOCK);
        rocksdb_put_cf(rb->db, rb->wo, rb->meta, META_SEQ, strlen(META_SEQ), mark,
                       sizeof(mark), &rerr);
        if (rerr != NULL)
            return rdb_fail(rb, rerr, "writing the list sequence");
        rb->seq_mark = rb->seq_next + SEQ_BLOCK;
    }
    if (rb->wc.cap > 0 && s->ttl_us == 0 && !((rdb_state_t *)s)->cf->has_ttl) {
        /* into the key's pending chunk */
        if ((rc = make_key(rb, kg, key, klen, NULL, 0)) != 0 ||
            (rc = wc_append(rb, ((rdb_state_t *)s)->cf, rb->seq_next, val, vlen)) != 0)
            return rc;
        rb->seq_next++;
        return 0;
    }
    weir__be64_put(seq, rb->seq_next);
    if ((rc = make_key(rb, kg, key, klen, seq, sizeof(seq))) != 0 ||
        (rc = make_val(rb, s, val, vlen, &v, &n)) != 0 ||
        (rc = point_put(s, v, n, "list add")) != 0)
        return rc;
    rb->seq_next++;
    return 0;
}

static int
rdb_list_get(weir_state_t *s, int kg, const void *key, size_t klen, weir_state_elem_cb cb, void *arg)
{
    rdb_backend_t *rb = backend_of(s);
    size_t hdr = s->ttl_us > 0 ? WEIR__TS_LEN : 0;
    int64_t now = hdr > 0 ? weir__state_now() : 0;
    range_t r;
    int rc;

    bool any = false, cached = rb->wc.cap > 0 && hdr == 0;

    if ((rc = wc_sync(s)) != 0)
        return rc;
    if (cached) {
        /* a key known to have no element costs no iterator (a join probes
         * the other side for every row, and most keys have nothing there) */
        wc_entry_t *e;
        if ((rc = make_key(rb, kg, key, klen, NULL, 0)) != 0)
            return rc;
        e = wc_slot(&rb->wc, ((rdb_state_t *)s)->cf, rb->key.data, rb->key.len,
                    XXH3_64bits(rb->key.data, rb->key.len));
        if (e->cf != NULL && e->absent)
            return 0;
    }
    if ((rc = range_open_key(s, kg, key, klen, &r)) != 0)
        return rc;
    for (; rocksdb_iter_valid(r.it); rocksdb_iter_next(r.it)) {
        size_t n, vlen;
        const char *k = rocksdb_iter_key(r.it, &n), *v = rocksdb_iter_value(r.it, &vlen);

        any = true;
        if (hdr == 0 && is_chunk(k, n)) {
            size_t off = 0, elen;
            const char *e;
            while ((rc = chunk_next(v, vlen, &off, &e, &elen)) == 1 &&
                   (rc = cb(arg, e, elen)) == 0)
                ;
            if (rc == WEIR_EPROTO)
                rc = weir__state_fail(s->b, rc, "state '%s': corrupt list chunk", s->name);
            if (rc != 0)
                break;
            continue;
        }
        if ((rc = live(s, k, n, v, vlen, now)) < 0)
            break;
        if (rc == 0)
            continue;
        if ((rc = cb(arg, v + hdr, vlen - hdr)) != 0)
            break;
    }
    if (rc == 0)
        rc = range_status(s, &r);
    range_close(&r);
    /* remember the empty key (the callback may have used rb->key) */
    if (rc == 0 && !any && cached && (rc = make_key(rb, kg, key, klen, NULL, 0)) == 0)
        rc = wc_set(rb, ((rdb_state_t *)s)->cf, rb->key.data, rb->key.len, NULL, 0, true, false);
    return rc;
}

/* ---- map state -------------------------------------------------------- */

static int
rdb_map_put(weir_state_t *s, int kg, const void *key, size_t klen,
            const void *ukey, size_t uklen, const void *val, size_t vlen)
{
    rdb_backend_t *rb = backend_of(s);
    const char *v;
    size_t n;
    int rc;

    if ((rc = make_key(rb, kg, key, klen, ukey, uklen)) != 0 ||
        (rc = make_val(rb, s, val, vlen, &v, &n)) != 0)
        return rc;
    return point_put(s, v, n, "map put");
}

static int
rdb_map_get(weir_state_t *s, int kg, const void *key, size_t klen,
            const void *ukey, size_t uklen, weir_buf_t *out, int *found)
{
    int rc = make_key(backend_of(s), kg, key, klen, ukey, uklen);

    return rc != 0 ? rc : point_get(s, out, found, "map get");
}

static int
rdb_map_del(weir_state_t *s, int kg, const void *key, size_t klen, const void *ukey, size_t uklen)
{
    int rc = make_key(backend_of(s), kg, key, klen, ukey, uklen);

    return rc != 0 ? rc : point_put(s, NULL, 0, "map delete");
}

static int
rdb_map_iter(weir_state_t *s, int kg, const void *key, size_t klen, weir_state_visit_cb cb, void *arg)
{
    size_t hdr = s->ttl_us > 0 ? WEIR__TS_LEN : 0, plen;
    int64_t now = hdr > 0 ? weir__state_now() : 0;
    unsigned char pre[WEIR__PREFIX_MAX];
    range_t r;
    int rc;

    plen = weir__key_prefix(pre, kg, klen) + klen;     /* the map key follows */

    if ((rc = wc_sync(s)) != 0 || (rc = range_open_key(s, kg, key, klen, &r)) != 0)
        return rc;
    for (; rocksdb_iter_valid(r.it); rocksdb_iter_next(r.it)) {
        size_t n, vlen;
        const char *k = rocksdb_iter_key(r.it, &n), *v = rocksdb_iter_value(r.it, &vlen);

        if ((rc = live(s, k, n, v, vlen, now)) < 0)
            break;
        if (rc == 0)
            continue;
        if ((rc = cb(arg, kg, k + plen, n - plen, v + hdr, vlen - hdr)) != 0)
            break;
    }
    if (rc == 0)
        rc = range_status(s, &r);
    range_close(&r);
    return rc;
}

static int
rdb_map_scan(weir_state_t *s, int kg_first, int kg_last, weir_state_map_visit_cb cb, void *arg)
{
    return rdb_range_visit(s, kg_first, kg_last, NULL, cb, arg);
}

/* ---- whole backend ---------------------------------------------------- */

static int
rdb_drop_key_groups(weir_state_backend_t *b, int kg_first, int kg_last)
{
    rdb_backend_t *rb = (rdb_backend_t *)b;
    char lo[2] = { (char)(kg_first >> 8), (char)kg_first };
    char hi[2] = { (char)((kg_last + 1) >> 8), (char)(kg_last + 1) };
    char *rerr = NULL;
    int rc;

    if ((rc = wc_write(rb, NULL)) != 0)
        return rc;
    wc_clear(&rb->wc);
    for (int i = 0; i < rb->ncfs; i++) {
        rocksdb_delete_range_cf(rb->db, rb->wo, rb->cfs[i]->h, lo, 2, hi, 2, &rerr);
        if (rerr != NULL)
            return rdb_fail(rb, rerr, "dropping key groups");
    }
    return 0;
}

/* A full manual compaction runs the TTL filter over every file, the
 * bottommost level included (RocksDB does that when a filter is set). */
static int
rdb_compact(weir_state_backend_t *b)
{
    rdb_backend_t *rb = (rdb_backend_t *)b;
    int rc;

    if ((rc = wc_write(rb, NULL)) != 0)
        return rc;
    wc_clear(&rb->wc);                       /* what it drops is gone for the cache too */
    for (int i = 0; i < rb->ncfs; i++)
        rocksdb_compact_range_cf(rb->db, rb->cfs[i]->h, NULL, 0, NULL, 0);
    return 0;
}

/* ---- snapshots ---------------------------------------------------------
 *
 * A snapshot is a RocksDB checkpoint of the instance in <snapshot>/db:
 * RocksDB flushes the memtables of every column family (log_size_for_flush
 * 0: always; atomic flush makes it one consistent cut, and with the WAL off
 * a flush is the only way the latest writes reach a file), then hard-links
 * the SST files and copies the small rest (MANIFEST, CURRENT, OPTIONS, the
 * empty WAL). Linking falls back to copying across filesystems. SST files
 * are immutable, so a snapshot shares them with the live instance and with
 * the snapshots before it, and the filesystem's link count is their
 * reference count. The synchronous cost is one memtable flush (at most
 * db_write_buffer_bytes) and a link per file, whatever the state's size.
 *
 * A snapshot is read by opening it read-only (no lock, no LOG file, no
 * write of any kind: the directory may be shared by several restores at
 * once, or live on read-only storage) and iterating the key-group range
 * of each state's column family.
 */

static int
rdb_snapshot(weir_state_backend_t *b, const char *dir, weir__snap_meta_t *meta, weir_err_t *err)
{
    rdb_backend_t *rb = (rdb_backend_t *)b;
    rocksdb_checkpoint_t *cp;
    char path[PATH_MAX], *rerr = NULL;

    if (snprintf(path, sizeof(path), "%s/%s", dir, WEIR__SNAP_DB) >= (int)sizeof(path))
        return weir_err_set(err, WEIR_EINVAL, "snapshot path too long: %s", dir);
    /* the cached writes first: the checkpoint flushes the memtables next */
    if (wc_write(rb, NULL) != 0)
        return weir_err_set(err, WEIR_EIO, "%s", rb->base.errmsg);
    /* every state the instance holds, also those no operator asked for since
     * a reopen; a column family without metadata (created, then crashed
     * before a flush) never held data anyone could read */
    for (int i = 0; i < rb->ncfs; i++) {
        cf_t *cf = rb->cfs[i];
        if (cf->kind != 0 &&
            weir__snap_meta_add(meta, cf->name, cf->kind,
                                cf->has_ttl ? atomic_load(&cf->ttl_us) : 0) != 0)
            return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    }
    meta->backend = WEIR__SNAP_ROCKSDB;
    meta->list_seq = rb->seq_mark;

    cp = rocksdb_checkpoint_object_create(rb->db, &rerr);
    if (rerr == NULL)
        rocksdb_checkpoint_create(cp, path, 0, &rerr);
    if (cp != NULL)
        rocksdb_checkpoint_object_destroy(cp);
    if (rerr != NULL) {
        weir_err_set(err, WEIR_EIO, "rocksdb checkpoint of %s into %s: %s", rb->dir, path, rerr);
        rocksdb_free(rerr);
        return WEIR_EIO;
    }
    return 0;
}

static int
rdb_is_empty(weir_state_backend_t *b, bool *empty)
{
    rdb_backend_t *rb = (rdb_backend_t *)b;
    char *rerr = NULL;
    int rc;

    if ((rc = wc_write(rb, NULL)) != 0)
        return rc;
    *empty = true;
    for (int i = 0; i < rb->ncfs && *empty; i++) {
        rocksdb_iterator_t *it = rocksdb_create_iterator_cf(rb->db, rb->ro, rb->cfs[i]->h);

        if (it == NULL)
            return WEIR_ENOMEM;
        rocksdb_iter_seek_to_first(it);
        *empty = !rocksdb_iter_valid(it);
        rocksdb_iter_get_error(it, &rerr);
        rocksdb_iter_destroy(it);
        if (rerr != NULL)
            return rdb_fail(rb, rerr, "iterating");
    }
    return 0;
}

#define RESTORE_BATCH  (8 * MIB)     /* bytes of one restore write batch */

static int
restore_write(rdb_backend_t *rb)
{
    char *rerr = NULL;

    if (rocksdb_writebatch_count(rb->wb) > 0)
        rocksdb_write(rb->db, rb->wo, rb->wb, &rerr);
    rocksdb_writebatch_clear(rb->wb);
    return rerr != NULL ? rdb_fail(rb, rerr, "restore write") : 0;
}

/* The entries go in batches of a few MiB: the restore of a whole
 * instance is sequential writes, without a read. */
static int
rdb_restore_put(weir_state_t *s, const char *key, size_t klen, const char *val, size_t vlen)
{
    rdb_backend_t *rb = backend_of(s);
    size_t size;

    rocksdb_writebatch_put_cf(rb->wb, cf_of(s), key, klen, val, vlen);
    (void)rocksdb_writebatch_data(rb->wb, &size);
    return size >= RESTORE_BATCH ? restore_write(rb) : 0;
}

static int
rdb_restore_end(weir_state_backend_t *b, uint64_t list_seq, bool ok)
{
    rdb_backend_t *rb = (rdb_backend_t *)b;
    char mark[SEQ_LEN], *rerr = NULL;
    int rc;

    wc_clear(&rb->wc);                       /* nothing cached may predate it */
    if (!ok) {
        rocksdb_writebatch_clear(rb->wb);
        return 0;
    }
    if ((rc = restore_write(rb)) != 0)
        return rc;
    /* elements appended from now on sort after every restored one */
    if (list_seq > rb->seq_mark) {
        weir__be64_put(mark, list_seq);
        rocksdb_put_cf(rb->db, rb->wo, rb->meta, META_SEQ, strlen(META_SEQ), mark,
                       sizeof(mark), &rerr);
        if (rerr != NULL)
            return rdb_fail(rb, rerr, "writing the list sequence");
        rb->seq_next = rb->seq_mark = list_seq;
    }
    return 0;
}

int
weir__rdb_claim_dir(const char *dir, weir_err_t *err)
{
    bool has_db = false;
    int rc;

    if ((rc = prepare_dir(dir, &has_db, err)) != 0)
        return rc;
    return has_db ? weir_err_set(err, WEIR_EEXIST, "%s already holds a backend", dir) : 0;
}

/* Read-only options for a snapshot: nothing written into it, no cache
 * filled by a scan that reads everything once. */
static rocksdb_options_t *
snap_read_options(void)
{
    rocksdb_options_t *o = rocksdb_options_create();

    if (o == NULL)
        return NULL;
    rocksdb_options_set_create_if_missing(o, 0);
    rocksdb_options_set_info_log_level(o, LOG_WARN);
    rocksdb_options_set_max_open_files(o, 256);
    rocksdb_options_set_skip_stats_update_on_db_open(o, 1);
    return o;
}

int
weir__rdb_snapshot_read(const char *dbdir, const weir__snap_meta_t *meta, int kg_first,
                        int kg_last, const weir__snap_sink_t *sink, weir_err_t *err)
{
    rocksdb_options_t *o = NULL;
    rocksdb_readoptions_t *ro = NULL;
    rocksdb_t *db = NULL;
    rocksdb_column_family_handle_t **handles = NULL;
    const rocksdb_options_t **cfopts = NULL;
    const char **cfnames = NULL;
    char **names = NULL, *rerr = NULL, cfname[sizeof(CF_PREFIX) + WEIR_STATE_NAME_MAX];
    char lo[2] = { (char)(kg_first >> 8), (char)kg_first };
    char hi[2] = { (char)((kg_last + 1) >> 8), (char)(kg_last + 1) };
    int *of = NULL;                  /* state index -> column family index */
    size_t n = 0;
    int rc = 0;

    if (access(dbdir, F_OK) != 0)
        return weir_err_set(err, WEIR_EPROTO, "snapshot %s is incomplete: %s", dbdir,
                            strerror(errno));
    if ((o = snap_read_options()) == NULL || (ro = rocksdb_readoptions_create()) == NULL) {
        rc = weir_err_set(err, WEIR_ENOMEM, "out of memory");
        goto done;
    }
    names = rocksdb_list_column_families(o, dbdir, &n, &rerr);
    if (rerr != NULL) {
        rc = weir_err_set(err, WEIR_EPROTO, "snapshot %s cannot be read: %s", dbdir, rerr);
        goto done;
    }
    cfnames = calloc(n, sizeof(*cfnames));
    cfopts = calloc(n, sizeof(*cfopts));
    handles = calloc(n, sizeof(*handles));
    of = calloc((size_t)meta->nstates + 1, sizeof(*of));
    if (cfnames == NULL || cfopts == NULL || handles == NULL || of == NULL) {
        rc = weir_err_set(err, WEIR_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        cfnames[i] = names[i];
        cfopts[i] = o;
    }
    for (int j = 0; j < meta->nstates; j++) {
        snprintf(cfname, sizeof(cfname), "%s%s", CF_PREFIX, meta->states[j].name);
        of[j] = -1;
        for (size_t i = 0; i < n; i++)
            if (strcmp(names[i], cfname) == 0)
                of[j] = (int)i;
        if (of[j] < 0) {
            rc = weir_err_set(err, WEIR_EPROTO, "snapshot %s lacks the column family of "
                              "state '%s'", dbdir, meta->states[j].name);
            goto done;
        }
    }
    db = rocksdb_open_for_read_only_column_families(o, dbdir, (int)n, cfnames, cfopts, handles,
                                                    0, &rerr);
    if (rerr != NULL) {
        rc = weir_err_set(err, WEIR_EPROTO, "snapshot %s cannot be opened: %s", dbdir, rerr);
        goto done;
    }

    rocksdb_readoptions_set_fill_cache(ro, 0);
    rocksdb_readoptions_set_readahead_size(ro, 2 * MIB);
    rocksdb_readoptions_set_iterate_upper_bound(ro, hi, 2);
    for (int j = 0; j < meta->nstates && rc == 0; j++) {
        rocksdb_iterator_t *it;

        if ((rc = sink->state(sink->arg, j)) != 0)
            break;
        if ((it = rocksdb_create_iterator_cf(db, ro, handles[of[j]])) == NULL) {
            rc = weir_err_set(err, WEIR_ENOMEM, "out of memory");
            break;
        }
        for (rocksdb_iter_seek(it, lo, 2); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
            size_t klen, vlen;
            const char *k = rocksdb_iter_key(it, &klen), *v = rocksdb_iter_value(it, &vlen);

            if (meta->states[j].kind == WEIR__STATE_LIST && is_chunk(k, klen)) {
                /* its elements, numbered from the chunk's first one on:
                 * in order, and before the next chunk's */
                char ek[WEIR__PREFIX_MAX + WEIR_STATE_KEY_MAX + SEQ_LEN];
                uint64_t seq = weir__be64_get(k + klen - SEQ_LEN - 1);
                size_t off = 0, elen, plen = klen - SEQ_LEN - 1;
                const char *e;

                if (plen > sizeof(ek) - SEQ_LEN) {
                    rc = weir_err_set(err, WEIR_EPROTO, "snapshot %s: a list key too long",
                                      dbdir);
                    break;
                }
                memcpy(ek, k, plen);
                while ((rc = chunk_next(v, vlen, &off, &e, &elen)) == 1) {
                    weir__be64_put(ek + plen, seq++);
                    if ((rc = sink->entry(sink->arg, ek, plen + SEQ_LEN, e, elen)) != 0)
                        break;
                }
                if (rc == WEIR_EPROTO)
                    rc = weir_err_set(err, rc, "snapshot %s: corrupt list chunk in state '%s'",
                                      dbdir, meta->states[j].name);
                if (rc != 0)
                    break;
                continue;
            }
            if ((rc = sink->entry(sink->arg, k, klen, v, vlen)) != 0)
                break;
        }
        if (rc == 0) {
            rocksdb_iter_get_error(it, &rerr);
            if (rerr != NULL)
                rc = weir_err_set(err, WEIR_EIO, "reading state '%s' of snapshot %s: %s",
                                  meta->states[j].name, dbdir, rerr);
        }
        rocksdb_iter_destroy(it);
    }

done:
    rocksdb_free(rerr);
    if (db != NULL) {
        for (size_t i = 0; i < n; i++)
            if (handles[i] != NULL)
                rocksdb_column_family_handle_destroy(handles[i]);
        rocksdb_close(db);
    }
    if (names != NULL)
        rocksdb_list_column_families_destroy(names, n);
    free(cfnames);
    free(cfopts);
    free(handles);
    free(of);
    if (ro != NULL)
        rocksdb_readoptions_destroy(ro);
    if (o != NULL)
        rocksdb_options_destroy(o);
    return rc;
}

static const weir__state_ops_t rdb_ops = {
    .state_open      = rdb_state_open,
    .state_set_ttl   = rdb_state_set_ttl,
    .state_free      = rdb_state_free,
    .close           = rdb_close,
    .drop            = rdb_drop,
    .get             = rdb_get,
    .put             = rdb_put,
    .clear           = rdb_clear,
    .count           = rdb_count,
    .scan            = rdb_scan,
    .list_add        = rdb_list_add,
    .list_get        = rdb_list_get,
    .map_put         = rdb_map_put,
    .map_get         = rdb_map_get,
    .map_del         = rdb_map_del,
    .map_iter        = rdb_map_iter,
    .map_scan        = rdb_map_scan,
    .drop_key_groups = rdb_drop_key_groups,
    .compact         = rdb_compact,
    .snapshot        = rdb_snapshot,
    .is_empty        = rdb_is_empty,
    .restore_put     = rdb_restore_put,
    .restore_end     = rdb_restore_end,
};
