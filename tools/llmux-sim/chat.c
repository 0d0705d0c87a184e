/* chat.c - request checks and deterministic chat.completion answers. */
#include "chat.h"

#include <stdio.h>
#include <string.h>

static const char *const roles[] = {"system", "developer", "user", "assistant", "tool", "function"};

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static void text_add(chat_answer *a, const char *s, size_t n)
{
    /* keep a few bytes past the cut so a UTF-8 sequence across it is seen whole */
    size_t room = CHAT_TEXT_MAX + 4 - a->text_len;
    if (n > room)
        n = room;
    memcpy(a->text + a->text_len, s, n);
    a->text_len += n;
}

/* Sums the bytes of a message's text; with `a`, also collects it as the echo. */
static int content_text(const cJSON *content, size_t *bytes, chat_answer *a)
{
    if (!content || cJSON_IsNull(content))
        return 0;
    if (cJSON_IsString(content)) {
        size_t n = strlen(content->valuestring);
        *bytes += n;
        if (a)
            text_add(a, content->valuestring, n);
        return 0;
    }
    if (!cJSON_IsArray(content))
        return -1;
    int first = 1;
    for (const cJSON *part = content->child; part; part = part->next) {
        if (!cJSON_IsObject(part))
            return -1;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(part, "text");
        if (!cJSON_IsString(t))
            continue; /* image_url, input_audio, ...: no text */
        size_t n = strlen(t->valuestring);
        *bytes += n;
        if (a) {
            if (!first)
                text_add(a, " ", 1);
            text_add(a, t->valuestring, n);
        }
        first = 0;
    }
    return 0;
}

static const char *tool_name_of(const cJSON *tool)
{
    if (!cJSON_IsObject(tool))
        return NULL;
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tool, "function");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
    if (!cJSON_IsString(name) || name->valuestring[0] == '\0')
        return NULL;
    return name->valuestring;
}

static int bad(char *msg, size_t msglen, const char **param, const char *p, const char *text)
{
    snprintf(msg, msglen, "%s", text);
    *param = p;
    return -1;
}

int chat_prepare(chat_answer *a, const cJSON *req, char *msg, size_t msglen, const char **param)
{
    if (!cJSON_IsObject(req))
        return bad(msg, msglen, param, NULL,
                   "We could not parse the JSON body of your request: it must be a JSON object.");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(req, "model");
    if (!cJSON_IsString(model) || model->valuestring[0] == '\0')
        return bad(msg, msglen, param, "model", "you must provide a model parameter (a string)");
    a->model = model->valuestring;

    const cJSON *messages = cJSON_GetObjectItemCaseSensitive(req, "messages");
    if (!cJSON_IsArray(messages) || !messages->child)
        return bad(msg, msglen, param, "messages", "'messages' must be a non-empty array");
    const cJSON *last_user = NULL;
    size_t bytes = 0;
    size_t i = 0;
    for (const cJSON *m = messages->child; m; m = m->next, i++) {
        if (!cJSON_IsObject(m)) {
            snprintf(msg, msglen, "messages[%zu] must be an object", i);
            *param = "messages";
            return -1;
        }
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        int ok = 0;
        if (cJSON_IsString(role))
            for (size_t r = 0; r < sizeof roles / sizeof roles[0] && !ok; r++)
                ok = strcmp(role->valuestring, roles[r]) == 0;
        if (!ok) {
            snprintf(msg, msglen,
                     "messages[%zu].role must be one of 'system', 'developer', 'user', "
                     "'assistant', 'tool', 'function'",
                     i);
            *param = "messages";
            return -1;
        }
        if (content_text(cJSON_GetObjectItemCaseSensitive(m, "content"), &bytes, NULL) < 0) {
            snprintf(msg, msglen,
                     "messages[%zu].content must be a string, an array of content parts or null",
                     i);
            *param = "messages";
            return -1;
        }
        if (strcmp(role->valuestring, "user") == 0)
            last_user = m;
    }
    a->prompt_tokens = (long)((bytes + 3) / 4);

    const cJSON *stream = cJSON_GetObjectItemCaseSensitive(req, "stream");
    if (stream && !cJSON_IsNull(stream) && !cJSON_IsBool(stream))
        return bad(msg, msglen, param, "stream", "'stream' must be a boolean");
    a->stream = cJSON_IsTrue(stream);
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(req, "stream_options");
    a->include_usage = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(so, "include_usage"));

    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
    const char *first_tool = NULL;
    if (tools && !cJSON_IsNull(tools)) {
        if (!cJSON_IsArray(tools))
            return bad(msg, msglen, param, "tools", "'tools' must be an array");
        i = 0;
        for (const cJSON *t = tools->child; t; t = t->next, i++) {
            const char *name = tool_name_of(t);
            if (!name) {
                snprintf(msg, msglen, "tools[%zu].function.name must be a non-empty string", i);
                *param = "tools";
                return -1;
            }
            if (!first_tool)
                first_tool = name;
        }
    }
    a->tool_name = NULL;
    const cJSON *choice = cJSON_GetObjectItemCaseSensitive(req, "tool_choice");
    if (cJSON_IsString(choice)) {
        if (strcmp(choice->valuestring, "required") == 0) {
            if (!first_tool)
                return bad(msg, msglen, param, "tool_choice",
                           "tool_choice 'required' is only allowed when tools are specified");
            a->tool_name = first_tool;
        } else if (strcmp(choice->valuestring, "auto") != 0 &&
                   strcmp(choice->valuestring, "none") != 0) {
            return bad(msg, msglen, param, "tool_choice",
                       "tool_choice must be 'none', 'auto', 'required' or a function object");
        }
    } else if (cJSON_IsObject(choice)) {
        const char *want = tool_name_of(choice);
        if (!want)
            return bad(msg, msglen, param, "tool_choice",
                       "tool_choice.function.name must be a non-empty string");
        for (const cJSON *t = tools ? tools->child : NULL; t && !a->tool_name; t = t->next) {
            const char *name = tool_name_of(t);
            if (name && strcmp(name, want) == 0)
                a->tool_name = name;
        }
        if (!a->tool_name)
            return bad(msg, msglen, param, "tool_choice",
                       "tool_choice names a function that is not in 'tools'");
    } else if (choice && !cJSON_IsNull(choice)) {
        return bad(msg, msglen, param, "tool_choice",
                   "tool_choice must be 'none', 'auto', 'required' or a function object");
    }

    /* the echo: text of the last user message, cut to 200 bytes on a UTF-8 boundary */
    a->text_len = 0;
    if (last_user) {
        size_t ignored = 0;
        content_text(cJSON_GetObjectItemCaseSensitive(last_user, "content"), &ignored, a);
    }
    if (a->text_len > CHAT_TEXT_MAX)
        a->text_len = sim_utf8_prefix(a->text, a->text_len, CHAT_TEXT_MAX);
    a->text[a->text_len] = '\0';

    a->content_len = 0;
    a->content[a->content_len++] = '[';
    memcpy(a->content + a->content_len, a->deployment, a->deployment_len);
    a->content_len += a->deployment_len;
    a->content[a->content_len++] = ']';
    a->content[a->content_len++] = ' ';
    memcpy(a->content + a->content_len, a->text, a->text_len);
    a->content_len += a->text_len;
    a->content[a->content_len] = '\0';

    if (a->tool_name) {
        a->completion_tokens = 8;
    } else {
        long words = 0;
        for (size_t k = 0; k < a->content_len; k++)
            if (!is_space(a->content[k]) && (k == 0 || is_space(a->content[k - 1])))
                words++;
        a->completion_tokens = words;
    }
    return 0;
}

