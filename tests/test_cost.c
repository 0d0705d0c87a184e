/* Prices and cost (issue 19): the cost function against hand-computed
 * figures for each provider type's usage shape, the built-in table and its
 * lookup, the config's prices and price file, and end to end against the
 * simulator: streamed equals unstreamed, cancelled and dropped streams are
 * estimated and marked, unpriced models are unknown everywhere, and the sum of
 * 10,000 results' costs is the ledger's total to the nano-dollar. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "core/buf.h"
#include "engine/assemble.h"
#include "engine/result.h"
#include "llmux.h"
#include "prices/prices.h"
#include "sim_harness.h"

static sim SIM;
static int counter;

/* USD per million tokens, as femto-dollars per token */
#define MTOK(x) ((int64_t)((x) * 1e9 + 0.5))

static lx_price price(double in, double out, double read, double write, double write_1h)
{
    lx_price p = {"hand", MTOK(in), MTOK(out),
                  read < 0 ? -1 : MTOK(read), write < 0 ? -1 : MTOK(write),
                  write_1h < 0 ? -1 : MTOK(write_1h), 0, -1, -1, -1, -1, -1, 0, 0, 0, "test"};
    return p;
}

static lx_usage usage(int64_t prompt, int64_t completion, int64_t cached, int64_t write,
                      int64_t write_1h, int64_t reasoning)
{
    lx_usage u = {prompt, completion, cached, write, write_1h, reasoning, -1, 0};
    return u;
}

static int64_t cost(const lx_price *p, lx_usage u, unsigned *flags)
{
    unsigned f;
    return llmux__price_cost(p, &u, flags ? flags : &f);
}

/* ------------------------------------------------------- the cost function */

static void test_openai_shape(void **state)
{
    /* gpt-4o-mini's published prices: 0.15 in, 0.60 out, 0.075 cached */
    lx_price p = price(0.15, 0.60, 0.075, -1, -1);
    unsigned f;
    /* uncached: 1000 * 0.15 + 500 * 0.60 = 450 micro-dollars */
    assert_int_equal(cost(&p, usage(1000, 500, -1, -1, -1, -1), &f), 450000);
    assert_int_equal(f, 0);
    /* 400 of 1000 cached, 200 of 500 reasoning (priced as output):
     * 600 * 0.15 + 400 * 0.075 + 500 * 0.60 = 90 + 30 + 300 = 420 micro-dollars */
    assert_int_equal(cost(&p, usage(1000, 500, 400, 0, -1, 200), &f), 420000);
    /* a cache write without its own price costs an input token */
    assert_int_equal(cost(&p, usage(1000, 0, 0, 1000, -1, -1), NULL), 150000);
}

static void test_anthropic_shape(void **state)
{
    /* claude-sonnet-4-5: 3 in, 15 out, 0.30 read, 3.75 write (5 m), 6 write (1 h) */
    lx_price p = price(3, 15, 0.30, 3.75, 6);
    /* prompt 10000 = 5000 uncached + 2000 read + 3000 written (1000 for an hour):
     * 5000*3 + 2000*0.3 + 2000*3.75 + 1000*6 + 800*15
     * = 15000 + 600 + 7500 + 6000 + 12000 = 41100 micro-dollars */
    assert_int_equal(cost(&p, usage(10000, 800, 2000, 3000, 1000, -1), NULL), 41100000);
    /* writes not split by lifetime (-1) are 5-minute writes */
    assert_int_equal(cost(&p, usage(10000, 800, 2000, 3000, -1, -1), NULL), 41100000 - 1000 * 2250);
    /* without a 1-hour price, a 1-hour write costs a 5-minute write */
    lx_price q = price(3, 15, 0.30, 3.75, -1);
    assert_int_equal(cost(&q, usage(10000, 800, 2000, 3000, 1000, -1), NULL), 41100000 - 1000 * 2250);
}

static void test_gemini_shape_and_long_context(void **state)
{
    /* a Gemini Pro price: 2 in, 12 out, 0.2 cached; above 200k prompt tokens
     * 4 in, 18 out, 0.4 cached for every token of the call */
    lx_price p = price(2, 12, 0.2, -1, -1);
    p.tier_tokens = 200000;
    p.input_hi = MTOK(4);
    p.output_hi = MTOK(18);
    p.cache_read_hi = MTOK(0.4);
    unsigned f;
    /* thoughts are part of completion_tokens: 1000*2 + 3000*12 = 38000 micro-dollars */
    assert_int_equal(cost(&p, usage(1000, 3000, -1, -1, -1, 2500), &f), 38000000);
    assert_int_equal(f, 0);
    /* exactly 200k is not above the threshold */
    assert_int_equal(cost(&p, usage(200000, 0, -1, -1, -1, -1), &f), 400000000);
    assert_int_equal(f, 0);
    /* 250000 (50000 cached) and 1000 out: 200000*4 + 50000*0.4 + 1000*18 = 838000 micro-dollars */
    assert_int_equal(cost(&p, usage(250000, 1000, 50000, 0, -1, -1), &f), 838000000);
    assert_int_equal(f, LX_COST_TIER);
    /* a tier without its own output price keeps the base output price */
    p.output_hi = -1;
    assert_int_equal(cost(&p, usage(250000, 1000, 50000, 0, -1, -1), NULL), 832000000);
}

