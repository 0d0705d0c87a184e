/* The call log and metrics end to end against the simulator: the records of
 * a run covering success, fallback, every error class the simulator can
 * cause, streaming and cancellation, field by field and with no secret in
 * them; content policies; file rotation and retention; the callback; the
 * OTLP exporter against a local receiver (also when it is down); a full
 * queue; the metrics text against the calls made. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <pthread.h>

#include "capture_server.h"
#include "ledger/ledger.h"
#include "llmux.h"
#include "sim_harness.h"

static sim SIM;
static char DIR_[256];
static int counter;

#define PROVIDER_SECRET "sk-log-provider-secret-0123456789"
#define GATEWAY_SECRET "gk-log-gateway-secret-9876543210"
#define HELLO "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Two keyed deployments a<n>, b<n>; aliases "one" (a) and "two" (a, then b). */
static llmux *open_log(char a[32], char b[32], const char *log_json)
{
    counter++;
    snprintf(a, 32, "la%d", counter);
    snprintf(b, 32, "lb%d", counter);
    char settings[128];
    snprintf(settings, sizeof settings, "{\"require_key\":\"%s\"}", PROVIDER_SECRET);
    assert_int_equal(sim_set(&SIM, a, settings), 200);
    assert_int_equal(sim_set(&SIM, b, settings), 200);
    char *cfg = malloc(8192);
    snprintf(cfg, 8192,
             "{\"providers\":{"
             "\"%s\":{\"type\":\"openai\",\"base_url\":\"%s/%s/v1\",\"api_key_env\":\"LLMUX_LOG_TEST_KEY\"},"
             "\"%s\":{\"type\":\"openai\",\"base_url\":\"%s/%s/v1\",\"api_key_env\":\"LLMUX_LOG_TEST_KEY\"}},"
             "\"models\":{\"one\":{\"targets\":[{\"provider\":\"%s\",\"model\":\"m-a\"}]},"
             "\"two\":{\"targets\":[{\"provider\":\"%s\",\"model\":\"m-a\"},{\"provider\":\"%s\",\"model\":\"m-b\"}]}},"
             "\"log\":%s}",
             a, SIM.url, a, b, SIM.url, b, a, a, b, log_json);
    llmux *gw = NULL;
    char err[512];
    if (llmux_open(&gw, cfg, err, sizeof err) != LLMUX_OK)
        fail_msg("open: %s\n%s", err, cfg);
    free(cfg);
    return gw;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = '\0';
    fclose(f);
    return s;
}

/* Every line of text parsed: a JSON array of the records. */
static cJSON *parse_lines(const char *text)
{
    cJSON *arr = cJSON_CreateArray();
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        assert_non_null(nl); /* every record ends in a newline */
        cJSON *r = cJSON_ParseWithLength(p, (size_t)(nl - p));
        if (!r)
            fail_msg("not JSON: %.*s", (int)(nl - p), p);
        cJSON_AddItemToArray(arr, r);
        p = nl + 1;
    }
    return arr;
}

static const char *sget(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int is_null(const cJSON *o, const char *k)
{
    return cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, k));
}

static double nget(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v))
        fail_msg("%s is not a number", k);
    return v->valuedouble;
}

static void str_or_null(const cJSON *rec, const char *k, const char *want)
{
    if (!want || !*want) {
        if (!is_null(rec, k))
            fail_msg("%s: want null, got %s", k, sget(rec, k) ? sget(rec, k) : "(not a string)");
        return;
    }
    if (!sget(rec, k) || strcmp(sget(rec, k), want) != 0)
        fail_msg("%s: want %s, got %s", k, want, sget(rec, k) ? sget(rec, k) : "(null)");
}

static void count_or_null(const cJSON *rec, const char *k, long want)
{
    if (want < 0)
        assert_true(is_null(rec, k));
    else
        assert_int_equal((long)nget(rec, k), want);
}

/* What a call's records must say, taken from its result through the public API. */
typedef struct expect {
    cJSON *trace;
    char requested[64];
    char provider[64], model[64];
    int status, http_status, streamed;
    long prompt, completion;
    char error[1024];
    const char *key, *workflow, *task;
} expect;

#define MAX_CALLS 40
static expect EXP[MAX_CALLS];
static int n_exp;

static void remember(llmux_result *r, const char *requested, const llmux_call_options *o,
                     int streamed)
{
    assert_true(n_exp < MAX_CALLS);
    expect *e = &EXP[n_exp++];
    memset(e, 0, sizeof *e);
    e->trace = cJSON_Parse(llmux_result_trace_json(r));
    snprintf(e->requested, sizeof e->requested, "%s", requested ? requested : "");
    snprintf(e->provider, sizeof e->provider, "%s", llmux_result_provider(r));
    snprintf(e->model, sizeof e->model, "%s", llmux_result_model(r));
    snprintf(e->error, sizeof e->error, "%s", llmux_result_error(r));
    e->status = llmux_result_status(r);
    e->http_status = llmux_result_http_status(r);
    e->prompt = llmux_result_prompt_tokens(r);
    e->completion = llmux_result_completion_tokens(r);
    e->streamed = streamed;
    e->key = o ? o->key : NULL;
    e->workflow = o ? o->workflow : NULL;
    e->task = o ? o->task : NULL;
}

