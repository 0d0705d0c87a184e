/* The Azure OpenAI adapter: config, routes and auth (golden URLs, headers and
 * bodies), answers passed through, Azure's errors, its stream shapes decoded
 * whole, byte at a time and split at every position, and round trips through
 * the simulator's Azure routes. */
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
#include "core/buf.h"
#include "llmux.h"
#include "providers/provider.h"
#include "sim_harness.h"

static sim SIM;

#define KEY "azure-unit-key-0123456789"
#define TOKEN "eyJ0eXAiOiJKV1QiLCJhbGciOi.entra-token"

/* A config with one azure provider "az" whose own members are `members`. */
static int try_load(lx_config **cfg, const char *members, lx_err *err)
{
    setenv("LLMUX_TEST_AZURE_KEY", KEY, 1);
    setenv("LLMUX_TEST_AZURE_TOKEN", TOKEN, 1);
    char json[2048];
    snprintf(json, sizeof json,
             "{\"providers\":{\"az\":{\"type\":\"azure\"%s%s}},"
             "\"models\":{\"m\":{\"targets\":[{\"provider\":\"az\",\"model\":\"gpt4o-prod\"}]}}}",
             members[0] ? "," : "", members);
    *cfg = NULL;
    return llmux__config_parse(cfg, json, strlen(json), err);
}

static lx_config *load(const char *members)
{
    lx_config *cfg;
    lx_err err = {0};
    int rc = try_load(&cfg, members, &err);
    if (rc != LLMUX_OK)
        fail_msg("config: %s", err.msg);
    return cfg;
}

static const char *config_error(const char *members)
{
    static lx_err err;
    lx_config *cfg;
    memset(&err, 0, sizeof err);
    assert_int_equal(try_load(&cfg, members, &err), LLMUX_ERR_CONFIG);
    return err.msg;
}

#define BASE "\"base_url\":\"https://res.openai.azure.com/\""

static void test_config_errors(void **state)
{
    assert_string_equal(config_error("\"api_version\":\"2024-10-21\""),
                        "providers.az.base_url: required for provider type \"azure\"");
    assert_string_equal(config_error(BASE ",\"route\":\"deployments\""),
                        "providers.az.api_version: required for the deployments route "
                        "(e.g. \"2024-10-21\")");
    assert_string_equal(config_error(BASE ",\"route\":\"v2\""),
                        "providers.az.route: must be \"deployments\" or \"v1\"");
    assert_string_equal(config_error(BASE ",\"api_version\":\"2024 10\""),
                        "providers.az.api_version: letters, digits, '-', '.' and '_' "
                        "only, at most 64 (e.g. \"2024-10-21\")");
    assert_string_equal(config_error(BASE ",\"api_version\":5"),
                        "providers.az.api_version: expected a string, got a number");
    assert_string_equal(config_error(BASE ",\"api_key_env\":\"LLMUX_TEST_AZURE_KEY\","
                                          "\"bearer_token_env\":\"LLMUX_TEST_AZURE_TOKEN\""),
                        "providers.az.bearer_token_env: give either api_key_env (the "
                        "api-key header) or bearer_token_env (a Microsoft Entra ID token), not "
                        "both");
    assert_string_equal(config_error(BASE ",\"bearer_token_env\":\"eyJ.token\""),
                        "providers.az.bearer_token_env: not an environment variable name "
                        "(letters, digits and _, not starting with a digit)");
    assert_non_null(strstr(config_error(BASE ",\"region\":\"x\""), "providers.az.region"));
}

static int has_header(const lx_http_request *r, const char *line)
{
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcmp(r->headers[i].line, line) == 0)
            return 1;
    return 0;
}

static const char *const REQ =
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
    "\"stream_options\":{\"x\":1},\"temperature\":0.5,\"n\":2}";

/* build_request for `model` on cfg: its status, and the request in *hr (the
 * caller frees it before cfg, whose header lines it borrows). */
static int build_into(lx_config *cfg, const char *model, int stream, lx_http_request *hr,
                      lx_err *err)
{
    lx_provider_cfg *p = &cfg->providers[0];
    lx_request req = {0};
    req.n_members = -1;
    req.raw = REQ;
    req.raw_len = strlen(REQ);
    llmux__http_request_init(hr);
    int rc = p->ops->build_request(p, model, &req, stream, hr, err);
    llmux__request_free(&req);
    return rc;
}

/* build_request: the exact url, headers and body. */
static void build(const char *members, const char *model, int stream, const char *url,
                  const char *auth, const char *body)
{
    lx_http_request hr;
    lx_err err = {0};
    lx_config *cfg = load(members);
    assert_int_equal(build_into(cfg, model, stream, &hr, &err), LLMUX_OK);
    assert_string_equal(hr.url, url);
    assert_true(has_header(&hr, "Content-Type: application/json"));
    assert_int_equal(has_header(&hr, "Accept: text/event-stream"), stream);
    size_t want = 1 + (size_t)stream + (auth != NULL);
    assert_int_equal(hr.n_headers, want);
    if (auth)
        assert_true(has_header(&hr, auth));
    assert_int_equal(hr.body_len, strlen(body));
    assert_memory_equal(hr.body, body, hr.body_len);
    llmux__http_request_free(&hr);
    llmux__config_unref(cfg);
}

