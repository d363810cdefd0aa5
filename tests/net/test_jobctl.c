/* tests/net/test_jobctl.c -- the jobctl binary against a canned REST server.
 *
 * A tiny server built on weir's HTTP server answers the REST paths jobctl
 * uses with canned JSON and records each request. Each test runs the real
 * jobctl (its path comes from $JOBCTL, set by meson) with posix_spawn, in a
 * controlled environment (TZ=UTC, no proxies), and checks its exit code,
 * stdout and stderr exactly, and what it sent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/net/http_server.h"

/* ---- the canned server ------------------------------------------------ */

#define MAX_ROUTES 8
#define MAX_SEEN   8

typedef struct {
    const char *method, *path;   /* path as decoded by the server */
    int         status;
    const char *body;
} route_t;

typedef struct {
    char *method, *path, *raw_path, *query, *body, *content_type;
} seen_t;

typedef struct {
    uv_loop_t           loop;
    uv_async_t          stop;
    uv_thread_t         thread;
    uv_mutex_t          mu;
    weir_http_server_t *srv;
    int                 port;
    char                url[64];
    route_t             routes[MAX_ROUTES];
    int                 nroutes;
    seen_t              seen[MAX_SEEN];
    int                 nseen;
    char                dir[64];          /* scratch directory */
} fixture_t;

static char *
dup_or_empty(const char *s)
{
    char *d = strdup(s != NULL ? s : "");

    assert_non_null(d);
    return d;
}

static void
handler(void *arg, const weir_http_request_t *req, weir_http_response_t *resp)
{
    fixture_t *f = arg;
    int i;

    uv_mutex_lock(&f->mu);
    if (f->nseen < MAX_SEEN) {
        seen_t *s = &f->seen[f->nseen++];

        s->method = dup_or_empty(req->method);
        s->path = dup_or_empty(req->path);
        s->raw_path = dup_or_empty(req->raw_path);
        s->query = dup_or_empty(req->query);
        s->body = dup_or_empty(req->body);
        s->content_type = dup_or_empty(weir_http_header(req, "content-type"));
    }
    for (i = 0; i < f->nroutes; i++) {
        const route_t *r = &f->routes[i];

        if (strcmp(r->method, req->method) == 0 && strcmp(r->path, req->path) == 0) {
            resp->status = r->status;
            if (r->status == 500)
                resp->content_type = "text/plain";
            weir_buf_appendf(&resp->body, "%s", r->body);
            uv_mutex_unlock(&f->mu);
            return;
        }
    }
    uv_mutex_unlock(&f->mu);
    weir_http_error(resp, 404, "no route for %s %s", req->method, req->path);
}

static void
route(fixture_t *f, const char *method, const char *path, int status, const char *body)
{
    uv_mutex_lock(&f->mu);
    assert_true(f->nroutes < MAX_ROUTES);
    f->routes[f->nroutes++] = (route_t){ method, path, status, body };
    uv_mutex_unlock(&f->mu);
}

static void
stop_cb(uv_async_t *a)
{
    fixture_t *f = a->data;

    weir_http_server_close(f->srv);
    uv_close((uv_handle_t *)&f->stop, NULL);
}

static void
loop_thread(void *arg)
{
    fixture_t *f = arg;

    uv_run(&f->loop, UV_RUN_DEFAULT);
}

static int
setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    weir_err_t err;

    assert_non_null(f);
    assert_non_null(getenv("JOBCTL"));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(uv_mutex_init(&f->mu), 0);
    assert_int_equal(weir_http_server_start(&f->loop, "127.0.0.1", 0, NULL, handler, f,
                                            &f->srv, &err), 0);
    f->port = weir_http_server_port(f->srv);
    snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d", f->port);
    assert_int_equal(uv_async_init(&f->loop, &f->stop, stop_cb), 0);
    f->stop.data = f;
    assert_int_equal(uv_thread_create(&f->thread, loop_thread, f), 0);
    strcpy(f->dir, "/tmp/test_jobctl.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *f = *state;
    char cmd[128];
    int i;

    uv_async_send(&f->stop);
    uv_thread_join(&f->thread);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    uv_mutex_destroy(&f->mu);
    for (i = 0; i < f->nseen; i++) {
        free(f->seen[i].method);
        free(f->seen[i].path);
        free(f->seen[i].raw_path);
        free(f->seen[i].query);
        free(f->seen[i].body);
        free(f->seen[i].content_type);
    }
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
    assert_int_equal(system(cmd), 0);
    free(f);
    return 0;
}

