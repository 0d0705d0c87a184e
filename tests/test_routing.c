/*
 * Policy routing against the simulator: rules, strategies (weighted,
 * round_robin, least_latency, least_busy), health cooldowns with a half-open
 * probe and Retry-After, and a trace that names each decision.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <pthread.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "config/config.h"
#include "llmux.h"
#include "router/router.h"
#include "sim_harness.h"

static sim SIM;
static int counter;

static void name(char out[32], const char *prefix)
{
    snprintf(out, 32, "%s%d", prefix, ++counter);
}

static llmux *open_cfg(const char *const *deps, const char *models, const char *extra)
{
    char *cfg = sim_config(&SIM, deps, models, extra);
    llmux *gw = NULL;
    char err[512];
    if (llmux_open(&gw, cfg, err, sizeof err) != LLMUX_OK)
        fail_msg("open: %s\n%s", err, cfg);
    free(cfg);
    return gw;
}

static llmux_result *call(llmux *gw, const char *model, const char *task, const char *extra)
{
    char req[512];
    snprintf(req, sizeof req,
             "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]%s}", model,
             extra ? extra : "");
    llmux_call_options o;
    llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION);
    o.task = task;
    llmux_result *r = NULL;
    llmux_chat(gw, req, &o, &r);
    assert_non_null(r);
    return r;
}

static cJSON *trace_of(llmux_result *r)
{
    cJSON *t = cJSON_Parse(llmux_result_trace_json(r));
    assert_non_null(t);
    return t;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void test_rules_choose_the_alias(void **state)
{
    char a[32], b[32];
    name(a, "ra");
    name(b, "rb");
    const char *deps[] = {a, b, NULL};
    char models[512], extra[512];
    snprintf(models, sizeof models,
             "{\"cheap\":{\"targets\":[{\"provider\":\"%s\",\"model\":\"c\"}]},"
             "\"smart\":{\"targets\":[{\"provider\":\"%s\",\"model\":\"s\"}]}}",
             a, b);
    snprintf(extra, sizeof extra,
             "\"rules\":[{\"when\":{\"task\":\"classify\"},\"use\":\"cheap\"},"
             "{\"when\":{\"has_tools\":true},\"use\":\"smart\"}]");
    llmux *gw = open_cfg(deps, models, extra);
    /* the rule on task wins over the requested alias */
    llmux_result *r = call(gw, "smart", "classify", NULL);
    assert_int_equal(llmux_result_status(r), LLMUX_OK);
    assert_string_equal(llmux_result_model(r), "c");
    cJSON *t = trace_of(r);
    assert_int_equal(cJSON_GetObjectItem(t, "rule")->valueint, 0);
    assert_string_equal(cJSON_GetObjectItem(t, "alias")->valuestring, "cheap");
    assert_string_equal(cJSON_GetObjectItem(t, "strategy")->valuestring, "ordered");
    cJSON_Delete(t);
    llmux_result_free(r);
    /* a feature rule */
    r = call(gw, "cheap", NULL,
             ",\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}]");
    assert_string_equal(llmux_result_model(r), "s");
    t = trace_of(r);
    assert_int_equal(cJSON_GetObjectItem(t, "rule")->valueint, 1);
    cJSON_Delete(t);
    llmux_result_free(r);
    /* no rule matches: the requested alias */
    r = call(gw, "smart", "draft", NULL);
    assert_string_equal(llmux_result_model(r), "s");
    t = trace_of(r);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(t, "rule")));
    cJSON_Delete(t);
    llmux_result_free(r);
    llmux_close(gw);

    /* routing.requested_model_wins: a requested alias beats the rules */
    snprintf(extra, sizeof extra,
             "\"routing\":{\"requested_model_wins\":true},"
             "\"rules\":[{\"when\":{\"task\":\"classify\"},\"use\":\"cheap\"}]");
    gw = open_cfg(deps, models, extra);
    r = call(gw, "smart", "classify", NULL);
    assert_string_equal(llmux_result_model(r), "s");
    llmux_result_free(r);
    r = call(gw, "unknown-name", "classify", NULL); /* not an alias: the rules decide */
    assert_string_equal(llmux_result_model(r), "c");
    llmux_result_free(r);
    llmux_close(gw);
}

