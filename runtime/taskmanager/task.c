/* runtime/taskmanager/task.c -- a subtask's thread: chain, inputs, outputs.
 *
 * See task.h for channels and locking. The thread's life:
 *
 *   open every operator of the chain
 *   source vertex:  poll the source, push the rows through the chain
 *   other vertices: take input items (batches, end-of-stream markers) from
 *                   the input queue, push batches through the chain
 *   when every input ended (or the source is exhausted): finish each
 *   operator in chain order, flushing what it emits downstream, then send
 *   end-of-stream on every output channel and report FINISHED
 *
 * Rows leave the chain's tail through the partitioner of every outgoing
 * edge and are packed into the channel's frame buffer. The buffer layout is
 * fixed so that no byte is copied when the frame goes out:
 *
 *   [4: frame length][prefix: fixarray 7, 0, job, attempt, edge, src, dst]
 *   [c6 + u32: bin length][dd + u32: cells][ce + u32: rows][ce + u32: fields]
 *   [cells ...]
 *
 * The bracketed headers are filled in at flush time.
 */
#include "task.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/codec.h"
#include "../core/fsutil.h"
#include "../core/log.h"
#include "../core/watermark.h"

typedef struct in_item {
    struct in_item *next;
    int             kind;        /* WEIR_DATA_BATCH, _EOS, _BARRIER or _WATERMARK */
    int             chan;        /* index into t->in */
    int64_t         ckpt;        /* _BARRIER: its checkpoint; _WATERMARK: the value */
    char           *data;        /* owned; payload at data + off */
    size_t          off, len;
} in_item_t;

typedef struct out_chan {
    int          edge;           /* plan edge index */
    int          dst;            /* receiving subtask */
    weir_task_t *local;          /* receiving task when on this task manager */
    int          local_in;       /* its input channel index */
    const char  *addr;           /* receiving task manager when remote */
    int          credits;        /* guarded by the task mutex */
    weir_buf_t   buf;            /* frame under construction */
    size_t       payload_off;    /* where the bin payload starts */
    int          rows;
    int          nfields;
} out_chan_t;

typedef struct in_chan {
    int          edge;
    int          src;            /* sending subtask */
    int          input;          /* head operator input index */
    bool         eos;
    bool         data_end;       /* end of data (or eos) seen: no more records */
    weir_task_t *local;          /* sending task when local */
    int          local_out;      /* its output channel index */
    const char  *addr;           /* sending task manager when remote */
} in_chan_t;

/* An outgoing edge: its channels, indexed by receiving subtask. */
typedef struct out_edge {
    const weir_plan_edge_t *pe;
    int                     first;   /* index of channel for dst 0 in t->out */
    int                     n;       /* receiving parallelism */
    int                     rr;      /* round-robin position */
} out_edge_t;

struct weir_task {
    weir_tm_job_t          *job;
    const weir_plan_vertex_t *v;
    int                     vertex, subtask;
    weir_task_env_t         env;
    char                    prefix[160];

    pthread_t               thread;
    bool                    started;
    pthread_mutex_t         mu;
    pthread_cond_t          cond;
    in_item_t              *q_head, *q_tail;
    volatile int            canceled;
    volatile int            done;
    int                     drain;       /* stop --drain asked (atomic) */

    int                     nin;
    in_chan_t              *in;
    int                     in_open;     /* channels without EOS yet */
    int                     data_open;   /* channels that may still send records */
    bool                    final_mode;  /* checkpoints: a final one before the end */
    bool                    ended;       /* finish() ran; END_OF_DATA went downstream */
    int64_t                 final_ckpt;  /* first checkpoint taken after ending */
    int                     nout;
    out_chan_t             *out;
    int                     nedges_out;
    out_edge_t             *edges_out;

    weir_op_ctx_t           ctx;
    weir_op_t              *ops;         /* v->nops */
    int                     opened;      /* ops opened so far */
    weir_batch_t          **outb;        /* per op output batch (NULL for sinks) */
    weir_batch_t          **inb;         /* per head input: decode target */
    weir_state_backend_t   *state;
    weir_err_t              err;

    /* checkpoints */
    int64_t                 trigger_ckpt;   /* source: asked for (under mu) */
    int64_t                 complete_ckpt;  /* completed everywhere (under mu) */
    int64_t                 notified_ckpt;  /* passed to notify_complete */
    int64_t                 done_ckpt;      /* last one this task took */
    int64_t                 align_ckpt;     /* barrier being aligned, 0 = none */
    int64_t                 align_start;    /* monotonic us of its first barrier */
    bool                   *in_barrier;     /* per input channel: its barrier arrived */
    in_item_t             **held_head;      /* per input channel: items held while */
    in_item_t             **held_tail;      /*   aligning (exactly_once) */

    /* event time (see core/watermark.h) */
    const weir_wm_conf_t   *wmc;            /* sources: the watermark block, NULL if none */
    weir_wm_gen_t           wm_gen;         /* sources with a watermark block */
    int64_t                 wm_next;        /* monotonic us of the next emission */
    weir_wm_chan_t         *wm_ch;          /* per input channel */
    int64_t                 in_wm, out_wm;  /* combined input / last emitted */
    bool                    out_idle;       /* told downstream we are idle */

    /* metrics: written by the task thread (relaxed atomics), read by the
     * task manager's loop */
    weir_op_metrics_t       opm;
    uint64_t                m_rin, m_rout, m_bin, m_bout;
    uint64_t                m_busy_start;   /* monotonic us when the task started */
    uint64_t                m_idle, m_bp;   /* us waiting for input / for credits */
    uint64_t               *m_op_in, *m_op_out;
    int64_t                 m_in_wm, m_out_wm, m_emit_lag_ms;
};

int weir_task_vertex(const weir_task_t *t) { return t->vertex; }
int weir_task_subtask(const weir_task_t *t) { return t->subtask; }
weir_tm_job_t *weir_task_job(const weir_task_t *t) { return t->job; }
bool weir_task_done(const weir_task_t *t) { return __atomic_load_n(&t->done, __ATOMIC_ACQUIRE); }

weir_task_t *
weir_tm_job_find(const weir_tm_job_t *job, int vertex, int subtask)
{
    for (int i = 0; i < job->ntasks; i++)
        if (job->tasks[i] != NULL && job->tasks[i]->vertex == vertex &&
            job->tasks[i]->subtask == subtask)
            return job->tasks[i];
    return NULL;
}

static uint64_t
now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- channel buffers ---------------------------------------------------- */

#define PAYLOAD_HDR 15        /* dd+u32, ce+u32, ce+u32 */

static void
put_u32(char *p, uint8_t tag, uint32_t v)
{
    p[0] = (char)tag;
    weir_frame_put_len(p + 1, v);
}

/* Starts a fresh frame in c->buf: frame header, fixed prefix, bin header and
 * batch header placeholders. */
static int
chan_reset(weir_task_t *t, out_chan_t *c)
{
    msgpack_packer pk;

    weir_buf_reset(&c->buf);
    if (weir_buf_reserve(&c->buf, t->job->buffer_bytes + 1024) != 0)
        return WEIR_ENOMEM;
    c->buf.len = WEIR_FRAME_HDR;
    msgpack_packer_init(&pk, &c->buf, weir_buf_msgpack_write);
    msgpack_pack_array(&pk, 7);
    msgpack_pack_int(&pk, WEIR_DATA_BATCH);
    msgpack_pack_str(&pk, WEIR_JOB_ID_LEN);
    msgpack_pack_str_body(&pk, t->job->id, WEIR_JOB_ID_LEN);
    msgpack_pack_int(&pk, t->job->attempt);
    msgpack_pack_int(&pk, c->edge);
    msgpack_pack_int(&pk, t->subtask);
    msgpack_pack_int(&pk, c->dst);
    if (weir_buf_reserve(&c->buf, 5 + PAYLOAD_HDR) != 0)
        return WEIR_ENOMEM;
    c->buf.len += 5;                       /* c6 + u32 bin length */
    c->payload_off = c->buf.len;
    c->buf.len += PAYLOAD_HDR;
    c->rows = 0;
    return 0;
}

static void
queue_push(weir_task_t *t, in_item_t *it)
{
    pthread_mutex_lock(&t->mu);
    it->next = NULL;
    if (t->q_tail != NULL)
        t->q_tail->next = it;
    else
        t->q_head = it;
    t->q_tail = it;
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->mu);
}

static void
timed_wait(weir_task_t *t, int64_t us)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += us / 1000000;
    ts.tv_nsec += (us % 1000000) * 1000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&t->cond, &t->mu, &ts);
}

/* Sends the staged rows of c, waiting for a credit. Returns 0, or
 * WEIR_ECANCELED when the task was canceled while waiting. */
