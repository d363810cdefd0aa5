/* operators/pg_sink.c -- the "postgres" sink: rows upserted into a table.
 *
 *   - name: db
 *     kind: postgres
 *     input: flagged
 *     dsn: ${PG_DSN}                    # libpq connection string or URI
 *     table: public.flagged_transactions
 *     key: transaction_id               # or [a, b] or "a;b": the upsert key
 *     indexes: [[account_id]]          # optional secondary indexes
 *     create_table: true               # CREATE TABLE IF NOT EXISTS from the schema
 *     batch_rows: 5000                 # without checkpoints: rows per transaction
 *
 * Every write is an upsert, INSERT ... ON CONFLICT (key) DO UPDATE SET
 * col = EXCLUDED.col for every non-key column, so writing a row twice
 * leaves the table as writing it once: replays after a restart are harmless.
 * That is what makes the guarantee cheap. Rows are never sent one round trip
 * each: a set of rows goes to the server as one binary COPY into a session
 * TEMP table ("stage"), then one INSERT INTO t SELECT ... FROM stage ON
 * CONFLICT ... moves them, all in one transaction (BEGIN, COPY, INSERT,
 * COMMIT: four round trips per set, whatever its size). The stage has
 * ON COMMIT DELETE ROWS, so it is empty again after every commit.
 *
 * Rows are buffered in the binary COPY tuple format itself (a 16-bit field
 * count, then per field a 32-bit length, -1 for NULL, and the value in the
 * type's binary send format), back to back in one growable buffer with an
 * array of row offsets: no allocation per row, and writing hands runs of
 * the buffer to PQputCopyData as they are. The same bytes are the
 * checkpoint state.
 *
 * One INSERT ... ON CONFLICT DO UPDATE must not meet one key twice ("cannot
 * affect row a second time"), and an upsert stream repeats keys, so each set
 * is de-duplicated before it is sent: a hash table over the key fields keeps
 * the last row of each key, in input order, which is what the writes one by
 * one would have left.
 *
 * Two modes, chosen by the task context:
 *   - no checkpoints (ctx->checkpoint_interval_us == 0): every batch_rows
 *     rows and at finish, the buffered rows are written in one transaction.
 *     At-least-once; the upserts make the final table exact anyway.
 *   - checkpoints: rows since the last barrier are buffered; snapshot(n)
 *     moves them to "pending n" and stores every pending checkpoint's rows in
 *     the operator state; notify_complete(n) writes all pending <= n in one
 *     transaction and drops them; restore re-applies, in one transaction, the
 *     pending rows of the old subtasks that are now this subtask's (old
 *     subtask i % parallelism == subtask) before anything else. A row
 *     becomes visible exactly when its checkpoint completes, and a restart
 *     neither loses nor duplicates it: exactly-once. finish() writes what
 *     is still buffered (rows after the last barrier, and pending ones),
 *     because a bounded job ends without a final checkpoint.
 *
 * Errors: any database error (refused connection, constraint violation,
 * type or range error) fails the task with the server's message and the
 * table name. A lost connection is retried once, with a fresh connection
 * and the whole transaction again (idempotent), before failing.
 *
 * configure() touches no network: it checks names and types and builds the
 * SQL text. Table names are [A-Za-z_][A-Za-z0-9_]* (optionally schema.table);
 * every identifier is double-quoted, so column names keep their case and
 * may be reserved words.
 */
#include "registry.h"

#include <inttypes.h>
#include <libfyaml.h>
#include <libpq-fe.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "../runtime/core/log.h"

#define PG_IDENT_MAX    63            /* NAMEDATALEN - 1 */
#define PG_MAX_INDEXES  16
#define PG_STATE_MAGIC  "weir.pg_sink"
#define PG_STATE_VER    1
/* 2000-01-01 00:00:00 UTC, PostgreSQL's timestamp epoch, in Unix microseconds */
#define PG_EPOCH_US     INT64_C(946684800000000)

/* ---- configuration ------------------------------------------------------- */

typedef struct pg_conf {
    char          *name;
    char          *dsn;
    char          *table;                 /* as written (validated) */
    weir_schema_t *schema;                /* the input's (a reference) */
    int            nkeys;
    int            key_idx[WEIR_MAX_KEYS];
    int            key_max;               /* the last field that is a key field */
    int8_t         key_slot[1024];        /* field -> its place in the key, or -1 */
    int            nindexes;
    bool           create_table;
    int64_t        batch_rows;
    char          *sql_ddl;               /* table + indexes, or NULL */
    char          *sql_stage;             /* the session's TEMP table */
    char          *sql_copy;
    char          *sql_upsert;
} pg_conf_t;

static const char *const pg_params[] = {
    "dsn", "table", "key", "indexes", "create_table", "batch_rows", NULL,
};

static void
pg_conf_free(void *p)
{
    pg_conf_t *c = p;

    if (c == NULL)
        return;
    free(c->name);
    free(c->dsn);
    free(c->table);
    weir_schema_unref(c->schema);
    free(c->sql_ddl);
    free(c->sql_stage);
    free(c->sql_copy);
    free(c->sql_upsert);
    free(c);
}

static bool
is_ident(const char *s, size_t n)
{
    if (n == 0 || n > PG_IDENT_MAX || !(s[0] == '_' || (s[0] >= 'A' && s[0] <= 'Z') ||
                                       (s[0] >= 'a' && s[0] <= 'z')))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9')))
            return false;
    return true;
}

/* Appends s[0..n) as a quoted identifier ("a""b"), as PQescapeIdentifier
 * would: the names are plain UTF-8 without NUL, checked at configure. */
static int
put_ident(weir_buf_t *b, const char *s, size_t n)
{
    int rc = weir_buf_putc(b, '"');

    for (size_t i = 0; i < n && rc == 0; i++)
        rc = s[i] == '"' ? weir_buf_append(b, "\"\"", 2) : weir_buf_putc(b, s[i]);
    return rc != 0 ? rc : weir_buf_putc(b, '"');
}

static int
put_s(weir_buf_t *b, const char *s)
{
    return weir_buf_append(b, s, strlen(s));
}

static int
put_str_ident(weir_buf_t *b, const char *s)
{
    return put_ident(b, s, strlen(s));
}

/* "schema"."table" or "table". */
static int
put_table(weir_buf_t *b, const char *table)
{
    const char *dot = strchr(table, '.');
    int rc;

    if (dot == NULL)
        return put_str_ident(b, table);
    if ((rc = put_ident(b, table, (size_t)(dot - table))) != 0 ||
        (rc = weir_buf_putc(b, '.')) != 0)
        return rc;
    return put_str_ident(b, dot + 1);
}

