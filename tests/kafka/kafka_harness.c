/* tests/kafka/kafka_harness.c -- see kafka_harness.h.
 *
 * Two kinds of broker: a weir-kafka process (the default), or, in external
 * mode, a real cluster named by WEIR_TEST_KAFKA_BOOTSTRAP, on which each
 * kh_broker_start() creates its topics under a prefix of its own and each
 * kh_broker_stop() deletes every topic with that prefix (so also one a test
 * made a producer auto-create through kh_topic()). Both keep the names of
 * the --topic arguments with their partition counts, for kh_partitions().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "kafka_harness.h"

extern char **environ;

#define STOP_MS       10000
#define START_MS      10000
#define MAX_BROKERS   16
#define ADMIN_MS      30000           /* CreateTopics/DeleteTopics, and the wait for leaders */
#define DEFAULT_PARTITIONS 16         /* weir-kafka's --partitions default */
#define EXTERNAL_ENV  "WEIR_TEST_KAFKA_BOOTSTRAP"
#define REPLICATION_ENV "WEIR_TEST_KAFKA_REPLICATION"

static kh_broker_t *running[MAX_BROKERS];
static int atexit_set;

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const char *
kh_bin(const char *name)
{
    static char paths[4][PATH_MAX];
    static char names[4][64];
    const char *dir = getenv("WEIR_BUILD_DIR");

    if (dir == NULL)
        fail_msg("WEIR_BUILD_DIR is not set (run the tests with meson test)");
    for (int i = 0; i < 4; i++) {
        if (names[i][0] == '\0' || strcmp(names[i], name) == 0) {
            snprintf(names[i], sizeof(names[i]), "%s", name);
            snprintf(paths[i], sizeof(paths[i]), "%s/runtime/kafka/%s", dir, name);
            return paths[i];
        }
    }
    fail_msg("kh_bin: too many binaries");
    return NULL;
}

/* ---- processes ----------------------------------------------------------- */

static void
track(kh_broker_t *b)
{
    for (int i = 0; i < MAX_BROKERS; i++)
        if (running[i] == NULL) {
            running[i] = b;
            return;
        }
    fail_msg("more than %d brokers at once", MAX_BROKERS);
}

static void
untrack(kh_broker_t *b)
{
    for (int i = 0; i < MAX_BROKERS; i++)
        if (running[i] == b)
            running[i] = NULL;
}

static int
status_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return -1;
}

/* Waits up to ms for pid; kills it after that. Returns its status code. */
static int
wait_or_kill(pid_t pid, int ms, bool *killed)
{
    double deadline = now_s() + ms / 1000.0;
    int status;

    *killed = false;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);

        if (r == pid)
            return status_code(status);
        if (r < 0 && errno != EINTR)
            return -1;
        if (now_s() > deadline)
            break;
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    *killed = true;
    return status_code(status);
}

static void external_delete_topics(kh_broker_t *b);

void
kh_stop_all(void)
{
    for (int i = 0; i < MAX_BROKERS; i++) {
        kh_broker_t *b = running[i];
        bool killed;

        if (b == NULL)
            continue;
        running[i] = NULL;
        if (b->external) {
            if (b->up)
                external_delete_topics(b);
            b->up = false;
            continue;
        }
        if (b->pid > 0) {
            kill(b->pid, SIGTERM);
            wait_or_kill(b->pid, STOP_MS, &killed);
            b->pid = 0;
        }
        if (b->out_fd >= 0)
            close(b->out_fd);
        b->out_fd = -1;
    }
}

bool
kh_external(void)
{
    const char *e = getenv(EXTERNAL_ENV);

    return e != NULL && *e != '\0';
}

/* ---- names ----------------------------------------------------------------- */

static kh_name_t *
name_find(kh_broker_t *b, const char *name, size_t len)
{
    for (int i = 0; i < b->nnames; i++)
        if (strlen(b->names[i].name) == len && memcmp(b->names[i].name, name, len) == 0)
            return &b->names[i];
    return NULL;
}

/* Adds name (len bytes) with its mapped name; fails the test when it does
 * not fit. */
