/* runtime/kafka/broker.c -- weir-kafka, the embedded development broker.
 *
 * weir-kafka runs librdkafka's mock cluster (rdkafka_mock.h) in a process of
 * its own, so that the job manager, the task managers, weir-gen, kcat and any
 * other Kafka client can talk the real Kafka protocol to it over loopback
 * without a JVM:
 *
 *   $ weir-kafka --brokers 1 --topic transactions,flagged-accounts
 *   bootstrap: 127.0.0.1:40311                     <- first stdout line, flushed
 *
 * It runs until SIGTERM or SIGINT and then exits 0.
 *
 * What the mock cluster of librdkafka 2.0.2 does, and what that means here
 * (read from src/rdkafka_mock.c and rdkafka_mock_handlers.c at tag v2.0.2):
 *
 *  - Ports. Every mock broker binds its own socket to 127.0.0.1 port 0, so
 *    the kernel picks the port, and advertises exactly the address it bound
 *    (getsockname). There is no API to choose the port or the host. For
 *    `--port P` (and `--host`) weir-kafka binds the listening sockets itself
 *    first, then interposes bind(2) for the duration of
 *    rd_kafka_mock_cluster_new(): when the mock binds a fresh IPv4 socket to
 *    port 0 on this thread, the pre-bound socket is moved onto the mock's
 *    descriptor (dup3) instead. The mock then reads the real address back
 *    with getsockname() and advertises it, so the bootstrap address and the
 *    broker addresses in Metadata responses are the real listening sockets.
 *    Broker n (from 1) gets port P+n-1. The result is checked against
 *    rd_kafka_mock_cluster_bootstraps() and weir-kafka refuses to start if
 *    they differ. Without --port/--host nothing is interposed.
 *
 *  - Topics. A Metadata request naming an unknown topic creates it when
 *    the request allows auto-creation, with mcluster->defaults.partition_cnt
 *    partitions, which rd_kafka_mock_cluster_new() hard-codes to 4; there is
 *    no API to change it and the function is not exported. So topics that
 *    should have more partitions are created here at start-up with
 *    rd_kafka_mock_topic_create() (`--topic NAME[:PARTITIONS]`, default
 *    --partitions, 16), before the bootstrap line is printed, so no client
 *    can race them. The mock does not implement CreateTopics, DeleteTopics,
 *    CreatePartitions, DescribeConfigs, ListGroups or DescribeGroups, so
 *    admin tools cannot do it either.
 *
 *  - API versions. The 2.0.2 mock offers Metadata v0..v2 only, and
 *    AllowAutoTopicCreation exists from v4 on, so every Metadata request
 *    would create the topics it names, even a librdkafka consumer's (whose
 *    allow.auto.create.topics defaults to false). Its Metadata handler does
 *    implement v3 and v4 correctly, so weir-kafka raises the range to v0..v4
 *    with rd_kafka_mock_set_apiversion(): producers (and Java consumers)
 *    still create topics on first use, librdkafka consumers get
 *    UNKNOWN_TOPIC_OR_PART as from a real broker. It also caps ListOffsets
 *    at v3: the mock writes the v4+ LeaderEpoch as 64 bits instead of 32,
 *    which breaks clients that negotiate v4 or v5 (Java). Clients learn the
 *    ranges from ApiVersions and use them without being told.
 *
 *  - Retention. Each partition keeps at most 5 MB of record batches and at
 *    most 100,000 batches (rd_kafka_mock_partition_init); older batches are
 *    dropped as new ones arrive, so a consumer that falls behind gets
 *    OFFSET_OUT_OF_RANGE. Everything is in memory. Fetch ignores the
 *    isolation level: read_committed consumers see aborted transactions.
 *
 * The process itself is simple: block SIGINT/SIGTERM before any thread
 * exists (librdkafka's threads inherit the mask), create a bookkeeping
 * rd_kafka_t and the mock cluster on it, set the API versions, create the
 * named topics, print the bootstrap line, and sigwait(). All brokers are
 * served by the mock's one thread.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <syslog.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "runtime/core/log.h"

/* ---- limits ---------------------------------------------------------- */

