/* tests/graph/test_jobfile.c -- job files: parsing, structure checks,
 * substitution, parameter getters, schemas and located error messages.
 *
 * A job file is the one thing a user of weir writes, so the messages it
 * produces are part of the interface: every error case here checks the whole
 * message, "job.yaml:LINE:COL: reason", with the line and column counted by
 * hand from the test's text (1-based, as an editor shows them). The texts are
 * written one source line per C string so the numbers can be checked by eye.
 * The valid job at the top is checked field by field: node order, sections,
 * inputs resolved to indexes, aliases, partitioning and keys, so the planner
 * can rely on the structure without re-reading YAML.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/core/error.h"
#include "runtime/core/schema.h"
#include "runtime/graph/jobfile.h"

/* cmocka 1.1 prints integers in hex; this prints int64 values in decimal. */
#define assert_i64_equal(a, b)                                                   \
    do {                                                                         \
        int64_t a_ = (a), b_ = (b);                                              \
        if (a_ != b_) {                                                          \
            print_error("%s = %lld, expected %lld\n", #a, (long long)a_,         \
                        (long long)b_);                                          \
            fail();                                                              \
        }                                                                        \
    } while (0)

static weir_jobfile_t *
parse_vars(const char *text, const weir_vars_t *vars)
{
    weir_jobfile_t *jf = NULL;
    weir_err_t err;
    int rc;

    weir_err_clear(&err);
    rc = weir_jobfile_parse("job.yaml", text, strlen(text), vars, &jf, &err);
    if (rc != 0) {
        print_error("parse failed (%d): %s\n", rc, err.msg);
        fail();
    }
    assert_non_null(jf);
    return jf;
}

static weir_jobfile_t *
parse(const char *text)
{
    return parse_vars(text, NULL);
}

/* Parsing text must fail with exactly code and msg, and leave *out alone. */
static void
check_error_vars(const char *text, const weir_vars_t *vars, int code, const char *msg)
{
    weir_jobfile_t *jf = (weir_jobfile_t *)&code;      /* a sentinel */
    weir_err_t err;
    int rc;

    weir_err_clear(&err);
    rc = weir_jobfile_parse("job.yaml", text, strlen(text), vars, &jf, &err);
    if (rc == 0) {
        print_error("parsed, but expected: %s\n", msg);
        weir_jobfile_destroy(jf);
        fail();
    }
    assert_string_equal(err.msg, msg);
    assert_int_equal(rc, code);
    assert_int_equal(err.code, code);
    assert_ptr_equal(jf, (weir_jobfile_t *)&code);
}

static void
check_error(const char *text, int code, const char *msg)
{
    check_error_vars(text, NULL, code, msg);
}

/* A job whose one source 'src' carries the given parameter lines, which
 * start at line 5, column 5. */
#define SRC_HEAD "name: t\n"               \
                 "sources:\n"              \
                 "  - name: src\n"         \
                 "    kind: datagen\n"

static weir_jobfile_t *
src_job(const char *params, const weir_vars_t *vars)
{
    char text[4096];

    snprintf(text, sizeof(text), "%s%s", SRC_HEAD, params);
    return parse_vars(text, vars);
}

/* ---- a full job ------------------------------------------------------ */

static const char full_job[] =
    "# two sources, a join, a keyed count, two sinks\n"         /* 1 */
    "name: orders\n"                                            /* 2 */
    "parallelism: 2\n"                                          /* 3 */
    "max_parallelism: 64\n"                                     /* 4 */
    "description: round trip\n"                                 /* 5 */
    "sinks:\n"                                                  /* 6 */
    "  - name: out\n"                                           /* 7 */
    "    kind: file\n"                                          /* 8 */
    "    input: counted\n"                                      /* 9 */
    "    path: /tmp/x\n"                                        /* 10 */
    "  - name: audit\n"                                         /* 11 */
    "    kind: print\n"                                         /* 12 */
    "    inputs: [joined, orders]\n"                            /* 13 */
    "sources:\n"                                                /* 14 */
    "  - name: orders\n"                                        /* 15 */
    "    kind: datagen\n"                                       /* 16 */
    "    parallelism: 4\n"                                      /* 17 */
    "  - name: products\n"                                      /* 18 */
    "    kind: file\n"                                          /* 19 */
    "operators:\n"                                              /* 20 */
    "  - name: joined\n"                                        /* 21 */
    "    kind: lookup_join\n"                                   /* 22 */
    "    key_by: product_id\n"                                  /* 23 */
    "    inputs:\n"                                             /* 24 */
    "      - orders\n"                                          /* 25 */
    "      - {from: products, as: p, partition: broadcast}\n"   /* 26 */
    "  - name: counted\n"                                       /* 27 */
    "    kind: count\n"                                         /* 28 */
    "    inputs:\n"                                             /* 29 */
    "      - from: joined\n"                                    /* 30 */
    "        key_by: [region, product_id]\n"                    /* 31 */
    "    window: 1m\n"                                          /* 32 */
    "checkpoint: {interval: 10s}\n";                            /* 33 */

static void
test_jobfile_full_job_round_trips_into_nodes_and_inputs(void **state)
{
    weir_jobfile_t *jf = parse(full_job);
    const weir_jf_node_t *n;
    int line, col;

    assert_string_equal(jf->path, "job.yaml");
    assert_string_equal(jf->name, "orders");
    assert_int_equal(jf->parallelism, 2);
    assert_int_equal(jf->max_parallelism, 64);
    assert_int_equal(jf->text_len, strlen(full_job));
    assert_memory_equal(jf->text, full_job, jf->text_len);
    assert_int_equal(jf->nnodes, 6);

    /* file order by section: sources, operators, sinks */
    static const char *const names[] = { "orders", "products", "joined", "counted", "out", "audit" };
    static const char *const kinds[] = { "datagen", "file", "lookup_join", "count", "file", "print" };
    static const weir_section_t sections[] = {
        WEIR_SECTION_SOURCE, WEIR_SECTION_SOURCE, WEIR_SECTION_OPERATOR,
        WEIR_SECTION_OPERATOR, WEIR_SECTION_SINK, WEIR_SECTION_SINK,
    };
    static const int pars[] = { 4, 0, 0, 0, 0, 0 };
    static const int ninputs[] = { 0, 0, 2, 1, 1, 2 };
    for (int i = 0; i < 6; i++) {
        assert_string_equal(jf->nodes[i].name, names[i]);
        assert_string_equal(jf->nodes[i].kind, kinds[i]);
        assert_int_equal(jf->nodes[i].section, sections[i]);
        assert_int_equal(jf->nodes[i].parallelism, pars[i]);
        assert_int_equal(jf->nodes[i].ninputs, ninputs[i]);
        assert_int_equal(weir_jobfile_find(jf, names[i]), i);
        assert_ptr_equal(jf->nodes[i].params.jf, jf);
    }
    assert_int_equal(weir_jobfile_find(jf, "nope"), -1);
    assert_string_equal(jf->nodes[2].params.what, "operator 'joined'");
    assert_string_equal(jf->nodes[0].params.what, "source 'orders'");
    assert_string_equal(jf->nodes[5].params.what, "sink 'audit'");

    /* joined: node-level key_by goes to the plain input, not to the
     * broadcast one */
    n = &jf->nodes[2];
    assert_string_equal(n->inputs[0].from, "orders");
    assert_int_equal(n->inputs[0].from_node, 0);
    assert_string_equal(n->inputs[0].alias, "orders");
    assert_int_equal(n->inputs[0].partition, WEIR_PART_HASH);
    assert_int_equal(n->inputs[0].nkeys, 1);
    assert_string_equal(n->inputs[0].keys[0], "product_id");
    weir_params_loc(&n->inputs[0].where, NULL, &line, &col);
    assert_int_equal(line, 25);
    assert_int_equal(col, 9);
    assert_string_equal(n->inputs[1].from, "products");
    assert_int_equal(n->inputs[1].from_node, 1);
    assert_string_equal(n->inputs[1].alias, "p");
    assert_int_equal(n->inputs[1].partition, WEIR_PART_BROADCAST);
    assert_int_equal(n->inputs[1].nkeys, 0);
    assert_null(n->inputs[1].keys);
    weir_params_loc(&n->inputs[1].where, NULL, &line, &col);
    assert_int_equal(line, 26);
    assert_int_equal(col, 9);

    /* counted: the input's own key_by */
    n = &jf->nodes[3];
    assert_int_equal(n->inputs[0].from_node, 2);
    assert_string_equal(n->inputs[0].alias, "joined");
    assert_int_equal(n->inputs[0].partition, WEIR_PART_HASH);
    assert_int_equal(n->inputs[0].nkeys, 2);
    assert_string_equal(n->inputs[0].keys[0], "region");
    assert_string_equal(n->inputs[0].keys[1], "product_id");
    int64_t window = 0;
    assert_int_equal(weir_params_opt_duration(&n->params, "window", 0, &window, NULL), 0);
    assert_i64_equal(window, 60 * 1000000LL);

    /* out: `input:` with the default partitioning */
    n = &jf->nodes[4];
    assert_int_equal(n->inputs[0].from_node, 3);
    assert_string_equal(n->inputs[0].from, "counted");
    assert_int_equal(n->inputs[0].partition, WEIR_PART_DEFAULT);
    assert_int_equal(n->inputs[0].nkeys, 0);
    weir_params_loc(&n->inputs[0].where, NULL, &line, &col);
    assert_int_equal(line, 9);
    assert_int_equal(col, 12);
    char *path = NULL;
    assert_int_equal(weir_params_req_str(&n->params, "path", &path, NULL), 0);
    assert_string_equal(path, "/tmp/x");
    free(path);

    n = &jf->nodes[5];
    assert_int_equal(n->inputs[0].from_node, 2);
    assert_int_equal(n->inputs[1].from_node, 0);
    assert_int_equal(n->inputs[1].partition, WEIR_PART_DEFAULT);

    /* the root view and the accepted extra sections */
    weir_params_loc(&jf->root, NULL, &line, &col);
    assert_int_equal(line, 2);
    assert_int_equal(col, 1);
    weir_params_t cp;
    assert_int_equal(weir_params_child(&jf->root, "checkpoint", true, &cp, NULL), 0);
    assert_true(weir_params_is_map(&cp));
    int64_t interval = 0;
    assert_int_equal(weir_params_opt_duration(&cp, "interval", 0, &interval, NULL), 0);
    assert_i64_equal(interval, 10 * 1000000LL);
    weir_params_loc(&cp, NULL, &line, &col);
    assert_int_equal(line, 33);
    assert_int_equal(col, 13);
    weir_jobfile_destroy(jf);
}