static void test_weighted_and_round_robin(void **state)
{
    char a[32], b[32];
    name(a, "wa");
    name(b, "wb");
    const char *deps[] = {a, b, NULL};
    char models[512];
    snprintf(models, sizeof models,
             "{\"w\":{\"strategy\":\"weighted\",\"targets\":[{\"provider\":\"%s\",\"model\":\"x\","
             "\"weight\":70},{\"provider\":\"%s\",\"model\":\"y\",\"weight\":30}]},"
             "\"rr\":{\"strategy\":\"round_robin\",\"targets\":[{\"provider\":\"%s\",\"model\":\"x\"},"
             "{\"provider\":\"%s\",\"model\":\"y\"}]}}",
             a, b, a, b);
    llmux *gw = open_cfg(deps, models, NULL);
    int x = 0;
    for (int i = 0; i < 1000; i++) {
        llmux_result *r = call(gw, "w", NULL, NULL);
        assert_int_equal(llmux_result_status(r), LLMUX_OK);
        x += strcmp(llmux_result_model(r), "x") == 0;
        llmux_result_free(r);
    }
    /* 70% of 1000: a binomial's sd is 14.5, so 640..760 is over 4 sd */
    if (x < 640 || x > 760)
        fail_msg("weighted 70/30 sent %d of 1000 calls to the 70 target", x);
    const char *prev = NULL;
    char seen[8][4];
    for (int i = 0; i < 8; i++) {
        llmux_result *r = call(gw, "rr", NULL, NULL);
        snprintf(seen[i], sizeof seen[i], "%s", llmux_result_model(r));
        if (prev)
            assert_string_not_equal(seen[i], prev); /* strictly alternates */
        prev = seen[i];
        llmux_result_free(r);
    }
    llmux_close(gw);
}

static void test_least_latency_prefers_the_fast_target(void **state)
{
    char a[32], b[32];
    name(a, "la");
    name(b, "lb");
    sim_set(&SIM, a, "{\"latency_ms\":40}");
    const char *deps[] = {a, b, NULL};
    char models[512];
    snprintf(models, sizeof models,
             "{\"ll\":{\"strategy\":\"least_latency\",\"targets\":[{\"provider\":\"%s\",\"model\":\"slow\"},"
             "{\"provider\":\"%s\",\"model\":\"fast\"}]}}",
             a, b);
    llmux *gw = open_cfg(deps, models, NULL);
    /* the first two calls measure each target (unmeasured ones go first) */
    for (int i = 0; i < 2; i++)
        llmux_result_free(call(gw, "ll", NULL, NULL));
    int fast = 0;
    for (int i = 0; i < 10; i++) {
        llmux_result *r = call(gw, "ll", NULL, NULL);
        fast += strcmp(llmux_result_model(r), "fast") == 0;
        llmux_result_free(r);
    }
    assert_int_equal(fast, 10);
    llmux_close(gw);
}

static void test_least_busy_orders_by_in_flight(void **state)
{
    const char *json = "{\"providers\":{\"p\":{\"type\":\"openai\",\"base_url\":\"http://127.0.0.1:9/v1\"}},"
                       "\"models\":{\"m\":{\"strategy\":\"least_busy\",\"targets\":["
                       "{\"provider\":\"p\",\"model\":\"a\"},{\"provider\":\"p\",\"model\":\"b\"},"
                       "{\"provider\":\"p\",\"model\":\"c\"}]}}}";
    lx_config *cfg;
    lx_err err = {0};
    assert_int_equal(llmux__config_parse(&cfg, json, strlen(json), &err), LLMUX_OK);
    lx_health *h;
    assert_int_equal(llmux__health_new(&h, cfg->n_targets_total, cfg->n_aliases), LLMUX_OK);
    llmux__health_begin(h, 0);
    llmux__health_begin(h, 0);
    llmux__health_begin(h, 1);
    lx_request req = {0};
    lx_route_input in = {"m", &req, NULL, NULL, NULL, 0, 0.0, h, 0, NULL};
    lx_route r;
    assert_int_equal(llmux__route(cfg, &in, &r, &err), LLMUX_OK);
    assert_string_equal(r.candidates[0].model, "c"); /* idle: first */
    assert_string_equal(r.candidates[1].model, "a"); /* the others in config order */
    assert_string_equal(r.candidates[2].model, "b");
    llmux__route_free(&r);
    llmux__health_begin(h, 2);
    llmux__health_begin(h, 2);
    llmux__health_begin(h, 2);
    assert_int_equal(llmux__route(cfg, &in, &r, &err), LLMUX_OK);
    assert_string_equal(r.candidates[0].model, "b"); /* now the least busy */
    assert_string_equal(r.strategy, "least_busy");
    llmux__route_free(&r);
    llmux__health_free(h);
    llmux__config_unref(cfg);
}

