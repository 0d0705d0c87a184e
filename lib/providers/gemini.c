/*
 * The Gemini API adapter (generateContent / streamGenerateContent?alt=sse,
 * key in x-goog-api-key). The caller's OpenAI request is translated into a
 * new document; answers and SSE chunks are translated back into OpenAI shapes.
 * docs/providers/gemini.md lists every mapping, and what is refused.
 *
 * Tool-call ids: Gemini gives none (or functionCall.id, used when present), so
 * an id is derived from the call's position, name and arguments: the same in
 * a streamed and an unstreamed answer. A thoughtSignature (Gemini 3 rejects a
 * function-call turn without it) travels inside the id, after "__ts__", and is
 * restored when the caller sends the tool call back.
 */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/hash.h"
#include "providers/classify.h"
#include "providers/provider.h"
#include "wire/json_check.h"
#include "wire/sse.h"

#define TS_SEP "__ts__"

static const char *const GEMINI_KEYS[] = {"schema", NULL};

typedef struct gemini_state {
    char *models_url; /* "<base>/models/" */
    char *key_line;   /* "x-goog-api-key: KEY", NULL without a key */
    int openapi;      /* "schema": "openapi": schemas converted to Gemini's OpenAPI subset */
} gemini_state;

static void gemini_release(lx_provider_cfg *p)
{
    gemini_state *st = p->adapter_state;
    if (!st)
        return;
    free(st->models_url);
    if (st->key_line) {
        memset(st->key_line, 0, strlen(st->key_line));
        free(st->key_line);
    }
    free(st);
    p->adapter_state = NULL;
}

