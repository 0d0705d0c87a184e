/* The core call end to end against the simulator on loopback: answers,
 * fallback on each kind of failure, errors that stop, keys from the
 * environment, timeouts, streaming, tool calls, the trace and the ledger. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "llmux.h"
#include "sim_harness.h"

static sim SIM;
static int counter;

#define HELLO "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}"

/* Unique deployment names per test so tests never see each other's faults. */
static void names(char a[32], char b[32])
{
    counter++;
    snprintf(a, 32, "a%d", counter);
    snprintf(b, 32, "b%d", counter);
}

static llmux *open_two(const char *a, const char *b, const char *extra)
{
    const char *deps[] = {a, b, NULL};
    char models[512];
    snprintf(models, sizeof models,
             "{\"one\":{\"targets\":[{\"provider\":\"%s\",\"model\":\"m-a\"}]},"
             "\"two\":{\"targets\":[{\"provider\":\"%s\",\"model\":\"m-a\"},"
             "{\"provider\":\"%s\",\"model\":\"m-b\"}]}}",
             a, a, b);
    char *cfg = sim_config(&SIM, deps, models, extra);
    llmux *gw = NULL;
    char err[512];
    if (llmux_open(&gw, cfg, err, sizeof err) != LLMUX_OK)
        fail_msg("open: %s\n%s", err, cfg);
    free(cfg);
    return gw;
}

static llmux_result *chat(llmux *gw, const char *model, const llmux_call_options *o)
{
    char req[512];
    snprintf(req, sizeof req, HELLO, model);
    llmux_result *r = NULL;
    int rc = llmux_chat(gw, req, o, &r);
    assert_non_null(r);
    assert_int_equal(rc, llmux_result_status(r));
    return r;
}

static cJSON *trace(const llmux_result *r)
{
    cJSON *t = cJSON_Parse(llmux_result_trace_json(r));
    assert_non_null(t);
    return t;
}

static const cJSON *attempt_n(const cJSON *t, int i)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItem(t, "attempts"), i);
}

static const char *sget(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double nget(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -12345;
}

static int requests_seen(const char *deployment)
{
    char *body = sim_get(&SIM, deployment);
    if (!body)
        return 0; /* never used */
    cJSON *j = cJSON_Parse(body);
    int n = (int)nget(j, "requests");
    cJSON_Delete(j);
    free(body);
    return n;
}

static void test_plain_call(void **state)
{
    char a[32], b[32];
    names(a, b);
    llmux *gw = open_two(a, b, NULL);
    llmux_result *r = chat(gw, "one", NULL);
    assert_int_equal(llmux_result_status(r), LLMUX_OK);
    assert_string_equal(llmux_result_error(r), "");
    assert_string_equal(llmux_result_provider(r), a);
    assert_string_equal(llmux_result_model(r), "m-a");
    assert_int_equal(llmux_result_http_status(r), 200);
    assert_true(llmux_result_cost_usd(r) < 0);
    assert_int_equal(llmux_result_prompt_tokens(r), 3); /* ceil(11 bytes / 4) */
    assert_int_equal(llmux_result_completion_tokens(r), 3);

    cJSON *resp = cJSON_Parse(llmux_result_json(r));
    assert_string_equal(sget(resp, "object"), "chat.completion");
    assert_string_equal(sget(resp, "model"), "m-a");
    const cJSON *msg = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(resp, "choices"), 0),
                                           "message");
    char want[64];
    snprintf(want, sizeof want, "[%s] hello there", a);
    assert_string_equal(sget(msg, "content"), want);
    cJSON_Delete(resp);

    /* the provider received the target's model id, not the alias */
    char *seen = sim_get(&SIM, a);
    cJSON *j = cJSON_Parse(seen);
    const cJSON *body = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "last_request"), "body");
    assert_string_equal(sget(body, "model"), "m-a");
    cJSON_Delete(j);
    free(seen);

    cJSON *t = trace(r);
    assert_string_equal(sget(t, "model"), "one");
    assert_string_equal(sget(t, "route"), "alias");
    assert_string_equal(sget(t, "status"), "ok");
    assert_string_equal(sget(t, "provider"), a);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(t, "attempts")), 1);
    assert_string_equal(sget(attempt_n(t, 0), "action"), "answered");
    assert_string_equal(sget(attempt_n(t, 0), "outcome"), "ok");
    assert_true(nget(attempt_n(t, 0), "latency_ms") > 0);
    assert_non_null(strstr(sget(t, "reason"), "answered on the first attempt"));
    cJSON_Delete(t);
    llmux_result_free(r);
    llmux_close(gw);
}

