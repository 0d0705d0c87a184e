/* Validation of the incoming OpenAI Chat Completions request. */
#ifndef LLMUX_ENGINE_REQUEST_H
#define LLMUX_ENGINE_REQUEST_H

#include <stddef.h>

#include "core/error.h"

struct cJSON;

/* Parse and validate; on success *out is the request object and *model its
 * "model". Errors are LLMUX_ERR_BAD_REQUEST naming the field (http 400). */
int llmux__request_parse(const char *json, size_t len, struct cJSON **out, const char **model,
                         llmux_err *err);

#endif
