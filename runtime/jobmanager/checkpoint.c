/* runtime/jobmanager/checkpoint.c -- the checkpoint coordinator.
 *
 * For a RUNNING job with `checkpoint: {interval: ...}`, every tick asks:
 * is every subtask RUNNING or FINISHED, a source subtask still running, no
 * checkpoint in flight, the interval since the last trigger and min_pause
 * since the last completion passed? Then checkpoint n = last + 1 is
 * triggered: "trigger" goes to the task managers running source subtasks,
 * which record their positions and emit barrier n.
 *
 * Subtasks that finished (a bounded source and what only it fed) take no
 * part, as with Flink's checkpoints after tasks finished (FLIP-147): their
 * output is all in the state downstream (their end of stream came before
 * the barrier on that channel), the metadata lists them, and a restore
 * from this checkpoint does not run them again. A subtask that finishes
 * while a checkpoint waits for it abandons that checkpoint (not counted as
 * a failure); the next one goes without it.
 * Barriers flow with the records; each subtask snapshots when it has them
 * on all inputs (aligned in exactly_once mode) into
 *
 *   <checkpoint-dir>/<job id>/chk-<n>/v<V>-s<S>/ops     operator state
 *                                             /keyed    keyed state snapshot
 *
 * and acknowledges with its size. With every acknowledgement in, the
 * coordinator writes chk-<n>/_metadata atomically (temporary file, fsync,
 * rename, directory fsync): a checkpoint exists exactly when its metadata
 * does, so a crash mid-write leaves the previous one usable. Then every task
 * manager of the job gets "complete" (sinks commit, sources commit offsets)
 * and checkpoints beyond `retained` are deleted, oldest first.
 *
 * A checkpoint that a subtask declines, or that is not complete within
 * `timeout`, fails: its directory is deleted and it is counted; more than
 * `tolerable_failures` failures in a row fail the job (which may restart).
 */
#include <dirent.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../state/keyed_state.h"
#include "../core/fsutil.h"
#include "../core/log.h"
#include "jm.h"

void
jm_ckpt_job_dir(const jm_t *jm, const jm_job_t *j, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", jm->ckpt_base, j->id);
}

static void
chk_dir(const jm_t *jm, const jm_job_t *j, int64_t id, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s/chk-%" PRId64, jm->ckpt_base, j->id, id);
}

jm_ckpt_hist_t *
jm_ckpt_hist_find(jm_job_t *j, int64_t id)
{
    for (int k = 0; k < JM_CKPT_HISTORY && k < j->hist_n; k++) {
        jm_ckpt_hist_t *h = &j->hist[(j->hist_n - 1 - k) % JM_CKPT_HISTORY];
        if (h->id == id)
            return h;
    }
    return NULL;
}

static int
total_subtasks(const jm_job_t *j)
{
    int n = 0;

    for (int v = 0; v < j->plan->nvertices; v++)
        n += j->plan->vertices[v].parallelism;
    return n;
}

void
jm_ckpt_free(jm_job_t *j)
{
    for (int i = 0; i < JM_CKPT_HISTORY; i++)
        free(j->hist[i].failure);
    for (int i = 0; i < j->nsps; i++) {
        free(j->sps[i].location);
        free(j->sps[i].failure);
    }
    free(j->sps);
    free(j->sp_target);
    j->sps = NULL;
    j->sp_target = NULL;
    free(j->ckpt_acked);
    free(j->ckpt_finished);
    j->ckpt_finished = NULL;
    free(j->ckpt_ended);
    j->ckpt_ended = NULL;
    free(j->ckpt_latest_dir);
    free(j->ckpt_last_failure);
    free(j->ckpt_kept);
    j->ckpt_acked = NULL;
    j->ckpt_latest_dir = NULL;
    j->ckpt_last_failure = NULL;
    j->ckpt_kept = NULL;
}

static void
discard(jm_t *jm, jm_job_t *j, int64_t id)
{
    char dir[PATH_MAX];
    weir_err_t err = { 0 };

    chk_dir(jm, j, id, dir, sizeof(dir));
    if (weir_rm_rf(dir, &err) != 0)
        weir_log_warn("[job:%.8s] %s", j->id, err.msg);
}

static jm_savepoint_t *
sp_current(jm_job_t *j)
{
    return j->nsps > 0 && j->sps[j->nsps - 1].status == 0 ? &j->sps[j->nsps - 1] : NULL;
}

