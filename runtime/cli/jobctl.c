/* runtime/cli/jobctl.c -- the command line of weir.
 *
 * jobctl talks to the job manager's REST API (libcurl for HTTP, jansson for
 * the JSON documents) and shows the answers as tables for people, or passes
 * the server's JSON through unchanged with --json for scripts:
 *
 *   jobctl submit jobs/fraud.yaml -p 2 -D TOPIC=tx
 *   jobctl plan jobs/fraud.yaml -p 2          (local: nothing is submitted)
 *   jobctl list
 *   jobctl status 3f2a9c
 *   jobctl metrics 3f2a9c [--vertex v1]
 *   jobctl checkpoints 3f2a9c
 *   jobctl exceptions 3f2a9c
 *   jobctl cancel 3f2a9c
 *   jobctl savepoint 3f2a9c --dir /sp          (and stop, which also stops it)
 *   jobctl taskmanagers
 *   jobctl overview
 *
 * The commands live in one table (name, arguments, options, help, function).
 * A command's function returns the process exit code: 0 ok, 1 a request the
 * server refused or answered strangely (its {"errors": [...]} messages are
 * printed to stderr) or a job file that does not plan, 2 a usage error, 3
 * the job manager cannot be reached.
 *
 * submit sends the job file's text, not a parsed form: the job manager parses
 * and validates it and reports errors with "path:line:col". jobctl only
 * resolves the ${VAR} references it finds in the text, from -D first and then
 * its environment, so that a job can be parameterised from the shell that
 * submits it. Unresolved names are not sent; the server then reports them
 * (unless the reference has a default).
 *
 * plan is the one command that needs no job manager: it runs the same
 * planner the job and task managers run (weir_plan_from_text, deterministic)
 * on the file, with the same variables submit would send, and prints the
 * vertices and chains. It needs the planner linked in (runtime/cli/meson.build
 * links weir_plan_dep and defines WEIR_JOBCTL_PLANNER); a jobctl built
 * without it says so and exits 1.
 *
 * The output never trusts the server's JSON: a missing or mistyped field is
 * shown as "-", and control characters in strings are replaced before they
 * reach the terminal.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <jansson.h>

#include "runtime/core/buf.h"
#include "runtime/graph/jobfile.h"
#ifdef WEIR_JOBCTL_PLANNER
#include "runtime/graph/plan.h"
#endif

/* ---- constants ------------------------------------------------------- */

enum {
    EXIT_OK      = 0,
    EXIT_FAIL    = 1,    /* request or server error; a job file that does not plan */
    EXIT_USAGE   = 2,
    EXIT_CONNECT = 3,    /* cannot reach the job manager */
};

#define DEFAULT_REST        "http://127.0.0.1:8081"
#define CONNECT_TIMEOUT_S   5L
#define REQUEST_TIMEOUT_S   30L
#define MAX_RESPONSE_BYTES  (64u << 20)
#define MAX_JOB_FILE_BYTES  (64u << 20)
#define MAX_PARALLELISM     1000000L
#define MAX_POSITIONAL      1
#define TABLE_MAX_COLS      8

/* Flink's backpressure levels: the share of time a subtask was
 * backpressured, <= 10% "ok", <= 50% "low", above "high" (the job manager
 * uses the same thresholds for its vertex levels). */
#define BP_OK_RATIO         0.10
#define BP_LOW_RATIO        0.50

/* The options a command accepts besides --rest, --json and --help. */
enum {
    OPT_VARS      = 1 << 0,     /* -p N, -D KEY=VALUE */
    OPT_RESTORE   = 1 << 1,     /* --from-savepoint DIR, --allow-non-restored-state */
    OPT_DIR       = 1 << 2,     /* --dir DIR */
    OPT_VERTEX    = 1 << 3,     /* --vertex V */
    OPT_DRAIN     = 1 << 4,     /* --drain */
};

/* ---- state ----------------------------------------------------------- */

typedef struct jobctl {
    char        *rest;          /* base URL without a trailing '/' (owned) */
    bool         json;
    long         parallelism;   /* submit/plan -p; 0 when not given */
    weir_vars_t  defs;          /* submit/plan -D KEY=VALUE (owned) */
    const char  *from_savepoint;/* submit --from-savepoint DIR */
    bool         allow_non_restored;
    bool         drain;         /* stop --drain */
    const char  *dir;           /* savepoint/stop --dir DIR */
    const char  *vertex;        /* metrics --vertex V */
    long         wait_s;        /* savepoint/stop: how long to wait */
    int          npos;
    const char  *pos[MAX_POSITIONAL];   /* borrowed from argv */
} jobctl_t;

typedef struct cmd {
    const char *name;
    const char *args;           /* the argument synopsis; its first word names
                                   the positional argument */
    const char *summary;        /* one line for the command list */
    const char *help;           /* the paragraph of `jobctl CMD --help` */
    int         npos;           /* positional arguments it takes */
    unsigned    opts;           /* OPT_* */
    bool        local;          /* needs no job manager (plan) */
    int       (*run)(jobctl_t *j);
} cmd_t;

static int cmd_submit(jobctl_t *j);
static int cmd_plan(jobctl_t *j);
static int cmd_list(jobctl_t *j);
static int cmd_status(jobctl_t *j);
static int cmd_metrics(jobctl_t *j);
static int cmd_checkpoints(jobctl_t *j);
static int cmd_exceptions(jobctl_t *j);
static int cmd_cancel(jobctl_t *j);
static int cmd_taskmanagers(jobctl_t *j);
static int cmd_overview(jobctl_t *j);
static int cmd_savepoint(jobctl_t *j);
static int cmd_stop(jobctl_t *j);

static const cmd_t commands[] = {
    { "submit", "FILE [-p N] [-D KEY=VALUE]...", "submit a job file; prints the job id",
      "Sends the job file FILE to the job manager, which parses, plans and starts it,\n"
      "and prints the new job's id. ${VAR} references in the file are resolved from\n"
      "-D KEY=VALUE first, then from the environment; the job manager substitutes\n"
      "them (and reports unresolved ones with their line and column).\n"
      "\n"
      "  -p N            run the job with parallelism N (overrides the file)\n"
      "  -D KEY=VALUE    set the variable KEY (repeatable)\n"
      "  --from-savepoint DIR   start from a savepoint (or a retained checkpoint\n"
      "                  chk-<n> directory); keyed state is redistributed when -p\n"
      "                  differs from the savepoint's parallelism\n"
      "  --allow-non-restored-state   accept a savepoint with state of operators the\n"
      "                  job no longer has (that state is dropped)\n",
      1, OPT_VARS | OPT_RESTORE, false, cmd_submit },
    { "plan", "FILE [-p N] [-D KEY=VALUE]...", "check a job file, print its plan (local)",
      "Parses and plans the job file FILE here, with the planner the job manager\n"
      "uses, and prints its vertices (operators chained into one task), their\n"
      "parallelism and output schemas, and the edges between them. Nothing is sent\n"
      "to the job manager. An error is printed as FILE:LINE:COL: reason (exit 1).\n"
      "${VAR} references are resolved like submit does: -D first, then the\n"
      "environment, then the reference's default.\n"
      "\n"
      "  -p N            plan with parallelism N (overrides the file)\n"
      "  -D KEY=VALUE    set the variable KEY (repeatable)\n"
      "  --json          print the plan as JSON, shaped like GET /jobs/{id}/plan\n",
      1, OPT_VARS, true, cmd_plan },
    { "list", "", "list jobs",
      "Lists the jobs the job manager knows: id, name, state, start time (local\n"
      "time) and duration.\n",
      0, 0, false, cmd_list },
    { "status", "JOB", "show a job, its vertices and their subtasks",
      "Shows job JOB: its name, state, parallelism, restarts, checkpoints and\n"
      "failure (if any), then each vertex with its records in and out per second,\n"
      "and its subtasks, their state and task manager.\n",
      1, 0, false, cmd_status },
    { "metrics", "JOB [--vertex V]", "show rates, busy time, backpressure",
      "Shows the metrics of each vertex of job JOB (from the last heartbeats):\n"
      "records and bytes in and out (totals and per second), busy, idle and\n"
      "backpressured time, the backpressure level, dead-lettered records and\n"
      "pending records, then the records in and out of each chained operator.\n"
      "\n"
      "  --vertex V      the same per subtask of one vertex, and its operators;\n"
      "                  V is a vertex id (v1 or 1), a vertex name (\"gen -> map\")\n"
      "                  or the name of one of its operators\n"
      "\n"
      "With --json, the server's JSON: GET /jobs/{JOB}, or with --vertex\n"
      "GET /jobs/{JOB}/vertices/{V}.\n",
      1, OPT_VERTEX, false, cmd_metrics },
    { "checkpoints", "JOB", "show checkpoint counts and history",
      "Shows the checkpoints of job JOB: the interval and mode, how many completed\n"
      "and failed, the one in progress, the latest completed one, a history table\n"
      "(newest first: id, type, status, trigger time, duration, size, acknowledged\n"
      "subtasks, failure) and the min/avg/max duration and size of the completed\n"
      "checkpoints in the history.\n",
      1, 0, false, cmd_checkpoints },
    { "exceptions", "JOB", "show a job's failures, newest first",
      "Shows the failure that ended or last restarted job JOB, and the history of\n"
      "its failures (newest first) with their time and the attempt they ended.\n",
      1, 0, false, cmd_exceptions },
    { "cancel", "JOB", "cancel a job",
      "Asks the job manager to cancel job JOB. The job stops asynchronously;\n"
      "`jobctl status JOB` shows when it is CANCELED.\n",
      1, 0, false, cmd_cancel },
    { "savepoint", "JOB [--dir DIR]", "write a savepoint of a running job",
      "Takes a savepoint of job JOB into DIR (default $WEIR_SAVEPOINT_DIR, absolute)\n"
      "and prints its directory once it is complete. A savepoint is a self-contained\n"
      "copy of a checkpoint: submit --from-savepoint starts a job from it, at any\n"
      "parallelism.\n"
      "\n"
      "  --dir DIR       the directory the savepoint goes into\n",
      1, OPT_DIR, false, cmd_savepoint },
    { "stop", "JOB [--dir DIR] [--drain]", "write a savepoint, then stop the job",
      "Takes a savepoint of job JOB like `savepoint`, then stops the job (it ends\n"
      "FINISHED), and prints the savepoint's directory.\n"
      "\n"
      "  --dir DIR       the directory the savepoint goes into\n"
      "  --drain         end the sources' input first, as if it ended: the end of\n"
      "                  event time, every operator's final output, sinks commit\n"
      "                  it; for a job to end for good (needs checkpoints)\n",
      1, OPT_DIR | OPT_DRAIN, false, cmd_stop },
    { "taskmanagers", "", "list task managers and their slots",
      "Lists the registered task managers: id, address, slots, free slots and the\n"
      "time since their last heartbeat.\n",
      0, 0, false, cmd_taskmanagers },
    { "overview", "", "show a summary of the cluster",
      "Shows the number of task managers, total and available slots, and the jobs\n"
      "by state.\n",
      0, 0, false, cmd_overview },
};

