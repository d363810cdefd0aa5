/* runtime/taskmanager/taskmanager.c -- the worker process.
 *
 * One libuv loop thread does all networking: the control connection to the
 * job manager (register, heartbeats, deploy/start/cancel, task states), the
 * data listener that receives frames from other task managers, and one
 * outgoing data connection per peer task manager. Task threads never touch
 * a socket: they hand frames to the loop through the outbox (a mutex-guarded
 * list plus a uv_async_t).
 *
 * A job arrives as its job file text and vars; this process plans it again
 * (plans are deterministic) and builds the subtasks placed here. When the
 * connection to the job manager is lost, every task is canceled and the
 * task manager reconnects and registers again, with all its slots free.
 */
#include <dirent.h>
#include <ftw.h>
#include <getopt.h>
#include <sys/stat.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/config.h"
#include "../core/log.h"
#include "../net/conn.h"
#include "task.h"

typedef struct outbox_item {
    struct outbox_item *next;
    char               *addr;        /* NULL: to the job manager */
    weir_buf_t          frame;
} outbox_item_t;

typedef struct peer {
    char          addr[64];
    char          host[48];
    int           port;
    weir_conn_t  *conn;
    bool          connected;
    outbox_item_t *pending, *pending_tail;
} peer_t;

typedef struct tmgr {
    uv_loop_t        *loop;
    char              id[64];
    char              jm_host[64];
    int               jm_port;
    int               slots;
    char              data_host[48];
    int               data_port;
    char              self_addr[64];
    char              secret[128];
    char              state_dir[512];
    bool              own_state_dir;  /* the default one: removed at exit */
    uint64_t          hb_interval_ms;

    weir_conn_t      *jm;
    bool              registered;
    uv_timer_t        hb_timer;
    uv_timer_t        reconnect_timer;
    weir_listener_t   data;
    uv_signal_t       sigterm, sigint;
    uv_async_t        wake;
    bool              stopping;

    pthread_mutex_t   out_mu;
    outbox_item_t    *out_head, *out_tail;

    int               npeers;
    peer_t          **peers;
    int               njobs;
    weir_tm_job_t   **jobs;
} tmgr_t;

static tmgr_t tm;

static void jm_connect(tmgr_t *t);

/* ---- outbox: task threads -> loop ----------------------------------------- */

static void
outbox_push(tmgr_t *t, const char *addr, weir_buf_t *frame)
{
    outbox_item_t *it = calloc(1, sizeof(*it));

    if (it == NULL) {
        weir_buf_free(frame);
        return;
    }
    it->addr = addr ? strdup(addr) : NULL;
    it->frame = *frame;
    memset(frame, 0, sizeof(*frame));
    pthread_mutex_lock(&t->out_mu);
    if (t->out_tail)
        t->out_tail->next = it;
    else
        t->out_head = it;
    t->out_tail = it;
    pthread_mutex_unlock(&t->out_mu);
    uv_async_send(&t->wake);
}

static void
task_send(void *arg, const char *addr, weir_buf_t *frame)
{
    outbox_push(arg, addr, frame);
}

static void
task_report(void *arg, weir_task_t *task, weir_task_state_t s, const char *err)
{
    weir_tm_job_t *job = weir_task_job(task);
    weir_msg_t m;

    weir_msg_begin(&m, "task_state", 7);
    weir_msg_str(&m, "job", job->id);
    weir_msg_int(&m, "attempt", job->attempt);
    weir_msg_int(&m, "vertex", weir_task_vertex(task));
    weir_msg_int(&m, "subtask", weir_task_subtask(task));
    weir_msg_str(&m, "state", weir_task_state_name(s));
    weir_msg_str(&m, "error", err);
    if (weir_msg_end(&m) == 0)
        outbox_push(arg, NULL, &m.buf);
    else
        weir_buf_free(&m.buf);
}

static void
task_ack(void *arg, weir_task_t *task, int64_t ckpt, uint64_t bytes, int64_t sync_us,
         int64_t align_us, const char *err)
{
    weir_tm_job_t *job = weir_task_job(task);
    weir_msg_t m;

    weir_msg_begin(&m, "ack", 11);
    weir_msg_str(&m, "job", job->id);
    weir_msg_int(&m, "attempt", job->attempt);
    weir_msg_int(&m, "checkpoint", ckpt);
    weir_msg_int(&m, "vertex", weir_task_vertex(task));
    weir_msg_int(&m, "subtask", weir_task_subtask(task));
    weir_msg_int(&m, "bytes", (int64_t)bytes);
    weir_msg_int(&m, "sync_us", sync_us);
    weir_msg_int(&m, "align_us", align_us);
    weir_msg_int(&m, "ended", weir_task_ended(task));
    weir_msg_str(&m, "error", err);
    if (weir_msg_end(&m) == 0)
        outbox_push(arg, NULL, &m.buf);
    else
        weir_buf_free(&m.buf);
}

static void
task_ended(void *arg, weir_task_t *task)
{
    weir_tm_job_t *job = weir_task_job(task);
    weir_msg_t m;

    weir_msg_begin(&m, "ended", 5);
    weir_msg_str(&m, "job", job->id);
    weir_msg_int(&m, "attempt", job->attempt);
    weir_msg_int(&m, "vertex", weir_task_vertex(task));
    weir_msg_int(&m, "subtask", weir_task_subtask(task));
    if (weir_msg_end(&m) == 0)
        outbox_push(arg, NULL, &m.buf);
    else
        weir_buf_free(&m.buf);
}

