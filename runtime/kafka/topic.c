/* runtime/kafka/topic.c -- weir-topic, a small Kafka topic inspector.
 *
 *   weir-topic count --bootstrap B --topic T          records now in T (sum of
 *                                                     high - low watermarks)
 *   weir-topic read  --bootstrap B --topic T [--limit N] [--keys] [--headers]
 *                    [--from-end N]
 *   weir-topic offsets --bootstrap B --topic T [--group G]
 *
 * `read` prints values one per line (with --keys: key TAB value), partition
 * by partition from the first offset up to the high watermark seen at start,
 * then exits: it never waits for new records. --from-end N starts N records
 * before the end of each partition. `offsets` prints per partition the low
 * and high watermarks and, with --group, the group's committed offset and
 * lag -- the consumer lag of a running weir job, for example.
 *
 * It exists because the development machines have no kcat; any Kafka tool
 * works against weir-kafka the same way.
 */
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT_MS 10000

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: weir-topic count   --bootstrap B --topic T\n"
            "       weir-topic read    --bootstrap B --topic T [--limit N] [--from-end N]\n"
            "                          [--keys] [--headers]\n"
            "       weir-topic offsets --bootstrap B --topic T [--group G]\n");
}

static rd_kafka_t *
client(const char *bootstrap, const char *group)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    if (rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "group.id", group != NULL ? group : "weir-topic", errstr,
                          sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr)) ||
        rd_kafka_conf_set(conf, "enable.partition.eof", "true", errstr, sizeof(errstr))) {
        fprintf(stderr, "weir-topic: %s\n", errstr);
        exit(2);
    }
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "weir-topic: %s\n", errstr);
        exit(1);
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

static int
partitions(rd_kafka_t *rk, const char *topic)
{
    const struct rd_kafka_metadata *md;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, TIMEOUT_MS);
    int n;

    rd_kafka_topic_destroy(rkt);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "weir-topic: metadata: %s\n", rd_kafka_err2str(e));
        exit(1);
    }
    if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "weir-topic: topic '%s': %s\n", topic,
                rd_kafka_err2str(md->topic_cnt == 1 ? md->topics[0].err
                                                    : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART));
        exit(1);
    }
    n = md->topics[0].partition_cnt;
    rd_kafka_metadata_destroy(md);
    return n;
}

static void
watermarks(rd_kafka_t *rk, const char *topic, int p, int64_t *lo, int64_t *hi)
{
    rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(rk, topic, p, lo, hi, TIMEOUT_MS);

    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "weir-topic: %s[%d]: %s\n", topic, p, rd_kafka_err2str(e));
        exit(1);
    }
}

static void
print_escaped(const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = ((const unsigned char *)p)[i];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else
            putchar(c);
    }
}

