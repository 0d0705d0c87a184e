/* The policy's own structures, shared by its files (not by other layers). */
#ifndef LLMUX_POLICY_INTERNAL_H
#define LLMUX_POLICY_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include "core/buf.h"
#include "ledger/store.h"
#include "policy/policy.h"

#define LX_MAX_ALERTS 8

typedef struct lx_budget {
    int64_t limit_nusd;
    int period;                      /* LX_PERIOD_* */
    double alert_at[LX_MAX_ALERTS];  /* fractions of the limit, ascending */
    int n_alerts;
    /* under policy->mu */
    int64_t start;                   /* the current period's start (unix s); 0 = total */
    int64_t spent_nusd, held_nusd;
    unsigned fired;                  /* alert_at bits fired this period */
} lx_budget;

typedef struct lx_bucket {
    long per_min;   /* 0 = no limit */
    double level;   /* tokens in the bucket; may go below 0 (tpm debt) */
    double last_ms; /* monotonic ms of the last refill */
} lx_bucket;

typedef struct lx_scope {
    const char *kind; /* "key", "team", "global" */
    char *name;
    lx_budget *budgets;
    size_t n_budgets;
    lx_bucket rpm, tpm;
} lx_scope;

struct lx_pkey {
    lx_scope s;                 /* s.name is the key's id */
    unsigned char sha[32];      /* under policy->keys_lock */
    char *team_name;            /* NULL: no team */
    lx_scope *team;             /* the team's budgets and limits, NULL when "teams" has none */
    char **models;              /* NULL: every alias */
    size_t n_models;
    int direct;                 /* may name provider/model */
    int64_t expires;            /* unix s; 0 = never */
    _Atomic int revoked;
};

struct lx_policy {
    pthread_rwlock_t keys_lock;
    lx_pkey **keys;
    size_t n_keys, cap_keys;
    size_t *slots;              /* the digest index (policy.c); NULL while there are no keys */
    size_t slot_mask;
    lx_scope *teams;
    size_t n_teams;
    lx_scope global;
    int require_key;
    const lx_config *cfg;       /* aliases, for checking "models" */
    pthread_mutex_t mu;         /* budgets and buckets */
    lx_alert_fn alert;
    void *alert_payload;
    struct evp_md_st *sha256;   /* EVP_MD fetched once */
};

/* budget.c */
struct cJSON;
int llmux__budgets_parse(lx_scope *s, const struct cJSON *arr, const char *path, lx_err *err);
int llmux__limits_parse(lx_scope *s, const struct cJSON *obj, const char *path, lx_err *err);
/* Under mu: can every budget of s take `need` more (LLMUX_OK or BUDGET)? */
int llmux__budget_check(lx_scope *s, int64_t now, int64_t need, lx_err *err);
void llmux__budget_hold(lx_scope *s, int64_t need);
/* Under mu: release `held`, add `cost`; appends fired alerts' JSON to alerts
 * (one per line). */
void llmux__budget_settle(lx_scope *s, int64_t now, int64_t held, int64_t cost, lx_buf *alerts);
int llmux__budget_json(lx_buf *b, lx_scope *s, int64_t now);
/* Under mu: count spend recorded at time t (unix s) before this process
 * started into every budget of s whose current period holds t; thresholds
 * already passed are marked fired, silently. */
void llmux__budget_seed(lx_scope *s, int64_t now, int64_t t, int64_t cost);
/* limit.c, under mu */
int llmux__limit_check(lx_scope *s, double now_ms, int64_t tokens, long *retry_after_ms,
                       lx_err *err);
void llmux__limit_take(lx_scope *s, int64_t tokens);
void llmux__limit_adjust(lx_scope *s, int64_t tokens);
void llmux__scope_free(lx_scope *s);

#endif
