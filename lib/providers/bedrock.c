/*
 * The AWS Bedrock adapter: the Converse API (POST {base}/model/{id}/converse)
 * and ConverseStream (/converse-stream, AWS event-stream framing). Requests
 * are signed with SigV4 (service "bedrock") from credentials read from the
 * environment at open, or carry a Bedrock API key as a bearer token when the
 * provider names one with api_key_env. docs/providers/bedrock.md has the
 * mapping rows, and what is refused or approximated.
 */
#include <cjson/cJSON.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "providers/bedrock.h"
#include "providers/classify.h"
#include "providers/provider.h"
#include "wire/eventstream.h"
#include "wire/json_check.h"
#include "wire/sigv4.h"

#define SIGNING_SERVICE "bedrock"

typedef struct bedrock_state {
    char *region;
    char *host;      /* "host[:port]" of base_url: the signed Host header */
    char *host_line; /* "Host: ..." */
    char *path;      /* base_url's path ("" or "/prefix") */
    char *access_key, *secret_key, *session_token; /* NULL when unset */
    char *access_key_env, *secret_key_env;
    char *bearer; /* "Authorization: Bearer KEY" with api_key_env */
} bedrock_state;

static const char *const BEDROCK_KEYS[] = {"region", "access_key_id_env", "secret_access_key_env",
                                           "session_token_env", NULL};

