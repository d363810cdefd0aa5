/* runtime/jobmanager/jobmanager.c -- the coordinator process.
 *
 * Task managers connect to the RPC listener and register their slots; they
 * heartbeat, and one that closes its connection or stays silent past the
 * heartbeat timeout is lost: its slots vanish and every job with a subtask
 * there fails with a reason naming it.
 *
 * A submitted job is validated by planning it (the same planner every task
 * manager runs), then waits in CREATED until enough slots are free, up to the
 * slot timeout. Scheduling takes plan->slots free slots, spread over the task
 * managers round-robin; subtask i of every vertex goes to shared slot i.
 * Each task manager gets one deploy message with the job text and the
 * placement of every subtask; once all have answered "deployed", all get
 * "start", so no data frame reaches a task manager before its tasks exist.
 *
 *   CREATED -> RUNNING -> FINISHED
 *                      -> FAILING -> FAILED        (a subtask failed, a task manager was lost)
 *                      -> CANCELLING -> CANCELED   (PATCH /jobs/{id}?mode=cancel)
 *   CREATED -> CANCELED | FAILED (slot timeout)
 *   RUNNING -> RESTARTING -> CREATED -> RUNNING ...  (a failure, when the job's
 *              restart strategy allows: every subtask is canceled, the slots
 *              are released, and after the delay the job is scheduled again
 *              as attempt + 1, restored from its latest completed checkpoint)
 *
 * Checkpoints: see checkpoint.c.
 */
#include <fcntl.h>
#include <limits.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "../core/config.h"
#include "../core/fsutil.h"
#include "../core/log.h"
#include "jm.h"

static jm_t jm_state;

static const char *const job_state_names[] = {
    "CREATED", "RUNNING", "FINISHED", "FAILING", "FAILED", "CANCELLING", "CANCELED",
    "RESTARTING",
};

const char *
jm_job_state_name(job_state_t s)
{
    return job_state_names[s];
}

bool
jm_job_terminal(const jm_job_t *j)
{
    return j->state == JOB_FINISHED || j->state == JOB_FAILED || j->state == JOB_CANCELED;
}

uint64_t
jm_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t
jm_mono_ms(void)
{
    return weir_mono_ns() / 1000000;
}

jm_job_t *
jm_job_find(jm_t *jm, const char *id)
{
    for (int i = 0; i < jm->njobs; i++)
        if (strcmp(jm->jobs[i]->id, id) == 0)
            return jm->jobs[i];
    return NULL;
}

int
jm_total_slots(const jm_t *jm)
{
    int n = 0;
    for (int i = 0; i < jm->ntms; i++)
        n += jm->tms[i]->nslots;
    return n;
}

int
jm_free_slots(const jm_t *jm)
{
    int n = 0;
    for (int i = 0; i < jm->ntms; i++)
        for (int s = 0; s < jm->tms[i]->nslots; s++)
            n += jm->tms[i]->slots[s].job == NULL;
    return n;
}

static bool
subtask_terminal(weir_task_state_t s)
{
    return s == WEIR_TASK_FINISHED || s == WEIR_TASK_CANCELED || s == WEIR_TASK_FAILED;
}

/* ---- messages to task managers ------------------------------------------ */

void
jm_send_job_msg(jm_tm_t *tm, const char *type, const jm_job_t *j, int64_t ckpt)
{
    weir_msg_t m;

    if (tm->conn == NULL)
        return;
    weir_msg_begin(&m, type, ckpt > 0 ? 4 : 3);
    weir_msg_str(&m, "job", j->id);
    weir_msg_int(&m, "attempt", j->attempt);
    if (ckpt > 0)
        weir_msg_int(&m, "checkpoint", ckpt);
    weir_msg_send(&m, tm->conn);
}

#define send_job_msg(tm, type, j) jm_send_job_msg((tm), (type), (j), 0)

static void
release_slots(jm_t *jm, jm_job_t *j)
{
    for (int i = 0; i < jm->ntms; i++)
        for (int s = 0; s < jm->tms[i]->nslots; s++)
            if (jm->tms[i]->slots[s].job == j)
                jm->tms[i]->slots[s].job = NULL;
}

static void schedule(jm_t *jm);

static void
job_set_state(jm_t *jm, jm_job_t *j, job_state_t s)
{
    if (j->state == s)
        return;
    weir_log_info("[job:%.8s] %s: %s -> %s", j->id, j->name, jm_job_state_name(j->state),
                  jm_job_state_name(s));
    j->state = s;
    jm_store_save(jm, j);
    if (s == JOB_RUNNING)
        j->running_since_mono = jm_mono_ms();
    if (jm_job_terminal(j) || s == JOB_RESTARTING || s == JOB_FAILING || s == JOB_CANCELLING)
        jm_ckpt_abort_pending(jm, j, jm_job_state_name(s));
    if (jm_job_terminal(j) || s == JOB_RESTARTING) {
        /* nothing flows any more: no stale rates */
        for (int v = 0; v < j->plan->nvertices; v++)
            for (int k = 0; k < j->plan->vertices[v].parallelism; k++) {
                jm_metrics_t *m = &j->subtasks[v][k].m;
                m->rin_ps = m->rout_ps = m->bin_ps = m->bout_ps = 0;
                m->busy_ms_ps = m->idle_ms_ps = m->bp_ms_ps = 0;
            }
    }
    if (jm_job_terminal(j)) {
        j->end_ms = jm_now_ms();
        release_slots(jm, j);
        if (s == JOB_FINISHED && j->plan->ckpt.interval_us > 0) {
            /* a finished job needs no checkpoint; failed and canceled
             * ones keep theirs to be resumed (--from-savepoint DIR) */
            char dir[PATH_MAX];
            weir_err_t err = { 0 };
            jm_ckpt_job_dir(jm, j, dir, sizeof(dir));
            weir_rm_rf(dir, &err);
        }
    }
}