static const char *const BODY =
    "{\"model\":\"gpt4o-prod\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
    "\"temperature\":0.5,\"n\":2}";
static const char *const BODY_STREAM =
    "{\"model\":\"gpt4o-prod\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
    "\"temperature\":0.5,\"n\":2,\"stream\":true,\"stream_options\":{\"x\":1,"
    "\"include_usage\":true}}";

static void test_build_routes_and_auth(void **state)
{
    /* deployments route: the model is the deployment, in the path */
    build(BASE ",\"api_version\":\"2024-10-21\",\"api_key_env\":\"LLMUX_TEST_AZURE_KEY\"",
          "gpt4o-prod", 0,
          "https://res.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions"
          "?api-version=2024-10-21",
          "api-key: " KEY, BODY);
    build(BASE ",\"api_version\":\"2024-10-21\",\"api_key_env\":\"LLMUX_TEST_AZURE_KEY\"",
          "gpt4o-prod", 1,
          "https://res.openai.azure.com/openai/deployments/gpt4o-prod/chat/completions"
          "?api-version=2024-10-21",
          "api-key: " KEY, BODY_STREAM);
    /* v1 route: one URL, the deployment in the body; an Entra ID token */
    build(BASE ",\"bearer_token_env\":\"LLMUX_TEST_AZURE_TOKEN\"", "gpt4o-prod", 0,
          "https://res.openai.azure.com/openai/v1/chat/completions",
          "Authorization: Bearer " TOKEN, BODY);
    build(BASE ",\"route\":\"v1\",\"api_version\":\"preview\"", "gpt4o-prod", 1,
          "https://res.openai.azure.com/openai/v1/chat/completions?api-version=preview", NULL,
          BODY_STREAM);
}

static void test_build_encodes_deployment(void **state)
{
    lx_http_request hr;
    lx_err err = {0};
    lx_config *cfg = load(BASE ",\"api_version\":\"2025-01-01-preview\"");
    assert_int_equal(build_into(cfg, "my dep/1?x=\xc3\xa9~", 0, &hr, &err), LLMUX_OK);
    assert_string_equal(hr.url, "https://res.openai.azure.com/openai/deployments/"
                                "my%20dep%2F1%3Fx%3D%C3%A9~/chat/completions"
                                "?api-version=2025-01-01-preview");
    llmux__http_request_free(&hr);
    llmux__config_unref(cfg);
}

static void test_bearer_env_unset(void **state)
{
    unsetenv("LLMUX_TEST_AZURE_UNSET");
    lx_http_request hr;
    lx_err err = {0};
    lx_config *cfg = load(BASE ",\"bearer_token_env\":\"LLMUX_TEST_AZURE_UNSET\"");
    assert_int_equal(build_into(cfg, "d", 0, &hr, &err), LLMUX_ERR_AUTH);
    assert_string_equal(err.msg, "the environment variable LLMUX_TEST_AZURE_UNSET "
                                 "(providers.az.bearer_token_env) is not set");
    llmux__http_request_free(&hr);
    llmux__config_unref(cfg);
}

/* ------------------------------------------------------------------ answers */

static const char *const ANSWER =
    "{\"choices\":[{\"content_filter_results\":{\"hate\":{\"filtered\":false,\"severity\":"
    "\"safe\"}},\"finish_reason\":\"stop\",\"index\":0,\"logprobs\":null,\"message\":{"
    "\"annotations\":[],\"content\":\"Hi.\",\"refusal\":null,\"role\":\"assistant\"}}],"
    "\"created\":1733000000,\"id\":\"chatcmpl-AZ1\",\"model\":\"gpt-4o-2024-11-20\","
    "\"object\":\"chat.completion\",\"prompt_filter_results\":[{\"prompt_index\":0,"
    "\"content_filter_results\":{}}],\"system_fingerprint\":\"fp_1\",\"usage\":{"
    "\"completion_tokens\":40,\"completion_tokens_details\":{\"accepted_prediction_tokens\":0,"
    "\"reasoning_tokens\":32},\"prompt_tokens\":1200,\"prompt_tokens_details\":{"
    "\"cached_tokens\":1024},\"total_tokens\":1240}}";

