/*
 * The Gemini adapter: golden translations both ways (OpenAI request in, exact
 * generateContent JSON out; Gemini answers and SSE streams in, exact OpenAI
 * JSON and chunks out), the stream decoder fed whole, byte at a time and split
 * at every position, error classification, and round trips through llmux-sim
 * speaking generateContent.
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

#include "config/config.h"
#include "core/buf.h"
#include "engine/assemble.h"
#include "llmux.h"
#include "providers/provider.h"
#include "sim_harness.h"

#define KEY "AIza-unit-test-key-0123456789"

static sim SIM;

static const char *provider_extra = ""; /* more members of the provider's config */

/* A config with one gemini provider; max_bytes: transport.max_response_bytes (0: default). */
static lx_config *load_capped(long max_bytes)
{
    setenv("LLMUX_TEST_GEMINI_KEY", KEY, 1);
    char json[512];
    snprintf(json, sizeof json,
             "{\"providers\":{\"g\":{\"type\":\"gemini\",\"api_key_env\":"
             "\"LLMUX_TEST_GEMINI_KEY\",\"headers\":{\"X-Extra\":\"1\"}%s}},"
             "\"models\":{\"m\":{\"targets\":[{\"provider\":\"g\",\"model\":\"gemini-x\"}]}}%s}",
             provider_extra, max_bytes ? ",\"transport\":{\"max_response_bytes\":" : "");
    if (max_bytes)
        snprintf(json + strlen(json) - 1, sizeof json - strlen(json) + 1, "%ld}}", max_bytes);
    lx_config *cfg = NULL;
    lx_err err = {0};
    if (llmux__config_parse(&cfg, json, strlen(json), &err) != LLMUX_OK)
        fail_msg("config: %s", err.msg);
    return cfg;
}

static lx_config *load(void)
{
    return load_capped(0);
}

static int has_header(const lx_http_request *r, const char *line)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i].line, line) == 0)
            return 1;
    return 0;
}

/* build_request on `json`; returns its status, *body the JSON sent (malloc'd). */
static int build(const char *json, int stream, char **body, char *url, size_t url_cap, lx_err *err)
{
    lx_config *cfg = load();
    lx_provider_cfg *p = &cfg->providers[0];
    lx_request req = {0};
    req.n_members = -1;
    req.raw = json;
    req.raw_len = strlen(json);
    lx_http_request hr;
    llmux__http_request_init(&hr);
    memset(err, 0, sizeof *err);
    int rc = p->ops->build_request(p, "gemini-x", &req, stream, &hr, err);
    *body = NULL;
    if (rc == LLMUX_OK) {
        *body = strndup(hr.body, hr.body_len);
        snprintf(url, url_cap, "%s", hr.url);
        assert_true(has_header(&hr, "x-goog-api-key: " KEY));
        assert_true(has_header(&hr, "Content-Type: application/json"));
        assert_true(has_header(&hr, "X-Extra: 1"));
        assert_int_equal(has_header(&hr, "Accept: text/event-stream"), stream);
    }
    llmux__http_request_free(&hr);
    llmux__request_free(&req);
    llmux__config_unref(cfg);
    return rc;
}

static void golden_request(const char *json, const char *want)
{
    char *body, url[256];
    lx_err err;
    int rc = build(json, 0, &body, url, sizeof url, &err);
    if (rc != LLMUX_OK)
        fail_msg("build: %d %s", rc, err.msg);
    assert_string_equal(body, want);
    free(body);
}

static void refused_request(const char *json, int status, const char *msg_part)
{
    char *body, url[256];
    lx_err err;
    assert_int_equal(build(json, 0, &body, url, sizeof url, &err), status);
    if (!strstr(err.msg, msg_part))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, msg_part);
}

/* ---------------------------------------------------------------- requests */

static void test_request_plain_and_generation_config(void **state)
{
    char *body, url[256];
    lx_err err;
    const char *req = "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                      "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"No jokes.\"}]},"
                      "{\"role\":\"user\",\"content\":\"Hi\"},{\"role\":\"user\",\"content\":[{\"type\":"
                      "\"text\",\"text\":\"there\"}]},{\"role\":\"assistant\",\"content\":\"Hello\"},"
                      "{\"role\":\"assistant\",\"content\":\"again\"},{\"role\":\"user\",\"content\":\"Q\"}],"
                      "\"max_tokens\":100,\"temperature\":0.5,\"top_p\":0.9,\"stop\":\"END\",\"seed\":7,"
                      "\"n\":2,\"presence_penalty\":0.1,\"frequency_penalty\":0.2,"
                      "\"reasoning_effort\":\"medium\",\"parallel_tool_calls\":false,\"user\":\"u1\"}";
    assert_int_equal(build(req, 1, &body, url, sizeof url, &err), LLMUX_OK);
    assert_string_equal(url, "https://generativelanguage.googleapis.com/v1beta/models/"
                             "gemini-x:streamGenerateContent?alt=sse");
    free(body);
    assert_int_equal(build(req, 0, &body, url, sizeof url, &err), LLMUX_OK);
    assert_string_equal(url, "https://generativelanguage.googleapis.com/v1beta/models/"
                             "gemini-x:generateContent");
    free(body);
    golden_request(req,
                   "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"Hi\"},{\"text\":\"there\"}]},"
                   "{\"role\":\"model\",\"parts\":[{\"text\":\"Hello\"},{\"text\":\"again\"}]},"
                   "{\"role\":\"user\",\"parts\":[{\"text\":\"Q\"}]}],"
                   "\"systemInstruction\":{\"parts\":[{\"text\":\"Be brief.\"},{\"text\":\"No jokes.\"}]},"
                   "\"generationConfig\":{\"maxOutputTokens\":100,\"temperature\":0.5,\"topP\":0.9,"
                   "\"seed\":7,\"candidateCount\":2,\"presencePenalty\":0.1,\"frequencyPenalty\":0.2,"
                   "\"stopSequences\":[\"END\"],\"thinkingConfig\":{\"thinkingBudget\":8192}}}");
    /* max_completion_tokens wins over max_tokens; stop as a list; effort none = no thinking */
    golden_request("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                   "\"max_tokens\":5,\"max_completion_tokens\":9,\"stop\":[\"a\",\"b\"],"
                   "\"reasoning_effort\":\"none\"}",
                   "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}],"
                   "\"generationConfig\":{\"maxOutputTokens\":9,\"stopSequences\":[\"a\",\"b\"],"
                   "\"thinkingConfig\":{\"thinkingBudget\":0}}}");
    /* the model id is one path segment */
    assert_int_equal(build("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0,
                           &body, url, sizeof url, &err), LLMUX_OK);
    free(body);
}

