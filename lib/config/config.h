/*
 * The validated, immutable config snapshot. Built once by llmux__config_parse;
 * shared read-only by every call and kept alive by a reference count, so a
 * future reload can swap snapshots while calls in flight keep theirs, and a
 * result can borrow names from the snapshot that produced it.
 */
#ifndef LLMUX_CONFIG_H
#define LLMUX_CONFIG_H

#include <stdatomic.h>
#include <stddef.h>

#include "core/error.h"
#include "prices/prices.h"
#include "providers/provider.h"

typedef struct lx_target {
    lx_provider_cfg *provider;
    char *model;  /* the provider's model id */
    long weight;  /* for the weighted strategy; 1 by default */
    char *params; /* "params": request members for this target, as JSON object text; NULL = none */
    size_t index; /* unique over every alias's targets: the health table's slot */
} lx_target;

typedef enum lx_strategy {
    LX_STRATEGY_ORDERED,
    LX_STRATEGY_WEIGHTED,
    LX_STRATEGY_ROUND_ROBIN,
    LX_STRATEGY_LEAST_LATENCY,
    LX_STRATEGY_LEAST_BUSY,
    LX_STRATEGY_LOWEST_COST
} lx_strategy;

typedef struct lx_alias {
    char *name;
    lx_target *targets;
    size_t n_targets;
    lx_strategy strategy;
    size_t index; /* position in cfg->aliases */
    const struct lx_alias *on_context_window; /* where a prompt too long for every target goes */
    const struct lx_alias *on_content_filter; /* where a refused prompt goes */
    long hedge_after_ms; /* plain calls: a second target if the first is silent this long; 0 = off */
} lx_alias;

/* Retries of the same target (routing.retry); max_retries 0 = none. */
typedef struct lx_retry {
    long max_retries;
    long backoff_ms, max_backoff_ms; /* exponential, with full jitter */
    long retry_after_cap_ms;          /* a longer Retry-After moves on instead */
    unsigned on;                      /* bit (-status) for each class retried */
} lx_retry;

/* A route rule: every condition given must match; -1 = not given. */
typedef struct lx_rule {
    char *task, *workflow, *key; /* NULL = any */
    char *team;                  /* the gateway key's team; NULL = any */
    int has_tools, has_images, json_schema, stream;
    long min_prompt_tokens, max_prompt_tokens;
    int needs_features; /* a condition reads the request's features */
    const lx_alias *use;
} lx_rule;
/* The "log" object (docs/observability.md). Content policies are the log
 * layer's LX_CONTENT_* values: 0 off, 1 redacted, 2 full. */
typedef struct lx_log_cfg {
    char *file;              /* NULL = no file sink */
    long max_bytes, max_age_s, retain_s, retain_bytes; /* 0 = no limit */
    char *otlp_url;          /* NULL = no exporter */
    long otlp_batch, otlp_timeout_ms, otlp_interval_ms;
    long queue;
    int attempts;            /* a record per attempt too */
    int content;
    char **content_keys;     /* "key-<sha256 prefix>" with a stricter policy */
    int *content_key_policy;
    size_t n_content_keys;
    char **content_teams;    /* teams with a stricter policy */
    int *content_team_policy;
    size_t n_content_teams;
} lx_log_cfg;

typedef struct lx_config {
    atomic_int refs;
    lx_provider_cfg *providers;
    size_t n_providers;
    lx_alias *aliases;
    size_t n_aliases;
    /* open-addressing index over aliases: slots hold alias index + 1, 0 = empty */
    unsigned *alias_slots;
    size_t alias_mask;
    long timeout_ms;         /* whole-call default */
    long connect_timeout_ms; /* default per provider */
    int allow_direct;        /* accept "provider/model" as a model name */
    int model_wins;          /* routing.requested_model_wins: a requested alias beats the rules */
    int check_capabilities;  /* routing.check_capabilities: filter targets by the capability table */
    lx_rule *rules;
    size_t n_rules;
    size_t n_targets_total;  /* over every alias */
    lx_retry retry;
    long cooldown_after;     /* consecutive failures that rest a target; 0 = never */
    long cooldown_ms, cooldown_max_ms;
    long max_connections;    /* idle connections kept for reuse */
    int http2;
    int compression;         /* ask for gzip/brotli/zstd responses */
    size_t max_response_bytes;
    long ledger_max_rows;    /* distinct values per ledger dimension */
    char *ledger_journal;    /* ledger.journal: the journal's path; NULL = memory only */
    int ledger_fsync;        /* 0 every_call, 1 interval, 2 never (ledger/journal.h) */
    long ledger_fsync_interval_ms;
    long ledger_compact_bytes; /* compact the journal past this size */
    int strict;              /* warnings at open are errors */
    lx_log_cfg log;
    char **warnings;         /* "path: message" for what will not work as written */
    size_t n_warnings;
    lx_price_table *prices;  /* "prices" and "price_file" entries; NULL = none */
    char *price_file_source; /* "price_file <path>", the source of its entries */
    int require_prices;      /* refuse a target without a known price */
    /* "keys", "teams", "budgets" as JSON text (NULL = absent), parsed by lib/policy */
    char *keys_json, *teams_json, *budgets_json;
    int require_key;         /* a call without a gateway key is refused */
} lx_config;

/* Parse and validate. On error returns LLMUX_ERR_CONFIG (or NO_MEMORY) and a
 * message naming the JSON path. */
int llmux__config_parse(lx_config **out, const char *json, size_t len, lx_err *err);
void llmux__config_ref(lx_config *cfg);
void llmux__config_unref(lx_config *cfg);

const lx_alias *llmux__config_find_alias(const lx_config *cfg, const char *name);
lx_provider_cfg *llmux__config_find_provider(const lx_config *cfg, const char *name,
                                                size_t name_len);

#endif
