/* runtime/graph/jobfile.c -- parse a YAML job file and check its structure.
 *
 * libfyaml builds the document; this file turns it into the job graph of
 * jobfile.h (nodes in file order: sources, operators, sinks; each input
 * resolved to a node index with its partitioning and keys) and rejects what
 * no planner could use, each time with "path:line:col: reason" at the
 * offending scalar:
 *
 *   - YAML errors (libfyaml's own message and position, collected through a
 *     diag object so nothing reaches stderr), more than one document,
 *     aliases (an alias bomb would make a small file expand without bound,
 *     and job files have no need for them);
 *   - a root that is not a mapping, unknown top-level keys (did-you-mean);
 *   - nodes: `name` present, well-formed ([A-Za-z0-9_.-]+) and unique across
 *     sections; `kind` present; sources without inputs; operators and sinks
 *     with exactly one of `input`/`inputs`; inputs that name an existing node
 *     that is not a sink; partition names; key_by lists; cycles;
 *   - parallelism and max_parallelism in 1..32768, parallelism <=
 *     max_parallelism.
 *
 * Partitioning per input: the input's own `partition`/`key_by` win over the
 * node's. key_by implies hash; an input that sets a partition other than
 * hash does not inherit the node's key_by (a broadcast side input of a keyed
 * node), but key_by together with a non-hash partition on the same level is
 * an error, and so is hash without key_by.
 *
 * libfyaml 0.7 has no start mark for collections, only for scalar tokens, so
 * after parsing we replay the document through a document iterator (which
 * emits events carrying the collections' start tokens) in step with a walk
 * of the nodes, and keep node -> mark in a sorted table that params.c asks
 * through weir__jobfile_node_mark().
 */
#include "jobfile.h"

#include <errno.h>
#include <libfyaml.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define JOBFILE_MAX_BYTES  (8u << 20)     /* job files are small; REST has its own limit */
#define JOBFILE_MAX_NODES  1024
#define JOBFILE_MAX_INPUTS 64
#define JOBFILE_MAX_KEYS   8
#define PARALLELISM_MAX    32768
#define MAX_PARALLELISM_DEFAULT 128

typedef struct node_mark {
    struct fy_node *node;
    int             line, col;            /* 0-based */
} node_mark_t;

/* The job file and what only this file sees. 'pub' is first: a
 * weir_jobfile_t * from weir_jobfile_parse points at one of these. */
typedef struct jobfile_int {
    weir_jobfile_t pub;
    node_mark_t   *marks;                 /* sorted by node address */
    int            nmarks, capmarks;
    char         **whats;                 /* per node: "operator 'big'" (owned) */
} jobfile_int_t;

static const char *const top_keys[] = {
    "name", "parallelism", "max_parallelism", "sources", "operators", "sinks",
    "checkpoint", "restart", "config", "description", NULL,
};

static const char *const input_keys[] = { "from", "as", "partition", "key_by", NULL };

static const char *const partition_names[] = {
    [WEIR_PART_DEFAULT] = "default", [WEIR_PART_FORWARD] = "forward",
    [WEIR_PART_REBALANCE] = "rebalance", [WEIR_PART_BROADCAST] = "broadcast",
    [WEIR_PART_HASH] = "hash",
};

const char *
weir_partition_name(weir_partition_t p)
{
    if ((unsigned)p >= sizeof(partition_names) / sizeof(partition_names[0]))
        return "unknown";
    return partition_names[p];
}

/* ---- node marks ------------------------------------------------------ */

static int
mark_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const node_mark_t *)a)->node;
    uintptr_t y = (uintptr_t)((const node_mark_t *)b)->node;

    return (x > y) - (x < y);
}

bool
weir__jobfile_node_mark(const weir_jobfile_t *jf, struct fy_node *node, int *line, int *col)
{
    const jobfile_int_t *ji = (const jobfile_int_t *)jf;
    node_mark_t key = { .node = node }, *m;

    if (ji == NULL || ji->nmarks == 0 || node == NULL)
        return false;
    m = bsearch(&key, ji->marks, (size_t)ji->nmarks, sizeof(*m), mark_cmp);
    if (m == NULL)
        return false;
    *line = m->line;
    *col = m->col;
    return true;
}

typedef struct walk {
    jobfile_int_t               *ji;
    struct fy_document_iterator *it;
    bool                         in_step;  /* events still match the walk */
} walk_t;

/* Takes the next event, which must be of type 'want' for node n, and records
 * its start mark. A mismatch stops the recording (positions then fall back
 * to the nearest scalar), never the parse. */
static int
walk_event(walk_t *w, struct fy_node *n, enum fy_event_type want)
{
    struct fy_event *ev;
    const struct fy_mark *m;

    if (!w->in_step)
        return 0;
    ev = fy_document_iterator_body_next(w->it);
    if (ev == NULL || ev->type != want) {
        w->in_step = false;
        if (ev != NULL)
            fy_document_iterator_event_free(w->it, ev);
        return 0;
    }
    m = fy_event_start_mark(ev);
    if (n != NULL && m != NULL && m->line >= 0) {
        if (w->ji->nmarks == w->ji->capmarks) {
            int cap = w->ji->capmarks ? 2 * w->ji->capmarks : 64;
            node_mark_t *nm = realloc(w->ji->marks, (size_t)cap * sizeof(*nm));

            if (nm == NULL) {
                fy_document_iterator_event_free(w->it, ev);
                return WEIR_ENOMEM;
            }
            w->ji->marks = nm;
            w->ji->capmarks = cap;
        }
        w->ji->marks[w->ji->nmarks++] = (node_mark_t){ n, m->line, m->column };
    }
    fy_document_iterator_event_free(w->it, ev);
    return 0;
}

