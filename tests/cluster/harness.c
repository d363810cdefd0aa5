/* tests/cluster/harness.c -- starts, watches and stops a real local cluster.
 *
 * See harness.h for the picture. A few choices worth knowing:
 *
 * - Processes are started with fork + execv, stdin from /dev/null and
 *   stdout/stderr appended to one log file per process in the run directory.
 *   Each child asks the kernel to SIGKILL it when the test process dies
 *   (PR_SET_PDEATHSIG), so even a test killed by a timeout leaks nothing.
 * - The job manager chooses its own ports (port 0) and reports them through
 *   --ports-file; the harness never guesses a free port, so tests cannot race
 *   each other or anything else on the machine.
 * - Every wait is a poll of the REST API with a deadline, and every poll
 *   also reaps children: a process that dies unexpectedly fails the test at
 *   once with its exit status instead of a timeout later.
 * - Only one cluster exists at a time (g_cluster); the signal and atexit
 *   handlers read the pids from g_pids, written before and after each fork.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define LOG_TAIL_LINES   40
#define STARTUP_MS       20000
#define STOP_MS          10000
#define POLL_MS          50
#define JOBCTL_MS        30000
#define HTTP_TIMEOUT_S   15L

static hc_cluster_t   g_cluster;
static bool           g_active;
static bool           g_handlers;
/* [0] = job manager, [1 + i] = task manager i; read by the signal handler */
static volatile pid_t g_pids[1 + HC_MAX_TMS];

/* ---- failing --------------------------------------------------------- */

static void hc__die(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));

#define HC_DIE(...) hc__die(__FILE__, __LINE__, __VA_ARGS__)

static void
hc__die(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "ERROR: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    _fail(file, line);
    abort();                      /* _fail does not return inside a test */
}

/* ---- time ------------------------------------------------------------ */

