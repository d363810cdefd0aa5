/* runtime/core/json_row.c -- rows to and from JSON objects, on the hot path.
 *
 * Parsing tokenizes with jsmn into a token array kept by the reader (grown
 * only when a record has more tokens than any before). jsmn matches brackets
 * and quotes and checks escapes, but lets through what a JSON reader must
 * not: missing or extra commas and colons, "tru" for true, "01" or "0x10"
 * for numbers. One linear pass over the tokens (parent links, no stack)
 * checks the text between tokens and every literal, so a record is either
 * JSON or a dead letter. Then the top-level object's keys are matched
 * against the schema's field names by length and bytes (an escaped key is
 * unescaped into a buffer of the reader first). Values are converted in
 * place; strings are unescaped into the batch's arena. Nothing is allocated
 * per record once the reader and the batch are warm. A record that fails
 * leaves the batch's rows as they were (string bytes it already copied stay
 * in the arena until the batch is cleared).
 */
#define JSMN_STATIC
#define JSMN_PARENT_LINKS
#define JSMN_STRICT
#include <jsmn.h>

#include "json_row.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct weir_json_reader {
    const weir_schema_t *schema;
    size_t              *name_len;     /* per field */
    jsmntok_t           *toks;
    unsigned             ntoks;
    unsigned char       *seen;         /* per field, per record */
    char                *keybuf;       /* an escaped key, unescaped */
    size_t               keycap;       /* 6 * longest name + 1: no longer key can match */
};

int
weir_json_reader_create(const weir_schema_t *schema, weir_json_reader_t **out)
{
    weir_json_reader_t *r = calloc(1, sizeof(*r));

    if (r == NULL)
        return WEIR_ENOMEM;
    r->schema = schema;
    r->ntoks = 64;
    r->toks = malloc(r->ntoks * sizeof(*r->toks));
    r->name_len = calloc((size_t)schema->nfields + 1, sizeof(*r->name_len));
    r->seen = calloc((size_t)schema->nfields + 1, 1);
    if (r->toks == NULL || r->name_len == NULL || r->seen == NULL) {
        weir_json_reader_destroy(r);
        return WEIR_ENOMEM;
    }
    for (int i = 0; i < schema->nfields; i++) {
        r->name_len[i] = strlen(schema->fields[i].name);
        if (6 * r->name_len[i] + 1 > r->keycap)
            r->keycap = 6 * r->name_len[i] + 1;   /* "\u0061" is 6 bytes for 1 */
    }
    if ((r->keybuf = malloc(r->keycap + 1)) == NULL) {
        weir_json_reader_destroy(r);
        return WEIR_ENOMEM;
    }
    *out = r;                          /* caller owns: weir_json_reader_destroy() */
    return 0;
}

void
weir_json_reader_destroy(weir_json_reader_t *r)
{
    if (r == NULL)
        return;
    free(r->toks);
    free(r->name_len);
    free(r->seen);
    free(r->keybuf);
    free(r);
}

static int
hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static int
read_u4(const char *p, const char *end, unsigned *out)
{
    unsigned v = 0;

    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0)
            return -1;
        v = v << 4 | (unsigned)h;
    }
    *out = v;
    return 0;
}

/* Unescapes the JSON string body s[0..n) into dst (room for n + 1 bytes:
 * the UTF-8 of an escape is never longer than the escape); NUL-terminated.
 * Returns 0 or WEIR_EPARSE (a bad escape or a lone surrogate). */