static void test_bedrock_shape(void **state)
{
    /* Claude on Bedrock: reads and writes reported as cacheRead/WriteInputTokens,
     * folded into prompt_tokens by the adapter. 5000 = 2000 + 1000 read + 2000 written:
     * 2000*3 + 1000*0.3 + 2000*3.75 + 100*15 = 6000 + 300 + 7500 + 1500 = 15300 micro-dollars */
    lx_price p = price(3, 15, 0.30, 3.75, -1);
    assert_int_equal(cost(&p, usage(5000, 100, 1000, 2000, -1, -1), NULL), 15300000);
}

static void test_rounding_is_exact_and_half_up(void **state)
{
    lx_price p = price(0.0375, 0, -1, -1, -1);
    assert_int_equal(p.input, 37500000); /* 0.0375 USD/Mtok is exact */
    /* one token: 37.5 nano-dollars, rounded half up to 38; three: 112.5 -> 113 */
    assert_int_equal(cost(&p, usage(1, 0, -1, -1, -1, -1), NULL), 38);
    assert_int_equal(cost(&p, usage(3, 0, -1, -1, -1, -1), NULL), 113);
    assert_int_equal(cost(&p, usage(4, 0, -1, -1, -1, -1), NULL), 150);
    /* the whole call is rounded once, not each part: 1 in + 1 cached at
     * 0.0375 each is 75, not 38 + 38 */
    lx_price q = price(0.0375, 0, 0.0375, -1, -1);
    assert_int_equal(cost(&q, usage(2, 0, 1, -1, -1, -1), NULL), 75);
    assert_int_equal(llmux__price_from_mtok(0.0375), 37500000);
    assert_int_equal(llmux__price_from_token(3.75e-08), 37500000);
    assert_int_equal(llmux__price_from_mtok(-0.01), -1);
}

static void test_unknown_mismatch_and_saturation(void **state)
{
    lx_price p = price(1, 2, 0.5, -1, -1);
    unsigned f;
    assert_int_equal(cost(&p, usage(-1, 10, -1, -1, -1, -1), &f), -1);
    assert_int_equal(cost(&p, usage(10, -1, -1, -1, -1, -1), &f), -1);
    /* cached beyond the prompt: the parts are priced and the mismatch said */
    assert_int_equal(cost(&p, usage(10, 0, 20, -1, -1, -1), &f), 10000); /* 20 * 0.5 micro */
    assert_int_equal(f, LX_COST_MISMATCH);
    lx_price big = price(1000000, 1000000, -1, -1, -1);
    assert_true(cost(&big, usage(1000000000000000LL, 1000000000000000LL, -1, -1, -1, -1), NULL) ==
                INT64_MAX);
}

/* ------------------------------------------------------------ the lookup */

static void test_builtin_lookup(void **state)
{
    const lx_price *p = llmux__price_find(NULL, "oa", "openai", "gpt-4o-mini");
    assert_non_null(p);
    assert_string_equal(p->model, "gpt-4o-mini");
    assert_int_equal(p->input, MTOK(0.15));
    assert_int_equal(p->output, MTOK(0.60));
    assert_int_equal(p->cache_read, MTOK(0.075));
    assert_true(p->caps & LX_CAP_TOOLS);
    assert_null(p->source);
    assert_non_null(strstr(llmux__price_source(p), "built-in (LiteLLM "));

    p = llmux__price_find(NULL, "an", "anthropic", "claude-sonnet-4-6");
    assert_non_null(p);
    assert_int_equal(p->cache_write, MTOK(3.75));
    assert_int_equal(p->cache_write_1h, MTOK(6));
    /* Bedrock: a cross-region profile prices as its base model, with its tier */
    p = llmux__price_find(NULL, "br", "bedrock", "us.anthropic.claude-sonnet-4-5-20250929-v1:0");
    assert_non_null(p);
    assert_string_equal(p->model, "anthropic.claude-sonnet-4-5-20250929-v1:0");
    assert_int_equal(p->tier_tokens, 200000);
    assert_int_equal(p->input_hi, MTOK(6));
    /* Azure: an id the Azure table lacks falls back to OpenAI's */
    assert_non_null(llmux__price_find(NULL, "az", "azure", "gpt-4o-mini"));
    /* a Gemini model under Google's resource name */
    assert_non_null(llmux__price_find(NULL, "g", "gemini", "models/gemini-3-flash-preview"));
    /* the family is the provider type's: no OpenAI price for a Claude id */
    assert_null(llmux__price_find(NULL, "oa", "openai", "claude-sonnet-4-6"));
    assert_null(llmux__price_find(NULL, "oa", "openai", "no-such-model"));
    /* every family's slice is sorted, as the binary search needs */
    for (int f = 0; f < LX_PF_COUNT; f++)
        for (size_t i = llmux__prices_family_start[f] + 1; i < llmux__prices_family_start[f + 1]; i++)
            assert_true(strcmp(llmux__prices_builtin[i - 1].model, llmux__prices_builtin[i].model) < 0);
}

