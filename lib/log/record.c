#include "log/record.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/error.h"

/* A literal and its length, known when compiling: no strlen on this path. */
#define LIT(s) (s), sizeof(s) - 1
/* ,"name": as a literal (keys are our own names: nothing to escape) */
#define KEY(name) LIT(",\"" name "\":")
#define PUTS(b, s) llmux__buf_append((b), LIT(s))

static int put_key(lx_buf *b, const char *key, size_t n)
{
    return llmux__buf_append(b, key, n);
}

/* A JSON string: printable ASCII without quote or backslash (config names,
 * ids, classes: nearly every value) is copied as it is; anything else goes
 * through the escaping, UTF-8-repairing writer. */
static int put_jstr(lx_buf *b, const char *v)
{
    size_t n = 0;
    for (unsigned char ch; (ch = (unsigned char)v[n]) >= 0x20 && ch < 0x7f && ch != '"' &&
                           ch != '\\';)
        n++;
    if (v[n])
        return llmux__buf_json_string(b, v);
    return PUTS(b, "\"") || llmux__buf_append(b, v, n) || PUTS(b, "\"");
}

static int put_str(lx_buf *b, const char *key, size_t kn, const char *v)
{
    if (put_key(b, key, kn))
        return -1;
    return v ? put_jstr(b, v) : PUTS(b, "null");
}

/* milliseconds with three decimals, as digits (no printf on this path) */
static int put_ms(lx_buf *b, const char *key, size_t kn, double ms)
{
    if (put_key(b, key, kn))
        return -1;
    if (!(ms >= 0) || ms > 1e15)
        return PUTS(b, "null");
    long long us = (long long)(ms * 1000 + 0.5);
    char frac[5] = {'.', (char)('0' + us / 100 % 10), (char)('0' + us / 10 % 10),
                    (char)('0' + us % 10), 0};
    return llmux__buf_int(b, us / 1000) || llmux__buf_append(b, frac, 4);
}

static int put_count(lx_buf *b, const char *key, size_t kn, int64_t n)
{
    if (put_key(b, key, kn))
        return -1;
    return n < 0 ? PUTS(b, "null") : llmux__buf_int(b, (long long)n);
}

/* "2026-12-05T03:20:01.123456Z", once per call */
static void format_time(int64_t ns, char out[48])
{
    time_t s = (time_t)(ns / 1000000000);
    struct tm tm;
    char when[32];
    gmtime_r(&s, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 48, "%.20s.%06dZ", when, (int)(ns % 1000000000 / 1000));
}

