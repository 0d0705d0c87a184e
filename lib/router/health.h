/*
 * Per-target health, owned by the gateway beside the immutable config: in-flight
 * calls, a moving average of latency, consecutive failures and a cooldown
 * (circuit breaker). A target that failed `trip_after` times in a row, or was
 * throttled (429), rests for its Retry-After or an exponential cooldown; when
 * the rest is over one call probes it (half-open) while others still skip it,
 * and a success makes it trusted again. Lock-free: atomics per target.
 */
#ifndef LLMUX_ROUTER_HEALTH_H
#define LLMUX_ROUTER_HEALTH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef struct lx_target_health {
    atomic_int in_flight;
    atomic_llong ewma_us;         /* latency moving average (1/8 weight), µs; 0 = none yet */
    atomic_int failures;          /* consecutive */
    atomic_llong cooldown_until;  /* monotonic ms; 0 = trusted */
    atomic_int probing;           /* a half-open probe is in flight */
    atomic_int last_status;       /* the status that tripped the breaker */
} lx_target_health;

typedef struct lx_health {
    lx_target_health *t;
    size_t n;
    atomic_uint *rr; /* round-robin cursor per alias */
    size_t n_aliases;
    atomic_ullong rng;
    int trip_after;       /* consecutive failures that start a cooldown; 0 = never */
    long cooldown_ms;     /* the first cooldown; doubled per further failure */
    long max_cooldown_ms;
} lx_health;

int llmux__health_new(lx_health **out, size_t n_targets, size_t n_aliases);
void llmux__health_free(lx_health *h);

/* 1 when target i may be tried at now_ms; else 0 and why. A target whose
 * cooldown ended is handed to one caller as a probe. */
int llmux__health_usable(lx_health *h, size_t i, double now_ms, char *why, size_t cap);
/* A probe granted by usable() that the call never used: let another caller probe. */
void llmux__health_unprobe(lx_health *h, size_t i);
void llmux__health_begin(lx_health *h, size_t i);
/* The attempt's end: status (llmux_status), latency, Retry-After (-1 none). */
void llmux__health_end(lx_health *h, size_t i, int status, double latency_ms,
                       long retry_after_ms, double now_ms);
/* A uniformly random number below n (n > 0). */
uint64_t llmux__health_random(lx_health *h, uint64_t n);

#endif
