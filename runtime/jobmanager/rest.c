/* runtime/jobmanager/rest.c -- the REST API, shaped like Flink's.
 *
 * Documents are built with jansson (REST bodies are small and rare; the
 * record path never sees JSON DOMs). Every error is {"errors": ["..."]}
 * with a 4xx status; no path component ever reaches the filesystem.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/log.h"
#include "../web/assets.h"
#include "jm.h"

static void
send_json(weir_http_response_t *resp, int status, json_t *doc)
{
    char *s = json_dumps(doc, JSON_COMPACT);

    resp->status = status;
    if (s != NULL) {
        weir_buf_append(&resp->body, s, strlen(s));
        free(s);
    }
    json_decref(doc);
}

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
            counts[j->subtasks[v][s].state]++;
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

    return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:i, s:o}",
                     "jid", j->id, "name", j->name, "state", jm_job_state_name(j->state),
                     "start-time", (json_int_t)start,
                     "end-time", jm_job_terminal(j) ? (json_int_t)j->end_ms : (json_int_t)-1,
                     "duration", (json_int_t)(end - start), "parallelism", j->plan->parallelism,
                     "tasks", tasks_counts(j));
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
    return o;
}

/* Flink's backpressure levels from the backpressured time ratio. */
static const char *
bp_level(double ratio)
{
    return ratio <= 0.10 ? "ok" : ratio <= 0.5 ? "low" : "high";
}

/* Checkpoint counts and the latest one, like Flink's /jobs/{id}/checkpoints. */
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
        ? json_pack("{s:I, s:I, s:I, s:I, s:I, s:s}", "id", (json_int_t)j->ckpt_latest,
                    "completed_ms", (json_int_t)j->ckpt_latest_wall,
                    "duration_ms", (json_int_t)j->ckpt_latest_ms,
                    "sync_ms", (json_int_t)(j->ckpt_latest_sync_us / 1000),
                    "bytes", (json_int_t)j->ckpt_latest_bytes,
                    "path", j->ckpt_latest_dir ? j->ckpt_latest_dir : "")
        : json_null());
    json_object_set_new(o, "restored_from", j->restored_from
        ? json_integer(j->restored_from) : json_null());
    json_object_set_new(o, "last_failure", j->ckpt_last_failure
        ? json_string(j->ckpt_last_failure) : json_null());
    return o;
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
        ? json_pack("{s:s, s:I}", "message", j->failure, "timestamp", (json_int_t)j->failure_ms)
        : json_null());
    json_object_set_new(o, "attempt", json_integer(j->attempt));
    json_object_set_new(o, "restarts", json_integer(j->restarts));
    json_object_set_new(o, "checkpoints", job_checkpoints(j));
    for (int v = 0; v < p->nvertices; v++) {
        json_t *ops = json_array(), *subs = json_array();
        for (int k = 0; k < p->vertices[v].nops; k++)
            json_array_append_new(ops, json_string(p->vertices[v].ops[k]->name));
        for (int s = 0; s < p->vertices[v].parallelism; s++) {
            const jm_subtask_t *st = &j->subtasks[v][s];
            json_array_append_new(subs, json_pack("{s:i, s:s, s:o, s:o, s:o}",
                "subtask", s, "status", weir_task_state_name(st->state),
                "taskmanager-id", st->tm ? json_string(st->tm->id) : json_null(),
                "failure", st->failure ? json_string(st->failure) : json_null(),
                "metrics", metrics_json(&st->m, true)));
        }
        jm_metrics_t vm;
        jm_vertex_metrics(j, v, &vm);
        json_t *opm = json_array();
        for (int k = 0; k < p->vertices[v].nops; k++)
            json_array_append_new(opm, json_pack("{s:s, s:I, s:I}",
                "name", p->vertices[v].ops[k]->name,
                "records-in", (json_int_t)(k < 16 ? vm.op_in[k] : 0),
                "records-out", (json_int_t)(k < 16 ? vm.op_out[k] : 0)));
        snprintf(vid, sizeof(vid), "v%d", v);
        json_array_append_new(vs, json_pack("{s:s, s:s, s:i, s:s, s:o, s:o, s:o, s:o, s:s}",
            "id", vid, "name", p->vertices[v].name, "parallelism", p->vertices[v].parallelism,
            "status", vertex_status(j, v), "operators", ops, "subtasks", subs,
            "metrics", metrics_json(&vm, false), "operator-metrics", opm,
            "backpressure-level", bp_level(vm.bp_ms_ps / 1000.0)));
    }
    for (int e = 0; e < p->nedges; e++) {
        static const char *const ship[] = { "FORWARD", "FORWARD", "REBALANCE", "BROADCAST", "HASH" };
        snprintf(src, sizeof(src), "v%d", p->edges[e].src_vertex);
        snprintf(dst, sizeof(dst), "v%d", p->edges[e].dst_vertex);
        json_array_append_new(es, json_pack("{s:s, s:s, s:s}", "source", src, "target", dst,
                                            "ship_strategy", ship[p->edges[e].partition]));
    }
    json_object_set_new(o, "vertices", vs);
    json_object_set_new(o, "edges", es);
    return o;
}

