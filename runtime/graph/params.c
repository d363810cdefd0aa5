/* runtime/graph/params.c -- a node's parameters: substitution, typed
 * getters, located errors and did-you-mean.
 *
 * Operator kinds read their parameters at plan time through these getters,
 * never through libfyaml, so every kind reports a bad value the same way:
 *
 *   jobs/counts.yaml:14:14: operator 'big': parameter 'count' must be an
 *   integer, got 'ten'
 *
 * A parameter is a key of the node's mapping. A key whose value is YAML null
 * (nothing after the colon, `~`, `null`) counts as absent for the optional
 * getters, which then return their default, and as "has no value" for the
 * required ones. Keys are names: they are never substituted.
 *
 * Substitution happens when a scalar is read, not when the file is parsed, so
 * a variable that only an unused parameter mentions is never asked for:
 *
 *   ${NAME}            the variable's value; an error when it is not set
 *   ${NAME:-default}   the value, or default when it is unset or empty
 *                      (default may itself hold references and $$)
 *   $$                 a literal $
 *   $ anything else    itself (regular expressions keep their anchors)
 *
 * Values come from the job file's vars (jobctl's -D, the REST request), then
 * from the environment when vars.use_env is set (local tools only: a job
 * manager must not leak its own environment into jobs). A value is inserted
 * as is; it is never scanned for references again.
 *
 * Positions: libfyaml gives a scalar's token with 0-based marks; collections
 * and empty scalars have no token, so jobfile.c records their start marks
 * when it parses the file (weir__jobfile_node_mark). Messages print 1-based
 * line and column, counted in characters like libfyaml does.
 */
#include "jobfile.h"

#include <ctype.h>
#include <errno.h>
#include <libfyaml.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/buf.h"
#include "../core/expr.h"
#include "../core/value.h"

/* Defined in jobfile.c: the 0-based start of a node recorded at parse time
 * (collections and tokenless scalars). False when unknown. */
bool weir__jobfile_node_mark(const weir_jobfile_t *jf, struct fy_node *node, int *line, int *col);

#define SUBST_MAX_DEPTH 8         /* nested ${A:-${B:-...}} defaults */
#define SCHEMA_MAX_FIELDS 1024

const char *const weir_params_common_keys[] = {
    "name", "kind", "input", "inputs", "parallelism", "partition", "key_by", "when",
    "watermark", NULL,
};

/* ---- variables ------------------------------------------------------- */

void
weir_vars_free(weir_vars_t *v)
{
    if (v == NULL)
        return;
    for (int i = 0; i < v->n; i++) {
        free(v->keys[i]);
        free(v->vals[i]);
    }
    free(v->keys);
    free(v->vals);
    v->n = 0;
    v->keys = NULL;
    v->vals = NULL;
}

int
weir_vars_set(weir_vars_t *v, const char *key, const char *val)
{
    char **keys, **vals, *k, *copy;

    if (v == NULL || key == NULL || val == NULL)
        return WEIR_EINVAL;
    copy = strdup(val);
    if (copy == NULL)
        return WEIR_ENOMEM;
    for (int i = 0; i < v->n; i++) {
        if (strcmp(v->keys[i], key) == 0) {
            free(v->vals[i]);
            v->vals[i] = copy;
            return 0;
        }
    }
    k = strdup(key);
    keys = realloc(v->keys, (size_t)(v->n + 1) * sizeof(*keys));
    if (keys != NULL)
        v->keys = keys;
    vals = realloc(v->vals, (size_t)(v->n + 1) * sizeof(*vals));
    if (vals != NULL)
        v->vals = vals;
    if (k == NULL || keys == NULL || vals == NULL) {
        free(k);
        free(copy);
        return WEIR_ENOMEM;
    }
    v->keys[v->n] = k;
    v->vals[v->n] = copy;
    v->n++;
    return 0;
}

/* The value of name (len bytes), borrowed, or NULL when it is not set. */
static const char *
vars_get(const weir_vars_t *v, const char *name, size_t len)
{
    char buf[256];

    for (int i = 0; i < v->n; i++)
        if (strlen(v->keys[i]) == len && memcmp(v->keys[i], name, len) == 0)
            return v->vals[i];
    if (!v->use_env || len >= sizeof(buf))
        return NULL;
    memcpy(buf, name, len);
    buf[len] = '\0';
    return getenv(buf);
}

static bool
is_name_start(char c)
{
    return isalpha((unsigned char)c) || c == '_';
}

static bool
is_name_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

/* Length of the ${NAME:-default} default starting at s (just after ":-"),
 * up to but excluding its closing brace; -1 when the brace is missing.
 * Nested ${...} and $$ are skipped whole. */
static long
default_len(const char *s, size_t len)
{
    int depth = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] == '$' && i + 1 < len && s[i + 1] == '$') {
            i++;
        } else if (s[i] == '$' && i + 1 < len && s[i + 1] == '{') {
            depth++;
            i++;
        } else if (s[i] == '}') {
            if (depth == 0)
                return (long)i;
            depth--;
        }
    }
    return -1;
}

