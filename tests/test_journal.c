/* The durable ledger (issue 20, items 4-5): journal records and their parser
 * (against malformed input), torn and corrupt tails cut at every byte, replay,
 * compaction, export and the period report, the fsync policies, and a child
 * process killed with SIGKILL mid-load that loses no acknowledged call. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "gateway.h"
#include "core/crc32.h"
#include "ledger/journal.h"
#include "llmux.h"
#include "sim_harness.h"

static sim SIM;
static char DIR_[64];
static int counter;

static void path_for(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s-%d.journal", DIR_, name, ++counter);
    unlink(out);
}

static lx_jrec rec(int64_t t, const char *key, const char *wf, int64_t cost)
{
    lx_jrec r = {0, t, key, wf, "task", "gpt-x", "prov", 1, 0, NULL, NULL, 1, 10, 5, 2, 0, 1, cost};
    return r;
}

static char *line_of(const lx_jrec *r)
{
    lx_buf b = LX_BUF_INIT;
    assert_int_equal(llmux__jrec_line(&b, r), 0);
    return llmux__buf_steal(&b);
}

/* ------------------------------------------------------------ records */

static void test_record_round_trip(void **state)
{
    lx_jrec r = rec(1764905460123LL, "key-0123456789abcdef", "w\"q\\x\n\t\x01 é 😀 ,=", 12345);
    r.model = NULL;
    r.estimated = 1;
    char *line = line_of(&r);
    size_t n = strlen(line);
    assert_true(n > 10 && line[n - 1] == '\n');
    assert_non_null(strstr(line, "\"time\":\"2025-12-05T03:31:00.123Z\""));
    lx_jrec p;
    line[n - 1] = '\0';
    assert_int_equal(llmux__jrec_parse(line, n - 1, &p), 0);
    assert_int_equal(p.summary, 0);
    assert_int_equal(p.t_ms, 1764905460123LL);
    assert_string_equal(p.key, "key-0123456789abcdef");
    assert_string_equal(p.workflow, "w\"q\\x\n\t\x01 é 😀 ,=");
    assert_null(p.model);
    assert_string_equal(p.provider, "prov");
    assert_int_equal(p.ok, 1);
    assert_int_equal(p.estimated, 1);
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.prompt_tokens, 10);
    assert_int_equal(p.completion_tokens, 5);
    assert_int_equal(p.cached_tokens, 2);
    assert_int_equal(p.reasoning_tokens, 1);
    assert_int_equal(p.cost_nusd, 12345);
    free(line);
    /* unpriced is null, and comes back -1 */
    r = rec(0, NULL, NULL, -1);
    line = line_of(&r);
    assert_non_null(strstr(line, "\"cost_nusd\":null}"));
    assert_non_null(strstr(line, "\"key\":null"));
    n = strlen(line);
    line[n - 1] = '\0';
    assert_int_equal(llmux__jrec_parse(line, n - 1, &p), 0);
    assert_int_equal(p.cost_nusd, -1);
    assert_null(p.key);
    free(line);
}

/* A line with a correct CRC over any JSON text. */
static char *signed_line(const char *json)
{
    size_t n = strlen(json);
    char *line = malloc(n + 10);
    snprintf(line, n + 10, "%08x %s", llmux__crc32(0, json, n), json);
    return line;
}

static int parses(const char *json)
{
    char *line = signed_line(json);
    lx_jrec r;
    int rc = llmux__jrec_parse(line, strlen(line), &r);
    free(line);
    return rc;
}

