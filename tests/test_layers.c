/*
 * The layers' contracts, from outside lib/: an adapter written here (per-model
 * URL, a header signed over the final body, its own config key, "cannot
 * serve" for tools) plugs in without touching config, engine or transport;
 * the caller's bytes reach the provider unchanged on both paths; a call is
 * cancelled from another thread within milliseconds; the transport hedges;
 * the most telling attempt names a failed call; the ledger stays exact.
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
#include <openssl/evp.h>

#include "capture_server.h"
#include "ledger/ledger.h"
#include "llmux.h"
#include "providers/provider.h"
#include "request/request.h"
#include "transport/transport.h"

static capture_server CAP, CAP2;
static const char *OK_BODY; /* the capture server's default answer */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ------------------------------------------------------ an adapter from outside */

typedef struct sig_state {
    char region[32];
} sig_state;

static const char *const SIG_KEYS[] = {"region", NULL};

static int sig_configure(lx_provider_cfg *p, const cJSON *obj, const char *path,
                         const lx_cfg_reader *rd, lx_err *err)
{
    const char *region;
    int rc = rd->string(obj, "region", path, 1, &region, err);
    if (rc)
        return rc;
    if (strlen(region) >= 32 || strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-") !=
                                    strlen(region))
        return rd->error(err, path, "region", "lower-case letters, digits and '-' only");
    sig_state *st = calloc(1, sizeof *st);
    if (!st)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    strcpy(st->region, region);
    p->adapter_state = st;
    return LLMUX_OK;
}

static void sig_release(lx_provider_cfg *p)
{
    free(p->adapter_state);
    p->adapter_state = NULL;
}

static int sig_build(const lx_provider_cfg *p, const char *model, const lx_request *req, int stream,
                     lx_http_request *out, lx_err *err)
{
    const sig_state *st = p->adapter_state;
    if (llmux__request_features(req)->tools)
        return llmux__err(err, LX_CANNOT_SERVE, "the testsig API has no tool calling");
    const cJSON *tree = llmux__request_tree(req, err);
    if (!tree)
        return LLMUX_ERR_NO_MEMORY;
    /* translate into a new document: the caller's tree is shared, never changed */
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "model", model);
    cJSON_AddItemToObject(body, "messages",
                          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(tree, "messages"), 1));
    if (stream)
        cJSON_AddTrueToObject(body, "stream");
    out->body = cJSON_PrintUnformatted(body);
    out->body_len = strlen(out->body);
    cJSON_Delete(body);
    char url[512], sig[65];
    snprintf(url, sizeof url, "%s/%s/v1/chat/completions?region=%s", p->base_url, model,
             st->region);
    sha256_hex(out->body, out->body_len, sig);
    if (llmux__http_request_set_url(out, url) ||
        llmux__http_header_add_static(out, "Content-Type: application/json") ||
        llmux__http_header_add(out, "X-Body-Sha256", sig) ||
        llmux__http_header_add(out, "X-Region", st->region))
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    return LLMUX_OK;
}

static int sig_classify(const lx_provider_cfg *p, const lx_http_response *resp, lx_err *err)
{
    char kind[64] = "";
    llmux__http_response_header(resp, "x-error-kind", kind, sizeof kind);
    err->http_status = (int)resp->status;
    return llmux__err(err, strcmp(kind, "throttled") == 0 ? LLMUX_ERR_RATE_LIMIT : LLMUX_ERR_PROVIDER,
                      "testsig HTTP %ld (%s)", resp->status, kind);
}

static int sig_parse(const lx_provider_cfg *p, lx_buf *body, char **out, lx_usage *u, lx_err *err)
{
    return llmux__openai_ops.parse_response(p, body, out, u, err);
}

static const lx_provider_ops SIG_OPS = {
    .type = "testsig",
    .default_base_url = NULL,
    .config_keys = SIG_KEYS,
    .configure = sig_configure,
    .release = sig_release,
    .build_request = sig_build,
    .parse_response = sig_parse,
    .classify_error = sig_classify,
};

static const char *REQ = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
static const char *REQ_TOOLS =
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}]}";

