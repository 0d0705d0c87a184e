/* sim.h - routing and answers of llmux-sim: chat completions per deployment
 * and the /_sim/ control API. */
#ifndef LLMUX_SIM_SIM_H
#define LLMUX_SIM_SIM_H

#include <stddef.h>

#include "server.h"

typedef struct sim_request {
    const char *method;
    size_t method_len;
    const char *path;     /* request target without the query */
    size_t path_len;
    const char *auth;     /* Authorization header value */
    size_t auth_len;
    int has_auth;
    const char *head;     /* the request line and headers, for other header lookups */
    size_t head_len;
    const char *body;
    size_t body_len;
    int minor_version;    /* HTTP/1.x */
    int keep_alive;
} sim_request;

enum { SIM_KEEP = 0, SIM_CLOSE = 1 };

/* Answers one request; returns SIM_KEEP to read the next request on the
 * connection, or SIM_CLOSE to close it. */
int sim_handle(sim_conn *c, const sim_request *r);

/* Sends a complete response; extra_headers ("Name: value\r\n"...) may be NULL. */
int sim_respond(sim_conn *c, int status, const char *content_type, const char *body, size_t len,
                int keep_alive, const char *extra_headers);

/* Sends an error for a request that could not be parsed (never keep-alive). */
void sim_respond_http_error(sim_conn *c, int status);

#endif