int
weir_jobfile_var_refs(const char *text, size_t len, char ***names, int *n)
{
    char **list = NULL, **grown;
    int count = 0;
    size_t i = 0;

    *names = NULL;
    *n = 0;
    while (i < len) {
        size_t start, nlen;
        bool seen = false;

        if (text[i] != '$' || i + 1 >= len) {
            i++;
            continue;
        }
        if (text[i + 1] == '$') {
            i += 2;
            continue;
        }
        if (text[i + 1] != '{' || i + 2 >= len || !is_name_start(text[i + 2])) {
            i++;
            continue;
        }
        start = i + 2;
        nlen = 0;
        while (start + nlen < len && is_name_char(text[start + nlen]))
            nlen++;
        i = start + nlen;
        /* only well-formed references count: ${NAME} or ${NAME:-... */
        if (i >= len || !(text[i] == '}' || (text[i] == ':' && i + 1 < len && text[i + 1] == '-')))
            continue;
        for (int k = 0; k < count && !seen; k++)
            seen = strlen(list[k]) == nlen && memcmp(list[k], text + start, nlen) == 0;
        if (seen)
            continue;
        grown = realloc(list, (size_t)(count + 1) * sizeof(*list));
        if (grown == NULL)
            goto fail;
        list = grown;
        list[count] = strndup(text + start, nlen);
        if (list[count] == NULL)
            goto fail;
        count++;
    }
    *names = list;
    *n = count;
    return 0;

fail:
    weir_str_list_free(list, count);
    return WEIR_ENOMEM;
}

/* ---- positions and errors -------------------------------------------- */

/* Characters (not bytes) in s[0..n): libfyaml counts columns in characters. */
static int
utf8_chars(const char *s, size_t n)
{
    int c = 0;

    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            c++;
    return c;
}

/* 1-based position of node n; false when unknown. */
static bool
node_loc(const weir_jobfile_t *jf, struct fy_node *n, int *line, int *col)
{
    struct fy_token *tok;
    const struct fy_mark *m;

    if (n == NULL)
        return false;
    tok = fy_node_is_scalar(n) ? fy_node_get_scalar_token(n) : NULL;
    m = tok != NULL ? fy_token_start_mark(tok) : NULL;
    if (m != NULL && m->line >= 0) {
        int c = m->column;
        enum fy_node_style st = fy_node_get_style(n);

        /* a block scalar's token starts at the beginning of its first
         * content line: point at the text instead; a quoted scalar's and
         * an alias's start after the quote or '*': point at that */
        if ((st == FYNS_LITERAL || st == FYNS_FOLDED) && jf->text != NULL)
            for (size_t pos = m->input_pos; pos < jf->text_len && jf->text[pos] == ' '; pos++)
                c++;
        if ((st == FYNS_SINGLE_QUOTED || st == FYNS_DOUBLE_QUOTED || st == FYNS_ALIAS) &&
            jf->text != NULL && m->input_pos > 0 && m->input_pos <= jf->text_len && c > 0 &&
            jf->text[m->input_pos - 1] == (st == FYNS_SINGLE_QUOTED ? '\''
                                           : st == FYNS_DOUBLE_QUOTED ? '"' : '*'))
            c--;
        *line = m->line + 1;
        *col = c + 1;
        return true;
    }
    if (weir__jobfile_node_mark(jf, n, line, col)) {
        (*line)++;
        (*col)++;
        return true;
    }
    return false;
}

/* The pair of map whose key is the plain name key, or NULL. */
static struct fy_node_pair *
map_pair(struct fy_node *map, const char *key)
{
    struct fy_node_pair *pair;
    void *iter = NULL;
    size_t klen = strlen(key);

    if (map == NULL || !fy_node_is_mapping(map))
        return NULL;
    while ((pair = fy_node_mapping_iterate(map, &iter)) != NULL) {
        struct fy_node *k = fy_node_pair_key(pair);
        const char *t;
        size_t len;

        if (k == NULL || !fy_node_is_scalar(k) || fy_node_is_alias(k))
            continue;
        t = fy_node_get_scalar(k, &len);
        if (t != NULL && len == klen && memcmp(t, key, len) == 0)
            return pair;
    }
    return NULL;
}

/* YAML null: a missing node, or a plain "", "~", "null". */
static bool
node_is_null(struct fy_node *n)
{
    const char *t;
    size_t len;

    if (n == NULL)
        return true;
    if (!fy_node_is_scalar(n) || fy_node_get_style(n) != FYNS_PLAIN)
        return false;
    t = fy_node_get_scalar(n, &len);
    return t == NULL || len == 0 ||
           (len == 1 && t[0] == '~') ||
           (len == 4 && (memcmp(t, "null", 4) == 0 || memcmp(t, "Null", 4) == 0 ||
                         memcmp(t, "NULL", 4) == 0));
}

static const char *
node_noun(struct fy_node *n)
{
    if (n == NULL || node_is_null(n))
        return "empty";
    if (fy_node_is_mapping(n))
        return "a mapping";
    if (fy_node_is_sequence(n))
        return "a list";
    return "a single value";
}

void
weir_params_loc(const weir_params_t *p, const char *key, int *line, int *col)
{
    struct fy_node_pair *pair = key != NULL ? map_pair(p->node, key) : NULL;

    *line = 0;
    *col = 0;
    if (pair != NULL) {
        if (node_loc(p->jf, fy_node_pair_value(pair), line, col) ||
            node_loc(p->jf, fy_node_pair_key(pair), line, col))
            return;
    }
    node_loc(p->jf, p->node, line, col);
}

static int
verror_line(const weir_params_t *p, int line, int col, int code, weir_err_t *err,
            const char *fmt, va_list ap)
{
    char msg[WEIR_ERR_MSG_MAX];
    const char *path = p->jf != NULL && p->jf->path != NULL ? p->jf->path : "<job>";

    if (err == NULL)
        return code;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    if (line > 0)
        return weir_err_set(err, code, "%s:%d:%d: %s%s%s", path, line, col,
                            p->what ? p->what : "", p->what ? ": " : "", msg);
    return weir_err_set(err, code, "%s: %s%s%s", path,
                        p->what ? p->what : "", p->what ? ": " : "", msg);
}

int
weir_params_error(const weir_params_t *p, const char *key, int code, weir_err_t *err,
                  const char *fmt, ...)
{
    va_list ap;
    int line, col;

    weir_params_loc(p, key, &line, &col);
    va_start(ap, fmt);
    verror_line(p, line, col, code, err, fmt, ap);
    va_end(ap);
    return code;
}