static int
unescape_to(char *dst, const char *s, size_t n, uint32_t *outlen)
{
    const char *p = s, *end = s + n;
    char *d = dst;

    while (p < end) {
        unsigned cp, lo;
        if (*p != '\\') {
            *d++ = *p++;
            continue;
        }
        if (++p >= end)
            return WEIR_EPARSE;
        switch (*p++) {
        case '"': *d++ = '"'; break;
        case '\\': *d++ = '\\'; break;
        case '/': *d++ = '/'; break;
        case 'b': *d++ = '\b'; break;
        case 'f': *d++ = '\f'; break;
        case 'n': *d++ = '\n'; break;
        case 'r': *d++ = '\r'; break;
        case 't': *d++ = '\t'; break;
        case 'u':
            if (read_u4(p, end, &cp) != 0)
                return WEIR_EPARSE;
            p += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || read_u4(p + 2, end, &lo) != 0 ||
                    lo < 0xdc00 || lo > 0xdfff)
                    return WEIR_EPARSE;
                p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp <= 0xdfff) {
                return WEIR_EPARSE;
            }
            /* UTF-8 of cp is never longer than the 6+ escape bytes it replaces */
            if (cp < 0x80) {
                *d++ = (char)cp;
            } else if (cp < 0x800) {
                *d++ = (char)(0xc0 | cp >> 6);
                *d++ = (char)(0x80 | (cp & 0x3f));
            } else if (cp < 0x10000) {
                *d++ = (char)(0xe0 | cp >> 12);
                *d++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                *d++ = (char)(0x80 | (cp & 0x3f));
            } else {
                *d++ = (char)(0xf0 | cp >> 18);
                *d++ = (char)(0x80 | ((cp >> 12) & 0x3f));
                *d++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                *d++ = (char)(0x80 | (cp & 0x3f));
            }
            break;
        default:
            return WEIR_EPARSE;
        }
    }
    *d = '\0';
    *outlen = (uint32_t)(d - dst);
    return 0;
}

/* Unescapes s[0..n) into the arena; *out and *outlen get the result.
 * Returns 0, WEIR_ENOMEM or WEIR_EPARSE. */
static int
unescape(weir_arena_t *a, const char *s, size_t n, const char **out, uint32_t *outlen)
{
    char *dst;
    int rc;

    if (n > UINT32_MAX)
        return WEIR_EPARSE;
    if (memchr(s, '\\', n) == NULL) {
        dst = weir_arena_strndup(a, s, n);
        if (dst == NULL)
            return WEIR_ENOMEM;
        *out = dst;
        *outlen = (uint32_t)n;
        return 0;
    }
    dst = weir_arena_alloc(a, n + 1);
    if (dst == NULL)
        return WEIR_ENOMEM;
    if ((rc = unescape_to(dst, s, n, outlen)) != 0)
        return rc;
    *out = dst;
    return 0;
}

/* Index just past the token at i and everything nested in it. */
static unsigned
skip(const jsmntok_t *t, unsigned i, unsigned n)
{
    int end = t[i].end;

    i++;
    while (i < n && t[i].start < end)
        i++;
    return i;
}

/* ---- what jsmn lets through ---------------------------------------------- */

static bool
is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

#define GAP_OK ((size_t)-1)

/* GAP_OK when text[from..to) is whitespace only, else the offset of the
 * first byte that is not. */
static size_t
ws_only(const char *text, size_t from, size_t to)
{
    for (; from < to; from++)
        if (!is_ws(text[from]))
            return from;
    return GAP_OK;
}

/* GAP_OK when text[from..to) is whitespace, one 'sep', whitespace; else the
 * offset of the first byte out of place (to, when the sep is missing). */
static size_t
ws_sep_ws(const char *text, size_t from, size_t to, char sep)
{
    while (from < to && is_ws(text[from]))
        from++;
    if (from == to || text[from] != sep)
        return from;
    return ws_only(text, from + 1, to);
}