#pragma GCC diagnostic ignored "-Wformat-nonliteral" /* open_cfg's formats are the tests' own */
static llmux *open_cfg(const char *fmt, const char *a, const char *b)
{
    char cfg[2048], err[512];
    snprintf(cfg, sizeof cfg, fmt, a, b);
    llmux *gw = NULL;
    if (llmux_open(&gw, cfg, err, sizeof err) != LLMUX_OK)
        fail_msg("open: %s", err);
    return gw;
}

static cJSON *trace_of(llmux_result *r)
{
    cJSON *t = cJSON_Parse(llmux_result_trace_json(r));
    assert_non_null(t);
    return t;
}

static cJSON *attempt_n(cJSON *t, int i)
{
    return cJSON_GetArrayItem(cJSON_GetObjectItem(t, "attempts"), i);
}

static const char *sget(cJSON *o, const char *k)
{
    cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static const char *SIG_CFG =
    "{\"providers\":{\"sig\":{\"type\":\"testsig\",\"base_url\":\"%s\",\"region\":\"eu-1\"},"
    "\"oa\":{\"type\":\"openai\",\"base_url\":\"%s/v1\"}},"
    "\"models\":{\"m\":{\"targets\":[{\"provider\":\"sig\",\"model\":\"mod-a\"},"
    "{\"provider\":\"oa\",\"model\":\"gpt\"}]},"
    "\"only\":{\"targets\":[{\"provider\":\"sig\",\"model\":\"mod-a\"}]}}}";

static void test_adapter_from_outside(void **state)
{
    capture_reply(&CAP, 200, "application/json", OK_BODY, 0);
    llmux *gw = open_cfg(SIG_CFG, CAP.url, CAP.url);
    llmux_result *r;
    assert_int_equal(llmux_chat(gw, REQ, NULL, &r), LLMUX_OK);
    assert_string_equal(llmux_result_provider(r), "sig");
    /* the per-model URL, and a header signed over the very bytes that were sent */
    assert_string_equal(CAP.path, "/mod-a/v1/chat/completions?region=eu-1");
    char *body = capture_body(&CAP), sig[65], line[128];
    assert_string_equal(body, "{\"model\":\"mod-a\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
    sha256_hex(body, strlen(body), sig);
    snprintf(line, sizeof line, "X-Body-Sha256: %s", sig);
    assert_true(capture_has_header(&CAP, line));
    assert_true(capture_has_header(&CAP, "X-Region: eu-1"));
    free(body);
    llmux_result_free(r);

    /* a request this target cannot serve moves on, with the reason in the trace */
    assert_int_equal(llmux_chat(gw, REQ_TOOLS, NULL, &r), LLMUX_OK);
    assert_string_equal(llmux_result_provider(r), "oa");
    cJSON *t = trace_of(r);
    assert_string_equal(sget(attempt_n(t, 0), "outcome"), "cannot_serve");
    assert_string_equal(sget(attempt_n(t, 0), "action"), "fallback");
    assert_non_null(strstr(sget(attempt_n(t, 0), "error"), "the testsig API has no tool calling"));
    assert_string_equal(CAP.path, "/v1/chat/completions");
    body = capture_body(&CAP);
    /* the next target got the caller's request, not something the first adapter made */
    assert_non_null(strstr(body, "\"tools\":[{\"type\":\"function\""));
    free(body);
    cJSON_Delete(t);
    llmux_result_free(r);

    /* no target can serve it: unsupported, with the reason */
    const char *only = "{\"model\":\"only\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                       "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}";
    assert_int_equal(llmux_chat(gw, only, NULL, &r), LLMUX_ERR_UNSUPPORTED);
    assert_non_null(strstr(llmux_result_error(r), "no tool calling"));
    llmux_result_free(r);

    /* error classification sees the response headers */
    static const char *hdr_reply = "{\"message\":\"slow down\"}";
    capture_reply(&CAP, 503, "application/json", hdr_reply, 0);
    llmux_close(gw);

    /* the adapter's own key is validated with its JSON path */
    char err[512];
    llmux *bad = NULL;
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"providers\":{\"sig\":{\"type\":\"testsig\",\"base_url\":\"%s\"}},"
             "\"models\":{\"m\":{\"targets\":[{\"provider\":\"sig\",\"model\":\"x\"}]}}}", CAP.url);
    assert_int_equal(llmux_open(&bad, cfg, err, sizeof err), LLMUX_ERR_CONFIG);
    assert_string_equal(err, "providers.sig.region: required");
    snprintf(cfg, sizeof cfg,
             "{\"providers\":{\"sig\":{\"type\":\"testsig\",\"base_url\":\"%s\",\"region\":\"EU\"}},"
             "\"models\":{\"m\":{\"targets\":[{\"provider\":\"sig\",\"model\":\"x\"}]}}}", CAP.url);
    assert_int_equal(llmux_open(&bad, cfg, err, sizeof err), LLMUX_ERR_CONFIG);
    assert_string_equal(err, "providers.sig.region: lower-case letters, digits and '-' only");
    snprintf(cfg, sizeof cfg,
             "{\"providers\":{\"sig\":{\"type\":\"testsig\",\"base_url\":\"%s\",\"regoin\":\"x\"}},"
             "\"models\":{\"m\":{\"targets\":[{\"provider\":\"sig\",\"model\":\"x\"}]}}}", CAP.url);
    assert_int_equal(llmux_open(&bad, cfg, err, sizeof err), LLMUX_ERR_CONFIG);
    assert_string_equal(err, "providers.sig.regoin: unknown key (expected one of: type, base_url, "
                             "api_key_env, headers, timeout_ms, connect_timeout_ms, region)");
    /* an openai provider does not take the other adapter's key */
    snprintf(cfg, sizeof cfg,
             "{\"providers\":{\"o\":{\"type\":\"openai\",\"region\":\"x\"}},"
             "\"models\":{\"m\":{\"targets\":[{\"provider\":\"o\",\"model\":\"x\"}]}}}");
    assert_int_equal(llmux_open(&bad, cfg, err, sizeof err), LLMUX_ERR_CONFIG);
    assert_non_null(strstr(err, "providers.o.region: unknown key"));
    /* no default base URL: the config must give one */
    snprintf(cfg, sizeof cfg,
             "{\"providers\":{\"sig\":{\"type\":\"testsig\",\"region\":\"x\"}},"
             "\"models\":{\"m\":{\"targets\":[{\"provider\":\"sig\",\"model\":\"x\"}]}}}");
    assert_int_equal(llmux_open(&bad, cfg, err, sizeof err), LLMUX_ERR_CONFIG);
    assert_string_equal(err, "providers.sig.base_url: required for provider type \"testsig\"");
    capture_reply(&CAP, 200, "application/json", OK_BODY, 0);
}

