/*
 * A sans-I/O decoder of the AWS event-stream binary framing
 * (application/vnd.amazon.eventstream; Bedrock's ConverseStream). Feed it
 * bytes in any fragmentation; it calls back once per whole message whose
 * prelude CRC and message CRC (CRC-32, IEEE) both check. Every message is
 *
 *   total_length u32 | headers_length u32 | prelude_crc u32 |
 *   headers | payload | message_crc u32        (big-endian)
 *
 * and each header is name_len u8, name, type u8, value (types 0-9 below).
 * Hard limits: a message of at most max_message bytes (and botocore's 24 MiB
 * payload and 128 KiB headers), at most LX_ES_MAX_HEADERS headers.
 */
#ifndef LLMUX_WIRE_EVENTSTREAM_H
#define LLMUX_WIRE_EVENTSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

enum {
    LX_ES_BOOL_TRUE = 0,
    LX_ES_BOOL_FALSE = 1,
    LX_ES_BYTE = 2,
    LX_ES_SHORT = 3,
    LX_ES_INT = 4,
    LX_ES_LONG = 5,
    LX_ES_BYTES = 6,
    LX_ES_STRING = 7,
    LX_ES_TIMESTAMP = 8,
    LX_ES_UUID = 9,
};

#define LX_ES_MAX_HEADERS 32
#define LX_ES_MAX_HEADERS_BYTES (128u * 1024)
#define LX_ES_MAX_PAYLOAD (24u * 1024 * 1024)
#define LX_ES_PRELUDE 12
#define LX_ES_MIN_MESSAGE 16

typedef struct lx_es_header {
    const char *name; /* not NUL-terminated */
    size_t name_len;
    int type;
    const char *value; /* bytes, string, uuid: the bytes; else NULL */
    size_t value_len;
    int64_t ival;      /* booleans (1/0), integers, timestamps */
} lx_es_header;

/* One message, valid during the callback only. */
typedef struct lx_es_message {
    lx_es_header headers[LX_ES_MAX_HEADERS];
    size_t n_headers;
    const char *payload;
    size_t payload_len;
} lx_es_message;

/* Non-zero return stops decoding; llmux__es_feed returns that value. */
typedef int (*lx_es_message_cb)(void *ctx, const lx_es_message *m);

typedef struct lx_eventstream {
    lx_buf buf;         /* an unfinished message */
    size_t max_message; /* bytes, prelude and CRCs included */
    size_t messages;    /* delivered so far */
    int failed;         /* a framing error: every later feed fails the same way */
} lx_eventstream;

/* The decoder's errors (negative; a callback's stop value is returned as is). */
#define LX_ES_NO_MEMORY (-1)
#define LX_ES_TOO_LARGE (-2)
#define LX_ES_PRELUDE_CRC (-3)
#define LX_ES_MESSAGE_CRC (-4)
#define LX_ES_BAD_HEADERS (-5)
#define LX_ES_BAD_LENGTH (-6)

void llmux__es_init(lx_eventstream *d, size_t max_message);
/* 0, a callback's non-zero value, or an LX_ES_* error. */
int llmux__es_feed(lx_eventstream *d, const char *bytes, size_t len, lx_es_message_cb cb,
                   void *ctx);
/* 1 when bytes of an unfinished message are pending (the stream was cut). */
int llmux__es_pending(const lx_eventstream *d);
void llmux__es_free(lx_eventstream *d);
/* What an LX_ES_* error means, in words. */
const char *llmux__es_strerror(int code);

/* The first header named name, or NULL. */
const lx_es_header *llmux__es_header(const lx_es_message *m, const char *name);
/* 1 when header name is a string equal to value. */
int llmux__es_header_is(const lx_es_message *m, const char *name, const char *value);

/* Appends one message with string headers (names[i] = values[i]) and a
 * payload: what a provider sends (tests, benchmarks). 0, or as lx_buf. */
int llmux__es_encode(lx_buf *out, const char *const *names, const char *const *values,
                     size_t n_headers, const void *payload, size_t payload_len);

#endif