static kh_name_t *
name_add(kh_broker_t *b, const char *name, size_t len)
{
    size_t plen = b->external ? strlen(b->prefix) : 0;
    kh_name_t *n;

    if (b->nnames == KH_MAX_NAMES)
        fail_msg("kafka_harness: more than %d names on one broker", KH_MAX_NAMES);
    if (len == 0 || len >= sizeof(n->name))
        fail_msg("kafka_harness: name '%.*s' is empty or too long", (int)len, name);
    if (plen + len >= sizeof(n->mapped))
        fail_msg("kafka_harness: name '%s%.*s' is longer than Kafka allows", b->prefix,
                 (int)len, name);
    n = &b->names[b->nnames++];
    memset(n, 0, sizeof(*n));
    memcpy(n->name, name, len);
    n->name[len] = '\0';
    memcpy(n->mapped, b->prefix, plen);
    memcpy(n->mapped + plen, name, len);
    n->mapped[plen + len] = '\0';
    return n;
}

/* The value of option opt ("--topic") in argv[i] ("--topic V" or
 * "--topic=V"), advancing *i past it; NULL when argv[*i] is another one. */
static const char *
opt_value(const char *const *argv, int *i, const char *opt)
{
    size_t ol = strlen(opt);

    if (strcmp(argv[*i], opt) == 0 && argv[*i + 1] != NULL)
        return argv[++*i];
    if (strncmp(argv[*i], opt, ol) == 0 && argv[*i][ol] == '=')
        return argv[*i] + ol + 1;
    return NULL;
}

/* Reads the topics of weir-kafka's arguments (--topic NAME[:N][,...] and
 * --partitions N, in any order, as weir-kafka reads them) into b->names.
 * With weir-kafka a spec the harness cannot read is left to weir-kafka to
 * refuse; in external mode it fails the test. */
static void
names_from_args(kh_broker_t *b, const char *const *extra)
{
    int partitions = DEFAULT_PARTITIONS;

    for (int i = 0; extra != NULL && extra[i] != NULL; i++) {
        const char *v = opt_value(extra, &i, "--partitions");

        if (v != NULL)
            partitions = atoi(v);
    }
    for (int i = 0; extra != NULL && extra[i] != NULL; i++) {
        const char *p = opt_value(extra, &i, "--topic");

        while (p != NULL && *p != '\0') {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            const char *colon = memchr(p, ':', len);
            size_t nlen = colon ? (size_t)(colon - p) : len;
            int count = colon ? atoi(colon + 1) : partitions;

            if (nlen == 0 || nlen >= sizeof(b->names[0].name) || count <= 0 ||
                name_find(b, p, nlen) != NULL) {
                if (b->external)
                    fail_msg("kafka_harness: cannot read the topic spec '%s'", p);
            } else {
                name_add(b, p, nlen)->partitions = count;
            }
            p = comma ? comma + 1 : NULL;
        }
    }
}

const char *
kh_topic(kh_broker_t *b, const char *name)
{
    kh_name_t *n;

    if (!b->external)
        return name;
    n = name_find(b, name, strlen(name));
    if (n == NULL)
        n = name_add(b, name, strlen(name));
    return n->mapped;
}

int
kh_partitions(const kh_broker_t *b, const char *name)
{
    for (int i = 0; i < b->nnames; i++)
        if (strcmp(b->names[i].name, name) == 0 && b->names[i].partitions > 0)
            return b->names[i].partitions;
    fail_msg("kafka_harness: '%s' is not a topic of the broker's --topic arguments", name);
    return -1;
}

static void external_start(kh_broker_t *b);
static void external_create_topics(kh_broker_t *b);

