#include "request/request.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

const cJSON *llmux__request_tree(const lx_request *r, lx_err *err)
{
    lx_request *m = (lx_request *)r; /* the cache only: the request itself never changes */
    if (!m->tree && !(m->tree = cJSON_ParseWithLength(r->raw, r->raw_len)))
        llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    return m->tree;
}

static int string_is(const cJSON *v, const char *s)
{
    return cJSON_IsString(v) && strcmp(v->valuestring, s) == 0;
}

static int has_image_part(const cJSON *messages)
{
    const cJSON *msg, *part;
    cJSON_ArrayForEach(msg, messages)
    {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(msg, "content");
        if (!cJSON_IsArray(content))
            continue;
        cJSON_ArrayForEach(part, content)
        {
            if (string_is(cJSON_GetObjectItemCaseSensitive(part, "type"), "image_url"))
                return 1;
        }
    }
    return 0;
}

/* Whether the bytes s[0..n) hold needle. */
static int contains(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (s[i] == needle[0] && memcmp(s + i, needle, k) == 0)
            return 1;
    return 0;
}

/* Top-level member key is an array with an element. */
static int nonempty_array(const lx_request *r, const char *key)
{
    lx_json_member m;
    if (!llmux__request_member(r, key, &m) || r->raw[m.value] != '[')
        return 0;
    size_t i = m.value + 1;
    while (i < m.end && (r->raw[i] == ' ' || r->raw[i] == '\t' || r->raw[i] == '\n' ||
                         r->raw[i] == '\r'))
        i++;
    return i < m.end && r->raw[i] != ']';
}

/* Top-level member key as a number (1: it is one), as cJSON reads it. */
static int number_member(const lx_request *r, const char *key, double *out)
{
    lx_json_member m;
    if (!llmux__request_member(r, key, &m))
        return 0;
    char c = r->raw[m.value];
    if (c != '-' && (c < '0' || c > '9'))
        return 0;
    char buf[64];
    size_t n = m.end - m.value;
    if (n >= sizeof buf)
        return 0; /* no such count: the tree's reading decides */
    memcpy(buf, r->raw + m.value, n);
    buf[n] = '\0';
    *out = strtod(buf, NULL);
    return 1;
}

/* The features from the validated request's top-level members, without the
 * tree: 0, or -1 when only the tree can tell (no members recorded, a
 * response_format, a message that may hold an image part or a \u escape). */
static int features_from_members(const lx_request *r, lx_request_features *f)
{
    lx_json_member m;
    if (r->n_members < 0 || llmux__request_member(r, "response_format", &m))
        return -1;
    if (llmux__request_member(r, "messages", &m) &&
        (contains(r->raw + m.value, m.end - m.value, "image_url") ||
         contains(r->raw + m.value, m.end - m.value, "\\u")))
        return -1;
    f->tools = nonempty_array(r, "tools") || nonempty_array(r, "functions");
    double mt;
    int have = number_member(r, "max_completion_tokens", &mt) ||
               number_member(r, "max_tokens", &mt);
    f->max_output_tokens = have && mt >= 0 && mt < 1e12 ? (int64_t)mt : -1;
    return 0;
}

const lx_request_features *llmux__request_features(const lx_request *r)
{
    lx_request *m = (lx_request *)r;
    if (m->has_features)
        return &m->features;
    lx_request_features *f = &m->features;
    int stream = f->stream;
    memset(f, 0, sizeof *f);
    f->stream = stream;
    const cJSON *t = NULL;
    if (features_from_members(r, f) == 0) {
        /* read from the members: the common, plain request */
    } else if ((t = llmux__request_tree(r, NULL)) != NULL) {
        memset(f, 0, sizeof *f);
        f->stream = stream;
        const cJSON *tools = cJSON_GetObjectItemCaseSensitive(t, "tools");
        const cJSON *fns = cJSON_GetObjectItemCaseSensitive(t, "functions");
        f->tools = (cJSON_IsArray(tools) && tools->child) || (cJSON_IsArray(fns) && fns->child);
        const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(t, "messages");
        f->images = has_image_part(msgs);
        const cJSON *rf = cJSON_GetObjectItemCaseSensitive(t, "response_format");
        const cJSON *type = cJSON_IsObject(rf) ? cJSON_GetObjectItemCaseSensitive(rf, "type") : NULL;
        f->json_schema = string_is(type, "json_schema");
        f->json_object = string_is(type, "json_object");
        const cJSON *mt = cJSON_GetObjectItemCaseSensitive(t, "max_completion_tokens");
        if (!cJSON_IsNumber(mt))
            mt = cJSON_GetObjectItemCaseSensitive(t, "max_tokens");
        f->max_output_tokens = cJSON_IsNumber(mt) && mt->valuedouble >= 0 && mt->valuedouble < 1e12
                                   ? (int64_t)mt->valuedouble
                                   : -1;
    } else {
        f->max_output_tokens = -1;
    }
    lx_json_member msgs;
    size_t bytes = llmux__request_member(r, "messages", &msgs) ? msgs.end - msgs.value : r->raw_len;
    f->est_prompt_tokens = (int64_t)((bytes + 3) / 4);
    m->has_features = 1; /* without a tree (out of memory) the text-only figures stand */
    return f;
}

int llmux__request_member(const lx_request *r, const char *key, lx_json_member *out)
{
    if (r->n_members >= 0) {
        for (int i = 0; i < r->n_members; i++)
            if (llmux__json_key_equals(r->raw, &r->members[i], key)) {
                *out = r->members[i];
                return 1;
            }
        return 0;
    }
    /* validation took the tree path (many members, escaped keys): scan again */
    int max = 4096, found = 0;
    lx_json_member *m = malloc((size_t)max * sizeof *m);
    int n = m ? llmux__json_members(r->raw, r->raw_len, m, max) : -1;
    for (int i = 0; i < n && !found; i++)
        if (llmux__json_key_equals(r->raw, &m[i], key)) {
            *out = m[i];
            found = 1;
        }
    free(m);
    return found;
}

void llmux__request_free(lx_request *r)
{
    cJSON_Delete(r->tree);
    r->tree = NULL;
}