static void
sp_fail(jm_job_t *j, const char *why)
{
    jm_savepoint_t *sp = sp_current(j);

    if (sp != NULL) {
        sp->status = 2;
        sp->failure = strdup(why);
        weir_log_warn("[job:%.8s] savepoint %d failed: %s", j->id, sp->request, why);
    }
    free(j->sp_target);
    j->sp_target = NULL;
    j->sp_ckpt = 0;
    j->sp_stop = false;
    j->sp_drain = false;
}

void
jm_ckpt_abort_pending(jm_t *jm, jm_job_t *j, const char *why)
{
    if (j->sp_target != NULL && (j->sp_ckpt == j->ckpt_pending || j->sp_ckpt == 0) &&
        !j->stopping)
        sp_fail(j, why);
    if (j->ckpt_pending == 0)
        return;
    weir_log_info("[job:%.8s] checkpoint %" PRId64 " abandoned: %s", j->id, j->ckpt_pending, why);
    {
        jm_ckpt_hist_t *h = jm_ckpt_hist_find(j, j->ckpt_pending);
        if (h != NULL && h->status == 0) {
            h->status = 2;
            h->failure = strdup(why);
        }
    }
    discard(jm, j, j->ckpt_pending);
    j->ckpt_pending = 0;
    j->ckpt_last_end_mono = jm_mono_ms();
}

static void
ckpt_failed(jm_t *jm, jm_job_t *j, const char *why)
{
    int64_t id = j->ckpt_pending;
    char msg[1200];

    j->ckpt_failed++;
    j->ckpt_consecutive_failed++;
    free(j->ckpt_last_failure);
    snprintf(msg, sizeof(msg), "checkpoint %" PRId64 ": %s", id, why);
    j->ckpt_last_failure = strdup(msg);
    weir_log_warn("[job:%.8s] %s (%d failed in a row, %d tolerated)", j->id, msg,
                  j->ckpt_consecutive_failed, j->plan->ckpt.tolerable_failures);
    discard(jm, j, id);
    {
        jm_ckpt_hist_t *h = jm_ckpt_hist_find(j, id);
        if (h != NULL) {
            h->status = 2;
            h->failure = strdup(why);
            h->duration_ms = jm_mono_ms() - j->ckpt_pending_mono;
            h->acks = j->ckpt_acks;
        }
    }
    j->ckpt_pending = 0;
    j->ckpt_last_end_mono = jm_mono_ms();
    if (j->sp_ckpt == id)
        sp_fail(j, msg);
    if (j->ckpt_consecutive_failed > j->plan->ckpt.tolerable_failures) {
        snprintf(msg, sizeof(msg), "exceeded the checkpoint tolerable failure threshold "
                 "(%d): last: checkpoint %" PRId64 ": %s", j->plan->ckpt.tolerable_failures, id,
                 why);
        jm_job_fail(jm, j, msg);
    }
}

static void
trigger(jm_t *jm, jm_job_t *j, uint64_t now)
{
    const weir_plan_t *p = j->plan;
    int n = total_subtasks(j), k = 0, finished = 0;

    free(j->ckpt_acked);
    free(j->ckpt_finished);
    free(j->ckpt_ended);
    j->ckpt_acked = calloc((size_t)n, sizeof(bool));
    j->ckpt_finished = calloc((size_t)n, sizeof(bool));
    j->ckpt_ended = calloc((size_t)n, sizeof(bool));
    if (j->ckpt_acked == NULL || j->ckpt_finished == NULL || j->ckpt_ended == NULL)
        return;
    j->ckpt_asap = false;
    /* finished subtasks count as acknowledged, with nothing to save */
    for (int v = 0; v < p->nvertices; v++)
        for (int s = 0; s < p->vertices[v].parallelism; s++, k++)
            if (j->subtasks[v][s].state == WEIR_TASK_FINISHED) {
                j->ckpt_acked[k] = j->ckpt_finished[k] = true;
                finished++;
            }
    j->ckpt_pending = ++j->ckpt_next;
    j->ckpt_pending_mono = now;
    j->ckpt_pending_wall = jm_now_ms();
    j->ckpt_last_trigger_mono = now;
    j->ckpt_acks = finished;
    j->ckpt_needed = n;
    j->ckpt_pending_bytes = 0;
    j->ckpt_pending_sync_us = 0;
    j->ckpt_pending_align_us = 0;
    if (j->sp_target != NULL && j->sp_ckpt == 0)
        j->sp_ckpt = j->ckpt_pending;
    {
        jm_ckpt_hist_t *h = &j->hist[j->hist_n % JM_CKPT_HISTORY];
        free(h->failure);
        memset(h, 0, sizeof(*h));
        h->id = j->ckpt_pending;
        h->savepoint = j->sp_ckpt == j->ckpt_pending;
        h->trigger_ms = j->ckpt_pending_wall;
        h->subtasks = n;
        j->hist_n++;
    }
    weir_log_debug("[job:%.8s] triggering checkpoint %" PRId64, j->id, j->ckpt_pending);
    for (int i = 0; i < jm->ntms; i++) {
        bool has_source = false;
        for (int v = 0; v < p->nvertices && !has_source; v++) {
            if (p->vertices[v].nin != 0)
                continue;
            for (int s = 0; s < p->vertices[v].parallelism && !has_source; s++)
                has_source = j->subtasks[v][s].tm == jm->tms[i];
        }
        if (has_source)
            jm_send_job_msg(jm->tms[i], "trigger", j, j->ckpt_pending);
    }
}