/* The delay before the next attempt, or -1 when the strategy says no. */
static int64_t
restart_delay_us(jm_job_t *j)
{
    const weir_restart_conf_t *r = &j->plan->restart;

    switch (r->strategy) {
    case WEIR_RESTART_FIXED:
        if (r->attempts >= 0 && j->restarts >= r->attempts)
            return -1;
        return r->delay_us;
    case WEIR_RESTART_EXPONENTIAL:
        if (j->restart_delay_us == 0 ||
            (j->running_since_mono != 0 &&
             jm_mono_ms() - j->running_since_mono >= (uint64_t)(r->reset_us / 1000)))
            j->restart_delay_us = r->initial_us;
        else if (j->restart_delay_us < r->max_us) {
            double d = (double)j->restart_delay_us * r->multiplier;
            j->restart_delay_us = d > (double)r->max_us ? r->max_us : (int64_t)d;
        }
        return j->restart_delay_us;
    default:
        return -1;
    }
}

/* Moves a FAILING/CANCELLING/RUNNING job on once all its subtasks ended. */
static void maybe_restart(jm_t *jm, jm_job_t *j, uint64_t now);

static void
check_job_done(jm_t *jm, jm_job_t *j)
{
    const weir_plan_t *p = j->plan;
    bool all_finished = true;

    if (jm_job_terminal(j) || j->state == JOB_CREATED)
        return;
    for (int v = 0; v < p->nvertices; v++)
        for (int s = 0; s < p->vertices[v].parallelism; s++) {
            weir_task_state_t st = j->subtasks[v][s].state;
            if (!subtask_terminal(st))
                return;
            all_finished &= st == WEIR_TASK_FINISHED;
        }
    if (j->state == JOB_RESTARTING) {
        /* the failed attempt is gone: free its slots; the next attempt
         * starts now if its delay passed, else from tick_cb */
        release_slots(jm, j);
        maybe_restart(jm, j, jm_mono_ms());
        schedule(jm);
        return;
    }
    if (j->state == JOB_FAILING)
        job_set_state(jm, j, JOB_FAILED);
    else if (j->state == JOB_CANCELLING && j->stopping) {
        /* stopped with a savepoint: its subtasks ended as asked */
        for (int v = 0; v < p->nvertices; v++)
            for (int s2 = 0; s2 < p->vertices[v].parallelism; s2++)
                if (j->subtasks[v][s2].state == WEIR_TASK_CANCELED)
                    j->subtasks[v][s2].state = WEIR_TASK_FINISHED;
        job_set_state(jm, j, JOB_FINISHED);
    }
    else if (j->state == JOB_CANCELLING)
        job_set_state(jm, j, JOB_CANCELED);
    else
        job_set_state(jm, j, all_finished ? JOB_FINISHED : JOB_FAILED);
    schedule(jm);
}

/* Sends cancel to every task manager still running a subtask of j. */
static void
cancel_subtasks(jm_t *jm, jm_job_t *j)
{
    for (int i = 0; i < jm->ntms; i++) {
        jm_tm_t *tm = jm->tms[i];
        bool has = false;
        for (int v = 0; v < j->plan->nvertices && !has; v++)
            for (int s = 0; s < j->plan->vertices[v].parallelism && !has; s++)
                has = j->subtasks[v][s].tm == tm && !subtask_terminal(j->subtasks[v][s].state);
        if (has) {
            for (int v = 0; v < j->plan->nvertices; v++)
                for (int s = 0; s < j->plan->vertices[v].parallelism; s++)
                    if (j->subtasks[v][s].tm == tm && !subtask_terminal(j->subtasks[v][s].state))
                        j->subtasks[v][s].state = WEIR_TASK_CANCELING;
            send_job_msg(tm, "cancel", j);
        }
    }
}

void
jm_job_fail(jm_t *jm, jm_job_t *j, const char *msg)
{
    int64_t delay;

    if (jm_job_terminal(j) || j->state == JOB_FAILING || j->state == JOB_RESTARTING ||
        j->state == JOB_CANCELLING)
        return;
    /* the latest failure is what `jobctl status` shows; the last
     * JM_EXCEPTIONS are the job's exception history */
    free(j->failure);
    j->failure = strdup(msg);
    j->failure_ms = jm_now_ms();
    {
        jm_exception_t *e = &j->exc[j->exc_n % JM_EXCEPTIONS];
        free(e->message);
        e->message = strdup(msg);
        e->ts_ms = j->failure_ms;
        e->attempt = j->attempt;
        j->exc_n++;
    }
    weir_log_warn("[job:%.8s] failed: %s", j->id, msg);
    if (j->state == JOB_CREATED && j->restarts == 0 && j->attempt == 0) {
        job_set_state(jm, j, JOB_FAILED);       /* never ran: nothing to restart */
        return;
    }
    delay = restart_delay_us(j);
    if (delay >= 0) {
        j->restart_at_mono = jm_mono_ms() + (uint64_t)(delay / 1000);
        weir_log_info("[job:%.8s] restarting in %.1f s (restart %d%s)", j->id,
                      (double)delay / 1e6, j->restarts + 1,
                      j->ckpt_latest > 0 ? ", from the latest checkpoint" : "");
        job_set_state(jm, j, JOB_RESTARTING);
    } else {
        job_set_state(jm, j, JOB_FAILING);
    }
    cancel_subtasks(jm, j);
    check_job_done(jm, j);
}