/* Pre-order walk of n in step with the iterator; rejects aliases. */
static int
walk_node(walk_t *w, struct fy_node *n, weir_err_t *err)
{
    void *iter = NULL;
    int rc;

    if (n == NULL)
        return walk_event(w, NULL, FYET_SCALAR);
    if (fy_node_is_alias(n)) {
        weir_params_t at = { .jf = &w->ji->pub, .node = n };
        size_t len;
        const char *t = fy_node_get_scalar(n, &len);

        return weir_params_error(&at, NULL, WEIR_EINVAL, err,
                                 "YAML aliases (*%.*s) are not supported in job files",
                                 t ? (int)len : 0, t ? t : "");
    }
    if (fy_node_is_scalar(n))
        return walk_event(w, n, FYET_SCALAR);
    if (fy_node_is_mapping(n)) {
        struct fy_node_pair *pair;

        if ((rc = walk_event(w, n, FYET_MAPPING_START)) != 0)
            return rc;
        while ((pair = fy_node_mapping_iterate(n, &iter)) != NULL) {
            if ((rc = walk_node(w, fy_node_pair_key(pair), err)) != 0 ||
                (rc = walk_node(w, fy_node_pair_value(pair), err)) != 0)
                return rc;
        }
        return walk_event(w, NULL, FYET_MAPPING_END);
    }
    {
        struct fy_node *item;

        if ((rc = walk_event(w, n, FYET_SEQUENCE_START)) != 0)
            return rc;
        while ((item = fy_node_sequence_iterate(n, &iter)) != NULL)
            if ((rc = walk_node(w, item, err)) != 0)
                return rc;
        return walk_event(w, NULL, FYET_SEQUENCE_END);
    }
}

static int
record_marks(jobfile_int_t *ji, struct fy_node *root, weir_err_t *err)
{
    walk_t w = { .ji = ji, .it = fy_document_iterator_create(), .in_step = true };
    int rc;

    if (w.it == NULL)
        return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    fy_document_iterator_node_start(w.it, root);
    rc = walk_node(&w, root, err);
    fy_document_iterator_destroy(w.it);
    if (rc == WEIR_ENOMEM)
        return weir_err_set(err, rc, "out of memory");
    if (rc != 0)
        return rc;
    if (ji->nmarks > 1)
        qsort(ji->marks, (size_t)ji->nmarks, sizeof(*ji->marks), mark_cmp);
    return 0;
}

/* ---- YAML ------------------------------------------------------------ */

/* Formats libfyaml's first collected error (1-based positions). */
static int
yaml_error(const weir_jobfile_t *jf, struct fy_diag *diag, weir_err_t *err)
{
    struct fy_diag_error *e;
    void *iter = NULL;

    while ((e = fy_diag_errors_iterate(diag, &iter)) != NULL) {
        if (e->type < FYET_ERROR)
            continue;
        if (e->line > 0)
            return weir_err_set(err, WEIR_EPARSE, "%s:%d:%d: %s", jf->path, e->line,
                                e->column > 0 ? e->column : 1, e->msg ? e->msg : "invalid YAML");
        return weir_err_set(err, WEIR_EPARSE, "%s: %s", jf->path, e->msg ? e->msg : "invalid YAML");
    }
    return weir_err_set(err, WEIR_EPARSE, "%s: invalid YAML", jf->path);
}

static int
load_yaml(jobfile_int_t *ji, weir_err_t *err)
{
    weir_jobfile_t *jf = &ji->pub;
    struct fy_diag_cfg dcfg;
    struct fy_parse_cfg pcfg;
    struct fy_diag *diag;
    struct fy_parser *fyp = NULL;
    struct fy_document *extra = NULL;
    int rc = 0;

    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = NULL;
    dcfg.colorize = false;
    diag = fy_diag_create(&dcfg);
    if (diag == NULL)
        return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    fy_diag_set_collect_errors(diag, true);
    memset(&pcfg, 0, sizeof(pcfg));
    pcfg.flags = FYPCF_QUIET;
    pcfg.diag = diag;
    fyp = fy_parser_create(&pcfg);
    if (fyp == NULL || fy_parser_set_string(fyp, jf->text, jf->text_len) != 0) {
        rc = weir_err_set(err, WEIR_ENOMEM, "out of memory");
        goto out;
    }
    jf->doc = fy_parse_load_document(fyp);
    if (jf->doc == NULL || fy_diag_got_error(diag)) {
        rc = fy_diag_got_error(diag) ? yaml_error(jf, diag, err)
                                     : weir_err_set(err, WEIR_EPARSE, "%s: the job file is empty",
                                                    jf->path);
        goto out;
    }
    extra = fy_parse_load_document(fyp);
    if (fy_diag_got_error(diag)) {
        rc = yaml_error(jf, diag, err);
    } else if (extra != NULL) {
        const struct fy_mark *m = fy_document_state_start_mark(fy_document_get_document_state(extra));

        rc = weir_err_set(err, WEIR_EPARSE, "%s:%d:%d: a job file holds one YAML document, "
                          "but a second one starts here", jf->path,
                          m != NULL ? m->line + 1 : 1, m != NULL ? m->column + 1 : 1);
    } else if (fy_document_root(jf->doc) == NULL) {
        rc = weir_err_set(err, WEIR_EPARSE, "%s: the job file is empty", jf->path);
    }
out:
    if (extra != NULL)
        fy_parse_document_destroy(fyp, extra);
    if (fyp != NULL)
        fy_parser_destroy(fyp);
    fy_diag_destroy(diag);
    return rc;
}