static void parse(const char *body, int want, int64_t reasoning)
{
    lx_config *cfg = load(BASE ",\"api_key_env\":\"LLMUX_TEST_AZURE_KEY\"");
    lx_provider_cfg *p = &cfg->providers[0];
    lx_buf b = LX_BUF_INIT;
    llmux__buf_puts(&b, body);
    char *out = NULL;
    lx_usage u = LX_USAGE_UNKNOWN;
    lx_err err = {0};
    assert_int_equal(p->ops->parse_response(p, &b, &out, &u, &err), want);
    if (want == LLMUX_OK) {
        assert_string_equal(out, body); /* Azure's fields reach the caller */
        assert_int_equal(u.prompt_tokens, 1200);
        assert_int_equal(u.completion_tokens, 40);
        assert_int_equal(u.cached_tokens, 1024);
        assert_int_equal(u.reasoning_tokens, reasoning);
        assert_int_equal(u.cache_write_tokens, -1);
    } else {
        assert_string_equal(err.provider_code, "content_filter");
    }
    free(out);
    llmux__buf_free(&b);
    llmux__config_unref(cfg);
}

static void test_parse_response(void **state)
{
    parse(ANSWER, LLMUX_OK, 32);
    /* the tree path (a key escaped) reads the same usage */
    char alt[2048];
    snprintf(alt, sizeof alt, "%s", ANSWER);
    char *at = strstr(alt, "\"system_fingerprint\"");
    memmove(at + 25, at + 20, strlen(at + 20) + 1);
    memcpy(at, "\"system_fingerprin\\u0074\"", 25);
    parse(alt, LLMUX_OK, 32);
    parse("{\"error\":{\"code\":\"content_filter\",\"message\":\"filtered\"}}",
          LLMUX_ERR_CONTENT_FILTER, 0);
}

/* ------------------------------------------------------------------- errors */

static int classify(long status, const char *headers, const char *body, lx_err *err)
{
    lx_config *cfg = load(BASE ",\"api_key_env\":\"LLMUX_TEST_AZURE_KEY\"");
    lx_provider_cfg *p = &cfg->providers[0];
    lx_http_response r;
    memset(&r, 0, sizeof r);
    r.status = status;
    r.retry_after_ms = -1;
    llmux__buf_puts(&r.body, body);
    llmux__buf_puts(&r.headers, headers);
    memset(err, 0, sizeof *err);
    int rc = p->ops->classify_error(p, &r, err);
    llmux__http_response_free(&r);
    llmux__config_unref(cfg);
    return rc;
}

static const char *const FILTERED =
    "{\"error\":{\"message\":\"The response was filtered due to the prompt triggering Azure "
    "OpenAI's content management policy.\",\"type\":null,\"param\":\"prompt\",\"code\":"
    "\"content_filter\",\"status\":400,\"innererror\":{\"code\":\"ResponsibleAIPolicyViolation\","
    "\"content_filter_result\":{\"hate\":{\"filtered\":true,\"severity\":\"high\"},\"jailbreak\":"
    "{\"filtered\":true,\"detected\":true},\"sexual\":{\"filtered\":false,\"severity\":\"safe\"}}}}}";

static void test_classify_errors(void **state)
{
    lx_err err;
    assert_int_equal(classify(400, "", FILTERED, &err), LLMUX_ERR_CONTENT_FILTER);
    assert_string_equal(err.msg, "HTTP 400 (content_filter): The response was filtered due to "
                                 "the prompt triggering Azure OpenAI's content management "
                                 "policy. [ResponsibleAIPolicyViolation: hate, jailbreak]");
    assert_string_equal(err.provider_code, "content_filter");
    assert_int_equal(err.http_status, 400);

    /* the inner code alone says it */
    assert_int_equal(classify(400, "",
                              "{\"error\":{\"message\":\"no\",\"innererror\":{\"code\":"
                              "\"ResponsibleAIPolicyViolation\"}}}",
                              &err),
                     LLMUX_ERR_CONTENT_FILTER);
    assert_string_equal(err.msg, "HTTP 400: no [ResponsibleAIPolicyViolation]");

    assert_int_equal(classify(429, "retry-after: 7\r\n",
                              "{\"error\":{\"code\":\"429\",\"message\":\"Requests to the "
                              "ChatCompletions_Create Operation have exceeded token rate limit. "
                              "Please retry after 7 seconds.\"}}",
                              &err),
                     LLMUX_ERR_RATE_LIMIT);
    assert_string_equal(err.provider_code, "429");
    assert_int_equal(classify(401, "", "{\"error\":{\"code\":\"401\",\"message\":\"Access denied "
                                       "due to invalid subscription key " KEY "\"}}",
                              &err),
                     LLMUX_ERR_AUTH);
    assert_null(strstr(err.msg, KEY));
    assert_non_null(strstr(err.msg, "invalid subscription key ****"));
    assert_int_equal(classify(404, "", "{\"error\":{\"code\":\"DeploymentNotFound\",\"message\":"
                                       "\"The API deployment for this resource does not exist.\"}}",
                              &err),
                     LLMUX_ERR_NOT_FOUND);
    assert_string_equal(err.provider_code, "DeploymentNotFound");
    assert_int_equal(classify(400, "", "{\"error\":{\"code\":\"context_length_exceeded\","
                                       "\"message\":\"This model's maximum context length is "
                                       "128000 tokens.\"}}",
                              &err),
                     LLMUX_ERR_CONTEXT_WINDOW);
    /* the key inside the inner code or a category name is masked too */
    assert_int_equal(classify(500, "", "{\"error\":{\"message\":\"x\",\"innererror\":{\"code\":\""
                                       KEY "\",\"content_filter_result\":{\"" KEY "\":{"
                                       "\"filtered\":true}}}}}",
                              &err),
                     LLMUX_ERR_PROVIDER);
    assert_null(strstr(err.msg, KEY));
    assert_int_equal(classify(400, "", "not json", &err), LLMUX_ERR_BAD_REQUEST);
}