#define job_fail jm_job_fail

/* RESTARTING -> CREATED once every subtask of the failed attempt ended and
 * the delay passed; schedule() then deploys attempt + 1. */
static void
maybe_restart(jm_t *jm, jm_job_t *j, uint64_t now)
{
    if (j->state != JOB_RESTARTING || now < j->restart_at_mono)
        return;
    for (int v = 0; v < j->plan->nvertices; v++)
        for (int s = 0; s < j->plan->vertices[v].parallelism; s++)
            if (j->subtasks[v][s].tm != NULL && !subtask_terminal(j->subtasks[v][s].state))
                return;
    release_slots(jm, j);
    j->attempt++;
    j->restarts++;
    j->sources_ended = 0;
    j->wait_since_mono = now;
    for (int v = 0; v < j->plan->nvertices; v++)
        for (int s = 0; s < j->plan->vertices[v].parallelism; s++) {
            j->subtasks[v][s].tm = NULL;
            j->subtasks[v][s].state = WEIR_TASK_CREATED;
        }
    job_set_state(jm, j, JOB_CREATED);
}

int
jm_cancel(jm_t *jm, jm_job_t *j)
{
    if (jm_job_terminal(j))
        return WEIR_ESTATE;
    if (j->state == JOB_CREATED) {
        job_set_state(jm, j, JOB_CANCELED);
        return 0;
    }
    if (j->state == JOB_CANCELLING || j->state == JOB_FAILING)
        return 0;
    job_set_state(jm, j, JOB_CANCELLING);
    cancel_subtasks(jm, j);
    check_job_done(jm, j);
    return 0;
}

/* ---- scheduling ------------------------------------------------------------ */

static void
deploy(jm_t *jm, jm_job_t *j)
{
    const weir_plan_t *p = j->plan;

    j->deploys_pending = 0;
    for (int i = 0; i < jm->ntms; i++) {
        jm_tm_t *tm = jm->tms[i];
        int ntasks = 0;
        weir_msg_t m;

        for (int v = 0; v < p->nvertices; v++)
            for (int s = 0; s < p->vertices[v].parallelism; s++)
                ntasks += j->subtasks[v][s].tm == tm;
        if (ntasks == 0)
            continue;
        char ckdir[PATH_MAX];
        jm_ckpt_job_dir(jm, j, ckdir, sizeof(ckdir));
        weir_msg_begin(&m, "deploy", j->ckpt_latest > 0 ? 13 : 11);
        weir_msg_str(&m, "ckpt_dir", ckdir);
        if (j->ckpt_latest > 0) {
            weir_msg_str(&m, "restore", j->ckpt_latest_dir);
            weir_msg_int(&m, "restore_ckpt", j->ckpt_latest);
        }
        weir_msg_str(&m, "job", j->id);
        weir_msg_int(&m, "attempt", j->attempt);
        weir_msg_str(&m, "path", j->path);
        weir_msg_strn(&m, "text", j->text, j->text_len);
        weir_msg_int(&m, "parallelism", j->parallelism_override);
        weir_msg_key(&m, "vars");
        msgpack_pack_map(&m.pk, (size_t)j->vars.n);
        for (int k = 0; k < j->vars.n; k++) {
            size_t kl = strlen(j->vars.keys[k]), vl = strlen(j->vars.vals[k]);
            msgpack_pack_str(&m.pk, kl);
            msgpack_pack_str_body(&m.pk, j->vars.keys[k], kl);
            msgpack_pack_str(&m.pk, vl);
            msgpack_pack_str_body(&m.pk, j->vars.vals[k], vl);
        }
        weir_msg_key(&m, "placement");
        msgpack_pack_array(&m.pk, (size_t)p->nvertices);
        for (int v = 0; v < p->nvertices; v++) {
            msgpack_pack_array(&m.pk, (size_t)p->vertices[v].parallelism);
            for (int s = 0; s < p->vertices[v].parallelism; s++) {
                const char *a = j->subtasks[v][s].tm->addr;
                msgpack_pack_str(&m.pk, strlen(a));
                msgpack_pack_str_body(&m.pk, a, strlen(a));
            }
        }
        weir_msg_key(&m, "tasks");
        msgpack_pack_array(&m.pk, (size_t)ntasks);
        for (int v = 0; v < p->nvertices; v++)
            for (int s = 0; s < p->vertices[v].parallelism; s++)
                if (j->subtasks[v][s].tm == tm) {
                    msgpack_pack_array(&m.pk, 2);
                    msgpack_pack_int(&m.pk, v);
                    msgpack_pack_int(&m.pk, s);
                    j->subtasks[v][s].state = WEIR_TASK_DEPLOYING;
                }
        weir_msg_int(&m, "credits", 4);
        if (weir_msg_send(&m, tm->conn) != 0) {
            job_fail(jm, j, "cannot send the deployment to a task manager");
            return;
        }
        j->deploys_pending++;
    }
}

/* Takes n free slots, one per task manager in turn, for balance. */
static bool
allocate(jm_t *jm, jm_job_t *j, int n)
{
    int taken = 0;

    if (jm_free_slots(jm) < n)
        return false;
    free(j->slot_tm);
    j->slot_tm = calloc((size_t)n, sizeof(*j->slot_tm));
    if (j->slot_tm == NULL)
        return false;
    j->nslot_tms = n;
    while (taken < n) {
        for (int i = 0; i < jm->ntms && taken < n; i++) {
            jm_tm_t *tm = jm->tms[i];
            for (int s = 0; s < tm->nslots; s++) {
                if (tm->slots[s].job != NULL)
                    continue;
                tm->slots[s].job = j;
                tm->slots[s].index = taken;
                j->slot_tm[taken++] = tm;
                break;
            }
        }
    }
    return true;
}

