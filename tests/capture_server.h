/*
 * A tiny HTTP/1.1 server on loopback for tests that must see the exact bytes
 * llmux sends (the simulator parses bodies, so a 20-digit integer would lose
 * its spelling there). It records each request's path, header block and raw
 * body, and answers every request with one scripted reply.
 */
#ifndef LLMUX_TESTS_CAPTURE_SERVER_H
#define LLMUX_TESTS_CAPTURE_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

typedef struct capture_server {
    int fd;
    int port;
    char url[64];
    pthread_t thread;
    pthread_mutex_t mu;
    atomic_int stop;
    atomic_int active; /* connections being served */
    /* the reply */
    int status;
    const char *content_type;
    const char *body;
    int delay_ms;
    int hold_open; /* chunked body, never finished: the connection stays open */
    /* the last request */
    int requests;
    char path[512];
    char headers[8192];
    char *raw_body;
    size_t raw_body_len;
} capture_server;

int capture_start(capture_server *s);
/* Set the reply every request gets (under the server's lock). */
void capture_reply(capture_server *s, int status, const char *content_type, const char *body,
                   int delay_ms);
int capture_requests(capture_server *s);
void capture_stop(capture_server *s);
/* The last request's body (malloc'd copy, NUL-terminated) and headers. */
char *capture_body(capture_server *s);
/* 1 when the last request carried header line `line` exactly ("Name: value"). */
int capture_has_header(capture_server *s, const char *line);

#endif