static void test_request_tools_and_tool_turns(void **state)
{
    const char *req =
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
        "{\"id\":\"call_1__ts__c2lnMQ==\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
        "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
        "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"get_time\",\"arguments\":\"\"},"
        "\"extra_content\":{\"google\":{\"thought_signature\":\"c2lnMg==\"}}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1__ts__c2lnMQ==\",\"content\":\"sunny\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":\"{\\\"t\\\":\\\"noon\\\"}\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"W\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"
        "\"required\":[\"city\"],\"additionalProperties\":false},\"strict\":true}},"
        "{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}}";
    golden_request(req,
                   "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"weather?\"}]},"
                   "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"get_weather\","
                   "\"args\":{\"city\":\"Paris\"}},\"thoughtSignature\":\"c2lnMQ==\"},"
                   "{\"functionCall\":{\"name\":\"get_time\",\"args\":{}},\"thoughtSignature\":\"c2lnMg==\"}]},"
                   "{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":\"get_weather\","
                   "\"response\":{\"result\":\"sunny\"}}},{\"functionResponse\":{\"name\":\"get_time\","
                   "\"response\":{\"t\":\"noon\"}}}]}],"
                   "\"tools\":[{\"functionDeclarations\":[{\"name\":\"get_weather\",\"description\":\"W\","
                   "\"parametersJsonSchema\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
                   "\"string\"}},\"required\":[\"city\"],\"additionalProperties\":false}},"
                   "{\"name\":\"get_time\"}]}],"
                   "\"toolConfig\":{\"functionCallingConfig\":{\"mode\":\"ANY\","
                   "\"allowedFunctionNames\":[\"get_weather\"]}}}");
    static const char *const modes[][2] = {{"\"auto\"", "AUTO"}, {"\"none\"", "NONE"},
                                           {"\"required\"", "ANY"}};
    for (int i = 0; i < 3; i++) {
        char in[512], want[512];
        snprintf(in, sizeof in,
                 "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":"
                 "[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],\"tool_choice\":%s}",
                 modes[i][0]);
        snprintf(want, sizeof want,
                 "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}],\"tools\":"
                 "[{\"functionDeclarations\":[{\"name\":\"f\"}]}],\"toolConfig\":"
                 "{\"functionCallingConfig\":{\"mode\":\"%s\"}}}",
                 modes[i][1]);
        golden_request(in, want);
    }
    /* a tool message that answers nothing: Gemini needs the name */
    refused_request("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
                    "{\"role\":\"tool\",\"tool_call_id\":\"nope\",\"content\":\"r\"}]}",
                    LLMUX_ERR_BAD_REQUEST, "tool_call_id \"nope\" answers no earlier assistant tool call");
    refused_request("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
                    "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"a\",\"type\":\"function\","
                    "\"function\":{\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
                    LLMUX_ERR_BAD_REQUEST, "arguments of tool call \"f\" are not a JSON object");
}

static void test_request_images_and_formats(void **state)
{
    golden_request(
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"what?\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0K\"}},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x.test/a/cat.JPG?s=1\"}},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"gs://b/doc.pdf\"}}]}],"
        "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"r\",\"strict\":true,"
        "\"schema\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":[\"string\",\"null\"]}}}}}}",
        "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"what?\"},{\"inlineData\":"
        "{\"mimeType\":\"image/png\",\"data\":\"iVBORw0K\"}},{\"fileData\":{\"mimeType\":\"image/jpeg\","
        "\"fileUri\":\"https://x.test/a/cat.JPG?s=1\"}},{\"fileData\":{\"mimeType\":\"application/pdf\","
        "\"fileUri\":\"gs://b/doc.pdf\"}}]}],\"generationConfig\":{\"responseMimeType\":"
        "\"application/json\",\"responseJsonSchema\":{\"type\":\"object\",\"properties\":{\"a\":"
        "{\"type\":[\"string\",\"null\"]}}}}}");
    golden_request("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                   "\"response_format\":{\"type\":\"json_object\"}}",
                   "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}],"
                   "\"generationConfig\":{\"responseMimeType\":\"application/json\"}}");
    refused_request("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                    "\"image_url\",\"image_url\":{\"url\":\"https://x.test/img\"}}]}]}",
                    LX_CANNOT_SERVE, "gemini needs the mime type of image URL https://x.test/img");
    refused_request("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                    "\"image_url\",\"image_url\":{\"url\":\"data:image/png,xyz\"}}]}]}",
                    LLMUX_ERR_BAD_REQUEST, "data:<mime type>;base64,<data>");
    refused_request("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                    "\"logprobs\":true}", LX_CANNOT_SERVE, "\"logprobs\" is not supported");
    refused_request("{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}",
                    LLMUX_ERR_BAD_REQUEST, "at least one user or assistant message");
}

static void test_request_openapi_schemas(void **state)
{
    provider_extra = ",\"schema\":\"openapi\"";
    golden_request(
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":"
        "\"function\",\"function\":{\"name\":\"f\",\"strict\":true,\"parameters\":{\"$schema\":"
        "\"http://json-schema.org/draft-07/schema#\",\"type\":\"object\",\"properties\":{\"a\":"
        "{\"type\":[\"string\",\"null\"],\"description\":\"A\"},\"b\":{\"type\":\"array\",\"items\":"
        "{\"type\":\"integer\",\"minimum\":1}},\"c\":{\"const\":\"on\"},\"d\":{\"anyOf\":[{\"type\":"
        "\"number\"},{\"type\":\"boolean\"}]}},\"required\":[\"a\"],\"additionalProperties\":false}}}],"
        "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"r\",\"schema\":"
        "{\"type\":\"object\",\"properties\":{\"e\":{\"type\":\"string\",\"enum\":[\"x\",\"y\"]}}}}}}",
        "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}],\"tools\":[{"
        "\"functionDeclarations\":[{\"name\":\"f\",\"parameters\":{\"type\":\"OBJECT\",\"properties\":"
        "{\"a\":{\"type\":\"STRING\",\"nullable\":true,\"description\":\"A\"},\"b\":{\"type\":"
        "\"ARRAY\",\"items\":{\"type\":\"INTEGER\",\"minimum\":1}},\"c\":{\"enum\":[\"on\"],\"type\":\"STRING\"},\"d\":"
        "{\"anyOf\":[{\"type\":\"NUMBER\"},{\"type\":\"BOOLEAN\"}]}},\"required\":[\"a\"]}}]}],"
        "\"generationConfig\":{\"responseMimeType\":\"application/json\",\"responseSchema\":{\"type\":"
        "\"OBJECT\",\"properties\":{\"e\":{\"type\":\"STRING\",\"enum\":[\"x\",\"y\"]}}}}}");
    /* what has no equivalent is refused, named with its place */
    refused_request("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":"
                    "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":"
                    "\"object\",\"properties\":{\"n\":{\"$ref\":\"#/$defs/N\"}}}}}]}",
                    LX_CANNOT_SERVE, "gemini adapter: tools[f].parameters.properties.n.$ref has no "
                                     "equivalent in Gemini's OpenAPI schema");
    refused_request("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                    "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"r\","
                    "\"schema\":{\"type\":[\"string\",\"integer\"]}}}}",
                    LX_CANNOT_SERVE, "response_format.json_schema.schema.type: only one type");
    provider_extra = "";
    /* the key's values */
    const char *bad = "{\"providers\":{\"g\":{\"type\":\"gemini\",\"schema\":\"yaml\"}},"
                      "\"models\":{\"m\":{\"targets\":[{\"provider\":\"g\",\"model\":\"x\"}]}}}";
    lx_config *cfg = NULL;
    lx_err err = {0};
    assert_int_equal(llmux__config_parse(&cfg, bad, strlen(bad), &err), LLMUX_ERR_CONFIG);
    assert_string_equal(err.msg, "providers.g.schema: expected \"json_schema\" or \"openapi\"");
}

/* --------------------------------------------------------------- responses */

static char *normalise_created(const char *json)
{
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    cJSON *c = cJSON_GetObjectItem(o, "created");
    assert_true(cJSON_IsNumber(c));
    cJSON_SetNumberValue(c, 0);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static int parse(const char *body, char **out, lx_usage *u, lx_err *err)
{
    lx_config *cfg = load();
    lx_provider_cfg *p = &cfg->providers[0];
    lx_buf b = LX_BUF_INIT;
    llmux__buf_puts(&b, body);
    lx_usage unknown = LX_USAGE_UNKNOWN;
    *u = unknown;
    memset(err, 0, sizeof *err);
    char *json = NULL;
    int rc = p->ops->parse_response(p, &b, &json, u, err);
    *out = rc == LLMUX_OK ? normalise_created(json) : NULL;
    free(json);
    llmux__buf_free(&b);
    llmux__config_unref(cfg);
    return rc;
}

static const char *FC_BODY =
    "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"thinking...\",\"thought\":true},"
    "{\"text\":\"Let me check.\"},{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Paris\"}},"
    "\"thoughtSignature\":\"c2lnMQ==\"},{\"functionCall\":{\"name\":\"get_time\",\"args\":{}}}]},"
    "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":100,"
    "\"candidatesTokenCount\":20,\"totalTokenCount\":135,\"cachedContentTokenCount\":60,"
    "\"thoughtsTokenCount\":15},\"modelVersion\":\"gemini-x-001\",\"responseId\":\"r1\"}";

static const char *FC_WANT =
    "{\"id\":\"chatcmpl-r1\",\"object\":\"chat.completion\",\"created\":0,\"model\":\"gemini-x-001\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Let me check.\","
    "\"tool_calls\":[{\"id\":\"call_73b312191490e495__ts__c2lnMQ==\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},{\"id\":\"call_61a3d3d4d6b8767d\",\"type\":\"function\","
    "\"function\":{\"name\":\"get_time\",\"arguments\":\"{}\"}}]},\"logprobs\":null,"
    "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":35,"
    "\"total_tokens\":135,\"prompt_tokens_details\":{\"cached_tokens\":60,\"cache_write_tokens\":0},"
    "\"completion_tokens_details\":{\"reasoning_tokens\":15}}}";

/* the ids: a stable hash of position, name and arguments; the signature after __ts__ */
static void fc_ids(const char *json, char *id1, char *id2)
{
    cJSON *o = cJSON_Parse(json);
    cJSON *tcs = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 0),
                                                         "message"), "tool_calls");
    strcpy(id1, cJSON_GetObjectItem(cJSON_GetArrayItem(tcs, 0), "id")->valuestring);
    strcpy(id2, cJSON_GetObjectItem(cJSON_GetArrayItem(tcs, 1), "id")->valuestring);
    cJSON_Delete(o);
}

