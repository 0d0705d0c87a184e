#include "wire/sse.h"

#include <string.h>

#include "core/error.h"

int llmux__sse_failure(const lx_sse *s, int rc, lx_err *err)
{
    if (rc == -1)
        return llmux__err(err, LLMUX_ERR_NO_MEMORY, "out of memory");
    if (rc == -2)
        return llmux__err(err, LLMUX_ERR_BAD_RESPONSE, "a stream event exceeds %zu bytes",
                          s->max_event);
    return 0;
}

void llmux__sse_init(lx_sse *s, size_t max_event)
{
    memset(s, 0, sizeof *s);
    s->max_event = max_event ? max_event : LLMUX_SSE_DEFAULT_MAX_EVENT;
    s->line.limit = s->max_event;
    s->data.limit = s->max_event;
    s->event.limit = 256;
}

static int dispatch(lx_sse *s, lx_sse_event_cb cb, void *ctx)
{
    int rc = 0;
    if (s->has_data) {
        s->events++;
        rc = cb(ctx, s->event.len ? s->event.data : "message", s->data.data ? s->data.data : "",
                s->data.len);
    }
    llmux__buf_clear(&s->data);
    llmux__buf_clear(&s->event);
    s->has_data = 0;
    return rc;
}

static int field(lx_sse *s, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    size_t name_len = colon ? (size_t)(colon - line) : len;
    const char *value = colon ? colon + 1 : line + len;
    size_t value_len = colon ? len - name_len - 1 : 0;
    if (value_len && *value == ' ') {
        value++;
        value_len--;
    }
    if (name_len == 4 && memcmp(line, "data", 4) == 0) {
        if (s->has_data && llmux__buf_append(&s->data, "\n", 1))
            return -2;
        int rc = llmux__buf_append(&s->data, value, value_len);
        if (rc)
            return rc;
        s->has_data = 1;
    } else if (name_len == 5 && memcmp(line, "event", 5) == 0) {
        llmux__buf_clear(&s->event);
        int rc = llmux__buf_append(&s->event, value, value_len);
        if (rc)
            return rc;
    }
    /* id, retry and unknown fields are ignored */
    return 0;
}

static int end_of_line(lx_sse *s, lx_sse_event_cb cb, void *ctx)
{
    int rc;
    if (s->line.len == 0)
        rc = dispatch(s, cb, ctx);
    else if (s->line.data[0] == ':')
        rc = 0; /* comment */
    else
        rc = field(s, s->line.data, s->line.len);
    llmux__buf_clear(&s->line);
    return rc;
}

int llmux__sse_feed(lx_sse *s, const char *bytes, size_t len, lx_sse_event_cb cb, void *ctx)
{
    size_t i = 0;
    if (len && s->last_was_cr && bytes[0] == '\n')
        i = 1;
    s->last_was_cr = 0;
    while (i < len) {
        /* copy the run up to the next line break in one go */
        size_t j = i;
        while (j < len && bytes[j] != '\n' && bytes[j] != '\r')
            j++;
        if (j > i) {
            if (s->line.len + (j - i) + s->data.len > s->max_event)
                return -2;
            int rc = llmux__buf_append(&s->line, bytes + i, j - i);
            if (rc)
                return rc;
        }
        if (j == len)
            break;
        int rc = end_of_line(s, cb, ctx);
        if (rc)
            return rc;
        if (bytes[j] == '\r') {
            if (j + 1 < len) {
                if (bytes[j + 1] == '\n')
                    j++;
            } else {
                s->last_was_cr = 1;
            }
        }
        i = j + 1;
    }
    return 0;
}

int llmux__sse_pending(const lx_sse *s)
{
    return s->line.len > 0 || s->has_data;
}

void llmux__sse_free(lx_sse *s)
{
    llmux__buf_free(&s->line);
    llmux__buf_free(&s->data);
    llmux__buf_free(&s->event);
}