static bool
digits(const char *s, size_t n, size_t *i)
{
    size_t start = *i;

    while (*i < n && s[*i] >= '0' && s[*i] <= '9')
        (*i)++;
    return *i > start;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool
json_number_ok(const char *s, size_t n)
{
    size_t i = 0;

    if (i < n && s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i >= n || s[i] < '1' || s[i] > '9' || !digits(s, n, &i))
        return false;
    if (i < n && s[i] == '.') {
        i++;
        if (!digits(s, n, &i))
            return false;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (!digits(s, n, &i))
            return false;
    }
    return i == n;
}

static bool
json_literal_ok(const char *s, size_t n)
{
    switch (s[0]) {
    case 't': return n == 4 && memcmp(s, "true", 4) == 0;
    case 'f': return n == 5 && memcmp(s, "false", 5) == 0;
    case 'n': return n == 4 && memcmp(s, "null", 4) == 0;
    default:  return json_number_ok(s, n);
    }
}

/* Checks the n tokens of a document whose root t[0] is an object: the text
 * between tokens ('{' ws key ws ':' ws value ws ',' ...), each key being a
 * string with exactly one value, every literal and number, and no raw
 * control character in a string. Walks the tokens in document order keeping
 * only the innermost open container (or key) and climbing parent links when
 * the next token lies outside it. Returns GAP_OK, or the byte offset where
 * the text stops being JSON. */
static size_t
validate(const char *text, const jsmntok_t *t, unsigned n)
{
    int c = 0;                                  /* innermost open token */
    size_t cur = (size_t)t[0].start + 1;        /* just past what is checked */
    size_t bad;

    for (unsigned j = 1; j <= n; j++) {
        int parent = j < n ? t[j].parent : -1;
        size_t open;

        /* close whatever ended before token j (everything, after the last) */
        while (c != parent) {
            if (c < 0)
                return cur;
            if (t[c].type == JSMN_STRING) {     /* a key closes with its value */
                if (cur == (size_t)t[c].end + 1) {
                    /* ... which never came: '{"k"}', '{"k":}' */
                    size_t close = (size_t)t[t[c].parent].end - 1;
                    bad = ws_sep_ws(text, cur, close, ':');
                    return bad != GAP_OK ? bad : close;
                }
            } else {
                if ((bad = ws_only(text, cur, (size_t)t[c].end - 1)) != GAP_OK)
                    return bad;
                cur = (size_t)t[c].end;
            }
            c = t[c].parent;
        }
        if (j == n)
            break;
        open = t[j].type == JSMN_STRING ? (size_t)t[j].start - 1 : (size_t)t[j].start;
        if (open < cur)
            return cur;
        switch (t[c].type) {
        case JSMN_STRING:                       /* j is the value of key c... */
            if (cur == (size_t)t[c].end + 1) {
                bad = ws_sep_ws(text, cur, open, ':');
            } else {                            /* ...or a second one: a ',' is missing */
                bad = ws_only(text, cur, open);
                if (bad == GAP_OK)
                    bad = open;
            }
            break;
        case JSMN_OBJECT:                       /* j is a key */
        case JSMN_ARRAY:
            bad = cur == (size_t)t[c].start + 1 ? ws_only(text, cur, open)
                                                : ws_sep_ws(text, cur, open, ',');
            if (bad == GAP_OK && t[c].type == JSMN_OBJECT && t[j].type != JSMN_STRING)
                bad = open;
            break;
        default:
            bad = open;
            break;
        }
        if (bad != GAP_OK)
            return bad;
        switch (t[j].type) {
        case JSMN_PRIMITIVE:
            if (!json_literal_ok(text + t[j].start, (size_t)(t[j].end - t[j].start)))
                return open;
            cur = (size_t)t[j].end;
            break;
        case JSMN_STRING:
            for (int k = t[j].start; k < t[j].end; k++)
                if ((unsigned char)text[k] < 0x20)
                    return (size_t)k;
            cur = (size_t)t[j].end + 1;
            if (t[c].type == JSMN_OBJECT)
                c = (int)j;                     /* a key: open until its value is done */
            break;
        default:
            cur = (size_t)t[j].start + 1;
            c = (int)j;
            break;
        }
    }
    return GAP_OK;
}

/* jsmn (with parent links) closes a bracket by climbing from the newest
 * token to the innermost open one, so each close costs the depth it climbs
 * and [[[...]]] costs depth^2 / 2 steps: seconds for a few hundred KB. A
 * linear pre-scan bounds the nesting first (Jackson's default bound is
 * 1000; records nest a few levels). Returns the offset of the first bracket
 * deeper than JSON_MAX_DEPTH, or (size_t)-1. */
#define JSON_MAX_DEPTH 256

static size_t
too_deep(const char *s, size_t n)
{
    int depth = 0;
    bool in_str = false;

    for (size_t i = 0; i < n && s[i] != '\0'; i++) {     /* jsmn stops at a NUL too */
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > JSON_MAX_DEPTH)
                return i;
        } else if (c == ']' || c == '}') {
            depth--;
        }
    }
    return (size_t)-1;
}