static void
schedule(jm_t *jm)
{
    for (int i = 0; i < jm->njobs; i++) {
        jm_job_t *j = jm->jobs[i];
        const weir_plan_t *p = j->plan;

        if (j->state != JOB_CREATED)
            continue;
        if (!allocate(jm, j, p->slots))
            continue;
        j->start_ms = jm_now_ms();
        for (int v = 0; v < p->nvertices; v++)
            for (int s = 0; s < p->vertices[v].parallelism; s++) {
                j->subtasks[v][s].tm = j->slot_tm[s];
                j->subtasks[v][s].state = WEIR_TASK_CREATED;
                free(j->subtasks[v][s].failure);
                j->subtasks[v][s].failure = NULL;
            }
        j->restored_from = j->ckpt_latest;
        j->ckpt_last_trigger_mono = j->ckpt_last_end_mono = jm_mono_ms();
        job_set_state(jm, j, JOB_RUNNING);
        weir_log_info("[job:%.8s] scheduled on %d slots (attempt %d%s)", j->id, p->slots,
                      j->attempt, j->ckpt_latest > 0 ? ", restoring a checkpoint" : "");
        deploy(jm, j);
    }
}

static void
job_id_new(char out[WEIR_JOB_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[WEIR_JOB_ID_LEN / 2];

    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r)) {
        uint64_t x = weir_mono_ns() ^ ((uint64_t)getpid() << 32);
        for (size_t i = 0; i < sizeof(r); i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            r[i] = (unsigned char)(x >> 56);
        }
    }
    for (size_t i = 0; i < sizeof(r); i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[WEIR_JOB_ID_LEN] = '\0';
}

int
jm_submit(jm_t *jm, const char *path, const char *text, size_t len, const weir_vars_t *vars,
          int parallelism, jm_job_t **out, weir_err_t *err)
{
    int rc = jm_job_create(jm, NULL, path, text, len, vars, parallelism, out, err);

    if (rc != 0)
        return rc;
    jm_store_save(jm, *out);
    schedule(jm);
    return 0;
}

static void
jm_job_free(jm_job_t *j)
{
    if (j == NULL)
        return;
    for (int v = 0; j->subtasks != NULL && v < j->plan->nvertices; v++) {
        for (int s = 0; j->subtasks[v] != NULL && s < j->plan->vertices[v].parallelism; s++) {
            free(j->subtasks[v][s].failure);
            jm_metrics_clear(&j->subtasks[v][s].m);
        }
        free(j->subtasks[v]);
    }
    free(j->subtasks);
    weir_plan_destroy(j->plan);
    free(j->name);
    free(j->path);
    free(j->text);
    weir_vars_free(&j->vars);
    free(j->failure);
    free(j->slot_tm);
    for (int i = 0; i < JM_EXCEPTIONS; i++)
        free(j->exc[i].message);
    jm_ckpt_free(j);
    free(j);
}

int
jm_submit_from(jm_t *jm, const char *path, const char *text, size_t len,
               const weir_vars_t *vars, int parallelism, const char *savepoint,
               bool allow_non_restored, jm_job_t **out, weir_err_t *err)
{
    char meta[PATH_MAX];
    json_error_t je;
    json_t *m, *v, *o;
    size_t vi, oi;
    jm_job_t *j;
    int rc;

    if (savepoint == NULL || savepoint[0] == '\0')
        return jm_submit(jm, path, text, len, vars, parallelism, out, err);
    if (savepoint[0] != '/')
        return weir_err_set(err, WEIR_EINVAL, "the savepoint path must be absolute: '%s'",
                            savepoint);
    snprintf(meta, sizeof(meta), "%s/_metadata", savepoint);
    m = json_load_file(meta, 0, &je);
    if (m == NULL)
        return weir_err_set(err, WEIR_ENOENT, "'%s' is not a savepoint or checkpoint (no "
                            "readable _metadata: %s)", savepoint, je.text);
    rc = jm_job_create(jm, NULL, path, text, len, vars, parallelism, &j, err);
    if (rc != 0) {
        json_decref(m);
        return rc;
    }
    if (json_integer_value(json_object_get(m, "max_parallelism")) != j->plan->max_parallelism) {
        rc = weir_err_set(err, WEIR_EINVAL, "the savepoint was taken with max_parallelism %lld, "
                          "the job has %d (it must not change: keyed state is split by it)",
                          (long long)json_integer_value(json_object_get(m, "max_parallelism")),
                          j->plan->max_parallelism);
    }
    json_array_foreach(json_object_get(m, "vertices"), vi, v) {
        json_array_foreach(json_object_get(v, "ops"), oi, o) {
            const char *name = json_string_value(o);
            bool found = false;
            for (int n = 0; name != NULL && n < j->plan->nconfigs && !found; n++)
                found = strcmp(j->plan->configs[n].name, name) == 0;
            if (rc == 0 && !found && !allow_non_restored)
                rc = weir_err_set(err, WEIR_EINVAL, "the savepoint has state of operator '%s', "
                                  "which the job does not have (rename it back, or submit "
                                  "with --allow-non-restored-state to drop that state)", name);
        }
    }
    if (rc != 0) {
        /* undo: the job was never visible */
        jm->njobs--;
        jm_job_free(j);
        json_decref(m);
        return rc;
    }
    j->ckpt_latest = json_integer_value(json_object_get(m, "checkpoint"));
    j->ckpt_next = j->ckpt_latest;
    j->ckpt_latest_dir = strdup(savepoint);
    json_decref(m);
    weir_log_info("[job:%.8s] starts from savepoint %s", j->id, savepoint);
    jm_store_save(jm, j);
    schedule(jm);
    *out = j;
    return 0;
}

