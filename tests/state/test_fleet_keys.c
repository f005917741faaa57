/*
 * test_fleet_keys.c - the fleet roster file (--fleet-keys, state/fleet_keys.c): what it
 * accepts, every way a line is refused (with its line number), the bounds; and dropping the
 * witnesses of keys the roster no longer lists (state_names_keep_witnesses).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "names_fixtures.h"

#define K1 "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29"
#define K2 "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define K3 "D75A980182B10AB7D54BFED3C964073A0EE172F3DAA62325AF021A68F707511A"

static struct state_fleet_keys fk;
static char err[STATE_ERR_MAX];

static int parse(const char *text)
{
    err[0] = '\0';
    return state_fleet_keys_parse(text, strlen(text), "fleet.keys", &fk, err, sizeof(err));
}

static void test_accepts_keys_labels_comments_crlf(void **state)
{
    uint8_t k3[STATE_OWNER_LEN];

    (void)state;
    assert_int_equal(parse("# the fleet\r\n"
                           "\r\n" K1 "  gw1\r\n"
                           "   " K2 "\tgw two   # rack 4\n" K3),
                     0);
    assert_int_equal(fk.count, 3);
    assert_string_equal(fk.labels[0], "gw1");
    assert_string_equal(fk.labels[1], "gw two");
    assert_string_equal(fk.labels[2], "");
    assert_int_equal(fk.lines[0], 3);
    assert_int_equal(fk.lines[2], 5);
    assert_int_equal(state_owner_parse(K3, k3), 0); /* upper case hex is the same key */
    assert_true(state_fleet_keys_has(&fk, k3));
    k3[0] ^= 1;
    assert_false(state_fleet_keys_has(&fk, k3));
    /* an empty file and a file of comments list nobody (the daemon then refuses: its own key
     * must be listed) */
    assert_int_equal(parse(""), 0);
    assert_int_equal(fk.count, 0);
    assert_int_equal(parse("# nobody yet\n\n"), 0);
    assert_int_equal(fk.count, 0);
}

static void refused(const char *text, const char *want)
{
    assert_int_not_equal(parse(text), 0);
    if (strstr(err, want) == NULL)
        fail_msg("\"%s\" does not contain \"%s\"", err, want);
    assert_int_equal(fk.count, 0); /* nothing half-read survives */
}

static void test_malformed_lines_name_file_and_line(void **state)
{
    (void)state;
    refused(K1 "\nnot-a-key gw2\n", "fleet.keys:2: expected a node key");
    refused(K1 "0\n", "fleet.keys:1: expected a node key");         /* 65 digits */
    refused("\n\n3b6a27bc\n", "fleet.keys:3: expected a node key"); /* short */
    refused("zz" K1 "\n", "fleet.keys:1: expected a node key");     /* 66 */
    refused("gb6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29\n",
            "fleet.keys:1: \"gb6a27bc"); /* not hex */
    refused(K1 " gw\x01\n", "fleet.keys:1: label holds a control");
    refused(K1 " gw\xc3\xa9\n", "fleet.keys:1: label holds a control or non-ASCII");
    refused(K1 " a-label-that-is-far-too-long-for-anyone-to-read-in-a-log-line-xyz\n",
            "fleet.keys:1: label longer than 63");
    refused(K1 "\n" K2 "\n" K1 " again\n", "fleet.keys:3: key 3b6a27bcceb6a42d... is listed "
                                           "twice (line 1)");
    /* the same key in other letters is the same key */
    refused(K3 "\nd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\n",
            "fleet.keys:2:");
    {
        const char text[] = K1 "\n\0" K2 "\n";
        assert_int_not_equal(
            state_fleet_keys_parse(text, sizeof(text) - 1, "fleet.keys", &fk, err, sizeof(err)), 0);
        assert_non_null(strstr(err, "fleet.keys:2: a NUL byte"));
    }
}

static void test_bounds(void **state)
{
    char *text = malloc(STATE_FLEET_FILE_MAX + 2);
    size_t len = 0;

    (void)state;
    for (int i = 0; i <= STATE_FLEET_KEYS_MAX; i++) {
        uint8_t key[STATE_OWNER_LEN];
        char hex[STATE_OWNER_HEX_LEN + 1];

        nf_owner(key, (uint8_t)i);
        key[1] = (uint8_t)(i >> 8);
        state_owner_format(key, hex);
        len += (size_t)sprintf(text + len, "%s gw%d\n", hex, i);
        if (i == STATE_FLEET_KEYS_MAX - 1) {
            assert_int_equal(state_fleet_keys_parse(text, len, "fleet.keys", &fk, err, sizeof(err)),
                             0);
            assert_int_equal(fk.count, STATE_FLEET_KEYS_MAX);
        }
    }
    assert_int_not_equal(state_fleet_keys_parse(text, len, "fleet.keys", &fk, err, sizeof(err)), 0);
    assert_non_null(strstr(err, "fleet.keys:257: more than 256 keys"));
    /* past the size bound, whatever it holds */
    memset(text, '#', STATE_FLEET_FILE_MAX + 1);
    assert_int_not_equal(
        state_fleet_keys_parse(text, STATE_FLEET_FILE_MAX + 1, "fleet.keys", &fk, err, sizeof(err)),
        0);
    assert_non_null(strstr(err, "larger than 65536 bytes"));
    free(text);
}

