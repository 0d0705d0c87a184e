/*
 * The call log's record: one per call and one per attempt, as JSON lines
 * named after the OpenTelemetry GenAI semantic conventions where they have a
 * name (docs/observability.md). The log layer knows only this type; the
 * engine fills it from a result (engine/log_observer.c). Every string is
 * borrowed for the duration of llmux__log_record_json.
 */
#ifndef LLMUX_LOG_RECORD_H
#define LLMUX_LOG_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/usage.h"

/* Content policies, weakest to strongest: a stricter one is a lower value. */
enum { LX_CONTENT_OFF = 0, LX_CONTENT_REDACTED = 1, LX_CONTENT_FULL = 2 };

typedef struct lx_log_attempt {
    const char *provider;
    const char *model;
    int status;        /* llmux_status, or LX_CANNOT_SERVE */
    int http_status;
    double latency_ms;
    const char *action; /* "answered", "fallback", "stop" */
    const char *error;  /* NULL on success; never holds a key (the engine masks them) */
} lx_log_attempt;

typedef struct lx_log_call {
    int64_t time_unix_ns;  /* when the call started (wall clock) */
    const char *call_id;   /* 32 hex digits */
    const char *key_id;    /* "key-<sha256 prefix>" or NULL (anonymous) */
    const char *team;      /* NULL until gateway keys carry teams */
    const char *workflow, *task;
    const char *alias;     /* the model the caller asked for, or NULL */
    const char *route;     /* "alias", "direct", "none" */
    const char *routed_alias; /* the alias the router chose (a rule may pick another), or NULL */
    long rule;             /* the route rule that matched, or -1 */
    const char *strategy;  /* the alias's strategy */
    const char *provider, *model; /* who answered, or failed last; NULL = none tried */
    int status;
    int http_status;
    const char *error;     /* NULL on success */
    double latency_ms;
    double ttft_ms;        /* < 0 = none (unstreamed, or no chunk) */
    double overhead_ms;    /* latency not spent waiting on a provider */
    lx_usage usage;
    int64_t cost_nusd;     /* -1 = unpriced */
    int streamed;
    size_t chunks;
    const lx_log_attempt *attempts;
    size_t n_attempts;
    int with_attempts;     /* write a record per attempt before the call's */
    int content;           /* LX_CONTENT_* for this call */
    const char *request;   /* the caller's request JSON, or NULL */
    size_t request_len;
    const char *response;  /* the answer (or error object) JSON, or NULL */
    size_t response_len;
} lx_log_call;

/* A deep copy of c in one allocation (strings, attempts, and the request and
 * response only when the content policy uses them), for the writer thread to
 * serialise: the calling thread copies, it does not format. Freed with free();
 * NULL when out of memory. */
lx_log_call *llmux__log_call_copy(const lx_log_call *c);

/* Append the call's records to out, each a JSON object ending in '\n'
 * (attempts first, then the call). 0, or -1 when out of memory. */
int llmux__log_record_json(const lx_log_call *c, lx_buf *out);

#endif