/* ---------------------------------------------------------------- streaming */

static const char *const STREAM =
    "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\","
    "\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{}}]}\n\n"
    "data: {\"choices\":[{\"content_filter_results\":{},\"delta\":{\"content\":\"\",\"role\":"
    "\"assistant\"},\"finish_reason\":null,\"index\":0}],\"created\":1,\"id\":\"c1\","
    "\"model\":\"gpt-4o\",\"object\":\"chat.completion.chunk\"}\n\n"
    "data: {\"choices\":[{\"content_filter_results\":{\"hate\":{\"filtered\":false}},\"delta\":"
    "{\"content\":\"Hi \\u00e9\"},\"finish_reason\":null,\"index\":0}],\"created\":1,\"id\":"
    "\"c1\",\"model\":\"gpt-4o\",\"object\":\"chat.completion.chunk\"}\r\n\r\n"
    "data: {\"choices\":[{\"content_filter_offsets\":{\"check_offset\":0,\"end_offset\":4},"
    "\"content_filter_results\":{},\"finish_reason\":null,\"index\":0}],\"created\":1,"
    "\"id\":\"c1\",\"model\":\"gpt-4o\",\"object\":\"chat.completion.chunk\"}\n\n"
    "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\",\"index\":0}],\"created\":1,"
    "\"id\":\"c1\",\"model\":\"gpt-4o\",\"object\":\"chat.completion.chunk\"}\n\n"
    ": keep-alive\n\n"
    "data: {\"choices\":[],\"created\":1,\"id\":\"c1\",\"model\":\"gpt-4o\",\"object\":"
    "\"chat.completion.chunk\",\"usage\":{\"completion_tokens\":2,\"prompt_tokens\":9,"
    "\"total_tokens\":11}}\n\n"
    "data: [DONE]\n\n";

/* What the caller gets: the prompt-filter chunk gone, the annotation with a
 * delta; the rest byte for byte. */
static const char *const CHUNKS =
    "{\"choices\":[{\"content_filter_results\":{},\"delta\":{\"content\":\"\",\"role\":"
    "\"assistant\"},\"finish_reason\":null,\"index\":0}],\"created\":1,\"id\":\"c1\","
    "\"model\":\"gpt-4o\",\"object\":\"chat.completion.chunk\"}\n"
    "{\"choices\":[{\"content_filter_results\":{\"hate\":{\"filtered\":false}},\"delta\":"
    "{\"content\":\"Hi \\u00e9\"},\"finish_reason\":null,\"index\":0}],\"created\":1,\"id\":"
    "\"c1\",\"model\":\"gpt-4o\",\"object\":\"chat.completion.chunk\"}\n"
    "{\"choices\":[{\"content_filter_offsets\":{\"check_offset\":0,\"end_offset\":4},"
    "\"content_filter_results\":{},\"finish_reason\":null,\"index\":0,\"delta\":{}}],"
    "\"created\":1,\"id\":\"c1\",\"model\":\"gpt-4o\",\"object\":\"chat.completion.chunk\"}\n"
    "{\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\",\"index\":0}],\"created\":1,"
    "\"id\":\"c1\",\"model\":\"gpt-4o\",\"object\":\"chat.completion.chunk\"}\n"
    "{\"choices\":[],\"created\":1,\"id\":\"c1\",\"model\":\"gpt-4o\",\"object\":"
    "\"chat.completion.chunk\",\"usage\":{\"completion_tokens\":2,\"prompt_tokens\":9,"
    "\"total_tokens\":11}}\n";

static int collect(void *ctx, const char *json, size_t len, cJSON *parsed)
{
    lx_buf *b = ctx;
    assert_true(cJSON_IsObject(parsed));
    llmux__buf_append(b, json, len);
    llmux__buf_puts(b, "\n");
    return 0;
}

/* Feeds `in` in pieces (step bytes each, or two pieces split at `at`);
 * returns the status, the chunks in *out. */