static const char *
sql_type(weir_type_t t)
{
    switch (t) {
    case WEIR_T_INT:       return "bigint";
    case WEIR_T_DOUBLE:    return "double precision";
    case WEIR_T_BOOL:      return "boolean";
    case WEIR_T_STRING:    return "text";
    case WEIR_T_BYTES:     return "bytea";
    case WEIR_T_TIMESTAMP: return "timestamp";
    default:               return NULL;
    }
}

/* Field names "a;b" (or several such) appended to idx[*n], at most max in
 * all, each once. Reports errors at p's 'key' (NULL: the node p itself). */
static int
add_fields(const weir_params_t *p, const char *key, char **list, int nlist,
           const weir_schema_t *in, int *idx, int *n, int max, weir_err_t *err)
{
    int rc = 0;

    for (int i = 0; i < nlist && rc == 0; i++) {
        char *save = NULL;

        for (char *f = strtok_r(list[i], ";", &save); f != NULL && rc == 0;
             f = strtok_r(NULL, ";", &save)) {
            size_t len;
            int fi;

            while (*f == ' ')
                f++;
            len = strlen(f);
            while (len > 0 && f[len - 1] == ' ')
                f[--len] = '\0';
            if (len == 0)
                continue;
            if (*n == max)
                return weir_params_error(p, key, WEIR_ERANGE, err, "at most %d fields", max);
            if ((rc = weir__op_field(p, key, in, f, &fi, err)) != 0)
                return rc;
            for (int k = 0; k < *n; k++)
                if (idx[k] == fi)
                    return weir_params_error(p, key, WEIR_EINVAL, err,
                                             "field '%s' is listed twice", f);
            idx[(*n)++] = fi;
        }
    }
    return 0;
}

/* One item of 'indexes': "a", "a;b" or [a, b]. The item view is p. */
static int
parse_index(const weir_params_t *p, const weir_schema_t *in, int *idx, int *n, weir_err_t *err)
{
    int rc = 0;

    *n = 0;
    if (p->node != NULL && fy_node_is_sequence(p->node)) {
        struct fy_node *item;
        void *iter = NULL;

        /* the job file layer reads lists under a key only; a list inside a
         * list is walked here, each name reported at its own place */
        while (rc == 0 && (item = fy_node_sequence_iterate(p->node, &iter)) != NULL) {
            weir_params_t v = { .jf = p->jf, .node = item, .what = p->what };
            char *name = NULL;

            if ((rc = weir_params_scalar(&v, &name, err)) == 0)
                rc = add_fields(&v, NULL, &name, 1, in, idx, n, WEIR_MAX_KEYS, err);
            free(name);
        }
    } else {
        char *name = NULL;

        if ((rc = weir_params_scalar(p, &name, err)) == 0)
            rc = add_fields(p, NULL, &name, 1, in, idx, n, WEIR_MAX_KEYS, err);
        free(name);
    }
    if (rc == 0 && *n == 0)
        rc = weir_params_error(p, NULL, WEIR_EINVAL, err, "an index names no field");
    return rc;
}

/* An index name: <table>_<col>_..._idx, or when longer than PostgreSQL
 * keeps, its first part and a hash of the whole (stable, so IF NOT EXISTS
 * finds it again). */
static int
put_index_name(weir_buf_t *b, const char *table, const weir_schema_t *in, const int *idx, int n)
{
    weir_buf_t name = WEIR_BUF_INIT;
    const char *bare = strrchr(table, '.');
    int rc;

    bare = bare != NULL ? bare + 1 : table;
    rc = weir_buf_append(&name, bare, strlen(bare));
    for (int i = 0; i < n && rc == 0; i++)
        rc = weir_buf_appendf(&name, "_%s", in->fields[idx[i]].name);
    if (rc == 0)
        rc = put_s(&name, "_idx");
    if (rc == 0 && name.len > PG_IDENT_MAX) {
        uint64_t h = XXH3_64bits(name.data, name.len);
        name.len = PG_IDENT_MAX - 17;
        rc = weir_buf_appendf(&name, "_%016" PRIx64, h);
    }
    if (rc == 0)
        rc = put_ident(b, name.data, name.len);
    weir_buf_free(&name);
    return rc;
}

