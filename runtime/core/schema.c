/* runtime/core/schema.c -- immutable, reference-counted schemas. */
#include "schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

weir_schema_t *
weir_schema_new(int nfields)
{
    weir_schema_t *s = calloc(1, sizeof(*s) + (size_t)nfields * sizeof(weir_field_t));

    if (s == NULL)
        return NULL;
    s->refs = 1;
    s->nfields = nfields;
    return s;
}

int
weir_schema_set(weir_schema_t *s, int i, const char *name, weir_type_t t, bool nullable)
{
    char *copy = strdup(name);

    if (copy == NULL)
        return WEIR_ENOMEM;
    free(s->fields[i].name);
    s->fields[i].name = copy;
    s->fields[i].type = t;
    s->fields[i].nullable = nullable;
    return 0;
}

weir_schema_t *
weir_schema_ref(weir_schema_t *s)
{
    if (s != NULL)
        __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
    return s;
}

void
weir_schema_unref(weir_schema_t *s)
{
    if (s == NULL || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    for (int i = 0; i < s->nfields; i++)
        free(s->fields[i].name);
    free(s);
}

int
weir_schema_find(const weir_schema_t *s, const char *name)
{
    for (int i = 0; i < s->nfields; i++)
        if (s->fields[i].name != NULL && strcmp(s->fields[i].name, name) == 0)
            return i;
    return -1;
}

bool
weir_schema_equal(const weir_schema_t *a, const weir_schema_t *b)
{
    if (a->nfields != b->nfields)
        return false;
    for (int i = 0; i < a->nfields; i++)
        if (a->fields[i].type != b->fields[i].type ||
            a->fields[i].nullable != b->fields[i].nullable ||
            (a->fields[i].name == NULL) != (b->fields[i].name == NULL) ||
            (a->fields[i].name != NULL && strcmp(a->fields[i].name, b->fields[i].name) != 0))
            return false;
    return true;
}

const char *
weir_schema_describe(const weir_schema_t *s, char *buf, size_t cap)
{
    size_t n = 0;

    if (cap == 0)
        return buf;
    n += (size_t)snprintf(buf + n, cap - n, "{");
    for (int i = 0; i < s->nfields && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s: %s%s", i ? ", " : "",
                              s->fields[i].name, weir_type_name(s->fields[i].type),
                              s->fields[i].nullable ? "?" : "");
    if (n < cap)
        snprintf(buf + n, cap - n, "}");
    return buf;
}
