/* tests/cluster/test_join_files.c -- the fraud-detection join, end to end on
 * real processes, with files in place of Kafka topics.
 *
 * Transactions over 200 accounts; the odd accounts are flagged, each at its
 * own instant. The job joins transactions with flags on account_id (hash-
 * partitioned across 2 task managers, join state in RocksDB) and keeps the
 * transactions dated after their account's flag, exactly the seed's
 *   SELECT t.* ... ON t.account_id = a.account_id AND t.transaction_date > a.flag_date
 * The output must hold exactly the transaction ids the test computes itself:
 * none missing, none twice. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define N_TX       20000
#define N_ACCOUNTS 200
#define BASE_MS    1704067200000LL            /* 2024-01-01 00:00:00 UTC */

static const char job_yaml[] =
    "name: join-files\n"
    "parallelism: 2\n"
    "sources:\n"
    "  - name: transactions\n"
    "    kind: file\n"
    "    path: \"${TX}\"\n"
    "    schema: {account_id: int, transaction_id: string, transaction_amount: double,\n"
    "             transaction_date: timestamp}\n"
    "  - name: flagged_accounts\n"
    "    kind: file\n"
    "    path: \"${FLAGS}\"\n"
    "    schema: {account_id: int, flag_date: timestamp}\n"
    "operators:\n"
    "  - name: flagged_transactions\n"
    "    kind: join\n"
    "    inputs: [{from: transactions, as: t}, {from: flagged_accounts, as: a}]\n"
    "    key_by: account_id\n"
    "    where: t.transaction_date > a.flag_date\n"
    "    fields: [\"t.*\"]\n"
    "sinks:\n"
    "  - {name: out, kind: file, input: flagged_transactions, path: \"${OUT}\"}\n";

static long long
flag_minute(int account)
{
    return (long long)(account * 97) % N_TX;
}

static void
test_join_emits_exactly_the_transactions_after_their_flag(void **state)
{
    hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
    char tx[PATH_MAX], flags[PATH_MAX], out[PATH_MAX], jid[HC_JOB_ID_LEN + 1];
    size_t cap = (size_t)N_TX * 128;
    char *text = malloc(cap), *want = calloc(N_TX, 1);
    size_t len = 0;
    int nwant = 0, n;
    char **lines;
    json_t *job;

    (void)state;
    for (int i = 0; i < N_TX; i++) {
        int account = i % N_ACCOUNTS + 1;
        len += (size_t)snprintf(text + len, cap - len,
            "{\"account_id\": %d, \"transaction_id\": \"tx%06d\", \"transaction_amount\": %d.25, "
            "\"transaction_date\": %lld}\n", account, i, i % 1000, BASE_MS + (long long)i * 60000);
        if (account % 2 == 1 && i > flag_minute(account)) {
            want[i] = 1;
            nwant++;
        }
    }
    hc_write_file(c, "transactions.jsonl", text, tx);
    len = 0;
    for (int a = 1; a <= N_ACCOUNTS; a += 2)
        len += (size_t)snprintf(text + len, cap - len, "{\"account_id\": %d, \"flag_date\": %lld}\n",
                                a, BASE_MS + flag_minute(a) * 60000);
    hc_write_file(c, "flags.jsonl", text, flags);
    snprintf(out, sizeof(out), "%s/out", c->dir);

    hc_submit_ok(c, job_yaml, (const char *const[]){ "TX", tx, "FLAGS", flags, "OUT", out, NULL }, jid);
    job = hc_wait_job(c, jid, "FINISHED", 90000);
    assert_null(hc_job_failure(job));
    json_decref(job);

    lines = hc_read_lines(out, &n);
    for (int l = 0; l < n; l++) {
        const char *p = strstr(lines[l], "\"transaction_id\":\"tx");
        int id;
        if (p == NULL || sscanf(p + strlen("\"transaction_id\":\"tx"), "%d", &id) != 1 ||
            id < 0 || id >= N_TX)
            fail_msg("unexpected output line: %s", lines[l]);
        if (want[id] == 0)
            fail_msg("transaction tx%06d is not one of an account flagged before it: %s", id, lines[l]);
        if (want[id] == 2)
            fail_msg("transaction tx%06d emitted twice", id);
        want[id] = 2;
    }
    if (n != nwant)
        fail_msg("%d output rows, expected %d", n, nwant);
    for (int i = 0; i < N_TX; i++)
        if (want[i] == 1)
            fail_msg("transaction tx%06d is missing", i);
    hc_free_lines(lines, n);
    free(text);
    free(want);
    hc_stop(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_join_emits_exactly_the_transactions_after_their_flag,
                                  hc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
