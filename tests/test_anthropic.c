/*
 * The Anthropic Messages adapter: golden translations both ways (OpenAI
 * request in, exact Messages JSON out; Messages answer and event stream in,
 * exact OpenAI JSON and chunks out), error classes, the stream decoder fed
 * byte at a time and split at every position, and round trips through the
 * simulator's Messages API.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <curl/curl.h>

#include "config/config.h"
#include "engine/result.h"
#include "llmux.h"
#include "providers/provider.h"
#include "sim_harness.h"

#define KEY "sk-ant-unit-test-key-0123456789"

static lx_config *load_with(const char *extra)
{
    setenv("LLMUX_TEST_ANTHROPIC_KEY", KEY, 1);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"providers\":{\"a\":{\"type\":\"anthropic\",\"base_url\":\"http://127.0.0.1:1/x\","
             "\"api_key_env\":\"LLMUX_TEST_ANTHROPIC_KEY\"%s}},"
             "\"models\":{\"m\":{\"targets\":[{\"provider\":\"a\",\"model\":\"claude-x\"}]}}}",
             extra);
    lx_config *cfg = NULL;
    lx_err err = {0};
    int rc = llmux__config_parse(&cfg, json, strlen(json), &err);
    if (rc != LLMUX_OK)
        fail_msg("config: %s", err.msg);
    return cfg;
}

static lx_config *load(void)
{
    return load_with("");
}

/* Builds the request; returns the body (malloc'd) or NULL with *rc set. */
static char *build(lx_provider_cfg *p, const char *raw, int stream, int *rc, lx_err *err,
                   lx_http_request *keep)
{
    lx_request req = {0};
    req.n_members = -1;
    req.raw = raw;
    req.raw_len = strlen(raw);
    lx_http_request local, *hr = keep ? keep : &local;
    llmux__http_request_init(hr);
    *rc = p->ops->build_request(p, "claude-x", &req, stream, hr, err);
    char *body = NULL;
    if (*rc == LLMUX_OK) {
        body = malloc(hr->body_len + 1);
        memcpy(body, hr->body, hr->body_len);
        body[hr->body_len] = '\0';
    }
    if (!keep || *rc != LLMUX_OK)
        llmux__http_request_free(hr);
    llmux__request_free(&req);
    return body;
}

static int has_header(const lx_http_request *r, const char *line)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i].line, line) == 0)
            return 1;
    return 0;
}

#define U(s) "{\"role\":\"user\",\"content\":\"" s "\"}"

/* ----------------------------------------------------------- request goldens */

static const struct {
    const char *name, *in, *out;
} REQ[] = {
    {"plain chat, default max_tokens",
     "{\"model\":\"m\",\"messages\":[" U("hi") "]}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"},
    {"system and developer to system blocks; max_completion_tokens wins",
     "{\"model\":\"m\",\"max_tokens\":9,\"max_completion_tokens\":77,\"messages\":["
     "{\"role\":\"system\",\"content\":\"be brief\"},{\"role\":\"developer\",\"content\":"
     "[{\"type\":\"text\",\"text\":\"be kind\"}]}," U("hi") "]}",
     "{\"model\":\"claude-x\",\"max_tokens\":77,\"system\":[{\"type\":\"text\",\"text\":\"be brief\"},"
     "{\"type\":\"text\",\"text\":\"be kind\"}],\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"},
    {"one system text is a string; max_tokens",
     "{\"model\":\"m\",\"max_tokens\":12,\"messages\":[{\"role\":\"system\",\"content\":\"s\"}," U("hi") "]}",
     "{\"model\":\"claude-x\",\"max_tokens\":12,\"system\":\"s\",\"messages\":[{\"role\":\"user\","
     "\"content\":\"hi\"}]}"},
    {"cache_control carried on system and user parts",
     "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":"
     "\"long\",\"cache_control\":{\"type\":\"ephemeral\",\"ttl\":\"1h\"}}]},{\"role\":\"user\","
     "\"content\":[{\"type\":\"text\",\"text\":\"doc\",\"cache_control\":{\"type\":\"ephemeral\"}},"
     "{\"type\":\"text\",\"text\":\"q\"}]}]}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"system\":[{\"type\":\"text\",\"text\":\"long\","
     "\"cache_control\":{\"type\":\"ephemeral\",\"ttl\":\"1h\"}}],\"messages\":[{\"role\":\"user\","
     "\"content\":[{\"type\":\"text\",\"text\":\"doc\",\"cache_control\":{\"type\":\"ephemeral\"}},"
     "{\"type\":\"text\",\"text\":\"q\"}]}]}"},
    {"consecutive same-role turns merged",
     "{\"model\":\"m\",\"messages\":[" U("a") "," U("b") ",{\"role\":\"assistant\",\"content\":\"c\"},"
     "{\"role\":\"assistant\",\"content\":\"d\"}," U("e") "]}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":["
     "{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]},{\"role\":\"assistant\","
     "\"content\":[{\"type\":\"text\",\"text\":\"c\"},{\"type\":\"text\",\"text\":\"d\"}]},"
     "{\"role\":\"user\",\"content\":\"e\"}]}"},
    {"images: data URL to base64, https to url",
     "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"what\"},"
     "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}},"
     "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://example.com/a.jpg\",\"detail\":\"low\"}}]}]}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":["
     "{\"type\":\"text\",\"text\":\"what\"},{\"type\":\"image\",\"source\":{\"type\":\"base64\","
     "\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}},{\"type\":\"image\",\"source\":{"
     "\"type\":\"url\",\"url\":\"https://example.com/a.jpg\"}}]}]}"},
    {"tools, tool_choice required -> any, parallel_tool_calls false",
     "{\"model\":\"m\",\"messages\":[" U("w") "],\"tools\":[{\"type\":\"function\",\"function\":{"
     "\"name\":\"get_weather\",\"description\":\"Weather\",\"parameters\":{\"type\":\"object\","
     "\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]},\"strict\":true}},"
     "{\"type\":\"function\",\"function\":{\"name\":\"noargs\"}}],\"tool_choice\":\"required\","
     "\"parallel_tool_calls\":false}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":\"w\"}],"
     "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather\",\"input_schema\":{\"type\":"
     "\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]},\"strict\":true},"
     "{\"name\":\"noargs\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}],"
     "\"tool_choice\":{\"type\":\"any\",\"disable_parallel_tool_use\":true}}"},
    {"tool_choice auto, none, named",
     "{\"model\":\"m\",\"messages\":[" U("w") "],\"tools\":[{\"type\":\"function\",\"function\":{"
     "\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}],\"tool_choice\":{\"type\":\"function\","
     "\"function\":{\"name\":\"f\"}}}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":\"w\"}],"
     "\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\"}}],\"tool_choice\":{\"type\":"
     "\"tool\",\"name\":\"f\"}}"},
    {"tool_choice none",
     "{\"model\":\"m\",\"messages\":[" U("w") "],\"tools\":[{\"type\":\"function\",\"function\":{"
     "\"name\":\"f\"}}],\"tool_choice\":\"none\",\"parallel_tool_calls\":false}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":\"w\"}],"
     "\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}],"
     "\"tool_choice\":{\"type\":\"none\"}}"},
    {"tool_choice auto; tool_choice without tools dropped",
     "{\"model\":\"m\",\"messages\":[" U("w") "],\"tool_choice\":\"auto\"}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":\"w\"}]}"},
    {"assistant tool_calls -> tool_use; tool messages -> one user turn, results first",
     "{\"model\":\"m\",\"messages\":[" U("w") ",{\"role\":\"assistant\",\"content\":\"let me see\","
     "\"tool_calls\":[{\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
     "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},{\"id\":\"toolu_2\",\"type\":\"function\","
     "\"function\":{\"name\":\"g\",\"arguments\":\"\"}}]},{\"role\":\"tool\",\"tool_call_id\":"
     "\"toolu_1\",\"content\":\"18C\"},{\"role\":\"tool\",\"tool_call_id\":\"toolu_2\",\"content\":"
     "[{\"type\":\"text\",\"text\":\"ok\"}]}," U("and?") "]}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":\"w\"},"
     "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"let me see\"},{\"type\":"
     "\"tool_use\",\"id\":\"toolu_1\",\"name\":\"f\",\"input\":{\"city\":\"Paris\"}},{\"type\":"
     "\"tool_use\",\"id\":\"toolu_2\",\"name\":\"g\",\"input\":{}}]},{\"role\":\"user\",\"content\":["
     "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":\"18C\"},{\"type\":"
     "\"tool_result\",\"tool_use_id\":\"toolu_2\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"}]},"
     "{\"type\":\"text\",\"text\":\"and?\"}]}]}"},
    {"a tool message after user text still comes first in the turn",
     "{\"model\":\"m\",\"messages\":[" U("w") ",{\"role\":\"assistant\",\"tool_calls\":[{\"id\":"
     "\"t1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
     U("meanwhile") ",{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":\"r\"}]}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":\"w\"},"
     "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"f\","
     "\"input\":{}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
     "\"t1\",\"content\":\"r\"},{\"type\":\"text\",\"text\":\"meanwhile\"}]}]}"},
    {"an empty assistant turn is dropped, the user turns around it merged",
     "{\"model\":\"m\",\"messages\":[" U("a") ",{\"role\":\"assistant\",\"content\":\"\"},"
     U("b") "]}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":["
     "{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}]}"},
    {"thinking blocks carried back before the text",
     "{\"model\":\"m\",\"messages\":[" U("q") ",{\"role\":\"assistant\",\"content\":null,"
     "\"reasoning_content\":\"hmm\",\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"hmm\","
     "\"signature\":\"sig1\"},{\"type\":\"redacted_thinking\",\"data\":\"xyz\"}],\"tool_calls\":[{\"id\":"
     "\"t1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},{\"role\":"
     "\"tool\",\"tool_call_id\":\"t1\",\"content\":\"r\"}]}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
     "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hmm\",\"signature\":"
     "\"sig1\"},{\"type\":\"redacted_thinking\",\"data\":\"xyz\"},{\"type\":\"tool_use\",\"id\":\"t1\","
     "\"name\":\"f\",\"input\":{}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
     "\"tool_use_id\":\"t1\",\"content\":\"r\"}]}]}"},
    {"sampling: temperature clamped, top_p, stop string, user",
     "{\"model\":\"m\",\"messages\":[" U("x") "],\"temperature\":1.5,\"top_p\":0.9,\"stop\":\"END\","
     "\"user\":\"u-42\",\"n\":1}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"temperature\":1,\"top_p\":0.9,\"stop_sequences\":[\"END\"],\"metadata\":{\"user_id\":\"u-42\"}}"},
    {"stop array, temperature kept",
     "{\"model\":\"m\",\"messages\":[" U("x") "],\"temperature\":0.2,\"stop\":[\"a\",\"b\"]}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"temperature\":0.2,\"stop_sequences\":[\"a\",\"b\"]}"},
    {"json_schema -> output_config.format",
     "{\"model\":\"m\",\"messages\":[" U("x") "],\"response_format\":{\"type\":\"json_schema\","
     "\"json_schema\":{\"name\":\"r\",\"schema\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":"
     "\"integer\"}},\"additionalProperties\":false}}}}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"output_config\":{\"format\":{\"type\":\"json_schema\",\"schema\":{\"type\":\"object\","
     "\"properties\":{\"a\":{\"type\":\"integer\"}},\"additionalProperties\":false}}}}"},
    {"json_object -> a forced tool",
     "{\"model\":\"m\",\"messages\":[" U("x") "],\"response_format\":{\"type\":\"json_object\"}}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"tools\":[{\"name\":\"llmux_json_output\",\"description\":\"Answer with the requested JSON as "
     "input.\",\"input_schema\":{\"type\":\"object\"}}],\"tool_choice\":{\"type\":\"tool\",\"name\":"
     "\"llmux_json_output\"}}"},
    {"reasoning_effort -> thinking budget",
     "{\"model\":\"m\",\"messages\":[" U("x") "],\"reasoning_effort\":\"medium\",\"max_tokens\":8000}",
     "{\"model\":\"claude-x\",\"max_tokens\":8000,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":4096}}"},
    {"reasoning_effort high, budget held below max_tokens",
     "{\"model\":\"m\",\"messages\":[" U("x") "],\"reasoning_effort\":\"high\",\"max_tokens\":5000}",
     "{\"model\":\"claude-x\",\"max_tokens\":5000,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":4999}}"},
    {"Anthropic's own thinking object passes",
     "{\"model\":\"m\",\"messages\":[" U("x") "],\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048}}",
     "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
     "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048}}"},
};

