/* runtime/graph/plan.c -- configure, partition and chain a job graph.
 *
 * See plan.h for the rules. The pass order is: resolve every node's kind
 * and parallelism; order nodes topologically; configure each node against
 * its inputs' schemas (this is where parameters, expressions and field
 * names are checked); resolve partitioning per input; chain; build edges.
 * Any error stops the pass with a located message; nothing is half-built
 * in the returned plan.
 */
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const weir_op_kind_t *
find_kind(const char *name, unsigned role)
{
    const weir_op_kind_t *const *kinds;
    int n;

    kinds = weir_op_kinds(&n);
    for (int i = 0; i < n; i++)
        if ((kinds[i]->roles & role) && strcmp(kinds[i]->name, name) == 0)
            return kinds[i];
    return NULL;
}

static const char *
section_noun(weir_section_t s)
{
    return s == WEIR_SECTION_SOURCE ? "source" : s == WEIR_SECTION_SINK ? "sink" : "operator";
}

static int
unknown_kind(const weir_jf_node_t *node, weir_err_t *err)
{
    const weir_op_kind_t *const *kinds;
    const char *names[128], *hint, *elsewhere = NULL;
    int n, m = 0;

    kinds = weir_op_kinds(&n);
    for (int i = 0; i < n && m < 128; i++) {
        if (kinds[i]->roles & (unsigned)node->section)
            names[m++] = kinds[i]->name;
        else if (strcmp(kinds[i]->name, node->kind) == 0)
            elsewhere = section_noun((weir_section_t)(kinds[i]->roles & 1 ? 1 : kinds[i]->roles & 2 ? 2 : 4));
    }
    if (elsewhere != NULL)
        return weir_params_error(&node->params, "kind", WEIR_EINVAL, err,
                                 "'%s' is %s %s kind and cannot be used as a %s",
                                 node->kind, elsewhere[0] == 'o' ? "an" : "a", elsewhere,
                                 section_noun(node->section));
    hint = weir_suggest(node->kind, names, m);
    if (hint != NULL)
        return weir_params_error(&node->params, "kind", WEIR_EINVAL, err,
                                 "unknown %s kind '%s' (did you mean '%s'?)",
                                 section_noun(node->section), node->kind, hint);
    return weir_params_error(&node->params, "kind", WEIR_EINVAL, err,
                             "unknown %s kind '%s'", section_noun(node->section), node->kind);
}

/* Depth-first topological order; the job file parser already rejected cycles. */
static void
topo_visit(const weir_jobfile_t *jf, int v, char *seen, int *order, int *n)
{
    if (seen[v])
        return;
    seen[v] = 1;
    for (int i = 0; i < jf->nodes[v].ninputs; i++)
        topo_visit(jf, jf->nodes[v].inputs[i].from_node, seen, order, n);
    order[(*n)++] = v;
}

