/* Config parsing: valid configs load; each invalid one fails with its own
 * message naming the JSON path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "llmux.h"

#define P_OK "\"p\":{\"type\":\"openai\",\"base_url\":\"http://127.0.0.1:9/v1\"}"
#define M_OK "\"m\":{\"targets\":[{\"provider\":\"p\",\"model\":\"x\"}]}"

static void test_minimal_config_loads(void **state)
{
    llmux *gw = NULL;
    char err[256] = "unset";
    int rc = llmux_open(&gw, "{\"providers\":{" P_OK "},\"models\":{" M_OK "}}", err, sizeof err);
    assert_int_equal(rc, LLMUX_OK);
    assert_non_null(gw);
    assert_string_equal(err, "");
    llmux_close(gw);
}

static void test_full_config_loads(void **state)
{
    setenv("LLMUX_TEST_KEY", "sk-test-123", 1);
    const char *json =
        "{\n"
        "  \"providers\": {\n"
        "    \"openai\": {\"type\": \"openai\", \"api_key_env\": \"LLMUX_TEST_KEY\",\n"
        "                 \"timeout_ms\": 20000, \"connect_timeout_ms\": 2000,\n"
        "                 \"headers\": {\"OpenAI-Organization\": \"org-1\"}},\n"
        "    \"local\": {\"type\": \"openai\", \"base_url\": \"http://127.0.0.1:11434/v1/\"}\n"
        "  },\n"
        "  \"models\": {\n"
        "    \"smart\": {\"targets\": [{\"provider\": \"openai\", \"model\": \"gpt-4o\"},\n"
        "                            {\"provider\": \"local\", \"model\": \"llama3\"}]},\n"
        "    \"fast\": {\"targets\": [{\"provider\": \"local\", \"model\": \"qwen\"}]}\n"
        "  },\n"
        "  \"defaults\": {\"timeout_ms\": 30000, \"connect_timeout_ms\": 1000},\n"
        "  \"routing\": {\"allow_direct\": true},\n"
        "  \"transport\": {\"max_connections\": 16, \"http2\": false, \"max_response_bytes\": 1048576}\n"
        "}\n";
    lx_config *cfg = NULL;
    lx_err err = {0};
    assert_int_equal(llmux__config_parse(&cfg, json, strlen(json), &err), LLMUX_OK);
    assert_int_equal(cfg->n_providers, 2);
    assert_int_equal(cfg->n_aliases, 2);
    assert_int_equal(cfg->timeout_ms, 30000);
    assert_int_equal(cfg->max_connections, 16);
    assert_int_equal(cfg->http2, 0);
    assert_true(cfg->allow_direct);
    const lx_alias *smart = llmux__config_find_alias(cfg, "smart");
    assert_non_null(smart);
    assert_int_equal(smart->n_targets, 2);
    assert_string_equal(smart->targets[0].provider->name, "openai");
    assert_string_equal(smart->targets[1].model, "llama3");
    assert_string_equal(smart->targets[0].provider->base_url, "https://api.openai.com/v1");
    assert_string_equal(smart->targets[0].provider->api_key, "sk-test-123");
    assert_int_equal(smart->targets[0].provider->connect_timeout_ms, 2000);
    /* trailing slashes are trimmed; the default connect timeout applies */
    assert_string_equal(smart->targets[1].provider->base_url, "http://127.0.0.1:11434/v1");
    assert_int_equal(smart->targets[1].provider->connect_timeout_ms, 1000);
    assert_null(llmux__config_find_alias(cfg, "smar"));
    assert_null(llmux__config_find_alias(cfg, "smart2"));
    llmux__config_unref(cfg);
}

static void test_many_aliases_index(void **state)
{
    char json[65536];
    size_t n = (size_t)snprintf(json, sizeof json, "{\"providers\":{" P_OK "},\"models\":{");
    for (int i = 0; i < 300; i++)
        n += (size_t)snprintf(json + n, sizeof json - n,
                              "%s\"alias%d\":{\"targets\":[{\"provider\":\"p\",\"model\":\"m%d\"}]}",
                              i ? "," : "", i, i);
    snprintf(json + n, sizeof json - n, "}}");
    lx_config *cfg = NULL;
    lx_err err = {0};
    assert_int_equal(llmux__config_parse(&cfg, json, strlen(json), &err), LLMUX_OK);
    for (int i = 0; i < 300; i++) {
        char name[32], model[32];
        snprintf(name, sizeof name, "alias%d", i);
        snprintf(model, sizeof model, "m%d", i);
        const lx_alias *a = llmux__config_find_alias(cfg, name);
        assert_non_null(a);
        assert_string_equal(a->targets[0].model, model);
    }
    llmux__config_unref(cfg);
}

