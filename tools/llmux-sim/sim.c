/* sim.c - routing: chat completions per deployment, faults, the control API. */
#include "sim.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "anthropic.h"
#include "azure.h"
#include "bedrock.h"
#include "chat.h"
#include "faults.h"
#include "gemini.h"
#include "hostile.h"
#include "http.h"

static const char chat_suffix[] = "/v1/chat/completions";

static int span_is(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n == l && memcmp(p, lit, l) == 0;
}

static size_t put(char *dst, size_t off, size_t cap, const char *s, size_t n)
{
    if (off + n > cap)
        return cap + 1; /* sticks: the caller checks off <= cap */
    memcpy(dst + off, s, n);
    return off + n;
}

int sim_respond(sim_conn *c, int status, const char *content_type, const char *body, size_t len,
                int keep_alive, const char *extra_headers)
{
    /* no printf here: this runs for every answer */
    char head[1024], num[24];
    const size_t cap = sizeof head;
    size_t o = 0, i;
    const char *reason = http_reason(status);
    o = put(head, o, cap, "HTTP/1.1 ", 9);
    num[0] = (char)('0' + status / 100 % 10);
    num[1] = (char)('0' + status / 10 % 10);
    num[2] = (char)('0' + status % 10);
    num[3] = ' ';
    o = put(head, o, cap, num, 4);
    o = put(head, o, cap, reason, strlen(reason));
    o = put(head, o, cap, "\r\nContent-Type: ", 16);
    o = put(head, o, cap, content_type, strlen(content_type));
    o = put(head, o, cap, "\r\nContent-Length: ", 18);
    i = sizeof num;
    size_t v = len;
    do {
        num[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    o = put(head, o, cap, num + i, sizeof num - i);
    o = put(head, o, cap, "\r\n", 2);
    if (!keep_alive)
        o = put(head, o, cap, "Connection: close\r\n", 19);
    if (extra_headers)
        o = put(head, o, cap, extra_headers, strlen(extra_headers));
    o = put(head, o, cap, "\r\n", 2);
    if (o > cap)
        return -1;
    return sim_conn_send2(c, head, o, body, len);
}

static int respond_json(sim_conn *c, int status, const sim_buf *b, int keep_alive,
                        const char *extra)
{
    if (!sim_buf_ok(b)) {
        static const char oom[] = "{\"error\":{\"message\":\"response too large\","
                                  "\"type\":\"server_error\",\"param\":null,\"code\":null}}";
        return sim_respond(c, 500, "application/json", oom, sizeof oom - 1, 0, NULL);
    }
    return sim_respond(c, status, "application/json", b->data ? b->data : "", b->len, keep_alive,
                       extra);
}

static int respond_error(sim_conn *c, int status, const char *msg, const char *type,
                         const char *param, const char *code, int keep_alive, const char *extra)
{
    sim_buf_reset(&c->out);
    sim_error_json(&c->out, msg, type, param, code);
    return respond_json(c, status, &c->out, keep_alive, extra);
}

void sim_respond_http_error(sim_conn *c, int status)
{
    const char *msg;
    switch (status) {
    case 413: msg = "request body too large (at most 8 MiB)"; break;
    case 414: msg = "request target too long (at most 8 KiB)"; break;
    case 417: msg = "unsupported Expect header (only 100-continue)"; break;
    case 431: msg = "request header fields too large (at most 64 KiB)"; break;
    case 501: msg = "unsupported Transfer-Encoding (only chunked)"; break;
    case 505: msg = "HTTP version not supported (HTTP/1.0 and HTTP/1.1 only)"; break;
    default: msg = "malformed HTTP request"; break;
    }
    respond_error(c, status, msg, "invalid_request_error", NULL, NULL, 0, NULL);
}

/* The OpenAI-style error body a status fault sends when it has none of its own. */
static void default_fault_body(sim_buf *out, int status)
{
    char msg[128];
    const char *type = status >= 500 ? "server_error" : "invalid_request_error";
    const char *code = NULL;
    switch (status) {
    case 400: snprintf(msg, sizeof msg, "simulated bad request"); break;
    case 401:
        snprintf(msg, sizeof msg, "Incorrect API key provided (simulated)");
        code = "invalid_api_key";
        break;
    case 403: snprintf(msg, sizeof msg, "simulated permission denied"); type = "permission_error"; break;
    case 404:
        snprintf(msg, sizeof msg, "The model does not exist (simulated)");
        code = "model_not_found";
        break;
    case 408: snprintf(msg, sizeof msg, "simulated request timeout"); type = "timeout"; break;
    case 429:
        snprintf(msg, sizeof msg, "Rate limit reached (simulated)");
        type = "requests";
        code = "rate_limit_exceeded";
        break;
    case 500:
        snprintf(msg, sizeof msg, "The server had an error while processing your request (simulated)");
        break;
    case 503:
        snprintf(msg, sizeof msg, "The server is overloaded or not ready yet (simulated)");
        break;
    default: snprintf(msg, sizeof msg, "simulated error (HTTP %d)", status); break;
    }
    sim_error_json(out, msg, type, NULL, code);
}

static const char stream_head_fmt[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                      "Cache-Control: no-cache\r\n%s\r\n";

static int stream_head(char *buf, size_t n, int chunked)
{
    return snprintf(buf, n, stream_head_fmt,
                    chunked ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n");
}

/* Streams the answer. mode: 0 normal, 1 stream_drop (two events, then close),
 * 2 slow_stream (ms between events). */
static int send_stream(sim_conn *c, const chat_answer *a, int chunked, int mode, long ms, int az)
{
    size_t ends[CHAT_STREAM_EVENTS_MAX];
    char head[256];
    int hl = stream_head(head, sizeof head, chunked);
    sim_buf_reset(&c->out);
    size_t nev = (az ? sim_azure_render_stream : chat_render_stream)(
        &c->out, &c->scratch, a, chunked, ends, CHAT_STREAM_EVENTS_MAX);
    if (!sim_buf_ok(&c->out) || !sim_buf_ok(&c->scratch) || nev < 2) {
        /* e.g. a megabyte model name echoed in every event: past the output cap */
        respond_error(c, 500, "response too large", "server_error", NULL, NULL, 0, NULL);
        return -1;
    }
    if (mode == 1)
        return sim_conn_send2(c, head, (size_t)hl, c->out.data, ends[1]) < 0 ? -1 : 1;
    if (mode == 0)
        return sim_conn_send2(c, head, (size_t)hl, c->out.data, c->out.len);
    if (sim_conn_send2(c, head, (size_t)hl, c->out.data, ends[0]) < 0)
        return -1;
    for (size_t i = 1; i < nev; i++) {
        if (sim_sleep_ms(ms) < 0)
            return -1;
        size_t end = i + 1 == nev ? c->out.len : ends[i]; /* the last carries the 0-chunk */
        if (sim_conn_send2(c, c->out.data + ends[i - 1], end - ends[i - 1], NULL, 0) < 0)
            return -1;
    }
    return 0;
}

static int handle_chat(sim_conn *c, const sim_request *r, const char *dep, size_t dep_len, int az)
{
    int keep = r->keep_alive;
    cJSON *req = cJSON_ParseWithLength(r->body, r->body_len);
    int action = SIM_CLOSE;
    sim_ticket t;
    sim_buf_reset(&c->aux);
    if (sim_registry_request(dep, dep_len, r->path, r->path_len, r->auth, r->auth_len, r->has_auth,
                             r->body, r->body_len, &t, &c->aux) < 0) {
        if (respond_error(c, 503,
                          "too many deployments (at most 1024); DELETE some or POST /_sim/reset",
                          "server_error", NULL, NULL, keep, NULL) == 0 && keep)
            action = SIM_KEEP;
        goto done;
    }
    if (t.latency_ms > 0 && sim_sleep_ms(t.latency_ms) < 0)
        goto done;
    if (!t.auth_ok && az) {
        sim_buf_reset(&c->out);
        sim_azure_error_body(&c->out, 401);
        action = respond_json(c, 401, &c->out, keep, NULL) == 0 && keep ? SIM_KEEP : SIM_CLOSE;
        goto done;
    }
    if (!t.auth_ok) {
        respond_error(c, 401, "Incorrect API key provided.", "invalid_request_error", NULL,
                      "invalid_api_key", keep, NULL);
        action = keep ? SIM_KEEP : SIM_CLOSE;
        goto done;
    }
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(req, "stream");
    int wants_stream = cJSON_IsTrue(st);
    int chunked = r->minor_version >= 1;
    sim_fault_type fault = t.fault;
    if (!wants_stream && fault == SIM_FAULT_STREAM_DROP)
        fault = SIM_FAULT_DROP_MID_BODY;
    if (wants_stream && fault == SIM_FAULT_DROP_MID_BODY)
        fault = SIM_FAULT_STREAM_DROP;
    if (!wants_stream && fault == SIM_FAULT_SLOW_STREAM) {
        fault = SIM_FAULT_LATENCY;
    }

    switch (fault) {
    case SIM_FAULT_STATUS: {
        char extra[128] = "";
        if (t.retry_after[0])
            snprintf(extra, sizeof extra, "Retry-After: %s\r\n", t.retry_after);
        sim_buf_reset(&c->out);
        if (t.has_body)
            sim_buf_append(&c->out, c->aux.data, c->aux.len);
        else
            (az ? sim_azure_error_body : default_fault_body)(&c->out, t.status);
        respond_json(c, t.status, &c->out, keep, extra[0] ? extra : NULL);
        action = keep ? SIM_KEEP : SIM_CLOSE;
        goto done;
    }
    case SIM_FAULT_LATENCY:
        if (sim_sleep_ms(t.ms) < 0)
            goto done;
        break;
    case SIM_FAULT_DROP:
        goto done;
    case SIM_FAULT_HOSTILE:
        action = sim_hostile(c, r, &t, wants_stream);
        goto done;
    case SIM_FAULT_MALFORMED:
        if (wants_stream) {
            char head[256];
            int hl = stream_head(head, sizeof head, chunked);
            sim_buf_reset(&c->out);
            if (chunked)
                sim_buf_printf(&c->out, "%zx\r\n%s\r\n", sizeof CHAT_MALFORMED_EVENT - 1,
                               CHAT_MALFORMED_EVENT);
            else
                sim_buf_puts(&c->out, CHAT_MALFORMED_EVENT);
            sim_buf_puts(&c->out, chunked ? "e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n" : "data: [DONE]\n\n");
            sim_conn_send2(c, head, (size_t)hl, c->out.data, c->out.len);
            action = chunked && keep ? SIM_KEEP : SIM_CLOSE;
        } else {
            sim_respond(c, 200, "application/json", CHAT_MALFORMED_BODY,
                        sizeof CHAT_MALFORMED_BODY - 1, keep, NULL);
            action = keep ? SIM_KEEP : SIM_CLOSE;
        }
        goto done;
    default:
        break;
    }

    chat_answer a;
    memset(&a, 0, sizeof a);
    a.deployment = dep;
    a.deployment_len = dep_len;
    a.n = t.n;
    a.created = time(NULL);
    char msg[256];
    const char *param = NULL;
    int status = 200;
    sim_buf_reset(&c->out);
    if (chat_prepare(&a, req, msg, sizeof msg, &param) < 0) {
        sim_error_json(&c->out, msg, "invalid_request_error", param, NULL);
        status = 400;
    } else if (a.stream) {
        int mode = fault == SIM_FAULT_STREAM_DROP ? 1 : fault == SIM_FAULT_SLOW_STREAM ? 2 : 0;
        int rc = send_stream(c, &a, chunked, mode, t.ms, az);
        action = rc == 0 && chunked && keep ? SIM_KEEP : SIM_CLOSE;
        goto done;
    } else if (az) {
        sim_azure_render_json(&c->out, &c->scratch, &a);
    } else {
        chat_render_json(&c->out, &a);
    }
    if (fault == SIM_FAULT_DROP_MID_BODY && sim_buf_ok(&c->out)) {
        /* announce the full length, send half, hang up */
        char head[256];
        int hl = snprintf(head, sizeof head,
                          "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\n\r\n",
                          status, http_reason(status), c->out.len);
        sim_conn_send2(c, head, (size_t)hl, c->out.data, c->out.len / 2);
        goto done;
    }
    if (respond_json(c, status, &c->out, keep, NULL) == 0 && keep)
        action = SIM_KEEP;
done:
    cJSON_Delete(req);
    return action;
}

/* /_sim/deployments/{name} and /_sim/reset */
static int handle_control(sim_conn *c, const sim_request *r)
{
    static const char dep_prefix[] = "/_sim/deployments/";
    const size_t pl = sizeof dep_prefix - 1;
    int keep = r->keep_alive;
    int status;
    sim_buf_reset(&c->out);
    if (r->path_len > pl && memcmp(r->path, dep_prefix, pl) == 0) {
        const char *name = r->path + pl;
        size_t nl = r->path_len - pl;
        if (!sim_name_valid(name, nl)) {
            sim_error_json(&c->out, "invalid deployment name (must match [A-Za-z0-9_.-]{1,64})",
                           "invalid_request_error", "name", NULL);
            status = 400;
        } else if (span_is(r->method, r->method_len, "PUT")) {
            status = sim_registry_put(name, nl, r->body, r->body_len, &c->out);
        } else if (span_is(r->method, r->method_len, "GET")) {
            status = sim_registry_get(name, nl, &c->out);
        } else if (span_is(r->method, r->method_len, "DELETE")) {
            status = sim_registry_delete(name, nl, &c->out);
        } else {
            sim_error_json(&c->out, "method not allowed (GET, PUT or DELETE)",
                           "invalid_request_error", NULL, NULL);
            return respond_json(c, 405, &c->out, keep, "Allow: GET, PUT, DELETE\r\n") == 0 && keep
                       ? SIM_KEEP
                       : SIM_CLOSE;
        }
    } else if (span_is(r->path, r->path_len, "/_sim/reset")) {
        if (!span_is(r->method, r->method_len, "POST")) {
            sim_error_json(&c->out, "method not allowed (POST)", "invalid_request_error", NULL,
                           NULL);
            return respond_json(c, 405, &c->out, keep, "Allow: POST\r\n") == 0 && keep
                       ? SIM_KEEP
                       : SIM_CLOSE;
        }
        status = sim_registry_reset(&c->out);
    } else {
        sim_error_json(&c->out, "unknown control path (see docs/simulator.md)",
                       "invalid_request_error", NULL, NULL);
        status = 404;
    }
    return respond_json(c, status, &c->out, keep, NULL) == 0 && keep ? SIM_KEEP : SIM_CLOSE;
}

int sim_handle(sim_conn *c, const sim_request *r)
{
    const char *p = r->path;
    size_t n = r->path_len;
    const size_t sl = sizeof chat_suffix - 1;
    const char *dep = NULL;
    size_t dep_len = 0;

    if (n >= 6 && memcmp(p, "/_sim/", 6) == 0)
        return handle_control(c, r);
    const size_t al = sizeof ANTHROPIC_SUFFIX - 1; /* POST /{deployment}/v1/messages */
    if (n > al + 1 && p[0] == '/' && memcmp(p + n - al, ANTHROPIC_SUFFIX, al) == 0 &&
        sim_name_valid(p + 1, n - al - 1) && span_is(r->method, r->method_len, "POST"))
        return sim_anthropic(c, r, p + 1, n - al - 1);
    if (sim_bedrock_match(r))
        return sim_bedrock_handle(c, r);
    /* Gemini: /{deployment}/v1beta/models/{model}:(stream)GenerateContent */
    const char *gm = NULL, *colon = NULL;
    for (size_t i = 1; !gm && i + 15 <= n; i++)
        gm = memcmp(p + i, "/v1beta/models/", 15) == 0 ? p + i : NULL;
    colon = gm ? memchr(gm, ':', n - (size_t)(gm - p)) : NULL;
    if (gm && colon && gm > p + 1 && sim_name_valid(p + 1, (size_t)(gm - p - 1)) &&
        span_is(r->method, r->method_len, "POST")) {
        size_t rest = n - (size_t)(colon - p);
        int st = span_is(colon, rest, ":streamGenerateContent");
        if (st || span_is(colon, rest, ":generateContent"))
            return sim_gemini_handle(c, r, p + 1, (size_t)(gm - p - 1), gm + 15, (size_t)(colon - gm - 15), st);
    }
    sim_request az;
    char az_auth[SIM_AZURE_AUTH_MAX];
    int keep = 0, azure = sim_azure_route(c, r, &az, az_auth, &dep, &dep_len, &keep);
    if (azure == 2)
        return keep ? SIM_KEEP : SIM_CLOSE;
    if (azure)
        r = &az;
    else if (span_is(p, n, chat_suffix)) {
        dep = "default";
        dep_len = 7;
    } else if (n > sl + 1 && p[0] == '/' && memcmp(p + n - sl, chat_suffix, sl) == 0) {
        dep = p + 1;
        dep_len = n - sl - 1;
        if (!sim_name_valid(dep, dep_len))
            dep = NULL;
    }
    if (!dep) {
        respond_error(c, 404, "unknown path: use POST /{deployment}/v1/chat/completions",
                      "invalid_request_error", NULL, "unknown_url", r->keep_alive, NULL);
        return r->keep_alive ? SIM_KEEP : SIM_CLOSE;
    }
    if (!span_is(r->method, r->method_len, "POST")) {
        respond_error(c, 405, "method not allowed (POST)", "invalid_request_error", NULL, NULL,
                      r->keep_alive, "Allow: POST\r\n");
        return r->keep_alive ? SIM_KEEP : SIM_CLOSE;
    }
    return handle_chat(c, r, dep, dep_len, azure);
}
