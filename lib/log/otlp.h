/* The OTLP/HTTP JSON exporter: records batched into one ExportLogsServiceRequest
 * and POSTed to the collector with libcurl, on the writer thread. A failed
 * export drops its batch (counted) and backs off, so a collector that is down
 * costs the writer one timeout per back-off period, not one per batch. */
#ifndef LLMUX_LOG_OTLP_H
#define LLMUX_LOG_OTLP_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

typedef struct lx_otlp {
    char *url;
    void *curl;
    void *headers;
    long timeout_ms;
    size_t batch_max;
    lx_buf body;     /* the logRecords array being built */
    size_t pending;  /* records in body */
    double backoff_until, backoff_s; /* monotonic seconds */
    uint64_t exported, dropped;
} lx_otlp;

int llmux__otlp_init(lx_otlp *o, const char *url, long timeout_ms, long batch);
/* Add one record (a JSON object); exports when the batch is full. */
void llmux__otlp_add(lx_otlp *o, const char *rec, size_t len, int64_t time_unix_ns);
/* Export what is pending. */
void llmux__otlp_send(lx_otlp *o);
void llmux__otlp_free(lx_otlp *o);

#endif