static void wipe_free(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

static void bedrock_release(lx_provider_cfg *p)
{
    bedrock_state *st = p->adapter_state;
    if (!st)
        return;
    free(st->region);
    free(st->host);
    free(st->host_line);
    free(st->path);
    wipe_free(st->access_key);
    wipe_free(st->secret_key);
    wipe_free(st->session_token);
    free(st->access_key_env);
    free(st->secret_key_env);
    wipe_free(st->bearer);
    free(st);
    p->adapter_state = NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* The value of environment variable name, copied; NULL when unset or empty. */
static int read_env(const char *name, char **out)
{
    const char *v = getenv(name);
    *out = NULL;
    if (!v || !*v)
        return 0;
    for (const char *c = v; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return -2;
    return (*out = strdup(v)) ? 0 : -1;
}

static int valid_region(const char *r)
{
    if (!*r || strlen(r) > 32)
        return 0;
    for (; *r; r++)
        if (!((*r >= 'a' && *r <= 'z') || (*r >= '0' && *r <= '9') || *r == '-'))
            return 0;
    return 1;
}

static int bedrock_configure(lx_provider_cfg *p, const cJSON *obj, const char *path,
                             const lx_cfg_reader *rd, lx_err *err)
{
    const char *region = NULL, *ak = NULL, *sk = NULL, *tok = NULL;
    int rc;
    if ((rc = rd->string(obj, "region", path, 1, &region, err)) ||
        (rc = rd->string(obj, "access_key_id_env", path, 0, &ak, err)) ||
        (rc = rd->string(obj, "secret_access_key_env", path, 0, &sk, err)) ||
        (rc = rd->string(obj, "session_token_env", path, 0, &tok, err)))
        return rc;
    if (!valid_region(region))
        return rd->error(err, path, "region",
                         "expected an AWS region name such as \"us-east-1\" (a-z, 0-9 and -)");
    if (p->api_key_env && (ak || sk || tok))
        return rd->error(err, path, "api_key_env",
                         "a Bedrock API key (api_key_env) and AWS credentials "
                         "(access_key_id_env, ...) exclude each other: name one");
    bedrock_state *st = calloc(1, sizeof *st);
    if (!st)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    p->adapter_state = st;
    int bad = !(st->region = strdup(region));
    if (!p->base_url) {
        size_t n = strlen(region) + sizeof "https://bedrock-runtime..amazonaws.com";
        if ((p->base_url = malloc(n)))
            snprintf(p->base_url, n, "https://bedrock-runtime.%s.amazonaws.com", region);
        bad |= !p->base_url;
    }
    if (!bad) {
        const char *h = strstr(p->base_url, "://") + 3, *slash = strchr(h, '/');
        size_t hl = slash ? (size_t)(slash - h) : strlen(h);
        bad |= !(st->host = strndup(h, hl)) || !(st->path = strdup(slash ? slash : ""));
        size_t ln = hl + sizeof "Host: ";
        if (!bad && (st->host_line = malloc(ln)))
            snprintf(st->host_line, ln, "Host: %s", st->host);
        bad |= !st->host_line;
    }
    if (!bad && p->api_key) {
        size_t an = strlen(p->api_key) + sizeof "Authorization: Bearer ";
        if ((st->bearer = malloc(an)))
            snprintf(st->bearer, an, "Authorization: Bearer %s", p->api_key);
        bad |= !st->bearer;
    }
    if (!bad && !p->api_key_env) {
        const char *names[3] = {ak ? ak : "AWS_ACCESS_KEY_ID", sk ? sk : "AWS_SECRET_ACCESS_KEY",
                                tok ? tok : "AWS_SESSION_TOKEN"};
        char **vals[3] = {&st->access_key, &st->secret_key, &st->session_token};
        for (int i = 0; i < 3 && !bad; i++) {
            int r = read_env(names[i], vals[i]);
            if (r == -2) {
                bedrock_release(p);
                return llmux__err(err, LLMUX_ERR_CONFIG,
                                  "%s: the environment variable %s holds control characters",
                                  path, names[i]);
            }
            bad |= r != 0;
        }
        bad |= !(st->access_key_env = dup_or_null(names[0])) ||
               !(st->secret_key_env = dup_or_null(names[1]));
    }
    if (bad) {
        bedrock_release(p);
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    return LLMUX_OK;
}

/* ----------------------------------------------------------- the request */

/* A translation step that could not go on: rc is LX_CANNOT_SERVE,
 * LLMUX_ERR_NO_MEMORY or LLMUX_ERR_BAD_REQUEST, with err set. */
typedef struct tx {
    lx_err *err;
    cJSON *messages; /* Converse messages */
    cJSON *system;
    int tool_blocks; /* the history holds toolUse / toolResult */
    cJSON *tool_names; /* names used in the history (for a toolConfig without tools) */
} tx;

static int oom(lx_err *err)
{
    return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
}

/* A new object appended to array (which owns it from then on), or NULL. */
static cJSON *append_object(cJSON *array)
{
    cJSON *o = cJSON_CreateObject();
    if (o && array && cJSON_AddItemToArray(array, o))
        return o;
    cJSON_Delete(o);
    return NULL;
}

/* The Converse message for role, appended or merged into the last one of the
 * same role (Converse wants the roles to alternate). Its content array. */
static cJSON *turn(tx *t, const char *role)
{
    cJSON *last = cJSON_GetArrayItem(t->messages, cJSON_GetArraySize(t->messages) - 1);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(last, "role");
    if (last && cJSON_IsString(r) && strcmp(r->valuestring, role) == 0)
        return cJSON_GetObjectItemCaseSensitive(last, "content");
    cJSON *m = append_object(t->messages);
    if (!m || !cJSON_AddStringToObject(m, "role", role))
        return NULL;
    return cJSON_AddArrayToObject(m, "content");
}

static int add_text(cJSON *blocks, const char *text)
{
    if (!*text)
        return 0; /* Converse refuses empty text blocks */
    cJSON *b = append_object(blocks);
    return b && cJSON_AddStringToObject(b, "text", text) ? 0 : -1;
}

/* image_url (a data URL) to an image block. */
static int add_image(tx *t, cJSON *blocks, const cJSON *part, int mi)
{
    const cJSON *iu = cJSON_GetObjectItemCaseSensitive(part, "image_url");
    const cJSON *url = cJSON_IsObject(iu) ? cJSON_GetObjectItemCaseSensitive(iu, "url") : iu;
    if (!cJSON_IsString(url))
        return llmux__err(t->err, LLMUX_ERR_BAD_REQUEST,
                          "messages[%d]: an image_url part without a url", mi);
    const char *u = url->valuestring;
    static const struct {
        const char *prefix, *format;
    } kinds[] = {{"data:image/png;base64,", "png"},   {"data:image/jpeg;base64,", "jpeg"},
                 {"data:image/jpg;base64,", "jpeg"},  {"data:image/gif;base64,", "gif"},
                 {"data:image/webp;base64,", "webp"}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        size_t n = strlen(kinds[i].prefix);
        if (strncmp(u, kinds[i].prefix, n) != 0)
            continue;
        cJSON *b = append_object(blocks), *img = NULL, *src = NULL;
        int ok = b && (img = cJSON_AddObjectToObject(b, "image")) &&
                 cJSON_AddStringToObject(img, "format", kinds[i].format) &&
                 (src = cJSON_AddObjectToObject(img, "source")) &&
                 cJSON_AddStringToObject(src, "bytes", u + n);
        return ok ? 0 : oom(t->err);
    }
    if (strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0)
        return llmux__err(t->err, LX_CANNOT_SERVE,
                          "Bedrock takes images as bytes only, and llmux does not download "
                          "image URLs: send a data: URL (messages[%d])",
                          mi);
    return llmux__err(t->err, LX_CANNOT_SERVE,
                      "messages[%d]: Bedrock takes png, jpeg, gif and webp images as base64 "
                      "data: URLs only",
                      mi);
}

/* OpenAI content (a string, or an array of parts) into Converse blocks. */
static int add_content(tx *t, cJSON *blocks, const cJSON *content, int mi, int images)
{
    if (!content || cJSON_IsNull(content))
        return 0;
    if (cJSON_IsString(content))
        return add_text(blocks, content->valuestring) ? oom(t->err) : 0;
    const cJSON *part;
    cJSON_ArrayForEach(part, content)
    {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(part, "type");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(part, "text");
        const char *ty = cJSON_IsString(type) ? type->valuestring : "";
        if (strcmp(ty, "text") == 0 && cJSON_IsString(text)) {
            if (add_text(blocks, text->valuestring))
                return oom(t->err);
        } else if (strcmp(ty, "image_url") == 0 && images) {
            int rc = add_image(t, blocks, part, mi);
            if (rc)
                return rc;
        } else {
            return llmux__err(t->err, LX_CANNOT_SERVE,
                              "messages[%d]: a content part of type \"%.40s\" has no Bedrock "
                              "Converse equivalent here",
                              mi, ty);
        }
    }
    return 0;
}

/* A tool call's arguments (a JSON string) as the object Converse wants. */
static cJSON *parse_arguments(const char *s)
{
    size_t off = 0, len = strlen(s);
    if (!len)
        return cJSON_CreateObject();
    if (llmux__json_check(s, len, &off) != LLMUX_JSON_OK)
        return NULL;
    cJSON *v = cJSON_ParseWithLength(s, len);
    if (v && !cJSON_IsObject(v)) {
        cJSON_Delete(v);
        return NULL;
    }
    return v;
}

static int remember_tool(tx *t, const char *name)
{
    const cJSON *n;
    cJSON_ArrayForEach(n, t->tool_names) if (strcmp(n->valuestring, name) == 0) return 0;
    cJSON *s = cJSON_CreateString(name);
    return s && cJSON_AddItemToArray(t->tool_names, s) ? 0 : (cJSON_Delete(s), -1);
}

static int add_tool_calls(tx *t, cJSON *blocks, const cJSON *calls, int mi)
{
    const cJSON *c;
    int ci = 0;
    cJSON_ArrayForEach(c, calls)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "id");
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *args = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        if (!cJSON_IsString(id) || !cJSON_IsString(name))
            return llmux__err(t->err, LLMUX_ERR_BAD_REQUEST,
                              "messages[%d].tool_calls[%d]: id and function.name are required",
                              mi, ci);
        cJSON *input = parse_arguments(cJSON_IsString(args) ? args->valuestring : "");
        if (!input)
            return llmux__err(t->err, LX_CANNOT_SERVE,
                              "messages[%d].tool_calls[%d].function.arguments is not a JSON "
                              "object, which Bedrock's toolUse.input must be",
                              mi, ci);
        cJSON *b = append_object(blocks), *tu = NULL;
        int ok = b && (tu = cJSON_AddObjectToObject(b, "toolUse")) &&
             cJSON_AddStringToObject(tu, "toolUseId", id->valuestring) &&
             cJSON_AddStringToObject(tu, "name", name->valuestring);
        if (!ok || !cJSON_AddItemToObject(tu, "input", input)) {
            cJSON_Delete(input);
            return oom(t->err);
        }
        if (remember_tool(t, name->valuestring))
            return oom(t->err);
        t->tool_blocks = 1;
        ci++;
    }
    return 0;
}

static int add_tool_result(tx *t, const cJSON *msg, int mi)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "tool_call_id");
    if (!cJSON_IsString(id))
        return llmux__err(t->err, LLMUX_ERR_BAD_REQUEST,
                          "messages[%d]: a tool message needs tool_call_id", mi);
    cJSON *blocks = turn(t, "user");
    cJSON *b = append_object(blocks), *tr = NULL, *content = NULL;
    int ok = b && (tr = cJSON_AddObjectToObject(b, "toolResult")) &&
         cJSON_AddStringToObject(tr, "toolUseId", id->valuestring) &&
         (content = cJSON_AddArrayToObject(tr, "content"));
    if (!ok)
        return oom(t->err);
    t->tool_blocks = 1;
    return add_content(t, content, cJSON_GetObjectItemCaseSensitive(msg, "content"), mi, 0);
}