/* ------------------------------------------------- the caller's bytes, unchanged */

static int count_chunk(const char *json, size_t len, void *payload)
{
    ++*(int *)payload;
    return 0;
}

static void test_stream_forwards_caller_bytes(void **state)
{
    llmux *gw = open_cfg("{\"providers\":{\"oa\":{\"type\":\"openai\",\"base_url\":\"%s/v1\"}},"
                         "\"models\":{\"m\":{\"targets\":[{\"provider\":\"oa\",\"model\":\"%s\"}]}}}",
                         CAP.url, "gpt-t");
    const char *req =
        "{\"model\":\"m\",\"seed\":123456789012345678,\"messages\":[{\"role\":\"user\","
        "\"content\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\"\"}],\"x_vendor\":{\"deep\":[1,2.50,-0e0,"
        "1e400]},\"temperature\":0.70,\"stream_options\":{\"include_usage\":false,\"keep\":\"me\"},"
        "\"stream\":false}";
    const char *common =
        "{\"model\":\"gpt-t\",\"seed\":123456789012345678,\"messages\":[{\"role\":\"user\","
        "\"content\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\"\"}],\"x_vendor\":{\"deep\":[1,2.50,-0e0,"
        "1e400]},\"temperature\":0.70";
    llmux_result *r;
    capture_reply(&CAP, 200, "application/json", OK_BODY, 0);
    if (llmux_chat(gw, req, NULL, &r) != LLMUX_OK)
        fail_msg("%s", llmux_result_trace_json(r));
    char *body = capture_body(&CAP), want[1024];
    snprintf(want, sizeof want, "%s}", common);
    assert_string_equal(body, want);
    free(body);
    llmux_result_free(r);

    static const char *sse =
        "data: {\"id\":\"s\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-t\","
        "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"ok\"},"
        "\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    capture_reply(&CAP, 200, "text/event-stream", sse, 0);
    int chunks = 0;
    assert_int_equal(llmux_chat_stream(gw, req, NULL, count_chunk, &chunks, &r), LLMUX_OK);
    assert_int_equal(chunks, 1);
    body = capture_body(&CAP);
    snprintf(want, sizeof want,
             "%s,\"stream\":true,\"stream_options\":{\"keep\":\"me\",\"include_usage\":true}}",
             common);
    assert_string_equal(body, want);
    free(body);
    llmux_result_free(r);

    /* [DONE] ends the stream even when the server keeps the body open */
    pthread_mutex_lock(&CAP.mu);
    CAP.hold_open = 1;
    pthread_mutex_unlock(&CAP.mu);
    llmux_call_options o;
    llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION);
    o.timeout_ms = 5000;
    chunks = 0;
    double t0 = now_ms();
    assert_int_equal(llmux_chat_stream(gw, req, &o, count_chunk, &chunks, &r), LLMUX_OK);
    assert_true(now_ms() - t0 < 2000);
    assert_int_equal(chunks, 1);
    assert_non_null(strstr(llmux_result_json(r), "\"content\":\"ok\""));
    llmux_result_free(r);
    pthread_mutex_lock(&CAP.mu);
    CAP.hold_open = 0;
    pthread_mutex_unlock(&CAP.mu);
    capture_reply(&CAP, 200, "application/json", OK_BODY, 0);
    llmux_close(gw);
}

