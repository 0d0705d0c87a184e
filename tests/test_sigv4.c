/* SigV4 against AWS's published test suite (aws-sig-v4-test-suite: credentials
 * AKIDEXAMPLE, 20150830T123600Z, us-east-1, service "service"), and the
 * double encoding of a Bedrock model id in the canonical path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "wire/sigv4.h"

#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_DATE "20150830T123600Z"
#define SUITE_CRED "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
#define STS_TOKEN                                                                                  \
    "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPf" \
    "IeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7W" \
    "Z0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8F" \
    "DrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="

static lx_sigv4_request suite(const char *method, const char *query, const lx_sigv4_header *h,
                              size_t n, const char *body)
{
    lx_sigv4_request r = {
        .method = method, .path = "/", .query = query, .headers = h, .n_headers = n,
        .payload = body, .payload_len = body ? strlen(body) : 0, .amz_date = SUITE_DATE,
        .region = "us-east-1", .service = "service", .access_key = "AKIDEXAMPLE",
        .secret_key = SUITE_SECRET,
    };
    return r;
}

static void expect_auth(const lx_sigv4_request *r, const char *want)
{
    lx_buf b = LX_BUF_INIT;
    assert_int_equal(llmux__sigv4_authorization(r, &b), 0);
    assert_string_equal(b.data, want);
    llmux__buf_free(&b);
}

static void test_get_vanilla(void **state)
{
    (void)state;
    lx_sigv4_header h[] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", SUITE_DATE}};
    lx_sigv4_request r = suite("GET", NULL, h, 2, NULL);
    lx_buf c = LX_BUF_INIT;
    assert_int_equal(llmux__sigv4_canonical_request(&r, &c), 0);
    assert_string_equal(c.data, "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
                                "host;x-amz-date\n"
                                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    llmux__buf_free(&c);
    expect_auth(&r, SUITE_CRED "SignedHeaders=host;x-amz-date, "
                               "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

static void test_post_vanilla(void **state)
{
    (void)state;
    lx_sigv4_header h[] = {{"X-Amz-Date", SUITE_DATE}, {"Host", "example.amazonaws.com"}};
    lx_sigv4_request r = suite("POST", "", h, 2, NULL);
    expect_auth(&r, SUITE_CRED "SignedHeaders=host;x-amz-date, "
                               "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

static void test_query_order_key_case(void **state)
{
    (void)state;
    lx_sigv4_header h[] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", SUITE_DATE}};
    lx_sigv4_request r = suite("GET", "Param2=value2&Param1=value1", h, 2, NULL);
    expect_auth(&r, SUITE_CRED "SignedHeaders=host;x-amz-date, "
                               "Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500");
}

static void test_form_body(void **state)
{
    (void)state;
    lx_sigv4_header h[] = {{"Content-Type", "application/x-www-form-urlencoded"},
                           {"Host", "example.amazonaws.com"},
                           {"X-Amz-Date", SUITE_DATE}};
    lx_sigv4_request r = suite("POST", NULL, h, 3, "Param1=value1");
    expect_auth(&r, SUITE_CRED "SignedHeaders=content-type;host;x-amz-date, "
                               "Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a");
}

static void test_header_value_trim(void **state)
{
    (void)state;
    lx_sigv4_header h[] = {{"Host", "example.amazonaws.com"},
                           {"My-Header1", " value1"},
                           {"My-Header2", " \"a   b   c\""},
                           {"X-Amz-Date", SUITE_DATE}};
    lx_sigv4_request r = suite("GET", NULL, h, 4, NULL);
    expect_auth(&r, SUITE_CRED "SignedHeaders=host;my-header1;my-header2;x-amz-date, "
                               "Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736");
}

static void test_session_token_signed(void **state)
{
    (void)state;
    lx_sigv4_header h[] = {{"Host", "example.amazonaws.com"},
                           {"X-Amz-Date", SUITE_DATE},
                           {"X-Amz-Security-Token", STS_TOKEN}};
    lx_sigv4_request r = suite("POST", NULL, h, 3, NULL);
    expect_auth(&r, SUITE_CRED "SignedHeaders=host;x-amz-date;x-amz-security-token, "
                               "Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead");
}

/* The model id is one percent-encoded path segment on the wire; the canonical
 * URI encodes the path again (botocore's _normalize_url_path). */
static void test_bedrock_path_double_encoded(void **state)
{
    (void)state;
    lx_sigv4_header h[] = {{"Host", "bedrock-runtime.us-east-1.amazonaws.com"},
                           {"X-Amz-Date", "20240101T000000Z"}};
    lx_sigv4_request r = suite("POST", NULL, h, 2, "{}");
    r.path = "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse";
    lx_buf c = LX_BUF_INIT;
    assert_int_equal(llmux__sigv4_canonical_request(&r, &c), 0);
    assert_string_equal(c.data, "POST\n/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse\n\n"
                                "host:bedrock-runtime.us-east-1.amazonaws.com\n"
                                "x-amz-date:20240101T000000Z\n\nhost;x-amz-date\n"
                                "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a");
    llmux__buf_free(&c);
    /* an inference-profile ARN: ':' and '/' inside the one segment */
    const char *arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.meta.llama3-2-1b-instruct-v1:0";
    lx_buf seg = LX_BUF_INIT, canon = LX_BUF_INIT;
    assert_int_equal(llmux__sigv4_uri_encode(&seg, arn, strlen(arn), 0), 0);
    assert_string_equal(seg.data, "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile"
                                  "%2Fus.meta.llama3-2-1b-instruct-v1%3A0");
    assert_int_equal(llmux__sigv4_uri_encode(&canon, seg.data, seg.len, 1), 0);
    assert_string_equal(canon.data, "arn%253Aaws%253Abedrock%253Aus-east-1%253A123456789012%253A"
                                    "inference-profile%252Fus.meta.llama3-2-1b-instruct-v1%253A0");
    llmux__buf_free(&seg);
    llmux__buf_free(&canon);
}

static void test_amz_date_and_bad_input(void **state)
{
    (void)state;
    char d[17];
    llmux__sigv4_amz_date(1440938160, d);
    assert_string_equal(d, SUITE_DATE);
    llmux__sigv4_amz_date(1709164800, d);
    assert_string_equal(d, "20240229T000000Z");
    lx_sigv4_header h[LX_SIGV4_MAX_HEADERS + 1];
    for (size_t i = 0; i <= LX_SIGV4_MAX_HEADERS; i++)
        h[i] = (lx_sigv4_header){"X-A", "1"};
    lx_sigv4_request r = suite("GET", NULL, h, LX_SIGV4_MAX_HEADERS + 1, NULL);
    lx_buf b = LX_BUF_INIT;
    assert_int_equal(llmux__sigv4_authorization(&r, &b), -3);
    r.n_headers = 1;
    r.amz_date = "2015";
    assert_int_equal(llmux__sigv4_authorization(&r, &b), -3);
    assert_int_equal(b.len, 0);
    llmux__buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_vanilla),
        cmocka_unit_test(test_post_vanilla),
        cmocka_unit_test(test_query_order_key_case),
        cmocka_unit_test(test_form_body),
        cmocka_unit_test(test_header_value_trim),
        cmocka_unit_test(test_session_token_signed),
        cmocka_unit_test(test_bedrock_path_double_encoded),
        cmocka_unit_test(test_amz_date_and_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
