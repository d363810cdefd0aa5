/* operators/operator.h -- the operator vtable and its contexts.
 *
 * One file per operator kind, each exporting one `const weir_op_kind_t`;
 * operators/registry.c lists them all. The planner looks kinds up by name.
 *
 * Life of an operator:
 *   plan time   configure(cfg)   read params, resolve field names against the
 *                                input schemas, derive the output schema, keep
 *                                what open needs in cfg->conf. Runs in the job
 *                                manager (to validate) and again in every task
 *                                manager (plans are deterministic), so it must
 *                                not touch files, sockets or clocks.
 *   run time    open(op)         per subtask, in the task thread
 *               poll(op, out)    sources only: append rows, or say EOS
 *               process(op, in)  one input batch; append results to out
 *               on_watermark     event time advanced to wm on all inputs
 *               finish(op, out)  every input reached end of stream: flush
 *               close(op)        always called after a successful open
 *   checkpoints restore(op, ...)  after open, before any poll/process, when
 *                                the attempt starts from a checkpoint
 *               snapshot(op, n)  barrier n passed this subtask: append the
 *                                operator's own (non-keyed) state; sinks
 *                                pre-commit what belongs to checkpoint n
 *               notify_complete  checkpoint n completed on every subtask:
 *                                commit (publish files, commit offsets...)
 * Keyed state (ctx->state) is snapshotted and restored by the runtime.
 *
 * Batches passed in are borrowed for the call. 'out' has the operator's
 * output schema, is owned by the runtime and may already hold rows; the
 * operator appends. Sinks get out == NULL.
 */
#ifndef WEIR_OPERATORS_OPERATOR_H
#define WEIR_OPERATORS_OPERATOR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "../runtime/core/batch.h"
#include "../runtime/core/buf.h"
#include "../runtime/core/error.h"
#include "../runtime/graph/jobfile.h"

#define WEIR_MAX_INPUTS 8
#define WEIR_MAX_KEYS   8

typedef struct weir_op_kind weir_op_kind_t;
typedef struct weir_state_backend weir_state_backend_t;

/* A source's `watermark:` block (event time), resolved at plan time:
 *
 *   watermark: {field: ts, max_out_of_orderness: 5s, idle_timeout: 1m, interval: 200ms}
 *
 * Like Flink's WatermarkStrategy.forBoundedOutOfOrderness: the watermark is
 * the largest event time seen minus the out-of-orderness minus 1 ms (Flink's
 * millisecond arithmetic, in microseconds here), per split (Kafka partition)
 * and then the minimum over the splits that are not idle. */
typedef struct weir_wm_conf {
    bool    on;
    int     field;                 /* timestamp column; -1: the source's own
                                    * record time (Kafka message timestamp) */
    int64_t out_of_orderness_us;
    int64_t idle_timeout_us;       /* 0: never idle */
    int64_t interval_us;           /* how often it is emitted (200 ms) */
} weir_wm_conf_t;

/* Plan-time configuration of one operator (a job file node). */
typedef struct weir_op_config {
    /* set by the planner, borrowed, before configure */
    const char           *name;            /* node name */
    const weir_op_kind_t *kind;
    weir_params_t         params;          /* the node's mapping */
    int                   ninputs;
    weir_schema_t        *input_schemas[WEIR_MAX_INPUTS];
    const char           *input_aliases[WEIR_MAX_INPUTS];
    int                   nkeys;           /* key_by fields, 0 when not keyed */
    int                   key_idx[WEIR_MAX_INPUTS][WEIR_MAX_KEYS];
    int                   parallelism;
    int                   max_parallelism;
    weir_wm_conf_t        watermark;       /* sources: set by the planner after configure */
    /* set by configure, owned by the config */
    weir_schema_t        *output_schema;   /* NULL for sinks */
    void                 *conf;            /* freed with kind->conf_free */
} weir_op_config_t;

/* Figures an operator may report (the runtime counts records and bytes
 * itself). Written by the task thread with relaxed atomics, read by the
 * task manager's loop for heartbeats. */