static void
test_jobfile_defaults_parallelism_1_and_max_128(void **state)
{
    weir_jobfile_t *jf = parse(SRC_HEAD);

    assert_int_equal(jf->parallelism, 1);
    assert_int_equal(jf->max_parallelism, 128);
    assert_int_equal(jf->nnodes, 1);
    assert_int_equal(jf->nodes[0].ninputs, 0);
    assert_null(jf->nodes[0].inputs);
    weir_jobfile_destroy(jf);
    weir_jobfile_destroy(NULL);
}

/* `when:` keeps or drops a node by a variable. */
static void
test_jobfile_when_drops_nodes(void **state)
{
    static const char text[] =
        "name: t\n"
        "sources:\n"
        "  - {name: src, kind: datagen}\n"
        "sinks:\n"
        "  - {name: a, kind: print, input: src}\n"
        "  - {name: db, kind: print, input: src, when: \"${PG_DSN:-}\"}\n"
        "  - {name: off, kind: print, input: src, when: false}\n";
    weir_vars_t v = { 0 };
    weir_jobfile_t *jf;

    (void)state;
    jf = parse(text);
    assert_i64_equal(jf->nnodes, 2);
    assert_int_equal(weir_jobfile_find(jf, "db"), -1);
    assert_int_equal(weir_jobfile_find(jf, "off"), -1);
    weir_jobfile_destroy(jf);
    assert_int_equal(weir_vars_set(&v, "PG_DSN", "postgresql://x@127.0.0.1/db"), 0);
    jf = parse_vars(text, &v);
    assert_i64_equal(jf->nnodes, 3);
    assert_true(weir_jobfile_find(jf, "db") >= 0);
    assert_int_equal(weir_jobfile_find(jf, "off"), -1);
    weir_jobfile_destroy(jf);
    weir_vars_free(&v);
}

static void
test_partition_names(void **state)
{
    assert_string_equal(weir_partition_name(WEIR_PART_DEFAULT), "default");
    assert_string_equal(weir_partition_name(WEIR_PART_FORWARD), "forward");
    assert_string_equal(weir_partition_name(WEIR_PART_REBALANCE), "rebalance");
    assert_string_equal(weir_partition_name(WEIR_PART_BROADCAST), "broadcast");
    assert_string_equal(weir_partition_name(WEIR_PART_HASH), "hash");
    assert_string_equal(weir_partition_name((weir_partition_t)99), "unknown");
}

/* ---- YAML and the document ------------------------------------------- */

static void
test_jobfile_yaml_syntax_error_is_located(void **state)
{
    check_error("name: t\n"
                "sources: [a, b\n",
                WEIR_EPARSE, "job.yaml:3:1: flow sequence without a closing bracket");
    check_error("name: t\n"
                "name: u\n",
                WEIR_EPARSE, "job.yaml:2:1: duplicate key");
    check_error("name: t\n"
                "sources: @x\n",
                WEIR_EPARSE, "job.yaml:2:10: plain scalar cannot start with '@'");
}

static void
test_jobfile_empty_file_is_an_error(void **state)
{
    check_error("", WEIR_EPARSE, "job.yaml: the job file is empty");
    check_error("# nothing but a comment\n", WEIR_EPARSE, "job.yaml: the job file is empty");
}

static void
test_jobfile_second_document_is_an_error(void **state)
{
    check_error(SRC_HEAD
                "---\n"
                "name: u\n",
                WEIR_EPARSE, "job.yaml:5:1: a job file holds one YAML document, but a second one starts here");
}

static void
test_jobfile_root_must_be_a_mapping(void **state)
{
    check_error("- a\n- b\n", WEIR_ETYPE,
                "job.yaml:1:1: a job file must be a mapping (name, sources, operators, sinks), not a list");
    check_error("just text\n", WEIR_ETYPE,
                "job.yaml:1:1: a job file must be a mapping (name, sources, operators, sinks), not a single value");
}

static void
test_jobfile_aliases_are_rejected(void **state)
{
    check_error(SRC_HEAD
                "    count: &n 5\n"
                "    rate: *n\n",
                WEIR_EINVAL, "job.yaml:6:11: YAML aliases (*n) are not supported in job files");
}

static void
test_jobfile_unknown_top_level_key_suggests(void **state)
{
    check_error("name: t\n"
                "sorces: []\n",
                WEIR_EINVAL, "job.yaml:2:1: unknown top-level key 'sorces' (did you mean 'sources'?)");
    check_error(SRC_HEAD
                "  # a comment\n"
                "wibble: 1\n",
                WEIR_EINVAL, "job.yaml:6:1: unknown top-level key 'wibble'");
}

static void
test_jobfile_name_is_required(void **state)
{
    check_error("sources:\n"
                "  - name: a\n"
                "    kind: k\n",
                WEIR_EINVAL, "job.yaml:1:1: missing required parameter 'name'");
    check_error("name:\n"
                "sources: []\n",
                WEIR_EINVAL, "job.yaml:1:1: parameter 'name' has no value");
    check_error("name: ''\n"
                "sources: []\n",
                WEIR_EINVAL, "job.yaml:1:7: the job's name must not be empty");
    check_error("name: [a]\n",
                WEIR_ETYPE, "job.yaml:1:7: parameter 'name' must be a string, not a list");
}

static void
test_jobfile_extra_sections_must_be_mappings(void **state)
{
    check_error(SRC_HEAD
                "checkpoint: 10s\n",
                WEIR_ETYPE, "job.yaml:5:13: 'checkpoint' must be a mapping");
    check_error(SRC_HEAD
                "restart: [1]\n",
                WEIR_ETYPE, "job.yaml:5:10: 'restart' must be a mapping");
    check_error(SRC_HEAD
                "description: {a: 1}\n",
                WEIR_ETYPE, "job.yaml:5:14: 'description' must be text");
    /* empty ones are fine, config is free-form */
    weir_jobfile_t *jf = parse(SRC_HEAD "restart:\nconfig: {x: [1, 2]}\n");
    weir_jobfile_destroy(jf);
}

static void
test_jobfile_needs_a_source(void **state)
{
    check_error("name: t\n", WEIR_EINVAL, "job.yaml:1:1: a job needs at least one source");
    check_error("name: t\n"
                "sources: []\n",
                WEIR_EINVAL, "job.yaml:2:10: a job needs at least one source");
}

/* ---- parallelism ----------------------------------------------------- */

static void
test_jobfile_parallelism_must_be_in_range(void **state)
{
    check_error(SRC_HEAD "parallelism: 0\n", WEIR_ERANGE,
                "job.yaml:5:14: parallelism must be between 1 and 32768, got 0");
    check_error(SRC_HEAD "max_parallelism: 32769\n", WEIR_ERANGE,
                "job.yaml:5:18: max_parallelism must be between 1 and 32768, got 32769");
    check_error(SRC_HEAD "parallelism: two\n", WEIR_ETYPE,
                "job.yaml:5:14: parameter 'parallelism' must be an integer, got 'two'");
    check_error(SRC_HEAD "parallelism: 1.5\n", WEIR_ETYPE,
                "job.yaml:5:14: parameter 'parallelism' must be an integer, got '1.5'");
    check_error(SRC_HEAD "parallelism: 99999999999999999999\n", WEIR_ERANGE,
                "job.yaml:5:14: parameter 'parallelism' is out of range: 99999999999999999999");
    check_error(SRC_HEAD "    parallelism: -1\n", WEIR_ERANGE,
                "job.yaml:5:18: source 'src': parallelism must be between 1 and 32768, got -1");
}

static void
test_jobfile_parallelism_must_not_exceed_max(void **state)
{
    check_error(SRC_HEAD
                "parallelism: 8\n"
                "max_parallelism: 4\n",
                WEIR_EINVAL, "job.yaml:5:14: parallelism 8 exceeds max_parallelism 4");
    check_error("max_parallelism: 4\n"
                SRC_HEAD
                "    parallelism: 5\n",
                WEIR_EINVAL, "job.yaml:6:18: source 'src': parallelism 5 exceeds the job's max_parallelism 4");
    weir_jobfile_t *jf = parse(SRC_HEAD "parallelism: 4\nmax_parallelism: 4\n");
    assert_int_equal(jf->parallelism, 4);
    assert_int_equal(jf->max_parallelism, 4);
    weir_jobfile_destroy(jf);
}

static void
test_jobfile_parallelism_may_come_from_a_variable(void **state)
{
    weir_vars_t vars = { 0 };

    assert_int_equal(weir_vars_set(&vars, "P", "3"), 0);
    weir_jobfile_t *jf = parse_vars(SRC_HEAD "parallelism: ${P}\n"
                                    "max_parallelism: \"${MAXP:-16}\"\n", &vars);
    assert_int_equal(jf->parallelism, 3);
    assert_int_equal(jf->max_parallelism, 16);
    weir_jobfile_destroy(jf);
    weir_vars_free(&vars);
}

/* ---- nodes ----------------------------------------------------------- */

static void
test_jobfile_sections_must_be_lists_of_mappings(void **state)
{
    check_error("name: t\n"
                "sources: {name: a}\n",
                WEIR_ETYPE, "job.yaml:2:10: 'sources' must be a list of nodes (- name: ..., kind: ...)");
    check_error("name: t\n"
                "sources:\n"
                "  - gen\n",
                WEIR_ETYPE, "job.yaml:3:5: each source must be a mapping with name and kind");
    check_error(SRC_HEAD
                "sinks:\n"
                "  - [out]\n",
                WEIR_ETYPE, "job.yaml:6:5: each sink must be a mapping with name and kind");
}

