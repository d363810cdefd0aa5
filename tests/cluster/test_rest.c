/* tests/cluster/test_rest.c -- the REST API against a running job.
 *
 * The job: a rate-limited generator -> key = id % 7 (chained: vertex v0,
 * parallelism 2) -> keyed count (v1, parallelism 2, a HASH edge on "key")
 * -> file sink (v2, parallelism 1, a REBALANCE edge), checkpointing every
 * 300 ms, on two task managers with two slots each. Every endpoint of
 * docs/rest-api.md is asked, with exact checks where the value follows from
 * the job file or the cluster's options and "> 0" where it follows from
 * records flowing; then the error answers (404, 400, 405, 413, 431, and
 * path traversal, which must never return a file); then /metrics, read by
 * a strict parser of the Prometheus text format written here, whose
 * counters must never go down between two scrapes while records flow; and
 * the write endpoints: stop with a savepoint (FINISHED), a savepoint into
 * the default directory, cancel, and a raw-YAML submission.
 *
 * Raw requests (the ones curl would normalize, or that need a header the
 * harness cannot show) go over a plain socket.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define CKPT_INTERVAL_MS 300

static const char job_yaml[] =
    "name: rest-counts\n"
    "parallelism: 2\n"
    "checkpoint:\n"
    "  interval: 300ms\n"
    "  retained: 2\n"
    "restart: {strategy: fixed_delay, attempts: 3, delay: 2s}\n"
    "sources:\n"
    "  - name: gen\n"
    "    kind: datagen\n"
    "    rate: ${RATE}\n"
    "    fields:\n"
    "      - {name: id, type: int, gen: sequence, start: 0}\n"
    "operators:\n"
    "  - {name: keyed, kind: map, input: gen, fields: [id, {name: key, expr: \"id % 7\"}]}\n"
    "  - {name: counts, kind: count, input: keyed, key_by: key, as: n}\n"
    "sinks:\n"
    "  - {name: out, kind: file, input: counts, parallelism: 1, path: \"${OUT}\"}\n";

/* ---- JSON helpers ----------------------------------------------------- */

/* The value at a dotted path ("vertices.0.id": object keys and array
 * indexes), or NULL. Borrowed. */
static json_t *
jget(json_t *doc, const char *path)
{
    char buf[256], *save = NULL, *tok;

    snprintf(buf, sizeof(buf), "%s", path);
    for (tok = strtok_r(buf, ".", &save); tok != NULL && doc != NULL;
         tok = strtok_r(NULL, ".", &save)) {
        if (json_is_array(doc) && isdigit((unsigned char)tok[0]))
            doc = json_array_get(doc, strtoul(tok, NULL, 10));
        else
            doc = json_object_get(doc, tok);
    }
    return doc;
}

static long long
jint(json_t *doc, const char *path)
{
    json_t *v = jget(doc, path);

    if (!json_is_integer(v)) {
        char *s = json_dumps(doc, JSON_COMPACT);
        fprintf(stderr, "document: %.4000s\n", s ? s : "?");
        free(s);
        fail_msg("%s is not an integer", path);
    }
    return json_integer_value(v);
}

static double
jnum(json_t *doc, const char *path)
{
    json_t *v = jget(doc, path);

    if (!json_is_number(v))
        fail_msg("%s is not a number", path);
    return json_number_value(v);
}

static const char *
jstrv(json_t *doc, const char *path)
{
    json_t *v = jget(doc, path);

    if (!json_is_string(v)) {
        char *s = json_dumps(doc, JSON_COMPACT);
        fprintf(stderr, "document: %.4000s\n", s ? s : "?");
        free(s);
        fail_msg("%s is not a string", path);
    }
    return json_string_value(v);
}

#define EXPECT_STR(doc, path, want) assert_string_equal(jstrv((doc), (path)), (want))
#define EXPECT_INT(doc, path, want) assert_int_equal(jint((doc), (path)), (want))

/* GET path; fails unless the status is 200. New reference. */
static json_t *
get_ok(hc_cluster_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static json_t *
get_ok(hc_cluster_t *c, const char *fmt, ...)
{
    char path[512];
    va_list ap;
    long st;
    json_t *doc;

    va_start(ap, fmt);
    vsnprintf(path, sizeof(path), fmt, ap);
    va_end(ap);
    doc = hc_get_json(c, path, &st);
    if (st != 200) {
        char *s = json_dumps(doc, JSON_COMPACT);
        fail_msg("GET %s -> %ld: %s", path, st, s ? s : "?");
    }
    return doc;
}

/* An error answer: the status, and a body {"errors": ["...", ...]} with at
 * least one non-empty string. Returns the first message (static copy). */
static const char *
check_error_body(const char *what, long st, long want, const char *body)
{
    static char first[1024];
    json_t *doc = json_loads(body, 0, NULL), *errs;

    if (st != want)
        fail_msg("%s -> %ld, expected %ld: %s", what, st, want, body);
    errs = json_object_get(doc, "errors");
    if (!json_is_array(errs) || json_array_size(errs) < 1 || json_object_size(doc) != 1 ||
        !json_is_string(json_array_get(errs, 0)) ||
        json_string_length(json_array_get(errs, 0)) == 0)
        fail_msg("%s: the body is not {\"errors\": [\"...\"]}: %s", what, body);
    for (size_t i = 0; i < json_array_size(errs); i++)
        if (!json_is_string(json_array_get(errs, i)))
            fail_msg("%s: errors[%zu] is not a string", what, i);
    snprintf(first, sizeof(first), "%s", json_string_value(json_array_get(errs, 0)));
    json_decref(doc);
    return first;
}

/* hc_http and check_error_body together. */
static const char *
expect_error(hc_cluster_t *c, const char *method, const char *path, const char *data,
             const char *ctype, long want)
{
    char *body, what[600];
    const char *msg;
    long st = hc_http(c, method, path, data, ctype, &body);

    snprintf(what, sizeof(what), "%s %s", method, path);
    msg = check_error_body(what, st, want, body);
    free(body);
    return msg;
}

/* ---- raw HTTP --------------------------------------------------------- */

typedef struct raw_resp {
    int   status;
    char *head;          /* status line and headers (new) */
    char *body;          /* (new) */
} raw_resp_t;

/* Sends req (len bytes) to the REST port as is and reads the answer until
 * the server closes; "Connection: close" belongs in req. */
static raw_resp_t
raw_http(hc_cluster_t *c, const char *req, size_t len)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)c->rest_port) };
    size_t cap = 1 << 16, n = 0, off = 0;
    char *buf = malloc(cap), *sep;
    raw_resp_t r = { 0 };
    int fd;

    assert_non_null(buf);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
        fail_msg("connect to the REST port: %s", strerror(errno));
    while (off < len) {
        ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break;          /* the server may answer (413, 431) before reading all */
        }
        off += (size_t)w;
    }
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        ssize_t got;
        if (poll(&p, 1, 10000) <= 0)
            fail_msg("no answer from the REST port within 10 s");
        if (n + 4096 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
        got = recv(fd, buf + n, cap - n - 1, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;          /* EOF, or a reset after the answer */
        n += (size_t)got;
    }
    close(fd);
    buf[n] = '\0';
    if (sscanf(buf, "HTTP/1.1 %d", &r.status) != 1)
        fail_msg("not an HTTP answer: %.200s", buf);
    sep = strstr(buf, "\r\n\r\n");
    if (sep == NULL)
        fail_msg("an answer without the end of its header section: %.200s", buf);
    r.head = strndup(buf, (size_t)(sep - buf));
    r.body = strdup(sep + 4);
    free(buf);
    return r;
}

static raw_resp_t
raw_get(hc_cluster_t *c, const char *method, const char *target)
{
    char req[1024];
    int n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Connection: close\r\n\r\n", method, target);
    return raw_http(c, req, (size_t)n);
}

static void
raw_free(raw_resp_t *r)
{
    free(r->head);
    free(r->body);
}

/* ---- a strict parser of the Prometheus text exposition (0.0.4) ---------- */

typedef struct prom_family {
    char name[128];
    char type[16];
    bool help, typed, has_samples, closed;
} prom_family_t;

typedef struct prom_sample {
    char  *key;          /* name{label="value",...} with the labels sorted by name */
    char   family[128];
    bool   counter;
    double value;
} prom_sample_t;

