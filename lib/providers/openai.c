/*
 * The OpenAI-compatible adapter: OpenAI itself and every server speaking its
 * Chat Completions API (vLLM, Ollama, Groq, Together, DeepSeek, OpenRouter...).
 * The request passes through with the target's model id; the response passes
 * through after validation, so provider extensions reach the caller intact.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/classify.h"
#include "providers/provider.h"
#include "wire/json_check.h"
#include "wire/json_members.h"
#include "wire/sse.h"

/* libcurl sends "Expect: 100-continue" (an extra round trip) for bodies over
 * 1 MiB; an empty "Expect:" header turns that off. Each custom header costs
 * libcurl work on every request, so small bodies get a list without it. */
#define EXPECT_THRESHOLD (1024 * 1024)

typedef struct openai_state {
    char *url;
    struct curl_slist *headers[2][2]; /* [stream][large body] */
} openai_state;

static struct curl_slist *append(struct curl_slist *list, const char *line, int *failed)
{
    struct curl_slist *n = curl_slist_append(list, line);
    if (!n) {
        *failed = 1;
        return list;
    }
    return n;
}

static struct curl_slist *build_headers(const lx_provider_cfg *p, int stream, int large,
                                        int *failed)
{
    struct curl_slist *h = NULL;
    h = append(h, "Content-Type: application/json", failed);
    if (stream)
        h = append(h, "Accept: text/event-stream", failed);
    if (large)
        h = append(h, "Expect:", failed);
    if (p->api_key) {
        size_t n = strlen(p->api_key) + sizeof "Authorization: Bearer ";
        char *line = malloc(n);
        if (!line) {
            *failed = 1;
        } else {
            snprintf(line, n, "Authorization: Bearer %s", p->api_key);
            h = append(h, line, failed);
            memset(line, 0, n);
            free(line);
        }
    }
    for (size_t i = 0; i < p->n_extra_headers; i++)
        h = append(h, p->extra_headers[i], failed);
    return h;
}

static void openai_release(lx_provider_cfg *p)
{
    openai_state *st = p->adapter_state;
    if (!st)
        return;
    free(st->url);
    for (int i = 0; i < 4; i++)
        curl_slist_free_all(st->headers[i / 2][i % 2]);
    free(st);
    p->adapter_state = NULL;
}