static void forget_all(void)
{
    for (int i = 0; i < n_exp; i++)
        cJSON_Delete(EXP[i].trace);
    n_exp = 0;
}

static int stop_after_two(const char *json, size_t len, void *p)
{
    (void)json;
    (void)len;
    return ++*(int *)p >= 2;
}

static int keep_going(const char *json, size_t len, void *p)
{
    (void)json;
    (void)len;
    (void)p;
    return 0;
}

static void call(llmux *gw, const char *model, const char *fault_a, const char *fault_b,
                 const char *a, const char *b, const llmux_call_options *o, int stream,
                 llmux_chunk_cb cb)
{
    char settings[1024];
    snprintf(settings, sizeof settings, "{\"require_key\":\"%s\",\"faults\":[%s]}",
             PROVIDER_SECRET, fault_a ? fault_a : "");
    assert_int_equal(sim_set(&SIM, a, settings), 200);
    snprintf(settings, sizeof settings, "{\"require_key\":\"%s\",\"faults\":[%s]}",
             PROVIDER_SECRET, fault_b ? fault_b : "");
    assert_int_equal(sim_set(&SIM, b, settings), 200);
    char req[512];
    if (model)
        snprintf(req, sizeof req, HELLO, model);
    else
        snprintf(req, sizeof req, "{\"model\":\"one\",\"messages\":[]}");
    llmux_result *r = NULL;
    int seen = 0;
    if (stream)
        llmux_chat_stream(gw, req, o, cb, &seen, &r);
    else
        llmux_chat(gw, req, o, &r);
    assert_non_null(r);
    remember(r, model, o, stream); /* a request refused by validation names no model */
    llmux_result_free(r);
}

static void check_call_record(const expect *e, const cJSON *rec, const cJSON *atts[], int n_atts)
{
    assert_string_equal(sget(rec, "event.name"), "llmux.call");
    const char *id = sget(rec, "llmux.call_id");
    assert_non_null(id);
    assert_int_equal(strlen(id), 32);
    assert_int_equal(strspn(id, "0123456789abcdef"), 32);
    const char *t = sget(rec, "time");
    assert_non_null(t);
    assert_int_equal(strlen(t), 27); /* 2026-12-05T03:20:01.123456Z */
    assert_int_equal(t[26], 'Z');
    assert_string_equal(sget(rec, "gen_ai.operation.name"), "chat");
    str_or_null(rec, "gen_ai.request.model", e->requested);
    str_or_null(rec, "gen_ai.provider.name", e->provider);
    str_or_null(rec, "gen_ai.response.model", e->model);
    /* the routing decision, as the trace has it */
    const cJSON *talias = cJSON_GetObjectItem(e->trace, "alias");
    str_or_null(rec, "llmux.alias", cJSON_IsString(talias) ? talias->valuestring : NULL);
    assert_string_equal(sget(rec, "llmux.strategy"),
                        cJSON_GetObjectItem(e->trace, "strategy")->valuestring);
    const cJSON *trule = cJSON_GetObjectItem(e->trace, "rule");
    if (cJSON_IsNumber(trule))
        assert_int_equal((int)nget(rec, "llmux.rule"), trule->valueint);
    else
        assert_true(is_null(rec, "llmux.rule"));
    if (e->status == LLMUX_OK) {
        assert_string_equal(sget(rec, "llmux.status"), "ok");
        assert_true(is_null(rec, "error.type"));
        assert_true(is_null(rec, "llmux.error"));
    } else {
        const char *code = cJSON_GetObjectItem(e->trace, "status")->valuestring;
        str_or_null(rec, "llmux.status", code);
        str_or_null(rec, "error.type", code);
        str_or_null(rec, "llmux.error", e->error);
    }
    assert_int_equal((int)nget(rec, "http.response.status_code"), e->http_status);
    count_or_null(rec, "gen_ai.usage.input_tokens", e->prompt);
    count_or_null(rec, "gen_ai.usage.output_tokens", e->completion);
    /* the call's cost as its trace has it: null when unknown */
    const cJSON *tcost = cJSON_GetObjectItem(e->trace, "cost_usd");
    if (!tcost || cJSON_IsNull(tcost))
        assert_true(is_null(rec, "llmux.cost_usd"));
    else
        assert_true(nget(rec, "llmux.cost_usd") == tcost->valuedouble);
    const cJSON *tatts = cJSON_GetObjectItem(e->trace, "attempts");
    assert_int_equal((int)nget(rec, "llmux.attempts"), cJSON_GetArraySize(tatts));
    assert_int_equal(n_atts, cJSON_GetArraySize(tatts));
    assert_int_equal(cJSON_IsTrue(cJSON_GetObjectItem(rec, "llmux.stream")), e->streamed);
    if (e->key) {
        char fp[21];
        llmux__key_fingerprint(e->key, fp);
        str_or_null(rec, "llmux.key_id", fp);
    } else {
        assert_true(is_null(rec, "llmux.key_id"));
    }
    assert_true(is_null(rec, "llmux.team"));
    str_or_null(rec, "llmux.workflow", e->workflow);
    str_or_null(rec, "llmux.task", e->task);
    double total = nget(e->trace, "total_ms"), lat = nget(rec, "llmux.latency_ms");
    if (lat < total - 0.001 || lat > total + 0.001)
        fail_msg("latency %f, trace total %f", lat, total);
    double over = nget(rec, "llmux.overhead_ms");
    assert_true(over >= 0 && over <= lat);
    if (e->streamed && cJSON_GetObjectItem(e->trace, "chunks")->valueint > 0) {
        double ttft = nget(rec, "llmux.ttft_ms");
        assert_true(ttft > 0 && ttft <= lat);
    } else {
        assert_true(is_null(rec, "llmux.ttft_ms"));
    }
    assert_string_equal(sget(rec, "llmux.content"), "off");
    assert_null(cJSON_GetObjectItem(rec, "llmux.request.sha256"));
    assert_null(cJSON_GetObjectItem(rec, "llmux.request.body"));
    for (int i = 0; i < n_atts; i++) {
        const cJSON *ta = cJSON_GetArrayItem(tatts, i), *ra = atts[i];
        assert_string_equal(sget(ra, "event.name"), "llmux.attempt");
        assert_string_equal(sget(ra, "llmux.call_id"), id);
        assert_int_equal((int)nget(ra, "llmux.attempt"), i + 1);
        str_or_null(ra, "gen_ai.provider.name", sget(ta, "provider"));
        str_or_null(ra, "gen_ai.request.model", sget(ta, "model"));
        str_or_null(ra, "llmux.status", sget(ta, "outcome"));
        if (strcmp(sget(ta, "outcome"), "ok") == 0)
            assert_true(is_null(ra, "error.type"));
        else
            str_or_null(ra, "error.type", sget(ta, "outcome"));
        assert_int_equal((int)nget(ra, "http.response.status_code"), (int)nget(ta, "http_status"));
        str_or_null(ra, "llmux.action", sget(ta, "action"));
        str_or_null(ra, "llmux.error", sget(ta, "error"));
    }
}