void
jm_ckpt_tick(jm_t *jm, jm_job_t *j, uint64_t now)
{
    const weir_ckpt_conf_t *c = &j->plan->ckpt;

    if ((c->interval_us == 0 && j->sp_target == NULL) || j->state != JOB_RUNNING)
        return;
    if (j->ckpt_pending != 0) {
        if (now - j->ckpt_pending_mono > (uint64_t)(c->timeout_us / 1000)) {
            char why[128];
            snprintf(why, sizeof(why), "expired after %.1f s (%d of %d subtasks acknowledged)",
                     (double)(now - j->ckpt_pending_mono) / 1000.0, j->ckpt_acks,
                     j->ckpt_needed);
            ckpt_failed(jm, j, why);
        }
        return;
    }
    bool source_running = false;
    int sources = 0;
    for (int v = 0; v < j->plan->nvertices; v++)
        if (j->plan->vertices[v].nin == 0)
            sources += j->plan->vertices[v].parallelism;
    /* a drain's savepoint waits until every source ended its input */
    if (j->sp_target != NULL && j->sp_drain && j->sp_ckpt == 0 && j->sources_ended < sources)
        return;
    for (int v = 0; v < j->plan->nvertices; v++)
        for (int s = 0; s < j->plan->vertices[v].parallelism; s++) {
            weir_task_state_t st = j->subtasks[v][s].state;
            if (st == WEIR_TASK_FINISHED && j->sp_target != NULL) {
                sp_fail(j, "part of the job already finished; no savepoint can be taken");
                return;
            }
            if (st != WEIR_TASK_RUNNING && st != WEIR_TASK_FINISHED)
                return;              /* deploying, or ending */
            source_running |= j->plan->vertices[v].nin == 0 && st == WEIR_TASK_RUNNING;
        }
    if (!source_running)
        return;                      /* no barrier could start: the job is draining */
    /* a savepoint asked for goes at once, and so does the final checkpoint
     * a source that ended waits for */
    if (j->sp_target == NULL && !j->ckpt_asap &&
        (now - j->ckpt_last_trigger_mono < (uint64_t)(c->interval_us / 1000) ||
         now - j->ckpt_last_end_mono < (uint64_t)(c->min_pause_us / 1000)))
        return;
    trigger(jm, j, now);
}

/* Test hook: WEIR_TEST_CRASH_IN_METADATA=N kills the job manager in the
 * middle of writing checkpoint N's metadata (half of it in the temporary
 * file, nothing renamed), as a power cut would. */
static void
crash_hook(const char *path, const char *text, int64_t id)
{
    const char *n = getenv("WEIR_TEST_CRASH_IN_METADATA");
    char tmp[PATH_MAX + 32];
    FILE *f;

    if (n == NULL || atoll(n) != id)
        return;
    snprintf(tmp, sizeof(tmp), "%s.tmp-%d", path, (int)getpid());
    f = fopen(tmp, "w");
    if (f != NULL) {
        fwrite(text, 1, strlen(text) / 2, f);
        fclose(f);
    }
    weir_log_warn("WEIR_TEST_CRASH_IN_METADATA: dying while writing %s", path);
    raise(SIGKILL);
}

