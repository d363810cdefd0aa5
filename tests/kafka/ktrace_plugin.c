/* tests/kafka/ktrace_plugin.c -- a librdkafka plugin that traces the Kafka
 * protocol requests of the clients it is loaded into, for the transaction
 * tests (test_kafka_txn.c).
 *
 * Loaded like any plugin, through a client property, so the code under
 * test (the kafka sink) runs unchanged:
 *
 *   properties: {plugin.library.paths: /path/to/libktrace_plugin.so}
 *
 * Each event becomes one line appended to the file named by $WEIR_KTRACE
 * (read when the client is created; nothing is written without it):
 *
 *   <seq> new   <client> <txn-id>
 *   <seq> send  <client> <txn-id> <Api> v<version> b<broker> c<corr> <end>
 *   <seq> recv  <client> <txn-id> <Api> b<broker> <transport error>
 *   <seq> state <client> <txn-id> <transaction state entered>
 *
 * <seq> counts events of the process from 1, in file order (one lock
 * around numbering and the write); <client> numbers the clients in the
 * order they were created; <txn-id> is the client's transactional.id, "-"
 * for none. Every line goes out with one write() on an O_APPEND
 * descriptor.
 *
 * Responses are only good for "answered before" checks: librdkafka 2.0.2
 * calls on_response_received() twice for a request answered through a
 * reply queue (the transaction requests: once in the broker thread, again
 * when the reply is served) and passes 0 as its CorrId, so a response is
 * not matched to its request and is not counted.
 *
 * Commit or abort. on_request_sent() gives the ApiKey but not the request
 * body, so EndTxn's Committed flag is not visible there. librdkafka logs
 * every transaction state change at debug level ("eos"), synchronously,
 * before the request it leads to is made: the plugin turns "eos" debugging
 * on, takes those lines ("state" events), and labels each EndTxn with the
 * state its client was in: BeginCommit or CommittingTransaction -> commit,
 * BeginAbort or AbortingTransaction -> abort, anything else "?". The plugin
 * installs the log callback for that; log lines below debug level are
 * passed on to librdkafka's own printer (stderr), as without the plugin.
 *
 * The library is linked with -z nodelete (meson.build): librdkafka closes
 * it with the last configuration that names it, and unloading between two
 * sinks would restart the numbering. Client records live until the
 * process exits (a broker thread may still send or receive while its
 * client is being destroyed).
 */
#include <librdkafka/rdkafka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct kt_client {
    struct kt_client *next;
    const rd_kafka_t *rk;
    int               id;
    char              txn[256];
    char              path[1024];    /* $WEIR_KTRACE at creation, "" = off */
    char              state[32];     /* last transaction state entered */
} kt_client_t;

static pthread_mutex_t kt_mu = PTHREAD_MUTEX_INITIALIZER;
static kt_client_t    *kt_clients;   /* newest first */
static int             kt_nclients;
static long            kt_seq;

static const char *
api_name(int16_t key, char *buf, size_t cap)
{
    switch (key) {
    case 0:  return "Produce";
    case 1:  return "Fetch";
    case 2:  return "ListOffsets";
    case 3:  return "Metadata";
    case 8:  return "OffsetCommit";
    case 9:  return "OffsetFetch";
    case 10: return "FindCoordinator";
    case 11: return "JoinGroup";
    case 12: return "Heartbeat";
    case 13: return "LeaveGroup";
    case 14: return "SyncGroup";
    case 18: return "ApiVersion";
    case 22: return "InitProducerId";
    case 24: return "AddPartitionsToTxn";
    case 25: return "AddOffsetsToTxn";
    case 26: return "EndTxn";
    case 28: return "TxnOffsetCommit";
    default:
        snprintf(buf, cap, "Api%d", (int)key);
        return buf;
    }
}

