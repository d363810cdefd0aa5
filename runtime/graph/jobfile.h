/* runtime/graph/jobfile.h -- YAML job files: parse, substitute, locate errors.
 *
 * A job file is one YAML document (see docs/job-files.md):
 *
 *   name: counts
 *   parallelism: 3
 *   max_parallelism: 128
 *   sources:
 *     - name: gen
 *       kind: datagen
 *       count: ${COUNT:-1000}
 *       ...
 *   operators:
 *     - name: big
 *       kind: filter
 *       input: gen
 *       where: amount > 10
 *   sinks:
 *     - name: out
 *       kind: file
 *       input: big
 *       path: ${OUT}/counts
 *
 * Every node (source, operator, sink) is a mapping with `name`, `kind`,
 * optional `parallelism`, and, for operators and sinks, either `input: NAME`
 * or `inputs: [NAME | {from: NAME, as: ALIAS, partition: P, key_by: K}, ...]`.
 * Node-level `partition: forward|rebalance|broadcast|hash` and
 * `key_by: FIELD | [FIELD, ...]` apply to every input that does not say
 * otherwise; key_by implies hash. All other keys are the kind's parameters,
 * read through weir_params_*.
 *
 * `${VAR}`, `${VAR:-default}` in any scalar are substituted when the scalar
 * is read, from the vars given to the parser (jobctl resolves them from -D
 * and its environment); `$$` is a literal `$`. Errors carry
 * "path:line:column: reason" with the position of the offending scalar.
 *
 * This layer checks structure: YAML syntax, the top-level keys, node names
 * (present, unique, well-formed), inputs that name existing nodes, cycles,
 * parallelism values. Operator kinds and their parameters are checked by the
 * planner through the kinds' configure callbacks, using weir_params_*.
 */
#ifndef WEIR_GRAPH_JOBFILE_H
#define WEIR_GRAPH_JOBFILE_H

#include <stdbool.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/schema.h"

struct fy_document;
struct fy_node;
typedef struct weir_jobfile weir_jobfile_t;

/* Variables for ${VAR} substitution. */
typedef struct weir_vars {
    int    n;
    char **keys;
    char **vals;
    bool   use_env;        /* fall back to getenv() (local tools only) */
} weir_vars_t;

/* A view of one YAML node of a job file. Passed by value; borrowed from the
 * job file, valid while it lives. */
typedef struct weir_params {
    const weir_jobfile_t *jf;
    struct fy_node       *node;
    const char           *what;   /* "operator 'big'" for messages, or NULL */
} weir_params_t;

typedef enum {
    WEIR_SECTION_SOURCE   = 1,
    WEIR_SECTION_OPERATOR = 2,
    WEIR_SECTION_SINK     = 4,
} weir_section_t;

typedef enum {
    WEIR_PART_DEFAULT = 0,   /* forward when parallelism matches, else rebalance */
    WEIR_PART_FORWARD,
    WEIR_PART_REBALANCE,
    WEIR_PART_BROADCAST,
    WEIR_PART_HASH,
} weir_partition_t;

const char *weir_partition_name(weir_partition_t p);

typedef struct weir_jf_input {
    char            *from;        /* node name as written */
    int              from_node;   /* index into jobfile nodes */
    char            *alias;       /* `as:`, else the from node's name */
    weir_partition_t partition;
    int              nkeys;       /* key_by fields (HASH) */
    char           **keys;
    weir_params_t    where;       /* the node of this input reference */
} weir_jf_input_t;

typedef struct weir_jf_node {
    char            *name;
    char            *kind;        /* kind name as written (substituted) */
    weir_section_t   section;
    int              parallelism; /* 0 = the job's */
    int              ninputs;
    weir_jf_input_t *inputs;
    weir_params_t    params;      /* the node's whole mapping */
} weir_jf_node_t;

struct weir_jobfile {
    char               *path;     /* for messages: "jobs/x.yaml", "<request>" */
    char               *text;     /* the job file text as given (owned) */
    size_t              text_len;
    struct fy_document *doc;
    weir_vars_t         vars;     /* owned copy */
    char               *name;
    int                 parallelism;      /* default 1 */
    int                 max_parallelism;  /* default 128 */
    int                 nnodes;
    weir_jf_node_t     *nodes;    /* in file order: sources, operators, sinks */
    weir_params_t       root;
};

/* Parses text (copied) as a job file; path names it in messages; vars is
 * copied (may be NULL). On success *out is new (weir_jobfile_destroy). */
int  weir_jobfile_parse(const char *path, const char *text, size_t len,
                        const weir_vars_t *vars, weir_jobfile_t **out, weir_err_t *err);