static void
test_jobfile_node_needs_a_well_formed_name(void **state)
{
    check_error("name: t\n"
                "sources:\n"
                "  - kind: datagen\n",
                WEIR_EINVAL, "job.yaml:3:5: source #1: missing required parameter 'name'");
    check_error(SRC_HEAD
                "operators:\n"
                "  - name: a\n"
                "    kind: filter\n"
                "    input: src\n"
                "  - name: big one\n"
                "    kind: filter\n",
                WEIR_EINVAL,
                "job.yaml:9:11: operator #2: invalid node name 'big one': use letters, digits, '_', '.' and '-'");
    check_error("name: t\n"
                "sources:\n"
                "  - name: ''\n"
                "    kind: k\n",
                WEIR_EINVAL,
                "job.yaml:3:11: source #1: invalid node name '': use letters, digits, '_', '.' and '-'");
}

static void
test_jobfile_node_names_are_unique_across_sections(void **state)
{
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: src\n"
                "    kind: print\n"
                "    input: src\n",
                WEIR_EEXIST, "job.yaml:6:11: sink #1: node name 'src' is already used by the source at line 3");
    /* flow style: positions come from the recorded marks and tokens */
    check_error("name: j\n"
                "sources: [{name: a, kind: k}, {name: a, kind: k}]\n",
                WEIR_EEXIST, "job.yaml:2:38: source #2: node name 'a' is already used by the source at line 2");
}

static void
test_jobfile_node_needs_a_kind(void **state)
{
    check_error("name: t\n"
                "sources:\n"
                "  - name: gen\n"
                "    count: 3\n",
                WEIR_EINVAL, "job.yaml:3:5: source 'gen': missing required parameter 'kind'");
    check_error("name: t\n"
                "sources:\n"
                "  - name: gen\n"
                "    kind: \"\"\n",
                WEIR_EINVAL, "job.yaml:4:11: source 'gen': 'kind' must not be empty");
    check_error("name: t\n"
                "sources:\n"
                "  - {name: gen, kind: {a: b}}\n",
                WEIR_ETYPE, "job.yaml:3:23: source 'gen': parameter 'kind' must be a string, not a mapping");
}

static void
test_jobfile_source_must_not_have_inputs(void **state)
{
    check_error(SRC_HEAD
                "    input: x\n",
                WEIR_EINVAL, "job.yaml:5:5: source 'src': a source has no inputs: remove 'input'");
    check_error(SRC_HEAD
                "    key_by: id\n",
                WEIR_EINVAL, "job.yaml:5:5: source 'src': a source has no inputs: remove 'key_by'");
}

static void
test_jobfile_operator_and_sink_need_inputs(void **state)
{
    check_error(SRC_HEAD
                "operators:\n"
                "  - name: f\n"
                "    kind: filter\n",
                WEIR_EINVAL, "job.yaml:6:5: operator 'f': an operator needs 'input: NODE' or 'inputs: [NODE, ...]'");
    check_error(SRC_HEAD
                "sinks:\n"
                "  - {kind: print, name: out}\n",
                WEIR_EINVAL, "job.yaml:6:5: sink 'out': a sink needs 'input: NODE' or 'inputs: [NODE, ...]'");
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    input: src\n"
                "    inputs: [src]\n",
                WEIR_EINVAL, "job.yaml:9:5: sink 'out': use either 'input' or 'inputs', not both");
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    input:\n",
                WEIR_EINVAL, "job.yaml:8:5: sink 'out': parameter 'input' has no value");
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    input: [src]\n",
                WEIR_ETYPE, "job.yaml:8:12: sink 'out': 'input' names one node; use 'inputs' for a list or options");
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    inputs: []\n",
                WEIR_EINVAL, "job.yaml:8:13: sink 'out': parameter 'inputs' must not be empty");
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    inputs: src\n",
                WEIR_ETYPE, "job.yaml:8:13: sink 'out': parameter 'inputs' must be a list, not a single value");
}

static void
test_jobfile_input_must_name_a_node(void **state)
{
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    input: scr\n",
                WEIR_ENOENT, "job.yaml:8:12: sink 'out': input 'scr' is not a node of this job (did you mean 'src'?)");
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    inputs:\n"
                "      - src\n"
                "      - elsewhere\n",
                WEIR_ENOENT, "job.yaml:10:9: sink 'out': input 'elsewhere' is not a node of this job");
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    inputs:\n"
                "      - {as: x, from: sorc}\n",
                WEIR_ENOENT, "job.yaml:9:23: sink 'out': input 'sorc' is not a node of this job (did you mean 'src'?)");
}

static void
test_jobfile_sink_cannot_be_an_input(void **state)
{
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: a\n"
                "    kind: print\n"
                "    input: src\n"
                "  - name: b\n"
                "    kind: print\n"
                "    input: a\n",
                WEIR_EINVAL, "job.yaml:11:12: sink 'b': input 'a' is a sink, and a sink has no output");
}

static void
test_jobfile_input_entries_are_names_or_mappings(void **state)
{
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    inputs:\n"
                "      - [src]\n",
                WEIR_ETYPE, "job.yaml:9:9: sink 'out': each input must be a node name or a mapping {from, as, partition, key_by}");
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    inputs:\n"
                "      - form: src\n",
                WEIR_EINVAL, "job.yaml:9:9: sink 'out': unknown input option 'form' (did you mean 'from'?)");
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    inputs:\n"
                "      - as: x\n",
                WEIR_EINVAL, "job.yaml:9:9: sink 'out': missing required parameter 'from'");
}

static void
test_jobfile_input_aliases_must_differ(void **state)
{
    check_error(SRC_HEAD
                "operators:\n"
                "  - name: self\n"
                "    kind: join\n"
                "    inputs: [src, src]\n",
                WEIR_EINVAL, "job.yaml:8:19: operator 'self': two inputs are named 'src': give one another name with 'as'");
    weir_jobfile_t *jf = parse(SRC_HEAD
                               "operators:\n"
                               "  - name: self\n"
                               "    kind: join\n"
                               "    inputs: [src, {from: src, as: other}]\n");
    assert_string_equal(jf->nodes[1].inputs[0].alias, "src");
    assert_string_equal(jf->nodes[1].inputs[1].alias, "other");
    assert_int_equal(jf->nodes[1].inputs[1].from_node, 0);
    weir_jobfile_destroy(jf);
}

/* ---- partitioning ---------------------------------------------------- */

static void
test_jobfile_partition_names_are_checked(void **state)
{
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    input: src\n"
                "    partition: hsah\n",
                WEIR_EINVAL, "job.yaml:9:16: sink 'out': unknown partition 'hsah' (did you mean 'hash'?)");
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    inputs: [{from: src, partition: random}]\n",
                WEIR_EINVAL, "job.yaml:8:37: sink 'out': unknown partition 'random': use forward, rebalance, broadcast or hash");
}

static void
test_jobfile_partition_values_map_to_enum(void **state)
{
    weir_jobfile_t *jf = parse(SRC_HEAD
                               "sinks:\n"
                               "  - name: a\n"
                               "    kind: print\n"
                               "    input: src\n"
                               "    partition: forward\n"
                               "  - name: b\n"
                               "    kind: print\n"
                               "    inputs:\n"
                               "      - {from: src, partition: rebalance}\n"
                               "      - {from: src, as: s2, partition: broadcast}\n"
                               "    partition: forward\n");
    assert_int_equal(jf->nodes[1].inputs[0].partition, WEIR_PART_FORWARD);
    assert_int_equal(jf->nodes[2].inputs[0].partition, WEIR_PART_REBALANCE);
    assert_int_equal(jf->nodes[2].inputs[1].partition, WEIR_PART_BROADCAST);
    weir_jobfile_destroy(jf);
}

static void
test_jobfile_hash_needs_key_by(void **state)
{
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    input: src\n"
                "    partition: hash\n",
                WEIR_EINVAL, "job.yaml:9:16: sink 'out': partition 'hash' needs key_by");
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    inputs:\n"
                "      - from: src\n"
                "        partition: hash\n",
                WEIR_EINVAL, "job.yaml:10:20: sink 'out': partition 'hash' needs key_by");
    /* hash on the node, keys on the input: fine */
    weir_jobfile_t *jf = parse(SRC_HEAD
                               "sinks:\n"
                               "  - name: out\n"
                               "    kind: print\n"
                               "    partition: hash\n"
                               "    inputs: [{from: src, key_by: id}]\n");
    assert_int_equal(jf->nodes[1].inputs[0].partition, WEIR_PART_HASH);
    assert_int_equal(jf->nodes[1].inputs[0].nkeys, 1);
    assert_string_equal(jf->nodes[1].inputs[0].keys[0], "id");
    weir_jobfile_destroy(jf);
}

static void
test_jobfile_key_by_conflicts_with_other_partitions(void **state)
{
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    input: src\n"
                "    key_by: id\n"
                "    partition: forward\n",
                WEIR_EINVAL, "job.yaml:10:16: sink 'out': key_by needs hash partitioning, not 'forward'");
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    inputs: [{from: src, key_by: id, partition: broadcast}]\n",
                WEIR_EINVAL, "job.yaml:8:49: sink 'out': key_by needs hash partitioning, not 'broadcast'");
}

static void
test_jobfile_key_by_is_a_name_or_short_list(void **state)
{
    weir_jobfile_t *jf = parse(SRC_HEAD
                               "sinks:\n"
                               "  - name: out\n"
                               "    kind: print\n"
                               "    input: src\n"
                               "    key_by: [a, b, c, d, e, f, g, h]\n");
    assert_int_equal(jf->nodes[1].inputs[0].nkeys, 8);
    assert_string_equal(jf->nodes[1].inputs[0].keys[7], "h");
    assert_int_equal(jf->nodes[1].inputs[0].partition, WEIR_PART_HASH);
    weir_jobfile_destroy(jf);

    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    input: src\n"
                "    key_by: [a, b, c, d, e, f, g, h, i]\n",
                WEIR_E2BIG, "job.yaml:9:13: sink 'out': key_by names 9 fields, at most 8 are allowed");
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    input: src\n"
                "    key_by: [a, b, a]\n",
                WEIR_EINVAL, "job.yaml:9:13: sink 'out': key_by lists 'a' twice");
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    input: src\n"
                "    key_by: []\n",
                WEIR_EINVAL, "job.yaml:9:13: sink 'out': key_by must name at least one field");
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    input: src\n"
                "    key_by: {a: 1}\n",
                WEIR_ETYPE, "job.yaml:9:13: sink 'out': parameter 'key_by' must be a value or a list of values, not a mapping");
    check_error(SRC_HEAD
                "sinks:\n"
                "  - name: out\n"
                "    kind: print\n"
                "    input: src\n"
                "    key_by: \"\"\n",
                WEIR_EINVAL, "job.yaml:9:13: sink 'out': key_by field names must not be empty");
}