static int
resolve_keys(weir_plan_t *p, int node, weir_err_t *err)
{
    const weir_jf_node_t *jn = &p->jf->nodes[node];
    weir_op_config_t *cfg = &p->configs[node];
    int nkeys = -1;

    for (int i = 0; i < jn->ninputs; i++) {
        const weir_jf_input_t *in = &jn->inputs[i];
        const weir_schema_t *s = cfg->input_schemas[i];

        if (in->partition != WEIR_PART_HASH && in->nkeys == 0) {
            if (nkeys > 0)
                return weir_params_error(&in->where, NULL, WEIR_EINVAL, err,
                                         "input '%s' needs key_by like the other inputs", in->from);
            nkeys = 0;
            continue;
        }
        if (nkeys >= 0 && nkeys != in->nkeys)
            return weir_params_error(&in->where, NULL, WEIR_EINVAL, err,
                                     "input '%s' has %d key fields, the other inputs %d",
                                     in->from, in->nkeys, nkeys);
        nkeys = in->nkeys;
        for (int k = 0; k < in->nkeys; k++) {
            int idx = weir_schema_find(s, in->keys[k]);
            if (idx < 0) {
                const char *names[256], *hint;
                int m = 0;
                for (int f = 0; f < s->nfields && m < 256; f++)
                    names[m++] = s->fields[f].name;
                hint = weir_suggest(in->keys[k], names, m);
                return weir_params_error(&in->where, NULL, WEIR_EINVAL, err,
                                         "key_by field '%s' is not in the output of '%s'%s%s%s",
                                         in->keys[k], in->from, hint ? " (did you mean '" : "",
                                         hint ? hint : "", hint ? "'?)" : "");
            }
            if (i > 0 && s->fields[idx].type !=
                             cfg->input_schemas[0]->fields[cfg->key_idx[0][k]].type)
                return weir_params_error(&in->where, NULL, WEIR_ETYPE, err,
                                         "key_by field '%s' of '%s' is %s, but the first input's key is %s",
                                         in->keys[k], in->from,
                                         weir_type_name(s->fields[idx].type),
                                         weir_type_name(cfg->input_schemas[0]->fields[cfg->key_idx[0][k]].type));
            cfg->key_idx[i][k] = idx;
        }
    }
    cfg->nkeys = nkeys > 0 ? nkeys : 0;
    if (cfg->kind->keyed && cfg->nkeys == 0)
        return weir_params_error(&jn->params, "kind", WEIR_EINVAL, err,
                                 "kind '%s' is keyed: set key_by on its input", cfg->kind->name);
    return 0;
}

/* A source's `watermark:` block, against its output schema:
 *   watermark: {field: ts, max_out_of_orderness: 5s, idle_timeout: 1m, interval: 200ms}
 * (a bare duration is the out-of-orderness of the source's own record time) */
static int
read_watermark(const weir_jf_node_t *jn, weir_op_config_t *cfg, weir_err_t *err)
{
    static const char *const keys[] = { "field", "max_out_of_orderness", "idle_timeout",
                                        "interval", NULL };
    weir_wm_conf_t *w = &cfg->watermark;
    weir_params_t b;
    char *field = NULL;
    int rc;

    memset(w, 0, sizeof(*w));
    if (!weir_params_has(&jn->params, "watermark"))
        return 0;
    if (jn->section != WEIR_SECTION_SOURCE)
        return weir_params_error(&jn->params, "watermark", WEIR_EINVAL, err,
                                 "only a source takes 'watermark': event time starts where "
                                 "records enter the job");
    rc = weir_params_child(&jn->params, "watermark", true, &b, err);
    if (rc != 0)
        return rc;
    if (!weir_params_is_map(&b))
        return weir_params_error(&jn->params, "watermark", WEIR_ETYPE, err,
                                 "'watermark' must be a mapping: {field: ts, "
                                 "max_out_of_orderness: 5s, idle_timeout: 1m}");
    if ((rc = weir_params_check_keys(&b, keys, err)) != 0 ||
        (rc = weir_params_opt_str(&b, "field", "", &field, err)) != 0)
        return rc;
    w->on = true;
    w->field = -1;
    if (field[0] != '\0') {
        const weir_schema_t *s = cfg->output_schema;
        int f = weir_schema_find(s, field);
        if (f < 0) {
            const char *names[256];
            int n = s->nfields < 256 ? s->nfields : 256;
            const char *hint;
            for (int i = 0; i < n; i++)
                names[i] = s->fields[i].name;
            hint = weir_suggest(field, names, n);
            rc = weir_params_error(&b, "field", WEIR_ENOENT, err,
                                   "watermark field '%s' is not a field of '%s'%s%s%s", field,
                                   jn->name, hint ? " (did you mean '" : "", hint ? hint : "",
                                   hint ? "'?)" : "");
        } else if (s->fields[f].type != WEIR_T_TIMESTAMP) {
            rc = weir_params_error(&b, "field", WEIR_ETYPE, err,
                                   "watermark field '%s' is %s; event time must be a timestamp "
                                   "field", field, weir_type_name(s->fields[f].type));
        }
        w->field = f;
    } else if (!cfg->kind->own_event_time) {
        rc = weir_params_error(&b, NULL, WEIR_EINVAL, err,
                               "'watermark' needs 'field': the timestamp field that holds "
                               "the event time (kind '%s' has no record time of its own)",
                               cfg->kind->name);
    }
    free(field);
    if (rc != 0)
        return rc;
    if ((rc = weir_params_opt_duration(&b, "max_out_of_orderness", 0,
                                       &w->out_of_orderness_us, err)) != 0 ||
        (rc = weir_params_opt_duration(&b, "idle_timeout", 0, &w->idle_timeout_us, err)) != 0 ||
        (rc = weir_params_opt_duration(&b, "interval", 200000, &w->interval_us, err)) != 0)
        return rc;
    if (w->out_of_orderness_us < 0)
        return weir_params_error(&b, "max_out_of_orderness", WEIR_ERANGE, err,
                                 "max_out_of_orderness must not be negative");
    if (w->idle_timeout_us < 0)
        return weir_params_error(&b, "idle_timeout", WEIR_ERANGE, err,
                                 "idle_timeout must not be negative (0: never idle)");
    if (w->interval_us < 1000)
        return weir_params_error(&b, "interval", WEIR_ERANGE, err,
                                 "watermark interval must be at least 1ms");
    return 0;
}