/* ----------------------------------------------------------------- cancellation */

typedef struct trigger_arg {
    llmux_cancel *c;
    int after_ms;
    double fired_at;
} trigger_arg;

static void *trigger_later(void *p)
{
    trigger_arg *t = p;
    struct timespec ts = {0, (long)t->after_ms * 1000000L};
    nanosleep(&ts, NULL);
    t->fired_at = now_ms();
    llmux_cancel_trigger(t->c);
    return NULL;
}

static void cancel_during(llmux *gw, int stream)
{
    llmux_cancel *c;
    assert_int_equal(llmux_cancel_new(&c), LLMUX_OK);
    llmux_call_options o;
    llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION);
    o.cancel = c;
    trigger_arg t = {c, 100, 0};
    pthread_t th;
    pthread_create(&th, NULL, trigger_later, &t);
    double t0 = now_ms();
    llmux_result *r;
    int chunks = 0;
    int rc = stream ? llmux_chat_stream(gw, REQ, &o, count_chunk, &chunks, &r)
                    : llmux_chat(gw, REQ, &o, &r);
    double done = now_ms();
    pthread_join(th, NULL);
    assert_int_equal(rc, LLMUX_ERR_CANCELLED);
    /* the provider would have taken 3 s: the call stopped when it was told to */
    assert_true(done - t0 < 1500);
    double lag = done - t.fired_at;
    if (lag > 200) /* "within milliseconds": measured ~1 ms here; 200 allows a loaded machine */
        fail_msg("the call returned %.1f ms after the cancel", lag);
    cJSON *tr = trace_of(r);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(tr, "attempts")), 1); /* no fallback */
    assert_string_equal(sget(attempt_n(tr, 0), "outcome"), "cancelled");
    assert_string_equal(sget(attempt_n(tr, 0), "action"), "stop");
    cJSON_Delete(tr);
    llmux_result_free(r);
    assert_int_equal(llmux_cancel_fired(c), 1);
    llmux_cancel_free(c);
}