/* A config of n aliases a0..a(n-1); with dup, the last one is named a0 again. */
static char *many_aliases(int n, int dup)
{
    size_t cap = (size_t)n * 80 + 256;
    char *json = malloc(cap);
    size_t len = (size_t)snprintf(json, cap, "{\"providers\":{" P_OK "},\"models\":{");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(json + len, cap - len,
                                "%s\"a%d\":{\"targets\":[{\"provider\":\"p\",\"model\":\"m\"}]}",
                                i ? "," : "", dup && i == n - 1 ? 0 : i);
    snprintf(json + len, cap - len, "}}");
    return json;
}

/* Opening is linear in the number of keys of an object: 100,000 aliases
 * open in well under a second (the duplicate scan was quadratic: 40,000 took
 * 13 s, so 100,000 would take over a minute). The bound is generous. */
static void test_many_aliases_open_fast(void **state)
{
    char *json = many_aliases(100000, 0);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    lx_config *cfg = NULL;
    lx_err err = {0};
    assert_int_equal(llmux__config_parse(&cfg, json, strlen(json), &err), LLMUX_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("100,000 aliases opened in %.3f s\n", s);
    /* quadratic took 192 s here; linear takes 0.4 s, a few under sanitizers: a
     * bound that only a quadratic scan misses, whatever the build or the load */
    assert_true(s < 60.0);
    assert_int_equal(cfg->n_aliases, 100000);
    llmux__config_unref(cfg);
    free(json);
    /* and a duplicate is still found, however far apart */
    json = many_aliases(100000, 1);
    assert_int_equal(llmux__config_parse(&cfg, json, strlen(json), &err), LLMUX_ERR_CONFIG);
    assert_string_equal(err.msg, "models.a0: duplicate key");
    free(json);
}

static void test_missing_key_env_is_not_fatal(void **state)
{
    unsetenv("LLMUX_TEST_UNSET_KEY");
    const char *json = "{\"providers\":{\"p\":{\"type\":\"openai\",\"api_key_env\":"
                       "\"LLMUX_TEST_UNSET_KEY\"}},\"models\":{" M_OK "}}";
    lx_config *cfg = NULL;
    lx_err err = {0};
    assert_int_equal(llmux__config_parse(&cfg, json, strlen(json), &err), LLMUX_OK);
    assert_null(cfg->providers[0].api_key);
    assert_string_equal(cfg->providers[0].api_key_env, "LLMUX_TEST_UNSET_KEY");
    llmux__config_unref(cfg);
}

struct bad_case {
    const char *json;
    const char *message; /* the exact error */
};

static const struct bad_case BAD[] = {
    {"", "config: not valid JSON (error at line 1, column 1)"},
    {"{\"providers\":{}", "config: not valid JSON (error at line 1, column 16)"},
    {"{\n\"providers\": {,}}", "config: not valid JSON (error at line 2, column 15)"},
    {"{} {}", "config: not valid JSON (error at line 1, column 4)"},
    {"[]", "config: expected an object, got an array"},
    {"{\"models\":{" M_OK "}}", "providers: required"},
    {"{\"providers\":{" P_OK "}}", "models: required"},
    {"{\"providers\":{},\"models\":{" M_OK "}}", "providers: must define at least one provider"},
    {"{\"providers\":{" P_OK "},\"models\":{}}",
     "models: must define at least one alias (or set routing.allow_direct)"},
    {"{\"providers\":{" P_OK "},\"models\":{" M_OK "},\"extra\":1}",
     "extra: unknown key (expected one of: providers, models, defaults, routing, transport, ledger, "
     "strict, rules, prices, price_file, require_prices, log, keys, teams, budgets, require_key)"},
    {"{\"providers\":{\"p\":{\"base_url\":\"http://x\"}},\"models\":{" M_OK "}}",
     "providers.p.type: required"},
    {"{\"providers\":{\"p\":{\"type\":\"cohere\"}},\"models\":{" M_OK "}}",
     "providers.p.type: unknown provider type \"cohere\" (expected one of: openai, azure, "
     "anthropic, gemini, bedrock)"},
    {"{\"providers\":{\"p\":{\"type\":7}},\"models\":{" M_OK "}}",
     "providers.p.type: expected a string, got a number"},
    {"{\"providers\":{\"p\":{\"type\":\"openai\",\"base_url\":\"ftp://x\"}},\"models\":{" M_OK "}}",
     "providers.p.base_url: must start with http:// or https:// (got \"ftp://x\")"},
    {"{\"providers\":{\"p\":{\"type\":\"openai\",\"base_url\":\"http:///v1\"}},\"models\":{" M_OK
     "}}",
     "providers.p.base_url: has no host (got \"http:///v1\")"},
    {"{\"providers\":{\"p\":{\"type\":\"openai\",\"base_url\":\"http://h/v1?x=1\"}},\"models\":{" M_OK
     "}}",
     "providers.p.base_url: must not contain a query or fragment"},
    {"{\"providers\":{\"p\":{\"type\":\"openai\",\"api_key\":\"sk-123\"}},\"models\":{" M_OK "}}",
     "providers.p.api_key: keys are never written in the config; name an environment variable "
     "with \"api_key_env\" instead"},
    {"{\"providers\":{\"p\":{\"type\":\"openai\",\"api_key_env\":\"1BAD\"}},\"models\":{" M_OK "}}",
     "providers.p.api_key_env: not an environment variable name (letters, digits and _, not "
     "starting with a digit); if it is a key, put it in an environment variable and name that "
     "variable here"},
    /* the adapter appends the endpoint itself */
    {"{\"providers\":{\"p\":{\"type\":\"openai\",\"base_url\":\"https://h.example/v1/chat/completions/\"}},"
     "\"models\":{" M_OK "}}",
     "providers.p.base_url: ends in /chat/completions, which llmux appends itself; write "
     "\"https://h.example/v1\""},
    {"{\"providers\":{\"p\":{\"type\":\"openai\",\"base_url\":\"http://h/chat/completions\"}},"
     "\"models\":{" M_OK "}}",
     "providers.p.base_url: ends in /chat/completions, which llmux appends itself; write "
     "\"http://h\""},

    {"{\"providers\":{\"p\":{\"type\":\"openai\",\"api_key_env\":\"\"}},\"models\":{" M_OK "}}",
     "providers.p.api_key_env: must not be empty"},
    {"{\"providers\":{\"p\":{\"type\":\"openai\",\"timeout_ms\":-5}},\"models\":{" M_OK "}}",
     "providers.p.timeout_ms: out of range (expected 1 to 86400000)"},
    {"{\"providers\":{\"p\":{\"type\":\"openai\",\"timeout_ms\":1.5}},\"models\":{" M_OK "}}",
     "providers.p.timeout_ms: expected a whole number"},
    {"{\"providers\":{\"p\":{\"type\":\"openai\",\"connect_timeout_ms\":\"5s\"}},\"models\":{" M_OK
     "}}",
     "providers.p.connect_timeout_ms: expected a whole number, got a string"},
    {"{\"providers\":{\"p\":{\"type\":\"openai\",\"headers\":{\"Authorization\":\"Bearer x\"}}},"
     "\"models\":{" M_OK "}}",
     "providers.p.headers.Authorization: llmux sets this header itself (credentials come from "
     "api_key_env)"},
    {"{\"providers\":{\"p\":{\"type\":\"openai\",\"headers\":{\"Bad Name\":\"x\"}}},\"models\":{" M_OK
     "}}",
     "providers.p.headers[\"Bad Name\"]: not a valid HTTP header name"},
    {"{\"providers\":{\"p\":{\"type\":\"openai\",\"headers\":{\"X-A\":\"a\\r\\nX-B: b\"}}},"
     "\"models\":{" M_OK "}}",
     "providers.p.headers.X-A: header values must not contain control characters"},
    {"{\"providers\":{\"p\":{\"type\":\"openai\",\"baseurl\":\"http://x\"}},\"models\":{" M_OK "}}",
     "providers.p.baseurl: unknown key (expected one of: type, base_url, api_key_env, headers, "
     "timeout_ms, connect_timeout_ms)"},
    {"{\"providers\":{\"a/b\":{\"type\":\"openai\"}},\"models\":{" M_OK "}}",
     "providers[\"a/b\"]: provider names must not contain '/'"},
    {"{\"providers\":{\"p q\":{\"type\":\"openai\"}},\"models\":{" M_OK "}}",
     "providers[\"p q\"]: provider names must not contain spaces, quotes, backslashes or control "
     "characters"},
    {"{\"providers\":{" P_OK "," P_OK "},\"models\":{" M_OK "}}", "providers.p: duplicate key"},
    {"{\"providers\":{" P_OK "},\"models\":{\"m\":{}}}", "models.m.targets: required"},
    {"{\"providers\":{" P_OK "},\"models\":{\"m\":{\"targets\":[]}}}",
     "models.m.targets: must list at least one target"},
    {"{\"providers\":{" P_OK "},\"models\":{\"m\":{\"targets\":{}}}}",
     "models.m.targets: expected an array, got an object"},
    {"{\"providers\":{" P_OK "},\"models\":{\"m\":{\"targets\":[{\"provider\":\"p\",\"model\":\"x\"},"
     "{\"provider\":\"q\",\"model\":\"y\"}]}}}",
     "models.m.targets[1].provider: no provider named \"q\" in \"providers\""},
    {"{\"providers\":{" P_OK "},\"models\":{\"m\":{\"targets\":[{\"provider\":\"p\"}]}}}",
     "models.m.targets[0].model: required"},
    {"{\"providers\":{" P_OK "},\"models\":{\"m\":{\"targets\":[{\"provider\":\"p\",\"model\":\"\"}]}}}",
     "models.m.targets[0].model: must not be empty"},
    {"{\"providers\":{" P_OK "},\"models\":{\"m\":{\"targets\":[\"p\"]}}}",
     "models.m.targets[0]: expected an object, got a string"},
    {"{\"providers\":{" P_OK "},\"models\":{\"m\":{\"targets\":[{\"provider\":\"p\",\"model\":\"x\","
     "\"priority\":1}]}}}",
     "models.m.targets[0].priority: unknown key (expected one of: provider, model, weight, "
     "params)"},
    {"{\"providers\":{" P_OK "},\"models\":{\"m\":{\"fallbacks\":[]}}}",
     "models.m.fallbacks: unknown key (expected one of: targets, strategy, on_context_window, "
     "on_content_filter, hedge_after_ms)"},
    {"{\"providers\":{" P_OK "},\"models\":{" M_OK "},\"defaults\":{\"timeout_ms\":0}}",
     "defaults.timeout_ms: out of range (expected 1 to 86400000)"},
    {"{\"providers\":{" P_OK "},\"models\":{" M_OK "},\"defaults\":{\"retries\":2}}",
     "defaults.retries: unknown key (expected one of: timeout_ms, connect_timeout_ms)"},
    {"{\"providers\":{" P_OK "},\"models\":{" M_OK "},\"routing\":{\"allow_direct\":\"yes\"}}",
     "routing.allow_direct: expected true or false, got a string"},
    {"{\"providers\":{" P_OK "},\"models\":{" M_OK "},\"transport\":{\"max_connections\":0}}",
     "transport.max_connections: out of range (expected 1 to 1024)"},
    {"{\"providers\":{" P_OK "},\"models\":{" M_OK "},\"transport\":[]}",
     "transport: expected an object, got an array"},
};

static void test_invalid_configs(void **state)
{
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        llmux *gw = (llmux *)1;
        char err[512];
        int rc = llmux_open(&gw, BAD[i].json, err, sizeof err);
        if (rc != LLMUX_ERR_CONFIG || strcmp(err, BAD[i].message) != 0)
            fail_msg("case %zu: %s\n  expected LLMUX_ERR_CONFIG \"%s\"\n  got %d \"%s\"", i,
                     BAD[i].json, BAD[i].message, rc, err);
        assert_null(gw);
    }
    /* every case tests a different message */
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++)
        for (size_t j = i + 1; j < sizeof BAD / sizeof BAD[0]; j++)
            assert_string_not_equal(BAD[i].message, BAD[j].message);
}

