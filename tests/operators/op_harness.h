/* tests/operators/op_harness.h -- drives one operator kind by hand.
 *
 * The operator tests skip the planner and the task runtime on purpose: they
 * parse a job file from a YAML string, take one node's parameters, fill the
 * weir_op_config_t the planner would (input schemas, key indexes,
 * parallelism), and call configure / open / poll or process / finish /
 * close themselves, one subtask or several. Rows are compared as text
 * rendered here ("1|abc|null|2024-01-01 00:00:00.000000"), independent of
 * the JSON writer, so a test states its expected rows exactly.
 *
 * Header-only (static functions): each test file includes it once.
 */
#ifndef WEIR_TESTS_OP_HARNESS_H
#define WEIR_TESTS_OP_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "operators/operator.h"
#include "operators/registry.h"
#include "runtime/core/batch.h"
#include "runtime/graph/jobfile.h"
#include "state/keyed_state.h"

#define H_MAX_SUBTASKS 8
/* each test file uses some of these helpers */
#define H_FN static __attribute__((unused))

typedef struct h_op {
    weir_jobfile_t  *jf;
    weir_op_config_t cfg;
    weir_err_t       err;
    int              parallelism;
    weir_op_ctx_t    ctx[H_MAX_SUBTASKS];
    weir_op_t        op[H_MAX_SUBTASKS];
    char             prefix[H_MAX_SUBTASKS][64];
    weir_state_backend_t *state[H_MAX_SUBTASKS];
    bool             opened[H_MAX_SUBTASKS];
    bool             configured;
} h_op_t;

/* Schema from "name:type[?], ..." (a '?' marks nullable); returns new. */
H_FN weir_schema_t *
h_schema(const char *spec)
{
    char buf[512], *save = NULL, *tok;
    weir_schema_t *s;
    int n = 1, i = 0;

    for (const char *p = spec; *p; p++)
        n += *p == ',';
    s = weir_schema_new(n);
    assert_non_null(s);
    snprintf(buf, sizeof(buf), "%s", spec);
    for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        char *colon, *name = tok, *type;
        bool nullable = false;
        int t;

        while (*name == ' ')
            name++;
        colon = strchr(name, ':');
        assert_non_null(colon);
        *colon = '\0';
        type = colon + 1;
        while (*type == ' ')
            type++;
        if (type[strlen(type) - 1] == '?') {
            nullable = true;
            type[strlen(type) - 1] = '\0';
        }
        t = weir_type_parse(type);
        assert_true(t > 0);
        assert_int_equal(weir_schema_set(s, i++, name, (weir_type_t)t, nullable), 0);
    }
    assert_int_equal(i, n);
    return s;
}

/* Parses yaml (path "test.yaml") and configures node 'node' of role 'role'
 * against 'input' (borrowed; NULL for sources). Key indexes come from the
 * node's key_by. Returns configure's code; h->err holds the message. */
H_FN int
h_configure(h_op_t *h, const char *yaml, const char *node, unsigned role, weir_schema_t *input)
{
    const weir_jf_node_t *jn;
    int idx, rc;

    memset(h, 0, sizeof(*h));
    rc = weir_jobfile_parse("test.yaml", yaml, strlen(yaml), NULL, &h->jf, &h->err);
    if (rc != 0)
        fail_msg("job file does not parse: %s", h->err.msg);
    idx = weir_jobfile_find(h->jf, node);
    assert_true(idx >= 0);
    jn = &h->jf->nodes[idx];
    h->cfg.name = jn->name;
    h->cfg.kind = weir_op_kind_find_role(jn->kind, role);
    assert_non_null(h->cfg.kind);
    h->cfg.params = jn->params;
    h->cfg.parallelism = jn->parallelism > 0 ? jn->parallelism : h->jf->parallelism;
    h->cfg.max_parallelism = h->jf->max_parallelism;
    if (input != NULL) {
        h->cfg.ninputs = 1;
        h->cfg.input_schemas[0] = input;
        h->cfg.input_aliases[0] = jn->ninputs > 0 ? jn->inputs[0].from : "in";
        if (jn->ninputs > 0) {
            h->cfg.nkeys = jn->inputs[0].nkeys;
            for (int k = 0; k < jn->inputs[0].nkeys; k++) {
                h->cfg.key_idx[0][k] = weir_schema_find(input, jn->inputs[0].keys[k]);
                assert_true(h->cfg.key_idx[0][k] >= 0);
            }
        }
    }
    rc = h->cfg.kind->configure(&h->cfg, &h->err);
    h->configured = rc == 0;
    return rc;
}

