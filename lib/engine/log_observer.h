/* The observer that turns each finished call into log records (handed to the
 * log's writer thread) and metric updates. */
#ifndef LLMUX_ENGINE_LOG_OBSERVER_H
#define LLMUX_ENGINE_LOG_OBSERVER_H

#include "config/config.h"
#include "engine/observer.h"
#include "log/log.h"
#include "log/metrics.h"
#include "log/record.h"

typedef struct lx_log_observer lx_log_observer;

/* cfg, log and metrics must outlive the observer; log may be NULL. */
lx_log_observer *llmux__log_observer_new(const lx_config *cfg, lx_log *log, lx_metrics *m);
void llmux__log_observer_free(lx_log_observer *o);
lx_observer llmux__log_observer(lx_log_observer *o);

/* Fill rec from a finished call (attempts go into atts, n_atts of them at
 * most; the rest are counted but not described); call_id has 33 bytes. The
 * benchmarks time this with llmux__log_record_json. */
void llmux__log_call_fill(const lx_config *cfg, const lx_call_info *call, const char *call_id,
                          lx_log_attempt *atts, size_t n_atts, lx_log_call *rec);

#endif