/* Builds the SQL text: DDL, stage, COPY and upsert. */
static int
build_sql(pg_conf_t *c, int nidx, int (*idx)[WEIR_MAX_KEYS], const int *idxn)
{
    const weir_schema_t *in = c->schema;
    weir_buf_t b = WEIR_BUF_INIT, cols = WEIR_BUF_INIT;
    bool is_key[1024] = { false };
    int rc = 0, nonkey = 0;

    for (int k = 0; k < c->nkeys; k++)
        is_key[c->key_idx[k]] = true;
    /* "a", "b", ... */
    for (int f = 0; f < in->nfields && rc == 0; f++) {
        if (f > 0)
            rc = put_s(&cols, ", ");
        if (rc == 0)
            rc = put_str_ident(&cols, in->fields[f].name);
    }
    if (rc == 0)
        rc = weir_buf_nul(&cols);

    /* DDL: one transaction, serialized between the subtasks of a job by an
     * advisory lock (concurrent CREATE TABLE IF NOT EXISTS can still fail
     * on the catalog's unique index). */
    if (rc == 0 && (c->create_table || nidx > 0)) {
        uint64_t lock = XXH3_64bits_withSeed(c->table, strlen(c->table), 0x7067);

        rc = weir_buf_appendf(&b, "BEGIN; SELECT pg_advisory_xact_lock(%" PRId64 ");",
                              (int64_t)lock);
        if (rc == 0 && c->create_table) {
            rc = put_s(&b, " CREATE TABLE IF NOT EXISTS ");
            if (rc == 0)
                rc = put_table(&b, c->table);
            if (rc == 0)
                rc = put_s(&b, " (");
            for (int f = 0; f < in->nfields && rc == 0; f++) {
                if ((rc = put_str_ident(&b, in->fields[f].name)) == 0)
                    rc = weir_buf_appendf(&b, " %s%s, ", sql_type(in->fields[f].type),
                                          in->fields[f].nullable ? "" : " NOT NULL");
            }
            if (rc == 0)
                rc = put_s(&b, "PRIMARY KEY (");
            for (int k = 0; k < c->nkeys && rc == 0; k++) {
                if (k > 0)
                    rc = put_s(&b, ", ");
                if (rc == 0)
                    rc = put_str_ident(&b, in->fields[c->key_idx[k]].name);
            }
            if (rc == 0)
                rc = put_s(&b, "));");
        }
        for (int i = 0; i < nidx && rc == 0; i++) {
            rc = put_s(&b, " CREATE INDEX IF NOT EXISTS ");
            if (rc == 0)
                rc = put_index_name(&b, c->table, in, idx[i], idxn[i]);
            if (rc == 0)
                rc = put_s(&b, " ON ");
            if (rc == 0)
                rc = put_table(&b, c->table);
            if (rc == 0)
                rc = put_s(&b, " (");
            for (int k = 0; k < idxn[i] && rc == 0; k++) {
                if (k > 0)
                    rc = put_s(&b, ", ");
                if (rc == 0)
                    rc = put_str_ident(&b, in->fields[idx[i][k]].name);
            }
            if (rc == 0)
                rc = put_s(&b, ");");
        }
        if (rc == 0)
            rc = put_s(&b, " COMMIT");
        if (rc == 0 && (rc = weir_buf_nul(&b)) == 0) {
            c->sql_ddl = b.data;
            b = (weir_buf_t)WEIR_BUF_INIT;
        }
    }

    /* the stage: the input's columns with the sink's types, no constraints
     * (the target table reports violations, with its name) */
    if (rc == 0)
        rc = put_s(&b, "SET TimeZone TO 'UTC'; "
                       "CREATE TEMP TABLE IF NOT EXISTS weir_stage (");
    for (int f = 0; f < in->nfields && rc == 0; f++) {
        if (f > 0)
            rc = put_s(&b, ", ");
        if (rc == 0)
            rc = put_str_ident(&b, in->fields[f].name);
        if (rc == 0)
            rc = weir_buf_appendf(&b, " %s", sql_type(in->fields[f].type));
    }
    if (rc == 0)
        rc = put_s(&b, ") ON COMMIT DELETE ROWS");
    if (rc == 0 && (rc = weir_buf_nul(&b)) == 0) {
        c->sql_stage = b.data;
        b = (weir_buf_t)WEIR_BUF_INIT;
    }

    if (rc == 0)
        rc = weir_buf_appendf(&b, "COPY pg_temp.weir_stage (%s) FROM STDIN (FORMAT binary)",
                              cols.data);
    if (rc == 0 && (rc = weir_buf_nul(&b)) == 0) {
        c->sql_copy = b.data;
        b = (weir_buf_t)WEIR_BUF_INIT;
    }

    if (rc == 0)
        rc = put_s(&b, "INSERT INTO ");
    if (rc == 0)
        rc = put_table(&b, c->table);
    if (rc == 0)
        rc = weir_buf_appendf(&b, " (%s) SELECT %s FROM pg_temp.weir_stage ON CONFLICT (",
                              cols.data, cols.data);
    for (int k = 0; k < c->nkeys && rc == 0; k++) {
        if (k > 0)
            rc = put_s(&b, ", ");
        if (rc == 0)
            rc = put_str_ident(&b, in->fields[c->key_idx[k]].name);
    }
    if (rc == 0)
        rc = put_s(&b, ") DO ");
    for (int f = 0; f < in->nfields && rc == 0; f++) {
        if (is_key[f])
            continue;
        rc = put_s(&b, nonkey == 0 ? "UPDATE SET " : ", ");
        nonkey++;
        if (rc == 0)
            rc = put_str_ident(&b, in->fields[f].name);
        if (rc == 0)
            rc = put_s(&b, " = EXCLUDED.");
        if (rc == 0)
            rc = put_str_ident(&b, in->fields[f].name);
    }
    if (rc == 0 && nonkey == 0)
        rc = put_s(&b, "NOTHING");
    if (rc == 0 && (rc = weir_buf_nul(&b)) == 0) {
        c->sql_upsert = b.data;
        b = (weir_buf_t)WEIR_BUF_INIT;
    }
    weir_buf_free(&b);
    weir_buf_free(&cols);
    return rc;
}

static int
pg_configure(weir_op_config_t *cfg, weir_err_t *err)
{
    const weir_params_t *p = &cfg->params;
    weir_schema_t *in = cfg->input_schemas[0];
    weir_params_t *items = NULL;
    int idx[PG_MAX_INDEXES][WEIR_MAX_KEYS], idxn[PG_MAX_INDEXES];
    char **keys = NULL;
    int nkeys = 0, nitems = 0, rc;
    pg_conf_t *c;
    const char *dot;

    if ((rc = weir_params_check_keys(p, pg_params, err)) != 0)
        return rc;
    if (in->nfields > 1024)
        return weir_params_error(p, NULL, WEIR_ERANGE, err,
                                 "a postgres sink takes at most 1024 columns, not %d",
                                 in->nfields);
    c = calloc(1, sizeof(*c));
    if (c == NULL || (c->name = strdup(cfg->name)) == NULL) {
        free(c);
        return WEIR_ENOMEM;
    }
    c->schema = weir_schema_ref(in);
    if ((rc = weir_params_req_str(p, "dsn", &c->dsn, err)) != 0 ||
        (rc = weir_params_req_str(p, "table", &c->table, err)) != 0 ||
        (rc = weir_params_opt_bool(p, "create_table", true, &c->create_table, err)) != 0 ||
        (rc = weir_params_opt_int(p, "batch_rows", 5000, &c->batch_rows, err)) != 0)
        goto fail;
    if (c->dsn[0] == '\0') {
        rc = weir_params_error(p, "dsn", WEIR_EINVAL, err, "'dsn' is empty (is PG_DSN set?)");
        goto fail;
    }
    dot = strchr(c->table, '.');
    if (dot != NULL ? !is_ident(c->table, (size_t)(dot - c->table)) || !is_ident(dot + 1, strlen(dot + 1))
                    : !is_ident(c->table, strlen(c->table))) {
        rc = weir_params_error(p, "table", WEIR_EINVAL, err,
                               "'%s' is not a table name: [schema.]table, each part "
                               "[A-Za-z_][A-Za-z0-9_]* of at most %d characters",
                               c->table, PG_IDENT_MAX);
        goto fail;
    }
    if (c->batch_rows < 1 || c->batch_rows > 10000000) {
        rc = weir_params_error(p, "batch_rows", WEIR_ERANGE, err,
                               "'batch_rows' must be between 1 and 10000000");
        goto fail;
    }
    for (int f = 0; f < in->nfields; f++) {
        const char *n = in->fields[f].name;
        if (n[0] == '\0' || strlen(n) > PG_IDENT_MAX) {
            rc = weir_params_error(p, NULL, WEIR_EINVAL, err,
                                   "input field '%s' cannot be a column name (1 to %d "
                                   "bytes); rename it with a map before the sink",
                                   n, PG_IDENT_MAX);
            goto fail;
        }
        if (sql_type(in->fields[f].type) == NULL) {
            rc = weir_params_error(p, NULL, WEIR_ETYPE, err,
                                   "input field '%s' has no PostgreSQL type", n);
            goto fail;
        }
    }
    if ((rc = weir_params_str_list(p, "key", true, &keys, &nkeys, err)) != 0 ||
        (rc = add_fields(p, "key", keys, nkeys, in, c->key_idx, &c->nkeys, WEIR_MAX_KEYS,
                         err)) != 0)
        goto fail;
    if (c->nkeys == 0) {
        rc = weir_params_error(p, "key", WEIR_EINVAL, err, "'key' names no field");
        goto fail;
    }
    memset(c->key_slot, -1, sizeof(c->key_slot));
    for (int k = 0; k < c->nkeys; k++) {
        c->key_slot[c->key_idx[k]] = (int8_t)k;
        if (c->key_idx[k] > c->key_max)
            c->key_max = c->key_idx[k];
    }
    if ((rc = weir_params_items(p, "indexes", false, &items, &nitems, err)) != 0)
        goto fail;
    if (nitems > PG_MAX_INDEXES) {
        rc = weir_params_error(p, "indexes", WEIR_ERANGE, err, "at most %d indexes",
                               PG_MAX_INDEXES);
        goto fail;
    }
    for (int i = 0; i < nitems; i++)
        if ((rc = parse_index(&items[i], in, idx[i], &idxn[i], err)) != 0)
            goto fail;
    c->nindexes = nitems;
    if ((rc = build_sql(c, nitems, idx, idxn)) != 0)
        goto fail;
    weir_str_list_free(keys, nkeys);
    free(items);
    cfg->output_schema = NULL;
    cfg->conf = c;
    return 0;

fail:
    weir_str_list_free(keys, nkeys);
    free(items);
    pg_conf_free(c);
    return rc;
}

