/* tests/core/test_watermark.c -- watermark generation and combining.
 *
 * The rules of runtime/core/watermark.h, value by value: bounded
 * out-of-orderness (max - ooo - 1 ms, as Flink's
 * BoundedOutOfOrdernessWatermarks), the minimum over splits, a split
 * without records holding the watermark back until it turns idle, idle
 * splits left out and taken back in, and the input rule of Flink's
 * StatusWatermarkValve: minimum over active channels, maximum when all are
 * idle, ended channels left out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "runtime/core/watermark.h"

#define S 1000000LL      /* one second in us */
#define MS 1000LL

static void
test_bounded_out_of_orderness(void **state)
{
    weir_wm_gen_t g;
    bool idle;

    (void)state;
    assert_int_equal(weir_wm_gen_init(&g, 1, 5 * S, 0, 0), 0);
    assert_true(weir_wm_gen_current(&g, 0, &idle) == WEIR_WM_NONE);   /* nothing seen */
    assert_false(idle);
    weir_wm_observe(&g, 0, 100 * S);
    weir_wm_observe(&g, 0, 90 * S);                                    /* late: no effect */
    assert_true(weir_wm_gen_current(&g, 1, &idle) == 100 * S - 5 * S - MS);
    weir_wm_observe(&g, 0, 101 * S);
    assert_true(weir_wm_gen_current(&g, 2, &idle) == 96 * S - MS);
    weir_wm_gen_free(&g);

    /* no out-of-orderness: max - 1 ms */
    assert_int_equal(weir_wm_gen_init(&g, 1, 0, 0, 0), 0);
    weir_wm_observe(&g, 0, 7 * MS);
    assert_true(weir_wm_gen_current(&g, 0, &idle) == 6 * MS);
    weir_wm_gen_free(&g);
}

static void
test_min_over_splits_and_idleness(void **state)
{
    weir_wm_gen_t g;
    bool idle;

    (void)state;
    assert_int_equal(weir_wm_gen_init(&g, 1, 0, 10 * S, 0), 0);
    assert_int_equal(weir_wm_gen_splits(&g, 3, 0), 0);
    weir_wm_observe(&g, 0, 50 * S);
    weir_wm_observe(&g, 1, 20 * S);
    /* split 2 has nothing yet and is not idle: it holds the watermark back */
    assert_true(weir_wm_gen_current(&g, 1 * S, &idle) == WEIR_WM_NONE);
    assert_false(idle);
    /* 10 s without a record: split 2 is idle and left out; the others keep
     * getting records */
    weir_wm_observe(&g, 0, 51 * S);
    weir_wm_observe(&g, 1, 21 * S);
    assert_true(weir_wm_gen_current(&g, 10 * S, &idle) == 21 * S - MS);
    assert_false(idle);
    /* split 1 goes quiet too: 10 s after its last record only split 0 counts */
    weir_wm_observe(&g, 0, 60 * S);
    assert_true(weir_wm_gen_current(&g, 15 * S, &idle) == 21 * S - MS);  /* 1 still active */
    weir_wm_observe(&g, 0, 61 * S);
    assert_true(weir_wm_gen_current(&g, 20 * S, &idle) == 61 * S - MS);
    /* split 2 wakes up behind: taken back in, it holds the watermark back */
    weir_wm_observe(&g, 2, 30 * S);
    assert_true(weir_wm_gen_current(&g, 21 * S, &idle) == 30 * S - MS);
    /* every split quiet for the timeout: the source is idle */
    assert_true(weir_wm_gen_current(&g, 40 * S, &idle) == WEIR_WM_NONE);
    assert_true(idle);
    weir_wm_gen_free(&g);

    /* no idle timeout: a silent split holds the watermark back for ever */
    assert_int_equal(weir_wm_gen_init(&g, 2, 0, 0, 0), 0);
    weir_wm_observe(&g, 0, 5 * S);
    assert_true(weir_wm_gen_current(&g, 3600 * S, &idle) == WEIR_WM_NONE);
    assert_false(idle);
    weir_wm_gen_free(&g);
}

static void
test_combine(void **state)
{
    weir_wm_chan_t ch[3] = {
        { .wm = 10 * S }, { .wm = 5 * S }, { .wm = WEIR_WM_NONE },
    };
    bool idle;

    (void)state;
    /* one active channel without a watermark: none */
    assert_true(weir_wm_combine(ch, 3, &idle) == WEIR_WM_NONE);
    assert_false(idle);
    /* it ends: the minimum of the others */
    ch[2].ended = true;
    assert_true(weir_wm_combine(ch, 3, &idle) == 5 * S);
    /* the lower one is idle: left out */
    ch[1].idle = true;
    assert_true(weir_wm_combine(ch, 3, &idle) == 10 * S);
    assert_false(idle);
    /* all idle: the maximum, and idle */
    ch[0].idle = true;
    ch[1].wm = 12 * S;
    assert_true(weir_wm_combine(ch, 3, &idle) == 12 * S);
    assert_true(idle);
    /* every channel ended: nothing to say */
    ch[0].ended = ch[1].ended = true;
    assert_true(weir_wm_combine(ch, 3, &idle) == WEIR_WM_NONE);
    assert_false(idle);
}

static void
test_milliseconds(void **state)
{
    (void)state;
    assert_true(weir_wm_ms(1704067200123456LL) == 1704067200123LL);
    assert_true(weir_wm_ms(-1) == -1);                 /* floor, not towards zero */
    assert_true(weir_wm_ms(-1000) == -1);
    assert_true(weir_wm_ms(-1001) == -2);
    assert_true(weir_wm_ms(WEIR_WM_NONE) == INT64_MIN);
    assert_true(weir_wm_ms(WEIR_WM_MAX) == INT64_MAX);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bounded_out_of_orderness),
        cmocka_unit_test(test_min_over_splits_and_idleness),
        cmocka_unit_test(test_combine),
        cmocka_unit_test(test_milliseconds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