int
jm_job_create(jm_t *jm, const char *id, const char *path, const char *text, size_t len,
              const weir_vars_t *vars, int parallelism, jm_job_t **out, weir_err_t *err)
{
    weir_plan_t *plan;
    jm_job_t *j, **jobs;
    int rc;

    if (parallelism < 0 || parallelism > 32768)
        return weir_err_set(err, WEIR_EINVAL, "parallelism must be between 1 and 32768");
    rc = weir_plan_from_text(path, text, len, vars, parallelism, &plan, err);
    if (rc != 0)
        return rc;
    j = calloc(1, sizeof(*j));
    jobs = realloc(jm->jobs, (size_t)(jm->njobs + 1) * sizeof(*jobs));
    if (j == NULL || jobs == NULL) {
        free(j);
        weir_plan_destroy(plan);
        return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    }
    jm->jobs = jobs;
    if (id != NULL)
        snprintf(j->id, sizeof(j->id), "%s", id);
    else
        job_id_new(j->id);
    j->plan = plan;
    j->name = strdup(plan->jf->name);
    j->path = strdup(path);
    j->text = malloc(len + 1);
    if (j->text != NULL) {
        memcpy(j->text, text, len);
        j->text[len] = '\0';
    }
    j->text_len = len;
    for (int i = 0; vars != NULL && i < vars->n; i++)
        weir_vars_set(&j->vars, vars->keys[i], vars->vals[i]);
    j->parallelism_override = parallelism;
    j->submit_ms = jm_now_ms();
    j->wait_since_mono = jm_mono_ms();
    j->subtasks = calloc((size_t)plan->nvertices, sizeof(*j->subtasks));
    for (int v = 0; j->subtasks != NULL && v < plan->nvertices; v++)
        j->subtasks[v] = calloc((size_t)plan->vertices[v].parallelism, sizeof(jm_subtask_t));
    jm->jobs[jm->njobs++] = j;
    weir_log_info("[job:%.8s] %s '%s' (%d vertices, needs %d slots)", j->id,
                  id != NULL ? "recovered" : "submitted", j->name, plan->nvertices, plan->slots);
    *out = j;
    return 0;
}

void
jm_schedule(jm_t *jm)
{
    schedule(jm);
}

/* ---- task managers -------------------------------------------------------------- */

static void
tm_lost(jm_t *jm, jm_tm_t *tm, const char *why)
{
    char msg[512];

    if (tm->lost)
        return;
    tm->lost = true;
    weir_log_warn("task manager %s (%s) lost: %s", tm->id, tm->addr, why);
    snprintf(msg, sizeof(msg), "task manager %s (%s) lost: %s", tm->id, tm->addr, why);
    for (int i = 0; i < jm->njobs; i++) {
        jm_job_t *j = jm->jobs[i];
        bool hit = false;
        if (jm_job_terminal(j) || j->state == JOB_CREATED)
            continue;
        for (int v = 0; v < j->plan->nvertices; v++)
            for (int s = 0; s < j->plan->vertices[v].parallelism; s++) {
                jm_subtask_t *st = &j->subtasks[v][s];
                if (st->tm != tm)
                    continue;
                hit = true;
                if (!subtask_terminal(st->state)) {
                    st->state = WEIR_TASK_FAILED;
                    free(st->failure);
                    st->failure = strdup(msg);
                }
            }
        if (hit) {
            job_fail(jm, j, msg);
            check_job_done(jm, j);
        }
    }
    for (int i = 0; i < jm->ntms; i++) {
        if (jm->tms[i] == tm) {
            jm->tms[i] = jm->tms[--jm->ntms];
            break;
        }
    }
    {
        /* kept (jobs' subtasks may point at it), and reachable */
        jm_tm_t **gone = realloc(jm->gone, sizeof(*gone) * (size_t)(jm->ngone + 1));
        if (gone != NULL) {
            jm->gone = gone;
            jm->gone[jm->ngone++] = tm;
        }
    }
    /* jobs that still point at tm in subtasks are terminal or failing with
     * it marked failed; keep the struct for their history */
    if (tm->conn != NULL) {
        tm->conn->data = NULL;
        weir_conn_close(tm->conn, 0);
        tm->conn = NULL;
    }
    free(tm->slots);
    tm->slots = NULL;
    tm->nslots = 0;
    schedule(jm);
}

static jm_tm_t *
tm_of_conn(jm_t *jm, weir_conn_t *c)
{
    for (int i = 0; i < jm->ntms; i++)
        if (jm->tms[i]->conn == c)
            return jm->tms[i];
    return NULL;
}

static void
reply(weir_conn_t *c, const char *type, const char *reason)
{
    weir_msg_t m;

    weir_msg_begin(&m, type, 2);
    weir_msg_str(&m, "reason", reason);
    weir_msg_send(&m, c);
}