static void test_response_golden(void **state)
{
    char *out;
    lx_usage u;
    lx_err err;
    assert_int_equal(parse("{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Hel\"},"
                           "{\"text\":\"lo\"}]},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":"
                           "{\"promptTokenCount\":4,\"candidatesTokenCount\":2,\"totalTokenCount\":6},"
                           "\"modelVersion\":\"gemini-x\",\"responseId\":\"abc\"}", &out, &u, &err),
                     LLMUX_OK);
    assert_string_equal(out,
                        "{\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion\",\"created\":0,\"model\":"
                        "\"gemini-x\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                        "\"content\":\"Hello\"},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":"
                        "{\"prompt_tokens\":4,\"completion_tokens\":2,\"total_tokens\":6,"
                        "\"prompt_tokens_details\":{\"cached_tokens\":0,\"cache_write_tokens\":0},"
                        "\"completion_tokens_details\":{\"reasoning_tokens\":0}}}");
    free(out);
    assert_int_equal(u.prompt_tokens, 4);
    assert_int_equal(u.completion_tokens, 2);
    assert_int_equal(u.cached_tokens, 0);
    assert_int_equal(u.reasoning_tokens, 0);

    assert_int_equal(parse(FC_BODY, &out, &u, &err), LLMUX_OK);
    char id1[256], id2[256];
    fc_ids(out, id1, id2);
    assert_string_equal(id1, "call_73b312191490e495__ts__c2lnMQ==");
    assert_string_equal(id2, "call_61a3d3d4d6b8767d");
    assert_string_equal(out, FC_WANT);
    free(out);
    assert_int_equal(u.prompt_tokens, 100);
    assert_int_equal(u.completion_tokens, 35);
    assert_int_equal(u.cached_tokens, 60);
    assert_int_equal(u.cache_write_tokens, 0);
    assert_int_equal(u.reasoning_tokens, 15);

    /* functionCall.id, when Gemini gives one, is the id */
    assert_int_equal(parse("{\"candidates\":[{\"content\":{\"parts\":[{\"functionCall\":{\"id\":\"fc-9\","
                           "\"name\":\"f\",\"args\":{}}}]},\"finishReason\":\"STOP\"}]}", &out, &u, &err),
                     LLMUX_OK);
    assert_non_null(strstr(out, "\"content\":null,\"tool_calls\":[{\"id\":\"fc-9\""));
    assert_non_null(strstr(out, "\"finish_reason\":\"tool_calls\""));
    assert_null(strstr(out, "\"usage\""));
    assert_int_equal(u.prompt_tokens, -1);
    free(out);
}

