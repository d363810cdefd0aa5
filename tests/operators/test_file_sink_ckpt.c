/* tests/operators/test_file_sink_ckpt.c -- the file sink with checkpoints:
 * rows become visible only when their checkpoint completes, exactly once,
 * also across a crash, a commit that happened before the crash, rescaling
 * and the end of a bounded input. Driven by hand through the operator
 * hooks, as the task runtime calls them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "op_harness.h"

static char dir[256];

static int
rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *f)
{
    (void)sb; (void)flag; (void)f;
    return remove(p);
}

static int
setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "%s/weir-fsck-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    return mkdtemp(dir) == NULL ? -1 : 0;
}

static weir_schema_t *schemas[8];
static int nschemas;

static int
teardown(void **state)
{
    (void)state;
    while (nschemas > 0)
        weir_schema_unref(schemas[--nschemas]);
    nftw(dir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static char yaml[512];

/* Configures and opens a sink of `parallelism` subtasks at `attempt`, in
 * checkpoint mode. */
static void
open_sink(h_op_t *h, int parallelism, int attempt)
{
    memset(h, 0, sizeof(*h));
    snprintf(yaml, sizeof(yaml),
             "name: t\nsources:\n  - {name: src, kind: datagen}\n"
             "sinks:\n  - {name: out, kind: file, input: src, path: \"%s\"}\n", dir);
    assert_true(nschemas < 8);
    schemas[nschemas] = h_schema("id:int,name:string");
    h_configure_ok(h, yaml, "out", WEIR_ROLE_SINK, schemas[nschemas++]);
    for (int s = 0; s < parallelism; s++) {
        h->ctx[s].checkpoint_interval_us = 100000;
        h->ctx[s].exactly_once = true;
        h->ctx[s].attempt = attempt;
    }
    h_open(h, parallelism);
}

static void
rows(h_op_t *h, int s, const char *const *r)
{
    weir_batch_t *b = h_batch(h->cfg.input_schemas[0], r);
    assert_int_equal(h->cfg.kind->process(&h->op[s], 0, b, NULL, &h->err), 0);
    weir_batch_destroy(b);
}

static void
snapshot(h_op_t *h, int s, int64_t ckpt, weir_buf_t *blob)
{
    weir_buf_reset(blob);
    assert_int_equal(h->cfg.kind->snapshot(&h->op[s], ckpt, blob, &h->err), 0);
}

static void
notify(h_op_t *h, int s, int64_t ckpt)
{
    if (h->cfg.kind->notify_complete(&h->op[s], ckpt, &h->err) != 0)
        fail_msg("notify: %s", h->err.msg);
}

/* Visible (committed) lines, sorted and joined with ';'; and how many
 * in-progress files exist. */
static void
visible(char *out, size_t cap, int *inprogress)
{
    char **lines = NULL;
    int n = 0;
    DIR *d = opendir(dir);
    struct dirent *de;

    *inprogress = 0;
    out[0] = '\0';
    while ((de = readdir(d)) != NULL) {
        char path[600], line[256];
        FILE *f;
        if (de->d_name[0] == '.') {
            *inprogress += strstr(de->d_name, ".inprogress") != NULL;
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        f = fopen(path, "r");
        while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
            line[strcspn(line, "\n")] = '\0';
            lines = realloc(lines, sizeof(char *) * (size_t)(n + 1));
            lines[n++] = strdup(line);
        }
        if (f != NULL)
            fclose(f);
    }
    closedir(d);
    if (n > 0)
        qsort(lines, (size_t)n, sizeof(char *), h_cmp_str);
    for (int i = 0; i < n; i++) {
        snprintf(out + strlen(out), cap - strlen(out), "%s%s", i ? ";" : "", lines[i]);
        free(lines[i]);
    }
    free(lines);
}

#define A "1|a"
#define B "2|b"
#define C "3|c"
#define JA "{\"id\":1,\"name\":\"a\"}"
#define JB "{\"id\":2,\"name\":\"b\"}"
#define JC "{\"id\":3,\"name\":\"c\"}"

static void
test_rows_appear_when_their_checkpoint_completes(void **state)
{
    h_op_t h;
    weir_buf_t blob = WEIR_BUF_INIT;
    char v[1024];
    int ip;

    (void)state;
    open_sink(&h, 1, 0);
    rows(&h, 0, (const char *const[]){ A, B, NULL });
    visible(v, sizeof(v), &ip);
    assert_string_equal(v, "");
    assert_int_equal(ip, 1);
    snapshot(&h, 0, 1, &blob);
    rows(&h, 0, (const char *const[]){ C, NULL });          /* after barrier 1 */
    visible(v, sizeof(v), &ip);
    assert_string_equal(v, "");
    notify(&h, 0, 1);
    visible(v, sizeof(v), &ip);
    assert_string_equal(v, JA ";" JB);                       /* not C */
    assert_int_equal(ip, 1);
    snapshot(&h, 0, 2, &blob);
    snapshot(&h, 0, 3, &blob);                               /* nothing new: no file */
    notify(&h, 0, 3);                                        /* implies 2 */
    visible(v, sizeof(v), &ip);
    assert_string_equal(v, JA ";" JB ";" JC);
    assert_int_equal(ip, 0);
    weir_buf_free(&blob);
    h_close(&h);
}