typedef struct prom {
    prom_family_t *fam;
    int            nfam;
    prom_sample_t *s;
    int            ns;
    char           err[512];
} prom_t;

static void
prom_free(prom_t *p)
{
    for (int i = 0; i < p->ns; i++)
        free(p->s[i].key);
    free(p->s);
    free(p->fam);
    memset(p, 0, sizeof(*p));
}

static prom_family_t *
prom_family(prom_t *p, const char *name, bool create)
{
    for (int i = 0; i < p->nfam; i++)
        if (strcmp(p->fam[i].name, name) == 0)
            return &p->fam[i];
    if (!create)
        return NULL;
    p->fam = realloc(p->fam, sizeof(*p->fam) * (size_t)(p->nfam + 1));
    assert_non_null(p->fam);
    memset(&p->fam[p->nfam], 0, sizeof(p->fam[0]));
    snprintf(p->fam[p->nfam].name, sizeof(p->fam[0].name), "%s", name);
    return &p->fam[p->nfam++];
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* (metric) or [a-zA-Z_][a-zA-Z0-9_]* (label);
 * returns the length of the name at s, 0 when there is none. */
static size_t
prom_name_len(const char *s, bool metric)
{
    size_t n = 0;

    if (!(isalpha((unsigned char)s[0]) || s[0] == '_' || (metric && s[0] == ':')))
        return 0;
    while (isalnum((unsigned char)s[n]) || s[n] == '_' || (metric && s[n] == ':'))
        n++;
    return n;
}

/* A Go-ParseFloat-style value as the format allows: a decimal float, or
 * NaN, +Inf, -Inf. No hex floats, no "inf"/"nan(...)" spellings. */
static bool
prom_float(const char *s, size_t n, double *out)
{
    char buf[64];
    size_t i = 0, digits = 0;

    if (n == 0 || n >= sizeof(buf))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (strcmp(buf, "NaN") == 0) { *out = NAN; return true; }
    if (strcmp(buf, "+Inf") == 0) { *out = INFINITY; return true; }
    if (strcmp(buf, "-Inf") == 0) { *out = -INFINITY; return true; }
    if (buf[i] == '+' || buf[i] == '-')
        i++;
    while (isdigit((unsigned char)buf[i])) { i++; digits++; }
    if (buf[i] == '.') {
        i++;
        while (isdigit((unsigned char)buf[i])) { i++; digits++; }
    }
    if (digits == 0)
        return false;
    if (buf[i] == 'e' || buf[i] == 'E') {
        size_t ed = 0;
        i++;
        if (buf[i] == '+' || buf[i] == '-')
            i++;
        while (isdigit((unsigned char)buf[i])) { i++; ed++; }
        if (ed == 0)
            return false;
    }
    if (i != n)
        return false;
    *out = strtod(buf, NULL);
    return true;
}

typedef struct { char name[128]; char *value; } prom_label_t;

static int
label_cmp(const void *a, const void *b)
{
    return strcmp(((const prom_label_t *)a)->name, ((const prom_label_t *)b)->name);
}

#define PERR(...) do { snprintf(p->err, sizeof(p->err), __VA_ARGS__); goto fail; } while (0)

/* Parses one sample line into p; 0, or -1 with p->err. */
static int
prom_sample_line(prom_t *p, const char *line, int lineno)
{
    prom_label_t labels[32];
    int nl = 0;
    size_t n = prom_name_len(line, true), k, vlen;
    char name[128], family[128];
    const char *s = line + n;
    prom_family_t *f;
    double v;
    char key[4096];
    size_t ko;

    if (n == 0 || n >= sizeof(name))
        PERR("line %d: bad metric name: %s", lineno, line);
    memcpy(name, line, n);
    name[n] = '\0';
    if (*s == '{') {
        s++;
        while (*s != '}') {
            size_t ln = prom_name_len(s, false);
            char *val;
            size_t vo = 0;
            if (ln == 0 || ln >= sizeof(labels[0].name))
                PERR("line %d: bad label name at '%.20s'", lineno, s);
            if (s[0] == '_' && s[1] == '_')
                PERR("line %d: reserved label name (__) at '%.20s'", lineno, s);
            if (nl == 32)
                PERR("line %d: too many labels", lineno);
            memcpy(labels[nl].name, s, ln);
            labels[nl].name[ln] = '\0';
            for (int i = 0; i < nl; i++)
                if (strcmp(labels[i].name, labels[nl].name) == 0)
                    PERR("line %d: label %s twice", lineno, labels[nl].name);
            s += ln;
            if (s[0] != '=' || s[1] != '"')
                PERR("line %d: expected =\" after label %s", lineno, labels[nl].name);
            s += 2;
            val = malloc(strlen(s) + 1);
            assert_non_null(val);
            for (;;) {
                if (*s == '\0' || *s == '\n') {
                    free(val);
                    PERR("line %d: unterminated label value", lineno);
                }
                if (*s == '"')
                    break;
                if (*s == '\\') {
                    if (s[1] == '\\' || s[1] == '"')
                        val[vo++] = s[1];
                    else if (s[1] == 'n')
                        val[vo++] = '\n';
                    else {
                        free(val);
                        PERR("line %d: bad escape \\%c in a label value", lineno, s[1]);
                    }
                    s += 2;
                    continue;
                }
                val[vo++] = *s++;
            }
            val[vo] = '\0';
            labels[nl++].value = val;
            s++;                      /* the closing quote */
            if (*s == ',')
                s++;
            else if (*s != '}')
                PERR("line %d: expected , or } after a label value", lineno);
        }
        s++;
    }
    if (*s != ' ' && *s != '\t')
        PERR("line %d: expected a blank before the value: %s", lineno, line);
    while (*s == ' ' || *s == '\t')
        s++;
    vlen = strcspn(s, " \t");
    if (!prom_float(s, vlen, &v))
        PERR("line %d: bad value '%.*s'", lineno, (int)vlen, s);
    s += vlen;
    while (*s == ' ' || *s == '\t')
        s++;
    if (*s != '\0') {                 /* an optional timestamp: an int64 */
        const char *t = s + (*s == '-');
        if (!isdigit((unsigned char)*t))
            PERR("line %d: bad timestamp '%s'", lineno, s);
        while (isdigit((unsigned char)*t))
            t++;
        if (*t != '\0')
            PERR("line %d: trailing text '%s'", lineno, s);
    }

    /* its family: the name itself, or for histograms and summaries the
     * name without _bucket/_sum/_count */
    snprintf(family, sizeof(family), "%s", name);
    f = prom_family(p, name, false);
    if (f == NULL || !f->typed) {
        static const char *const sfx[] = { "_bucket", "_sum", "_count" };
        for (int i = 0; i < 3; i++) {
            size_t sl = strlen(sfx[i]);
            if (n > sl && strcmp(name + n - sl, sfx[i]) == 0) {
                char base[128];
                prom_family_t *bf;
                snprintf(base, sizeof(base), "%.*s", (int)(n - sl), name);
                bf = prom_family(p, base, false);
                if (bf != NULL && (strcmp(bf->type, "histogram") == 0 ||
                                   strcmp(bf->type, "summary") == 0)) {
                    snprintf(family, sizeof(family), "%s", base);
                    f = bf;
                }
            }
        }
    }
    if (f == NULL || !f->typed || !f->help)
        PERR("line %d: sample of %s before its # HELP and # TYPE", lineno, family);
    if (f->closed)
        PERR("line %d: samples of %s are not contiguous", lineno, family);
    for (int i = 0; i < p->nfam; i++)            /* every other family ends here */
        if (&p->fam[i] != f && p->fam[i].has_samples)
            p->fam[i].closed = true;
    f->has_samples = true;

    qsort(labels, (size_t)nl, sizeof(labels[0]), label_cmp);
    ko = (size_t)snprintf(key, sizeof(key), "%s{", name);
    for (int i = 0; i < nl && ko < sizeof(key); i++)
        ko += (size_t)snprintf(key + ko, sizeof(key) - ko, "%s%s=\"%s\"", i ? "," : "",
                               labels[i].name, labels[i].value);
    if (ko + 2 >= sizeof(key))
        PERR("line %d: series too long", lineno);
    snprintf(key + ko, sizeof(key) - ko, "}");
    for (k = 0; k < (size_t)p->ns; k++)
        if (strcmp(p->s[k].key, key) == 0)
            PERR("line %d: series %s twice", lineno, key);
    p->s = realloc(p->s, sizeof(*p->s) * (size_t)(p->ns + 1));
    assert_non_null(p->s);
    p->s[p->ns].key = strdup(key);
    snprintf(p->s[p->ns].family, sizeof(p->s[0].family), "%s", family);
    p->s[p->ns].counter = strcmp(f->type, "counter") == 0;
    p->s[p->ns].value = v;
    p->ns++;
    for (int i = 0; i < nl; i++)
        free(labels[i].value);
    return 0;
fail:
    for (int i = 0; i < nl; i++)
        free(labels[i].value);
    return -1;
}

/* Parses a whole exposition; 0, or -1 with p->err set. */
static int
prom_parse(prom_t *p, const char *text)
{
    const char *line = text;
    char buf[8192];
    int lineno = 0;

    memset(p, 0, sizeof(*p));
    if (text[0] != '\0' && text[strlen(text) - 1] != '\n')
        PERR("the exposition does not end with a newline");
    while (*line != '\0') {
        size_t len = strcspn(line, "\n");
        lineno++;
        if (len >= sizeof(buf))
            PERR("line %d: too long", lineno);
        memcpy(buf, line, len);
        buf[len] = '\0';
        line += len + (line[len] == '\n');
        if (len == 0)
            continue;                     /* empty lines are allowed */
        if (strchr(buf, '\r') != NULL)
            PERR("line %d: carriage return", lineno);
        if (strncmp(buf, "# HELP ", 7) == 0 || strncmp(buf, "# TYPE ", 7) == 0) {
            bool help = buf[2] == 'H';
            size_t n = prom_name_len(buf + 7, true);
            char name[128];
            const char *rest = buf + 7 + n;
            prom_family_t *f;

            if (n == 0 || n >= sizeof(name) || (*rest != ' ' && *rest != '\0'))
                PERR("line %d: bad metric name in %s", lineno, buf);
            memcpy(name, buf + 7, n);
            name[n] = '\0';
            f = prom_family(p, name, true);
            if (f->has_samples)
                PERR("line %d: # %s of %s after its samples", lineno, help ? "HELP" : "TYPE",
                     name);
            if (help) {
                if (f->help)
                    PERR("line %d: second # HELP for %s", lineno, name);
                f->help = true;
                for (const char *d = rest; *d != '\0'; d++)   /* only \\ and \n escapes */
                    if (*d == '\\') {
                        if (d[1] != '\\' && d[1] != 'n')
                            PERR("line %d: bad escape in # HELP of %s", lineno, name);
                        d++;
                    }
            } else {
                if (f->typed)
                    PERR("line %d: second # TYPE for %s", lineno, name);
                if (*rest != ' ')
                    PERR("line %d: # TYPE %s without a type", lineno, name);
                rest++;
                if (strcmp(rest, "counter") != 0 && strcmp(rest, "gauge") != 0 &&
                    strcmp(rest, "histogram") != 0 && strcmp(rest, "summary") != 0 &&
                    strcmp(rest, "untyped") != 0)
                    PERR("line %d: unknown type '%s'", lineno, rest);
                f->typed = true;
                snprintf(f->type, sizeof(f->type), "%s", rest);
            }
            for (int i = 0; i < p->nfam; i++)        /* a new family begins */
                if (&p->fam[i] != f && p->fam[i].has_samples)
                    p->fam[i].closed = true;
            continue;
        }
        if (buf[0] == '#')
            continue;                     /* a comment */
        if (prom_sample_line(p, buf, lineno) != 0)
            return -1;
    }
    return 0;
fail:
    return -1;
}

static const prom_sample_t *
prom_find(const prom_t *p, const char *key)
{
    for (int i = 0; i < p->ns; i++)
        if (strcmp(p->s[i].key, key) == 0)
            return &p->s[i];
    return NULL;
}

/* GET /metrics, parsed (fails the test on any violation). */
static void
scrape(hc_cluster_t *c, prom_t *p)
{
    char *body;
    long st = hc_http(c, "GET", "/metrics", NULL, NULL, &body);

    assert_int_equal(st, 200);
    if (prom_parse(p, body) != 0) {
        fprintf(stderr, "%s\n", body);
        fail_msg("/metrics: %s", p->err);
    }
    free(body);
}

/* ---- the cluster and the job ------------------------------------------- */

static hc_cluster_t *
start_cluster(void)
{
    return hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2, .heartbeat_timeout = "4s",
                                  .slot_timeout = "30s" });
}

