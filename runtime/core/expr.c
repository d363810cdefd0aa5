/* runtime/core/expr.c -- parse once, evaluate by index.
 *
 * A recursive-descent parser over a small lexer builds a tree whose nodes
 * carry their static type and nullability, with field references already
 * resolved to (input, index) and constant conversions done (a timestamp
 * literal compared with a timestamp field is parsed here, not per row).
 * Type errors are parse errors, reported with the column of the token that
 * caused them. Evaluation walks the tree over the current rows; only string
 * results are allocated, in the caller's arena.
 *
 * NULL follows SQL: an operator with a NULL operand yields NULL, except
 * `and`/`or` (Kleene logic), `is [not] null`, `coalesce` and `if`.
 * Integer + - * (and abs, unary minus, floor_time at the edge) wrap on
 * overflow like Flink's Java longs, computed without C undefined behaviour;
 * integer division or modulo by zero yields NULL.
 *
 * Source text can come over HTTP, so the parser bounds its recursion and
 * the tree's depth (evaluation and destruction recurse over the tree): too
 * deep is a parse error with a column, never a blown stack. A predicate
 * evaluated with eval_bool, which has no arena parameter, builds its
 * strings in a per-thread scratch arena emptied after each call.
 */
#include "expr.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Limits that keep hostile input (job files come over HTTP) from exhausting
 * the stack: parser recursion (parentheses, unary chains) and tree depth
 * (which bounds the recursion of eval and destroy, e.g. 1+1+1+...). */
#define EXPR_MAX_NESTING 128
#define EXPR_MAX_DEPTH   256

/* ---- tree --------------------------------------------------------------- */

enum {
    N_LIT, N_FIELD, N_NEG, N_NOT, N_AND, N_OR, N_CMP, N_ARITH, N_CONCAT,
    N_ISNULL, N_ISNOTNULL, N_STARTS, N_IN, N_CALL,
};

enum { OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE };          /* comparisons */
enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD };            /* arithmetic */

enum {
    F_LOWER, F_UPPER, F_LENGTH, F_ABS, F_FLOOR, F_CEIL, F_ROUND, F_COALESCE, F_CONCAT,
    F_SUBSTR, F_FLOOR_TIME, F_TO_TIMESTAMP, F_NOW, F_INT, F_DOUBLE, F_STRING, F_IF,
};

static const struct {
    const char *name;
    int         min, max;
} funcs[] = {
    [F_LOWER] = { "lower", 1, 1 },       [F_UPPER] = { "upper", 1, 1 },
    [F_LENGTH] = { "length", 1, 1 },     [F_ABS] = { "abs", 1, 1 },
    [F_FLOOR] = { "floor", 1, 1 },       [F_CEIL] = { "ceil", 1, 1 },
    [F_ROUND] = { "round", 1, 1 },       [F_COALESCE] = { "coalesce", 1, 16 },
    [F_CONCAT] = { "concat", 1, 16 },    [F_SUBSTR] = { "substr", 2, 3 },
    [F_FLOOR_TIME] = { "floor_time", 2, 2 }, [F_TO_TIMESTAMP] = { "to_timestamp", 1, 1 },
    [F_NOW] = { "now", 0, 0 },           [F_INT] = { "int", 1, 1 },
    [F_DOUBLE] = { "double", 1, 1 },     [F_STRING] = { "string", 1, 1 },
    [F_IF] = { "if", 3, 3 },
};
#define NFUNCS ((int)(sizeof(funcs) / sizeof(funcs[0])))

struct weir_expr {
    int           kind;
    int           op;             /* OP_* or F_* */
    weir_type_t   type;
    bool          nullable;
    weir_value_t  lit;            /* N_LIT; strings point at str */
    char         *str;            /* owned literal bytes, or the field's name */
    int           input, index;   /* N_FIELD */
    int64_t       unit;           /* floor_time granularity, microseconds */
    int           depth;          /* 1 + the deepest argument */
    bool          builds_str;     /* somewhere below, a string is built (needs an arena) */
    int           nargs;
    weir_expr_t **args;
};

void
weir_expr_destroy(weir_expr_t *e)
{
    if (e == NULL)
        return;
    for (int i = 0; i < e->nargs; i++)
        weir_expr_destroy(e->args[i]);
    free(e->args);
    free(e->str);
    free(e);
}

weir_type_t weir_expr_type(const weir_expr_t *e) { return e->type; }
bool weir_expr_nullable(const weir_expr_t *e) { return e->nullable; }

const char *
weir_expr_field_name(const weir_expr_t *e)
{
    return e->kind == N_FIELD ? e->str : NULL;
}

/* ---- lexer -------------------------------------------------------------- */

enum {
    T_END, T_INT, T_DOUBLE, T_STRING, T_IDENT, T_LP, T_RP, T_COMMA, T_DOT,
    T_EQ, T_NE, T_LT, T_LE, T_GT, T_GE, T_PLUS, T_MINUS, T_STAR, T_SLASH, T_PCT, T_CONCAT,
};

typedef struct {
    int     t;
    size_t  off, len;        /* in src */
    int64_t i;
    double  d;
    bool    int_min;         /* T_INT 9223372036854775808: valid only after '-' */
} tok_t;

typedef struct {
    const char              *src;
    size_t                   pos;
    tok_t                    tok;       /* current */
    const weir_expr_input_t *inputs;
    int                      ninputs;
    weir_err_t              *err;
    size_t                   err_off;
    int                      code;      /* of the first failure (err may be NULL) */
    int                      nesting;   /* current parser recursion */
    bool                     failed;
} parser_t;

static int
fail_at(parser_t *p, size_t off, int code, const char *fmt, ...)
{
    char msg[WEIR_ERR_MSG_MAX];
    va_list ap;

    if (p->failed)
        return code;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    p->failed = true;
    p->err_off = off;
    p->code = code;
    weir_err_set(p->err, code, "column %zu: %s", off + 1, msg);
    return code;
}

