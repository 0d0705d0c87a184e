/*
 * bench_micro.c - nanoseconds per operation for the parts of llmux's hot path
 * that do not touch the network. Linked against llmux_static with lib/ on the
 * include path, because these are internal functions.
 *
 *   bench_micro [--reps 7] [--min-ms 100] [--only NAME]
 *
 * Each benchmark is a row in BENCHES below: a setup, an operation timed in a
 * loop (calibrated to run at least --min-ms per repetition), a teardown. A
 * later feature that adds work to the hot path adds its row here, so its cost
 * shows up next to the others and in bench/compare.py.
 */
#define _GNU_SOURCE
#include "bench_common.h"

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/error.h"
#include "engine/log_observer.h"
#include "engine/result.h"
#include "request/validate.h"
#include "ledger/ledger.h"
#include "policy/policy.h"
#include "prices/prices.h"
#include "providers/provider.h"
#include "router/router.h"
#include "wire/sigv4.h"

/* The request every C benchmark sends (floor_build_request's output). */
static const char REQUEST[] =
    "{\"model\":\"fb\",\"messages\":[{\"role\":\"system\",\"content\":\"" BENCH_SYSTEM
    "\"},{\"role\":\"user\",\"content\":\"" BENCH_USER "\"}],\"max_tokens\":64}";

/* What llmux-sim answers to it (its format, docs/simulator.md). */
static const char RESPONSE[] =
    "{\"id\":\"chatcmpl-sim-a-1\",\"object\":\"chat.completion\",\"created\":1764000000,"
    "\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":\"[a] " BENCH_USER "\"},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":43,\"completion_tokens\":20,\"total_tokens\":63}}";

/* The same answer as Azure OpenAI gives it (llmux-sim's Azure route). */
static const char AZURE_RESPONSE[] =
    "{\"id\":\"chatcmpl-sim-a-1\",\"object\":\"chat.completion\",\"created\":1764000000,"
    "\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
    "\"content\":\"[a] " BENCH_USER "\"},\"finish_reason\":\"stop\",\"content_filter_results\":"
    "{\"hate\":{\"filtered\":false,\"severity\":\"safe\"},\"violence\":{\"filtered\":false,"
    "\"severity\":\"safe\"}}}],\"usage\":{\"prompt_tokens\":43,\"completion_tokens\":20,"
    "\"total_tokens\":63},\"prompt_filter_results\":[{\"prompt_index\":0,"
    "\"content_filter_results\":{}}]}";

static const char ERROR_BODY[] =
    "{\"error\":{\"message\":\"The server is overloaded.\",\"type\":\"server_error\","
    "\"param\":null,\"code\":null}}";

/* Eight aliases, so the lookup is not a one-entry table. */
static const char CONFIG[] =
    "{\"providers\":{"
    "\"a\":{\"type\":\"openai\",\"base_url\":\"http://127.0.0.1:9/a/v1\"},"
    "\"bad\":{\"type\":\"openai\",\"base_url\":\"http://127.0.0.1:9/bad/v1\"},"
    "\"az\":{\"type\":\"azure\",\"base_url\":\"http://127.0.0.1:9/az\","
    "\"api_version\":\"2024-10-21\"},"
    "\"br\":{\"type\":\"bedrock\",\"region\":\"us-east-1\",\"base_url\":\"http://127.0.0.1:9/br\","
    "\"access_key_id_env\":\"LLMUX_BENCH_AK\",\"secret_access_key_env\":\"LLMUX_BENCH_SK\"},"
    "\"gem\":{\"type\":\"gemini\",\"base_url\":\"http://127.0.0.1:9/gem/v1beta\"},"
    "\"anth\":{\"type\":\"anthropic\",\"base_url\":\"http://127.0.0.1:9/anth\"}},"
    "\"models\":{"
    "\"one\":{\"targets\":[{\"provider\":\"a\",\"model\":\"m\"}]},"
    "\"fb\":{\"targets\":[{\"provider\":\"bad\",\"model\":\"m\"},{\"provider\":\"a\",\"model\":\"m\"}]},"
    "\"smart\":{\"targets\":[{\"provider\":\"a\",\"model\":\"gpt-4o\"}]},"
    "\"fast\":{\"targets\":[{\"provider\":\"a\",\"model\":\"gpt-4o-mini\"}]},"
    "\"draft\":{\"targets\":[{\"provider\":\"a\",\"model\":\"m2\"}]},"
    "\"review\":{\"targets\":[{\"provider\":\"a\",\"model\":\"m3\"}]},"
    "\"classify\":{\"targets\":[{\"provider\":\"a\",\"model\":\"m4\"}]},"
    "\"format\":{\"targets\":[{\"provider\":\"a\",\"model\":\"m5\"}]}},"
    "\"defaults\":{\"timeout_ms\":30000},"
    "\"prices\":{\"m\":{\"input_mtok\":0.5,\"output_mtok\":1.5},"
    "\"a/m2\":{\"input_mtok\":0.0375,\"output_mtok\":0.15}}}";