static void
submit_job(hc_cluster_t *c, const char *rate, char jid[HC_JOB_ID_LEN + 1])
{
    char out[PATH_MAX + 8];
    const char *vars[] = { "RATE", rate, "OUT", out, "DB_PASSWORD", "hunter2", NULL };

    snprintf(out, sizeof(out), "%s/out", c->dir);
    hc_submit_ok(c, job_yaml, vars, jid);
}

/* Waits until records flowed through the whole job (rates from a
 * heartbeat) and n checkpoints completed. New reference: the job. */
static json_t *
wait_flowing(hc_cluster_t *c, const char *jid, int nckpt)
{
    long long deadline = hc_now_ms() + 30000;
    json_t *job = hc_wait_subtasks(c, jid, "RUNNING", 20000);

    for (;;) {
        if (jnum(job, "vertices.0.metrics.numRecordsOutPerSecond") > 0 &&
            jnum(job, "vertices.1.metrics.numRecordsInPerSecond") > 0 &&
            jint(job, "vertices.2.metrics.read-records") > 0 &&
            jint(job, "checkpoints.completed") >= nckpt)
            return job;
        if (hc_now_ms() > deadline) {
            char *s = json_dumps(job, JSON_COMPACT);
            fail_msg("no records flowing or no %d checkpoints after 30 s: %.3000s", nckpt, s);
        }
        json_decref(job);
        hc_sleep_ms(100);
        job = hc_job(c, jid);
    }
}

/* Polls GET /jobs/{jid}/savepoints/{rid} until COMPLETED; returns the
 * location (new), failing on a failure cause. */
static char *
wait_savepoint(hc_cluster_t *c, const char *jid, const char *rid)
{
    long long deadline = hc_now_ms() + 20000;

    for (;;) {
        json_t *doc = get_ok(c, "/jobs/%s/savepoints/%s", jid, rid);
        const char *st = jstrv(doc, "status.id");
        if (strcmp(st, "COMPLETED") == 0) {
            json_t *loc = jget(doc, "operation.location");
            char *ret;
            if (!json_is_string(loc)) {
                char *s = json_dumps(doc, JSON_COMPACT);
                fail_msg("savepoint %s failed: %s", rid, s);
            }
            ret = strdup(json_string_value(loc));
            json_decref(doc);
            return ret;
        }
        assert_string_equal(st, "IN_PROGRESS");
        json_decref(doc);
        if (hc_now_ms() > deadline)
            fail_msg("savepoint %s not complete after 20 s", rid);
        hc_sleep_ms(100);
    }
}

static void
check_metadata(const char *dir)
{
    char meta[PATH_MAX + 16];
    struct stat st;

    snprintf(meta, sizeof(meta), "%s/_metadata", dir);
    if (stat(meta, &st) != 0 || st.st_size == 0)
        fail_msg("savepoint %s has no _metadata", dir);
}

/* ---- the read endpoints ------------------------------------------------ */

