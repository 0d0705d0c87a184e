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

struct curl_slist;
struct llmux_provider_ops;

typedef struct llmux_provider_cfg {
    char *name;
    const struct llmux_provider_ops *ops; /* the adapter for the provider's API family */
    char *type;
    char *base_url;               /* no trailing slash */
    char *api_key_env;            /* NULL when the provider needs no key */
    char *api_key;                /* read from the environment at open; NULL if unset */
    char **extra_headers;         /* "Name: value" lines from the config */
    size_t n_extra_headers;
    long timeout_ms;              /* per attempt; 0 = only the call's deadline */
    long connect_timeout_ms;
    void *adapter_state;          /* built by ops->prepare, freed by ops->release */
} llmux_provider_cfg;

typedef struct llmux_target {
    llmux_provider_cfg *provider;
    char *model; /* the provider's model id */
} llmux_target;

typedef struct llmux_alias {
    char *name;
    llmux_target *targets;
    size_t n_targets;
} llmux_alias;

typedef struct llmux_config {
    atomic_int refs;
    llmux_provider_cfg *providers;
    size_t n_providers;
    llmux_alias *aliases;
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
} llmux_config;

/* Parse and validate. On error returns LLMUX_ERR_CONFIG (or NO_MEMORY) and a
 * message naming the JSON path. */
int llmux__config_parse(llmux_config **out, const char *json, size_t len, llmux_err *err);
void llmux__config_ref(llmux_config *cfg);
void llmux__config_unref(llmux_config *cfg);

const llmux_alias *llmux__config_find_alias(const llmux_config *cfg, const char *name);
llmux_provider_cfg *llmux__config_find_provider(const llmux_config *cfg, const char *name,
                                                size_t name_len);

#endif