static void test_request_goldens(void **state)
{
    (void)state;
    lx_config *cfg = load();
    lx_provider_cfg *p = &cfg->providers[0];
    for (size_t i = 0; i < sizeof REQ / sizeof REQ[0]; i++) {
        int rc;
        lx_err err = {0};
        char *body = build(p, REQ[i].in, 0, &rc, &err, NULL);
        if (rc != LLMUX_OK)
            fail_msg("%s: rc %d: %s", REQ[i].name, rc, err.msg);
        if (strcmp(body, REQ[i].out) != 0)
            fail_msg("%s:\n got  %s\n want %s", REQ[i].name, body, REQ[i].out);
        free(body);
    }
    llmux__config_unref(cfg);
}

static void test_request_headers_and_stream(void **state)
{
    (void)state;
    lx_config *cfg = load_with(",\"anthropic_beta\":\"b1,b2\",\"max_tokens\":100");
    lx_provider_cfg *p = &cfg->providers[0];
    int rc;
    lx_err err = {0};
    lx_http_request hr;
    char *body = build(p, "{\"model\":\"m\",\"messages\":[" U("hi") "],\"stream\":true,"
                          "\"stream_options\":{\"include_usage\":true}}", 1, &rc, &err, &hr);
    assert_int_equal(rc, LLMUX_OK);
    assert_string_equal(body, "{\"model\":\"claude-x\",\"max_tokens\":100,\"messages\":[{\"role\":"
                              "\"user\",\"content\":\"hi\"}],\"stream\":true}");
    assert_string_equal(hr.url, "http://127.0.0.1:1/x/v1/messages");
    assert_true(has_header(&hr, "x-api-key: " KEY));
    assert_true(has_header(&hr, "anthropic-version: 2023-06-01"));
    assert_true(has_header(&hr, "anthropic-beta: b1,b2"));
    assert_true(has_header(&hr, "Content-Type: application/json"));
    assert_true(has_header(&hr, "Accept: text/event-stream"));
    assert_null(llmux__http_request_header(&hr, "Authorization"));
    llmux__http_request_free(&hr);
    free(body);
    llmux__config_unref(cfg);

    /* json_schema through the forced tool when configured so */
    cfg = load_with(",\"structured_output\":\"tool\"");
    p = &cfg->providers[0];
    body = build(p, "{\"model\":\"m\",\"messages\":[" U("x") "],\"response_format\":{\"type\":"
                    "\"json_schema\",\"json_schema\":{\"name\":\"r\",\"schema\":{\"type\":\"object\"}}}}",
                 0, &rc, &err, NULL);
    assert_int_equal(rc, LLMUX_OK);
    assert_string_equal(body, "{\"model\":\"claude-x\",\"max_tokens\":4096,\"messages\":[{\"role\":"
                              "\"user\",\"content\":\"x\"}],\"tools\":[{\"name\":\"llmux_json_output\","
                              "\"description\":\"Answer with the requested JSON as input.\","
                              "\"input_schema\":{\"type\":\"object\"}}],\"tool_choice\":{\"type\":"
                              "\"tool\",\"name\":\"llmux_json_output\"}}");
    free(body);
    llmux__config_unref(cfg);
}

