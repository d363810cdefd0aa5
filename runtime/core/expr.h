/* runtime/core/expr.h -- the expression language of filter, map and joins.
 *
 *   amount > 1000 and merchant_type == "online"
 *   floor_time(ts, '1m')      lower(name)      abs(x - y) / 2
 *   email is not null         name starts_with "acc"
 *
 * An expression is parsed once against one or more input schemas, with every
 * field reference resolved to (input, index) and every operator's type
 * checked; evaluation then walks a small tree over rows by index and
 * allocates nothing except string results, which go to a caller's arena.
 *
 * Grammar (lowest precedence first):
 *   expr    := or
 *   or      := and ("or" and)*
 *   and     := not ("and" not)*
 *   not     := "not" not | cmp
 *   cmp     := add (("=="|"="|"!="|"<>"|"<"|"<="|">"|">=") add
 *                   | "is" ["not"] "null" | "starts_with" add | "in" "(" expr,* ")")?
 *   add     := mul (("+"|"-"|"||") mul)*        ("||" concatenates strings)
 *   mul     := unary (("*"|"/"|"%") unary)*
 *   unary   := "-" unary | primary
 *   primary := INT | DOUBLE | STRING ('..' or "..") | true | false | null
 *            | IDENT ["." IDENT] | IDENT "(" args ")" | "(" expr ")"
 * A qualified name "t.amount" picks the input whose alias is "t" (joins);
 * a bare name is looked up in every input and must be unambiguous.
 * Functions: lower, upper, length, abs, floor, ceil, round, coalesce,
 * concat, substr(s, start[, len]) (1-based), floor_time(ts, 'N{us,ms,s,m,h,d}'),
 * to_timestamp(string), now(), int(x), double(x), string(x), if(c, a, b).
 *
 * Semantics: SQL three-valued logic. Arithmetic or comparison with a NULL
 * operand is NULL; `and`/`or` follow Kleene logic (false and NULL = false);
 * a filter keeps a row only when the predicate is true (not NULL). Integer
 * division or modulo by zero yields NULL; + - * wrap on overflow (two's
 * complement, like Flink's Java longs). int op double -> double. Comparing a string
 * with a timestamp parses nothing at run time: it is a type error at plan time
 * unless the string is a literal, which is converted then.
 */
#ifndef WEIR_CORE_EXPR_H
#define WEIR_CORE_EXPR_H

#include "arena.h"
#include "error.h"
#include "schema.h"

typedef struct weir_expr weir_expr_t;

/* One named input of an expression (a join has two). */
typedef struct weir_expr_input {
    const char          *alias;     /* may be NULL (single-input operators) */
    const weir_schema_t *schema;    /* borrowed for the parse */
} weir_expr_input_t;

/* Parses src against the inputs. On error returns WEIR_EPARSE or WEIR_ETYPE
 * with err->msg = "column N: reason" where N is the 1-based column in src of
 * the offending token, and *err_offset (if non-NULL) = its 0-based byte offset.
 * On success *out is new (free with weir_expr_destroy). */
int weir_expr_parse(const char *src, const weir_expr_input_t *inputs, int ninputs,
                    weir_expr_t **out, size_t *err_offset, weir_err_t *err);
void weir_expr_destroy(weir_expr_t *e);          /* NULL is a no-op */

/* Result type decided at parse time (WEIR_T_NULL only for the literal null). */
weir_type_t weir_expr_type(const weir_expr_t *e);
/* True when the result can be NULL. */
bool weir_expr_nullable(const weir_expr_t *e);
/* When the expression is a bare field reference, returns its field name
 * (borrowed), else NULL. Map uses it to name output fields by default. */
const char *weir_expr_field_name(const weir_expr_t *e);

/* Evaluates over rows[i] = the current row of input i (nfields values each,
 * by the schemas given at parse time). String results are either borrowed
 * from the rows or written into 'arena' (which may be NULL only when the
 * expression builds no new string). Returns 0 or a negative code on an
 * internal error (never for data: bad data yields NULL). */
int weir_expr_eval(const weir_expr_t *e, const weir_value_t *const *rows,
                   weir_arena_t *arena, weir_value_t *out);

/* Convenience for predicates: 1 when the result is true, 0 for false/NULL. */
int weir_expr_eval_bool(const weir_expr_t *e, const weir_value_t *const *rows);

/* Parses a duration such as "500ms", "1m", "2h", "30s", "1d", "100us" (a
 * bare number is milliseconds) into microseconds; returns 0, WEIR_EPARSE for
 * text that is not a duration, or WEIR_ERANGE for one beyond int64
 * microseconds (so job files can say "out of range"). Shared with job files. */
int weir_duration_parse(const char *s, int64_t *out_us);

#endif
