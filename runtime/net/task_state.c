/* runtime/net/task_state.c -- subtask state names. */
#include "task_state.h"

#include <string.h>

static const char *const names[WEIR_TASK_NSTATES] = {
    "CREATED", "DEPLOYING", "RUNNING", "FINISHED", "CANCELING", "CANCELED", "FAILED",
};

const char *
weir_task_state_name(weir_task_state_t s)
{
    return (unsigned)s < WEIR_TASK_NSTATES ? names[s] : "UNKNOWN";
}

int
weir_task_state_parse(const char *s)
{
    for (int i = 0; i < WEIR_TASK_NSTATES; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}
