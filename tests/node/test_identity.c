/*
 * test_identity.c - `webgw identity` finds the node key where the daemon would: in the data
 * dir of its --config file unless --data-dir says otherwise, and refuses a data dir the daemon
 * would refuse (a path too long to hold DIR/node.key) rather than make a key somewhere else.
 * Each mistake is one line on stderr naming the option.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "node/node.h"

static char out[4096], err[4096];

#define identity(...)                                                                              \
    nt_run((const char *const[]){"webgw", "identity", __VA_ARGS__, NULL}, NULL, out, sizeof(out),  \
           err, sizeof(err))

/* One line on stderr, equal to want. */
static void one_line(const char *want)
{
    size_t len = strlen(err);

    assert_true(len > 0 && err[len - 1] == '\n');
    err[len - 1] = '\0';
    assert_null(strchr(err, '\n'));
    assert_string_equal(err, want);
}

static void the_config_files_data_dir_holds_the_key(void **state)
{
    char dir[400], other[400], yaml[512], key[80], again[80], path[512];
    const char *conf;

    (void)state;
    snprintf(dir, sizeof(dir), "%s/conf-data", nt_tmpdir());
    snprintf(other, sizeof(other), "%s/flag-data", nt_tmpdir());
    snprintf(yaml, sizeof(yaml), "data-dir: %s\nlog-format: json\n", dir);
    conf = nt_write_tmp("identity.yaml", yaml);

    assert_int_equal(identity("--config", conf), 0);
    assert_int_equal(sscanf(out, "%64s", key), 1);
    assert_int_equal(strlen(key), 64);
    snprintf(path, sizeof(path), "%s/node.key", dir);
    assert_int_equal(access(path, R_OK), 0);
    /* the same key as --data-dir prints, and the daemon uses */
    assert_int_equal(identity("--data-dir", dir), 0);
    assert_int_equal(sscanf(out, "%64s", again), 1);
    assert_string_equal(again, key);
    /* a flag overrides the file wherever it stands, as for the daemon */
    assert_int_equal(identity("--data-dir", other, "--config", conf), 0);
    assert_int_equal(sscanf(out, "%64s", again), 1);
    assert_string_not_equal(again, key);
    snprintf(path, sizeof(path), "%s/node.key", other);
    assert_int_equal(access(path, R_OK), 0);
    /* a bad file is refused as the daemon refuses it */
    conf = nt_write_tmp("identity-bad.yaml", "data-dir: \"\"\n");
    assert_int_equal(identity("--config", conf), 1);
    assert_non_null(strstr(err, "line 1: data-dir: must not be empty"));
}

static void mistakes_are_one_line(void **state)
{
    char dir[1200], want[1400];
    size_t len;

    (void)state;
    assert_int_equal(identity("--data-dir"), 2);
    one_line("webgw identity: --data-dir: missing value DIR");
    assert_int_equal(identity("--config"), 2);
    one_line("webgw identity: --config: missing value FILE");
    assert_int_equal(identity("--data-dir", ""), 1);
    one_line("webgw identity: --data-dir: must not be empty");
    assert_int_equal(identity("--bogus"), 2);
    one_line("webgw identity: unexpected argument \"--bogus\" (usage: webgw identity [--config "
             "FILE] [--data-dir DIR])");

    /* a data dir that exists but whose DIR/node.key is longer than a config path may be: the
     * key was made at a cut-short path ("DIR/node.k") */
    len = (size_t)snprintf(dir, sizeof(dir), "%s", nt_tmpdir());
    while (len < 530) {
        len += (size_t)snprintf(dir + len, sizeof(dir) - len, "/%.*s", 100,
                                "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
                                "ddddddddddddddddddddddddddddddddddd");
        mkdir(dir, 0700);
    }
    assert_int_equal(identity("--data-dir", dir), 1);
    snprintf(want, sizeof(want), "webgw identity: --data-dir: path longer than %d bytes",
             NODE_PATH_MAX - 1);
    one_line(want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_config_files_data_dir_holds_the_key),
        cmocka_unit_test(mistakes_are_one_line),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nt_cleanup();
    return rc;
}
