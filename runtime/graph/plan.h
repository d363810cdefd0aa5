/* runtime/graph/plan.h -- from a job file to vertices, edges and slots.
 *
 * The planner configures every node's operator kind in topological order
 * (deriving schemas and checking parameters), resolves each input's
 * partitioning, and chains nodes into vertices like Flink's operator
 * chaining: node B joins A's chain when B has exactly one input, that input
 * is A over a forward edge of equal parallelism, and A feeds nothing else.
 * A vertex runs as `parallelism` subtasks; subtask i of every vertex shares
 * slot i (slot sharing), so a job needs max(parallelism) slots.
 *
 * Planning is deterministic: the job manager plans to validate and schedule,
 * and every task manager plans the same text again to build its tasks, so
 * vertex and edge numbers agree everywhere without shipping a plan.
 */
#ifndef WEIR_GRAPH_PLAN_H
#define WEIR_GRAPH_PLAN_H

#include "../../operators/operator.h"
#include "../core/buf.h"
#include "jobfile.h"

typedef struct weir_plan_edge {
    int              src_vertex;
    int              dst_vertex;
    int              dst_input;      /* input index of the dst vertex's head operator */
    weir_partition_t partition;      /* never DEFAULT after planning */
    int              nkeys;          /* HASH: key fields in the src schema */
    int              key_idx[WEIR_MAX_KEYS];
    weir_schema_t   *schema;         /* records on this edge (borrowed from src config) */
} weir_plan_edge_t;

typedef struct weir_plan_vertex {
    char              *name;         /* "gen -> big" */
    int                parallelism;
    int                nops;
    weir_op_config_t **ops;          /* chain order; borrowed from plan->configs */
    int               *op_nodes;     /* job file node index per op */
    int                nin, nout;
    int               *in_edges;     /* edge indexes, by dst_input order */
    int               *out_edges;
    bool               keyed;        /* head operator is keyed */
} weir_plan_vertex_t;

/* The job's `checkpoint:` block. */
typedef struct weir_ckpt_conf {
    int64_t interval_us;         /* 0: the job takes no checkpoints */
    int64_t min_pause_us;        /* from one completion to the next trigger */
    int64_t timeout_us;          /* a checkpoint not complete by then fails */
    int     max_concurrent;      /* 1 */
    int     tolerable_failures;  /* consecutive failed checkpoints before the job fails */
    bool    exactly_once;        /* mode: aligned barriers (else at_least_once) */
    int     retained;            /* completed checkpoints kept */
} weir_ckpt_conf_t;

typedef enum {
    WEIR_RESTART_NONE = 0,
    WEIR_RESTART_FIXED,          /* fixed_delay: attempts, delay */
    WEIR_RESTART_EXPONENTIAL,    /* exponential_delay: initial, max, multiplier, reset */
} weir_restart_strategy_t;

/* The job's `restart:` block. */
typedef struct weir_restart_conf {
    weir_restart_strategy_t strategy;
    int     attempts;            /* fixed_delay: restarts allowed; -1 = no limit */
    int64_t delay_us;            /* fixed_delay */
    int64_t initial_us, max_us;  /* exponential_delay */
    double  multiplier;
    int64_t reset_us;            /* exponential: back to initial after this long running */
} weir_restart_conf_t;

typedef struct weir_plan {
    weir_jobfile_t     *jf;          /* owned */
    int                 parallelism; /* the job's default after overrides */
    int                 max_parallelism;
    int                 nconfigs;
    weir_op_config_t   *configs;     /* one per job file node */
    int                 nvertices;
    weir_plan_vertex_t *vertices;    /* topological order: sources first */
    int                 nedges;
    weir_plan_edge_t   *edges;
    int                 slots;       /* slots needed: max vertex parallelism */
    bool                state_in_memory; /* config: {state.backend: memory}; default rocksdb */
    weir_ckpt_conf_t    ckpt;
    weir_restart_conf_t restart;
} weir_plan_t;

/* Plans jf (takes ownership, also on failure). parallelism > 0 overrides the
 * job's default parallelism (jobctl -p). Errors are "path:line:col: reason".
 * On success *out is new (weir_plan_destroy). */
int  weir_plan_build(weir_jobfile_t *jf, int parallelism, weir_plan_t **out, weir_err_t *err);
void weir_plan_destroy(weir_plan_t *p);                   /* NULL is a no-op */

/* Parses text and plans it: the one call the job and task managers make. */
int  weir_plan_from_text(const char *path, const char *text, size_t len,
                         const weir_vars_t *vars, int parallelism,
                         weir_plan_t **out, weir_err_t *err);

/* Human-readable plan (vertices, chains, edges, schemas) for `jobctl plan`. */
int  weir_plan_describe(const weir_plan_t *p, weir_buf_t *out);

#endif
