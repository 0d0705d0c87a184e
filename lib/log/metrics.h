/*
 * Metrics in the Prometheus text exposition format (version 0.0.4): counters
 * by provider, model, error class, key and team, histograms of latency, time
 * to first token and llmux's own overhead, the in-flight gauge and the log's
 * own counters. Fed one lx_log_call per call; thread-safe.
 */
#ifndef LLMUX_LOG_METRICS_H
#define LLMUX_LOG_METRICS_H

#include "core/buf.h"
#include "log/log.h"
#include "log/record.h"

typedef struct lx_metrics lx_metrics;

/* max_series bounds the labelled series (keys are caller-chosen); past it a
 * new series is not created and llmux_metrics_series_dropped_total counts it. */
int llmux__metrics_new(lx_metrics **out, size_t max_series);
void llmux__metrics_free(lx_metrics *m);
void llmux__metrics_in_flight(lx_metrics *m, int delta);
void llmux__metrics_observe(lx_metrics *m, const lx_log_call *c);
/* The exposition text; log may be NULL (no log counters). 0 or -1. */
int llmux__metrics_text(lx_metrics *m, const lx_log_stats *log, lx_buf *out);

#endif
