/*
 * The ledger: the engine's view of spend. It hashes gateway keys before any
 * store sees them and forwards reserve, settle and report to the configured
 * store (lx_store_ops).
 */
#ifndef LLMUX_LEDGER_H
#define LLMUX_LEDGER_H

#include "core/error.h"
#include "ledger/journal.h"
#include "ledger/store.h"

typedef struct lx_ledger {
    const lx_store_ops *ops;
    void *store;
    lx_journal *journal; /* the store, when it is the journal store; NULL otherwise */
} lx_ledger;

/* A ledger over the in-memory store. */
int llmux__ledger_new(lx_ledger **out, long max_rows);
/* A ledger over the journal store (replays o->path first). */
int llmux__ledger_open_journal(lx_ledger **out, const lx_journal_options *o, lx_err *err);
void llmux__ledger_free(lx_ledger *l);
int llmux__ledger_reserve(lx_ledger *l, const lx_charge *expected, lx_reservation *r, lx_err *err);
int llmux__ledger_settle(lx_ledger *l, lx_reservation *r, const lx_charge *actual, lx_err *err);
int llmux__ledger_report(lx_ledger *l, const char *group_by, char **out, lx_err *err);
/* "key-" + the first 16 hex digits of SHA-256(key); out must hold 21 bytes. */
void llmux__key_fingerprint(const char *key, char out[21]);

#endif
