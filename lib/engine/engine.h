/*
 * The attempt loop: route the request, then try its targets in order until
 * one answers. The error class of each failure decides whether the next
 * target is tried (see llmux__status_falls_back). Every attempt lands in the
 * result's trace, and every call in the ledger.
 */
#ifndef LLMUX_ENGINE_H
#define LLMUX_ENGINE_H

#include "llmux.h"

/* on_chunk NULL = a plain call; else a streamed one. */
int llmux__engine_call(llmux *gw, const char *request_json, const llmux_call_options *opts,
                       llmux_chunk_cb on_chunk, void *payload, llmux_result **out);

/* A result that fails with status and message without calling anything. */
int llmux__engine_reject(llmux *gw, int status, const char *message, llmux_result **out);

#endif