static int
configure_node(weir_plan_t *p, int node, weir_err_t *err)
{
    weir_jf_node_t *jn = &p->jf->nodes[node];
    weir_op_config_t *cfg = &p->configs[node];
    const weir_op_kind_t *kind = cfg->kind;
    int rc;

    if (jn->ninputs < kind->min_inputs || jn->ninputs > kind->max_inputs) {
        if (kind->min_inputs == kind->max_inputs)
            return weir_params_error(&jn->params, NULL, WEIR_EINVAL, err,
                                     "kind '%s' takes %d input%s, got %d", kind->name,
                                     kind->min_inputs, kind->min_inputs == 1 ? "" : "s", jn->ninputs);
        return weir_params_error(&jn->params, NULL, WEIR_EINVAL, err,
                                 "kind '%s' takes %d to %d inputs, got %d", kind->name,
                                 kind->min_inputs, kind->max_inputs, jn->ninputs);
    }
    cfg->ninputs = jn->ninputs;
    for (int i = 0; i < jn->ninputs; i++) {
        cfg->input_schemas[i] = p->configs[jn->inputs[i].from_node].output_schema;
        cfg->input_aliases[i] = jn->inputs[i].alias ? jn->inputs[i].alias : jn->inputs[i].from;
    }
    rc = resolve_keys(p, node, err);
    if (rc != 0)
        return rc;
    rc = weir_params_check_keys(&jn->params, kind->params, err);
    if (rc != 0)
        return rc;
    rc = kind->configure(cfg, err);
    if (rc != 0) {
        if (err != NULL && err->msg[0] == '\0')
            weir_params_error(&jn->params, NULL, rc, err, "%s", weir_strerror(rc));
        return rc;
    }
    if ((jn->section == WEIR_SECTION_SINK) != (cfg->output_schema == NULL))
        return weir_params_error(&jn->params, "kind", WEIR_ESTATE, err,
                                 "kind '%s' did not derive an output schema", kind->name);
    return read_watermark(jn, cfg, err);
}

static int
resolve_partitions(weir_plan_t *p, weir_err_t *err)
{
    for (int n = 0; n < p->jf->nnodes; n++) {
        weir_jf_node_t *jn = &p->jf->nodes[n];
        for (int i = 0; i < jn->ninputs; i++) {
            weir_jf_input_t *in = &jn->inputs[i];
            int up = p->configs[in->from_node].parallelism;
            int me = p->configs[n].parallelism;

            if (in->partition == WEIR_PART_DEFAULT)
                in->partition = p->configs[n].nkeys > 0 ? WEIR_PART_HASH
                              : up == me ? WEIR_PART_FORWARD : WEIR_PART_REBALANCE;
            if (in->partition == WEIR_PART_FORWARD && up != me)
                return weir_params_error(&in->where, NULL, WEIR_EINVAL, err,
                                         "forward partitioning needs equal parallelism, but '%s' has %d and '%s' has %d",
                                         in->from, up, jn->name, me);
        }
    }
    return 0;
}

