#ifndef LLMUX_ENGINE_LEDGER_OBSERVER_H
#define LLMUX_ENGINE_LEDGER_OBSERVER_H

#include "engine/observer.h"
#include "ledger/ledger.h"

lx_observer llmux__ledger_observer(lx_ledger *l);

#endif
