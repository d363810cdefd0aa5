/* tests/pg/pg_harness.c -- see pg_harness.h. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pg_harness.h"

extern char **environ;

static bool   started;
static char   dir[PATH_MAX];
static char   dsn[512];
static char   script[PATH_MAX];
static int    guard_fd = -1;          /* write end of the guardian's pipe */
static pid_t  guard_pid;
static PGconn *conn;

/* Stops the server and removes the directory once its stdin reaches EOF,
 * that is once every holder of the pipe's write end (this process only:
 * the end is close-on-exec) is gone. $0 the script, $1 the directory, $2
 * "1" to keep it. */
static const char guardian_sh[] =
    "read -r _ || true\n"
    "\"$0\" stop --dir \"$1\" >/dev/null 2>&1\n"
    "[ \"$2\" = 1 ] && exit 0\n"
    "t=$(readlink \"$1/pgdata\" || true)\n"
    "case \"$t\" in /tmp/weir-pg.*) rm -rf \"$(dirname \"$t\")\" ;; esac\n"
    "rm -rf \"$1\"\n";

static char *
read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = calloc(1, (size_t)(n > 0 ? n : 0) + 1);
    if (buf != NULL && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)
        buf[0] = '\0';
    fclose(f);
    return buf;
}

static void
spawn_guardian(void)
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    const char *keep = getenv("WEIR_PG_KEEP");
    char *argv[] = { "sh", "-c", (char *)guardian_sh, script, dir,
                     (char *)(keep != NULL && strcmp(keep, "1") == 0 ? "1" : "0"), NULL };
    int fds[2], rc;

    if (pipe2(fds, O_CLOEXEC) != 0)
        fail_msg("pipe: %s", strerror(errno));
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[0], 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_init(&at);
    /* its own session: meson's timeout kills the test's process group, and
     * the guardian must outlive the test to clean up after it */
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID);
    rc = posix_spawn(&guard_pid, "/bin/sh", &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(fds[0]);
    if (rc != 0) {
        close(fds[1]);
        fail_msg("cannot start the guardian shell: %s", strerror(rc));
    }
    guard_fd = fds[1];
}

