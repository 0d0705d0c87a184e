/* The Bedrock adapter: OpenAI request in -> exact Converse JSON out, with the
 * SigV4 headers over it; Converse answers and ConverseStream event streams in
 * -> exact OpenAI JSON and chunks out (streams fed whole, byte at a time and
 * split at every position); errors from x-amzn-ErrorType and the body, and
 * from exception frames. */
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
#include "providers/bedrock.h"
#include "providers/provider.h"
#include "wire/eventstream.h"
#include "wire/sigv4.h"

#define TEST_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static lx_config *load(const char *provider_json)
{
    setenv("LLMUX_TEST_AWS_AK", "AKIDEXAMPLE", 1);
    setenv("LLMUX_TEST_AWS_SK", TEST_SECRET, 1);
    setenv("LLMUX_TEST_AWS_TOKEN", "session-token-1", 1);
    setenv("LLMUX_TEST_BEDROCK_KEY", "bedrock-api-key-123456", 1);
    char json[1024];
    snprintf(json, sizeof json,
             "{\"providers\":{\"b\":%s},"
             "\"models\":{\"m\":{\"targets\":[{\"provider\":\"b\",\"model\":\"x\"}]}}}",
             provider_json);
    lx_config *cfg = NULL;
    lx_err err = {0};
    int rc = llmux__config_parse(&cfg, json, strlen(json), &err);
    if (rc)
        fail_msg("config: %s", err.msg);
    return cfg;
}

#define SIGV4_PROVIDER                                                                             \
    "{\"type\":\"bedrock\",\"region\":\"us-east-1\",\"access_key_id_env\":\"LLMUX_TEST_AWS_AK\","  \
    "\"secret_access_key_env\":\"LLMUX_TEST_AWS_SK\",\"session_token_env\":\"LLMUX_TEST_AWS_NONE\"}"

static const char *header(const lx_http_request *r, const char *name)
{
    return llmux__http_request_header(r, name);
}

static int build(lx_config *cfg, const char *model, const char *raw, int stream,
                 lx_http_request *hr, lx_err *err)
{
    lx_provider_cfg *p = &cfg->providers[0];
    lx_request req = {0};
    req.n_members = -1;
    req.raw = raw;
    req.raw_len = strlen(raw);
    llmux__http_request_init(hr);
    memset(err, 0, sizeof *err);
    int rc = llmux__bedrock_build_at(p, model, &req, stream, hr, 1440938160, err);
    llmux__request_free(&req);
    return rc;
}

static void expect_body(const char *raw, const char *want)
{
    lx_config *cfg = load(SIGV4_PROVIDER);
    lx_http_request hr;
    lx_err err;
    int rc = build(cfg, "m1", raw, 0, &hr, &err);
    if (rc)
        fail_msg("build: %d %s", rc, err.msg);
    if (strcmp(hr.body, want) != 0)
        fail_msg("\n got: %s\nwant: %s", hr.body, want);
    llmux__http_request_free(&hr);
    llmux__config_unref(cfg);
}

static void expect_refused(const char *raw, int want, const char *msg_part)
{
    lx_config *cfg = load(SIGV4_PROVIDER);
    lx_http_request hr;
    lx_err err;
    assert_int_equal(build(cfg, "m1", raw, 0, &hr, &err), want);
    if (!strstr(err.msg, msg_part))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, msg_part);
    llmux__http_request_free(&hr);
    llmux__config_unref(cfg);
}

/* ------------------------------------------------------------ requests */

static void test_request_golden(void **state)
{
    (void)state;
    expect_body(
        "{\"model\":\"m\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"Be brief.\"},"
        "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"Use tools.\"}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What is this?\"},"
        "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}}]},"
        "{\"role\":\"user\",\"content\":\"And the weather?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":"
        "\"function\",\"function\":{\"name\":\"weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"sunny\"},"
        "{\"role\":\"user\",\"content\":\"\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"weather\",\"description\":\"Weather\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}],"
        "\"tool_choice\":\"auto\",\"max_tokens\":100,\"max_completion_tokens\":50,"
        "\"temperature\":1.5,\"top_p\":0.9,\"stop\":\"END\",\"top_k\":40}",
        "{\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"text\":\"What is this?\"},{\"image\":{\"format\":\"png\","
        "\"source\":{\"bytes\":\"iVBORw0KGgo=\"}}},{\"text\":\"And the weather?\"}]},"
        "{\"role\":\"assistant\",\"content\":[{\"toolUse\":{\"toolUseId\":\"call_1\",\"name\":\"weather\","
        "\"input\":{\"city\":\"Paris\"}}}]},"
        "{\"role\":\"user\",\"content\":[{\"toolResult\":{\"toolUseId\":\"call_1\",\"content\":"
        "[{\"text\":\"sunny\"}]}}]}],"
        "\"system\":[{\"text\":\"Be brief.\"},{\"text\":\"Use tools.\"}],"
        "\"toolConfig\":{\"tools\":[{\"toolSpec\":{\"name\":\"weather\",\"description\":\"Weather\","
        "\"inputSchema\":{\"json\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}}],"
        "\"toolChoice\":{\"auto\":{}}},"
        "\"inferenceConfig\":{\"maxTokens\":50,\"temperature\":1,\"topP\":0.9,\"stopSequences\":[\"END\"]},"
        "\"additionalModelRequestFields\":{\"top_k\":40}}");
}