long long
hc_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
hc_sleep_ms(int ms)
{
    struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- files ----------------------------------------------------------- */

char *
hc_slurp(const char *path, size_t *len)
{
    FILE *f;
    char *buf = NULL, *nbuf;
    size_t n = 0, cap = 0, got;

    f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    for (;;) {
        if (cap - n < 4096) {
            cap = cap ? cap * 2 : 8192;
            nbuf = realloc(buf, cap + 1);
            if (nbuf == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nbuf;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len != NULL)
        *len = n;
    return buf;
}

int
hc_log_count(hc_cluster_t *c, const char *what)
{
    int n = 0;

    for (int i = 0; i < c->ntms; i++) {
        char *text = hc_slurp(c->tms[i].log, NULL);
        for (char *p = text; p != NULL && (p = strstr(p, what)) != NULL; p += strlen(what))
            n++;
        free(text);
    }
    return n;
}

void
hc_write_file(hc_cluster_t *c, const char *name, const char *text, char out[PATH_MAX])
{
    FILE *f;

    snprintf(out, PATH_MAX, "%s/%s", c->dir, name);
    f = fopen(out, "w");
    if (f == NULL)
        HC_DIE("cannot write %s: %s", out, strerror(errno));
    fputs(text, f);
    if (fclose(f) != 0)
        HC_DIE("cannot write %s: %s", out, strerror(errno));
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **
hc_read_lines(const char *dir, int *n)
{
    DIR *d;
    struct dirent *de;
    struct stat st;
    char path[PATH_MAX];
    char **lines = NULL, **nl;
    int count = 0, cap = 0;

    d = opendir(dir);
    if (d == NULL)
        HC_DIE("cannot read directory %s: %s", dir, strerror(errno));
    while ((de = readdir(d)) != NULL) {
        char *text, *p, *eol;

        /* dot-files are a sink's in-progress files: not output yet */
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        text = hc_slurp(path, NULL);
        if (text == NULL)
            HC_DIE("cannot read %s: %s", path, strerror(errno));
        for (p = text; *p != '\0'; p = eol) {
            eol = strchr(p, '\n');
            if (eol == NULL)
                eol = p + strlen(p);
            if (eol > p) {
                if (count == cap) {
                    cap = cap ? cap * 2 : 64;
                    nl = realloc(lines, (size_t)cap * sizeof(*lines));
                    if (nl == NULL)
                        HC_DIE("out of memory");
                    lines = nl;
                }
                lines[count] = strndup(p, (size_t)(eol - p));
                if (lines[count] == NULL)
                    HC_DIE("out of memory");
                count++;
            }
            if (*eol == '\n')
                eol++;
        }
        free(text);
    }
    closedir(d);
    if (count > 1)
        qsort(lines, (size_t)count, sizeof(*lines), cmp_str);
    *n = count;
    return lines;
}

void
hc_free_lines(char **lines, int n)
{
    for (int i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
}

long
hc_rss_kb(pid_t pid)
{
    char path[64], line[256];
    FILE *f;
    long kb = -1;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

/* Prints the last LOG_TAIL_LINES lines of path to stderr. */
static void
print_tail(const char *what, const char *path)
{
    char *text;
    size_t len;
    const char *p;
    int lines = 0;

    text = hc_slurp(path, &len);
    if (text == NULL) {
        fprintf(stderr, "---- %s: no log (%s)\n", what, path);
        return;
    }
    p = text + len;
    if (p > text && p[-1] == '\n')
        p--;
    while (p > text) {
        if (p[-1] == '\n' && ++lines == LOG_TAIL_LINES)
            break;
        p--;
    }
    fprintf(stderr, "---- %s: last lines of %s\n", what, path);
    fputs(p, stderr);
    if (len > 0 && text[len - 1] != '\n')
        fputc('\n', stderr);
    fprintf(stderr, "---- end of %s\n", what);
    free(text);
}

static void
print_logs(hc_cluster_t *c)
{
    print_tail("job manager", c->jm_log);
    for (int i = 0; i < c->ntms; i++)
        print_tail(c->tms[i].id, c->tms[i].log);
}

/* ---- processes ------------------------------------------------------- */

static void
kill_all_now(void)
{
    for (size_t i = 0; i < sizeof(g_pids) / sizeof(g_pids[0]); i++) {
        pid_t pid = g_pids[i];

        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            g_pids[i] = 0;
        }
    }
}

static void
on_fatal_signal(int sig)
{
    int saved = errno;

    for (size_t i = 0; i < sizeof(g_pids) / sizeof(g_pids[0]); i++)
        if (g_pids[i] > 0)
            kill(g_pids[i], SIGKILL);
    signal(sig, SIG_DFL);
    raise(sig);                 /* delivered with the default action on return */
    errno = saved;
}

static void
on_exit_kill(void)
{
    kill_all_now();
}

static void
install_handlers(void)
{
    static const int sigs[] = { SIGABRT, SIGTERM, SIGINT, SIGHUP };
    struct sigaction sa;

    if (g_handlers)
        return;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, NULL);
    signal(SIGPIPE, SIG_IGN);   /* the backpressure test reads a FIFO */
    atexit(on_exit_kill);
    g_handlers = true;
}

/* Starts argv with output appended to log; slot is the g_pids index. */
static pid_t
spawn(char *const argv[], const char *log, int slot)
{
    pid_t parent = getpid(), pid;
    sigset_t all;

    pid = fork();
    if (pid < 0)
        HC_DIE("fork: %s", strerror(errno));
    if (pid == 0) {
        int fd, nul;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        signal(SIGPIPE, SIG_DFL);
        fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || nul < 0)
            _exit(126);
        dup2(nul, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        closefrom(3);
        execv(argv[0], argv);
        dprintf(2, "harness: cannot execute %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    g_pids[slot] = pid;
    return pid;
}

static void
describe_status(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "status 0x%x", status);
}

/* Fails the test when the job manager or a task manager has exited. */
static void
check_alive(hc_cluster_t *c)
{
    char how[96];
    int status;

    if (c->jm_pid > 0 && waitpid(c->jm_pid, &status, WNOHANG) == c->jm_pid) {
        c->jm_pid = 0;
        g_pids[0] = 0;
        describe_status(status, how, sizeof(how));
        HC_DIE("the job manager %s unexpectedly (log: %s)", how, c->jm_log);
    }
    for (int i = 0; i < c->ntms; i++) {
        hc_tm_t *tm = &c->tms[i];

        if (tm->pid > 0 && waitpid(tm->pid, &status, WNOHANG) == tm->pid) {
            tm->pid = 0;
            g_pids[1 + i] = 0;
            describe_status(status, how, sizeof(how));
            HC_DIE("task manager %s %s unexpectedly (log: %s)", tm->id, how, tm->log);
        }
    }
}

static void
start_jm(hc_cluster_t *c)
{
    static char ckpt[PATH_MAX], data[PATH_MAX], rpc[16], rest[16];
    char *argv[24];
    int n = 0;

    /* a restarted job manager takes the same ports, so that task managers
     * and the test find it again */
    snprintf(rpc, sizeof(rpc), "%d", c->rpc_port);
    snprintf(rest, sizeof(rest), "%d", c->rest_port);
    argv[n++] = c->bin_jm;
    argv[n++] = "--host";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--rpc-port";
    argv[n++] = rpc;
    argv[n++] = "--rest-port";
    argv[n++] = rest;
    snprintf(data, sizeof(data), "%s/jm-data", c->dir);
    argv[n++] = "--data-dir";
    argv[n++] = data;
    argv[n++] = "--ports-file";
    argv[n++] = c->ports_file;
    snprintf(ckpt, sizeof(ckpt), "%s/checkpoints", c->dir);
    argv[n++] = "--checkpoint-dir";
    argv[n++] = ckpt;
    if (c->opts.heartbeat_timeout != NULL) {
        argv[n++] = "--heartbeat-timeout";
        argv[n++] = (char *)c->opts.heartbeat_timeout;
    }
    if (c->opts.slot_timeout != NULL) {
        argv[n++] = "--slot-timeout";
        argv[n++] = (char *)c->opts.slot_timeout;
    }
    if (c->opts.secret != NULL) {
        argv[n++] = "--secret";
        argv[n++] = (char *)c->opts.secret;
    }
    argv[n] = NULL;
    c->jm_pid = spawn(argv, c->jm_log, 0);
}

/* Waits for the ports file and reads both ports from it. */
static void
read_ports(hc_cluster_t *c)
{
    long long deadline = hc_now_ms() + STARTUP_MS;

    for (;;) {
        char *text = hc_slurp(c->ports_file, NULL);

        if (text != NULL) {
            const char *r = strstr(text, "rpc="), *h = strstr(text, "rest=");

            c->rpc_port = r ? atoi(r + 4) : 0;
            c->rest_port = h ? atoi(h + 5) : 0;
            free(text);
            if (c->rpc_port > 0 && c->rpc_port < 65536 && c->rest_port > 0 && c->rest_port < 65536)
                break;
            HC_DIE("ports file %s lacks rpc=PORT and rest=PORT", c->ports_file);
        }
        check_alive(c);
        if (hc_now_ms() > deadline)
            HC_DIE("the job manager wrote no ports file (%s) within %d ms", c->ports_file, STARTUP_MS);
        hc_sleep_ms(20);
    }
    snprintf(c->rest, sizeof(c->rest), "http://127.0.0.1:%d", c->rest_port);
}

int
hc_wait_jm_exit(hc_cluster_t *c, int timeout_ms)
{
    long long deadline = hc_now_ms() + timeout_ms;
    int status;

    while (c->jm_pid > 0) {
        if (waitpid(c->jm_pid, &status, WNOHANG) == c->jm_pid) {
            c->jm_pid = 0;
            g_pids[0] = 0;
            return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
        }
        if (hc_now_ms() > deadline)
            HC_DIE("the job manager did not exit within %d ms", timeout_ms);
        hc_sleep_ms(20);
    }
    return -1;
}

void
hc_restart_jm(hc_cluster_t *c, int sig)
{
    if (c->jm_pid > 0) {
        kill(c->jm_pid, sig);
        waitpid(c->jm_pid, NULL, 0);
        c->jm_pid = 0;
        g_pids[0] = 0;
    }
    unlink(c->ports_file);
    start_jm(c);
    read_ports(c);          /* written once both listeners are up */
}

void
hc_start_tm(hc_cluster_t *c, int i)
{
    hc_tm_t *tm = &c->tms[i];
    char jm_addr[64], slots[16], state_dir[PATH_MAX];
    char *argv[20];
    int n = 0;

    if (tm->pid > 0)
        HC_DIE("task manager %s is still running", tm->id);
    snprintf(jm_addr, sizeof(jm_addr), "127.0.0.1:%d", c->rpc_port);
    snprintf(slots, sizeof(slots), "%d", tm->slots);
    argv[n++] = c->bin_tm;
    argv[n++] = "--jobmanager";
    argv[n++] = jm_addr;
    argv[n++] = "--slots";
    argv[n++] = slots;
    argv[n++] = "--id";
    argv[n++] = tm->id;
    argv[n++] = "--host";
    argv[n++] = "127.0.0.1";
    /* keyed state inside the run directory: never shared with another
     * cluster that has a tm-1 too */
    snprintf(state_dir, sizeof(state_dir), "%s/state-%s", c->dir, tm->id);
    argv[n++] = "--state-dir";
    argv[n++] = state_dir;
    if (c->opts.heartbeat_interval != NULL) {
        argv[n++] = "--heartbeat-interval";
        argv[n++] = (char *)c->opts.heartbeat_interval;
    }
    if (c->opts.secret != NULL) {
        argv[n++] = "--secret";
        argv[n++] = (char *)c->opts.secret;
    }
    argv[n] = NULL;
    if (tm->starts > 0) {
        FILE *f = fopen(tm->log, "a");

        if (f != NULL) {
            fprintf(f, "---- harness: restarting %s ----\n", tm->id);
            fclose(f);
        }
    }
    tm->pid = spawn(argv, tm->log, 1 + i);
    tm->starts++;
}

int
hc_add_tm(hc_cluster_t *c, int slots)
{
    int i = c->ntms;
    char log[PATH_MAX];
    hc_tm_t *tm;

    if (i >= HC_MAX_TMS)
        HC_DIE("at most %d task managers", HC_MAX_TMS);
    tm = &c->tms[i];
    memset(tm, 0, sizeof(*tm));
    snprintf(tm->id, sizeof(tm->id), "tm-%d", i + 1);
    /* via a local: gcc cannot tell that tm->log and c->dir do not overlap */
    snprintf(log, sizeof(log), "%s/taskmanager-%d.log", c->dir, i + 1);
    memcpy(tm->log, log, sizeof(log));
    tm->slots = slots;
    c->ntms++;
    hc_start_tm(c, i);
    return i;
}

void
hc_signal_tm(hc_cluster_t *c, int i, int sig)
{
    hc_tm_t *tm = &c->tms[i];

    if (i < 0 || i >= c->ntms || tm->pid <= 0)
        HC_DIE("task manager %d is not running", i + 1);
    if (kill(tm->pid, sig) != 0)
        HC_DIE("kill(%s, %d): %s", tm->id, sig, strerror(errno));
    if (sig == SIGSTOP)
        tm->stopped = true;
    else if (sig == SIGCONT)
        tm->stopped = false;
    if (sig == SIGKILL) {
        waitpid(tm->pid, NULL, 0);
        tm->pid = 0;
        tm->stopped = false;
        g_pids[1 + i] = 0;
    }
}

/* ---- life cycle ------------------------------------------------------ */

static void
find_binary(char out[PATH_MAX], const char *build, const char *rel)
{
    snprintf(out, PATH_MAX, "%s/%s", build, rel);
    if (access(out, X_OK) != 0)
        HC_DIE("%s is missing (%s); build it: ninja -C %s", out, strerror(errno), build);
}

hc_cluster_t *
hc_start(const hc_opts_t *opts)
{
    static const char *const unset[] = {
        "WEIR_HOST", "WEIR_RPC_PORT", "WEIR_REST_PORT", "WEIR_HEARTBEAT_TIMEOUT",
        "WEIR_SLOT_TIMEOUT", "WEIR_SECRET", "WEIR_JOBMANAGER", "WEIR_SLOTS",
        "WEIR_TM_ID", "WEIR_REST", "WEIR_STATE_DIR",
    };
    hc_cluster_t *c = &g_cluster;
    const char *build, *tmp;

    if (g_active)
        HC_DIE("a cluster is already running (missing hc_teardown?)");
    install_handlers();
    memset(c, 0, sizeof(*c));
    c->opts = *opts;
    if (c->opts.slots <= 0)
        c->opts.slots = 2;

    build = getenv("WEIR_BUILD_DIR");
    if (build == NULL || *build == '\0')
        HC_DIE("WEIR_BUILD_DIR is not set (run the cluster tests with meson test)");
    find_binary(c->bin_jm, build, "runtime/jobmanager/weir-jobmanager");
    find_binary(c->bin_tm, build, "runtime/taskmanager/weir-taskmanager");
    find_binary(c->bin_jobctl, build, "runtime/cli/jobctl");

    /* Nothing from the caller's environment may redirect our processes. */
    for (size_t i = 0; i < sizeof(unset) / sizeof(unset[0]); i++)
        unsetenv(unset[i]);
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);

    tmp = getenv("TMPDIR");
    snprintf(c->dir, sizeof(c->dir), "%s/weir-cluster-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(c->dir) == NULL)
        HC_DIE("mkdtemp %s: %s", c->dir, strerror(errno));
    snprintf(c->jm_log, sizeof(c->jm_log), "%s/jobmanager.log", c->dir);
    snprintf(c->ports_file, sizeof(c->ports_file), "%s/ports", c->dir);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        HC_DIE("curl_global_init failed");
    c->curl = curl_easy_init();
    if (c->curl == NULL)
        HC_DIE("curl_easy_init failed");
    g_active = true;

    start_jm(c);
    read_ports(c);
    for (int i = 0; i < opts->ntms; i++)
        hc_add_tm(c, c->opts.slots);
    hc_wait_tms(c, opts->ntms, opts->ntms * c->opts.slots, STARTUP_MS);
    return c;
}

/* Waits for pid to exit until deadline; returns true and its status, or
 * false on timeout. */
static bool
wait_exit(pid_t pid, long long deadline, int *status)
{
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);

        if (r == pid || (r < 0 && errno == ECHILD))
            return true;
        if (hc_now_ms() > deadline)
            return false;
        hc_sleep_ms(10);
    }
}

/* Stops one process gracefully; appends a complaint to problems unless it
 * exits 0 within the deadline (then it is killed). */
static void
stop_one(const char *what, pid_t *pid, int slot, long long deadline, char *problems, size_t len)
{
    int status = 0;
    char how[96];

    if (*pid <= 0)
        return;
    if (wait_exit(*pid, deadline, &status)) {
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            describe_status(status, how, sizeof(how));
            snprintf(problems + strlen(problems), len - strlen(problems),
                     "%s %s after SIGTERM; ", what, how);
        }
    } else {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
        snprintf(problems + strlen(problems), len - strlen(problems),
                 "%s did not exit within %d ms of SIGTERM (killed); ", what, STOP_MS);
    }
    *pid = 0;
    g_pids[slot] = 0;
}

static void
release(hc_cluster_t *c)
{
    kill_all_now();
    c->jm_pid = 0;
    for (int i = 0; i < c->ntms; i++)
        c->tms[i].pid = 0;
    if (c->curl != NULL) {
        curl_easy_cleanup(c->curl);
        c->curl = NULL;
    }
    curl_global_cleanup();
    g_active = false;
}

void
hc_stop(hc_cluster_t *c)
{
    char problems[2048] = "";
    long long deadline;

    check_alive(c);
    /* SIGCONT only where the test sent SIGSTOP, and before SIGTERM: a
     * SIGCONT discards a pending SIGSTOP, and LeakSanitizer, at the exit
     * of a sanitized build, stops the process with ptrace (SIGSTOP) to scan
     * it; a stray SIGCONT then leaves it waiting forever. */
    for (int i = 0; i < c->ntms; i++)
        if (c->tms[i].pid > 0 && c->tms[i].stopped) {
            kill(c->tms[i].pid, SIGCONT);
            c->tms[i].stopped = false;
        }
    for (int i = 0; i < c->ntms; i++)
        if (c->tms[i].pid > 0)
            kill(c->tms[i].pid, SIGTERM);
    deadline = hc_now_ms() + STOP_MS;
    for (int i = 0; i < c->ntms; i++)
        stop_one(c->tms[i].id, &c->tms[i].pid, 1 + i, deadline, problems, sizeof(problems));
    if (c->jm_pid > 0)
        kill(c->jm_pid, SIGTERM);
    deadline = hc_now_ms() + STOP_MS;
    stop_one("the job manager", &c->jm_pid, 0, deadline, problems, sizeof(problems));

    if (problems[0] != '\0') {
        print_logs(c);
        fprintf(stderr, "cluster run directory kept: %s\n", c->dir);
        release(c);
        HC_DIE("unclean shutdown: %s", problems);
    }
    release(c);
    nftw(c->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int
hc_teardown(void **state)
{
    hc_cluster_t *c = &g_cluster;

    if (!g_active)
        return 0;
    /* The test failed before hc_stop: show why, then kill everything. */
    print_logs(c);
    fprintf(stderr, "cluster run directory kept: %s\n", c->dir);
    release(c);
    return 0;
}

/* ---- REST ------------------------------------------------------------ */

typedef struct {
    char  *data;
    size_t len, cap;
} membuf_t;

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    membuf_t *b = arg;
    size_t n = size * nmemb;

    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        char *nd;

        while (cap < b->len + n + 1)
            cap *= 2;
        nd = realloc(b->data, cap);
        if (nd == NULL)
            return 0;
        b->data = nd;
        b->cap = cap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

long
hc_http(hc_cluster_t *c, const char *method, const char *path, const char *data,
        const char *content_type, char **body)
{
    char url[512], ctype[128], errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL;
    membuf_t b = { 0 };
    CURLcode rc;
    long status = 0;

    snprintf(url, sizeof(url), "%s%s", c->rest, path);
    curl_easy_reset(c->curl);
    curl_easy_setopt(c->curl, CURLOPT_URL, url);
    curl_easy_setopt(c->curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, 5L);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, HTTP_TIMEOUT_S);
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &b);
    if (strcmp(method, "GET") != 0)
        curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
    if (data != NULL) {
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, data);
        curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(data));
        snprintf(ctype, sizeof(ctype), "Content-Type: %s",
                 content_type ? content_type : "application/json");
        headers = curl_slist_append(headers, ctype);
        headers = curl_slist_append(headers, "Expect:");
    }
    if (c->opts.secret != NULL) {
        char auth[256];
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", c->opts.secret);
        headers = curl_slist_append(headers, auth);
    }
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, headers);
    rc = curl_easy_perform(c->curl);
    curl_slist_free_all(headers);
    if (rc != CURLE_OK) {
        free(b.data);
        check_alive(c);
        HC_DIE("%s %s: %s", method, url, errbuf[0] ? errbuf : curl_easy_strerror(rc));
    }
    curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
    if (body != NULL) {
        if (b.data == NULL)
            b.data = strdup("");
        *body = b.data;
    } else {
        free(b.data);
    }
    return status;
}