/* A crash after checkpoint 2 completed everywhere but before this sink
 * heard of it: the restore publishes checkpoint 2's file, cut to its
 * recorded size, and drops the rows after it. */
static void
test_restore_publishes_pending_and_drops_the_rest(void **state)
{
    h_op_t h, h2;
    weir_buf_t blob = WEIR_BUF_INIT;
    weir_op_blob_t ob;
    char v[1024];
    int ip;

    (void)state;
    open_sink(&h, 1, 0);
    rows(&h, 0, (const char *const[]){ A, NULL });
    snapshot(&h, 0, 1, &blob);
    notify(&h, 0, 1);
    rows(&h, 0, (const char *const[]){ B, NULL });
    snapshot(&h, 0, 2, &blob);
    rows(&h, 0, (const char *const[]){ C, NULL });          /* belongs to no checkpoint */
    h_close(&h);                                             /* the crash */

    open_sink(&h2, 1, 1);
    ob = (weir_op_blob_t){ .subtask = 0, .data = blob.data, .len = blob.len };
    assert_int_equal(h2.cfg.kind->restore(&h2.op[0], 2, 1, &ob, 1, &h2.err), 0);
    visible(v, sizeof(v), &ip);
    assert_string_equal(v, JA ";" JB);
    assert_int_equal(ip, 0);                                 /* C's file is gone */
    /* the replay writes C again, once */
    rows(&h2, 0, (const char *const[]){ C, NULL });
    snapshot(&h2, 0, 3, &blob);
    notify(&h2, 0, 3);
    visible(v, sizeof(v), &ip);
    assert_string_equal(v, JA ";" JB ";" JC);
    weir_buf_free(&blob);
    h_close(&h2);
}

/* The commit of checkpoint 2 happened just before the crash: restoring
 * checkpoint 2 must not publish it twice. */
static void
test_restore_after_the_commit_is_no_duplicate(void **state)
{
    h_op_t h, h2;
    weir_buf_t blob = WEIR_BUF_INIT;
    weir_op_blob_t ob;
    char v[1024];
    int ip;

    (void)state;
    open_sink(&h, 1, 0);
    rows(&h, 0, (const char *const[]){ A, B, NULL });
    snapshot(&h, 0, 2, &blob);
    notify(&h, 0, 2);
    h_close(&h);
    open_sink(&h2, 1, 1);
    ob = (weir_op_blob_t){ .subtask = 0, .data = blob.data, .len = blob.len };
    assert_int_equal(h2.cfg.kind->restore(&h2.op[0], 2, 1, &ob, 1, &h2.err), 0);
    visible(v, sizeof(v), &ip);
    assert_string_equal(v, JA ";" JB);
    weir_buf_free(&blob);
    h_close(&h2);
}

/* Two old subtasks restored into one: both pending files published. */
static void
test_rescale_two_into_one(void **state)
{
    h_op_t h, h2;
    weir_buf_t b0 = WEIR_BUF_INIT, b1 = WEIR_BUF_INIT;
    weir_op_blob_t ob[2];
    char v[1024];
    int ip;

    (void)state;
    open_sink(&h, 2, 0);
    rows(&h, 0, (const char *const[]){ A, NULL });
    rows(&h, 1, (const char *const[]){ B, NULL });
    snapshot(&h, 0, 1, &b0);
    snapshot(&h, 1, 1, &b1);
    rows(&h, 1, (const char *const[]){ C, NULL });
    h_close(&h);
    open_sink(&h2, 1, 1);
    ob[0] = (weir_op_blob_t){ .subtask = 0, .data = b0.data, .len = b0.len };
    ob[1] = (weir_op_blob_t){ .subtask = 1, .data = b1.data, .len = b1.len };
    assert_int_equal(h2.cfg.kind->restore(&h2.op[0], 1, 2, ob, 2, &h2.err), 0);
    visible(v, sizeof(v), &ip);
    assert_string_equal(v, JA ";" JB);
    assert_int_equal(ip, 0);
    weir_buf_free(&b0);
    weir_buf_free(&b1);
    h_close(&h2);
}

/* The end of a bounded input commits everything. */
static void
test_finish_commits_everything(void **state)
{
    h_op_t h;
    weir_buf_t blob = WEIR_BUF_INIT;
    char v[1024];
    int ip;

    (void)state;
    open_sink(&h, 1, 0);
    rows(&h, 0, (const char *const[]){ A, NULL });
    snapshot(&h, 0, 1, &blob);
    rows(&h, 0, (const char *const[]){ B, NULL });
    assert_int_equal(h.cfg.kind->finish(&h.op[0], NULL, &h.err), 0);
    visible(v, sizeof(v), &ip);
    assert_string_equal(v, JA ";" JB);
    assert_int_equal(ip, 0);
    weir_buf_free(&blob);
    h_close(&h);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rows_appear_when_their_checkpoint_completes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_publishes_pending_and_drops_the_rest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restore_after_the_commit_is_no_duplicate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rescale_two_into_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_finish_commits_everything, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