static void test_request_tool_choice_rows(void **state)
{
    (void)state;
#define TOOLS "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]"
#define HI "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"
#define HI_BODY "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"}]}]"
#define F_SPEC "{\"toolSpec\":{\"name\":\"f\",\"inputSchema\":{\"json\":{\"type\":\"object\",\"properties\":{}}}}}"
    expect_body("{\"model\":\"m\"," HI "," TOOLS ",\"tool_choice\":\"required\"}",
                HI_BODY ",\"toolConfig\":{\"tools\":[" F_SPEC "],\"toolChoice\":{\"any\":{}}}}");
    expect_body("{\"model\":\"m\"," HI "," TOOLS
                ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}}}",
                HI_BODY ",\"toolConfig\":{\"tools\":[" F_SPEC "],\"toolChoice\":{\"tool\":{\"name\":\"f\"}}}}");
    /* "none": Converse has no such choice, so the tools are not offered */
    expect_body("{\"model\":\"m\"," HI "," TOOLS ",\"tool_choice\":\"none\"}", HI_BODY "}");
    /* no tool_choice: Converse's default (auto) */
    expect_body("{\"model\":\"m\"," HI "," TOOLS "}", HI_BODY ",\"toolConfig\":{\"tools\":[" F_SPEC "]}}");
    /* tool blocks in the history without tools: a toolConfig naming the tools used */
    expect_body("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},"
                "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"t1\",\"type\":\"function\","
                "\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]},"
                "{\"role\":\"tool\",\"tool_call_id\":\"t1\",\"content\":[{\"type\":\"text\",\"text\":\"42\"}]}]}",
                "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"}]},"
                "{\"role\":\"assistant\",\"content\":[{\"toolUse\":{\"toolUseId\":\"t1\",\"name\":\"f\",\"input\":{}}}]},"
                "{\"role\":\"user\",\"content\":[{\"toolResult\":{\"toolUseId\":\"t1\",\"content\":[{\"text\":\"42\"}]}}]}],"
                "\"toolConfig\":{\"tools\":[" F_SPEC "]}}");
    /* response_format json_schema: native structured output, the schema as a string */
    expect_body("{\"model\":\"m\"," HI ",\"stop\":[\"a\",\"b\"],\"response_format\":{\"type\":\"json_schema\","
                "\"json_schema\":{\"name\":\"out\",\"description\":\"d\",\"schema\":{\"type\":\"object\"}}}}",
                HI_BODY ",\"inferenceConfig\":{\"stopSequences\":[\"a\",\"b\"]},"
                "\"outputConfig\":{\"textFormat\":{\"type\":\"json_schema\",\"structure\":{\"jsonSchema\":"
                "{\"schema\":\"{\\\"type\\\":\\\"object\\\"}\",\"name\":\"out\",\"description\":\"d\"}}}}}");
    /* the caller's own additionalModelRequestFields pass as given */
    expect_body("{\"model\":\"m\"," HI ",\"additionalModelRequestFields\":{\"thinking\":{\"type\":\"enabled\"}}}",
                HI_BODY ",\"additionalModelRequestFields\":{\"thinking\":{\"type\":\"enabled\"}}}");
}

static void test_request_refusals(void **state)
{
    (void)state;
    expect_refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                   "\"image_url\":{\"url\":\"https://example.com/a.png\"}}]}]}",
                   LX_CANNOT_SERVE, "does not download");
    expect_refused("{\"model\":\"m\"," HI ",\"n\":2}", LX_CANNOT_SERVE, "one choice");
    expect_refused("{\"model\":\"m\"," HI ",\"response_format\":{\"type\":\"json_object\"}}",
                   LX_CANNOT_SERVE, "json_object");
    expect_refused("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\","
                   "\"input_audio\":{}}]}]}",
                   LX_CANNOT_SERVE, "input_audio");
    expect_refused("{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"t\","
                   "\"function\":{\"name\":\"f\",\"arguments\":\"[1]\"}}]}]}",
                   LX_CANNOT_SERVE, "not a JSON object");
    expect_refused("{\"model\":\"m\",\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
                   LLMUX_ERR_BAD_REQUEST, "tool_call_id");
}