/* ---- helpers --------------------------------------------------------- */

/* The pair of map with plain key 'key' (present even when its value is
 * null), or NULL. */
static struct fy_node_pair *
find_pair(struct fy_node *map, const char *key)
{
    struct fy_node_pair *pair;
    void *iter = NULL;
    size_t klen = strlen(key);

    while ((pair = fy_node_mapping_iterate(map, &iter)) != NULL) {
        struct fy_node *k = fy_node_pair_key(pair);
        const char *t;
        size_t len;

        if (k == NULL || !fy_node_is_scalar(k))
            continue;
        t = fy_node_get_scalar(k, &len);
        if (t != NULL && len == klen && memcmp(t, key, len) == 0)
            return pair;
    }
    return NULL;
}

static struct fy_node *
find_value(struct fy_node *map, const char *key)
{
    struct fy_node_pair *pair = find_pair(map, key);

    return pair != NULL ? fy_node_pair_value(pair) : NULL;
}

/* Rejects keys of p's mapping outside 'allowed' (no common keys). */
static int
check_exact_keys(const weir_params_t *p, const char *const *allowed, const char *noun,
                 weir_err_t *err)
{
    struct fy_node_pair *pair;
    void *iter = NULL;
    int n = 0;

    while (allowed[n] != NULL)
        n++;
    while ((pair = fy_node_mapping_iterate(p->node, &iter)) != NULL) {
        weir_params_t at = { .jf = p->jf, .node = fy_node_pair_key(pair), .what = p->what };
        const char *t = NULL, *hint;
        char name[128];
        size_t len = 0;
        bool ok = false;

        if (at.node != NULL && fy_node_is_scalar(at.node))
            t = fy_node_get_scalar(at.node, &len);
        if (t == NULL) {
            at.node = at.node != NULL ? at.node : p->node;
            return weir_params_error(&at, NULL, WEIR_EINVAL, err, "%s must be plain words", noun);
        }
        for (int i = 0; i < n && !ok; i++)
            ok = strlen(allowed[i]) == len && memcmp(allowed[i], t, len) == 0;
        if (ok)
            continue;
        snprintf(name, sizeof(name), "%.*s", (int)(len < 127 ? len : 127), t);
        hint = weir_suggest(name, allowed, n);
        if (hint != NULL)
            return weir_params_error(&at, NULL, WEIR_EINVAL, err,
                                     "unknown %s '%s' (did you mean '%s'?)", noun, name, hint);
        return weir_params_error(&at, NULL, WEIR_EINVAL, err, "unknown %s '%s'", noun, name);
    }
    return 0;
}

/* An optional integer parameter in 1..PARALLELISM_MAX; *out = def if absent. */
static int
read_parallelism(const weir_params_t *p, const char *key, int def, int *out, weir_err_t *err)
{
    int64_t v;
    int rc;

    rc = weir_params_opt_int(p, key, def, &v, err);
    if (rc != 0)
        return rc;
    if (weir_params_has(p, key) && (v < 1 || v > PARALLELISM_MAX))
        return weir_params_error(p, key, WEIR_ERANGE, err, "%s must be between 1 and %d, got %lld",
                                 key, PARALLELISM_MAX, (long long)v);
    *out = (int)v;
    return 0;
}

static int
parse_partition(const weir_params_t *p, const char *key, weir_partition_t *out, weir_err_t *err)
{
    static const char *const names[] = { "forward", "rebalance", "broadcast", "hash" };
    char *text = NULL;
    const char *hint;
    int rc;

    *out = WEIR_PART_DEFAULT;
    rc = weir_params_opt_str(p, key, NULL, &text, err);
    if (rc != 0 || text == NULL)
        return rc;
    for (int i = 0; i < 4; i++)
        if (strcmp(text, names[i]) == 0) {
            *out = (weir_partition_t)(WEIR_PART_FORWARD + i);
            free(text);
            return 0;
        }
    hint = weir_suggest(text, names, 4);
    if (hint != NULL)
        rc = weir_params_error(p, key, WEIR_EINVAL, err,
                               "unknown partition '%s' (did you mean '%s'?)", text, hint);
    else
        rc = weir_params_error(p, key, WEIR_EINVAL, err,
                               "unknown partition '%s': use forward, rebalance, broadcast or hash",
                               text);
    free(text);
    return rc;
}

