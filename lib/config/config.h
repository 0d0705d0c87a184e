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
#include "providers/provider.h"

typedef struct lx_target {
    lx_provider_cfg *provider;
    char *model; /* the provider's model id */
} lx_target;

typedef struct lx_alias {
    char *name;
    lx_target *targets;
    size_t n_targets;
} lx_alias;

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
    long max_connections;    /* idle connections kept for reuse */
    int http2;
    int compression;         /* ask for gzip/brotli/zstd responses */
    size_t max_response_bytes;
    long ledger_max_rows;    /* distinct values per ledger dimension */
    int strict;              /* warnings at open are errors */
    lx_log_cfg log;
    char **warnings;         /* "path: message" for what will not work as written */
    size_t n_warnings;
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
