/* Internal error record and the error classes behind llmux_status. */
#ifndef LLMUX_CORE_ERROR_H
#define LLMUX_CORE_ERROR_H

#include "llmux.h"

#define LLMUX_ERRMSG_MAX 512

/* Internal outcome (never returned to callers): this target cannot serve
 * this request (a feature the API family lacks, a request too large for the
 * model). The engine records the reason and moves on to the next target; a
 * call that no target could serve ends with LLMUX_ERR_UNSUPPORTED. */
#define LX_CANNOT_SERVE (-1000)

typedef struct lx_err {
    int status;      /* llmux_status */
    int http_status; /* provider's HTTP status, or the one llmux assigns; 0 = none */
    char msg[LLMUX_ERRMSG_MAX];
    char provider_code[64]; /* the provider's own error code or type, "" when none */
    long retry_after_ms;    /* a delay the provider asked for in its body (Gemini's RetryInfo);
                               used when has_retry_after is set and no header gave one */
    int has_retry_after;
} lx_err;

/* Record an error; returns status so callers can `return llmux__err(...)`. */
int llmux__err(lx_err *e, int status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* The OpenAI error "type" a status is reported as ("invalid_request_error", ...). */
const char *llmux__status_error_type(int status);
/* A short machine-readable class name ("rate_limit", "connect", ...). */
const char *llmux__status_class(int status);
/* 1 when another target could succeed where this one failed. */
int llmux__status_falls_back(int status);

#endif
