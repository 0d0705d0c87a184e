/* gemini.c - the Gemini API of llmux-sim: generateContent and
 * streamGenerateContent (alt=sse, or a JSON array without it), checked the
 * way the real API checks (roles, functionResponse names, thought signatures,
 * the key in x-goog-api-key), with Gemini's error shapes. docs/simulator.md
 * describes the answers. */
#include "gemini.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "faults.h"
#include "hostile.h"
#include "http.h"

enum { GEM_TEXT_MAX = 200 };

/* The signature the simulator gives a call to `name` and expects back. */
static void signature_for(const char *name, char *out, size_t cap)
{
    /* base64 of nothing in particular, but stable and name-bound */
    snprintf(out, cap, "c2ltLXNpZw%.40s==", name);
}

static int respond_gemini_error(sim_conn *c, int status, const char *gstatus, const char *msg,
                                const char *reason, const char *retry, int keep)
{
    sim_buf *o = &c->out;
    sim_buf_reset(o);
    sim_buf_printf(o, "{\"error\":{\"code\":%d,\"message\":", status);
    sim_buf_json_str(o, msg, strlen(msg));
    sim_buf_printf(o, ",\"status\":\"%s\"", gstatus);
    if (reason || retry) {
        sim_buf_puts(o, ",\"details\":[");
        if (reason)
            sim_buf_printf(o, "{\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\","
                              "\"reason\":\"%s\",\"domain\":\"googleapis.com\"}", reason);
        if (retry) {
            sim_buf_printf(o, "%s{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\","
                              "\"retryDelay\":", reason ? "," : "");
            sim_buf_json_str(o, retry, strlen(retry));
            sim_buf_puts(o, "}");
        }
        sim_buf_puts(o, "]");
    }
    sim_buf_puts(o, "}}");
    sim_respond(c, status, "application/json", o->data, o->len, keep, NULL);
    return keep ? SIM_KEEP : SIM_CLOSE;
}

/* The default body of a status fault, in Gemini's shape. */
static const struct {
    int status;
    const char *gstatus, *message;
} fault_bodies[] = {
    {400, "INVALID_ARGUMENT", "Request contains an invalid argument. (simulated)"},
    {401, "UNAUTHENTICATED", "Request had invalid authentication credentials. (simulated)"},
    {403, "PERMISSION_DENIED", "The caller does not have permission (simulated)"},
    {404, "NOT_FOUND", "models/x is not found for API version v1beta (simulated)"},
    {429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota). (simulated)"},
    {500, "INTERNAL", "An internal error has occurred. (simulated)"},
    {503, "UNAVAILABLE", "The model is overloaded. Please try again later. (simulated)"},
    {504, "DEADLINE_EXCEEDED", "The request timed out. (simulated)"},
};

static int status_fault(sim_conn *c, const sim_ticket *t, int keep)
{
    if (t->has_body)
        return sim_respond(c, t->status, "application/json", c->aux.data, c->aux.len, keep,
                           NULL) == 0 && keep ? SIM_KEEP : SIM_CLOSE;
    char retry[80];
    snprintf(retry, sizeof retry, "%ss", t->retry_after);
    for (size_t i = 0; i < sizeof fault_bodies / sizeof fault_bodies[0]; i++)
        if (fault_bodies[i].status == t->status)
            return respond_gemini_error(c, t->status, fault_bodies[i].gstatus,
                                        fault_bodies[i].message, NULL,
                                        t->status == 429 && t->retry_after[0] ? retry : NULL, keep);
    return respond_gemini_error(c, t->status, "UNKNOWN", "simulated error", NULL, NULL, keep);
}

