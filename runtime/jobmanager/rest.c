/* runtime/jobmanager/rest.c -- the REST API, shaped like Flink's.
 *
 * Every request arrives here whole (runtime/net/http_server.c read it,
 * bounded its header section and body, and percent-decoded its path, refusing
 * "..", NUL and bad escapes with a 400). GET of a top-level name that is one
 * of the dashboard's embedded files answers with that file; everything else
 * goes through one route table: the decoded path is split into segments and
 * matched against patterns like "jobs/ * /vertices/ *" (one '*' = any one
 * segment). The first pattern that matches the path owns it: a method it has
 * no handler for is a 405 with an Allow header, and a path no pattern matches
 * is a 404. So "PATCH /jobs/overview" is a 405, never a cancel of a job named
 * "overview".
 *
 * Documents are built with jansson (REST bodies are small and rare; the
 * record path never sees JSON DOMs). Every error is {"errors": ["..."]} with
 * a 4xx/5xx status, and a request's own bytes are quoted in messages only
 * after escaping (non-printable and non-ASCII bytes as %XX), so an error is
 * always valid JSON. Nothing from a request reaches the filesystem except a
 * savepoint's target directory, which the checkpoint coordinator insists is
 * absolute and which is the operator's choice, as in Flink.
 *
 * Field names follow Flink's REST API where the idea is the same
 * ("read-records", "backpressure-level", "ship_strategy", "request-id", ...);
 * docs/rest-api.md lists every endpoint with a captured answer.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/watermark.h"
#include "../web/assets.h"
#include "jm.h"

/* WEIR_VERSION_STRING comes from meson.build's project version. */

/* The HTTP server's limits. weir-jobmanager starts it with the defaults
 * (limits NULL), which http_server.c keeps private; these mirror them for
 * GET /config, and tests/cluster/test_rest.c checks that a body one byte
 * over the advertised limit is refused. */
#define REST_MAX_BODY_BYTES   (4u * 1024 * 1024)
#define REST_MAX_HEADER_BYTES (16u * 1024)
#define REST_MAX_URL_BYTES    65535u
#define REST_IDLE_TIMEOUT_MS  30000u

#define MAX_SEGMENTS  6          /* the deepest route has 5 */
#define MAX_PATH      1024       /* longer decoded paths match nothing */


/* ---- small helpers ---------------------------------------------------- */

/* Copies at most 96 bytes of s into out (cap >= 3 * 96 + 4) with every byte
 * that is not printable ASCII written as %XX, for error messages that
 * quote a request. */
