/*
 * test_store_crash.c - "a record acknowledged with 202 survives kill -9": a child process
 * appends records and reports each acknowledged one over a pipe; the parent SIGKILLs it at a
 * random moment, reopens the data dir and checks that every acknowledged record is there.
 * Repeated over several rounds on the same directory, so each round also recovers whatever the
 * previous kill left.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <time.h>

#include <cmocka.h>

#include "store_fixtures.h"

#define ROUNDS 6
#define PER_ROUND 400
#define READY UINT32_MAX /* sent once the child has opened the store */

/* The child: open, append records [first, first + count), ack each after append returns. */
static void child_append(const char *dir, const struct state_record *recs, uint32_t first,
                         uint32_t count, int ack_fd)
{
    struct state_names *names = state_names_new();
    char report[STATE_ERR_MAX], err[STATE_ERR_MAX];
    struct state_store *store;
    uint32_t msg = READY;

    store = state_store_open(dir, names, report, sizeof(report), err, sizeof(err));
    if (store == NULL) {
        fprintf(stderr, "child: %s\n", err);
        _exit(2);
    }
    if (write(ack_fd, &msg, sizeof(msg)) != sizeof(msg))
        _exit(3);
    for (uint32_t i = first; i < first + count; i++) {
        if (state_store_append(store, &recs[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "child: %s\n", err);
            _exit(4);
        }
        if (write(ack_fd, &i, sizeof(i)) != sizeof(i))
            _exit(5);
    }
    _exit(0);
}

static void sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};

    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void test_kill9_loses_no_acknowledged_record(void **unused)
{
    static struct state_record recs[ROUNDS * PER_ROUND];
    static bool acked[ROUNDS * PER_ROUND];
    struct sf_dir dir;
    uint64_t seed = (uint64_t)time(NULL) | 1;
    size_t total_acked = 0;

    sf_dir_init(&dir);
    for (int i = 0; i < ROUNDS * PER_ROUND; i++) {
        char name[32];

        snprintf(name, sizeof(name), "crash-%05d", i);
        recs[i] = sf_signed(&dir, i % 5 == 4 ? STATE_RECORD_RESERVE : STATE_RECORD_PROXY, name, 1,
                            (uint16_t)(1 + i));
    }

    for (int round = 0; round < ROUNDS; round++) {
        uint32_t msg, first = (uint32_t)(round * PER_ROUND);
        /* from "before the first append" to "well into the run" */
        uint64_t delay = round == 0 ? 0 : nf_rand(&seed) % (40 * (uint64_t)round);
        char report[STATE_ERR_MAX], err[STATE_ERR_MAX];
        struct state_names *names;
        struct state_store *store;
        int fds[2], status;
        pid_t pid;

        assert_int_equal(pipe(fds), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_append(dir.path, recs, first, PER_ROUND, fds[1]);
        }
        close(fds[1]);
        assert_int_equal(read(fds[0], &msg, sizeof(msg)), sizeof(msg));
        assert_int_equal(msg, READY);
        sleep_ms(delay);
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        /* the child may have finished before the kill: either way it must not have failed */
        assert_true((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ||
                    (WIFEXITED(status) && WEXITSTATUS(status) == 0));
        while (read(fds[0], &msg, sizeof(msg)) == sizeof(msg)) {
            assert_true(msg >= first && msg < first + PER_ROUND);
            acked[msg] = true;
            total_acked++;
        }
        close(fds[0]);

        names = state_names_new();
        store = state_store_open(dir.path, names, report, sizeof(report), err, sizeof(err));
        if (store == NULL)
            fail_msg("reopen after kill: %s", err);
        for (int i = 0; i < (round + 1) * PER_ROUND; i++) {
            struct state_name_view v;

            if (!acked[i])
                continue;
            if (state_names_get(names, recs[i].name, &v) != 0)
                fail_msg("round %d: acknowledged record %s lost (report: %s)", round, recs[i].name,
                         report);
            assert_int_equal(v.record.kind, recs[i].kind);
            assert_memory_equal(v.record.signature, recs[i].signature, STATE_SIGNATURE_LEN);
        }
        state_store_close(store);
        state_names_free(names);
    }
    /* the kills must have landed mid-run at least once, or the test proved nothing */
    assert_true(total_acked > 0);
    print_message("kill -9: %zu of %d records acknowledged over %d kills, all recovered\n",
                  total_acked, ROUNDS * PER_ROUND, ROUNDS);
    sf_dir_free(&dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kill9_loses_no_acknowledged_record),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