static void
check_cluster_docs(hc_cluster_t *c, const char *jid)
{
    json_t *d;
    char want[PATH_MAX + 64];

    d = get_ok(c, "/overview");
    EXPECT_INT(d, "taskmanagers", 2);
    EXPECT_INT(d, "slots-total", 4);
    EXPECT_INT(d, "slots-available", 2);
    EXPECT_INT(d, "jobs-running", 1);
    EXPECT_INT(d, "jobs-finished", 0);
    EXPECT_INT(d, "jobs-cancelled", 0);
    EXPECT_INT(d, "jobs-failed", 0);
    assert_true(strlen(jstrv(d, "weir-version")) > 0);
    json_decref(d);

    d = get_ok(c, "/config");
    snprintf(want, sizeof(want), "%s/checkpoints", c->dir);
    EXPECT_STR(d, "checkpoint-dir", want);
    snprintf(want, sizeof(want), "%s/checkpoints/savepoints", c->dir);
    EXPECT_STR(d, "savepoint-dir", want);
    snprintf(want, sizeof(want), "%s/jm-data", c->dir);
    EXPECT_STR(d, "data-dir", want);
    EXPECT_INT(d, "heartbeat-timeout", 4000);
    EXPECT_INT(d, "slot-timeout", 30000);
    EXPECT_STR(d, "weir-version", WEIR_VERSION_STRING);
    EXPECT_STR(d, "jobmanager.host", "127.0.0.1");
    EXPECT_INT(d, "jobmanager.rest-port", c->rest_port);
    EXPECT_INT(d, "jobmanager.rpc-port", c->rpc_port);
    assert_true(json_is_false(jget(d, "taskmanager-secret-required")));
    assert_true(jint(d, "limits.max-body-bytes") > 0);
    assert_true(jint(d, "limits.max-header-bytes") > 0);
    json_decref(d);

    d = get_ok(c, "/jobs");
    assert_int_equal(json_array_size(jget(d, "jobs")), 1);
    EXPECT_STR(d, "jobs.0.id", jid);
    EXPECT_STR(d, "jobs.0.status", "RUNNING");
    json_decref(d);

    d = get_ok(c, "/jobs/overview");
    assert_int_equal(json_array_size(jget(d, "jobs")), 1);
    EXPECT_STR(d, "jobs.0.jid", jid);
    EXPECT_STR(d, "jobs.0.name", "rest-counts");
    EXPECT_STR(d, "jobs.0.state", "RUNNING");
    EXPECT_INT(d, "jobs.0.parallelism", 2);
    EXPECT_INT(d, "jobs.0.tasks.total", 5);
    EXPECT_INT(d, "jobs.0.tasks.running", 5);
    EXPECT_INT(d, "jobs.0.end-time", -1);
    assert_true(jint(d, "jobs.0.start-time") > 0);
    json_decref(d);
}

static void
check_job_docs(hc_cluster_t *c, const char *jid)
{
    static const char *const names[] = { "gen -> keyed", "counts", "out" };
    static const int par[] = { 2, 2, 1 };
    char path[PATH_MAX + 64];
    json_t *d;

    d = get_ok(c, "/jobs/%s", jid);
    EXPECT_STR(d, "jid", jid);
    EXPECT_STR(d, "name", "rest-counts");
    EXPECT_STR(d, "state", "RUNNING");
    EXPECT_INT(d, "parallelism", 2);
    EXPECT_INT(d, "max-parallelism", 128);
    EXPECT_INT(d, "slots-needed", 2);
    EXPECT_INT(d, "restarts", 0);
    assert_true(json_is_null(jget(d, "failure")));
    assert_int_equal(json_array_size(jget(d, "vertices")), 3);
    for (int v = 0; v < 3; v++) {
        char p[64], id[8];
        snprintf(id, sizeof(id), "v%d", v);
        snprintf(p, sizeof(p), "vertices.%d.id", v);
        EXPECT_STR(d, p, id);
        snprintf(p, sizeof(p), "vertices.%d.name", v);
        EXPECT_STR(d, p, names[v]);
        snprintf(p, sizeof(p), "vertices.%d.parallelism", v);
        EXPECT_INT(d, p, par[v]);
        snprintf(p, sizeof(p), "vertices.%d.status", v);
        EXPECT_STR(d, p, "RUNNING");
        snprintf(p, sizeof(p), "vertices.%d.subtasks", v);
        assert_int_equal(json_array_size(jget(d, p)), par[v]);
    }
    assert_true(jint(d, "vertices.0.metrics.write-records") > 0);
    assert_true(jint(d, "vertices.1.metrics.read-records") > 0);
    assert_true(jint(d, "vertices.1.metrics.read-bytes") > 0);
    assert_true(jnum(d, "vertices.0.metrics.numRecordsOutPerSecond") > 0);
    EXPECT_INT(d, "vertices.0.operator-metrics.0.records-out",
               jint(d, "vertices.0.operator-metrics.0.records-out"));
    EXPECT_STR(d, "vertices.0.operator-metrics.1.name", "keyed");
    assert_int_equal(json_array_size(jget(d, "edges")), 2);
    EXPECT_STR(d, "edges.0.source", "v0");
    EXPECT_STR(d, "edges.0.target", "v1");
    EXPECT_STR(d, "edges.0.ship_strategy", "HASH");
    EXPECT_STR(d, "edges.1.source", "v1");
    EXPECT_STR(d, "edges.1.target", "v2");
    EXPECT_STR(d, "edges.1.ship_strategy", "REBALANCE");
    EXPECT_INT(d, "checkpoints.interval_ms", CKPT_INTERVAL_MS);
    json_decref(d);

    /* the plan, Flink's shape */
    d = get_ok(c, "/jobs/%s/plan", jid);
    EXPECT_STR(d, "plan.jid", jid);
    EXPECT_STR(d, "plan.name", "rest-counts");
    EXPECT_STR(d, "plan.type", "STREAMING");
    assert_int_equal(json_array_size(jget(d, "plan.nodes")), 3);
    for (int v = 0; v < 3; v++) {
        char p[64], id[8];
        snprintf(id, sizeof(id), "v%d", v);
        snprintf(p, sizeof(p), "plan.nodes.%d.id", v);
        EXPECT_STR(d, p, id);
        snprintf(p, sizeof(p), "plan.nodes.%d.description", v);
        EXPECT_STR(d, p, names[v]);
        snprintf(p, sizeof(p), "plan.nodes.%d.parallelism", v);
        EXPECT_INT(d, p, par[v]);
    }
    EXPECT_STR(d, "plan.nodes.0.operator", "datagen -> map");
    EXPECT_STR(d, "plan.nodes.1.operator", "count");
    EXPECT_STR(d, "plan.nodes.2.operator", "file");
    assert_int_equal(json_array_size(jget(d, "plan.nodes.0.inputs")), 0);
    assert_int_equal(json_array_size(jget(d, "plan.nodes.1.inputs")), 1);
    EXPECT_STR(d, "plan.nodes.1.inputs.0.id", "v0");
    EXPECT_INT(d, "plan.nodes.1.inputs.0.num", 0);
    EXPECT_STR(d, "plan.nodes.1.inputs.0.ship_strategy", "HASH");
    EXPECT_STR(d, "plan.nodes.1.inputs.0.keys.0", "key");
    assert_int_equal(json_array_size(jget(d, "plan.nodes.2.inputs")), 1);
    EXPECT_STR(d, "plan.nodes.2.inputs.0.id", "v1");
    EXPECT_STR(d, "plan.nodes.2.inputs.0.ship_strategy", "REBALANCE");
    json_decref(d);

    /* the job's configuration */
    d = get_ok(c, "/jobs/%s/config", jid);
    EXPECT_STR(d, "jid", jid);
    EXPECT_STR(d, "name", "rest-counts");
    EXPECT_STR(d, "job-file.text", job_yaml);
    EXPECT_STR(d, "job-file.path", "test.yaml");
    EXPECT_INT(d, "execution-config.job-parallelism", 2);
    EXPECT_INT(d, "execution-config.max-parallelism", 128);
    assert_true(json_is_null(jget(d, "execution-config.parallelism-override")));
    EXPECT_STR(d, "execution-config.state-backend", "rocksdb");
    EXPECT_STR(d, "execution-config.restart-strategy-config.strategy", "fixed_delay");
    EXPECT_INT(d, "execution-config.restart-strategy-config.attempts", 3);
    EXPECT_INT(d, "execution-config.restart-strategy-config.delay", 2000);
    assert_non_null(strstr(jstrv(d, "execution-config.restart-strategy"), "fixed delay"));
    EXPECT_INT(d, "execution-config.checkpointing.interval", CKPT_INTERVAL_MS);
    EXPECT_INT(d, "execution-config.checkpointing.retained", 2);
    EXPECT_STR(d, "execution-config.user-config.RATE", "2000");
    snprintf(path, sizeof(path), "%s/out", c->dir);
    EXPECT_STR(d, "execution-config.user-config.OUT", path);
    EXPECT_STR(d, "execution-config.user-config.DB_PASSWORD", "******");
    json_decref(d);

    d = get_ok(c, "/jobs/%s/checkpoints/config", jid);
    EXPECT_STR(d, "mode", "exactly_once");
    EXPECT_INT(d, "interval", CKPT_INTERVAL_MS);
    EXPECT_INT(d, "timeout", 600000);
    EXPECT_INT(d, "min_pause", 0);
    EXPECT_INT(d, "max_concurrent", 1);
    EXPECT_INT(d, "tolerable_failed_checkpoints", 0);
    EXPECT_INT(d, "retained", 2);
    assert_true(json_is_true(jget(d, "enabled")));
    assert_true(json_is_true(jget(d, "externalization.enabled")));
    snprintf(path, sizeof(path), "%s/checkpoints/%s", c->dir, jid);
    EXPECT_STR(d, "checkpoint_dir", path);
    json_decref(d);

    d = get_ok(c, "/jobs/%s/checkpoints", jid);
    assert_true(jint(d, "counts.completed") >= 2);
    EXPECT_INT(d, "counts.failed", 0);
    EXPECT_INT(d, "counts.restored", 0);
    assert_true(jint(d, "counts.total") >= jint(d, "counts.completed"));
    assert_true(jint(d, "latest.id") >= 2);
    snprintf(path, sizeof(path), "%s/checkpoints/%s/chk-%lld", c->dir, jid, jint(d, "latest.id"));
    EXPECT_STR(d, "latest.path", path);
    assert_true(json_array_size(jget(d, "history")) >= 2);
    assert_true(jint(d, "history.0.id") > jint(d, "history.1.id"));       /* newest first */
    EXPECT_INT(d, "history.0.num_subtasks", 5);
    assert_true(jint(d, "summary.end_to_end_duration.min") <=
                jint(d, "summary.end_to_end_duration.avg"));
    assert_true(jint(d, "summary.end_to_end_duration.avg") <=
                jint(d, "summary.end_to_end_duration.max"));
    assert_true(jint(d, "summary.state_size.max") > 0);       /* the counts have state */
    assert_true(json_is_null(jget(d, "restored_from")));
    json_decref(d);

    d = get_ok(c, "/jobs/%s/exceptions", jid);
    assert_true(json_is_null(jget(d, "rootException")));
    assert_int_equal(json_array_size(jget(d, "exceptionHistory.entries")), 0);
    assert_true(json_is_false(jget(d, "exceptionHistory.truncated")));
    json_decref(d);
}

