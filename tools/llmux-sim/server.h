/* server.h - connections of llmux-sim: one thread per accepted connection,
 * blocking I/O, keep-alive; clean stop on request. */
#ifndef LLMUX_SIM_SERVER_H
#define LLMUX_SIM_SERVER_H

#include <stddef.h>

#include "buf.h"

enum {
    SIM_CONNS_MAX = 4096,           /* concurrent connections; 503 beyond */
    SIM_THREAD_STACK = 2 * 1024 * 1024,
};

/* One client connection; the buffers are reused across its requests. */
typedef struct sim_conn {
    int fd;
    sim_buf in;      /* bytes received, the current request at the start */
    sim_buf body;    /* a decoded chunked body */
    sim_buf out;     /* the response body being built */
    sim_buf scratch; /* work space for rendering */
    sim_buf aux;     /* a fault's configured body */
} sim_conn;

/* Sends a then b (either may be empty) completely. 0, or -1 on error. */
int sim_conn_send2(sim_conn *c, const void *a, size_t an, const void *b, size_t bn);

/* Sleeps ms milliseconds; returns -1 early when the server is stopping. */
int sim_sleep_ms(long ms);

int sim_server_init(void);
/* Async-signal-safe: asks the accept loop and every sleeper to stop. */
void sim_server_request_stop(void);
/* Accepts connections on lfd until a stop is requested, then shuts every
 * connection down and joins its thread. */
int sim_server_run(int lfd);
void sim_server_free(void);

#endif