/* One split (Kafka partition) of a source: where it reads and how far
 * behind the end it is. */
typedef struct weir_split_metrics {
    char     topic[256];
    int32_t  partition;
    int64_t  offset;            /* next offset to read; -1 unknown */
    int64_t  pending;           /* records behind the end; -1 unknown */
} weir_split_metrics_t;

typedef struct weir_op_metrics {
    uint64_t dead_lettered;     /* numRecordsDeadLettered */
    int64_t  pending_records;   /* sources: records behind the end (lag); -1 unknown */
    int64_t  event_time_us;     /* sources: event time of the last record emitted,
                                 * INT64_MIN unknown (currentEmitEventTimeLag) */
    /* sources with splits: set once by open (weir_metrics_splits), then
     * offsets and lags updated with weir_metric_set */
    weir_split_metrics_t *splits;
    int      nsplits;
} weir_op_metrics_t;

static inline void weir_metric_add(uint64_t *m, uint64_t n)
{ __atomic_add_fetch(m, n, __ATOMIC_RELAXED); }
static inline void weir_metric_set(int64_t *m, int64_t v)
{ __atomic_store_n(m, v, __ATOMIC_RELAXED); }

/* Makes n split slots (zeroed; offsets and lags -1) for a source to fill,
 * once, in open; the runtime frees them with the task. Returns the array,
 * or NULL when out of memory or already made. Publish the count only after
 * the names are filled: weir_metrics_splits_publish. */
static inline weir_split_metrics_t *weir_metrics_splits(weir_op_metrics_t *m, int n)
{
    weir_split_metrics_t *s;
    if (m->splits != NULL || n <= 0 || (s = calloc((size_t)n, sizeof(*s))) == NULL)
        return NULL;
    for (int i = 0; i < n; i++)
        s[i].offset = s[i].pending = -1;
    m->splits = s;
    return s;
}
static inline void weir_metrics_splits_publish(weir_op_metrics_t *m, int n)
{ __atomic_store_n(&m->nsplits, n, __ATOMIC_RELEASE); }

/* What the task runtime gives an operator instance. Borrowed. */
typedef struct weir_op_ctx {
    const char           *job_id;
    const char           *log_prefix;      /* "[job:ab12 vertex:count#1/3]" */
    int                   subtask;         /* 0-based */
    int                   parallelism;
    int                   max_parallelism;
    int                   kg_first;        /* owned key groups [first, last] */
    int                   kg_last;
    weir_state_backend_t *state;           /* keyed state; NULL unless keyed */
    volatile int         *canceled;        /* set when the task is canceled */
    int64_t               checkpoint_interval_us; /* 0: the job takes no checkpoints */
    bool                  exactly_once;    /* checkpoint mode exactly_once */
    /* The job takes checkpoints, and one more completes after finish()
     * before the task ends (Flink's final checkpoint): a sink's finish()
     * commits nothing then; what it holds goes into that checkpoint and is
     * committed by notify_complete like any other. */
    bool                  final_checkpoint;
    int                   attempt;         /* the job's attempt (restarts) */
    weir_op_metrics_t    *metrics;         /* the subtask's; never NULL at run time */
    /* sources of an own_event_time kind with a `watermark:` block: the
     * generator to observe record times into (weir_wm_observe), with one
     * split per weir_wm_gen_splits; NULL otherwise */
    struct weir_wm_gen   *wm;
} weir_op_ctx_t;

/* One operator snapshot of one subtask, as restore() receives it. */
typedef struct weir_op_blob {
    int          subtask;                  /* of the parallelism it was taken at */
    const void  *data;
    size_t       len;
} weir_op_blob_t;

typedef struct weir_op {
    const weir_op_config_t *cfg;
    const weir_op_ctx_t    *ctx;
    void                   *self;          /* instance state, set by open */
} weir_op_t;

/* Where a kind may appear in a job file. */
enum {
    WEIR_ROLE_SOURCE   = WEIR_SECTION_SOURCE,
    WEIR_ROLE_OPERATOR = WEIR_SECTION_OPERATOR,
    WEIR_ROLE_SINK     = WEIR_SECTION_SINK,
};