static const weir_task_env_t task_env = { task_send, task_report, task_ack, task_ended, &tm };

/* ---- peers ------------------------------------------------------------------ */

static void peer_frame_cb(weir_conn_t *c, const char *f, uint32_t n) { (void)c; (void)f; (void)n; }

static void
peer_flush(peer_t *p)
{
    while (p->pending != NULL && p->connected) {
        outbox_item_t *it = p->pending;
        p->pending = it->next;
        if (p->pending == NULL)
            p->pending_tail = NULL;
        weir_conn_send(p->conn, &it->frame);
        free(it->addr);
        free(it);
    }
}

static void
peer_connect_cb(weir_conn_t *c, int status)
{
    peer_t *p = c->data;

    if (status != 0) {
        weir_log_warn("cannot connect to task manager %s: %s", p->addr, uv_strerror(status));
        return;
    }
    p->connected = true;
    peer_flush(p);
}

static void
peer_close_cb(weir_conn_t *c, int status)
{
    peer_t *p = c->data;

    if (status != 0)
        weir_log_warn("data connection to %s closed: %s", p->addr, uv_strerror(status));
    p->conn = NULL;
    p->connected = false;
}

static peer_t *
peer_get(tmgr_t *t, const char *addr)
{
    peer_t *p, **pp;
    const char *colon;

    for (int i = 0; i < t->npeers; i++)
        if (strcmp(t->peers[i]->addr, addr) == 0)
            return t->peers[i];
    colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= sizeof(p->host))
        return NULL;
    p = calloc(1, sizeof(*p));
    pp = realloc(t->peers, (size_t)(t->npeers + 1) * sizeof(*pp));
    if (p == NULL || pp == NULL) {
        free(p);
        return NULL;
    }
    t->peers = pp;
    snprintf(p->addr, sizeof(p->addr), "%s", addr);
    memcpy(p->host, addr, (size_t)(colon - addr));
    p->port = atoi(colon + 1);
    t->peers[t->npeers++] = p;
    return p;
}

static void
peer_send(tmgr_t *t, outbox_item_t *it)
{
    peer_t *p = peer_get(t, it->addr);

    if (p == NULL) {
        weir_buf_free(&it->frame);
        free(it->addr);
        free(it);
        return;
    }
    it->next = NULL;
    if (p->pending_tail)
        p->pending_tail->next = it;
    else
        p->pending = it;
    p->pending_tail = it;
    if (p->conn == NULL)
        p->conn = weir_connect(t->loop, p->host, p->port, WEIR_FRAME_MAX_DEFAULT, peer_frame_cb,
                               peer_connect_cb, peer_close_cb, p);
    peer_flush(p);
}

/* ---- jobs ------------------------------------------------------------------- */

static weir_tm_job_t *
job_find(tmgr_t *t, const char *id, int attempt)
{
    for (int i = 0; i < t->njobs; i++)
        if (strcmp(t->jobs[i]->id, id) == 0 && (attempt < 0 || t->jobs[i]->attempt == attempt))
            return t->jobs[i];
    return NULL;
}

static void
job_free(weir_tm_job_t *j)
{
    for (int i = 0; i < j->ntasks; i++)
        weir_task_destroy(j->tasks[i]);
    free(j->tasks);
    if (j->addr != NULL && j->plan != NULL) {
        for (int v = 0; v < j->plan->nvertices; v++) {
            for (int s = 0; j->addr[v] && s < j->plan->vertices[v].parallelism; s++)
                free(j->addr[v][s]);
            free(j->addr[v]);
        }
    }
    free(j->addr);
    weir_plan_destroy(j->plan);
    free(j->ckpt_dir);
    free(j->restore_dir);
    weir_restore_meta_free(j->restore);
    free(j);
}

/* Frees jobs whose tasks have all ended (their threads are joined here). */
static void
reap_jobs(tmgr_t *t)
{
    for (int i = 0; i < t->njobs; i++) {
        weir_tm_job_t *j = t->jobs[i];
        bool all = true;
        for (int k = 0; k < j->ntasks && all; k++)
            all = weir_task_done(j->tasks[k]);
        if (!all || j->ntasks == 0)
            continue;
        weir_log_info("[job:%.8s] all %d subtasks here ended; released", j->id, j->ntasks);
        job_free(j);
        t->jobs[i] = t->jobs[--t->njobs];
        i--;
    }
}

static void
cancel_all(tmgr_t *t)
{
    for (int i = 0; i < t->njobs; i++)
        for (int k = 0; k < t->jobs[i]->ntasks; k++)
            weir_task_cancel(t->jobs[i]->tasks[k]);
}

static void
send_deployed(tmgr_t *t, const char *job, int attempt, const char *error)
{
    weir_msg_t m;

    weir_msg_begin(&m, "deployed", 4);
    weir_msg_str(&m, "job", job);
    weir_msg_int(&m, "attempt", attempt);
    weir_msg_str(&m, "error", error);
    if (t->jm != NULL)
        weir_msg_send(&m, t->jm);
    else
        weir_buf_free(&m.buf);
}