/* The first target fails with `fault`; the second answers. */
static void check_fallback(const char *fault, const char *outcome, int http_status)
{
    char a[32], b[32];
    names(a, b);
    char settings[256];
    snprintf(settings, sizeof settings, "{\"faults\":[%s]}", fault);
    assert_int_equal(sim_set(&SIM, a, settings), 200);
    llmux *gw = open_two(a, b, NULL);
    llmux_result *r = chat(gw, "two", NULL);
    if (llmux_result_status(r) != LLMUX_OK)
        fail_msg("fault %s: %s", fault, llmux_result_error(r));
    assert_string_equal(llmux_result_provider(r), b);
    assert_string_equal(llmux_result_model(r), "m-b");
    cJSON *t = trace(r);
    const cJSON *a0 = attempt_n(t, 0), *a1 = attempt_n(t, 1);
    assert_string_equal(sget(a0, "provider"), a);
    if (strcmp(sget(a0, "outcome"), outcome) != 0)
        fail_msg("fault %s: outcome %s, want %s", fault, sget(a0, "outcome"), outcome);
    assert_int_equal((int)nget(a0, "http_status"), http_status);
    assert_string_equal(sget(a0, "action"), "fallback");
    assert_non_null(sget(a0, "error"));
    assert_string_equal(sget(a1, "provider"), b);
    assert_string_equal(sget(a1, "action"), "answered");
    assert_non_null(strstr(sget(t, "reason"), "after falling back past 1 failed target"));
    cJSON_Delete(t);
    llmux_result_free(r);
    llmux_close(gw);
}

static void test_fallback_on_5xx(void **state)
{
    check_fallback("{\"type\":\"status\",\"status\":503}", "provider", 503);
    check_fallback("{\"type\":\"status\",\"status\":500}", "provider", 500);
    check_fallback("{\"type\":\"status\",\"status\":529}", "provider", 529);
}

static void test_fallback_on_429_records_retry_after(void **state)
{
    char a[32], b[32];
    names(a, b);
    sim_set(&SIM, a, "{\"faults\":[{\"type\":\"status\",\"status\":429,\"retry_after\":\"7\"}]}");
    llmux *gw = open_two(a, b, NULL);
    llmux_result *r = chat(gw, "two", NULL);
    assert_int_equal(llmux_result_status(r), LLMUX_OK);
    cJSON *t = trace(r);
    assert_string_equal(sget(attempt_n(t, 0), "outcome"), "rate_limit");
    assert_int_equal((int)nget(attempt_n(t, 0), "retry_after_ms"), 7000);
    cJSON_Delete(t);
    llmux_result_free(r);
    llmux_close(gw);
}

static void test_fallback_on_broken_connections_and_bodies(void **state)
{
    check_fallback("{\"type\":\"drop\"}", "connect", 0);
    check_fallback("{\"type\":\"drop_mid_body\"}", "connect", 200);
    check_fallback("{\"type\":\"malformed\"}", "bad_response", 200);
}

static void test_fallback_on_connection_refused(void **state)
{
    char a[32], b[32];
    names(a, b);
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"providers\":{\"dead\":{\"type\":\"openai\",\"base_url\":\"http://127.0.0.1:1/v1\"},"
             "\"%s\":{\"type\":\"openai\",\"base_url\":\"%s/%s/v1\"}},"
             "\"models\":{\"x\":{\"targets\":[{\"provider\":\"dead\",\"model\":\"d\"},"
             "{\"provider\":\"%s\",\"model\":\"m-b\"}]}}}",
             b, SIM.url, b, b);
    llmux *gw;
    char err[256];
    assert_int_equal(llmux_open(&gw, cfg, err, sizeof err), LLMUX_OK);
    llmux_result *r = chat(gw, "x", NULL);
    assert_int_equal(llmux_result_status(r), LLMUX_OK);
    cJSON *t = trace(r);
    assert_string_equal(sget(attempt_n(t, 0), "outcome"), "connect");
    assert_non_null(strstr(sget(attempt_n(t, 0), "error"), "provider \"dead\" (model d): "));
    cJSON_Delete(t);
    llmux_result_free(r);
    llmux_close(gw);
}