static void
handle_register(jm_t *jm, weir_conn_t *c, const msgpack_object *msg)
{
    char id[64], host[48], secret[128];
    int64_t version = weir_msg_get_int(msg, "version", 0);
    int64_t slots = weir_msg_get_int(msg, "slots", 0);
    int64_t port = weir_msg_get_int(msg, "port", 0);
    jm_tm_t *tm, **tms;

    weir_msg_get_str(msg, "id", id, sizeof(id));
    weir_msg_get_str(msg, "host", host, sizeof(host));
    weir_msg_get_str(msg, "secret", secret, sizeof(secret));
    if (version != WEIR_PROTOCOL_VERSION) {
        reply(c, "rejected", "protocol version mismatch");
        weir_conn_close(c, 0);
        return;
    }
    if (jm->secret[0] != '\0' && strcmp(secret, jm->secret) != 0) {
        weir_log_warn("rejected task manager from %s: wrong cluster secret", c->peer);
        reply(c, "rejected", "wrong cluster secret");
        weir_conn_close(c, 0);
        return;
    }
    if (id[0] == '\0' || slots < 1 || slots > 1024 || port <= 0 || port > 65535) {
        reply(c, "rejected", "bad registration");
        weir_conn_close(c, 0);
        return;
    }
    for (int i = 0; i < jm->ntms; i++)
        if (strcmp(jm->tms[i]->id, id) == 0) {
            tm_lost(jm, jm->tms[i], "re-registered from a new connection");
            break;
        }
    tm = calloc(1, sizeof(*tm));
    tms = realloc(jm->tms, (size_t)(jm->ntms + 1) * sizeof(*tms));
    if (tm == NULL || tms == NULL) {
        free(tm);
        weir_conn_close(c, 0);
        return;
    }
    jm->tms = tms;
    snprintf(tm->id, sizeof(tm->id), "%s", id);
    snprintf(tm->host, sizeof(tm->host), "%s", host);
    tm->data_port = (int)port;
    snprintf(tm->addr, sizeof(tm->addr), "%s:%d", host, (int)port);
    tm->nslots = (int)slots;
    tm->slots = calloc((size_t)slots, sizeof(*tm->slots));
    tm->conn = c;
    tm->last_hb_ms = jm_mono_ms();
    tm->registered_ms = jm_now_ms();
    jm->tms[jm->ntms++] = tm;
    reply(c, "registered", NULL);
    weir_log_info("task manager %s registered from %s: %d slots, data %s", tm->id, c->peer,
                  tm->nslots, tm->addr);
    schedule(jm);
}

static void
handle_deployed(jm_t *jm, jm_tm_t *tm, const msgpack_object *msg)
{
    char id[WEIR_JOB_ID_LEN + 1], error[1024];
    jm_job_t *j = jm_job_find(jm, weir_msg_get_str(msg, "job", id, sizeof(id)));

    if (j == NULL || weir_msg_get_int(msg, "attempt", -1) != j->attempt)
        return;
    weir_msg_get_str(msg, "error", error, sizeof(error));
    if (error[0] != '\0') {
        char m[1200];
        snprintf(m, sizeof(m), "deployment on %s failed: %s", tm->id, error);
        for (int v = 0; v < j->plan->nvertices; v++)
            for (int s = 0; s < j->plan->vertices[v].parallelism; s++)
                if (j->subtasks[v][s].tm == tm)
                    j->subtasks[v][s].state = WEIR_TASK_FAILED;
        job_fail(jm, j, m);
        return;
    }
    if (j->state != JOB_RUNNING || --j->deploys_pending > 0)
        return;
    for (int i = 0; i < jm->ntms; i++) {
        bool has = false;
        for (int v = 0; v < j->plan->nvertices && !has; v++)
            for (int s = 0; s < j->plan->vertices[v].parallelism && !has; s++)
                has = j->subtasks[v][s].tm == jm->tms[i];
        if (has)
            send_job_msg(jm->tms[i], "start", j);
    }
}

static void
handle_task_state(jm_t *jm, jm_tm_t *tm, const msgpack_object *msg)
{
    char id[WEIR_JOB_ID_LEN + 1], state[32], error[2048];
    jm_job_t *j = jm_job_find(jm, weir_msg_get_str(msg, "job", id, sizeof(id)));
    int v = (int)weir_msg_get_int(msg, "vertex", -1);
    int s = (int)weir_msg_get_int(msg, "subtask", -1);
    int st;

    if (j == NULL || weir_msg_get_int(msg, "attempt", -1) != j->attempt ||
        v < 0 || v >= j->plan->nvertices || s < 0 || s >= j->plan->vertices[v].parallelism ||
        j->subtasks[v][s].tm != tm)
        return;
    st = weir_task_state_parse(weir_msg_get_str(msg, "state", state, sizeof(state)));
    if (st < 0 || subtask_terminal(j->subtasks[v][s].state))
        return;
    weir_msg_get_str(msg, "error", error, sizeof(error));
    j->subtasks[v][s].state = (weir_task_state_t)st;
    if (st == WEIR_TASK_FAILED) {
        char m[2400];
        free(j->subtasks[v][s].failure);
        j->subtasks[v][s].failure = strdup(error);
        snprintf(m, sizeof(m), "%s (subtask %d/%d) on %s failed: %s", j->plan->vertices[v].name,
                 s + 1, j->plan->vertices[v].parallelism, tm->id, error);
        job_fail(jm, j, m);
    }
    if (st == WEIR_TASK_FINISHED)
        jm_ckpt_subtask_finished(jm, j, v, s);
    check_job_done(jm, j);
}