static int openai_prepare(lx_provider_cfg *p, lx_err *err)
{
    openai_state *st = calloc(1, sizeof *st);
    if (!st)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    p->adapter_state = st;
    size_t n = strlen(p->base_url) + sizeof "/chat/completions";
    st->url = malloc(n);
    int failed = !st->url;
    if (st->url)
        snprintf(st->url, n, "%s/chat/completions", p->base_url);
    for (int i = 0; i < 4; i++)
        st->headers[i / 2][i % 2] = build_headers(p, i / 2, i % 2, &failed);
    if (failed) {
        openai_release(p);
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    return LLMUX_OK;
}

/* Set obj[key] = value, taking ownership of value even when it fails. */
static int set_member(cJSON *obj, const char *key, cJSON *value)
{
    if (!value)
        return -1;
    cJSON_bool ok = cJSON_GetObjectItemCaseSensitive(obj, key)
                        ? cJSON_ReplaceItemInObjectCaseSensitive(obj, key, value)
                        : cJSON_AddItemToObject(obj, key, value);
    if (!ok) {
        cJSON_Delete(value);
        return -1;
    }
    return 0;
}

/* The caller's bytes with the model replaced and any "stream" and
 * "stream_options" members dropped; NULL when the text holds something the
 * member scan does not handle (the caller then prints the cJSON tree). */
#define SPLICE_MAX_MEMBERS 64
static char *splice_model(const lx_request *req, const char *model, size_t *out_len)
{
    const char *raw = req->raw;
    size_t raw_len = req->raw_len;
    lx_json_member scanned[SPLICE_MAX_MEMBERS];
    const lx_json_member *m = req->members;
    int n = req->n_members; /* recorded by validation, usually */
    if (n < 0) {
        m = scanned;
        n = llmux__json_members(raw, raw_len, scanned, SPLICE_MAX_MEMBERS);
    }
    if (n <= 0)
        return NULL;
    int models = 0;
    for (int i = 0; i < n; i++) {
        if (m[i].key_escaped)
            return NULL; /* "mod\u0065l" and friends: let cJSON sort it out */
        if (llmux__json_key_is(&m[i], "model", 5))
            models++;
    }
    if (models != 1)
        return NULL;
    lx_buf b = LX_BUF_INIT;
    if (llmux__buf_reserve(&b, raw_len + strlen(model) * 2 + 16))
        return NULL;
    llmux__buf_append(&b, "{", 1);
    int first = 1, bad = 0;
    for (int i = 0; i < n && !bad; i++) {
        if (llmux__json_key_is(&m[i], "stream", 6) || llmux__json_key_is(&m[i], "stream_options", 14))
            continue;
        if (!first)
            bad |= llmux__buf_append(&b, ",", 1);
        first = 0;
        if (llmux__json_key_is(&m[i], "model", 5))
            bad |= llmux__buf_puts(&b, "\"model\":") || llmux__buf_json_string(&b, model);
        else
            bad |= llmux__buf_append(&b, raw + m[i].start, m[i].end - m[i].start);
    }
    if (bad || llmux__buf_append(&b, "}", 1)) {
        llmux__buf_free(&b);
        return NULL;
    }
    *out_len = b.len;
    return llmux__buf_steal(&b);
}

static int openai_build_request(const lx_provider_cfg *p, const char *model,
                                lx_request *req, int stream, lx_http_request *out,
                                lx_err *err)
{
    const openai_state *st = p->adapter_state;
    if (!stream && req->raw) {
        /* the hot path: pass the caller's bytes through, model replaced */
        size_t len = 0;
        char *body = splice_model(req, model, &len);
        if (body) {
            out->url = st->url;
            out->body = body;
            out->body_len = len;
            out->headers = st->headers[0][len > EXPECT_THRESHOLD];
            return LLMUX_OK;
        }
    }
    cJSON *request = llmux__request_tree(req, err);
    if (!request)
        return LLMUX_ERR_NO_MEMORY;
    cJSON *m = cJSON_GetObjectItemCaseSensitive(request, "model");
    if (m && cJSON_IsString(m) && strcmp(m->valuestring, model) != 0) {
        if (!cJSON_SetValuestring(m, model))
            return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    } else if (!m || !cJSON_IsString(m)) {
        if (set_member(request, "model", cJSON_CreateString(model)))
            return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    if (stream) {
        cJSON *so = cJSON_CreateObject();
        if (so && !cJSON_AddTrueToObject(so, "include_usage")) { /* NULL: set_member fails */
            cJSON_Delete(so);
            so = NULL;
        }
        if (set_member(request, "stream", cJSON_CreateTrue())) {
            cJSON_Delete(so);
            return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        }
        if (set_member(request, "stream_options", so))
            return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    } else {
        cJSON_DeleteItemFromObjectCaseSensitive(request, "stream");
        cJSON_DeleteItemFromObjectCaseSensitive(request, "stream_options");
    }
    char *body = cJSON_PrintUnformatted(request);
    if (!body)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    out->url = st->url;
    out->body = body;
    out->body_len = strlen(body);
    out->headers = st->headers[stream != 0][out->body_len > EXPECT_THRESHOLD];
    return LLMUX_OK;
}

static long get_long_member(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? llmux__token_count(v->valuedouble) : -1;
}

/* Usage from an OpenAI `usage` object (also used for stream chunks). */
static void read_usage(const cJSON *usage, lx_usage *u)
{
    if (!cJSON_IsObject(usage))
        return;
    u->prompt_tokens = get_long_member(usage, "prompt_tokens");
    u->completion_tokens = get_long_member(usage, "completion_tokens");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens_details");
    u->cached_tokens = cJSON_IsObject(d) ? get_long_member(d, "cached_tokens") : -1;
}

/* The message, type and code of an OpenAI-style error body, in whatever of the
 * common shapes the server used; falls back to the raw body's start. */
static void error_text(const char *body, size_t len, char *msg, size_t cap, char *code,
                       size_t code_cap)
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
    if (cJSON_IsString(m)) {
        llmux__sanitize_text(msg, cap, m->valuestring, strlen(m->valuestring));
    } else if (body && len) {
        llmux__sanitize_text(msg, cap > 201 ? 201 : cap, body, len);
    }
    if (cJSON_IsString(c))
        llmux__sanitize_text(code, code_cap, c->valuestring, strlen(c->valuestring));
    else if (cJSON_IsNumber(c))
        snprintf(code, code_cap, "%d", c->valueint);
    else if (cJSON_IsString(t))
        llmux__sanitize_text(code, code_cap, t->valuestring, strlen(t->valuestring));
    cJSON_Delete(root);
}

/* "<what> (code): message" from an error body, as an error of status. */
static int word_body_error(lx_err *err, int status, const char *what, const char *body,
                           size_t len)
{
    char msg[320], code[64];
    error_text(body, len, msg, sizeof msg, code, sizeof code);
    return llmux__err(err, status, "%s%s%s%s: %s", what, code[0] ? " (" : "", code,
                      code[0] ? ")" : "", msg[0] ? msg : "(empty body)");
}

static int openai_classify_error(const lx_provider_cfg *p, long http_status, const char *body,
                                 size_t len, lx_err *err)
{
    char msg[320], code[64];
    error_text(body, len, msg, sizeof msg, code, sizeof code);
    int status = llmux__status_for_http(http_status);
    if ((http_status == 400 || http_status == 413) &&
        (llmux__is_context_overflow(code) || llmux__is_context_overflow(msg)))
        status = LLMUX_ERR_CONTEXT_WINDOW;
    else if (http_status == 400 && strcmp(code, "content_filter") == 0)
        status = LLMUX_ERR_CONTENT_FILTER;
    err->http_status = (int)http_status;
    return llmux__err(err, status, "HTTP %ld%s%s%s: %s", http_status, code[0] ? " (" : "", code,
                      code[0] ? ")" : "", msg[0] ? msg : "(empty body)");
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
    lx_json_member m[24], d[16];
    int n = llmux__json_members(s + start, end - start, m, 24);
    if (n < 0)
        return 0;
    s += start;
    const lx_json_member *pt = find_member(m, n, "prompt_tokens", 13);
    const lx_json_member *ct = find_member(m, n, "completion_tokens", 17);
    const lx_json_member *det = find_member(m, n, "prompt_tokens_details", 21);
    u->prompt_tokens = pt ? int_value(s, pt) : -1;
    u->completion_tokens = ct ? int_value(s, ct) : -1;
    u->cached_tokens = -1;
    if ((pt && u->prompt_tokens < 0) || (ct && u->completion_tokens < 0))
        return 0;
    if (det && s[det->value] == '{') {
        int nd = llmux__json_members(s + det->value, det->end - det->value, d, 16);
        if (nd < 0)
            return 0;
        const lx_json_member *cached = find_member(d, nd, "cached_tokens", 13);
        if (cached && (u->cached_tokens = int_value(s + det->value, cached)) < 0)
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
        rc = word_body_error(err, LLMUX_ERR_PROVIDER, "HTTP 200 with an error body", body->data,
                             body->len);
        err->http_status = 200;
        goto done;
    }
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
    if (!cJSON_IsArray(choices)) {
        rc = llmux__err(err, LLMUX_ERR_BAD_RESPONSE,
                        "the response has no \"choices\" array: not a chat.completion");
        goto done;
    }
    read_usage(cJSON_GetObjectItemCaseSensitive(root, "usage"), usage);
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

static void *openai_stream_new(const lx_provider_cfg *p, const lx_config *cfg)
{
    openai_stream *s = calloc(1, sizeof *s);
    if (s) {
        llmux__sse_init(&s->sse, cfg ? cfg->max_response_bytes : 0);
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
        s->status = word_body_error(s->err, LLMUX_ERR_PROVIDER, "error inside the stream", data,
                                    len);
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
        return LX_STREAM_DONE;
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
    if (rc == -1)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    if (rc == -2)
        return llmux__err(err, LLMUX_ERR_BAD_RESPONSE, "a stream event exceeds %zu bytes",
                          s->sse.max_event);
    if (rc == EVENT_DONE)
        return LX_STREAM_DONE;
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
            return word_body_error(err, LLMUX_ERR_BAD_RESPONSE, what, s->json.data, s->json.len);
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
    .prepare = openai_prepare,
    .release = openai_release,
    .build_request = openai_build_request,
    .parse_response = openai_parse_response,
    .classify_error = openai_classify_error,
    .stream_new = openai_stream_new,
    .stream_feed = openai_stream_feed,
    .stream_finish = openai_stream_finish,
    .stream_free = openai_stream_free,
};
