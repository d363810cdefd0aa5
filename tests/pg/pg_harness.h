/* tests/pg/pg_harness.h -- a private PostgreSQL server for one test binary.
 *
 * The server is real: scripts/postgres.sh (from $WEIR_SOURCE_DIR) runs
 * initdb and pg_ctl in a fresh directory /tmp/weir-pgtest.XXXXXX on a free
 * loopback port, exactly as a person would start it:
 *
 *   static int setup(void **st) { pgh_start(); return 0; }     // once per binary
 *   ...
 *   pgh_exec("CREATE TABLE t (id bigint PRIMARY KEY, name text)");
 *   pgh_expect("SELECT id, name FROM t ORDER BY id",
 *              (const char *[]){ "1|a", "2|null", NULL });
 *   ... a sink's params: dsn: pgh_dsn()
 *
 * Nothing outlives the test binary: pgh_start() also spawns a guardian (a
 * shell in its own session, reading a pipe whose write end only this
 * process holds) that stops the server and removes the directory as soon as
 * the test process is gone, whether it returned, failed an assertion,
 * crashed or was killed by meson's timeout. pgh_stop() (registered with
 * atexit) hands over to the guardian and waits for it. Set WEIR_PG_KEEP=1
 * to keep the directory (the server is stopped all the same).
 *
 * Helpers that cannot do their job fail the running cmocka test with a
 * message; they return only on success.
 */
#ifndef WEIR_TESTS_PG_HARNESS_H
#define WEIR_TESTS_PG_HARNESS_H

#include <libpq-fe.h>

/* Starts the server (once per process; later calls do nothing). */
void pgh_start(void);
/* Stops the server and removes its directory; idempotent, also atexit. */
void pgh_stop(void);

/* "postgresql://USER@127.0.0.1:PORT/weir", valid after pgh_start. */
const char *pgh_dsn(void);
/* The server's directory (pgdata, postgres.log, postgres.env). */
const char *pgh_dir(void);

/* The harness's own connection (opened on first use, reopened when lost).
 * Borrowed. */
PGconn *pgh_conn(void);

/* Runs SQL (any number of statements, no parameters); fails the test with
 * the server's message on error. */
void pgh_exec(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Query results as text rows "v0|v1|..." (SQL NULL is "null"), in the
 * query's order. */
typedef struct pgh_rows {
    int    n;
    char **rows;
} pgh_rows_t;

void pgh_query(pgh_rows_t *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void pgh_rows_free(pgh_rows_t *r);
/* The single value of a one-row, one-column query, new ("null" for NULL). */
char *pgh_value(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* SELECT count(*) FROM table. */
long long pgh_count(const char *table);
/* Asserts the query returns exactly want (NULL-terminated), in order. */
void pgh_expect(const char *sql, const char *const *want);

#endif