/* ---- running jobctl --------------------------------------------------- */

typedef struct {
    int   code;        /* exit status, or -1 when it did not exit normally */
    char *out, *err;   /* new */
} run_t;

static char *
slurp(const char *path)
{
    FILE *fp = fopen(path, "rb");
    char *s;
    long n;

    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    s = malloc((size_t)n + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)n, fp), (size_t)n);
    s[n] = '\0';
    fclose(fp);
    return s;
}

/* Runs jobctl with args (NULL-terminated) and env: "K=V" strings, NULL-
 * terminated, added to PATH and TZ=UTC. */
static void
run(fixture_t *f, run_t *r, const char *const *env, ...)
{
    const char *jobctl = getenv("JOBCTL");
    char *argv[32], *envp[32], out[128], err[128];
    posix_spawn_file_actions_t fa;
    va_list ap;
    pid_t pid;
    int n = 0, ne = 0, status;

    argv[n++] = (char *)jobctl;
    va_start(ap, env);
    for (;;) {
        char *a = va_arg(ap, char *);

        if (a == NULL)
            break;
        assert_true(n < 31);
        argv[n++] = a;
    }
    va_end(ap);
    argv[n] = NULL;
    envp[ne++] = "PATH=/usr/bin:/bin";
    envp[ne++] = "TZ=UTC";
    for (; env != NULL && *env != NULL; env++)
        envp[ne++] = (char *)*env;
    envp[ne] = NULL;

    snprintf(out, sizeof(out), "%s/stdout", f->dir);
    snprintf(err, sizeof(err), "%s/stderr", f->dir);
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_int_equal(posix_spawn(&pid, jobctl, &fa, NULL, argv, envp), 0);
    posix_spawn_file_actions_destroy(&fa);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    r->code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r->out = slurp(out);
    r->err = slurp(err);
}

static void
run_free(run_t *r)
{
    free(r->out);
    free(r->err);
}

static void
expect(const run_t *r, int code, const char *out, const char *err)
{
    if (r->code != code || (out != NULL && strcmp(r->out, out) != 0)
        || (err != NULL && strcmp(r->err, err) != 0))
        fail_msg("exit %d (want %d)\n--- stdout:\n%s--- want:\n%s--- stderr:\n%s--- want:\n%s",
                 r->code, code, r->out, out ? out : "(any)\n", r->err, err ? err : "(any)\n");
}

static void
expect_err_has(const run_t *r, int code, const char *needle)
{
    if (r->code != code || strstr(r->err, needle) == NULL)
        fail_msg("exit %d (want %d), stderr lacks '%s':\n%s", r->code, code, needle, r->err);
}

static char *
write_file(fixture_t *f, const char *name, const char *text)
{
    static char path[192];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", f->dir, name);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    return path;
}