static void
handle_deploy(tmgr_t *t, const msgpack_object *msg)
{
    char id[WEIR_JOB_ID_LEN + 1], path[256];
    const msgpack_object *text = weir_msg_get(msg, "text");
    const msgpack_object *vars = weir_msg_get(msg, "vars");
    const msgpack_object *place = weir_msg_get(msg, "placement");
    const msgpack_object *tasks = weir_msg_get(msg, "tasks");
    int attempt = (int)weir_msg_get_int(msg, "attempt", 0);
    weir_vars_t v = { 0 };
    weir_tm_job_t *j = NULL;
    weir_err_t err = { 0 };
    int rc = WEIR_EPROTO;

    weir_msg_get_str(msg, "job", id, sizeof(id));
    weir_msg_get_str(msg, "path", path, sizeof(path));
    if (text == NULL || text->type != MSGPACK_OBJECT_STR || place == NULL ||
        place->type != MSGPACK_OBJECT_ARRAY || tasks == NULL || tasks->type != MSGPACK_OBJECT_ARRAY) {
        weir_err_set(&err, WEIR_EPROTO, "malformed deploy message");
        goto fail;
    }
    if (vars != NULL && vars->type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < vars->via.map.size; i++) {
            const msgpack_object_kv *kv = &vars->via.map.ptr[i];
            char k[256], val[4096];
            if (kv->key.type != MSGPACK_OBJECT_STR || kv->val.type != MSGPACK_OBJECT_STR ||
                kv->key.via.str.size >= sizeof(k) || kv->val.via.str.size >= sizeof(val))
                continue;
            memcpy(k, kv->key.via.str.ptr, kv->key.via.str.size);
            k[kv->key.via.str.size] = '\0';
            memcpy(val, kv->val.via.str.ptr, kv->val.via.str.size);
            val[kv->val.via.str.size] = '\0';
            weir_vars_set(&v, k, val);
        }
    }
    j = calloc(1, sizeof(*j));
    if (j == NULL)
        goto fail;
    snprintf(j->id, sizeof(j->id), "%s", id);
    j->attempt = attempt;
    j->self_addr = t->self_addr;
    j->state_dir = t->state_dir;
    j->credits = (int)weir_msg_get_int(msg, "credits", 4);
    j->buffer_bytes = (size_t)weir_msg_get_int(msg, "buffer_bytes", 32768);
    {
        char dir[PATH_MAX];
        if (weir_msg_get_str(msg, "ckpt_dir", dir, sizeof(dir))[0] != '\0' &&
            (j->ckpt_dir = strdup(dir)) == NULL)
            goto fail;
        if (weir_msg_get_str(msg, "restore", dir, sizeof(dir))[0] != '\0') {
            if ((j->restore_dir = strdup(dir)) == NULL)
                goto fail;
            j->restore_ckpt = weir_msg_get_int(msg, "restore_ckpt", 0);
            rc = weir_restore_meta_load(dir, &j->restore, &err);
            if (rc != 0)
                goto fail;
        }
    }
    rc = weir_plan_from_text(path[0] ? path : "<job>", text->via.str.ptr, text->via.str.size, &v,
                             (int)weir_msg_get_int(msg, "parallelism", 0), &j->plan, &err);
    if (rc != 0)
        goto fail;
    if ((int)place->via.array.size != j->plan->nvertices) {
        rc = weir_err_set(&err, WEIR_EPROTO, "placement has %u vertices, plan %d",
                          place->via.array.size, j->plan->nvertices);
        goto fail;
    }
    j->addr = calloc((size_t)j->plan->nvertices, sizeof(*j->addr));
    if (j->addr == NULL)
        goto fail;
    for (int vi = 0; vi < j->plan->nvertices; vi++) {
        const msgpack_object *pv = &place->via.array.ptr[vi];
        int par = j->plan->vertices[vi].parallelism;
        if (pv->type != MSGPACK_OBJECT_ARRAY || (int)pv->via.array.size != par) {
            rc = weir_err_set(&err, WEIR_EPROTO, "placement of vertex %d is malformed", vi);
            goto fail;
        }
        j->addr[vi] = calloc((size_t)par, sizeof(char *));
        if (j->addr[vi] == NULL)
            goto fail;
        for (int s = 0; s < par; s++) {
            const msgpack_object *a = &pv->via.array.ptr[s];
            if (a->type != MSGPACK_OBJECT_STR)
                goto fail;
            j->addr[vi][s] = strndup(a->via.str.ptr, a->via.str.size);
        }
    }
    j->tasks = calloc(tasks->via.array.size + 1, sizeof(*j->tasks));
    if (j->tasks == NULL)
        goto fail;
    for (uint32_t i = 0; i < tasks->via.array.size; i++) {
        const msgpack_object *tk = &tasks->via.array.ptr[i];
        int vi, si;
        if (tk->type != MSGPACK_OBJECT_ARRAY || tk->via.array.size != 2)
            goto fail;
        vi = (int)tk->via.array.ptr[0].via.i64;
        si = (int)tk->via.array.ptr[1].via.i64;
        if (vi < 0 || vi >= j->plan->nvertices || si < 0 || si >= j->plan->vertices[vi].parallelism) {
            rc = weir_err_set(&err, WEIR_EPROTO, "task (%d, %d) is not in the plan", vi, si);
            goto fail;
        }
        rc = weir_task_create(j, vi, si, &task_env, &j->tasks[j->ntasks], &err);
        if (rc != 0)
            goto fail;
        j->ntasks++;
    }
    for (int i = 0; i < j->ntasks; i++)
        if ((rc = weir_task_link(j->tasks[i], &err)) != 0)
            goto fail;
    weir_tm_job_t **jobs = realloc(t->jobs, (size_t)(t->njobs + 1) * sizeof(*jobs));
    if (jobs == NULL)
        goto fail;
    t->jobs = jobs;
    t->jobs[t->njobs++] = j;
    weir_vars_free(&v);
    weir_log_info("[job:%.8s] deployed %d subtasks (attempt %d)", id, j->ntasks, attempt);
    send_deployed(t, id, attempt, NULL);
    return;