static void test_load_missing_file(void **state)
{
    (void)state;
    assert_int_not_equal(state_fleet_keys_load("/nonexistent/fleet.keys", &fk, err, sizeof(err)),
                         0);
    assert_non_null(strstr(err, "cannot open /nonexistent/fleet.keys"));
}

/* ---- dropping the witnesses of keys no longer listed ---------------------------------- */

static struct state_witness witness(uint8_t tag, const struct state_record *rec, uint64_t t)
{
    struct state_witness w;

    memset(&w, 0, sizeof(w));
    nf_owner(w.key, tag);
    w.version = rec->version;
    w.claim_at_ms = rec->reserved_at_ms;
    w.time_ms = t;
    w.signature[0] = tag;
    return w;
}

/* Merging every witness and then dropping an unlisted key's gives the state that merging only
 * the listed ones gives: same fingerprint, same holder, and the claim that relied on the
 * dropped witness waits again. */
static void test_keep_witnesses(void **state)
{
    struct state_record a = nf_record(STATE_RECORD_RESERVE, "victim", 1, 1, NF_NOW_MS, 0);
    struct state_record b = nf_record(STATE_RECORD_RESERVE, "victim", 2, 1, NF_NOW_MS, 0);
    struct state_names *all = state_names_new(), *listed = state_names_new();
    uint8_t keys[2][STATE_OWNER_LEN];
    struct state_name_view v;

    (void)state;
    nf_owner(keys[0], 101);
    nf_owner(keys[1], 102);
    state_names_set_witnessing(all, 1, 2);
    state_names_set_witnessing(listed, 1, 2);
    for (int i = 0; i < 2; i++) {
        struct state_names *n = i ? listed : all;
        assert_int_equal(state_names_merge(n, &a, NULL), 1);
        assert_int_equal(state_names_merge(n, &b, NULL), 1);
    }
    struct state_witness wa1 = witness(101, &a, NF_NOW_MS), wa2 = witness(102, &a, NF_NOW_MS),
                         wb1 = witness(101, &b, NF_NOW_MS + 5),
                         wb2 = witness(102, &b, NF_NOW_MS - 86400000),
                         wb3 = witness(103, &b, NF_NOW_MS - 86400000);
    for (int i = 0; i < 2; i++) {
        struct state_names *n = i ? listed : all;
        assert_int_equal(state_names_witness(n, "victim", a.owner, &wa1, NULL), 1);
        assert_int_equal(state_names_witness(n, "victim", a.owner, &wa2, NULL), 1);
        assert_int_equal(state_names_witness(n, "victim", b.owner, &wb1, NULL), 1);
        assert_int_equal(state_names_witness(n, "victim", b.owner, &wb2, NULL), 1);
    }
    /* a: seen by 101 and 102 now; b: by 101 now, by 102 and 103 (not listed) a day back */
    assert_int_equal(state_names_witness(all, "victim", b.owner, &wb3, NULL), 1);
    /* with 103's witness b's claim is a day older than a's: b holds */
    assert_int_equal(state_names_get(all, "victim", &v), 0);
    assert_memory_equal(v.record.owner, b.owner, STATE_OWNER_LEN);
    assert_int_equal(state_names_keep_witnesses(all, keys, 2), 1);
    assert_int_equal(state_names_keep_witnesses(all, keys, 2), 0); /* idempotent */
    assert_int_equal(state_names_get(all, "victim", &v), 0);
    assert_memory_equal(v.record.owner, a.owner, STATE_OWNER_LEN);
    assert_int_equal(v.witnesses, 2);
    assert_int_equal(nf_fingerprint(all), nf_fingerprint(listed));
    assert_int_equal(state_names_digest(all), state_names_digest(listed));
    /* a roster of 101 alone: nobody has two witnesses, both claims wait */
    assert_int_equal(state_names_keep_witnesses(all, keys, 1), 2);
    assert_int_equal(state_names_get(all, "victim", &v), 0);
    assert_false(v.held);
    assert_true(v.pending);
    state_names_free(all);
    state_names_free(listed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts_keys_labels_comments_crlf),
        cmocka_unit_test(test_malformed_lines_name_file_and_line),
        cmocka_unit_test(test_bounds),
        cmocka_unit_test(test_load_missing_file),
        cmocka_unit_test(test_keep_witnesses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