/* The URL holds the model id as one encoded segment; the signature is SigV4's
 * over the final body, service "bedrock", the canonical path encoded again. */
static void test_request_url_and_signature(void **state)
{
    (void)state;
    lx_config *cfg = load(SIGV4_PROVIDER);
    lx_http_request hr;
    lx_err err;
    const char *raw = "{\"model\":\"m\"," HI "}";
    assert_int_equal(build(cfg, "anthropic.claude-3-haiku-20240307-v1:0", raw, 0, &hr, &err), 0);
    assert_string_equal(hr.url, "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
                                "anthropic.claude-3-haiku-20240307-v1%3A0/converse");
    assert_string_equal(header(&hr, "Host"), "bedrock-runtime.us-east-1.amazonaws.com");
    assert_string_equal(header(&hr, "X-Amz-Date"), "20150830T123600Z");
    assert_null(header(&hr, "X-Amz-Security-Token"));
    /* recomputed from the canonical request of the AWS algorithm, independently */
    lx_sigv4_header h[] = {{"content-type", "application/json"},
                           {"host", "bedrock-runtime.us-east-1.amazonaws.com"},
                           {"x-amz-date", "20150830T123600Z"}};
    lx_sigv4_request r = {"POST", "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse", NULL,
                          h, 3, hr.body, hr.body_len, "20150830T123600Z", "us-east-1", "bedrock",
                          "AKIDEXAMPLE", TEST_SECRET};
    lx_buf want = LX_BUF_INIT, creq = LX_BUF_INIT;
    assert_int_equal(llmux__sigv4_authorization(&r, &want), 0);
    assert_string_equal(header(&hr, "Authorization"), want.data);
    assert_non_null(strstr(want.data, "Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, "
                                      "SignedHeaders=content-type;host;x-amz-date, Signature="));
    assert_int_equal(llmux__sigv4_canonical_request(&r, &creq), 0);
    assert_non_null(strstr(creq.data, "\n/model/anthropic.claude-3-haiku-20240307-v1%253A0/converse\n"));
    llmux__buf_free(&want);
    llmux__buf_free(&creq);
    llmux__http_request_free(&hr);

    /* an inference-profile ARN, streaming */
    assert_int_equal(build(cfg, "arn:aws:bedrock:us-east-1:1:inference-profile/us.x-v1:0", raw, 1, &hr,
                           &err), 0);
    assert_string_equal(hr.url, "https://bedrock-runtime.us-east-1.amazonaws.com/model/arn%3Aaws%3A"
                                "bedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.x-v1%3A0/converse-stream");
    assert_string_equal(header(&hr, "Accept"), "application/vnd.amazon.eventstream");
    llmux__http_request_free(&hr);
    llmux__config_unref(cfg);

    /* a session token is sent and signed */
    cfg = load("{\"type\":\"bedrock\",\"region\":\"eu-west-3\",\"base_url\":\"http://127.0.0.1:9/dep/\","
               "\"access_key_id_env\":\"LLMUX_TEST_AWS_AK\",\"secret_access_key_env\":\"LLMUX_TEST_AWS_SK\","
               "\"session_token_env\":\"LLMUX_TEST_AWS_TOKEN\"}");
    assert_int_equal(build(cfg, "m1", raw, 0, &hr, &err), 0);
    assert_string_equal(hr.url, "http://127.0.0.1:9/dep/model/m1/converse");
    assert_string_equal(header(&hr, "Host"), "127.0.0.1:9");
    assert_string_equal(header(&hr, "X-Amz-Security-Token"), "session-token-1");
    assert_non_null(strstr(header(&hr, "Authorization"),
                           "/eu-west-3/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date;"
                           "x-amz-security-token, Signature="));
    llmux__http_request_free(&hr);
    llmux__config_unref(cfg);
}

