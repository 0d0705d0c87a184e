/*
 * Per-call cancellation (the public llmux_cancel). Any thread may trigger it;
 * the call notices between attempts and, while it waits on the network,
 * through a wake-up the transport registers (curl_multi_wakeup), so a call
 * blocked on a slow provider stops within milliseconds.
 */
#ifndef LLMUX_CORE_CANCEL_H
#define LLMUX_CORE_CANCEL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "llmux.h"

typedef void (*lx_wake_fn)(void *arg);

#define LX_CANCEL_MAX_WATCHERS 8

struct llmux_cancel {
    atomic_int fired;
    pthread_mutex_t mu;
    struct {
        lx_wake_fn fn;
        void *arg;
    } watchers[LX_CANCEL_MAX_WATCHERS];
    size_t n_watchers;
};

static inline int llmux__cancel_fired(const llmux_cancel *c)
{
    return c && atomic_load_explicit(&((llmux_cancel *)c)->fired, memory_order_acquire);
}

/* Call fn(arg) when the cancel fires (at once if it has). 0, or -1 when too
 * many watchers are registered (the caller then polls llmux__cancel_fired). */
int llmux__cancel_watch(llmux_cancel *c, lx_wake_fn fn, void *arg);
void llmux__cancel_unwatch(llmux_cancel *c, lx_wake_fn fn, void *arg);

#endif