static void
check_vertex_docs(hc_cluster_t *c, const char *jid)
{
    json_t *d, *d2;

    /* "v1" and "1" name the same vertex */
    d = get_ok(c, "/jobs/%s/vertices/v1", jid);
    d2 = get_ok(c, "/jobs/%s/vertices/1", jid);
    EXPECT_STR(d, "id", "v1");
    EXPECT_STR(d2, "id", "v1");
    EXPECT_STR(d, "name", "counts");
    EXPECT_INT(d, "parallelism", 2);
    EXPECT_INT(d, "maxParallelism", 128);
    EXPECT_STR(d, "status", "RUNNING");
    assert_int_equal(json_array_size(jget(d, "subtasks")), 2);
    for (int s = 0; s < 2; s++) {
        char p[64];
        const char *tm;
        snprintf(p, sizeof(p), "subtasks.%d.subtask", s);
        EXPECT_INT(d, p, s);
        snprintf(p, sizeof(p), "subtasks.%d.status", s);
        EXPECT_STR(d, p, "RUNNING");
        snprintf(p, sizeof(p), "subtasks.%d.taskmanager-id", s);
        tm = jstrv(d, p);
        assert_true(strcmp(tm, "tm-1") == 0 || strcmp(tm, "tm-2") == 0);
        snprintf(p, sizeof(p), "subtasks.%d.metrics.read-records", s);
        assert_true(jint(d, p) >= 0);
    }
    assert_true(jint(d, "metrics.read-records") > 0);
    assert_true(jnum(d, "metrics.numRecordsInPerSecond") > 0);
    json_decref(d);
    json_decref(d2);

    for (int v = 0; v < 3; v++) {
        double worst = 0;
        size_t n;
        d = get_ok(c, "/jobs/%s/vertices/v%d/backpressure", jid, v);
        EXPECT_STR(d, "status", "ok");
        n = json_array_size(jget(d, "subtasks"));
        assert_int_equal(n, v == 2 ? 1 : 2);
        for (size_t s = 0; s < n; s++) {
            char p[64];
            double r;
            const char *lvl;
            snprintf(p, sizeof(p), "subtasks.%zu.ratio", s);
            r = jnum(d, p);
            assert_true(r >= 0 && r <= 1.0);
            if (r > worst)
                worst = r;
            snprintf(p, sizeof(p), "subtasks.%zu.backpressure-level", s);
            lvl = jstrv(d, p);
            assert_string_equal(lvl, r <= 0.10 ? "ok" : r <= 0.5 ? "low" : "high");
        }
        EXPECT_STR(d, "backpressure-level", worst <= 0.10 ? "ok" : worst <= 0.5 ? "low" : "high");
        json_decref(d);

        d = get_ok(c, "/jobs/%s/vertices/%d/watermarks", jid, v);
        assert_true(json_is_array(d));
        /* input, then output watermark of each subtask; this job has no
         * event time, so none ever arrived (Long.MIN_VALUE) */
        assert_int_equal(json_array_size(d), v == 2 ? 2 : 4);
        EXPECT_STR(d, "0.id", "0.currentInputWatermark");
        EXPECT_STR(d, "0.value", "-9223372036854775808");
        {
            char q[32];
            snprintf(q, sizeof(q), "%d.id", v == 2 ? 1 : 2);
            EXPECT_STR(d, q, "0.currentOutputWatermark");
            snprintf(q, sizeof(q), "%d.value", v == 2 ? 1 : 2);
            EXPECT_STR(d, q, "-9223372036854775808");
        }
        json_decref(d);
    }
}

static void
check_taskmanager_docs(hc_cluster_t *c, const char *jid)
{
    json_t *d;
    int free_total = 0, tasks_total = 0, used = 0;

    d = get_ok(c, "/taskmanagers");
    assert_int_equal(json_array_size(jget(d, "taskmanagers")), 2);
    for (int i = 0; i < 2; i++) {
        char p[64];
        snprintf(p, sizeof(p), "taskmanagers.%d.slotsNumber", i);
        EXPECT_INT(d, p, 2);
        snprintf(p, sizeof(p), "taskmanagers.%d.freeSlots", i);
        free_total += (int)jint(d, p);
        snprintf(p, sizeof(p), "taskmanagers.%d.timeSinceLastHeartbeat", i);
        assert_true(jint(d, p) >= 0 && jint(d, p) < 4000);
    }
    assert_int_equal(free_total, 2);
    json_decref(d);

    for (int i = 1; i <= 2; i++) {
        d = get_ok(c, "/taskmanagers/tm-%d", i);
        char id[8];
        snprintf(id, sizeof(id), "tm-%d", i);
        EXPECT_STR(d, "id", id);
        EXPECT_INT(d, "slotsNumber", 2);
        assert_int_equal(json_array_size(jget(d, "slots")), 2);
        assert_true(jint(d, "dataPort") > 0);
        assert_true(jint(d, "metrics.rssBytes") > 0);
        for (int s = 0; s < 2; s++) {
            char p[64];
            json_t *job;
            snprintf(p, sizeof(p), "slots.%d.index", s);
            EXPECT_INT(d, p, s);
            snprintf(p, sizeof(p), "slots.%d.job", s);
            job = jget(d, p);
            snprintf(p, sizeof(p), "slots.%d.tasks", s);
            if (json_is_null(job)) {
                assert_int_equal(json_array_size(jget(d, p)), 0);
                continue;
            }
            assert_string_equal(json_string_value(job), jid);
            used++;
            /* shared slot 0 holds subtask 0 of v0, v1, v2; slot 1 of v0, v1 */
            snprintf(p, sizeof(p), "slots.%d.subtask", s);
            long long shared = jint(d, p);
            snprintf(p, sizeof(p), "slots.%d.tasks", s);
            assert_int_equal(json_array_size(jget(d, p)), shared == 0 ? 3 : 2);
            tasks_total += (int)json_array_size(jget(d, p));
            snprintf(p, sizeof(p), "slots.%d.tasks.0.vertex", s);
            EXPECT_STR(d, p, "v0");
            snprintf(p, sizeof(p), "slots.%d.tasks.0.status", s);
            EXPECT_STR(d, p, "RUNNING");
            snprintf(p, sizeof(p), "slots.%d.tasks.1.name", s);
            assert_non_null(strstr(jstrv(d, p), "counts ("));
        }
        assert_int_equal(json_array_size(jget(d, "allocatedSlots")),
                         2 - (size_t)jint(d, "freeSlots"));
        json_decref(d);
    }
    assert_int_equal(used, 2);
    assert_int_equal(tasks_total, 5);
}