static int gemini_configure(lx_provider_cfg *p, const cJSON *obj, const char *path,
                            const lx_cfg_reader *rd, lx_err *err)
{
    const char *schema = NULL;
    int rc = rd->string(obj, "schema", path, 0, &schema, err);
    if (rc)
        return rc;
    if (schema && strcmp(schema, "json_schema") && strcmp(schema, "openapi"))
        return rd->error(err, path, "schema", "expected \"json_schema\" or \"openapi\"");
    gemini_state *st = calloc(1, sizeof *st);
    if (!st)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    p->adapter_state = st;
    st->openapi = schema && strcmp(schema, "openapi") == 0;
    size_t n = strlen(p->base_url) + sizeof "/models/";
    int failed = !(st->models_url = malloc(n));
    if (st->models_url)
        snprintf(st->models_url, n, "%s/models/", p->base_url);
    if (p->api_key) {
        size_t kn = strlen(p->api_key) + sizeof "x-goog-api-key: ";
        if ((st->key_line = malloc(kn)))
            snprintf(st->key_line, kn, "x-goog-api-key: %s", p->api_key);
        else
            failed = 1;
    }
    if (failed) {
        gemini_release(p);
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    return LLMUX_OK;
}

/* ------------------------------------------------------------------ request */

typedef struct build_ctx {
    const cJSON *messages;
    int openapi; /* convert schemas to the OpenAPI subset */
    lx_err *err;
    int status; /* first failure */
} build_ctx;

static int fail(build_ctx *b, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int fail(build_ctx *b, int status, const char *fmt, ...)
{
    if (!b->status) {
        char msg[LLMUX_ERRMSG_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        b->status = llmux__err(b->err, status, "%s", msg);
    }
    return b->status;
}

static const char *str_member(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Appends a {"text":...} part. */
static int add_text_part(cJSON *parts, const char *text)
{
    cJSON *part = cJSON_CreateObject();
    if (!part || !cJSON_AddItemToArray(parts, part) || !cJSON_AddStringToObject(part, "text", text))
        return -1;
    return 0;
}

static const char *mime_from_extension(const char *url)
{
    static const struct {
        const char *ext, *mime;
    } t[] = {{".png", "image/png"},   {".jpg", "image/jpeg"}, {".jpeg", "image/jpeg"},
             {".webp", "image/webp"}, {".gif", "image/gif"},  {".heic", "image/heic"},
             {".heif", "image/heif"}, {".pdf", "application/pdf"}};
    size_t n = strcspn(url, "?#");
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        size_t el = strlen(t[i].ext);
        if (n > el) {
            size_t k = 0;
            while (k < el && (url[n - el + k] | 0x20) == t[i].ext[k])
                k++;
            if (k == el)
                return t[i].mime;
        }
    }
    return NULL;
}

/* An image_url part: a data URL becomes inlineData, an http(s) or gs:// URL
 * with a known file type becomes fileData. */
static int add_image_part(build_ctx *b, cJSON *parts, const cJSON *img)
{
    const char *url = cJSON_IsObject(img)   ? str_member(img, "url")
                      : cJSON_IsString(img) ? img->valuestring
                                            : NULL;
    if (!url)
        return fail(b, LLMUX_ERR_BAD_REQUEST, "an image_url part has no url");
    cJSON *part = cJSON_CreateObject();
    if (!part || !cJSON_AddItemToArray(parts, part)) {
        cJSON_Delete(part);
        return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    if (strncmp(url, "data:", 5) == 0) {
        const char *semi = strstr(url, ";base64,");
        const char *comma = strchr(url, ',');
        if (!semi || comma != semi + 7 || semi == url + 5)
            return fail(b, LLMUX_ERR_BAD_REQUEST,
                        "an image data URL must read data:<mime type>;base64,<data>");
        cJSON *in = cJSON_AddObjectToObject(part, "inlineData");
        char mime[128];
        size_t ml = (size_t)(semi - (url + 5));
        if (ml >= sizeof mime)
            return fail(b, LLMUX_ERR_BAD_REQUEST, "an image data URL's mime type is too long");
        memcpy(mime, url + 5, ml);
        mime[ml] = '\0';
        if (!in || !cJSON_AddStringToObject(in, "mimeType", mime) ||
            !cJSON_AddStringToObject(in, "data", semi + 8))
            return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
        return 0;
    }
    if (strncmp(url, "https://", 8) && strncmp(url, "http://", 7) && strncmp(url, "gs://", 5))
        return fail(b, LLMUX_ERR_BAD_REQUEST,
                    "an image url must be a data URL, http(s):// or gs://");
    const char *mime = mime_from_extension(url);
    if (!mime)
        return fail(b, LX_CANNOT_SERVE,
                    "gemini needs the mime type of image URL %.200s: give it a .png, .jpg, "
                    ".jpeg, .webp, .gif, .heic, .heif or .pdf name, or send a data URL",
                    url);
    cJSON *fd = cJSON_AddObjectToObject(part, "fileData");
    if (!fd || !cJSON_AddStringToObject(fd, "mimeType", mime) ||
        !cJSON_AddStringToObject(fd, "fileUri", url))
        return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
    return 0;
}

/* A message's content (string, array of parts, null) as parts. */
static int add_content(build_ctx *b, cJSON *parts, const cJSON *content, int images_ok)
{
    if (!content || cJSON_IsNull(content))
        return 0;
    if (cJSON_IsString(content))
        return content->valuestring[0] && add_text_part(parts, content->valuestring)
                   ? fail(b, LLMUX_ERR_NO_MEMORY, "out of memory")
                   : 0;
    if (!cJSON_IsArray(content))
        return fail(b, LLMUX_ERR_BAD_REQUEST, "message content must be a string or an array");
    for (const cJSON *it = content->child; it; it = it->next) {
        const char *type = str_member(it, "type");
        if (type && strcmp(type, "text") == 0 && str_member(it, "text")) {
            if (add_text_part(parts, str_member(it, "text")))
                return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
        } else if (type && strcmp(type, "image_url") == 0 && images_ok) {
            if (add_image_part(b, parts, cJSON_GetObjectItemCaseSensitive(it, "image_url")))
                return b->status;
        } else {
            return fail(b, LX_CANNOT_SERVE,
                        "gemini adapter: content part type \"%.40s\" is not supported here",
                        type ? type : "(none)");
        }
    }
    return 0;
}

/* The tool call that tool_call_id names, searched backwards from message i. */
static const cJSON *find_tool_call(const cJSON *messages, int before, const char *id)
{
    for (int i = before - 1; i >= 0; i--) {
        const cJSON *m = cJSON_GetArrayItem(messages, i);
        const char *role = str_member(m, "role");
        if (!role || strcmp(role, "assistant"))
            continue;
        const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
        for (const cJSON *tc = cJSON_IsArray(tcs) ? tcs->child : NULL; tc; tc = tc->next) {
            const char *tid = str_member(tc, "id");
            if (tid && strcmp(tid, id) == 0)
                return tc;
        }
    }
    return NULL;
}

/* A JSON text the caller gave (tool arguments, tool results), parsed only
 * when strictly valid. */
static cJSON *parse_strict(const char *s)
{
    size_t off;
    if (!s || llmux__json_check(s, strlen(s), &off) != LLMUX_JSON_OK)
        return NULL;
    return cJSON_Parse(s);
}

static int add_function_call(build_ctx *b, cJSON *parts, const cJSON *tc)
{
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    const char *name = str_member(fn, "name");
    if (!name)
        return fail(b, LLMUX_ERR_BAD_REQUEST, "an assistant tool call has no function name");
    const char *args = str_member(fn, "arguments");
    cJSON *a = args && args[0] ? parse_strict(args) : cJSON_CreateObject();
    if (!cJSON_IsObject(a)) {
        cJSON_Delete(a);
        return fail(b, LLMUX_ERR_BAD_REQUEST,
                    "the arguments of tool call \"%.64s\" are not a JSON object", name);
    }
    cJSON *part = cJSON_CreateObject();
    cJSON *call = part ? cJSON_AddObjectToObject(part, "functionCall") : NULL;
    if (!call || !cJSON_AddItemToArray(parts, part) ||
        !cJSON_AddStringToObject(call, "name", name) ||
        !cJSON_AddItemToObject(call, "args", a)) {
        if (!call)
            cJSON_Delete(part);
        cJSON_Delete(a);
        return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    /* the signature: in the id, or in Google's OpenAI-compatible extension */
    const char *id = str_member(tc, "id");
    const char *sig = id ? strstr(id, TS_SEP) : NULL;
    if (sig)
        sig += sizeof TS_SEP - 1;
    const cJSON *ext = cJSON_GetObjectItemCaseSensitive(tc, "extra_content");
    const char *ext_sig =
        str_member(cJSON_GetObjectItemCaseSensitive(ext, "google"), "thought_signature");
    if (!sig)
        sig = ext_sig;
    if (sig && sig[0] && !cJSON_AddStringToObject(part, "thoughtSignature", sig))
        return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
    return 0;
}

static int add_function_response(build_ctx *b, cJSON *parts, const char *name, const cJSON *content)
{
    char *text = NULL;
    const char *s = NULL;
    if (cJSON_IsString(content)) {
        s = content->valuestring;
    } else if (cJSON_IsArray(content)) { /* text parts, joined */
        size_t n = 1;
        for (const cJSON *it = content->child; it; it = it->next)
            if (str_member(it, "text"))
                n += strlen(str_member(it, "text"));
        if (!(text = malloc(n)))
            return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
        text[0] = '\0';
        for (const cJSON *it = content->child; it; it = it->next)
            if (str_member(it, "text"))
                strcat(text, str_member(it, "text"));
        s = text;
    } else {
        s = "";
    }
    /* a JSON object result is the response; anything else is {"result": text} */
    cJSON *resp = parse_strict(s);
    if (!cJSON_IsObject(resp)) {
        cJSON_Delete(resp);
        resp = cJSON_CreateObject();
        if (resp && !cJSON_AddStringToObject(resp, "result", s)) {
            cJSON_Delete(resp);
            resp = NULL;
        }
    }
    free(text);
    cJSON *part = cJSON_CreateObject();
    cJSON *fr = part ? cJSON_AddObjectToObject(part, "functionResponse") : NULL;
    if (!resp || !fr || !cJSON_AddItemToArray(parts, part) ||
        !cJSON_AddStringToObject(fr, "name", name) ||
        !cJSON_AddItemToObject(fr, "response", resp)) {
        if (!fr)
            cJSON_Delete(part);
        cJSON_Delete(resp);
        return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    return 0;
}

/* contents[] and systemInstruction from messages; consecutive turns of one
 * role are merged into one. */
static int build_contents(build_ctx *b, cJSON *body, const cJSON *messages)
{
    cJSON *sys_parts = NULL;
    cJSON *contents = cJSON_AddArrayToObject(body, "contents");
    if (!contents)
        return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
    cJSON *turn_parts = NULL;
    const char *turn_role = NULL;
    int i = 0;
    for (const cJSON *m = messages->child; m; m = m->next, i++) {
        const char *role = str_member(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        if (!role)
            return fail(b, LLMUX_ERR_BAD_REQUEST, "a message has no role");
        if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0) {
            if (!sys_parts) {
                cJSON *si = cJSON_AddObjectToObject(body, "systemInstruction");
                if (!si || !(sys_parts = cJSON_AddArrayToObject(si, "parts")))
                    return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
            }
            if (add_content(b, sys_parts, content, 0))
                return b->status;
            continue;
        }
        const char *grole = strcmp(role, "assistant") == 0 ? "model" : "user";
        if (!turn_role || strcmp(turn_role, grole)) {
            cJSON *turn = cJSON_CreateObject();
            if (!turn || !cJSON_AddItemToArray(contents, turn) ||
                !cJSON_AddStringToObject(turn, "role", grole) ||
                !(turn_parts = cJSON_AddArrayToObject(turn, "parts")))
                return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
            turn_role = grole;
        }
        if (strcmp(role, "user") == 0) {
            if (add_content(b, turn_parts, content, 1))
                return b->status;
        } else if (strcmp(role, "assistant") == 0) {
            if (add_content(b, turn_parts, content, 0))
                return b->status;
            const cJSON *tcs = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
            for (const cJSON *tc = cJSON_IsArray(tcs) ? tcs->child : NULL; tc; tc = tc->next)
                if (add_function_call(b, turn_parts, tc))
                    return b->status;
        } else if (strcmp(role, "tool") == 0) {
            const char *id = str_member(m, "tool_call_id");
            const cJSON *tc = id ? find_tool_call(messages, i, id) : NULL;
            const cJSON *fn = tc ? cJSON_GetObjectItemCaseSensitive(tc, "function") : NULL;
            const char *name = str_member(fn, "name");
            if (!name)
                return fail(b, LLMUX_ERR_BAD_REQUEST,
                            "tool message with tool_call_id \"%.64s\" answers no earlier "
                            "assistant tool call (gemini needs the function's name)",
                            id ? id : "");
            if (add_function_response(b, turn_parts, name, content))
                return b->status;
        } else if (strcmp(role, "function") == 0) {
            const char *name = str_member(m, "name");
            if (!name)
                return fail(b, LLMUX_ERR_BAD_REQUEST, "a function message has no name");
            if (add_function_response(b, turn_parts, name, content))
                return b->status;
        } else {
            return fail(b, LLMUX_ERR_BAD_REQUEST, "unknown message role \"%.32s\"", role);
        }
    }
    /* a turn left without parts (an empty assistant message) is dropped */
    for (cJSON *t = contents->child, *next; t; t = next) {
        next = t->next;
        if (!cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(t, "parts")))
            cJSON_Delete(cJSON_DetachItemViaPointer(contents, t));
    }
    if (!contents->child)
        return fail(b, LLMUX_ERR_BAD_REQUEST, "gemini needs at least one user or assistant message "
                                              "with content");
    return 0;
}

/* JSON Schema to Gemini's OpenAPI subset (the Schema object of `parameters`
 * and `responseSchema`). Keywords that only annotate are dropped; a keyword
 * Gemini has no equivalent for is refused (cannot_serve, naming it and where),
 * never silently left out. additionalProperties:false is the one constraint
 * dropped (Gemini has none; docs/providers/gemini.md). */
static cJSON *to_openapi(build_ctx *b, const cJSON *in, const char *where, int depth)
{
    static const char *const copied[] = {"format", "title", "description", "enum", "maxItems",
                                         "minItems", "required", "minProperties", "maxProperties",
                                         "minLength", "maxLength", "pattern", "example", "default",
                                         "minimum", "maximum", "nullable", "propertyOrdering", NULL};
    static const char *const dropped[] = {"$schema", "$id", "$comment", "examples", "strict",
                                          NULL};
    if (!cJSON_IsObject(in) || depth > 64) {
        fail(b, LX_CANNOT_SERVE, "gemini adapter: the schema at %s is not an object%s", where,
             depth > 64 ? " or nests too deep" : "");
        return NULL;
    }
    cJSON *out = cJSON_CreateObject();
    if (!out) {
        fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    for (const cJSON *k = in->child; k && !b->status; k = k->next) {
        const char *key = k->string;
        char sub[160];
        int done = 0;
        for (const char *const *c = copied; *c && !done; c++)
            if (strcmp(key, *c) == 0) {
                done = 1;
                if (!cJSON_AddItemToObject(out, key, cJSON_Duplicate(k, 1)))
                    fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
            }
        for (const char *const *d = dropped; *d && !done; d++)
            done = strcmp(key, *d) == 0;
        if (done || (strcmp(key, "additionalProperties") == 0 && cJSON_IsFalse(k)))
            continue;
        if (strcmp(key, "type") == 0) {
            /* "string" -> "STRING"; ["string","null"] -> "STRING" + nullable */
            const char *t = cJSON_IsString(k) ? k->valuestring : NULL;
            int nullable = 0;
            if (cJSON_IsArray(k) && cJSON_GetArraySize(k) == 2) {
                const cJSON *x = k->child, *y = k->child->next;
                if (cJSON_IsString(y) && strcmp(y->valuestring, "null") == 0)
                    t = cJSON_IsString(x) ? x->valuestring : NULL;
                else if (cJSON_IsString(x) && strcmp(x->valuestring, "null") == 0)
                    t = cJSON_IsString(y) ? y->valuestring : NULL;
                nullable = t != NULL;
            }
            char up[16];
            size_t n = t ? strlen(t) : 0;
            if (!t || n >= sizeof up) {
                fail(b, LX_CANNOT_SERVE, "gemini adapter: %s.type: only one type (or one and "
                                         "\"null\") has an OpenAPI equivalent", where);
                break;
            }
            for (size_t i = 0; i <= n; i++)
                up[i] = (char)(t[i] >= 'a' && t[i] <= 'z' ? t[i] - 32 : t[i]);
            if (!cJSON_AddStringToObject(out, "type", up) ||
                (nullable && !cJSON_AddTrueToObject(out, "nullable")))
                fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
        } else if (strcmp(key, "const") == 0 && cJSON_IsString(k)) {
            cJSON *e = cJSON_CreateArray();
            if (!e || !cJSON_AddItemToObject(out, "enum", e) ||
                !cJSON_AddItemToArray(e, cJSON_CreateString(k->valuestring)) ||
                (!cJSON_GetObjectItemCaseSensitive(in, "type") &&
                 !cJSON_AddStringToObject(out, "type", "STRING")))
                fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
        } else if (strcmp(key, "items") == 0) {
            snprintf(sub, sizeof sub, "%.120s.items", where);
            cJSON *c = to_openapi(b, k, sub, depth + 1);
            if (c && !cJSON_AddItemToObject(out, "items", c))
                fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
        } else if (strcmp(key, "properties") == 0 && cJSON_IsObject(k)) {
            cJSON *props = cJSON_AddObjectToObject(out, "properties");
            if (!props)
                fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
            for (const cJSON *pr = k->child; pr && !b->status; pr = pr->next) {
                snprintf(sub, sizeof sub, "%.80s.properties.%.60s", where, pr->string);
                cJSON *c = to_openapi(b, pr, sub, depth + 1);
                if (c && !cJSON_AddItemToObject(props, pr->string, c))
                    fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
            }
        } else if (strcmp(key, "anyOf") == 0 && cJSON_IsArray(k)) {
            cJSON *any = cJSON_AddArrayToObject(out, "anyOf");
            int i = 0;
            for (const cJSON *it = k->child; it && !b->status && any; it = it->next, i++) {
                snprintf(sub, sizeof sub, "%.120s.anyOf[%d]", where, i);
                cJSON *c = to_openapi(b, it, sub, depth + 1);
                if (c)
                    cJSON_AddItemToArray(any, c);
            }
            if (!any)
                fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
        } else {
            fail(b, LX_CANNOT_SERVE, "gemini adapter: %s.%.40s has no equivalent in Gemini's "
                                     "OpenAPI schema (\"schema\": \"json_schema\" sends it as is)",
                 where, key);
        }
    }
    if (b->status) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

/* The schema under its JSON Schema name, or converted under its OpenAPI name. */
static int add_schema(build_ctx *b, cJSON *to, const cJSON *schema, const char *json_name,
                      const char *openapi_name, const char *where)
{
    cJSON *v = b->openapi ? to_openapi(b, schema, where, 0) : cJSON_Duplicate(schema, 1);
    if (b->status)
        return b->status;
    if (!v || !cJSON_AddItemToObject(to, b->openapi ? openapi_name : json_name, v)) {
        cJSON_Delete(v);
        return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    return 0;
}

static int build_tools(build_ctx *b, cJSON *body, const cJSON *tools, const cJSON *choice)
{
    if (cJSON_IsArray(tools) && tools->child) {
        cJSON *arr = cJSON_AddArrayToObject(body, "tools");
        cJSON *t0 = cJSON_CreateObject();
        cJSON *decls = t0 ? cJSON_AddArrayToObject(t0, "functionDeclarations") : NULL;
        if (!arr || !decls || !cJSON_AddItemToArray(arr, t0)) {
            if (!decls)
                cJSON_Delete(t0);
            return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
        }
        for (const cJSON *t = tools->child; t; t = t->next) {
            const char *type = str_member(t, "type");
            if (type && strcmp(type, "function"))
                return fail(b, LX_CANNOT_SERVE,
                            "gemini adapter: tool type \"%.40s\" is not supported", type);
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
            const char *name = str_member(fn, "name");
            if (!name)
                return fail(b, LLMUX_ERR_BAD_REQUEST, "a tool has no function.name");
            cJSON *d = cJSON_CreateObject();
            if (!d || !cJSON_AddItemToArray(decls, d) || !cJSON_AddStringToObject(d, "name", name))
                return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
            const char *desc = str_member(fn, "description");
            if (desc && !cJSON_AddStringToObject(d, "description", desc))
                return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
            /* full JSON Schema as the caller wrote it, or the OpenAPI subset */
            const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
            char where[96];
            snprintf(where, sizeof where, "tools[%.64s].parameters", name);
            if (cJSON_IsObject(params) &&
                add_schema(b, d, params, "parametersJsonSchema", "parameters", where))
                return b->status;
        }
    }
    if (!choice)
        return 0;
    const char *mode = NULL;
    const char *only = NULL;
    if (cJSON_IsString(choice)) {
        if (strcmp(choice->valuestring, "auto") == 0)
            mode = "AUTO";
        else if (strcmp(choice->valuestring, "none") == 0)
            mode = "NONE";
        else if (strcmp(choice->valuestring, "required") == 0)
            mode = "ANY";
    } else if (cJSON_IsObject(choice)) {
        only = str_member(cJSON_GetObjectItemCaseSensitive(choice, "function"), "name");
        mode = only ? "ANY" : NULL;
    }
    if (!mode)
        return fail(b, LLMUX_ERR_BAD_REQUEST,
                    "tool_choice must be \"auto\", \"none\", \"required\" or a named function");
    cJSON *tc = cJSON_AddObjectToObject(body, "toolConfig");
    cJSON *fcc = tc ? cJSON_AddObjectToObject(tc, "functionCallingConfig") : NULL;
    if (!fcc || !cJSON_AddStringToObject(fcc, "mode", mode))
        return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
    if (only) {
        const char *names[1] = {only};
        cJSON *arr = cJSON_CreateStringArray(names, 1);
        if (!arr || !cJSON_AddItemToObject(fcc, "allowedFunctionNames", arr)) {
            cJSON_Delete(arr);
            return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
        }
    }
    return 0;
}

/* A number member copied under a new name (when present). */
static int copy_number(build_ctx *b, cJSON *gc, const cJSON *req, const char *from, const char *to)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, from);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v))
        return fail(b, LLMUX_ERR_BAD_REQUEST, "%s must be a number", from);
    if (!cJSON_AddNumberToObject(gc, to, v->valuedouble))
        return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
    return 0;
}

static int build_generation_config(build_ctx *b, cJSON *body, const cJSON *req)
{
    cJSON *gc = cJSON_CreateObject();
    if (!gc || !cJSON_AddItemToObject(body, "generationConfig", gc)) {
        cJSON_Delete(gc);
        return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    const char *max = cJSON_GetObjectItemCaseSensitive(req, "max_completion_tokens")
                          ? "max_completion_tokens" : "max_tokens";
    if (copy_number(b, gc, req, max, "maxOutputTokens") ||
        copy_number(b, gc, req, "temperature", "temperature") ||
        copy_number(b, gc, req, "top_p", "topP") ||
        copy_number(b, gc, req, "seed", "seed") ||
        copy_number(b, gc, req, "n", "candidateCount") ||
        copy_number(b, gc, req, "presence_penalty", "presencePenalty") ||
        copy_number(b, gc, req, "frequency_penalty", "frequencyPenalty"))
        return b->status;
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(req, "stop");
    if (cJSON_IsString(stop) || (cJSON_IsArray(stop) && stop->child)) {
        cJSON *arr = cJSON_IsString(stop) ? cJSON_CreateArray() : cJSON_Duplicate(stop, 1);
        if (!arr || !cJSON_AddItemToObject(gc, "stopSequences", arr)) {
            cJSON_Delete(arr);
            return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
        }
        if (cJSON_IsString(stop) &&
            !cJSON_AddItemToArray(arr, cJSON_CreateString(stop->valuestring)))
            return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(req, "response_format");
    const char *rft = str_member(rf, "type");
    if (rft && (strcmp(rft, "json_object") == 0 || strcmp(rft, "json_schema") == 0)) {
        if (!cJSON_AddStringToObject(gc, "responseMimeType", "application/json"))
            return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(rf, "json_schema");
        const cJSON *schema = cJSON_GetObjectItemCaseSensitive(js, "schema");
        if (strcmp(rft, "json_schema") == 0 && cJSON_IsObject(schema) &&
            add_schema(b, gc, schema, "responseJsonSchema", "responseSchema",
                       "response_format.json_schema.schema"))
            return b->status;
    } else if (rft && strcmp(rft, "text")) {
        return fail(b, LX_CANNOT_SERVE,
                    "gemini adapter: response_format \"%.40s\" is not supported", rft);
    }
    /* reasoning_effort as Google's OpenAI-compatible endpoint maps it */
    const char *effort = str_member(req, "reasoning_effort");
    if (effort) {
        long budget = strcmp(effort, "none") == 0                                        ? 0
                      : strcmp(effort, "minimal") == 0 || strcmp(effort, "low") == 0 ? 1024
                      : strcmp(effort, "medium") == 0                                  ? 8192
                      : strcmp(effort, "high") == 0                                    ? 24576
                                                                                       : -2;
        if (budget == -2)
            return fail(b, LLMUX_ERR_BAD_REQUEST,
                        "reasoning_effort \"%.20s\" is not none, minimal, low, medium or high",
                        effort);
        cJSON *tc = cJSON_AddObjectToObject(gc, "thinkingConfig");
        if (!tc || !cJSON_AddNumberToObject(tc, "thinkingBudget", (double)budget))
            return fail(b, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    if (!gc->child)
        cJSON_Delete(cJSON_DetachItemViaPointer(body, gc));
    return 0;
}

/* Members Gemini has no equivalent for and that change the answer. */
static int refuse_unsupported(build_ctx *b, const cJSON *req)
{
    static const char *const keys[] = {"logprobs", "top_logprobs", "audio", "prediction",
                                       "logit_bias", NULL};
    for (const char *const *k = keys; *k; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, *k);
        if (v && !cJSON_IsNull(v) && !cJSON_IsFalse(v))
            return fail(b, LX_CANNOT_SERVE, "gemini adapter: \"%s\" is not supported", *k);
    }
    const cJSON *mod = cJSON_GetObjectItemCaseSensitive(req, "modalities");
    for (const cJSON *it = cJSON_IsArray(mod) ? mod->child : NULL; it; it = it->next)
        if (!cJSON_IsString(it) || strcmp(it->valuestring, "text"))
            return fail(b, LX_CANNOT_SERVE, "gemini adapter: only text output is supported");
    return 0;
}

/* The model id as one URL path segment. */
static int put_model(lx_buf *u, const char *model)
{
    if (strncmp(model, "models/", 7) == 0)
        model += 7;
    int bad = 0;
    for (const unsigned char *c = (const unsigned char *)model; *c && !bad; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '.' || *c == '_')
            bad = llmux__buf_append(u, c, 1);
        else
            bad = llmux__buf_printf(u, "%%%02X", *c);
    }
    return bad;
}

static int gemini_build_request(const lx_provider_cfg *p, const char *model, const lx_request *req,
                                int stream, lx_http_request *out, lx_err *err)
{
    const gemini_state *st = p->adapter_state;
    const cJSON *tree = llmux__request_tree(req, err);
    if (!tree)
        return LLMUX_ERR_NO_MEMORY;
    build_ctx b = {cJSON_GetObjectItemCaseSensitive(tree, "messages"), st->openapi, err, 0};
    cJSON *body = cJSON_CreateObject();
    if (!body)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    if (!refuse_unsupported(&b, tree) && cJSON_IsArray(b.messages))
        build_contents(&b, body, b.messages);
    if (!b.status)
        build_tools(&b, body, cJSON_GetObjectItemCaseSensitive(tree, "tools"),
                    cJSON_GetObjectItemCaseSensitive(tree, "tool_choice"));
    if (!b.status)
        build_generation_config(&b, body, tree);
    if (b.status) {
        cJSON_Delete(body);
        return b.status;
    }
    char *text = cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (!text)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    out->body = text;
    out->body_len = strlen(text);
    lx_buf u = LX_BUF_INIT;
    int bad = llmux__buf_puts(&u, st->models_url) || put_model(&u, model) ||
              llmux__buf_puts(&u, stream ? ":streamGenerateContent?alt=sse" : ":generateContent");
    bad = bad || llmux__http_request_set_url(out, u.data);
    llmux__buf_free(&u);
    bad = bad || llmux__http_header_add_static(out, "Content-Type: application/json");
    if (stream)
        bad = bad || llmux__http_header_add_static(out, "Accept: text/event-stream");
    if (st->key_line)
        bad = bad || llmux__http_header_add_static(out, st->key_line);
    for (size_t i = 0; i < p->n_extra_headers && !bad; i++)
        bad = llmux__http_header_add_static(out, p->extra_headers[i]);
    return bad ? llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory") : LLMUX_OK;
}

/* ----------------------------------------------------------------- response */

static const char *finish_reason(const char *r, int has_calls)
{
    if (!r)
        return NULL;
    if (strcmp(r, "STOP") == 0)
        return has_calls ? "tool_calls" : "stop";
    if (strcmp(r, "MAX_TOKENS") == 0)
        return "length";
    static const char *const filtered[] = {"SAFETY", "RECITATION", "BLOCKLIST",
                                           "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
                                           "LANGUAGE", "IMAGE_PROHIBITED_CONTENT",
                                           "IMAGE_RECITATION", NULL};
    for (const char *const *f = filtered; *f; f++)
        if (strcmp(r, *f) == 0)
            return "content_filter";
    return has_calls ? "tool_calls" : "stop";
}

/* finishReason values that mean the model failed: an error, not an answer. */
static int failed_finish(const char *r)
{
    return r && (strcmp(r, "MALFORMED_FUNCTION_CALL") == 0 ||
                 strcmp(r, "UNEXPECTED_TOOL_CALL") == 0 || strcmp(r, "TOO_MANY_TOOL_CALLS") == 0);
}

static long token_member(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!v)
        return 0; /* proto3 JSON leaves zero counts out */
    return cJSON_IsNumber(v) ? llmux__token_count(v->valuedouble) : -1;
}

static long add_counts(long a, long b)
{
    return a < 0 || b < 0 ? -1 : a + b;
}

/* usageMetadata to lx_usage; 0 when there is none. */
static int read_usage(const cJSON *um, lx_usage *u)
{
    if (!cJSON_IsObject(um))
        return 0;
    long thoughts = token_member(um, "thoughtsTokenCount");
    u->prompt_tokens = add_counts(token_member(um, "promptTokenCount"),
                                  token_member(um, "toolUsePromptTokenCount"));
    u->completion_tokens = add_counts(token_member(um, "candidatesTokenCount"), thoughts);
    u->cached_tokens = token_member(um, "cachedContentTokenCount");
    u->cache_write_tokens = 0;     /* the API bills no cache writes on a call */
    u->cache_write_1h_tokens = -1; /* not split */
    u->reasoning_tokens = thoughts;
    const cJSON *tt = cJSON_GetObjectItemCaseSensitive(um, "totalTokenCount");
    u->total_tokens = cJSON_IsNumber(tt) ? llmux__token_count(tt->valuedouble) : -1;
    return 1;
}

/* A whole number, without printf (it runs for every count of every answer). */
static int put_int(lx_buf *b, long long v)
{
    char d[24];
    size_t i = sizeof d;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do
        d[--i] = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        d[--i] = '-';
    return llmux__buf_append(b, d + i, sizeof d - i);
}

static int put_count(lx_buf *b, const char *key, int64_t v)
{
    return llmux__buf_puts(b, "\"") || llmux__buf_puts(b, key) || llmux__buf_puts(b, "\":") ||
           (v < 0 ? llmux__buf_puts(b, "null") : put_int(b, v));
}

/* ,"usage":{...} in OpenAI's shape. */
static int put_usage(lx_buf *b, const lx_usage *u)
{
    int64_t total = u->prompt_tokens < 0 || u->completion_tokens < 0
                        ? -1 : u->prompt_tokens + u->completion_tokens;
    return llmux__buf_puts(b, ",\"usage\":{") || put_count(b, "prompt_tokens", u->prompt_tokens) ||
           llmux__buf_puts(b, ",") || put_count(b, "completion_tokens", u->completion_tokens) ||
           llmux__buf_puts(b, ",") || put_count(b, "total_tokens", total) ||
           llmux__buf_puts(b, ",\"prompt_tokens_details\":{") ||
           put_count(b, "cached_tokens", u->cached_tokens) || llmux__buf_puts(b, ",") ||
           put_count(b, "cache_write_tokens", u->cache_write_tokens) ||
           llmux__buf_puts(b, "},\"completion_tokens_details\":{") ||
           put_count(b, "reasoning_tokens", u->reasoning_tokens) || llmux__buf_puts(b, "}}");
}

/* The tool-call id of the k-th functionCall of a candidate. */
static char *tool_call_id(const cJSON *part, const cJSON *call, int k)
{
    const char *given = str_member(call, "id");
    const char *sig = str_member(part, "thoughtSignature");
    char base[40];
    if (given && given[0]) {
        snprintf(base, sizeof base, "%.32s", given);
    } else {
        const char *name = str_member(call, "name");
        char *args = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(call, "args"));
        uint64_t h = llmux__hash(name ? name : "", name ? strlen(name) : 0);
        h ^= llmux__hash(args ? args : "{}", args ? strlen(args) : 2) * 31u + (uint64_t)k;
        free(args);
        snprintf(base, sizeof base, "call_%016llx", (unsigned long long)h);
    }
    size_t n = strlen(base) + (sig ? strlen(sig) + sizeof TS_SEP : 1);
    char *id = malloc(n);
    if (id)
        snprintf(id, n, "%s%s%s", base, sig ? TS_SEP : "", sig ? sig : "");
    return id;
}

/* An OpenAI tool call object for a functionCall part (stream: with index). */
static cJSON *tool_call(const cJSON *part, const cJSON *call, int k, int with_index)
{
    cJSON *tc = cJSON_CreateObject();
    char *id = tool_call_id(part, call, k);
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(call, "args");
    char *a = args ? cJSON_PrintUnformatted(args) : NULL;
    const char *name = str_member(call, "name");
    cJSON *fn = NULL;
    if (tc && id && (!args || a) && (!with_index || cJSON_AddNumberToObject(tc, "index", k)) &&
        cJSON_AddStringToObject(tc, "id", id) && cJSON_AddStringToObject(tc, "type", "function") &&
        (fn = cJSON_AddObjectToObject(tc, "function")) &&
        cJSON_AddStringToObject(fn, "name", name ? name : "") &&
        cJSON_AddStringToObject(fn, "arguments", a ? a : "{}")) {
        free(id);
        free(a);
        return tc;
    }
    free(id);
    free(a);
    cJSON_Delete(tc);
    return NULL;
}

/* The error a body's "error" object describes (a 200 stream event, or a
 * non-2xx answer). */
static int word_error(const lx_provider_cfg *p, const char *secret, long http, const cJSON *e,
                      const char *raw, size_t raw_len, lx_err *err);

/* Candidate `c` of a response into an OpenAI choice (unstreamed) or delta. */
typedef struct cand_out {
    lx_buf text;
    cJSON *calls; /* array */
    const char *finish;
} cand_out;

static int read_candidate(const cJSON *c, cand_out *o, int k0, int with_index)
{
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(c, "content");
    const cJSON *parts = cJSON_GetObjectItemCaseSensitive(content, "parts");
    int k = k0;
    for (const cJSON *part = cJSON_IsArray(parts) ? parts->child : NULL; part; part = part->next) {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(part, "thought")))
            continue;
        const char *text = str_member(part, "text");
        const cJSON *call = cJSON_GetObjectItemCaseSensitive(part, "functionCall");
        if (text) {
            int rc = llmux__buf_puts(&o->text, text);
            if (rc)
                return rc;
        } else if (cJSON_IsObject(call)) {
            cJSON *tc = tool_call(part, call, k++, with_index);
            if (!tc)
                return -1;
            if (!o->calls && !(o->calls = cJSON_CreateArray())) {
                cJSON_Delete(tc);
                return -1;
            }
            cJSON_AddItemToArray(o->calls, tc);
        }
    }
    o->finish = str_member(c, "finishReason");
    return 0;
}

static int blocked_prompt(const lx_provider_cfg *p, const cJSON *root, lx_err *err)
{
    const cJSON *cands = cJSON_GetObjectItemCaseSensitive(root, "candidates");
    const char *block =
        str_member(cJSON_GetObjectItemCaseSensitive(root, "promptFeedback"), "blockReason");
    if (!block || cJSON_GetArraySize(cands) > 0)
        return 0;
    char code[64];
    llmux__provider_text(code, sizeof code, block, strlen(block), p->api_key);
    snprintf(err->provider_code, sizeof err->provider_code, "%s", code);
    err->http_status = 200;
    return llmux__err(err, LLMUX_ERR_CONTENT_FILTER, "gemini blocked the prompt (blockReason %s)",
                      code);
}

static int failed_candidate(const lx_provider_cfg *p, const char *finish, lx_err *err)
{
    snprintf(err->provider_code, sizeof err->provider_code, "%s", finish);
    err->http_status = 200;
    return llmux__err(err, LLMUX_ERR_PROVIDER, "gemini ended the answer with finishReason %s",
                      finish);
}

/* Checks a provider text strictly and parses it into an object. */
static int parse_object(const char *data, size_t len, const char *what, cJSON **out, lx_err *err)
{
    size_t off = 0;
    int syntax = len ? llmux__json_check(data, len, &off) : LLMUX_JSON_SYNTAX;
    if (syntax != LLMUX_JSON_OK)
        return llmux__err(err, LLMUX_ERR_BAD_RESPONSE,
                          "%s is not valid %s (%zu bytes, error at byte %zu)",
                          what, syntax == LLMUX_JSON_UTF8 ? "UTF-8" : "JSON", len, off);
    cJSON *root = cJSON_ParseWithLength(data, len);
    if (!root)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return llmux__err(err, LLMUX_ERR_BAD_RESPONSE, "%s is not a JSON object", what);
    }
    *out = root;
    return LLMUX_OK;
}

/* {"id":...,"object":...,"created":...,"model":... (the object left open). */
static int put_head(lx_buf *b, const cJSON *root, const char *object, long long created)
{
    const char *rid = str_member(root, "responseId");
    const char *model = str_member(root, "modelVersion");
    char id[160];
    snprintf(id, sizeof id, "chatcmpl-%.140s", rid ? rid : "gemini");
    return llmux__buf_puts(b, "{\"id\":") || llmux__buf_json_string(b, id) ||
           llmux__buf_puts(b, ",\"object\":\"") || llmux__buf_puts(b, object) ||
           llmux__buf_puts(b, "\",\"created\":") || put_int(b, created) ||
           llmux__buf_puts(b, ",\"model\":") ||
           llmux__buf_json_string(b, model ? model : "");
}

/* One choice of a chat.completion. r: read_candidate's status. */
static int put_choice(lx_buf *out, const cJSON *c, int i, cand_out *co)
{
    const cJSON *idx = cJSON_GetObjectItemCaseSensitive(c, "index");
    const char *fr = finish_reason(co->finish, co->calls != NULL);
    int bad = llmux__buf_puts(out, i ? ",{\"index\":" : "{\"index\":") ||
              put_int(out, cJSON_IsNumber(idx) ? idx->valueint : i) ||
              llmux__buf_puts(out, ",\"message\":{\"role\":\"assistant\",\"content\":");
    if (co->calls && !co->text.len)
        bad = bad || llmux__buf_puts(out, "null");
    else
        bad = bad || llmux__buf_json_string(out, co->text.data ? co->text.data : "");
    if (co->calls) {
        char *calls = cJSON_PrintUnformatted(co->calls);
        bad = bad || !calls || llmux__buf_puts(out, ",\"tool_calls\":") ||
              llmux__buf_puts(out, calls);
        free(calls);
    }
    bad = bad || llmux__buf_puts(out, "},\"logprobs\":null,\"finish_reason\":");
    bad = bad || (fr ? llmux__buf_json_string(out, fr) : llmux__buf_puts(out, "null"));
    return bad || llmux__buf_puts(out, "}");
}

static int gemini_parse_response(const lx_provider_cfg *p, lx_buf *body, char **out_json,
                                 lx_usage *usage, lx_err *err)
{
    cJSON *root = NULL;
    int rc = parse_object(body->data, body->len, "the response body", &root, err);
    if (rc)
        return rc;
    lx_buf out = LX_BUF_INIT;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    if (e) {
        rc = word_error(p, p->api_key, 200, e, body->data, body->len, err);
        goto done;
    }
    if ((rc = blocked_prompt(p, root, err)))
        goto done;
    const cJSON *cands = cJSON_GetObjectItemCaseSensitive(root, "candidates");
    if (!cJSON_IsArray(cands) || !cands->child) {
        rc = llmux__err(err, LLMUX_ERR_BAD_RESPONSE, "the response has no candidates");
        goto done;
    }
    int bad = llmux__buf_reserve(&out, body->len + 256) ||
              put_head(&out, root, "chat.completion", (long long)time(NULL)) ||
              llmux__buf_puts(&out, ",\"choices\":[");
    int i = 0;
    for (const cJSON *c = cands->child; c && !bad; c = c->next, i++) {
        cand_out co = {LX_BUF_INIT, NULL, NULL};
        co.text.limit = p->max_response_bytes;
        int r = read_candidate(c, &co, 0, 0);
        if (!r && failed_finish(co.finish))
            rc = failed_candidate(p, co.finish, err);
        else if (r == -2)
            rc = llmux__err(err, LLMUX_ERR_BAD_RESPONSE, "the answer's text exceeds %zu bytes",
                            p->max_response_bytes);
        else
            bad = r || put_choice(&out, c, i, &co);
        llmux__buf_free(&co.text);
        cJSON_Delete(co.calls);
        if (rc)
            goto done;
    }
    bad = bad || llmux__buf_puts(&out, "]");
    if (!bad && read_usage(cJSON_GetObjectItemCaseSensitive(root, "usageMetadata"), usage))
        bad = put_usage(&out, usage);
    if (bad || llmux__buf_puts(&out, "}") || !(*out_json = llmux__buf_steal(&out)))
        rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
done:
    llmux__buf_free(&out);
    cJSON_Delete(root);
    return rc;
}

/* ------------------------------------------------------------------- errors */

/* "37s" / "1.5s" -> milliseconds, or -1. */
static long parse_delay(const char *s)
{
    if (!s)
        return -1;
    char *end;
    double d = strtod(s, &end);
    if (end == s || strcmp(end, "s") || !(d >= 0) || d > 86400)
        return -1;
    return (long)(d * 1000 + 0.5);
}

static int word_error(const lx_provider_cfg *p, const char *secret, long http, const cJSON *e,
                      const char *raw, size_t raw_len, lx_err *err)
{
    char msg[320] = "", code[64] = "", reason[64] = "";
    const char *m = cJSON_IsObject(e) ? str_member(e, "message") : NULL;
    const char *status = cJSON_IsObject(e) ? str_member(e, "status") : NULL;
    const cJSON *num = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "code") : NULL;
    if (m)
        llmux__provider_text(msg, sizeof msg, m, strlen(m), secret);
    else if (raw && raw_len)
        llmux__provider_text(msg, 201, raw, raw_len, secret);
    if (status)
        llmux__provider_text(code, sizeof code, status, strlen(status), secret);
    long retry_ms = -1;
    const cJSON *details =
        cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "details") : NULL;
    for (const cJSON *d = cJSON_IsArray(details) ? details->child : NULL; d; d = d->next) {
        const char *type = str_member(d, "@type");
        const char *r = str_member(d, "reason");
        if (r && !reason[0])
            llmux__provider_text(reason, sizeof reason, r, strlen(r), secret);
        if (type && strstr(type, "google.rpc.RetryInfo"))
            retry_ms = parse_delay(str_member(d, "retryDelay"));
    }
    if (http == 200 && cJSON_IsNumber(num) && num->valuedouble >= 100 && num->valuedouble < 600)
        http = (long)num->valuedouble; /* an error inside a 200 stream names its own status */
    int st = llmux__status_for_http(http);
    if (http == 200)
        st = LLMUX_ERR_PROVIDER;
    if (strcmp(reason, "API_KEY_INVALID") == 0 || strcmp(code, "UNAUTHENTICATED") == 0)
        st = LLMUX_ERR_AUTH;
    else if (strcmp(code, "RESOURCE_EXHAUSTED") == 0)
        st = LLMUX_ERR_RATE_LIMIT;
    else if (strcmp(code, "PERMISSION_DENIED") == 0)
        st = LLMUX_ERR_PERMISSION;
    else if (strcmp(code, "NOT_FOUND") == 0)
        st = LLMUX_ERR_NOT_FOUND;
    else if ((http == 400 || strcmp(code, "INVALID_ARGUMENT") == 0) &&
             llmux__is_context_overflow(msg))
        st = LLMUX_ERR_CONTEXT_WINDOW;
    else if (strcmp(code, "INVALID_ARGUMENT") == 0 || strcmp(code, "FAILED_PRECONDITION") == 0)
        st = LLMUX_ERR_BAD_REQUEST;
    else if (strcmp(code, "UNAVAILABLE") == 0 || strcmp(code, "INTERNAL") == 0 ||
             strcmp(code, "DEADLINE_EXCEEDED") == 0)
        st = LLMUX_ERR_PROVIDER;
    snprintf(err->provider_code, sizeof err->provider_code, "%s", reason[0] ? reason : code);
    err->http_status = (int)http;
    char delay[48] = "";
    if (retry_ms >= 0) {
        snprintf(delay, sizeof delay, " (retry in %ld ms)", retry_ms);
        err->retry_after_ms = retry_ms; /* the trace's retry_after_ms, and retries honour it */
        err->has_retry_after = 1;
    }
    return llmux__err(err, st, "HTTP %ld%s%s%s: %s%s", http, err->provider_code[0] ? " (" : "",
                      err->provider_code, err->provider_code[0] ? ")" : "",
                      msg[0] ? msg : "(empty body)", delay);
}