#define MAX_BROKERS        32
#define MAX_PARTITIONS     10000
#define MAX_TOPICS         256
#define MAX_TOPIC_NAME     249        /* Kafka's own limit */
#define DEFAULT_PARTITIONS 16
#define MOCK_AUTO_PARTITIONS 4        /* librdkafka 2.0.2, not configurable */

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* The limits, said once: in the start-up line and in docs/kafka.md. */
#define LIMITS_TEXT                                                          \
    "keeps only the newest ~5 MB (at most 100000 batches) per partition: "   \
    "older records vanish and a slow consumer gets offset-out-of-range; "    \
    "everything is in memory and lost on exit; read_committed consumers "    \
    "still see aborted transactions; no admin API (CreateTopics, "           \
    "DeleteTopics, DescribeConfigs, ListGroups)"

typedef struct {
    char name[MAX_TOPIC_NAME + 1];
    int  partitions;                   /* 0: use --partitions */
} topic_spec_t;

typedef struct {
    char         host[INET_ADDRSTRLEN];
    int          port;                 /* 0: kernel-chosen */
    int          brokers;
    int          partitions;
    bool         exit_with_parent;
    topic_spec_t topics[MAX_TOPICS];
    int          ntopics;
} broker_opts_t;

/* ---- fixed listeners: the bind(2) interposer ------------------------- */

/* Armed only while rd_kafka_mock_cluster_new() runs on the arming thread;
 * everything else in the process binds as usual. */
static struct {
    atomic_int armed;
    pthread_t  thread;
    int        fds[MAX_BROKERS];       /* pre-bound sockets, handed over in order */
    int        nfds;
    int        next;
} fixed = { .armed = 0 };

typedef int (*bind_fn_t)(int, const struct sockaddr *, socklen_t);
static bind_fn_t real_bind_fn;
static pthread_once_t real_bind_once = PTHREAD_ONCE_INIT;

static void
real_bind_resolve(void)
{
    real_bind_fn = (bind_fn_t)dlsym(RTLD_NEXT, "bind");
}

static int
real_bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    pthread_once(&real_bind_once, real_bind_resolve);
    if (real_bind_fn == NULL) {
        errno = ENOSYS;
        return -1;
    }
    return real_bind_fn(fd, sa, len);
}

/* glibc declares bind() with a transparent union under _GNU_SOURCE. */
#if defined(__USE_GNU) && !defined(__cplusplus) && defined(__GLIBC__)
#define SOCKADDR_PTR(a) ((a).__sockaddr__)
#else
#define SOCKADDR_PTR(a) (a)
#endif

/* Overrides libc's bind for this executable and the libraries it loads
 * (librdkafka calls it through its PLT). Passes through unless armed. */
int
bind(int fd, __CONST_SOCKADDR_ARG addr, socklen_t len)
{
    const struct sockaddr *sa = SOCKADDR_PTR(addr);

    if (atomic_load(&fixed.armed) && pthread_equal(pthread_self(), fixed.thread) &&
        sa != NULL && sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in) &&
        ((const struct sockaddr_in *)(const void *)sa)->sin_port == 0 &&
        fixed.next < fixed.nfds) {
        int src = fixed.fds[fixed.next];

        if (dup3(src, fd, O_CLOEXEC) < 0)
            return -1;
        close(src);
        fixed.fds[fixed.next++] = -1;
        return 0;
    }
    return real_bind(fd, sa, len);
}

static void
fixed_close_all(void)
{
    for (int i = 0; i < fixed.nfds; i++) {
        if (fixed.fds[i] >= 0)
            close(fixed.fds[i]);
        fixed.fds[i] = -1;
    }
    fixed.nfds = fixed.next = 0;
}

/* Binds one socket per broker to host:port+i (or host:0 when port is 0).
 * Returns 0, or -1 with a message in errbuf. */