json_t *
hc_get_json(hc_cluster_t *c, const char *path, long *status)
{
    char *body;
    json_error_t jerr;
    json_t *doc;
    long st;

    st = hc_http(c, "GET", path, NULL, NULL, &body);
    doc = json_loads(body, 0, &jerr);
    if (doc == NULL) {
        fprintf(stderr, "GET %s -> %ld: %s\n", path, st, body);
        free(body);
        HC_DIE("GET %s: the answer is not JSON: %s", path, jerr.text);
    }
    free(body);
    if (status != NULL)
        *status = st;
    return doc;
}

json_t *
hc_overview(hc_cluster_t *c)
{
    long st;
    json_t *doc = hc_get_json(c, "/overview", &st);

    if (st != 200)
        HC_DIE("GET /overview -> %ld", st);
    return doc;
}

long long
hc_overview_int(hc_cluster_t *c, const char *field)
{
    json_t *doc = hc_overview(c);
    json_t *v = json_object_get(doc, field);
    long long n;

    if (!json_is_integer(v)) {
        json_decref(doc);
        HC_DIE("GET /overview: no integer field '%s'", field);
    }
    n = json_integer_value(v);
    json_decref(doc);
    return n;
}

void
hc_wait_tms(hc_cluster_t *c, int ntms, int slots_total, int timeout_ms)
{
    long long deadline = hc_now_ms() + timeout_ms;
    long long tms = -1, slots = -1;

    for (;;) {
        json_t *doc;

        check_alive(c);
        doc = hc_overview(c);
        tms = json_integer_value(json_object_get(doc, "taskmanagers"));
        slots = json_integer_value(json_object_get(doc, "slots-total"));
        json_decref(doc);
        if (tms == ntms && slots == slots_total)
            return;
        if (hc_now_ms() > deadline)
            HC_DIE("waited %d ms for %d task managers with %d slots; /overview says %lld and %lld",
                   timeout_ms, ntms, slots_total, tms, slots);
        hc_sleep_ms(POLL_MS);
    }
}