static void test_request_refused(void **state)
{
    (void)state;
    lx_config *cfg = load();
    lx_provider_cfg *p = &cfg->providers[0];
    static const struct {
        const char *in;
        int rc;
        const char *msg;
    } cases[] = {
        {"{\"model\":\"m\",\"messages\":[" U("x") "],\"n\":2}", LX_CANNOT_SERVE,
         "n > 1 (Anthropic answers with one choice)"},
        {"{\"model\":\"m\",\"messages\":[" U("x") "],\"logprobs\":true}", LX_CANNOT_SERVE,
         "logprobs (Anthropic does not return them)"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\","
         "\"input_audio\":{}}]}]}", LX_CANNOT_SERVE,
         "content part type \"input_audio\" has no Anthropic equivalent here"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
         "\"image_url\":{\"url\":\"data:image/bmp;base64,AA==\"}}]}]}", LX_CANNOT_SERVE,
         "an image type Anthropic does not take (jpeg, png, gif, webp only)"},
        {"{\"model\":\"m\",\"messages\":[" U("x") "],\"tools\":[{\"type\":\"custom\",\"custom\":{}}]}",
         LX_CANNOT_SERVE, "a tool whose type is not \"function\""},
        {"{\"model\":\"m\",\"messages\":[" U("x") "],\"reasoning_effort\":\"low\",\"max_tokens\":500}",
         LX_CANNOT_SERVE, "reasoning_effort with max_tokens too small for a thinking budget "
                          "(Anthropic's minimum is 1024 tokens, below max_tokens)"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"function\",\"name\":\"f\",\"content\":\"x\"}]}",
         LX_CANNOT_SERVE, "a message of role \"function\" (Anthropic has user and assistant turns)"},
        {"{\"model\":\"m\",\"messages\":[" U("x") ",{\"role\":\"assistant\",\"tool_calls\":[{\"id\":"
         "\"t\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{oops\"}}]}]}",
         LLMUX_ERR_BAD_REQUEST, "the arguments of tool call \"t\" are not valid JSON"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"}]}",
         LLMUX_ERR_BAD_REQUEST, "no user or assistant message with content (Anthropic needs one)"},
        {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}",
         LLMUX_ERR_BAD_REQUEST, "no user or assistant message with content (Anthropic needs one)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc;
        lx_err err = {0};
        char *body = build(p, cases[i].in, 0, &rc, &err, NULL);
        assert_null(body);
        if (rc != cases[i].rc || strcmp(err.msg, cases[i].msg) != 0)
            fail_msg("case %zu: rc %d msg %s", i, rc, err.msg);
    }
    llmux__config_unref(cfg);
}

