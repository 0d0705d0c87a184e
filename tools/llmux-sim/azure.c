/* azure.c - Azure OpenAI in llmux-sim: its two routes (deployments with an
 * api-version, and v1), the api-key header, and the Azure shapes of answers,
 * streams and errors. The chat logic is chat.c's; this file only reshapes. */
#include "azure.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "faults.h"

static const char CFR_SAFE[] =
    "{\"hate\":{\"filtered\":false,\"severity\":\"safe\"},"
    "\"self_harm\":{\"filtered\":false,\"severity\":\"safe\"},"
    "\"sexual\":{\"filtered\":false,\"severity\":\"safe\"},"
    "\"violence\":{\"filtered\":false,\"severity\":\"safe\"}}";

static int starts(const char *p, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n >= l && memcmp(p, lit, l) == 0;
}

/* The value of api-version in the query, or NULL; its length in *len. */
static const char *api_version(const char *q, size_t n, size_t *len)
{
    size_t i = 0;
    while (i < n) {
        size_t e = i;
        while (e < n && q[e] != '&')
            e++;
        if (starts(q + i, e - i, "api-version=")) {
            *len = e - i - 12;
            return q + i + 12;
        }
        i = e + 1;
    }
    return NULL;
}

static int answer(sim_conn *c, int status, int keep, const char *body)
{
    return sim_respond(c, status, "application/json", body, strlen(body), keep, NULL) == 0 && keep;
}

int sim_azure_route(sim_conn *c, const sim_request *r, sim_request *az, char *auth_buf,
                    const char **dep, size_t *dep_len, int *keep)
{
    const char *p = r->path, *at = p;
    size_t n = r->path_len;
    /* "/openai/..." is the deployment "default"; "/{dep}/openai/..." names one */
    if (!starts(p, n, "/openai/")) {
        at = n > 1 ? memchr(p + 1, '/', n - 1) : NULL;
        if (!at || !sim_name_valid(p + 1, (size_t)(at - p - 1)) ||
            !starts(at, n - (size_t)(at - p), "/openai/"))
            return 0;
    }
    const char *rest = at + 8;
    size_t rn = n - (size_t)(rest - p);
    static const char tail[] = "/chat/completions";
    const size_t tl = sizeof tail - 1;
    int v1 = rn == 2 + tl && starts(rest, rn, "v1/chat/completions");
    if (!v1) {
        if (!starts(rest, rn, "deployments/") || rn <= 12 + tl ||
            memcmp(rest + rn - tl, tail, tl) != 0 ||
            !sim_name_valid(rest + 12, rn - 12 - tl))
            return 0;
    }
    size_t vl = 0;
    const char *v = api_version(r->query, r->query_len, &vl);
    *keep = r->keep_alive;
    if (!v1 && (!v || !vl)) {
        *keep = answer(c, 404, *keep, "{\"error\":{\"code\":\"404\",\"message\":\"Resource not found\"}}");
        return 2;
    }
    if (v1 && v && !((vl == 7 && !memcmp(v, "preview", 7)) || (vl == 6 && !memcmp(v, "latest", 6)))) {
        *keep = answer(c, 400, *keep,
                       "{\"error\":{\"code\":\"BadRequest\",\"message\":\"api-version query "
                       "parameter is not allowed when using /v1 path\"}}");
        return 2;
    }
    *dep = at == p ? "default" : p + 1;
    *dep_len = at == p ? 7 : (size_t)(at - p - 1);
    *az = *r;
    if (r->query_len) /* the deployment records the path with its query */
        az->path_len = (size_t)(r->query + r->query_len - r->path);
    if (r->has_api_key) {
        int m = snprintf(auth_buf, SIM_AZURE_AUTH_MAX, "api-key: %.*s", (int)r->api_key_len,
                         r->api_key);
        az->auth = auth_buf;
        az->auth_len = m < SIM_AZURE_AUTH_MAX ? (size_t)m : SIM_AZURE_AUTH_MAX - 1;
        az->has_auth = 1;
    }
    return 1;
}

/* tree printed into out; 0, or -1 (out of memory: out is failed). */
static int print_into(sim_buf *out, cJSON *tree)
{
    char *s = tree ? cJSON_PrintUnformatted(tree) : NULL;
    if (!s) {
        out->failed = 1;
        return -1;
    }
    sim_buf_puts(out, s);
    cJSON_free(s);
    return 0;
}

static void add_raw(cJSON *o, const char *key, const char *json)
{
    cJSON *v = cJSON_Parse(json);
    if (v && !cJSON_AddItemToObject(o, key, v))
        cJSON_Delete(v);
}

static void add_prompt_filter(cJSON *o)
{
    add_raw(o, "prompt_filter_results",
            "[{\"prompt_index\":0,\"content_filter_results\":{\"hate\":{\"filtered\":false,"
            "\"severity\":\"safe\"},\"jailbreak\":{\"filtered\":false,\"detected\":false},"
            "\"self_harm\":{\"filtered\":false,\"severity\":\"safe\"},\"sexual\":{\"filtered\":"
            "false,\"severity\":\"safe\"},\"violence\":{\"filtered\":false,\"severity\":\"safe\"}}}]");
}

void sim_azure_render_json(sim_buf *out, sim_buf *scratch, const chat_answer *a)
{
    sim_buf_reset(scratch);
    chat_render_json(scratch, a);
    cJSON *o = sim_buf_ok(scratch) ? cJSON_ParseWithLength(scratch->data, scratch->len) : NULL;
    cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "choices"), 0);
    if (ch)
        add_raw(ch, "content_filter_results", CFR_SAFE);
    add_prompt_filter(o);
    print_into(out, o);
    cJSON_Delete(o);
}

