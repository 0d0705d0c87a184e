#include "wire/json_check.h"
#include "core/utf8.h"
#include "wire/json_scan.h"

#include <string.h>

typedef struct scan {
    const char *s;
    size_t len, i;
    int bad; /* LLMUX_JSON_UTF8 when that is why the scan stopped */
} scan;

LLMUX_JSON_INLINE void ws(scan *c)
{
    while (c->i < c->len) {
        char ch = c->s[c->i];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
            break;
        c->i++;
    }
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* The code unit of \uXXXX with c->i on the 'u'; c->i ends on its last digit.
 * -1 (c->i on the offending byte) when a digit is missing. */
static long escape_unit(scan *c)
{
    long v = 0;
    for (int k = 1; k <= 4; k++) {
        int d = c->i + (size_t)k < c->len ? hexval(c->s[c->i + (size_t)k]) : -1;
        if (d < 0) {
            c->i += (size_t)k;
            return -1;
        }
        v = v * 16 + d;
    }
    c->i += 4;
    return v;
}

/* \uXXXX with c->i on the 'u': a surrogate must come as a high-low pair, as
 * it does in UTF-16 (cJSON refuses lone ones too). */
static int unicode_escape(scan *c)
{
    size_t at = c->i - 1; /* the backslash */
    long u = escape_unit(c);
    if (u < 0)
        return -1;
    if (u >= 0xdc00 && u <= 0xdfff)
        goto lone;
    if (u >= 0xd800 && u <= 0xdbff) {
        if (c->i + 2 >= c->len || c->s[c->i + 1] != '\\' || c->s[c->i + 2] != 'u')
            goto lone;
        c->i += 2;
        long lo = escape_unit(c);
        if (lo < 0)
            return -1;
        if (lo < 0xdc00 || lo > 0xdfff)
            goto lone;
    }
    return 0;
lone:
    c->i = at;
    c->bad = LLMUX_JSON_UTF8;
    return -1;
}

LLMUX_JSON_INLINE int string(scan *c)
{
    c->i++; /* opening quote */
    while ((c->i = llmux__json_run(c->s, c->i, c->len, 1)) < c->len) {
        unsigned char ch = (unsigned char)c->s[c->i];
        if (ch == '"') {
            c->i++;
            return 0;
        }
        if (ch >= 0x80) {
            size_t n = llmux__utf8_seq((const unsigned char *)c->s + c->i, c->len - c->i);
            if (!n) {
                c->bad = LLMUX_JSON_UTF8;
                return -1;
            }
            c->i += n;
            continue;
        }
        if (ch < 0x20)
            return -1;
        if (ch == '\\') {
            if (++c->i >= c->len)
                return -1;
            ch = (unsigned char)c->s[c->i];
            if (ch == 'u') {
                if (unicode_escape(c))
                    return -1;
            } else if (!strchr("\"\\/bfnrt", ch) || ch == 0) {
                return -1;
            }
        }
        c->i++;
    }
    return -1;
}

static int digits(scan *c)
{
    size_t start = c->i;
    while (c->i < c->len && c->s[c->i] >= '0' && c->s[c->i] <= '9')
        c->i++;
    return c->i > start ? 0 : -1;
}

static int number(scan *c)
{
    if (c->s[c->i] == '-')
        c->i++;
    if (c->i < c->len && c->s[c->i] == '0')
        c->i++;
    else if (digits(c))
        return -1;
    if (c->i < c->len && c->s[c->i] == '.') {
        c->i++;
        if (digits(c))
            return -1;
    }
    if (c->i < c->len && (c->s[c->i] == 'e' || c->s[c->i] == 'E')) {
        c->i++;
        if (c->i < c->len && (c->s[c->i] == '+' || c->s[c->i] == '-'))
            c->i++;
        if (digits(c))
            return -1;
    }
    return 0;
}

static int literal(scan *c, const char *word)
{
    size_t n = strlen(word);
    for (size_t k = 0; k < n; k++, c->i++)
        if (c->i >= c->len || c->s[c->i] != word[k])
            return -1;
    return 0;
}

/* One scalar or the opening of a container; *opened is '{' or '[' then. */
LLMUX_JSON_INLINE int value_start(scan *c, char *opened)
{
    *opened = 0;
    if (c->i >= c->len)
        return -1;
    switch (c->s[c->i]) {
    case '{': case '[': *opened = c->s[c->i++]; return 0;
    case '"': return string(c);
    case 't': return literal(c, "true");
    case 'f': return literal(c, "false");
    case 'n': return literal(c, "null");
    default:
        if (c->s[c->i] == '-' || (c->s[c->i] >= '0' && c->s[c->i] <= '9'))
            return number(c);
        return -1;
    }
}

int llmux__json_check(const char *s, size_t len, size_t *err_off)
{
    return llmux__json_check_members(s, len, err_off, NULL, 0, NULL);
}

int llmux__json_check_members(const char *s, size_t len, size_t *err_off, lx_json_member *m,
                              int max, int *n_members)
{
    char stack[LLMUX_JSON_MAX_DEPTH + 1];
    int depth = 0;
    scan c = {s, len, 0, 0};
    int rc = LLMUX_JSON_SYNTAX;
    char opened;
    int n = 0, pending = 0; /* a top-level member's value is being read */
    ws(&c);
    int is_object = c.i < len && s[c.i] == '{';
    if (value_start(&c, &opened))
        goto done;
    if (opened)
        stack[depth++] = opened;
    while (depth > 0) {
        char top = stack[depth - 1];
        ws(&c);
        if (c.i >= len)
            goto done;
        /* an empty container, or the end after a member */
        if ((top == '{' && s[c.i] == '}') || (top == '[' && s[c.i] == ']')) {
            c.i++;
            depth--;
            goto after_value;
        }
        if (top == '{') {
            size_t key = c.i;
            if (s[c.i] != '"' || string(&c))
                goto done;
            if (m && depth == 1 && n < max) {
                m[n].start = key;
                m[n].key = s + key + 1;
                m[n].key_len = c.i - key - 2;
                m[n].key_escaped = memchr(s + key + 1, '\\', m[n].key_len) != NULL;
                pending = 1;
            } else if (depth == 1) {
                n = max + 1; /* too many to record */
            }
            ws(&c);
            if (c.i >= len || s[c.i] != ':')
                goto done;
            c.i++;
            ws(&c);
            if (pending && depth == 1)
                m[n].value = c.i;
        }
        if (value_start(&c, &opened))
            goto done;
        if (opened) {
            if (depth >= LLMUX_JSON_MAX_DEPTH) {
                rc = LLMUX_JSON_DEPTH;
                goto done;
            }
            stack[depth++] = opened;
            continue;
        }
    after_value:
        if (depth == 1 && pending) {
            m[n++].end = c.i;
            pending = 0;
        }
        if (depth == 0)
            break;
        ws(&c);
        if (c.i >= len)
            goto done;
        top = stack[depth - 1];
        if (s[c.i] == ',') {
            c.i++;
            ws(&c);
            /* a closing bracket right after a comma is an error */
            if (c.i < len && (s[c.i] == '}' || s[c.i] == ']'))
                goto done;
            continue;
        }
        if ((top == '{' && s[c.i] == '}') || (top == '[' && s[c.i] == ']')) {
            c.i++;
            depth--;
            goto after_value;
        }
        goto done;
    }
    ws(&c);
    if (c.i == len)
        rc = LLMUX_JSON_OK;
    if (n_members)
        *n_members = (!is_object || n > max) ? -1 : n;
done:
    if (rc == LLMUX_JSON_SYNTAX && c.bad)
        rc = c.bad;
    if (rc != LLMUX_JSON_OK && err_off)
        *err_off = c.i;
    return rc;
}