static void test_config_keys(void **state)
{
    (void)state;
    static const struct {
        const char *extra, *msg;
    } cases[] = {
        {",\"structured_output\":\"magic\"",
         "providers.a.structured_output: must be \"native\" or \"tool\""},
        {",\"max_tokens\":0", "providers.a.max_tokens: "},
        {",\"anthropic_version\":\"a\\nb\"",
         "providers.a.anthropic_version: must be printable ASCII, not empty"},
        {",\"thinking_budget_low\":10", "providers.a.thinking_budget_low: "},
        {",\"nope\":1", "providers.a.nope: "},
    };
    setenv("LLMUX_TEST_ANTHROPIC_KEY", KEY, 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[1024];
        snprintf(json, sizeof json,
                 "{\"providers\":{\"a\":{\"type\":\"anthropic\"%s}},\"models\":{\"m\":{\"targets\":"
                 "[{\"provider\":\"a\",\"model\":\"c\"}]}}}",
                 cases[i].extra);
        lx_config *cfg = NULL;
        lx_err err = {0};
        assert_int_equal(llmux__config_parse(&cfg, json, strlen(json), &err), LLMUX_ERR_CONFIG);
        if (strncmp(err.msg, cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("case %zu: %s", i, err.msg);
    }
    /* the default base URL */
    const char *json = "{\"providers\":{\"a\":{\"type\":\"anthropic\"}},\"models\":{\"m\":{"
                       "\"targets\":[{\"provider\":\"a\",\"model\":\"c\"}]}}}";
    lx_config *cfg = NULL;
    lx_err err = {0};
    assert_int_equal(llmux__config_parse(&cfg, json, strlen(json), &err), LLMUX_OK);
    assert_string_equal(cfg->providers[0].base_url, "https://api.anthropic.com");
    llmux__config_unref(cfg);
}

/* ---------------------------------------------------------- response goldens */

/* The JSON with "created" set to 0, printed compactly. */
static char *normalise(const char *json)
{
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    if (cJSON_GetObjectItem(o, "created"))
        cJSON_ReplaceItemInObject(o, "created", cJSON_CreateNumber(0));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static const char *const MSG_HEAD = "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
                                    "\"model\":\"claude-x-1\",";
#define OA_HEAD "{\"id\":\"msg_1\",\"object\":\"chat.completion\",\"created\":0,\"model\":\"claude-x-1\","

static const struct {
    const char *name, *in, *out;
    lx_usage u;
} RESP[] = {
    {"text, end_turn, plain usage",
     "\"content\":[{\"type\":\"text\",\"text\":\"Hello\"},{\"type\":\"text\",\"text\":\" there\"}],"
     "\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,"
     "\"output_tokens\":3}}",
     OA_HEAD "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello there\"},"
     "\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":10,"
     "\"completion_tokens\":3,\"total_tokens\":13,\"prompt_tokens_details\":{\"cached_tokens\":0,"
     "\"cache_write_tokens\":0}}}",
     {10, 3, 0, 0, -1, -1, -1, 0}},
    {"tool_use -> tool_calls, cached usage with the 1h split",
     "\"content\":[{\"type\":\"text\",\"text\":\"Checking\"},{\"type\":\"tool_use\",\"id\":\"toolu_9\","
     "\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\",\"n\":[1,2]}}],\"stop_reason\":\"tool_use\","
     "\"usage\":{\"input_tokens\":5,\"cache_creation_input_tokens\":300,\"cache_read_input_tokens\":"
     "1000,\"cache_creation\":{\"ephemeral_5m_input_tokens\":100,\"ephemeral_1h_input_tokens\":200},"
     "\"output_tokens\":20}}",
     OA_HEAD "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Checking\","
     "\"tool_calls\":[{\"id\":\"toolu_9\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
     "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\",\\\"n\\\":[1,2]}\"}}]},\"logprobs\":null,"
     "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":1305,\"completion_tokens\":20,"
     "\"total_tokens\":1325,\"prompt_tokens_details\":{\"cached_tokens\":1000,\"cache_write_tokens\":300,"
     "\"cache_write_1h_tokens\":200}}}",
     {1305, 20, 1000, 300, 200, -1, -1, 0}},
    {"thinking kept with its signature; only tool calls -> content null",
     "\"content\":[{\"type\":\"thinking\",\"thinking\":\"Let me think\",\"signature\":\"EqQBsig\"},"
     "{\"type\":\"redacted_thinking\",\"data\":\"EmwKAh\"},{\"type\":\"tool_use\",\"id\":\"t\",\"name\":"
     "\"f\",\"input\":{}}],\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}",
     OA_HEAD "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null,"
     "\"reasoning_content\":\"Let me think\",\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":"
     "\"Let me think\",\"signature\":\"EqQBsig\"},{\"type\":\"redacted_thinking\",\"data\":\"EmwKAh\"}],"
     "\"tool_calls\":[{\"id\":\"t\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
     "\"{}\"}}]},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":1,"
     "\"completion_tokens\":2,\"total_tokens\":3,\"prompt_tokens_details\":{\"cached_tokens\":0,"
     "\"cache_write_tokens\":0}}}",
     {1, 2, 0, 0, -1, -1, -1, 0}},
    {"max_tokens -> length",
     "\"content\":[{\"type\":\"text\",\"text\":\"cut\"}],\"stop_reason\":\"max_tokens\",\"usage\":{"
     "\"input_tokens\":1,\"output_tokens\":2,\"cache_read_input_tokens\":0,"
     "\"cache_creation_input_tokens\":0}}",
     OA_HEAD "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"cut\"},"
     "\"logprobs\":null,\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":1,"
     "\"completion_tokens\":2,\"total_tokens\":3,\"prompt_tokens_details\":{\"cached_tokens\":0,"
     "\"cache_write_tokens\":0}}}",
     {1, 2, 0, 0, -1, -1, -1, 0}},
    {"refusal -> content_filter, empty content",
     "\"content\":[],\"stop_reason\":\"refusal\",\"usage\":{\"input_tokens\":4,\"output_tokens\":0}}",
     OA_HEAD "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":null},"
     "\"logprobs\":null,\"finish_reason\":\"content_filter\"}],\"usage\":{\"prompt_tokens\":4,"
     "\"completion_tokens\":0,\"total_tokens\":4,\"prompt_tokens_details\":{\"cached_tokens\":0,"
     "\"cache_write_tokens\":0}}}",
     {4, 0, 0, 0, -1, -1, -1, 0}},
    {"json fallback tool -> content, stop",
     "\"content\":[{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"llmux_json_output\",\"input\":{\"a\":1}}],"
     "\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}",
     OA_HEAD "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"{\\\"a\\\":1}\"},"
     "\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":1,"
     "\"completion_tokens\":1,\"total_tokens\":2,\"prompt_tokens_details\":{\"cached_tokens\":0,"
     "\"cache_write_tokens\":0}}}",
     {1, 1, 0, 0, -1, -1, -1, 0}},
};

static const char *const FINISH[][2] = {
    {"end_turn", "stop"},          {"stop_sequence", "stop"},  {"pause_turn", "stop"},
    {"max_tokens", "length"},      {"tool_use", "tool_calls"}, {"refusal", "content_filter"},
    {"model_context_window_exceeded", "length"},
};

static void test_response_goldens(void **state)
{
    (void)state;
    lx_config *cfg = load();
    lx_provider_cfg *p = &cfg->providers[0];
    for (size_t i = 0; i < sizeof RESP / sizeof RESP[0]; i++) {
        lx_buf body = LX_BUF_INIT;
        llmux__buf_puts(&body, MSG_HEAD);
        llmux__buf_puts(&body, RESP[i].in);
        char *out = NULL;
        lx_usage u = LX_USAGE_UNKNOWN;
        lx_err err = {0};
        int rc = p->ops->parse_response(p, &body, &out, &u, &err);
        if (rc != LLMUX_OK)
            fail_msg("%s: %s", RESP[i].name, err.msg);
        char *n = normalise(out);
        if (strcmp(n, RESP[i].out) != 0)
            fail_msg("%s:\n got  %s\n want %s", RESP[i].name, n, RESP[i].out);
        assert_memory_equal(&u, &RESP[i].u, sizeof u);
        free(n);
        free(out);
        llmux__buf_free(&body);
    }
    for (size_t i = 0; i < sizeof FINISH / sizeof FINISH[0]; i++) {
        lx_buf body = LX_BUF_INIT;
        llmux__buf_printf(&body, "%s\"content\":[{\"type\":\"text\",\"text\":\"x\"}],\"stop_reason\":"
                                 "\"%s\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}",
                          MSG_HEAD, FINISH[i][0]);
        char *out = NULL;
        lx_usage u;
        lx_err err = {0};
        assert_int_equal(p->ops->parse_response(p, &body, &out, &u, &err), LLMUX_OK);
        char want[64];
        snprintf(want, sizeof want, "\"finish_reason\":\"%s\"", FINISH[i][1]);
        if (!strstr(out, want))
            fail_msg("%s: %s", FINISH[i][0], out);
        free(out);
        llmux__buf_free(&body);
    }
    llmux__config_unref(cfg);
}

static void test_response_bad(void **state)
{
    (void)state;
    lx_config *cfg = load();
    lx_provider_cfg *p = &cfg->providers[0];
    static const struct {
        const char *body;
        int rc;
        const char *msg;
    } cases[] = {
        {"{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"\xff\"}]}",
         LLMUX_ERR_BAD_RESPONSE, "the response body is not valid UTF-8 (57 bytes, error at byte 52)"},
        {"{\"type\":\"message\",\"content\":[", LLMUX_ERR_BAD_RESPONSE,
         "the response body is not valid JSON (29 bytes, error at byte 29)"},
        {"{\"id\":\"chatcmpl-1\",\"choices\":[]}", LLMUX_ERR_BAD_RESPONSE,
         "the response is not a Messages API message (no type \"message\" with a content array)"},
        {"{\"type\":\"message\",\"content\":[{\"type\":\"tool_use\",\"input\":{}}]}",
         LLMUX_ERR_BAD_RESPONSE, "a tool_use block without a string id and name"},
        {"{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}",
         LLMUX_ERR_PROVIDER, "HTTP 200 with an error body (overloaded_error): Overloaded"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lx_buf body = LX_BUF_INIT;
        llmux__buf_puts(&body, cases[i].body);
        char *out = NULL;
        lx_usage u;
        lx_err err = {0};
        int rc = p->ops->parse_response(p, &body, &out, &u, &err);
        if (rc != cases[i].rc || strcmp(err.msg, cases[i].msg) != 0)
            fail_msg("case %zu: rc %d: %s", i, rc, err.msg);
        assert_null(out);
        llmux__buf_free(&body);
    }
    llmux__config_unref(cfg);
}

/* ------------------------------------------------------------------- errors */

static void test_classify_errors(void **state)
{
    (void)state;
    lx_config *cfg = load();
    lx_provider_cfg *p = &cfg->providers[0];
#define EB(t, m) "{\"type\":\"error\",\"error\":{\"type\":\"" t "\",\"message\":\"" m "\"},\"request_id\":\"req_1\"}"
    static const struct {
        long http;
        const char *body;
        int status;
        const char *code, *msg;
    } cases[] = {
        {400, EB("invalid_request_error", "max_tokens: Field required"), LLMUX_ERR_BAD_REQUEST,
         "invalid_request_error", "HTTP 400 (invalid_request_error): max_tokens: Field required"},
        {400, EB("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
         LLMUX_ERR_CONTEXT_WINDOW, "invalid_request_error",
         "HTTP 400 (invalid_request_error): prompt is too long: 210000 tokens > 200000 maximum"},
        {400, EB("invalid_request_error", "input length and `max_tokens` exceed context limit: 1 + 2 > 3"),
         LLMUX_ERR_CONTEXT_WINDOW, "invalid_request_error", NULL},
        {401, EB("authentication_error", "invalid x-api-key"), LLMUX_ERR_AUTH,
         "authentication_error", "HTTP 401 (authentication_error): invalid x-api-key"},
        {403, EB("permission_error", "no access"), LLMUX_ERR_PERMISSION, "permission_error", NULL},
        {404, EB("not_found_error", "model: claude-nope"), LLMUX_ERR_NOT_FOUND, "not_found_error",
         NULL},
        {413, EB("request_too_large", "Request exceeds the maximum allowed number of bytes."),
         LLMUX_ERR_BAD_REQUEST, "request_too_large", NULL},
        {429, EB("rate_limit_error", "slow down"), LLMUX_ERR_RATE_LIMIT, "rate_limit_error", NULL},
        {500, EB("api_error", "Internal server error"), LLMUX_ERR_PROVIDER, "api_error", NULL},
        {529, EB("overloaded_error", "Overloaded"), LLMUX_ERR_PROVIDER, "overloaded_error",
         "HTTP 529 (overloaded_error): Overloaded"},
        {402, EB("billing_error", "Your credit balance is too low"), LLMUX_ERR_QUOTA,
         "billing_error", NULL},
        {400, EB("invalid_request_error", "Your credit balance is too low to access the Anthropic "
                 "API. Please go to Plans & Billing to upgrade or purchase credits."),
         LLMUX_ERR_QUOTA, "invalid_request_error", NULL},
        {504, EB("timeout_error", "Request timed out"), LLMUX_ERR_TIMEOUT, "timeout_error", NULL},
        {502, "<html>bad gateway</html>", LLMUX_ERR_PROVIDER, "", "HTTP 502: <html>bad gateway</html>"},
        {401, EB("authentication_error", "bad key " KEY " given"), LLMUX_ERR_AUTH,
         "authentication_error",
         "HTTP 401 (authentication_error): bad key ******************************* given"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lx_http_response resp = {0};
        resp.status = cases[i].http;
        resp.retry_after_ms = -1;
        llmux__buf_puts(&resp.body, cases[i].body);
        lx_err err = {0};
        int rc = p->ops->classify_error(p, &resp, &err);
        if (rc != cases[i].status || strcmp(err.provider_code, cases[i].code) != 0 ||
            err.http_status != cases[i].http || (cases[i].msg && strcmp(err.msg, cases[i].msg)))
            fail_msg("case %zu: rc %d code %s msg %s", i, rc, err.provider_code, err.msg);
        assert_null(strstr(err.msg, KEY));
        llmux__http_response_free(&resp);
    }
    llmux__config_unref(cfg);
}

/* ------------------------------------------------------------------ streams */

typedef struct collect {
    lx_buf out; /* every chunk, created set to 0, one per line */
    int n;
} collect;

static int sink(void *ctx, const char *json, size_t len, cJSON *parsed)
{
    collect *c = ctx;
    (void)len;
    assert_non_null(parsed);
    char *n = normalise(json);
    llmux__buf_puts(&c->out, n);
    llmux__buf_puts(&c->out, "\n");
    free(n);
    c->n++;
    return 0;
}

#define EV(name, data) "event: " name "\ndata: " data "\n\n"

static const char STREAM_TOOL[] =
    EV("message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_s\",\"type\":\"message\","
                        "\"role\":\"assistant\",\"model\":\"claude-x-1\",\"content\":[],\"stop_reason\":null,"
                        "\"usage\":{\"input_tokens\":25,\"cache_creation_input_tokens\":10,"
                        "\"cache_read_input_tokens\":100,\"output_tokens\":1}}}")
    EV("ping", "{\"type\":\"ping\"}")
    EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{"
                              "\"type\":\"thinking\",\"thinking\":\"\"}}")
    EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                              "\"thinking_delta\",\"thinking\":\"Hmm, \"}}")
    EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                              "\"thinking_delta\",\"thinking\":\"weather.\"}}")
    EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":"
                              "\"signature_delta\",\"signature\":\"SIG==\"}}")
    EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}")
    EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{"
                              "\"type\":\"text\",\"text\":\"\"}}")
    EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
                              "\"text_delta\",\"text\":\"Let me \u00e9 check\"}}")
    EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":1}")
    EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":2,\"content_block\":{"
                              "\"type\":\"tool_use\",\"id\":\"toolu_s\",\"name\":\"get_weather\","
                              "\"input\":{}}}")
    EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":"
                              "\"input_json_delta\",\"partial_json\":\"\"}}")
    EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":"
                              "\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \"}}")
    EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":"
                              "\"input_json_delta\",\"partial_json\":\"\\\"Paris\\\"}\"}}")
    EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":2}")
    EV("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\","
                        "\"stop_sequence\":null},\"usage\":{\"output_tokens\":42}}")
    EV("message_stop", "{\"type\":\"message_stop\"}");

