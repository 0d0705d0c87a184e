/* What the OpenAI-compatible adapter shares with adapters of the same wire
 * format (Azure OpenAI): the request it builds, for any URL and auth line. */
#ifndef LLMUX_PROVIDERS_OPENAI_H
#define LLMUX_PROVIDERS_OPENAI_H

#include "providers/provider.h"

/* The caller's bytes with `model` spliced in (and, for a stream, "stream" and
 * stream_options.include_usage), POSTed to url (copied) with the JSON headers,
 * the auth line (borrowed: it must outlive the request; NULL = none) and the
 * provider's extra headers. */
int llmux__openai_request(const lx_provider_cfg *p, const char *url, const char *auth,
                          const char *model, const lx_request *req, int stream,
                          lx_http_request *out, lx_err *err);

#endif