static void test_bearer_and_missing_credentials(void **state)
{
    (void)state;
    lx_config *cfg = load("{\"type\":\"bedrock\",\"region\":\"us-west-2\",\"api_key_env\":\"LLMUX_TEST_BEDROCK_KEY\"}");
    lx_http_request hr;
    lx_err err;
    assert_int_equal(build(cfg, "m1", "{\"model\":\"m\"," HI "}", 0, &hr, &err), 0);
    assert_string_equal(header(&hr, "Authorization"), "Bearer bedrock-api-key-123456");
    assert_null(header(&hr, "X-Amz-Date"));
    assert_string_equal(hr.url, "https://bedrock-runtime.us-west-2.amazonaws.com/model/m1/converse");
    llmux__http_request_free(&hr);
    llmux__config_unref(cfg);

    unsetenv("LLMUX_TEST_AWS_UNSET");
    cfg = load("{\"type\":\"bedrock\",\"region\":\"us-east-1\",\"access_key_id_env\":\"LLMUX_TEST_AWS_UNSET\"}");
    lx_provider_cfg *p = &cfg->providers[0];
    lx_request req = {0};
    req.n_members = -1;
    req.raw = "{\"model\":\"m\"," HI "}";
    req.raw_len = strlen(req.raw);
    llmux__http_request_init(&hr);
    assert_int_equal(p->ops->build_request(p, "m1", &req, 0, &hr, &err), LLMUX_ERR_AUTH);
    assert_string_equal(err.msg, "no AWS credentials: the environment variable LLMUX_TEST_AWS_UNSET is not set");
    llmux__http_request_free(&hr);
    llmux__request_free(&req);
    llmux__config_unref(cfg);

    /* config errors name the JSON path */
    static const struct {
        const char *provider, *msg;
    } bad[] = {
        {"{\"type\":\"bedrock\"}", "providers.b.region"},
        {"{\"type\":\"bedrock\",\"region\":\"US East\"}", "providers.b.region: expected an AWS region"},
        {"{\"type\":\"bedrock\",\"region\":\"us-east-1\",\"api_key_env\":\"A\",\"access_key_id_env\":\"B\"}",
         "providers.b.api_key_env: a Bedrock API key"},
        {"{\"type\":\"bedrock\",\"region\":\"us-east-1\",\"regoin\":\"x\"}", "providers.b.regoin: unknown key"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char json[512];
        snprintf(json, sizeof json, "{\"providers\":{\"b\":%s},\"models\":{}}", bad[i].provider);
        lx_config *c = NULL;
        lx_err e = {0};
        assert_int_equal(llmux__config_parse(&c, json, strlen(json), &e), LLMUX_ERR_CONFIG);
        if (!strstr(e.msg, bad[i].msg))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, e.msg, bad[i].msg);
    }
}

/* ------------------------------------------------------------ responses */