/* ---- values ---------------------------------------------------------------- */

static const char *
tok_kind(const char *text, const jsmntok_t *t)
{
    switch (t->type) {
    case JSMN_OBJECT: return "object";
    case JSMN_ARRAY: return "array";
    case JSMN_STRING: return "string";
    default:
        if (text[t->start] == 't' || text[t->start] == 'f') return "bool";
        if (text[t->start] == 'n') return "null";
        return "number";
    }
}

/* A valid JSON number as an int64: exact digits when it has no fraction or
 * exponent, else through double when integral. Returns 0 or WEIR_ERANGE
 * (too big, or not integral). */
static int
number_to_int(const char *s, size_t n, int64_t *out)
{
    if (memchr(s, '.', n) == NULL && memchr(s, 'e', n) == NULL && memchr(s, 'E', n) == NULL) {
        bool neg = s[0] == '-';
        uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        for (size_t i = neg; i < n; i++) {
            unsigned dgt = (unsigned)(s[i] - '0');
            if (v > (lim - dgt) / 10)
                return WEIR_ERANGE;
            v = v * 10 + dgt;
        }
        *out = neg ? (int64_t)(0 - v) : (int64_t)v;
        return 0;
    } else {
        /* the number is valid JSON and followed by a delimiter, so strtod
         * stops at its end */
        double d = strtod(s, NULL);
        if (!isfinite(d) || d != floor(d) || d < -9223372036854775808.0 || d >= 9223372036854775808.0)
            return WEIR_ERANGE;
        *out = (int64_t)d;
        return 0;
    }
}

static int
convert(weir_batch_t *b, const weir_field_t *f, const char *text, const jsmntok_t *t,
        weir_value_t *v, weir_err_t *err)
{
    const char *s = text + t->start;
    size_t n = (size_t)(t->end - t->start);
    int show = (int)(n < 40 ? n : 40);
    bool num = t->type == JSMN_PRIMITIVE && s[0] != 't' && s[0] != 'f' && s[0] != 'n';
    int rc;

    if (t->type == JSMN_PRIMITIVE && s[0] == 'n') {
        if (!f->nullable)
            return weir_err_set(err, WEIR_ETYPE, "field '%s': null for a non-nullable %s",
                                f->name, weir_type_name(f->type));
        *v = weir_value_null(f->type);
        return 0;
    }
    v->null = 0;
    v->type = (uint8_t)f->type;
    switch (f->type) {
    case WEIR_T_INT:
        if (!num)
            break;
        if (number_to_int(s, n, &v->u.i) != 0)
            return weir_err_set(err, WEIR_ETYPE, "field '%s': %.*s is not an integer in range",
                                f->name, show, s);
        return 0;
    case WEIR_T_DOUBLE:
        if (!num)
            break;
        v->u.d = strtod(s, NULL);                /* valid JSON, ends at a delimiter */
        if (!isfinite(v->u.d))
            return weir_err_set(err, WEIR_EPARSE, "field '%s': bad number '%.*s'", f->name, show, s);
        return 0;
    case WEIR_T_BOOL:
        if (t->type != JSMN_PRIMITIVE || (s[0] != 't' && s[0] != 'f'))
            break;
        v->u.b = s[0] == 't';
        return 0;
    case WEIR_T_STRING:
    case WEIR_T_BYTES:
        if (t->type != JSMN_STRING)
            break;
        rc = unescape(&b->arena, s, n, &v->u.s, &v->len);
        if (rc == WEIR_ENOMEM)
            return weir_err_set(err, rc, "out of memory");
        if (rc != 0)
            return weir_err_set(err, WEIR_EPARSE, "field '%s': bad string escape", f->name);
        return 0;
    case WEIR_T_TIMESTAMP:
        if (t->type == JSMN_STRING) {
            if (weir_ts_parse(s, n, &v->u.i) != 0)
                return weir_err_set(err, WEIR_EPARSE, "field '%s': bad timestamp '%.*s'",
                                    f->name, show, s);
            return 0;
        }
        if (num) {
            int64_t ms;
            if (number_to_int(s, n, &ms) != 0 || ms > INT64_MAX / 1000 || ms < INT64_MIN / 1000)
                return weir_err_set(err, WEIR_EPARSE, "field '%s': bad epoch milliseconds '%.*s'",
                                    f->name, show, s);
            v->u.i = ms * 1000;
            return 0;
        }
        break;
    case WEIR_T_NULL:
        break;
    }
    return weir_err_set(err, WEIR_ETYPE, "field '%s': expected %s, got %s", f->name,
                        weir_type_name(f->type), tok_kind(text, t));
}

