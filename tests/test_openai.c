/* The OpenAI-compatible adapter (request build, response parse, error
 * classification, stream decoding byte at a time) and the stream assembler. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "config/config.h"
#include "engine/assemble.h"
#include "llmux.h"
#include "providers/provider.h"
#include "wire/json_members.h"

static lx_config *load(void)
{
    setenv("LLMUX_TEST_OPENAI_KEY", "sk-unit-test-key", 1);
    const char *json = "{\"providers\":{\"p\":{\"type\":\"openai\",\"base_url\":"
                       "\"http://127.0.0.1:1/x/v1/\",\"api_key_env\":\"LLMUX_TEST_OPENAI_KEY\"}},"
                       "\"models\":{\"m\":{\"targets\":[{\"provider\":\"p\",\"model\":\"gpt-x\"}]}}}";
    lx_config *cfg = NULL;
    lx_err err = {0};
    assert_int_equal(llmux__config_parse(&cfg, json, strlen(json), &err), LLMUX_OK);
    return cfg;
}

static int has_header(const lx_http_request *r, const char *line)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i].line, line) == 0)
            return 1;
    return 0;
}

static void test_build_request(void **state)
{
    lx_config *cfg = load();
    lx_provider_cfg *p = &cfg->providers[0];
    lx_request req = {0};
    req.n_members = -1;
    req.raw = "{\"model\":\"alias\",\"messages\":[{\"role\":\"user\",\"content\":"
              "\"hi\"}],\"stream\":true,\"stream_options\":{},\"temperature\":0.5}";
    req.raw_len = strlen(req.raw);
    lx_http_request hr;
    llmux__http_request_init(&hr);
    lx_err err = {0};
    assert_int_equal(p->ops->build_request(p, "gpt-x", &req, 0, &hr, &err), LLMUX_OK);
    assert_string_equal(hr.url, "http://127.0.0.1:1/x/v1/chat/completions");
    assert_true(has_header(&hr, "Authorization: Bearer sk-unit-test-key"));
    assert_true(has_header(&hr, "Content-Type: application/json"));
    assert_string_equal(hr.body, "{\"model\":\"gpt-x\",\"messages\":[{\"role\":\"user\",\"content\":"
                                 "\"hi\"}],\"temperature\":0.5}");
    assert_int_equal(hr.body_len, strlen(hr.body));
    llmux__http_request_free(&hr);

    /* streaming asks for usage so the call can be accounted */
    assert_int_equal(p->ops->build_request(p, "gpt-y", &req, 1, &hr, &err), LLMUX_OK);
    assert_string_equal(hr.body, "{\"model\":\"gpt-y\",\"messages\":[{\"role\":\"user\",\"content\":"
                                 "\"hi\"}],\"temperature\":0.5,\"stream\":true,"
                                 "\"stream_options\":{\"include_usage\":true}}");
    assert_true(has_header(&hr, "Accept: text/event-stream"));
    llmux__http_request_free(&hr);
    llmux__request_free(&req);
    llmux__config_unref(cfg);
}

