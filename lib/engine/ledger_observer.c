/* The observer that settles each call into the ledger. */
#include "engine/ledger_observer.h"

static void settle(void *state, const lx_call_info *call)
{
    const llmux_result *res = call->res;
    lx_charge c = {
        call->key_id, res->workflow, res->task,
        res->status == LLMUX_OK ? res->model : NULL,
        res->status == LLMUX_OK ? res->provider : NULL,
        res->status == LLMUX_OK, res->usage, res->cost_nusd, res->cost_estimated,
        call->team, res->alias,
    };
    lx_err err = {0};
    /* a store that cannot record is the store's to report (its own log, a
     * journal); the caller's answer is not taken back */
    llmux__ledger_settle(state, call->reservation, &c, &err);
}

lx_observer llmux__ledger_observer(lx_ledger *l)
{
    lx_observer o = {"ledger", l, NULL, settle};
    return o;
}