static void test_cooldown_probe_and_retry_after(void **state)
{
    char a[32], b[32];
    name(a, "ca");
    name(b, "cb");
    sim_set(&SIM, a, "{\"faults\":[{\"type\":\"status\",\"status\":503,\"count\":3}]}");
    const char *deps[] = {a, b, NULL};
    char models[512];
    snprintf(models, sizeof models,
             "{\"m\":{\"targets\":[{\"provider\":\"%s\",\"model\":\"x\"},"
             "{\"provider\":\"%s\",\"model\":\"y\"}]}}",
             a, b);
    llmux *gw = open_cfg(deps, models,
                         "\"routing\":{\"cooldown\":{\"after_failures\":3,\"ms\":300}}");
    for (int i = 0; i < 3; i++) { /* three failures in a row: a rests */
        llmux_result *r = call(gw, "m", NULL, NULL);
        assert_string_equal(llmux_result_model(r), "y");
        llmux_result_free(r);
    }
    llmux_result *r = call(gw, "m", NULL, NULL);
    assert_string_equal(llmux_result_model(r), "y");
    cJSON *t = trace_of(r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(t, "attempts")), 1);
    cJSON *sk = cJSON_GetArrayItem(cJSON_GetObjectItem(t, "skipped"), 0);
    assert_non_null(sk);
    assert_string_equal(cJSON_GetObjectItem(sk, "provider")->valuestring, a);
    assert_non_null(strstr(cJSON_GetObjectItem(sk, "reason")->valuestring,
                           "after 3 failures (last: provider)"));
    cJSON_Delete(t);
    llmux_result_free(r);
    /* the rest is over: one call probes a, which has recovered, and it is trusted again */
    sleep_ms(350);
    r = call(gw, "m", NULL, NULL);
    assert_string_equal(llmux_result_model(r), "x");
    llmux_result_free(r);
    r = call(gw, "m", NULL, NULL);
    assert_string_equal(llmux_result_model(r), "x");
    llmux_result_free(r);

    /* a 429 rests the target at once, for its Retry-After */
    sim_set(&SIM, a,
            "{\"faults\":[{\"type\":\"status\",\"status\":429,\"retry_after\":\"1\",\"count\":1}]}");
    r = call(gw, "m", NULL, NULL);
    assert_string_equal(llmux_result_model(r), "y");
    llmux_result_free(r);
    r = call(gw, "m", NULL, NULL);
    t = trace_of(r);
    sk = cJSON_GetArrayItem(cJSON_GetObjectItem(t, "skipped"), 0);
    assert_non_null(sk);
    assert_non_null(strstr(cJSON_GetObjectItem(sk, "reason")->valuestring, "(last: rate_limit)"));
    cJSON_Delete(t);
    llmux_result_free(r);
    sleep_ms(1050);
    r = call(gw, "m", NULL, NULL);
    assert_string_equal(llmux_result_model(r), "x");
    llmux_result_free(r);
    llmux_close(gw);

    /* without routing.cooldown a failing target is tried on every call (today's behaviour) */
    char c[32], d[32];
    name(c, "cc");
    name(d, "cd");
    sim_set(&SIM, c, "{\"faults\":[{\"type\":\"status\",\"status\":503,\"count\":-1}]}");
    const char *deps2[] = {c, d, NULL};
    snprintf(models, sizeof models,
             "{\"m\":{\"targets\":[{\"provider\":\"%s\",\"model\":\"x\"},"
             "{\"provider\":\"%s\",\"model\":\"y\"}]}}",
             c, d);
    gw = open_cfg(deps2, models, NULL);
    for (int i = 0; i < 5; i++) {
        r = call(gw, "m", NULL, NULL);
        t = trace_of(r);
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(t, "attempts")), 2);
        cJSON_Delete(t);
        llmux_result_free(r);
    }
    llmux_close(gw);
}