/* Walk the records: each call's attempts, then the call. */
static void check_records(const cJSON *recs)
{
    int i = 0, n = cJSON_GetArraySize(recs);
    char prev_id[33] = "";
    for (int c = 0; c < n_exp; c++) {
        const cJSON *atts[8];
        int k = 0;
        while (i < n && strcmp(sget(cJSON_GetArrayItem(recs, i), "event.name"), "llmux.attempt") == 0) {
            assert_true(k < 8);
            atts[k++] = cJSON_GetArrayItem(recs, i++);
        }
        assert_true(i < n);
        const cJSON *rec = cJSON_GetArrayItem(recs, i++);
        check_call_record(&EXP[c], rec, atts, k);
        assert_string_not_equal(sget(rec, "llmux.call_id"), prev_id);
        snprintf(prev_id, sizeof prev_id, "%s", sget(rec, "llmux.call_id"));
    }
    assert_int_equal(i, n); /* nothing more */
}

static void no_secret(const char *text)
{
    const char *bad[] = {PROVIDER_SECRET, GATEWAY_SECRET, "Bearer", "Authorization",
                         "authorization", NULL};
    for (int i = 0; bad[i]; i++)
        if (strstr(text, bad[i]))
            fail_msg("a record holds \"%s\"", bad[i]);
}

/* The exact value of one series in the exposition text; -1 when absent. */
static double series(const char *text, const char *name_and_labels)
{
    size_t n = strlen(name_and_labels);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, name_and_labels, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

/* The sum of every series of a family. */
static double family_sum(const char *text, const char *name)
{
    size_t n = strlen(name);
    double sum = 0;
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, name, n) == 0 && (p[n] == '{' || p[n] == ' '))
            sum += strtod(strchr(p + n, ' ') + 1, NULL);
    return sum;
}

