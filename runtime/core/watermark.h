/* runtime/core/watermark.h -- event-time watermarks: generation at sources
 * and the combining rule at inputs.
 *
 * A source with a `watermark:` block keeps one generator. Records are
 * observed per split (a Kafka partition; split 0 for sources without
 * splits): only the largest event time of each split is kept, so observing
 * costs a compare. Every interval the task asks for the current watermark:
 *
 *   per split      max event time - out-of-orderness - 1 ms
 *   the source     min over the splits that are not idle
 *   idle           a split that saw no record for idle_timeout is left
 *                  out; when every split is idle, so is the source
 *
 * which is Flink's BoundedOutOfOrdernessWatermarks with per-split
 * watermarks and withIdleness. A split that never saw a record holds the
 * watermark back (it has none) until it turns idle.
 *
 * Downstream, every input channel keeps the last watermark and idleness it
 * received; the task's input watermark is the minimum over the channels
 * that are active and not at end of input, and when every channel is idle
 * the maximum over them (Flink's StatusWatermarkValve), never going back.
 *
 * Values are microseconds since the epoch, like timestamps. WEIR_WM_NONE
 * (INT64_MIN) is "no watermark yet" (Flink's Long.MIN_VALUE); WEIR_WM_MAX is
 * the end of event time, sent when a source is exhausted.
 */
#ifndef WEIR_CORE_WATERMARK_H
#define WEIR_CORE_WATERMARK_H

#include <stdbool.h>
#include <stdint.h>

#define WEIR_WM_NONE INT64_MIN
#define WEIR_WM_MAX  INT64_MAX
/* on the wire between tasks: "this channel is idle" (a source never emits
 * WEIR_WM_NONE as a watermark; active-without-one is sent as NONE + 1) */
#define WEIR_WM_IDLE_MARK INT64_MIN

typedef struct weir_wm_split {
    int64_t max_ts;        /* largest event time seen, WEIR_WM_NONE before any */
    int64_t active_at;     /* monotonic us when it last saw a record */
    bool    seen;          /* a record since the last weir_wm_gen_current */
} weir_wm_split_t;

typedef struct weir_wm_gen {
    int64_t          out_of_orderness_us;
    int64_t          idle_timeout_us;     /* 0: never idle */
    int              nsplits;
    weir_wm_split_t *splits;
} weir_wm_gen_t;

/* nsplits >= 1; now_us is the monotonic clock (idleness counts from it).
 * Returns 0 or WEIR_ENOMEM. */
int  weir_wm_gen_init(weir_wm_gen_t *g, int nsplits, int64_t out_of_orderness_us,
                      int64_t idle_timeout_us, int64_t now_us);
/* Sources with splits, in open: one split each (their observations so far
 * are dropped). Returns 0 or WEIR_ENOMEM. */
int  weir_wm_gen_splits(weir_wm_gen_t *g, int nsplits, int64_t now_us);
void weir_wm_gen_free(weir_wm_gen_t *g);

static inline void
weir_wm_observe(weir_wm_gen_t *g, int split, int64_t ts_us)
{
    weir_wm_split_t *s = &g->splits[split];
    if (ts_us > s->max_ts)
        s->max_ts = ts_us;
    s->seen = true;
}

/* The watermark now: WEIR_WM_NONE while an active split has none; *idle
 * set when every split is idle (the value is then meaningless). */
int64_t weir_wm_gen_current(weir_wm_gen_t *g, int64_t now_us, bool *idle);

/* One input channel of a task. */
typedef struct weir_wm_chan {
    int64_t wm;            /* last received, WEIR_WM_NONE before any */
    bool    idle;
    bool    ended;         /* end of input: no longer holds anything back */
} weir_wm_chan_t;

/* The combined watermark of n channels; *idle when every open channel is
 * idle (then the maximum over them). WEIR_WM_NONE when an active channel
 * has none yet, or when every channel ended. */
int64_t weir_wm_combine(const weir_wm_chan_t *ch, int n, bool *idle);

/* The monotonic clock in microseconds: what idleness is measured on. */
int64_t weir_mono_us(void);

/* Milliseconds for display (Flink's unit); WEIR_WM_NONE and WEIR_WM_MAX map
 * to Long.MIN_VALUE and Long.MAX_VALUE. */
int64_t weir_wm_ms(int64_t wm_us);

#endif