static int translate_messages(tx *t, const cJSON *messages)
{
    const cJSON *m;
    int mi = 0, rc = 0;
    cJSON_ArrayForEach(m, messages)
    {
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(m, "role");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        const char *r = cJSON_IsString(role) ? role->valuestring : "";
        cJSON *blocks;
        if (strcmp(r, "system") == 0 || strcmp(r, "developer") == 0) {
            rc = add_content(t, t->system, content, mi, 0);
        } else if (strcmp(r, "user") == 0) {
            rc = (blocks = turn(t, "user")) ? add_content(t, blocks, content, mi, 1) : oom(t->err);
        } else if (strcmp(r, "assistant") == 0) {
            const cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls");
            rc = (blocks = turn(t, "assistant")) ? add_content(t, blocks, content, mi, 0)
                                                 : oom(t->err);
            if (!rc && cJSON_IsArray(calls))
                rc = add_tool_calls(t, blocks, calls, mi);
        } else if (strcmp(r, "tool") == 0) {
            rc = add_tool_result(t, m, mi);
        } else {
            rc = llmux__err(t->err, LX_CANNOT_SERVE,
                            "messages[%d]: role \"%.20s\" has no Bedrock Converse equivalent", mi,
                            r);
        }
        if (rc)
            return rc;
        mi++;
    }
    return 0;
}

static int add_tool_spec(cJSON *tools, const char *name, const cJSON *desc, const cJSON *params)
{
    cJSON *t = append_object(tools), *spec = NULL, *schema = NULL, *json;
    if (!t || !(spec = cJSON_AddObjectToObject(t, "toolSpec")) ||
        !cJSON_AddStringToObject(spec, "name", name) ||
        (cJSON_IsString(desc) && !cJSON_AddStringToObject(spec, "description", desc->valuestring)) ||
        !(schema = cJSON_AddObjectToObject(spec, "inputSchema")))
        return -1;
    json = cJSON_IsObject(params) ? cJSON_Duplicate(params, 1)
                                  : cJSON_Parse("{\"type\":\"object\",\"properties\":{}}");
    if (!json || !cJSON_AddItemToObject(schema, "json", json)) {
        cJSON_Delete(json);
        return -1;
    }
    return 0;
}

/* toolConfig: the request's tools and tool_choice; and whenever the history
 * holds tool blocks, which Converse refuses without a toolConfig. */
static int tool_config(tx *t, const cJSON *req, cJSON *body)
{
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
    const cJSON *choice = cJSON_GetObjectItemCaseSensitive(req, "tool_choice");
    int have = cJSON_IsArray(tools) && tools->child;
    int none = cJSON_IsString(choice) && strcmp(choice->valuestring, "none") == 0;
    if ((!have || none) && !t->tool_blocks)
        return 0; /* "none": Converse has no such choice, so no tools are offered */
    cJSON *tc = cJSON_AddObjectToObject(body, "toolConfig");
    cJSON *list = tc ? cJSON_AddArrayToObject(tc, "tools") : NULL;
    if (!list)
        return oom(t->err);
    if (have) {
        const cJSON *tool;
        int i = 0;
        cJSON_ArrayForEach(tool, tools)
        {
            const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tool, "function");
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
            if (!cJSON_IsString(name))
                return llmux__err(t->err, LLMUX_ERR_BAD_REQUEST,
                                  "tools[%d]: function.name is required", i);
            if (add_tool_spec(list, name->valuestring,
                              cJSON_GetObjectItemCaseSensitive(fn, "description"),
                              cJSON_GetObjectItemCaseSensitive(fn, "parameters")))
                return oom(t->err);
            i++;
        }
    } else {
        /* only the history uses tools: declare those it names */
        const cJSON *n;
        cJSON_ArrayForEach(n, t->tool_names) if (add_tool_spec(list, n->valuestring, NULL, NULL))
            return oom(t->err);
        if (!list->child && add_tool_spec(list, "none", NULL, NULL))
            return oom(t->err);
    }
    if (!have || none || !choice || cJSON_IsNull(choice))
        return 0;
    cJSON *tch = cJSON_AddObjectToObject(tc, "toolChoice");
    if (!tch)
        return oom(t->err);
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(choice, "function");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(fn, "name");
    int ok;
    if (cJSON_IsString(choice) && strcmp(choice->valuestring, "auto") == 0)
        ok = cJSON_AddObjectToObject(tch, "auto") != NULL;
    else if (cJSON_IsString(choice) && strcmp(choice->valuestring, "required") == 0)
        ok = cJSON_AddObjectToObject(tch, "any") != NULL;
    else if (cJSON_IsString(name)) {
        cJSON *tool = cJSON_AddObjectToObject(tch, "tool");
        ok = tool && cJSON_AddStringToObject(tool, "name", name->valuestring);
    } else
        return llmux__err(t->err, LLMUX_ERR_BAD_REQUEST,
                          "tool_choice: expected \"none\", \"auto\", \"required\" or a function");
    return ok ? 0 : oom(t->err);
}

static int add_number(cJSON *obj, const char *key, const cJSON *v)
{
    return cJSON_AddNumberToObject(obj, key, v->valuedouble) ? 0 : -1;
}

static int inference_config(tx *t, const cJSON *req, cJSON *body)
{
    const cJSON *max = cJSON_GetObjectItemCaseSensitive(req, "max_completion_tokens");
    if (!cJSON_IsNumber(max))
        max = cJSON_GetObjectItemCaseSensitive(req, "max_tokens");
    const cJSON *temp = cJSON_GetObjectItemCaseSensitive(req, "temperature");
    const cJSON *top_p = cJSON_GetObjectItemCaseSensitive(req, "top_p");
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(req, "stop");
    int has_stop = cJSON_IsString(stop) || (cJSON_IsArray(stop) && stop->child);
    if (!cJSON_IsNumber(max) && !cJSON_IsNumber(temp) && !cJSON_IsNumber(top_p) && !has_stop)
        return 0;
    cJSON *ic = cJSON_AddObjectToObject(body, "inferenceConfig");
    if (!ic)
        return oom(t->err);
    int bad = (cJSON_IsNumber(max) && add_number(ic, "maxTokens", max));
    if (cJSON_IsNumber(temp)) /* OpenAI allows 0-2, Converse 0-1 */
        bad |= !cJSON_AddNumberToObject(ic, "temperature",
                                        temp->valuedouble > 1 ? 1 : temp->valuedouble);
    bad |= cJSON_IsNumber(top_p) && add_number(ic, "topP", top_p);
    if (has_stop) {
        cJSON *seq = cJSON_AddArrayToObject(ic, "stopSequences");
        bad |= !seq;
        if (cJSON_IsString(stop)) {
            bad |= seq && !cJSON_AddItemToArray(seq, cJSON_CreateString(stop->valuestring));
        } else {
            const cJSON *s;
            cJSON_ArrayForEach(s, stop) if (seq && cJSON_IsString(s))
                bad |= !cJSON_AddItemToArray(seq, cJSON_CreateString(s->valuestring));
        }
    }
    return bad ? oom(t->err) : 0;
}

/* response_format json_schema: Converse's native structured output
 * (outputConfig.textFormat; the schema travels as a JSON string). */
