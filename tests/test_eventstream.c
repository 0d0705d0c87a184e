/* The AWS event-stream decoder: fed whole, one byte at a time and split at
 * every position it delivers the same messages; corrupted CRCs, impossible
 * lengths, malformed headers and oversized messages are errors, never crashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/crc32.h"
#include "wire/eventstream.h"

typedef struct collected {
    lx_buf log; /* "type:event|payload\n" per message */
    int n, stop_after;
} collected;

static int collect(void *ctx, const lx_es_message *m)
{
    collected *c = ctx;
    const lx_es_header *t = llmux__es_header(m, ":message-type");
    const lx_es_header *e = llmux__es_header(m, ":event-type");
    llmux__buf_printf(&c->log, "%.*s:%.*s|", t ? (int)t->value_len : 0, t ? t->value : "",
                      e ? (int)e->value_len : 0, e ? e->value : "");
    llmux__buf_append(&c->log, m->payload, m->payload_len);
    llmux__buf_puts(&c->log, "\n");
    c->n++;
    return c->stop_after && c->n >= c->stop_after ? 9 : 0;
}

static void event(lx_buf *b, const char *type, const char *payload)
{
    const char *names[] = {":event-type", ":content-type", ":message-type"};
    const char *values[] = {type, "application/json", "event"};
    assert_int_equal(llmux__es_encode(b, names, values, 3, payload, strlen(payload)), 0);
}

static lx_buf sample(void)
{
    lx_buf b = LX_BUF_INIT;
    event(&b, "messageStart", "{\"role\":\"assistant\"}");
    event(&b, "contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hi\"}}");
    event(&b, "messageStop", "{\"stopReason\":\"end_turn\"}");
    event(&b, "metadata", "{\"usage\":{\"inputTokens\":3,\"outputTokens\":1,\"totalTokens\":4}}");
    return b;
}

static const char sample_log[] =
    "event:messageStart|{\"role\":\"assistant\"}\n"
    "event:contentBlockDelta|{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hi\"}}\n"
    "event:messageStop|{\"stopReason\":\"end_turn\"}\n"
    "event:metadata|{\"usage\":{\"inputTokens\":3,\"outputTokens\":1,\"totalTokens\":4}}\n";

/* Feeds in pieces of step bytes (0 = whole); returns the log, *rc the last status. */
static char *run(const char *in, size_t len, size_t step, size_t max, int *rc_out, int *pending)
{
    lx_eventstream d;
    llmux__es_init(&d, max);
    collected c = {LX_BUF_INIT, 0, 0};
    int rc = 0;
    if (!step)
        step = len ? len : 1;
    for (size_t i = 0; i < len && !rc; i += step)
        rc = llmux__es_feed(&d, in + i, len - i < step ? len - i : step, collect, &c);
    *rc_out = rc;
    if (pending)
        *pending = llmux__es_pending(&d);
    llmux__es_free(&d);
    return llmux__buf_steal(&c.log);
}

static void test_whole_and_byte_at_a_time(void **state)
{
    (void)state;
    lx_buf b = sample();
    for (size_t step = 0; step <= 7; step++) {
        int rc, pending;
        char *log = run(b.data, b.len, step, 0, &rc, &pending);
        assert_int_equal(rc, 0);
        assert_int_equal(pending, 0);
        assert_string_equal(log, sample_log);
        free(log);
    }
    llmux__buf_free(&b);
}

static void test_split_at_every_position(void **state)
{
    (void)state;
    lx_buf b = sample();
    for (size_t at = 0; at <= b.len; at++) {
        lx_eventstream d;
        llmux__es_init(&d, 0);
        collected c = {LX_BUF_INIT, 0, 0};
        assert_int_equal(llmux__es_feed(&d, b.data, at, collect, &c), 0);
        assert_int_equal(llmux__es_feed(&d, b.data + at, b.len - at, collect, &c), 0);
        assert_int_equal(llmux__es_pending(&d), 0);
        assert_string_equal(c.log.data, sample_log);
        llmux__buf_free(&c.log);
        llmux__es_free(&d);
    }
    llmux__buf_free(&b);
}