/* Every read endpoint of a running job with checkpoints, then POST
 * /jobs/{id}/stop: a savepoint, and the job ends FINISHED. */
static void
test_rest_read_endpoints_then_stop_with_savepoint(void **state)
{
    hc_cluster_t *c = start_cluster();
    char jid[HC_JOB_ID_LEN + 1], spdir[PATH_MAX], body[PATH_MAX + 64], path[PATH_MAX + 64];
    char *resp_body, *loc;
    json_t *d;
    long st;

    (void)state;
    submit_job(c, "2000", jid);
    d = wait_flowing(c, jid, 2);
    json_decref(d);

    check_cluster_docs(c, jid);
    check_job_docs(c, jid);
    check_vertex_docs(c, jid);
    check_taskmanager_docs(c, jid);

    /* stop: Flink's body, a request id, a savepoint, FINISHED */
    snprintf(spdir, sizeof(spdir), "%s/stop-sp", c->dir);
    snprintf(body, sizeof(body), "{\"targetDirectory\": \"%s\", \"drain\": false}", spdir);
    snprintf(path, sizeof(path), "/jobs/%s/stop", jid);
    st = hc_http(c, "POST", path, body, NULL, &resp_body);
    if (st != 202)
        fail_msg("POST %s -> %ld: %s", path, st, resp_body);
    d = json_loads(resp_body, 0, NULL);
    free(resp_body);
    loc = wait_savepoint(c, jid, jstrv(d, "request-id"));
    json_decref(d);
    assert_true(strncmp(loc, spdir, strlen(spdir)) == 0);
    check_metadata(loc);
    d = hc_wait_job(c, jid, "FINISHED", 20000);
    assert_true(jint(d, "end-time") >= jint(d, "start-time"));
    json_decref(d);
    d = get_ok(c, "/jobs/%s/checkpoints", jid);
    assert_true(json_is_true(jget(d, "history.0.is_savepoint")));
    json_decref(d);
    d = get_ok(c, "/overview");
    EXPECT_INT(d, "jobs-finished", 1);
    EXPECT_INT(d, "jobs-running", 0);
    json_decref(d);
    /* the slots are given back once the task managers report the end */
    for (long long deadline = hc_now_ms() + 10000; hc_overview_int(c, "slots-available") != 4;) {
        if (hc_now_ms() > deadline)
            fail_msg("slots not released 10 s after the stop");
        hc_sleep_ms(100);
    }
    /* a finished job cannot be stopped again */
    expect_error(c, "POST", path, "{}", NULL, 409);
    free(loc);
    hc_stop(c);
}

/* ---- errors ------------------------------------------------------------ */

static void
check_405(hc_cluster_t *c, const char *method, const char *path, const char *allow)
{
    char want[128], what[600];
    raw_resp_t r = raw_get(c, method, path);

    snprintf(what, sizeof(what), "%s %s", method, path);
    check_error_body(what, r.status, 405, r.body);
    snprintf(want, sizeof(want), "\r\nAllow: %s", allow);
    if (strstr(r.head, want) == NULL)
        fail_msg("%s: no '%s' header in:\n%s", what, want + 2, r.head);
    raw_free(&r);
}

