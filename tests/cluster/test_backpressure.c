/* tests/cluster/test_backpressure.c -- a slow sink slows its sources.
 *
 * An unbounded datagen with no rate limit feeds a file sink whose file is a
 * FIFO that this test reads, slowly. The source runs at parallelism 3 and the
 * sink at 1, so they are separate tasks joined by a rebalance edge, and the
 * job's three slots span both task managers (2 slots each): some source
 * subtasks share the sink's task manager (in-memory channels), at least one
 * sends over TCP (credit-based channel). Nothing may be dropped and nothing
 * may grow without bound:
 *
 * - while the test reads 16 KiB every 100 ms for 5 s, the generator could
 *   produce hundreds of megabytes; the task managers' resident memory must
 *   stay below MAX_RSS_KB, and the job keeps RUNNING;
 * - then the test reads as fast as it can for a second and must get much
 *   more than it did per second while slow: the pipeline was throttled, not
 *   stuck;
 * - every line read is one complete JSON row, and nothing is lost or
 *   repeated: datagen subtask s of 3 makes the ids i with i % 3 == s, in
 *   order, and each channel keeps its order, so the ids of each subtask
 *   must arrive as s, s + 3, s + 6, ... without a gap;
 * - cancel reaches CANCELED (the test keeps draining the FIFO meanwhile).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define SLOW_CHUNK    (16 * 1024)
#define SLOW_EVERY_MS 100
#define SLOW_FOR_MS   5000
#define FAST_FOR_MS   1000
#define MAX_RSS_KB    (300L * 1024)
#define SOURCES       3             /* the datagen's parallelism */

static const char job_yaml[] =
    "name: firehose\n"
    "parallelism: 3\n"
    "sources:\n"
    "  - name: gen\n"
    "    kind: datagen\n"
    "    fields:\n"
    "      - {name: id, type: int, gen: sequence, start: 0}\n"
    "      - {name: key, type: string, gen: choice, values: [alpha, beta, gamma, delta]}\n"
    "      - {name: amount, type: int, gen: random, min: 0, max: 1000000}\n"
    "sinks:\n"
    "  - {name: out, kind: file, input: gen, parallelism: 1, path: \"${OUT}\"}\n";

typedef struct {
    int       fd;
    char     *line;          /* the incomplete last line */
    size_t    line_len, line_cap;
    long      bytes;
    long      rows;
    long long next_id[SOURCES]; /* the id expected next from each source subtask */
} reader_t;

/* Checks one complete line: a JSON object whose id is the next one of its
 * source subtask. */
static void
check_line(reader_t *r, const char *line, size_t len)
{
    json_t *row = json_loadb(line, len, 0, NULL);
    json_t *id = json_object_get(row, "id");
    long long v;

    if (row == NULL || !json_is_integer(id))
        fail_msg("sink wrote a broken row: %.*s", (int)len, line);
    v = json_integer_value(id);
    if (v < 0 || v != r->next_id[v % SOURCES])
        fail_msg("row %ld: id %lld, but the next id from its source is %lld",
                 r->rows, v, r->next_id[v < 0 ? 0 : v % SOURCES]);
    r->next_id[v % SOURCES] += SOURCES;
    json_decref(row);
}

/* Reads up to max bytes without blocking; returns the count (0 when the
 * FIFO is empty). */
static long
read_some(reader_t *r, long max)
{
    char buf[16 * 1024];
    long total = 0;

    while (total < max) {
        size_t want = sizeof(buf) < (size_t)(max - total) ? sizeof(buf) : (size_t)(max - total);
        ssize_t got = read(r->fd, buf, want);

        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && errno == EAGAIN)
            break;
        if (got < 0)
            fail_msg("read fifo: %s", strerror(errno));
        if (got == 0)
            break;                                /* no writer (yet) */
        for (ssize_t i = 0; i < got; i++) {
            if (buf[i] == '\n') {
                check_line(r, r->line, r->line_len);
                r->line_len = 0;
                r->rows++;
                continue;
            }
            if (r->line_len == r->line_cap) {
                r->line_cap = r->line_cap ? r->line_cap * 2 : 256;
                r->line = realloc(r->line, r->line_cap);
                assert_non_null(r->line);
            }
            r->line[r->line_len++] = buf[i];
        }
        total += got;
    }
    r->bytes += total;
    return total;
}

