/* Internal error record and the error classes behind llmux_status. */
#ifndef LLMUX_CORE_ERROR_H
#define LLMUX_CORE_ERROR_H

#include "llmux.h"

#define LLMUX_ERRMSG_MAX 512

typedef struct lx_err {
    int status;      /* llmux_status */
    int http_status; /* provider's HTTP status, or the one llmux assigns; 0 = none */
    char msg[LLMUX_ERRMSG_MAX];
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