static void test_override_table(void **state)
{
    lx_price_table *t = llmux__price_table_new();
    assert_non_null(t);
    lx_price bare = price(1, 1, -1, -1, -1), mine = price(2, 2, -1, -1, -1);
    assert_int_equal(llmux__price_table_put(t, "gpt-4o-mini", &bare), LLMUX_OK);
    assert_int_equal(llmux__price_table_put(t, "p1/gpt-4o-mini", &mine), LLMUX_OK);
    char key[32];
    for (int i = 0; i < 100; i++) { /* grows */
        snprintf(key, sizeof key, "m-%d", i);
        assert_int_equal(llmux__price_table_put(t, key, &bare), LLMUX_OK);
    }
    assert_int_equal(llmux__price_table_size(t), 102);
    const lx_price *p = llmux__price_find(t, "p1", "openai", "gpt-4o-mini");
    assert_string_equal(p->model, "p1/gpt-4o-mini");
    p = llmux__price_find(t, "p2", "openai", "gpt-4o-mini");
    assert_string_equal(p->model, "gpt-4o-mini");
    assert_int_equal(p->input, MTOK(1));
    assert_string_equal(llmux__price_find(t, "p2", "openai", "m-77")->model, "m-77");
    /* an override for a Bedrock base id serves its cross-region ids */
    assert_int_equal(llmux__price_table_put(t, "amazon.nova-pro-v1:0", &mine), LLMUX_OK);
    assert_ptr_equal(llmux__price_find(t, "br", "bedrock", "eu.amazon.nova-pro-v1:0"),
                     llmux__price_find(t, "br", "bedrock", "amazon.nova-pro-v1:0"));
    llmux__price_table_free(t);
}

/* ------------------------------------------------- usage into the record */

/* The OpenAI adapter reads reasoning tokens on its text path and its tree
 * path (an escaped key sends a body to the tree). */
static void test_openai_usage_parts(void **state)
{
    static const char cfg_json[] =
        "{\"providers\":{\"p\":{\"type\":\"openai\",\"base_url\":\"http://127.0.0.1:9/v1\"}},"
        "\"models\":{\"m\":{\"targets\":[{\"provider\":\"p\",\"model\":\"x\"}]}}}";
    lx_config *cfg = NULL;
    lx_err err = {0};
    assert_int_equal(llmux__config_parse(&cfg, cfg_json, sizeof cfg_json - 1, &err), LLMUX_OK);
    const lx_provider_cfg *p = &cfg->providers[0];
    static const char *const bodies[] = {
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":40,"
        "\"prompt_tokens_details\":{\"cached_tokens\":64},"
        "\"completion_tokens_details\":{\"reasoning_tokens\":32}}}",
        "{\"choices\":[],\"x\\u0041\":1,\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":40,"
        "\"prompt_tokens_details\":{\"cached_tokens\":64},"
        "\"completion_tokens_details\":{\"reasoning_tokens\":32}}}",
    };
    for (size_t i = 0; i < 2; i++) {
        lx_buf b = LX_BUF_INIT;
        llmux__buf_puts(&b, bodies[i]);
        char *json = NULL;
        lx_usage u = LX_USAGE_UNKNOWN;
        assert_int_equal(p->ops->parse_response(p, &b, &json, &u, &err), LLMUX_OK);
        assert_int_equal(u.prompt_tokens, 100);
        assert_int_equal(u.cached_tokens, 64);
        assert_int_equal(u.completion_tokens, 40);
        assert_int_equal(u.reasoning_tokens, 32);
        assert_int_equal(u.cache_write_tokens, -1);
        free(json);
        llmux__buf_free(&b);
    }
    llmux__config_unref(cfg);
}

/* A stream's usage chunk fills the same record: OpenAI's fields, and the
 * cache writes an adapter puts in prompt_tokens_details. */
static void test_stream_usage_parts(void **state)
{
    lx_assembler a;
    llmux__assembler_init(&a, 1 << 20);
    assert_int_equal(a.u.cache_write_tokens, -1);
    assert_int_equal(a.u.reasoning_tokens, -1);
    cJSON *chunk = cJSON_Parse(
        "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],"
        "\"usage\":{\"prompt_tokens\":10000,\"completion_tokens\":800,"
        "\"prompt_tokens_details\":{\"cached_tokens\":2000,\"cache_write_tokens\":3000,"
        "\"cache_write_1h_tokens\":1000},\"completion_tokens_details\":{\"reasoning_tokens\":300}}}");
    lx_err err = {0};
    assert_int_equal(llmux__assembler_add(&a, chunk, &err), LLMUX_OK);
    lx_usage want = {10000, 800, 2000, 3000, 1000, 300, -1, 0};
    assert_true(a.u.prompt_tokens == want.prompt_tokens &&
                a.u.completion_tokens == want.completion_tokens &&
                a.u.cached_tokens == want.cached_tokens &&
                a.u.cache_write_tokens == want.cache_write_tokens &&
                a.u.cache_write_1h_tokens == want.cache_write_1h_tokens &&
                a.u.reasoning_tokens == want.reasoning_tokens && !a.u.absurd);
    /* priced like the same usage unstreamed (the Anthropic figure above) */
    lx_price p = price(3, 15, 0.30, 3.75, 6);
    assert_int_equal(cost(&p, a.u, NULL), 41100000);
    cJSON_Delete(chunk);
    llmux__assembler_free(&a);
}

