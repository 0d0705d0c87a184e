/* The one string hash of the library (FNV-1a, 64-bit): hash tables for aliases
 * and ledger rows. Not for anything an attacker must not be able to collide
 * cheaply: tables that hold caller-chosen strings cap their probe lengths or
 * their size. */
#ifndef LLMUX_CORE_HASH_H
#define LLMUX_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint64_t llmux__hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return h;
}

#endif