/* Configures and requires success. */
H_FN void
h_configure_ok(h_op_t *h, const char *yaml, const char *node, unsigned role, weir_schema_t *input)
{
    if (h_configure(h, yaml, node, role, input) != 0)
        fail_msg("configure failed: %s", h->err.msg);
}

/* Opens subtasks 0..parallelism-1 (each with its key-group range and, for
 * keyed kinds, its own in-memory state backend). */
H_FN void
h_open(h_op_t *h, int parallelism)
{
    int maxp = h->cfg.max_parallelism > 0 ? h->cfg.max_parallelism : 128;

    assert_true(parallelism >= 1 && parallelism <= H_MAX_SUBTASKS);
    h->parallelism = parallelism;
    for (int s = 0; s < parallelism; s++) {
        weir_op_ctx_t *c = &h->ctx[s];

        snprintf(h->prefix[s], sizeof(h->prefix[s]), "[job:test vertex:%s#%d/%d]", h->cfg.name,
                 s + 1, parallelism);
        c->job_id = "test";
        c->log_prefix = h->prefix[s];
        c->subtask = s;
        c->parallelism = parallelism;
        c->max_parallelism = maxp;
        c->kg_first = weir_key_group_first(s, parallelism, maxp);
        c->kg_last = weir_key_group_last(s, parallelism, maxp);
        if (h->cfg.kind->keyed) {
            assert_int_equal(weir_state_backend_memory(c->kg_first, c->kg_last, &h->state[s]), 0);
            c->state = h->state[s];
        }
        h->op[s].cfg = &h->cfg;
        h->op[s].ctx = c;
        if (h->cfg.kind->open != NULL) {
            int rc = h->cfg.kind->open(&h->op[s], &h->err);
            if (rc != 0)
                fail_msg("open of subtask %d failed: %s", s, h->err.msg);
        }
        h->opened[s] = true;
    }
}

H_FN void
h_close(h_op_t *h)
{
    for (int s = 0; s < H_MAX_SUBTASKS; s++) {
        if (h->opened[s] && h->cfg.kind->close != NULL)
            h->cfg.kind->close(&h->op[s]);
        h->opened[s] = false;
        weir_state_backend_destroy(h->state[s]);
        h->state[s] = NULL;
    }
    if (h->configured) {
        if (h->cfg.conf != NULL && h->cfg.kind->conf_free != NULL)
            h->cfg.kind->conf_free(h->cfg.conf);
        weir_schema_unref(h->cfg.output_schema);
    }
    h->configured = false;
    weir_jobfile_destroy(h->jf);
    h->jf = NULL;
}

/* ---- rows as text ------------------------------------------------------ */

typedef struct h_rows {
    int    n, cap;
    char **rows;
} h_rows_t;

H_FN void
h_format_value(const weir_value_t *v, char *out, size_t cap)
{
    char ts[32];

    if (v->null) {
        snprintf(out, cap, "null");
        return;
    }
    switch ((weir_type_t)v->type) {
    case WEIR_T_INT:       snprintf(out, cap, "%lld", (long long)v->u.i); break;
    case WEIR_T_DOUBLE:    snprintf(out, cap, "%.15g", v->u.d); break;
    case WEIR_T_BOOL:      snprintf(out, cap, "%s", v->u.b ? "true" : "false"); break;
    case WEIR_T_STRING:
    case WEIR_T_BYTES:     snprintf(out, cap, "%.*s", (int)v->len, v->u.s); break;
    case WEIR_T_TIMESTAMP: weir_ts_format(v->u.i, ts); snprintf(out, cap, "%s", ts); break;
    default:               snprintf(out, cap, "?"); break;
    }
}

