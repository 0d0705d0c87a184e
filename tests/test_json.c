/* The allocation-free JSON syntax check: exact positions, depth limit, and the
 * same verdict as cJSON on valid documents and on thousands of mutations. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include <limits.h>

#include "core/buf.h"
#include "core/error.h"
#include "engine/result.h"
#include "core/utf8.h"
#include "providers/classify.h"
#include "wire/json_check.h"
#include "wire/json_members.h"

static int check(const char *s, size_t *off)
{
    return llmux__json_check(s, strlen(s), off);
}

static void test_valid(void **state)
{
    const char *ok[] = {
        "{}", "[]", " \n{ } ", "0", "-0.5e+10", "\"a\\u00e9\\n\\\"\"", "true", "null",
        "{\"a\":[1,2,{\"b\":null}],\"c\":\"\\/\"}", "[[],[[]],{}]", "1E5", "[-1.0e-2]",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (check(ok[i], NULL) != LLMUX_JSON_OK)
            fail_msg("valid case %zu rejected: %s", i, ok[i]);
}

static void test_invalid_with_position(void **state)
{
    static const struct {
        const char *s;
        size_t off;
    } bad[] = {
        {"", 0}, {"{", 1}, {"{\"a\"}", 4}, {"{\"a\":}", 5}, {"[1,]", 3}, {"{\"a\":1,}", 7},
        {"[01]", 2}, {"[1.]", 3}, {"[.5]", 1}, {"[1e]", 3}, {"\"\\x\"", 2}, {"\"\\u12g4\"", 5},
        {"\"abc", 4}, {"tru", 3}, {"nul1", 3}, {"{} x", 3}, {"[1 2]", 3}, {"{'a':1}", 1},
        {"\"a\tb\"", 2}, {"{\"a\" 1}", 5}, {"[", 1}, {"]", 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t off = 999;
        int rc = check(bad[i].s, &off);
        if (rc != LLMUX_JSON_SYNTAX || off != bad[i].off)
            fail_msg("case %zu %s: rc %d off %zu, want off %zu", i, bad[i].s, rc, off, bad[i].off);
    }
}

static void test_depth_limit(void **state)
{
    size_t n = LLMUX_JSON_MAX_DEPTH + 1;
    char *deep = malloc(2 * n + 1);
    memset(deep, '[', n);
    memset(deep + n, ']', n);
    deep[2 * n] = '\0';
    assert_int_equal(check(deep, NULL), LLMUX_JSON_DEPTH);
    assert_int_equal(llmux__json_check(deep + 1, 2 * n - 2, NULL), LLMUX_JSON_OK);
    free(deep);
}

/* Differential: whatever cJSON parses completely, the check accepts, and the
 * other way round, over many mutations of a realistic request. */
static void test_agrees_with_cjson(void **state)
{
    const char *base = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"h\\u00e9 \\\"x\\\"\"}],"
                       "\"temperature\":0.7,\"n\":1,\"stop\":null,\"tools\":[{\"type\":\"function\","
                       "\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}],\"x\":[true,false,-1e-3]}";
    size_t len = strlen(base);
    char *buf = malloc(len + 2);
    const char alphabet[] = "{}[]\",:\\ 0-.eE+tfnul1a";
    unsigned seed = 7;
    int agreed = 0;
    for (int round = 0; round < 20000; round++) {
        memcpy(buf, base, len + 1);
        int edits = 1 + round % 3;
        for (int e = 0; e < edits; e++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % len;
            seed = seed * 1103515245u + 12345u;
            buf[at] = alphabet[(seed >> 8) % (sizeof alphabet - 1)];
        }
        const char *end = NULL;
        cJSON *j = cJSON_ParseWithLengthOpts(buf, len, &end, 0);
        int cjson_ok = j && end == buf + len;
        cJSON_Delete(j);
        int ours = llmux__json_check(buf, len, NULL) == LLMUX_JSON_OK;
        /* cJSON accepts a few things RFC 8259 forbids (leading zeros, control
         * characters in strings, "1." numbers): only require that we never
         * accept what cJSON rejects */
        if (ours && !cjson_ok)
            fail_msg("we accept what cJSON rejects: %s", buf);
        agreed += ours == cjson_ok;
    }
    assert_true(agreed > 19000);
    /* and every prefix of a valid document is rejected, never read past */
    for (size_t n = 0; n < len; n++)
        assert_int_not_equal(llmux__json_check(base, n, NULL), LLMUX_JSON_OK);
    free(buf);
}

