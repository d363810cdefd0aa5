/* runtime/core/batch.c -- row-major batches with an arena for strings. */
#include "batch.h"

#include <stdlib.h>
#include <string.h>

#include "error.h"

weir_batch_t *
weir_batch_new(weir_schema_t *schema, int cap)
{
    weir_batch_t *b = calloc(1, sizeof(*b));

    if (b == NULL)
        return NULL;
    b->schema = weir_schema_ref(schema);
    b->nfields = schema->nfields;
    b->cap = cap > 0 ? cap : WEIR_BATCH_ROWS;
    b->vals = calloc((size_t)b->cap * (size_t)(b->nfields ? b->nfields : 1), sizeof(weir_value_t));
    if (b->vals == NULL) {
        weir_schema_unref(b->schema);
        free(b);
        return NULL;
    }
    weir_arena_init(&b->arena, 32768);
    return b;
}

void
weir_batch_destroy(weir_batch_t *b)
{
    if (b == NULL)
        return;
    weir_arena_free(&b->arena);
    free(b->vals);
    weir_schema_unref(b->schema);
    free(b);
}

void
weir_batch_clear(weir_batch_t *b)
{
    b->nrows = 0;
    weir_arena_reset(&b->arena);
}

weir_value_t *
weir_batch_append(weir_batch_t *b)
{
    if (b->nrows == b->cap) {
        int cap = b->cap * 2;
        weir_value_t *v = realloc(b->vals, (size_t)cap * (size_t)(b->nfields ? b->nfields : 1) *
                                               sizeof(weir_value_t));
        if (v == NULL)
            return NULL;
        b->vals = v;
        b->cap = cap;
    }
    return weir_batch_row(b, b->nrows++);
}

int
weir_batch_own(weir_batch_t *b, weir_value_t *v)
{
    char *p;

    if (v->null || (v->type != WEIR_T_STRING && v->type != WEIR_T_BYTES))
        return 0;
    p = weir_arena_strndup(&b->arena, v->u.s ? v->u.s : "", v->len);
    if (p == NULL)
        return WEIR_ENOMEM;
    v->u.s = p;
    return 0;
}

int
weir_batch_append_copy(weir_batch_t *b, const weir_value_t *row)
{
    size_t nf = (size_t)b->nfields, cells = (size_t)b->cap * nf;
    ptrdiff_t self = -1;
    weir_value_t *dst;

    if (nf > 0 && (uintptr_t)row >= (uintptr_t)b->vals && (uintptr_t)row < (uintptr_t)(b->vals + cells))
        self = row - b->vals;
    dst = weir_batch_append(b);
    if (dst == NULL)
        return WEIR_ENOMEM;
    if (self >= 0)
        row = b->vals + self;
    memcpy(dst, row, (size_t)b->nfields * sizeof(*dst));
    for (int i = 0; i < b->nfields; i++) {
        if (weir_batch_own(b, &dst[i]) != 0) {
            b->nrows--;
            return WEIR_ENOMEM;
        }
    }
    return 0;
}

size_t
weir_batch_bytes(const weir_batch_t *b)
{
    return (size_t)b->nrows * (size_t)b->nfields * sizeof(weir_value_t) +
           weir_arena_used(&b->arena);
}
