#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include "core/utf8.h"

int llmux__err(lx_err *e, int status, const char *fmt, ...)
{
    if (!e)
        return status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    /* a "%.80s" or the record's end can cut a character, and text from
     * outside need not be UTF-8 */
    llmux__utf8_repair(e->msg);
    e->status = status;
    return status;
}

struct status_info {
    const char *text;       /* llmux_strerror */
    const char *cls;        /* trace class */
    const char *error_type; /* OpenAI error type */
    int falls_back;
};

/* Indexed by -status. Appended only, like the enum. */
static const struct status_info STATUS_INFO[] = {
    {"ok", "ok", "", 0},
    {"invalid argument", "invalid_argument", "invalid_request_error", 0},
    {"out of memory", "no_memory", "server_error", 0},
    {"invalid config", "config", "invalid_request_error", 0},
    {"i/o error", "io", "server_error", 0},
    {"bad request", "bad_request", "invalid_request_error", 0},
    {"unknown model", "unknown_model", "invalid_request_error", 0},
    {"authentication failed", "auth", "authentication_error", 1},
    {"permission denied", "permission", "permission_error", 1},
    {"not found", "not_found", "not_found_error", 1},
    {"rate limited", "rate_limit", "rate_limit_error", 1},
    {"context window exceeded", "context_window", "invalid_request_error", 0},
    {"content filtered", "content_filter", "invalid_request_error", 0},
    {"provider error", "provider", "server_error", 1},
    {"connection failed", "connect", "api_connection_error", 1},
    {"timed out", "timeout", "timeout_error", 1},
    {"bad response from provider", "bad_response", "server_error", 1},
    {"budget exceeded", "budget", "budget_exceeded_error", 0},
    {"unsupported", "unsupported", "invalid_request_error", 0},
    {"cancelled", "cancelled", "cancelled_error", 0},
    {"internal error", "internal", "server_error", 0},
    {"llmux limit reached", "limit", "server_error", 0},
    {"provider quota exhausted", "quota", "insufficient_quota", 1},
};
#define N_STATUS (int)(sizeof STATUS_INFO / sizeof STATUS_INFO[0])

static const struct status_info CANNOT_SERVE = {"target cannot serve the request",
                                                 "cannot_serve", "invalid_request_error", 1};

static const struct status_info *info(int status)
{
    if (status == LX_CANNOT_SERVE)
        return &CANNOT_SERVE;
    if (status > 0 || status <= -N_STATUS)
        return NULL;
    return &STATUS_INFO[-status];
}

const char *llmux_strerror(int status)
{
    const struct status_info *i = status == LX_CANNOT_SERVE ? NULL : info(status);
    return i ? i->text : "unknown status";
}

const char *llmux__status_error_type(int status)
{
    const struct status_info *i = info(status);
    return i ? i->error_type : "server_error";
}

const char *llmux__status_class(int status)
{
    const struct status_info *i = info(status);
    return i ? i->cls : "unknown";
}

int llmux__status_falls_back(int status)
{
    const struct status_info *i = info(status);
    return i ? i->falls_back : 0;
}
