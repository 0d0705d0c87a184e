/* Gateway keys, budgets and rate limits (issue 20): the config's keys and
 * their errors, auth and permission refused before any provider sees the
 * call, runtime add / rotate / revoke, budgets that name themselves when they
 * refuse, alerts once per threshold, rpm and tpm limits with a retry-after,
 * the ledger's key, team and alias rows, calendar periods, and 8 threads x
 * 2,000 calls against a budget worth 5,000 that never overspend. No output
 * of this test holds a plaintext key or its hash (checked here, and on the
 * test's whole output by keys_output_has_no_key_material). */
#include <openssl/evp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "engine/result.h"
#include "ledger/ledger.h"
#include "llmux.h"
#include "policy/policy.h"
#include "sim_harness.h"

static sim SIM;
static int counter;

/* the plaintext keys of this test: none may appear in any output */
#define KEY_ONE "sk-gw-one-0123456789"
#define KEY_TWO "sk-gw-two-0123456789"
#define KEY_OLD "sk-gw-old-0123456789"
#define KEY_RUN "sk-gw-run-0123456789"
#define KEY_NEW "sk-gw-new-0123456789"
static const char *const SECRETS[] = {KEY_ONE, KEY_TWO, KEY_OLD, KEY_RUN, KEY_NEW};
#define N_SECRETS (sizeof SECRETS / sizeof *SECRETS)

static void hex_sha256(const char *s, char out[65])
{
    unsigned char md[32];
    unsigned n = 0;
    EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* text must hold no plaintext key, no key's SHA-256 (hex) and no prefix of one */
static void assert_clean(const char *text)
{
    if (!text)
        return;
    for (size_t i = 0; i < N_SECRETS; i++) {
        char h[65];
        hex_sha256(SECRETS[i], h);
        h[16] = '\0';
        if (strstr(text, SECRETS[i]) || strstr(text, h))
            fail_msg("key material in output: %s", text);
    }
}

static void names(char a[32], char b[32])
{
    counter++;
    snprintf(a, 32, "ka%d", counter);
    snprintf(b, 32, "kb%d", counter);
}

/* 1.2345678 in, 3.0375 out (USD per million tokens) */
#define PRICES "\"prices\":{\"m-a\":{\"input_mtok\":1.2345678,\"output_mtok\":3.0375}}"

static llmux *open_with(const char *a, const char *b, const char *extra, char *err, size_t n)
{
    const char *deps[] = {a, b, NULL};
    char models[512];
    snprintf(models, sizeof models,
             "{\"one\":{\"targets\":[{\"provider\":\"%s\",\"model\":\"m-a\"}]},"
             "\"two\":{\"targets\":[{\"provider\":\"%s\",\"model\":\"m-a\"}]},"
             "\"unpriced\":{\"targets\":[{\"provider\":\"%s\",\"model\":\"m-b\"}]}}",
             a, b, a);
    char *cfg = sim_config(&SIM, deps, models, extra);
    llmux *gw = NULL;
    llmux_open(&gw, cfg, err, n);
    free(cfg);
    return gw;
}

static llmux *open_ok(const char *a, const char *b, const char *extra)
{
    char err[512];
    llmux *gw = open_with(a, b, extra, err, sizeof err);
    if (!gw)
        fail_msg("open: %s", err);
    return gw;
}

static double nget(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : -12345;
}

static const char *sget(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int requests_seen(const char *deployment)
{
    char *body = sim_get(&SIM, deployment);
    if (!body)
        return 0;
    assert_clean(body); /* the provider never sees the gateway key */
    cJSON *j = cJSON_Parse(body);
    int n = (int)nget(j, "requests");
    cJSON_Delete(j);
    free(body);
    return n;
}

#define REQ(model) \
    "{\"model\":\"" model "\",\"max_tokens\":8,\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"}]}"

/* a call; every output of its result is checked for key material */
static int call(llmux *gw, const char *req, const char *key, llmux_result **out)
{
    llmux_call_options o;
    llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION);
    o.key = key;
    llmux_result *r = NULL;
    int rc = llmux_chat(gw, req, &o, &r);
    assert_clean(llmux_result_json(r));
    assert_clean(llmux_result_error(r));
    assert_clean(llmux_result_trace_json(r));
    if (out)
        *out = r;
    else
        llmux_result_free(r);
    return rc;
}

static char *keys_cfg(const char *extra)
{
    static char buf[4096];
    char h1[65], h2[65], h3[65];
    hex_sha256(KEY_ONE, h1);
    hex_sha256(KEY_TWO, h2);
    hex_sha256(KEY_OLD, h3);
    snprintf(buf, sizeof buf,
             PRICES ",\"keys\":{"
             "\"support-bot\":{\"sha256\":\"%s\",\"team\":\"support\",\"models\":[\"one\"]},"
             "\"analyst\":{\"sha256\":\"%s\",\"team\":\"research\"},"
             "\"old\":{\"sha256\":\"%s\",\"expires\":\"2020-01-01T00:00:00Z\"}}%s%s",
             h1, h2, h3, extra ? "," : "", extra ? extra : "");
    return buf;
}

