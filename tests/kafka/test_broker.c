/* tests/kafka/test_broker.c -- weir-kafka as a real process.
 *
 * It prints its bootstrap line first, serves real Kafka clients (a plain
 * librdkafka producer and consumer here), creates the named topics with 16
 * partitions by default, lets clients auto-create others with the mock's 4,
 * listens on a fixed port when asked (and says so when the port is taken),
 * runs several brokers, keeps only ~5 MB per partition, and exits 0 on
 * SIGTERM and SIGINT.
 *
 * All of it is weir-kafka's own behaviour, so against an external cluster
 * (WEIR_TEST_KAFKA_BOOTSTRAP, see kafka_harness.h) every case is skipped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "kafka_harness.h"

static kh_broker_t broker;

static int
teardown(void **state)
{
    kh_stop_all();
    return 0;
}

/* Produces n small keyed records to topic with a plain librdkafka producer
 * (default partitioner) and waits for every delivery. */
static void
produce_plain(const char *bootstrap, const char *topic, int n, size_t value_size)
{
    char errstr[512], key[32];
    char *value = malloc(value_size + 1);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;

    assert_non_null(value);
    memset(value, 'v', value_size);
    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr,
                                       sizeof(errstr)), RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "acks", "all", errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    for (int i = 0; i < n; i++) {
        rd_kafka_resp_err_t err;

        snprintf(key, sizeof(key), "k%d", i);
        while ((err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                        RD_KAFKA_V_KEY(key, strlen(key)),
                                        RD_KAFKA_V_VALUE(value, value_size),
                                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                        RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 50);
        assert_int_equal(err, RD_KAFKA_RESP_ERR_NO_ERROR);
    }
    assert_int_equal(rd_kafka_flush(rk, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
    assert_int_equal(rd_kafka_outq_len(rk), 0);
    rd_kafka_destroy(rk);
    free(value);
}

static void
assert_bootstrap_shape(const char *bootstrap, int nbrokers)
{
    const char *p = bootstrap;

    for (int i = 0; i < nbrokers; i++) {
        unsigned port;
        int used = 0;

        assert_int_equal(strncmp(p, "127.0.0.1:", 10), 0);
        assert_int_equal(sscanf(p + 10, "%u%n", &port, &used), 1);
        assert_true(port > 0 && port < 65536);
        p += 10 + used;
        if (i + 1 < nbrokers) {
            assert_int_equal(*p, ',');
            p++;
        }
    }
    assert_int_equal(*p, '\0');
}

static void
test_broker_prints_bootstrap_line_and_exits_0_on_sigterm(void **state)
{
    kh_topic_t t;
    int brokers = 0;

    KH_SKIP_IF_EXTERNAL("it tests weir-kafka itself");

    kh_broker_start(&broker, NULL);
    assert_bootstrap_shape(broker.bootstrap, 1);
    produce_plain(broker.bootstrap, "hello", 10, 20);
    assert_int_equal(kh_topic_partitions(broker.bootstrap, "hello", false, &brokers), 4);
    assert_int_equal(brokers, 1);
    kh_topic_read(broker.bootstrap, "hello", 20000, &t);
    assert_int_equal(t.n, 10);
    kh_topic_free(&t);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

static void
test_broker_exits_0_on_sigint(void **state)
{
    KH_SKIP_IF_EXTERNAL("it tests weir-kafka itself");

    kh_broker_start(&broker, NULL);
    assert_int_equal(kh_broker_signal_stop(&broker, SIGINT), 0);
}

static void
test_broker_named_topics_get_16_partitions_by_default(void **state)
{
    KH_SKIP_IF_EXTERNAL("it tests weir-kafka itself");

    kh_broker_start(&broker, (const char *[]){ "--topic", "transactions,small:3",
                                               "--topic", "flagged-accounts", NULL });
    assert_int_equal(kh_topic_partitions(broker.bootstrap, "transactions", false, NULL), 16);
    assert_int_equal(kh_topic_partitions(broker.bootstrap, "flagged-accounts", false, NULL), 16);
    assert_int_equal(kh_topic_partitions(broker.bootstrap, "small", false, NULL), 3);
    /* Not named, not created: a consumer-style request does not create it. */
    assert_int_equal(kh_topic_partitions(broker.bootstrap, "other", false, NULL), -1);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

static void
test_broker_partitions_option_sets_the_named_topics_count(void **state)
{
    KH_SKIP_IF_EXTERNAL("it tests weir-kafka itself");

    kh_broker_start(&broker, (const char *[]){ "--partitions", "8", "--topic", "a,b:2", NULL });
    assert_int_equal(kh_topic_partitions(broker.bootstrap, "a", false, NULL), 8);
    assert_int_equal(kh_topic_partitions(broker.bootstrap, "b", false, NULL), 2);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

/* librdkafka 2.0.2's mock cluster hard-codes 4 partitions for topics it
 * creates on a Metadata request; docs/kafka.md says so. */
static void
test_broker_auto_created_topic_gets_the_mock_default_of_4(void **state)
{
    KH_SKIP_IF_EXTERNAL("it tests weir-kafka itself");

    kh_broker_start(&broker, (const char *[]){ "--partitions", "16", NULL });
    assert_int_equal(kh_topic_partitions(broker.bootstrap, "auto", true, NULL), 4);
    assert_int_equal(kh_topic_partitions(broker.bootstrap, "auto", false, NULL), 4);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

static void
test_broker_fixed_port_is_the_advertised_address(void **state)
{
    int port, brokers = 0;
    char portarg[16], expected[64];
    kh_topic_t t;

    KH_SKIP_IF_EXTERNAL("it tests weir-kafka itself");

    port = kh_free_port(2);
    snprintf(portarg, sizeof(portarg), "%d", port);
    kh_broker_start(&broker, (const char *[]){ "--port", portarg, "--brokers", "2",
                                               "--topic", "fixed:4", NULL });
    snprintf(expected, sizeof(expected), "127.0.0.1:%d,127.0.0.1:%d", port, port + 1);
    assert_string_equal(broker.bootstrap, expected);

    /* Bootstrapping from the second broker alone: the Metadata answer must
     * name both real addresses, and every partition must be reachable. */
    snprintf(expected, sizeof(expected), "127.0.0.1:%d", port + 1);
    assert_int_equal(kh_topic_partitions(expected, "fixed", false, &brokers), 4);
    assert_int_equal(brokers, 2);
    produce_plain(expected, "fixed", 200, 50);
    kh_topic_read(expected, "fixed", 20000, &t);
    assert_int_equal(t.n, 200);
    kh_topic_free(&t);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

static void
test_broker_port_in_use_fails_with_a_message(void **state)
{
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof(sin);
    char portarg[16], expected[64];
    kh_run_t r;
    int fd;

    KH_SKIP_IF_EXTERNAL("it tests weir-kafka itself");

    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    snprintf(portarg, sizeof(portarg), "%d", ntohs(sin.sin_port));

    kh_run(&r, (const char *[]){ kh_bin("weir-kafka"), "--port", portarg, NULL }, 20000);
    close(fd);
    assert_int_equal(r.status, 1);
    assert_int_equal(r.out_len, 0);              /* no bootstrap line */
    snprintf(expected, sizeof(expected), "cannot listen on 127.0.0.1:%s", portarg);
    assert_non_null(strstr(r.err, expected));
    assert_non_null(strstr(r.err, "Address already in use"));
    kh_run_free(&r);
}

static void
test_broker_three_brokers_serve_all_partitions(void **state)
{
    kh_topic_t t;
    int brokers = 0, per_partition[16] = { 0 };

    KH_SKIP_IF_EXTERNAL("it tests weir-kafka itself");

    kh_broker_start(&broker, (const char *[]){ "--brokers", "3", "--topic", "spread", NULL });
    assert_bootstrap_shape(broker.bootstrap, 3);
    assert_int_equal(kh_topic_partitions(broker.bootstrap, "spread", false, &brokers), 16);
    assert_int_equal(brokers, 3);
    produce_plain(broker.bootstrap, "spread", 1600, 30);
    kh_topic_read(broker.bootstrap, "spread", 20000, &t);
    assert_int_equal(t.n, 1600);
    for (size_t i = 0; i < t.n; i++)
        per_partition[t.recs[i].partition]++;
    for (int p = 0; p < 16; p++)
        assert_true(per_partition[p] > 0);   /* keyed records reach every partition */
    kh_topic_free(&t);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

/* A consumer that asks for offset 0 of partition 0 gets offset-out-of-range
 * (reported as an error, since auto.offset.reset is 'error'). */
static void
assert_fetch_from_0_is_out_of_range(const char *bootstrap, const char *topic)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t got = RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_t *rk;

    assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers", bootstrap, errstr,
                                       sizeof(errstr)), RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "group.id", "retention", errstr, sizeof(errstr)),
                     RD_KAFKA_CONF_OK);
    assert_int_equal(rd_kafka_conf_set(conf, "auto.offset.reset", "error", errstr,
                                       sizeof(errstr)), RD_KAFKA_CONF_OK);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = 0;
    assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(parts);
    for (int i = 0; i < 100 && got == RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);

        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
            fail_msg("read offset %lld, which should be gone", (long long)m->offset);
        got = m->err;
        if (strstr(rd_kafka_message_errstr(m), "out of range") == NULL &&
            strstr(rd_kafka_message_errstr(m), "OUT_OF_RANGE") == NULL)
            fail_msg("unexpected consumer error: %s", rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
    }
    assert_int_equal(got, RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

/* The documented retention: about the newest 5 MB per partition survive. */
static void
test_broker_keeps_only_about_5mb_per_partition(void **state)
{
    int64_t lo = -1, hi = -1;

    KH_SKIP_IF_EXTERNAL("it relies on the mock's retention of ~5 MB per partition");

    kh_broker_start(&broker, (const char *[]){ "--topic", "one:1", NULL });
    produce_plain(broker.bootstrap, "one", 8000, 1000);        /* ~8 MB */
    kh_watermarks(broker.bootstrap, "one", 0, &lo, &hi);
    assert_int_equal(hi, 8000);
    fprintf(stderr, "retention: low watermark %lld of 8000\n", (long long)lo);
    /* the mock drops whole record batches, so how many go depends on how
     * the producer batched them (3657 under ASan with a busy machine) */
    assert_true(lo > 2500);                  /* the oldest ~3 MB are gone */
    assert_true(lo < 4500);                  /* but ~4-5 MB are still there */
    assert_fetch_from_0_is_out_of_range(broker.bootstrap, "one");
    assert_int_equal(kh_broker_stop(&broker), 0);
}

static void
test_broker_exits_when_its_parent_exits(void **state)
{
    char script[1024];
    kh_run_t r;
    long pid;

    KH_SKIP_IF_EXTERNAL("it tests weir-kafka itself");

    /* A shell starts the broker in the background, prints its pid and exits. */
    snprintf(script, sizeof(script),
             "'%s' --exit-with-parent >/dev/null 2>&1 & echo $!; sleep 1",
             kh_bin("weir-kafka"));
    kh_run(&r, (const char *[]){ "/bin/sh", "-c", script, NULL }, 20000);
    assert_int_equal(r.status, 0);
    pid = strtol(r.out, NULL, 10);
    kh_run_free(&r);
    assert_true(pid > 1);
    for (int i = 0; i < 100; i++) {
        char path[64], buf[512] = "";
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
        f = fopen(path, "r");
        if (f == NULL)
            return;                          /* gone */
        if (fgets(buf, sizeof(buf), f) == NULL)
            buf[0] = '\0';
        fclose(f);
        {
            char *paren = strrchr(buf, ')');

            if (paren != NULL && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X'))
                return;                      /* exited, waiting to be reaped */
        }
        usleep(100000);
    }
    kill((pid_t)pid, SIGKILL);
    fail_msg("weir-kafka (pid %ld) still runs 10 s after its parent exited", pid);
}

static void
test_broker_rejects_bad_arguments_with_exit_2(void **state)
{
    static const struct { const char *args[4]; const char *message; } cases[] = {
        { { "--brokers", "0", NULL }, "--brokers '0': must be 1..32" },
        { { "--port", "70000", NULL }, "--port '70000': must be 0..65535" },
        { { "--partitions", "x", NULL }, "--partitions 'x'" },
        { { "--topic", "bad name", NULL }, "bad topic name 'bad name'" },
        { { "--topic", "t:0", NULL }, "partition count of 't' must be 1..10000" },
        { { "--topic", "a,a", NULL }, "topic 'a' named twice" },
        { { "--host", "::1", NULL }, "not an IPv4 address" },
        { { "--host", "0.0.0.0", NULL }, "give a concrete address" },
        { { "--bogus", NULL }, "unknown option '--bogus'" },
        { { "extra", NULL }, "unexpected argument 'extra'" },
    };

    KH_SKIP_IF_EXTERNAL("it tests weir-kafka itself");

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *argv[6] = { kh_bin("weir-kafka") };
        kh_run_t r;

        for (int k = 0; cases[i].args[k] != NULL; k++)
            argv[k + 1] = cases[i].args[k];
        kh_run(&r, argv, 10000);
        if (r.status != 2 || strstr(r.err, cases[i].message) == NULL)
            fail_msg("case %zu: status %d, stderr '%s' (wanted 2 and '%s')", i, r.status, r.err,
                     cases[i].message);
        assert_int_equal(r.out_len, 0);
        kh_run_free(&r);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_broker_prints_bootstrap_line_and_exits_0_on_sigterm, teardown),
        cmocka_unit_test_teardown(test_broker_exits_0_on_sigint, teardown),
        cmocka_unit_test_teardown(test_broker_named_topics_get_16_partitions_by_default, teardown),
        cmocka_unit_test_teardown(test_broker_partitions_option_sets_the_named_topics_count, teardown),
        cmocka_unit_test_teardown(test_broker_auto_created_topic_gets_the_mock_default_of_4, teardown),
        cmocka_unit_test_teardown(test_broker_fixed_port_is_the_advertised_address, teardown),
        cmocka_unit_test_teardown(test_broker_port_in_use_fails_with_a_message, teardown),
        cmocka_unit_test_teardown(test_broker_three_brokers_serve_all_partitions, teardown),
        cmocka_unit_test_teardown(test_broker_keeps_only_about_5mb_per_partition, teardown),
        cmocka_unit_test_teardown(test_broker_exits_when_its_parent_exits, teardown),
        cmocka_unit_test_teardown(test_broker_rejects_bad_arguments_with_exit_2, teardown),
    };

    return cmocka_run_group_tests_name("kafka_broker", tests, NULL, NULL);
}