static void test_parser_refuses_malformed(void **state)
{
    assert_int_equal(parses("{\"type\":\"call\",\"t\":5,\"calls\":1}"), 0);
    assert_int_equal(parses("{\"type\":\"summary\",\"t\":5,\"calls\":7,\"future\":\"x\"}"), 0);
    const char *bad[] = {
        "",
        "{}",
        "{\"type\":\"call\",\"t\":5}",                      /* no calls */
        "{\"type\":\"call\",\"calls\":1}",                  /* no time */
        "{\"type\":\"call\",\"t\":5,\"calls\":2}",          /* a call is one call */
        "{\"type\":\"summary\",\"t\":5,\"calls\":0}",
        "{\"type\":\"other\",\"t\":5,\"calls\":1}",
        "{\"type\":\"call\",\"t\":5,\"calls\":1,}",
        "{\"type\":\"call\",\"t\":5,\"calls\":1}x",
        "{\"type\":\"call\",\"t\":05,\"calls\":1}",
        "{\"type\":\"call\",\"t\":5,\"calls\":1,\"prompt_tokens\":-1}",
        "{\"type\":\"call\",\"t\":5,\"calls\":1,\"prompt_tokens\":99999999999999999999}",
        "{\"type\":\"call\",\"t\":5,\"calls\":1,\"ok\":1}",
        "{\"type\":\"call\",\"t\":5,\"calls\":1,\"key\":5}",
        "{\"type\":\"call\",\"t\":5,\"calls\":1,\"key\":\"\\u0000\"}",
        "{\"type\":\"call\",\"t\":5,\"calls\":1,\"key\":\"\\ud800\"}",
        "{\"type\":\"call\",\"t\":5,\"calls\":1,\"key\":\"\\udc00\\ud800\"}",
        "{\"type\":\"call\",\"t\":5,\"calls\":1,\"key\":\"\\x\"}",
        "{\"type\":\"call\",\"t\":5,\"calls\":1,\"key\":\"a\tb\"}",
        "{\"type\":\"call\",\"t\":5,\"calls\":1,\"key\":\"open}",
        "{\"type\":\"call\",\"t\":5,\"calls\":1,\"cost_nusd\":tru}",
        "{\"type\":\"call\" \"t\":5,\"calls\":1}",
        "[\"type\",\"call\"]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (parses(bad[i]) == 0)
            fail_msg("accepted: %s", bad[i]);
    /* every prefix of a good record is refused (its CRC recomputed, so the
     * parser itself must see the cut) */
    lx_jrec r = rec(1, "k", "w", 3);
    char *line = line_of(&r);
    size_t n = strlen(line) - 1;
    for (size_t cut = 0; cut < n - 9; cut++) {
        char json[1024];
        memcpy(json, line + 9, cut);
        json[cut] = '\0';
        if (parses(json) == 0)
            fail_msg("accepted a prefix of %zu bytes", cut);
    }
    /* any one byte changed fails the CRC */
    for (size_t i = 0; i < n; i++) {
        char copy[1024];
        memcpy(copy, line, n);
        copy[n] = '\0';
        copy[i] ^= 0x20;
        lx_jrec p;
        if (llmux__jrec_parse(copy, n, &p) == 0)
            fail_msg("accepted a change at byte %zu", i);
    }
    free(line);
}

static void test_utc_times(void **state)
{
    assert_int_equal(llmux__utc_parse("1970-01-01"), 0);
    assert_int_equal(llmux__utc_parse("2026-12-05"), 1796428800000LL);
    assert_int_equal(llmux__utc_parse("2026-12-05T03:51Z"), 1796428800000LL + 13860000);
    assert_int_equal(llmux__utc_parse("2026-12-05T03:51:07.5Z"), 1796428800000LL + 13867500);
    assert_int_equal(llmux__utc_parse("2024-02-29T00:00:00Z"), 1709164800000LL);
    const char *bad[] = {"", "2026", "2026-13-01", "2026-02-29", "2026-12-05T", "2026-12-05T03:51",
                         "2026-12-05T24:00Z", "2026-12-05 03:51Z", "2026-12-05T03:51:07.Z",
                         "2026-12-05T03:51+01:00", "2026-12-05x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(llmux__utc_parse(bad[i]), -1);
    char out[32];
    llmux__utc_format(1796428800000LL + 13867500, out);
    assert_string_equal(out, "2026-12-05T03:51:07.500Z");
}

static void test_csv_quoting(void **state)
{
    lx_jrec r = rec(0, "key-a", "a,\"b\"", 7);
    r.task = "=cmd()";
    r.model = NULL;
    lx_buf b = LX_BUF_INIT;
    assert_int_equal(llmux__jrec_csv(&b, &r), 0);
    assert_string_equal(b.data, "call,1970-01-01T00:00:00.000Z,key-a,\"a,\"\"b\"\"\",\"'=cmd()\",,"
                                "prov,,,true,false,1,10,5,2,0,1,7\r\n");
    llmux__buf_free(&b);
}

/* --------------------------------------------- files: replay and tails */

static void write_file(const char *path, const char *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) ? -1 : (long)sb.st_size;
}

static cJSON *report(lx_journal *j)
{
    char *out = NULL;
    lx_err err = {0};
    assert_int_equal(llmux__journal_store_ops.report(j, NULL, &out, &err), LLMUX_OK);
    cJSON *t = cJSON_Parse(out);
    free(out);
    assert_non_null(t);
    return t;
}

static int64_t total(cJSON *rep, const char *field)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(rep, "total"), field);
    return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
}

static char *warnings_of(lx_journal *j)
{
    lx_buf b = LX_BUF_INIT;
    int first = 1;
    assert_int_equal(llmux__journal_warnings(j, &b, &first), 0);
    llmux__buf_puts(&b, "");
    return llmux__buf_steal(&b);
}

static lx_journal *open_j(const char *path, int policy, long compact)
{
    lx_journal_options o = {path, policy, 50, compact, 1000};
    lx_journal *j = NULL;
    lx_err err = {0};
    if (llmux__journal_open(&j, &o, &err))
        fail_msg("open %s: %s", path, err.msg);
    return j;
}

/* Every cut of a three-record file replays the whole records before it,
 * truncates the rest and says so. */