fail:
    if (err.msg[0] == '\0')
        weir_err_set(&err, rc ? rc : WEIR_ENOMEM, "deploy failed: %s", weir_strerror(rc ? rc : WEIR_ENOMEM));
    weir_log_error("[job:%.8s] deploy failed: %s", id, err.msg);
    if (j != NULL)
        job_free(j);
    weir_vars_free(&v);
    send_deployed(t, id, attempt, err.msg);
}

static void
handle_start(tmgr_t *t, const msgpack_object *msg)
{
    char id[WEIR_JOB_ID_LEN + 1];
    weir_tm_job_t *j = job_find(t, weir_msg_get_str(msg, "job", id, sizeof(id)),
                                (int)weir_msg_get_int(msg, "attempt", 0));

    if (j == NULL)
        return;
    for (int i = 0; i < j->ntasks; i++)
        if (weir_task_start(j->tasks[i]) != 0)
            task_report(t, j->tasks[i], WEIR_TASK_FAILED, "cannot start task thread");
}

/* trigger / complete: {job, attempt, checkpoint} */
static void
handle_checkpoint(tmgr_t *t, const msgpack_object *msg, bool complete)
{
    char id[WEIR_JOB_ID_LEN + 1];
    weir_tm_job_t *j = job_find(t, weir_msg_get_str(msg, "job", id, sizeof(id)),
                                (int)weir_msg_get_int(msg, "attempt", -1));
    int64_t ckpt = weir_msg_get_int(msg, "checkpoint", 0);

    if (j == NULL || ckpt <= 0)
        return;
    for (int i = 0; i < j->ntasks; i++) {
        if (complete)
            weir_task_notify(j->tasks[i], ckpt);
        else
            weir_task_trigger(j->tasks[i], ckpt);
    }
}

static void
handle_cancel(tmgr_t *t, const msgpack_object *msg)
{
    char id[WEIR_JOB_ID_LEN + 1];
    weir_tm_job_t *j = job_find(t, weir_msg_get_str(msg, "job", id, sizeof(id)),
                                (int)weir_msg_get_int(msg, "attempt", -1));

    if (j == NULL)
        return;
    weir_log_info("[job:%.8s] cancel", j->id);
    for (int i = 0; i < j->ntasks; i++)
        weir_task_cancel(j->tasks[i]);
}

/* ---- job manager connection ------------------------------------------------ */

static void
jm_frame_cb(weir_conn_t *c, const char *frame, uint32_t len)
{
    tmgr_t *t = c->data;
    msgpack_unpacked u;
    size_t off = 0;
    char type[32];

    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, frame, len, &off) != MSGPACK_UNPACK_SUCCESS) {
        msgpack_unpacked_destroy(&u);
        weir_conn_close(c, UV_EPROTO);
        return;
    }
    weir_msg_get_str(&u.data, "t", type, sizeof(type));
    if (strcmp(type, "registered") == 0) {
        t->registered = true;
        weir_log_info("registered with the job manager at %s:%d as %s (%d slots, data %s)",
                      t->jm_host, t->jm_port, t->id, t->slots, t->self_addr);
    } else if (strcmp(type, "rejected") == 0) {
        char why[256];
        weir_log_error("job manager rejected registration: %s",
                       weir_msg_get_str(&u.data, "reason", why, sizeof(why)));
    } else if (strcmp(type, "deploy") == 0) {
        handle_deploy(t, &u.data);
    } else if (strcmp(type, "start") == 0) {
        handle_start(t, &u.data);
    } else if (strcmp(type, "cancel") == 0) {
        handle_cancel(t, &u.data);
    } else if (strcmp(type, "trigger") == 0) {
        handle_checkpoint(t, &u.data, false);
    } else if (strcmp(type, "complete") == 0) {
        handle_checkpoint(t, &u.data, true);
    } else if (strcmp(type, "drain") == 0) {
        char id[WEIR_JOB_ID_LEN + 1];
        weir_tm_job_t *j = job_find(t, weir_msg_get_str(&u.data, "job", id, sizeof(id)),
                                    (int)weir_msg_get_int(&u.data, "attempt", -1));
        for (int i = 0; j != NULL && i < j->ntasks; i++)
            weir_task_drain(j->tasks[i]);
    }
    msgpack_unpacked_destroy(&u);
}