static void test_cancel_from_another_thread(void **state)
{
    llmux *gw = open_cfg("{\"providers\":{\"slow\":{\"type\":\"openai\",\"base_url\":\"%s/v1\"},"
                         "\"next\":{\"type\":\"openai\",\"base_url\":\"%s/v1\"}},"
                         "\"models\":{\"m\":{\"targets\":[{\"provider\":\"slow\",\"model\":\"a\"},"
                         "{\"provider\":\"next\",\"model\":\"b\"}]}}}",
                         CAP.url, CAP2.url);
    int before2 = capture_requests(&CAP2);
    capture_reply(&CAP, 200, "application/json", OK_BODY, 3000);
    cancel_during(gw, 0);
    capture_reply(&CAP, 200, "application/json", OK_BODY, 3000);
    cancel_during(gw, 1);
    assert_int_equal(capture_requests(&CAP2), before2); /* the next target was never tried */

    /* fired before the call: nothing is sent */
    int before = capture_requests(&CAP);
    llmux_cancel *c;
    llmux_cancel_new(&c);
    llmux_cancel_trigger(c);
    llmux_call_options o;
    llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION);
    o.cancel = c;
    llmux_result *r;
    assert_int_equal(llmux_chat(gw, REQ, &o, &r), LLMUX_ERR_CANCELLED);
    llmux_result_free(r);
    llmux_cancel_free(c);
    /* the slow reply is still being served on the old connection: wait it out */
    capture_reply(&CAP, 200, "application/json", OK_BODY, 0);
    assert_int_equal(capture_requests(&CAP), before);

    /* version 1 options (no cancel field) still work */
    llmux_call_options v1;
    assert_int_equal(llmux_call_options_init(&v1, 1), LLMUX_OK);
    llmux_cancel_free(NULL);
    llmux_cancel_trigger(NULL);
    assert_int_equal(llmux_cancel_new(NULL), LLMUX_ERR_INVALID_ARGUMENT);
    llmux_close(gw);
}

/* --------------------------------------------------------------------- hedging */

static void test_transport_hedges(void **state)
{
    lx_transport *t;
    lx_transport_options o = {4, 0, 0};
    lx_err err = {0};
    assert_int_equal(llmux__transport_new(&t, &o, &err), LLMUX_OK);
    capture_reply(&CAP, 200, "application/json", OK_BODY, 2000);
    capture_reply(&CAP2, 200, "application/json", OK_BODY, 0);
    lx_http_request a, b;
    llmux__http_request_init(&a);
    llmux__http_request_init(&b);
    char url[128];
    snprintf(url, sizeof url, "%s/v1/chat/completions", CAP.url);
    llmux__http_request_set_url(&a, url);
    snprintf(url, sizeof url, "%s/v1/chat/completions", CAP2.url);
    llmux__http_request_set_url(&b, url);
    a.body = strdup("{}");
    a.body_len = 2;
    b.body = strdup("{}");
    b.body_len = 2;
    lx_exchange x[2];
    llmux__exchange_init(&x[0], &a);
    llmux__exchange_init(&x[1], &b);
    x[0].timeout_ms = x[1].timeout_ms = 5000;
    double t0 = now_ms();
    assert_int_equal(llmux__transport_run(t, x, 2, 1, NULL), LLMUX_OK);
    assert_true(now_ms() - t0 < 1500); /* the fast one ended the slow one */
    assert_int_equal(x[1].status, LLMUX_OK);
    assert_int_equal(x[1].resp.status, 200);
    assert_int_equal(x[0].status, LLMUX_ERR_CANCELLED);
    assert_string_equal(x[0].err.msg, "another attempt answered first");
    llmux__exchange_free(&x[0]);
    llmux__exchange_free(&x[1]);
    llmux__http_request_free(&a);
    llmux__http_request_free(&b);
    llmux__transport_free(t);
    capture_reply(&CAP, 200, "application/json", OK_BODY, 0);
}

/* ---------------------------------------------------------------- which error */

