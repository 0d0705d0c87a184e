/*
 * The inner loop of the JSON scanners: the length of the run of string bytes
 * that need no attention (not '"', not '\\', not a control character). Most
 * bytes of a chat request or answer are such runs, so they are skipped 16 at
 * a time with SSE2 where the compiler targets it, one at a time elsewhere.
 */
#ifndef LLMUX_WIRE_JSON_SCAN_H
#define LLMUX_WIRE_JSON_SCAN_H

#include <stddef.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* The scanners' per-token helpers are small and called everywhere: inlining
 * them halves the cost of checking a typical request (bench_micro). */
#if defined(__GNUC__)
#define LLMUX_JSON_INLINE static inline __attribute__((always_inline))
#else
#define LLMUX_JSON_INLINE static inline
#endif

/* Offset of the first byte at or after i that is '"', '\\' or below 0x20
 * (and, with stop_high, at or above 0x80: the check validates UTF-8 there);
 * len when there is none. stop_high is a constant at every call site. */
static inline size_t llmux__json_run(const char *s, size_t i, size_t len, int stop_high)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i bslash = _mm_set1_epi8('\\');
    const __m128i ctl = _mm_set1_epi8(0x1f);
    while (i + 16 <= len) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        __m128i hit = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash));
        hit = _mm_or_si128(hit, _mm_cmpeq_epi8(_mm_min_epu8(v, ctl), v)); /* v <= 0x1f */
        int mask = _mm_movemask_epi8(hit);
        if (stop_high)
            mask |= _mm_movemask_epi8(v); /* the top bit of each byte */
        if (mask)
            return i + (size_t)__builtin_ctz((unsigned)mask);
        i += 16;
    }
#endif
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\' || c < 0x20 || (stop_high && c >= 0x80))
            return i;
        i++;
    }
    return len;
}

static inline size_t llmux__json_plain_run(const char *s, size_t i, size_t len)
{
    return llmux__json_run(s, i, len, 0);
}

#endif