/* A port nothing listens on. */
static int
closed_port(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* ---- submit ----------------------------------------------------------- */

static const char job_text[] =
    "name: t\n"
    "sources:\n"
    "  - name: gen\n"
    "    kind: datagen\n"
    "    topic: ${TOPIC}\n"
    "    from: ${FROM_ENV}\n"
    "    count: ${COUNT:-10}\n"
    "    other: ${MISSING}\n";

static void
test_jobctl_submit_prints_id_and_sends_resolved_vars(void **state)
{
    fixture_t *f = *state;
    const char *env[] = { "FROM_ENV=from env", "TOPIC=not this one", NULL };
    char *path = write_file(f, "job.yaml", job_text);
    json_t *body, *vars;
    run_t r;

    route(f, "POST", "/jobs", 202, "{\"jobid\": \"3f2a9c\"}");
    run(f, &r, env, "--rest", f->url, "submit", path, "-p", "3", "-D", "TOPIC=tx",
        "-DEXTRA=a=b", NULL);
    expect(&r, 0, "3f2a9c\n", "");
    run_free(&r);

    assert_int_equal(f->nseen, 1);
    assert_string_equal(f->seen[0].method, "POST");
    assert_string_equal(f->seen[0].path, "/jobs");
    assert_string_equal(f->seen[0].content_type, "application/json");
    body = json_loads(f->seen[0].body, 0, NULL);
    assert_non_null(body);
    assert_string_equal(json_string_value(json_object_get(body, "job")), job_text);
    assert_string_equal(json_string_value(json_object_get(body, "path")), path);
    assert_int_equal(json_integer_value(json_object_get(body, "parallelism")), 3);
    vars = json_object_get(body, "vars");
    /* -D wins over the environment; -D values need no reference; names
     * that resolve nowhere (MISSING, COUNT) are not sent */
    assert_int_equal(json_object_size(vars), 3);
    assert_string_equal(json_string_value(json_object_get(vars, "TOPIC")), "tx");
    assert_string_equal(json_string_value(json_object_get(vars, "EXTRA")), "a=b");
    assert_string_equal(json_string_value(json_object_get(vars, "FROM_ENV")), "from env");
    json_decref(body);
}

static void
test_jobctl_submit_without_p_sends_no_parallelism_and_json_passes_through(void **state)
{
    fixture_t *f = *state;
    char *path = write_file(f, "plain.yaml", "name: plain\n");
    const char *env[] = { NULL, NULL };
    char rest[96];
    json_t *body;
    run_t r;

    snprintf(rest, sizeof(rest), "WEIR_REST=%s/", f->url);   /* trailing '/' is fine */
    env[0] = rest;
    route(f, "POST", "/jobs", 200, "{\"jobid\":\"j1\",\"extra\":[1,2]}");
    run(f, &r, env, "submit", "--json", path, NULL);
    expect(&r, 0, "{\"jobid\":\"j1\",\"extra\":[1,2]}\n", "");
    run_free(&r);
    assert_int_equal(f->nseen, 1);
    assert_string_equal(f->seen[0].path, "/jobs");
    body = json_loads(f->seen[0].body, 0, NULL);
    assert_non_null(body);
    assert_null(json_object_get(body, "parallelism"));
    assert_int_equal(json_object_size(json_object_get(body, "vars")), 0);
    assert_string_equal(json_string_value(json_object_get(body, "job")), "name: plain\n");
    json_decref(body);
}

static void
test_jobctl_submit_errors_go_to_stderr_with_exit_1(void **state)
{
    fixture_t *f = *state;
    char *path = write_file(f, "bad.yaml", "name: bad\n");
    run_t r;

    route(f, "POST", "/jobs", 400,
          "{\"errors\": [\"jobs/bad.yaml:3:5: unknown operator kind 'fliter' "
          "(did you mean 'filter'?)\", \"jobs/bad.yaml:7:9: undefined variable ${OUT}\", 5]}");
    run(f, &r, NULL, "--rest", f->url, "submit", path, NULL);
    expect(&r, 1, "",
           "jobctl: jobs/bad.yaml:3:5: unknown operator kind 'fliter' (did you mean 'filter'?)\n"
           "jobctl: jobs/bad.yaml:7:9: undefined variable ${OUT}\n");
    run_free(&r);
}

static void
test_jobctl_server_error_without_json_reports_the_status(void **state)
{
    fixture_t *f = *state;
    run_t r;

    route(f, "GET", "/overview", 500, "it broke");
    run(f, &r, NULL, "--rest", f->url, "overview", NULL);
    expect(&r, 1, "", "jobctl: GET /overview: the server answered HTTP 500\n");
    run_free(&r);
}

static void
test_jobctl_submit_unreadable_or_non_utf8_file_or_missing_jobid_is_exit_1(void **state)
{
    fixture_t *f = *state;
    char missing[128], *path;
    run_t r;

    snprintf(missing, sizeof(missing), "%s/nope.yaml", f->dir);
    run(f, &r, NULL, "--rest", f->url, "submit", missing, NULL);
    expect_err_has(&r, 1, "cannot read");
    expect_err_has(&r, 1, "No such file or directory");
    run_free(&r);
    assert_int_equal(f->nseen, 0);

    path = write_file(f, "latin1.yaml", "name: caf\xe9\n");
    run(f, &r, NULL, "--rest", f->url, "submit", path, NULL);
    expect_err_has(&r, 1, "latin1.yaml is not valid UTF-8");
    run_free(&r);
    assert_int_equal(f->nseen, 0);

    path = write_file(f, "ok.yaml", "name: ok\n");
    route(f, "POST", "/jobs", 200, "{\"id\": \"wrong-field\"}");
    run(f, &r, NULL, "--rest", f->url, "submit", path, NULL);
    expect(&r, 1, "", "jobctl: the server accepted the job but sent no \"jobid\"\n");
    run_free(&r);
}

/* ---- reading commands ------------------------------------------------- */

static void
test_jobctl_list_prints_a_table(void **state)
{
    fixture_t *f = *state;
    run_t r;

    route(f, "GET", "/jobs/overview", 200,
          "{\"jobs\": ["
          "{\"jid\": \"a1\", \"name\": \"fraud-detection\", \"state\": \"RUNNING\","
          " \"start-time\": 1700000000000, \"duration\": 3723000},"
          "{\"jid\": \"b2\", \"name\": \"x\", \"state\": \"FAILED\", \"start-time\": -1,"
          " \"duration\": 850},"
          "{\"id\": 7, \"name\": null, \"state\": \"CANCELED\", \"start-time\": \"soon\"},"
          "42]}");
    run(f, &r, NULL, "--rest", f->url, "list", NULL);
    expect(&r, 0,
           "JOB ID  NAME             STATE     START                DURATION\n"
           "a1      fraud-detection  RUNNING   2023-11-14 22:13:20  1h 02m 03s\n"
           "b2      x                FAILED    -                    850ms\n"
           "7       -                CANCELED  -                    -\n"
           "-       -                -         -                    -\n",
           "");
    run_free(&r);
    assert_string_equal(f->seen[0].method, "GET");
    assert_string_equal(f->seen[0].path, "/jobs/overview");
}

static void
test_jobctl_list_json_prints_the_server_json(void **state)
{
    fixture_t *f = *state;
    run_t r;

    route(f, "GET", "/jobs/overview", 200, "{\n  \"jobs\": []\n}\n");
    run(f, &r, NULL, "list", "--json", "--rest", f->url, NULL);
    expect(&r, 0, "{\n  \"jobs\": []\n}\n", "");
    run_free(&r);
}

static void
test_jobctl_unexpected_json_is_an_error_not_a_crash(void **state)
{
    fixture_t *f = *state;
    run_t r;

    route(f, "GET", "/jobs/overview", 200, "not json at all");
    route(f, "GET", "/taskmanagers", 200, "{\"taskmanagers\": 5}");
    route(f, "GET", "/overview", 200, "[1, 2]");
    route(f, "GET", "/jobs/weird", 200, "{\"vertices\": [1, {\"subtasks\": [null, {}]}], "
                                        "\"failure\": 3}");
    run(f, &r, NULL, "--rest", f->url, "list", NULL);
    expect_err_has(&r, 1, "jobctl: GET /jobs/overview: the server's answer is not JSON");
    run_free(&r);
    run(f, &r, NULL, "--rest", f->url, "taskmanagers", NULL);
    expect(&r, 1, "", "jobctl: GET /taskmanagers: the answer has no \"taskmanagers\" list\n");
    run_free(&r);
    run(f, &r, NULL, "--rest", f->url, "overview", NULL);
    expect(&r, 0,
           "Task managers:    -\nSlots total:      -\nSlots available:  -\n"
           "Jobs running:     -\nJobs finished:    -\nJobs cancelled:   -\nJobs failed:      -\n",
           "");
    run_free(&r);
    run(f, &r, NULL, "--rest", f->url, "status", "weird", NULL);
    expect(&r, 0,
           "Job ID:           -\n"
           "Name:             -\n"
           "State:            -\n"
           "Parallelism:      -\n"
           "Restarts:         -\n"
           "Checkpoints:      off\n"
           "\n"
           "Vertices:\n"
           "  VERTEX  NAME  PARALLELISM  STATUS\n"
           "  -       -     -            -\n"
           "  -       -     -            -\n"
           "          SUBTASK  STATUS  TASK MANAGER  FAILURE\n"
           "          -        -       -             -\n"
           "          -        -       -             -\n",
           "");
    run_free(&r);
}

static void
test_jobctl_status_prints_job_vertices_and_subtasks(void **state)
{
    fixture_t *f = *state;
    run_t r;

    route(f, "GET", "/jobs/j1", 200,
          "{\"jid\": \"j1\", \"name\": \"fraud\", \"state\": \"FAILING\", \"parallelism\": 2,"
          " \"failure\": {\"message\": \"boom\\nin subtask 1\"},"
          " \"vertices\": ["
          "  {\"id\": \"v1\", \"name\": \"source: tx\", \"parallelism\": 2, \"status\": \"RUNNING\","
          "   \"subtasks\": ["
          "    {\"subtask\": 0, \"status\": \"RUNNING\", \"taskmanager-id\": \"tm-1\", \"failure\": null},"
          "    {\"subtask\": 1, \"status\": \"FAILED\", \"taskmanager-id\": \"tm-2\","
          "     \"failure\": {\"message\": \"disk full\"}}]},"
          "  {\"id\": \"v2\", \"name\": \"sink\", \"parallelism\": 1, \"status\": \"CREATED\","
          "   \"subtasks\": []}]}");
    run(f, &r, NULL, "--rest", f->url, "status", "j1", NULL);
    expect(&r, 0,
           "Job ID:           j1\n"
           "Name:             fraud\n"
           "State:            FAILING\n"
           "Parallelism:      2\n"
           "Restarts:         -\n"
           "Checkpoints:      off\n"
           "Last failure:     boom in subtask 1\n"
           "\n"
           "Vertices:\n"
           "  VERTEX  NAME        PARALLELISM  STATUS\n"
           "  v1      source: tx  2            RUNNING\n"
           "          SUBTASK  STATUS   TASK MANAGER  FAILURE\n"
           "          0        RUNNING  tm-1          -\n"
           "          1        FAILED   tm-2          disk full\n"
           "  v2      sink        1            CREATED\n",
           "");
    run_free(&r);
}

static void
test_jobctl_status_of_unknown_job_is_exit_1_and_escapes_the_id(void **state)
{
    fixture_t *f = *state;
    run_t r;

    run(f, &r, NULL, "--rest", f->url, "status", "a b/c", NULL);
    expect(&r, 1, "", "jobctl: no route for GET /jobs/a b/c\n");
    run_free(&r);
    assert_string_equal(f->seen[0].raw_path, "/jobs/a%20b%2Fc");
}

static void
test_jobctl_cancel_sends_patch_with_mode_cancel(void **state)
{
    fixture_t *f = *state;
    run_t r;

    route(f, "PATCH", "/jobs/abc", 202, "");
    run(f, &r, NULL, "--rest", f->url, "cancel", "abc", NULL);
    expect(&r, 0, "cancelling abc\n", "");
    run_free(&r);
    assert_int_equal(f->nseen, 1);
    assert_string_equal(f->seen[0].method, "PATCH");
    assert_string_equal(f->seen[0].path, "/jobs/abc");
    assert_string_equal(f->seen[0].query, "mode=cancel");
}

static void
test_jobctl_taskmanagers_prints_a_table(void **state)
{
    fixture_t *f = *state;
    run_t r;

    route(f, "GET", "/taskmanagers", 200,
          "{\"taskmanagers\": ["
          "{\"id\": \"tm-1\", \"path\": \"127.0.0.1:6122\", \"slotsNumber\": 4, \"freeSlots\": 1,"
          " \"timeSinceLastHeartbeat\": 1500},"
          "{\"id\": \"tm-22\", \"path\": \"10.0.0.7:6122\", \"slotsNumber\": 8, \"freeSlots\": 8,"
          " \"timeSinceLastHeartbeat\": 125000},"
          "{\"id\": \"tm-3\"}]}");
    run(f, &r, NULL, "--rest", f->url, "taskmanagers", NULL);
    expect(&r, 0,
           "ID     ADDRESS         SLOTS  FREE  LAST HEARTBEAT\n"
           "tm-1   127.0.0.1:6122  4      1     1s ago\n"
           "tm-22  10.0.0.7:6122   8      8     2m 05s ago\n"
           "tm-3   -               -      -     -\n",
           "");
    run_free(&r);
}

static void
test_jobctl_overview_prints_the_counts(void **state)
{
    fixture_t *f = *state;
    run_t r;

    route(f, "GET", "/overview", 200,
          "{\"taskmanagers\": 2, \"slots-total\": 8, \"slots-available\": 5, \"jobs-running\": 1,"
          " \"jobs-finished\": 3, \"jobs-cancelled\": 0, \"jobs-failed\": 1, \"flink\": \"x\"}");
    run(f, &r, NULL, "--rest", f->url, "overview", NULL);
    expect(&r, 0,
           "Task managers:    2\n"
           "Slots total:      8\n"
           "Slots available:  5\n"
           "Jobs running:     1\n"
           "Jobs finished:    3\n"
           "Jobs cancelled:   0\n"
           "Jobs failed:      1\n",
           "");
    run_free(&r);
}

/* ---- connection and usage --------------------------------------------- */

static void
test_jobctl_closed_port_is_exit_3_naming_the_url(void **state)
{
    fixture_t *f = *state;
    char url[64], want[96], env_rest[96];
    const char *env[] = { env_rest, NULL };
    run_t r;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d", closed_port());
    snprintf(want, sizeof(want), "jobctl: cannot connect to %s: ", url);
    run(f, &r, NULL, "--rest", url, "list", NULL);
    expect_err_has(&r, 3, want);
    assert_string_equal(r.out, "");
    run_free(&r);

    /* $WEIR_REST is used, and --rest wins over it */
    snprintf(env_rest, sizeof(env_rest), "WEIR_REST=%s", url);
    run(f, &r, env, "overview", NULL);
    expect_err_has(&r, 3, want);
    run_free(&r);
    route(f, "GET", "/overview", 200, "{}");
    run(f, &r, env, "overview", "--rest", f->url, NULL);
    assert_int_equal(r.code, 0);
    run_free(&r);
}

static void
test_jobctl_bad_rest_url_is_a_usage_error(void **state)
{
    fixture_t *f = *state;
    run_t r;

    run(f, &r, NULL, "--rest", "gopher://127.0.0.1:1", "list", NULL);
    expect_err_has(&r, 2, "jobctl: invalid REST URL 'gopher://127.0.0.1:1'");
    run_free(&r);
}

static void
test_jobctl_usage_errors_are_exit_2(void **state)
{
    fixture_t *f = *state;
    run_t r;

    run(f, &r, NULL, NULL);
    expect(&r, 2, "", "jobctl: missing command\nTry 'jobctl --help'.\n");
    run_free(&r);
    run(f, &r, NULL, "frobnicate", NULL);
    expect(&r, 2, "", "jobctl: unknown command 'frobnicate'\nTry 'jobctl --help'.\n");
    run_free(&r);
    run(f, &r, NULL, "status", NULL);
    expect(&r, 2, "", "jobctl: status: missing JOB\nusage: jobctl status JOB\n"
                      "Try 'jobctl status --help'.\n");
    run_free(&r);
    run(f, &r, NULL, "status", "a", "b", NULL);
    expect_err_has(&r, 2, "jobctl: unexpected argument 'b'\n");
    run_free(&r);
    run(f, &r, NULL, "list", "-p", "2", NULL);
    expect_err_has(&r, 2, "jobctl: unknown option '-p' for 'list'\n");
    run_free(&r);
    run(f, &r, NULL, "submit", "x.yaml", "-p", "0", NULL);
    expect_err_has(&r, 2, "jobctl: -p: '0' is not a parallelism");
    run_free(&r);
    run(f, &r, NULL, "submit", "x.yaml", "-p", "2x", NULL);
    expect_err_has(&r, 2, "jobctl: -p: '2x' is not a parallelism");
    run_free(&r);
    run(f, &r, NULL, "submit", "x.yaml", "-D", "NOVALUE", NULL);
    expect_err_has(&r, 2, "jobctl: -D 'NOVALUE': expected KEY=VALUE");
    run_free(&r);
    run(f, &r, NULL, "submit", "x.yaml", "-D", "=v", NULL);
    expect_err_has(&r, 2, "expected KEY=VALUE");
    run_free(&r);
    run(f, &r, NULL, "submit", "x.yaml", "-D", NULL);
    expect_err_has(&r, 2, "jobctl: -D needs KEY=VALUE");
    run_free(&r);
    run(f, &r, NULL, "--rest", NULL);
    expect_err_has(&r, 2, "jobctl: --rest needs a URL");
    run_free(&r);
    run(f, &r, NULL, "--bogus", "list", NULL);
    expect_err_has(&r, 2, "jobctl: unknown option '--bogus'");
    run_free(&r);
    assert_int_equal(f->nseen, 0);
}

static bool
starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void
test_jobctl_help_prints_usage_and_exits_0(void **state)
{
    fixture_t *f = *state;
    run_t r;

    run(f, &r, NULL, "--help", NULL);
    expect(&r, 0, NULL, "");
    assert_non_null(strstr(r.out, "usage: jobctl [--rest URL] [--json] COMMAND [ARGS]\n"));
    assert_non_null(strstr(r.out, "  submit FILE [-p N] [-D KEY=VALUE]... "));
    assert_non_null(strstr(r.out, "  taskmanagers "));
    assert_non_null(strstr(r.out, "3 cannot connect"));
    run_free(&r);
    run(f, &r, NULL, "submit", "--help", NULL);
    expect(&r, 0, NULL, "");
    assert_true(starts_with(r.out, "usage: jobctl submit FILE [-p N] [-D KEY=VALUE]... "
                                   "[--rest URL] [--json]\n"));
    assert_non_null(strstr(r.out, "-D KEY=VALUE    set the variable KEY"));
    run_free(&r);
    run(f, &r, NULL, "cancel", "-h", NULL);
    expect(&r, 0, NULL, "");
    assert_true(starts_with(r.out, "usage: jobctl cancel JOB [--rest URL] [--json]\n"));
    run_free(&r);
    run(f, &r, NULL, "list", "--help", NULL);
    expect(&r, 0, NULL, "");
    assert_true(starts_with(r.out, "usage: jobctl list [--rest URL] [--json]\n"));
    run_free(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_jobctl_submit_prints_id_and_sends_resolved_vars, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobctl_submit_without_p_sends_no_parallelism_and_json_passes_through, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobctl_submit_errors_go_to_stderr_with_exit_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobctl_server_error_without_json_reports_the_status, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobctl_submit_unreadable_or_non_utf8_file_or_missing_jobid_is_exit_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobctl_list_prints_a_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobctl_list_json_prints_the_server_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobctl_unexpected_json_is_an_error_not_a_crash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobctl_status_prints_job_vertices_and_subtasks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobctl_status_of_unknown_job_is_exit_1_and_escapes_the_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobctl_cancel_sends_patch_with_mode_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobctl_taskmanagers_prints_a_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobctl_overview_prints_the_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobctl_closed_port_is_exit_3_naming_the_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobctl_bad_rest_url_is_a_usage_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobctl_usage_errors_are_exit_2, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobctl_help_prints_usage_and_exits_0, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
