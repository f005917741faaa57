/*
 * acme_schedule.c - when to renew a certificate and how long to wait after a failure.
 *
 * Pure functions so the policy is tested without clocks: renew 30 days before expiry
 * (Let's Encrypt's advice for 90-day certificates, leaving a month of retries), back off
 * exponentially from a minute to a day, and never retry before the CA's own Retry-After.
 */
#include "acme/acme_internal.h"

#define BACKOFF_BASE_S 60L
#define BACKOFF_CAP_S 86400L

bool acme_renewal_due(time_t not_after, time_t now)
{
    return not_after - now <= ACME_RENEW_BEFORE_S;
}

long acme_backoff_seconds(unsigned failures, long retry_after, double jitter)
{
    long delay = BACKOFF_BASE_S;

    for (unsigned i = 1; i < failures && delay < BACKOFF_CAP_S; i++)
        delay *= 2;
    if (delay > BACKOFF_CAP_S)
        delay = BACKOFF_CAP_S;
    if (jitter < 0 || jitter >= 1)
        jitter = 0;
    /* spread over [3/4 delay, delay]: nodes that failed together do not retry together */
    delay = delay - (long)((double)(delay / 4) * jitter);
    return retry_after > delay ? retry_after : delay;
}
