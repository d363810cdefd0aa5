/* runtime/jobmanager/jm.h -- the job manager's state, shared by its files.
 *
 * Everything here lives on the one loop thread: RPC from task managers,
 * REST requests and timers all run there, so nothing is locked.
 */
#ifndef WEIR_JOBMANAGER_JM_H
#define WEIR_JOBMANAGER_JM_H

#include <stdbool.h>
#include <stdint.h>

#include "../graph/plan.h"
#include "../net/conn.h"
#include "../net/http_server.h"
#include "../taskmanager/task.h"

typedef enum {
    JOB_CREATED = 0,     /* waiting for slots */
    JOB_RUNNING,
    JOB_FINISHED,
    JOB_FAILING,
    JOB_FAILED,
    JOB_CANCELLING,
    JOB_CANCELED,
    JOB_RESTARTING,      /* an attempt failed: cancel what runs, wait, run again */
} job_state_t;

typedef struct jm_tm jm_tm_t;

typedef struct jm_savepoint {
    int   request;                   /* 1, 2, ... per job */
    int   status;                    /* 0 in progress, 1 completed, 2 failed */
    char *location;                  /* completed: the savepoint directory */
    char *failure;
} jm_savepoint_t;
typedef struct jm_job jm_job_t;

typedef struct jm_slot {
    jm_job_t *job;               /* occupying job, or NULL */
    int       index;             /* the job's shared slot index */
} jm_slot_t;

struct jm_tm {
    char         id[64];
    char         host[48];
    int          data_port;
    char         addr[64];       /* host:data_port */
    int          nslots;
    jm_slot_t   *slots;
    weir_conn_t *conn;
    uint64_t     last_hb_ms;     /* monotonic */
    uint64_t     registered_ms;  /* wall clock */
    long         rss_kb;         /* from heartbeats */
    uint64_t     cpu_ms, cpu_at_ms;
    double       cpu_pct;        /* over the last heartbeat interval */
    bool         lost;
};

/* A subtask's figures from task manager heartbeats. Counters are totals
 * over every attempt (they never go down); rates are per second over the
 * last heartbeat interval. */
typedef struct jm_metrics {
    int      attempt;            /* of the last sample */
    uint64_t at_ms;              /* monotonic time of the last sample */
    uint64_t rin, rout, bin, bout, busy_us, idle_us, bp_us, dlq;
    int64_t  pending;            /* -1 unknown */
    int      nops;
    uint64_t op_in[16], op_out[16];
    /* totals of earlier attempts, added to the current attempt's counters */
    uint64_t base_rin, base_rout, base_bin, base_bout, base_dlq;
    uint64_t base_op_in[16], base_op_out[16];
    double   rin_ps, rout_ps, bin_ps, bout_ps;
    double   busy_ms_ps, idle_ms_ps, bp_ms_ps;
    /* event time, us (WEIR_WM_NONE when none); emit lag ms, -1 unknown */
    int64_t  in_wm, out_wm, emit_lag_ms;
    /* sources with splits: per Kafka partition (owned; jm_metrics_clear) */
    int      nsplits;
    struct jm_split {
        char   *topic;
        int     partition;
        int64_t offset, pending;
    }       *splits;
} jm_metrics_t;

/* Frees what a subtask's figures own. */
void jm_metrics_clear(jm_metrics_t *m);

typedef struct jm_subtask {
    weir_task_state_t state;
    jm_tm_t          *tm;        /* where it runs (NULL before scheduling) */
    char             *failure;
    jm_metrics_t      m;
} jm_subtask_t;

/* One checkpoint in the job's history (the newest JM_CKPT_HISTORY). */
typedef struct jm_ckpt_hist {
    int64_t  id;
    int      status;             /* 0 in progress, 1 completed, 2 failed */
    bool     savepoint;
    uint64_t trigger_ms;         /* wall clock */
    uint64_t duration_ms;
    uint64_t bytes;
    int64_t  sync_us;
    int64_t  align_us;           /* longest alignment of a subtask */
    int      acks, subtasks;
    char    *failure;
} jm_ckpt_hist_t;

#define JM_CKPT_HISTORY 20
#define JM_EXCEPTIONS   20