/* What llmux-sim's Messages API answers to REQUEST (docs/simulator.md). */
static const char ANTHROPIC_RESPONSE[] =
    "{\"id\":\"msg_sim_anth_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\","
    "\"content\":[{\"type\":\"text\",\"text\":\"[anth] " BENCH_USER "\"}],\"stop_reason\":"
    "\"end_turn\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":43,"
    "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,\"cache_creation\":{"
    "\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":0},\"output_tokens\":20}}";

static lx_config *g_cfg;
static lx_provider_cfg *g_anth; /* provider "anth" (type anthropic) */
static lx_provider_cfg *g_prov; /* provider "a" */
static lx_provider_cfg *g_az;   /* provider "az": Azure's deployments route */
static lx_provider_cfg *g_bedrock; /* provider "br" */
static lx_provider_cfg *g_gem;  /* provider "gem" (gemini) */
static lx_ledger *g_ledger;
static cJSON *g_req;
static volatile long g_sink; /* keeps results observable */

/* ------------------------------------------------------------- the ops */

static int op_alias_lookup(void)
{
    const lx_alias *a = llmux__config_find_alias(g_cfg, "fb");
    g_sink += (long)(a != NULL);
    return a ? 0 : -1;
}

static int op_route(void)
{
    lx_route r;
    lx_err err;
    static lx_request req; /* the router only borrows it (features on demand) */
    lx_route_input in = {"fb", &req, NULL, NULL, NULL, 0, 0.0, NULL, 0, NULL};
    int rc = llmux__route(g_cfg, &in, &r, &err);
    g_sink += (long)r.n_candidates;
    llmux__route_free(&r);
    return rc;
}

/* Routing at scale: 20 rules (none matching until the last, which asks for a
 * feature) and 32 targets per alias, one alias per strategy. */
static lx_config *g_route_cfg;
static lx_health *g_health;
static const char *const STRATEGY_NAMES[] = {"ordered", "weighted", "round_robin",
                                             "least_latency", "least_busy"};

static int route_setup(void)
{
    if (g_route_cfg)
        return 0;
    lx_buf b = LX_BUF_INIT;
    llmux__buf_puts(&b, "{\"providers\":{\"p\":{\"type\":\"openai\",\"base_url\":"
                        "\"http://127.0.0.1:9/v1\"}},\"models\":{");
    for (int s = 0; s < 5; s++) {
        llmux__buf_printf(&b, "%s\"%s\":{\"strategy\":\"%s\",\"targets\":[", s ? "," : "",
                          STRATEGY_NAMES[s], STRATEGY_NAMES[s]);
        for (int t = 0; t < 32; t++)
            llmux__buf_printf(&b, "%s{\"provider\":\"p\",\"model\":\"m%d\",\"weight\":%d}",
                              t ? "," : "", t, t + 1);
        llmux__buf_puts(&b, "]}");
    }
    llmux__buf_puts(&b, "},\"rules\":[");
    for (int r = 0; r < 19; r++)
        llmux__buf_printf(&b, "{\"when\":{\"task\":\"t%d\",\"workflow\":\"w\"},\"use\":\"ordered\"},", r);
    llmux__buf_puts(&b, "{\"when\":{\"json_schema\":true},\"use\":\"ordered\"}]}");
    lx_err err;
    int rc = llmux__config_parse(&g_route_cfg, b.data, b.len, &err);
    llmux__buf_free(&b);
    if (rc || llmux__health_new(&g_health, g_route_cfg->n_targets_total, g_route_cfg->n_aliases))
        return -1;
    for (size_t i = 0; i < g_route_cfg->n_targets_total; i++) /* every target measured */
        atomic_store(&g_health->t[i].ewma_us, (long long)(1000 + (i * 7919) % 5000));
    return 0;
}