void
kh_broker_start(kh_broker_t *b, const char *const *extra)
{
    const char *argv[64];
    posix_spawn_file_actions_t fa;
    int out[2], n = 0, rc;
    char line[sizeof(b->bootstrap) + 64];
    size_t len = 0;
    double deadline;

    if (!atexit_set) {
        atexit(kh_stop_all);
        atexit_set = 1;
    }
    /* a broker still running in b (its test did not stop it) stops first */
    for (int i = 0; i < MAX_BROKERS; i++)
        if (running[i] == b)
            kh_broker_stop(b);
    memset(b, 0, sizeof(*b));
    b->out_fd = -1;
    if (kh_external()) {
        external_start(b);
        names_from_args(b, extra);
        external_create_topics(b);
        return;
    }
    names_from_args(b, extra);
    argv[n++] = kh_bin("weir-kafka");
    argv[n++] = "--exit-with-parent";
    for (int i = 0; extra != NULL && extra[i] != NULL && n < 62; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;

    if (pipe2(out, O_CLOEXEC) < 0)
        fail_msg("pipe: %s", strerror(errno));
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    rc = posix_spawn(&b->pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    if (rc != 0) {
        close(out[0]);
        b->pid = 0;
        fail_msg("cannot start %s: %s", argv[0], strerror(rc));
    }
    b->out_fd = out[0];
    track(b);

    /* The first line: "bootstrap: HOST:PORT[,...]". */
    deadline = now_s() + START_MS / 1000.0;
    while (memchr(line, '\n', len) == NULL) {
        struct pollfd p = { .fd = b->out_fd, .events = POLLIN };
        int left = (int)((deadline - now_s()) * 1000);
        ssize_t got;

        if (left <= 0 || len >= sizeof(line) - 1)
            fail_msg("weir-kafka printed no bootstrap line within %d ms", START_MS);
        if (poll(&p, 1, left) <= 0)
            continue;
        got = read(b->out_fd, line + len, sizeof(line) - 1 - len);
        if (got <= 0)
            fail_msg("weir-kafka exited before printing its bootstrap line (status %d)",
                     kh_broker_stop(b));
        len += (size_t)got;
    }
    line[len] = '\0';
    *strchr(line, '\n') = '\0';
    if (strncmp(line, "bootstrap: ", 11) != 0 || strlen(line + 11) >= sizeof(b->bootstrap))
        fail_msg("unexpected first line from weir-kafka: '%s'", line);
    strcpy(b->bootstrap, line + 11);
}

int
kh_broker_signal_stop(kh_broker_t *b, int sig)
{
    bool killed;
    int code;

    if (b->external) {
        if (!b->up)
            return -1;
        untrack(b);
        b->up = false;
        external_delete_topics(b);
        return 0;
    }
    if (b->pid <= 0)
        return -1;
    kill(b->pid, sig);
    code = wait_or_kill(b->pid, STOP_MS, &killed);
    b->pid = 0;
    untrack(b);
    if (b->out_fd >= 0)
        close(b->out_fd);
    b->out_fd = -1;
    if (killed)
        fprintf(stderr, "kafka_harness: weir-kafka did not stop within %d ms (killed)\n",
                STOP_MS);
    return code;
}

int
kh_broker_stop(kh_broker_t *b)
{
    return kh_broker_signal_stop(b, SIGTERM);
}

static void
append(char **buf, size_t *len, size_t *cap, const char *data, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t ncap = *cap ? *cap : 4096;

        while (*len + n + 1 > ncap)
            ncap *= 2;
        *buf = realloc(*buf, ncap);
        if (*buf == NULL)
            fail_msg("out of memory");
        *cap = ncap;
    }
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
}

void
kh_run(kh_run_t *r, const char *const *argv, int timeout_ms)
{
    posix_spawn_file_actions_t fa;
    int out[2], err[2], rc;
    pid_t pid;
    size_t out_cap = 0, err_cap = 0, err_len = 0;
    double t0 = now_s(), deadline = t0 + timeout_ms / 1000.0;
    bool out_open = true, err_open = true, killed;
    char chunk[65536];

    memset(r, 0, sizeof(*r));
    append(&r->out, &r->out_len, &out_cap, "", 0);
    append(&r->err, &err_len, &err_cap, "", 0);
    if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
        fail_msg("pipe: %s", strerror(errno));
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, err[1], STDERR_FILENO);
    rc = posix_spawn(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(out[1]);
    close(err[1]);
    if (rc != 0) {
        close(out[0]);
        close(err[0]);
        fail_msg("cannot start %s: %s", argv[0], strerror(rc));
    }

    while (out_open || err_open) {
        struct pollfd p[2] = { { .fd = out_open ? out[0] : -1, .events = POLLIN },
                               { .fd = err_open ? err[0] : -1, .events = POLLIN } };
        int left = (int)((deadline - now_s()) * 1000);

        if (left <= 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            close(out[0]);
            close(err[0]);
            fail_msg("%s did not finish within %d ms; stderr:\n%s", argv[0], timeout_ms, r->err);
        }
        if (poll(p, 2, left) <= 0)
            continue;
        for (int k = 0; k < 2; k++) {
            ssize_t got;

            if (p[k].fd < 0 || !(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            got = read(p[k].fd, chunk, sizeof(chunk));
            if (got > 0 && k == 0)
                append(&r->out, &r->out_len, &out_cap, chunk, (size_t)got);
            else if (got > 0)
                append(&r->err, &err_len, &err_cap, chunk, (size_t)got);
            else if (got == 0 || errno != EINTR) {
                if (k == 0)
                    out_open = false;
                else
                    err_open = false;
            }
        }
    }
    close(out[0]);
    close(err[0]);
    r->status = wait_or_kill(pid, (int)((deadline - now_s()) * 1000) + 1, &killed);
    r->seconds = now_s() - t0;
    if (killed)
        fail_msg("%s did not exit within %d ms", argv[0], timeout_ms);
}

void
kh_run_free(kh_run_t *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

/* ---- Kafka --------------------------------------------------------------- */

static rd_kafka_t *
client_new(rd_kafka_type_t type, const char *bootstrap, const char *const *props)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr)) != 0 ||
        rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != 0)
        fail_msg("librdkafka conf: %s", errstr);
    for (int i = 0; props != NULL && props[i] != NULL; i += 2)
        if (rd_kafka_conf_set(conf, props[i], props[i + 1], errstr, sizeof(errstr)) != 0)
            fail_msg("librdkafka conf %s: %s", props[i], errstr);
    rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (rk == NULL)
        fail_msg("rd_kafka_new: %s", errstr);
    return rk;
}