/* ---- rows: binary COPY tuples --------------------------------------------- */

/* Rows back to back in one buffer; off[i] is where row i starts. */
typedef struct pg_rows {
    weir_buf_t buf;
    size_t    *off;
    int        n, cap;
} pg_rows_t;

typedef struct pg_pending {
    int64_t   ckpt;
    pg_rows_t rows;
} pg_pending_t;

static void
rows_free(pg_rows_t *r)
{
    weir_buf_free(&r->buf);
    free(r->off);
    memset(r, 0, sizeof(*r));
}

static void
rows_clear(pg_rows_t *r)
{
    weir_buf_reset(&r->buf);
    r->n = 0;
}

static int
rows_add_off(pg_rows_t *r, size_t off)
{
    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 1024;
        size_t *o = realloc(r->off, (size_t)cap * sizeof(*o));
        if (o == NULL)
            return WEIR_ENOMEM;
        r->off = o;
        r->cap = cap;
    }
    r->off[r->n++] = off;
    return 0;
}

static inline size_t
row_len(const pg_rows_t *r, int i)
{
    return (i + 1 < r->n ? r->off[i + 1] : r->buf.len) - r->off[i];
}

static inline void
put16(char *p, uint16_t v)
{
    p[0] = (char)(v >> 8);
    p[1] = (char)v;
}

static inline void
put32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

static inline void
put64(char *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static inline uint32_t
get32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return ((uint32_t)u[0] << 24) | ((uint32_t)u[1] << 16) | ((uint32_t)u[2] << 8) | u[3];
}

static inline uint64_t
get64(const char *p)
{
    return ((uint64_t)get32(p) << 32) | get32(p + 4);
}

/* Appends one row of schema as a binary COPY tuple. Returns 0, WEIR_ENOMEM,
 * or WEIR_ERANGE with *bad the field that cannot be sent. */
static int
rows_append(pg_rows_t *r, const weir_schema_t *schema, const weir_value_t *row, int *bad)
{
    size_t need = 2;
    char *p;
    int rc;

    for (int f = 0; f < schema->nfields; f++) {
        const weir_value_t *v = &row[f];
        need += 4;
        if (v->null)
            continue;
        switch (schema->fields[f].type) {
        case WEIR_T_BOOL:   need += 1; break;
        case WEIR_T_STRING:
        case WEIR_T_BYTES:
            if (v->len > INT32_MAX) {
                *bad = f;
                return WEIR_ERANGE;
            }
            need += v->len;
            break;
        default:            need += 8; break;
        }
    }
    if ((rc = weir_buf_reserve(&r->buf, need)) != 0 || (rc = rows_add_off(r, r->buf.len)) != 0)
        return rc;
    p = r->buf.data + r->buf.len;
    put16(p, (uint16_t)schema->nfields);
    p += 2;
    for (int f = 0; f < schema->nfields; f++) {
        const weir_value_t *v = &row[f];
        uint64_t bits;
        int64_t ts;

        if (v->null) {
            put32(p, UINT32_MAX);            /* -1: NULL */
            p += 4;
            continue;
        }
        switch (schema->fields[f].type) {
        case WEIR_T_INT:
            put32(p, 8);
            put64(p + 4, (uint64_t)v->u.i);
            p += 12;
            break;
        case WEIR_T_DOUBLE: {
            double d = v->type == WEIR_T_INT ? (double)v->u.i : v->u.d;
            memcpy(&bits, &d, 8);
            put32(p, 8);
            put64(p + 4, bits);
            p += 12;
            break;
        }
        case WEIR_T_BOOL:
            put32(p, 1);
            p[4] = v->u.b ? 1 : 0;
            p += 5;
            break;
        case WEIR_T_TIMESTAMP:
            if (__builtin_sub_overflow(v->u.i, PG_EPOCH_US, &ts)) {
                r->n--;
                *bad = f;
                return WEIR_ERANGE;
            }
            put32(p, 8);
            put64(p + 4, (uint64_t)ts);
            p += 12;
            break;
        default:                                /* string, bytes */
            put32(p, v->len);
            if (v->len > 0)
                memcpy(p + 4, v->u.s, v->len);
            p += 4 + v->len;
            break;
        }
    }
    r->buf.len += need;
    return 0;
}

/* Checks that data[0..len) is whole tuples of nfields and appends their
 * offsets (data already copied into r->buf at base). */
static int
rows_index(pg_rows_t *r, size_t base, size_t len, int nfields, int64_t nrows)
{
    const char *d = r->buf.data + base;
    size_t pos = 0;
    int64_t n = 0;
    int rc;

    while (pos < len) {
        size_t start = pos;

        if (len - pos < 2 || (int)(((unsigned char)d[pos] << 8) | (unsigned char)d[pos + 1]) != nfields)
            return WEIR_EPARSE;
        pos += 2;
        for (int f = 0; f < nfields; f++) {
            uint32_t l;
            if (len - pos < 4)
                return WEIR_EPARSE;
            l = get32(d + pos);
            pos += 4;
            if (l == UINT32_MAX)
                continue;
            if (l > INT32_MAX || len - pos < l)
                return WEIR_EPARSE;
            pos += l;
        }
        if ((rc = rows_add_off(r, base + start)) != 0)
            return rc;
        n++;
    }
    return n == nrows ? 0 : WEIR_EPARSE;
}