static bool
is_job_id(const char *s)
{
    size_t n = 0;

    for (; s[n] != '\0'; n++)
        if (!isxdigit((unsigned char)s[n]) || isupper((unsigned char)s[n]))
            return false;
    return n == HC_JOB_ID_LEN;
}

long
hc_submit(hc_cluster_t *c, const char *path, const char *yaml, const char *const *vars,
          char jid[HC_JOB_ID_LEN + 1], json_t **resp)
{
    json_t *req, *jvars, *doc;
    char *text, *body;
    long st;

    req = json_object();
    jvars = json_object();
    json_object_set_new(req, "job", json_string(yaml));
    if (path != NULL)
        json_object_set_new(req, "path", json_string(path));
    for (int i = 0; vars != NULL && vars[i] != NULL; i += 2) {
        if (vars[i + 1] == NULL)
            HC_DIE("vars: key '%s' without a value", vars[i]);
        json_object_set_new(jvars, vars[i], json_string(vars[i + 1]));
    }
    json_object_set_new(req, "vars", jvars);
    text = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    if (text == NULL)
        HC_DIE("cannot encode the request (is the YAML valid UTF-8?)");

    st = hc_http(c, "POST", "/jobs", text, "application/json", &body);
    free(text);
    doc = json_loads(body, 0, NULL);
    if (doc == NULL) {
        fprintf(stderr, "POST /jobs -> %ld: %s\n", st, body);
        free(body);
        HC_DIE("POST /jobs: the answer is not JSON");
    }
    free(body);
    if (st == 202) {
        const char *id = json_string_value(json_object_get(doc, "jobid"));

        if (id == NULL || !is_job_id(id)) {
            json_decref(doc);
            HC_DIE("POST /jobs -> 202 without a 32-hex \"jobid\"");
        }
        if (jid != NULL)
            memcpy(jid, id, HC_JOB_ID_LEN + 1);
    }
    if (resp != NULL)
        *resp = doc;
    else
        json_decref(doc);
    return st;
}