/* Flipping any one bit anywhere is caught by a CRC or a length check: the
 * decoder never delivers the damaged message as it was. */
static void test_every_corrupted_bit_is_refused(void **state)
{
    (void)state;
    lx_buf b = LX_BUF_INIT;
    event(&b, "contentBlockDelta", "{\"delta\":{\"text\":\"Hi\"}}");
    for (size_t i = 0; i < b.len; i++)
        for (int bit = 0; bit < 8; bit++) {
            b.data[i] ^= (char)(1 << bit);
            for (size_t step = 0; step <= 1; step++) {
                int rc, pending;
                char *log = run(b.data, b.len, step, 0, &rc, &pending);
                assert_string_equal(log, "");
                /* a longer length waits for more bytes: pending, which the adapter
                 * reports as a cut stream */
                assert_true(rc < 0 || pending);
                if (i < 8 || (i >= 8 && i < 12))
                    assert_true(rc == LX_ES_PRELUDE_CRC || rc == LX_ES_BAD_LENGTH ||
                                rc == LX_ES_TOO_LARGE);
                else
                    assert_int_equal(rc, LX_ES_MESSAGE_CRC);
                free(log);
            }
            b.data[i] ^= (char)(1 << bit);
        }
    llmux__buf_free(&b);
}

static void test_errors_stick_and_callback_stops(void **state)
{
    (void)state;
    lx_buf b = sample();
    lx_eventstream d;
    llmux__es_init(&d, 0);
    collected c = {LX_BUF_INIT, 0, 2};
    assert_int_equal(llmux__es_feed(&d, b.data, b.len, collect, &c), 9);
    assert_int_equal(c.n, 2);
    llmux__buf_free(&c.log);
    llmux__es_free(&d);

    b.data[b.len - 1] ^= 1; /* the last message's CRC */
    int rc;
    char *log = run(b.data, b.len, 1, 0, &rc, NULL);
    assert_int_equal(rc, LX_ES_MESSAGE_CRC);
    /* the three messages before it arrived, the fourth did not */
    assert_int_equal(strncmp(log, sample_log, strlen(log)), 0);
    assert_int_equal(strlen(log), strstr(sample_log, "event:metadata") - sample_log);
    free(log);
    llmux__es_init(&d, 0);
    collected c2 = {LX_BUF_INIT, 0, 0};
    assert_int_equal(llmux__es_feed(&d, b.data, b.len, collect, &c2), LX_ES_MESSAGE_CRC);
    assert_int_equal(c2.n, 3);
    assert_int_equal(llmux__es_feed(&d, b.data, 16, collect, &c2), LX_ES_MESSAGE_CRC);
    assert_int_equal(c2.n, 3);
    llmux__buf_free(&c2.log);
    llmux__es_free(&d);
    llmux__buf_free(&b);
}

static void put32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

/* A message with the given prelude lengths and raw header bytes, CRCs right. */
static size_t frame(char *out, uint32_t total, uint32_t hl, const char *headers, size_t n)
{
    put32(out, total);
    put32(out + 4, hl);
    put32(out + 8, llmux__crc32(0, out, 8));
    memcpy(out + 12, headers, n);
    put32(out + 12 + n, llmux__crc32(0, out, 12 + n));
    return 16 + n;
}

