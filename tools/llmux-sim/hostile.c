/* hostile.c - the "hostile" fault: answers that attack the client. Every
 * answer is built from the same small templates (a chat.completion, or the
 * chunks of a stream, with model "sim-hostile") so a test knows each byte. */
#include "hostile.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "http.h"

#define ID "\"id\":\"chatcmpl-sim-hostile\","
#define MODEL "\"model\":\"sim-hostile\","
static const char json_head[] = "{" ID "\"object\":\"chat.completion\",\"created\":0," MODEL
                                "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                                "\"content\":\"";
static const char json_mid[] = "\"},\"finish_reason\":\"stop\"}],\"usage\":";
static const char chunk_head[] = "data: {" ID "\"object\":\"chat.completion.chunk\",\"created\":0,"
                                 MODEL "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"";
static const char chunk_tail[] = "\"},\"finish_reason\":null}]}\n\n";
static const char stream_end[] =
    "data: {" ID "\"object\":\"chat.completion.chunk\",\"created\":0," MODEL
    "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
    "data: {" ID "\"object\":\"chat.completion.chunk\",\"created\":0," MODEL
    "\"choices\":[],\"usage\":";
static const char usage_normal[] = "{\"prompt_tokens\":3,\"completion_tokens\":2,\"total_tokens\":5}";
static const char usage_absurd[] =
    "{\"prompt_tokens\":1e999,\"completion_tokens\":1e19,\"total_tokens\":-5}";
static const char invalid_utf8[] = "bad \xff\xfe overlong \xc0\x80 surrogate \xed\xa0\x80 cut \xe2\x82";

/* A complete answer: the chat.completion, or the whole event stream through
 * data: [DONE]. */
static void render(sim_buf *b, int stream, const char *content, size_t len, const char *usage)
{
    sim_buf_reset(b);
    if (stream) {
        sim_buf_puts(b, chunk_head);
        sim_buf_append(b, content, len);
        sim_buf_puts(b, chunk_tail);
        sim_buf_puts(b, stream_end);
        sim_buf_puts(b, usage);
        sim_buf_puts(b, "}\n\ndata: [DONE]\n\n");
    } else {
        sim_buf_puts(b, json_head);
        sim_buf_append(b, content, len);
        sim_buf_puts(b, json_mid);
        sim_buf_puts(b, usage);
        sim_buf_puts(b, "}");
    }
}

static int send_str(sim_conn *c, const char *s)
{
    return sim_conn_send2(c, s, strlen(s), NULL, 0);
}

/* The head of an answer whose length is not announced: chunked for
 * HTTP/1.1, read-to-close for HTTP/1.0. */
static int open_body(sim_conn *c, int stream, int chunked)
{
    char head[256];
    snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n%s\r\n",
             stream ? "text/event-stream" : "application/json",
             chunked ? "Transfer-Encoding: chunked\r\n" : "Connection: close\r\n");
    return send_str(c, head);
}

static int send_piece(sim_conn *c, int chunked, const char *p, size_t n)
{
    if (!chunked)
        return sim_conn_send2(c, p, n, NULL, 0);
    char size[24];
    snprintf(size, sizeof size, "%zx\r\n", n);
    if (send_str(c, size) < 0 || sim_conn_send2(c, p, n, NULL, 0) < 0)
        return -1;
    return send_str(c, "\r\n");
}

/* Waits until the client closes the connection or the server stops. */
static void hang(sim_conn *c)
{
    char tmp[4096];
    for (;;) {
        if (sim_sleep_ms(0) < 0)
            return;
        struct pollfd p = {c->fd, POLLIN, 0};
        int r = poll(&p, 1, 100);
        if (r < 0)
            return;
        if (r > 0 && recv(c->fd, tmp, sizeof tmp, 0) <= 0)
            return;
    }
}