static int decode(const char *in, size_t step, size_t at, lx_buf *out, lx_err *err)
{
    lx_config *cfg = load(BASE ",\"api_key_env\":\"LLMUX_TEST_AZURE_KEY\"");
    lx_provider_cfg *p = &cfg->providers[0];
    void *st = p->ops->stream_new(p);
    assert_non_null(st);
    size_t len = strlen(in), off = 0;
    int rc = LLMUX_OK;
    while (off < len && rc == LLMUX_OK) {
        size_t n = step ? step : (off == 0 && at ? at : len - off);
        if (n > len - off)
            n = len - off;
        rc = p->ops->stream_feed(st, in + off, n, collect, out, err);
        off += n;
    }
    if (rc == LX_STREAM_END || rc == LLMUX_OK)
        rc = p->ops->stream_finish(st, err);
    p->ops->stream_free(st);
    llmux__config_unref(cfg);
    return rc;
}

static void test_stream_golden_every_split(void **state)
{
    size_t len = strlen(STREAM);
    for (size_t mode = 0; mode < len + 2; mode++) {
        lx_buf out = LX_BUF_INIT;
        lx_err err = {0};
        /* whole, byte at a time, then split at every position */
        int rc = mode == 0 ? decode(STREAM, 0, 0, &out, &err)
                 : mode == 1 ? decode(STREAM, 1, 0, &out, &err)
                             : decode(STREAM, 0, mode - 1, &out, &err);
        assert_int_equal(rc, LLMUX_OK);
        assert_string_equal(out.data, CHUNKS);
        llmux__buf_free(&out);
    }
}

static void test_stream_errors(void **state)
{
    lx_buf out = LX_BUF_INIT;
    lx_err err = {0};
    /* Azure's content filter inside a stream */
    assert_int_equal(decode("data: {\"error\":{\"code\":\"content_filter\",\"message\":\"The "
                            "response was filtered\",\"innererror\":{}}}\n\n",
                            0, 0, &out, &err),
                     LLMUX_ERR_CONTENT_FILTER);
    assert_string_equal(err.provider_code, "content_filter");
    assert_string_equal(err.msg, "error inside the stream (content_filter): The response was "
                                 "filtered");
    /* other errors keep the OpenAI adapter's class */
    memset(&err, 0, sizeof err);
    assert_int_equal(decode("data: {\"error\":{\"code\":\"server_error\",\"message\":\"x\"}}\n\n",
                            0, 0, &out, &err),
                     LLMUX_ERR_PROVIDER);
    assert_int_equal(decode("data: {\"choices\":[]}\n\n", 0, 0, &out, &err), LLMUX_ERR_CONNECT);
    assert_int_equal(decode("data: {\"choices\":[{\"index\":0}],\"x\":\"\xff\"}\n\n", 0, 0, &out,
                            &err),
                     LLMUX_ERR_BAD_RESPONSE);
    assert_null(out.data); /* nothing reached the sink */
    llmux__buf_free(&out);
}

/* --------------------------------------------------- through the simulator */

static llmux *open_gw(const char *provider_members, char *cfg_out, size_t cap)
{
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "{\"providers\":{\"az\":{\"type\":\"azure\",\"base_url\":\"%s/azd\"%s}},"
             "\"models\":{\"m\":{\"targets\":[{\"provider\":\"az\",\"model\":\"gpt4o-prod\"}]}}}",
             SIM.url, provider_members);
    if (cfg_out)
        snprintf(cfg_out, cap, "%s", cfg);
    llmux *gw = NULL;
    char err[256];
    if (llmux_open(&gw, cfg, err, sizeof err) != LLMUX_OK)
        fail_msg("open: %s", err);
    return gw;
}

