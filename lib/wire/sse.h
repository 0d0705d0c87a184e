/*
 * A sans-I/O Server-Sent Events decoder (the WHATWG event-stream format):
 * feed it bytes in any fragmentation, it calls back once per dispatched event.
 * Lines end in \n, \r\n or \r; ':' starts a comment; several data lines are
 * joined with \n; a blank line dispatches. Hard limit on one event's size.
 */
#ifndef LLMUX_WIRE_SSE_H
#define LLMUX_WIRE_SSE_H

#include <stddef.h>

#include "core/buf.h"
#include "core/error.h"

/* Non-zero return stops decoding; llmux__sse_feed returns that value. */
typedef int (*lx_sse_event_cb)(void *ctx, const char *event, const char *data, size_t data_len);

typedef struct lx_sse {
    lx_buf line;  /* the line being assembled */
    lx_buf data;  /* data lines of the event being assembled */
    lx_buf event; /* event name */
    int has_data;
    int last_was_cr; /* a \r ended the previous chunk: skip a following \n */
    size_t max_event;
    size_t events;   /* dispatched so far */
} lx_sse;

#define LLMUX_SSE_DEFAULT_MAX_EVENT (8u * 1024 * 1024)

void llmux__sse_init(lx_sse *s, size_t max_event);
/* Returns 0, the callback's non-zero value, -1 on out of memory, -2 when an
 * event exceeds the size limit. */
int llmux__sse_feed(lx_sse *s, const char *bytes, size_t len, lx_sse_event_cb cb, void *ctx);
/* llmux__sse_feed's own failures as the adapter's error: for rc -1
 * (LLMUX_ERR_NO_MEMORY) and -2 (LLMUX_ERR_BAD_RESPONSE, naming the limit),
 * sets err and returns the status; any other rc, 0. */
int llmux__sse_failure(const lx_sse *s, int rc, lx_err *err);
/* 1 when bytes of an unfinished event are pending (the stream was cut). */
int llmux__sse_pending(const lx_sse *s);
void llmux__sse_free(lx_sse *s);

#endif
