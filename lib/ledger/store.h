/*
 * The ledger's backend interface. A store keeps calls, errors, tokens and
 * cost by key, workflow, task, model, provider, team and alias, and settles every call
 * against what it reserved before the call: reserve can refuse a call (a
 * budget, a capacity limit, a store that cannot be reached), settle records
 * what the call really used. The in-memory store is here; a durable journal
 * and a shared Redis store implement the same four functions.
 *
 * Money is integer nano-dollars (1e-9 USD) and tokens are 64-bit: sums
 * saturate at INT64_MAX instead of wrapping.
 */
#ifndef LLMUX_LEDGER_STORE_H
#define LLMUX_LEDGER_STORE_H

#include <stdint.h>

#include "core/error.h"
#include "core/usage.h"

typedef struct lx_charge {
    const char *key_id;   /* a configured key's id, "key-<sha256 prefix>" for an unknown
                             key, or NULL = anonymous */
    const char *workflow; /* NULL = none */
    const char *task;
    const char *model;    /* the provider model that answered; NULL = none */
    const char *provider;
    int ok;
    lx_usage usage;
    int64_t cost_nusd;    /* -1 = unpriced */
    int estimated;        /* the cost rests on estimated tokens (a stream without usage) */
    /* appended for gateway keys (issue 20) */
    const char *team;     /* the gateway key's team; NULL = none */
    const char *alias;    /* the alias the call was routed to; NULL = none (direct, refused) */
} lx_charge;

typedef struct lx_reservation {
    uint64_t id;
    int64_t held_nusd;    /* held against budgets until settled */
    int64_t slots[4];     /* the store's own bookkeeping */
    int active;
} lx_reservation;

typedef struct lx_store_ops {
    const char *name;
    /* Before the call: may refuse (LLMUX_ERR_LIMIT, LLMUX_ERR_BUDGET, ...). `expected`
     * names who is calling (key, workflow, task) and, for a direct route, the model. */
    int (*reserve)(void *st, const lx_charge *expected, lx_reservation *out, lx_err *err);
    /* After the call: record what it used and release the reservation. */
    int (*settle)(void *st, lx_reservation *r, const lx_charge *actual, lx_err *err);
    /* {"group_by":..,"rows":[..],"total":{..}}; malloc'd. */
    int (*report)(void *st, const char *group_by, char **out, lx_err *err);
    void (*free)(void *st);
} lx_store_ops;

/* Saturating 64-bit addition for counters. */
static inline int64_t llmux__sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

#define LX_LEDGER_DEFAULT_MAX_ROWS 1000000L

/* The in-memory store: exact totals for up to max_rows distinct values per
 * dimension (key, workflow, task, model, provider, team, alias); a call that would add
 * one more is refused at reserve with LLMUX_ERR_LIMIT naming ledger.max_rows. */
int llmux__memory_store_new(void **out, long max_rows);
extern const lx_store_ops llmux__memory_store_ops;
/* Settle n calls alike at once (the journal's replay of a summary record):
 * c carries their summed usage and cost (-1 = unpriced, for all n). */
int llmux__memory_store_settle_n(void *st, lx_reservation *r, const lx_charge *c, int64_t n,
                                 lx_err *err);

#endif