static void test_auth_and_permission_before_any_provider(void **state)
{
    char a[32], b[32];
    names(a, b);
    llmux *gw = open_ok(a, b, keys_cfg(NULL));
    llmux_result *r;

    /* no key: allowed (require_key defaults to false) */
    assert_int_equal(call(gw, REQ("one"), NULL, NULL), LLMUX_OK);
    assert_int_equal(requests_seen(a), 1);

    assert_int_equal(call(gw, REQ("one"), "sk-gw-nobody-0123456789", &r), LLMUX_ERR_AUTH);
    assert_string_equal(llmux_result_error(r), "unknown gateway key");
    assert_int_equal(llmux_result_http_status(r), 401);
    llmux_result_free(r);
    assert_int_equal(call(gw, REQ("one"), KEY_OLD, &r), LLMUX_ERR_AUTH);
    assert_string_equal(llmux_result_error(r), "gateway key \"old\" has expired");
    llmux_result_free(r);
    assert_int_equal(requests_seen(a), 1);

    /* the key's aliases: "one" only, and no provider/model */
    assert_int_equal(call(gw, REQ("one"), KEY_ONE, &r), LLMUX_OK);
    cJSON *t = cJSON_Parse(llmux_result_trace_json(r));
    assert_string_equal(sget(t, "key"), "support-bot");
    assert_string_equal(sget(t, "team"), "support");
    cJSON_Delete(t);
    llmux_result_free(r);
    assert_int_equal(call(gw, REQ("two"), KEY_ONE, &r), LLMUX_ERR_PERMISSION);
    assert_string_equal(llmux_result_error(r),
                        "gateway key \"support-bot\" may not use the alias \"two\"");
    llmux_result_free(r);
    assert_int_equal(requests_seen(b), 0);
    /* a key without "models" may use every alias */
    assert_int_equal(call(gw, REQ("two"), KEY_TWO, NULL), LLMUX_OK);
    assert_int_equal(requests_seen(b), 1);

    /* revoked: refused from the next call on */
    assert_int_equal(llmux_key_revoke(gw, "support-bot"), LLMUX_OK);
    assert_int_equal(llmux_key_revoke(gw, "nobody"), LLMUX_ERR_INVALID_ARGUMENT);
    assert_int_equal(call(gw, REQ("one"), KEY_ONE, &r), LLMUX_ERR_AUTH);
    assert_string_equal(llmux_result_error(r), "gateway key \"support-bot\" is revoked");
    llmux_result_free(r);
    assert_int_equal(requests_seen(a), 2);

    /* the ledger: by key id, team and alias; refused calls are counted */
    char *out = NULL;
    assert_int_equal(llmux_spend_json(gw, "team", &out), LLMUX_OK);
    assert_clean(out);
    cJSON *sp = cJSON_Parse(out);
    llmux_free(out);
    const cJSON *rows = cJSON_GetObjectItem(sp, "rows");
    assert_int_equal(cJSON_GetArraySize(rows), 3);
    const cJSON *row;
    int seen = 0;
    cJSON_ArrayForEach(row, rows) {
        const char *g = sget(row, "group");
        if (strcmp(g, "support") == 0) {
            assert_int_equal((int)nget(row, "calls"), 3);
            assert_int_equal((int)nget(row, "errors"), 2);
            seen |= 1;
        } else if (strcmp(g, "research") == 0) {
            assert_int_equal((int)nget(row, "calls"), 1);
            seen |= 2;
        } else {
            assert_string_equal(g, "(none)");
            assert_int_equal((int)nget(row, "calls"), 3);
            seen |= 4;
        }
    }
    assert_int_equal(seen, 7);
    cJSON_Delete(sp);
    assert_int_equal(llmux_spend_json(gw, "alias", &out), LLMUX_OK);
    assert_non_null(strstr(out, "{\"group\":\"one\",\"calls\":2,\"errors\":0,"));
    /* the call refused the alias "two" counts under it */
    assert_non_null(strstr(out, "{\"group\":\"two\",\"calls\":2,\"errors\":1,"));
    llmux_free(out);
    assert_int_equal(llmux_spend_json(gw, "key", &out), LLMUX_OK);
    assert_clean(out);
    assert_non_null(strstr(out, "{\"group\":\"support-bot\",\"calls\":3,\"errors\":2,"));
    assert_non_null(strstr(out, "{\"group\":\"old\",\"calls\":1,\"errors\":1,"));
    assert_non_null(strstr(out, "{\"group\":\"(unknown key)\",\"calls\":1,\"errors\":1,"));
    llmux_free(out);
    llmux_close(gw);
}