static void
rpc_frame_cb(weir_conn_t *c, const char *frame, uint32_t len)
{
    jm_t *jm = &jm_state;
    msgpack_unpacked u;
    size_t off = 0;
    char type[32];
    jm_tm_t *tm;

    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, frame, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy(&u);
        weir_log_warn("malformed frame from %s; closing", c->peer);
        weir_conn_close(c, UV_EPROTO);
        return;
    }
    weir_msg_get_str(&u.data, "t", type, sizeof(type));
    tm = tm_of_conn(jm, c);
    if (strcmp(type, "register") == 0) {
        if (tm == NULL)
            handle_register(jm, c, &u.data);
    } else if (tm == NULL) {
        weir_log_warn("message '%s' from unregistered %s; closing", type, c->peer);
        weir_conn_close(c, UV_EPROTO);
    } else {
        tm->last_hb_ms = jm_mono_ms();
        if (strcmp(type, "heartbeat") == 0)
            jm_metrics_heartbeat(jm, tm, &u.data);
        else if (strcmp(type, "deployed") == 0)
            handle_deployed(jm, tm, &u.data);
        else if (strcmp(type, "task_state") == 0)
            handle_task_state(jm, tm, &u.data);
        else if (strcmp(type, "ack") == 0)
            jm_ckpt_ack(jm, tm, &u.data);
        else if (strcmp(type, "ended") == 0)
            jm_ckpt_ended(jm, tm, &u.data);
    }
    msgpack_unpacked_destroy(&u);
}

static void
rpc_close_cb(weir_conn_t *c, int status)
{
    jm_t *jm = &jm_state;
    jm_tm_t *tm = tm_of_conn(jm, c);
    char why[128];

    if (tm == NULL)
        return;
    tm->conn = NULL;
    snprintf(why, sizeof(why), "connection closed (%s)", status ? uv_strerror(status) : "EOF");
    tm_lost(jm, tm, why);
}

static void
rpc_accept_cb(weir_listener_t *l, weir_conn_t *c)
{
    c->on_frame = rpc_frame_cb;
    c->on_close = rpc_close_cb;
    c->data = l->data;
}

/* ---- timers, signals, main ---------------------------------------------------------- */

static void
tick_cb(uv_timer_t *h)
{
    jm_t *jm = h->data;
    uint64_t now = jm_mono_ms();

    for (int i = 0; i < jm->ntms; i++) {
        jm_tm_t *tm = jm->tms[i];
        if (now - tm->last_hb_ms > jm->hb_timeout_ms) {
            char why[128];
            snprintf(why, sizeof(why), "no heartbeat for %.1f s",
                     (double)(now - tm->last_hb_ms) / 1000.0);
            tm_lost(jm, tm, why);
            i = -1;                     /* the list changed */
        }
    }
    for (int i = 0; i < jm->njobs; i++) {
        jm_job_t *j = jm->jobs[i];
        maybe_restart(jm, j, now);
        jm_ckpt_tick(jm, j, now);
        if (j->state == JOB_CREATED && now - j->wait_since_mono > jm->slot_timeout_ms) {
            char msg[512];
            snprintf(msg, sizeof(msg),
                     "not enough slots: the job needs %d, the cluster has %d free of %d "
                     "(waited %.1f s; add task managers or lower the parallelism)",
                     j->plan->slots, jm_free_slots(jm), jm_total_slots(jm),
                     (double)jm->slot_timeout_ms / 1000.0);
            job_fail(jm, j, msg);
        }
    }
    schedule(jm);
}

static void
close_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void
signal_cb(uv_signal_t *h, int signum)
{
    jm_t *jm = h->data;

    weir_log_info("signal %d: stopping", signum);
    if (jm->http != NULL) {
        weir_http_server_close(jm->http);
        jm->http = NULL;
    }
    for (int i = 0; i < jm->ntms; i++)
        if (jm->tms[i]->conn != NULL) {
            jm->tms[i]->conn->on_close = NULL;
            jm->tms[i]->conn = NULL;
        }
    weir_conn_close_all(0);
    uv_walk(jm->loop, close_walk_cb, NULL);
}

static int
write_ports_file(const jm_t *jm)
{
    char tmp[600];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", jm->ports_file);
    f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "rpc=%d\nrest=%d\n", jm->rpc_port, jm->rest_port);
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, jm->ports_file);
}

static void
usage(FILE *f)
{
    fprintf(f,
        "usage: weir-jobmanager [options]\n"
        "  --host ADDR               listen address (env WEIR_HOST; default 127.0.0.1)\n"
        "  --rpc-port P              task manager port (env WEIR_RPC_PORT; default 6123; 0 = free)\n"
        "  --rest-port P             REST/dashboard port (env WEIR_REST_PORT; default 8081; 0 = free)\n"
        "  --heartbeat-timeout DUR   lose a silent task manager after DUR (default 5s)\n"
        "  --slot-timeout DUR        fail a job waiting this long for slots (default 60s)\n"
        "  --ports-file FILE         write the bound ports to FILE (rpc=..., rest=...)\n"
        "  --data-dir DIR            keep submitted jobs here; a job manager restarted with\n"
        "                            the same DIR resumes them (env WEIR_DATA_DIR; default:\n"
        "                            none, jobs live in memory only)\n"
        "  --checkpoint-dir DIR      where checkpoints go (env WEIR_CHECKPOINT_DIR; default\n"
        "                            $TMPDIR/weir-checkpoints); a shared filesystem for\n"
        "                            task managers on several hosts\n"
        "  --secret S                cluster secret task managers must present (env WEIR_SECRET)\n"
        "  --log-level L             error|warn|info|debug (env WEIR_LOG_LEVEL)\n");
}

