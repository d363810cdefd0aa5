/* runtime/jobmanager/metrics.c -- task figures from heartbeats, per subtask,
 * vertex, task manager and job, and their Prometheus exposition.
 *
 * Each task manager heartbeat (every second by default) carries, for every
 * task it runs, the task's counters since the task started: records and
 * bytes in and out, time busy, idle (waiting for input) and backpressured
 * (waiting for credits), dead letters, the source's pending records, and
 * records in and out of every chained operator. The job manager keeps, per
 * subtask, totals over all attempts (a restarted task counts from zero; the
 * previous attempt's last figures become a base), so counters only go up,
 * and per-second rates over the last interval.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jm.h"
#include "../core/watermark.h"

void
jm_metrics_clear(jm_metrics_t *m)
{
    for (int i = 0; i < m->nsplits; i++)
        free(m->splits[i].topic);
    free(m->splits);
    m->splits = NULL;
    m->nsplits = 0;
}

static int64_t
i64(const msgpack_object *o, int64_t def)
{
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return o->via.i64;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return o->via.u64 > INT64_MAX ? INT64_MAX : (int64_t)o->via.u64;
    return def;
}

/* The per-partition figures of a source: [[topic, partition, offset, pending]...] */
static void
sample_splits(jm_metrics_t *m, const msgpack_object *a)
{
    uint32_t n = a->type == MSGPACK_OBJECT_ARRAY ? a->via.array.size : 0;

    if ((int)n != m->nsplits) {
        jm_metrics_clear(m);
        if (n == 0 || (m->splits = calloc(n, sizeof(*m->splits))) == NULL)
            return;
        m->nsplits = (int)n;
    }
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *e = &a->via.array.ptr[i];
        struct jm_split *sp = &m->splits[i];
        if (e->type != MSGPACK_OBJECT_ARRAY || e->via.array.size < 4 ||
            e->via.array.ptr[0].type != MSGPACK_OBJECT_STR)
            continue;
        const msgpack_object_str *t = &e->via.array.ptr[0].via.str;
        if (sp->topic == NULL || strlen(sp->topic) != t->size ||
            memcmp(sp->topic, t->ptr, t->size) != 0) {
            free(sp->topic);
            sp->topic = strndup(t->ptr, t->size);
        }
        sp->partition = (int)i64(&e->via.array.ptr[1], -1);
        sp->offset = i64(&e->via.array.ptr[2], -1);
        sp->pending = i64(&e->via.array.ptr[3], -1);
    }
}

static uint64_t
u64(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? o->via.u64 : 0;
}