static int
lex(parser_t *p)
{
    const char *s = p->src;
    size_t i = p->pos;
    tok_t *t = &p->tok;

    while (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')
        i++;
    memset(t, 0, sizeof(*t));
    t->off = i;
    if (s[i] == '\0') {
        t->t = T_END;
    } else if (isdigit((unsigned char)s[i])) {
        size_t j = i;
        bool dbl = false;
        while (isdigit((unsigned char)s[j]))
            j++;
        if (s[j] == '.' && isdigit((unsigned char)s[j + 1])) {
            dbl = true;
            j++;
            while (isdigit((unsigned char)s[j]))
                j++;
        }
        if (s[j] == 'e' || s[j] == 'E') {
            size_t k = j + 1;
            if (s[k] == '+' || s[k] == '-')
                k++;
            if (isdigit((unsigned char)s[k])) {
                dbl = true;
                j = k;
                while (isdigit((unsigned char)s[j]))
                    j++;
            }
        }
        if (isalpha((unsigned char)s[j]) || s[j] == '_')
            return fail_at(p, i, WEIR_EPARSE, "malformed number");
        errno = 0;
        if (dbl) {
            t->t = T_DOUBLE;
            t->d = strtod(s + i, NULL);
        } else {
            t->t = T_INT;
            t->i = strtoll(s + i, NULL, 10);
            if (errno == ERANGE) {
                /* the magnitude of INT64_MIN is out of range on its own but
                 * valid after a unary minus (checked by parse_unary) */
                if (j - i != 19 || strncmp(s + i, "9223372036854775808", 19) != 0)
                    return fail_at(p, i, WEIR_EPARSE, "integer literal out of range");
                t->i = INT64_MIN;
                t->int_min = true;
            }
        }
        i = j;
    } else if (isalpha((unsigned char)s[i]) || s[i] == '_') {
        t->t = T_IDENT;
        while (isalnum((unsigned char)s[i]) || s[i] == '_')
            i++;
    } else if (s[i] == '\'' || s[i] == '"') {
        char q = s[i++];
        t->t = T_STRING;
        while (s[i] != q) {
            if (s[i] == '\0')
                return fail_at(p, t->off, WEIR_EPARSE, "unterminated string");
            if (s[i] == '\\' && s[i + 1] != '\0')
                i++;
            i++;
        }
        i++;
    } else {
        static const struct { const char *s; int t; } ops[] = {
            { "==", T_EQ }, { "!=", T_NE }, { "<>", T_NE }, { "<=", T_LE }, { ">=", T_GE },
            { "||", T_CONCAT }, { "=", T_EQ }, { "<", T_LT }, { ">", T_GT }, { "+", T_PLUS },
            { "-", T_MINUS }, { "*", T_STAR }, { "/", T_SLASH }, { "%", T_PCT }, { "(", T_LP },
            { ")", T_RP }, { ",", T_COMMA }, { ".", T_DOT },
        };
        size_t k;
        for (k = 0; k < sizeof(ops) / sizeof(ops[0]); k++) {
            size_t n = strlen(ops[k].s);
            if (strncmp(s + i, ops[k].s, n) == 0) {
                t->t = ops[k].t;
                i += n;
                break;
            }
        }
        if (k == sizeof(ops) / sizeof(ops[0]))
            return fail_at(p, i, WEIR_EPARSE, "unexpected character '%c'", s[i]);
    }
    t->len = i - t->off;
    p->pos = i;
    return 0;
}

static bool
is_kw(const parser_t *p, const char *kw)
{
    return p->tok.t == T_IDENT && p->tok.len == strlen(kw) &&
           strncasecmp(p->src + p->tok.off, kw, p->tok.len) == 0;
}

/* ---- node helpers ---------------------------------------------------------- */

static weir_expr_t *
node(parser_t *p, int kind, int nargs)
{
    weir_expr_t *e = calloc(1, sizeof(*e));

    if (e == NULL || (nargs > 0 && (e->args = calloc((size_t)nargs, sizeof(*e->args))) == NULL)) {
        free(e);
        fail_at(p, p->tok.off, WEIR_ENOMEM, "out of memory");
        return NULL;
    }
    e->kind = kind;
    e->nargs = nargs;
    e->depth = 1;
    return e;
}

/* Completes an inner node once its arguments are in place: its depth (which
 * is bounded) and whether evaluating it builds strings. */
static int
seal(parser_t *p, weir_expr_t *e, size_t off)
{
    int d = 0;

    for (int i = 0; i < e->nargs; i++) {
        if (e->args[i]->depth > d)
            d = e->args[i]->depth;
        e->builds_str |= e->args[i]->builds_str;
    }
    e->depth = d + 1;
    if (e->depth > EXPR_MAX_DEPTH)
        return fail_at(p, off, WEIR_EPARSE, "expression nested too deeply (more than %d levels)",
                       EXPR_MAX_DEPTH);
    return 0;
}

/* Bounds the parser's recursion; every enter() that returns 0 has a leave().
 * off is the token that opens the level ('(', 'not', '-'). */
static int
enter(parser_t *p, size_t off)
{
    if (p->nesting >= EXPR_MAX_NESTING)
        return fail_at(p, off, WEIR_EPARSE, "expression nested too deeply (more than %d levels)",
                       EXPR_MAX_NESTING);
    p->nesting++;
    return 0;
}

static void
leave(parser_t *p)
{
    p->nesting--;
}

static bool
numeric(weir_type_t t)
{
    return t == WEIR_T_INT || t == WEIR_T_DOUBLE;
}

static bool
is_null_lit(const weir_expr_t *e)
{
    return e->kind == N_LIT && e->type == WEIR_T_NULL;
}

/* The type both a and b fit, or -1. */
static int
common_type(const weir_expr_t *a, const weir_expr_t *b)
{
    if (is_null_lit(a))
        return (int)b->type;
    if (is_null_lit(b) || a->type == b->type)
        return (int)a->type;
    if (numeric(a->type) && numeric(b->type))
        return WEIR_T_DOUBLE;
    return -1;
}

/* A string literal where a timestamp is wanted becomes a timestamp literal. */
static int
coerce_ts_literal(parser_t *p, weir_expr_t *lit, size_t off)
{
    int64_t us;

    if (weir_ts_parse(lit->str, lit->lit.len, &us) != 0)
        return fail_at(p, off, WEIR_ETYPE, "'%s' is not a timestamp (YYYY-MM-DD HH:MM:SS[.ffffff])", lit->str);
    lit->type = WEIR_T_TIMESTAMP;
    lit->lit = weir_value_ts(us);
    return 0;
}

static const char *
tname(weir_type_t t)
{
    return weir_type_name(t);
}

/* ---- grammar ---------------------------------------------------------------- */

static weir_expr_t *parse_or(parser_t *p);

static size_t
levenshtein(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];

    if (la >= 63 || lb >= 63)
        return 99;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t c = prev[j - 1] + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            size_t d = prev[j] + 1 < cur[j - 1] + 1 ? prev[j] + 1 : cur[j - 1] + 1;
            cur[j] = c < d ? c : d;
        }
        memcpy(prev, cur, (lb + 1) * sizeof(size_t));
    }
    return prev[lb];
}

static weir_expr_t *
field_ref(parser_t *p, const char *name, int input, size_t off)
{
    int found_in = -1, found_idx = -1, hits = 0;
    const char *best = NULL;
    size_t best_d = 99, maxd = strlen(name) / 3 > 1 ? strlen(name) / 3 : 1;
    weir_expr_t *e;

    for (int i = 0; i < p->ninputs; i++) {
        const weir_schema_t *s = p->inputs[i].schema;
        if (input >= 0 && i != input)
            continue;
        for (int f = 0; f < s->nfields; f++) {
            if (strcmp(s->fields[f].name, name) == 0) {
                if (hits++ == 0) {
                    found_in = i;
                    found_idx = f;
                }
            } else {
                size_t d = levenshtein(name, s->fields[f].name);
                if (d < best_d) {
                    best_d = d;
                    best = s->fields[f].name;
                }
            }
        }
    }
    if (hits == 0) {
        if (best != NULL && best_d <= maxd)
            fail_at(p, off, WEIR_ETYPE, "unknown field '%s' (did you mean '%s'?)", name, best);
        else
            fail_at(p, off, WEIR_ETYPE, "unknown field '%s'", name);
        return NULL;
    }
    if (hits > 1) {
        fail_at(p, off, WEIR_ETYPE, "ambiguous field '%s': qualify it with an input alias (e.g. %s.%s)",
                name, p->inputs[found_in].alias ? p->inputs[found_in].alias : "t", name);
        return NULL;
    }
    e = node(p, N_FIELD, 0);
    if (e == NULL)
        return NULL;
    e->input = found_in;
    e->index = found_idx;
    e->type = p->inputs[found_in].schema->fields[found_idx].type;
    e->nullable = p->inputs[found_in].schema->fields[found_idx].nullable;
    e->str = strdup(name);
    return e;
}

static weir_expr_t *
string_literal(parser_t *p)
{
    const char *s = p->src + p->tok.off + 1;
    size_t n = p->tok.len - 2, k = 0;
    weir_expr_t *e = node(p, N_LIT, 0);
    char *out;

    if (e == NULL)
        return NULL;
    out = malloc(n + 1);
    if (out == NULL) {
        weir_expr_destroy(e);
        fail_at(p, p->tok.off, WEIR_ENOMEM, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n) {
            c = s[++i];
            c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
        }
        out[k++] = c;
    }
    out[k] = '\0';
    e->str = out;
    e->type = WEIR_T_STRING;
    e->lit = weir_value_str(out, (uint32_t)k);
    return e;
}

