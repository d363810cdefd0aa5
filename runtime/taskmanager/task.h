/* runtime/taskmanager/task.h -- one subtask: a thread running an operator chain.
 *
 * Records cross task boundaries in channels. A channel joins one subtask of
 * an upstream vertex to one subtask of a downstream vertex over one edge.
 * The sender stages rows straight into a msgpack frame buffer (no copy of
 * the rows into an intermediate batch); when the buffer is full, or when the
 * task has nothing else to do, the buffer is flushed: it costs one credit and
 * goes to the receiver, either into the receiving task's input queue
 * directly (same task manager) or to the task manager's network thread, which
 * writes it to the peer task manager. The receiver returns the credit when
 * it has consumed the buffer. A channel starts with `credits` credits, so at
 * most credits x buffer size bytes are in flight per channel: a slow
 * consumer stops its producers, nothing is dropped and memory stays bounded.
 *
 * Locking: each task has one mutex guarding its input queue, its output
 * channels' credits and its state flags. The network thread takes it to
 * deliver items and credits; a local receiver takes the sender's to return
 * a credit. No thread ever holds two task mutexes.
 */
#ifndef WEIR_TASKMANAGER_TASK_H
#define WEIR_TASKMANAGER_TASK_H

#include <pthread.h>
#include <stdbool.h>

#include "../../state/keyed_state.h"
#include "../graph/plan.h"
#include "../net/task_state.h"

#define WEIR_JOB_ID_LEN 32

/* data frame types (msgpack array, first element) */
enum {
    WEIR_DATA_BATCH  = 0,   /* [0, job, attempt, edge, src, dst, bin payload] */
    WEIR_DATA_EOS    = 1,   /* [1, job, attempt, edge, src, dst] */
    WEIR_DATA_CREDIT = 2,   /* [2, job, attempt, edge, src, dst, n] */
    WEIR_DATA_BARRIER = 3,  /* [3, job, attempt, edge, src, dst, checkpoint] */
    WEIR_DATA_WATERMARK = 4,/* [4, job, attempt, edge, src, dst, wm us or WEIR_WM_IDLE_MARK] */
    WEIR_DATA_END_OF_DATA = 5, /* [5, job, attempt, edge, src, dst]: no more records; barriers
                                * may still come, then end of stream */
};

typedef struct weir_task weir_task_t;
typedef struct weir_tm_job weir_tm_job_t;

/* What a task needs from its task manager (implemented in taskmanager.c). */
typedef struct weir_task_env {
    /* Sends a whole data frame to the task manager at addr ("host:port");
     * takes ownership of frame->data. Thread-safe. */
    void (*send)(void *tm, const char *addr, weir_buf_t *frame);
    /* The task reached a new state; err may be NULL. Thread-safe. */
    void (*report)(void *tm, weir_task_t *t, weir_task_state_t s, const char *err);
    /* The task took its part of checkpoint ckpt (err NULL; bytes written,
     * the time the snapshot took and the time from the first barrier to the
     * last, aligning), or declined it (err set). Thread-safe. */
    void (*ack)(void *tm, weir_task_t *t, int64_t ckpt, uint64_t bytes, int64_t sync_us,
                int64_t align_us, const char *err);
    /* A source task reached the end of its input and waits for a final
     * checkpoint (the job manager triggers one at once). Thread-safe. */
    void (*ended)(void *tm, weir_task_t *t);
    void *tm;
} weir_task_env_t;

/* One deployed job on this task manager: the plan and the placement of
 * every subtask (which task manager runs it). */
struct weir_tm_job {
    char           id[WEIR_JOB_ID_LEN + 1];
    int            attempt;
    weir_plan_t   *plan;
    char        ***addr;          /* addr[vertex][subtask]: "host:port" */
    const char    *self_addr;     /* this task manager's data address */
    int            ntasks;
    weir_task_t  **tasks;         /* the subtasks deployed here */
    const char    *state_dir;     /* keyed state lives under here (RocksDB) */
    int            credits;       /* initial credits per channel */
    size_t         buffer_bytes;  /* flush threshold per channel */
    char          *ckpt_dir;      /* <checkpoints>/<job id>: chk-<n>/v<V>-s<S>/ (owned) */
    char          *restore_dir;   /* the checkpoint to start from, or NULL (owned) */
    int64_t        restore_ckpt;
    struct weir_restore_meta *restore; /* its metadata, parsed at deploy (owned) */
};

