/* tests/cluster/harness.h -- a real local cluster for the cluster tests.
 *
 * The cluster tests run the real binaries: one weir-jobmanager and N
 * weir-taskmanager processes on free loopback ports, each in a fresh
 * temporary directory that also holds their logs. The job manager is started
 * with `--rpc-port 0 --rest-port 0 --ports-file FILE`, and the harness reads
 * the bound ports back from that file; task managers get the ids tm-1, tm-2,
 * ... so tests can name them, and keep their state in the run directory
 * (--state-dir DIR/state-tm-N). Everything is observed through the REST API
 * (libcurl + jansson), as a user would.
 *
 * Usage, one cluster per test:
 *
 *   static void test_x(void **state) {
 *       hc_cluster_t *c = hc_start(&(hc_opts_t){ .ntms = 2, .slots = 2 });
 *       ... hc_submit_ok(c, yaml, vars, jid); hc_wait_job(c, jid, "FINISHED", 30000) ...
 *       hc_stop(c);                       // success path: clean SIGTERM exits
 *   }
 *   ... cmocka_unit_test_teardown(test_x, hc_teardown) ...
 *
 * The harness fails the running cmocka test (fail_msg) on anything
 * unexpected: a process that dies, a port file that never appears, a REST
 * answer that is not JSON, a timeout. Whatever happens, no process is
 * leaked: hc_teardown stops what the test did not (and then prints the tail
 * of every log and keeps the directory for inspection), an atexit handler
 * and handlers for SIGABRT/SIGTERM/SIGINT/SIGHUP kill the children, and each
 * child is started with PR_SET_PDEATHSIG so it dies with the test process.
 *
 * Binary paths come from $WEIR_BUILD_DIR (set by tests/meson.build):
 *   runtime/jobmanager/weir-jobmanager, runtime/taskmanager/weir-taskmanager,
 *   runtime/cli/jobctl.
 */
#ifndef WEIR_TESTS_CLUSTER_HARNESS_H
#define WEIR_TESTS_CLUSTER_HARNESS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <curl/curl.h>
#include <jansson.h>

#define HC_MAX_TMS    8
#define HC_JOB_ID_LEN 32

typedef struct hc_opts {
    int         ntms;                /* task managers started by hc_start */
    int         slots;               /* slots per task manager; 0 = 2 */
    const char *heartbeat_timeout;   /* job manager --heartbeat-timeout; NULL = its default */
    const char *slot_timeout;        /* job manager --slot-timeout; NULL = its default */
    const char *heartbeat_interval;  /* task manager --heartbeat-interval; NULL = default */
    const char *secret;              /* --secret of every process; hc_http sends it */
} hc_opts_t;

typedef struct hc_tm {
    pid_t pid;                       /* 0 when not running */
    char  id[32];                    /* "tm-<index+1>" */
    int   slots;
    int   starts;                    /* how often it was started */
    bool  stopped;                   /* SIGSTOPped by the test */
    char  log[PATH_MAX];
} hc_tm_t;

typedef struct hc_cluster {
    char      dir[PATH_MAX];         /* the temporary run directory */
    char      bin_jm[PATH_MAX];
    char      bin_tm[PATH_MAX];
    char      bin_jobctl[PATH_MAX];
    hc_opts_t opts;
    pid_t     jm_pid;
    char      jm_log[PATH_MAX];
    char      ports_file[PATH_MAX];
    int       rpc_port;
    int       rest_port;
    char      rest[64];              /* "http://127.0.0.1:PORT" */
    int       ntms;
    hc_tm_t   tms[HC_MAX_TMS];
    CURL     *curl;
} hc_cluster_t;

/* ---- life cycle ------------------------------------------------------ */

/* Creates the run directory, starts the job manager and opts->ntms task
 * managers, and waits until all are registered (GET /overview). Fails the
 * test on any error. Returns the cluster (owned by the harness: released by
 * hc_stop or hc_teardown). One cluster at a time. */
hc_cluster_t *hc_start(const hc_opts_t *opts);

/* The success path: SIGTERMs the task managers and the job manager, fails the
 * test unless each exits with status 0 within 10 s, and removes the run
 * directory. */
void hc_stop(hc_cluster_t *c);

/* A cmocka teardown: when the test did not reach hc_stop (it failed), prints
 * the tail of every log, kills every process and keeps the run directory.
 * Returns 0. */
int hc_teardown(void **state);

/* ---- task managers --------------------------------------------------- */

/* Starts a new task manager with 'slots' slots; returns its index (id
 * "tm-<index+1>"). Does not wait for its registration. */
int  hc_add_tm(hc_cluster_t *c, int slots);
/* Stops the job manager with sig (SIGKILL: a crash) and starts it again on
 * the same ports and data directory (--data-dir DIR/jm-data); returns once
 * it answers REST. Task managers reconnect by themselves. */
