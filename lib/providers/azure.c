/*
 * Azure OpenAI: the OpenAI wire format behind Azure's routes and auth.
 *
 * The request and the answer are the OpenAI adapter's (providers/openai.h):
 * the caller's bytes with the deployment name spliced in as "model", and the
 * answer passed through (Azure's prompt_filter_results and
 * content_filter_results reach the caller as extensions). What differs:
 *   - the URL: the deployment route
 *     {base_url}/openai/deployments/{model}/chat/completions?api-version=V
 *     (the target's model is the deployment name), or the v1 route
 *     {base_url}/openai/v1/chat/completions (the deployment name in the body);
 *   - auth: "api-key: KEY" (api_key_env), or "Authorization: Bearer TOKEN"
 *     with a Microsoft Entra ID token from bearer_token_env;
 *   - streams: the prompt-filter chunk (empty choices, no usage) is dropped and
 *     a choice without a delta gets "delta":{}, so every chunk the caller sees
 *     has the OpenAI shape;
 *   - errors: the 400 content_filter error names its inner code and the
 *     categories that were filtered, and is LLMUX_ERR_CONTENT_FILTER, in a
 *     stream and in a 200 body too.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/classify.h"
#include "providers/openai.h"
#include "providers/provider.h"

#define API_VERSION_MAX 64

typedef struct azure_state {
    int v1;          /* the v1 route: one URL for every deployment */
    char *url;       /* v1: the whole URL; deployments: "{base}/openai/deployments/" */
    char *url_tail;  /* deployments: "/chat/completions?api-version=V" */
    char *auth;      /* "api-key: KEY" or "Authorization: Bearer TOKEN"; NULL = none */
    char *bearer_env; /* bearer_token_env, when the config names one */
} azure_state;

static const char *const AZURE_KEYS[] = {"api_version", "route", "bearer_token_env", NULL};

static void wipe_free(char *s)
{
    if (!s)
        return;
    volatile char *k = s;
    while (*k)
        *k++ = 0;
    free(s);
}

static void azure_release(lx_provider_cfg *p)
{
    azure_state *st = p->adapter_state;
    if (!st)
        return;
    free(st->url);
    free(st->url_tail);
    free(st->bearer_env);
    wipe_free(st->auth);
    free(st);
    p->adapter_state = NULL;
}

static char *concat3(const char *a, const char *b, const char *c)
{
    size_t n = strlen(a) + strlen(b) + strlen(c) + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s%s%s", a, b, c);
    return s;
}

static int env_name_ok(const char *s)
{
    if (!*s || (*s >= '0' && *s <= '9'))
        return 0;
    return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") ==
           strlen(s);
}

/* The Entra ID token from the environment becomes the provider's secret, so
 * every error text masks it and the config layer wipes it at close. */
