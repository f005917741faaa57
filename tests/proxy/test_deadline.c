/*
 * test_deadline.c - the workers' connection timeouts (proxy/deadline.c) on a real libuv loop:
 * deadlines of many durations, more than the lists that hold one duration each, expire in the
 * order they are due and never before; one moved back expires at its new time; a cleared one
 * never; an expiry may set deadlines again; and the shared timer stops once the last one is
 * cleared, so the loop holds no active timer for connections that have none.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/internal.h"

#define N 40

struct item {
    struct proxy_deadline d;
    uint32_t ms;       /* duration set */
    uint64_t set_at;   /* loop time when set */
    uint64_t fired_at; /* loop time it expired at; 0 = not yet */
    int order;         /* expiry rank */
    int again;         /* times to set it again from its expiry */
};

static struct proxy_deadlines DS;
static uv_loop_t loop;
static struct item items[N];
static int fired;

static void expired(struct proxy_deadline *d)
{
    struct item *it = PROXY_CONTAINER(d, struct item, d);
    it->fired_at = uv_now(&loop);
    it->order = fired++;
    if (it->again > 0) {
        it->again--;
        it->set_at = uv_now(&loop);
        it->fired_at = 0;
        proxy_deadline_set(&DS, &it->d, it->ms);
    }
}

/* Holds the loop open (the deadline timer itself is unreferenced, as in a worker). */
static uv_idle_t keep;
static void on_keep(uv_idle_t *h)
{
    (void)h;
    if (DS.armed == 0)
        uv_idle_stop(&keep);
}

static void run_until_none_armed(void)
{
    uv_idle_start(&keep, on_keep);
    uv_run(&loop, UV_RUN_DEFAULT);
}

static int setup(void **state)
{
    (void)state;
    memset(items, 0, sizeof(items));
    fired = 0;
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_idle_init(&loop, &keep);
    proxy_deadlines_init(&loop, &DS, expired);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    proxy_deadlines_close(&DS);
    uv_close((uv_handle_t *)&keep, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

/* 40 deadlines over 13 durations (the last list is shared by several): every list is in the
 * order of due times, so the timer's one look at each head finds what is due; each deadline
 * fires, and never before its time. (Firings that the loop runs late share one moment, so the
 * order among them is not a property to test.) */
static void test_many_durations_expire_in_order(void **state)
{
    (void)state;
    uv_update_time(&loop);
    for (int i = 0; i < N; i++) {
        items[i].ms = 5 + (uint32_t)((i * 7) % 13) * 4; /* 5..53 ms, mixed */
        items[i].set_at = uv_now(&loop);
        proxy_deadline_set(&DS, &items[i].d, items[i].ms);
    }
    assert_int_equal(DS.armed, N);
    assert_int_equal(DS.nlists, PROXY_DEADLINE_LISTS - 1);
    for (unsigned l = 0; l < PROXY_DEADLINE_LISTS; l++) {
        uint64_t last = 0;
        struct proxy_link *head = &DS.lists[l].head;
        for (struct proxy_link *at = head->next; at != head; at = at->next) {
            uint64_t due = PROXY_CONTAINER(at, struct proxy_deadline, link)->due;
            assert_true(due >= last);
            last = due;
        }
    }
    run_until_none_armed();
    assert_int_equal(fired, N);
    for (int i = 0; i < N; i++)
        assert_true(items[i].fired_at >= items[i].set_at + items[i].ms);
}

/* Moved back, cleared, set again from its own expiry. */
static void test_move_clear_and_rearm(void **state)
{
    (void)state;
    uv_update_time(&loop);
    uint64_t t0 = uv_now(&loop);
    proxy_deadline_set(&DS, &items[0].d, 10);
    proxy_deadline_set(&DS, &items[1].d, 10);
    proxy_deadline_set(&DS, &items[2].d, 10);
    items[2].ms = 10;
    items[2].again = 2;
    proxy_deadline_clear(&DS, &items[1].d);
    proxy_deadline_clear(&DS, &items[1].d);   /* twice: no effect */
    proxy_deadline_set(&DS, &items[0].d, 60); /* progress pushes it back */
    assert_int_equal(DS.armed, 2);
    run_until_none_armed();
    assert_int_equal(items[1].fired_at, 0);
    assert_true(items[0].fired_at >= t0 + 60);
    assert_true(items[2].fired_at >= t0 + 30); /* set again twice from its expiry */
    assert_int_equal(fired, 4);
}

/* The last deadline cleared stops the shared timer: no active timer is left in the loop. */
static void test_timer_stops_when_none_is_armed(void **state)
{
    (void)state;
    proxy_deadline_set(&DS, &items[0].d, 1000);
    assert_true(uv_is_active((uv_handle_t *)&DS.timer));
    proxy_deadline_clear(&DS, &items[0].d);
    assert_int_equal(DS.armed, 0);
    assert_false(uv_is_active((uv_handle_t *)&DS.timer));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_many_durations_expire_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_move_clear_and_rearm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timer_stops_when_none_is_armed, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