static void test_records_of_a_run(void **state)
{
    char a[32], b[32], log[512], path[300];
    snprintf(path, sizeof path, "%s/run.jsonl", DIR_);
    snprintf(log, sizeof log, "{\"file\":{\"path\":\"%s\"}}", path);
    llmux *gw = open_log(a, b, log);
    forget_all();
    llmux_call_options o;
    llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION);
    o.key = GATEWAY_SECRET;
    o.workflow = "support-bot";
    o.task = "draft";
    call(gw, "two", NULL, NULL, a, b, &o, 0, NULL);                         /* success */
    call(gw, "two", "{\"type\":\"status\",\"status\":500}", NULL, a, b, &o, 0, NULL); /* fallback */
    static const char *const faults[] = {
        "{\"type\":\"status\",\"status\":400}",
        "{\"type\":\"status\",\"status\":401}",
        "{\"type\":\"status\",\"status\":403}",
        "{\"type\":\"status\",\"status\":404}",
        "{\"type\":\"status\",\"status\":429,\"retry_after\":\"3\"}",
        "{\"type\":\"status\",\"status\":503}",
        "{\"type\":\"drop\",\"count\":-1}", /* -1: libcurl retries a reused connection once */
        "{\"type\":\"malformed\"}",
        "{\"type\":\"status\",\"status\":400,\"body\":{\"error\":{\"message\":\"This model's maximum "
        "context length is 8 tokens\",\"type\":\"invalid_request_error\",\"param\":null,\"code\":"
        "\"context_length_exceeded\"}}}",
        "{\"type\":\"status\",\"status\":400,\"body\":{\"error\":{\"message\":\"refused\",\"type\":"
        "\"invalid_request_error\",\"param\":null,\"code\":\"content_filter\"}}}",
        NULL};
    for (int i = 0; faults[i]; i++)
        call(gw, "one", faults[i], NULL, a, b, NULL, 0, NULL);
    llmux_call_options slow;
    llmux_call_options_init(&slow, LLMUX_CALL_OPTIONS_VERSION);
    slow.timeout_ms = 100;
    call(gw, "one", "{\"type\":\"latency\",\"ms\":400}", NULL, a, b, &slow, 0, NULL); /* timeout */
    call(gw, "nope", NULL, NULL, a, b, NULL, 0, NULL);                  /* unknown model */
    call(gw, NULL, NULL, NULL, a, b, NULL, 0, NULL);                    /* invalid request */
    call(gw, "two", NULL, NULL, a, b, &o, 1, keep_going);               /* streamed */
    call(gw, "two", "{\"type\":\"status\",\"status\":503}", NULL, a, b, NULL, 1, keep_going);
    call(gw, "one", NULL, NULL, a, b, NULL, 1, stop_after_two);         /* cancelled */

    /* every error class the calls were meant to cover is there */
    static const char *const classes[] = {"bad_request", "auth", "permission", "not_found",
                                          "rate_limit", "provider", "connect", "bad_response",
                                          "context_window", "content_filter", "timeout",
                                          "unknown_model", "cancelled", NULL};
    for (int c = 0; classes[c]; c++) {
        int found = 0;
        for (int i = 0; i < n_exp; i++)
            found |= EXP[i].status && strcmp(cJSON_GetObjectItem(EXP[i].trace, "status")->valuestring,
                                             classes[c]) == 0;
        if (!found)
            fail_msg("no call ended %s", classes[c]);
    }

    /* metrics: the counters match the calls */
    char *m = NULL;
    assert_int_equal(llmux_metrics_text(gw, &m), LLMUX_OK);
    assert_int_equal((int)family_sum(m, "llmux_calls_total"), n_exp);
    int errors = 0;
    for (int i = 0; i < n_exp; i++) {
        const expect *e = &EXP[i];
        char key[256];
        int same = 0;
        for (int j = 0; j < n_exp; j++)
            same += strcmp(EXP[j].provider, e->provider) == 0 && strcmp(EXP[j].model, e->model) == 0;
        snprintf(key, sizeof key, "llmux_calls_total{provider=\"%s\",model=\"%s\"}",
                 *e->provider ? e->provider : "(none)", *e->model ? e->model : "(none)");
        if ((int)series(m, key) != same)
            fail_msg("%s: %f, want %d\n%s", key, series(m, key), same, m);
        if (e->status) {
            errors++;
            const char *cls = cJSON_GetObjectItem(e->trace, "status")->valuestring;
            int same_err = 0;
            for (int j = 0; j < n_exp; j++)
                same_err += EXP[j].status && strcmp(EXP[j].provider, e->provider) == 0 &&
                            strcmp(EXP[j].model, e->model) == 0 &&
                            strcmp(cJSON_GetObjectItem(EXP[j].trace, "status")->valuestring, cls) == 0;
            snprintf(key, sizeof key,
                     "llmux_call_errors_total{provider=\"%s\",model=\"%s\",error_class=\"%s\"}",
                     *e->provider ? e->provider : "(none)", *e->model ? e->model : "(none)", cls);
            assert_int_equal((int)series(m, key), same_err);
        }
    }
    assert_int_equal((int)family_sum(m, "llmux_call_errors_total"), errors);
    /* tokens of the keyed calls */
    char fp[21], key[256];
    llmux__key_fingerprint(GATEWAY_SECRET, fp);
    long in_b = 0;
    for (int i = 0; i < n_exp; i++)
        if (EXP[i].key && strcmp(EXP[i].model, "m-b") == 0 && EXP[i].prompt > 0)
            in_b += EXP[i].prompt;
    snprintf(key, sizeof key, "llmux_tokens_total{key=\"%s\",team=\"\",model=\"m-b\",kind=\"input\"}", fp);
    assert_int_equal((long)series(m, key), in_b);
    assert_int_equal((int)series(m, "llmux_call_duration_seconds_count"), n_exp);
    assert_int_equal((int)series(m, "llmux_overhead_seconds_count"), n_exp);
    assert_int_equal((int)series(m, "llmux_calls_in_flight"), 0);
    llmux_free(m);
    llmux_close(gw); /* writes what is queued */

    char *text = slurp(path);
    assert_non_null(text);
    no_secret(text);
    cJSON *recs = parse_lines(text);
    check_records(recs);
    cJSON_Delete(recs);
    free(text);
    forget_all();
}