/* ------------------------------------------------------------- the config */

static const char *open_err(const char *extra)
{
    static char err[512];
    char cfg[4096];
    snprintf(cfg, sizeof cfg,
             "{\"providers\":{\"p\":{\"type\":\"openai\",\"base_url\":\"http://127.0.0.1:9/v1\"}},"
             "\"models\":{\"m\":{\"targets\":[{\"provider\":\"p\",\"model\":\"x\"}]}},%s}",
             extra);
    llmux *gw = NULL;
    err[0] = '\0';
    if (llmux_open(&gw, cfg, err, sizeof err) == LLMUX_OK) {
        llmux_close(gw);
        return "";
    }
    return err;
}

static void test_config_errors(void **state)
{
    assert_string_equal(open_err("\"prices\":{\"x\":{\"output_mtok\":1}}"),
                        "prices.x.input_mtok: required (USD per million tokens)");
    assert_string_equal(open_err("\"prices\":{\"x\":{\"input_mtok\":1}}"),
                        "prices.x.output_mtok: required (USD per million tokens)");
    assert_string_equal(open_err("\"prices\":{\"x\":{\"input_mtok\":-1,\"output_mtok\":1}}"),
                        "prices.x.input_mtok: out of range (expected 0 to 1000000 USD per million "
                        "tokens)");
    assert_string_equal(open_err("\"prices\":{\"x\":{\"input_mtok\":\"1\",\"output_mtok\":1}}"),
                        "prices.x.input_mtok: expected a number (USD per million tokens), got a "
                        "string");
    assert_string_equal(open_err("\"prices\":{\"x\":{\"input_mtok\":1,\"output_mtok\":1,\"cache\":1}}"),
                        "prices.x.cache: unknown key (expected one of: input_mtok, output_mtok, "
                        "cache_read_mtok, cache_write_mtok, cache_write_1h_mtok, above_tokens, "
                        "input_above_mtok, output_above_mtok, cache_read_above_mtok, "
                        "cache_write_above_mtok, cache_write_1h_above_mtok)");
    assert_string_equal(open_err("\"prices\":{\"p/\":{\"input_mtok\":1,\"output_mtok\":1}}"),
                        "prices[\"p/\"]: expected a model id or \"provider-name/model id\"");
    assert_string_equal(open_err("\"prices\":{\"x\":{\"input_mtok\":1,\"output_mtok\":1,"
                                 "\"input_above_mtok\":2}}"),
                        "prices.x.above_tokens: required with *_above_mtok prices (the prompt "
                        "size above which they apply)");
    assert_string_equal(open_err("\"prices\":[]"), "prices: expected an object, got an array");
    assert_string_equal(open_err("\"require_prices\":1"),
                        "require_prices: expected true or false, got a number");
    assert_string_equal(open_err("\"price_file\":\"/nonexistent/prices.json\""),
                        "price_file: cannot open \"/nonexistent/prices.json\"");
    assert_string_equal(open_err("\"prices\":{\"x\":{\"input_mtok\":1,\"output_mtok\":2,"
                                 "\"above_tokens\":200000,\"input_above_mtok\":2}}"),
                        "");
}

/* ------------------------------------------------------ end to end (sim) */

static void names(char a[32], char b[32])
{
    counter++;
    snprintf(a, 32, "ca%d", counter);
    snprintf(b, 32, "cb%d", counter);
}

static llmux *open_two(const char *a, const char *b, const char *extra)
{
    const char *deps[] = {a, b, NULL};
    char models[512];
    snprintf(models, sizeof models,
             "{\"one\":{\"targets\":[{\"provider\":\"%s\",\"model\":\"m-a\"}]},"
             "\"two\":{\"targets\":[{\"provider\":\"%s\",\"model\":\"m-a\"},"
             "{\"provider\":\"%s\",\"model\":\"m-b\"}]},"
             "\"unpriced\":{\"targets\":[{\"provider\":\"%s\",\"model\":\"m-b\"}]}}",
             a, a, b, a);
    char *cfg = sim_config(&SIM, deps, models, extra);
    llmux *gw = NULL;
    char err[512];
    if (llmux_open(&gw, cfg, err, sizeof err) != LLMUX_OK)
        fail_msg("open: %s\n%s", err, cfg);
    free(cfg);
    return gw;
}

