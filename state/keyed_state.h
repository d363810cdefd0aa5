/* state/keyed_state.h -- keyed state of one subtask.
 *
 * A backend holds the keyed state of one keyed subtask: named states of
 * three kinds, like Flink's ValueState, ListState and MapState. Every entry
 * is scoped to a key and its key group; keys, values, list elements and map
 * keys are opaque bytes (operators store msgpack). A subtask owns a
 * contiguous range of key groups, and its backend refuses key groups outside
 * that range (WEIR_ERANGE), so a routing mistake shows up at once.
 *
 * Two backends, one semantics (the tests run against both):
 *   - memory: hash tables on the heap. Fast, lost with the process.
 *   - RocksDB: one RocksDB instance per subtask, in a directory of its own,
 *     one column family per state name. State survives a close and reopen.
 *
 * The stored key (RocksDB; the memory backend hashes the same fields) is
 *   [key group: 2 bytes big-endian][user key length: varint][user key][suffix]
 * where the suffix is empty for value state, an 8-byte big-endian sequence
 * number per element for list state (so an append is a blind write, and the
 * elements of a key come back in insertion order), and the user map key for
 * map state. All entries of one key are contiguous, and a key-group range is
 * one contiguous key range: it can be scanned, dropped or handed over.
 *
 * TTL: a state created with ttl_us > 0 stores the write time (8 bytes,
 * microseconds of processing time) before each value, list element or map
 * value; an item expires ttl_us after its last write. Expired items are
 * never returned by a read. Any read that meets one removes it (get, list_get,
 * map_get, map_iter, scan, map_scan); besides, the memory backend drops them
 * when a table grows and on weir_state_backend_compact(), and the RocksDB
 * backend drops them in compaction (a compaction filter), so state that is
 * never read again still goes away. weir_state_count() does not remove.
 *
 * Errors: 0 or a negative WEIR_E* code. WEIR_EINVAL for bad arguments,
 * WEIR_ERANGE for a key group outside the backend, WEIR_ETYPE for an
 * operation of the wrong kind (weir_state_get on a list state) or a state
 * name reopened as another kind, WEIR_E2BIG for a key or value over the
 * limits below, WEIR_EIO for a RocksDB failure. weir_state_backend_error()
 * then holds a message with the detail.
 *
 * Not thread-safe: one backend per subtask, used by its task thread only.
 * (Different backends may be used from different threads at once.)
 */
#ifndef WEIR_STATE_KEYED_STATE_H
#define WEIR_STATE_KEYED_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "../runtime/core/buf.h"
#include "../runtime/core/error.h"

typedef struct weir_state_backend weir_state_backend_t;
typedef struct weir_state weir_state_t;

#define WEIR_STATE_MAX_KEY_GROUP  32767          /* max_parallelism <= 32768 */
#define WEIR_STATE_NAME_MAX       200            /* bytes of a state name */
#define WEIR_STATE_KEY_MAX        (1u << 20)     /* bytes of a key or map key */
#define WEIR_STATE_VALUE_MAX      (256u << 20)   /* bytes of a value or element */

/* ---- backends --------------------------------------------------------- */

/* Returns a new in-memory backend for key groups [kg_first, kg_last]
 * (0 <= kg_first <= kg_last <= WEIR_STATE_MAX_KEY_GROUP).
 * *out: returns new, free with weir_state_backend_destroy(). */
int  weir_state_backend_memory(int kg_first, int kg_last, weir_state_backend_t **out);

/* Opens the RocksDB backend of one subtask in directory dir (borrowed; the
 * path is copied). The directory is created (with its parents, mode 0700)
 * when missing and must then be dedicated to this backend: an existing
 * directory is accepted only when empty or when it holds a backend that this
 * function created before (a marker file says so), whose states, column
 * families and data are then found again. Anything else is refused with
 * WEIR_EEXIST, so weir_state_backend_drop() can never delete a directory
 * that was not ours. Writes skip RocksDB's write-ahead log: see
 * docs/state.md (a clean close keeps everything; after a crash the state is
 * restored from a checkpoint, never from the dead instance's directory).
 * err (may be NULL) gets a message on failure.
 * *out: returns new, close with weir_state_backend_destroy() or
 * weir_state_backend_drop(). */
