/*
 * The provider adapter contract. One adapter per API family
 * (openai-compatible, azure, anthropic, gemini, bedrock), each in its own
 * file here, registered in registry.c. Adapters are pure: they validate their
 * own config keys, translate a request into an owned HTTP request, translate
 * an answer (or a stream) back into OpenAI shapes and classify errors. They
 * do no I/O, and they never change the caller's request: it is shared by
 * every attempt of the call.
 *
 * Adding an adapter touches no other layer: config.c hands it its keys,
 * the engine calls it through these hooks, the transport sends what it
 * builds (tests/test_adapter.c shows one written outside lib/).
 */
#ifndef LLMUX_PROVIDERS_PROVIDER_H
#define LLMUX_PROVIDERS_PROVIDER_H

#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/http.h"
#include "request/request.h"
#include "core/usage.h"

struct cJSON;
struct lx_provider_ops;

/* One configured provider ("providers.<name>"): the keys every adapter
 * shares, parsed by the config layer, and the adapter's own state. */
typedef struct lx_provider_cfg {
    char *name;
    const struct lx_provider_ops *ops; /* the adapter for the provider's API family */
    char *type;
    char *base_url;               /* no trailing slash; NULL only while configure runs
                                     for an adapter without a default */
    char *api_key_env;            /* NULL when the provider needs no key */
    char *api_key;                /* read from the environment at open; NULL if unset */
    char **extra_headers;         /* "Name: value" lines from the config */
    size_t n_extra_headers;
    long timeout_ms;              /* per attempt; 0 = only the call's deadline */
    long connect_timeout_ms;
    size_t max_response_bytes;    /* the gateway's cap on a body, an event, an assembled stream */
    void *adapter_state;          /* built by ops->configure, freed by ops->release */
} lx_provider_cfg;

/*
 * How an adapter reads its own config keys: the config layer's readers, so
 * every error names its JSON path ("providers.bedrock.region: expected a
 * string, got a number") the same way.
 */
typedef struct lx_cfg_reader {
    /* A string member; *out NULL when absent (an error when required). */
    int (*string)(const struct cJSON *obj, const char *key, const char *path, int required,
                  const char **out, lx_err *err);
    /* A whole number in [min, max]; *out untouched when absent. */
    int (*integer)(const struct cJSON *obj, const char *key, const char *path, long min,
                   long max, long *out, lx_err *err);
    int (*boolean)(const struct cJSON *obj, const char *key, const char *path, int *out,
                   lx_err *err);
    /* A config error at path.key with a message; returns LLMUX_ERR_CONFIG. */
    int (*error)(lx_err *err, const char *path, const char *key, const char *message);
} lx_cfg_reader;

/* Receives each OpenAI chat.completion.chunk a stream decoder produces.
 * `parsed` is the chunk as cJSON (borrowed). Non-zero return stops. */
typedef int (*lx_chunk_sink_cb)(void *ctx, const char *json, size_t len, struct cJSON *parsed);

/* stream_feed's return when the stream's end marker arrived: the rest of the
 * body (if the server keeps sending or keeps the connection open) is ignored. */
#define LX_STREAM_END 1

typedef struct lx_provider_ops {
    const char *type;
    /* base_url when the config gives none; NULL = configure must set it. */
    const char *default_base_url;
    /* Config keys this adapter reads beyond the common ones (NULL-terminated;
     * NULL = none). Any other key is refused by the config layer. */
    const char *const *config_keys;
    /* At open: read the adapter's own keys from obj (its path is `path`),
     * check them, and build per-provider state. */
    int (*configure)(lx_provider_cfg *p, const struct cJSON *obj, const char *path,
                     const lx_cfg_reader *rd, lx_err *err);
    void (*release)(lx_provider_cfg *p);
    /* Translate the caller's request (read-only: llmux__request_tree gives
     * its parsed form, shared with every other attempt) for `model` into an
     * owned HTTP request. LX_CANNOT_SERVE (with the reason in err) when this
     * target cannot serve this request: the engine moves on to the next one. */
    int (*build_request)(const lx_provider_cfg *p, const char *model, const lx_request *req,
                         int stream, lx_http_request *out, lx_err *err);
    /* A 2xx body to an OpenAI chat.completion. *out_json is malloc'd; it may be
     * the body's own buffer, taken over (the body is then left empty). */
    int (*parse_response)(const lx_provider_cfg *p, lx_buf *body, char **out_json,
                          lx_usage *usage, lx_err *err);
    /* A non-2xx answer (status, headers, body) to an llmux_status with a
     * message; err->http_status set. */
    int (*classify_error)(const lx_provider_cfg *p, const lx_http_response *resp, lx_err *err);
    /* Streaming: a decoder turning the provider's stream bytes into OpenAI
     * chunks; no event and no accumulated text beyond p->max_response_bytes.
     * The usage chunk carries the whole usage record in OpenAI's terms:
     * prompt_tokens (with cache reads and writes), completion_tokens (with
     * reasoning), prompt_tokens_details.cached_tokens,
     * completion_tokens_details.reasoning_tokens, and for cache writes
     * prompt_tokens_details.cache_write_tokens and .cache_write_1h_tokens, so
     * a stream costs what the same call unstreamed costs (docs/cost.md). */
    void *(*stream_new)(const lx_provider_cfg *p);
    /* LLMUX_OK, LX_STREAM_END, or an error status with err set. */
    int (*stream_feed)(void *st, const char *data, size_t len, lx_chunk_sink_cb sink, void *ctx,
                       lx_err *err);
    /* At end of body: LLMUX_OK if the stream ended properly. */
    int (*stream_finish)(void *st, lx_err *err);
    void (*stream_free)(void *st);
} lx_provider_ops;

/* The adapter for a config "type", or NULL. *known is set to 1 when the type
 * is a known API family this build does not include yet. */
const lx_provider_ops *llmux__provider_ops_find(const char *type, int *known);
/* Add an adapter (tests, embedders' own API families). 0, or -1 when the type
 * exists or the table is full. Call before llmux_open; not thread-safe
 * against concurrent opens. */
int llmux__provider_register(const lx_provider_ops *ops);
/* "openai, azure, anthropic, gemini, bedrock" (every known type) into out. */
void llmux__provider_types(char *out, size_t cap, int available_only);

extern const lx_provider_ops llmux__openai_ops;
extern const lx_provider_ops llmux__azure_ops;
extern const lx_provider_ops llmux__bedrock_ops;
extern const lx_provider_ops llmux__gemini_ops;
extern const lx_provider_ops llmux__anthropic_ops;

#endif