static weir_expr_t *
parse_call(parser_t *p, size_t name_off, size_t name_len)
{
    weir_expr_t *args[16], *e;
    int f, n = 0;
    size_t arg_off[16];

    for (f = 0; f < NFUNCS; f++)
        if (strlen(funcs[f].name) == name_len && strncasecmp(p->src + name_off, funcs[f].name, name_len) == 0)
            break;
    if (f == NFUNCS) {
        fail_at(p, name_off, WEIR_EPARSE, "unknown function '%.*s'", (int)name_len, p->src + name_off);
        return NULL;
    }
    if (lex(p) != 0)                  /* past '(' */
        return NULL;
    if (p->tok.t != T_RP) {
        for (;;) {
            if (n == 16) {
                fail_at(p, p->tok.off, WEIR_EPARSE, "too many arguments");
                goto fail;
            }
            arg_off[n] = p->tok.off;
            if ((args[n] = parse_or(p)) == NULL)
                goto fail;
            n++;
            if (p->tok.t == T_COMMA) {
                if (lex(p) != 0)
                    goto fail;
                continue;
            }
            break;
        }
    }
    if (p->tok.t != T_RP) {
        fail_at(p, p->tok.off, WEIR_EPARSE, "expected ')' to close %s(", funcs[f].name);
        goto fail;
    }
    if (n < funcs[f].min || n > funcs[f].max) {
        if (funcs[f].min == funcs[f].max)
            fail_at(p, name_off, WEIR_ETYPE, "%s() takes %d argument%s, got %d", funcs[f].name,
                    funcs[f].min, funcs[f].min == 1 ? "" : "s", n);
        else
            fail_at(p, name_off, WEIR_ETYPE, "%s() takes %d to %d arguments, got %d", funcs[f].name,
                    funcs[f].min, funcs[f].max, n);
        goto fail;
    }
    if (lex(p) != 0)
        goto fail;
    e = node(p, N_CALL, n);
    if (e == NULL)
        goto fail;
    if (n > 0)                        /* now() has no args array */
        memcpy(e->args, args, (size_t)n * sizeof(*args));
    e->op = f;
    n = 0;                            /* owned by e now */
    e->nullable = false;
    for (int i = 0; i < e->nargs; i++)
        e->nullable |= e->args[i]->nullable || is_null_lit(e->args[i]);

#define ARG_TYPE(i, ok, what)                                                              \
    do {                                                                                   \
        if (!(ok) && !is_null_lit(e->args[i])) {                                           \
            fail_at(p, arg_off[i], WEIR_ETYPE, "%s() needs %s, got %s", funcs[f].name,     \
                    what, tname(e->args[i]->type));                                        \
            weir_expr_destroy(e);                                                          \
            return NULL;                                                                   \
        }                                                                                  \
    } while (0)

    switch (f) {
    case F_LOWER:
    case F_UPPER:
        ARG_TYPE(0, e->args[0]->type == WEIR_T_STRING, "a string");
        e->type = WEIR_T_STRING;
        e->builds_str = true;
        break;
    case F_LENGTH:
        ARG_TYPE(0, e->args[0]->type == WEIR_T_STRING || e->args[0]->type == WEIR_T_BYTES, "a string");
        e->type = WEIR_T_INT;
        break;
    case F_ABS:
    case F_FLOOR:
    case F_CEIL:
    case F_ROUND:
        ARG_TYPE(0, numeric(e->args[0]->type), "a number");
        e->type = is_null_lit(e->args[0]) ? WEIR_T_DOUBLE : e->args[0]->type;
        break;
    case F_COALESCE: {
        /* every argument must fit the type of those before it (null
         * literals fit anything); int and double meet at double */
        weir_type_t t = WEIR_T_NULL;
        e->nullable = true;
        for (int i = 0; i < e->nargs; i++) {
            weir_type_t ti = e->args[i]->type;
            if (!e->args[i]->nullable && !is_null_lit(e->args[i]))
                e->nullable = false;
            if (is_null_lit(e->args[i]) || ti == t)
                continue;
            if (t == WEIR_T_NULL) {
                t = ti;
            } else if (numeric(t) && numeric(ti)) {
                t = WEIR_T_DOUBLE;
            } else {
                fail_at(p, arg_off[i], WEIR_ETYPE, "coalesce() arguments differ: %s and %s",
                        tname(t), tname(ti));
                weir_expr_destroy(e);
                return NULL;
            }
        }
        e->type = t;
        break;
    }
    case F_CONCAT:
        for (int i = 0; i < e->nargs; i++)
            ARG_TYPE(i, e->args[i]->type == WEIR_T_STRING, "strings (use string(x) to convert)");
        e->type = WEIR_T_STRING;
        e->builds_str = true;
        break;
    case F_SUBSTR:
        ARG_TYPE(0, e->args[0]->type == WEIR_T_STRING, "a string");
        for (int i = 1; i < e->nargs; i++)
            ARG_TYPE(i, e->args[i]->type == WEIR_T_INT, "integer positions");
        e->type = WEIR_T_STRING;
        break;
    case F_FLOOR_TIME:
        ARG_TYPE(0, e->args[0]->type == WEIR_T_TIMESTAMP, "a timestamp");
        if (e->args[1]->kind != N_LIT || e->args[1]->type != WEIR_T_STRING ||
            weir_duration_parse(e->args[1]->str, &e->unit) != 0 || e->unit <= 0) {
            fail_at(p, arg_off[1], WEIR_ETYPE, "floor_time() needs a duration literal such as '1m'");
            weir_expr_destroy(e);
            return NULL;
        }
        e->type = WEIR_T_TIMESTAMP;
        break;
    case F_TO_TIMESTAMP:
        ARG_TYPE(0, e->args[0]->type == WEIR_T_STRING, "a string");
        e->type = WEIR_T_TIMESTAMP;
        e->nullable = true;           /* unparsable text gives NULL */
        break;
    case F_NOW:
        e->type = WEIR_T_TIMESTAMP;
        break;
    case F_INT:
        e->type = WEIR_T_INT;
        e->nullable |= e->args[0]->type == WEIR_T_STRING || e->args[0]->type == WEIR_T_BYTES ||
                       e->args[0]->type == WEIR_T_DOUBLE;     /* unparsable text, NaN, out of range */
        break;
    case F_DOUBLE:
        e->type = WEIR_T_DOUBLE;
        e->nullable |= e->args[0]->type == WEIR_T_STRING || e->args[0]->type == WEIR_T_BYTES;
        break;
    case F_STRING:
        e->type = WEIR_T_STRING;
        e->builds_str = e->args[0]->type != WEIR_T_STRING && e->args[0]->type != WEIR_T_BYTES;
        break;
    case F_IF: {
        int c;
        ARG_TYPE(0, e->args[0]->type == WEIR_T_BOOL, "a bool condition");
        c = common_type(e->args[1], e->args[2]);
        if (c < 0) {
            fail_at(p, arg_off[2], WEIR_ETYPE, "if() branches differ: %s and %s",
                    tname(e->args[1]->type), tname(e->args[2]->type));
            weir_expr_destroy(e);
            return NULL;
        }
        e->type = (weir_type_t)c;
        e->nullable = e->args[1]->nullable || e->args[2]->nullable ||
                      is_null_lit(e->args[1]) || is_null_lit(e->args[2]);
        break;
    }
    }
#undef ARG_TYPE
    if (seal(p, e, name_off) != 0) {
        weir_expr_destroy(e);
        return NULL;
    }
    return e;

fail:
    for (int i = 0; i < n; i++)
        weir_expr_destroy(args[i]);
    return NULL;
}