/* An error located at node n (a key, a list item) with p's path and what. */
static int
node_error(const weir_params_t *p, struct fy_node *n, int code, weir_err_t *err,
           const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
node_error(const weir_params_t *p, struct fy_node *n, int code, weir_err_t *err,
           const char *fmt, ...)
{
    weir_params_t at = { .jf = p->jf, .node = n, .what = p->what };
    va_list ap;
    int line, col;

    weir_params_loc(&at, NULL, &line, &col);
    if (line == 0)
        weir_params_loc(p, NULL, &line, &col);
    va_start(ap, fmt);
    verror_line(p, line, col, code, err, fmt, ap);
    va_end(ap);
    return code;
}

/* 1-based position of byte 'off' of scalar n's text; false when the source
 * cannot be matched to the text (escapes, folding, substitution before
 * 'off'), in which case the caller points at the scalar itself. */
static bool
offset_loc(const weir_jobfile_t *jf, struct fy_node *n, size_t off, int *line, int *col)
{
    const struct fy_mark *sm, *em;
    struct fy_token *tok;
    enum fy_node_style st;
    const char *val;
    size_t vlen;

    if (n == NULL || !fy_node_is_scalar(n) || fy_node_is_alias(n) || jf->text == NULL)
        return false;
    tok = fy_node_get_scalar_token(n);
    val = fy_node_get_scalar(n, &vlen);
    if (tok == NULL || val == NULL || off > vlen || memchr(val, '$', off) != NULL)
        return false;
    sm = fy_token_start_mark(tok);
    em = fy_token_end_mark(tok);
    if (sm == NULL || em == NULL || em->input_pos > jf->text_len || sm->input_pos > em->input_pos)
        return false;
    st = fy_node_get_style(n);

    if ((st == FYNS_PLAIN || st == FYNS_SINGLE_QUOTED || st == FYNS_DOUBLE_QUOTED) &&
        sm->line == em->line) {
        /* the token of a quoted scalar may start at its quote or just
         * after it, depending on the libfyaml version */
        char quote = st == FYNS_SINGLE_QUOTED ? '\'' : st == FYNS_DOUBLE_QUOTED ? '"' : 0;
        size_t content = sm->input_pos;
        int c0 = sm->column;

        if (quote != 0 && content < jf->text_len && jf->text[content] == quote) {
            content++;
            c0++;
        }
        if (content + off > jf->text_len || memcmp(jf->text + content, val, off) != 0 ||
            (quote != 0 && memchr(val, quote, off) != NULL) ||
            (st == FYNS_DOUBLE_QUOTED && memchr(val, '\\', off) != NULL))
            return false;
        *line = sm->line + 1;
        *col = c0 + 1 + utf8_chars(val, off);
        return true;
    }
    if (st == FYNS_LITERAL) {
        /* each content line is a suffix of its source line (the block's
         * indentation removed); the token starts at the first one */
        size_t ls = 0, le, vl, pos = sm->input_pos, se;
        int k = 0;

        if (pos > 0 && jf->text[pos - 1] != '\n')
            return false;
        for (size_t i = 0; i < off; i++)
            if (val[i] == '\n') {
                k++;
                ls = i + 1;
            }
        for (le = ls; le < vlen && val[le] != '\n'; le++)
            ;
        vl = le - ls;
        for (int skip = k; skip > 0; skip--) {
            while (pos < jf->text_len && jf->text[pos] != '\n')
                pos++;
            if (pos >= jf->text_len)
                return false;
            pos++;
        }
        for (se = pos; se < jf->text_len && jf->text[se] != '\n'; se++)
            ;
        if (se > pos && jf->text[se - 1] == '\r')
            se--;
        if (se - pos < vl || memcmp(jf->text + se - vl, val + ls, vl) != 0)
            return false;
        *line = sm->line + 1 + k;
        *col = utf8_chars(jf->text + pos, se - vl - pos) + utf8_chars(val + ls, off - ls) + 1;
        return true;
    }
    return false;
}

int
weir_params_error_at(const weir_params_t *p, const char *key, size_t off, int code,
                     weir_err_t *err, const char *fmt, ...)
{
    struct fy_node_pair *pair = key != NULL ? map_pair(p->node, key) : NULL;
    struct fy_node *val = key == NULL ? p->node : pair != NULL ? fy_node_pair_value(pair) : NULL;
    va_list ap;
    int line, col;

    if (!offset_loc(p->jf, val, off, &line, &col))
        weir_params_loc(p, key, &line, &col);
    va_start(ap, fmt);
    verror_line(p, line, col, code, err, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- substitution ---------------------------------------------------- */

static int
subst_into(const weir_params_t *p, struct fy_node *at, const char *s, size_t len, int depth,
           weir_buf_t *out, weir_err_t *err)
{
    const weir_vars_t *vars = &p->jf->vars;
    size_t i = 0;

    if (depth > SUBST_MAX_DEPTH)
        return node_error(p, at, WEIR_EINVAL, err,
                          "variable defaults nest more than %d deep", SUBST_MAX_DEPTH);
    while (i < len) {
        const char *dollar = memchr(s + i, '$', len - i);
        size_t start, nlen;
        const char *val;
        long dlen = -1;

        if (dollar == NULL) {
            if (weir_buf_append(out, s + i, len - i) != 0)
                return weir_err_set(err, WEIR_ENOMEM, "out of memory");
            break;
        }
        if (weir_buf_append(out, s + i, (size_t)(dollar - (s + i))) != 0)
            return weir_err_set(err, WEIR_ENOMEM, "out of memory");
        i = (size_t)(dollar - s);
        if (i + 1 >= len || (s[i + 1] != '$' && s[i + 1] != '{')) {
            if (weir_buf_putc(out, '$') != 0)
                return weir_err_set(err, WEIR_ENOMEM, "out of memory");
            i++;
            continue;
        }
        if (s[i + 1] == '$') {
            if (weir_buf_putc(out, '$') != 0)
                return weir_err_set(err, WEIR_ENOMEM, "out of memory");
            i += 2;
            continue;
        }
        start = i + 2;
        nlen = 0;
        while (start + nlen < len && is_name_char(s[start + nlen]))
            nlen++;
        if (nlen == 0 || !is_name_start(s[start]))
            return node_error(p, at, WEIR_EINVAL, err,
                              "'${' must be followed by a variable name (letters, digits, _; "
                              "write $$ for a literal $)");
        i = start + nlen;
        if (i < len && s[i] == '}') {
            i++;
        } else if (i + 1 < len && s[i] == ':' && s[i + 1] == '-') {
            dlen = default_len(s + i + 2, len - i - 2);
            if (dlen < 0)
                return node_error(p, at, WEIR_EINVAL, err, "'${%.*s:-' has no closing '}'",
                                  (int)nlen, s + start);
            i += 2;
        } else if (i >= len) {
            return node_error(p, at, WEIR_EINVAL, err, "'${%.*s' has no closing '}'",
                              (int)nlen, s + start);
        } else {
            return node_error(p, at, WEIR_EINVAL, err,
                              "invalid character '%c' in '${%.*s': write ${NAME} or ${NAME:-default}",
                              s[i], (int)nlen, s + start);
        }
        val = vars_get(vars, s + start, nlen);
        if (dlen >= 0) {
            if (val == NULL || val[0] == '\0') {
                int rc = subst_into(p, at, s + i, (size_t)dlen, depth + 1, out, err);
                if (rc != 0)
                    return rc;
            } else if (weir_buf_append(out, val, strlen(val)) != 0) {
                return weir_err_set(err, WEIR_ENOMEM, "out of memory");
            }
            i += (size_t)dlen + 1;
            continue;
        }
        if (val == NULL)
            return node_error(p, at, WEIR_ENOENT, err,
                              "variable '%.*s' is not set: pass -D %.*s=value%s, "
                              "or write ${%.*s:-default}",
                              (int)nlen, s + start, (int)nlen, s + start,
                              vars->use_env ? " or set it in the environment" : "",
                              (int)nlen, s + start);
        if (weir_buf_append(out, val, strlen(val)) != 0)
            return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    }
    return 0;
}

/* The substituted text of scalar n as a new string. */
static int
scalar_text(const weir_params_t *p, struct fy_node *n, char **out, weir_err_t *err)
{
    weir_buf_t b = WEIR_BUF_INIT;
    const char *t;
    size_t len;
    int rc;

    t = fy_node_get_scalar(n, &len);
    if (t == NULL)
        return node_error(p, n, WEIR_ENOMEM, err, "out of memory");
    rc = subst_into(p, n, t, len, 0, &b, err);
    if (rc == 0 && weir_buf_nul(&b) != 0)
        rc = weir_err_set(err, WEIR_ENOMEM, "out of memory");
    if (rc != 0) {
        weir_buf_free(&b);
        return rc;
    }
    *out = b.data;
    return 0;
}

/* ---- getters --------------------------------------------------------- */

bool
weir_params_has(const weir_params_t *p, const char *key)
{
    struct fy_node_pair *pair = map_pair(p->node, key);

    return pair != NULL && !node_is_null(fy_node_pair_value(pair));
}

bool
weir_params_is_map(const weir_params_t *p)
{
    return p->node != NULL && fy_node_is_mapping(p->node);
}

/* Finds key's value. Returns 1 with *val set when present and not null, 0
 * when absent (or null and not required), or an error: missing when
 * required. */
static int
lookup(const weir_params_t *p, const char *key, bool required, struct fy_node **val,
       weir_err_t *err)
{
    struct fy_node_pair *pair = map_pair(p->node, key);

    *val = NULL;
    if (pair != NULL && !node_is_null(fy_node_pair_value(pair))) {
        *val = fy_node_pair_value(pair);
        return 1;
    }
    if (!required)
        return 0;
    if (pair != NULL)
        return node_error(p, fy_node_pair_key(pair), WEIR_EINVAL, err,
                          "parameter '%s' has no value", key);
    return weir_params_error(p, NULL, WEIR_EINVAL, err, "missing required parameter '%s'", key);
}

/* key's value as substituted text: 1 with *out new, 0 when absent, or an
 * error (not a single value; substitution). 'noun' names the expected type. */
static int
get_text(const weir_params_t *p, const char *key, bool required, const char *noun,
         char **out, struct fy_node **at, weir_err_t *err)
{
    struct fy_node *val;
    int rc;

    rc = lookup(p, key, required, &val, err);
    if (rc <= 0)
        return rc;
    if (!fy_node_is_scalar(val))
        return node_error(p, val, WEIR_ETYPE, err, "parameter '%s' must be %s, not %s",
                          key, noun, node_noun(val));
    if (at != NULL)
        *at = val;
    rc = scalar_text(p, val, out, err);
    return rc < 0 ? rc : 1;
}

int
weir_params_req_str(const weir_params_t *p, const char *key, char **out, weir_err_t *err)
{
    int rc = get_text(p, key, true, "a string", out, NULL, err);

    return rc < 0 ? rc : 0;
}

int
weir_params_opt_str(const weir_params_t *p, const char *key, const char *def, char **out,
                    weir_err_t *err)
{
    int rc = get_text(p, key, false, "a string", out, NULL, err);

    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (def == NULL) {
        *out = NULL;
        return 0;
    }
    *out = strdup(def);
    return *out != NULL ? 0 : weir_err_set(err, WEIR_ENOMEM, "out of memory");
}

/* Parses a decimal integer filling all of s; -1 bad syntax, -2 overflow. */
static int
parse_i64(const char *s, int64_t *out)
{
    const char *d = s;
    char *end;
    long long v;

    if (*d == '+' || *d == '-')
        d++;
    if (!isdigit((unsigned char)*d))
        return -1;
    for (const char *c = d; *c; c++)
        if (!isdigit((unsigned char)*c))
            return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return -2;
    *out = (int64_t)v;
    return 0;
}

static int
get_int(const weir_params_t *p, const char *key, bool required, int64_t *out, weir_err_t *err)
{
    struct fy_node *at = NULL;
    char *text = NULL;
    int rc, prc;

    rc = get_text(p, key, required, "an integer", &text, &at, err);
    if (rc <= 0)
        return rc;
    prc = parse_i64(text, out);
    if (prc == -1)
        rc = node_error(p, at, WEIR_ETYPE, err, "parameter '%s' must be an integer, got '%s'",
                        key, text);
    else if (prc == -2)
        rc = node_error(p, at, WEIR_ERANGE, err, "parameter '%s' is out of range: %s", key, text);
    free(text);
    return rc;
}

int
weir_params_req_int(const weir_params_t *p, const char *key, int64_t *out, weir_err_t *err)
{
    int rc = get_int(p, key, true, out, err);

    return rc < 0 ? rc : 0;
}

int
weir_params_opt_int(const weir_params_t *p, const char *key, int64_t def, int64_t *out,
                    weir_err_t *err)
{
    int rc = get_int(p, key, false, out, err);

    if (rc == 0)
        *out = def;
    return rc < 0 ? rc : 0;
}

int
weir_params_opt_double(const weir_params_t *p, const char *key, double def, double *out,
                       weir_err_t *err)
{
    struct fy_node *at = NULL;
    char *text = NULL, *end;
    bool ok;
    double d = 0;
    int rc;

    rc = get_text(p, key, false, "a number", &text, &at, err);
    if (rc <= 0) {
        if (rc == 0)
            *out = def;
        return rc;
    }
    /* decimal notation only: strtod alone would take "nan", "inf", hex */
    ok = text[0] != '\0' && strspn(text, "0123456789+-.eE") == strlen(text);
    if (ok) {
        errno = 0;
        d = strtod(text, &end);
        ok = *end == '\0' && end != text;
    }
    if (!ok)
        rc = node_error(p, at, WEIR_ETYPE, err, "parameter '%s' must be a number, got '%s'",
                        key, text);
    else if (errno == ERANGE || !isfinite(d))
        rc = node_error(p, at, WEIR_ERANGE, err, "parameter '%s' is out of range: %s", key, text);
    else {
        *out = d;
        rc = 0;
    }
    free(text);
    return rc;
}

int
weir_params_opt_bool(const weir_params_t *p, const char *key, bool def, bool *out,
                     weir_err_t *err)
{
    static const char *const yes[] = { "true", "yes", "on" };
    static const char *const no[] = { "false", "no", "off" };
    struct fy_node *at = NULL;
    char *text = NULL;
    int rc;

    rc = get_text(p, key, false, "true or false", &text, &at, err);
    if (rc <= 0) {
        if (rc == 0)
            *out = def;
        return rc;
    }
    rc = 1;
    for (size_t i = 0; i < 3 && rc == 1; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            rc = 0;
        } else if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            rc = 0;
        }
    }
    if (rc != 0)
        rc = node_error(p, at, WEIR_ETYPE, err, "parameter '%s' must be true or false, got '%s'",
                        key, text);
    free(text);
    return rc;
}

int
weir_params_opt_duration(const weir_params_t *p, const char *key, int64_t def_us,
                         int64_t *out_us, weir_err_t *err)
{
    struct fy_node *at = NULL;
    char *text = NULL;
    int64_t v;
    int rc, prc;

    rc = get_text(p, key, false, "a duration", &text, &at, err);
    if (rc <= 0) {
        if (rc == 0)
            *out_us = def_us;
        return rc;
    }
    prc = parse_i64(text, &v);
    if (prc == 0 && v < 0) {
        rc = node_error(p, at, WEIR_ERANGE, err, "parameter '%s' must not be negative, got %s",
                        key, text);
    } else if (prc == -2 || (prc == 0 && v > INT64_MAX / 1000)) {
        rc = node_error(p, at, WEIR_ERANGE, err, "parameter '%s' is out of range: %s", key, text);
    } else if (prc == 0) {
        *out_us = v * 1000;                 /* a bare integer is milliseconds */
        rc = 0;
    } else if (text[0] == '-') {
        rc = node_error(p, at, WEIR_ERANGE, err, "parameter '%s' must not be negative, got '%s'",
                        key, text);
    } else if ((prc = weir_duration_parse(text, &v)) == WEIR_ERANGE) {
        rc = node_error(p, at, WEIR_ERANGE, err, "parameter '%s' is out of range: %s", key, text);
    } else if (prc != 0) {
        rc = node_error(p, at, WEIR_EINVAL, err,
                        "parameter '%s' must be a duration such as 500ms, 5s, 1m or 2h "
                        "(a bare number is milliseconds), got '%s'", key, text);
    } else {
        *out_us = v;
        rc = 0;
    }
    free(text);
    return rc;
}

void
weir_str_list_free(char **list, int n)
{
    if (list == NULL)
        return;
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

int
weir_params_str_list(const weir_params_t *p, const char *key, bool required, char ***out,
                     int *n, weir_err_t *err)
{
    struct fy_node *val, *item;
    char **list = NULL;
    int count = 0, cap, rc;
    void *iter = NULL;

    *out = NULL;
    *n = 0;
    rc = lookup(p, key, required, &val, err);
    if (rc <= 0)
        return rc;
    if (fy_node_is_mapping(val))
        return node_error(p, val, WEIR_ETYPE, err,
                          "parameter '%s' must be a value or a list of values, not a mapping", key);
    cap = fy_node_is_sequence(val) ? fy_node_sequence_item_count(val) : 1;
    if (cap == 0) {
        if (required)
            return node_error(p, val, WEIR_EINVAL, err, "parameter '%s' must not be empty", key);
        return 0;
    }
    list = calloc((size_t)cap, sizeof(*list));
    if (list == NULL)
        return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    if (!fy_node_is_sequence(val)) {
        rc = scalar_text(p, val, &list[0], err);
        if (rc != 0)
            goto fail;
        count = 1;
    } else {
        while ((item = fy_node_sequence_iterate(val, &iter)) != NULL && count < cap) {
            if (!fy_node_is_scalar(item) || node_is_null(item)) {
                rc = node_error(p, item, WEIR_ETYPE, err,
                                "parameter '%s' must list single values; item %d is %s",
                                key, count + 1, node_noun(item));
                goto fail;
            }
            rc = scalar_text(p, item, &list[count], err);
            if (rc != 0)
                goto fail;
            count++;
        }
    }
    *out = list;
    *n = count;
    return 0;

fail:
    weir_str_list_free(list, count);
    return rc;
}

int
weir_params_child(const weir_params_t *p, const char *key, bool required, weir_params_t *out,
                  weir_err_t *err)
{
    struct fy_node *val;
    int rc;

    out->jf = p->jf;
    out->node = NULL;
    out->what = p->what;
    rc = lookup(p, key, required, &val, err);
    if (rc <= 0)
        return rc;
    if (!fy_node_is_mapping(val) && !fy_node_is_sequence(val))
        return node_error(p, val, WEIR_ETYPE, err,
                          "parameter '%s' must be a mapping or a list, not a single value", key);
    out->node = val;
    return 0;
}

int
weir_params_items(const weir_params_t *p, const char *key, bool required, weir_params_t **items,
                  int *n, weir_err_t *err)
{
    struct fy_node *val, *item;
    weir_params_t *arr;
    void *iter = NULL;
    int count, i = 0, rc;

    *items = NULL;
    *n = 0;
    rc = lookup(p, key, required, &val, err);
    if (rc <= 0)
        return rc;
    if (!fy_node_is_sequence(val))
        return node_error(p, val, WEIR_ETYPE, err, "parameter '%s' must be a list, not %s",
                          key, node_noun(val));
    count = fy_node_sequence_item_count(val);
    if (count <= 0) {
        if (required)
            return node_error(p, val, WEIR_EINVAL, err, "parameter '%s' must not be empty", key);
        return 0;
    }
    arr = calloc((size_t)count, sizeof(*arr));
    if (arr == NULL)
        return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    while ((item = fy_node_sequence_iterate(val, &iter)) != NULL && i < count) {
        arr[i].jf = p->jf;
        arr[i].node = item;
        arr[i].what = p->what;
        i++;
    }
    *items = arr;
    *n = i;
    return 0;
}

int
weir_params_map(const weir_params_t *p, const char *key, char ***keys, char ***vals,
                weir_params_t **at, int *n, weir_err_t *err)
{
    struct fy_node *val;
    struct fy_node_pair *pair;
    void *iter = NULL;
    char **ks = NULL, **vs = NULL;
    weir_params_t *where = NULL;
    int count, i = 0, rc;

    *keys = *vals = NULL;
    if (at != NULL)
        *at = NULL;
    *n = 0;
    rc = lookup(p, key, false, &val, err);
    if (rc <= 0)
        return rc;
    if (!fy_node_is_mapping(val))
        return node_error(p, val, WEIR_ETYPE, err, "parameter '%s' must be a mapping, not %s",
                          key, node_noun(val));
    count = fy_node_mapping_item_count(val);
    if (count <= 0)
        return 0;
    ks = calloc((size_t)count, sizeof(*ks));
    vs = calloc((size_t)count, sizeof(*vs));
    where = calloc((size_t)count, sizeof(*where));
    if (ks == NULL || vs == NULL || where == NULL) {
        rc = weir_err_set(err, WEIR_ENOMEM, "out of memory");
        goto fail;
    }
    while ((pair = fy_node_mapping_iterate(val, &iter)) != NULL && i < count) {
        struct fy_node *k = fy_node_pair_key(pair), *v = fy_node_pair_value(pair);

        if (k == NULL || !fy_node_is_scalar(k) || v == NULL || !fy_node_is_scalar(v) ||
            node_is_null(v)) {
            rc = node_error(p, v != NULL ? v : val, WEIR_ETYPE, err,
                            "parameter '%s' must map names to single values", key);
            goto fail;
        }
        if ((rc = scalar_text(p, k, &ks[i], err)) != 0 ||
            (rc = scalar_text(p, v, &vs[i], err)) != 0) {
            i++;
            goto fail;
        }
        where[i].jf = p->jf;
        where[i].node = v;
        where[i].what = p->what;
        i++;
    }
    *keys = ks;
    *vals = vs;
    if (at != NULL)
        *at = where;
    else
        free(where);
    *n = i;
    return 0;

fail:
    weir_str_list_free(ks, i);
    weir_str_list_free(vs, i);
    free(where);
    return rc;
}

int
weir_params_scalar(const weir_params_t *p, char **out, weir_err_t *err)
{
    if (p->node == NULL || !fy_node_is_scalar(p->node) || node_is_null(p->node))
        return weir_params_error(p, NULL, WEIR_ETYPE, err, "expected a single value, not %s",
                                 node_noun(p->node));
    return scalar_text(p, p->node, out, err);
}

/* ---- keys and did-you-mean ------------------------------------------- */

/* Did-you-mean uses the optimal string alignment distance: Levenshtein plus
 * the swap of two adjacent letters as one edit ("fliter", "hsah"), compared
 * case-insensitively. */
const char *
weir_suggest(const char *name, const char *const *candidates, int n)
{
    enum { MAXLEN = 128 };
    int prev2[MAXLEN + 1], prev[MAXLEN + 1], cur[MAXLEN + 1];
    const char *best = NULL;
    size_t nlen = strlen(name);
    int best_d = INT_MAX, limit = (int)nlen / 3 > 1 ? (int)nlen / 3 : 1;

    if (nlen > MAXLEN)
        return NULL;
    for (int c = 0; c < n; c++) {
        const char *cand = candidates[c];
        size_t clen;

        if (cand == NULL || (clen = strlen(cand)) > MAXLEN)
            continue;
        for (size_t j = 0; j <= clen; j++)
            prev[j] = (int)j;
        for (size_t i = 1; i <= nlen; i++) {
            int a = tolower((unsigned char)name[i - 1]);

            cur[0] = (int)i;
            for (size_t j = 1; j <= clen; j++) {
                int b = tolower((unsigned char)cand[j - 1]);
                int sub = prev[j - 1] + (a != b);
                int del = prev[j] + 1, ins = cur[j - 1] + 1;
                int d = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);

                if (i > 1 && j > 1 && a == tolower((unsigned char)cand[j - 2]) &&
                    tolower((unsigned char)name[i - 2]) == b && prev2[j - 2] + 1 < d)
                    d = prev2[j - 2] + 1;
                cur[j] = d;
            }
            memcpy(prev2, prev, (clen + 1) * sizeof(int));
            memcpy(prev, cur, (clen + 1) * sizeof(int));
        }
        if (prev[clen] < best_d) {
            best_d = prev[clen];
            best = cand;
        }
    }
    return best_d <= limit ? best : NULL;
}

int
weir_params_check_keys(const weir_params_t *p, const char *const *allowed, weir_err_t *err)
{
    const char *cands[256];
    struct fy_node_pair *pair;
    void *iter = NULL;
    int ncands = 0;

    if (!weir_params_is_map(p))
        return weir_params_error(p, NULL, WEIR_ETYPE, err, "expected a mapping, not %s",
                                 node_noun(p->node));
    /* the kind's own parameters first: on a tie, did-you-mean prefers them
     * ('wher' is 'where' of a filter rather than the common 'when') */
    for (int i = 0; allowed != NULL && allowed[i] != NULL && ncands < 240; i++)
        cands[ncands++] = allowed[i];
    for (int i = 0; weir_params_common_keys[i] != NULL; i++)
        cands[ncands++] = weir_params_common_keys[i];

    while ((pair = fy_node_mapping_iterate(p->node, &iter)) != NULL) {
        struct fy_node *k = fy_node_pair_key(pair);
        const char *t, *hint;
        char name[256];
        size_t len;
        bool found = false;

        if (k == NULL || !fy_node_is_scalar(k) || fy_node_is_alias(k))
            return node_error(p, k != NULL ? k : p->node, WEIR_EINVAL, err,
                              "parameter names must be plain words, not %s", node_noun(k));
        t = fy_node_get_scalar(k, &len);
        if (t == NULL)
            return weir_err_set(err, WEIR_ENOMEM, "out of memory");
        for (int i = 0; i < ncands && !found; i++)
            found = strlen(cands[i]) == len && memcmp(cands[i], t, len) == 0;
        if (found)
            continue;
        snprintf(name, sizeof(name), "%.*s", (int)(len < 255 ? len : 255), t);
        hint = weir_suggest(name, cands, ncands);
        if (hint != NULL)
            return node_error(p, k, WEIR_EINVAL, err, "unknown parameter '%s' (did you mean '%s'?)",
                              name, hint);
        return node_error(p, k, WEIR_EINVAL, err, "unknown parameter '%s'", name);
    }
    return 0;
}

/* ---- schemas --------------------------------------------------------- */

static const char *const type_names[] = {
    "int", "double", "bool", "string", "bytes", "timestamp",
    "long", "bigint", "integer", "float", "boolean", "varchar",
};

/* Parses a type text "T" or "T?" at node 'at'. */
static int
parse_type(const weir_params_t *p, struct fy_node *at, const char *field, char *text,
           weir_type_t *type, bool *nullable, weir_err_t *err)
{
    size_t len = strlen(text);
    const char *hint;
    int t;

    *nullable = false;
    if (len > 0 && text[len - 1] == '?') {
        text[--len] = '\0';
        *nullable = true;
    }
    t = weir_type_parse(text);
    if (t >= 0) {
        *type = (weir_type_t)t;
        return 0;
    }
    hint = weir_suggest(text, type_names, (int)(sizeof(type_names) / sizeof(type_names[0])));
    if (hint != NULL)
        return node_error(p, at, WEIR_EINVAL, err,
                          "unknown type '%s' for field '%s' (did you mean '%s'?)", text, field, hint);
    return node_error(p, at, WEIR_EINVAL, err,
                      "unknown type '%s' for field '%s': use int, double, bool, string, bytes "
                      "or timestamp, with a trailing ? when nullable", text, field);
}

/* One field from {name, type, nullable} (item) or name: TYPE | {type, nullable}. */
static int
schema_field(const weir_params_t *p, struct fy_node *keynode, struct fy_node *node,
             weir_schema_t *s, int idx, weir_err_t *err)
{
    static const char *const field_keys[] = { "name", "type", "nullable", NULL };
    weir_params_t fp = { .jf = p->jf, .node = node, .what = p->what };
    struct fy_node *type_at = node, *name_at = keynode != NULL ? keynode : node;
    char *name = NULL, *type = NULL;
    weir_type_t t = WEIR_T_STRING;
    bool q = false, nullable = false;
    int rc;

    if (keynode != NULL) {
        size_t len;
        const char *k = fy_node_is_scalar(keynode) ? fy_node_get_scalar(keynode, &len) : NULL;

        if (k == NULL || fy_node_is_alias(keynode))
            return node_error(p, keynode, WEIR_EINVAL, err, "field names must be plain words");
        name = strndup(k, len);
        if (name == NULL)
            return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    }
    if (node != NULL && fy_node_is_mapping(node)) {
        struct fy_node_pair *pair;
        void *iter = NULL;

        while ((pair = fy_node_mapping_iterate(node, &iter)) != NULL) {
            struct fy_node *k = fy_node_pair_key(pair);
            const char *t0, *hint;
            size_t len;
            bool ok = false;

            t0 = k != NULL && fy_node_is_scalar(k) ? fy_node_get_scalar(k, &len) : NULL;
            for (int i = 0; t0 != NULL && field_keys[i] != NULL && !ok; i++)
                ok = (keynode == NULL || i > 0) &&
                     strlen(field_keys[i]) == len && memcmp(field_keys[i], t0, len) == 0;
            if (ok)
                continue;
            if (t0 == NULL) {
                rc = node_error(p, k != NULL ? k : node, WEIR_EINVAL, err,
                                "schema keys must be plain words");
                goto out;
            }
            {
                char kn[64];
                snprintf(kn, sizeof(kn), "%.*s", (int)(len < 63 ? len : 63), t0);
                hint = weir_suggest(kn, field_keys + (keynode != NULL), keynode != NULL ? 2 : 3);
                rc = node_error(p, k, WEIR_EINVAL, err, "unknown schema key '%s'%s%s%s", kn,
                                hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
            }
            goto out;
        }
        if (keynode == NULL) {
            struct fy_node_pair *np = map_pair(node, "name");
            rc = weir_params_req_str(&fp, "name", &name, err);
            if (rc != 0)
                goto out;
            name_at = fy_node_pair_value(np);
        }
        rc = weir_params_req_str(&fp, "type", &type, err);
        if (rc != 0)
            goto out;
        type_at = fy_node_pair_value(map_pair(node, "type"));
        rc = weir_params_opt_bool(&fp, "nullable", false, &nullable, err);
        if (rc != 0)
            goto out;
    } else if (keynode != NULL && node != NULL && fy_node_is_scalar(node) && !node_is_null(node)) {
        rc = scalar_text(p, node, &type, err);
        if (rc != 0)
            goto out;
    } else if (keynode != NULL) {
        rc = node_error(p, node != NULL && !node_is_null(node) ? node : keynode, WEIR_EINVAL, err,
                        "field '%s' needs a type (int, double, bool, string, bytes, timestamp)",
                        name);
        goto out;
    } else {
        rc = node_error(p, node, WEIR_EINVAL, err,
                        "each schema field must be a mapping {name: N, type: T}, not %s",
                        node_noun(node));
        goto out;
    }
    if (name[0] == '\0') {
        rc = node_error(p, name_at, WEIR_EINVAL, err, "field names must not be empty");
        goto out;
    }
    for (int i = 0; i < idx; i++)
        if (strcmp(s->fields[i].name, name) == 0) {
            rc = node_error(p, name_at, WEIR_EINVAL, err, "field '%s' is declared twice", name);
            goto out;
        }
    rc = parse_type(p, type_at, name, type, &t, &q, err);
    if (rc != 0)
        goto out;
    if (weir_schema_set(s, idx, name, t, q || nullable) != 0)
        rc = weir_err_set(err, WEIR_ENOMEM, "out of memory");
out:
    free(name);
    free(type);
    return rc;
}

int
weir_params_schema(const weir_params_t *p, const char *key, weir_schema_t **out, weir_err_t *err)
{
    struct fy_node *val;
    weir_schema_t *s;
    void *iter = NULL;
    int n, idx = 0, rc;

    rc = lookup(p, key, true, &val, err);
    if (rc < 0)
        return rc;
    if (fy_node_is_sequence(val))
        n = fy_node_sequence_item_count(val);
    else if (fy_node_is_mapping(val))
        n = fy_node_mapping_item_count(val);
    else
        return node_error(p, val, WEIR_ETYPE, err,
                          "parameter '%s' must be a list of {name, type} or a mapping of "
                          "name: type, not a single value", key);
    if (n <= 0)
        return node_error(p, val, WEIR_EINVAL, err, "parameter '%s' must declare at least one field",
                          key);
    if (n > SCHEMA_MAX_FIELDS)
        return node_error(p, val, WEIR_E2BIG, err, "parameter '%s' declares %d fields, more than %d",
                          key, n, SCHEMA_MAX_FIELDS);
    s = weir_schema_new(n);
    if (s == NULL)
        return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    if (fy_node_is_sequence(val)) {
        struct fy_node *item;

        while ((item = fy_node_sequence_iterate(val, &iter)) != NULL && idx < n) {
            rc = schema_field(p, NULL, item, s, idx, err);
            if (rc != 0)
                goto fail;
            idx++;
        }
    } else {
        struct fy_node_pair *pair;

        while ((pair = fy_node_mapping_iterate(val, &iter)) != NULL && idx < n) {
            rc = schema_field(p, fy_node_pair_key(pair), fy_node_pair_value(pair), s, idx, err);
            if (rc != 0)
                goto fail;
            idx++;
        }
    }
    if (idx != n) {
        rc = weir_err_set(err, WEIR_ESTATE, "schema: the YAML node changed while read");
        goto fail;
    }
    *out = s;
    return 0;

fail:
    weir_schema_unref(s);
    return rc;
}