/* ------------------------------------------------------------- the callback */

typedef struct collected {
    pthread_mutex_t mu;
    pthread_t caller;
    int on_caller_thread;
    int n;
    char *recs[64];
    llmux *gw;
    int reentry_rc;
    int slow_ms;
} collected;

static void collect(const char *rec, size_t len, void *user)
{
    collected *c = user;
    assert_int_equal(strlen(rec), len);
    if (c->slow_ms)
        sleep_ms(c->slow_ms);
    pthread_mutex_lock(&c->mu);
    if (pthread_equal(pthread_self(), c->caller))
        c->on_caller_thread = 1;
    if (c->gw)
        c->reentry_rc = llmux_set_log_callback(c->gw, collect, c);
    if (c->n < 64)
        c->recs[c->n] = strdup(rec);
    c->n++;
    pthread_mutex_unlock(&c->mu);
}

static void collected_free(collected *c)
{
    for (int i = 0; i < c->n && i < 64; i++)
        free(c->recs[i]);
}

static void sha256_hex(const char *s, char out[65])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

static void test_callback_thread_and_removal(void **state)
{
    char a[32], b[32];
    llmux *gw = open_log(a, b, "{\"attempts\":false}");
    collected c = {PTHREAD_MUTEX_INITIALIZER, pthread_self(), 0, 0, {0}, NULL, 0, 0};
    forget_all();
    call(gw, "one", NULL, NULL, a, b, NULL, 0, NULL); /* before the callback: not replayed */
    assert_int_equal(llmux_set_log_callback(gw, collect, &c), LLMUX_OK);
    c.gw = gw; /* the callback tries to set itself again: refused */
    call(gw, "two", "{\"type\":\"status\",\"status\":500}", NULL, a, b, NULL, 0, NULL);
    assert_int_equal(llmux_log_flush(gw, 5000), LLMUX_OK);
    pthread_mutex_lock(&c.mu);
    assert_int_equal(c.n, 1); /* attempts off: the call's record only */
    assert_int_equal(c.on_caller_thread, 0);
    assert_int_equal(c.reentry_rc, LLMUX_ERR_INVALID_ARGUMENT);
    cJSON *r = cJSON_Parse(c.recs[0]);
    assert_string_equal(sget(r, "event.name"), "llmux.call");
    assert_int_equal((int)nget(r, "llmux.attempts"), 2);
    cJSON_Delete(r);
    c.gw = NULL;
    pthread_mutex_unlock(&c.mu);
    assert_int_equal(llmux_set_log_callback(gw, NULL, NULL), LLMUX_OK);
    call(gw, "one", NULL, NULL, a, b, NULL, 0, NULL);
    assert_int_equal(llmux_log_flush(gw, 5000), LLMUX_OK);
    assert_int_equal(c.n, 1);
    assert_int_equal(llmux_set_log_callback(NULL, collect, &c), LLMUX_ERR_INVALID_ARGUMENT);
    assert_int_equal(llmux_log_flush(NULL, 1), LLMUX_ERR_INVALID_ARGUMENT);
    llmux_close(gw);
    collected_free(&c);
    forget_all();
}

