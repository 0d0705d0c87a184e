#include "core/http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void llmux__http_request_init(lx_http_request *r)
{
    r->method = "POST";
    r->url = NULL;
    r->headers = r->inline_headers;
    r->n_headers = 0;
    r->cap_headers = LX_HTTP_INLINE_HEADERS;
    r->body = NULL;
    r->body_len = 0;
}

int llmux__http_request_set_url(lx_http_request *r, const char *url)
{
    size_t n = strlen(url) + 1;
    char *u = malloc(n);
    if (!u)
        return -1;
    memcpy(u, url, n);
    free(r->url);
    r->url = u;
    return 0;
}

static lx_http_header *next_slot(lx_http_request *r)
{
    if (r->n_headers == r->cap_headers) {
        if (r->cap_headers >= LX_HTTP_MAX_HEADERS)
            return NULL;
        size_t cap = r->cap_headers * 2;
        lx_http_header *h = malloc(cap * sizeof *h);
        if (!h)
            return NULL;
        memcpy(h, r->headers, r->n_headers * sizeof *h);
        if (r->headers != r->inline_headers)
            free(r->headers);
        r->headers = h;
        r->cap_headers = cap;
    }
    return &r->headers[r->n_headers];
}

int llmux__http_header_add_static(lx_http_request *r, const char *line)
{
    lx_http_header *h = next_slot(r);
    if (!h)
        return r->n_headers >= LX_HTTP_MAX_HEADERS ? -2 : -1;
    h->line = line;
    h->owned = NULL;
    r->n_headers++;
    return 0;
}

int llmux__http_header_add(lx_http_request *r, const char *name, const char *value)
{
    lx_http_header *h = next_slot(r);
    if (!h)
        return r->n_headers >= LX_HTTP_MAX_HEADERS ? -2 : -1;
    size_t n = strlen(name) + strlen(value) + 3;
    char *line = malloc(n);
    if (!line)
        return -1;
    snprintf(line, n, "%s: %s", name, value);
    h->line = line;
    h->owned = line;
    r->n_headers++;
    return 0;
}

static int name_matches(const char *line, const char *name, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char a = line[i], b = name[i];
        if (a >= 'A' && a <= 'Z')
            a = (char)(a + 32);
        if (b >= 'A' && b <= 'Z')
            b = (char)(b + 32);
        if (a != b)
            return 0;
    }
    return line[n] == ':';
}

const char *llmux__http_request_header(const lx_http_request *r, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < r->n_headers; i++) {
        const char *line = r->headers[i].line;
        if (strlen(line) > n && name_matches(line, name, n)) {
            const char *v = line + n + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            return v;
        }
    }
    return NULL;
}

void llmux__http_request_free(lx_http_request *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_headers; i++)
        if (r->headers[i].owned) {
            /* a header may carry a credential: wipe it before giving it back */
            memset(r->headers[i].owned, 0, strlen(r->headers[i].owned));
            free(r->headers[i].owned);
        }
    if (r->headers != r->inline_headers)
        free(r->headers);
    free(r->url);
    free(r->body);
    llmux__http_request_init(r);
}

long llmux__http_response_header(const lx_http_response *r, const char *name, char *out,
                                 size_t cap)
{
    size_t n = strlen(name);
    const char *p = r->headers.data, *end = p ? p + r->headers.len : NULL;
    while (p && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol)
            eol = end;
        if ((size_t)(eol - p) > n && name_matches(p, name, n)) {
            const char *v = p + n + 1, *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            size_t len = (size_t)(ve - v);
            if (cap) {
                size_t c = len < cap - 1 ? len : cap - 1;
                memcpy(out, v, c);
                out[c] = '\0';
            }
            return (long)len;
        }
        p = eol + 1;
    }
    return -1;
}

void llmux__http_response_free(lx_http_response *r)
{
    if (!r)
        return;
    llmux__buf_free(&r->body);
    llmux__buf_free(&r->headers);
}