/* ---- the instance -------------------------------------------------------------- */

/* A row to write and its key, for de-duplication. */
typedef struct pg_ref {
    const char *row;
    uint32_t    len;
    bool        keep;
} pg_ref_t;

typedef struct pg_sink {
    const pg_conf_t     *conf;
    const weir_op_ctx_t *ctx;
    PGconn              *conn;
    bool                 txn_mode;       /* commit on checkpoint completion */
    pg_rows_t            cur;            /* rows since the last barrier / flush */
    pg_pending_t        *pending;        /* snapshotted, not yet committed, by ckpt */
    int                  npending, cap_pending;
    pg_rows_t            spare;          /* a dropped set's memory, for reuse */
    pg_ref_t            *refs;           /* scratch of one write */
    uint32_t            *slots;
    size_t               cap_refs, cap_slots;
    char                 appname[64];
    char                 what[320];      /* "[job..] postgres sink 'x' (table t)" */
    uint64_t             written, txns;
} pg_sink_t;

/* The server's message, on one line, into buf. */
static const char *
pg_message(PGconn *conn, const PGresult *res, char *buf, size_t cap)
{
    const char *m = res != NULL ? PQresultErrorMessage(res) : "";
    size_t n = 0;

    if (m == NULL || m[0] == '\0')
        m = conn != NULL ? PQerrorMessage(conn) : "out of memory";
    if (m == NULL || m[0] == '\0')
        m = "unknown error";
    for (const char *q = m; *q != '\0' && n + 3 < cap; q++) {
        if (*q == '\n' || *q == '\t') {
            while (q[1] == '\n' || q[1] == '\t')
                q++;
            if (q[1] == '\0')
                break;
            if (n > 0 && buf[n - 1] != ' ') {
                buf[n++] = ';';
                buf[n++] = ' ';
            }
            continue;
        }
        buf[n++] = *q;
    }
    while (n > 0 && buf[n - 1] == ' ')
        n--;
    buf[n] = '\0';
    return buf;
}

static int
pg_fail(pg_sink_t *s, const char *doing, const PGresult *res, weir_err_t *err)
{
    char msg[WEIR_ERR_MSG_MAX];

    return weir_err_set(err, WEIR_EIO, "%s: %s: %s", s->what, doing,
                        pg_message(s->conn, res, msg, sizeof(msg)));
}

/* Runs sql (no rows expected); 0 or an error naming 'doing'. */
static int
pg_run(pg_sink_t *s, const char *sql, const char *doing, weir_err_t *err)
{
    PGresult *res = PQexec(s->conn, sql);
    int rc = 0;

    if (res == NULL || (PQresultStatus(res) != PGRES_COMMAND_OK &&
                        PQresultStatus(res) != PGRES_TUPLES_OK))
        rc = pg_fail(s, doing, res, err);
    PQclear(res);
    return rc;
}

/* The server's notices ("relation already exists, skipping") are for
 * debugging only; libpq would print them on stderr. */
static void
notice_cb(void *arg, const char *message)
{
    pg_sink_t *s = arg;

    weir_log_debug("%s: %.*s", s->what, (int)strcspn(message, "\n"), message);
}

/* Opens a fresh connection and sets the session up: the stage and the
 * prepared upsert. ddl: run the table's DDL too (once per open). */
static int
pg_connect(pg_sink_t *s, bool ddl, weir_err_t *err)
{
    const pg_conf_t *c = s->conf;
    const char *const keys[] = { "connect_timeout", "application_name", "dbname", NULL };
    const char *const vals[] = { "10", s->appname, c->dsn, NULL };
    PGresult *res;
    int rc;

    if (s->conn != NULL)
        PQfinish(s->conn);
    s->conn = PQconnectdbParams(keys, vals, 1);
    if (s->conn == NULL)
        return weir_err_set(err, WEIR_ENOMEM, "%s: out of memory", s->what);
    if (PQstatus(s->conn) != CONNECTION_OK)
        return pg_fail(s, "cannot connect", NULL, err);
    PQsetNoticeProcessor(s->conn, notice_cb, s);
    if (ddl && c->sql_ddl != NULL &&
        (rc = pg_run(s, c->sql_ddl, "cannot create the table", err)) != 0)
        return rc;
    if ((rc = pg_run(s, c->sql_stage, "cannot create the session's stage table", err)) != 0)
        return rc;
    res = PQprepare(s->conn, "weir_upsert", c->sql_upsert, 0, NULL);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = pg_fail(s, "cannot prepare the upsert", res, err);
    PQclear(res);
    return rc;
}

/* The key fields of a row, normalized so that keys PostgreSQL finds equal
 * compare equal here (doubles: -0 is 0, every NaN is one NaN). */
typedef struct pg_key {
    const char *p[WEIR_MAX_KEYS];
    int32_t     len[WEIR_MAX_KEYS];
    char        tmp[WEIR_MAX_KEYS][8];
} pg_key_t;

static void
row_key(const pg_conf_t *c, const char *row, pg_key_t *k)
{
    const weir_schema_t *in = c->schema;
    const char *q = row + 2;

    for (int f = 0; f <= c->key_max; f++) {
        int32_t len = (int32_t)get32(q);
        int i = c->key_slot[f];

        if (i >= 0) {
            k->p[i] = q + 4;
            k->len[i] = len;
            if (in->fields[f].type == WEIR_T_DOUBLE && len == 8) {
                uint64_t bits = get64(q + 4);
                double d;

                memcpy(&d, &bits, 8);
                if (d == 0.0)
                    bits = 0;
                else if (isnan(d))
                    bits = UINT64_C(0x7ff8000000000000);
                put64(k->tmp[i], bits);
                k->p[i] = k->tmp[i];
            }
        }
        q += 4 + (len > 0 ? len : 0);
    }
}

static uint64_t
key_hash(const pg_conf_t *c, const pg_key_t *k)
{
    uint64_t h = 0x77656972;

    for (int i = 0; i < c->nkeys; i++)
        h = k->len[i] < 0 ? h * 31 + 1 : XXH3_64bits_withSeed(k->p[i], (size_t)k->len[i], h);
    return h;
}