static void test_routing_config_errors(void **state)
{
    static const struct {
        const char *extra, *models, *message;
    } cases[] = {
        {NULL, "{\"m\":{\"strategy\":\"fastest\",\"targets\":[{\"provider\":\"p\",\"model\":\"x\"}]}}",
         "models.m.strategy: unknown strategy \"fastest\" (expected one of: ordered, weighted, "
         "round_robin, least_latency, least_busy, lowest_cost)"},
        {NULL, "{\"m\":{\"targets\":[{\"provider\":\"p\",\"model\":\"x\",\"weight\":-1}]}}",
         "models.m.targets[0].weight: out of range (expected 0 to 1000000)"},
        {"\"rules\":[{\"when\":{\"team\":1},\"use\":\"m\"}]", NULL,
         "rules[0].when.team: expected a string, got a number"},
        {"\"rules\":[{\"when\":{},\"use\":\"nope\"}]", NULL,
         "rules[0].use: no alias named \"nope\" in \"models\""},
        {"\"rules\":[{\"when\":{\"has_tools\":1},\"use\":\"m\"}]", NULL,
         "rules[0].when.has_tools: expected true or false, got a number"},
        {"\"rules\":[{\"use\":\"m\"}]", NULL,
         "rules[0].when: required (an empty object matches every call)"},
        {"\"rules\":{}", NULL, "rules: expected an array, got an object"},
        {"\"routing\":{\"cooldown\":{\"after_failures\":0}}", NULL,
         "routing.cooldown.after_failures: out of range (expected 1 to 1000)"},
        {"\"routing\":{\"retry\":{\"on\":[\"bad_request\"]}}", NULL,
         "routing.retry.on[0]: not a class a retry can help (expected one of: rate_limit, "
         "provider, timeout, connect, bad_response)"},
        {"\"routing\":{\"retry\":{\"max_retries\":11}}", NULL,
         "routing.retry.max_retries: out of range (expected 0 to 10)"},
        {NULL, "{\"m\":{\"on_context_window\":\"zz\",\"targets\":[{\"provider\":\"p\",\"model\":\"x\"}]}}",
         "models.m.on_context_window: no alias named \"zz\" in \"models\""},
        {NULL, "{\"m\":{\"on_content_filter\":\"m\",\"targets\":[{\"provider\":\"p\",\"model\":\"x\"}]}}",
         "models.m.on_content_filter: names the alias itself"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cfg[1024], err[512];
        snprintf(cfg, sizeof cfg,
                 "{\"providers\":{\"p\":{\"type\":\"openai\",\"base_url\":\"http://127.0.0.1:9/v1\"}},"
                 "\"models\":%s%s%s}",
                 cases[i].models ? cases[i].models
                                 : "{\"m\":{\"targets\":[{\"provider\":\"p\",\"model\":\"x\"}]}}",
                 cases[i].extra ? "," : "", cases[i].extra ? cases[i].extra : "");
        llmux *gw = NULL;
        int rc = llmux_open(&gw, cfg, err, sizeof err);
        if (rc != LLMUX_ERR_CONFIG || strcmp(err, cases[i].message) != 0)
            fail_msg("case %zu: got %d \"%s\"\nwant \"%s\"", i, rc, err, cases[i].message);
        assert_null(gw);
    }
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static const char *action_of(cJSON *t, int i)
{
    return cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(t, "attempts"), i), "action")
        ->valuestring;
}

static void *cancel_later(void *c)
{
    sleep_ms(150);
    llmux_cancel_trigger(c);
    return NULL;
}