static void test_client_errors_stop_without_fallback(void **state)
{
    static const struct {
        const char *fault;
        int status, http;
    } cases[] = {
        {"{\"type\":\"status\",\"status\":400}", LLMUX_ERR_BAD_REQUEST, 400},
        {"{\"type\":\"status\",\"status\":400,\"body\":{\"error\":{\"message\":\"This model's "
         "maximum context length is 8192 tokens\",\"type\":\"invalid_request_error\",\"code\":"
         "\"context_length_exceeded\"}}}",
         LLMUX_ERR_CONTEXT_WINDOW, 400},
        {"{\"type\":\"status\",\"status\":422}", LLMUX_ERR_BAD_REQUEST, 422},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char a[32], b[32];
        names(a, b);
        char settings[512];
        snprintf(settings, sizeof settings, "{\"faults\":[%s]}", cases[i].fault);
        assert_int_equal(sim_set(&SIM, a, settings), 200);
        llmux *gw = open_two(a, b, NULL);
        llmux_result *r = chat(gw, "two", NULL);
        assert_int_equal(llmux_result_status(r), cases[i].status);
        assert_int_equal(requests_seen(b), 0);
        cJSON *t = trace(r);
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(t, "attempts")), 1);
        assert_string_equal(sget(attempt_n(t, 0), "action"), "stop");
        cJSON_Delete(t);
        /* the error JSON is an OpenAI-style error object */
        cJSON *e = cJSON_Parse(llmux_result_json(r));
        const cJSON *err = cJSON_GetObjectItem(e, "error");
        assert_non_null(sget(err, "message"));
        assert_string_equal(sget(err, "type"), "invalid_request_error");
        assert_int_equal((int)nget(err, "http_status"), cases[i].http);
        assert_int_equal(llmux_result_http_status(r), cases[i].http);
        cJSON_Delete(e);
        llmux_result_free(r);
        llmux_close(gw);
    }
}

static void test_all_targets_fail(void **state)
{
    char a[32], b[32];
    names(a, b);
    sim_set(&SIM, a, "{\"faults\":[{\"type\":\"status\",\"status\":503,\"count\":-1}]}");
    sim_set(&SIM, b, "{\"faults\":[{\"type\":\"status\",\"status\":429,\"count\":-1}]}");
    llmux *gw = open_two(a, b, NULL);
    llmux_result *r = chat(gw, "two", NULL);
    assert_int_equal(llmux_result_status(r), LLMUX_ERR_RATE_LIMIT);
    assert_int_equal(llmux_result_http_status(r), 429);
    assert_string_equal(llmux_result_provider(r), b);
    char want[128];
    snprintf(want, sizeof want, "all 2 attempts for \"two\" failed; last: provider \"%s\" (model m-b): HTTP 429", b);
    assert_memory_equal(llmux_result_error(r), want, strlen(want));
    cJSON *e = cJSON_Parse(llmux_result_json(r));
    const cJSON *err = cJSON_GetObjectItem(e, "error");
    assert_string_equal(sget(err, "type"), "rate_limit_error");
    assert_string_equal(sget(err, "code"), "rate_limit");
    assert_string_equal(sget(err, "message"), llmux_result_error(r));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(err, "param")));
    cJSON_Delete(e);
    cJSON *t = trace(r);
    assert_string_equal(sget(t, "status"), "rate_limit");
    assert_string_equal(sget(attempt_n(t, 1), "action"), "stop");
    assert_non_null(strstr(sget(t, "reason"), "2 tried, none answered"));
    cJSON_Delete(t);
    llmux_result_free(r);
    llmux_close(gw);
}