static int read_bearer(lx_provider_cfg *p, const char *env, const char *path,
                       const lx_cfg_reader *rd, lx_err *err)
{
    if (p->api_key_env)
        return rd->error(err, path, "bearer_token_env",
                         "give either api_key_env (the api-key header) or bearer_token_env (a "
                         "Microsoft Entra ID token), not both");
    if (!env_name_ok(env))
        return rd->error(err, path, "bearer_token_env",
                         "not an environment variable name (letters, digits and _, not starting "
                         "with a digit)");
    const char *val = getenv(env);
    if (!val || !*val)
        return LLMUX_OK; /* like an unset api_key_env: build_request answers LLMUX_ERR_AUTH */
    for (const char *c = val; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            return rd->error(err, path, "bearer_token_env",
                             "the environment variable holds control characters, which cannot "
                             "be sent in an HTTP header");
    if (!(p->api_key = strdup(val)))
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    return LLMUX_OK;
}

static int azure_configure(lx_provider_cfg *p, const cJSON *obj, const char *path,
                           const lx_cfg_reader *rd, lx_err *err)
{
    const char *version = NULL, *route = NULL, *bearer = NULL;
    int rc;
    if ((rc = rd->string(obj, "api_version", path, 0, &version, err)) ||
        (rc = rd->string(obj, "route", path, 0, &route, err)) ||
        (rc = rd->string(obj, "bearer_token_env", path, 0, &bearer, err)))
        return rc;
    if (version && (!*version || strlen(version) > API_VERSION_MAX ||
                    strspn(version, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                                    "-._") != strlen(version)))
        return rd->error(err, path, "api_version",
                         "letters, digits, '-', '.' and '_' only, at most 64 (e.g. "
                         "\"2024-10-21\")");
    int v1 = !version;
    if (route) {
        if (strcmp(route, "v1") != 0 && strcmp(route, "deployments") != 0)
            return rd->error(err, path, "route", "must be \"deployments\" or \"v1\"");
        v1 = strcmp(route, "v1") == 0;
        if (!v1 && !version)
            return rd->error(err, path, "api_version",
                             "required for the deployments route (e.g. \"2024-10-21\")");
    }
    if (bearer && (rc = read_bearer(p, bearer, path, rd, err)))
        return rc;
    if (!p->base_url)
        return LLMUX_OK; /* the config layer says base_url is required */

    azure_state *st = calloc(1, sizeof *st);
    if (!st)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    p->adapter_state = st;
    st->v1 = v1;
    int failed = 0;
    if (v1) {
        /* an api_version on the v1 route (e.g. "preview") goes in the query */
        failed = !(st->url = concat3(p->base_url,
                                     version ? "/openai/v1/chat/completions?api-version="
                                             : "/openai/v1/chat/completions",
                                     version ? version : ""));
    } else {
        failed = !(st->url = concat3(p->base_url, "/openai/deployments/", "")) ||
                 !(st->url_tail = concat3("/chat/completions?api-version=", version, ""));
    }
    if (!failed && bearer)
        failed = !(st->bearer_env = concat3(bearer, "", ""));
    if (!failed && p->api_key)
        failed = !(st->auth = concat3(bearer ? "Authorization: Bearer " : "api-key: ", p->api_key,
                                      ""));
    if (failed) {
        azure_release(p);
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    return LLMUX_OK;
}

/* The deployment route's URL for model: the name percent-encoded as one
 * path segment. malloc'd, NULL out of memory. */
static char *deployment_url(const azure_state *st, const char *model)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t hl = strlen(st->url), ml = strlen(model), tl = strlen(st->url_tail);
    char *u = malloc(hl + 3 * ml + tl + 1);
    if (!u)
        return NULL;
    memcpy(u, st->url, hl);
    char *o = u + hl;
    for (const unsigned char *c = (const unsigned char *)model; *c; c++) {
        if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
            *c == '-' || *c == '.' || *c == '_' || *c == '~') {
            *o++ = (char)*c;
        } else {
            *o++ = '%';
            *o++ = hex[*c >> 4];
            *o++ = hex[*c & 15];
        }
    }
    memcpy(o, st->url_tail, tl + 1);
    return u;
}

static int azure_build_request(const lx_provider_cfg *p, const char *model, const lx_request *req,
                               int stream, lx_http_request *out, lx_err *err)
{
    const azure_state *st = p->adapter_state;
    if (st->bearer_env && !st->auth) /* as the engine does for an unset api_key_env */
        return llmux__err(err, LLMUX_ERR_AUTH,
                          "the environment variable %s (providers.%s.bearer_token_env) is not set",
                          st->bearer_env, p->name);
    if (st->v1)
        return llmux__openai_request(p, st->url, st->auth, model, req, stream, out, err);
    char *url = deployment_url(st, model);
    if (!url)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    int rc = llmux__openai_request(p, url, st->auth, model, req, stream, out, err);
    free(url);
    return rc;
}

/* An error whose provider code is Azure's content_filter is the content
 * filter's refusal, wherever it arrived. */
static int content_filter_refined(int rc, lx_err *err)
{
    if (rc != LLMUX_OK && strcmp(err->provider_code, "content_filter") == 0) {
        err->status = LLMUX_ERR_CONTENT_FILTER;
        return LLMUX_ERR_CONTENT_FILTER;
    }
    return rc;
}

static int azure_parse_response(const lx_provider_cfg *p, lx_buf *body, char **out_json,
                                lx_usage *usage, lx_err *err)
{
    int rc = llmux__openai_ops.parse_response(p, body, out_json, usage, err);
    return content_filter_refined(rc, err);
}

/* " [ResponsibleAIPolicyViolation: hate, jailbreak]": the inner code and the
 * categories content_filter_result marks filtered, appended to msg. */
static void describe_inner(const cJSON *inner, const char *secret, char *msg, size_t cap)
{
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(inner, "code");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(inner, "content_filter_result");
    char text[200] = "", cats[200] = "";
    if (cJSON_IsString(code))
        llmux__provider_text(text, sizeof text, code->valuestring, strlen(code->valuestring),
                             secret);
    size_t used = 0;
    for (const cJSON *c = cJSON_IsObject(res) ? res->child : NULL; c; c = c->next) {
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "filtered")))
            continue;
        char name[64];
        llmux__provider_text(name, sizeof name, c->string, strlen(c->string), secret);
        int n = snprintf(cats + used, sizeof cats - used, "%s%s", used ? ", " : "", name);
        if (n < 0 || (size_t)n >= sizeof cats - used)
            break;
        used += (size_t)n;
    }
    if (!text[0] && !cats[0])
        return;
    size_t ml = strlen(msg);
    snprintf(msg + ml, cap - ml, " [%s%s%s]", text[0] ? text : "innererror", cats[0] ? ": " : "",
             cats);
}

