/* The gateway handle: the config snapshot, the transport and the ledger. */
#ifndef LLMUX_GATEWAY_H
#define LLMUX_GATEWAY_H

#include "config/config.h"
#include "ledger/ledger.h"
#include "transport/transport.h"

struct llmux {
    llmux_config *cfg; /* immutable snapshot; calls take a reference */
    llmux_transport *transport;
    llmux_ledger *ledger;
};

#endif