static int huge_body(sim_conn *c, int stream, int chunked, long bytes)
{
    /* a valid answer whose content is `x` repeated: bytes in all (about) */
    char fill[64 * 1024];
    memset(fill, 'x', sizeof fill);
    render(&c->out, stream, "", 0, usage_normal);
    size_t frame = c->out.len, content = (size_t)bytes > frame ? (size_t)bytes - frame : 1;
    const char *split = strstr(c->out.data, "\"content\":\"") + 11;
    size_t before = (size_t)(split - c->out.data);
    if (open_body(c, stream, chunked) < 0 || send_piece(c, chunked, c->out.data, before) < 0)
        return SIM_CLOSE;
    for (size_t sent = 0; sent < content;) {
        size_t n = content - sent < sizeof fill ? content - sent : sizeof fill;
        if (send_piece(c, chunked, fill, n) < 0)
            return SIM_CLOSE;
        sent += n;
    }
    if (send_piece(c, chunked, c->out.data + before, frame - before) < 0 ||
        (chunked && send_str(c, "0\r\n\r\n") < 0))
        return SIM_CLOSE;
    return chunked ? SIM_KEEP : SIM_CLOSE;
}

static int endless_body(sim_conn *c, int stream, int chunked)
{
    char piece[16 * 1024];
    size_t n;
    if (stream) {
        /* one valid content chunk after another, never [DONE] */
        int len = snprintf(piece, sizeof piece, "%sendless %s", chunk_head, chunk_tail);
        n = (size_t)len;
    } else {
        memset(piece, 'x', sizeof piece);
        n = sizeof piece;
        size_t h = sizeof json_head - 1;
        if (open_body(c, stream, chunked) < 0 || send_piece(c, chunked, json_head, h) < 0)
            return SIM_CLOSE;
    }
    if (stream && open_body(c, stream, chunked) < 0)
        return SIM_CLOSE;
    while (sim_sleep_ms(0) == 0 && send_piece(c, chunked, piece, n) == 0)
        ;
    return SIM_CLOSE;
}

static int drip(sim_conn *c, int stream, int chunked, long ms)
{
    char head[256];
    render(&c->out, stream, "drip", 4, usage_normal);
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n",
                      stream ? "text/event-stream" : "application/json", c->out.len);
    if (sim_conn_send2(c, head, (size_t)hl, NULL, 0) < 0)
        return SIM_CLOSE;
    for (size_t i = 0; i < c->out.len; i++)
        if ((i && ms && sim_sleep_ms(ms) < 0) || sim_conn_send2(c, c->out.data + i, 1, NULL, 0) < 0)
            return SIM_CLOSE;
    return SIM_KEEP;
}

static int bad_chunked(sim_conn *c, int stream)
{
    render(&c->out, stream, "chunk", 5, usage_normal);
    size_t half = c->out.len / 2;
    /* a proper first chunk, then a size line that is not hex, then garbage */
    if (open_body(c, stream, 1) < 0 || send_piece(c, 1, c->out.data, half) < 0)
        return SIM_CLOSE;
    send_str(c, "zz; not-a-size\r\n");
    sim_conn_send2(c, c->out.data + half, c->out.len - half, NULL, 0);
    send_str(c, "\r\n0\r\n\r\n");
    return SIM_CLOSE;
}

static int deep_json(sim_conn *c, int stream, int chunked, long depth)
{
    char open[4096], close[4096];
    memset(open, '[', sizeof open);
    memset(close, ']', sizeof close);
    const char *head = stream ? "data: {\"choices\":" : "{\"choices\":";
    const char *tail = stream ? "}\n\ndata: [DONE]\n\n" : "}";
    if (open_body(c, stream, chunked) < 0 || send_piece(c, chunked, head, strlen(head)) < 0)
        return SIM_CLOSE;
    for (int pass = 0; pass < 2; pass++)
        for (long left = depth; left > 0;) {
            size_t n = (size_t)left < sizeof open ? (size_t)left : sizeof open;
            if (send_piece(c, chunked, pass ? close : open, n) < 0)
                return SIM_CLOSE;
            left -= (long)n;
        }
    if (send_piece(c, chunked, tail, strlen(tail)) < 0 || (chunked && send_str(c, "0\r\n\r\n") < 0))
        return SIM_CLOSE;
    return chunked ? SIM_KEEP : SIM_CLOSE;
}

