/*
 * Observers at the engine's tail: called once per attempt and once per call,
 * in registration order, on the calling thread, after the result is complete.
 * The ledger's settle is one (engine/ledger_observer.c); budget settle, the
 * call log, metrics and target health are the next ones. An observer must not
 * block for long, must be thread-safe (calls run concurrently), and never
 * records call->key, only call->key_id.
 */
#ifndef LLMUX_ENGINE_OBSERVER_H
#define LLMUX_ENGINE_OBSERVER_H

#include "engine/result.h"
#include "ledger/store.h"

typedef struct lx_call_info {
    const llmux_result *res;
    const char *key_id;           /* a known key's id, "key-<sha256 prefix>" for an unknown
                                     one, or NULL = anonymous */
    lx_reservation *reservation;  /* what the ledger reserved before the call */
    const char *request_json;     /* the caller's request text (for the log's content policy) */
    const char *team;             /* the gateway key's team, or NULL */
} lx_call_info;

typedef struct lx_observer {
    const char *name;
    void *state;
    void (*on_attempt)(void *state, const lx_call_info *call, const lx_attempt *a); /* may be NULL */
    void (*on_call)(void *state, const lx_call_info *call);                         /* may be NULL */
} lx_observer;

#define LX_MAX_OBSERVERS 8

#endif