static void render_args(sim_buf *b, const chat_answer *a)
{
    sim_buf_puts(b, "{\"echo\":");
    sim_buf_json_str(b, a->text, a->text_len);
    sim_buf_puts(b, "}");
}

/* {"id":"chatcmpl-sim-<deployment>-<n>" (the opening brace included) */
static void render_id(sim_buf *out, const chat_answer *a)
{
    sim_buf_puts(out, "{\"id\":\"chatcmpl-sim-");
    sim_buf_append(out, a->deployment, a->deployment_len);
    sim_buf_puts(out, "-");
    sim_buf_u64(out, a->n);
    sim_buf_puts(out, "\"");
}

static void render_usage(sim_buf *out, const chat_answer *a)
{
    sim_buf_puts(out, "\"usage\":{\"prompt_tokens\":");
    sim_buf_i64(out, a->prompt_tokens);
    sim_buf_puts(out, ",\"completion_tokens\":");
    sim_buf_i64(out, a->completion_tokens);
    sim_buf_puts(out, ",\"total_tokens\":");
    sim_buf_i64(out, a->prompt_tokens + a->completion_tokens);
    sim_buf_puts(out, "}");
}

void chat_render_json(sim_buf *out, const chat_answer *a)
{
    render_id(out, a);
    sim_buf_puts(out, ",\"object\":\"chat.completion\",\"created\":");
    sim_buf_i64(out, (long long)a->created);
    sim_buf_puts(out, ",\"model\":");
    sim_buf_json_str(out, a->model, strlen(a->model));
    sim_buf_puts(out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",");
    if (a->tool_name) {
        sim_buf_printf(out, "\"content\":null,\"tool_calls\":[{\"id\":\"call_sim_%lu\","
                            "\"type\":\"function\",\"function\":{\"name\":",
                       a->n);
        sim_buf_json_str(out, a->tool_name, strlen(a->tool_name));
        sim_buf_puts(out, ",\"arguments\":");
        /* arguments is a JSON string holding JSON: escape the text twice */
        char tmp[CHAT_TEXT_MAX * 12 + 64];
        sim_buf args;
        sim_buf_init(&args, sizeof tmp - 1);
        args.data = tmp;
        args.cap = sizeof tmp;
        render_args(&args, a);
        sim_buf_json_str(out, args.data, args.len);
        sim_buf_puts(out, "}}]},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],");
    } else {
        sim_buf_puts(out, "\"content\":");
        sim_buf_json_str(out, a->content, a->content_len);
        sim_buf_puts(out, "},\"logprobs\":null,\"finish_reason\":\"stop\"}],");
    }
    render_usage(out, a);
    sim_buf_puts(out, "}");
}

