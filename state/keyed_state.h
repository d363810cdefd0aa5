/* state/keyed_state.h -- keyed state of one subtask.
 *
 * A backend holds named states (Flink's ValueState / ListState / MapState
 * by name; RocksDB column families in the RocksDB backend). Every entry is
 * scoped to a key and its key group: the stored key is
 *   [key group: 2 bytes big-endian][user key bytes][map key bytes, map state]
 * so a key-group range can be scanned, dropped or handed over.
 * Keys and values are opaque bytes (operators store msgpack).
 *
 * This issue ships the in-memory backend; RocksDB comes behind the same API.
 * Not thread-safe: one backend per subtask, used by its task thread.
 */
#ifndef WEIR_STATE_KEYED_STATE_H
#define WEIR_STATE_KEYED_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "../runtime/core/buf.h"

typedef struct weir_state_backend weir_state_backend_t;
typedef struct weir_state weir_state_t;

/* Returns a new in-memory backend for key groups [kg_first, kg_last]. */
int  weir_state_backend_memory(int kg_first, int kg_last, weir_state_backend_t **out);
void weir_state_backend_destroy(weir_state_backend_t *b);   /* NULL is a no-op */

/* The value state called name, created on first use (borrowed from b). */
int  weir_state_value(weir_state_backend_t *b, const char *name, weir_state_t **out);

/* Scoped by (kg, key). get: *found = 0/1, value appended to out (reset it
 * first). Returned pointers never escape a call. */
int  weir_state_get(weir_state_t *s, int kg, const void *key, size_t klen,
                    weir_buf_t *out, int *found);
int  weir_state_put(weir_state_t *s, int kg, const void *key, size_t klen,
                    const void *val, size_t vlen);
int  weir_state_del(weir_state_t *s, int kg, const void *key, size_t klen);
/* Number of entries (tests, metrics). */
size_t weir_state_count(const weir_state_t *s);

/* Visits every entry of s whose key group is in [kg_first, kg_last], in no
 * particular order; stops early when cb returns non-zero (and returns that). */
typedef int (*weir_state_visit_cb)(void *arg, int kg, const void *key, size_t klen,
                                   const void *val, size_t vlen);
int  weir_state_scan(weir_state_t *s, int kg_first, int kg_last, weir_state_visit_cb cb, void *arg);

#endif
