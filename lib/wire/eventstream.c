#include "wire/eventstream.h"

#include "core/crc32.h"

#include <string.h>

static uint32_t be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static uint64_t be_n(const unsigned char *u, size_t n)
{
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = v << 8 | u[i];
    return v;
}

void llmux__es_init(lx_eventstream *d, size_t max_message)
{
    memset(d, 0, sizeof *d);
    size_t hard = LX_ES_MAX_PAYLOAD + LX_ES_MAX_HEADERS_BYTES + LX_ES_MIN_MESSAGE;
    d->max_message = max_message && max_message < hard ? max_message : hard;
    d->buf.limit = d->max_message;
}

void llmux__es_free(lx_eventstream *d)
{
    llmux__buf_free(&d->buf);
}

int llmux__es_pending(const lx_eventstream *d)
{
    return d->buf.len > 0;
}

const char *llmux__es_strerror(int code)
{
    switch (code) {
    case LX_ES_NO_MEMORY: return "out of memory";
    case LX_ES_TOO_LARGE: return "an event-stream message exceeds the size limit";
    case LX_ES_PRELUDE_CRC: return "an event-stream prelude fails its CRC";
    case LX_ES_MESSAGE_CRC: return "an event-stream message fails its CRC";
    case LX_ES_BAD_HEADERS: return "an event-stream message has malformed headers";
    case LX_ES_BAD_LENGTH: return "an event-stream prelude gives impossible lengths";
    default: return "event-stream decoding stopped";
    }
}

/* The prelude's lengths, checked; 0 or an LX_ES_* error. */
static int check_prelude(const lx_eventstream *d, const char *p, uint32_t *total)
{
    if (be32(p + 8) != llmux__crc32(0, p, 8))
        return LX_ES_PRELUDE_CRC;
    uint32_t t = be32(p), h = be32(p + 4);
    if (t < LX_ES_MIN_MESSAGE || h > t - LX_ES_MIN_MESSAGE)
        return LX_ES_BAD_LENGTH;
    if (t > d->max_message || h > LX_ES_MAX_HEADERS_BYTES || t - h - 16 > LX_ES_MAX_PAYLOAD)
        return LX_ES_TOO_LARGE;
    *total = t;
    return 0;
}

static int parse_headers(const char *p, size_t n, lx_es_message *m)
{
    static const unsigned char fixed[] = {0, 0, 1, 2, 4, 8, 0, 0, 8, 16};
    const unsigned char *u = (const unsigned char *)p;
    size_t i = 0;
    m->n_headers = 0;
    while (i < n) {
        if (m->n_headers == LX_ES_MAX_HEADERS)
            return LX_ES_BAD_HEADERS;
        lx_es_header *h = &m->headers[m->n_headers++];
        size_t nl = u[i++];
        if (nl == 0 || i + nl + 1 > n)
            return LX_ES_BAD_HEADERS;
        h->name = p + i;
        h->name_len = nl;
        i += nl;
        h->type = u[i++];
        h->value = NULL;
        h->value_len = 0;
        h->ival = 0;
        if (h->type > LX_ES_UUID)
            return LX_ES_BAD_HEADERS;
        if (h->type == LX_ES_BOOL_TRUE || h->type == LX_ES_BOOL_FALSE) {
            h->ival = h->type == LX_ES_BOOL_TRUE;
            continue;
        }
        size_t len = fixed[h->type];
        if (h->type == LX_ES_BYTES || h->type == LX_ES_STRING) {
            if (n - i < 2)
                return LX_ES_BAD_HEADERS;
            len = (size_t)be_n(u + i, 2);
            i += 2;
        }
        if (n - i < len)
            return LX_ES_BAD_HEADERS;
        if (h->type == LX_ES_BYTES || h->type == LX_ES_STRING || h->type == LX_ES_UUID) {
            h->value = p + i;
            h->value_len = len;
        } else {
            /* sign-extend the big-endian integer of len bytes */
            uint64_t v = be_n(u + i, len);
            unsigned shift = (unsigned)(64 - 8 * len);
            h->ival = shift ? (int64_t)(v << shift) >> shift : (int64_t)v;
        }
        i += len;
    }
    return 0;
}