/* "v0|v1|..." of row r of b, new. */
H_FN char *
h_format_row(const weir_batch_t *b, int r)
{
    weir_buf_t buf = WEIR_BUF_INIT;
    char cell[64];
    const weir_value_t *row = weir_batch_row(b, r);

    for (int f = 0; f < b->nfields; f++) {
        const weir_value_t *v = &row[f];
        if (f > 0)
            assert_int_equal(weir_buf_putc(&buf, '|'), 0);
        if (!v->null && (v->type == WEIR_T_STRING || v->type == WEIR_T_BYTES)) {
            assert_int_equal(weir_buf_append(&buf, v->u.s, v->len), 0);
        } else {
            h_format_value(v, cell, sizeof(cell));
            assert_int_equal(weir_buf_append(&buf, cell, strlen(cell)), 0);
        }
    }
    assert_int_equal(weir_buf_nul(&buf), 0);
    return buf.data;
}

H_FN void
h_rows_add(h_rows_t *rs, char *row)
{
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? rs->cap * 2 : 64;
        rs->rows = realloc(rs->rows, (size_t)rs->cap * sizeof(*rs->rows));
        assert_non_null(rs->rows);
    }
    rs->rows[rs->n++] = row;
}

H_FN void
h_rows_add_batch(h_rows_t *rs, const weir_batch_t *b)
{
    for (int r = 0; r < b->nrows; r++)
        h_rows_add(rs, h_format_row(b, r));
}

H_FN int
h_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

H_FN void
h_rows_sort(h_rows_t *rs)
{
    if (rs->n > 1)
        qsort(rs->rows, (size_t)rs->n, sizeof(*rs->rows), h_cmp_str);
}

H_FN void
h_rows_free(h_rows_t *rs)
{
    for (int i = 0; i < rs->n; i++)
        free(rs->rows[i]);
    free(rs->rows);
    memset(rs, 0, sizeof(*rs));
}

/* Asserts rs holds exactly the rows of 'want' (NULL-terminated), in order. */
H_FN void
h_rows_expect(const h_rows_t *rs, const char *const *want)
{
    int n = 0;

    while (want[n] != NULL)
        n++;
    for (int i = 0; i < rs->n && i < n; i++)
        if (strcmp(rs->rows[i], want[i]) != 0)
            fail_msg("row %d: got '%s', want '%s'", i, rs->rows[i], want[i]);
    if (rs->n != n)
        fail_msg("got %d rows, want %d", rs->n, n);
}

/* A batch of schema s holding 'rows' (NULL-terminated), each "v0|v1|..."
 * in the format above ("null" is NULL). Returns new. */
H_FN weir_batch_t *
h_batch(weir_schema_t *s, const char *const *rows)
{
    weir_batch_t *b = weir_batch_new(s, 4);

    assert_non_null(b);
    for (int r = 0; rows[r] != NULL; r++) {
        weir_value_t *v = weir_batch_append(b);
        const char *p = rows[r];

        assert_non_null(v);
        for (int f = 0; f < s->nfields; f++) {
            const char *end = strchr(p, '|');
            size_t len = end ? (size_t)(end - p) : strlen(p);
            char cell[512];
            weir_type_t t = s->fields[f].type;

            assert_true(len < sizeof(cell));
            memcpy(cell, p, len);
            cell[len] = '\0';
            if (strcmp(cell, "null") == 0) {
                v[f] = weir_value_null(t);
            } else if (t == WEIR_T_INT) {
                v[f] = weir_value_int(strtoll(cell, NULL, 10));
            } else if (t == WEIR_T_DOUBLE) {
                v[f] = weir_value_double(strtod(cell, NULL));
            } else if (t == WEIR_T_BOOL) {
                v[f] = weir_value_bool(strcmp(cell, "true") == 0);
            } else if (t == WEIR_T_TIMESTAMP) {
                int64_t us = 0;
                assert_int_equal(weir_ts_parse(cell, len, &us), 0);
                v[f] = weir_value_ts(us);
            } else {
                v[f] = weir_value_str(cell, (uint32_t)len);
                v[f].type = (uint8_t)t;
                assert_int_equal(weir_batch_own(b, &v[f]), 0);
            }
            if (f + 1 < s->nfields) {
                assert_non_null(end);
                p = end + 1;
            } else {
                assert_null(end);
            }
        }
    }
    return b;
}