static void
send_heartbeat(tmgr_t *t)
{
    weir_msg_t m;

    if (t->jm == NULL || !t->jm->connected)
        return;
    weir_msg_begin(&m, "heartbeat", 5);
    weir_msg_str(&m, "id", t->id);
    {
        /* process figures: resident memory and CPU time so far */
        long rss_kb = 0;
        unsigned long long ut = 0, st = 0;
        FILE *f = fopen("/proc/self/statm", "r");
        long pages = 0, res = 0;
        if (f != NULL) {
            if (fscanf(f, "%ld %ld", &pages, &res) == 2)
                rss_kb = res * (sysconf(_SC_PAGESIZE) / 1024);
            fclose(f);
        }
        f = fopen("/proc/self/stat", "r");
        if (f != NULL) {
            /* fields 14 and 15: utime, stime (clock ticks); the command
             * name in field 2 may hold spaces, so skip past its ')' */
            char line[1024];
            if (fgets(line, sizeof(line), f) != NULL) {
                char *p = strrchr(line, ')');
                if (p != NULL)
                    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                           &st);
            }
            fclose(f);
        }
        weir_msg_int(&m, "rss_kb", rss_kb);
        weir_msg_int(&m, "cpu_ms", (int64_t)((ut + st) * 1000 / (unsigned long long)sysconf(_SC_CLK_TCK)));
    }
    /* every running task's counters:
     * [job, attempt, vertex, subtask, in, out, bytes in, bytes out, busy us,
     *  idle us, backpressured us, dead letters, pending, [op in...], [op out...],
     *  input watermark us, output watermark us, emit lag ms,
     *  [[topic, partition, offset, pending]...]] */
    int ntasks = 0;
    for (int i = 0; i < t->njobs; i++)
        ntasks += t->jobs[i]->ntasks;
    weir_msg_key(&m, "tasks");
    msgpack_pack_array(&m.pk, (size_t)ntasks);
    for (int i = 0; i < t->njobs; i++) {
        weir_tm_job_t *j = t->jobs[i];
        for (int k = 0; k < j->ntasks; k++) {
            weir_task_stats_t ts;
            weir_task_stats(j->tasks[k], &ts);
            msgpack_pack_array(&m.pk, 19);
            msgpack_pack_str(&m.pk, strlen(j->id));
            msgpack_pack_str_body(&m.pk, j->id, strlen(j->id));
            msgpack_pack_int(&m.pk, j->attempt);
            msgpack_pack_int(&m.pk, weir_task_vertex(j->tasks[k]));
            msgpack_pack_int(&m.pk, weir_task_subtask(j->tasks[k]));
            msgpack_pack_uint64(&m.pk, ts.records_in);
            msgpack_pack_uint64(&m.pk, ts.records_out);
            msgpack_pack_uint64(&m.pk, ts.bytes_in);
            msgpack_pack_uint64(&m.pk, ts.bytes_out);
            msgpack_pack_uint64(&m.pk, ts.busy_us);
            msgpack_pack_uint64(&m.pk, ts.idle_us);
            msgpack_pack_uint64(&m.pk, ts.backpressured_us);
            msgpack_pack_uint64(&m.pk, ts.dead_lettered);
            msgpack_pack_int64(&m.pk, ts.pending_records);
            msgpack_pack_array(&m.pk, (size_t)ts.nops);
            for (int o = 0; o < ts.nops; o++)
                msgpack_pack_uint64(&m.pk, ts.op_in[o]);
            msgpack_pack_array(&m.pk, (size_t)ts.nops);
            for (int o = 0; o < ts.nops; o++)
                msgpack_pack_uint64(&m.pk, ts.op_out[o]);
            msgpack_pack_int64(&m.pk, ts.in_wm);
            msgpack_pack_int64(&m.pk, ts.out_wm);
            msgpack_pack_int64(&m.pk, ts.emit_lag_ms);
            msgpack_pack_array(&m.pk, (size_t)ts.nsplits);
            for (int p = 0; p < ts.nsplits; p++) {
                const weir_split_metrics_t *sp = &ts.splits[p];
                msgpack_pack_array(&m.pk, 4);
                msgpack_pack_str(&m.pk, strlen(sp->topic));
                msgpack_pack_str_body(&m.pk, sp->topic, strlen(sp->topic));
                msgpack_pack_int(&m.pk, sp->partition);
                msgpack_pack_int64(&m.pk, __atomic_load_n(&sp->offset, __ATOMIC_RELAXED));
                msgpack_pack_int64(&m.pk, __atomic_load_n(&sp->pending, __ATOMIC_RELAXED));
            }
        }
    }
    weir_msg_send(&m, t->jm);
}

static void
jm_connect_cb(weir_conn_t *c, int status)
{
    tmgr_t *t = c->data;
    weir_msg_t m;

    if (status != 0)
        return;
    weir_msg_begin(&m, "register", 7);
    weir_msg_int(&m, "version", WEIR_PROTOCOL_VERSION);
    weir_msg_str(&m, "id", t->id);
    weir_msg_int(&m, "slots", t->slots);
    weir_msg_str(&m, "host", t->data_host);
    weir_msg_int(&m, "port", t->data_port);
    weir_msg_str(&m, "secret", t->secret);
    weir_msg_send(&m, c);
}