static void test_require_key_and_keyless_gateways(void **state)
{
    char a[32], b[32];
    names(a, b);
    llmux *gw = open_ok(a, b, keys_cfg("\"require_key\":true"));
    llmux_result *r;
    assert_int_equal(call(gw, REQ("one"), NULL, &r), LLMUX_ERR_AUTH);
    assert_string_equal(llmux_result_error(r),
                        "a gateway key is required (require_key) and the call has none");
    llmux_result_free(r);
    assert_int_equal(call(gw, REQ("one"), KEY_ONE, NULL), LLMUX_OK);
    assert_int_equal(requests_seen(a), 1);
    llmux_close(gw);

    /* a gateway without keys takes any key as a label (as before keys) ... */
    names(a, b);
    gw = open_ok(a, b, PRICES);
    const char *label = "sk-label-0123456789";
    llmux_result *r2;
    assert_int_equal(call(gw, REQ("one"), label, &r2), LLMUX_OK);
    char fp[21];
    llmux__key_fingerprint(label, fp);
    assert_string_equal(r2->key_id, fp);
    llmux_result_free(r2);
    /* ... until it knows one */
    char err[256];
    assert_int_equal(llmux_key_add(gw, "runtime", "{\"key\":\"" KEY_NEW "\",\"models\":[\"two\"]}",
                                   err, sizeof err),
                     LLMUX_OK);
    assert_int_equal(call(gw, REQ("one"), label, NULL), LLMUX_ERR_AUTH);
    assert_int_equal(call(gw, REQ("two"), KEY_NEW, NULL), LLMUX_OK);
    assert_int_equal(call(gw, REQ("one"), KEY_NEW, NULL), LLMUX_ERR_PERMISSION);
    llmux_close(gw);
}

static void test_runtime_add_rotate_list(void **state)
{
    char a[32], b[32], err[256];
    names(a, b);
    llmux *gw = open_ok(a, b, keys_cfg(NULL));
    assert_int_equal(llmux_key_add(gw, "runner",
                                   "{\"key\":\"" KEY_RUN "\",\"team\":\"support\","
                                   "\"expires\":\"2099-01-01T00:00:00Z\"}",
                                   err, sizeof err),
                     LLMUX_OK);
    assert_int_equal(call(gw, REQ("two"), KEY_RUN, NULL), LLMUX_OK);
    /* errors: a taken id, a secret another key has, a bad spec */
    assert_int_equal(llmux_key_add(gw, "runner", "{\"key\":\"" KEY_NEW "\"}", err, sizeof err),
                     LLMUX_ERR_INVALID_ARGUMENT);
    assert_string_equal(err, "a key with id \"runner\" already exists");
    assert_int_equal(llmux_key_add(gw, "again", "{\"key\":\"" KEY_ONE "\"}", err, sizeof err),
                     LLMUX_ERR_INVALID_ARGUMENT);
    assert_string_equal(err, "key \"again\" has the same secret as key \"support-bot\"");
    assert_int_equal(llmux_key_add(gw, "bad", "{\"key\":\"" KEY_NEW "\",\"models\":[\"nope\"]}",
                                   err, sizeof err),
                     LLMUX_ERR_INVALID_ARGUMENT);
    assert_string_equal(err, "bad.models[0]: no alias named \"nope\"");
    assert_int_equal(llmux_key_add(gw, "bad id", "{\"key\":\"" KEY_NEW "\"}", err, sizeof err),
                     LLMUX_ERR_INVALID_ARGUMENT);
    assert_int_equal(llmux_key_add(gw, "short", "{\"key\":\"abc\"}", err, sizeof err),
                     LLMUX_ERR_INVALID_ARGUMENT);
    assert_string_equal(err, "short.key: a string of at least 8 characters");

    /* rotation: the old secret stops, the new one works, under the same id */
    assert_int_equal(llmux_key_rotate(gw, "runner", KEY_NEW, err, sizeof err), LLMUX_OK);
    assert_int_equal(call(gw, REQ("two"), KEY_RUN, NULL), LLMUX_ERR_AUTH);
    assert_int_equal(call(gw, REQ("two"), KEY_NEW, NULL), LLMUX_OK);
    assert_int_equal(llmux_key_rotate(gw, "runner", KEY_ONE, err, sizeof err),
                     LLMUX_ERR_INVALID_ARGUMENT);
    /* 200 more keys: the digest index grows, every key is still found */
    for (int i = 0; i < 200; i++) {
        char id[32], spec[96];
        snprintf(id, sizeof id, "bulk-%d", i);
        snprintf(spec, sizeof spec, "{\"key\":\"sk-bulk-%08d\",\"models\":[\"two\"]}", i);
        assert_int_equal(llmux_key_add(gw, id, spec, err, sizeof err), LLMUX_OK);
    }
    for (int i = 0; i < 200; i += 37) {
        char k[32], want[64];
        snprintf(k, sizeof k, "sk-bulk-%08d", i);
        llmux_result *r;
        assert_int_equal(call(gw, REQ("two"), k, &r), LLMUX_OK);
        snprintf(want, sizeof want, "bulk-%d", i);
        assert_string_equal(r->key_id, want);
        llmux_result_free(r);
    }
    assert_int_equal(call(gw, REQ("two"), KEY_NEW, NULL), LLMUX_OK); /* "runner", rotated */
    char *out = NULL;
    assert_int_equal(llmux_spend_json(gw, "key", &out), LLMUX_OK);
    assert_non_null(strstr(out, "{\"group\":\"runner\",\"calls\":3,\"errors\":0,"));
    llmux_free(out);

    assert_int_equal(llmux_keys_json(gw, &out), LLMUX_OK);
    assert_clean(out);
    /* the first keys, in the order they came; the bulk keys after them */
    const char *want =
        "[{\"id\":\"support-bot\",\"team\":\"support\",\"state\":\"active\",\"direct\":false,"
             "\"models\":[\"one\"]},"
             "{\"id\":\"analyst\",\"team\":\"research\",\"state\":\"active\",\"direct\":true,"
             "\"models\":null},"
             "{\"id\":\"old\",\"team\":null,\"state\":\"expired\",\"direct\":true,\"models\":null,"
             "\"expires\":\"2020-01-01T00:00:00Z\"},"
             "{\"id\":\"runner\",\"team\":\"support\",\"state\":\"active\",\"direct\":true,"
             "\"models\":null,\"expires\":\"2099-01-01T00:00:00Z\"},"
             "{\"id\":\"bulk-0\",\"team\":null,\"state\":\"active\",\"direct\":false,"
             "\"models\":[\"two\"]},";
    assert_memory_equal(out, want, strlen(want));
    llmux_free(out);
    llmux_close(gw);
}