/* The checkpoint's metadata: what a restore needs to find every file. */
static int
write_metadata(jm_t *jm, jm_job_t *j, weir_err_t *err)
{
    const weir_plan_t *p = j->plan;
    json_t *root = json_object(), *vertices = json_array();
    char dir[PATH_MAX], path[PATH_MAX + 16];
    char *text;
    int rc;

    json_object_set_new(root, "format", json_integer(1));
    json_object_set_new(root, "job", json_string(j->id));
    json_object_set_new(root, "name", json_string(j->name));
    json_object_set_new(root, "checkpoint", json_integer(j->ckpt_pending));
    json_object_set_new(root, "attempt", json_integer(j->attempt));
    json_object_set_new(root, "timestamp_ms", json_integer((json_int_t)j->ckpt_pending_wall));
    json_object_set_new(root, "max_parallelism", json_integer(p->max_parallelism));
    json_object_set_new(root, "bytes", json_integer((json_int_t)j->ckpt_pending_bytes));
    for (int v = 0; v < p->nvertices; v++) {
        const weir_plan_vertex_t *pv = &p->vertices[v];
        json_t *jv = json_object(), *ops = json_array();
        for (int o = 0; o < pv->nops; o++)
            json_array_append_new(ops, json_string(pv->ops[o]->name));
        json_object_set_new(jv, "id", json_integer(v));
        json_object_set_new(jv, "name", json_string(pv->name));
        json_object_set_new(jv, "parallelism", json_integer(pv->parallelism));
        json_object_set_new(jv, "keyed", json_boolean(pv->keyed));
        json_object_set_new(jv, "ops", ops);
        {
            /* subtasks that had finished: a restore does not run them again */
            json_t *fin = json_array();
            int base = 0;
            for (int k = 0; k < v; k++)
                base += p->vertices[k].parallelism;
            for (int s = 0; s < pv->parallelism; s++)
                if (j->ckpt_finished != NULL && j->ckpt_finished[base + s])
                    json_array_append_new(fin, json_integer(s));
            json_object_set_new(jv, "finished", fin);
            /* subtasks that had ended their input (finish() ran) and waited
             * for this checkpoint: a restore commits, and does not run them */
            fin = json_array();
            for (int s = 0; s < pv->parallelism; s++)
                if (j->ckpt_ended != NULL && j->ckpt_ended[base + s])
                    json_array_append_new(fin, json_integer(s));
            json_object_set_new(jv, "ended", fin);
        }
        json_array_append_new(vertices, jv);
    }
    json_object_set_new(root, "vertices", vertices);
    text = json_dumps(root, JSON_INDENT(1));
    json_decref(root);
    if (text == NULL)
        return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    chk_dir(jm, j, j->ckpt_pending, dir, sizeof(dir));
    if ((rc = weir_mkdir_p(dir, err)) == 0) {
        snprintf(path, sizeof(path), "%s/_metadata", dir);
        crash_hook(path, text, j->ckpt_pending);
        rc = weir_write_file_atomic(path, text, strlen(text), err);
    }
    free(text);
    return rc;
}

/* A savepoint is a self-contained copy of a completed checkpoint: no hard
 * link into the job's checkpoint folder, so it survives the job. */
static int
copy_file(const char *from, const char *to, weir_err_t *err)
{
    weir_buf_t b = WEIR_BUF_INIT;
    int rc = weir_read_file(from, &b, err);

    if (rc == 0)
        rc = weir_write_file_atomic(to, b.data, b.len, err);
    weir_buf_free(&b);
    return rc;
}