static int gemini_classify_error(const lx_provider_cfg *p, const lx_http_response *resp,
                                 lx_err *err)
{
    const char *body = resp->body.data;
    size_t len = resp->body.len;
    size_t off;
    cJSON *root = NULL;
    /* streamGenerateContent without alt=sse wraps the error in [ ... ] */
    if (len && llmux__json_check(body, len, &off) == LLMUX_JSON_OK)
        root = cJSON_ParseWithLength(body, len);
    const cJSON *obj = cJSON_IsArray(root) ? root->child : root;
    const cJSON *e = cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, "error") : NULL;
    int rc = word_error(p, p->api_key, resp->status, e, body, len, err);
    cJSON_Delete(root);
    return rc;
}

/* ---------------------------------------------------------------- streaming */

#define GEMINI_MAX_CANDIDATES 8
/* A whole stream may be this many times transport.max_response_bytes: each
 * event repeats the answer's id, model and usage around a few words. */
#define STREAM_BYTES_PER_LIMIT 4

typedef struct gemini_stream {
    lx_sse sse;
    const lx_provider_cfg *p;
    long long created;
    int started;    /* a byte other than white space arrived */
    int json_body;  /* ... and it opened a JSON document, not an event stream */
    lx_buf json;    /* that document, capped */
    int role_sent[GEMINI_MAX_CANDIDATES];
    int calls[GEMINI_MAX_CANDIDATES];    /* tool calls so far, per candidate */
    int finished[GEMINI_MAX_CANDIDATES]; /* finishReason seen */
    int seen;       /* candidates seen (highest index + 1) */
    size_t text_bytes;
    size_t fed; /* stream bytes so far: capped, since every event repeats its metadata */
    lx_chunk_sink_cb sink;
    void *ctx;
    lx_err *err;
    int status;
} gemini_stream;