static void test_config_errors(void **state)
{
    static const struct {
        const char *extra, *want;
    } cases[] = {
        {"\"keys\":{\"k\":{\"team\":\"x\"}}",
         "keys.k: sha256: required, the key's SHA-256 as 64 hex digits"},
        {"\"keys\":{\"k\":{\"sha256\":\"abc\"}}", "keys.k.sha256: 64 hex digits (SHA-256 of the key)"},
        {"\"keys\":{\"k\":{\"key\":\"" KEY_ONE "\"}}",
         "keys.k.key: unknown key (known: sha256, team, models, direct, expires, budgets, limits)"},
        {"\"keys\":{\"k\":{\"sha256\":\"%s\",\"models\":[\"nope\"]}}",
         "keys.k.models[0]: no alias named \"nope\""},
        {"\"keys\":{\"k\":{\"sha256\":\"%s\",\"expires\":\"2027-01-01\"}}",
         "keys.k.expires: a UTC time like \"2027-01-01T00:00:00Z\""},
        {"\"keys\":{\"k\":{\"sha256\":\"%s\",\"budgets\":[{\"usd\":5,\"period\":\"year\"}]}}",
         "keys.k.budgets[0].period: required, one of day, week, month, total"},
        {"\"keys\":{\"k\":{\"sha256\":\"%s\",\"limits\":{\"rps\":3}}}",
         "keys.k.limits.rps: unknown key (known: rpm, tpm)"},
        {"\"keys\":{\"k\":{\"sha256\":\"%s\",\"limits\":{\"rpm\":0.5}}}",
         "keys.k.limits.rpm: a whole number from 1 to 1e12"},
        {"\"teams\":{\"t\":{\"budgets\":[{\"usd\":0,\"period\":\"day\"}]}}",
         "teams.t.budgets[0].usd: required, a number of dollars above 0 (at most 1e9)"},
        {"\"teams\":{\"t\":{\"budgets\":[{\"usd\":1,\"period\":\"day\",\"alert_at\":[0.8,0.5]}]}}",
         "teams.t.budgets[0].alert_at: fractions of the budget above 0, at most 1, ascending"},
        {"\"teams\":{\"t\":{\"owner\":\"x\"}}", "teams.t.owner: unknown key (known: budgets, limits)"},
        {"\"budgets\":{\"usd\":1}", "budgets: must be an array of {\"usd\", \"period\", \"alert_at\"}"},
        {"\"keys\":{\"a\":{\"sha256\":\"%s\"},\"b\":{\"sha256\":\"%s\"}}",
         "keys.b: key \"b\" has the same secret as key \"a\""},
        {"\"require_key\":1", "require_key: expected true or false, got a number"},
    };
    char h[65];
    hex_sha256(KEY_ONE, h);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char a[32], b[32], extra[512], err[512];
        names(a, b);
        /* "%s" in a case stands for a valid hash */
        size_t k = 0;
        for (const char *c = cases[i].extra; *c && k + 65 < sizeof extra; c++) {
            if (c[0] == '%' && c[1] == 's') {
                memcpy(extra + k, h, 64);
                k += 64;
                c++;
            } else {
                extra[k++] = *c;
            }
        }
        extra[k] = '\0';
        llmux *gw = open_with(a, b, extra, err, sizeof err);
        if (gw)
            fail_msg("case %zu opened", i);
        assert_clean(err);
        assert_string_equal(err, cases[i].want);
    }
}