static bool
key_equal(const pg_conf_t *c, const pg_key_t *a, const pg_key_t *b)
{
    for (int i = 0; i < c->nkeys; i++) {
        if (a->len[i] != b->len[i])
            return false;
        /* NULL keys never conflict in PostgreSQL (the insert fails instead) */
        if (a->len[i] < 0 || memcmp(a->p[i], b->p[i], (size_t)a->len[i]) != 0)
            return false;
    }
    return true;
}

/* Fills s->refs with the rows of sets, in order, marking keep on the last
 * row of each key. Returns the number of rows to send, or WEIR_ENOMEM. */
static int64_t
dedup(pg_sink_t *s, pg_rows_t *const *sets, int nsets)
{
    const pg_conf_t *c = s->conf;
    size_t n = 0, cap, mask, i = 0;
    int64_t kept = 0;

    for (int k = 0; k < nsets; k++)
        n += (size_t)sets[k]->n;
    if (n > UINT32_MAX - 1)
        return WEIR_E2BIG;
    if (n > s->cap_refs) {
        pg_ref_t *r = realloc(s->refs, n * sizeof(*r));
        if (r == NULL)
            return WEIR_ENOMEM;
        s->refs = r;
        s->cap_refs = n;
    }
    for (cap = 1024; cap < 2 * n; cap *= 2)
        ;
    if (cap > s->cap_slots) {
        uint32_t *sl = realloc(s->slots, cap * sizeof(*sl));
        if (sl == NULL)
            return WEIR_ENOMEM;
        s->slots = sl;
        s->cap_slots = cap;
    }
    memset(s->slots, 0, cap * sizeof(*s->slots));
    mask = cap - 1;
    for (int k = 0; k < nsets; k++) {
        const pg_rows_t *r = sets[k];

        for (int j = 0; j < r->n; j++, i++) {
            pg_ref_t *ref = &s->refs[i];
            pg_key_t key, other;
            size_t h;

            ref->row = r->buf.data + r->off[j];
            ref->len = (uint32_t)row_len(r, j);
            ref->keep = true;
            kept++;
            row_key(c, ref->row, &key);
            for (h = (size_t)key_hash(c, &key) & mask; s->slots[h] != 0; h = (h + 1) & mask) {
                pg_ref_t *prev = &s->refs[s->slots[h] - 1];

                row_key(c, prev->row, &other);
                if (key_equal(c, &key, &other)) {
                    prev->keep = false;     /* the later row wins */
                    kept--;
                    break;
                }
            }
            s->slots[h] = (uint32_t)(i + 1);
        }
    }
    return kept;
}