static void test_retries_and_alias_fallback(void **state)
{
    char a[32], b[32], l[32];
    name(a, "ta");
    name(b, "tb");
    name(l, "tl");
    const char *deps[] = {a, b, l, NULL};
    char models[768];
    snprintf(models, sizeof models,
             "{\"m\":{\"on_context_window\":\"long\",\"targets\":[{\"provider\":\"%s\",\"model\":\"x\"},"
             "{\"provider\":\"%s\",\"model\":\"y\"}]},"
             "\"long\":{\"targets\":[{\"provider\":\"%s\",\"model\":\"big\"}]}}",
             a, b, l);
    llmux *gw = open_cfg(deps, models,
                         "\"routing\":{\"retry\":{\"max_retries\":2,\"backoff_ms\":10,"
                         "\"retry_after_cap_ms\":1500}}");
    /* two 503s, then the same target answers */
    sim_set(&SIM, a, "{\"faults\":[{\"type\":\"status\",\"status\":503,\"count\":2}]}");
    llmux_result *r = call(gw, "m", NULL, NULL);
    assert_string_equal(llmux_result_model(r), "x");
    cJSON *t = trace_of(r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(t, "attempts")), 3);
    assert_string_equal(action_of(t, 0), "retry");
    assert_string_equal(action_of(t, 1), "retry");
    assert_string_equal(action_of(t, 2), "answered");
    cJSON_Delete(t);
    llmux_result_free(r);
    /* three 503s: retries used up, the next target answers */
    sim_set(&SIM, a, "{\"faults\":[{\"type\":\"status\",\"status\":503,\"count\":3}]}");
    r = call(gw, "m", NULL, NULL);
    assert_string_equal(llmux_result_model(r), "y");
    t = trace_of(r);
    assert_string_equal(action_of(t, 2), "fallback");
    cJSON_Delete(t);
    llmux_result_free(r);
    /* Retry-After is honoured */
    sim_set(&SIM, a, "{\"faults\":[{\"type\":\"status\",\"status\":429,\"retry_after\":\"1\",\"count\":1}]}");
    double t0 = mono_ms();
    r = call(gw, "m", NULL, NULL);
    double took = mono_ms() - t0;
    assert_string_equal(llmux_result_model(r), "x");
    assert_true(took >= 990);
    t = trace_of(r);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(t, "attempts"), 0),
                                         "backoff_ms")->valueint, 1000);
    cJSON_Delete(t);
    llmux_result_free(r);
    /* a Retry-After over the cap moves on instead of waiting */
    sim_set(&SIM, a, "{\"faults\":[{\"type\":\"status\",\"status\":429,\"retry_after\":\"5\",\"count\":1}]}");
    t0 = mono_ms();
    r = call(gw, "m", NULL, NULL);
    assert_true(mono_ms() - t0 < 900);
    assert_string_equal(llmux_result_model(r), "y");
    llmux_result_free(r);
    /* a bad request is never retried */
    sim_set(&SIM, a, "{\"faults\":[{\"type\":\"status\",\"status\":400,\"count\":1}]}");
    r = call(gw, "m", NULL, NULL);
    assert_int_equal(llmux_result_status(r), LLMUX_ERR_BAD_REQUEST);
    t = trace_of(r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(t, "attempts")), 1);
    cJSON_Delete(t);
    llmux_result_free(r);
    /* the deadline bounds the wait: a 1 s Retry-After in a 400 ms call moves on */
    sim_set(&SIM, a, "{\"faults\":[{\"type\":\"status\",\"status\":429,\"retry_after\":\"1\",\"count\":1}]}");
    char req[256];
    snprintf(req, sizeof req, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    llmux_call_options o;
    llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION);
    o.timeout_ms = 400;
    t0 = mono_ms();
    assert_int_equal(llmux_chat(gw, req, &o, &r), LLMUX_OK);
    assert_true(mono_ms() - t0 < 400);
    assert_string_equal(llmux_result_model(r), "y");
    llmux_result_free(r);
    /* a cancel ends the wait at once */
    sim_set(&SIM, a, "{\"faults\":[{\"type\":\"status\",\"status\":429,\"retry_after\":\"1\",\"count\":1}]}");
    llmux_cancel *cn;
    llmux_cancel_new(&cn);
    llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION);
    o.cancel = cn;
    pthread_t th;
    pthread_create(&th, NULL, cancel_later, cn); /* fires 150 ms in, during the 1 s wait */
    t0 = mono_ms();
    assert_int_equal(llmux_chat(gw, req, &o, &r), LLMUX_ERR_CANCELLED);
    assert_true(mono_ms() - t0 < 600);
    pthread_join(th, NULL);
    t = trace_of(r);
    assert_string_equal(action_of(t, 0), "retry");
    assert_string_equal(action_of(t, 1), "stop");
    cJSON_Delete(t);
    llmux_result_free(r);
    llmux_cancel_free(cn);
    sim_set(&SIM, a, "{}");
    /* the prompt is too long for every target of m: the longer-context alias takes it */
    sim_set(&SIM, a, "{\"faults\":[{\"type\":\"status\",\"status\":400,\"count\":1,\"body\":"
                     "{\"error\":{\"message\":\"This model's maximum context length is 8 tokens\","
                     "\"code\":\"context_length_exceeded\"}}}]}");
    r = call(gw, "m", NULL, NULL);
    assert_int_equal(llmux_result_status(r), LLMUX_OK);
    assert_string_equal(llmux_result_model(r), "big");
    t = trace_of(r);
    assert_string_equal(cJSON_GetObjectItem(t, "alias_fallback")->valuestring, "long");
    assert_string_equal(action_of(t, 0), "alias_fallback");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(t, "attempts"), 0),
                                            "outcome")->valuestring, "context_window");
    cJSON_Delete(t);
    llmux_result_free(r);
    llmux_close(gw);
}