static int
do_read(rd_kafka_t *rk, const char *topic, long long limit, long long from_end, bool keys,
        bool headers)
{
    int n = partitions(rk, topic), open = 0;
    int64_t *end = calloc((size_t)n, sizeof(*end));
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n);
    long long printed = 0;

    for (int p = 0; p < n; p++) {
        int64_t lo, hi;
        watermarks(rk, topic, p, &lo, &hi);
        end[p] = hi;
        if (hi <= lo)
            continue;
        int64_t start = from_end > 0 && hi - from_end > lo ? hi - from_end : lo;
        rd_kafka_topic_partition_list_add(list, topic, p)->offset = start;
        open++;
    }
    if (open > 0)
        rd_kafka_assign(rk, list);
    while (open > 0 && (limit < 0 || printed < limit)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, TIMEOUT_MS);
        if (m == NULL) {
            fprintf(stderr, "weir-topic: no record within %d ms\n", TIMEOUT_MS);
            break;
        }
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (m->offset >= end[m->partition] && end[m->partition] >= 0) {
                end[m->partition] = -1;
                open--;
            }
        } else if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "weir-topic: %s\n", rd_kafka_message_errstr(m));
        } else if (end[m->partition] >= 0 && m->offset < end[m->partition]) {
            if (keys) {
                if (m->key != NULL)
                    print_escaped(m->key, m->key_len);
                putchar('\t');
            }
            if (m->payload != NULL)
                print_escaped(m->payload, m->len);
            if (headers) {
                rd_kafka_headers_t *h = NULL;
                const char *name;
                const void *val;
                size_t len;
                if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR)
                    for (size_t i = 0; rd_kafka_header_get_all(h, i, &name, &val, &len) ==
                                       RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
                        printf("\t%s=", name);
                        print_escaped(val, len);
                    }
            }
            putchar('\n');
            printed++;
            if (m->offset + 1 >= end[m->partition]) {
                end[m->partition] = -1;
                open--;
            }
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_topic_partition_list_destroy(list);
    free(end);
    return 0;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "bootstrap", required_argument, NULL, 'b' },
        { "topic", required_argument, NULL, 't' },
        { "group", required_argument, NULL, 'g' },
        { "limit", required_argument, NULL, 'n' },
        { "from-end", required_argument, NULL, 'e' },
        { "keys", no_argument, NULL, 'k' },
        { "headers", no_argument, NULL, 'H' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *bootstrap = getenv("KAFKA_BOOTSTRAP"), *topic = NULL, *group = NULL, *cmd;
    long long limit = -1, from_end = 0;
    bool keys = false, headers = false;
    rd_kafka_t *rk;
    int c;

    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    cmd = argv[1];
    optind = 2;
    while ((c = getopt_long(argc, argv, "b:t:g:n:e:kHh", opts, NULL)) != -1) {
        switch (c) {
        case 'b': bootstrap = optarg; break;
        case 't': topic = optarg; break;
        case 'g': group = optarg; break;
        case 'n': limit = atoll(optarg); break;
        case 'e': from_end = atoll(optarg); break;
        case 'k': keys = true; break;
        case 'H': headers = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (bootstrap == NULL || topic == NULL) {
        fprintf(stderr, "weir-topic: --bootstrap (or $KAFKA_BOOTSTRAP) and --topic are required\n");
        usage(stderr);
        return 2;
    }
    rk = client(bootstrap, group);
    if (strcmp(cmd, "count") == 0) {
        int n = partitions(rk, topic);
        int64_t total = 0, lo, hi;
        for (int p = 0; p < n; p++) {
            watermarks(rk, topic, p, &lo, &hi);
            total += hi - lo;
        }
        printf("%" PRId64 "\n", total);
    } else if (strcmp(cmd, "read") == 0) {
        do_read(rk, topic, limit, from_end, keys, headers);
    } else if (strcmp(cmd, "offsets") == 0) {
        int n = partitions(rk, topic);
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(n);
        for (int p = 0; p < n; p++)
            rd_kafka_topic_partition_list_add(list, topic, p);
        if (group != NULL) {
            rd_kafka_resp_err_t e = rd_kafka_committed(rk, list, TIMEOUT_MS);
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
                fprintf(stderr, "weir-topic: committed offsets of '%s': %s\n", group,
                        rd_kafka_err2str(e));
                return 1;
            }
        }
        printf("%-10s %12s %12s%s\n", "PARTITION", "LOW", "HIGH",
               group != NULL ? "    COMMITTED          LAG" : "");
        for (int p = 0; p < n; p++) {
            int64_t lo, hi;
            watermarks(rk, topic, p, &lo, &hi);
            printf("%-10d %12" PRId64 " %12" PRId64, p, lo, hi);
            if (group != NULL) {
                int64_t off = list->elems[p].offset;
                if (off >= 0)
                    printf(" %12" PRId64 " %12" PRId64, off, hi - off);
                else
                    printf(" %12s %12s", "-", "-");
            }
            putchar('\n');
        }
        rd_kafka_topic_partition_list_destroy(list);
    } else {
        fprintf(stderr, "weir-topic: unknown command '%s'\n", cmd);
        usage(stderr);
        rd_kafka_destroy(rk);
        return 2;
    }
    rd_kafka_destroy(rk);
    return 0;
}