static void test_budget_refuses_with_its_name_and_what_is_left(void **state)
{
    char a[32], b[32], cfg[1024];
    names(a, b);
    char h[65];
    hex_sha256(KEY_ONE, h);
    snprintf(cfg, sizeof cfg,
             PRICES ",\"keys\":{\"capped\":{\"sha256\":\"%s\",\"team\":\"t\","
                    "\"budgets\":[{\"usd\":0.0001,\"period\":\"day\"}]}}",
             h);
    llmux *gw = open_ok(a, b, cfg);
    llmux_result *r;
    /* max_tokens 100000 at 3.0375/Mtok may cost $0.30 > $0.0001 */
    const char *big = "{\"model\":\"one\",\"max_tokens\":100000,\"messages\":[{\"role\":\"user\","
                      "\"content\":\"hi\"}]}";
    assert_int_equal(call(gw, big, KEY_ONE, &r), LLMUX_ERR_BUDGET);
    /* the prompt: 32 bytes of messages, reserved as 32 tokens: 32 * 1.2345678 +
     * 100000 * 3.0375 micro-dollars = 303789.506... nano... = $0.303789 */
    assert_string_equal(llmux_result_error(r),
                        "budget exceeded: key \"capped\" day budget of $0.000100 has $0.000100 "
                        "left (counting calls in flight); this call may cost up to $0.303789");
    assert_int_equal(llmux_result_http_status(r), 403);
    llmux_result_free(r);
    assert_int_equal(requests_seen(a), 0);
    /* a small call fits, and is settled at its real cost */
    assert_int_equal(call(gw, REQ("one"), KEY_ONE, &r), LLMUX_OK);
    int64_t cost = r->cost_nusd;
    assert_true(cost > 0);
    llmux_result_free(r);
    char *out = NULL;
    assert_int_equal(llmux_budgets_json(gw, &out), LLMUX_OK);
    char want[256];
    snprintf(want, sizeof want,
             "[{\"scope\":\"key\",\"name\":\"capped\",\"period\":\"day\",\"limit_usd\":0.000100,"
             "\"spent_usd\":0.0000%02lld,\"held_usd\":0.000000,\"spent_nusd\":%lld,\"held_nusd\":0}]",
             (long long)(cost / 1000), (long long)cost);
    assert_string_equal(out, want);
    llmux_free(out);
    /* a budgeted call to an unpriced model is refused, not left unaccounted */
    assert_int_equal(call(gw, REQ("unpriced"), KEY_ONE, &r), LLMUX_ERR_BUDGET);
    assert_string_equal(llmux_result_error(r),
                        "m-b has no known price, and a budget applies to this call: add it to "
                        "\"prices\" (a budget cannot count what it cannot price)");
    llmux_result_free(r);
    assert_int_equal(requests_seen(a), 1);
    llmux_close(gw);
}

typedef struct alerts {
    pthread_mutex_t mu;
    int n;
    char json[8][512];
} alerts;

static void on_alert(const char *json, void *payload)
{
    alerts *al = payload;
    pthread_mutex_lock(&al->mu);
    if (al->n < 8)
        snprintf(al->json[al->n], sizeof al->json[0], "%s", json);
    al->n++;
    pthread_mutex_unlock(&al->mu);
}

static void test_alerts_once_per_threshold(void **state)
{
    char a[32], b[32], cfg[1024];
    names(a, b);
    char h[65];
    hex_sha256(KEY_ONE, h);
    /* each call costs 26867 nano-dollars (7 + 6 tokens, test_cost.c); 100 calls = $0.0026867 */
    snprintf(cfg, sizeof cfg,
             PRICES ",\"keys\":{\"k\":{\"sha256\":\"%s\",\"team\":\"support\"}},"
                    "\"teams\":{\"support\":{\"budgets\":[{\"usd\":1,\"period\":\"month\","
                    "\"alert_at\":[0.000001,0.000002]}]}}",
             h);
    llmux *gw = open_ok(a, b, cfg);
    alerts al = {PTHREAD_MUTEX_INITIALIZER, 0, {{0}}};
    assert_int_equal(llmux_set_alert_callback(gw, on_alert, &al), LLMUX_OK);
    const char *req = "{\"model\":\"one\",\"max_tokens\":8,\"messages\":[{\"role\":\"user\","
                      "\"content\":\"stream me five words please\"}]}";
    int64_t spent = 0;
    for (int i = 0; i < 100; i++) {
        llmux_result *r;
        assert_int_equal(call(gw, req, KEY_ONE, &r), LLMUX_OK);
        assert_int_equal(r->cost_nusd, 26867);
        spent += r->cost_nusd;
        llmux_result_free(r);
        /* $1 * 0.000001 = 1000 nano-dollars: the first call crosses both */
        if (i == 0)
            assert_int_equal(al.n, 2);
    }
    assert_int_equal(al.n, 2);
    assert_clean(al.json[0]);
    cJSON *j = cJSON_Parse(al.json[0]);
    assert_string_equal(sget(j, "scope"), "team");
    assert_string_equal(sget(j, "name"), "support");
    assert_string_equal(sget(j, "period"), "month");
    assert_true(nget(j, "threshold") == 0.000001);
    assert_int_equal((int64_t)nget(j, "spent_nusd"), 26867);
    cJSON_Delete(j);
    j = cJSON_Parse(al.json[1]);
    assert_true(nget(j, "threshold") == 0.000002);
    cJSON_Delete(j);
    assert_int_equal(spent, 2686700);
    llmux_close(gw);
}