#define NCOMMANDS ((int)(sizeof(commands) / sizeof(commands[0])))

/* ---- small helpers --------------------------------------------------- */

static void
die_oom(void)
{
    fputs("jobctl: out of memory\n", stderr);
    exit(EXIT_FAIL);
}

static void *
xrealloc(void *p, size_t n)
{
    p = realloc(p, n ? n : 1);
    if (p == NULL)
        die_oom();
    return p;
}

static char *
xstrdup(const char *s)
{
    char *d = strdup(s);

    if (d == NULL)
        die_oom();
    return d;
}

/* Prints "jobctl: message" to stderr, with control characters other than
 * newline and tab replaced (the text may come from the server). */
static void
errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
errorf(const char *fmt, ...)
{
    char *msg = NULL, *p;
    va_list ap;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (msg == NULL)
        die_oom();
    for (p = msg; *p != '\0'; p++)
        if (((unsigned char)*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
            *p = '?';
    fprintf(stderr, "jobctl: %s\n", msg);
    free(msg);
}

/* Percent-encodes s for use as one path segment or query value; new. */
static char *
url_escape(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(s), o = 0, i;
    char *out = xrealloc(NULL, n * 3 + 1);

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
            || c == '-' || c == '.' || c == '_' || c == '~') {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return out;
}

/* ---- showing JSON values --------------------------------------------- */

/* The display text of obj[key] (or of obj itself when key is NULL): a
 * string as is, a number or boolean formatted, anything else "-". Borrowed
 * from the JSON or written into buf. */
/* A subtask's or vertex's watermark: the input watermark, or for a source
 * (which has none) the one it emits, as a UTC time; "-" while none, "end"
 * after the end of input. */
static const char *
jwatermark(const json_t *m, char *buf, size_t cap)
{
    const json_t *in = json_object_get(m, "currentInputWatermark");
    const json_t *out = json_object_get(m, "currentOutputWatermark");
    json_int_t v = json_is_integer(in) ? json_integer_value(in) : INT64_MIN;
    time_t secs;
    struct tm tm;

    if (v == INT64_MIN && json_is_integer(out))
        v = json_integer_value(out);
    if (v == INT64_MIN)
        return "-";
    if (v == INT64_MAX)
        return "end";
    secs = (time_t)(v >= 0 ? v / 1000 : -((-v + 999) / 1000));
    if (gmtime_r(&secs, &tm) == NULL)
        return "-";
    snprintf(buf, cap, "%04d-%02d-%02d %02d:%02d:%02d.%03d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(v - (json_int_t)secs * 1000));
    return buf;
}

static const char *
jtext(const json_t *obj, const char *key, char *buf, size_t cap)
{
    const json_t *v = key != NULL ? (json_is_object(obj) ? json_object_get(obj, key) : NULL) : obj;

    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return buf;
    }
    if (json_is_real(v)) {
        snprintf(buf, cap, "%g", json_real_value(v));
        return buf;
    }
    if (json_is_boolean(v))
        return json_is_true(v) ? "true" : "false";
    return "-";
}

/* obj[key] as a whole number, if it is one. */
static bool
jint(const json_t *obj, const char *key, long long *out)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return true;
    }
    if (json_is_real(v) && json_real_value(v) >= (double)LLONG_MIN
        && json_real_value(v) <= (double)LLONG_MAX) {
        *out = (long long)json_real_value(v);
        return true;
    }
    return false;
}

/* The message of a failure field: a string, {"message": ...}, or "-". */
static const char *
jfailure(const json_t *obj, const char *key, char *buf, size_t cap)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

    if (json_is_object(v))
        return jtext(v, "message", buf, cap);
    if (json_is_string(v) && json_string_length(v) > 0)
        return json_string_value(v);
    return "-";
}

/* A list in a response: root itself when it is an array, else root[key]. */
static json_t *
jlist(json_t *root, const char *key)
{
    json_t *v;

    if (json_is_array(root))
        return root;
    v = json_is_object(root) ? json_object_get(root, key) : NULL;
    return json_is_array(v) ? v : NULL;
}

