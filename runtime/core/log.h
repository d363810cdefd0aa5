/* runtime/core/log.h -- one line per event: time, level, component, message.
 *
 *   2026-11-23T10:00:00.123Z INFO  [taskmanager] [job:ab12 vertex:join#1/2] running
 *
 * The level is checked before formatting. Library-like code (runtime/core,
 * state/) returns codes and does not log. Thread-safe: a line is written with
 * one write(2).
 */
#ifndef WEIR_CORE_LOG_H
#define WEIR_CORE_LOG_H

typedef enum {
    WEIR_LOG_ERROR = 0,
    WEIR_LOG_WARN  = 1,
    WEIR_LOG_INFO  = 2,
    WEIR_LOG_DEBUG = 3,
} weir_log_level_t;

extern int weir_log_level;

/* component is borrowed and must outlive logging (a literal). */
void weir_log_init(const char *component, weir_log_level_t level);
/* Parses "error|warn|info|debug"; returns -1 when unknown. */
int  weir_log_level_parse(const char *s);
void weir_log_write(weir_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define weir_log_(lvl, ...) \
    do { if ((int)(lvl) <= weir_log_level) weir_log_write((lvl), __VA_ARGS__); } while (0)
#define weir_log_error(...) weir_log_(WEIR_LOG_ERROR, __VA_ARGS__)
#define weir_log_warn(...)  weir_log_(WEIR_LOG_WARN, __VA_ARGS__)
#define weir_log_info(...)  weir_log_(WEIR_LOG_INFO, __VA_ARGS__)
#define weir_log_debug(...) weir_log_(WEIR_LOG_DEBUG, __VA_ARGS__)

#endif
