/* tests/operators/test_keyed_aggregate.c -- the count and sum operators.
 *
 * Three subtasks, each owning its key-group range and its own state
 * backend, get the rows the runtime would route to them (by key group of
 * weir_key_hash). With emit: updates every row must produce its key's new
 * running value, in input order; with emit: final nothing comes out until
 * finish, and then every key exactly once, from the subtask that owns it,
 * with its total. A row sent to the wrong subtask is an error, not a silent
 * second count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "op_harness.h"

#define P 3

static const char *const head =
    "name: t\n"
    "sources:\n"
    "  - name: words\n"
    "    kind: datagen\n"
    "    fields: [{name: id, type: int}]\n"
    "operators:\n";

static weir_schema_t *
words_schema(void)
{
    return h_schema("word:string, lang:string?, n:int?, x:double");
}

/* rows: word w<i % nwords>, lang en/de alternating per word, n = i or NULL
 * every 7th, x = i / 4. Text rows into out (NULL-terminated, new strings). */
static char **
make_rows(int nrows, int nwords)
{
    char **rows = calloc((size_t)nrows + 1, sizeof(*rows));

    assert_non_null(rows);
    for (int i = 0; i < nrows; i++) {
        char n[16];
        int w = (i * 7) % nwords;
        if (i % 7 == 3)
            snprintf(n, sizeof(n), "null");
        else
            snprintf(n, sizeof(n), "%d", i);
        assert_true(asprintf(&rows[i], "w%d|%s|%s|%.2f", w, (i / nwords) % 2 ? "de" : "en", n,
                             i / 4.0) > 0);
    }
    return rows;
}

static void
free_rows(char **rows)
{
    for (int i = 0; rows[i] != NULL; i++)
        free(rows[i]);
    free(rows);
}

/* Splits 'in' by the subtask owning each row's key group. */
static void
route(const h_op_t *h, const weir_batch_t *in, weir_batch_t *parts[P])
{
    for (int r = 0; r < in->nrows; r++) {
        const weir_value_t *row = weir_batch_row(in, r);
        uint64_t hash = weir_key_hash(row, h->cfg.key_idx[0], h->cfg.nkeys);
        int kg = weir_key_group(hash, 128);
        int s = weir_key_group_subtask(kg, P, 128);

        assert_true(kg >= h->ctx[s].kg_first && kg <= h->ctx[s].kg_last);
        assert_int_equal(weir_batch_append_copy(parts[s], row), 0);
    }
}

/* Feeds rows in batches of 'chunk', routed; collects each subtask's output. */
static void
feed(h_op_t *h, weir_schema_t *s, char **rows, int chunk, h_rows_t out[P])
{
    int n = 0;

    while (rows[n] != NULL)
        n++;
    for (int from = 0; from < n; from += chunk) {
        const char *slice[chunk + 1];
        weir_batch_t *in, *parts[P];
        int k = 0;

        for (int i = from; i < n && i < from + chunk; i++)
            slice[k++] = rows[i];
        slice[k] = NULL;
        in = h_batch(s, slice);
        for (int p = 0; p < P; p++)
            parts[p] = weir_batch_new(s, 8);
        route(h, in, parts);
        for (int p = 0; p < P; p++) {
            if (parts[p]->nrows > 0 && h_process(h, p, parts[p], &out[p]) != 0)
                fail_msg("process: %s", h->err.msg);
            weir_batch_destroy(parts[p]);
        }
        weir_batch_destroy(in);
    }
}

static void
test_count_emits_running_updates_per_subtask(void **unused)
{
    char yaml[512];
    weir_schema_t *s = words_schema();
    char **rows = make_rows(300, 30);
    h_rows_t out[P] = { { 0 } }, want[P] = { { 0 } };
    int counts[30] = { 0 }, total = 0;
    h_op_t h;

    snprintf(yaml, sizeof(yaml), "%s"
             "  - name: per_word\n"
             "    kind: count\n"
             "    input: words\n"
             "    key_by: word\n", head);
    h_configure_ok(&h, yaml, "per_word", WEIR_ROLE_OPERATOR, s);
    assert_int_equal(h.cfg.output_schema->nfields, 2);
    assert_string_equal(h.cfg.output_schema->fields[0].name, "word");
    assert_string_equal(h.cfg.output_schema->fields[1].name, "count");
    assert_int_equal(h.cfg.output_schema->fields[1].type, WEIR_T_INT);
    h_open(&h, P);
    feed(&h, s, rows, 37, out);

    /* expected: each row, in order, on its key's subtask, with the count so far */
    weir_batch_t *all = h_batch(s, (const char *const *)rows);
    for (int r = 0; r < all->nrows; r++) {
        const weir_value_t *v = weir_batch_row(all, r);
        int w = atoi(v[0].u.s + 1);
        int kg = weir_key_group(weir_key_hash(v, h.cfg.key_idx[0], 1), 128);
        char *line;
        assert_true(asprintf(&line, "w%d|%d", w, ++counts[w]) > 0);
        h_rows_add(&want[weir_key_group_subtask(kg, P, 128)], line);
    }
    for (int p = 0; p < P; p++) {
        assert_true(want[p].n > 0);                  /* every subtask has keys */
        h_rows_add(&want[p], NULL);
        h_rows_expect(&out[p], (const char *const *)want[p].rows);
        total += out[p].n;
    }
    assert_int_equal(total, 300);

    /* finish emits nothing more in updates mode */
    for (int p = 0; p < P; p++) {
        h_rows_t fin = { 0 };
        assert_int_equal(h_finish(&h, p, &fin), 0);
        assert_int_equal(fin.n, 0);
    }
    for (int p = 0; p < P; p++) {
        h_rows_free(&out[p]);
        h_rows_free(&want[p]);
    }
    weir_batch_destroy(all);
    free_rows(rows);
    h_close(&h);
    weir_schema_unref(s);
}

