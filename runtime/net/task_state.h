/* runtime/net/task_state.h -- subtask states, as the job and task managers
 * say them to each other and to people (Flink's names). */
#ifndef WEIR_NET_TASK_STATE_H
#define WEIR_NET_TASK_STATE_H

typedef enum {
    WEIR_TASK_CREATED = 0,
    WEIR_TASK_DEPLOYING,
    WEIR_TASK_RUNNING,
    WEIR_TASK_FINISHED,
    WEIR_TASK_CANCELING,
    WEIR_TASK_CANCELED,
    WEIR_TASK_FAILED,
} weir_task_state_t;

#define WEIR_TASK_NSTATES 7

/* "RUNNING", ...; "UNKNOWN" out of range. */
const char *weir_task_state_name(weir_task_state_t s);
/* The state named s, or -1. */
int weir_task_state_parse(const char *s);

#endif