static void
sample(jm_metrics_t *m, int attempt, const msgpack_object *a, uint64_t now)
{
    const msgpack_object *f = a->via.array.ptr;
    double dt = m->at_ms != 0 && now > m->at_ms ? (double)(now - m->at_ms) / 1000.0 : 0;
    uint64_t rin = u64(&f[4]), rout = u64(&f[5]), bin = u64(&f[6]), bout = u64(&f[7]);
    uint64_t busy = u64(&f[8]), idle = u64(&f[9]), bp = u64(&f[10]);

    if (m->at_ms != 0 && attempt != m->attempt) {
        /* a new attempt counts from zero: keep what the old one counted */
        m->base_rin += m->rin;
        m->base_rout += m->rout;
        m->base_bin += m->bin;
        m->base_bout += m->bout;
        m->base_dlq += m->dlq;
        for (int o = 0; o < m->nops; o++) {
            m->base_op_in[o] += m->op_in[o];
            m->base_op_out[o] += m->op_out[o];
        }
        m->rin = m->rout = m->bin = m->bout = m->busy_us = m->idle_us = m->bp_us = m->dlq = 0;
        memset(m->op_in, 0, sizeof(m->op_in));
        memset(m->op_out, 0, sizeof(m->op_out));
        dt = 0;
    }
    if (dt > 0.05 && rin >= m->rin && rout >= m->rout) {
        m->rin_ps = (double)(rin - m->rin) / dt;
        m->rout_ps = (double)(rout - m->rout) / dt;
        m->bin_ps = (double)(bin - m->bin) / dt;
        m->bout_ps = (double)(bout - m->bout) / dt;
        m->busy_ms_ps = busy >= m->busy_us ? (double)(busy - m->busy_us) / 1000.0 / dt : 0;
        m->idle_ms_ps = idle >= m->idle_us ? (double)(idle - m->idle_us) / 1000.0 / dt : 0;
        m->bp_ms_ps = bp >= m->bp_us ? (double)(bp - m->bp_us) / 1000.0 / dt : 0;
        if (m->busy_ms_ps > 1000)
            m->busy_ms_ps = 1000;
        if (m->idle_ms_ps > 1000)
            m->idle_ms_ps = 1000;
        if (m->bp_ms_ps > 1000)
            m->bp_ms_ps = 1000;
    }
    m->attempt = attempt;
    m->at_ms = now;
    m->rin = rin;
    m->rout = rout;
    m->bin = bin;
    m->bout = bout;
    m->busy_us = busy;
    m->idle_us = idle;
    m->bp_us = bp;
    m->dlq = u64(&f[11]);
    m->pending = f[12].type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? f[12].via.i64
                                                               : (int64_t)u64(&f[12]);
    if (f[13].type == MSGPACK_OBJECT_ARRAY && f[14].type == MSGPACK_OBJECT_ARRAY) {
        m->nops = (int)f[13].via.array.size < 16 ? (int)f[13].via.array.size : 16;
        for (int o = 0; o < m->nops && o < (int)f[14].via.array.size; o++) {
            m->op_in[o] = u64(&f[13].via.array.ptr[o]);
            m->op_out[o] = u64(&f[14].via.array.ptr[o]);
        }
    }
    if (a->via.array.size >= 19) {
        m->in_wm = i64(&f[15], WEIR_WM_NONE);
        m->out_wm = i64(&f[16], WEIR_WM_NONE);
        m->emit_lag_ms = i64(&f[17], -1);
        sample_splits(m, &f[18]);
    } else {
        m->in_wm = m->out_wm = WEIR_WM_NONE;
        m->emit_lag_ms = -1;
    }
}

void
jm_metrics_heartbeat(jm_t *jm, jm_tm_t *tm, const msgpack_object *msg)
{
    const msgpack_object *tasks = weir_msg_get(msg, "tasks");
    uint64_t now = jm_mono_ms();
    int64_t cpu = weir_msg_get_int(msg, "cpu_ms", -1);

    tm->rss_kb = (long)weir_msg_get_int(msg, "rss_kb", 0);
    if (cpu >= 0) {
        if (tm->cpu_at_ms != 0 && now > tm->cpu_at_ms && (uint64_t)cpu >= tm->cpu_ms)
            tm->cpu_pct = 100.0 * (double)((uint64_t)cpu - tm->cpu_ms) /
                          (double)(now - tm->cpu_at_ms);
        tm->cpu_ms = (uint64_t)cpu;
        tm->cpu_at_ms = now;
    }
    if (tasks == NULL || tasks->type != MSGPACK_OBJECT_ARRAY)
        return;
    for (uint32_t i = 0; i < tasks->via.array.size; i++) {
        const msgpack_object *a = &tasks->via.array.ptr[i];
        char id[WEIR_JOB_ID_LEN + 1];
        jm_job_t *j;
        int v, s;

        if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size < 15 ||
            a->via.array.ptr[0].type != MSGPACK_OBJECT_STR ||
            a->via.array.ptr[0].via.str.size != WEIR_JOB_ID_LEN)
            continue;
        memcpy(id, a->via.array.ptr[0].via.str.ptr, WEIR_JOB_ID_LEN);
        id[WEIR_JOB_ID_LEN] = '\0';
        j = jm_job_find(jm, id);
        v = (int)a->via.array.ptr[2].via.i64;
        s = (int)a->via.array.ptr[3].via.i64;
        if (j == NULL || (int)a->via.array.ptr[1].via.i64 != j->attempt || v < 0 ||
            v >= j->plan->nvertices || s < 0 || s >= j->plan->vertices[v].parallelism ||
            j->subtasks[v][s].tm != tm)
            continue;
        sample(&j->subtasks[v][s].m, j->attempt, a, now);
    }
}

