/*
 * Token usage of one exchange, as every adapter reports it, in OpenAI's
 * terms: prompt tokens include cache reads and writes, completion tokens
 * include reasoning. -1 = the provider did not say. Counts are 64-bit; an
 * adapter stores a value only when it is a whole number in [0, 1e15]
 * (llmux__token_count), anything else stays -1.
 */
#ifndef LLMUX_CORE_USAGE_H
#define LLMUX_CORE_USAGE_H

#include <stdint.h>

typedef struct lx_usage {
    int64_t prompt_tokens;
    int64_t completion_tokens;
    int64_t cached_tokens;      /* cache reads, part of prompt_tokens */
    int64_t cache_write_tokens; /* cache writes (all lifetimes), part of prompt_tokens */
    int64_t cache_write_1h_tokens; /* the 1-hour writes among them (Anthropic); -1 = not split */
    int64_t reasoning_tokens;   /* part of completion_tokens */
    int64_t total_tokens;       /* the provider's own total, to check the parts against; -1 = not given */
    int64_t absurd; /* 1: the provider reported a count out of range: ignored, noted
                       (64-bit, so the record has no padding and compares bytewise) */
} lx_usage;

#define LX_USAGE_UNKNOWN {-1, -1, -1, -1, -1, -1, -1, 0}

#endif