/* ---- cycles ---------------------------------------------------------- */

static void
test_jobfile_cycle_is_reported_with_its_path(void **state)
{
    check_error(SRC_HEAD
                "operators:\n"
                "  - name: a\n"                    /* 6 */
                "    kind: union\n"
                "    inputs: [src, c]\n"
                "  - name: b\n"                    /* 9 */
                "    kind: map\n"
                "    input: a\n"
                "  - name: c\n"
                "    kind: map\n"
                "    input: b\n",
                WEIR_EINVAL, "job.yaml:6:5: operator 'a': cycle: a -> b -> c -> a");
    /* found from the middle, still named from its first node in the file */
    check_error(SRC_HEAD
                "operators:\n"
                "  - name: x\n"                    /* 6 */
                "    kind: map\n"
                "    input: y\n"
                "  - name: y\n"
                "    kind: map\n"
                "    inputs: [x, src]\n",
                WEIR_EINVAL, "job.yaml:6:5: operator 'x': cycle: x -> y -> x");
    check_error(SRC_HEAD
                "operators:\n"
                "  - name: me\n"
                "    kind: map\n"
                "    input: me\n",
                WEIR_EINVAL, "job.yaml:6:5: operator 'me': cycle: me -> me");
}

/* ---- substitution ---------------------------------------------------- */

static char *
src_str(const char *params, const weir_vars_t *vars, const char *key)
{
    weir_jobfile_t *jf = src_job(params, vars);
    weir_err_t err;
    char *s = NULL;

    weir_err_clear(&err);
    if (weir_params_req_str(&jf->nodes[0].params, key, &s, &err) != 0) {
        print_error("%s\n", err.msg);
        fail();
    }
    weir_jobfile_destroy(jf);
    return s;
}

static void
check_str(const char *params, const weir_vars_t *vars, const char *expect)
{
    char *s = src_str(params, vars, "v");

    assert_string_equal(s, expect);
    free(s);
}

static void
test_subst_replaces_vars_defaults_and_dollars(void **state)
{
    weir_vars_t vars = { 0 };

    assert_int_equal(weir_vars_set(&vars, "OUT", "/data"), 0);
    assert_int_equal(weir_vars_set(&vars, "EMPTY", ""), 0);
    check_str("    v: ${OUT}/counts\n", &vars, "/data/counts");
    check_str("    v: \"${OUT}${OUT}\"\n", &vars, "/data/data");
    check_str("    v: ${NOPE:-fallback}\n", &vars, "fallback");
    check_str("    v: ${OUT:-fallback}\n", &vars, "/data");
    check_str("    v: ${EMPTY:-used when empty}\n", &vars, "used when empty");
    check_str("    v: ${NOPE:-}\n", &vars, "");
    check_str("    v: ${A:-${OUT:-x}/y}\n", &vars, "/data/y");
    check_str("    v: ${A:-${B:-deep}}\n", &vars, "deep");
    check_str("    v: cost $$5 and ^a$ and $x\n", &vars, "cost $5 and ^a$ and $x");
    check_str("    v: $${OUT}\n", &vars, "${OUT}");
    check_str("    v: ${A:-{braces\\}}\n", &vars, "{braces\\}");   /* no escapes: the first } ends it */
    /* a value is inserted as is */
    assert_int_equal(weir_vars_set(&vars, "REF", "${OUT}$$"), 0);
    check_str("    v: ${REF}\n", &vars, "${OUT}$$");
    weir_vars_free(&vars);
}

static void
test_subst_undefined_variable_is_located_and_explained(void **state)
{
    weir_jobfile_t *jf = src_job("    path: /x/${OUT}/y\n", NULL);
    weir_err_t err;
    char *s = NULL;

    assert_int_equal(weir_params_req_str(&jf->nodes[0].params, "path", &s, &err), WEIR_ENOENT);
    assert_null(s);
    assert_string_equal(err.msg, "job.yaml:5:11: source 'src': variable 'OUT' is not set: "
                                 "pass -D OUT=value, or write ${OUT:-default}");
    weir_jobfile_destroy(jf);

    /* names and kinds are substituted too, when the file is parsed */
    check_error("name: ${JOB}\n", WEIR_ENOENT,
                "job.yaml:1:7: variable 'JOB' is not set: pass -D JOB=value, or write ${JOB:-default}");
}

static void
test_subst_uses_environment_only_when_asked(void **state)
{
    weir_vars_t vars = { 0 };
    weir_jobfile_t *jf;
    weir_err_t err;
    char *s = NULL;

    setenv("WEIR_TEST_JOBFILE_DIR", "/from/env", 1);
    jf = src_job("    v: ${WEIR_TEST_JOBFILE_DIR}\n", &vars);
    assert_int_equal(weir_params_req_str(&jf->nodes[0].params, "v", &s, &err), WEIR_ENOENT);
    assert_string_equal(err.msg, "job.yaml:5:8: source 'src': variable 'WEIR_TEST_JOBFILE_DIR' is not set: "
                                 "pass -D WEIR_TEST_JOBFILE_DIR=value, or write ${WEIR_TEST_JOBFILE_DIR:-default}");
    weir_jobfile_destroy(jf);

    vars.use_env = true;
    check_str("    v: ${WEIR_TEST_JOBFILE_DIR}\n", &vars, "/from/env");
    /* vars win over the environment */
    assert_int_equal(weir_vars_set(&vars, "WEIR_TEST_JOBFILE_DIR", "/from/vars"), 0);
    check_str("    v: ${WEIR_TEST_JOBFILE_DIR}\n", &vars, "/from/vars");
    weir_vars_free(&vars);

    vars.use_env = true;
    unsetenv("WEIR_TEST_JOBFILE_DIR");
    jf = src_job("    v: ${WEIR_TEST_JOBFILE_DIR}\n", &vars);
    assert_int_equal(weir_params_req_str(&jf->nodes[0].params, "v", &s, &err), WEIR_ENOENT);
    assert_string_equal(err.msg, "job.yaml:5:8: source 'src': variable 'WEIR_TEST_JOBFILE_DIR' is not set: "
                                 "pass -D WEIR_TEST_JOBFILE_DIR=value or set it in the environment, "
                                 "or write ${WEIR_TEST_JOBFILE_DIR:-default}");
    weir_jobfile_destroy(jf);
}

