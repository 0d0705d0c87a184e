/* faults.h - deployments, their settings and scripted faults (llmux-sim).
 *
 * All state lives in one registry guarded by one mutex. A request takes a
 * "ticket" under that mutex (its number, the key check, the fault it gets, a
 * copy of what that fault needs) and then works without the lock, so the
 * control API may change or forget a deployment at any time. */
#ifndef LLMUX_SIM_FAULTS_H
#define LLMUX_SIM_FAULTS_H

#include <stddef.h>

#include "buf.h"

enum {
    SIM_DEPLOYMENTS_MAX = 1024,  /* 503 beyond */
    SIM_NAME_MAX = 64,
    SIM_FAULTS_MAX = 64,         /* per settings object */
    SIM_MS_MAX = 600000,         /* latency_ms, ms */
    SIM_FAULT_BODY_MAX = 64 * 1024,
    SIM_RETRY_AFTER_MAX = 64,
    SIM_LAST_BODY_MAX = 1024 * 1024, /* last_request.body kept up to this size */
    SIM_LAST_FIELD_MAX = 8 * 1024,   /* last_request path and authorization */
};

typedef enum sim_fault_type {
    SIM_FAULT_NONE = 0,
    SIM_FAULT_STATUS,
    SIM_FAULT_LATENCY,
    SIM_FAULT_DROP,
    SIM_FAULT_DROP_MID_BODY,
    SIM_FAULT_MALFORMED,
    SIM_FAULT_STREAM_DROP,
    SIM_FAULT_SLOW_STREAM,
    SIM_FAULT_HOSTILE,
} sim_fault_type;

/* The kinds of a "hostile" fault: a provider that attacks its client
 * (hostile.c, docs/simulator.md). */
typedef enum sim_hostile_kind {
    SIM_HOSTILE_HUGE_BODY = 1,   /* a valid answer of `bytes` bytes */
    SIM_HOSTILE_ENDLESS_BODY,    /* an answer that never ends */
    SIM_HOSTILE_DRIP,            /* the normal answer, one byte every `ms` */
    SIM_HOSTILE_BAD_CHUNKED,     /* broken chunked framing mid-answer */
    SIM_HOSTILE_INVALID_UTF8,    /* raw invalid UTF-8 in the content */
    SIM_HOSTILE_DEEP_JSON,       /* arrays nested `bytes` deep */
    SIM_HOSTILE_ABSURD_USAGE,    /* usage 1e999, 1e19, -5 */
    SIM_HOSTILE_ECHO_KEY,        /* the caller's key inside an error message */
    SIM_HOSTILE_DONE_HANG,       /* data: [DONE], then the connection stays open */
    SIM_HOSTILE_ERROR_200,       /* 200 carrying an error object */
    SIM_HOSTILE_JSON_FOR_STREAM, /* a stream request answered with plain JSON */
} sim_hostile_kind;

enum {
    SIM_HOSTILE_BYTES_MAX = 1024L * 1024 * 1024,
    SIM_HOSTILE_OFFSET_MAX = 64 * 1024,
};

/* What one request gets from its deployment. */
typedef struct sim_ticket {
    unsigned long n;          /* this request's number in its deployment, from 1 */
    long latency_ms;          /* the deployment's latency_ms */
    int auth_ok;              /* require_key satisfied (or not set) */
    sim_fault_type fault;     /* SIM_FAULT_NONE when none applies */
    int status;               /* status fault */
    long ms;                  /* latency and slow_stream faults */
    char retry_after[SIM_RETRY_AFTER_MAX + 1]; /* "" when not set */
    int has_body;             /* status fault with a configured body, copied to the
                                 caller's buffer */
    sim_hostile_kind kind;    /* hostile fault */
    long bytes;               /* hostile: size or depth */
    long offset;              /* hostile echo_key: padding before the key */
} sim_ticket;

/* 1 if name[0..len) is a valid deployment name ([A-Za-z0-9_.-]{1,64}). */
int sim_name_valid(const char *name, size_t len);

void sim_registry_init(void);
void sim_registry_free(void);

/* Records a chat request to deployment `name` (creating it) and fills *t.
 * A status fault's configured body is copied into fault_body. Returns 0, or
 * -1 when the deployment does not exist and SIM_DEPLOYMENTS_MAX are in use. */
int sim_registry_request(const char *name, size_t name_len, const char *path, size_t path_len,
                         const char *auth, size_t auth_len, int has_auth, const char *body,
                         size_t body_len, sim_ticket *t, sim_buf *fault_body);

/* The control API. Each returns an HTTP status and leaves a JSON body in out:
 * the deployment's state for 200 from put/get, {"ok":true} for delete/reset,
 * or an OpenAI-style error object. */
int sim_registry_put(const char *name, size_t name_len, const char *json, size_t json_len,
                     sim_buf *out);
int sim_registry_get(const char *name, size_t name_len, sim_buf *out);
int sim_registry_delete(const char *name, size_t name_len, sim_buf *out);
int sim_registry_reset(sim_buf *out);

/* Appends an OpenAI error object to out. param may be NULL (JSON null),
 * code may be NULL (JSON null). */
void sim_error_json(sim_buf *out, const char *message, const char *type, const char *param,
                    const char *code);

#endif