static const char *lr_string(cJSON *lr, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(lr, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void test_sim_routes_and_auth(void **state)
{
    setenv("LLMUX_TEST_AZURE_SIMKEY", "sim-azure-key", 1);
    assert_int_equal(sim_set(&SIM, "azd", "{\"require_key\":\"sim-azure-key\"}"), 200);
    llmux *gw = open_gw(",\"api_version\":\"2024-10-21\",\"api_key_env\":\"LLMUX_TEST_AZURE_SIMKEY\"",
                        NULL, 0);
    llmux_result *res;
    const char *req = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hello az\"}]}";
    assert_int_equal(llmux_chat(gw, req, NULL, &res), LLMUX_OK);
    cJSON *o = cJSON_Parse(llmux_result_json(res));
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "choices"), 0), "message");
    assert_string_equal(lr_string((cJSON *)msg, "content"), "[azd] hello az");
    assert_non_null(cJSON_GetObjectItemCaseSensitive(o, "prompt_filter_results"));
    cJSON_Delete(o);
    assert_int_equal(llmux_result_prompt_tokens(res), 2);
    llmux_result_free(res);
    char *s = sim_get(&SIM, "azd");
    cJSON *all = cJSON_Parse(s);
    free(s);
    cJSON *lr = cJSON_GetObjectItemCaseSensitive(all, "last_request");
    assert_string_equal(lr_string(lr, "path"),
                        "/azd/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21");
    assert_string_equal(lr_string(lr, "authorization"), "api-key: sim-azure-key");
    cJSON_Delete(all);
    llmux_close(gw);

    /* the v1 route with an Entra ID token */
    setenv("LLMUX_TEST_AZURE_SIMTOKEN", "sim-azure-key", 1);
    gw = open_gw(",\"bearer_token_env\":\"LLMUX_TEST_AZURE_SIMTOKEN\"", NULL, 0);
    assert_int_equal(llmux_chat(gw, req, NULL, &res), LLMUX_OK);
    llmux_result_free(res);
    s = sim_get(&SIM, "azd");
    all = cJSON_Parse(s);
    free(s);
    lr = cJSON_GetObjectItemCaseSensitive(all, "last_request");
    assert_string_equal(lr_string(lr, "path"), "/azd/openai/v1/chat/completions");
    assert_string_equal(lr_string(lr, "authorization"), "Bearer sim-azure-key");
    assert_string_equal(lr_string(cJSON_GetObjectItemCaseSensitive(lr, "body"), "model"),
                        "gpt4o-prod");
    cJSON_Delete(all);
    llmux_close(gw);

    /* a wrong key: Azure's 401, the key never in the error */
    setenv("LLMUX_TEST_AZURE_SIMKEY", "wrong-azure-key", 1);
    gw = open_gw(",\"api_version\":\"2024-10-21\",\"api_key_env\":\"LLMUX_TEST_AZURE_SIMKEY\"",
                 NULL, 0);
    assert_int_equal(llmux_chat(gw, req, NULL, &res), LLMUX_ERR_AUTH);
    assert_int_equal(llmux_result_http_status(res), 401);
    assert_non_null(strstr(llmux_result_error(res), "Access denied due to invalid subscription"));
    assert_null(strstr(llmux_result_trace_json(res), "wrong-azure-key"));
    llmux_result_free(res);
    llmux_close(gw);
    assert_int_equal(sim_set(&SIM, "azd", "{}"), 200);
}

typedef struct streamed {
    lx_buf chunks;
    int n;
} streamed;

static int on_stream_chunk(const char *json, size_t len, void *payload)
{
    streamed *s = payload;
    cJSON *c = cJSON_ParseWithLength(json, len);
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(c, "choices");
    /* every chunk the caller sees has the OpenAI shape */
    assert_true(cJSON_IsArray(choices));
    for (const cJSON *ch = choices->child; ch; ch = ch->next)
        assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(ch, "delta")));
    assert_true(choices->child || cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(c, "usage")));
    cJSON_Delete(c);
    s->n++;
    llmux__buf_append(&s->chunks, json, len);
    return 0;
}

/* The message, finish_reason and usage of a chat.completion. */
static char *essence(const char *json)
{
    cJSON *o = cJSON_Parse(json);
    cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "choices"), 0);
    cJSON *tcs = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(ch, "message"),
                                                  "tool_calls");
    for (cJSON *tc = tcs ? tcs->child : NULL; tc; tc = tc->next) /* the simulator numbers them */
        cJSON_ReplaceItemInObjectCaseSensitive(tc, "id", cJSON_CreateString("call"));
    cJSON *e = cJSON_CreateObject();
    cJSON_AddItemToObject(e, "message",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(ch, "message"), 1));
    cJSON_AddItemToObject(e, "finish_reason",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(ch, "finish_reason"), 1));
    cJSON_AddItemToObject(e, "usage",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(o, "usage"), 1));
    char *s = cJSON_PrintUnformatted(e);
    cJSON_Delete(e);
    cJSON_Delete(o);
    return s;
}

/* Plain and streamed calls agree, for text, a tool call, its result turn, an
 * image and json_schema output, on both routes. */
static void test_sim_stream_agrees(void **state)
{
    static const char *const reqs[] = {
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"one two three\"}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":"
        "{\"type\":\"object\"}}}],\"tool_choice\":\"required\"}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"weather?\"},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":"
        "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"sunny\"},"
        "{\"role\":\"user\",\"content\":\"thanks\"}],\"tools\":[{\"type\":\"function\","
        "\"function\":{\"name\":\"get_weather\"}}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
        "\"text\":\"what is this\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
        "\"data:image/png;base64,iVBORw0KGgo=\"}}]}]}",
        "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"json please\"}],"
        "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"x\","
        "\"schema\":{\"type\":\"object\"}}}}",
    };
    static const char *const routes[] = {",\"api_version\":\"2024-10-21\"", ""};
    for (size_t r = 0; r < 2; r++) {
        llmux *gw = open_gw(routes[r], NULL, 0);
        for (size_t i = 0; i < sizeof reqs / sizeof *reqs; i++) {
            llmux_result *plain, *st;
            assert_int_equal(llmux_chat(gw, reqs[i], NULL, &plain), LLMUX_OK);
            streamed s = {LX_BUF_INIT, 0};
            assert_int_equal(llmux_chat_stream(gw, reqs[i], NULL, on_stream_chunk, &s, &st),
                             LLMUX_OK);
            char *a = essence(llmux_result_json(plain)), *b = essence(llmux_result_json(st));
            assert_string_equal(a, b);
            if (i == 1)
                assert_non_null(strstr(a, "\"finish_reason\":\"tool_calls\""));
            free(a);
            free(b);
            /* what the simulator received is what the caller sent, with the deployment */
            char *g = sim_get(&SIM, "azd");
            cJSON *all = cJSON_Parse(g);
            free(g);
            cJSON *body = cJSON_GetObjectItemCaseSensitive(
                cJSON_GetObjectItemCaseSensitive(all, "last_request"), "body");
            cJSON *sent = cJSON_Parse(reqs[i]);
            cJSON_ReplaceItemInObjectCaseSensitive(sent, "model", cJSON_CreateString("gpt4o-prod"));
            cJSON_DeleteItemFromObjectCaseSensitive(body, "stream");
            cJSON_DeleteItemFromObjectCaseSensitive(body, "stream_options");
            assert_true(cJSON_Compare(body, sent, 1));
            cJSON_Delete(sent);
            cJSON_Delete(all);
            llmux__buf_free(&s.chunks);
            llmux_result_free(plain);
            llmux_result_free(st);
        }
        llmux_close(gw);
    }
}

