/* runtime/core/json_row.c -- rows to and from JSON objects, on the hot path.
 *
 * Parsing tokenizes with jsmn into a token array kept by the reader (grown
 * only when a record has more tokens than any before), then walks the
 * top-level object's keys, matching each against the schema's field names by
 * length and bytes. Values are converted in place; strings are unescaped into
 * the batch's arena. Nothing is allocated per record once the reader and the
 * batch are warm. A record that fails leaves the batch as it was.
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
    for (int i = 0; i < schema->nfields; i++)
        r->name_len[i] = strlen(schema->fields[i].name);
    *out = r;
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

/* Unescapes s[0..n) into the arena; *out and *outlen get the result. */
static int
unescape(weir_arena_t *a, const char *s, size_t n, const char **out, uint32_t *outlen)
{
    const char *p = s, *end = s + n;
    char *dst, *d;

    if (memchr(s, '\\', n) == NULL) {
        dst = weir_arena_strndup(a, s, n);
        if (dst == NULL)
            return WEIR_ENOMEM;
        *out = dst;
        *outlen = (uint32_t)n;
        return 0;
    }
    dst = d = weir_arena_alloc(a, n + 1);
    if (dst == NULL)
        return WEIR_ENOMEM;
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
    *out = dst;
    *outlen = (uint32_t)(d - dst);
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

static int
parse_number(const char *s, size_t n, bool want_int, int64_t *iv, double *dv)
{
    char buf[64], *end;

    if (n == 0 || n >= sizeof(buf))
        return WEIR_EPARSE;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    if (want_int && strpbrk(buf, ".eE") == NULL) {
        long long v = strtoll(buf, &end, 10);
        if (*end != '\0')
            return WEIR_EPARSE;
        if (errno == ERANGE)
            return WEIR_ERANGE;
        *iv = v;
        return 0;
    }
    *dv = strtod(buf, &end);
    if (*end != '\0' || !isfinite(*dv))
        return WEIR_EPARSE;
    if (want_int) {
        if (*dv != floor(*dv) || *dv < -9223372036854775808.0 || *dv >= 9223372036854775808.0)
            return WEIR_ERANGE;
        *iv = (int64_t)*dv;
    }
    return 0;
}

static int
convert(weir_batch_t *b, const weir_field_t *f, const char *text, const jsmntok_t *t,
        weir_value_t *v, weir_err_t *err)
{
    const char *s = text + t->start;
    size_t n = (size_t)(t->end - t->start);
    bool prim = t->type == JSMN_PRIMITIVE;
    int rc;

    if (prim && s[0] == 'n') {
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
        if (!prim || s[0] == 't' || s[0] == 'f')
            break;
        rc = parse_number(s, n, true, &v->u.i, &v->u.d);
        if (rc == WEIR_ERANGE)
            return weir_err_set(err, rc, "field '%s': %.*s is not an integer in range",
                                f->name, (int)(n < 40 ? n : 40), s);
        if (rc != 0)
            return weir_err_set(err, rc, "field '%s': bad number '%.*s'", f->name,
                                (int)(n < 40 ? n : 40), s);
        return 0;
    case WEIR_T_DOUBLE:
        if (!prim || s[0] == 't' || s[0] == 'f')
            break;
        if ((rc = parse_number(s, n, false, &v->u.i, &v->u.d)) != 0)
            return weir_err_set(err, rc, "field '%s': bad number '%.*s'", f->name,
                                (int)(n < 40 ? n : 40), s);
        return 0;
    case WEIR_T_BOOL:
        if (!prim || (s[0] != 't' && s[0] != 'f'))
            break;
        v->u.b = s[0] == 't';
        return 0;
    case WEIR_T_STRING:
    case WEIR_T_BYTES:
        if (t->type != JSMN_STRING)
            break;
        if (unescape(&b->arena, s, n, &v->u.s, &v->len) != 0)
            return weir_err_set(err, WEIR_EPARSE, "field '%s': bad string escape", f->name);
        return 0;
    case WEIR_T_TIMESTAMP:
        if (t->type == JSMN_STRING) {
            if (weir_ts_parse(s, n, &v->u.i) != 0)
                return weir_err_set(err, WEIR_EPARSE, "field '%s': bad timestamp '%.*s'",
                                    f->name, (int)(n < 40 ? n : 40), s);
            return 0;
        }
        if (prim && s[0] != 't' && s[0] != 'f') {
            int64_t ms;
            double d;
            if (parse_number(s, n, true, &ms, &d) != 0 || ms > INT64_MAX / 1000 || ms < INT64_MIN / 1000)
                return weir_err_set(err, WEIR_EPARSE, "field '%s': bad epoch milliseconds '%.*s'",
                                    f->name, (int)(n < 40 ? n : 40), s);
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

int
weir_json_reader_parse(weir_json_reader_t *r, const char *text, size_t len, weir_batch_t *b,
                       weir_err_t *err)
{
    const weir_schema_t *sc = r->schema;
    jsmn_parser p;
    weir_value_t *row;
    int n;
    unsigned i, ntok;

    for (;;) {
        jsmn_init(&p);
        n = jsmn_parse(&p, text, len, r->toks, r->ntoks);
        if (n != JSMN_ERROR_NOMEM)
            break;
        jsmntok_t *t = realloc(r->toks, (size_t)r->ntoks * 2 * sizeof(*t));
        if (t == NULL || r->ntoks > (1u << 24))
            return weir_err_set(err, WEIR_ENOMEM, "record too large");
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
        if (text[k] != ' ' && text[k] != '\t' && text[k] != '\r' && text[k] != '\n')
            return weir_err_set(err, WEIR_EPARSE, "not valid JSON (trailing characters)");

    row = weir_batch_append(b);
    if (row == NULL)
        return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    memset(r->seen, 0, (size_t)sc->nfields);
    for (i = 1; i < ntok;) {
        const jsmntok_t *k = &r->toks[i];
        size_t kl = (size_t)(k->end - k->start);
        int f;

        if (k->type != JSMN_STRING || i + 1 >= ntok)
            goto bad_json;
        for (f = 0; f < sc->nfields; f++)
            if (r->name_len[f] == kl && memcmp(sc->fields[f].name, text + k->start, kl) == 0)
                break;
        if (f < sc->nfields && !r->seen[f]) {
            if (convert(b, &sc->fields[f], text, &r->toks[i + 1], &row[f], err) != 0)
                goto fail;
            r->seen[f] = 1;
        }
        i = skip(r->toks, i + 1, ntok);
    }
    for (int f = 0; f < sc->nfields; f++) {
        if (r->seen[f])
            continue;
        if (!sc->fields[f].nullable) {
            weir_err_set(err, WEIR_ETYPE, "missing required field '%s'", sc->fields[f].name);
            goto fail;
        }
        row[f] = weir_value_null(sc->fields[f].type);
    }
    return 0;

bad_json:
    weir_err_set(err, WEIR_EPARSE, "not valid JSON (object key expected)");
fail:
    b->nrows--;
    return err != NULL ? err->code : WEIR_EPARSE;
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
        /* the shortest of %.15g / %.17g that reads back the same */
        n = snprintf(tmp, sizeof(tmp), "%.15g", v->u.d);
        if (strtod(tmp, NULL) != v->u.d)
            n = snprintf(tmp, sizeof(tmp), "%.17g", v->u.d);
        if (strpbrk(tmp, ".eEn") == NULL) {      /* keep it a double: 3 -> 3.0 */
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
