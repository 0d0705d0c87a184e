/* The gateway handle: the config snapshot, the transport, the ledger, the
 * call log and metrics, and the observers at the engine's tail. */
#ifndef LLMUX_GATEWAY_H
#define LLMUX_GATEWAY_H

#include "config/config.h"
#include "engine/log_observer.h"
#include "engine/observer.h"
#include "ledger/ledger.h"
#include "policy/policy.h"
#include "router/health.h"
#include "transport/transport.h"

struct llmux {
    lx_config *cfg; /* immutable snapshot; calls take a reference */
    lx_transport *transport;
    lx_ledger *ledger;
    lx_policy *policy; /* gateway keys, budgets, rate limits */
    lx_health *health; /* per-target state beside the immutable config */
    lx_observer observers[LX_MAX_OBSERVERS];
    size_t n_observers;
    lx_log *log;          /* the call log's queue and writer thread */
    lx_metrics *metrics;
    lx_log_observer *log_observer;
};

#endif