/* The hot path splices the target model into the caller's bytes. */
static void test_build_request_splices_caller_bytes(void **state)
{
    lx_config *cfg = load();
    lx_provider_cfg *p = &cfg->providers[0];
    static const struct {
        const char *raw, *body;
    } cases[] = {
        {"{\"model\":\"alias\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
         "{\"model\":\"gpt-x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"},
        /* whitespace between members goes, inside values stays; numbers keep their spelling */
        {" {\n \"temperature\" : 0.70 ,\n \"model\":\"a\", \"messages\" : [ {\"role\":\"user\", "
         "\"content\":\"a } \\\" ,\"}] , \"stream\": false, \"stream_options\": {\"x\":[1,{}]} }\n",
         "{\"temperature\" : 0.70,\"model\":\"gpt-x\",\"messages\" : [ {\"role\":\"user\", "
         "\"content\":\"a } \\\" ,\"}]}"},
        {"{\"messages\":[],\"n\":1,\"model\":\"a\",\"stop\":null,\"x\":true}",
         "{\"messages\":[],\"n\":1,\"model\":\"gpt-x\",\"stop\":null,\"x\":true}"},
        /* an escaped key is the model too; a second model is never forwarded */
        {"{\"mod\\u0065l\":\"a\",\"messages\":[]}", "{\"model\":\"gpt-x\",\"messages\":[]}"},
        {"{\"model\":\"a\",\"model\":\"b\",\"messages\":[]}", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lx_request req = {0};
        req.n_members = -1; /* not recorded: the adapter scans */
        req.raw = cases[i].raw;
        req.raw_len = strlen(cases[i].raw);
        lx_http_request hr;
        llmux__http_request_init(&hr);
        lx_err err = {0};
        assert_int_equal(p->ops->build_request(p, "gpt-x", &req, 0, &hr, &err), LLMUX_OK);
        if (cases[i].body && strcmp(hr.body, cases[i].body) != 0)
            fail_msg("case %zu:\n got: %s\nwant: %s", i, hr.body, cases[i].body);
        assert_int_equal(hr.body_len, strlen(hr.body));
        /* whichever path ran, the body is valid JSON naming the target */
        cJSON *sent = cJSON_Parse(hr.body);
        assert_non_null(sent);
        assert_string_equal(cJSON_GetObjectItemCaseSensitive(sent, "model")->valuestring, "gpt-x");
        assert_null(cJSON_GetObjectItemCaseSensitive(sent, "stream"));
        cJSON_Delete(sent);
        llmux__http_request_free(&hr);
        llmux__request_free(&req);
    }
    llmux__config_unref(cfg);
}

static void test_json_members_scan(void **state)
{
    lx_json_member m[8];
    const char *t = "{ \"a\" : [1,{\"b\":\"]}\"}] , \"c\":-1.5e3,\"d\":{},\"e\":\"x\\\"y\"}";
    assert_int_equal(llmux__json_members(t, strlen(t), m, 8), 4);
    assert_int_equal(m[0].key_len, 1);
    assert_memory_equal(t + m[0].value, "[1,{\"b\":\"]}\"}]", m[0].end - m[0].value);
    assert_memory_equal(t + m[1].value, "-1.5e3", m[1].end - m[1].value);
    assert_memory_equal(t + m[3].value, "\"x\\\"y\"", m[3].end - m[3].value);
    assert_int_equal(llmux__json_members("{}", 2, m, 8), 0);
    assert_int_equal(llmux__json_members("[]", 2, m, 8), -1);
    assert_int_equal(llmux__json_members(t, strlen(t), m, 3), -1); /* too many members */
    /* every truncation is refused or scanned within bounds */
    for (size_t n = 0; n < strlen(t); n++)
        assert_true(llmux__json_members(t, n, m, 8) < 4);
}

/* parse_response on a copy of body, which must succeed; the JSON it hands back. */
static char *parse_ok(lx_provider_cfg *p, const char *body, lx_usage *u)
{
    lx_buf b = LX_BUF_INIT;
    llmux__buf_puts(&b, body);
    char *json = NULL;
    lx_err err = {0};
    if (p->ops->parse_response(p, &b, &json, u, &err) != LLMUX_OK)
        fail_msg("%s: %s", body, err.msg);
    llmux__buf_free(&b);
    return json;
}

static void test_parse_response(void **state)
{
    lx_config *cfg = load();
    lx_provider_cfg *p = &cfg->providers[0];
    const char *body = "{\"id\":\"c1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
                       "\"message\":{\"role\":\"assistant\",\"content\":\"hey\"},"
                       "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":11,"
                       "\"completion_tokens\":3,\"total_tokens\":14,\"prompt_tokens_details\":"
                       "{\"cached_tokens\":8}},\"x_extension\":1}";
    lx_buf b = LX_BUF_INIT;
    lx_usage u = LX_USAGE_UNKNOWN;
    lx_err err = {0};
    char *json = parse_ok(p, body, &u);
    assert_string_equal(json, body); /* passed through, extensions intact */
    assert_int_equal(u.prompt_tokens, 11);
    assert_int_equal(u.completion_tokens, 3);
    assert_int_equal(u.cached_tokens, 8);
    free(json);

    static const struct {
        const char *body;
        int status;
        const char *message;
    } bad[] = {
        {"", LLMUX_ERR_BAD_RESPONSE, "the response body is not valid JSON (0 bytes, error at byte 0)"},
        {"{\"id\":\"x\",\"choices\":[", LLMUX_ERR_BAD_RESPONSE,
         "the response body is not valid JSON (21 bytes, error at byte 21)"},
        {"[]", LLMUX_ERR_BAD_RESPONSE, "the response is not a JSON object"},
        {"{\"id\":\"x\"}", LLMUX_ERR_BAD_RESPONSE,
         "the response has no \"choices\" array: not a chat.completion"},
        {"{\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}", LLMUX_ERR_PROVIDER,
         "HTTP 200 with an error body (server_error): overloaded"},
        /* what cJSON would take, and the check does not */
        {"{\x01\"choices\":[]}", LLMUX_ERR_BAD_RESPONSE,
         "the response body is not valid JSON (15 bytes, error at byte 1)"},
        {"{\"choices\":[],\"x\":\"a\nb\"}", LLMUX_ERR_BAD_RESPONSE,
         "the response body is not valid JSON (24 bytes, error at byte 20)"},
        {"{\"choices\":[],\"n\":01}", LLMUX_ERR_BAD_RESPONSE,
         "the response body is not valid JSON (21 bytes, error at byte 19)"},
        {"{\"choices\":[],\"x\":\"\xc3\x28\"}", LLMUX_ERR_BAD_RESPONSE,
         "the response body is not valid UTF-8 (23 bytes, error at byte 19)"},
        {"{\"choices\":[],\"x\":\"\\udc00\"}", LLMUX_ERR_BAD_RESPONSE,
         "the response body is not valid UTF-8 (27 bytes, error at byte 19)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        llmux__buf_puts(&b, bad[i].body);
        json = NULL;
        memset(&err, 0, sizeof err);
        int rc = p->ops->parse_response(p, &b, &json, &u, &err);
        if (rc != bad[i].status || strcmp(err.msg, bad[i].message) != 0)
            fail_msg("case %zu: want %d %s, got %d %s", i, bad[i].status, bad[i].message, rc,
                     err.msg);
        assert_null(json);
        if (bad[i].status == LLMUX_ERR_PROVIDER)
            assert_int_equal(err.http_status, 200);
        llmux__buf_free(&b);
    }
    llmux__config_unref(cfg);
}

/* Whatever parse_response accepts (mostly on its text alone) is a JSON object
 * with a "choices" array and no "error", and the usage it reads is the one
 * cJSON reads; over thousands of mutations of a real answer. */
static void test_parse_response_agrees_with_cjson(void **state)
{
    lx_config *cfg = load();
    lx_provider_cfg *p = &cfg->providers[0];
    const char *base = "{\"id\":\"c1\",\"object\":\"chat.completion\",\"created\":17,\"model\":\"m\","
                       "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"hey\"},"
                       "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":3,"
                       "\"total_tokens\":14,\"prompt_tokens_details\":{\"cached_tokens\":8}}}";
    const char alphabet[] = "{}[]\",:\\ 0123456789-.enrucsh";
    size_t len = strlen(base);
    unsigned seed = 4242;
    int accepted = 0;
    for (int round = 0; round < 20000; round++) {
        lx_buf b = LX_BUF_INIT;
        llmux__buf_append(&b, base, len);
        for (int e = 0; e < round % 3; e++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = (seed >> 8) % len;
            seed = seed * 1103515245u + 12345u;
            b.data[at] = alphabet[(seed >> 8) % (sizeof alphabet - 1)];
        }
        char copy[1024];
        memcpy(copy, b.data, len + 1);
        char *json = NULL;
        lx_usage u = LX_USAGE_UNKNOWN;
        lx_err err = {0};
        int rc = p->ops->parse_response(p, &b, &json, &u, &err);
        cJSON *t = cJSON_ParseWithLength(copy, len);
        if (rc == LLMUX_OK) {
            accepted++;
            assert_string_equal(json, copy);
            if (!cJSON_IsObject(t) || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(t, "choices")) ||
                cJSON_GetObjectItemCaseSensitive(t, "error"))
                fail_msg("accepted a body that is no chat completion: %s", copy);
            const cJSON *usage = cJSON_GetObjectItemCaseSensitive(t, "usage");
            const cJSON *pt = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens");
            double d = cJSON_IsNumber(pt) ? pt->valuedouble : -1;
            long want = d >= 0 && d <= 1e15 && d == (double)(long long)d ? (long)d : -1;
            if (u.prompt_tokens != want)
                fail_msg("prompt_tokens %ld, cJSON says %ld: %s", u.prompt_tokens, want, copy);
        } else {
            assert_null(json);
            assert_true(rc == LLMUX_ERR_BAD_RESPONSE || rc == LLMUX_ERR_PROVIDER);
        }
        cJSON_Delete(t);
        free(json);
        llmux__buf_free(&b);
    }
    assert_true(accepted > 5000);
    llmux__config_unref(cfg);
}

/* Absurd token counts are unknown (-1), never an undefined conversion. */
static void test_usage_clamped(void **state)
{
    lx_config *cfg = load();
    lx_provider_cfg *p = &cfg->providers[0];
    static const struct {
        const char *tokens;
        long want;
    } cases[] = {
        {"1e999", -1}, {"1e19", -1}, {"-5", -1}, {"1.5", -1}, {"1e16", -1}, {"-0.0", 0},
        {"9223372036854775807", -1}, {"1e15", 1000000000000000L}, {"12", 12}, {"12.0", 12},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"choices\":[],\"usage\":{\"prompt_tokens\":%s,\"completion_tokens\":%s,"
                 "\"prompt_tokens_details\":{\"cached_tokens\":%s}}}",
                 cases[i].tokens, cases[i].tokens, cases[i].tokens);
        lx_usage u = LX_USAGE_UNKNOWN;
        lx_err err = {0};
        free(parse_ok(p, body, &u));
        if (u.prompt_tokens != cases[i].want || u.completion_tokens != cases[i].want ||
            u.cached_tokens != cases[i].want)
            fail_msg("%s: got %ld %ld %ld, want %ld", cases[i].tokens, u.prompt_tokens,
                     u.completion_tokens, u.cached_tokens, cases[i].want);
        /* the same in a stream's usage chunk */
        lx_assembler a;
        llmux__assembler_init(&a, 1 << 20);
        cJSON *c = cJSON_Parse(body);
        assert_int_equal(llmux__assembler_add(&a, c, &err), LLMUX_OK);
        assert_int_equal(a.u.prompt_tokens, cases[i].want);
        assert_int_equal(a.u.cached_tokens, cases[i].want);
        cJSON_Delete(c);
        llmux__assembler_free(&a);
    }
    llmux__config_unref(cfg);
}

