#include "log/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/hash.h"

enum {
    F_CALLS, F_ERRORS, F_ATTEMPTS, F_TOKENS, F_COST, F_UNPRICED, N_COUNTERS
};

/* The families by gateway key, team and model (tokens of each kind, cost,
 * unpriced calls) share one series per (key, team, model): one lookup a call
 * updates them all. Its values, in this order: */
enum { V_TOKENS = 0, N_KINDS = 5, V_COST = N_KINDS, V_UNPRICED, N_VALUES };
static const char *const KIND[N_KINDS] = {"input", "output", "cache_read", "cache_write",
                                          "reasoning"};

static const struct {
    const char *name, *help;
} FAMILIES[N_COUNTERS] = {
    {"llmux_calls_total", "Calls that reached the engine, by the provider and model that answered (or failed last)."},
    {"llmux_call_errors_total", "Failed calls by provider, model and error class."},
    {"llmux_attempts_total", "Attempts by provider, model and outcome (ok or the error class)."},
    {"llmux_tokens_total", "Tokens by gateway key, team, model and kind (input includes cache reads and writes; output includes reasoning)."},
    {"llmux_cost_usd_total", "Cost in US dollars of the priced calls, by gateway key, team and model."},
    {"llmux_unpriced_calls_total", "Calls whose price is unknown, by gateway key, team and model."},
};

/* The label names of each family; a series is keyed by its raw values (each
 * NUL-terminated, one after the other), escaped only when the text is made. */
static const char *const LABELS[N_COUNTERS][4] = {
    {"provider", "model"},
    {"provider", "model", "error_class"},
    {"provider", "model", "outcome"},
    {"key", "team", "model"}, /* and kind, from the value's index */
    {"key", "team", "model"},
    {"key", "team", "model"},
};

#define N_HIST 3
static const char *const HIST_NAME[N_HIST] = {"llmux_call_duration_seconds",
                                              "llmux_overhead_seconds",
                                              "llmux_time_to_first_token_seconds"};
static const char *const HIST_HELP[N_HIST] = {
    "Whole-call latency, all attempts.",
    "Time of a call not spent waiting on a provider: llmux's own work (for streams, the chunk "
    "callback's time counts as waiting).",
    "Time from the call's start to the first chunk handed to the caller (streamed calls)."};
#define N_BUCKETS 14
static const double BUCKETS[N_HIST][N_BUCKETS] = {
    {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120},
    {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
     0.05, 0.1, 0.25},
    {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120},
};

typedef struct series {
    char *labels; /* the raw values, each NUL-terminated; NULL = empty slot */
    size_t len;
    int family; /* F_CALLS, F_ERRORS, F_ATTEMPTS, or F_TOKENS for the keyed group */
    unsigned seen; /* which values were ever updated (bit i: value[i]) */
    uint64_t hash;
    double value[N_VALUES]; /* only value[0] for the provider families */
} series;

typedef struct hist {
    uint64_t counts[N_BUCKETS]; /* per bucket, not cumulative */
    uint64_t count;
    double sum;
} hist;

struct lx_metrics {
    pthread_mutex_t mu;
    series *slots;
    size_t mask, n, max;
    uint64_t series_dropped;
    hist h[N_HIST];
    long in_flight;
};

int llmux__metrics_new(lx_metrics **out, size_t max_series)
{
    lx_metrics *m = calloc(1, sizeof *m);
    size_t slots = 64;
    while (slots < 2 * max_series)
        slots *= 2;
    if (!m || !(m->slots = calloc(slots, sizeof *m->slots))) {
        free(m);
        return LLMUX_ERR_NO_MEMORY;
    }
    m->mask = slots - 1;
    m->max = max_series;
    pthread_mutex_init(&m->mu, NULL);
    *out = m;
    return LLMUX_OK;
}

void llmux__metrics_free(lx_metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i <= m->mask; i++)
        free(m->slots[i].labels);
    free(m->slots);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

void llmux__metrics_in_flight(lx_metrics *m, int delta)
{
    __atomic_add_fetch(&m->in_flight, delta, __ATOMIC_RELAXED);
}

#define MAX_KEY 1024

/* with mu held: the series of family with these values (as many as the
 * family has labels; NULL reads as ""), NULL when it cannot be kept (counted
 * as dropped). No allocation but for a new series, no escaping, no printf. */
