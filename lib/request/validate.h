/* Validation of the incoming OpenAI Chat Completions request. */
#ifndef LLMUX_ENGINE_REQUEST_H
#define LLMUX_ENGINE_REQUEST_H

#include <stddef.h>

#include "core/error.h"
#include "request/request.h"

struct cJSON;

/* Parse and validate into a tree; on success *out is the request object and
 * *model its "model". Errors are LLMUX_ERR_BAD_REQUEST naming the field (http
 * 400), or NO_MEMORY. */
int llmux__request_parse(const char *json, size_t len, struct cJSON **out, const char **model,
                         lx_err *err);

/* Validate json into r (r->raw, r->model set). Common requests are checked
 * on their text alone, without a tree; anything unusual, and every invalid
 * request, goes through llmux__request_parse, whose messages are the errors. */
int llmux__request_init(lx_request *r, const char *json, size_t len, lx_err *err);

#endif
