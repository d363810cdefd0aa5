/* runtime/core/arena.c -- bump allocation in chunks, freed all at once. */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

struct weir_arena_chunk {
    weir_arena_chunk_t *next;
    size_t              cap;
    size_t              used;
    char                data[];
};

void
weir_arena_init(weir_arena_t *a, size_t chunk_size)
{
    a->head = NULL;
    a->chunk_size = chunk_size ? chunk_size : 16384;
}

void *
weir_arena_alloc(weir_arena_t *a, size_t n)
{
    weir_arena_chunk_t *c = a->head;
    size_t cap;

    n = (n + 7) & ~(size_t)7;
    if (c == NULL || c->cap - c->used < n) {
        cap = a->chunk_size;
        if (c != NULL && c->cap >= cap)
            cap = c->cap * 2;            /* grow geometrically while busy */
        while (cap < n)
            cap *= 2;
        c = malloc(sizeof(*c) + cap);
        if (c == NULL)
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    c->used += n;
    return c->data + c->used - n;
}

char *
weir_arena_strndup(weir_arena_t *a, const char *s, size_t n)
{
    char *p = weir_arena_alloc(a, n + 1);

    if (p == NULL)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void
weir_arena_reset(weir_arena_t *a)
{
    weir_arena_chunk_t *c, *next, *keep = NULL;

    for (c = a->head; c != NULL; c = c->next)
        if (keep == NULL || c->cap > keep->cap)
            keep = c;
    for (c = a->head; c != NULL; c = next) {
        next = c->next;
        if (c != keep)
            free(c);
    }
    if (keep != NULL) {
        keep->used = 0;
        keep->next = NULL;
    }
    a->head = keep;
}

void
weir_arena_free(weir_arena_t *a)
{
    weir_arena_chunk_t *c, *next;

    for (c = a->head; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    a->head = NULL;
}

size_t
weir_arena_used(const weir_arena_t *a)
{
    size_t n = 0;

    for (const weir_arena_chunk_t *c = a->head; c != NULL; c = c->next)
        n += c->used;
    return n;
}
