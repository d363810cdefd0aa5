/* tests/kafka/test_gen.c -- weir-gen against a real weir-kafka.
 *
 * weir-gen produces the seeds' datasets; a plain librdkafka consumer reads
 * every partition back from the beginning. The records must arrive exactly
 * (count, keys, values equal to what --print computes), be well-formed
 * except for the every-K-th malformed ones, keep an account's transactions
 * in one partition (the one its flag lands in), and be the same for the
 * same seed.
 *
 * Topics are named through kh_topic() (T() below), so the cases also run
 * against an external cluster (WEIR_TEST_KAFKA_BOOTSTRAP, kafka_harness.h);
 * the partition counts asked of the broker come back from kh_partitions().
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "kafka_harness.h"

#define FIRST_ACCOUNT 1000000001LL

static kh_broker_t broker;

/* The topic as the broker knows it (see kafka_harness.h). */
#define T(name) kh_topic(&broker, name)

static int
teardown(void **state)
{
    kh_stop_all();
    return 0;
}

/* ---- helpers -------------------------------------------------------------- */

/* Runs weir-gen with args (NULL-terminated) and expects exit 0. The caller
 * frees r. */
static void
gen_ok(kh_run_t *r, const char *const *args)
{
    const char *argv[40] = { kh_bin("weir-gen") };
    int n = 1;

    for (int i = 0; args[i] != NULL && n < 39; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    kh_run(r, argv, 50000);
    if (r->status != 0)
        fail_msg("weir-gen exited %d: %s", r->status, r->err);
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The topic's records as sorted "KEY\tVALUE" strings (owned, free each). */
static char **
keyed_lines(const kh_topic_t *t)
{
    char **v = calloc(t->n + 1, sizeof(char *));

    assert_non_null(v);
    for (size_t i = 0; i < t->n; i++) {
        size_t len = t->recs[i].key_len + 1 + t->recs[i].value_len + 1;

        v[i] = malloc(len);
        assert_non_null(v[i]);
        snprintf(v[i], len, "%s\t%s", t->recs[i].key, t->recs[i].value);
    }
    qsort(v, t->n, sizeof(char *), cmp_str);
    return v;
}

static void
free_lines(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Asserts the topic holds exactly the lines of `weir-gen ... --print --print-keys`. */
static void
assert_topic_equals_print(const kh_topic_t *t, kh_run_t *printed)
{
    char **lines, **got;
    size_t n = kh_lines(printed->out, &lines);

    assert_int_equal(n, t->n);
    qsort(lines, n, sizeof(char *), cmp_str);
    got = keyed_lines(t);
    for (size_t i = 0; i < n; i++)
        if (strcmp(lines[i], got[i]) != 0)
            fail_msg("record %zu differs:\n printed  %s\n consumed %s", i, lines[i], got[i]);
    free(lines);
    free_lines(got, t->n);
}

static bool
matches(const char *re, const char *s)
{
    regex_t rx;
    bool ok;

    assert_int_equal(regcomp(&rx, re, REG_EXTENDED | REG_NOSUB), 0);
    ok = regexec(&rx, s, 0, NULL, 0) == 0;
    regfree(&rx);
    return ok;
}

#define DATE_RE "[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}"

static const char *const tx_types[] = {
    "Grocery_Store", "Gas_Station", "Shopping_Mall", "City_Services",
    "HealthCare_Service", "Food and Beverage", "Others",
};

/* Checks one well-formed transaction value and its key; returns the account. */
static long long
check_transaction(const char *key, const char *value, long long accounts, char txid_out[17])
{
    json_error_t jerr;
    json_t *v = json_loads(value, 0, &jerr);
    json_t *f;
    long long account;
    const char *s;
    char expect_key[128], expect_customer[16];
    bool type_ok = false;
    double amount;

    if (v == NULL)
        fail_msg("not JSON: %s (%s)", value, jerr.text);
    assert_int_equal(json_object_size(v), 7);
    f = json_object_get(v, "account_id");
    assert_true(json_is_integer(f));
    account = json_integer_value(f);
    assert_true(account >= FIRST_ACCOUNT && account < FIRST_ACCOUNT + accounts);
    snprintf(expect_customer, sizeof(expect_customer), "C%09lld", account - 1000000000LL);
    assert_string_equal(json_string_value(json_object_get(v, "customer_id")), expect_customer);
    s = json_string_value(json_object_get(v, "merchant_type"));
    assert_non_null(s);
    assert_true(strcmp(s, "Online") == 0 || strcmp(s, "In Store") == 0);
    s = json_string_value(json_object_get(v, "transaction_id"));
    assert_non_null(s);
    assert_true(matches("^[0-9a-f]{16}$", s));
    strcpy(txid_out, s);
    s = json_string_value(json_object_get(v, "transaction_type"));
    assert_non_null(s);
    for (size_t i = 0; i < sizeof(tx_types) / sizeof(tx_types[0]); i++)
        type_ok |= strcmp(s, tx_types[i]) == 0;
    assert_true(type_ok);
    f = json_object_get(v, "transaction_amount");
    assert_true(json_is_real(f));
    amount = json_real_value(f);
    assert_true(amount >= 1.0 && amount <= 5000.0);
    assert_true(matches("\"transaction_amount\":[0-9]+\\.[0-9]{2},", value));
    s = json_string_value(json_object_get(v, "transaction_date"));
    assert_non_null(s);
    assert_true(matches("^" DATE_RE "$", s));

    snprintf(expect_key, sizeof(expect_key), "{\"account_id\":%lld,\"transaction_id\":\"%s\"}",
             account, txid_out);
    assert_string_equal(key, expect_key);
    json_decref(v);
    return account;
}

static int
cmp_txid(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* ---- tests ------------------------------------------------------------------ */

static void
test_gen_transactions_arrive_exactly_with_their_keys(void **state)
{
    kh_run_t r, printed;
    kh_topic_t t;
    int32_t partition_of[50];
    char (*txids)[17], summary[512];

    kh_broker_start(&broker, (const char *[]){ "--topic", "transactions", NULL });
    gen_ok(&r, (const char *[]){ "transactions", "--bootstrap", broker.bootstrap, "--topic",
                                 T("transactions"), "--count", "3000", "--accounts", "50",
                                 "--seed", "7", NULL });
    /* weir-kafka: 16, its default for a named topic */
    snprintf(summary, sizeof(summary), "3000 records (0 malformed) to topic '%s' "
             "(%d partitions)", T("transactions"), kh_partitions(&broker, "transactions"));
    assert_non_null(strstr(r.err, summary));
    kh_run_free(&r);

    kh_topic_read(broker.bootstrap, T("transactions"), 20000, &t);
    assert_int_equal(t.partitions, kh_partitions(&broker, "transactions"));
    assert_int_equal(t.n, 3000);

    for (int a = 0; a < 50; a++)
        partition_of[a] = -1;
    txids = calloc(t.n, sizeof(*txids));
    assert_non_null(txids);
    for (size_t i = 0; i < t.n; i++) {
        long long account = check_transaction(t.recs[i].key, t.recs[i].value, 50, txids[i]);
        int32_t *p = &partition_of[account - FIRST_ACCOUNT];

        if (*p < 0)
            *p = t.recs[i].partition;
        else if (*p != t.recs[i].partition)
            fail_msg("account %lld in partitions %d and %d", account, *p, t.recs[i].partition);
    }
    qsort(txids, t.n, sizeof(*txids), cmp_txid);
    for (size_t i = 1; i < t.n; i++)
        assert_string_not_equal(txids[i - 1], txids[i]);          /* ids never repeat */
    free(txids);

    gen_ok(&printed, (const char *[]){ "transactions", "--print", "--print-keys", "--count",
                                       "3000", "--accounts", "50", "--seed", "7", NULL });
    assert_topic_equals_print(&t, &printed);
    kh_run_free(&printed);
    kh_topic_free(&t);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

static void
test_gen_same_seed_produces_identical_records(void **state)
{
    kh_topic_t a, b, c;
    kh_run_t r;
    size_t same = 0;

    kh_broker_start(&broker, (const char *[]){ "--topic", "a,b,c", NULL });
    gen_ok(&r, (const char *[]){ "transactions", "--bootstrap", broker.bootstrap, "--topic",
                                 T("a"), "--count", "1000", "--seed", "11", NULL });
    kh_run_free(&r);
    gen_ok(&r, (const char *[]){ "transactions", "--bootstrap", broker.bootstrap, "--topic",
                                 T("b"), "--count", "1000", "--seed", "11", NULL });
    kh_run_free(&r);
    gen_ok(&r, (const char *[]){ "transactions", "--bootstrap", broker.bootstrap, "--topic",
                                 T("c"), "--count", "1000", "--seed", "12", NULL });
    kh_run_free(&r);

    kh_topic_read(broker.bootstrap, T("a"), 20000, &a);
    kh_topic_read(broker.bootstrap, T("b"), 20000, &b);
    kh_topic_read(broker.bootstrap, T("c"), 20000, &c);
    assert_int_equal(a.n, 1000);
    assert_int_equal(b.n, 1000);
    assert_int_equal(c.n, 1000);
    /* Same partition, same offset, same key, same value. */
    for (size_t i = 0; i < a.n; i++) {
        assert_int_equal(a.recs[i].partition, b.recs[i].partition);
        assert_int_equal(a.recs[i].offset, b.recs[i].offset);
        assert_string_equal(a.recs[i].key, b.recs[i].key);
        assert_string_equal(a.recs[i].value, b.recs[i].value);
    }
    /* Another seed: other transaction ids everywhere. */
    for (size_t i = 0; i < a.n; i++)
        for (size_t j = 0; j < c.n; j++)
            same += strcmp(a.recs[i].key, c.recs[j].key) == 0;
    assert_int_equal(same, 0);
    kh_topic_free(&a);
    kh_topic_free(&b);
    kh_topic_free(&c);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

static void
test_gen_dates_follow_start_date_and_step(void **state)
{
    static const char *const want[] = {
        "2024-03-01 12:00:00.000000", "2024-03-01 12:00:00.250000",
        "2024-03-01 12:00:00.500000", "2024-03-01 12:00:00.750000",
    };
    kh_run_t r;
    char **lines;
    size_t n;

    gen_ok(&r, (const char *[]){ "transactions", "--print", "--count", "4", "--start-date",
                                 "2024-03-01 12:00:00", "--step", "250ms", NULL });
    n = kh_lines(r.out, &lines);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_loads(lines[i], 0, NULL);

        assert_non_null(v);
        assert_string_equal(json_string_value(json_object_get(v, "transaction_date")), want[i]);
        json_decref(v);
    }
    free(lines);
    kh_run_free(&r);

    gen_ok(&r, (const char *[]){ "flagged-accounts", "--print", "--start-date",
                                 "2023-12-31T23:00:00.5Z", "--step", "1h", NULL });
    assert_string_equal(r.out,
        "{\"account_id\":1000000001,\"flag_date\":\"2023-12-31 23:00:00.500000\"}\n"
        "{\"account_id\":1000000003,\"flag_date\":\"2024-01-01 00:00:00.500000\"}\n"
        "{\"account_id\":1000000005,\"flag_date\":\"2024-01-01 01:00:00.500000\"}\n"
        "{\"account_id\":1000000007,\"flag_date\":\"2024-01-01 02:00:00.500000\"}\n"
        "{\"account_id\":1000000009,\"flag_date\":\"2024-01-01 03:00:00.500000\"}\n");
    kh_run_free(&r);
}

/* The seed's accounts: 1000000001..1000000010, the odd ones flagged. Their
 * transactions land in the partition their flag lands in. */
static void
test_gen_flagged_accounts_are_the_odd_ids_in_their_transactions_partition(void **state)
{
    kh_topic_t flags, tx;
    kh_run_t r;
    int32_t flag_partition[10];
    size_t matched = 0;

    kh_broker_start(&broker, (const char *[]){ "--topic", "flagged-accounts,transactions", NULL });
    gen_ok(&r, (const char *[]){ "flagged-accounts", "--bootstrap", broker.bootstrap, "--topic",
                                 T("flagged-accounts"), NULL });
    kh_run_free(&r);
    gen_ok(&r, (const char *[]){ "transactions", "--bootstrap", broker.bootstrap, "--topic",
                                 T("transactions"), "--count", "500", NULL });
    kh_run_free(&r);

    kh_topic_read(broker.bootstrap, T("flagged-accounts"), 20000, &flags);
    assert_int_equal(flags.n, 5);
    for (int a = 0; a < 10; a++)
        flag_partition[a] = -1;
    for (size_t i = 0; i < flags.n; i++) {
        json_t *v = json_loads(flags.recs[i].value, 0, NULL);
        long long account;
        char key[64];

        assert_non_null(v);
        assert_int_equal(json_object_size(v), 2);
        account = json_integer_value(json_object_get(v, "account_id"));
        assert_true(account >= FIRST_ACCOUNT && account <= FIRST_ACCOUNT + 9);
        assert_int_equal((account - FIRST_ACCOUNT) % 2, 0);       /* 1000000001, ...03, ... */
        assert_int_equal(flag_partition[account - FIRST_ACCOUNT], -1);   /* once each */
        flag_partition[account - FIRST_ACCOUNT] = flags.recs[i].partition;
        snprintf(key, sizeof(key), "{\"account_id\":%lld}", account);
        assert_string_equal(flags.recs[i].key, key);
        assert_true(matches("^" DATE_RE "$",
                            json_string_value(json_object_get(v, "flag_date"))));
        json_decref(v);
    }

    kh_topic_read(broker.bootstrap, T("transactions"), 20000, &tx);
    assert_int_equal(tx.n, 500);
    for (size_t i = 0; i < tx.n; i++) {
        char txid[17];
        long long account = check_transaction(tx.recs[i].key, tx.recs[i].value, 10, txid);
        int32_t fp = flag_partition[account - FIRST_ACCOUNT];

        if (fp >= 0) {
            assert_int_equal(tx.recs[i].partition, fp);
            matched++;
        }
    }
    assert_true(matched > 150);               /* about half the transactions */
    kh_topic_free(&flags);
    kh_topic_free(&tx);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

static void
test_gen_flagged_share_flags_exactly_that_many(void **state)
{
    kh_run_t r, other;
    char **lines;
    size_t n;
    long long prev = 0;
    bool differs = false;

    gen_ok(&r, (const char *[]){ "flagged-accounts", "--print", "--accounts", "1000",
                                 "--flagged-share", "0.3", "--seed", "5", NULL });
    gen_ok(&other, (const char *[]){ "flagged-accounts", "--print", "--accounts", "1000",
                                     "--flagged-share", "0.3", "--seed", "6", NULL });
    differs = strcmp(r.out, other.out) != 0;
    n = kh_lines(r.out, &lines);
    assert_int_equal(n, 300);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_loads(lines[i], 0, NULL);
        long long account;

        assert_non_null(v);
        account = json_integer_value(json_object_get(v, "account_id"));
        assert_true(account > prev);                     /* ascending, distinct */
        assert_true(account >= FIRST_ACCOUNT && account < FIRST_ACCOUNT + 1000);
        prev = account;
        json_decref(v);
    }
    free(lines);
    assert_true(differs);                                /* the seed picks them */
    kh_run_free(&r);
    kh_run_free(&other);

    gen_ok(&r, (const char *[]){ "flagged-accounts", "--print", "--accounts", "7",
                                 "--flagged-share", "1", NULL });
    n = kh_lines(r.out, &lines);
    assert_int_equal(n, 7);
    free(lines);
    kh_run_free(&r);
    gen_ok(&r, (const char *[]){ "flagged-accounts", "--print", "--accounts", "7",
                                 "--flagged-share", "0", NULL });
    assert_int_equal(r.out_len, 0);
    kh_run_free(&r);
    gen_ok(&r, (const char *[]){ "flagged-accounts", "--print", "--accounts", "1000",
                                 "--flagged-share", "0.3", "--seed", "5", "--count", "10", NULL });
    n = kh_lines(r.out, &lines);
    assert_int_equal(n, 10);
    free(lines);
    kh_run_free(&r);
}

static void
test_gen_malformed_records_replace_every_kth_in_turn(void **state)
{
    kh_run_t r, printed;
    kh_topic_t t;
    char **lines;
    size_t n;

    gen_ok(&printed, (const char *[]){ "transactions", "--print", "--count", "30",
                                       "--malformed", "5", NULL });
    n = kh_lines(printed.out, &lines);
    assert_int_equal(n, 30);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_loads(lines[i], 0, NULL);

        if ((i + 1) % 5 != 0) {
            assert_non_null(v);
            json_decref(v);
            continue;
        }
        switch (((i + 1) / 5 - 1) % 3) {
        case 0:                                           /* not JSON */
            assert_null(v);
            break;
        case 1:                                           /* a required field missing */
            assert_non_null(v);
            assert_int_equal(json_object_size(v), 6);
            assert_null(json_object_get(v, "transaction_date"));
            break;
        case 2:                                           /* a wrong type */
            assert_non_null(v);
            assert_int_equal(json_object_size(v), 7);
            assert_true(json_is_string(json_object_get(v, "transaction_amount")));
            break;
        }
        json_decref(v);
    }
    free(lines);
    kh_run_free(&printed);

    /* The broker gets exactly those records, keyed like the rest. */
    kh_broker_start(&broker, (const char *[]){ "--topic", "transactions", NULL });
    gen_ok(&r, (const char *[]){ "transactions", "--bootstrap", broker.bootstrap, "--topic",
                                 T("transactions"), "--count", "30", "--malformed", "5", NULL });
    assert_non_null(strstr(r.err, "30 records (6 malformed)"));
    kh_run_free(&r);
    kh_topic_read(broker.bootstrap, T("transactions"), 20000, &t);
    gen_ok(&printed, (const char *[]){ "transactions", "--print", "--print-keys", "--count",
                                       "30", "--malformed", "5", NULL });
    assert_topic_equals_print(&t, &printed);
    for (size_t i = 0; i < t.n; i++)
        assert_true(matches("^\\{\"account_id\":[0-9]+,\"transaction_id\":\"[0-9a-f]{16}\"\\}$",
                            t.recs[i].key));
    kh_run_free(&printed);
    kh_topic_free(&t);
    assert_int_equal(kh_broker_stop(&broker), 0);

    /* The other datasets' malformations. */
    gen_ok(&printed, (const char *[]){ "stocks", "--print", "--count", "3", "--malformed", "1",
                                       NULL });
    n = kh_lines(printed.out, &lines);
    assert_int_equal(n, 3);
    assert_null(json_loads(lines[0], 0, NULL));
    assert_true(matches("^\\{\"event_time\":\"" DATE_RE "\",\"ticker\":\"[A-Z]+\"\\}$", lines[1]));
    assert_true(matches("\"price\":\"n/a\"\\}$", lines[2]));
    free(lines);
    kh_run_free(&printed);
    gen_ok(&printed, (const char *[]){ "flagged-accounts", "--print", "--malformed", "1", NULL });
    n = kh_lines(printed.out, &lines);
    assert_int_equal(n, 5);
    assert_null(json_loads(lines[0], 0, NULL));
    assert_string_equal(lines[1], "{\"account_id\":1000000003}");
    assert_true(matches("^\\{\"account_id\":\"acct-1000000005\",\"flag_date\":\"" DATE_RE
                        "\"\\}$", lines[2]));
    free(lines);
    kh_run_free(&printed);
}

static void
test_gen_stocks_are_keyed_by_ticker(void **state)
{
    static const char *const tickers[] = { "AAPL", "AMZN", "MSFT", "INTC", "TBV" };
    int32_t partition_of[5] = { -1, -1, -1, -1, -1 };
    kh_run_t r;
    kh_topic_t t;

    kh_broker_start(&broker, (const char *[]){ "--topic", "stocks", NULL });
    gen_ok(&r, (const char *[]){ "stocks", "--bootstrap", broker.bootstrap, "--topic",
                                 T("stocks"), "--count", "500", NULL });
    kh_run_free(&r);
    kh_topic_read(broker.bootstrap, T("stocks"), 20000, &t);
    assert_int_equal(t.n, 500);
    for (size_t i = 0; i < t.n; i++) {
        json_t *v = json_loads(t.recs[i].value, 0, NULL);
        const char *ticker;
        char key[64];
        int k = -1;
        double price;

        assert_non_null(v);
        assert_int_equal(json_object_size(v), 3);
        ticker = json_string_value(json_object_get(v, "ticker"));
        assert_non_null(ticker);
        for (int j = 0; j < 5; j++)
            if (strcmp(ticker, tickers[j]) == 0)
                k = j;
        assert_true(k >= 0);
        snprintf(key, sizeof(key), "{\"ticker\":\"%s\"}", ticker);
        assert_string_equal(t.recs[i].key, key);
        if (partition_of[k] < 0)
            partition_of[k] = t.recs[i].partition;
        assert_int_equal(t.recs[i].partition, partition_of[k]);
        assert_true(json_is_real(json_object_get(v, "price")));
        price = json_real_value(json_object_get(v, "price"));
        assert_true(price >= 0 && price <= 100);
        assert_true(matches("\"price\":[0-9]+\\.[0-9]{2}\\}$", t.recs[i].value));
        assert_true(matches("^" DATE_RE "$", json_string_value(json_object_get(v, "event_time"))));
        json_decref(v);
    }
    for (int j = 0; j < 5; j++)
        assert_true(partition_of[j] >= 0);               /* every ticker occurs */
    kh_topic_free(&t);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

/* A topic nobody named is auto-created by the broker (4 partitions) and the
 * generator spreads over what the broker reports. */
static void
test_gen_uses_the_partitions_of_an_auto_created_topic(void **state)
{
    kh_run_t r;
    kh_topic_t t;
    bool seen[4] = { false };

    KH_SKIP_IF_EXTERNAL("it relies on weir-kafka auto-creating a topic with the mock's 4 "
                        "partitions; a cluster's auto.create.topics.enable and num.partitions "
                        "are its own");
    kh_broker_start(&broker, NULL);
    gen_ok(&r, (const char *[]){ "transactions", "--bootstrap", broker.bootstrap, "--topic",
                                 "fresh", "--count", "400", NULL });
    assert_non_null(strstr(r.err, "to topic 'fresh' (4 partitions)"));
    kh_run_free(&r);
    kh_topic_read(broker.bootstrap, "fresh", 20000, &t);
    assert_int_equal(t.partitions, 4);
    assert_int_equal(t.n, 400);
    for (size_t i = 0; i < t.n; i++)
        seen[t.recs[i].partition] = true;
    assert_true(seen[0] + seen[1] + seen[2] + seen[3] >= 2);
    kh_topic_free(&t);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

static void
test_gen_rate_paces_the_records(void **state)
{
    kh_run_t r;
    kh_topic_t t;

    kh_broker_start(&broker, (const char *[]){ "--topic", "paced:2", NULL });
    gen_ok(&r, (const char *[]){ "stocks", "--bootstrap", broker.bootstrap, "--topic",
                                 T("paced"), "--count", "60", "--rate", "100", NULL });
    /* Record 59 is due 0.59 s after record 0. */
    assert_true(r.seconds >= 0.55);
    kh_run_free(&r);
    kh_topic_read(broker.bootstrap, T("paced"), 20000, &t);
    assert_int_equal(t.n, 60);
    kh_topic_free(&t);
    assert_int_equal(kh_broker_stop(&broker), 0);
}

static void
test_gen_unreachable_broker_exits_1_with_the_reason(void **state)
{
    char bootstrap[64];
    kh_run_t r;

    snprintf(bootstrap, sizeof(bootstrap), "127.0.0.1:%d", kh_free_port(1));
    kh_run(&r, (const char *[]){ kh_bin("weir-gen"), "transactions", "--bootstrap", bootstrap,
                                 "--count", "10", "--timeout", "2", NULL }, 30000);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "cannot get the partitions of topic 'transactions'"));
    assert_true(r.seconds < 15);
    kh_run_free(&r);
}

static void
test_gen_rejects_bad_arguments_with_exit_2(void **state)
{
    static const struct { const char *args[6]; const char *message; } cases[] = {
        { { "--print", NULL }, "which dataset?" },
        { { "orders", "--print", NULL }, "unknown dataset 'orders'" },
        { { "stocks", NULL }, "--bootstrap HOST:PORT is required" },
        { { "stocks", "--print", "--count", "-1", NULL }, "--count '-1'" },
        { { "stocks", "--print", "--rate", "fast", NULL }, "--rate 'fast'" },
        { { "stocks", "--print", "--step", "5", NULL }, "--step '5'" },
        { { "stocks", "--print", "--start-date", "2024-02-30", NULL }, "--start-date '2024-02-30'" },
        { { "stocks", "--print", "--accounts", "0", NULL }, "--accounts '0'" },
        { { "flagged-accounts", "--print", "--flagged-share", "1.5", NULL }, "--flagged-share '1.5'" },
        { { "flagged-accounts", "--print", "--count", "6", NULL }, "only 5 of the 10 accounts" },
        { { "stocks", "--print", "-X", "nonsense", NULL }, "expected PROPERTY=VALUE" },
        { { "stocks", "--bootstrap", "x:1", "-X", "no.such.property=1", NULL }, "no.such.property" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *argv[8] = { kh_bin("weir-gen") };
        kh_run_t r;

        for (int k = 0; cases[i].args[k] != NULL; k++)
            argv[k + 1] = cases[i].args[k];
        kh_run(&r, argv, 10000);
        if ((r.status != 2 && r.status != 1) || strstr(r.err, cases[i].message) == NULL)
            fail_msg("case %zu: status %d, stderr '%s' (wanted '%s')", i, r.status, r.err,
                     cases[i].message);
        /* Usage errors are 2; a property librdkafka refuses is a failure (1). */
        assert_int_equal(r.status, i == 11 ? 1 : 2);
        kh_run_free(&r);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_gen_transactions_arrive_exactly_with_their_keys, teardown),
        cmocka_unit_test_teardown(test_gen_same_seed_produces_identical_records, teardown),
        cmocka_unit_test_teardown(test_gen_dates_follow_start_date_and_step, teardown),
        cmocka_unit_test_teardown(test_gen_flagged_accounts_are_the_odd_ids_in_their_transactions_partition, teardown),
        cmocka_unit_test_teardown(test_gen_flagged_share_flags_exactly_that_many, teardown),
        cmocka_unit_test_teardown(test_gen_malformed_records_replace_every_kth_in_turn, teardown),
        cmocka_unit_test_teardown(test_gen_stocks_are_keyed_by_ticker, teardown),
        cmocka_unit_test_teardown(test_gen_uses_the_partitions_of_an_auto_created_topic, teardown),
        cmocka_unit_test_teardown(test_gen_rate_paces_the_records, teardown),
        cmocka_unit_test_teardown(test_gen_unreachable_broker_exits_1_with_the_reason, teardown),
        cmocka_unit_test_teardown(test_gen_rejects_bad_arguments_with_exit_2, teardown),
    };

    return cmocka_run_group_tests_name("kafka_gen", tests, NULL, NULL);
}
