/* tests/kafka/kafka_harness.h -- real weir-kafka and weir-gen processes, and a
 * plain librdkafka consumer to read topics back.
 *
 * The tests start the binaries from $WEIR_BUILD_DIR/runtime/kafka with
 * posix_spawn, exactly as a user would run them:
 *
 *   kh_broker_t b;
 *   kh_broker_start(&b, (const char *[]){ "--topic", "tx", NULL });   // reads "bootstrap: ..."
 *   kh_run_t r;
 *   kh_run(&r, (const char *[]){ kh_bin("weir-gen"), "transactions", "--bootstrap",
 *                                b.bootstrap, NULL }, 30000);
 *   kh_topic_t t;
 *   kh_topic_read(b.bootstrap, "tx", 20000, &t);                       // every record, exactly
 *   assert_int_equal(kh_broker_stop(&b), 0);                           // SIGTERM -> exit status
 *
 * Nothing leaks a process: every broker is started with --exit-with-parent
 * (it gets SIGTERM when the test process dies), kh_broker_stop() kills what
 * does not exit within 10 s, kh_run() kills a program that runs past its
 * time limit, and kh_stop_all() (an atexit handler, and the tests' teardown)
 * stops every broker still running.
 *
 * Helpers that cannot do their job fail the running cmocka test with a
 * message (fail_msg); they return only on success.
 */
#ifndef WEIR_TESTS_KAFKA_HARNESS_H
#define WEIR_TESTS_KAFKA_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct {
    pid_t pid;                        /* 0 when not running */
    int   out_fd;                     /* read end of its stdout */
    char  bootstrap[512];             /* "127.0.0.1:PORT[,...]" */
} kh_broker_t;

typedef struct {
    int    status;                    /* exit code, or 128+signal */
    char  *out;                       /* all of stdout, NUL-terminated (owned) */
    size_t out_len;
    char  *err;                       /* all of stderr, NUL-terminated (owned) */
    double seconds;                   /* wall time */
} kh_run_t;

typedef struct {
    int32_t partition;
    int64_t offset;
    char   *key;                      /* NUL-terminated copies (owned) */
    size_t  key_len;
    char   *value;
    size_t  value_len;
} kh_record_t;

typedef struct {
    int          partitions;
    kh_record_t *recs;                /* in partition order, then offset order */
    size_t       n;
} kh_topic_t;

/* "$WEIR_BUILD_DIR/runtime/kafka/<name>"; a static buffer per name. */
const char *kh_bin(const char *name);

/* Starts weir-kafka with the extra arguments (NULL-terminated, may be NULL)
 * and waits up to 10 s for its bootstrap line. */
void kh_broker_start(kh_broker_t *b, const char *const *extra);

/* SIGTERM, then waits up to 10 s (SIGKILL after that). Returns the exit code,
 * or 128+signal when it was killed by one; -1 if it was not running. */
int  kh_broker_stop(kh_broker_t *b);

/* Sends sig and waits like kh_broker_stop. */
int  kh_broker_signal_stop(kh_broker_t *b, int sig);

/* Stops every broker the harness started that is still running. */
void kh_stop_all(void);

/* Runs argv (argv[0] a path) to completion, capturing stdout and stderr;
 * kills it after timeout_ms and fails the test. The caller frees with
 * kh_run_free(). */
void kh_run(kh_run_t *r, const char *const *argv, int timeout_ms);
void kh_run_free(kh_run_t *r);

/* Reads every record of topic, from the beginning of each partition up to the
 * high watermark seen at the start, by assigning all partitions (no group).
 * Fails the test when the topic does not exist or cannot be read within
 * timeout_ms. */
void kh_topic_read(const char *bootstrap, const char *topic, int timeout_ms, kh_topic_t *t);
void kh_topic_free(kh_topic_t *t);

/* The topic's partition count from a Metadata request; if create is true the
 * request allows auto-creation (as producers do). Also the broker count.
 * Returns the partition count, or -1 when the topic does not exist. */
int  kh_topic_partitions(const char *bootstrap, const char *topic, bool create, int *brokers);

/* Low and high watermark of one partition. */
void kh_watermarks(const char *bootstrap, const char *topic, int32_t partition,
                   int64_t *lo, int64_t *hi);

/* A loopback TCP port that is free for n consecutive ports right now. */
int  kh_free_port(int n);

/* Splits text into lines (modifies it); returns the count, *lines owned by
 * the caller (free(*lines) only). */
size_t kh_lines(char *text, char ***lines);

#endif
