/*
 * session_flow.c - flow control of a session, per direction (request: client -> backend;
 * response: backend -> client): each direction records its facts in one struct sess_dir, and
 * sess_update_reading() alone derives from them whether its source is read (see the note at
 * the top of session.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/internal.h"

static void dir_apply(struct sess_dir *d, struct proxy_conn *src, enum sess_blocker why)
{
    d->blocked = why;
    if (why == BLOCK_NONE)
        proxy_conn_read_start(src);
    else
        proxy_conn_read_stop(src);
}

/* Derives, for each direction, whether its source is read now, and reads or stops reading
 * accordingly. Called after every event that changes one of its inputs: a state change, an
 * EOF, a queue crossing its limit, input consumed. */
void sess_update_reading(struct proxy_session *s)
{
    if (s->c.closing)
        return;
    struct sess_dir *rq = &s->request_dir;
    enum sess_blocker why = BLOCK_NONE;
    if (s->st == SS_CLOSING || (s->passthrough && s->st == SS_CONNECT))
        why = BLOCK_STATE;
    else if (rq->shut)
        why = BLOCK_SHUT;
    else if (rq->dest_full)
        why = BLOCK_DEST_FULL;
    else if (s->st != SS_TUNNEL && proxy_conn_in_full(&s->c))
        why = BLOCK_BUF_FULL;
    dir_apply(rq, &s->c, why);

    if (s->r == NULL || s->r->up == NULL || s->r->up->c.closing)
        return;
    struct sess_dir *rs = &s->r->response_dir;
    why = BLOCK_NONE;
    if (s->st == SS_CONNECT || s->st == SS_CLOSING || s->st == SS_HEAD)
        why = BLOCK_STATE;
    else if (rs->shut)
        why = BLOCK_SHUT;
    else if (rs->dest_full)
        why = BLOCK_DEST_FULL;
    else if (s->st != SS_TUNNEL && proxy_conn_in_full(&s->r->up->c))
        why = BLOCK_BUF_FULL;
    dir_apply(rs, &s->r->up->c, why);
}

/* After writing into `to`: marks the direction full when the queue is over the limit. */
void sess_dir_note_queue(struct proxy_session *s, struct sess_dir *d, struct proxy_conn *to)
{
    if (proxy_conn_pending(to) > sess_proxy(s)->cfg.write_queue_limit)
        d->dest_full = true;
}

/* After `to` wrote some: true when the direction was full and has drained below half. */
bool sess_dir_drained(struct proxy_session *s, struct sess_dir *d, struct proxy_conn *to)
{
    if (!d->dest_full || proxy_conn_pending(to) > sess_proxy(s)->cfg.write_queue_limit / 2)
        return false;
    d->dest_full = false;
    return true;
}