static int azure_classify_error(const lx_provider_cfg *p, const lx_http_response *resp,
                                lx_err *err)
{
    int rc = llmux__openai_ops.classify_error(p, resp, err);
    cJSON *root = resp->body.len ? cJSON_ParseWithLength(resp->body.data, resp->body.len) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    const cJSON *inner = cJSON_IsObject(e) ? cJSON_GetObjectItemCaseSensitive(e, "innererror")
                                           : NULL;
    if (cJSON_IsObject(inner)) {
        describe_inner(inner, p->api_key, err->msg, sizeof err->msg);
        const cJSON *ic = cJSON_GetObjectItemCaseSensitive(inner, "code");
        if (resp->status == 400 && cJSON_IsString(ic) &&
            strcmp(ic->valuestring, "ResponsibleAIPolicyViolation") == 0)
            rc = err->status = LLMUX_ERR_CONTENT_FILTER;
    }
    cJSON_Delete(root);
    return rc;
}

/* ---------------------------------------------------------------- streaming */

typedef struct azure_stream {
    void *inner; /* the OpenAI decoder */
    lx_chunk_sink_cb sink;
    void *ctx;
    int oom;
} azure_stream;

static void *azure_stream_new(const lx_provider_cfg *p)
{
    azure_stream *s = calloc(1, sizeof *s);
    if (s && !(s->inner = llmux__openai_ops.stream_new(p))) {
        free(s);
        return NULL;
    }
    return s;
}

/* Azure's chunks in OpenAI's shape: the prompt-filter chunk (no choices, no
 * usage) is dropped; a choice without a delta gets an empty one. */
static int azure_sink(void *ctx, const char *json, size_t len, cJSON *parsed)
{
    azure_stream *s = ctx;
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(parsed, "choices");
    if ((!cJSON_IsArray(choices) || !choices->child) &&
        !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(parsed, "usage")))
        return 0;
    int bare = 0;
    for (const cJSON *c = cJSON_IsArray(choices) ? choices->child : NULL; c; c = c->next)
        bare |= cJSON_IsObject(c) && !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(c, "delta"));
    if (!bare)
        return s->sink(s->ctx, json, len, parsed);
    cJSON *copy = cJSON_Duplicate(parsed, 1);
    cJSON *arr = cJSON_GetObjectItemCaseSensitive(copy, "choices");
    for (cJSON *c = arr ? arr->child : NULL; c; c = c->next) {
        if (!cJSON_IsObject(c) || cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(c, "delta")))
            continue;
        cJSON *d = cJSON_CreateObject();
        cJSON_DeleteItemFromObjectCaseSensitive(c, "delta");
        if (!d || !cJSON_AddItemToObject(c, "delta", d)) {
            cJSON_Delete(d);
            cJSON_Delete(copy);
            copy = NULL;
            break;
        }
    }
    char *text = copy ? cJSON_PrintUnformatted(copy) : NULL;
    int stop = 1;
    if (text)
        stop = s->sink(s->ctx, text, strlen(text), copy);
    else
        s->oom = 1;
    free(text);
    cJSON_Delete(copy);
    return stop;
}

static int azure_stream_feed(void *st, const char *data, size_t len, lx_chunk_sink_cb sink,
                             void *ctx, lx_err *err)
{
    azure_stream *s = st;
    s->sink = sink;
    s->ctx = ctx;
    int rc = llmux__openai_ops.stream_feed(s->inner, data, len, azure_sink, s, err);
    if (s->oom)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    return rc == LX_STREAM_END ? rc : content_filter_refined(rc, err);
}

static int azure_stream_finish(void *st, lx_err *err)
{
    azure_stream *s = st;
    return content_filter_refined(llmux__openai_ops.stream_finish(s->inner, err), err);
}

static void azure_stream_free(void *st)
{
    azure_stream *s = st;
    if (!s)
        return;
    llmux__openai_ops.stream_free(s->inner);
    free(s);
}

const lx_provider_ops llmux__azure_ops = {
    .type = "azure",
    .default_base_url = NULL, /* https://RESOURCE.openai.azure.com, from the config */
    .config_keys = AZURE_KEYS,
    .configure = azure_configure,
    .release = azure_release,
    .build_request = azure_build_request,
    .parse_response = azure_parse_response,
    .classify_error = azure_classify_error,
    .stream_new = azure_stream_new,
    .stream_feed = azure_stream_feed,
    .stream_finish = azure_stream_finish,
    .stream_free = azure_stream_free,
};