static int route_with(const char *alias)
{
    static lx_request req;
    static int ready;
    lx_err err;
    if (route_setup())
        return -1;
    if (!ready && llmux__request_init(&req, REQUEST, sizeof REQUEST - 1, &err) == LLMUX_OK)
        ready = 1; /* the features are computed once and cached, as in a call */
    lx_route_input in = {alias, &req, "draft", "w", NULL, 0, 1.0, g_health, 0, NULL};
    lx_route r;
    int rc = llmux__route(g_route_cfg, &in, &r, &err);
    g_sink += (long)r.n_candidates;
    llmux__route_free(&r);
    return rc;
}

static int op_route_ordered(void) { return route_with("ordered"); }
static int op_route_weighted(void) { return route_with("weighted"); }
static int op_route_round_robin(void) { return route_with("round_robin"); }
static int op_route_least_latency(void) { return route_with("least_latency"); }
static int op_route_least_busy(void) { return route_with("least_busy"); }
/* The price of a built-in model, as a call looks it up: the config's entries
 * ("a/gpt-4o-mini", then "gpt-4o-mini") miss, then the OpenAI table. */
static int op_price_lookup(void)
{
    const lx_price *p = llmux__price_find(g_cfg->prices, "a", "openai", "gpt-4o-mini");
    g_sink += (long)(p != NULL);
    return p ? 0 : -1;
}

/* The cost of an Anthropic-shaped usage (reads, 5m and 1h writes, reasoning). */
static int op_price_cost(void)
{
    static const lx_price price = {"m", 3000000000, 15000000000, 300000000, 3750000000,
                                   6000000000, 0, -1, -1, -1, -1, -1, 0, 0, 0, "bench"};
    static const lx_usage u = {10000, 800, 2000, 3000, 1000, 200, -1, 0};
    unsigned flags;
    int64_t c = llmux__price_cost(&price, &u, &flags);
    g_sink += (long)c;
    return c == 41100000 ? 0 : -1;
}

/* What the engine does per billed attempt: lookup + cost. */
static int op_price_lookup_cost(void)
{
    static const lx_usage u = {1000, 500, 400, 0, -1, 200, -1, 0};
    const lx_price *p = llmux__price_find(g_cfg->prices, "a", "openai", "gpt-4o-mini");
    unsigned flags;
    int64_t c = p ? llmux__price_cost(p, &u, &flags) : -1;
    g_sink += (long)c;
    return c == 420000 ? 0 : -1;
}

/* Request validation as a call does it: on the text, no cJSON tree. */
static int op_request_parse(void)
{
    lx_request req;
    lx_err err;
    int rc = llmux__request_init(&req, REQUEST, sizeof REQUEST - 1, &err);
    g_sink += (long)(req.tree != NULL);
    llmux__request_free(&req);
    return rc;
}

/* The provider body from an already validated request (the model spliced in). */
static int build_on(lx_provider_cfg *p, const char *model)
{
    static lx_request req;
    static int ready;
    lx_err err;
    if (!ready && llmux__request_init(&req, REQUEST, sizeof REQUEST - 1, &err) == LLMUX_OK)
        ready = 1;
    lx_http_request out;
    llmux__http_request_init(&out);
    int rc = p->ops->build_request(p, model, &req, 0, &out, &err);
    g_sink += (long)out.body_len;
    llmux__http_request_free(&out);
    return rc;
}

static int op_request_build(void)
{
    return build_on(g_prov, "m");
}

static int op_azure_request_build(void)
{
    return build_on(g_az, "gpt4o-prod");
}