void
hc_submit_ok(hc_cluster_t *c, const char *yaml, const char *const *vars, char jid[HC_JOB_ID_LEN + 1])
{
    json_t *resp = NULL;
    long st = hc_submit(c, "test.yaml", yaml, vars, jid, &resp);

    if (st != 202) {
        char *s = json_dumps(resp, 0);

        fprintf(stderr, "POST /jobs -> %ld %s\n", st, s ? s : "");
        free(s);
        json_decref(resp);
        HC_DIE("the job was not accepted (HTTP %ld)", st);
    }
    json_decref(resp);
}

json_t *
hc_job(hc_cluster_t *c, const char *jid)
{
    char path[128];
    long st;
    json_t *doc;

    snprintf(path, sizeof(path), "/jobs/%s", jid);
    doc = hc_get_json(c, path, &st);
    if (st != 200) {
        json_decref(doc);
        HC_DIE("GET %s -> %ld", path, st);
    }
    return doc;
}

const char *
hc_job_state(const json_t *job)
{
    const char *s = json_string_value(json_object_get(job, "state"));

    return s ? s : "";
}

const char *
hc_job_failure(const json_t *job)
{
    json_t *f = json_object_get(job, "failure");

    return json_string_value(json_object_get(f, "message"));
}

static bool
is_terminal(const char *state)
{
    return strcmp(state, "FINISHED") == 0 || strcmp(state, "FAILED") == 0 ||
           strcmp(state, "CANCELED") == 0;
}