struct weir_op_kind {
    const char         *name;
    unsigned            roles;       /* WEIR_ROLE_* bits */
    int                 min_inputs;  /* 0 for sources */
    int                 max_inputs;
    bool                keyed;       /* needs key_by on its inputs */
    const char *const  *params;      /* accepted parameter names, NULL-terminated */
    const char         *summary;     /* one line for docs and `jobctl plan` */
    /* Sources: observes event time itself, per split, into ctx->wm (and
     * has a record time of its own for `watermark:` without a field, like
     * the Kafka message timestamp). Otherwise the runtime observes the
     * watermark field of every row it polls, as one split. */
    bool                own_event_time;

    int  (*configure)(weir_op_config_t *cfg, weir_err_t *err);
    void (*conf_free)(void *conf);
    int  (*open)(weir_op_t *op, weir_err_t *err);
    /* Sources: append up to max rows to out. Return 0, or WEIR_EOS when the
     * source is exhausted (rows appended in the same call still count). Set
     * *idle_us > 0 to ask to be polled again no sooner than that (rate
     * limits, nothing available); the runtime stays responsive meanwhile. */
    int  (*poll)(weir_op_t *op, weir_batch_t *out, int max, int64_t *idle_us, weir_err_t *err);
    int  (*process)(weir_op_t *op, int input, const weir_batch_t *in,
                    weir_batch_t *out, weir_err_t *err);
    int  (*on_watermark)(weir_op_t *op, int64_t wm_us, weir_batch_t *out, weir_err_t *err);
    int  (*finish)(weir_op_t *op, weir_batch_t *out, weir_err_t *err);
    void (*close)(weir_op_t *op);

    /* Checkpoints; each may be NULL (nothing to save, nothing to commit).
     * snapshot appends the operator's state for checkpoint ckpt to out (any
     * bytes; msgpack by convention); it runs in the task thread between two
     * batches, after the operator has seen every record before the barrier.
     * notify_complete runs in the task thread once checkpoint ckpt is
     * complete everywhere (a later one implies the earlier ones: commit
     * everything pending up to ckpt). restore gets the blobs of every
     * subtask of this operator in the restored checkpoint ckpt, taken at
     * old_parallelism (which may differ from ctx->parallelism after
     * rescaling): the operator keeps what is its own (a Kafka source: the
     * offsets of the partitions it owns now; a sink: the pending commits of
     * old subtasks i with i % parallelism == subtask). */
    int  (*snapshot)(weir_op_t *op, int64_t ckpt, weir_buf_t *out, weir_err_t *err);
    int  (*notify_complete)(weir_op_t *op, int64_t ckpt, weir_err_t *err);
    int  (*restore)(weir_op_t *op, int64_t ckpt, int old_parallelism,
                    const weir_op_blob_t *blobs, int nblobs, weir_err_t *err);
};

/* Hash of the key fields of row: the same function partitions records
 * between subtasks and places keys in key groups. */
uint64_t weir_key_hash(const weir_value_t *row, const int *key_idx, int nkeys);

/* Flink's key-group arithmetic. */
static inline int weir_key_group(uint64_t hash, int max_parallelism)
{ return (int)(hash % (uint64_t)max_parallelism); }
static inline int weir_key_group_subtask(int kg, int parallelism, int max_parallelism)
{ return (int)((int64_t)kg * parallelism / max_parallelism); }
static inline int weir_key_group_first(int subtask, int parallelism, int max_parallelism)
{ return (int)(((int64_t)subtask * max_parallelism + parallelism - 1) / parallelism); }
static inline int weir_key_group_last(int subtask, int parallelism, int max_parallelism)
{ return weir_key_group_first(subtask + 1, parallelism, max_parallelism) - 1; }

/* ---- registry -------------------------------------------------------- */

/* The kind named name, or NULL. */
const weir_op_kind_t *weir_op_kind_find(const char *name);
/* All kinds; *n set to their count. */
const weir_op_kind_t *const *weir_op_kinds(int *n);

#endif