static void
test_count_final_emits_each_key_once_at_finish(void **unused)
{
    char yaml[512];
    weir_schema_t *s = words_schema();
    char **rows = make_rows(1000, 40);
    h_rows_t out[P] = { { 0 } }, fin = { 0 };
    h_op_t h;

    snprintf(yaml, sizeof(yaml), "%s"
             "  - name: per_word\n"
             "    kind: count\n"
             "    input: words\n"
             "    key_by: [word]\n"
             "    as: n_seen\n"
             "    emit: final\n", head);
    h_configure_ok(&h, yaml, "per_word", WEIR_ROLE_OPERATOR, s);
    assert_string_equal(h.cfg.output_schema->fields[1].name, "n_seen");
    h_open(&h, P);
    feed(&h, s, rows, 64, out);
    for (int p = 0; p < P; p++)
        assert_int_equal(out[p].n, 0);              /* nothing before the end */
    for (int p = 0; p < P; p++) {
        int before = fin.n;
        assert_int_equal(h_finish(&h, p, &fin), 0);
        /* every key a subtask emits belongs to its key groups */
        for (int i = before; i < fin.n; i++) {
            weir_value_t key = weir_value_str(fin.rows[i], (uint32_t)strcspn(fin.rows[i], "|"));
            int kg = weir_key_group(weir_key_hash(&key, (int[]){ 0 }, 1), 128);
            assert_int_equal(weir_key_group_subtask(kg, P, 128), p);
        }
    }
    h_rows_sort(&fin);
    assert_int_equal(fin.n, 40);
    for (int w = 0; w < 40; w++) {
        char want[32];
        snprintf(want, sizeof(want), "w%d|25", w);  /* 1000 rows over 40 words */
        int found = 0;
        for (int i = 0; i < fin.n; i++)
            found += strcmp(fin.rows[i], want) == 0;
        if (found != 1)
            fail_msg("'%s' found %d times", want, found);
    }
    h_rows_free(&fin);
    for (int p = 0; p < P; p++)
        h_rows_free(&out[p]);
    free_rows(rows);
    h_close(&h);
    weir_schema_unref(s);
}

static void
test_sum_of_int_and_double_with_two_key_fields(void **unused)
{
    char yaml[1024];
    weir_schema_t *s = words_schema();
    static const char *const in_rows[] = {
        "a|en|1|0.5",
        "a|de|10|0.25",
        "a|en|null|1",
        "b|null|5|2",
        "a|en|4|0.25",
        "b|null|-7|2",
        NULL,
    };
    static const char *const want_int[] = {
        "a|en|1", "a|de|10", "a|en|1", "b|null|5", "a|en|5", "b|null|-2", NULL,
    };
    static const char *const want_double[] = {
        "a|de|0.25", "a|en|1.75", "b|null|4", NULL,
    };
    weir_batch_t *in = h_batch(s, in_rows);
    h_rows_t rows = { 0 };
    h_op_t h;

    /* int field, updates, everything on one subtask */
    snprintf(yaml, sizeof(yaml), "%s"
             "  - name: total\n"
             "    kind: sum\n"
             "    input: words\n"
             "    key_by: [word, lang]\n"
             "    field: n\n", head);
    h_configure_ok(&h, yaml, "total", WEIR_ROLE_OPERATOR, s);
    assert_int_equal(h.cfg.output_schema->nfields, 3);
    assert_string_equal(h.cfg.output_schema->fields[2].name, "sum");
    assert_int_equal(h.cfg.output_schema->fields[2].type, WEIR_T_INT);
    assert_true(h.cfg.output_schema->fields[1].nullable);
    h_open(&h, 1);
    assert_int_equal(h_process(&h, 0, in, &rows), 0);
    h_rows_expect(&rows, want_int);
    h_rows_free(&rows);
    h_close(&h);

    /* double field, final, keys with a NULL part survive the state round trip */
    snprintf(yaml, sizeof(yaml), "%s"
             "  - name: total\n"
             "    kind: sum\n"
             "    input: words\n"
             "    key_by: [word, lang]\n"
             "    field: x\n"
             "    as: xs\n"
             "    emit: final\n", head);
    h_configure_ok(&h, yaml, "total", WEIR_ROLE_OPERATOR, s);
    assert_int_equal(h.cfg.output_schema->fields[2].type, WEIR_T_DOUBLE);
    assert_string_equal(h.cfg.output_schema->fields[2].name, "xs");
    h_open(&h, 1);
    assert_int_equal(h_process(&h, 0, in, &rows), 0);
    assert_int_equal(rows.n, 0);
    assert_int_equal(h_finish(&h, 0, &rows), 0);
    h_rows_sort(&rows);
    h_rows_expect(&rows, want_double);
    h_rows_free(&rows);
    h_close(&h);
    weir_batch_destroy(in);
    weir_schema_unref(s);
}

