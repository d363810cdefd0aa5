/* tests/graph/test_plan.c -- chaining, partitioning, key groups, slots. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/graph/plan.h"

#define GEN                                                                 \
    "sources:\n"                                                            \
    "  - name: gen\n"                                                       \
    "    kind: datagen\n"                                                   \
    "    count: 100\n"                                                      \
    "    fields:\n"                                                         \
    "      - {name: id, type: int, gen: sequence}\n"                        \
    "      - {name: key, type: string, gen: choice, values: [a, b]}\n"      \
    "      - {name: amount, type: double, gen: random, min: 0, max: 10}\n"

static weir_plan_t *
plan_ok(const char *yaml, int parallelism)
{
    weir_plan_t *p = NULL;
    weir_err_t err = { 0 };
    int rc = weir_plan_from_text("t.yaml", yaml, strlen(yaml), NULL, parallelism, &p, &err);

    if (rc != 0)
        fail_msg("plan failed: %s", err.msg);
    return p;
}

static void
plan_err(const char *yaml, const char *want)
{
    weir_plan_t *p = NULL;
    weir_err_t err = { 0 };
    int rc = weir_plan_from_text("t.yaml", yaml, strlen(yaml), NULL, 0, &p, &err);

    assert_int_not_equal(rc, 0);
    assert_null(p);
    if (strstr(err.msg, want) == NULL)
        fail_msg("error '%s' does not contain '%s'", err.msg, want);
}

/* A source's watermark block is resolved at plan time: the field index, the
 * durations, the defaults; it is refused elsewhere and when it cannot hold. */
static void
test_plan_watermark_block(void **state)
{
    const char *yaml =
        "name: t\n"
        "sources:\n"
        "  - name: gen\n"
        "    kind: datagen\n"
        "    fields:\n"
        "      - {name: id, type: int, gen: sequence}\n"
        "      - {name: ts, type: timestamp, gen: sequence, start: \"2024-01-01 00:00:00\"}\n"
        "    watermark: {field: ts, max_out_of_orderness: 2500ms, idle_timeout: 1m}\n"
        "sinks:\n"
        "  - {name: out, kind: print, input: gen}\n";
    weir_plan_t *p;
    weir_buf_t b = WEIR_BUF_INIT;
    const weir_wm_conf_t *w;

    (void)state;
    p = plan_ok(yaml, 0);
    w = &p->vertices[0].ops[0]->watermark;
    assert_true(w->on);
    assert_int_equal(w->field, 1);
    assert_int_equal(w->out_of_orderness_us, 2500000);
    assert_int_equal(w->idle_timeout_us, 60000000);
    assert_int_equal(w->interval_us, 200000);                 /* Flink's default */
    assert_false(p->vertices[0].ops[1]->watermark.on);
    assert_int_equal(weir_plan_describe(p, &b), 0);
    weir_buf_putc(&b, '\0');
    if (strstr(b.data, "event time field ts, out of order by 2.5s, idle after 60s, every 200ms") == NULL)
        fail_msg("describe:\n%s", b.data);
    weir_buf_free(&b);
    weir_plan_destroy(p);

    plan_err("name: t\nsources:\n  - {name: gen, kind: datagen, watermark: {max_out_of_orderness: 1s},\n"
             "     fields: [{name: ts, type: timestamp, gen: now}]}\n"
             "sinks:\n  - {name: out, kind: print, input: gen}\n",
             "t.yaml:3:43: source 'gen': 'watermark' needs 'field'");
    plan_err("name: t\nsources:\n  - {name: gen, kind: datagen,\n"
             "     fields: [{name: ts, type: timestamp, gen: now}]}\n"
             "sinks:\n  - {name: out, kind: print, input: gen, watermark: {field: ts}}\n",
             "only a source takes 'watermark'");
    plan_err("name: t\nsources:\n  - {name: gen, kind: datagen, watermark: 5s,\n"
             "     fields: [{name: ts, type: timestamp, gen: now}]}\n"
             "sinks:\n  - {name: out, kind: print, input: gen}\n",
             "'watermark' must be a mapping");
    plan_err("name: t\nsources:\n  - {name: gen, kind: datagen, watermark: {field: ts, interval: 0s},\n"
             "     fields: [{name: ts, type: timestamp, gen: now}]}\n"
             "sinks:\n  - {name: out, kind: print, input: gen}\n",
             "watermark interval must be at least 1ms");
}

