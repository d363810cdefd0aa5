/* runtime/cli/jobctl.c -- the command line of weir.
 *
 * jobctl talks to the job manager's REST API (libcurl for HTTP, jansson for
 * the JSON documents) and shows the answers as tables for people, or passes
 * the server's JSON through unchanged with --json for scripts:
 *
 *   jobctl submit jobs/fraud.yaml -p 2 -D TOPIC=tx
 *   jobctl list
 *   jobctl status 3f2a9c
 *   jobctl cancel 3f2a9c
 *   jobctl taskmanagers
 *   jobctl overview
 *
 * The commands live in one table (name, arguments, help, function). A
 * command's function returns the process exit code: 0 ok, 1 a request the
 * server refused or answered strangely (its {"errors": [...]} messages are
 * printed to stderr), 2 a usage error, 3 the job manager cannot be reached.
 *
 * submit sends the job file's text, not a parsed form: the job manager parses
 * and validates it and reports errors with "path:line:col". jobctl only
 * resolves the ${VAR} references it finds in the text, from -D first and then
 * its environment, so that a job can be parameterised from the shell that
 * submits it. Unresolved names are not sent; the server then reports them
 * (unless the reference has a default).
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

/* ---- constants ------------------------------------------------------- */

enum {
    EXIT_OK      = 0,
    EXIT_FAIL    = 1,    /* request or server error */
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

/* ---- state ----------------------------------------------------------- */

typedef struct jobctl {
    char        *rest;          /* base URL without a trailing '/' (owned) */
    bool         json;
    long         parallelism;   /* submit -p; 0 when not given */
    weir_vars_t  defs;          /* submit -D KEY=VALUE (owned) */
    const char  *from_savepoint;/* submit --from-savepoint DIR */
    bool         allow_non_restored;
    const char  *dir;           /* savepoint/stop --dir DIR */
    long         wait_s;        /* savepoint/stop: how long to wait */
    int          npos;
    const char  *pos[MAX_POSITIONAL];   /* borrowed from argv */
} jobctl_t;

typedef struct cmd {
    const char *name;
    const char *args;           /* the argument synopsis */
    const char *summary;        /* one line for the command list */
    const char *help;           /* the paragraph of `jobctl CMD --help` */
    int         npos;           /* positional arguments it takes */
    bool        submit_opts;    /* accepts -p and -D */
    int       (*run)(jobctl_t *j);
} cmd_t;

static int cmd_submit(jobctl_t *j);
static int cmd_list(jobctl_t *j);
static int cmd_status(jobctl_t *j);
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
      1, true, cmd_submit },
    { "list", "", "list jobs",
      "Lists the jobs the job manager knows: id, name, state, start time (local\n"
      "time) and duration.\n",
      0, false, cmd_list },
    { "status", "JOB", "show a job, its vertices and their subtasks",
      "Shows job JOB: its name, state, parallelism and failure (if any), then each\n"
      "vertex with its subtasks, their state and task manager.\n",
      1, false, cmd_status },
    { "cancel", "JOB", "cancel a job",
      "Asks the job manager to cancel job JOB. The job stops asynchronously;\n"
      "`jobctl status JOB` shows when it is CANCELED.\n",
      1, false, cmd_cancel },
    { "savepoint", "JOB [--dir DIR]", "write a savepoint of a running job",
      "Takes a savepoint of job JOB into DIR (default $WEIR_SAVEPOINT_DIR, absolute)\n"
      "and prints its directory once it is complete. A savepoint is a self-contained\n"
      "copy of a checkpoint: submit --from-savepoint starts a job from it, at any\n"
      "parallelism.\n",
      1, false, cmd_savepoint },
    { "stop", "JOB [--dir DIR]", "write a savepoint, then stop the job",
      "Takes a savepoint of job JOB like `savepoint`, then stops the job (it ends\n"
      "FINISHED), and prints the savepoint's directory.\n",
      1, false, cmd_stop },
    { "taskmanagers", "", "list task managers and their slots",
      "Lists the registered task managers: id, address, slots, free slots and the\n"
      "time since their last heartbeat.\n",
      0, false, cmd_taskmanagers },
    { "overview", "", "show a summary of the cluster",
      "Shows the number of task managers, total and available slots, and the jobs\n"
      "by state.\n",
      0, false, cmd_overview },
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