static void emit(sim_buf *out, cJSON *chunk, int chunked, size_t *ends, size_t *nev, size_t max)
{
    char *s = chunk ? cJSON_PrintUnformatted(chunk) : NULL;
    if (!s) {
        out->failed = 1;
        return;
    }
    chat_frame_event(out, s, strlen(s), chunked);
    cJSON_free(s);
    if (*nev < max)
        ends[(*nev)++] = out->len;
}

size_t sim_azure_render_stream(sim_buf *out, sim_buf *scratch, const chat_answer *a, int chunked,
                               size_t *ends, size_t max_events)
{
    size_t src_ends[CHAT_STREAM_EVENTS_MAX], nev = 0, content = 0;
    sim_buf src;
    sim_buf_init(&src, out->max);
    size_t n = chat_render_stream(&src, scratch, a, 0, src_ends, CHAT_STREAM_EVENTS_MAX);
    if (!sim_buf_ok(&src) || !sim_buf_ok(scratch)) {
        out->failed = 1;
        sim_buf_free(&src);
        return 0;
    }
    /* first: the prompt filter's verdict, with no choices, id or model */
    cJSON *pf = cJSON_Parse("{\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\"}");
    add_prompt_filter(pf);
    emit(out, pf, chunked, ends, &nev, max_events);
    cJSON_Delete(pf);
    for (size_t i = 0, start = 0; i < n; start = src_ends[i++]) {
        const char *data = src.data + start + 6; /* "data: " */
        size_t len = src_ends[i] - start - 8;    /* without "\n\n" */
        cJSON *ev = cJSON_ParseWithLength(data, len);
        cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ev, "choices"), 0);
        if (!ch) { /* [DONE] and the usage chunk, as they are */
            chat_frame_event(out, data, len, chunked);
            if (nev < max_events)
                ends[nev++] = out->len;
            cJSON_Delete(ev);
            continue;
        }
        const cJSON *fr = cJSON_GetObjectItemCaseSensitive(ch, "finish_reason");
        if (cJSON_IsString(fr)) {
            /* the content filter's annotation of what came: a choice without a delta */
            cJSON *ann = cJSON_Duplicate(ev, 1);
            cJSON *ac = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(ann, "choices"), 0);
            if (ac) {
                cJSON_DeleteItemFromObjectCaseSensitive(ac, "delta");
                cJSON_DeleteItemFromObjectCaseSensitive(ac, "logprobs");
                cJSON_ReplaceItemInObjectCaseSensitive(ac, "finish_reason", cJSON_CreateNull());
                add_raw(ac, "content_filter_results", CFR_SAFE);
                char offs[96];
                snprintf(offs, sizeof offs,
                         "{\"check_offset\":0,\"start_offset\":0,\"end_offset\":%zu}", content);
                add_raw(ac, "content_filter_offsets", offs);
            }
            emit(out, ann, chunked, ends, &nev, max_events);
            cJSON_Delete(ann);
        } else {
            const cJSON *d = cJSON_GetObjectItemCaseSensitive(ch, "delta");
            const cJSON *text = cJSON_GetObjectItemCaseSensitive(d, "content");
            if (cJSON_IsString(text))
                content += strlen(text->valuestring);
            add_raw(ch, "content_filter_results",
                    cJSON_IsString(text) && text->valuestring[0] ? CFR_SAFE : "{}");
        }
        emit(out, ev, chunked, ends, &nev, max_events);
        cJSON_Delete(ev);
    }
    if (chunked)
        sim_buf_puts(out, "0\r\n\r\n");
    sim_buf_free(&src);
    return nev;
}

void sim_azure_error_body(sim_buf *out, int status)
{
    switch (status) {
    case 400:
        sim_buf_puts(out,
                     "{\"error\":{\"message\":\"The response was filtered due to the prompt "
                     "triggering Azure OpenAI's content management policy. Please modify your "
                     "prompt and retry. (simulated)\",\"type\":null,\"param\":\"prompt\",\"code\":"
                     "\"content_filter\",\"status\":400,\"innererror\":{\"code\":"
                     "\"ResponsibleAIPolicyViolation\",\"content_filter_result\":{\"hate\":{"
                     "\"filtered\":true,\"severity\":\"high\"},\"jailbreak\":{\"filtered\":false,"
                     "\"detected\":false},\"self_harm\":{\"filtered\":false,\"severity\":\"safe\"},"
                     "\"sexual\":{\"filtered\":false,\"severity\":\"safe\"},\"violence\":{"
                     "\"filtered\":true,\"severity\":\"medium\"}}}}}");
        return;
    case 401:
        sim_buf_puts(out, "{\"error\":{\"code\":\"401\",\"message\":\"Access denied due to invalid "
                          "subscription key or wrong API endpoint. Make sure to provide a valid "
                          "key for an active subscription and use a correct regional API endpoint "
                          "for your resource.\"}}");
        return;
    case 404:
        sim_buf_puts(out, "{\"error\":{\"code\":\"DeploymentNotFound\",\"message\":\"The API "
                          "deployment for this resource does not exist. (simulated)\"}}");
        return;
    case 429:
        sim_buf_puts(out, "{\"error\":{\"code\":\"429\",\"message\":\"Requests to the "
                          "ChatCompletions_Create Operation under Azure OpenAI API have exceeded "
                          "token rate limit of your current OpenAI S0 pricing tier. Please retry "
                          "after 1 second. (simulated)\"}}");
        return;
    default:
        sim_buf_printf(out, "{\"error\":{\"code\":\"%d\",\"message\":\"simulated Azure error "
                            "(HTTP %d)\"}}", status, status);
        return;
    }
}
