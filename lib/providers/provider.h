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

typedef struct lx_usage {
    long prompt_tokens;     /* -1 = unknown */
    long completion_tokens; /* -1 = unknown */
    long cached_tokens;     /* -1 = unknown */
} lx_usage;

#define LX_USAGE_UNKNOWN {-1, -1, -1}

/* What the transport sends. url and headers are borrowed from the adapter's
 * per-provider state; body is owned by the request. */
typedef struct lx_http_request {
    const char *url;
    const struct curl_slist *headers;
    char *body;
    size_t body_len;
} lx_http_request;

void llmux__http_request_free(lx_http_request *req);

/* Receives each OpenAI chat.completion.chunk a stream decoder produces.
 * `parsed` is the chunk as cJSON (borrowed). Non-zero return stops. */
typedef int (*lx_chunk_sink_cb)(void *ctx, const char *json, size_t len, struct cJSON *parsed);

#define LX_STREAM_DONE 1 /* stream_feed: ended well; stop reading (not an llmux_status) */

typedef struct lx_provider_ops {
    const char *type;
    /* Build per-provider state once at open (URLs, header lists). */
    int (*prepare)(lx_provider_cfg *p, lx_err *err);
    void (*release)(lx_provider_cfg *p);
    /* Translate a validated OpenAI request for `model`. req->raw is the
     * caller's text; llmux__request_tree(req) gives the parsed form, which
     * the adapter may modify (the engine reuses it for the next attempt). */
    int (*build_request)(const lx_provider_cfg *p, const char *model, lx_request *req,
                         int stream, lx_http_request *out, lx_err *err);
    /* A 2xx body to an OpenAI chat.completion. *out_json is malloc'd; it may be
     * the body's own buffer, taken over (the body is then left empty). */
    int (*parse_response)(const lx_provider_cfg *p, lx_buf *body, char **out_json,
                          lx_usage *usage, lx_err *err);
    /* A non-2xx answer to an llmux_status with a message (err->http_status set). */
    int (*classify_error)(const lx_provider_cfg *p, long http_status, const char *body,
                          size_t len, lx_err *err);
    /* Streaming: a decoder turning the provider's stream bytes into OpenAI
     * chunks. cfg (NULL: defaults) bounds one event by max_response_bytes. */
    void *(*stream_new)(const lx_provider_cfg *p, const lx_config *cfg);
    /* LLMUX_OK to go on, an error, or LX_STREAM_DONE: the stream has ended
     * (OpenAI's [DONE]) and the rest of the body is not to be waited for. */
    int (*stream_feed)(void *st, const char *data, size_t len, lx_chunk_sink_cb sink, void *ctx,
                       lx_err *err);
    /* At end of body: LLMUX_OK if the stream ended properly. */
    int (*stream_finish)(void *st, lx_err *err);
    void (*stream_free)(void *st);
} lx_provider_ops;

/* The adapter for a config "type", or NULL. *known is set to 1 when the type
 * is a known API family this build does not include yet. */
const lx_provider_ops *llmux__provider_ops_find(const char *type, int *known);

extern const lx_provider_ops llmux__openai_ops;

#endif
