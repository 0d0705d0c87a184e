/*
 * The router: from the call (the requested model, the request's features,
 * the call options) to an owned, ordered list of candidate targets, each
 * target it passed over with the reason, and the reason for the route.
 *
 * 1. Rules (config "rules", first match wins) choose an alias from the task,
 *    workflow, key id and the request's features; the requested model is
 *    used when none matches (or first, with routing.requested_model_wins).
 *    A requested "provider/model" is a direct route (routing.allow_direct).
 * 2. Health: a target in cooldown is passed over, with the reason.
 * 3. The alias's strategy orders the rest: ordered, weighted, round_robin,
 *    least_latency, least_busy.
 */
#ifndef LLMUX_ROUTER_H
#define LLMUX_ROUTER_H

#include "config/config.h"
#include "core/error.h"
#include "request/request.h"
#include "router/health.h"

typedef struct lx_route_input {
    const char *model;          /* the request's "model" */
    const lx_request *request;  /* read-only; llmux__request_features(request) on demand */
    const char *task;           /* call options; NULL when not given */
    const char *workflow;
    const char *key_id;         /* the caller's gateway key id, or NULL = anonymous */
    int stream;
    double now_ms;              /* monotonic clock of the call's start */
    lx_health *health;          /* NULL: every target is healthy */
    int skip_rules;             /* route `model` as named (an alias fallback) */
    const char *team;           /* the gateway key's team, or NULL */
} lx_route_input;

typedef struct lx_candidate {
    const lx_provider_cfg *provider;
    const char *model;          /* the provider's model id (config or the route's own copy) */
    long index;                 /* the target's health slot; -1 for a direct route */
    long weight;                /* the target's weight (weighted strategy) */
    const char *params;         /* the target's params (JSON object text, config-owned), or NULL */
    int probe;                  /* health handed this call the half-open probe */
} lx_candidate;

typedef struct lx_skip {
    lx_candidate target;
    char *reason;               /* owned */
} lx_skip;

#define LX_ROUTE_INLINE 32 /* an alias's maximum: no allocation per call */

typedef struct lx_route {
    const char *kind;           /* "alias" or "direct" */
    const char *alias;          /* the alias routed to (config-owned); NULL for direct */
    long rule;                  /* index of the matching rule, or -1 */
    const char *strategy;       /* "ordered", "weighted", ... */
    size_t n_listed;            /* targets the alias lists (1 for a direct route) */
    lx_candidate inline_candidates[LX_ROUTE_INLINE];
    lx_candidate *candidates;   /* in the order to try; owned */
    size_t n_candidates;
    lx_skip *skipped;           /* passed over, in config order; owned */
    size_t n_skipped;
    char *direct_model;         /* a direct route's model id, owned */
} lx_route;

/* Resolve the call. LLMUX_OK with at least one candidate; UNKNOWN_MODEL
 * (404) for a name that is no alias; UNSUPPORTED (503) when every target was
 * passed over (the message gives each reason); NO_MEMORY. The route is owned:
 * free it with llmux__route_free, also on failure. */
int llmux__route(const lx_config *cfg, const lx_route_input *in, lx_route *out, lx_err *err);
/* Hand back the half-open probes of candidates the call did not try. */
void llmux__route_release(lx_route *r, lx_health *h, size_t tried);
void llmux__route_free(lx_route *r);
const char *llmux__strategy_name(lx_strategy s);

#endif