static void test_finish_reason_table(void **state)
{
    static const char *const table[][2] = {
        {"STOP", "stop"},          {"MAX_TOKENS", "length"},
        {"SAFETY", "content_filter"}, {"RECITATION", "content_filter"},
        {"BLOCKLIST", "content_filter"}, {"PROHIBITED_CONTENT", "content_filter"},
        {"SPII", "content_filter"}, {"IMAGE_SAFETY", "content_filter"},
        {"LANGUAGE", "content_filter"}, {"OTHER", "stop"},
        {"FINISH_REASON_UNSPECIFIED", "stop"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        char body[256], want[64];
        snprintf(body, sizeof body, "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]},"
                                    "\"finishReason\":\"%s\"}]}", table[i][0]);
        snprintf(want, sizeof want, "\"finish_reason\":\"%s\"", table[i][1]);
        char *out;
        lx_usage u;
        lx_err err;
        assert_int_equal(parse(body, &out, &u, &err), LLMUX_OK);
        if (!strstr(out, want))
            fail_msg("%s: %s", table[i][0], out);
        free(out);
    }
    /* a failed function call is an error, not an answer */
    char *out;
    lx_usage u;
    lx_err err;
    assert_int_equal(parse("{\"candidates\":[{\"content\":{\"parts\":[]},\"finishReason\":"
                           "\"MALFORMED_FUNCTION_CALL\"}]}", &out, &u, &err), LLMUX_ERR_PROVIDER);
    assert_string_equal(err.provider_code, "MALFORMED_FUNCTION_CALL");
    /* a blocked prompt */
    assert_int_equal(parse("{\"promptFeedback\":{\"blockReason\":\"PROHIBITED_CONTENT\"},"
                           "\"usageMetadata\":{\"promptTokenCount\":3}}", &out, &u, &err),
                     LLMUX_ERR_CONTENT_FILTER);
    assert_string_equal(err.msg, "gemini blocked the prompt (blockReason PROHIBITED_CONTENT)");
    assert_string_equal(err.provider_code, "PROHIBITED_CONTENT");
    /* not trusted: invalid UTF-8, invalid JSON, no candidates, absurd counts */
    assert_int_equal(parse("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\xff\"}]}}]}", &out, &u,
                           &err), LLMUX_ERR_BAD_RESPONSE);
    assert_non_null(strstr(err.msg, "not valid UTF-8"));
    assert_int_equal(parse("{\"candidates\":[", &out, &u, &err), LLMUX_ERR_BAD_RESPONSE);
    assert_int_equal(parse("{\"candidates\":[]}", &out, &u, &err), LLMUX_ERR_BAD_RESPONSE);
    assert_int_equal(parse("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"x\"}]}}],"
                           "\"usageMetadata\":{\"promptTokenCount\":1e999,\"candidatesTokenCount\":-4}}",
                           &out, &u, &err), LLMUX_OK);
    assert_int_equal(u.prompt_tokens, -1);
    assert_int_equal(u.completion_tokens, -1);
    assert_non_null(strstr(out, "\"prompt_tokens\":null,\"completion_tokens\":null,\"total_tokens\":null"));
    free(out);
}

/* ------------------------------------------------------------------ errors */

static int classify(long status, const char *body, lx_err *err)
{
    lx_config *cfg = load();
    lx_provider_cfg *p = &cfg->providers[0];
    lx_http_response resp;
    memset(&resp, 0, sizeof resp);
    resp.status = status;
    resp.retry_after_ms = -1;
    llmux__buf_puts(&resp.body, body);
    memset(err, 0, sizeof *err);
    int rc = p->ops->classify_error(p, &resp, err);
    llmux__http_response_free(&resp);
    llmux__config_unref(cfg);
    return rc;
}

static void test_error_classes(void **state)
{
    lx_err err;
    assert_int_equal(classify(400, "{\"error\":{\"code\":400,\"message\":\"API key not valid. Please pass "
                                   "a valid API key. (" KEY ")\",\"status\":\"INVALID_ARGUMENT\",\"details\":"
                                   "[{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\",\"reason\":"
                                   "\"API_KEY_INVALID\",\"domain\":\"googleapis.com\"}]}}", &err),
                     LLMUX_ERR_AUTH);
    assert_string_equal(err.provider_code, "API_KEY_INVALID");
    assert_null(strstr(err.msg, KEY)); /* the key is masked */
    assert_int_equal(err.http_status, 400);
    assert_int_equal(classify(400, "{\"error\":{\"code\":400,\"message\":\"The input token count (1200000) "
                                   "exceeds the maximum number of tokens allowed (1048576).\",\"status\":"
                                   "\"INVALID_ARGUMENT\"}}", &err), LLMUX_ERR_CONTEXT_WINDOW);
    assert_int_equal(classify(400, "{\"error\":{\"code\":400,\"message\":\"bad\",\"status\":"
                                   "\"INVALID_ARGUMENT\"}}", &err), LLMUX_ERR_BAD_REQUEST);
    assert_string_equal(err.msg, "HTTP 400 (INVALID_ARGUMENT): bad");
    assert_int_equal(classify(403, "{\"error\":{\"code\":403,\"message\":\"denied\",\"status\":"
                                   "\"PERMISSION_DENIED\"}}", &err), LLMUX_ERR_PERMISSION);
    assert_int_equal(classify(404, "{\"error\":{\"code\":404,\"message\":\"models/x is not found\","
                                   "\"status\":\"NOT_FOUND\"}}", &err), LLMUX_ERR_NOT_FOUND);
    assert_int_equal(classify(429, "{\"error\":{\"code\":429,\"message\":\"quota\",\"status\":"
                                   "\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":\"type.googleapis.com/"
                                   "google.rpc.QuotaFailure\"},{\"@type\":\"type.googleapis.com/google.rpc."
                                   "RetryInfo\",\"retryDelay\":\"37s\"}]}}", &err), LLMUX_ERR_RATE_LIMIT);
    assert_string_equal(err.msg, "HTTP 429 (RESOURCE_EXHAUSTED): quota (retry in 37000 ms)");
    assert_true(err.has_retry_after); /* the engine records it as the attempt's retry_after_ms */
    assert_int_equal(err.retry_after_ms, 37000);
    for (long s = 500; s <= 504; s += 2) {
        assert_int_equal(classify(s, "{\"error\":{\"code\":503,\"message\":\"overloaded\",\"status\":"
                                     "\"UNAVAILABLE\"}}", &err), LLMUX_ERR_PROVIDER);
    }
    /* the unstreamed error of a stream request comes wrapped in [ ] */
    assert_int_equal(classify(429, "[{\"error\":{\"code\":429,\"message\":\"q\",\"status\":"
                                   "\"RESOURCE_EXHAUSTED\"}}]", &err), LLMUX_ERR_RATE_LIMIT);
    /* not JSON: the start of the body, sanitised */
    assert_int_equal(classify(502, "<html>bad gateway</html>", &err), LLMUX_ERR_PROVIDER);
    assert_string_equal(err.msg, "HTTP 502: <html>bad gateway</html>");
}

/* --------------------------------------------------------------- streaming */

typedef struct collect {
    lx_buf all;     /* every chunk, one per line */
    lx_assembler as;
    int chunks;
} collect;

static int sink(void *ctx, const char *json, size_t len, cJSON *parsed)
{
    collect *c = ctx;
    char *n = normalise_created(json);
    llmux__buf_puts(&c->all, n);
    llmux__buf_puts(&c->all, "\n");
    free(n);
    lx_err err;
    assert_int_equal(llmux__assembler_add(&c->as, parsed, &err), LLMUX_OK);
    c->chunks++;
    return 0;
}

static const char *SSE =
    "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"Let me \"}]},"
    "\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":100},\"modelVersion\":\"gemini-x-001\","
    "\"responseId\":\"r1\"}\r\n\r\n"
    "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"thinking...\","
    "\"thought\":true},{\"text\":\"check.\"}]},\"index\":0}],\"modelVersion\":\"gemini-x-001\","
    "\"responseId\":\"r1\"}\n\n"
    "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":"
    "\"get_weather\",\"args\":{\"city\":\"Paris\"}},\"thoughtSignature\":\"c2lnMQ==\"},{\"functionCall\":"
    "{\"name\":\"get_time\",\"args\":{}}}]},\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":"
    "{\"promptTokenCount\":100,\"candidatesTokenCount\":20,\"totalTokenCount\":135,"
    "\"cachedContentTokenCount\":60,\"thoughtsTokenCount\":15},\"modelVersion\":\"gemini-x-001\","
    "\"responseId\":\"r1\"}\r\n\r\n";