/* Each error class the simulator's Azure routes give on demand. */
static void test_sim_errors(void **state)
{
    static const struct {
        int status;
        const char *retry_after;
        int want;
        const char *code, *in_error;
    } cases[] = {
        {400, NULL, LLMUX_ERR_CONTENT_FILTER, "content_filter",
         "[ResponsibleAIPolicyViolation: hate, violence]"},
        {429, "2", LLMUX_ERR_RATE_LIMIT, "429", "exceeded token rate limit"},
        {404, NULL, LLMUX_ERR_NOT_FOUND, "DeploymentNotFound", "does not exist"},
        {500, NULL, LLMUX_ERR_PROVIDER, "500", "simulated Azure error (HTTP 500)"},
        {503, NULL, LLMUX_ERR_PROVIDER, "503", "simulated Azure error (HTTP 503)"},
    };
    llmux *gw = open_gw(",\"api_version\":\"2024-10-21\"", NULL, 0);
    const char *req = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        for (int stream = 0; stream < 2; stream++) {
            char set[256];
            snprintf(set, sizeof set, "{\"faults\":[{\"type\":\"status\",\"status\":%d%s%s%s}]}",
                     cases[i].status, cases[i].retry_after ? ",\"retry_after\":\"" : "",
                     cases[i].retry_after ? cases[i].retry_after : "",
                     cases[i].retry_after ? "\"" : "");
            assert_int_equal(sim_set(&SIM, "azd", set), 200);
            llmux_result *res;
            streamed s = {LX_BUF_INIT, 0};
            int rc = stream ? llmux_chat_stream(gw, req, NULL, on_stream_chunk, &s, &res)
                            : llmux_chat(gw, req, NULL, &res);
            assert_int_equal(rc, cases[i].want);
            assert_int_equal(s.n, 0);
            assert_int_equal(llmux_result_http_status(res), cases[i].status);
            assert_non_null(strstr(llmux_result_error(res), cases[i].in_error));
            char code[96];
            snprintf(code, sizeof code, "\"provider_code\":\"%s\"", cases[i].code);
            const char *trace = llmux_result_trace_json(res);
            assert_non_null(strstr(trace, code));
            if (cases[i].retry_after)
                assert_non_null(strstr(trace, "\"retry_after_ms\":2000"));
            llmux_result_free(res);
        }
    }
    assert_int_equal(sim_set(&SIM, "azd", "{}"), 200);
    llmux_close(gw);
}

/* ------------------------------------- the simulator's Azure routes, raw */

static size_t grow(char *p, size_t sz, size_t n, void *ud)
{
    return llmux__buf_append(ud, p, sz * n) ? 0 : sz * n;
}

/* POST body to SIM.url + path with one extra header line (may be NULL);
 * the status, and the answer in *out. */
static long sim_post(const char *path, const char *header, const char *body, lx_buf *out)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", SIM.url, path);
    CURL *h = curl_easy_init();
    struct curl_slist *hs = curl_slist_append(NULL, "Content-Type: application/json");
    if (header)
        hs = curl_slist_append(hs, header);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, grow);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    long status = 0;
    assert_int_equal(curl_easy_perform(h), CURLE_OK);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(h);
    llmux__buf_append(out, "", 1);
    return status;
}

static const char *const SIM_REQ =
    "{\"model\":\"d\",\"messages\":[{\"role\":\"user\",\"content\":\"a b\"}]}";

static void expect_sim(const char *path, const char *header, const char *body, long status,
                       const char *answer)
{
    lx_buf out = LX_BUF_INIT;
    long got = sim_post(path, header, body, &out);
    if (got != status)
        fail_msg("%s: %ld %s", path, got, out.data);
    if (answer)
        assert_string_equal(out.data, answer);
    llmux__buf_free(&out);
}