/* request_parse + build_request + frees, for provider p. */
static int parse_and_build(lx_provider_cfg *p)
{
    lx_request req;
    lx_err err;
    int rc = llmux__request_init(&req, REQUEST, sizeof REQUEST - 1, &err);
    if (rc != LLMUX_OK)
        return rc;
    lx_http_request out;
    llmux__http_request_init(&out);
    rc = p->ops->build_request(p, "m", &req, 0, &out, &err);
    g_sink += (long)out.body_len;
    llmux__http_request_free(&out);
    llmux__request_free(&req);
    return rc;
}

static int op_parse_and_build(void)
{
    return parse_and_build(g_prov);
}

/* The Anthropic translation of a fresh request (validation, the tree it
 * needs, the Messages body): compare with request_parse_build. */
static int op_anthropic_request_build(void)
{
    return parse_and_build(g_anth);
}

/* Includes filling a buffer with the body, as the transport's write callback
 * does, since parse_response may take the buffer over. */
static int parse_on(lx_provider_cfg *p, const char *text, size_t len)
{
    lx_buf body = LX_BUF_INIT;
    if (llmux__buf_append(&body, text, len) != 0)
        return -1;
    char *json = NULL;
    lx_usage usage = LX_USAGE_UNKNOWN;
    lx_err err;
    int rc = p->ops->parse_response(p, &body, &json, &usage, &err);
    g_sink += usage.prompt_tokens;
    free(json);
    llmux__buf_free(&body);
    return rc;
}

static int op_response_parse(void)
{
    return parse_on(g_prov, RESPONSE, sizeof RESPONSE - 1);
}

static int op_azure_response_parse(void)
{
    return parse_on(g_az, AZURE_RESPONSE, sizeof AZURE_RESPONSE - 1);
}

static int count_chunk(void *ctx, const char *json, size_t len, cJSON *parsed)
{
    g_sink += (long)len;
    return 0;
}

/* An Azure stream (prompt-filter chunk, annotation chunk without a delta)
 * decoded into OpenAI chunks. */
static int op_azure_stream_decode(void)
{
    static const char stream[] =
        "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\","
        "\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{}}]}\n\n"
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
        "\"content\":\"\"},\"content_filter_results\":{}}]}\n\n"
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"[a] hello\"},"
        "\"content_filter_results\":{\"hate\":{\"filtered\":false}}}]}\n\n"
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"finish_reason\":null,"
        "\"content_filter_results\":{},\"content_filter_offsets\":{\"end_offset\":9}}]}\n\n"
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}"
        "\n\ndata: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":43,"
        "\"completion_tokens\":20,\"total_tokens\":63}}\n\ndata: [DONE]\n\n";
    void *st = g_az->ops->stream_new(g_az);
    lx_err err;
    int rc = st ? g_az->ops->stream_feed(st, stream, sizeof stream - 1, count_chunk, NULL, &err)
                : -1;
    g_az->ops->stream_free(st);
    return rc == LX_STREAM_END ? 0 : -1;
}

static int op_classify_error(void)
{
    lx_err err;
    err.http_status = 503;
    lx_http_response resp = {0};
    resp.status = 503;
    llmux__buf_append(&resp.body, ERROR_BODY, sizeof ERROR_BODY - 1);
    int st = g_prov->ops->classify_error(g_prov, &resp, &err);
    llmux__http_response_free(&resp);
    g_sink += st;
    return st == LLMUX_ERR_PROVIDER ? 0 : -1;
}

/* A result as the fallback path leaves it: two attempts, usage, the
 * trace built on top. Creating and freeing the result is included. */
static llmux_result *fallback_result(void)
{
    llmux_result *r = llmux__result_new(g_cfg);
    if (!r)
        return NULL;
    r->requested_model = strdup("fb");
    r->route = "alias";
    r->n_targets = 2;
    lx_attempt *a = llmux__result_add_attempt(r);
    a->provider = &g_cfg->providers[1];
    a->model = "m";
    a->status = LLMUX_ERR_PROVIDER;
    a->http_status = 503;
    a->latency_ms = 0.031;
    a->error = strdup("bad: HTTP 503: The server is overloaded.");
    a->action = "fallback";
    a = llmux__result_add_attempt(r);
    a->provider = g_prov;
    a->model = "m";
    a->http_status = 200;
    a->latency_ms = 0.029;
    a->action = "answered";
    r->provider = g_prov->name;
    r->model = "m";
    r->http_status = 200;
    r->usage.prompt_tokens = 43;
    r->usage.completion_tokens = 20;
    r->total_ms = 0.071;
    return r;
}