static const char *
quote(const char *s, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0, i;

    for (i = 0; s[i] != '\0' && i < 96 && o + 4 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (s[i] != '\0' && o + 4 < cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

/* A JSON string of s (NULL gives null). jansson refuses invalid UTF-8; such
 * text (a job file is the user's bytes) is sent with '?' for every byte
 * above 0x7f rather than not at all. Returns a new reference. */
static json_t *
jstr(const char *s)
{
    json_t *o;
    char *copy;

    if (s == NULL)
        return json_null();
    if ((o = json_string(s)) != NULL)
        return o;
    if ((copy = strdup(s)) == NULL)
        return json_null();
    for (char *p = copy; *p != '\0'; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    o = json_string(copy);
    free(copy);
    return o != NULL ? o : json_null();
}

/* Takes doc (may be NULL: a document could not be built, a 500). */
static void
send_json(weir_http_response_t *resp, int status, json_t *doc)
{
    /* ten significant digits: rates and ratios without binary noise
     * (0.011475, not 0.011474999999999999), whole counters exact */
    char *s = doc != NULL ? json_dumps(doc, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;

    json_decref(doc);
    if (s == NULL) {
        weir_http_error(resp, 500, "cannot build the response document");
        return;
    }
    resp->status = status;
    resp->content_type = "application/json";
    weir_buf_append(&resp->body, s, strlen(s));
    free(s);
}

static const char *
partition_name(weir_partition_t p)
{
    /* Flink's ship strategies; DEFAULT never survives planning */
    static const char *const ship[] = { "FORWARD", "FORWARD", "REBALANCE", "BROADCAST", "HASH" };
    return (unsigned)p < sizeof(ship) / sizeof(ship[0]) ? ship[p] : "UNKNOWN";
}

static const char *
restart_strategy_name(weir_restart_strategy_t s)
{
    switch (s) {
    case WEIR_RESTART_NONE: return "none";
    case WEIR_RESTART_FIXED: return "fixed_delay";
    case WEIR_RESTART_EXPONENTIAL: return "exponential_delay";
    }
    return "unknown";
}

/* ---- documents ------------------------------------------------------- */

static json_t *
tasks_counts(const jm_job_t *j)
{
    static const char *const keys[] = {
        "created", "deploying", "running", "finished", "canceling", "canceled", "failed",
    };
    int counts[7] = { 0 }, total = 0;
    json_t *o = json_object();

    for (int v = 0; v < j->plan->nvertices; v++)
        for (int s = 0; s < j->plan->vertices[v].parallelism; s++) {
            unsigned st = (unsigned)j->subtasks[v][s].state;
            if (st < 7)
                counts[st]++;
            total++;
        }
    json_object_set_new(o, "total", json_integer(total));
    for (int i = 0; i < 7; i++)
        json_object_set_new(o, keys[i], json_integer(counts[i]));
    return o;
}

static json_t *
job_summary(const jm_job_t *j)
{
    uint64_t start = j->start_ms ? j->start_ms : j->submit_ms;
    uint64_t end = jm_job_terminal(j) ? j->end_ms : jm_now_ms();

    return json_pack("{s:s, s:o, s:s, s:I, s:I, s:I, s:i, s:o}",
                     "jid", j->id, "name", jstr(j->name), "state", jm_job_state_name(j->state),
                     "start-time", (json_int_t)start,
                     "end-time", jm_job_terminal(j) ? (json_int_t)j->end_ms : (json_int_t)-1,
                     "duration", (json_int_t)(end >= start ? end - start : 0),
                     "parallelism", j->plan->parallelism, "tasks", tasks_counts(j));
}

static const char *
vertex_status(const jm_job_t *j, int v)
{
    /* the "worst" subtask state names the vertex, like Flink's aggregation */
    static const weir_task_state_t order[] = {
        WEIR_TASK_FAILED, WEIR_TASK_CANCELING, WEIR_TASK_CANCELED, WEIR_TASK_DEPLOYING,
        WEIR_TASK_CREATED, WEIR_TASK_RUNNING, WEIR_TASK_FINISHED,
    };
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++)
        for (int s = 0; s < j->plan->vertices[v].parallelism; s++)
            if (j->subtasks[v][s].state == order[k])
                return weir_task_state_name(order[k]);
    return "CREATED";
}

/* The figures of a subtask or vertex, with Flink's names ("read-records"
 * and friends as in Flink's /jobs/{id} vertices; the others as its metric
 * names). */
static json_t *
metrics_json(const jm_metrics_t *m, bool totals_in_base)
{
    uint64_t rin = m->rin + (totals_in_base ? m->base_rin : 0);
    uint64_t rout = m->rout + (totals_in_base ? m->base_rout : 0);
    uint64_t bin = m->bin + (totals_in_base ? m->base_bin : 0);
    uint64_t bout = m->bout + (totals_in_base ? m->base_bout : 0);
    uint64_t dlq = m->dlq + (totals_in_base ? m->base_dlq : 0);
    json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:I}",
        "read-records", (json_int_t)rin, "write-records", (json_int_t)rout,
        "read-bytes", (json_int_t)bin, "write-bytes", (json_int_t)bout,
        "numRecordsInPerSecond", m->rin_ps, "numRecordsOutPerSecond", m->rout_ps,
        "numBytesInPerSecond", m->bin_ps, "numBytesOutPerSecond", m->bout_ps,
        "busyTimeMsPerSecond", m->busy_ms_ps, "idleTimeMsPerSecond", m->idle_ms_ps,
        "backPressuredTimeMsPerSecond", m->bp_ms_ps,
        "numRecordsDeadLettered", (json_int_t)dlq);
    json_object_set_new(o, "pendingRecords", m->pending >= 0 ? json_integer(m->pending)
                                                             : json_null());
    /* event time in Flink's unit (ms); Long.MIN_VALUE: none yet. A
     * subtask never sampled has none; a vertex's figures are aggregated. */
    bool live = m->at_ms != 0 || !totals_in_base;
    json_object_set_new(o, "currentInputWatermark",
                        json_integer(weir_wm_ms(live ? m->in_wm : WEIR_WM_NONE)));
    json_object_set_new(o, "currentOutputWatermark",
                        json_integer(weir_wm_ms(live ? m->out_wm : WEIR_WM_NONE)));
    json_object_set_new(o, "currentEmitEventTimeLag",
                        live && m->emit_lag_ms >= 0 ? json_integer(m->emit_lag_ms) : json_null());
    if (m->nsplits > 0) {
        json_t *parts = json_array();
        for (int i = 0; i < m->nsplits; i++) {
            const struct jm_split *sp = &m->splits[i];
            json_array_append_new(parts, json_pack("{s:o, s:i, s:o, s:o}",
                "topic", jstr(sp->topic), "partition", sp->partition,
                "currentOffset", sp->offset >= 0 ? json_integer(sp->offset) : json_null(),
                "pendingRecords", sp->pending >= 0 ? json_integer(sp->pending) : json_null()));
        }
        json_object_set_new(o, "partitions", parts);
    }
    return o;
}

/* Flink's backpressure levels from the backpressured time ratio. */
static const char *
bp_level(double ratio)
{
    return ratio <= 0.10 ? "ok" : ratio <= 0.5 ? "low" : "high";
}

/* A vertex's level is its most backpressured subtask's, as in Flink. */
static double
vertex_bp_ratio(const jm_job_t *j, int v)
{
    double worst = 0;

    for (int s = 0; s < j->plan->vertices[v].parallelism; s++)
        if (j->subtasks[v][s].m.bp_ms_ps / 1000.0 > worst)
            worst = j->subtasks[v][s].m.bp_ms_ps / 1000.0;
    return worst;
}

/* Checkpoint counts and the latest one (the summary in GET /jobs/{id}). */
static json_t *
job_checkpoints(const jm_job_t *j)
{
    const weir_ckpt_conf_t *c = &j->plan->ckpt;
    json_t *o = json_object();

    json_object_set_new(o, "interval_ms", json_integer(c->interval_us / 1000));
    json_object_set_new(o, "mode", json_string(c->exactly_once ? "exactly_once"
                                                               : "at_least_once"));
    json_object_set_new(o, "completed", json_integer(j->ckpt_completed));
    json_object_set_new(o, "failed", json_integer(j->ckpt_failed));
    json_object_set_new(o, "in_progress", j->ckpt_pending
        ? json_pack("{s:I, s:i, s:i}", "id", (json_int_t)j->ckpt_pending,
                    "acknowledged", j->ckpt_acks, "subtasks", j->ckpt_needed)
        : json_null());
    json_object_set_new(o, "latest", j->ckpt_latest
        ? json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "id", (json_int_t)j->ckpt_latest,
                    "completed_ms", (json_int_t)j->ckpt_latest_wall,
                    "duration_ms", (json_int_t)j->ckpt_latest_ms,
                    "sync_ms", (json_int_t)(j->ckpt_latest_sync_us / 1000),
                    "alignment_ms", (json_int_t)(j->ckpt_latest_align_us / 1000),
                    "bytes", (json_int_t)j->ckpt_latest_bytes,
                    "path", jstr(j->ckpt_latest_dir ? j->ckpt_latest_dir : ""))
        : json_null());
    json_object_set_new(o, "restored_from", j->restored_from
        ? json_integer(j->restored_from) : json_null());
    json_object_set_new(o, "last_failure", jstr(j->ckpt_last_failure));
    return o;
}

static json_t *
subtask_json(const jm_job_t *j, int v, int s)
{
    const jm_subtask_t *st = &j->subtasks[v][s];

    return json_pack("{s:i, s:s, s:i, s:o, s:o, s:o, s:o}",
        "subtask", s, "status", weir_task_state_name(st->state), "attempt", j->attempt,
        "taskmanager-id", st->tm ? jstr(st->tm->id) : json_null(),
        "host", st->tm ? jstr(st->tm->addr) : json_null(),
        "failure", jstr(st->failure), "metrics", metrics_json(&st->m, true));
}

static json_t *
job_detail(const jm_job_t *j)
{
    const weir_plan_t *p = j->plan;
    json_t *o = job_summary(j), *vs = json_array(), *es = json_array();
    char vid[16], src[16], dst[16];

    json_object_set_new(o, "now", json_integer((json_int_t)jm_now_ms()));
    json_object_set_new(o, "max-parallelism", json_integer(p->max_parallelism));
    json_object_set_new(o, "slots-needed", json_integer(p->slots));
    json_object_set_new(o, "failure", j->failure
        ? json_pack("{s:o, s:I}", "message", jstr(j->failure), "timestamp",
                    (json_int_t)j->failure_ms)
        : json_null());
    json_object_set_new(o, "attempt", json_integer(j->attempt));
    json_object_set_new(o, "restarts", json_integer(j->restarts));
    json_object_set_new(o, "checkpoints", job_checkpoints(j));
    for (int v = 0; v < p->nvertices; v++) {
        json_t *ops = json_array(), *subs = json_array(), *opm = json_array();
        jm_metrics_t vm;

        for (int k = 0; k < p->vertices[v].nops; k++)
            json_array_append_new(ops, jstr(p->vertices[v].ops[k]->name));
        for (int s = 0; s < p->vertices[v].parallelism; s++)
            json_array_append_new(subs, subtask_json(j, v, s));
        jm_vertex_metrics(j, v, &vm);
        for (int k = 0; k < p->vertices[v].nops; k++)
            json_array_append_new(opm, json_pack("{s:o, s:I, s:I}",
                "name", jstr(p->vertices[v].ops[k]->name),
                "records-in", (json_int_t)(k < 16 ? vm.op_in[k] : 0),
                "records-out", (json_int_t)(k < 16 ? vm.op_out[k] : 0)));
        snprintf(vid, sizeof(vid), "v%d", v);
        json_array_append_new(vs, json_pack("{s:s, s:o, s:i, s:s, s:o, s:o, s:o, s:o, s:s}",
            "id", vid, "name", jstr(p->vertices[v].name), "parallelism",
            p->vertices[v].parallelism, "status", vertex_status(j, v), "operators", ops,
            "subtasks", subs, "metrics", metrics_json(&vm, false), "operator-metrics", opm,
            "backpressure-level", bp_level(vertex_bp_ratio(j, v))));
    }
    for (int e = 0; e < p->nedges; e++) {
        snprintf(src, sizeof(src), "v%d", p->edges[e].src_vertex);
        snprintf(dst, sizeof(dst), "v%d", p->edges[e].dst_vertex);
        json_array_append_new(es, json_pack("{s:s, s:s, s:s}", "source", src, "target", dst,
                                            "ship_strategy",
                                            partition_name(p->edges[e].partition)));
    }
    json_object_set_new(o, "vertices", vs);
    json_object_set_new(o, "edges", es);
    return o;
}

/* The checkpoint configuration, Flink's /jobs/{id}/checkpoints/config shape
 * plus weir's retained count and directory. */
static json_t *
ckpt_config_json(const jm_t *jm, const jm_job_t *j)
{
    const weir_ckpt_conf_t *c = &j->plan->ckpt;
    char dir[1024];

    jm_ckpt_job_dir(jm, j, dir, sizeof(dir));
    return json_pack("{s:b, s:s, s:I, s:I, s:I, s:i, s:i, s:i, s:{s:b, s:b}, s:s, s:s, s:b,"
                     " s:b, s:o}",
        "enabled", c->interval_us > 0,
        "mode", c->exactly_once ? "exactly_once" : "at_least_once",
        "interval", (json_int_t)(c->interval_us / 1000),
        "timeout", (json_int_t)(c->timeout_us / 1000),
        "min_pause", (json_int_t)(c->min_pause_us / 1000),
        "max_concurrent", c->max_concurrent,
        "tolerable_failed_checkpoints", c->tolerable_failures,
        "retained", c->retained,
        /* a canceled or failed job keeps its retained checkpoints; a finished
         * one deletes them (docs/checkpoints.md) */
        "externalization", "enabled", true, "delete_on_cancellation", false,
        "state_backend", j->plan->state_in_memory ? "memory" : "rocksdb",
        "checkpoint_storage", "filesystem",
        "unaligned_checkpoints", false,
        "checkpoints_after_tasks_finish", false,
        "checkpoint_dir", jstr(dir));
}

/* Flink's one-line description, and the figures behind it. */
static json_t *
restart_json(const weir_restart_conf_t *r, char *desc, size_t cap)
{
    switch (r->strategy) {
    case WEIR_RESTART_NONE:
        snprintf(desc, cap, "No restarts.");
        return json_pack("{s:s}", "strategy", "none");
    case WEIR_RESTART_FIXED:
        if (r->attempts < 0)
            snprintf(desc, cap, "Restart with fixed delay (%.3g s), no limit.",
                     (double)r->delay_us / 1e6);
        else
            snprintf(desc, cap, "Restart with fixed delay (%.3g s). #%d restart attempts.",
                     (double)r->delay_us / 1e6, r->attempts);
        return json_pack("{s:s, s:i, s:I}", "strategy", "fixed_delay", "attempts", r->attempts,
                         "delay", (json_int_t)(r->delay_us / 1000));
    case WEIR_RESTART_EXPONENTIAL:
        snprintf(desc, cap, "Restart with exponential delay: initial %.3g s, max %.3g s, "
                 "multiplier %g, reset after %.3g s running.", (double)r->initial_us / 1e6,
                 (double)r->max_us / 1e6, r->multiplier, (double)r->reset_us / 1e6);
        return json_pack("{s:s, s:I, s:I, s:f, s:I}", "strategy", "exponential_delay",
                         "initial", (json_int_t)(r->initial_us / 1000),
                         "max", (json_int_t)(r->max_us / 1000), "multiplier", r->multiplier,
                         "reset_threshold", (json_int_t)(r->reset_us / 1000));
    }
    snprintf(desc, cap, "%s", restart_strategy_name(r->strategy));
    return json_object();
}

/* A variable whose name says it holds a secret is shown as "******": the
 * job file's other variables (paths, topics, rates) are worth seeing, a
 * password is not, and REST has no authentication of its own. */
static bool
secret_var(const char *name)
{
    static const char *const words[] = { "password", "passwd", "secret", "token",
                                         "credential", "private", NULL };
    for (int i = 0; words[i] != NULL; i++)
        if (strcasestr(name, words[i]) != NULL)
            return true;
    return false;
}

static json_t *
job_config_json(const jm_t *jm, const jm_job_t *j)
{
    const weir_plan_t *p = j->plan;
    json_t *vars = json_object(), *restart;
    char desc[256];

    for (int i = 0; i < j->vars.n; i++) {
        json_t *k = jstr(j->vars.keys[i]);
        if (json_is_string(k))
            json_object_set_new(vars, json_string_value(k),
                                secret_var(j->vars.keys[i]) ? json_string("******")
                                                            : jstr(j->vars.vals[i]));
        json_decref(k);
    }
    restart = restart_json(&p->restart, desc, sizeof(desc));
    return json_pack("{s:s, s:o, s:{s:o, s:o}, s:{s:i, s:i, s:o, s:b, s:s, s:s, s:o, s:o,"
                     " s:o}}",
        "jid", j->id, "name", jstr(j->name),
        "job-file", "path", jstr(j->path), "text", jstr(j->text),
        "execution-config",
            "job-parallelism", p->parallelism,
            "max-parallelism", p->max_parallelism,
            "parallelism-override", j->parallelism_override > 0
                ? json_integer(j->parallelism_override) : json_null(),
            "object-reuse-mode", false,
            "state-backend", p->state_in_memory ? "memory" : "rocksdb",
            "restart-strategy", desc,
            "restart-strategy-config", restart,
            "checkpointing", ckpt_config_json(jm, j),
            "user-config", vars);
}

/* GET /jobs/{id}/plan: Flink's JobPlanInfo. "operator" is the chain's kinds
 * and "description" its node names, as in the job file. */
static json_t *
plan_json(const jm_job_t *j)
{
    const weir_plan_t *p = j->plan;
    json_t *nodes = json_array();
    char id[16];

    for (int v = 0; v < p->nvertices; v++) {
        const weir_plan_vertex_t *pv = &p->vertices[v];
        json_t *inputs = json_array(), *ops = json_array();
        weir_buf_t kinds = WEIR_BUF_INIT;

        for (int k = 0; k < pv->nops; k++) {
            const weir_op_config_t *oc = pv->ops[k];
            const char *kind = oc->kind != NULL ? oc->kind->name : "?";
            weir_buf_appendf(&kinds, "%s%s", k > 0 ? " -> " : "", kind);
            json_array_append_new(ops, json_pack("{s:o, s:s}", "name", jstr(oc->name),
                                                 "kind", kind));
        }
        for (int i = 0; i < pv->nin; i++) {
            const weir_plan_edge_t *e = &p->edges[pv->in_edges[i]];
            json_t *in, *keys = json_array();
            char src[16];

            for (int k = 0; k < e->nkeys; k++)
                if (e->schema != NULL && e->key_idx[k] >= 0 && e->key_idx[k] < e->schema->nfields)
                    json_array_append_new(keys, jstr(e->schema->fields[e->key_idx[k]].name));
            snprintf(src, sizeof(src), "v%d", e->src_vertex);
            in = json_pack("{s:i, s:s, s:s, s:s}", "num", e->dst_input, "id", src,
                           "ship_strategy", partition_name(e->partition),
                           "exchange", "pipelined_bounded");
            if (e->partition == WEIR_PART_HASH)
                json_object_set_new(in, "keys", keys);
            else
                json_decref(keys);
            json_array_append_new(inputs, in);
        }
        weir_buf_nul(&kinds);
        snprintf(id, sizeof(id), "v%d", v);
        json_array_append_new(nodes, json_pack("{s:s, s:i, s:i, s:o, s:s, s:o, s:o, s:o, s:{}}",
            "id", id, "parallelism", pv->parallelism, "max-parallelism", p->max_parallelism,
            "operator", jstr(kinds.data != NULL ? kinds.data : ""),
            "operator_strategy", pv->keyed ? "keyed" : "",
            "description", jstr(pv->name), "operators", ops, "inputs", inputs,
            "optimizer_properties"));
        weir_buf_free(&kinds);
    }
    return json_pack("{s:{s:s, s:o, s:s, s:o}}", "plan", "jid", j->id, "name", jstr(j->name),
                     "type", "STREAMING", "nodes", nodes);
}

/* GET /jobs/{id}/checkpoints: counts, latest, history (newest first) and a
 * min/avg/max summary of the completed ones in the history. */
static json_t *
checkpoints_detail(const jm_job_t *j)
{
    json_t *o = job_checkpoints(j), *hist = json_array();
    uint64_t dmin = UINT64_MAX, dmax = 0, dsum = 0, bmin = UINT64_MAX, bmax = 0, bsum = 0;
    int n = 0;

    for (int k = 0; k < JM_CKPT_HISTORY && k < j->hist_n; k++) {
        const jm_ckpt_hist_t *h = &j->hist[(j->hist_n - 1 - k) % JM_CKPT_HISTORY];
        static const char *const st[] = { "IN_PROGRESS", "COMPLETED", "FAILED" };
        json_array_append_new(hist, json_pack("{s:I, s:s, s:b, s:I, s:I, s:I, s:I, s:I, s:i, s:i, s:o}",
            "id", (json_int_t)h->id, "status", (unsigned)h->status < 3 ? st[h->status] : "UNKNOWN",
            "is_savepoint", h->savepoint, "trigger_timestamp", (json_int_t)h->trigger_ms,
            "end_to_end_duration", (json_int_t)h->duration_ms,
            "state_size", (json_int_t)h->bytes, "sync_duration", (json_int_t)(h->sync_us / 1000),
            "alignment_duration", (json_int_t)(h->align_us / 1000),
            "num_acknowledged_subtasks", h->acks, "num_subtasks", h->subtasks,
            "failure_message", jstr(h->failure)));
        if (h->status == 1) {
            n++;
            dsum += h->duration_ms;
            bsum += h->bytes;
            if (h->duration_ms < dmin) dmin = h->duration_ms;
            if (h->duration_ms > dmax) dmax = h->duration_ms;
            if (h->bytes < bmin) bmin = h->bytes;
            if (h->bytes > bmax) bmax = h->bytes;
        }
    }
    json_object_set_new(o, "history", hist);
    json_object_set_new(o, "summary", n == 0 ? json_null() : json_pack(
        "{s:{s:I, s:I, s:I}, s:{s:I, s:I, s:I}}",
        "end_to_end_duration", "min", (json_int_t)dmin, "avg", (json_int_t)(dsum / (uint64_t)n),
        "max", (json_int_t)dmax,
        "state_size", "min", (json_int_t)bmin, "avg", (json_int_t)(bsum / (uint64_t)n),
        "max", (json_int_t)bmax));
    json_object_set_new(o, "counts", json_pack("{s:i, s:i, s:i, s:i, s:i}",
        "total", j->ckpt_completed + j->ckpt_failed + (j->ckpt_pending != 0),
        "completed", j->ckpt_completed, "failed", j->ckpt_failed,
        "in_progress", j->ckpt_pending != 0, "restored", j->restored_from != 0));
    return o;
}

/* GET /jobs/{id}/exceptions: the latest failure and the history. */
static json_t *
exceptions_detail(const jm_job_t *j)
{
    json_t *hist = json_array();

    for (int k = 0; k < JM_EXCEPTIONS && k < j->exc_n; k++) {
        const jm_exception_t *e = &j->exc[(j->exc_n - 1 - k) % JM_EXCEPTIONS];
        json_array_append_new(hist, json_pack("{s:o, s:I, s:i}", "exceptionName",
            jstr(e->message ? e->message : ""), "timestamp", (json_int_t)e->ts_ms,
            "attempt", e->attempt));
    }
    return json_pack("{s:o, s:o, s:o}", "rootException", jstr(j->failure),
                     "timestamp", j->failure ? json_integer((json_int_t)j->failure_ms)
                                             : json_null(),
                     "exceptionHistory", json_pack("{s:o, s:b}", "entries", hist,
                                                   "truncated", j->exc_n > JM_EXCEPTIONS));
}

/* One task manager; with_slots adds what occupies each slot. */
static json_t *
tm_json(const jm_tm_t *tm, uint64_t now_mono, bool detail)
{
    json_t *slots = json_array(), *allocated = json_array(), *o;
    int free_slots = 0;

    for (int s = 0; s < tm->nslots; s++) {
        const jm_slot_t *sl = &tm->slots[s];
        json_t *tasks = json_array();

        free_slots += sl->job == NULL;
        if (sl->job != NULL) {
            /* slot sharing: shared slot i holds subtask i of every vertex */
            const jm_job_t *j = sl->job;
            const weir_plan_t *p = j->plan;
            char name[512], vid[16];
            for (int v = 0; v < p->nvertices; v++) {
                if (sl->index >= p->vertices[v].parallelism)
                    continue;
                snprintf(name, sizeof(name), "%s (%d/%d)", p->vertices[v].name,
                         sl->index + 1, p->vertices[v].parallelism);
                if (!detail) {
                    json_array_append_new(tasks, jstr(name));
                    continue;
                }
                snprintf(vid, sizeof(vid), "v%d", v);
                json_array_append_new(tasks, json_pack("{s:s, s:o, s:o, s:i, s:s}",
                    "vertex", vid, "name", jstr(name), "vertex-name", jstr(p->vertices[v].name),
                    "subtask", sl->index,
                    "status", weir_task_state_name(j->subtasks[v][sl->index].state)));
            }
            json_array_append_new(allocated, json_pack("{s:i, s:s, s:o, s:i}", "index", s,
                "jobId", j->id, "jobName", jstr(j->name), "subtask", sl->index));
        }
        json_array_append_new(slots, json_pack("{s:i, s:o, s:i, s:o}", "index", s,
            "job", sl->job ? json_string(sl->job->id) : json_null(),
            "subtask", sl->job ? sl->index : -1, "tasks", tasks));
    }
    o = json_pack("{s:o, s:o, s:i, s:I, s:i, s:i, s:o, s:{s:I, s:f}}",
        "id", jstr(tm->id), "path", jstr(tm->addr), "dataPort", tm->data_port,
        "timeSinceLastHeartbeat", (json_int_t)(now_mono >= tm->last_hb_ms
                                               ? now_mono - tm->last_hb_ms : 0),
        "slotsNumber", tm->nslots, "freeSlots", free_slots, "slots", slots,
        "metrics", "rssBytes", (json_int_t)tm->rss_kb * 1024, "cpuPercent", tm->cpu_pct);
    if (o != NULL && detail) {
        json_object_set_new(o, "host", jstr(tm->host));
        json_object_set_new(o, "registered", json_integer((json_int_t)tm->registered_ms));
        json_object_set_new(o, "allocatedSlots", allocated);
    } else {
        json_decref(allocated);
    }
    return o;
}

/* ---- routing ---------------------------------------------------------- */

typedef struct rest_req {
    jm_t                      *jm;
    const weir_http_request_t *req;
    weir_http_response_t      *resp;
    const char                *arg[2];   /* the '*' segments, in order */
} rest_req_t;

typedef void (*rest_fn)(rest_req_t *x);

typedef struct route {
    const char *pattern;     /* segments after the leading '/'; '*' = any one */
    const char *allow;       /* "Allow: ...\r\n" for a 405 */
    rest_fn     get, post, patch;
} route_t;

/* The job named by the first '*', or NULL after a 404. */
static jm_job_t *
job_arg(rest_req_t *x)
{
    jm_job_t *j = strlen(x->arg[0]) <= WEIR_JOB_ID_LEN ? jm_job_find(x->jm, x->arg[0]) : NULL;
    char q[300];

    if (j == NULL)
        weir_http_error(x->resp, 404, "no job with id '%s'", quote(x->arg[0], q, sizeof(q)));
    return j;
}

/* The vertex named by the second '*' ("v2" or "2"), or -1 after a 404. */
static int
vertex_arg(rest_req_t *x, const jm_job_t *j)
{
    const char *s = x->arg[1] + (x->arg[1][0] == 'v');
    long v = 0;
    char q[300];

    if (*s == '\0' || strlen(s) > 6)
        v = -1;
    for (const char *p = s; *p != '\0' && v >= 0; p++)
        v = *p >= '0' && *p <= '9' ? v * 10 + (*p - '0') : -1;
    if (v < 0 || v >= j->plan->nvertices) {
        weir_http_error(x->resp, 404, "job %s has no vertex '%s' (vertices: v0..v%d)", j->id,
                        quote(x->arg[1], q, sizeof(q)), j->plan->nvertices - 1);
        return -1;
    }
    return (int)v;
}

/* The request body as a JSON object (an empty body is {}), or NULL after a
 * 400. Returns a new reference. */
static json_t *
body_object(rest_req_t *x)
{
    json_error_t je;
    json_t *doc;

    if (x->req->body_len == 0)
        return json_object();
    doc = json_loadb(x->req->body, x->req->body_len, 0, &je);
    if (doc == NULL) {
        weir_http_error(x->resp, 400, "request body is not valid JSON: %s (line %d, column %d)",
                        je.text, je.line, je.column);
        return NULL;
    }
    if (!json_is_object(doc)) {
        weir_http_error(x->resp, 400, "request body must be a JSON object");
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* The first of the given fields present in doc; a present one must have
 * the JSON type 'type' ('s' string, 'b' boolean), else a 400 and *bad. */
static json_t *
body_field(rest_req_t *x, json_t *doc, char type, bool *bad, const char *name,
           const char *alias)
{
    json_t *v = json_object_get(doc, name);
    const char *which = name;

    if (v == NULL && alias != NULL) {
        v = json_object_get(doc, alias);
        which = alias;
    }
    if (v == NULL || json_is_null(v))
        return NULL;
    if ((type == 's' && !json_is_string(v)) || (type == 'b' && !json_is_boolean(v))) {
        weir_http_error(x->resp, 400, "field '%s' must be a %s", which,
                        type == 's' ? "string" : "boolean");
        *bad = true;
        return NULL;
    }
    return v;
}

/* ---- handlers --------------------------------------------------------- */

static void
get_overview(rest_req_t *x)
{
    jm_t *jm = x->jm;
    int running = 0, finished = 0, canceled = 0, failed = 0;

    for (int i = 0; i < jm->njobs; i++) {
        switch (jm->jobs[i]->state) {
        case JOB_FINISHED: finished++; break;
        case JOB_CANCELED: canceled++; break;
        case JOB_FAILED: failed++; break;
        default: running++; break;
        }
    }
    send_json(x->resp, 200, json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:s}",
        "taskmanagers", jm->ntms, "slots-total", jm_total_slots(jm),
        "slots-available", jm_free_slots(jm), "jobs-running", running,
        "jobs-finished", finished, "jobs-cancelled", canceled, "jobs-failed", failed,
        "weir-version", WEIR_VERSION_STRING));
}

/* GET /config: the cluster's configuration (never the secret itself). */
static void
get_config(rest_req_t *x)
{
    jm_t *jm = x->jm;
    time_t now = time(NULL);
    struct tm tm;
    char spdir[600];

    localtime_r(&now, &tm);
    snprintf(spdir, sizeof(spdir), "%s/savepoints", jm->ckpt_base);
    send_json(x->resp, 200, json_pack(
        "{s:s, s:s, s:I, s:{s:s, s:i, s:i}, s:o, s:o, s:o, s:I, s:I, s:b,"
        " s:{s:I, s:I, s:I, s:I}, s:{s:b, s:b, s:b}}",
        "weir-version", WEIR_VERSION_STRING,
        "timezone-name", tm.tm_zone != NULL ? tm.tm_zone : "UTC",
        "timezone-offset", (json_int_t)tm.tm_gmtoff * 1000,
        "jobmanager", "host", jm->host, "rpc-port", jm->rpc_port, "rest-port", jm->rest_port,
        "checkpoint-dir", jstr(jm->ckpt_base),
        "savepoint-dir", jstr(spdir),
        "data-dir", jm->data_dir[0] != '\0' ? jstr(jm->data_dir) : json_null(),
        "heartbeat-timeout", (json_int_t)jm->hb_timeout_ms,
        "slot-timeout", (json_int_t)jm->slot_timeout_ms,
        "taskmanager-secret-required", jm->secret[0] != '\0',
        "limits", "max-body-bytes", (json_int_t)REST_MAX_BODY_BYTES,
        "max-header-bytes", (json_int_t)REST_MAX_HEADER_BYTES,
        "max-url-bytes", (json_int_t)REST_MAX_URL_BYTES,
        "idle-timeout", (json_int_t)REST_IDLE_TIMEOUT_MS,
        "features", "web-submit", true, "web-cancel", true, "web-rescale", false));
}

static void
get_jobs(rest_req_t *x)
{
    json_t *arr = json_array();

    for (int i = 0; i < x->jm->njobs; i++)
        json_array_append_new(arr, json_pack("{s:s, s:s}", "id", x->jm->jobs[i]->id,
                                             "status", jm_job_state_name(x->jm->jobs[i]->state)));
    send_json(x->resp, 200, json_pack("{s:o}", "jobs", arr));
}

static void
get_jobs_overview(rest_req_t *x)
{
    json_t *arr = json_array();

    for (int i = 0; i < x->jm->njobs; i++)
        json_array_append_new(arr, job_summary(x->jm->jobs[i]));
    send_json(x->resp, 200, json_pack("{s:o}", "jobs", arr));
}

/* POST /jobs: JSON {"job": TEXT, "path", "parallelism", "vars", "savepoint"
 * (or Flink's "savepointPath"), "allow_non_restored_state" (or
 * "allowNonRestoredState")}, or the job file itself with any other content
 * type (then ?parallelism=N). */
static void
post_jobs(rest_req_t *x)
{
    const weir_http_request_t *req = x->req;
    weir_http_response_t *resp = x->resp;
    const char *ctype = weir_http_header(req, "content-type");
    const char *text = req->body, *path = "<request>", *savepoint = NULL;
    size_t len = req->body_len;
    weir_vars_t vars = { 0 };
    json_t *doc = NULL;
    weir_err_t err = { 0 };
    bool allow_non_restored = false, bad = false;
    jm_job_t *j;
    int parallelism = 0;
    char pbuf[32];

    if (ctype != NULL && strncasecmp(ctype, "application/json", 16) == 0) {
        json_t *jt, *jp, *jv, *jpath, *jsp, *jnr;
        const char *k;
        json_t *val;

        if (req->body_len == 0) {
            weir_http_error(resp, 400, "request body is empty; expected {\"job\": \"...\"}");
            return;
        }
        if ((doc = body_object(x)) == NULL)
            return;
        jt = json_object_get(doc, "job");
        jp = json_object_get(doc, "parallelism");
        jv = json_object_get(doc, "vars");
        jpath = body_field(x, doc, 's', &bad, "path", NULL);
        jsp = bad ? NULL : body_field(x, doc, 's', &bad, "savepoint", "savepointPath");
        jnr = bad ? NULL : body_field(x, doc, 'b', &bad, "allow_non_restored_state",
                                      "allowNonRestoredState");
        if (bad)
            goto done;
        if (!json_is_string(jt)) {
            weir_http_error(resp, 400, "field 'job' (the job file text) is required and must be a string");
            goto done;
        }
        text = json_string_value(jt);
        len = json_string_length(jt);
        if (jpath != NULL)
            path = json_string_value(jpath);
        if (jsp != NULL)
            savepoint = json_string_value(jsp);
        allow_non_restored = json_is_true(jnr);
        if (jp != NULL && !json_is_null(jp)) {
            if (!json_is_integer(jp) || json_integer_value(jp) < 1 || json_integer_value(jp) > 32768) {
                weir_http_error(resp, 400, "field 'parallelism' must be an integer from 1 to 32768");
                goto done;
            }
            parallelism = (int)json_integer_value(jp);
        }
        if (jv != NULL && !json_is_null(jv)) {
            if (!json_is_object(jv)) {
                weir_http_error(resp, 400, "field 'vars' must be an object of strings");
                goto done;
            }
            json_object_foreach(jv, k, val) {
                char q[300];
                if (!json_is_string(val)) {
                    weir_http_error(resp, 400, "vars.%s must be a string", quote(k, q, sizeof(q)));
                    goto done;
                }
                weir_vars_set(&vars, k, json_string_value(val));
            }
        }
    } else {
        int n = weir_http_query_get(req->query, "parallelism", pbuf, sizeof(pbuf));
        if (n >= 0) {
            char *end;
            long p = strtol(pbuf, &end, 10);
            if (n == 0 || *end != '\0' || p < 1 || p > 32768) {
                weir_http_error(resp, 400, "query parameter 'parallelism' must be an integer "
                                "from 1 to 32768");
                return;
            }
            parallelism = (int)p;
        }
    }
    if (len == 0) {
        weir_http_error(resp, 400, "empty job file");
    } else if (jm_submit_from(x->jm, path, text, len, &vars, parallelism, savepoint,
                              allow_non_restored, &j, &err) != 0) {
        weir_log_info("rejected job from %s: %s", path, err.msg);
        weir_http_error(resp, 400, "%s", err.msg);
    } else {
        send_json(resp, 202, json_pack("{s:s}", "jobid", j->id));
    }
done:
    weir_vars_free(&vars);
    json_decref(doc);
}

static void
get_job(rest_req_t *x)
{
    jm_job_t *j = job_arg(x);

    if (j != NULL)
        send_json(x->resp, 200, job_detail(j));
}

/* PATCH /jobs/{id}?mode=cancel (mode may be left out, as in Flink). */
static void
patch_job(rest_req_t *x)
{
    jm_job_t *j = job_arg(x);
    char mode[32] = "cancel", q[300];
    int n;

    if (j == NULL)
        return;
    n = weir_http_query_get(x->req->query, "mode", mode, sizeof(mode));
    if (n == -1 && (strncmp(x->req->query, "mode=", 5) == 0 ||
                    strstr(x->req->query, "&mode=") != NULL))
        snprintf(mode, sizeof(mode), "(too long)");
    if (strcmp(mode, "cancel") != 0)
        weir_http_error(x->resp, 400, "unsupported mode '%s' (supported: cancel; to stop with a "
                        "savepoint, POST /jobs/%s/stop)", quote(mode, q, sizeof(q)), j->id);
    else if (jm_cancel(x->jm, j) != 0)
        weir_http_error(x->resp, 409, "job %s is already %s", j->id, jm_job_state_name(j->state));
    else
        send_json(x->resp, 202, json_object());
}

static void
get_plan(rest_req_t *x)
{
    jm_job_t *j = job_arg(x);

    if (j != NULL)
        send_json(x->resp, 200, plan_json(j));
}

static void
get_job_config(rest_req_t *x)
{
    jm_job_t *j = job_arg(x);

    if (j != NULL)
        send_json(x->resp, 200, job_config_json(x->jm, j));
}

static void
get_exceptions(rest_req_t *x)
{
    jm_job_t *j = job_arg(x);

    if (j != NULL)
        send_json(x->resp, 200, exceptions_detail(j));
}

static void
get_checkpoints(rest_req_t *x)
{
    jm_job_t *j = job_arg(x);

    if (j != NULL)
        send_json(x->resp, 200, checkpoints_detail(j));
}

/* GET /jobs/{id}/checkpoints/config; 404 when the job takes no checkpoints,
 * as Flink answers. */
static void
get_ckpt_config(rest_req_t *x)
{
    jm_job_t *j = job_arg(x);

    if (j == NULL)
        return;
    if (j->plan->ckpt.interval_us <= 0)
        weir_http_error(x->resp, 404, "checkpointing is not enabled for job %s (its job file "
                        "has no 'checkpoint:' block)", j->id);
    else
        send_json(x->resp, 200, ckpt_config_json(x->jm, j));
}

/* POST /jobs/{id}/savepoints {"target-directory": DIR, "cancel-job": bool}
 * and POST /jobs/{id}/stop {"targetDirectory": DIR, "drain": false} (which
 * is the same with cancel) -> 202 {"request-id": "N"}, both as in Flink;
 * each takes the other's directory field name too. No directory: the
 * cluster's <checkpoint-dir>/savepoints (GET /config "savepoint-dir"). */
static void
savepoint_trigger(rest_req_t *x, bool stop)
{
    jm_job_t *j = job_arg(x);
    json_t *doc, *jdir, *jcancel = NULL, *jdrain = NULL;
    weir_err_t err = { 0 };
    bool bad = false;
    char dir[1024], rid[16];
    int rc;

    if (j == NULL || (doc = body_object(x)) == NULL)
        return;
    jdir = stop ? body_field(x, doc, 's', &bad, "targetDirectory", "target-directory")
                : body_field(x, doc, 's', &bad, "target-directory", "targetDirectory");
    if (!bad && !stop)
        jcancel = body_field(x, doc, 'b', &bad, "cancel-job", NULL);
    if (!bad && stop)
        jdrain = body_field(x, doc, 'b', &bad, "drain", NULL);
    if (bad)
        goto done;
    if (jdir != NULL)
        snprintf(dir, sizeof(dir), "%s", json_string_value(jdir));
    else
        snprintf(dir, sizeof(dir), "%s/savepoints", x->jm->ckpt_base);
    rc = jm_savepoint_request(x->jm, j, dir, stop || json_is_true(jcancel),
                              stop && json_is_true(jdrain), &err);
    if (rc < 0) {
        weir_http_error(x->resp, rc == WEIR_ESTATE ? 409 : 400, "%s", err.msg);
    } else {
        snprintf(rid, sizeof(rid), "%d", rc);
        send_json(x->resp, 202, json_pack("{s:s}", "request-id", rid));
    }
done:
    json_decref(doc);
}

static void
post_savepoint(rest_req_t *x)
{
    savepoint_trigger(x, false);
}

static void
post_stop(rest_req_t *x)
{
    savepoint_trigger(x, true);
}

/* GET /jobs/{id}/savepoints/{N}
 *   -> {"status": {"id": "IN_PROGRESS"|"COMPLETED"},
 *       "operation": {"location": DIR} | {"failure-cause": {"class", "stack-trace"}}} */
static void
get_savepoint(rest_req_t *x)
{
    jm_job_t *j = job_arg(x);
    const char *s;
    char q[300];
    long want = 0;

    if (j == NULL)
        return;
    s = x->arg[1];
    if (*s == '\0' || strlen(s) > 9)
        want = -1;
    for (const char *p = s; *p != '\0' && want >= 0; p++)
        want = *p >= '0' && *p <= '9' ? want * 10 + (*p - '0') : -1;
    for (int i = 0; want > 0 && i < j->nsps; i++) {
        const jm_savepoint_t *sp = &j->sps[i];
        json_t *op;
        if (sp->request != want)
            continue;
        op = sp->status == 1 ? json_pack("{s:o}", "location", jstr(sp->location))
           : sp->status == 2 ? json_pack("{s:{s:s, s:o}}", "failure-cause",
                                         "class", "weir.SavepointFailed",
                                         "stack-trace", jstr(sp->failure ? sp->failure
                                                                         : "failed"))
           : json_null();
        send_json(x->resp, 200, json_pack("{s:{s:s}, s:o}", "status", "id",
                                          sp->status == 0 ? "IN_PROGRESS" : "COMPLETED",
                                          "operation", op));
        return;
    }
    weir_http_error(x->resp, 404, "job %s has no savepoint request '%s'", j->id,
                    quote(s, q, sizeof(q)));
}

/* GET /jobs/{id}/vertices/{vid}: Flink's JobVertexDetailsInfo. */
static void
get_vertex(rest_req_t *x)
{
    jm_job_t *j = job_arg(x);
    const weir_plan_vertex_t *pv;
    json_t *subs, *ops;
    jm_metrics_t vm;
    char vid[16];
    int v;

    if (j == NULL || (v = vertex_arg(x, j)) < 0)
        return;
    pv = &j->plan->vertices[v];
    subs = json_array();
    ops = json_array();
    for (int s = 0; s < pv->parallelism; s++)
        json_array_append_new(subs, subtask_json(j, v, s));
    for (int k = 0; k < pv->nops; k++)
        json_array_append_new(ops, jstr(pv->ops[k]->name));
    jm_vertex_metrics(j, v, &vm);
    snprintf(vid, sizeof(vid), "v%d", v);
    send_json(x->resp, 200, json_pack("{s:s, s:o, s:i, s:i, s:s, s:I, s:o, s:o, s:o}",
        "id", vid, "name", jstr(pv->name), "parallelism", pv->parallelism,
        "maxParallelism", j->plan->max_parallelism, "status", vertex_status(j, v),
        "now", (json_int_t)jm_now_ms(), "operators", ops, "subtasks", subs,
        "metrics", metrics_json(&vm, false)));
}

/* GET /jobs/{id}/vertices/{vid}/backpressure: Flink's levels from each
 * subtask's backpressured time over the last heartbeat interval. */
static void
get_backpressure(rest_req_t *x)
{
    jm_job_t *j = job_arg(x);
    json_t *subs;
    int v;

    if (j == NULL || (v = vertex_arg(x, j)) < 0)
        return;
    subs = json_array();
    for (int s = 0; s < j->plan->vertices[v].parallelism; s++) {
        const jm_subtask_t *st = &j->subtasks[v][s];
        double ratio = st->m.bp_ms_ps / 1000.0;
        json_array_append_new(subs, json_pack("{s:i, s:i, s:s, s:f, s:f, s:f}",
            "subtask", s, "attempt-number", j->attempt, "backpressure-level", bp_level(ratio),
            "ratio", ratio, "busyRatio", st->m.busy_ms_ps / 1000.0,
            "idleRatio", st->m.idle_ms_ps / 1000.0));
    }
    send_json(x->resp, 200, json_pack("{s:s, s:s, s:I, s:o}", "status", "ok",
        "backpressure-level", bp_level(vertex_bp_ratio(j, v)), "end-timestamp", (json_int_t)jm_now_ms(),
        "subtasks", subs));
}

/* GET /jobs/{id}/vertices/{vid}/watermarks: Flink's metric list, one
 * "<subtask>.currentInputWatermark" per subtask (milliseconds as a string,
 * as Flink's metric values are; Long.MIN_VALUE when none arrived), and
 * weir adds "<subtask>.currentOutputWatermark" (what a source emits). */
static void
get_watermarks(rest_req_t *x)
{
    jm_job_t *j = job_arg(x);
    json_t *arr;
    char id[48], val[32];
    int v;

    if (j == NULL || (v = vertex_arg(x, j)) < 0)
        return;
    arr = json_array();
    for (int s = 0; s < j->plan->vertices[v].parallelism; s++) {
        const jm_metrics_t *m = &j->subtasks[v][s].m;
        snprintf(id, sizeof(id), "%d.currentInputWatermark", s);
        snprintf(val, sizeof(val), "%" PRId64, weir_wm_ms(m->at_ms ? m->in_wm : WEIR_WM_NONE));
        json_array_append_new(arr, json_pack("{s:s, s:s}", "id", id, "value", val));
    }
    for (int s = 0; s < j->plan->vertices[v].parallelism; s++) {
        const jm_metrics_t *m = &j->subtasks[v][s].m;
        snprintf(id, sizeof(id), "%d.currentOutputWatermark", s);
        snprintf(val, sizeof(val), "%" PRId64, weir_wm_ms(m->at_ms ? m->out_wm : WEIR_WM_NONE));
        json_array_append_new(arr, json_pack("{s:s, s:s}", "id", id, "value", val));
    }
    send_json(x->resp, 200, arr);
}

static void
get_taskmanagers(rest_req_t *x)
{
    json_t *arr = json_array();
    uint64_t now = jm_mono_ms();

    for (int i = 0; i < x->jm->ntms; i++)
        json_array_append_new(arr, tm_json(x->jm->tms[i], now, false));
    send_json(x->resp, 200, json_pack("{s:o}", "taskmanagers", arr));
}

static void
get_taskmanager(rest_req_t *x)
{
    char q[300];

    for (int i = 0; i < x->jm->ntms; i++)
        if (strcmp(x->jm->tms[i]->id, x->arg[0]) == 0) {
            send_json(x->resp, 200, tm_json(x->jm->tms[i], jm_mono_ms(), true));
            return;
        }
    weir_http_error(x->resp, 404, "no task manager with id '%s'", quote(x->arg[0], q, sizeof(q)));
}

static void
get_metrics(rest_req_t *x)
{
    x->resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    jm_metrics_prometheus(x->jm, &x->resp->body);
}

#define ALLOW(m) "Allow: " m "\r\n"

static const route_t routes[] = {
    { "overview",                       ALLOW("GET, HEAD"), get_overview, NULL, NULL },
    { "config",                         ALLOW("GET, HEAD"), get_config, NULL, NULL },
    { "metrics",                        ALLOW("GET, HEAD"), get_metrics, NULL, NULL },
    { "taskmanagers",                   ALLOW("GET, HEAD"), get_taskmanagers, NULL, NULL },
    { "taskmanagers/*",                 ALLOW("GET, HEAD"), get_taskmanager, NULL, NULL },
    { "jobs",                           ALLOW("GET, HEAD, POST"), get_jobs, post_jobs, NULL },
    { "jobs/overview",                  ALLOW("GET, HEAD"), get_jobs_overview, NULL, NULL },
    { "jobs/*",                         ALLOW("GET, HEAD, PATCH"), get_job, NULL, patch_job },
    { "jobs/*/plan",                    ALLOW("GET, HEAD"), get_plan, NULL, NULL },
    { "jobs/*/config",                  ALLOW("GET, HEAD"), get_job_config, NULL, NULL },
    { "jobs/*/exceptions",              ALLOW("GET, HEAD"), get_exceptions, NULL, NULL },
    { "jobs/*/checkpoints",             ALLOW("GET, HEAD"), get_checkpoints, NULL, NULL },
    { "jobs/*/checkpoints/config",      ALLOW("GET, HEAD"), get_ckpt_config, NULL, NULL },
    { "jobs/*/savepoints",              ALLOW("POST"), NULL, post_savepoint, NULL },
    { "jobs/*/savepoints/*",            ALLOW("GET, HEAD"), get_savepoint, NULL, NULL },
    { "jobs/*/stop",                    ALLOW("POST"), NULL, post_stop, NULL },
    { "jobs/*/vertices/*",              ALLOW("GET, HEAD"), get_vertex, NULL, NULL },
    { "jobs/*/vertices/*/backpressure", ALLOW("GET, HEAD"), get_backpressure, NULL, NULL },
    { "jobs/*/vertices/*/watermarks",   ALLOW("GET, HEAD"), get_watermarks, NULL, NULL },
};

/* Does the segment list match pattern? Fills arg with the '*' segments. */
static bool
route_match(const char *pattern, char *const *seg, int nseg, const char **arg)
{
    const char *p = pattern;
    int i = 0, nargs = 0;

    for (;;) {
        size_t n = strcspn(p, "/");
        if (i == nseg)
            return false;
        if (n == 1 && p[0] == '*') {
            if (seg[i][0] == '\0' || nargs == 2)
                return false;
            arg[nargs++] = seg[i];
        } else if (strlen(seg[i]) != n || memcmp(seg[i], p, n) != 0) {
            return false;
        }
        i++;
        if (p[n] == '\0')
            return i == nseg;
        p += n + 1;
    }
}

/* The request carries the cluster secret as a bearer token; compared in
 * constant time. */
static bool
authorized(const jm_t *jm, const weir_http_request_t *req)
{
    const char *h = weir_http_header(req, "authorization");
    size_t n = strlen(jm->secret), m;
    unsigned char diff = 0;

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    m = strlen(h);
    while (m > 0 && (h[m - 1] == ' ' || h[m - 1] == '\r'))
        m--;
    if (m != n)
        return false;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned char)(h[i] ^ jm->secret[i]);
    return diff == 0;
}