static void
test_count_rejects_a_misrouted_row(void **unused)
{
    char yaml[512];
    weir_schema_t *s = words_schema();
    static const char *const one[] = { "hello|en|1|1", NULL };
    weir_batch_t *in = h_batch(s, one);
    h_op_t h;
    int kg, owner;

    snprintf(yaml, sizeof(yaml), "%s"
             "  - name: c\n"
             "    kind: count\n"
             "    input: words\n"
             "    key_by: word\n", head);
    h_configure_ok(&h, yaml, "c", WEIR_ROLE_OPERATOR, s);
    h_open(&h, P);
    kg = weir_key_group(weir_key_hash(weir_batch_row(in, 0), h.cfg.key_idx[0], 1), 128);
    owner = weir_key_group_subtask(kg, P, 128);
    assert_int_equal(h_process(&h, (owner + 1) % P, in, NULL), WEIR_ESTATE);
    assert_non_null(strstr(h.err.msg, "misrouted"));
    assert_non_null(strstr(h.err.msg, "[job:test vertex:c#"));
    assert_int_equal(h_process(&h, owner, in, NULL), 0);
    h_close(&h);
    weir_batch_destroy(in);
    weir_schema_unref(s);
}

static void
expect_agg_error(const char *params, const char *needle, const char *part)
{
    char yaml[1024];
    weir_schema_t *s = words_schema();
    h_op_t h;

    snprintf(yaml, sizeof(yaml), "%s"
             "  - name: agg\n"
             "    input: words\n"
             "    key_by: word\n"
             "%s", head, params);
    assert_int_not_equal(h_configure(&h, yaml, "agg", WEIR_ROLE_OPERATOR, s), 0);
    h_expect_error_at(&h.err, yaml, needle, part);
    h_close(&h);
    weir_schema_unref(s);
}

static void
test_aggregate_configuration_errors(void **unused)
{
    expect_agg_error("    kind: sum\n", "name: agg", "missing required parameter 'field'");
    expect_agg_error("    kind: sum\n    field: lang\n", "lang\n", "int or double");
    expect_agg_error("    kind: sum\n    field: nn\n", "nn\n", "did you mean 'n'");
    expect_agg_error("    kind: count\n    as: word  # clash\n", "word  #", "clashes");
    expect_agg_error("    kind: count\n    emit: sometimes\n", "sometimes", "'emit'");
    expect_agg_error("    kind: count\n    field: n\n", "field: n", "unknown parameter 'field'");
}

static void
test_key_hash_depends_only_on_key_values(void **unused)
{
    weir_value_t a[2] = { weir_value_str("alice", 5), weir_value_int(3) };
    weir_value_t b[2] = { weir_value_str("alice", 5), weir_value_double(3.0) };
    weir_value_t c[2] = { weir_value_int(3), weir_value_str("alice", 5) };
    weir_value_t d[2] = { weir_value_str("alicf", 5), weir_value_int(3) };
    int k01[2] = { 0, 1 }, k10[2] = { 1, 0 };

    assert_true(weir_key_hash(a, k01, 2) == weir_key_hash(a, k01, 2));
    assert_true(weir_key_hash(a, k01, 2) == weir_key_hash(b, k01, 2));
    assert_true(weir_key_hash(a, k10, 2) == weir_key_hash(c, k01, 2));
    assert_true(weir_key_hash(a, k01, 2) != weir_key_hash(c, k01, 2));
    assert_true(weir_key_hash(a, k01, 2) != weir_key_hash(d, k01, 2));
    assert_true(weir_key_hash(a, k01, 1) != weir_key_hash(a, k01, 2));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_count_emits_running_updates_per_subtask),
        cmocka_unit_test(test_count_final_emits_each_key_once_at_finish),
        cmocka_unit_test(test_sum_of_int_and_double_with_two_key_fields),
        cmocka_unit_test(test_count_rejects_a_misrouted_row),
        cmocka_unit_test(test_aggregate_configuration_errors),
        cmocka_unit_test(test_key_hash_depends_only_on_key_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