static void test_torn_tail_at_every_byte(void **state)
{
    char path[128];
    path_for(path, sizeof path, "torn");
    lx_buf b = LX_BUF_INIT;
    size_t ends[3];
    for (int i = 0; i < 3; i++) {
        lx_jrec r = rec(1000 + i, "key-k", "wf", 100 * (i + 1));
        assert_int_equal(llmux__jrec_line(&b, &r), 0);
        ends[i] = b.len;
    }
    for (size_t cut = 0; cut <= b.len; cut++) {
        write_file(path, b.data, cut);
        int whole = (cut >= ends[0]) + (cut >= ends[1]) + (cut >= ends[2]);
        size_t keep = whole ? ends[whole - 1] : 0;
        lx_journal *j = open_j(path, LX_FSYNC_NEVER, 0);
        cJSON *rep = report(j);
        assert_int_equal(total(rep, "calls"), whole);
        int64_t cost = whole ? 100 * whole * (whole + 1) / 2 : -1; /* no priced call: null */
        assert_int_equal(total(rep, "cost_nusd"), cost);
        cJSON_Delete(rep);
        char *w = warnings_of(j);
        if (cut == keep)
            assert_string_equal(w, "");
        else
            assert_non_null(strstr(w, "dropped a torn or corrupt tail"));
        free(w);
        llmux__journal_store_ops.free(j);
        assert_int_equal(file_size(path), (long)keep);
    }
    llmux__buf_free(&b);
    unlink(path);
}

static void test_corrupt_middle_record_is_skipped(void **state)
{
    char path[128];
    path_for(path, sizeof path, "corrupt");
    lx_buf b = LX_BUF_INIT;
    for (int i = 0; i < 3; i++) {
        lx_jrec r = rec(1000 + i, "key-k", "wf", 1);
        llmux__jrec_line(&b, &r);
    }
    size_t mid = b.len / 2;
    b.data[mid] = b.data[mid] == 'x' ? 'y' : 'x';
    write_file(path, b.data, b.len);
    lx_journal *j = open_j(path, LX_FSYNC_NEVER, 0);
    cJSON *rep = report(j);
    assert_int_equal(total(rep, "calls"), 2);
    cJSON_Delete(rep);
    char *w = warnings_of(j);
    assert_non_null(strstr(w, "skipped 1 corrupt records among good ones"));
    free(w);
    llmux__journal_store_ops.free(j);
    assert_int_equal(file_size(path), (long)b.len); /* the good tail is kept */
    llmux__buf_free(&b);
    unlink(path);
}

/* A charge's team and alias are written, replayed and kept by compaction:
 * the spend report by team and by alias is the same after a reopen and after
 * compacting. */
static char *report_by(lx_journal *j, const char *group_by)
{
    char *out = NULL;
    lx_err err = {0};
    assert_int_equal(llmux__journal_store_ops.report(j, group_by, &out, &err), LLMUX_OK);
    return out;
}

/* The same rows and total, in any order (compaction sorts the records). */
static int same_rows(const char *x, const char *y)
{
    cJSON *a = cJSON_Parse(x), *b = cJSON_Parse(y);
    const cJSON *ra = cJSON_GetObjectItem(a, "rows"), *rb = cJSON_GetObjectItem(b, "rows");
    int same = cJSON_GetArraySize(ra) == cJSON_GetArraySize(rb) && cJSON_GetArraySize(ra) > 0 &&
               cJSON_Compare(cJSON_GetObjectItem(a, "total"), cJSON_GetObjectItem(b, "total"), 1);
    const cJSON *row;
    cJSON_ArrayForEach(row, ra) {
        int found = 0;
        const cJSON *other;
        cJSON_ArrayForEach(other, rb) found |= cJSON_Compare(row, other, 1);
        same &= found;
    }
    if (!same)
        fprintf(stderr, "rows differ:\n%s\n%s\n", x, y);
    cJSON_Delete(a);
    cJSON_Delete(b);
    return same;
}

static void test_team_and_alias_survive_replay_and_compaction(void **state)
{
    char path[128];
    path_for(path, sizeof path, "team");
    lx_journal *j = open_j(path, LX_FSYNC_NEVER, 0);
    static const char *const TEAMS[3] = {"red", "blue", NULL};
    static const char *const ALIASES[3] = {"fast", "smart", NULL};
    for (int i = 0; i < 12; i++) {
        lx_charge c = {"key-k", "wf", "task", "m", "p", 1, LX_USAGE_UNKNOWN, 1000 + i, 0,
                       TEAMS[i % 3], ALIASES[i % 2]};
        c.usage.prompt_tokens = 10;
        c.usage.completion_tokens = 2;
        lx_reservation res;
        lx_err err = {0};
        assert_int_equal(llmux__journal_store_ops.reserve(j, &c, &res, &err), LLMUX_OK);
        assert_int_equal(llmux__journal_store_ops.settle(j, &res, &c, &err), LLMUX_OK);
    }
    char *by_team = report_by(j, "team"), *by_alias = report_by(j, "alias");
    assert_non_null(strstr(by_team, "\"red\""));
    assert_non_null(strstr(by_alias, "\"smart\""));
    llmux__journal_store_ops.free(j);
    for (int round = 0; round < 2; round++) { /* reopened, then compacted and reopened */
        j = open_j(path, LX_FSYNC_NEVER, 0);
        if (round) {
            lx_err err = {0};
            assert_int_equal(llmux__journal_compact(j, &err), LLMUX_OK);
            llmux__journal_store_ops.free(j);
            j = open_j(path, LX_FSYNC_NEVER, 0);
        }
        char *t = report_by(j, "team"), *a = report_by(j, "alias");
        assert_true(same_rows(t, by_team));
        assert_true(same_rows(a, by_alias));
        free(t);
        free(a);
        llmux__journal_store_ops.free(j);
    }
    free(by_team);
    free(by_alias);
    unlink(path);
}