/* Runs "script start --dir dir", its output into dir/start.{out,err}. */
static int
run_start(void)
{
    posix_spawn_file_actions_t fa;
    char out[PATH_MAX + 16], errp[PATH_MAX + 16];
    char *argv[] = { script, "start", "--dir", dir, NULL };
    pid_t pid;
    int rc, status;

    snprintf(out, sizeof(out), "%s/start.out", dir);
    snprintf(errp, sizeof(errp), "%s/start.err", dir);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    rc = posix_spawn(&pid, script, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -rc;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -errno;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void
pgh_start(void)
{
    const char *src = getenv("WEIR_SOURCE_DIR");
    char path[PATH_MAX + 32], *env, *line;
    int rc;

    if (started)
        return;
    if (src == NULL)
        fail_msg("WEIR_SOURCE_DIR is not set (run the tests with meson test)");
    snprintf(script, sizeof(script), "%s/scripts/postgres.sh", src);
    if (access(script, X_OK) != 0)
        fail_msg("%s: %s", script, strerror(errno));
    snprintf(dir, sizeof(dir), "/tmp/weir-pgtest.XXXXXX");
    if (mkdtemp(dir) == NULL)
        fail_msg("mkdtemp: %s", strerror(errno));
    /* the server runs as user postgres when the tests run as root: it must
     * reach its directory */
    chmod(dir, 0755);
    spawn_guardian();
    started = true;
    atexit(pgh_stop);

    rc = run_start();
    if (rc != 0) {
        snprintf(path, sizeof(path), "%s/start.err", dir);
        env = read_file(path);
        fail_msg("scripts/postgres.sh start --dir %s failed (%d): %s", dir, rc,
                 env != NULL ? env : "");
    }
    snprintf(path, sizeof(path), "%s/postgres.env", dir);
    env = read_file(path);
    if (env == NULL || (line = strstr(env, "PG_DSN=")) == NULL)
        fail_msg("%s has no PG_DSN", path);
    line += 7;
    line[strcspn(line, "\n")] = '\0';
    snprintf(dsn, sizeof(dsn), "%s", line);
    free(env);
}

void
pgh_stop(void)
{
    struct timespec ts = { 0, 10 * 1000 * 1000 };
    int status;

    if (!started)
        return;
    started = false;
    if (conn != NULL) {
        PQfinish(conn);
        conn = NULL;
    }
    if (guard_fd >= 0) {
        close(guard_fd);                /* the guardian stops the server */
        guard_fd = -1;
    }
    /* pg_ctl stop -m fast takes well under a second; allow a minute */
    for (int i = 0; i < 6000; i++) {
        pid_t r = waitpid(guard_pid, &status, WNOHANG);
        if (r == guard_pid || (r < 0 && errno != EINTR))
            return;
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "pg_harness: the server in %s did not stop within 60 s\n", dir);
}

const char *
pgh_dsn(void)
{
    return dsn;
}

const char *
pgh_dir(void)
{
    return dir;
}

static void
quiet_cb(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

PGconn *
pgh_conn(void)
{
    if (!started)
        fail_msg("pgh_start() first");
    if (conn != NULL && PQstatus(conn) == CONNECTION_OK)
        return conn;
    if (conn != NULL)
        PQfinish(conn);
    conn = PQconnectdb(dsn);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
        fail_msg("cannot connect to %s: %s", dsn, conn ? PQerrorMessage(conn) : "out of memory");
    /* "table does not exist, skipping" and the like are not news */
    PQsetNoticeProcessor(conn, quiet_cb, NULL);
    return conn;
}

static char *
vformat(const char *fmt, va_list ap)
{
    char *s = NULL;

    if (vasprintf(&s, fmt, ap) < 0)
        fail_msg("out of memory");
    return s;
}

static PGresult *
run(const char *sql, ExecStatusType want)
{
    PGresult *res = PQexec(pgh_conn(), sql);
    ExecStatusType st = res != NULL ? PQresultStatus(res) : PGRES_FATAL_ERROR;

    if (st != want && !(want == PGRES_COMMAND_OK && st == PGRES_TUPLES_OK)) {
        static char msg[2048];
        snprintf(msg, sizeof(msg), "%s", res != NULL ? PQresultErrorMessage(res)
                                                     : PQerrorMessage(pgh_conn()));
        PQclear(res);
        fail_msg("SQL failed: %s\n  %s", msg, sql);
    }
    return res;
}

void
pgh_exec(const char *fmt, ...)
{
    va_list ap;
    char *sql;

    va_start(ap, fmt);
    sql = vformat(fmt, ap);
    va_end(ap);
    PQclear(run(sql, PGRES_COMMAND_OK));
    free(sql);
}

static void
vquery(pgh_rows_t *out, const char *fmt, va_list ap)
{
    char *sql = vformat(fmt, ap);
    PGresult *res = run(sql, PGRES_TUPLES_OK);
    int nr = PQntuples(res), nf = PQnfields(res);

    free(sql);
    out->n = nr;
    out->rows = calloc((size_t)nr + 1, sizeof(*out->rows));
    assert_non_null(out->rows);
    for (int r = 0; r < nr; r++) {
        size_t len = 1;
        char *row, *p;

        for (int f = 0; f < nf; f++)
            len += (PQgetisnull(res, r, f) ? 4 : (size_t)PQgetlength(res, r, f)) + 1;
        row = p = malloc(len);
        assert_non_null(row);
        for (int f = 0; f < nf; f++) {
            const char *v = PQgetisnull(res, r, f) ? "null" : PQgetvalue(res, r, f);
            size_t n = strlen(v);

            if (f > 0)
                *p++ = '|';
            memcpy(p, v, n);
            p += n;
        }
        *p = '\0';
        out->rows[r] = row;
    }
    PQclear(res);
}

void
pgh_query(pgh_rows_t *out, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vquery(out, fmt, ap);
    va_end(ap);
}

void
pgh_rows_free(pgh_rows_t *r)
{
    if (r->rows != NULL)
        for (int i = 0; i < r->n; i++)
            free(r->rows[i]);
    free(r->rows);
    r->rows = NULL;
    r->n = 0;
}

char *
pgh_value(const char *fmt, ...)
{
    pgh_rows_t r;
    va_list ap;
    char *v;

    va_start(ap, fmt);
    vquery(&r, fmt, ap);
    va_end(ap);
    if (r.n != 1)
        fail_msg("expected one row, got %d", r.n);
    v = r.rows[0];
    r.rows[0] = NULL;
    r.n = 0;
    pgh_rows_free(&r);
    return v;
}

long long
pgh_count(const char *table)
{
    char *v = pgh_value("SELECT count(*) FROM %s", table);
    long long n = strtoll(v, NULL, 10);

    free(v);
    return n;
}

void
pgh_expect(const char *sql, const char *const *want)
{
    pgh_rows_t r;
    int n = 0;
    bool ok;

    while (want[n] != NULL)
        n++;
    pgh_query(&r, "%s", sql);
    ok = r.n == n;
    for (int i = 0; ok && i < n; i++)
        ok = strcmp(r.rows[i], want[i]) == 0;
    if (!ok) {
        fprintf(stderr, "query: %s\n  got %d rows:\n", sql, r.n);
        for (int i = 0; i < r.n; i++)
            fprintf(stderr, "    %s\n", r.rows[i]);
        fprintf(stderr, "  want %d rows:\n", n);
        for (int i = 0; i < n; i++)
            fprintf(stderr, "    %s\n", want[i]);
        pgh_rows_free(&r);
        fail_msg("unexpected rows from: %s", sql);
    }
    pgh_rows_free(&r);
}