static int
metadata_partitions(rd_kafka_t *rk, const char *topic, int *brokers)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    int n = -1;

    for (int attempt = 0; attempt < 50; attempt++) {
        err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            usleep(100000);
            continue;
        }
        if (brokers != NULL)
            *brokers = md->broker_cnt;
        if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
            n = md->topics[0].partition_cnt;
        else if (md->topic_cnt == 1 && md->topics[0].err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            err = md->topics[0].err;
        rd_kafka_metadata_destroy(md);
        if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
            break;
        usleep(100000);
    }
    rd_kafka_topic_destroy(rkt);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        fail_msg("metadata of '%s': %s", topic, rd_kafka_err2str(err));
    return n;
}

int
kh_topic_partitions(const char *bootstrap, const char *topic, bool create, int *brokers)
{
    /* A producer's requests allow auto-creation, a consumer's do not. */
    rd_kafka_t *rk = client_new(create ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER, bootstrap, NULL);
    int n = metadata_partitions(rk, topic, brokers);

    rd_kafka_destroy(rk);
    return n;
}

void
kh_watermarks(const char *bootstrap, const char *topic, int32_t partition, int64_t *lo,
              int64_t *hi)
{
    rd_kafka_t *rk = client_new(RD_KAFKA_PRODUCER, bootstrap, NULL);
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, topic, partition, lo, hi, 10000);

    rd_kafka_destroy(rk);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
        fail_msg("watermarks of %s [%d]: %s", topic, (int)partition, rd_kafka_err2str(err));
}