static series *find(lx_metrics *m, int family, const char *const *vals)
{
    char key[MAX_KEY];
    size_t len = 0;
    for (int i = 0; i < 4 && LABELS[family][i]; i++) {
        const char *s = vals[i] ? vals[i] : "";
        size_t n = strlen(s) + 1;
        if (n > MAX_KEY - len) {
            m->series_dropped++;
            return NULL;
        }
        memcpy(key + len, s, n);
        len += n;
    }
    uint64_t h = llmux__hash(key, len) * 31 + (uint64_t)family;
    size_t i = h & m->mask;
    while (m->slots[i].labels &&
           !(m->slots[i].hash == h && m->slots[i].family == family && m->slots[i].len == len &&
             memcmp(m->slots[i].labels, key, len) == 0))
        i = (i + 1) & m->mask;
    series *s = &m->slots[i];
    if (!s->labels) {
        if (m->n >= m->max || !(s->labels = malloc(len))) {
            m->series_dropped++;
            return NULL;
        }
        memcpy(s->labels, key, len);
        s->len = len;
        s->family = family;
        s->hash = h;
        m->n++;
    }
    return s;
}

static void add(lx_metrics *m, int family, const char *const *vals, double v)
{
    series *s = find(m, family, vals);
    if (s) {
        s->value[0] += v;
        s->seen = 1;
    }
}

/* name="value",... of a series, with the exposition format's escapes */
static int put_labels(lx_buf *b, int family, const char *raw)
{
    for (int i = 0; i < 4 && LABELS[family][i]; i++) {
        if ((i && llmux__buf_puts(b, ",")) || llmux__buf_puts(b, LABELS[family][i]) ||
            llmux__buf_puts(b, "=\""))
            return -1;
        for (const char *s = raw; *s; s++) {
            const char *e = *s == '\\' ? "\\\\" : *s == '"' ? "\\\"" : *s == '\n' ? "\\n" : NULL;
            if (e ? llmux__buf_puts(b, e) : llmux__buf_append(b, s, 1))
                return -1;
        }
        if (llmux__buf_puts(b, "\""))
            return -1;
        raw += strlen(raw) + 1;
    }
    return 0;
}

static void observe_hist(hist *h, const double *bounds, double seconds)
{
    int i = 0;
    while (i < N_BUCKETS && seconds > bounds[i])
        i++;
    if (i < N_BUCKETS)
        h->counts[i]++;
    h->count++;
    h->sum += seconds;
}

static const char *or_none(const char *s)
{
    return s && *s ? s : "(none)";
}

#define MAX_ATTEMPT_SERIES 8

void llmux__metrics_observe(lx_metrics *m, const lx_log_call *c)
{
    int64_t counts[N_KINDS] = {c->usage.prompt_tokens, c->usage.completion_tokens,
                         c->usage.cached_tokens, c->usage.cache_write_tokens,
                         c->usage.reasoning_tokens};
    const char *provider = or_none(c->provider), *model = or_none(c->model);
    const char *key = c->key_id ? c->key_id : "(anonymous)", *team = c->team ? c->team : "";
    size_t n_att = c->n_attempts < MAX_ATTEMPT_SERIES ? c->n_attempts : MAX_ATTEMPT_SERIES;
    pthread_mutex_lock(&m->mu);
    const char *pm[3] = {provider, model, c->status ? llmux__status_class(c->status) : NULL};
    add(m, F_CALLS, pm, 1);
    if (c->status)
        add(m, F_ERRORS, pm, 1);
    for (size_t i = 0; i < n_att; i++) {
        const lx_log_attempt *a = &c->attempts[i];
        const char *v[3] = {or_none(a->provider), or_none(a->model),
                            a->status ? llmux__status_class(a->status) : "ok"};
        add(m, F_ATTEMPTS, v, 1);
    }
    const char *who[3] = {key, team, model};
    series *s = find(m, F_TOKENS, who);
    if (s) {
        for (int k = 0; k < N_KINDS; k++)
            if (counts[k] >= 0) {
                s->value[V_TOKENS + k] += (double)counts[k];
                s->seen |= 1u << (V_TOKENS + k);
            }
        int v = c->cost_nusd >= 0 ? V_COST : V_UNPRICED;
        s->value[v] += v == V_COST ? (double)c->cost_nusd / 1e9 : 1;
        s->seen |= 1u << v;
    }
    observe_hist(&m->h[0], BUCKETS[0], c->latency_ms / 1e3);
    observe_hist(&m->h[1], BUCKETS[1], (c->overhead_ms > 0 ? c->overhead_ms : 0) / 1e3);
    if (c->ttft_ms >= 0)
        observe_hist(&m->h[2], BUCKETS[2], c->ttft_ms / 1e3);
    pthread_mutex_unlock(&m->mu);
}