static int
add_int(int **arr, int *n, int v)
{
    int *a = realloc(*arr, (size_t)(*n + 1) * sizeof(int));

    if (a == NULL)
        return WEIR_ENOMEM;
    a[(*n)++] = v;
    *arr = a;
    return 0;
}

static int
build_vertices(weir_plan_t *p, const int *order, weir_err_t *err)
{
    size_t nn = (size_t)(p->jf->nnodes > 0 ? p->jf->nnodes : 1);
    int *consumers = calloc(nn, sizeof(int));
    int *vertex_of = malloc(nn * sizeof(int));
    int rc = WEIR_ENOMEM;

    p->vertices = calloc(nn, sizeof(weir_plan_vertex_t));
    p->edges = NULL;
    if (consumers == NULL || vertex_of == NULL || p->vertices == NULL)
        goto out;
    for (int n = 0; n < p->jf->nnodes; n++)
        for (int i = 0; i < p->jf->nodes[n].ninputs; i++)
            consumers[p->jf->nodes[n].inputs[i].from_node]++;

    for (int k = 0; k < p->jf->nnodes; k++) {
        int n = order[k];
        weir_jf_node_t *jn = &p->jf->nodes[n];
        weir_plan_vertex_t *v;
        int up = jn->ninputs == 1 ? jn->inputs[0].from_node : -1;

        if (up >= 0 && jn->inputs[0].partition == WEIR_PART_FORWARD && consumers[up] == 1 &&
            p->configs[up].parallelism == p->configs[n].parallelism) {
            vertex_of[n] = vertex_of[up];
        } else {
            vertex_of[n] = p->nvertices++;
            p->vertices[vertex_of[n]].parallelism = p->configs[n].parallelism;
            p->vertices[vertex_of[n]].keyed = p->configs[n].nkeys > 0;
        }
        v = &p->vertices[vertex_of[n]];
        if (add_int(&v->op_nodes, &v->nops, n) != 0)
            goto out;
    }
    for (int vi = 0; vi < p->nvertices; vi++) {
        weir_plan_vertex_t *v = &p->vertices[vi];
        weir_buf_t name = WEIR_BUF_INIT;

        v->ops = calloc((size_t)v->nops, sizeof(*v->ops));
        if (v->ops == NULL)
            goto out;
        for (int o = 0; o < v->nops; o++) {
            v->ops[o] = &p->configs[v->op_nodes[o]];
            if (weir_buf_appendf(&name, "%s%s", o ? " -> " : "", v->ops[o]->name) != 0) {
                weir_buf_free(&name);
                goto out;
            }
        }
        v->name = name.data;
        /* A head is never chained, so each of its inputs is the tail of
         * another vertex: those inputs become this vertex's edges. */
        weir_jf_node_t *head = &p->jf->nodes[v->op_nodes[0]];
        for (int i = 0; i < head->ninputs; i++) {
            const weir_jf_input_t *in = &head->inputs[i];
            weir_plan_edge_t *e, *edges;
            int src = vertex_of[in->from_node];

            edges = realloc(p->edges, (size_t)(p->nedges + 1) * sizeof(*edges));
            if (edges == NULL)
                goto out;
            p->edges = edges;
            e = &p->edges[p->nedges];
            memset(e, 0, sizeof(*e));
            e->src_vertex = src;
            e->dst_vertex = vi;
            e->dst_input = i;
            e->partition = in->partition;
            e->nkeys = in->partition == WEIR_PART_HASH ? p->configs[v->op_nodes[0]].nkeys : 0;
            memcpy(e->key_idx, p->configs[v->op_nodes[0]].key_idx[i], sizeof(e->key_idx));
            e->schema = p->configs[in->from_node].output_schema;
            if (add_int(&v->in_edges, &v->nin, p->nedges) != 0 ||
                add_int(&p->vertices[src].out_edges, &p->vertices[src].nout, p->nedges) != 0)
                goto out;
            p->nedges++;
        }
    }
    for (int vi = 0; vi < p->nvertices; vi++)
        if (p->vertices[vi].parallelism > p->slots)
            p->slots = p->vertices[vi].parallelism;
    rc = 0;
out:
    if (rc != 0)
        weir_err_set(err, rc, "planner: out of memory");
    free(consumers);
    free(vertex_of);
    return rc;
}