static int put_time(lx_buf *b, const char *when, size_t n)
{
    return PUTS(b, "{\"time\":\"") || llmux__buf_append(b, when, n) || PUTS(b, "\"");
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

static int attempt_json(const lx_log_call *c, size_t i, const char *when, size_t when_len,
                        lx_buf *b)
{
    const lx_log_attempt *a = &c->attempts[i];
    return put_time(b, when, when_len) ||
           PUTS(b, ",\"event.name\":\"llmux.attempt\"") ||
           put_str(b, KEY("llmux.call_id"), c->call_id) || put_key(b, KEY("llmux.attempt")) ||
           llmux__buf_int(b, (long long)i + 1) ||
           PUTS(b, ",\"gen_ai.operation.name\":\"chat\"") ||
           put_str(b, KEY("gen_ai.provider.name"), a->provider) ||
           put_str(b, KEY("gen_ai.request.model"), a->model) ||
           put_str(b, KEY("llmux.status"), a->status ? llmux__status_class(a->status) : "ok") ||
           put_str(b, KEY("error.type"), class_of(a->status)) ||
           put_key(b, KEY("http.response.status_code")) || llmux__buf_int(b, a->http_status) ||
           put_ms(b, KEY("llmux.latency_ms"), a->latency_ms) ||
           put_str(b, KEY("llmux.action"), a->action) || put_str(b, KEY("llmux.error"), a->error) ||
           PUTS(b, "}\n");
}

int llmux__log_record_json(const lx_log_call *c, lx_buf *b)
{
    char when[48];
    format_time(c->time_unix_ns, when);
    size_t when_len = strlen(when);
    /* one reservation for the usual record: appends then only copy */
    if (llmux__buf_reserve(b, 1024 + (c->with_attempts ? c->n_attempts * 512 : 0)) == -1)
        return -1;
    for (size_t i = 0; c->with_attempts && i < c->n_attempts; i++)
        if (attempt_json(c, i, when, when_len, b))
            return -1;
    const lx_usage *u = &c->usage;
    int bad =
        put_time(b, when, when_len) || PUTS(b, ",\"event.name\":\"llmux.call\"") ||
        put_str(b, KEY("llmux.call_id"), c->call_id) || put_str(b, KEY("llmux.key_id"), c->key_id) ||
        put_str(b, KEY("llmux.team"), c->team) || put_str(b, KEY("llmux.workflow"), c->workflow) ||
        put_str(b, KEY("llmux.task"), c->task) ||
        PUTS(b, ",\"gen_ai.operation.name\":\"chat\"") ||
        put_str(b, KEY("gen_ai.request.model"), c->alias) || put_str(b, KEY("llmux.route"), c->route) ||
        put_str(b, KEY("llmux.alias"), c->routed_alias) ||
        (c->rule >= 0 ? put_key(b, KEY("llmux.rule")) || llmux__buf_int(b, c->rule)
                      : put_str(b, KEY("llmux.rule"), NULL)) ||
        put_str(b, KEY("llmux.strategy"), c->strategy) ||
        put_str(b, KEY("gen_ai.provider.name"), c->provider) ||
        put_str(b, KEY("gen_ai.response.model"), c->model) ||
        put_str(b, KEY("llmux.status"), c->status ? llmux__status_class(c->status) : "ok") ||
        put_str(b, KEY("error.type"), class_of(c->status)) ||
        put_key(b, KEY("http.response.status_code")) || llmux__buf_int(b, c->http_status) ||
        put_str(b, KEY("llmux.error"), c->error) || put_ms(b, KEY("llmux.latency_ms"), c->latency_ms) ||
        put_ms(b, KEY("llmux.ttft_ms"), c->ttft_ms) || put_ms(b, KEY("llmux.overhead_ms"), c->overhead_ms) ||
        put_count(b, KEY("gen_ai.usage.input_tokens"), u->prompt_tokens) ||
        put_count(b, KEY("gen_ai.usage.output_tokens"), u->completion_tokens) ||
        put_count(b, KEY("gen_ai.usage.cache_read.input_tokens"), u->cached_tokens) ||
        put_count(b, KEY("gen_ai.usage.cache_creation.input_tokens"), u->cache_write_tokens) ||
        put_count(b, KEY("llmux.usage.reasoning_tokens"), u->reasoning_tokens) ||
        (c->cost_nusd < 0 ? PUTS(b, ",\"llmux.cost_usd\":null")
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
    return bad || PUTS(b, "}\n") ? -1 : 0;
}

/* ------------------------------------------------------------------ copy */

typedef struct arena {
    char *p;
} arena;

static size_t str_size(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static const char *put(arena *a, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *d = a->p;
    memcpy(d, s, n);
    a->p += n;
    return d;
}

static const char *put_n(arena *a, const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *d = a->p;
    memcpy(d, s, n);
    d[n] = '\0';
    a->p += n + 1;
    return d;
}

lx_log_call *llmux__log_call_copy(const lx_log_call *c)
{
    int body = c->content != LX_CONTENT_OFF;
    size_t size = sizeof *c + c->n_attempts * sizeof *c->attempts;
    size += str_size(c->call_id) + str_size(c->key_id) + str_size(c->team) +
            str_size(c->workflow) + str_size(c->task) + str_size(c->alias) +
            str_size(c->route) + str_size(c->provider) + str_size(c->model) + str_size(c->error) +
            str_size(c->routed_alias) + str_size(c->strategy);
    if (body)
        size += (c->request ? c->request_len + 1 : 0) + (c->response ? c->response_len + 1 : 0);
    for (size_t i = 0; i < c->n_attempts; i++) {
        const lx_log_attempt *t = &c->attempts[i];
        size += str_size(t->provider) + str_size(t->model) + str_size(t->action) +
                str_size(t->error);
    }
    lx_log_call *d = malloc(size);
    if (!d)
        return NULL;
    *d = *c;
    lx_log_attempt *atts = (lx_log_attempt *)(d + 1);
    arena a = {(char *)(atts + c->n_attempts)};
    d->attempts = atts;
    d->call_id = put(&a, c->call_id);
    d->key_id = put(&a, c->key_id);
    d->team = put(&a, c->team);
    d->workflow = put(&a, c->workflow);
    d->task = put(&a, c->task);
    d->alias = put(&a, c->alias);
    d->route = put(&a, c->route);
    d->routed_alias = put(&a, c->routed_alias);
    d->strategy = put(&a, c->strategy);
    d->provider = put(&a, c->provider);
    d->model = put(&a, c->model);
    d->error = put(&a, c->error);
    d->request = body ? put_n(&a, c->request, c->request_len) : NULL;
    d->response = body ? put_n(&a, c->response, c->response_len) : NULL;
    if (!body)
        d->request_len = d->response_len = 0;
    for (size_t i = 0; i < c->n_attempts; i++) {
        atts[i] = c->attempts[i];
        atts[i].provider = put(&a, c->attempts[i].provider);
        atts[i].model = put(&a, c->attempts[i].model);
        atts[i].action = put(&a, c->attempts[i].action);
        atts[i].error = put(&a, c->attempts[i].error);
    }
    return d;
}