/* "1h 02m 03s"-style text of a duration in milliseconds. */
static void
fmt_duration(long long ms, char *buf, size_t cap)
{
    long long s = ms / 1000;

    if (ms < 0)
        snprintf(buf, cap, "-");
    else if (ms < 1000)
        snprintf(buf, cap, "%lldms", ms);
    else if (s < 60)
        snprintf(buf, cap, "%llds", s);
    else if (s < 3600)
        snprintf(buf, cap, "%lldm %02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(buf, cap, "%lldh %02lldm %02llds", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(buf, cap, "%lldd %02lldh %02lldm", s / 86400, s / 3600 % 24, s / 60 % 60);
}

/* Local time of a Unix time in milliseconds, or "-". */
static void
fmt_time(long long ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (ms <= 0 || localtime_r(&t, &tm) == NULL
        || strftime(buf, cap, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(buf, cap, "-");
}

/* The same with milliseconds: checkpoints come several per second. */
static void
fmt_time_ms(long long ms, char *buf, size_t cap)
{
    char sec[48];

    fmt_time(ms, sec, sizeof(sec));
    if (strcmp(sec, "-") == 0)
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%s.%03lld", sec, ms % 1000);
}

/* A short duration in milliseconds, keeping what matters for a checkpoint:
 * "17ms", "1.53s", then as fmt_duration. */
static void
fmt_ms(long long ms, char *buf, size_t cap)
{
    if (ms >= 1000 && ms < 60000)
        snprintf(buf, cap, "%.2fs", (double)ms / 1000.0);
    else
        fmt_duration(ms, buf, cap);
}

/* "512 B", "37.6 KiB", "1.2 GiB". */
static void
fmt_bytes(long long n, char *buf, size_t cap)
{
    static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB" };
    double v = (double)n;
    int u = -1;

    if (n < 0) {
        snprintf(buf, cap, "-");
        return;
    }
    if (n < 1024) {
        snprintf(buf, cap, "%lld B", n);
        return;
    }
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    snprintf(buf, cap, "%.1f %s", v, unit[u]);
}

/* obj[key] as a number (integer or real), if it is one. */
static bool
jnum(const json_t *obj, const char *key, double *out)
{
    const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

    if (!json_is_number(v))
        return false;
    *out = json_number_value(v);
    return true;
}

/* obj[key] formatted with fmt (one double), or "-". */
static const char *
jfmt(const json_t *obj, const char *key, const char *fmt, char *buf, size_t cap)
{
    double v;

    if (!jnum(obj, key, &v))
        return "-";
    snprintf(buf, cap, fmt, v);
    return buf;
}

/* obj[key] in bytes, shown by fmt_bytes, or "-". */
static const char *
jbytes(const json_t *obj, const char *key, char *buf, size_t cap)
{
    long long n;

    if (!jint(obj, key, &n))
        return "-";
    fmt_bytes(n, buf, cap);
    return buf;
}

/* A "...TimeMsPerSecond" field as the share of the time: 250 -> "25.0%". */
static const char *
jshare(const json_t *obj, const char *key, char *buf, size_t cap)
{
    double v;

    if (!jnum(obj, key, &v))
        return "-";
    snprintf(buf, cap, "%.1f%%", v / 10.0);
    return buf;
}

/* ---- tables ---------------------------------------------------------- */

/* Rows of text cells (row 0 is the header), printed in aligned columns. */
typedef struct {
    int    ncols;
    int    nrows, cap;
    char **cells;                 /* nrows * ncols, owned */
    int    width[TABLE_MAX_COLS];
} table_t;

/* Display width: UTF-8 continuation bytes take no column. */
static int
text_width(const char *s)
{
    int w = 0;

    for (; *s != '\0'; s++)
        if (((unsigned char)*s & 0xc0) != 0x80)
            w++;
    return w;
}

/* Adds a row of ncols cells (copied; control characters become spaces). */
static void
table_add(table_t *t, const char *const *vals)
{
    int c;

    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->cells = xrealloc(t->cells, (size_t)t->cap * (size_t)t->ncols * sizeof(char *));
    }
    for (c = 0; c < t->ncols; c++) {
        char *cell = xstrdup(vals[c] != NULL ? vals[c] : "-"), *p;
        int w;

        for (p = cell; *p != '\0'; p++)
            if ((unsigned char)*p < 0x20 || *p == 0x7f)
                *p = ' ';
        if (*cell == '\0') {
            free(cell);
            cell = xstrdup("-");
        }
        t->cells[t->nrows * t->ncols + c] = cell;
        w = text_width(cell);
        if (w > t->width[c])
            t->width[c] = w;
    }
    t->nrows++;
}

static void
table_init(table_t *t, int ncols, const char *const *head)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    table_add(t, head);
}

static void
table_print_row(const table_t *t, int r, int indent)
{
    int c;

    printf("%*s", indent, "");
    for (c = 0; c < t->ncols; c++) {
        const char *cell = t->cells[r * t->ncols + c];

        if (c == t->ncols - 1)
            printf("%s\n", cell);
        else
            printf("%s%*s", cell, t->width[c] - text_width(cell) + 2, "");
    }
}

static void
table_print(const table_t *t, int indent)
{
    int r;

    for (r = 0; r < t->nrows; r++)
        table_print_row(t, r, indent);
}

/* "Label:       value", the value sanitised like a cell. */
static void
print_field(const char *label, const char *value)
{
    const char *p;

    printf("%-18s", label);
    for (p = value; *p != '\0'; p++)
        putchar((unsigned char)*p < 0x20 || *p == 0x7f ? ' ' : *p);
    putchar('\n');
}

static void
table_free(table_t *t)
{
    int i;

    for (i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
}

/* ---- HTTP ------------------------------------------------------------ */

typedef struct {
    long       status;
    weir_buf_t body;
    bool       too_big;
} http_resp_t;

static size_t
http_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    http_resp_t *r = arg;
    size_t n = size * nmemb;

    if (r->body.len + n > MAX_RESPONSE_BYTES) {
        r->too_big = true;
        return 0;                     /* curl stops with CURLE_WRITE_ERROR */
    }
    if (weir_buf_append(&r->body, data, n) != 0)
        die_oom();
    return n;
}

/* Sends method path (relative to the REST base URL) with an optional JSON
 * body; fills r (r->body is new, also on failure). Returns EXIT_OK when the
 * server answered at all, whatever the status; else prints why and returns
 * the exit code. */
static int
http_call(const jobctl_t *j, const char *method, const char *path, const char *body,
          http_resp_t *r)
{
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *hdrs;
    char *url = NULL;
    curl_off_t connect_us = 0;
    CURL *curl;
    CURLcode cc;
    int rc = EXIT_OK;

    memset(r, 0, sizeof(*r));
    if (asprintf(&url, "%s%s", j->rest, path) < 0)
        die_oom();
    curl = curl_easy_init();
    if (curl == NULL) {
        free(url);
        errorf("cannot initialise libcurl");
        return EXIT_FAIL;
    }
    if ((hdrs = curl_slist_append(NULL, "Accept: application/json")) == NULL
        || (body != NULL && curl_slist_append(hdrs, "Content-Type: application/json") == NULL)
        || curl_slist_append(hdrs, "Expect:") == NULL)      /* no 100-continue wait */
        die_oom();
    {
        /* a cluster with a secret wants it on every request */
        const char *secret = getenv("WEIR_SECRET");
        char auth[300];
        if (secret != NULL && secret[0] != '\0') {
            snprintf(auth, sizeof(auth), "Authorization: Bearer %s", secret);
            if (curl_slist_append(hdrs, auth) == NULL)
                die_oom();
        }
    }

    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "jobctl/" "0.1");
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, REQUEST_TIMEOUT_S);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, http_write_cb);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);

    cc = curl_easy_perform(curl);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
        goto done;
    }
    if (errbuf[0] == '\0')
        snprintf(errbuf, sizeof(errbuf), "%s", curl_easy_strerror(cc));
    curl_easy_getinfo(curl, CURLINFO_CONNECT_TIME_T, &connect_us);
    switch (cc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        errorf("invalid REST URL '%s': %s", j->rest, errbuf);
        rc = EXIT_USAGE;
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        errorf("cannot connect to %s: %s", j->rest, errbuf);
        rc = EXIT_CONNECT;
        break;
    case CURLE_OPERATION_TIMEDOUT:
        if (connect_us == 0) {
            errorf("cannot connect to %s: %s", j->rest, errbuf);
            rc = EXIT_CONNECT;
            break;
        }
        errorf("%s %s: %s", method, url, errbuf);
        rc = EXIT_FAIL;
        break;
    default:
        if (r->too_big)
            errorf("%s %s: response larger than %u bytes", method, url, MAX_RESPONSE_BYTES);
        else
            errorf("%s %s: %s", method, url, errbuf);
        rc = EXIT_FAIL;
        break;
    }
done:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    free(url);
    return rc;
}

/* Prints the errors of a failed response: the strings of its JSON "errors"
 * array, else the HTTP status. */
static void
report_http_error(const char *method, const char *path, const http_resp_t *r)
{
    json_t *root, *errs, *e;
    size_t i;
    int n = 0;

    root = r->body.len > 0 ? json_loadb(r->body.data, r->body.len, 0, NULL) : NULL;
    errs = json_is_object(root) ? json_object_get(root, "errors") : NULL;
    json_array_foreach(errs, i, e) {
        if (json_is_string(e)) {
            errorf("%s", json_string_value(e));
            n++;
        }
    }
    if (n == 0)
        errorf("%s %s: the server answered HTTP %ld", method, path, r->status);
    json_decref(root);
}

/* One request whose 2xx answer is JSON: *out is new (json_decref), or NULL
 * when out is NULL. With raw, a 2xx body is printed unchanged instead. */
static int
request(const jobctl_t *j, const char *method, const char *path, const char *body,
        bool raw, json_t **out)
{
    http_resp_t r;
    json_error_t jerr;
    int rc;

    if (out != NULL)
        *out = NULL;
    rc = http_call(j, method, path, body, &r);
    if (rc != EXIT_OK)
        goto done;
    if (r.status < 200 || r.status > 299) {
        report_http_error(method, path, &r);
        rc = EXIT_FAIL;
        goto done;
    }
    if (raw) {
        if (r.body.len > 0) {
            fwrite(r.body.data, 1, r.body.len, stdout);
            if (r.body.data[r.body.len - 1] != '\n')
                putchar('\n');
        }
        goto done;
    }
    if (out == NULL)
        goto done;
    *out = json_loadb(r.body.data != NULL ? r.body.data : "", r.body.len, 0, &jerr);
    if (*out == NULL) {
        errorf("%s %s: the server's answer is not JSON: %s", method, path, jerr.text);
        rc = EXIT_FAIL;
    }
done:
    weir_buf_free(&r.body);
    return rc;
}

/* GET /jobs/{JOB}<suffix> for the job named by the first argument: like
 * request(), with the id escaped into the path. */
static int
job_request(const jobctl_t *j, const char *suffix, bool raw, json_t **out)
{
    char *path, *esc = url_escape(j->pos[0]);
    int rc;

    if (asprintf(&path, "/jobs/%s%s", esc, suffix) < 0)
        die_oom();
    free(esc);
    rc = request(j, "GET", path, NULL, raw, out);
    free(path);
    return rc;
}

/* ---- commands -------------------------------------------------------- */

static int
read_file(const char *path, weir_buf_t *out)
{
    FILE *f = fopen(path, "rb");
    char chunk[65536];
    size_t n;

    if (f == NULL) {
        errorf("cannot read %s: %s", path, strerror(errno));
        return EXIT_FAIL;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (out->len + n > MAX_JOB_FILE_BYTES) {
            errorf("%s: larger than %u bytes", path, MAX_JOB_FILE_BYTES);
            fclose(f);
            return EXIT_FAIL;
        }
        if (weir_buf_append(out, chunk, n) != 0)
            die_oom();
    }
    if (ferror(f)) {
        errorf("cannot read %s: %s", path, strerror(errno));
        fclose(f);
        return EXIT_FAIL;
    }
    fclose(f);
    if (weir_buf_nul(out) != 0)
        die_oom();
    return EXIT_OK;
}

/* obj[key] = string s; fails when key or s is not UTF-8 (what names them
 * in the message). */
static int
set_string(json_t *obj, const char *key, const char *s, size_t n, const char *what)
{
    json_t *v = json_stringn(s, n);

    if (v == NULL || json_object_set_new(obj, key, v) != 0) {
        errorf("%s is not valid UTF-8", what);
        return EXIT_FAIL;
    }
    return EXIT_OK;
}