static int
fixed_prepare(const broker_opts_t *o, char *errbuf, size_t errlen)
{
    struct sockaddr_in sin;
    int one = 1;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    if (inet_pton(AF_INET, o->host, &sin.sin_addr) != 1) {
        snprintf(errbuf, errlen, "bad host '%s'", o->host);
        return -1;
    }
    fixed.nfds = fixed.next = 0;
    for (int i = 0; i < o->brokers; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0) {
            snprintf(errbuf, errlen, "socket: %s", strerror(errno));
            goto fail;
        }
        fixed.fds[fixed.nfds++] = fd;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
            snprintf(errbuf, errlen, "setsockopt(SO_REUSEADDR): %s", strerror(errno));
            goto fail;
        }
        sin.sin_port = htons((uint16_t)(o->port == 0 ? 0 : o->port + i));
        if (real_bind(fd, (const struct sockaddr *)&sin, sizeof(sin)) < 0) {
            snprintf(errbuf, errlen, "cannot listen on %s:%d: %s", o->host,
                     o->port == 0 ? 0 : o->port + i, strerror(errno));
            goto fail;
        }
    }
    return 0;

fail:
    fixed_close_all();
    return -1;
}

/* The "host:port,..." list the pre-bound sockets must produce. */
static int
fixed_expected_bootstraps(char *out, size_t cap)
{
    size_t len = 0;

    out[0] = '\0';
    for (int i = 0; i < fixed.nfds; i++) {
        struct sockaddr_in sin;
        socklen_t sl = sizeof(sin);
        char ip[INET_ADDRSTRLEN];
        int n;

        if (getsockname(fixed.fds[i], (struct sockaddr *)&sin, &sl) < 0 ||
            inet_ntop(AF_INET, &sin.sin_addr, ip, sizeof(ip)) == NULL)
            return -1;
        n = snprintf(out + len, cap - len, "%s%s:%u", i > 0 ? "," : "", ip,
                     (unsigned)ntohs(sin.sin_port));
        if (n < 0 || (size_t)n >= cap - len)
            return -1;
        len += (size_t)n;
    }
    return 0;
}

/* ---- librdkafka logging ---------------------------------------------- */

static void
rk_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (level <= LOG_ERR)
        weir_log_error("librdkafka %s: %s", fac, buf);
    else if (level <= LOG_WARNING)
        weir_log_warn("librdkafka %s: %s", fac, buf);
    else
        weir_log_debug("librdkafka %s: %s", fac, buf);
}

/* ---- options ----------------------------------------------------------- */

static void
usage(FILE *f)
{
    fprintf(f,
        "usage: weir-kafka [--host ADDR] [--port P] [--brokers N] [--partitions N]\n"
        "                  [--topic NAME[:PARTITIONS][,NAME...]]... [--exit-with-parent]\n"
        "                  [--log-level error|warn|info|debug]\n"
        "\n"
        "A development Kafka broker: librdkafka's mock cluster in its own process,\n"
        "real Kafka protocol, in memory. Prints 'bootstrap: HOST:PORT[,...]' on its\n"
        "first stdout line and runs until SIGTERM or SIGINT.\n"
        "\n"
        "  --host ADDR       IPv4 address to listen on and advertise (default 127.0.0.1)\n"
        "  --port P          port of broker 1; broker i listens on P+i-1\n"
        "                    (default 0: ports chosen by the kernel)\n"
        "  --brokers N       number of brokers, 1..%d (default 1)\n"
        "  --partitions N    partitions of each --topic without its own count\n"
        "                    (default %d)\n"
        "  --topic SPEC      create these topics at start; SPEC is NAME[:PARTITIONS],\n"
        "                    comma-separated, repeatable. Other topics are created when\n"
        "                    a producer first uses them, with %d partitions (fixed by\n"
        "                    librdkafka 2.0.2's mock cluster).\n"
        "  --exit-with-parent  stop when the process that started weir-kafka exits\n"
        "\n"
        "Limits: %s.\n",
        MAX_BROKERS, DEFAULT_PARTITIONS, MOCK_AUTO_PARTITIONS, LIMITS_TEXT);
}

