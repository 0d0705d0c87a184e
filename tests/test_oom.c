/* Out of memory, SQLite style: run a whole session (open, a call that falls
 * back, a streamed call, an unknown model, the trace, spend, close) failing
 * the 1st allocation, then the 2nd, and so on, until a run sees no failure.
 * Every run must end cleanly: no crash, results or LLMUX_ERR_NO_MEMORY, and
 * (under ASan, or valgrind) no leak. A second session does the same over a
 * Bedrock target (translation, SigV4, event streams, a classified error).
 * llmux's own allocations are wrapped with
 * the linker's --wrap; cJSON's go through its hooks. */
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

#include "llmux.h"
#include "sim_harness.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);

static long fail_at = -1; /* the allocation number to fail; -1 = none */
static long counted;
static int failed_one;

static int should_fail(void)
{
    if (fail_at < 0)
        return 0;
    if (++counted == fail_at) {
        failed_one = 1;
        return 1;
    }
    return 0;
}

void *__wrap_malloc(size_t n) { return should_fail() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t m) { return should_fail() ? NULL : __real_calloc(n, m); }
void *__wrap_realloc(void *p, size_t n) { return should_fail() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return should_fail() ? NULL : __real_strdup(s); }
static void *json_malloc(size_t n) { return __wrap_malloc(n); }

static sim SIM;

static int on_chunk(const char *json, size_t len, void *payload)
{
    return 0;
}

static void check_result(int rc, llmux_result *r)
{
    if (!r) {
        assert_int_equal(rc, LLMUX_ERR_NO_MEMORY);
        return;
    }
    assert_int_equal(rc, llmux_result_status(r));
    /* accessors never return NULL, whatever failed */
    assert_non_null(llmux_result_json(r));
    assert_non_null(llmux_result_error(r));
    assert_non_null(llmux_result_trace_json(r));
    assert_non_null(llmux_result_provider(r));
    llmux_result_free(r);
}

/* The gateway, or NULL when opening it ran out of memory (checked). */
static llmux *open_or_oom(const char *cfg)
{
    llmux *gw = NULL;
    char err[256];
    int rc = llmux_open(&gw, cfg, err, sizeof err);
    if (rc != LLMUX_OK) {
        assert_int_equal(rc, LLMUX_ERR_NO_MEMORY);
        assert_null(gw);
    }
    return gw;
}

/* Runs session once to warm up, then failing allocation 1, 2, ... until a
 * run needs no more; returns the number of allocations failed in turn. */
static long fail_each(void (*session_fn)(const char *), const char *cfg)
{
    cJSON_Hooks hooks = {json_malloc, free};
    cJSON_InitHooks(&hooks);
    session_fn(cfg); /* warm up: libcurl's and OpenSSL's one-time set-up happens here */
    long runs = 0;
    for (long n = 1;; n++) {
        fail_at = n;
        counted = 0;
        failed_one = 0;
        session_fn(cfg);
        runs++;
        if (!failed_one)
            break; /* the session needed fewer than n allocations */
        if (n > 100000)
            fail_msg("the session does not end");
    }
    fail_at = -1;
    cJSON_InitHooks(NULL);
    return runs - 1;
}

static void session(const char *cfg)
{
    llmux *gw = open_or_oom(cfg);
    if (!gw)
        return;
    int rc;
    llmux_result *r = NULL;
    const char *req = "{\"model\":\"two\",\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"}]}";
    rc = llmux_chat(gw, req, NULL, &r);
    check_result(rc, r);
    llmux_call_options o;
    llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION);
    o.task = "t";
    o.key = "k";
    rc = llmux_chat_stream(gw, "{\"model\":\"one\",\"messages\":[{\"role\":\"user\",\"content\":\"a b c\"}]}",
                           &o, on_chunk, NULL, &r);
    check_result(rc, r);
    rc = llmux_chat(gw, "{\"model\":\"nope\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", NULL, &r);
    check_result(rc, r);
    char *spend = NULL;
    rc = llmux_spend_json(gw, "task", &spend);
    assert_true(rc == LLMUX_OK || rc == LLMUX_ERR_NO_MEMORY);
    llmux_free(spend);
    if (strstr(cfg, "\"journal\"")) { /* the durable ledger's reads and its compaction */
        rc = llmux_spend_period_json(gw, "task", "2000-01-01", NULL, &spend);
        assert_true(rc == LLMUX_OK || rc == LLMUX_ERR_NO_MEMORY);
        llmux_free(spend);
        rc = llmux_ledger_export(gw, "csv", NULL, NULL, &spend);
        assert_true(rc == LLMUX_OK || rc == LLMUX_ERR_NO_MEMORY);
        llmux_free(spend);
        rc = llmux_ledger_compact(gw);
        assert_true(rc == LLMUX_OK || rc == LLMUX_ERR_NO_MEMORY);
    }
    llmux_close(gw);
}