static int
record_order(const void *a, const void *b)
{
    const kh_record_t *x = a, *y = b;

    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

void
kh_topic_read(const char *bootstrap, const char *topic, int timeout_ms, kh_topic_t *t)
{
    char group[64];
    rd_kafka_t *rk;
    rd_kafka_topic_partition_list_t *parts;
    int64_t *hi;
    bool *done;
    int nparts, remaining = 0;
    size_t cap = 0;
    double deadline = now_s() + timeout_ms / 1000.0;

    memset(t, 0, sizeof(*t));
    snprintf(group, sizeof(group), "kafka-harness-%d", (int)getpid());
    /* read_committed: the watermark query below then answers the last
     * stable offset as the end (ListOffsets v2+ carries the level) */
    rk = client_new(RD_KAFKA_CONSUMER, bootstrap, (const char *const[]){
        "group.id", group, "enable.auto.commit", "false", "enable.partition.eof", "true",
        "auto.offset.reset", "error", "isolation.level", "read_committed", NULL });
    nparts = metadata_partitions(rk, topic, NULL);
    if (nparts <= 0) {
        rd_kafka_destroy(rk);
        fail_msg("topic '%s' does not exist", topic);
        return;
    }
    t->partitions = nparts;
    hi = calloc((size_t)nparts, sizeof(*hi));
    done = calloc((size_t)nparts, sizeof(*done));
    if (hi == NULL || done == NULL)
        fail_msg("out of memory");
    parts = rd_kafka_topic_partition_list_new(nparts);
    for (int p = 0; p < nparts; p++) {
        int64_t lo;
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi[p],
                                                                   10000);
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR)
            fail_msg("watermarks of %s [%d]: %s", topic, p, rd_kafka_err2str(err));
        if (hi[p] > lo) {
            rd_kafka_topic_partition_list_add(parts, topic, p)->offset = lo;
            remaining++;
        } else {
            done[p] = true;
        }
    }
    if (rd_kafka_assign(rk, parts) != RD_KAFKA_RESP_ERR_NO_ERROR)
        fail_msg("assign %s", topic);
    rd_kafka_topic_partition_list_destroy(parts);

    while (remaining > 0) {
        rd_kafka_message_t *m;

        if (now_s() > deadline)
            fail_msg("read %zu records of '%s'; %d partition(s) still short of their end "
                     "after %d ms", t->n, topic, remaining, timeout_ms);
        m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            /* the end: offset is the next one, past any transaction marker */
            if (m->partition >= 0 && m->partition < nparts && !done[m->partition] &&
                m->offset >= hi[m->partition]) {
                done[m->partition] = true;
                remaining--;
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            char msg[512];

            snprintf(msg, sizeof(msg), "%s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            fail_msg("consuming '%s': %s", topic, msg);
        }
        if (m->offset < hi[m->partition]) {
            kh_record_t *rec;

            if (t->n == cap) {
                cap = cap ? cap * 2 : 1024;
                t->recs = realloc(t->recs, cap * sizeof(*t->recs));
                if (t->recs == NULL)
                    fail_msg("out of memory");
            }
            rec = &t->recs[t->n++];
            rec->partition = m->partition;
            rec->offset = m->offset;
            rec->key_len = m->key_len;
            rec->key = strndup(m->key ? (const char *)m->key : "", m->key_len);
            rec->value_len = m->len;
            rec->value = strndup(m->payload ? (const char *)m->payload : "", m->len);
            if (m->offset == hi[m->partition] - 1 && !done[m->partition]) {
                done[m->partition] = true;
                remaining--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    free(hi);
    free(done);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (t->n > 0)
        qsort(t->recs, t->n, sizeof(*t->recs), record_order);
}

void
kh_topic_free(kh_topic_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->recs[i].key);
        free(t->recs[i].value);
    }
    free(t->recs);
    memset(t, 0, sizeof(*t));
}

/* ---- external mode: a real cluster ------------------------------------------ */

/* The replication factor of the topics created: $WEIR_TEST_KAFKA_REPLICATION,
 * default 1. */
static int
replication_factor(void)
{
    const char *v = getenv(REPLICATION_ENV);
    char *end;
    long rf;

    if (v == NULL || *v == '\0')
        return 1;
    errno = 0;
    rf = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || rf < 1 || rf > 32)
        fail_msg("%s='%s': must be a replication factor 1..32", REPLICATION_ENV, v);
    return (int)rf;
}

static void
external_start(kh_broker_t *b)
{
    static int starts;
    const char *bootstrap = getenv(EXTERNAL_ENV);

    if (strlen(bootstrap) >= sizeof(b->bootstrap))
        fail_msg("%s is longer than %zu characters", EXTERNAL_ENV, sizeof(b->bootstrap) - 1);
    strcpy(b->bootstrap, bootstrap);
    b->external = true;
    /* unique per start: the time keeps a later run with the same pid from
     * meeting topics an interrupted run left behind */
    snprintf(b->prefix, sizeof(b->prefix), "weirtest-%lld-%d-%d-", (long long)time(NULL),
             (int)getpid(), ++starts);
    b->up = true;
    track(b);                          /* from here on kh_stop_all() deletes its topics */
}

/* Waits until the cluster's metadata shows topic with every partition led;
 * returns its partition count, or -1 with a message in why. */
