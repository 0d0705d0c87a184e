/*
 * The Anthropic Messages API adapter (POST {base_url}/v1/messages).
 *
 * The caller's OpenAI Chat Completions request is translated into a new
 * Messages document (system out of the turns, same-role turns merged, tool
 * results first in the next user turn, images as base64 or url sources,
 * tools and tool_choice, thinking, structured output); the answer and the
 * named SSE events are translated back into OpenAI shapes. Mapping tables and
 * what is refused or approximated: docs/providers/anthropic.md.
 */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "providers/classify.h"
#include "providers/provider.h"
#include "wire/json_check.h"
#include "wire/sse.h"

#define DEFAULT_MAX_TOKENS 4096
#define DEFAULT_VERSION "2023-06-01"
/* The tool the json fallback forces; its input comes back as the content. */
#define JSON_TOOL "llmux_json_output"
#define THINKING_MIN_BUDGET 1024

typedef struct anthropic_state {
    char *url;     /* {base_url}/v1/messages */
    char *key;     /* "x-api-key: KEY", NULL without a key */
    char *version; /* "anthropic-version: ..." */
    char *beta;    /* "anthropic-beta: ...", or NULL */
    long max_tokens;
    int json_tool; /* structured_output "tool": json_schema through a forced tool */
    long budget[3]; /* thinking budgets for reasoning_effort low, medium, high */
} anthropic_state;

static const char *const CONFIG_KEYS[] = {"max_tokens", "anthropic_version", "anthropic_beta",
                                          "structured_output", "thinking_budget_low",
                                          "thinking_budget_medium", "thinking_budget_high",
                                          NULL};

static void wipe_free(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

static void anthropic_release(lx_provider_cfg *p)
{
    anthropic_state *st = p->adapter_state;
    if (!st)
        return;
    free(st->url);
    wipe_free(st->key);
    free(st->version);
    free(st->beta);
    free(st);
    p->adapter_state = NULL;
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s", a, b);
    return s;
}

/* A header value from the config: printable ASCII only, so no line breaks. */
static int header_value_ok(const char *v)
{
    if (!*v)
        return 0;
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 || (unsigned char)*v > 0x7e)
            return 0;
    return 1;
}

