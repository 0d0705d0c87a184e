/* The Bedrock adapter end to end against the simulator's Converse API:
 * SigV4 verified by the simulator with its test secret (and refused with a
 * wrong one), bearer API keys, plain chat, a tool call and its result turn,
 * an image, json_schema output, streaming (agreeing with the unstreamed call
 * on content, tool calls, finish_reason and usage), and each error class, as
 * an HTTP error and inside a stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "llmux.h"
#include "sim_harness.h"

#define SIM_SECRET "llmux-sim-bedrock-secret" /* tools/llmux-sim/bedrock.h */

static sim SIM;
static int counter;

static void dep_name(char d[32])
{
    snprintf(d, 32, "br%d", ++counter);
}

/* A gateway with one Bedrock provider on deployment dep ("auth" is the
 * provider's credential keys) and the alias "m" -> model. */
static llmux *open_bedrock(const char *dep, const char *auth, const char *model)
{
    char cfg[1024], err[512];
    snprintf(cfg, sizeof cfg,
             "{\"providers\":{\"%s\":{\"type\":\"bedrock\",\"region\":\"us-east-1\","
             "\"base_url\":\"%s/%s\",%s}},"
             "\"models\":{\"m\":{\"targets\":[{\"provider\":\"%s\",\"model\":\"%s\"}]}}}",
             dep, SIM.url, dep, auth, dep, model);
    llmux *gw = NULL;
    if (llmux_open(&gw, cfg, err, sizeof err) != LLMUX_OK)
        fail_msg("open: %s\n%s", err, cfg);
    return gw;
}

#define SIGV4 "\"access_key_id_env\":\"LLMUX_SIM_AK\",\"secret_access_key_env\":\"LLMUX_SIM_SK\""
#define CLAUDE "anthropic.claude-3-haiku-20240307-v1:0"

static cJSON *last_request(const char *dep)
{
    char *s = sim_get(&SIM, dep);
    cJSON *o = cJSON_Parse(s);
    free(s);
    cJSON *lr = cJSON_DetachItemFromObject(o, "last_request");
    cJSON_Delete(o);
    return lr;
}

static const cJSON *message_of(const cJSON *res)
{
    return cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(res, "choices"), 0), "message");
}

static const char *finish_of(const cJSON *res)
{
    return cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(res, "choices"), 0), "finish_reason")
        ->valuestring;
}

static llmux_result *call(llmux *gw, const char *req)
{
    llmux_result *r = NULL;
    int rc = llmux_chat(gw, req, NULL, &r);
    assert_non_null(r);
    assert_int_equal(rc, llmux_result_status(r));
    return r;
}

typedef struct collected {
    int n;
    char text[512];
} collected;

static int on_chunk(const char *json, size_t len, void *payload)
{
    collected *c = payload;
    c->n++;
    cJSON *o = cJSON_Parse(json);
    assert_non_null(o);
    const cJSON *d = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "choices"), 0), "delta");
    const cJSON *t = cJSON_GetObjectItem(d, "content");
    if (cJSON_IsString(t))
        strncat(c->text, t->valuestring, sizeof c->text - strlen(c->text) - 1);
    cJSON_Delete(o);
    return 0;
}