static const char *SSE_WANT =
    "{\"id\":\"chatcmpl-r1\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"gemini-x-001\","
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Let me \"},\"logprobs\":null,"
    "\"finish_reason\":null}]}\n"
    "{\"id\":\"chatcmpl-r1\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"gemini-x-001\","
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"check.\"},\"logprobs\":null,\"finish_reason\":null}]}\n"
    "{\"id\":\"chatcmpl-r1\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"gemini-x-001\","
    "\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_73b312191490e495__ts__"
    "c2lnMQ==\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":"
    "\"{\\\"city\\\":\\\"Paris\\\"}\"}},{\"index\":1,\"id\":\"call_61a3d3d4d6b8767d\",\"type\":\"function\","
    "\"function\":{\"name\":\"get_time\",\"arguments\":\"{}\"}}]},\"logprobs\":null,\"finish_reason\":"
    "\"tool_calls\"}]}\n"
    "{\"id\":\"chatcmpl-r1\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"gemini-x-001\","
    "\"choices\":[],\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":35,\"total_tokens\":135,"
    "\"prompt_tokens_details\":{\"cached_tokens\":60,\"cache_write_tokens\":0},"
    "\"completion_tokens_details\":{\"reasoning_tokens\":15}}}\n";

/* Feeds `data` in pieces of `step` bytes (0: split once at `split`). */
static long stream_cap; /* transport.max_response_bytes of run_stream's config, 0: default */

static int run_stream(const char *data, size_t step, size_t split, collect *c, lx_err *err)
{
    lx_config *cfg = load_capped(stream_cap);
    lx_provider_cfg *p = &cfg->providers[0];
    void *st = p->ops->stream_new(p);
    memset(c, 0, sizeof *c);
    llmux__assembler_init(&c->as, 1 << 20);
    size_t len = strlen(data), pos = 0;
    int rc = LLMUX_OK;
    while (pos < len && rc == LLMUX_OK) {
        size_t n = step ? step : (pos == 0 ? split : len - pos);
        if (n > len - pos)
            n = len - pos;
        rc = p->ops->stream_feed(st, data + pos, n, sink, c, err);
        pos += n;
    }
    if (rc == LLMUX_OK)
        rc = p->ops->stream_finish(st, err);
    p->ops->stream_free(st);
    llmux__config_unref(cfg);
    return rc;
}

static void test_stream_golden_every_split(void **state)
{
    collect c;
    lx_err err;
    assert_int_equal(run_stream(SSE, 1 << 20, 0, &c, &err), LLMUX_OK);
    assert_string_equal(c.all.data, SSE_WANT);
    /* the assembled stream is the unstreamed answer */
    char *assembled = llmux__assembler_finish(&c.as);
    char *a = normalise_created(assembled);
    char *unstreamed;
    lx_usage u;
    assert_int_equal(parse(FC_BODY, &unstreamed, &u, &err), LLMUX_OK);
    cJSON *ja = cJSON_Parse(a), *jb = cJSON_Parse(unstreamed);
    if (!cJSON_Compare(ja, jb, 1))
        fail_msg("assembled %s\nunstreamed %s", a, unstreamed);
    cJSON_Delete(ja);
    cJSON_Delete(jb);
    assert_int_equal(c.as.u.prompt_tokens, u.prompt_tokens);
    assert_int_equal(c.as.u.completion_tokens, u.completion_tokens);
    assert_int_equal(c.as.u.cached_tokens, u.cached_tokens);
    assert_int_equal(c.as.u.reasoning_tokens, u.reasoning_tokens);
    free(a);
    free(assembled);
    free(unstreamed);
    llmux__buf_free(&c.all);
    llmux__assembler_free(&c.as);

    assert_int_equal(run_stream(SSE, 1, 0, &c, &err), LLMUX_OK);
    assert_string_equal(c.all.data, SSE_WANT);
    llmux__buf_free(&c.all);
    llmux__assembler_free(&c.as);
    for (size_t s = 1; s < strlen(SSE); s++) {
        assert_int_equal(run_stream(SSE, 0, s, &c, &err), LLMUX_OK);
        if (strcmp(c.all.data, SSE_WANT))
            fail_msg("split at %zu:\n%s", s, c.all.data);
        llmux__buf_free(&c.all);
        llmux__assembler_free(&c.as);
    }
}

static void test_stream_errors(void **state)
{
    collect c;
    lx_err err;
    /* an error object in the stream ends it with its class */
    assert_int_equal(run_stream("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}]}\n\n"
                                "data: {\"error\":{\"code\":429,\"message\":\"quota\",\"status\":"
                                "\"RESOURCE_EXHAUSTED\"}}\n\n", 1, 0, &c, &err),
                     LLMUX_ERR_RATE_LIMIT);
    assert_int_equal(c.chunks, 1);
    assert_string_equal(err.provider_code, "RESOURCE_EXHAUSTED");
    llmux__buf_free(&c.all);
    llmux__assembler_free(&c.as);
    assert_int_equal(run_stream("data: {\"error\":{\"code\":503,\"message\":\"over\",\"status\":"
                                "\"UNAVAILABLE\"}}\n\n", 1, 0, &c, &err), LLMUX_ERR_PROVIDER);
    llmux__buf_free(&c.all);
    llmux__assembler_free(&c.as);
    /* cut before the finishReason */
    assert_int_equal(run_stream("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}]}}]}\n\n",
                                3, 0, &c, &err), LLMUX_ERR_CONNECT);
    assert_string_equal(err.msg, "the stream ended before its finishReason (after 1 events)");
    llmux__buf_free(&c.all);
    llmux__assembler_free(&c.as);
    /* a blocked prompt */
    assert_int_equal(run_stream("data: {\"promptFeedback\":{\"blockReason\":\"SAFETY\"}}\n\n", 1, 0, &c,
                                &err), LLMUX_ERR_CONTENT_FILTER);
    llmux__buf_free(&c.all);
    llmux__assembler_free(&c.as);
    /* invalid UTF-8 in an event */
    assert_int_equal(run_stream("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\xc3\x28\"}]}}]}\n\n",
                                1, 0, &c, &err), LLMUX_ERR_BAD_RESPONSE);
    assert_non_null(strstr(err.msg, "UTF-8"));
    llmux__buf_free(&c.all);
    llmux__assembler_free(&c.as);
    /* events that are not Gemini's */
    assert_int_equal(run_stream("data: {\"id\":\"x\",\"choices\":[]}\n\n", 1, 0, &c, &err),
                     LLMUX_ERR_BAD_RESPONSE);
    assert_string_equal(err.msg, "stream event 1 is not a GenerateContentResponse (no candidates, "
                                 "usageMetadata or promptFeedback)");
    llmux__buf_free(&c.all);
    llmux__assembler_free(&c.as);
    /* a stream that never ends is cut at 4 x max_response_bytes, even without text */
    lx_buf endless = LX_BUF_INIT;
    while (endless.len <= 4096)
        llmux__buf_puts(&endless, "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"\"}]}}]}\n\n");
    stream_cap = 1024;
    assert_int_equal(run_stream(endless.data, 7, 0, &c, &err), LLMUX_ERR_BAD_RESPONSE);
    assert_string_equal(err.msg, "the stream exceeds 4096 bytes");
    stream_cap = 0;
    llmux__buf_free(&endless);
    llmux__buf_free(&c.all);
    llmux__assembler_free(&c.as);
    /* plain JSON instead of SSE (a stream requested without alt=sse) */
    assert_int_equal(run_stream("[{\"error\":{\"code\":400,\"message\":\"m\",\"status\":"
                                "\"INVALID_ARGUMENT\"}}]", 2, 0, &c, &err), LLMUX_ERR_BAD_REQUEST);
    llmux__buf_free(&c.all);
    llmux__assembler_free(&c.as);
}