/* The JSON with id and created set to fixed values, for exact comparison. */
static char *pinned(const char *json)
{
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    assert_true(cJSON_IsString(id));
    assert_int_equal(strncmp(id->valuestring, "chatcmpl-bedrock-", 17), 0);
    assert_int_equal(strlen(id->valuestring), 17 + 16);
    cJSON_ReplaceItemInObjectCaseSensitive(o, "id", cJSON_CreateString("ID"));
    cJSON_ReplaceItemInObjectCaseSensitive(o, "created", cJSON_CreateNumber(0));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static int parse(const char *body, char **out, lx_usage *u, lx_err *err)
{
    lx_config *cfg = load(SIGV4_PROVIDER);
    lx_provider_cfg *p = &cfg->providers[0];
    lx_buf b = LX_BUF_INIT;
    llmux__buf_puts(&b, body);
    *u = (lx_usage)LX_USAGE_UNKNOWN;
    memset(err, 0, sizeof *err);
    char *json = NULL;
    int rc = p->ops->parse_response(p, &b, &json, u, err);
    *out = json ? pinned(json) : NULL;
    free(json);
    llmux__buf_free(&b);
    llmux__config_unref(cfg);
    return rc;
}

static void test_response_golden(void **state)
{
    (void)state;
    char *out;
    lx_usage u;
    lx_err err;
    assert_int_equal(parse("{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":["
                           "{\"reasoningContent\":{\"reasoningText\":{\"text\":\"hmm\"}}},"
                           "{\"text\":\"Let me \"},{\"text\":\"check.\"},"
                           "{\"toolUse\":{\"toolUseId\":\"tooluse_1\",\"name\":\"weather\",\"input\":{\"city\":\"Paris\"}}}]}},"
                           "\"stopReason\":\"tool_use\",\"usage\":{\"inputTokens\":10,\"outputTokens\":5,"
                           "\"totalTokens\":22,\"cacheReadInputTokens\":4,\"cacheWriteInputTokens\":3},"
                           "\"metrics\":{\"latencyMs\":100}}",
                           &out, &u, &err),
                     LLMUX_OK);
    assert_string_equal(out,
                        "{\"id\":\"ID\",\"object\":\"chat.completion\",\"created\":0,\"model\":\"\","
                        "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Let me check.\","
                        "\"tool_calls\":[{\"id\":\"tooluse_1\",\"type\":\"function\",\"function\":{\"name\":\"weather\","
                        "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],"
                        "\"usage\":{\"prompt_tokens\":17,\"completion_tokens\":5,\"total_tokens\":22,"
                        "\"prompt_tokens_details\":{\"cached_tokens\":4,\"cache_write_tokens\":3},"
                        "\"completion_tokens_details\":{\"reasoning_tokens\":0}}}");
    assert_int_equal(u.prompt_tokens, 17);
    assert_int_equal(u.completion_tokens, 5);
    assert_int_equal(u.cached_tokens, 4);
    assert_int_equal(u.cache_write_tokens, 3);
    assert_int_equal(u.cache_write_1h_tokens, -1);
    free(out);

    /* the stopReason table */
    static const struct {
        const char *stop, *finish;
    } rows[] = {{"end_turn", "stop"},           {"stop_sequence", "stop"},
                {"max_tokens", "length"},       {"model_context_window_exceeded", "length"},
                {"guardrail_intervened", "content_filter"}, {"content_filtered", "content_filter"},
                {"tool_use", "tool_calls"}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char body[256], want[512];
        snprintf(body, sizeof body, "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[{\"text\":\"x\"}]}},"
                                    "\"stopReason\":\"%s\",\"usage\":{\"inputTokens\":1,\"outputTokens\":2,\"totalTokens\":3}}",
                 rows[i].stop);
        snprintf(want, sizeof want,
                 "{\"id\":\"ID\",\"object\":\"chat.completion\",\"created\":0,\"model\":\"\",\"choices\":[{\"index\":0,"
                 "\"message\":{\"role\":\"assistant\",\"content\":\"x\"},\"logprobs\":null,\"finish_reason\":\"%s\"}],"
                 "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3,\"prompt_tokens_details\":"
                 "{\"cached_tokens\":0,\"cache_write_tokens\":0},\"completion_tokens_details\":{\"reasoning_tokens\":0}}}",
                 rows[i].finish);
        assert_int_equal(parse(body, &out, &u, &err), LLMUX_OK);
        assert_string_equal(out, want);
        free(out);
    }
}

static void test_response_refusals(void **state)
{
    (void)state;
    char *out;
    lx_usage u;
    lx_err err;
    assert_int_equal(parse("{\"output\":{\"message\":{\"content\":[]}},\"stopReason\":\"malformed_tool_use\"}",
                           &out, &u, &err), LLMUX_ERR_BAD_RESPONSE);
    assert_string_equal(err.provider_code, "malformed_tool_use");
    assert_int_equal(parse("{\"output\":{}}", &out, &u, &err), LLMUX_ERR_BAD_RESPONSE);
    assert_int_equal(parse("{\"output\":{\"message\":{\"content\":[{\"text\":\"\xff\"}]}},\"stopReason\":\"end_turn\"}",
                           &out, &u, &err), LLMUX_ERR_BAD_RESPONSE);
    assert_non_null(strstr(err.msg, "not valid UTF-8"));
    assert_int_equal(parse("{\"output\":{\"message\":{\"content\":[{\"text\":\"x\"}]}},\"stopReason\":\"end_turn\","
                           "\"usage\":{\"inputTokens\":1e999,\"outputTokens\":-2}}", &out, &u, &err), LLMUX_OK);
    assert_int_equal(u.prompt_tokens, -1);
    assert_int_equal(u.completion_tokens, -1);
    assert_null(out == NULL ? NULL : NULL);
    free(out);
}

/* -------------------------------------------------------------- errors */

static int classify_with(const char *provider, const char *headers, long status,
                         const char *body, lx_err *err)
{
    lx_config *cfg = load(provider);
    lx_provider_cfg *p = &cfg->providers[0];
    lx_http_response r = {0};
    r.status = status;
    llmux__buf_puts(&r.body, body);
    llmux__buf_puts(&r.headers, headers);
    memset(err, 0, sizeof *err);
    int rc = p->ops->classify_error(p, &r, err);
    llmux__http_response_free(&r);
    llmux__config_unref(cfg);
    return rc;
}

static int classify(const char *headers, long status, const char *body, lx_err *err)
{
    return classify_with(SIGV4_PROVIDER, headers, status, body, err);
}

static void test_error_classes(void **state)
{
    (void)state;
    static const struct {
        const char *type;
        long status;
        const char *message;
        int want;
    } rows[] = {
        {"ThrottlingException", 429, "Too many requests, please wait before trying again.", LLMUX_ERR_RATE_LIMIT},
        {"ValidationException", 400, "Input is too long for requested model.", LLMUX_ERR_CONTEXT_WINDOW},
        {"ValidationException", 400, "The model returned the following errors: prompt is too long: 300000 tokens > 200000 maximum", LLMUX_ERR_CONTEXT_WINDOW},
        {"ValidationException", 400, "Malformed input request", LLMUX_ERR_BAD_REQUEST},
        {"AccessDeniedException", 403, "You don't have access to the model", LLMUX_ERR_PERMISSION},
        {"ResourceNotFoundException", 404, "Could not resolve the foundation model", LLMUX_ERR_NOT_FOUND},
        {"ModelNotReadyException", 429, "Model is not ready", LLMUX_ERR_PROVIDER},
        {"ServiceUnavailableException", 503, "Service unavailable", LLMUX_ERR_PROVIDER},
        {"ModelTimeoutException", 408, "timed out", LLMUX_ERR_TIMEOUT},
        {"UnrecognizedClientException", 403, "The security token included in the request is invalid.", LLMUX_ERR_AUTH},
        {"InvalidSignatureException", 403, "The request signature we calculated does not match", LLMUX_ERR_AUTH},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char headers[256], body[320], want[512];
        snprintf(headers, sizeof headers, "Content-Type: application/json\r\nx-amzn-ErrorType: %s:http://internal.amazon.com/coral/com.amazon.bedrock/\r\n",
                 rows[i].type);
        snprintf(body, sizeof body, "{\"message\":\"%s\"}", rows[i].message);
        lx_err err;
        assert_int_equal(classify(headers, rows[i].status, body, &err), rows[i].want);
        assert_string_equal(err.provider_code, rows[i].type);
        assert_int_equal(err.http_status, rows[i].status);
        snprintf(want, sizeof want, "HTTP %ld (%s): %s", rows[i].status, rows[i].type, rows[i].message);
        assert_string_equal(err.msg, want);
    }
    /* "Message" with a capital, the type after '#' in the body, no header */
    lx_err err;
    assert_int_equal(classify("", 400, "{\"__type\":\"com.amazon.coral.validate#ValidationException\","
                                       "\"Message\":\"too many total text bytes\"}", &err),
                     LLMUX_ERR_CONTEXT_WINDOW);
    assert_string_equal(err.msg, "HTTP 400 (ValidationException): too many total text bytes");
    /* no type anywhere: the HTTP status decides; the secret key never shows */
    assert_int_equal(classify("", 500, "oops " TEST_SECRET, &err), LLMUX_ERR_PROVIDER);
    assert_null(strstr(err.msg, TEST_SECRET));
    assert_null(strstr(err.msg, "wJalrXUt"));
    /* nor does the session token, nor a Bedrock API key */
    assert_int_equal(classify_with("{\"type\":\"bedrock\",\"region\":\"us-east-1\",\"access_key_id_env\":"
                                   "\"LLMUX_TEST_AWS_AK\",\"secret_access_key_env\":\"LLMUX_TEST_AWS_SK\","
                                   "\"session_token_env\":\"LLMUX_TEST_AWS_TOKEN\"}",
                                   "x-amzn-ErrorType: ExpiredTokenException\r\n", 403,
                                   "{\"message\":\"token session-token-1 expired; key " TEST_SECRET "\"}", &err),
                     LLMUX_ERR_AUTH);
    assert_string_equal(err.msg, "HTTP 403 (ExpiredTokenException): token *************** expired; key "
                                 "****************************************");
    assert_int_equal(classify_with("{\"type\":\"bedrock\",\"region\":\"us-east-1\",\"api_key_env\":"
                                   "\"LLMUX_TEST_BEDROCK_KEY\"}", "", 401,
                                   "{\"message\":\"bad key bedrock-api-key-123456\"}", &err),
                     LLMUX_ERR_AUTH);
    assert_string_equal(err.msg, "HTTP 401: bad key **********************");
}

/* ------------------------------------------------------------- streams */

static void ev(lx_buf *b, const char *type, const char *payload)
{
    const char *names[] = {":event-type", ":content-type", ":message-type"};
    const char *values[] = {type, "application/json", "event"};
    assert_int_equal(llmux__es_encode(b, names, values, 3, payload, strlen(payload)), 0);
}

static void exception(lx_buf *b, const char *type, const char *payload)
{
    const char *names[] = {":exception-type", ":content-type", ":message-type"};
    const char *values[] = {type, "application/json", "exception"};
    assert_int_equal(llmux__es_encode(b, names, values, 3, payload, strlen(payload)), 0);
}

typedef struct sink {
    lx_buf log;
    lx_assembler a;
    int n;
} sink;

static int on_chunk(void *ctx, const char *json, size_t len, cJSON *parsed)
{
    sink *s = ctx;
    char *p = pinned(json);
    llmux__buf_puts(&s->log, p);
    llmux__buf_puts(&s->log, "\n");
    free(p);
    lx_err err = {0};
    assert_int_equal(llmux__assembler_add(&s->a, parsed, &err), 0);
    s->n++;
    return 0;
}

/* Feeds the stream in pieces of step bytes (0 = whole) or split at `at`
 * (step < 0); returns the last status and fills s. */
static int feed(const lx_buf *in, long step, size_t at, sink *s, lx_err *err)
{
    lx_config *cfg = load(SIGV4_PROVIDER);
    lx_provider_cfg *p = &cfg->providers[0];
    void *d = p->ops->stream_new(p);
    memset(s, 0, sizeof *s);
    llmux__assembler_init(&s->a, 1 << 20);
    memset(err, 0, sizeof *err);
    int rc = 0;
    if (step < 0) {
        rc = p->ops->stream_feed(d, in->data, at, on_chunk, s, err);
        if (!rc)
            rc = p->ops->stream_feed(d, in->data + at, in->len - at, on_chunk, s, err);
    } else {
        size_t n = step ? (size_t)step : in->len;
        for (size_t i = 0; i < in->len && !rc; i += n)
            rc = p->ops->stream_feed(d, in->data + i, in->len - i < n ? in->len - i : n, on_chunk, s, err);
    }
    if (rc == 0)
        rc = p->ops->stream_finish(d, err);
    p->ops->stream_free(d);
    llmux__config_unref(cfg);
    return rc;
}

static void sink_free(sink *s)
{
    llmux__buf_free(&s->log);
    llmux__assembler_free(&s->a);
}

static lx_buf tool_stream(void)
{
    lx_buf b = LX_BUF_INIT;
    ev(&b, "messageStart", "{\"role\":\"assistant\"}");
    ev(&b, "contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"reasoningContent\":{\"text\":\"hmm\"}}}");
    ev(&b, "contentBlockDelta", "{\"contentBlockIndex\":1,\"delta\":{\"text\":\"Let me \"}}");
    ev(&b, "contentBlockDelta", "{\"contentBlockIndex\":1,\"delta\":{\"text\":\"check.\"}}");
    ev(&b, "contentBlockStop", "{\"contentBlockIndex\":1}");
    ev(&b, "contentBlockStart", "{\"contentBlockIndex\":2,\"start\":{\"toolUse\":{\"toolUseId\":\"tooluse_1\",\"name\":\"weather\"}}}");
    ev(&b, "contentBlockDelta", "{\"contentBlockIndex\":2,\"delta\":{\"toolUse\":{\"input\":\"{\\\"city\\\":\"}}}");
    ev(&b, "contentBlockDelta", "{\"contentBlockIndex\":2,\"delta\":{\"toolUse\":{\"input\":\"\\\"Paris\\\"}\"}}}");
    ev(&b, "contentBlockStop", "{\"contentBlockIndex\":2}");
    ev(&b, "messageStop", "{\"stopReason\":\"tool_use\"}");
    ev(&b, "metadata", "{\"usage\":{\"inputTokens\":10,\"outputTokens\":5,\"totalTokens\":22,"
                       "\"cacheReadInputTokens\":4,\"cacheWriteInputTokens\":3},\"metrics\":{\"latencyMs\":100}}");
    return b;
}

#define CHUNK(body) "{\"id\":\"ID\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"\"," body "}\n"
static const char TOOL_CHUNKS[] =
    CHUNK("\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]")
    CHUNK("\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Let me \"},\"finish_reason\":null}]")
    CHUNK("\"choices\":[{\"index\":0,\"delta\":{\"content\":\"check.\"},\"finish_reason\":null}]")
    CHUNK("\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"tooluse_1\",\"type\":\"function\","
          "\"function\":{\"name\":\"weather\",\"arguments\":\"\"}}]},\"finish_reason\":null}]")
    CHUNK("\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"city\\\":\"}}]},\"finish_reason\":null}]")
    CHUNK("\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}]},\"finish_reason\":null}]")
    CHUNK("\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]")
    CHUNK("\"choices\":[],\"usage\":{\"prompt_tokens\":17,\"completion_tokens\":5,\"total_tokens\":22,"
          "\"prompt_tokens_details\":{\"cached_tokens\":4,\"cache_write_tokens\":3},"
          "\"completion_tokens_details\":{\"reasoning_tokens\":0}}");

static void test_stream_golden_every_split(void **state)
{
    (void)state;
    lx_buf b = tool_stream();
    sink s;
    lx_err err;
    for (long step = 0; step <= 3; step++) {
        assert_int_equal(feed(&b, step, 0, &s, &err), LX_STREAM_END);
        assert_string_equal(s.log.data, TOOL_CHUNKS);
        sink_free(&s);
    }
    for (size_t at = 0; at <= b.len; at++) {
        int rc = feed(&b, -1, at, &s, &err);
        assert_int_equal(rc, LX_STREAM_END);
        assert_string_equal(s.log.data, TOOL_CHUNKS);
        sink_free(&s);
    }
    /* the assembled answer is what the unstreamed call gives */
    assert_int_equal(feed(&b, 0, 0, &s, &err), LX_STREAM_END);
    char *json = llmux__assembler_finish(&s.a);
    cJSON *o = cJSON_Parse(json);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "choices"), 0), "message");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(msg, "content")->valuestring, "Let me check.");
    const cJSON *call = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(msg, "tool_calls"), 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(call, "function"), "arguments")->valuestring,
                        "{\"city\":\"Paris\"}");
    assert_int_equal(s.a.u.prompt_tokens, 17);
    assert_int_equal(s.a.u.cached_tokens, 4);
    cJSON_Delete(o);
    free(json);
    sink_free(&s);
    llmux__buf_free(&b);
}