static void test_content_policies(void **state)
{
    char a[32], b[32], log[256], fp[21];
    llmux__key_fingerprint("gk-strict-tenant", fp);
    snprintf(log, sizeof log,
             "{\"content\":\"redacted\",\"attempts\":false,\"content_by_key\":{\"%s\":\"off\"}}", fp);
    llmux *gw = open_log(a, b, log);
    collected c = {PTHREAD_MUTEX_INITIALIZER, pthread_self(), 0, 0, {0}, NULL, 0, 0};
    assert_int_equal(llmux_set_log_callback(gw, collect, &c), LLMUX_OK);
    char req[256];
    snprintf(req, sizeof req, HELLO, "one");
    llmux_result *r = NULL;
    llmux_chat(gw, req, NULL, &r);
    assert_int_equal(llmux_result_status(r), LLMUX_OK);
    char *answer = strdup(llmux_result_json(r));
    llmux_result_free(r);
    llmux_call_options o;
    llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION);
    o.key = "gk-strict-tenant";
    llmux_chat(gw, req, &o, &r);
    llmux_result_free(r);
    llmux_close(gw);
    assert_int_equal(c.n, 2);
    cJSON *rec = cJSON_Parse(c.recs[0]);
    char want[65];
    assert_string_equal(sget(rec, "llmux.content"), "redacted");
    sha256_hex(req, want);
    assert_string_equal(sget(rec, "llmux.request.sha256"), want);
    assert_int_equal((size_t)nget(rec, "llmux.request.bytes"), strlen(req));
    sha256_hex(answer, want);
    assert_string_equal(sget(rec, "llmux.response.sha256"), want);
    assert_int_equal((size_t)nget(rec, "llmux.response.bytes"), strlen(answer));
    assert_null(strstr(c.recs[0], "hello there")); /* no text of the prompt */
    assert_null(cJSON_GetObjectItem(rec, "llmux.request.body"));
    cJSON_Delete(rec);
    rec = cJSON_Parse(c.recs[1]); /* the stricter key's policy */
    assert_string_equal(sget(rec, "llmux.content"), "off");
    assert_null(cJSON_GetObjectItem(rec, "llmux.request.sha256"));
    cJSON_Delete(rec);
    collected_free(&c);

    /* full: the request and answer as given */
    gw = open_log(a, b, "{\"content\":\"full\",\"attempts\":false}");
    collected f = {PTHREAD_MUTEX_INITIALIZER, pthread_self(), 0, 0, {0}, NULL, 0, 0};
    assert_int_equal(llmux_set_log_callback(gw, collect, &f), LLMUX_OK);
    llmux_chat(gw, req, NULL, &r);
    free(answer);
    answer = strdup(llmux_result_json(r));
    llmux_result_free(r);
    llmux_close(gw);
    assert_int_equal(f.n, 1);
    no_secret(f.recs[0]);
    rec = cJSON_Parse(f.recs[0]);
    assert_string_equal(sget(rec, "llmux.request.body"), req);
    assert_string_equal(sget(rec, "llmux.response.body"), answer);
    cJSON_Delete(rec);
    collected_free(&f);
    free(answer);

    /* a configured key named by its id, and a team: stricter policies for both */
    gw = open_log(a, b,
                  "{\"content\":\"redacted\",\"attempts\":false,\"content_by_key\":{\"bot\":\"off\"},"
                  "\"content_by_team\":{\"secret\":\"off\"}}");
    char kerr[256];
    assert_int_equal(llmux_key_add(gw, "bot", "{\"key\":\"gk-log-bot-key\"}", kerr, sizeof kerr),
                     LLMUX_OK);
    assert_int_equal(llmux_key_add(gw, "member", "{\"key\":\"gk-log-member\",\"team\":\"secret\"}",
                                   kerr, sizeof kerr),
                     LLMUX_OK);
    assert_int_equal(llmux_key_add(gw, "other", "{\"key\":\"gk-log-other\",\"team\":\"open\"}",
                                   kerr, sizeof kerr),
                     LLMUX_OK);
    collected k = {PTHREAD_MUTEX_INITIALIZER, pthread_self(), 0, 0, {0}, NULL, 0, 0};
    assert_int_equal(llmux_set_log_callback(gw, collect, &k), LLMUX_OK);
    static const char *const KEYS[3] = {"gk-log-bot-key", "gk-log-member", "gk-log-other"};
    for (int i = 0; i < 3; i++) {
        o.key = KEYS[i];
        assert_int_equal(llmux_chat(gw, req, &o, &r), LLMUX_OK);
        llmux_result_free(r);
        assert_int_equal(llmux_log_flush(gw, 5000), LLMUX_OK); /* records in call order */
    }
    llmux_close(gw);
    assert_int_equal(k.n, 3);
    static const char *const WANT[3] = {"off", "off", "redacted"};
    for (int i = 0; i < 3; i++) {
        rec = cJSON_Parse(k.recs[i]);
        assert_string_equal(sget(rec, "llmux.content"), WANT[i]);
        cJSON_Delete(rec);
    }
    collected_free(&k);
}

/* A slow callback and a queue of one: calls never wait, drops are counted. */
static void test_full_queue_drops_and_never_blocks(void **state)
{
    char a[32], b[32];
    llmux *gw = open_log(a, b, "{\"queue\":1}");
    collected c = {PTHREAD_MUTEX_INITIALIZER, pthread_self(), 0, 0, {0}, NULL, 0, 300};
    assert_int_equal(llmux_set_log_callback(gw, collect, &c), LLMUX_OK);
    char req[256];
    snprintf(req, sizeof req, HELLO, "one");
    double worst = 0;
    for (int i = 0; i < 8; i++) {
        llmux_result *r = NULL;
        double t0 = now_ms();
        assert_int_equal(llmux_chat(gw, req, NULL, &r), LLMUX_OK);
        double t = now_ms() - t0;
        worst = t > worst ? t : worst;
        llmux_result_free(r);
    }
    assert_true(worst < 250); /* a record takes the callback 300 ms */
    assert_int_equal(llmux_log_flush(gw, 10000), LLMUX_OK);
    char *m = NULL;
    assert_int_equal(llmux_metrics_text(gw, &m), LLMUX_OK);
    double written = series(m, "llmux_log_records_total");
    double dropped = series(m, "llmux_log_dropped_total{reason=\"queue_full\"}");
    assert_int_equal((int)(written + dropped), 16); /* 8 calls, an attempt record and a call record each */
    assert_true(dropped >= 2);
    assert_int_equal((int)written, c.n);
    llmux_free(m);
    llmux_close(gw);
    collected_free(&c);
}

/* ------------------------------------------------------ rotation, retention */