static void test_rate_limits_with_retry_after(void **state)
{
    char a[32], b[32], cfg[1024];
    names(a, b);
    char h1[65], h2[65];
    hex_sha256(KEY_ONE, h1);
    hex_sha256(KEY_TWO, h2);
    snprintf(cfg, sizeof cfg,
             PRICES ",\"keys\":{\"k1\":{\"sha256\":\"%s\",\"team\":\"t\",\"limits\":{\"rpm\":3}},"
                    "\"k2\":{\"sha256\":\"%s\",\"team\":\"t\",\"limits\":{\"tpm\":10}}},"
                    "\"teams\":{\"t\":{\"limits\":{\"rpm\":5}}}",
             h1, h2);
    llmux *gw = open_ok(a, b, cfg);
    llmux_result *r;
    for (int i = 0; i < 3; i++)
        assert_int_equal(call(gw, REQ("one"), KEY_ONE, NULL), LLMUX_OK);
    assert_int_equal(call(gw, REQ("one"), KEY_ONE, &r), LLMUX_ERR_RATE_LIMIT);
    long wait = llmux_result_retry_after_ms(r);
    /* one request's worth at 3 a minute: at most 20 s, and most of it */
    assert_true(wait > 19000 && wait <= 20000);
    char want[160];
    snprintf(want, sizeof want,
             "rate limit: key \"k1\" is over its rpm limit of 3; retry after %ld ms", wait);
    assert_string_equal(llmux_result_error(r), want);
    assert_int_equal(llmux_result_http_status(r), 429);
    cJSON *t = cJSON_Parse(llmux_result_trace_json(r));
    assert_int_equal((long)nget(t, "retry_after_ms"), wait);
    cJSON_Delete(t);
    llmux_result_free(r);
    assert_int_equal(requests_seen(a), 3);

    /* k2 has no rpm of its own, but the team's 5 a minute holds 2 more */
    assert_int_equal(call(gw, REQ("one"), KEY_TWO, NULL), LLMUX_OK);
    /* tpm 10: the first call's 10-token prompt estimate (38 bytes) takes the
     * whole bucket, the real use (2 + 3 tokens) gives 5 back; the next needs 10 */
    assert_int_equal(call(gw, REQ("one"), KEY_TWO, &r), LLMUX_ERR_RATE_LIMIT);
    assert_non_null(strstr(llmux_result_error(r), "key \"k2\" is over its tpm limit of 10"));
    llmux_result_free(r);
    assert_int_equal(requests_seen(a), 4);
    llmux_close(gw);
}

static void test_calendar_periods(void **state)
{
    int64_t t = llmux__utc_seconds(2026, 12, 5, 3, 51, 7); /* a Saturday */
    assert_int_equal(t, 1796442667);
    assert_int_equal(llmux__period_start(LX_PERIOD_DAY, t), llmux__utc_seconds(2026, 12, 5, 0, 0, 0));
    assert_int_equal(llmux__period_start(LX_PERIOD_WEEK, t),
                     llmux__utc_seconds(2026, 11, 30, 0, 0, 0)); /* Monday */
    assert_int_equal(llmux__period_start(LX_PERIOD_MONTH, t),
                     llmux__utc_seconds(2026, 12, 1, 0, 0, 0));
    assert_int_equal(llmux__period_start(LX_PERIOD_TOTAL, t), 0);
    /* a Monday starts its own week; the last second of February 2028 (leap) */
    int64_t mon = llmux__utc_seconds(2026, 11, 30, 0, 0, 0);
    assert_int_equal(llmux__period_start(LX_PERIOD_WEEK, mon), mon);
    assert_int_equal(llmux__period_start(LX_PERIOD_WEEK, mon - 1),
                     llmux__utc_seconds(2026, 11, 23, 0, 0, 0));
    int64_t feb = llmux__utc_seconds(2028, 2, 29, 23, 59, 59);
    assert_int_equal(llmux__period_start(LX_PERIOD_MONTH, feb),
                     llmux__utc_seconds(2028, 2, 1, 0, 0, 0));
    assert_int_equal(llmux__period_start(LX_PERIOD_MONTH, feb + 1),
                     llmux__utc_seconds(2028, 3, 1, 0, 0, 0));
    assert_int_equal(llmux__period_start(LX_PERIOD_DAY, feb), llmux__utc_seconds(2028, 2, 29, 0, 0, 0));
}