static int head(lx_buf *b, const char *name, const char *type, const char *help)
{
    return llmux__buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int llmux__metrics_text(lx_metrics *m, const lx_log_stats *log, lx_buf *b)
{
    int bad = 0;
    pthread_mutex_lock(&m->mu);
    for (int f = 0; f < N_COUNTERS && !bad; f++) {
        bad = head(b, FAMILIES[f].name, "counter", FAMILIES[f].help);
        /* the keyed group's series are kept under F_TOKENS, whatever f */
        int kept = f < F_TOKENS ? f : F_TOKENS;
        int first = f < F_TOKENS ? 0 : f == F_TOKENS ? V_TOKENS : f == F_COST ? V_COST : V_UNPRICED;
        int last = f == F_TOKENS ? V_TOKENS + N_KINDS - 1 : first;
        for (size_t i = 0; i <= m->mask && !bad; i++) {
            const series *s = &m->slots[i];
            if (!s->labels || s->family != kept)
                continue;
            for (int v = first; v <= last && !bad; v++) {
                if (!(s->seen & 1u << v))
                    continue;
                bad = llmux__buf_puts(b, FAMILIES[f].name) || llmux__buf_puts(b, "{") ||
                      put_labels(b, kept, s->labels) ||
                      (f == F_TOKENS &&
                       llmux__buf_printf(b, ",kind=\"%s\"", KIND[v - V_TOKENS])) ||
                      llmux__buf_printf(b, "} %.17g\n", s->value[v]);
            }
        }
    }
    for (int h = 0; h < N_HIST && !bad; h++) {
        bad = head(b, HIST_NAME[h], "histogram", HIST_HELP[h]);
        uint64_t cum = 0;
        for (int i = 0; i < N_BUCKETS && !bad; i++) {
            cum += m->h[h].counts[i];
            bad = llmux__buf_printf(b, "%s_bucket{le=\"%g\"} %llu\n", HIST_NAME[h],
                                    BUCKETS[h][i], (unsigned long long)cum);
        }
        bad = bad || llmux__buf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.17g\n"
                                          "%s_count %llu\n",
                                       HIST_NAME[h], (unsigned long long)m->h[h].count,
                                       HIST_NAME[h], m->h[h].sum, HIST_NAME[h],
                                       (unsigned long long)m->h[h].count);
    }
    uint64_t dropped = m->series_dropped;
    pthread_mutex_unlock(&m->mu);
    bad = bad || head(b, "llmux_calls_in_flight", "gauge", "Calls running now.") ||
          llmux__buf_printf(b, "llmux_calls_in_flight %ld\n",
                            __atomic_load_n(&m->in_flight, __ATOMIC_RELAXED)) ||
          head(b, "llmux_metrics_series_dropped_total", "counter",
               "Updates refused because the series limit was reached.") ||
          llmux__buf_printf(b, "llmux_metrics_series_dropped_total %llu\n",
                            (unsigned long long)dropped);
    if (log && !bad)
        bad = head(b, "llmux_log_records_total", "counter",
                   "Log records handed to the sinks.") ||
              llmux__buf_printf(b, "llmux_log_records_total %llu\n",
                                (unsigned long long)log->records) ||
              head(b, "llmux_log_exported_total", "counter",
                   "Log records the OTLP collector accepted.") ||
              llmux__buf_printf(b, "llmux_log_exported_total %llu\n",
                                (unsigned long long)log->exported) ||
              head(b, "llmux_log_dropped_total", "counter",
                   "Log records lost, by reason: queue_full (calls never wait for the writer), "
                   "file (a write failed), otlp (the collector was down, slow or refused).") ||
              llmux__buf_printf(b,
                                "llmux_log_dropped_total{reason=\"queue_full\"} %llu\n"
                                "llmux_log_dropped_total{reason=\"file\"} %llu\n"
                                "llmux_log_dropped_total{reason=\"otlp\"} %llu\n",
                                (unsigned long long)log->dropped_queue,
                                (unsigned long long)log->dropped_file,
                                (unsigned long long)log->dropped_otlp);
    return bad ? -1 : 0;
}