static void
test_plan_chains_forward_edges_of_equal_parallelism(void **state)
{
    (void)state;
    weir_plan_t *p = plan_ok("name: j\nparallelism: 2\n" GEN
        "operators:\n"
        "  - {name: f, kind: filter, input: gen, where: \"amount > 5\"}\n"
        "  - {name: m, kind: map, input: f, fields: [id, key]}\n"
        "sinks:\n"
        "  - {name: out, kind: print, input: m}\n", 0);

    assert_int_equal(p->nvertices, 1);
    assert_int_equal(p->nedges, 0);
    assert_int_equal(p->vertices[0].nops, 4);
    assert_string_equal(p->vertices[0].name, "gen -> f -> m -> out");
    assert_int_equal(p->vertices[0].parallelism, 2);
    assert_int_equal(p->slots, 2);
    weir_plan_destroy(p);
}

static void
test_plan_key_by_breaks_the_chain_with_a_hash_edge(void **state)
{
    (void)state;
    weir_plan_t *p = plan_ok("name: j\nparallelism: 3\n" GEN
        "operators:\n"
        "  - {name: f, kind: filter, input: gen, where: \"amount > 5\"}\n"
        "  - {name: c, kind: count, input: f, key_by: key}\n"
        "sinks:\n"
        "  - {name: out, kind: print, input: c}\n", 0);

    assert_int_equal(p->nvertices, 2);
    assert_string_equal(p->vertices[0].name, "gen -> f");
    assert_string_equal(p->vertices[1].name, "c -> out");
    assert_true(p->vertices[1].keyed);
    assert_false(p->vertices[0].keyed);
    assert_int_equal(p->nedges, 1);
    assert_int_equal(p->edges[0].src_vertex, 0);
    assert_int_equal(p->edges[0].dst_vertex, 1);
    assert_int_equal(p->edges[0].partition, WEIR_PART_HASH);
    assert_int_equal(p->edges[0].nkeys, 1);
    assert_int_equal(p->edges[0].key_idx[0], 1);           /* 'key' in {id, key, amount} */
    assert_int_equal(p->vertices[0].nout, 1);
    assert_int_equal(p->vertices[1].nin, 1);
    weir_plan_destroy(p);
}

static void
test_plan_unequal_parallelism_rebalances(void **state)
{
    (void)state;
    weir_plan_t *p = plan_ok("name: j\nparallelism: 4\n" GEN
        "sinks:\n"
        "  - {name: out, kind: print, input: gen, parallelism: 1}\n", 0);

    assert_int_equal(p->nvertices, 2);
    assert_int_equal(p->edges[0].partition, WEIR_PART_REBALANCE);
    assert_int_equal(p->vertices[0].parallelism, 4);
    assert_int_equal(p->vertices[1].parallelism, 1);
    assert_int_equal(p->slots, 4);
    weir_plan_destroy(p);
}

static void
test_plan_fan_out_does_not_chain(void **state)
{
    (void)state;
    weir_plan_t *p = plan_ok("name: j\n" GEN
        "sinks:\n"
        "  - {name: a, kind: print, input: gen}\n"
        "  - {name: b, kind: print, input: gen, partition: broadcast}\n", 0);

    assert_int_equal(p->nvertices, 3);
    assert_int_equal(p->vertices[0].nops, 1);
    assert_int_equal(p->vertices[0].nout, 2);
    assert_int_equal(p->edges[0].partition, WEIR_PART_FORWARD);
    assert_int_equal(p->edges[1].partition, WEIR_PART_BROADCAST);
    weir_plan_destroy(p);
}

static void
test_plan_parallelism_override_sets_slots(void **state)
{
    (void)state;
    weir_plan_t *p = plan_ok("name: j\nparallelism: 2\n" GEN
        "sinks:\n  - {name: out, kind: print, input: gen}\n", 5);

    assert_int_equal(p->parallelism, 5);
    assert_int_equal(p->vertices[0].parallelism, 5);
    assert_int_equal(p->slots, 5);
    weir_plan_destroy(p);
}