static int output_config(tx *t, const cJSON *req, cJSON *body)
{
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(req, "response_format");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(rf, "type");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") == 0)
        return 0;
    if (strcmp(type->valuestring, "json_schema") != 0)
        return llmux__err(t->err, LX_CANNOT_SERVE,
                          "response_format \"%.30s\" has no Bedrock Converse equivalent "
                          "(json_schema has)",
                          type->valuestring);
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(rf, "json_schema");
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(js, "schema");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(js, "name");
    const cJSON *desc = cJSON_GetObjectItemCaseSensitive(js, "description");
    if (!cJSON_IsObject(schema) || !cJSON_IsString(name))
        return llmux__err(t->err, LLMUX_ERR_BAD_REQUEST,
                          "response_format.json_schema needs a name and a schema object");
    char *text = cJSON_PrintUnformatted(schema);
    cJSON *oc = text ? cJSON_AddObjectToObject(body, "outputConfig") : NULL;
    cJSON *tf = oc ? cJSON_AddObjectToObject(oc, "textFormat") : NULL;
    cJSON *st = NULL, *j = NULL;
    int ok = tf && cJSON_AddStringToObject(tf, "type", "json_schema") &&
             (st = cJSON_AddObjectToObject(tf, "structure")) &&
             (j = cJSON_AddObjectToObject(st, "jsonSchema")) &&
             cJSON_AddStringToObject(j, "schema", text) &&
             cJSON_AddStringToObject(j, "name", name->valuestring) &&
             (!cJSON_IsString(desc) || cJSON_AddStringToObject(j, "description", desc->valuestring));
    free(text);
    return ok ? 0 : oom(t->err);
}

/* What Converse lacks goes to additionalModelRequestFields: top_k, and the
 * caller's own additionalModelRequestFields object as given. */
static int additional_fields(tx *t, const cJSON *req, cJSON *body)
{
    const cJSON *top_k = cJSON_GetObjectItemCaseSensitive(req, "top_k");
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(req, "additionalModelRequestFields");
    if (!cJSON_IsNumber(top_k) && !cJSON_IsObject(extra))
        return 0;
    cJSON *a = cJSON_IsObject(extra) ? cJSON_Duplicate(extra, 1) : cJSON_CreateObject();
    if (!a || !cJSON_AddItemToObject(body, "additionalModelRequestFields", a)) {
        cJSON_Delete(a);
        return oom(t->err);
    }
    if (cJSON_IsNumber(top_k) && !cJSON_GetObjectItemCaseSensitive(a, "top_k") &&
        add_number(a, "top_k", top_k))
        return oom(t->err);
    return 0;
}

/* The Converse body for the caller's request. */
static int translate(const cJSON *req, char **out, lx_err *err)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(req, "n");
    if (cJSON_IsNumber(n) && n->valuedouble != 1)
        return llmux__err(err, LX_CANNOT_SERVE, "Bedrock Converse answers one choice (n = 1)");
    cJSON *body = cJSON_CreateObject();
    tx t = {err, NULL, NULL, 0, cJSON_CreateArray()};
    int rc;
    if (!body || !t.tool_names || !(t.messages = cJSON_AddArrayToObject(body, "messages")) ||
        !(t.system = cJSON_CreateArray())) {
        rc = oom(err);
        goto done;
    }
    if ((rc = translate_messages(&t, cJSON_GetObjectItemCaseSensitive(req, "messages"))))
        goto done;
    if (t.system->child) {
        if (!cJSON_AddItemToObject(body, "system", t.system)) {
            rc = oom(err);
            goto done;
        }
        t.system = NULL;
    }
    if ((rc = tool_config(&t, req, body)) || (rc = inference_config(&t, req, body)) ||
        (rc = output_config(&t, req, body)) || (rc = additional_fields(&t, req, body)))
        goto done;
    if (!(*out = cJSON_PrintUnformatted(body)))
        rc = oom(err);
done:
    cJSON_Delete(t.system);
    cJSON_Delete(t.tool_names);
    cJSON_Delete(body);
    return rc;
}

/* The SigV4 headers (Host, X-Amz-Date, X-Amz-Security-Token, Authorization)
 * over the final body. */
static int sign(const bedrock_state *st, const char *path, lx_http_request *out, time_t now,
                lx_err *err)
{
    char date[17];
    llmux__sigv4_amz_date(now, date);
    lx_sigv4_header h[4] = {{"content-type", "application/json"},
                            {"host", st->host},
                            {"x-amz-date", date},
                            {"x-amz-security-token", st->session_token}};
    lx_sigv4_request r = {
        .method = "POST", .path = path, .query = NULL, .headers = h,
        .n_headers = st->session_token ? 4 : 3, .payload = out->body,
        .payload_len = out->body_len, .amz_date = date, .region = st->region,
        .service = SIGNING_SERVICE, .access_key = st->access_key, .secret_key = st->secret_key,
    };
    lx_buf auth = LX_BUF_INIT;
    int bad = llmux__sigv4_authorization(&r, &auth) ||
              llmux__http_header_add_static(out, st->host_line) ||
              llmux__http_header_add(out, "X-Amz-Date", date) ||
              (st->session_token &&
               llmux__http_header_add(out, "X-Amz-Security-Token", st->session_token)) ||
              llmux__http_header_add(out, "Authorization", auth.data);
    llmux__buf_free(&auth);
    return bad ? oom(err) : 0;
}

/* {base path}/model/{model id, one encoded segment}/converse[-stream] */
static int build_path(const bedrock_state *st, const char *model, int stream, lx_buf *path)
{
    return llmux__buf_puts(path, st->path) || llmux__buf_puts(path, "/model/") ||
           llmux__sigv4_uri_encode(path, model, strlen(model), 0) ||
           llmux__buf_puts(path, stream ? "/converse-stream" : "/converse");
}

/* The request for `now` (tests pin the time to compare signatures). */
int llmux__bedrock_build_at(const lx_provider_cfg *p, const char *model, const lx_request *req,
                            int stream, lx_http_request *out, time_t now, lx_err *err)
{
    const bedrock_state *st = p->adapter_state;
    if (!st->bearer && (!st->access_key || !st->secret_key))
        return llmux__err(err, LLMUX_ERR_AUTH,
                          "no AWS credentials: the environment variable %s is not set",
                          st->access_key ? st->secret_key_env : st->access_key_env);
    const cJSON *tree = llmux__request_tree(req, err);
    if (!tree)
        return LLMUX_ERR_NO_MEMORY;
    char *body = NULL;
    int rc = translate(tree, &body, err);
    if (rc)
        return rc;
    out->body = body;
    out->body_len = strlen(body);
    lx_buf path = LX_BUF_INIT, url = LX_BUF_INIT;
    const char *h = strstr(p->base_url, "://") + 3;
    int bad = build_path(st, model, stream, &path) ||
              llmux__buf_append(&url, p->base_url, (size_t)(h - p->base_url)) ||
              llmux__buf_puts(&url, st->host) || llmux__buf_puts(&url, path.data) ||
              llmux__http_request_set_url(out, url.data) ||
              llmux__http_header_add_static(out, "Content-Type: application/json") ||
              llmux__http_header_add_static(out, stream ? "Accept: application/vnd.amazon.eventstream"
                                                        : "Accept: application/json");
    for (size_t i = 0; i < p->n_extra_headers && !bad; i++)
        bad = llmux__http_header_add_static(out, p->extra_headers[i]);
    if (!bad && st->bearer)
        bad = llmux__http_header_add_static(out, st->bearer);
    rc = bad ? oom(err) : st->bearer ? 0 : sign(st, path.data, out, now, err);
    llmux__buf_free(&path);
    llmux__buf_free(&url);
    return rc;
}