/* Parses a decimal integer in [lo, hi]; returns 0 or -1. */
static int
parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    long v;

    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static bool
topic_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > MAX_TOPIC_NAME)
        return false;
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Adds the topics of one --topic SPEC (spec is borrowed). */
static int
parse_topics(broker_opts_t *o, const char *spec)
{
    const char *p = spec;

    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *colon = memchr(p, ':', len);
        size_t nlen = colon ? (size_t)(colon - p) : len;
        topic_spec_t *t;

        if (!topic_name_ok(p, nlen)) {
            fprintf(stderr, "weir-kafka: --topic '%s': bad topic name '%.*s' "
                    "(1..%d characters of a-z A-Z 0-9 . _ -)\n",
                    spec, (int)(nlen > 300 ? 300 : nlen), p, MAX_TOPIC_NAME);
            return -1;
        }
        if (o->ntopics == MAX_TOPICS) {
            fprintf(stderr, "weir-kafka: more than %d topics\n", MAX_TOPICS);
            return -1;
        }
        for (int i = 0; i < o->ntopics; i++) {
            if (strlen(o->topics[i].name) == nlen && memcmp(o->topics[i].name, p, nlen) == 0) {
                fprintf(stderr, "weir-kafka: topic '%.*s' named twice\n", (int)nlen, p);
                return -1;
            }
        }
        t = &o->topics[o->ntopics];
        memcpy(t->name, p, nlen);
        t->name[nlen] = '\0';
        t->partitions = 0;
        if (colon != NULL) {
            char num[16];
            size_t dlen = len - nlen - 1;

            if (dlen == 0 || dlen >= sizeof(num))
                goto bad_count;
            memcpy(num, colon + 1, dlen);
            num[dlen] = '\0';
            if (parse_int(num, 1, MAX_PARTITIONS, &t->partitions) < 0)
                goto bad_count;
        }
        o->ntopics++;
        if (comma == NULL)
            return 0;
        p = comma + 1;
        continue;

bad_count:
        fprintf(stderr, "weir-kafka: --topic '%s': partition count of '%s' must be 1..%d\n",
                spec, t->name, MAX_PARTITIONS);
        return -1;
    }
}