static int op_trace_build(void)
{
    llmux_result *r = fallback_result();
    if (!r)
        return -1;
    char *t = llmux__trace_build(r);
    g_sink += (long)(t != NULL);
    free(t);
    llmux_result_free(r);
    return 0;
}

/* The call log's record of a two-attempt call. The calling thread fills it
 * and copies it into the queue (record_copy); the writer thread turns it into
 * JSON lines (record_build: fill + JSON, the whole build of one record). */
static llmux_result *g_log_res;

static int fill_record(lx_log_call *rec, lx_log_attempt atts[16])
{
    if (!g_log_res && !(g_log_res = fallback_result()))
        return -1;
    lx_call_info info = {g_log_res, "key-0123456789abcdef", NULL, REQUEST};
    llmux__log_call_fill(g_cfg, &info, "0123456789abcdef0000000000000001", atts, 16, rec);
    return 0;
}

static int op_record_copy(void)
{
    lx_log_attempt atts[16];
    lx_log_call rec;
    if (fill_record(&rec, atts))
        return -1;
    lx_log_call *copy = llmux__log_call_copy(&rec);
    g_sink += (long)(copy != NULL);
    free(copy);
    return copy ? 0 : -1;
}

static int op_record_build(void)
{
    lx_log_attempt atts[16];
    lx_log_call rec;
    if (fill_record(&rec, atts))
        return -1;
    lx_buf b = LX_BUF_INIT;
    int rc = llmux__log_record_json(&rec, &b);
    g_sink += (long)b.len;
    llmux__buf_free(&b);
    return rc;
}

static lx_metrics *g_metrics;

static int op_metrics_observe(void)
{
    lx_log_attempt atts[16];
    lx_log_call rec;
    if ((!g_metrics && llmux__metrics_new(&g_metrics, 10000)) || fill_record(&rec, atts))
        return -1;
    llmux__metrics_observe(g_metrics, &rec);
    return 0;
}

static int op_result_lifecycle(void)
{
    llmux_result *r = fallback_result();
    if (!r)
        return -1;
    llmux_result_free(r);
    return 0;
}

static int op_ledger_record(void)
{
    lx_charge e = {NULL, "bench", "draft", "m", "a", 1, LX_USAGE_UNKNOWN, -1, 0, NULL, NULL};
    e.usage.prompt_tokens = 43;
    e.usage.completion_tokens = 20;
    lx_reservation r;
    lx_err err;
    llmux__ledger_reserve(g_ledger, &e, &r, &err);
    llmux__ledger_settle(g_ledger, &r, &e, &err);
    return 0;
}

/* The whole policy path of a call with a key, a budget and a rate limit:
 * SHA-256 and constant-time lookup among 16 keys, the alias check, rpm/tpm
 * buckets and key/team/global budgets checked and held under one lock, the
 * maximum cost at the candidate's price, and the settle. */
static lx_policy *g_policy;
#define BENCH_KEY "sk-bench-0123456789abcdef"

static int policy_setup(void)
{
    static char keys[4096];
    /* 15 other keys, then the caller's (SHA-256 of BENCH_KEY) */
    size_t n = (size_t)snprintf(keys, sizeof keys, "{");
    for (int i = 0; i < 15; i++) {
        /* digests spread as SHA-256's are (the index keys on their first bytes) */
        unsigned long long h = (unsigned long long)(i + 1) * 0x9E3779B97F4A7C15ULL;
        n += (size_t)snprintf(keys + n, sizeof keys - n,
                              "\"k%d\":{\"sha256\":\"%016llx%016llx%016llx%016llx\",\"team\":\"t\"},",
                              i, h, h ^ 1, h ^ 2, h ^ 3);
    }
    snprintf(keys + n, sizeof keys - n,
             "\"bench\":{\"sha256\":\"%064d\","
             "\"team\":\"t\",\"models\":[\"one\"],\"budgets\":[{\"usd\":1e9,\"period\":\"month\"}],"
             "\"limits\":{\"rpm\":1000000000000,\"tpm\":1000000000000}}}",
             99);
    lx_config pc = *g_cfg; /* the same aliases, with keys */
    pc.keys_json = keys;
    pc.teams_json = "{\"t\":{\"budgets\":[{\"usd\":1e9,\"period\":\"day\"}],"
                    "\"limits\":{\"rpm\":1000000000000}}}";
    pc.budgets_json = "[{\"usd\":1e9,\"period\":\"total\"}]";
    lx_err err;
    if (llmux__policy_new(&g_policy, &pc, &err)) {
        fprintf(stderr, "bench_micro: policy: %s\n", err.msg);
        return -1;
    }
    /* the bench key's real hash replaces the placeholder above */
    return llmux__policy_key_rotate(g_policy, "bench", BENCH_KEY, &err);
}