static void test_throttled_attempt_names_the_call(void **state)
{
    static const char *e429 = "{\"error\":{\"message\":\"slow down\",\"code\":\"rate_limit_exceeded\"}}";
    static const char *e503 = "{\"error\":{\"message\":\"down\"}}";
    capture_reply(&CAP, 429, "application/json", e429, 0);
    capture_reply(&CAP2, 503, "application/json", e503, 0);
    llmux *gw = open_cfg("{\"providers\":{\"a\":{\"type\":\"openai\",\"base_url\":\"%s/v1\"},"
                         "\"b\":{\"type\":\"openai\",\"base_url\":\"%s/v1\"}},"
                         "\"models\":{\"m\":{\"targets\":[{\"provider\":\"a\",\"model\":\"x\"},"
                         "{\"provider\":\"b\",\"model\":\"y\"}]}}}",
                         CAP.url, CAP2.url);
    llmux_result *r;
    if (llmux_chat(gw, REQ, NULL, &r) != LLMUX_ERR_RATE_LIMIT)
        fail_msg("%s", llmux_result_trace_json(r));
    assert_int_equal(llmux_result_http_status(r), 429);
    assert_string_equal(llmux_result_provider(r), "a");
    cJSON *t = trace_of(r);
    assert_int_equal(cJSON_GetObjectItem(t, "error_attempt")->valueint, 0);
    assert_string_equal(sget(attempt_n(t, 0), "provider_code"), "rate_limit_exceeded");
    assert_string_equal(sget(attempt_n(t, 1), "outcome"), "provider");
    cJSON_Delete(t);
    llmux_result_free(r);
    llmux_close(gw);
    capture_reply(&CAP, 200, "application/json", OK_BODY, 0);
    capture_reply(&CAP2, 200, "application/json", OK_BODY, 0);

    /* llmux's own words for a refused connection; libcurl's in the detail */
    gw = open_cfg("{\"providers\":{\"a\":{\"type\":\"openai\",\"base_url\":\"http://127.0.0.1:1/v1\"}%s},"
                  "\"models\":{\"m\":{\"targets\":[{\"provider\":\"a\",\"model\":\"x\"}]}}%s}", "", "");
    assert_int_equal(llmux_chat(gw, REQ, NULL, &r), LLMUX_ERR_CONNECT);
    assert_string_equal(llmux_result_error(r),
                        "provider \"a\" (model x): could not connect to the provider");
    t = trace_of(r);
    assert_non_null(strstr(sget(attempt_n(t, 0), "detail"), "127.0.0.1"));
    cJSON_Delete(t);
    llmux_result_free(r);
    llmux_close(gw);
}

/* --------------------------------------------------------------------- ledger */