static int
external_wait_leaders(rd_kafka_t *rk, const char *topic, char *why, size_t whylen)
{
    double deadline = now_s() + ADMIN_MS / 1000.0;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    int n = -1;

    snprintf(why, whylen, "no metadata");
    while (n < 0 && now_s() < deadline) {
        const struct rd_kafka_metadata *md;
        rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, rkt, &md, 5000);

        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(why, whylen, "%s", rd_kafka_err2str(err));
        } else {
            if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                snprintf(why, whylen, "%s", md->topic_cnt != 1 ? "not in the metadata"
                         : rd_kafka_err2str(md->topics[0].err));
            } else {
                int led = 0;

                for (int p = 0; p < md->topics[0].partition_cnt; p++)
                    led += md->topics[0].partitions[p].leader >= 0 &&
                           md->topics[0].partitions[p].err == RD_KAFKA_RESP_ERR_NO_ERROR;
                if (md->topics[0].partition_cnt > 0 && led == md->topics[0].partition_cnt)
                    n = md->topics[0].partition_cnt;
                else
                    snprintf(why, whylen, "%d of %d partitions have a leader", led,
                             md->topics[0].partition_cnt);
            }
            rd_kafka_metadata_destroy(md);
        }
        if (n < 0)
            usleep(100000);
    }
    rd_kafka_topic_destroy(rkt);
    return n;
}

/* A broker without the Admin API (weir-kafka: the mock cluster implements
 * no CreateTopics): each topic is auto-created by a Metadata request that
 * allows it, as a producer's does, with the broker's default count. */
static void
external_auto_create(kh_broker_t *b, const char *why)
{
    static bool said;

    if (!said)
        fprintf(stderr, "kafka_harness: %s: no CreateTopics (%s); the topics are "
                "auto-created by a Metadata request instead, with the broker's default "
                "partition count\n", b->bootstrap, why);
    said = true;
    for (int i = 0; i < b->nnames; i++) {
        kh_name_t *n = &b->names[i];
        int got;

        if (n->partitions <= 0)
            continue;
        got = kh_topic_partitions(b->bootstrap, n->mapped, true, NULL);
        if (got <= 0)
            fail_msg("kafka_harness: %s cannot create topic '%s' (no CreateTopics, and no "
                     "auto-creation)", b->bootstrap, n->mapped);
        if (got != n->partitions)
            fprintf(stderr, "kafka_harness: topic '%s' has %d partitions, not the %d asked "
                    "for\n", n->mapped, got, n->partitions);
        n->partitions = got;
    }
}

/* Whether the cluster names a controller among its brokers, which admin
 * requests go to. weir-kafka's mock cluster names broker 0, which does not
 * exist (its brokers count from 1), so librdkafka would wait for it until
 * the request times out; then why says so. */