typedef struct jm_exception {
    uint64_t ts_ms;
    int      attempt;
    char    *message;
} jm_exception_t;

struct jm_job {
    char           id[WEIR_JOB_ID_LEN + 1];
    char          *name;
    char          *path;
    char          *text;
    size_t         text_len;
    weir_vars_t    vars;
    int            parallelism_override;
    weir_plan_t   *plan;
    job_state_t    state;
    int            attempt;
    uint64_t       submit_ms, start_ms, end_ms;    /* wall clock */
    uint64_t       wait_since_mono;
    char          *failure;
    uint64_t       failure_ms;
    jm_subtask_t **subtasks;     /* [vertex][subtask] */
    int            nslot_tms;
    jm_tm_t      **slot_tm;      /* [shared slot index] -> task manager */
    int            deploys_pending;

    /* checkpoints (checkpoint.c) */
    int64_t        ckpt_next;            /* last id handed out */
    int64_t        ckpt_pending;         /* in progress, 0 = none */
    uint64_t       ckpt_pending_mono;    /* its trigger time */
    uint64_t       ckpt_pending_wall;
    int            ckpt_acks, ckpt_needed;
    bool          *ckpt_acked;           /* [vertex base + subtask] */
    bool          *ckpt_finished;        /* [vertex base + subtask]: finished at trigger */
    bool          *ckpt_ended;           /* [vertex base + subtask]: had ended its input */
    bool           ckpt_asap;            /* a source ended: its final checkpoint now */
    uint64_t       ckpt_pending_bytes;
    int64_t        ckpt_pending_sync_us; /* slowest subtask */
    int64_t        ckpt_pending_align_us;/* longest alignment */
    uint64_t       ckpt_last_trigger_mono, ckpt_last_end_mono;
    int64_t        ckpt_latest;          /* latest completed, 0 = none */
    char          *ckpt_latest_dir;
    uint64_t       ckpt_latest_wall, ckpt_latest_ms, ckpt_latest_bytes;
    int64_t        ckpt_latest_sync_us, ckpt_latest_align_us;
    int            ckpt_completed, ckpt_failed, ckpt_consecutive_failed;
    char          *ckpt_last_failure;
    int64_t       *ckpt_kept;            /* completed ids still on disk, oldest first */
    int            ckpt_nkept;
    int64_t        restored_from;        /* the checkpoint this attempt started from */
    /* savepoints: the one asked for (taken as the next checkpoint) */
    char          *sp_target;            /* directory to write into, NULL = none asked */
    bool           sp_stop;              /* stop the job once it is written */
    bool           sp_drain;             /* stop --drain: the sources end their input first */
    int            sources_ended;        /* source subtasks of this attempt that ended */
    int64_t        sp_ckpt;              /* the checkpoint carrying it, 0 = not yet triggered */
    int            sp_requests;          /* request ids handed out */
    jm_savepoint_t *sps;                 /* every request: status and location */
    int            nsps;
    bool           stopping;             /* stop-with-savepoint: CANCELLING ends FINISHED */

    jm_ckpt_hist_t hist[JM_CKPT_HISTORY];   /* ring, newest at hist_n - 1 */
    int            hist_n;               /* entries written so far */
    jm_exception_t exc[JM_EXCEPTIONS];   /* ring of failures */
    int            exc_n;

    /* restarts */
    int            restarts;
    uint64_t       restart_at_mono;      /* RESTARTING: when to schedule again */
    int64_t        restart_delay_us;     /* exponential_delay: the current delay */
    uint64_t       running_since_mono;
};

typedef struct jm {
    uv_loop_t          *loop;
    char                host[64];
    int                 rpc_port;
    int                 rest_port;
    uint64_t            hb_timeout_ms;
    uint64_t            slot_timeout_ms;
    char                secret[128];
    char                ports_file[512];
    char                ckpt_base[512];  /* --checkpoint-dir */
    char                data_dir[512];   /* --data-dir, "" = none */

    weir_listener_t     rpc;
    weir_http_server_t *http;
    uv_timer_t          tick;
    uv_signal_t         sigterm, sigint;

    int                 ntms;
    jm_tm_t           **tms;
    int                 ngone;
    jm_tm_t           **gone;    /* lost task managers, kept for job history */
    int                 njobs;
    jm_job_t          **jobs;    /* submission order */
} jm_t;

