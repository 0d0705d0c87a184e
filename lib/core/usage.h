/*
 * Token usage of one exchange, as every adapter reports it, in OpenAI's
 * terms: prompt tokens include cache reads and writes, completion tokens
 * include reasoning. -1 = the provider did not say. Counts are 64-bit and an
 * adapter stores a value only when it is a whole number in
 * [0, LX_USAGE_MAX_TOKENS]; anything else stays -1 and sets `absurd`.
 */
#ifndef LLMUX_CORE_USAGE_H
#define LLMUX_CORE_USAGE_H

#include <stdint.h>

#define LX_USAGE_MAX_TOKENS ((int64_t)1000000000000000) /* 1e15 */

typedef struct lx_usage {
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t cached_tokens;      /* cache reads, part of prompt_tokens */
    int64_t cache_write_tokens; /* cache writes, part of prompt_tokens */
    int64_t reasoning_tokens;   /* part of completion_tokens */
    int absurd;                 /* the provider reported a count out of range, ignored */
} lx_usage;

#define LX_USAGE_UNKNOWN {-1, -1, -1, -1, -1, 0}

/* A JSON number as a token count: the count, or -1 (and *absurd set) when it
 * is negative, fractional, or above LX_USAGE_MAX_TOKENS. */
static inline int64_t llmux__usage_count(double d, int *absurd)
{
    if (d >= 0 && d <= (double)LX_USAGE_MAX_TOKENS && d == (double)(int64_t)d)
        return (int64_t)d;
    if (absurd)
        *absurd = 1;
    return -1;
}

#endif