static void
dump_job(const json_t *job)
{
    char *s = json_dumps(job, JSON_INDENT(1));

    fprintf(stderr, "job: %s\n", s ? s : "?");
    free(s);
}

json_t *
hc_wait_job(hc_cluster_t *c, const char *jid, const char *state, int timeout_ms)
{
    long long deadline = hc_now_ms() + timeout_ms;

    for (;;) {
        json_t *job = hc_job(c, jid);
        const char *st = hc_job_state(job);

        if (strcmp(st, state) == 0)
            return job;
        if (is_terminal(st) || hc_now_ms() > deadline) {
            char now[32];
            const char *why = hc_job_failure(job);

            snprintf(now, sizeof(now), "%s", st);
            dump_job(job);
            json_decref(job);
            HC_DIE("job %s: waited for %s, but it is %s%s%s", jid, state, now,
                   why ? ": " : "", why ? why : "");
        }
        json_decref(job);
        check_alive(c);
        hc_sleep_ms(POLL_MS);
    }
}

/* True when every subtask of every vertex has the given status. */
static bool
all_subtasks(const json_t *job, const char *state)
{
    json_t *vertices = json_object_get(job, "vertices"), *v, *s;
    size_t i, j;
    int n = 0;

    if (!json_is_array(vertices) || json_array_size(vertices) == 0)
        return false;
    json_array_foreach(vertices, i, v) {
        json_t *subtasks = json_object_get(v, "subtasks");

        if (!json_is_array(subtasks) || json_array_size(subtasks) == 0)
            return false;
        json_array_foreach(subtasks, j, s) {
            const char *st = json_string_value(json_object_get(s, "status"));

            if (st == NULL || strcmp(st, state) != 0)
                return false;
            n++;
        }
    }
    return n > 0;
}

