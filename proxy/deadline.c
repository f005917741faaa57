/*
 * deadline.c - the timeouts of a worker's connections, on one libuv timer per worker.
 *
 * A session has one timeout at a time (header, keep-alive, connect, response, send, tunnel
 * idle), and each of those is a fixed number of milliseconds from the configuration. Deadlines
 * set with the same duration therefore come in the order they are due: a list per duration,
 * appended at its tail, stays sorted, and moving a deadline back (progress pushes a timeout
 * away, the common case) is an unlink and an append. The one libuv timer is armed for the
 * earliest head of the lists. An idle connection so costs a list link and a time (24 bytes)
 * instead of a uv_timer_t (152) in libuv's heap, and a request costs no heap operation.
 * (libev's documentation describes the same trick for timeouts of one length.)
 *
 * Moving a deadline back is cheaper still: it keeps its place and records how much later it
 * expires (`later`, up to PROXY_DEADLINE_LATER_MAX ms); when its place comes up, the expiry
 * finds it not yet due and puts it back in order. A request moves its deadline several times
 * (keep-alive, header, response, keep-alive) and most of those moves are back, so they cost a
 * store instead of a list operation. A deadline moved earlier is relinked.
 *
 * More distinct durations than lists share the last list, which then inserts in order by
 * walking back from its tail: still correct, only slower, and the daemon's six timeouts fit.
 */
#include "proxy/internal.h"

static void on_fire(uv_timer_t *t);

void proxy_deadlines_init(uv_loop_t *loop, struct proxy_deadlines *ds,
                          void (*expired)(struct proxy_deadline *))
{
    memset(ds, 0, sizeof(*ds));
    for (unsigned i = 0; i < PROXY_DEADLINE_LISTS; i++)
        proxy_list_init(&ds->lists[i].head);
    ds->expired = expired;
    uv_timer_init(loop, &ds->timer);
    ds->timer.data = ds;
    /* the connections keep the loop running; their timeouts alone must not */
    uv_unref((uv_handle_t *)&ds->timer);
}

void proxy_deadlines_close(struct proxy_deadlines *ds)
{
    if (ds->closed)
        return;
    ds->closed = true;
    uv_close((uv_handle_t *)&ds->timer, NULL);
}

/* Arms the libuv timer for `due` unless it fires earlier already. */
static void arm(struct proxy_deadlines *ds, uint64_t due)
{
    if (ds->closed || (ds->timer_due != 0 && ds->timer_due <= due))
        return;
    uint64_t now = uv_now(ds->timer.loop);
    ds->timer_due = due;
    uv_timer_start(&ds->timer, on_fire, due > now ? due - now : 0, 0);
}

/* The list for deadlines of `ms`: its own, a free one, or the shared last one. */
static struct proxy_deadline_list *list_for(struct proxy_deadlines *ds, uint32_t ms)
{
    for (unsigned i = 0; i < ds->nlists; i++)
        if (ds->lists[i].ms == ms)
            return &ds->lists[i];
    if (ds->nlists < PROXY_DEADLINE_LISTS - 1) {
        struct proxy_deadline_list *l = &ds->lists[ds->nlists++];
        l->ms = ms;
        return l;
    }
    return &ds->lists[PROXY_DEADLINE_LISTS - 1];
}

/* Links d into l at its place for `due` (walking back past later ones: none in a list of one
 * duration) and arms the timer for it. */
static void place(struct proxy_deadlines *ds, struct proxy_deadline *d,
                  struct proxy_deadline_list *l, uint64_t due)
{
    d->due = due;
    d->later = 0;
    struct proxy_link *at = l->head.prev;
    while (at != &l->head && PROXY_CONTAINER(at, struct proxy_deadline, link)->due > due)
        at = at->prev;
    proxy_list_add(at, &d->link);
    arm(ds, due);
}

void proxy_deadline_set(struct proxy_deadlines *ds, struct proxy_deadline *d, uint32_t ms)
{
    if (ms == 0)
        ms = 1; /* due strictly after now: an expiry that sets it again waits a turn */
    uint64_t due = uv_now(ds->timer.loop) + ms;
    if (d->link.next != NULL && d->link.next != &d->link) {
        /* moved back (or kept): its place still comes first, the expiry sorts it out */
        if (due >= d->due && due - d->due <= PROXY_DEADLINE_LATER_MAX) {
            d->later = due - d->due;
            return;
        }
        proxy_list_del(&d->link);
    } else {
        ds->armed++;
    }
    place(ds, d, list_for(ds, ms), due);
}

void proxy_deadline_clear(struct proxy_deadlines *ds, struct proxy_deadline *d)
{
    if (d->link.next == NULL || d->link.next == &d->link)
        return;
    proxy_list_del(&d->link);
    /* the last one gone: nothing is left to time, the loop holds no active timer for it */
    if (--ds->armed == 0 && ds->timer_due != 0 && !ds->closed) {
        uv_timer_stop(&ds->timer);
        ds->timer_due = 0;
    }
}

static void on_fire(uv_timer_t *t)
{
    struct proxy_deadlines *ds = t->data;
    uint64_t now = uv_now(t->loop);
    ds->timer_due = 0;
    for (unsigned i = 0; i < PROXY_DEADLINE_LISTS; i++) {
        struct proxy_link *head = &ds->lists[i].head;
        /* an expiry may set deadlines (due after now: they stay) or clear others */
        while (!proxy_list_empty(head)) {
            struct proxy_deadline *d = PROXY_CONTAINER(head->next, struct proxy_deadline, link);
            if (d->due > now)
                break;
            proxy_list_del(&d->link);
            uint64_t due = (uint64_t)d->due + d->later;
            if (due > now) { /* moved back: its new place, in the same list */
                place(ds, d, &ds->lists[i], due);
                continue;
            }
            ds->armed--;
            ds->expired(d);
        }
    }
    uint64_t next = 0;
    for (unsigned i = 0; i < PROXY_DEADLINE_LISTS; i++) {
        struct proxy_link *head = &ds->lists[i].head;
        if (proxy_list_empty(head))
            continue;
        uint64_t due = PROXY_CONTAINER(head->next, struct proxy_deadline, link)->due;
        if (next == 0 || due < next)
            next = due;
    }
    if (next != 0)
        arm(ds, next);
}