/* Sends refs[0..n) that are kept as one binary COPY. */
static int
send_copy(pg_sink_t *s, size_t n)
{
    static const char header[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
    static const char trailer[2] = { (char)0xff, (char)0xff };
    size_t i = 0;

    if (PQputCopyData(s->conn, header, (int)sizeof(header)) != 1)
        return -1;
    while (i < n) {
        const char *start;
        size_t len;

        if (!s->refs[i].keep) {
            i++;
            continue;
        }
        /* a run of kept rows that are adjacent in memory: one call */
        start = s->refs[i].row;
        len = s->refs[i].len;
        for (i++; i < n && s->refs[i].keep && s->refs[i].row == start + len &&
                  len + s->refs[i].len < (1u << 30); i++)
            len += s->refs[i].len;
        if (PQputCopyData(s->conn, start, (int)len) != 1)
            return -1;
    }
    if (PQputCopyData(s->conn, trailer, 2) != 1)
        return -1;
    return PQputCopyEnd(s->conn, NULL) == 1 ? 0 : -1;
}

/* One attempt of the write transaction. */
static int
try_write(pg_sink_t *s, size_t nrefs, weir_err_t *err)
{
    PGresult *res;
    int rc;

    if ((rc = pg_run(s, "BEGIN", "cannot begin a transaction", err)) != 0)
        return rc;
    res = PQexec(s->conn, s->conf->sql_copy);
    if (res == NULL || PQresultStatus(res) != PGRES_COPY_IN) {
        rc = pg_fail(s, "cannot start COPY", res, err);
        PQclear(res);
        return rc;
    }
    PQclear(res);
    if (send_copy(s, nrefs) != 0)
        return pg_fail(s, "COPY failed", NULL, err);
    res = PQgetResult(s->conn);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = pg_fail(s, "COPY failed", res, err);
    PQclear(res);
    while ((res = PQgetResult(s->conn)) != NULL)
        PQclear(res);
    if (rc != 0)
        return rc;
    res = PQexecPrepared(s->conn, "weir_upsert", 0, NULL, NULL, NULL, 0);
    if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
        rc = pg_fail(s, "upsert failed", res, err);
    PQclear(res);
    if (rc != 0)
        return rc;
    return pg_run(s, "COMMIT", "commit failed", err);
}

/* Writes every row of sets in ONE transaction, de-duplicated by key (the
 * last row of a key wins). A lost connection is retried once on a fresh
 * one; the upserts make the repeat harmless even if the first COMMIT did
 * reach the server. */
static int
write_sets(pg_sink_t *s, pg_rows_t *const *sets, int nsets, weir_err_t *err)
{
    int64_t kept = dedup(s, sets, nsets);
    size_t nrefs = 0;
    int rc;

    if (kept < 0)
        return weir_err_set(err, (int)kept, "%s: %s", s->what, weir_strerror((int)kept));
    if (kept == 0)
        return 0;
    for (int k = 0; k < nsets; k++)
        nrefs += (size_t)sets[k]->n;
    for (int attempt = 0;; attempt++) {
        if (s->conn == NULL || PQstatus(s->conn) != CONNECTION_OK)
            rc = pg_connect(s, false, err);
        else
            rc = 0;
        if (rc == 0 && (rc = try_write(s, nrefs, err)) == 0)
            break;
        if (s->conn != NULL && PQstatus(s->conn) == CONNECTION_OK) {
            /* the server said no: leave the failed transaction, fail the task */
            PQclear(PQexec(s->conn, "ROLLBACK"));
            return rc;
        }
        if (attempt == 1)
            return rc;
        if (err != NULL) {
            size_t n = strlen(s->what);
            const char *m = strncmp(err->msg, s->what, n) == 0 && err->msg[n] == ':'
                            ? err->msg + n + 2 : err->msg;
            weir_log_warn("%s: connection lost, retrying once on a new connection: %s",
                          s->what, m);
        }
    }
    s->written += (uint64_t)kept;
    s->txns++;
    return 0;
}

static int
pg_open(weir_op_t *op, weir_err_t *err)
{
    const pg_conf_t *c = op->cfg->conf;
    pg_sink_t *s = calloc(1, sizeof(*s));
    int rc;

    if (s == NULL)
        return WEIR_ENOMEM;
    s->conf = c;
    s->ctx = op->ctx;
    s->txn_mode = op->ctx->checkpoint_interval_us > 0;
    snprintf(s->what, sizeof(s->what), "%s postgres sink '%s' (table %s)",
             op->ctx->log_prefix != NULL ? op->ctx->log_prefix : "", c->name, c->table);
    snprintf(s->appname, sizeof(s->appname), "weir %s %s#%d",
             op->ctx->job_id != NULL ? op->ctx->job_id : "", c->name, op->ctx->subtask + 1);
    if ((rc = pg_connect(s, true, err)) != 0) {
        PQfinish(s->conn);
        free(s);
        return rc;
    }
    op->self = s;
    return 0;
}

static void
pg_close(weir_op_t *op)
{
    pg_sink_t *s = op->self;

    if (s == NULL)
        return;
    PQfinish(s->conn);
    rows_free(&s->cur);
    rows_free(&s->spare);
    for (int i = 0; i < s->npending; i++)
        rows_free(&s->pending[i].rows);
    free(s->pending);
    free(s->refs);
    free(s->slots);
    free(s);
    op->self = NULL;
}

static int
flush_cur(pg_sink_t *s, weir_err_t *err)
{
    pg_rows_t *set = &s->cur;
    int rc = write_sets(s, &set, 1, err);

    if (rc == 0)
        rows_clear(&s->cur);
    return rc;
}

static int
pg_process(weir_op_t *op, int input, const weir_batch_t *in, weir_batch_t *out,
           weir_err_t *err)
{
    pg_sink_t *s = op->self;
    const weir_schema_t *schema = s->conf->schema;
    int rc, bad = 0;

    (void)input;
    (void)out;
    for (int r = 0; r < in->nrows; r++) {
        if ((rc = rows_append(&s->cur, schema, weir_batch_row(in, r), &bad)) != 0) {
            if (rc == WEIR_ERANGE)
                return weir_err_set(err, rc, "%s: field '%s': value out of range for "
                                    "PostgreSQL", s->what, schema->fields[bad].name);
            return weir_err_set(err, rc, "%s: %s", s->what, weir_strerror(rc));
        }
        if (!s->txn_mode && s->cur.n >= s->conf->batch_rows &&
            (rc = flush_cur(s, err)) != 0)
            return rc;
    }
    return 0;
}

/* Drops pending[0..n) (written), keeping one set's memory for reuse. */
static void
drop_pending(pg_sink_t *s, int n)
{
    for (int i = 0; i < n; i++) {
        if (s->spare.cap == 0) {
            s->spare = s->pending[i].rows;
            rows_clear(&s->spare);
        } else {
            rows_free(&s->pending[i].rows);
        }
    }
    if (n > 0 && n < s->npending)
        memmove(s->pending, s->pending + n, (size_t)(s->npending - n) * sizeof(*s->pending));
    s->npending -= n;
}

/* Writes pending (all of it) and cur in one transaction. */
static int
write_all(pg_sink_t *s, weir_err_t *err)
{
    pg_rows_t **sets = calloc((size_t)s->npending + 1, sizeof(*sets));
    int rc;

    if (sets == NULL)
        return WEIR_ENOMEM;
    for (int i = 0; i < s->npending; i++)
        sets[i] = &s->pending[i].rows;
    sets[s->npending] = &s->cur;
    rc = write_sets(s, sets, s->npending + 1, err);
    free(sets);
    if (rc == 0) {
        drop_pending(s, s->npending);
        rows_clear(&s->cur);
    }
    return rc;
}

static int
pg_finish(weir_op_t *op, weir_batch_t *out, weir_err_t *err)
{
    pg_sink_t *s = op->self;
    int rc;

    (void)out;
    /* with checkpoints, the final one takes what is left and its completion
     * writes it; without, it is written now */
    rc = op->ctx->final_checkpoint ? 0 : write_all(s, err);
    if (rc == 0)
        weir_log_info("%s: %" PRIu64 " rows upserted in %" PRIu64 " transactions%s", s->what,
                      s->written, s->txns,
                      op->ctx->final_checkpoint ? "; the rest at the final checkpoint" : "");
    return rc;
}

/* ---- checkpoints ------------------------------------------------------------ */

/* State: [PG_STATE_MAGIC, PG_STATE_VER, [type, ...], [[ckpt, nrows, bin], ...]]
 * where bin is the rows' binary COPY tuples. */
static int
pg_snapshot(weir_op_t *op, int64_t ckpt, weir_buf_t *out, weir_err_t *err)
{
    pg_sink_t *s = op->self;
    const weir_schema_t *schema = s->conf->schema;
    msgpack_packer pk;
    int rc = 0;

    if (!s->txn_mode) {
        /* a savepoint of a job without periodic checkpoints: what came
         * before the barrier is written now, nothing stays pending */
        if ((rc = flush_cur(s, err)) != 0)
            return rc;
    } else if (s->cur.n > 0) {
        if (s->npending == s->cap_pending) {
            int cap = s->cap_pending ? s->cap_pending * 2 : 4;
            pg_pending_t *p = realloc(s->pending, (size_t)cap * sizeof(*p));
            if (p == NULL)
                return weir_err_set(err, WEIR_ENOMEM, "%s: out of memory", s->what);
            s->pending = p;
            s->cap_pending = cap;
        }
        s->pending[s->npending].ckpt = ckpt;
        s->pending[s->npending].rows = s->cur;
        s->npending++;
        s->cur = s->spare;
        memset(&s->spare, 0, sizeof(s->spare));
    }
    msgpack_packer_init(&pk, out, weir_buf_msgpack_write);
    rc |= msgpack_pack_array(&pk, 4);
    rc |= msgpack_pack_str_with_body(&pk, PG_STATE_MAGIC, strlen(PG_STATE_MAGIC));
    rc |= msgpack_pack_int(&pk, PG_STATE_VER);
    rc |= msgpack_pack_array(&pk, (size_t)schema->nfields);
    for (int f = 0; f < schema->nfields; f++)
        rc |= msgpack_pack_int(&pk, (int)schema->fields[f].type);
    rc |= msgpack_pack_array(&pk, (size_t)s->npending);
    for (int i = 0; i < s->npending; i++) {
        const pg_rows_t *r = &s->pending[i].rows;
        rc |= msgpack_pack_array(&pk, 3);
        rc |= msgpack_pack_int64(&pk, s->pending[i].ckpt);
        rc |= msgpack_pack_int64(&pk, r->n);
        rc |= msgpack_pack_bin_with_body(&pk, r->buf.data, r->buf.len);
    }
    if (rc != 0)
        return weir_err_set(err, WEIR_ENOMEM, "%s: out of memory", s->what);
    return 0;
}

static int
pg_notify_complete(weir_op_t *op, int64_t ckpt, weir_err_t *err)
{
    pg_sink_t *s = op->self;
    pg_rows_t **sets;
    int n = 0, rc;

    while (n < s->npending && s->pending[n].ckpt <= ckpt)
        n++;
    if (n == 0)
        return 0;
    sets = calloc((size_t)n, sizeof(*sets));
    if (sets == NULL)
        return WEIR_ENOMEM;
    for (int i = 0; i < n; i++)
        sets[i] = &s->pending[i].rows;
    rc = write_sets(s, sets, n, err);
    free(sets);
    if (rc == 0)
        drop_pending(s, n);
    return rc;
}

typedef struct pg_restored {
    int64_t   ckpt;
    int       order;           /* blob order, for a stable sort */
    pg_rows_t rows;
} pg_restored_t;

static int
cmp_restored(const void *a, const void *b)
{
    const pg_restored_t *x = a, *y = b;

    if (x->ckpt != y->ckpt)
        return x->ckpt < y->ckpt ? -1 : 1;
    return x->order - y->order;
}

/* Appends the pending sets of one blob to *rs. */
static int
decode_blob(pg_sink_t *s, const weir_op_blob_t *blob, pg_restored_t **rs, int *n, int *cap,
            weir_err_t *err)
{
    const weir_schema_t *schema = s->conf->schema;
    msgpack_unpacked u;
    const msgpack_object *a, *types, *sets;
    size_t off = 0;
    int rc = WEIR_EPARSE;

    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, blob->data, blob->len, &off) != MSGPACK_UNPACK_SUCCESS)
        goto bad;
    if (u.data.type != MSGPACK_OBJECT_ARRAY || u.data.via.array.size != 4)
        goto bad;
    a = u.data.via.array.ptr;
    if (a[0].type != MSGPACK_OBJECT_STR || a[0].via.str.size != strlen(PG_STATE_MAGIC) ||
        memcmp(a[0].via.str.ptr, PG_STATE_MAGIC, a[0].via.str.size) != 0 ||
        a[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || a[1].via.u64 != PG_STATE_VER ||
        a[2].type != MSGPACK_OBJECT_ARRAY || a[3].type != MSGPACK_OBJECT_ARRAY)
        goto bad;
    types = &a[2];
    if ((int)types->via.array.size != schema->nfields)
        goto schema;
    for (int f = 0; f < schema->nfields; f++)
        if (types->via.array.ptr[f].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            types->via.array.ptr[f].via.u64 != (uint64_t)schema->fields[f].type)
            goto schema;
    sets = &a[3];
    for (uint32_t i = 0; i < sets->via.array.size; i++) {
        const msgpack_object *e = &sets->via.array.ptr[i];
        pg_restored_t *r;

        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size != 3 ||
            (e->via.array.ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
             e->via.array.ptr[0].type != MSGPACK_OBJECT_NEGATIVE_INTEGER) ||
            e->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            e->via.array.ptr[2].type != MSGPACK_OBJECT_BIN)
            goto bad;
        if (*n == *cap) {
            int nc = *cap ? *cap * 2 : 8;
            pg_restored_t *p = realloc(*rs, (size_t)nc * sizeof(*p));
            if (p == NULL) {
                rc = WEIR_ENOMEM;
                goto fail;
            }
            *rs = p;
            *cap = nc;
        }
        r = &(*rs)[(*n)++];
        memset(r, 0, sizeof(*r));
        r->ckpt = e->via.array.ptr[0].via.i64;
        r->order = *n;
        if ((rc = weir_buf_append(&r->rows.buf, e->via.array.ptr[2].via.bin.ptr,
                                  e->via.array.ptr[2].via.bin.size)) != 0)
            goto fail;
        rc = rows_index(&r->rows, 0, r->rows.buf.len, schema->nfields,
                        (int64_t)e->via.array.ptr[1].via.u64);
        if (rc == WEIR_EPARSE)
            goto bad;
        if (rc != 0)
            goto fail;
    }
    msgpack_unpacked_destroy(&u);
    return 0;