static cJSON *trace(const llmux_result *r)
{
    cJSON *t = cJSON_Parse(llmux_result_trace_json(r));
    assert_non_null(t);
    return t;
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
    cJSON *j = cJSON_Parse(body);
    int n = (int)nget(j, "requests");
    cJSON_Delete(j);
    free(body);
    return n;
}

static cJSON *spend(llmux *gw)
{
    char *out = NULL;
    assert_int_equal(llmux_spend_json(gw, NULL, &out), LLMUX_OK);
    cJSON *j = cJSON_Parse(out);
    llmux_free(out);
    assert_non_null(j);
    return j;
}

/* 1.2345678 in, 3.0375 out (USD per million tokens) */
#define PRICE_A "\"prices\":{\"m-a\":{\"input_mtok\":1.2345678,\"output_mtok\":3.0375}}"
#define FEMTO_IN 1234567800LL
#define FEMTO_OUT 3037500000LL

static int64_t expected_nusd(int64_t prompt, int64_t completion)
{
    return (prompt * FEMTO_IN + completion * FEMTO_OUT + 500000) / 1000000;
}

typedef struct stopper {
    int n, stop_at;
} stopper;

static int on_chunk(const char *json, size_t len, void *payload)
{
    stopper *s = payload;
    return ++s->n == s->stop_at;
}

static void test_call_cost_streamed_equals_plain(void **state)
{
    char a[32], b[32];
    names(a, b);
    llmux *gw = open_two(a, b, PRICE_A);
    const char *req = "{\"model\":\"one\",\"messages\":[{\"role\":\"user\",\"content\":"
                      "\"stream me five words please\"}]}";
    llmux_result *plain = NULL, *streamed = NULL;
    assert_int_equal(llmux_chat(gw, req, NULL, &plain), LLMUX_OK);
    stopper s = {0, 0};
    assert_int_equal(llmux_chat_stream(gw, req, NULL, on_chunk, &s, &streamed), LLMUX_OK);
    /* the simulator: prompt ceil(28 bytes / 4) = 7, completion "[caN] stream me five
     * words please" = 6 words */
    assert_int_equal(llmux_result_prompt_tokens(plain), 7);
    assert_int_equal(llmux_result_completion_tokens(plain), 6);
    int64_t want = expected_nusd(7, 6); /* 8641974600 + 18225000000 fUSD = 26866.9746 -> 26867 */
    assert_int_equal(want, 26867);
    assert_int_equal(plain->cost_nusd, want);
    assert_int_equal(streamed->cost_nusd, want);
    assert_true(llmux_result_cost_usd(plain) == 26867e-9);
    assert_true(llmux_result_cost_usd(streamed) == llmux_result_cost_usd(plain));
    assert_int_equal(plain->cost_estimated, 0);
    assert_int_equal(streamed->cost_estimated, 0);

    cJSON *t = trace(streamed);
    assert_int_equal((int64_t)nget(t, "cost_nusd"), want);
    assert_true(nget(t, "cost_usd") == 0.000026867);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(t, "cost_estimated")));
    const cJSON *pr = cJSON_GetObjectItem(t, "price");
    assert_string_equal(sget(pr, "entry"), "m-a");
    assert_string_equal(sget(pr, "source"), "config");
    assert_null(cJSON_GetObjectItem(t, "usage_mismatch"));
    cJSON_Delete(t);
    /* the trace prints the exact decimal */
    assert_non_null(strstr(llmux_result_trace_json(plain), "\"cost_usd\":0.000026867,"));

    cJSON *sp = spend(gw);
    const cJSON *tot = cJSON_GetObjectItem(sp, "total");
    assert_int_equal((int64_t)nget(tot, "cost_nusd"), 2 * want);
    assert_int_equal((int)nget(tot, "priced_calls"), 2);
    assert_int_equal((int)nget(tot, "estimated_calls"), 0);
    cJSON_Delete(sp);
    llmux_result_free(plain);
    llmux_result_free(streamed);
    llmux_close(gw);
}

/* The provider's own total_tokens is in the trace, and parts that do not add
 * up to it are noted there (the parts are what is priced, never the total). */
