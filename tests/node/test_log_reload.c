/*
 * test_log_reload.c - the daemon's log settings change on SIGHUP (node_log_setup on the control
 * loop) while other threads log (the probe thread's verdicts, the access log's writer). Under
 * TSan this test fails with a data race report when the settings are plain globals: CI saw it
 * as the daemon's exit status 66 at the end of node_test_access_log (a probe verdict logged
 * during the drain that followed a logrotate SIGHUP).
 */
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "node/node.h"

#define ROUNDS 2000

static atomic_bool done;
static FILE *sink_a, *sink_b;

static void *logger(void *arg)
{
    unsigned long n = 0;
    (void)arg;
    while (!atomic_load(&done))
        node_log(NODE_LOG_WARN, "probe", "verdict %lu", n++);
    return NULL;
}

static void settings_change_while_another_thread_logs(void **state)
{
    pthread_t t;
    long before, after;

    (void)state;
    sink_a = fopen("/dev/null", "w");
    sink_b = tmpfile();
    assert_non_null(sink_a);
    assert_non_null(sink_b);
    node_log_setup(NODE_LOG_TEXT, NODE_LOG_INFO, sink_a);
    assert_int_equal(pthread_create(&t, NULL, logger, NULL), 0);
    for (int i = 0; i < ROUNDS; i++) /* what SIGHUP does: format, level and stream */
        node_log_setup(i % 2 ? NODE_LOG_JSON : NODE_LOG_TEXT, i % 3 ? NODE_LOG_INFO : NODE_LOG_WARN,
                       i % 2 ? sink_a : sink_b);
    /* the logger's lines keep going to the sink now set */
    node_log_setup(NODE_LOG_JSON, NODE_LOG_INFO, sink_b);
    fflush(sink_b);
    before = ftell(sink_b);
    for (int i = 0; i < 100000 && ftell(sink_b) == before; i++)
        sched_yield();
    atomic_store(&done, true);
    assert_int_equal(pthread_join(t, NULL), 0);
    after = ftell(sink_b);
    assert_true(after > before);
    /* below the threshold nothing is written */
    node_log_setup(NODE_LOG_TEXT, NODE_LOG_ERROR, sink_b);
    before = ftell(sink_b);
    node_log(NODE_LOG_WARN, "probe", "not shown");
    assert_int_equal(ftell(sink_b), before);
    node_log_setup(NODE_LOG_TEXT, NODE_LOG_INFO, NULL);
    fclose(sink_a);
    fclose(sink_b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(settings_change_while_another_thread_logs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
