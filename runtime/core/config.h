/* runtime/core/config.h -- reading settings from flags and WEIR_* variables. */
#ifndef WEIR_CORE_CONFIG_H
#define WEIR_CORE_CONFIG_H

#include <stdint.h>

/* The value of environment variable name when set and non-empty, else def
 * (borrowed either way). */
const char *weir_env_or(const char *name, const char *def);

/* Parses a positive duration ("500ms", "5s", "1m"; a bare number is
 * milliseconds) into milliseconds; 0 or -1 when it is not one. */
int weir_duration_ms(const char *s, uint64_t *out_ms);

#endif