json_t *
hc_wait_subtasks(hc_cluster_t *c, const char *jid, const char *state, int timeout_ms)
{
    long long deadline = hc_now_ms() + timeout_ms;

    for (;;) {
        json_t *job = hc_job(c, jid);

        if (all_subtasks(job, state))
            return job;
        if (is_terminal(hc_job_state(job)) || hc_now_ms() > deadline) {
            dump_job(job);
            json_decref(job);
            HC_DIE("job %s: waited %d ms for all subtasks to be %s", jid, timeout_ms, state);
        }
        json_decref(job);
        check_alive(c);
        hc_sleep_ms(POLL_MS);
    }
}

long
hc_cancel(hc_cluster_t *c, const char *jid)
{
    char path[128];

    snprintf(path, sizeof(path), "/jobs/%s?mode=cancel", jid);
    return hc_http(c, "PATCH", path, NULL, NULL, NULL);
}

/* ---- jobctl ---------------------------------------------------------- */

int
hc_jobctl(hc_cluster_t *c, char **out, char **err, ...)
{
    static int seq;
    char out_path[PATH_MAX], err_path[PATH_MAX];
    char *argv[32];
    const char *arg;
    va_list ap;
    int n = 0, status = 0;
    pid_t pid;

    argv[n++] = c->bin_jobctl;
    argv[n++] = "--rest";
    argv[n++] = c->rest;
    va_start(ap, err);
    while ((arg = va_arg(ap, const char *)) != NULL) {
        if (n >= (int)(sizeof(argv) / sizeof(argv[0])) - 1) {
            va_end(ap);
            HC_DIE("hc_jobctl: too many arguments");
        }
        argv[n++] = (char *)arg;
    }
    va_end(ap);
    argv[n] = NULL;

    seq++;
    snprintf(out_path, sizeof(out_path), "%s/jobctl-%d.out", c->dir, seq);
    snprintf(err_path, sizeof(err_path), "%s/jobctl-%d.err", c->dir, seq);
    pid = fork();
    if (pid < 0)
        HC_DIE("fork: %s", strerror(errno));
    if (pid == 0) {
        int fo, fe, nul;
        sigset_t all;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fo < 0 || fe < 0 || nul < 0)
            _exit(126);
        dup2(nul, 0);
        dup2(fo, 1);
        dup2(fe, 2);
        closefrom(3);
        execv(argv[0], argv);
        dprintf(2, "harness: cannot execute %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    if (!wait_exit(pid, hc_now_ms() + JOBCTL_MS, &status)) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        HC_DIE("jobctl did not finish within %d ms", JOBCTL_MS);
    }
    if (out != NULL) {
        *out = hc_slurp(out_path, NULL);
        if (*out == NULL)
            HC_DIE("cannot read %s", out_path);
    }
    if (err != NULL) {
        *err = hc_slurp(err_path, NULL);
        if (*err == NULL)
            HC_DIE("cannot read %s", err_path);
    }
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}