static void
write_savepoint(jm_t *jm, jm_job_t *j, const char *chk)
{
    char dir[PATH_MAX], from[PATH_MAX + 300], to[PATH_MAX + 300];
    jm_savepoint_t *sp = sp_current(j);
    weir_err_t err = { 0 };
    struct dirent *de;
    DIR *d;
    int rc;

    (void)jm;
    snprintf(dir, sizeof(dir), "%s/savepoint-%.6s-%" PRId64, j->sp_target, j->id, j->sp_ckpt);
    if ((rc = weir_mkdir_p(dir, &err)) != 0)
        goto out;
    d = opendir(chk);
    if (d == NULL) {
        rc = weir_err_set(&err, WEIR_EIO, "cannot read %s", chk);
        goto out;
    }
    while (rc == 0 && (de = readdir(d)) != NULL) {
        struct stat st;
        if (de->d_name[0] != 'v')
            continue;
        snprintf(from, sizeof(from), "%s/%s", chk, de->d_name);
        snprintf(to, sizeof(to), "%s/%s", dir, de->d_name);
        if ((rc = weir_mkdir_p(to, &err)) != 0)
            break;
        snprintf(from, sizeof(from), "%s/%s/ops", chk, de->d_name);
        snprintf(to, sizeof(to), "%s/%s/ops", dir, de->d_name);
        if (stat(from, &st) == 0 && (rc = copy_file(from, to, &err)) != 0)
            break;
        snprintf(from, sizeof(from), "%s/%s/keyed", chk, de->d_name);
        snprintf(to, sizeof(to), "%s/%s/keyed", dir, de->d_name);
        if (stat(from, &st) == 0)
            rc = weir_state_snapshot_copy(from, to, &err);
    }
    closedir(d);
    if (rc == 0) {
        /* the metadata last: a savepoint exists exactly when it does */
        snprintf(from, sizeof(from), "%s/_metadata", chk);
        snprintf(to, sizeof(to), "%s/_metadata", dir);
        rc = copy_file(from, to, &err);
    }
out:
    if (rc != 0) {
        sp_fail(j, err.msg);
        return;
    }
    if (sp != NULL) {
        sp->status = 1;
        sp->location = strdup(dir);
    }
    weir_log_info("[job:%.8s] savepoint written to %s", j->id, dir);
    free(j->sp_target);
    j->sp_target = NULL;
    j->sp_ckpt = 0;
    if (j->sp_stop && j->sp_drain) {
        /* drained: the tasks end by themselves once they hear this
         * checkpoint completed, and the job FINISHES */
        j->sp_stop = j->sp_drain = false;
    } else if (j->sp_stop) {
        j->sp_stop = false;
        j->stopping = true;
        jm_cancel(jm, j);
    }
}

int
jm_savepoint_request(jm_t *jm, jm_job_t *j, const char *target_dir, bool stop, bool drain,
                     weir_err_t *err)
{
    jm_savepoint_t *sps;

    if (drain && j->plan->ckpt.interval_us == 0)
        return weir_err_set(err, WEIR_EINVAL, "\"drain\" needs a job that takes checkpoints "
                            "(its end is a final checkpoint; see docs/checkpoints.md)");
    if (j->state != JOB_RUNNING)
        return weir_err_set(err, WEIR_ESTATE, "job %s is %s; savepoints need a RUNNING job",
                            j->id, jm_job_state_name(j->state));
    if (j->sp_target != NULL)
        return weir_err_set(err, WEIR_ESTATE, "a savepoint of job %s is already in progress",
                            j->id);
    if (target_dir == NULL || target_dir[0] != '/')
        return weir_err_set(err, WEIR_EINVAL, "the savepoint directory must be an absolute "
                            "path (got '%s')", target_dir ? target_dir : "");
    if (drain && j->ckpt_pending != 0)
        jm_ckpt_abort_pending(jm, j, "superseded by stop --drain");
    sps = realloc(j->sps, sizeof(*sps) * (size_t)(j->nsps + 1));
    if (sps == NULL || (j->sp_target = strdup(target_dir)) == NULL)
        return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    j->sps = sps;
    memset(&j->sps[j->nsps], 0, sizeof(j->sps[0]));
    j->sps[j->nsps].request = ++j->sp_requests;
    j->nsps++;
    j->sp_stop = stop;
    j->sp_drain = drain;
    j->sp_ckpt = 0;
    weir_log_info("[job:%.8s] savepoint %d requested into %s%s", j->id, j->sp_requests,
                  target_dir, drain ? " (drain, then stop)" : stop ? " (then stop)" : "");
    if (drain) {
        /* Flink's stop --drain: the sources end their input now (the end of
         * event time, every operator's finish()), and the final checkpoint
         * they then wait for is the savepoint; the job then finishes. A
         * checkpoint in flight could become some source's final one first:
         * it gave way above. */
        for (int i = 0; i < jm->ntms; i++) {
            bool has_source = false;
            for (int v = 0; v < j->plan->nvertices && !has_source; v++) {
                if (j->plan->vertices[v].nin != 0)
                    continue;
                for (int s = 0; s < j->plan->vertices[v].parallelism && !has_source; s++)
                    has_source = j->subtasks[v][s].tm == jm->tms[i];
            }
            if (has_source)
                jm_send_job_msg(jm->tms[i], "drain", j, 0);
        }
    }
    return j->sp_requests;
}