void hc_restart_jm(hc_cluster_t *c, int sig);
/* Waits for the job manager to exit by itself (a test hook that kills it);
 * returns its exit code or 128+signal. */
int  hc_wait_jm_exit(hc_cluster_t *c, int timeout_ms);
/* (Re)starts task manager i with its id and slot count. */
void hc_start_tm(hc_cluster_t *c, int i);
/* Sends sig to task manager i. SIGKILL also reaps it (pid becomes 0). */
void hc_signal_tm(hc_cluster_t *c, int i, int sig);
/* Waits until GET /overview reports exactly ntms task managers and
 * slots_total slots; fails the test after timeout_ms. */
void hc_wait_tms(hc_cluster_t *c, int ntms, int slots_total, int timeout_ms);

/* ---- REST ------------------------------------------------------------ */

/* Performs one request; returns the HTTP status and sets *body (new,
 * NUL-terminated, free()) when body is non-NULL. Fails the test when the
 * job manager cannot be reached. 'data' may be NULL; content_type may be
 * NULL (then "application/json"). */
long hc_http(hc_cluster_t *c, const char *method, const char *path, const char *data,
             const char *content_type, char **body);
/* GET path as JSON; fails the test unless the answer is JSON. Returns a new
 * reference; *status (may be NULL) is the HTTP status. */
json_t *hc_get_json(hc_cluster_t *c, const char *path, long *status);
/* GET /overview (new reference) and one of its integer fields. */
json_t *hc_overview(hc_cluster_t *c);
long long hc_overview_int(hc_cluster_t *c, const char *field);

/* POST /jobs with {"job": yaml, "path": path, "vars": {...}}. vars is a
 * NULL-terminated list of alternating keys and values (may be NULL). Returns
 * the HTTP status; on 202 copies the job id into jid (may be NULL); *resp
 * (may be NULL) gets the parsed answer (new reference). */
long hc_submit(hc_cluster_t *c, const char *path, const char *yaml,
               const char *const *vars, char jid[HC_JOB_ID_LEN + 1], json_t **resp);
/* Same, and fails the test unless the job was accepted (202). */
void hc_submit_ok(hc_cluster_t *c, const char *yaml, const char *const *vars,
                  char jid[HC_JOB_ID_LEN + 1]);
/* GET /jobs/{jid}; fails unless 200. New reference. */
json_t *hc_job(hc_cluster_t *c, const char *jid);
/* The job's "state" (borrowed from job), or "" */
const char *hc_job_state(const json_t *job);
/* The job's failure message (borrowed from job), or NULL. */
const char *hc_job_failure(const json_t *job);
/* Polls the job until its state is 'state'; fails the test after timeout_ms
 * or when the job reaches a different terminal state (FINISHED, FAILED,
 * CANCELED). Returns the job document (new reference). */
json_t *hc_wait_job(hc_cluster_t *c, const char *jid, const char *state, int timeout_ms);
/* Waits until every subtask of every vertex reports 'state'. New reference. */
json_t *hc_wait_subtasks(hc_cluster_t *c, const char *jid, const char *state, int timeout_ms);
/* PATCH /jobs/{jid}?mode=cancel; returns the HTTP status. */
long hc_cancel(hc_cluster_t *c, const char *jid);

/* ---- processes and files --------------------------------------------- */

/* Runs jobctl --rest <cluster> with the NULL-terminated arguments, waits for
 * it (fails the test after 30 s), and returns its exit status (or 128+signal).
 * *out and *err (may be NULL) receive its stdout and stderr (new). */
int hc_jobctl(hc_cluster_t *c, char **out, char **err, ...) __attribute__((sentinel));

/* Reads every regular file of dir (a file sink's directory; dot-files, the
 * sink's in-progress files, are skipped) and returns its
 * non-empty lines, sorted (strcmp), as a new array of new strings; *n is
 * their count. Fails the test when dir cannot be read. */
char **hc_read_lines(const char *dir, int *n);
void   hc_free_lines(char **lines, int n);

/* Resident set size of pid in KiB (VmRSS), or -1. */
long hc_rss_kb(pid_t pid);
/* Monotonic milliseconds. */
long long hc_now_ms(void);
void hc_sleep_ms(int ms);
/* Writes text to the file c->dir/name (fails the test on error) and puts
 * that path into out. */
void hc_write_file(hc_cluster_t *c, const char *name, const char *text, char out[PATH_MAX]);
/* Reads a whole file (new, NUL-terminated) or NULL. */
char *hc_slurp(const char *path, size_t *len);
/* How often what occurs in the logs of all the cluster's task managers. */
int   hc_log_count(hc_cluster_t *c, const char *what);

#endif