static void test_classify_errors(void **state)
{
    lx_config *cfg = load();
    lx_provider_cfg *p = &cfg->providers[0];
    static const struct {
        long http;
        const char *body;
        int status;
        const char *message;
    } cases[] = {
        {400, "{\"error\":{\"message\":\"bad temperature\",\"type\":\"invalid_request_error\","
              "\"param\":\"temperature\",\"code\":null}}",
         LLMUX_ERR_BAD_REQUEST, "HTTP 400 (invalid_request_error): bad temperature"},
        {400, "{\"error\":{\"message\":\"This model's maximum context length is 8192 tokens.\","
              "\"type\":\"invalid_request_error\",\"code\":\"context_length_exceeded\"}}",
         LLMUX_ERR_CONTEXT_WINDOW,
         "HTTP 400 (context_length_exceeded): This model's maximum context length is 8192 "
         "tokens."},
        {400, "{\"error\":{\"message\":\"filtered\",\"code\":\"content_filter\"}}",
         LLMUX_ERR_CONTENT_FILTER, "HTTP 400 (content_filter): filtered"},
        {401, "{\"error\":{\"message\":\"Incorrect API key\",\"code\":\"invalid_api_key\"}}",
         LLMUX_ERR_AUTH, "HTTP 401 (invalid_api_key): Incorrect API key"},
        {403, "{\"error\":\"forbidden\"}", LLMUX_ERR_PERMISSION, "HTTP 403: forbidden"},
        {404, "{\"detail\":\"Not Found\"}", LLMUX_ERR_NOT_FOUND, "HTTP 404: Not Found"},
        {408, "", LLMUX_ERR_TIMEOUT, "HTTP 408: (empty body)"},
        {429, "{\"error\":{\"message\":\"slow down\",\"type\":\"rate_limit_error\",\"code\":429}}",
         LLMUX_ERR_RATE_LIMIT, "HTTP 429 (429): slow down"},
        {500, "<html>oops\n</html>", LLMUX_ERR_PROVIDER, "HTTP 500: <html>oops </html>"},
        {503, "{\"message\":\"unavailable\"}", LLMUX_ERR_PROVIDER, "HTTP 503: unavailable"},
        {529, "{\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}",
         LLMUX_ERR_PROVIDER, "HTTP 529 (overloaded_error): Overloaded"},
        {418, "teapot", LLMUX_ERR_BAD_REQUEST, "HTTP 418: teapot"},
        /* a 429 that waiting does not cure */
        {429, "{\"error\":{\"message\":\"You exceeded your current quota\",\"type\":\"insufficient_quota\","
              "\"code\":\"insufficient_quota\"}}",
         LLMUX_ERR_QUOTA, "HTTP 429 (insufficient_quota): You exceeded your current quota"},
        {302, "", LLMUX_ERR_BAD_RESPONSE, "HTTP 302: (empty body)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lx_err err = {0};
        lx_http_response resp = {0};
        resp.status = cases[i].http;
        llmux__buf_append(&resp.body, cases[i].body, strlen(cases[i].body));
        int rc = p->ops->classify_error(p, &resp, &err);
        llmux__http_response_free(&resp);
        if (rc != cases[i].status || strcmp(err.msg, cases[i].message) != 0)
            fail_msg("case %zu: want %d \"%s\", got %d \"%s\"", i, cases[i].status,
                     cases[i].message, rc, err.msg);
        assert_int_equal(err.http_status, cases[i].http);
    }
    llmux__config_unref(cfg);
}

/* ------------------------------------------------------------ stream decode */

typedef struct sink {
    lx_assembler a;
    int chunks;
    int stop_at;
    int status; /* the assembler's, when it refused a chunk */
    lx_err err;
} sink;

static int on_chunk(void *ctx, const char *json, size_t len, cJSON *parsed)
{
    sink *s = ctx;
    assert_int_equal(strlen(json), len);
    s->status = llmux__assembler_add(&s->a, parsed, &s->err);
    if (s->status)
        return 1;
    s->chunks++;
    return s->stop_at && s->chunks >= s->stop_at;
}

static const char STREAM[] =
    "data: {\"id\":\"c9\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\","
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
    "\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"c9\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n"
    ": comment\n\n"
    "data: {\"id\":\"c9\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\r\n\r\n"
    "data: {\"id\":\"c9\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
    "\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get\",\"arguments\":\"\"}}]}}]}\n\n"
    "data: {\"id\":\"c9\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
    "\"function\":{\"arguments\":\"{\\\"a\\\":\"}}]}}]}\n\n"
    "data: {\"id\":\"c9\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
    "\"function\":{\"arguments\":\"1}\"}}]}}]}\n\n"
    "data: {\"id\":\"c9\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n"
    "data: {\"id\":\"c9\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":4,"
    "\"total_tokens\":11}}\n\n"
    "data: [DONE]\n\n";

static const char ASSEMBLED[] =
    "{\"id\":\"c9\",\"object\":\"chat.completion\",\"created\":5,\"model\":\"m\",\"choices\":[{"
    "\"message\":{\"role\":\"assistant\",\"content\":\"Hello\",\"tool_calls\":[{\"id\":\"call_1\","
    "\"type\":\"function\",\"function\":{\"name\":\"get\",\"arguments\":\"{\\\"a\\\":1}\"}}]},"
    "\"index\":0,\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":7,"
    "\"completion_tokens\":4,\"total_tokens\":11}}";

/* A decoder's provider: only its cap matters here. */
static const lx_provider_cfg STREAM_PROVIDER = {.max_response_bytes = 8u << 20};

/* A decoder with default limits, and a sink assembling what it emits. */
static void *new_decoder(sink *s)
{
    memset(s, 0, sizeof *s);
    llmux__assembler_init(&s->a, 1 << 20);
    return llmux__openai_ops.stream_new(&STREAM_PROVIDER);
}

static void decode(size_t step, size_t split_at)
{
    const lx_provider_ops *ops = &llmux__openai_ops;
    sink s;
    void *st = new_decoder(&s);
    lx_err err = {0};
    size_t len = strlen(STREAM);
    /* the feed that brings the blank line after [DONE] says the stream ended */
    if (split_at) {
        assert_int_equal(ops->stream_feed(st, STREAM, split_at, on_chunk, &s, &err), LLMUX_OK);
        assert_int_equal(ops->stream_feed(st, STREAM + split_at, len - split_at, on_chunk, &s, &err),
                         LX_STREAM_END);
    } else {
        for (size_t i = 0; i < len; i += step)
            assert_int_equal(
                ops->stream_feed(st, STREAM + i, len - i < step ? len - i : step, on_chunk, &s, &err),
                i + step >= len ? LX_STREAM_END : LLMUX_OK);
    }
    assert_int_equal(ops->stream_finish(st, &err), LLMUX_OK);
    assert_int_equal(s.chunks, 8);
    assert_int_equal(s.a.u.prompt_tokens, 7);
    char *json = llmux__assembler_finish(&s.a);
    if (strcmp(json, ASSEMBLED) != 0)
        fail_msg("step %zu split %zu:\n got: %s\nwant: %s", step, split_at, json, ASSEMBLED);
    free(json);
    llmux__assembler_free(&s.a);
    ops->stream_free(st);
}

static void test_stream_whole_and_byte_at_a_time(void **state)
{
    decode(strlen(STREAM), 0);
    decode(1, 0);
    decode(7, 0);
    for (size_t at = 1; at < strlen(STREAM); at++)
        decode(0, at);
}

static int stream_status(const char *in, lx_err *err, int *chunks)
{
    const lx_provider_ops *ops = &llmux__openai_ops;
    sink s;
    void *st = new_decoder(&s);
    int rc = ops->stream_feed(st, in, strlen(in), on_chunk, &s, err);
    if (rc == LX_STREAM_END)
        rc = LLMUX_OK;
    if (s.status) {
        rc = s.status;
        *err = s.err;
    }
    if (rc == LX_STREAM_END)
        rc = LLMUX_OK;
    if (rc == LLMUX_OK)
        rc = ops->stream_finish(st, err);
    if (chunks)
        *chunks = s.chunks;
    llmux__assembler_free(&s.a);
    ops->stream_free(st);
    return rc;
}

static void test_stream_errors(void **state)
{
    lx_err err = {0};
    int chunks = 0;
    assert_int_equal(stream_status("data: {\"choices\":[]}\n\n", &err, &chunks), LLMUX_ERR_CONNECT);
    assert_string_equal(err.msg, "the stream ended before \"data: [DONE]\" (after 1 events)");
    assert_int_equal(stream_status("data: {\"choices\":[\n\n", &err, NULL), LLMUX_ERR_BAD_RESPONSE);
    assert_string_equal(err.msg, "stream event 1 is not valid JSON (error at byte 12)");
    assert_int_equal(stream_status("data: [1]\n\n", &err, NULL), LLMUX_ERR_BAD_RESPONSE);
    assert_string_equal(err.msg, "stream event 1 is not a JSON object");
    /* what cJSON would take: control bytes, leading zeros, invalid UTF-8 */
    assert_int_equal(stream_status("data: {\"choices\":[]}\n\ndata: {\"choices\":[],\"x\":\"\xff\"}\n\n",
                                   &err, &chunks),
                     LLMUX_ERR_BAD_RESPONSE);
    assert_string_equal(err.msg, "stream event 2 is not valid UTF-8 (error at byte 19)");
    assert_int_equal(chunks, 1);
    assert_int_equal(stream_status("data: {\"choices\":[],\"n\":00}\n\n", &err, NULL),
                     LLMUX_ERR_BAD_RESPONSE);
    assert_string_equal(err.msg, "stream event 1 is not valid JSON (error at byte 19)");
    assert_int_equal(stream_status("data: {\x0b\"choices\":[]}\n\n", &err, NULL),
                     LLMUX_ERR_BAD_RESPONSE);
    assert_string_equal(err.msg, "stream event 1 is not valid JSON (error at byte 1)");
    assert_int_equal(stream_status("data: {\"choices\":[]}\n\ndata: {\"error\":{\"message\":"
                                   "\"Overloaded\",\"type\":\"overloaded_error\"}}\n\n",
                                   &err, &chunks),
                     LLMUX_ERR_PROVIDER);
    assert_string_equal(err.msg, "error inside the stream (overloaded_error): Overloaded");
    assert_int_equal(chunks, 1);
    assert_int_equal(stream_status("data: {\"choices\":{}}\n\n", &err, NULL), LLMUX_ERR_BAD_RESPONSE);
    assert_int_equal(stream_status("data: {\"choices\":[{\"index\":99,\"delta\":{}}]}\n\n", &err,
                                   NULL),
                     LLMUX_ERR_BAD_RESPONSE);
    assert_string_equal(err.msg, "stream: choice index 99 out of range");
    /* events after [DONE] are ignored */
    assert_int_equal(stream_status("data: [DONE]\n\ndata: garbage\n\n", &err, &chunks), LLMUX_OK);
    assert_int_equal(chunks, 0);
}

/* A server that ignores "stream": true and answers with one JSON document. */
static void test_stream_answered_with_json(void **state)
{
    lx_err err = {0};
    const char *e = "\n {\"error\":{\"message\":\"no such model\",\"type\":\"invalid_request_error\","
                    "\"code\":\"model_not_found\"}}";
    /* byte at a time too: the decision is made at the first byte that is not space */
    for (size_t step = 1; step <= strlen(e); step += strlen(e) - 1) {
        const lx_provider_ops *ops = &llmux__openai_ops;
        void *st = ops->stream_new(&STREAM_PROVIDER);
        sink s;
        memset(&s, 0, sizeof s);
        for (size_t i = 0; i < strlen(e); i += step)
            assert_int_equal(ops->stream_feed(st, e + i, strlen(e) - i < step ? strlen(e) - i : step,
                                              on_chunk, &s, &err),
                             LLMUX_OK);
        assert_int_equal(ops->stream_finish(st, &err), LLMUX_ERR_BAD_RESPONSE);
        assert_string_equal(err.msg, "the provider answered with JSON instead of an event stream "
                                     "(model_not_found): no such model");
        ops->stream_free(st);
    }
    assert_int_equal(stream_status("{\"id\":\"x\",\"choices\":[]}", &err, NULL),
                     LLMUX_ERR_BAD_RESPONSE);
    assert_string_equal(err.msg, "the provider answered with JSON instead of an event stream "
                                 "(23 bytes, no \"error\" in it)");
}

/* [DONE] ends the stream: the decoder says so at once, whatever follows. */
static void test_stream_done_ends_it(void **state)
{
    const lx_provider_ops *ops = &llmux__openai_ops;
    sink s;
    void *st = new_decoder(&s);
    lx_err err = {0};
    const char *in = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n"
                     "data: [DONE]\n\n: keep-alive\n\n";
    assert_int_equal(ops->stream_feed(st, in, strlen(in), on_chunk, &s, &err), LX_STREAM_END);
    assert_int_equal(ops->stream_feed(st, "data: x\n\n", 9, on_chunk, &s, &err), LX_STREAM_END);
    assert_int_equal(ops->stream_finish(st, &err), LLMUX_OK);
    assert_int_equal(s.chunks, 1);
    llmux__assembler_free(&s.a);
    ops->stream_free(st);
}

/* One event is bounded by the config's max_response_bytes, both ways. */
static void test_stream_event_cap_from_config(void **state)
{
    size_t big = 4u << 20; /* 4 MiB: under the 8 MiB default */
    char *ev = malloc(big + 64);
    int n = snprintf(ev, 64, "data: {\"choices\":[],\"x\":\"");
    memset(ev + n, 'a', big);
    strcpy(ev + n + big, "\"}\n\n");
    size_t len = strlen(ev);
    const lx_provider_ops *ops = &llmux__openai_ops;
    lx_provider_cfg small = {0}, large = {0};
    small.max_response_bytes = 64 * 1024;
    large.max_response_bytes = 16u << 20;
    lx_err err = {0};
    sink s;
    memset(&s, 0, sizeof s);
    llmux__assembler_init(&s.a, 32u << 20);
    void *st = ops->stream_new(&small);
    assert_int_equal(ops->stream_feed(st, ev, len, on_chunk, &s, &err), LLMUX_ERR_BAD_RESPONSE);
    assert_string_equal(err.msg, "a stream event exceeds 65536 bytes");
    ops->stream_free(st);
    /* 9 MiB passes a 16 MiB cap (the 8 MiB default no longer applies) */
    size_t big2 = 9u << 20;
    ev = realloc(ev, big2 + 64);
    memset(ev + n, 'a', big2);
    strcpy(ev + n + big2, "\"}\n\n");
    st = ops->stream_new(&large);
    assert_int_equal(ops->stream_feed(st, ev, strlen(ev), on_chunk, &s, &err), LLMUX_OK);
    assert_int_equal(s.chunks, 1);
    ops->stream_free(st);
    llmux__assembler_free(&s.a);
    free(ev);
}

static void test_assembler_tolerates_azure_shapes(void **state)
{
    lx_assembler a;
    llmux__assembler_init(&a, 1024);
    lx_err err = {0};
    const char *chunks[] = {
        "{\"id\":\"\",\"model\":\"\",\"choices\":[],\"prompt_filter_results\":[]}",
        "{\"id\":\"a1\",\"model\":\"gpt\",\"choices\":[{\"index\":0,\"content_filter_results\":{}}]}",
        "{\"id\":\"a1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"},\"finish_reason\":"
        "\"stop\"}]}",
    };
    for (size_t i = 0; i < 3; i++) {
        cJSON *c = cJSON_Parse(chunks[i]);
        assert_int_equal(llmux__assembler_add(&a, c, &err), LLMUX_OK);
        cJSON_Delete(c);
    }
    char *json = llmux__assembler_finish(&a);
    assert_string_equal(json, "{\"id\":\"a1\",\"object\":\"chat.completion\",\"created\":0,"
                              "\"model\":\"gpt\",\"choices\":[{\"message\":{\"role\":\"assistant\","
                              "\"content\":\"ok\"},\"index\":0,\"logprobs\":null,"
                              "\"finish_reason\":\"stop\"}],\"usage\":null}");
    free(json);
    llmux__assembler_free(&a);
}