static void
completed(jm_t *jm, jm_job_t *j)
{
    uint64_t now = jm_mono_ms();
    int64_t id = j->ckpt_pending;
    char dir[PATH_MAX];
    weir_err_t err = { 0 };
    int64_t *kept;

    if (write_metadata(jm, j, &err) != 0) {
        ckpt_failed(jm, j, err.msg);
        return;
    }
    chk_dir(jm, j, id, dir, sizeof(dir));
    free(j->ckpt_latest_dir);
    j->ckpt_latest_dir = strdup(dir);
    j->ckpt_latest = id;
    j->ckpt_latest_wall = jm_now_ms();
    j->ckpt_latest_ms = now - j->ckpt_pending_mono;
    j->ckpt_latest_bytes = j->ckpt_pending_bytes;
    j->ckpt_latest_sync_us = j->ckpt_pending_sync_us;
    j->ckpt_latest_align_us = j->ckpt_pending_align_us;
    j->ckpt_completed++;
    j->ckpt_consecutive_failed = 0;
    {
        jm_ckpt_hist_t *h = jm_ckpt_hist_find(j, id);
        if (h != NULL) {
            h->status = 1;
            h->duration_ms = j->ckpt_latest_ms;
            h->bytes = j->ckpt_latest_bytes;
            h->sync_us = j->ckpt_latest_sync_us;
            h->align_us = j->ckpt_latest_align_us;
            h->acks = j->ckpt_acks;
        }
    }
    j->ckpt_pending = 0;
    j->ckpt_last_end_mono = now;
    weir_log_info("[job:%.8s] checkpoint %" PRId64 " complete: %" PRIu64 " bytes in %" PRIu64
                  " ms", j->id, id, j->ckpt_latest_bytes, j->ckpt_latest_ms);
    for (int i = 0; i < jm->ntms; i++) {
        bool has = false;
        for (int v = 0; v < j->plan->nvertices && !has; v++)
            for (int s = 0; s < j->plan->vertices[v].parallelism && !has; s++)
                has = j->subtasks[v][s].tm == jm->tms[i];
        if (has)
            jm_send_job_msg(jm->tms[i], "complete", j, id);
    }
    if (j->sp_ckpt == id)
        write_savepoint(jm, j, dir);
    kept = realloc(j->ckpt_kept, sizeof(*kept) * (size_t)(j->ckpt_nkept + 1));
    if (kept == NULL)
        return;
    j->ckpt_kept = kept;
    j->ckpt_kept[j->ckpt_nkept++] = id;
    while (j->ckpt_nkept > j->plan->ckpt.retained) {
        discard(jm, j, j->ckpt_kept[0]);
        memmove(j->ckpt_kept, j->ckpt_kept + 1, sizeof(*kept) * (size_t)(j->ckpt_nkept - 1));
        j->ckpt_nkept--;
    }
}