int  weir_state_backend_rocksdb(const char *dir, int kg_first, int kg_last,
                                weir_state_backend_t **out, weir_err_t *err);

/* Closes b and frees it; its data stays (RocksDB: on disk, reopenable).
 * Takes ownership of b; NULL is a no-op. */
void weir_state_backend_destroy(weir_state_backend_t *b);

/* Closes b and deletes its data: the RocksDB backend removes its whole
 * directory (for a job that ended or was canceled). Takes ownership of b,
 * which is freed even when deleting fails (then WEIR_EIO). NULL: 0. */
int  weir_state_backend_drop(weir_state_backend_t *b);

/* The message of b's last failure ("" when none); borrowed, valid until the
 * next call on b. */
const char *weir_state_backend_error(const weir_state_backend_t *b);

/* Removes every entry of every state of b whose key group is in
 * [kg_first, kg_last] (any range within 0..WEIR_STATE_MAX_KEY_GROUP, also
 * outside the backend's own: after rescaling, the groups handed elsewhere).
 * RocksDB: one DeleteRange per column family. */
int  weir_state_drop_key_groups(weir_state_backend_t *b, int kg_first, int kg_last);

/* Drops expired entries now and reclaims space: a full compaction of every
 * column family (RocksDB) or a purge of every TTL state (memory). Slow; for
 * maintenance and tests, not for the record path. */
int  weir_state_backend_compact(weir_state_backend_t *b);

/* RocksDB tuning, process-wide. The block cache is one LRU cache shared by
 * every RocksDB backend of the process; the background threads are RocksDB's
 * default pools, shared as well; the rest is per backend. */
typedef struct weir_state_rocksdb_tuning {
    size_t write_cache_bytes;       /* per backend write-back cache; default 32 MiB, 0 off */
    size_t block_cache_bytes;       /* shared by all backends; default 128 MiB */
    size_t write_buffer_bytes;      /* one memtable (per column family); default 16 MiB */
    size_t db_write_buffer_bytes;   /* all memtables of one backend; default 64 MiB */
    int    background_jobs;         /* flush + compaction threads; default 4 */
    int    max_open_files;          /* per backend, -1 = unlimited; default 256 */
} weir_state_rocksdb_tuning_t;

/* Fills t with the defaults above. */
void weir_state_rocksdb_tuning_defaults(weir_state_rocksdb_tuning_t *t);

/* Sets the tuning (t borrowed, copied). Applies to backends opened later;
 * the shared cache's capacity changes at once. WEIR_EINVAL when a size is
 * below 1 MiB (the write cache: unless 0), background_jobs is not in 1..64
 * or max_open_files is not -1 or >= 16. */
int  weir_state_rocksdb_tune(const weir_state_rocksdb_tuning_t *t);

/* Test hook: the processing-time clock used for TTL, in microseconds since
 * the epoch. NULL restores the real clock (CLOCK_REALTIME). Process-wide;
 * also read by RocksDB's compaction threads. */
void weir_state_set_clock(int64_t (*now_us)(void));

/* ---- snapshots (checkpoints, savepoints, rescaling) -------------------- */

/* A snapshot is a directory (docs/state.md, "Snapshots"): a metadata file
 * WEIR_SNAPSHOT, written last, naming the backend kind, its key-group
 * range and every state with its kind and TTL; and the data, db/ (a
 * RocksDB checkpoint) or entries (the memory backend's entries, one
 * checksummed file). A directory without the metadata is no snapshot. */