/* Members recorded during the check are the ones the member scan finds. */
static void test_check_records_members(void **state)
{
    const char *docs[] = {
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"n\":1}",
        " { \"a\" : { \"b\" : [ 1 , { } ] } , \"c\" : \"x\\\"y\" , \"d\":null } ",
        "{}",
        "{\"k\\u0041\":true}",
    };
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        lx_json_member a[8], b[8];
        int n = -9;
        assert_int_equal(llmux__json_check_members(docs[d], strlen(docs[d]), NULL, a, 8, &n),
                         LLMUX_JSON_OK);
        int want = llmux__json_members(docs[d], strlen(docs[d]), b, 8);
        assert_int_equal(n, want);
        for (int i = 0; i < n; i++) {
            assert_int_equal(a[i].start, b[i].start);
            assert_int_equal(a[i].key_len, b[i].key_len);
            assert_int_equal(a[i].value, b[i].value);
            assert_int_equal(a[i].end, b[i].end);
            assert_int_equal(a[i].key_escaped, b[i].key_escaped);
        }
    }
    lx_json_member m[2];
    int n = 0;
    const char *many = "{\"a\":1,\"b\":2,\"c\":3}";
    assert_int_equal(llmux__json_check_members(many, strlen(many), NULL, m, 2, &n), LLMUX_JSON_OK);
    assert_int_equal(n, -1); /* more than max: valid, but not recorded */
    assert_int_equal(llmux__json_check_members("[1]", 3, NULL, m, 2, &n), LLMUX_JSON_OK);
    assert_int_equal(n, -1); /* not an object */
}