static const char *str_of(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

typedef struct gem_answer {
    char text[GEM_TEXT_MAX + 8];
    size_t text_len;
    long prompt_bytes;
    const char *call;   /* function to call (in call_buf), or NULL */
    char call_buf[128];
    int json;           /* responseMimeType application/json */
} gem_answer;

/* Checks the request as the API does; 0, or -1 with msg. */
static int gem_check(const cJSON *req, gem_answer *a, char *msg, size_t cap)
{
    if (!cJSON_IsObject(req)) {
        snprintf(msg, cap, "Invalid JSON payload received.");
        return -1;
    }
    const cJSON *contents = cJSON_GetObjectItemCaseSensitive(req, "contents");
    if (!cJSON_IsArray(contents) || !contents->child) {
        snprintf(msg, cap, "* GenerateContentRequest.contents: contents is not specified");
        return -1;
    }
    const cJSON *calls[64];
    const cJSON *call_parts[64];
    int ncalls = 0, i = 0;
    for (const cJSON *t = contents->child; t; t = t->next, i++) {
        const char *role = str_of(t, "role");
        const cJSON *parts = cJSON_GetObjectItemCaseSensitive(t, "parts");
        if (!role || (strcmp(role, "user") && strcmp(role, "model"))) {
            snprintf(msg, cap, "Please use a valid role: user, model.");
            return -1;
        }
        if (!cJSON_IsArray(parts) || !parts->child) {
            snprintf(msg, cap, "* GenerateContentRequest.contents[%d].parts: contents.parts must not be empty.", i);
            return -1;
        }
        int user = strcmp(role, "user") == 0;
        if (user)
            a->text_len = 0;
        int first_call = 1;
        for (const cJSON *p = parts->child; p; p = p->next) {
            const char *text = str_of(p, "text");
            const cJSON *fc = cJSON_GetObjectItemCaseSensitive(p, "functionCall");
            const cJSON *fr = cJSON_GetObjectItemCaseSensitive(p, "functionResponse");
            if (text) {
                size_t n = strlen(text);
                a->prompt_bytes += (long)n;
                if (user) {
                    size_t room = GEM_TEXT_MAX - a->text_len;
                    if (a->text_len && room) {
                        a->text[a->text_len++] = ' ';
                        room--;
                    }
                    size_t k = sim_utf8_prefix(text, n, room);
                    memcpy(a->text + a->text_len, text, k);
                    a->text_len += k;
                }
            } else if (cJSON_IsObject(fc)) {
                if (user) {
                    snprintf(msg, cap, "Please ensure that functionCall turns come from the model.");
                    return -1;
                }
                const char *sig = str_of(p, "thoughtSignature");
                char want[80];
                signature_for(str_of(fc, "name") ? str_of(fc, "name") : "", want, sizeof want);
                if (first_call && (!sig || strcmp(sig, want))) {
                    snprintf(msg, cap, "Function call is missing a thought_signature in "
                                       "functionCall parts. This is required for tools to work "
                                       "correctly (contents[%d]).", i);
                    return -1;
                }
                first_call = 0;
                if (ncalls < 64) {
                    call_parts[ncalls] = p;
                    calls[ncalls++] = fc;
                }
            } else if (cJSON_IsObject(fr)) {
                const char *name = str_of(fr, "name");
                int found = 0;
                for (int k = 0; k < ncalls && name; k++)
                    found |= str_of(calls[k], "name") && strcmp(str_of(calls[k], "name"), name) == 0;
                if (!found || !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(fr, "response"))) {
                    snprintf(msg, cap, "Please ensure that the number of function response parts "
                                       "is equal to the number of function call parts of the "
                                       "function call turn (functionResponse %.64s).",
                             name ? name : "(no name)");
                    return -1;
                }
            } else if (!cJSON_GetObjectItemCaseSensitive(p, "inlineData") &&
                       !cJSON_GetObjectItemCaseSensitive(p, "fileData")) {
                snprintf(msg, cap, "* GenerateContentRequest.contents[%d].parts: unknown part kind", i);
                return -1;
            }
        }
    }
    (void)call_parts;
    const cJSON *si = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(req, "systemInstruction"), "parts");
    for (const cJSON *p = cJSON_IsArray(si) ? si->child : NULL; p; p = p->next)
        a->prompt_bytes += str_of(p, "text") ? (long)strlen(str_of(p, "text")) : 0;
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
    const cJSON *decls = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(tools, 0), "functionDeclarations");
    const cJSON *fcc = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(req, "toolConfig"),
                                                        "functionCallingConfig");
    const char *mode = str_of(fcc, "mode");
    if (mode && strcmp(mode, "ANY") == 0) {
        const cJSON *allowed = cJSON_GetObjectItemCaseSensitive(fcc, "allowedFunctionNames");
        const cJSON *first = cJSON_GetArrayItem(decls, 0);
        const char *name = cJSON_IsArray(allowed) && cJSON_IsString(allowed->child)
                               ? allowed->child->valuestring : str_of(first, "name");
        if (!name) {
            snprintf(msg, cap, "Function calling mode ANY needs function declarations.");
            return -1;
        }
        snprintf(a->call_buf, sizeof a->call_buf, "%s", name);
        a->call = a->call_buf;
    }
    const char *mime = str_of(cJSON_GetObjectItemCaseSensitive(req, "generationConfig"), "responseMimeType");
    a->json = mime && strcmp(mime, "application/json") == 0;
    return 0;
}

