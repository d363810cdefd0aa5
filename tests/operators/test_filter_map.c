/* tests/operators/test_filter_map.c -- the filter and map/project operators.
 *
 * filter must keep exactly the rows whose predicate is true (NULL is not
 * true), keep the input schema, and report a bad expression at the line and
 * column of the offending token inside the job file. map must derive its
 * output schema from the expressions (types and nullability), compute the
 * values, and own its strings: its output must survive the input batch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "op_harness.h"

#define SOURCE                                     \
    "name: t\n"                                    \
    "sources:\n"                                   \
    "  - name: tx\n"                               \
    "    kind: datagen\n"                          \
    "    fields: [{name: id, type: int}]\n"        \
    "operators:\n"

static const char *const tx_rows[] = {
    "1|50|online",
    "2|150|online",
    "3|150|pos",
    "4|null|online",
    "5|200|null",
    "6|1000.5|online",
    NULL,
};

static weir_schema_t *
tx_schema(void)
{
    return h_schema("id:int, amount:double?, kind:string?");
}

static void
test_filter_keeps_exactly_the_true_rows(void **unused)
{
    static const char yaml[] = SOURCE
        "  - name: big\n"
        "    kind: filter\n"
        "    input: tx\n"
        "    where: amount > 100 and kind == \"online\"\n";
    static const char *const want[] = { "2|150|online", "6|1000.5|online", NULL };
    weir_schema_t *s = tx_schema();
    weir_batch_t *in = h_batch(s, tx_rows);
    h_rows_t rows = { 0 };
    h_op_t h;

    h_configure_ok(&h, yaml, "big", WEIR_ROLE_OPERATOR, s);
    assert_true(weir_schema_equal(h.cfg.output_schema, s));
    h_open(&h, 1);
    assert_int_equal(h_process(&h, 0, in, &rows), 0);
    h_rows_expect(&rows, want);
    h_rows_free(&rows);

    /* an empty batch gives nothing */
    weir_batch_clear(in);
    assert_int_equal(h_process(&h, 0, in, &rows), 0);
    assert_int_equal(rows.n, 0);
    h_close(&h);
    weir_batch_destroy(in);
    weir_schema_unref(s);
}

static void
test_filter_null_predicate_drops_the_row(void **unused)
{
    static const char yaml[] = SOURCE
        "  - name: f\n"
        "    kind: filter\n"
        "    input: tx\n"
        "    where: kind != 'pos'\n";
    static const char *const want[] = {
        "1|50|online", "2|150|online", "4|null|online", "6|1000.5|online", NULL,
    };
    weir_schema_t *s = tx_schema();
    weir_batch_t *in = h_batch(s, tx_rows);
    h_rows_t rows = { 0 };
    h_op_t h;

    h_configure_ok(&h, yaml, "f", WEIR_ROLE_OPERATOR, s);
    h_open(&h, 1);
    assert_int_equal(h_process(&h, 0, in, &rows), 0);
    h_rows_expect(&rows, want);
    h_rows_free(&rows);
    h_close(&h);
    weir_batch_destroy(in);
    weir_schema_unref(s);
}

static void
test_filter_bad_expression_error_has_line_and_column(void **unused)
{
    static const char yaml[] = SOURCE
        "  - name: big\n"
        "    kind: filter\n"
        "    input: tx\n"
        "    where: amount > 10 and amout < 5\n";
    static const char quoted[] = SOURCE
        "  - name: big\n"
        "    kind: filter\n"
        "    input: tx\n"
        "    where: \"amount > 10 and amout < 5\"\n";
    static const char notbool[] = SOURCE
        "  - name: big\n"
        "    kind: filter\n"
        "    input: tx\n"
        "    where: amount + 1\n";
    static const char missing[] = SOURCE
        "  - name: big\n"
        "    kind: filter\n"
        "    input: tx\n"
        "    wher: amount > 1\n";
    weir_schema_t *s = tx_schema();
    h_op_t h;

    assert_int_not_equal(h_configure(&h, yaml, "big", WEIR_ROLE_OPERATOR, s), 0);
    h_expect_error_at(&h.err, yaml, "amout", "amout");
    assert_null(strstr(h.err.msg, "column "));      /* the location says it */
    h_close(&h);

    assert_int_not_equal(h_configure(&h, quoted, "big", WEIR_ROLE_OPERATOR, s), 0);
    h_expect_error_at(&h.err, quoted, "amout", "amout");
    h_close(&h);

    assert_int_equal(h_configure(&h, notbool, "big", WEIR_ROLE_OPERATOR, s), WEIR_ETYPE);
    h_expect_error_at(&h.err, notbool, "amount + 1", "must be a bool");
    h_close(&h);

    assert_int_not_equal(h_configure(&h, missing, "big", WEIR_ROLE_OPERATOR, s), 0);
    h_expect_error_at(&h.err, missing, "wher", "did you mean 'where'");
    h_close(&h);
    weir_schema_unref(s);
}

