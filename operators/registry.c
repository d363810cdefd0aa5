/* operators/registry.c -- every operator kind, listed once.
 *
 * The planner looks kinds up here by name (and role: "file" is both a source
 * and a sink kind). Adding a kind means writing its file, declaring its
 * struct in registry.h and adding one line to the table below; the order of
 * the table is the order of `jobctl kinds` and of the docs.
 */
#include "registry.h"

#include <string.h>

static const weir_op_kind_t *const kinds[] = {
    /* sources */
    &weir_op_datagen,
    &weir_op_file_source,
    &weir_op_kafka_source,
    /* operators */
    &weir_op_filter,
    &weir_op_map,
    &weir_op_project,
    &weir_op_count,
    &weir_op_sum,
    &weir_op_join,
    &weir_op_chaos,
    /* sinks */
    &weir_op_file_sink,
    &weir_op_print,
    &weir_op_kafka_sink,
    &weir_op_pg_sink,
};

#define NKINDS ((int)(sizeof(kinds) / sizeof(kinds[0])))

const weir_op_kind_t *const *
weir_op_kinds(int *n)
{
    *n = NKINDS;
    return kinds;
}

const weir_op_kind_t *
weir_op_kind_find_role(const char *name, unsigned role)
{
    if (name == NULL)
        return NULL;
    for (int i = 0; i < NKINDS; i++)
        if ((kinds[i]->roles & role) != 0 && strcmp(kinds[i]->name, name) == 0)
            return kinds[i];
    return NULL;
}

/* First match in table order: for "file" that is the source. Callers that
 * know the section use weir_op_kind_find_role(). */
const weir_op_kind_t *
weir_op_kind_find(const char *name)
{
    return weir_op_kind_find_role(name, WEIR_ROLE_SOURCE | WEIR_ROLE_OPERATOR | WEIR_ROLE_SINK);
}
