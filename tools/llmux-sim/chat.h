/* chat.h - the OpenAI Chat Completions answer of llmux-sim: request checks and
 * deterministic responses, rendered with snprintf into reused buffers. */
#ifndef LLMUX_SIM_CHAT_H
#define LLMUX_SIM_CHAT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <time.h>

#include "buf.h"

enum {
    CHAT_TEXT_MAX = 200,  /* bytes of the last user message echoed */
    CHAT_STREAM_EVENTS_MAX = 160,
};

typedef struct chat_answer {
    const char *deployment; /* borrowed, valid name */
    size_t deployment_len;
    unsigned long n;        /* request number in the deployment */
    time_t created;
    const char *model;      /* borrowed from the request JSON */
    int stream;
    int include_usage;
    const char *tool_name;  /* non-NULL: answer with a tool call (borrowed) */
    char text[CHAT_TEXT_MAX + 8];     /* the echoed user text, cut */
    size_t text_len;
    char content[CHAT_TEXT_MAX + 80]; /* "[<deployment>] <text>" */
    size_t content_len;
    long prompt_tokens;
    long completion_tokens;
} chat_answer;

/* Checks a parsed request body the way the real API does and prepares the
 * answer. Returns 0, or -1 with a message and the offending param (NULL for
 * "the body") for a 400. `req` may be NULL (the body was not JSON). */
int chat_prepare(chat_answer *a, const cJSON *req, char *msg, size_t msglen,
                 const char **param);

/* A chat.completion object. */
void chat_render_json(sim_buf *out, const chat_answer *a);

/* The whole event stream: each `data: ...\n\n` event framed as one HTTP chunk
 * when `chunked` (then followed by the last 0-chunk), or raw otherwise.
 * ends[i] receives the offset in out just after event i; returns the number of
 * events (the terminating 0-chunk is not an event). scratch is a work buffer. */
size_t chat_render_stream(sim_buf *out, sim_buf *scratch, const chat_answer *a, int chunked,
                          size_t *ends, size_t max_events);

/* Frames data[0..len) as one `data: ` event into out (as an HTTP chunk when
 * `chunked`). */
void chat_frame_event(sim_buf *out, const char *data, size_t len, int chunked);

/* The body used by the `malformed` fault (truncated JSON), and its event-stream
 * variant. */
#define CHAT_MALFORMED_BODY "{\"id\": \"chatcmpl-broken\", \"choices\": ["
#define CHAT_MALFORMED_EVENT "data: " CHAT_MALFORMED_BODY "\n\n"

#endif