static int bedrock_build_request(const lx_provider_cfg *p, const char *model, const lx_request *req,
                                 int stream, lx_http_request *out, lx_err *err)
{
    return llmux__bedrock_build_at(p, model, req, stream, out, time(NULL), err);
}

/* ---------------------------------------------------------- the answer */

static const char *finish_reason(const char *stop, int *error)
{
    static const struct {
        const char *bedrock, *openai;
    } map[] = {{"end_turn", "stop"},
               {"stop_sequence", "stop"},
               {"tool_use", "tool_calls"},
               {"max_tokens", "length"},
               {"model_context_window_exceeded", "length"},
               {"guardrail_intervened", "content_filter"},
               {"content_filtered", "content_filter"}};
    *error = 0;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(stop, map[i].bedrock) == 0)
            return map[i].openai;
    /* malformed_model_output, malformed_tool_use: nothing usable came back */
    *error = strncmp(stop, "malformed", 9) == 0;
    return "stop";
}

/* What must never show in text quoted from the provider: the API key or the
 * secret key, and the session token. */
typedef struct secrets {
    const char *key, *token;
} secrets;

static secrets secret_of(const lx_provider_cfg *p)
{
    const bedrock_state *st = p->adapter_state;
    secrets s = {p->api_key ? p->api_key : st ? st->secret_key : NULL,
                 st ? st->session_token : NULL};
    return s;
}

/* llmux__provider_text masking both secrets. */
static void safe_text(char *out, size_t cap, const char *in, size_t len, secrets sec)
{
    char *tmp = sec.token && len ? malloc(len + 1) : NULL;
    if (!tmp) {
        llmux__provider_text(out, cap, in, len, sec.key);
        if (sec.token && len && cap) /* out of memory: quote nothing rather than risk it */
            snprintf(out, cap, "(provider text withheld: out of memory)");
        return;
    }
    llmux__provider_text(tmp, len + 1, in, len, sec.key);
    llmux__provider_text(out, cap, tmp, strlen(tmp), sec.token);
    free(tmp);
}

static long count(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? llmux__token_count(v->valuedouble) : -1;
}

/* Converse usage into u, and the OpenAI usage object into out (NULL: none). */
static int read_usage(const cJSON *usage, lx_usage *u, cJSON *out)
{
    long in = count(usage, "inputTokens"), outp = count(usage, "outputTokens");
    long rd = count(usage, "cacheReadInputTokens"), wr = count(usage, "cacheWriteInputTokens");
    u->prompt_tokens = in < 0 ? -1 : in + (rd > 0 ? rd : 0) + (wr > 0 ? wr : 0);
    u->completion_tokens = outp;
    u->cached_tokens = rd < 0 ? (in < 0 ? -1 : 0) : rd;
    u->cache_write_tokens = wr < 0 ? (in < 0 ? -1 : 0) : wr;
    u->cache_write_1h_tokens = -1;
    u->reasoning_tokens = -1;
    u->total_tokens = count(usage, "totalTokens");
    if (!out)
        return 0;
    cJSON *d1 = NULL, *d2 = NULL;
    int64_t total = u->prompt_tokens >= 0 && u->completion_tokens >= 0
                        ? u->prompt_tokens + u->completion_tokens
                        : -1;
#define NUM(o, k, v) ((v) < 0 ? cJSON_AddNullToObject(o, k) : cJSON_AddNumberToObject(o, k, (double)(v)))
    int ok = NUM(out, "prompt_tokens", u->prompt_tokens) &&
             NUM(out, "completion_tokens", u->completion_tokens) && NUM(out, "total_tokens", total) &&
             (d1 = cJSON_AddObjectToObject(out, "prompt_tokens_details")) &&
             NUM(d1, "cached_tokens", u->cached_tokens) &&
             NUM(d1, "cache_write_tokens", u->cache_write_tokens) &&
             (d2 = cJSON_AddObjectToObject(out, "completion_tokens_details")) &&
             cJSON_AddNumberToObject(d2, "reasoning_tokens", 0);
#undef NUM
    return ok ? 0 : -1;
}

/* "chatcmpl-bedrock-" and 16 hex digits: Bedrock's answer has no id. A
 * process-wide counter from a random start, through splitmix64's finaliser,
 * so ids never repeat within a process and rarely across; RAND_bytes per id
 * cost three quarters of parse_response (callgrind). */
static uint64_t id_seed;
static pthread_once_t id_once = PTHREAD_ONCE_INIT;

static void seed_ids(void)
{
    unsigned char r[8];
    if (RAND_bytes(r, sizeof r) == 1)
        memcpy(&id_seed, r, sizeof id_seed);
    else
        id_seed = (uint64_t)time(NULL) * 0x9E3779B97F4A7C15u;
}

static void new_id(char out[40])
{
    static uint64_t next;
    pthread_once(&id_once, seed_ids);
    uint64_t z = id_seed + __atomic_add_fetch(&next, 1, __ATOMIC_RELAXED) * 0x9E3779B97F4A7C15u;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    z ^= z >> 31;
    snprintf(out, 40, "chatcmpl-bedrock-%016llx", (unsigned long long)z);
}

/* The OpenAI envelope every answer and chunk shares. */
static cJSON *envelope(const char *id, long created, const char *object)
{
    cJSON *o = cJSON_CreateObject();
    if (o && cJSON_AddStringToObject(o, "id", id) && cJSON_AddStringToObject(o, "object", object) &&
        cJSON_AddNumberToObject(o, "created", (double)created) &&
        cJSON_AddStringToObject(o, "model", ""))
        return o;
    cJSON_Delete(o);
    return NULL;
}