static bool
external_has_controller(rd_kafka_t *rk, char *why, size_t whylen)
{
    const struct rd_kafka_metadata *md;
    int32_t ctl = rd_kafka_controllerid(rk, 10000);
    bool found = false;

    if (ctl < 0) {
        snprintf(why, whylen, "the cluster names no controller");
        return false;
    }
    if (rd_kafka_metadata(rk, 0, NULL, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return true;                   /* CreateTopics will say what is wrong */
    for (int i = 0; i < md->broker_cnt; i++)
        found |= md->brokers[i].id == ctl;
    rd_kafka_metadata_destroy(md);
    if (!found)
        snprintf(why, whylen, "the controller the cluster names (broker %d) is none of its "
                 "brokers", (int)ctl);
    return found;
}

static void
external_create_topics(kh_broker_t *b)
{
    rd_kafka_NewTopic_t *nt[KH_MAX_NAMES];
    rd_kafka_AdminOptions_t *opts;
    rd_kafka_queue_t *q;
    rd_kafka_event_t *ev;
    rd_kafka_t *rk;
    char errstr[512], failure[1024] = "", unsupported[512] = "";
    int rf = replication_factor(), n = 0;

    for (int i = 0; i < b->nnames; i++)
        if (b->names[i].partitions > 0)
            n++;
    if (n == 0)
        return;
    rk = client_new(RD_KAFKA_PRODUCER, b->bootstrap, NULL);
    n = 0;
    for (int i = 0; i < b->nnames; i++) {
        if (b->names[i].partitions <= 0)
            continue;
        nt[n] = rd_kafka_NewTopic_new(b->names[i].mapped, b->names[i].partitions, rf, errstr,
                                      sizeof(errstr));
        if (nt[n] == NULL) {
            snprintf(failure, sizeof(failure), "topic '%s': %s", b->names[i].mapped, errstr);
            break;
        }
        n++;
    }
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    if (failure[0] == '\0' &&
        (rd_kafka_AdminOptions_set_request_timeout(opts, ADMIN_MS, errstr, sizeof(errstr)) ||
         rd_kafka_AdminOptions_set_operation_timeout(opts, ADMIN_MS, errstr, sizeof(errstr))))
        snprintf(failure, sizeof(failure), "admin options: %s", errstr);
    q = rd_kafka_queue_new(rk);
    /* without a controller, unsupported says why and they are auto-created */
    if (failure[0] == '\0' && external_has_controller(rk, unsupported, sizeof(unsupported))) {
        rd_kafka_CreateTopics(rk, nt, (size_t)n, opts, q);
        ev = rd_kafka_queue_poll(q, ADMIN_MS + 10000);
        if (ev == NULL) {
            snprintf(failure, sizeof(failure), "no answer to CreateTopics within %d ms",
                     ADMIN_MS + 10000);
        } else if (rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE ||
                   rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION ||
                   rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR_INVALID_REQUEST) {
            snprintf(unsupported, sizeof(unsupported), "%s", rd_kafka_event_error_string(ev));
        } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(failure, sizeof(failure), "CreateTopics: %s",
                     rd_kafka_event_error_string(ev));
        } else {
            size_t cnt = 0;
            const rd_kafka_topic_result_t **res = rd_kafka_CreateTopics_result_topics(
                rd_kafka_event_CreateTopics_result(ev), &cnt);

            for (size_t i = 0; i < cnt && failure[0] == '\0'; i++) {
                rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
                const char *msg = rd_kafka_topic_result_error_string(res[i]);

                if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
                    snprintf(failure, sizeof(failure), "cannot create topic '%s' (replication "
                             "factor %d): %s", rd_kafka_topic_result_name(res[i]), rf,
                             msg != NULL ? msg : rd_kafka_err2str(e));
            }
        }
        if (ev != NULL)
            rd_kafka_event_destroy(ev);
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_NewTopic_destroy_array(nt, (size_t)n);
    /* created: every partition must have its leader before a test uses it */
    for (int i = 0; i < b->nnames && failure[0] == '\0' && unsupported[0] == '\0'; i++) {
        kh_name_t *nm = &b->names[i];
        char why[256];
        int got;

        if (nm->partitions <= 0)
            continue;
        got = external_wait_leaders(rk, nm->mapped, why, sizeof(why));
        if (got < 0)
            snprintf(failure, sizeof(failure), "topic '%s' created, but not ready within %d "
                     "ms: %s", nm->mapped, ADMIN_MS, why);
        else if (got != nm->partitions)
            snprintf(failure, sizeof(failure), "topic '%s' created with %d partitions, the "
                     "cluster shows %d", nm->mapped, nm->partitions, got);
    }
    rd_kafka_destroy(rk);
    if (failure[0] != '\0')
        fail_msg("kafka_harness: %s at %s", failure, b->bootstrap);
    if (unsupported[0] != '\0')
        external_auto_create(b, unsupported);
}

/* Deletes every topic whose name starts with b's prefix. Never fails the
 * test (it also runs from kh_stop_all() at exit): what goes wrong is said
 * on stderr. */
static void
external_delete_topics(kh_broker_t *b)
{
    static bool said;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_t *rk = NULL;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    rd_kafka_DeleteTopic_t *dt[256];
    size_t n = 0;
    rd_kafka_resp_err_t err;
    char why[256];

    if (rd_kafka_conf_set(conf, "bootstrap.servers", b->bootstrap, errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK ||
        (rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr))) == NULL) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "kafka_harness: cannot delete the topics %s*: %s\n", b->prefix, errstr);
        return;
    }
    if (!external_has_controller(rk, why, sizeof(why))) {
        if (!said)
            fprintf(stderr, "kafka_harness: %s: cannot delete topics (%s); the topics "
                    "weirtest-* stay on the broker\n", b->bootstrap, why);
        said = true;
        rd_kafka_destroy(rk);
        return;
    }
    err = rd_kafka_metadata(rk, 1, NULL, &md, 10000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "kafka_harness: cannot list the topics to delete %s*: %s\n", b->prefix,
                rd_kafka_err2str(err));
        rd_kafka_destroy(rk);
        return;
    }
    for (int i = 0; i < md->topic_cnt && n < 256; i++)
        if (strncmp(md->topics[i].topic, b->prefix, strlen(b->prefix)) == 0)
            dt[n++] = rd_kafka_DeleteTopic_new(md->topics[i].topic);
    if (n > 0) {
        rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk,
                                                                  RD_KAFKA_ADMIN_OP_DELETETOPICS);
        rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
        rd_kafka_event_t *ev;

        rd_kafka_AdminOptions_set_request_timeout(opts, ADMIN_MS, errstr, sizeof(errstr));
        rd_kafka_AdminOptions_set_operation_timeout(opts, ADMIN_MS, errstr, sizeof(errstr));
        rd_kafka_DeleteTopics(rk, dt, n, opts, q);
        ev = rd_kafka_queue_poll(q, ADMIN_MS + 10000);
        if (ev == NULL) {
            fprintf(stderr, "kafka_harness: no answer to DeleteTopics for %s* within %d ms\n",
                    b->prefix, ADMIN_MS + 10000);
        } else if (rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (!said)
                fprintf(stderr, "kafka_harness: %s: DeleteTopics refused (%s); the topics "
                        "weirtest-* stay on the broker\n", b->bootstrap,
                        rd_kafka_event_error_string(ev));
            said = true;
        } else {
            size_t cnt = 0;
            const rd_kafka_topic_result_t **res = rd_kafka_DeleteTopics_result_topics(
                rd_kafka_event_DeleteTopics_result(ev), &cnt);

            for (size_t i = 0; i < cnt; i++)
                if (rd_kafka_topic_result_error(res[i]) != RD_KAFKA_RESP_ERR_NO_ERROR)
                    fprintf(stderr, "kafka_harness: cannot delete topic '%s': %s\n",
                            rd_kafka_topic_result_name(res[i]),
                            rd_kafka_topic_result_error_string(res[i]) != NULL
                            ? rd_kafka_topic_result_error_string(res[i])
                            : rd_kafka_err2str(rd_kafka_topic_result_error(res[i])));
        }
        if (ev != NULL)
            rd_kafka_event_destroy(ev);
        rd_kafka_queue_destroy(q);
        rd_kafka_AdminOptions_destroy(opts);
        rd_kafka_DeleteTopic_destroy_array(dt, n);
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
}

