/* operators/registry.h -- the kinds this library registers, role-aware lookup,
 * and the small helpers the kinds share.
 *
 * operator.h's weir_op_kind_find() looks a kind up by name only, but one name
 * may name two kinds in different roles ("file" is a source and a sink), so
 * weir_op_kind_find_role() takes the job file section as well.
 */
#ifndef WEIR_OPERATORS_REGISTRY_H
#define WEIR_OPERATORS_REGISTRY_H

#include <stdint.h>

#include "operator.h"

/* One extern per kind; registry.c lists them all. */
extern const weir_op_kind_t weir_op_datagen;
extern const weir_op_kind_t weir_op_file_source;
extern const weir_op_kind_t weir_op_file_sink;
extern const weir_op_kind_t weir_op_print;
extern const weir_op_kind_t weir_op_filter;
extern const weir_op_kind_t weir_op_map;
extern const weir_op_kind_t weir_op_project;
extern const weir_op_kind_t weir_op_count;
extern const weir_op_kind_t weir_op_sum;
extern const weir_op_kind_t weir_op_join;
extern const weir_op_kind_t weir_op_chaos;
extern const weir_op_kind_t weir_op_kafka_source;
extern const weir_op_kind_t weir_op_kafka_sink;
extern const weir_op_kind_t weir_op_pg_sink;

/* The kind named name that may appear in role (WEIR_ROLE_* bits; any of
 * them), or NULL. */
const weir_op_kind_t *weir_op_kind_find_role(const char *name, unsigned role);

/* ---- shared by the kinds (operators/keys.c) --------------------------- */

/* Index of field 'name' in schema, or sets err at params' 'key' to
 * "unknown field 'x' (did you mean 'y'?); fields are: a, b" and returns
 * WEIR_EINVAL. p and key are borrowed; key may be NULL (the node itself). */
int weir__op_field(const weir_params_t *p, const char *key, const weir_schema_t *schema,
                   const char *name, int *idx, weir_err_t *err);

/* Reports an expression error (perr from weir_expr_parse, 'off' its byte
 * offset) at the token inside params' 'key', dropping the expression
 * parser's own "column N: " since the location says it. Returns code. */
int weir__op_expr_error(const weir_params_t *p, const char *key, size_t off, int code,
                        const weir_err_t *perr, weir_err_t *err);

/* Lines a file source skipped because they did not parse (its dead-letter
 * count until dead-letter outputs exist). op must be an open file source. */
uint64_t weir_op_file_source_bad_lines(const weir_op_t *op);
/* Records an open kafka source sent to its dead-letter output, and records
 * the broker deleted before the source read them (offset out of range). */
uint64_t weir_op_kafka_source_dead_lettered(const weir_op_t *op);
uint64_t weir_op_kafka_source_skipped(const weir_op_t *op);

#endif