static int
chan_flush(weir_task_t *t, out_chan_t *c)
{
    uint32_t plen;
    weir_buf_t frame;

    if (c->rows == 0)
        return 0;
    pthread_mutex_lock(&t->mu);
    if (c->credits == 0 && !t->canceled) {
        uint64_t w0 = now_us();
        while (c->credits == 0 && !t->canceled)
            timed_wait(t, 100000);
        weir_metric_add(&t->m_bp, now_us() - w0);
    }
    if (t->canceled) {
        pthread_mutex_unlock(&t->mu);
        return WEIR_ECANCELED;
    }
    c->credits--;
    pthread_mutex_unlock(&t->mu);

    plen = (uint32_t)(c->buf.len - c->payload_off);
    put_u32(c->buf.data + c->payload_off - 5, 0xc6, plen);
    put_u32(c->buf.data + c->payload_off, 0xdd, 2 + (uint32_t)c->rows * (uint32_t)c->nfields);
    put_u32(c->buf.data + c->payload_off + 5, 0xce, (uint32_t)c->rows);
    put_u32(c->buf.data + c->payload_off + 10, 0xce, (uint32_t)c->nfields);
    weir_frame_put_len(c->buf.data, (uint32_t)(c->buf.len - WEIR_FRAME_HDR));

    weir_metric_add(&t->m_bout, plen);
    frame = c->buf;
    memset(&c->buf, 0, sizeof(c->buf));
    if (c->local != NULL) {
        in_item_t *it = malloc(sizeof(*it));
        if (it == NULL) {
            weir_buf_free(&frame);
            return WEIR_ENOMEM;
        }
        it->kind = WEIR_DATA_BATCH;
        it->chan = c->local_in;
        it->data = frame.data;
        it->off = c->payload_off;
        it->len = plen;
        queue_push(c->local, it);
    } else {
        t->env.send(t->env.tm, c->addr, &frame);
    }
    return chan_reset(t, c);
}

/* Sends a small control frame [kind, job, attempt, edge, src, dst(, n)] to
 * the task manager at addr; with_n false leaves n out. */
static int
send_ctl(weir_task_t *t, const char *addr, int kind, int edge, int src, int dst, bool with_n,
         int64_t n)
{
    weir_buf_t frame = WEIR_BUF_INIT;
    size_t hdr = weir_frame_begin(&frame);
    msgpack_packer pk;

    msgpack_packer_init(&pk, &frame, weir_buf_msgpack_write);
    msgpack_pack_array(&pk, with_n ? 7 : 6);
    msgpack_pack_int(&pk, kind);
    msgpack_pack_str(&pk, WEIR_JOB_ID_LEN);
    msgpack_pack_str_body(&pk, t->job->id, WEIR_JOB_ID_LEN);
    msgpack_pack_int(&pk, t->job->attempt);
    msgpack_pack_int(&pk, edge);
    msgpack_pack_int(&pk, src);
    msgpack_pack_int(&pk, dst);
    if (with_n)
        msgpack_pack_int64(&pk, n);
    if (weir_frame_end(&frame, hdr, WEIR_FRAME_MAX_DEFAULT) != 0) {
        weir_buf_free(&frame);
        return WEIR_ENOMEM;
    }
    t->env.send(t->env.tm, addr, &frame);
    return 0;
}

static int
chan_send_eos(weir_task_t *t, out_chan_t *c)
{
    if (c->local != NULL) {
        in_item_t *it = calloc(1, sizeof(*it));
        if (it == NULL)
            return WEIR_ENOMEM;
        it->kind = WEIR_DATA_EOS;
        it->chan = c->local_in;
        queue_push(c->local, it);
    } else {
        return send_ctl(t, c->addr, WEIR_DATA_EOS, c->edge, t->subtask, c->dst, false, 0);
    }
    return 0;
}

/* A marker that travels in order with the batches: a barrier (n = the
 * checkpoint) or a watermark (n = its value, or WEIR_WM_IDLE_MARK). */
static int
chan_send_marker(weir_task_t *t, out_chan_t *c, int kind, int64_t n)
{
    if (c->local != NULL) {
        in_item_t *it = calloc(1, sizeof(*it));
        if (it == NULL)
            return WEIR_ENOMEM;
        it->kind = kind;
        it->chan = c->local_in;
        it->ckpt = n;
        queue_push(c->local, it);
        return 0;
    }
    return send_ctl(t, c->addr, kind, c->edge, t->subtask, c->dst, true, n);
}

/* Gives a consumed buffer's credit back to its sender. */
static void
return_credit(weir_task_t *t, const in_chan_t *ic)
{
    if (ic->local != NULL) {
        weir_task_t *s = ic->local;
        pthread_mutex_lock(&s->mu);
        s->out[ic->local_out].credits++;
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->mu);
    } else {
        send_ctl(t, ic->addr, WEIR_DATA_CREDIT, ic->edge, ic->src, t->subtask, true, 1);
    }
}

/* ---- emitting ----------------------------------------------------------- */

static int
chan_add_row(weir_task_t *t, out_chan_t *c, const weir_value_t *row)
{
    msgpack_packer pk;

    msgpack_packer_init(&pk, &c->buf, weir_buf_msgpack_write);
    for (int f = 0; f < c->nfields; f++)
        if (weir_codec_pack_value(&pk, &row[f]) != 0)
            return WEIR_ENOMEM;
    c->rows++;
    if (c->buf.len >= t->job->buffer_bytes || c->rows >= 65536)
        return chan_flush(t, c);
    return 0;
}