schema:
    msgpack_unpacked_destroy(&u);
    return weir_err_set(err, WEIR_ESTATE, "%s: the state of old subtask %d was taken with "
                        "another input schema; it cannot be restored", s->what, blob->subtask);
bad:
    msgpack_unpacked_destroy(&u);
    return weir_err_set(err, WEIR_EPARSE, "%s: the state of old subtask %d is corrupt",
                        s->what, blob->subtask);
fail:
    msgpack_unpacked_destroy(&u);
    return weir_err_set(err, rc, "%s: %s", s->what, weir_strerror(rc));
}

static int
pg_restore(weir_op_t *op, int64_t ckpt, int old_parallelism, const weir_op_blob_t *blobs,
           int nblobs, weir_err_t *err)
{
    pg_sink_t *s = op->self;
    pg_restored_t *rs = NULL;
    pg_rows_t **sets = NULL;
    int n = 0, cap = 0, rc = 0;
    uint64_t before = s->written;

    (void)old_parallelism;
    for (int b = 0; b < nblobs && rc == 0; b++)
        if (blobs[b].subtask % s->ctx->parallelism == s->ctx->subtask)
            rc = decode_blob(s, &blobs[b], &rs, &n, &cap, err);
    if (rc == 0 && n > 0) {
        qsort(rs, (size_t)n, sizeof(*rs), cmp_restored);
        sets = calloc((size_t)n, sizeof(*sets));
        if (sets == NULL)
            rc = WEIR_ENOMEM;
        for (int i = 0; i < n && rc == 0; i++)
            sets[i] = &rs[i].rows;
        if (rc == 0)
            rc = write_sets(s, sets, n, err);
        if (rc == 0)
            weir_log_info("%s: restored checkpoint %" PRId64 ": %" PRIu64
                          " pending rows re-applied", s->what, ckpt, s->written - before);
    }
    for (int i = 0; i < n; i++)
        rows_free(&rs[i].rows);
    free(rs);
    free(sets);
    return rc;
}

const weir_op_kind_t weir_op_pg_sink = {
    .name            = "postgres",
    .roles           = WEIR_ROLE_SINK,
    .min_inputs      = 1,
    .max_inputs      = 1,
    .keyed           = false,
    .params          = pg_params,
    .summary         = "upserts rows into a PostgreSQL table by key; exactly-once with checkpoints",
    .configure       = pg_configure,
    .conf_free       = pg_conf_free,
    .open            = pg_open,
    .process         = pg_process,
    .finish          = pg_finish,
    .close           = pg_close,
    .snapshot        = pg_snapshot,
    .notify_complete = pg_notify_complete,
    .restore         = pg_restore,
};