static int count_files(const char *prefix, long *max_size, long *rotated_total)
{
    DIR *d = opendir(DIR_);
    int n = 0;
    *max_size = 0;
    *rotated_total = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, strlen(prefix)) != 0)
            continue;
        char p[600];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s", DIR_, e->d_name);
        stat(p, &st);
        n++;
        if (st.st_size > *max_size)
            *max_size = (long)st.st_size;
        if (strcmp(e->d_name, prefix) != 0)
            *rotated_total += (long)st.st_size;
    }
    closedir(d);
    return n;
}

static void test_rotation_and_retention(void **state)
{
    char a[32], b[32], log[512], path[300];
    snprintf(path, sizeof path, "%s/rot.jsonl", DIR_);
    /* two stale rotated files from an earlier run: one a day old, one fresh */
    char old[400], fresh[400];
    snprintf(old, sizeof old, "%s.20200101T000000Z-000001", path);
    snprintf(fresh, sizeof fresh, "%s.20200101T000000Z-000002", path);
    FILE *f = fopen(old, "w");
    fputs("{}\n", f);
    fclose(f);
    f = fopen(fresh, "w");
    fputs("{}\n", f);
    fclose(f);
    struct timeval tv[2] = {{time(NULL) - 86400, 0}, {time(NULL) - 86400, 0}};
    assert_int_equal(utimes(old, tv), 0);
    snprintf(log, sizeof log,
             "{\"attempts\":false,\"file\":{\"path\":\"%s\",\"max_bytes\":1500,"
             "\"retain_seconds\":3600,\"retain_bytes\":4000}}", path);
    llmux *gw = open_log(a, b, log);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600); /* owner-only: the log may hold prompts */
    assert_int_equal(access(old, F_OK), -1); /* removed at open: older than an hour */
    assert_int_equal(access(fresh, F_OK), 0);
    char req[256];
    snprintf(req, sizeof req, HELLO, "one");
    for (int i = 0; i < 30; i++) {
        llmux_result *r = NULL;
        llmux_chat(gw, req, NULL, &r);
        llmux_result_free(r);
    }
    llmux_close(gw);
    long biggest, rotated;
    int files = count_files("rot.jsonl", &biggest, &rotated);
    assert_true(files >= 3);
    assert_true(biggest <= 1500);
    assert_true(rotated <= 4000);
    assert_true(rotated > 4000 - 1500);     /* no more removed than the limit asks */
    assert_int_equal(access(fresh, F_OK), -1); /* the oldest went first */
    /* the current file holds the latest calls, whole records only */
    char *text = slurp(path);
    cJSON *recs = parse_lines(text);
    assert_true(cJSON_GetArraySize(recs) >= 1);
    cJSON_Delete(recs);
    free(text);

    /* age: a file opened more than max_age_seconds ago is rotated */
    snprintf(path, sizeof path, "%s/age.jsonl", DIR_);
    snprintf(log, sizeof log, "{\"attempts\":false,\"file\":{\"path\":\"%s\",\"max_age_seconds\":1}}",
             path);
    gw = open_log(a, b, log);
    for (int i = 0; i < 2; i++) {
        llmux_result *r = NULL;
        llmux_chat(gw, req, NULL, &r);
        llmux_result_free(r);
        assert_int_equal(llmux_log_flush(gw, 5000), LLMUX_OK);
        if (!i)
            sleep_ms(2100);
    }
    llmux_close(gw);
    assert_int_equal(count_files("age.jsonl", &biggest, &rotated), 2);
}

/* ------------------------------------------------------------------- OTLP */

static void test_otlp_export_and_receiver_down(void **state)
{
    capture_server cs;
    assert_int_equal(capture_start(&cs), 0);
    capture_reply(&cs, 200, "application/json", "{}", 0);
    char a[32], b[32], log[512];
    snprintf(log, sizeof log, "{\"otlp\":{\"url\":\"%s/v1/logs\",\"batch\":100}}", cs.url);
    llmux *gw = open_log(a, b, log);
    forget_all();
    call(gw, "two", "{\"type\":\"status\",\"status\":500}", NULL, a, b, NULL, 0, NULL);
    call(gw, "one", NULL, NULL, a, b, NULL, 0, NULL);
    assert_int_equal(llmux_log_flush(gw, 5000), LLMUX_OK);
    assert_int_equal(capture_requests(&cs), 1); /* one batch */
    assert_true(capture_has_header(&cs, "Content-Type: application/json"));
    assert_string_equal(cs.path, "/v1/logs");
    char *body = capture_body(&cs);
    no_secret(body);
    cJSON *j = cJSON_Parse(body);
    assert_non_null(j);
    const cJSON *rl = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "resourceLogs"), 0);
    const cJSON *sl = cJSON_GetArrayItem(cJSON_GetObjectItem(rl, "scopeLogs"), 0);
    const cJSON *lr = cJSON_GetObjectItem(sl, "logRecords");
    assert_int_equal(cJSON_GetArraySize(lr), 5); /* 2 + 1 attempts, 2 calls */
    const cJSON *last = cJSON_GetArrayItem(lr, 4);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(last, "body"), "stringValue")->valuestring,
                        "llmux.call");
    int found = 0;
    for (const cJSON *at = cJSON_GetObjectItem(last, "attributes")->child; at; at = at->next)
        if (strcmp(sget(at, "key"), "gen_ai.provider.name") == 0)
            found = strcmp(sget(cJSON_GetObjectItem(at, "value"), "stringValue"), a) == 0;
    assert_true(found);
    assert_non_null(sget(last, "timeUnixNano"));
    cJSON_Delete(j);
    free(body);
    char *m = NULL;
    llmux_metrics_text(gw, &m);
    assert_int_equal((int)series(m, "llmux_log_exported_total"), 5);
    assert_int_equal((int)series(m, "llmux_log_dropped_total{reason=\"otlp\"}"), 0);
    llmux_free(m);
    llmux_close(gw);

    /* the receiver is down: calls go on as before, the records are counted as dropped */
    capture_stop(&cs);
    gw = open_log(a, b, log);
    char req[256];
    snprintf(req, sizeof req, HELLO, "one");
    for (int i = 0; i < 4; i++) {
        llmux_result *r = NULL;
        double t0 = now_ms();
        assert_int_equal(llmux_chat(gw, req, NULL, &r), LLMUX_OK);
        assert_true(now_ms() - t0 < 1000);
        llmux_result_free(r);
    }
    assert_int_equal(llmux_log_flush(gw, 10000), LLMUX_OK);
    llmux_metrics_text(gw, &m);
    assert_int_equal((int)series(m, "llmux_log_exported_total"), 0);
    assert_int_equal((int)series(m, "llmux_log_dropped_total{reason=\"otlp\"}"), 8);
    llmux_free(m);
    llmux_close(gw);
    forget_all();
}