static void
get_overview(jm_t *jm, weir_http_response_t *resp)
{
    int running = 0, finished = 0, canceled = 0, failed = 0;

    for (int i = 0; i < jm->njobs; i++) {
        switch (jm->jobs[i]->state) {
        case JOB_FINISHED: finished++; break;
        case JOB_CANCELED: canceled++; break;
        case JOB_FAILED: failed++; break;
        default: running++; break;
        }
    }
    send_json(resp, 200, json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:s}",
        "taskmanagers", jm->ntms, "slots-total", jm_total_slots(jm),
        "slots-available", jm_free_slots(jm), "jobs-running", running,
        "jobs-finished", finished, "jobs-cancelled", canceled, "jobs-failed", failed,
        "weir-version", "0.1.0"));
}

static void
get_taskmanagers(jm_t *jm, weir_http_response_t *resp)
{
    json_t *arr = json_array();
    uint64_t now = jm_mono_ms();

    for (int i = 0; i < jm->ntms; i++) {
        const jm_tm_t *tm = jm->tms[i];
        int free_slots = 0;
        for (int s = 0; s < tm->nslots; s++)
            free_slots += tm->slots[s].job == NULL;
        json_t *slots = json_array();
        for (int s = 0; s < tm->nslots; s++) {
            const jm_slot_t *sl = &tm->slots[s];
            json_t *tasks = json_array();
            if (sl->job != NULL) {
                /* slot sharing: shared slot i holds subtask i of every vertex */
                const weir_plan_t *p = sl->job->plan;
                char name[512];
                for (int v = 0; v < p->nvertices; v++)
                    if (sl->index < p->vertices[v].parallelism) {
                        snprintf(name, sizeof(name), "%s (%d/%d)", p->vertices[v].name,
                                 sl->index + 1, p->vertices[v].parallelism);
                        json_array_append_new(tasks, json_string(name));
                    }
            }
            json_array_append_new(slots, json_pack("{s:i, s:o, s:i, s:o}", "index", s,
                "job", sl->job ? json_string(sl->job->id) : json_null(),
                "subtask", sl->job ? sl->index : -1, "tasks", tasks));
        }
        json_array_append_new(arr, json_pack("{s:s, s:s, s:i, s:I, s:i, s:i, s:o, s:{s:I, s:f}}",
            "id", tm->id, "path", tm->addr, "dataPort", tm->data_port,
            "timeSinceLastHeartbeat", (json_int_t)(now - tm->last_hb_ms),
            "slotsNumber", tm->nslots, "freeSlots", free_slots, "slots", slots,
            "metrics", "rssBytes", (json_int_t)tm->rss_kb * 1024, "cpuPercent", tm->cpu_pct));
    }
    send_json(resp, 200, json_pack("{s:o}", "taskmanagers", arr));
}

