/* runtime/core/batch.h -- rows in batches, the unit of work and transfer.
 *
 * A batch holds nrows rows of one schema, stored row-major as nrows * nfields
 * values. The bytes of string values live in the batch's arena. A batch is
 * reused: weir_batch_clear() keeps the memory, so steady-state processing
 * allocates nothing per record.
 *
 * Ownership: a batch owns its vals array and arena; it borrows its schema
 * (holds a reference).
 */
#ifndef WEIR_CORE_BATCH_H
#define WEIR_CORE_BATCH_H

#include "arena.h"
#include "schema.h"

#define WEIR_BATCH_ROWS 1024            /* default target rows per batch */

typedef struct weir_batch {
    weir_schema_t *schema;              /* holds a reference */
    int            nfields;
    int            nrows;
    int            cap;                 /* rows that fit in vals */
    weir_value_t  *vals;                /* nrows * nfields */
    weir_arena_t   arena;               /* string bytes */
} weir_batch_t;

/* Returns a new empty batch for schema, room for cap rows (grows as needed). */
weir_batch_t *weir_batch_new(weir_schema_t *schema, int cap);
void weir_batch_destroy(weir_batch_t *b);   /* NULL is a no-op */
void weir_batch_clear(weir_batch_t *b);

static inline weir_value_t *weir_batch_row(const weir_batch_t *b, int r)
{ return b->vals + (size_t)r * (size_t)b->nfields; }

/* Appends one uninitialized row and returns it (NULL on ENOMEM). Values
 * written into it must point into memory that outlives the batch's use:
 * use weir_batch_copy_str() for strings. */
weir_value_t *weir_batch_append(weir_batch_t *b);
/* Appends a copy of a row of the same schema (strings copied into this
 * batch's arena). Returns 0 or WEIR_ENOMEM. */
int weir_batch_append_copy(weir_batch_t *b, const weir_value_t *row);
/* Copies string/bytes bytes of *v into the arena and repoints v. */
int weir_batch_own(weir_batch_t *b, weir_value_t *v);
/* Drops the last row (after a failed fill). */
static inline void weir_batch_pop(weir_batch_t *b) { if (b->nrows > 0) b->nrows--; }
/* Bytes of string data plus value cells: a size estimate for flushing. */
size_t weir_batch_bytes(const weir_batch_t *b);

#endif