static void test_simulator_azure_routes(void **state)
{
    assert_int_equal(sim_set(&SIM, "azraw", "{\"require_key\":\"k-raw\"}"), 200);
    const char *dep = "/azraw/openai/deployments/d/chat/completions";
    expect_sim(dep, "api-key: k-raw", SIM_REQ, 404,
               "{\"error\":{\"code\":\"404\",\"message\":\"Resource not found\"}}");
    expect_sim("/azraw/openai/deployments/d/chat/completions?x=1&api-version=", "api-key: k-raw",
               SIM_REQ, 404, NULL);
    expect_sim("/azraw/openai/v1/chat/completions?api-version=2024-10-21", "api-key: k-raw",
               SIM_REQ, 400,
               "{\"error\":{\"code\":\"BadRequest\",\"message\":\"api-version query "
               "parameter is not allowed when using /v1 path\"}}");
    expect_sim("/azraw/openai/v1/chat/completions?api-version=preview", "api-key: k-raw", SIM_REQ,
               200, NULL);
    expect_sim("/azraw/openai/deployments/d/chat/completions?api-version=2024-10-21",
               "api-key: k-wrong", SIM_REQ, 401,
               "{\"error\":{\"code\":\"401\",\"message\":\"Access denied due to invalid "
               "subscription key or wrong API endpoint. Make sure to provide a valid key for an "
               "active subscription and use a correct regional API endpoint for your "
               "resource.\"}}");
    expect_sim("/azraw/openai/deployments/d/chat/completions?api-version=2024-10-21",
               "Authorization: Bearer k-raw", SIM_REQ, 200, NULL);
    /* counted: the v1 preview call, the wrong key and the bearer one */
    char *st = sim_get(&SIM, "azraw");
    assert_non_null(strstr(st, "\"requests\":3,"));
    assert_non_null(strstr(st, "\"path\":\"/azraw/openai/deployments/d/chat/completions"
                               "?api-version=2024-10-21\",\"authorization\":\"Bearer k-raw\""));
    free(st);
    /* an unknown Azure path falls through to the OpenAI routing's 404 */
    expect_sim("/azraw/openai/engines/d/chat/completions", NULL, SIM_REQ, 404, NULL);
    assert_int_equal(sim_set(&SIM, "azraw", "{}"), 200);
}

static void test_simulator_azure_stream_shape(void **state)
{
    const char *path = "/openai/deployments/d/chat/completions?api-version=2024-10-21";
    const char *req = "{\"model\":\"d\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                      "\"content\":\"a b\"}]}";
    lx_buf out = LX_BUF_INIT;
    assert_int_equal(sim_post(path, NULL, req, &out), 200);
    /* prompt filter, role, "[default] ", "a ", "b", annotation, finish, [DONE] */
    int events = 0, bare = 0;
    for (const char *e = out.data; (e = strstr(e, "data: ")); e += 6) {
        events++;
        if (events == 1)
            assert_true(strncmp(e, "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":"
                                   "\"\",\"object\":\"\",\"prompt_filter_results\":",
                                   80) == 0);
        const char *end = strstr(e, "\n\n");
        char ev[2048];
        snprintf(ev, sizeof ev, "%.*s", (int)(end - e), e);
        bare += strstr(ev, "\"index\":0,\"finish_reason\":null,\"content_filter_results\"") !=
                NULL;
    }
    assert_int_equal(events, 8);
    assert_int_equal(bare, 1);
    llmux__buf_free(&out);
    /* stream_drop: the prompt-filter and role chunks, then the connection closes */
    assert_int_equal(sim_set(&SIM, "default", "{\"faults\":[{\"type\":\"stream_drop\"}]}"), 200);
    char url[256];
    snprintf(url, sizeof url, "%s%s", SIM.url, path);
    CURL *h = curl_easy_init();
    lx_buf got = LX_BUF_INIT;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, req);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, grow);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &got);
    assert_int_equal(curl_easy_perform(h), CURLE_PARTIAL_FILE);
    curl_easy_cleanup(h);
    llmux__buf_append(&got, "", 1);
    int n = 0;
    for (const char *e = got.data; (e = strstr(e, "data: ")); e += 6)
        n++;
    assert_int_equal(n, 2);
    llmux__buf_free(&got);
    assert_int_equal(sim_set(&SIM, "default", "{}"), 200);
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
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_build_routes_and_auth),
        cmocka_unit_test(test_build_encodes_deployment),
        cmocka_unit_test(test_bearer_env_unset),
        cmocka_unit_test(test_parse_response),
        cmocka_unit_test(test_classify_errors),
        cmocka_unit_test(test_stream_golden_every_split),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_sim_routes_and_auth),
        cmocka_unit_test(test_sim_stream_agrees),
        cmocka_unit_test(test_sim_errors),
        cmocka_unit_test(test_simulator_azure_routes),
        cmocka_unit_test(test_simulator_azure_stream_shape),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
