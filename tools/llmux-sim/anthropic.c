/* anthropic.c - the Anthropic Messages API of llmux-sim: request checks as the
 * real API makes them, deterministic answers (text, tool use, thinking,
 * structured output, prompt-cache usage) and the named-event stream. */
#include "anthropic.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "faults.h"
#include "hostile.h"
#include "http.h"

enum { TEXT_MAX = 200, CACHE_SLOTS = 256, EVENTS_MAX = 200 };

typedef struct msg_answer {
    const char *dep;
    size_t dep_len;
    unsigned long n;
    const char *model;
    int stream;
    const char *tool_name; /* forced tool: answer with a tool_use */
    int json_out;          /* output_config.format json_schema */
    int thinking;
    char text[TEXT_MAX + 8]; /* the echo: last user turn's text */
    size_t text_len;
    int images;
    size_t bytes;       /* all prompt text */
    size_t cache_bytes; /* text of blocks marked with cache_control */
    uint64_t cache_hash;
    int cache_1h;
    long input, cache_read, cache_write;
} msg_answer;

/* ------------------------------------------------------------ prompt cache */

/* Prefixes written to the "cache", per deployment, until the simulator exits
 * (the oldest is forgotten past CACHE_SLOTS). */
static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t cache_seen[CACHE_SLOTS];
static size_t cache_next;