static void test_locked_against_a_second_opener(void **state)
{
    char path[128];
    path_for(path, sizeof path, "lock");
    lx_journal *j = open_j(path, LX_FSYNC_NEVER, 0);
    lx_journal_options o = {path, LX_FSYNC_NEVER, 50, 0, 1000};
    lx_journal *k = NULL;
    lx_err err = {0};
    assert_int_equal(llmux__journal_open(&k, &o, &err), LLMUX_ERR_IO);
    assert_non_null(strstr(err.msg, "in use by another gateway"));
    llmux__journal_store_ops.free(j);
    unlink(path);
}

/* ------------------------------------------------- config and gateway */

static const char *open_err(const char *ledger)
{
    static char err[512];
    char cfg[2048];
    snprintf(cfg, sizeof cfg,
             "{\"providers\":{\"p\":{\"type\":\"openai\",\"base_url\":\"http://127.0.0.1:9/v1\"}},"
             "\"models\":{\"m\":{\"targets\":[{\"provider\":\"p\",\"model\":\"x\"}]}},"
             "\"ledger\":%s}",
             ledger);
    llmux *gw = NULL;
    err[0] = '\0';
    if (llmux_open(&gw, cfg, err, sizeof err) == LLMUX_OK) {
        llmux_close(gw);
        return "";
    }
    return err;
}

static void test_config(void **state)
{
    assert_string_equal(open_err("{\"journal\":1}"), "ledger.journal: expected a string, got a number");
    assert_string_equal(open_err("{\"journal\":\"\"}"), "ledger.journal: must not be empty");
    assert_string_equal(open_err("{\"journal\":\"/tmp/x\",\"fsync\":\"sometimes\"}"),
                        "ledger.fsync: \"sometimes\" is not one of: every_call, interval, never");
    assert_string_equal(open_err("{\"fsync\":\"never\"}"),
                        "ledger.journal: required by the journal's other settings");
    assert_string_equal(open_err("{\"journal\":\"/tmp/x\",\"fsync_interval_ms\":0}"),
                        "ledger.fsync_interval_ms: out of range (expected 1 to 60000)");
    assert_string_equal(open_err("{\"journal\":\"/tmp/x\",\"compact_bytes\":100}"),
                        "ledger.compact_bytes: out of range (expected 4096 to 1099511627776)");
    assert_string_equal(open_err("{\"journal\":\"/nonexistent/dir/j\"}"),
                        "ledger.journal: /nonexistent/dir/j: No such file or directory");
    assert_string_equal(open_err("{\"jornal\":\"x\"}"),
                        "ledger.jornal: unknown key (expected one of: max_rows, journal, fsync, "
                        "fsync_interval_ms, compact_bytes)");
    /* without a journal there is nothing to export */
    llmux *gw = NULL;
    char err[256];
    assert_int_equal(llmux_open(&gw,
                                "{\"providers\":{\"p\":{\"type\":\"openai\",\"base_url\":"
                                "\"http://127.0.0.1:9/v1\"}},\"models\":{\"m\":{\"targets\":"
                                "[{\"provider\":\"p\",\"model\":\"x\"}]}}}",
                                err, sizeof err),
                     LLMUX_OK);
    char *out = (char *)1;
    assert_int_equal(llmux_ledger_export(gw, "jsonl", NULL, NULL, &out), LLMUX_ERR_UNSUPPORTED);
    assert_null(out);
    assert_int_equal(llmux_spend_period_json(gw, NULL, "2026-01-01", NULL, &out),
                     LLMUX_ERR_UNSUPPORTED);
    assert_int_equal(llmux_spend_period_json(gw, NULL, NULL, NULL, &out), LLMUX_OK);
    llmux_free(out);
    assert_int_equal(llmux_ledger_compact(gw), LLMUX_ERR_UNSUPPORTED);
    llmux_close(gw);
}

/* A gateway with alias "m" on deployment dep, model m-a priced, and the
 * config's further members `ledger_etc` (a journal among them). */