static void test_dry_run_and_health(void **state)
{
    char a[32], b[32];
    name(a, "da");
    name(b, "db");
    const char *deps[] = {a, b, NULL};
    char models[512], want[1024];
    snprintf(models, sizeof models,
             "{\"m\":{\"targets\":[{\"provider\":\"%s\",\"model\":\"x\"},"
             "{\"provider\":\"%s\",\"model\":\"y\"}]},\"c\":{\"targets\":[{\"provider\":\"%s\","
             "\"model\":\"z\"}]}}",
             a, b, b);
    llmux *gw = open_cfg(deps, models,
                         "\"rules\":[{\"when\":{\"task\":\"t\"},\"use\":\"c\"}],"
                         "\"routing\":{\"cooldown\":{\"after_failures\":1,\"ms\":60000}}");
    const char *req = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    llmux_call_options o;
    llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION);
    o.task = "t";
    char *out = NULL;
    int before = 0;
    {
        char *st = sim_get(&SIM, b);
        cJSON *j = cJSON_Parse(st);
        before = cJSON_GetObjectItem(j, "requests")->valueint;
        cJSON_Delete(j);
        free(st);
    }
    assert_int_equal(llmux_route_json(gw, req, &o, &out), LLMUX_OK);
    snprintf(want, sizeof want,
             "{\"model\":\"m\",\"route\":\"alias\",\"alias\":\"c\",\"rule\":0,\"strategy\":\"ordered\","
             "\"candidates\":[{\"provider\":\"%s\",\"model\":\"z\"}],\"skipped\":[]}",
             b);
    assert_string_equal(out, want);
    llmux_free(out);
    { /* nothing was called */
        char *st = sim_get(&SIM, b);
        cJSON *j = cJSON_Parse(st);
        assert_int_equal(cJSON_GetObjectItem(j, "requests")->valueint, before);
        cJSON_Delete(j);
        free(st);
    }
    /* a failing target goes into cooldown; health and the dry run show it */
    sim_set(&SIM, a, "{\"faults\":[{\"type\":\"status\",\"status\":503,\"count\":1}]}");
    llmux_result_free(call(gw, "m", NULL, NULL));
    assert_int_equal(llmux_route_json(gw, req, NULL, &out), LLMUX_OK);
    assert_non_null(strstr(out, "\"candidates\":[{\"provider\":\""));
    assert_non_null(strstr(out, "\"skipped\":[{\"provider\":\""));
    assert_non_null(strstr(out, "\"reason\":\"cooling down for "));
    llmux_free(out);
    assert_int_equal(llmux_health_json(gw, &out), LLMUX_OK);
    cJSON *h = cJSON_Parse(out);
    llmux_free(out);
    assert_int_equal(cJSON_GetArraySize(h), 3);
    cJSON *first = cJSON_GetArrayItem(h, 0);
    assert_string_equal(cJSON_GetObjectItem(first, "state")->valuestring, "cooldown");
    assert_int_equal(cJSON_GetObjectItem(first, "failures")->valueint, 1);
    assert_true(cJSON_GetObjectItem(first, "cooldown_ms_left")->valuedouble > 50000);
    cJSON *second = cJSON_GetArrayItem(h, 1);
    assert_string_equal(cJSON_GetObjectItem(second, "state")->valuestring, "ok");
    assert_true(cJSON_GetObjectItem(second, "latency_ms")->valuedouble > 0);
    cJSON_Delete(h);
    /* errors: unknown model, bad request, bad arguments */
    assert_int_equal(llmux_route_json(gw, "{\"model\":\"nope\",\"messages\":[{\"role\":\"user\","
                                          "\"content\":\"x\"}]}", NULL, &out),
                     LLMUX_ERR_UNKNOWN_MODEL);
    assert_non_null(strstr(out, "\"code\":\"unknown_model\""));
    llmux_free(out);
    assert_int_equal(llmux_route_json(gw, "{", NULL, &out), LLMUX_ERR_BAD_REQUEST);
    llmux_free(out);
    assert_int_equal(llmux_route_json(gw, req, NULL, NULL), LLMUX_ERR_INVALID_ARGUMENT);
    assert_int_equal(llmux_health_json(NULL, &out), LLMUX_ERR_INVALID_ARGUMENT);
    llmux_close(gw);
}

static int requests_of(const char *dep)
{
    char *st = sim_get(&SIM, dep);
    cJSON *j = cJSON_Parse(st);
    int n = cJSON_GetObjectItem(j, "requests")->valueint;
    cJSON_Delete(j);
    free(st);
    return n;
}

