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
} job_state_t;

typedef struct jm_tm jm_tm_t;
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
    bool         lost;
};

typedef struct jm_subtask {
    weir_task_state_t state;
    jm_tm_t          *tm;        /* where it runs (NULL before scheduling) */
    char             *failure;
} jm_subtask_t;

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

    weir_listener_t     rpc;
    weir_http_server_t *http;
    uv_timer_t          tick;
    uv_signal_t         sigterm, sigint;

    int                 ntms;
    jm_tm_t           **tms;
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
int  jm_cancel(jm_t *jm, jm_job_t *j);
int  jm_free_slots(const jm_t *jm);
int  jm_total_slots(const jm_t *jm);
uint64_t jm_now_ms(void);
uint64_t jm_mono_ms(void);

/* rest.c */
void jm_rest_handle(void *arg, const weir_http_request_t *req, weir_http_response_t *resp);

#endif