static llmux *open_with(const char *dep, const char *ledger_etc)
{
    const char *deps[] = {dep, NULL};
    char models[256], extra[1200];
    snprintf(models, sizeof models, "{\"m\":{\"targets\":[{\"provider\":\"%s\",\"model\":\"m-a\"}]}}",
             dep);
    snprintf(extra, sizeof extra, "\"prices\":{\"m-a\":{\"input_mtok\":1.25,\"output_mtok\":3}},%s",
             ledger_etc);
    char *cfg = sim_config(&SIM, deps, models, extra);
    llmux *gw = NULL;
    char err[512];
    if (llmux_open(&gw, cfg, err, sizeof err) != LLMUX_OK)
        fail_msg("open: %s\n%s", err, cfg);
    free(cfg);
    return gw;
}

static llmux *open_gw(const char *dep, const char *path, const char *policy, long compact)
{
    char ledger[512];
    snprintf(ledger, sizeof ledger,
             "\"ledger\":{\"journal\":\"%s\",\"fsync\":\"%s\",\"fsync_interval_ms\":50,"
             "\"compact_bytes\":%ld}",
             path, policy, compact);
    return open_with(dep, ledger);
}

static const char REQ[] = "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}]}";

static int64_t call(llmux *gw, const char *workflow)
{
    llmux_call_options o;
    llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION);
    o.workflow = workflow;
    llmux_result *r = NULL;
    assert_int_equal(llmux_chat(gw, REQ, &o, &r), LLMUX_OK);
    int64_t c = r->cost_nusd;
    llmux_result_free(r);
    return c;
}

static char *spend(llmux *gw, const char *group_by)
{
    char *out = NULL;
    assert_int_equal(llmux_spend_json(gw, group_by, &out), LLMUX_OK);
    return out;
}

