/*
 * Gateway keys, budgets and rate limits (docs/keys-and-budgets.md).
 *
 * The policy is built at open from the config's "keys", "teams", "budgets"
 * and "require_key", and changed at run time (llmux_key_add, _rotate,
 * _revoke). A call passes it twice before any provider sees it:
 *   llmux__policy_auth   the plaintext key -> a known key (SHA-256, looked up by digest and confirmed
 *                        with CRYPTO_memcmp), or AUTH;
 *   llmux__policy_admit  after routing: the alias the key may use (PERMISSION),
 *                        rpm/tpm buckets (RATE_LIMIT + retry-after), and every
 *                        budget that applies (key, team, global) reserving the
 *                        call's maximum plausible cost, all under one lock so
 *                        the check and the hold are one step (BUDGET);
 * and once after it, llmux__policy_settle, which turns the hold into the real
 * cost and fires alert thresholds. Keys are never freed before the policy, so
 * an admission may point at its key for the whole call.
 */
#ifndef LLMUX_POLICY_H
#define LLMUX_POLICY_H

#include <stdint.h>

#include "config/config.h"
#include "core/error.h"

typedef struct lx_policy lx_policy;
typedef struct lx_pkey lx_pkey;

/* What a call needs settled after it ran. Zeroed = nothing held. */
typedef struct lx_admission {
    lx_pkey *key;            /* NULL: anonymous */
    int64_t held_nusd;       /* reserved against every budget that applies */
    int64_t held_tokens;     /* taken from the tpm buckets */
    int active;
} lx_admission;

/* A call's demand, read off the route and the request. */
typedef struct lx_demand {
    const char *alias;       /* the alias routed to; NULL for a direct route */
    int64_t max_cost_nusd;   /* -1: some candidate has no known price */
    const char *unpriced;    /* "provider/model" without a price, when max_cost_nusd < 0 */
    int64_t est_tokens;      /* the prompt estimate, for tpm */
} lx_demand;

typedef void (*lx_alert_fn)(const char *alert_json, void *payload);

/* Build from the config; LLMUX_ERR_CONFIG naming the JSON path on bad input. */
int llmux__policy_new(lx_policy **out, const lx_config *cfg, lx_err *err);
void llmux__policy_free(lx_policy *p);
/* 1 when the policy has nothing to do for a call without a key. */
int llmux__policy_idle(const lx_policy *p);

/* Look the plaintext key up. LLMUX_OK with *key (NULL for no key when allowed,
 * and for any key on a gateway that knows none), or LLMUX_ERR_AUTH: *key is
 * then the revoked or expired key, or NULL for an unknown one. */
int llmux__policy_auth(lx_policy *p, const char *plaintext, lx_pkey **key, lx_err *err);
const char *llmux__policy_key_id(const lx_pkey *k);
const char *llmux__policy_key_team(const lx_pkey *k);

/* Permission, rate limits, budgets; LLMUX_OK with *adm holding what to settle.
 * On RATE_LIMIT *retry_after_ms is set. */
int llmux__policy_admit(lx_policy *p, lx_pkey *key, const lx_demand *d, lx_admission *adm,
                        long *retry_after_ms, lx_err *err);
/* Before an alias fallback: the key may use the new alias, and every budget
 * holds the new route's maximum cost too (what it needs beyond what the call
 * holds). PERMISSION or BUDGET; the call keeps what it held either way. */
int llmux__policy_extend(lx_policy *p, lx_pkey *key, const lx_demand *d, lx_admission *adm,
                         lx_err *err);
/* cost_nusd: the call's real cost, -1 when it was billed at an unknown cost
 * (the hold is charged); tokens: prompt + completion used (0 when none). */
void llmux__policy_settle(lx_policy *p, lx_admission *adm, int64_t cost_nusd, int64_t tokens);
/* Whether any budget is configured (keys, teams or global). */
int llmux__policy_budgeted(const lx_policy *p);
/* At open, from the durable ledger: a call settled at t_ms (ms since the
 * epoch, UTC) by key_id (a key's id or NULL) of team (NULL = none) cost
 * cost_nusd (< 0: unpriced, not counted). Counted into the budgets of the
 * key, its team and the gateway whose current period holds it, so budgets
 * keep counting across restarts. Keys unknown to the config (a key added at
 * run time and not yet re-added) count for their team and the gateway. */
void llmux__policy_seed(lx_policy *p, const char *key_id, const char *team, int64_t t_ms,
                        int64_t cost_nusd);
/* Whether key `id` has budgets of its own. */
int llmux__policy_key_budgeted(lx_policy *p, const char *id);
/* The same for the key's own budgets only: a key added at run time, counted
 * from the journal's records under its id. */
void llmux__policy_seed_key(lx_policy *p, const char *key_id, int64_t t_ms, int64_t cost_nusd);

/* The runtime API (lib/llmux.c): spec is a key's config object as JSON, plus
 * "key" (plaintext, hashed at once) instead of "sha256". */
int llmux__policy_key_add(lx_policy *p, const char *id, const char *spec_json, lx_err *err);
int llmux__policy_key_rotate(lx_policy *p, const char *id, const char *secret, lx_err *err);
int llmux__policy_key_revoke(lx_policy *p, const char *id, lx_err *err);
int llmux__policy_keys_json(lx_policy *p, char **out, lx_err *err);
int llmux__policy_budgets_json(lx_policy *p, char **out, lx_err *err);
void llmux__policy_set_alert(lx_policy *p, lx_alert_fn fn, void *payload);

/* Calendar periods in UTC (budget.c): the start of the period holding t. */
enum { LX_PERIOD_DAY, LX_PERIOD_WEEK, LX_PERIOD_MONTH, LX_PERIOD_TOTAL };
int64_t llmux__period_start(int period, int64_t t);
/* y-m-d h:mi:s UTC as unix seconds. */
int64_t llmux__utc_seconds(int y, int mon, int d, int h, int mi, int s);

#endif
