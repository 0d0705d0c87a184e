/*
 * The router: from the call (the requested model, the request's features,
 * the call options) to an owned, ordered list of candidate targets, each
 * target it passed over with the reason, and the reason for the route.
 * Today: aliases with targets in config order, and "provider/model" when
 * routing.allow_direct is set. Rules, strategies, capability filters and health plug in here: the
 * router already sees everything they need, and a strategy may reorder the
 * candidates freely.
 */
#ifndef LLMUX_ROUTER_H
#define LLMUX_ROUTER_H

#include "config/config.h"
#include "core/error.h"
#include "request/request.h"

/* Per-target health (cooldowns after failures): a place kept for it. NULL =
 * every target is healthy; otherwise usable() says whether a target may be
 * tried now, and why not. */
typedef struct lx_health {
    int (*usable)(const struct lx_health *h, const lx_provider_cfg *provider, const char *model,
                  double now_ms, char *why, size_t why_cap);
} lx_health;

typedef struct lx_route_input {
    const char *model;          /* the request's "model" */
    const lx_request *request;  /* read-only; llmux__request_features(request) on demand */
    const char *task;           /* call options; NULL when not given */
    const char *workflow;
    const char *key_id;         /* the caller's gateway key id, once keys land; NULL = anonymous */
    int stream;
    double now_ms;              /* monotonic clock of the call's start */
    const lx_health *health;
} lx_route_input;

typedef struct lx_candidate {
    const lx_provider_cfg *provider;
    const char *model;          /* the provider's model id (config or the route's own copy) */
} lx_candidate;

typedef struct lx_skip {
    lx_candidate target;
    char *reason;               /* owned */
} lx_skip;

#define LX_ROUTE_INLINE 8

typedef struct lx_route {
    const char *kind;           /* "alias" or "direct" */
    size_t n_listed;            /* targets the alias lists (1 for a direct route) */
    lx_candidate inline_candidates[LX_ROUTE_INLINE];
    lx_candidate *candidates;   /* in the order to try; owned */
    size_t n_candidates;
    lx_skip *skipped;           /* passed over, in config order; owned */
    size_t n_skipped;
    char *direct_model;         /* a direct route's model id, owned */
} lx_route;

/* Resolve the call. LLMUX_OK with at least one candidate; UNKNOWN_MODEL
 * (404) for a name that is no alias; UNSUPPORTED when every target was passed
 * over (the message gives each reason); NO_MEMORY. The route is owned: free
 * it with llmux__route_free, also on failure. */
int llmux__route(const lx_config *cfg, const lx_route_input *in, lx_route *out, lx_err *err);
void llmux__route_free(lx_route *r);

#endif