/* The job's `config:` block: settings of the runtime for this job. */
static int
read_config(weir_plan_t *p, weir_err_t *err)
{
    static const char *const keys[] = { "state.backend", NULL };
    weir_params_t cfg;
    char *backend = NULL;
    int rc;

    rc = weir_params_child(&p->jf->root, "config", false, &cfg, err);
    if (rc != 0 || cfg.node == NULL)
        return rc;
    if ((rc = weir_params_check_keys(&cfg, keys, err)) != 0 ||
        (rc = weir_params_opt_str(&cfg, "state.backend", "rocksdb", &backend, err)) != 0)
        return rc;
    if (strcmp(backend, "rocksdb") == 0 || strcmp(backend, "memory") == 0)
        p->state_in_memory = strcmp(backend, "memory") == 0;
    else
        rc = weir_params_error(&cfg, "state.backend", WEIR_EINVAL, err,
                               "state.backend must be 'rocksdb' or 'memory', not '%s'", backend);
    free(backend);
    return rc;
}

/* The job's `checkpoint:` block (Flink's execution.checkpointing.*). */
static int
read_checkpoint(weir_plan_t *p, weir_err_t *err)
{
    static const char *const keys[] = { "interval", "min_pause", "timeout", "max_concurrent",
                                        "tolerable_failures", "mode", "retained", NULL };
    weir_ckpt_conf_t *c = &p->ckpt;
    weir_params_t b;
    char *mode = NULL;
    int64_t n;
    int rc;

    c->interval_us = 0;
    c->min_pause_us = 0;
    c->timeout_us = 600 * 1000000LL;
    c->max_concurrent = 1;
    c->tolerable_failures = 0;
    c->exactly_once = true;
    c->retained = 1;
    rc = weir_params_child(&p->jf->root, "checkpoint", false, &b, err);
    if (rc != 0 || b.node == NULL)
        return rc;
    if (!weir_params_is_map(&b))
        return weir_params_error(&p->jf->root, "checkpoint", WEIR_ETYPE, err,
                                 "'checkpoint' must be a mapping (interval, mode, ...)");
    if ((rc = weir_params_check_keys(&b, keys, err)) != 0)
        return rc;
    if ((rc = weir_params_opt_duration(&b, "interval", 0, &c->interval_us, err)) != 0)
        return rc;
    if (c->interval_us != 0 && c->interval_us < 10000)
        return weir_params_error(&b, "interval", WEIR_ERANGE, err,
                                 "checkpoint interval must be at least 10ms (or 0: off)");
    if (!weir_params_has(&b, "interval"))
        return weir_params_error(&b, NULL, WEIR_EINVAL, err,
                                 "'checkpoint' needs an 'interval' (e.g. 5s)");
    if ((rc = weir_params_opt_duration(&b, "min_pause", 0, &c->min_pause_us, err)) != 0 ||
        (rc = weir_params_opt_duration(&b, "timeout", c->timeout_us, &c->timeout_us, err)) != 0)
        return rc;
    if (c->min_pause_us < 0)
        return weir_params_error(&b, "min_pause", WEIR_ERANGE, err,
                                 "min_pause must not be negative");
    if (c->timeout_us < 10000)
        return weir_params_error(&b, "timeout", WEIR_ERANGE, err,
                                 "checkpoint timeout must be at least 10ms");
    if ((rc = weir_params_opt_int(&b, "max_concurrent", 1, &n, err)) != 0)
        return rc;
    if (n != 1)
        return weir_params_error(&b, "max_concurrent", WEIR_EINVAL, err,
                                 "max_concurrent must be 1 (one checkpoint at a time)");
    if ((rc = weir_params_opt_int(&b, "tolerable_failures", 0, &n, err)) != 0)
        return rc;
    if (n < 0 || n > 1000000)
        return weir_params_error(&b, "tolerable_failures", WEIR_ERANGE, err,
                                 "tolerable_failures must be 0..1000000");
    c->tolerable_failures = (int)n;
    if ((rc = weir_params_opt_int(&b, "retained", 1, &n, err)) != 0)
        return rc;
    if (n < 1 || n > 1000)
        return weir_params_error(&b, "retained", WEIR_ERANGE, err, "retained must be 1..1000");
    c->retained = (int)n;
    if ((rc = weir_params_opt_str(&b, "mode", "exactly_once", &mode, err)) != 0)
        return rc;
    if (strcmp(mode, "exactly_once") == 0)
        c->exactly_once = true;
    else if (strcmp(mode, "at_least_once") == 0)
        c->exactly_once = false;
    else
        rc = weir_params_error(&b, "mode", WEIR_EINVAL, err,
                               "mode must be exactly_once or at_least_once, not '%s'", mode);
    free(mode);
    return rc;
}