static void test_parts_checked_against_the_providers_total(void **state)
{
    char a[32], b[32];
    names(a, b);
    llmux *gw = open_two(a, b, PRICE_A);
    const char *req = "{\"model\":\"one\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    llmux_result *r = NULL;
    assert_int_equal(llmux_chat(gw, req, NULL, &r), LLMUX_OK);
    cJSON *t = trace(r);
    const cJSON *u = cJSON_GetObjectItem(t, "usage");
    assert_int_equal((int64_t)nget(t, "provider_total_tokens"),
                     (int64_t)nget(u, "prompt_tokens") + (int64_t)nget(u, "completion_tokens"));
    assert_null(cJSON_GetObjectItem(t, "usage_total_mismatch"));
    cJSON_Delete(t);
    llmux_result_free(r);

    sim_set(&SIM, a,
            "{\"faults\":[{\"type\":\"status\",\"status\":200,\"count\":1,\"body\":{\"id\":\"x\","
            "\"object\":\"chat.completion\",\"created\":1,\"model\":\"m-a\",\"choices\":[{\"index\":0,"
            "\"message\":{\"role\":\"assistant\",\"content\":\"ok\"},\"finish_reason\":\"stop\"}],"
            "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":9}}}]}");
    assert_int_equal(llmux_chat(gw, req, NULL, &r), LLMUX_OK);
    t = trace(r);
    assert_int_equal((int64_t)nget(t, "provider_total_tokens"), 9);
    assert_string_equal(sget(t, "usage_total_mismatch"),
                        "the provider's total_tokens 9 is not prompt_tokens + completion_tokens "
                        "(3 + 2); the parts were priced");
    assert_int_equal(r->cost_nusd, expected_nusd(3, 2));
    cJSON_Delete(t);
    llmux_result_free(r);
    llmux_close(gw);
}

static void test_cancelled_and_dropped_streams_are_estimated(void **state)
{
    char a[32], b[32];
    names(a, b);
    llmux *gw = open_two(a, b, PRICE_A);
    const char *messages = "[{\"role\":\"user\",\"content\":\"one two three four five six\"}]";
    char req[256];
    snprintf(req, sizeof req, "{\"model\":\"one\",\"messages\":%s}", messages);
    int64_t prompt_est = (int64_t)(strlen(messages) + 3) / 4;

    /* the caller stops after the role chunk and the first word ("[caN] "): the
     * provider sent no usage, so tokens are estimated from the bytes */
    stopper s = {0, 2};
    llmux_result *r = NULL;
    assert_int_equal(llmux_chat_stream(gw, req, NULL, on_chunk, &s, &r), LLMUX_ERR_CANCELLED);
    char word[32];
    int word_len = snprintf(word, sizeof word, "[%s] ", a);
    int64_t completion_est = (word_len + 3) / 4;
    assert_int_equal(llmux_result_prompt_tokens(r), prompt_est);
    assert_int_equal(llmux_result_completion_tokens(r), completion_est);
    assert_int_equal(r->cost_nusd, expected_nusd(prompt_est, completion_est));
    assert_int_equal(r->cost_estimated, 1);
    cJSON *t = trace(r);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(t, "cost_estimated")));
    const cJSON *a0 = cJSON_GetArrayItem(cJSON_GetObjectItem(t, "attempts"), 0);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(a0, "estimated")));
    assert_int_equal((int64_t)(nget(a0, "cost_usd") * 1e9 + 0.5), r->cost_nusd);
    cJSON_Delete(t);
    int64_t cancelled = r->cost_nusd;
    llmux_result_free(r);

    /* a stream cut by the provider after tokens: billed, estimated, charged */
    sim_set(&SIM, a, "{\"faults\":[{\"type\":\"stream_drop\"}]}");
    s.n = 0;
    s.stop_at = 0;
    assert_int_equal(llmux_chat_stream(gw, req, NULL, on_chunk, &s, &r), LLMUX_ERR_CONNECT);
    assert_int_equal(r->cost_estimated, 1);
    assert_true(r->cost_nusd > 0);
    assert_int_equal(llmux_result_prompt_tokens(r), prompt_est);
    int64_t dropped = r->cost_nusd;
    llmux_result_free(r);

    cJSON *sp = spend(gw);
    const cJSON *tot = cJSON_GetObjectItem(sp, "total");
    assert_int_equal((int)nget(tot, "calls"), 2);
    assert_int_equal((int)nget(tot, "errors"), 2);
    assert_int_equal((int)nget(tot, "estimated_calls"), 2);
    assert_int_equal((int)nget(tot, "priced_calls"), 2);
    assert_int_equal((int64_t)nget(tot, "cost_nusd"), cancelled + dropped);
    cJSON_Delete(sp);
    llmux_close(gw);
}

/* A stream that fails before any chunk or usage (an error event in a 200
 * stream) is not billed: the call costs the target that answered after it. */
static void test_stream_failed_before_tokens_is_not_billed(void **state)
{
    char a[32], b[32];
    names(a, b);
    llmux *gw = open_two(a, b, "\"prices\":{\"m-a\":{\"input_mtok\":1,\"output_mtok\":1},"
                               "\"m-b\":{\"input_mtok\":1.2345678,\"output_mtok\":3.0375}}");
    sim_set(&SIM, a, "{\"faults\":[{\"type\":\"hostile\",\"kind\":\"error_200\"}]}");
    const char *req = "{\"model\":\"two\",\"messages\":[{\"role\":\"user\",\"content\":"
                      "\"hello there\"}]}";
    stopper s = {0, 0};
    llmux_result *r = NULL;
    assert_int_equal(llmux_chat_stream(gw, req, NULL, on_chunk, &s, &r), LLMUX_OK);
    assert_string_equal(llmux_result_provider(r), b);
    assert_int_equal(r->n_attempts, 2);
    assert_int_equal(r->attempts[0].billed, 0);
    /* 3 in, 3 out ("[cbN] hello there") at m-b's price */
    assert_int_equal(r->cost_nusd, expected_nusd(3, 3));
    assert_int_equal(r->cost_estimated, 0);
    cJSON *t = trace(r);
    const cJSON *a0 = cJSON_GetArrayItem(cJSON_GetObjectItem(t, "attempts"), 0);
    assert_null(cJSON_GetObjectItem(a0, "cost_usd"));
    cJSON_Delete(t);
    llmux_result_free(r);
    llmux_close(gw);
}

