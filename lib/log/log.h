/*
 * The call log's writer: a bounded queue and one writer thread per gateway,
 * which hands each record to the sinks (a rotated file, the application's
 * callback, an OTLP/HTTP JSON exporter). Submitting never blocks: a full
 * queue drops the record and counts it.
 */
#ifndef LLMUX_LOG_LOG_H
#define LLMUX_LOG_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "log/record.h"

typedef struct lx_log lx_log;

/* Called on the writer thread with one record (a JSON object, NUL-terminated,
 * no newline; len excludes the NUL). */
typedef void (*lx_log_cb)(const char *record, size_t len, void *user);

typedef struct lx_log_options {
    const char *file;     /* NULL = no file sink */
    long max_bytes;       /* rotate before the file grows past this; 0 = never */
    long max_age_s;       /* rotate a file this many seconds after it was opened; 0 = never */
    long retain_s;        /* remove rotated files older than this; 0 = keep */
    long retain_bytes;    /* remove the oldest rotated files beyond this total; 0 = keep */
    const char *otlp_url; /* NULL = no exporter */
    long otlp_batch;      /* records per export */
    long otlp_timeout_ms; /* per export request */
    long otlp_interval_ms; /* export a partial batch once its oldest record waited this long */
    long queue;           /* entries waiting at most */
} lx_log_options;

typedef struct lx_log_stats {
    uint64_t submitted;     /* calls accepted into the queue */
    uint64_t dropped_queue; /* records refused: the queue was full */
    uint64_t records;       /* records handed to the sinks */
    uint64_t dropped_file;  /* records the file sink could not write */
    uint64_t exported;      /* records the collector accepted */
    uint64_t dropped_otlp;  /* records the collector did not take (down, slow, refused) */
} lx_log_stats;

/* Opens the file (and removes what retention says) now, so a bad path fails
 * at open; starts the writer thread when a sink is configured. */
int llmux__log_new(lx_log **out, const lx_log_options *o, lx_err *err);
/* Writes what is queued, then stops the writer. NULL is a no-op. */
void llmux__log_free(lx_log *l);
/* Non-zero when some sink is there: only then are records worth building. */
int llmux__log_active(lx_log *l);
/* Set (cb NULL: remove) the callback. When this returns, the previous one is
 * not running and will not be called again. LLMUX_ERR_INVALID_ARGUMENT when
 * called from the callback itself. */
int llmux__log_set_callback(lx_log *l, lx_log_cb cb, void *user);
/* Queue a call's records: c is copied (llmux__log_call_copy) and serialised
 * on the writer thread. 0, or -1 when they were dropped (counted in
 * dropped_queue). */
int llmux__log_submit(lx_log *l, const lx_log_call *c);
/* Wait until every entry submitted before this call went through the sinks;
 * 0, or LLMUX_ERR_TIMEOUT. */
int llmux__log_flush(lx_log *l, long timeout_ms);
void llmux__log_stats(lx_log *l, lx_log_stats *out);

#endif