static void test_hedged_requests(void **state)
{
    char a[32], b[32];
    name(a, "ha");
    name(b, "hb");
    const char *deps[] = {a, b, NULL};
    char models[512];
    snprintf(models, sizeof models,
             "{\"m\":{\"hedge_after_ms\":100,\"targets\":[{\"provider\":\"%s\",\"model\":\"x\"},"
             "{\"provider\":\"%s\",\"model\":\"y\"}]}}",
             a, b);
    llmux *gw = open_cfg(deps, models, NULL);
    /* the first target is silent: the hedge answers, the first is ended */
    sim_set(&SIM, a, "{\"faults\":[{\"type\":\"latency\",\"ms\":2000,\"count\":1}]}");
    double t0 = mono_ms();
    llmux_result *r = call(gw, "m", NULL, NULL);
    double took = mono_ms() - t0;
    assert_int_equal(llmux_result_status(r), LLMUX_OK);
    assert_string_equal(llmux_result_model(r), "y");
    assert_true(took >= 100 && took < 1000);
    cJSON *t = trace_of(r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(t, "attempts")), 2);
    assert_string_equal(action_of(t, 0), "hedged");
    assert_string_equal(action_of(t, 1), "answered");
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(t, "attempts"), 0),
                                            "outcome")->valuestring, "cancelled");
    cJSON_Delete(t);
    llmux_result_free(r);
    /* a quick answer: the hedge is never sent */
    int before = requests_of(b);
    r = call(gw, "m", NULL, NULL);
    assert_string_equal(llmux_result_model(r), "x");
    t = trace_of(r);
    assert_string_equal(action_of(t, 0), "answered");
    assert_string_equal(action_of(t, 1), "hedged");
    assert_non_null(strstr(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(t, "attempts"), 1),
                                               "error")->valuestring, "never sent"));
    cJSON_Delete(t);
    llmux_result_free(r);
    sleep_ms(150); /* past the hedge's time: still nothing sent */
    assert_int_equal(requests_of(b), before);
    /* a quick 503: the hedge goes at once instead of waiting its 100 ms */
    sim_set(&SIM, a, "{\"faults\":[{\"type\":\"status\",\"status\":503,\"count\":1}]}");
    t0 = mono_ms();
    r = call(gw, "m", NULL, NULL);
    assert_string_equal(llmux_result_model(r), "y");
    if (mono_ms() - t0 >= 90)
        fail_msg("the hedge waited: %.1f ms\n%s", mono_ms() - t0, llmux_result_trace_json(r));
    llmux_result_free(r);
    llmux_close(gw);
}

static void test_lowest_cost_and_capabilities(void **state)
{
    char a[32], b[32], c[32];
    name(a, "ka");
    name(b, "kb");
    name(c, "kc");
    const char *deps[] = {a, b, c, NULL};
    char models[768];
    snprintf(models, sizeof models,
             "{\"lc\":{\"strategy\":\"lowest_cost\",\"targets\":[{\"provider\":\"%s\",\"model\":\"gpt-4o\"},"
             "{\"provider\":\"%s\",\"model\":\"gpt-audio-mini\"},{\"provider\":\"%s\",\"model\":\"gpt-4o-mini\"}]},"
             "\"old\":{\"targets\":[{\"provider\":\"%s\",\"model\":\"gpt-audio-mini\"},"
             "{\"provider\":\"%s\",\"model\":\"gpt-4o\"}]},"
             "\"only_old\":{\"targets\":[{\"provider\":\"%s\",\"model\":\"gpt-audio-mini\"}]}}",
             a, b, c, b, a, b);
    llmux *gw = open_cfg(deps, models, "\"routing\":{\"check_capabilities\":true}");
    /* the cheapest capable target first (built-in prices: 4o-mini < audio-mini < 4o) */
    llmux_result *r = call(gw, "lc", NULL, NULL);
    assert_string_equal(llmux_result_model(r), "gpt-4o-mini");
    cJSON *t = trace_of(r);
    assert_string_equal(cJSON_GetObjectItem(t, "strategy")->valuestring, "lowest_cost");
    cJSON_Delete(t);
    llmux_result_free(r);
    /* an image: gpt-audio-mini cannot see it, and is passed over with the reason */
    const char *image = ",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                        "\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}}]}]";
    char req[512];
    snprintf(req, sizeof req, "{\"model\":\"old\"%s}", image);
    assert_int_equal(llmux_chat(gw, req, NULL, &r), LLMUX_OK);
    assert_string_equal(llmux_result_model(r), "gpt-4o");
    t = trace_of(r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(t, "attempts")), 1);
    cJSON *sk = cJSON_GetArrayItem(cJSON_GetObjectItem(t, "skipped"), 0);
    assert_string_equal(cJSON_GetObjectItem(sk, "model")->valuestring, "gpt-audio-mini");
    assert_non_null(strstr(cJSON_GetObjectItem(sk, "reason")->valuestring, "no image input (per "));
    cJSON_Delete(t);
    llmux_result_free(r);
    /* nothing can serve it: refused before any provider is called, with the reason */
    int before = requests_of(b);
    snprintf(req, sizeof req, "{\"model\":\"only_old\"%s}", image);
    assert_int_equal(llmux_chat(gw, req, NULL, &r), LLMUX_ERR_UNSUPPORTED);
    assert_non_null(strstr(llmux_result_error(r), "no image input"));
    assert_int_equal(requests_of(b), before);
    llmux_result_free(r);
    /* json_schema and the context window */
    r = call(gw, "old", NULL, ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
                              "{\"name\":\"x\",\"schema\":{}}}");
    assert_string_equal(llmux_result_model(r), "gpt-4o");
    llmux_result_free(r);
    /* more output than either model can give (16,384 each): refused, each reason given */
    r = call(gw, "old", NULL, ",\"max_tokens\":20000");
    assert_int_equal(llmux_result_status(r), LLMUX_ERR_UNSUPPORTED);
    cJSON *tr = trace_of(r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(tr, "skipped")), 2);
    assert_non_null(strstr(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(tr, "skipped"), 1),
                                               "reason")->valuestring,
                           "asks for 20000 output tokens, more than its maximum of 16384"));
    cJSON_Delete(tr);
    llmux_result_free(r);
    /* a prompt past every target's context window: refused before anything is sent */
    size_t big = 600000; /* about 150,000 tokens: past 128,000 */
    char *long_req = malloc(big + 256);
    int n = snprintf(long_req, big + 256, "{\"model\":\"lc\",\"messages\":[{\"role\":\"user\",\"content\":\"");
    memset(long_req + n, 'a', big);
    strcpy(long_req + n + big, "\"}]}");
    assert_int_equal(llmux_chat(gw, long_req, NULL, &r), LLMUX_ERR_UNSUPPORTED);
    assert_non_null(strstr(llmux_result_error(r), "exceed its context window of 128000"));
    llmux_result_free(r);
    free(long_req);
    llmux_close(gw);

    /* without check_capabilities an ordered alias tries what it lists */
    gw = open_cfg(deps, models, NULL);
    snprintf(req, sizeof req, "{\"model\":\"old\"%s}", image);
    assert_int_equal(llmux_chat(gw, req, NULL, &r), LLMUX_OK);
    assert_string_equal(llmux_result_model(r), "gpt-audio-mini");
    llmux_result_free(r);
    /* ...but lowest_cost always checks: cost-based choices never pick an unfit model */
    r = call(gw, "lc", NULL, ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":"
                             "{\"name\":\"x\",\"schema\":{}}}");
    assert_string_equal(llmux_result_model(r), "gpt-4o-mini");
    llmux_result_free(r);
    llmux_close(gw);
}