/* A message's blocks as OpenAI content and tool_calls. */
static int message_from_blocks(const cJSON *content, cJSON *msg)
{
    lx_buf text = LX_BUF_INIT;
    cJSON *calls = NULL;
    const cJSON *b;
    int bad = 0;
    cJSON_ArrayForEach(b, content)
    {
        const cJSON *txt = cJSON_GetObjectItemCaseSensitive(b, "text");
        const cJSON *tu = cJSON_GetObjectItemCaseSensitive(b, "toolUse");
        if (cJSON_IsString(txt)) {
            bad |= llmux__buf_puts(&text, txt->valuestring) != 0;
        } else if (cJSON_IsObject(tu)) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(tu, "toolUseId");
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(tu, "name");
            const cJSON *input = cJSON_GetObjectItemCaseSensitive(tu, "input");
            if (!cJSON_IsString(id) || !cJSON_IsString(name)) {
                llmux__buf_free(&text);
                cJSON_Delete(calls);
                return -2;
            }
            char *args = input ? cJSON_PrintUnformatted(input) : strdup("{}");
            cJSON *c = NULL, *fn = NULL;
            if (!calls)
                calls = cJSON_CreateArray();
            bad = !args || !(c = append_object(calls)) ||
                  !cJSON_AddStringToObject(c, "id", id->valuestring) ||
                   !cJSON_AddStringToObject(c, "type", "function") ||
                   !(fn = cJSON_AddObjectToObject(c, "function")) ||
                   !cJSON_AddStringToObject(fn, "name", name->valuestring) ||
                   !cJSON_AddStringToObject(fn, "arguments", args);
            free(args);
        } /* reasoningContent, guardContent, ...: not part of the answer's text */
        if (bad)
            break;
    }
    if (!bad) {
        cJSON *c = text.len || !calls ? cJSON_CreateString(text.data ? text.data : "")
                                      : cJSON_CreateNull();
        bad = !c || !cJSON_AddItemToObject(msg, "content", c);
        if (bad)
            cJSON_Delete(c);
    }
    if (!bad && calls) {
        bad = !cJSON_AddItemToObject(msg, "tool_calls", calls);
        if (!bad)
            calls = NULL;
    }
    cJSON_Delete(calls);
    llmux__buf_free(&text);
    return bad ? -1 : 0;
}

static int bad_json(lx_err *err, const char *what, const char *s, size_t len)
{
    size_t off = 0;
    int syntax = len ? llmux__json_check(s, len, &off) : LLMUX_JSON_SYNTAX;
    if (syntax == LLMUX_JSON_OK)
        return 0;
    return llmux__err(err, LLMUX_ERR_BAD_RESPONSE, "%s is not valid %s (%zu bytes, error at byte %zu)",
                      what, syntax == LLMUX_JSON_UTF8 ? "UTF-8" : "JSON", len, off);
}

static int bedrock_parse_response(const lx_provider_cfg *p, lx_buf *body, char **out_json,
                                  lx_usage *usage, lx_err *err)
{
    int rc = bad_json(err, "the response body", body->data, body->len);
    if (rc)
        return rc;
    cJSON *root = cJSON_ParseWithLength(body->data, body->len), *o = NULL;
    if (!root)
        return oom(err);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(root, "output"), "message");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
    const cJSON *stop = cJSON_GetObjectItemCaseSensitive(root, "stopReason");
    if (!cJSON_IsArray(content) || !cJSON_IsString(stop)) {
        rc = llmux__err(err, LLMUX_ERR_BAD_RESPONSE,
                        "the response has no output.message.content array and stopReason: not a "
                        "Converse answer");
        goto done;
    }
    int malformed;
    const char *finish = finish_reason(stop->valuestring, &malformed);
    if (malformed) {
        char s[64];
        safe_text(s, sizeof s, stop->valuestring, strlen(stop->valuestring), secret_of(p));
        snprintf(err->provider_code, sizeof err->provider_code, "%s", s);
        rc = llmux__err(err, LLMUX_ERR_BAD_RESPONSE, "the model's output was unusable (stopReason %s)", s);
        goto done;
    }
    char id[40];
    new_id(id);
    cJSON *choice, *m, *u;
    if (!(o = envelope(id, (long)time(NULL), "chat.completion")) ||
        !(choice = append_object(cJSON_AddArrayToObject(o, "choices"))) ||
        !cJSON_AddNumberToObject(choice, "index", 0) ||
        !(m = cJSON_AddObjectToObject(choice, "message")) ||
        !cJSON_AddStringToObject(m, "role", "assistant"))
        goto oom;
    int mb = message_from_blocks(content, m);
    if (mb == -2) {
        rc = llmux__err(err, LLMUX_ERR_BAD_RESPONSE, "a toolUse block without toolUseId or name");
        goto done;
    }
    if (mb || !cJSON_AddNullToObject(choice, "logprobs") ||
        !cJSON_AddStringToObject(choice, "finish_reason", finish) ||
        !(u = cJSON_AddObjectToObject(o, "usage")) ||
        read_usage(cJSON_GetObjectItemCaseSensitive(root, "usage"), usage, u) ||
        !(*out_json = cJSON_PrintUnformatted(o)))
        goto oom;
    rc = LLMUX_OK;
    goto done;
oom:
    rc = oom(err);
done:
    cJSON_Delete(o);
    cJSON_Delete(root);
    return rc;
}

/* ---------------------------------------------------------------- errors */

static const struct {
    const char *type;
    int status;
} ERROR_TYPES[] = {
    {"ThrottlingException", LLMUX_ERR_RATE_LIMIT},
    {"ServiceQuotaExceededException", LLMUX_ERR_RATE_LIMIT},
    {"ValidationException", LLMUX_ERR_BAD_REQUEST},
    {"AccessDeniedException", LLMUX_ERR_PERMISSION},
    {"ResourceNotFoundException", LLMUX_ERR_NOT_FOUND},
    {"ModelNotReadyException", LLMUX_ERR_PROVIDER},
    {"ServiceUnavailableException", LLMUX_ERR_PROVIDER},
    {"InternalServerException", LLMUX_ERR_PROVIDER},
    {"ModelErrorException", LLMUX_ERR_PROVIDER},
    {"ModelStreamErrorException", LLMUX_ERR_PROVIDER},
    {"ModelTimeoutException", LLMUX_ERR_TIMEOUT},
    {"UnrecognizedClientException", LLMUX_ERR_AUTH},
    {"InvalidSignatureException", LLMUX_ERR_AUTH},
    {"IncompleteSignatureException", LLMUX_ERR_AUTH},
    {"MissingAuthenticationTokenException", LLMUX_ERR_AUTH},
    {"ExpiredTokenException", LLMUX_ERR_AUTH},
};

/* The status for an error type (either case of its first letter: headers say
 * ThrottlingException, stream frames throttlingException); fallback if unknown. */
static int status_for_type(const char *type, const char *msg, int fallback)
{
    int status = fallback;
    for (size_t i = 0; i < sizeof ERROR_TYPES / sizeof ERROR_TYPES[0]; i++) {
        const char *t = ERROR_TYPES[i].type;
        if ((type[0] == t[0] || type[0] == t[0] + 32) && strcmp(type + 1, t + 1) == 0) {
            status = ERROR_TYPES[i].status;
            break;
        }
    }
    if ((status == LLMUX_ERR_BAD_REQUEST || fallback == LLMUX_ERR_BAD_REQUEST) &&
        llmux__is_context_overflow(msg))
        status = LLMUX_ERR_CONTEXT_WINDOW;
    return status;
}