static int
parse_keys(const weir_params_t *p, char ***keys, int *nkeys, weir_err_t *err)
{
    int rc;

    rc = weir_params_str_list(p, "key_by", false, keys, nkeys, err);
    if (rc != 0)
        return rc;
    if (*nkeys == 0 && weir_params_has(p, "key_by"))
        rc = weir_params_error(p, "key_by", WEIR_EINVAL, err, "key_by must name at least one field");
    else if (*nkeys > JOBFILE_MAX_KEYS)
        rc = weir_params_error(p, "key_by", WEIR_E2BIG, err,
                               "key_by names %d fields, at most %d are allowed",
                               *nkeys, JOBFILE_MAX_KEYS);
    for (int i = 0; i < *nkeys && rc == 0; i++) {
        if ((*keys)[i][0] == '\0')
            rc = weir_params_error(p, "key_by", WEIR_EINVAL, err, "key_by field names must not be empty");
        for (int j = 0; j < i && rc == 0; j++)
            if (strcmp((*keys)[i], (*keys)[j]) == 0)
                rc = weir_params_error(p, "key_by", WEIR_EINVAL, err,
                                       "key_by lists '%s' twice", (*keys)[i]);
    }
    if (rc != 0) {
        weir_str_list_free(*keys, *nkeys);
        *keys = NULL;
        *nkeys = 0;
    }
    return rc;
}

static const char *
section_noun(weir_section_t s)
{
    return s == WEIR_SECTION_SOURCE ? "source" : s == WEIR_SECTION_SINK ? "sink" : "operator";
}

static int
set_what(jobfile_int_t *ji, int idx, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int
set_what(jobfile_int_t *ji, int idx, const char *fmt, ...)
{
    va_list ap;
    char *s;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        return WEIR_ENOMEM;
    free(ji->whats[idx]);
    ji->whats[idx] = s;
    ji->pub.nodes[idx].params.what = s;
    return 0;
}

static bool
valid_node_name(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '.' || *s == '-'))
            return false;
    return true;
}

/* ---- nodes ----------------------------------------------------------- */

/* Reads name, kind and parallelism of node idx (its params set). */
static int
read_node_head(jobfile_int_t *ji, int idx, int ordinal, weir_err_t *err)
{
    weir_jobfile_t *jf = &ji->pub;
    weir_jf_node_t *node = &jf->nodes[idx];
    const weir_params_t *p = &node->params;
    int rc;

    if (set_what(ji, idx, "%s #%d", section_noun(node->section), ordinal) != 0)
        return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    rc = weir_params_req_str(p, "name", &node->name, err);
    if (rc != 0)
        return rc;
    if (!valid_node_name(node->name))
        return weir_params_error(p, "name", WEIR_EINVAL, err,
                                 "invalid node name '%s': use letters, digits, '_', '.' and '-'",
                                 node->name);
    for (int i = 0; i < idx; i++)
        if (strcmp(jf->nodes[i].name, node->name) == 0) {
            int line, col;

            weir_params_loc(&jf->nodes[i].params, "name", &line, &col);
            return weir_params_error(p, "name", WEIR_EEXIST, err,
                                     "node name '%s' is already used by the %s at line %d",
                                     node->name, section_noun(jf->nodes[i].section), line);
        }
    if (set_what(ji, idx, "%s '%s'", section_noun(node->section), node->name) != 0)
        return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    rc = weir_params_req_str(p, "kind", &node->kind, err);
    if (rc != 0)
        return rc;
    if (node->kind[0] == '\0')
        return weir_params_error(p, "kind", WEIR_EINVAL, err, "'kind' must not be empty");
    rc = read_parallelism(p, "parallelism", 0, &node->parallelism, err);
    if (rc != 0)
        return rc;
    if (node->parallelism > jf->max_parallelism)
        return weir_params_error(p, "parallelism", WEIR_EINVAL, err,
                                 "parallelism %d exceeds the job's max_parallelism %d",
                                 node->parallelism, jf->max_parallelism);
    return 0;
}