static void test_stream_errors(void **state)
{
    (void)state;
    static const struct {
        const char *type, *payload;
        int want;
    } rows[] = {
        {"throttlingException", "{\"message\":\"Too many tokens\"}", LLMUX_ERR_RATE_LIMIT},
        {"modelStreamErrorException", "{\"message\":\"model failed\",\"originalStatusCode\":500}", LLMUX_ERR_PROVIDER},
        {"validationException", "{\"message\":\"Input is too long for requested model\"}", LLMUX_ERR_CONTEXT_WINDOW},
        {"validationException", "{\"message\":\"bad\"}", LLMUX_ERR_BAD_REQUEST},
        {"internalServerException", "{\"message\":\"x\"}", LLMUX_ERR_PROVIDER},
        {"serviceUnavailableException", "{\"message\":\"x\"}", LLMUX_ERR_PROVIDER},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        lx_buf b = LX_BUF_INIT;
        ev(&b, "messageStart", "{\"role\":\"assistant\"}");
        exception(&b, rows[i].type, rows[i].payload);
        sink s;
        lx_err err;
        assert_int_equal(feed(&b, 1, 0, &s, &err), rows[i].want);
        assert_string_equal(err.provider_code, rows[i].type);
        assert_int_equal(s.n, 1);
        sink_free(&s);
        llmux__buf_free(&b);
    }
    /* a corrupted CRC, a cut stream, an event with invalid JSON */
    lx_buf b = tool_stream();
    sink s;
    lx_err err;
    b.data[b.len / 2] ^= 0x20;
    assert_int_equal(feed(&b, 1, 0, &s, &err), LLMUX_ERR_BAD_RESPONSE);
    assert_non_null(strstr(err.msg, "CRC"));
    sink_free(&s);
    b.data[b.len / 2] ^= 0x20;
    b.len -= 5; /* the metadata event cut short */
    assert_int_equal(feed(&b, 0, 0, &s, &err), LLMUX_ERR_CONNECT);
    assert_string_equal(err.msg, "the stream was cut inside its last message (after 10 messages)");
    sink_free(&s);
    llmux__buf_free(&b);
    /* a stopReason that means the output is unusable */
    b = (lx_buf)LX_BUF_INIT;
    ev(&b, "messageStart", "{\"role\":\"assistant\"}");
    ev(&b, "messageStop", "{\"stopReason\":\"malformed_model_output\"}");
    assert_int_equal(feed(&b, 0, 0, &s, &err), LLMUX_ERR_BAD_RESPONSE);
    assert_string_equal(err.msg, "the model's output was unusable (stopReason malformed_model_output)");
    assert_string_equal(err.provider_code, "malformed_model_output");
    sink_free(&s);
    llmux__buf_free(&b);
    /* no metadata at all after messageStop: the answer is whole, its usage unknown */
    b = (lx_buf)LX_BUF_INIT;
    ev(&b, "messageStart", "{\"role\":\"assistant\"}");
    ev(&b, "messageStop", "{\"stopReason\":\"end_turn\"}");
    assert_int_equal(feed(&b, 1, 0, &s, &err), LLMUX_OK);
    assert_int_equal(s.n, 2);
    sink_free(&s);
    llmux__buf_free(&b);
    b = (lx_buf)LX_BUF_INIT;
    ev(&b, "messageStart", "{\"role\":\"assistant\"}");
    ev(&b, "contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hi\"}}");
    assert_int_equal(feed(&b, 0, 0, &s, &err), LLMUX_ERR_CONNECT);
    assert_string_equal(err.msg, "the stream ended before messageStop (after 2 messages)");
    sink_free(&s);
    ev(&b, "contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"\xc0\x80\"}}");
    assert_int_equal(feed(&b, 0, 0, &s, &err), LLMUX_ERR_BAD_RESPONSE);
    assert_non_null(strstr(err.msg, "not valid UTF-8"));
    sink_free(&s);
    llmux__buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_golden),
        cmocka_unit_test(test_request_tool_choice_rows),
        cmocka_unit_test(test_request_refusals),
        cmocka_unit_test(test_request_url_and_signature),
        cmocka_unit_test(test_bearer_and_missing_credentials),
        cmocka_unit_test(test_response_golden),
        cmocka_unit_test(test_response_refusals),
        cmocka_unit_test(test_error_classes),
        cmocka_unit_test(test_stream_golden_every_split),
        cmocka_unit_test(test_stream_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