static void test_ledger_exact_for_100k_keys(void **state)
{
    lx_ledger *l;
    assert_int_equal(llmux__ledger_new(&l, 0), LLMUX_OK);
    enum { KEYS = 100000 };
    char name[32], fp[21];
    lx_err err = {0};
    for (int i = 0; i < KEYS; i++) {
        snprintf(name, sizeof name, "gw-key-%d", i);
        llmux__key_fingerprint(name, fp);
        int calls = i % 1000 == 0 ? 3 : 1;
        for (int k = 0; k < calls; k++) {
            lx_charge c = {fp, "wf", NULL, "gpt", "oa", 1, LX_USAGE_UNKNOWN, 1500000, 0, NULL, NULL};
            c.usage.prompt_tokens = i + 1;
            c.usage.completion_tokens = 2;
            lx_reservation r;
            assert_int_equal(llmux__ledger_reserve(l, &c, &r, &err), LLMUX_OK);
            assert_int_equal(llmux__ledger_settle(l, &r, &c, &err), LLMUX_OK);
        }
    }
    char *out = NULL;
    assert_int_equal(llmux__ledger_report(l, "key", &out, &err), LLMUX_OK);
    cJSON *rep = cJSON_Parse(out);
    free(out);
    cJSON *rows = cJSON_GetObjectItem(rep, "rows");
    assert_int_equal(cJSON_GetArraySize(rows), KEYS); /* one row per key, none merged */
    int i = 0;
    for (cJSON *row = rows->child; row; row = row->next, i++) {
        snprintf(name, sizeof name, "gw-key-%d", i);
        llmux__key_fingerprint(name, fp);
        int calls = i % 1000 == 0 ? 3 : 1;
        assert_string_equal(sget(row, "group"), fp);
        assert_int_equal(cJSON_GetObjectItem(row, "calls")->valueint, calls);
        assert_int_equal((long)cJSON_GetObjectItem(row, "prompt_tokens")->valuedouble,
                         (long)calls * (i + 1));
        /* 1.5 milli-dollars a call, exactly */
        char want[32];
        snprintf(want, sizeof want, "0.%09d", 1500000 * calls);
        cJSON *cost = cJSON_GetObjectItem(row, "cost_usd");
        char got[32];
        snprintf(got, sizeof got, "%.9f", cost->valuedouble);
        assert_string_equal(got, want);
    }
    cJSON *total = cJSON_GetObjectItem(rep, "total");
    assert_int_equal(cJSON_GetObjectItem(total, "calls")->valueint, KEYS + 2 * (KEYS / 1000));
    cJSON_Delete(rep);
    llmux__ledger_free(l);

    /* memory is bounded by a limit with a clear error, never by merging keys */
    assert_int_equal(llmux__ledger_new(&l, 2), LLMUX_OK);
    for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "key-%d", k);
        lx_charge c = {name, NULL, NULL, NULL, NULL, 1, LX_USAGE_UNKNOWN, -1, 0, NULL, NULL};
        lx_reservation r;
        int rc = llmux__ledger_reserve(l, &c, &r, &err);
        if (k < 2) {
            assert_int_equal(rc, LLMUX_OK);
            llmux__ledger_settle(l, &r, &c, &err);
        } else {
            assert_int_equal(rc, LLMUX_ERR_LIMIT);
            assert_string_equal(err.msg, "the ledger already tracks 2 distinct key values "
                                         "(ledger.max_rows); raise the limit to account for more");
        }
    }
    /* sums saturate instead of wrapping; unpriced sums are unknown, not zero */
    for (int k = 0; k < 2; k++) {
        lx_charge c = {"key-0", NULL, NULL, NULL, NULL, 1, LX_USAGE_UNKNOWN, -1, 0, NULL, NULL};
        c.usage.prompt_tokens = INT64_MAX / 2 + 10;
        lx_reservation r;
        llmux__ledger_reserve(l, &c, &r, &err);
        llmux__ledger_settle(l, &r, &c, &err);
    }
    assert_int_equal(llmux__ledger_report(l, NULL, &out, &err), LLMUX_OK);
    assert_non_null(strstr(out, "\"prompt_tokens\":9223372036854775807"));
    assert_non_null(strstr(out, "\"cost_usd\":null,\"cost_nusd\":null,\"priced_calls\":0,\"unpriced_calls\":4"));
    free(out);
    llmux__ledger_free(l);
}

/* Usage details on the text path and the tree path alike; absurd counts are
 * unknown and said so in the trace (issue 26.6). */
static void test_usage_details_and_absurd_counts(void **state)
{
    llmux *gw = open_cfg("{\"providers\":{\"oa\":{\"type\":\"openai\",\"base_url\":\"%s/v1\"}},"
                         "\"models\":{\"m\":{\"targets\":[{\"provider\":\"oa\",\"model\":\"%s\"}]}}}",
                         CAP.url, "x");
    static const char *details =
        "{\"id\":\"c\",\"object\":\"chat.completion\",\"choices\":[],\"usage\":{\"prompt_tokens\":30,"
        "\"completion_tokens\":20,\"prompt_tokens_details\":{\"cached_tokens\":10,"
        "\"cache_write_tokens\":7},\"completion_tokens_details\":{\"reasoning_tokens\":5}}}";
    static const char *escaped = /* an escaped key sends the answer down the tree path */
        "{\"id\":\"c\",\"object\":\"chat.completion\",\"ch\\u006fices\":[],\"choices\":[],"
        "\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":20,\"prompt_tokens_details\":"
        "{\"cached_tokens\":10,\"cache_write_tokens\":7},\"completion_tokens_details\":"
        "{\"reasoning_tokens\":5}}}";
    static const char *absurd =
        "{\"id\":\"c\",\"object\":\"chat.completion\",\"choices\":[],\"usage\":{\"prompt_tokens\":1e999,"
        "\"completion_tokens\":-5}}";
    const char *bodies[] = {details, escaped};
    for (int i = 0; i < 2; i++) {
        capture_reply(&CAP, 200, "application/json", bodies[i], 0);
        llmux_result *r;
        assert_int_equal(llmux_chat(gw, REQ, NULL, &r), LLMUX_OK);
        assert_non_null(strstr(llmux_result_trace_json(r),
                               "\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":20,"
                               "\"cached_tokens\":10,\"cache_write_tokens\":7,"
                               "\"cache_write_1h_tokens\":-1,\"reasoning_tokens\":5},"));
        llmux_result_free(r);
    }
    capture_reply(&CAP, 200, "application/json", absurd, 0);
    llmux_result *r;
    assert_int_equal(llmux_chat(gw, REQ, NULL, &r), LLMUX_OK);
    assert_int_equal(llmux_result_prompt_tokens(r), -1);
    assert_int_equal(llmux_result_completion_tokens(r), -1);
    assert_non_null(strstr(llmux_result_trace_json(r), "\"usage_note\":\"the provider reported a "
                                                       "token count out of range"));
    llmux_result_free(r);
    capture_reply(&CAP, 200, "application/json", OK_BODY, 0);
    llmux_close(gw);
}