/* The job's `restart:` block (Flink's restart-strategy.*). Without one, a
 * job with checkpoints restarts without limit every second (Flink's default
 * then), and a job without checkpoints does not restart. */
static int
read_restart(weir_plan_t *p, weir_err_t *err)
{
    static const char *const keys[] = { "strategy", "attempts", "delay", "initial", "max",
                                        "multiplier", "reset_threshold", NULL };
    weir_restart_conf_t *r = &p->restart;
    weir_params_t b;
    char *strategy = NULL;
    int64_t n;
    int rc;

    r->strategy = p->ckpt.interval_us > 0 ? WEIR_RESTART_FIXED : WEIR_RESTART_NONE;
    r->attempts = -1;
    r->delay_us = 1000000;
    r->initial_us = 1000000;
    r->max_us = 60 * 1000000LL;
    r->multiplier = 2.0;
    r->reset_us = 3600 * 1000000LL;
    rc = weir_params_child(&p->jf->root, "restart", false, &b, err);
    if (rc != 0 || b.node == NULL)
        return rc;
    if (!weir_params_is_map(&b))
        return weir_params_error(&p->jf->root, "restart", WEIR_ETYPE, err,
                                 "'restart' must be a mapping (strategy, ...)");
    if ((rc = weir_params_check_keys(&b, keys, err)) != 0 ||
        (rc = weir_params_req_str(&b, "strategy", &strategy, err)) != 0)
        return rc;
    if (strcmp(strategy, "none") == 0) {
        r->strategy = WEIR_RESTART_NONE;
    } else if (strcmp(strategy, "fixed_delay") == 0) {
        r->strategy = WEIR_RESTART_FIXED;
    } else if (strcmp(strategy, "exponential_delay") == 0) {
        r->strategy = WEIR_RESTART_EXPONENTIAL;
    } else {
        rc = weir_params_error(&b, "strategy", WEIR_EINVAL, err,
                               "strategy must be none, fixed_delay or exponential_delay, not "
                               "'%s'", strategy);
        free(strategy);
        return rc;
    }
    free(strategy);
    static const char *const fixed_only[] = { "attempts", "delay", NULL };
    static const char *const exp_only[] = { "initial", "max", "multiplier", "reset_threshold",
                                            NULL };
    for (int i = 0; fixed_only[i] != NULL; i++)
        if (r->strategy != WEIR_RESTART_FIXED && weir_params_has(&b, fixed_only[i]))
            return weir_params_error(&b, fixed_only[i], WEIR_EINVAL, err,
                                     "'%s' belongs to strategy fixed_delay", fixed_only[i]);
    for (int i = 0; exp_only[i] != NULL; i++)
        if (r->strategy != WEIR_RESTART_EXPONENTIAL && weir_params_has(&b, exp_only[i]))
            return weir_params_error(&b, exp_only[i], WEIR_EINVAL, err,
                                     "'%s' belongs to strategy exponential_delay", exp_only[i]);
    if ((rc = weir_params_opt_int(&b, "attempts", -1, &n, err)) != 0)
        return rc;
    if (n < -1 || n > 1000000000)
        return weir_params_error(&b, "attempts", WEIR_ERANGE, err,
                                 "attempts must be -1 (no limit) or 0..1000000000");
    r->attempts = (int)n;
    if ((rc = weir_params_opt_duration(&b, "delay", r->delay_us, &r->delay_us, err)) != 0 ||
        (rc = weir_params_opt_duration(&b, "initial", r->initial_us, &r->initial_us, err)) != 0 ||
        (rc = weir_params_opt_duration(&b, "max", r->max_us, &r->max_us, err)) != 0 ||
        (rc = weir_params_opt_duration(&b, "reset_threshold", r->reset_us, &r->reset_us,
                                       err)) != 0 ||
        (rc = weir_params_opt_double(&b, "multiplier", r->multiplier, &r->multiplier, err)) != 0)
        return rc;
    if (r->delay_us < 0 || r->initial_us < 0 || r->max_us < r->initial_us)
        return weir_params_error(&b, NULL, WEIR_ERANGE, err,
                                 "delays must not be negative, and max must be >= initial");
    if (!(r->multiplier >= 1.0 && r->multiplier <= 1000.0))
        return weir_params_error(&b, "multiplier", WEIR_ERANGE, err,
                                 "multiplier must be between 1 and 1000");
    return 0;
}