void
jm_ckpt_ack(jm_t *jm, jm_tm_t *tm, const msgpack_object *msg)
{
    char id[WEIR_JOB_ID_LEN + 1], error[1024];
    jm_job_t *j = jm_job_find(jm, weir_msg_get_str(msg, "job", id, sizeof(id)));
    int v = (int)weir_msg_get_int(msg, "vertex", -1);
    int s = (int)weir_msg_get_int(msg, "subtask", -1);
    int64_t ckpt = weir_msg_get_int(msg, "checkpoint", -1);
    int base = 0;

    if (j == NULL || weir_msg_get_int(msg, "attempt", -1) != j->attempt ||
        ckpt != j->ckpt_pending || ckpt == 0 || v < 0 || v >= j->plan->nvertices || s < 0 ||
        s >= j->plan->vertices[v].parallelism || j->subtasks[v][s].tm != tm)
        return;
    weir_msg_get_str(msg, "error", error, sizeof(error));
    if (error[0] != '\0') {
        char why[1300];
        snprintf(why, sizeof(why), "declined by %s (subtask %d/%d) on %s: %s",
                 j->plan->vertices[v].name, s + 1, j->plan->vertices[v].parallelism, tm->id,
                 error);
        ckpt_failed(jm, j, why);
        return;
    }
    for (int k = 0; k < v; k++)
        base += j->plan->vertices[k].parallelism;
    if (j->ckpt_acked[base + s])
        return;
    j->ckpt_acked[base + s] = true;
    j->ckpt_acks++;
    if (weir_msg_get_int(msg, "ended", 0) != 0 && j->ckpt_ended != NULL)
        j->ckpt_ended[base + s] = true;
    {
        jm_ckpt_hist_t *h = jm_ckpt_hist_find(j, ckpt);
        if (h != NULL)
            h->acks = j->ckpt_acks;
    }
    j->ckpt_pending_bytes += (uint64_t)weir_msg_get_int(msg, "bytes", 0);
    int64_t sync = weir_msg_get_int(msg, "sync_us", 0);
    if (sync > j->ckpt_pending_sync_us)
        j->ckpt_pending_sync_us = sync;
    int64_t align = weir_msg_get_int(msg, "align_us", 0);
    if (align > j->ckpt_pending_align_us)
        j->ckpt_pending_align_us = align;
    if (j->ckpt_acks == j->ckpt_needed)
        completed(jm, j);
}

void
jm_ckpt_ended(jm_t *jm, jm_tm_t *tm, const msgpack_object *msg)
{
    char id[WEIR_JOB_ID_LEN + 1];
    jm_job_t *j = jm_job_find(jm, weir_msg_get_str(msg, "job", id, sizeof(id)));

    (void)tm;
    if (j == NULL || weir_msg_get_int(msg, "attempt", -1) != j->attempt)
        return;
    j->sources_ended++;
    j->ckpt_asap = true;
    jm_ckpt_tick(jm, j, jm_mono_ms());
}

void
jm_ckpt_subtask_finished(jm_t *jm, jm_job_t *j, int v, int s)
{
    int base = 0;
    char why[512];

    if (j->ckpt_pending == 0 || j->ckpt_acked == NULL)
        return;
    for (int k = 0; k < v; k++)
        base += j->plan->vertices[k].parallelism;
    if (j->ckpt_acked[base + s])
        return;
    snprintf(why, sizeof(why), "%s (subtask %d/%d) finished before acknowledging it",
             j->plan->vertices[v].name, s + 1, j->plan->vertices[v].parallelism);
    jm_ckpt_abort_pending(jm, j, why);
}

static int
cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

void
jm_ckpt_scan(jm_t *jm, jm_job_t *j)
{
    char dir[PATH_MAX];
    struct dirent *de;
    DIR *d;

    jm_ckpt_job_dir(jm, j, dir, sizeof(dir));
    d = opendir(dir);
    if (d == NULL)
        return;
    while ((de = readdir(d)) != NULL) {
        char meta[PATH_MAX + 300];
        struct stat st;
        int64_t id;

        if (strncmp(de->d_name, "chk-", 4) != 0 || (id = atoll(de->d_name + 4)) <= 0)
            continue;
        if (id > j->ckpt_next)
            j->ckpt_next = id;               /* never hand out an id twice */
        snprintf(meta, sizeof(meta), "%s/%s/_metadata", dir, de->d_name);
        if (stat(meta, &st) != 0) {
            discard(jm, j, id);              /* never completed */
            continue;
        }
        int64_t *kept = realloc(j->ckpt_kept, sizeof(*kept) * (size_t)(j->ckpt_nkept + 1));
        if (kept == NULL)
            break;
        j->ckpt_kept = kept;
        j->ckpt_kept[j->ckpt_nkept++] = id;
    }
    closedir(d);
    if (j->ckpt_nkept == 0)
        return;
    qsort(j->ckpt_kept, (size_t)j->ckpt_nkept, sizeof(int64_t), cmp_i64);
    j->ckpt_latest = j->ckpt_kept[j->ckpt_nkept - 1];
    chk_dir(jm, j, j->ckpt_latest, dir, sizeof(dir));
    free(j->ckpt_latest_dir);
    j->ckpt_latest_dir = strdup(dir);
    weir_log_info("[job:%.8s] found %d completed checkpoint(s) on disk, latest %" PRId64, j->id,
                  j->ckpt_nkept, j->ckpt_latest);
}
