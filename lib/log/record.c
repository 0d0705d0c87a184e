#include "log/record.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/error.h"

static int put_str(lx_buf *b, const char *key, const char *v)
{
    if (llmux__buf_printf(b, ",\"%s\":", key))
        return -1;
    return v ? llmux__buf_json_string(b, v) : llmux__buf_puts(b, "null");
}

static int put_ms(lx_buf *b, const char *key, double ms)
{
    if (ms < 0)
        return llmux__buf_printf(b, ",\"%s\":null", key);
    return llmux__buf_printf(b, ",\"%s\":%.3f", key, ms);
}

static int put_count(lx_buf *b, const char *key, int64_t n)
{
    if (n < 0)
        return llmux__buf_printf(b, ",\"%s\":null", key);
    return llmux__buf_printf(b, ",\"%s\":%lld", key, (long long)n);
}

/* {"time":"2026-12-05T03:20:01.123456Z" */
static int put_time(lx_buf *b, int64_t ns)
{
    time_t s = (time_t)(ns / 1000000000);
    struct tm tm;
    char when[40];
    gmtime_r(&s, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    return llmux__buf_printf(b, "{\"time\":\"%s.%06dZ\"", when, (int)(ns % 1000000000 / 1000));
}

static const char *class_of(int status)
{
    return status == 0 ? NULL : llmux__status_class(status);
}

static int put_digest(lx_buf *b, const char *what, const char *s, size_t n)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    static const char hex[] = "0123456789abcdef";
    char out[2 * 32 + 1];
    if (!s)
        return llmux__buf_printf(b, ",\"llmux.%s.bytes\":null,\"llmux.%s.sha256\":null", what, what);
    if (!EVP_Digest(s, n, md, &len, EVP_sha256(), NULL) || len != 32)
        return -1;
    for (unsigned i = 0; i < len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
    return llmux__buf_printf(b, ",\"llmux.%s.bytes\":%zu,\"llmux.%s.sha256\":\"%s\"", what, n,
                             what, out);
}

static int put_body(lx_buf *b, const char *what, const char *s, size_t n)
{
    if (llmux__buf_printf(b, ",\"llmux.%s.body\":", what))
        return -1;
    if (!s)
        return llmux__buf_puts(b, "null");
    /* the body is JSON text; as a string it survives any consumer unchanged */
    (void)n;
    return llmux__buf_json_string(b, s);
}

static int attempt_json(const lx_log_call *c, size_t i, lx_buf *b)
{
    const lx_log_attempt *a = &c->attempts[i];
    return put_time(b, c->time_unix_ns) ||
           llmux__buf_puts(b, ",\"event.name\":\"llmux.attempt\"") ||
           put_str(b, "llmux.call_id", c->call_id) ||
           llmux__buf_printf(b, ",\"llmux.attempt\":%zu", i + 1) ||
           llmux__buf_puts(b, ",\"gen_ai.operation.name\":\"chat\"") ||
           put_str(b, "gen_ai.provider.name", a->provider) ||
           put_str(b, "gen_ai.request.model", a->model) ||
           put_str(b, "llmux.status", a->status ? llmux__status_class(a->status) : "ok") ||
           put_str(b, "error.type", class_of(a->status)) ||
           llmux__buf_printf(b, ",\"http.response.status_code\":%d", a->http_status) ||
           put_ms(b, "llmux.latency_ms", a->latency_ms) ||
           put_str(b, "llmux.action", a->action) || put_str(b, "llmux.error", a->error) ||
           llmux__buf_puts(b, "}\n");
}

int llmux__log_record_json(const lx_log_call *c, lx_buf *b)
{
    for (size_t i = 0; c->with_attempts && i < c->n_attempts; i++)
        if (attempt_json(c, i, b))
            return -1;
    const lx_usage *u = &c->usage;
    int bad =
        put_time(b, c->time_unix_ns) || llmux__buf_puts(b, ",\"event.name\":\"llmux.call\"") ||
        put_str(b, "llmux.call_id", c->call_id) || put_str(b, "llmux.key_id", c->key_id) ||
        put_str(b, "llmux.team", c->team) || put_str(b, "llmux.workflow", c->workflow) ||
        put_str(b, "llmux.task", c->task) ||
        llmux__buf_puts(b, ",\"gen_ai.operation.name\":\"chat\"") ||
        put_str(b, "gen_ai.request.model", c->alias) || put_str(b, "llmux.route", c->route) ||
        put_str(b, "gen_ai.provider.name", c->provider) ||
        put_str(b, "gen_ai.response.model", c->model) ||
        put_str(b, "llmux.status", c->status ? llmux__status_class(c->status) : "ok") ||
        put_str(b, "error.type", class_of(c->status)) ||
        llmux__buf_printf(b, ",\"http.response.status_code\":%d", c->http_status) ||
        put_str(b, "llmux.error", c->error) || put_ms(b, "llmux.latency_ms", c->latency_ms) ||
        put_ms(b, "llmux.ttft_ms", c->ttft_ms) || put_ms(b, "llmux.overhead_ms", c->overhead_ms) ||
        put_count(b, "gen_ai.usage.input_tokens", u->prompt_tokens) ||
        put_count(b, "gen_ai.usage.output_tokens", u->completion_tokens) ||
        put_count(b, "gen_ai.usage.cache_read.input_tokens", u->cached_tokens) ||
        put_count(b, "gen_ai.usage.cache_creation.input_tokens", u->cache_write_tokens) ||
        put_count(b, "llmux.usage.reasoning_tokens", u->reasoning_tokens) ||
        (c->cost_nusd < 0 ? llmux__buf_puts(b, ",\"llmux.cost_usd\":null")
                          : llmux__buf_printf(b, ",\"llmux.cost_usd\":%.9f",
                                              (double)c->cost_nusd / 1e9)) ||
        llmux__buf_printf(b, ",\"llmux.attempts\":%zu,\"llmux.stream\":%s,\"llmux.chunks\":%zu",
                          c->n_attempts, c->streamed ? "true" : "false", c->chunks) ||
        llmux__buf_printf(b, ",\"llmux.content\":\"%s\"",
                          c->content == LX_CONTENT_FULL       ? "full"
                          : c->content == LX_CONTENT_REDACTED ? "redacted"
                                                              : "off");
    if (!bad && c->content == LX_CONTENT_REDACTED)
        bad = put_digest(b, "request", c->request, c->request_len) ||
              put_digest(b, "response", c->response, c->response_len);
    else if (!bad && c->content == LX_CONTENT_FULL)
        bad = put_body(b, "request", c->request, c->request_len) ||
              put_body(b, "response", c->response, c->response_len);
    return bad || llmux__buf_puts(b, "}\n") ? -1 : 0;
}
