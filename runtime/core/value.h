/* runtime/core/value.h -- typed values, the cells of a row.
 *
 * A value is 16 bytes and never owns memory: a string or bytes value points
 * into an arena (usually its batch's) or into a buffer the caller keeps alive.
 * Timestamps are microseconds since the Unix epoch (UTC): the seeds' dates
 * carry microseconds, and int64 microseconds cover +-292,000 years.
 */
#ifndef WEIR_CORE_VALUE_H
#define WEIR_CORE_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    WEIR_T_NULL = 0,      /* only the type of the literal `null` */
    WEIR_T_INT,           /* int64 */
    WEIR_T_DOUBLE,
    WEIR_T_BOOL,
    WEIR_T_STRING,        /* UTF-8, not NUL-terminated in general */
    WEIR_T_BYTES,
    WEIR_T_TIMESTAMP,     /* int64 microseconds since epoch, UTC */
} weir_type_t;

typedef struct weir_value {
    union {
        int64_t     i;    /* INT, TIMESTAMP */
        double      d;
        bool        b;
        const char *s;    /* STRING, BYTES: borrowed */
    } u;
    uint32_t len;         /* STRING, BYTES */
    uint8_t  type;        /* weir_type_t */
    uint8_t  null;        /* 1 when SQL NULL (type still says what it would be) */
} weir_value_t;

/* "int", "double", "bool", "string", "bytes", "timestamp"; NULL for unknown. */
const char *weir_type_name(weir_type_t t);
/* Parses a type name (also accepts "long"/"bigint", "float", "boolean",
 * "varchar"); returns -1 when unknown. */
int weir_type_parse(const char *name);

static inline weir_value_t weir_value_null(weir_type_t t)
{ weir_value_t v = { .type = (uint8_t)t, .null = 1 }; return v; }
static inline weir_value_t weir_value_int(int64_t i)
{ weir_value_t v = { .u.i = i, .type = WEIR_T_INT }; return v; }
static inline weir_value_t weir_value_double(double d)
{ weir_value_t v = { .u.d = d, .type = WEIR_T_DOUBLE }; return v; }
static inline weir_value_t weir_value_bool(bool b)
{ weir_value_t v = { .u.b = b, .type = WEIR_T_BOOL }; return v; }
static inline weir_value_t weir_value_ts(int64_t us)
{ weir_value_t v = { .u.i = us, .type = WEIR_T_TIMESTAMP }; return v; }
static inline weir_value_t weir_value_str(const char *s, uint32_t len)
{ weir_value_t v = { .u.s = s, .len = len, .type = WEIR_T_STRING }; return v; }
static inline weir_value_t weir_value_bytes(const char *s, uint32_t len)
{ weir_value_t v = { .u.s = s, .len = len, .type = WEIR_T_BYTES }; return v; }

/* Equality of non-null values of the same type (int/double compare
 * numerically). NULL equals nothing, not even NULL. */
bool weir_value_equal(const weir_value_t *a, const weir_value_t *b);
/* Total order for sorting: NULL first, then by type, then by value. */
int  weir_value_compare(const weir_value_t *a, const weir_value_t *b);
/* 64-bit hash (xxh3) of a value, seeded; equal values hash equal
 * (an int and the double of the same integral value hash alike). */
uint64_t weir_value_hash(const weir_value_t *v, uint64_t seed);

/* Timestamp text. Parses "YYYY-MM-DD HH:MM:SS[.ffffff]" and ISO 8601
 * ("YYYY-MM-DDTHH:MM:SS[.f*][Z|+hh:mm]"); returns 0 or WEIR_EPARSE. */
int weir_ts_parse(const char *s, size_t len, int64_t *out_us);
/* Writes "YYYY-MM-DD HH:MM:SS.ffffff" (26 chars + NUL) into out[32]. */
void weir_ts_format(int64_t us, char out[32]);
/* Wall clock, microseconds since epoch. */
int64_t weir_now_us(void);
/* Monotonic clock, nanoseconds. */
uint64_t weir_mono_ns(void);

#endif