static void test_plain_chat_signed(void **state)
{
    (void)state;
    char dep[32];
    dep_name(dep);
    llmux *gw = open_bedrock(dep, SIGV4, CLAUDE);
    llmux_result *r = call(gw, "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                               "{\"role\":\"user\",\"content\":\"hello there\"}],\"max_tokens\":64}");
    if (llmux_result_status(r))
        fail_msg("%s", llmux_result_error(r));
    cJSON *o = cJSON_Parse(llmux_result_json(r));
    char want[64];
    snprintf(want, sizeof want, "[%s] hello there", dep);
    assert_string_equal(cJSON_GetObjectItem(message_of(o), "content")->valuestring, want);
    assert_string_equal(finish_of(o), "stop");
    /* Converse does not name the model: the answer still does, the target's id */
    assert_string_equal(cJSON_GetObjectItem(o, "model")->valuestring, llmux_result_model(r));
    assert_true(llmux_result_model(r)[0] != '\0');
    /* (9 + 11 bytes) / 4 = 5 input tokens, 3 words */
    assert_int_equal(llmux_result_prompt_tokens(r), 5);
    assert_int_equal(llmux_result_completion_tokens(r), 3);
    assert_string_equal(llmux_result_model(r), CLAUDE);
    cJSON_Delete(o);
    llmux_result_free(r);
    /* what the simulator received: the model id encoded once in the path, SigV4 */
    cJSON *lr = last_request(dep);
    char path[128];
    snprintf(path, sizeof path, "/%s/model/anthropic.claude-3-haiku-20240307-v1%%3A0/converse", dep);
    assert_string_equal(cJSON_GetObjectItem(lr, "path")->valuestring, path);
    assert_int_equal(strncmp(cJSON_GetObjectItem(lr, "authorization")->valuestring,
                             "AWS4-HMAC-SHA256 Credential=AKIDSIM/", 36), 0);
    char *body = cJSON_PrintUnformatted(cJSON_GetObjectItem(lr, "body"));
    assert_string_equal(body, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hello there\"}]}],"
                              "\"system\":[{\"text\":\"Be brief.\"}],\"inferenceConfig\":{\"maxTokens\":64}}");
    free(body);
    cJSON_Delete(lr);
    llmux_close(gw);
}

/* A wrong secret: the simulator's signature differs -> 403 InvalidSignatureException -> auth. */
static void test_wrong_secret_and_bearer(void **state)
{
    (void)state;
    char dep[32];
    dep_name(dep);
    llmux *gw = open_bedrock(dep, "\"access_key_id_env\":\"LLMUX_SIM_AK\",\"secret_access_key_env\":\"LLMUX_SIM_BAD_SK\"",
                             "m1");
    llmux_result *r = call(gw, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    assert_int_equal(llmux_result_status(r), LLMUX_ERR_AUTH);
    assert_int_equal(llmux_result_http_status(r), 403);
    assert_non_null(strstr(llmux_result_error(r), "(InvalidSignatureException): The request signature"));
    assert_null(strstr(llmux_result_error(r), "wrong-secret"));
    llmux_result_free(r);
    llmux_close(gw);

    /* a Bedrock API key as a bearer token */
    dep_name(dep);
    assert_int_equal(sim_set(&SIM, dep, "{\"require_key\":\"br-key-123456\"}"), 200);
    gw = open_bedrock(dep, "\"api_key_env\":\"LLMUX_SIM_BEDROCK_KEY\"", "m1");
    r = call(gw, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    assert_int_equal(llmux_result_status(r), LLMUX_OK);
    llmux_result_free(r);
    llmux_close(gw);
    setenv("LLMUX_SIM_BEDROCK_KEY", "br-key-wrong", 1);
    gw = open_bedrock(dep, "\"api_key_env\":\"LLMUX_SIM_BEDROCK_KEY\"", "m1");
    r = call(gw, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    assert_int_equal(llmux_result_status(r), LLMUX_ERR_AUTH);
    assert_non_null(strstr(llmux_result_error(r), "UnrecognizedClientException"));
    llmux_result_free(r);
    llmux_close(gw);
    setenv("LLMUX_SIM_BEDROCK_KEY", "br-key-123456", 1);
}

#define TOOL_REQ                                                                                   \
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"weather in Paris\"}],"        \
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"weather\",\"parameters\":"         \
    "{\"type\":\"object\",\"properties\":{\"echo\":{\"type\":\"string\"}}}}}],\"tool_choice\":\"required\"}"

/* A tool call, then its result turn; streamed and unstreamed agree. */
static void test_tool_call_and_result_turn(void **state)
{
    (void)state;
    char dep[32];
    dep_name(dep);
    llmux *gw = open_bedrock(dep, SIGV4, "m1");
    llmux_result *r = call(gw, TOOL_REQ);
    if (llmux_result_status(r))
        fail_msg("%s", llmux_result_error(r));
    cJSON *o = cJSON_Parse(llmux_result_json(r));
    const cJSON *msg = message_of(o);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(msg, "content")));
    const cJSON *tc = cJSON_GetArrayItem(cJSON_GetObjectItem(msg, "tool_calls"), 0);
    assert_string_equal(cJSON_GetObjectItem(tc, "id")->valuestring, "tooluse_sim_1");
    const cJSON *fn = cJSON_GetObjectItem(tc, "function");
    assert_string_equal(cJSON_GetObjectItem(fn, "name")->valuestring, "weather");
    assert_string_equal(cJSON_GetObjectItem(fn, "arguments")->valuestring, "{\"echo\":\"weather in Paris\"}");
    assert_string_equal(finish_of(o), "tool_calls");
    cJSON_Delete(o);
    long pt = llmux_result_prompt_tokens(r), ct = llmux_result_completion_tokens(r);
    llmux_result_free(r);

    collected c;
    memset(&c, 0, sizeof c);
    llmux_result *s = NULL;
    assert_int_equal(llmux_chat_stream(gw, TOOL_REQ, NULL, on_chunk, &c, &s), LLMUX_OK);
    o = cJSON_Parse(llmux_result_json(s));
    msg = message_of(o);
    tc = cJSON_GetArrayItem(cJSON_GetObjectItem(msg, "tool_calls"), 0);
    assert_string_equal(cJSON_GetObjectItem(tc, "id")->valuestring, "tooluse_sim_2");
    fn = cJSON_GetObjectItem(tc, "function");
    assert_string_equal(cJSON_GetObjectItem(fn, "arguments")->valuestring, "{\"echo\":\"weather in Paris\"}");
    assert_string_equal(finish_of(o), "tool_calls");
    assert_int_equal(llmux_result_prompt_tokens(s), pt);
    assert_int_equal(llmux_result_completion_tokens(s), ct);
    cJSON_Delete(o);
    llmux_result_free(s);

    /* the result turn: toolUse and toolResult blocks, toolConfig sent, alternation kept */
    r = call(gw, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"weather in Paris\"},"
                 "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"tooluse_sim_1\","
                 "\"type\":\"function\",\"function\":{\"name\":\"weather\",\"arguments\":\"{\\\"echo\\\":\\\"x\\\"}\"}}]},"
                 "{\"role\":\"tool\",\"tool_call_id\":\"tooluse_sim_1\",\"content\":\"sunny\"},"
                 "{\"role\":\"user\",\"content\":\"thanks\"}]}");
    if (llmux_result_status(r))
        fail_msg("%s", llmux_result_error(r));
    o = cJSON_Parse(llmux_result_json(r));
    char want[64];
    snprintf(want, sizeof want, "[%s] thanks", dep); /* the last user turn's own text */
    assert_string_equal(cJSON_GetObjectItem(message_of(o), "content")->valuestring, want);
    cJSON_Delete(o);
    llmux_result_free(r);
    cJSON *lr = last_request(dep);
    char *body = cJSON_PrintUnformatted(cJSON_GetObjectItem(lr, "body"));
    assert_non_null(strstr(body, "{\"role\":\"user\",\"content\":[{\"toolResult\":{\"toolUseId\":\"tooluse_sim_1\","
                                 "\"content\":[{\"text\":\"sunny\"}]}},{\"text\":\"thanks\"}]}"));
    assert_non_null(strstr(body, "\"toolConfig\":{\"tools\":[{\"toolSpec\":{\"name\":\"weather\""));
    free(body);
    cJSON_Delete(lr);
    llmux_close(gw);
}

static void test_image_json_schema_and_stream(void **state)
{
    (void)state;
    char dep[32];
    dep_name(dep);
    llmux *gw = open_bedrock(dep, SIGV4, "m1");
    llmux_result *r = call(gw, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                               "\"text\":\"what is it\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
                               "\"data:image/jpeg;base64,/9j/4AAQ\"}}]}]}");
    assert_int_equal(llmux_result_status(r), LLMUX_OK);
    llmux_result_free(r);
    cJSON *lr = last_request(dep);
    char *body = cJSON_PrintUnformatted(cJSON_GetObjectItem(lr, "body"));
    assert_string_equal(body, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"what is it\"},"
                              "{\"image\":{\"format\":\"jpeg\",\"source\":{\"bytes\":\"/9j/4AAQ\"}}}]}]}");
    free(body);
    cJSON_Delete(lr);

    r = call(gw, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"cats\"}],"
                 "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"o\","
                 "\"schema\":{\"type\":\"object\",\"properties\":{\"echo\":{\"type\":\"string\"}}}}}}");
    assert_int_equal(llmux_result_status(r), LLMUX_OK);
    cJSON *o = cJSON_Parse(llmux_result_json(r));
    assert_string_equal(cJSON_GetObjectItem(message_of(o), "content")->valuestring, "{\"echo\":\"cats\"}");
    cJSON_Delete(o);
    llmux_result_free(r);

    /* a streamed text answer agrees with the unstreamed one */
    const char *req = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"one two three\"}]}";
    r = call(gw, req);
    collected c;
    memset(&c, 0, sizeof c);
    llmux_result *s = NULL;
    assert_int_equal(llmux_chat_stream(gw, req, NULL, on_chunk, &c, &s), LLMUX_OK);
    cJSON *p = cJSON_Parse(llmux_result_json(r)), *q = cJSON_Parse(llmux_result_json(s));
    assert_string_equal(cJSON_GetObjectItem(message_of(p), "content")->valuestring,
                        cJSON_GetObjectItem(message_of(q), "content")->valuestring);
    assert_string_equal(c.text, cJSON_GetObjectItem(message_of(q), "content")->valuestring);
    assert_string_equal(finish_of(p), finish_of(q));
    assert_string_equal(cJSON_GetObjectItem(q, "model")->valuestring, llmux_result_model(s));
    assert_int_equal(c.n, 6); /* role, four words ("[dep]" and three), finish; usage not asked for */
    assert_int_equal(llmux_result_prompt_tokens(r), llmux_result_prompt_tokens(s));
    assert_int_equal(llmux_result_completion_tokens(r), llmux_result_completion_tokens(s));
    assert_int_equal(llmux_result_completion_tokens(s), 4);
    cJSON_Delete(p);
    cJSON_Delete(q);
    llmux_result_free(r);
    llmux_result_free(s);
    llmux_close(gw);
}

/* Each error class, as Bedrock sends it: the HTTP status with x-amzn-ErrorType
 * for a plain call, an exception frame after messageStart for a stream. */
static void test_error_classes(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *body;
        int want;
        const char *type, *stream_type;
        int stream_want;
    } rows[] = {
        {429, NULL, LLMUX_ERR_RATE_LIMIT, "ThrottlingException", "throttlingException", LLMUX_ERR_RATE_LIMIT},
        {400, "{\"message\":\"Input is too long for requested model.\"}", LLMUX_ERR_CONTEXT_WINDOW,
         "ValidationException", "validationException", LLMUX_ERR_CONTEXT_WINDOW},
        {400, NULL, LLMUX_ERR_BAD_REQUEST, "ValidationException", "validationException", LLMUX_ERR_BAD_REQUEST},
        {403, NULL, LLMUX_ERR_PERMISSION, "AccessDeniedException", NULL, LLMUX_ERR_PERMISSION},
        {404, NULL, LLMUX_ERR_NOT_FOUND, "ResourceNotFoundException", NULL, LLMUX_ERR_NOT_FOUND},
        {424, NULL, LLMUX_ERR_PROVIDER, "ModelErrorException", "modelStreamErrorException", LLMUX_ERR_PROVIDER},
        {500, NULL, LLMUX_ERR_PROVIDER, "InternalServerException", "internalServerException", LLMUX_ERR_PROVIDER},
        {503, NULL, LLMUX_ERR_PROVIDER, "ServiceUnavailableException", "serviceUnavailableException", LLMUX_ERR_PROVIDER},
        {408, NULL, LLMUX_ERR_TIMEOUT, "ModelTimeoutException", "modelTimeoutException", LLMUX_ERR_TIMEOUT},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        char dep[32], settings[512];
        dep_name(dep);
        snprintf(settings, sizeof settings, "{\"faults\":[{\"type\":\"status\",\"status\":%d,\"count\":2%s%s}]}",
                 rows[i].status, rows[i].body ? ",\"body\":" : "", rows[i].body ? rows[i].body : "");
        assert_int_equal(sim_set(&SIM, dep, settings), 200);
        llmux *gw = open_bedrock(dep, SIGV4, "m1");
        const char *req = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
        llmux_result *r = call(gw, req);
        if (llmux_result_status(r) != rows[i].want)
            fail_msg("row %zu: %d %s", i, llmux_result_status(r), llmux_result_error(r));
        assert_int_equal(llmux_result_http_status(r), rows[i].status);
        assert_non_null(strstr(llmux_result_error(r), rows[i].type));
        llmux_result_free(r);
        collected c;
        memset(&c, 0, sizeof c);
        assert_int_equal(llmux_chat_stream(gw, req, NULL, on_chunk, &c, &r), rows[i].stream_want);
        const char *t = rows[i].stream_type ? rows[i].stream_type : rows[i].type;
        if (!strstr(llmux_result_error(r), t))
            fail_msg("row %zu: %s lacks %s", i, llmux_result_error(r), t);
        assert_int_equal(c.n, rows[i].stream_type ? 1 : 0); /* messageStart's role chunk */
        llmux_result_free(r);
        llmux_close(gw);
    }
}

/* A stream whose frame fails its CRC, and one cut after two messages. */
static void test_stream_faults(void **state)
{
    (void)state;
    char dep[32];
    dep_name(dep);
    assert_int_equal(sim_set(&SIM, dep, "{\"faults\":[{\"type\":\"malformed\"},{\"type\":\"stream_drop\"}]}"), 200);
    llmux *gw = open_bedrock(dep, SIGV4, "m1");
    const char *req = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a b c\"}]}";
    collected c;
    memset(&c, 0, sizeof c);
    llmux_result *r = NULL;
    assert_int_equal(llmux_chat_stream(gw, req, NULL, on_chunk, &c, &r), LLMUX_ERR_BAD_RESPONSE);
    assert_non_null(strstr(llmux_result_error(r), "fails its CRC"));
    llmux_result_free(r);
    memset(&c, 0, sizeof c);
    assert_int_equal(llmux_chat_stream(gw, req, NULL, on_chunk, &c, &r), LLMUX_ERR_CONNECT);
    assert_int_equal(c.n, 2);
    llmux_result_free(r);
    llmux_close(gw);
}

static int setup(void **state)
{
    (void)state;
    setenv("LLMUX_SIM_AK", "AKIDSIM", 1);
    setenv("LLMUX_SIM_SK", SIM_SECRET, 1);
    setenv("LLMUX_SIM_BAD_SK", "wrong-secret-key", 1);
    setenv("LLMUX_SIM_BEDROCK_KEY", "br-key-123456", 1);
    unsetenv("AWS_SESSION_TOKEN");
    return sim_start(&SIM);
}

static int teardown(void **state)
{
    (void)state;
    sim_stop(&SIM);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_chat_signed),
        cmocka_unit_test(test_wrong_secret_and_bearer),
        cmocka_unit_test(test_tool_call_and_result_turn),
        cmocka_unit_test(test_image_json_schema_and_stream),
        cmocka_unit_test(test_error_classes),
        cmocka_unit_test(test_stream_faults),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