int
weir_plan_build(weir_jobfile_t *jf, int parallelism, weir_plan_t **out, weir_err_t *err)
{
    weir_plan_t *p;
    int *order = NULL, norder = 0, rc;
    char *seen = NULL;

    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        weir_jobfile_destroy(jf);
        return weir_err_set(err, WEIR_ENOMEM, "planner: out of memory");
    }
    p->jf = jf;
    p->parallelism = parallelism > 0 ? parallelism : jf->parallelism;
    p->max_parallelism = jf->max_parallelism;
    p->nconfigs = jf->nnodes;
    p->configs = calloc((size_t)jf->nnodes, sizeof(*p->configs));
    order = malloc((size_t)jf->nnodes * sizeof(int) + 1);
    seen = calloc((size_t)jf->nnodes + 1, 1);
    if (p->configs == NULL || order == NULL || seen == NULL) {
        rc = weir_err_set(err, WEIR_ENOMEM, "planner: out of memory");
        goto fail;
    }
    if (p->parallelism > p->max_parallelism) {
        rc = weir_params_error(&jf->root, "max_parallelism", WEIR_EINVAL, err,
                               "parallelism %d exceeds max_parallelism %d",
                               p->parallelism, p->max_parallelism);
        goto fail;
    }
    for (int n = 0; n < jf->nnodes; n++) {
        weir_jf_node_t *jn = &jf->nodes[n];
        weir_op_config_t *cfg = &p->configs[n];

        cfg->kind = find_kind(jn->kind, (unsigned)jn->section);
        if (cfg->kind == NULL) {
            rc = unknown_kind(jn, err);
            goto fail;
        }
        cfg->name = jn->name;
        cfg->params = jn->params;
        cfg->parallelism = jn->parallelism > 0 ? jn->parallelism : p->parallelism;
        /* a node's own parallelism was checked against max_parallelism by
         * the job file layer, the job's default just above */
        cfg->max_parallelism = p->max_parallelism;
    }
    rc = read_config(p, err);
    if (rc == 0)
        rc = read_checkpoint(p, err);
    if (rc == 0)
        rc = read_restart(p, err);
    if (rc != 0)
        goto fail;
    for (int n = 0; n < jf->nnodes; n++)
        topo_visit(jf, n, seen, order, &norder);
    for (int k = 0; k < norder; k++) {
        rc = configure_node(p, order[k], err);
        if (rc != 0)
            goto fail;
    }
    rc = resolve_partitions(p, err);
    if (rc != 0)
        goto fail;
    rc = build_vertices(p, order, err);
    if (rc != 0)
        goto fail;
    free(order);
    free(seen);
    *out = p;
    return 0;