/* ---- driving ----------------------------------------------------------- */

/* Polls subtask s of a source until end of stream, max rows per poll,
 * appending every row to rs. Fails the test after too many polls. */
H_FN void
h_poll_all(h_op_t *h, int s, int max, h_rows_t *rs)
{
    weir_batch_t *out = weir_batch_new(h->cfg.output_schema, max);
    int rc = 0;

    assert_non_null(out);
    for (int polls = 0; polls < 1000000; polls++) {
        int64_t idle = 0;

        weir_batch_clear(out);
        rc = h->cfg.kind->poll(&h->op[s], out, max, &idle, &h->err);
        if (rc != 0 && rc != WEIR_EOS)
            fail_msg("poll failed: %s", h->err.msg);
        assert_true(out->nrows <= max);
        h_rows_add_batch(rs, out);
        if (rc == WEIR_EOS)
            break;
    }
    assert_int_equal(rc, WEIR_EOS);
    weir_batch_destroy(out);
}

/* Runs batch 'in' through subtask s's process; appends its output to rs
 * (when the kind has an output). Returns process's code. */
H_FN int
h_process(h_op_t *h, int s, const weir_batch_t *in, h_rows_t *rs)
{
    weir_batch_t *out = h->cfg.output_schema ? weir_batch_new(h->cfg.output_schema, 16) : NULL;
    int rc;

    rc = h->cfg.kind->process(&h->op[s], 0, in, out, &h->err);
    if (out != NULL && rs != NULL)
        h_rows_add_batch(rs, out);
    weir_batch_destroy(out);
    return rc;
}

H_FN int
h_finish(h_op_t *h, int s, h_rows_t *rs)
{
    weir_batch_t *out = h->cfg.output_schema ? weir_batch_new(h->cfg.output_schema, 16) : NULL;
    int rc = 0;

    if (h->cfg.kind->finish != NULL)
        rc = h->cfg.kind->finish(&h->op[s], out, &h->err);
    if (out != NULL && rs != NULL)
        h_rows_add_batch(rs, out);
    weir_batch_destroy(out);
    return rc;
}

/* 1-based line and column of the first occurrence of 'needle' in text. */
H_FN void
h_locate(const char *text, const char *needle, int *line, int *col)
{
    const char *p = strstr(text, needle), *ls = text;

    assert_non_null(p);
    *line = 1;
    for (const char *q = text; q < p; q++)
        if (*q == '\n') {
            (*line)++;
            ls = q + 1;
        }
    *col = (int)(p - ls) + 1;
}

/* Asserts err's message starts with "test.yaml:LINE:COL:" of needle's
 * position and contains 'part'. */
H_FN void
h_expect_error_at(const weir_err_t *err, const char *yaml, const char *needle, const char *part)
{
    char want[64];
    int line, col;

    h_locate(yaml, needle, &line, &col);
    snprintf(want, sizeof(want), "test.yaml:%d:%d:", line, col);
    if (strncmp(err->msg, want, strlen(want)) != 0)
        fail_msg("error '%s' does not start with '%s'", err->msg, want);
    if (part != NULL && strstr(err->msg, part) == NULL)
        fail_msg("error '%s' does not mention '%s'", err->msg, part);
}

#endif