static void test_unpriced_is_unknown_everywhere(void **state)
{
    char a[32], b[32];
    names(a, b);
    llmux *gw = open_two(a, b, PRICE_A);
    llmux_result *r = NULL;
    const char *req = "{\"model\":\"unpriced\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    assert_int_equal(llmux_chat(gw, req, NULL, &r), LLMUX_OK);
    assert_true(llmux_result_cost_usd(r) < 0);
    assert_int_equal(r->cost_nusd, -1);
    cJSON *t = trace(r);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(t, "cost_usd")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(t, "price")));
    assert_int_equal((int)nget(t, "cost_nusd"), -1);
    cJSON_Delete(t);
    llmux_result_free(r);
    cJSON *sp = spend(gw);
    const cJSON *tot = cJSON_GetObjectItem(sp, "total");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(tot, "cost_usd")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(tot, "cost_nusd")));
    assert_int_equal((int)nget(tot, "unpriced_calls"), 1);
    assert_int_equal((int)nget(tot, "priced_calls"), 0);
    cJSON_Delete(sp);
    llmux_close(gw);
}

static void test_require_prices_refuses_before_calling(void **state)
{
    char a[32], b[32];
    names(a, b);
    /* only m-b is priced, for provider b only */
    char extra[256];
    snprintf(extra, sizeof extra,
             "\"require_prices\":true,\"prices\":{\"%s/m-b\":{\"input_mtok\":1,\"output_mtok\":2}}", b);
    llmux *gw = open_two(a, b, extra);
    llmux_result *r = NULL;
    const char *two = "{\"model\":\"two\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    assert_int_equal(llmux_chat(gw, two, NULL, &r), LLMUX_OK);
    assert_string_equal(llmux_result_provider(r), b);
    assert_int_equal(requests_seen(a), 0);
    cJSON *t = trace(r);
    const cJSON *a0 = cJSON_GetArrayItem(cJSON_GetObjectItem(t, "attempts"), 0);
    assert_string_equal(sget(a0, "outcome"), "cannot_serve");
    assert_non_null(strstr(sget(a0, "error"), "require_prices"));
    char entry[64];
    snprintf(entry, sizeof entry, "%s/m-b", b);
    assert_string_equal(sget(cJSON_GetObjectItem(t, "price"), "entry"), entry);
    cJSON_Delete(t);
    llmux_result_free(r);

    const char *one = "{\"model\":\"one\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    assert_int_equal(llmux_chat(gw, one, NULL, &r), LLMUX_ERR_UNSUPPORTED);
    assert_non_null(strstr(llmux_result_error(r), "no price is known for model \"m-a\""));
    assert_int_equal(requests_seen(a), 0);
    llmux_result_free(r);
    llmux_close(gw);
}

static void test_price_file(void **state)
{
    char a[32], b[32];
    names(a, b);
    char path[] = "/tmp/llmux-prices-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *json =
        "{\"sample_spec\":{\"max_input_tokens\":\"max input tokens, if the provider specifies it\","
        "\"input_cost_per_token\":0.0,\"output_cost_per_token\":0.0},"
        "\"odd\":{\"input_cost_per_token\":1e-06,\"output_cost_per_token\":1e-06,"
        "\"max_input_tokens\":\"lots\",\"max_output_tokens\":1.5},"
        "\"dall-e-3\":{\"mode\":\"image_generation\",\"output_cost_per_image\":0.04},"
        "\"m-a\":{\"input_cost_per_token\":1e-06,\"output_cost_per_token\":2e-06,"
        "\"litellm_provider\":\"openai\",\"mode\":\"chat\",\"max_input_tokens\":8192,"
        "\"supports_function_calling\":true},"
        "\"m-b\":{\"input_cost_per_token\":5e-07,\"output_cost_per_token\":1e-06}}";
    assert_int_equal(write(fd, json, strlen(json)), (ssize_t)strlen(json));
    close(fd);
    char extra[512];
    /* the config's own entry for m-b wins over the file's */
    snprintf(extra, sizeof extra,
             "\"price_file\":\"%s\",\"prices\":{\"m-b\":{\"input_mtok\":4,\"output_mtok\":8}}", path);
    llmux *gw = open_two(a, b, extra);
    llmux_result *r = NULL;
    const char *one = "{\"model\":\"one\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}";
    assert_int_equal(llmux_chat(gw, one, NULL, &r), LLMUX_OK);
    /* 3 in, 3 out ("[caN] hello there"): 3*1 + 3*2 = 9 micro-dollars */
    assert_int_equal(r->cost_nusd, 9000);
    cJSON *t = trace(r);
    char src[64];
    snprintf(src, sizeof src, "price_file %s", path);
    assert_string_equal(sget(cJSON_GetObjectItem(t, "price"), "source"), src);
    cJSON_Delete(t);
    llmux_result_free(r);
    const char *unp = "{\"model\":\"unpriced\",\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}";
    assert_int_equal(llmux_chat(gw, unp, NULL, &r), LLMUX_OK);
    assert_int_equal(r->cost_nusd, 36000); /* 3*4 + 3*8 */
    llmux_result_free(r);
    llmux_close(gw);

    /* a file that is not JSON names itself */
    FILE *f = fopen(path, "w");
    fputs("{\"m\":{\"input_cost_per_token\":1e-06,}}", f);
    fclose(f);
    snprintf(extra, sizeof extra, "\"price_file\":\"%s\"", path);
    char want[256];
    snprintf(want, sizeof want, "price_file: \"%s\" is not valid JSON (error at byte 35)", path);
    assert_string_equal(open_err(extra), want);
    f = fopen(path, "w");
    fputs("{\"m\":{\"input_cost_per_token\":\"cheap\",\"output_cost_per_token\":1e-06}}", f);
    fclose(f);
    snprintf(want, sizeof want,
             "price_file(%s).m.input_cost_per_token: expected a number (USD per token), got a string",
             path);
    assert_string_equal(open_err(extra), want);
    unlink(path);
}

