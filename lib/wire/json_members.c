#include "wire/json_members.h"
#include "wire/json_scan.h"


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
            if (++depth > LLMUX_JSON_MAX_DEPTH)
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

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

size_t llmux__json_unescape_one(const char *s, size_t len, char out[4], size_t *n_out)
{
    *n_out = 0;
    if (len < 2 || s[0] != '\\')
        return 0;
    const char *simple = "\"\"\\\\//b\bf\fn\nr\rt\t";
    for (const char *p = simple; *p; p += 2)
        if (s[1] == p[0]) {
            out[0] = p[1];
            *n_out = 1;
            return 2;
        }
    unsigned cp;
    if (s[1] != 'u' || len < 6 || !hex4(s + 2, &cp))
        return 0;
    size_t used = 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        unsigned lo;
        if (len < 12 || s[6] != '\\' || s[7] != 'u' || !hex4(s + 8, &lo) || lo < 0xDC00 ||
            lo > 0xDFFF)
            return 0;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        used = 12;
    } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return 0;
    }
    if (cp < 0x80) {
        out[0] = (char)cp;
        *n_out = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        *n_out = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        *n_out = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        *n_out = 4;
    }
    return used;
}

int llmux__json_key_equals(const char *s, const lx_json_member *m, const char *key)
{
    if (!m->key_escaped) {
        size_t n = strlen(key);
        return m->key_len == n && memcmp(m->key, key, n) == 0;
    }
    const char *k = m->key, *end = m->key + m->key_len;
    (void)s;
    while (k < end) {
        if (*k != '\\') {
            if (!*key || *key++ != *k++)
                return 0;
            continue;
        }
        char buf[4];
        size_t nb;
        size_t used = llmux__json_unescape_one(k, (size_t)(end - k), buf, &nb);
        if (!used)
            return 0;
        for (size_t i = 0; i < nb; i++)
            if (!*key || *key++ != buf[i])
                return 0;
        k += used;
    }
    return *key == '\0';
}