#define CH "{\"id\":\"msg_s\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"claude-x-1\","
#define CD(d) CH "\"choices\":[{\"index\":0,\"delta\":" d ",\"logprobs\":null,\"finish_reason\":null}]}\n"

static const char STREAM_TOOL_OUT[] =
    CD("{\"role\":\"assistant\",\"content\":\"\"}")
    CD("{\"reasoning_content\":\"Hmm, \"}")
    CD("{\"reasoning_content\":\"weather.\"}")
    CD("{\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"Hmm, weather.\",\"signature\":\"SIG==\"}]}")
    CD("{\"content\":\"Let me \u00e9 check\"}")
    CD("{\"tool_calls\":[{\"index\":0,\"id\":\"toolu_s\",\"type\":\"function\",\"function\":{\"name\":"
       "\"get_weather\",\"arguments\":\"\"}}]}")
    CD("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\": \"}}]}")
    CD("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]}")
    CH "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}]}\n"
    CH "\"choices\":[],\"usage\":{\"prompt_tokens\":135,\"completion_tokens\":42,\"total_tokens\":177,"
       "\"prompt_tokens_details\":{\"cached_tokens\":100,\"cache_write_tokens\":10}}}\n";

/* The json fallback tool streams as content; a redacted thinking block comes
 * back whole; refusal is content_filter; a 1-hour cache write is split out. */
static const char STREAM_JSON[] =
    EV("message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_s\",\"model\":"
                        "\"claude-x-1\",\"usage\":{\"input_tokens\":3,\"cache_creation_input_tokens\":"
                        "7,\"cache_read_input_tokens\":0,\"cache_creation\":{"
                        "\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":7},"
                        "\"output_tokens\":1}}}")
    EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{"
                              "\"type\":\"redacted_thinking\",\"data\":\"EmwKAh\"}}")
    EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}")
    EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":1,\"content_block\":{"
                              "\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"llmux_json_output\","
                              "\"input\":{}}}")
    EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
                              "\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":\"}}")
    EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":"
                              "\"input_json_delta\",\"partial_json\":\"1}\"}}")
    EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":1}")
    EV("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},"
                        "\"usage\":{\"output_tokens\":5}}")
    EV("message_stop", "{\"type\":\"message_stop\"}")
    "event: ping\ndata: {\"type\":\"ping\"}\n\n"; /* after the end: not read */

static const char STREAM_JSON_OUT[] =
    CD("{\"role\":\"assistant\",\"content\":\"\"}")
    CD("{\"thinking_blocks\":[{\"type\":\"redacted_thinking\",\"data\":\"EmwKAh\"}]}")
    CD("{\"content\":\"{\\\"a\\\":\"}")
    CD("{\"content\":\"1}\"}")
    CH "\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n"
    CH "\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"total_tokens\":15,"
       "\"prompt_tokens_details\":{\"cached_tokens\":0,\"cache_write_tokens\":7,"
       "\"cache_write_1h_tokens\":7}}}\n";

/* Feeds text in pieces of `step` bytes (0: split once at `split`). */
static int feed(lx_provider_cfg *p, const char *text, size_t len, size_t step, size_t split,
                collect *c, lx_err *err, int *ended)
{
    void *st = p->ops->stream_new(p);
    int rc = LLMUX_OK;
    *ended = 0;
    size_t pos = 0;
    while (pos < len && rc == LLMUX_OK) {
        size_t n = step ? step : (pos == 0 ? split : len - pos);
        if (n > len - pos)
            n = len - pos;
        rc = p->ops->stream_feed(st, text + pos, n, sink, c, err);
        pos += n;
    }
    if (rc == LX_STREAM_END) {
        *ended = 1;
        rc = p->ops->stream_finish(st, err);
    } else if (rc == LLMUX_OK) {
        rc = p->ops->stream_finish(st, err);
    }
    p->ops->stream_free(st);
    return rc;
}

