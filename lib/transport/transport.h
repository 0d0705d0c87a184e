/*
 * HTTP transport over libcurl. A call borrows a pooled session (a curl multi
 * handle with its own connection cache and one or more easy handles), so
 * kept-alive connections are reused by whichever thread calls next; TLS
 * sessions are shared across the pool. Transfers are driven with
 * curl_multi_poll, which lets a call run several transfers at once (hedged
 * requests) and lets any thread cancel it at once (curl_multi_wakeup).
 * TLS verification is always on; the standard proxy environment variables
 * (http_proxy, https_proxy, no_proxy) are honoured by libcurl.
 *
 * This layer knows HTTP and nothing of providers, configs or adapters.
 */
#ifndef LLMUX_TRANSPORT_H
#define LLMUX_TRANSPORT_H

#include <stddef.h>

#include "core/cancel.h"
#include "core/error.h"
#include "core/http.h"

typedef struct lx_transport lx_transport;

typedef struct lx_transport_options {
    long max_connections; /* idle sessions kept for reuse */
    int http2;            /* offer HTTP/2 over TLS */
    int compression;      /* ask for gzip/brotli/zstd bodies */
} lx_transport_options;

/* Receives a 2xx body as it arrives (streaming). Returns 0 to continue,
 * LX_BODY_ABORT to stop the transfer as failed, LX_BODY_DONE to stop reading
 * because the body is complete (a stream's end marker arrived while the
 * server keeps the connection open). */
typedef int (*lx_body_cb)(void *ctx, const char *data, size_t len);
#define LX_BODY_ABORT 1
#define LX_BODY_DONE 2

#define LX_MAX_PARALLEL 4

/* One HTTP exchange: what to send and how, and (filled in) what came back. */
typedef struct lx_exchange {
    const lx_http_request *req;
    long timeout_ms;         /* the whole exchange; 0 = none */
    long connect_timeout_ms; /* connection set-up; 0 = libcurl's default */
    size_t max_body;         /* cap on a buffered body; 0 = none */
    lx_body_cb on_body;      /* NULL: buffer the body in resp.body */
    void *ctx;
    long start_after_ms;     /* hedging: start this exchange only after so long (0 = at once);
                                with first_wins, one never started when another answered
                                first is never sent */
    /* results */
    lx_http_response resp;
    int status;         /* LLMUX_OK when an HTTP answer arrived, whatever its status */
    lx_err err;         /* llmux's wording of a failure */
    char detail[256];   /* libcurl's own wording, for the trace; "" when none */
} lx_exchange;

int llmux__transport_new(lx_transport **out, const lx_transport_options *o, lx_err *err);
void llmux__transport_free(lx_transport *t);

/* Prepare x for llmux__transport_run (zero results, defaults). */
void llmux__exchange_init(lx_exchange *x, const lx_http_request *req);
void llmux__exchange_free(lx_exchange *x);

/*
 * Run n (1..LX_MAX_PARALLEL) exchanges at once and return when all have
 * ended. With first_wins, the first exchange to finish with a 2xx answer ends
 * the others (their status becomes LLMUX_ERR_CANCELLED, "another attempt
 * answered first"). When cancel fires, every exchange still running ends with
 * LLMUX_ERR_CANCELLED within milliseconds. Returns the status of xs[0] for
 * n == 1, else LLMUX_OK (read each exchange's status), or NO_MEMORY.
 */
int llmux__transport_run(lx_transport *t, lx_exchange *xs, size_t n, int first_wins,
                         llmux_cancel *cancel);

#endif