static int
parse_port(const char *s, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < 0 || v > 65535)
        return -1;
    *out = (int)v;
    return 0;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "host", required_argument, NULL, 'H' },
        { "rpc-port", required_argument, NULL, 'r' },
        { "rest-port", required_argument, NULL, 'p' },
        { "heartbeat-timeout", required_argument, NULL, 'b' },
        { "slot-timeout", required_argument, NULL, 't' },
        { "ports-file", required_argument, NULL, 'f' },
        { "checkpoint-dir", required_argument, NULL, 'c' },
        { "data-dir", required_argument, NULL, 'd' },
        { "secret", required_argument, NULL, 'S' },
        { "log-level", required_argument, NULL, 'l' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    jm_t *jm = &jm_state;
    const char *rpc = weir_env_or("WEIR_RPC_PORT", "6123"), *rest = weir_env_or("WEIR_REST_PORT", "8081");
    const char *hb = weir_env_or("WEIR_HEARTBEAT_TIMEOUT", "5s"), *st = weir_env_or("WEIR_SLOT_TIMEOUT", "60s");
    const char *level = weir_env_or("WEIR_LOG_LEVEL", "info");
    weir_err_t err = { 0 };
    int c, lvl;

    snprintf(jm->host, sizeof(jm->host), "%s", weir_env_or("WEIR_HOST", "127.0.0.1"));
    snprintf(jm->secret, sizeof(jm->secret), "%s", weir_env_or("WEIR_SECRET", ""));
    snprintf(jm->ckpt_base, sizeof(jm->ckpt_base), "%s", weir_env_or("WEIR_CHECKPOINT_DIR", ""));
    snprintf(jm->data_dir, sizeof(jm->data_dir), "%s", weir_env_or("WEIR_DATA_DIR", ""));
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'H': snprintf(jm->host, sizeof(jm->host), "%s", optarg); break;
        case 'r': rpc = optarg; break;
        case 'p': rest = optarg; break;
        case 'b': hb = optarg; break;
        case 't': st = optarg; break;
        case 'f': snprintf(jm->ports_file, sizeof(jm->ports_file), "%s", optarg); break;
        case 'c': snprintf(jm->ckpt_base, sizeof(jm->ckpt_base), "%s", optarg); break;
        case 'd': snprintf(jm->data_dir, sizeof(jm->data_dir), "%s", optarg); break;
        case 'S': snprintf(jm->secret, sizeof(jm->secret), "%s", optarg); break;
        case 'l': level = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if ((lvl = weir_log_level_parse(level)) < 0 || parse_port(rpc, &jm->rpc_port) != 0 ||
        parse_port(rest, &jm->rest_port) != 0 || weir_duration_ms(hb, &jm->hb_timeout_ms) != 0 ||
        weir_duration_ms(st, &jm->slot_timeout_ms) != 0) {
        fprintf(stderr, "weir-jobmanager: bad option value (ports 0-65535, durations like 5s, "
                        "log levels error|warn|info|debug)\n");
        return 2;
    }
    weir_log_init("jobmanager", (weir_log_level_t)lvl);
    if (jm->ckpt_base[0] == '\0')
        snprintf(jm->ckpt_base, sizeof(jm->ckpt_base), "%s/weir-checkpoints",
                 weir_env_or("TMPDIR", "/tmp"));
    if (jm->ckpt_base[0] != '/') {
        char cwd[PATH_MAX], rel[sizeof(jm->ckpt_base)];
        snprintf(rel, sizeof(rel), "%s", jm->ckpt_base);
        if (getcwd(cwd, sizeof(cwd)) != NULL)
            snprintf(jm->ckpt_base, sizeof(jm->ckpt_base), "%s/%s", cwd, rel);
    }
    weir_log_info("checkpoints: %s", jm->ckpt_base);
    if (jm_store_load(jm, &err) != 0) {
        weir_log_error("%s", err.msg);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    jm->loop = uv_default_loop();
    jm->rpc.accept_cb = rpc_accept_cb;
    jm->rpc.data = jm;
    jm->rpc.max_frame = 16u << 20;
    if (weir_listen(jm->loop, &jm->rpc, jm->host, jm->rpc_port, &jm->rpc_port, &err) != 0 ||
        weir_http_server_start(jm->loop, jm->host, jm->rest_port, NULL, jm_rest_handle, jm,
                               &jm->http, &err) != 0) {
        weir_log_error("%s", err.msg);
        return 1;
    }
    jm->rest_port = weir_http_server_port(jm->http);
    if (jm->ports_file[0] != '\0' && write_ports_file(jm) != 0) {
        weir_log_error("cannot write ports file %s", jm->ports_file);
        return 1;
    }
    uv_timer_init(jm->loop, &jm->tick);
    jm->tick.data = jm;
    uv_timer_start(&jm->tick, tick_cb, 50, 50);
    uv_signal_init(jm->loop, &jm->sigterm);
    uv_signal_init(jm->loop, &jm->sigint);
    jm->sigterm.data = jm->sigint.data = jm;
    uv_signal_start(&jm->sigterm, signal_cb, SIGTERM);
    uv_signal_start(&jm->sigint, signal_cb, SIGINT);
    weir_log_info("rpc: %s:%d", jm->host, jm->rpc_port);
    weir_log_info("rest: http://%s:%d/", jm->host, jm->rest_port);
    uv_run(jm->loop, UV_RUN_DEFAULT);
    uv_loop_close(jm->loop);
    weir_log_info("stopped");
    return 0;
}