/* Two spend reports with the same rows, in any order, and the same total. */
static void assert_same_report(const char *x, const char *y)
{
    cJSON *a = cJSON_Parse(x), *b = cJSON_Parse(y);
    assert_non_null(a);
    assert_non_null(b);
    const cJSON *ra = cJSON_GetObjectItem(a, "rows"), *rb = cJSON_GetObjectItem(b, "rows");
    assert_int_equal(cJSON_GetArraySize(ra), cJSON_GetArraySize(rb));
    const cJSON *row, *other;
    cJSON_ArrayForEach(row, ra)
    {
        int found = 0;
        cJSON_ArrayForEach(other, rb) found += cJSON_Compare(row, other, 1);
        if (found != 1)
            fail_msg("row %s not in %s", cJSON_PrintUnformatted(row), y);
    }
    assert_true(cJSON_Compare(cJSON_GetObjectItem(a, "total"), cJSON_GetObjectItem(b, "total"), 1));
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* Budgets keep counting across restarts: the journal's spend in the current
 * periods is counted into the gateway's, the team's and the key's budgets at
 * open (the key's when it is added again at run time), thresholds already
 * passed do not fire again, and a budget spent before the restart refuses. */
static int alerts_seen;
static void on_alert(const char *json, void *payload)
{
    (void)json;
    (void)payload;
    alerts_seen++;
}

static llmux *open_budgeted(const char *dep, const char *path, const char *usd)
{
    char etc[1024], err[512];
    snprintf(etc, sizeof etc,
             "\"ledger\":{\"journal\":\"%s\",\"fsync\":\"never\"},"
             "\"budgets\":[{\"usd\":%s,\"period\":\"month\",\"alert_at\":[0.000001]}],"
             "\"teams\":{\"t\":{\"budgets\":[{\"usd\":%s,\"period\":\"day\"}]}}",
             path, usd, usd);
    llmux *gw = open_with(dep, etc);
    llmux_set_alert_callback(gw, on_alert, NULL);
    if (llmux_key_add(gw, "k1",
                      "{\"key\":\"journal-test-key-1\",\"team\":\"t\","
                      "\"budgets\":[{\"usd\":1,\"period\":\"total\"}]}",
                      err, sizeof err) != LLMUX_OK)
        fail_msg("key_add: %s", err);
    return gw;
}

static int keyed_call(llmux *gw, int64_t *cost)
{
    llmux_call_options o;
    llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION);
    o.key = "journal-test-key-1";
    llmux_result *r = NULL;
    int rc = llmux_chat(gw, "{\"model\":\"m\",\"max_tokens\":16,\"messages\":[{\"role\":\"user\","
                            "\"content\":\"hello\"}]}",
                        &o, &r);
    if (cost)
        *cost = rc == LLMUX_OK ? r->cost_nusd : 0;
    llmux_result_free(r);
    return rc;
}

static void test_budgets_count_across_restarts(void **state)
{
    char path[128], dep[32];
    path_for(path, sizeof path, "budget");
    snprintf(dep, sizeof dep, "jb%d", counter);
    llmux *gw = open_budgeted(dep, path, "1");
    int64_t sum = 0;
    for (int i = 0; i < 5; i++) {
        int64_t c;
        assert_int_equal(keyed_call(gw, &c), LLMUX_OK);
        sum += c;
    }
    assert_true(sum > 0);
    assert_int_equal(alerts_seen, 1); /* the gateway's tiny threshold, once */
    char *before = NULL, *after = NULL;
    assert_int_equal(llmux_budgets_json(gw, &before), LLMUX_OK);
    llmux_close(gw);

    gw = open_budgeted(dep, path, "1");
    assert_int_equal(llmux_budgets_json(gw, &after), LLMUX_OK);
    assert_string_equal(after, before); /* key, team and gateway spend, held 0 */
    char want[64];
    snprintf(want, sizeof want, "\"spent_nusd\":%lld,", (long long)sum);
    assert_non_null(strstr(after, want));
    assert_int_equal(keyed_call(gw, NULL), LLMUX_OK);
    assert_int_equal(alerts_seen, 1); /* passed before the restart: not again */
    llmux_free(after);
    llmux_close(gw);

    /* a budget the journal has already spent refuses after a restart: $0.00012
     * holds one call's reservation (35 bytes of messages and 16 output tokens:
     * 91,750 nUSD) when empty, not after the six calls' spend (6 x 8,500) */
    assert_int_equal(sum, 5 * 8500);
    gw = open_budgeted(dep, path, "0.00012");
    assert_int_equal(keyed_call(gw, NULL), LLMUX_ERR_BUDGET);
    llmux_close(gw);
    llmux_free(before);
    unlink(path);
}

static void test_replay_export_and_period(void **state)
{
    char path[128], dep[32];
    path_for(path, sizeof path, "e2e");
    snprintf(dep, sizeof dep, "j%d", counter);
    llmux *gw = open_gw(dep, path, "every_call", 1L << 30);
    int64_t sum = 0;
    for (int i = 0; i < 30; i++)
        sum += call(gw, i % 3 ? "w-a" : "w,b");
    char *before = spend(gw, "workflow");
    char *before_total = spend(gw, NULL);
    llmux_close(gw);
    gw = open_gw(dep, path, "every_call", 1L << 30);
    char *after = spend(gw, "workflow");
    assert_string_equal(after, before);
    char *w = NULL;
    assert_int_equal(llmux_warnings_json(gw, &w), LLMUX_OK);
    assert_string_equal(w, "[]");
    llmux_free(w);

    char *jl = NULL, *csv = NULL;
    assert_int_equal(llmux_ledger_export(gw, "jsonl", NULL, NULL, &jl), LLMUX_OK);
    assert_int_equal(count_lines(jl), 30);
    int64_t seen = 0;
    for (char *line = jl; *line;) {
        char *nl = strchr(line, '\n');
        *nl = '\0';
        cJSON *o = cJSON_Parse(line);
        assert_non_null(o);
        assert_string_equal(cJSON_GetObjectItem(o, "type")->valuestring, "call");
        seen += (int64_t)cJSON_GetObjectItem(o, "cost_nusd")->valuedouble;
        cJSON_Delete(o);
        line = nl + 1;
    }
    assert_int_equal(seen, sum);
    assert_int_equal(llmux_ledger_export(gw, "csv", NULL, NULL, &csv), LLMUX_OK);
    assert_int_equal(count_lines(csv), 31);
    assert_non_null(strstr(csv, ",\"w,b\",")); /* quoted */
    assert_ptr_equal(strstr(csv, "type,time,key,workflow,task,model,provider,team,alias,ok,estimated,"
                                "calls,"),
                     csv);
    llmux_free(jl);
    llmux_free(csv);
    assert_int_equal(llmux_ledger_export(gw, "xml", NULL, NULL, &csv), LLMUX_ERR_INVALID_ARGUMENT);

    /* the period: everything is today; tomorrow has nothing; a bad time is refused */
    char *p = NULL;
    assert_int_equal(llmux_spend_period_json(gw, "workflow", "2000-01-01", "2999-01-01", &p),
                     LLMUX_OK);
    assert_string_equal(p, before);
    llmux_free(p);
    assert_int_equal(llmux_spend_period_json(gw, NULL, "2999-01-01", NULL, &p), LLMUX_OK);
    cJSON *rep = cJSON_Parse(p);
    assert_int_equal(total(rep, "calls"), 0);
    cJSON_Delete(rep);
    llmux_free(p);
    assert_int_equal(llmux_spend_period_json(gw, NULL, NULL, "2000-01-01", &p), LLMUX_OK);
    rep = cJSON_Parse(p);
    assert_int_equal(total(rep, "calls"), 0);
    cJSON_Delete(rep);
    llmux_free(p);
    assert_int_equal(llmux_spend_period_json(gw, NULL, "yesterday", NULL, &p),
                     LLMUX_ERR_INVALID_ARGUMENT);
    assert_int_equal(llmux_spend_period_json(gw, "colour", "2000-01-01", NULL, &p),
                     LLMUX_ERR_INVALID_ARGUMENT);
    assert_int_equal(llmux_ledger_export(gw, "jsonl", "2999-01-01", NULL, &jl), LLMUX_OK);
    assert_string_equal(jl, "");
    llmux_free(jl);

    /* compaction keeps the totals, here and after a reopen */
    assert_int_equal(llmux_ledger_compact(gw), LLMUX_OK);
    char *compacted = spend(gw, NULL);
    assert_string_equal(compacted, before_total);
    assert_int_equal(llmux_ledger_export(gw, "jsonl", NULL, NULL, &jl), LLMUX_OK);
    assert_int_equal(count_lines(jl), 2); /* one summary per workflow */
    assert_non_null(strstr(jl, "\"type\":\"summary\""));
    llmux_free(jl);
    call(gw, "w-a");
    llmux_close(gw);
    gw = open_gw(dep, path, "every_call", 1L << 30);
    char *reopened = spend(gw, NULL);
    cJSON *a = cJSON_Parse(reopened);
    assert_int_equal(total(a, "calls"), 31);
    cJSON_Delete(a);
    llmux_close(gw);
    free(before);
    free(before_total);
    free(after);
    free(compacted);
    free(reopened);
    unlink(path);
}

/* Close gw, reopen its journal: the same report by workflow, `calls` calls
 * costing `sum` nano-dollars. */
static void close_reopen_and_check(llmux *gw, const char *dep, const char *path,
                                   const char *policy, int64_t calls, int64_t sum)
{
    char *before = spend(gw, "workflow");
    llmux_close(gw);
    gw = open_gw(dep, path, policy, 4096);
    char *after = spend(gw, "workflow");
    assert_same_report(after, before);
    cJSON *rep = cJSON_Parse(after);
    assert_int_equal(total(rep, "calls"), calls);
    assert_int_equal(total(rep, "cost_nusd"), sum);
    cJSON_Delete(rep);
    free(before);
    free(after);
    llmux_close(gw);
    unlink(path);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* The journal, its export and its compacted form name a gateway key by its
 * fingerprint only. */
static void test_no_key_material(void **state)
{
    static const char KEY[] = "sk-llmux-journal-secret-4242";
    char path[128], dep[32], fp[21];
    path_for(path, sizeof path, "keys");
    snprintf(dep, sizeof dep, "j%d", counter);
    llmux__key_fingerprint(KEY, fp);
    llmux *gw = open_gw(dep, path, "never", 1L << 30);
    llmux_call_options o;
    llmux_call_options_init(&o, LLMUX_CALL_OPTIONS_VERSION);
    o.key = KEY;
    llmux_result *r = NULL;
    assert_int_equal(llmux_chat(gw, REQ, &o, &r), LLMUX_OK);
    llmux_result_free(r);
    const char *file = slurp(path);
    assert_non_null(strstr(file, fp));
    assert_null(strstr(file, "journal-secret"));
    for (int f = 0; f < 2; f++) {
        char *out = NULL;
        assert_int_equal(llmux_ledger_export(gw, f ? "csv" : "jsonl", NULL, NULL, &out), LLMUX_OK);
        assert_non_null(strstr(out, fp));
        assert_null(strstr(out, "journal-secret"));
        llmux_free(out);
    }
    assert_int_equal(llmux_ledger_compact(gw), LLMUX_OK);
    file = slurp(path);
    assert_non_null(strstr(file, fp));
    assert_null(strstr(file, "journal-secret"));
    llmux_close(gw);
    unlink(path);
}

static void test_compaction_by_size(void **state)
{
    char path[128], dep[32];
    path_for(path, sizeof path, "size");
    snprintf(dep, sizeof dep, "j%d", counter);
    llmux *gw = open_gw(dep, path, "never", 4096);
    int64_t sum = 0;
    for (int i = 0; i < 200; i++)
        sum += call(gw, i % 2 ? "a" : "b");
    lx_journal_stats st;
    llmux__journal_stats(gw->ledger->journal, &st);
    assert_true(st.compactions > 0);
    assert_true(file_size(path) <= 4096 + 1024);
    close_reopen_and_check(gw, dep, path, "never", 200, sum);
}

/* every_call: synced before the call returns; interval: within the window;
 * never: no fsync at all. */
static void test_fsync_policies(void **state)
{
    const char *policies[] = {"every_call", "interval", "never"};
    for (int p = 0; p < 3; p++) {
        char path[128], dep[32];
        path_for(path, sizeof path, policies[p]);
        snprintf(dep, sizeof dep, "j%d", counter);
        llmux *gw = open_gw(dep, path, policies[p], 1L << 30);
        lx_journal_stats st;
        for (int i = 0; i < 20; i++) {
            call(gw, "w");
            llmux__journal_stats(gw->ledger->journal, &st);
            if (p == 0)
                assert_int_equal(st.synced, st.appended);
        }
        if (p == 1) {
            /* the window: fsync_interval_ms (50) plus the fsync itself */
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            call(gw, "w");
            do {
                nanosleep(&(struct timespec){0, 1000000}, NULL);
                llmux__journal_stats(gw->ledger->journal, &st);
                clock_gettime(CLOCK_MONOTONIC, &t1);
            } while (st.synced != st.appended && t1.tv_sec - t0.tv_sec < 5);
            long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
            assert_int_equal(st.synced, st.appended);
            if (ms > 50 + 250)
                fail_msg("interval sync took %ld ms", ms);
            assert_true(st.fsyncs < 21); /* not one per call */
        }
        if (p == 2)
            assert_int_equal(st.fsyncs, 0);
        llmux_close(gw);
        unlink(path);
    }
}

typedef struct loader {
    llmux *gw;
    int64_t sum;
} loader;

static void *load(void *arg)
{
    loader *l = arg;
    for (int i = 0; i < 300; i++)
        l->sum += call(l->gw, i % 2 ? "t-a" : "t-b");
    return NULL;
}

/* Threads settling at once, sharing fsyncs, while compaction runs under them:
 * reopened, the journal has every call and every nano-dollar. */
static void test_threads_group_commit_and_compaction(void **state)
{
    char path[128], dep[32];
    path_for(path, sizeof path, "threads");
    snprintf(dep, sizeof dep, "j%d", counter);
    llmux *gw = open_gw(dep, path, "every_call", 4096);
    loader l[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        l[i] = (loader){gw, 0};
        assert_int_equal(pthread_create(&t[i], NULL, load, &l[i]), 0);
    }
    int64_t sum = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        sum += l[i].sum;
    }
    lx_journal_stats st;
    llmux__journal_stats(gw->ledger->journal, &st);
    assert_true(st.compactions > 0);
    assert_true(st.fsyncs <= 1200);
    close_reopen_and_check(gw, dep, path, "every_call", 1200, sum);
}

/* A child makes calls under a policy and tells the parent (through a pipe)
 * each call it has back; SIGKILLed mid-load, the journal reopens with every
 * acknowledged call (and at most the one in flight besides). */
static void killed_child(const char *policy)
{
    char path[128], dep[32];
    path_for(path, sizeof path, "kill");
    snprintf(dep, sizeof dep, "j%d", counter);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        llmux *gw = open_gw(dep, path, policy, 1L << 30);
        for (;;) {
            int64_t c = call(gw, "load");
            if (write(fds[1], &c, sizeof c) != sizeof c)
                _exit(3);
        }
    }
    close(fds[1]);
    int64_t acked = 0, sum = 0, c;
    while (acked < 300 && read(fds[0], &c, sizeof c) == sizeof c) {
        acked++;
        sum += c;
    }
    kill(pid, SIGKILL);
    while (read(fds[0], &c, sizeof c) == sizeof c) {
        acked++;
        sum += c;
    }
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    close(fds[0]);
    assert_true(acked >= 300);
    llmux *gw = open_gw(dep, path, policy, 1L << 30);
    char *text = spend(gw, NULL);
    cJSON *rep = cJSON_Parse(text);
    free(text);
    int64_t calls = total(rep, "calls"), cost = total(rep, "cost_nusd");
    if (calls != acked && calls != acked + 1)
        fail_msg("%s: %lld calls acknowledged, %lld in the journal", policy, (long long)acked,
                 (long long)calls);
    if (calls == acked)
        assert_int_equal(cost, sum);
    else
        assert_int_equal(cost, sum + sum / acked); /* every call costs the same */
    cJSON_Delete(rep);
    llmux_close(gw);
    unlink(path);
}

