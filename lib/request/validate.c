#include "request/validate.h"
#include "wire/json_check.h"
#include "wire/json_members.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "core/text.h"

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

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A top-level key that appears twice (compared as cJSON unescaped it), or
 * NULL; *oom set when the sort could not get its memory. */
static const char *duplicate_key(const cJSON *obj, int *oom)
{
    const char *small[64], **keys = small;
    size_t n = 0;
    for (const cJSON *it = obj->child; it; it = it->next)
        n++;
    if (n > sizeof small / sizeof small[0] && !(keys = malloc(n * sizeof *keys))) {
        *oom = 1;
        return NULL;
    }
    n = 0;
    for (const cJSON *it = obj->child; it; it = it->next)
        keys[n++] = it->string;
    qsort(keys, n, sizeof *keys, cmp_key);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (strcmp(keys[i - 1], keys[i]) == 0)
            dup = keys[i];
    if (keys != small)
        free(keys);
    return dup;
}

int llmux__request_parse(const char *json, size_t len, cJSON **out, const char **model,
                         lx_err *err)
{
    *out = NULL;
    /* the strict check first: cJSON takes control bytes for whitespace, raw
     * control characters in strings, leading zeros and invalid UTF-8 */
    size_t off = 0;
    int syntax = llmux__json_check(json, len, &off);
    if (syntax == LLMUX_JSON_DEPTH)
        return BAD("request: nested more than %d levels deep", LLMUX_JSON_MAX_DEPTH);
    if (syntax == LLMUX_JSON_UTF8)
        return BAD("request: not valid UTF-8 (error at byte %zu)", off);
    if (syntax != LLMUX_JSON_OK)
        return BAD("request: not valid JSON (error at byte %zu)", off);
    cJSON *req = cJSON_ParseWithLength(json, len);
    if (!req) /* the text is valid: cJSON ran out of memory */
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    int rc = LLMUX_OK;
    if (!cJSON_IsObject(req)) {
        rc = BAD("request: expected a JSON object");
        goto fail;
    }
    int oom = 0;
    const char *dup = duplicate_key(req, &oom);
    if (oom) {
        rc = llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
        goto fail;
    }
    if (dup) { /* {"model":"cheap","model":"o1-pro"} would route one and send the other */
        char key[64];
        llmux__sanitize_text(key, sizeof key, dup, strlen(dup));
        rc = BAD("request: duplicate key \"%s\" (each top-level key may appear once)", key);
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

/* ------------------------------------------------------------ the fast path */


/* A string value without escapes: its bytes (between the quotes) in *out. */
static int plain_string(const char *s, size_t value, size_t end, const char **out, size_t *len)
{
    if (end - value < 2 || s[value] != '"' || memchr(s + value, '\\', end - value))
        return 0;
    *out = s + value + 1;
    *len = end - value - 2;
    return 1;
}

static int role_ok(const char *r, size_t n)
{
    static const char *const roles[] = {"system", "developer", "user", "assistant", "tool",
                                        "function", NULL};
    for (const char *const *p = roles; *p; p++)
        if (strlen(*p) == n && memcmp(*p, r, n) == 0)
            return 1;
    return 0;
}

/* 1 when the message object's members are valid by the rules of
 * llmux__request_parse; 0 when unsure (the slow path decides). */
static int message_ok(const char *s, const lx_json_member *m, int n)
{
    const char *role = NULL;
    size_t role_len = 0;
    int roles = 0, contents = 0;
    char content = 0;
    for (int i = 0; i < n; i++) {
        if (m[i].key_escaped)
            return 0;
        if (llmux__json_key_is(&m[i], "role", 4)) {
            roles++;
            if (!plain_string(s, m[i].value, m[i].end, &role, &role_len))
                return 0;
        } else if (llmux__json_key_is(&m[i], "content", 7)) {
            contents++;
            content = s[m[i].value];
        }
    }
    if (roles != 1 || contents > 1 || !role_ok(role, role_len))
        return 0;
    if (!contents)
        return role_len == 9 && memcmp(role, "assistant", 9) == 0;
    return content == '"' || content == '[' || content == 'n';
}

/* The messages array, walked once: each element must be a message object. */
static int messages_ok(const char *s, size_t value, size_t end)
{
    lx_json_member m[32];
    size_t i = value + 1; /* past '[' (the value starts with it, or the walk fails) */
    if (s[value] != '[')
        return 0;
    for (int count = 0;; count++) {
        size_t obj_end = 0;
        int n = llmux__json_members_at(s, i, end, m, 32, &obj_end);
        if (n < 0 || !message_ok(s, m, n))
            return 0; /* also an empty array: the slow path words the error */
        i = obj_end;
        while (i < end && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
            i++;
        if (i < end && s[i] == ',') {
            i++;
            continue;
        }
        return i < end && s[i] == ']' && count < 100000;
    }
}

static int fast_validate(lx_request *r, const char *s, size_t len)
{
    lx_json_member *m = r->members;
    int n = -1;
    if (llmux__json_check_members(s, len, NULL, m, LLMUX_REQUEST_MEMBERS, &n) != LLMUX_JSON_OK ||
        n <= 0)
        return 0;
    int models = 0, messages = 0;
    for (int i = 0; i < n; i++) {
        if (m[i].key_escaped)
            return 0;
        if (llmux__json_key_is(&m[i], "model", 5)) {
            const char *v;
            size_t vlen;
            if (models++ || !plain_string(s, m[i].value, m[i].end, &v, &vlen) || vlen == 0 ||
                vlen >= sizeof r->model_buf || memchr(v, '\0', vlen))
                return 0;
            memcpy(r->model_buf, v, vlen);
            r->model_buf[vlen] = '\0';
        } else if (llmux__json_key_is(&m[i], "messages", 8)) {
            if (messages++ || !messages_ok(s, m[i].value, m[i].end))
                return 0;
        } else if (llmux__json_key_is(&m[i], "stream", 6)) {
            char c = s[m[i].value];
            if (c != 't' && c != 'f' && c != 'n')
                return 0;
        }
    }
    if (models != 1 || messages != 1)
        return 0;
    for (int i = 1; i < n; i++) /* a duplicate key: the tree path words the error */
        for (int j = 0; j < i; j++)
            if (m[i].key_len == m[j].key_len && memcmp(m[i].key, m[j].key, m[i].key_len) == 0)
                return 0;
    r->model = r->model_buf;
    r->n_members = n;
    return 1;
}

int llmux__request_init(lx_request *r, const char *json, size_t len, lx_err *err)
{
    r->raw = json;
    r->raw_len = len;
    r->tree = NULL;
    r->model = NULL;
    r->n_members = -1;
    if (fast_validate(r, json, len))
        return LLMUX_OK;
    r->n_members = -1;
    return llmux__request_parse(json, len, &r->tree, &r->model, err);
}
