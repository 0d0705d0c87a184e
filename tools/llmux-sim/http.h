/* http.h - a sans-I/O HTTP/1.1 request parser for llmux-sim.
 *
 * It does no I/O: the server feeds it the bytes it has and it says "need more",
 * "here is a request head of N bytes", or an HTTP error status. Positions are
 * offsets into the caller's buffer, so the buffer may be reallocated while the
 * body is read. */
#ifndef LLMUX_SIM_HTTP_H
#define LLMUX_SIM_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

enum {
    HTTP_HEAD_MAX = 64 * 1024,       /* request line + headers; 431 beyond */
    HTTP_TARGET_MAX = 8 * 1024,      /* request target; 414 beyond */
    HTTP_BODY_MAX = 8 * 1024 * 1024, /* decoded body; 413 beyond */
};

typedef struct http_span {
    size_t off, len;
} http_span;

typedef struct http_request {
    http_span method;
    http_span target;
    http_span authorization;
    int has_authorization;
    http_span api_key;       /* Azure's api-key header */
    int has_api_key;
    http_span goog_key; /* x-goog-api-key */
    int has_goog_key;
    int minor_version;       /* HTTP/1.<minor> */
    int64_t content_length;  /* -1 when absent */
    int chunked;             /* Transfer-Encoding: chunked */
    int keep_alive;
    int expect_continue;
    size_t head_len;         /* bytes up to and including the empty line */
} http_request;

/* Parses a request head at the start of buf[0..len).
 * Returns the head length (> 0) when the head is complete, 0 when more bytes
 * are needed, or a negative HTTP status (-400, -414, -417, -431, -501, -505)
 * when the head is malformed or too large. Leading empty lines are skipped
 * (they count in head_len). */
long http_parse_head(const char *buf, size_t len, http_request *req);

/* Decoder state for a chunked request body. Zero-initialise it per request. */
typedef struct http_chunked {
    int state;
    uint64_t size;
    unsigned digits;
    size_t line;
} http_chunked;

/* Feeds in[0..len) to the chunked decoder, appending data bytes to body (never
 * beyond max_body). Sets *consumed to the bytes used. Returns 1 when the body
 * (with its trailers) is complete, 0 when more input is needed, or a negative
 * HTTP status (-400 malformed, -413 too large). */
int http_chunked_feed(http_chunked *c, const char *in, size_t len, size_t *consumed,
                      sim_buf *body, size_t max_body);

/* The reason phrase for a status code ("Unknown" for codes it does not know). */
const char *http_reason(int status);

#endif
