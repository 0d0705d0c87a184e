#include "engine/request.h"
#include "wire/json_check.h"

#include <cjson/cJSON.h>
#include <string.h>

#define BAD(...) (err->http_status = 400, llmux__err(err, LLMUX_ERR_BAD_REQUEST, __VA_ARGS__))

static int valid_role(const char *r)
{
    static const char *const roles[] = {"system", "developer", "user", "assistant", "tool",
                                        "function", NULL};
    for (const char *const *p = roles; *p; p++)
        if (strcmp(*p, r) == 0)
            return 1;
    return 0;
}

int llmux__request_parse(const char *json, size_t len, cJSON **out, const char **model,
                         llmux_err *err)
{
    *out = NULL;
    const char *end = NULL;
    cJSON *req = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!req || (end && end < json + len && llmux__json_check(json, len, NULL) != LLMUX_JSON_OK)) {
        /* cJSON cannot tell bad syntax from a failed allocation: ask again */
        cJSON_Delete(req);
        size_t off = 0;
        int syntax = llmux__json_check(json, len, &off);
        if (syntax == LLMUX_JSON_DEPTH)
            return BAD("request: nested more than %d levels deep", LLMUX_JSON_MAX_DEPTH);
        if (syntax != LLMUX_JSON_OK)
            return BAD("request: not valid JSON (error at byte %zu)", off);
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    }
    int rc = LLMUX_OK;
    if (!cJSON_IsObject(req)) {
        rc = BAD("request: expected a JSON object");
        goto fail;
    }
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(req, "model");
    if (!cJSON_IsString(m) || !m->valuestring[0]) {
        rc = BAD("request.model: required, a non-empty string");
        goto fail;
    }
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(req, "messages");
    if (!cJSON_IsArray(msgs) || !msgs->child) {
        rc = BAD("request.messages: required, a non-empty array");
        goto fail;
    }
    int i = 0;
    for (const cJSON *msg = msgs->child; msg; msg = msg->next, i++) {
        if (!cJSON_IsObject(msg)) {
            rc = BAD("request.messages[%d]: expected an object", i);
            goto fail;
        }
        const cJSON *role = cJSON_GetObjectItemCaseSensitive(msg, "role");
        if (!cJSON_IsString(role) || !valid_role(role->valuestring)) {
            rc = BAD("request.messages[%d].role: required, one of system, developer, user, "
                     "assistant, tool",
                     i);
            goto fail;
        }
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
        if (content && !cJSON_IsString(content) && !cJSON_IsArray(content) &&
            !cJSON_IsNull(content)) {
            rc = BAD("request.messages[%d].content: expected a string or an array", i);
            goto fail;
        }
        if (!content && strcmp(role->valuestring, "assistant") != 0) {
            rc = BAD("request.messages[%d].content: required", i);
            goto fail;
        }
    }
    const cJSON *stream = cJSON_GetObjectItemCaseSensitive(req, "stream");
    if (stream && !cJSON_IsBool(stream) && !cJSON_IsNull(stream)) {
        rc = BAD("request.stream: expected true or false");
        goto fail;
    }
    *out = req;
    *model = m->valuestring;
    return LLMUX_OK;
fail:
    cJSON_Delete(req);
    return rc;
}
