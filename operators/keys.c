/* operators/keys.c -- key hashing, and field-name resolution for the kinds.
 *
 * weir_key_hash() decides which key group, hence which subtask, a record
 * belongs to. Every process of a cluster must agree on it, run after run (a
 * savepoint taken by one run is restored by another), so it depends only on
 * the key values: xxh3 of each value, chained by feeding one value's hash
 * in as the next one's seed. weir_value_hash() hashes an int and the double
 * of the same integral value alike, so a key read as 3 in one stream and 3.0
 * in another still meets itself. No pointer, address or random seed enters.
 *
 * weir__op_field() is the one place a kind turns a field name from a job
 * file into an index, with the did-you-mean message people expect.
 */
#include "registry.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define KEY_HASH_SEED 0x77656972ull          /* "weir" */

uint64_t
weir_key_hash(const weir_value_t *row, const int *key_idx, int nkeys)
{
    uint64_t h = KEY_HASH_SEED;

    for (int k = 0; k < nkeys; k++)
        h = weir_value_hash(&row[key_idx[k]], h);
    return h;
}

int
weir__op_field(const weir_params_t *p, const char *key, const weir_schema_t *schema,
               const char *name, int *idx, weir_err_t *err)
{
    const char *names[256], *hint;
    char list[512];
    size_t len = 0;
    int n = 0, i;

    i = weir_schema_find(schema, name);
    if (i >= 0) {
        *idx = i;
        return 0;
    }
    list[0] = '\0';
    for (int f = 0; f < schema->nfields; f++) {
        if (n < 256)
            names[n++] = schema->fields[f].name;
        if (len < sizeof(list))
            len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", f ? ", " : "",
                                    schema->fields[f].name);
    }
    hint = weir_suggest(name, names, n);
    if (hint != NULL)
        return weir_params_error(p, key, WEIR_EINVAL, err,
                                 "unknown field '%s' (did you mean '%s'?)", name, hint);
    return weir_params_error(p, key, WEIR_EINVAL, err, "unknown field '%s'; the input has: %s",
                             name, schema->nfields ? list : "no fields");
}

int
weir__op_expr_error(const weir_params_t *p, const char *key, size_t off, int code,
                    const weir_err_t *perr, weir_err_t *err)
{
    const char *m = perr->msg;

    if (strncmp(m, "column ", 7) == 0) {
        const char *q = m + 7;
        while (isdigit((unsigned char)*q))
            q++;
        if (q > m + 7 && q[0] == ':' && q[1] == ' ')
            m = q + 2;
    }
    return weir_params_error_at(p, key, off, code, err, "%s", m[0] ? m : weir_strerror(code));
}