static weir_expr_t *
parse_primary(parser_t *p)
{
    weir_expr_t *e;
    size_t off = p->tok.off;

    switch (p->tok.t) {
    case T_INT:
    case T_DOUBLE:
        e = node(p, N_LIT, 0);
        if (e == NULL)
            return NULL;
        if (p->tok.t == T_INT && p->tok.int_min) {
            weir_expr_destroy(e);
            fail_at(p, off, WEIR_EPARSE, "integer literal out of range");
            return NULL;
        }
        if (p->tok.t == T_INT) {
            e->type = WEIR_T_INT;
            e->lit = weir_value_int(p->tok.i);
        } else {
            e->type = WEIR_T_DOUBLE;
            e->lit = weir_value_double(p->tok.d);
        }
        break;
    case T_STRING:
        if ((e = string_literal(p)) == NULL)
            return NULL;
        break;
    case T_LP:
        if (lex(p) != 0 || (e = parse_or(p)) == NULL)   /* parse_or bounds the nesting */
            return NULL;
        if (p->tok.t != T_RP) {
            fail_at(p, p->tok.off, WEIR_EPARSE, "expected ')'");
            weir_expr_destroy(e);
            return NULL;
        }
        break;
    case T_IDENT: {
        size_t len = p->tok.len;
        char name[256], field[256];

        if (is_kw(p, "true") || is_kw(p, "false")) {
            e = node(p, N_LIT, 0);
            if (e == NULL)
                return NULL;
            e->type = WEIR_T_BOOL;
            e->lit = weir_value_bool(is_kw(p, "true"));
            break;
        }
        if (is_kw(p, "null")) {
            e = node(p, N_LIT, 0);
            if (e == NULL)
                return NULL;
            e->type = WEIR_T_NULL;
            e->lit = weir_value_null(WEIR_T_NULL);
            e->nullable = true;
            break;
        }
        if (is_kw(p, "and") || is_kw(p, "or") || is_kw(p, "not") || is_kw(p, "is") || is_kw(p, "in")) {
            fail_at(p, off, WEIR_EPARSE, "expected a value, got '%.*s'", (int)len, p->src + off);
            return NULL;
        }
        if (len >= sizeof(name)) {
            fail_at(p, off, WEIR_EPARSE, "name too long");
            return NULL;
        }
        memcpy(name, p->src + off, len);
        name[len] = '\0';
        if (lex(p) != 0)
            return NULL;
        if (p->tok.t == T_LP)
            return parse_call(p, off, len);
        if (p->tok.t == T_DOT) {
            int input = -1;
            if (lex(p) != 0)
                return NULL;
            if (p->tok.t != T_IDENT || p->tok.len >= sizeof(field)) {
                fail_at(p, p->tok.off, WEIR_EPARSE, "expected a field name after '%s.'", name);
                return NULL;
            }
            memcpy(field, p->src + p->tok.off, p->tok.len);
            field[p->tok.len] = '\0';
            for (int i = 0; i < p->ninputs; i++)
                if (p->inputs[i].alias != NULL && strcmp(p->inputs[i].alias, name) == 0)
                    input = i;
            if (input < 0) {
                fail_at(p, off, WEIR_ETYPE, "unknown input '%s'", name);
                return NULL;
            }
            e = field_ref(p, field, input, p->tok.off);
        } else {
            return field_ref(p, name, -1, off);
        }
        if (e == NULL)
            return NULL;
        break;
    }
    case T_END:
        fail_at(p, off, WEIR_EPARSE, "unexpected end of expression");
        return NULL;
    default:
        fail_at(p, off, WEIR_EPARSE, "unexpected '%.*s'", (int)p->tok.len, p->src + off);
        return NULL;
    }
    if (lex(p) != 0) {
        weir_expr_destroy(e);
        return NULL;
    }
    return e;
}

static weir_expr_t *
parse_unary(parser_t *p)
{
    if (p->tok.t == T_MINUS) {
        size_t off = p->tok.off;
        weir_expr_t *a, *e;
        if (lex(p) != 0)
            return NULL;
        if (p->tok.t == T_INT && p->tok.int_min) {      /* -9223372036854775808 */
            if ((a = node(p, N_LIT, 0)) == NULL)
                return NULL;
            a->type = WEIR_T_INT;
            a->lit = weir_value_int(INT64_MIN);
            if (lex(p) != 0) {
                weir_expr_destroy(a);
                return NULL;
            }
            return a;
        }
        if (enter(p, off) != 0)
            return NULL;
        a = parse_unary(p);
        leave(p);
        if (a == NULL)
            return NULL;
        if (!numeric(a->type) && !is_null_lit(a)) {
            fail_at(p, off, WEIR_ETYPE, "cannot negate %s", tname(a->type));
            weir_expr_destroy(a);
            return NULL;
        }
        if (a->kind == N_LIT && !is_null_lit(a) && !(a->type == WEIR_T_INT && a->lit.u.i == INT64_MIN)) {
            if (a->type == WEIR_T_INT)
                a->lit.u.i = -a->lit.u.i;
            else
                a->lit.u.d = -a->lit.u.d;
            return a;
        }
        if ((e = node(p, N_NEG, 1)) == NULL) {
            weir_expr_destroy(a);
            return NULL;
        }
        e->args[0] = a;
        e->type = is_null_lit(a) ? WEIR_T_INT : a->type;
        e->nullable = a->nullable;
        if (seal(p, e, off) != 0) {
            weir_expr_destroy(e);
            return NULL;
        }
        return e;
    }
    return parse_primary(p);
}

/* Takes ownership of a and b (destroyed on failure); off is the operator's. */
static weir_expr_t *
binary(parser_t *p, int kind, int op, weir_expr_t *a, weir_expr_t *b, size_t off)
{
    weir_expr_t *e = node(p, kind, 2);

    if (e == NULL) {
        weir_expr_destroy(a);
        weir_expr_destroy(b);
        return NULL;
    }
    e->op = op;
    e->args[0] = a;
    e->args[1] = b;
    e->nullable = a->nullable || b->nullable;
    e->builds_str = kind == N_CONCAT;
    if (seal(p, e, off) != 0) {
        weir_expr_destroy(e);
        return NULL;
    }
    return e;
}

static weir_expr_t *
parse_mul(parser_t *p)
{
    weir_expr_t *a = parse_unary(p);

    while (a != NULL && (p->tok.t == T_STAR || p->tok.t == T_SLASH || p->tok.t == T_PCT)) {
        int op = p->tok.t == T_STAR ? OP_MUL : p->tok.t == T_SLASH ? OP_DIV : OP_MOD;
        size_t off = p->tok.off;
        weir_expr_t *b;
        if (lex(p) != 0 || (b = parse_unary(p)) == NULL) {
            weir_expr_destroy(a);
            return NULL;
        }
        if ((!numeric(a->type) && !is_null_lit(a)) || (!numeric(b->type) && !is_null_lit(b))) {
            fail_at(p, off, WEIR_ETYPE, "operator '%c' needs numbers, got %s and %s",
                    "*/%"[op - OP_MUL], tname(a->type), tname(b->type));
            weir_expr_destroy(a);
            weir_expr_destroy(b);
            return NULL;
        }
        a = binary(p, N_ARITH, op, a, b, off);
        if (a != NULL) {
            a->type = a->args[0]->type == WEIR_T_DOUBLE || a->args[1]->type == WEIR_T_DOUBLE
                          ? WEIR_T_DOUBLE : WEIR_T_INT;
            /* integer division or modulo by zero is NULL */
            a->nullable |= (a->type == WEIR_T_INT && op != OP_MUL) || is_null_lit(a->args[0]) ||
                           is_null_lit(a->args[1]);
        }
    }
    return a;
}

static weir_expr_t *
parse_add(parser_t *p)
{
    weir_expr_t *a = parse_mul(p);

    while (a != NULL && (p->tok.t == T_PLUS || p->tok.t == T_MINUS || p->tok.t == T_CONCAT)) {
        int t = p->tok.t;
        size_t off = p->tok.off;
        weir_expr_t *b;
        weir_type_t ta, tb;

        if (lex(p) != 0 || (b = parse_mul(p)) == NULL) {
            weir_expr_destroy(a);
            return NULL;
        }
        ta = a->type;
        tb = b->type;
        if (t == T_CONCAT) {
            if ((ta != WEIR_T_STRING && !is_null_lit(a)) || (tb != WEIR_T_STRING && !is_null_lit(b))) {
                fail_at(p, off, WEIR_ETYPE, "operator '||' needs strings, got %s and %s", tname(ta), tname(tb));
                weir_expr_destroy(a);
                weir_expr_destroy(b);
                return NULL;
            }
            a = binary(p, N_CONCAT, 0, a, b, off);
            if (a != NULL) {
                a->type = WEIR_T_STRING;
                a->nullable |= is_null_lit(a->args[0]) || is_null_lit(a->args[1]);
            }
            continue;
        }
        int op = t == T_PLUS ? OP_ADD : OP_SUB;
        weir_type_t rt;
        if ((numeric(ta) || is_null_lit(a)) && (numeric(tb) || is_null_lit(b)))
            rt = ta == WEIR_T_DOUBLE || tb == WEIR_T_DOUBLE ? WEIR_T_DOUBLE : WEIR_T_INT;
        else if (ta == WEIR_T_TIMESTAMP && tb == WEIR_T_INT)
            rt = WEIR_T_TIMESTAMP;                       /* ts +- microseconds */
        else if (op == OP_SUB && ta == WEIR_T_TIMESTAMP && tb == WEIR_T_TIMESTAMP)
            rt = WEIR_T_INT;                             /* difference in microseconds */
        else {
            fail_at(p, off, WEIR_ETYPE, "operator '%c' cannot combine %s and %s%s",
                    op == OP_ADD ? '+' : '-', tname(ta), tname(tb),
                    ta == WEIR_T_STRING && tb == WEIR_T_STRING ? " (use || to concatenate)" : "");
            weir_expr_destroy(a);
            weir_expr_destroy(b);
            return NULL;
        }
        a = binary(p, N_ARITH, op, a, b, off);
        if (a != NULL) {
            a->type = rt;
            a->nullable |= is_null_lit(a->args[0]) || is_null_lit(a->args[1]);
        }
    }
    return a;
}

