/* tests/operators/test_file_io.c -- the file source, the file sink, print.
 *
 * The file sink must write exactly one JSON line per row into
 * <path>/part-<subtask>.jsonl (creating the directories), and fail with the
 * file's name when the disk says no. The file source must hand every line
 * of a file to exactly one of its subtasks, skip and count the lines that do
 * not parse without stopping, and cope with lines that straddle its read
 * buffer or outgrow it. What the sink writes, the source reads back as the
 * same rows. print writes "<prefix> {json}" lines and honours its limit.
 * Written JSON is checked with jansson, an independent parser.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <sys/stat.h>
#include <unistd.h>

#include "op_harness.h"
#include "runtime/core/json_row.h"

static char tmpdir[256];

static int
rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int
setup(void **unused)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/weir-test-fileio-XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int
teardown(void **unused)
{
    return nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Whole file as a new NUL-terminated string; *len its length. */
static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        fail_msg("cannot open %s: %s", path, strerror(errno));
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    n = ftell(f);
    rewind(f);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    if (len != NULL)
        *len = (size_t)n;
    return buf;
}

static void
spit(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static weir_schema_t *
rows_schema(void)
{
    return h_schema("id:int, name:string?, amount:double, ts:timestamp");
}

static const char *const batch_a[] = {
    "1|alice|10.5|2024-01-01 00:00:00",
    "2|null|0.25|2024-01-01 00:00:01.500000",
    "3|quote \" and \\ back|-3|2024-02-29 23:59:59",
    NULL,
};
static const char *const batch_b[] = {
    "4|bob|1e+20|1970-01-01 00:00:00",
    NULL,
};

/* The lines the sink must write for rows: weir_json_write_row + "\n". */
static void
expected_lines(weir_schema_t *s, const char *const *rows, weir_buf_t *out)
{
    weir_batch_t *b = h_batch(s, rows);

    for (int r = 0; r < b->nrows; r++) {
        assert_int_equal(weir_json_write_row(s, weir_batch_row(b, r), out), 0);
        assert_int_equal(weir_buf_putc(out, '\n'), 0);
    }
    weir_batch_destroy(b);
}

static void
sink_yaml(char *yaml, size_t cap, const char *kind, const char *path)
{
    snprintf(yaml, cap,
             "name: t\n"
             "sources:\n"
             "  - name: src\n"
             "    kind: datagen\n"
             "    fields: [{name: id, type: int}]\n"
             "sinks:\n"
             "  - name: out\n"
             "    kind: %s\n"
             "    input: src\n"
             "%s%s%s",
             kind, path ? "    path: " : "", path ? path : "", path ? "\n" : "");
}

static void
test_file_sink_writes_exactly_the_lines(void **unused)
{
    char yaml[1024], dir[512], file[600];
    weir_schema_t *s = rows_schema();
    weir_batch_t *a = h_batch(s, batch_a), *b = h_batch(s, batch_b);
    weir_buf_t want0 = WEIR_BUF_INIT, want1 = WEIR_BUF_INIT;
    char *got;
    size_t len;
    h_op_t h;

    snprintf(dir, sizeof(dir), "%s/nested/dirs/out", tmpdir);
    sink_yaml(yaml, sizeof(yaml), "file", dir);
    h_configure_ok(&h, yaml, "out", WEIR_ROLE_SINK, s);
    assert_ptr_equal(h.cfg.kind, &weir_op_file_sink);
    assert_null(h.cfg.output_schema);
    h_open(&h, 2);
    assert_int_equal(h_process(&h, 0, a, NULL), 0);
    assert_int_equal(h_process(&h, 0, b, NULL), 0);
    assert_int_equal(h_process(&h, 1, b, NULL), 0);
    assert_int_equal(h_finish(&h, 0, NULL), 0);
    assert_int_equal(h_finish(&h, 1, NULL), 0);
    h_close(&h);

    expected_lines(s, batch_a, &want0);
    expected_lines(s, batch_b, &want0);
    expected_lines(s, batch_b, &want1);
    snprintf(file, sizeof(file), "%s/part-0.jsonl", dir);
    got = slurp(file, &len);
    assert_int_equal(len, want0.len);
    assert_memory_equal(got, want0.data, len);

    /* and the lines mean what they should, to an independent parser */
    json_error_t jerr;
    char *line = got, *nl;
    int n = 0;
    while ((nl = strchr(line, '\n')) != NULL) {
        json_t *o = json_loadb(line, (size_t)(nl - line), 0, &jerr);
        if (o == NULL)
            fail_msg("line %d is not JSON: %s", n + 1, jerr.text);
        assert_true(json_is_object(o));
        assert_int_equal(json_integer_value(json_object_get(o, "id")), n + 1);
        if (n == 0)
            assert_string_equal(json_string_value(json_object_get(o, "name")), "alice");
        if (n == 1)
            assert_true(json_object_get(o, "name") == NULL || json_is_null(json_object_get(o, "name")));
        if (n == 2)
            assert_string_equal(json_string_value(json_object_get(o, "name")), "quote \" and \\ back");
        json_decref(o);
        line = nl + 1;
        n++;
    }
    assert_int_equal(n, 4);
    assert_string_equal(line, "");
    free(got);

    snprintf(file, sizeof(file), "%s/part-1.jsonl", dir);
    got = slurp(file, &len);
    assert_int_equal(len, want1.len);
    assert_memory_equal(got, want1.data, len);
    free(got);

    /* opening again truncates: a rerun does not append to old output */
    h_configure_ok(&h, yaml, "out", WEIR_ROLE_SINK, s);
    h_open(&h, 1);
    assert_int_equal(h_finish(&h, 0, NULL), 0);
    h_close(&h);
    snprintf(file, sizeof(file), "%s/part-0.jsonl", dir);
    got = slurp(file, &len);
    assert_int_equal(len, 0);
    free(got);

    weir_buf_free(&want0);
    weir_buf_free(&want1);
    weir_batch_destroy(a);
    weir_batch_destroy(b);
    weir_schema_unref(s);
}

static void
test_file_sink_errors_name_the_file(void **unused)
{
    char yaml[1024], path[512], target[600];
    weir_schema_t *s = rows_schema();
    weir_batch_t *a = h_batch(s, batch_a);
    h_op_t h;
    int rc;

    /* a directory under a regular file cannot be made */
    snprintf(path, sizeof(path), "%s/plain", tmpdir);
    spit(path, "x", 1);
    snprintf(path, sizeof(path), "%s/plain/out", tmpdir);
    sink_yaml(yaml, sizeof(yaml), "file", path);
    h_configure_ok(&h, yaml, "out", WEIR_ROLE_SINK, s);
    h.ctx[0] = (weir_op_ctx_t){ .log_prefix = "[p]", .subtask = 0, .parallelism = 1 };
    h.op[0] = (weir_op_t){ .cfg = &h.cfg, .ctx = &h.ctx[0] };
    rc = h.cfg.kind->open(&h.op[0], &h.err);
    assert_int_equal(rc, WEIR_EIO);
    assert_non_null(strstr(h.err.msg, path));
    assert_non_null(strstr(h.err.msg, strerror(ENOTDIR)));
    h_close(&h);

    /* a full disk: part-0.jsonl is /dev/full */
    if (access("/dev/full", W_OK) != 0) {
        weir_batch_destroy(a);
        weir_schema_unref(s);
        skip();
    }
    snprintf(path, sizeof(path), "%s/full", tmpdir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(target, sizeof(target), "%s/part-0.jsonl", path);
    assert_int_equal(symlink("/dev/full", target), 0);
    sink_yaml(yaml, sizeof(yaml), "file", path);
    h_configure_ok(&h, yaml, "out", WEIR_ROLE_SINK, s);
    h_open(&h, 1);
    rc = h_process(&h, 0, a, NULL);
    assert_int_equal(rc, WEIR_EIO);
    assert_non_null(strstr(h.err.msg, target));
    assert_non_null(strstr(h.err.msg, strerror(ENOSPC)));
    h_close(&h);
    weir_batch_destroy(a);
    weir_schema_unref(s);
}

static void
source_yaml(char *yaml, size_t cap, const char *path, const char *schema)
{
    snprintf(yaml, cap,
             "name: t\n"
             "sources:\n"
             "  - name: in\n"
             "    kind: file\n"
             "    path: %s\n"
             "    format: json\n"
             "    schema: %s\n",
             path, schema);
}

static void
test_file_source_reads_each_line_once_and_skips_bad_ones(void **unused)
{
    char yaml[1024], path[512];
    weir_buf_t text = WEIR_BUF_INIT;
    h_rows_t rows = { 0 };
    uint64_t bad = 0;
    int good = 0, nbad = 0;
    h_op_t h;

    for (int i = 0; i < 100; i++) {
        switch (i % 10) {
        case 3:  weir_buf_appendf(&text, "\n"); break;                     /* blank */
        case 5:  weir_buf_appendf(&text, "{\"id\": \"x%d\"}\n", i); nbad++; break;
        case 7:  weir_buf_appendf(&text, "not json %d\n", i); nbad++; break;
        case 8:  weir_buf_appendf(&text, "{\"id\": %d, \"name\": \"r%d\"}\r\n", i, i); good++; break;
        case 9:  weir_buf_appendf(&text, "{\"name\": \"no id\"}\n"); nbad++; break;
        default: weir_buf_appendf(&text, "  {\"id\": %d, \"name\": \"r%d\", \"extra\": [1]}\n", i, i); good++;
        }
    }
    weir_buf_appendf(&text, "{\"id\": 1000}");                          /* no newline */
    good++;
    snprintf(path, sizeof(path), "%s/in.jsonl", tmpdir);
    spit(path, text.data, text.len);
    source_yaml(yaml, sizeof(yaml), path, "{id: int, name: string?}");

    h_configure_ok(&h, yaml, "in", WEIR_ROLE_SOURCE, NULL);
    assert_int_equal(h.cfg.output_schema->nfields, 2);
    h_open(&h, 3);
    for (int s = 0; s < 3; s++) {
        int before = rows.n;
        h_poll_all(&h, s, 4, &rows);
        /* subtask s got lines whose 0-based number is s mod 3 */
        for (int i = before; i < rows.n; i++) {
            int id = atoi(rows.rows[i]);
            assert_int_equal(id % 3, s);
        }
        bad += weir_op_file_source_bad_lines(&h.op[s]);
    }
    h_close(&h);
    assert_int_equal(rows.n, good);
    assert_int_equal(bad, (uint64_t)nbad);

    /* exactly the good lines, once each */
    h_rows_sort(&rows);
    h_rows_t want = { 0 };
    for (int i = 0; i < 100; i++) {
        char *r;
        if (i % 10 == 3 || i % 10 == 5 || i % 10 == 7 || i % 10 == 9)
            continue;
        assert_true(asprintf(&r, "%d|r%d", i, i) > 0);
        h_rows_add(&want, r);
    }
    h_rows_add(&want, strdup("1000|null"));
    h_rows_sort(&want);
    h_rows_add(&want, NULL);
    h_rows_expect(&rows, (const char *const *)want.rows);
    h_rows_free(&want);
    h_rows_free(&rows);
    weir_buf_free(&text);
}

static void
test_file_source_lines_straddle_and_outgrow_the_buffer(void **unused)
{
    char yaml[1024], path[512];
    weir_buf_t text = WEIR_BUF_INIT;
    h_rows_t rows = { 0 };
    size_t big = 3u << 20;
    char *long_name = malloc(big + 1);
    int64_t sum = 0, want_sum = 0;
    h_op_t h;

    assert_non_null(long_name);
    memset(long_name, 'z', big);
    long_name[big] = '\0';
    for (int i = 0; i < 40000; i++) {
        if (i == 20001) {
            weir_buf_appendf(&text, "{\"id\": %d, \"name\": \"%s\"}\n", i, long_name);
        } else {
            weir_buf_appendf(&text, "{\"id\": %d, \"name\": \"padding padding padding %06d\"}\n", i, i);
        }
        want_sum += i;
    }
    snprintf(path, sizeof(path), "%s/big.jsonl", tmpdir);
    spit(path, text.data, text.len);
    source_yaml(yaml, sizeof(yaml), path, "{id: int, name: string}");
    h_configure_ok(&h, yaml, "in", WEIR_ROLE_SOURCE, NULL);
    h_open(&h, 2);
    h_poll_all(&h, 0, 1024, &rows);
    h_poll_all(&h, 1, 333, &rows);
    assert_int_equal(weir_op_file_source_bad_lines(&h.op[0]), 0);
    assert_int_equal(weir_op_file_source_bad_lines(&h.op[1]), 0);
    h_close(&h);
    assert_int_equal(rows.n, 40000);
    for (int i = 0; i < rows.n; i++) {
        char *bar = strchr(rows.rows[i], '|');
        int id = atoi(rows.rows[i]);
        sum += id;
        if (id == 20001)
            assert_int_equal(strlen(bar + 1), big);
        else
            assert_int_equal(strlen(bar + 1), 30);
    }
    assert_int_equal(sum, want_sum);
    h_rows_free(&rows);
    weir_buf_free(&text);
    free(long_name);
}

static void
test_file_source_skips_lines_over_max_line_bytes(void **unused)
{
    static const char *const want[] = { "1", "3", "4", "5", NULL };
    char yaml[1024], path[512], pad[300];
    weir_buf_t text = WEIR_BUF_INIT;
    h_rows_t rows = { 0 };
    h_op_t h;

    memset(pad, ' ', sizeof(pad) - 1);
    pad[sizeof(pad) - 1] = '\0';
    weir_buf_appendf(&text, "{\"id\": 1}\n");
    weir_buf_appendf(&text, "{\"id\": 2,%s\"x\": 0}\n", pad);      /* too long */
    weir_buf_appendf(&text, "{\"id\": 3}\n");
    weir_buf_appendf(&text, "{\"id\": 4%.*s}\n", 40 - 9, pad);      /* exactly 40 bytes */
    weir_buf_appendf(&text, "{\"id\": 5}\n");
    weir_buf_appendf(&text, "{\"id\": 6%s}", pad);                   /* too long, last */
    snprintf(path, sizeof(path), "%s/long.jsonl", tmpdir);
    spit(path, text.data, text.len);
    snprintf(yaml, sizeof(yaml),
             "name: t\nsources:\n  - name: in\n    kind: file\n    path: %s\n"
             "    max_line_bytes: 40\n    schema: {id: int}\n", path);
    h_configure_ok(&h, yaml, "in", WEIR_ROLE_SOURCE, NULL);
    h_open(&h, 1);
    h_poll_all(&h, 0, 2, &rows);
    assert_int_equal(weir_op_file_source_bad_lines(&h.op[0]), 2);
    h_close(&h);
    h_rows_expect(&rows, want);
    h_rows_free(&rows);
    weir_buf_free(&text);
}

static void
test_file_source_missing_file_fails_open_naming_it(void **unused)
{
    char yaml[1024], path[512];
    h_op_t h;

    snprintf(path, sizeof(path), "%s/does-not-exist.jsonl", tmpdir);
    source_yaml(yaml, sizeof(yaml), path, "{id: int}");
    h_configure_ok(&h, yaml, "in", WEIR_ROLE_SOURCE, NULL);
    h.ctx[0] = (weir_op_ctx_t){ .log_prefix = "[p]", .subtask = 0, .parallelism = 1 };
    h.op[0] = (weir_op_t){ .cfg = &h.cfg, .ctx = &h.ctx[0] };
    assert_int_equal(h.cfg.kind->open(&h.op[0], &h.err), WEIR_EIO);
    assert_non_null(strstr(h.err.msg, path));
    assert_non_null(strstr(h.err.msg, strerror(ENOENT)));
    h_close(&h);

    /* format other than json is a located configuration error */
    snprintf(yaml, sizeof(yaml),
             "name: t\nsources:\n  - name: in\n    kind: file\n    path: x\n"
             "    format: avro\n    schema: {id: int}\n");
    assert_int_not_equal(h_configure(&h, yaml, "in", WEIR_ROLE_SOURCE, NULL), 0);
    h_expect_error_at(&h.err, yaml, "avro", "unsupported format 'avro'");
    h_close(&h);
}

static void
test_file_sink_then_source_round_trip(void **unused)
{
    char yaml[1024], dir[512], file[600];
    weir_schema_t *s = rows_schema();
    weir_batch_t *a = h_batch(s, batch_a), *b = h_batch(s, batch_b);
    h_rows_t want = { 0 }, got = { 0 };
    h_op_t h;

    snprintf(dir, sizeof(dir), "%s/rt", tmpdir);
    sink_yaml(yaml, sizeof(yaml), "file", dir);
    h_configure_ok(&h, yaml, "out", WEIR_ROLE_SINK, s);
    h_open(&h, 1);
    assert_int_equal(h_process(&h, 0, a, NULL), 0);
    assert_int_equal(h_process(&h, 0, b, NULL), 0);
    assert_int_equal(h_finish(&h, 0, NULL), 0);
    h_close(&h);

    snprintf(file, sizeof(file), "%s/part-0.jsonl", dir);
    source_yaml(yaml, sizeof(yaml), file,
                "{id: int, name: string?, amount: double, ts: timestamp}");
    h_configure_ok(&h, yaml, "in", WEIR_ROLE_SOURCE, NULL);
    assert_true(weir_schema_equal(h.cfg.output_schema, s));
    h_open(&h, 1);
    h_poll_all(&h, 0, 16, &got);
    h_close(&h);
    h_rows_add_batch(&want, a);
    h_rows_add_batch(&want, b);
    h_rows_add(&want, NULL);
    h_rows_expect(&got, (const char *const *)want.rows);
    h_rows_free(&want);
    h_rows_free(&got);
    weir_batch_destroy(a);
    weir_batch_destroy(b);
    weir_schema_unref(s);
}

static void
test_print_sink_writes_prefixed_lines_up_to_its_limit(void **unused)
{
    char yaml[1024], path[512];
    weir_schema_t *s = rows_schema();
    weir_batch_t *a = h_batch(s, batch_a), *b = h_batch(s, batch_b), *two;
    weir_buf_t want = WEIR_BUF_INIT;
    char *got;
    size_t len;
    int saved, fd;
    h_op_t h;

    snprintf(yaml, sizeof(yaml),
             "name: t\nsources:\n  - name: src\n    kind: datagen\n"
             "    fields: [{name: id, type: int}]\n"
             "sinks:\n  - name: show\n    kind: print\n    input: src\n    limit: 4\n");
    h_configure_ok(&h, yaml, "show", WEIR_ROLE_SINK, s);
    h_open(&h, 1);

    snprintf(path, sizeof(path), "%s/stdout.txt", tmpdir);
    fflush(stdout);
    saved = dup(1);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 1);
    close(fd);
    int rc1 = h_process(&h, 0, a, NULL);
    int rc2 = h_process(&h, 0, a, NULL);      /* only one more row fits */
    int rc3 = h_process(&h, 0, b, NULL);
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    assert_int_equal(rc1, 0);
    assert_int_equal(rc2, 0);
    assert_int_equal(rc3, 0);
    h_close(&h);

    two = h_batch(s, batch_a);
    for (int r = 0; r < 4; r++) {
        weir_buf_appendf(&want, "[job:test vertex:show#1/1] ");
        assert_int_equal(weir_json_write_row(s, weir_batch_row(two, r % 3), &want), 0);
        weir_buf_putc(&want, '\n');
    }
    got = slurp(path, &len);
    assert_int_equal(len, want.len);
    assert_memory_equal(got, want.data, len);
    free(got);
    weir_buf_free(&want);
    weir_batch_destroy(two);
    weir_batch_destroy(a);
    weir_batch_destroy(b);
    weir_schema_unref(s);
}

static void
test_file_kinds_are_found_by_role(void **unused)
{
    assert_ptr_equal(weir_op_kind_find_role("file", WEIR_ROLE_SOURCE), &weir_op_file_source);
    assert_ptr_equal(weir_op_kind_find_role("file", WEIR_ROLE_SINK), &weir_op_file_sink);
    assert_null(weir_op_kind_find_role("file", WEIR_ROLE_OPERATOR));
    assert_null(weir_op_kind_find_role("print", WEIR_ROLE_SOURCE));
    assert_ptr_equal(weir_op_kind_find("file"), &weir_op_file_source);
    assert_ptr_equal(weir_op_kind_find("count"), &weir_op_count);
    assert_null(weir_op_kind_find("nope"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file_sink_writes_exactly_the_lines),
        cmocka_unit_test(test_file_sink_errors_name_the_file),
        cmocka_unit_test(test_file_source_reads_each_line_once_and_skips_bad_ones),
        cmocka_unit_test(test_file_source_lines_straddle_and_outgrow_the_buffer),
        cmocka_unit_test(test_file_source_skips_lines_over_max_line_bytes),
        cmocka_unit_test(test_file_source_missing_file_fails_open_naming_it),
        cmocka_unit_test(test_file_sink_then_source_round_trip),
        cmocka_unit_test(test_print_sink_writes_prefixed_lines_up_to_its_limit),
        cmocka_unit_test(test_file_kinds_are_found_by_role),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
