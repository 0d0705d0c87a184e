#ifndef LLMUX_REQUEST_PARAMS_H
#define LLMUX_REQUEST_PARAMS_H

#include "request/request.h"

/* The caller's request with a target's params (JSON object text) merged in:
 * out is a validated request over *text (malloc'd; free it, and
 * llmux__request_free(out), when the attempt is over). */
int llmux__request_with_params(const lx_request *base, const char *params, lx_request *out,
                               char **text, lx_err *err);

#endif
