/*
 * An HTTP exchange as the transport sees it, in the bottom layer so that
 * adapters build requests and the transport sends them without either
 * knowing the other.
 *
 * A request is one owned value: method, URL, header lines and body, released
 * by one llmux__http_request_free. A header line is either copied into the
 * request (llmux__http_header_add) or borrowed from storage that outlives the
 * request (llmux__http_header_add_static: string literals, or lines an adapter
 * prepared in its per-provider state, which lives as long as the config
 * snapshot every call holds a reference to). Borrowing saves the hot path an
 * allocation per header; the transport never frees or keeps either kind.
 */
#ifndef LLMUX_CORE_HTTP_H
#define LLMUX_CORE_HTTP_H

#include <stddef.h>

#include "core/buf.h"

typedef struct lx_http_header {
    const char *line; /* "Name: value" */
    char *owned;      /* the same pointer when the request owns the line, else NULL */
} lx_http_header;

#define LX_HTTP_INLINE_HEADERS 8
#define LX_HTTP_MAX_HEADERS 64

typedef struct lx_http_request {
    const char *method; /* a static string: "POST" */
    char *url;          /* owned */
    lx_http_header inline_headers[LX_HTTP_INLINE_HEADERS];
    lx_http_header *headers; /* inline_headers, or a heap array past that */
    size_t n_headers, cap_headers;
    char *body; /* owned; not NUL-terminated necessarily */
    size_t body_len;
} lx_http_request;

void llmux__http_request_init(lx_http_request *r);
/* The URL, copied. 0, or -1 out of memory. */
int llmux__http_request_set_url(lx_http_request *r, const char *url);
/* "name: value", copied. 0; -1 out of memory; -2 too many headers. */
int llmux__http_header_add(lx_http_request *r, const char *name, const char *value);
/* A complete "Name: value" line that outlives the request, borrowed. */
int llmux__http_header_add_static(lx_http_request *r, const char *line);
/* The value of the first header named name (case-insensitive), or NULL. */
const char *llmux__http_request_header(const lx_http_request *r, const char *name);
void llmux__http_request_free(lx_http_request *r);

/*
 * What came back. Response headers are kept only for answers outside 2xx (an
 * adapter classifying an error reads them: Bedrock's x-amzn-ErrorType,
 * rate-limit headers); the hot path keeps none.
 */
typedef struct lx_http_response {
    long status;         /* HTTP status; 0 when no answer arrived */
    lx_buf body;         /* the body (for streams: only a non-2xx body) */
    lx_buf headers;      /* non-2xx: the header lines, "\r\n"-separated, status line excluded */
    long retry_after_ms; /* from retry-after-ms / retry-after; -1 when absent */
    int aborted;         /* the body callback stopped the transfer */
    int finished_early;  /* the body callback ended the transfer as complete */
} lx_http_response;

/* Copies the value of response header name (case-insensitive, trimmed) into
 * out; returns its length, or -1 when absent. Truncates to cap-1. */
long llmux__http_response_header(const lx_http_response *r, const char *name, char *out,
                                 size_t cap);
void llmux__http_response_free(lx_http_response *r);

#endif