/* ---- misc ---------------------------------------------------------------- */

int
kh_free_port(int n)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        struct sockaddr_in sin = { .sin_family = AF_INET,
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t sl = sizeof(sin);
        int fds[8], k, port, ok = 1;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 ||
            getsockname(fd, (struct sockaddr *)&sin, &sl) < 0)
            fail_msg("free port: %s", strerror(errno));
        port = ntohs(sin.sin_port);
        close(fd);
        if (port + n > 65535)
            continue;
        for (k = 0; k < n && k < 8; k++) {
            sin.sin_port = htons((uint16_t)(port + k));
            fds[k] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (fds[k] < 0 || bind(fds[k], (struct sockaddr *)&sin, sizeof(sin)) < 0) {
                ok = 0;
                if (fds[k] >= 0)
                    close(fds[k]);
                break;
            }
        }
        for (int j = 0; j < k; j++)
            close(fds[j]);
        if (ok)
            return port;
    }
    fail_msg("no %d free consecutive loopback ports", n);
    return -1;
}

size_t
kh_lines(char *text, char ***lines)
{
    size_t n = 0, cap = 64;
    char *p = text;

    *lines = malloc(cap * sizeof(char *));
    while (*lines != NULL && *p != '\0') {
        char *nl = strchr(p, '\n');

        if (n == cap) {
            cap *= 2;
            *lines = realloc(*lines, cap * sizeof(char *));
            if (*lines == NULL)
                break;
        }
        (*lines)[n++] = p;
        if (nl == NULL)
            break;
        *nl = '\0';
        p = nl + 1;
    }
    if (*lines == NULL)
        fail_msg("out of memory");
    return n;
}