/* x-amzn-ErrorType "Name:http://internal.amazon.com/..." or "ns#Name": the name. */
static void error_type(const char *raw, char *out, size_t cap)
{
    const char *s = strchr(raw, '#');
    s = s ? s + 1 : raw;
    size_t n = strcspn(s, ":");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), s);
}

static void body_message(const char *body, size_t len, secrets secret, char *msg, size_t cap,
                         char *type, size_t type_cap)
{
    msg[0] = '\0';
    size_t off = 0;
    cJSON *root = len && llmux__json_check(body, len, &off) == LLMUX_JSON_OK
                      ? cJSON_ParseWithLength(body, len)
                      : NULL;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "message");
    if (!cJSON_IsString(m))
        m = cJSON_GetObjectItemCaseSensitive(root, "Message");
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "__type");
    if (cJSON_IsString(m))
        safe_text(msg, cap, m->valuestring, strlen(m->valuestring), secret);
    else if (len)
        safe_text(msg, cap > 201 ? 201 : cap, body, len, secret);
    if (!type[0] && cJSON_IsString(t)) {
        char raw[128];
        safe_text(raw, sizeof raw, t->valuestring, strlen(t->valuestring), secret);
        error_type(raw, type, type_cap);
    }
    cJSON_Delete(root);
}

static int bedrock_classify_error(const lx_provider_cfg *p, const lx_http_response *resp,
                                  lx_err *err)
{
    char raw[256] = "", type[64] = "", msg[320];
    if (llmux__http_response_header(resp, "x-amzn-ErrorType", raw, sizeof raw) > 0) {
        char clean[256];
        safe_text(clean, sizeof clean, raw, strlen(raw), secret_of(p));
        error_type(clean, type, sizeof type);
    }
    body_message(resp->body.data, resp->body.len, secret_of(p), msg, sizeof msg, type, sizeof type);
    int status = status_for_type(type, msg, llmux__status_for_http(resp->status));
    err->http_status = (int)resp->status;
    snprintf(err->provider_code, sizeof err->provider_code, "%s", type);
    return llmux__err(err, status, "HTTP %ld%s%s%s: %s", resp->status, type[0] ? " (" : "", type,
                      type[0] ? ")" : "", msg[0] ? msg : "(empty body)");
}

/* ---------------------------------------------------------------- streams */

#define MAX_BLOCKS 128

typedef struct bedrock_stream {
    lx_eventstream es;
    secrets secret;
    char id[40];
    long created;
    int stopped; /* messageStop arrived */
    int block_tool[MAX_BLOCKS]; /* contentBlockIndex -> tool index + 1 (0: not a tool) */
    int n_tools;
    lx_chunk_sink_cb sink;
    void *ctx;
    lx_err *err;
    int status;
} bedrock_stream;

#define STREAM_DONE 2 /* on_message's value after metadata, the last event */

static void *bedrock_stream_new(const lx_provider_cfg *p)
{
    bedrock_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    llmux__es_init(&s->es, p->max_response_bytes);
    s->secret = secret_of(p);
    new_id(s->id);
    s->created = (long)time(NULL);
    return s;
}

/* Sends one chunk: choices [{index 0, delta, finish_reason}] or, with usage,
 * choices [] and the usage object. Takes delta and usage. */
static int emit(bedrock_stream *s, cJSON *delta, const char *finish, cJSON *usage)
{
    cJSON *o = envelope(s->id, s->created, "chat.completion.chunk");
    cJSON *choices = o ? cJSON_AddArrayToObject(o, "choices") : NULL, *c = NULL;
    int ok = choices != NULL;
    if (ok && delta) {
        ok = (c = append_object(choices)) && cJSON_AddNumberToObject(c, "index", 0) &&
             cJSON_AddItemToObject(c, "delta", delta);
        if (ok)
            delta = NULL;
        ok = ok && (finish ? cJSON_AddStringToObject(c, "finish_reason", finish)
                           : cJSON_AddNullToObject(c, "finish_reason"));
    }
    if (ok && usage) {
        ok = cJSON_AddItemToObject(o, "usage", usage);
        if (ok)
            usage = NULL;
    }
    char *json = ok ? cJSON_PrintUnformatted(o) : NULL;
    int rc;
    if (!json) {
        rc = s->status = oom(s->err);
    } else if (s->sink(s->ctx, json, strlen(json), o)) {
        rc = s->status = LLMUX_ERR_CANCELLED;
    } else {
        rc = 0;
    }
    free(json);
    cJSON_Delete(o);
    cJSON_Delete(delta);
    cJSON_Delete(usage);
    return rc;
}

static int block_index(bedrock_stream *s, const cJSON *ev)
{
    const cJSON *i = cJSON_GetObjectItemCaseSensitive(ev, "contentBlockIndex");
    return cJSON_IsNumber(i) && i->valuedouble >= 0 && i->valuedouble < MAX_BLOCKS
               ? (int)i->valuedouble
               : -1;
}

/* A tool_calls delta for tool k: id and name when starting, else arguments. */
static cJSON *tool_delta(int k, const char *id, const char *name, const char *args)
{
    cJSON *d = cJSON_CreateObject(), *calls, *c, *fn;
    if (!d || !(calls = cJSON_AddArrayToObject(d, "tool_calls")) || !(c = append_object(calls)) ||
        !cJSON_AddNumberToObject(c, "index", k) ||
        (id && (!cJSON_AddStringToObject(c, "id", id) || !cJSON_AddStringToObject(c, "type", "function"))) ||
        !(fn = cJSON_AddObjectToObject(c, "function")) ||
        (name && !cJSON_AddStringToObject(fn, "name", name)) ||
        !cJSON_AddStringToObject(fn, "arguments", args)) {
        cJSON_Delete(d);
        return NULL;
    }
    return d;
}

static cJSON *text_delta(const char *role, const char *text)
{
    cJSON *d = cJSON_CreateObject();
    if (d && (!role || cJSON_AddStringToObject(d, "role", role)) &&
        cJSON_AddStringToObject(d, "content", text))
        return d;
    cJSON_Delete(d);
    return NULL;
}