const char *jm_job_state_name(job_state_t s);
bool jm_job_terminal(const jm_job_t *j);
jm_job_t *jm_job_find(jm_t *jm, const char *id);
/* Validates, plans and queues a job; returns 0 and the job, or an error
 * with a located message. Takes nothing; copies what it keeps. */
int  jm_submit(jm_t *jm, const char *path, const char *text, size_t len,
               const weir_vars_t *vars, int parallelism, jm_job_t **out, weir_err_t *err);
/* Same, starting from a savepoint (or retained checkpoint) directory: its
 * operators must all be in the job unless allow_non_restored; keyed state
 * is redistributed when the parallelism differs. */
int  jm_submit_from(jm_t *jm, const char *path, const char *text, size_t len,
                    const weir_vars_t *vars, int parallelism, const char *savepoint,
                    bool allow_non_restored, jm_job_t **out, weir_err_t *err);
/* The job structure only (id NULL: a new one), not saved nor scheduled. */
int  jm_job_create(jm_t *jm, const char *id, const char *path, const char *text, size_t len,
                   const weir_vars_t *vars, int parallelism, jm_job_t **out, weir_err_t *err);
void jm_schedule(jm_t *jm);
int  jm_cancel(jm_t *jm, jm_job_t *j);
int  jm_free_slots(const jm_t *jm);
int  jm_total_slots(const jm_t *jm);
uint64_t jm_now_ms(void);
uint64_t jm_mono_ms(void);

/* checkpoint.c: the coordinator */
void jm_ckpt_tick(jm_t *jm, jm_job_t *j, uint64_t now_mono);
void jm_ckpt_ack(jm_t *jm, jm_tm_t *tm, const msgpack_object *msg);
/* The attempt ends (failure, cancel, finish): drop what is in flight. */
void jm_ckpt_abort_pending(jm_t *jm, jm_job_t *j, const char *why);
/* Subtask (v, s) of j finished: a checkpoint still waiting for it is
 * abandoned (the next one goes without it). */
void jm_ckpt_subtask_finished(jm_t *jm, jm_job_t *j, int v, int s);
/* A source subtask ended its input and waits for a final checkpoint. */
void jm_ckpt_ended(jm_t *jm, jm_tm_t *tm, const msgpack_object *msg);
/* <ckpt_base>/<job id> */
void jm_ckpt_job_dir(const jm_t *jm, const jm_job_t *j, char *out, size_t cap);
void jm_ckpt_free(jm_job_t *j);
/* Asks for a savepoint into target_dir (the next checkpoint, at once);
 * returns the request id, or an error (no checkpoints possible now). */
int  jm_savepoint_request(jm_t *jm, jm_job_t *j, const char *target_dir, bool stop, bool drain,
                          weir_err_t *err);

/* jobmanager.c, for checkpoint.c */
void jm_job_fail(jm_t *jm, jm_job_t *j, const char *msg);
void jm_send_job_msg(jm_tm_t *tm, const char *type, const jm_job_t *j, int64_t ckpt);

/* metrics.c */
void jm_metrics_heartbeat(jm_t *jm, jm_tm_t *tm, const msgpack_object *msg);
/* Sums and averages of a vertex's subtasks. */
void jm_vertex_metrics(const jm_job_t *j, int v, jm_metrics_t *out);
/* GET /metrics: the Prometheus text exposition. */
void jm_metrics_prometheus(const jm_t *jm, weir_buf_t *out);
/* The history entry of checkpoint id, or NULL. */
jm_ckpt_hist_t *jm_ckpt_hist_find(jm_job_t *j, int64_t id);

/* store.c: jobs on disk (--data-dir) */
void jm_store_save(jm_t *jm, const jm_job_t *j);
int  jm_store_load(jm_t *jm, weir_err_t *err);
/* The completed checkpoints of j found on disk (after a restart). */
void jm_ckpt_scan(jm_t *jm, jm_job_t *j);

/* rest.c */
void jm_rest_handle(void *arg, const weir_http_request_t *req, weir_http_response_t *resp);

#endif