static void
post_job(jm_t *jm, const weir_http_request_t *req, weir_http_response_t *resp)
{
    const char *ctype = weir_http_header(req, "content-type");
    const char *text = req->body, *path = "<request>";
    size_t len = req->body_len;
    weir_vars_t vars = { 0 };
    json_t *doc = NULL;
    json_error_t jerr;
    weir_err_t err = { 0 };
    jm_job_t *j;
    int parallelism = 0;
    char pbuf[32];

    if (ctype != NULL && strncmp(ctype, "application/json", 16) == 0) {
        json_t *jt, *jp, *jv, *jpath;
        doc = json_loadb(req->body, req->body_len, 0, &jerr);
        if (doc == NULL || !json_is_object(doc)) {
            weir_http_error(resp, 400, "request body is not a JSON object: %s",
                            doc ? "expected an object" : jerr.text);
            json_decref(doc);
            return;
        }
        jt = json_object_get(doc, "job");
        jp = json_object_get(doc, "parallelism");
        jv = json_object_get(doc, "vars");
        jpath = json_object_get(doc, "path");
        if (!json_is_string(jt)) {
            weir_http_error(resp, 400, "field 'job' (the job file text) is required and must be a string");
            json_decref(doc);
            return;
        }
        text = json_string_value(jt);
        len = json_string_length(jt);
        if (json_is_string(jpath))
            path = json_string_value(jpath);
        if (jp != NULL && !json_is_null(jp)) {
            if (!json_is_integer(jp) || json_integer_value(jp) < 1 || json_integer_value(jp) > 32768) {
                weir_http_error(resp, 400, "field 'parallelism' must be an integer from 1 to 32768");
                json_decref(doc);
                return;
            }
            parallelism = (int)json_integer_value(jp);
        }
        if (jv != NULL && !json_is_null(jv)) {
            const char *k;
            json_t *val;
            if (!json_is_object(jv)) {
                weir_http_error(resp, 400, "field 'vars' must be an object of strings");
                json_decref(doc);
                return;
            }
            json_object_foreach(jv, k, val) {
                if (!json_is_string(val)) {
                    weir_http_error(resp, 400, "vars.%s must be a string", k);
                    weir_vars_free(&vars);
                    json_decref(doc);
                    return;
                }
                weir_vars_set(&vars, k, json_string_value(val));
            }
        }
    } else if (weir_http_query_get(req->query, "parallelism", pbuf, sizeof(pbuf)) > 0) {
        parallelism = atoi(pbuf);
        if (parallelism < 1) {
            weir_http_error(resp, 400, "query parameter 'parallelism' must be a positive integer");
            return;
        }
    }
    if (len == 0) {
        weir_http_error(resp, 400, "empty job file");
    } else if (jm_submit_from(jm, path, text, len, &vars, parallelism,
                              json_string_value(json_object_get(doc, "savepoint")),
                              json_is_true(json_object_get(doc, "allow_non_restored_state")),
                              &j, &err) != 0) {
        weir_log_info("rejected job from %s: %s", path, err.msg);
        weir_http_error(resp, 400, "%s", err.msg);
    } else {
        send_json(resp, 202, json_pack("{s:s}", "jobid", j->id));
    }
    weir_vars_free(&vars);
    json_decref(doc);
}

/* POST /jobs/{id}/savepoints {"target-directory": DIR, "cancel-job": bool}
 *   -> 202 {"request-id": "N"}                      (Flink's shape)
 * POST /jobs/{id}/stop {"targetDirectory": DIR}     is the same with cancel
 * GET  /jobs/{id}/savepoints/{N}
 *   -> {"status": {"id": "IN_PROGRESS"|"COMPLETED"},
 *       "operation": {"location": DIR} | {"failure-cause": {"class", "stack-trace"}}} */
