/* runtime/core/json_row.h -- rows to and from JSON objects, on the hot path.
 *
 * Parsing uses jsmn against a plan-time field table: no allocation per
 * record, field names matched by length + memcmp (a small hash when a schema
 * is wide). Strings are unescaped into the target batch's arena. Writing
 * appends to a reusable weir_buf_t.
 *
 * Field mapping: JSON key == schema field name. A JSON number goes to int
 * (must be integral and in range), double (any number) or timestamp (epoch
 * milliseconds when a number; a string in "YYYY-MM-DD HH:MM:SS.ffffff" or ISO
 * 8601 form otherwise). bool <- true/false. string <- JSON string (and, for
 * convenience, a number's text is NOT accepted: a type error). bytes <- JSON
 * string (raw). Missing field or JSON null: NULL when the field is nullable,
 * else an error. Unknown JSON keys are ignored. Timestamps are written in the
 * "YYYY-MM-DD HH:MM:SS.ffffff" form, doubles with the shortest text that
 * round-trips (%.17g trimmed), 2-decimal money stays as it was read when it
 * round-trips.
 */
#ifndef WEIR_CORE_JSON_ROW_H
#define WEIR_CORE_JSON_ROW_H

#include "batch.h"
#include "buf.h"
#include "error.h"

typedef struct weir_json_reader weir_json_reader_t;

/* Returns a new reader for schema (borrowed; must outlive the reader). */
int  weir_json_reader_create(const weir_schema_t *schema, weir_json_reader_t **out);
void weir_json_reader_destroy(weir_json_reader_t *r);   /* NULL is a no-op */

/* Parses one JSON object text and appends it as a row to b (schema must be
 * the reader's). On bad input returns WEIR_EPARSE or WEIR_ETYPE with a reason
 * in err ("field 'amount': expected double, got string") and leaves b as it
 * was. */
int weir_json_reader_parse(weir_json_reader_t *r, const char *text, size_t len,
                           weir_batch_t *b, weir_err_t *err);

/* Appends row (of schema) as one JSON object, no trailing newline. */
int weir_json_write_row(const weir_schema_t *schema, const weir_value_t *row, weir_buf_t *out);
/* Appends one value as JSON. */
int weir_json_write_value(const weir_value_t *v, weir_buf_t *out);

#endif