static int op_policy_path(void)
{
    lx_err err;
    lx_pkey *key;
    if (llmux__policy_auth(g_policy, BENCH_KEY, &key, &err) || !key)
        return -1;
    const lx_price *p = llmux__price_find(g_cfg->prices, g_prov->name, g_prov->type, "m");
    lx_usage u = {4 * 43, 64, 0, 0, -1, 0, -1, 0};
    unsigned flags;
    lx_demand d = {"one", llmux__price_cost(p, &u, &flags), NULL, 43};
    lx_admission adm;
    long retry = -1;
    if (llmux__policy_admit(g_policy, key, &d, &adm, &retry, &err))
        return -1;
    llmux__policy_settle(g_policy, &adm, 51500, 63);
    return 0;
}

static int op_floor_build(void)
{
    /* for scale: the floor's own request build (cJSON create + print) */
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "model", "m");
    cJSON *msgs = cJSON_AddArrayToObject(req, "messages");
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "system");
    cJSON_AddStringToObject(m, "content", BENCH_SYSTEM);
    cJSON_AddItemToArray(msgs, m);
    m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "user");
    cJSON_AddStringToObject(m, "content", BENCH_USER);
    cJSON_AddItemToArray(msgs, m);
    cJSON_AddNumberToObject(req, "max_tokens", 64);
    char *s = cJSON_PrintUnformatted(req);
    g_sink += (long)strlen(s);
    free(s);
    cJSON_Delete(req);
    return 0;
}

static int op_floor_parse(void)
{
    cJSON *root = cJSON_ParseWithLength(RESPONSE, sizeof RESPONSE - 1);
    g_sink += (long)(root != NULL);
    cJSON_Delete(root);
    return root ? 0 : -1;
}

/* Bedrock: the Converse body translated from the request and SigV4-signed. */
static int op_bedrock_request_build(void)
{
    return build_on(g_bedrock, "anthropic.claude-3-haiku-20240307-v1:0");
}

/* The signature alone over a Converse body of the benchmark's size. */
static int op_bedrock_sigv4(void)
{
    static const char body[] = "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"" BENCH_USER
                               "\"}]}],\"system\":[{\"text\":\"" BENCH_SYSTEM "\"}],"
                               "\"inferenceConfig\":{\"maxTokens\":64}}";
    lx_sigv4_header h[] = {{"content-type", "application/json"},
                           {"host", "bedrock-runtime.us-east-1.amazonaws.com"},
                           {"x-amz-date", "20250101T000000Z"}};
    lx_sigv4_request r = {"POST", "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse", NULL,
                          h, 3, body, sizeof body - 1, "20250101T000000Z", "us-east-1", "bedrock",
                          "AKIDBENCH", "bench-secret-key"};
    lx_buf auth = LX_BUF_INIT;
    int rc = llmux__sigv4_authorization(&r, &auth);
    g_sink += (long)auth.len;
    llmux__buf_free(&auth);
    return rc;
}

static const char BEDROCK_RESPONSE[] =
    "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[{\"text\":\"[a] " BENCH_USER
    "\"}]}},\"stopReason\":\"end_turn\",\"usage\":{\"inputTokens\":43,\"outputTokens\":20,"
    "\"totalTokens\":63},\"metrics\":{\"latencyMs\":100}}";

static int op_bedrock_response_parse(void)
{
    return parse_on(g_bedrock, BEDROCK_RESPONSE, sizeof BEDROCK_RESPONSE - 1);
}