void chat_frame_event(sim_buf *out, const char *data, size_t len, int chunked)
{
    if (chunked) {
        static const char hex[] = "0123456789abcdef";
        char tmp[24];
        size_t i = sizeof tmp, v = len + 8;
        tmp[--i] = '\n';
        tmp[--i] = '\r';
        do {
            tmp[--i] = hex[v & 15];
            v >>= 4;
        } while (v);
        sim_buf_append(out, tmp + i, sizeof tmp - i);
    }
    sim_buf_puts(out, "data: ");
    sim_buf_append(out, data, len);
    sim_buf_puts(out, chunked ? "\n\n\r\n" : "\n\n");
}

size_t chat_render_stream(sim_buf *out, sim_buf *scratch, const chat_answer *a, int chunked,
                          size_t *ends, size_t max_events)
{
    size_t nev = 0;
    sim_buf_reset(scratch);
    render_id(scratch, a);
    sim_buf_puts(scratch, ",\"object\":\"chat.completion.chunk\",\"created\":");
    sim_buf_i64(scratch, (long long)a->created);
    sim_buf_puts(scratch, ",\"model\":");
    sim_buf_json_str(scratch, a->model, strlen(a->model));
    sim_buf_puts(scratch, ",\"choices\":[");
    const size_t prefix = scratch->len;
    static const char tail[] = ",\"logprobs\":null,\"finish_reason\":null}]}";

#define EVENT_BEGIN() (scratch->len = prefix, (void)0)
#define EVENT_END()                                                        \
    do {                                                                   \
        chat_frame_event(out, scratch->data, scratch->len, chunked);            \
        if (nev < max_events)                                              \
            ends[nev++] = out->len;                                        \
    } while (0)

    EVENT_BEGIN();
    sim_buf_puts(scratch, "{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}");
    sim_buf_puts(scratch, tail);
    EVENT_END();

    if (a->tool_name) {
        EVENT_BEGIN();
        sim_buf_printf(scratch, "{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
                                "\"id\":\"call_sim_%lu\",\"type\":\"function\",\"function\":{"
                                "\"name\":",
                       a->n);
        sim_buf_json_str(scratch, a->tool_name, strlen(a->tool_name));
        sim_buf_puts(scratch, ",\"arguments\":\"\"}}]}");
        sim_buf_puts(scratch, tail);
        EVENT_END();
        char tmp[CHAT_TEXT_MAX * 12 + 64];
        sim_buf args;
        sim_buf_init(&args, sizeof tmp - 1);
        args.data = tmp;
        args.cap = sizeof tmp;
        render_args(&args, a);
        size_t half = sim_utf8_prefix(args.data, args.len, args.len / 2);
        for (int h = 0; h < 2; h++) {
            EVENT_BEGIN();
            sim_buf_puts(scratch, "{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
                                  "\"function\":{\"arguments\":");
            if (h == 0)
                sim_buf_json_str(scratch, args.data, half);
            else
                sim_buf_json_str(scratch, args.data + half, args.len - half);
            sim_buf_puts(scratch, "}}]}");
            sim_buf_puts(scratch, tail);
            EVENT_END();
        }
    } else {
        /* one event per word, each word with the whitespace that follows it */
        size_t k = 0;
        while (k < a->content_len) {
            size_t s = k;
            while (k < a->content_len && !is_space(a->content[k]))
                k++;
            while (k < a->content_len && is_space(a->content[k]))
                k++;
            EVENT_BEGIN();
            sim_buf_puts(scratch, "{\"index\":0,\"delta\":{\"content\":");
            sim_buf_json_str(scratch, a->content + s, k - s);
            sim_buf_puts(scratch, "}");
            sim_buf_puts(scratch, tail);
            EVENT_END();
        }
    }

    EVENT_BEGIN();
    sim_buf_printf(scratch, "{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"%s\"}]}",
                   a->tool_name ? "tool_calls" : "stop");
    EVENT_END();

    if (a->include_usage) {
        EVENT_BEGIN();
        sim_buf_puts(scratch, "],");
        render_usage(scratch, a);
        sim_buf_puts(scratch, "}");
        EVENT_END();
    }

    chat_frame_event(out, "[DONE]", 6, chunked);
    if (nev < max_events)
        ends[nev++] = out->len;
    if (chunked)
        sim_buf_puts(out, "0\r\n\r\n");
#undef EVENT_BEGIN
#undef EVENT_END
    return nev;
}