/* Checks that a and b can be compared with op; converts a string literal
 * facing a timestamp (an unparsable one is reported at its own column,
 * aoff or boff; other errors at the operator's, off). */
static int
check_cmp(parser_t *p, weir_expr_t *a, size_t aoff, weir_expr_t *b, size_t boff, int op,
          size_t off, const char *opname)
{
    weir_type_t ta = a->type, tb = b->type;

    if (is_null_lit(a) || is_null_lit(b))
        return 0;
    if (ta == WEIR_T_TIMESTAMP && tb == WEIR_T_STRING && b->kind == N_LIT)
        return coerce_ts_literal(p, b, boff);
    if (tb == WEIR_T_TIMESTAMP && ta == WEIR_T_STRING && a->kind == N_LIT)
        return coerce_ts_literal(p, a, aoff);
    if ((numeric(ta) && numeric(tb)) || ta == tb) {
        if (ta == WEIR_T_BOOL && op != OP_EQ && op != OP_NE)
            return fail_at(p, off, WEIR_ETYPE, "operator '%s' cannot order bools", opname);
        return 0;
    }
    return fail_at(p, off, WEIR_ETYPE, "operator '%s' cannot compare %s with %s", opname,
                   tname(ta), tname(tb));
}

static weir_expr_t *
parse_cmp(parser_t *p)
{
    static const int map[] = { [T_EQ] = OP_EQ, [T_NE] = OP_NE, [T_LT] = OP_LT,
                               [T_LE] = OP_LE, [T_GT] = OP_GT, [T_GE] = OP_GE };
    size_t aoff = p->tok.off, off, boff;
    weir_expr_t *a = parse_add(p), *b, *e;

    if (a == NULL)
        return NULL;
    off = p->tok.off;
    if (p->tok.t >= T_EQ && p->tok.t <= T_GE) {
        int op = map[p->tok.t];
        char opname[4];
        snprintf(opname, sizeof(opname), "%.*s", (int)p->tok.len, p->src + off);
        if (lex(p) != 0) {
            weir_expr_destroy(a);
            return NULL;
        }
        boff = p->tok.off;
        if ((b = parse_add(p)) == NULL) {
            weir_expr_destroy(a);
            return NULL;
        }
        if (check_cmp(p, a, aoff, b, boff, op, off, opname) != 0) {
            weir_expr_destroy(a);
            weir_expr_destroy(b);
            return NULL;
        }
        e = binary(p, N_CMP, op, a, b, off);
        if (e != NULL) {
            e->type = WEIR_T_BOOL;
            e->nullable |= is_null_lit(a) || is_null_lit(b);
        }
        return e;
    }
    if (is_kw(p, "is")) {
        bool neg = false;
        if (lex(p) != 0)
            goto fail;
        if (is_kw(p, "not")) {
            neg = true;
            if (lex(p) != 0)
                goto fail;
        }
        if (!is_kw(p, "null")) {
            fail_at(p, p->tok.off, WEIR_EPARSE, "expected 'null' after 'is%s'", neg ? " not" : "");
            goto fail;
        }
        if (lex(p) != 0 || (e = node(p, neg ? N_ISNOTNULL : N_ISNULL, 1)) == NULL)
            goto fail;
        e->args[0] = a;
        e->type = WEIR_T_BOOL;
        if (seal(p, e, off) != 0) {
            weir_expr_destroy(e);
            return NULL;
        }
        return e;
    }
    if (is_kw(p, "starts_with")) {
        if (lex(p) != 0 || (b = parse_add(p)) == NULL)
            goto fail;
        if ((a->type != WEIR_T_STRING && !is_null_lit(a)) || (b->type != WEIR_T_STRING && !is_null_lit(b))) {
            fail_at(p, off, WEIR_ETYPE, "starts_with needs strings, got %s and %s", tname(a->type), tname(b->type));
            weir_expr_destroy(b);
            goto fail;
        }
        e = binary(p, N_STARTS, 0, a, b, off);
        if (e != NULL) {
            e->type = WEIR_T_BOOL;
            e->nullable |= is_null_lit(e->args[0]) || is_null_lit(e->args[1]);
        }
        return e;
    }
    if (is_kw(p, "in")) {
        weir_expr_t *items[64];
        int n = 0;
        if (lex(p) != 0)
            goto fail;
        if (p->tok.t != T_LP) {
            fail_at(p, p->tok.off, WEIR_EPARSE, "expected '(' after 'in'");
            goto fail;
        }
        do {
            size_t ioff;
            if (lex(p) != 0)
                goto fail_items;
            ioff = p->tok.off;
            if (n == 64) {
                fail_at(p, ioff, WEIR_EPARSE, "too many items in 'in (...)' (at most 64)");
                goto fail_items;
            }
            if ((items[n] = parse_add(p)) == NULL)
                goto fail_items;
            n++;
            if (check_cmp(p, a, aoff, items[n - 1], ioff, OP_EQ, ioff, "in") != 0)
                goto fail_items;
        } while (p->tok.t == T_COMMA);
        if (p->tok.t != T_RP) {
            fail_at(p, p->tok.off, WEIR_EPARSE, "expected ')' to close 'in ('");
            goto fail_items;
        }
        if (lex(p) != 0 || (e = node(p, N_IN, n + 1)) == NULL)
            goto fail_items;
        e->args[0] = a;
        memcpy(e->args + 1, items, (size_t)n * sizeof(*items));
        e->type = WEIR_T_BOOL;
        for (int i = 0; i <= n; i++)
            e->nullable |= e->args[i]->nullable || is_null_lit(e->args[i]);
        if (seal(p, e, off) != 0) {
            weir_expr_destroy(e);
            return NULL;
        }
        return e;
fail_items:
        for (int i = 0; i < n; i++)
            weir_expr_destroy(items[i]);
        goto fail;
    }
    return a;
fail:
    weir_expr_destroy(a);
    return NULL;
}

static weir_expr_t *
need_bool(parser_t *p, weir_expr_t *e, size_t off, const char *op)
{
    if (e != NULL && e->type != WEIR_T_BOOL && !is_null_lit(e)) {
        fail_at(p, off, WEIR_ETYPE, "'%s' needs bool operands, got %s", op, tname(e->type));
        weir_expr_destroy(e);
        return NULL;
    }
    return e;
}

static weir_expr_t *
parse_not(parser_t *p)
{
    if (is_kw(p, "not")) {
        size_t off = p->tok.off;
        weir_expr_t *a, *e;
        if (lex(p) != 0 || enter(p, off) != 0)
            return NULL;
        a = need_bool(p, parse_not(p), off, "not");
        leave(p);
        if (a == NULL)
            return NULL;
        if ((e = node(p, N_NOT, 1)) == NULL) {
            weir_expr_destroy(a);
            return NULL;
        }
        e->args[0] = a;
        e->type = WEIR_T_BOOL;
        e->nullable = a->nullable;
        if (seal(p, e, off) != 0) {
            weir_expr_destroy(e);
            return NULL;
        }
        return e;
    }
    return parse_cmp(p);
}

