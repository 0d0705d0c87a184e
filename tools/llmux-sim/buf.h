/* buf.h - a growable byte buffer with a hard cap, for llmux-sim.
 *
 * Errors are sticky: once an append fails (cap reached or out of memory) the
 * buffer stays "failed" and later appends do nothing, so a caller can render a
 * whole response and check buf_ok() once at the end. */
#ifndef LLMUX_SIM_BUF_H
#define LLMUX_SIM_BUF_H

#include <stddef.h>

typedef struct sim_buf {
    char *data;    /* NUL-terminated when len > 0 or after any append */
    size_t len;
    size_t cap;
    size_t max;    /* never grows beyond this many bytes (plus the NUL) */
    int failed;
} sim_buf;

void sim_buf_init(sim_buf *b, size_t max);
void sim_buf_free(sim_buf *b);
/* Empties the buffer and clears the failed flag; keeps the allocation. */
void sim_buf_reset(sim_buf *b);
/* Makes room for `extra` more bytes (plus a NUL); 0 on success, -1 if that
 * would pass the cap or memory ran out (the buffer is then failed). */
int sim_buf_reserve(sim_buf *b, size_t extra);
int sim_buf_append(sim_buf *b, const void *p, size_t n);
int sim_buf_puts(sim_buf *b, const char *s);
int sim_buf_printf(sim_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Appends s[0..n) as a quoted JSON string. Control characters are escaped and
 * invalid UTF-8 bytes become \ufffd, so the output is always valid JSON. */
int sim_buf_json_str(sim_buf *b, const char *s, size_t n);
/* Appends a decimal integer (no printf on the hot path). */
int sim_buf_u64(sim_buf *b, unsigned long long v);
int sim_buf_i64(sim_buf *b, long long v);
/* Removes the first n bytes (memmove of the rest). */
void sim_buf_consume(sim_buf *b, size_t n);
static inline int sim_buf_ok(const sim_buf *b) { return !b->failed; }

/* Length of the longest prefix of s[0..n) that is valid UTF-8 and does not end
 * in the middle of a sequence, looking at most at max bytes. */
size_t sim_utf8_prefix(const char *s, size_t n, size_t max);

#endif
