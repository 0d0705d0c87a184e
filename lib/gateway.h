/* The gateway handle: the config snapshot, the transport and the ledger. */
#ifndef LLMUX_GATEWAY_H
#define LLMUX_GATEWAY_H

#include "config/config.h"
#include "ledger/ledger.h"
#include "transport/transport.h"

struct llmux {
    lx_config *cfg; /* immutable snapshot; calls take a reference */
    lx_transport *transport;
    lx_ledger *ledger;
};

#endif