static void
test_plan_rejects_forward_between_unequal_parallelism(void **state)
{
    (void)state;
    plan_err("name: j\nparallelism: 2\n" GEN
        "sinks:\n"
        "  - {name: out, kind: print, input: gen, parallelism: 1, partition: forward}\n",
        "forward partitioning needs equal parallelism, but 'gen' has 2 and 'out' has 1");
}

static void
test_plan_rejects_unknown_kind_with_suggestion_and_location(void **state)
{
    (void)state;
    plan_err("name: j\n" GEN
        "operators:\n"
        "  - name: f\n"
        "    kind: fliter\n"
        "    input: gen\n"
        "sinks:\n  - {name: out, kind: print, input: f}\n",
        "t.yaml:12:11: operator 'f': unknown operator kind 'fliter' (did you mean 'filter'?)");
}

static void
test_plan_rejects_kind_in_the_wrong_section(void **state)
{
    (void)state;
    plan_err("name: j\n" GEN
        "sinks:\n  - {name: out, kind: filter, input: gen}\n",
        "'filter' is an operator kind and cannot be used as a sink");
}

static void
test_plan_rejects_keyed_kind_without_key_by(void **state)
{
    (void)state;
    plan_err("name: j\n" GEN
        "operators:\n  - {name: c, kind: count, input: gen}\n"
        "sinks:\n  - {name: out, kind: print, input: c}\n",
        "kind 'count' is keyed: set key_by on its input");
}

static void
test_plan_rejects_key_by_on_a_missing_field(void **state)
{
    (void)state;
    plan_err("name: j\n" GEN
        "operators:\n  - {name: c, kind: count, input: gen, key_by: kye}\n"
        "sinks:\n  - {name: out, kind: print, input: c}\n",
        "key_by field 'kye' is not in the output of 'gen' (did you mean 'key'?)");
}

static void
test_plan_rejects_parallelism_above_max(void **state)
{
    (void)state;
    plan_err("name: j\nmax_parallelism: 4\n" GEN
        "sinks:\n  - {name: out, kind: print, input: gen, parallelism: 8}\n",
        "parallelism 8 exceeds the job's max_parallelism 4");
}

static void
test_plan_rejects_override_above_max_parallelism(void **state)
{
    weir_plan_t *p = NULL;
    weir_err_t err = { 0 };
    const char *y = "name: j\nmax_parallelism: 8\n" GEN "sinks:\n  - {name: out, kind: print, input: gen}\n";

    (void)state;
    assert_int_not_equal(weir_plan_from_text("t.yaml", y, strlen(y), NULL, 9, &p, &err), 0);
    assert_null(p);
    assert_non_null(strstr(err.msg, "parallelism 9 exceeds max_parallelism 8"));
}

static void
test_plan_reads_the_state_backend_from_config(void **state)
{
    (void)state;
    weir_plan_t *p = plan_ok("name: j\n" GEN "sinks:\n  - {name: out, kind: print, input: gen}\n", 0);
    assert_false(p->state_in_memory);                       /* rocksdb by default */
    weir_plan_destroy(p);
    p = plan_ok("name: j\nconfig: {state.backend: memory}\n" GEN
                "sinks:\n  - {name: out, kind: print, input: gen}\n", 0);
    assert_true(p->state_in_memory);
    weir_plan_destroy(p);
    plan_err("name: j\nconfig: {state.backend: redis}\n" GEN
             "sinks:\n  - {name: out, kind: print, input: gen}\n",
             "t.yaml:2:25: state.backend must be 'rocksdb' or 'memory', not 'redis'");
    plan_err("name: j\nconfig: {state.backnd: memory}\n" GEN
             "sinks:\n  - {name: out, kind: print, input: gen}\n", "state.backend");
}

static void
test_plan_reports_expression_errors_at_their_column(void **state)
{
    (void)state;
    /* 'amout' starts at column 12 of line 11: "    where: amout > 5" */
    plan_err("name: j\n" GEN
        "operators:\n"
        "  - name: f\n"
        "    kind: filter\n"
        "    input: gen\n"
        "    where: amout > 5\n"
        "sinks:\n  - {name: out, kind: print, input: f}\n",
        "t.yaml:14:12:");
}

