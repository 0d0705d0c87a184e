/*
 * HTTP transport over libcurl. Easy handles live in a pool shared by all
 * threads: a call borrows one, so its kept-alive connections are reused by
 * whichever thread calls next. DNS and TLS sessions are shared across the
 * pool. TLS verification is always on; the standard proxy environment
 * variables (http_proxy, https_proxy, no_proxy) are honoured by libcurl.
 */
#ifndef LLMUX_TRANSPORT_H
#define LLMUX_TRANSPORT_H

#include <stddef.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/error.h"
#include "providers/provider.h"

typedef struct lx_transport lx_transport;

/* Receives the body of a 2xx answer as it arrives (streaming). Returns 0 to
 * continue, non-zero to abort the transfer. */
typedef int (*lx_body_cb)(void *ctx, const char *data, size_t len);

typedef struct lx_http_response {
    long status;         /* HTTP status; 0 when no answer arrived */
    lx_buf body;      /* the body (for streams: only a non-2xx body) */
    long retry_after_ms; /* from retry-after-ms / retry-after; -1 when absent */
    int aborted;         /* the body callback stopped the transfer */
} lx_http_response;

int llmux__transport_new(lx_transport **out, const lx_config *cfg, lx_err *err);
void llmux__transport_free(lx_transport *t);

/*
 * POST req. timeout_ms bounds the whole exchange (0 = none), connect_timeout_ms
 * the connection set-up. With on_body set, a 2xx body goes to on_body instead
 * of resp->body. Returns LLMUX_OK when an HTTP answer arrived (whatever its
 * status), else CONNECT / TIMEOUT / BAD_RESPONSE (body over max_body) /
 * CANCELLED (on_body stopped) / NO_MEMORY, with a message in err.
 */
int llmux__transport_post(lx_transport *t, const lx_http_request *req, long timeout_ms,
                          long connect_timeout_ms, size_t max_body, lx_body_cb on_body,
                          void *ctx, lx_http_response *resp, lx_err *err);

void llmux__http_response_free(lx_http_response *resp);

#endif
