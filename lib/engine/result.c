#include "engine/result.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/utf8.h"

llmux_result *llmux__result_new(lx_config *cfg)
{
    llmux_result *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->cfg = cfg;
    if (cfg)
        llmux__config_ref(cfg);
    r->attempts = r->inline_attempts;
    r->cap_attempts = LLMUX_INLINE_ATTEMPTS;
    lx_usage unknown = LX_USAGE_UNKNOWN;
    r->usage = unknown;
    r->cost_usd = -1.0;
    r->cost_nusd = -1;
    r->rule = -1;
    r->retry_after_ms = -1;
    r->strategy = "ordered";
    r->route = "none";
    r->ttft_ms = -1;
    return r;
}

lx_attempt *llmux__result_add_attempt(llmux_result *r)
{
    if (r->n_attempts == r->cap_attempts) {
        size_t cap = r->cap_attempts * 2;
        lx_attempt *a = malloc(cap * sizeof *a);
        if (!a)
            return NULL;
        memcpy(a, r->attempts, r->n_attempts * sizeof *a);
        if (r->attempts != r->inline_attempts)
            free(r->attempts);
        r->attempts = a;
        r->cap_attempts = cap;
    }
    lx_attempt *a = &r->attempts[r->n_attempts++];
    memset(a, 0, sizeof *a);
    a->retry_after_ms = -1;
    return a;
}

int llmux__result_fail(llmux_result *r, int status, int http_status, const char *message)
{
    r->status = status;
    r->http_status = http_status;
    free(r->error);
    free(r->json);
    r->json = NULL;
    r->error = strdup(message && *message ? message : llmux_strerror(status));
    if (r->error)
        llmux__utf8_repair(r->error); /* provider text, cut by a "%.60s" or not UTF-8 */
    lx_buf b = LX_BUF_INIT;
    int bad = llmux__buf_puts(&b, "{\"error\":{\"message\":") ||
              llmux__buf_json_string(&b, r->error ? r->error : "") ||
              llmux__buf_puts(&b, ",\"type\":") ||
              llmux__buf_json_string(&b, llmux__status_error_type(status)) ||
              llmux__buf_puts(&b, ",\"param\":null,\"code\":") ||
              llmux__buf_json_string(&b, llmux__status_class(status)) ||
              llmux__buf_printf(&b, ",\"llmux_status\":%d,\"http_status\":%d}}", status,
                                http_status);
    if (bad || !r->error) {
        llmux__buf_free(&b);
        return LLMUX_ERR_NO_MEMORY;
    }
    r->json = llmux__buf_steal(&b);
    return status;
}

/* How many bytes of s, at most max, end on a character boundary. */
static int utf8_prefix(const char *s, int max)
{
    int n = 0;
    while (n < max && s[n])
        n++;
    if (s[n]) /* cut: step back over continuation bytes to a lead byte */
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    return n;
}

void llmux__result_reason(const llmux_result *r, char *out, size_t cap)
{
    const char *how = strcmp(r->route, "direct") == 0 ? "direct route" : "alias";
    const char *name = r->requested_model ? r->requested_model : "";
    int name_len = utf8_prefix(name, 60);
    size_t n = r->n_targets, tried = r->n_attempts;
    if (strcmp(r->route, "none") == 0)
        snprintf(out, cap, "no route: %s", r->error ? r->error : "the request was not routed");
    else if (r->status == LLMUX_OK && tried > 1)
        snprintf(out, cap,
                 "%s \"%.*s\" lists %zu targets, tried in order; %s answered after falling back "
                 "past %zu failed target%s",
                 how, name_len, name, n, r->provider, tried - 1, tried == 2 ? "" : "s");
    else if (r->status == LLMUX_OK)
        snprintf(out, cap, "%s \"%.*s\" lists %zu target%s, tried in order; %s answered on the "
                 "first attempt", how, name_len, name, n, n == 1 ? "" : "s", r->provider);
    else
        snprintf(out, cap, "%s \"%.*s\" lists %zu target%s, tried in order; %zu tried, none "
                 "answered", how, name_len, name, n, n == 1 ? "" : "s", tried);
}