static void test_ten_thousand_calls_sum_to_the_ledger(void **state)
{
    char a[32], b[32];
    names(a, b);
    llmux *gw = open_two(a, b, PRICE_A);
    int64_t sum = 0;
    char req[512], text[128];
    for (int i = 0; i < 10000; i++) {
        /* lengths vary so that prompt and completion tokens, and the rounding, vary */
        int n = i % 97 + 1, words = i % 7 + 1, k = 0;
        for (int w = 0; w < words && k < n; w++) {
            for (int j = 0; j < n / words && k < n; j++)
                text[k++] = 'x';
            text[k++] = ' ';
        }
        text[k] = '\0';
        snprintf(req, sizeof req,
                 "{\"model\":\"one\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]}", text);
        llmux_result *r = NULL;
        int rc = i % 10 == 3 ? llmux_chat_stream(gw, req, NULL, on_chunk, &(stopper){0, 0}, &r)
                             : llmux_chat(gw, req, NULL, &r);
        assert_int_equal(rc, LLMUX_OK);
        assert_int_equal(r->cost_nusd,
                         expected_nusd(r->usage.prompt_tokens, r->usage.completion_tokens));
        sum += r->cost_nusd;
        llmux_result_free(r);
    }
    cJSON *sp = spend(gw);
    const cJSON *tot = cJSON_GetObjectItem(sp, "total");
    assert_int_equal((int)nget(tot, "calls"), 10000);
    assert_int_equal((int64_t)nget(tot, "cost_nusd"), sum);
    /* cost_usd is the same amount as an exact decimal */
    char *out = NULL;
    assert_int_equal(llmux_spend_json(gw, NULL, &out), LLMUX_OK);
    char want[64];
    snprintf(want, sizeof want, "\"cost_usd\":%lld.%09lld,", (long long)(sum / 1000000000),
             (long long)(sum % 1000000000));
    assert_non_null(strstr(out, want));
    llmux_free(out);
    cJSON_Delete(sp);
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
    const struct CMUnitTest unit[] = {
        cmocka_unit_test(test_openai_shape),
        cmocka_unit_test(test_anthropic_shape),
        cmocka_unit_test(test_gemini_shape_and_long_context),
        cmocka_unit_test(test_bedrock_shape),
        cmocka_unit_test(test_rounding_is_exact_and_half_up),
        cmocka_unit_test(test_unknown_mismatch_and_saturation),
        cmocka_unit_test(test_builtin_lookup),
        cmocka_unit_test(test_override_table),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_openai_usage_parts),
        cmocka_unit_test(test_stream_usage_parts),
    };
    const struct CMUnitTest sim_tests[] = {
        cmocka_unit_test(test_call_cost_streamed_equals_plain),
        cmocka_unit_test(test_parts_checked_against_the_providers_total),
        cmocka_unit_test(test_cancelled_and_dropped_streams_are_estimated),
        cmocka_unit_test(test_stream_failed_before_tokens_is_not_billed),
        cmocka_unit_test(test_unpriced_is_unknown_everywhere),
        cmocka_unit_test(test_require_prices_refuses_before_calling),
        cmocka_unit_test(test_price_file),
        cmocka_unit_test(test_ten_thousand_calls_sum_to_the_ledger),
    };
    int failed = cmocka_run_group_tests(unit, NULL, NULL);
    return failed + cmocka_run_group_tests(sim_tests, setup, teardown);
}