static int on_event(bedrock_stream *s, const char *type, const cJSON *ev)
{
    cJSON *d = NULL;
    if (strcmp(type, "messageStart") == 0) {
        if (!(d = text_delta("assistant", "")))
            return s->status = oom(s->err);
        return emit(s, d, NULL, NULL);
    }
    if (strcmp(type, "contentBlockStart") == 0) {
        const cJSON *tu = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(ev, "start"), "toolUse");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(tu, "toolUseId");
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(tu, "name");
        int bi = block_index(s, ev);
        if (!cJSON_IsObject(tu))
            return 0;
        if (bi < 0 || !cJSON_IsString(id) || !cJSON_IsString(name))
            return s->status = llmux__err(s->err, LLMUX_ERR_BAD_RESPONSE,
                                          "a toolUse contentBlockStart without a valid "
                                          "contentBlockIndex, toolUseId or name");
        int k = s->n_tools++;
        s->block_tool[bi] = k + 1;
        if (!(d = tool_delta(k, id->valuestring, name->valuestring, "")))
            return s->status = oom(s->err);
        return emit(s, d, NULL, NULL);
    }
    if (strcmp(type, "contentBlockDelta") == 0) {
        const cJSON *delta = cJSON_GetObjectItemCaseSensitive(ev, "delta");
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(delta, "text");
        const cJSON *input = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(delta, "toolUse"), "input");
        int bi = block_index(s, ev);
        if (cJSON_IsString(text)) {
            d = text_delta(NULL, text->valuestring);
        } else if (cJSON_IsString(input)) {
            if (bi < 0 || !s->block_tool[bi])
                return s->status = llmux__err(s->err, LLMUX_ERR_BAD_RESPONSE,
                                              "a toolUse delta for a block that did not start "
                                              "as a tool call");
            d = tool_delta(s->block_tool[bi] - 1, NULL, NULL, input->valuestring);
        } else {
            return 0; /* reasoningContent and what llmux does not know */
        }
        return d ? emit(s, d, NULL, NULL) : (s->status = oom(s->err));
    }
    if (strcmp(type, "messageStop") == 0) {
        const cJSON *stop = cJSON_GetObjectItemCaseSensitive(ev, "stopReason");
        int malformed = 0;
        const char *f = finish_reason(cJSON_IsString(stop) ? stop->valuestring : "", &malformed);
        s->stopped = 1;
        if (malformed) {
            char why[48];
            safe_text(why, sizeof why, stop->valuestring, strlen(stop->valuestring), s->secret);
            snprintf(s->err->provider_code, sizeof s->err->provider_code, "%s", why);
            return s->status = llmux__err(s->err, LLMUX_ERR_BAD_RESPONSE,
                                          "the model's output was unusable (stopReason %s)", why);
        }
        return (d = cJSON_CreateObject()) ? emit(s, d, f, NULL) : (s->status = oom(s->err));
    }
    if (strcmp(type, "metadata") == 0) {
        lx_usage u;
        cJSON *usage = cJSON_CreateObject();
        if (!usage || read_usage(cJSON_GetObjectItemCaseSensitive(ev, "usage"), &u, usage)) {
            cJSON_Delete(usage);
            return s->status = oom(s->err);
        }
        int rc = emit(s, NULL, NULL, usage);
        return rc ? rc : STREAM_DONE;
    }
    return 0; /* contentBlockStop, and events llmux does not know */
}

/* An exception or error frame in the stream. */
static int stream_exception(bedrock_stream *s, const lx_es_message *m)
{
    const lx_es_header *h = llmux__es_header(m, ":exception-type");
    if (!h)
        h = llmux__es_header(m, ":error-code");
    char type[64] = "", msg[320] = "";
    if (h && h->type == LX_ES_STRING)
        safe_text(type, sizeof type, h->value, h->value_len, s->secret);
    const lx_es_header *em = llmux__es_header(m, ":error-message");
    if (em && em->type == LX_ES_STRING)
        safe_text(msg, sizeof msg, em->value, em->value_len, s->secret);
    else
        body_message(m->payload, m->payload_len, s->secret, msg, sizeof msg, type, sizeof type);
    int status = status_for_type(type, msg, LLMUX_ERR_PROVIDER);
    snprintf(s->err->provider_code, sizeof s->err->provider_code, "%s", type);
    return s->status = llmux__err(s->err, status, "error inside the stream%s%s%s: %s",
                                  type[0] ? " (" : "", type, type[0] ? ")" : "",
                                  msg[0] ? msg : "(no message)");
}

static int on_message(void *ctx, const lx_es_message *m)
{
    bedrock_stream *s = ctx;
    if (!llmux__es_header_is(m, ":message-type", "event"))
    {
        stream_exception(s, m);
        return 1;
    }
    const lx_es_header *et = llmux__es_header(m, ":event-type");
    char type[40];
    if (!et || et->type != LX_ES_STRING || et->value_len >= sizeof type) {
        s->status = llmux__err(s->err, LLMUX_ERR_BAD_RESPONSE,
                               "stream message %zu has no :event-type", s->es.messages);
        return 1;
    }
    memcpy(type, et->value, et->value_len);
    type[et->value_len] = '\0';
    if (bad_json(s->err, "a stream event's payload", m->payload, m->payload_len)) {
        s->status = LLMUX_ERR_BAD_RESPONSE;
        return 1;
    }
    cJSON *ev = cJSON_ParseWithLength(m->payload, m->payload_len);
    if (!ev) {
        s->status = oom(s->err);
        return 1;
    }
    int rc = on_event(s, type, ev);
    cJSON_Delete(ev);
    return rc == STREAM_DONE ? STREAM_DONE : rc ? 1 : 0;
}

static int bedrock_stream_feed(void *st, const char *data, size_t len, lx_chunk_sink_cb sink,
                               void *ctx, lx_err *err)
{
    bedrock_stream *s = st;
    s->sink = sink;
    s->ctx = ctx;
    s->err = err;
    if (s->status)
        return s->status;
    int rc = llmux__es_feed(&s->es, data, len, on_message, s);
    if (rc == STREAM_DONE)
        return LX_STREAM_END;
    if (rc > 0)
        return s->status ? s->status : LLMUX_ERR_INTERNAL;
    if (rc == LX_ES_NO_MEMORY)
        return s->status = oom(err);
    if (rc < 0)
        return s->status = llmux__err(err, LLMUX_ERR_BAD_RESPONSE, "%s (after %zu messages)",
                                      llmux__es_strerror(rc), s->es.messages);
    return LLMUX_OK;
}

static int bedrock_stream_finish(void *st, lx_err *err)
{
    bedrock_stream *s = st;
    if (s->stopped && !llmux__es_pending(&s->es))
        return LLMUX_OK; /* messageStop without the metadata event: no usage, still whole */
    if (s->stopped)
        return llmux__err(err, LLMUX_ERR_CONNECT,
                          "the stream was cut inside its last message (after %zu messages)",
                          s->es.messages);
    return llmux__err(err, LLMUX_ERR_CONNECT,
                      "the stream ended before messageStop (after %zu messages%s)",
                      s->es.messages, llmux__es_pending(&s->es) ? ", one cut short" : "");
}

static void bedrock_stream_free(void *st)
{
    bedrock_stream *s = st;
    if (!s)
        return;
    llmux__es_free(&s->es);
    free(s);
}

const lx_provider_ops llmux__bedrock_ops = {
    .type = "bedrock",
    .default_base_url = NULL, /* https://bedrock-runtime.{region}.amazonaws.com */
    .config_keys = BEDROCK_KEYS,
    .configure = bedrock_configure,
    .release = bedrock_release,
    .build_request = bedrock_build_request,
    .parse_response = bedrock_parse_response,
    .classify_error = bedrock_classify_error,
    .stream_new = bedrock_stream_new,
    .stream_feed = bedrock_stream_feed,
    .stream_finish = bedrock_stream_finish,
    .stream_free = bedrock_stream_free,
};