static void
test_plan_describe_names_vertices_and_edges(void **state)
{
    (void)state;
    weir_plan_t *p = plan_ok("name: j\nparallelism: 2\n" GEN
        "operators:\n  - {name: c, kind: count, input: gen, key_by: key}\n"
        "sinks:\n  - {name: out, kind: print, input: c}\n", 0);
    weir_buf_t b = WEIR_BUF_INIT;

    assert_int_equal(weir_plan_describe(p, &b), 0);
    weir_buf_nul(&b);
    assert_non_null(strstr(b.data, "v0  gen  (parallelism 2)"));
    assert_non_null(strstr(b.data, "v1  c -> out  (parallelism 2, keyed)"));
    assert_non_null(strstr(b.data, "v0 -> v1  hash by key"));
    weir_buf_free(&b);
    weir_plan_destroy(p);
}

static void
test_key_group_ranges_are_contiguous_and_cover_all(void **state)
{
    (void)state;
    for (int maxp = 1; maxp <= 256; maxp *= 2) {
        for (int par = 1; par <= maxp && par <= 17; par++) {
            int next = 0;
            for (int s = 0; s < par; s++) {
                int first = weir_key_group_first(s, par, maxp);
                int last = weir_key_group_last(s, par, maxp);
                assert_int_equal(first, next);
                assert_true(last >= first);
                for (int kg = first; kg <= last; kg++)
                    assert_int_equal(weir_key_group_subtask(kg, par, maxp), s);
                next = last + 1;
            }
            assert_int_equal(next, maxp);
        }
    }
    /* Flink's numbers for 128 key groups over 3 subtasks */
    assert_int_equal(weir_key_group_last(0, 3, 128), 42);
    assert_int_equal(weir_key_group_first(1, 3, 128), 43);
    assert_int_equal(weir_key_group_last(1, 3, 128), 85);
    assert_int_equal(weir_key_group_first(2, 3, 128), 86);
}

static void
test_plan_is_deterministic(void **state)
{
    (void)state;
    const char *y = "name: j\nparallelism: 3\n" GEN
        "operators:\n"
        "  - {name: f, kind: filter, input: gen, where: \"amount > 5\"}\n"
        "  - {name: c, kind: count, input: f, key_by: key}\n"
        "sinks:\n"
        "  - {name: o1, kind: print, input: c}\n"
        "  - {name: o2, kind: print, input: c, parallelism: 1}\n";
    weir_plan_t *a = plan_ok(y, 0), *b = plan_ok(y, 0);
    weir_buf_t da = WEIR_BUF_INIT, db = WEIR_BUF_INIT;

    weir_plan_describe(a, &da);
    weir_plan_describe(b, &db);
    assert_int_equal(da.len, db.len);
    assert_memory_equal(da.data, db.data, da.len);
    assert_int_equal(a->nvertices, 4);       /* gen->f, c, o1, o2 */
    weir_buf_free(&da);
    weir_buf_free(&db);
    weir_plan_destroy(a);
    weir_plan_destroy(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_chains_forward_edges_of_equal_parallelism),
        cmocka_unit_test(test_plan_key_by_breaks_the_chain_with_a_hash_edge),
        cmocka_unit_test(test_plan_unequal_parallelism_rebalances),
        cmocka_unit_test(test_plan_fan_out_does_not_chain),
        cmocka_unit_test(test_plan_parallelism_override_sets_slots),
        cmocka_unit_test(test_plan_rejects_forward_between_unequal_parallelism),
        cmocka_unit_test(test_plan_rejects_unknown_kind_with_suggestion_and_location),
        cmocka_unit_test(test_plan_rejects_kind_in_the_wrong_section),
        cmocka_unit_test(test_plan_rejects_keyed_kind_without_key_by),
        cmocka_unit_test(test_plan_rejects_key_by_on_a_missing_field),
        cmocka_unit_test(test_plan_rejects_parallelism_above_max),
        cmocka_unit_test(test_plan_rejects_override_above_max_parallelism),
        cmocka_unit_test(test_plan_reads_the_state_backend_from_config),
        cmocka_unit_test(test_plan_reports_expression_errors_at_their_column),
        cmocka_unit_test(test_plan_describe_names_vertices_and_edges),
        cmocka_unit_test(test_key_group_ranges_are_contiguous_and_cover_all),
        cmocka_unit_test(test_plan_is_deterministic),
        cmocka_unit_test(test_plan_watermark_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