/* Repeats of messages above, each for another reason. */
static void test_config_traps(void **state)
{
    static const struct {
        const char *json, *message;
    } cases[] = {
        /* a key pasted where its variable's name belongs is never echoed */
        {"{\"providers\":{\"p\":{\"type\":\"openai\",\"api_key_env\":\"sk-live-abc123SECRET\"}},"
         "\"models\":{" M_OK "}}",
         "providers.p.api_key_env: not an environment variable name (letters, digits and _, not "
         "starting with a digit); if it is a key, put it in an environment variable and name that "
         "variable here"},
        /* numbers no integer holds: refused, never converted */
        {"{\"providers\":{\"p\":{\"type\":\"openai\",\"timeout_ms\":1e34}},\"models\":{" M_OK "}}",
         "providers.p.timeout_ms: out of range (expected 1 to 86400000)"},
        {"{\"providers\":{\"p\":{\"type\":\"openai\",\"timeout_ms\":-1e300}},\"models\":{" M_OK "}}",
         "providers.p.timeout_ms: out of range (expected 1 to 86400000)"},
        {"{\"providers\":{" P_OK "},\"models\":{" M_OK "},\"transport\":{\"max_connections\":1e999}}",
         "transport.max_connections: out of range (expected 1 to 1024)"},
        {"{\"providers\":{" P_OK "},\"models\":{" M_OK "},\"transport\":{\"max_response_bytes\":"
         "1e19}}",
         "transport.max_response_bytes: out of range (expected 1024 to 1073741824)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        llmux *gw = (llmux *)1;
        char err[512];
        int rc = llmux_open(&gw, cases[i].json, err, sizeof err);
        if (rc != LLMUX_ERR_CONFIG || strcmp(err, cases[i].message) != 0)
            fail_msg("case %zu: got %d \"%s\"", i, rc, err);
        assert_null(strstr(err, "SECRET"));
        assert_null(gw);
    }
}

static void test_errbuf_is_truncated_safely(void **state)
{
    llmux *gw;
    char err[8];
    memset(err, 'x', sizeof err);
    assert_int_equal(llmux_open(&gw, "[]", err, sizeof err), LLMUX_ERR_CONFIG);
    assert_int_equal(err[7], '\0');
    assert_int_equal(llmux_open(&gw, "[]", NULL, 0), LLMUX_ERR_CONFIG);
}

/* An unset key variable is a warning the application can read at open, and
 * an error in strict mode (issue 25.2). */
static void test_unset_key_warns_and_strict_refuses(void **state)
{
    unsetenv("LLMUX_TEST_UNSET_KEY");
    setenv("LLMUX_TEST_EMPTY_KEY", "", 1);
#define UNSET_CFG(extra)                                                                   \
    "{\"providers\":{\"p\":{\"type\":\"openai\",\"base_url\":\"http://127.0.0.1:9/v1\","            \
    "\"api_key_env\":\"LLMUX_TEST_UNSET_KEY\"},\"q\":{\"type\":\"openai\","                         \
    "\"base_url\":\"http://127.0.0.1:9/v1\",\"api_key_env\":\"LLMUX_TEST_EMPTY_KEY\"}},"           \
    "\"models\":{\"m\":{\"targets\":[{\"provider\":\"p\",\"model\":\"x\"}]}}" extra "}"
    char json[1024], err[512];
    snprintf(json, sizeof json, "%s", UNSET_CFG(""));
    llmux *gw = NULL;
    assert_int_equal(llmux_open(&gw, json, err, sizeof err), LLMUX_OK);
    char *w = NULL;
    assert_int_equal(llmux_warnings_json(gw, &w), LLMUX_OK);
    assert_string_equal(w, "[\"providers.p.api_key_env: the environment variable LLMUX_TEST_UNSET_KEY "
                           "is not set: calls to this provider fail (auth) and fall back to the "
                           "next target\",\"providers.q.api_key_env: the environment variable "
                           "LLMUX_TEST_EMPTY_KEY is empty: calls to this provider fail (auth) and "
                           "fall back to the next target\"]");
    llmux_free(w);
    assert_int_equal(llmux_warnings_json(gw, NULL), LLMUX_ERR_INVALID_ARGUMENT);
    assert_int_equal(llmux_warnings_json(NULL, &w), LLMUX_ERR_INVALID_ARGUMENT);
    assert_null(w);
    llmux_close(gw);

    snprintf(json, sizeof json, "%s", UNSET_CFG(",\"strict\":true"));
    assert_int_equal(llmux_open(&gw, json, err, sizeof err), LLMUX_ERR_CONFIG);
    assert_null(gw);
    assert_string_equal(err, "providers.p.api_key_env: the environment variable LLMUX_TEST_UNSET_KEY "
                             "is not set: calls to this provider fail (auth) and fall back to the "
                             "next target (refused: \"strict\" is true)");
    /* with the variables set, strict opens and there is nothing to say */
    setenv("LLMUX_TEST_UNSET_KEY", "sk-a", 1);
    setenv("LLMUX_TEST_EMPTY_KEY", "sk-b", 1);
    assert_int_equal(llmux_open(&gw, json, err, sizeof err), LLMUX_OK);
    assert_int_equal(llmux_warnings_json(gw, &w), LLMUX_OK);
    assert_string_equal(w, "[]");
    llmux_free(w);
    llmux_close(gw);
    unsetenv("LLMUX_TEST_UNSET_KEY");
    unsetenv("LLMUX_TEST_EMPTY_KEY");
    snprintf(json, sizeof json, "%s", UNSET_CFG(",\"strict\":1"));
    assert_int_equal(llmux_open(&gw, json, err, sizeof err), LLMUX_ERR_CONFIG);
    assert_string_equal(err, "strict: expected true or false, got a number");
}

static void test_open_argument_errors(void **state)
{
    llmux *gw;
    char err[128];
    assert_int_equal(llmux_open(NULL, "{}", err, sizeof err), LLMUX_ERR_INVALID_ARGUMENT);
    assert_int_equal(llmux_open(&gw, NULL, err, sizeof err), LLMUX_ERR_INVALID_ARGUMENT);
    assert_string_equal(err, "config_json is NULL");
    assert_int_equal(llmux_open_file(&gw, "/nonexistent/llmux.json", err, sizeof err),
                     LLMUX_ERR_IO);
    assert_string_equal(err, "/nonexistent/llmux.json: No such file or directory");
    assert_null(gw);
}

static void test_open_file(void **state)
{
    char path[] = "/tmp/llmux-test-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("{\"providers\":{" P_OK "},\"models\":{\"m\":{\"targets\":[{\"provider\":\"nope\","
          "\"model\":\"x\"}]}}}",
          f);
    fclose(f);
    llmux *gw;
    char err[512];
    assert_int_equal(llmux_open_file(&gw, path, err, sizeof err), LLMUX_ERR_CONFIG);
    char expect[600];
    snprintf(expect, sizeof expect,
             "%s: models.m.targets[0].provider: no provider named \"nope\" in \"providers\"", path);
    assert_string_equal(err, expect);

    f = fopen(path, "w");
    fputs("{\"providers\":{" P_OK "},\"models\":{" M_OK "}}\n", f);
    fclose(f);
    assert_int_equal(llmux_open_file(&gw, path, err, sizeof err), LLMUX_OK);
    llmux_close(gw);
    unlink(path);
}

static void test_strerror_and_version(void **state)
{
    assert_string_equal(llmux_strerror(LLMUX_OK), "ok");
    assert_string_equal(llmux_strerror(LLMUX_ERR_RATE_LIMIT), "rate limited");
    assert_string_equal(llmux_strerror(LLMUX_ERR_INTERNAL), "internal error");
    assert_string_equal(llmux_strerror(-1000), "unknown status");
    assert_string_equal(llmux_strerror(5), "unknown status");
    assert_string_equal(llmux_version(), LLMUX_VERSION_STRING);
    llmux_close(NULL); /* NULL-safe frees */
    llmux_result_free(NULL);
    llmux_free(NULL);
    assert_int_equal(llmux_result_status(NULL), LLMUX_ERR_INVALID_ARGUMENT);
    assert_string_equal(llmux_result_json(NULL), "");
    assert_true(llmux_result_cost_usd(NULL) < 0);
    llmux_call_options o;
    assert_int_equal(llmux_call_options_init(&o, 99), LLMUX_ERR_INVALID_ARGUMENT);
    assert_int_equal(llmux_call_options_init(NULL, 1), LLMUX_ERR_INVALID_ARGUMENT);
    assert_int_equal(llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION), LLMUX_OK);
    assert_int_equal(o.version, LLMUX_CALL_OPTIONS_VERSION);
    assert_null(o.key);
    assert_int_equal(o.timeout_ms, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_config_loads),
        cmocka_unit_test(test_full_config_loads),
        cmocka_unit_test(test_many_aliases_index),
        cmocka_unit_test(test_many_aliases_open_fast),
        cmocka_unit_test(test_missing_key_env_is_not_fatal),
        cmocka_unit_test(test_invalid_configs),
        cmocka_unit_test(test_config_traps),
        cmocka_unit_test(test_errbuf_is_truncated_safely),
        cmocka_unit_test(test_open_argument_errors),
        cmocka_unit_test(test_unset_key_warns_and_strict_refuses),
        cmocka_unit_test(test_open_file),
        cmocka_unit_test(test_strerror_and_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