static void test_limits_and_bad_lengths(void **state)
{
    (void)state;
    char m[256];
    int rc;
    char *log;
    /* total smaller than a message can be */
    size_t n = frame(m, 12, 0, "", 0);
    log = run(m, n, 0, 0, &rc, NULL);
    assert_int_equal(rc, LX_ES_BAD_LENGTH);
    free(log);
    /* headers longer than the message */
    frame(m, 16, 1, "", 0);
    log = run(m, 16, 0, 0, &rc, NULL);
    assert_int_equal(rc, LX_ES_BAD_LENGTH);
    free(log);
    /* over the caller's cap: refused at the prelude, before the body arrives */
    lx_buf b = sample();
    log = run(b.data, 12, 0, 40, &rc, NULL);
    assert_int_equal(rc, LX_ES_TOO_LARGE);
    free(log);
    /* a prelude announcing 4 GiB: refused, nothing allocated for it */
    frame(m, 0xFFFFFFF0u, 0, "", 0);
    log = run(m, 12, 0, 0, &rc, NULL);
    assert_int_equal(rc, LX_ES_TOO_LARGE);
    free(log);
    llmux__buf_free(&b);
}

static int check_types(void *ctx, const lx_es_message *msg)
{
    int *calls = ctx;
    (*calls)++;
    assert_int_equal(msg->n_headers, 10);
    assert_int_equal(msg->payload_len, 0);
    const int64_t want[] = {1, 0, -1, 2, -3, 1099511627776LL};
    for (int i = 0; i < 10; i++)
        assert_int_equal(msg->headers[i].type, i);
    for (int i = 0; i < 6; i++)
        assert_int_equal(msg->headers[i].ival, want[i]);
    assert_int_equal(msg->headers[8].ival, 0x18e00000000LL);
    assert_int_equal(msg->headers[6].value_len, 2);
    assert_memory_equal(msg->headers[6].value, "xy", 2);
    assert_true(llmux__es_header_is(msg, "h", "abc"));
    assert_false(llmux__es_header_is(msg, "g", "xy")); /* bytes, not a string */
    assert_int_equal(msg->headers[9].value_len, 16);
    return 0;
}

static void test_header_types(void **state)
{
    (void)state;
    /* every type once: true, false, byte -1, short 2, int -3, long 2^40, bytes, string,
     * timestamp, uuid */
    static const char h[] =
        "\1a\0" "\1b\1" "\1c\2\xff" "\1d\3\0\2" "\1e\4\xff\xff\xff\xfd"
        "\1f\5\0\0\1\0\0\0\0\0" "\1g\6\0\2xy" "\1h\7\0\3abc" "\1i\x08\0\0\1\x8e\0\0\0\0"
        "\1j\x09" "0123456789abcdef";
    size_t hn = sizeof h - 1;
    char m[256];
    size_t n = frame(m, (uint32_t)(16 + hn), (uint32_t)hn, h, hn);
    lx_eventstream d;
    llmux__es_init(&d, 0);
    int calls = 0;
    assert_int_equal(llmux__es_feed(&d, m, n, check_types, &calls), 0);
    assert_int_equal(calls, 1);
    llmux__es_free(&d);

    /* malformed: unknown type 10, a name running past the end, a string past the end,
     * an empty name */
    static const char *const bad[] = {"\1a\x0a", "\x09" "abc", "\1h\7\0\x09" "abc", "\0\0"};
    static const size_t bad_len[] = {3, 4, 7, 2};
    for (size_t i = 0; i < 4; i++) {
        int rc;
        n = frame(m, (uint32_t)(16 + bad_len[i]), (uint32_t)bad_len[i], bad[i], bad_len[i]);
        char *log = run(m, n, 0, 0, &rc, NULL);
        assert_int_equal(rc, LX_ES_BAD_HEADERS);
        free(log);
    }
}

static void test_crc32_known_value(void **state)
{
    (void)state;
    assert_int_equal(llmux__crc32(0, "123456789", 9), 0xCBF43926u);
    assert_int_equal(llmux__crc32(llmux__crc32(0, "1234", 4), "56789", 5), 0xCBF43926u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32_known_value),
        cmocka_unit_test(test_whole_and_byte_at_a_time),
        cmocka_unit_test(test_split_at_every_position),
        cmocka_unit_test(test_every_corrupted_bit_is_refused),
        cmocka_unit_test(test_errors_stick_and_callback_stops),
        cmocka_unit_test(test_limits_and_bad_lengths),
        cmocka_unit_test(test_header_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