#pragma GCC diagnostic ignored "-Wformat-nonliteral" /* the test's own config formats */

/* A backup that cannot do what its alias's first target does is a warning at
 * open, and an error in strict mode (issue 21.6). */
static void test_fallback_safety_check(void **state)
{
    const char *cfg = "{\"providers\":{\"p\":{\"type\":\"openai\",\"base_url\":\"http://127.0.0.1:9/v1\"}},"
                      "\"models\":{\"smart\":{\"targets\":[{\"provider\":\"p\",\"model\":\"gpt-4o\"},"
                      "{\"provider\":\"p\",\"model\":\"gpt-audio-mini\"},{\"provider\":\"p\",\"model\":\"gpt-4o-mini\"},"
                      "{\"provider\":\"p\",\"model\":\"my-own-model\"}]}}%s}";
    char json[1024], err[512];
    snprintf(json, sizeof json, cfg, "");
    llmux *gw = NULL;
    assert_int_equal(llmux_open(&gw, json, err, sizeof err), LLMUX_OK);
    char *w = NULL;
    assert_int_equal(llmux_warnings_json(gw, &w), LLMUX_OK);
    /* gpt-4o-mini can do all gpt-4o does; my-own-model is unknown, so not judged */
    assert_string_equal(w, "[\"models.smart.targets[1]: gpt-audio-mini (p) has no image input, which "
                           "the first target gpt-4o has: a call that needs it cannot fall back "
                           "here\",\"models.smart.targets[1]: gpt-audio-mini (p) has no json_schema "
                           "output, which the first target gpt-4o has: a call that needs it "
                           "cannot fall back here\"]");
    llmux_free(w);
    llmux_close(gw);
    snprintf(json, sizeof json, cfg, ",\"strict\":true");
    assert_int_equal(llmux_open(&gw, json, err, sizeof err), LLMUX_ERR_CONFIG);
    assert_non_null(strstr(err, "models.smart.targets[1]: gpt-audio-mini (p) has no image input"));
    assert_non_null(strstr(err, "(refused: \"strict\" is true)"));
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
        cmocka_unit_test(test_rules_choose_the_alias),
        cmocka_unit_test(test_weighted_and_round_robin),
        cmocka_unit_test(test_least_latency_prefers_the_fast_target),
        cmocka_unit_test(test_least_busy_orders_by_in_flight),
        cmocka_unit_test(test_cooldown_probe_and_retry_after),
        cmocka_unit_test(test_routing_config_errors),
        cmocka_unit_test(test_retries_and_alias_fallback),
        cmocka_unit_test(test_dry_run_and_health),
        cmocka_unit_test(test_hedged_requests),
        cmocka_unit_test(test_lowest_cost_and_capabilities),
        cmocka_unit_test(test_fallback_safety_check),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