void
jm_vertex_metrics(const jm_job_t *j, int v, jm_metrics_t *out)
{
    int p = j->plan->vertices[v].parallelism;

    memset(out, 0, sizeof(*out));
    out->pending = -1;
    out->emit_lag_ms = -1;
    /* a vertex's watermark is its lowest subtask's (Flink's "low watermark") */
    out->in_wm = out->out_wm = WEIR_WM_MAX;
    if (p == 0)
        out->in_wm = out->out_wm = WEIR_WM_NONE;
    for (int s = 0; s < p; s++) {
        const jm_metrics_t *m = &j->subtasks[v][s].m;
        int64_t iw = m->at_ms != 0 ? m->in_wm : WEIR_WM_NONE;
        int64_t ow = m->at_ms != 0 ? m->out_wm : WEIR_WM_NONE;
        if (iw < out->in_wm)
            out->in_wm = iw;
        if (ow < out->out_wm)
            out->out_wm = ow;
        if (m->at_ms != 0 && m->emit_lag_ms > out->emit_lag_ms)
            out->emit_lag_ms = m->emit_lag_ms;
        out->rin += m->base_rin + m->rin;
        out->rout += m->base_rout + m->rout;
        out->bin += m->base_bin + m->bin;
        out->bout += m->base_bout + m->bout;
        out->dlq += m->base_dlq + m->dlq;
        out->rin_ps += m->rin_ps;
        out->rout_ps += m->rout_ps;
        out->bin_ps += m->bin_ps;
        out->bout_ps += m->bout_ps;
        /* time shares: the average subtask, like Flink's vertex view */
        out->busy_ms_ps += m->busy_ms_ps / p;
        out->idle_ms_ps += m->idle_ms_ps / p;
        out->bp_ms_ps += m->bp_ms_ps / p;
        if (m->pending >= 0)
            out->pending = (out->pending < 0 ? 0 : out->pending) + m->pending;
        if (m->nops > out->nops)
            out->nops = m->nops;
        for (int o = 0; o < m->nops; o++) {
            out->op_in[o] += m->base_op_in[o] + m->op_in[o];
            out->op_out[o] += m->base_op_out[o] + m->op_out[o];
        }
    }
}

/* ---- Prometheus ----------------------------------------------------------- */

/* Label values: backslash, double quote and newline escaped. */
static void
label(weir_buf_t *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\' || *s == '"')
            weir_buf_putc(out, '\\');
        if (*s == '\n') {
            weir_buf_append(out, "\\n", 2);
            continue;
        }
        weir_buf_putc(out, *s);
    }
}