/* What a task needs to know about the checkpoint it restores from: per
 * job file node (operator), the vertex it was in and that vertex's
 * parallelism then. Parsed from the checkpoint's _metadata file. */
typedef struct weir_restore_meta {
    int    nnodes;
    char **node;                  /* node names */
    int   *vertex;                /* old vertex index of node i */
    int   *parallelism;           /* old parallelism of that vertex */
    bool **finished;              /* per node: [old subtask] had finished, or NULL */
    bool **ended;                 /* per node: [old subtask] had ended its input, or NULL */
    int    max_parallelism;
} weir_restore_meta_t;

int  weir_restore_meta_load(const char *chk_dir, weir_restore_meta_t **out, weir_err_t *err);
void weir_restore_meta_free(weir_restore_meta_t *m);

/* Creates the task for (vertex, subtask) of job; does not start it. */
int  weir_task_create(weir_tm_job_t *job, int vertex, int subtask, const weir_task_env_t *env,
                      weir_task_t **out, weir_err_t *err);
/* Resolves channels to local tasks (after every task of the job exists here). */
int  weir_task_link(weir_task_t *t, weir_err_t *err);
int  weir_task_start(weir_task_t *t);
void weir_task_cancel(weir_task_t *t);
/* Waits for the thread (if started) and frees the task. */
void weir_task_destroy(weir_task_t *t);
bool weir_task_done(const weir_task_t *t);

int  weir_task_vertex(const weir_task_t *t);
int  weir_task_subtask(const weir_task_t *t);
weir_tm_job_t *weir_task_job(const weir_task_t *t);

/* Network thread entry points: a data frame arrived for this job. */
void weir_task_deliver_batch(weir_task_t *t, int edge, int src, const char *payload, size_t len);
void weir_task_deliver_eos(weir_task_t *t, int edge, int src);
void weir_task_deliver_credit(weir_task_t *t, int edge, int dst, int n);
void weir_task_deliver_barrier(weir_task_t *t, int edge, int src, int64_t ckpt);
void weir_task_deliver_watermark(weir_task_t *t, int edge, int src, int64_t wm);
void weir_task_deliver_end_of_data(weir_task_t *t, int edge, int src);
/* Whether the task had finished its input when it took its last checkpoint. */
bool weir_task_ended(const weir_task_t *t);

/* Checkpoints, from the task manager's loop. trigger: a source task takes
 * checkpoint ckpt and emits its barrier (others ignore it). notify: ckpt
 * completed everywhere; the task tells its operators. */
void weir_task_trigger(weir_task_t *t, int64_t ckpt);
/* stop --drain: a source task ends its input at its next poll. */
void weir_task_drain(weir_task_t *t);
void weir_task_notify(weir_task_t *t, int64_t ckpt);
bool weir_task_is_source(const weir_task_t *t);

/* A task's counters, as the task manager reports them in heartbeats. */
typedef struct weir_task_stats {
    uint64_t records_in, records_out;     /* task-level: decoded / emitted */
    uint64_t bytes_in, bytes_out;         /* frame payload bytes */
    uint64_t busy_us, idle_us, backpressured_us;
    uint64_t dead_lettered;
    int64_t  pending_records;
    int64_t  in_wm, out_wm;               /* us; WEIR_WM_NONE when none */
    int64_t  emit_lag_ms;                 /* sources; -1 unknown */
    int      nsplits;                     /* sources with splits (Kafka partitions) */
    const weir_split_metrics_t *splits;   /* the task's; valid while it exists */
    int      nops;
    uint64_t op_in[16], op_out[16];       /* per chained operator (first 16) */
} weir_task_stats_t;

void weir_task_stats(const weir_task_t *t, weir_task_stats_t *out);

/* Finds the task of job for (vertex, subtask), or NULL. */
weir_task_t *weir_tm_job_find(const weir_tm_job_t *job, int vertex, int subtask);

#endif
