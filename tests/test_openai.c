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
    llmux__buf_puts(&b, body);
    char *json = NULL;
    lx_usage u = LX_USAGE_UNKNOWN;
    lx_err err = {0};
    assert_int_equal(p->ops->parse_response(p, &b, &json, &u, &err), LLMUX_OK);
    assert_string_equal(json, body); /* passed through, extensions intact */
    assert_int_equal(u.prompt_tokens, 11);
    assert_int_equal(u.completion_tokens, 3);
    assert_int_equal(u.cached_tokens, 8);
    free(json);
    llmux__buf_free(&b);

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
         "HTTP 500 (server_error): overloaded"},
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
            long want = cJSON_IsNumber(pt) && pt->valuedouble >= 0 ? (long)pt->valuedouble : -1;
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

/* A decoder's provider: only the caps matter here. */
static const lx_provider_cfg STREAM_PROVIDER = {.max_response_bytes = 1 << 20};

/* Feed one piece; the piece that completes "data: [DONE]" ends the stream
 * (LX_STREAM_END), and nothing is fed after that. LLMUX_OK otherwise. */
static int feed(void *st, const char *data, size_t len, sink *s, lx_err *err, int *ended)
{
    if (*ended)
        return LLMUX_OK;
    int rc = llmux__openai_ops.stream_feed(st, data, len, on_chunk, s, err);
    if (rc == LX_STREAM_END) {
        *ended = 1;
        return LLMUX_OK;
    }
    return rc;
}

static void decode(size_t step, size_t split_at)
{
    const lx_provider_ops *ops = &llmux__openai_ops;
    void *st = ops->stream_new(&STREAM_PROVIDER);
    int ended = 0;
    sink s;
    memset(&s, 0, sizeof s);
    llmux__assembler_init(&s.a, 1 << 20);
    lx_err err = {0};
    size_t len = strlen(STREAM);
    if (split_at) {
        assert_int_equal(feed(st, STREAM, split_at, &s, &err, &ended), LLMUX_OK);
        assert_int_equal(feed(st, STREAM + split_at, len - split_at, &s, &err, &ended), LLMUX_OK);
    } else {
        for (size_t i = 0; i < len; i += step)
            assert_int_equal(feed(st, STREAM + i, len - i < step ? len - i : step, &s, &err, &ended),
                             LLMUX_OK);
    }
    assert_true(ended); /* [DONE] ends the stream, at the byte that completes its event */
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
    void *st = ops->stream_new(&STREAM_PROVIDER);
    sink s;
    memset(&s, 0, sizeof s);
    llmux__assembler_init(&s.a, 1 << 20);
    int rc = ops->stream_feed(st, in, strlen(in), on_chunk, &s, err);
    if (rc == LX_STREAM_END)
        rc = LLMUX_OK;
    if (s.status) {
        rc = s.status;
        *err = s.err;
    }
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
    assert_string_equal(err.msg, "stream event 1 is not a JSON object");
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
    cJSON_Delete(c);
    llmux__assembler_free(&a);
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
        cmocka_unit_test(test_stream_whole_and_byte_at_a_time),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_assembler_tolerates_azure_shapes),
        cmocka_unit_test(test_assembler_content_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
