#include "providers/classify.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "core/utf8.h"
#include "llmux.h"

int llmux__status_for_http(long s)
{
    switch (s) {
    case 400: case 413: case 422: return LLMUX_ERR_BAD_REQUEST;
    case 401: return LLMUX_ERR_AUTH;
    case 403: return LLMUX_ERR_PERMISSION;
    case 404: return LLMUX_ERR_NOT_FOUND;
    case 408: return LLMUX_ERR_TIMEOUT;
    case 409: return LLMUX_ERR_PROVIDER;
    case 429: return LLMUX_ERR_RATE_LIMIT;
    default: break;
    }
    if (s >= 500 && s <= 599)
        return LLMUX_ERR_PROVIDER;
    if (s >= 400 && s <= 499)
        return LLMUX_ERR_BAD_REQUEST;
    return LLMUX_ERR_BAD_RESPONSE;
}

static int contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && tolower((unsigned char)hay[i]) == needle[i])
            i++;
        if (i == n)
            return 1;
    }
    return 0;
}

int llmux__is_context_overflow(const char *m)
{
    static const char *const phrases[] = {
        "context_length_exceeded",
        "maximum context length",
        "prompt is too long",
        "exceed context limit",
        "input is too long",
        "exceeds the maximum number of tokens allowed",
        "too many total text bytes",
        "context window",
        NULL,
    };
    if (!m)
        return 0;
    for (const char *const *p = phrases; *p; p++)
        if (contains_ci(m, *p))
            return 1;
    return 0;
}


#define PARTIAL_KEY_MIN 8

void llmux__provider_text(char *out, size_t cap, const char *in, size_t len, const char *secret)
{
    size_t klen = secret ? strlen(secret) : 0;
    if (klen < 4 || !len) {
        llmux__sanitize_text(out, cap, in, len);
        return;
    }
    /* mask only what can reach the output: the sanitiser stops at a NUL or cap-1 bytes,
     * but a key may straddle that point, so look at everything that starts before it */
    size_t span = len;
    const char *nul = memchr(in, '\0', len);
    if (nul)
        span = (size_t)(nul - in);
    char *tmp = malloc(span + 1);
    if (!tmp) {
        if (cap)
            snprintf(out, cap, "(provider text withheld: out of memory)");
        return;
    }
    memcpy(tmp, in, span);
    size_t min = klen < PARTIAL_KEY_MIN ? klen : PARTIAL_KEY_MIN;
    for (size_t i = 0; i < span;) {
        size_t m = 0;
        while (m < klen && i + m < span && tmp[i + m] == secret[m])
            m++;
        if (m >= min) {
            memset(tmp + i, '*', m);
            i += m;
        } else {
            i++;
        }
    }
    llmux__sanitize_text(out, cap, tmp, span);
    free(tmp);
}

long llmux__token_count(double d)
{
    /* !(d >= 0) also catches NaN; the bound keeps the cast defined */
    if (!(d >= 0) || d > LLMUX_MAX_TOKENS || d != (double)(long long)d)
        return -1;
    return (long)d;
}

/* A count member of obj into *slot: the count, or -1 (absent, null, absurd). */
static void read_count(const cJSON *obj, const char *key, int64_t *slot, int64_t *absurd)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v))
        return;
    long n = cJSON_IsNumber(v) ? llmux__token_count(v->valuedouble) : -1;
    if (n < 0)
        *absurd = 1;
    *slot = n;
}

void llmux__usage_from_openai(const cJSON *usage, lx_usage *u)
{
    if (!cJSON_IsObject(usage))
        return;
    read_count(usage, "prompt_tokens", &u->prompt_tokens, &u->absurd);
    read_count(usage, "completion_tokens", &u->completion_tokens, &u->absurd);
    read_count(usage, "total_tokens", &u->total_tokens, &u->absurd);
    const cJSON *pd = cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens_details");
    if (cJSON_IsObject(pd)) {
        read_count(pd, "cached_tokens", &u->cached_tokens, &u->absurd);
        read_count(pd, "cache_write_tokens", &u->cache_write_tokens, &u->absurd);
        read_count(pd, "cache_write_1h_tokens", &u->cache_write_1h_tokens, &u->absurd);
    }
    const cJSON *cd = cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens_details");
    if (cJSON_IsObject(cd))
        read_count(cd, "reasoning_tokens", &u->reasoning_tokens, &u->absurd);
}