void
jm_rest_handle(void *arg, const weir_http_request_t *req, weir_http_response_t *resp)
{
    rest_req_t x = { .jm = arg, .req = req, .resp = resp };
    bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    char buf[MAX_PATH], q[300], qp[300], *seg[MAX_SEGMENTS];
    int nseg = 0;

    /* the dashboard: embedded files only, looked up by exact name */
    if (get && strrchr(req->path, '/') == req->path) {
        const char *want = strcmp(req->path, "/") == 0 ? "/index.html" : req->path;
        for (const weir_web_asset_t *a = weir_web_assets; a->path != NULL; a++) {
            if (strcmp(a->path, want) == 0) {
                resp->content_type = a->content_type;
                weir_buf_append(&resp->body, a->data, a->len);
                return;
            }
        }
    }
    /* with a cluster secret, the API wants it: Authorization: Bearer <secret>
     * (jobctl sends $WEIR_SECRET; the dashboard asks once and keeps it) */
    if (x.jm->secret[0] != '\0' && !authorized(x.jm, req)) {
        resp->extra_headers = "WWW-Authenticate: Bearer realm=\"weir\"\r\n";
        weir_http_error(resp, 401, "this cluster needs its secret: send 'Authorization: Bearer "
                        "<secret>' (jobctl: set WEIR_SECRET)");
        return;
    }
    /* "/jobs/abc/plan" -> "jobs", "abc", "plan" */
    if (req->path[0] == '/' && strlen(req->path) < sizeof(buf)) {
        snprintf(buf, sizeof(buf), "%s", req->path + 1);
        for (char *p = buf;; ) {
            if (nseg == MAX_SEGMENTS) {
                nseg = 0;           /* deeper than any route */
                break;
            }
            seg[nseg++] = p;
            if ((p = strchr(p, '/')) == NULL)
                break;
            *p++ = '\0';
        }
    }
    for (size_t r = 0; nseg > 0 && r < sizeof(routes) / sizeof(routes[0]); r++) {
        const route_t *rt = &routes[r];
        rest_fn fn;

        if (!route_match(rt->pattern, seg, nseg, x.arg))
            continue;
        fn = get ? rt->get
           : strcmp(req->method, "POST") == 0 ? rt->post
           : strcmp(req->method, "PATCH") == 0 ? rt->patch : NULL;
        if (fn == NULL) {
            weir_http_error(resp, 405, "method %s not allowed on %s (allowed: %.*s)",
                            quote(req->method, q, sizeof(q)), quote(req->path, qp, sizeof(qp)),
                            (int)(strlen(rt->allow) - 9), rt->allow + 7);
            resp->extra_headers = rt->allow;
            return;
        }
        fn(&x);
        return;
    }
    weir_http_error(resp, 404, "not found: %s", quote(req->path, q, sizeof(q)));
}
