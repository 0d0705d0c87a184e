/* UTF-8 well-formedness (RFC 3629: no overlongs, no surrogates, nothing
 * above U+10FFFF), shared by the JSON check, the JSON string writer and the
 * sanitisers of text that comes from outside. */
#ifndef LLMUX_CORE_UTF8_H
#define LLMUX_CORE_UTF8_H

#include <stddef.h>

/* The length (2 to 4) of the well-formed multi-byte sequence at s (s[0] >=
 * 0x80), avail bytes being readable; 0 when it is not well-formed or cut. */
static inline size_t llmux__utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf; /* range of the second byte */
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0; /* no overlongs */
        else if (c == 0xed)
            hi = 0x9f; /* no surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f; /* nothing above U+10FFFF */
    } else {
        return 0;
    }
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < n; k++)
        if ((s[k] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* In place: every byte of s that is not part of a well-formed character
 * (a cut one included) becomes '?'. */
static inline void llmux__utf8_repair(char *s)
{
    unsigned char *m = (unsigned char *)s;
    size_t len = 0;
    while (m[len])
        len++;
    for (size_t i = 0; i < len; i++) {
        if (m[i] < 0x80)
            continue;
        size_t n = llmux__utf8_seq(m + i, len - i);
        if (n)
            i += n - 1;
        else
            m[i] = '?';
    }
}

#endif