/* Returns -1 to exit with a usage error, 1 after --help, 0 to run. */
static int
parse_args(int argc, char **argv, broker_opts_t *o)
{
    static const struct option longopts[] = {
        { "host",             required_argument, NULL, 'H' },
        { "port",             required_argument, NULL, 'p' },
        { "brokers",          required_argument, NULL, 'b' },
        { "partitions",       required_argument, NULL, 'n' },
        { "topic",            required_argument, NULL, 't' },
        { "exit-with-parent", no_argument,       NULL, 'e' },
        { "log-level",        required_argument, NULL, 'l' },
        { "help",             no_argument,       NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    int c, lvl;

    memset(o, 0, sizeof(*o));
    strcpy(o->host, "127.0.0.1");
    o->brokers = 1;
    o->partitions = DEFAULT_PARTITIONS;

    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'H': {
            struct in_addr a;
            const char *h = strcmp(optarg, "localhost") == 0 ? "127.0.0.1" : optarg;

            if (inet_pton(AF_INET, h, &a) != 1) {
                fprintf(stderr, "weir-kafka: --host '%s': not an IPv4 address "
                        "(the mock cluster listens on IPv4 only)\n", optarg);
                return -1;
            }
            if (a.s_addr == htonl(INADDR_ANY)) {
                fprintf(stderr, "weir-kafka: --host 0.0.0.0: a broker advertises the "
                        "address it listens on; give a concrete address\n");
                return -1;
            }
            inet_ntop(AF_INET, &a, o->host, sizeof(o->host));
            break;
        }
        case 'p':
            if (parse_int(optarg, 0, 65535, &o->port) < 0) {
                fprintf(stderr, "weir-kafka: --port '%s': must be 0..65535\n", optarg);
                return -1;
            }
            break;
        case 'b':
            if (parse_int(optarg, 1, MAX_BROKERS, &o->brokers) < 0) {
                fprintf(stderr, "weir-kafka: --brokers '%s': must be 1..%d\n", optarg, MAX_BROKERS);
                return -1;
            }
            break;
        case 'n':
            if (parse_int(optarg, 1, MAX_PARTITIONS, &o->partitions) < 0) {
                fprintf(stderr, "weir-kafka: --partitions '%s': must be 1..%d\n",
                        optarg, MAX_PARTITIONS);
                return -1;
            }
            break;
        case 't':
            if (parse_topics(o, optarg) < 0)
                return -1;
            break;
        case 'e':
            o->exit_with_parent = true;
            break;
        case 'l':
            if ((lvl = weir_log_level_parse(optarg)) < 0) {
                fprintf(stderr, "weir-kafka: --log-level '%s': must be error, warn, info "
                        "or debug\n", optarg);
                return -1;
            }
            weir_log_level = lvl;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case ':':
            fprintf(stderr, "weir-kafka: %s needs a value\n", argv[optind - 1]);
            return -1;
        default:
            fprintf(stderr, "weir-kafka: unknown option '%s' (try --help)\n", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "weir-kafka: unexpected argument '%s' (try --help)\n", argv[optind]);
        return -1;
    }
    if (o->port != 0 && o->port + o->brokers - 1 > 65535) {
        fprintf(stderr, "weir-kafka: --port %d with %d brokers runs past port 65535\n",
                o->port, o->brokers);
        return -1;
    }
    return 0;
}

/* ---- main -------------------------------------------------------------- */

static rd_kafka_t *
bookkeeping_handle_create(void)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    rd_kafka_conf_set_log_cb(conf, rk_log_cb);
    /* The handle only hosts the mock cluster: it never connects anywhere. */
    if (rd_kafka_conf_set(conf, "log.connection.close", "false", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        weir_log_error("librdkafka configuration: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        weir_log_error("cannot create the librdkafka handle: %s", errstr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return rk;                        /* caller owns: rd_kafka_destroy() */
}

/* Creates the mock cluster, with the fixed listeners when asked for.
 * rk is borrowed; returns the new cluster (caller destroys it) or NULL. */
static rd_kafka_mock_cluster_t *
cluster_create(rd_kafka_t *rk, const broker_opts_t *o)
{
    rd_kafka_mock_cluster_t *mc;
    char expected[MAX_BROKERS * 24], errbuf[256];
    bool interpose = o->port != 0 || strcmp(o->host, "127.0.0.1") != 0;

    if (!interpose) {
        mc = rd_kafka_mock_cluster_new(rk, o->brokers);
        if (mc == NULL)
            weir_log_error("librdkafka could not create the mock cluster");
        return mc;
    }

    if (fixed_prepare(o, errbuf, sizeof(errbuf)) < 0) {
        weir_log_error("%s", errbuf);
        return NULL;
    }
    if (fixed_expected_bootstraps(expected, sizeof(expected)) < 0) {
        weir_log_error("cannot read the listening addresses: %s", strerror(errno));
        fixed_close_all();
        return NULL;
    }
    fixed.thread = pthread_self();
    atomic_store(&fixed.armed, 1);
    mc = rd_kafka_mock_cluster_new(rk, o->brokers);
    atomic_store(&fixed.armed, 0);

    if (mc == NULL) {
        weir_log_error("librdkafka could not create the mock cluster");
        fixed_close_all();
        return NULL;
    }
    if (fixed.next != fixed.nfds || strcmp(rd_kafka_mock_cluster_bootstraps(mc), expected) != 0) {
        weir_log_error("librdkafka's mock cluster did not take the listeners for --host/--port "
                       "(it listens on %s, expected %s); this librdkafka (%s) binds its "
                       "brokers differently, so only --port 0 --host 127.0.0.1 works with it",
                       rd_kafka_mock_cluster_bootstraps(mc), expected, rd_kafka_version_str());
        rd_kafka_mock_cluster_destroy(mc);
        fixed_close_all();
        return NULL;
    }
    fixed.nfds = fixed.next = 0;
    return mc;
}

/* Kafka protocol ApiKeys (the mock's own enum is not public). */
#define API_LIST_OFFSETS 2
#define API_METADATA     3

/* Narrows two API version ranges that the 2.0.2 mock gets wrong; clients
 * negotiate down to them through ApiVersions (see the essay at the top). */
static int
apiversions_fix(rd_kafka_mock_cluster_t *mc)
{
    rd_kafka_resp_err_t err;

    err = rd_kafka_mock_set_apiversion(mc, API_METADATA, 0, 4);
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
        err = rd_kafka_mock_set_apiversion(mc, API_LIST_OFFSETS, 0, 3);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        weir_log_error("cannot set the mock cluster's API versions: %s", rd_kafka_err2str(err));
        return -1;
    }
    return 0;
}

static int
topics_create(rd_kafka_mock_cluster_t *mc, const broker_opts_t *o)
{
    int rf = o->brokers < 3 ? o->brokers : 3;

    for (int i = 0; i < o->ntopics; i++) {
        const topic_spec_t *t = &o->topics[i];
        int parts = t->partitions > 0 ? t->partitions : o->partitions;
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, t->name, parts, rf);

        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            weir_log_error("cannot create topic '%s' with %d partitions: %s",
                           t->name, parts, rd_kafka_err2str(err));
            return -1;
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    broker_opts_t *o;
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mc = NULL;
    sigset_t stop_set;
    pid_t parent = getppid();
    int sig = 0, rc = EXIT_FAIL, pr;

    weir_log_init("weir-kafka", WEIR_LOG_INFO);
    o = calloc(1, sizeof(*o));
    if (o == NULL) {
        fprintf(stderr, "weir-kafka: out of memory\n");
        return EXIT_FAIL;
    }
    pr = parse_args(argc, argv, o);
    if (pr != 0) {
        free(o);
        return pr > 0 ? EXIT_OK : EXIT_USAGE;
    }

    /* Before any thread exists, so that librdkafka's threads inherit it. */
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (o->exit_with_parent) {
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0) {
            weir_log_error("prctl(PR_SET_PDEATHSIG): %s", strerror(errno));
            goto out;
        }
        if (getppid() != parent) {
            weir_log_info("the parent exited before start-up; stopping");
            rc = EXIT_OK;
            goto out;
        }
    }

    rk = bookkeeping_handle_create();
    if (rk == NULL)
        goto out;
    mc = cluster_create(rk, o);
    if (mc == NULL)
        goto out;
    if (apiversions_fix(mc) < 0 || topics_create(mc, o) < 0)
        goto out;

    weir_log_info("mock Kafka cluster (librdkafka %s), %d broker(s) at %s; %d topic(s) created "
                  "with %d partitions unless given; other topics are created on first use by a "
                  "producer, with %d partitions. Limits: %s",
                  rd_kafka_version_str(), o->brokers, rd_kafka_mock_cluster_bootstraps(mc),
                  o->ntopics, o->partitions, MOCK_AUTO_PARTITIONS, LIMITS_TEXT);
    printf("bootstrap: %s\n", rd_kafka_mock_cluster_bootstraps(mc));
    if (fflush(stdout) != 0) {
        weir_log_error("cannot write the bootstrap line: %s", strerror(errno));
        goto out;
    }

    for (;;) {
        if (sigwait(&stop_set, &sig) == 0)
            break;
    }
    weir_log_info("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    rc = EXIT_OK;

out:
    if (mc != NULL)
        rd_kafka_mock_cluster_destroy(mc);
    if (rk != NULL)
        rd_kafka_destroy(rk);
    free(o);
    return rc;
}