static void
reconnect_cb(uv_timer_t *h)
{
    jm_connect(h->data);
}

static void
jm_close_cb(weir_conn_t *c, int status)
{
    tmgr_t *t = c->data;

    if (t->registered)
        weir_log_warn("lost the job manager at %s:%d (%s); canceling all tasks",
                      t->jm_host, t->jm_port, status ? uv_strerror(status) : "closed");
    t->jm = NULL;
    t->registered = false;
    cancel_all(t);
    if (!t->stopping)
        uv_timer_start(&t->reconnect_timer, reconnect_cb, 1000, 0);
}

static void
jm_connect(tmgr_t *t)
{
    if (t->stopping)
        return;
    t->jm = weir_connect(t->loop, t->jm_host, t->jm_port, WEIR_FRAME_MAX_DEFAULT, jm_frame_cb,
                         jm_connect_cb, jm_close_cb, t);
    if (t->jm == NULL)
        uv_timer_start(&t->reconnect_timer, reconnect_cb, 1000, 0);
}

static void
hb_cb(uv_timer_t *h)
{
    tmgr_t *t = h->data;

    send_heartbeat(t);
    reap_jobs(t);
}

/* ---- data listener ------------------------------------------------------------ */

static void
data_frame_cb(weir_conn_t *c, const char *frame, uint32_t len)
{
    tmgr_t *t = c->data;
    msgpack_unpacked u;
    const msgpack_object *a;
    size_t off = 0;
    char job[WEIR_JOB_ID_LEN + 1];
    int kind, attempt, edge, src, dst;
    weir_tm_job_t *j;

    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, frame, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_ARRAY || u.data.via.array.size < 6 ||
        u.data.via.array.ptr[1].type != MSGPACK_OBJECT_STR ||
        u.data.via.array.ptr[1].via.str.size != WEIR_JOB_ID_LEN) {
        msgpack_unpacked_destroy(&u);
        weir_log_warn("malformed data frame from %s; closing", c->peer);
        weir_conn_close(c, UV_EPROTO);
        return;
    }
    a = &u.data;
    memcpy(job, a->via.array.ptr[1].via.str.ptr, WEIR_JOB_ID_LEN);
    job[WEIR_JOB_ID_LEN] = '\0';
    kind = (int)a->via.array.ptr[0].via.i64;
    attempt = (int)a->via.array.ptr[2].via.i64;
    edge = (int)a->via.array.ptr[3].via.i64;
    src = (int)a->via.array.ptr[4].via.i64;
    dst = (int)a->via.array.ptr[5].via.i64;
    j = job_find(t, job, attempt);
    if (j != NULL && edge >= 0 && edge < j->plan->nedges) {
        const weir_plan_edge_t *pe = &j->plan->edges[edge];
        weir_task_t *task;

        if (kind == WEIR_DATA_CREDIT) {
            task = weir_tm_job_find(j, pe->src_vertex, src);
            if (task != NULL && a->via.array.size >= 7)
                weir_task_deliver_credit(task, edge, dst, (int)a->via.array.ptr[6].via.i64);
        } else if ((task = weir_tm_job_find(j, pe->dst_vertex, dst)) != NULL) {
            if (kind == WEIR_DATA_BATCH && a->via.array.size >= 7 &&
                a->via.array.ptr[6].type == MSGPACK_OBJECT_BIN)
                weir_task_deliver_batch(task, edge, src, a->via.array.ptr[6].via.bin.ptr,
                                        a->via.array.ptr[6].via.bin.size);
            else if (kind == WEIR_DATA_EOS)
                weir_task_deliver_eos(task, edge, src);
            else if (kind == WEIR_DATA_END_OF_DATA)
                weir_task_deliver_end_of_data(task, edge, src);
            else if (kind == WEIR_DATA_BARRIER && a->via.array.size >= 7)
                weir_task_deliver_barrier(task, edge, src, a->via.array.ptr[6].via.i64);
            else if (kind == WEIR_DATA_WATERMARK && a->via.array.size >= 7 &&
                     (a->via.array.ptr[6].type == MSGPACK_OBJECT_NEGATIVE_INTEGER ||
                      a->via.array.ptr[6].type == MSGPACK_OBJECT_POSITIVE_INTEGER))
                weir_task_deliver_watermark(task, edge, src, a->via.array.ptr[6].via.i64);
        }
    }
    msgpack_unpacked_destroy(&u);
}

static void
data_close_cb(weir_conn_t *c, int status)
{
    (void)c;
    (void)status;
}

static void
data_accept_cb(weir_listener_t *l, weir_conn_t *c)
{
    c->data = l->data;
    c->on_frame = data_frame_cb;
    c->on_close = data_close_cb;
}

/* ---- loop wake-ups -------------------------------------------------------------- */

