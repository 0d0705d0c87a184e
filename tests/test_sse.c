/* The SSE decoder: fed whole, byte at a time, and split at every position,
 * it must produce the same events; limits and malformed input are errors,
 * never crashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "wire/sse.h"

typedef struct collected {
    lx_buf log; /* "event|data\n" per event */
    int stop_after; /* stop after this many events; 0 = never */
    int n;
} collected;

static int collect(void *ctx, const char *event, const char *data, size_t len)
{
    collected *c = ctx;
    llmux__buf_printf(&c->log, "%s|", event);
    llmux__buf_append(&c->log, data, len);
    llmux__buf_puts(&c->log, "\n");
    c->n++;
    return c->stop_after && c->n >= c->stop_after ? 7 : 0;
}

/* Feed `in` split into pieces of `step` bytes (0 = whole) and return the log. */
static char *run(const char *in, size_t step, int *rc_out)
{
    lx_sse s;
    llmux__sse_init(&s, 0);
    collected c = {LX_BUF_INIT, 0, 0};
    size_t len = strlen(in);
    int rc = 0;
    if (!step)
        step = len ? len : 1;
    for (size_t i = 0; i < len && !rc; i += step)
        rc = llmux__sse_feed(&s, in + i, len - i < step ? len - i : step, collect, &c);
    if (rc_out)
        *rc_out = rc;
    llmux__sse_free(&s);
    return llmux__buf_steal(&c.log);
}

static char *run_split(const char *in, size_t at)
{
    lx_sse s;
    llmux__sse_init(&s, 0);
    collected c = {LX_BUF_INIT, 0, 0};
    llmux__sse_feed(&s, in, at, collect, &c);
    llmux__sse_feed(&s, in + at, strlen(in) - at, collect, &c);
    llmux__sse_free(&s);
    return llmux__buf_steal(&c.log);
}

static void check_all_ways(const char *in, const char *expect)
{
    for (size_t step = 0; step <= 3; step++) {
        char *got = run(in, step, NULL);
        if (strcmp(got, expect) != 0)
            fail_msg("step %zu:\n got: %s\nwant: %s", step, got, expect);
        free(got);
    }
    for (size_t at = 0; at <= strlen(in); at++) {
        char *got = run_split(in, at);
        if (strcmp(got, expect) != 0)
            fail_msg("split at %zu:\n got: %s\nwant: %s", at, got, expect);
        free(got);
    }
}

static void test_openai_stream(void **state)
{
    check_all_ways("data: {\"a\":1}\n\ndata: {\"b\":2}\n\ndata: [DONE]\n\n",
                   "message|{\"a\":1}\nmessage|{\"b\":2}\nmessage|[DONE]\n");
}

static void test_line_endings(void **state)
{
    check_all_ways("data: x\r\n\r\ndata: y\r\rdata: z\n\n", "message|x\nmessage|y\nmessage|z\n");
}

static void test_event_names_comments_multiline(void **state)
{
    check_all_ways(": keep-alive\n\nevent: message_start\ndata: {\"t\":1}\n\n"
                   "event: ping\ndata: a\ndata: b\nid: 7\nretry: 100\n\n",
                   "message_start|{\"t\":1}\nping|a\nb\n");
}

static void test_field_forms(void **state)
{
    /* no space after the colon; a field with no colon; an empty data line */
    check_all_ways("data:x\n\ndata\n\ndata:  two spaces\n\n",
                   "message|x\nmessage|\nmessage| two spaces\n");
}

static void test_blank_lines_without_data_dispatch_nothing(void **state)
{
    check_all_ways("\n\n\nevent: e\n\n", "");
}

static void test_pending_detects_cut_stream(void **state)
{
    lx_sse s;
    llmux__sse_init(&s, 0);
    collected c = {LX_BUF_INIT, 0, 0};
    const char *in = "data: {\"a\":1}\n\ndata: {\"b\"";
    assert_int_equal(llmux__sse_feed(&s, in, strlen(in), collect, &c), 0);
    assert_int_equal(c.n, 1);
    assert_true(llmux__sse_pending(&s));
    llmux__sse_free(&s);
    llmux__buf_free(&c.log);
}

static void test_callback_stop_is_returned(void **state)
{
    lx_sse s;
    llmux__sse_init(&s, 0);
    collected c = {LX_BUF_INIT, 2, 0};
    const char *in = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
    assert_int_equal(llmux__sse_feed(&s, in, strlen(in), collect, &c), 7);
    assert_int_equal(c.n, 2);
    llmux__sse_free(&s);
    llmux__buf_free(&c.log);
}

static void test_event_size_limit(void **state)
{
    lx_sse s;
    llmux__sse_init(&s, 64);
    collected c = {LX_BUF_INIT, 0, 0};
    char big[200];
    memset(big, 'x', sizeof big);
    assert_int_equal(llmux__sse_feed(&s, "data: ", 6, collect, &c), 0);
    int rc = 0;
    for (size_t i = 0; i < sizeof big && !rc; i++)
        rc = llmux__sse_feed(&s, big + i, 1, collect, &c);
    assert_int_equal(rc, -2);
    /* many data lines also count towards the limit */
    llmux__sse_free(&s);
    llmux__sse_init(&s, 64);
    rc = 0;
    for (int i = 0; i < 100 && !rc; i++)
        rc = llmux__sse_feed(&s, "data: 0123456789\n", 17, collect, &c);
    assert_int_equal(rc, -2);
    assert_int_equal(c.n, 0);
    llmux__sse_free(&s);
    llmux__buf_free(&c.log);
}

static void test_garbage_never_crashes(void **state)
{
    unsigned seed = 12345;
    for (int round = 0; round < 200; round++) {
        lx_sse s;
        llmux__sse_init(&s, 4096);
        collected c = {LX_BUF_INIT, 0, 0};
        unsigned char buf[512];
        for (size_t i = 0; i < sizeof buf; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned v = (seed >> 16) & 0xff;
            /* bias towards the bytes the parser cares about */
            const char interesting[] = "data:\n\r :event";
            buf[i] = v < 128 ? (unsigned char)interesting[v % (sizeof interesting - 1)] : (unsigned char)v;
        }
        size_t off = 0;
        while (off < sizeof buf) {
            size_t n = 1 + (off * 7 + (size_t)round) % 13;
            if (n > sizeof buf - off)
                n = sizeof buf - off;
            int rc = llmux__sse_feed(&s, (const char *)buf + off, n, collect, &c);
            assert_true(rc == 0 || rc == -2);
            off += n;
        }
        llmux__sse_free(&s);
        llmux__buf_free(&c.log);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_stream),
        cmocka_unit_test(test_line_endings),
        cmocka_unit_test(test_event_names_comments_multiline),
        cmocka_unit_test(test_field_forms),
        cmocka_unit_test(test_blank_lines_without_data_dispatch_nothing),
        cmocka_unit_test(test_pending_detects_cut_stream),
        cmocka_unit_test(test_callback_stop_is_returned),
        cmocka_unit_test(test_event_size_limit),
        cmocka_unit_test(test_garbage_never_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