/* Collects the nodes of one section (key) into jf->nodes. */
static int
read_section(jobfile_int_t *ji, const char *key, weir_section_t section, weir_err_t *err)
{
    weir_jobfile_t *jf = &ji->pub;
    struct fy_node *seq = find_value(jf->root.node, key), *item;
    void *iter = NULL;
    int ordinal = 0, rc;

    if (!weir_params_has(&jf->root, key))
        return 0;
    if (!fy_node_is_sequence(seq))
        return weir_params_error(&jf->root, key, WEIR_ETYPE, err,
                                 "'%s' must be a list of nodes (- name: ..., kind: ...)", key);
    while ((item = fy_node_sequence_iterate(seq, &iter)) != NULL) {
        weir_jf_node_t *nodes;
        char **whats;
        int idx = jf->nnodes;

        ordinal++;
        if (!fy_node_is_mapping(item)) {
            weir_params_t at = { .jf = jf, .node = item };
            return weir_params_error(&at, NULL, WEIR_ETYPE, err,
                                     "each %s must be a mapping with name and kind",
                                     section_noun(section));
        }
        {
            /* `when: ${VAR}`: the node exists only when the value is set
             * and not false/no/0 (e.g. a database sink when PG_DSN is set) */
            weir_params_t at = { .jf = jf, .node = item };
            char *when = NULL;
            bool on;

            if ((rc = weir_params_opt_str(&at, "when", "true", &when, err)) != 0)
                return rc;
            on = when[0] != '\0' && strcmp(when, "false") != 0 && strcmp(when, "no") != 0 &&
                 strcmp(when, "0") != 0;
            free(when);
            if (!on)
                continue;
        }
        if (jf->nnodes >= JOBFILE_MAX_NODES) {
            weir_params_t at = { .jf = jf, .node = item };
            return weir_params_error(&at, NULL, WEIR_E2BIG, err,
                                     "a job may have at most %d nodes", JOBFILE_MAX_NODES);
        }
        nodes = realloc(jf->nodes, (size_t)(idx + 1) * sizeof(*nodes));
        if (nodes == NULL)
            return weir_err_set(err, WEIR_ENOMEM, "out of memory");
        jf->nodes = nodes;
        whats = realloc(ji->whats, (size_t)(idx + 1) * sizeof(*whats));
        if (whats == NULL)
            return weir_err_set(err, WEIR_ENOMEM, "out of memory");
        ji->whats = whats;
        ji->whats[idx] = NULL;
        memset(&jf->nodes[idx], 0, sizeof(jf->nodes[idx]));
        jf->nodes[idx].section = section;
        jf->nodes[idx].params = (weir_params_t){ .jf = jf, .node = item };
        jf->nnodes++;
        /* nodes moved: earlier nodes' views are by value, their 'what'
         * strings live in ji->whats, so nothing dangles */
        rc = read_node_head(ji, idx, ordinal, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Resolves one input of node 'owner' named in *in (from, where set) with
 * the input-level and node-level partitioning. 'ip' is the input's mapping
 * view, or NULL for a plain name. */
static int
resolve_input(weir_jobfile_t *jf, weir_jf_node_t *owner, weir_jf_input_t *in,
              const weir_params_t *ip, weir_partition_t node_part, char **node_keys,
              int node_nkeys, weir_err_t *err)
{
    weir_partition_t part = WEIR_PART_DEFAULT;
    const char *names[JOBFILE_MAX_NODES];
    bool input_part = false;
    int rc;

    in->from_node = weir_jobfile_find(jf, in->from);
    if (in->from_node < 0) {
        const char *hint;

        for (int i = 0; i < jf->nnodes; i++)
            names[i] = jf->nodes[i].name;
        hint = weir_suggest(in->from, names, jf->nnodes);
        if (hint != NULL)
            return weir_params_error(&in->where, ip ? "from" : NULL, WEIR_ENOENT, err,
                                     "input '%s' is not a node of this job (did you mean '%s'?)",
                                     in->from, hint);
        return weir_params_error(&in->where, ip ? "from" : NULL, WEIR_ENOENT, err,
                                 "input '%s' is not a node of this job", in->from);
    }
    if (jf->nodes[in->from_node].section == WEIR_SECTION_SINK)
        return weir_params_error(&in->where, ip ? "from" : NULL, WEIR_EINVAL, err,
                                 "input '%s' is a sink, and a sink has no output", in->from);

    if (ip != NULL) {
        rc = parse_partition(ip, "partition", &part, err);
        if (rc != 0)
            return rc;
        rc = parse_keys(ip, &in->keys, &in->nkeys, err);
        if (rc != 0)
            return rc;
        if (in->nkeys > 0 && part != WEIR_PART_DEFAULT && part != WEIR_PART_HASH)
            return weir_params_error(ip, "partition", WEIR_EINVAL, err,
                                     "key_by needs hash partitioning, not '%s'",
                                     weir_partition_name(part));
    }
    input_part = part != WEIR_PART_DEFAULT;
    if (part == WEIR_PART_DEFAULT)
        part = node_part;
    if (in->nkeys == 0 && node_nkeys > 0 && (part == WEIR_PART_DEFAULT || part == WEIR_PART_HASH)) {
        in->keys = calloc((size_t)node_nkeys, sizeof(char *));
        if (in->keys == NULL)
            return weir_err_set(err, WEIR_ENOMEM, "out of memory");
        for (int k = 0; k < node_nkeys; k++) {
            in->keys[k] = strdup(node_keys[k]);
            if (in->keys[k] == NULL)
                return weir_err_set(err, WEIR_ENOMEM, "out of memory");
            in->nkeys++;
        }
    }
    if (in->nkeys > 0)
        part = WEIR_PART_HASH;
    else if (part == WEIR_PART_HASH)
        return weir_params_error(input_part ? ip : &owner->params, "partition", WEIR_EINVAL, err,
                                 "partition 'hash' needs key_by");
    in->partition = part;
    if (in->alias == NULL) {
        in->alias = strdup(in->from);
        if (in->alias == NULL)
            return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    }
    for (int i = 0; owner->inputs != NULL && &owner->inputs[i] != in; i++)
        if (strcmp(owner->inputs[i].alias, in->alias) == 0)
            return weir_params_error(&in->where, NULL, WEIR_EINVAL, err,
                                     "two inputs are named '%s': give one another name with 'as'",
                                     in->alias);
    return 0;
}

static int
read_inputs(jobfile_int_t *ji, int idx, weir_err_t *err)
{
    weir_jobfile_t *jf = &ji->pub;
    weir_jf_node_t *node = &jf->nodes[idx];
    const weir_params_t *p = &node->params;
    bool has_input = find_pair(p->node, "input") != NULL;
    bool has_inputs = find_pair(p->node, "inputs") != NULL;
    weir_partition_t node_part;
    char **node_keys = NULL;
    int node_nkeys = 0, rc;
    weir_params_t *items = NULL;
    int nitems = 0;

    if (node->section == WEIR_SECTION_SOURCE) {
        static const char *const no[] = { "input", "inputs", "partition", "key_by" };
        for (int i = 0; i < 4; i++)
            if (find_pair(p->node, no[i]) != NULL) {
                weir_params_t at = { .jf = jf, .node = fy_node_pair_key(find_pair(p->node, no[i])),
                                     .what = p->what };
                return weir_params_error(&at, NULL, WEIR_EINVAL, err,
                                         "a source has no inputs: remove '%s'", no[i]);
            }
        return 0;
    }
    if (!has_input && !has_inputs)
        return weir_params_error(p, NULL, WEIR_EINVAL, err,
                                 "%s %s needs 'input: NODE' or 'inputs: [NODE, ...]'",
                                 node->section == WEIR_SECTION_OPERATOR ? "an" : "a",
                                 section_noun(node->section));
    if (has_input && has_inputs) {
        weir_params_t at = { .jf = jf, .node = fy_node_pair_key(find_pair(p->node, "inputs")),
                             .what = p->what };
        return weir_params_error(&at, NULL, WEIR_EINVAL, err,
                                 "use either 'input' or 'inputs', not both");
    }
    rc = parse_partition(p, "partition", &node_part, err);
    if (rc != 0)
        return rc;
    rc = parse_keys(p, &node_keys, &node_nkeys, err);
    if (rc != 0)
        return rc;
    if (node_nkeys > 0 && node_part != WEIR_PART_DEFAULT && node_part != WEIR_PART_HASH) {
        rc = weir_params_error(p, "partition", WEIR_EINVAL, err,
                               "key_by needs hash partitioning, not '%s'",
                               weir_partition_name(node_part));
        goto out;
    }

    if (has_input) {
        struct fy_node *v = find_value(p->node, "input");

        if (v != NULL && (fy_node_is_sequence(v) || fy_node_is_mapping(v))) {
            rc = weir_params_error(p, "input", WEIR_ETYPE, err,
                                   "'input' names one node; use 'inputs' for a list or options");
            goto out;
        }
        node->inputs = calloc(1, sizeof(*node->inputs));
        if (node->inputs == NULL) {
            rc = weir_err_set(err, WEIR_ENOMEM, "out of memory");
            goto out;
        }
        node->ninputs = 1;
        node->inputs[0].where = (weir_params_t){ .jf = jf, .node = v, .what = p->what };
        rc = weir_params_req_str(p, "input", &node->inputs[0].from, err);
        if (rc != 0)
            goto out;
        rc = resolve_input(jf, node, &node->inputs[0], NULL, node_part, node_keys, node_nkeys, err);
        goto out;
    }

    rc = weir_params_items(p, "inputs", true, &items, &nitems, err);
    if (rc != 0)
        goto out;
    if (nitems > JOBFILE_MAX_INPUTS) {
        rc = weir_params_error(p, "inputs", WEIR_E2BIG, err,
                               "a node may have at most %d inputs", JOBFILE_MAX_INPUTS);
        goto out;
    }
    node->inputs = calloc((size_t)nitems, sizeof(*node->inputs));
    if (node->inputs == NULL) {
        rc = weir_err_set(err, WEIR_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < nitems; i++) {
        weir_jf_input_t *in = &node->inputs[i];
        const weir_params_t *ip = &items[i];

        node->ninputs = i + 1;
        in->where = *ip;
        if (weir_params_is_map(ip)) {
            rc = check_exact_keys(ip, input_keys, "input option", err);
            if (rc == 0)
                rc = weir_params_req_str(ip, "from", &in->from, err);
            if (rc == 0)
                rc = weir_params_opt_str(ip, "as", NULL, &in->alias, err);
            if (rc == 0 && in->alias != NULL && in->alias[0] == '\0')
                rc = weir_params_error(ip, "as", WEIR_EINVAL, err, "'as' must not be empty");
            if (rc == 0)
                rc = resolve_input(jf, node, in, ip, node_part, node_keys, node_nkeys, err);
        } else if (ip->node != NULL && fy_node_is_scalar(ip->node)) {
            rc = weir_params_scalar(ip, &in->from, err);
            if (rc == 0)
                rc = resolve_input(jf, node, in, NULL, node_part, node_keys, node_nkeys, err);
        } else {
            rc = weir_params_error(ip, NULL, WEIR_ETYPE, err,
                                   "each input must be a node name or a mapping "
                                   "{from, as, partition, key_by}");
        }
        if (rc != 0)
            goto out;
    }
out:
    free(items);
    weir_str_list_free(node_keys, node_nkeys);
    return rc;
}

/* ---- cycles ---------------------------------------------------------- */

/* Depth-first along data flow (from a node to its consumers); on a back
 * edge, reports the cycle starting at its member that comes first in the
 * file. color: 0 new, 1 on the stack, 2 done. */
static int
find_cycle(const weir_jobfile_t *jf, int v, char *color, int *stack, int depth, weir_err_t *err)
{
    color[v] = 1;
    stack[depth] = v;
    for (int c = 0; c < jf->nnodes; c++) {
        const weir_jf_node_t *cn = &jf->nodes[c];
        bool feeds = false;

        for (int i = 0; i < cn->ninputs && !feeds; i++)
            feeds = cn->inputs[i].from_node == v;
        if (!feeds || color[c] == 2)
            continue;
        if (color[c] == 1) {
            char msg[WEIR_ERR_MSG_MAX];
            size_t used;
            int first = depth, len, start;

            while (stack[first] != c)
                first--;
            len = depth - first + 1;
            start = first;
            for (int k = first; k <= depth; k++)
                if (stack[k] < stack[start])
                    start = k;
            used = (size_t)snprintf(msg, sizeof(msg), "cycle:");
            for (int k = 0; k <= len && used < sizeof(msg); k++) {
                int n = stack[first + (start - first + k) % len];
                used += (size_t)snprintf(msg + used, sizeof(msg) - used, "%s%s",
                                         k ? " -> " : " ", jf->nodes[n].name);
            }
            return weir_params_error(&jf->nodes[stack[start]].params, NULL, WEIR_EINVAL, err,
                                     "%s", msg);
        }
        int rc = find_cycle(jf, c, color, stack, depth + 1, err);
        if (rc != 0)
            return rc;
    }
    color[v] = 2;
    return 0;
}

static int
check_cycles(const weir_jobfile_t *jf, weir_err_t *err)
{
    char *color = calloc((size_t)jf->nnodes + 1, 1);
    int *stack = malloc(((size_t)jf->nnodes + 1) * sizeof(int));
    int rc = 0;

    if (color == NULL || stack == NULL) {
        rc = weir_err_set(err, WEIR_ENOMEM, "out of memory");
        goto out;
    }
    for (int v = 0; v < jf->nnodes && rc == 0; v++)
        if (color[v] == 0)
            rc = find_cycle(jf, v, color, stack, 0, err);
out:
    free(color);
    free(stack);
    return rc;
}

/* ---- the job file ---------------------------------------------------- */

static int
check_top(jobfile_int_t *ji, weir_err_t *err)
{
    weir_jobfile_t *jf = &ji->pub;
    const weir_params_t *root = &jf->root;
    static const char *const maps[] = { "checkpoint", "restart", "config" };
    int rc;

    if (!weir_params_is_map(root)) {
        const char *noun = fy_node_is_sequence(root->node) ? "a list" : "a single value";
        return weir_params_error(root, NULL, WEIR_ETYPE, err,
                                 "a job file must be a mapping (name, sources, operators, sinks), "
                                 "not %s", noun);
    }
    rc = check_exact_keys(root, top_keys, "top-level key", err);
    if (rc != 0)
        return rc;
    rc = weir_params_req_str(root, "name", &jf->name, err);
    if (rc != 0)
        return rc;
    if (jf->name[0] == '\0')
        return weir_params_error(root, "name", WEIR_EINVAL, err, "the job's name must not be empty");
    rc = read_parallelism(root, "max_parallelism", MAX_PARALLELISM_DEFAULT, &jf->max_parallelism, err);
    if (rc != 0)
        return rc;
    rc = read_parallelism(root, "parallelism", 1, &jf->parallelism, err);
    if (rc != 0)
        return rc;
    if (jf->parallelism > jf->max_parallelism)
        return weir_params_error(root, "parallelism", WEIR_EINVAL, err,
                                 "parallelism %d exceeds max_parallelism %d",
                                 jf->parallelism, jf->max_parallelism);
    for (int i = 0; i < 3; i++) {
        struct fy_node *v = find_value(root->node, maps[i]);
        if (weir_params_has(root, maps[i]) && !fy_node_is_mapping(v))
            return weir_params_error(root, maps[i], WEIR_ETYPE, err, "'%s' must be a mapping",
                                     maps[i]);
    }
    if (weir_params_has(root, "description") &&
        !fy_node_is_scalar(find_value(root->node, "description")))
        return weir_params_error(root, "description", WEIR_ETYPE, err,
                                 "'description' must be text");
    return 0;
}

static int
build_graph(jobfile_int_t *ji, weir_err_t *err)
{
    weir_jobfile_t *jf = &ji->pub;
    int rc, nsources = 0;

    rc = check_top(ji, err);
    if (rc != 0)
        return rc;
    if ((rc = read_section(ji, "sources", WEIR_SECTION_SOURCE, err)) != 0 ||
        (rc = read_section(ji, "operators", WEIR_SECTION_OPERATOR, err)) != 0 ||
        (rc = read_section(ji, "sinks", WEIR_SECTION_SINK, err)) != 0)
        return rc;
    for (int i = 0; i < jf->nnodes; i++)
        nsources += jf->nodes[i].section == WEIR_SECTION_SOURCE;
    if (nsources == 0)
        return weir_params_error(&jf->root, "sources", WEIR_EINVAL, err,
                                 "a job needs at least one source");
    for (int i = 0; i < jf->nnodes; i++) {
        rc = read_inputs(ji, i, err);
        if (rc != 0)
            return rc;
    }
    return check_cycles(jf, err);
}

static int
copy_vars(weir_vars_t *dst, const weir_vars_t *src)
{
    if (src == NULL)
        return 0;
    dst->use_env = src->use_env;
    for (int i = 0; i < src->n; i++)
        if (weir_vars_set(dst, src->keys[i], src->vals[i]) != 0)
            return WEIR_ENOMEM;
    return 0;
}

int
weir_jobfile_parse(const char *path, const char *text, size_t len, const weir_vars_t *vars,
                   weir_jobfile_t **out, weir_err_t *err)
{
    jobfile_int_t *ji;
    weir_jobfile_t *jf;
    int rc;

    if (path == NULL)
        path = "<job>";
    if (text == NULL && len > 0)
        return weir_err_set(err, WEIR_EINVAL, "%s: no text", path);
    if (len > JOBFILE_MAX_BYTES)
        return weir_err_set(err, WEIR_E2BIG, "%s: the job file is %zu bytes, more than the limit of %u",
                            path, len, JOBFILE_MAX_BYTES);
    ji = calloc(1, sizeof(*ji));
    if (ji == NULL)
        return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    jf = &ji->pub;
    jf->parallelism = 1;
    jf->max_parallelism = MAX_PARALLELISM_DEFAULT;
    jf->path = strdup(path);
    jf->text = malloc(len + 1);
    if (jf->path == NULL || jf->text == NULL || copy_vars(&jf->vars, vars) != 0) {
        rc = weir_err_set(err, WEIR_ENOMEM, "out of memory");
        goto fail;
    }
    if (len > 0)
        memcpy(jf->text, text, len);
    jf->text[len] = '\0';
    jf->text_len = len;
    if (memchr(jf->text, '\0', len) != NULL) {
        rc = weir_err_set(err, WEIR_EPARSE, "%s: the job file contains a NUL byte", path);
        goto fail;
    }

    rc = load_yaml(ji, err);
    if (rc != 0)
        goto fail;
    jf->root = (weir_params_t){ .jf = jf, .node = fy_document_root(jf->doc) };
    rc = record_marks(ji, jf->root.node, err);
    if (rc != 0)
        goto fail;
    rc = build_graph(ji, err);
    if (rc != 0)
        goto fail;
    *out = jf;                          /* caller owns: weir_jobfile_destroy() */
    return 0;

fail:
    weir_jobfile_destroy(jf);
    return rc;
}

int
weir_jobfile_load(const char *path, const weir_vars_t *vars, weir_jobfile_t **out,
                  weir_err_t *err)
{
    struct stat st;
    char *text;
    size_t len;
    FILE *f;
    int rc;

    f = fopen(path, "rb");
    if (f == NULL)
        return weir_err_set(err, errno == ENOENT ? WEIR_ENOENT : WEIR_EIO, "%s: cannot open: %s",
                            path, strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return weir_err_set(err, WEIR_EIO, "%s: not a regular file", path);
    }
    if ((uint64_t)st.st_size > JOBFILE_MAX_BYTES) {
        fclose(f);
        return weir_err_set(err, WEIR_E2BIG, "%s: the job file is %lld bytes, more than the limit of %u",
                            path, (long long)st.st_size, JOBFILE_MAX_BYTES);
    }
    text = malloc((size_t)st.st_size + 1);
    if (text == NULL) {
        fclose(f);
        return weir_err_set(err, WEIR_ENOMEM, "out of memory");
    }
    len = fread(text, 1, (size_t)st.st_size + 1, f);
    if (ferror(f) || len > (size_t)st.st_size) {
        rc = weir_err_set(err, WEIR_EIO, "%s: cannot read (or it changed while read)", path);
        fclose(f);
        free(text);
        return rc;
    }
    fclose(f);
    rc = weir_jobfile_parse(path, text, len, vars, out, err);
    free(text);
    return rc;
}

void
weir_jobfile_destroy(weir_jobfile_t *jf)
{
    jobfile_int_t *ji = (jobfile_int_t *)jf;

    if (jf == NULL)
        return;
    for (int i = 0; i < jf->nnodes; i++) {
        weir_jf_node_t *n = &jf->nodes[i];

        for (int k = 0; k < n->ninputs; k++) {
            free(n->inputs[k].from);
            free(n->inputs[k].alias);
            weir_str_list_free(n->inputs[k].keys, n->inputs[k].nkeys);
        }
        free(n->inputs);
        free(n->name);
        free(n->kind);
        free(ji->whats[i]);
    }
    free(jf->nodes);
    free(ji->whats);
    free(ji->marks);
    if (jf->doc != NULL)
        fy_document_destroy(jf->doc);
    weir_vars_free(&jf->vars);
    free(jf->name);
    free(jf->text);
    free(jf->path);
    free(ji);
}

int
weir_jobfile_find(const weir_jobfile_t *jf, const char *name)
{
    for (int i = 0; i < jf->nnodes; i++)
        if (jf->nodes[i].name != NULL && strcmp(jf->nodes[i].name, name) == 0)
            return i;
    return -1;
}