/* The model's answer text. */
static void answer_text(sim_buf *o, const gem_answer *a, const char *dep, size_t dep_len)
{
    if (a->json) {
        sim_buf_puts(o, "{\"echo\":");
        sim_buf_json_str(o, a->text, a->text_len);
        sim_buf_puts(o, "}");
    } else {
        sim_buf_printf(o, "[%.*s] %.*s", (int)dep_len, dep, (int)a->text_len, a->text);
    }
}

static long words(const char *s)
{
    long n = 0;
    for (int in = 0; *s; s++) {
        int sp = *s == ' ' || *s == '\n' || *s == '\t' || *s == '\r';
        n += !sp && !in;
        in = !sp;
    }
    return n;
}

static void usage_json(sim_buf *o, long prompt, long cand, int cached)
{
    long cache = cached ? prompt / 2 : 0, thoughts = cached ? 3 : 0;
    sim_buf_printf(o, "\"usageMetadata\":{\"promptTokenCount\":%ld,\"candidatesTokenCount\":%ld,"
                      "\"totalTokenCount\":%ld", prompt, cand, prompt + cand + thoughts);
    if (cached)
        sim_buf_printf(o, ",\"cachedContentTokenCount\":%ld,\"thoughtsTokenCount\":%ld", cache, thoughts);
    sim_buf_puts(o, "}");
}

static void call_part(sim_buf *o, const gem_answer *a)
{
    char sig[80];
    signature_for(a->call, sig, sizeof sig);
    sim_buf_puts(o, "{\"functionCall\":{\"name\":");
    sim_buf_json_str(o, a->call, strlen(a->call));
    sim_buf_puts(o, ",\"args\":{\"echo\":");
    sim_buf_json_str(o, a->text, a->text_len);
    sim_buf_printf(o, "}},\"thoughtSignature\":\"%s\"}", sig);
}

/* One GenerateContentResponse: `text` (or the call) with finish, usage. */
static void response_json(sim_buf *o, const gem_answer *a, const char *text, size_t len, int call,
                          const char *finish, long prompt, long cand, int cached,
                          const char *model, const char *rid)
{
    sim_buf_puts(o, "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[");
    if (call) {
        call_part(o, a);
    } else {
        sim_buf_puts(o, "{\"text\":");
        sim_buf_json_str(o, text, len);
        sim_buf_puts(o, "}");
    }
    sim_buf_puts(o, "]}");
    if (finish)
        sim_buf_printf(o, ",\"finishReason\":\"%s\"", finish);
    sim_buf_puts(o, ",\"index\":0}],");
    usage_json(o, prompt, cand, cached);
    sim_buf_puts(o, ",\"modelVersion\":");
    sim_buf_json_str(o, model, strlen(model));
    sim_buf_printf(o, ",\"responseId\":\"%s\"}", rid);
}

