/* runtime/core/arena.h -- a bump allocator freed all at once.
 *
 * A batch owns one arena for the bytes of its strings; reset keeps the first
 * chunk so a reused batch allocates nothing in the steady state.
 */
#ifndef WEIR_CORE_ARENA_H
#define WEIR_CORE_ARENA_H

#include <stddef.h>

typedef struct weir_arena_chunk weir_arena_chunk_t;

typedef struct weir_arena {
    weir_arena_chunk_t *head;     /* current chunk, newest first */
    size_t              chunk_size;
} weir_arena_t;

void  weir_arena_init(weir_arena_t *a, size_t chunk_size);
/* Returns 'n' bytes aligned to 8, or NULL when out of memory. Valid until
 * reset or free. */
void *weir_arena_alloc(weir_arena_t *a, size_t n);
/* Copies n bytes and a terminating NUL; returns the copy or NULL. */
char *weir_arena_strndup(weir_arena_t *a, const char *s, size_t n);
/* Frees all chunks but the largest-capacity one, which is emptied. */
void  weir_arena_reset(weir_arena_t *a);
void  weir_arena_free(weir_arena_t *a);
/* Bytes handed out since the last reset. */
size_t weir_arena_used(const weir_arena_t *a);

#endif
