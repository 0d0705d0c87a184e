/*
 * The provider adapter interface. One adapter per API family
 * (openai-compatible now; azure, anthropic, gemini, bedrock each add a file
 * here). Adapters are pure: they translate and classify, they do no I/O.
 */
#ifndef LLMUX_PROVIDERS_PROVIDER_H
#define LLMUX_PROVIDERS_PROVIDER_H

#include <stddef.h>

#include "config/config.h"
#include "core/buf.h"
#include "core/request.h"
#include "core/error.h"

struct cJSON;
struct curl_slist;

typedef struct llmux_usage {
    long prompt_tokens;     /* -1 = unknown */
    long completion_tokens; /* -1 = unknown */
    long cached_tokens;     /* -1 = unknown */
} llmux_usage;

#define LLMUX_USAGE_UNKNOWN {-1, -1, -1}

/* What the transport sends. url and headers are borrowed from the adapter's
 * per-provider state; body is owned by the request. */
typedef struct llmux_http_request {
    const char *url;
    const struct curl_slist *headers;
    char *body;
    size_t body_len;
} llmux_http_request;

void llmux__http_request_free(llmux_http_request *req);

/* Receives each OpenAI chat.completion.chunk a stream decoder produces.
 * `parsed` is the chunk as cJSON (borrowed). Non-zero return stops. */
typedef int (*llmux_chunk_sink_cb)(void *ctx, const char *json, size_t len, struct cJSON *parsed);

typedef struct llmux_provider_ops {
    const char *type;
    /* Build per-provider state once at open (URLs, header lists). */
    int (*prepare)(llmux_provider_cfg *p, llmux_err *err);
    void (*release)(llmux_provider_cfg *p);
    /* Translate a validated OpenAI request for `model`. req->raw is the
     * caller's text; llmux__request_tree(req) gives the parsed form, which
     * the adapter may modify (the engine reuses it for the next attempt). */
    int (*build_request)(const llmux_provider_cfg *p, const char *model, llmux_request *req,
                         int stream, llmux_http_request *out, llmux_err *err);
    /* A 2xx body to an OpenAI chat.completion. *out_json is malloc'd; it may be
     * the body's own buffer, taken over (the body is then left empty). */
    int (*parse_response)(const llmux_provider_cfg *p, llmux_buf *body, char **out_json,
                          llmux_usage *usage, llmux_err *err);
    /* A non-2xx answer to an llmux_status with a message (err->http_status set). */
    int (*classify_error)(const llmux_provider_cfg *p, long http_status, const char *body,
                          size_t len, llmux_err *err);
    /* Streaming: a decoder turning the provider's stream bytes into OpenAI chunks. */
    void *(*stream_new)(const llmux_provider_cfg *p);
    int (*stream_feed)(void *st, const char *data, size_t len, llmux_chunk_sink_cb sink, void *ctx,
                       llmux_err *err);
    /* At end of body: LLMUX_OK if the stream ended properly. */
    int (*stream_finish)(void *st, llmux_err *err);
    void (*stream_free)(void *st);
} llmux_provider_ops;

/* The adapter for a config "type", or NULL. *known is set to 1 when the type
 * is a known API family this build does not include yet. */
const llmux_provider_ops *llmux__provider_ops_find(const char *type, int *known);

extern const llmux_provider_ops llmux__openai_ops;

#endif
