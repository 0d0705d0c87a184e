/*
 * The router: from the requested model name to the ordered list of targets
 * to try, and the reason for that choice. Today: aliases with targets in
 * config order, and "provider/model" when routing.allow_direct is set.
 * Strategies, capability filters and health slot in here.
 */
#ifndef LLMUX_ROUTER_H
#define LLMUX_ROUTER_H

#include "config/config.h"
#include "core/error.h"

typedef struct lx_route {
    const char *kind;              /* "alias" or "direct" */
    const lx_target *targets;   /* in the order to try */
    size_t n_targets;
    lx_target direct;           /* storage for a direct route's one target */
} lx_route;

/* Resolve `model`. For a direct route, direct.model points into `model`
 * past the '/', so `model` must outlive the route. */
int llmux__route(const lx_config *cfg, const char *model, lx_route *out, lx_err *err);

#endif