static void test_request_errors(void **state)
{
    char a[32], b[32];
    names(a, b);
    llmux *gw = open_two(a, b, NULL);
    llmux_result *r = NULL;

    assert_int_equal(llmux_chat(gw, "{\"model\":\"one\"", NULL, &r), LLMUX_ERR_BAD_REQUEST);
    assert_int_equal(llmux_result_http_status(r), 400);
    assert_non_null(strstr(llmux_result_json(r), "\"type\":\"invalid_request_error\""));
    llmux_result_free(r);

    r = chat(gw, "nope", NULL);
    assert_int_equal(llmux_result_status(r), LLMUX_ERR_UNKNOWN_MODEL);
    assert_int_equal(llmux_result_http_status(r), 404);
    assert_string_equal(llmux_result_error(r),
                        "model \"nope\" is not a configured alias (configured: one, two)");
    assert_string_equal(llmux_result_provider(r), "");
    cJSON *t = trace(r);
    assert_string_equal(sget(t, "route"), "none");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(t, "attempts")), 0);
    cJSON_Delete(t);
    llmux_result_free(r);
    assert_int_equal(requests_seen(a), 0);

    /* argument errors still give a result */
    assert_int_equal(llmux_chat(NULL, "{}", NULL, &r), LLMUX_ERR_INVALID_ARGUMENT);
    assert_string_equal(llmux_result_error(r), "gw is NULL");
    llmux_result_free(r);
    assert_int_equal(llmux_chat(gw, NULL, NULL, &r), LLMUX_ERR_INVALID_ARGUMENT);
    llmux_result_free(r);
    assert_int_equal(llmux_chat(gw, "{}", NULL, NULL), LLMUX_ERR_INVALID_ARGUMENT);
    llmux_call_options o = {0};
    assert_int_equal(llmux_chat(gw, "{}", &o, &r), LLMUX_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(llmux_result_error(r), "llmux_call_options_init"));
    llmux_result_free(r);
    assert_int_equal(llmux_chat_stream(gw, "{}", NULL, NULL, NULL, &r), LLMUX_ERR_INVALID_ARGUMENT);
    assert_string_equal(llmux_result_error(r), "on_chunk is NULL");
    llmux_result_free(r);
    llmux_close(gw);
}

