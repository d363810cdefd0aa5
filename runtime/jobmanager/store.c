/* runtime/jobmanager/store.c -- submitted jobs on disk, for job manager
 * restarts.
 *
 * With --data-dir DIR, every job is a file DIR/jobs/<id>.json (the job
 * text, variables, parallelism, state, attempt, restarts, last failure),
 * rewritten atomically whenever the job changes state. A job manager
 * started with the same DIR loads them: finished, failed and canceled jobs
 * come back as history; the others are scheduled again as soon as task
 * managers (which reconnect by themselves) offer the slots, restored from
 * their latest completed checkpoint, which is found on disk: a checkpoint
 * is complete exactly when its _metadata file exists (checkpoint.c).
 */
#include <dirent.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../core/fsutil.h"
#include "../core/log.h"
#include "jm.h"

void
jm_store_save(jm_t *jm, const jm_job_t *j)
{
    char path[PATH_MAX];
    json_t *o, *vars;
    weir_err_t err = { 0 };
    char *text;

    if (jm->data_dir[0] == '\0')
        return;
    vars = json_object();
    for (int i = 0; i < j->vars.n; i++)
        json_object_set_new(vars, j->vars.keys[i], json_string(j->vars.vals[i]));
    o = json_pack("{s:i, s:s, s:s, s:s, s:s%, s:o, s:i, s:s, s:i, s:i, s:I, s:I, s:o, s:I, s:o}",
                  "format", 1, "id", j->id, "name", j->name ? j->name : "",
                  "path", j->path ? j->path : "", "text", j->text ? j->text : "", j->text_len,
                  "vars", vars, "parallelism", j->parallelism_override,
                  "state", jm_job_state_name(j->state), "attempt", j->attempt,
                  "restarts", j->restarts, "submit_ms", (json_int_t)j->submit_ms,
                  "end_ms", (json_int_t)j->end_ms,
                  "failure", j->failure ? json_string(j->failure) : json_null(),
                  "latest", (json_int_t)j->ckpt_latest,
                  "latest_dir", j->ckpt_latest_dir ? json_string(j->ckpt_latest_dir)
                                                   : json_null());
    if (o == NULL)
        return;
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text == NULL)
        return;
    snprintf(path, sizeof(path), "%s/jobs", jm->data_dir);
    if (weir_mkdir_p(path, &err) == 0) {
        snprintf(path, sizeof(path), "%s/jobs/%s.json", jm->data_dir, j->id);
        weir_write_file_atomic(path, text, strlen(text), &err);
    }
    if (err.code != 0)
        weir_log_warn("[job:%.8s] cannot save the job: %s", j->id, err.msg);
    free(text);
}

static int
state_of(const char *name)
{
    for (int s = JOB_CREATED; s <= JOB_RESTARTING; s++)
        if (strcmp(jm_job_state_name((job_state_t)s), name) == 0)
            return s;
    return -1;
}

static void
load_one(jm_t *jm, const char *path)
{
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je), *vars, *v;
    weir_vars_t wv = { 0 };
    weir_err_t err = { 0 };
    jm_job_t *j;
    const char *key, *text;
    int st;

    if (o == NULL) {
        weir_log_warn("skipping saved job %s: %s", path, je.text);
        return;
    }
    vars = json_object_get(o, "vars");
    json_object_foreach(vars, key, v)
        if (json_is_string(v))
            weir_vars_set(&wv, key, json_string_value(v));
    text = json_string_value(json_object_get(o, "text"));
    st = state_of(json_string_value(json_object_get(o, "state")) ?: "");
    if (text == NULL || st < 0 ||
        jm_job_create(jm, json_string_value(json_object_get(o, "id")),
                      json_string_value(json_object_get(o, "path")) ?: "<job>", text,
                      json_string_length(json_object_get(o, "text")), &wv,
                      (int)json_integer_value(json_object_get(o, "parallelism")), &j,
                      &err) != 0) {
        weir_log_warn("skipping saved job %s: %s", path, err.msg[0] ? err.msg : "malformed");
        weir_vars_free(&wv);
        json_decref(o);
        return;
    }
    weir_vars_free(&wv);
    j->submit_ms = (uint64_t)json_integer_value(json_object_get(o, "submit_ms"));
    j->restarts = (int)json_integer_value(json_object_get(o, "restarts"));
    j->attempt = (int)json_integer_value(json_object_get(o, "attempt"));
    if (json_is_string(json_object_get(o, "failure")))
        j->failure = strdup(json_string_value(json_object_get(o, "failure")));
    if (st == JOB_FINISHED || st == JOB_FAILED || st == JOB_CANCELED) {
        j->state = (job_state_t)st;
        j->end_ms = (uint64_t)json_integer_value(json_object_get(o, "end_ms"));
    } else {
        /* it was running (or about to): run it again from its checkpoint */
        jm_ckpt_scan(jm, j);
        if (j->ckpt_latest == 0 && json_is_string(json_object_get(o, "latest_dir"))) {
            /* started from a savepoint, no checkpoint of its own yet */
            char meta[PATH_MAX];
            struct stat st;
            const char *dir = json_string_value(json_object_get(o, "latest_dir"));
            snprintf(meta, sizeof(meta), "%s/_metadata", dir);
            if (stat(meta, &st) == 0) {
                j->ckpt_latest = json_integer_value(json_object_get(o, "latest"));
                if (j->ckpt_latest > j->ckpt_next)
                    j->ckpt_next = j->ckpt_latest;
                j->ckpt_latest_dir = strdup(dir);
            }
        }
        j->attempt++;
        j->state = JOB_CREATED;
        j->wait_since_mono = jm_mono_ms();
        weir_log_info("[job:%.8s] resuming '%s' as attempt %d%s", j->id, j->name, j->attempt,
                      j->ckpt_latest > 0 ? " from its latest checkpoint" : " from the start");
        jm_store_save(jm, j);
    }
    json_decref(o);
}

int
jm_store_load(jm_t *jm, weir_err_t *err)
{
    char dir[PATH_MAX];
    struct dirent *de;
    DIR *d;
    int n = 0;

    if (jm->data_dir[0] == '\0')
        return 0;
    snprintf(dir, sizeof(dir), "%s/jobs", jm->data_dir);
    if (weir_mkdir_p(dir, err) != 0)
        return err->code;
    d = opendir(dir);
    if (d == NULL)
        return weir_err_set(err, WEIR_EIO, "cannot read %s", dir);
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        char path[PATH_MAX];
        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        load_one(jm, path);
        n++;
    }
    closedir(d);
    if (n > 0)
        weir_log_info("loaded %d saved job(s) from %s", n, dir);
    return 0;
}