static void
test_rest_errors(void **state)
{
    hc_cluster_t *c = start_cluster();
    char jid[HC_JOB_ID_LEN + 1], p[512], *big, *hdr;
    const char *msg;
    json_t *d;
    long long max_body, max_header;
    size_t n;

    (void)state;
    submit_job(c, "500", jid);
    d = hc_wait_subtasks(c, jid, "RUNNING", 20000);
    json_decref(d);
    d = get_ok(c, "/config");
    max_body = jint(d, "limits.max-body-bytes");
    max_header = jint(d, "limits.max-header-bytes");
    json_decref(d);

    /* unknown things: 404 */
    msg = expect_error(c, "GET", "/jobs/0123456789abcdef0123456789abcdef", NULL, NULL, 404);
    assert_non_null(strstr(msg, "0123456789abcdef0123456789abcdef"));
    expect_error(c, "GET", "/jobs/0123456789abcdef0123456789abcdef/plan", NULL, NULL, 404);
    expect_error(c, "PATCH", "/jobs/0123456789abcdef0123456789abcdef", NULL, NULL, 404);
    expect_error(c, "POST", "/jobs/0123456789abcdef0123456789abcdef/stop", "{}", NULL, 404);
    static const char *const bad_vertices[] = { "v3", "3", "x", "-1", "v", "v1x", "99999999999" };
    for (size_t i = 0; i < sizeof(bad_vertices) / sizeof(bad_vertices[0]); i++) {
        snprintf(p, sizeof(p), "/jobs/%s/vertices/%s", jid, bad_vertices[i]);
        expect_error(c, "GET", p, NULL, NULL, 404);
        snprintf(p, sizeof(p), "/jobs/%s/vertices/%s/backpressure", jid, bad_vertices[i]);
        expect_error(c, "GET", p, NULL, NULL, 404);
    }
    expect_error(c, "GET", "/taskmanagers/tm-99", NULL, NULL, 404);
    snprintf(p, sizeof(p), "/jobs/%s/savepoints/99", jid);
    expect_error(c, "GET", p, NULL, NULL, 404);
    snprintf(p, sizeof(p), "/jobs/%s/nope", jid);
    expect_error(c, "GET", p, NULL, NULL, 404);
    snprintf(p, sizeof(p), "/jobs/%s/vertices/v0/nope", jid);
    expect_error(c, "GET", p, NULL, NULL, 404);
    expect_error(c, "GET", "/nope", NULL, NULL, 404);
    expect_error(c, "GET", "/jobs/", NULL, NULL, 404);
    expect_error(c, "GET", "/a/b/c/d/e/f/g/h", NULL, NULL, 404);

    /* bad bodies: 400 */
    msg = expect_error(c, "POST", "/jobs", "{\"job\": ", NULL, 400);
    assert_non_null(strstr(msg, "JSON"));
    expect_error(c, "POST", "/jobs", "[1, 2]", NULL, 400);
    expect_error(c, "POST", "/jobs", "{\"job\": 5}", NULL, 400);
    expect_error(c, "POST", "/jobs", "{\"job\": \"name: x\", \"parallelism\": 0}", NULL, 400);
    expect_error(c, "POST", "/jobs", "{\"job\": \"name: x\", \"vars\": {\"A\": 1}}", NULL, 400);
    expect_error(c, "POST", "/jobs", "{\"job\": \"name: x\", \"savepointPath\": 7}", NULL, 400);
    msg = expect_error(c, "POST", "/jobs", "{\"job\": \"name: x\\nsources: [\"}", NULL, 400);
    assert_non_null(strstr(msg, "<request>"));                  /* a located message */
    expect_error(c, "POST", "/jobs?parallelism=abc", "name: x\n", "application/x-yaml", 400);
    snprintf(p, sizeof(p), "/jobs/%s/stop", jid);
    expect_error(c, "POST", p, "{not json", NULL, 400);
    expect_error(c, "POST", p, "{\"drain\": \"yes\"}", NULL, 400);     /* not a bool */
    expect_error(c, "POST", p, "{\"targetDirectory\": 3}", NULL, 400);
    expect_error(c, "POST", p, "{\"targetDirectory\": \"relative/dir\"}", NULL, 400);
    snprintf(p, sizeof(p), "/jobs/%s/savepoints", jid);
    expect_error(c, "POST", p, "\"a string\"", NULL, 400);
    expect_error(c, "POST", p, "{\"cancel-job\": \"yes\"}", NULL, 400);
    snprintf(p, sizeof(p), "/jobs/%s?mode=stop", jid);
    expect_error(c, "PATCH", p, NULL, NULL, 400);

    /* wrong methods: 405 with Allow; never a side effect */
    snprintf(p, sizeof(p), "/jobs/%s", jid);
    check_405(c, "DELETE", p, "GET, HEAD, PATCH");
    check_405(c, "PUT", "/overview", "GET, HEAD");
    check_405(c, "PATCH", "/jobs/overview", "GET, HEAD");
    check_405(c, "POST", "/jobs/overview", "GET, HEAD");
    check_405(c, "DELETE", "/jobs", "GET, HEAD, POST");
    check_405(c, "POST", "/metrics", "GET, HEAD");
    snprintf(p, sizeof(p), "/jobs/%s/stop", jid);
    check_405(c, "GET", p, "POST");
    snprintf(p, sizeof(p), "/jobs/%s/savepoints", jid);
    check_405(c, "GET", p, "POST");
    snprintf(p, sizeof(p), "/jobs/%s/plan", jid);
    check_405(c, "POST", p, "GET, HEAD");
    d = hc_job(c, jid);
    assert_string_equal(hc_job_state(d), "RUNNING");
    json_decref(d);

    /* size limits: a body over the limit is 413 whether announced by
     * Content-Length alone or sent; a header section over it is 431 */
    {
        char req[512];
        int len = snprintf(req, sizeof(req), "POST /jobs HTTP/1.1\r\nHost: x\r\n"
                           "Content-Type: application/json\r\nContent-Length: %lld\r\n"
                           "Connection: close\r\n\r\n", max_body + 1);
        raw_resp_t r = raw_http(c, req, (size_t)len);
        check_error_body("POST /jobs (Content-Length over the limit)", r.status, 413, r.body);
        raw_free(&r);
    }
    big = malloc((size_t)max_body + 2);
    assert_non_null(big);
    memset(big, ' ', (size_t)max_body + 1);
    big[0] = '{';
    big[max_body + 1] = '\0';
    expect_error(c, "POST", "/jobs", big, NULL, 413);
    big[max_body] = '\0';                   /* exactly the limit: read, then refused as JSON */
    expect_error(c, "POST", "/jobs", big, NULL, 400);
    free(big);
    n = (size_t)max_header + 256;
    hdr = malloc(n + 256);
    assert_non_null(hdr);
    {
        int len = snprintf(hdr, 64, "GET /overview HTTP/1.1\r\nX-Big: ");
        memset(hdr + len, 'a', n);
        memcpy(hdr + len + n, "\r\nConnection: close\r\n\r\n", 24);
        raw_resp_t r = raw_http(c, hdr, (size_t)len + n + 23);
        check_error_body("GET /overview (huge header)", r.status, 431, r.body);
        raw_free(&r);
    }
    free(hdr);

    /* traversal: never a file. The ones with a ".." segment after decoding
     * are refused by the HTTP server itself (400); the others reach the
     * router, which knows no files beyond the embedded dashboard (404). */
    static const struct { const char *target; int status; } trav[] = {
        { "/jobs/..%252f..%252fetc%252fpasswd", 404 },
        { "/%252e%252e/%252e%252e/etc/passwd", 404 },
        { "/%2fetc%2fpasswd", 404 },
        { "//etc/passwd", 404 },
        { "/etc/passwd", 404 },
        { "/jobs/%ff%fe", 404 },
        { "/index.html%2f..%2f..%2fetc%2fpasswd", 400 },
        { "/%2e%2e/", 400 },
        { "/%2e%2e/%2e%2e/etc/passwd", 400 },
        { "/../../../../etc/passwd", 400 },
        { "/jobs/..", 400 },
        { "/dashboard.js%00.png", 400 },
    };
    for (size_t i = 0; i < sizeof(trav) / sizeof(trav[0]); i++) {
        char what[256];
        raw_resp_t r = raw_get(c, "GET", trav[i].target);
        snprintf(what, sizeof(what), "GET %s", trav[i].target);
        check_error_body(what, r.status, trav[i].status, r.body);
        if (strstr(r.body, "root:") != NULL || strstr(r.body, "/bin/") != NULL)
            fail_msg("%s returned file content: %s", what, r.body);
        if (strstr(r.head, "application/json") == NULL)
            fail_msg("%s: not a JSON answer:\n%s", what, r.head);
        raw_free(&r);
    }
    /* the embedded dashboard is still served, by exact name only */
    {
        raw_resp_t r = raw_get(c, "GET", "/index.html");
        assert_int_equal(r.status, 200);
        assert_non_null(strstr(r.head, "text/html"));
        raw_free(&r);
    }

    /* still alive, still running */
    d = hc_job(c, jid);
    assert_string_equal(hc_job_state(d), "RUNNING");
    json_decref(d);
    assert_int_equal(hc_cancel(c, jid), 202);
    d = hc_wait_job(c, jid, "CANCELED", 20000);
    json_decref(d);
    hc_stop(c);
}

/* ---- /metrics ------------------------------------------------------------ */

/* The parser itself refuses what the format forbids. */
static void
test_prom_parser_is_strict(void **state)
{
    static const char *const bad[] = {
        "x 1\n",                                                    /* no HELP/TYPE */
        "# HELP x h\n# TYPE x gauge\nx 1",                           /* no final newline */
        "# HELP x h\n# HELP x h\n# TYPE x gauge\nx 1\n",             /* HELP twice */
        "# HELP x h\n# TYPE x gauge\n# TYPE x gauge\nx 1\n",         /* TYPE twice */
        "# HELP x h\n# TYPE x gauge\nx 1\n# TYPE x gauge\n",         /* TYPE after samples */
        "# HELP x h\n# TYPE x gauge\n# HELP y h\n# TYPE y gauge\nx 1\ny 1\nx{a=\"b\"} 2\n",
        "# HELP 1x h\n# TYPE 1x gauge\n1x 1\n",                     /* bad metric name */
        "# HELP x h\n# TYPE x gauge\nx{1a=\"b\"} 1\n",               /* bad label name */
        "# HELP x h\n# TYPE x gauge\nx{__a=\"b\"} 1\n",              /* reserved label */
        "# HELP x h\n# TYPE x gauge\nx{a=\"\\x\"} 1\n",              /* bad escape */
        "# HELP x h\n# TYPE x gauge\nx{a=\"b} 1\n",                  /* unterminated */
        "# HELP x h\n# TYPE x gauge\nx{a=\"b\",a=\"c\"} 1\n",        /* label twice */
        "# HELP x h\n# TYPE x gauge\nx 1.2.3\n",                     /* bad float */
        "# HELP x h\n# TYPE x gauge\nx 0x10\n",                      /* hex */
        "# HELP x h\n# TYPE x gauge\nx inf\n",                       /* Inf spelling */
        "# HELP x h\n# TYPE x gauge\nx{a=\"b\"} 1\nx{a=\"b\"} 2\n",  /* series twice */
        "# HELP x h\n# TYPE x gauge\nx 1 12x\n",                     /* bad timestamp */
        "# HELP x h\n# TYPE x widget\nx 1\n",                        /* unknown type */
        "# HELP x h\\t\n# TYPE x gauge\nx 1\n",                      /* bad HELP escape */
    };
    static const char good[] =
        "# HELP x_total A \\\\ help\\n.\n# TYPE x_total counter\n"
        "x_total{a=\"q\\\"\\\\\\n\",b=\"\"} 1e3\nx_total{a=\"z\",} 2 1700000000000\n"
        "# a comment\n\n# HELP y h\n# TYPE y gauge\ny -Inf\n"
        "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1\n";
    prom_t p;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (prom_parse(&p, bad[i]) == 0)
            fail_msg("accepted: %s", bad[i]);
        prom_free(&p);
    }
    if (prom_parse(&p, good) != 0)
        fail_msg("refused a valid exposition: %s", p.err);
    assert_int_equal(p.ns, 6);
    assert_non_null(prom_find(&p, "x_total{a=\"q\"\\\n\",b=\"\"}"));
    assert_true(prom_find(&p, "x_total{a=\"z\"}")->counter);
    prom_free(&p);
}