static void test_keys_from_environment(void **state)
{
    char a[32], b[32];
    names(a, b);
    sim_set(&SIM, a, "{\"require_key\":\"sk-sim-secret-1234\"}");
    sim_set(&SIM, b, "{\"require_key\":\"sk-sim-secret-1234\"}");
    setenv("LLMUX_TEST_GOOD_KEY", "sk-sim-secret-1234", 1);
    setenv("LLMUX_TEST_WRONG_KEY", "sk-wrong-key-5678", 1);
    unsetenv("LLMUX_TEST_MISSING_KEY");
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"providers\":{"
             "\"missing\":{\"type\":\"openai\",\"base_url\":\"%s/%s/v1\",\"api_key_env\":\"LLMUX_TEST_MISSING_KEY\"},"
             "\"wrong\":{\"type\":\"openai\",\"base_url\":\"%s/%s/v1\",\"api_key_env\":\"LLMUX_TEST_WRONG_KEY\"},"
             "\"good\":{\"type\":\"openai\",\"base_url\":\"%s/%s/v1\",\"api_key_env\":\"LLMUX_TEST_GOOD_KEY\"}},"
             "\"models\":{\"x\":{\"targets\":[{\"provider\":\"missing\",\"model\":\"m1\"},"
             "{\"provider\":\"wrong\",\"model\":\"m2\"},{\"provider\":\"good\",\"model\":\"m3\"}]},"
             "\"w\":{\"targets\":[{\"provider\":\"wrong\",\"model\":\"m2\"}]}}}",
             SIM.url, a, SIM.url, a, SIM.url, b);
    llmux *gw;
    char err[256];
    assert_int_equal(llmux_open(&gw, cfg, err, sizeof err), LLMUX_OK);
    llmux_result *r = chat(gw, "x", NULL);
    assert_int_equal(llmux_result_status(r), LLMUX_OK);
    assert_string_equal(llmux_result_provider(r), "good");
    cJSON *t = trace(r);
    assert_string_equal(sget(attempt_n(t, 0), "outcome"), "auth");
    assert_string_equal(sget(attempt_n(t, 0), "error"),
                        "provider \"missing\" (model m1): the environment variable "
                        "LLMUX_TEST_MISSING_KEY (providers.missing.api_key_env) is not set");
    assert_int_equal((int)nget(attempt_n(t, 0), "http_status"), 0);
    assert_string_equal(sget(attempt_n(t, 1), "outcome"), "auth");
    assert_int_equal((int)nget(attempt_n(t, 1), "http_status"), 401);
    cJSON_Delete(t);
    /* keys never appear in traces, errors or results */
    assert_null(strstr(llmux_result_trace_json(r), "sk-wrong-key-5678"));
    assert_null(strstr(llmux_result_trace_json(r), "sk-sim-secret-1234"));
    llmux_result_free(r);

    char *seen = sim_get(&SIM, b);
    cJSON *j = cJSON_Parse(seen);
    assert_string_equal(sget(cJSON_GetObjectItem(j, "last_request"), "authorization"),
                        "Bearer sk-sim-secret-1234");
    cJSON_Delete(j);
    free(seen);

    r = chat(gw, "w", NULL);
    assert_int_equal(llmux_result_status(r), LLMUX_ERR_AUTH);
    assert_int_equal(llmux_result_http_status(r), 401);
    assert_null(strstr(llmux_result_error(r), "sk-wrong-key-5678"));
    assert_null(strstr(llmux_result_json(r), "sk-wrong-key-5678"));
    llmux_result_free(r);
    llmux_close(gw);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void test_call_timeout(void **state)
{
    char a[32], b[32];
    names(a, b);
    sim_set(&SIM, a, "{\"latency_ms\":3000}");
    llmux *gw = open_two(a, b, NULL);
    llmux_call_options o;
    llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION);
    o.timeout_ms = 300;
    double t0 = now_ms();
    llmux_result *r = chat(gw, "one", &o);
    double took = now_ms() - t0;
    assert_int_equal(llmux_result_status(r), LLMUX_ERR_TIMEOUT);
    assert_true(took >= 250 && took < 2000);
    cJSON *e = cJSON_Parse(llmux_result_json(r));
    assert_string_equal(sget(cJSON_GetObjectItem(e, "error"), "type"), "timeout_error");
    cJSON_Delete(e);
    llmux_result_free(r);

    /* the whole call's budget covers every attempt: none is left for b, so
     * the call stops at a instead of "falling back" to a target it cannot try */
    r = chat(gw, "two", &o);
    assert_int_equal(llmux_result_status(r), LLMUX_ERR_TIMEOUT);
    cJSON *t = trace(r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(t, "attempts")), 1);
    assert_string_equal(sget(attempt_n(t, 0), "action"), "stop");
    cJSON_Delete(t);
    assert_int_equal(requests_seen(b), 0);
    llmux_result_free(r);
    llmux_close(gw);
}

static void test_provider_timeout_falls_back(void **state)
{
    char a[32], b[32];
    names(a, b);
    sim_set(&SIM, a, "{\"latency_ms\":3000}");
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"providers\":{\"slow\":{\"type\":\"openai\",\"base_url\":\"%s/%s/v1\",\"timeout_ms\":200},"
             "\"fast\":{\"type\":\"openai\",\"base_url\":\"%s/%s/v1\"}},"
             "\"models\":{\"x\":{\"targets\":[{\"provider\":\"slow\",\"model\":\"s\"},"
             "{\"provider\":\"fast\",\"model\":\"f\"}]}},\"defaults\":{\"timeout_ms\":5000}}",
             SIM.url, a, SIM.url, b);
    llmux *gw;
    char err[256];
    assert_int_equal(llmux_open(&gw, cfg, err, sizeof err), LLMUX_OK);
    double t0 = now_ms();
    llmux_result *r = chat(gw, "x", NULL);
    assert_true(now_ms() - t0 < 2000);
    assert_int_equal(llmux_result_status(r), LLMUX_OK);
    assert_string_equal(llmux_result_provider(r), "fast");
    cJSON *t = trace(r);
    assert_string_equal(sget(attempt_n(t, 0), "outcome"), "timeout");
    cJSON_Delete(t);
    llmux_result_free(r);
    llmux_close(gw);
}

