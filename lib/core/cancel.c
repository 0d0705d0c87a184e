#include "core/cancel.h"

#include <stdlib.h>

int llmux_cancel_new(llmux_cancel **out)
{
    if (!out)
        return LLMUX_ERR_INVALID_ARGUMENT;
    llmux_cancel *c = calloc(1, sizeof *c);
    *out = c;
    if (!c)
        return LLMUX_ERR_NO_MEMORY;
    atomic_init(&c->fired, 0);
    pthread_mutex_init(&c->mu, NULL);
    return LLMUX_OK;
}

void llmux_cancel_trigger(llmux_cancel *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    atomic_store_explicit(&c->fired, 1, memory_order_release);
    for (size_t i = 0; i < c->n_watchers; i++)
        c->watchers[i].fn(c->watchers[i].arg);
    pthread_mutex_unlock(&c->mu);
}

int llmux_cancel_fired(const llmux_cancel *c)
{
    return llmux__cancel_fired(c);
}

void llmux_cancel_free(llmux_cancel *c)
{
    if (!c)
        return;
    pthread_mutex_destroy(&c->mu);
    free(c);
}

int llmux__cancel_watch(llmux_cancel *c, lx_wake_fn fn, void *arg)
{
    int rc = -1;
    pthread_mutex_lock(&c->mu);
    if (c->n_watchers < LX_CANCEL_MAX_WATCHERS) {
        c->watchers[c->n_watchers].fn = fn;
        c->watchers[c->n_watchers].arg = arg;
        c->n_watchers++;
        rc = 0;
    }
    if (atomic_load_explicit(&c->fired, memory_order_acquire))
        fn(arg);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void llmux__cancel_unwatch(llmux_cancel *c, lx_wake_fn fn, void *arg)
{
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->n_watchers; i++)
        if (c->watchers[i].fn == fn && c->watchers[i].arg == arg) {
            c->watchers[i] = c->watchers[--c->n_watchers];
            break;
        }
    pthread_mutex_unlock(&c->mu);
}
