/* runtime/core/config.c -- settings from flags and the environment. */
#include "config.h"

#include <stdlib.h>

#include "expr.h"

const char *
weir_env_or(const char *name, const char *def)
{
    const char *v = getenv(name);

    return v != NULL && *v != '\0' ? v : def;
}

int
weir_duration_ms(const char *s, uint64_t *out_ms)
{
    int64_t us;

    if (weir_duration_parse(s, &us) != 0 || us <= 0)
        return -1;
    *out_ms = (uint64_t)(us / 1000);
    return 0;
}