/* Rules match a key's id and its team, in calls and in the dry run. */
static void test_rules_on_key_id_and_team(void **state)
{
    char a[32], b[32];
    names(a, b);
    llmux *gw = open_ok(a, b, keys_cfg("\"rules\":[{\"when\":{\"team\":\"research\"},\"use\":\"two\"},"
                                       "{\"when\":{\"key\":\"old\"},\"use\":\"two\"}]"));
    llmux_result *r;
    /* analyst is in team research: "one" is routed to "two" */
    assert_int_equal(call(gw, REQ("one"), KEY_TWO, &r), LLMUX_OK);
    assert_string_equal(r->alias, "two");
    llmux_result_free(r);
    assert_int_equal(requests_seen(b), 1);
    /* support-bot is not: it stays on "one" */
    assert_int_equal(call(gw, REQ("one"), KEY_ONE, &r), LLMUX_OK);
    assert_string_equal(r->alias, "one");
    llmux_result_free(r);
    llmux_call_options o;
    llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION);
    o.key = KEY_TWO;
    char *out = NULL;
    assert_int_equal(llmux_route_json(gw, REQ("one"), &o, &out), LLMUX_OK);
    assert_clean(out);
    assert_non_null(strstr(out, "\"alias\":\"two\",\"rule\":0,"));
    llmux_free(out);
    /* the dry run matches on the key's id too (an expired key still has one) */
    o.key = KEY_OLD;
    assert_int_equal(llmux_route_json(gw, REQ("one"), &o, &out), LLMUX_OK);
    assert_non_null(strstr(out, "\"alias\":\"two\",\"rule\":1,"));
    llmux_free(out);
    llmux_close(gw);
}

/* An alias fallback (on_context_window) checks the new alias against the key
 * and re-reserves at the new route's prices before calling it. */
static void test_alias_fallback_is_checked_and_re_reserved(void **state)
{
    char a[32], b[32], cfg[512], models[512], h1[65], h2[65];
    names(a, b);
    hex_sha256(KEY_ONE, h1);
    hex_sha256(KEY_TWO, h2);
    const char *deps[] = {a, b, NULL};
    snprintf(models, sizeof models,
             "{\"one\":{\"on_context_window\":\"long\",\"targets\":[{\"provider\":\"%s\","
             "\"model\":\"m-a\"}]},\"long\":{\"targets\":[{\"provider\":\"%s\",\"model\":\"m-c\"}]}}",
             a, b);
    /* m-c: $1000 per million output tokens; 8 of them may cost $0.008 */
    snprintf(cfg, sizeof cfg,
             "\"prices\":{\"m-a\":{\"input_mtok\":1.2345678,\"output_mtok\":3.0375},"
             "\"m-c\":{\"input_mtok\":1,\"output_mtok\":1000}},\"keys\":{"
             "\"narrow\":{\"sha256\":\"%s\",\"models\":[\"one\"]},"
             "\"capped\":{\"sha256\":\"%s\",\"budgets\":[{\"usd\":0.001,\"period\":\"week\"}]}}",
             h1, h2);
    char *text = sim_config(&SIM, deps, models, cfg);
    llmux *gw = NULL;
    char err[256];
    if (llmux_open(&gw, text, err, sizeof err) != LLMUX_OK)
        fail_msg("open: %s", err);
    free(text);
    const char *overflow = "{\"faults\":[{\"type\":\"status\",\"status\":400,\"count\":1,"
                           "\"body\":{\"error\":{\"message\":\"maximum context length is 8 "
                           "tokens\",\"code\":\"context_length_exceeded\"}}}]}";
    llmux_result *r;
    sim_set(&SIM, a, overflow);
    assert_int_equal(call(gw, REQ("one"), KEY_ONE, &r), LLMUX_ERR_PERMISSION);
    assert_string_equal(llmux_result_error(r), "gateway key \"narrow\" may not use the alias "
                                               "\"long\" (an alias fallback)");
    llmux_result_free(r);
    sim_set(&SIM, a, overflow);
    assert_int_equal(call(gw, REQ("one"), KEY_TWO, &r), LLMUX_ERR_BUDGET);
    assert_non_null(strstr(llmux_result_error(r), "budget exceeded: key \"capped\" week budget "
                                                  "of $0.001000 has $0.0009"));
    llmux_result_free(r);
    assert_int_equal(requests_seen(a), 1); /* since the last sim_set, which resets it */
    assert_int_equal(requests_seen(b), 0);
    /* nothing stays held, and what the first attempts billed (nothing: a 400) is spent */
    char *out = NULL;
    assert_int_equal(llmux_budgets_json(gw, &out), LLMUX_OK);
    assert_non_null(strstr(out, "\"spent_nusd\":0,\"held_nusd\":0}"));
    llmux_free(out);
    llmux_close(gw);
}