static int
cmd_status(jobctl_t *j)
{
    static const char *const vhead[] = { "VERTEX", "NAME", "PARALLELISM", "STATUS" };
    static const char *const shead[] = { "SUBTASK", "STATUS", "TASK MANAGER", "FAILURE" };
    json_t *root, *vertices, *v, *subs, *st;
    table_t vt, *sts = NULL;
    char *path, *esc, b1[64], b2[64], b3[64], b4[64];
    const char *id, *failure;
    size_t i, k;
    int rc, c, indent;

    esc = url_escape(j->pos[0]);
    if (asprintf(&path, "/jobs/%s", esc) < 0)
        die_oom();
    free(esc);
    rc = request(j, "GET", path, NULL, j->json, &root);
    free(path);
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
    {
        json_t *ck = json_object_get(root, "checkpoints");
        long long every = (long long)json_integer_value(json_object_get(ck, "interval_ms"));
        char line[512];
        if (ck != NULL && every > 0) {
            json_t *latest = json_object_get(ck, "latest");
            int n = snprintf(line, sizeof(line), "every %lld ms, %s; %lld completed, %lld failed",
                             every, json_string_value(json_object_get(ck, "mode")),
                             (long long)json_integer_value(json_object_get(ck, "completed")),
                             (long long)json_integer_value(json_object_get(ck, "failed")));
            if (json_is_object(latest) && n > 0 && (size_t)n < sizeof(line))
                snprintf(line + n, sizeof(line) - (size_t)n,
                         "; latest %lld (%lld bytes, %lld ms)",
                         (long long)json_integer_value(json_object_get(latest, "id")),
                         (long long)json_integer_value(json_object_get(latest, "bytes")),
                         (long long)json_integer_value(json_object_get(latest, "duration_ms")));
            print_field("Checkpoints:", line);
        } else {
            print_field("Checkpoints:", "off");
        }
    }
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
     * subtask columns are aligned across vertices */
    table_init(&vt, 4, vhead);
    sts = xrealloc(NULL, json_array_size(vertices) * sizeof(*sts));
    json_array_foreach(vertices, i, v) {
        table_add(&vt, (const char *const[]){ jtext(v, "id", b1, sizeof(b1)),
                                              jtext(v, "name", b2, sizeof(b2)),
                                              jtext(v, "parallelism", b3, sizeof(b3)),
                                              jtext(v, "status", b4, sizeof(b4)) });
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
    req = json_pack("{s:s, s:b}", "target-directory", dir, "cancel-job", stop);
    body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (body == NULL)
        die_oom();
    esc = url_escape(j->pos[0]);
    if (asprintf(&path, "/jobs/%s/savepoints", esc) < 0)
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
            } else if (c != NULL && c->submit_opts
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
            } else if (c != NULL && c->submit_opts && strcmp(a, "--from-savepoint") == 0) {
                j->from_savepoint = opt_value(argc, argv, &i, "--from-savepoint");
                if (j->from_savepoint == NULL)
                    return usage_error(c, "--from-savepoint needs a directory");
            } else if (c != NULL && c->submit_opts &&
                       strcmp(a, "--allow-non-restored-state") == 0) {
                j->allow_non_restored = true;
            } else if (c != NULL && (c->run == cmd_savepoint || c->run == cmd_stop)) {
                if (strcmp(a, "--dir") != 0)
                    return usage_error(c, "unknown option '%s' for '%s'", a, c->name);
                j->dir = opt_value(argc, argv, &i, "--dir");
                if (j->dir == NULL)
                    return usage_error(c, "--dir needs a directory");
            } else if (c != NULL && c->submit_opts && opt_is(a, "-D")) {
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
        return usage_error(c, "%s: missing %s", c->name,
                           strcmp(c->name, "submit") == 0 ? "FILE" : "JOB");

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
