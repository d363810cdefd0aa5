/* runtime/core/watermark.c -- see watermark.h. */
#include "watermark.h"

#include <stdlib.h>
#include <time.h>

#include "error.h"

int
weir_wm_gen_init(weir_wm_gen_t *g, int nsplits, int64_t out_of_orderness_us,
                 int64_t idle_timeout_us, int64_t now_us)
{
    g->out_of_orderness_us = out_of_orderness_us;
    g->idle_timeout_us = idle_timeout_us;
    g->nsplits = nsplits > 0 ? nsplits : 1;
    g->splits = calloc((size_t)g->nsplits, sizeof(*g->splits));
    if (g->splits == NULL)
        return WEIR_ENOMEM;
    for (int i = 0; i < g->nsplits; i++) {
        g->splits[i].max_ts = WEIR_WM_NONE;
        g->splits[i].active_at = now_us;
    }
    return 0;
}

int
weir_wm_gen_splits(weir_wm_gen_t *g, int nsplits, int64_t now_us)
{
    weir_wm_split_t *s;

    if (nsplits < 1)
        nsplits = 1;
    if ((s = calloc((size_t)nsplits, sizeof(*s))) == NULL)
        return WEIR_ENOMEM;
    for (int i = 0; i < nsplits; i++) {
        s[i].max_ts = WEIR_WM_NONE;
        s[i].active_at = now_us;
    }
    free(g->splits);
    g->splits = s;
    g->nsplits = nsplits;
    return 0;
}

void
weir_wm_gen_free(weir_wm_gen_t *g)
{
    free(g->splits);
    g->splits = NULL;
    g->nsplits = 0;
}

int64_t
weir_wm_gen_current(weir_wm_gen_t *g, int64_t now_us, bool *idle)
{
    int64_t wm = WEIR_WM_MAX;
    int active = 0;

    for (int i = 0; i < g->nsplits; i++) {
        weir_wm_split_t *s = &g->splits[i];
        int64_t w;

        if (s->seen) {
            s->seen = false;
            s->active_at = now_us;
        } else if (g->idle_timeout_us > 0 && now_us - s->active_at >= g->idle_timeout_us) {
            continue;                          /* idle: left out */
        }
        active++;
        if (s->max_ts == WEIR_WM_NONE)
            w = WEIR_WM_NONE;
        else if (s->max_ts < WEIR_WM_NONE + g->out_of_orderness_us + 1000)
            w = WEIR_WM_NONE;
        else
            w = s->max_ts - g->out_of_orderness_us - 1000;
        if (w < wm)
            wm = w;
    }
    *idle = active == 0;
    return active == 0 ? WEIR_WM_NONE : wm;
}

int64_t
weir_wm_combine(const weir_wm_chan_t *ch, int n, bool *idle)
{
    int64_t min = WEIR_WM_MAX, max = WEIR_WM_NONE;
    int active = 0, open = 0;

    for (int i = 0; i < n; i++) {
        if (ch[i].ended)
            continue;
        open++;
        if (ch[i].wm > max)
            max = ch[i].wm;
        if (ch[i].idle)
            continue;
        active++;
        if (ch[i].wm < min)
            min = ch[i].wm;
    }
    *idle = open > 0 && active == 0;
    if (open == 0)
        return WEIR_WM_NONE;
    return active > 0 ? min : max;
}

int64_t
weir_wm_ms(int64_t wm_us)
{
    if (wm_us == WEIR_WM_NONE || wm_us == WEIR_WM_MAX)
        return wm_us;
    /* floor division: event times before 1970 stay exact */
    return wm_us >= 0 ? wm_us / 1000 : -((-wm_us + 999) / 1000);
}

int64_t
weir_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