static void
savepoints(jm_t *jm, const weir_http_request_t *req, weir_http_response_t *resp)
{
    char id[64], rest[64] = "";
    const char *p = req->path + 6, *slash = strchr(p, '/');
    jm_job_t *j;

    snprintf(id, sizeof(id), "%.*s", (int)(slash - p), p);
    j = jm_job_find(jm, id);
    if (j == NULL) {
        weir_http_error(resp, 404, "no job with id '%s'", id);
        return;
    }
    if (strncmp(slash, "/savepoints/", 12) == 0)
        snprintf(rest, sizeof(rest), "%s", slash + 12);
    else if (strcmp(slash, "/savepoints") != 0) {
        weir_http_error(resp, 404, "not found: %s", req->path);
        return;
    }
    if (strcmp(req->method, "POST") == 0 && rest[0] == '\0') {
        json_error_t je;
        json_t *doc = req->body_len > 0 ? json_loadb(req->body, req->body_len, 0, &je)
                                        : json_object();
        weir_err_t err = { 0 };
        const char *dir;
        int rc;

        if (!json_is_object(doc)) {
            weir_http_error(resp, 400, "request body is not a JSON object");
            json_decref(doc);
            return;
        }
        dir = json_string_value(json_object_get(doc, "target-directory"));
        rc = jm_savepoint_request(jm, j, dir, json_is_true(json_object_get(doc, "cancel-job")),
                                  &err);
        if (rc < 0)
            weir_http_error(resp, rc == WEIR_ESTATE ? 409 : 400, "%s", err.msg);
        else {
            char rid[16];
            snprintf(rid, sizeof(rid), "%d", rc);
            send_json(resp, 202, json_pack("{s:s}", "request-id", rid));
        }
        json_decref(doc);
        return;
    }
    if (strcmp(req->method, "GET") == 0 && rest[0] != '\0') {
        int want = atoi(rest);
        for (int i = 0; i < j->nsps; i++) {
            const jm_savepoint_t *sp = &j->sps[i];
            if (sp->request != want)
                continue;
            json_t *op = sp->status == 1 ? json_pack("{s:s}", "location", sp->location)
                       : sp->status == 2 ? json_pack("{s:{s:s, s:s}}", "failure-cause",
                                                     "class", "weir.SavepointFailed",
                                                     "stack-trace", sp->failure ? sp->failure
                                                                                : "failed")
                       : json_null();
            send_json(resp, 200, json_pack("{s:{s:s}, s:o}", "status", "id",
                                           sp->status == 0 ? "IN_PROGRESS" : "COMPLETED",
                                           "operation", op));
            return;
        }
        weir_http_error(resp, 404, "job %s has no savepoint request '%s'", j->id, rest);
        return;
    }
    weir_http_error(resp, 405, "method %s not allowed on %s", req->method, req->path);
}

/* GET /jobs/{id}/checkpoints: counts, latest, history (newest first) and a
 * min/avg/max summary of the completed ones in the history. */
