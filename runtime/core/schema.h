/* runtime/core/schema.h -- field names and types of a stream.
 *
 * Schemas are derived at plan time; operators resolve names to indexes then
 * and address fields by index per record. A schema is immutable once built
 * and shared by pointer; it is reference counted so plans can share them.
 */
#ifndef WEIR_CORE_SCHEMA_H
#define WEIR_CORE_SCHEMA_H

#include "value.h"

typedef struct weir_field {
    char       *name;
    weir_type_t type;
    bool        nullable;
} weir_field_t;

typedef struct weir_schema {
    int          refs;
    int          nfields;
    weir_field_t fields[];
} weir_schema_t;

/* Returns a new schema with room for n fields (names NULL), refs = 1. */
weir_schema_t *weir_schema_new(int nfields);
/* Sets field i; name is copied. Returns 0 or WEIR_ENOMEM. */
int  weir_schema_set(weir_schema_t *s, int i, const char *name, weir_type_t t, bool nullable);
weir_schema_t *weir_schema_ref(weir_schema_t *s);
void weir_schema_unref(weir_schema_t *s);          /* NULL is a no-op */
/* Index of the field named 'name', or -1. */
int  weir_schema_find(const weir_schema_t *s, const char *name);
/* Same names, types and nullability. */
bool weir_schema_equal(const weir_schema_t *a, const weir_schema_t *b);
/* "{name: type, other: type?}" into buf; returns buf. */
const char *weir_schema_describe(const weir_schema_t *s, char *buf, size_t cap);

#endif