/* Writes a snapshot of everything b holds into directory dir, which must
 * not exist yet (WEIR_EEXIST) and whose parent must (WEIR_ENOENT). A
 * consistent cut: call it between records, from the task thread. b is not
 * changed (RocksDB flushes its memtables, which changes files, not
 * contents). RocksDB: a RocksDB checkpoint (memtables flushed, SST files
 * hard-linked when dir is on the same filesystem, copied otherwise), so
 * the synchronous cost does not grow with the state's size and consecutive
 * snapshots share their SST files (the filesystem's link count is the
 * reference count: deleting one snapshot frees only the files no other
 * snapshot links). Memory: one file of the entries, written and fsync'ed
 * (cost proportional to the state). Expired TTL items may be left out.
 * *bytes (may be NULL) gets the snapshot's size: the sum of its files'
 * sizes, hard-linked SST files counted in full (what a restore reads, not
 * the new disk space it took). On failure dir is removed again. */
int  weir_state_snapshot(weir_state_backend_t *b, const char *dir, uint64_t *bytes,
                         weir_err_t *err);

/* Copies the snapshot src into a new self-contained directory dir (must
 * not exist; no hard links into src, every file fsync'ed): for savepoints,
 * which outlive the checkpoints whose files they would otherwise share. */
int  weir_state_snapshot_copy(const char *src, const char *dir, weir_err_t *err);

/* Fills b, which must be empty (no state holding an entry: WEIR_ESTATE),
 * with the entries of b's key groups found in the snapshots dirs[0..n):
 * each taken by a backend of either kind with any key-group range
 * (rescaling: several old ranges overlap the new one; entries of other key
 * groups are skipped, and snapshots whose ranges miss b's are not opened).
 * Two snapshots that both hold one of b's key groups are WEIR_EINVAL. States
 * keep their names, kinds and TTLs, items their write times (byte for
 * byte); items already expired now are left out. List elements restored
 * into RocksDB keep their order, and ones appended later come after them.
 * The snapshots are only read (RocksDB: opened read-only). A missing
 * snapshot is WEIR_ENOENT; one that is incomplete or damaged (metadata,
 * checksum, RocksDB files) WEIR_EPROTO or WEIR_EIO. On failure b may hold
 * part of the entries: drop it. */
int  weir_state_restore(weir_state_backend_t *b, const char *const *dirs, int n,
                        weir_err_t *err);

/* Opens the RocksDB backend in dir (which must not exist: WEIR_EEXIST; its
 * parents are created) restored from snapshots dirs[0..n): like
 * weir_state_backend_rocksdb() followed by weir_state_restore(), but when
 * the only snapshot holding key groups of [kg_first, kg_last] is a RocksDB
 * one covering the whole range, its SST files are hard-linked (copied
 * across filesystems) and its other files copied into dir, and entries
 * outside [kg_first, kg_last] are dropped with a range delete: restoring
 * at the same parallelism costs no more than the snapshot did. That path
 * keeps expired items (the compaction filter drops them later) and reads
 * no data block, so a damaged block shows up when read (WEIR_EIO), not
 * here. The restored backend and the snapshot stay independent (SST files
 * are immutable). On failure nothing is left in dir's place.
 * *out: returns new, as weir_state_backend_rocksdb(). */
int  weir_state_backend_rocksdb_restore(const char *dir, int kg_first, int kg_last,
                                        const char *const *dirs, int n,
                                        weir_state_backend_t **out, weir_err_t *err);

/* ---- states ----------------------------------------------------------- */

/* Each returns the state called name (borrowed, not empty, at most
 * WEIR_STATE_NAME_MAX bytes) of one kind, created on first use and found
 * again afterwards (RocksDB: also after a reopen). *out is borrowed from b
 * and lives as long as b. ttl_us >= 0, 0 = entries never expire.
 *
 * Asking for an existing name with another kind is WEIR_ETYPE, as is turning
 * TTL on or off for a state that holds data written the other way (the
 * stored layout differs); changing the TTL duration is fine and applies to
 * existing entries (their write time is kept). Operators namespace their
 * names themselves ("join.left"). */
int  weir_state_value(weir_state_backend_t *b, const char *name, weir_state_t **out);
int  weir_state_value_ttl(weir_state_backend_t *b, const char *name, int64_t ttl_us,
                          weir_state_t **out);