static void
wake_cb(uv_async_t *h)
{
    tmgr_t *t = h->data;
    outbox_item_t *it, *next;

    pthread_mutex_lock(&t->out_mu);
    it = t->out_head;
    t->out_head = t->out_tail = NULL;
    pthread_mutex_unlock(&t->out_mu);
    for (; it != NULL; it = next) {
        next = it->next;
        if (it->addr == NULL) {
            if (t->jm != NULL && t->jm->connected)
                weir_conn_send(t->jm, &it->frame);
            else
                weir_buf_free(&it->frame);
            free(it);
        } else {
            peer_send(t, it);
        }
    }
    reap_jobs(t);
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
    tmgr_t *t = h->data;

    weir_log_info("signal %d: stopping", signum);
    t->stopping = true;
    cancel_all(t);
    for (int i = 0; i < t->njobs; i++)
        job_free(t->jobs[i]);     /* joins the canceled threads */
    t->njobs = 0;
    weir_conn_close_all(0);
    uv_walk(t->loop, close_walk_cb, NULL);
}

/* ---- main -------------------------------------------------------------------- */

static void
usage(FILE *f)
{
    fprintf(f,
        "usage: weir-taskmanager --jobmanager HOST:PORT [options]\n"
        "  --jobmanager HOST:PORT     job manager RPC address (env WEIR_JOBMANAGER)\n"
        "  --slots N                  task slots offered (env WEIR_SLOTS; default 2)\n"
        "  --id NAME                  task manager id (env WEIR_TM_ID; default tm-<pid>)\n"
        "  --host ADDR                data listen address (default 127.0.0.1)\n"
        "  --data-port P              data port (default 0: a free port)\n"
        "  --heartbeat-interval DUR   e.g. 1s (default 1s)\n"
        "  --secret S                 cluster secret (env WEIR_SECRET)\n"
        "  --state-dir DIR            keyed state (RocksDB) directory (env WEIR_STATE_DIR;\n"
        "                             default $TMPDIR/weir-state-<id>-<pid>, removed at exit);\n"
        "                             job folders left in it are cleared at start\n"
        "  --state-cache-mb N         RocksDB write-back cache per keyed subtask, MiB\n"
        "                             (env WEIR_STATE_CACHE_MB; default 32, 0 = off)\n"
        "  --block-cache-mb N         RocksDB block cache shared by the process, MiB\n"
        "                             (env WEIR_BLOCK_CACHE_MB; default 128)\n"
        "  --log-level L              error|warn|info|debug (env WEIR_LOG_LEVEL)\n");
}

static int
remove_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

