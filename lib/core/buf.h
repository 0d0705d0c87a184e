/* A growable byte buffer with a hard cap, always NUL-terminated. */
#ifndef LLMUX_CORE_BUF_H
#define LLMUX_CORE_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct lx_buf {
    char *data;   /* NUL-terminated when not NULL */
    size_t len;   /* bytes used, excluding the NUL */
    size_t cap;   /* bytes allocated */
    size_t limit; /* appends that would exceed this fail; 0 = no limit */
} lx_buf;

#define LX_BUF_INIT {NULL, 0, 0, 0}

/* 0 on success, -1 on allocation failure, -2 when the limit would be exceeded. */
int llmux__buf_reserve(lx_buf *b, size_t extra);
int llmux__buf_append(lx_buf *b, const void *data, size_t len);
int llmux__buf_puts(lx_buf *b, const char *s);
/* A decimal integer, without printf (for hot paths); returns as llmux__buf_append. */
int llmux__buf_int(lx_buf *b, long long v);
int llmux__buf_printf(lx_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Append s as a JSON string literal, quotes included. The literal is always
 * valid UTF-8: a byte of s that does not belong to a well-formed character
 * is written as U+FFFD. */
int llmux__buf_json_string(lx_buf *b, const char *s);
/* Hand the data to the caller (who frees it) and empty the buffer. Never NULL
 * unless allocation fails: an empty buffer yields "". */
char *llmux__buf_steal(lx_buf *b);
void llmux__buf_clear(lx_buf *b);
void llmux__buf_free(lx_buf *b);

#endif