static int send_chunk(sim_conn *c, const char *data, size_t len)
{
    char head[32];
    int hl = snprintf(head, sizeof head, "%zx\r\n", len);
    return sim_conn_send2(c, head, (size_t)hl, data, len) || sim_conn_send2(c, "\r\n", 2, NULL, 0);
}

int sim_gemini_handle(sim_conn *c, const sim_request *r, const char *dep, size_t dep_len,
                      const char *model, size_t model_len, int stream)
{
    int keep = r->keep_alive;
    if (stream && !(r->query && r->query_len >= 7 && memcmp(r->query, "alt=sse", 7) == 0))
        return respond_gemini_error(c, 400, "INVALID_ARGUMENT",
                                    "llmux-sim streams only with ?alt=sse", NULL, NULL, keep);
    char modelz[128];
    snprintf(modelz, sizeof modelz, "%.*s", (int)(model_len < 120 ? model_len : 120), model);
    char auth[512] = "";
    int has_auth = r->has_goog_key;
    if (has_auth)
        snprintf(auth, sizeof auth, "Bearer %.*s", (int)(r->goog_key_len < 400 ? r->goog_key_len : 400),
                 r->goog_key);
    sim_ticket t;
    sim_buf_reset(&c->aux);
    if (sim_registry_request(dep, dep_len, r->path, r->path_len, auth, strlen(auth), has_auth,
                             r->body, r->body_len, &t, &c->aux) < 0)
        return respond_gemini_error(c, 503, "UNAVAILABLE", "too many deployments", NULL, NULL, keep);
    if (t.latency_ms > 0 && sim_sleep_ms(t.latency_ms) < 0)
        return SIM_CLOSE;
    if (!t.auth_ok)
        return respond_gemini_error(c, 400, "INVALID_ARGUMENT",
                                    "API key not valid. Please pass a valid API key.",
                                    "API_KEY_INVALID", NULL, keep);
    switch (t.fault) {
    case SIM_FAULT_STATUS: return status_fault(c, &t, keep);
    case SIM_FAULT_LATENCY:
    case SIM_FAULT_SLOW_STREAM:
        if (!stream && sim_sleep_ms(t.ms) < 0)
            return SIM_CLOSE;
        break;
    case SIM_FAULT_DROP: return SIM_CLOSE;
    case SIM_FAULT_HOSTILE: { /* the same attacks; echo_key quotes the x-goog-api-key */
        sim_request hr = *r;
        hr.auth = auth;
        hr.auth_len = strlen(auth);
        hr.has_auth = has_auth;
        return sim_hostile(c, &hr, &t, stream);
    }
    case SIM_FAULT_MALFORMED: {
        static const char bad[] = "{\"candidates\": [";
        if (stream) {
            static const char ev[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                     "Connection: close\r\n\r\ndata: {\"candidates\": [\r\n\r\n";
            sim_conn_send2(c, ev, sizeof ev - 1, NULL, 0);
            return SIM_CLOSE;
        }
        sim_respond(c, 200, "application/json", bad, sizeof bad - 1, keep, NULL);
        return keep ? SIM_KEEP : SIM_CLOSE;
    }
    default: break;
    }
    cJSON *req = cJSON_ParseWithLength(r->body, r->body_len);
    gem_answer a;
    memset(&a, 0, sizeof a);
    char msg[320];
    int bad = gem_check(req, &a, msg, sizeof msg);
    cJSON_Delete(req);
    if (bad)
        return respond_gemini_error(c, 400, "INVALID_ARGUMENT", msg, NULL, NULL, keep);

    /* behaviour scripted by the model name */
    int cached = strstr(modelz, "cached") != NULL;
    if (strstr(modelz, "blocked")) {
        static const char b[] = "{\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":"
                                "{\"promptTokenCount\":4,\"totalTokenCount\":4},\"modelVersion\":\"blocked\"}";
        if (stream) {
            char out[512];
            int n = snprintf(out, sizeof out, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                              "Connection: close\r\n\r\ndata: %s\r\n\r\n", b);
            sim_conn_send2(c, out, (size_t)n, NULL, 0);
            return SIM_CLOSE;
        }
        sim_respond(c, 200, "application/json", b, sizeof b - 1, keep, NULL);
        return keep ? SIM_KEEP : SIM_CLOSE;
    }
    const char *finish = strstr(modelz, "safety") ? "SAFETY" : "STOP";
    int in_stream_error = strstr(modelz, "overloaded") != NULL;

    char rid[96];
    snprintf(rid, sizeof rid, "sim-%.*s-%lu", (int)dep_len, dep, t.n);
    sim_buf_reset(&c->scratch);
    answer_text(&c->scratch, &a, dep, dep_len);
    const char *text = c->scratch.data ? c->scratch.data : "";
    size_t tlen = c->scratch.len;
    long prompt = (a.prompt_bytes + 3) / 4;
    long cand = a.call ? 8 : words(text);
    sim_buf_reset(&c->out);
    if (!stream) {
        response_json(&c->out, &a, text, tlen, a.call != NULL, finish, prompt, cand, cached, modelz, rid);
        if (t.fault == SIM_FAULT_DROP_MID_BODY || t.fault == SIM_FAULT_STREAM_DROP) {
            char head[160];
            int hl = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                                 "Content-Length: %zu\r\n\r\n", c->out.len);
            sim_conn_send2(c, head, (size_t)hl, c->out.data, c->out.len / 2);
            return SIM_CLOSE;
        }
        return sim_respond(c, 200, "application/json", c->out.data, c->out.len, keep, NULL) == 0 && keep
                   ? SIM_KEEP : SIM_CLOSE;
    }
    /* alt=sse: one event per word (each with the whitespace after it); the
     * last event carries finishReason and the full usage. No [DONE]: EOF ends it. */
    static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    if (sim_conn_send2(c, head, sizeof head - 1, NULL, 0) < 0)
        return SIM_CLOSE;
    size_t pos = 0;
    int events = 0;
    do {
        size_t end = tlen;
        int last = 1;
        if (!a.call) {
            end = pos;
            while (end < tlen && text[end] != ' ')
                end++;
            while (end < tlen && text[end] == ' ')
                end++;
            last = end >= tlen;
        }
        sim_buf_reset(&c->out);
        sim_buf_puts(&c->out, "data: ");
        response_json(&c->out, &a, text + pos, end - pos, a.call != NULL, last ? finish : NULL,
                      prompt, last ? cand : 0, cached && last, modelz, rid);
        sim_buf_puts(&c->out, "\r\n\r\n");
        if (events > 0 && t.fault == SIM_FAULT_SLOW_STREAM && sim_sleep_ms(t.ms) < 0)
            return SIM_CLOSE;
        if (events == 1 && (t.fault == SIM_FAULT_STREAM_DROP || t.fault == SIM_FAULT_DROP_MID_BODY))
            return SIM_CLOSE;
        if (events == 1 && in_stream_error) {
            static const char e[] = "data: {\"error\":{\"code\":503,\"message\":\"The model is "
                                    "overloaded. Please try again later.\",\"status\":\"UNAVAILABLE\"}}\r\n\r\n";
            send_chunk(c, e, sizeof e - 1);
            sim_conn_send2(c, "0\r\n\r\n", 5, NULL, 0);
            return keep ? SIM_KEEP : SIM_CLOSE;
        }
        if (!sim_buf_ok(&c->out) || send_chunk(c, c->out.data, c->out.len))
            return SIM_CLOSE;
        pos = end;
        events++;
    } while (pos < tlen && !a.call);
    if (sim_conn_send2(c, "0\r\n\r\n", 5, NULL, 0) < 0)
        return SIM_CLOSE;
    return keep ? SIM_KEEP : SIM_CLOSE;
}