/* Routes the rows of b (the chain tail's output) to every outgoing edge. */
static int
emit(weir_task_t *t, const weir_batch_t *b)
{
    int rc;

    weir_metric_add(&t->m_rout, (uint64_t)b->nrows);
    for (int e = 0; e < t->nedges_out; e++) {
        out_edge_t *oe = &t->edges_out[e];
        const weir_plan_edge_t *pe = oe->pe;

        for (int r = 0; r < b->nrows; r++) {
            const weir_value_t *row = weir_batch_row(b, r);
            int dst;

            switch (pe->partition) {
            case WEIR_PART_FORWARD:
                dst = t->subtask;
                break;
            case WEIR_PART_HASH: {
                uint64_t h = weir_key_hash(row, pe->key_idx, pe->nkeys);
                dst = weir_key_group_subtask(weir_key_group(h, t->job->plan->max_parallelism),
                                             oe->n, t->job->plan->max_parallelism);
                break;
            }
            case WEIR_PART_BROADCAST:
                for (int d = 0; d < oe->n; d++)
                    if ((rc = chan_add_row(t, &t->out[oe->first + d], row)) != 0)
                        return rc;
                continue;
            default:
                dst = oe->rr;
                oe->rr = (oe->rr + 1) % oe->n;
                break;
            }
            rc = chan_add_row(t, &t->out[oe->first + dst], row);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static int
flush_all(weir_task_t *t)
{
    for (int i = 0; i < t->nout; i++) {
        int rc = chan_flush(t, &t->out[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Pushes b, the output of op 'from - 1' (or a source batch when from is 1,
 * or an input batch for op 0 when from is 0), through ops [from, nops). */
static int
run_chain(weir_task_t *t, int from, int input, const weir_batch_t *b)
{
    const weir_batch_t *cur = b;
    int rc;

    for (int i = from; i < t->v->nops; i++) {
        weir_op_t *op = &t->ops[i];
        weir_batch_t *out = t->outb[i];

        if (cur->nrows == 0)
            return 0;
        if (out != NULL)
            weir_batch_clear(out);
        rc = op->cfg->kind->process(op, i == from ? input : 0, cur, out, &t->err);
        if (rc != 0)
            return rc;
        weir_metric_add(&t->m_op_in[i], (uint64_t)cur->nrows);
        if (out == NULL)
            return 0;                    /* a sink ends the chain */
        weir_metric_add(&t->m_op_out[i], (uint64_t)out->nrows);
        cur = out;
        input = 0;
    }
    return cur->nrows > 0 ? emit(t, cur) : 0;
}

/* End of input: finish every operator in order, pushing what each emits,
 * and send what is staged. */
static int
finish_ops(weir_task_t *t)
{
    int rc;

    for (int i = 0; i < t->v->nops; i++) {
        weir_op_t *op = &t->ops[i];
        weir_batch_t *out = t->outb[i];

        if (op->cfg->kind->finish == NULL)
            continue;
        if (out != NULL)
            weir_batch_clear(out);
        rc = op->cfg->kind->finish(op, out, &t->err);
        if (rc != 0)
            return rc;
        if (out != NULL && out->nrows > 0) {
            rc = i + 1 < t->v->nops ? run_chain(t, i + 1, 0, out) : emit(t, out);
            if (rc != 0)
                return rc;
        }
    }
    return flush_all(t);
}

static int
send_eos_all(weir_task_t *t)
{
    int rc = 0;

    for (int c = 0; c < t->nout && rc == 0; c++)
        rc = chan_send_eos(t, &t->out[c]);
    return rc;
}

/* Without checkpoints: finish, then end of stream everywhere. */
static int
finish_chain(weir_task_t *t)
{
    int rc = finish_ops(t);

    return rc != 0 ? rc : send_eos_all(t);
}

/* ---- event time --------------------------------------------------------- */

/* Sends wm (a watermark, or WEIR_WM_IDLE_MARK) on every output channel,
 * after the rows staged before it. */
static int
send_watermark(weir_task_t *t, int64_t wm)
{
    int rc = flush_all(t);
    for (int c = 0; c < t->nout && rc == 0; c++) {
        const out_chan_t *oc = &t->out[c];
        /* a forward edge only ever uses the channel to the same index */
        if (t->job->plan->edges[oc->edge].partition == WEIR_PART_FORWARD && oc->dst != t->subtask)
            continue;
        rc = chan_send_marker(t, &t->out[c], WEIR_DATA_WATERMARK, wm);
    }
    return rc;
}

/* Event time advanced to wm: the operators of the chain from 'from' on
 * see it in order (what one emits on a watermark flows through the rest
 * first), then it goes downstream. */
static int
advance_watermark(weir_task_t *t, int from, int64_t wm)
{
    int rc;

    for (int i = from; i < t->v->nops; i++) {
        weir_op_t *op = &t->ops[i];
        weir_batch_t *out = t->outb[i];

        if (op->cfg->kind->on_watermark == NULL)
            continue;
        if (out != NULL)
            weir_batch_clear(out);
        rc = op->cfg->kind->on_watermark(op, wm, out, &t->err);
        if (rc != 0)
            return rc;
        if (out != NULL && out->nrows > 0) {
            weir_metric_add(&t->m_op_out[i], (uint64_t)out->nrows);
            rc = i + 1 < t->v->nops ? run_chain(t, i + 1, 0, out) : emit(t, out);
            if (rc != 0)
                return rc;
        }
    }
    t->out_wm = wm;
    t->out_idle = false;
    weir_metric_set(&t->m_out_wm, wm);
    return send_watermark(t, wm);
}

/* Idleness changed: downstream leaves an idle channel out of its minimum. */
static int
set_idle(weir_task_t *t, bool idle)
{
    if (idle == t->out_idle)
        return 0;
    t->out_idle = idle;
    /* back to active: a real value says so; none yet is sent as NONE + 1 */
    return send_watermark(t, idle ? WEIR_WM_IDLE_MARK
                                  : t->out_wm == WEIR_WM_NONE ? WEIR_WM_NONE + 1 : t->out_wm);
}

/* Sources: the generator's watermark, every interval. */
static int
source_watermark(weir_task_t *t, int64_t now)
{
    bool idle;
    int64_t wm;

    if (now < t->wm_next)
        return 0;
    t->wm_next = now + t->wmc->interval_us;
    wm = weir_wm_gen_current(&t->wm_gen, now, &idle);
    if (idle)
        return set_idle(t, true);
    if (wm != WEIR_WM_NONE && wm > t->out_wm)
        return advance_watermark(t, 1, wm);
    return set_idle(t, false);
}

/* The runtime's observation for sources without splits of their own: the
 * largest event time of the batch, and the last row's for the emit lag. */
static void
observe_batch(weir_task_t *t, const weir_batch_t *b)
{
    int f = t->wmc->field;
    int64_t max = WEIR_WM_NONE;

    for (int r = 0; r < b->nrows; r++) {
        const weir_value_t *v = &weir_batch_row(b, r)[f];
        if (!v->null && v->u.i > max)
            max = v->u.i;
    }
    if (max != WEIR_WM_NONE) {
        weir_wm_observe(&t->wm_gen, 0, max);
        const weir_value_t *last = &weir_batch_row(b, b->nrows - 1)[f];
        if (!last->null)
            weir_metric_set(&t->opm.event_time_us, last->u.i);
    }
}

/* currentEmitEventTimeLag: wall clock minus the event time of the last
 * record emitted, once per batch. */
static void
emit_lag(weir_task_t *t)
{
    int64_t ev = __atomic_load_n(&t->opm.event_time_us, __ATOMIC_RELAXED);
    struct timespec ts;

    if (ev == WEIR_WM_NONE)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    weir_metric_set(&t->m_emit_lag_ms,
                    ((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 - ev) / 1000);
}

/* An input channel's watermark or idleness changed (or it ended): the
 * combined input watermark may advance. */
static int
input_watermark(weir_task_t *t)
{
    bool idle;
    int64_t wm = weir_wm_combine(t->wm_ch, t->nin, &idle);
    int rc = 0;

    if (wm != WEIR_WM_NONE && wm > t->in_wm) {
        t->in_wm = wm;
        weir_metric_set(&t->m_in_wm, wm);
        rc = advance_watermark(t, 0, wm);
    }
    if (rc == 0)
        rc = set_idle(t, idle);
    return rc;
}

static int
on_watermark_item(weir_task_t *t, int chan, int64_t v)
{
    weir_wm_chan_t *c = &t->wm_ch[chan];

    if (v == WEIR_WM_IDLE_MARK) {
        c->idle = true;
    } else {
        c->idle = false;
        if (v > c->wm && v != WEIR_WM_NONE + 1)
            c->wm = v;
    }
    return input_watermark(t);
}

/* ---- end of data and the final checkpoint ------------------------------- */

static int chan_send_marker(weir_task_t *t, out_chan_t *c, int kind, int64_t n);
static int take_checkpoint(weir_task_t *t, int64_t ckpt);
static int run_notify(weir_task_t *t);

/* With checkpoints, the end of input is not the end of the task: finish()
 * runs (operators emit what they held back; sinks commit nothing), the
 * staged rows and END_OF_DATA go downstream, and the task stays for one
 * more checkpoint, which holds everything finish() left and whose
 * completion commits it (Flink's final checkpoint, FLIP-147). Only then
 * does end of stream go out. */
static int
end_of_data(weir_task_t *t)
{
    int rc;

    if (t->ended)
        return 0;
    if ((rc = finish_ops(t)) != 0)
        return rc;
    for (int c = 0; c < t->nout && rc == 0; c++) {
        const out_chan_t *oc = &t->out[c];
        if (t->job->plan->edges[oc->edge].partition == WEIR_PART_FORWARD && oc->dst != t->subtask)
            continue;
        rc = chan_send_marker(t, &t->out[c], WEIR_DATA_END_OF_DATA, -1);
    }
    if (rc != 0)
        return rc;
    t->ended = true;
    weir_log_info("%s end of input; waiting for a final checkpoint", t->prefix);
    if (t->v->nin == 0 && t->env.ended != NULL)
        t->env.ended(t->env.tm, t);
    return 0;
}

/* Commits without a barrier what a final checkpoint would have: each
 * operator snapshots (into nothing) and is told it completed. For a task
 * that ended but can meet no barrier any more (every input gone). */
static int
commit_locally(weir_task_t *t)
{
    weir_buf_t scratch = WEIR_BUF_INIT;
    int64_t n = t->done_ckpt + 1;
    int rc = 0;

    for (int i = 0; i < t->v->nops && rc == 0; i++) {
        weir_op_t *op = &t->ops[i];
        weir_buf_reset(&scratch);
        if (op->cfg->kind->snapshot != NULL)
            rc = op->cfg->kind->snapshot(op, n, &scratch, &t->err);
        if (rc == 0 && op->cfg->kind->notify_complete != NULL)
            rc = op->cfg->kind->notify_complete(op, n, &t->err);
    }
    weir_buf_free(&scratch);
    return rc;
}

/* An ended task: waits until its final checkpoint completed (sources take
 * it when triggered), commits, and sends end of stream. */
static int
wait_final(weir_task_t *t)
{
    int rc;

    while (!t->canceled) {
        int64_t trig;

        pthread_mutex_lock(&t->mu);
        trig = t->v->nin == 0 ? t->trigger_ckpt : 0;
        pthread_mutex_unlock(&t->mu);
        if (trig > t->done_ckpt && (rc = take_checkpoint(t, trig)) != 0)
            return rc;
        if ((rc = run_notify(t)) != 0)
            return rc;
        if (t->final_ckpt != 0 && t->notified_ckpt >= t->final_ckpt)
            return send_eos_all(t);
        if (t->v->nin > 0 && t->final_ckpt == 0) {
            /* every input gone and no barrier after the end: none can come */
            weir_log_warn("%s no checkpoint after the end of its input can come; committing "
                          "without one", t->prefix);
            if ((rc = commit_locally(t)) != 0)
                return rc;
            return send_eos_all(t);
        }
        pthread_mutex_lock(&t->mu);
        if (!t->canceled && (t->v->nin > 0 || t->trigger_ckpt <= t->done_ckpt) &&
            t->complete_ckpt <= t->notified_ckpt)
            timed_wait(t, 200000);
        pthread_mutex_unlock(&t->mu);
    }
    return WEIR_ECANCELED;
}

/* ---- checkpoints -------------------------------------------------------- */

static int64_t
mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Takes this subtask's part of checkpoint ckpt: every operator's own state
 * and the keyed state go to <ckpt_dir>/chk-<n>/v<V>-s<S>/, then the rows
 * staged so far and the barrier go downstream, in that order on every
 * channel. A failure declines the checkpoint (the coordinator counts it);
 * the barrier is forwarded anyway so that downstream does not wait. */
static int
take_checkpoint(weir_task_t *t, int64_t ckpt)
{
    char dir[PATH_MAX], file[PATH_MAX + 16];
    weir_buf_t blobs = WEIR_BUF_INIT, one = WEIR_BUF_INIT;
    weir_err_t err = { 0 };
    uint64_t bytes = 0;
    int64_t t0 = mono_us();
    int64_t align_us = t->align_ckpt == ckpt && t->align_start > 0 ? t0 - t->align_start : 0;
    msgpack_packer pk;
    int nsnap = 0, rc = 0;

    t->done_ckpt = ckpt;
    if (t->ended && t->final_ckpt == 0)
        t->final_ckpt = ckpt;                /* what finish() left is in this one */
    snprintf(dir, sizeof(dir), "%s/chk-%lld/v%d-s%d", t->job->ckpt_dir, (long long)ckpt,
             t->vertex, t->subtask);
    if (t->job->ckpt_dir == NULL) {
        rc = weir_err_set(&err, WEIR_ESTATE, "no checkpoint directory");
        goto forward;
    }
    if ((rc = weir_mkdir_p(dir, &err)) != 0)
        goto forward;
    for (int i = 0; i < t->v->nops; i++)
        nsnap += t->ops[i].cfg->kind->snapshot != NULL;
    msgpack_packer_init(&pk, &blobs, weir_buf_msgpack_write);
    msgpack_pack_map(&pk, (size_t)nsnap);
    for (int i = 0; i < t->v->nops && rc == 0; i++) {
        weir_op_t *op = &t->ops[i];
        const char *name = op->cfg->name;

        if (op->cfg->kind->snapshot == NULL)
            continue;
        weir_buf_reset(&one);
        rc = op->cfg->kind->snapshot(op, ckpt, &one, &err);
        if (rc != 0)
            break;
        msgpack_pack_str(&pk, strlen(name));
        msgpack_pack_str_body(&pk, name, strlen(name));
        msgpack_pack_bin(&pk, one.len);
        msgpack_pack_bin_body(&pk, one.data, one.len);
    }
    if (rc == 0 && nsnap > 0) {
        snprintf(file, sizeof(file), "%s/ops", dir);
        rc = weir_write_file_atomic(file, blobs.data, blobs.len, &err);
        bytes += blobs.len;
    }
    if (rc == 0 && t->state != NULL) {
        uint64_t kb = 0;
        snprintf(file, sizeof(file), "%s/keyed", dir);
        rc = weir_state_snapshot(t->state, file, &kb, &err);
        bytes += kb;
    }
forward:
    weir_buf_free(&blobs);
    weir_buf_free(&one);
    if (rc != 0) {
        char msg[WEIR_ERR_MSG_MAX + 32];
        snprintf(msg, sizeof(msg), "%s", err.msg[0] ? err.msg : weir_strerror(rc));
        weir_log_warn("%s checkpoint %lld declined: %s", t->prefix, (long long)ckpt, msg);
        t->env.ack(t->env.tm, t, ckpt, 0, mono_us() - t0, align_us, msg);
    }
    int frc = flush_all(t);
    for (int c = 0; c < t->nout && frc == 0; c++)
        frc = chan_send_marker(t, &t->out[c], WEIR_DATA_BARRIER, ckpt);
    if (frc != 0)
        return frc;
    if (rc == 0)
        t->env.ack(t->env.tm, t, ckpt, bytes, mono_us() - t0, align_us, NULL);
    return 0;
}

/* Puts the items held while aligning back at the head of the queue, each
 * channel's in their order. */
static void
release_held(weir_task_t *t)
{
    in_item_t *head = NULL, *tail = NULL;

    for (int c = 0; c < t->nin; c++) {
        t->in_barrier[c] = false;
        if (t->held_head[c] == NULL)
            continue;
        if (tail == NULL)
            head = t->held_head[c];
        else
            tail->next = t->held_head[c];
        tail = t->held_tail[c];
        t->held_head[c] = t->held_tail[c] = NULL;
    }
    t->align_ckpt = 0;
    if (head == NULL)
        return;
    pthread_mutex_lock(&t->mu);
    tail->next = t->q_head;
    t->q_head = head;
    if (t->q_tail == NULL)
        t->q_tail = tail;
    pthread_mutex_unlock(&t->mu);
}

/* Completes the alignment once every open input channel delivered the
 * barrier (closed channels count as aligned). */
static int
maybe_aligned(weir_task_t *t)
{
    int rc;

    if (t->align_ckpt == 0)
        return 0;
    for (int c = 0; c < t->nin; c++)
        if (!t->in[c].eos && !t->in_barrier[c])
            return 0;
    rc = take_checkpoint(t, t->align_ckpt);
    release_held(t);
    return rc;
}

static int
on_barrier(weir_task_t *t, int chan, int64_t ckpt)
{
    if (ckpt <= t->done_ckpt || ckpt < t->align_ckpt)
        return 0;                            /* stale: a later one is under way */
    if (ckpt > t->align_ckpt) {
        if (t->align_ckpt != 0) {
            weir_log_warn("%s checkpoint %lld abandoned for %lld", t->prefix,
                          (long long)t->align_ckpt, (long long)ckpt);
            release_held(t);
        }
        t->align_ckpt = ckpt;
        t->align_start = mono_us();
    }
    t->in_barrier[chan] = true;
    return maybe_aligned(t);
}

/* Passes a completed checkpoint to the operators (task thread). */
static int
run_notify(weir_task_t *t)
{
    int64_t n;

    pthread_mutex_lock(&t->mu);
    n = t->complete_ckpt;
    pthread_mutex_unlock(&t->mu);
    if (n <= t->notified_ckpt)
        return 0;
    t->notified_ckpt = n;
    for (int i = 0; i < t->v->nops; i++) {
        weir_op_t *op = &t->ops[i];
        if (op->cfg->kind->notify_complete == NULL)
            continue;
        int rc = op->cfg->kind->notify_complete(op, n, &t->err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Hands each operator its blobs from the restored checkpoint. */
static int
restore_ops(weir_task_t *t)
{
    const weir_restore_meta_t *m = t->job->restore;
    int rc = 0;

    if (m == NULL)
        return 0;
    for (int i = 0; i < t->v->nops && rc == 0; i++) {
        weir_op_t *op = &t->ops[i];
        const char *name = op->cfg->name;
        int k, oldv, oldp;
        weir_buf_t *files = NULL;
        msgpack_unpacked *un = NULL;
        weir_op_blob_t *blobs = NULL;
        int nblobs = 0;

        if (op->cfg->kind->restore == NULL)
            continue;
        for (k = 0; k < m->nnodes && strcmp(m->node[k], name) != 0; k++)
            ;
        if (k == m->nnodes) {
            rc = op->cfg->kind->restore(op, t->job->restore_ckpt, 0, NULL, 0, &t->err);
            continue;
        }
        oldv = m->vertex[k];
        oldp = m->parallelism[k];
        files = calloc((size_t)oldp, sizeof(*files));
        un = calloc((size_t)oldp, sizeof(*un));
        blobs = calloc((size_t)oldp, sizeof(*blobs));
        if (files == NULL || un == NULL || blobs == NULL) {
            rc = weir_err_set(&t->err, WEIR_ENOMEM, "out of memory");
            goto next;
        }
        for (int s = 0; s < oldp; s++) {
            char path[PATH_MAX];
            size_t off = 0;
            weir_err_t e = { 0 };

            msgpack_unpacked_init(&un[s]);
            snprintf(path, sizeof(path), "%s/v%d-s%d/ops", t->job->restore_dir, oldv, s);
            if (weir_read_file(path, &files[s], &e) != 0)
                continue;                    /* that subtask saved nothing */
            if (msgpack_unpack_next(&un[s], files[s].data, files[s].len, &off) !=
                    MSGPACK_UNPACK_SUCCESS || un[s].data.type != MSGPACK_OBJECT_MAP) {
                rc = weir_err_set(&t->err, WEIR_EPARSE, "%s: corrupt operator state '%s'",
                                  t->prefix, path);
                break;
            }
            for (uint32_t e2 = 0; e2 < un[s].data.via.map.size; e2++) {
                const msgpack_object_kv *kv = &un[s].data.via.map.ptr[e2];
                if (kv->key.type == MSGPACK_OBJECT_STR && kv->val.type == MSGPACK_OBJECT_BIN &&
                    kv->key.via.str.size == strlen(name) &&
                    memcmp(kv->key.via.str.ptr, name, strlen(name)) == 0) {
                    blobs[nblobs].subtask = s;
                    blobs[nblobs].data = kv->val.via.bin.ptr;
                    blobs[nblobs].len = kv->val.via.bin.size;
                    nblobs++;
                }
            }
        }
        if (rc == 0)
            rc = op->cfg->kind->restore(op, t->job->restore_ckpt, oldp, blobs, nblobs, &t->err);
        if (rc == 0)
            weir_log_info("%s restored '%s' from checkpoint %lld (%d of %d old subtask(s))",
                          t->prefix, name, (long long)t->job->restore_ckpt, nblobs, oldp);
next:
        for (int s = 0; files != NULL && s < oldp; s++) {
            weir_buf_free(&files[s]);
            msgpack_unpacked_destroy(&un[s]);
        }
        free(files);
        free(un);
        free(blobs);
    }
    return rc;
}

static int open_state(weir_task_t *t);

/* ---- the thread --------------------------------------------------------- */

static int
run_source(weir_task_t *t)
{
    weir_op_t *src = &t->ops[0];
    weir_batch_t *out = t->outb[0];
    int rc = 0;

    while (!t->canceled) {
        int64_t idle = 0, trig;

        pthread_mutex_lock(&t->mu);
        trig = t->trigger_ckpt;
        pthread_mutex_unlock(&t->mu);
        if (trig > t->done_ckpt && (rc = take_checkpoint(t, trig)) != 0)
            return rc;
        if ((rc = run_notify(t)) != 0)
            return rc;
        weir_batch_clear(out);
        if (__atomic_load_n(&t->drain, __ATOMIC_ACQUIRE)) {
            weir_log_info("%s drained: ending its input", t->prefix);
            rc = WEIR_EOS;
        } else {
            rc = src->cfg->kind->poll(src, out, WEIR_BATCH_ROWS, &idle, &t->err);
        }
        if (rc != 0 && rc != WEIR_EOS)
            return rc;
        if (out->nrows > 0) {
            weir_metric_add(&t->m_op_out[0], (uint64_t)out->nrows);
            if (t->wmc != NULL && !src->cfg->kind->own_event_time)
                observe_batch(t, out);
            emit_lag(t);
            int rc2 = t->v->nops > 1 ? run_chain(t, 1, 0, out) : emit(t, out);
            if (rc2 != 0)
                return rc2;
        }
        if (rc == WEIR_EOS) {
            /* the end of event time, as Flink's sources send at the end of
             * input: every event-time timer downstream fires */
            if ((rc = advance_watermark(t, 1, WEIR_WM_MAX)) != 0)
                return rc;
            if (!t->final_mode)
                return finish_chain(t);
            if ((rc = end_of_data(t)) != 0)
                return rc;
            return wait_final(t);
        }
        if (t->wmc != NULL && (rc = source_watermark(t, mono_us())) != 0)
            return rc;
        if (out->nrows < WEIR_BATCH_ROWS) {
            /* caught up with the source: send what is staged */
            if ((rc = flush_all(t)) != 0)
                return rc;
        }
        if (idle > 0 && out->nrows == 0) {
            pthread_mutex_lock(&t->mu);
            if (!t->canceled && t->trigger_ckpt <= t->done_ckpt &&
                t->complete_ckpt <= t->notified_ckpt) {
                uint64_t w0 = now_us();
                timed_wait(t, idle < 200000 ? idle : 200000);
                weir_metric_add(&t->m_idle, now_us() - w0);
            }
            pthread_mutex_unlock(&t->mu);
        }
    }
    return WEIR_ECANCELED;
}

static int
run_inputs(weir_task_t *t)
{
    bool exactly_once = t->job->plan->ckpt.exactly_once;
    int rc;

    while (!t->canceled) {
        in_item_t *it;

        if ((rc = run_notify(t)) != 0)
            return rc;
        pthread_mutex_lock(&t->mu);
        if (t->q_head == NULL) {
            pthread_mutex_unlock(&t->mu);
            /* nothing queued: send what is staged before waiting */
            if ((rc = flush_all(t)) != 0)
                return rc;
            pthread_mutex_lock(&t->mu);
            uint64_t w0 = now_us();
            while (t->q_head == NULL && !t->canceled && t->complete_ckpt <= t->notified_ckpt)
                timed_wait(t, 200000);
            weir_metric_add(&t->m_idle, now_us() - w0);
        }
        it = t->q_head;
        if (it == NULL || t->canceled) {
            pthread_mutex_unlock(&t->mu);
            if (t->canceled)
                break;
            continue;                        /* woken for a notification */
        }
        t->q_head = it->next;
        if (t->q_head == NULL)
            t->q_tail = NULL;
        pthread_mutex_unlock(&t->mu);

        in_chan_t *ic = &t->in[it->chan];
        if (exactly_once && t->align_ckpt != 0 && t->in_barrier[it->chan]) {
            /* this channel is past the barrier: hold its items until every
             * other channel reaches it too (aligned checkpoint) */
            it->next = NULL;
            if (t->held_tail[it->chan] != NULL)
                t->held_tail[it->chan]->next = it;
            else
                t->held_head[it->chan] = it;
            t->held_tail[it->chan] = it;
            continue;
        }
        if (it->kind == WEIR_DATA_BARRIER) {
            int64_t ckpt = it->ckpt;
            free(it);
            if ((rc = on_barrier(t, (int)(ic - t->in), ckpt)) != 0)
                return rc;
            continue;
        }
        if (it->kind == WEIR_DATA_WATERMARK) {
            int64_t wm = it->ckpt;
            free(it);
            if (!ic->eos && (rc = on_watermark_item(t, (int)(ic - t->in), wm)) != 0)
                return rc;
            continue;
        }
        if (it->kind == WEIR_DATA_END_OF_DATA) {
            free(it);
            if (!ic->eos && !ic->data_end) {
                ic->data_end = true;
                if (--t->data_open == 0 && t->final_mode && (rc = end_of_data(t)) != 0)
                    return rc;
            }
            continue;
        }
        if (it->kind == WEIR_DATA_EOS) {
            free(it);
            if (!ic->eos) {
                ic->eos = true;
                t->in_open--;
                if (!ic->data_end) {
                    ic->data_end = true;
                    t->data_open--;
                }
                t->wm_ch[ic - t->in].ended = true;
                if ((rc = maybe_aligned(t)) != 0)
                    return rc;
                if (t->final_mode && t->data_open == 0 && (rc = end_of_data(t)) != 0)
                    return rc;
                if (t->in_open == 0)
                    return t->final_mode ? wait_final(t) : finish_chain(t);
                if ((rc = input_watermark(t)) != 0)
                    return rc;
            }
            continue;
        }
        weir_batch_t *b = t->inb[ic->input];
        weir_batch_clear(b);
        weir_metric_add(&t->m_bin, it->len);
        rc = weir_codec_decode_rows(it->data + it->off, it->len, b, &t->err);
        if (rc == 0)
            weir_metric_add(&t->m_rin, (uint64_t)b->nrows);
        free(it->data);
        free(it);
        return_credit(t, ic);
        if (rc != 0)
            return rc;
        rc = run_chain(t, 0, ic->input, b);
        if (rc != 0)
            return rc;
    }
    return WEIR_ECANCELED;
}

/* Whether the restored checkpoint says this subtask had finished (which)
 * or had ended its input (ended): then everything it had to give is in the
 * state downstream, and it must not run again. At another parallelism only
 * a vertex that had as a whole counts. */
static bool
restored_as(const weir_task_t *t, bool ended)
{
    const weir_restore_meta_t *m = t->job->restore;
    bool *const *flags;
    int k, oldp;

    if (m == NULL)
        return false;
    flags = ended ? m->ended : m->finished;
    for (k = 0; k < m->nnodes && strcmp(m->node[k], t->v->ops[0]->name) != 0; k++)
        ;
    if (k == m->nnodes || flags[k] == NULL)
        return false;
    oldp = m->parallelism[k];
    if (oldp == t->v->parallelism)
        return flags[k][t->subtask];
    for (int s = 0; s < oldp; s++)
        if (!flags[k][s])
            return false;
    return true;
}

static bool finished_on_restore(const weir_task_t *t) { return restored_as(t, false); }

static void *
task_main(void *arg)
{
    weir_task_t *t = arg;
    bool ended;
    int rc = 0;

    if (finished_on_restore(t)) {
        weir_log_info("%s had finished before checkpoint %lld: not run again", t->prefix,
                      (long long)t->job->restore_ckpt);
        t->env.report(t->env.tm, t, WEIR_TASK_RUNNING, NULL);
        for (int c = 0; c < t->nout && rc == 0; c++)
            rc = chan_send_eos(t, &t->out[c]);
        if (rc == 0) {
            t->env.report(t->env.tm, t, WEIR_TASK_FINISHED, NULL);
        } else {
            weir_log_error("%s failed: %s", t->prefix, weir_strerror(rc));
            t->env.report(t->env.tm, t, WEIR_TASK_FAILED, weir_strerror(rc));
        }
        __atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
        return NULL;
    }
    /* a task that had ended its input and waited for the restored
     * checkpoint: its operators open and restore (a sink commits what that
     * checkpoint held), process nothing, and the task ends */
    ended = restored_as(t, true);
    rc = open_state(t);
    if (rc == 0 && t->wmc != NULL && !ended) {
        rc = weir_wm_gen_init(&t->wm_gen, 1, t->wmc->out_of_orderness_us,
                              t->wmc->idle_timeout_us, mono_us());
        if (rc == 0 && t->ops[0].cfg->kind->own_event_time)
            t->ctx.wm = &t->wm_gen;
        t->wm_next = mono_us() + t->wmc->interval_us;
    }
    for (t->opened = 0; rc == 0 && t->opened < t->v->nops; t->opened++) {
        weir_op_t *op = &t->ops[t->opened];
        if (op->cfg->kind->open != NULL && (rc = op->cfg->kind->open(op, &t->err)) != 0)
            break;
    }
    if (rc == 0)
        rc = restore_ops(t);
    if (rc == 0 && ended)
        weir_log_info("%s had ended its input before checkpoint %lld: committed, not run "
                      "again", t->prefix, (long long)t->job->restore_ckpt);
    if (rc == 0) {
        t->env.report(t->env.tm, t, WEIR_TASK_RUNNING, NULL);
        rc = ended ? send_eos_all(t) : t->v->in_edges == NULL ? run_source(t) : run_inputs(t);
    }
    for (int i = t->opened - 1; i >= 0; i--)
        if (t->ops[i].cfg->kind->close != NULL)
            t->ops[i].cfg->kind->close(&t->ops[i]);
    /* the working state ends with the task (what survives is in
     * checkpoints); dropped here, not on the task manager's loop */
    if (t->state != NULL) {
        weir_state_backend_drop(t->state);
        t->state = NULL;
        t->ctx.state = NULL;
    }

    if (rc == 0) {
        weir_log_info("%s finished", t->prefix);
        t->env.report(t->env.tm, t, WEIR_TASK_FINISHED, NULL);
    } else if (t->canceled || rc == WEIR_ECANCELED) {
        weir_log_info("%s canceled", t->prefix);
        t->env.report(t->env.tm, t, WEIR_TASK_CANCELED, NULL);
    } else {
        char msg[WEIR_ERR_MSG_MAX + 64];
        snprintf(msg, sizeof(msg), "%s", t->err.msg[0] ? t->err.msg : weir_strerror(rc));
        weir_log_error("%s failed: %s", t->prefix, msg);
        t->env.report(t->env.tm, t, WEIR_TASK_FAILED, msg);
    }
    __atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* ---- set-up ------------------------------------------------------------- */

/* The keyed-state snapshot directories of the restored checkpoint whose
 * key groups overlap this subtask's: one at the same parallelism, several
 * after rescaling. */
static int
keyed_restore_dirs(weir_task_t *t, char ***out, int *n, weir_err_t *err)
{
    const weir_restore_meta_t *m = t->job->restore;
    const char *head = t->v->ops[0]->name;
    char **dirs;
    int k, oldv, oldp;

    *out = NULL;
    *n = 0;
    for (k = 0; k < m->nnodes && strcmp(m->node[k], head) != 0; k++)
        ;
    if (k == m->nnodes)
        return 0;                            /* a new operator: starts empty */
    if (m->max_parallelism != t->ctx.max_parallelism)
        return weir_err_set(err, WEIR_EINVAL, "the checkpoint was taken with max_parallelism %d, "
                            "the job has %d: keyed state cannot be redistributed",
                            m->max_parallelism, t->ctx.max_parallelism);
    oldv = m->vertex[k];
    oldp = m->parallelism[k];
    dirs = calloc((size_t)oldp, sizeof(*dirs));
    if (dirs == NULL)
        return WEIR_ENOMEM;
    for (int s = 0; s < oldp; s++) {
        int f = weir_key_group_first(s, oldp, m->max_parallelism);
        int l = weir_key_group_last(s, oldp, m->max_parallelism);
        char path[PATH_MAX];
        struct stat st;

        if (l < t->ctx.kg_first || f > t->ctx.kg_last)
            continue;
        snprintf(path, sizeof(path), "%s/v%d-s%d/keyed", t->job->restore_dir, oldv, s);
        if (stat(path, &st) != 0)
            continue;
        if ((dirs[*n] = strdup(path)) == NULL) {
            weir_str_list_free(dirs, *n);
            return WEIR_ENOMEM;
        }
        (*n)++;
    }
    *out = dirs;
    return 0;
}

/* Opens (and restores) the subtask's keyed state; in the task thread. */
static int
open_state(weir_task_t *t)
{
    weir_tm_job_t *job = t->job;
    const weir_plan_t *p = job->plan;
    weir_err_t *err = &t->err;
    int vertex = t->vertex, subtask = t->subtask, rc = 0;
    char **dirs = NULL;
    int ndirs = 0;

    if (!t->v->keyed)
        return 0;
    if (job->restore != NULL && (rc = keyed_restore_dirs(t, &dirs, &ndirs, err)) != 0)
        return rc;
    if (p->state_in_memory) {
        rc = weir_state_backend_memory(t->ctx.kg_first, t->ctx.kg_last, &t->state);
        if (rc == 0 && ndirs > 0)
            rc = weir_state_restore(t->state, (const char *const *)dirs, ndirs, err);
    } else {
        /* one RocksDB instance per keyed subtask attempt, like Flink's one
         * per keyed operator subtask: isolated, dropped as a whole */
        char dir[1024];
        snprintf(dir, sizeof(dir), "%s/%s/v%d-%d-a%d", job->state_dir, job->id, vertex,
                 subtask, job->attempt);
        if (ndirs > 0)
            rc = weir_state_backend_rocksdb_restore(dir, t->ctx.kg_first, t->ctx.kg_last,
                                                    (const char *const *)dirs, ndirs,
                                                    &t->state, err);
        else
            rc = weir_state_backend_rocksdb(dir, t->ctx.kg_first, t->ctx.kg_last, &t->state,
                                            err);
    }
    if (rc == 0 && job->restore != NULL)
        weir_log_info("%s restored keyed state of checkpoint %lld from %d snapshot(s)",
                      t->prefix, (long long)job->restore_ckpt, ndirs);
    weir_str_list_free(dirs, ndirs);
    if (rc != 0 && err->msg[0] == '\0')
        weir_err_set(err, rc, "cannot open the keyed state: %s", weir_strerror(rc));
    t->ctx.state = t->state;
    return rc;
}

int
weir_task_create(weir_tm_job_t *job, int vertex, int subtask, const weir_task_env_t *env,
                 weir_task_t **out, weir_err_t *err)
{
    const weir_plan_t *p = job->plan;
    const weir_plan_vertex_t *v = &p->vertices[vertex];
    weir_task_t *t;
    int rc = WEIR_ENOMEM;

    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    t->job = job;
    t->v = v;
    t->vertex = vertex;
    t->subtask = subtask;
    t->env = *env;
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cond, NULL);
    snprintf(t->prefix, sizeof(t->prefix), "[job:%.8s vertex:%s#%d/%d]", job->id, v->name,
             subtask + 1, v->parallelism);

    /* input channels: one per (in edge, upstream subtask) */
    for (int e = 0; e < v->nin; e++)
        t->nin += p->vertices[p->edges[v->in_edges[e]].src_vertex].parallelism;
    for (int e = 0; e < v->nout; e++)
        t->nout += p->vertices[p->edges[v->out_edges[e]].dst_vertex].parallelism;
    t->in = calloc((size_t)t->nin + 1, sizeof(*t->in));
    t->out = calloc((size_t)t->nout + 1, sizeof(*t->out));
    t->edges_out = calloc((size_t)v->nout + 1, sizeof(*t->edges_out));
    t->ops = calloc((size_t)v->nops, sizeof(*t->ops));
    t->outb = calloc((size_t)v->nops, sizeof(*t->outb));
    t->inb = calloc(WEIR_MAX_INPUTS, sizeof(*t->inb));
    t->m_op_in = calloc((size_t)v->nops, sizeof(uint64_t));
    t->m_op_out = calloc((size_t)v->nops, sizeof(uint64_t));
    t->opm.pending_records = -1;
    t->opm.event_time_us = WEIR_WM_NONE;
    t->in_wm = t->out_wm = WEIR_WM_NONE;
    t->m_in_wm = t->m_out_wm = WEIR_WM_NONE;
    t->m_emit_lag_ms = -1;
    if (v->nin == 0 && v->ops[0]->watermark.on)
        t->wmc = &v->ops[0]->watermark;
    t->wm_ch = calloc((size_t)t->nin + 1, sizeof(*t->wm_ch));
    t->in_barrier = calloc((size_t)t->nin + 1, sizeof(*t->in_barrier));
    t->held_head = calloc((size_t)t->nin + 1, sizeof(*t->held_head));
    t->held_tail = calloc((size_t)t->nin + 1, sizeof(*t->held_tail));
    if (!t->in || !t->out || !t->edges_out || !t->ops || !t->outb || !t->inb ||
        !t->in_barrier || !t->held_head || !t->held_tail || !t->m_op_in || !t->m_op_out ||
        !t->wm_ch)
        goto fail;
    t->done_ckpt = t->notified_ckpt = t->complete_ckpt = t->trigger_ckpt = job->restore_ckpt;

    int k = 0;
    for (int e = 0; e < v->nin; e++) {
        const weir_plan_edge_t *pe = &p->edges[v->in_edges[e]];
        int up = p->vertices[pe->src_vertex].parallelism;
        for (int s = 0; s < up; s++, k++) {
            t->in[k].edge = v->in_edges[e];
            t->in[k].src = s;
            t->in[k].input = pe->dst_input;
            t->in[k].addr = job->addr[pe->src_vertex][s];
        }
        if (t->inb[pe->dst_input] == NULL &&
            (t->inb[pe->dst_input] = weir_batch_new(pe->schema, WEIR_BATCH_ROWS)) == NULL)
            goto fail;
    }
    /* a forward channel exists only to the same subtask index; the others
     * of that edge are never used but keep indexing simple */
    t->in_open = 0;
    for (int i = 0; i < t->nin; i++) {
        const weir_plan_edge_t *pe = &p->edges[t->in[i].edge];
        t->wm_ch[i].wm = WEIR_WM_NONE;
        if (pe->partition == WEIR_PART_FORWARD && t->in[i].src != subtask) {
            t->in[i].eos = true;
            t->in[i].data_end = true;
            t->wm_ch[i].ended = true;
        } else {
            t->in_open++;
            t->data_open++;
        }
    }

    k = 0;
    t->nedges_out = v->nout;
    for (int e = 0; e < v->nout; e++) {
        const weir_plan_edge_t *pe = &p->edges[v->out_edges[e]];
        int down = p->vertices[pe->dst_vertex].parallelism;
        t->edges_out[e].pe = pe;
        t->edges_out[e].first = k;
        t->edges_out[e].n = down;
        t->edges_out[e].rr = subtask % down;
        for (int d = 0; d < down; d++, k++) {
            out_chan_t *c = &t->out[k];
            c->edge = v->out_edges[e];
            c->dst = d;
            c->addr = job->addr[pe->dst_vertex][d];
            c->credits = job->credits;
            c->nfields = pe->schema->nfields;
        }
    }
    for (int i = 0; i < t->nout; i++)
        if (chan_reset(t, &t->out[i]) != 0)
            goto fail;

    t->ctx.job_id = job->id;
    t->ctx.log_prefix = t->prefix;
    t->ctx.subtask = subtask;
    t->ctx.parallelism = v->parallelism;
    t->ctx.max_parallelism = p->max_parallelism;
    t->ctx.kg_first = weir_key_group_first(subtask, v->parallelism, p->max_parallelism);
    t->ctx.kg_last = weir_key_group_last(subtask, v->parallelism, p->max_parallelism);
    t->ctx.canceled = &t->canceled;
    t->ctx.checkpoint_interval_us = p->ckpt.interval_us;
    t->ctx.exactly_once = p->ckpt.exactly_once;
    t->final_mode = p->ckpt.interval_us > 0;
    t->ctx.final_checkpoint = t->final_mode;
    t->ctx.attempt = job->attempt;
    t->ctx.metrics = &t->opm;
    /* keyed state is opened (and restored) in the task thread, not here
     * on the task manager's loop: a restore may copy files for seconds */
    for (int o = 0; o < v->nops; o++) {
        t->ops[o].cfg = v->ops[o];
        t->ops[o].ctx = &t->ctx;
        if (v->ops[o]->output_schema != NULL &&
            (t->outb[o] = weir_batch_new(v->ops[o]->output_schema, WEIR_BATCH_ROWS)) == NULL)
            goto fail;
    }
    *out = t;
    return 0;

fail:
    weir_task_destroy(t);
    return weir_err_set(err, rc, "cannot create task: %s", weir_strerror(rc));
}

int
weir_task_link(weir_task_t *t, weir_err_t *err)
{
    for (int i = 0; i < t->nout; i++) {
        out_chan_t *c = &t->out[i];
        const weir_plan_edge_t *pe = &t->job->plan->edges[c->edge];

        if (strcmp(c->addr, t->job->self_addr) != 0)
            continue;
        c->local = weir_tm_job_find(t->job, pe->dst_vertex, c->dst);
        if (c->local == NULL)
            return weir_err_set(err, WEIR_ESTATE, "subtask %d of vertex %d placed here but not deployed",
                                c->dst, pe->dst_vertex);
        for (int j = 0; j < c->local->nin; j++)
            if (c->local->in[j].edge == c->edge && c->local->in[j].src == t->subtask) {
                c->local_in = j;
                c->local->in[j].local = t;
                c->local->in[j].local_out = i;
            }
    }
    return 0;
}

int
weir_task_start(weir_task_t *t)
{
    t->m_busy_start = now_us();
    if (pthread_create(&t->thread, NULL, task_main, t) != 0)
        return WEIR_ENOMEM;
    t->started = true;
    return 0;
}

void
weir_task_cancel(weir_task_t *t)
{
    pthread_mutex_lock(&t->mu);
    t->canceled = 1;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->mu);
    if (!t->started && !t->done) {
        /* deployed but never started: no thread will report, so do it here */
        t->env.report(t->env.tm, t, WEIR_TASK_CANCELED, NULL);
        __atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
    }
}

void
weir_task_destroy(weir_task_t *t)
{
    in_item_t *it, *next;

    if (t == NULL)
        return;
    if (t->started)
        pthread_join(t->thread, NULL);
    for (it = t->q_head; it != NULL; it = next) {
        next = it->next;
        free(it->data);
        free(it);
    }
    for (int c = 0; t->held_head != NULL && c < t->nin; c++)
        for (it = t->held_head[c]; it != NULL; it = next) {
            next = it->next;
            free(it->data);
            free(it);
        }
    free(t->held_head);
    free(t->held_tail);
    free(t->wm_ch);
    weir_wm_gen_free(&t->wm_gen);
    free(t->opm.splits);
    free(t->in_barrier);
    free(t->m_op_in);
    free(t->m_op_out);
    for (int i = 0; i < t->nout && t->out; i++)
        weir_buf_free(&t->out[i].buf);
    for (int o = 0; t->outb && o < t->v->nops; o++)
        weir_batch_destroy(t->outb[o]);
    for (int i = 0; t->inb && i < WEIR_MAX_INPUTS; i++)
        weir_batch_destroy(t->inb[i]);
    /* the working state ends with the task; what survives is in checkpoints */
    if (t->state != NULL)
        weir_state_backend_drop(t->state);
    free(t->in);
    free(t->out);
    free(t->edges_out);
    free(t->ops);
    free(t->outb);
    free(t->inb);
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cond);
    free(t);
}

/* ---- network thread entry points ----------------------------------------- */

static int
find_in(const weir_task_t *t, int edge, int src)
{
    for (int i = 0; i < t->nin; i++)
        if (t->in[i].edge == edge && t->in[i].src == src)
            return i;
    return -1;
}

void
weir_task_deliver_batch(weir_task_t *t, int edge, int src, const char *payload, size_t len)
{
    int c = find_in(t, edge, src);
    in_item_t *it;

    if (c < 0)
        return;
    it = malloc(sizeof(*it));
    if (it == NULL)
        return;
    it->data = malloc(len ? len : 1);
    if (it->data == NULL) {
        free(it);
        return;
    }
    memcpy(it->data, payload, len);
    it->kind = WEIR_DATA_BATCH;
    it->chan = c;
    it->off = 0;
    it->len = len;
    queue_push(t, it);
}


void
weir_task_deliver_credit(weir_task_t *t, int edge, int dst, int n)
{
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < t->nout; i++) {
        if (t->out[i].edge == edge && t->out[i].dst == dst) {
            t->out[i].credits += n;
            pthread_cond_signal(&t->cond);
            break;
        }
    }
    pthread_mutex_unlock(&t->mu);
}

static void
deliver_marker(weir_task_t *t, int edge, int src, int kind, int64_t n)
{
    int c = find_in(t, edge, src);
    in_item_t *it;

    if (c < 0 || (it = calloc(1, sizeof(*it))) == NULL)
        return;
    it->kind = kind;
    it->chan = c;
    it->ckpt = n;
    queue_push(t, it);
}

void
weir_task_deliver_end_of_data(weir_task_t *t, int edge, int src)
{
    deliver_marker(t, edge, src, WEIR_DATA_END_OF_DATA, 0);
}

bool
weir_task_ended(const weir_task_t *t)
{
    return t->ended;
}

void
weir_task_deliver_eos(weir_task_t *t, int edge, int src)
{
    deliver_marker(t, edge, src, WEIR_DATA_EOS, 0);
}

void
weir_task_deliver_watermark(weir_task_t *t, int edge, int src, int64_t wm)
{
    deliver_marker(t, edge, src, WEIR_DATA_WATERMARK, wm);
}

void
weir_task_deliver_barrier(weir_task_t *t, int edge, int src, int64_t ckpt)
{
    deliver_marker(t, edge, src, WEIR_DATA_BARRIER, ckpt);
}

bool
weir_task_is_source(const weir_task_t *t)
{
    return t->v->nin == 0;
}

void
weir_task_trigger(weir_task_t *t, int64_t ckpt)
{
    if (!weir_task_is_source(t))
        return;
    pthread_mutex_lock(&t->mu);
    if (ckpt > t->trigger_ckpt)
        t->trigger_ckpt = ckpt;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->mu);
}

void
weir_task_drain(weir_task_t *t)
{
    if (!weir_task_is_source(t))
        return;
    pthread_mutex_lock(&t->mu);
    __atomic_store_n(&t->drain, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->mu);
}

void
weir_task_notify(weir_task_t *t, int64_t ckpt)
{
    pthread_mutex_lock(&t->mu);
    if (ckpt > t->complete_ckpt)
        t->complete_ckpt = ckpt;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->mu);
}

/* ---- restore metadata ------------------------------------------------------ */

void
weir_restore_meta_free(weir_restore_meta_t *m)
{
    if (m == NULL)
        return;
    for (int i = 0; i < m->nnodes; i++)
        free(m->node[i]);
    free(m->node);
    for (int i = 0; m->finished != NULL && i < m->nnodes; i++)
        free(m->finished[i]);
    free(m->finished);
    for (int i = 0; m->ended != NULL && i < m->nnodes; i++)
        free(m->ended[i]);
    free(m->ended);
    free(m->vertex);
    free(m->parallelism);
    free(m);
}

int
weir_restore_meta_load(const char *chk_dir, weir_restore_meta_t **out, weir_err_t *err)
{
    char path[PATH_MAX];
    json_error_t je;
    json_t *root, *vertices, *v;
    weir_restore_meta_t *m;
    size_t vi;
    int n = 0;

    *out = NULL;
    snprintf(path, sizeof(path), "%s/_metadata", chk_dir);
    root = json_load_file(path, 0, &je);
    if (root == NULL)
        return weir_err_set(err, WEIR_EIO, "cannot read checkpoint metadata '%s': %s", path,
                            je.text);
    vertices = json_object_get(root, "vertices");
    if (!json_is_array(vertices)) {
        json_decref(root);
        return weir_err_set(err, WEIR_EPARSE, "checkpoint metadata '%s' has no vertices", path);
    }
    json_array_foreach(vertices, vi, v)
        n += (int)json_array_size(json_object_get(v, "ops"));
    m = calloc(1, sizeof(*m));
    if (m == NULL || (m->node = calloc((size_t)n + 1, sizeof(char *))) == NULL ||
        (m->vertex = calloc((size_t)n + 1, sizeof(int))) == NULL ||
        (m->parallelism = calloc((size_t)n + 1, sizeof(int))) == NULL ||
        (m->finished = calloc((size_t)n + 1, sizeof(bool *))) == NULL ||
        (m->ended = calloc((size_t)n + 1, sizeof(bool *))) == NULL) {
        weir_restore_meta_free(m);
        json_decref(root);
        return WEIR_ENOMEM;
    }
    m->max_parallelism = (int)json_integer_value(json_object_get(root, "max_parallelism"));
    json_array_foreach(vertices, vi, v) {
        json_t *ops = json_object_get(v, "ops"), *o;
        size_t oi;
        json_array_foreach(ops, oi, o) {
            if (!json_is_string(o))
                continue;
            m->node[m->nnodes] = strdup(json_string_value(o));
            m->vertex[m->nnodes] = (int)json_integer_value(json_object_get(v, "id"));
            m->parallelism[m->nnodes] = (int)json_integer_value(json_object_get(v, "parallelism"));
            if (m->node[m->nnodes] == NULL || m->parallelism[m->nnodes] < 1) {
                weir_restore_meta_free(m);
                json_decref(root);
                return weir_err_set(err, WEIR_EPARSE, "checkpoint metadata '%s' is malformed",
                                    path);
            }
            for (int which = 0; which < 2; which++) {
                json_t *fin = json_object_get(v, which == 0 ? "finished" : "ended"), *f;
                size_t fi;
                if (json_array_size(fin) > 0) {
                    bool *b = calloc((size_t)m->parallelism[m->nnodes], sizeof(bool));
                    if (b == NULL) {
                        weir_restore_meta_free(m);
                        json_decref(root);
                        return WEIR_ENOMEM;
                    }
                    json_array_foreach(fin, fi, f) {
                        json_int_t s = json_integer_value(f);
                        if (s >= 0 && s < m->parallelism[m->nnodes])
                            b[s] = true;
                    }
                    (which == 0 ? m->finished : m->ended)[m->nnodes] = b;
                }
            }
            m->nnodes++;
        }
    }
    json_decref(root);
    *out = m;
    return 0;
}

void
weir_task_stats(const weir_task_t *t, weir_task_stats_t *o)
{
    uint64_t wall = t->m_busy_start ? now_us() - t->m_busy_start : 0;
    uint64_t waits;

    memset(o, 0, sizeof(*o));
    o->records_in = __atomic_load_n(&t->m_rin, __ATOMIC_RELAXED);
    o->records_out = __atomic_load_n(&t->m_rout, __ATOMIC_RELAXED);
    o->bytes_in = __atomic_load_n(&t->m_bin, __ATOMIC_RELAXED);
    o->bytes_out = __atomic_load_n(&t->m_bout, __ATOMIC_RELAXED);
    o->idle_us = __atomic_load_n(&t->m_idle, __ATOMIC_RELAXED);
    o->backpressured_us = __atomic_load_n(&t->m_bp, __ATOMIC_RELAXED);
    waits = o->idle_us + o->backpressured_us;
    o->busy_us = wall > waits ? wall - waits : 0;
    o->dead_lettered = __atomic_load_n(&t->opm.dead_lettered, __ATOMIC_RELAXED);
    o->pending_records = __atomic_load_n(&t->opm.pending_records, __ATOMIC_RELAXED);
    o->in_wm = __atomic_load_n(&t->m_in_wm, __ATOMIC_RELAXED);
    o->out_wm = __atomic_load_n(&t->m_out_wm, __ATOMIC_RELAXED);
    o->emit_lag_ms = __atomic_load_n(&t->m_emit_lag_ms, __ATOMIC_RELAXED);
    o->nsplits = __atomic_load_n(&t->opm.nsplits, __ATOMIC_ACQUIRE);
    o->splits = t->opm.splits;
    o->nops = t->v->nops < 16 ? t->v->nops : 16;
    for (int i = 0; i < o->nops; i++) {
        o->op_in[i] = __atomic_load_n(&t->m_op_in[i], __ATOMIC_RELAXED);
        o->op_out[i] = __atomic_load_n(&t->m_op_out[i], __ATOMIC_RELAXED);
    }
    /* a source's records come from its first operator */
    if (t->v->nin == 0)
        o->records_in = 0;
}
