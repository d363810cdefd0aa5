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
 *                                b.bootstrap, "--topic", kh_topic(&b, "tx"), NULL }, 30000);
 *   kh_topic_t t;
 *   kh_topic_read(b.bootstrap, kh_topic(&b, "tx"), 20000, &t);        // every record, exactly
 *   assert_int_equal(kh_broker_stop(&b), 0);                           // SIGTERM -> exit status
 *
 * Nothing leaks a process: every broker is started with --exit-with-parent
 * (it gets SIGTERM when the test process dies), kh_broker_stop() kills what
 * does not exit within 10 s, kh_run() kills a program that runs past its
 * time limit, and kh_stop_all() (an atexit handler, and the tests' teardown)
 * stops every broker still running.
 *
 * External mode. When WEIR_TEST_KAFKA_BOOTSTRAP is set (and not empty),
 * kh_broker_start() starts no process: the "broker" is that cluster. The
 * topics named in its --topic arguments (NAME[:PARTITIONS], comma-separated,
 * --partitions N for the rest, default 16, as weir-kafka reads them) are
 * created there with the Admin API (CreateTopics, replication factor
 * $WEIR_TEST_KAFKA_REPLICATION, default 1) under a name of their own,
 * "weirtest-<time>-<pid>-<n>-NAME", n counting the starts of this process,
 * and kh_broker_stop() deletes them (DeleteTopics) instead of signalling a
 * process. So tests must name every topic (and consumer group or
 * transactional id that must not meet another run's) through kh_topic(),
 * which is the identity without the variable: nothing changes for the
 * weir-kafka runs. A broker without CreateTopics (weir-kafka itself: the
 * mock cluster has no admin API) gets its topics auto-created by a Metadata
 * request instead, with the broker's default partition count, said on
 * stderr; kh_partitions() tells the count a topic really has. The variable
 * has a name of its own so that the KAFKA_BOOTSTRAP of a cluster.env does
 * not switch this on by accident.
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

#define KH_MAX_NAMES   32
#define KH_NAME_LEN    250            /* Kafka's topic name limit (249) + NUL */

/* A name a test uses and the name it has on the broker. */
typedef struct {
    char name[96];                    /* as the test says it */
    char mapped[KH_NAME_LEN];         /* on the broker (== name for weir-kafka) */
    int  partitions;                  /* of a topic the harness created, else 0 */
} kh_name_t;

typedef struct {
    pid_t     pid;                    /* 0 when not running (always 0 when external) */
    int       out_fd;                 /* read end of its stdout */
    char      bootstrap[512];         /* "127.0.0.1:PORT[,...]" */
    bool      external;               /* started against WEIR_TEST_KAFKA_BOOTSTRAP */
    bool      up;                     /* external: started, topics not yet deleted */
    char      prefix[64];             /* external: "weirtest-<time>-<pid>-<n>-" */
    int       nnames;
    kh_name_t names[KH_MAX_NAMES];
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

/* True when WEIR_TEST_KAFKA_BOOTSTRAP is set and not empty: the tests run
 * against that cluster (see the top of this file). */
bool kh_external(void);

/* Skips the running test in external mode, saying why (a case that tests
 * weir-kafka itself or needs what only the mock does). A macro, so that
 * cmocka reports the test's own line. */
#define KH_SKIP_IF_EXTERNAL(why)                                                    \
    do {                                                                            \
        if (kh_external()) {                                                        \
            print_message("skipped against an external Kafka cluster "              \
                          "(WEIR_TEST_KAFKA_BOOTSTRAP): %s\n", (why));              \
            skip();                                                                 \
        }                                                                           \
    } while (0)

/* Starts weir-kafka with the extra arguments (NULL-terminated, may be NULL)
 * and waits up to 10 s for its bootstrap line. External mode: creates the
 * --topic topics on WEIR_TEST_KAFKA_BOOTSTRAP instead and waits until the
 * cluster's metadata shows every partition with a leader. */
void kh_broker_start(kh_broker_t *b, const char *const *extra);

/* SIGTERM, then waits up to 10 s (SIGKILL after that). Returns the exit code,
 * or 128+signal when it was killed by one; -1 if it was not running.
 * External mode: deletes the topics of this start (a deletion the cluster
 * refuses is said on stderr, not failed) and returns 0. */
int  kh_broker_stop(kh_broker_t *b);

/* Sends sig and waits like kh_broker_stop (external: as kh_broker_stop). */
int  kh_broker_signal_stop(kh_broker_t *b, int sig);

/* The name `name` (a topic, or a consumer group or transactional id of the
 * test) has on b: name itself with weir-kafka, b's prefix + name in external
 * mode. The string lives as long as b (until the next kh_broker_start). */
const char *kh_topic(kh_broker_t *b, const char *name);

/* The partition count of a topic named in b's --topic arguments: as asked
 * for with weir-kafka; in external mode what the cluster reports after
 * creating it (the broker's default when it could only auto-create it). */
int  kh_partitions(const kh_broker_t *b, const char *name);

/* Stops every broker the harness started that is still running. */
void kh_stop_all(void);

/* Runs argv (argv[0] a path) to completion, capturing stdout and stderr;
 * kills it after timeout_ms and fails the test. The caller frees with
 * kh_run_free(). */
void kh_run(kh_run_t *r, const char *const *argv, int timeout_ms);
void kh_run_free(kh_run_t *r);

/* Reads every record of topic, from the beginning of each partition up to the
 * end offset seen at the start, by assigning all partitions (no group), with
 * isolation.level=read_committed: records of aborted or still open
 * transactions are not read (on weir-kafka this changes nothing: the mock
 * ignores the isolation level) and the end is the last stable offset. A
 * partition is done at its end offset or at the end-of-partition event
 * there, so transaction markers, which take offsets but are no records, do
 * not keep it waiting. Fails the test when the topic does not exist or
 * cannot be read within timeout_ms. */
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