/* ------------------------------------------------------- through llmux-sim */

static llmux *open_sim(const char *dep, const char *extra_provider_json)
{
    char cfg[2048], err[512];
    snprintf(cfg, sizeof cfg,
             "{\"providers\":{\"g\":{\"type\":\"gemini\",\"base_url\":\"%s/%s/v1beta\","
             "\"api_key_env\":\"LLMUX_TEST_GEMINI_KEY\"%s}},"
             "\"models\":{\"m\":{\"targets\":[{\"provider\":\"g\",\"model\":\"gemini-sim\"}]},"
             "\"cached\":{\"targets\":[{\"provider\":\"g\",\"model\":\"gemini-cached\"}]},"
             "\"blocked\":{\"targets\":[{\"provider\":\"g\",\"model\":\"gemini-blocked\"}]},"
             "\"safety\":{\"targets\":[{\"provider\":\"g\",\"model\":\"gemini-safety\"}]},"
             "\"overloaded\":{\"targets\":[{\"provider\":\"g\",\"model\":\"gemini-overloaded\"}]}}}",
             SIM.url, dep, extra_provider_json ? extra_provider_json : "");
    setenv("LLMUX_TEST_GEMINI_KEY", KEY, 1);
    llmux *gw = NULL;
    if (llmux_open(&gw, cfg, err, sizeof err) != LLMUX_OK)
        fail_msg("open: %s", err);
    return gw;
}

static int count_chunks(const char *json, size_t len, void *payload)
{
    ++*(int *)payload;
    return 0;
}

/* Calls streamed and not; both must succeed and agree; returns the unstreamed JSON. */
static cJSON *both_ways(llmux *gw, const char *req, int want_chunks)
{
    llmux_result *r, *rs;
    if (llmux_chat(gw, req, NULL, &r) != LLMUX_OK)
        fail_msg("%s", llmux_result_trace_json(r));
    int chunks = 0;
    if (llmux_chat_stream(gw, req, NULL, count_chunks, &chunks, &rs) != LLMUX_OK)
        fail_msg("stream: %s", llmux_result_trace_json(rs));
    assert_int_equal(chunks, want_chunks);
    cJSON *a = cJSON_Parse(llmux_result_json(r)), *b = cJSON_Parse(llmux_result_json(rs));
    cJSON *ca = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(a, "choices"), 0), "message");
    cJSON *cb = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "choices"), 0), "message");
    char *sa = cJSON_PrintUnformatted(ca), *sb = cJSON_PrintUnformatted(cb);
    assert_string_equal(sa, sb);
    free(sa);
    free(sb);
    const char *fa = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(a, "choices"), 0), "finish_reason")->valuestring;
    const char *fb = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(b, "choices"), 0), "finish_reason")->valuestring;
    assert_string_equal(fa, fb);
    sa = cJSON_PrintUnformatted(cJSON_GetObjectItem(a, "usage"));
    sb = cJSON_PrintUnformatted(cJSON_GetObjectItem(b, "usage"));
    assert_string_equal(sa, sb);
    free(sa);
    free(sb);
    assert_int_equal(llmux_result_prompt_tokens(r), llmux_result_prompt_tokens(rs));
    assert_int_equal(llmux_result_completion_tokens(r), llmux_result_completion_tokens(rs));
    cJSON_Delete(b);
    llmux_result_free(r);
    llmux_result_free(rs);
    return a;
}

/* The answer's usage object, as the OpenAI shape prints it. */
static void usage_is(cJSON *resp, long prompt, long completion, long cached, long reasoning)
{
    char want[512];
    snprintf(want, sizeof want, "{\"prompt_tokens\":%ld,\"completion_tokens\":%ld,\"total_tokens\":%ld,"
             "\"prompt_tokens_details\":{\"cached_tokens\":%ld,\"cache_write_tokens\":0},"
             "\"completion_tokens_details\":{\"reasoning_tokens\":%ld}}",
             prompt, completion, prompt + completion, cached, reasoning);
    char *u = cJSON_PrintUnformatted(cJSON_GetObjectItem(resp, "usage"));
    assert_string_equal(u, want);
    free(u);
}

static const char *msg_content(cJSON *resp)
{
    cJSON *m = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(resp, "choices"), 0), "message");
    cJSON *c = cJSON_GetObjectItem(m, "content");
    return cJSON_IsString(c) ? c->valuestring : NULL;
}

static void test_sim_plain_image_json(void **state)
{
    llmux *gw = open_sim("gplain", NULL);
    cJSON *a = both_ways(gw, "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
                             "{\"role\":\"user\",\"content\":\"hello gemini world\"}]}", 4);
    assert_string_equal(msg_content(a), "[gplain] hello gemini world");
    usage_is(a, 5, 4, 0, 0);
    cJSON_Delete(a);
    /* an image rides along as inlineData */
    a = both_ways(gw, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                      "\"text\":\"what is it\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
                      "\"data:image/png;base64,iVBORw0KGgo=\"}}]}]}", 4);
    assert_string_equal(msg_content(a), "[gplain] what is it");
    cJSON_Delete(a);
    char *last = sim_get(&SIM, "gplain");
    assert_non_null(strstr(last, "inlineData"));
    free(last);
    /* json_schema output */
    a = both_ways(gw, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x y\"}],"
                      "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"e\","
                      "\"schema\":{\"type\":\"object\",\"properties\":{\"echo\":{\"type\":\"string\"}}}}}}", 2);
    assert_string_equal(msg_content(a), "{\"echo\":\"x y\"}");
    cJSON_Delete(a);
    /* cached usage, with thoughts as reasoning tokens */
    a = both_ways(gw, "{\"model\":\"cached\",\"messages\":[{\"role\":\"user\",\"content\":"
                      "\"a prompt of forty bytes, more or less...\"}]}", 9);
    usage_is(a, 10, 12, 5, 3);
    cJSON_Delete(a);
    llmux_close(gw);
}

static void test_sim_function_call_round_trip(void **state)
{
    llmux *gw = open_sim("gtools", NULL);
    const char *tools = "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"lookup\","
                        "\"parameters\":{\"type\":\"object\",\"properties\":{\"echo\":{\"type\":\"string\"}}}}}]";
    char req[2048];
    snprintf(req, sizeof req, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"find it\"}],"
                              "%s,\"tool_choice\":\"required\"}", tools);
    cJSON *a = both_ways(gw, req, 1);
    cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItem(a, "choices"), 0);
    assert_string_equal(cJSON_GetObjectItem(ch, "finish_reason")->valuestring, "tool_calls");
    cJSON *tc = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(ch, "message"), "tool_calls"), 0);
    const char *id = cJSON_GetObjectItem(tc, "id")->valuestring;
    assert_non_null(strstr(id, "__ts__c2ltLXNpZwlookup=="));
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(tc, "function"), "arguments")->valuestring,
                        "{\"echo\":\"find it\"}");
    /* the next turn: the signature goes back, the result finds its name */
    char turn[4096];
    snprintf(turn, sizeof turn,
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"find it\"},"
             "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"%s\",\"type\":\"function\","
             "\"function\":{\"name\":\"lookup\",\"arguments\":\"{\\\"echo\\\":\\\"find it\\\"}\"}}]},"
             "{\"role\":\"tool\",\"tool_call_id\":\"%s\",\"content\":\"found\"},"
             "{\"role\":\"user\",\"content\":\"thanks\"}],%s}", id, id, tools);
    cJSON *b = both_ways(gw, turn, 2);
    assert_string_equal(msg_content(b), "[gtools] thanks");
    cJSON_Delete(b);
    /* without the signature the API refuses the turn */
    snprintf(turn, sizeof turn,
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"find it\"},"
             "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_x\",\"type\":\"function\","
             "\"function\":{\"name\":\"lookup\",\"arguments\":\"{}\"}}]},"
             "{\"role\":\"tool\",\"tool_call_id\":\"call_x\",\"content\":\"found\"}],%s}", tools);
    llmux_result *r;
    assert_int_equal(llmux_chat(gw, turn, NULL, &r), LLMUX_ERR_BAD_REQUEST);
    assert_non_null(strstr(llmux_result_error(r), "missing a thought_signature"));
    llmux_result_free(r);
    cJSON_Delete(a);
    llmux_close(gw);
}