static int json_str_or_null(lx_buf *b, const char *s)
{
    return s ? llmux__buf_json_string(b, s) : llmux__buf_puts(b, "null");
}

/* nano-dollars as an exact decimal USD number, or null when unknown. */
static int usd_or_null(lx_buf *b, int64_t nusd)
{
    if (nusd < 0)
        return llmux__buf_puts(b, "null");
    return llmux__buf_printf(b, "%lld.%09lld", (long long)(nusd / 1000000000),
                             (long long)(nusd % 1000000000));
}

/* The attempt whose price the trace names: the last one billed, else the last. */
static const lx_attempt *priced_attempt(const llmux_result *r)
{
    for (size_t i = r->n_attempts; i-- > 0;)
        if (r->attempts[i].billed)
            return &r->attempts[i];
    return r->n_attempts ? &r->attempts[r->n_attempts - 1] : NULL;
}

static int cost_json(lx_buf *b, const llmux_result *r)
{
    const lx_attempt *a = priced_attempt(r);
    unsigned flags = 0;
    for (size_t i = 0; i < r->n_attempts; i++)
        flags |= r->attempts[i].cost_flags;
    int bad = llmux__buf_printf(b, ",\"cost_nusd\":%lld,\"cost_estimated\":%s,\"price\":",
                                (long long)r->cost_nusd, r->cost_estimated ? "true" : "false");
    if (!bad && a && a->price)
        bad = llmux__buf_puts(b, "{\"entry\":") || llmux__buf_json_string(b, a->price->model) ||
              llmux__buf_puts(b, ",\"source\":") ||
              llmux__buf_json_string(b, llmux__price_source(a->price)) ||
              llmux__buf_printf(b, ",\"long_context\":%s}",
                                flags & LX_COST_TIER ? "true" : "false");
    else if (!bad)
        bad = llmux__buf_puts(b, "null");
    if (!bad && (flags & LX_COST_MISMATCH))
        bad = llmux__buf_puts(b, ",\"usage_mismatch\":\"the provider's cache reads and writes "
                                 "exceed its prompt_tokens; the parts were priced\"");
    return bad;
}

/* The provider's own total_tokens, when it gave one, and a note when the
 * parts do not add up to it (the parts are what was priced). */
static int total_note(lx_buf *b, const lx_usage *u)
{
    if (u->total_tokens < 0)
        return 0;
    if (llmux__buf_printf(b, ",\"provider_total_tokens\":%lld", (long long)u->total_tokens))
        return -1;
    if (u->prompt_tokens < 0 || u->completion_tokens < 0 ||
        u->prompt_tokens + u->completion_tokens == u->total_tokens)
        return 0;
    return llmux__buf_printf(b,
                             ",\"usage_total_mismatch\":\"the provider's total_tokens %lld is not "
                             "prompt_tokens + completion_tokens (%lld + %lld); the parts were "
                             "priced\"",
                             (long long)u->total_tokens, (long long)u->prompt_tokens,
                             (long long)u->completion_tokens);
}