/* The simulator's Gemini answer to the same request. */
static const char GEMINI_RESPONSE[] =
    "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"[a] " BENCH_USER "\"}]},"
    "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":43,"
    "\"candidatesTokenCount\":20,\"totalTokenCount\":63},\"modelVersion\":\"m\",\"responseId\":\"a-1\"}";

static int op_gemini_build(void)
{
    return build_on(g_gem, "m");
}

static int op_gemini_parse(void)
{
    return parse_on(g_gem, GEMINI_RESPONSE, sizeof GEMINI_RESPONSE - 1);
}

/* A Messages answer to an OpenAI chat.completion: compare with response_parse. */
static int op_anthropic_response_parse(void)
{
    return parse_on(g_anth, ANTHROPIC_RESPONSE, sizeof ANTHROPIC_RESPONSE - 1);
}

typedef struct micro {
    const char *name;
    const char *what;
    int (*op)(void);
} micro;

static const micro BENCHES[] = {
    {"alias_lookup", "llmux__config_find_alias of fb among 8 aliases", op_alias_lookup},
    {"route_32_ordered", "20 rules checked, 32 targets with health, ordered", op_route_ordered},
    {"route_32_weighted", "20 rules checked, 32 targets with health, weighted draw",
     op_route_weighted},
    {"route_32_round_robin", "20 rules checked, 32 targets with health, rotated",
     op_route_round_robin},
    {"route_32_least_latency", "20 rules checked, 32 targets with health, sorted by latency",
     op_route_least_latency},
    {"route_32_least_busy", "20 rules checked, 32 targets with health, sorted by in-flight",
     op_route_least_busy},
    {"route", "llmux__route: alias to its ordered targets", op_route},
    {"request_parse", "llmux__request_parse: cJSON parse + validation of the caller's request",
     op_request_parse},
    {"request_build", "openai build_request: the provider's HTTP request body for the target model",
     op_request_build},
    {"request_parse_build", "request_parse + build_request + frees", op_parse_and_build},
    {"response_parse", "openai parse_response: body buffer filled, validated, usage read",
     op_response_parse},
    {"gemini_request_build", "gemini build_request: generateContent body from the parsed request "
                             "(tree cached)", op_gemini_build},
    {"gemini_response_parse", "gemini parse_response: answer checked, parsed, chat.completion printed",
     op_gemini_parse},
    {"classify_error", "openai classify_error: a 503 with an OpenAI error body", op_classify_error},
    {"azure_request_build", "azure build_request: deployments route URL + the spliced body",
     op_azure_request_build},
    {"azure_response_parse", "azure parse_response: an answer with Azure's filter results",
     op_azure_response_parse},
    {"azure_stream_decode", "azure stream: 7 events (prompt filter, annotation) to OpenAI chunks",
     op_azure_stream_decode},
    {"trace_build", "a two-attempt result built, its trace JSON built, freed", op_trace_build},
    {"result_lifecycle", "the same result built and freed, no trace (subtract from trace_build)",
     op_result_lifecycle},
    {"ledger_record", "ledger reserve + settle of one call (in-memory store)", op_ledger_record},
    {"policy_path", "a call's whole policy path: key hash + lookup (16 keys), alias, rpm/tpm, "
                    "3 budgets reserved at the price, settled", op_policy_path},
    {"price_lookup", "llmux__price_find of a built-in model past two config entries",
     op_price_lookup},
    {"price_cost", "llmux__price_cost of an Anthropic-shaped usage", op_price_cost},
    {"price_lookup_cost", "price lookup + cost, as the engine does per billed attempt",
     op_price_lookup_cost},
    {"bedrock_request_build", "bedrock build_request: Converse body translated, SigV4-signed",
     op_bedrock_request_build},
    {"bedrock_sigv4", "SigV4 Authorization over a Converse body (part of bedrock_request_build)",
     op_bedrock_sigv4},
    {"bedrock_response_parse", "bedrock parse_response: Converse answer to a chat.completion",
     op_bedrock_response_parse},
    {"anthropic_request_build",
     "anthropic: request_parse + tree + Messages body + frees (vs request_parse_build)",
     op_anthropic_request_build},
    {"anthropic_response_parse",
     "anthropic parse_response: a Messages answer to an OpenAI chat.completion (vs response_parse)",
     op_anthropic_response_parse},
    {"record_copy", "the call log's record of a two-attempt call filled and copied for the queue: "
     "what the calling thread pays", op_record_copy},
    {"metrics_observe", "the same record's metric updates (counters, histograms) on the calling "
     "thread", op_metrics_observe},
    {"record_build", "the same record filled and written as JSON lines (the writer thread's work, "
     "file write not included)", op_record_build},
    {"floor_request_build", "for scale: the floor's cJSON request build and print", op_floor_build},
    {"floor_response_parse", "for scale: the floor's cJSON parse of the response", op_floor_parse},
};