static void test_tool_calls_pass_through(void **state)
{
    char a[32], b[32];
    names(a, b);
    llmux *gw = open_two(a, b, NULL);
    const char *req =
        "{\"model\":\"one\",\"messages\":[{\"role\":\"user\",\"content\":\"weather in Paris\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"parameters\":"
        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}}],"
        "\"tool_choice\":\"required\"}";
    llmux_result *r = NULL;
    assert_int_equal(llmux_chat(gw, req, NULL, &r), LLMUX_OK);
    cJSON *resp = cJSON_Parse(llmux_result_json(r));
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(resp, "choices"), 0);
    assert_string_equal(sget(c0, "finish_reason"), "tool_calls");
    const cJSON *tc = cJSON_GetArrayItem(cJSON_GetObjectItem(cJSON_GetObjectItem(c0, "message"), "tool_calls"), 0);
    const cJSON *fn = cJSON_GetObjectItem(tc, "function");
    assert_string_equal(sget(fn, "name"), "get_weather");
    cJSON *args = cJSON_Parse(sget(fn, "arguments"));
    assert_string_equal(sget(args, "echo"), "weather in Paris");
    cJSON_Delete(args);
    cJSON_Delete(resp);
    llmux_result_free(r);
    /* the tools reached the provider unchanged */
    char *seen = sim_get(&SIM, a);
    assert_non_null(strstr(seen, "get_weather"));
    free(seen);
    llmux_close(gw);
}

/* ---------------------------------------------------------------- streaming */

typedef struct collected {
    char text[4096]; /* concatenated delta content */
    int n;
    int usage_chunks;
    int stop_at;
    char first[1024];
} collected;

static int on_chunk(const char *json, size_t len, void *payload)
{
    collected *c = payload;
    assert_int_equal(strlen(json), len);
    cJSON *j = cJSON_Parse(json);
    assert_non_null(j);
    assert_string_equal(sget(j, "object"), "chat.completion.chunk");
    if (c->n == 0)
        snprintf(c->first, sizeof c->first, "%s", json);
    const cJSON *choices = cJSON_GetObjectItem(j, "choices");
    if (cJSON_GetArraySize(choices) == 0 && cJSON_IsObject(cJSON_GetObjectItem(j, "usage")))
        c->usage_chunks++;
    const cJSON *delta = cJSON_GetObjectItem(cJSON_GetArrayItem(choices, 0), "delta");
    const char *content = sget(delta, "content");
    if (content)
        strncat(c->text, content, sizeof c->text - strlen(c->text) - 1);
    cJSON_Delete(j);
    c->n++;
    return c->stop_at && c->n >= c->stop_at;
}

static void test_stream_matches_plain_call(void **state)
{
    char a[32], b[32];
    names(a, b);
    llmux *gw = open_two(a, b, NULL);
    const char *req = "{\"model\":\"one\",\"messages\":[{\"role\":\"user\",\"content\":"
                      "\"stream me five words please\"}]}";
    llmux_result *plain = NULL, *streamed = NULL;
    assert_int_equal(llmux_chat(gw, req, NULL, &plain), LLMUX_OK);
    collected c;
    memset(&c, 0, sizeof c);
    assert_int_equal(llmux_chat_stream(gw, req, NULL, on_chunk, &c, &streamed), LLMUX_OK);
    assert_true(c.n >= 6); /* role chunk, one per word, finish chunk */
    assert_int_equal(c.usage_chunks, 0); /* not asked for: not forwarded */

    cJSON *p = cJSON_Parse(llmux_result_json(plain));
    cJSON *s = cJSON_Parse(llmux_result_json(streamed));
    const cJSON *pm = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(p, "choices"), 0), "message");
    const cJSON *sm = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(s, "choices"), 0), "message");
    assert_string_equal(sget(pm, "content"), sget(sm, "content"));
    assert_string_equal(c.text, sget(sm, "content"));
    assert_string_equal(sget(s, "object"), "chat.completion");
    assert_string_equal(sget(cJSON_GetArrayItem(cJSON_GetObjectItem(s, "choices"), 0), "finish_reason"), "stop");
    /* usage was requested from the provider anyway, so the call is accounted */
    assert_int_equal(llmux_result_prompt_tokens(streamed), llmux_result_prompt_tokens(plain));
    assert_int_equal(llmux_result_completion_tokens(streamed), llmux_result_completion_tokens(plain));
    cJSON *t = trace(streamed);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(t, "stream")));
    assert_int_equal((int)nget(t, "chunks"), c.n);
    cJSON_Delete(t);
    cJSON_Delete(p);
    cJSON_Delete(s);
    llmux_result_free(plain);
    llmux_result_free(streamed);

    /* with include_usage the usage chunk reaches the caller */
    const char *req2 = "{\"model\":\"one\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                       "\"stream_options\":{\"include_usage\":true}}";
    memset(&c, 0, sizeof c);
    assert_int_equal(llmux_chat_stream(gw, req2, NULL, on_chunk, &c, &streamed), LLMUX_OK);
    assert_int_equal(c.usage_chunks, 1);
    llmux_result_free(streamed);
    llmux_close(gw);
}