/* ----------------------------------------------------------------- config */

static void test_config_errors_name_the_path(void **state)
{
    static const struct {
        const char *log, *msg;
    } cases[] = {
        {"{\"content\":\"some\"}", "log.content: expected \"off\", \"redacted\" or \"full\""},
        {"{\"content\":1}", "log.content: expected \"off\", \"redacted\" or \"full\", got a number"},
        {"{\"file\":{\"path\":\"/tmp/x\",\"max_bytes\":-1}}", "log.file.max_bytes: out of range"},
        {"{\"file\":{}}", "log.file.path: required"},
        {"{\"file\":{\"path\":\"/nonexistent-dir/x.jsonl\"}}", "log.file.path: cannot open"},
        {"{\"otlp\":{\"url\":\"ftp://x\"}}", "log.otlp.url: expected an http:// or https:// URL"},
        {"{\"queue\":0}", "log.queue: out of range"},
        {"{\"content_by_key\":{\"al ice\":\"off\"}}",
         "log.content_by_key[\"al ice\"]: expected a gateway key's id as llmux.key_id logs it"},
        {"{\"content_by_team\":{\"\":\"off\"}}", "log.content_by_team[\"\"]: expected a team's name"},
        {"{\"content_by_team\":{\"red\":\"loud\"}}", "log.content_by_team.red: expected"},
        {"{\"content_by_key\":{\"key-0123456789abcdef\":\"loud\"}}",
         "log.content_by_key.key-0123456789abcdef: expected"},
        {"{\"colour\":1}", "log.colour: unknown key"},
        {"[]", "log: expected an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cfg[1024], err[512];
        snprintf(cfg, sizeof cfg,
                 "{\"providers\":{\"p\":{\"type\":\"openai\",\"base_url\":\"%s/p/v1\"}},"
                 "\"models\":{\"m\":{\"targets\":[{\"provider\":\"p\",\"model\":\"x\"}]}},\"log\":%s}",
                 SIM.url, cases[i].log);
        llmux *gw = NULL;
        assert_int_equal(llmux_open(&gw, cfg, err, sizeof err), LLMUX_ERR_CONFIG);
        if (strncmp(err, cases[i].msg, strlen(cases[i].msg)) != 0)
            fail_msg("%s: got \"%s\", want \"%s...\"", cases[i].log, err, cases[i].msg);
    }
}

static int setup(void **state)
{
    setenv("LLMUX_LOG_TEST_KEY", PROVIDER_SECRET, 1);
    snprintf(DIR_, sizeof DIR_, "/tmp/llmux-test-log-XXXXXX");
    if (!mkdtemp(DIR_))
        return 1;
    return sim_start(&SIM);
}

static int teardown(void **state)
{
    sim_stop(&SIM);
    DIR *d = opendir(DIR_);
    for (struct dirent *e; d && (e = readdir(d));) {
        char p[600];
        snprintf(p, sizeof p, "%s/%s", DIR_, e->d_name);
        if (e->d_name[0] != '.')
            remove(p);
    }
    if (d)
        closedir(d);
    rmdir(DIR_);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_errors_name_the_path),
        cmocka_unit_test(test_records_of_a_run),
        cmocka_unit_test(test_callback_thread_and_removal),
        cmocka_unit_test(test_content_policies),
        cmocka_unit_test(test_full_queue_drops_and_never_blocks),
        cmocka_unit_test(test_rotation_and_retention),
        cmocka_unit_test(test_otlp_export_and_receiver_down),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
