/* The call result: the answer (or error), who answered, usage, and the trace. */
#ifndef LLMUX_ENGINE_RESULT_H
#define LLMUX_ENGINE_RESULT_H

#include <stdint.h>

#include "config/config.h"
#include "core/error.h"
#include "core/usage.h"
#include "providers/provider.h"

#define LLMUX_INLINE_ATTEMPTS 4

typedef struct lx_attempt {
    const lx_provider_cfg *provider; /* borrowed from the result's config */
    const char *model;                  /* borrowed from the config, or from result->direct_model */
    int status;                         /* llmux_status of this attempt */
    int http_status;
    long retry_after_ms;                /* -1 = none */
    double latency_ms;
    long backoff_ms;                    /* waited after this attempt before retrying; 0 = none */
    double wait_ms;                     /* of which in the transport: waiting on the provider */
    char *error;                        /* NULL on success */
    char *detail;                       /* the transport's own wording (libcurl), or NULL */
    char *provider_code;                /* the provider's error code or type, or NULL */
    const char *action;                 /* "answered", "fallback", "stop" */
    /* what the provider billed for this attempt (an answer, or a stream that
     * failed after its response began); billed = 0: nothing */
    int billed;
    int estimated;          /* the stream ended without usage: tokens estimated */
    unsigned cost_flags;    /* LX_COST_* */
    lx_usage usage;         /* the attempt's own usage (estimated when estimated) */
    const lx_price *price;  /* borrowed from the config or the built-in table; NULL = unknown */
    int64_t cost_nusd;      /* -1 = unknown (unpriced, or no usage) */
} lx_attempt;

typedef struct lx_skipped {
    const lx_provider_cfg *provider;
    const char *model;
    char *reason;
} lx_skipped;

struct llmux_result {
    lx_config *cfg; /* keeps borrowed names alive */
    int status;
    int http_status;
    char *json;
    char *error;
    const char *provider;
    const char *model;
    lx_usage usage;
    double cost_usd;
    int64_t cost_nusd;  /* -1 = unpriced; the sum over the billed attempts */
    int cost_estimated; /* some billed attempt's tokens were estimated */
    size_t error_attempt; /* the attempt whose error names the call (failures) */
    long rule;            /* the route rule that matched, or -1 */
    const char *strategy; /* the alias's strategy (static string) */
    const char *alias;    /* the alias routed to (config-owned), or NULL */
    const char *alias_fallback; /* the alias a context-window or content-filter stop moved to */
    lx_skipped *skipped;  /* targets the router passed over */
    size_t n_skipped;
    char *requested_model;
    char *direct_model; /* the model part of a "provider/model" request */
    char *workflow;
    char *task;
    char *key_id;         /* the gateway key's id (or "key-<prefix>" when unknown); NULL = none */
    char *team;           /* the gateway key's team, or NULL */
    long retry_after_ms;  /* a gateway rate limit's wait; -1 = none */
    const char *route;  /* "alias", "direct", or "none" */
    size_t n_targets;
    int streamed;
    size_t chunks;
    double ttft_ms; /* call start to the first chunk handed to the caller; -1 = none */
    lx_attempt inline_attempts[LLMUX_INLINE_ATTEMPTS];
    lx_attempt *attempts;
    size_t n_attempts, cap_attempts;
    double total_ms;
    char *trace; /* built on first request */
};

llmux_result *llmux__result_new(lx_config *cfg);
lx_attempt *llmux__result_add_attempt(llmux_result *r);
/* Make r a failure: status, message and the OpenAI-style error JSON. */
int llmux__result_fail(llmux_result *r, int status, int http_status, const char *message);
/* Why the call went the way it did, in words (for the trace). */
void llmux__result_reason(const llmux_result *r, char *out, size_t cap);
/* Build the trace JSON (also used by the benchmarks); NULL on out of memory. */
char *llmux__trace_build(const llmux_result *r);

#endif
