#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"

int llmux__buf_reserve(lx_buf *b, size_t extra)
{
    if (extra > (size_t)-1 - b->len - 1)
        return -2;
    size_t need = b->len + extra + 1;
    if (b->limit && need > b->limit + 1)
        return -2;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int llmux__buf_append(lx_buf *b, const void *data, size_t len)
{
    int rc = llmux__buf_reserve(b, len);
    if (rc)
        return rc;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int llmux__buf_puts(lx_buf *b, const char *s)
{
    return llmux__buf_append(b, s, strlen(s));
}

int llmux__buf_printf(lx_buf *b, const char *fmt, ...)
{
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof small)
        return llmux__buf_append(b, small, (size_t)n);
    int rc = llmux__buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int llmux__buf_json_string(lx_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (llmux__buf_append(b, "\"", 1))
        return -1;
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    const unsigned char *run = p;
    for (; *p; p++) {
        unsigned char c = *p;
        if (c >= 0x80) {
            /* a NUL ends a sequence early, so no byte past it is read */
            size_t n = llmux__utf8_seq(p, 4);
            if (n) {
                p += n - 1;
                continue;
            }
            /* not UTF-8 (text from outside, or a cut): U+FFFD for the byte */
            if ((p > run && llmux__buf_append(b, run, (size_t)(p - run))) ||
                llmux__buf_append(b, "\\ufffd", 6))
                return -1;
            run = p + 1;
            continue;
        }
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (p > run && llmux__buf_append(b, run, (size_t)(p - run)))
            return -1;
        char esc[7] = {'\\', 0, 0, 0, 0, 0, 0};
        size_t n = 2;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u'; esc[2] = '0'; esc[3] = '0';
            esc[4] = hex[c >> 4]; esc[5] = hex[c & 15];
            n = 6;
        }
        if (llmux__buf_append(b, esc, n))
            return -1;
        run = p + 1;
    }
    if (p > run && llmux__buf_append(b, run, (size_t)(p - run)))
        return -1;
    return llmux__buf_append(b, "\"", 1);
}

char *llmux__buf_steal(lx_buf *b)
{
    char *p = b->data;
    if (!p)
        p = calloc(1, 1);
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void llmux__buf_clear(lx_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void llmux__buf_free(lx_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int llmux__buf_int(lx_buf *b, long long v)
{
    char tmp[24], *p = tmp + sizeof tmp;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--p = '-';
    return llmux__buf_append(b, p, (size_t)(tmp + sizeof tmp - p));
}
