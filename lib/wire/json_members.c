#include "wire/json_members.h"
#include "wire/json_scan.h"

#define MAX_DEPTH 512

LLMUX_JSON_INLINE size_t skip_ws(const char *s, size_t i, size_t len)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
        i++;
    return i;
}

/* s[i] is '"': returns the offset past the closing quote, or 0. */
LLMUX_JSON_INLINE size_t skip_string(const char *s, size_t i, size_t len, int *escaped)
{
    for (i++; (i = llmux__json_plain_run(s, i, len)) < len; i++) {
        if (s[i] == '\\') {
            if (escaped)
                *escaped = 1;
            i++;
        } else if (s[i] == '"') {
            return i + 1;
        }
        /* a control character: the check already judged the text; skip it */
    }
    return 0;
}

/* Returns the offset past the value starting at s[i], or 0. */
static size_t skip_value(const char *s, size_t i, size_t len)
{
    int depth = 0;
    do {
        if (i >= len)
            return 0;
        char c = s[i];
        if (c == '"') {
            i = skip_string(s, i, len, NULL);
            if (!i)
                return 0;
        } else if (c == '{' || c == '[') {
            if (++depth > MAX_DEPTH)
                return 0;
            i++;
        } else if (c == '}' || c == ']') {
            if (--depth < 0)
                return 0;
            i++;
        } else if (depth > 0) {
            i++; /* separators, whitespace, scalars inside a container */
        } else {
            /* a top-level scalar: number, true, false, null */
            while (i < len && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' &&
                   s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
                i++;
            return i;
        }
    } while (depth > 0);
    return i;
}

int llmux__json_members_at(const char *s, size_t i, size_t len, lx_json_member *out, int max,
                           size_t *end)
{
    i = skip_ws(s, i, len);
    if (i >= len || s[i] != '{')
        return -1;
    i = skip_ws(s, i + 1, len);
    int n = 0;
    if (i < len && s[i] == '}') {
        *end = i + 1;
        return 0;
    }
    for (;;) {
        if (i >= len || s[i] != '"' || n >= max)
            return -1;
        lx_json_member *m = &out[n];
        m->start = i;
        m->key = s + i + 1;
        m->key_escaped = 0;
        size_t k = skip_string(s, i, len, &m->key_escaped);
        if (!k)
            return -1;
        m->key_len = k - i - 2;
        i = skip_ws(s, k, len);
        if (i >= len || s[i] != ':')
            return -1;
        i = skip_ws(s, i + 1, len);
        m->value = i;
        i = skip_value(s, i, len);
        if (!i)
            return -1;
        m->end = i;
        n++;
        i = skip_ws(s, i, len);
        if (i < len && s[i] == ',') {
            i = skip_ws(s, i + 1, len);
            continue;
        }
        if (i < len && s[i] == '}') {
            *end = i + 1;
            return n;
        }
        return -1;
    }
}

int llmux__json_members(const char *s, size_t len, lx_json_member *out, int max)
{
    size_t end = 0;
    int n = llmux__json_members_at(s, 0, len, out, max, &end);
    /* only whitespace may follow the object */
    if (n >= 0 && skip_ws(s, end, len) != len)
        return -1;
    return n;
}