/* Reads path and parses it. */
int  weir_jobfile_load(const char *path, const weir_vars_t *vars,
                       weir_jobfile_t **out, weir_err_t *err);
void weir_jobfile_destroy(weir_jobfile_t *jf);         /* NULL is a no-op */
/* Index of the node named name, or -1. */
int  weir_jobfile_find(const weir_jobfile_t *jf, const char *name);

/* Names of ${VAR} references in text (for jobctl to resolve); *names is a
 * new array of new strings, each name once. */
int  weir_jobfile_var_refs(const char *text, size_t len, char ***names, int *n);
void weir_vars_free(weir_vars_t *v);
/* Adds or replaces key=value (both copied). */
int  weir_vars_set(weir_vars_t *v, const char *key, const char *val);

/* ---- parameters ------------------------------------------------------ */

/* The common node keys every kind accepts (name, kind, input, inputs,
 * parallelism, partition, key_by). NULL-terminated. */
extern const char *const weir_params_common_keys[];

bool weir_params_has(const weir_params_t *p, const char *key);
/* Required getters fail with "...: missing required parameter 'key'" at the
 * node; all fail with the value's position when the type is wrong.
 * Strings are returned new (free()); substitution applies. */
int weir_params_req_str(const weir_params_t *p, const char *key, char **out, weir_err_t *err);
int weir_params_opt_str(const weir_params_t *p, const char *key, const char *def, char **out, weir_err_t *err);
int weir_params_req_int(const weir_params_t *p, const char *key, int64_t *out, weir_err_t *err);
int weir_params_opt_int(const weir_params_t *p, const char *key, int64_t def, int64_t *out, weir_err_t *err);
int weir_params_opt_double(const weir_params_t *p, const char *key, double def, double *out, weir_err_t *err);
int weir_params_opt_bool(const weir_params_t *p, const char *key, bool def, bool *out, weir_err_t *err);
/* Durations: "500ms", "5s", "1m", or a bare integer of milliseconds. */
int weir_params_opt_duration(const weir_params_t *p, const char *key, int64_t def_us, int64_t *out_us, weir_err_t *err);
/* A scalar or a sequence of scalars, as a new array of new strings. A
 * missing key gives *n = 0 unless required. */
int weir_params_str_list(const weir_params_t *p, const char *key, bool required,
                         char ***out, int *n, weir_err_t *err);
void weir_str_list_free(char **list, int n);
/* The child node under key (a mapping or sequence) as params; *n items for a
 * sequence: *items is a new array of views (free() it). */
int weir_params_child(const weir_params_t *p, const char *key, bool required,
                      weir_params_t *out, weir_err_t *err);
int weir_params_items(const weir_params_t *p, const char *key, bool required,
                      weir_params_t **items, int *n, weir_err_t *err);
/* A mapping of names to single values under key (e.g. `properties:`), as
 * two new arrays of new strings in file order; *at (when not NULL) is a new
 * array of views of each value, for error locations. Missing key: *n = 0. */
int weir_params_map(const weir_params_t *p, const char *key, char ***keys, char ***vals,
                    weir_params_t **at, int *n, weir_err_t *err);
/* For a view of a scalar node (e.g. a sequence item): its substituted text. */
int weir_params_scalar(const weir_params_t *p, char **out, weir_err_t *err);
bool weir_params_is_map(const weir_params_t *p);
/* Rejects keys not in common keys nor in allowed (NULL-terminated), with a
 * did-you-mean suggestion. */
int weir_params_check_keys(const weir_params_t *p, const char *const *allowed, weir_err_t *err);

/* A schema declared as a sequence of {name: N, type: T, nullable: B} maps or
 * as a mapping of name: type ("type?" or nullable: true for nullable). */
int weir_params_schema(const weir_params_t *p, const char *key, weir_schema_t **out, weir_err_t *err);

/* Sets err to "path:line:col: [what: ]message" at key's value (or at the
 * node itself when key is NULL or absent). Returns code. */
int weir_params_error(const weir_params_t *p, const char *key, int code, weir_err_t *err,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Same, at byte offset 'off' inside key's scalar value (expression errors);
 * accounts for quoting of the scalar when it is single-line. */
int weir_params_error_at(const weir_params_t *p, const char *key, size_t off, int code,
                         weir_err_t *err, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* 1-based line and column of key's value (or the node). */
void weir_params_loc(const weir_params_t *p, const char *key, int *line, int *col);

/* The candidate nearest to name by edit distance, if close enough to be a
 * likely typo (distance <= max(1, len/3)); else NULL. */
const char *weir_suggest(const char *name, const char *const *candidates, int n);

#endif