/* GET /metrics parses strictly, and no counter goes down between two
 * scrapes 1.5 s apart while records flow (some go up). */
static void
test_rest_metrics_strict_and_counters_monotonic(void **state)
{
    hc_cluster_t *c = start_cluster();
    char jid[HC_JOB_ID_LEN + 1], key[512];
    prom_t a, b;
    json_t *d;
    int counters = 0, grew = 0;
    const prom_sample_t *s;

    (void)state;
    submit_job(c, "2000", jid);
    d = wait_flowing(c, jid, 1);
    json_decref(d);
    {
        char *body;
        assert_int_equal(hc_http(c, "GET", "/metrics", NULL, NULL, &body), 200);
        free(body);
        raw_resp_t r = raw_get(c, "GET", "/metrics");
        assert_non_null(strstr(r.head, "Content-Type: text/plain; version=0.0.4"));
        raw_free(&r);
    }
    scrape(c, &a);
    hc_sleep_ms(1500);
    scrape(c, &b);

    for (int i = 0; i < b.nfam; i++)
        if (b.fam[i].typed && strcmp(b.fam[i].type, "counter") == 0 &&
            strlen(b.fam[i].name) > 6 &&
            strcmp(b.fam[i].name + strlen(b.fam[i].name) - 6, "_total") != 0)
            fail_msg("counter family %s is not named *_total", b.fam[i].name);
    for (int i = 0; i < a.ns; i++) {
        const prom_sample_t *x = &a.s[i], *y;
        if (!x->counter)
            continue;
        counters++;
        assert_true(x->value >= 0 && !isnan(x->value));
        y = prom_find(&b, x->key);
        if (y == NULL)
            fail_msg("counter %s vanished from the second scrape", x->key);
        if (y->value < x->value)
            fail_msg("counter %s went down: %.17g -> %.17g", x->key, x->value, y->value);
        grew += y->value > x->value;
    }
    assert_true(counters > 0);
    assert_true(grew > 0);

    /* the figures are the job's: the generator's subtask 0 emitted records
     * (labels are sorted by name in the parsed keys) */
    s = NULL;
    snprintf(key, sizeof(key), "{job=\"%s\",job_name=\"rest-counts\",subtask=\"0\",", jid);
    for (int i = 0; i < b.ns && s == NULL; i++)
        if (strncmp(b.s[i].key, "weir_task_records_out_total{", 28) == 0 &&
            strstr(b.s[i].key, key) != NULL &&
            strstr(b.s[i].key, ",vertex=\"gen -> keyed\"}") != NULL)
            s = &b.s[i];
    assert_non_null(s);
    assert_true(s->value > 0);
    s = prom_find(&b, "weir_taskmanagers{}");
    assert_non_null(s);
    assert_true(s->value == 2);
    s = prom_find(&b, "weir_slots_total{}");
    assert_non_null(s);
    assert_true(s->value == 4);
    s = prom_find(&b, "weir_jobs{state=\"running\"}");
    assert_non_null(s);
    assert_true(s->value == 1);
    prom_free(&a);
    prom_free(&b);
    assert_int_equal(hc_cancel(c, jid), 202);
    d = hc_wait_job(c, jid, "CANCELED", 20000);
    json_decref(d);
    hc_stop(c);
}

/* ---- the other write endpoints ------------------------------------------ */

/* A job file posted as YAML (?parallelism=1), a savepoint into the default
 * directory while it keeps running, then PATCH cancel (and again: 409). */
static void
test_rest_raw_yaml_savepoint_cancel(void **state)
{
    static const char yaml[] =
        "name: raw-yaml\n"
        "parallelism: 2\n"
        "checkpoint: {interval: 200ms}\n"
        "sources:\n"
        "  - {name: gen, kind: datagen, rate: 500, fields: [{name: id, type: int}]}\n"
        "operators:\n"
        "  - {name: keyed, kind: map, input: gen, fields: [id, {name: key, expr: \"id % 3\"}]}\n"
        "  - {name: counts, kind: count, input: keyed, key_by: key, as: n}\n"
        "sinks:\n"
        "  - {name: out, kind: print, input: counts}\n";
    hc_cluster_t *c = start_cluster();
    char *body, *loc, p[256], want[PATH_MAX + 32];
    const char *jid;
    json_t *d, *resp;
    long st;

    (void)state;
    st = hc_http(c, "POST", "/jobs?parallelism=1", yaml, "application/x-yaml", &body);
    if (st != 202)
        fail_msg("POST /jobs (YAML) -> %ld: %s", st, body);
    resp = json_loads(body, 0, NULL);
    free(body);
    jid = jstrv(resp, "jobid");
    d = hc_wait_subtasks(c, jid, "RUNNING", 20000);
    EXPECT_INT(d, "parallelism", 1);
    EXPECT_STR(d, "name", "raw-yaml");
    json_decref(d);
    d = get_ok(c, "/jobs/%s/config", jid);
    EXPECT_INT(d, "execution-config.parallelism-override", 1);
    EXPECT_INT(d, "execution-config.job-parallelism", 1);
    EXPECT_STR(d, "job-file.text", yaml);
    EXPECT_STR(d, "job-file.path", "<request>");
    /* checkpoints and no restart block: the default strategy */
    EXPECT_STR(d, "execution-config.restart-strategy-config.strategy", "fixed_delay");
    EXPECT_INT(d, "execution-config.restart-strategy-config.attempts", -1);
    assert_int_equal(json_object_size(jget(d, "execution-config.user-config")), 0);
    json_decref(d);

    /* a savepoint with no body: <checkpoint-dir>/savepoints; still running */
    snprintf(p, sizeof(p), "/jobs/%s/savepoints", jid);
    st = hc_http(c, "POST", p, "", NULL, &body);
    if (st != 202)
        fail_msg("POST %s -> %ld: %s", p, st, body);
    d = json_loads(body, 0, NULL);
    free(body);
    loc = wait_savepoint(c, jid, jstrv(d, "request-id"));
    json_decref(d);
    snprintf(want, sizeof(want), "%s/checkpoints/savepoints/", c->dir);
    if (strncmp(loc, want, strlen(want)) != 0)
        fail_msg("savepoint at %s, not under %s", loc, want);
    check_metadata(loc);
    free(loc);
    d = hc_job(c, jid);
    assert_string_equal(hc_job_state(d), "RUNNING");
    json_decref(d);

    /* cancel, and once more */
    snprintf(p, sizeof(p), "/jobs/%s?mode=cancel", jid);
    st = hc_http(c, "PATCH", p, NULL, NULL, &body);
    assert_int_equal(st, 202);
    free(body);
    d = hc_wait_job(c, jid, "CANCELED", 20000);
    json_decref(d);
    expect_error(c, "PATCH", p, NULL, NULL, 409);
    d = get_ok(c, "/overview");
    EXPECT_INT(d, "jobs-cancelled", 1);
    json_decref(d);
    /* a job without checkpoints has no checkpoint configuration (Flink: 404) */
    st = hc_http(c, "POST", "/jobs",
                 "name: no-ckpt\nsources:\n  - {name: g, kind: datagen, rate: 10, "
                 "fields: [{name: id, type: int}]}\nsinks:\n  - {name: o, kind: print, input: g}\n",
                 "application/x-yaml", &body);
    assert_int_equal(st, 202);
    d = json_loads(body, 0, NULL);
    free(body);
    snprintf(p, sizeof(p), "/jobs/%s/checkpoints/config", jstrv(d, "jobid"));
    expect_error(c, "GET", p, NULL, NULL, 404);
    assert_int_equal(hc_cancel(c, jstrv(d, "jobid")), 202);
    json_decref(d);
    json_decref(resp);
    hc_stop(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prom_parser_is_strict),
        cmocka_unit_test_teardown(test_rest_read_endpoints_then_stop_with_savepoint, hc_teardown),
        cmocka_unit_test_teardown(test_rest_errors, hc_teardown),
        cmocka_unit_test_teardown(test_rest_metrics_strict_and_counters_monotonic, hc_teardown),
        cmocka_unit_test_teardown(test_rest_raw_yaml_savepoint_cancel, hc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