static long
max_tm_rss(hc_cluster_t *c)
{
    long max = 0;

    for (int i = 0; i < c->ntms; i++) {
        long kb = hc_rss_kb(c->tms[i].pid);

        if (kb > max)
            max = kb;
    }
    return max;
}

static void
test_slow_sink_throttles_unbounded_source_with_bounded_memory(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    char dir[PATH_MAX], fifo[PATH_MAX], jid[HC_JOB_ID_LEN + 1];
    reader_t r = { .fd = -1, .next_id = { 0, 1, 2 } };
    long peak_rss = 0, slow_bytes, fast_bytes;
    long long start, end;
    json_t *job;

    snprintf(dir, sizeof(dir), "%s/sink", c->dir);
    snprintf(fifo, sizeof(fifo), "%s/part-0.jsonl", dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    /* open our end first, so the sink's open does not block */
    r.fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    assert_true(r.fd >= 0);

    hc_submit_ok(c, job_yaml, (const char *const[]){ "OUT", dir, NULL }, jid);
    json_decref(hc_wait_subtasks(c, jid, "RUNNING", 30000));

    /* slow phase */
    start = hc_now_ms();
    while (hc_now_ms() - start < SLOW_FOR_MS) {
        long rss;

        read_some(&r, SLOW_CHUNK);
        rss = max_tm_rss(c);
        if (rss > peak_rss)
            peak_rss = rss;
        if (rss > MAX_RSS_KB)
            fail_msg("a task manager grew to %ld KiB while the sink was slow", rss);
        hc_sleep_ms(SLOW_EVERY_MS);
    }
    slow_bytes = r.bytes;
    job = hc_job(c, jid);
    assert_string_equal(hc_job_state(job), "RUNNING");
    json_decref(job);

    /* fast phase: the throttled pipeline speeds up when the sink does */
    start = hc_now_ms();
    while ((end = hc_now_ms()) - start < FAST_FOR_MS) {
        struct pollfd p = { .fd = r.fd, .events = POLLIN };

        if (poll(&p, 1, 10) > 0)
            read_some(&r, 1L << 20);
    }
    fast_bytes = r.bytes - slow_bytes;
    fprintf(stderr, "slow: %ld bytes in %d ms; fast: %ld bytes in %lld ms; %ld rows; "
            "peak task manager RSS %ld KiB\n",
            slow_bytes, SLOW_FOR_MS, fast_bytes, end - start, r.rows, peak_rss);
    assert_true(slow_bytes > 0);
    /* the slow reader got at most its reads' worth */
    assert_true(slow_bytes <= (long)SLOW_CHUNK * (SLOW_FOR_MS / SLOW_EVERY_MS + 1));
    /* the fast reader got more in one second than the slow one in two */
    assert_true(fast_bytes > 2 * (slow_bytes * 1000 / SLOW_FOR_MS));
    assert_true(max_tm_rss(c) < MAX_RSS_KB);

    /* cancel, draining the FIFO so a sink blocked in write() can notice */
    assert_int_equal(hc_cancel(c, jid), 202);
    start = hc_now_ms();
    for (;;) {
        job = hc_job(c, jid);
        if (strcmp(hc_job_state(job), "CANCELED") == 0)
            break;
        if (hc_now_ms() - start > 15000)
            fail_msg("job is %s 15 s after cancel", hc_job_state(job));
        json_decref(job);
        read_some(&r, 1L << 20);
        hc_sleep_ms(20);
    }
    json_decref(job);
    close(r.fd);
    free(r.line);
    assert_int_equal(hc_overview_int(c, "slots-available"), 4);
    hc_stop(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_slow_sink_throttles_unbounded_source_with_bounded_memory,
                                  hc_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
