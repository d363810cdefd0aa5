/* tests/kafka/kafka_harness.c -- see kafka_harness.h. */
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

void
kh_stop_all(void)
{
    for (int i = 0; i < MAX_BROKERS; i++) {
        kh_broker_t *b = running[i];
        bool killed;

        if (b == NULL)
            continue;
        running[i] = NULL;
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
    memset(b, 0, sizeof(*b));
    b->out_fd = -1;
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
    int nparts, remaining = 0;
    size_t cap = 0;
    double deadline = now_s() + timeout_ms / 1000.0;

    memset(t, 0, sizeof(*t));
    snprintf(group, sizeof(group), "kafka-harness-%d", (int)getpid());
    rk = client_new(RD_KAFKA_CONSUMER, bootstrap, (const char *const[]){
        "group.id", group, "enable.auto.commit", "false", "enable.partition.eof", "false",
        "auto.offset.reset", "error", NULL });
    nparts = metadata_partitions(rk, topic, NULL);
    if (nparts <= 0) {
        rd_kafka_destroy(rk);
        fail_msg("topic '%s' does not exist", topic);
        return;
    }
    t->partitions = nparts;
    hi = calloc((size_t)nparts, sizeof(*hi));
    if (hi == NULL)
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
            if (m->offset == hi[m->partition] - 1)
                remaining--;
        }
        rd_kafka_message_destroy(m);
    }
    free(hi);
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
