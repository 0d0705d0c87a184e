/*
 * The OpenAI-compatible adapter: OpenAI itself and every server speaking its
 * Chat Completions API (vLLM, Ollama, Groq, Together, DeepSeek, OpenRouter...).
 * The request passes through with the target's model id; the response passes
 * through after validation, so provider extensions reach the caller intact.
 */
#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/classify.h"
#include "providers/openai.h"
#include "providers/provider.h"
#include "wire/json_check.h"
#include "wire/json_members.h"
#include "wire/sse.h"

/* libcurl sends "Expect: 100-continue" (an extra round trip) for bodies over
 * 1 MiB; an empty "Expect:" header turns that off. Each custom header costs
 * libcurl work on every request, so small bodies go without it. */
#define EXPECT_THRESHOLD (1024 * 1024)

typedef struct openai_state {
    char *url;
    char *auth; /* "Authorization: Bearer KEY", NULL without a key */
} openai_state;

static void openai_release(lx_provider_cfg *p)
{
    openai_state *st = p->adapter_state;
    if (!st)
        return;
    free(st->url);
    if (st->auth) {
        memset(st->auth, 0, strlen(st->auth));
        free(st->auth);
    }
    free(st);
    p->adapter_state = NULL;
}

static int openai_configure(lx_provider_cfg *p, const cJSON *obj, const char *path,
                            const lx_cfg_reader *rd, lx_err *err)
{
    openai_state *st = calloc(1, sizeof *st);
    if (!st)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    p->adapter_state = st;
    size_t n = strlen(p->base_url) + sizeof "/chat/completions";
    int failed = !(st->url = malloc(n));
    if (st->url)
        snprintf(st->url, n, "%s/chat/completions", p->base_url);
    if (p->api_key) {
        size_t an = strlen(p->api_key) + sizeof "Authorization: Bearer ";
        if ((st->auth = malloc(an)))
            snprintf(st->auth, an, "Authorization: Bearer %s", p->api_key);
        else
            failed = 1;
    }
    if (failed) {
        openai_release(p);
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    return LLMUX_OK;
}

/* The request headers: prepared lines, borrowed (they live as long as the
 * config snapshot the call holds). */
static int add_headers(const lx_provider_cfg *p, const char *auth, int stream,
                       lx_http_request *out)
{
    int bad = llmux__http_header_add_static(out, "Content-Type: application/json");
    if (stream)
        bad |= llmux__http_header_add_static(out, "Accept: text/event-stream");
    if (out->body_len > EXPECT_THRESHOLD)
        bad |= llmux__http_header_add_static(out, "Expect:");
    if (auth)
        bad |= llmux__http_header_add_static(out, auth);
    for (size_t i = 0; i < p->n_extra_headers; i++)
        bad |= llmux__http_header_add_static(out, p->extra_headers[i]);
    return bad;
}

/* The caller's stream_options members other than include_usage, verbatim,
 * then "include_usage":true: a stream is always asked for its usage. */
static int splice_stream_options(lx_buf *b, const char *raw, const lx_json_member *so)
{
    int bad = llmux__buf_puts(b, ",\"stream_options\":{");
    if (so && raw[so->value] == '{') {
        lx_json_member m[32];
        size_t end = 0;
        int n = llmux__json_members_at(raw, so->value, so->end, m, 32, &end);
        if (n < 0)
            return -1;
        for (int i = 0; i < n; i++) {
            if (llmux__json_key_equals(raw, &m[i], "include_usage"))
                continue;
            bad |= llmux__buf_append(b, raw + m[i].start, m[i].end - m[i].start);
            bad |= llmux__buf_append(b, ",", 1);
        }
    }
    return bad | llmux__buf_puts(b, "\"include_usage\":true}");
}

/* The caller's bytes, member for member, with the target's model id as
 * "model" and the stream members set for this attempt: every other member
 * (large integers, unicode escapes, unknown extensions) reaches the provider
 * byte-identical, streamed or not. NULL on out of memory or when the text
 * holds more members than a scan can record. */
#define SPLICE_MAX_MEMBERS 4096
static char *splice(const lx_request *req, const char *model, int stream, size_t *out_len)
{
    const char *raw = req->raw;
    const lx_json_member *m = req->members;
    lx_json_member *heap = NULL;
    int n = req->n_members; /* recorded by validation, usually */
    if (n < 0) {
        heap = malloc(SPLICE_MAX_MEMBERS * sizeof *heap);
        n = heap ? llmux__json_members(raw, req->raw_len, heap, SPLICE_MAX_MEMBERS) : -1;
        m = heap;
    }
    if (n < 0) {
        free(heap);
        return NULL;
    }
    lx_buf b = LX_BUF_INIT;
    int bad = llmux__buf_reserve(&b, req->raw_len + strlen(model) * 2 + 64) ||
              llmux__buf_append(&b, "{", 1);
    const lx_json_member *so = NULL;
    int first = 1, have_model = 0;
    for (int i = 0; i < n && !bad; i++) {
        const lx_json_member *mi = &m[i];
        int is_model = llmux__json_key_equals(raw, mi, "model");
        if (llmux__json_key_equals(raw, mi, "stream"))
            continue;
        if (llmux__json_key_equals(raw, mi, "stream_options")) {
            so = mi;
            continue;
        }
        if (is_model && have_model)
            continue; /* validation refuses duplicates; never forward a second one */
        if (!first)
            bad |= llmux__buf_append(&b, ",", 1);
        first = 0;
        if (is_model) {
            have_model = 1;
            bad |= llmux__buf_puts(&b, "\"model\":") || llmux__buf_json_string(&b, model);
        } else {
            bad |= llmux__buf_append(&b, raw + mi->start, mi->end - mi->start);
        }
    }
    if (!bad && !have_model)
        bad = (!first && llmux__buf_append(&b, ",", 1)) || llmux__buf_puts(&b, "\"model\":") ||
              llmux__buf_json_string(&b, model);
    if (!bad && stream)
        bad = llmux__buf_puts(&b, ",\"stream\":true") || splice_stream_options(&b, raw, so);
    free(heap);
    if (bad || llmux__buf_append(&b, "}", 1)) {
        llmux__buf_free(&b);
        return NULL;
    }
    *out_len = b.len;
    return llmux__buf_steal(&b);
}

int llmux__openai_request(const lx_provider_cfg *p, const char *url, const char *auth,
                          const char *model, const lx_request *req, int stream,
                          lx_http_request *out, lx_err *err)
{
    size_t len = 0;
    char *body = splice(req, model, stream, &len);
    if (!body)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    out->body = body;
    out->body_len = len;
    if (llmux__http_request_set_url(out, url) || add_headers(p, auth, stream, out))
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    return LLMUX_OK;
}

static int openai_build_request(const lx_provider_cfg *p, const char *model,
                                const lx_request *req, int stream, lx_http_request *out,
                                lx_err *err)
{
    const openai_state *st = p->adapter_state;
    return llmux__openai_request(p, st->url, st->auth, model, req, stream, out, err);
}

/* The message, type and code of an OpenAI-style error body, in whatever of the
 * common shapes the server used; falls back to the raw body's start. */
static void error_text(const char *body, size_t len, const char *secret, char *msg, size_t cap,
                       char *code, size_t code_cap)
{
    msg[0] = '\0';
    code[0] = '\0';
    cJSON *root = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *e = root ? cJSON_GetObjectItemCaseSensitive(root, "error") : NULL;
    const cJSON *m = NULL, *c = NULL, *t = NULL;
    if (cJSON_IsObject(e)) {
        m = cJSON_GetObjectItemCaseSensitive(e, "message");
        c = cJSON_GetObjectItemCaseSensitive(e, "code");
        t = cJSON_GetObjectItemCaseSensitive(e, "type");
    } else if (cJSON_IsString(e)) {
        m = e;
    } else if (cJSON_IsObject(root)) {
        m = cJSON_GetObjectItemCaseSensitive(root, "message");
        if (!cJSON_IsString(m))
            m = cJSON_GetObjectItemCaseSensitive(root, "detail");
    }
    /* the key is masked in the whole text before any of it is cut short */
    if (cJSON_IsString(m)) {
        llmux__provider_text(msg, cap, m->valuestring, strlen(m->valuestring), secret);
    } else if (body && len) {
        llmux__provider_text(msg, cap > 201 ? 201 : cap, body, len, secret);
    }
    if (cJSON_IsString(c))
        llmux__provider_text(code, code_cap, c->valuestring, strlen(c->valuestring), secret);
    else if (cJSON_IsNumber(c))
        snprintf(code, code_cap, "%.0f", c->valuedouble > -1e15 && c->valuedouble < 1e15
                                             ? c->valuedouble : 0.0);
    else if (cJSON_IsString(t))
        llmux__provider_text(code, code_cap, t->valuestring, strlen(t->valuestring), secret);
    cJSON_Delete(root);
}

/* "<what> (code): message" from an error body, as an error of status; the
 * provider's key (p may be NULL: none) is masked before anything is cut. */
static int word_body_error(const char *secret, lx_err *err, int status, const char *what,
                           const char *body, size_t len)
{
    char msg[320], code[64];
    error_text(body, len, secret, msg, sizeof msg, code, sizeof code);
    snprintf(err->provider_code, sizeof err->provider_code, "%s", code);
    return llmux__err(err, status, "%s%s%s%s: %s", what, code[0] ? " (" : "", code,
                      code[0] ? ")" : "", msg[0] ? msg : "(empty body)");
}

static int classify_body(const lx_provider_cfg *p, long http_status, const char *body,
                         size_t len, lx_err *err)
{
    char msg[320], code[64];
    error_text(body, len, p->api_key, msg, sizeof msg, code, sizeof code);
    int status = llmux__status_for_http(http_status);
    if ((http_status == 400 || http_status == 413) &&
        (llmux__is_context_overflow(code) || llmux__is_context_overflow(msg)))
        status = LLMUX_ERR_CONTEXT_WINDOW;
    else if (http_status == 400 && strcmp(code, "content_filter") == 0)
        status = LLMUX_ERR_CONTENT_FILTER;
    else if (strcmp(code, "insufficient_quota") == 0 || strcmp(code, "billing_hard_limit_reached") == 0)
        status = LLMUX_ERR_QUOTA; /* a 429 that waiting does not cure: not retried */
    err->http_status = (int)http_status;
    snprintf(err->provider_code, sizeof err->provider_code, "%s", code);
    return llmux__err(err, status, "HTTP %ld%s%s%s: %s", http_status, code[0] ? " (" : "", code,
                      code[0] ? ")" : "", msg[0] ? msg : "(empty body)");
}

static int openai_classify_error(const lx_provider_cfg *p, const lx_http_response *resp,
                                 lx_err *err)
{
    return classify_body(p, resp->status, resp->body.data, resp->body.len, err);
}

/* A member's value as a plain non-negative integer, or -1. */
static long int_value(const char *s, const lx_json_member *m)
{
    long v = 0;
    size_t i = m->value;
    if (i >= m->end)
        return -1;
    for (; i < m->end; i++) {
        if (s[i] < '0' || s[i] > '9' || v > 100000000000L)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static const lx_json_member *find_member(const lx_json_member *m, int n, const char *key,
                                            size_t len)
{
    for (int i = 0; i < n; i++)
        if (llmux__json_key_is(&m[i], key, len))
            return &m[i];
    return NULL;
}

/* Usage read from the text of a usage object; 0 when it holds anything but
 * plain integers where tokens are counted (the tree path decides then). */
static int scan_usage(const char *s, size_t start, size_t end, lx_usage *u)
{
    lx_json_member m[24];
    int n = llmux__json_members(s + start, end - start, m, 24);
    if (n < 0)
        return 0;
    s += start;
    const lx_json_member *pt = find_member(m, n, "prompt_tokens", 13);
    const lx_json_member *ct = find_member(m, n, "completion_tokens", 17);
    u->prompt_tokens = pt ? int_value(s, pt) : -1;
    u->completion_tokens = ct ? int_value(s, ct) : -1;
    const lx_json_member *tt = find_member(m, n, "total_tokens", 12);
    u->total_tokens = tt ? int_value(s, tt) : -1;
    if ((pt && u->prompt_tokens < 0) || (ct && u->completion_tokens < 0) ||
        (tt && u->total_tokens < 0))
        return 0;
    /* the details objects: each count a plain integer, or the tree path decides */
    static const struct {
        const char *obj, *key;
        size_t obj_len, key_len;
        size_t field; /* offset in lx_usage */
    } details[] = {
        {"prompt_tokens_details", "cached_tokens", 21, 13, offsetof(lx_usage, cached_tokens)},
        {"prompt_tokens_details", "cache_write_tokens", 21, 18,
         offsetof(lx_usage, cache_write_tokens)},
        {"prompt_tokens_details", "cache_write_1h_tokens", 21, 21,
         offsetof(lx_usage, cache_write_1h_tokens)},
        {"completion_tokens_details", "reasoning_tokens", 25, 16,
         offsetof(lx_usage, reasoning_tokens)},
    };
    for (size_t i = 0; i < sizeof details / sizeof details[0]; i++) {
        const lx_json_member *det = find_member(m, n, details[i].obj, details[i].obj_len);
        if (!det || s[det->value] != '{')
            continue;
        lx_json_member d[16];
        int nd = llmux__json_members(s + det->value, det->end - det->value, d, 16);
        if (nd < 0)
            return 0;
        const lx_json_member *v = find_member(d, nd, details[i].key, details[i].key_len);
        int64_t *slot = (int64_t *)(void *)((char *)u + details[i].field);
        if (v && s[det->value + v->value] != 'n' && (*slot = int_value(s + det->value, v)) < 0)
            return 0;
    }
    return 1;
}

/* The common answer, checked on its text: valid JSON, an object with a
 * "choices" array, no "error", usage in plain integers. 0 = let the tree path
 * decide (and word any error). */
#define RESPONSE_MAX_MEMBERS 48
static int scan_response(const lx_buf *body, lx_usage *usage)
{
    lx_json_member m[RESPONSE_MAX_MEMBERS];
    int n = -1;
    if (!body->len ||
        llmux__json_check_members(body->data, body->len, NULL, m, RESPONSE_MAX_MEMBERS, &n) !=
            LLMUX_JSON_OK ||
        n < 0)
        return 0;
    for (int i = 0; i < n; i++)
        if (m[i].key_escaped)
            return 0;
    const lx_json_member *choices = find_member(m, n, "choices", 7);
    const lx_json_member *u = find_member(m, n, "usage", 5);
    if (!choices || body->data[choices->value] != '[' || find_member(m, n, "error", 5))
        return 0;
    lx_usage got = LX_USAGE_UNKNOWN;
    if (u && body->data[u->value] == '{' && !scan_usage(body->data, u->value, u->end, &got))
        return 0;
    *usage = got;
    return 1;
}

static int openai_parse_response(const lx_provider_cfg *p, lx_buf *body, char **out_json,
                                 lx_usage *usage, lx_err *err)
{
    if (scan_response(body, usage)) {
        if (!(*out_json = llmux__buf_steal(body)))
            return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        return LLMUX_OK;
    }
    /* the strict check first: cJSON accepts control bytes, leading zeros and
     * invalid UTF-8, which would reach the caller as a success */
    size_t off = 0;
    int syntax = body->len ? llmux__json_check(body->data, body->len, &off) : LLMUX_JSON_SYNTAX;
    if (syntax != LLMUX_JSON_OK)
        return llmux__err(err, LLMUX_ERR_BAD_RESPONSE,
                          "the response body is not valid %s (%zu bytes, error at byte %zu)",
                          syntax == LLMUX_JSON_UTF8 ? "UTF-8" : "JSON", body->len, off);
    cJSON *root = cJSON_ParseWithLength(body->data, body->len);
    if (!root) /* the text is valid: cJSON ran out of memory */
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    int rc = LLMUX_OK;
    if (!cJSON_IsObject(root)) {
        rc = llmux__err(err, LLMUX_ERR_BAD_RESPONSE, "the response is not a JSON object");
        goto done;
    }
    if (cJSON_GetObjectItemCaseSensitive(root, "error")) {
        /* some compatible servers answer 200 with an error body */
        rc = word_body_error(p->api_key, err, LLMUX_ERR_PROVIDER, "HTTP 200 with an error body",
                             body->data, body->len);
        err->http_status = 200;
        goto done;
    }
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    if (!cJSON_IsArray(choices)) {
        rc = llmux__err(err, LLMUX_ERR_BAD_RESPONSE,
                        "the response has no \"choices\" array: not a chat.completion");
        goto done;
    }
    llmux__usage_from_openai(cJSON_GetObjectItemCaseSensitive(root, "usage"), usage);
    *out_json = llmux__buf_steal(body);
    if (!*out_json)
        rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
done:
    cJSON_Delete(root);
    return rc;
}

/* ---------------------------------------------------------------- streaming */

typedef struct openai_stream {
    lx_sse sse;
    const char *secret; /* the provider's key, masked out of error text */
    int done;      /* saw data: [DONE] */
    int started;   /* a byte other than white space arrived */
    int json_body; /* ... and it opened a JSON document, not an event stream */
    lx_buf json;   /* that document, capped like an event */
    lx_chunk_sink_cb sink;
    void *ctx;
    lx_err *err;
    int status;
} openai_stream;

#define EVENT_DONE 2 /* on_event's value for [DONE] */

static void *openai_stream_new(const lx_provider_cfg *p)
{
    openai_stream *s = calloc(1, sizeof *s);
    if (s) {
        llmux__sse_init(&s->sse, p->max_response_bytes);
        s->secret = p->api_key;
        s->json.limit = s->sse.max_event;
    }
    return s;
}

static int on_event(void *ctx, const char *event, const char *data, size_t len)
{
    openai_stream *s = ctx;
    if (s->done || (len == 6 && memcmp(data, "[DONE]", 6) == 0)) {
        s->done = 1;
        return EVENT_DONE; /* the end, whether or not the server closes */
    }
    size_t off = 0;
    int syntax = llmux__json_check(data, len, &off);
    if (syntax != LLMUX_JSON_OK) {
        s->status = llmux__err(s->err, LLMUX_ERR_BAD_RESPONSE,
                               "stream event %zu is not valid %s (error at byte %zu)",
                               s->sse.events, syntax == LLMUX_JSON_UTF8 ? "UTF-8" : "JSON", off);
        return 1;
    }
    cJSON *chunk = cJSON_ParseWithLength(data, len);
    if (!chunk) { /* the text is valid: cJSON ran out of memory */
        s->status = llmux__err(s->err, LLMUX_ERR_NO_MEMORY, "out of memory");
        return 1;
    }
    if (!cJSON_IsObject(chunk)) {
        cJSON_Delete(chunk);
        s->status = llmux__err(s->err, LLMUX_ERR_BAD_RESPONSE,
                               "stream event %zu is not a JSON object", s->sse.events);
        return 1;
    }
    if (cJSON_GetObjectItemCaseSensitive(chunk, "error")) {
        cJSON_Delete(chunk);
        s->status = word_body_error(s->secret, s->err, LLMUX_ERR_PROVIDER, "error inside the stream",
                                    data, len);
        return 1;
    }
    int stop = s->sink(s->ctx, data, len, chunk);
    cJSON_Delete(chunk);
    if (stop) {
        s->status = LLMUX_ERR_CANCELLED;
        return 1;
    }
    return 0;
}

static int openai_stream_feed(void *st, const char *data, size_t len, lx_chunk_sink_cb sink,
                              void *ctx, lx_err *err)
{
    openai_stream *s = st;
    s->sink = sink;
    s->ctx = ctx;
    s->err = err;
    s->status = LLMUX_OK;
    if (s->done)
        return LX_STREAM_END;
    if (!s->started) {
        /* a server that ignores "stream": true answers with one JSON body */
        size_t i = 0;
        while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
            i++;
        if (i < len) {
            s->started = 1;
            s->json_body = data[i] == '{' || data[i] == '[';
        }
    }
    int rc;
    if (s->json_body) {
        if ((rc = llmux__buf_append(&s->json, data, len)) == -2)
            return llmux__err(err, LLMUX_ERR_BAD_RESPONSE,
                              "the provider answered with JSON instead of an event stream, and "
                              "more than %zu bytes of it",
                              s->json.limit);
        return rc ? llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory") : LLMUX_OK;
    }
    rc = llmux__sse_feed(&s->sse, data, len, on_event, s);
    int failed = llmux__sse_failure(&s->sse, rc, err);
    if (failed)
        return failed;
    if (rc == EVENT_DONE)
        return LX_STREAM_END;
    if (rc)
        return s->status ? s->status : LLMUX_ERR_INTERNAL;
    return LLMUX_OK;
}

static int openai_stream_finish(void *st, lx_err *err)
{
    openai_stream *s = st;
    if (s->json_body) {
        const char *what = "the provider answered with JSON instead of an event stream";
        cJSON *root = cJSON_ParseWithLength(s->json.data, s->json.len);
        int has_error = cJSON_IsObject(root) && cJSON_GetObjectItemCaseSensitive(root, "error");
        cJSON_Delete(root);
        if (has_error)
            return word_body_error(s->secret, err, LLMUX_ERR_BAD_RESPONSE, what, s->json.data, s->json.len);
        return llmux__err(err, LLMUX_ERR_BAD_RESPONSE, "%s (%zu bytes, no \"error\" in it)", what,
                          s->json.len);
    }
    if (!s->done)
        return llmux__err(err, LLMUX_ERR_CONNECT,
                          "the stream ended before \"data: [DONE]\" (after %zu events)",
                          s->sse.events);
    return LLMUX_OK;
}

static void openai_stream_free(void *st)
{
    openai_stream *s = st;
    if (!s)
        return;
    llmux__sse_free(&s->sse);
    llmux__buf_free(&s->json);
    free(s);
}

const lx_provider_ops llmux__openai_ops = {
    .type = "openai",
    .default_base_url = "https://api.openai.com/v1",
    .config_keys = NULL,
    .configure = openai_configure,
    .release = openai_release,
    .build_request = openai_build_request,
    .parse_response = openai_parse_response,
    .classify_error = openai_classify_error,
    .stream_new = openai_stream_new,
    .stream_feed = openai_stream_feed,
    .stream_finish = openai_stream_finish,
    .stream_free = openai_stream_free,
};