static void test_stream_golden_every_split(void **state)
{
    (void)state;
    lx_config *cfg = load();
    lx_provider_cfg *p = &cfg->providers[0];
    size_t len = strlen(STREAM_TOOL);
    collect c = {LX_BUF_INIT, 0};
    lx_err err = {0};
    int ended;
    assert_int_equal(feed(p, STREAM_TOOL, len, len, 0, &c, &err, &ended), LLMUX_OK);
    assert_true(ended);
    if (strcmp(c.out.data, STREAM_TOOL_OUT) != 0)
        fail_msg("got\n%s\nwant\n%s", c.out.data, STREAM_TOOL_OUT);
    llmux__buf_free(&c.out);
    /* byte at a time */
    c = (collect){LX_BUF_INIT, 0};
    assert_int_equal(feed(p, STREAM_TOOL, len, 1, 0, &c, &err, &ended), LLMUX_OK);
    assert_string_equal(c.out.data, STREAM_TOOL_OUT);
    llmux__buf_free(&c.out);
    /* the json fallback and a redacted block, whole and byte at a time */
    for (size_t step = 0; step < 2; step++) {
        c = (collect){LX_BUF_INIT, 0};
        size_t jl = strlen(STREAM_JSON);
        assert_int_equal(feed(p, STREAM_JSON, jl, step ? 1 : jl, 0, &c, &err, &ended), LLMUX_OK);
        assert_true(ended);
        if (strcmp(c.out.data, STREAM_JSON_OUT) != 0)
            fail_msg("got\n%s\nwant\n%s", c.out.data, STREAM_JSON_OUT);
        llmux__buf_free(&c.out);
    }
    /* split at every position */
    for (size_t k = 1; k < len; k++) {
        c = (collect){LX_BUF_INIT, 0};
        assert_int_equal(feed(p, STREAM_TOOL, len, 0, k, &c, &err, &ended), LLMUX_OK);
        assert_true(ended);
        if (strcmp(c.out.data, STREAM_TOOL_OUT) != 0)
            fail_msg("split at %zu:\n%s", k, c.out.data);
        llmux__buf_free(&c.out);
    }
    llmux__config_unref(cfg);
}

static void test_stream_errors(void **state)
{
    (void)state;
    lx_config *cfg = load();
    lx_provider_cfg *p = &cfg->providers[0];
    static const char START[] =
        EV("message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\","
                            "\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}");
    static const struct {
        const char *text;
        int rc;
        const char *code, *msg;
    } cases[] = {
        {EV("error", "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":"
                     "\"Overloaded\"}}"),
         LLMUX_ERR_PROVIDER, "overloaded_error", "error event in the stream (overloaded_error): Overloaded"},
        {EV("error", "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"x\"}}"),
         LLMUX_ERR_RATE_LIMIT, "rate_limit_error", NULL},
        {EV("error", "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":"
                     "\"prompt is too long: 3 tokens > 2 maximum\"}}"),
         LLMUX_ERR_CONTEXT_WINDOW, "invalid_request_error", NULL},
        {EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{"
                                   "\"type\":\"text_delta\",\"text\":\"\xc0\x80\"}}"),
         LLMUX_ERR_BAD_RESPONSE, "", NULL},
        {EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":-1}"),
         LLMUX_ERR_BAD_RESPONSE, "", "a content block event without a valid index"},
        {EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{"
                                   "\"type\":\"input_json_delta\",\"partial_json\":\"{\"}}"),
         LLMUX_ERR_BAD_RESPONSE, "", "input_json_delta for a block that is no tool_use"},
        {EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{"
                                   "\"type\":\"text_delta\",\"text\":\"cut\"}}"),
         LLMUX_ERR_CONNECT, "", "the stream ended before message_stop (after 2 events)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lx_buf text = LX_BUF_INIT;
        llmux__buf_puts(&text, START);
        llmux__buf_puts(&text, cases[i].text);
        collect c = {LX_BUF_INIT, 0};
        lx_err err = {0};
        int ended;
        int rc = feed(p, text.data, text.len, 1, 0, &c, &err, &ended);
        if (rc != cases[i].rc || strcmp(err.provider_code, cases[i].code) != 0 ||
            (cases[i].msg && strcmp(err.msg, cases[i].msg) != 0))
            fail_msg("case %zu: rc %d code %s: %s", i, rc, err.provider_code, err.msg);
        llmux__buf_free(&c.out);
        llmux__buf_free(&text);
    }
    /* an event before message_start */
    const char *early = EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":0}");
    collect c = {LX_BUF_INIT, 0};
    lx_err err = {0};
    int ended;
    assert_int_equal(feed(p, early, strlen(early), 0, 3, &c, &err, &ended), LLMUX_ERR_BAD_RESPONSE);
    assert_string_equal(err.msg, "stream event \"content_block_stop\" before message_start");
    llmux__buf_free(&c.out);
    /* the size cap holds for one event */
    cfg->providers[0].max_response_bytes = 64;
    c = (collect){LX_BUF_INIT, 0};
    assert_int_equal(feed(p, STREAM_TOOL, strlen(STREAM_TOOL), 7, 0, &c, &err, &ended),
                     LLMUX_ERR_BAD_RESPONSE);
    assert_string_equal(err.msg, "a stream event exceeds 64 bytes");
    llmux__buf_free(&c.out);
    llmux__config_unref(cfg);
}

/* ---------------------------------------------------------------- simulator */

static sim S;

static int sim_setup(void **state)
{
    (void)state;
    if (!getenv("LLMUX_SIM"))
        return 0;
    return sim_start(&S);
}

static int sim_teardown(void **state)
{
    (void)state;
    if (S.pid)
        sim_stop(&S);
    return 0;
}

static llmux *open_sim(const char *dep, const char *extra_provider)
{
    char cfg[2048];
    setenv("LLMUX_TEST_ANTHROPIC_KEY", KEY, 1);
    snprintf(cfg, sizeof cfg,
             "{\"providers\":{\"a\":{\"type\":\"anthropic\",\"base_url\":\"%s/%s\","
             "\"api_key_env\":\"LLMUX_TEST_ANTHROPIC_KEY\"%s}},"
             "\"models\":{\"m\":{\"targets\":[{\"provider\":\"a\",\"model\":\"claude-sim\"}]}}}",
             S.url, dep, extra_provider);
    llmux *gw = NULL;
    char err[512];
    if (llmux_open(&gw, cfg, err, sizeof err) != LLMUX_OK)
        fail_msg("open: %s", err);
    return gw;
}

typedef struct answer {
    int status;
    char *json; /* the OpenAI response, created set to 0 */
    char *error;
    lx_usage usage;
} answer;

static int count_chunk(const char *json, size_t len, void *ctx)
{
    (void)json;
    (void)len;
    ++*(int *)ctx;
    return 0;
}

static answer call(llmux *gw, const char *body, int stream, int *chunks)
{
    answer a = {0};
    llmux_result *res = NULL;
    if (stream)
        llmux_chat_stream(gw, body, NULL, count_chunk, chunks, &res);
    else
        llmux_chat(gw, body, NULL, &res);
    a.status = llmux_result_status(res);
    if (a.status == LLMUX_OK)
        a.json = normalise(llmux_result_json(res));
    a.error = strdup(llmux_result_error(res) ? llmux_result_error(res) : "");
    a.usage = res->usage;
    llmux_result_free(res);
    return a;
}