static uint64_t fnv(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

/* 1 when the prefix was cached before (a read), else records it (a write). */
static int cache_lookup(uint64_t h)
{
    int hit = 0;
    pthread_mutex_lock(&cache_mu);
    for (size_t i = 0; i < CACHE_SLOTS && !hit; i++)
        hit = cache_seen[i] == h;
    if (!hit)
        cache_seen[cache_next++ % CACHE_SLOTS] = h;
    pthread_mutex_unlock(&cache_mu);
    return hit;
}

/* -------------------------------------------------------------- validation */

static int bad(char *msg, size_t cap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int bad(char *msg, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    return -1;
}

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

static const char *type_of(const cJSON *block)
{
    const cJSON *t = get(block, "type");
    return cJSON_IsString(t) ? t->valuestring : "";
}

static void echo_add(msg_answer *a, const char *s, size_t n)
{
    if (a->text_len && a->text_len < TEXT_MAX + 4)
        a->text[a->text_len++] = ' ';
    size_t room = TEXT_MAX + 4 - a->text_len;
    if (n > room)
        n = room;
    memcpy(a->text + a->text_len, s, n);
    a->text_len += n;
}

/* A text block's bytes (and, with cache_control, the cached prefix). */
static void count_text(msg_answer *a, const cJSON *block, const char *s, int echo)
{
    size_t n = strlen(s);
    a->bytes += n;
    const cJSON *cc = get(block, "cache_control");
    if (cJSON_IsObject(cc)) {
        a->cache_bytes += n;
        a->cache_hash = fnv(a->cache_hash, s, n);
        const cJSON *ttl = get(cc, "ttl");
        if (cJSON_IsString(ttl) && strcmp(ttl->valuestring, "1h") == 0)
            a->cache_1h = 1;
    }
    if (echo)
        echo_add(a, s, n);
}

static int check_image(const cJSON *b, const char *where, char *msg, size_t cap)
{
    const cJSON *src = get(b, "source");
    const char *st = type_of(src);
    if (strcmp(st, "base64") == 0) {
        const cJSON *mt = get(src, "media_type"), *data = get(src, "data");
        static const char *const ok[] = {"image/jpeg", "image/png", "image/gif", "image/webp"};
        int good = 0;
        for (size_t i = 0; i < 4 && cJSON_IsString(mt); i++)
            good |= strcmp(mt->valuestring, ok[i]) == 0;
        if (!good)
            return bad(msg, cap, "%s.source.media_type: Input should be 'image/jpeg', "
                                 "'image/png', 'image/gif' or 'image/webp'", where);
        if (!cJSON_IsString(data) || !data->valuestring[0])
            return bad(msg, cap, "%s.source.data: Field required", where);
        return 0;
    }
    if (strcmp(st, "url") == 0 && cJSON_IsString(get(src, "url")))
        return 0;
    return bad(msg, cap, "%s.source: Input tag '%s' found using 'type' does not match any of the "
                         "expected tags: 'base64', 'url'", where, st);
}

/* A message's content blocks; echo: collect the text of the last user turn. */
static int check_blocks(msg_answer *a, const cJSON *content, size_t i, int user, int echo,
                        char *msg, size_t cap)
{
    char where[64];
    if (cJSON_IsString(content)) {
        count_text(a, content, content->valuestring, echo);
        return 0;
    }
    if (!cJSON_IsArray(content) || !content->child)
        return bad(msg, cap, "messages.%zu.content: Input should be a valid list", i);
    size_t k = 0;
    int past_results = 0;
    for (const cJSON *b = content->child; b; b = b->next, k++) {
        snprintf(where, sizeof where, "messages.%zu.content.%zu", i, k);
        const char *t = type_of(b);
        if (strcmp(t, "text") == 0) {
            const cJSON *s = get(b, "text");
            if (!cJSON_IsString(s) || !s->valuestring[0])
                return bad(msg, cap, "%s: text content blocks must be non-empty", where);
            count_text(a, b, s->valuestring, echo);
        } else if (strcmp(t, "image") == 0 && user) {
            if (check_image(b, where, msg, cap))
                return -1;
            a->images += echo;
        } else if (strcmp(t, "tool_result") == 0 && user) {
            if (past_results)
                return bad(msg, cap, "%s: tool_result blocks must come first in the user turn",
                           where);
            if (!cJSON_IsString(get(b, "tool_use_id")))
                return bad(msg, cap, "%s.tool_use_id: Field required", where);
            const cJSON *rc = get(b, "content");
            if (rc && check_blocks(a, rc, i, 1, echo, msg, cap))
                return -1;
            continue;
        } else if (strcmp(t, "tool_use") == 0 && !user) {
            if (!cJSON_IsString(get(b, "id")) || !cJSON_IsString(get(b, "name")) ||
                !cJSON_IsObject(get(b, "input")))
                return bad(msg, cap, "%s: tool_use needs id, name and an input object", where);
        } else if ((strcmp(t, "thinking") == 0 && !user)) {
            if (!cJSON_IsString(get(b, "signature")))
                return bad(msg, cap, "%s.signature: Field required", where);
        } else if (strcmp(t, "redacted_thinking") == 0 && !user) {
            if (!cJSON_IsString(get(b, "data")))
                return bad(msg, cap, "%s.data: Field required", where);
        } else {
            return bad(msg, cap, "%s.type: unexpected block type '%s' in a %s turn", where, t,
                       user ? "user" : "assistant");
        }
        past_results = 1;
    }
    return 0;
}

/* Every tool_use of an assistant turn needs its tool_result in the next turn. */
static int check_results(const cJSON *asst, const cJSON *next, size_t i, char *msg, size_t cap)
{
    const cJSON *content = get(asst, "content");
    for (const cJSON *b = cJSON_IsArray(content) ? content->child : NULL; b; b = b->next) {
        if (strcmp(type_of(b), "tool_use") != 0)
            continue;
        const char *id = get(b, "id")->valuestring;
        int found = 0;
        const cJSON *nc = next ? get(next, "content") : NULL;
        for (const cJSON *r = cJSON_IsArray(nc) ? nc->child : NULL; r && !found; r = r->next) {
            const cJSON *tid = get(r, "tool_use_id");
            found = strcmp(type_of(r), "tool_result") == 0 && cJSON_IsString(tid) &&
                    strcmp(tid->valuestring, id) == 0;
        }
        if (!found)
            return bad(msg, cap, "messages.%zu: `tool_use` ids were found without `tool_result` "
                                 "blocks immediately after: %s. Each `tool_use` block must have a "
                                 "corresponding `tool_result` block in the next message.",
                       i + 1, id);
    }
    return 0;
}

static int check_tools(msg_answer *a, const cJSON *req, char *msg, size_t cap)
{
    const cJSON *tools = get(req, "tools"), *choice = get(req, "tool_choice");
    const char *first = NULL;
    size_t i = 0;
    for (const cJSON *t = cJSON_IsArray(tools) ? tools->child : NULL; t; t = t->next, i++) {
        const cJSON *name = get(t, "name");
        if (!cJSON_IsString(name) || !name->valuestring[0])
            return bad(msg, cap, "tools.%zu.name: Field required", i);
        if (!cJSON_IsObject(get(t, "input_schema")))
            return bad(msg, cap, "tools.%zu.input_schema: Field required", i);
        if (!first)
            first = name->valuestring;
    }
    if (tools && !cJSON_IsArray(tools))
        return bad(msg, cap, "tools: Input should be a valid list");
    if (!choice)
        return 0;
    const char *ct = type_of(choice);
    if (!first)
        return bad(msg, cap, "tool_choice: may only be specified while providing tools");
    if (strcmp(ct, "any") == 0) {
        a->tool_name = first;
    } else if (strcmp(ct, "tool") == 0) {
        const cJSON *name = get(choice, "name");
        for (const cJSON *t = tools->child; t && !a->tool_name && cJSON_IsString(name); t = t->next)
            if (strcmp(get(t, "name")->valuestring, name->valuestring) == 0)
                a->tool_name = get(t, "name")->valuestring;
        if (!a->tool_name)
            return bad(msg, cap, "tool_choice.name: names no tool in tools");
    } else if (strcmp(ct, "auto") != 0 && strcmp(ct, "none") != 0) {
        return bad(msg, cap, "tool_choice.type: Input tag '%s' found using 'type' does not match "
                             "any of the expected tags: 'auto', 'any', 'tool', 'none'", ct);
    }
    return 0;
}

static int validate(msg_answer *a, const cJSON *req, char *msg, size_t cap)
{
    if (!cJSON_IsObject(req))
        return bad(msg, cap, "The request body is not valid JSON.");
    const cJSON *model = get(req, "model"), *mt = get(req, "max_tokens");
    const cJSON *messages = get(req, "messages"), *system = get(req, "system");
    if (!cJSON_IsString(model) || !model->valuestring[0])
        return bad(msg, cap, "model: Field required");
    a->model = model->valuestring;
    if (!cJSON_IsNumber(mt))
        return bad(msg, cap, "max_tokens: Field required");
    if (mt->valuedouble < 1 || mt->valuedouble != (double)(long)mt->valuedouble)
        return bad(msg, cap, "max_tokens: Input should be a positive integer");
    if (!cJSON_IsArray(messages) || !messages->child)
        return bad(msg, cap, "messages: Field required (at least one message)");
    if (cJSON_IsString(system)) {
        count_text(a, system, system->valuestring, 0);
    } else if (cJSON_IsArray(system)) {
        for (const cJSON *b = system->child; b; b = b->next) {
            const cJSON *s = get(b, "text");
            if (strcmp(type_of(b), "text") != 0 || !cJSON_IsString(s))
                return bad(msg, cap, "system: Input should be a valid list of text blocks");
            count_text(a, b, s->valuestring, 0);
        }
    } else if (system) {
        return bad(msg, cap, "system: Input should be a valid string or list");
    }
    const cJSON *last_user = NULL;
    for (const cJSON *m = messages->child; m; m = m->next)
        if (strcmp(cJSON_IsString(get(m, "role")) ? get(m, "role")->valuestring : "", "user") == 0)
            last_user = m;
    size_t i = 0;
    for (const cJSON *m = messages->child; m; m = m->next, i++) {
        const cJSON *role = get(m, "role");
        const char *r = cJSON_IsString(role) ? role->valuestring : "";
        int user = strcmp(r, "user") == 0;
        if (!user && strcmp(r, "assistant") != 0) {
            if (strcmp(r, "system") == 0)
                return bad(msg, cap, "messages.%zu.role: Unexpected role \"system\". The Messages "
                                     "API accepts a top-level `system` parameter, not \"system\" "
                                     "as an input message role.", i);
            return bad(msg, cap, "messages.%zu.role: Input should be 'user' or 'assistant'", i);
        }
        if (check_blocks(a, get(m, "content"), i, user, m == last_user, msg, cap))
            return -1;
        if (!user && check_results(m, m->next, i, msg, cap))
            return -1;
    }
    if (check_tools(a, req, msg, cap))
        return -1;
    const cJSON *th = get(req, "thinking");
    if (th) {
        const cJSON *budget = get(th, "budget_tokens");
        if (strcmp(type_of(th), "enabled") == 0) {
            if (!cJSON_IsNumber(budget) || budget->valuedouble < 1024)
                return bad(msg, cap, "thinking.enabled.budget_tokens: Input should be greater "
                                     "than or equal to 1024");
            if (budget->valuedouble >= mt->valuedouble)
                return bad(msg, cap, "`max_tokens` must be greater than `thinking.budget_tokens`");
            a->thinking = 1;
        } else if (strcmp(type_of(th), "disabled") != 0) {
            return bad(msg, cap, "thinking.type: expected 'enabled' or 'disabled'");
        }
    }
    const cJSON *temp = get(req, "temperature");
    if (temp && (!cJSON_IsNumber(temp) || temp->valuedouble < 0 || temp->valuedouble > 1))
        return bad(msg, cap, "temperature: Input should be less than or equal to 1");
    const cJSON *fmt = get(get(req, "output_config"), "format");
    if (fmt) {
        if (strcmp(type_of(fmt), "json_schema") != 0 || !cJSON_IsObject(get(fmt, "schema")))
            return bad(msg, cap, "output_config.format: a json_schema with a schema object");
        a->json_out = 1;
    }
    const cJSON *stream = get(req, "stream");
    if (stream && !cJSON_IsBool(stream))
        return bad(msg, cap, "stream: Input should be a valid boolean");
    a->stream = cJSON_IsTrue(stream);
    if (a->text_len > TEXT_MAX)
        a->text_len = sim_utf8_prefix(a->text, a->text_len, TEXT_MAX);
    a->text[a->text_len] = '\0';
    return 0;
}

/* --------------------------------------------------------------- rendering */

static long words(const char *s, size_t n)
{
    long w = 0;
    for (size_t k = 0; k < n; k++)
        if (s[k] != ' ' && (k == 0 || s[k - 1] == ' '))
            w++;
    return w;
}

/* The answer's pieces: thinking, then text or a tool call. */
typedef struct pieces {
    char content[TEXT_MAX + 160];
    size_t content_len;
    char thinking[TEXT_MAX + 40];
    size_t thinking_len;
    char args[TEXT_MAX * 6 + 32];
    size_t args_len;
    long output;
} pieces;

static void make_pieces(const msg_answer *a, pieces *p)
{
    sim_buf b;
    memset(p, 0, sizeof *p);
    if (a->thinking)
        p->thinking_len = (size_t)snprintf(p->thinking, sizeof p->thinking, "Thinking about: %s",
                                           a->text);
    /* {"echo":<text>} for a tool's input and for structured output */
    sim_buf_init(&b, sizeof p->args - 1);
    b.data = p->args;
    b.cap = sizeof p->args;
    sim_buf_puts(&b, "{\"echo\":");
    sim_buf_json_str(&b, a->text, a->text_len);
    sim_buf_puts(&b, "}");
    p->args_len = b.len;
    if (a->json_out) {
        memcpy(p->content, p->args, p->args_len);
        p->content_len = p->args_len;
    } else {
        p->content_len = (size_t)snprintf(p->content, sizeof p->content, "[%.*s] %s",
                                          (int)a->dep_len, a->dep, a->text);
        if (a->images)
            p->content_len += (size_t)snprintf(p->content + p->content_len,
                                               sizeof p->content - p->content_len, " (%d image%s)",
                                               a->images, a->images > 1 ? "s" : "");
    }
    p->output = (a->tool_name ? 8 : words(p->content, p->content_len)) +
                words(p->thinking, p->thinking_len);
}

static void render_usage(sim_buf *o, const msg_answer *a, long output)
{
    sim_buf_printf(o, "{\"input_tokens\":%ld,\"cache_creation_input_tokens\":%ld,"
                      "\"cache_read_input_tokens\":%ld,\"cache_creation\":{"
                      "\"ephemeral_5m_input_tokens\":%ld,\"ephemeral_1h_input_tokens\":%ld},"
                      "\"output_tokens\":%ld}",
                   a->input, a->cache_write, a->cache_read, a->cache_1h ? 0 : a->cache_write,
                   a->cache_1h ? a->cache_write : 0, output);
}

static void render_id(sim_buf *o, const msg_answer *a)
{
    sim_buf_puts(o, "\"id\":\"msg_sim_");
    sim_buf_append(o, a->dep, a->dep_len);
    sim_buf_printf(o, "_%lu\",\"type\":\"message\",\"role\":\"assistant\",\"model\":", a->n);
    sim_buf_json_str(o, a->model, strlen(a->model));
}

static void render_message(sim_buf *o, const msg_answer *a, const pieces *p)
{
    sim_buf_puts(o, "{");
    render_id(o, a);
    sim_buf_puts(o, ",\"content\":[");
    if (a->thinking) {
        sim_buf_puts(o, "{\"type\":\"thinking\",\"thinking\":");
        sim_buf_json_str(o, p->thinking, p->thinking_len);
        sim_buf_printf(o, ",\"signature\":\"sim-signature-%lu\"},", a->n);
    }
    if (a->tool_name) {
        sim_buf_printf(o, "{\"type\":\"tool_use\",\"id\":\"toolu_sim_%lu\",\"name\":", a->n);
        sim_buf_json_str(o, a->tool_name, strlen(a->tool_name));
        sim_buf_puts(o, ",\"input\":");
        sim_buf_append(o, p->args, p->args_len);
        sim_buf_puts(o, "}");
    } else {
        sim_buf_puts(o, "{\"type\":\"text\",\"text\":");
        sim_buf_json_str(o, p->content, p->content_len);
        sim_buf_puts(o, "}");
    }
    sim_buf_printf(o, "],\"stop_reason\":\"%s\",\"stop_sequence\":null,\"usage\":",
                   a->tool_name ? "tool_use" : "end_turn");
    render_usage(o, a, p->output);
    sim_buf_puts(o, "}");
}

/* One named event, as one HTTP chunk when chunked. */
static void frame(sim_buf *out, const char *name, const sim_buf *data, int chunked)
{
    size_t n = strlen("event: \ndata: \n\n") + strlen(name) + data->len;
    if (chunked)
        sim_buf_printf(out, "%zx\r\n", n);
    sim_buf_printf(out, "event: %s\ndata: ", name);
    sim_buf_append(out, data->data, data->len);
    sim_buf_puts(out, chunked ? "\n\n\r\n" : "\n\n");
}

typedef struct events {
    sim_buf *out, *s;
    int chunked;
    size_t ends[EVENTS_MAX];
    size_t n;
} events;

static void ev(events *e, const char *name)
{
    frame(e->out, name, e->s, e->chunked);
    if (e->n < EVENTS_MAX)
        e->ends[e->n++] = e->out->len;
    sim_buf_reset(e->s);
}

static void block_delta(events *e, int index, const char *type, const char *key, const char *s,
                        size_t n)
{
    sim_buf_printf(e->s, "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":"
                         "\"%s\",\"%s\":", index, type, key);
    sim_buf_json_str(e->s, s, n);
    sim_buf_puts(e->s, "}}");
    ev(e, "content_block_delta");
}

static void block_stop(events *e, int index)
{
    sim_buf_printf(e->s, "{\"type\":\"content_block_stop\",\"index\":%d}", index);
    ev(e, "content_block_stop");
}

/* The whole stream into e->out; an error body (fault) after message_start
 * ends it as an error event. */
static void render_stream(events *e, const msg_answer *a, const pieces *p, const sim_buf *error)
{
    sim_buf *s = e->s;
    int idx = 0;
    sim_buf_reset(s);
    sim_buf_puts(s, "{\"type\":\"message_start\",\"message\":{");
    render_id(s, a);
    sim_buf_puts(s, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
    render_usage(s, a, 1);
    sim_buf_puts(s, "}}");
    ev(e, "message_start");
    if (error) {
        sim_buf_append(s, error->data, error->len);
        ev(e, "error");
        return;
    }
    sim_buf_puts(s, "{\"type\":\"ping\"}");
    ev(e, "ping");
    if (a->thinking) {
        sim_buf_puts(s, "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{"
                        "\"type\":\"thinking\",\"thinking\":\"\"}}");
        ev(e, "content_block_start");
        block_delta(e, 0, "thinking_delta", "thinking", p->thinking, p->thinking_len);
        char sig[48];
        int sl = snprintf(sig, sizeof sig, "sim-signature-%lu", a->n);
        block_delta(e, 0, "signature_delta", "signature", sig, (size_t)sl);
        block_stop(e, idx++);
    }
    if (a->tool_name) {
        sim_buf_printf(s, "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":{"
                          "\"type\":\"tool_use\",\"id\":\"toolu_sim_%lu\",\"name\":", idx, a->n);
        sim_buf_json_str(s, a->tool_name, strlen(a->tool_name));
        sim_buf_puts(s, ",\"input\":{}}}");
        ev(e, "content_block_start");
        size_t half = sim_utf8_prefix(p->args, p->args_len, p->args_len / 2);
        block_delta(e, idx, "input_json_delta", "partial_json", "", 0);
        block_delta(e, idx, "input_json_delta", "partial_json", p->args, half);
        block_delta(e, idx, "input_json_delta", "partial_json", p->args + half, p->args_len - half);
    } else {
        sim_buf_printf(s, "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":{"
                          "\"type\":\"text\",\"text\":\"\"}}", idx);
        ev(e, "content_block_start");
        /* one delta per word, each with the spaces that follow it */
        size_t k = 0;
        while (k < p->content_len) {
            size_t st = k;
            while (k < p->content_len && p->content[k] != ' ')
                k++;
            while (k < p->content_len && p->content[k] == ' ')
                k++;
            block_delta(e, idx, "text_delta", "text", p->content + st, k - st);
        }
    }
    block_stop(e, idx);
    sim_buf_printf(s, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"%s\","
                      "\"stop_sequence\":null},\"usage\":{\"output_tokens\":%ld}}",
                   a->tool_name ? "tool_use" : "end_turn", p->output);
    ev(e, "message_delta");
    sim_buf_puts(s, "{\"type\":\"message_stop\"}");
    ev(e, "message_stop");
    if (e->chunked)
        sim_buf_puts(e->out, "0\r\n\r\n");
}

/* ------------------------------------------------------------------ answers */

static void error_body(sim_buf *o, const char *type, const char *message, unsigned long n)
{
    sim_buf_puts(o, "{\"type\":\"error\",\"error\":{\"type\":");
    sim_buf_json_str(o, type, strlen(type));
    sim_buf_puts(o, ",\"message\":");
    sim_buf_json_str(o, message, strlen(message));
    sim_buf_printf(o, "},\"request_id\":\"req_sim_%lu\"}", n);
}

/* Anthropic's error type and a message for a status fault without a body. */
static void default_error(sim_buf *o, int status, unsigned long n)
{
    const char *type = "api_error", *m = "Internal server error (simulated)";
    switch (status) {
    case 400: type = "invalid_request_error"; m = "simulated bad request"; break;
    case 401: type = "authentication_error"; m = "invalid x-api-key (simulated)"; break;
    case 402: type = "billing_error"; m = "Your credit balance is too low (simulated)"; break;
    case 403: type = "permission_error"; m = "simulated permission denied"; break;
    case 404: type = "not_found_error"; m = "model: not found (simulated)"; break;
    case 413: type = "request_too_large"; m = "Request exceeds the maximum size (simulated)"; break;
    case 429: type = "rate_limit_error"; m = "Number of requests has exceeded your rate limit (simulated)"; break;
    case 504: type = "timeout_error"; m = "Request timed out (simulated)"; break;
    case 529: type = "overloaded_error"; m = "Overloaded (simulated)"; break;
    default: break;
    }
    error_body(o, type, m, n);
}

static int send_json(sim_conn *c, int status, const sim_buf *b, int keep, const char *extra)
{
    int rc = sim_respond(c, status, "application/json", b->data ? b->data : "", b->len, keep,
                         extra);
    return rc == 0 && keep ? SIM_KEEP : SIM_CLOSE;
}

/* A header's value from the request head (case-insensitive name). */
static const char *header(const sim_request *r, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    const char *p = r->head, *end = r->head + r->head_len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            break;
        if ((size_t)(eol - p) > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
            const char *v = p + nl + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *len = (size_t)(ve - v);
            return v;
        }
        p = eol + 1;
    }
    return NULL;
}

static int send_stream(sim_conn *c, const msg_answer *a, const pieces *p, const sim_buf *error,
                       int chunked, int mode, long ms)
{
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: "
                      "no-cache\r\n%s\r\n",
                      chunked ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n");
    events e = {&c->out, &c->scratch, chunked, {0}, 0};
    sim_buf_reset(&c->out);
    render_stream(&e, a, p, error);
    if (error && chunked)
        sim_buf_puts(&c->out, "0\r\n\r\n");
    if (!sim_buf_ok(&c->out) || !sim_buf_ok(&c->scratch) || e.n < 2)
        return -1;
    if (mode == 1) /* stream_drop: three events, then close */
        return sim_conn_send2(c, head, (size_t)hl, c->out.data, e.ends[2 < e.n ? 2 : e.n - 1]) < 0
                   ? -1 : 1;
    if (mode == 0)
        return sim_conn_send2(c, head, (size_t)hl, c->out.data, c->out.len);
    if (sim_conn_send2(c, head, (size_t)hl, c->out.data, e.ends[0]) < 0)
        return -1;
    for (size_t i = 1; i < e.n; i++) {
        if (sim_sleep_ms(ms) < 0)
            return -1;
        size_t end = i + 1 == e.n ? c->out.len : e.ends[i];
        if (sim_conn_send2(c, c->out.data + e.ends[i - 1], end - e.ends[i - 1], NULL, 0) < 0)
            return -1;
    }
    return 0;
}

int sim_anthropic(sim_conn *c, const sim_request *r, const char *dep, size_t dep_len)
{
    int keep = r->keep_alive, action = SIM_CLOSE;
    cJSON *req = cJSON_ParseWithLength(r->body, r->body_len);
    size_t kl = 0, vl = 0;
    const char *key = header(r, "x-api-key", &kl);
    const char *version = header(r, "anthropic-version", &vl);
    /* the registry checks keys as "Bearer KEY": hand it the x-api-key that way */
    char auth[512];
    int has_auth = key && kl < sizeof auth - 8;
    size_t al = has_auth ? (size_t)snprintf(auth, sizeof auth, "Bearer %.*s", (int)kl, key) : 0;
    sim_ticket t;
    sim_buf_reset(&c->aux);
    sim_buf_reset(&c->out);
    if (sim_registry_request(dep, dep_len, r->path, r->path_len, auth, al, has_auth, r->body,
                             r->body_len, &t, &c->aux) < 0) {
        error_body(&c->out, "overloaded_error", "too many deployments (at most 1024)", 0);
        action = send_json(c, 503, &c->out, keep, NULL);
        goto done;
    }
    if (t.latency_ms > 0 && sim_sleep_ms(t.latency_ms) < 0)
        goto done;
    if (!t.auth_ok) {
        error_body(&c->out, "authentication_error", "invalid x-api-key", t.n);
        action = send_json(c, 401, &c->out, keep, NULL);
        goto done;
    }
    int wants_stream = cJSON_IsTrue(get(req, "stream")), chunked = r->minor_version >= 1;
    sim_fault_type fault = t.fault;
    if (fault == SIM_FAULT_STREAM_DROP && !wants_stream)
        fault = SIM_FAULT_DROP_MID_BODY;
    if (fault == SIM_FAULT_DROP_MID_BODY && wants_stream)
        fault = SIM_FAULT_STREAM_DROP;
    if (fault == SIM_FAULT_SLOW_STREAM && !wants_stream)
        fault = SIM_FAULT_LATENCY;
    int error_event = fault == SIM_FAULT_STATUS && t.status == 200 && t.has_body && wants_stream;
    switch (fault) {
    case SIM_FAULT_STATUS:
        if (error_event)
            break; /* after message_start, below */
        if (t.has_body)
            sim_buf_append(&c->out, c->aux.data, c->aux.len);
        else
            default_error(&c->out, t.status, t.n);
        char extra[128] = "";
        if (t.retry_after[0])
            snprintf(extra, sizeof extra, "Retry-After: %s\r\n", t.retry_after);
        action = send_json(c, t.status, &c->out, keep, extra[0] ? extra : NULL);
        goto done;
    case SIM_FAULT_LATENCY:
        if (sim_sleep_ms(t.ms) < 0)
            goto done;
        break;
    case SIM_FAULT_DROP:
        goto done;
    case SIM_FAULT_HOSTILE:
        action = sim_hostile(c, r, &t, wants_stream);
        goto done;
    case SIM_FAULT_MALFORMED: {
        static const char broken[] = "{\"id\": \"msg_broken\", \"content\": [";
        sim_respond(c, 200, wants_stream ? "text/event-stream" : "application/json", broken,
                    sizeof broken - 1, keep, NULL);
        action = keep ? SIM_KEEP : SIM_CLOSE;
        goto done;
    }
    default:
        break;
    }
    char msg[512];
    msg_answer a;
    memset(&a, 0, sizeof a);
    a.dep = dep;
    a.dep_len = dep_len;
    a.n = t.n;
    a.cache_hash = fnv(1469598103934665603ull, dep, dep_len);
    int status = 200;
    if (!version) {
        error_body(&c->out, "invalid_request_error", "anthropic-version: header is required", t.n);
        status = 400;
    } else if (validate(&a, req, msg, sizeof msg) < 0) {
        error_body(&c->out, "invalid_request_error", msg, t.n);
        status = 400;
    }
    if (status != 200) {
        action = send_json(c, status, &c->out, keep, NULL);
        goto done;
    }
    long total = (long)((a.bytes + 3) / 4), cached = (long)((a.cache_bytes + 3) / 4);
    if (cached > total)
        cached = total;
    if (cached > 0 && cache_lookup(a.cache_hash))
        a.cache_read = cached;
    else
        a.cache_write = cached;
    a.input = total - cached;
    pieces p;
    make_pieces(&a, &p);
    if (a.stream) {
        int mode = fault == SIM_FAULT_STREAM_DROP ? 1 : fault == SIM_FAULT_SLOW_STREAM ? 2 : 0;
        sim_buf err_copy = c->aux;
        int rc = send_stream(c, &a, &p, error_event ? &err_copy : NULL, chunked, mode, t.ms);
        action = rc == 0 && chunked && keep ? SIM_KEEP : SIM_CLOSE;
        goto done;
    }
    render_message(&c->out, &a, &p);
    if (fault == SIM_FAULT_DROP_MID_BODY && sim_buf_ok(&c->out)) {
        char head[160];
        int hl = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: application/json"
                                             "\r\nContent-Length: %zu\r\n\r\n", c->out.len);
        sim_conn_send2(c, head, (size_t)hl, c->out.data, c->out.len / 2);
        goto done;
    }
    action = send_json(c, 200, &c->out, keep, NULL);
done:
    cJSON_Delete(req);
    return action;
}