/* A target's own params reach that target only, merged into the caller's bytes. */
static void test_target_params(void **state)
{
    capture_reply(&CAP, 503, "application/json", "{\"error\":{\"message\":\"down\"}}", 0);
    capture_reply(&CAP2, 200, "application/json", OK_BODY, 0);
    llmux *gw = open_cfg("{\"providers\":{\"a\":{\"type\":\"openai\",\"base_url\":\"%s/v1\"},"
                         "\"b\":{\"type\":\"openai\",\"base_url\":\"%s/v1\"}},"
                         "\"models\":{\"m\":{\"targets\":[{\"provider\":\"a\",\"model\":\"x\","
                         "\"params\":{\"max_tokens\":77,\"temperature\":0.1,\"reasoning_effort\":\"low\"}},"
                         "{\"provider\":\"b\",\"model\":\"y\"}]}}}",
                         CAP.url, CAP2.url);
    const char *req = "{\"model\":\"m\",\"temperature\":0.70,\"messages\":[{\"role\":\"user\","
                      "\"content\":\"hi\"}],\"seed\":123456789012345678}";
    llmux_result *r;
    assert_int_equal(llmux_chat(gw, req, NULL, &r), LLMUX_OK);
    char *body = capture_body(&CAP);
    assert_string_equal(body, "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                              "\"seed\":123456789012345678,\"max_tokens\":77,\"temperature\":0.1,"
                              "\"reasoning_effort\":\"low\"}");
    free(body);
    body = capture_body(&CAP2); /* the fallback target gets the caller's request as sent */
    assert_string_equal(body, "{\"model\":\"y\",\"temperature\":0.70,\"messages\":[{\"role\":\"user\","
                              "\"content\":\"hi\"}],\"seed\":123456789012345678}");
    free(body);
    llmux_result_free(r);
    llmux_close(gw);
    capture_reply(&CAP, 200, "application/json", OK_BODY, 0);
    char err[512];
    llmux *bad = NULL;
    const char *cfg = "{\"providers\":{\"a\":{\"type\":\"openai\",\"base_url\":\"http://127.0.0.1:9/v1\"}},"
                      "\"models\":{\"m\":{\"targets\":[{\"provider\":\"a\",\"model\":\"x\","
                      "\"params\":{\"stream\":true}}]}}}";
    assert_int_equal(llmux_open(&bad, cfg, err, sizeof err), LLMUX_ERR_CONFIG);
    assert_string_equal(err, "models.m.targets[0].params.stream: a target's params cannot set "
                             "\"stream\": the call decides it");
}

static int setup(void **state)
{
    if (llmux__provider_register(&SIG_OPS))
        return -1;
    if (capture_start(&CAP) || capture_start(&CAP2))
        return -1;
    OK_BODY = CAP.body;
    return 0;
}

static int teardown(void **state)
{
    capture_stop(&CAP);
    capture_stop(&CAP2);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adapter_from_outside),
        cmocka_unit_test(test_stream_forwards_caller_bytes),
        cmocka_unit_test(test_cancel_from_another_thread),
        cmocka_unit_test(test_transport_hedges),
        cmocka_unit_test(test_throttled_attempt_names_the_call),
        cmocka_unit_test(test_ledger_exact_for_100k_keys),
        cmocka_unit_test(test_usage_details_and_absurd_counts),
        cmocka_unit_test(test_target_params),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