static void
test_subst_rejects_malformed_references(void **state)
{
    static const struct { const char *params; const char *msg; } cases[] = {
        { "    v: a${}b\n",
          "job.yaml:5:8: source 'src': '${' must be followed by a variable name (letters, digits, _; write $$ for a literal $)" },
        { "    v: ${1X}\n",
          "job.yaml:5:8: source 'src': '${' must be followed by a variable name (letters, digits, _; write $$ for a literal $)" },
        { "    v: ${OUT\n",
          "job.yaml:5:8: source 'src': '${OUT' has no closing '}'" },
        { "    v: ${OUT:-x\n",
          "job.yaml:5:8: source 'src': '${OUT:-' has no closing '}'" },
        { "    v: ${OUT-x}\n",
          "job.yaml:5:8: source 'src': invalid character '-' in '${OUT': write ${NAME} or ${NAME:-default}" },
        { "    v: ${A:-${B:-${C:-${D:-${E:-${F:-${G:-${H:-${I:-${J:-x}}}}}}}}}}\n",
          "job.yaml:5:8: source 'src': variable defaults nest more than 8 deep" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        weir_jobfile_t *jf = src_job(cases[i].params, NULL);
        weir_err_t err;
        char *s = NULL;

        assert_int_equal(weir_params_req_str(&jf->nodes[0].params, "v", &s, &err), WEIR_EINVAL);
        assert_string_equal(err.msg, cases[i].msg);
        weir_jobfile_destroy(jf);
    }
}

static void
test_subst_applies_to_node_names_kinds_and_inputs(void **state)
{
    weir_vars_t vars = { 0 };

    assert_int_equal(weir_vars_set(&vars, "KIND", "datagen"), 0);
    weir_jobfile_t *jf = parse_vars("name: ${JOB:-job-$$1}\n"
                                    "sources:\n"
                                    "  - name: ${SRC:-gen}\n"
                                    "    kind: ${KIND}\n"
                                    "sinks:\n"
                                    "  - name: out\n"
                                    "    kind: print\n"
                                    "    input: ${SRC:-gen}\n", &vars);
    assert_string_equal(jf->name, "job-$1");
    assert_string_equal(jf->nodes[0].name, "gen");
    assert_string_equal(jf->nodes[0].kind, "datagen");
    assert_int_equal(jf->nodes[1].inputs[0].from_node, 0);
    /* the vars were copied: the caller's may go */
    weir_vars_free(&vars);
    assert_int_equal(jf->vars.n, 1);
    assert_string_equal(jf->vars.keys[0], "KIND");
    weir_jobfile_destroy(jf);
}

static void
test_var_refs_lists_each_name_once_in_order(void **state)
{
    const char *text = "a: ${B}\n"
                       "b: ${A:-${C}} ${B} $${NOT} $X ${} ${1X} ${D-x} ${E:-${F:-1}}\n"
                       "c: ${G";
    char **names = NULL;
    int n = -1;

    assert_int_equal(weir_jobfile_var_refs(text, strlen(text), &names, &n), 0);
    assert_int_equal(n, 5);
    assert_string_equal(names[0], "B");
    assert_string_equal(names[1], "A");
    assert_string_equal(names[2], "C");
    assert_string_equal(names[3], "E");
    assert_string_equal(names[4], "F");
    weir_str_list_free(names, n);

    assert_int_equal(weir_jobfile_var_refs("plain text", 10, &names, &n), 0);
    assert_int_equal(n, 0);
    assert_null(names);
    /* len is respected */
    assert_int_equal(weir_jobfile_var_refs("${A} ${B}", 4, &names, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "A");
    weir_str_list_free(names, n);
}

static void
test_vars_set_replaces_and_free_empties(void **state)
{
    weir_vars_t v = { 0 };

    assert_int_equal(weir_vars_set(&v, "A", "1"), 0);
    assert_int_equal(weir_vars_set(&v, "B", "2"), 0);
    assert_int_equal(weir_vars_set(&v, "A", "3"), 0);
    assert_int_equal(v.n, 2);
    assert_string_equal(v.keys[0], "A");
    assert_string_equal(v.vals[0], "3");
    assert_string_equal(v.keys[1], "B");
    assert_string_equal(v.vals[1], "2");
    assert_int_equal(weir_vars_set(&v, NULL, "x"), WEIR_EINVAL);
    weir_vars_free(&v);
    assert_int_equal(v.n, 0);
    assert_null(v.keys);
    assert_null(v.vals);
    weir_vars_free(&v);
    weir_vars_free(NULL);
}

/* ---- getters --------------------------------------------------------- */

static void
test_params_strings_and_defaults(void **state)
{
    weir_jobfile_t *jf = src_job("    s: hello world\n"       /* 5 */
                                 "    q: 'it''s'\n"           /* 6 */
                                 "    e:\n"                   /* 7 */
                                 "    l: [1, 2]\n"            /* 8 */
                                 "    n: 42\n", NULL);        /* 9 */
    const weir_params_t *p = &jf->nodes[0].params;
    weir_err_t err;
    char *s = NULL;

    assert_true(weir_params_has(p, "s"));
    assert_false(weir_params_has(p, "e"));          /* null counts as absent */
    assert_false(weir_params_has(p, "zz"));
    assert_true(weir_params_is_map(p));
    assert_int_equal(weir_params_req_str(p, "s", &s, &err), 0);
    assert_string_equal(s, "hello world");
    free(s);
    assert_int_equal(weir_params_req_str(p, "q", &s, &err), 0);
    assert_string_equal(s, "it's");
    free(s);
    assert_int_equal(weir_params_req_str(p, "n", &s, &err), 0);
    assert_string_equal(s, "42");
    free(s);
    assert_int_equal(weir_params_opt_str(p, "zz", "dflt", &s, &err), 0);
    assert_string_equal(s, "dflt");
    free(s);
    assert_int_equal(weir_params_opt_str(p, "e", "dflt", &s, &err), 0);
    assert_string_equal(s, "dflt");
    free(s);
    s = (char *)"sentinel";
    assert_int_equal(weir_params_opt_str(p, "zz", NULL, &s, &err), 0);
    assert_null(s);

    assert_int_equal(weir_params_req_str(p, "zz", &s, &err), WEIR_EINVAL);
    assert_string_equal(err.msg, "job.yaml:3:5: source 'src': missing required parameter 'zz'");
    assert_int_equal(weir_params_req_str(p, "e", &s, &err), WEIR_EINVAL);
    assert_string_equal(err.msg, "job.yaml:7:5: source 'src': parameter 'e' has no value");
    assert_int_equal(weir_params_req_str(p, "l", &s, &err), WEIR_ETYPE);
    assert_string_equal(err.msg, "job.yaml:8:8: source 'src': parameter 'l' must be a string, not a list");
    assert_int_equal(weir_params_opt_str(p, "l", "x", &s, &err), WEIR_ETYPE);
    /* err may be NULL */
    assert_int_equal(weir_params_req_str(p, "l", &s, NULL), WEIR_ETYPE);
    weir_jobfile_destroy(jf);
}

static void
test_params_integers(void **state)
{
    weir_vars_t vars = { 0 };
    weir_jobfile_t *jf;
    const weir_params_t *p;
    weir_err_t err;
    int64_t v;

    assert_int_equal(weir_vars_set(&vars, "N", "12345"), 0);
    assert_int_equal(weir_vars_set(&vars, "BAD", "12x"), 0);
    jf = src_job("    a: 7\n"                                 /* 5 */
                 "    b: -9223372036854775808\n"              /* 6 */
                 "    c: ${N}\n"                              /* 7 */
                 "    d: \"${COUNT:-1000}\"\n"                /* 8 */
                 "    e: ten\n"                               /* 9 */
                 "    f: 9223372036854775808\n"               /* 10 */
                 "    g: {x: 1}\n"                            /* 11 */
                 "    h: ${BAD}\n"                            /* 12 */
                 "    i: 1.0\n"                               /* 13 */
                 "    j: true\n"                              /* 14 */
                 "    k: +5\n", &vars);                       /* 15 */
    p = &jf->nodes[0].params;
    assert_int_equal(weir_params_req_int(p, "a", &v, &err), 0);
    assert_i64_equal(v, 7);
    assert_int_equal(weir_params_req_int(p, "b", &v, &err), 0);
    assert_i64_equal(v, INT64_MIN);
    assert_int_equal(weir_params_req_int(p, "c", &v, &err), 0);
    assert_i64_equal(v, 12345);
    assert_int_equal(weir_params_opt_int(p, "d", 1, &v, &err), 0);
    assert_i64_equal(v, 1000);
    assert_int_equal(weir_params_opt_int(p, "k", 1, &v, &err), 0);
    assert_i64_equal(v, 5);
    assert_int_equal(weir_params_opt_int(p, "missing", -4, &v, &err), 0);
    assert_i64_equal(v, -4);

    assert_int_equal(weir_params_req_int(p, "e", &v, &err), WEIR_ETYPE);
    assert_string_equal(err.msg, "job.yaml:9:8: source 'src': parameter 'e' must be an integer, got 'ten'");
    assert_int_equal(weir_params_req_int(p, "f", &v, &err), WEIR_ERANGE);
    assert_string_equal(err.msg, "job.yaml:10:8: source 'src': parameter 'f' is out of range: 9223372036854775808");
    assert_int_equal(weir_params_opt_int(p, "g", 0, &v, &err), WEIR_ETYPE);
    assert_string_equal(err.msg, "job.yaml:11:8: source 'src': parameter 'g' must be an integer, not a mapping");
    assert_int_equal(weir_params_req_int(p, "h", &v, &err), WEIR_ETYPE);
    assert_string_equal(err.msg, "job.yaml:12:8: source 'src': parameter 'h' must be an integer, got '12x'");
    assert_int_equal(weir_params_req_int(p, "i", &v, &err), WEIR_ETYPE);
    assert_string_equal(err.msg, "job.yaml:13:8: source 'src': parameter 'i' must be an integer, got '1.0'");
    assert_int_equal(weir_params_req_int(p, "j", &v, &err), WEIR_ETYPE);
    assert_int_equal(weir_params_req_int(p, "missing", &v, &err), WEIR_EINVAL);
    assert_string_equal(err.msg, "job.yaml:3:5: source 'src': missing required parameter 'missing'");
    weir_jobfile_destroy(jf);
    weir_vars_free(&vars);
}

static void
test_params_doubles(void **state)
{
    weir_jobfile_t *jf = src_job("    a: 1.5\n"          /* 5 */
                                 "    b: 2\n"            /* 6 */
                                 "    c: -3e2\n"         /* 7 */
                                 "    d: fast\n"         /* 8 */
                                 "    e: nan\n"          /* 9 */
                                 "    f: 1e999\n"        /* 10 */
                                 "    g: [1]\n", NULL);  /* 11 */
    const weir_params_t *p = &jf->nodes[0].params;
    weir_err_t err;
    double d;

    assert_int_equal(weir_params_opt_double(p, "a", 0, &d, &err), 0);
    assert_true(d == 1.5);
    assert_int_equal(weir_params_opt_double(p, "b", 0, &d, &err), 0);
    assert_true(d == 2.0);
    assert_int_equal(weir_params_opt_double(p, "c", 0, &d, &err), 0);
    assert_true(d == -300.0);
    assert_int_equal(weir_params_opt_double(p, "zz", 0.25, &d, &err), 0);
    assert_true(d == 0.25);
    assert_int_equal(weir_params_opt_double(p, "d", 0, &d, &err), WEIR_ETYPE);
    assert_string_equal(err.msg, "job.yaml:8:8: source 'src': parameter 'd' must be a number, got 'fast'");
    assert_int_equal(weir_params_opt_double(p, "e", 0, &d, &err), WEIR_ETYPE);
    assert_string_equal(err.msg, "job.yaml:9:8: source 'src': parameter 'e' must be a number, got 'nan'");
    assert_int_equal(weir_params_opt_double(p, "f", 0, &d, &err), WEIR_ERANGE);
    assert_string_equal(err.msg, "job.yaml:10:8: source 'src': parameter 'f' is out of range: 1e999");
    assert_int_equal(weir_params_opt_double(p, "g", 0, &d, &err), WEIR_ETYPE);
    assert_string_equal(err.msg, "job.yaml:11:8: source 'src': parameter 'g' must be a number, not a list");
    weir_jobfile_destroy(jf);
}

static void
test_params_booleans(void **state)
{
    weir_jobfile_t *jf = src_job("    a: true\n"
                                 "    b: False\n"
                                 "    c: yes\n"
                                 "    d: off\n"
                                 "    e: \"${FLAG:-on}\"\n"
                                 "    f: maybe\n"            /* 10 */
                                 "    g: 1\n", NULL);        /* 11 */
    const weir_params_t *p = &jf->nodes[0].params;
    weir_err_t err;
    bool b;

    assert_int_equal(weir_params_opt_bool(p, "a", false, &b, &err), 0);
    assert_true(b);
    assert_int_equal(weir_params_opt_bool(p, "b", true, &b, &err), 0);
    assert_false(b);
    assert_int_equal(weir_params_opt_bool(p, "c", false, &b, &err), 0);
    assert_true(b);
    assert_int_equal(weir_params_opt_bool(p, "d", true, &b, &err), 0);
    assert_false(b);
    assert_int_equal(weir_params_opt_bool(p, "e", false, &b, &err), 0);
    assert_true(b);
    assert_int_equal(weir_params_opt_bool(p, "zz", true, &b, &err), 0);
    assert_true(b);
    assert_int_equal(weir_params_opt_bool(p, "zz", false, &b, &err), 0);
    assert_false(b);
    assert_int_equal(weir_params_opt_bool(p, "f", false, &b, &err), WEIR_ETYPE);
    assert_string_equal(err.msg, "job.yaml:10:8: source 'src': parameter 'f' must be true or false, got 'maybe'");
    assert_int_equal(weir_params_opt_bool(p, "g", false, &b, &err), WEIR_ETYPE);
    assert_string_equal(err.msg, "job.yaml:11:8: source 'src': parameter 'g' must be true or false, got '1'");
    weir_jobfile_destroy(jf);
}

static void
test_params_durations(void **state)
{
    weir_jobfile_t *jf = src_job("    a: 500ms\n"           /* 5 */
                                 "    b: 5s\n"              /* 6 */
                                 "    c: 2h\n"              /* 7 */
                                 "    d: 250\n"             /* 8 */
                                 "    e: \"${T:-1m}\"\n"    /* 9 */
                                 "    f: fast\n"            /* 10 */
                                 "    g: -5\n"              /* 11 */
                                 "    h: -5s\n"             /* 12 */
                                 "    i: 9223372036854776\n"/* 13 */
                                 "    j: {s: 1}\n"          /* 14 */
                                 "    k: 0\n"               /* 15 */
                                 "    l: 1.5s\n"            /* 16 */
                                 "    m: 200000000d\n", NULL); /* 17 */
    const weir_params_t *p = &jf->nodes[0].params;
    weir_err_t err;
    int64_t us;

    assert_int_equal(weir_params_opt_duration(p, "a", 0, &us, &err), 0);
    assert_i64_equal(us, 500000);
    assert_int_equal(weir_params_opt_duration(p, "b", 0, &us, &err), 0);
    assert_i64_equal(us, 5000000);
    assert_int_equal(weir_params_opt_duration(p, "c", 0, &us, &err), 0);
    assert_i64_equal(us, 7200LL * 1000000);
    assert_int_equal(weir_params_opt_duration(p, "d", 0, &us, &err), 0);
    assert_i64_equal(us, 250000);                    /* a bare number is ms */
    assert_int_equal(weir_params_opt_duration(p, "e", 0, &us, &err), 0);
    assert_i64_equal(us, 60000000);
    assert_int_equal(weir_params_opt_duration(p, "k", 7, &us, &err), 0);
    assert_i64_equal(us, 0);
    assert_int_equal(weir_params_opt_duration(p, "l", 0, &us, &err), 0);
    assert_i64_equal(us, 1500000);
    assert_int_equal(weir_params_opt_duration(p, "m", 0, &us, &err), WEIR_ERANGE);
    assert_string_equal(err.msg, "job.yaml:17:8: source 'src': parameter 'm' is out of range: 200000000d");
    assert_int_equal(weir_params_opt_duration(p, "zz", 123, &us, &err), 0);
    assert_i64_equal(us, 123);
    assert_int_equal(weir_params_opt_duration(p, "f", 0, &us, &err), WEIR_EINVAL);
    assert_string_equal(err.msg, "job.yaml:10:8: source 'src': parameter 'f' must be a duration such as "
                                 "500ms, 5s, 1m or 2h (a bare number is milliseconds), got 'fast'");
    assert_int_equal(weir_params_opt_duration(p, "g", 0, &us, &err), WEIR_ERANGE);
    assert_string_equal(err.msg, "job.yaml:11:8: source 'src': parameter 'g' must not be negative, got -5");
    assert_int_equal(weir_params_opt_duration(p, "h", 0, &us, &err), WEIR_ERANGE);
    assert_string_equal(err.msg, "job.yaml:12:8: source 'src': parameter 'h' must not be negative, got '-5s'");
    assert_int_equal(weir_params_opt_duration(p, "i", 0, &us, &err), WEIR_ERANGE);
    assert_string_equal(err.msg, "job.yaml:13:8: source 'src': parameter 'i' is out of range: 9223372036854776");
    assert_int_equal(weir_params_opt_duration(p, "j", 0, &us, &err), WEIR_ETYPE);
    assert_string_equal(err.msg, "job.yaml:14:8: source 'src': parameter 'j' must be a duration, not a mapping");
    weir_jobfile_destroy(jf);
}

static void
test_params_string_lists(void **state)
{
    weir_jobfile_t *jf = src_job("    one: solo\n"                 /* 5 */
                                 "    many: [a, \"b c\", 3]\n"     /* 6 */
                                 "    empty: []\n"                 /* 7 */
                                 "    nested: [a, [b]]\n"          /* 8 */
                                 "    block:\n"                    /* 9 */
                                 "      - x\n"                     /* 10 */
                                 "      - ${Y:-y}\n", NULL);       /* 11 */
    const weir_params_t *p = &jf->nodes[0].params;
    weir_err_t err;
    char **l = NULL;
    int n = -1;

    assert_int_equal(weir_params_str_list(p, "one", true, &l, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(l[0], "solo");
    weir_str_list_free(l, n);
    assert_int_equal(weir_params_str_list(p, "many", true, &l, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_string_equal(l[0], "a");
    assert_string_equal(l[1], "b c");
    assert_string_equal(l[2], "3");
    weir_str_list_free(l, n);
    assert_int_equal(weir_params_str_list(p, "block", false, &l, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(l[1], "y");
    weir_str_list_free(l, n);
    assert_int_equal(weir_params_str_list(p, "missing", false, &l, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(l);
    assert_int_equal(weir_params_str_list(p, "empty", false, &l, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(l);

    assert_int_equal(weir_params_str_list(p, "missing", true, &l, &n, &err), WEIR_EINVAL);
    assert_string_equal(err.msg, "job.yaml:3:5: source 'src': missing required parameter 'missing'");
    assert_int_equal(weir_params_str_list(p, "empty", true, &l, &n, &err), WEIR_EINVAL);
    assert_string_equal(err.msg, "job.yaml:7:12: source 'src': parameter 'empty' must not be empty");
    assert_int_equal(weir_params_str_list(p, "nested", false, &l, &n, &err), WEIR_ETYPE);
    assert_string_equal(err.msg, "job.yaml:8:17: source 'src': parameter 'nested' must list single values; item 2 is a list");
    assert_null(l);
    assert_int_equal(n, 0);
    weir_str_list_free(NULL, 0);
    weir_jobfile_destroy(jf);
}

static void
test_params_children_items_and_scalars(void **state)
{
    weir_jobfile_t *jf = src_job("    opts: {a: 1, b: two}\n"      /* 5 */
                                 "    fields:\n"                   /* 6 */
                                 "      - x\n"                     /* 7 */
                                 "      - {y: 2}\n"                /* 8 */
                                 "      - ${Z:-zed}\n"             /* 9 */
                                 "    flat: 3\n"                   /* 10 */
                                 "    none: []\n", NULL);          /* 11 */
    const weir_params_t *p = &jf->nodes[0].params;
    weir_params_t c, *items = NULL;
    weir_err_t err;
    int64_t v;
    char *s;
    int n = -1;

    assert_int_equal(weir_params_child(p, "opts", true, &c, &err), 0);
    assert_true(weir_params_is_map(&c));
    assert_ptr_equal(c.jf, jf);
    assert_string_equal(c.what, "source 'src'");
    assert_int_equal(weir_params_req_int(&c, "a", &v, &err), 0);
    assert_i64_equal(v, 1);
    assert_int_equal(weir_params_req_int(&c, "b", &v, &err), WEIR_ETYPE);
    assert_string_equal(err.msg, "job.yaml:5:21: source 'src': parameter 'b' must be an integer, got 'two'");
    assert_int_equal(weir_params_child(p, "fields", true, &c, &err), 0);
    assert_false(weir_params_is_map(&c));
    assert_int_equal(weir_params_child(p, "missing", false, &c, &err), 0);
    assert_null(c.node);
    assert_false(weir_params_is_map(&c));
    assert_int_equal(weir_params_child(p, "missing", true, &c, &err), WEIR_EINVAL);
    assert_string_equal(err.msg, "job.yaml:3:5: source 'src': missing required parameter 'missing'");
    assert_int_equal(weir_params_child(p, "flat", true, &c, &err), WEIR_ETYPE);
    assert_string_equal(err.msg, "job.yaml:10:11: source 'src': parameter 'flat' must be a mapping or a list, not a single value");

    assert_int_equal(weir_params_items(p, "fields", true, &items, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(weir_params_scalar(&items[0], &s, &err), 0);
    assert_string_equal(s, "x");
    free(s);
    assert_true(weir_params_is_map(&items[1]));
    assert_int_equal(weir_params_req_int(&items[1], "y", &v, &err), 0);
    assert_i64_equal(v, 2);
    assert_int_equal(weir_params_scalar(&items[1], &s, &err), WEIR_ETYPE);
    assert_string_equal(err.msg, "job.yaml:8:9: source 'src': expected a single value, not a mapping");
    assert_int_equal(weir_params_scalar(&items[2], &s, &err), 0);
    assert_string_equal(s, "zed");
    free(s);
    free(items);
    assert_int_equal(weir_params_items(p, "none", false, &items, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(items);
    assert_int_equal(weir_params_items(p, "none", true, &items, &n, &err), WEIR_EINVAL);
    assert_string_equal(err.msg, "job.yaml:11:11: source 'src': parameter 'none' must not be empty");
    assert_int_equal(weir_params_items(p, "opts", true, &items, &n, &err), WEIR_ETYPE);
    assert_string_equal(err.msg, "job.yaml:5:11: source 'src': parameter 'opts' must be a list, not a mapping");
    assert_int_equal(weir_params_items(p, "missing", false, &items, &n, &err), 0);
    assert_int_equal(n, 0);
    weir_jobfile_destroy(jf);
}

static void
test_params_check_keys_suggests(void **state)
{
    static const char *const filter_keys[] = { "where", "limit", NULL };
    weir_jobfile_t *jf = src_job("    parallelism: 2\n"
                                 "    where: x > 1\n"
                                 "    limt: 3\n", NULL);      /* 7 */
    weir_err_t err;

    assert_int_equal(weir_params_check_keys(&jf->nodes[0].params, filter_keys, &err), WEIR_EINVAL);
    assert_string_equal(err.msg, "job.yaml:7:5: source 'src': unknown parameter 'limt' (did you mean 'limit'?)");
    weir_jobfile_destroy(jf);

    jf = src_job("    parallelism: 2\n"
                 "    where: x > 1\n"
                 "    limit: 3\n", NULL);
    assert_int_equal(weir_params_check_keys(&jf->nodes[0].params, filter_keys, &err), 0);
    assert_int_equal(weir_params_check_keys(&jf->nodes[0].params, NULL, &err), WEIR_EINVAL);
    assert_string_equal(err.msg, "job.yaml:6:5: source 'src': unknown parameter 'where'");
    weir_jobfile_destroy(jf);

    jf = src_job("    kidn: x\n", NULL);
    assert_int_equal(weir_params_check_keys(&jf->nodes[0].params, NULL, &err), WEIR_EINVAL);
    assert_string_equal(err.msg, "job.yaml:5:5: source 'src': unknown parameter 'kidn' (did you mean 'kind'?)");
    weir_jobfile_destroy(jf);

    int n = 0;
    while (weir_params_common_keys[n] != NULL)
        n++;
    assert_int_equal(n, 9);          /* name kind input inputs parallelism partition key_by when watermark */
}

static void
test_params_error_and_loc(void **state)
{
    weir_jobfile_t *jf = src_job("    a: 1\n"             /* 5 */
                                 "    b:\n"               /* 6 */
                                 "    c:\n"               /* 7 */
                                 "      d: 2\n", NULL);   /* 8 */
    const weir_params_t *p = &jf->nodes[0].params;
    weir_params_t nowhat = *p;
    weir_err_t err;
    int line, col;

    weir_params_loc(p, "a", &line, &col);
    assert_int_equal(line, 5);
    assert_int_equal(col, 8);
    weir_params_loc(p, "b", &line, &col);           /* no value: the key */
    assert_int_equal(line, 6);
    assert_int_equal(col, 5);
    weir_params_loc(p, "c", &line, &col);           /* a block mapping: its first key */
    assert_int_equal(line, 8);
    assert_int_equal(col, 7);
    weir_params_loc(p, "zz", &line, &col);          /* absent: the node */
    assert_int_equal(line, 3);
    assert_int_equal(col, 5);
    weir_params_loc(p, NULL, &line, &col);
    assert_int_equal(line, 3);
    assert_int_equal(col, 5);

    assert_int_equal(weir_params_error(p, "a", WEIR_ERANGE, &err, "too %s", "big"), WEIR_ERANGE);
    assert_int_equal(err.code, WEIR_ERANGE);
    assert_string_equal(err.msg, "job.yaml:5:8: source 'src': too big");
    nowhat.what = NULL;
    assert_int_equal(weir_params_error(&nowhat, NULL, WEIR_EINVAL, &err, "plain"), WEIR_EINVAL);
    assert_string_equal(err.msg, "job.yaml:3:5: plain");
    assert_int_equal(weir_params_error(p, NULL, WEIR_EINVAL, NULL, "no err"), WEIR_EINVAL);
    weir_jobfile_destroy(jf);
}

static void
test_params_error_at_points_inside_the_scalar(void **state)
{
    weir_jobfile_t *jf = src_job("    a: x > 1 and y\n"                /* 5 */
                                 "    b: 'x > 1 and y'\n"              /* 6 */
                                 "    c: \"x > 1 and y\"\n"            /* 7 */
                                 "    d: |\n"                          /* 8 */
                                 "      x > 1\n"                       /* 9 */
                                 "        and y\n"                     /* 10 */
                                 "    e: ${V:-x} > 1 and y\n"          /* 11 */
                                 "    f: x > 1 and ${V:-y}\n"          /* 12 */
                                 "    g: \"\\t> 1 and y\"\n"           /* 13 */
                                 "    h: >\n"                          /* 14 */
                                 "      x > 1\n"                       /* 15 */
                                 "      and y\n", NULL);               /* 16 */
    const weir_params_t *p = &jf->nodes[0].params;
    weir_err_t err;

    /* offset 10 is the 'y' of "x > 1 and y" */
    weir_params_error_at(p, "a", 10, WEIR_EPARSE, &err, "unknown field");
    assert_string_equal(err.msg, "job.yaml:5:18: source 'src': unknown field");
    weir_params_error_at(p, "b", 10, WEIR_EPARSE, &err, "unknown field");
    assert_string_equal(err.msg, "job.yaml:6:19: source 'src': unknown field");
    weir_params_error_at(p, "c", 10, WEIR_EPARSE, &err, "unknown field");
    assert_string_equal(err.msg, "job.yaml:7:19: source 'src': unknown field");
    /* block literal "x > 1\n  and y\n": offset 12 is the 'y' on line 10 */
    weir_params_error_at(p, "d", 12, WEIR_EPARSE, &err, "unknown field");
    assert_string_equal(err.msg, "job.yaml:10:13: source 'src': unknown field");
    weir_params_error_at(p, "d", 0, WEIR_EPARSE, &err, "here");
    assert_string_equal(err.msg, "job.yaml:9:7: source 'src': here");
    /* substitution before the offset: the scalar itself */
    weir_params_error_at(p, "e", 10, WEIR_EPARSE, &err, "unknown field");
    assert_string_equal(err.msg, "job.yaml:11:8: source 'src': unknown field");
    /* substitution after it: still exact */
    weir_params_error_at(p, "f", 4, WEIR_EPARSE, &err, "bad number");
    assert_string_equal(err.msg, "job.yaml:12:12: source 'src': bad number");
    /* an escape before the offset: the scalar itself */
    weir_params_error_at(p, "g", 5, WEIR_EPARSE, &err, "x");
    assert_string_equal(err.msg, "job.yaml:13:8: source 'src': x");
    /* folded: the first content character */
    weir_params_error_at(p, "h", 8, WEIR_EPARSE, &err, "x");
    assert_string_equal(err.msg, "job.yaml:15:7: source 'src': x");
    /* an offset past the end: the scalar */
    weir_params_error_at(p, "a", 99, WEIR_EPARSE, &err, "x");
    assert_string_equal(err.msg, "job.yaml:5:8: source 'src': x");
    weir_jobfile_destroy(jf);
}

/* ---- schemas --------------------------------------------------------- */

static void
test_params_schema_as_list_of_fields(void **state)
{
    weir_jobfile_t *jf = src_job("    schema:\n"
                                 "      - {name: id, type: int}\n"
                                 "      - {name: email, type: string, nullable: true}\n"
                                 "      - {name: ts, type: timestamp?}\n"
                                 "      - {name: amount, type: \"${AMT:-double}\"}\n"   /* braces need quotes in flow style */
                                 "      - name: ok\n"
                                 "        type: boolean\n"
                                 "        nullable: false\n", NULL);
    weir_schema_t *s = NULL;
    weir_err_t err;
    char buf[256];

    assert_int_equal(weir_params_schema(&jf->nodes[0].params, "schema", &s, &err), 0);
    assert_int_equal(s->nfields, 5);
    assert_string_equal(weir_schema_describe(s, buf, sizeof(buf)),
                        "{id: int, email: string?, ts: timestamp?, amount: double, ok: bool}");
    assert_int_equal(s->fields[1].type, WEIR_T_STRING);
    assert_true(s->fields[1].nullable);
    assert_false(s->fields[0].nullable);
    weir_schema_unref(s);
    weir_jobfile_destroy(jf);
}

static void
test_params_schema_as_mapping(void **state)
{
    weir_jobfile_t *jf = src_job("    schema:\n"
                                 "      account_id: string\n"
                                 "      amount: float\n"
                                 "      flagged: bool?\n"
                                 "      raw: {type: bytes, nullable: true}\n"
                                 "      n: BIGINT\n", NULL);
    weir_schema_t *s = NULL;
    weir_err_t err;
    char buf[256];

    assert_int_equal(weir_params_schema(&jf->nodes[0].params, "schema", &s, &err), 0);
    assert_string_equal(weir_schema_describe(s, buf, sizeof(buf)),
                        "{account_id: string, amount: double, flagged: bool?, raw: bytes?, n: int}");
    weir_schema_unref(s);
    weir_jobfile_destroy(jf);
}

static void
test_params_schema_errors(void **state)
{
    static const struct { const char *params; int code; const char *msg; } cases[] = {
        { "    schema: {id: strng}\n", WEIR_EINVAL,
          "job.yaml:5:18: source 'src': unknown type 'strng' for field 'id' (did you mean 'string'?)" },
        { "    schema: [{name: id, type: thing}]\n", WEIR_EINVAL,
          "job.yaml:5:31: source 'src': unknown type 'thing' for field 'id': use int, double, bool, "
          "string, bytes or timestamp, with a trailing ? when nullable" },
        { "    schema: [{name: id, type: int}, {name: id, type: string}]\n", WEIR_EINVAL,
          "job.yaml:5:44: source 'src': field 'id' is declared twice" },
        { "    schema: [{name: id}]\n", WEIR_EINVAL,
          "job.yaml:5:14: source 'src': missing required parameter 'type'" },
        { "    schema: {id: }\n", WEIR_EINVAL,
          "job.yaml:5:14: source 'src': field 'id' needs a type (int, double, bool, string, bytes, timestamp)" },
        { "    schema: []\n", WEIR_EINVAL,
          "job.yaml:5:13: source 'src': parameter 'schema' must declare at least one field" },
        { "    schema: int\n", WEIR_ETYPE,
          "job.yaml:5:13: source 'src': parameter 'schema' must be a list of {name, type} or a mapping "
          "of name: type, not a single value" },
        { "    schema: [id]\n", WEIR_EINVAL,
          "job.yaml:5:14: source 'src': each schema field must be a mapping {name: N, type: T}, not a single value" },
        { "    schema: [{name: id, typ: int}]\n", WEIR_EINVAL,
          "job.yaml:5:25: source 'src': unknown schema key 'typ' (did you mean 'type'?)" },
        { "    schema: {id: {type: int, name: x}}\n", WEIR_EINVAL,
          "job.yaml:5:30: source 'src': unknown schema key 'name'" },
        { "    schema: [{name: '', type: int}]\n", WEIR_EINVAL,
          "job.yaml:5:21: source 'src': field names must not be empty" },
        { "    schema: [{name: x, type: int, nullable: maybe}]\n", WEIR_ETYPE,
          "job.yaml:5:45: source 'src': parameter 'nullable' must be true or false, got 'maybe'" },
        { "    other: 1\n", WEIR_EINVAL,
          "job.yaml:3:5: source 'src': missing required parameter 'schema'" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        weir_jobfile_t *jf = src_job(cases[i].params, NULL);
        weir_schema_t *s = (weir_schema_t *)&i;
        weir_err_t err;

        assert_int_equal(weir_params_schema(&jf->nodes[0].params, "schema", &s, &err), cases[i].code);
        assert_string_equal(err.msg, cases[i].msg);
        assert_ptr_equal(s, (weir_schema_t *)&i);
        weir_jobfile_destroy(jf);
    }
}

/* ---- did-you-mean ---------------------------------------------------- */

static void
test_suggest_picks_the_nearest_close_name(void **state)
{
    static const char *const kinds[] = { "datagen", "filter", "map", "file", NULL, "print" };

    assert_string_equal(weir_suggest("fliter", kinds, 6), "filter");
    assert_string_equal(weir_suggest("FILTER", kinds, 6), "filter");      /* case-insensitive */
    assert_string_equal(weir_suggest("datagne", kinds, 6), "datagen");
    assert_string_equal(weir_suggest("prnt", kinds, 6), "print");
    assert_string_equal(weir_suggest("mop", kinds, 6), "map");            /* 1 edit is always close */
    assert_string_equal(weir_suggest("fil", kinds, 6), "file");           /* first of equals wins */
    assert_null(weir_suggest("mxx", kinds, 6));                           /* 2 edits on 3 letters */
    assert_null(weir_suggest("kafka", kinds, 6));
    assert_null(weir_suggest("x", kinds, 0));
    assert_null(weir_suggest("fliter", NULL, 0));
}

/* ---- files ----------------------------------------------------------- */

static void
data_path(char *buf, size_t cap, const char *name)
{
    const char *src = getenv("WEIR_SOURCE_DIR");

    snprintf(buf, cap, "%s/tests/graph/data/%s", src != NULL ? src : ".", name);
}

static void
test_jobfile_load_reads_example_files(void **state)
{
    weir_vars_t vars = { 0 };
    weir_jobfile_t *jf = NULL;
    weir_err_t err;
    char path[1024];
    char *s = NULL;

    data_path(path, sizeof(path), "wordcount.yaml");
    assert_int_equal(weir_jobfile_load(path, NULL, &jf, &err), 0);
    assert_string_equal(jf->name, "word-count");
    assert_int_equal(jf->nnodes, 4);
    assert_string_equal(jf->path, path);
    assert_int_equal(jf->nodes[2].inputs[0].partition, WEIR_PART_HASH);
    assert_string_equal(jf->nodes[2].inputs[0].keys[0], "word");
    weir_jobfile_destroy(jf);

    data_path(path, sizeof(path), "fraud.yaml");
    assert_int_equal(weir_vars_set(&vars, "BROKER", "localhost:9092"), 0);
    assert_int_equal(weir_jobfile_load(path, &vars, &jf, &err), 0);
    assert_string_equal(jf->name, "fraud-detection");
    int join = weir_jobfile_find(jf, "flag");
    assert_true(join >= 0);
    assert_int_equal(jf->nodes[join].ninputs, 2);
    assert_string_equal(jf->nodes[join].inputs[0].alias, "t");
    assert_string_equal(jf->nodes[join].inputs[1].alias, "f");
    assert_int_equal(jf->nodes[join].inputs[1].partition, WEIR_PART_HASH);
    assert_int_equal(weir_params_req_str(&jf->nodes[0].params, "bootstrap_servers", &s, &err), 0);
    assert_string_equal(s, "localhost:9092");
    free(s);
    weir_jobfile_destroy(jf);
    weir_vars_free(&vars);

    data_path(path, sizeof(path), "turbines.yaml");
    assert_int_equal(weir_jobfile_load(path, NULL, &jf, &err), 0);
    assert_string_equal(jf->name, "wind-turbine-alerts");
    weir_schema_t *schema = NULL;
    assert_int_equal(weir_params_schema(&jf->nodes[0].params, "schema", &schema, &err), 0);
    assert_int_equal(schema->nfields, 3);
    weir_schema_unref(schema);
    weir_jobfile_destroy(jf);
}

static void
test_jobfile_load_reports_missing_file(void **state)
{
    weir_jobfile_t *jf = NULL;
    weir_err_t err;

    assert_int_equal(weir_jobfile_load("/nonexistent/job.yaml", NULL, &jf, &err), WEIR_ENOENT);
    assert_string_equal(err.msg, "/nonexistent/job.yaml: cannot open: No such file or directory");
    assert_null(jf);
}

static void
test_jobfile_rejects_nul_bytes_and_huge_texts(void **state)
{
    static const char text[] = "name: t\0x\n";
    weir_jobfile_t *jf = NULL;
    weir_err_t err;

    assert_int_equal(weir_jobfile_parse("job.yaml", text, sizeof(text) - 1, NULL, &jf, &err), WEIR_EPARSE);
    assert_string_equal(err.msg, "job.yaml: the job file contains a NUL byte");
    assert_int_equal(weir_jobfile_parse("job.yaml", text, (size_t)9 << 20, NULL, &jf, &err), WEIR_E2BIG);
    assert_string_equal(err.msg, "job.yaml: the job file is 9437184 bytes, more than the limit of 8388608");
    assert_null(jf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jobfile_full_job_round_trips_into_nodes_and_inputs),
        cmocka_unit_test(test_jobfile_defaults_parallelism_1_and_max_128),
        cmocka_unit_test(test_partition_names),
        cmocka_unit_test(test_jobfile_yaml_syntax_error_is_located),
        cmocka_unit_test(test_jobfile_empty_file_is_an_error),
        cmocka_unit_test(test_jobfile_second_document_is_an_error),
        cmocka_unit_test(test_jobfile_root_must_be_a_mapping),
        cmocka_unit_test(test_jobfile_aliases_are_rejected),
        cmocka_unit_test(test_jobfile_unknown_top_level_key_suggests),
        cmocka_unit_test(test_jobfile_name_is_required),
        cmocka_unit_test(test_jobfile_extra_sections_must_be_mappings),
        cmocka_unit_test(test_jobfile_needs_a_source),
        cmocka_unit_test(test_jobfile_parallelism_must_be_in_range),
        cmocka_unit_test(test_jobfile_parallelism_must_not_exceed_max),
        cmocka_unit_test(test_jobfile_parallelism_may_come_from_a_variable),
        cmocka_unit_test(test_jobfile_sections_must_be_lists_of_mappings),
        cmocka_unit_test(test_jobfile_node_needs_a_well_formed_name),
        cmocka_unit_test(test_jobfile_node_names_are_unique_across_sections),
        cmocka_unit_test(test_jobfile_node_needs_a_kind),
        cmocka_unit_test(test_jobfile_source_must_not_have_inputs),
        cmocka_unit_test(test_jobfile_operator_and_sink_need_inputs),
        cmocka_unit_test(test_jobfile_input_must_name_a_node),
        cmocka_unit_test(test_jobfile_sink_cannot_be_an_input),
        cmocka_unit_test(test_jobfile_input_entries_are_names_or_mappings),
        cmocka_unit_test(test_jobfile_input_aliases_must_differ),
        cmocka_unit_test(test_jobfile_partition_names_are_checked),
        cmocka_unit_test(test_jobfile_partition_values_map_to_enum),
        cmocka_unit_test(test_jobfile_hash_needs_key_by),
        cmocka_unit_test(test_jobfile_key_by_conflicts_with_other_partitions),
        cmocka_unit_test(test_jobfile_key_by_is_a_name_or_short_list),
        cmocka_unit_test(test_jobfile_cycle_is_reported_with_its_path),
        cmocka_unit_test(test_subst_replaces_vars_defaults_and_dollars),
        cmocka_unit_test(test_subst_undefined_variable_is_located_and_explained),
        cmocka_unit_test(test_subst_uses_environment_only_when_asked),
        cmocka_unit_test(test_subst_rejects_malformed_references),
        cmocka_unit_test(test_subst_applies_to_node_names_kinds_and_inputs),
        cmocka_unit_test(test_var_refs_lists_each_name_once_in_order),
        cmocka_unit_test(test_vars_set_replaces_and_free_empties),
        cmocka_unit_test(test_params_strings_and_defaults),
        cmocka_unit_test(test_params_integers),
        cmocka_unit_test(test_params_doubles),
        cmocka_unit_test(test_params_booleans),
        cmocka_unit_test(test_params_durations),
        cmocka_unit_test(test_params_string_lists),
        cmocka_unit_test(test_params_children_items_and_scalars),
        cmocka_unit_test(test_params_check_keys_suggests),
        cmocka_unit_test(test_params_error_and_loc),
        cmocka_unit_test(test_params_error_at_points_inside_the_scalar),
        cmocka_unit_test(test_params_schema_as_list_of_fields),
        cmocka_unit_test(test_params_schema_as_mapping),
        cmocka_unit_test(test_params_schema_errors),
        cmocka_unit_test(test_suggest_picks_the_nearest_close_name),
        cmocka_unit_test(test_jobfile_load_reads_example_files),
        cmocka_unit_test(test_jobfile_when_drops_nodes),
        cmocka_unit_test(test_jobfile_load_reports_missing_file),
        cmocka_unit_test(test_jobfile_rejects_nul_bytes_and_huge_texts),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