fail:
    free(order);
    free(seen);
    weir_plan_destroy(p);
    return rc;
}

void
weir_plan_destroy(weir_plan_t *p)
{
    if (p == NULL)
        return;
    for (int v = 0; v < p->nvertices; v++) {
        free(p->vertices[v].name);
        free(p->vertices[v].ops);
        free(p->vertices[v].op_nodes);
        free(p->vertices[v].in_edges);
        free(p->vertices[v].out_edges);
    }
    free(p->vertices);
    free(p->edges);
    for (int n = 0; n < p->nconfigs && p->configs != NULL; n++) {
        weir_op_config_t *cfg = &p->configs[n];
        if (cfg->conf != NULL && cfg->kind != NULL && cfg->kind->conf_free != NULL)
            cfg->kind->conf_free(cfg->conf);
        weir_schema_unref(cfg->output_schema);
    }
    free(p->configs);
    weir_jobfile_destroy(p->jf);
    free(p);
}

int
weir_plan_from_text(const char *path, const char *text, size_t len, const weir_vars_t *vars,
                    int parallelism, weir_plan_t **out, weir_err_t *err)
{
    weir_jobfile_t *jf;
    int rc;

    rc = weir_jobfile_parse(path, text, len, vars, &jf, err);
    if (rc != 0)
        return rc;
    return weir_plan_build(jf, parallelism, out, err);
}

int
weir_plan_describe(const weir_plan_t *p, weir_buf_t *out)
{
    char sbuf[1024];
    int rc = 0;

    rc |= weir_buf_appendf(out, "job '%s': %d vertices, %d edges, parallelism %d, max parallelism %d, %d slots\n",
                           p->jf->name, p->nvertices, p->nedges, p->parallelism,
                           p->max_parallelism, p->slots);
    for (int v = 0; v < p->nvertices; v++) {
        const weir_plan_vertex_t *pv = &p->vertices[v];
        rc |= weir_buf_appendf(out, "  v%d  %s  (parallelism %d%s)\n", v, pv->name,
                               pv->parallelism, pv->keyed ? ", keyed" : "");
        for (int o = 0; o < pv->nops; o++) {
            const weir_op_config_t *c = pv->ops[o];
            rc |= weir_buf_appendf(out, "        %-16s %-10s -> %s\n", c->name, c->kind->name,
                                   c->output_schema ? weir_schema_describe(c->output_schema, sbuf, sizeof(sbuf))
                                                    : "(sink)");
            if (c->watermark.on) {
                const weir_wm_conf_t *w = &c->watermark;
                rc |= weir_buf_appendf(out, "        %-16s event time %s%s, out of order by %gs",
                                       "", w->field >= 0 ? "field " : "the record time",
                                       w->field >= 0 ? c->output_schema->fields[w->field].name : "",
                                       (double)w->out_of_orderness_us / 1e6);
                if (w->idle_timeout_us > 0)
                    rc |= weir_buf_appendf(out, ", idle after %gs",
                                           (double)w->idle_timeout_us / 1e6);
                rc |= weir_buf_appendf(out, ", every %gms\n", (double)w->interval_us / 1e3);
            }
        }
    }
    for (int e = 0; e < p->nedges; e++) {
        const weir_plan_edge_t *pe = &p->edges[e];
        rc |= weir_buf_appendf(out, "  v%d -> v%d  %s", pe->src_vertex, pe->dst_vertex,
                               weir_partition_name(pe->partition));
        for (int k = 0; k < pe->nkeys; k++)
            rc |= weir_buf_appendf(out, "%s%s", k ? ", " : " by ", pe->schema->fields[pe->key_idx[k]].name);
        rc |= weir_buf_appendf(out, "\n");
    }
    return rc ? WEIR_ENOMEM : 0;
}