static int echo_key(sim_conn *c, const sim_request *r, const sim_ticket *t, int keep)
{
    /* the key as sent (after "Bearer "), `offset` bytes into the message */
    const char *key = r->auth;
    size_t klen = r->has_auth ? r->auth_len : 0;
    if (klen >= 7 && strncmp(key, "Bearer ", 7) == 0) {
        key += 7;
        klen -= 7;
    }
    sim_buf_reset(&c->scratch);
    for (long i = 0; i < t->offset; i++)
        sim_buf_append(&c->scratch, "x", 1);
    sim_buf_append(&c->scratch, key, klen);
    sim_buf_puts(&c->scratch, " is not a valid API key.");
    sim_buf_reset(&c->out);
    sim_error_json(&c->out, c->scratch.data ? c->scratch.data : "", "invalid_request_error",
                   NULL, "invalid_api_key");
    if (!sim_buf_ok(&c->out) || !sim_buf_ok(&c->scratch))
        return SIM_CLOSE;
    return sim_respond(c, t->status, "application/json", c->out.data, c->out.len, keep, NULL) ==
                   0 && keep
               ? SIM_KEEP
               : SIM_CLOSE;
}

int sim_hostile(sim_conn *c, const sim_request *r, const sim_ticket *t, int wants_stream)
{
    int keep = r->keep_alive, chunked = r->minor_version >= 1;
    int action;
    switch (t->kind) {
    case SIM_HOSTILE_HUGE_BODY: action = huge_body(c, wants_stream, chunked, t->bytes); break;
    case SIM_HOSTILE_ENDLESS_BODY: return endless_body(c, wants_stream, chunked);
    case SIM_HOSTILE_DRIP: action = drip(c, wants_stream, chunked, t->ms); break;
    case SIM_HOSTILE_BAD_CHUNKED: return bad_chunked(c, wants_stream);
    case SIM_HOSTILE_DEEP_JSON: action = deep_json(c, wants_stream, chunked, t->bytes); break;
    case SIM_HOSTILE_ECHO_KEY: return echo_key(c, r, t, keep);
    case SIM_HOSTILE_DONE_HANG:
        /* everything through data: [DONE], then neither the 0-chunk nor a close */
        render(&c->out, wants_stream, "hang", 4, usage_normal);
        if (open_body(c, wants_stream, chunked) == 0 &&
            send_piece(c, chunked, c->out.data, c->out.len) == 0)
            hang(c);
        return SIM_CLOSE;
    case SIM_HOSTILE_ERROR_200: {
        static const char err[] = "{\"error\":{\"message\":\"The server had an error (simulated, "
                                  "with status 200)\",\"type\":\"server_error\",\"param\":null,"
                                  "\"code\":null}}";
        if (!wants_stream)
            return sim_respond(c, 200, "application/json", err, sizeof err - 1, keep, NULL) == 0 &&
                           keep
                       ? SIM_KEEP
                       : SIM_CLOSE;
        sim_buf_reset(&c->out);
        sim_buf_printf(&c->out, "data: %s\n\ndata: [DONE]\n\n", err);
        action = open_body(c, 1, chunked) == 0 &&
                         send_piece(c, chunked, c->out.data, c->out.len) == 0 &&
                         (!chunked || send_str(c, "0\r\n\r\n") == 0) && chunked
                     ? SIM_KEEP
                     : SIM_CLOSE;
        break;
    }
    default: { /* invalid_utf8, absurd_usage, json_for_stream: one complete answer */
        int stream = wants_stream && t->kind != SIM_HOSTILE_JSON_FOR_STREAM;
        if (t->kind == SIM_HOSTILE_INVALID_UTF8)
            render(&c->out, stream, invalid_utf8, sizeof invalid_utf8 - 1, usage_normal);
        else if (t->kind == SIM_HOSTILE_ABSURD_USAGE)
            render(&c->out, stream, "absurd", 6, usage_absurd);
        else
            render(&c->out, 0, "plain json", 10, usage_normal);
        if (!sim_buf_ok(&c->out))
            return SIM_CLOSE;
        return sim_respond(c, 200, stream ? "text/event-stream" : "application/json",
                           c->out.data, c->out.len, keep, NULL) == 0 && keep
                   ? SIM_KEEP
                   : SIM_CLOSE;
    }
    }
    return action == SIM_KEEP && keep ? SIM_KEEP : SIM_CLOSE;
}