static void test_assembler_content_limit(void **state)
{
    lx_assembler a;
    llmux__assembler_init(&a, 16);
    lx_err err = {0};
    cJSON *c = cJSON_Parse("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"0123456789\"}}]}");
    assert_int_equal(llmux__assembler_add(&a, c, &err), LLMUX_OK);
    assert_int_equal(llmux__assembler_add(&a, c, &err), LLMUX_ERR_BAD_RESPONSE);
    assert_string_equal(err.msg, "stream: the assembled answer exceeds 16 bytes "
                                 "(transport.max_response_bytes)");
    cJSON_Delete(c);
    llmux__assembler_free(&a);
}

/* The limit is one budget for everything kept: spread over choices, refusals
 * and tool calls it runs out just the same. */
static void test_assembler_total_budget(void **state)
{
    static const char *const shapes[] = {
        "{\"choices\":[{\"index\":%02d,\"delta\":{\"content\":\"0123456789\"}}]}",
        "{\"choices\":[{\"index\":%02d,\"delta\":{\"refusal\":\"0123456789\"}}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":%02d,\"function\":"
        "{\"arguments\":\"0123456789\"}}]}}]}",
    };
    for (size_t sh = 0; sh < 3; sh++) {
        lx_assembler a;
        llmux__assembler_init(&a, 100);
        lx_err err = {0};
        int i = 0, rc = LLMUX_OK;
        for (; i < 16 && rc == LLMUX_OK; i++) {
            char text[256];
            /* the index written in two digits at the %02d */
            const char *at = strstr(shapes[sh], "%02d");
            size_t pre = (size_t)(at - shapes[sh]);
            memcpy(text, shapes[sh], pre);
            text[pre] = (char)('0' + i / 10);
            text[pre + 1] = (char)('0' + i % 10);
            strcpy(text + pre + 2, at + 4);
            cJSON *c = cJSON_Parse(text);
            rc = llmux__assembler_add(&a, c, &err);
            cJSON_Delete(c);
        }
        assert_int_equal(rc, LLMUX_ERR_BAD_RESPONSE);
        assert_int_equal(i, 11); /* ten pieces of ten bytes fit in 100, the eleventh does not */
        assert_int_equal(a.used, 100);
        llmux__assembler_free(&a);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_request),
        cmocka_unit_test(test_build_request_splices_caller_bytes),
        cmocka_unit_test(test_json_members_scan),
        cmocka_unit_test(test_parse_response),
        cmocka_unit_test(test_parse_response_agrees_with_cjson),
        cmocka_unit_test(test_classify_errors),
        cmocka_unit_test(test_usage_clamped),
        cmocka_unit_test(test_stream_whole_and_byte_at_a_time),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_assembler_tolerates_azure_shapes),
        cmocka_unit_test(test_assembler_content_limit),
        cmocka_unit_test(test_assembler_total_budget),
        cmocka_unit_test(test_stream_answered_with_json),
        cmocka_unit_test(test_stream_done_ends_it),
        cmocka_unit_test(test_stream_event_cap_from_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