static weir_expr_t *
parse_and(parser_t *p)
{
    size_t off = p->tok.off;
    weir_expr_t *a = parse_not(p), *b;

    while (a != NULL && is_kw(p, "and")) {
        size_t op_off = p->tok.off;
        if (need_bool(p, a, off, "and") == NULL)
            return NULL;
        if (lex(p) != 0) {
            weir_expr_destroy(a);
            return NULL;
        }
        off = p->tok.off;
        if ((b = need_bool(p, parse_not(p), off, "and")) == NULL) {
            weir_expr_destroy(a);
            return NULL;
        }
        if ((a = binary(p, N_AND, 0, a, b, op_off)) != NULL)
            a->type = WEIR_T_BOOL;
    }
    return a;
}

static weir_expr_t *
parse_or_(parser_t *p)
{
    size_t off = p->tok.off;
    weir_expr_t *a = parse_and(p), *b;

    while (a != NULL && is_kw(p, "or")) {
        size_t op_off = p->tok.off;
        if (need_bool(p, a, off, "or") == NULL)
            return NULL;
        if (lex(p) != 0) {
            weir_expr_destroy(a);
            return NULL;
        }
        off = p->tok.off;
        if ((b = need_bool(p, parse_and(p), off, "or")) == NULL) {
            weir_expr_destroy(a);
            return NULL;
        }
        if ((a = binary(p, N_OR, 0, a, b, op_off)) != NULL)
            a->type = WEIR_T_BOOL;
    }
    return a;
}

/* The entry of every nested expression (parentheses, arguments), so the
 * place to bound the parser's recursion. */
static weir_expr_t *
parse_or(parser_t *p)
{
    weir_expr_t *e;

    if (enter(p, p->tok.off) != 0)
        return NULL;
    e = parse_or_(p);
    leave(p);
    return e;
}

int
weir_expr_parse(const char *src, const weir_expr_input_t *inputs, int ninputs,
                weir_expr_t **out, size_t *err_offset, weir_err_t *err)
{
    parser_t p = { .src = src ? src : "", .inputs = inputs, .ninputs = ninputs, .err = err };
    weir_expr_t *e = NULL;

    if (lex(&p) == 0) {
        if (p.tok.t == T_END)
            fail_at(&p, 0, WEIR_EPARSE, "empty expression");
        else
            e = parse_or(&p);
    }
    if (e != NULL && p.tok.t != T_END) {
        fail_at(&p, p.tok.off, WEIR_EPARSE, "unexpected '%.*s' after a complete expression",
                (int)p.tok.len, p.src + p.tok.off);
        weir_expr_destroy(e);
        e = NULL;
    }
    if (e == NULL) {
        if (err_offset != NULL)
            *err_offset = p.err_off;
        return p.code != 0 ? p.code : WEIR_EPARSE;
    }
    *out = e;
    return 0;
}

/* ---- evaluation --------------------------------------------------------------- */

static double
as_double(const weir_value_t *v)
{
    return v->type == WEIR_T_DOUBLE ? v->u.d : (double)v->u.i;
}

static int
eval(const weir_expr_t *e, const weir_value_t *const *rows, weir_arena_t *a, weir_value_t *out);

static int
cmp_values(const weir_value_t *x, const weir_value_t *y)
{
    return weir_value_compare(x, y);
}

/* Byte index after skipping 'count' UTF-8 code points of s[0..n) from pos. */
static uint32_t
utf8_skip(const char *s, uint32_t n, uint32_t pos, int64_t count)
{
    while (count > 0 && pos < n) {
        pos++;
        while (pos < n && ((unsigned char)s[pos] & 0xc0) == 0x80)
            pos++;
        count--;
    }
    return pos;
}

/* The shortest "%.Ng" text of d that reads back as d, with ".0" added to
 * integral values so the text still says double (Java's Double.toString
 * does the same). Returns its length; buf holds at least 40 bytes. */