static void test_stream_tool_call_is_assembled(void **state)
{
    char a[32], b[32];
    names(a, b);
    llmux *gw = open_two(a, b, NULL);
    const char *req =
        "{\"model\":\"one\",\"messages\":[{\"role\":\"user\",\"content\":\"weather\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}}";
    collected c;
    memset(&c, 0, sizeof c);
    llmux_result *r = NULL;
    assert_int_equal(llmux_chat_stream(gw, req, NULL, on_chunk, &c, &r), LLMUX_OK);
    cJSON *s = cJSON_Parse(llmux_result_json(r));
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(s, "choices"), 0);
    assert_string_equal(sget(c0, "finish_reason"), "tool_calls");
    const cJSON *msg = cJSON_GetObjectItem(c0, "message");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(msg, "content")));
    const cJSON *fn = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(msg, "tool_calls"), 0), "function");
    assert_string_equal(sget(fn, "name"), "get_weather");
    assert_string_equal(sget(fn, "arguments"), "{\"echo\":\"weather\"}");
    cJSON_Delete(s);
    llmux_result_free(r);
    llmux_close(gw);
}

static void test_stream_cancel_and_failures(void **state)
{
    char a[32], b[32];
    names(a, b);
    llmux *gw = open_two(a, b, NULL);
    const char *req = "{\"model\":\"two\",\"messages\":[{\"role\":\"user\",\"content\":"
                      "\"one two three four five six\"}]}";
    collected c;
    llmux_result *r = NULL;

    /* the caller stops after two chunks */
    memset(&c, 0, sizeof c);
    c.stop_at = 2;
    assert_int_equal(llmux_chat_stream(gw, req, NULL, on_chunk, &c, &r), LLMUX_ERR_CANCELLED);
    assert_int_equal(c.n, 2);
    assert_int_equal(requests_seen(b), 0); /* a cancel never falls back */
    llmux_result_free(r);

    /* before the first chunk, a failing target falls back */
    sim_set(&SIM, a, "{\"faults\":[{\"type\":\"status\",\"status\":503}]}");
    memset(&c, 0, sizeof c);
    assert_int_equal(llmux_chat_stream(gw, req, NULL, on_chunk, &c, &r), LLMUX_OK);
    assert_string_equal(llmux_result_provider(r), b);
    assert_non_null(strstr(c.text, b));
    llmux_result_free(r);

    /* after chunks were delivered, a cut stream is an error, not a fallback */
    sim_set(&SIM, a, "{\"faults\":[{\"type\":\"stream_drop\"}]}");
    int before = requests_seen(b);
    memset(&c, 0, sizeof c);
    assert_int_equal(llmux_chat_stream(gw, req, NULL, on_chunk, &c, &r), LLMUX_ERR_CONNECT);
    assert_true(c.n >= 1);
    assert_int_equal(requests_seen(b), before);
    assert_string_equal(llmux_result_provider(r), a);
    cJSON *t = trace(r);
    assert_string_equal(sget(attempt_n(t, 0), "action"), "stop");
    cJSON_Delete(t);
    llmux_result_free(r);

    /* a slow stream still completes */
    sim_set(&SIM, a, "{\"faults\":[{\"type\":\"slow_stream\",\"ms\":20}]}");
    memset(&c, 0, sizeof c);
    assert_int_equal(llmux_chat_stream(gw, req, NULL, on_chunk, &c, &r), LLMUX_OK);
    assert_string_equal(llmux_result_provider(r), a);
    llmux_result_free(r);
    llmux_close(gw);
}