int  weir_state_list(weir_state_backend_t *b, const char *name, int64_t ttl_us,
                     weir_state_t **out);
int  weir_state_map(weir_state_backend_t *b, const char *name, int64_t ttl_us,
                    weir_state_t **out);

/* Every pointer below is borrowed for the call; returned pointers (callback
 * arguments) are valid during the callback only. A callback may read and
 * write other states, but must not write to the state being visited. */

/* -- value state. get: *found = 0/1; the value is appended to out (reset it
 * first). put overwrites. */
int  weir_state_get(weir_state_t *s, int kg, const void *key, size_t klen,
                    weir_buf_t *out, int *found);
int  weir_state_put(weir_state_t *s, int kg, const void *key, size_t klen,
                    const void *val, size_t vlen);

/* Clears the key in a state of any kind: its value, its whole list or its
 * whole map. Clearing a missing key is not an error. */
int  weir_state_del(weir_state_t *s, int kg, const void *key, size_t klen);

/* Number of live items: values (value state), elements (list state) or
 * map entries (map state); expired items are not counted. O(1) for the
 * memory backend without TTL, a full pass otherwise: for tests and
 * occasional metrics, not the record path. 0 when s is NULL or on error. */
size_t weir_state_count(const weir_state_t *s);

/* Visits every entry whose key group is in [kg_first, kg_last], in no
 * particular order: a value state gives each value, a list state each
 * element (the key's elements in insertion order). Stops early when cb
 * returns non-zero and returns that. A map state is WEIR_ETYPE: use
 * weir_state_map_scan(). */
typedef int (*weir_state_visit_cb)(void *arg, int kg, const void *key, size_t klen,
                                   const void *val, size_t vlen);
int  weir_state_scan(weir_state_t *s, int kg_first, int kg_last, weir_state_visit_cb cb, void *arg);

/* -- list state. add appends one element (a blind write in RocksDB). get
 * visits the key's live elements in insertion order; cb returns non-zero
 * to stop, and get then returns that value. clear is weir_state_del. */
typedef int (*weir_state_elem_cb)(void *arg, const void *val, size_t vlen);
int  weir_state_list_add(weir_state_t *s, int kg, const void *key, size_t klen,
                         const void *val, size_t vlen);
int  weir_state_list_get(weir_state_t *s, int kg, const void *key, size_t klen,
                         weir_state_elem_cb cb, void *arg);
int  weir_state_list_clear(weir_state_t *s, int kg, const void *key, size_t klen);

/* -- map state: for each key, a map from user map keys (ukey) to values.
 * get: *found = 0/1, the value appended to out. del of a missing map key is
 * not an error. iter visits the key's live entries in no particular order,
 * passing the map key as cb's key (and kg as cb's kg); non-zero from cb
 * stops and is returned. Clearing a key's whole map is weir_state_del. */
int  weir_state_map_put(weir_state_t *s, int kg, const void *key, size_t klen,
                        const void *ukey, size_t uklen, const void *val, size_t vlen);
int  weir_state_map_get(weir_state_t *s, int kg, const void *key, size_t klen,
                        const void *ukey, size_t uklen, weir_buf_t *out, int *found);
int  weir_state_map_del(weir_state_t *s, int kg, const void *key, size_t klen,
                        const void *ukey, size_t uklen);
int  weir_state_map_iter(weir_state_t *s, int kg, const void *key, size_t klen,
                         weir_state_visit_cb cb, void *arg);

/* Visits every map entry whose key group is in [kg_first, kg_last], with
 * its key and map key, in no particular order; non-zero from cb stops and
 * is returned. */
typedef int (*weir_state_map_visit_cb)(void *arg, int kg, const void *key, size_t klen,
                                       const void *ukey, size_t uklen,
                                       const void *val, size_t vlen);
int  weir_state_map_scan(weir_state_t *s, int kg_first, int kg_last,
                         weir_state_map_visit_cb cb, void *arg);

#endif