/* Writes "<seq> <rest>\n" to c's trace file; kt_mu held. */
static void
emit_locked(const kt_client_t *c, const char *rest)
{
    char line[1400];
    int fd, n;

    if (c->path[0] == '\0')
        return;
    n = snprintf(line, sizeof(line), "%ld %s\n", ++kt_seq, rest);
    if (n <= 0 || (size_t)n >= sizeof(line))
        return;
    fd = open(c->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (write(fd, line, (size_t)n) != n)
        fprintf(stderr, "ktrace: short write to %s\n", c->path);
    close(fd);
}

/* The newest client record of rk (pointers are reused after destroy);
 * kt_mu held. */
static kt_client_t *
find_locked(const rd_kafka_t *rk)
{
    for (kt_client_t *c = kt_clients; c != NULL; c = c->next)
        if (c->rk == rk)
            return c;
    return NULL;
}

static rd_kafka_resp_err_t
on_request_sent(rd_kafka_t *rk, int sockfd, const char *brokername, int32_t brokerid,
                int16_t ApiKey, int16_t ApiVersion, int32_t CorrId, size_t size,
                void *ic_opaque)
{
    kt_client_t *c = ic_opaque;
    char rest[600], nb[16];
    const char *end = "";

    (void)rk;
    (void)sockfd;
    (void)brokername;
    (void)size;
    pthread_mutex_lock(&kt_mu);
    if (ApiKey == 26) {
        if (strcmp(c->state, "BeginCommit") == 0 ||
            strcmp(c->state, "CommittingTransaction") == 0)
            end = " commit";
        else if (strcmp(c->state, "BeginAbort") == 0 ||
                 strcmp(c->state, "AbortingTransaction") == 0)
            end = " abort";
        else
            end = " ?";
    }
    snprintf(rest, sizeof(rest), "send %d %s %s v%d b%d c%d%s", c->id, c->txn,
             api_name(ApiKey, nb, sizeof(nb)), (int)ApiVersion, (int)brokerid, (int)CorrId, end);
    emit_locked(c, rest);
    pthread_mutex_unlock(&kt_mu);
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

static rd_kafka_resp_err_t
on_response_received(rd_kafka_t *rk, int sockfd, const char *brokername, int32_t brokerid,
                     int16_t ApiKey, int16_t ApiVersion, int32_t CorrId, size_t size,
                     int64_t rtt, rd_kafka_resp_err_t err, void *ic_opaque)
{
    kt_client_t *c = ic_opaque;
    char rest[600], nb[16];

    (void)rk;
    (void)sockfd;
    (void)brokername;
    (void)ApiVersion;
    (void)CorrId;
    (void)size;
    (void)rtt;
    pthread_mutex_lock(&kt_mu);
    snprintf(rest, sizeof(rest), "recv %d %s %s b%d %s", c->id, c->txn,
             ApiKey >= 0 ? api_name(ApiKey, nb, sizeof(nb)) : "-", (int)brokerid,
             rd_kafka_err2name(err));
    emit_locked(c, rest);
    pthread_mutex_unlock(&kt_mu);
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* Debug lines give the transaction states; the rest is printed as usual. */
static void
on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    static const char change[] = "Transaction state change ";
    const char *p, *to;

    if (level < 7) {              /* below syslog LOG_DEBUG */
        rd_kafka_log_print(rk, level, fac, buf);
        return;
    }
    if (rk == NULL || strcmp(fac, "TXNSTATE") != 0 || (p = strstr(buf, change)) == NULL ||
        (to = strstr(p, " -> ")) == NULL)
        return;
    to += 4;
    pthread_mutex_lock(&kt_mu);
    kt_client_t *c = find_locked(rk);
    if (c != NULL) {
        char rest[400];
        size_t n = strcspn(to, " \n");
        if (n >= sizeof(c->state))
            n = sizeof(c->state) - 1;
        memcpy(c->state, to, n);
        c->state[n] = '\0';
        snprintf(rest, sizeof(rest), "state %d %s %s", c->id, c->txn, c->state);
        emit_locked(c, rest);
    }
    pthread_mutex_unlock(&kt_mu);
}

static rd_kafka_resp_err_t
on_new(rd_kafka_t *rk, const rd_kafka_conf_t *conf, void *ic_opaque, char *errstr,
       size_t errstr_size)
{
    kt_client_t *c = calloc(1, sizeof(*c));
    const char *path = getenv("WEIR_KTRACE");
    size_t sz = sizeof(c->txn);
    char rest[400];

    (void)ic_opaque;
    if (c == NULL) {
        snprintf(errstr, errstr_size, "ktrace: out of memory");
        return RD_KAFKA_RESP_ERR__FAIL;
    }
    c->rk = rk;
    if (rd_kafka_conf_get(conf, "transactional.id", c->txn, &sz) != RD_KAFKA_CONF_OK ||
        c->txn[0] == '\0')
        snprintf(c->txn, sizeof(c->txn), "-");
    snprintf(c->path, sizeof(c->path), "%s", path != NULL ? path : "");
    snprintf(c->state, sizeof(c->state), "Init");
    pthread_mutex_lock(&kt_mu);
    c->id = ++kt_nclients;
    c->next = kt_clients;
    kt_clients = c;
    snprintf(rest, sizeof(rest), "new %d %s", c->id, c->txn);
    emit_locked(c, rest);
    pthread_mutex_unlock(&kt_mu);
    /* the record is owned by the list: registered before any request */
    if (rd_kafka_interceptor_add_on_request_sent(rk, "ktrace", on_request_sent, c) != 0 ||
        rd_kafka_interceptor_add_on_response_received(rk, "ktrace", on_response_received, c) !=
            0) {
        snprintf(errstr, errstr_size, "ktrace: cannot add the request interceptors");
        return RD_KAFKA_RESP_ERR__FAIL;
    }
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* The plugin's entry point, called for every configuration object that
 * sets plugin.library.paths to this library (and for each copy of one). */
rd_kafka_resp_err_t conf_init(rd_kafka_conf_t *conf, void **plug_opaquep, char *errstr,
                              size_t errstr_size);

rd_kafka_resp_err_t
conf_init(rd_kafka_conf_t *conf, void **plug_opaquep, char *errstr, size_t errstr_size)
{
    char dbg[512] = "", want[600];
    size_t sz = sizeof(dbg);

    *plug_opaquep = NULL;
    if (rd_kafka_conf_get(conf, "debug", dbg, &sz) != RD_KAFKA_CONF_OK)
        dbg[0] = '\0';
    snprintf(want, sizeof(want), "%s%seos", dbg, dbg[0] != '\0' ? "," : "");
    if (strstr(dbg, "eos") == NULL &&
        rd_kafka_conf_set(conf, "debug", want, errstr, errstr_size) != RD_KAFKA_CONF_OK)
        return RD_KAFKA_RESP_ERR__INVALID_ARG;
    rd_kafka_conf_set_log_cb(conf, on_log);
    if (rd_kafka_conf_interceptor_add_on_new(conf, "ktrace", on_new, NULL) !=
        RD_KAFKA_RESP_ERR_NO_ERROR) {
        snprintf(errstr, errstr_size, "ktrace: cannot add the on_new interceptor");
        return RD_KAFKA_RESP_ERR__FAIL;
    }
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* At exit (the library is never unloaded before): no client is left. */
__attribute__((destructor)) static void
kt_unload(void)
{
    pthread_mutex_lock(&kt_mu);
    while (kt_clients != NULL) {
        kt_client_t *c = kt_clients;
        kt_clients = c->next;
        free(c);
    }
    pthread_mutex_unlock(&kt_mu);
}
