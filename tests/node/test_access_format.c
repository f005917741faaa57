/*
 * test_access_format.c - the access-log line, byte for byte: the formatter writes with plain
 * appends instead of printf (issue 14, a third of the request path's instructions went to
 * vsnprintf), and the lines must stay what they were: text and JSON, "-"/null for empty
 * fields, durations as milliseconds with three decimals, the cut flag, a negative status, and
 * an over-long line cut short with its newline kept.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "node/access_log.h"

static const char TS[] = "2026-12-04T20:30:01.007Z";

static struct proxy_access_entry entry(void)
{
    return (struct proxy_access_entry){.client = "192.0.2.7",
                                       .host = "app.localhost",
                                       .name = "app",
                                       .method = "GET",
                                       .path = "/a?b=1",
                                       .backend = "10.0.0.2:8080",
                                       .status = 200,
                                       .bytes_in = 78,
                                       .bytes_out = 18446744073709551615ULL,
                                       .duration_us = 1234567};
}

static void test_text(void **state)
{
    (void)state;
    char out[ACCESS_LINE_MAX];
    struct proxy_access_entry e = entry();
    size_t n = access_format(&e, TS, NODE_LOG_TEXT, false, out);
    const char *want = "2026-12-04T20:30:01.007Z info  access: time=2026-12-04T20:30:01.007Z "
                       "client=192.0.2.7 host=app.localhost name=app method=GET path=/a?b=1 "
                       "status=200 bytes_in=78 bytes_out=18446744073709551615 "
                       "backend=10.0.0.2:8080 duration_ms=1234.567\n";
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
    e.host = e.name = e.path = e.backend = "";
    e.status = 0;
    e.bytes_in = e.bytes_out = 0;
    e.duration_us = 5;
    e.cut = true;
    access_format(&e, TS, NODE_LOG_TEXT, true, out);
    assert_string_equal(out, "time=2026-12-04T20:30:01.007Z client=192.0.2.7 host=- name=- "
                             "method=GET path=- status=0 bytes_in=0 bytes_out=0 backend=- "
                             "duration_ms=0.005 cut=1\n");
    e.status = -12;
    e.duration_us = 40;
    e.cut = false;
    access_format(&e, TS, NODE_LOG_TEXT, true, out);
    assert_non_null(strstr(out, " status=-12 "));
    assert_non_null(strstr(out, " duration_ms=0.040\n"));
}

static void test_json(void **state)
{
    (void)state;
    char out[ACCESS_LINE_MAX];
    struct proxy_access_entry e = entry();
    e.path = "/q\"x\\";
    e.cut = true;
    access_format(&e, TS, NODE_LOG_JSON, false, out);
    assert_string_equal(out, "{\"ts\":\"2026-12-04T20:30:01.007Z\",\"level\":\"info\","
                             "\"component\":\"access\",\"client\":\"192.0.2.7\","
                             "\"method\":\"GET\",\"host\":\"app.localhost\",\"name\":\"app\","
                             "\"path\":\"/q\\\"x\\\\\",\"status\":200,\"bytes_in\":78,"
                             "\"bytes_out\":18446744073709551615,"
                             "\"backend\":\"10.0.0.2:8080\",\"duration_ms\":1234.567,"
                             "\"cut\":true}\n");
    e.name = e.backend = "";
    e.cut = false;
    e.duration_us = 0;
    access_format(&e, TS, NODE_LOG_JSON, false, out);
    assert_non_null(strstr(out, ",\"name\":null,"));
    assert_non_null(strstr(out, ",\"backend\":null,\"duration_ms\":0.000,\"cut\":false}\n"));
}

static void test_long_line_is_cut(void **state)
{
    (void)state;
    static char path[2 * ACCESS_LINE_MAX], out[ACCESS_LINE_MAX];
    memset(path, 'p', sizeof(path) - 1);
    struct proxy_access_entry e = entry();
    e.path = path;
    size_t n = access_format(&e, TS, NODE_LOG_TEXT, false, out);
    assert_int_equal(n, ACCESS_LINE_MAX - 1);
    assert_int_equal(out[n - 1], '\n');
    assert_int_equal(out[n], '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_long_line_is_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