static void test_sigkill_every_call(void **state)
{
    killed_child("every_call");
}

static void test_sigkill_interval(void **state)
{
    killed_child("interval");
}

static int setup(void **state)
{
    snprintf(DIR_, sizeof DIR_, "/tmp/llmux-journal-XXXXXX");
    if (!mkdtemp(DIR_))
        return -1;
    return sim_start(&SIM);
}

static int teardown(void **state)
{
    sim_stop(&SIM);
    rmdir(DIR_);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_round_trip),
        cmocka_unit_test(test_parser_refuses_malformed),
        cmocka_unit_test(test_utc_times),
        cmocka_unit_test(test_csv_quoting),
        cmocka_unit_test(test_torn_tail_at_every_byte),
        cmocka_unit_test(test_corrupt_middle_record_is_skipped),
        cmocka_unit_test(test_team_and_alias_survive_replay_and_compaction),
        cmocka_unit_test(test_budgets_count_across_restarts),
        cmocka_unit_test(test_locked_against_a_second_opener),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_replay_export_and_period),
        cmocka_unit_test(test_no_key_material),
        cmocka_unit_test(test_compaction_by_size),
        cmocka_unit_test(test_fsync_policies),
        cmocka_unit_test(test_threads_group_commit_and_compaction),
        cmocka_unit_test(test_sigkill_every_call),
        cmocka_unit_test(test_sigkill_interval),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