static void *gemini_stream_new(const lx_provider_cfg *p)
{
    gemini_stream *s = calloc(1, sizeof *s);
    if (s) {
        llmux__sse_init(&s->sse, p->max_response_bytes);
        s->p = p;
        s->created = (long long)time(NULL);
        s->json.limit = s->sse.max_event;
    }
    return s;
}

/* Hands the chunk text in b to the sink, with its parsed form. */
static int emit(gemini_stream *s, const lx_buf *b)
{
    cJSON *chunk = cJSON_ParseWithLength(b->data, b->len);
    if (!chunk) { /* our own valid text: out of memory */
        s->status = llmux__err(s->err, LLMUX_ERR_NO_MEMORY, "out of memory");
        return 1;
    }
    int stop = s->sink(s->ctx, b->data, b->len, chunk);
    cJSON_Delete(chunk);
    if (stop) {
        s->status = LLMUX_ERR_CANCELLED;
        return 1;
    }
    return 0;
}

/* One candidate's delta into the chunk text; 1 with s->status set on failure. */
static int put_delta(gemini_stream *s, lx_buf *b, const cJSON *c, int i, int *n)
{
    lx_err *err = s->err;
    const cJSON *idxv = cJSON_GetObjectItemCaseSensitive(c, "index");
    int idx = cJSON_IsNumber(idxv) ? idxv->valueint : i;
    if (idx < 0 || idx >= GEMINI_MAX_CANDIDATES) {
        s->status = llmux__err(err, LLMUX_ERR_BAD_RESPONSE,
                               "stream: candidate index %d out of range", idx);
        return 1;
    }
    cand_out co = {LX_BUF_INIT, NULL, NULL};
    int r = read_candidate(c, &co, s->calls[idx], 1);
    s->text_bytes += co.text.len;
    if (r)
        s->status = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    else if (failed_finish(co.finish))
        s->status = failed_candidate(s->p, co.finish, err);
    else if (s->text_bytes > s->p->max_response_bytes)
        s->status = llmux__err(err, LLMUX_ERR_BAD_RESPONSE, "the streamed text exceeds %zu bytes",
                               s->p->max_response_bytes);
    if (!s->status) {
        s->calls[idx] += cJSON_GetArraySize(co.calls);
        if (idx + 1 > s->seen)
            s->seen = idx + 1;
        const char *fr = finish_reason(co.finish, s->calls[idx] > 0);
        s->finished[idx] |= fr != NULL;
        int bad = llmux__buf_printf(b, "%s{\"index\":%d,\"delta\":{", (*n)++ ? "," : "", idx);
        const char *sep = "";
        if (!s->role_sent[idx]) {
            bad = bad || llmux__buf_puts(b, "\"role\":\"assistant\"");
            s->role_sent[idx] = 1;
            sep = ",";
        }
        if (co.text.len) {
            bad = bad || llmux__buf_printf(b, "%s\"content\":", sep) ||
                  llmux__buf_json_string(b, co.text.data);
            sep = ",";
        }
        if (co.calls) {
            char *calls = cJSON_PrintUnformatted(co.calls);
            bad = bad || !calls || llmux__buf_printf(b, "%s\"tool_calls\":", sep) ||
                  llmux__buf_puts(b, calls);
            free(calls);
        }
        bad = bad || llmux__buf_puts(b, "},\"logprobs\":null,\"finish_reason\":") ||
              (fr ? llmux__buf_json_string(b, fr) : llmux__buf_puts(b, "null")) ||
              llmux__buf_puts(b, "}");
        if (bad)
            s->status = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    llmux__buf_free(&co.text);
    cJSON_Delete(co.calls);
    return s->status != 0;
}

/* One event's chunk(s): candidates as deltas, then usage once the answer has
 * finished (the last event carries both; a later usage-only event too). */
static int translate_event(gemini_stream *s, const cJSON *root)
{
    if ((s->status = blocked_prompt(s->p, root, s->err)))
        return 1;
    lx_buf b = LX_BUF_INIT;
    int bad = put_head(&b, root, "chat.completion.chunk", s->created) ||
              llmux__buf_puts(&b, ",\"choices\":[");
    size_t head = b.len;
    const cJSON *cands = cJSON_GetObjectItemCaseSensitive(root, "candidates");
    int i = 0, n = 0;
    for (const cJSON *c = cJSON_IsArray(cands) ? cands->child : NULL; c && !bad; c = c->next, i++)
        if (put_delta(s, &b, c, i, &n)) {
            llmux__buf_free(&b);
            return 1;
        }
    if (!bad && n && (llmux__buf_puts(&b, "]}") || emit(s, &b))) {
        llmux__buf_free(&b);
        if (!s->status)
            s->status = llmux__err(s->err, LLMUX_ERR_NO_MEMORY, "out of memory");
        return 1;
    }
    int all_done = s->seen > 0;
    for (int k = 0; k < s->seen; k++)
        all_done &= s->finished[k];
    lx_usage u = LX_USAGE_UNKNOWN;
    const cJSON *um = cJSON_GetObjectItemCaseSensitive(root, "usageMetadata");
    if (!bad && all_done && read_usage(um, &u)) {
        b.len = head; /* the same head, no choices */
        bad = llmux__buf_puts(&b, "]") || put_usage(&b, &u) || llmux__buf_puts(&b, "}") ||
              emit(s, &b);
    }
    llmux__buf_free(&b);
    if (bad && !s->status)
        s->status = llmux__err(s->err, LLMUX_ERR_NO_MEMORY, "out of memory");
    return bad;
}

static int on_event(void *ctx, const char *event, const char *data, size_t len)
{
    gemini_stream *s = ctx;
    cJSON *root = NULL;
    char what[48];
    snprintf(what, sizeof what, "stream event %zu", s->sse.events);
    if ((s->status = parse_object(data, len, what, &root, s->err)))
        return 1;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    int rc = 1;
    if (e) {
        s->status = word_error(s->p, s->p->api_key, 200, e, data, len, s->err);
    } else if (!cJSON_GetObjectItemCaseSensitive(root, "candidates") &&
               !cJSON_GetObjectItemCaseSensitive(root, "usageMetadata") &&
               !cJSON_GetObjectItemCaseSensitive(root, "promptFeedback")) {
        s->status = llmux__err(s->err, LLMUX_ERR_BAD_RESPONSE,
                               "%s is not a GenerateContentResponse (no candidates, "
                               "usageMetadata or promptFeedback)", what);
    } else {
        rc = translate_event(s, root);
    }
    cJSON_Delete(root);
    return rc;
}

static int gemini_stream_feed(void *st, const char *data, size_t len, lx_chunk_sink_cb sink,
                              void *ctx, lx_err *err)
{
    gemini_stream *s = st;
    s->sink = sink;
    s->ctx = ctx;
    s->err = err;
    s->status = LLMUX_OK;
    if (!s->started) {
        size_t i = 0;
        while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
            i++;
        if (i < len) {
            s->started = 1;
            s->json_body = data[i] == '{' || data[i] == '[';
        }
    }
    int rc;
    s->fed += len;
    if (s->fed / STREAM_BYTES_PER_LIMIT > s->p->max_response_bytes)
        return llmux__err(err, LLMUX_ERR_BAD_RESPONSE, "the stream exceeds %zu bytes",
                          s->p->max_response_bytes * STREAM_BYTES_PER_LIMIT);
    if (s->json_body) {
        if ((rc = llmux__buf_append(&s->json, data, len)) == -2)
            return llmux__err(err, LLMUX_ERR_BAD_RESPONSE,
                              "the provider answered with JSON instead of an event stream, and "
                              "more than %zu bytes of it", s->json.limit);
        return rc ? llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory") : LLMUX_OK;
    }
    rc = llmux__sse_feed(&s->sse, data, len, on_event, s);
    int failed = llmux__sse_failure(&s->sse, rc, err);
    if (failed)
        return failed;
    if (rc)
        return s->status ? s->status : LLMUX_ERR_INTERNAL;
    return LLMUX_OK;
}

/* Gemini's stream has no end marker: it ends at EOF, after the event that
 * carries every candidate's finishReason. */
static int gemini_stream_finish(void *st, lx_err *err)
{
    gemini_stream *s = st;
    if (s->json_body) {
        const char *what = "the provider answered with JSON instead of an event stream";
        cJSON *root = NULL;
        size_t off;
        if (s->json.len && llmux__json_check(s->json.data, s->json.len, &off) == LLMUX_JSON_OK)
            root = cJSON_ParseWithLength(s->json.data, s->json.len);
        const cJSON *obj = cJSON_IsArray(root) ? root->child : root;
        const cJSON *e =
            cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, "error") : NULL;
        int rc = e ? word_error(s->p, s->p->api_key, 200, e, s->json.data, s->json.len, err)
                   : llmux__err(err, LLMUX_ERR_BAD_RESPONSE, "%s (%zu bytes, no \"error\" in it)",
                                what, s->json.len);
        cJSON_Delete(root);
        return rc;
    }
    int all_done = s->seen > 0;
    for (int k = 0; k < s->seen; k++)
        all_done &= s->finished[k];
    if (!all_done || llmux__sse_pending(&s->sse))
        return llmux__err(err, LLMUX_ERR_CONNECT,
                          "the stream ended before its finishReason (after %zu events)",
                          s->sse.events);
    return LLMUX_OK;
}

static void gemini_stream_free(void *st)
{
    gemini_stream *s = st;
    if (!s)
        return;
    llmux__sse_free(&s->sse);
    llmux__buf_free(&s->json);
    free(s);
}

const lx_provider_ops llmux__gemini_ops = {
    .type = "gemini",
    .default_base_url = "https://generativelanguage.googleapis.com/v1beta",
    .config_keys = GEMINI_KEYS,
    .configure = gemini_configure,
    .release = gemini_release,
    .build_request = gemini_build_request,
    .parse_response = gemini_parse_response,
    .classify_error = gemini_classify_error,
    .stream_new = gemini_stream_new,
    .stream_feed = gemini_stream_feed,
    .stream_finish = gemini_stream_finish,
    .stream_free = gemini_stream_free,
};