static void test_sim_safety(void **state)
{
    llmux *gw = open_sim("gsafe", NULL);
    const char *req = "{\"model\":\"blocked\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    llmux_result *r;
    assert_int_equal(llmux_chat(gw, req, NULL, &r), LLMUX_ERR_CONTENT_FILTER);
    assert_non_null(strstr(llmux_result_error(r), "blockReason SAFETY"));
    llmux_result_free(r);
    int chunks = 0;
    assert_int_equal(llmux_chat_stream(gw, req, NULL, count_chunks, &chunks, &r), LLMUX_ERR_CONTENT_FILTER);
    assert_int_equal(chunks, 0);
    llmux_result_free(r);
    cJSON *a = both_ways(gw, "{\"model\":\"safety\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 2);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(a, "choices"), 0),
                                            "finish_reason")->valuestring, "content_filter");
    cJSON_Delete(a);
    /* an error inside a 200 stream */
    chunks = 0;
    assert_int_equal(llmux_chat_stream(gw, "{\"model\":\"overloaded\",\"messages\":[{\"role\":\"user\","
                                           "\"content\":\"one two three\"}]}", NULL, count_chunks, &chunks, &r),
                     LLMUX_ERR_PROVIDER);
    assert_int_equal(chunks, 1);
    assert_non_null(strstr(llmux_result_error(r), "UNAVAILABLE"));
    llmux_result_free(r);
    llmux_close(gw);
}

static void test_sim_error_classes(void **state)
{
    static const struct {
        int status;
        int want;
        const char *code;
    } t[] = {{400, LLMUX_ERR_BAD_REQUEST, "INVALID_ARGUMENT"}, {403, LLMUX_ERR_PERMISSION, "PERMISSION_DENIED"},
             {404, LLMUX_ERR_NOT_FOUND, "NOT_FOUND"},         {429, LLMUX_ERR_RATE_LIMIT, "RESOURCE_EXHAUSTED"},
             {500, LLMUX_ERR_PROVIDER, "INTERNAL"},           {503, LLMUX_ERR_PROVIDER, "UNAVAILABLE"},
             {504, LLMUX_ERR_PROVIDER, "DEADLINE_EXCEEDED"}};
    llmux *gw = open_sim("gerr", NULL);
    const char *req = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        for (int stream = 0; stream < 2; stream++) {
            char set[256];
            snprintf(set, sizeof set, "{\"faults\":[{\"type\":\"status\",\"status\":%d,\"retry_after\":\"3\"}]}",
                     t[i].status);
            assert_int_equal(sim_set(&SIM, "gerr", set), 200);
            llmux_result *r;
            int chunks = 0;
            int rc = stream ? llmux_chat_stream(gw, req, NULL, count_chunks, &chunks, &r)
                            : llmux_chat(gw, req, NULL, &r);
            if (rc != t[i].want)
                fail_msg("%d (stream %d): %d %s", t[i].status, stream, rc, llmux_result_trace_json(r));
            assert_int_equal(llmux_result_http_status(r), t[i].status);
            assert_non_null(strstr(llmux_result_trace_json(r), t[i].code));
            if (t[i].status == 429)
                assert_non_null(strstr(llmux_result_error(r), "(retry in 3000 ms)"));
            llmux_result_free(r);
        }
    }
    /* context window, with Gemini's words */
    assert_int_equal(sim_set(&SIM, "gerr", "{\"faults\":[{\"type\":\"status\",\"status\":400,\"body\":"
                                           "{\"error\":{\"code\":400,\"message\":\"The input token count "
                                           "(2000000) exceeds the maximum number of tokens allowed (1048576).\","
                                           "\"status\":\"INVALID_ARGUMENT\"}}}]}"), 200);
    llmux_result *r;
    assert_int_equal(llmux_chat(gw, req, NULL, &r), LLMUX_ERR_CONTEXT_WINDOW);
    llmux_result_free(r);
    llmux_close(gw);
    /* a wrong key: 400 API_KEY_INVALID is an auth error */
    assert_int_equal(sim_set(&SIM, "gkey", "{\"require_key\":\"the-right-key\"}"), 200);
    gw = open_sim("gkey", NULL);
    assert_int_equal(llmux_chat(gw, req, NULL, &r), LLMUX_ERR_AUTH);
    assert_null(strstr(llmux_result_trace_json(r), KEY));
    assert_non_null(strstr(llmux_result_trace_json(r), "API_KEY_INVALID"));
    llmux_result_free(r);
    llmux_close(gw);
    setenv("LLMUX_TEST_GEMINI_KEY", "the-right-key", 1);
    char cfg[1024], err[256];
    snprintf(cfg, sizeof cfg, "{\"providers\":{\"g\":{\"type\":\"gemini\",\"base_url\":\"%s/gkey/v1beta\","
                              "\"api_key_env\":\"LLMUX_TEST_GEMINI_KEY\"}},\"models\":{\"m\":{\"targets\":"
                              "[{\"provider\":\"g\",\"model\":\"gemini-sim\"}]}}}", SIM.url);
    assert_int_equal(llmux_open(&gw, cfg, err, sizeof err), LLMUX_OK);
    assert_int_equal(llmux_chat(gw, req, NULL, &r), LLMUX_OK);
    llmux_result_free(r);
    llmux_close(gw);
    setenv("LLMUX_TEST_GEMINI_KEY", KEY, 1);
}

/* The simulator's hostile answers, through a gemini target: refused with the
 * right class, the key never quoted back. */