static double time_ns(int (*op)(void), long iters)
{
    long t0 = bench_now_ns();
    for (long i = 0; i < iters; i++)
        op();
    return (double)(bench_now_ns() - t0) / (double)iters;
}

int main(int argc, char **argv)
{
    long reps = bench_arg_long(argc, argv, "--reps", 7);
    double min_ms = bench_arg_double(argc, argv, "--min-ms", 100);
    const char *only = bench_arg(argc, argv, "--only", NULL);
    const char *placement = bench_arg(argc, argv, "--placement", "");

    lx_err err;
    setenv("LLMUX_BENCH_AK", "AKIDBENCH", 1);
    setenv("LLMUX_BENCH_SK", "bench-secret-key", 1);
    if (llmux__config_parse(&g_cfg, CONFIG, sizeof CONFIG - 1, &err) != LLMUX_OK) {
        fprintf(stderr, "bench_micro: config: %s\n", err.msg);
        return 1;
    }
    g_prov = llmux__config_find_provider(g_cfg, "a", 1);
    g_bedrock = llmux__config_find_provider(g_cfg, "br", 2);
    g_gem = llmux__config_find_provider(g_cfg, "gem", 3);
    g_anth = llmux__config_find_provider(g_cfg, "anth", 4);
    if (!g_bedrock || !g_gem || !g_anth) {
        fprintf(stderr, "bench_micro: no bedrock provider\n");
        return 1;
    }
    g_az = llmux__config_find_provider(g_cfg, "az", 2);
    const char *model;
    if (!g_prov || !g_az || llmux__request_parse(REQUEST, sizeof REQUEST - 1, &g_req, &model, &err) != 0 ||
        llmux__ledger_new(&g_ledger, 0) != 0 || policy_setup() != 0) {
        fprintf(stderr, "bench_micro: setup failed\n");
        return 1;
    }

    int failed = 0;
    for (size_t b = 0; b < sizeof BENCHES / sizeof BENCHES[0]; b++) {
        const micro *m = &BENCHES[b];
        if (only && strcmp(only, m->name) != 0)
            continue;
        if (m->op() != 0) {
            fprintf(stderr, "bench_micro: %s failed on its first run\n", m->name);
            failed = 1;
            continue;
        }
        /* calibrate: iterations for about min_ms */
        long iters = 1;
        double el;
        for (;;) {
            long t0 = bench_now_ns();
            for (long i = 0; i < iters; i++)
                m->op();
            el = (double)(bench_now_ns() - t0) / 1e6;
            if (el >= min_ms / 10 || iters > (1L << 30))
                break;
            iters *= 4;
        }
        iters = (long)((double)iters * min_ms / (el > 0 ? el : 1e-3)) + 1;
        double samples[64];
        int n = reps > 64 ? 64 : (int)reps;
        for (int r = 0; r < n; r++)
            samples[r] = time_ns(m->op, iters);
        bench_row row;
        bench_row_begin(&row, "micro", m->name, "ns/op");
        bench_row_str(&row, "what", m->what);
        bench_row_str(&row, "placement", placement);
        bench_row_num(&row, "iters", (double)iters);
        bench_row_samples(&row, samples, n);
        bench_row_end(&row);
        fprintf(stderr, "micro %-22s %8.0f ns/op (first rep)\n", m->name, samples[0]);
    }
    cJSON_Delete(g_req);
    llmux_result_free(g_log_res);
    llmux__metrics_free(g_metrics);
    llmux__ledger_free(g_ledger);
    llmux__policy_free(g_policy);
    llmux__config_unref(g_cfg);
    return failed;
}