char *llmux__trace_build(const llmux_result *r)
{
    char reason[400];
    llmux__result_reason(r, reason, sizeof reason);
    lx_buf b = LX_BUF_INIT;
    int bad = llmux__buf_puts(&b, "{\"model\":") ||
              json_str_or_null(&b, r->requested_model) ||
              llmux__buf_puts(&b, ",\"route\":") || llmux__buf_json_string(&b, r->route) ||
              llmux__buf_puts(&b, ",\"alias\":") || json_str_or_null(&b, r->alias) ||
              (r->rule >= 0 ? llmux__buf_printf(&b, ",\"rule\":%ld", r->rule)
                            : llmux__buf_puts(&b, ",\"rule\":null")) ||
              llmux__buf_puts(&b, ",\"strategy\":") || llmux__buf_json_string(&b, r->strategy) ||
              (r->alias_fallback && (llmux__buf_puts(&b, ",\"alias_fallback\":") ||
                                     llmux__buf_json_string(&b, r->alias_fallback))) ||
              llmux__buf_printf(&b, ",\"targets\":%zu,\"reason\":", r->n_targets) ||
              llmux__buf_json_string(&b, reason) ||
              llmux__buf_puts(&b, ",\"workflow\":") || json_str_or_null(&b, r->workflow) ||
              llmux__buf_puts(&b, ",\"task\":") || json_str_or_null(&b, r->task) ||
              llmux__buf_puts(&b, ",\"key\":") || json_str_or_null(&b, r->key_id) ||
              llmux__buf_puts(&b, ",\"team\":") || json_str_or_null(&b, r->team) ||
              (r->retry_after_ms >= 0 &&
               llmux__buf_printf(&b, ",\"retry_after_ms\":%ld", r->retry_after_ms)) ||
              llmux__buf_printf(&b, ",\"stream\":%s", r->streamed ? "true" : "false") ||
              llmux__buf_puts(&b, ",\"attempts\":[");
    for (size_t i = 0; !bad && i < r->n_attempts; i++) {
        const lx_attempt *a = &r->attempts[i];
        bad = llmux__buf_puts(&b, i ? ",{\"provider\":" : "{\"provider\":") ||
              llmux__buf_json_string(&b, a->provider->name) ||
              llmux__buf_puts(&b, ",\"model\":") || llmux__buf_json_string(&b, a->model) ||
              llmux__buf_puts(&b, ",\"outcome\":") ||
              llmux__buf_json_string(&b, llmux__status_class(a->status)) ||
              llmux__buf_printf(&b, ",\"status\":%d,\"http_status\":%d,\"latency_ms\":%.3f",
                                a->status, a->http_status, a->latency_ms) ||
              (a->retry_after_ms >= 0 &&
               llmux__buf_printf(&b, ",\"retry_after_ms\":%ld", a->retry_after_ms)) ||
              (a->backoff_ms > 0 && llmux__buf_printf(&b, ",\"backoff_ms\":%ld", a->backoff_ms)) ||
              llmux__buf_puts(&b, ",\"error\":") || json_str_or_null(&b, a->error) ||
              (a->provider_code && (llmux__buf_puts(&b, ",\"provider_code\":") ||
                                    llmux__buf_json_string(&b, a->provider_code))) ||
              (a->detail && (llmux__buf_puts(&b, ",\"detail\":") ||
                             llmux__buf_json_string(&b, a->detail))) ||
              llmux__buf_puts(&b, ",\"action\":") || llmux__buf_json_string(&b, a->action) ||
              (a->billed && (llmux__buf_puts(&b, ",\"cost_usd\":") ||
                             usd_or_null(&b, a->cost_nusd) ||
                             llmux__buf_printf(&b, ",\"estimated\":%s",
                                               a->estimated ? "true" : "false"))) ||
              llmux__buf_puts(&b, "}");
    }
    if (!bad && r->n_skipped) {
        bad = llmux__buf_puts(&b, "],\"skipped\":[");
        for (size_t i = 0; !bad && i < r->n_skipped; i++)
            bad = llmux__buf_puts(&b, i ? ",{\"provider\":" : "{\"provider\":") ||
                  llmux__buf_json_string(&b, r->skipped[i].provider->name) ||
                  llmux__buf_puts(&b, ",\"model\":") ||
                  llmux__buf_json_string(&b, r->skipped[i].model) ||
                  llmux__buf_puts(&b, ",\"reason\":") ||
                  llmux__buf_json_string(&b, r->skipped[i].reason) || llmux__buf_puts(&b, "}");
    }
    if (!bad && r->status != LLMUX_OK && r->n_attempts)
        bad = llmux__buf_printf(&b, "],\"error_attempt\":%zu,\"status\":", r->error_attempt);
    else if (!bad)
        bad = llmux__buf_puts(&b, "],\"status\":");
    if (!bad)
        bad = llmux__buf_json_string(&b, llmux__status_class(r->status)) ||
              llmux__buf_puts(&b, ",\"provider\":") || json_str_or_null(&b, r->provider) ||
              llmux__buf_puts(&b, ",\"provider_model\":") || json_str_or_null(&b, r->model) ||
              llmux__buf_printf(&b,
                                ",\"usage\":{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,"
                                "\"cached_tokens\":%lld,\"cache_write_tokens\":%lld,"
                                "\"cache_write_1h_tokens\":%lld,\"reasoning_tokens\":%lld}%s",
                                (long long)r->usage.prompt_tokens,
                                (long long)r->usage.completion_tokens,
                                (long long)r->usage.cached_tokens,
                                (long long)r->usage.cache_write_tokens,
                                (long long)r->usage.cache_write_1h_tokens,
                                (long long)r->usage.reasoning_tokens,
                                r->usage.absurd ? ",\"usage_note\":\"the provider reported a "
                                                  "token count out of range (negative, "
                                                  "fractional or above 1e15); it is counted as "
                                                  "unknown\""
                                                : "") ||
              total_note(&b, &r->usage) || llmux__buf_puts(&b, ",\"cost_usd\":") ||
              usd_or_null(&b, r->cost_nusd) || cost_json(&b, r) ||
              llmux__buf_printf(&b, ",\"chunks\":%zu,\"total_ms\":%.3f}", r->chunks, r->total_ms);
    if (bad) {
        llmux__buf_free(&b);
        return NULL;
    }
    return llmux__buf_steal(&b);
}