static void test_sim_hostile(void **state)
{
    static const struct {
        const char *fault;
        int want;
        const char *msg, *stream_msg;
    } t[] = {
        {"{\"type\":\"hostile\",\"kind\":\"invalid_utf8\"}", LLMUX_ERR_BAD_RESPONSE,
         "not valid UTF-8", "not valid UTF-8"},
        {"{\"type\":\"hostile\",\"kind\":\"deep_json\",\"depth\":5000}", LLMUX_ERR_BAD_RESPONSE,
         "not valid JSON", "not valid JSON"},
        {"{\"type\":\"hostile\",\"kind\":\"endless_body\"}", LLMUX_ERR_BAD_RESPONSE, "exceeds",
         "stream event 1 is not a GenerateContentResponse"},
        {"{\"type\":\"hostile\",\"kind\":\"echo_key\",\"offset\":300}", LLMUX_ERR_AUTH, "***",
         "***"},
    };
    llmux *gw = open_sim("ghost", NULL);
    const char *req = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        for (int stream = 0; stream < 2; stream++) {
            char set[256];
            snprintf(set, sizeof set, "{\"faults\":[%s]}", t[i].fault);
            assert_int_equal(sim_set(&SIM, "ghost", set), 200);
            llmux_result *r;
            int chunks = 0;
            int rc = stream ? llmux_chat_stream(gw, req, NULL, count_chunks, &chunks, &r)
                            : llmux_chat(gw, req, NULL, &r);
            if (rc != t[i].want || !strstr(llmux_result_error(r), stream ? t[i].stream_msg : t[i].msg))
                fail_msg("%s (stream %d): %d %s", t[i].fault, stream, rc, llmux_result_error(r));
            assert_null(strstr(llmux_result_trace_json(r), KEY));
            assert_null(strstr(llmux_result_error(r), KEY + 8));
            llmux_result_free(r);
        }
    }
    llmux_close(gw);
}

/* ------------------------------------- the simulator's Gemini API, raw HTTP */

#include <curl/curl.h>

typedef struct raw {
    long status;
    lx_buf body;
} raw;

static size_t raw_cb(char *p, size_t sz, size_t n, void *ud)
{
    return llmux__buf_append(&((raw *)ud)->body, p, sz * n) ? 0 : sz * n;
}

/* POST path on the simulator with a JSON body and an optional key. */
static raw sim_post(const char *path, const char *body, const char *key)
{
    raw r = {0, LX_BUF_INIT};
    char url[512], hdr[256];
    snprintf(url, sizeof url, "%s%s", SIM.url, path);
    CURL *h = curl_easy_init();
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
    if (key) {
        snprintf(hdr, sizeof hdr, "x-goog-api-key: %s", key);
        hl = curl_slist_append(hl, hdr);
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, raw_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return r;
}

static void expect_raw(const char *path, const char *body, const char *key, long status,
                       const char *want)
{
    raw r = sim_post(path, body, key);
    if (r.status != status || strcmp(r.body.data ? r.body.data : "", want))
        fail_msg("%s %s:\n got %ld %s\nwant %ld %s", path, body, r.status, r.body.data, status, want);
    llmux__buf_free(&r.body);
}

static void test_sim_gemini_wire(void **state)
{
    const char *gen = "/gwire/v1beta/models/gemini-w:generateContent";
    expect_raw(gen, "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"hi there\"}]}]}", NULL, 200,
               "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"[gwire] hi there\"}]},"
               "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":2,"
               "\"candidatesTokenCount\":3,\"totalTokenCount\":5},\"modelVersion\":\"gemini-w\","
               "\"responseId\":\"sim-gwire-1\"}");
    expect_raw(gen, "{\"contents\":[{\"role\":\"assistant\",\"parts\":[{\"text\":\"x\"}]}]}", NULL, 400,
               "{\"error\":{\"code\":400,\"message\":\"Please use a valid role: user, model.\","
               "\"status\":\"INVALID_ARGUMENT\"}}");
    expect_raw(gen, "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]},{\"role\":\"model\","
                    "\"parts\":[{\"functionCall\":{\"name\":\"f\",\"args\":{}},\"thoughtSignature\":"
                    "\"c2ltLXNpZwf==\"}]},{\"role\":\"user\",\"parts\":[{\"functionResponse\":{\"name\":"
                    "\"g\",\"response\":{}}}]}]}", NULL, 400,
               "{\"error\":{\"code\":400,\"message\":\"Please ensure that the number of function response "
               "parts is equal to the number of function call parts of the function call turn "
               "(functionResponse g).\",\"status\":\"INVALID_ARGUMENT\"}}");
    expect_raw("/gwire/v1beta/models/gemini-w:streamGenerateContent",
               "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}]}", NULL, 400,
               "{\"error\":{\"code\":400,\"message\":\"llmux-sim streams only with ?alt=sse\","
               "\"status\":\"INVALID_ARGUMENT\"}}");
    expect_raw("/gwire/v1beta/models/gemini-w:streamGenerateContent?alt=sse",
               "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"a\"}]}]}", NULL, 200,
               "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"[gwire] \"}]},"
               "\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":1,\"candidatesTokenCount\":0,"
               "\"totalTokenCount\":1},\"modelVersion\":\"gemini-w\",\"responseId\":\"sim-gwire-4\"}\r\n\r\n"
               "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"a\"}]},"
               "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":1,"
               "\"candidatesTokenCount\":2,\"totalTokenCount\":3},\"modelVersion\":\"gemini-w\","
               "\"responseId\":\"sim-gwire-4\"}\r\n\r\n");
    /* the key, and Gemini's error shapes for faults */
    assert_int_equal(sim_set(&SIM, "gwire", "{\"require_key\":\"k1\",\"faults\":[{\"type\":\"status\","
                                            "\"status\":429,\"retry_after\":\"12\"}]}"), 200);
    expect_raw(gen, "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}]}", "k2", 400,
               "{\"error\":{\"code\":400,\"message\":\"API key not valid. Please pass a valid API key.\","
               "\"status\":\"INVALID_ARGUMENT\",\"details\":[{\"@type\":\"type.googleapis.com/google.rpc."
               "ErrorInfo\",\"reason\":\"API_KEY_INVALID\",\"domain\":\"googleapis.com\"}]}}");
    expect_raw(gen, "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}]}", "k1", 429,
               "{\"error\":{\"code\":429,\"message\":\"Resource has been exhausted (e.g. check quota). "
               "(simulated)\",\"status\":\"RESOURCE_EXHAUSTED\",\"details\":[{\"@type\":\"type.googleapis."
               "com/google.rpc.RetryInfo\",\"retryDelay\":\"12s\"}]}}");
    expect_raw(gen, "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"x\"}]}]}", "k1", 200,
               "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"[gwire] x\"}]},"
               "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":1,"
               "\"candidatesTokenCount\":2,\"totalTokenCount\":3},\"modelVersion\":\"gemini-w\","
               "\"responseId\":\"sim-gwire-3\"}");
    char *st = sim_get(&SIM, "gwire");
    assert_non_null(strstr(st, "\"authorization\":\"Bearer k1\""));
    free(st);
}

static int setup(void **state)
{
    return sim_start(&SIM);
}

static int teardown(void **state)
{
    sim_stop(&SIM);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_plain_and_generation_config),
        cmocka_unit_test(test_request_tools_and_tool_turns),
        cmocka_unit_test(test_request_images_and_formats),
        cmocka_unit_test(test_request_openapi_schemas),
        cmocka_unit_test(test_response_golden),
        cmocka_unit_test(test_finish_reason_table),
        cmocka_unit_test(test_error_classes),
        cmocka_unit_test(test_stream_golden_every_split),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_sim_plain_image_json),
        cmocka_unit_test(test_sim_function_call_round_trip),
        cmocka_unit_test(test_sim_safety),
        cmocka_unit_test(test_sim_error_classes),
        cmocka_unit_test(test_sim_hostile),
        cmocka_unit_test(test_sim_gemini_wire),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