static json_t *
checkpoints_detail(jm_job_t *j)
{
    json_t *o = job_checkpoints(j), *hist = json_array();
    uint64_t dmin = UINT64_MAX, dmax = 0, dsum = 0, bmin = UINT64_MAX, bmax = 0, bsum = 0;
    int n = 0;

    for (int k = 0; k < JM_CKPT_HISTORY && k < j->hist_n; k++) {
        const jm_ckpt_hist_t *h = &j->hist[(j->hist_n - 1 - k) % JM_CKPT_HISTORY];
        static const char *const st[] = { "IN_PROGRESS", "COMPLETED", "FAILED" };
        json_array_append_new(hist, json_pack("{s:I, s:s, s:b, s:I, s:I, s:I, s:I, s:i, s:i, s:o}",
            "id", (json_int_t)h->id, "status", st[h->status], "is_savepoint", h->savepoint,
            "trigger_timestamp", (json_int_t)h->trigger_ms,
            "end_to_end_duration", (json_int_t)h->duration_ms,
            "state_size", (json_int_t)h->bytes, "sync_duration", (json_int_t)(h->sync_us / 1000),
            "num_acknowledged_subtasks", h->acks, "num_subtasks", h->subtasks,
            "failure_message", h->failure ? json_string(h->failure) : json_null()));
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
    json_object_set_new(o, "counts", json_pack("{s:i, s:i, s:i, s:i}",
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
        json_array_append_new(hist, json_pack("{s:s, s:I, s:i}", "exceptionName",
            e->message ? e->message : "", "timestamp", (json_int_t)e->ts_ms,
            "attempt", e->attempt));
    }
    return json_pack("{s:o, s:o}", "rootException",
                     j->failure ? json_string(j->failure) : json_null(),
                     "exceptionHistory", json_pack("{s:o, s:b}", "entries", hist,
                                                   "truncated", j->exc_n > JM_EXCEPTIONS));
}

/* /jobs/{id}/... sub-resources other than savepoints. */
static void
job_subresource(jm_t *jm, const weir_http_request_t *req, weir_http_response_t *resp)
{
    char id[64], rest[128];
    const char *p = req->path + 6, *slash = strchr(p, '/');
    jm_job_t *j;

    if (slash == NULL || slash - p >= (long)sizeof(id) || strlen(slash) >= sizeof(rest)) {
        weir_http_error(resp, 404, "not found: %s", req->path);
        return;
    }
    snprintf(id, sizeof(id), "%.*s", (int)(slash - p), p);
    snprintf(rest, sizeof(rest), "%s", slash + 1);
    j = jm_job_find(jm, id);
    if (j == NULL) {
        weir_http_error(resp, 404, "no job with id '%s'", id);
        return;
    }
    if (strcmp(req->method, "GET") != 0) {
        weir_http_error(resp, 405, "method %s not allowed on %s", req->method, req->path);
        return;
    }
    if (strcmp(rest, "checkpoints") == 0) {
        send_json(resp, 200, checkpoints_detail(j));
    } else if (strcmp(rest, "exceptions") == 0) {
        send_json(resp, 200, exceptions_detail(j));
    } else if (strncmp(rest, "vertices/v", 10) == 0) {
        char *end;
        long v = strtol(rest + 10, &end, 10);
        if (end == rest + 10 || v < 0 || v >= j->plan->nvertices ||
            (*end != '\0' && strcmp(end, "/backpressure") != 0)) {
            weir_http_error(resp, 404, "job %s has no %s", j->id, rest);
            return;
        }
        const weir_plan_vertex_t *pv = &j->plan->vertices[v];
        json_t *subs = json_array();
        double worst = 0;
        for (int s2 = 0; s2 < pv->parallelism; s2++) {
            const jm_subtask_t *st = &j->subtasks[v][s2];
            double ratio = st->m.bp_ms_ps / 1000.0;
            if (ratio > worst)
                worst = ratio;
            if (*end == '\0')
                json_array_append_new(subs, json_pack("{s:i, s:s, s:o, s:o}",
                    "subtask", s2, "status", weir_task_state_name(st->state),
                    "taskmanager-id", st->tm ? json_string(st->tm->id) : json_null(),
                    "metrics", metrics_json(&st->m, true)));
            else
                json_array_append_new(subs, json_pack("{s:i, s:s, s:f, s:f, s:f}",
                    "subtask", s2, "backpressure-level", bp_level(ratio), "ratio", ratio,
                    "busyRatio", st->m.busy_ms_ps / 1000.0, "idleRatio", st->m.idle_ms_ps / 1000.0));
        }
        if (*end == '\0') {
            jm_metrics_t vm;
            jm_vertex_metrics(j, (int)v, &vm);
            send_json(resp, 200, json_pack("{s:s, s:s, s:i, s:I, s:o, s:o}", "id", rest + 9,
                "name", pv->name, "parallelism", pv->parallelism,
                "now", (json_int_t)jm_now_ms(), "subtasks", subs,
                "metrics", metrics_json(&vm, false)));
        } else {
            send_json(resp, 200, json_pack("{s:s, s:s, s:I, s:o}", "status", "ok",
                "backpressure-level", bp_level(worst), "end-timestamp", (json_int_t)jm_now_ms(),
                "subtasks", subs));
        }
    } else {
        weir_http_error(resp, 404, "job %s has no resource '%s'", j->id, rest);
    }
}

void
jm_rest_handle(void *arg, const weir_http_request_t *req, weir_http_response_t *resp)
{
    jm_t *jm = arg;
    const char *path = req->path;
    char id[64];

    if (strcmp(req->method, "GET") == 0 && strrchr(path, '/') == path) {   /* top-level files only */
        const char *want = strcmp(path, "/") == 0 ? "/index.html" : path;
        for (const weir_web_asset_t *a = weir_web_assets; a->path != NULL; a++) {
            if (strcmp(a->path, want) == 0) {
                resp->content_type = a->content_type;
                weir_buf_append(&resp->body, a->data, a->len);
                return;
            }
        }
    }
    if (strcmp(path, "/overview") == 0 && strcmp(req->method, "GET") == 0) {
        get_overview(jm, resp);
    } else if (strcmp(path, "/taskmanagers") == 0 && strcmp(req->method, "GET") == 0) {
        get_taskmanagers(jm, resp);
    } else if (strcmp(path, "/jobs/overview") == 0 && strcmp(req->method, "GET") == 0) {
        json_t *arr = json_array();
        for (int i = 0; i < jm->njobs; i++)
            json_array_append_new(arr, job_summary(jm->jobs[i]));
        send_json(resp, 200, json_pack("{s:o}", "jobs", arr));
    } else if (strcmp(path, "/jobs") == 0 && strcmp(req->method, "GET") == 0) {
        json_t *arr = json_array();
        for (int i = 0; i < jm->njobs; i++)
            json_array_append_new(arr, json_pack("{s:s, s:s}", "id", jm->jobs[i]->id,
                                                 "status", jm_job_state_name(jm->jobs[i]->state)));
        send_json(resp, 200, json_pack("{s:o}", "jobs", arr));
    } else if (strcmp(path, "/jobs") == 0 && strcmp(req->method, "POST") == 0) {
        post_job(jm, req, resp);
    } else if (strcmp(path, "/metrics") == 0 && strcmp(req->method, "GET") == 0) {
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        jm_metrics_prometheus(jm, &resp->body);
    } else if (strncmp(path, "/jobs/", 6) == 0 && strstr(path + 6, "/savepoints") != NULL) {
        savepoints(jm, req, resp);
    } else if (strncmp(path, "/jobs/", 6) == 0 && strchr(path + 6, '/') != NULL) {
        job_subresource(jm, req, resp);
    } else if (strncmp(path, "/jobs/", 6) == 0 && strchr(path + 6, '/') == NULL &&
               strlen(path + 6) < sizeof(id)) {
        jm_job_t *j;
        snprintf(id, sizeof(id), "%s", path + 6);
        j = jm_job_find(jm, id);
        if (j == NULL) {
            weir_http_error(resp, 404, "no job with id '%s'", id);
        } else if (strcmp(req->method, "GET") == 0) {
            send_json(resp, 200, job_detail(j));
        } else if (strcmp(req->method, "PATCH") == 0) {
            char mode[32] = "cancel";
            if (weir_http_query_get(req->query, "mode", mode, sizeof(mode)) >= 0 &&
                strcmp(mode, "cancel") != 0) {
                weir_http_error(resp, 400, "unsupported mode '%s' (supported: cancel)", mode);
            } else if (jm_cancel(jm, j) != 0) {
                weir_http_error(resp, 409, "job %s is already %s", j->id, jm_job_state_name(j->state));
            } else {
                send_json(resp, 202, json_object());
            }
        } else {
            weir_http_error(resp, 405, "method %s not allowed on %s", req->method, path);
        }
    } else {
        weir_http_error(resp, 404, "not found: %s %s", req->method, path);
    }
}