static void test_direct_route_and_spend(void **state)
{
    char a[32], b[32];
    names(a, b);
    llmux *gw = open_two(a, b, "\"routing\":{\"allow_direct\":true}");
    char model[64];
    snprintf(model, sizeof model, "%s/some-model-x", a);
    llmux_call_options o;
    llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION);
    o.workflow = "wf";
    o.task = "draft";
    o.key = "gw-key-abc";
    llmux_result *r = chat(gw, model, &o);
    assert_int_equal(llmux_result_status(r), LLMUX_OK);
    assert_string_equal(llmux_result_model(r), "some-model-x");
    cJSON *t = trace(r);
    assert_string_equal(sget(t, "route"), "direct");
    assert_string_equal(sget(t, "workflow"), "wf");
    assert_string_equal(sget(t, "task"), "draft");
    cJSON_Delete(t);
    llmux_result_free(r);
    o.task = "review";
    r = chat(gw, "one", &o);
    llmux_result_free(r);
    r = chat(gw, "missing-alias", &o);
    llmux_result_free(r);

    char *report = NULL;
    assert_int_equal(llmux_spend_json(gw, "task", &report), LLMUX_OK);
    cJSON *j = cJSON_Parse(report);
    assert_string_equal(sget(j, "group_by"), "task");
    const cJSON *rows = cJSON_GetObjectItem(j, "rows");
    assert_int_equal(cJSON_GetArraySize(rows), 2);
    assert_string_equal(sget(cJSON_GetArrayItem(rows, 0), "group"), "draft");
    assert_int_equal((int)nget(cJSON_GetArrayItem(rows, 0), "calls"), 1);
    assert_int_equal((int)nget(cJSON_GetArrayItem(rows, 1), "calls"), 2);
    assert_int_equal((int)nget(cJSON_GetArrayItem(rows, 1), "errors"), 1);
    const cJSON *total = cJSON_GetObjectItem(j, "total");
    assert_int_equal((int)nget(total, "calls"), 3);
    assert_int_equal((int)nget(total, "unpriced_calls"), 3);
    assert_true(nget(total, "prompt_tokens") > 0);
    cJSON_Delete(j);
    llmux_free(report);

    /* gateway keys are stored hashed */
    assert_int_equal(llmux_spend_json(gw, "key", &report), LLMUX_OK);
    assert_null(strstr(report, "gw-key-abc"));
    assert_non_null(strstr(report, "\"group\":\"key-"));
    llmux_free(report);
    assert_int_equal(llmux_spend_json(gw, "colour", &report), LLMUX_ERR_INVALID_ARGUMENT);
    assert_null(report);
    assert_int_equal(llmux_spend_json(gw, NULL, &report), LLMUX_OK);
    assert_non_null(strstr(report, "\"rows\":[]"));
    llmux_free(report);
    llmux_close(gw);
}

static void test_result_outlives_gateway(void **state)
{
    char a[32], b[32];
    names(a, b);
    llmux *gw = open_two(a, b, NULL);
    llmux_result *r = chat(gw, "one", NULL);
    llmux_close(gw);
    /* borrowed strings live until the result is freed */
    assert_string_equal(llmux_result_provider(r), a);
    assert_non_null(strstr(llmux_result_trace_json(r), a));
    llmux_result_free(r);
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
        cmocka_unit_test(test_plain_call),
        cmocka_unit_test(test_fallback_on_5xx),
        cmocka_unit_test(test_fallback_on_429_records_retry_after),
        cmocka_unit_test(test_fallback_on_broken_connections_and_bodies),
        cmocka_unit_test(test_fallback_on_connection_refused),
        cmocka_unit_test(test_client_errors_stop_without_fallback),
        cmocka_unit_test(test_all_targets_fail),
        cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_keys_from_environment),
        cmocka_unit_test(test_call_timeout),
        cmocka_unit_test(test_provider_timeout_falls_back),
        cmocka_unit_test(test_tool_calls_pass_through),
        cmocka_unit_test(test_stream_matches_plain_call),
        cmocka_unit_test(test_stream_tool_call_is_assembled),
        cmocka_unit_test(test_stream_cancel_and_failures),
        cmocka_unit_test(test_direct_route_and_spend),
        cmocka_unit_test(test_result_outlives_gateway),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
