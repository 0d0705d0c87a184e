#include "router/health.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/error.h"

int llmux__health_new(lx_health **out, size_t n_targets, size_t n_aliases)
{
    lx_health *h = calloc(1, sizeof *h);
    if (!h)
        return LLMUX_ERR_NO_MEMORY;
    h->t = calloc(n_targets ? n_targets : 1, sizeof *h->t);
    h->rr = calloc(n_aliases ? n_aliases : 1, sizeof *h->rr);
    if (!h->t || !h->rr) {
        llmux__health_free(h);
        return LLMUX_ERR_NO_MEMORY;
    }
    h->n = n_targets;
    h->n_aliases = n_aliases;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    atomic_init(&h->rng, (unsigned long long)ts.tv_nsec * 0x9E3779B97F4A7C15ull ^
                             (unsigned long long)(uintptr_t)h);
    h->trip_after = 0; /* off until the config says (routing.cooldown) */
    h->cooldown_ms = 5000;
    h->max_cooldown_ms = 300000;
    *out = h;
    return LLMUX_OK;
}

void llmux__health_free(lx_health *h)
{
    if (!h)
        return;
    free(h->t);
    free(h->rr);
    free(h);
}

int llmux__health_usable(lx_health *h, size_t i, double now_ms, char *why, size_t cap)
{
    lx_target_health *t = &h->t[i];
    long long until = atomic_load_explicit(&t->cooldown_until, memory_order_acquire);
    if (!until)
        return 1;
    if ((double)until > now_ms) {
        snprintf(why, cap, "cooling down for %.0f ms more after %d failure%s (last: %s)",
                 (double)until - now_ms, atomic_load(&t->failures),
                 atomic_load(&t->failures) == 1 ? "" : "s",
                 llmux__status_class(atomic_load(&t->last_status)));
        return 0;
    }
    int expected = 0;
    if (atomic_compare_exchange_strong(&t->probing, &expected, 1))
        return 1; /* this call is the probe */
    snprintf(why, cap, "half-open: another call is probing it");
    return 0;
}

void llmux__health_unprobe(lx_health *h, size_t i)
{
    atomic_store(&h->t[i].probing, 0);
}

void llmux__health_begin(lx_health *h, size_t i)
{
    atomic_fetch_add_explicit(&h->t[i].in_flight, 1, memory_order_relaxed);
}

/* A failure that says something about the target (not about the request). */
static int counts_against(int status)
{
    return llmux__status_falls_back(status) && status != LX_CANNOT_SERVE &&
           status != LLMUX_ERR_AUTH && status != LLMUX_ERR_PERMISSION &&
           status != LLMUX_ERR_NOT_FOUND;
}

void llmux__health_end(lx_health *h, size_t i, int status, double latency_ms,
                       long retry_after_ms, double now_ms)
{
    lx_target_health *t = &h->t[i];
    atomic_fetch_sub_explicit(&t->in_flight, 1, memory_order_relaxed);
    if (status == LLMUX_OK) {
        long long us = (long long)(latency_ms * 1000.0);
        long long old = atomic_load_explicit(&t->ewma_us, memory_order_relaxed);
        atomic_store_explicit(&t->ewma_us, old ? old + (us - old) / 8 : us,
                              memory_order_relaxed);
        atomic_store(&t->failures, 0);
        atomic_store(&t->cooldown_until, 0);
        atomic_store(&t->probing, 0);
        return;
    }
    if (!h->trip_after || !counts_against(status)) { /* the breaker is off, or not its business */
        atomic_store(&t->probing, 0);
        return;
    }
    int f = atomic_fetch_add(&t->failures, 1) + 1;
    if (status != LLMUX_ERR_RATE_LIMIT && f < h->trip_after) {
        atomic_store(&t->probing, 0);
        return;
    }
    long rest = h->cooldown_ms;
    for (int k = h->trip_after; k < f && rest < h->max_cooldown_ms; k++)
        rest *= 2;
    if (retry_after_ms >= 0)
        rest = retry_after_ms;
    if (rest > h->max_cooldown_ms)
        rest = h->max_cooldown_ms;
    atomic_store(&t->last_status, status);
    atomic_store(&t->cooldown_until, (long long)now_ms + (rest > 0 ? rest : 1));
    atomic_store(&t->probing, 0);
}

uint64_t llmux__health_random(lx_health *h, uint64_t n)
{
    /* splitmix64 over a shared counter: cheap, thread-safe, good enough to weigh targets */
    uint64_t z = atomic_fetch_add_explicit(&h->rng, 0x9E3779B97F4A7C15ull, memory_order_relaxed);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return z % n;
}