/* The schema field named by key token k, or -1 (unknown keys are ignored). */
static int
find_field(weir_json_reader_t *r, const char *text, const jsmntok_t *k)
{
    const weir_schema_t *sc = r->schema;
    const char *key = text + k->start;
    size_t kl = (size_t)(k->end - k->start);

    if (memchr(key, '\\', kl) != NULL) {
        uint32_t ul;
        if (kl >= r->keycap || unescape_to(r->keybuf, key, kl, &ul) != 0)
            return -1;                  /* too long to be a field, or not a name we have */
        key = r->keybuf;
        kl = ul;
    }
    for (int f = 0; f < sc->nfields; f++)
        if (r->name_len[f] == kl && memcmp(sc->fields[f].name, key, kl) == 0)
            return f;
    return -1;
}

int
weir_json_reader_parse(weir_json_reader_t *r, const char *text, size_t len, weir_batch_t *b,
                       weir_err_t *err)
{
    const weir_schema_t *sc = r->schema;
    jsmn_parser p;
    weir_value_t *row;
    size_t bad;
    int n, rc;
    unsigned i, ntok;

    if (len > INT32_MAX)                         /* jsmn's offsets are ints */
        return weir_err_set(err, WEIR_EPARSE, "record too large (%zu bytes)", len);
    if ((bad = too_deep(text, len)) != (size_t)-1)
        return weir_err_set(err, WEIR_EPARSE, "not valid JSON (nested deeper than %d at byte %zu)",
                            JSON_MAX_DEPTH, bad);
    for (;;) {
        jsmn_init(&p);
        n = jsmn_parse(&p, text, len, r->toks, r->ntoks);
        if (n != JSMN_ERROR_NOMEM)
            break;
        if (r->ntoks >= (1u << 24))
            return weir_err_set(err, WEIR_EPARSE, "record too large (more than %u JSON tokens)",
                                r->ntoks);
        jsmntok_t *t = realloc(r->toks, (size_t)r->ntoks * 2 * sizeof(*t));
        if (t == NULL)
            return weir_err_set(err, WEIR_ENOMEM, "out of memory");
        r->toks = t;
        r->ntoks *= 2;
    }
    if (n < 0)
        return weir_err_set(err, WEIR_EPARSE, "not valid JSON (%s)",
                            n == JSMN_ERROR_PART ? "truncated" : "invalid character");
    if (n == 0 || r->toks[0].type != JSMN_OBJECT)
        return weir_err_set(err, WEIR_EPARSE, "not a JSON object");
    ntok = (unsigned)n;
    /* jsmn accepts trailing garbage after a complete value; we do not */
    for (size_t k = (size_t)r->toks[0].end; k < len; k++)
        if (!is_ws(text[k]))
            return weir_err_set(err, WEIR_EPARSE, "not valid JSON (trailing characters)");
    if (ws_only(text, 0, (size_t)r->toks[0].start) != GAP_OK)
        return weir_err_set(err, WEIR_EPARSE, "not valid JSON (invalid character)");
    if ((bad = validate(text, r->toks, ntok)) != GAP_OK) {
        unsigned char ch = bad < len ? (unsigned char)text[bad] : 0;
        if (ch >= 0x20 && ch < 0x7f)
            return weir_err_set(err, WEIR_EPARSE, "not valid JSON (unexpected '%c' at byte %zu)", ch, bad);
        return weir_err_set(err, WEIR_EPARSE, "not valid JSON (unexpected byte 0x%02x at byte %zu)",
                            ch, bad);
    }

    row = weir_batch_append(b);
    if (row == NULL)
        return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    memset(r->seen, 0, (size_t)sc->nfields);
    for (i = 1; i < ntok;) {
        int f = find_field(r, text, &r->toks[i]);   /* validate() made i a key, i + 1 its value */

        if (f >= 0 && !r->seen[f]) {
            if ((rc = convert(b, &sc->fields[f], text, &r->toks[i + 1], &row[f], err)) != 0)
                goto fail;
            r->seen[f] = 1;
        }
        i = skip(r->toks, i + 1, ntok);
    }
    for (int f = 0; f < sc->nfields; f++) {
        if (r->seen[f])
            continue;
        if (!sc->fields[f].nullable) {
            rc = weir_err_set(err, WEIR_ETYPE, "missing required field '%s'", sc->fields[f].name);
            goto fail;
        }
        row[f] = weir_value_null(sc->fields[f].type);
    }
    return 0;

fail:
    weir_batch_pop(b);
    return rc;
}