static void
help(weir_buf_t *out, const char *name, const char *type, const char *text)
{
    weir_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

typedef struct {
    const char *name, *type, *help;
    int         what;
} series_t;

enum { S_RIN, S_ROUT, S_BIN, S_BOUT, S_DLQ, S_RIN_PS, S_ROUT_PS, S_BUSY, S_IDLE, S_BP,
       S_PENDING, S_IN_WM, S_OUT_WM, S_LAG };

static double
value_of(const jm_metrics_t *m, int what, bool *skip)
{
    *skip = false;
    switch (what) {
    case S_RIN:     return (double)(m->base_rin + m->rin);
    case S_ROUT:    return (double)(m->base_rout + m->rout);
    case S_BIN:     return (double)(m->base_bin + m->bin);
    case S_BOUT:    return (double)(m->base_bout + m->bout);
    case S_DLQ:     return (double)(m->base_dlq + m->dlq);
    case S_RIN_PS:  return m->rin_ps;
    case S_ROUT_PS: return m->rout_ps;
    case S_BUSY:    return m->busy_ms_ps;
    case S_IDLE:    return m->idle_ms_ps;
    case S_BP:      return m->bp_ms_ps;
    case S_PENDING: *skip = m->pending < 0; return (double)m->pending;
    case S_IN_WM:   *skip = m->in_wm == WEIR_WM_NONE; return (double)weir_wm_ms(m->in_wm);
    case S_OUT_WM:  *skip = m->out_wm == WEIR_WM_NONE; return (double)weir_wm_ms(m->out_wm);
    case S_LAG:     *skip = m->emit_lag_ms < 0; return (double)m->emit_lag_ms;
    }
    *skip = true;
    return 0;
}

void
jm_metrics_prometheus(const jm_t *jm, weir_buf_t *out)
{
    static const series_t series[] = {
        { "weir_task_records_in_total", "counter", "Records received by the subtask (numRecordsIn).", S_RIN },
        { "weir_task_records_out_total", "counter", "Records sent by the subtask (numRecordsOut).", S_ROUT },
        { "weir_task_bytes_in_total", "counter", "Bytes received over channels (numBytesIn).", S_BIN },
        { "weir_task_bytes_out_total", "counter", "Bytes sent over channels (numBytesOut).", S_BOUT },
        { "weir_task_records_dead_lettered_total", "counter", "Malformed records set aside (numRecordsDeadLettered).", S_DLQ },
        { "weir_task_records_in_per_second", "gauge", "numRecordsInPerSecond over the last heartbeat interval.", S_RIN_PS },
        { "weir_task_records_out_per_second", "gauge", "numRecordsOutPerSecond over the last heartbeat interval.", S_ROUT_PS },
        { "weir_task_busy_time_ms_per_second", "gauge", "busyTimeMsPerSecond.", S_BUSY },
        { "weir_task_idle_time_ms_per_second", "gauge", "idleTimeMsPerSecond.", S_IDLE },
        { "weir_task_backpressured_time_ms_per_second", "gauge", "backPressuredTimeMsPerSecond.", S_BP },
        { "weir_task_pending_records", "gauge", "Source records not read yet (Kafka lag).", S_PENDING },
        { "weir_task_current_input_watermark_ms", "gauge", "Event time the subtask's inputs have all passed (currentInputWatermark), ms since the epoch.", S_IN_WM },
        { "weir_task_current_output_watermark_ms", "gauge", "Last watermark the subtask emitted (currentOutputWatermark), ms since the epoch.", S_OUT_WM },
        { "weir_task_current_emit_event_time_lag_ms", "gauge", "Sources: wall clock minus the event time of the last record emitted (currentEmitEventTimeLag).", S_LAG },
    };
    int running = 0, finished = 0, canceled = 0, failed = 0, slots = 0, free_slots = 0;

    for (int i = 0; i < jm->njobs; i++)
        switch (jm->jobs[i]->state) {
        case JOB_FINISHED: finished++; break;
        case JOB_CANCELED: canceled++; break;
        case JOB_FAILED: failed++; break;
        default: running++; break;
        }
    for (int i = 0; i < jm->ntms; i++) {
        slots += jm->tms[i]->nslots;
        for (int s = 0; s < jm->tms[i]->nslots; s++)
            free_slots += jm->tms[i]->slots[s].job == NULL;
    }
    help(out, "weir_taskmanagers", "gauge", "Registered task managers.");
    weir_buf_appendf(out, "weir_taskmanagers %d\n", jm->ntms);
    help(out, "weir_slots_total", "gauge", "Task slots of all task managers.");
    weir_buf_appendf(out, "weir_slots_total %d\n", slots);
    help(out, "weir_slots_available", "gauge", "Free task slots.");
    weir_buf_appendf(out, "weir_slots_available %d\n", free_slots);
    help(out, "weir_jobs", "gauge", "Jobs by state.");
    weir_buf_appendf(out, "weir_jobs{state=\"running\"} %d\nweir_jobs{state=\"finished\"} %d\n"
                     "weir_jobs{state=\"canceled\"} %d\nweir_jobs{state=\"failed\"} %d\n",
                     running, finished, canceled, failed);
    help(out, "weir_taskmanager_rss_bytes", "gauge", "Resident memory of the task manager.");
    for (int i = 0; i < jm->ntms; i++) {
        weir_buf_appendf(out, "weir_taskmanager_rss_bytes{taskmanager=\"");
        label(out, jm->tms[i]->id);
        weir_buf_appendf(out, "\"} %ld\n", jm->tms[i]->rss_kb * 1024L);
    }
    help(out, "weir_taskmanager_cpu_seconds_total", "counter", "CPU time of the task manager.");
    for (int i = 0; i < jm->ntms; i++) {
        weir_buf_appendf(out, "weir_taskmanager_cpu_seconds_total{taskmanager=\"");
        label(out, jm->tms[i]->id);
        weir_buf_appendf(out, "\"} %.3f\n", (double)jm->tms[i]->cpu_ms / 1000.0);
    }
    /* per job */
    help(out, "weir_job_restarts_total", "counter", "Restarts of the job (numRestarts).");
    for (int i = 0; i < jm->njobs; i++) {
        weir_buf_appendf(out, "weir_job_restarts_total{job=\"%s\",job_name=\"", jm->jobs[i]->id);
        label(out, jm->jobs[i]->name);
        weir_buf_appendf(out, "\"} %d\n", jm->jobs[i]->restarts);
    }
    help(out, "weir_job_checkpoints_completed_total", "counter", "Completed checkpoints.");
    for (int i = 0; i < jm->njobs; i++) {
        weir_buf_appendf(out, "weir_job_checkpoints_completed_total{job=\"%s\",job_name=\"",
                         jm->jobs[i]->id);
        label(out, jm->jobs[i]->name);
        weir_buf_appendf(out, "\"} %d\n", jm->jobs[i]->ckpt_completed);
    }
    help(out, "weir_job_checkpoints_failed_total", "counter", "Failed checkpoints.");
    for (int i = 0; i < jm->njobs; i++) {
        weir_buf_appendf(out, "weir_job_checkpoints_failed_total{job=\"%s\",job_name=\"",
                         jm->jobs[i]->id);
        label(out, jm->jobs[i]->name);
        weir_buf_appendf(out, "\"} %d\n", jm->jobs[i]->ckpt_failed);
    }
    help(out, "weir_job_last_checkpoint_duration_seconds", "gauge",
         "Duration of the latest completed checkpoint (lastCheckpointDuration).");
    for (int i = 0; i < jm->njobs; i++) {
        if (jm->jobs[i]->ckpt_latest == 0)
            continue;
        weir_buf_appendf(out, "weir_job_last_checkpoint_duration_seconds{job=\"%s\",job_name=\"",
                         jm->jobs[i]->id);
        label(out, jm->jobs[i]->name);
        weir_buf_appendf(out, "\"} %.3f\n", (double)jm->jobs[i]->ckpt_latest_ms / 1000.0);
    }
    help(out, "weir_job_last_checkpoint_alignment_seconds", "gauge",
         "Longest barrier alignment of a subtask in the latest completed checkpoint.");
    for (int i = 0; i < jm->njobs; i++) {
        if (jm->jobs[i]->ckpt_latest == 0)
            continue;
        weir_buf_appendf(out, "weir_job_last_checkpoint_alignment_seconds{job=\"%s\",job_name=\"",
                         jm->jobs[i]->id);
        label(out, jm->jobs[i]->name);
        weir_buf_appendf(out, "\"} %.6f\n", (double)jm->jobs[i]->ckpt_latest_align_us / 1e6);
    }
    help(out, "weir_job_last_checkpoint_size_bytes", "gauge",
         "Size of the latest completed checkpoint (lastCheckpointSize).");
    for (int i = 0; i < jm->njobs; i++) {
        if (jm->jobs[i]->ckpt_latest == 0)
            continue;
        weir_buf_appendf(out, "weir_job_last_checkpoint_size_bytes{job=\"%s\",job_name=\"",
                         jm->jobs[i]->id);
        label(out, jm->jobs[i]->name);
        weir_buf_appendf(out, "\"} %" PRIu64 "\n", jm->jobs[i]->ckpt_latest_bytes);
    }
    /* per subtask: one family at a time, as the format requires */
    for (size_t k = 0; k < sizeof(series) / sizeof(series[0]); k++) {
        help(out, series[k].name, series[k].type, series[k].help);
        for (int i = 0; i < jm->njobs; i++) {
            const jm_job_t *j = jm->jobs[i];
            if (jm_job_terminal(j) && j->state != JOB_FINISHED && series[k].type[0] == 'g')
                continue;
            for (int v = 0; v < j->plan->nvertices; v++)
                for (int s = 0; s < j->plan->vertices[v].parallelism; s++) {
                    const jm_subtask_t *st = &j->subtasks[v][s];
                    bool skip;
                    double val = value_of(&st->m, series[k].what, &skip);
                    if (skip || st->m.at_ms == 0)
                        continue;
                    weir_buf_appendf(out, "%s{job=\"%s\",job_name=\"", series[k].name, j->id);
                    label(out, j->name);
                    weir_buf_appendf(out, "\",vertex=\"");
                    label(out, j->plan->vertices[v].name);
                    weir_buf_appendf(out, "\",subtask=\"%d\",taskmanager=\"", s);
                    label(out, st->tm != NULL ? st->tm->id : "");
                    if (series[k].type[0] == 'c')
                        weir_buf_appendf(out, "\"} %.0f\n", val);
                    else
                        weir_buf_appendf(out, "\"} %.3f\n", val);
                }
        }
    }
    /* Kafka sources: per partition (Flink's KafkaSourceReader.topic.*.partition.*) */
    static const struct { const char *name, *help; bool lag; } parts[] = {
        { "weir_kafka_partition_current_offset", "Next offset the source reads in the partition (currentOffset).", false },
        { "weir_kafka_partition_pending_records", "Records of the partition not read yet (pendingRecords).", true },
    };
    for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); k++) {
        help(out, parts[k].name, "gauge", parts[k].help);
        for (int i = 0; i < jm->njobs; i++) {
            const jm_job_t *j = jm->jobs[i];
            if (jm_job_terminal(j))
                continue;
            for (int v = 0; v < j->plan->nvertices; v++)
                for (int s = 0; s < j->plan->vertices[v].parallelism; s++) {
                    const jm_subtask_t *st = &j->subtasks[v][s];
                    for (int p = 0; p < st->m.nsplits; p++) {
                        const struct jm_split *sp = &st->m.splits[p];
                        int64_t val = parts[k].lag ? sp->pending : sp->offset;
                        if (val < 0 || sp->topic == NULL)
                            continue;
                        weir_buf_appendf(out, "%s{job=\"%s\",job_name=\"", parts[k].name, j->id);
                        label(out, j->name);
                        weir_buf_appendf(out, "\",vertex=\"");
                        label(out, j->plan->vertices[v].name);
                        weir_buf_appendf(out, "\",subtask=\"%d\",topic=\"", s);
                        label(out, sp->topic);
                        weir_buf_appendf(out, "\",partition=\"%d\"} %" PRId64 "\n", sp->partition,
                                         val);
                    }
                }
        }
    }
}