/* Two answers say the same (members in any order), ids aside. */
static void assert_same_answer(const char *x, const char *y)
{
    cJSON *a = cJSON_Parse(x), *b = cJSON_Parse(y);
    cJSON_DeleteItemFromObject(a, "id");
    cJSON_DeleteItemFromObject(b, "id");
    if (!cJSON_Compare(a, b, 1))
        fail_msg("answers differ:\n%s\n%s", x, y);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void answer_free(answer *a)
{
    free(a->json);
    free(a->error);
}

#define SKIP_WITHOUT_SIM()                                                                         \
    do {                                                                                           \
        if (!S.pid)                                                                                \
            skip();                                                                                \
    } while (0)

static void test_sim_plain_and_stream_agree(void **state)
{
    (void)state;
    SKIP_WITHOUT_SIM();
    assert_int_equal(sim_set(&S, "a1", "{\"require_key\":\"" KEY "\"}"), 200);
    llmux *gw = open_sim("a1", "");
    const char *req = "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                      "{\"role\":\"user\",\"content\":\"hello there\"}]}";
    answer a = call(gw, req, 0, NULL);
    assert_int_equal(a.status, LLMUX_OK);
    assert_string_equal(a.json,
                        "{\"id\":\"msg_sim_a1_1\",\"object\":\"chat.completion\",\"created\":0,"
                        "\"model\":\"claude-sim\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                        "\"assistant\",\"content\":\"[a1] hello there\"},\"logprobs\":null,"
                        "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,"
                        "\"completion_tokens\":3,\"total_tokens\":8,\"prompt_tokens_details\":{"
                        "\"cached_tokens\":0,\"cache_write_tokens\":0,\"cache_write_1h_tokens\":0}}}");
    /* what the simulator received */
    char *got = sim_get(&S, "a1");
    assert_non_null(strstr(got, "\"system\":\"be brief\""));
    assert_non_null(strstr(got, "\"max_tokens\":4096"));
    free(got);
    int chunks = 0;
    answer b = call(gw, "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"system\","
                        "\"content\":\"be brief\"},{\"role\":\"user\",\"content\":\"hello there\"}]}",
                    1, &chunks);
    assert_int_equal(b.status, LLMUX_OK);
    assert_int_equal(chunks, 5); /* role, three words, finish */
    /* the same content, finish_reason and usage (ids differ by request number) */
    assert_same_answer(a.json, b.json);
    assert_memory_equal(&a.usage, &b.usage, sizeof a.usage);
    answer_free(&a);
    answer_free(&b);
    llmux_close(gw);
}

static void test_sim_tool_turn(void **state)
{
    (void)state;
    SKIP_WITHOUT_SIM();
    assert_int_equal(sim_set(&S, "a2", "{}"), 200);
    llmux *gw = open_sim("a2", "");
    const char *tools = "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
                        "\"parameters\":{\"type\":\"object\"}}}],\"tool_choice\":\"required\"";
    char req[1024];
    snprintf(req, sizeof req, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":"
                              "\"Paris\"}],%s}", tools);
    answer a = call(gw, req, 0, NULL);
    assert_int_equal(a.status, LLMUX_OK);
    assert_string_equal(a.json,
                        "{\"id\":\"msg_sim_a2_1\",\"object\":\"chat.completion\",\"created\":0,"
                        "\"model\":\"claude-sim\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                        "\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"toolu_sim_1\","
                        "\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":"
                        "\"{\\\"echo\\\":\\\"Paris\\\"}\"}}]},\"logprobs\":null,\"finish_reason\":"
                        "\"tool_calls\"}],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":8,"
                        "\"total_tokens\":10,\"prompt_tokens_details\":{\"cached_tokens\":0,"
                        "\"cache_write_tokens\":0,\"cache_write_1h_tokens\":0}}}");
    int chunks = 0;
    snprintf(req, sizeof req, "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                              "\"content\":\"Paris\"}],%s}", tools);
    answer s = call(gw, req, 1, &chunks);
    assert_int_equal(s.status, LLMUX_OK);
    assert_string_equal(strstr(s.json, "\"model\""),
                        "\"model\":\"claude-sim\",\"choices\":[{\"message\":{\"role\":"
                        "\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"toolu_sim_2\","
                        "\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":"
                        "\"{\\\"echo\\\":\\\"Paris\\\"}\"}}]},\"index\":0,\"logprobs\":null,\"finish_reason\":"
                        "\"tool_calls\"}],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":8,"
                        "\"total_tokens\":10,\"prompt_tokens_details\":{\"cached_tokens\":0,"
                        "\"cache_write_tokens\":0,\"cache_write_1h_tokens\":0}}}");
    assert_memory_equal(&a.usage, &s.usage, sizeof a.usage);
    /* the tool-result turn: the simulator checks the tool_result follows its tool_use */
    snprintf(req, sizeof req,
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"Paris\"},{\"role\":"
             "\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"toolu_sim_1\",\"type\":"
             "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"echo\\\":"
             "\\\"Paris\\\"}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"toolu_sim_1\",\"content\":"
             "\"18C and sunny\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
             "\"get_weather\"}}]}");
    answer t = call(gw, req, 0, NULL);
    assert_int_equal(t.status, LLMUX_OK);
    assert_non_null(strstr(t.json, "\"content\":\"[a2] 18C and sunny\""));
    answer_free(&a);
    answer_free(&s);
    answer_free(&t);
    llmux_close(gw);
}

static void test_sim_image_json_thinking_cache(void **state)
{
    (void)state;
    SKIP_WITHOUT_SIM();
    assert_int_equal(sim_set(&S, "a3", "{}"), 200);
    llmux *gw = open_sim("a3", "");
    /* an image: the simulator checks the source */
    answer a = call(gw, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                        "\"text\",\"text\":\"see\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
                        "\"data:image/png;base64,iVBORw0KGgo=\"}}]}]}", 0, NULL);
    assert_int_equal(a.status, LLMUX_OK);
    assert_non_null(strstr(a.json, "\"content\":\"[a3] see (1 image)\""));
    answer_free(&a);
    /* json_schema: the simulator answers JSON that fits an object schema */
    a = call(gw, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"j\"}],"
                 "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"r\","
                 "\"schema\":{\"type\":\"object\"}}}}", 0, NULL);
    assert_int_equal(a.status, LLMUX_OK);
    assert_non_null(strstr(a.json, "\"content\":\"{\\\"echo\\\":\\\"j\\\"}\""));
    answer_free(&a);
    /* thinking: reasoning_content and the signed block */
    a = call(gw, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"t\"}],"
                 "\"reasoning_effort\":\"low\"}", 0, NULL);
    assert_int_equal(a.status, LLMUX_OK);
    assert_non_null(strstr(a.json, "\"reasoning_content\":\"Thinking about: t\","
                                   "\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":"
                                   "\"Thinking about: t\",\"signature\":\"sim-signature-3\"}]"));
    int chunks = 0;
    answer s = call(gw, "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                        "\"content\":\"t\"}],\"reasoning_effort\":\"low\"}", 1, &chunks);
    assert_int_equal(s.status, LLMUX_OK);
    /* the same answer, thinking and its signature included (but for the
     * request number in the id and the signature) */
    char *sig = strstr(s.json, "sim-signature-4");
    assert_non_null(sig);
    sig[14] = '3';
    assert_same_answer(a.json, s.json);
    assert_memory_equal(&a.usage, &s.usage, sizeof a.usage);
    answer_free(&a);
    answer_free(&s);
    /* cached usage: cache_control in the request makes the simulator report cache traffic */
    const char *cached = "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":[{\"type\":"
                         "\"text\",\"text\":\"a long shared prefix\",\"cache_control\":{\"type\":"
                         "\"ephemeral\",\"ttl\":\"1h\"}}]},{\"role\":\"user\",\"content\":\"q\"}]}";
    a = call(gw, cached, 0, NULL);
    assert_int_equal(a.status, LLMUX_OK);
    /* first call writes the cache (1h), the second reads it */
    assert_int_equal(a.usage.cache_write_tokens, 5);
    assert_int_equal(a.usage.cached_tokens, 0);
    answer b = call(gw, cached, 0, NULL);
    assert_int_equal(b.usage.cache_write_tokens, 0);
    assert_int_equal(b.usage.cached_tokens, 5);
    assert_int_equal(b.usage.prompt_tokens, 6);
    assert_non_null(strstr(b.json, "\"prompt_tokens_details\":{\"cached_tokens\":5,"
                                   "\"cache_write_tokens\":0,\"cache_write_1h_tokens\":0}"));
    answer_free(&a);
    answer_free(&b);
    llmux_close(gw);
}

static void test_sim_errors(void **state)
{
    (void)state;
    SKIP_WITHOUT_SIM();
    static const struct {
        const char *settings;
        int stream;
        int status;
        const char *msg;
    } cases[] = {
        {"{\"faults\":[{\"type\":\"status\",\"status\":529}]}", 0, LLMUX_ERR_PROVIDER,
         "overloaded_error"},
        {"{\"faults\":[{\"type\":\"status\",\"status\":429,\"retry_after\":\"0\"}]}", 0,
         LLMUX_ERR_RATE_LIMIT, "rate_limit_error"},
        {"{\"faults\":[{\"type\":\"status\",\"status\":401}]}", 0, LLMUX_ERR_AUTH,
         "authentication_error"},
        {"{\"faults\":[{\"type\":\"status\",\"status\":403}]}", 0, LLMUX_ERR_PERMISSION,
         "permission_error"},
        {"{\"faults\":[{\"type\":\"status\",\"status\":404}]}", 0, LLMUX_ERR_NOT_FOUND,
         "not_found_error"},
        {"{\"faults\":[{\"type\":\"status\",\"status\":413}]}", 0, LLMUX_ERR_BAD_REQUEST,
         "request_too_large"},
        {"{\"faults\":[{\"type\":\"status\",\"status\":500}]}", 0, LLMUX_ERR_PROVIDER, "api_error"},
        {"{\"faults\":[{\"type\":\"status\",\"status\":400,\"body\":{\"type\":\"error\",\"error\":"
         "{\"type\":\"invalid_request_error\",\"message\":\"prompt is too long: 9 tokens > 8 "
         "maximum\"}}}]}", 0, LLMUX_ERR_CONTEXT_WINDOW, "prompt is too long"},
        {"{\"faults\":[{\"type\":\"status\",\"status\":402,\"body\":{\"type\":\"error\",\"error\":"
         "{\"type\":\"billing_error\",\"message\":\"credit balance too low\"}}}]}", 0,
         LLMUX_ERR_QUOTA, "billing_error"},
        {"{\"faults\":[{\"type\":\"status\",\"status\":200,\"body\":{\"type\":\"error\","
         "\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}}]}", 1,
         LLMUX_ERR_PROVIDER, "error event in the stream (overloaded_error)"},
        {"{\"faults\":[{\"type\":\"stream_drop\"}]}", 1, LLMUX_ERR_CONNECT, "connection broke"},
        {"{\"faults\":[{\"type\":\"malformed\"}]}", 0, LLMUX_ERR_BAD_RESPONSE, "not valid JSON"},
        {"{\"require_key\":\"another-key\"}", 0, LLMUX_ERR_AUTH, "invalid x-api-key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(sim_set(&S, "a4", cases[i].settings), 200);
        llmux *gw = open_sim("a4", "");
        int chunks = 0;
        answer a = call(gw, cases[i].stream
                                ? "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                                  "\"content\":\"x y z\"}]}"
                                : "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                        cases[i].stream, &chunks);
        if (a.status != cases[i].status || !strstr(a.error, cases[i].msg))
            fail_msg("case %zu: status %d: %s", i, a.status, a.error);
        assert_null(strstr(a.error, KEY));
        answer_free(&a);
        llmux_close(gw);
    }
}

/* The simulator refuses what the real API refuses: a request llmux never
 * sends, written by hand. */
static void test_sim_validates(void **state)
{
    (void)state;
    SKIP_WITHOUT_SIM();
    /* the same validation llmux's output passes: every golden request above is accepted */
    assert_int_equal(sim_set(&S, "a5", "{}"), 200);
    llmux *gw = open_sim("a5", "");
    for (size_t i = 0; i < sizeof REQ / sizeof REQ[0]; i++) {
        answer a = call(gw, REQ[i].in, 0, NULL);
        if (a.status != LLMUX_OK)
            fail_msg("%s: %s", REQ[i].name, a.error);
        answer_free(&a);
    }
    llmux_close(gw);
}

/* Raw requests to the simulator's Messages API: what the real API refuses,
 * it refuses, with Anthropic's error shape. */
static size_t keep_body(char *p, size_t size, size_t n, void *ctx)
{
    llmux__buf_append(ctx, p, size * n);
    return size * n;
}

static long post_raw(const char *dep, const char *body, int version, const char *key, lx_buf *out)
{
    CURL *c = curl_easy_init();
    char url[256], keyh[128];
    snprintf(url, sizeof url, "%s/%s/v1/messages", S.url, dep);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (version)
        h = curl_slist_append(h, "anthropic-version: 2023-06-01");
    if (key) {
        snprintf(keyh, sizeof keyh, "x-api-key: %s", key);
        h = curl_slist_append(h, keyh);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

static void test_sim_refuses(void **state)
{
    (void)state;
    SKIP_WITHOUT_SIM();
#define OKU "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]"
    static const struct {
        const char *body;
        int version;
        const char *key;
        long status;
        const char *msg;
    } cases[] = {
        {"{\"model\":\"c\",\"max_tokens\":5," OKU "}", 0, KEY, 400,
         "anthropic-version: header is required"},
        {"{\"model\":\"c\",\"max_tokens\":5," OKU "}", 1, "sk-wrong", 401, "invalid x-api-key"},
        {"{\"model\":\"c\",\"max_tokens\":5," OKU "}", 1, NULL, 401, "authentication_error"},
        {"{\"model\":\"c\"," OKU "}", 1, KEY, 400, "max_tokens: Field required"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"system\",\"content\":"
         "\"s\"}," "{\"role\":\"user\",\"content\":\"x\"}]}", 1, KEY, 400,
         "Unexpected role \\\"system\\\""},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
         "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":"
         "\"f\",\"input\":{}}]},{\"role\":\"user\",\"content\":\"no result\"}]}", 1, KEY, 400,
         "`tool_use` ids were found without `tool_result` blocks immediately after: t1"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":["
         "{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"tool_result\",\"tool_use_id\":\"t\"}]}]}",
         1, KEY, 400, "tool_result blocks must come first"},
        {"{\"model\":\"c\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":["
         "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/bmp\","
         "\"data\":\"AA\"}}]}]}", 1, KEY, 400, "source.media_type"},
        {"{\"model\":\"c\",\"max_tokens\":2000," OKU ",\"thinking\":{\"type\":\"enabled\","
         "\"budget_tokens\":2000}}", 1, KEY, 400,
         "`max_tokens` must be greater than `thinking.budget_tokens`"},
        {"{\"model\":\"c\",\"max_tokens\":5," OKU ",\"temperature\":1.5}", 1, KEY, 400,
         "temperature"},
        {"{\"model\":\"c\",\"max_tokens\":5," OKU ",\"tool_choice\":{\"type\":\"any\"}}", 1, KEY,
         400, "tool_choice: may only be specified while providing tools"},
        {"{\"model\":\"c\",\"max_tokens\":5," OKU "}", 1, KEY, 200, "\"type\":\"message\""},
    };
    assert_int_equal(sim_set(&S, "a6", "{\"require_key\":\"" KEY "\"}"), 200);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lx_buf out = LX_BUF_INIT;
        long st = post_raw("a6", cases[i].body, cases[i].version, cases[i].key, &out);
        if (st != cases[i].status || !out.data || !strstr(out.data, cases[i].msg) ||
            (st != 200 && !strstr(out.data, "{\"type\":\"error\",\"error\":{\"type\":")))
            fail_msg("case %zu: %ld %s", i, st, out.data ? out.data : "");
        llmux__buf_free(&out);
    }
}

int main(void)
{
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(test_request_goldens),
        cmocka_unit_test(test_request_headers_and_stream),
        cmocka_unit_test(test_request_refused),
        cmocka_unit_test(test_config_keys),
        cmocka_unit_test(test_response_goldens),
        cmocka_unit_test(test_response_bad),
        cmocka_unit_test(test_classify_errors),
        cmocka_unit_test(test_stream_golden_every_split),
        cmocka_unit_test(test_stream_errors),
    };
    const struct CMUnitTest with_sim[] = {
        cmocka_unit_test(test_sim_plain_and_stream_agree),
        cmocka_unit_test(test_sim_tool_turn),
        cmocka_unit_test(test_sim_image_json_thinking_cache),
        cmocka_unit_test(test_sim_errors),
        cmocka_unit_test(test_sim_validates),
        cmocka_unit_test(test_sim_refuses),
    };
    int failed = cmocka_run_group_tests_name("anthropic", unit, NULL, NULL);
    return failed | cmocka_run_group_tests_name("anthropic_sim", with_sim, sim_setup, sim_teardown);
}