/* ----------------------------------------------------------- public accessors */

int llmux_result_status(const llmux_result *r)
{
    return r ? r->status : LLMUX_ERR_INVALID_ARGUMENT;
}

const char *llmux_result_json(const llmux_result *r)
{
    return r && r->json ? r->json : "";
}

const char *llmux_result_error(const llmux_result *r)
{
    return r && r->error ? r->error : "";
}

const char *llmux_result_provider(const llmux_result *r)
{
    return r && r->provider ? r->provider : "";
}

const char *llmux_result_model(const llmux_result *r)
{
    return r && r->model ? r->model : "";
}

double llmux_result_cost_usd(const llmux_result *r)
{
    return r ? r->cost_usd : -1.0;
}

long llmux_result_retry_after_ms(const llmux_result *r)
{
    return r ? r->retry_after_ms : -1;
}

int llmux_result_http_status(const llmux_result *r)
{
    return r ? r->http_status : 0;
}

static long as_long(int64_t v)
{
    return v > (int64_t)LONG_MAX ? LONG_MAX : (long)v;
}

long llmux_result_prompt_tokens(const llmux_result *r)
{
    return r ? as_long(r->usage.prompt_tokens) : -1;
}

long llmux_result_completion_tokens(const llmux_result *r)
{
    return r ? as_long(r->usage.completion_tokens) : -1;
}

const char *llmux_result_trace_json(const llmux_result *r)
{
    if (!r)
        return "";
    if (!r->trace) {
        /* built lazily: most callers never read it. The result is not shared
         * between threads (documented), so the cast is safe. */
        ((llmux_result *)r)->trace = llmux__trace_build(r);
    }
    return r->trace ? r->trace : "";
}

void llmux_result_free(llmux_result *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_attempts; i++) {
        free(r->attempts[i].error);
        free(r->attempts[i].detail);
        free(r->attempts[i].provider_code);
    }
    for (size_t i = 0; i < r->n_skipped; i++)
        free(r->skipped[i].reason);
    free(r->skipped);
    if (r->attempts != r->inline_attempts)
        free(r->attempts);
    free(r->json);
    free(r->error);
    free(r->requested_model);
    free(r->direct_model);
    free(r->workflow);
    free(r->task);
    free(r->key_id);
    free(r->team);
    free(r->trace);
    llmux__config_unref(r->cfg);
    free(r);
}