/* ---- writing ------------------------------------------------------------ */

int
weir_json_write_value(const weir_value_t *v, weir_buf_t *out)
{
    char tmp[40];
    int n;

    if (v->null)
        return weir_buf_append(out, "null", 4);
    switch ((weir_type_t)v->type) {
    case WEIR_T_INT:
        n = snprintf(tmp, sizeof(tmp), "%lld", (long long)v->u.i);
        return weir_buf_append(out, tmp, (size_t)n);
    case WEIR_T_DOUBLE:
        if (!isfinite(v->u.d))
            return weir_buf_append(out, "null", 4);
        /* the shortest %.Ng that reads back the same: 15 digits always do
         * when 15 suffice (DBL_DIG), except for subnormals, which carry
         * fewer digits; so 19.99 stays 19.99 and 0.1 + 0.2 needs 17 */
        for (int prec = fabs(v->u.d) < 2.2250738585072014e-308 ? 1 : 15; ; prec++) {
            n = snprintf(tmp, sizeof(tmp), "%.*g", prec, v->u.d);
            if (prec == 17 || strtod(tmp, NULL) == v->u.d)
                break;
        }
        if (strpbrk(tmp, ".eE") == NULL) {       /* keep it a double: 3 -> 3.0 */
            tmp[n++] = '.';
            tmp[n++] = '0';
        }
        return weir_buf_append(out, tmp, (size_t)n);
    case WEIR_T_BOOL:
        return v->u.b ? weir_buf_append(out, "true", 4) : weir_buf_append(out, "false", 5);
    case WEIR_T_TIMESTAMP:
        weir_ts_format(v->u.i, tmp);
        return weir_buf_append_json_str(out, tmp, strlen(tmp));
    case WEIR_T_STRING:
    case WEIR_T_BYTES:
        return weir_buf_append_json_str(out, v->u.s, v->len);
    case WEIR_T_NULL:
        break;
    }
    return weir_buf_append(out, "null", 4);
}

int
weir_json_write_row(const weir_schema_t *schema, const weir_value_t *row, weir_buf_t *out)
{
    int rc = weir_buf_putc(out, '{');

    for (int i = 0; i < schema->nfields && rc == 0; i++) {
        const weir_field_t *f = &schema->fields[i];
        if (i > 0)
            rc = weir_buf_putc(out, ',');
        if (rc == 0)
            rc = weir_buf_append_json_str(out, f->name, strlen(f->name));
        if (rc == 0)
            rc = weir_buf_putc(out, ':');
        if (rc == 0)
            rc = weir_json_write_value(&row[i], out);
    }
    return rc == 0 ? weir_buf_putc(out, '}') : rc;
}