/* rm -rf path; a missing path is fine. */
static int
remove_tree(const char *path)
{
    struct stat st;

    if (lstat(path, &st) != 0)
        return 0;
    return nftw(path, remove_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Removes the <state dir>/<job id> folders, and nothing else a user might
 * keep in the directory. */
static int
clear_job_dirs(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];
    int rc = 0;

    if (d == NULL)
        return 0;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n != WEIR_JOB_ID_LEN || strspn(e->d_name, "0123456789abcdef") != n)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (remove_tree(path) != 0)
            rc = -1;
    }
    closedir(d);
    return rc;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "jobmanager", required_argument, NULL, 'j' },
        { "slots", required_argument, NULL, 's' },
        { "id", required_argument, NULL, 'i' },
        { "host", required_argument, NULL, 'H' },
        { "data-port", required_argument, NULL, 'd' },
        { "heartbeat-interval", required_argument, NULL, 'b' },
        { "secret", required_argument, NULL, 'S' },
        { "state-dir", required_argument, NULL, 'D' },
        { "log-level", required_argument, NULL, 'l' },
        { "state-cache-mb", required_argument, NULL, 'C' },
        { "block-cache-mb", required_argument, NULL, 'B' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *jm = weir_env_or("WEIR_JOBMANAGER", NULL), *level = weir_env_or("WEIR_LOG_LEVEL", "info");
    const char *hb = "1s", *colon;
    const char *state_cache = weir_env_or("WEIR_STATE_CACHE_MB", NULL);
    const char *block_cache = weir_env_or("WEIR_BLOCK_CACHE_MB", NULL);
    weir_state_rocksdb_tuning_t tuning;
    weir_err_t err = { 0 };
    int c, lvl;

    tm.slots = atoi(weir_env_or("WEIR_SLOTS", "2"));
    snprintf(tm.id, sizeof(tm.id), "%s", weir_env_or("WEIR_TM_ID", ""));
    snprintf(tm.data_host, sizeof(tm.data_host), "127.0.0.1");
    snprintf(tm.secret, sizeof(tm.secret), "%s", weir_env_or("WEIR_SECRET", ""));
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'j': jm = optarg; break;
        case 's': tm.slots = atoi(optarg); break;
        case 'i': snprintf(tm.id, sizeof(tm.id), "%s", optarg); break;
        case 'H': snprintf(tm.data_host, sizeof(tm.data_host), "%s", optarg); break;
        case 'd': tm.data_port = atoi(optarg); break;
        case 'b': hb = optarg; break;
        case 'S': snprintf(tm.secret, sizeof(tm.secret), "%s", optarg); break;
        case 'D': snprintf(tm.state_dir, sizeof(tm.state_dir), "%s", optarg); break;
        case 'l': level = optarg; break;
        case 'C': state_cache = optarg; break;
        case 'B': block_cache = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if ((lvl = weir_log_level_parse(level)) < 0) {
        fprintf(stderr, "weir-taskmanager: bad log level '%s'\n", level);
        return 2;
    }
    weir_log_init("taskmanager", (weir_log_level_t)lvl);
    if (jm == NULL || (colon = strrchr(jm, ':')) == NULL || (size_t)(colon - jm) >= sizeof(tm.jm_host)) {
        fprintf(stderr, "weir-taskmanager: --jobmanager HOST:PORT is required\n");
        usage(stderr);
        return 2;
    }
    memcpy(tm.jm_host, jm, (size_t)(colon - jm));
    tm.jm_port = atoi(colon + 1);
    if (tm.slots < 1 || tm.slots > 1024 || tm.jm_port <= 0 || tm.jm_port > 65535 ||
        weir_duration_ms(hb, &tm.hb_interval_ms) != 0) {
        fprintf(stderr, "weir-taskmanager: bad --slots, --jobmanager port or --heartbeat-interval\n");
        return 2;
    }
    weir_state_rocksdb_tuning_defaults(&tuning);
    {
        const char *val[2] = { state_cache, block_cache };
        size_t *field[2] = { &tuning.write_cache_bytes, &tuning.block_cache_bytes };
        for (int k = 0; k < 2; k++) {
            char *end = NULL;
            long long mb;
            if (val[k] == NULL)
                continue;
            mb = strtoll(val[k], &end, 10);
            if (end == val[k] || *end != '\0' || mb < 0 || mb > 1 << 20) {
                fprintf(stderr, "weir-taskmanager: bad --%s '%s': a number of MiB\n",
                        k == 0 ? "state-cache-mb" : "block-cache-mb", val[k]);
                return 2;
            }
            *field[k] = (size_t)mb << 20;
        }
    }
    if (weir_state_rocksdb_tune(&tuning) != 0) {
        fprintf(stderr, "weir-taskmanager: --block-cache-mb must be at least 1\n");
        return 2;
    }
    if (tm.id[0] == '\0')
        snprintf(tm.id, sizeof(tm.id), "tm-%d", (int)getpid());
    if (tm.state_dir[0] == '\0' && getenv("WEIR_STATE_DIR") != NULL)
        snprintf(tm.state_dir, sizeof(tm.state_dir), "%s", getenv("WEIR_STATE_DIR"));
    if (tm.state_dir[0] == '\0') {
        /* unique per process: two clusters on one machine may both have a tm-1 */
        snprintf(tm.state_dir, sizeof(tm.state_dir), "%s/weir-state-%s-%d", weir_env_or("TMPDIR", "/tmp"),
                 tm.id, (int)getpid());
        tm.own_state_dir = true;
    }
    /* state of a previous life of this task manager has no checkpoint to
     * belong to yet: drop the job folders it left (only those) */
    if (clear_job_dirs(tm.state_dir) != 0) {
        weir_log_error("cannot clear state directory %s", tm.state_dir);
        return 1;
    }
    if (tuning.write_cache_bytes > 0)
        weir_log_info("keyed state in %s: RocksDB write cache %zu MiB per keyed subtask, "
                      "block cache %zu MiB", tm.state_dir, tuning.write_cache_bytes >> 20,
                      tuning.block_cache_bytes >> 20);
    else
        weir_log_info("keyed state in %s: RocksDB write cache off, block cache %zu MiB",
                      tm.state_dir, tuning.block_cache_bytes >> 20);

    signal(SIGPIPE, SIG_IGN);
    tm.loop = uv_default_loop();
    pthread_mutex_init(&tm.out_mu, NULL);
    uv_async_init(tm.loop, &tm.wake, wake_cb);
    tm.wake.data = &tm;
    tm.data.accept_cb = data_accept_cb;
    tm.data.data = &tm;
    if (weir_listen(tm.loop, &tm.data, tm.data_host, tm.data_port, &tm.data_port, &err) != 0) {
        weir_log_error("%s", err.msg);
        return 1;
    }
    snprintf(tm.self_addr, sizeof(tm.self_addr), "%s:%d", tm.data_host, tm.data_port);
    uv_timer_init(tm.loop, &tm.hb_timer);
    tm.hb_timer.data = &tm;
    uv_timer_start(&tm.hb_timer, hb_cb, tm.hb_interval_ms, tm.hb_interval_ms);
    uv_timer_init(tm.loop, &tm.reconnect_timer);
    tm.reconnect_timer.data = &tm;
    uv_signal_init(tm.loop, &tm.sigterm);
    uv_signal_init(tm.loop, &tm.sigint);
    tm.sigterm.data = tm.sigint.data = &tm;
    uv_signal_start(&tm.sigterm, signal_cb, SIGTERM);
    uv_signal_start(&tm.sigint, signal_cb, SIGINT);
    weir_log_info("task manager %s: %d slots, data %s, job manager %s:%d, state %s", tm.id,
                  tm.slots, tm.self_addr, tm.jm_host, tm.jm_port, tm.state_dir);
    jm_connect(&tm);
    uv_run(tm.loop, UV_RUN_DEFAULT);
    uv_loop_close(tm.loop);
    if (tm.own_state_dir)
        rmdir(tm.state_dir);              /* empty once every job dropped its state */
    weir_log_info("stopped");
    return 0;
}