/* One whole message at p (its prelude checked). */
static int deliver(lx_eventstream *d, const char *p, uint32_t total, lx_es_message_cb cb,
                   void *ctx)
{
    if (be32(p + total - 4) != llmux__crc32(0, p, total - 4))
        return LX_ES_MESSAGE_CRC;
    lx_es_message m;
    uint32_t hl = be32(p + 4);
    int rc = parse_headers(p + LX_ES_PRELUDE, hl, &m);
    if (rc)
        return rc;
    m.payload = p + LX_ES_PRELUDE + hl;
    m.payload_len = total - hl - 16;
    d->messages++;
    return cb(ctx, &m);
}

static int fail(lx_eventstream *d, int rc)
{
    if (rc < 0)
        d->failed = rc;
    return rc;
}

int llmux__es_feed(lx_eventstream *d, const char *bytes, size_t len, lx_es_message_cb cb,
                   void *ctx)
{
    if (d->failed)
        return d->failed;
    uint32_t total = 0;
    int rc;
    /* finish the message that is buffered, taking only the bytes it needs */
    while (d->buf.len && len) {
        size_t want = LX_ES_PRELUDE;
        if (d->buf.len >= LX_ES_PRELUDE) {
            if ((rc = check_prelude(d, d->buf.data, &total)))
                return fail(d, rc);
            want = total;
        }
        size_t take = want - d->buf.len < len ? want - d->buf.len : len;
        if ((rc = llmux__buf_append(&d->buf, bytes, take)))
            return fail(d, rc == -2 ? LX_ES_TOO_LARGE : LX_ES_NO_MEMORY);
        bytes += take;
        len -= take;
        if (d->buf.len < LX_ES_PRELUDE)
            return 0;
        if ((rc = check_prelude(d, d->buf.data, &total)))
            return fail(d, rc);
        if (d->buf.len < total)
            continue;
        rc = deliver(d, d->buf.data, total, cb, ctx);
        llmux__buf_clear(&d->buf);
        if (rc)
            return fail(d, rc);
    }
    /* whole messages straight from the input, without a copy */
    while (len >= LX_ES_PRELUDE) {
        if ((rc = check_prelude(d, bytes, &total)))
            return fail(d, rc);
        if (len < total)
            break;
        if ((rc = deliver(d, bytes, total, cb, ctx)))
            return fail(d, rc);
        bytes += total;
        len -= total;
    }
    if (len && (rc = llmux__buf_append(&d->buf, bytes, len)))
        return fail(d, rc == -2 ? LX_ES_TOO_LARGE : LX_ES_NO_MEMORY);
    return 0;
}

const lx_es_header *llmux__es_header(const lx_es_message *m, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < m->n_headers; i++)
        if (m->headers[i].name_len == n && memcmp(m->headers[i].name, name, n) == 0)
            return &m->headers[i];
    return NULL;
}

int llmux__es_header_is(const lx_es_message *m, const char *name, const char *value)
{
    const lx_es_header *h = llmux__es_header(m, name);
    size_t n = strlen(value);
    return h && h->type == LX_ES_STRING && h->value_len == n && memcmp(h->value, value, n) == 0;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

int llmux__es_encode(lx_buf *out, const char *const *names, const char *const *values,
                     size_t n_headers, const void *payload, size_t payload_len)
{
    size_t hl = 0;
    for (size_t i = 0; i < n_headers; i++)
        hl += 1 + strlen(names[i]) + 3 + strlen(values[i]);
    size_t total = hl + payload_len + 16, start = out->len;
    unsigned char pre[12];
    put_be32(pre, (uint32_t)total);
    put_be32(pre + 4, (uint32_t)hl);
    put_be32(pre + 8, llmux__crc32(0, pre, 8));
    int rc = llmux__buf_reserve(out, total) || llmux__buf_append(out, pre, 12);
    for (size_t i = 0; i < n_headers && !rc; i++) {
        size_t nl = strlen(names[i]), vl = strlen(values[i]);
        unsigned char t[3] = {LX_ES_STRING, (unsigned char)(vl >> 8), (unsigned char)vl};
        unsigned char l = (unsigned char)nl;
        rc = llmux__buf_append(out, &l, 1) || llmux__buf_append(out, names[i], nl) ||
             llmux__buf_append(out, t, 3) || llmux__buf_append(out, values[i], vl);
    }
    rc = rc || llmux__buf_append(out, payload, payload_len);
    if (rc)
        return -1;
    unsigned char crc[4];
    put_be32(crc, llmux__crc32(0, out->data + start, out->len - start));
    return llmux__buf_append(out, crc, 4);
}