/* A reference decoder, written the long way, for the UTF-8 sequence check. */
static size_t ref_utf8(const unsigned char *s, size_t avail)
{
    size_t n;
    unsigned long cp, min;
    if (s[0] >= 0xc0 && s[0] < 0xe0) { n = 2; cp = s[0] & 0x1f; min = 0x80; }
    else if (s[0] >= 0xe0 && s[0] < 0xf0) { n = 3; cp = s[0] & 0x0f; min = 0x800; }
    else if (s[0] >= 0xf0 && s[0] < 0xf8) { n = 4; cp = s[0] & 0x07; min = 0x10000; }
    else return 0;
    if (avail < n)
        return 0;
    for (size_t k = 1; k < n; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

static void test_utf8_seq_matches_reference(void **state)
{
    static const unsigned char thirds[] = {0x00, 0x7f, 0x80, 0x9f, 0xa0, 0xbf, 0xc0, 0xff};
    unsigned char b[4];
    long valid = 0;
    for (int b0 = 0x80; b0 <= 0xff; b0++)
        for (int b1 = 0; b1 <= 0xff; b1++)
            for (size_t t = 0; t < sizeof thirds; t++)
                for (size_t f = 0; f < sizeof thirds; f++) {
                    b[0] = (unsigned char)b0; b[1] = (unsigned char)b1;
                    b[2] = thirds[t]; b[3] = thirds[f];
                    for (size_t avail = 1; avail <= 4; avail++) {
                        size_t want = ref_utf8(b, avail), got = llmux__utf8_seq(b, avail);
                        if (want != got)
                            fail_msg("%02x %02x %02x %02x avail %zu: got %zu, want %zu", b[0], b[1],
                                     b[2], b[3], avail, got, want);
                        valid += got != 0;
                    }
                }
    assert_int_equal(valid, 434176); /* counted by the reference once, kept as a tripwire */
}

/* Strings must be UTF-8 and surrogate escapes paired; the offset names the
 * first byte of what is wrong, also past the SSE2 runs. */
static void test_utf8_in_strings(void **state)
{
    const char *ok[] = {
        "\"h\xc3\xa9\"", "\"\xe2\x82\xac\"", "\"\xf0\x9f\x98\x80\"", "\"\xf4\x8f\xbf\xbf\"",
        "\"\\ud83d\\ude00\"", "\"\\u00e9\\uffff\"",
        "{\"a\":\"0123456789abcdef0123\xc3\xa9\xc3\xa9\xc3\xa9 0123456789abcdef\xe2\x82\xac\"}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (check(ok[i], NULL) != LLMUX_JSON_OK)
            fail_msg("valid case %zu rejected: %s", i, ok[i]);
    static const struct {
        const char *s;
        size_t off;
    } bad[] = {
        {"\"\xc3\"", 1}, {"\"\xc0\x80\"", 1}, {"\"\xc1\xbf\"", 1}, {"\"\xe0\x80\xaf\"", 1},
        {"\"\xed\xa0\x80\"", 1}, {"\"\xf4\x90\x80\x80\"", 1}, {"\"\xf5\x80\x80\x80\"", 1},
        {"\"\x80\"", 1}, {"\"abc\xff\"", 4}, {"\"\xe2\x82\"", 1}, {"\"\xf0\x9f\x98\"", 1},
        {"\"\\ud800\"", 1}, {"\"\\udc00\\u0041\"", 1}, {"\"\\ud800\\u0041\"", 1},
        {"\"x\\ud83d\\n\"", 2}, {"[\"0123456789abcdef0123\xe2\x82\"]", 22},
        {"[\"0123456789abcdef0123456789abcdef\xfe\"]", 34},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t off = 999;
        int rc = check(bad[i].s, &off);
        if (rc != LLMUX_JSON_UTF8 || off != bad[i].off)
            fail_msg("case %zu: rc %d off %zu, want UTF8 at %zu", i, rc, off, bad[i].off);
    }
    /* a cut inside a character or a surrogate pair never reads past the end */
    const char *full = "[\"\xf0\x9f\x98\x80 \\ud83d\\ude00\"]";
    for (size_t n = 0; n < strlen(full); n++)
        assert_int_not_equal(llmux__json_check(full, n, NULL), LLMUX_JSON_OK);
}

static int valid_utf8(const char *s)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        size_t n = (unsigned char)s[i] < 0x80 ? 1 : llmux__utf8_seq((const unsigned char *)s + i, len - i);
        if (!n)
            return 0;
        i += n;
    }
    return 1;
}

/* Whatever text it is given, the JSON string writer writes valid JSON in
 * valid UTF-8: bytes that are not UTF-8 become U+FFFD, characters pass. */
static void test_json_writer_emits_utf8(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
        {"a\xff" "b", "\"a\\ufffdb\""},
        {"cut \xe2\x82", "\"cut \\ufffd\\ufffd\""},
        {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\""},
        {"q\"\\\n\x01", "\"q\\\"\\\\\\n\\u0001\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lx_buf b = LX_BUF_INIT;
        assert_int_equal(llmux__buf_json_string(&b, cases[i].in), 0);
        if (strcmp(b.data, cases[i].out) != 0)
            fail_msg("case %zu: got %s want %s", i, b.data, cases[i].out);
        assert_int_equal(llmux__json_check(b.data, b.len, NULL), LLMUX_JSON_OK);
        llmux__buf_free(&b);
    }
    /* every byte value in every position of a short string */
    for (int c = 1; c < 256; c++) {
        char in[8] = {'x', (char)c, (char)c, 'y', (char)c, 0};
        lx_buf b = LX_BUF_INIT;
        assert_int_equal(llmux__buf_json_string(&b, in), 0);
        if (llmux__json_check(b.data, b.len, NULL) != LLMUX_JSON_OK)
            fail_msg("byte %02x: %s", c, b.data);
        llmux__buf_free(&b);
    }
}

/* Text from outside is cut between characters and repaired, in error
 * messages, sanitised provider text and the error JSON of a result. */
static void test_error_text_is_utf8(void **state)
{
    lx_err e;
    /* "%.5s" of "ééé" (6 bytes) would cut the third é in half */
    llmux__err(&e, LLMUX_ERR_PROVIDER, "x %.5s y", "\xc3\xa9\xc3\xa9\xc3\xa9");
    assert_true(valid_utf8(e.msg));
    assert_string_equal(e.msg, "x \xc3\xa9\xc3\xa9? y");
    /* truncation at the end of the record */
    char long_text[LLMUX_ERRMSG_MAX + 8];
    memset(long_text, 'a', sizeof long_text);
    for (size_t i = 1; i + 1 < sizeof long_text; i += 2) {
        long_text[i - 1] = '\xc3';
        long_text[i] = '\xa9';
    }
    long_text[sizeof long_text - 1] = 0;
    for (int shift = 0; shift < 4; shift++) {
        llmux__err(&e, LLMUX_ERR_PROVIDER, "%.*s%s", shift, "xyz", long_text);
        if (!valid_utf8(e.msg))
            fail_msg("shift %d: a cut character at the end", shift);
    }
    char out[8];
    llmux__sanitize_text(out, sizeof out, "ab\xe2\x82\xac\xe2\x82\xac", 8);
    assert_string_equal(out, "ab\xe2\x82\xac"); /* the second euro does not fit whole */
    llmux__sanitize_text(out, sizeof out, "a\xff\x80z\n", 5);
    assert_string_equal(out, "a??z ");
    llmux_result *r = llmux__result_new(NULL);
    llmux__result_fail(r, LLMUX_ERR_PROVIDER, 502, "upstream said \xc3 and \xf0\x9f");
    assert_int_equal(llmux__json_check(r->json, strlen(r->json), NULL), LLMUX_JSON_OK);
    assert_true(valid_utf8(llmux_result_error(r)));
    llmux_result_free(r);
    /* and no status makes llmux_strerror misbehave */
    assert_string_equal(llmux_strerror(INT_MIN), "unknown status");
    assert_string_equal(llmux_strerror(INT_MAX), "unknown status");
    assert_string_equal(llmux_strerror(-10000), "unknown status");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid_with_position),
        cmocka_unit_test(test_depth_limit),
        cmocka_unit_test(test_agrees_with_cjson),
        cmocka_unit_test(test_check_records_members),
        cmocka_unit_test(test_utf8_seq_matches_reference),
        cmocka_unit_test(test_utf8_in_strings),
        cmocka_unit_test(test_json_writer_emits_utf8),
        cmocka_unit_test(test_error_text_is_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
