/*
 * AWS Signature Version 4 (header signing), on OpenSSL's SHA-256 and
 * HMAC-SHA256. Pure: the caller gives the time, every header it will send
 * under the signature and the final body; the signer gives the Authorization
 * value. Checked against AWS's published SigV4 test suite (tests/test_sigv4.c).
 *
 * Paths: `path` is the request path exactly as it goes on the wire (already
 * percent-encoded once, e.g. /model/anthropic.claude-v2%3A1/converse). The
 * canonical URI encodes it again, '/' excepted, as AWS does for every service
 * but S3 (botocore's _normalize_url_path): %3A becomes %253A.
 */
#ifndef LLMUX_WIRE_SIGV4_H
#define LLMUX_WIRE_SIGV4_H

#include <stddef.h>
#include <time.h>

#include "core/buf.h"

typedef struct lx_sigv4_header {
    const char *name;  /* any case; signed lowercased */
    const char *value; /* trimmed, inner runs of spaces collapsed, when signed */
} lx_sigv4_header;

#define LX_SIGV4_MAX_HEADERS 16

typedef struct lx_sigv4_request {
    const char *method;  /* "POST" */
    const char *path;    /* as sent, see above; "" means "/" */
    const char *query;   /* as sent, without '?'; NULL or "" for none */
    const lx_sigv4_header *headers; /* every signed header, host and x-amz-date included */
    size_t n_headers;    /* at most LX_SIGV4_MAX_HEADERS */
    const void *payload;
    size_t payload_len;
    const char *amz_date; /* "YYYYMMDDTHHMMSSZ", the x-amz-date value */
    const char *region;
    const char *service;
    const char *access_key;
    const char *secret_key;
} lx_sigv4_request;

/* "YYYYMMDDTHHMMSSZ" for t (UTC) into out[17]. */
void llmux__sigv4_amz_date(time_t t, char out[17]);
/* Lowercase hex SHA-256 of data into out[65]. 0, or -1 when OpenSSL fails. */
int llmux__sigv4_sha256_hex(const void *data, size_t len, char out[65]);
/* AWS's URI encoding: A-Z a-z 0-9 - _ . ~ kept, every other byte %XX
 * (uppercase hex); '/' kept when keep_slash. Appends to out. 0, -1, -2 as lx_buf. */
int llmux__sigv4_uri_encode(lx_buf *out, const char *s, size_t len, int keep_slash);
/* The canonical request (for tests and debugging). 0; -1 out of memory or
 * OpenSSL failure; -3 bad input (too many headers, no amz_date). */
int llmux__sigv4_canonical_request(const lx_sigv4_request *r, lx_buf *out);
/* The Authorization header's value:
 * "AWS4-HMAC-SHA256 Credential=AK/DATE/REGION/SERVICE/aws4_request,
 *  SignedHeaders=a;b, Signature=HEX". Appends to out; codes as above. */
int llmux__sigv4_authorization(const lx_sigv4_request *r, lx_buf *out);

#endif