static int
format_double(double d, char *buf, size_t cap)
{
    int n = 0;

    if (!isfinite(d))
        return snprintf(buf, cap, "%s", isnan(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity");
    /* 15 significant digits always round-trip when 15 suffice (DBL_DIG),
     * except for subnormals, which have fewer digits of precision */
    for (int prec = fabs(d) < 2.2250738585072014e-308 ? 1 : 15; prec <= 17; prec++) {
        n = snprintf(buf, cap, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    if (strpbrk(buf, ".eE") == NULL && (size_t)n + 2 < cap) {
        buf[n++] = '.';
        buf[n++] = '0';
        buf[n] = '\0';
    }
    return n;
}

static int
string_result(weir_arena_t *a, const char *s, size_t n, weir_value_t *out)
{
    char *p;

    if (a == NULL)
        return WEIR_EINVAL;
    p = weir_arena_alloc(a, n + 1);
    if (p == NULL)
        return WEIR_ENOMEM;
    memcpy(p, s, n);
    p[n] = '\0';
    *out = weir_value_str(p, (uint32_t)n);
    return 0;
}

static int
eval_call(const weir_expr_t *e, const weir_value_t *const *rows, weir_arena_t *a, weir_value_t *out)
{
    weir_value_t v[3];
    int rc;

    switch (e->op) {
    case F_COALESCE:
        for (int i = 0; i < e->nargs; i++) {
            if ((rc = eval(e->args[i], rows, a, &v[0])) != 0)
                return rc;
            if (!v[0].null) {
                *out = v[0];
                if (e->type == WEIR_T_DOUBLE && v[0].type == WEIR_T_INT)
                    *out = weir_value_double((double)v[0].u.i);
                return 0;
            }
        }
        *out = weir_value_null(e->type);
        return 0;
    case F_IF:
        if ((rc = eval(e->args[0], rows, a, &v[0])) != 0)
            return rc;
        rc = eval(e->args[!v[0].null && v[0].u.b ? 1 : 2], rows, a, out);
        if (rc == 0 && !out->null && e->type == WEIR_T_DOUBLE && out->type == WEIR_T_INT)
            *out = weir_value_double((double)out->u.i);
        if (rc == 0 && out->null)
            *out = weir_value_null(e->type);
        return rc;
    case F_NOW:
        *out = weir_value_ts(weir_now_us());
        return 0;
    case F_CONCAT: {
        weir_value_t xs[16];              /* funcs[F_CONCAT].max: each argument evaluated once */
        size_t total = 0;
        char *p;
        for (int i = 0; i < e->nargs; i++) {
            if ((rc = eval(e->args[i], rows, a, &xs[i])) != 0)
                return rc;
            if (xs[i].null) {
                *out = weir_value_null(WEIR_T_STRING);
                return 0;
            }
            total += xs[i].len;
        }
        if (a == NULL || (p = weir_arena_alloc(a, total + 1)) == NULL)
            return WEIR_ENOMEM;
        total = 0;
        for (int i = 0; i < e->nargs; i++) {
            if (xs[i].len > 0)
                memcpy(p + total, xs[i].u.s, xs[i].len);
            total += xs[i].len;
        }
        p[total] = '\0';
        *out = weir_value_str(p, (uint32_t)total);
        return 0;
    }
    default:
        break;
    }
    for (int i = 0; i < e->nargs; i++) {
        if ((rc = eval(e->args[i], rows, a, &v[i])) != 0)
            return rc;
        if (v[i].null) {
            *out = weir_value_null(e->type);
            return 0;
        }
    }
    switch (e->op) {
    case F_LOWER:
    case F_UPPER: {
        char *p;
        if (a == NULL || (p = weir_arena_alloc(a, v[0].len + 1)) == NULL)
            return WEIR_ENOMEM;
        for (uint32_t i = 0; i < v[0].len; i++)
            p[i] = (char)(e->op == F_LOWER ? tolower((unsigned char)v[0].u.s[i])
                                           : toupper((unsigned char)v[0].u.s[i]));
        p[v[0].len] = '\0';
        *out = weir_value_str(p, v[0].len);
        return 0;
    }
    case F_LENGTH: {
        int64_t n = 0;
        for (uint32_t i = 0; i < v[0].len; i++)        /* UTF-8 code points */
            n += ((unsigned char)v[0].u.s[i] & 0xc0) != 0x80;
        *out = weir_value_int(v[0].type == WEIR_T_BYTES ? (int64_t)v[0].len : n);
        return 0;
    }
    case F_ABS:
        if (v[0].type == WEIR_T_INT) {          /* abs(INT64_MIN) wraps to itself, like Java */
            *out = weir_value_int(v[0].u.i < 0 ? (int64_t)(0 - (uint64_t)v[0].u.i) : v[0].u.i);
        } else {
            *out = weir_value_double(fabs(v[0].u.d));
        }
        return 0;
    case F_FLOOR:
    case F_CEIL:
    case F_ROUND:
        if (v[0].type == WEIR_T_INT)
            *out = v[0];
        else
            *out = weir_value_double(e->op == F_FLOOR ? floor(v[0].u.d)
                                     : e->op == F_CEIL ? ceil(v[0].u.d) : round(v[0].u.d));
        return 0;
    case F_SUBSTR: {
        /* positions count code points, like length(); the result borrows */
        int64_t start = v[1].u.i, len = e->nargs > 2 ? v[2].u.i : INT64_MAX;
        uint32_t from, to;
        if (start < 1)
            start = 1;
        if (len < 0)
            len = 0;
        from = utf8_skip(v[0].u.s, v[0].len, 0, start - 1);
        to = utf8_skip(v[0].u.s, v[0].len, from, len);
        *out = weir_value_str(v[0].u.s + from, to - from);
        return 0;
    }
    case F_FLOOR_TIME: {
        int64_t t = v[0].u.i, r = t % e->unit;
        if (r < 0)
            r += e->unit;
        /* below the earliest whole unit the floor wraps, like + - * */
        *out = weir_value_ts((int64_t)((uint64_t)t - (uint64_t)r));
        return 0;
    }
    case F_TO_TIMESTAMP: {
        int64_t us;
        *out = weir_ts_parse(v[0].u.s, v[0].len, &us) == 0 ? weir_value_ts(us)
                                                          : weir_value_null(WEIR_T_TIMESTAMP);
        return 0;
    }
    case F_INT:
        switch (v[0].type) {
        case WEIR_T_INT:
        case WEIR_T_TIMESTAMP: *out = weir_value_int(v[0].u.i); return 0;
        case WEIR_T_BOOL: *out = weir_value_int(v[0].u.b); return 0;
        case WEIR_T_DOUBLE:
            *out = isfinite(v[0].u.d) && v[0].u.d >= -9223372036854775808.0 && v[0].u.d < 9223372036854775808.0
                       ? weir_value_int((int64_t)v[0].u.d) : weir_value_null(WEIR_T_INT);
            return 0;
        default: {
            char buf[32], *end;
            long long x;
            if (v[0].len == 0 || v[0].len >= sizeof(buf)) {
                *out = weir_value_null(WEIR_T_INT);
                return 0;
            }
            memcpy(buf, v[0].u.s, v[0].len);
            buf[v[0].len] = '\0';
            errno = 0;
            x = strtoll(buf, &end, 10);
            *out = *end == '\0' && errno == 0 ? weir_value_int(x) : weir_value_null(WEIR_T_INT);
            return 0;
        }
        }
    case F_DOUBLE:
        switch (v[0].type) {
        case WEIR_T_INT:
        case WEIR_T_TIMESTAMP: *out = weir_value_double((double)v[0].u.i); return 0;
        case WEIR_T_DOUBLE: *out = v[0]; return 0;
        case WEIR_T_BOOL: *out = weir_value_double(v[0].u.b); return 0;
        default: {
            char buf[64], *end;
            double x;
            if (v[0].len == 0 || v[0].len >= sizeof(buf)) {
                *out = weir_value_null(WEIR_T_DOUBLE);
                return 0;
            }
            memcpy(buf, v[0].u.s, v[0].len);
            buf[v[0].len] = '\0';
            x = strtod(buf, &end);
            *out = *end == '\0' ? weir_value_double(x) : weir_value_null(WEIR_T_DOUBLE);
            return 0;
        }
        }
    case F_STRING: {
        char buf[40];
        int n;
        switch (v[0].type) {
        case WEIR_T_STRING: *out = v[0]; return 0;
        case WEIR_T_BYTES: *out = weir_value_str(v[0].u.s, v[0].len); return 0;
        case WEIR_T_INT: n = snprintf(buf, sizeof(buf), "%lld", (long long)v[0].u.i); break;
        case WEIR_T_DOUBLE: n = format_double(v[0].u.d, buf, sizeof(buf)); break;
        case WEIR_T_BOOL: n = snprintf(buf, sizeof(buf), "%s", v[0].u.b ? "true" : "false"); break;
        case WEIR_T_TIMESTAMP: weir_ts_format(v[0].u.i, buf); n = (int)strlen(buf); break;
        default: *out = weir_value_null(WEIR_T_STRING); return 0;
        }
        return string_result(a, buf, (size_t)n, out);
    }
    }
    return WEIR_EINVAL;
}

static int
eval(const weir_expr_t *e, const weir_value_t *const *rows, weir_arena_t *a, weir_value_t *out)
{
    weir_value_t x, y;
    int rc;

    switch (e->kind) {
    case N_LIT:
        *out = e->lit;
        return 0;
    case N_FIELD:
        *out = rows[e->input][e->index];
        return 0;
    case N_NEG:
        if ((rc = eval(e->args[0], rows, a, &x)) != 0)
            return rc;
        if (x.null)
            *out = weir_value_null(e->type);
        else if (x.type == WEIR_T_DOUBLE)
            *out = weir_value_double(-x.u.d);
        else
            *out = weir_value_int((int64_t)(0 - (uint64_t)x.u.i));   /* wraps, like Java */
        return 0;
    case N_NOT:
        if ((rc = eval(e->args[0], rows, a, &x)) != 0)
            return rc;
        *out = x.null ? weir_value_null(WEIR_T_BOOL) : weir_value_bool(!x.u.b);
        return 0;
    case N_AND:
    case N_OR: {
        bool is_and = e->kind == N_AND;
        if ((rc = eval(e->args[0], rows, a, &x)) != 0)
            return rc;
        if (!x.null && x.u.b != is_and) {          /* false and _, true or _ */
            *out = weir_value_bool(!is_and);
            return 0;
        }
        if ((rc = eval(e->args[1], rows, a, &y)) != 0)
            return rc;
        if (!y.null && y.u.b != is_and)
            *out = weir_value_bool(!is_and);
        else if (x.null || y.null)
            *out = weir_value_null(WEIR_T_BOOL);
        else
            *out = weir_value_bool(is_and);
        return 0;
    }
    case N_ISNULL:
    case N_ISNOTNULL:
        if ((rc = eval(e->args[0], rows, a, &x)) != 0)
            return rc;
        *out = weir_value_bool(x.null == (e->kind == N_ISNULL));
        return 0;
    case N_CMP: {
        int c;
        if ((rc = eval(e->args[0], rows, a, &x)) != 0 || (rc = eval(e->args[1], rows, a, &y)) != 0)
            return rc;
        if (x.null || y.null || (x.type == WEIR_T_DOUBLE && isnan(x.u.d)) ||
            (y.type == WEIR_T_DOUBLE && isnan(y.u.d))) {
            *out = (x.null || y.null) ? weir_value_null(WEIR_T_BOOL) : weir_value_bool(e->op == OP_NE);
            return 0;
        }
        c = cmp_values(&x, &y);
        switch (e->op) {
        case OP_EQ: *out = weir_value_bool(c == 0); break;
        case OP_NE: *out = weir_value_bool(c != 0); break;
        case OP_LT: *out = weir_value_bool(c < 0); break;
        case OP_LE: *out = weir_value_bool(c <= 0); break;
        case OP_GT: *out = weir_value_bool(c > 0); break;
        default:    *out = weir_value_bool(c >= 0); break;
        }
        return 0;
    }
    case N_ARITH:
        if ((rc = eval(e->args[0], rows, a, &x)) != 0 || (rc = eval(e->args[1], rows, a, &y)) != 0)
            return rc;
        if (x.null || y.null) {
            *out = weir_value_null(e->type);
            return 0;
        }
        if (e->type == WEIR_T_DOUBLE) {
            double p = as_double(&x), q = as_double(&y), r;
            switch (e->op) {
            case OP_ADD: r = p + q; break;
            case OP_SUB: r = p - q; break;
            case OP_MUL: r = p * q; break;
            case OP_DIV: r = p / q; break;
            default:     r = fmod(p, q); break;
            }
            *out = weir_value_double(r);
            return 0;
        } else {
            /* + - * wrap in two's complement like Flink's (Java's) longs;
             * the builtins make that defined behaviour in C */
            int64_t p = x.u.i, q = y.u.i, r = 0;
            bool ovf = false;
            switch (e->op) {
            case OP_ADD: (void)__builtin_add_overflow(p, q, &r); break;
            case OP_SUB: (void)__builtin_sub_overflow(p, q, &r); break;
            case OP_MUL: (void)__builtin_mul_overflow(p, q, &r); break;
            case OP_DIV:
                ovf = q == 0;
                if (!ovf)
                    r = q == -1 ? (int64_t)(0 - (uint64_t)p) : p / q;
                break;
            default:     ovf = q == 0; if (!ovf) r = q == -1 ? 0 : p % q; break;
            }
            *out = ovf ? weir_value_null(e->type) : e->type == WEIR_T_TIMESTAMP ? weir_value_ts(r)
                                                                               : weir_value_int(r);
            return 0;
        }
    case N_CONCAT: {
        char *p;
        if ((rc = eval(e->args[0], rows, a, &x)) != 0 || (rc = eval(e->args[1], rows, a, &y)) != 0)
            return rc;
        if (x.null || y.null) {
            *out = weir_value_null(WEIR_T_STRING);
            return 0;
        }
        if (a == NULL || (p = weir_arena_alloc(a, (size_t)x.len + y.len + 1)) == NULL)
            return WEIR_ENOMEM;
        memcpy(p, x.u.s, x.len);
        memcpy(p + x.len, y.u.s, y.len);
        p[x.len + y.len] = '\0';
        *out = weir_value_str(p, x.len + y.len);
        return 0;
    }
    case N_STARTS:
        if ((rc = eval(e->args[0], rows, a, &x)) != 0 || (rc = eval(e->args[1], rows, a, &y)) != 0)
            return rc;
        if (x.null || y.null)
            *out = weir_value_null(WEIR_T_BOOL);
        else
            *out = weir_value_bool(y.len <= x.len && (y.len == 0 || memcmp(x.u.s, y.u.s, y.len) == 0));
        return 0;
    case N_IN: {
        bool saw_null = false;
        if ((rc = eval(e->args[0], rows, a, &x)) != 0)
            return rc;
        if (x.null) {
            *out = weir_value_null(WEIR_T_BOOL);
            return 0;
        }
        for (int i = 1; i < e->nargs; i++) {
            if ((rc = eval(e->args[i], rows, a, &y)) != 0)
                return rc;
            if (y.null)
                saw_null = true;
            else if (weir_value_equal(&x, &y)) {
                *out = weir_value_bool(true);
                return 0;
            }
        }
        *out = saw_null ? weir_value_null(WEIR_T_BOOL) : weir_value_bool(false);
        return 0;
    }
    case N_CALL:
        return eval_call(e, rows, a, out);
    }
    return WEIR_EINVAL;
}

int
weir_expr_eval(const weir_expr_t *e, const weir_value_t *const *rows, weir_arena_t *arena,
               weir_value_t *out)
{
    int rc = eval(e, rows, arena, out);

    if (rc == 0 && out->null)
        out->type = (uint8_t)e->type;
    return rc;
}

/* A predicate that builds strings on the way to its bool (lower(name) ==
 * 'x') needs scratch space, and eval_bool has no arena parameter: each
 * thread keeps one scratch arena, emptied after every call (reset keeps its
 * chunk, so the steady state allocates nothing) and freed at thread exit. */
static pthread_key_t  scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static bool           scratch_ok;

static void
scratch_free(void *p)
{
    weir_arena_t *a = p;

    weir_arena_free(a);
    free(a);
}

static void
scratch_init(void)
{
    scratch_ok = pthread_key_create(&scratch_key, scratch_free) == 0;
}

static weir_arena_t *
scratch_arena(void)
{
    weir_arena_t *a;

    if (pthread_once(&scratch_once, scratch_init) != 0 || !scratch_ok)
        return NULL;
    a = pthread_getspecific(scratch_key);
    if (a == NULL) {
        if ((a = malloc(sizeof(*a))) == NULL)
            return NULL;
        weir_arena_init(a, 4096);
        if (pthread_setspecific(scratch_key, a) != 0) {
            free(a);
            return NULL;
        }
    }
    return a;
}

int
weir_expr_eval_bool(const weir_expr_t *e, const weir_value_t *const *rows)
{
    weir_arena_t *a = NULL;
    weir_value_t v;
    int rc;

    if (e->builds_str && (a = scratch_arena()) == NULL)
        return 0;
    rc = eval(e, rows, a, &v);
    if (a != NULL)
        weir_arena_reset(a);
    if (rc != 0 || v.null || v.type != WEIR_T_BOOL)
        return 0;
    return v.u.b ? 1 : 0;
}

/* ---- durations ---------------------------------------------------------------- */

/* DIGITS ["." DIGITS] [UNIT], spaces allowed around; exact integer
 * arithmetic (no strtod: it would also take hex, "inf" and exponents), the
 * fraction truncated to whole microseconds. A well-formed duration beyond
 * int64 microseconds (~292,000 years) is WEIR_ERANGE, which the job file
 * layer reports as "out of range"; anything else malformed is WEIR_EPARSE. */
int
weir_duration_parse(const char *s, int64_t *out_us)
{
    static const struct { const char *u; int64_t us; } units[] = {
        { "us", 1 }, { "ms", 1000 }, { "s", 1000000 }, { "sec", 1000000 },
        { "m", 60000000 }, { "min", 60000000 }, { "h", 3600000000LL }, { "d", 86400000000LL },
    };
    int64_t whole = 0, frac = 0, scale = 1, unit = 1000, r;   /* a bare number is milliseconds */
    bool overflow = false;
    const char *end;

    if (s == NULL)
        return WEIR_EPARSE;
    while (*s == ' ')
        s++;
    if (!isdigit((unsigned char)*s))
        return WEIR_EPARSE;
    for (; isdigit((unsigned char)*s); s++)
        if (__builtin_mul_overflow(whole, 10, &whole) || __builtin_add_overflow(whole, *s - '0', &whole))
            overflow = true;
    if (*s == '.') {
        s++;
        if (!isdigit((unsigned char)*s))
            return WEIR_EPARSE;
        for (; isdigit((unsigned char)*s); s++) {
            if (scale < 1000000000000000000LL) {     /* digits past 10^-18 cannot matter */
                frac = frac * 10 + (*s - '0');
                scale *= 10;
            }
        }
    }
    end = s;
    while (*end == ' ')
        end++;
    if (*end != '\0') {
        size_t k, n = strlen(end);
        while (n > 0 && end[n - 1] == ' ')
            n--;
        for (k = 0; k < sizeof(units) / sizeof(units[0]); k++)
            if (strlen(units[k].u) == n && strncmp(end, units[k].u, n) == 0)
                break;
        if (k == sizeof(units) / sizeof(units[0]))
            return WEIR_EPARSE;
        unit = units[k].us;
    }
    if (overflow || __builtin_mul_overflow(whole, unit, &r) ||
        __builtin_add_overflow(r, (int64_t)((__int128)frac * unit / scale), &r))
        return WEIR_ERANGE;
    *out_us = r;
    return 0;
}
