/* The Bedrock adapter's one entry point beyond its ops (llmux__bedrock_ops
 * in provider.h): build_request at a given time, so tests can compare the
 * SigV4 signature of a pinned x-amz-date. */
#ifndef LLMUX_PROVIDERS_BEDROCK_H
#define LLMUX_PROVIDERS_BEDROCK_H

#include <time.h>

#include "providers/provider.h"

int llmux__bedrock_build_at(const lx_provider_cfg *p, const char *model, const lx_request *req,
                            int stream, lx_http_request *out, time_t now, lx_err *err);

#endif
