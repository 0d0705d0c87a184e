/*
 * The spend ledger: calls, errors, tokens and cost per key, workflow, task,
 * model and provider, in memory for the gateway's lifetime. Rows per
 * dimension are capped; further values are counted under "(other)".
 * (Budgets with reserve-then-settle and a durable journal build on this.)
 */
#ifndef LLMUX_LEDGER_H
#define LLMUX_LEDGER_H

#include "core/error.h"

typedef struct lx_ledger lx_ledger;

typedef struct lx_ledger_entry {
    const char *key;      /* gateway key (hashed before it is stored); NULL = anonymous */
    const char *workflow; /* NULL = none */
    const char *task;
    const char *model;    /* the provider model that answered; NULL = none */
    const char *provider;
    int ok;
    long prompt_tokens; /* -1 unknown */
    long completion_tokens;
    double cost_usd;    /* negative = unpriced */
} lx_ledger_entry;

#define LLMUX_LEDGER_MAX_ROWS 4096

int llmux__ledger_new(lx_ledger **out);
void llmux__ledger_free(lx_ledger *l);
void llmux__ledger_record(lx_ledger *l, const lx_ledger_entry *e);
int llmux__ledger_report(lx_ledger *l, const char *group_by, char **out, lx_err *err);
/* "key-" + the first 16 hex digits of SHA-256(key); out must hold 21 bytes. */
void llmux__key_fingerprint(const char *key, char out[21]);

#endif