static void every_allocation_failure(const char *extra)
{
    sim_set(&SIM, "bad", "{\"faults\":[{\"type\":\"status\",\"status\":503,\"count\":-1}]}");
    const char *deps[] = {"good", "bad", NULL};
    char *cfg = sim_config(&SIM, deps,
                           "{\"one\":{\"targets\":[{\"provider\":\"good\",\"model\":\"g\"}]},"
                           "\"two\":{\"targets\":[{\"provider\":\"bad\",\"model\":\"b\"},"
                           "{\"provider\":\"good\",\"model\":\"g\"}]}}",
                           extra);
    long failed = fail_each(session, cfg);
    printf("failed each of %ld allocations in turn\n", failed);
    assert_true(failed > 50);
    free(cfg);
}

static void test_every_allocation_failure_is_clean(void **state)
{
    every_allocation_failure(NULL);
}

/* The same with the ledger journal: open replays it, calls append, then the
 * period report, the export and compaction. */
static void test_every_allocation_failure_with_a_journal_is_clean(void **state)
{
    char path[64], extra[160];
    snprintf(path, sizeof path, "/tmp/llmux-oom-%d.journal", (int)getpid());
    unlink(path);
    snprintf(extra, sizeof extra, "\"ledger\":{\"journal\":\"%s\",\"fsync\":\"never\"}", path);
    every_allocation_failure(extra);
    unlink(path);
}

/* ---- Bedrock: translation both ways, SigV4, the event-stream decoder */

static void bedrock_session(const char *cfg)
{
    llmux *gw = open_or_oom(cfg);
    if (!gw)
        return;
    int rc;
    static const char tools[] =
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}],"
        "\"tool_choice\":\"required\"";
    llmux_result *r = NULL;
    rc = llmux_chat(gw, "{\"model\":\"br\",\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
                        "{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"tool_calls\":"
                        "[{\"id\":\"t\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
                        "{\"role\":\"tool\",\"tool_call_id\":\"t\",\"content\":\"r\"}],\"stop\":\"x\"}",
                    NULL, &r);
    check_result(rc, r);
    rc = llmux_chat_stream(gw, "{\"model\":\"br\",\"messages\":[{\"role\":\"user\",\"content\":\"a b\"}],"
                               "\"max_tokens\":9}", NULL, on_chunk, NULL, &r);
    check_result(rc, r);
    char req[512];
    snprintf(req, sizeof req, "{\"model\":\"br\",\"messages\":[{\"role\":\"user\",\"content\":\"c\"}],%s}", tools);
    rc = llmux_chat_stream(gw, req, NULL, on_chunk, NULL, &r);
    check_result(rc, r);
    snprintf(req, sizeof req, "{\"model\":\"bad\",\"messages\":[{\"role\":\"user\",\"content\":\"c\"}]}");
    rc = llmux_chat(gw, req, NULL, &r); /* the throttled deployment: an error classified */
    check_result(rc, r);
    llmux_close(gw);
}

static void test_bedrock_allocation_failures_are_clean(void **state)
{
    setenv("LLMUX_OOM_AWS_AK", "AKIDOOM", 1);
    setenv("LLMUX_OOM_AWS_SK", "llmux-sim-bedrock-secret", 1);
    sim_set(&SIM, "brbad", "{\"faults\":[{\"type\":\"status\",\"status\":429,\"count\":-1}]}");
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"providers\":{\"br\":{\"type\":\"bedrock\",\"region\":\"us-east-1\",\"base_url\":\"%s/br\","
             "\"access_key_id_env\":\"LLMUX_OOM_AWS_AK\",\"secret_access_key_env\":\"LLMUX_OOM_AWS_SK\"},"
             "\"bad\":{\"type\":\"bedrock\",\"region\":\"us-east-1\",\"base_url\":\"%s/brbad\","
             "\"access_key_id_env\":\"LLMUX_OOM_AWS_AK\",\"secret_access_key_env\":\"LLMUX_OOM_AWS_SK\"}},"
             "\"models\":{\"br\":{\"targets\":[{\"provider\":\"br\",\"model\":\"m:1\"}]},"
             "\"bad\":{\"targets\":[{\"provider\":\"bad\",\"model\":\"m:1\"}]}}}",
             SIM.url, SIM.url);
    long failed = fail_each(bedrock_session, cfg);
    printf("bedrock: failed each of %ld allocations in turn\n", failed);
    assert_true(failed > 50);
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
        cmocka_unit_test(test_every_allocation_failure_is_clean),
        cmocka_unit_test(test_every_allocation_failure_with_a_journal_is_clean),
        cmocka_unit_test(test_bedrock_allocation_failures_are_clean),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