static void
test_map_derives_types_and_computes_values(void **unused)
{
    static const char yaml[] = SOURCE
        "  - name: m\n"
        "    kind: map\n"
        "    input: tx\n"
        "    fields:\n"
        "      - id\n"
        "      - {name: cents, expr: int(amount * 100)}\n"
        "      - {name: label, expr: upper(kind)}\n"
        "      - {name: big, expr: amount > 100}\n"
        "      - {expr: kind}\n"
        "      - {name: next, expr: id + 1}\n"
        "      - {name: tag, expr: \"'#' || string(id)\"}\n";
    static const char *const in_rows[] = { "1|1.25|online", "2|null|pos", "3|150|null", NULL };
    static const char *const want[] = {
        "1|125|ONLINE|false|online|2|#1",
        "2|null|POS|null|pos|3|#2",
        "3|15000|null|true|null|4|#3",
        NULL,
    };
    weir_schema_t *s = tx_schema();
    weir_batch_t *in = h_batch(s, in_rows), *out;
    h_rows_t rows = { 0 };
    const weir_schema_t *o;
    h_op_t h;

    h_configure_ok(&h, yaml, "m", WEIR_ROLE_OPERATOR, s);
    o = h.cfg.output_schema;
    assert_int_equal(o->nfields, 7);
    static const char *const names[] = { "id", "cents", "label", "big", "kind", "next", "tag" };
    static const weir_type_t types[] = { WEIR_T_INT, WEIR_T_INT, WEIR_T_STRING, WEIR_T_BOOL,
                                         WEIR_T_STRING, WEIR_T_INT, WEIR_T_STRING };
    static const bool nullable[] = { false, true, true, true, true, false, false };
    for (int i = 0; i < 7; i++) {
        assert_string_equal(o->fields[i].name, names[i]);
        assert_int_equal(o->fields[i].type, types[i]);
        assert_int_equal(o->fields[i].nullable, nullable[i]);
    }

    h_open(&h, 1);
    out = weir_batch_new(h.cfg.output_schema, 2);
    assert_int_equal(h.cfg.kind->process(&h.op[0], 0, in, out, &h.err), 0);
    /* the output owns its strings: wipe and free the input first */
    for (int r = 0; r < in->nrows; r++) {
        weir_value_t *v = weir_batch_row(in, r);
        if (!v[2].null)
            memset((char *)v[2].u.s, 'X', v[2].len);
    }
    weir_batch_destroy(in);
    h_rows_add_batch(&rows, out);
    h_rows_expect(&rows, want);
    h_rows_free(&rows);
    weir_batch_destroy(out);
    h_close(&h);
    weir_schema_unref(s);
}

static void
test_project_select_picks_fields_in_order(void **unused)
{
    static const char yaml[] = SOURCE
        "  - name: p\n"
        "    kind: project\n"
        "    input: tx\n"
        "    select: [kind, id]\n";
    static const char *const want[] = {
        "online|1", "online|2", "pos|3", "online|4", "null|5", "online|6", NULL,
    };
    weir_schema_t *s = tx_schema();
    weir_batch_t *in = h_batch(s, tx_rows);
    h_rows_t rows = { 0 };
    h_op_t h;

    h_configure_ok(&h, yaml, "p", WEIR_ROLE_OPERATOR, s);
    assert_ptr_equal(h.cfg.kind, &weir_op_project);
    assert_int_equal(h.cfg.output_schema->nfields, 2);
    assert_string_equal(h.cfg.output_schema->fields[0].name, "kind");
    assert_true(h.cfg.output_schema->fields[0].nullable);
    assert_int_equal(h.cfg.output_schema->fields[1].type, WEIR_T_INT);
    h_open(&h, 1);
    assert_int_equal(h_process(&h, 0, in, &rows), 0);
    h_rows_expect(&rows, want);
    h_rows_free(&rows);
    h_close(&h);
    weir_batch_destroy(in);
    weir_schema_unref(s);
}

static void
expect_map_error(const char *params, const char *needle, const char *part)
{
    char yaml[1024];
    weir_schema_t *s = tx_schema();
    h_op_t h;

    snprintf(yaml, sizeof(yaml), SOURCE
             "  - name: m\n"
             "    kind: map\n"
             "    input: tx\n"
             "%s", params);
    assert_int_not_equal(h_configure(&h, yaml, "m", WEIR_ROLE_OPERATOR, s), 0);
    h_expect_error_at(&h.err, yaml, needle, part);
    h_close(&h);
    weir_schema_unref(s);
}

static void
test_map_errors_point_at_the_item(void **unused)
{
    expect_map_error("    fields:\n      - id\n      - amout\n", "amout", "did you mean 'amount'");
    expect_map_error("    fields:\n      - {name: x, expr: lower(knd)}\n", "knd)", "knd");
    expect_map_error("    fields:\n      - id\n      - {name: id, expr: id + 1}\n",
                     "{name: id, expr", "twice");
    expect_map_error("    fields:\n      - {expr: id + 1}\n", "{expr", "needs a 'name'");
    expect_map_error("    fields:\n      - {name: x, expr: 'null'}\n", "'null'", "bare 'null'");
    expect_map_error("    fields: [id]\n    select: [kind]\n", "[kind]",
                     "either 'fields'");
    expect_map_error("    select: [id, {name: x, expr: id}]\n", "{name: x", "names");
    expect_map_error("    fields:\n      - {name: x, exp: id}\n", "exp:", "did you mean 'expr'");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter_keeps_exactly_the_true_rows),
        cmocka_unit_test(test_filter_null_predicate_drops_the_row),
        cmocka_unit_test(test_filter_bad_expression_error_has_line_and_column),
        cmocka_unit_test(test_map_derives_types_and_computes_values),
        cmocka_unit_test(test_project_select_picks_fields_in_order),
        cmocka_unit_test(test_map_errors_point_at_the_item),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