static int anthropic_configure(lx_provider_cfg *p, const cJSON *obj, const char *path,
                               const lx_cfg_reader *rd, lx_err *err)
{
    const char *version = NULL, *beta = NULL, *so = NULL;
    long max_tokens = DEFAULT_MAX_TOKENS;
    long budget[3] = {1024, 4096, 16384};
    static const char *const budget_keys[3] = {"thinking_budget_low", "thinking_budget_medium",
                                               "thinking_budget_high"};
    int rc;
    if ((rc = rd->integer(obj, "max_tokens", path, 1, 1000000, &max_tokens, err)) ||
        (rc = rd->string(obj, "anthropic_version", path, 0, &version, err)) ||
        (rc = rd->string(obj, "anthropic_beta", path, 0, &beta, err)) ||
        (rc = rd->string(obj, "structured_output", path, 0, &so, err)))
        return rc;
    for (int i = 0; i < 3; i++)
        if ((rc = rd->integer(obj, budget_keys[i], path, THINKING_MIN_BUDGET, 1000000, &budget[i],
                              err)))
            return rc;
    if (version && !header_value_ok(version))
        return rd->error(err, path, "anthropic_version", "must be printable ASCII, not empty");
    if (beta && !header_value_ok(beta))
        return rd->error(err, path, "anthropic_beta", "must be printable ASCII, not empty");
    if (so && strcmp(so, "native") != 0 && strcmp(so, "tool") != 0)
        return rd->error(err, path, "structured_output", "must be \"native\" or \"tool\"");
    anthropic_state *st = calloc(1, sizeof *st);
    if (!st)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    p->adapter_state = st;
    st->max_tokens = max_tokens;
    st->json_tool = so && strcmp(so, "tool") == 0;
    memcpy(st->budget, budget, sizeof budget);
    int failed = !(st->url = join(p->base_url, "/v1/messages")) ||
                 !(st->version = join("anthropic-version: ", version ? version : DEFAULT_VERSION)) ||
                 (beta && !(st->beta = join("anthropic-beta: ", beta))) ||
                 (p->api_key && !(st->key = join("x-api-key: ", p->api_key)));
    if (failed) {
        anthropic_release(p);
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    return LLMUX_OK;
}

/* ------------------------------------------------------------------ request */

typedef struct xlate {
    const anthropic_state *st;
    lx_err *err;
    int rc;
} xlate;

static const cJSON *get(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* An error of status with a message, unless one is already recorded. */
static int xfail(xlate *x, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int xfail(xlate *x, int status, const char *fmt, ...)
{
    if (!x->rc) {
        char msg[LLMUX_ERRMSG_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        x->rc = llmux__err(x->err, status, "%s", msg);
    }
    return x->rc;
}

#define refuse(x, ...) xfail(x, LX_CANNOT_SERVE, __VA_ARGS__)
#define bad_request(x, ...) xfail(x, LLMUX_ERR_BAD_REQUEST, __VA_ARGS__)

static int oom(xlate *x)
{
    if (!x->rc)
        x->rc = llmux__err(x->err, LLMUX_ERR_NO_MEMORY, "out of memory");
    return x->rc;
}

/* A whole number as its digits: cJSON prints every number through sprintf
 * and reads it back with sscanf, thousands of instructions each. */
static int add_int(cJSON *o, const char *key, long v)
{
    char digits[24];
    snprintf(digits, sizeof digits, "%ld", v);
    return cJSON_AddRawToObject(o, key, digits) != NULL;
}

/* Adds item to arr (or to obj under key when key is set); NULL item = OOM. */
static int add(xlate *x, cJSON *parent, const char *key, cJSON *item)
{
    if (!item || !parent)
        return cJSON_Delete(item), oom(x);
    if (key ? !cJSON_AddItemToObject(parent, key, item) : !cJSON_AddItemToArray(parent, item)) {
        cJSON_Delete(item);
        return oom(x);
    }
    return 0;
}

/* A reference to a node of the caller's tree (printed, never freed). */
static int add_ref(xlate *x, cJSON *parent, const char *key, const cJSON *item)
{
    if (!parent)
        return oom(x);
    int ok = key ? cJSON_AddItemReferenceToObject(parent, key, (cJSON *)item)
                 : cJSON_AddItemReferenceToArray(parent, (cJSON *)item);
    return ok ? 0 : oom(x);
}

static cJSON *text_block(xlate *x, const char *text, const cJSON *cache_control)
{
    cJSON *b = cJSON_CreateObject();
    if (!b || !cJSON_AddStringToObject(b, "type", "text") ||
        !cJSON_AddStringToObject(b, "text", text) ||
        (cache_control && add_ref(x, b, "cache_control", cache_control))) {
        cJSON_Delete(b);
        oom(x);
        return NULL;
    }
    return b;
}

/* An image_url part: a data URL becomes a base64 source, http(s) a url source. */
static cJSON *image_block(xlate *x, const cJSON *part)
{
    const cJSON *iu = get(part, "image_url");
    const cJSON *url = cJSON_IsObject(iu) ? get(iu, "url") : iu;
    if (!cJSON_IsString(url))
        return bad_request(x, "an image_url part without a url string"), NULL;
    const char *u = url->valuestring;
    cJSON *b = cJSON_CreateObject(), *src = NULL;
    if (!b || !cJSON_AddStringToObject(b, "type", "image") ||
        !(src = cJSON_AddObjectToObject(b, "source")))
        goto nomem;
    if (strncmp(u, "data:", 5) == 0) {
        const char *semi = strchr(u + 5, ';');
        if (!semi || strncmp(semi, ";base64,", 8) != 0) {
            cJSON_Delete(b);
            return refuse(x, "an image data URL that is not base64"), NULL;
        }
        size_t mlen = (size_t)(semi - (u + 5));
        static const char *const types[] = {"image/jpeg", "image/png", "image/gif", "image/webp"};
        const char *mt = NULL;
        for (size_t i = 0; i < 4; i++)
            if (strlen(types[i]) == mlen && strncmp(u + 5, types[i], mlen) == 0)
                mt = types[i];
        if (!mt) {
            cJSON_Delete(b);
            return refuse(x, "%s",
                          "an image type Anthropic does not take (jpeg, png, gif, webp only)"),
                   NULL;
        }
        if (!cJSON_AddStringToObject(src, "type", "base64") ||
            !cJSON_AddStringToObject(src, "media_type", mt) ||
            !cJSON_AddStringToObject(src, "data", semi + 8))
            goto nomem;
    } else if (strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0) {
        if (!cJSON_AddStringToObject(src, "type", "url") || !cJSON_AddStringToObject(src, "url", u))
            goto nomem;
    } else {
        cJSON_Delete(b);
        return refuse(x, "an image URL that is neither a data URL nor http(s)"), NULL;
    }
    const cJSON *cc = get(part, "cache_control");
    if (cc && add_ref(x, b, "cache_control", cc)) {
        cJSON_Delete(b);
        return NULL;
    }
    return b;
nomem:
    cJSON_Delete(b);
    oom(x);
    return NULL;
}

/* Appends the blocks of an OpenAI content (string or parts) to arr. */
static int add_content(xlate *x, cJSON *arr, const cJSON *content, int images_ok)
{
    if (!content || cJSON_IsNull(content))
        return 0;
    if (cJSON_IsString(content)) {
        if (!content->valuestring[0])
            return 0; /* Anthropic refuses empty text blocks */
        return add(x, arr, NULL, text_block(x, content->valuestring, NULL));
    }
    if (!cJSON_IsArray(content))
        return bad_request(x, "a message content that is neither a string nor an array");
    for (const cJSON *part = content->child; part && !x->rc; part = part->next) {
        const cJSON *type = get(part, "type");
        const char *t = cJSON_IsString(type) ? type->valuestring : "";
        if (strcmp(t, "text") == 0) {
            const cJSON *text = get(part, "text");
            if (!cJSON_IsString(text))
                return bad_request(x, "a text part without a text string");
            if (text->valuestring[0])
                add(x, arr, NULL, text_block(x, text->valuestring, get(part, "cache_control")));
        } else if (strcmp(t, "image_url") == 0 && images_ok) {
            cJSON *b = image_block(x, part);
            if (b)
                add(x, arr, NULL, b);
        } else if (strcmp(t, "refusal") == 0) {
            const cJSON *r = get(part, "refusal");
            if (cJSON_IsString(r) && r->valuestring[0])
                add(x, arr, NULL, text_block(x, r->valuestring, NULL));
        } else {
            return refuse(x, "content part type \"%.40s\" has no Anthropic equivalent here", t);
        }
    }
    return x->rc;
}

/* The last turn of messages when it has role, else a new turn with it. */
static cJSON *turn(xlate *x, cJSON *messages, const char *role)
{
    cJSON *last = cJSON_GetArrayItem(messages, cJSON_GetArraySize(messages) - 1);
    const cJSON *r = last ? get(last, "role") : NULL;
    if (r && strcmp(r->valuestring, role) == 0)
        return cJSON_GetObjectItemCaseSensitive(last, "content");
    cJSON *m = cJSON_CreateObject();
    cJSON *content = NULL;
    if (!m || !cJSON_AddStringToObject(m, "role", role) ||
        !(content = cJSON_AddArrayToObject(m, "content")) || add(x, messages, NULL, m)) {
        if (!x->rc)
            cJSON_Delete(m);
        oom(x);
        return NULL;
    }
    return content;
}

static int add_tool_calls(xlate *x, cJSON *blocks, const cJSON *calls)
{
    if (!calls || cJSON_IsNull(calls))
        return 0;
    if (!cJSON_IsArray(calls))
        return bad_request(x, "tool_calls is not an array");
    for (const cJSON *tc = calls->child; tc && !x->rc; tc = tc->next) {
        const cJSON *id = get(tc, "id"), *fn = get(tc, "function");
        const cJSON *name = get(fn, "name"), *args = get(fn, "arguments");
        if (!cJSON_IsString(id) || !cJSON_IsString(name))
            return bad_request(x, "a tool call without a string id and function.name");
        cJSON *input = NULL;
        if (!cJSON_IsString(args) || !args->valuestring[0]) {
            input = cJSON_CreateObject();
        } else {
            size_t len = strlen(args->valuestring), off = 0;
            if (llmux__json_check(args->valuestring, len, &off) != LLMUX_JSON_OK)
                return bad_request(x, "the arguments of tool call \"%.60s\" are not valid JSON",
                                   id->valuestring);
            input = cJSON_ParseWithLength(args->valuestring, len);
            if (input && !cJSON_IsObject(input)) {
                cJSON_Delete(input);
                return bad_request(x, "the arguments of tool call \"%.60s\" are not an object",
                                   id->valuestring);
            }
        }
        cJSON *b = cJSON_CreateObject();
        if (!input || !b || !cJSON_AddStringToObject(b, "type", "tool_use") ||
            !cJSON_AddStringToObject(b, "id", id->valuestring) ||
            !cJSON_AddStringToObject(b, "name", name->valuestring) ||
            !cJSON_AddItemToObject(b, "input", input)) {
            if (!get(b, "input")) /* not yet owned by b */
                cJSON_Delete(input);
            cJSON_Delete(b);
            return oom(x);
        }
        add(x, blocks, NULL, b);
    }
    return x->rc;
}

/* A tool message: a tool_result block placed after the tool results already
 * at the start of the user turn (tool results come first in a turn). */
static int add_tool_result(xlate *x, cJSON *messages, const cJSON *m)
{
    const cJSON *id = get(m, "tool_call_id"), *content = get(m, "content");
    if (!cJSON_IsString(id))
        return bad_request(x, "a tool message without a tool_call_id string");
    cJSON *b = cJSON_CreateObject();
    if (!b || !cJSON_AddStringToObject(b, "type", "tool_result") ||
        !cJSON_AddStringToObject(b, "tool_use_id", id->valuestring)) {
        cJSON_Delete(b);
        return oom(x);
    }
    if (cJSON_IsString(content)) {
        if (!cJSON_AddStringToObject(b, "content", content->valuestring)) {
            cJSON_Delete(b);
            return oom(x);
        }
    } else if (cJSON_IsArray(content)) {
        cJSON *arr = cJSON_AddArrayToObject(b, "content");
        if (!arr) {
            cJSON_Delete(b);
            return oom(x);
        }
        if (add_content(x, arr, content, 1)) {
            cJSON_Delete(b);
            return x->rc;
        }
    }
    cJSON *blocks = turn(x, messages, "user");
    if (!blocks) {
        cJSON_Delete(b);
        return x->rc;
    }
    int pos = 0;
    for (const cJSON *c = blocks->child; c; c = c->next, pos++) {
        const cJSON *t = get(c, "type");
        if (!cJSON_IsString(t) || strcmp(t->valuestring, "tool_result") != 0)
            break;
    }
    if (pos < cJSON_GetArraySize(blocks) ? !cJSON_InsertItemInArray(blocks, pos, b)
                                         : !cJSON_AddItemToArray(blocks, b)) {
        cJSON_Delete(b);
        return oom(x);
    }
    return 0;
}

/* An assistant message: its thinking blocks (carried back as they came, with
 * their signatures), its text, its tool calls as tool_use blocks. */
static int add_assistant(xlate *x, cJSON *messages, const cJSON *m)
{
    cJSON *blocks = turn(x, messages, "assistant");
    if (!blocks)
        return x->rc;
    const cJSON *tb = get(m, "thinking_blocks");
    for (const cJSON *b = cJSON_IsArray(tb) ? tb->child : NULL; b && !x->rc; b = b->next) {
        const cJSON *t = get(b, "type");
        if (!cJSON_IsString(t) || (strcmp(t->valuestring, "thinking") != 0 &&
                                   strcmp(t->valuestring, "redacted_thinking") != 0))
            return bad_request(x, "thinking_blocks holds a block that is not thinking");
        add_ref(x, blocks, NULL, b);
    }
    if (!x->rc)
        add_content(x, blocks, get(m, "content"), 0);
    if (!x->rc)
        add_tool_calls(x, blocks, get(m, "tool_calls"));
    return x->rc;
}

/* system and developer messages, in order, to the top-level system: a string
 * when it is one plain text, else text blocks (cache_control kept). */
static int add_system(xlate *x, cJSON *out, const cJSON *msgs)
{
    cJSON *blocks = cJSON_CreateArray();
    if (!blocks)
        return oom(x);
    for (const cJSON *m = msgs->child; m && !x->rc; m = m->next) {
        const cJSON *role = get(m, "role");
        if (cJSON_IsString(role) && (strcmp(role->valuestring, "system") == 0 ||
                                     strcmp(role->valuestring, "developer") == 0))
            add_content(x, blocks, get(m, "content"), 0);
    }
    if (x->rc || !blocks->child) {
        cJSON_Delete(blocks);
        return x->rc;
    }
    const cJSON *only = blocks->child;
    if (!only->next && !get(only, "cache_control")) {
        cJSON *s = cJSON_CreateString(get(only, "text")->valuestring);
        cJSON_Delete(blocks);
        return add(x, out, "system", s);
    }
    return add(x, out, "system", blocks);
}

/* Turns left without content (an assistant message of "" between two user
 * messages, say) are dropped, as Anthropic refuses empty turns, and the
 * same-role turns that then meet are merged. A turn whose content is one
 * plain text block is sent as a string. */
static int collapse_turns(xlate *x, cJSON *messages)
{
    cJSON *prev = NULL;
    for (cJSON *m = messages->child, *next; m; m = next) {
        next = m->next;
        cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        const char *role = get(m, "role")->valuestring;
        if (content->child && prev && strcmp(get(prev, "role")->valuestring, role) == 0) {
            cJSON *into = cJSON_GetObjectItemCaseSensitive(prev, "content");
            while (content->child)
                cJSON_AddItemToArray(into, cJSON_DetachItemViaPointer(content, content->child));
        }
        if (!content->child) {
            cJSON_Delete(cJSON_DetachItemViaPointer(messages, m));
            continue;
        }
        prev = m;
    }
    for (cJSON *m = messages->child; m; m = m->next) {
        cJSON *only = cJSON_GetObjectItemCaseSensitive(m, "content")->child;
        if (!only->next && strcmp(get(only, "type")->valuestring, "text") == 0 &&
            !get(only, "cache_control")) {
            cJSON *str = cJSON_CreateString(get(only, "text")->valuestring);
            if (!str || !cJSON_ReplaceItemInObjectCaseSensitive(m, "content", str)) {
                cJSON_Delete(str);
                return oom(x);
            }
        }
    }
    if (!messages->child)
        return bad_request(x, "no user or assistant message with content (Anthropic needs one)");
    return 0;
}

static int add_messages(xlate *x, cJSON *out, const cJSON *msgs)
{
    cJSON *messages = cJSON_AddArrayToObject(out, "messages");
    if (!messages)
        return oom(x);
    for (const cJSON *m = msgs->child; m && !x->rc; m = m->next) {
        const cJSON *role = get(m, "role");
        const char *r = cJSON_IsString(role) ? role->valuestring : "";
        if (strcmp(r, "system") == 0 || strcmp(r, "developer") == 0)
            continue;
        if (strcmp(r, "user") == 0) {
            cJSON *blocks = turn(x, messages, "user");
            if (blocks)
                add_content(x, blocks, get(m, "content"), 1);
        } else if (strcmp(r, "assistant") == 0) {
            add_assistant(x, messages, m);
        } else if (strcmp(r, "tool") == 0) {
            add_tool_result(x, messages, m);
        } else {
            refuse(x, "a message of role \"%.40s\" (Anthropic has user and assistant turns)", r);
        }
    }
    return x->rc ? x->rc : collapse_turns(x, messages);
}

static int add_tools(xlate *x, cJSON *out, const cJSON *tools)
{
    if (!cJSON_IsArray(tools) || !tools->child)
        return 0;
    cJSON *arr = cJSON_AddArrayToObject(out, "tools");
    if (!arr)
        return oom(x);
    for (const cJSON *t = tools->child; t && !x->rc; t = t->next) {
        const cJSON *type = get(t, "type"), *fn = get(t, "function");
        if (!cJSON_IsString(type) || strcmp(type->valuestring, "function") != 0)
            return refuse(x, "a tool whose type is not \"function\"");
        const cJSON *name = get(fn, "name"), *desc = get(fn, "description");
        const cJSON *params = get(fn, "parameters"), *strict = get(fn, "strict");
        if (!cJSON_IsString(name))
            return bad_request(x, "a tool without function.name");
        cJSON *o = cJSON_CreateObject();
        if (add(x, arr, NULL, o) || !cJSON_AddStringToObject(o, "name", name->valuestring) ||
            (cJSON_IsString(desc) && !cJSON_AddStringToObject(o, "description", desc->valuestring)))
            return oom(x);
        if (cJSON_IsObject(params))
            add_ref(x, o, "input_schema", params);
        else
            add(x, o, "input_schema", cJSON_Parse("{\"type\":\"object\",\"properties\":{}}"));
        if (!x->rc && cJSON_IsTrue(strict) && !cJSON_AddTrueToObject(o, "strict"))
            oom(x);
        const cJSON *cc = get(t, "cache_control");
        if (!x->rc && cc)
            add_ref(x, o, "cache_control", cc);
    }
    return x->rc;
}

static int add_tool_choice(xlate *x, cJSON *out, const cJSON *req)
{
    const cJSON *tc = get(req, "tool_choice"), *par = get(req, "parallel_tool_calls");
    if (!get(out, "tools"))
        return 0; /* Anthropic takes no tool_choice without tools */
    const char *type = NULL, *name = NULL;
    if (cJSON_IsString(tc)) {
        const char *s = tc->valuestring;
        type = strcmp(s, "required") == 0 ? "any" : strcmp(s, "none") == 0 ? "none"
                                                  : strcmp(s, "auto") == 0 ? "auto" : NULL;
        if (!type)
            return bad_request(x, "tool_choice \"%.40s\" is not auto, none or required", s);
    } else if (cJSON_IsObject(tc)) {
        const cJSON *n = get(get(tc, "function"), "name");
        if (!cJSON_IsString(n))
            return bad_request(x, "tool_choice object without function.name");
        type = "tool";
        name = n->valuestring;
    }
    int no_parallel = cJSON_IsFalse(par) && (!type || strcmp(type, "none") != 0);
    if (!type && !no_parallel)
        return 0;
    cJSON *o = cJSON_CreateObject();
    if (add(x, out, "tool_choice", o) || !cJSON_AddStringToObject(o, "type", type ? type : "auto") ||
        (name && !cJSON_AddStringToObject(o, "name", name)) ||
        (no_parallel && !cJSON_AddTrueToObject(o, "disable_parallel_tool_use")))
        return oom(x);
    return 0;
}

/* response_format: json_schema through output_config.format (native), or a
 * forced tool whose input comes back as the content (structured_output
 * "tool", and always for json_object, which Anthropic has no native form of). */
static int add_response_format(xlate *x, cJSON *out, const cJSON *rf)
{
    const cJSON *type = get(rf, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") == 0)
        return 0;
    const cJSON *schema = NULL;
    if (strcmp(type->valuestring, "json_schema") == 0) {
        schema = get(get(rf, "json_schema"), "schema");
        if (!cJSON_IsObject(schema))
            return bad_request(x, "response_format json_schema without a schema object");
        if (!x->st->json_tool) {
            cJSON *oc = cJSON_CreateObject(), *f = NULL;
            if (add(x, out, "output_config", oc) || !(f = cJSON_AddObjectToObject(oc, "format")) ||
                !cJSON_AddStringToObject(f, "type", "json_schema"))
                return oom(x);
            return add_ref(x, f, "schema", schema);
        }
    } else if (strcmp(type->valuestring, "json_object") != 0) {
        return refuse(x, "response_format \"%.40s\" has no Anthropic equivalent",
                      type->valuestring);
    }
    if (get(out, "tool_choice") && strcmp(get(get(out, "tool_choice"), "type")->valuestring,
                                          "auto") != 0)
        return refuse(x, "response_format through a forced tool, with a tool_choice of "
                               "its own");
    cJSON *tools = cJSON_GetObjectItemCaseSensitive(out, "tools");
    if (!tools && add(x, out, "tools", tools = cJSON_CreateArray()))
        return x->rc;
    cJSON *t = cJSON_CreateObject();
    if (add(x, tools, NULL, t) || !cJSON_AddStringToObject(t, "name", JSON_TOOL) ||
        !cJSON_AddStringToObject(t, "description", "Answer with the requested JSON as input."))
        return oom(x);
    if (schema ? add_ref(x, t, "input_schema", schema)
               : add(x, t, "input_schema", cJSON_Parse("{\"type\":\"object\"}")))
        return x->rc;
    cJSON_DeleteItemFromObjectCaseSensitive(out, "tool_choice");
    cJSON *tc = cJSON_CreateObject();
    if (add(x, out, "tool_choice", tc) || !cJSON_AddStringToObject(tc, "type", "tool") ||
        !cJSON_AddStringToObject(tc, "name", JSON_TOOL))
        return oom(x);
    return 0;
}

/* reasoning_effort to a thinking budget, below max_tokens; a "thinking"
 * object in the request (Anthropic's own form) is passed as given. */
static int add_thinking(xlate *x, cJSON *out, const cJSON *req, long max_tokens)
{
    const cJSON *th = get(req, "thinking"), *eff = get(req, "reasoning_effort");
    if (cJSON_IsObject(th))
        return add_ref(x, out, "thinking", th);
    if (!cJSON_IsString(eff) || strcmp(eff->valuestring, "none") == 0)
        return 0;
    const char *e = eff->valuestring;
    long budget = strcmp(e, "high") == 0 ? x->st->budget[2]
                  : strcmp(e, "medium") == 0 ? x->st->budget[1]
                  : (strcmp(e, "low") == 0 || strcmp(e, "minimal") == 0) ? x->st->budget[0] : -1;
    if (budget < 0)
        return bad_request(x, "reasoning_effort \"%.40s\" is not minimal, low, medium or high", e);
    if (budget >= max_tokens)
        budget = max_tokens - 1;
    if (budget < THINKING_MIN_BUDGET)
        return refuse(x, "reasoning_effort with max_tokens too small for a thinking "
                               "budget (Anthropic's minimum is 1024 tokens, below max_tokens)");
    cJSON *o = cJSON_CreateObject();
    if (add(x, out, "thinking", o) || !cJSON_AddStringToObject(o, "type", "enabled") ||
        !add_int(o, "budget_tokens", budget))
        return oom(x);
    return 0;
}

static int add_sampling(xlate *x, cJSON *out, const cJSON *req)
{
    const cJSON *t = get(req, "temperature"), *p = get(req, "top_p"), *stop = get(req, "stop");
    const cJSON *user = get(req, "user"), *n = get(req, "n");
    if (cJSON_IsNumber(n) && n->valuedouble != 1)
        return refuse(x, "n > 1 (Anthropic answers with one choice)");
    if (cJSON_IsTrue(get(req, "logprobs")))
        return refuse(x, "logprobs (Anthropic does not return them)");
    const cJSON *mod = get(req, "modalities");
    for (const cJSON *m = cJSON_IsArray(mod) ? mod->child : NULL; m; m = m->next)
        if (cJSON_IsString(m) && strcmp(m->valuestring, "text") != 0)
            return refuse(x, "output modality \"%.40s\"", m->valuestring);
    /* OpenAI's 0..2 to Anthropic's 0..1: values above 1 are clamped */
    if (cJSON_IsNumber(t) &&
        !cJSON_AddNumberToObject(out, "temperature", t->valuedouble > 1 ? 1 : t->valuedouble))
        return oom(x);
    if (cJSON_IsNumber(p) && add_ref(x, out, "top_p", p))
        return x->rc;
    if (cJSON_IsString(stop)) {
        cJSON *a = cJSON_CreateArray();
        if (add(x, out, "stop_sequences", a) || add_ref(x, a, NULL, stop))
            return oom(x);
    } else if (cJSON_IsArray(stop) && stop->child && add_ref(x, out, "stop_sequences", stop)) {
        return x->rc;
    }
    if (cJSON_IsString(user)) {
        cJSON *md = cJSON_CreateObject();
        if (add(x, out, "metadata", md) || !cJSON_AddStringToObject(md, "user_id", user->valuestring))
            return oom(x);
    }
    return 0;
}

static long max_tokens_of(const anthropic_state *st, const cJSON *req)
{
    const cJSON *v = get(req, "max_completion_tokens");
    if (!cJSON_IsNumber(v))
        v = get(req, "max_tokens");
    if (cJSON_IsNumber(v) && v->valuedouble >= 1 && v->valuedouble <= 1e9)
        return (long)v->valuedouble;
    return st->max_tokens;
}

/* The Messages API body for the caller's request, or NULL with x->rc set. */
static char *translate(xlate *x, const cJSON *req, const char *model, int stream, size_t *len)
{
    cJSON *out = cJSON_CreateObject();
    long max_tokens = max_tokens_of(x->st, req);
    const cJSON *msgs = get(req, "messages");
    if (!out || !cJSON_AddStringToObject(out, "model", model) ||
        !add_int(out, "max_tokens", max_tokens)) {
        oom(x);
        goto done;
    }
    if (!cJSON_IsArray(msgs)) {
        bad_request(x, "messages is not an array");
        goto done;
    }
    if (add_system(x, out, msgs) || add_messages(x, out, msgs) ||
        add_tools(x, out, get(req, "tools")) || add_tool_choice(x, out, req) ||
        add_response_format(x, out, get(req, "response_format")) ||
        add_thinking(x, out, req, max_tokens) || add_sampling(x, out, req))
        goto done;
    if (stream && !cJSON_AddTrueToObject(out, "stream")) {
        oom(x);
        goto done;
    }
    char *body = cJSON_PrintUnformatted(out);
    if (!body) {
        oom(x);
        goto done;
    }
    cJSON_Delete(out);
    *len = strlen(body);
    return body;
done:
    cJSON_Delete(out);
    return NULL;
}

static int anthropic_build_request(const lx_provider_cfg *p, const char *model,
                                   const lx_request *req, int stream, lx_http_request *out,
                                   lx_err *err)
{
    const anthropic_state *st = p->adapter_state;
    const cJSON *tree = llmux__request_tree(req, err);
    if (!tree)
        return err->status ? err->status : llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    xlate x = {st, err, 0};
    size_t len = 0;
    char *body = translate(&x, tree, model, stream, &len);
    if (!body)
        return x.rc;
    out->body = body;
    out->body_len = len;
    int bad = llmux__http_request_set_url(out, st->url) ||
              llmux__http_header_add_static(out, "Content-Type: application/json") ||
              llmux__http_header_add_static(out, st->version) ||
              (stream && llmux__http_header_add_static(out, "Accept: text/event-stream")) ||
              (st->beta && llmux__http_header_add_static(out, st->beta)) ||
              (st->key && llmux__http_header_add_static(out, st->key)) ||
              (len > 1024 * 1024 && llmux__http_header_add_static(out, "Expect:"));
    for (size_t i = 0; i < p->n_extra_headers && !bad; i++)
        bad = llmux__http_header_add_static(out, p->extra_headers[i]);
    return bad ? llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory") : LLMUX_OK;
}

/* ----------------------------------------------------------------- response */

/* Anthropic's usage counts as reported (-1 = absent). */
typedef struct raw_usage {
    long input, output, cache_read, cache_write, write_1h;
} raw_usage;

#define RAW_USAGE_UNKNOWN {-1, -1, -1, -1, -1}

static long count_member(const cJSON *o, const char *k, long keep)
{
    const cJSON *v = get(o, k);
    return cJSON_IsNumber(v) ? llmux__token_count(v->valuedouble) : keep;
}

/* Reads the members present (message_delta repeats some, cumulatively). */
static void read_raw_usage(const cJSON *u, raw_usage *r)
{
    if (!cJSON_IsObject(u))
        return;
    r->input = count_member(u, "input_tokens", r->input);
    r->output = count_member(u, "output_tokens", r->output);
    r->cache_read = count_member(u, "cache_read_input_tokens", r->cache_read);
    r->cache_write = count_member(u, "cache_creation_input_tokens", r->cache_write);
    const cJSON *cc = get(u, "cache_creation");
    if (cJSON_IsObject(cc))
        r->write_1h = count_member(cc, "ephemeral_1h_input_tokens", 0);
}

/* In OpenAI's terms: prompt tokens include cache reads and writes. */
static lx_usage to_usage(const raw_usage *r)
{
    lx_usage u = LX_USAGE_UNKNOWN;
    int known = r->input >= 0;
    u.cached_tokens = r->cache_read >= 0 ? r->cache_read : known ? 0 : -1;
    u.cache_write_tokens = r->cache_write >= 0 ? r->cache_write : known ? 0 : -1;
    u.cache_write_1h_tokens = r->write_1h;
    if (known)
        u.prompt_tokens = r->input + (u.cached_tokens > 0 ? u.cached_tokens : 0) +
                          (u.cache_write_tokens > 0 ? u.cache_write_tokens : 0);
    u.completion_tokens = r->output;
    return u;
}

/* ,"key":v for a known count (the first member without its comma). */
static int put_count(lx_buf *b, int *first, const char *key, int64_t v)
{
    if (v < 0)
        return 0;
    int bad = llmux__buf_printf(b, "%s\"%s\":%lld", *first ? "" : ",", key, (long long)v);
    *first = 0;
    return bad;
}

/* The OpenAI usage object as text; unknown (-1) members are left out. */
static int usage_text(lx_buf *b, const lx_usage *u)
{
    int64_t total = u->prompt_tokens >= 0 && u->completion_tokens >= 0
                        ? u->prompt_tokens + u->completion_tokens : -1;
    int first = 1, inner = 1;
    int bad = llmux__buf_puts(b, "{") || put_count(b, &first, "prompt_tokens", u->prompt_tokens) ||
              put_count(b, &first, "completion_tokens", u->completion_tokens) ||
              put_count(b, &first, "total_tokens", total) ||
              llmux__buf_puts(b, first ? "\"prompt_tokens_details\":{" : ",\"prompt_tokens_details\":{") ||
              put_count(b, &inner, "cached_tokens", u->cached_tokens) ||
              put_count(b, &inner, "cache_write_tokens", u->cache_write_tokens) ||
              put_count(b, &inner, "cache_write_1h_tokens", u->cache_write_1h_tokens) ||
              llmux__buf_puts(b, "}}");
    return bad;
}

/* stop_reason to finish_reason; json_only: the only tool used was the json
 * fallback's, so the answer is its content. */
static const char *finish_reason(const char *stop, int json_only)
{
    if (!stop)
        return NULL;
    if (strcmp(stop, "max_tokens") == 0 || strcmp(stop, "model_context_window_exceeded") == 0)
        return "length";
    if (strcmp(stop, "tool_use") == 0)
        return json_only ? "stop" : "tool_calls";
    if (strcmp(stop, "refusal") == 0)
        return "content_filter";
    return "stop"; /* end_turn, stop_sequence, pause_turn and values to come */
}

/* An Anthropic error type (or, without one, the HTTP status) to a status. */
static int status_for(const char *type, long http, const char *msg)
{
    int s;
    if (strcmp(type, "invalid_request_error") == 0 || strcmp(type, "request_too_large") == 0)
        s = LLMUX_ERR_BAD_REQUEST;
    else if (strcmp(type, "authentication_error") == 0)
        s = LLMUX_ERR_AUTH;
    else if (strcmp(type, "billing_error") == 0)
        s = LLMUX_ERR_QUOTA;
    else if (strcmp(type, "permission_error") == 0)
        s = LLMUX_ERR_PERMISSION;
    else if (strcmp(type, "not_found_error") == 0)
        s = LLMUX_ERR_NOT_FOUND;
    else if (strcmp(type, "rate_limit_error") == 0)
        s = LLMUX_ERR_RATE_LIMIT;
    else if (strcmp(type, "timeout_error") == 0)
        s = LLMUX_ERR_TIMEOUT;
    else if (strcmp(type, "overloaded_error") == 0 || strcmp(type, "api_error") == 0)
        s = LLMUX_ERR_PROVIDER;
    else
        s = http ? llmux__status_for_http(http) : LLMUX_ERR_PROVIDER;
    if (s == LLMUX_ERR_BAD_REQUEST && llmux__is_context_overflow(msg))
        s = LLMUX_ERR_CONTEXT_WINDOW;
    else if (s == LLMUX_ERR_BAD_REQUEST && strstr(msg, "credit balance"))
        s = LLMUX_ERR_QUOTA; /* billing, answered as a 400 invalid_request_error */
    return s;
}

/* Words an Anthropic error body {"type":"error","error":{"type","message"}}
 * (or whatever came) as an error; http 0 = inside a stream. */
static int body_error(const char *secret, long http, const char *body, size_t len, lx_err *err,
                      const char *what)
{
    char msg[320] = "", code[64] = "";
    size_t off = 0;
    cJSON *root = len && llmux__json_check(body, len, &off) == LLMUX_JSON_OK
                      ? cJSON_ParseWithLength(body, len) : NULL;
    const cJSON *e = get(root, "error");
    const cJSON *m = get(e, "message"), *t = get(e, "type");
    if (cJSON_IsString(m))
        llmux__provider_text(msg, sizeof msg, m->valuestring, strlen(m->valuestring), secret);
    else if (len)
        llmux__provider_text(msg, 201, body, len, secret);
    if (cJSON_IsString(t))
        llmux__provider_text(code, sizeof code, t->valuestring, strlen(t->valuestring), secret);
    cJSON_Delete(root);
    int status = status_for(code, http, msg);
    err->http_status = (int)http;
    snprintf(err->provider_code, sizeof err->provider_code, "%s", code);
    return llmux__err(err, status, "%s%s%s%s: %s", what, code[0] ? " (" : "", code,
                      code[0] ? ")" : "", msg[0] ? msg : "(empty body)");
}

static int anthropic_classify_error(const lx_provider_cfg *p, const lx_http_response *resp,
                                    lx_err *err)
{
    char what[32];
    snprintf(what, sizeof what, "HTTP %ld", resp->status);
    return body_error(p->api_key, resp->status, resp->body.data, resp->body.len, err, what);
}

/* A cJSON value printed into b. */
static int put_printed(lx_buf *b, const cJSON *v)
{
    char *t = cJSON_PrintUnformatted(v);
    int bad = !t || llmux__buf_puts(b, t);
    free(t);
    return bad;
}

/* The assistant message of a response, as text: content (text blocks
 * joined; the json fallback tool's input), reasoning_content and
 * thinking_blocks, tool_calls. 1 = a malformed tool_use block, -1 = out of
 * memory. */
static int message_text(lx_buf *b, const cJSON *content, int *json_only)
{
    lx_buf text = LX_BUF_INIT, reasoning = LX_BUF_INIT, calls = LX_BUF_INIT, blocks = LX_BUF_INIT;
    int bad = 0, has_text = 0, has_reasoning = 0, n_json = 0;
    for (const cJSON *c = content->child; c && !bad; c = c->next) {
        const cJSON *type = get(c, "type");
        const char *t = cJSON_IsString(type) ? type->valuestring : "";
        if (strcmp(t, "text") == 0) {
            const cJSON *s = get(c, "text");
            if (cJSON_IsString(s))
                bad = llmux__buf_puts(&text, s->valuestring) != 0, has_text = 1;
        } else if (strcmp(t, "tool_use") == 0) {
            const cJSON *id = get(c, "id"), *name = get(c, "name"), *input = get(c, "input");
            if (!cJSON_IsString(id) || !cJSON_IsString(name)) {
                bad = 1;
                break;
            }
            char *args = input ? cJSON_PrintUnformatted(input) : strdup("{}");
            if (!args) {
                bad = -1;
                break;
            }
            if (strcmp(name->valuestring, JSON_TOOL) == 0) {
                bad = llmux__buf_puts(&text, args) ? -1 : 0;
                has_text = 1;
                n_json++;
            } else {
                bad = (calls.len && llmux__buf_puts(&calls, ",")) ||
                      llmux__buf_puts(&calls, "{\"id\":") || llmux__buf_json_string(&calls, id->valuestring) ||
                      llmux__buf_puts(&calls, ",\"type\":\"function\",\"function\":{\"name\":") ||
                      llmux__buf_json_string(&calls, name->valuestring) ||
                      llmux__buf_puts(&calls, ",\"arguments\":") || llmux__buf_json_string(&calls, args) ||
                      llmux__buf_puts(&calls, "}}") ? -1 : 0;
            }
            free(args);
        } else if (strcmp(t, "thinking") == 0 || strcmp(t, "redacted_thinking") == 0) {
            const cJSON *s = get(c, "thinking");
            if (cJSON_IsString(s))
                bad = llmux__buf_puts(&reasoning, s->valuestring) ? -1 : 0, has_reasoning = 1;
            bad = bad || (blocks.len && llmux__buf_puts(&blocks, ",")) || put_printed(&blocks, c)
                      ? (bad ? bad : -1) : 0;
        } /* server tool blocks and types to come: not part of the chat answer */
    }
    *json_only = n_json > 0 && !calls.len;
    if (!bad) {
        bad = llmux__buf_puts(b, "{\"role\":\"assistant\",\"content\":") ||
              (has_text ? llmux__buf_json_string(b, text.data ? text.data : "")
                        : llmux__buf_puts(b, "null")) ||
              (has_reasoning && (llmux__buf_puts(b, ",\"reasoning_content\":") ||
                                 llmux__buf_json_string(b, reasoning.data ? reasoning.data : ""))) ||
              (blocks.len && (llmux__buf_puts(b, ",\"thinking_blocks\":[") ||
                              llmux__buf_append(b, blocks.data, blocks.len) ||
                              llmux__buf_puts(b, "]"))) ||
              (calls.len && (llmux__buf_puts(b, ",\"tool_calls\":[") ||
                             llmux__buf_append(b, calls.data, calls.len) ||
                             llmux__buf_puts(b, "]"))) ||
              llmux__buf_puts(b, "}") ? -1 : 0;
    }
    llmux__buf_free(&text);
    llmux__buf_free(&reasoning);
    llmux__buf_free(&calls);
    llmux__buf_free(&blocks);
    return bad;
}

static int anthropic_parse_response(const lx_provider_cfg *p, lx_buf *body, char **out_json,
                                    lx_usage *usage, lx_err *err)
{
    size_t off = 0;
    int syntax = body->len ? llmux__json_check(body->data, body->len, &off) : LLMUX_JSON_SYNTAX;
    if (syntax != LLMUX_JSON_OK)
        return llmux__err(err, LLMUX_ERR_BAD_RESPONSE,
                          "the response body is not valid %s (%zu bytes, error at byte %zu)",
                          syntax == LLMUX_JSON_UTF8 ? "UTF-8" : "JSON", body->len, off);
    cJSON *root = cJSON_ParseWithLength(body->data, body->len);
    lx_buf out = LX_BUF_INIT;
    if (!root)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    int rc = LLMUX_OK;
    const cJSON *type = get(root, "type"), *content = get(root, "content");
    if (cJSON_IsString(type) && strcmp(type->valuestring, "error") == 0) {
        rc = body_error(p->api_key, 200, body->data, body->len, err, "HTTP 200 with an error body");
        if (rc == LLMUX_ERR_BAD_REQUEST) /* the provider's failure, not the caller's */
            rc = err->status = LLMUX_ERR_PROVIDER;
        goto done;
    }
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "message") != 0 ||
        !cJSON_IsArray(content)) {
        rc = llmux__err(err, LLMUX_ERR_BAD_RESPONSE,
                        "the response is not a Messages API message (no type \"message\" with a "
                        "content array)");
        goto done;
    }
    raw_usage ru = RAW_USAGE_UNKNOWN;
    read_raw_usage(get(root, "usage"), &ru);
    *usage = to_usage(&ru);
    const cJSON *id = get(root, "id"), *model = get(root, "model"), *stop = get(root, "stop_reason");
    lx_buf msg = LX_BUF_INIT;
    int json_only = 0;
    int m = message_text(&msg, content, &json_only);
    if (m > 0) {
        llmux__buf_free(&msg);
        rc = llmux__err(err, LLMUX_ERR_BAD_RESPONSE, "a tool_use block without a string id and name");
        goto done;
    }
    const char *fr = finish_reason(cJSON_IsString(stop) ? stop->valuestring : NULL, json_only);
    int bad = m < 0 || llmux__buf_reserve(&out, msg.len + 256) ||
              llmux__buf_puts(&out, "{\"id\":") ||
              llmux__buf_json_string(&out, cJSON_IsString(id) ? id->valuestring : "") ||
              llmux__buf_printf(&out, ",\"object\":\"chat.completion\",\"created\":%lld,\"model\":",
                                (long long)time(NULL)) ||
              llmux__buf_json_string(&out, cJSON_IsString(model) ? model->valuestring : "") ||
              llmux__buf_puts(&out, ",\"choices\":[{\"index\":0,\"message\":") ||
              llmux__buf_append(&out, msg.data, msg.len) ||
              llmux__buf_puts(&out, ",\"logprobs\":null,\"finish_reason\":") ||
              (fr ? llmux__buf_json_string(&out, fr) : llmux__buf_puts(&out, "null")) ||
              llmux__buf_puts(&out, "}],\"usage\":") || usage_text(&out, usage) ||
              llmux__buf_puts(&out, "}");
    llmux__buf_free(&msg);
    if (bad || !(*out_json = llmux__buf_steal(&out)))
        goto nomem;
    goto done;
nomem:
    rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
done:
    llmux__buf_free(&out);
    cJSON_Delete(root);
    return rc;
}

/* ---------------------------------------------------------------- streaming */

#define MAX_BLOCKS 4096 /* content blocks in one message; more is not an answer */

enum { B_OTHER = 0, B_TEXT, B_TOOL, B_JSON, B_THINKING, B_REDACTED };

typedef struct anthropic_stream {
    lx_sse sse;
    const char *secret;
    char *id, *model;
    double created;
    raw_usage ru;
    unsigned char *kind; /* per content block index */
    int *tool_index;     /* per content block index: the OpenAI tool-call index */
    size_t n_blocks;
    int n_tools, n_json;
    char *stop_reason;
    lx_buf think, sig;   /* the thinking block being streamed, for thinking_blocks */
    int started, done;
    lx_chunk_sink_cb sink;
    void *ctx;
    lx_err *err;
    int status;
} anthropic_stream;

#define EVENT_END 2

static void *anthropic_stream_new(const lx_provider_cfg *p)
{
    anthropic_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    llmux__sse_init(&s->sse, p->max_response_bytes);
    s->secret = p->api_key;
    raw_usage ru = RAW_USAGE_UNKNOWN;
    s->ru = ru;
    s->think.limit = s->sig.limit = p->max_response_bytes;
    return s;
}

static void anthropic_stream_free(void *st)
{
    anthropic_stream *s = st;
    if (!s)
        return;
    llmux__sse_free(&s->sse);
    free(s->id);
    free(s->model);
    free(s->kind);
    free(s->tool_index);
    free(s->stop_reason);
    llmux__buf_free(&s->think);
    llmux__buf_free(&s->sig);
    free(s);
}

static int fail(anthropic_stream *s, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int fail(anthropic_stream *s, int status, const char *fmt, ...)
{
    char msg[LLMUX_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s->status = llmux__err(s->err, status, "%s", msg);
    return 1;
}

/* Sends one chunk (choices: a delta with finish_reason, or [] with usage);
 * delta and usage are taken over. */
static int emit(anthropic_stream *s, cJSON *delta, const char *finish, cJSON *usage)
{
    cJSON *c = cJSON_CreateObject(), *choices = NULL;
    int bad = !c || !cJSON_AddStringToObject(c, "id", s->id ? s->id : "") ||
              !cJSON_AddStringToObject(c, "object", "chat.completion.chunk") ||
              !cJSON_AddNumberToObject(c, "created", s->created) ||
              !cJSON_AddStringToObject(c, "model", s->model ? s->model : "") ||
              !(choices = cJSON_AddArrayToObject(c, "choices"));
    if (!bad && delta) {
        cJSON *ch = cJSON_CreateObject();
        bad = !ch || !cJSON_AddItemToArray(choices, ch) || !cJSON_AddNumberToObject(ch, "index", 0) ||
              !cJSON_AddItemToObject(ch, "delta", delta) ||
              !cJSON_AddNullToObject(ch, "logprobs") ||
              !(finish ? cJSON_AddStringToObject(ch, "finish_reason", finish)
                       : cJSON_AddNullToObject(ch, "finish_reason"));
        if (!ch || !get(ch, "delta"))
            cJSON_Delete(delta);
        delta = NULL;
    }
    if (!bad && usage) {
        bad = !cJSON_AddItemToObject(c, "usage", usage);
        if (bad)
            cJSON_Delete(usage);
        usage = NULL;
    }
    cJSON_Delete(delta);
    cJSON_Delete(usage);
    char *json = bad ? NULL : cJSON_PrintUnformatted(c);
    if (!json) {
        cJSON_Delete(c);
        return fail(s, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    int stop = s->sink(s->ctx, json, strlen(json), c);
    free(json);
    cJSON_Delete(c);
    if (stop)
        return fail(s, LLMUX_ERR_CANCELLED, "the chunk callback stopped the stream");
    return 0;
}

/* A delta with one string member. */
static int emit_text(anthropic_stream *s, const char *key, const char *text)
{
    cJSON *d = cJSON_CreateObject();
    if (!d || !cJSON_AddStringToObject(d, key, text)) {
        cJSON_Delete(d);
        return fail(s, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    return emit(s, d, NULL, NULL);
}

/* A tool-call delta: id and name with the first, arguments after. */
static int emit_tool(anthropic_stream *s, int index, const char *id, const char *name,
                     const char *args)
{
    cJSON *d = cJSON_CreateObject(), *arr = NULL, *tc = NULL, *fn = NULL;
    int bad = !d || !(arr = cJSON_AddArrayToObject(d, "tool_calls")) ||
              !(tc = cJSON_CreateObject()) || !cJSON_AddItemToArray(arr, tc) ||
              !cJSON_AddNumberToObject(tc, "index", index) ||
              (id && (!cJSON_AddStringToObject(tc, "id", id) ||
                      !cJSON_AddStringToObject(tc, "type", "function"))) ||
              !(fn = cJSON_AddObjectToObject(tc, "function")) ||
              (name && !cJSON_AddStringToObject(fn, "name", name)) ||
              !cJSON_AddStringToObject(fn, "arguments", args);
    if (bad) {
        if (arr && tc && !tc->prev && !arr->child)
            cJSON_Delete(tc);
        cJSON_Delete(d);
        return fail(s, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    return emit(s, d, NULL, NULL);
}

static char *dup_string(const cJSON *v)
{
    return cJSON_IsString(v) ? strdup(v->valuestring) : strdup("");
}

static int block_index(anthropic_stream *s, const cJSON *data, size_t *out)
{
    const cJSON *i = get(data, "index");
    if (!cJSON_IsNumber(i) || i->valuedouble < 0 || i->valuedouble >= MAX_BLOCKS ||
        i->valuedouble != (double)(int)i->valuedouble)
        return fail(s, LLMUX_ERR_BAD_RESPONSE, "a content block event without a valid index");
    *out = (size_t)i->valueint;
    if (*out >= s->n_blocks) {
        size_t n = *out + 8 < MAX_BLOCKS ? *out + 8 : MAX_BLOCKS;
        unsigned char *k = realloc(s->kind, n);
        if (k)
            s->kind = k;
        int *t = k ? realloc(s->tool_index, n * sizeof *t) : NULL;
        if (!t)
            return fail(s, LLMUX_ERR_NO_MEMORY, "out of memory");
        s->tool_index = t;
        memset(s->kind + s->n_blocks, B_OTHER, n - s->n_blocks);
        s->n_blocks = n;
    }
    return 0;
}

static int on_block_start(anthropic_stream *s, const cJSON *data)
{
    size_t i;
    if (block_index(s, data, &i))
        return 1;
    const cJSON *b = get(data, "content_block"), *type = get(b, "type");
    const char *t = cJSON_IsString(type) ? type->valuestring : "";
    if (strcmp(t, "text") == 0) {
        s->kind[i] = B_TEXT;
        const cJSON *text = get(b, "text");
        if (cJSON_IsString(text) && text->valuestring[0])
            return emit_text(s, "content", text->valuestring);
    } else if (strcmp(t, "tool_use") == 0) {
        const cJSON *id = get(b, "id"), *name = get(b, "name");
        if (!cJSON_IsString(id) || !cJSON_IsString(name))
            return fail(s, LLMUX_ERR_BAD_RESPONSE, "a tool_use block without id and name");
        if (strcmp(name->valuestring, JSON_TOOL) == 0) {
            s->kind[i] = B_JSON;
            s->n_json++;
            return 0;
        }
        s->kind[i] = B_TOOL;
        s->tool_index[i] = s->n_tools++;
        return emit_tool(s, s->tool_index[i], id->valuestring, name->valuestring, "");
    } else if (strcmp(t, "thinking") == 0 || strcmp(t, "redacted_thinking") == 0) {
        s->kind[i] = B_THINKING;
        llmux__buf_clear(&s->think);
        llmux__buf_clear(&s->sig);
        const cJSON *text = get(b, "thinking"), *data_ = get(b, "data");
        if (cJSON_IsString(data_)) { /* redacted: the data is the block's whole content */
            if (llmux__buf_puts(&s->sig, data_->valuestring))
                return fail(s, LLMUX_ERR_BAD_RESPONSE, "a thinking block beyond the size cap");
            s->kind[i] = B_REDACTED; /* kept whole for thinking_blocks */
        }
        if (cJSON_IsString(text) && text->valuestring[0]) {
            if (llmux__buf_puts(&s->think, text->valuestring))
                return fail(s, LLMUX_ERR_BAD_RESPONSE, "a thinking block beyond the size cap");
            return emit_text(s, "reasoning_content", text->valuestring);
        }
    } else {
        s->kind[i] = B_OTHER;
    }
    return 0;
}

static int on_block_delta(anthropic_stream *s, const cJSON *data)
{
    size_t i;
    if (block_index(s, data, &i))
        return 1;
    const cJSON *d = get(data, "delta"), *type = get(d, "type");
    const char *t = cJSON_IsString(type) ? type->valuestring : "";
    if (strcmp(t, "text_delta") == 0) {
        const cJSON *text = get(d, "text");
        if (cJSON_IsString(text) && text->valuestring[0])
            return emit_text(s, "content", text->valuestring);
    } else if (strcmp(t, "input_json_delta") == 0) {
        const cJSON *pj = get(d, "partial_json");
        if (!cJSON_IsString(pj) || !pj->valuestring[0])
            return 0;
        if (s->kind[i] == B_JSON)
            return emit_text(s, "content", pj->valuestring);
        if (s->kind[i] == B_TOOL)
            return emit_tool(s, s->tool_index[i], NULL, NULL, pj->valuestring);
        return fail(s, LLMUX_ERR_BAD_RESPONSE, "input_json_delta for a block that is no tool_use");
    } else if (strcmp(t, "thinking_delta") == 0) {
        const cJSON *text = get(d, "thinking");
        if (cJSON_IsString(text) && text->valuestring[0]) {
            if (llmux__buf_puts(&s->think, text->valuestring))
                return fail(s, LLMUX_ERR_BAD_RESPONSE, "a thinking block beyond the size cap");
            return emit_text(s, "reasoning_content", text->valuestring);
        }
    } else if (strcmp(t, "signature_delta") == 0) {
        const cJSON *sig = get(d, "signature");
        if (cJSON_IsString(sig) && llmux__buf_puts(&s->sig, sig->valuestring))
            return fail(s, LLMUX_ERR_BAD_RESPONSE, "a thinking signature beyond the size cap");
    }
    return 0;
}

/* At the end of a thinking block: the whole block, signature included, as
 * delta.thinking_blocks, for the caller to send back on its next turn. */
static int on_block_stop(anthropic_stream *s, const cJSON *data)
{
    size_t i;
    if (block_index(s, data, &i))
        return 1;
    if (s->kind[i] != B_THINKING && s->kind[i] != B_REDACTED)
        return 0;
    int redacted = s->kind[i] != B_THINKING;
    cJSON *d = cJSON_CreateObject(), *arr = NULL, *b = cJSON_CreateObject();
    int bad = !d || !b || !(arr = cJSON_AddArrayToObject(d, "thinking_blocks")) ||
              !cJSON_AddItemToArray(arr, b);
    if (bad) {
        cJSON_Delete(b);
        cJSON_Delete(d);
        return fail(s, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    bad = redacted ? !cJSON_AddStringToObject(b, "type", "redacted_thinking") ||
                         !cJSON_AddStringToObject(b, "data", s->sig.data ? s->sig.data : "")
                   : !cJSON_AddStringToObject(b, "type", "thinking") ||
                         !cJSON_AddStringToObject(b, "thinking", s->think.data ? s->think.data : "") ||
                         !cJSON_AddStringToObject(b, "signature", s->sig.data ? s->sig.data : "");
    if (bad) {
        cJSON_Delete(d);
        return fail(s, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    return emit(s, d, NULL, NULL);
}

static int on_message_start(anthropic_stream *s, const cJSON *data)
{
    const cJSON *m = get(data, "message");
    if (!cJSON_IsObject(m))
        return fail(s, LLMUX_ERR_BAD_RESPONSE, "message_start without a message");
    free(s->id);
    free(s->model);
    s->id = dup_string(get(m, "id"));
    s->model = dup_string(get(m, "model"));
    if (!s->id || !s->model)
        return fail(s, LLMUX_ERR_NO_MEMORY, "out of memory");
    s->created = (double)time(NULL);
    read_raw_usage(get(m, "usage"), &s->ru);
    s->started = 1;
    cJSON *d = cJSON_CreateObject();
    if (!d || !cJSON_AddStringToObject(d, "role", "assistant") ||
        !cJSON_AddStringToObject(d, "content", "")) {
        cJSON_Delete(d);
        return fail(s, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    return emit(s, d, NULL, NULL);
}

static int on_message_delta(anthropic_stream *s, const cJSON *data)
{
    read_raw_usage(get(data, "usage"), &s->ru); /* cumulative */
    const cJSON *sr = get(get(data, "delta"), "stop_reason");
    if (!cJSON_IsString(sr))
        return 0;
    free(s->stop_reason);
    if (!(s->stop_reason = strdup(sr->valuestring)))
        return fail(s, LLMUX_ERR_NO_MEMORY, "out of memory");
    cJSON *d = cJSON_CreateObject();
    if (!d)
        return fail(s, LLMUX_ERR_NO_MEMORY, "out of memory");
    return emit(s, d, finish_reason(sr->valuestring, s->n_json > 0 && s->n_tools == 0), NULL);
}

static int on_message_stop(anthropic_stream *s)
{
    lx_usage u = to_usage(&s->ru);
    lx_buf text = LX_BUF_INIT;
    cJSON *uj = usage_text(&text, &u) ? NULL : cJSON_ParseWithLength(text.data, text.len);
    llmux__buf_free(&text);
    if (!uj)
        return fail(s, LLMUX_ERR_NO_MEMORY, "out of memory");
    if (emit(s, NULL, NULL, uj))
        return 1;
    s->done = 1;
    return EVENT_END;
}

static int on_event(void *ctx, const char *event, const char *data, size_t len)
{
    anthropic_stream *s = ctx;
    (void)event; /* data.type repeats the event name */
    size_t off = 0;
    int syntax = llmux__json_check(data, len, &off);
    if (syntax != LLMUX_JSON_OK) {
        s->status = llmux__err(s->err, LLMUX_ERR_BAD_RESPONSE,
                               "stream event %zu is not valid %s (error at byte %zu)",
                               s->sse.events, syntax == LLMUX_JSON_UTF8 ? "UTF-8" : "JSON", off);
        return 1;
    }
    cJSON *root = cJSON_ParseWithLength(data, len);
    if (!root)
        return fail(s, LLMUX_ERR_NO_MEMORY, "out of memory");
    const cJSON *type = get(root, "type");
    const char *t = cJSON_IsString(type) ? type->valuestring : "";
    int rc = 0;
    if (strcmp(t, "error") == 0) {
        s->status = body_error(s->secret, 0, data, len, s->err, "error event in the stream");
        rc = 1;
    } else if (!s->started && strcmp(t, "ping") != 0 && strcmp(t, "message_start") != 0) {
        char shown[41];
        llmux__provider_text(shown, sizeof shown, t, strlen(t), s->secret);
        rc = fail(s, LLMUX_ERR_BAD_RESPONSE, "stream event \"%s\" before message_start", shown);
    } else if (strcmp(t, "message_start") == 0) {
        rc = on_message_start(s, root);
    } else if (strcmp(t, "content_block_start") == 0) {
        rc = on_block_start(s, root);
    } else if (strcmp(t, "content_block_delta") == 0) {
        rc = on_block_delta(s, root);
    } else if (strcmp(t, "content_block_stop") == 0) {
        rc = on_block_stop(s, root);
    } else if (strcmp(t, "message_delta") == 0) {
        rc = on_message_delta(s, root);
    } else if (strcmp(t, "message_stop") == 0) {
        rc = on_message_stop(s);
    } /* ping and event types to come are ignored */
    cJSON_Delete(root);
    return rc;
}

static int anthropic_stream_feed(void *st, const char *data, size_t len, lx_chunk_sink_cb sink,
                                 void *ctx, lx_err *err)
{
    anthropic_stream *s = st;
    s->sink = sink;
    s->ctx = ctx;
    s->err = err;
    s->status = LLMUX_OK;
    if (s->done)
        return LX_STREAM_END;
    int rc = llmux__sse_feed(&s->sse, data, len, on_event, s);
    int failed = llmux__sse_failure(&s->sse, rc, err);
    if (failed)
        return failed;
    if (rc == EVENT_END)
        return LX_STREAM_END;
    if (rc)
        return s->status ? s->status : LLMUX_ERR_INTERNAL;
    return LLMUX_OK;
}

static int anthropic_stream_finish(void *st, lx_err *err)
{
    anthropic_stream *s = st;
    if (!s->done)
        return llmux__err(err, LLMUX_ERR_CONNECT,
                          "the stream ended before message_stop (after %zu events)", s->sse.events);
    return LLMUX_OK;
}

const lx_provider_ops llmux__anthropic_ops = {
    .type = "anthropic",
    .default_base_url = "https://api.anthropic.com",
    .config_keys = CONFIG_KEYS,
    .configure = anthropic_configure,
    .release = anthropic_release,
    .build_request = anthropic_build_request,
    .parse_response = anthropic_parse_response,
    .classify_error = anthropic_classify_error,
    .stream_new = anthropic_stream_new,
    .stream_feed = anthropic_stream_feed,
    .stream_finish = anthropic_stream_finish,
    .stream_free = anthropic_stream_free,
};