static int
cmd_submit(jobctl_t *j)
{
    const char *path = j->pos[0];
    weir_buf_t text = WEIR_BUF_INIT;
    json_t *req = NULL, *vars = NULL, *resp = NULL, *id;
    char **names = NULL, *body = NULL, what[256];
    int nnames = 0, i, k, rc;

    rc = read_file(path, &text);
    if (rc != EXIT_OK)
        goto done;
    if (weir_jobfile_var_refs(text.data, text.len, &names, &nnames) != 0) {
        errorf("%s: cannot scan the file for ${VAR} references", path);
        rc = EXIT_FAIL;
        goto done;
    }

    req = json_object();
    vars = json_object();
    if (req == NULL || vars == NULL)
        die_oom();
    snprintf(what, sizeof(what), "%s", path);
    if ((rc = set_string(req, "job", text.data, text.len, what)) != EXIT_OK
        || (rc = set_string(req, "path", path, strlen(path), "the file name")) != EXIT_OK)
        goto done;
    if (j->parallelism > 0 && json_object_set_new(req, "parallelism",
                                                  json_integer(j->parallelism)) != 0)
        die_oom();
    /* every -D, then the environment for the file's other references */
    for (k = 0; k < j->defs.n; k++) {
        snprintf(what, sizeof(what), "-D %s=...", j->defs.keys[k]);
        rc = set_string(vars, j->defs.keys[k], j->defs.vals[k], strlen(j->defs.vals[k]), what);
        if (rc != EXIT_OK)
            goto done;
    }
    for (i = 0; i < nnames; i++) {
        const char *v;

        if (json_object_get(vars, names[i]) != NULL || (v = getenv(names[i])) == NULL)
            continue;
        snprintf(what, sizeof(what), "the environment variable %s", names[i]);
        if ((rc = set_string(vars, names[i], v, strlen(v), what)) != EXIT_OK)
            goto done;
    }
    if (json_object_set(req, "vars", vars) != 0)
        die_oom();
    if (j->from_savepoint != NULL) {
        char abs[PATH_MAX];
        const char *sp = j->from_savepoint;
        if (sp[0] != '/' && realpath(sp, abs) != NULL)
            sp = abs;
        if (set_string(req, "savepoint", sp, strlen(sp), "--from-savepoint") != EXIT_OK)
            die_oom();
        if (j->allow_non_restored &&
            json_object_set_new(req, "allow_non_restored_state", json_true()) != 0)
            die_oom();
    }
    body = json_dumps(req, JSON_COMPACT);
    if (body == NULL)
        die_oom();

    rc = request(j, "POST", "/jobs", body, j->json, j->json ? NULL : &resp);
    if (rc != EXIT_OK || j->json)
        goto done;
    id = json_is_object(resp) ? json_object_get(resp, "jobid") : NULL;
    if (!json_is_string(id)) {
        errorf("the server accepted the job but sent no \"jobid\"");
        rc = EXIT_FAIL;
        goto done;
    }
    printf("%s\n", json_string_value(id));

done:
    for (i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    free(body);
    json_decref(resp);
    json_decref(vars);
    json_decref(req);
    weir_buf_free(&text);
    return rc;
}

/* ---- plan ------------------------------------------------------------- */

#ifdef WEIR_JOBCTL_PLANNER

/* The variables submit would send for text: every -D, then the environment
 * for the file's other ${VAR} references. Fills *vars (owned by the caller:
 * weir_vars_free). */
static int
plan_vars(const jobctl_t *j, const weir_buf_t *text, const char *path, weir_vars_t *vars)
{
    char **names = NULL;
    int nnames = 0, i, k;

    for (k = 0; k < j->defs.n; k++)
        if (weir_vars_set(vars, j->defs.keys[k], j->defs.vals[k]) != 0)
            die_oom();
    if (weir_jobfile_var_refs(text->data, text->len, &names, &nnames) != 0) {
        errorf("%s: cannot scan the file for ${VAR} references", path);
        return EXIT_FAIL;
    }
    for (i = 0; i < nnames; i++) {
        const char *v = getenv(names[i]);
        bool set = false;

        for (k = 0; k < j->defs.n && !set; k++)
            set = strcmp(j->defs.keys[k], names[i]) == 0;
        if (!set && v != NULL && weir_vars_set(vars, names[i], v) != 0)
            die_oom();
    }
    for (i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    return EXIT_OK;
}

/* The plan as JSON, shaped like the job manager's GET /jobs/{id}/plan
 * (Flink's JobPlanInfo) without the job id, plus the job's parallelism,
 * max parallelism and slots. New. */
static json_t *
plan_json(const weir_plan_t *p)
{
    static const char *const ship[] = { "FORWARD", "FORWARD", "REBALANCE", "BROADCAST", "HASH" };
    json_t *nodes = json_array(), *doc;
    char id[16], src[16];

    if (nodes == NULL)
        die_oom();
    for (int v = 0; v < p->nvertices; v++) {
        const weir_plan_vertex_t *pv = &p->vertices[v];
        json_t *ops = json_array(), *inputs = json_array(), *node;
        weir_buf_t kinds = WEIR_BUF_INIT;

        if (ops == NULL || inputs == NULL)
            die_oom();
        for (int k = 0; k < pv->nops; k++) {
            const char *kind = pv->ops[k]->kind != NULL ? pv->ops[k]->kind->name : "?";

            if (weir_buf_appendf(&kinds, "%s%s", k > 0 ? " -> " : "", kind) != 0
                || json_array_append_new(ops, json_pack("{s:s, s:s}", "name", pv->ops[k]->name,
                                                        "kind", kind)) != 0)
                die_oom();
        }
        for (int i = 0; i < pv->nin; i++) {
            const weir_plan_edge_t *e = &p->edges[pv->in_edges[i]];
            json_t *in, *keys;

            snprintf(src, sizeof(src), "v%d", e->src_vertex);
            in = json_pack("{s:i, s:s, s:s, s:s}", "num", e->dst_input, "id", src,
                           "ship_strategy",
                           (unsigned)e->partition < sizeof(ship) / sizeof(ship[0])
                               ? ship[e->partition] : "UNKNOWN",
                           "exchange", "pipelined_bounded");
            if (in == NULL || (keys = json_array()) == NULL)
                die_oom();
            for (int k = 0; k < e->nkeys; k++)
                if (e->schema != NULL && e->key_idx[k] >= 0
                    && e->key_idx[k] < e->schema->nfields)
                    json_array_append_new(keys, json_string(e->schema->fields[e->key_idx[k]].name));
            if (e->nkeys > 0)
                json_object_set_new(in, "keys", keys);
            else
                json_decref(keys);
            json_array_append_new(inputs, in);
        }
        if (weir_buf_nul(&kinds) != 0)
            die_oom();
        snprintf(id, sizeof(id), "v%d", v);
        node = json_pack("{s:s, s:i, s:i, s:s, s:s, s:s, s:o, s:o}", "id", id,
                         "parallelism", pv->parallelism, "max-parallelism", p->max_parallelism,
                         "operator", kinds.data != NULL ? kinds.data : "",
                         "operator_strategy", pv->keyed ? "keyed" : "",
                         "description", pv->name, "operators", ops, "inputs", inputs);
        weir_buf_free(&kinds);
        if (node == NULL || json_array_append_new(nodes, node) != 0)
            die_oom();
    }
    doc = json_pack("{s:{s:s, s:s, s:i, s:i, s:i, s:o}}", "plan", "name", p->jf->name,
                    "type", "STREAMING", "parallelism", p->parallelism,
                    "max-parallelism", p->max_parallelism, "slots", p->slots, "nodes", nodes);
    if (doc == NULL)
        die_oom();
    return doc;
}

/* plan FILE: the planner of the job and task managers, run here. */
static int
cmd_plan(jobctl_t *j)
{
    const char *path = j->pos[0];
    weir_buf_t text = WEIR_BUF_INIT, out = WEIR_BUF_INIT;
    weir_vars_t vars = { 0 };
    weir_err_t err = { 0 };
    weir_plan_t *plan = NULL;
    int rc;

    rc = read_file(path, &text);
    if (rc == EXIT_OK)
        rc = plan_vars(j, &text, path, &vars);
    if (rc != EXIT_OK)
        goto done;
    if (weir_plan_from_text(path, text.data, text.len, &vars, (int)j->parallelism, &plan,
                            &err) != 0) {
        /* the planner's message starts with path:line:col */
        errorf("%s", err.msg[0] != '\0' ? err.msg : "the job does not plan");
        rc = EXIT_FAIL;
        goto done;
    }
    if (j->json) {
        json_t *doc = plan_json(plan);

        if (json_dumpf(doc, stdout, JSON_INDENT(2)) != 0)
            die_oom();
        putchar('\n');
        json_decref(doc);
    } else {
        if (weir_plan_describe(plan, &out) != 0)
            die_oom();
        fwrite(out.data, 1, out.len, stdout);
    }
done:
    weir_plan_destroy(plan);
    weir_buf_free(&out);
    weir_vars_free(&vars);
    weir_buf_free(&text);
    return rc;
}

#else /* !WEIR_JOBCTL_PLANNER */

static int
cmd_plan(jobctl_t *j)
{
    errorf("plan: this jobctl was built without the planner (runtime/cli/meson.build "
           "must link weir_plan_dep and define WEIR_JOBCTL_PLANNER)");
    return EXIT_FAIL;
}

#endif

static int
cmd_list(jobctl_t *j)
{
    static const char *const head[] = { "JOB ID", "NAME", "STATE", "START", "DURATION" };
    json_t *root, *jobs, *job;
    table_t t;
    size_t i;
    int rc;

    rc = request(j, "GET", "/jobs/overview", NULL, j->json, &root);
    if (rc != EXIT_OK || j->json)
        return rc;
    jobs = jlist(root, "jobs");
    if (jobs == NULL) {
        errorf("GET /jobs/overview: the answer has no \"jobs\" list");
        json_decref(root);
        return EXIT_FAIL;
    }
    table_init(&t, 5, head);
    json_array_foreach(jobs, i, job) {
        char b1[64], b2[64], b3[64], start[64], dur[64];
        long long ms;
        const char *id = jtext(job, "jid", b1, sizeof(b1));

        if (strcmp(id, "-") == 0)               /* Flink says "jid" */
            id = jtext(job, "id", b1, sizeof(b1));
        if (!jint(job, "start-time", &ms))
            ms = -1;
        fmt_time(ms, start, sizeof(start));
        if (!jint(job, "duration", &ms))
            ms = -1;
        fmt_duration(ms, dur, sizeof(dur));
        table_add(&t, (const char *const[]){ id, jtext(job, "name", b2, sizeof(b2)),
                                             jtext(job, "state", b3, sizeof(b3)), start, dur });
    }
    table_print(&t, 0);
    table_free(&t);
    json_decref(root);
    return EXIT_OK;
}

/* The "Checkpoints:" line of status, from the job's "checkpoints" summary. */
static void
print_checkpoint_line(const json_t *root)
{
    const json_t *ck = json_object_get(root, "checkpoints");
    const json_t *latest = json_object_get(ck, "latest");
    char line[512], b1[64], b2[64], b3[64], b4[64], b5[64];
    long long every, bytes, ms;
    int n;

    if (!jint(ck, "interval_ms", &every) || every <= 0) {
        print_field("Checkpoints:", "off");
        return;
    }
    n = snprintf(line, sizeof(line), "every %lld ms, %s; %s completed, %s failed", every,
                 jtext(ck, "mode", b1, sizeof(b1)), jtext(ck, "completed", b2, sizeof(b2)),
                 jtext(ck, "failed", b3, sizeof(b3)));
    if (json_is_object(latest) && n > 0 && (size_t)n < sizeof(line)) {
        if (!jint(latest, "bytes", &bytes))
            bytes = -1;
        if (!jint(latest, "duration_ms", &ms))
            ms = -1;
        fmt_bytes(bytes, b4, sizeof(b4));
        fmt_ms(ms, b5, sizeof(b5));
        snprintf(line + n, sizeof(line) - (size_t)n, "; latest %s (%s, %s)",
                 jtext(latest, "id", b1, sizeof(b1)), b4, b5);
    }
    print_field("Checkpoints:", line);
}

static int
cmd_status(jobctl_t *j)
{
    static const char *const vhead[] = { "VERTEX", "NAME", "PARALLELISM", "STATUS",
                                         "IN/S", "OUT/S" };
    static const char *const shead[] = { "SUBTASK", "STATUS", "TASK MANAGER", "FAILURE" };
    json_t *root, *vertices, *v, *subs, *st, *m;
    table_t vt, *sts = NULL;
    char b1[64], b2[64], b3[64], b4[64], b5[64], b6[64];
    const char *id, *failure;
    bool rates = false;
    size_t i, k;
    int rc, c, indent;

    rc = job_request(j, "", j->json, &root);
    if (rc != EXIT_OK || j->json)
        return rc;

    id = jtext(root, "jid", b1, sizeof(b1));
    if (strcmp(id, "-") == 0)
        id = jtext(root, "id", b1, sizeof(b1));
    print_field("Job ID:", id);
    print_field("Name:", jtext(root, "name", b2, sizeof(b2)));
    print_field("State:", jtext(root, "state", b2, sizeof(b2)));
    print_field("Parallelism:", jtext(root, "parallelism", b2, sizeof(b2)));
    print_field("Restarts:", jtext(root, "restarts", b2, sizeof(b2)));
    print_checkpoint_line(root);
    failure = jfailure(root, "failure", b2, sizeof(b2));
    if (strcmp(failure, "-") != 0)
        print_field(strcmp(jtext(root, "state", b3, sizeof(b3)), "FAILED") == 0 ? "Failure:"
                                                                                : "Last failure:",
                    failure);

    vertices = jlist(root, "vertices");
    if (vertices == NULL || json_array_size(vertices) == 0) {
        json_decref(root);
        return EXIT_OK;
    }
    /* a table of vertices, each followed by the table of its subtasks;
     * subtask columns are aligned across vertices. The rate columns are
     * left out when the server sends no metrics at all. */
    json_array_foreach(vertices, i, v)
        rates = rates || json_is_object(json_object_get(v, "metrics"));
    table_init(&vt, rates ? 6 : 4, vhead);
    sts = xrealloc(NULL, json_array_size(vertices) * sizeof(*sts));
    json_array_foreach(vertices, i, v) {
        m = json_object_get(v, "metrics");
        table_add(&vt, (const char *const[]){ jtext(v, "id", b1, sizeof(b1)),
                                              jtext(v, "name", b2, sizeof(b2)),
                                              jtext(v, "parallelism", b3, sizeof(b3)),
                                              jtext(v, "status", b4, sizeof(b4)),
                                              jfmt(m, "numRecordsInPerSecond", "%.1f",
                                                   b5, sizeof(b5)),
                                              jfmt(m, "numRecordsOutPerSecond", "%.1f",
                                                   b6, sizeof(b6)) });
        table_init(&sts[i], 4, shead);
        subs = jlist(v, "subtasks");
        json_array_foreach(subs, k, st) {
            table_add(&sts[i], (const char *const[]){
                          jtext(st, "subtask", b1, sizeof(b1)),
                          jtext(st, "status", b2, sizeof(b2)),
                          jtext(st, "taskmanager-id", b3, sizeof(b3)),
                          jfailure(st, "failure", b4, sizeof(b4)) });
        }
    }
    for (i = 0; i < json_array_size(vertices); i++)
        for (c = 0; c < 4; c++)
            if (sts[i].width[c] > sts[0].width[c])
                sts[0].width[c] = sts[i].width[c];
    indent = 2 + vt.width[0] + 2;
    printf("\nVertices:\n");
    table_print_row(&vt, 0, 2);
    for (i = 0; i < json_array_size(vertices); i++) {
        table_print_row(&vt, (int)i + 1, 2);
        memcpy(sts[i].width, sts[0].width, sizeof(sts[i].width));
        if (sts[i].nrows > 1)
            table_print(&sts[i], indent);
    }
    for (i = 0; i < json_array_size(vertices); i++)
        table_free(&sts[i]);
    free(sts);
    table_free(&vt);
    json_decref(root);
    return EXIT_OK;
}

/* ---- metrics --------------------------------------------------------- */

/* The backpressure level of a subtask from its backpressured time, as the
 * job manager computes it for vertices. */
static const char *
bp_level(const json_t *m)
{
    double ms;

    if (!jnum(m, "backPressuredTimeMsPerSecond", &ms))
        return "-";
    return ms / 1000.0 <= BP_OK_RATIO ? "ok" : ms / 1000.0 <= BP_LOW_RATIO ? "low" : "high";
}

/* One row of the metrics tables: a vertex or a subtask. */
typedef struct {
    const char   *label;       /* "v1" or "0" */
    const char   *name;        /* vertex name or task manager id */
    const json_t *m;           /* the "metrics" object (borrowed) */
    const char   *level;       /* backpressure level */
} mrow_t;

/* Prints two tables of the rows: records and bytes, then time and
 * backpressure (one table would be wider than a terminal). */
static void
print_metric_tables(const char *label_head, const char *name_head, const mrow_t *rows, int n)
{
    const char *const ahead[] = { label_head, name_head, "IN/S", "OUT/S", "RECORDS IN",
                                  "RECORDS OUT", "BYTES IN", "BYTES OUT" };
    const char *const bhead[] = { label_head, "BUSY", "IDLE", "BACKPRESSURED", "BACKPRESSURE",
                                  "DEAD-LETTERED", "PENDING", "WATERMARK (UTC)" };
    char b[8][64];
    table_t ta, tb;
    int i;

    table_init(&ta, 8, ahead);
    table_init(&tb, 8, bhead);
    for (i = 0; i < n; i++) {
        const json_t *m = rows[i].m;

        table_add(&ta, (const char *const[]){
                      rows[i].label, rows[i].name,
                      jfmt(m, "numRecordsInPerSecond", "%.1f", b[0], sizeof(b[0])),
                      jfmt(m, "numRecordsOutPerSecond", "%.1f", b[1], sizeof(b[1])),
                      jtext(m, "read-records", b[2], sizeof(b[2])),
                      jtext(m, "write-records", b[3], sizeof(b[3])),
                      jbytes(m, "read-bytes", b[4], sizeof(b[4])),
                      jbytes(m, "write-bytes", b[5], sizeof(b[5])) });
        table_add(&tb, (const char *const[]){
                      rows[i].label,
                      jshare(m, "busyTimeMsPerSecond", b[0], sizeof(b[0])),
                      jshare(m, "idleTimeMsPerSecond", b[1], sizeof(b[1])),
                      jshare(m, "backPressuredTimeMsPerSecond", b[2], sizeof(b[2])),
                      rows[i].level,
                      jtext(m, "numRecordsDeadLettered", b[3], sizeof(b[3])),
                      jtext(m, "pendingRecords", b[4], sizeof(b[4])),
                      jwatermark(m, b[5], sizeof(b[5])) });
    }
    table_print(&ta, 2);
    putchar('\n');
    table_print(&tb, 2);
    table_free(&ta);
    table_free(&tb);
}

/* The operators table: one row per chained operator, from the
 * "operator-metrics" of every vertex of the array vertices, or of the one
 * vertex object one when it is not NULL. */
static void
print_operator_table(const json_t *vertices, const json_t *one)
{
    static const char *const head[] = { "VERTEX", "OPERATOR", "RECORDS IN", "RECORDS OUT" };
    const json_t *v, *op;
    char b1[64], b2[64], b3[64], b4[64];
    size_t i, k, n = one != NULL ? 1 : json_array_size(vertices);
    table_t t;

    table_init(&t, 4, head);
    for (i = 0; i < n; i++) {
        v = one != NULL ? one : json_array_get(vertices, i);
        json_array_foreach(jlist((json_t *)v, "operator-metrics"), k, op)
            table_add(&t, (const char *const[]){ jtext(v, "id", b1, sizeof(b1)),
                                                 jtext(op, "name", b2, sizeof(b2)),
                                                 jtext(op, "records-in", b3, sizeof(b3)),
                                                 jtext(op, "records-out", b4, sizeof(b4)) });
    }
    if (t.nrows > 1) {
        printf("\nOperators:\n");
        table_print(&t, 2);
    }
    table_free(&t);
}

/* The vertex of job document root that name names: its id ("v1", or "1"
 * for "v1"), its name, or the name of one of its operators. Borrowed, or
 * NULL. */
static json_t *
find_vertex(json_t *root, const char *name)
{
    json_t *vertices = jlist(root, "vertices"), *v, *op;
    char buf[64], vid[32];
    size_t i, k;
    int pass;

    snprintf(vid, sizeof(vid), "v%s", name);
    /* ids first, so that an operator named like an id cannot hide a vertex */
    for (pass = 0; pass < 3; pass++)
        json_array_foreach(vertices, i, v) {
            if (pass == 0 && (strcmp(jtext(v, "id", buf, sizeof(buf)), name) == 0
                              || strcmp(jtext(v, "id", buf, sizeof(buf)), vid) == 0))
                return v;
            if (pass == 1 && strcmp(jtext(v, "name", buf, sizeof(buf)), name) == 0)
                return v;
            if (pass == 2)
                json_array_foreach(jlist(v, "operators"), k, op)
                    if (json_is_string(op) && strcmp(json_string_value(op), name) == 0)
                        return v;
        }
    return NULL;
}

/* metrics JOB --vertex V: GET /jobs/{id} to find V and its operators'
 * figures, then GET /jobs/{id}/vertices/{vid} for its subtasks. */
static int
vertex_metrics(jobctl_t *j, json_t *root)
{
    json_t *v = find_vertex(root, j->vertex), *vdoc = NULL, *subs, *st, *vm;
    const char *level;
    char *suffix, *esc, b1[64], b2[64], b3[64], (*labels)[24];
    weir_buf_t known = WEIR_BUF_INIT;
    mrow_t *rows;
    size_t i;
    int rc, n = 0;

    if (v == NULL) {
        json_array_foreach(jlist(root, "vertices"), i, vm)
            if (weir_buf_appendf(&known, "%s%s '%s'", i > 0 ? ", " : "",
                                 jtext(vm, "id", b1, sizeof(b1)),
                                 jtext(vm, "name", b2, sizeof(b2))) != 0)
                die_oom();
        if (weir_buf_nul(&known) != 0)
            die_oom();
        errorf("job %s has no vertex '%s' (vertices: %s)", j->pos[0], j->vertex,
               known.len > 0 ? known.data : "none");
        weir_buf_free(&known);
        return EXIT_FAIL;
    }
    /* the server's own id ("v1"), escaped all the same */
    esc = url_escape(jtext(v, "id", b1, sizeof(b1)));
    if (asprintf(&suffix, "/vertices/%s", esc) < 0)
        die_oom();
    free(esc);
    rc = job_request(j, suffix, j->json, &vdoc);
    free(suffix);
    if (rc != EXIT_OK || j->json)
        return rc;

    vm = json_object_get(vdoc, "metrics");
    level = json_is_string(json_object_get(vdoc, "backpressure-level"))
                ? json_string_value(json_object_get(vdoc, "backpressure-level"))
                : jtext(v, "backpressure-level", b3, sizeof(b3));
    print_field("Job ID:", j->pos[0]);
    print_field("Vertex:", jtext(vdoc, "id", b1, sizeof(b1)));
    print_field("Name:", jtext(vdoc, "name", b1, sizeof(b1)));
    print_field("Parallelism:", jtext(vdoc, "parallelism", b1, sizeof(b1)));
    print_field("Status:", jtext(vdoc, "status", b1, sizeof(b1)));
    print_field("Backpressure:", level);

    subs = jlist(vdoc, "subtasks");
    rows = xrealloc(NULL, (json_array_size(subs) + 1) * sizeof(*rows));
    labels = xrealloc(NULL, (json_array_size(subs) + 1) * sizeof(*labels));
    json_array_foreach(subs, i, st) {
        const json_t *m = json_object_get(st, "metrics");
        const json_t *tm = json_object_get(st, "taskmanager-id");

        snprintf(labels[n], sizeof(labels[n]), "%s", jtext(st, "subtask", b1, sizeof(b1)));
        rows[n] = (mrow_t){ labels[n], json_is_string(tm) ? json_string_value(tm) : "-", m,
                            bp_level(m) };
        n++;
    }
    rows[n++] = (mrow_t){ "all", "-", vm, level };
    printf("\nSubtasks:\n");
    print_metric_tables("SUBTASK", "TASK MANAGER", rows, n);
    /* the job document has the operators' figures; the vertex document may */
    print_operator_table(NULL, jlist(vdoc, "operator-metrics") != NULL ? vdoc : v);
    free(labels);
    free(rows);
    json_decref(vdoc);
    return EXIT_OK;
}

static int
cmd_metrics(jobctl_t *j)
{
    json_t *root, *vertices, *v;
    mrow_t *rows;
    char (*lab)[2][64];
    size_t i;
    int rc;

    /* --json without --vertex prints the job document: the metrics are in it */
    rc = job_request(j, "", j->json && j->vertex == NULL, &root);
    if (rc != EXIT_OK || (j->json && j->vertex == NULL))
        return rc;
    if (j->vertex != NULL) {
        rc = vertex_metrics(j, root);
        json_decref(root);
        return rc;
    }
    vertices = jlist(root, "vertices");
    if (vertices == NULL) {
        errorf("GET /jobs/%s: the answer has no \"vertices\" list", j->pos[0]);
        json_decref(root);
        return EXIT_FAIL;
    }
    print_field("Job ID:", j->pos[0]);
    {
        char b1[64], b2[64];

        print_field("Name:", jtext(root, "name", b1, sizeof(b1)));
        print_field("State:", jtext(root, "state", b2, sizeof(b2)));
    }
    rows = xrealloc(NULL, (json_array_size(vertices) + 1) * sizeof(*rows));
    lab = xrealloc(NULL, (json_array_size(vertices) + 1) * sizeof(*lab));
    json_array_foreach(vertices, i, v) {
        const char *level = json_string_value(json_object_get(v, "backpressure-level"));

        rows[i] = (mrow_t){ jtext(v, "id", lab[i][0], sizeof(lab[i][0])),
                            jtext(v, "name", lab[i][1], sizeof(lab[i][1])),
                            json_object_get(v, "metrics"), level != NULL ? level : "-" };
    }
    printf("\nVertices:\n");
    print_metric_tables("VERTEX", "NAME", rows, (int)json_array_size(vertices));
    print_operator_table(vertices, NULL);
    free(lab);
    free(rows);
    json_decref(root);
    return EXIT_OK;
}

/* ---- checkpoints and exceptions ----------------------------------------- */

static int
cmd_checkpoints(jobctl_t *j)
{
    static const char *const hhead[] = { "ID", "TYPE", "STATUS", "TRIGGERED", "DURATION",
                                         "SIZE", "ACKS", "FAILURE" };
    static const char *const shead[] = { " ", "MIN", "AVG", "MAX" };
    json_t *root, *hist, *h, *latest, *prog, *sum;
    char b[8][64], line[512];
    long long every, n1, n2;
    table_t t;
    size_t i;
    int rc;

    rc = job_request(j, "/checkpoints", j->json, &root);
    if (rc != EXIT_OK || j->json)
        return rc;
    hist = jlist(root, "history");
    if (!json_is_object(root) || hist == NULL) {
        errorf("GET /jobs/%s/checkpoints: the answer has no \"history\" list", j->pos[0]);
        json_decref(root);
        return EXIT_FAIL;
    }
    print_field("Job ID:", j->pos[0]);
    if (jint(root, "interval_ms", &every) && every > 0) {
        snprintf(line, sizeof(line), "every %lld ms, %s", every,
                 jtext(root, "mode", b[0], sizeof(b[0])));
        print_field("Checkpoints:", line);
    } else {
        print_field("Checkpoints:", "off");
    }
    print_field("Completed:", jtext(root, "completed", b[0], sizeof(b[0])));
    print_field("Failed:", jtext(root, "failed", b[0], sizeof(b[0])));
    prog = json_object_get(root, "in_progress");
    if (json_is_object(prog)) {
        snprintf(line, sizeof(line), "%s (%s/%s subtasks acknowledged)",
                 jtext(prog, "id", b[0], sizeof(b[0])),
                 jtext(prog, "acknowledged", b[1], sizeof(b[1])),
                 jtext(prog, "subtasks", b[2], sizeof(b[2])));
        print_field("In progress:", line);
    } else {
        print_field("In progress:", "-");
    }
    latest = json_object_get(root, "latest");
    if (json_is_object(latest)) {
        fmt_time_ms(jint(latest, "completed_ms", &n1) ? n1 : -1, b[1], sizeof(b[1]));
        fmt_ms(jint(latest, "duration_ms", &n1) ? n1 : -1, b[2], sizeof(b[2]));
        fmt_bytes(jint(latest, "bytes", &n1) ? n1 : -1, b[3], sizeof(b[3]));
        snprintf(line, sizeof(line), "%s, completed %s in %s, %s",
                 jtext(latest, "id", b[0], sizeof(b[0])), b[1], b[2], b[3]);
        print_field("Latest:", line);
        print_field("Latest path:", jtext(latest, "path", b[0], sizeof(b[0])));
    } else {
        print_field("Latest:", "-");
    }
    print_field("Restored from:", jtext(root, "restored_from", b[0], sizeof(b[0])));
    if (json_is_string(json_object_get(root, "last_failure")))
        print_field("Last failure:", jtext(root, "last_failure", b[0], sizeof(b[0])));

    /* the history, newest first as the server sends it */
    table_init(&t, 8, hhead);
    json_array_foreach(hist, i, h) {
        const char *status = jtext(h, "status", b[2], sizeof(b[2]));
        bool done = strcmp(status, "COMPLETED") == 0;

        fmt_time_ms(jint(h, "trigger_timestamp", &n1) ? n1 : -1, b[3], sizeof(b[3]));
        /* an unfinished checkpoint has no duration or size yet (the server
         * sends 0) */
        fmt_ms(done && jint(h, "end_to_end_duration", &n1) ? n1 : -1, b[4], sizeof(b[4]));
        fmt_bytes(done && jint(h, "state_size", &n1) ? n1 : -1, b[5], sizeof(b[5]));
        if (jint(h, "num_acknowledged_subtasks", &n1) && jint(h, "num_subtasks", &n2))
            snprintf(b[6], sizeof(b[6]), "%lld/%lld", n1, n2);
        else
            snprintf(b[6], sizeof(b[6]), "-");
        table_add(&t, (const char *const[]){
                      jtext(h, "id", b[0], sizeof(b[0])),
                      json_is_true(json_object_get(h, "is_savepoint")) ? "savepoint"
                                                                       : "checkpoint",
                      status, b[3], b[4], b[5], b[6],
                      jtext(h, "failure_message", b[7], sizeof(b[7])) });
    }
    printf("\nHistory (newest first):\n");
    if (t.nrows > 1)
        table_print(&t, 2);
    else
        printf("  none yet\n");
    table_free(&t);

    /* min/avg/max of the completed checkpoints the history holds */
    sum = json_object_get(root, "summary");
    if (json_is_object(sum)) {
        const json_t *d = json_object_get(sum, "end_to_end_duration");
        const json_t *z = json_object_get(sum, "state_size");

        table_init(&t, 4, shead);
        fmt_ms(jint(d, "min", &n1) ? n1 : -1, b[0], sizeof(b[0]));
        fmt_ms(jint(d, "avg", &n1) ? n1 : -1, b[1], sizeof(b[1]));
        fmt_ms(jint(d, "max", &n1) ? n1 : -1, b[2], sizeof(b[2]));
        table_add(&t, (const char *const[]){ "duration", b[0], b[1], b[2] });
        fmt_bytes(jint(z, "min", &n1) ? n1 : -1, b[0], sizeof(b[0]));
        fmt_bytes(jint(z, "avg", &n1) ? n1 : -1, b[1], sizeof(b[1]));
        fmt_bytes(jint(z, "max", &n1) ? n1 : -1, b[2], sizeof(b[2]));
        table_add(&t, (const char *const[]){ "size", b[0], b[1], b[2] });
        printf("\nSummary of the completed checkpoints in the history:\n");
        table_print(&t, 2);
        table_free(&t);
    }
    json_decref(root);
    return EXIT_OK;
}

static int
cmd_exceptions(jobctl_t *j)
{
    static const char *const head[] = { "TIME", "ATTEMPT", "EXCEPTION" };
    json_t *root, *hist, *e;
    char b1[64], b2[64], when[64];
    long long ms;
    table_t t;
    size_t i;
    int rc;

    rc = job_request(j, "/exceptions", j->json, &root);
    if (rc != EXIT_OK || j->json)
        return rc;
    hist = jlist(json_object_get(root, "exceptionHistory"), "entries");
    if (!json_is_object(root) || hist == NULL) {
        errorf("GET /jobs/%s/exceptions: the answer has no \"exceptionHistory\" entries",
               j->pos[0]);
        json_decref(root);
        return EXIT_FAIL;
    }
    print_field("Job ID:", j->pos[0]);
    print_field("Root exception:", jtext(root, "rootException", b1, sizeof(b1)));
    fmt_time_ms(jint(root, "timestamp", &ms) ? ms : -1, when, sizeof(when));
    print_field("Time:", when);

    table_init(&t, 3, head);
    json_array_foreach(hist, i, e) {
        fmt_time_ms(jint(e, "timestamp", &ms) ? ms : -1, when, sizeof(when));
        table_add(&t, (const char *const[]){ when, jtext(e, "attempt", b1, sizeof(b1)),
                                             jtext(e, "exceptionName", b2, sizeof(b2)) });
    }
    printf("\nHistory (newest first):\n");
    if (t.nrows > 1)
        table_print(&t, 2);
    else
        printf("  none\n");
    if (json_is_true(json_object_get(json_object_get(root, "exceptionHistory"), "truncated")))
        printf("  (older failures are not kept)\n");
    table_free(&t);
    json_decref(root);
    return EXIT_OK;
}

static int
cmd_cancel(jobctl_t *j)
{
    char *path, *esc;
    int rc;

    esc = url_escape(j->pos[0]);
    if (asprintf(&path, "/jobs/%s?mode=cancel", esc) < 0)
        die_oom();
    free(esc);
    rc = request(j, "PATCH", path, NULL, j->json, NULL);
    free(path);
    if (rc == EXIT_OK && !j->json)
        printf("cancelling %s\n", j->pos[0]);
    return rc;
}

/* savepoint / stop: POST the request, then poll until it completes. */
static int
take_savepoint(jobctl_t *j, bool stop)
{
    char *path, *esc, *body, abs[PATH_MAX];
    const char *dir = j->dir != NULL ? j->dir : getenv("WEIR_SAVEPOINT_DIR");
    json_t *req, *resp = NULL, *rid;
    int rc;

    if (dir == NULL || dir[0] == '\0') {
        errorf("no savepoint directory: give --dir DIR or set WEIR_SAVEPOINT_DIR");
        return EXIT_USAGE;
    }
    if (dir[0] != '/') {
        if (realpath(".", abs) == NULL) {
            errorf("cannot resolve '%s'", dir);
            return EXIT_USAGE;
        }
        size_t n = strlen(abs);
        snprintf(abs + n, sizeof(abs) - n, "/%s", dir);
        dir = abs;
    }
    if (stop && j->drain)
        req = json_pack("{s:s, s:b}", "targetDirectory", dir, "drain", 1);
    else
        req = json_pack("{s:s, s:b}", "target-directory", dir, "cancel-job", stop);
    body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (body == NULL)
        die_oom();
    esc = url_escape(j->pos[0]);
    if (asprintf(&path, stop && j->drain ? "/jobs/%s/stop" : "/jobs/%s/savepoints", esc) < 0)
        die_oom();
    rc = request(j, "POST", path, body, false, &resp);
    free(path);
    free(body);
    if (rc != EXIT_OK) {
        free(esc);
        return rc;
    }
    rid = json_object_get(resp, "request-id");
    if (!json_is_string(rid)) {
        errorf("the server sent no request-id");
        json_decref(resp);
        free(esc);
        return EXIT_FAIL;
    }
    if (asprintf(&path, "/jobs/%s/savepoints/%s", esc, json_string_value(rid)) < 0)
        die_oom();
    free(esc);
    json_decref(resp);
    for (long waited = 0;; waited += 100) {
        json_t *st = NULL, *op, *loc, *cause;
        const char *status;

        rc = request(j, "GET", path, NULL, false, &st);
        if (rc != EXIT_OK)
            break;
        status = json_string_value(json_object_get(json_object_get(st, "status"), "id"));
        op = json_object_get(st, "operation");
        loc = json_object_get(op, "location");
        cause = json_object_get(op, "failure-cause");
        if (status != NULL && strcmp(status, "COMPLETED") == 0) {
            if (json_is_string(loc)) {
                if (j->json)
                    printf("{\"location\": \"%s\"}\n", json_string_value(loc));
                else
                    printf("%s\n", json_string_value(loc));
            } else {
                errorf("savepoint failed: %s",
                       json_string_value(json_object_get(cause, "stack-trace")) ?: "unknown");
                rc = EXIT_FAIL;
            }
            json_decref(st);
            break;
        }
        json_decref(st);
        if (waited > j->wait_s * 1000) {
            errorf("the savepoint is not complete after %ld s", j->wait_s);
            rc = EXIT_FAIL;
            break;
        }
        struct timespec ts = { 0, 100 * 1000000L };
        nanosleep(&ts, NULL);
    }
    free(path);
    return rc;
}

static int
cmd_savepoint(jobctl_t *j)
{
    return take_savepoint(j, false);
}

static int
cmd_stop(jobctl_t *j)
{
    return take_savepoint(j, true);
}

/* The age of a heartbeat: "timeSinceLastHeartbeat" in milliseconds. Flink
 * puts the heartbeat's Unix time in ms there instead; a value that large
 * (after 2001) is read as a time. */
static void
fmt_heartbeat(const json_t *tm, char *buf, size_t cap)
{
    long long ms;
    struct timespec now;

    if (!jint(tm, "timeSinceLastHeartbeat", &ms) || ms < 0) {
        snprintf(buf, cap, "-");
        return;
    }
    if (ms > 1000000000000LL) {
        clock_gettime(CLOCK_REALTIME, &now);
        ms = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 - ms;
        if (ms < 0)
            ms = 0;
    }
    fmt_duration(ms, buf, cap - 4);
    strcat(buf, " ago");
}

static int
cmd_taskmanagers(jobctl_t *j)
{
    static const char *const head[] = { "ID", "ADDRESS", "SLOTS", "FREE", "LAST HEARTBEAT" };
    json_t *root, *tms, *tm;
    table_t t;
    size_t i;
    int rc;

    rc = request(j, "GET", "/taskmanagers", NULL, j->json, &root);
    if (rc != EXIT_OK || j->json)
        return rc;
    tms = jlist(root, "taskmanagers");
    if (tms == NULL) {
        errorf("GET /taskmanagers: the answer has no \"taskmanagers\" list");
        json_decref(root);
        return EXIT_FAIL;
    }
    table_init(&t, 5, head);
    json_array_foreach(tms, i, tm) {
        char b1[64], b2[64], b3[64], b4[64], hb[64];

        fmt_heartbeat(tm, hb, sizeof(hb));
        table_add(&t, (const char *const[]){ jtext(tm, "id", b1, sizeof(b1)),
                                             jtext(tm, "path", b2, sizeof(b2)),
                                             jtext(tm, "slotsNumber", b3, sizeof(b3)),
                                             jtext(tm, "freeSlots", b4, sizeof(b4)), hb });
    }
    table_print(&t, 0);
    table_free(&t);
    json_decref(root);
    return EXIT_OK;
}

static int
cmd_overview(jobctl_t *j)
{
    static const char *const fields[][2] = {
        { "taskmanagers",    "Task managers:" },
        { "slots-total",     "Slots total:" },
        { "slots-available", "Slots available:" },
        { "jobs-running",    "Jobs running:" },
        { "jobs-finished",   "Jobs finished:" },
        { "jobs-cancelled",  "Jobs cancelled:" },
        { "jobs-failed",     "Jobs failed:" },
    };
    json_t *root;
    char buf[64];
    size_t i;
    int rc;

    rc = request(j, "GET", "/overview", NULL, j->json, &root);
    if (rc != EXIT_OK || j->json)
        return rc;
    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        print_field(fields[i][1], jtext(root, fields[i][0], buf, sizeof(buf)));
    json_decref(root);
    return EXIT_OK;
}

/* ---- the command line ------------------------------------------------ */

static void
print_usage(FILE *out)
{
    int i;

    fprintf(out,
            "usage: jobctl [--rest URL] [--json] COMMAND [ARGS]\n"
            "\n"
            "Controls a weir cluster through its job manager's REST API.\n"
            "\n"
            "commands:\n");
    for (i = 0; i < NCOMMANDS; i++) {
        char syn[64];

        snprintf(syn, sizeof(syn), "%s %s", commands[i].name, commands[i].args);
        fprintf(out, "  %-36s  %s\n", syn, commands[i].summary);
    }
    fprintf(out,
            "\n"
            "options:\n"
            "  --rest URL    the job manager's REST address (default: $WEIR_REST, else\n"
            "                " DEFAULT_REST ")\n"
            "  --json        print the server's JSON instead of a table\n"
            "  -h, --help    this text; `jobctl COMMAND --help` describes one command\n"
            "\n"
            "exit codes: 0 ok, 1 request or server error, 2 usage error, 3 cannot connect\n");
}

static void
print_cmd_usage(const cmd_t *c, FILE *out)
{
    if (c->local) {                    /* its help names its own --json */
        fprintf(out, "usage: jobctl %s %s [--json]\n\n%s", c->name, c->args, c->help);
        return;
    }
    fprintf(out, "usage: jobctl %s%s%s [--rest URL] [--json]\n\n%s",
            c->name, c->args[0] != '\0' ? " " : "", c->args, c->help);
    fprintf(out,
            "\n"
            "  --rest URL      the job manager's REST address (default: $WEIR_REST, else\n"
            "                  " DEFAULT_REST ")\n"
            "  --json          print the server's JSON instead of a table\n");
}

/* A usage error: message, a hint, exit code 2. */
static int
usage_error(const cmd_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
usage_error(const cmd_t *c, const char *fmt, ...)
{
    va_list ap;

    fputs("jobctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    if (c != NULL)
        fprintf(stderr, "\nusage: jobctl %s%s%s\nTry 'jobctl %s --help'.\n", c->name,
                c->args[0] != '\0' ? " " : "", c->args, c->name);
    else
        fputs("\nTry 'jobctl --help'.\n", stderr);
    return EXIT_USAGE;
}

/* The value of option name at argv[*i]: "--name=V", "-xV" or the next
 * argument. NULL when missing. */
static const char *
opt_value(int argc, char **argv, int *i, const char *name)
{
    const char *a = argv[*i];
    size_t n = strlen(name);

    if (strncmp(a, name, n) == 0 && a[n] == '=')
        return a + n + 1;
    if (n == 2 && strncmp(a, name, 2) == 0 && a[2] != '\0')
        return a + 2;                  /* -p4, -DKEY=V */
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

static bool
opt_is(const char *a, const char *name)
{
    size_t n = strlen(name);

    if (strncmp(a, name, n) != 0)
        return false;
    if (a[n] == '\0' || (a[n] == '=' && name[1] == '-'))
        return true;
    return n == 2 && a[n] != '\0';     /* a short option with its value attached */
}

/* Parses argv into j and *cmd. Returns -1 to go on, else an exit code
 * (help printed: 0; usage error: 2). */
static int
parse_args(int argc, char **argv, jobctl_t *j, const cmd_t **cmd)
{
    const cmd_t *c = NULL;
    const char *rest = NULL, *v;
    bool opts_done = false;
    int i, k;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (!opts_done && a[0] == '-' && a[1] != '\0') {
            if (strcmp(a, "--") == 0) {
                opts_done = true;
            } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
                if (c != NULL)
                    print_cmd_usage(c, stdout);
                else
                    print_usage(stdout);
                return EXIT_OK;
            } else if (strcmp(a, "--json") == 0) {
                j->json = true;
            } else if (opt_is(a, "--rest")) {
                if ((rest = opt_value(argc, argv, &i, "--rest")) == NULL || rest[0] == '\0')
                    return usage_error(c, "--rest needs a URL");
            } else if (c != NULL && (c->opts & OPT_VARS)
                       && (opt_is(a, "-p") || opt_is(a, "--parallelism"))) {
                char *end;

                v = opt_value(argc, argv, &i, a[1] == '-' ? "--parallelism" : "-p");
                if (v == NULL)
                    return usage_error(c, "-p needs a number");
                errno = 0;
                j->parallelism = strtol(v, &end, 10);
                if (errno != 0 || end == v || *end != '\0' || j->parallelism < 1
                    || j->parallelism > MAX_PARALLELISM)
                    return usage_error(c, "-p: '%s' is not a parallelism (1..%ld)", v,
                                       MAX_PARALLELISM);
            } else if (c != NULL && (c->opts & OPT_VARS) && opt_is(a, "-D")) {
                const char *eq;
                char *key;

                v = opt_value(argc, argv, &i, "-D");
                if (v == NULL)
                    return usage_error(c, "-D needs KEY=VALUE");
                eq = strchr(v, '=');
                if (eq == NULL || eq == v)
                    return usage_error(c, "-D '%s': expected KEY=VALUE", v);
                key = strndup(v, (size_t)(eq - v));
                if (key == NULL || weir_vars_set(&j->defs, key, eq + 1) != 0)
                    die_oom();
                free(key);
            } else if (c != NULL && (c->opts & OPT_RESTORE) && opt_is(a, "--from-savepoint")) {
                j->from_savepoint = opt_value(argc, argv, &i, "--from-savepoint");
                if (j->from_savepoint == NULL || j->from_savepoint[0] == '\0')
                    return usage_error(c, "--from-savepoint needs a directory");
            } else if (c != NULL && (c->opts & OPT_RESTORE)
                       && strcmp(a, "--allow-non-restored-state") == 0) {
                j->allow_non_restored = true;
            } else if (c != NULL && (c->opts & OPT_DIR) && opt_is(a, "--dir")) {
                j->dir = opt_value(argc, argv, &i, "--dir");
                if (j->dir == NULL || j->dir[0] == '\0')
                    return usage_error(c, "--dir needs a directory");
            } else if (c != NULL && (c->opts & OPT_DRAIN) && strcmp(a, "--drain") == 0) {
                j->drain = true;
            } else if (c != NULL && (c->opts & OPT_VERTEX) && opt_is(a, "--vertex")) {
                j->vertex = opt_value(argc, argv, &i, "--vertex");
                if (j->vertex == NULL || j->vertex[0] == '\0')
                    return usage_error(c, "--vertex needs a vertex id or name");
            } else if (c == NULL) {
                return usage_error(NULL, "unknown option '%s'", a);
            } else {
                return usage_error(c, "unknown option '%s' for '%s'", a, c->name);
            }
            continue;
        }
        if (c == NULL) {
            for (k = 0; k < NCOMMANDS; k++)
                if (strcmp(a, commands[k].name) == 0)
                    c = &commands[k];
            if (c == NULL)
                return usage_error(NULL, "unknown command '%s'", a);
            continue;
        }
        if (j->npos >= c->npos)
            return usage_error(c, "unexpected argument '%s'", a);
        j->pos[j->npos++] = a;
    }
    if (c == NULL)
        return usage_error(NULL, "missing command");
    if (j->npos < c->npos)
        return usage_error(c, "%s: missing %.*s", c->name, (int)strcspn(c->args, " "),
                           c->args);

    if (rest == NULL)
        rest = getenv("WEIR_REST");
    if (rest == NULL || rest[0] == '\0')
        rest = DEFAULT_REST;
    j->rest = xstrdup(rest);
    for (k = (int)strlen(j->rest); k > 0 && j->rest[k - 1] == '/'; k--)
        j->rest[k - 1] = '\0';
    *cmd = c;
    return -1;
}

int
main(int argc, char **argv)
{
    jobctl_t j;
    const cmd_t *cmd = NULL;
    int rc;

    memset(&j, 0, sizeof(j));
    j.wait_s = 600;
    rc = parse_args(argc, argv, &j, &cmd);
    if (rc >= 0)
        goto done;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        errorf("cannot initialise libcurl");
        rc = EXIT_FAIL;
        goto done;
    }
    rc = cmd->run(&j);
    curl_global_cleanup();
    if (fflush(stdout) != 0 && rc == EXIT_OK) {
        errorf("cannot write the output: %s", strerror(errno));
        rc = EXIT_FAIL;
    }
done:
    weir_vars_free(&j.defs);
    free(j.rest);
    return rc;
}