/* ---------------------------------------- 8 threads x 2,000 calls, one budget */

#define THREADS 8
#define CALLS 2000
#define PER_CALL 26867 /* nano-dollars: 7 prompt + 6 completion tokens at PRICES */

typedef struct worker {
    llmux *gw;
    int ok, refused, other;
    int64_t cost;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    const char *req = "{\"model\":\"one\",\"max_tokens\":8,\"messages\":[{\"role\":\"user\","
                      "\"content\":\"stream me five words please\"}]}";
    llmux_call_options o;
    llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION);
    o.key = KEY_ONE;
    for (int i = 0; i < CALLS; i++) {
        llmux_result *r = NULL;
        int rc = llmux_chat(w->gw, req, &o, &r);
        if (rc == LLMUX_OK && r->cost_nusd == PER_CALL) {
            w->ok++;
            w->cost += r->cost_nusd;
        } else if (rc == LLMUX_ERR_BUDGET && r->n_attempts == 0) {
            w->refused++;
        } else {
            w->other++;
        }
        llmux_result_free(r);
    }
    return NULL;
}

static void test_concurrent_calls_never_overspend(void **state)
{
    char a[32], b[32], cfg[1024];
    names(a, b);
    char h[65];
    hex_sha256(KEY_ONE, h);
    /* the budget is worth 5,000 calls, split between the key's and the global one */
    const int64_t budget = 5000LL * PER_CALL;
    snprintf(cfg, sizeof cfg,
             PRICES ",\"keys\":{\"k\":{\"sha256\":\"%s\",\"team\":\"t\","
                    "\"budgets\":[{\"usd\":%.9f,\"period\":\"total\"}]}},"
                    "\"budgets\":[{\"usd\":1000,\"period\":\"month\"}]",
             h, (double)budget / 1e9);
    llmux *gw = open_ok(a, b, cfg);
    pthread_t th[THREADS];
    worker w[THREADS];
    memset(w, 0, sizeof w);
    for (int i = 0; i < THREADS; i++) {
        w[i].gw = gw;
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    int ok = 0, refused = 0, other = 0;
    int64_t sum = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok;
        refused += w[i].refused;
        other += w[i].other;
        sum += w[i].cost;
    }
    assert_int_equal(other, 0);
    assert_int_equal(ok + refused, THREADS * CALLS);
    assert_int_equal(requests_seen(a), ok);
    /* never past the budget; and at most a reservation per thread is left
     * unused: 57 bytes of messages reserved as 60 prompt tokens, plus 8
     * output tokens: 74.074068 + 24.3 micro-dollars = 98374 nano-dollars */
    assert_true(sum <= budget);
    assert_true(budget - sum < THREADS * 98374);
    assert_int_equal(sum, (int64_t)ok * PER_CALL);
    /* the ledger's total is the sum of the per-call costs, to the nano-dollar */
    char *out = NULL;
    assert_int_equal(llmux_spend_json(gw, NULL, &out), LLMUX_OK);
    cJSON *sp = cJSON_Parse(out);
    llmux_free(out);
    const cJSON *tot = cJSON_GetObjectItem(sp, "total");
    assert_int_equal((int)nget(tot, "calls"), THREADS * CALLS);
    assert_int_equal((int64_t)nget(tot, "cost_nusd"), sum);
    cJSON_Delete(sp);
    /* the budgets agree, and nothing is held */
    assert_int_equal(llmux_budgets_json(gw, &out), LLMUX_OK);
    char want[128];
    snprintf(want, sizeof want, "\"spent_nusd\":%lld,\"held_nusd\":0}", (long long)sum);
    assert_non_null(strstr(out, want));                      /* global */
    assert_non_null(strstr(strstr(out, want) + 1, want));    /* the key's */
    llmux_free(out);
    print_message("budget %lld nUSD: %d calls answered, %d refused, spent %lld\n",
                  (long long)budget, ok, refused, (long long)sum);
    llmux_close(gw);
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
        cmocka_unit_test(test_calendar_periods),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_auth_and_permission_before_any_provider),
        cmocka_unit_test(test_require_key_and_keyless_gateways),
        cmocka_unit_test(test_runtime_add_rotate_list),
        cmocka_unit_test(test_budget_refuses_with_its_name_and_what_is_left),
        cmocka_unit_test(test_alerts_once_per_threshold),
        cmocka_unit_test(test_rate_limits_with_retry_after),
        cmocka_unit_test(test_alias_fallback_is_checked_and_re_reserved),
        cmocka_unit_test(test_rules_on_key_id_and_team),
        cmocka_unit_test(test_concurrent_calls_never_overspend),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
